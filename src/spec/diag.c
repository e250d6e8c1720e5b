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
	/*
	 * A message quotes the spec's own text, which may hold control
	 * characters (a YAML "\b"): shown as '?', never sent to a terminal.
	 */
	for (char *m = g->msg; *m; m++)
		if (((unsigned char)*m < 0x20 && *m != '\n' && *m != '\t') ||
		    *m == 0x7f)
			*m = '?';
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

struct diag_ref {
	struct hf_diag d;
	size_t seq;
};

static int diag_ref_cmp(const void *a, const void *b)
{
	const struct diag_ref *x = a, *y = b;
	int c = diag_cmp(&x->d, &y->d);

	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void hf_diags_sort(struct hf_diags *d)
{
	/* qsort with the original order as the last key: stable, n log n. */
	struct diag_ref *tmp;

	if (d->len < 2)
		return;
	tmp = hf_xcalloc(d->len, sizeof(*tmp));
	for (size_t i = 0; i < d->len; i++) {
		tmp[i].d = d->items[i];
		tmp[i].seq = i;
	}
	qsort(tmp, d->len, sizeof(*tmp), diag_ref_cmp);
	for (size_t i = 0; i < d->len; i++)
		d->items[i] = tmp[i].d;
	free(tmp);
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
