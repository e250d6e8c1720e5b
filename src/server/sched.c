/*
 * sched.c - where a step becomes a launch.
 *
 * Each tick evaluates the active plan runs of every service with the pure
 * plan engine, launches the tasks of the steps it may work on, relaunches
 * failed tasks the service keeps running (recovery), and carries out
 * removals. A launch is written to the store (task record in STAGING)
 * before the generation is bumped, which is what makes it visible to the
 * agent: a crash between the two loses nothing and duplicates nothing.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "plan/placement.h"
#include "server/events.h"
#include "server/sched.h"

/* Failures of a custom plan's FINISH/ONCE task before its step is ERROR. */
#define CUSTOM_MAX_FAILURES 3

void hf_sched_changed(struct hf_srv *s, bool desired)
{
	if (desired)
		s->desired_dirty = true;
	s->tick_wanted = true;
	s->status_seq++;
	pthread_cond_broadcast(&s->changed);
}

/* ------------------------------------------------------------------ */
/* Desired sets                                                         */

/*
 * A desired set's digest: the sum of its task ids' and volume keys'
 * hashes, so it does not depend on the order they are visited in.
 */
static bool desired_task(const struct hf_task_slot *sl)
{
	return sl->cur && !sl->cur->kill && hf_task_state_live(sl->cur->state);
}

static uint64_t volume_digest(const struct hf_node *n)
{
	uint64_t d = 0;

	for (size_t k = 0; k < n->delete_volumes.len; k++)
		d += hf_hash_str(n->delete_volumes.items[k]) * 3;
	return d;
}

/* Gives n a new generation when its set's digest changed. */
static bool node_settle(struct hf_srv *s, struct hf_node *n, uint64_t digest)
{
	if (digest == n->digest)
		return false;
	n->digest = digest;
	n->gen = ++s->generation;
	return true;
}

/*
 * The instances on node n: its list when the lists are current, else
 * (scratch filled by) a scan of every instance. The caller releases
 * scratch.
 */
static const struct hf_node_insts *
node_insts(struct hf_srv *s, const struct hf_node *n,
	   struct hf_node_insts *scratch)
{
	if (s->node_lists_valid)
		return &n->insts;
	for (size_t i = 0; i < s->services.len; i++) {
		struct hf_service *svc = s->services.items[i];

		for (size_t k = 0; k < svc->instances.len; k++) {
			struct hf_instance *in = svc->instances.items[k];
			struct hf_node_inst *ni;

			if (!in->node || strcmp(in->node, n->id) != 0)
				continue;
			ni = HF_VEC_PUSH(scratch);
			ni->svc = svc;
			ni->in = in;
		}
	}
	return scratch;
}

json_t *hf_sched_desired(struct hf_srv *s, struct hf_node *n)
{
	json_t *a = json_array();
	uint64_t digest = volume_digest(n);
	struct hf_node_insts scratch = {0};
	const struct hf_node_insts *l = node_insts(s, n, &scratch);

	for (size_t i = 0; i < l->len; i++) {
		struct hf_service *svc = l->items[i].svc;
		struct hf_instance *in = l->items[i].in;

		for (size_t t = 0; t < in->slots.len; t++) {
			struct hf_task_slot *sl = &in->slots.items[t];
			json_t *o;

			if (!desired_task(sl))
				continue;
			o = hf_sched_launch_order(s, svc, in, sl);
			if (!o)
				continue;
			json_array_append_new(a, o);
			digest += hf_hash_str(sl->cur->id);
		}
	}
	HF_VEC_FREE(&scratch);
	node_settle(s, n, digest);
	return a;
}

void hf_sched_publish(struct hf_srv *s)
{
	for (size_t i = 0; i < s->nodes.len; i++) {
		struct hf_node *n = s->nodes.items[i];

		n->digest_scratch = volume_digest(n);
		n->insts.len = 0;
	}
	for (size_t i = 0; i < s->services.len; i++) {
		struct hf_service *svc = s->services.items[i];

		for (size_t k = 0; k < svc->instances.len; k++) {
			struct hf_instance *in = svc->instances.items[k];
			struct hf_node *n = hf_state_node(s, in->node);
			struct hf_node_inst *ni;

			if (!n)
				continue;
			ni = HF_VEC_PUSH(&n->insts);
			ni->svc = svc;
			ni->in = in;
			for (size_t t = 0; t < in->slots.len; t++)
				if (desired_task(&in->slots.items[t]))
					n->digest_scratch += hf_hash_str(
					    in->slots.items[t].cur->id);
		}
	}
	s->node_lists_valid = true;
	for (size_t i = 0; i < s->nodes.len; i++) {
		struct hf_node *n = s->nodes.items[i];

		if (node_settle(s, n, n->digest_scratch))
			hf_http_wake(s->http, &n->waitq);
	}
}

static const struct hf_spec_pod *pod_of(const struct hf_config *cfg,
					const char *pod)
{
	return cfg && cfg->spec ? hf_spec_find_pod(cfg->spec, pod) : NULL;
}

static void decommission_view(struct hf_service *svc, struct hf_config *cfg,
			      struct hf_plan_view *v);
static void tick_services(struct hf_srv *s, int64_t now);

static bool is_custom(const struct hf_plan_run *run)
{
	return run && strcmp(run->plan, "deploy") != 0 &&
	       strcmp(run->plan, "update") != 0 &&
	       strcmp(run->plan, "recovery") != 0;
}

static char *run_id(const struct hf_plan_run *run)
{
	return hf_xasprintf("%s#%u", run->plan, run->number);
}

/*
 * Whether a launch with config `id` runs what `cfg` asks of pod: the same
 * config, or one whose effective spec for that pod is identical (a change
 * elsewhere in the service does not relaunch this pod).
 */
static bool config_current(const struct hf_service *svc, const char *id,
			   const struct hf_config *cfg, const char *pod)
{
	const struct hf_config *old;
	const char *a, *b;

	if (!id)
		return false;
	if (strcmp(id, cfg->id) == 0)
		return true;
	old = hf_state_config((struct hf_service *)svc, id);
	if (!old)
		return false;
	a = hf_kvlist_get(&old->fingerprints, pod);
	b = hf_kvlist_get(&cfg->fingerprints, pod);
	return a && b && strcmp(a, b) == 0;
}

/* What a step needs to know of one of its tasks. */
static enum hf_task_fact task_fact(const struct hf_service *svc,
				   const struct hf_config *cfg,
				   const struct hf_plan_run *run,
				   struct hf_instance *in,
				   const struct hf_spec_task *task, int64_t now)
{
	struct hf_task_slot *sl = NULL;
	struct hf_task_rec *r;
	bool custom = is_custom(run);

	if (!in)
		return HF_FACT_NONE;
	for (size_t i = 0; i < in->slots.len; i++)
		if (strcmp(in->slots.items[i].task, task->name) == 0)
			sl = &in->slots.items[i];
	if (!sl)
		return HF_FACT_NONE;
	if (task->goal == HF_GOAL_ONCE && !custom && sl->once_done)
		return HF_FACT_DONE;
	r = sl->cur;
	if (!r)
		return HF_FACT_NONE;
	switch (r->state) {
	case HF_TS_STAGING:
		return HF_FACT_STAGED;
	case HF_TS_STARTING:
		return HF_FACT_STARTING;
	case HF_TS_RUNNING:
		if (task->goal != HF_GOAL_RUNNING)
			return HF_FACT_RUNNING;
		if (r->kill)
			return HF_FACT_STAGED; /* being replaced */
		if (!custom && !config_current(svc, r->config_id, cfg, in->pod))
			return HF_FACT_NONE; /* runs an older config */
		return r->ready && !r->paused ? HF_FACT_DONE : HF_FACT_RUNNING;
	case HF_TS_FINISHED:
		if (task->goal == HF_GOAL_RUNNING)
			break;
		if (custom) {
			char *id = run_id(run);
			bool mine = r->run && strcmp(r->run, id) == 0;

			free(id);
			return mine ? HF_FACT_DONE : HF_FACT_NONE;
		}
		if (task->goal == HF_GOAL_ONCE ||
		    config_current(svc, r->config_id, cfg, in->pod))
			return HF_FACT_DONE;
		return HF_FACT_NONE; /* FINISH reruns on a config change */
	default:
		break;
	}
	/*
	 * A launch that cannot succeed by retrying stays in ERROR until its
	 * config changes (an update relaunches it) or its pod is restarted.
	 */
	if (r->permanent && r->state == HF_TS_FAILED && !r->kill &&
	    (custom || config_current(svc, r->config_id, cfg, in->pod))) {
		char *id = custom ? run_id(run) : NULL;
		bool mine = !custom || (r->run && strcmp(r->run, id) == 0);

		free(id);
		if (mine)
			return HF_FACT_ERROR;
	}
	if (custom) {
		/* A failure from an earlier run of a custom plan is history. */
		char *id = run_id(run);
		bool mine = r->run && strcmp(r->run, id) == 0;

		free(id);
		if (!mine)
			return HF_FACT_NONE;
		/*
		 * A custom plan's FINISH or ONCE task that keeps failing
		 * ends the plan in ERROR instead of retrying forever.
		 */
		if (task->goal != HF_GOAL_RUNNING &&
		    sl->failures >= CUSTOM_MAX_FAILURES && !r->kill)
			return HF_FACT_ERROR;
	}
	if (r->kill && !r->finished_at)
		return HF_FACT_STAGED;
	return sl->backoff_until > now ? HF_FACT_BACKOFF : HF_FACT_FAILED;
}

/* ------------------------------------------------------------------ */
/* Placement                                                            */

static void set_message(struct hf_instance *in, const char *msg)
{
	free(in->message);
	in->message = msg ? hf_xstrdup(msg) : NULL;
}

/* What an instance of pod reserves: all its resource sets together. */
static void pod_demand(const struct hf_spec_pod *pod, double *cpus,
		       double *mem)
{
	*cpus = *mem = 0;
	for (size_t r = 0; pod && r < pod->resource_sets.len; r++) {
		*cpus += pod->resource_sets.items[r].cpus;
		*mem += pod->resource_sets.items[r].memory_mb;
	}
}

/* The pod's static port named by number, or NULL. */
static const struct hf_spec_port *static_port(const struct hf_spec_pod *pod,
					      int64_t num)
{
	for (size_t r = 0; r < pod->resource_sets.len; r++) {
		const struct hf_spec_resource_set *rs = &pod->resource_sets.items[r];

		for (size_t p = 0; p < rs->ports.len; p++)
			if (rs->ports.items[p].port > 0 &&
			    rs->ports.items[p].port == num)
				return &rs->ports.items[p];
	}
	return NULL;
}

struct port_vec {
	int64_t *items;
	size_t len, cap;
};

static bool has_static_ports(const struct hf_spec_pod *pod)
{
	for (size_t r = 0; r < pod->resource_sets.len; r++)
		for (size_t p = 0; p < pod->resource_sets.items[r].ports.len; p++)
			if (pod->resource_sets.items[r].ports.items[p].port > 0)
				return true;
	return false;
}

/*
 * Placement works from per-node scratch: instances on each node (load)
 * with the cpus and memory they reserve, and for one pod type where its
 * other instances run and which nodes have one of its static ports taken.
 * During a tick both are computed once and kept up to date by place()
 * itself, so placing n instances costs O(instances + n * nodes) rather
 * than a pass over every instance for each; anything else that moves an
 * instance calls hf_sched_placement_stale().
 */
void hf_sched_placement_stale(struct hf_srv *s)
{
	s->usage_valid = false;
	s->pc_svc = NULL;
}

static void node_usage(struct hf_srv *s)
{
	for (size_t i = 0; i < s->nodes.len; i++) {
		struct hf_node *n = s->nodes.items[i];

		n->load = 0;
		n->used_cpus = n->used_mem = 0;
	}
	for (size_t i = 0; i < s->services.len; i++) {
		struct hf_service *o_svc = s->services.items[i];
		struct hf_config *cfg = hf_state_target(o_svc);

		for (size_t k = 0; k < o_svc->instances.len; k++) {
			struct hf_instance *o = o_svc->instances.items[k];
			struct hf_node *n = hf_state_node(s, o->node);
			double c, m;

			if (!n)
				continue;
			n->load++;
			pod_demand(pod_of(cfg, o->pod), &c, &m);
			n->used_cpus += c;
			n->used_mem += m;
		}
	}
}

