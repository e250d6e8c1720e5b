/*
 * dr.h - disaster recovery of a service to a remote cluster (issue 16;
 * docs/operations.md "Disaster recovery"). So far: the service's
 * configuration.
 *
 * On the primary, `holdfast -s SVC dr enable --to REMOTE` records
 * "/dr/<svc>"; the leader's DR thread sends the service's target
 * configuration (spec text, file name, options, templates, counts set
 * over the spec, plan parameters) to the remote whenever it changes, and
 * at least every minute, over mutual TLS (PUT /v1/dr/standby/{svc}).
 *
 * On the standby, that route (role REMOTE) keeps it as "/standby/<svc>":
 * a standby service that runs no pod, shown by `dr status` and `dr list`;
 * a service of that name cannot be deployed there meanwhile.
 */
#ifndef HF_SERVER_DR_H
#define HF_SERVER_DR_H

#include "common/util.h"
#include "http/http.h"

struct hf_srv;

/*
 * A stream's journal on the primary's node: the default size, and the
 * bounds `dr enable --journal-size` takes (bytes, a multiple of 4096).
 */
#define HF_DR_JOURNAL_SIZE (256LL << 20)
#define HF_DR_JOURNAL_MIN (16LL << 20)
#define HF_DR_JOURNAL_MAX (1LL << 40)

void hf_dr_start(struct hf_srv *s);
void hf_dr_stop(void);

/* POST, DELETE, GET /v1/service/{svc}/dr. */
void hf_dr_enable_handler(void *ctx, const struct hf_http_req *req,
			  struct hf_http_resp *resp);
void hf_dr_disable_handler(void *ctx, const struct hf_http_req *req,
			   struct hf_http_resp *resp);
void hf_dr_status_handler(void *ctx, const struct hf_http_req *req,
			  struct hf_http_resp *resp);
/* GET /v1/dr: the services with DR here, primaries and standbys. */
void hf_dr_list_handler(void *ctx, const struct hf_http_req *req,
			struct hf_http_resp *resp);

/* PUT, DELETE /v1/dr/standby/{svc}: a remote cluster's (role REMOTE). */
void hf_dr_standby_put_handler(void *ctx, const struct hf_http_req *req,
			       struct hf_http_resp *resp);
void hf_dr_standby_delete_handler(void *ctx, const struct hf_http_req *req,
				  struct hf_http_resp *resp);

/* holdfast_dr_config_behind, holdfast_dr_config_sent_timestamp_seconds. */
/* POST /v1/service/{svc}/dr/failover: the standby becomes the primary. */
void hf_dr_failover_handler(void *ctx, const struct hf_http_req *req,
			    struct hf_http_resp *resp);

/*
 * POST /v1/service/{svc}/dr/switchover (the primary: a planned move to
 * the standby) and POST /v1/dr/standby/{svc}/promote (the standby's
 * side, role REMOTE: only the cluster that sent the standby may).
 */
void hf_dr_switchover_handler(void *ctx, const struct hf_http_req *req,
			      struct hf_http_resp *resp);
void hf_dr_promote_handler(void *ctx, const struct hf_http_req *req,
			   struct hf_http_resp *resp);

/*
 * POST /v1/service/{svc}/dr/failback (the old primary, its copy stopped:
 * it becomes the standby) and POST /v1/dr/failback/{svc} (the new
 * primary's side, role REMOTE: it replicates the service to `back`).
 */
void hf_dr_failback_handler(void *ctx, const struct hf_http_req *req,
			    struct hf_http_resp *resp);
void hf_dr_reverse_handler(void *ctx, const struct hf_http_req *req,
			   struct hf_http_resp *resp);

/*
 * A node's report of how a detached volume's DR stream ended (state lock
 * held): whether the standby had every write (a switchover waits for
 * that), else the node keeps its journal (an event says so).
 */
struct hf_proto_dr_final;
struct hf_strlist;
/*
 * Node `node` deleted these replicas (state lock held): standby replicas
 * whose standby went are forgotten then.
 */
void hf_dr_replicas_deleted(struct hf_srv *s, const char *node,
			    const struct hf_strlist *deleted);
void hf_dr_final_note(struct hf_srv *s, const char *node,
		      const struct hf_proto_dr_final *f);

void hf_dr_metrics(struct hf_buf *b);
/* The volumes' streams (lag, journal, link), the state lock held. */
void hf_dr_stream_metrics(struct hf_srv *s, struct hf_buf *b);

/*
 * Node n's part of the disaster-recovery orders (state lock held): on a
 * primary, the "dr" stream of each attachment already in out whose
 * service is replicated and whose standby replica is known; on a
 * standby, the standby replicas n keeps. Returns their part of n's
 * digest; out NULL: the digest alone.
 */
struct hf_node;
struct hf_proto_sync_resp;
uint64_t hf_dr_orders(struct hf_srv *s, const struct hf_node *n,
		      struct hf_proto_sync_resp *out);

#endif
