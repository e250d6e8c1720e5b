/*
 * mustache.c - the mustache subset service specs use, rendered in one pass.
 *
 * The template is scanned once, left to right. Text between tags is copied
 * to the output while every open section is true; a stack of open sections
 * (capped, so hostile input cannot exhaust anything) remembers where each
 * was opened for messages. Standalone tag lines are detected on the raw
 * template: a tag is standalone when only spaces and tabs separate it from
 * the previous newline (or the start) and from the next newline (or the
 * end); the previous tag, if any, would otherwise lie in between.
 *
 * Problems are collected rather than stopping at the first, so a user sees
 * every missing variable at once. Only an unclosed "{{" or nesting past the
 * cap stops the scan, as nothing after them can be read reliably.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "spec/spec.h"

/* Deeper nesting than this is refused rather than followed. */
#define HF_MUSTACHE_MAX_DEPTH 64
/* After this many problems the renderer stops adding more. */
#define HF_MUSTACHE_MAX_ERRORS 100
/* Tag names longer than this are shortened in messages. */
#define HF_MUSTACHE_SHOW_MAX 60

enum tag_kind {
	TAG_VAR,	/* {{x}}, {{{x}}}, {{& x}} */
	TAG_SECTION,	/* {{#x}} */
	TAG_INVERTED,	/* {{^x}} */
	TAG_CLOSE,	/* {{/x}} */
	TAG_COMMENT,	/* {{! ...}} */
	TAG_PARTIAL,	/* {{> x}}: refused */
	TAG_DELIM,	/* {{=<% %>=}}: refused */
};

struct tag {
	enum tag_kind kind;
	size_t start, end; /* [start, end) in the template, braces included */
	const char *name;  /* into the template; not NUL-terminated */
	size_t name_len;
	int line, col;
};

struct section {
	char *name; /* owned */
	bool inverted;
	bool active; /* this section and all its parents render */
	int line, col;
};

struct render {
	const char *t;
	size_t len;
	const struct hf_kvlist *vars;
	bool allow_missing;
	const char *file;
	struct hf_diags *diags;
	size_t errors; /* problems this call added */

	/* Line-counting cursor: line of pos, and where that line starts. */
	size_t lpos, lstart;
	int line;

	struct hf_buf out;
	struct hf_linemap map;
	bool at_bol; /* the next output byte starts an output line */

	HF_VEC(struct section) stack;
	struct hf_strlist missing; /* names already reported */
	/* When set, unset variables are listed here instead of reported. */
	struct hf_mustache_uses *collect;
};

void hf_mustache_uses_release(struct hf_mustache_uses *u)
{
	for (size_t i = 0; i < u->len; i++)
		free(u->items[i].name);
	HF_VEC_FREE(u);
}

void hf_linemap_release(struct hf_linemap *m)
{
	HF_VEC_FREE(m);
}

int hf_linemap_lookup(const struct hf_linemap *m, int out_line)
{
	if (m && out_line >= 1 && (size_t)out_line <= m->len)
		return m->items[out_line - 1];
	/* Past the map (a parser's end-of-input): the template's last line. */
	if (m && m->len && out_line >= 1)
		return m->items[m->len - 1];
	return out_line;
}

/* Moves the cursor to p, counting newlines on the way. */
static void seek(struct render *r, size_t p)
{
	if (p < r->lpos) {
		r->lpos = r->lstart = 0;
		r->line = 1;
	}
	while (r->lpos < p) {
		const char *nl = memchr(r->t + r->lpos, '\n', p - r->lpos);

		if (!nl) {
			r->lpos = p;
			break;
		}
		r->lpos = (size_t)(nl - r->t) + 1;
		r->lstart = r->lpos;
		if (r->line < INT_MAX)
			r->line++;
	}
}

static int line_of(struct render *r, size_t p)
{
	seek(r, p);
	return r->line;
}

static int col_of(struct render *r, size_t p)
{
	size_t c;

	seek(r, p);
	c = p - r->lstart + 1;
	return c > INT_MAX ? INT_MAX : (int)c;
}