static void pod_usage(struct hf_srv *s, struct hf_service *svc,
		      const struct hf_spec_pod *pod)
{
	bool stat = has_static_ports(pod);

	for (size_t i = 0; i < s->nodes.len; i++)
		s->nodes.items[i]->clash_port = 0;
	s->pc_placed.len = 0;
	for (size_t i = 0; i < s->services.len; i++) {
		struct hf_service *o_svc = s->services.items[i];

		if (!stat && o_svc != svc)
			continue;
		for (size_t k = 0; k < o_svc->instances.len; k++) {
			struct hf_instance *o = o_svc->instances.items[k];
			struct hf_node *n = hf_state_node(s, o->node);

			if (!n)
				continue;
			for (size_t p = 0; stat && !n->clash_port &&
					   p < o->ports.len;
			     p++) {
				int64_t num = atoll(o->ports.items[p].value);

				if (num > 0 && static_port(pod, num))
					n->clash_port = num;
			}
			if (o_svc == svc && strcmp(o->pod, pod->name) == 0)
				*HF_VEC_PUSH(&s->pc_placed) = n->idx;
		}
	}
	free(s->pc_pod);
	s->pc_pod = hf_xstrdup(pod->name);
	s->pc_svc = svc;
}

static void placement_scratch(struct hf_srv *s, struct hf_service *svc,
			      const struct hf_spec_pod *pod)
{
	if (!s->in_tick)
		hf_sched_placement_stale(s);
	if (!s->usage_valid) {
		node_usage(s);
		s->usage_valid = true;
	}
	if (s->pc_svc != svc || !s->pc_pod || strcmp(s->pc_pod, pod->name))
		pod_usage(s, svc, pod);
}

/* The scratch after instance `in` of pod went to node n. */
static void placement_add(struct hf_srv *s, const struct hf_spec_pod *pod,
			  const struct hf_instance *in, struct hf_node *n)
{
	double c, m;

	pod_demand(pod, &c, &m);
	n->load++;
	n->used_cpus += c;
	n->used_mem += m;
	for (size_t p = 0; !n->clash_port && p < in->ports.len; p++) {
		int64_t num = atoll(in->ports.items[p].value);

		if (num > 0 && static_port(pod, num))
			n->clash_port = num;
	}
	*HF_VEC_PUSH(&s->pc_placed) = n->idx;
	s->node_lists_valid = false;
	if (!s->in_tick)
		hf_sched_placement_stale(s);
}

/* Ports reserved on node by instances other than self. */
static void ports_on_node(struct hf_srv *s, const char *node,
			  const struct hf_instance *self, struct port_vec *out)
{
	for (size_t i = 0; i < s->services.len; i++) {
		struct hf_service *svc = s->services.items[i];

		for (size_t k = 0; k < svc->instances.len; k++) {
			struct hf_instance *in = svc->instances.items[k];

			if (in == self || !in->node || strcmp(in->node, node))
				continue;
			for (size_t p = 0; p < in->ports.len; p++)
				*HF_VEC_PUSH(out) = atoll(in->ports.items[p].value);
		}
	}
}

static bool port_taken(const int64_t *used, size_t nused,
		       const struct hf_kvlist *mine, int64_t num)
{
	for (size_t i = 0; i < nused; i++)
		if (used[i] == num)
			return true;
	for (size_t i = 0; i < mine->len; i++)
		if (atoll(mine->items[i].value) == num)
			return true;
	return false;
}

static void adopt_kept(struct hf_srv *s, struct hf_service *svc,
		       struct hf_instance *in, struct hf_node *n);

/* The node holding a volume kept under this instance's name, or -1. */
static long kept_node(struct hf_srv *s, const struct hf_service *svc,
		      const struct hf_instance *in)
{
	char *key = hf_sched_instance_volume_key(svc, in);
	long at = -1;

	for (size_t i = 0; i < s->nodes.len && at < 0; i++)
		for (size_t k = 0; k < s->nodes.items[i]->kept.len; k++)
			if (strcmp(s->nodes.items[i]->kept.items[k].key, key) ==
			    0)
				at = (long)i;
	free(key);
	return at;
}

/*
 * Gives an instance a node and its ports, once, for its lifetime: ports
 * and volumes stay the same across task restarts. The node must satisfy
 * the pod's placement constraints (plan/placement.h), have the cpus and
 * memory the pod reserves and its static ports free; among those the
 * least loaded wins. One pass over all instances per call: placing n
 * instances costs O(n * (instances + nodes)).
 */
static bool place(struct hf_srv *s, struct hf_service *svc,
		  const struct hf_spec_pod *pod, struct hf_instance *in,
		  int64_t now)
{
	struct hf_place_node *cands;
	struct port_vec used = {0};
	struct hf_kvlist ports = {0};
	struct hf_strlist notes = {0};
	struct hf_node *best;
	double need_c, need_m;
	char *why = NULL;
	long pick;

	if (in->node)
		return true;
	pod_demand(pod, &need_c, &need_m);
	placement_scratch(s, svc, pod);
	cands = hf_xcalloc(s->nodes.len + 1, sizeof(*cands));
	for (size_t i = 0; i < s->nodes.len; i++) {
		struct hf_node *n = s->nodes.items[i];
		struct hf_place_node *c = &cands[i];
		char *note = NULL;

		c->id = n->id;
		c->hostname = n->hostname;
		c->attributes = &n->attributes;
		c->load = n->load;
		c->usable = hf_node_reachable(s, n, now) && !n->decommissioned;
		if (!c->usable) {
			c->unusable_why = n->decommissioned
					      ? "it is decommissioned"
					      : "its agent is not connected";
			continue;
		}
		if ((n->cpus > 0 && n->used_cpus + need_c > n->cpus + 1e-9) ||
		    (n->memory_mb > 0 &&
		     n->used_mem + need_m > n->memory_mb + 1e-9))
			note = hf_xasprintf("it has %g cpus and %g MB free, the "
					    "pod needs %g cpus and %g MB",
					    n->cpus - n->used_cpus,
					    n->memory_mb - n->used_mem, need_c,
					    need_m);
		else if (n->clash_port)
			note = hf_xasprintf("port %lld (%s) is already reserved "
					    "there",
					    (long long)n->clash_port,
					    static_port(pod, n->clash_port)->name);
		if (note) {
			hf_strlist_push(&notes, note);
			free(note);
			c->usable = false;
			c->unusable_why = notes.items[notes.len - 1];
		}
	}
	pick = -1;
	{
		/*
		 * A node that kept volumes under this instance's name comes
		 * first, if the pod may go there: its data is there.
		 */
		long k = kept_node(s, svc, in);

		if (k >= 0 && cands[k].usable) {
			struct hf_place_node *all =
			    hf_xcalloc(s->nodes.len + 1, sizeof(*all));
			char *ignored = NULL;

			memcpy(all, cands, s->nodes.len * sizeof(*all));
			for (size_t i = 0; i < s->nodes.len; i++)
				if ((long)i != k) {
					cands[i].usable = false;
					cands[i].unusable_why = "";
				}
			pick = hf_place_choose(pod->constraints.items,
					       pod->constraints.len, cands,
					       s->nodes.len, s->pc_placed.items,
					       s->pc_placed.len, &ignored);
			free(ignored);
			/* Not allowed there: choose among all. */
			memcpy(cands, all, s->nodes.len * sizeof(*all));
			free(all);
		}
	}
	if (pick < 0)
		pick = hf_place_choose(pod->constraints.items,
				       pod->constraints.len, cands,
				       s->nodes.len, s->pc_placed.items,
				       s->pc_placed.len, &why);
	free(cands);
	hf_strlist_release(&notes);
	if (pick < 0) {
		char *msg = s->nodes.len
				? hf_xasprintf("cannot be placed: %s", why)
				: hf_xstrdup("waiting for an agent to register");

		if (!in->message || strcmp(in->message, msg) != 0) {
			hf_log("service %s: %s %s", svc->name, in->name, msg);
			hf_event(s, "scheduler", svc->name, "pod", in->name,
				 NULL, "unplaced", msg);
			set_message(in, msg);
			if (s->nodes.len)
				hf_state_save_instance(s, svc, in);
		}
		free(msg);
		free(why);
		return false;
	}
	best = s->nodes.items[pick];
	adopt_kept(s, svc, in, best);
	ports_on_node(s, best->id, in, &used);
	/* Dynamic ports: the lowest free ones of the node's range. */
	for (size_t r = 0; r < pod->resource_sets.len && !why; r++) {
		const struct hf_spec_resource_set *rs = &pod->resource_sets.items[r];

		for (size_t p = 0; p < rs->ports.len && !why; p++) {
			const struct hf_spec_port *sp = &rs->ports.items[p];
			int64_t num = sp->port;
			char buf[24];

			if (num == 0) {
				/*
				 * The port's own ranges when it has some
				 * (open ends meaning 1 and 65535), else the
				 * node's dynamic range.
				 */
				size_t nr = sp->ranges.len ? sp->ranges.len : 1;
				bool found = false;

				for (size_t ri = 0; ri < nr && !found; ri++) {
					int64_t lo = best->port_begin,
						hi = best->port_end;

					if (sp->ranges.len) {
						lo = sp->ranges.items[ri].begin;
						hi = sp->ranges.items[ri].end;
						if (lo < 1)
							lo = 1;
						if (hi < 0)
							hi = 65535;
					}
					for (num = lo; num <= hi; num++) {
						if (!port_taken(used.items, used.len,
								&ports, num)) {
							found = true;
							break;
						}
					}
				}
				if (!found)
					why = hf_xasprintf(
					    "cannot be placed: no free port left "
					    "for '%s' on node %s",
					    sp->name, best->id);
			}
			snprintf(buf, sizeof(buf), "%lld", (long long)num);
			hf_kvlist_set(&ports, sp->name, buf);
		}
	}
	HF_VEC_FREE(&used);
	if (why) {
		if (!in->message || strcmp(in->message, why) != 0) {
			hf_log("service %s: %s %s", svc->name, in->name, why);
			set_message(in, why);
			hf_state_save_instance(s, svc, in);
		}
		free(why);
		hf_kvlist_release(&ports);
		return false;
	}
	in->node = hf_xstrdup(best->id);
	hf_kvlist_release(&in->ports);
	in->ports = ports;
	placement_add(s, pod, in, best);
	set_message(in, NULL);
	hf_state_save_instance(s, svc, in);
	hf_log("service %s: placed %s on node %s", svc->name, in->name,
	       best->id);
	hf_event(s, "scheduler", svc->name, "pod", in->name, NULL, "placed",
		 best->id);
	return true;
}

/* ------------------------------------------------------------------ */
/* Launching                                                            */

static const struct hf_spec_task *task_spec(const struct hf_spec_pod *pod,
					    const char *task)
{
	return pod ? hf_spec_find_task(pod, task) : NULL;
}

/* True if another task of the same resource set is live in the instance. */
static struct hf_task_rec *rs_busy(const struct hf_spec_pod *pod,
				   struct hf_instance *in,
				   const struct hf_spec_task *task)
{
	for (size_t i = 0; i < in->slots.len; i++) {
		struct hf_task_slot *sl = &in->slots.items[i];
		const struct hf_spec_task *other = task_spec(pod, sl->task);

		if (!other || other == task || !sl->cur ||
		    !hf_task_state_live(sl->cur->state))
			continue;
		if (other->resource_set == task->resource_set)
			return sl->cur;
	}
	return NULL;
}

/*
 * Records launches of tasks in an instance (one write, before any agent
 * can see them) and makes them visible.
 */
static void launch(struct hf_srv *s, struct hf_service *svc,
		   const char *config_id, const struct hf_plan_run *run,
		   const char *run_name, struct hf_instance *in,
		   const struct hf_strlist *tasks, bool restart)
{
	const struct hf_config *cfg = hf_state_config(svc, config_id);
	const struct hf_spec_pod *pod = pod_of(cfg, in->pod);
	int64_t now = hf_now_ms();

	for (size_t i = 0; i < tasks->len; i++) {
		const struct hf_spec_task *t = task_spec(pod, tasks->items[i]);
		struct hf_task_slot *sl = hf_state_slot(in, tasks->items[i]);
		struct hf_task_rec *r = hf_xcalloc(1, sizeof(*r));
		char *uuid = hf_new_uuid();

		r->id = hf_xasprintf("%s-%s__%s", in->name, sl->task, uuid);
		free(uuid);
		r->config_id = hf_xstrdup(config_id);
		r->run = run ? run_id(run) : hf_xstrdup(run_name ? run_name
								  : "recovery");
		r->state = HF_TS_STAGING;
		r->exit_code = -1;
		r->healthy = -1;
		r->launched_at = now;
		r->paused = in->paused;
		if (run)
			hf_kvlist_copy(&r->params, &run->params);
		else if (sl->cur)
			hf_kvlist_copy(&r->params, &sl->cur->params);
		hf_task_rec_free(sl->cur);
		sl->cur = r;
		sl->launches++;
		if (restart) {
			sl->restarts++;
			s->restarts++;
		}
		if (t && t->goal == HF_GOAL_RUNNING)
			sl->want_running = true;
		s->launches++;
		hf_log("service %s: %s %s on node %s (config %s)", svc->name,
		       restart ? "relaunching" : "launching", r->id, in->node,
		       config_id);
		hf_event(s, "scheduler", svc->name, "task", r->id, NULL,
			 "STAGING",
			 restart ? "relaunch after a failure"
			 : run	 ? run->plan
				 : run_name);
	}
	hf_state_save_instance(s, svc, in);
	hf_sched_changed(s, true);
}

