/*
 * ui.h (server) - the web UI: its static files, built into the binary
 * (scripts/embed_ui.sh writes them from ui/ at build time), served under
 * /ui/, and the two reads the UI needs besides the API's: which role a
 * token has, and the text a configuration was made from (to edit it for
 * an update).
 *
 * The files are public (GET /ui/ needs no token): they hold no data. The
 * page asks for a token and calls the API with it like any client, so
 * what a token may do is decided by the API's routes alone; a read token
 * gets a page without actions, and the server refuses its writes anyway.
 * Every file is sent with a Content-Security-Policy that allows the
 * page's own origin only (no inline script, no other site, no framing),
 * X-Frame-Options DENY and no Referer (a "?token=" address must not
 * leak); the layer adds nosniff and no-store to every answer (a new
 * binary serves new files under the same names).
 *
 * Handlers follow http.h's contract; ctx is the server (struct hf_srv).
 */
#ifndef HF_SERVER_UI_H
#define HF_SERVER_UI_H

#include "http/http.h"

/*
 * GET /ui/{asset*}: one file of ui/ by name ("" is index.html) with its
 * content type and the headers above; 404 JSON for any other name. The
 * query key "token" is the page's own (it signs in with it), ignored here.
 */
void hf_ui_asset_handler(void *ctx, const struct hf_http_req *req,
			 struct hf_http_resp *resp);

/* GET /ui: 308 to /ui/ (with the query kept), where relative links work. */
void hf_ui_redirect_handler(void *ctx, const struct hf_http_req *req,
			    struct hf_http_resp *resp);

/* GET /v1/whoami: {"role": "admin"|"read"}; the token is never echoed. */
void hf_ui_whoami_handler(void *ctx, const struct hf_http_req *req,
			  struct hf_http_resp *resp);

/*
 * GET /v1/service/{svc}/configurations/{id}/source: what a configuration
 * was made from, as an update takes it back: {"id", "file", "spec" (the
 * template text), "options", "templates"}, so that the page can send an
 * edited spec back with the options it had. {id} may be "target".
 * Admin only, like the store's backup: the text and the options are as
 * given, secrets included (the API's other answers hide them by name,
 * which raw text cannot be), and only an admin may update anyway.
 */
void hf_ui_config_source_handler(void *ctx, const struct hf_http_req *req,
				 struct hf_http_resp *resp);

#endif
