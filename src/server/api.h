/*
 * api.h (server) - the server's route table for the HTTP layer.
 */
#ifndef HF_SERVER_API_H
#define HF_SERVER_API_H

#include <stddef.h>

#include "http/http.h"

const struct hf_http_route *hf_server_routes(size_t *n);

#endif
