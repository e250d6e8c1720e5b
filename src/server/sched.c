/*
 * sched.c - the scheduler's entry points (sched.h): each asks the rules
 * (plan/decide.h) what to do and has the applier (server/apply.h) do it.
 * The rules live in plan/decide.c, the tick in tick.c, the messages to
 * and from agents in orders.c.
 */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "server/apply.h"
#include "server/orders.h"
#include "server/sched.h"

void hf_sched_changed(struct hf_srv *s, bool desired)
{
	if (desired)
		s->desired_dirty = true;
	s->tick_wanted = true;
	s->status_seq++;
	pthread_cond_broadcast(&s->changed);
}

void hf_sched_desired(struct hf_srv *s, struct hf_node *n,
		      const struct hf_map *known,
		      struct hf_proto_sync_resp *out)
{
	hf_orders_desired(s, n, known, out);
}

void hf_sched_publish(struct hf_srv *s)
{
	hf_orders_publish(s);
}

void hf_sched_placement_stale(struct hf_srv *s)
{
	hf_place_cache_stale(&s->place);
}

/* Applies and frees what a rule decided; returns whether it was anything. */
static bool carry_out(struct hf_srv *s, struct hf_actions *a)
{
	bool any = a->len > 0;

	hf_apply(s, a);
	hf_actions_release(a);
	return any;
}

int hf_sched_plan_view(struct hf_srv *s, struct hf_service *svc,
		       const char *name, struct hf_plan_view *v)
{
	(void)s;
	return hf_decide_plan_view(svc, name, hf_now_ms(), v);
}

bool hf_sched_task_report(struct hf_srv *s, const char *node_id,
			  const struct hf_proto_report *rep)
{
	struct hf_decide_ctx ctx;
	struct hf_actions a = {0};

	hf_apply_ctx(s, &ctx);
	hf_decide_report(&s->model, node_id, rep, &ctx, &a);
	return carry_out(s, &a);
}

bool hf_sched_reconcile_node(struct hf_srv *s, const char *node_id,
			     const struct hf_proto_sync_req *req)
{
	struct hf_node *n = hf_state_node(s, node_id);
	struct hf_node_insts scratch = {0};
	const struct hf_node_insts *l;
	struct hf_decide_ctx ctx;
	struct hf_actions a = {0};
	const char **ids;
	size_t i;

	if (!n)
		return false;
	/* Tasks listed as "same" are there as much as reported ones. */
	ids = hf_xcalloc(req->tasks.len + req->same.len + 1, sizeof(*ids));
	for (i = 0; i < req->tasks.len; i++)
		ids[i] = req->tasks.items[i].task_id;
	for (i = 0; i < req->same.len; i++)
		ids[req->tasks.len + i] = req->same.items[i];
	l = hf_orders_node_insts(s, n, &scratch);
	hf_apply_ctx(s, &ctx);
	hf_decide_reconcile(&s->model, l, ids,
			    req->tasks.len + req->same.len, &ctx, &a);
	HF_VEC_FREE(&scratch);
	free(ids);
	return carry_out(s, &a);
}

void hf_sched_volumes_deleted(struct hf_srv *s, const char *node_id,
			      const struct hf_strlist *deleted)
{
	struct hf_actions a = {0};

	hf_decide_volumes_deleted(&s->model, node_id,
				  (const char *const *)deleted->items,
				  deleted->len, &a);
	carry_out(s, &a);
}

void hf_sched_isr_requests(struct hf_srv *s, const char *node_id,
			   const struct hf_proto_sync_req *req)
{
	struct hf_actions a = {0};

	for (size_t i = 0; i < req->volumes.len; i++) {
		const struct hf_proto_volume_report *r = &req->volumes.items[i];

		if (r->epoch < 1)
			continue;
		if (r->isr_drop.len)
			hf_decide_isr_drop(&s->model, node_id, r->volume,
					   (uint64_t)r->epoch,
					   (const char *const *)r->isr_drop.items,
					   r->isr_drop.len, r->isr_why, &a);
		for (size_t k = 0; k < r->resync.len; k++)
			hf_decide_resync_progress(
			    &s->model, node_id, r->volume, (uint64_t)r->epoch,
			    r->resync.items[k].replica, r->resync.items[k].done,
			    r->resync.items[k].total, &a);
		if (r->resynced.len)
			hf_decide_resynced(&s->model, node_id, r->volume,
					   (uint64_t)r->epoch,
					   (const char *const *)r->resynced.items,
					   r->resynced.len, &a);
		if (r->snapshots.len) {
			struct hf_snap_outcome *o =
			    hf_xcalloc(r->snapshots.len, sizeof(*o));

			for (size_t k = 0; k < r->snapshots.len; k++) {
				const struct hf_proto_snap_result *q =
				    &r->snapshots.items[k];

				o[k].id = q->id;
				o[k].op = q->op;
				o[k].ok = q->ok;
				o[k].error = q->error;
				o[k].replicas =
				    (const char *const *)q->replicas.items;
				o[k].nreplicas = q->replicas.len;
			}
			hf_decide_snap_results(&s->model, node_id, r->volume,
					       (uint64_t)r->epoch, o,
					       r->snapshots.len, hf_now_ms(),
					       &a);
			free(o);
		}
	}
	carry_out(s, &a);
}

void hf_sched_replicas_deleted(struct hf_srv *s, const char *node_id,
			       const struct hf_strlist *deleted)
{
	struct hf_actions a = {0};

	hf_decide_replicas_deleted(&s->model, node_id,
				   (const char *const *)deleted->items,
				   deleted->len, &a);
	carry_out(s, &a);
}

void hf_sched_replicas_filled(struct hf_srv *s, const char *node_id,
			      const struct hf_strlist *filled)
{
	struct hf_actions a = {0};

	hf_decide_replicas_filled(&s->model, node_id,
				  (const char *const *)filled->items,
				  filled->len, &a);
	carry_out(s, &a);
}

bool hf_sched_volume_of(const char *key, const char *svc,
			const char *instance)
{
	return hf_model_volume_of(key, svc, instance);
}

char *hf_sched_instance_volume_key(const struct hf_service *svc,
				   const struct hf_instance *in)
{
	return hf_model_volume_key(svc->name, in->name);
}
