/*
 * remotes.c - remote clusters and their links (remotes.h).
 */
#include <curl/curl.h>
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/ticker.h"
#include "common/err.h"
#include "common/log.h"
#include "common/version.h"
#include "server/creds.h"
#include "server/events.h"
#include "server/metrics.h"
#include "server/ops.h"
#include "server/remotes.h"
#include "server/state.h"

/* Links are checked this often, each within LINK_TIMEOUT_MS. */
#define LINK_EVERY_MS 5000
#define LINK_TIMEOUT_MS 5000
/* A PEM (CA bundle, certificate, key) is at most this long. */
#define PEM_MAX (256 * 1024)

/* What the leader last saw of one remote's link (memory only). */
struct link {
	char *name;
	int state;        /* 0 unknown, 1 up, -1 down */
	char *error;      /* down: why */
	char *cluster;    /* up: the remote's cluster id */
	char *as;         /* up: the name it knows this cluster by (its CN) */
	double rtt;       /* seconds, the last check's */
	int64_t since;    /* unix ms: the state began */
	int64_t checked;  /* unix ms: the last check */
	bool seen;
};

static HF_VEC(struct link) links;
static pthread_mutex_t links_mu = PTHREAD_MUTEX_INITIALIZER;

static void link_release(struct link *l)
{
	free(l->name);
	free(l->error);
	free(l->cluster);
	free(l->as);
}

static struct link *link_of(const char *name)
{
	struct link *l;

	for (size_t i = 0; i < links.len; i++)
		if (!strcmp(links.items[i].name, name))
			return &links.items[i];
	l = HF_VEC_PUSH(&links);
	memset(l, 0, sizeof(*l));
	l->name = hf_xstrdup(name);
	return l;
}

/* ---- the record -------------------------------------------------------- */

static bool name_ok(const char *n)
{
	return hf_cred_name_ok(n);
}

static bool is_pem(const char *s, const char *what)
{
	char *begin = hf_xasprintf("-----BEGIN %s", what);
	bool ok = s && strlen(s) <= PEM_MAX && strstr(s, begin);

	free(begin);
	return ok;
}

/*
 * Whether cert and key (PEM) are a pair: the key is the certificate's.
 * why on failure. The certificate's common name into cn (the name the
 * remote will know this cluster by).
 */
static bool pair_ok(const char *cert, const char *key, char *cn, size_t n,
		    char **why)
{
	BIO *cb = BIO_new_mem_buf(cert, -1), *kb = BIO_new_mem_buf(key, -1);
	X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
	EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
	bool ok = false;

	*cn = '\0';
	if (!x)
		*why = hf_xstrdup("\"cert\" is not a PEM certificate");
	else if (!k)
		*why = hf_xstrdup("\"key\" is not a PEM private key (without a "
				  "passphrase)");
	else if (X509_check_private_key(x, k) != 1)
		*why = hf_xstrdup("\"key\" is not the private key of \"cert\"");
	else if (X509_NAME_get_text_by_NID(X509_get_subject_name(x),
					   NID_commonName, cn, (int)n) <= 0)
		*why = hf_xstrdup("\"cert\" has no common name (CN): the remote "
				  "knows this cluster by it");
	else
		ok = true;
	X509_free(x);
	EVP_PKEY_free(k);
	BIO_free(cb);
	BIO_free(kb);
	return ok;
}

/* The record as shown: no key; the link's state from memory. */
static json_t *public_form(const json_t *rec)
{
	const char *name = json_string_value(json_object_get(rec, "name"));
	json_t *o = json_pack("{s:s?, s:s?, s:s?, s:O?}", "name", name, "url",
			      json_string_value(json_object_get(rec, "url")),
			      "as",
			      json_string_value(json_object_get(rec, "as")),
			      "added", json_object_get(rec, "added"));
	json_t *l = json_object();
	struct link *k = NULL;

	pthread_mutex_lock(&links_mu);
	for (size_t i = 0; name && i < links.len; i++)
		if (!strcmp(links.items[i].name, name))
			k = &links.items[i];
	json_object_set_new(l, "state",
			    json_string(!k || !k->state ? "unknown"
					: k->state > 0	   ? "up"
							   : "down"));
	if (k && k->state) {
		json_object_set_new(l, "since", json_integer(k->since));
		json_object_set_new(l, "checked_at", json_integer(k->checked));
	}
	if (k && k->state > 0) {
		json_object_set_new(l, "cluster", json_string(k->cluster));
		json_object_set_new(l, "rtt_ms", json_real(k->rtt * 1000));
	}
	if (k && k->state < 0)
		json_object_set_new(l, "error", json_string(k->error));
	pthread_mutex_unlock(&links_mu);
	json_object_set_new(o, "link", l);
	return o;
}

