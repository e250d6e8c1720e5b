/*
 * json.h - the shim's own JSON: a strict reader for launch.json and the
 * control socket's requests, and a writer for status.json and replies.
 *
 * The shim links only libc (it runs once per task, so every library it
 * loads is paid for a thousand times on a busy node); the agent keeps
 * jansson. Both must read and write the same documents: the formats are
 * shim.h's, and tests/fuzz/fuzz_shimjson.c checks this reader against
 * jansson.
 *
 * THE READER accepts RFC 8259 JSON and refuses, with a message that says
 * where (line and column, 1-based, in bytes) and why:
 *   - anything but whitespace after the value ("trailing garbage");
 *   - a key given twice in one object;
 *   - "\u0000" in a string (every string is a C string, so a NUL would
 *     cut it short silently), raw control characters, bad escapes, lone
 *     UTF-16 surrogates, and bytes that are not UTF-8;
 *   - nesting deeper than HF_JSON_MAX_DEPTH arrays and objects;
 *   - an integer outside int64_t (a number with a fraction or an exponent
 *     is a double and may be anything finite).
 * Pure: no I/O, no globals; allocation failure aborts (common/util.h).
 */
#ifndef HF_SHIM_JSON_H
#define HF_SHIM_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define HF_JSON_MAX_DEPTH 32

enum hf_json_type {
	HF_JSON_NULL,
	HF_JSON_BOOL,
	HF_JSON_INT,    /* written without fraction or exponent */
	HF_JSON_NUMBER, /* any other number */
	HF_JSON_STRING,
	HF_JSON_ARRAY,
	HF_JSON_OBJECT,
};

/* One value. Arrays and objects own their members; objects keep order. */
struct hf_json {
	enum hf_json_type type;
	bool b;
	int64_t i;      /* HF_JSON_INT */
	double d;       /* HF_JSON_INT and HF_JSON_NUMBER */
	char *s;        /* HF_JSON_STRING: NUL-terminated, no NUL inside */
	size_t n;       /* members of an array or object */
	struct hf_json *items;
	char **keys;    /* HF_JSON_OBJECT: keys[k] names items[k] */
};

/*
 * Parses text[0..len) into *out (the caller frees it with hf_json_free).
 * Returns 0, or HF_EPARSE with *err set to "line L, column C: why" (the
 * caller frees it) and *out NULL.
 */
int hf_json_parse(const char *text, size_t len, struct hf_json **out,
		  char **err);

void hf_json_free(struct hf_json *v);

/* Object member by key; NULL when v is not an object or has no such key. */
const struct hf_json *hf_json_get(const struct hf_json *v, const char *key);

/* NULL for a missing value (a NULL v) or JSON null. */
bool hf_json_is_null(const struct hf_json *v);
/* An integer or any other number. */
bool hf_json_is_number(const struct hf_json *v);
/* The string, or NULL when v is not a string. */
const char *hf_json_str(const struct hf_json *v);

/*
 * THE WRITER appends compact JSON to a buffer. Call the value functions in
 * document order; hf_jw_key before each member of an object. Separators
 * are the writer's business. Strings are escaped ('"', '\', control
 * characters; bytes that are not UTF-8 become U+FFFD), so whatever a
 * sentence holds, the line stays one valid JSON value.
 */
struct hf_jw {
	struct hf_buf b;
	bool comma;     /* a value was written at this level */
};

void hf_jw_init(struct hf_jw *w);
void hf_jw_open(struct hf_jw *w, char bracket);   /* '{' or '[' */
void hf_jw_close(struct hf_jw *w, char bracket);  /* '}' or ']' */
void hf_jw_key(struct hf_jw *w, const char *key);
void hf_jw_str(struct hf_jw *w, const char *s);   /* NULL writes null */
void hf_jw_int(struct hf_jw *w, int64_t v);
void hf_jw_null(struct hf_jw *w);
void hf_jw_bool(struct hf_jw *w, bool v);
/* Hands the text to the caller and resets the writer. */
char *hf_jw_detach(struct hf_jw *w);

#endif