/*
 * Asks for a live task to be stopped. restart: recovery relaunches it once
 * it stopped (its pod restarts, or a resource set was borrowed); otherwise
 * whoever stopped it decides what comes next.
 */
static void kill_task(struct hf_srv *s, struct hf_service *svc,
		      struct hf_instance *in, struct hf_task_rec *r,
		      const char *why, bool restart)
{
	if (r->kill || !hf_task_state_live(r->state))
		return;
	r->kill = true;
	r->restart = restart;
	if (r->state == HF_TS_STAGING) {
		/* Never seen by an agent: nothing to stop. */
		r->state = HF_TS_KILLED;
		r->finished_at = hf_now_ms();
	}
	hf_log("service %s: stopping %s: %s", svc->name, r->id, why);
	hf_event(s, "scheduler", svc->name, "task", r->id,
		 hf_task_state_name(r->state), "stopping", why);
	hf_state_save_instance(s, svc, in);
	hf_sched_changed(s, true);
}

/*
 * A replacement instance first runs its pod's `replace` tasks (bootstrap
 * from a peer, with REPLACED_* in their env). Returns true once they all
 * finished; launches what is missing otherwise.
 */
static bool replace_tasks_done(struct hf_srv *s, struct hf_service *svc,
			       struct hf_config *cfg,
			       const struct hf_spec_pod *pod,
			       struct hf_instance *in, int64_t now)
{
	struct hf_strlist todo = {0};
	bool waiting = false;

	for (size_t i = 0; i < pod->replace_tasks.len; i++) {
		struct hf_task_slot *sl =
		    hf_state_slot(in, pod->replace_tasks.items[i]);
		struct hf_task_rec *r = sl->cur;

		if (r && r->state == HF_TS_FINISHED)
			continue;
		waiting = true;
		if (r && hf_task_state_live(r->state))
			continue;
		if (r && sl->backoff_until > now)
			continue;
		hf_strlist_push(&todo, sl->task);
	}
	if (todo.len)
		launch(s, svc, cfg->id, NULL, "replace", in, &todo, false);
	hf_strlist_release(&todo);
	if (!waiting) {
		in->replace_pending = false;
		hf_state_save_instance(s, svc, in);
		hf_log("service %s: %s finished its replace tasks", svc->name,
		       in->name);
	}
	return !waiting;
}

static void act_step(struct hf_srv *s, struct hf_service *svc,
		     struct hf_config *cfg, struct hf_plan_run *run,
		     const struct hf_plan_step_def *st, int64_t now)
{
	const struct hf_spec_pod *pod = pod_of(cfg, st->pod);
	struct hf_instance *in;
	struct hf_strlist todo = {0};
	char *name;

	if (!pod)
		return;
	name = hf_xasprintf("%s-%lld", st->pod, (long long)st->index);
	in = hf_state_instance(svc, name);
	free(name);
	if (!in)
		in = hf_state_instance_add(svc, st->pod, st->index);
	if (!place(s, svc, pod, in, now))
		return;
	if (in->replace_pending && !replace_tasks_done(s, svc, cfg, pod, in, now))
		return;
	for (size_t i = 0; i < st->tasks.len; i++) {
		const struct hf_spec_task *t = task_spec(pod, st->tasks.items[i]);
		enum hf_task_fact f;
		struct hf_task_rec *busy;

		if (!t)
			continue;
		f = task_fact(svc, cfg, run, in, t, now);
		if (f != HF_FACT_NONE && f != HF_FACT_FAILED)
			continue;
		{
			struct hf_task_slot *sl = hf_state_slot(in, t->name);

			if (sl->cur && hf_task_state_live(sl->cur->state)) {
				/* An older launch still runs: stop it first. */
				kill_task(s, svc, in, sl->cur,
					  "the plan relaunches it", false);
				continue;
			}
		}
		busy = rs_busy(pod, in, t);
		if (busy) {
			kill_task(s, svc, in, busy,
				  "its resource set is needed by another task",
				  true);
			continue;
		}
		hf_strlist_push(&todo, t->name);
	}
	if (todo.len) {
		bool restart = false;

		for (size_t i = 0; i < todo.len; i++) {
			struct hf_task_slot *sl = hf_state_slot(in, todo.items[i]);

			if (sl->cur && sl->cur->state == HF_TS_FAILED)
				restart = true;
		}
		launch(s, svc, cfg->id, run, NULL, in, &todo, restart);
	}
	hf_strlist_release(&todo);
}

/* ------------------------------------------------------------------ */
/* Plan runs                                                            */

static size_t total_steps(const struct hf_plan_def *def)
{
	size_t n = 0;

	for (size_t p = 0; p < def->phases.len; p++)
		n += def->phases.items[p].steps.len;
	return n;
}

static char *step_key(const struct hf_plan_phase_def *ph,
		      const struct hf_plan_step_def *st)
{
	return hf_xasprintf("%s/%s", ph->name, st->name);
}

/*
 * What a user should know of a step that is not complete: why its
 * instance cannot be placed, its tasks' failures, a readiness check that
 * fails (with its output), a backoff and when it ends. Only stable text:
 * `--wait` prints a step again whenever its message changes.
 */
static char *step_message(struct hf_service *svc, struct hf_config *cfg,
			  const struct hf_plan_step_def *st, int64_t now)
{
	char *name = hf_xasprintf("%s-%lld", st->pod, (long long)st->index);
	struct hf_instance *in = hf_state_instance(svc, name);
	struct hf_buf b = HF_BUF_INIT;

	free(name);
	(void)cfg;
	if (!in)
		return NULL;
	if (in->message)
		hf_buf_adds(&b, in->message);
	for (size_t i = 0; i < st->tasks.len; i++) {
		struct hf_task_slot *sl = NULL;

		for (size_t k = 0; k < in->slots.len; k++)
			if (strcmp(in->slots.items[k].task, st->tasks.items[i]) ==
			    0)
				sl = &in->slots.items[k];
		if (!sl || !sl->cur)
			continue;
		if (sl->cur->message)
			hf_buf_addf(&b, "%s%s: %s", b.len ? "; " : "", sl->task,
				    sl->cur->message);
		if (sl->cur->state == HF_TS_RUNNING && !sl->cur->ready &&
		    sl->cur->not_ready)
			hf_buf_addf(&b, "%s%s: not ready: readiness check: %s",
				    b.len ? "; " : "", sl->task,
				    sl->cur->not_ready);
		if (!hf_task_state_live(sl->cur->state) &&
		    sl->backoff_until > now) {
			char when[40];
			time_t secs = (time_t)(sl->backoff_until / 1000);
			struct tm tm;

			gmtime_r(&secs, &tm);
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
			hf_buf_addf(&b,
				    "%s%s: in backoff after %u failure%s, "
				    "relaunched at %s",
				    b.len ? "; " : "", sl->task, sl->failures,
				    sl->failures == 1 ? "" : "s", when);
		}
	}
	return b.len ? hf_buf_detach(&b) : NULL;
}

/* Evaluates a run without acting; fills a view the caller releases. */
static void eval_run(struct hf_srv *s, struct hf_service *svc,
		     struct hf_config *cfg, struct hf_plan_run *run,
		     const struct hf_plan_def *def, struct hf_plan_view *v)
{
	size_t n = total_steps(def), base = 0;
	struct hf_step_in *in = hf_xcalloc(n ? n : 1, sizeof(*in));
	bool *ph_int = hf_xcalloc(def->phases.len + 1, sizeof(*ph_int));
	int *cont = hf_xcalloc(def->phases.len + 1, sizeof(*cont));
	struct hf_plan_overrides ov = {
	    .interrupted = run ? run->interrupted : false,
	    .phase_interrupted = ph_int,
	    .canary_continues = cont,
	};
	int64_t now = hf_now_ms();
	/* The run's step lists, indexed: a plan may have thousands of steps. */
	struct hf_map completed = {0}, forced = {0}, started = {0}, waits = {0};

	(void)s;
	memset(v, 0, sizeof(*v));
	v->def = def;
	v->steps = hf_xcalloc(n ? n : 1, sizeof(*v->steps));
	v->phases = hf_xcalloc(def->phases.len + 1, sizeof(*v->phases));
	v->messages = hf_xcalloc(n ? n : 1, sizeof(*v->messages));
	v->completed = hf_xcalloc(n ? n : 1, sizeof(*v->completed));
	v->started = hf_xcalloc(n ? n : 1, sizeof(*v->started));
	for (size_t i = 0; run && i < run->completed.len; i++)
		hf_map_put(&completed, run->completed.items[i], v);
	for (size_t i = 0; run && i < run->force_complete.len; i++)
		hf_map_put(&forced, run->force_complete.items[i], v);
	for (size_t i = 0; run && i < run->step_started.len; i++)
		hf_map_put(&started, run->step_started.items[i].key,
			   (void *)run->step_started.items[i].value);
	for (size_t i = 0; run && i < run->waits.len; i++)
		hf_map_put(&waits, run->waits.items[i].key,
			   (void *)run->waits.items[i].value);
	for (size_t p = 0; p < def->phases.len; p++) {
		const struct hf_plan_phase_def *ph = &def->phases.items[p];
		const struct hf_spec_pod *pod = pod_of(cfg, ph->pod);

		if (run) {
			const char *c = hf_kvlist_get(&run->continues, ph->name);

			ph_int[p] = hf_strlist_has(&run->interrupted_phases,
						   ph->name);
			cont[p] = c ? atoi(c) : 0;
		}
		for (size_t k = 0; k < ph->steps.len; k++) {
			const struct hf_plan_step_def *st = &ph->steps.items[k];
			enum hf_task_fact facts[64];
			size_t nf = 0;
			char *iname = hf_xasprintf("%s-%lld", st->pod,
						   (long long)st->index);
			struct hf_instance *inst = hf_state_instance(svc, iname);
			char *key = step_key(ph, st);
			bool late = false;

			free(iname);
			for (size_t t = 0; t < st->tasks.len && nf < 64; t++) {
				const struct hf_spec_task *ts =
				    task_spec(pod, st->tasks.items[t]);

				if (ts)
					facts[nf++] = task_fact(svc, cfg, run,
								inst, ts, now);
			}
			in[base + k].observed =
			    run ? hf_plan_step_observe(facts, nf)
				: HF_STATUS_PENDING;
			v->completed[base + k] = hf_map_get(&completed, key);
			{
				const char *t0 = hf_map_get(&started, key);

				v->started[base + k] = t0 ? atoll(t0) : 0;
			}
			/* healthy-deadline: a step too slow to complete. */
			if (run && def->healthy_deadline > 0 &&
			    in[base + k].observed != HF_STATUS_COMPLETE &&
			    !v->completed[base + k]) {
				const char *t0 = hf_map_get(&started, key);

				if (t0 && now - atoll(t0) >
					      (int64_t)(def->healthy_deadline *
							1000)) {
					in[base + k].observed = HF_STATUS_ERROR;
					late = true;
				}
			}
			in[base + k].completed = v->completed[base + k];
			in[base + k].force_complete = hf_map_get(&forced, key);
			v->messages[base + k] = step_message(svc, cfg, st, now);
			if (run && !v->completed[base + k] &&
			    in[base + k].observed != HF_STATUS_COMPLETE) {
				const char *w = hf_map_get(&waits, key);

				if (w) {
					char *m = hf_xasprintf(
					    "%s%s%s", w,
					    v->messages[base + k] ? "; " : "",
					    v->messages[base + k]
						? v->messages[base + k]
						: "");

					free(v->messages[base + k]);
					v->messages[base + k] = m;
				}
			}
			if (late) {
				char *m = hf_xasprintf(
				    "not complete within the plan's "
				    "healthy-deadline of %g s%s%s",
				    def->healthy_deadline,
				    v->messages[base + k] ? "; " : "",
				    v->messages[base + k] ? v->messages[base + k]
							  : "");

				free(v->messages[base + k]);
				v->messages[base + k] = m;
			}
			free(key);
		}
		base += ph->steps.len;
	}
	v->status = hf_plan_eval(def, in, &ov, v->steps, v->phases);
	if (!run) {
		/* Not started: nothing acts and everything waits. */
		for (size_t i = 0; i < n; i++) {
			v->steps[i].act = false;
			if (v->steps[i].status != HF_STATUS_COMPLETE)
				v->steps[i].status = HF_STATUS_PENDING;
		}
		for (size_t p = 0; p < def->phases.len; p++)
			if (v->phases[p].status != HF_STATUS_COMPLETE)
				v->phases[p].status = HF_STATUS_PENDING;
		if (v->status != HF_STATUS_COMPLETE)
			v->status = HF_STATUS_PENDING;
	}
	free(in);
	free(ph_int);
	free(cont);
	hf_map_release(&completed);
	hf_map_release(&forced);
	hf_map_release(&started);
	hf_map_release(&waits);
}