void hf_remotes_list_handler(void *ctx, const struct hf_http_req *req,
			     struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	json_t *out = NULL;
	int rc = hf_state_list_shown(s, "/remotes/", public_form, &out);

	(void)req;
	if (rc)
		hf_http_error(resp, rc, "the store cannot be read");
	else
		hf_http_json(resp, 200, json_pack("{s:o}", "remotes", out));
}

void hf_remotes_get_handler(void *ctx, const struct hf_http_req *req,
			    struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *name = hf_kvlist_get(&req->params, "name");
	char *key;
	json_t *rec = NULL;
	int rc;

	if (!name_ok(name)) {
		hf_http_error(resp, HF_ENOTFOUND, "no remote cluster '%s'",
			      name ? name : "");
		return;
	}
	key = hf_state_key("/remotes/%s", name, NULL);
	hf_state_lock(s);
	rc = hf_state_get_record(s, key, &rec);
	hf_state_unlock(s);
	free(key);
	if (rc)
		hf_http_error(resp, rc,
			      rc == HF_ENOTFOUND ? "no remote cluster '%s'"
						 : "the store cannot be read (%s)",
			      name);
	else
		hf_http_json(resp, 200, public_form(rec));
	json_decref(rec);
}

void hf_remotes_add_handler(void *ctx, const struct hf_http_req *req,
			    struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	struct hf_ops_err err = {0};
	json_t *body = NULL, *rec;
	const char *name, *url, *ca, *cert, *key;
	char cn[256], *why = NULL;
	int rc;

	if (hf_http_body_json(req, resp, &body))
		return;
	name = json_string_value(json_object_get(body, "name"));
	url = json_string_value(json_object_get(body, "url"));
	ca = json_string_value(json_object_get(body, "ca"));
	cert = json_string_value(json_object_get(body, "cert"));
	key = json_string_value(json_object_get(body, "key"));
	if (!json_is_object(body)) {
		hf_http_error(resp, HF_EINVAL,
			      "the body must be a JSON object: name, url, ca, "
			      "cert and key");
	} else if (!name_ok(name)) {
		hf_http_error(resp, HF_EINVAL,
			      "\"name\" must be 1-64 letters, digits, '-', '_' "
			      "or '.', not starting with '.'");
	} else if (!url || strncmp(url, "https://", 8) != 0 || !url[8] ||
		   strchr(url, '@') || strchr(url, '?') || strlen(url) > 1024) {
		hf_http_error(resp, HF_EINVAL,
			      "\"url\" must be the remote's API as an https:// "
			      "URL (links between sites are TLS), without "
			      "credentials or a query");
	} else if (!is_pem(ca, "CERTIFICATE")) {
		hf_http_error(resp, HF_EINVAL,
			      "\"ca\" must be the PEM of the CA that signed the "
			      "remote's server certificate");
	} else if (!is_pem(cert, "CERTIFICATE")) {
		hf_http_error(resp, HF_EINVAL,
			      "\"cert\" must be the PEM of this cluster's "
			      "client certificate");
	} else if (!is_pem(key, "")) {
		hf_http_error(resp, HF_EINVAL,
			      "\"key\" must be the PEM of the private key of "
			      "\"cert\"");
	} else if (!pair_ok(cert, key, cn, sizeof(cn), &why)) {
		hf_http_error(resp, HF_EINVAL, "%s", why);
	} else {
		rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "name",
				name, "url", url, "ca", ca, "cert", cert, "key",
				key, "as", cn, "added",
				(json_int_t)hf_now_ms());
		rc = hf_ops_remote_add(s, name, rec, &err);
		if (rc) {
			hf_http_error(resp, rc, "%s", err.why ? err.why : "");
		} else {
			hf_log("remote cluster %s added (%s, as %s)", name, url,
			       cn);
			hf_http_json(resp, 201, public_form(rec));
		}
		/* The key is in the store only. */
		json_object_del(rec, "key");
		json_decref(rec);
	}
	hf_ops_err_release(&err);
	free(why);
	if (body) {
		json_object_del(body, "key");
		json_decref(body);
	}
}

