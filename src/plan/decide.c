/*
 * decide.c - where a step becomes a launch, and every other rule of the
 * scheduler (decide.h): from the model, the time and a random source to
 * actions. Nothing here changes the model; within one unit of work the
 * rules keep track of what they decided themselves (a placement, a launch
 * that a kill ends before any agent saw it), as the state would have
 * shown it had each decision been applied at once.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "plan/decide.h"
#include "plan/placement.h"
#include "task/lifecycle.h"

/* Failures of a custom plan's FINISH/ONCE task before its step is ERROR. */
#define CUSTOM_MAX_FAILURES 3
/* Failures of a pod's decommission (drain) task before it gives up. */
#define DRAIN_MAX_FAILURES 3

/* ------------------------------------------------------------------ */
/* Action lists                                                         */

static char *dup_or_null(const char *s)
{
	return s ? hf_xstrdup(s) : NULL;
}

struct hf_action *hf_actions_push(struct hf_actions *a,
				  enum hf_action_kind kind, const char *service,
				  const char *instance, const char *task)
{
	struct hf_action *x = HF_VEC_PUSH(a);

	x->kind = kind;
	x->service = dup_or_null(service);
	x->instance = dup_or_null(instance);
	x->task = dup_or_null(task);
	return x;
}

static void action_release(struct hf_action *x)
{
	free(x->service);
	free(x->instance);
	free(x->task);
	switch (x->kind) {
	case HF_ACT_CREATE_INSTANCE:
		free(x->u.create.pod);
		break;
	case HF_ACT_PLACE:
		free(x->u.place.node);
		hf_kvlist_release(&x->u.place.ports);
		break;
	case HF_ACT_LAUNCH:
		free(x->u.launch.id);
		free(x->u.launch.config_id);
		free(x->u.launch.run);
		hf_kvlist_release(&x->u.launch.params);
		break;
	case HF_ACT_KILL:
		free(x->u.kill.id);
		break;
	case HF_ACT_TASK:
		free(x->u.tsk.id);
		free(x->u.tsk.message);
		free(x->u.tsk.not_ready);
		break;
	case HF_ACT_INSTANCE:
		free(x->u.inst.message);
		free(x->u.inst.replaced_node);
		free(x->u.inst.replaced_address);
		break;
	case HF_ACT_RUN:
		free(x->u.run.plan);
		free(x->u.run.key);
		free(x->u.run.value);
		break;
	case HF_ACT_START_PLAN:
		free(x->u.start.plan);
		hf_kvlist_release(&x->u.start.params);
		break;
	case HF_ACT_SET_TARGET:
		free(x->u.target.config_id);
		break;
	case HF_ACT_VOLUME:
		free(x->u.vol.key);
		free(x->u.vol.node);
		free(x->u.vol.why);
		break;
	case HF_ACT_XVOL:
		free(x->u.xvol.name);
		free(x->u.xvol.id);
		free(x->u.xvol.replica);
		free(x->u.xvol.node);
		free(x->u.xvol.why);
		free(x->u.xvol.snap);
		free(x->u.xvol.snap_name);
		free(x->u.xvol.cred);
		free(x->u.xvol.key_name);
		free(x->u.xvol.sealed_key);
		free(x->u.xvol.key_id);
		hf_strlist_release(&x->u.xvol.holders);
		for (size_t i = 0; i < HF_VOLOPTS_MAX_REPL - 1; i++) {
			free(x->u.xvol.more_node[i]);
			free(x->u.xvol.more_replica[i]);
		}
		break;
	case HF_ACT_ADD_SERVICE:
	case HF_ACT_ADD_CONFIG:
		free(x->u.config.id);
		hf_model_config_free(x->u.config.config); /* not taken */
		break;
	case HF_ACT_NODE:
		free(x->u.node.node);
		break;
	case HF_ACT_EVENT:
		free(x->u.event.who);
		free(x->u.event.kind);
		free(x->u.event.object);
		free(x->u.event.before);
		free(x->u.event.after);
		free(x->u.event.why);
		break;
	case HF_ACT_LOG:
		free(x->u.log);
		break;
	case HF_ACT_UNPLACE:
	case HF_ACT_SLOT:
	case HF_ACT_REMOVE_INSTANCE:
	case HF_ACT_REMOVE_SERVICE:
	case HF_ACT_SERVICE:
	case HF_ACT_WAKE_AT:
		break;
	}
}

void hf_actions_reset(struct hf_actions *a)
{
	for (size_t i = 0; i < a->len; i++)
		action_release(&a->items[i]);
	a->len = 0;
}

void hf_actions_release(struct hf_actions *a)
{
	hf_actions_reset(a);
	HF_VEC_FREE(a);
}

const char *hf_action_kind_name(enum hf_action_kind kind)
{
	static const char *const names[] = {
	    [HF_ACT_CREATE_INSTANCE] = "CREATE_INSTANCE",
	    [HF_ACT_PLACE] = "PLACE",
	    [HF_ACT_UNPLACE] = "UNPLACE",
	    [HF_ACT_LAUNCH] = "LAUNCH",
	    [HF_ACT_KILL] = "KILL",
	    [HF_ACT_TASK] = "TASK",
	    [HF_ACT_SLOT] = "SLOT",
	    [HF_ACT_INSTANCE] = "INSTANCE",
	    [HF_ACT_RUN] = "RUN",
	    [HF_ACT_START_PLAN] = "START_PLAN",
	    [HF_ACT_SET_TARGET] = "SET_TARGET",
	    [HF_ACT_VOLUME] = "VOLUME",
	    [HF_ACT_XVOL] = "XVOL",
	    [HF_ACT_REMOVE_INSTANCE] = "REMOVE_INSTANCE",
	    [HF_ACT_REMOVE_SERVICE] = "REMOVE_SERVICE",
	    [HF_ACT_ADD_SERVICE] = "ADD_SERVICE",
	    [HF_ACT_ADD_CONFIG] = "ADD_CONFIG",
	    [HF_ACT_SERVICE] = "SERVICE",
	    [HF_ACT_NODE] = "NODE",
	    [HF_ACT_EVENT] = "EVENT",
	    [HF_ACT_LOG] = "LOG",
	    [HF_ACT_WAKE_AT] = "WAKE_AT",
	};

	return (size_t)kind < HF_ARRAY_LEN(names) && names[kind] ? names[kind]
								 : "UNKNOWN";
}

/* An event, as hf_event() takes it; every string may be NULL. */
static void event(struct hf_actions *out, const char *who, const char *svc,
		  const char *kind, const char *object, const char *before,
		  const char *after, const char *why)
{
	struct hf_action *x = hf_actions_push(out, HF_ACT_EVENT, svc, NULL, NULL);

	x->u.event.who = dup_or_null(who);
	x->u.event.kind = dup_or_null(kind);
	x->u.event.object = dup_or_null(object);
	x->u.event.before = dup_or_null(before);
	x->u.event.after = dup_or_null(after);
	x->u.event.why = dup_or_null(why);
}

void hf_actions_log(struct hf_actions *a, const char *fmt, ...)
{
	struct hf_buf b = HF_BUF_INIT;
	struct hf_action *x;
	va_list ap;

	va_start(ap, fmt);
	hf_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	x = hf_actions_push(a, HF_ACT_LOG, NULL, NULL, NULL);
	x->u.log = hf_buf_detach(&b);
}

static struct hf_action *inst_act(struct hf_actions *out,
				  const struct hf_service *svc,
				  const struct hf_instance *in)
{
	return hf_actions_push(out, HF_ACT_INSTANCE, svc->name, in->name, NULL);
}

/*
 * An instance's stage as a unit's earlier actions leave it: its rules
 * step it through the lifecycle table as they ask for transitions.
 */
struct life {
	enum hf_instance_state state;
	enum hf_drain drain;
};

static struct life life_of(const struct hf_instance *in)
{
	return (struct life){in->state, in->drain};
}

/*
 * Asks for lifecycle event ev of instance in, whose stage is *l: appended
 * and *l moved when the table allows it. Returns whether it did.
 */
static bool life_event(struct hf_actions *out, const struct hf_service *svc,
		       const struct hf_instance *in, struct life *l,
		       enum hf_instance_event ev)
{
	struct hf_instance_step st = hf_instance_step(l->state, ev);
	struct hf_action *x;

	if (!st.ok)
		return false;
	x = inst_act(out, svc, in);
	x->u.inst.set = HF_INST_EVENT;
	x->u.inst.event = ev;
	l->state = st.next;
	l->drain = st.drain;
	return true;
}

static struct hf_action *slot_act(struct hf_actions *out,
				  const struct hf_service *svc,
				  const struct hf_instance *in, const char *task)
{
	return hf_actions_push(out, HF_ACT_SLOT, svc->name, in->name, task);
}

static struct hf_action *run_act(struct hf_actions *out,
				 const struct hf_service *svc, const char *plan)
{
	struct hf_action *x = hf_actions_push(out, HF_ACT_RUN, svc->name, NULL,
					      NULL);

	x->u.run.plan = hf_xstrdup(plan);
	return x;
}

static void volume_act(struct hf_actions *out, const char *svc,
		       enum hf_volume_op op, const char *key, const char *node)
{
	struct hf_action *x = hf_actions_push(out, HF_ACT_VOLUME, svc, NULL, NULL);

	x->u.vol.op = op;
	x->u.vol.key = hf_xstrdup(key);
	x->u.vol.node = hf_xstrdup(node);
}

/* "2026-12-04T10:00:00Z" for a unix time in ms. */
static void iso_time(int64_t ms, char *buf, size_t len)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ------------------------------------------------------------------ */
/* Facts                                                                */

static const struct hf_spec_task *task_spec(const struct hf_spec_pod *pod,
					    const char *task)
{
	return pod ? hf_spec_find_task(pod, task) : NULL;
}

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

static bool run_is(const struct hf_plan_run *run, const char *id)
{
	char *mine = run_id(run);
	bool yes = id && strcmp(id, mine) == 0;

	free(mine);
	return yes;
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
	old = hf_model_config(svc, id);
	if (!old)
		return false;
	a = hf_kvlist_get(&old->fingerprints, pod);
	b = hf_kvlist_get(&cfg->fingerprints, pod);
	return a && b && strcmp(a, b) == 0;
}

/*
 * What one unit of work decided about launches so far: the kills it
 * ordered. A launch killed before any agent saw it (STAGING) ends at once
 * (stop_unseen), so the unit's later rules must not count it as live.
 */
struct unit {
	struct {
		const struct hf_task_rec **items;
		size_t len, cap;
	} killed;
	int64_t now;
};

static bool unit_killed(const struct unit *u, const struct hf_task_rec *r)
{
	for (size_t i = 0; u && i < u->killed.len; i++)
		if (u->killed.items[i] == r)
			return true;
	return false;
}

/*
 * A stop ordered for a launch no agent reported yet (STAGING) is its end:
 * there is nothing to wait for. Returns the state it ends in, by the
 * lifecycle table, or its own state when the stop waits for its agent.
 */
static enum hf_task_state stop_unseen(const struct hf_task_rec *r)
{
	if (r->state != HF_TS_STAGING)
		return r->state;
	return hf_task_step(r->state, HF_TEV_STOPPED, HF_TASK_RECORD).next;
}

/* r as the unit's decisions left it, in *tmp when they changed it. */
static const struct hf_task_rec *effective(const struct unit *u,
					   const struct hf_task_rec *r,
					   struct hf_task_rec *tmp)
{
	if (!r || !unit_killed(u, r))
		return r;
	*tmp = *r;
	tmp->kill = true;
	tmp->state = stop_unseen(r);
	if (tmp->state != r->state)
		tmp->finished_at = u->now;
	return tmp;
}

static bool live_now(const struct unit *u, const struct hf_task_rec *r)
{
	struct hf_task_rec tmp;

	r = effective(u, r, &tmp);
	return r && hf_task_state_live(r->state);
}