void hf_plan_view_release(struct hf_plan_view *v)
{
	size_t n = v->def ? total_steps(v->def) : 0;

	for (size_t i = 0; v->messages && i < n; i++)
		free(v->messages[i]);
	free(v->messages);
	free(v->completed);
	free(v->started);
	free(v->steps);
	free(v->phases);
	hf_plan_defs_release(&v->owned);
	memset(v, 0, sizeof(*v));
}

/*
 * The generated recovery plan: one phase per pod type with a step for
 * every instance whose kept-running tasks failed and are being (or waiting
 * to be) relaunched.
 */
static void build_recovery(struct hf_service *svc, struct hf_config *cfg,
			   struct hf_plan_defs *out)
{
	struct hf_plan_def *def = HF_VEC_PUSH(out);

	def->name = hf_xstrdup("recovery");
	def->kind = HF_PLAN_CUSTOM;
	def->generated = true;
	def->strategy = HF_STRATEGY_PARALLEL;
	for (size_t p = 0; p < cfg->spec->pods.len; p++) {
		const struct hf_spec_pod *pod = &cfg->spec->pods.items[p];
		struct hf_plan_phase_def *ph = NULL;

		for (size_t i = 0; i < svc->instances.len; i++) {
			struct hf_instance *in = svc->instances.items[i];
			struct hf_plan_step_def *st;
			struct hf_strlist tasks = {0};
			struct hf_buf name = HF_BUF_INIT;

			if (strcmp(in->pod, pod->name) != 0)
				continue;
			for (size_t k = 0; k < in->slots.len; k++) {
				struct hf_task_slot *sl = &in->slots.items[k];
				struct hf_task_rec *r = sl->cur;
				bool recovering =
				    sl->want_running && r &&
				    ((!hf_task_state_live(r->state) &&
				      !(r->kill && !r->restart)) ||
				     (r->run && strcmp(r->run, "recovery") == 0 &&
				      !(r->state == HF_TS_RUNNING && r->ready)));

				if (recovering)
					hf_strlist_push(&tasks, sl->task);
			}
			if (!tasks.len)
				continue;
			if (!ph) {
				ph = HF_VEC_PUSH(&def->phases);
				ph->name = hf_xasprintf("%s-recovery", pod->name);
				ph->pod = hf_xstrdup(pod->name);
				ph->strategy = HF_STRATEGY_PARALLEL;
			}
			st = HF_VEC_PUSH(&ph->steps);
			hf_buf_addf(&name, "%s:[", in->name);
			for (size_t k = 0; k < tasks.len; k++)
				hf_buf_addf(&name, "%s%s", k ? ", " : "",
					    tasks.items[k]);
			hf_buf_addc(&name, ']');
			st->name = hf_buf_detach(&name);
			st->pod = hf_xstrdup(in->pod);
			st->index = in->index;
			st->tasks = tasks;
		}
	}
}

int hf_sched_plan_view(struct hf_srv *s, struct hf_service *svc,
		       const char *name, struct hf_plan_view *v)
{
	struct hf_config *cfg = hf_state_target(svc);
	const struct hf_plan_def *def;
	struct hf_plan_run recovery_run = {0};

	memset(v, 0, sizeof(*v));
	if (!cfg || !cfg->spec)
		return HF_ENOTFOUND;
	def = hf_plan_defs_find(&cfg->plans, name);
	if (!def && strcmp(name, "decommission") == 0) {
		decommission_view(svc, cfg, v);
		return 0;
	}
	if (!def && strcmp(name, "recovery") == 0) {
		struct hf_plan_defs owned = {0};

		build_recovery(svc, cfg, &owned);
		recovery_run.plan = (char *)"recovery";
		recovery_run.active = true;
		eval_run(s, svc, cfg, &recovery_run, &owned.items[0], v);
		v->owned = owned;
		v->def = &v->owned.items[0];
		return 0;
	}
	if (!def)
		return HF_ENOTFOUND;
	eval_run(s, svc, cfg, hf_state_run(svc, name), def, v);
	return 0;
}

/*
 * One step at a time works on a pod instance, across every plan of the
 * service (the SDK's "dirty assets"). Two steps that worked on one
 * instance at once could undo each other for ever: one stops a task so
 * that its resource set is free for its own, the other stops that one in
 * turn. A step under way (started, neither complete nor failed for good)
 * holds its instance until it completes; among several, the one that
 * started first, so a holder keeps its instance from one tick to the
 * next. A step that would start takes an instance nobody holds, in plan
 * order, and the others wait, saying for whom.
 */
struct claim {
	char *instance;          /* the map's key */
	size_t run;              /* index in svc->runs */
	size_t step;             /* flattened index in the run's plan */
	const struct hf_plan_step_def *def;
	int64_t since;           /* its start (ms) */
};

struct claims {
	struct hf_map by_instance; /* instance name -> struct claim */
	HF_VEC(struct claim *) all;
};

static struct claim *claim_add(struct claims *cl, const char *instance,
			       size_t run, size_t step,
			       const struct hf_plan_step_def *def, int64_t since)
{
	struct claim *c = hf_xcalloc(1, sizeof(*c));

	c->instance = hf_xstrdup(instance);
	c->run = run;
	c->step = step;
	c->def = def;
	c->since = since;
	*HF_VEC_PUSH(&cl->all) = c;
	hf_map_put(&cl->by_instance, c->instance, c);
	return c;
}

static void claims_release(struct claims *cl)
{
	for (size_t i = 0; i < cl->all.len; i++) {
		free(cl->all.items[i]->instance);
		free(cl->all.items[i]);
	}
	HF_VEC_FREE(&cl->all);
	hf_map_release(&cl->by_instance);
}

static char *step_instance(const struct hf_plan_step_def *st)
{
	return hf_xasprintf("%s-%lld", st->pod, (long long)st->index);
}

/* The steps under way of one evaluated run take their instances. */
static void claims_from_run(struct claims *cl, const struct hf_plan_run *run,
			    size_t r, const struct hf_plan_def *def,
			    const struct hf_plan_view *v)
{
	size_t base = 0;

	if (!run->active || run->interrupted)
		return;
	for (size_t p = 0; p < def->phases.len; p++) {
		const struct hf_plan_phase_def *ph = &def->phases.items[p];

		if (hf_strlist_has(&run->interrupted_phases, ph->name)) {
			base += ph->steps.len;
			continue;
		}
		for (size_t k = 0; k < ph->steps.len; k++) {
			const struct hf_step_out *o = &v->steps[base + k];
			int64_t since = v->started[base + k];
			char *name;
			struct claim *c;

			if (!since || o->status == HF_STATUS_COMPLETE ||
			    o->status == HF_STATUS_ERROR)
				continue;
			name = step_instance(&ph->steps.items[k]);
			c = hf_map_get(&cl->by_instance, name);
			if (!c) {
				claim_add(cl, name, r, base + k,
					  &ph->steps.items[k], since);
			} else if (since < c->since) {
				c->run = r;
				c->step = base + k;
				c->def = &ph->steps.items[k];
				c->since = since;
			}
			free(name);
		}
		base += ph->steps.len;
	}
}

/*
 * Whether step `i` of run `r` may work on its instance now; takes the
 * instance when nobody holds it. Otherwise *why says what it waits for.
 */
static bool claim_step(struct hf_service *svc, struct claims *cl, size_t r,
		       size_t i, const struct hf_plan_step_def *st,
		       int64_t now, char **why)
{
	char *name = step_instance(st);
	struct hf_instance *in = hf_state_instance(svc, name);
	struct claim *c = hf_map_get(&cl->by_instance, name);
	bool ok = false;

	*why = NULL;
	if (in && (in->replacing || in->decom)) {
		*why = hf_xasprintf("waits: %s is being %s", name,
				    in->replacing ? "replaced"
						  : "decommissioned");
	} else if (c && (c->run != r || c->step != i)) {
		const struct hf_plan_run *o = &svc->runs.items[c->run];

		*why = hf_xasprintf("waits for step %s of plan %s: one step at "
				    "a time works on %s",
				    c->def->name, o->plan, name);
	} else {
		if (!c)
			claim_add(cl, name, r, i, st, now);
		ok = true;
	}
	free(name);
	return ok;
}

/* A run's plan in cfg; a run whose plan is gone stops (NULL). */
static const struct hf_plan_def *run_def(struct hf_srv *s,
					 struct hf_service *svc,
					 struct hf_config *cfg,
					 struct hf_plan_run *run)
{
	const struct hf_plan_def *def = hf_plan_defs_find(&cfg->plans, run->plan);

	if (!def) {
		run->active = false;
		hf_state_save_run(s, svc, run);
	}
	return def;
}

static void tick_run(struct hf_srv *s, struct hf_service *svc,
		     struct hf_config *cfg, size_t r,
		     const struct hf_plan_def *def, struct hf_plan_view *vp,
		     struct claims *cl, int64_t now)
{
	struct hf_plan_run *run = &svc->runs.items[r];
	struct hf_plan_view v = *vp;
	bool dirty = false;
	size_t base = 0;

	for (size_t p = 0; p < def->phases.len; p++) {
		const struct hf_plan_phase_def *ph = &def->phases.items[p];

		for (size_t k = 0; k < ph->steps.len; k++) {
			const struct hf_plan_step_def *st = &ph->steps.items[k];
			struct hf_step_out *o = &v.steps[base + k];

			if (o->status == HF_STATUS_COMPLETE) {
				if (!v.completed[base + k]) {
					char *key = step_key(ph, st);

					hf_strlist_push(&run->completed, key);
					free(key);
					dirty = true;
				}
			} else if (o->act && !run->interrupted) {
				char *key = step_key(ph, st);
				char *why = NULL;

				if (!claim_step(svc, cl, r, base + k, st, now,
						&why)) {
					/* Once per step and tick: no search. */
					hf_kvlist_append(&run->waits, key, why);
					free(why);
					free(key);
					continue;
				}
				if (!v.started[base + k]) {
					char ms[24];

					snprintf(ms, sizeof(ms), "%lld",
						 (long long)now);
					hf_kvlist_append(&run->step_started, key,
							 ms);
					dirty = true;
				}
				free(key);
				act_step(s, svc, cfg, run, st, now);
			}
		}
		base += ph->steps.len;
	}
	if (v.status != run->status) {
		hf_log("service %s: plan %s %s -> %s", svc->name, run->plan,
		       hf_status_name(run->status), hf_status_name(v.status));
		hf_event(s, "scheduler", svc->name, "plan", run->plan,
			 hf_status_name(run->status), hf_status_name(v.status),
			 NULL);
		run->status = v.status;
		dirty = true;
		hf_sched_changed(s, false);
	}
	if (v.status == HF_STATUS_COMPLETE && run->active) {
		run->active = false;
		run->finished_at = now;
		dirty = true;
	}
	if (dirty)
		hf_state_save_run(s, svc, run);
	if (v.status == HF_STATUS_ERROR && def->auto_revert && !run->reverted &&
	    svc->previous && hf_state_config(svc, svc->previous)) {
		run->reverted = true;
		hf_state_save_run(s, svc, run);
		hf_log("service %s: plan %s failed; auto-revert to config %s",
		       svc->name, run->plan, svc->previous);
		hf_event(s, "scheduler", svc->name, "service", svc->name,
			 svc->target, svc->previous,
			 "auto-revert: the update failed");
		hf_sched_set_target(s, svc, hf_state_config(svc, svc->previous),
				    true);
	}
}

static void recover(struct hf_srv *s, struct hf_service *svc,
		    struct hf_config *cfg, const struct claims *cl,
		    int64_t now);

/*
 * Every active run of a service: all are evaluated first, so that steps
 * already under way hold their instances before any step starts; then
 * each acts; then recovery, which never relaunches a task into a
 * resource set a holding step needs.
 */
static void tick_runs(struct hf_srv *s, struct hf_service *svc,
		      struct hf_config *cfg, int64_t now)
{
	size_t nr = svc->runs.len;
	struct hf_plan_view *views = hf_xcalloc(nr + 1, sizeof(*views));
	const struct hf_plan_def **defs = hf_xcalloc(nr + 1, sizeof(*defs));
	struct claims cl = {0};

	for (size_t r = 0; r < nr; r++) {
		struct hf_plan_run *run = &svc->runs.items[r];

		hf_kvlist_release(&run->waits);
		if (!run->active)
			continue;
		defs[r] = run_def(s, svc, cfg, run);
		if (defs[r])
			eval_run(s, svc, cfg, run, defs[r], &views[r]);
	}
	for (size_t r = 0; r < nr; r++)
		if (defs[r])
			claims_from_run(&cl, &svc->runs.items[r], r, defs[r],
					&views[r]);
	/*
	 * A run may start another (auto-revert): runs added meanwhile wait
	 * for the next tick, and svc->runs may move, so runs go by index.
	 */
	for (size_t r = 0; r < nr; r++)
		if (defs[r] && svc->runs.items[r].active)
			tick_run(s, svc, cfg, r, defs[r], &views[r], &cl, now);
	recover(s, svc, cfg, &cl, now);
	for (size_t r = 0; r < nr; r++)
		if (defs[r])
			hf_plan_view_release(&views[r]);
	claims_release(&cl);
	free(views);
	free(defs);
}

