/*
 * s3codec.c - names in S3 URLs and the small XML reader of the S3 client
 * (see s3codec.h).
 */
#include "volume/s3codec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#define XML_MAX_DEPTH 32

void hf_s3_seterr(char *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, HF_S3_ERRLEN, fmt, ap);
	va_end(ap);
}

void hf_s3_printable(char *out, size_t cap, const char *s, size_t n)
{
	size_t i, room;

	if (cap == 0)
		return;
	room = cap - 1;
	if (n > room) {
		/* Room for "..." where the string is cut, if there is any. */
		room = room >= 16 ? room - 3 : room;
		/* Back off to the start of a UTF-8 character. */
		while (room > 0 && ((unsigned char)s[room] & 0xc0) == 0x80)
			room--;
	}
	for (i = 0; i < n && i < room; i++) {
		unsigned char c = (unsigned char)s[i];

		out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (n > i && cap - 1 - i >= 3) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
}

void hf_s3_uri_encode(struct hf_buf *b, const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	hf_buf_add(b, "", 0);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~' || (c == '/' && keep_slash)) {
			hf_buf_addc(b, (char)c);
		} else {
			hf_buf_addc(b, '%');
			hf_buf_addc(b, hex[c >> 4]);
			hf_buf_addc(b, hex[c & 15]);
		}
	}
}

int hf_s3_check_bucket(const char *bucket, char *err)
{
	size_t n = strlen(bucket);

	if (n == 0 || n > HF_S3_MAX_BUCKET) {
		hf_s3_seterr(err, "s3: a bucket name has 1 to %d "
			     "characters", HF_S3_MAX_BUCKET);
		return HF_EINVAL;
	}
	for (const char *p = bucket; *p; p++) {
		char c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '-' ||
		      c == '_')) {
			char shown[64];

			hf_s3_printable(shown, sizeof(shown), bucket, n);
			hf_s3_seterr(err, "s3: bucket name \"%s\": only "
				     "letters, digits, '.', '-' and '_' are "
				     "allowed", shown);
			return HF_EINVAL;
		}
	}
	return 0;
}

int hf_s3_check_key(const char *key, char *err)
{
	size_t n = strlen(key);
	const char *seg = key;

	if (n == 0 || n > HF_S3_MAX_KEY) {
		hf_s3_seterr(err, "s3: an object key has 1 to %d "
			     "bytes", HF_S3_MAX_KEY);
		return HF_EINVAL;
	}
	for (;;) {
		const char *slash = strchr(seg, '/');
		size_t len = slash ? (size_t)(slash - seg) : strlen(seg);

		if ((len == 1 && seg[0] == '.') ||
		    (len == 2 && seg[0] == '.' && seg[1] == '.')) {
			char shown[96];

			hf_s3_printable(shown, sizeof(shown), key, n);
			hf_s3_seterr(err, "s3: object key \"%s\" has "
				     "a \".\" or \"..\" segment, which URL "
				     "handling would rewrite", shown);
			return HF_EINVAL;
		}
		if (!slash)
			return 0;
		seg = slash + 1;
	}
}

void hf_s3_list_release(struct hf_s3_list *l)
{
	for (size_t i = 0; i < l->len; i++) {
		free(l->items[i].key);
		l->items[i].key = NULL;
	}
	free(l->items);
	free(l->next_token);
	*l = (struct hf_s3_list)HF_S3_LIST_INIT;
}

/* ---- the XML walker ---- */

enum xml_event { XML_OPEN, XML_CLOSE };

struct xml_name {
	const char *p; /* the qualified name, in the document */
	size_t len;
	const char *local; /* after a prefix's ':' */
	size_t local_len;
};

/*
 * Called at each start tag (text empty) and end tag (text is the decoded
 * character data since the element's last child, or since it opened);
 * depth is 1 for the root. Returns 0, or -1 having written err.
 */
typedef int (*xml_fn)(void *ctx, enum xml_event ev, int depth,
		      const struct xml_name *name, const char *text,
		      size_t text_len, char *err);

struct xml {
	const char *start, *p, *end;
	struct xml_name stack[XML_MAX_DEPTH];
	int depth;
	bool had_root;
	struct hf_buf text;
	char *err;
};