/* What a step needs to know of one of its tasks. */
static enum hf_task_fact task_fact(const struct hf_service *svc,
				   const struct hf_config *cfg,
				   const struct hf_plan_run *run,
				   const struct hf_instance *in,
				   const struct hf_spec_task *task,
				   const struct unit *u, int64_t now)
{
	const struct hf_task_slot *sl;
	const struct hf_task_rec *r;
	struct hf_task_rec tmp;
	bool custom = is_custom(run);

	if (!in)
		return HF_FACT_NONE;
	sl = hf_model_slot_find(in, task->name);
	if (!sl)
		return HF_FACT_NONE;
	if (task->goal == HF_GOAL_ONCE && !custom && sl->once_done)
		return HF_FACT_DONE;
	r = effective(u, sl->cur, &tmp);
	if (!r)
		return HF_FACT_NONE;
	switch (r->state) {
	case HF_TS_STAGING:
		return HF_FACT_STAGED;
	case HF_TS_STARTING:
		/*
		 * Its shim waits out a backoff before it restarts it in place:
		 * the step reads as it does while the server waits to
		 * relaunch, and a launch of an older config is the step's to
		 * stop and relaunch, as a running one is (it may never be
		 * seen running long enough otherwise).
		 */
		if (r->backoff && task->goal == HF_GOAL_RUNNING) {
			if (r->kill)
				return HF_FACT_STAGED; /* being replaced */
			if (!custom &&
			    !config_current(svc, r->config_id, cfg, in->pod))
				return HF_FACT_NONE;
			if (sl->backoff_until > now)
				return HF_FACT_BACKOFF;
		}
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
		if (custom)
			return run_is(run, r->run) ? HF_FACT_DONE : HF_FACT_NONE;
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
	    (custom || config_current(svc, r->config_id, cfg, in->pod)) &&
	    (!custom || run_is(run, r->run)))
		return HF_FACT_ERROR;
	if (custom) {
		/* A failure from an earlier run of a custom plan is history. */
		if (!run_is(run, r->run))
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

static bool has_static_ports(const struct hf_spec_pod *pod)
{
	for (size_t r = 0; r < pod->resource_sets.len; r++)
		for (size_t p = 0; p < pod->resource_sets.items[r].ports.len; p++)
			if (pod->resource_sets.items[r].ports.items[p].port > 0)
				return true;
	return false;
}

void hf_place_cache_stale(struct hf_place_cache *c)
{
	c->usage_valid = false;
	c->svc = NULL;
}

void hf_place_cache_release(struct hf_place_cache *c)
{
	HF_VEC_FREE(&c->usage);
	HF_VEC_FREE(&c->placed);
	free(c->pod);
	memset(c, 0, sizeof(*c));
}

void hf_place_cache_note(struct hf_place_cache *c, const struct hf_actions *a)
{
	for (size_t i = 0; i < a->len; i++) {
		switch (a->items[i].kind) {
		case HF_ACT_UNPLACE:
		case HF_ACT_REMOVE_INSTANCE:
		case HF_ACT_REMOVE_SERVICE:
		case HF_ACT_SET_TARGET: /* reservations follow the target */
			hf_place_cache_stale(c);
			return;
		default:
			break;
		}
	}
}

static void node_usage(const struct hf_model *m, struct hf_place_cache *c)
{
	c->usage.len = 0;
	for (size_t i = 0; i < m->nodes.len; i++)
		HF_VEC_PUSH(&c->usage);
	for (size_t i = 0; i < m->services.len; i++) {
		const struct hf_service *o_svc = m->services.items[i];
		const struct hf_config *cfg = hf_model_target(o_svc);

		for (size_t k = 0; k < o_svc->instances.len; k++) {
			const struct hf_instance *o = o_svc->instances.items[k];
			const struct hf_node *n = hf_model_node(m, o->node);
			struct hf_node_usage *u;
			double cpu, mem;

			if (!n)
				continue;
			u = &c->usage.items[n->idx];
			u->load++;
			pod_demand(hf_model_pod(cfg, o->pod), &cpu, &mem);
			u->used_cpus += cpu;
			u->used_mem += mem;
		}
	}
}

static void pod_usage(const struct hf_model *m, struct hf_place_cache *c,
		      const struct hf_service *svc,
		      const struct hf_spec_pod *pod)
{
	bool stat = has_static_ports(pod);

	for (size_t i = 0; i < c->usage.len; i++)
		c->usage.items[i].clash_port = 0;
	c->placed.len = 0;
	for (size_t i = 0; i < m->services.len; i++) {
		const struct hf_service *o_svc = m->services.items[i];

		if (!stat && o_svc != svc)
			continue;
		for (size_t k = 0; k < o_svc->instances.len; k++) {
			const struct hf_instance *o = o_svc->instances.items[k];
			const struct hf_node *n = hf_model_node(m, o->node);
			struct hf_node_usage *u;

			if (!n)
				continue;
			u = &c->usage.items[n->idx];
			for (size_t p = 0; stat && !u->clash_port &&
					   p < o->ports.len;
			     p++) {
				int64_t num = atoll(o->ports.items[p].value);

				if (num > 0 && static_port(pod, num))
					u->clash_port = num;
			}
			if (o_svc == svc && strcmp(o->pod, pod->name) == 0)
				*HF_VEC_PUSH(&c->placed) = n->idx;
		}
	}
	free(c->pod);
	c->pod = hf_xstrdup(pod->name);
	c->svc = svc;
}

static void placement_scratch(const struct hf_model *m,
			      struct hf_place_cache *c,
			      const struct hf_service *svc,
			      const struct hf_spec_pod *pod)
{
	if (!c->usage_valid || c->usage.len != m->nodes.len) {
		node_usage(m, c);
		c->usage_valid = true;
		c->svc = NULL;
	}
	if (c->svc != svc || !c->pod || strcmp(c->pod, pod->name) != 0)
		pod_usage(m, c, svc, pod);
}

/* The scratch after an instance of pod went to node idx with ports. */
static void placement_add(struct hf_place_cache *c,
			  const struct hf_spec_pod *pod,
			  const struct hf_kvlist *ports, size_t idx)
{
	struct hf_node_usage *u = &c->usage.items[idx];
	double cpu, mem;

	pod_demand(pod, &cpu, &mem);
	u->load++;
	u->used_cpus += cpu;
	u->used_mem += mem;
	for (size_t p = 0; !u->clash_port && p < ports->len; p++) {
		int64_t num = atoll(ports->items[p].value);

		if (num > 0 && static_port(pod, num))
			u->clash_port = num;
	}
	*HF_VEC_PUSH(&c->placed) = idx;
}

struct port_vec {
	int64_t *items;
	size_t len, cap;
};

/* Ports reserved on node by instances other than self. */
static void ports_on_node(const struct hf_model *m, const char *node,
			  const struct hf_instance *self, struct port_vec *out)
{
	for (size_t i = 0; i < m->services.len; i++) {
		const struct hf_service *svc = m->services.items[i];

		for (size_t k = 0; k < svc->instances.len; k++) {
			const struct hf_instance *in = svc->instances.items[k];

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

/* The node holding a volume kept under this instance's name, or -1. */
static long kept_node(const struct hf_model *m, const struct hf_service *svc,
		      const struct hf_instance *in)
{
	char *key = hf_model_volume_key(svc->name, in->name);
	long at = -1;

	/* The first such node in the nodes' order. */
	for (const struct hf_volume *v = hf_model_volumes_of_key(m, key); v;
	     v = v->next_same_key) {
		const struct hf_node *n;

		if (v->state != HF_VOL_KEPT)
			continue;
		n = hf_model_node(m, v->node);
		if (n && (at < 0 || (long)n->idx < at))
			at = (long)n->idx;
	}
	free(key);
	return at;
}

/*
 * An instance placed on node n takes over a volume kept there under its
 * name (its service was removed and deployed again, or it was scaled in
 * and out): its tasks find the old data, and the event says so.
 */
static void adopt_kept(const struct hf_model *m, const struct hf_service *svc,
		       const struct hf_instance *in, const struct hf_node *n,
		       struct hf_actions *out)
{
	char *key = hf_model_volume_key(svc->name, in->name);
	const struct hf_volume *v = hf_model_volume_find(m, key, n->id,
							 HF_VOL_KEPT);

	if (v) {
		char since[40], *why;

		iso_time(v->since, since, sizeof(since));
		why = hf_xasprintf("reuses the volumes kept on node %s since %s "
				   "(%s)",
				   n->id, since, v->why ? v->why : "kept");
		hf_actions_log(out, "service %s: %s %s", svc->name, in->name,
			       why);
		event(out, "scheduler", svc->name, "pod", in->name, NULL,
		      "reuses kept volumes", why);
		free(why);
		volume_act(out, svc->name, HF_VOLOP_ADOPT, key, n->id);
	}
	free(key);
}

/* Says (once per change) why an instance is not placed. */
static void unplaced(const struct hf_model *m, const struct hf_service *svc,
		     const struct hf_instance *in, const char *msg, bool evt,
		     struct hf_actions *out)
{
	struct hf_action *x;

	if (in->message && strcmp(in->message, msg) == 0)
		return;
	hf_actions_log(out, "service %s: %s %s", svc->name, in->name, msg);
	if (evt)
		event(out, "scheduler", svc->name, "pod", in->name, NULL,
		      "unplaced", msg);
	x = inst_act(out, svc, in);
	x->u.inst.set = HF_INST_MESSAGE;
	x->u.inst.message = hf_xstrdup(msg);
	/* Before any agent registered there is nothing to remember. */
	x->u.inst.memory_only = evt && m->nodes.len == 0;
}

/*
 * What is free of have once used is taken, to the millionth: sums like
 * 0.1 + 0.2 are not exact, and a full node must read 0, not -4.4e-16.
 */
static double free_amount(double have, double used)
{
	double d = have - used;
	double r = (double)(long long)(d * 1e6 + (d < 0 ? -0.5 : 0.5)) / 1e6;

	return r == 0 ? 0 : r;
}

/*
 * Gives an instance a node and its ports, once, for its lifetime: ports
 * and volumes stay the same across task restarts. The node must satisfy
 * the pod's placement constraints (plan/placement.h), have the cpus and
 * memory the pod reserves and its static ports free; among those the
 * least loaded wins, a node holding volumes kept under the instance's
 * name first. Returns the node, or NULL when the instance cannot be
 * placed now (its message says why).
 */
static const struct hf_node *place(const struct hf_model *m,
				   const struct hf_service *svc,
				   const struct hf_spec_pod *pod,
				   const struct hf_instance *in,
				   struct hf_decide_ctx *ctx,
				   struct hf_actions *out)
{
	struct hf_place_cache local = {0};
	struct hf_place_cache *c = ctx->place ? ctx->place : &local;
	size_t nn = m->nodes.len;
	struct hf_place_node *cands;
	struct port_vec used = {0};
	struct hf_kvlist ports = {0};
	struct hf_strlist notes = {0};
	const struct hf_node *best = NULL;
	double need_c, need_m;
	char *why = NULL;
	long pick;

	pod_demand(pod, &need_c, &need_m);
	placement_scratch(m, c, svc, pod);
	cands = hf_xcalloc(nn + 1, sizeof(*cands));
	for (size_t i = 0; i < nn; i++) {
		const struct hf_node *n = m->nodes.items[i];
		const struct hf_node_usage *u = &c->usage.items[i];
		struct hf_place_node *cd = &cands[i];
		char *note = NULL;

		cd->id = n->id;
		cd->hostname = n->hostname;
		cd->attributes = &n->attributes;
		cd->load = u->load;
		cd->usable = hf_model_node_reachable(
				 n, ctx->now,
				 (int64_t)(ctx->opts->node_timeout * 1000)) &&
			     !n->decommissioned;
		if (!cd->usable) {
			cd->unusable_why = n->decommissioned
					       ? "it is decommissioned"
					       : "its agent is not connected";
			continue;
		}
		if ((n->cpus > 0 && u->used_cpus + need_c > n->cpus + 1e-9) ||
		    (n->memory_mb > 0 &&
		     u->used_mem + need_m > n->memory_mb + 1e-9))
			note = hf_xasprintf("it has %g cpus and %g MB free, the "
					    "pod needs %g cpus and %g MB",
					    free_amount(n->cpus, u->used_cpus),
					    free_amount(n->memory_mb, u->used_mem),
					    need_c, need_m);
		else if (u->clash_port)
			note = hf_xasprintf("port %lld (%s) is already reserved "
					    "there",
					    (long long)u->clash_port,
					    static_port(pod, u->clash_port)->name);
		if (note) {
			hf_strlist_push(&notes, note);
			free(note);
			cd->usable = false;
			cd->unusable_why = notes.items[notes.len - 1];
		}
	}
	if (pod->external_volumes.len) {
		char *refuse = hf_decide_xvol_candidates(m, svc, pod, in, cands,
							 nn, ctx, &notes);

		if (refuse) {
			unplaced(m, svc, in, refuse, true, out);
			free(refuse);
			free(cands);
			hf_strlist_release(&notes);
			goto out;
		}
	}
	pick = -1;
	{
		/*
		 * A node that kept volumes under this instance's name comes
		 * first, if the pod may go there: its data is there.
		 */
		long k = kept_node(m, svc, in);

		if (k >= 0 && cands[k].usable) {
			struct hf_place_node *all = hf_xcalloc(nn + 1, sizeof(*all));
			char *ignored = NULL;

			memcpy(all, cands, nn * sizeof(*all));
			for (size_t i = 0; i < nn; i++)
				if ((long)i != k) {
					cands[i].usable = false;
					cands[i].unusable_why = "";
				}
			pick = hf_place_choose(pod->constraints.items,
					       pod->constraints.len, cands, nn,
					       c->placed.items, c->placed.len,
					       &ignored);
			free(ignored);
			/* Not allowed there: choose among all. */
			memcpy(cands, all, nn * sizeof(*all));
			free(all);
		}
	}
	if (pick < 0)
		pick = hf_place_choose(pod->constraints.items,
				       pod->constraints.len, cands, nn,
				       c->placed.items, c->placed.len, &why);
	if (pick < 0) {
		/*
		 * No node with the pod's data fits (its constraints): one
		 * that reaches the data over the network will do.
		 */
		bool any = false;

		for (size_t i = 0; i < nn; i++)
			if (cands[i].fallback) {
				cands[i].usable = any = true;
				cands[i].unusable_why = NULL;
			}
		if (any) {
			char *again = NULL;

			pick = hf_place_choose(pod->constraints.items,
					       pod->constraints.len, cands, nn,
					       c->placed.items, c->placed.len,
					       &again);
			if (pick >= 0) {
				free(why);
				why = NULL;
			}
			free(again);
		}
	}
	free(cands);
	hf_strlist_release(&notes);
	if (pick < 0) {
		char *msg = nn ? hf_xasprintf("cannot be placed: %s", why)
			       : hf_xstrdup("waiting for an agent to register");

		unplaced(m, svc, in, msg, true, out);
		free(msg);
		free(why);
		goto out;
	}
	best = m->nodes.items[pick];
	adopt_kept(m, svc, in, best, out);
	ports_on_node(m, best->id, in, &used);
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
		unplaced(m, svc, in, why, false, out);
		free(why);
		hf_kvlist_release(&ports);
		best = NULL;
		goto out;
	}
	{
		struct hf_action *x = hf_actions_push(out, HF_ACT_PLACE, svc->name,
						      in->name, NULL);
		struct hf_volume tmp = {0};

		x->u.place.node = hf_xstrdup(best->id);
		x->u.place.ports = ports;
		hf_model_volume_describe(&tmp, pod);
		x->u.place.volume_size_mb = tmp.size_mb;
		x->u.place.volume_kind = tmp.kind;
		placement_add(c, pod, &x->u.place.ports, best->idx);
	}
	hf_actions_log(out, "service %s: placed %s on node %s", svc->name,
		       in->name, best->id);
	event(out, "scheduler", svc->name, "pod", in->name, NULL, "placed",
	      best->id);
out:
	if (c == &local)
		hf_place_cache_release(&local);
	return best;
}

/* ------------------------------------------------------------------ */
/* Launching and stopping                                               */

/* The live launch of another task of t's resource set in the instance. */
static const struct hf_task_rec *rs_busy(const struct hf_spec_pod *pod,
					 const struct hf_instance *in,
					 const struct hf_spec_task *task,
					 const struct unit *u)
{
	for (size_t i = 0; i < in->slots.len; i++) {
		const struct hf_task_slot *sl = &in->slots.items[i];
		const struct hf_spec_task *other = task_spec(pod, sl->task);

		if (!other || other == task || !live_now(u, sl->cur))
			continue;
		if (other->resource_set == task->resource_set)
			return sl->cur;
	}
	return NULL;
}

/*
 * Launches tasks of an instance on node: a new launch record each, in
 * STAGING, written before any agent can see it.
 */
static void launch(const struct hf_service *svc, const char *config_id,
		   const struct hf_plan_run *run, const char *run_name,
		   const struct hf_instance *in, const char *node,
		   const struct hf_strlist *tasks, bool restart,
		   struct hf_decide_ctx *ctx, struct hf_actions *out)
{
	const struct hf_config *cfg = hf_model_config(svc, config_id);
	const struct hf_spec_pod *pod = hf_model_pod(cfg, in->pod);

	for (size_t i = 0; i < tasks->len; i++) {
		const struct hf_spec_task *t = task_spec(pod, tasks->items[i]);
		const struct hf_task_slot *sl =
		    hf_model_slot_find(in, tasks->items[i]);
		char *uuid = hf_rng_hex(ctx->rng, 16);
		struct hf_action *x = hf_actions_push(
		    out, HF_ACT_LAUNCH, svc->name, in->name, tasks->items[i]);
		struct hf_act_launch *l = &x->u.launch;
		char *id;

		id = l->id = hf_xasprintf("%s-%s__%s", in->name, tasks->items[i],
					  uuid);
		free(uuid);
		l->config_id = hf_xstrdup(config_id);
		l->run = run ? run_id(run)
			     : hf_xstrdup(run_name ? run_name : "recovery");
		if (run)
			hf_kvlist_copy(&l->params, &run->params);
		else if (sl && sl->cur)
			hf_kvlist_copy(&l->params, &sl->cur->params);
		l->paused = in->paused;
		l->restart = restart;
		l->want_running = t && t->goal == HF_GOAL_RUNNING;
		l->at = ctx->now;
		hf_actions_log(out, "service %s: %s %s on node %s (config %s)",
			       svc->name, restart ? "relaunching" : "launching",
			       id, node ? node : "(null)", config_id);
		event(out, "scheduler", svc->name, "task", id, NULL, "STAGING",
		      restart ? "relaunch after a failure"
		      : run   ? run->plan
			      : run_name);
	}
}

/*
 * Asks for a live launch to be stopped. restart: recovery relaunches it
 * once it stopped (its pod restarts, or a resource set was borrowed);
 * otherwise whoever stopped it decides what comes next. A launch no agent
 * saw yet (STAGING) ends at once (stop_unseen).
 */
static void kill_task(const struct hf_service *svc,
		      const struct hf_instance *in, const char *task,
		      const struct hf_task_rec *r, const char *why,
		      bool restart, struct unit *u, int64_t now,
		      struct hf_actions *out)
{
	enum hf_task_state ends = stop_unseen(r);
	struct hf_action *x;

	if (r->kill || unit_killed(u, r) || !hf_task_state_live(r->state))
		return;
	if (u)
		*HF_VEC_PUSH(&u->killed) = r;
	x = hf_actions_push(out, HF_ACT_KILL, svc->name, in->name, task);
	x->u.kill.id = hf_xstrdup(r->id);
	x->u.kill.restart = restart;
	if (ends != r->state) {
		x = hf_actions_push(out, HF_ACT_TASK, svc->name, in->name, task);
		x->u.tsk.id = hf_xstrdup(r->id);
		x->u.tsk.set = HF_TASK_STATE | HF_TASK_FINISHED_AT;
		x->u.tsk.state = ends;
		x->u.tsk.finished_at = now;
	}
	hf_actions_log(out, "service %s: stopping %s: %s", svc->name, r->id,
		       why);
	event(out, "scheduler", svc->name, "task", r->id,
	      hf_task_state_name(ends), "stopping", why);
}

/* ------------------------------------------------------------------ */
/* Steps                                                                */

/*
 * A replacement instance first runs its pod's `replace` tasks (bootstrap
 * from a peer, with REPLACED_* in their env). Returns true once they all
 * finished; launches what is missing otherwise.
 */
static bool replace_tasks_done(const struct hf_service *svc,
			       const struct hf_config *cfg,
			       const struct hf_spec_pod *pod,
			       const struct hf_instance *in, const char *node,
			       struct hf_decide_ctx *ctx, struct hf_actions *out)
{
	struct hf_strlist todo = {0};
	bool waiting = false;

	for (size_t i = 0; i < pod->replace_tasks.len; i++) {
		const char *task = pod->replace_tasks.items[i];
		const struct hf_task_slot *sl = hf_model_slot_find(in, task);
		const struct hf_task_rec *r = sl ? sl->cur : NULL;

		if (r && r->state == HF_TS_FINISHED)
			continue;
		waiting = true;
		if (r && hf_task_state_live(r->state))
			continue;
		if (r && sl->backoff_until > ctx->now)
			continue;
		hf_strlist_push(&todo, task);
	}
	if (todo.len)
		launch(svc, cfg->id, NULL, "replace", in, node, &todo, false, ctx,
		       out);
	hf_strlist_release(&todo);
	if (!waiting) {
		struct hf_action *x = inst_act(out, svc, in);

		x->u.inst.set = HF_INST_REPLACE_PENDING;
		x->u.inst.replace_pending = false;
		hf_actions_log(out, "service %s: %s finished its replace tasks",
			       svc->name, in->name);
	}
	return !waiting;
}

/* The step's instance: placed if need be, then its tasks launched. */
static void act_step(const struct hf_model *m, const struct hf_service *svc,
		     const struct hf_config *cfg, const struct hf_plan_run *run,
		     const struct hf_plan_step_def *st,
		     struct hf_decide_ctx *ctx, struct hf_actions *out)
{
	const struct hf_spec_pod *pod = hf_model_pod(cfg, st->pod);
	const struct hf_instance *in;
	struct hf_instance blank = {0};
	struct hf_strlist todo = {0};
	struct unit u = {.now = ctx->now};
	const char *node;
	char *name;

	if (!pod)
		return;
	name = hf_model_instance_name(st->pod, st->index);
	in = hf_model_instance(svc, name);
	if (!in) {
		/* A new instance: the rules below see it as it will be. */
		struct hf_action *x = hf_actions_push(
		    out, HF_ACT_CREATE_INSTANCE, svc->name, name, NULL);

		x->u.create.pod = hf_xstrdup(st->pod);
		x->u.create.index = st->index;
		blank.name = name;
		blank.pod = (char *)st->pod;
		blank.index = st->index;
		in = &blank;
	}
	node = in->node;
	if (!node) {
		const struct hf_node *n = place(m, svc, pod, in, ctx, out);

		if (!n)
			goto out;
		node = n->id;
	}
	/* Its external volumes are attached there before anything runs. */
	if (pod->external_volumes.len &&
	    !hf_decide_xvols_attached(m, svc, pod, in, node, ctx, out))
		goto out;
	if (in->replace_pending &&
	    !replace_tasks_done(svc, cfg, pod, in, node, ctx, out))
		goto out;
	for (size_t i = 0; i < st->tasks.len; i++) {
		const struct hf_spec_task *t = task_spec(pod, st->tasks.items[i]);
		const struct hf_task_slot *sl;
		const struct hf_task_rec *busy;
		enum hf_task_fact f;

		if (!t)
			continue;
		f = task_fact(svc, cfg, run, in, t, &u, ctx->now);
		if (f != HF_FACT_NONE && f != HF_FACT_FAILED)
			continue;
		sl = hf_model_slot_find(in, t->name);
		if (sl && live_now(&u, sl->cur)) {
			/* An older launch still runs: stop it first. */
			kill_task(svc, in, t->name, sl->cur,
				  "the plan relaunches it", false, &u, ctx->now,
				  out);
			continue;
		}
		busy = rs_busy(pod, in, t, &u);
		if (busy) {
			for (size_t k = 0; k < in->slots.len; k++)
				if (in->slots.items[k].cur == busy)
					kill_task(svc, in, in->slots.items[k].task,
						  busy,
						  "its resource set is needed "
						  "by another task",
						  true, &u, ctx->now, out);
			continue;
		}
		hf_strlist_push(&todo, t->name);
	}
	if (todo.len) {
		bool restart = false;

		for (size_t i = 0; i < todo.len; i++) {
			const struct hf_task_slot *sl =
			    hf_model_slot_find(in, todo.items[i]);

			if (sl && sl->cur && sl->cur->state == HF_TS_FAILED)
				restart = true;
		}
		launch(svc, cfg->id, run, NULL, in, node, &todo, restart, ctx, out);
	}
out:
	hf_strlist_release(&todo);
	HF_VEC_FREE(&u.killed);
	free(name);
}

/* ------------------------------------------------------------------ */
/* Plan views                                                           */

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
static char *step_message(const struct hf_service *svc,
			  const struct hf_plan_step_def *st, int64_t now)
{
	char *name = hf_model_instance_name(st->pod, st->index);
	const struct hf_instance *in = hf_model_instance(svc, name);
	struct hf_buf b = HF_BUF_INIT;

	free(name);
	if (!in)
		return NULL;
	if (in->message)
		hf_buf_adds(&b, in->message);
	for (size_t i = 0; i < st->tasks.len; i++) {
		const struct hf_task_slot *sl =
		    hf_model_slot_find(in, st->tasks.items[i]);

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
		if ((!hf_task_state_live(sl->cur->state) ||
		     sl->cur->backoff) &&
		    sl->backoff_until > now) {
			char when[40];

			iso_time(sl->backoff_until, when, sizeof(when));
			hf_buf_addf(&b,
				    "%s%s: in backoff after %u failure%s, "
				    "relaunches at %s",
				    b.len ? "; " : "", sl->task, sl->failures,
				    sl->failures == 1 ? "" : "s", when);
		}
	}
	return b.len ? hf_buf_detach(&b) : NULL;
}

/* Prefixes (or appends) to a step's message. */
static void add_message(char **msg, const char *first)
{
	char *m = hf_xasprintf("%s%s%s", first, *msg ? "; " : "",
			       *msg ? *msg : "");

	free(*msg);
	*msg = m;
}

/* Evaluates a run without acting; fills a view the caller releases. */
static void eval_run(const struct hf_service *svc, const struct hf_config *cfg,
		     const struct hf_plan_run *run,
		     const struct hf_plan_def *def, int64_t now,
		     struct hf_plan_view *v)
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
	/* The run's step lists, indexed: a plan may have thousands of steps. */
	struct hf_map completed = {0}, forced = {0}, started = {0}, waits = {0};

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
		const struct hf_spec_pod *pod = hf_model_pod(cfg, ph->pod);

		if (run) {
			const char *c = hf_kvlist_get(&run->continues, ph->name);

			ph_int[p] = hf_strlist_has(&run->interrupted_phases,
						   ph->name);
			cont[p] = c ? atoi(c) : 0;
		}
		for (size_t k = 0; k < ph->steps.len; k++) {
			const struct hf_plan_step_def *st = &ph->steps.items[k];
			size_t i = base + k;
			enum hf_task_fact facts[64];
			size_t nf = 0;
			char *iname = hf_model_instance_name(st->pod, st->index);
			const struct hf_instance *inst =
			    hf_model_instance(svc, iname);
			char *key = step_key(ph, st);
			const char *t0 = hf_map_get(&started, key);
			bool late = false;

			free(iname);
			for (size_t t = 0; t < st->tasks.len && nf < 64; t++) {
				const struct hf_spec_task *ts =
				    task_spec(pod, st->tasks.items[t]);

				if (ts)
					facts[nf++] = task_fact(svc, cfg, run,
								inst, ts, NULL,
								now);
			}
			in[i].observed = run ? hf_plan_step_observe(facts, nf)
					     : HF_STATUS_PENDING;
			v->completed[i] = hf_map_get(&completed, key);
			v->started[i] = t0 ? atoll(t0) : 0;
			/* healthy-deadline: a step too slow to complete. */
			if (run && def->healthy_deadline > 0 &&
			    in[i].observed != HF_STATUS_COMPLETE &&
			    !v->completed[i] && t0 &&
			    now - atoll(t0) >
				(int64_t)(def->healthy_deadline * 1000)) {
				in[i].observed = HF_STATUS_ERROR;
				late = true;
			}
			in[i].completed = v->completed[i];
			in[i].force_complete = hf_map_get(&forced, key);
			v->messages[i] = step_message(svc, st, now);
			if (run && !v->completed[i] &&
			    in[i].observed != HF_STATUS_COMPLETE) {
				const char *w = hf_map_get(&waits, key);

				if (w)
					add_message(&v->messages[i], w);
			}
			if (late) {
				char *d = hf_xasprintf(
				    "not complete within the plan's "
				    "healthy-deadline of %g s",
				    def->healthy_deadline);

				add_message(&v->messages[i], d);
				free(d);
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
static void build_recovery(const struct hf_service *svc,
			   const struct hf_config *cfg, struct hf_plan_defs *out)
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
			const struct hf_instance *in = svc->instances.items[i];
			struct hf_plan_step_def *st;
			struct hf_strlist tasks = {0};
			struct hf_buf name = HF_BUF_INIT;

			if (strcmp(in->pod, pod->name) != 0)
				continue;
			for (size_t k = 0; k < in->slots.len; k++) {
				const struct hf_task_slot *sl = &in->slots.items[k];
				const struct hf_task_rec *r = sl->cur;
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

/* Instances the target no longer wants: pod removed or index past count. */
static bool unwanted(const struct hf_config *cfg, const struct hf_instance *in)
{
	const struct hf_spec_pod *pod = hf_model_pod(cfg, in->pod);

	return !pod || in->index >= pod->count;
}

static void build_decommission(const struct hf_service *svc,
			       const struct hf_config *cfg,
			       struct hf_plan_defs *out)
{
	struct hf_plan_def *def = HF_VEC_PUSH(out);
	struct hf_plan_phase_def *ph = NULL;
	HF_VEC(const struct hf_instance *) list = {0};

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
			const struct hf_instance *t = list.items[j];

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

static void decommission_view(const struct hf_service *svc,
			      const struct hf_config *cfg,
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
		const struct hf_plan_step_def *st =
		    &v->def->phases.items[0].steps.items[i];
		char *iname = hf_model_instance_name(st->pod, st->index);
		const struct hf_instance *in = hf_model_instance(svc, iname);

		free(iname);
		if (in && in->drain == HF_DRAIN_FAILED) {
			v->steps[i].status = HF_STATUS_ERROR;
			v->messages[i] = hf_xstrdup(
			    "the drain failed; volumes are kept (force-complete "
			    "this step to remove the instance anyway)");
		} else if (in && hf_instance_decommissioning(in)) {
			v->steps[i].status = HF_STATUS_STARTING;
			v->messages[i] = hf_xstrdup(
			    in->state == HF_IS_STOPPING ? "stopping tasks"
							: "draining");
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

int hf_decide_plan_view(const struct hf_service *svc, const char *name,
			int64_t now, struct hf_plan_view *v)
{
	const struct hf_config *cfg = hf_model_target(svc);
	const struct hf_plan_def *def;

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
		struct hf_plan_run recovery_run = {0};

		build_recovery(svc, cfg, &owned);
		recovery_run.plan = (char *)"recovery";
		recovery_run.active = true;
		eval_run(svc, cfg, &recovery_run, &owned.items[0], now, v);
		v->owned = owned;
		v->def = &v->owned.items[0];
		return 0;
	}
	if (!def)
		return HF_ENOTFOUND;
	eval_run(svc, cfg, hf_model_run(svc, name), def, now, v);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Plan runs                                                            */

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
			name = hf_model_instance_name(ph->steps.items[k].pod,
						      ph->steps.items[k].index);
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
static bool claim_step(const struct hf_service *svc, struct claims *cl,
		       size_t r, size_t i, const struct hf_plan_step_def *st,
		       int64_t now, char **why)
{
	char *name = hf_model_instance_name(st->pod, st->index);
	const struct hf_instance *in = hf_model_instance(svc, name);
	struct claim *c = hf_map_get(&cl->by_instance, name);
	bool ok = false;

	*why = NULL;
	if (in && (hf_instance_replacing(in) ||
		   hf_instance_decommissioning(in))) {
		*why = hf_xasprintf("waits: %s is being %s", name,
				    hf_instance_replacing(in)
					? "replaced"
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

static void recover(const struct hf_model *m, const struct hf_service *svc,
		    const struct hf_config *cfg, const struct claims *cl,
		    struct hf_decide_ctx *ctx, struct hf_actions *out);

enum runs_stage {
	RUNS_PREPARE, /* forget last tick's waits; stop runs whose plan is gone */
	RUNS_EVAL,    /* evaluate every active run; steps under way hold */
	RUNS_STEPS,   /* run r's steps, from phase p, step k */
	RUNS_END,     /* run r's status */
	RUNS_REVERT,  /* run r failed: back to the previous config */
	RUNS_RECOVER,
	RUNS_DONE,
};

struct hf_decide_runs {
	const struct hf_service *svc;
	const struct hf_config *cfg;
	enum runs_stage stage;
	size_t nr; /* runs added meanwhile (auto-revert) wait for next tick */
	struct hf_plan_view *views;
	const struct hf_plan_def **defs;
	struct claims cl;
	size_t r, p, k, base;
};

struct hf_decide_runs *hf_decide_runs_begin(const struct hf_service *svc,
					    const struct hf_config *cfg)
{
	struct hf_decide_runs *rt = hf_xcalloc(1, sizeof(*rt));

	rt->svc = svc;
	rt->cfg = cfg;
	rt->stage = RUNS_PREPARE;
	return rt;
}

void hf_decide_runs_end(struct hf_decide_runs *rt)
{
	if (!rt)
		return;
	for (size_t r = 0; r < rt->nr; r++)
		if (rt->defs[r])
			hf_plan_view_release(&rt->views[r]);
	free(rt->views);
	free(rt->defs);
	claims_release(&rt->cl);
	free(rt);
}

/* The next run to act on from rt->r on; false when there is none. */
static bool next_run(struct hf_decide_runs *rt)
{
	for (; rt->r < rt->nr; rt->r++)
		if (rt->defs[rt->r] && rt->svc->runs.items[rt->r].active) {
			rt->p = rt->k = rt->base = 0;
			return true;
		}
	return false;
}

/*
 * Walks run r's steps from where it stopped: records the steps seen
 * complete, the steps that wait, the steps that start, and returns after
 * the first step that acts (a unit of its own). Returns false when the
 * run's steps are done.
 */
static bool run_steps(struct hf_decide_runs *rt, const struct hf_model *m,
		      struct hf_decide_ctx *ctx, struct hf_actions *out)
{
	const struct hf_service *svc = rt->svc;
	const struct hf_plan_run *run = &svc->runs.items[rt->r];
	const struct hf_plan_def *def = rt->defs[rt->r];
	const struct hf_plan_view *v = &rt->views[rt->r];

	for (; rt->p < def->phases.len; rt->p++, rt->k = 0) {
		const struct hf_plan_phase_def *ph = &def->phases.items[rt->p];

		for (; rt->k < ph->steps.len; rt->k++) {
			const struct hf_plan_step_def *st = &ph->steps.items[rt->k];
			size_t i = rt->base + rt->k;
			const struct hf_step_out *o = &v->steps[i];
			char *key, *why = NULL;
			struct hf_action *x;

			if (o->status == HF_STATUS_COMPLETE) {
				if (!v->completed[i]) {
					x = run_act(out, svc, run->plan);
					x->u.run.set = HF_RUN_COMPLETED;
					x->u.run.key = step_key(ph, st);
				}
				continue;
			}
			if (!o->act || run->interrupted)
				continue;
			key = step_key(ph, st);
			if (!claim_step(svc, &rt->cl, rt->r, i, st, ctx->now,
					&why)) {
				/* Once per step and tick: no search. */
				x = run_act(out, svc, run->plan);
				x->u.run.set = HF_RUN_WAIT;
				x->u.run.key = key;
				x->u.run.value = why;
				continue;
			}
			if (!v->started[i]) {
				x = run_act(out, svc, run->plan);
				x->u.run.set = HF_RUN_STEP_STARTED;
				x->u.run.key = key;
				x->u.run.value =
				    hf_xasprintf("%lld", (long long)ctx->now);
			} else {
				free(key);
			}
			act_step(m, svc, rt->cfg, run, st, ctx, out);
			rt->k++;
			return true;
		}
		rt->base += ph->steps.len;
	}
	return false;
}

/* Run r's status after its steps acted; whether it must auto-revert. */
static bool run_end(struct hf_decide_runs *rt, struct hf_decide_ctx *ctx,
		    struct hf_actions *out)
{
	const struct hf_service *svc = rt->svc;
	const struct hf_plan_run *run = &svc->runs.items[rt->r];
	const struct hf_plan_def *def = rt->defs[rt->r];
	const struct hf_plan_view *v = &rt->views[rt->r];
	struct hf_action *x = NULL;

	if (v->status != run->status) {
		hf_actions_log(out, "service %s: plan %s %s -> %s", svc->name,
			       run->plan, hf_status_name(run->status),
			       hf_status_name(v->status));
		event(out, "scheduler", svc->name, "plan", run->plan,
		      hf_status_name(run->status), hf_status_name(v->status),
		      NULL);
		x = run_act(out, svc, run->plan);
		x->u.run.set = HF_RUN_STATUS;
		x->u.run.status = v->status;
	}
	if (v->status == HF_STATUS_COMPLETE && run->active) {
		if (!x)
			x = run_act(out, svc, run->plan);
		x->u.run.set |= HF_RUN_ACTIVE | HF_RUN_FINISHED_AT;
		x->u.run.active = false;
		x->u.run.finished_at = ctx->now;
	}
	if (v->status == HF_STATUS_ERROR && def->auto_revert && !run->reverted &&
	    svc->previous && hf_model_config(svc, svc->previous)) {
		x = run_act(out, svc, run->plan);
		x->u.run.set = HF_RUN_REVERTED;
		x->u.run.reverted = true;
		hf_actions_log(
		    out, "service %s: plan %s failed; auto-revert to config %s",
		    svc->name, run->plan, svc->previous);
		event(out, "scheduler", svc->name, "service", svc->name,
		      svc->target, svc->previous,
		      "auto-revert: the update failed");
		return true;
	}
	return false;
}

bool hf_decide_runs_next(struct hf_decide_runs *rt, const struct hf_model *m,
			 struct hf_decide_ctx *ctx, struct hf_actions *out)
{
	const struct hf_service *svc = rt->svc;

	for (;;) {
		switch (rt->stage) {
		case RUNS_PREPARE:
			rt->nr = svc->runs.len;
			rt->views = hf_xcalloc(rt->nr + 1, sizeof(*rt->views));
			rt->defs = hf_xcalloc(rt->nr + 1, sizeof(*rt->defs));
			for (size_t r = 0; r < rt->nr; r++) {
				const struct hf_plan_run *run = &svc->runs.items[r];
				struct hf_action *x;

				if (run->waits.len) {
					x = run_act(out, svc, run->plan);
					x->u.run.set = HF_RUN_WAITS_CLEAR;
				}
				/* A run whose plan is gone stops. */
				if (run->active &&
				    !hf_plan_defs_find(&rt->cfg->plans,
						       run->plan)) {
					x = run_act(out, svc, run->plan);
					x->u.run.set = HF_RUN_ACTIVE;
					x->u.run.active = false;
				}
			}
			rt->stage = RUNS_EVAL;
			if (out->len)
				return true;
			break;
		case RUNS_EVAL:
			for (size_t r = 0; r < rt->nr; r++) {
				const struct hf_plan_run *run = &svc->runs.items[r];

				if (!run->active)
					continue;
				rt->defs[r] =
				    hf_plan_defs_find(&rt->cfg->plans, run->plan);
				if (rt->defs[r])
					eval_run(svc, rt->cfg, run, rt->defs[r],
						 ctx->now, &rt->views[r]);
			}
			for (size_t r = 0; r < rt->nr; r++)
				if (rt->defs[r])
					claims_from_run(&rt->cl, &svc->runs.items[r],
							r, rt->defs[r],
							&rt->views[r]);
			rt->r = 0;
			rt->stage = next_run(rt) ? RUNS_STEPS : RUNS_RECOVER;
			break;
		case RUNS_STEPS:
			if (run_steps(rt, m, ctx, out))
				return true;
			rt->stage = RUNS_END;
			break;
		case RUNS_END:
			if (run_end(rt, ctx, out)) {
				rt->stage = RUNS_REVERT;
			} else {
				rt->r++;
				rt->stage = next_run(rt) ? RUNS_STEPS
							 : RUNS_RECOVER;
			}
			if (out->len)
				return true;
			break;
		case RUNS_REVERT:
			hf_decide_set_target(m, svc,
					     hf_model_config(svc, svc->previous),
					     true, ctx, out);
			rt->r++;
			rt->stage = next_run(rt) ? RUNS_STEPS : RUNS_RECOVER;
			return true;
		case RUNS_RECOVER:
			recover(m, svc, rt->cfg, &rt->cl, ctx, out);
			rt->stage = RUNS_DONE;
			return true;
		case RUNS_DONE:
			return false;
		}
	}
}

/* ------------------------------------------------------------------ */
/* Recovery                                                             */

/* Is this instance's task part of a step an active plan is working on? */
static bool in_active_step(const struct hf_service *svc,
			   const struct hf_config *cfg,
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

static void recover(const struct hf_model *m, const struct hf_service *svc,
		    const struct hf_config *cfg, const struct claims *cl,
		    struct hf_decide_ctx *ctx, struct hf_actions *out)
{
	for (size_t i = 0; i < svc->instances.len; i++) {
		const struct hf_instance *in = svc->instances.items[i];
		const struct hf_spec_pod *pod = hf_model_pod(cfg, in->pod);
		struct hf_strlist todo = {0};
		const char *config_id = NULL;

		if (!pod || !in->node)
			continue;
		if ((int64_t)in->index >= pod->count)
			continue; /* decommissioned: scale-in owns it */
		for (size_t k = 0; k < in->slots.len; k++) {
			const struct hf_task_slot *sl = &in->slots.items[k];
			const struct hf_spec_task *t = task_spec(pod, sl->task);
			const struct hf_task_rec *r = sl->cur;

			if (!t || !sl->want_running || !r ||
			    hf_task_state_live(r->state))
				continue;
			if (r->kill && !r->restart)
				continue; /* stopped on purpose */
			if (r->permanent && r->state == HF_TS_FAILED)
				continue; /* waits for a new config */
			if (in_active_step(svc, cfg, in, sl->task))
				continue;
			if (sl->backoff_until > ctx->now)
				continue;
			if (rs_busy(pod, in, t, NULL) || held_for(cl, pod, in, t))
				continue;
			hf_strlist_push(&todo, sl->task);
			if (!config_id || !hf_model_config(svc, r->config_id))
				config_id = hf_model_config(svc, r->config_id)
						? r->config_id
						: cfg->id;
		}
		if (todo.len) {
			const struct hf_spec_pod *lpod =
			    hf_model_pod(hf_model_config(svc, config_id), in->pod);

			if (!lpod || !lpod->external_volumes.len ||
			    hf_decide_xvols_attached(m, svc, lpod, in, in->node,
						     ctx, out))
				launch(svc, config_id, NULL, "recovery", in,
				       in->node, &todo, true, ctx, out);
		}
		hf_strlist_release(&todo);
	}
}

/* ------------------------------------------------------------------ */
/* Plan start and target                                                */

void hf_decide_start_plan(const struct hf_model *m,
			  const struct hf_service *svc, const char *plan,
			  const struct hf_kvlist *params,
			  struct hf_decide_ctx *ctx, struct hf_actions *out)
{
	const struct hf_plan_run *run = hf_model_run(svc, plan);
	struct hf_plan_run probe = {.plan = (char *)plan};
	struct hf_action *x =
	    hf_actions_push(out, HF_ACT_START_PLAN, svc->name, NULL, NULL);

	(void)m;
	x->u.start.plan = hf_xstrdup(plan);
	x->u.start.at = ctx->now;
	if (params) {
		x->u.start.has_params = true;
		hf_kvlist_copy(&x->u.start.params, params);
	}
	/* A new run of a custom plan starts its tasks' failure count afresh. */
	if (is_custom(&probe)) {
		const struct hf_config *cfg = hf_model_target(svc);
		const struct hf_plan_def *def =
		    cfg ? hf_plan_defs_find(&cfg->plans, plan) : NULL;

		for (size_t p = 0; def && p < def->phases.len; p++)
			for (size_t k = 0; k < def->phases.items[p].steps.len;
			     k++) {
				const struct hf_plan_step_def *st =
				    &def->phases.items[p].steps.items[k];
				char *iname = hf_model_instance_name(st->pod,
								     st->index);
				const struct hf_instance *in =
				    hf_model_instance(svc, iname);

				free(iname);
				for (size_t t = 0; in && t < st->tasks.len; t++) {
					x = slot_act(out, svc, in,
						     st->tasks.items[t]);
					x->u.slot.set =
					    HF_SLOT_FAILURES | HF_SLOT_BACKOFF;
				}
			}
	}
	hf_actions_log(out, "service %s: plan %s started (run %u)", svc->name,
		       plan, (run ? run->number : 0) + 1);
	event(out, "scheduler", svc->name, "plan", plan, NULL, "started",
	      params && params->len ? "with parameters" : NULL);
}

void hf_decide_set_target(const struct hf_model *m,
			  const struct hf_service *svc,
			  const struct hf_config *cfg, bool rollback,
			  struct hf_decide_ctx *ctx, struct hf_actions *out)
{
	const struct hf_config *old = hf_model_target(svc);
	const char *plan;
	struct hf_action *x;

	/*
	 * A change relaunches the instances of pods whose effective spec
	 * changed: their tasks start afresh, without the restart backoff
	 * their old spec's failures earned (the change may be the fix).
	 */
	for (size_t i = 0; i < svc->instances.len; i++) {
		const struct hf_instance *in = svc->instances.items[i];
		const char *a = old ? hf_kvlist_get(&old->fingerprints, in->pod)
				    : NULL;
		const char *b = hf_kvlist_get(&cfg->fingerprints, in->pod);

		if (a && b && strcmp(a, b) == 0)
			continue;
		for (size_t k = 0; k < in->slots.len; k++) {
			const struct hf_task_slot *sl = &in->slots.items[k];

			if (!sl->failures && !sl->backoff_until)
				continue;
			x = slot_act(out, svc, in, sl->task);
			x->u.slot.set = HF_SLOT_FAILURES | HF_SLOT_BACKOFF;
		}
	}
	x = hf_actions_push(out, HF_ACT_SET_TARGET, svc->name, NULL, NULL);
	x->u.target.config_id = hf_xstrdup(cfg->id);
	plan = hf_spec_update_plan_name(cfg->spec, false);
	hf_actions_log(
	    out, "service %s: target is now config %s (%s); plan %s runs",
	    svc->name, cfg->id, rollback ? "rollback" : "update", plan);
	/* Other runs of the old config's plans stop where they are. */
	for (size_t i = 0; i < svc->runs.len; i++) {
		const struct hf_plan_run *r = &svc->runs.items[i];

		if (r->active && strcmp(r->plan, plan) != 0 &&
		    (strcmp(r->plan, "deploy") == 0 ||
		     strcmp(r->plan, "update") == 0)) {
			x = run_act(out, svc, r->plan);
			x->u.run.set = HF_RUN_ACTIVE;
			x->u.run.active = false;
		}
	}
	hf_decide_start_plan(m, svc, plan, NULL, ctx, out);
}

/* ------------------------------------------------------------------ */
/* Volumes and removal                                                  */

/* Volume key on node n stays there (once), with why. */
static void keep_volume(const struct hf_model *m, const struct hf_node *n,
			const char *key, const char *why, int64_t now,
			struct hf_actions *out)
{
	const char *slash = strchr(key, '/');
	char *svc;
	struct hf_action *x;

	if (hf_model_volume_find(m, key, n->id, HF_VOL_KEPT))
		return;
	svc = hf_name_unescape(key, slash ? (size_t)(slash - key) : 0);
	x = hf_actions_push(out, HF_ACT_VOLUME, svc, NULL, NULL);
	x->u.vol.op = HF_VOLOP_KEEP;
	x->u.vol.key = hf_xstrdup(key);
	x->u.vol.node = hf_xstrdup(n->id);
	x->u.vol.why = hf_xstrdup(why);
	x->u.vol.since = now;
	hf_actions_log(out, "node %s: volume %s kept: %s", n->id, key, why);
	event(out, "scheduler", svc, "volume", key, NULL, "kept", why);
	free(svc);
}

size_t hf_decide_delete_kept(const struct hf_model *m, const char *svc,
			     const char *instance, const char *who,
			     struct hf_actions *out)
{
	size_t count = 0;

	for (size_t k = 0; k < m->nodes.len; k++) {
		const struct hf_node *n = m->nodes.items[k];

		for (size_t i = 0; i < m->volumes.len; i++) {
			const struct hf_volume *v = m->volumes.items[i];
			const char *slash;
			char *esvc;

			if (v->state != HF_VOL_KEPT || strcmp(v->node, n->id) ||
			    !hf_model_volume_of(v->key, svc, instance))
				continue;
			/* The event names the service as the key spells it. */
			slash = strchr(v->key, '/');
			esvc = hf_xstrndup(v->key,
					   slash ? (size_t)(slash - v->key) : 0);
			volume_act(out, esvc, HF_VOLOP_DELETE_KEPT, v->key, n->id);
			hf_actions_log(out,
				       "node %s: kept volume %s is deleted",
				       n->id, v->key);
			event(out, who, esvc, "volume", v->key, "kept",
			      "deleting", n->id);
			free(esvc);
			count++;
		}
	}
	return count;
}

void hf_decide_volumes_deleted(const struct hf_model *m, const char *node,
			       const char *const *keys, size_t n,
			       struct hf_actions *out)
{
	for (size_t i = 0; i < m->volumes.len; i++) {
		const struct hf_volume *v = m->volumes.items[i];
		bool done = false;

		if (v->state != HF_VOL_DELETING || strcmp(v->node, node) != 0)
			continue;
		for (size_t k = 0; k < n && !done; k++)
			done = strcmp(keys[k], v->key) == 0;
		if (!done)
			continue;
		volume_act(out, v->service, HF_VOLOP_DELETED, v->key, node);
		hf_actions_log(out, "node %s: volume %s deleted", node, v->key);
	}
}

void hf_decide_removal(const struct hf_model *m, const struct hf_service *svc,
		       struct hf_decide_ctx *ctx, struct hf_actions *out)
{
	bool live = false;

	for (size_t i = 0; i < svc->instances.len; i++) {
		const struct hf_instance *in = svc->instances.items[i];

		for (size_t k = 0; k < in->slots.len; k++) {
			const struct hf_task_slot *sl = &in->slots.items[k];
			const struct hf_task_rec *r = sl->cur;

			if (sl->want_running) {
				struct hf_action *x = slot_act(out, svc, in,
							       sl->task);

				x->u.slot.set = HF_SLOT_WANT_RUNNING;
				x->u.slot.want_running = false;
			}
			if (!r || !hf_task_state_live(r->state))
				continue;
			live = true;
			kill_task(svc, in, sl->task, r,
				  "the service is being removed", false, NULL,
				  ctx->now, out);
		}
	}
	if (live)
		return;
	/*
	 * The volumes are deleted, or recorded as kept, before the service
	 * record goes: a crash in between finds the service still being
	 * removed and does this again.
	 */
	for (size_t i = 0; i < svc->instances.len; i++) {
		const struct hf_instance *in = svc->instances.items[i];
		const struct hf_node *n = hf_model_node(m, in->node);
		char *key;

		/* External volumes: detached, then kept or deleted. */
		hf_decide_xvols_release(m, svc, in,
					svc->delete_volumes ? HF_XVOLOP_DELETE
							    : HF_XVOLOP_KEEP,
					"the service was removed", out);
		if (!n)
			continue;
		key = hf_model_volume_key(svc->name, in->name);
		/* Nothing to keep: a delete finds nothing, as before. */
		if (svc->delete_volumes ||
		    !hf_model_instance_has_volumes(svc, in)) {
			volume_act(out, svc->name, HF_VOLOP_DELETE, key, n->id);
		} else {
			char *why = hf_xasprintf("service %s was removed "
						 "with its volumes kept",
						 svc->name);

			keep_volume(m, n, key, why, ctx->now, out);
			free(why);
		}
		free(key);
	}
	/*
	 * Volumes kept from an earlier life of the service go too: those of
	 * instances this one had not placed yet would be orphans otherwise.
	 */
	if (svc->delete_volumes) {
		hf_decide_delete_kept(m, svc->name, NULL, "scheduler", out);
		hf_decide_xvols_delete_kept(m, svc->name, "scheduler", out);
	}
	hf_actions_push(out, HF_ACT_REMOVE_SERVICE, svc->name, NULL, NULL);
	hf_actions_log(out, "service %s: removed%s", svc->name,
		       svc->delete_volumes ? " (volumes deleted)"
					   : " (volumes kept on their nodes)");
	event(out, "scheduler", svc->name, "service", svc->name, "removing",
	      "removed",
	      svc->delete_volumes ? "volumes deleted" : "volumes kept");
}

/* ------------------------------------------------------------------ */
/* Pod operations, replace and node loss                                */

void hf_decide_pod_restart(const struct hf_model *m,
			   const struct hf_service *svc,
			   const struct hf_instance *in, const char *why,
			   struct hf_decide_ctx *ctx, struct hf_actions *out)
{
	(void)m;
	for (size_t k = 0; k < in->slots.len; k++) {
		const struct hf_task_slot *sl = &in->slots.items[k];
		struct hf_action *x;

		if (sl->cur && hf_task_state_live(sl->cur->state))
			kill_task(svc, in, sl->task, sl->cur, why, true, NULL,
				  ctx->now, out);
		/* The operator fixed the node (say, its limits): try again. */
		if (sl->cur && sl->cur->permanent) {
			x = hf_actions_push(out, HF_ACT_TASK, svc->name, in->name,
					    sl->task);
			x->u.tsk.id = hf_xstrdup(sl->cur->id);
			x->u.tsk.set = HF_TASK_PERMANENT;
			x->u.tsk.permanent = false;
			x = slot_act(out, svc, in, sl->task);
			x->u.slot.set = HF_SLOT_BACKOFF;
			x->u.slot.backoff_until = 0;
		}
	}
}

void hf_decide_skip_drain(const struct hf_service *svc,
			  const struct hf_instance *in, struct hf_actions *out)
{
	struct life l = life_of(in);

	life_event(out, svc, in, &l, HF_IEV_SKIP_DRAIN);
}

/*
 * Task r (of slot task) ran on a node that is gone: nobody can stop it
 * there; it is LOST, with message (taken). If the node comes back, the
 * task is no longer in its desired set and its agent stops it.
 */
static void task_lost(const struct hf_service *svc,
		      const struct hf_instance *in, const char *task,
		      const struct hf_task_rec *r, int64_t now, char *message,
		      struct hf_actions *out)
{
	struct hf_action *x =
	    hf_actions_push(out, HF_ACT_TASK, svc->name, in->name, task);

	x->u.tsk.id = hf_xstrdup(r->id);
	x->u.tsk.set = HF_TASK_KILL | HF_TASK_STATE | HF_TASK_FINISHED_AT |
		       HF_TASK_MESSAGE;
	x->u.tsk.kill = true;
	x->u.tsk.state = hf_task_step(r->state, HF_TEV_LOST, HF_TASK_RECORD).next;
	x->u.tsk.finished_at = now;
	x->u.tsk.message = message;
}

void hf_decide_replace(const struct hf_model *m, const struct hf_service *svc,
		       const struct hf_instance *in, struct hf_decide_ctx *ctx,
		       struct hf_actions *out)
{
	const struct hf_node *n = hf_model_node(m, in->node);
	int64_t timeout = (int64_t)(ctx->opts->node_timeout * 1000);
	bool reachable = hf_model_node_reachable(n, ctx->now, timeout);
	bool node_gone = !n || !reachable || n->decommissioned;
	bool live = false;
	struct life l = life_of(in);
	struct hf_action *x;

	if (!hf_instance_replacing(in))
		return;
	for (size_t k = 0; k < in->slots.len; k++) {
		const struct hf_task_slot *sl = &in->slots.items[k];
		const struct hf_task_rec *r = sl->cur;

		if (!r || !hf_task_state_live(r->state))
			continue;
		if (!n || !reachable) {
			/*
			 * The node is gone: nobody can stop the task there.
			 * If the node comes back, the task is no longer in
			 * its desired set and its agent stops it.
			 */
			task_lost(svc, in, sl->task, r, ctx->now,
				  hf_xstrdup("its node is gone; replaced"), out);
			continue;
		}
		kill_task(svc, in, sl->task, r, "the pod is being replaced",
			  false, NULL, ctx->now, out);
		live = true;
	}
	if (live)
		return;
	{
		const struct hf_config *cfg = hf_model_target(svc);
		const struct hf_spec_pod *pod = hf_model_pod(cfg, in->pod);

		x = inst_act(out, svc, in);
		x->u.inst.set = HF_INST_REPLACED | HF_INST_REPLACE_PENDING;
		x->u.inst.replaced_node = dup_or_null(in->node);
		x->u.inst.replaced_address =
		    n && n->address ? hf_xstrdup(n->address) : NULL;
		x->u.inst.replace_pending = pod && pod->replace_tasks.len > 0;
	}
	/*
	 * The old volumes go first: a fresh instance placed on the same node
	 * must not find them, nor lose its new ones to a late deletion. A
	 * node that is gone deletes them if it ever comes back.
	 */
	if (n) {
		char *key = hf_model_volume_key(svc->name, in->name);
		bool pending =
		    hf_model_volume_find(m, key, n->id, HF_VOL_DELETING) != NULL;

		if (l.state == HF_IS_REPLACING) {
			if (!pending)
				volume_act(out, svc->name, HF_VOLOP_DELETE, key,
					   n->id);
			life_event(out, svc, in, &l,
				   HF_IEV_OLD_VOLUMES_DELETING);
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
	hf_actions_log(
	    out,
	    "service %s: %s replaced: its volumes on node %s are deleted "
	    "and it starts afresh",
	    svc->name, in->name, in->node ? in->node : "(none)");
	event(out, "scheduler", svc->name, "pod", in->name, in->node,
	      "replaced", "volumes deleted; launched afresh");
	/*
	 * External volumes stay the instance's, data and all (the SDK with
	 * Portworx does the same): only detached, to be attached again
	 * where it is placed (their replica's node).
	 */
	hf_decide_xvols_release(m, svc, in, HF_XVOLOP_DETACH,
				"the pod is being replaced", out);
	hf_actions_push(out, HF_ACT_UNPLACE, svc->name, in->name, NULL);
	for (size_t k = 0; k < in->slots.len; k++) {
		x = slot_act(out, svc, in, in->slots.items[k].task);
		x->u.slot.set = HF_SLOT_FORGET | HF_SLOT_ONCE_DONE |
				HF_SLOT_WANT_RUNNING | HF_SLOT_FAILURES |
				HF_SLOT_BACKOFF;
	}
	life_event(out, svc, in, &l, HF_IEV_REPLACED);
	hf_decide_start_plan(m, svc, "deploy", NULL, ctx, out);
}

/*
 * Whether instance in (of pod) can move off its lost node at once: its
 * data lives only in external volumes (no ROOT or MOUNT volume of its
 * own, which would be on that node alone), each with enough in-sync
 * replicas on connected nodes for its min_sync. Sets *why when it cannot
 * only because of its volumes.
 */
static bool failover_ready(const struct hf_model *m,
			   const struct hf_service *svc,
			   const struct hf_spec_pod *pod,
			   const struct hf_instance *in, int64_t now,
			   int64_t timeout, char **why)
{
	struct hf_xvols vols = {0};
	bool ok = true;

	*why = NULL;
	if (!pod || !pod->external_volumes.len || pod->volumes.len)
		return false;
	for (size_t i = 0; i < pod->resource_sets.len; i++)
		if (pod->resource_sets.items[i].volumes.len)
			return false;
	hf_model_xvols_of_instance(m, svc->name, in->name, &vols);
	if (vols.len < pod->external_volumes.len)
		ok = false; /* not all made yet: nothing to keep */
	for (size_t i = 0; i < vols.len && ok; i++) {
		const struct hf_xvol *v = vols.items[i];
		unsigned live = 0;

		for (size_t k = 0; k < v->replicas.len; k++) {
			const struct hf_xrep *r = &v->replicas.items[k];
			const struct hf_node *rn = hf_model_node(m, r->node);

			if (r->state == HF_XREP_IN_SYNC &&
			    strcmp(r->node, in->node) != 0 && rn &&
			    !rn->decommissioned &&
			    hf_model_node_reachable(rn, now, timeout))
				live++;
		}
		if (live < (v->min_sync ? v->min_sync : 1)) {
			*why = hf_xasprintf(
			    "volume %s has %u in-sync replica%s on connected "
			    "nodes, its policy needs %u (min_sync)",
			    v->name, live, live == 1 ? "" : "s",
			    v->min_sync ? v->min_sync : 1);
			ok = false;
		}
	}
	HF_VEC_FREE(&vols);
	return ok;
}

/*
 * Moves instance in off its lost node (failover_ready): its tasks there
 * are LOST (if the node comes back, they are no longer in its desired
 * set and its agent stops them, and detaches the volumes, before
 * anything else), the node's replicas leave the in-sync set, the volumes
 * are detached, and the instance, same name, is placed again by its
 * deploy plan on a node holding in-sync replicas; the attach there bumps
 * each volume's epoch, fencing the old node's writes.
 */
static void failover(const struct hf_model *m, const struct hf_service *svc,
		     const struct hf_instance *in, struct hf_decide_ctx *ctx,
		     struct hf_actions *out)
{
	struct hf_xvols vols = {0};
	char *why = hf_xasprintf("its node %s is lost", in->node);
	struct hf_action *x;

	for (size_t k = 0; k < in->slots.len; k++) {
		const struct hf_task_slot *sl = &in->slots.items[k];
		const struct hf_task_rec *r = sl->cur;

		if (!r || !hf_task_state_live(r->state))
			continue;
		task_lost(svc, in, sl->task, r, ctx->now,
			  hf_xasprintf("its node %s is lost; the pod moves with "
				       "its replicated volumes",
				       in->node),
			  out);
	}
	hf_model_xvols_of_instance(m, svc->name, in->name, &vols);
	for (size_t i = 0; i < vols.len; i++) {
		const struct hf_xvol *v = vols.items[i];
		const struct hf_xrep *r = hf_xvol_replica_on(v, in->node);

		if (!r || r->state == HF_XREP_DOWN)
			continue;
		x = hf_actions_push(out, HF_ACT_XVOL, svc->name, in->name, NULL);
		x->u.xvol.op = HF_XVOLOP_REPLICA_DOWN;
		x->u.xvol.name = hf_xstrdup(v->name);
		x->u.xvol.node = hf_xstrdup(in->node);
		x->u.xvol.why = hf_xstrdup(why);
		event(out, "scheduler", svc->name, "volume", v->name, "in sync",
		      "down", why);
	}
	HF_VEC_FREE(&vols);
	hf_decide_xvols_release(m, svc, in, HF_XVOLOP_DETACH, why, out);
	hf_actions_log(out, "service %s: %s fails over: %s", svc->name,
		       in->name, why);
	event(out, "scheduler", svc->name, "pod", in->name, in->node,
	      "failing over", why);
	/* Its wait for the lost node ends: it will not run there again. */
	x = inst_act(out, svc, in);
	x->u.inst.set = HF_INST_UNREACHABLE;
	hf_actions_push(out, HF_ACT_UNPLACE, svc->name, in->name, NULL);
	for (size_t k = 0; k < in->slots.len; k++) {
		x = slot_act(out, svc, in, in->slots.items[k].task);
		x->u.slot.set = HF_SLOT_FORGET | HF_SLOT_BACKOFF;
	}
	free(why);
	hf_decide_start_plan(m, svc, "deploy", NULL, ctx, out);
}

void hf_decide_node_loss(const struct hf_model *m, const struct hf_service *svc,
			 const struct hf_config *cfg, struct hf_decide_ctx *ctx,
			 struct hf_actions *out)
{
	int64_t timeout = cfg->spec->permanent_failure_timeout_ms;
	int64_t node_timeout = (int64_t)(ctx->opts->node_timeout * 1000);
	int64_t now = ctx->now;

	for (size_t k = 0; k < svc->instances.len; k++) {
		const struct hf_instance *in = svc->instances.items[k];
		const struct hf_node *n = hf_model_node(m, in->node);
		int64_t since = in->unreachable_since;
		const char *why = NULL;
		struct hf_action *x;
		struct life l;

		if (!in->node || hf_instance_replacing(in) || !n)
			continue;
		if (hf_model_node_reachable(n, now, node_timeout)) {
			if (since) {
				since = 0;
				x = inst_act(out, svc, in);
				x->u.inst.set = HF_INST_UNREACHABLE;
				event(out, "scheduler", svc->name, "pod",
				      in->name, "node unreachable", "node back",
				      n->id);
			}
		} else if (!since) {
			since = now;
			x = inst_act(out, svc, in);
			x->u.inst.set = HF_INST_UNREACHABLE;
			x->u.inst.unreachable_since = now;
			hf_actions_log(
			    out, "service %s: %s waits: node %s is unreachable",
			    svc->name, in->name, n->id);
			event(out, "scheduler", svc->name, "pod", in->name,
			      NULL, "node unreachable", n->id);
		}
		if (since && !n->decommissioned) {
			const struct hf_spec_pod *pod = hf_model_pod(cfg, in->pod);
			char *held = NULL;

			if (failover_ready(m, svc, pod, in, now, node_timeout,
					   &held)) {
				failover(m, svc, in, ctx, out);
				continue;
			}
			if (held && (!in->message ||
				     strcmp(in->message, held) != 0)) {
				x = inst_act(out, svc, in);
				x->u.inst.set = HF_INST_MESSAGE;
				x->u.inst.message = held;
				held = NULL;
			}
			free(held);
		}
		if (n->decommissioned)
			why = "its node is decommissioned";
		else if (since && timeout >= 0 && now - since > timeout &&
			 now - since > cfg->spec->min_replace_delay_ms)
			why = "its node stayed unreachable past the "
			      "permanent-failure timeout";
		if (!why)
			continue;
		l = life_of(in);
		if (!life_event(out, svc, in, &l, HF_IEV_REPLACE))
			continue;
		hf_actions_log(out, "service %s: replacing %s: %s", svc->name,
			       in->name, why);
		event(out, "scheduler", svc->name, "pod", in->name, NULL,
		      "replacing", why);
	}
}

/* ------------------------------------------------------------------ */
/* Scale-in                                                             */

/* The spec an instance last ran, for its decommission task. */
static const struct hf_spec_pod *last_pod_spec(const struct hf_service *svc,
					       const struct hf_instance *in,
					       const struct hf_config **cfg_out)
{
	const struct hf_config *cfg = hf_model_target(svc);
	const struct hf_spec_pod *pod = hf_model_pod(cfg, in->pod);

	for (size_t i = svc->configs.len; !pod && i-- > 0;) {
		cfg = svc->configs.items[i];
		pod = hf_model_pod(cfg, in->pod);
	}
	*cfg_out = cfg;
	return pod;
}

/* The next instance to remove: highest index first, one at a time. */
static const struct hf_instance *next_decommission(const struct hf_service *svc,
						   const struct hf_config *cfg)
{
	const struct hf_instance *best = NULL;

	for (size_t i = 0; i < svc->instances.len; i++) {
		const struct hf_instance *in = svc->instances.items[i];

		if (!unwanted(cfg, in))
			continue;
		if (hf_instance_decommissioning(in))
			return in; /* finish what was started */
		if (!best || in->index > best->index)
			best = in;
	}
	return best;
}

/* Raising the count again cancels what has not been removed. */
static void cancel_decommissions(const struct hf_service *svc,
				 const struct hf_config *cfg,
				 struct hf_decide_ctx *ctx,
				 struct hf_actions *out)
{
	for (size_t i = 0; i < svc->instances.len; i++) {
		const struct hf_instance *c = svc->instances.items[i];
		struct life l = life_of(c);
		struct hf_action *x;

		if (unwanted(cfg, c) ||
		    !life_event(out, svc, c, &l, HF_IEV_CANCEL))
			continue;
		hf_actions_log(out, "service %s: decommission of %s cancelled",
			       svc->name, c->name);
		event(out, "scheduler", svc->name, "pod", c->name,
		      "decommissioning", "kept", "the count was raised again");
		/*
		 * A drain still running is stopped: the instance stays in
		 * service. A later scale-in drains it again.
		 */
		for (size_t k = 0; k < c->slots.len; k++) {
			const struct hf_task_slot *sl = &c->slots.items[k];

			if (strcmp(sl->task, HF_DECOMMISSION_TASK) != 0 ||
			    !sl->cur)
				continue;
			if (hf_task_state_live(sl->cur->state)) {
				kill_task(svc, c, sl->task, sl->cur,
					  "the decommission was cancelled",
					  false, NULL, ctx->now, out);
			} else {
				x = slot_act(out, svc, c, sl->task);
				x->u.slot.set = HF_SLOT_FORGET | HF_SLOT_FAILURES;
			}
		}
	}
}

void hf_decide_decommission(const struct hf_model *m,
			    const struct hf_service *svc,
			    const struct hf_config *cfg,
			    struct hf_decide_ctx *ctx, struct hf_actions *out)
{
	const struct hf_instance *in;
	const struct hf_config *pcfg;
	const struct hf_spec_pod *pod;
	const struct hf_spec_task *drain;
	const struct hf_task_slot *dsl;
	bool forgot = false, live = false;
	struct life l;

	cancel_decommissions(svc, cfg, ctx, out);
	in = next_decommission(svc, cfg);
	/* One being replaced is the replace's until it is ACTIVE again. */
	if (!in || hf_instance_replacing(in))
		return;
	pod = last_pod_spec(svc, in, &pcfg);
	drain = pod ? hf_spec_find_task(pod, HF_DECOMMISSION_TASK) : NULL;
	dsl = hf_model_slot_find(in, HF_DECOMMISSION_TASK);
	l = life_of(in);
	if (l.state == HF_IS_ACTIVE) {
		/* A drain from an earlier, cancelled removal does not count. */
		if (dsl && dsl->cur && !hf_task_state_live(dsl->cur->state)) {
			struct hf_action *x =
			    slot_act(out, svc, in, HF_DECOMMISSION_TASK);

			x->u.slot.set =
			    HF_SLOT_FORGET | HF_SLOT_FAILURES | HF_SLOT_BACKOFF;
			forgot = true;
		}
		life_event(out, svc, in, &l, HF_IEV_DECOMMISSION);
		hf_actions_log(out, "service %s: decommissioning %s", svc->name,
			       in->name);
		event(out, "scheduler", svc->name, "pod", in->name, "running",
		      "decommissioning", drain ? "drain first" : NULL);
	}
	/* 1. Drain, while the instance still runs. */
	if (l.state == HF_IS_DRAINING || l.state == HF_IS_DRAIN_FAILED) {
		enum hf_instance_event ev = HF_IEV_NO_DRAIN;

		if (drain && in->node) {
			const struct hf_task_rec *r =
			    dsl && !forgot ? dsl->cur : NULL;
			unsigned failures = dsl && !forgot ? dsl->failures : 0;
			int64_t backoff = dsl && !forgot ? dsl->backoff_until : 0;

			if (l.state == HF_IS_DRAIN_FAILED) {
				return; /* the operator decides */
			} else if (r && r->state == HF_TS_FINISHED) {
				ev = HF_IEV_DRAINED;
			} else if (r && hf_task_state_live(r->state)) {
				return;
			} else if (r && failures >= DRAIN_MAX_FAILURES) {
				life_event(out, svc, in, &l,
					   HF_IEV_DRAIN_FAILED);
				hf_actions_log(
				    out,
				    "service %s: the drain of %s failed %u "
				    "times; its volumes are kept. "
				    "force-complete the decommission step to "
				    "remove it anyway",
				    svc->name, in->name, failures);
				event(out, "scheduler", svc->name, "pod",
				      in->name, "draining", "drain failed",
				      "volumes kept");
				return;
			} else if (!r || backoff <= ctx->now) {
				struct hf_strlist t = {0};

				hf_strlist_push(&t, HF_DECOMMISSION_TASK);
				launch(svc, pcfg->id, NULL, "decommission", in,
				       in->node, &t, r != NULL, ctx, out);
				hf_strlist_release(&t);
				return;
			} else {
				return;
			}
		}
		life_event(out, svc, in, &l, ev);
	}
	if (l.state != HF_IS_STOPPING)
		return;
	/* 2. Stop its tasks. */
	for (size_t k = 0; k < in->slots.len; k++) {
		const struct hf_task_slot *sl = &in->slots.items[k];
		const struct hf_task_rec *r = sl == dsl && forgot ? NULL : sl->cur;

		if (r && hf_task_state_live(r->state)) {
			live = true;
			kill_task(svc, in, sl->task, r,
				  "the pod is decommissioned", true, NULL,
				  ctx->now, out);
		}
	}
	if (live)
		return;
	/* 3. Its volumes, and the record. */
	{
		const struct hf_node *n = hf_model_node(m, in->node);
		bool keep = ((pod && pod->retain_volumes) ||
			     l.drain == HF_DRAIN_FAILED ||
			     (drain && l.drain != HF_DRAIN_DONE)) &&
			    hf_model_instance_has_volumes(svc, in);
		char *key = hf_model_volume_key(svc->name, in->name);

		if (n && !keep) {
			volume_act(out, svc->name, HF_VOLOP_DELETE, key, n->id);
		} else if (n) {
			char *why = hf_xasprintf(
			    "%s was decommissioned; %s", in->name,
			    pod && pod->retain_volumes
				? "its pod has volume-retention: retain"
				: "its drain did not finish");

			keep_volume(m, n, key, why, ctx->now, out);
			free(why);
		}
		hf_actions_log(out, "service %s: %s decommissioned; volumes %s",
			       svc->name, in->name, keep ? "kept" : "deleted");
		event(out, "scheduler", svc->name, "pod", in->name,
		      "decommissioning", "removed",
		      keep ? "volumes kept" : "volumes deleted");
		free(key);
	}
	/* External volumes outlive a scale-in, as Portworx's do. */
	hf_decide_xvols_release(m, svc, in, HF_XVOLOP_KEEP,
				"the pod was decommissioned", out);
	hf_actions_push(out, HF_ACT_REMOVE_INSTANCE, svc->name, in->name, NULL);
}

/* ------------------------------------------------------------------ */
/* Reports from agents                                                  */

/*
 * What follows the end of launch r (its new state in r, as decided) of
 * slot sl: fields of its TASK action (tsk) and further actions.
 */
static void on_terminal(const struct hf_service *svc,
			const struct hf_instance *in,
			const struct hf_task_slot *sl,
			const struct hf_task_rec *r, size_t tsk,
			struct hf_decide_ctx *ctx, struct hf_actions *out)
{
	const struct hf_config *cfg = hf_model_config(svc, r->config_id);
	const struct hf_spec_pod *pod =
	    hf_model_pod(cfg ? cfg : hf_model_target(svc), in->pod);
	const struct hf_spec_task *t = task_spec(pod, sl->task);
	const struct hf_decide_opts *o = ctx->opts;
	bool ok = r->state == HF_TS_FINISHED;
	struct hf_act_task *ta = &out->items[tsk].u.tsk;
	struct hf_action *x;
	unsigned failures;

	ta->set |= HF_TASK_FINISHED_AT | HF_TASK_READY;
	ta->finished_at = ctx->now;
	ta->ready = false;
	if (ok && t && t->goal != HF_GOAL_RUNNING) {
		x = slot_act(out, svc, in, sl->task);
		x->u.slot.set = HF_SLOT_FAILURES | HF_SLOT_BACKOFF;
		if (t->goal == HF_GOAL_ONCE) {
			x->u.slot.set |= HF_SLOT_ONCE_DONE;
			x->u.slot.once_done = true;
		}
		return;
	}
	if (r->kill && r->state != HF_TS_LOST)
		return; /* stopped on purpose */
	/* A RUNNING task that exits at all has failed. */
	failures = sl->failures + 1;
	x = slot_act(out, svc, in, sl->task);
	x->u.slot.set = HF_SLOT_FAILURES | HF_SLOT_FAILED | HF_SLOT_BACKOFF;
	x->u.slot.failures = failures;
	/* No backoff for what waiting cannot fix: its step is ERROR. */
	if (!r->permanent) {
		double jitter = (double)hf_rng_below(ctx->rng, 1000) / 1000.0;

		x->u.slot.backoff_until =
		    ctx->now +
		    (int64_t)(1000 * hf_task_backoff(failures, o->backoff_base,
						     o->backoff_max, jitter));
	}
	if (t && t->goal == HF_GOAL_RUNNING && t->essential) {
		/* An essential task takes its whole pod instance down. */
		for (size_t k = 0; k < in->slots.len; k++) {
			const struct hf_task_slot *os = &in->slots.items[k];
			const struct hf_spec_task *ot = task_spec(pod, os->task);
			char *why;

			if (os == sl || !os->cur || !ot ||
			    ot->goal != HF_GOAL_RUNNING ||
			    !hf_task_state_live(os->cur->state))
				continue;
			why = hf_xasprintf("restarted with its pod: essential "
					   "task %s failed",
					   sl->task);
			x = hf_actions_push(out, HF_ACT_TASK, svc->name, in->name,
					    os->task);
			x->u.tsk.id = hf_xstrdup(os->cur->id);
			x->u.tsk.set = HF_TASK_MESSAGE;
			x->u.tsk.message = hf_xstrdup(why);
			kill_task(svc, in, os->task, os->cur, why, true, NULL,
				  ctx->now, out);
			free(why);
		}
	}
}

/* The message a launch that ended keeps. The caller frees it. */
static char *end_message(const struct hf_proto_report *rep,
			 enum hf_task_state ns, int exit_code, int signal)
{
	if (rep->oom_killed)
		return hf_xasprintf("killed by the kernel: out of memory (limit "
				    "%s)",
				    rep->message ? rep->message : "reached");
	if (rep->message)
		return hf_xstrdup(rep->message);
	if (ns == HF_TS_LOST)
		return hf_xstrdup("the agent lost track of it");
	if (signal > 0)
		return hf_xasprintf("killed by signal %d", signal);
	if (exit_code >= 0 && ns != HF_TS_FINISHED && ns != HF_TS_KILLED)
		return hf_xasprintf("exited with status %d", exit_code);
	return NULL;
}

/*
 * A launch's latest exit: "exited with code 3", "killed by signal 9"; or
 * short, after "after": "exit code 3", "signal 9", "out of memory".
 */
static char *exit_text(const struct hf_proto_report *rep, bool shrt)
{
	if (rep->last_oom_killed)
		return hf_xstrdup(shrt ? "out of memory"
				       : "killed by the kernel: out of memory");
	if (rep->has_last_exit_code)
		return hf_xasprintf("%s %lld",
				    shrt ? "exit code" : "exited with code",
				    (long long)rep->last_exit_code);
	if (rep->last_signal > 0)
		return hf_xasprintf("%s %lld",
				    shrt ? "signal" : "killed by signal",
				    (long long)rep->last_signal);
	return hf_xstrdup(shrt ? "an exit" : "exited");
}

/* How many events a report of many missed restarts gets, at most. */
#define IN_PLACE_EVENTS_MAX 10

/*
 * Restarts in place (RESTARTS in shim/shim.h): the launch's shim started
 * its process again, or waits out a backoff to, within the same launch
 * and task id. A report further on than the record (hf_task_restart_pos)
 * is recorded here: the count and the latest exit on the launch, the
 * restarts on the slot and in the metrics, an event per restart; for a
 * live launch the exits also count as failures, with the shim's backoff
 * as the slot's, so plan and pod status read as when the server
 * relaunches. Nothing is launched. *now receives the record as these
 * actions leave it. Returns false when the report is older than the
 * record: it changes nothing at all.
 */
static bool in_place(const struct hf_service *svc, const struct hf_instance *in,
		     const struct hf_task_slot *sl, const struct hf_task_rec *r,
		     const struct hf_proto_report *rep, struct hf_task_rec *now,
		     struct hf_actions *out)
{
	bool live = hf_task_state_live(rep->state);
	bool backoff = live && rep->backoff;
	unsigned long long have =
	    hf_task_restart_pos(r->in_place_restarts, r->backoff);
	unsigned long long want =
	    hf_task_restart_pos((unsigned long long)rep->restarts, backoff);
	unsigned long long seen, known, restarted = 0, exits = 0;
	struct hf_action *x;
	char *why;

	*now = *r;
	/* A final report may stand before a backoff it ended: not older. */
	if (want < have)
		return !live;
	if (want == have || !hf_task_state_live(r->state))
		return true;
	if ((unsigned long long)rep->restarts > r->in_place_restarts)
		restarted = (unsigned long long)rep->restarts -
			    r->in_place_restarts;
	/* Exits seen: one per restart, and the one a backoff waits after. */
	seen = (unsigned long long)rep->restarts + (backoff ? 1 : 0);
	known = r->in_place_restarts + (r->backoff ? 1 : 0);
	if (live && seen > known)
		exits = seen - known;

	x = hf_actions_push(out, HF_ACT_TASK, svc->name, in->name, sl->task);
	x->u.tsk.id = hf_xstrdup(r->id);
	x->u.tsk.set = HF_TASK_IN_PLACE;
	x->u.tsk.in_place_restarts = (unsigned)rep->restarts;
	x->u.tsk.backoff = backoff;
	x->u.tsk.restart_at = backoff ? rep->restart_at : 0;
	x->u.tsk.last_exit_code =
	    rep->has_last_exit_code ? (int)rep->last_exit_code : -1;
	x->u.tsk.last_signal = (int)rep->last_signal;
	x->u.tsk.last_exit_at = rep->last_exit_at;
	now->in_place_restarts = x->u.tsk.in_place_restarts;
	now->backoff = backoff;
	now->restart_at = x->u.tsk.restart_at;
	now->last_exit_code = x->u.tsk.last_exit_code;
	now->last_signal = x->u.tsk.last_signal;
	now->last_exit_at = x->u.tsk.last_exit_at;
	if (live) {
		/* Between two processes: live, not running, not ready. */
		now->state = hf_task_step(r->state, HF_TEV_RESTARTING,
					  HF_TASK_RECORD)
				 .next;
		now->ready = false;
		now->healthy = -1;
		x->u.tsk.set |= HF_TASK_STATE | HF_TASK_READY |
				HF_TASK_HEALTHY | HF_TASK_MESSAGE;
		x->u.tsk.state = now->state;
		x->u.tsk.ready = false;
		x->u.tsk.healthy = -1;
		x->u.tsk.message = exit_text(rep, false);
		if (!backoff) {
			char *e = exit_text(rep, true);

			free(x->u.tsk.message);
			x->u.tsk.message =
			    hf_xasprintf("restarted in place after %s "
					 "(restart #%lld)",
					 e, (long long)rep->restarts);
			free(e);
		}
	}
	if (restarted || exits) {
		x = slot_act(out, svc, in, sl->task);
		if (restarted) {
			x->u.slot.set |= HF_SLOT_RESTARTS;
			x->u.slot.restarts = (unsigned)restarted;
		}
		/*
		 * A launch the server stops on purpose does not fail, as
		 * its end would not (on_terminal).
		 */
		if (exits && !r->kill) {
			x->u.slot.set |= HF_SLOT_FAILURES | HF_SLOT_FAILED;
			x->u.slot.failures = sl->failures + (unsigned)exits;
			x->u.slot.failed = (unsigned)exits;
		}
		if (backoff && !r->kill) {
			x->u.slot.set |= HF_SLOT_BACKOFF;
			x->u.slot.backoff_until = rep->restart_at;
		}
	}
	if (backoff) {
		char when[40];
		char *e = exit_text(rep, false), *w;

		iso_time(rep->restart_at, when, sizeof(when));
		w = hf_xasprintf("%s; its shim restarts it in place at %s "
				 "(restart #%lld)",
				 e, when, (long long)rep->restarts + 1);
		free(e);
		hf_actions_log(out, "service %s: %s %s", svc->name, r->id, w);
		event(out, "agent", svc->name, "task", r->id,
		      hf_task_state_name(r->state), "STARTING", w);
		free(w);
	}
	why = exit_text(rep, true);
	if (restarted > IN_PLACE_EVENTS_MAX) {
		char *w = hf_xasprintf(
		    "restarted in place %llu times (restarts #%u to #%lld), "
		    "the latest after %s",
		    restarted, r->in_place_restarts + 1,
		    (long long)rep->restarts, why);

		hf_actions_log(out, "service %s: %s %s", svc->name, r->id, w);
		event(out, "agent", svc->name, "task", r->id, NULL, "restarted",
		      w);
		free(w);
	} else {
		for (unsigned long long k = r->in_place_restarts + 1;
		     k <= (unsigned long long)rep->restarts; k++) {
			bool latest = k == (unsigned long long)rep->restarts;
			char *w = latest
				      ? hf_xasprintf("restarted in place after "
						     "%s, restart #%llu",
						     why, k)
				      : hf_xasprintf("restarted in place, "
						     "restart #%llu (its exit "
						     "was not reported)",
						     k);

			hf_actions_log(out, "service %s: %s %s", svc->name, r->id, w);
			event(out, "agent", svc->name, "task", r->id, NULL,
			      "restarted", w);
			free(w);
		}
	}
	free(why);
	return true;
}

void hf_decide_report(const struct hf_model *m, const char *node,
		      const struct hf_proto_report *rep,
		      struct hf_decide_ctx *ctx, struct hf_actions *out)
{
	struct hf_service *svc;
	struct hf_instance *in;
	struct hf_task_slot *sl;
	const struct hf_task_rec *r;
	struct hf_task_rec cur;
	struct hf_task_step step;
	enum hf_task_state ns;
	struct hf_action *x;

	if (!rep->task_id)
		return;
	r = hf_model_find_task(m, rep->task_id, &svc, &in, &sl);
	if (!r || !in->node || strcmp(in->node, node) != 0)
		return;
	if (!in_place(svc, in, sl, r, rep, &cur, out))
		return;
	/* From here on, the record as the restarts left it. */
	r = &cur;
	/* A stop the server ordered makes its end KILLED, not a failure. */
	step = hf_task_step(r->state,
			    hf_task_event_of(rep->state,
					     hf_proto_report_exit_ok(rep),
					     r->kill),
			    HF_TASK_RECORD);
	/* Final already (reports are idempotent), or an older report. */
	if (step.act == HF_TACT_IGNORE)
		return;
	ns = step.next;
	if (step.act != HF_TACT_END) {
		bool ready = rep->ready;
		bool eff_ready = ready && ns == HF_TS_RUNNING;
		const char *nr = rep->not_ready;

		/*
		 * Why it is not ready: shown, never stored (the next report
		 * carries it again).
		 */
		if (ready || ns != HF_TS_RUNNING)
			nr = NULL;
		if ((nr == NULL) != (r->not_ready == NULL) ||
		    (nr && strcmp(nr, r->not_ready) != 0)) {
			x = hf_actions_push(out, HF_ACT_TASK, svc->name, in->name,
					    sl->task);
			x->u.tsk.id = hf_xstrdup(r->id);
			x->u.tsk.set = HF_TASK_NOT_READY;
			x->u.tsk.not_ready = dup_or_null(nr);
		}
		if (r->state == ns && r->ready == ready &&
		    r->healthy == rep->healthy)
			return;
		x = hf_actions_push(out, HF_ACT_TASK, svc->name, in->name,
				    sl->task);
		x->u.tsk.id = hf_xstrdup(r->id);
		x->u.tsk.set = HF_TASK_STATE | HF_TASK_READY | HF_TASK_HEALTHY;
		x->u.tsk.state = ns;
		x->u.tsk.ready = eff_ready;
		x->u.tsk.healthy = rep->healthy;
		if (step.act == HF_TACT_RUN) {
			x->u.tsk.set |= HF_TASK_STARTED_AT;
			x->u.tsk.started_at = ctx->now;
		}
		if (r->state != ns || r->ready != ready) {
			hf_actions_log(out, "service %s: %s is %s%s", svc->name,
				       r->id, hf_task_state_name(ns),
				       eff_ready ? " and ready" : "");
			event(out, "agent", svc->name, "task", r->id, NULL,
			      hf_task_state_name(ns),
			      eff_ready ? "ready" : NULL);
		}
	} else {
		struct hf_task_rec now = *r;
		size_t tsk = out->len;
		struct hf_act_task *t;

		x = hf_actions_push(out, HF_ACT_TASK, svc->name, in->name,
				    sl->task);
		t = &x->u.tsk;
		t->id = hf_xstrdup(r->id);
		t->set = HF_TASK_STATE | HF_TASK_EXIT | HF_TASK_PERMANENT |
			 HF_TASK_MESSAGE;
		t->state = ns;
		t->exit_code = rep->has_exit_code ? (int)rep->exit_code : -1;
		t->signal = (int)rep->signal;
		t->oom_killed = rep->oom_killed;
		t->permanent = rep->state == HF_TS_FAILED_TO_START &&
			       rep->permanent;
		t->message = end_message(rep, ns, t->exit_code, t->signal);
		hf_actions_log(out, "service %s: %s %s%s%s", svc->name, r->id,
			       hf_task_state_name(ns), t->message ? ": " : "",
			       t->message ? t->message : "");
		event(out, "agent", svc->name, "task", r->id, NULL,
		      hf_task_state_name(ns), t->message);
		now.state = ns;
		now.permanent = t->permanent;
		on_terminal(svc, in, sl, &now, tsk, ctx, out);
	}
}

void hf_decide_reconcile(const struct hf_model *m,
			 const struct hf_node_insts *on_node,
			 const char *const *ids, size_t nids,
			 struct hf_decide_ctx *ctx, struct hf_actions *out)
{
	struct hf_map seen = {0};

	(void)m;
	for (size_t i = 0; i < nids; i++)
		hf_map_put(&seen, ids[i], (void *)ids[i]);
	for (size_t i = 0; i < on_node->len; i++) {
		const struct hf_service *svc = on_node->items[i].svc;
		const struct hf_instance *in = on_node->items[i].in;

		for (size_t t = 0; t < in->slots.len; t++) {
			const struct hf_task_slot *sl = &in->slots.items[t];
			const struct hf_task_rec *r = sl->cur;
			struct hf_task_rec now;
			size_t tsk = out->len;
			struct hf_action *x;
			enum hf_task_state lost;

			if (!r || (r->state != HF_TS_STARTING &&
				   r->state != HF_TS_RUNNING))
				continue;
			if (hf_map_get(&seen, r->id))
				continue;
			lost = hf_task_step(r->state, HF_TEV_LOST,
					    HF_TASK_RECORD).next;
			x = hf_actions_push(out, HF_ACT_TASK, svc->name, in->name,
					    sl->task);
			x->u.tsk.id = hf_xstrdup(r->id);
			x->u.tsk.set = HF_TASK_STATE | HF_TASK_MESSAGE;
			x->u.tsk.state = lost;
			x->u.tsk.message =
			    hf_xstrdup("the agent no longer knows this task");
			hf_actions_log(
			    out,
			    "service %s: %s LOST: its agent does not "
			    "report it",
			    svc->name, r->id);
			event(out, "scheduler", svc->name, "task", r->id, NULL,
			      "LOST", "its agent does not report it");
			now = *r;
			now.state = lost;
			on_terminal(svc, in, sl, &now, tsk, ctx, out);
		}
	}
	hf_map_release(&seen);
}

/* ------------------------------------------------------------------ */
/* Restarts in place                                                    */

void hf_decide_restart_policy(const struct hf_service *svc,
			      const struct hf_instance *in,
			      const struct hf_task_slot *sl,
			      const struct hf_decide_opts *o,
			      struct hf_proto_restart *p)
{
	const struct hf_task_rec *r = sl->cur;
	const struct hf_config *cfg =
	    r ? hf_model_config(svc, r->config_id) : NULL;
	const struct hf_spec_pod *pod = cfg ? hf_model_pod(cfg, in->pod) : NULL;
	const struct hf_spec_task *t = task_spec(pod, sl->task);

	memset(p, 0, sizeof(*p));
	if (o->no_restart_in_place || !t || t->goal != HF_GOAL_RUNNING ||
	    r->paused || in->paused)
		return;
	for (size_t i = 0; t->essential && i < pod->tasks.len; i++) {
		const struct hf_spec_task *o2 = &pod->tasks.items[i];

		if (o2 != t && o2->goal == HF_GOAL_RUNNING)
			return; /* its failure restarts its pod: ours */
	}
	p->on = true;
	p->backoff_base = o->backoff_base;
	p->backoff_max = o->backoff_max;
	p->reset_after = o->backoff_reset;
	p->max = 0; /* recovery never gives a RUNNING task up either */
}

/* ------------------------------------------------------------------ */
/* Wake-up and backoff resets                                           */

void hf_decide_wake(const struct hf_model *m, struct hf_decide_ctx *ctx,
		    struct hf_actions *out)
{
	int64_t wake = 0;
	struct hf_action *x;

	for (size_t i = 0; i < m->services.len; i++) {
		const struct hf_service *svc = m->services.items[i];

		for (size_t k = 0; k < svc->instances.len; k++) {
			const struct hf_instance *in = svc->instances.items[k];

			for (size_t t = 0; t < in->slots.len; t++) {
				int64_t b = in->slots.items[t].backoff_until;

				if (b > ctx->now && (!wake || b < wake))
					wake = b;
			}
		}
	}
	x = hf_actions_push(out, HF_ACT_WAKE_AT, NULL, NULL, NULL);
	x->u.wake_at = wake;
}

void hf_decide_backoff_reset(const struct hf_model *m,
			     const struct hf_service *svc,
			     struct hf_decide_ctx *ctx, struct hf_actions *out)
{
	int64_t reset = (int64_t)(ctx->opts->backoff_reset * 1000);

	(void)m;
	for (size_t k = 0; k < svc->instances.len; k++) {
		const struct hf_instance *in = svc->instances.items[k];

		for (size_t t = 0; t < in->slots.len; t++) {
			const struct hf_task_slot *sl = &in->slots.items[t];
			struct hf_action *x;

			if (sl->failures && sl->cur &&
			    sl->cur->state == HF_TS_RUNNING &&
			    ctx->now - sl->cur->started_at > reset) {
				x = slot_act(out, svc, in, sl->task);
				x->u.slot.set = HF_SLOT_FAILURES;
				x->u.slot.failures = 0;
			}
		}
	}
}
