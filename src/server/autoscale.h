/*
 * autoscale.h - the autoscaler: the leader's thread that evaluates each
 * pod type's `autoscale:` policy (spec.h struct hf_spec_autoscale) every
 * interval and sets its count through the same change as `pod scale`
 * (hf_ops_pod_autoscale): readiness-gated scale-out, scale-in with the
 * decommission drain. docs/autoscaling.md says the rules.
 *
 * What it remembers (the samples in a row, the last action, the last
 * values) is in memory: a new leader starts over, its cooldowns counted
 * from its start, so it never acts sooner than a cooldown allows.
 */
#ifndef HF_SERVER_AUTOSCALE_H
#define HF_SERVER_AUTOSCALE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/util.h"
#include "http/http.h"

struct hf_srv;
struct hf_spec_autoscale;

/* Starts and stops the thread (with the leadership). */
void hf_autoscale_start(struct hf_srv *s);
void hf_autoscale_stop(void);

/* GET /v1/service/{svc}/autoscale: each policy, its values, its next step. */
void hf_autoscale_status_handler(void *ctx, const struct hf_http_req *req,
				 struct hf_http_resp *resp);

/* The autoscaler's Prometheus samples (count, desired, value, errors). */
void hf_autoscale_metrics(struct hf_buf *b);

/* A decision on one sample (pure; exposed for the unit tests). */
enum hf_as_dir { HF_AS_HOLD, HF_AS_UP, HF_AS_DOWN };
struct hf_as_want {
	enum hf_as_dir dir;
	int64_t to;     /* the count wanted (== count when holding) */
	char rule[160]; /* what the rule says, for events */
};
void hf_autoscale_want(const struct hf_spec_autoscale *a, int64_t count,
		       double value, struct hf_as_want *out);

/*
 * The first number in text (a metric command's output): false when there
 * is none. "lag 812\n" -> 812.
 */
bool hf_autoscale_first_number(const char *text, double *out);

/*
 * The number at path ("a.b.0.c": object keys and array indexes) of a JSON
 * text, or the text itself as a number when path is NULL. A string that
 * holds a number counts (Prometheus answers so). why on failure.
 */
bool hf_autoscale_json_number(const char *text, const char *path,
			      double *out, char **why);

/*
 * The sum of sample name's series in a Prometheus text exposition; false
 * when it has none.
 */
bool hf_autoscale_prom_sample(const char *text, const char *name,
			      double *out);

#endif