void hf_sched_set_target(struct hf_srv *s, struct hf_service *svc,
			 struct hf_config *cfg, bool rollback)
{
	const char *plan;

	struct hf_config *old = hf_state_target(svc);

	/*
	 * A change relaunches the instances of pods whose effective spec
	 * changed: their tasks start afresh, without the restart backoff
	 * their old spec's failures earned (the change may be the fix).
	 */
	for (size_t i = 0; i < svc->instances.len; i++) {
		struct hf_instance *in = svc->instances.items[i];
		const char *a = old ? hf_kvlist_get(&old->fingerprints, in->pod)
				    : NULL;
		const char *b = hf_kvlist_get(&cfg->fingerprints, in->pod);
		bool reset = false;

		if (a && b && strcmp(a, b) == 0)
			continue;
		for (size_t k = 0; k < in->slots.len; k++) {
			struct hf_task_slot *sl = &in->slots.items[k];

			if (sl->failures || sl->backoff_until) {
				sl->failures = 0;
				sl->backoff_until = 0;
				reset = true;
			}
		}
		if (reset)
			hf_state_save_instance(s, svc, in);
	}
	free(svc->previous);
	svc->previous = svc->target;
	svc->target = hf_xstrdup(cfg->id);
	hf_sched_placement_stale(s); /* reservations follow the target */
	hf_state_save_service(s, svc);
	plan = hf_spec_update_plan_name(cfg->spec, false);
	hf_log("service %s: target is now config %s (%s); plan %s runs",
	       svc->name, cfg->id, rollback ? "rollback" : "update", plan);
	/* Other runs of the old config's plans stop where they are. */
	for (size_t i = 0; i < svc->runs.len; i++) {
		struct hf_plan_run *r = &svc->runs.items[i];

		if (r->active && strcmp(r->plan, plan) != 0 &&
		    (strcmp(r->plan, "deploy") == 0 ||
		     strcmp(r->plan, "update") == 0)) {
			r->active = false;
			hf_state_save_run(s, svc, r);
		}
	}
	hf_sched_start_plan(s, svc, plan, NULL);
}

void hf_sched_start_plan(struct hf_srv *s, struct hf_service *svc,
			 const char *plan, const struct hf_kvlist *params)
{
	struct hf_plan_run *run = hf_state_run(svc, plan);

	if (!run) {
		run = HF_VEC_PUSH(&svc->runs);
		run->plan = hf_xstrdup(plan);
	}
	run->number++;
	run->active = true;
	run->interrupted = false;
	run->status = HF_STATUS_PENDING;
	free(run->config_id);
	run->config_id = svc->target ? hf_xstrdup(svc->target) : NULL;
	hf_strlist_release(&run->completed);
	hf_strlist_release(&run->force_complete);
	hf_strlist_release(&run->interrupted_phases);
	hf_kvlist_release(&run->continues);
	hf_kvlist_release(&run->step_started);
	run->reverted = false;
	if (params) {
		hf_kvlist_release(&run->params);
		hf_kvlist_copy(&run->params, params);
	}
	run->started_at = hf_now_ms();
	run->finished_at = 0;
	/* A new run of a custom plan starts its tasks' failure count afresh. */
	if (is_custom(run)) {
		struct hf_config *cfg = hf_state_target(svc);
		const struct hf_plan_def *def =
		    cfg ? hf_plan_defs_find(&cfg->plans, plan) : NULL;

		for (size_t p = 0; def && p < def->phases.len; p++)
			for (size_t k = 0; k < def->phases.items[p].steps.len;
			     k++) {
				const struct hf_plan_step_def *st =
				    &def->phases.items[p].steps.items[k];
				char *iname = hf_xasprintf("%s-%lld", st->pod,
							   (long long)st->index);
				struct hf_instance *in =
				    hf_state_instance(svc, iname);

				free(iname);
				for (size_t t = 0; in && t < st->tasks.len; t++) {
					struct hf_task_slot *sl =
					    hf_state_slot(in, st->tasks.items[t]);

					sl->failures = 0;
					sl->backoff_until = 0;
				}
				if (in)
					hf_state_save_instance(s, svc, in);
			}
	}
	hf_state_save_run(s, svc, run);
	hf_log("service %s: plan %s started (run %u)", svc->name, plan,
	       run->number);
	hf_event(s, "scheduler", svc->name, "plan", plan, NULL, "started",
		 params && params->len ? "with parameters" : NULL);
	hf_sched_changed(s, false);
}

/* ------------------------------------------------------------------ */
/* Recovery                                                             */

/* Is this instance's task part of a step an active plan is working on? */
static bool in_active_step(struct hf_service *svc, struct hf_config *cfg,
			   const struct hf_instance *in, const char *task)
{
	for (size_t r = 0; r < svc->runs.len; r++) {
		const struct hf_plan_run *run = &svc->runs.items[r];
		const struct hf_plan_def *def;

		if (!run->active || run->interrupted)
			continue;
		def = hf_plan_defs_find(&cfg->plans, run->plan);
		for (size_t p = 0; def && p < def->phases.len; p++) {
			const struct hf_plan_phase_def *ph = &def->phases.items[p];

			for (size_t k = 0; k < ph->steps.len; k++) {
				const struct hf_plan_step_def *st =
				    &ph->steps.items[k];
				char *key;
				bool done;

				if (strcmp(st->pod, in->pod) ||
				    st->index != in->index ||
				    !hf_strlist_has(&st->tasks, task))
					continue;
				/*
				 * Only a step the plan already works on owns
				 * the task; a crash in a step still waiting
				 * for its turn is recovery's, with the config
				 * the task ran.
				 */
				key = step_key(ph, st);
				done = hf_strlist_has(&run->completed, key) ||
				       !hf_kvlist_get(&run->step_started, key);
				free(key);
				if (!done)
					return true;
			}
		}
	}
	return false;
}

/*
 * Whether the step holding instance `in` uses task t's resource set with
 * a task of its own: recovery then leaves the set to the step, or the two
 * would take it from each other in turn.
 */
static bool held_for(const struct claims *cl, const struct hf_spec_pod *pod,
		     const struct hf_instance *in, const struct hf_spec_task *t)
{
	const struct claim *c = hf_map_get(&cl->by_instance, in->name);

	for (size_t i = 0; c && i < c->def->tasks.len; i++) {
		const struct hf_spec_task *o =
		    task_spec(pod, c->def->tasks.items[i]);

		if (o && o->resource_set == t->resource_set)
			return true;
	}
	return false;
}

static void recover(struct hf_srv *s, struct hf_service *svc,
		    struct hf_config *cfg, const struct claims *cl,
		    int64_t now)
{
	for (size_t i = 0; i < svc->instances.len; i++) {
		struct hf_instance *in = svc->instances.items[i];
		const struct hf_spec_pod *pod = pod_of(cfg, in->pod);
		struct hf_strlist todo = {0};
		const char *config_id = NULL;

		if (!pod || !in->node)
			continue;
		if ((int64_t)in->index >= pod->count)
			continue; /* decommissioned (issue 5 owns this) */
		for (size_t k = 0; k < in->slots.len; k++) {
			struct hf_task_slot *sl = &in->slots.items[k];
			const struct hf_spec_task *t = task_spec(pod, sl->task);
			struct hf_task_rec *r = sl->cur;

			if (!t || !sl->want_running || !r ||
			    hf_task_state_live(r->state))
				continue;
			if (r->kill && !r->restart)
				continue; /* stopped on purpose */
			if (r->permanent && r->state == HF_TS_FAILED)
				continue; /* waits for a new config */
			if (in_active_step(svc, cfg, in, sl->task))
				continue;
			if (sl->backoff_until > now)
				continue;
			if (rs_busy(pod, in, t) || held_for(cl, pod, in, t))
				continue;
			hf_strlist_push(&todo, sl->task);
			if (!config_id || !hf_state_config(svc, r->config_id))
				config_id = hf_state_config(svc, r->config_id)
						? r->config_id
						: cfg->id;
		}
		if (todo.len) {
			char *cid = hf_xstrdup(config_id);

			launch(s, svc, cid, NULL, "recovery", in, &todo, true);
			free(cid);
		}
		hf_strlist_release(&todo);
	}
}

/* ------------------------------------------------------------------ */
/* Removal and kept volumes                                             */

char *hf_sched_instance_volume_key(const struct hf_service *svc,
				   const struct hf_instance *in)
{
	char *s = hf_name_escape(svc->name), *i = hf_name_escape(in->name);
	char *key = hf_xasprintf("%s/%s", s, i);

	free(s);
	free(i);
	return key;
}

bool hf_sched_volume_of(const char *key, const char *svc,
			const char *instance)
{
	char *esvc = hf_name_escape(svc);
	char *einst = instance ? hf_name_escape(instance) : NULL;
	size_t n = strlen(esvc);
	bool yes = strncmp(key, esvc, n) == 0 && key[n] == '/' &&
		   (!einst || strcmp(key + n + 1, einst) == 0);

	free(esvc);
	free(einst);
	return yes;
}

void hf_sched_keep_volume(struct hf_srv *s, struct hf_node *n,
			  const char *key, const char *why)
{
	struct hf_kept_volume *kv;
	const char *slash = strchr(key, '/');
	char *svc = hf_name_unescape(key, slash ? (size_t)(slash - key) : 0);

	for (size_t i = 0; i < n->kept.len; i++)
		if (strcmp(n->kept.items[i].key, key) == 0)
			goto out;
	kv = HF_VEC_PUSH(&n->kept);
	kv->key = hf_xstrdup(key);
	kv->why = hf_xstrdup(why);
	kv->since = hf_now_ms();
	hf_state_save_node(s, n);
	hf_log("node %s: volume %s kept: %s", n->id, key, why);
	hf_event(s, "scheduler", svc, "volume", key, NULL, "kept", why);
out:
	free(svc);
}

/* Removes n's i-th kept volume and orders its deletion. */
static void delete_kept_at(struct hf_srv *s, struct hf_node *n, size_t i,
			   const char *who)
{
	struct hf_kept_volume kv = n->kept.items[i];
	const char *slash = strchr(kv.key, '/');
	char *svc = hf_xstrndup(kv.key, slash ? (size_t)(slash - kv.key) : 0);

	n->kept.items[i] = n->kept.items[--n->kept.len];
	if (!hf_strlist_has(&n->delete_volumes, kv.key))
		hf_strlist_push(&n->delete_volumes, kv.key);
	hf_log("node %s: kept volume %s is deleted", n->id, kv.key);
	hf_event(s, who, svc, "volume", kv.key, "kept", "deleting", n->id);
	free(svc);
	free(kv.key);
	free(kv.why);
}

size_t hf_sched_delete_kept(struct hf_srv *s, const char *svc,
			    const char *instance, json_t *out,
			    const char *who)
{
	size_t count = 0;

	for (size_t k = 0; k < s->nodes.len; k++) {
		struct hf_node *n = s->nodes.items[k];
		bool dirty = false;

		for (size_t i = 0; i < n->kept.len;) {
			if (!hf_sched_volume_of(n->kept.items[i].key, svc,
						instance)) {
				i++;
				continue;
			}
			if (out)
				json_array_append_new(
				    out, json_pack("{s:s, s:s}", "key",
						   n->kept.items[i].key, "node",
						   n->id));
			delete_kept_at(s, n, i, who);
			dirty = true;
			count++;
		}
		if (dirty)
			hf_state_save_node(s, n);
	}
	if (count)
		hf_sched_changed(s, true);
	return count;
}

/*
 * An instance placed on node n takes over a volume kept there under its
 * name (its service was removed and deployed again, or it was scaled in
 * and out): its tasks find the old data, and the event says so.
 */
static void adopt_kept(struct hf_srv *s, struct hf_service *svc,
		       struct hf_instance *in, struct hf_node *n)
{
	char *key = hf_sched_instance_volume_key(svc, in);

	for (size_t i = 0; i < n->kept.len; i++) {
		struct hf_kept_volume kv = n->kept.items[i];
		char since[40], *why;
		time_t secs;
		struct tm tm;

		if (strcmp(kv.key, key) != 0)
			continue;
		secs = (time_t)(kv.since / 1000);
		gmtime_r(&secs, &tm);
		strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
		why = hf_xasprintf("reuses the volumes kept on node %s since %s "
				   "(%s)",
				   n->id, since, kv.why);
		hf_log("service %s: %s %s", svc->name, in->name, why);
		hf_event(s, "scheduler", svc->name, "pod", in->name, NULL,
			 "reuses kept volumes", why);
		free(why);
		n->kept.items[i] = n->kept.items[--n->kept.len];
		free(kv.key);
		free(kv.why);
		hf_state_save_node(s, n);
		break;
	}
	free(key);
}

