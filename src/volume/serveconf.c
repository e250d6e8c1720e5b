/*
 * serveconf.c - serve.json (serveconf.h).
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "volume/serveconf.h"
#include "volume/volume.h"

#define MIN_SIZE (64LL << 20)

HF_PRINTF(3, 4)
static int fail(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return -1;
}

static bool id_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 64 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789-_") == n;
}

static bool keys_known(json_t *o, const char *const *keys, size_t n,
		       const char **bad)
{
	const char *key;
	json_t *val;

	json_object_foreach(o, key, val) {
		bool known = false;

		for (size_t i = 0; i < n; i++)
			known = known || strcmp(key, keys[i]) == 0;
		if (!known) {
			*bad = key;
			return false;
		}
	}
	return true;
}

/* "HOST:PORT", "HOST", "[V6]:PORT", "[V6]". */
static int parse_listen(char **hostp, int *portp, const char *v,
			const char *path, char *err, size_t n)
{
	const char *colon;
	char *end;
	long port = HF_VOLUME_DEFAULT_PORT;

	if (v[0] == '[') {
		const char *close = strchr(v, ']');

		if (!close || (close[1] && close[1] != ':'))
			return fail(err, n, "%s: \"listen\": a bracketed "
					    "address must be \"[ADDR]\" or "
					    "\"[ADDR]:PORT\"", path);
		*hostp = hf_xstrndup(v + 1, (size_t)(close - v - 1));
		colon = close[1] ? close + 1 : NULL;
	} else {
		colon = strrchr(v, ':');
		if (colon && strchr(v, ':') != colon)
			return fail(err, n, "%s: \"listen\": put an IPv6 "
					    "address in brackets", path);
		*hostp = colon ? hf_xstrndup(v, (size_t)(colon - v))
				: hf_xstrdup(v);
	}
	if (colon) {
		errno = 0;
		port = strtol(colon + 1, &end, 10);
		if (!colon[1] || *end || errno || port < 0 || port > 65535)
			return fail(err, n, "%s: \"listen\": the port must be "
					    "0-65535", path);
	}
	if (!*hostp[0]) {
		free(*hostp);
		*hostp = hf_xstrdup("0.0.0.0");
	}
	*portp = (int)port;
	return 0;
}