/* Appends text to b for a message, escaping bytes that would not print. */
static void add_shown(struct hf_buf *b, const char *s, size_t n)
{
	size_t shown = n > HF_MUSTACHE_SHOW_MAX ? HF_MUSTACHE_SHOW_MAX : n;

	for (size_t i = 0; i < shown; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			hf_buf_addf(b, "\\x%02x", c);
		else
			hf_buf_addc(b, (char)c);
	}
	if (shown < n)
		hf_buf_adds(b, "...");
}

/*
 * Adds an error at template position p. Past the cap, only one final
 * "too many problems" note is added; the render fails either way.
 */
static void problem(struct render *r, size_t p, const char *fmt, ...)
	HF_PRINTF(3, 4);
static void problem(struct render *r, size_t p, const char *fmt, ...)
{
	struct hf_buf b = HF_BUF_INIT;
	va_list ap;

	r->errors++;
	if (r->errors > HF_MUSTACHE_MAX_ERRORS + 1)
		return;
	if (r->errors == HF_MUSTACHE_MAX_ERRORS + 1) {
		hf_diags_add(r->diags, HF_DIAG_ERROR, r->file, line_of(r, p),
			     col_of(r, p), "",
			     "too many template problems; stopped listing them");
		return;
	}
	va_start(ap, fmt);
	hf_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	hf_diags_add(r->diags, HF_DIAG_ERROR, r->file, line_of(r, p),
		     col_of(r, p), "", "%s", hf_buf_str(&b));
	hf_buf_release(&b);
}

static bool active(const struct render *r)
{
	return r->stack.len == 0 || r->stack.items[r->stack.len - 1].active;
}

/*
 * Appends n bytes to the output and records where each output line it
 * starts came from: the template line of that line's first byte when the
 * bytes are template text at offset tpos, or src_line for every line when
 * line_fixed (a value, which belongs to the line of its tag).
 */
static void emit(struct render *r, const char *s, size_t n, size_t tpos,
		 bool line_fixed, int src_line)
{
	if (n == 0)
		return;
	for (size_t i = 0; i < n;) {
		const char *nl;
		size_t chunk;

		if (r->at_bol) {
			int l = line_fixed ? src_line : line_of(r, tpos + i);

			*HF_VEC_PUSH(&r->map) = l;
			r->at_bol = false;
		}
		nl = memchr(s + i, '\n', n - i);
		chunk = nl ? (size_t)(nl - (s + i)) + 1 : n - i;
		hf_buf_add(&r->out, s + i, chunk);
		i += chunk;
		if (nl)
			r->at_bol = true;
	}
}

/* Copies template text [a, b) to the output when the sections allow. */
static void emit_text(struct render *r, size_t a, size_t b)
{
	if (a < b && active(r))
		emit(r, r->t + a, b - a, a, false, 0);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Finds the two-or-three byte closing delimiter at or after p. */
static size_t find_close(const char *t, size_t len, size_t p, size_t n)
{
	while (p + n <= len) {
		const char *q = memchr(t + p, '}', len - p);

		if (!q)
			break;
		p = (size_t)(q - t);
		if (p + n > len)
			break;
		if (memcmp(t + p, n == 3 ? "}}}" : "}}", n) == 0)
			return p;
		p++;
	}
	return SIZE_MAX;
}

static bool valid_name(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c == 0x7f || c == '{' || c == '}')
			return false;
	}
	return n > 0;
}

enum tag_status {
	TAG_OK,
	TAG_UNCLOSED, /* no closing braces: nothing after it can be read */
	TAG_NO_NAME,
	TAG_BAD_NAME,
	TAG_REFUSED, /* partial or set-delimiter tag */
};

static bool is_space(char c)
{
	return is_blank(c) || c == '\n' || c == '\r';
}

/*
 * Reads the tag that starts at r->t[start] ("{{") into *tg, without
 * reporting: the caller reports once the text before the tag is out, so
 * the line cursor only moves forward. tg->end is set unless the tag is
 * unclosed.
 */
static enum tag_status read_tag(const struct render *r, size_t start,
				struct tag *tg)
{
	const char *t = r->t;
	size_t len = r->len, cstart, cend, close;
	bool triple = start + 2 < len && t[start + 2] == '{';