/* Returns true when the service is gone (freed). */
static bool tick_removal(struct hf_srv *s, struct hf_service *svc)
{
	bool live = false;

	for (size_t i = 0; i < svc->instances.len; i++) {
		struct hf_instance *in = svc->instances.items[i];

		for (size_t k = 0; k < in->slots.len; k++) {
			struct hf_task_rec *r = in->slots.items[k].cur;

			in->slots.items[k].want_running = false;
			if (!r || !hf_task_state_live(r->state))
				continue;
			live = true;
			kill_task(s, svc, in, r, "the service is being removed",
				  false);
		}
	}
	if (live)
		return false;
	/*
	 * The volumes are deleted, or recorded as kept, before the service
	 * record goes: a crash in between finds the service still being
	 * removed and does this again.
	 */
	for (size_t i = 0; i < svc->instances.len; i++) {
		struct hf_instance *in = svc->instances.items[i];
		struct hf_node *n = hf_state_node(s, in->node);
		char *key;

		if (!n)
			continue;
		key = hf_sched_instance_volume_key(svc, in);
		if (svc->delete_volumes) {
			if (!hf_strlist_has(&n->delete_volumes, key))
				hf_strlist_push(&n->delete_volumes, key);
			hf_state_save_node(s, n);
		} else {
			char *why = hf_xasprintf("service %s was removed "
						 "with its volumes kept",
						 svc->name);

			hf_sched_keep_volume(s, n, key, why);
			free(why);
		}
		free(key);
	}
	/*
	 * Volumes kept from an earlier life of the service go too: those of
	 * instances this one had not placed yet would be orphans otherwise.
	 */
	if (svc->delete_volumes)
		hf_sched_delete_kept(s, svc->name, NULL, NULL, "scheduler");
	hf_state_delete_service(s, svc);
	hf_log("service %s: removed%s", svc->name,
	       svc->delete_volumes ? " (volumes deleted)"
				   : " (volumes kept on their nodes)");
	hf_event(s, "scheduler", svc->name, "service", svc->name, "removing",
		 "removed",
		 svc->delete_volumes ? "volumes deleted" : "volumes kept");
	for (size_t i = 0; i < s->services.len; i++) {
		if (s->services.items[i] == svc) {
			s->services.items[i] = s->services.items[--s->services.len];
			break;
		}
	}
	hf_state_service_free(svc);
	hf_sched_changed(s, true);
	return true;
}

/* ------------------------------------------------------------------ */
/* Pod operations                                                       */

void hf_sched_pod_restart(struct hf_srv *s, struct hf_service *svc,
			  struct hf_instance *in, const char *why)
{
	bool retry = false;

	for (size_t k = 0; k < in->slots.len; k++) {
		struct hf_task_slot *sl = &in->slots.items[k];

		if (sl->cur && hf_task_state_live(sl->cur->state))
			kill_task(s, svc, in, sl->cur, why, true);
		/* The operator fixed the node (say, its limits): try again. */
		if (sl->cur && sl->cur->permanent) {
			sl->cur->permanent = false;
			sl->backoff_until = 0;
			retry = true;
		}
	}
	if (retry) {
		hf_state_save_instance(s, svc, in);
		hf_sched_changed(s, true);
	}
}

/*
 * Replacing: once every task stopped, the instance forgets its node,
 * ports and volumes (deleted on the node) and the deploy plan runs again,
 * which launches it afresh like a new instance.
 */
static void tick_replace(struct hf_srv *s, struct hf_service *svc,
			 struct hf_instance *in)
{
	struct hf_node *n = hf_state_node(s, in->node);
	bool node_gone = !n || !hf_node_reachable(s, n, hf_now_ms()) ||
			 n->decommissioned;
	bool live = false;

	for (size_t k = 0; k < in->slots.len; k++) {
		struct hf_task_rec *r = in->slots.items[k].cur;

		if (!r || !hf_task_state_live(r->state))
			continue;
		if (node_gone && (!n || !hf_node_reachable(s, n, hf_now_ms()))) {
			/*
			 * The node is gone: nobody can stop the task there.
			 * If the node comes back, the task is no longer in
			 * its desired set and its agent stops it.
			 */
			r->kill = true;
			r->state = HF_TS_LOST;
			r->finished_at = hf_now_ms();
			free(r->message);
			r->message = hf_xstrdup("its node is gone; replaced");
			continue;
		}
		kill_task(s, svc, in, r, "the pod is being replaced", false);
		live = true;
	}
	if (live)
		return;
	{
		struct hf_config *cfg = hf_state_target(svc);
		const struct hf_spec_pod *pod = pod_of(cfg, in->pod);

		free(in->replaced_node);
		free(in->replaced_address);
		in->replaced_node = in->node ? hf_xstrdup(in->node) : NULL;
		in->replaced_address =
		    n && n->address ? hf_xstrdup(n->address) : NULL;
		in->replace_pending = pod && pod->replace_tasks.len > 0;
	}
	/*
	 * The old volumes go first: a fresh instance placed on the same node
	 * must not find them, nor lose its new ones to a late deletion. A
	 * node that is gone deletes them if it ever comes back.
	 */
	if (n) {
		char *key = hf_sched_instance_volume_key(svc, in);
		bool pending = hf_strlist_has(&n->delete_volumes, key);

		if (!in->replace_deleting) {
			if (!pending)
				hf_strlist_push(&n->delete_volumes, key);
			in->replace_deleting = true;
			hf_state_save_node(s, n);
			hf_state_save_instance(s, svc, in);
			hf_sched_changed(s, true);
			free(key);
			if (!node_gone)
				return;
		} else if (pending && !node_gone) {
			free(key);
			return; /* the agent has not confirmed the deletion */
		} else {
			free(key);
		}
	}
	in->replace_deleting = false;
	hf_log("service %s: %s replaced: its volumes on node %s are deleted "
	       "and it starts afresh",
	       svc->name, in->name, in->node ? in->node : "(none)");
	hf_event(s, "scheduler", svc->name, "pod", in->name, in->node,
		 "replaced", "volumes deleted; launched afresh");
	free(in->node);
	in->node = NULL;
	hf_state_moved(s);
	hf_kvlist_release(&in->ports);
	for (size_t k = 0; k < in->slots.len; k++) {
		struct hf_task_slot *sl = &in->slots.items[k];

		hf_task_rec_free(sl->cur);
		sl->cur = NULL;
		sl->once_done = false;
		sl->want_running = false;
		sl->failures = 0;
		sl->backoff_until = 0;
	}
	in->replacing = false;
	hf_state_save_instance(s, svc, in);
	hf_sched_start_plan(s, svc, "deploy", NULL);
	hf_sched_changed(s, true);
}

/*
 * Instances on a node that stopped answering wait (their volumes are
 * there); a service that opted in with replacement-failure-policy gets
 * them replaced elsewhere once the node stayed away long enough. A
 * decommissioned node's instances are replaced at once.
 */
static void tick_node_loss(struct hf_srv *s, struct hf_service *svc,
			   struct hf_config *cfg, int64_t now)
{
	int64_t timeout = cfg->spec->permanent_failure_timeout_ms;

	for (size_t k = 0; k < svc->instances.len; k++) {
		struct hf_instance *in = svc->instances.items[k];
		struct hf_node *n = hf_state_node(s, in->node);
		const char *why = NULL;

		if (!in->node || in->replacing || !n)
			continue;
		if (hf_node_reachable(s, n, now)) {
			if (in->unreachable_since) {
				in->unreachable_since = 0;
				hf_event(s, "scheduler", svc->name, "pod",
					 in->name, "node unreachable",
					 "node back", n->id);
			}
		} else if (!in->unreachable_since) {
			in->unreachable_since = now;
			hf_log("service %s: %s waits: node %s is unreachable",
			       svc->name, in->name, n->id);
			hf_event(s, "scheduler", svc->name, "pod", in->name, NULL,
				 "node unreachable", n->id);
		}
		if (n->decommissioned)
			why = "its node is decommissioned";
		else if (in->unreachable_since && timeout >= 0 &&
			 now - in->unreachable_since > timeout &&
			 now - in->unreachable_since >
			     cfg->spec->min_replace_delay_ms)
			why = "its node stayed unreachable past the "
			      "permanent-failure timeout";
		if (!why)
			continue;
		in->replacing = true;
		hf_log("service %s: replacing %s: %s", svc->name, in->name, why);
		hf_event(s, "scheduler", svc->name, "pod", in->name, NULL,
			 "replacing", why);
		hf_state_save_instance(s, svc, in);
	}
}

/* ------------------------------------------------------------------ */
/* Scale-in                                                             */

/* Instances the target no longer wants: pod removed or index past count. */
static bool unwanted(struct hf_config *cfg, const struct hf_instance *in)
{
	const struct hf_spec_pod *pod = pod_of(cfg, in->pod);

	return !pod || in->index >= pod->count;
}

/* The spec an instance last ran, for its decommission task. */
static const struct hf_spec_pod *
last_pod_spec(struct hf_service *svc, const struct hf_instance *in,
	      struct hf_config **cfg_out)
{
	struct hf_config *cfg = hf_state_target(svc);
	const struct hf_spec_pod *pod = pod_of(cfg, in->pod);

	for (size_t i = svc->configs.len; !pod && i-- > 0;) {
		cfg = svc->configs.items[i];
		pod = pod_of(cfg, in->pod);
	}
	*cfg_out = cfg;
	return pod;
}

/* The next instance to remove: highest index first, one at a time. */
static struct hf_instance *next_decommission(struct hf_service *svc,
					     struct hf_config *cfg)
{
	struct hf_instance *best = NULL;

	for (size_t i = 0; i < svc->instances.len; i++) {
		struct hf_instance *in = svc->instances.items[i];

		if (!unwanted(cfg, in))
			continue;
		if (in->decom)
			return in; /* finish what was started */
		if (!best || in->index > best->index)
			best = in;
	}
	return best;
}

static void tick_decommission(struct hf_srv *s, struct hf_service *svc,
			      struct hf_config *cfg, int64_t now)
{
	struct hf_instance *in;
	struct hf_config *pcfg;
	const struct hf_spec_pod *pod;
	const struct hf_spec_task *drain;
	struct hf_task_slot *dsl;
	bool live = false;

	/* Raising the count again cancels what has not been removed. */
	for (size_t i = 0; i < svc->instances.len; i++) {
		struct hf_instance *c = svc->instances.items[i];

		if (c->decom && !unwanted(cfg, c)) {
			hf_log("service %s: decommission of %s cancelled",
			       svc->name, c->name);
			hf_event(s, "scheduler", svc->name, "pod", c->name,
				 "decommissioning", "kept",
				 "the count was raised again");
			c->decom = 0;
			c->drain_failed = false;
			c->drain_done = false;
			c->drain_skipped = false;
			/*
			 * A drain still running is stopped: the instance stays
			 * in service. A later scale-in drains it again.
			 */
			for (size_t k = 0; k < c->slots.len; k++) {
				struct hf_task_slot *sl = &c->slots.items[k];

				if (strcmp(sl->task, HF_DECOMMISSION_TASK) != 0 ||
				    !sl->cur)
					continue;
				if (hf_task_state_live(sl->cur->state)) {
					kill_task(s, svc, c, sl->cur,
						  "the decommission was cancelled",
						  false);
				} else {
					hf_task_rec_free(sl->cur);
					sl->cur = NULL;
					sl->failures = 0;
				}
			}
			hf_state_save_instance(s, svc, c);
		}
	}
	in = next_decommission(svc, cfg);
	if (!in)
		return;
	pod = last_pod_spec(svc, in, &pcfg);
	drain = pod ? hf_spec_find_task(pod, HF_DECOMMISSION_TASK) : NULL;
	if (!in->decom) {
		/* A drain from an earlier, cancelled removal does not count. */
		for (size_t k = 0; k < in->slots.len; k++) {
			struct hf_task_slot *sl = &in->slots.items[k];

			if (strcmp(sl->task, HF_DECOMMISSION_TASK) == 0 &&
			    sl->cur && !hf_task_state_live(sl->cur->state)) {
				hf_task_rec_free(sl->cur);
				sl->cur = NULL;
				sl->failures = 0;
				sl->backoff_until = 0;
			}
		}
		in->drain_done = in->drain_failed = in->drain_skipped = false;
		in->decom = 1;
		hf_log("service %s: decommissioning %s", svc->name, in->name);
		hf_event(s, "scheduler", svc->name, "pod", in->name, "running",
			 "decommissioning", drain ? "drain first" : NULL);
		hf_state_save_instance(s, svc, in);
	}
	/* 1. Drain, while the instance still runs. */
	if (in->decom == 1) {
		if (drain && in->node && !in->drain_skipped) {
			struct hf_task_rec *r;

			dsl = hf_state_slot(in, HF_DECOMMISSION_TASK);
			r = dsl->cur;
			if (r && r->state == HF_TS_FINISHED) {
				in->drain_done = true;
			} else if (r && hf_task_state_live(r->state)) {
				return;
			} else if (r && dsl->failures >= 3) {
				if (!in->drain_failed) {
					in->drain_failed = true;
					hf_log("service %s: the drain of %s failed "
					       "%u times; its volumes are kept. "
					       "force-complete the decommission "
					       "step to remove it anyway",
					       svc->name, in->name, dsl->failures);
					hf_event(s, "scheduler", svc->name, "pod",
						 in->name, "draining",
						 "drain failed",
						 "volumes kept");
					hf_state_save_instance(s, svc, in);
					hf_sched_changed(s, false);
				}
				return;
			} else if (!r || dsl->backoff_until <= now) {
				struct hf_strlist t = {0};

				hf_strlist_push(&t, HF_DECOMMISSION_TASK);
				launch(s, svc, pcfg->id, NULL, "decommission",
				       in, &t, r != NULL);
				hf_strlist_release(&t);
				return;
			} else {
				return;
			}
		}
		in->decom = 2;
		hf_state_save_instance(s, svc, in);
	}
	/* 2. Stop its tasks. */
	for (size_t k = 0; k < in->slots.len; k++) {
		struct hf_task_rec *r = in->slots.items[k].cur;

		if (r && hf_task_state_live(r->state)) {
			live = true;
			kill_task(s, svc, in, r, "the pod is decommissioned",
				  true);
		}
	}
	if (live)
		return;
	/* 3. Its volumes, and the record. */
	{
		struct hf_node *n = hf_state_node(s, in->node);
		bool keep = (pod && pod->retain_volumes) || in->drain_failed ||
			    (drain && !in->drain_done);
		char *key = hf_sched_instance_volume_key(svc, in);

		if (n && !keep) {
			if (!hf_strlist_has(&n->delete_volumes, key))
				hf_strlist_push(&n->delete_volumes, key);
			hf_state_save_node(s, n);
		} else if (n) {
			char *why = hf_xasprintf(
			    "%s was decommissioned; %s", in->name,
			    pod && pod->retain_volumes
				? "its pod has volume-retention: retain"
				: "its drain did not finish");

			hf_sched_keep_volume(s, n, key, why);
			free(why);
		}
		hf_log("service %s: %s decommissioned; volumes %s", svc->name,
		       in->name, keep ? "kept" : "deleted");
		hf_event(s, "scheduler", svc->name, "pod", in->name,
			 "decommissioning", "removed",
			 keep ? "volumes kept" : "volumes deleted");
		free(key);
	}
	hf_state_remove_instance(s, svc, in);
	hf_sched_changed(s, true);
}

