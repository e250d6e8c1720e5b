/*
 * metrics.h - `GET /metrics` in the Prometheus text format: tasks by
 * state, plan and step statuses, launches, restarts and failures, API
 * requests and latencies, store operations, nodes.
 */
#ifndef HF_SERVER_METRICS_H
#define HF_SERVER_METRICS_H

#include "http/http.h"

struct hf_api_metrics;

struct hf_api_metrics *hf_api_metrics_new(void);
void hf_api_metrics_free(struct hf_api_metrics *m);
/* Any thread: counts one answered request. route may be NULL. */
void hf_api_metrics_record(struct hf_api_metrics *m, const char *method,
			   const char *route, int status, double seconds);

/* Appends a label value, escaped (backslash, quote, newline). */
struct hf_buf;
void hf_metrics_label(struct hf_buf *b, const char *v);

void hf_metrics_handler(void *ctx, const struct hf_http_req *req,
			struct hf_http_resp *resp);

#endif
