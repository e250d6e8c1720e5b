/*
 * agent_api.h - the routes agents call (docs/protocol.md): POST
 * /v1/agent/register (JOIN: a join token registers the node's own
 * credential) and POST /v1/agent/sync (AGENT: reports in, the node's
 * desired set out, held as a long poll until it changes). Both take
 * srv->mu themselves; ctx is the server's hf_srv.
 */
#ifndef HF_SERVER_AGENT_API_H
#define HF_SERVER_AGENT_API_H

#include "http/http.h"

void hf_agent_register_handler(void *ctx, const struct hf_http_req *req,
			       struct hf_http_resp *resp);
void hf_agent_sync_handler(void *ctx, const struct hf_http_req *req,
			   struct hf_http_resp *resp);

#endif