/* Force-completing a decommission step skips the drain. */
bool hf_sched_skip_drain(struct hf_srv *s, struct hf_service *svc,
			 const char *instance)
{
	struct hf_instance *in = hf_state_instance(svc, instance);

	if (!in)
		return false;
	in->drain_skipped = true;
	hf_state_save_instance(s, svc, in);
	hf_sched_changed(s, false);
	return true;
}

static void build_decommission(struct hf_service *svc, struct hf_config *cfg,
			       struct hf_plan_defs *out)
{
	struct hf_plan_def *def = HF_VEC_PUSH(out);
	struct hf_plan_phase_def *ph = NULL;
	HF_VEC(struct hf_instance *) list = {0};

	def->name = hf_xstrdup("decommission");
	def->kind = HF_PLAN_CUSTOM;
	def->generated = true;
	def->strategy = HF_STRATEGY_SERIAL;
	for (size_t i = 0; i < svc->instances.len; i++)
		if (unwanted(cfg, svc->instances.items[i]))
			*HF_VEC_PUSH(&list) = svc->instances.items[i];
	/* Highest index first, as they are removed. */
	for (size_t i = 1; i < list.len; i++)
		for (size_t j = i; j > 0 && list.items[j - 1]->index <
						list.items[j]->index;
		     j--) {
			struct hf_instance *t = list.items[j];

			list.items[j] = list.items[j - 1];
			list.items[j - 1] = t;
		}
	for (size_t i = 0; i < list.len; i++) {
		struct hf_plan_step_def *st;

		if (!ph) {
			ph = HF_VEC_PUSH(&def->phases);
			ph->name = hf_xstrdup("decommission");
			ph->pod = hf_xstrdup(list.items[i]->pod);
			ph->strategy = HF_STRATEGY_SERIAL;
		}
		st = HF_VEC_PUSH(&ph->steps);
		st->name = hf_xasprintf("%s:[decommission]", list.items[i]->name);
		st->pod = hf_xstrdup(list.items[i]->pod);
		st->index = list.items[i]->index;
	}
	HF_VEC_FREE(&list);
}

static void decommission_view(struct hf_service *svc, struct hf_config *cfg,
			      struct hf_plan_view *v)
{
	size_t n = 0;

	memset(v, 0, sizeof(*v));
	build_decommission(svc, cfg, &v->owned);
	v->def = &v->owned.items[0];
	if (v->def->phases.len)
		n = v->def->phases.items[0].steps.len;
	v->steps = hf_xcalloc(n ? n : 1, sizeof(*v->steps));
	v->phases = hf_xcalloc(1, sizeof(*v->phases));
	v->messages = hf_xcalloc(n ? n : 1, sizeof(*v->messages));
	v->status = HF_STATUS_COMPLETE;
	for (size_t i = 0; i < n; i++) {
		const struct hf_plan_step_def *st = &v->def->phases.items[0].steps.items[i];
		char *iname = hf_xasprintf("%s-%lld", st->pod, (long long)st->index);
		struct hf_instance *in = hf_state_instance(svc, iname);

		free(iname);
		if (in && in->drain_failed) {
			v->steps[i].status = HF_STATUS_ERROR;
			v->messages[i] = hf_xstrdup(
			    "the drain failed; volumes are kept (force-complete "
			    "this step to remove the instance anyway)");
		} else if (in && in->decom) {
			v->steps[i].status = HF_STATUS_STARTING;
			v->messages[i] = hf_xstrdup(in->decom == 1 ? "draining"
								   : "stopping "
								     "tasks");
		} else {
			v->steps[i].status = HF_STATUS_PENDING;
		}
	}
	if (n) {
		enum hf_status *tmp = hf_xcalloc(n, sizeof(*tmp));

		for (size_t i = 0; i < n; i++)
			tmp[i] = v->steps[i].status;
		v->status = hf_plan_aggregate(tmp, n, false);
		v->phases[0].status = v->status;
		free(tmp);
	}
}

/* ------------------------------------------------------------------ */
/* The tick                                                             */

void hf_sched_tick(struct hf_srv *s)
{
	int64_t now = hf_now_ms();

	hf_sched_placement_stale(s);
	s->in_tick = true;
	/* The tick's records reach the store together, before it returns. */
	hf_state_batch_begin(s);
	tick_services(s, now);
	hf_state_batch_end(s);
	s->in_tick = false;
	hf_sched_placement_stale(s);
}

static void tick_services(struct hf_srv *s, int64_t now)
{
	/* The earliest backoff to end: the scheduler wakes up for it. */
	s->next_wake_ms = 0;
	for (size_t i = 0; i < s->services.len; i++) {
		struct hf_service *svc = s->services.items[i];

		for (size_t k = 0; k < svc->instances.len; k++) {
			struct hf_instance *in = svc->instances.items[k];

			for (size_t t = 0; t < in->slots.len; t++) {
				int64_t b = in->slots.items[t].backoff_until;

				if (b > now && (!s->next_wake_ms || b < s->next_wake_ms))
					s->next_wake_ms = b;
			}
		}
	}

	for (size_t i = 0; i < s->services.len; i++) {
		struct hf_service *svc = s->services.items[i];
		struct hf_config *cfg;

		if (svc->removing) {
			if (tick_removal(s, svc))
				i--;
			continue;
		}
		cfg = hf_state_target(svc);
		if (!cfg || !cfg->spec)
			continue;
		/* A task that stayed up long enough earns a fresh backoff. */
		for (size_t k = 0; k < svc->instances.len; k++) {
			struct hf_instance *in = svc->instances.items[k];

			for (size_t t = 0; t < in->slots.len; t++) {
				struct hf_task_slot *sl = &in->slots.items[t];

				if (sl->failures && sl->cur &&
				    sl->cur->state == HF_TS_RUNNING &&
				    now - sl->cur->started_at >
					(int64_t)(s->opts.backoff_reset * 1000)) {
					sl->failures = 0;
					hf_state_save_instance(s, svc, in);
				}
			}
		}
		tick_node_loss(s, svc, cfg, now);
		for (size_t k = 0; k < svc->instances.len; k++)
			if (svc->instances.items[k]->replacing)
				tick_replace(s, svc, svc->instances.items[k]);
		tick_runs(s, svc, cfg, now);
		tick_decommission(s, svc, cfg, now);
	}
}

/* ------------------------------------------------------------------ */
/* Reports from agents                                                  */

static void on_terminal(struct hf_srv *s, struct hf_service *svc,
			struct hf_instance *in, struct hf_task_slot *sl,
			struct hf_task_rec *r)
{
	struct hf_config *cfg = hf_state_config(svc, r->config_id);
	const struct hf_spec_pod *pod = pod_of(cfg ? cfg : hf_state_target(svc),
					       in->pod);
	const struct hf_spec_task *t = task_spec(pod, sl->task);
	int64_t now = hf_now_ms();
	bool ok = r->state == HF_TS_FINISHED;

	r->finished_at = now;
	r->ready = false;
	if (ok && t && t->goal != HF_GOAL_RUNNING) {
		sl->failures = 0;
		sl->backoff_until = 0;
		if (t->goal == HF_GOAL_ONCE)
			sl->once_done = true;
		return;
	}
	if (r->kill && r->state != HF_TS_LOST)
		return; /* stopped on purpose */
	/* A RUNNING task that exits at all has failed. */
	sl->failures++;
	s->failures++;
	/* No backoff for what waiting cannot fix: its step is ERROR. */
	sl->backoff_until =
	    r->permanent
		? 0
		: now + (int64_t)(1000 * hf_plan_backoff(
					     sl->failures, s->opts.backoff_base,
					     s->opts.backoff_max,
					     (double)(random() % 1000) / 1000.0));
	if (t && t->goal == HF_GOAL_RUNNING && t->essential) {
		/* An essential task takes its whole pod instance down. */
		for (size_t k = 0; k < in->slots.len; k++) {
			struct hf_task_slot *o = &in->slots.items[k];
			const struct hf_spec_task *ot = task_spec(pod, o->task);

			if (o == sl || !o->cur || !ot ||
			    ot->goal != HF_GOAL_RUNNING ||
			    !hf_task_state_live(o->cur->state))
				continue;
			free(o->cur->message);
			o->cur->message = hf_xasprintf(
			    "restarted with its pod: essential task %s failed",
			    sl->task);
			kill_task(s, svc, in, o->cur, o->cur->message, true);
		}
	}
}

static enum hf_task_state parse_report_state(const char *st, const json_t *t,
					     bool kill)
{
	if (!st)
		return HF_TS_LOST;
	if (strcmp(st, "starting") == 0)
		return HF_TS_STARTING;
	if (strcmp(st, "running") == 0)
		return HF_TS_RUNNING;
	if (strcmp(st, "exited") == 0) {
		json_t *code = json_object_get(t, "exit_code");

		if (kill)
			return HF_TS_KILLED;
		if (json_is_integer(code) && json_integer_value(code) == 0 &&
		    !json_is_integer(json_object_get(t, "signal")))
			return HF_TS_FINISHED;
		return HF_TS_FAILED;
	}
	if (strcmp(st, "killed") == 0)
		return kill ? HF_TS_KILLED : HF_TS_FAILED;
	if (strcmp(st, "failed-to-start") == 0)
		return HF_TS_FAILED;
	return HF_TS_LOST;
}

