/*
 * volopts.c - the driver-options of holdfast's external volumes and their
 * names.
 *
 * The SDK keeps `driver-options` as one opaque scalar and its Portworx
 * volume spec splits it on ';' into key=value pairs (trailing empty parts
 * dropped, as Java's String.split does); Portworx then reads the values.
 * holdfast reads the few options it honours and refuses the rest, so a
 * spec never asks for something it silently does not get.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "spec/spec.h"

void hf_volopts_problems_release(struct hf_volopts_problems *p)
{
	for (size_t i = 0; i < p->len; i++)
		free(p->items[i].msg);
	HF_VEC_FREE(p);
	p->errors = 0;
}

static void problem(struct hf_volopts_problems *p, bool warning,
		    size_t offset, const char *fmt, ...) HF_PRINTF(4, 5);
static void problem(struct hf_volopts_problems *p, bool warning,
		    size_t offset, const char *fmt, ...)
{
	struct hf_volopts_problem *pr = HF_VEC_PUSH(p);
	struct hf_buf b = HF_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	hf_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	pr->warning = warning;
	pr->offset = offset;
	pr->msg = hf_buf_detach(&b);
	if (!warning)
		p->errors++;
}

/* A piece of the string, trimmed of blanks. */
struct piece {
	const char *s;
	size_t len;
	size_t off; /* from the start of the whole string */
};

static struct piece trim(const char *base, const char *s, size_t len)
{
	struct piece p;

