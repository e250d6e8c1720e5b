/*
 * creds.c - named credentials (`holdfast credential`, /v1/credentials):
 * what the server needs to reach an S3 store on an operator's behalf.
 * The secret key is kept in the store (as volume keys are) and never
 * shown back, logged or put in an event.
 */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "server/creds.h"
#include "server/ops.h"
#include "server/state.h"
#include "volume/crypt.h"

bool hf_cred_name_ok(const char *n)
{
	size_t len = n ? strlen(n) : 0;

	return len > 0 && len <= 64 && n[0] != '.' &&
	       strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789-_.") == len;
}

/* A credential as the API shows it: everything but the secret. */
static json_t *public_form(const json_t *rec)
{
	json_t *o = json_deep_copy(rec);
	const char *secret = json_object_get(o, "value") ? "value"
							 : "secret_key";

	json_object_del(o, secret);
	json_object_set_new(o, secret, json_string("(hidden)"));
	return o;
}

int hf_cred_sealing_key(struct hf_srv *s, const char *name, uint8_t *out,
			char **why)
{
	char *key;
	json_t *rec = NULL;
	int rc;

	*why = NULL;
	if (!name) {
		if (!s->opts.have_cluster_key) {
			*why = hf_xstrdup("this server has no cluster key "
					  "(--cluster-key-file)");
			return HF_EREFUSED;
		}
		memcpy(out, s->opts.cluster_key, HF_VOL_CLUSTER_KEY_LEN);
		return 0;
	}
	if (!hf_cred_name_ok(name)) {
		*why = hf_xasprintf("'%s' cannot name a key", name);
		return HF_EINVAL;
	}
	key = hf_state_key("/credentials/%s", name, NULL);
	rc = hf_state_get_record(s, key, &rec);
	free(key);
	if (rc == HF_ENOTFOUND) {
		*why = hf_xasprintf("no key %s (holdfast credential create key "
				    "%s --value-file FILE)",
				    name, name);
		return HF_ENOTFOUND;
	}
	if (rc) {
		*why = hf_xstrdup("the store cannot be read");
		return rc;
	}
	rc = 0;
	if (!json_is_string(json_object_get(rec, "type")) ||
	    strcmp(json_string_value(json_object_get(rec, "type")), "key") ||
	    hf_vol_cluster_key_parse(
		json_string_value(json_object_get(rec, "value"))
		    ? json_string_value(json_object_get(rec, "value"))
		    : "",
		out)) {
		*why = hf_xasprintf("credential %s is not a key", name);
		rc = HF_EINVAL;
	}
	json_decref(rec); /* jansson frees the text; the store's copy was zeroed */
	return rc;
}

int hf_cred_open_data_key(struct hf_srv *s, const char *key_name,
			  const char *id, const char *sealed, uint8_t *dk,
			  char **why)
{
	uint8_t k[HF_VOL_CLUSTER_KEY_LEN];
	int rc = hf_cred_sealing_key(s, key_name, k, why);

	if (rc)
		return rc;
	rc = sealed ? hf_vol_key_open(k, id, sealed, dk) : HF_EINVAL;
	explicit_bzero(k, sizeof(k));
	if (rc)
		*why = hf_xasprintf("the %s%s does not open the data key",
				    key_name ? "key " : "cluster key",
				    key_name ? key_name : "");
	return rc;
}

char *hf_cred_seal_data_key(struct hf_srv *s, const char *key_name,
			    const char *id, const uint8_t *dk, char **why)
{
	uint8_t k[HF_VOL_CLUSTER_KEY_LEN];
	char *sealed;

	if (hf_cred_sealing_key(s, key_name, k, why))
		return NULL;
	sealed = hf_vol_key_seal(k, id, dk);
	explicit_bzero(k, sizeof(k));
	if (!sealed)
		*why = hf_xstrdup("OpenSSL or the random source failed");
	return sealed;
}

int hf_cred_s3(struct hf_srv *s, const char *name, struct hf_cred *out,
	       char **why)
{
	char *key;
	json_t *rec = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	*why = NULL;
	if (!hf_cred_name_ok(name)) {
		*why = hf_xasprintf("'%s' cannot name a credential",
				    name ? name : "");
		return HF_EINVAL;
	}
	key = hf_state_key("/credentials/%s", name, NULL);
	rc = hf_state_get_record(s, key, &rec);
	free(key);
	if (rc) {
		*why = rc == HF_ENOTFOUND
			   ? hf_xasprintf("no credential %s (holdfast "
					  "credential create s3 %s ...)",
					  name, name)
			   : hf_xstrdup("the store cannot be read");
		return rc;
	}
	if (!json_is_string(json_object_get(rec, "endpoint")) ||
	    !json_is_string(json_object_get(rec, "access_key")) ||
	    !json_is_string(json_object_get(rec, "secret_key"))) {
		*why = hf_xasprintf("credential %s is not an S3 credential",
				    name);
		json_decref(rec);
		return HF_EINVAL;
	}
	out->endpoint = hf_xstrdup(json_string_value(json_object_get(rec,
								   "endpoint")));
	out->region = hf_xstrdup(
	    json_string_value(json_object_get(rec, "region"))
		? json_string_value(json_object_get(rec, "region"))
		: "us-east-1");
	out->access_key = hf_xstrdup(
	    json_string_value(json_object_get(rec, "access_key")));
	out->secret_key = hf_xstrdup(
	    json_string_value(json_object_get(rec, "secret_key")));
	if (json_is_string(json_object_get(rec, "ca")))
		out->ca = hf_xstrdup(json_string_value(json_object_get(rec, "ca")));
	json_decref(rec);
	return 0;
}