static int xml_fail(struct xml *x, const char *what)
{
	hf_s3_seterr(x->err, "%s at byte %zu", what,
		     (size_t)(x->p - x->start));
	return -1;
}

static bool xml_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool xml_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == ':' || c == '.' ||
	       c == '-' || (unsigned char)c >= 0x80;
}

static bool xml_starts(const struct xml *x, const char *s)
{
	size_t n = strlen(s);

	return (size_t)(x->end - x->p) >= n && memcmp(x->p, s, n) == 0;
}

/* Moves past the next occurrence of s; false when there is none. */
static bool xml_skip_past(struct xml *x, const char *s)
{
	size_t n = strlen(s);

	for (const char *q = x->p; (size_t)(x->end - q) >= n; q++) {
		if (memcmp(q, s, n) == 0) {
			x->p = q + n;
			return true;
		}
	}
	return false;
}

static int xml_read_name(struct xml *x, struct xml_name *name)
{
	const char *colon = NULL;

	name->p = x->p;
	while (x->p < x->end && xml_name_char(*x->p)) {
		if (*x->p == ':')
			colon = x->p;
		x->p++;
	}
	name->len = (size_t)(x->p - name->p);
	if (name->len == 0)
		return xml_fail(x, "a tag without a name");
	name->local = colon ? colon + 1 : name->p;
	name->local_len = (size_t)(x->p - name->local);
	if (name->local_len == 0)
		return xml_fail(x, "a tag name ending in ':'");
	return 0;
}

static void xml_add_utf8(struct hf_buf *b, unsigned long cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	hf_buf_add(b, u, n);
}

/* Decodes the reference at x->p ('&') into the text. */
static int xml_reference(struct xml *x)
{
	static const struct {
		const char *name;
		char c;
	} named[] = {
		{"lt", '<'}, {"gt", '>'}, {"amp", '&'}, {"quot", '"'},
		{"apos", '\''},
	};
	const char *semi, *s = x->p + 1;
	size_t n;

	semi = memchr(s, ';', (size_t)(x->end - s) < 12 ?
			      (size_t)(x->end - s) : 12);
	if (!semi)
		return xml_fail(x, "an unterminated '&' reference");
	n = (size_t)(semi - s);
	if (n >= 2 && s[0] == '#') {
		bool hexa = s[1] == 'x';
		unsigned long cp = 0;
		size_t i = hexa ? 2 : 1;

		if (i >= n)
			return xml_fail(x, "an empty character reference");
		for (; i < n; i++) {
			char c = s[i];
			int d;

			if (c >= '0' && c <= '9')
				d = c - '0';
			else if (hexa && c >= 'a' && c <= 'f')
				d = c - 'a' + 10;
			else if (hexa && c >= 'A' && c <= 'F')
				d = c - 'A' + 10;
			else
				return xml_fail(x, "a bad character reference");
			cp = cp * (hexa ? 16 : 10) + (unsigned long)d;
			if (cp > 0x10ffff)
				return xml_fail(x, "a character reference "
						   "beyond Unicode");
		}
		if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
			return xml_fail(x, "a character reference to NUL or "
					   "a surrogate");
		xml_add_utf8(&x->text, cp);
		x->p = semi + 1;
		return 0;
	}
	for (size_t i = 0; i < HF_ARRAY_LEN(named); i++) {
		if (strlen(named[i].name) == n &&
		    memcmp(named[i].name, s, n) == 0) {
			hf_buf_addc(&x->text, named[i].c);
			x->p = semi + 1;
			return 0;
		}
	}
	return xml_fail(x, "an unknown entity");
}

/* Character data up to the next '<'. */
static int xml_chars(struct xml *x)
{
	while (x->p < x->end && *x->p != '<') {
		char c = *x->p;

		if (x->depth == 0 && !xml_space(c))
			return xml_fail(x, "text outside the root element");
		if (c == '&') {
			if (xml_reference(x) < 0)
				return -1;
			continue;
		}
		if (x->depth > 0)
			hf_buf_addc(&x->text, c);
		x->p++;
	}
	return 0;
}