	memset(tg, 0, sizeof(*tg));
	tg->start = start;
	cstart = start + (triple ? 3 : 2);
	close = find_close(t, len, cstart, triple ? 3 : 2);
	if (close == SIZE_MAX)
		return TAG_UNCLOSED;
	tg->end = close + (triple ? 3 : 2);
	cend = close;
	while (cstart < cend && is_space(t[cstart]))
		cstart++;
	tg->kind = TAG_VAR;
	if (!triple && cstart < cend) {
		switch (t[cstart]) {
		case '#': tg->kind = TAG_SECTION; cstart++; break;
		case '^': tg->kind = TAG_INVERTED; cstart++; break;
		case '/': tg->kind = TAG_CLOSE; cstart++; break;
		case '!': tg->kind = TAG_COMMENT; cstart++; break;
		case '>': tg->kind = TAG_PARTIAL; cstart++; break;
		case '=': tg->kind = TAG_DELIM; cstart++; break;
		case '&': cstart++; break;
		default: break;
		}
	}
	if (tg->kind == TAG_COMMENT)
		return TAG_OK;
	if (tg->kind == TAG_PARTIAL || tg->kind == TAG_DELIM)
		return TAG_REFUSED;
	while (cstart < cend && is_space(t[cstart]))
		cstart++;
	while (cend > cstart && is_space(t[cend - 1]))
		cend--;
	tg->name = t + cstart;
	tg->name_len = cend - cstart;
	if (tg->name_len == 0)
		return TAG_NO_NAME;
	if (!valid_name(tg->name, tg->name_len))
		return TAG_BAD_NAME;
	return TAG_OK;
}

/* Reports a tag read_tag() found wrong; the cursor is at or before it. */
static void report_tag(struct render *r, const struct tag *tg,
		       enum tag_status st)
{
	struct hf_buf b = HF_BUF_INIT;

	switch (st) {
	case TAG_OK:
		break;
	case TAG_UNCLOSED:
		if (tg->start + 2 < r->len && r->t[tg->start + 2] == '{')
			problem(r, tg->start,
				"\"{{{\" is never closed (no matching \"}}}\")");
		else
			problem(r, tg->start,
				"\"{{\" is never closed (no matching \"}}\")");
		break;
	case TAG_NO_NAME:
		problem(r, tg->start, "tag has no name");
		break;
	case TAG_BAD_NAME:
		add_shown(&b, tg->name, tg->name_len);
		problem(r, tg->start,
			"\"%s\" is not a valid tag name (no spaces, control characters or braces)",
			hf_buf_str(&b));
		break;
	case TAG_REFUSED:
		if (tg->kind == TAG_PARTIAL)
			problem(r, tg->start,
				"partials (\"{{>\") are not supported in service specs");
		else
			problem(r, tg->start,
				"set-delimiter tags (\"{{=\") are not supported in service specs");
		break;
	}
	hf_buf_release(&b);
}

static bool standalone_kind(enum tag_kind k)
{
	return k != TAG_VAR;
}

/*
 * Whether the tag stands alone on its line. If so, *ls and *le receive the
 * start of its line and the position just past its line's newline.
 */
static bool standalone(const struct render *r, const struct tag *tg,
		       size_t *ls, size_t *le)
{
	size_t a = tg->start, b = tg->end;

	while (a > 0 && is_blank(r->t[a - 1]))
		a--;
	if (a > 0 && r->t[a - 1] != '\n')
		return false;
	while (b < r->len && is_blank(r->t[b]))
		b++;
	if (b < r->len && r->t[b] == '\r' && b + 1 < r->len &&
	    r->t[b + 1] == '\n')
		b += 2;
	else if (b < r->len && r->t[b] == '\n')
		b++;
	else if (b < r->len)
		return false;
	*ls = a;
	*le = b;
	return true;
}

static const char *lookup(const struct render *r, const char *name)
{
	return r->vars ? hf_kvlist_get(r->vars, name) : NULL;
}