void hf_cred_release(struct hf_cred *c)
{
	free(c->endpoint);
	free(c->region);
	free(c->access_key);
	if (c->secret_key)
		explicit_bzero(c->secret_key, strlen(c->secret_key));
	free(c->secret_key);
	free(c->ca);
	memset(c, 0, sizeof(*c));
}

void hf_creds_list_handler(void *ctx, const struct hf_http_req *req,
			   struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	json_t *out = NULL;
	int rc = hf_state_list_shown(s, "/credentials/", public_form, &out);

	(void)req;
	if (rc)
		hf_http_error(resp, rc, "the store cannot be read");
	else
		hf_http_json(resp, 200, json_pack("{s:o}", "credentials", out));
}

void hf_creds_create_handler(void *ctx, const struct hf_http_req *req,
			     struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	struct hf_ops_err err = {0};
	json_t *body = NULL, *rec;
	const char *type, *name, *endpoint, *region, *ak, *sk, *ca;
	int rc;

	if (hf_http_body_json(req, resp, &body))
		return;
	type = json_string_value(json_object_get(body, "type"));
	name = json_string_value(json_object_get(body, "name"));
	endpoint = json_string_value(json_object_get(body, "endpoint"));
	region = json_string_value(json_object_get(body, "region"));
	ak = json_string_value(json_object_get(body, "access_key"));
	sk = json_string_value(json_object_get(body, "secret_key"));
	ca = json_string_value(json_object_get(body, "ca"));
	if (type && strcmp(type, "key") == 0 && hf_cred_name_ok(name)) {
		const char *value =
		    json_string_value(json_object_get(body, "value"));
		uint8_t k[HF_VOL_CLUSTER_KEY_LEN];

		if (!value || hf_vol_cluster_key_parse(value, k)) {
			hf_http_error(resp, HF_EINVAL,
				      "\"value\" is the key: 64 hex digits "
				      "(openssl rand -hex 32)");
			goto out;
		}
		explicit_bzero(k, sizeof(k));
		rec = json_pack("{s:s, s:s, s:s, s:I}", "name", name, "type",
				"key", "value", value, "created",
				(json_int_t)hf_now_ms());
		rc = hf_ops_credential_create(s, name, rec, &err);
		if (rc) {
			hf_http_error(resp, rc, "%s", err.why ? err.why : "");
		} else {
			hf_log("credential %s (key) created", name);
			hf_http_json(resp, 201, public_form(rec));
		}
		json_decref(rec);
	} else if (!type || strcmp(type, "s3") != 0) {
		hf_http_error(resp, HF_EINVAL,
			      "\"type\" must be \"s3\" (an S3 store's keys) "
			      "or \"key\" (a key that seals encrypted "
			      "volumes' keys)");
	} else if (!hf_cred_name_ok(name)) {
		hf_http_error(resp, HF_EINVAL,
			      "\"name\" must be 1-64 letters, digits, '-', '_' "
			      "or '.', not starting with '.'");
	} else if (!endpoint || (strncmp(endpoint, "http://", 7) != 0 &&
				 strncmp(endpoint, "https://", 8) != 0) ||
		   strchr(endpoint, '@') || strchr(endpoint, '?')) {
		hf_http_error(resp, HF_EINVAL,
			      "\"endpoint\" must be an http:// or https:// URL "
			      "without credentials or a query");
	} else if (!ak || !*ak || !sk || !*sk || strlen(ak) > 256 ||
		   strlen(sk) > 256) {
		hf_http_error(resp, HF_EINVAL,
			      "\"access_key\" and \"secret_key\" are required "
			      "(at most 256 characters)");
	} else if ((region && (!*region || strlen(region) > 64)) ||
		   (ca && ca[0] != '/')) {
		hf_http_error(resp, HF_EINVAL,
			      "\"region\" is a region name; \"ca\" an absolute "
			      "path of a PEM file on the nodes");
	} else {
		rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "name",
				name, "type", "s3", "endpoint", endpoint,
				"region", region ? region : "us-east-1",
				"access_key", ak, "secret_key", sk, "created",
				(json_int_t)hf_now_ms());
		if (ca)
			json_object_set_new(rec, "ca", json_string(ca));
		rc = hf_ops_credential_create(s, name, rec, &err);
		if (rc) {
			hf_http_error(resp, rc, "%s", err.why ? err.why : "");
		} else {
			hf_log("credential %s (s3, %s) created", name, endpoint);
			hf_http_json(resp, 201, public_form(rec));
		}
		json_decref(rec);
	}
out:
	hf_ops_err_release(&err);
	json_decref(body); /* the secret goes with it */
}

void hf_creds_delete_handler(void *ctx, const struct hf_http_req *req,
			     struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *name = hf_kvlist_get(&req->params, "name");
	struct hf_ops_err err = {0};
	int rc = hf_cred_name_ok(name)
		     ? hf_ops_credential_delete(s, name, &err)
		     : HF_ENOTFOUND;

	if (rc)
		hf_http_error(resp, rc, "%s",
			      err.why ? err.why : "no such credential");
	else
		hf_http_json(resp, 200,
			     json_pack("{s:s, s:b}", "name", name, "deleted",
				       1));
	if (!rc)
		hf_log("credential %s deleted", name);
	hf_ops_err_release(&err);
}