static int parse_volume(struct hf_serve_config *c, json_t *o, size_t i,
			const char *path, char *err, size_t n)
{
	static const char *const keys[] = {"id", "replica", "size", "key",
					   "name", "clone_from", "restore_from",
					   "standby", "group"};
	struct hf_serve_volume *v = &c->vols[i];
	json_t *id, *rid, *size, *key, *name, *cf;
	uint8_t k[HF_VOL_KEY_LEN];
	const char *bad;

	if (!json_is_object(o))
		return fail(err, n, "%s: volumes[%zu] is not an object", path,
			    i);
	if (!keys_known(o, keys, HF_ARRAY_LEN(keys), &bad))
		return fail(err, n, "%s: volumes[%zu]: unknown key \"%s\"",
			    path, i, bad);
	id = json_object_get(o, "id");
	rid = json_object_get(o, "replica");
	size = json_object_get(o, "size");
	key = json_object_get(o, "key");
	name = json_object_get(o, "name");
	if (json_object_get(o, "standby") &&
	    !json_is_boolean(json_object_get(o, "standby")))
		return fail(err, n, "%s: volumes[%zu]: \"standby\" must be "
				    "true or false", path, i);
	v->standby = json_is_true(json_object_get(o, "standby"));
	if (json_object_get(o, "group")) {
		const json_t *g = json_object_get(o, "group");

		if (!json_is_string(g) || !id_ok(json_string_value(g)) ||
		    !v->standby)
			return fail(err, n, "%s: volumes[%zu]: \"group\" must "
					    "be 1-64 letters, digits, '-' or "
					    "'_', on a standby",
				    path, i);
		v->group = hf_xstrdup(json_string_value(g));
	}
	if (!json_is_string(id) || !id_ok(json_string_value(id)) ||
	    !json_is_string(rid) || !id_ok(json_string_value(rid)))
		return fail(err, n, "%s: volumes[%zu]: \"id\" and \"replica\" "
				    "must be 1-64 letters, digits, '-' or '_'",
			    path, i);
	if (!json_is_integer(size) || json_integer_value(size) < MIN_SIZE ||
	    json_integer_value(size) % 4096 ||
	    (uint64_t)json_integer_value(size) > HF_VOL_SIZE_MAX)
		return fail(err, n, "%s: volumes[%zu]: \"size\" must be a "
				    "multiple of 4096 bytes of at least 64 MiB",
			    path, i);
	if (name && (!json_is_string(name) ||
		     !hf_vol_id_ok(json_string_value(name),
				   strlen(json_string_value(name)),
				   HF_VOL_NAME_MAX)))
		return fail(err, n, "%s: volumes[%zu]: \"name\" must be 1-128 "
				    "printable characters without spaces",
			    path, i);
	if (!json_is_string(key) ||
	    hf_vol_hex_decode(json_string_value(key), k, HF_VOL_KEY_LEN))
		return fail(err, n, "%s: volumes[%zu]: \"key\" must be %d hex "
				    "digits", path, i, 2 * HF_VOL_KEY_LEN);
	for (size_t j = 0; j < i; j++)
		if (!strcmp(c->vols[j].id, json_string_value(id)))
			return fail(err, n, "%s: volumes[%zu]: volume %s is "
					    "listed twice (a node holds one "
					    "replica of a volume)",
				    path, i, json_string_value(id));
	v->id = hf_xstrdup(json_string_value(id));
	v->replica = hf_xstrdup(json_string_value(rid));
	v->name = hf_xstrdup(name ? json_string_value(name)
				  : json_string_value(id));
	v->size = json_integer_value(size);
	memcpy(v->key, k, sizeof(k));
	explicit_bzero(k, sizeof(k));
	if ((cf = json_object_get(o, "clone_from"))) {
		static const char *const ckeys[] = {"id", "replica",
						    "snapshot"};
		const char *ci = json_string_value(json_object_get(cf, "id"));
		const char *cr =
		    json_string_value(json_object_get(cf, "replica"));
		const char *cs =
		    json_string_value(json_object_get(cf, "snapshot"));

		if (!json_is_object(cf) ||
		    !keys_known(cf, ckeys, HF_ARRAY_LEN(ckeys), &bad) ||
		    !ci || !id_ok(ci) || !cr || !id_ok(cr) || !cs ||
		    !id_ok(cs))
			return fail(err, n, "%s: volumes[%zu]: \"clone_from\" "
					    "must be {\"id\", \"replica\", "
					    "\"snapshot\"}, each 1-64 letters, "
					    "digits, '-' or '_'",
				    path, i);
		v->clone_id = hf_xstrdup(ci);
		v->clone_replica = hf_xstrdup(cr);
		v->clone_snap = hf_xstrdup(cs);
	}
	if ((cf = json_object_get(o, "restore_from"))) {
		static const char *const rkeys[] = {
		    "endpoint", "region",     "ca",	    "url",
		    "volume",	"backup",     "access_key", "secret_key"};

		if (!json_is_object(cf) ||
		    !keys_known(cf, rkeys, HF_ARRAY_LEN(rkeys), &bad))
			return fail(err, n, "%s: volumes[%zu]: \"restore_from\" "
					    "must be an object of %s",
				    path, i,
				    "endpoint, region, ca, url, volume, backup, "
				    "access_key and secret_key");
		for (size_t r = 0; r < HF_ARRAY_LEN(rkeys); r++) {
			const char *sv =
			    json_string_value(json_object_get(cf, rkeys[r]));

			if ((!sv && r != HF_RF_CA) || (sv && !*sv) ||
			    (sv && strlen(sv) > 1024))
				return fail(err, n, "%s: volumes[%zu]: "
						    "restore_from.%s must be "
						    "a string of 1-1024 bytes",
					    path, i, rkeys[r]);
			v->rf[r] = sv ? hf_xstrdup(sv) : NULL;
		}
	}
	return 0;
}

