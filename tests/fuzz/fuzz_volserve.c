/*
 * fuzz_volserve.c - libFuzzer target for holdfast-volume serve's settings
 * (src/volume/serveconf.h).
 *
 * Every input is parsed as serve.json and the contract is checked: a
 * failure has a sentence naming the file; a success has an absolute pool,
 * a host, a port in range, and volumes whose ids, sizes and names follow
 * the rules, with distinct ids; a second parse gives the same answer; the
 * error never holds a key the input gives.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "volume/serveconf.h"
#include "volume/volume.h"

static bool ident(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 64 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789-_") == n;
}

/* How many times k occurs in the input's bytes. */
static int occurs(const uint8_t *data, size_t size, const char *k)
{
	size_t n = strlen(k);
	int count = 0;

	for (size_t i = 0; n && i + n <= size; i++)
		count += !memcmp(data + i, k, n);
	return count;
}

/*
 * True when err holds the text of a "key" the input's volumes give: one
 * of at least 8 bytes that the input holds nowhere else (not in an id, a
 * name or an unknown key, which a message may quote).
 */
static bool leaks_key(const char *err, const uint8_t *data, size_t size)
{
	json_t *o = json_loadb((const char *)data, size, 0, NULL);
	json_t *vols = json_object_get(o, "volumes"), *v;
	size_t i;
	bool leak = false;

	json_array_foreach(vols, i, v) {
		const char *k = json_string_value(json_object_get(v, "key"));

		if (k && strlen(k) >= 8 && occurs(data, size, k) == 1 &&
		    strstr(err, k))
			leak = true;
	}
	json_decref(o);
	return leak;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hf_serve_config a, b;
	char err[512], err2[512];
	int ra, rb;

	ra = hf_serve_config_parse((const char *)data, size, "serve.json", &a,
				   err, sizeof(err));
	rb = hf_serve_config_parse((const char *)data, size, "serve.json", &b,
				   err2, sizeof(err2));
	if (ra != rb || (ra && strcmp(err, err2)))
		abort();
	if (ra) {
		if (strncmp(err, "serve.json", 10))
			abort();
		if (leaks_key(err, data, size))
			abort();
	} else {
		if (!a.pool || a.pool[0] != '/' || !a.host || !a.host[0] ||
		    a.port < 0 || a.port > 65535)
			abort();
		for (size_t i = 0; i < a.nvols; i++) {
			const struct hf_serve_volume *v = &a.vols[i];

			if (!ident(v->id) || !ident(v->replica) ||
			    !hf_vol_id_ok(v->name, strlen(v->name),
					  HF_VOL_NAME_MAX) ||
			    v->size < (64 << 20) || v->size % 4096 ||
			    (uint64_t)v->size > HF_VOL_SIZE_MAX)
				abort();
			for (size_t j = 0; j < i; j++)
				if (!strcmp(a.vols[j].id, v->id))
					abort();
			if (b.nvols != a.nvols ||
			    memcmp(b.vols[i].key, v->key, sizeof(v->key)))
				abort();
		}
	}
	hf_serve_config_release(&a);
	hf_serve_config_release(&b);
	return 0;
}