bool hf_sched_task_report(struct hf_srv *s, const char *node_id,
			  const json_t *t)
{
	const char *id = json_string_value(json_object_get(t, "task_id"));
	const char *st = json_string_value(json_object_get(t, "state"));
	struct hf_service *svc;
	struct hf_instance *in;
	struct hf_task_slot *sl;
	struct hf_task_rec *r;
	enum hf_task_state ns;
	bool changed = false, notable = false;
	const char *msg;

	if (!id)
		return false;
	r = hf_state_find_task(s, id, &svc, &in, &sl);
	if (!r || !in->node || strcmp(in->node, node_id) != 0)
		return false;
	if (!hf_task_state_live(r->state))
		return false; /* already final: reports are idempotent */
	ns = parse_report_state(st, t, r->kill);
	if (ns == HF_TS_RUNNING || ns == HF_TS_STARTING) {
		bool ready = json_is_true(json_object_get(t, "ready"));
		json_t *h = json_object_get(t, "healthy");
		int healthy = json_is_boolean(h) ? json_is_true(h) : -1;

		/* Reports may arrive out of order: never go backwards. */
		if (ns == HF_TS_STARTING && r->state == HF_TS_RUNNING)
			return false;
		const char *nr = json_string_value(
		    json_object_get(t, "not_ready"));

		/*
		 * Why it is not ready: shown, never stored (the next report
		 * carries it again).
		 */
		if (ready || ns != HF_TS_RUNNING)
			nr = NULL;
		if ((nr == NULL) != (r->not_ready == NULL) ||
		    (nr && strcmp(nr, r->not_ready) != 0)) {
			free(r->not_ready);
			r->not_ready = nr ? hf_xstrdup(nr) : NULL;
			hf_sched_changed(s, false);
		}
		if (r->state != ns || r->ready != ready ||
		    r->healthy != healthy) {
			notable = r->state != ns || r->ready != ready;
			if (ns == HF_TS_RUNNING && r->state != HF_TS_RUNNING)
				r->started_at = hf_now_ms();
			r->state = ns;
			r->ready = ready && ns == HF_TS_RUNNING;
			r->healthy = healthy;
			changed = true;
		}
		if (notable) {
			hf_log("service %s: %s is %s%s", svc->name, r->id,
			       hf_task_state_name(r->state),
			       r->ready ? " and ready" : "");
			hf_event(s, "agent", svc->name, "task", r->id, NULL,
				 hf_task_state_name(r->state),
				 r->ready ? "ready" : NULL);
		}
	} else {
		json_t *code = json_object_get(t, "exit_code");
		json_t *sig = json_object_get(t, "signal");

		r->state = ns;
		r->exit_code = json_is_integer(code)
				   ? (int)json_integer_value(code)
				   : -1;
		r->signal = json_is_integer(sig) ? (int)json_integer_value(sig)
						 : 0;
		r->oom_killed = json_is_true(json_object_get(t, "oom_killed"));
		r->permanent = ns == HF_TS_FAILED && st &&
			       strcmp(st, "failed-to-start") == 0 &&
			       json_is_true(json_object_get(t, "permanent"));
		msg = json_string_value(json_object_get(t, "message"));
		free(r->message);
		if (r->oom_killed)
			r->message = hf_xasprintf(
			    "killed by the kernel: out of memory (limit %s)",
			    msg ? msg : "reached");
		else if (msg)
			r->message = hf_xstrdup(msg);
		else if (ns == HF_TS_LOST)
			r->message = hf_xstrdup("the agent lost track of it");
		else if (r->signal > 0)
			r->message = hf_xasprintf("killed by signal %d",
						  r->signal);
		else if (r->exit_code >= 0 && ns != HF_TS_FINISHED &&
			 ns != HF_TS_KILLED)
			r->message = hf_xasprintf("exited with status %d",
						  r->exit_code);
		else
			r->message = NULL;
		hf_log("service %s: %s %s%s%s", svc->name, r->id,
		       hf_task_state_name(ns), r->message ? ": " : "",
		       r->message ? r->message : "");
		hf_event(s, "agent", svc->name, "task", r->id, NULL,
			 hf_task_state_name(ns), r->message);
		on_terminal(s, svc, in, sl, r);
		changed = true;
	}
	if (changed) {
		hf_state_save_instance(s, svc, in);
		hf_sched_changed(s, !hf_task_state_live(r->state));
	}
	return changed;
}

bool hf_sched_reconcile_node(struct hf_srv *s, const char *node_id,
			     const json_t *reported)
{
	bool changed = false;
	struct hf_node *n = hf_state_node(s, node_id);
	struct hf_node_insts scratch = {0};
	const struct hf_node_insts *l;

	if (!n)
		return false;
	l = node_insts(s, n, &scratch);
	for (size_t i = 0; i < l->len; i++) {
		struct hf_service *svc = l->items[i].svc;
		struct hf_instance *in = l->items[i].in;
		bool dirty = false;

		for (size_t t = 0; t < in->slots.len; t++) {
			struct hf_task_slot *sl = &in->slots.items[t];
			struct hf_task_rec *r = sl->cur;
			bool seen = false;
			size_t idx;
			json_t *e;

			if (!r || (r->state != HF_TS_STARTING &&
				   r->state != HF_TS_RUNNING))
				continue;
			json_array_foreach((json_t *)reported, idx, e)
			{
				const char *id = json_string_value(
				    json_object_get(e, "task_id"));

				if (id && strcmp(id, r->id) == 0)
					seen = true;
			}
			if (seen)
				continue;
			r->state = HF_TS_LOST;
			free(r->message);
			r->message = hf_xstrdup(
			    "the agent no longer knows this task");
			hf_log("service %s: %s LOST: its agent does not "
			       "report it",
			       svc->name, r->id);
			hf_event(s, "scheduler", svc->name, "task",
				 r->id, NULL, "LOST",
				 "its agent does not report it");
			on_terminal(s, svc, in, sl, r);
			dirty = true;
		}
		if (dirty) {
			hf_state_save_instance(s, svc, in);
			changed = true;
		}
	}
	HF_VEC_FREE(&scratch);
	if (changed)
		hf_sched_changed(s, true);
	return changed;
}

/* ------------------------------------------------------------------ */
/* Launch orders                                                        */

static json_t *check_order(const struct hf_spec_check *c)
{
	json_t *o;

	if (c->kind == HF_CHECK_NONE)
		return json_null();
	o = json_object();
	json_object_set_new(o, "kind",
			    json_string(c->kind == HF_CHECK_CMD    ? "cmd"
					: c->kind == HF_CHECK_HTTP ? "http"
								   : "tcp"));
	if (c->cmd)
		json_object_set_new(o, "cmd", json_string(c->cmd));
	if (c->port)
		json_object_set_new(o, "port", json_string(c->port));
	if (c->http_path)
		json_object_set_new(o, "path", json_string(c->http_path));
	json_object_set_new(o, "interval", json_real(c->interval));
	json_object_set_new(o, "delay", json_real(c->delay));
	json_object_set_new(o, "timeout", json_real(c->timeout));
	json_object_set_new(o, "grace_period", json_real(c->grace_period));
	json_object_set_new(o, "max_consecutive_failures",
			    json_integer(c->max_consecutive_failures));
	return o;
}

static void add_volumes(json_t *arr, const struct hf_service *svc,
			const struct hf_instance *in, const char *owner,
			const struct hf_spec_volume *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char *key = hf_spec_volume_key(svc->name, in->name, owner, &v[i]);

		json_array_append_new(
		    arr, json_pack("{s:s, s:s, s:s, s:I}", "key", key, "path",
				   v[i].path, "type",
				   hf_volume_type_name(v[i].type), "size_mb",
				   (json_int_t)v[i].size_mb));
		free(key);
	}
}

json_t *hf_sched_launch_order(struct hf_srv *s, struct hf_service *svc,
			      struct hf_instance *in, struct hf_task_slot *sl)
{
	struct hf_task_rec *r = sl->cur;
	struct hf_config *cfg = hf_state_config(svc, r->config_id);
	const struct hf_spec_pod *pod = pod_of(cfg, in->pod);
	const struct hf_spec_task *t = task_spec(pod, sl->task);
	const struct hf_spec_resource_set *rs;
	struct hf_kvlist env = {0};
	json_t *o, *env_j, *ports_j, *vols, *cfgs, *uris, *rl;
	char buf[32];

	if (!t || t->resource_set >= pod->resource_sets.len)
		return NULL;
	rs = &pod->resource_sets.items[t->resource_set];
	snprintf(buf, sizeof(buf), "%lld", (long long)in->index);
	{
		char *tn = hf_xasprintf("%s-%s", in->name, t->name);

		hf_kvlist_set(&env, "TASK_NAME", tn);
		free(tn);
	}
	hf_kvlist_set(&env, "POD_INSTANCE_INDEX", buf);
	hf_kvlist_set(&env, "FRAMEWORK_NAME", svc->name);
	hf_kvlist_set(&env, "SERVICE_NAME", svc->name);
	hf_kvlist_set(&env, "POD_NAME", in->name);
	{
		/* Tasks share their node's network, as on Mesos' host mode. */
		struct hf_node *node = in->node ? hf_state_node(s, in->node)
						: NULL;

		hf_kvlist_set(&env, "MESOS_CONTAINER_IP",
			      node && node->address ? node->address
						    : "127.0.0.1");
	}
	if (in->replaced_node) {
		hf_kvlist_set(&env, "REPLACED_NODE", in->replaced_node);
		hf_kvlist_set(&env, "REPLACED_ADDRESS",
			      in->replaced_address ? in->replaced_address : "");
		hf_kvlist_set(&env, "REPLACED_INSTANCE", in->name);
	}
	ports_j = json_object();
	for (size_t p = 0; p < rs->ports.len; p++) {
		const struct hf_spec_port *sp = &rs->ports.items[p];
		const char *num = hf_kvlist_get(&in->ports, sp->name);
		char *key;

		if (!num)
			continue;
		key = hf_spec_port_env_key(sp);
		hf_kvlist_set(&env, key, num);
		free(key);
		json_object_set_new(ports_j, sp->name,
				    json_integer(atoll(num)));
	}
	hf_spec_task_env(cfg->spec, pod, t, &env);
	hf_kvlist_copy(&env, &r->params);
	env_j = json_object();
	for (size_t i = 0; i < env.len; i++)
		json_object_set_new(env_j, env.items[i].key,
				    json_string(env.items[i].value));
	hf_kvlist_release(&env);

	vols = json_array();
	add_volumes(vols, svc, in, "pod", pod->volumes.items, pod->volumes.len);
	add_volumes(vols, svc, in, rs->name, rs->volumes.items,
		    rs->volumes.len);
	cfgs = json_array();
	for (size_t i = 0; i < t->configs.len; i++)
		json_array_append_new(
		    cfgs, json_pack("{s:s, s:s, s:s}", "name",
				    t->configs.items[i].name, "dest",
				    t->configs.items[i].dest, "template",
				    t->configs.items[i].content
					? t->configs.items[i].content
					: ""));
	uris = json_array();
	for (size_t i = 0; i < pod->uris.len; i++)
		json_array_append_new(uris, json_string(pod->uris.items[i]));
	rl = json_array();
	for (size_t i = 0; i < pod->rlimits.len; i++) {
		const struct hf_spec_rlimit *l = &pod->rlimits.items[i];

		if (!l->has_soft)
			continue;
		json_array_append_new(rl, json_pack("{s:s, s:I, s:I}", "name",
						    l->name, "soft",
						    (json_int_t)l->soft, "hard",
						    (json_int_t)l->hard));
	}
	o = json_object();
	json_object_set_new(o, "task_id", json_string(r->id));
	json_object_set_new(o, "service", json_string(svc->name));
	json_object_set_new(o, "pod", json_string(in->pod));
	json_object_set_new(o, "pod_instance", json_string(in->name));
	json_object_set_new(o, "index", json_integer(in->index));
	json_object_set_new(o, "task", json_string(t->name));
	json_object_set_new(o, "goal", json_string(hf_goal_name(t->goal)));
	json_object_set_new(o, "config_id", json_string(r->config_id));
	json_object_set_new(o, "cmd", json_string(t->cmd ? t->cmd : "true"));
	json_object_set_new(o, "env", env_j);
	json_object_set_new(o, "cpus", json_real(rs->cpus));
	json_object_set_new(o, "memory_mb", json_real(rs->memory_mb));
	json_object_set_new(o, "limit_cpus",
			    rs->limit_cpus > 0 ? json_real(rs->limit_cpus)
			    : rs->limit_cpus < 0 ? json_string("unlimited")
						 : json_null());
	json_object_set_new(o, "limit_memory_mb",
			    rs->limit_memory_mb > 0
				? json_real(rs->limit_memory_mb)
			    : rs->limit_memory_mb < 0 ? json_string("unlimited")
						      : json_null());
	json_object_set_new(o, "rlimits", rl);
	json_object_set_new(o, "kill_grace_period",
			    json_integer(t->kill_grace_period));
	json_object_set_new(o, "ports", ports_j);
	json_object_set_new(o, "volumes", vols);
	json_object_set_new(o, "configs", cfgs);
	json_object_set_new(o, "uris", uris);
	json_object_set_new(o, "health_check", check_order(&t->health));
	json_object_set_new(o, "readiness_check", check_order(&t->readiness));
	/* A pod's own user wins over the service's, as in the SDK. */
	json_object_set_new(o, "user",
			    pod->user ? json_string(pod->user)
			    : cfg->spec->scheduler_user
				? json_string(cfg->spec->scheduler_user)
				: json_null());
	{
		bool all = pod->capabilities.len == 1 &&
			   strcmp(pod->capabilities.items[0], "ALL") == 0;
		json_t *caps = json_array();

		for (size_t i = 0; !all && i < pod->capabilities.len; i++)
			json_array_append_new(
			    caps, json_string(pod->capabilities.items[i]));
		json_object_set_new(o, "capabilities", caps);
		json_object_set_new(o, "privileged", json_boolean(all));
	}
	json_object_set_new(o, "paused", json_boolean(r->paused));
	return o;
}
