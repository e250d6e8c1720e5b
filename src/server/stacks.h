/*
 * stacks.h - stacks of services (spec/stack.h's file): the API that takes
 * a stack with its specs, and the loop that deploys, updates and removes
 * its services in dependency order.
 *
 * A stack is one record, /stacks/<name>: its file's text, each service's
 * spec and templates, its phase (deploying, updating, deployed, removing,
 * failed) and each service's state (waiting, deploying, updating,
 * deployed, removing, removed, failed) with the digest of what was last
 * applied to it. The loop (its own thread, on the leader) starts a
 * service once those it depends on are deployed - their latest change's
 * plan is complete - with their endpoints filled into its options, and
 * updates a service only when what it would apply (spec, rendered
 * options, templates) differs from what it applied last, so an update of
 * the stack relaunches only the services whose rendered spec changed.
 * Removing goes in reverse order and keeps volumes unless asked.
 */
#ifndef HF_SERVER_STACKS_H
#define HF_SERVER_STACKS_H

#include "http/http.h"

struct hf_srv;

void hf_stacks_start(struct hf_srv *s);
void hf_stacks_stop(void);

/* GET, POST /v1/stacks; GET, PUT, DELETE /v1/stacks/{stack}. */
void hf_stacks_list_handler(void *ctx, const struct hf_http_req *req,
			    struct hf_http_resp *resp);
void hf_stacks_deploy_handler(void *ctx, const struct hf_http_req *req,
			      struct hf_http_resp *resp);
void hf_stacks_get_handler(void *ctx, const struct hf_http_req *req,
			   struct hf_http_resp *resp);
void hf_stacks_update_handler(void *ctx, const struct hf_http_req *req,
			      struct hf_http_resp *resp);
void hf_stacks_remove_handler(void *ctx, const struct hf_http_req *req,
			      struct hf_http_resp *resp);
/* POST /v1/stacks/{stack}/diff: what an update would do, per service. */
void hf_stacks_diff_handler(void *ctx, const struct hf_http_req *req,
			    struct hf_http_resp *resp);

#endif
