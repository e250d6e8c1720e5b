/*
 * tick.c - one pass of the scheduler over every service. For each unit of
 * work the rules decide (plan/decide.h) and the applier carries the
 * decision out at once (server/apply.h), so the next unit's rules see it;
 * the tick's records then reach the store in one batch, and only then do
 * its events go out and agents learn of new desired sets (the scheduler
 * thread publishes after the tick, server.c).
 */
#include "server/apply.h"
#include "server/sched.h"

/* Applies what a rule decided and empties the list for the next rule. */
static void apply_unit(struct hf_srv *s, struct hf_actions *a)
{
	hf_apply(s, a);
	hf_actions_reset(a);
}

static bool removes_service(const struct hf_actions *a)
{
	for (size_t i = 0; i < a->len; i++)
		if (a->items[i].kind == HF_ACT_REMOVE_SERVICE)
			return true;
	return false;
}

static void tick_service(struct hf_srv *s, struct hf_service *svc,
			 struct hf_config *cfg, struct hf_decide_ctx *ctx,
			 struct hf_actions *a)
{
	const struct hf_model *m = &s->model;
	struct hf_decide_runs *rt;

	hf_decide_backoff_reset(m, svc, ctx, a);
	apply_unit(s, a);
	hf_decide_node_loss(m, svc, cfg, ctx, a);
	apply_unit(s, a);
	hf_decide_xvols_heal(m, svc->name, ctx, a);
	apply_unit(s, a);
	for (size_t k = 0; k < svc->instances.len; k++) {
		if (!hf_instance_replacing(svc->instances.items[k]))
			continue;
		hf_decide_replace(m, svc, svc->instances.items[k], ctx, a);
		apply_unit(s, a);
	}
	rt = hf_decide_runs_begin(svc, cfg);
	while (hf_decide_runs_next(rt, m, ctx, a))
		apply_unit(s, a);
	hf_decide_runs_end(rt);
	hf_decide_decommission(m, svc, cfg, ctx, a);
	apply_unit(s, a);
}

void hf_sched_tick(struct hf_srv *s)
{
	struct hf_decide_ctx ctx;
	struct hf_actions a = {0};

	hf_apply_ctx(s, &ctx);
	hf_place_cache_stale(&s->place);
	/* The tick's records reach the store together, before it returns. */
	hf_state_batch_begin(s);
	/* The earliest backoff to end: the scheduler wakes up for it. */
	hf_decide_wake(&s->model, &ctx, &a);
	apply_unit(s, &a);
	for (size_t i = 0; i < s->model.services.len; i++) {
		struct hf_service *svc = s->model.services.items[i];
		struct hf_config *cfg;

		if (svc->removing) {
			bool gone;

			hf_decide_removal(&s->model, svc, &ctx, &a);
			gone = removes_service(&a);
			apply_unit(s, &a);
			if (gone)
				i--; /* the last service took its place */
			continue;
		}
		cfg = hf_model_target(svc);
		if (!cfg || !cfg->spec)
			continue;
		tick_service(s, svc, cfg, &ctx, &a);
	}
	hf_state_batch_end(s);
	hf_actions_release(&a);
	hf_place_cache_stale(&s->place);
}
