/*
 * fuzz_shimjson.c - libFuzzer target for the shim's own JSON reader and
 * writer (shim/json.h), checked against jansson, which the agent uses on
 * the other side of launch.json and status.json.
 *
 * Both readers get every input (jansson told to refuse duplicate keys, as
 * the shim does). What one accepts the other must accept with the same
 * values, except that the shim refuses nesting deeper than
 * HF_JSON_MAX_DEPTH, where jansson's limit is higher, and a NUL byte
 * after the value, where jansson stops reading. A refusal must come
 * with a message that says where. Every string the shim read must come
 * back the same through its writer, in both readers.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "shim/json.h"

static void same(const struct hf_json *v, json_t *j)
{
	switch (v->type) {
	case HF_JSON_NULL:
		if (!json_is_null(j))
			abort();
		break;
	case HF_JSON_BOOL:
		if (!json_is_boolean(j) || json_is_true(j) != v->b)
			abort();
		break;
	case HF_JSON_INT:
		if (!json_is_integer(j) || json_integer_value(j) != v->i)
			abort();
		break;
	case HF_JSON_NUMBER:
		if (!json_is_real(j) || json_real_value(j) != v->d)
			abort();
		break;
	case HF_JSON_STRING:
		if (!json_is_string(j) || json_string_length(j) != strlen(v->s) ||
		    strcmp(json_string_value(j), v->s) != 0)
			abort();
		break;
	case HF_JSON_ARRAY:
		if (!json_is_array(j) || json_array_size(j) != v->n)
			abort();
		for (size_t i = 0; i < v->n; i++)
			same(&v->items[i], json_array_get(j, i));
		break;
	case HF_JSON_OBJECT:
		if (!json_is_object(j) || json_object_size(j) != v->n)
			abort();
		for (size_t i = 0; i < v->n; i++) {
			json_t *m = json_object_get(j, v->keys[i]);

			if (!m || hf_json_get(v, v->keys[i]) != &v->items[i])
				abort();
			same(&v->items[i], m);
		}
		break;
	}
}

/* The writer's text for orig reads back as orig, in both readers. */
static void string_round_trip(const char *orig)
{
	struct hf_jw w;
	struct hf_json *back;
	json_t *j;
	char *text, *err;

	hf_jw_init(&w);
	hf_jw_open(&w, '[');
	hf_jw_str(&w, orig);
	hf_jw_close(&w, ']');
	text = hf_jw_detach(&w);
	if (hf_json_parse(text, strlen(text), &back, &err) ||
	    strcmp(back->items[0].s, orig) != 0)
		abort();
	j = json_loads(text, 0, NULL);
	if (!j || strcmp(json_string_value(json_array_get(j, 0)), orig) != 0)
		abort();
	json_decref(j);
	hf_json_free(back);
	free(text);
}

/* Every string of v, keys included. */
static void strings_round_trip(const struct hf_json *v)
{
	if (v->type == HF_JSON_STRING)
		string_round_trip(v->s);
	for (size_t i = 0; i < v->n; i++) {
		if (v->type == HF_JSON_OBJECT)
			string_round_trip(v->keys[i]);
		strings_round_trip(&v->items[i]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hf_json *v = NULL;
	char *err = NULL;
	json_t *j = json_loadb((const char *)data, size,
			       JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
	int rc = hf_json_parse((const char *)data, size, &v, &err);

	if (rc == 0) {
		if (err || !v || !j)
			abort();
		same(v, j);
		strings_round_trip(v);
	} else {
		if (rc != HF_EPARSE || v || !err || strncmp(err, "line ", 5))
			abort();
		if (j && !strstr(err, "nested deeper") &&
		    !memchr(data, '\0', size))
			abort();
	}
	free(err);
	hf_json_free(v);
	json_decref(j);
	return 0;
}