/* A start tag, x->p after '<'. */
static int xml_start_tag(struct xml *x, xml_fn fn, void *ctx)
{
	struct xml_name name;
	bool empty = false;

	if (x->depth == 0 && x->had_root)
		return xml_fail(x, "a second root element");
	if (x->depth == XML_MAX_DEPTH)
		return xml_fail(x, "elements nested too deep");
	if (xml_read_name(x, &name) < 0)
		return -1;
	/* Attributes: name = "value" or 'value', skipped. */
	for (;;) {
		struct xml_name attr;
		const char *q;
		char quote;

		while (x->p < x->end && xml_space(*x->p))
			x->p++;
		if (x->p >= x->end)
			return xml_fail(x, "an unterminated start tag");
		if (*x->p == '>') {
			x->p++;
			break;
		}
		if (xml_starts(x, "/>")) {
			x->p += 2;
			empty = true;
			break;
		}
		if (x->p == name.p + name.len)
			return xml_fail(x, "a bad character in a tag name");
		if (xml_read_name(x, &attr) < 0)
			return -1;
		while (x->p < x->end && xml_space(*x->p))
			x->p++;
		if (x->p >= x->end || *x->p != '=')
			return xml_fail(x, "an attribute without '='");
		x->p++;
		while (x->p < x->end && xml_space(*x->p))
			x->p++;
		if (x->p >= x->end || (*x->p != '"' && *x->p != '\''))
			return xml_fail(x, "an attribute value without quotes");
		quote = *x->p++;
		q = memchr(x->p, quote, (size_t)(x->end - x->p));
		if (!q || memchr(x->p, '<', (size_t)(q - x->p)))
			return xml_fail(x, "an unterminated attribute value");
		x->p = q + 1;
		/* Attributes must be separated by white space. */
		if (x->p < x->end && !xml_space(*x->p) && *x->p != '>' &&
		    *x->p != '/')
			return xml_fail(x, "attributes without space between");
	}
	x->had_root = true;
	x->stack[x->depth++] = name;
	hf_buf_reset(&x->text);
	if (fn(ctx, XML_OPEN, x->depth, &name, "", 0, x->err) < 0)
		return -1;
	if (empty) {
		if (fn(ctx, XML_CLOSE, x->depth, &name, "", 0, x->err) < 0)
			return -1;
		x->depth--;
	}
	return 0;
}

/* An end tag, x->p after "</". */
static int xml_end_tag(struct xml *x, xml_fn fn, void *ctx)
{
	struct xml_name name;
	const struct xml_name *top;
	int rc;

	if (x->depth == 0)
		return xml_fail(x, "an end tag without a start tag");
	if (xml_read_name(x, &name) < 0)
		return -1;
	while (x->p < x->end && xml_space(*x->p))
		x->p++;
	if (x->p >= x->end || *x->p != '>')
		return xml_fail(x, "an unterminated end tag");
	x->p++;
	top = &x->stack[x->depth - 1];
	if (top->len != name.len || memcmp(top->p, name.p, name.len) != 0)
		return xml_fail(x, "an end tag that does not match its start "
				   "tag");
	rc = fn(ctx, XML_CLOSE, x->depth, &name, hf_buf_str(&x->text),
		x->text.len, x->err);
	x->depth--;
	hf_buf_reset(&x->text);
	return rc;
}

