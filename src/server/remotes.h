/*
 * remotes.h - other clusters this one knows (disaster recovery, issue 16;
 * docs/operations.md "Remote clusters"). A remote is a name, the URL of
 * its servers' API, the CA its server certificate must chain to, and the
 * client certificate and key this cluster presents to it; the key is
 * never shown back. The remote's servers accept this cluster when their
 * --client-ca signed that certificate (http.h HF_ROUTE_REMOTE), and then
 * only on the routes replication needs.
 *
 * The leader checks every remote's link every few seconds (GET
 * /v1/dr/hello over mutual TLS): its state, round trip and the remote's
 * cluster id are shown by `holdfast remote list|show`, in /metrics, and a
 * change of state is an event.
 */
#ifndef HF_SERVER_REMOTES_H
#define HF_SERVER_REMOTES_H

#include "common/util.h"
#include "http/http.h"

struct hf_srv;

void hf_remotes_start(struct hf_srv *s);
void hf_remotes_stop(void);

/* GET, POST /v1/remotes; GET, DELETE /v1/remotes/{name}. */
void hf_remotes_list_handler(void *ctx, const struct hf_http_req *req,
			     struct hf_http_resp *resp);
void hf_remotes_add_handler(void *ctx, const struct hf_http_req *req,
			    struct hf_http_resp *resp);
void hf_remotes_get_handler(void *ctx, const struct hf_http_req *req,
			    struct hf_http_resp *resp);
void hf_remotes_delete_handler(void *ctx, const struct hf_http_req *req,
			       struct hf_http_resp *resp);

/* GET /v1/dr/hello: a remote cluster's link check (role REMOTE). */
void hf_dr_hello_handler(void *ctx, const struct hf_http_req *req,
			 struct hf_http_resp *resp);

/*
 * method <remote's url><path> over mutual TLS with this cluster's
 * certificate, body (NULL: none) as JSON: 0 with the HTTP *status and
 * *out (its JSON, or NULL), or -1 with *why (no such remote, no answer).
 * Blocks up to 5 s; no lock held.
 */
int hf_remotes_call(struct hf_srv *s, const char *remote, const char *method,
		    const char *path, const json_t *body, long *status,
		    json_t **out, char **why);

/*
 * The remote's CA and this cluster's certificate and key for it (PEM
 * texts; the key a secret): 0, or an error (no such remote). Takes the
 * state lock itself.
 */
int hf_remotes_tls(struct hf_srv *s, const char *remote, char **ca,
		   char **cert, char **key);

/* holdfast_remote_up and holdfast_remote_rtt_seconds per remote. */
void hf_remotes_metrics(struct hf_buf *b);

#endif