void hf_remotes_delete_handler(void *ctx, const struct hf_http_req *req,
			       struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *name = hf_kvlist_get(&req->params, "name");
	struct hf_ops_err err = {0};
	int rc = name_ok(name) ? hf_ops_remote_remove(s, name, &err)
			       : HF_ENOTFOUND;

	if (rc) {
		hf_http_error(resp, rc, "%s",
			      err.why ? err.why : "no such remote cluster");
	} else {
		hf_log("remote cluster %s removed", name);
		hf_http_json(resp, 200,
			     json_pack("{s:s, s:b}", "name", name, "removed", 1));
	}
	hf_ops_err_release(&err);
}

void hf_dr_hello_handler(void *ctx, const struct hf_http_req *req,
			 struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	char *cluster;

	hf_state_lock(s);
	cluster = hf_xstrdup(s->cluster_id ? s->cluster_id : "");
	hf_state_unlock(s);
	hf_http_json(resp, 200,
		     json_pack("{s:s, s:s, s:s, s:I}", "cluster", cluster,
			       "remote", req->principal ? req->principal : "",
			       "version", HF_VERSION, "time",
			       (json_int_t)hf_now_ms()));
	free(cluster);
}

/* ---- the links --------------------------------------------------------- */

struct probe {
	char *name, *url, *ca, *cert, *key;
};

static size_t collect_body(char *ptr, size_t size, size_t n, void *arg)
{
	struct hf_buf *b = arg;

	if (b->len + size * n > 64 * 1024)
		return 0;
	hf_buf_add(b, ptr, size * n);
	return size * n;
}

/*
 * method <url><path> with this cluster's certificate, body (may be NULL)
 * as JSON. 0 with *status and *out (the answer as JSON, or NULL), or -1
 * with *why when no HTTP answer came.
 */
static int call(const struct probe *p, const char *method, const char *path,
		const json_t *body, long *status, json_t **out, double *rtt,
		char **why)
{
	CURL *h = curl_easy_init();
	struct curl_blob ca = {(void *)p->ca, strlen(p->ca), CURL_BLOB_COPY};
	struct curl_blob cert = {(void *)p->cert, strlen(p->cert),
				 CURL_BLOB_COPY};
	struct curl_blob key = {(void *)p->key, strlen(p->key), CURL_BLOB_COPY};
	struct hf_buf got = HF_BUF_INIT;
	struct curl_slist *hdrs = NULL;
	char errbuf[CURL_ERROR_SIZE] = "", *url, *text = NULL;
	CURLcode cc;
	int rc = -1;

	*out = NULL;
	*status = 0;
	if (!h) {
		*why = hf_xstrdup("cannot create a libcurl handle");
		return -1;
	}
	url = hf_xasprintf("%.*s%s", (int)(strlen(p->url) -
					   (p->url[strlen(p->url) - 1] == '/')),
			   p->url, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca);
	curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cert);
	curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
	curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &key);
	curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)LINK_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &got);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(text));
	}
	cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		*why = hf_xasprintf("%s: %s", curl_easy_strerror(cc),
				    errbuf[0] ? errbuf : "no detail");
	} else {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
		if (rtt)
			curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, rtt);
		*out = json_loadb(hf_buf_str(&got), got.len, 0, NULL);
		rc = 0;
	}
	free(url);
	free(text);
	curl_slist_free_all(hdrs);
	hf_buf_release(&got);
	curl_easy_cleanup(h);
	return rc;
}