	while (len && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	p.s = s;
	p.len = len;
	p.off = (size_t)(s - base);
	return p;
}

/* Whether every byte of p is a letter, a digit, '-', '_' or '.'. */
static bool name_chars(struct piece p)
{
	for (size_t i = 0; i < p.len; i++) {
		unsigned char c = (unsigned char)p.s[i];

		if (!isalnum(c) && c != '-' && c != '_' && c != '.')
			return false;
	}
	return true;
}

static bool piece_is(struct piece p, const char *word)
{
	return p.len == strlen(word) && memcmp(p.s, word, p.len) == 0;
}

/*
 * A piece as messages quote it: at most 40 bytes, control bytes (and NUL)
 * as '?', so a hostile spec cannot put anything odd in a terminal.
 */
static char *shown(struct piece p)
{
	size_t n = p.len > 40 ? 40 : p.len;
	char *out = hf_xmalloc(n + 4);

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p.s[i];

		out[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	out[n] = '\0';
	if (n < p.len)
		strcat(out, "...");
	return out;
}

static const int64_t MIB = (int64_t)1 << 20;

/*
 * "10" (GiB, as Portworx reads a bare number), "1.5G", "512M", "2T",
 * "4Gi", "1GB", "1GiB" (units binary, any case). Sets *bytes, rounded up
 * to a whole MiB, or returns false when it is no size at all. A number too
 * large to compute is reported as HF_VOLOPTS_MAX_SIZE + 1 MiB, so the range
 * check says why.
 */
static bool parse_size(struct piece v, int64_t *bytes)
{
	size_t i = 0, nint = 0, nfrac = 0;
	int64_t ip = 0, frac = 0, scale = 1, unit_mib = 1024, mib;
	bool big = false;

	while (i < v.len && v.s[i] >= '0' && v.s[i] <= '9') {
		if (ip > (int64_t)100000000000LL)
			big = true;
		else
			ip = ip * 10 + (v.s[i] - '0');
		i++;
		nint++;
	}
	if (i < v.len && v.s[i] == '.') {
		i++;
		while (i < v.len && v.s[i] >= '0' && v.s[i] <= '9') {
			/* Nine digits are more than a MiB can tell apart. */
			if (nfrac < 9) {
				frac = frac * 10 + (v.s[i] - '0');
				scale *= 10;
			}
			i++;
			nfrac++;
		}
		if (nfrac == 0)
			return false;
	}
	if (nint == 0)
		return false;
	if (i < v.len) {
		switch (v.s[i] | 0x20) {
		case 'm':
			unit_mib = 1;
			break;
		case 'g':
			unit_mib = 1024;
			break;
		case 't':
			unit_mib = 1024 * 1024;
			break;
		default:
			return false;
		}
		i++;
		if (i < v.len && (v.s[i] | 0x20) == 'i')
			i++;
		if (i < v.len && (v.s[i] | 0x20) == 'b')
			i++;
		if (i != v.len)
			return false;
	}
	/* ip < 10^12 and unit_mib <= 2^20: the product fits in 63 bits. */
	mib = ip * unit_mib + (frac * unit_mib + scale - 1) / scale;
	if (big || mib > HF_VOLOPTS_MAX_SIZE / MIB)
		mib = HF_VOLOPTS_MAX_SIZE / MIB + 1;
	*bytes = mib * MIB;
	return true;
}

static bool parse_bool(struct piece v, bool *out)
{
	if (piece_is(v, "true"))
		*out = true;
	else if (piece_is(v, "false"))
		*out = false;
	else
		return false;
	return true;
}

/* A decimal 1..9 in one digit: all repl and min_sync can be. */
static bool parse_small(struct piece v, unsigned *out)
{
	if (v.len != 1 || v.s[0] < '1' || v.s[0] > '9')
		return false;
	*out = (unsigned)(v.s[0] - '0');
	return true;
}

enum opt_key {
	K_SIZE,
	K_REPL,
	K_SHARED,
	K_SECURE,
	K_MIN_SYNC,
	K_NODES,
	K_SECRET_KEY,
	K_FS,
	K_N
};

static const char *const key_names[K_N] = {
    "size", "repl", "shared", "secure", "min_sync", "nodes", "secret_key",
    "fs",
};

#define KEYS_ALLOWED "size, repl, shared, secure, secret_key, fs and min_sync"

int hf_spec_volopts_parse(const char *s, size_t len,
			  struct hf_spec_volopts *out,
			  struct hf_volopts_problems *problems)
{
	size_t seen_at[K_N] = {0};
	bool seen[K_N] = {false};
	size_t start = 0, end = len, errors0 = problems->errors;
	size_t len0 = problems->len;

	memset(out, 0, sizeof(*out));
	out->size_bytes = HF_VOLOPTS_DEFAULT_SIZE;
	out->repl = 1;
	if (!s)
		len = end = 0;
	/* Empty parts at the end are dropped, as the SDK's split drops them. */
	while (end > 0) {
		size_t k = end;

		while (k > 0 && s[k - 1] != ';')
			k--;
		if (trim(s, s + k, end - k).len != 0)
			break;
		if (k == 0) {
			end = 0;
			break;
		}
		end = k - 1;
	}
	while (start < end) {
		size_t stop = start, eq;
		struct piece part, key, val;
		int k = -1;
		char *ks, *vs;

		while (stop < end && s[stop] != ';')
			stop++;
		part = trim(s, s + start, stop - start);
		start = stop + 1;
		if (part.len == 0) {
			problem(problems, false, part.off,
				"an empty option (';' twice or first): "
				"driver-options is key=value;key=value");
			continue;
		}
		for (eq = 0; eq < part.len && part.s[eq] != '='; eq++)
			;
		key = trim(s, part.s, eq);
		if (eq == part.len) {
			ks = shown(key);
			problem(problems, false, key.off,
				"option '%s' has no value: driver-options is "
				"key=value;key=value",
				ks);
			free(ks);
			continue;
		}
		val = trim(s, part.s + eq + 1, part.len - eq - 1);
		if (key.len == 0) {
			problem(problems, false, part.off,
				"an option has no key before '='");
			continue;
		}
		for (int i = 0; i < K_N; i++)
			if (piece_is(key, key_names[i]))
				k = i;
		ks = shown(key);
		vs = shown(val);
		if (k < 0) {
			problem(problems, false, key.off,
				"unknown option '%s': holdfast volumes take "
				KEYS_ALLOWED,
				ks);
			goto next;
		}
		if (seen[k]) {
			problem(problems, false, key.off,
				"option '%s' is given twice", ks);
			goto next;
		}
		seen[k] = true;
		seen_at[k] = key.off;
		switch ((enum opt_key)k) {
		case K_SIZE:
			if (!parse_size(val, &out->size_bytes))
				problem(problems, false, key.off,
					"size must be a number of GiB "
					"(size=10) or a size with a unit M, G "
					"or T (512M, 1.5G, 2T; binary), not "
					"'%s'",
					vs);
			else if (out->size_bytes < HF_VOLOPTS_MIN_SIZE ||
				 out->size_bytes > HF_VOLOPTS_MAX_SIZE)
				problem(problems, false, key.off,
					"size must be at least 64M and at "
					"most 64T, not '%s'",
					vs);
			break;
		case K_REPL:
			if (!parse_small(val, &out->repl) ||
			    out->repl > HF_VOLOPTS_MAX_REPL) {
				out->repl = 1;
				problem(problems, false, key.off,
					"repl must be 1, 2 or 3, not '%s'", vs);
			}
			break;
		case K_SHARED:
			if (!parse_bool(val, &out->shared))
				problem(problems, false, key.off,
					"shared must be true or false, not "
					"'%s'",
					vs);
			break;
		case K_SECURE:
			if (!parse_bool(val, &out->secure))
				problem(problems, false, key.off,
					"secure must be true or false, not "
					"'%s'",
					vs);
			break;
		case K_MIN_SYNC:
			if (!parse_small(val, &out->min_sync)) {
				out->min_sync = 0;
				problem(problems, false, key.off,
					"min_sync must be a number from 1 to "
					"repl, not '%s'",
					vs);
			}
			break;
		case K_SECRET_KEY:
			if (val.len == 0 || val.len >= sizeof(out->secret_key) ||
			    val.s[0] == '.' || !name_chars(val))
				problem(problems, false, key.off,
					"secret_key names a key made with "
					"'holdfast credential create key NAME' "
					"(1-64 letters, digits, '-', '_' or "
					"'.'), not '%s'",
					vs);
			else
				memcpy(out->secret_key, val.s, val.len);
			break;
		case K_FS:
			if (piece_is(val, "xfs"))
				out->fs = HF_FS_XFS;
			else if (piece_is(val, "ext4"))
				out->fs = HF_FS_EXT4;
			else if (!piece_is(val, "auto"))
				problem(problems, false, key.off,
					"fs must be ext4, xfs or auto, not '%s'",
					vs);
			break;
		case K_NODES:
			/*
			 * The SDK's Portworx provider sets nodes=LocalNode
			 * over whatever the spec said; holdfast places
			 * replicas itself (docs/spec.md).
			 */
			problem(problems, true, key.off,
				"option 'nodes' is ignored: holdfast places "
				"a volume's replicas itself (the SDK "
				"replaced it with nodes=LocalNode)");
			break;
		case K_N:
			break;
		}
next:
		free(ks);
		free(vs);
	}
	if (out->fs == HF_FS_XFS && out->size_bytes < HF_VOLOPTS_MIN_XFS_SIZE)
		problem(problems, false, seen_at[K_FS],
			"fs=xfs needs size of at least 320M (mkfs.xfs makes "
			"none under 300 MB)");
	if (seen[K_SECRET_KEY] && !out->secure)
		problem(problems, false, seen_at[K_SECRET_KEY],
			"secret_key seals an encrypted volume's key: it needs "
			"secure=true");
	if (out->min_sync == 0)
		out->min_sync = out->repl > 1 ? out->repl - 1 : 1;
	else if (out->min_sync > out->repl)
		problem(problems, false, seen_at[K_MIN_SYNC],
			"min_sync must be from 1 to repl (%u), not '%u'",
			out->repl, out->min_sync);
	/*
	 * Problems in string order: the checks across options (secret_key,
	 * min_sync) came last. An insertion sort, stable: the ones at one
	 * offset keep their order.
	 */
	for (size_t k = len0 + 1; k < problems->len; k++)
		for (size_t i = k; i > len0; i--) {
			struct hf_volopts_problem *a = &problems->items[i - 1],
						  *b = &problems->items[i];
			struct hf_volopts_problem t;

			if (a->offset <= b->offset)
				break;
			t = *a;
			*a = *b;
			*b = t;
		}
	return problems->errors > errors0 ? HF_ESPEC : 0;
}

bool hf_spec_volume_driver_ok(const char *driver)
{
	return driver &&
	       (strcmp(driver, "holdfast") == 0 || strcmp(driver, "pxd") == 0);
}

char *hf_spec_external_volume_name(const char *service, const char *pod,
				   int64_t index,
				   const struct hf_spec_external_volume *ev)
{
	char *base, *name;
	struct hf_buf b = HF_BUF_INIT;

	/* The SDK takes an empty volume-name as given, too. */
	if (ev->volume_name)
		base = hf_xstrdup(ev->volume_name);
	else
		base = hf_xasprintf("%s-%s", service, pod);
	if (strstr(base, "__")) {
		free(base);
		return NULL;
	}
	for (const char *p = base; *p; p++) {
		if (*p == '/')
			hf_buf_adds(&b, "__");
		else
			hf_buf_addc(&b, *p);
	}
	free(base);
	if (!ev->opts.shared)
		hf_buf_addf(&b, "-%lld", (long long)index);
	name = hf_buf_detach(&b);
	return name;
}

bool hf_spec_s3_place_ok(const char *to)
{
	size_t n = to ? strlen(to) : 0;

	return n > 5 && n < 1024 && strncmp(to, "s3://", 5) == 0 &&
	       to[5] != '/' && to[n - 1] != '/' && !strchr(to, '?') &&
	       !strchr(to, ' ');
}