/* Walks the document, calling fn; returns 0 or -1 with err written. */
static int xml_walk(const char *doc, size_t len, xml_fn fn, void *ctx,
		    char *err)
{
	struct xml x = {.start = doc, .p = doc, .end = doc + len, .err = err};
	int rc = -1;

	hf_buf_init(&x.text);
	if (memchr(doc, '\0', len)) {
		hf_s3_seterr(err, "a NUL byte in the document");
		goto out;
	}
	/* A UTF-8 byte order mark. */
	if (xml_starts(&x, "\xef\xbb\xbf"))
		x.p += 3;
	while (x.p < x.end) {
		if (*x.p != '<') {
			if (xml_chars(&x) < 0)
				goto out;
		} else if (xml_starts(&x, "<?")) {
			if (!xml_skip_past(&x, "?>")) {
				xml_fail(&x, "an unterminated processing "
					     "instruction");
				goto out;
			}
		} else if (xml_starts(&x, "<!--")) {
			if (!xml_skip_past(&x, "-->")) {
				xml_fail(&x, "an unterminated comment");
				goto out;
			}
		} else if (xml_starts(&x, "<![CDATA[")) {
			const char *from = x.p + 9;

			if (x.depth == 0) {
				xml_fail(&x, "a CDATA section outside the root "
					     "element");
				goto out;
			}
			x.p = from;
			if (!xml_skip_past(&x, "]]>")) {
				xml_fail(&x, "an unterminated CDATA section");
				goto out;
			}
			hf_buf_add(&x.text, from, (size_t)(x.p - 3 - from));
		} else if (xml_starts(&x, "<!")) {
			xml_fail(&x, "a declaration (DOCTYPE, ENTITY), which "
				     "is not accepted");
			goto out;
		} else if (xml_starts(&x, "</")) {
			x.p += 2;
			if (xml_end_tag(&x, fn, ctx) < 0)
				goto out;
		} else {
			x.p++;
			if (xml_start_tag(&x, fn, ctx) < 0)
				goto out;
		}
	}
	if (x.depth > 0) {
		xml_fail(&x, "the document ends inside an element");
		goto out;
	}
	if (!x.had_root) {
		hf_s3_seterr(err, "no XML element in the document");
		goto out;
	}
	rc = 0;
out:
	hf_buf_release(&x.text);
	return rc;
}

static bool name_is(const struct xml_name *n, const char *s)
{
	return strlen(s) == n->local_len &&
	       memcmp(n->local, s, n->local_len) == 0;
}

/* text without the XML white space around it, as [*from, *from + *n). */
static void trim(const char **from, size_t *n)
{
	while (*n > 0 && xml_space(**from)) {
		(*from)++;
		(*n)--;
	}
	while (*n > 0 && xml_space((*from)[*n - 1]))
		(*n)--;
}

/* ---- ListObjectsV2 ---- */

struct list_ctx {
	struct hf_s3_list *l;
	bool in_contents, have_key, have_size, have_truncated;
	bool url_encoded;
	struct hf_s3_entry cur;
};