/* GET <url>/v1/dr/hello with this cluster's certificate. */
static int hello(const struct probe *p, json_t **out, double *rtt, char **why)
{
	long status = 0;
	json_t *j = NULL;

	if (call(p, "GET", "/v1/dr/hello", NULL, &status, &j, rtt, why))
		return -1;
	if (status != 200) {
		const char *m = json_string_value(json_object_get(j, "message"));

		*why = hf_xasprintf("the remote answered %ld: %s", status,
				    m ? m : "not a holdfast server");
	} else if (!json_is_string(json_object_get(j, "cluster"))) {
		*why = hf_xstrdup("the remote's answer is not a holdfast "
				  "server's");
	} else {
		*out = j;
		return 0;
	}
	json_decref(j);
	return -1;
}

static void probe_release(struct probe *p)
{
	free(p->name);
	free(p->url);
	free(p->ca);
	free(p->cert);
	if (p->key)
		explicit_bzero(p->key, strlen(p->key));
	free(p->key);
}

static char *dup_str(const json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));

	return v ? hf_xstrdup(v) : NULL;
}

int hf_remotes_call(struct hf_srv *s, const char *remote, const char *method,
		    const char *path, const json_t *body, long *status,
		    json_t **out, char **why)
{
	char *key = hf_state_key("/remotes/%s", remote, NULL);
	struct probe p = {0};
	json_t *rec = NULL;
	int rc;

	*out = NULL;
	*status = 0;
	hf_state_lock(s);
	rc = hf_state_get_record(s, key, &rec);
	hf_state_unlock(s);
	free(key);
	if (rc) {
		*why = rc == HF_ENOTFOUND
			   ? hf_xasprintf("no remote cluster '%s'", remote)
			   : hf_xstrdup("the store cannot be read");
		json_decref(rec);
		return -1;
	}
	p.url = dup_str(rec, "url");
	p.ca = dup_str(rec, "ca");
	p.cert = dup_str(rec, "cert");
	p.key = dup_str(rec, "key");
	json_decref(rec);
	rc = p.url && p.ca && p.cert && p.key
		 ? call(&p, method, path, body, status, out, NULL, why)
		 : (*why = hf_xasprintf("remote cluster %s's record is "
					"incomplete", remote),
		    -1);
	probe_release(&p);
	return rc;
}

int hf_remotes_tls(struct hf_srv *s, const char *remote, char **ca,
		   char **cert, char **key)
{
	char *k = hf_state_key("/remotes/%s", remote, NULL);
	json_t *rec = NULL;
	int rc;

	*ca = *cert = *key = NULL;
	hf_state_lock(s);
	rc = hf_state_get_record(s, k, &rec);
	hf_state_unlock(s);
	free(k);
	if (!rc) {
		*ca = dup_str(rec, "ca");
		*cert = dup_str(rec, "cert");
		*key = dup_str(rec, "key");
		if (!*ca || !*cert || !*key)
			rc = HF_ENOTFOUND;
	}
	json_decref(rec);
	return rc;
}

static struct hf_ticker links_ticker = HF_TICKER_INIT;