static int parse_dr(struct hf_serve_config *c, json_t *o, const char *path,
		    char *err, size_t n)
{
	static const char *const keys[] = {"listen", "tls_cert", "tls_key",
					   "tls_ca"};
	char **dst[] = {&c->dr_cert, &c->dr_key, &c->dr_ca};
	const char *bad;
	json_t *v;

	if (!json_is_object(o))
		return fail(err, n, "%s: \"dr\" must be an object", path);
	if (!keys_known(o, keys, HF_ARRAY_LEN(keys), &bad))
		return fail(err, n, "%s: \"dr\": unknown key \"%s\"", path,
			    bad);
	for (size_t i = 0; i < HF_ARRAY_LEN(keys); i++) {
		v = json_object_get(o, keys[i]);
		if (!json_is_string(v) || !json_string_value(v)[0])
			return fail(err, n, "%s: \"dr\": \"%s\" is needed (a "
					    "string)", path, keys[i]);
		if (i && json_string_value(v)[0] != '/')
			return fail(err, n, "%s: \"dr\": \"%s\" must be an "
					    "absolute path", path, keys[i]);
		if (i)
			*dst[i - 1] = hf_xstrdup(json_string_value(v));
	}
	return parse_listen(&c->dr_host, &c->dr_port,
			    json_string_value(json_object_get(o, "listen")), path,
			    err, n);
}

int hf_serve_config_parse(const char *text, size_t len, const char *path,
			  struct hf_serve_config *c, char *err, size_t n)
{
	static const char *const keys[] = {"pool", "listen", "volumes", "dr"};
	json_error_t je;
	json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je), *v;
	const char *bad;
	size_t count;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	if (!o || !json_is_object(o)) {
		if (o)
			fail(err, n, "%s: not a JSON object", path);
		else {
			/*
			 * jansson quotes the token it stopped at ("near
			 * '...'"): it may be part of a key, so it is cut.
			 */
			char *near = strstr(je.text, " near ");

			if (near)
				*near = 0;
			fail(err, n, "%s:%d:%d: %s", path, je.line, je.column,
			     je.text);
		}
		goto out;
	}
	if (!keys_known(o, keys, HF_ARRAY_LEN(keys), &bad)) {
		fail(err, n, "%s: unknown key \"%s\"", path, bad);
		goto out;
	}
	v = json_object_get(o, "pool");
	if (!json_is_string(v) || json_string_value(v)[0] != '/') {
		fail(err, n, "%s: \"pool\" must be an absolute path", path);
		goto out;
	}
	c->pool = hf_xstrdup(json_string_value(v));
	v = json_object_get(o, "listen");
	if (v && !json_is_string(v)) {
		fail(err, n, "%s: \"listen\" must be a string", path);
		goto out;
	}
	if (parse_listen(&c->host, &c->port, v ? json_string_value(v) : "0.0.0.0",
			 path, err, n))
		goto out;
	if ((v = json_object_get(o, "dr")) && parse_dr(c, v, path, err, n))
		goto out;
	v = json_object_get(o, "volumes");
	if (v && !json_is_array(v)) {
		fail(err, n, "%s: \"volumes\" must be an array", path);
		goto out;
	}
	count = v ? json_array_size(v) : 0;
	c->vols = hf_xcalloc(count ? count : 1, sizeof(*c->vols));
	for (size_t i = 0; i < count; i++) {
		/* Counted first: what a refused one holds is released too. */
		c->nvols = i + 1;
		if (parse_volume(c, json_array_get(v, i), i, path, err, n))
			goto out;
	}
	rc = 0;
out:
	json_decref(o);
	return rc;
}

void hf_serve_config_release(struct hf_serve_config *c)
{
	for (size_t i = 0; i < c->nvols; i++) {
		free(c->vols[i].id);
		free(c->vols[i].replica);
		free(c->vols[i].name);
		free(c->vols[i].clone_id);
		free(c->vols[i].clone_replica);
		free(c->vols[i].clone_snap);
		free(c->vols[i].group);
		for (size_t k = 0; k < HF_ARRAY_LEN(c->vols[i].rf); k++) {
			if (c->vols[i].rf[k])
				explicit_bzero(c->vols[i].rf[k],
					       strlen(c->vols[i].rf[k]));
			free(c->vols[i].rf[k]);
		}
		explicit_bzero(c->vols[i].key, sizeof(c->vols[i].key));
	}
	free(c->vols);
	free(c->pool);
	free(c->host);
	free(c->dr_host);
	free(c->dr_cert);
	free(c->dr_key);
	free(c->dr_ca);
	memset(c, 0, sizeof(*c));
}
