/*
 * api.h (server) - the server's route table for the HTTP layer.
 */
#ifndef HF_SERVER_API_H
#define HF_SERVER_API_H

#include <stddef.h>

#include "http/http.h"

const struct hf_http_route *hf_server_routes(size_t *n);

struct hf_ops_err;
/*
 * An operation's failure as the API answers it: {"error", "message"},
 * with "diagnostics" (file:line:col) when err holds a spec's.
 */
void hf_api_answer_err(struct hf_http_resp *resp, int rc,
		       const struct hf_ops_err *err);

#endif