static int parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	trim(&s, &n);
	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int list_event(void *arg, enum xml_event ev, int depth,
		      const struct xml_name *name, const char *text,
		      size_t n, char *err)
{
	struct list_ctx *c = arg;

	if (depth == 1) {
		if (ev == XML_OPEN && !name_is(name, "ListBucketResult")) {
			char shown[48];

			hf_s3_printable(shown, sizeof(shown), name->p,
					name->len);
			hf_s3_seterr(err, "the root element is <%s>, "
				     "not <ListBucketResult>", shown);
			return -1;
		}
		return 0;
	}
	if (depth == 2 && name_is(name, "Contents")) {
		if (ev == XML_OPEN) {
			c->in_contents = true;
			c->have_key = c->have_size = false;
			return 0;
		}
		c->in_contents = false;
		if (!c->have_key || !c->have_size) {
			free(c->cur.key);
			c->cur.key = NULL;
			hf_s3_seterr(err, "a <Contents> without its "
				     "<%s>", c->have_key ? "Size" : "Key");
			return -1;
		}
		*HF_VEC_PUSH(c->l) = c->cur;
		c->cur.key = NULL;
		return 0;
	}
	if (ev != XML_CLOSE)
		return 0;
	if (depth == 3 && c->in_contents && name_is(name, "Key")) {
		if (c->have_key) {
			hf_s3_seterr(err, "a <Contents> with two "
				     "<Key>s");
			return -1;
		}
		c->cur.key = hf_xstrndup(text, n);
		c->have_key = true;
	} else if (depth == 3 && c->in_contents && name_is(name, "Size")) {
		if (c->have_size || parse_u64(text, n, &c->cur.size) < 0) {
			hf_s3_seterr(err, "a <Contents> with a bad "
				     "or second <Size>");
			return -1;
		}
		c->have_size = true;
	} else if (depth == 2 && name_is(name, "IsTruncated")) {
		trim(&text, &n);
		if (n == 4 && memcmp(text, "true", 4) == 0)
			c->l->truncated = true;
		else if (n == 5 && memcmp(text, "false", 5) == 0)
			c->l->truncated = false;
		else {
			hf_s3_seterr(err, "<IsTruncated> is neither "
				     "true nor false");
			return -1;
		}
		c->have_truncated = true;
	} else if (depth == 2 && name_is(name, "NextContinuationToken")) {
		trim(&text, &n);
		free(c->l->next_token);
		c->l->next_token = n ? hf_xstrndup(text, n) : NULL;
	} else if (depth == 2 && name_is(name, "EncodingType")) {
		trim(&text, &n);
		c->url_encoded = n == 3 && memcmp(text, "url", 3) == 0;
	}
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes a key S3 sent URL-encoded ('+' for a space), in place. */
static int url_decode(char *s)
{
	char *w = s;

	for (const char *r = s; *r; r++) {
		if (*r == '+') {
			*w++ = ' ';
		} else if (*r == '%') {
			int hi = hexval(r[1]), lo = hi < 0 ? -1 : hexval(r[2]);

			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			*w++ = (char)(hi << 4 | lo);
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	return 0;
}

int hf_s3_parse_list(const char *xml, size_t len, struct hf_s3_list *out,
		     char *err)
{
	struct hf_s3_list l = HF_S3_LIST_INIT;
	struct list_ctx c = {.l = &l};
	char why[HF_S3_ERRLEN];

	if (xml_walk(xml, len, list_event, &c, why) < 0)
		goto fail;
	if (!c.have_truncated) {
		hf_s3_seterr(why, "no <IsTruncated>");
		goto fail;
	}
	if (l.truncated && !l.next_token) {
		hf_s3_seterr(why, "a truncated page without "
			     "<NextContinuationToken>");
		goto fail;
	}
	if (!l.truncated) {
		free(l.next_token);
		l.next_token = NULL;
	}
	for (size_t i = 0; i < l.len; i++) {
		char *k = l.items[i].key;
		size_t n = strlen(k);

		if (c.url_encoded && url_decode(k) < 0) {
			hf_s3_seterr(why, "a <Key> with a bad %% "
				     "escape");
			goto fail;
		}
		if (c.url_encoded)
			n = strlen(k);
		if (n == 0 || n > HF_S3_MAX_KEY) {
			hf_s3_seterr(why, "a <Key> that is empty or "
				     "over %d bytes", HF_S3_MAX_KEY);
			goto fail;
		}
	}
	*out = l;
	return 0;
fail:
	free(c.cur.key);
	hf_s3_list_release(&l);
	hf_s3_seterr(err, "not a ListObjectsV2 answer: %s", why);
	return HF_EPARSE;
}

/* ---- <Error> ---- */

struct error_ctx {
	char *code, *message;
	size_t cap;
	bool is_error, have_code;
};

static int error_event(void *arg, enum xml_event ev, int depth,
		       const struct xml_name *name, const char *text,
		       size_t n, char *err)
{
	struct error_ctx *c = arg;

	if (depth == 1 && ev == XML_OPEN)
		c->is_error = name_is(name, "Error");
	if (depth != 2 || ev != XML_CLOSE || !c->is_error)
		return 0;
	if (name_is(name, "Code")) {
		trim(&text, &n);
		hf_s3_printable(c->code, c->cap, text, n);
		c->have_code = n > 0;
	} else if (name_is(name, "Message")) {
		trim(&text, &n);
		hf_s3_printable(c->message, c->cap, text, n);
	}
	return 0;
}

int hf_s3_parse_error(const char *xml, size_t len, char *code,
		      char *message, size_t cap)
{
	struct error_ctx c = {.code = code, .message = message, .cap = cap};
	char why[HF_S3_ERRLEN];

	code[0] = message[0] = '\0';
	if (xml_walk(xml, len, error_event, &c, why) < 0 || !c.have_code) {
		code[0] = message[0] = '\0';
		return HF_EPARSE;
	}
	return 0;
}
