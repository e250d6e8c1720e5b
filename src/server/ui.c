/*
 * ui.c (server) - serves the web UI's files built into the binary, and the
 * UI's two reads (see ui.h).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/err.h"
#include "common/util.h"
#include "http/http.h"
#include "model/codec.h"
#include "model/model.h"
#include "server/state.h"
#include "server/ui.h"

struct ui_file {
	const char *name;
	const unsigned char *data;
	size_t len;
};

/* ui_files[]: the build's generated header (Makefile, scripts/embed_ui.sh). */
#include "ui_files.h"

/*
 * The page loads its script, style and images from this origin only and
 * talks to this origin only; nothing inline runs, nothing frames it, and
 * a form cannot post elsewhere.
 */
#define UI_CSP                                                                 \
	"default-src 'self'; script-src 'self'; style-src 'self'; "            \
	"img-src 'self' data:; connect-src 'self'; object-src 'none'; "        \
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

/* Content types by file name ending; the first that matches wins. */
static const struct {
	const char *suffix, *type;
} ui_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".json", "application/json"},
    {".txt", "text/plain; charset=utf-8"},
};

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* A file's content type (a static string), or NULL: not one to serve. */
static const char *ui_type(const char *name)
{
	for (size_t i = 0; i < HF_ARRAY_LEN(ui_types); i++)
		if (ends_with(name, ui_types[i].suffix))
			return ui_types[i].type;
	return NULL;
}

static const struct ui_file *ui_find(const char *name)
{
	for (size_t i = 0; i < HF_ARRAY_LEN(ui_files); i++)
		if (strcmp(ui_files[i].name, name) == 0)
			return &ui_files[i];
	return NULL;
}

/*
 * The headers every answer under /ui carries, errors included, besides
 * the layer's own on every answer (Cache-Control: no-store,
 * X-Content-Type-Options: nosniff).
 */
static void ui_headers(struct hf_http_resp *resp)
{
	hf_kvlist_set(&resp->headers, "Content-Security-Policy", UI_CSP);
	hf_kvlist_set(&resp->headers, "X-Frame-Options", "DENY");
	hf_kvlist_set(&resp->headers, "Referrer-Policy", "no-referrer");
}

void hf_ui_asset_handler(void *ctx, const struct hf_http_req *req,
			 struct hf_http_resp *resp)
{
	const char *name = hf_kvlist_get(&req->params, "asset");
	const struct ui_file *f;
	const char *type;

	(void)ctx;
	if (!name || !*name)
		name = "index.html";
	f = ui_find(name);
	type = f ? ui_type(f->name) : NULL;
	if (!f || !type) {
		hf_http_error(resp, HF_ENOTFOUND,
			      "the web UI has no file '%s'", name);
	} else {
		hf_http_text(resp, 200, type, (const char *)f->data, f->len);
	}
	ui_headers(resp);
}

void hf_ui_redirect_handler(void *ctx, const struct hf_http_req *req,
			    struct hf_http_resp *resp)
{
	struct hf_buf loc = {0};

	(void)ctx;
	hf_buf_adds(&loc, "/ui/");
	for (size_t i = 0; i < req->query.len; i++) {
		char *k = hf_url_escape(req->query.items[i].key);
		char *v = hf_url_escape(req->query.items[i].value);

		hf_buf_addf(&loc, "%c%s=%s", i ? '&' : '?', k, v);
		free(k); k = NULL;
		free(v); v = NULL;
	}
	hf_http_text(resp, 308, "text/plain; charset=utf-8",
		     "The web UI is at /ui/\n", strlen("The web UI is at /ui/\n"));
	hf_kvlist_set(&resp->headers, "Location", loc.data);
	ui_headers(resp);
	hf_buf_release(&loc);
}

void hf_ui_whoami_handler(void *ctx, const struct hf_http_req *req,
			  struct hf_http_resp *resp)
{
	(void)ctx;
	/* A READ route: the layer let only read and admin tokens through. */
	hf_http_json(resp, 200,
		     json_pack("{s:s}", "role",
			       req->role == HF_ROLE_ADMIN ? "admin" : "read"));
}

void hf_ui_config_source_handler(void *ctx, const struct hf_http_req *req,
				 struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *name = hf_kvlist_get(&req->params, "svc");
	const char *id = hf_kvlist_get(&req->params, "id");
	struct hf_service *svc;
	struct hf_config *cfg;

	hf_state_lock(s);
	svc = hf_state_service(s, name);
	if (!svc) {
		hf_http_error(resp, HF_ENOTFOUND, "no service named '%s'", name);
		goto out;
	}
	cfg = strcmp(id, "target") == 0 ? hf_state_target(svc)
					: hf_state_config(svc, id);
	if (!cfg) {
		hf_http_error(resp, HF_ENOTFOUND,
			      "service '%s' has no configuration '%s'",
			      svc->name, id);
		goto out;
	}
	hf_http_json(resp, 200,
		     json_pack("{s:s, s:s?, s:s, s:o, s:o}", "id", cfg->id,
			       "file", cfg->file, "spec",
			       cfg->text ? cfg->text : "", "options",
			       hf_codec_kv_json(&cfg->options), "templates",
			       hf_codec_kv_json(&cfg->templates)));
out:
	hf_state_unlock(s);
}