static void do_var(struct render *r, const struct tag *tg)
{
	char *name;
	const char *v;

	if (!active(r))
		return;
	name = hf_xstrndup(tg->name, tg->name_len);
	v = lookup(r, name);
	if (v) {
		emit(r, v, strlen(v), tg->start, true, tg->line);
	} else if (r->collect) {
		/* Renders empty; the caller says what a missing one means. */
		if (!hf_strlist_has(&r->missing, name) &&
		    r->collect->len < HF_MUSTACHE_MAX_ERRORS) {
			struct hf_mustache_use *u = HF_VEC_PUSH(r->collect);

			hf_strlist_push(&r->missing, name);
			u->name = hf_xstrdup(name);
			u->line = tg->line;
			u->col = tg->col;
		}
	} else if (r->allow_missing) {
		/* Renders empty, as asked. */
	} else if (r->errors > HF_MUSTACHE_MAX_ERRORS) {
		/* Past the cap: fail without growing the list of names. */
		r->errors++;
	} else if (!hf_strlist_has(&r->missing, name)) {
		hf_strlist_push(&r->missing, name);
		problem(r, tg->start,
			"variable %s is not set (give it with -o %s=VALUE, or use --allow-missing)",
			name, name);
	}
	free(name);
}

static bool truthy(const char *v)
{
	return v && *v && strcasecmp(v, "false") != 0;
}

/* Returns false when the scan must stop (nesting too deep). */
static bool do_open(struct render *r, const struct tag *tg)
{
	bool parent = active(r), on;
	struct section *s;
	char *name;

	if (r->stack.len >= HF_MUSTACHE_MAX_DEPTH) {
		problem(r, tg->start, "sections are nested deeper than %d",
			HF_MUSTACHE_MAX_DEPTH);
		return false;
	}
	name = hf_xstrndup(tg->name, tg->name_len);
	on = truthy(lookup(r, name));
	if (tg->kind == TAG_INVERTED)
		on = !on;
	s = HF_VEC_PUSH(&r->stack);
	s->name = name;
	s->inverted = tg->kind == TAG_INVERTED;
	s->active = parent && on;
	s->line = tg->line;
	s->col = tg->col;
	return true;
}

static void pop(struct render *r)
{
	r->stack.len--;
	free(r->stack.items[r->stack.len].name);
	r->stack.items[r->stack.len].name = NULL;
}

static void do_close(struct render *r, const struct tag *tg)
{
	struct hf_buf shown = HF_BUF_INIT;
	struct section *top;
	size_t i;

	add_shown(&shown, tg->name, tg->name_len);
	if (r->stack.len == 0) {
		problem(r, tg->start, "{{/%s}} closes no open section",
			hf_buf_str(&shown));
		goto out;
	}
	top = &r->stack.items[r->stack.len - 1];
	if (strlen(top->name) == tg->name_len &&
	    memcmp(top->name, tg->name, tg->name_len) == 0) {
		pop(r);
		goto out;
	}
	problem(r, tg->start,
		"{{/%s}} does not close the open section {{%c%s}} from line %d:%d",
		hf_buf_str(&shown), top->inverted ? '^' : '#', top->name,
		top->line, top->col);
	/*
	 * Recover as a reader would: if the name closes a section further
	 * out, the ones inside it were left open by mistake; close them too.
	 */
	for (i = r->stack.len; i > 0; i--) {
		const struct section *s = &r->stack.items[i - 1];

		if (strlen(s->name) == tg->name_len &&
		    memcmp(s->name, tg->name, tg->name_len) == 0)
			break;
	}
	if (i > 0)
		while (r->stack.len >= i)
			pop(r);
out:
	hf_buf_release(&shown);
}

static void render_init(struct render *r, const char *tmpl, size_t len,
			const struct hf_kvlist *vars, bool allow_missing,
			const char *file, struct hf_diags *diags)
{
	memset(r, 0, sizeof(*r));
	r->t = tmpl;
	r->len = len;
	r->vars = vars;
	r->allow_missing = allow_missing;
	r->file = file;
	r->diags = diags;
	r->line = 1;
	r->at_bol = true;
}

static void render_release(struct render *r)
{
	while (r->stack.len)
		pop(r);
	HF_VEC_FREE(&r->stack);
	hf_strlist_release(&r->missing);
	hf_buf_release(&r->out);
	hf_linemap_release(&r->map);
}

