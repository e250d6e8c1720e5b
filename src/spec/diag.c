#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "spec/spec.h"

void hf_diags_release(struct hf_diags *d)
{
	for (size_t i = 0; i < d->len; i++) {
		free(d->items[i].file);
		free(d->items[i].path);
		free(d->items[i].msg);
	}
	HF_VEC_FREE(d);
	d->errors = d->warnings = 0;
}

void hf_diags_add(struct hf_diags *d, enum hf_diag_level level,
		  const char *file, int line, int col, const char *path,
		  const char *fmt, ...)
{
	struct hf_diag *g = HF_VEC_PUSH(d);
	struct hf_buf b = HF_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	hf_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	g->level = level;
	g->file = file ? hf_xstrdup(file) : NULL;
	g->line = line;
	g->col = col;
	g->path = hf_xstrdup(path ? path : "");
	g->msg = hf_buf_detach(&b);
	if (level == HF_DIAG_ERROR)
		d->errors++;
	else
		d->warnings++;
}

static int diag_cmp(const struct hf_diag *a, const struct hf_diag *b)
{
	int c = strcmp(a->file ? a->file : "", b->file ? b->file : "");

	if (c)
		return c;
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	if (a->col != b->col)
		return a->col < b->col ? -1 : 1;
	return 0;
}

void hf_diags_sort(struct hf_diags *d)
{
	/* Insertion sort: stable, and diagnostic lists are short. */
	for (size_t i = 1; i < d->len; i++) {
		struct hf_diag tmp = d->items[i];
		size_t j = i;

		while (j > 0 && diag_cmp(&d->items[j - 1], &tmp) > 0) {
			d->items[j] = d->items[j - 1];
			j--;
		}
		d->items[j] = tmp;
	}
}

void hf_diags_print(FILE *f, const struct hf_diags *d)
{
	for (size_t i = 0; i < d->len; i++) {
		const struct hf_diag *g = &d->items[i];

		fprintf(f, "%s", g->file ? g->file : "<spec>");
		if (g->line > 0)
			fprintf(f, ":%d", g->line);
		if (g->line > 0 && g->col > 0)
			fprintf(f, ":%d", g->col);
		fprintf(f, ": %s: ",
			g->level == HF_DIAG_ERROR ? "error" : "warning");
		if (g->path && *g->path)
			fprintf(f, "%s: ", g->path);
		fprintf(f, "%s\n", g->msg);
	}
}