static void check_links(struct hf_srv *s)
{
	HF_VEC(struct probe) ps = {0};
	json_t *all = NULL, *e;
	size_t i;

	hf_state_lock(s);
	if (!s->leading || hf_state_list_records(s, "/remotes/", &all)) {
		hf_state_unlock(s);
		json_decref(all);
		return;
	}
	hf_state_unlock(s);
	json_array_foreach(all, i, e) {
		struct probe *p = HF_VEC_PUSH(&ps);

		p->name = dup_str(e, "name");
		p->url = dup_str(e, "url");
		p->ca = dup_str(e, "ca");
		p->cert = dup_str(e, "cert");
		p->key = dup_str(e, "key");
		if (!p->name || !p->url || !p->ca || !p->cert || !p->key) {
			probe_release(p);
			ps.len--;
		}
	}
	json_decref(all);
	pthread_mutex_lock(&links_mu);
	for (i = 0; i < links.len; i++)
		links.items[i].seen = false;
	pthread_mutex_unlock(&links_mu);
	for (i = 0; i < ps.len && !hf_ticker_stopping(&links_ticker); i++) {
		const struct probe *p = &ps.items[i];
		json_t *out = NULL;
		double rtt = 0;
		char *why = NULL, *said = NULL;
		int was, now_state;
		struct link *l;

		now_state = hello(p, &out, &rtt, &why) == 0 ? 1 : -1;
		pthread_mutex_lock(&links_mu);
		l = link_of(p->name);
		l->seen = true;
		was = l->state;
		l->checked = hf_now_ms();
		if (was != now_state)
			l->since = l->checked;
		l->state = now_state;
		free(l->error);
		l->error = why;
		free(l->cluster);
		l->cluster = dup_str(out, "cluster");
		free(l->as);
		l->as = dup_str(out, "remote");
		l->rtt = rtt;
		if (was != now_state)
			said = now_state > 0
				   ? hf_xasprintf("cluster %s, known there as %s",
						  l->cluster ? l->cluster : "?",
						  l->as ? l->as : "?")
				   : hf_xstrdup(why ? why : "?");
		pthread_mutex_unlock(&links_mu);
		json_decref(out);
		if (said) {
			hf_log("remote cluster %s: link %s: %s", p->name,
			       now_state > 0 ? "up" : "down", said);
			hf_state_lock(s);
			if (s->leading)
				hf_event(s, "scheduler", NULL, "remote", p->name,
					 was > 0 ? "up" : was < 0 ? "down" : NULL,
					 now_state > 0 ? "up" : "down", said);
			hf_state_unlock(s);
			free(said);
		}
	}
	/* Removed remotes are forgotten. */
	pthread_mutex_lock(&links_mu);
	for (i = 0; i < links.len && !hf_ticker_stopping(&links_ticker);) {
		bool listed = false;

		for (size_t k = 0; k < ps.len; k++)
			listed = listed || !strcmp(ps.items[k].name,
						   links.items[i].name);
		if (listed) {
			i++;
			continue;
		}
		link_release(&links.items[i]);
		links.items[i] = links.items[--links.len];
	}
	pthread_mutex_unlock(&links_mu);
	for (i = 0; i < ps.len; i++)
		probe_release(&ps.items[i]);
	HF_VEC_FREE(&ps);
}

static void links_pass(void *arg)
{
	check_links(arg);
}

void hf_remotes_start(struct hf_srv *s)
{
	links_ticker.name = "the remote links thread";
	links_ticker.without = "links to remote clusters are not checked";
	links_ticker.every_ms = LINK_EVERY_MS;
	links_ticker.first_at_once = true;
	hf_ticker_start(&links_ticker, links_pass, s);
}

void hf_remotes_stop(void)
{
	hf_ticker_stop(&links_ticker);
	pthread_mutex_lock(&links_mu);
	for (size_t i = 0; i < links.len; i++)
		link_release(&links.items[i]);
	links.len = 0;
	pthread_mutex_unlock(&links_mu);
}

void hf_remotes_metrics(struct hf_buf *b)
{
	pthread_mutex_lock(&links_mu);
	hf_buf_adds(b, "# HELP holdfast_remote_up Whether the link to a remote "
		       "cluster answered its last check.\n"
		       "# TYPE holdfast_remote_up gauge\n");
	for (size_t i = 0; i < links.len; i++) {
		hf_buf_adds(b, "holdfast_remote_up{remote=\"");
		hf_metrics_label(b, links.items[i].name);
		hf_buf_addf(b, "\"} %d\n", links.items[i].state > 0);
	}
	hf_buf_adds(b, "# HELP holdfast_remote_rtt_seconds The last check's "
		       "round trip to a remote cluster (TLS handshake "
		       "included).\n"
		       "# TYPE holdfast_remote_rtt_seconds gauge\n");
	for (size_t i = 0; i < links.len; i++) {
		if (links.items[i].state <= 0)
			continue;
		hf_buf_adds(b, "holdfast_remote_rtt_seconds{remote=\"");
		hf_metrics_label(b, links.items[i].name);
		hf_buf_addf(b, "\"} %.6f\n", links.items[i].rtt);
	}
	pthread_mutex_unlock(&links_mu);
}