/* Reports the first NUL byte: specs and config templates are text. */
static bool check_text(struct render *r)
{
	const char *z = r->len ? memchr(r->t, '\0', r->len) : NULL;

	if (!z)
		return true;
	problem(r, (size_t)(z - r->t),
		"the template contains a NUL byte; templates must be text");
	return false;
}

/*
 * Renders the whole template into r->out and r->map, reporting problems.
 * Sections left open are reported only when the scan reached the end: after
 * an unclosed "{{" or too deep a nesting they would be noise.
 */
static void render_all(struct render *r)
{
	size_t pos = 0;

	while (pos < r->len) {
		const char *open = NULL;
		size_t s, ls, le, p = pos;
		struct tag tg;
		enum tag_status st;

		while (p + 1 < r->len) {
			open = memchr(r->t + p, '{', r->len - p - 1);
			if (!open || open[1] == '{')
				break;
			p = (size_t)(open - r->t) + 1;
			open = NULL;
		}
		if (!open) {
			emit_text(r, pos, r->len);
			pos = r->len;
			break;
		}
		s = (size_t)(open - r->t);
		st = read_tag(r, s, &tg);
		if (st == TAG_UNCLOSED) {
			report_tag(r, &tg, st);
			break;
		}
		if (standalone_kind(tg.kind) && standalone(r, &tg, &ls, &le)) {
			emit_text(r, pos, ls);
			pos = le;
		} else {
			emit_text(r, pos, s);
			pos = tg.end;
		}
		tg.line = line_of(r, s);
		tg.col = col_of(r, s);
		if (st != TAG_OK) {
			report_tag(r, &tg, st);
			continue;
		}
		switch (tg.kind) {
		case TAG_VAR:
			do_var(r, &tg);
			break;
		case TAG_SECTION:
		case TAG_INVERTED:
			if (!do_open(r, &tg))
				return;
			break;
		case TAG_CLOSE:
			do_close(r, &tg);
			break;
		default:
			break;
		}
	}
	if (pos < r->len)
		return;
	for (size_t i = 0; i < r->stack.len; i++) {
		const struct section *sec = &r->stack.items[i];

		/* problem() positions by offset; give this one by hand. */
		r->errors++;
		if (r->errors <= HF_MUSTACHE_MAX_ERRORS)
			hf_diags_add(r->diags, HF_DIAG_ERROR, r->file,
				     sec->line, sec->col, "",
				     "section {{%c%s}} is never closed (no {{/%s}})",
				     sec->inverted ? '^' : '#', sec->name,
				     sec->name);
	}
}

/*
 * map, when given, must be zeroed or hold an earlier map: it is released
 * and replaced on success, and left released on failure.
 */
static int render(const char *tmpl, size_t len, const struct hf_kvlist *vars,
		  bool allow_missing, struct hf_mustache_uses *collect,
		  const char *file, char **out, struct hf_linemap *map,
		  struct hf_diags *diags)
{
	struct render r;
	int rc = HF_ESPEC;

	*out = NULL;
	if (!tmpl)
		len = 0;
	render_init(&r, tmpl ? tmpl : "", len, vars,
		    allow_missing, file, diags);
	r.collect = collect;
	if (!check_text(&r))
		goto out;
	render_all(&r);
	if (r.errors)
		goto out;
	*out = hf_buf_detach(&r.out);
	if (map) {
		hf_linemap_release(map);
		*map = r.map;
		memset(&r.map, 0, sizeof(r.map));
	}
	rc = 0;
out:
	if (rc && map)
		hf_linemap_release(map);
	render_release(&r);
	return rc;
}

int hf_mustache_render(const char *tmpl, size_t len,
		       const struct hf_kvlist *vars, bool allow_missing,
		       const char *file, char **out, struct hf_linemap *map,
		       struct hf_diags *diags)
{
	return render(tmpl, len, vars, allow_missing, NULL, file, out, map,
		      diags);
}

int hf_mustache_render_missing(const char *tmpl, size_t len,
			       const struct hf_kvlist *vars, const char *file,
			       char **out, struct hf_linemap *map,
			       struct hf_mustache_uses *missing,
			       struct hf_diags *diags)
{
	return render(tmpl, len, vars, true, missing, file, out, map, diags);
}
