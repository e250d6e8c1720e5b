/*
 * test_xvol_decide.c - the scheduler's rules for external volumes with one
 * local replica (plan/xvol.c, decide.h "Replicated volumes"), on
 * hand-built models: placement narrowed by pools and by where a volume's
 * replica is, a volume made, attached at a new epoch, launched only once
 * its node reported it ready at that epoch, and kept, deleted or detached
 * when its instance goes. Each test sets the model up as applied
 * decisions would have left it and checks the actions answered.
 *
 * Pure: links spec/, plan/, model/ and common/ only (Makefile PURE_UNITS).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/model.h"
#include "plan/decide.h"
#include "plan/placement.h"

#define T0 INT64_C(1700000000000)
#define GIB (INT64_C(1) << 30)

static const char *spec_text = "name: s\n"
			       "pods:\n"
			       "  app:\n"
			       "    count: 1\n"
			       "    external-volumes:\n"
			       "      data:\n"
			       "        type: DOCKER\n"
			       "        container-path: data\n"
			       "        driver-name: holdfast\n"
			       "        driver-options: size=2;repl=1\n"
			       "    tasks:\n"
			       "      server: {goal: RUNNING, cmd: 'sleep 1', "
			       "cpus: 0.1}\n";

struct world {
	struct hf_model m;
	struct hf_rng rng;
	struct hf_decide_opts opts;
	struct hf_decide_ctx ctx;
	struct hf_actions a;
	struct hf_service *svc;
	struct hf_instance *in;
	const struct hf_spec_pod *pod;
	struct hf_node *n[3];
};

static const char *spec_repl2 = "name: s\n"
				"pods:\n"
				"  app:\n"
				"    count: 1\n"
				"    external-volumes:\n"
				"      data:\n"
				"        type: DOCKER\n"
				"        container-path: data\n"
				"        driver-name: holdfast\n"
				"        driver-options: size=2;repl=2\n"
				"    tasks:\n"
				"      server: {goal: RUNNING, cmd: 'sleep 1', "
				"cpus: 0.1}\n";

static struct world *world_with(const char *text);

/* Service s, instance app-0 (unplaced); n1, n2 with 10 GiB pools, n3 none. */
static struct world *world_new(void)
{
	return world_with(spec_text);
}

static struct world *world_with(const char *text)
{
	struct world *w = calloc(1, sizeof(*w));
	struct hf_config *cfg = calloc(1, sizeof(*cfg));
	struct hf_diags d = {0};

	assert_non_null(w);
	assert_non_null(cfg);
	hf_rng_seed(&w->rng, 7);
	w->opts.node_timeout = 10;
	w->ctx.now = T0;
	w->ctx.rng = &w->rng;
	w->ctx.opts = &w->opts;
	cfg->id = hf_xstrdup("1");
	cfg->text = hf_xstrdup(text);
	cfg->file = hf_xstrdup("s.yml");
	if (hf_model_config_load(cfg, false, &d) != 0)
		fail_msg("the test's spec does not load");
	hf_diags_release(&d);
	w->svc = hf_model_service_add(&w->m, "s");
	*HF_VEC_PUSH(&w->svc->configs) = cfg;
	w->svc->target = hf_xstrdup("1");
	w->pod = hf_model_pod(cfg, "app");
	assert_non_null(w->pod);
	w->in = hf_model_instance_add(w->svc, "app", 0);
	for (int i = 0; i < 3; i++) {
		struct hf_node *n = calloc(1, sizeof(*n));
		char id[16];

		snprintf(id, sizeof(id), "n%d", i + 1);
		n->id = hf_xstrdup(id);
		n->cpus = 8;
		n->memory_mb = 8192;
		n->last_seen = T0;
		if (i < 2) {
			n->storage = calloc(1, sizeof(*n->storage));
			n->storage->capacity = 10 * GIB;
		}
		hf_model_node_add(&w->m, n);
		w->n[i] = n;
	}
	return w;
}

static void world_free(struct world *w)
{
	hf_actions_release(&w->a);
	hf_model_release(&w->m);
	free(w);
}

/* The volume "s-app-0" as a CREATE on node would leave it. */
static struct hf_xvol *add_volume(struct world *w, const char *node,
				  enum hf_xvol_state st)
{
	struct hf_xvol *v = hf_model_xvol_add(&w->m, "s-app-0");

	v->id = hf_xstrdup("00112233445566778899aabbccddeeff");
	v->service = hf_xstrdup("s");
	v->instance = st == HF_XVOL_KEPT ? NULL : hf_xstrdup("app-0");
	v->state = st;
	v->size = 2 * GIB;
	v->repl = v->min_sync = 1;
	v->secret = hf_xstrdup("00");
	hf_xvol_replica_add(v, node, "ffeeddccbbaa99887766554433221100", T0);
	return v;
}

static size_t count(const struct hf_actions *a, enum hf_action_kind k)
{
	size_t n = 0;

	for (size_t i = 0; i < a->len; i++)
		n += a->items[i].kind == k;
	return n;
}

static const struct hf_act_xvol *xvol_action(const struct hf_actions *a,
					     enum hf_xvol_op op)
{
	for (size_t i = 0; i < a->len; i++)
		if (a->items[i].kind == HF_ACT_XVOL &&
		    a->items[i].u.xvol.op == op)
			return &a->items[i].u.xvol;
	return NULL;
}

/* The candidates as place() builds them: every node usable. */
static void candidates(struct world *w, struct hf_place_node *c)
{
	for (int i = 0; i < 3; i++) {
		c[i].id = w->n[i]->id;
		c[i].usable = true;
	}
}

static void test_new_volumes_need_a_pool_that_holds_them(void **state)
{
	struct world *w = world_new();
	struct hf_place_node c[3] = {0};
	struct hf_strlist notes = {0};
	char *refuse;

	(void)state;
	/* n2's pool already holds 9 GiB of another volume: 1 GiB is left. */
	{
		struct hf_xvol *o = hf_model_xvol_add(&w->m, "other-0");

		o->service = hf_xstrdup("other");
		o->state = HF_XVOL_ACTIVE;
		o->size = 9 * GIB;
		hf_xvol_replica_add(o, "n2", "0123456789abcdef", T0);
	}
	candidates(w, c);
	refuse = hf_decide_xvol_candidates(&w->m, w->svc, w->pod, w->in, c, 3, &w->ctx,
					   &notes);
	assert_null(refuse);
	assert_true(c[0].usable);
	assert_false(c[1].usable);
	assert_string_equal(c[1].unusable_why,
			    "its storage pool has 1024 MiB free, the pod's new "
			    "volumes need 2048 MiB");
	assert_false(c[2].usable);
	assert_string_equal(c[2].unusable_why,
			    "it has no storage pool (agent --storage) for the "
			    "pod's volumes");
	hf_strlist_release(&notes);
	world_free(w);
}

static void test_a_volume_pins_its_instance_to_its_replica(void **state)
{
	struct world *w = world_new();
	struct hf_place_node c[3] = {0};
	struct hf_strlist notes = {0};

	(void)state;
	add_volume(w, "n2", HF_XVOL_KEPT);
	candidates(w, c);
	assert_null(hf_decide_xvol_candidates(&w->m, w->svc, w->pod, w->in, c,
					      3, &w->ctx, &notes));
	assert_false(c[0].usable);
	assert_string_equal(c[0].unusable_why,
			    "volume 's-app-0' has its in-sync replicas on n2");
	assert_true(c[1].usable);
	/* Its pool need not hold it again: it is there already. */
	w->n[1]->storage->capacity = GIB;
	c[1].usable = true;
	assert_null(hf_decide_xvol_candidates(&w->m, w->svc, w->pod, w->in, c,
					      3, &w->ctx, &notes));
	assert_true(c[1].usable);
	hf_strlist_release(&notes);
	world_free(w);
}

static void test_another_services_name_is_refused(void **state)
{
	struct world *w = world_new();
	struct hf_place_node c[3] = {0};
	struct hf_strlist notes = {0};
	struct hf_xvol *v;
	char *refuse;

	(void)state;
	v = add_volume(w, "n1", HF_XVOL_KEPT);
	free(v->service);
	v->service = hf_xstrdup("other");
	candidates(w, c);
	refuse = hf_decide_xvol_candidates(&w->m, w->svc, w->pod, w->in, c, 3, &w->ctx,
					   &notes);
	assert_string_equal(refuse, "cannot be placed: volume 's-app-0' "
				    "belongs to service 'other'");
	free(refuse);
	hf_strlist_release(&notes);
	world_free(w);
}

static void test_made_attached_then_ready_at_its_epoch(void **state)
{
	struct world *w = world_new();
	const struct hf_act_xvol *x;
	struct hf_xvol *v;
	struct hf_node_volrep *r;

	(void)state;
	w->in->node = hf_xstrdup("n1");
	/* 1. No volume: made on the instance's node; nothing launches. */
	assert_false(hf_decide_xvols_attached(&w->m, w->svc, w->pod, w->in,
					      "n1", &w->ctx, &w->a));
	x = xvol_action(&w->a, HF_XVOLOP_CREATE);
	assert_non_null(x);
	assert_string_equal(x->name, "s-app-0");
	assert_string_equal(x->node, "n1");
	assert_int_equal(x->size, 2 * GIB);
	assert_int_equal(x->repl, 1);
	assert_int_equal(strlen(x->id), 32);
	assert_int_equal(strspn(x->id, "0123456789abcdef"), 32);
	assert_int_equal(count(&w->a, HF_ACT_LAUNCH), 0);
	hf_actions_reset(&w->a);
	/* 2. Made (as applied): attached at epoch 1. */
	v = add_volume(w, "n1", HF_XVOL_ACTIVE);
	assert_false(hf_decide_xvols_attached(&w->m, w->svc, w->pod, w->in,
					      "n1", &w->ctx, &w->a));
	x = xvol_action(&w->a, HF_XVOLOP_ATTACH);
	assert_non_null(x);
	assert_int_equal(x->epoch, 1);
	assert_string_equal(x->node, "n1");
	hf_actions_reset(&w->a);
	/* 3. Attached, not reported ready: wait, and say so. */
	v->epoch = 1;
	v->attached = hf_xstrdup("n1");
	assert_false(hf_decide_xvols_attached(&w->m, w->svc, w->pod, w->in,
					      "n1", &w->ctx, &w->a));
	assert_int_equal(count(&w->a, HF_ACT_XVOL), 0);
	assert_int_equal(count(&w->a, HF_ACT_INSTANCE), 1);
	assert_string_equal(w->a.items[0].u.inst.message,
			    "waiting for volume 's-app-0' to be ready on node "
			    "n1 (epoch 1)");
	hf_actions_reset(&w->a);
	/* Ready at another epoch is not ready at this one. */
	r = HF_VEC_PUSH(&w->n[0]->volreps);
	r->volume = hf_xstrdup("s-app-0");
	r->epoch = 2;
	r->ready = true;
	assert_false(hf_decide_xvols_attached(&w->m, w->svc, w->pod, w->in,
					      "n1", &w->ctx, &w->a));
	hf_actions_reset(&w->a);
	/* A failed attach is what the instance says it waits for. */
	r->epoch = 1;
	r->ready = false;
	r->failed = hf_xstrdup("mkfs.ext4 exited 1");
	w->in->message = hf_xstrdup("waiting for volume 's-app-0' to be "
				    "ready on node n1 (epoch 1)");
	assert_false(hf_decide_xvols_attached(&w->m, w->svc, w->pod, w->in,
					      "n1", &w->ctx, &w->a));
	assert_int_equal(count(&w->a, HF_ACT_INSTANCE), 1);
	assert_string_equal(w->a.items[0].u.inst.message,
			    "waiting for volume 's-app-0' to be ready on node "
			    "n1 (epoch 1): its attach failed: mkfs.ext4 "
			    "exited 1");
	hf_actions_reset(&w->a);
	free(r->failed);
	r->failed = NULL;
	r->ready = true;
	/* 4. Ready at epoch 1: go, with the file system recorded; the
	 * instance's waiting message is cleared. */
	assert_true(hf_decide_xvols_attached(&w->m, w->svc, w->pod, w->in,
					     "n1", &w->ctx, &w->a));
	x = xvol_action(&w->a, HF_XVOLOP_READY);
	assert_non_null(x);
	assert_int_equal(x->epoch, 1);
	assert_int_equal(count(&w->a, HF_ACT_INSTANCE), 1);
	for (size_t i = 0; i < w->a.len; i++)
		if (w->a.items[i].kind == HF_ACT_INSTANCE)
			assert_null(w->a.items[i].u.inst.message);
	hf_actions_reset(&w->a);
	free(w->in->message);
	w->in->message = NULL;
	/* 5. Formatted and in sync: nothing more to do. */
	v->formatted = true;
	v->replicas.items[0].state = HF_XREP_IN_SYNC;
	assert_true(hf_decide_xvols_attached(&w->m, w->svc, w->pod, w->in,
					     "n1", &w->ctx, &w->a));
	assert_int_equal(count(&w->a, HF_ACT_XVOL), 0);
	/* 6. Detached (a replace): attached again at the next epoch. */
	free(v->attached);
	v->attached = NULL;
	hf_actions_reset(&w->a);
	assert_false(hf_decide_xvols_attached(&w->m, w->svc, w->pod, w->in,
					      "n1", &w->ctx, &w->a));
	x = xvol_action(&w->a, HF_XVOLOP_ATTACH);
	assert_non_null(x);
	assert_int_equal(x->epoch, 2);
	world_free(w);
}

static void test_a_kept_volume_is_taken_back(void **state)
{
	struct world *w = world_new();

	(void)state;
	w->in->node = hf_xstrdup("n2");
	add_volume(w, "n2", HF_XVOL_KEPT);
	assert_false(hf_decide_xvols_attached(&w->m, w->svc, w->pod, w->in,
					      "n2", &w->ctx, &w->a));
	assert_non_null(xvol_action(&w->a, HF_XVOLOP_ADOPT));
	assert_non_null(xvol_action(&w->a, HF_XVOLOP_ATTACH));
	assert_null(xvol_action(&w->a, HF_XVOLOP_CREATE));
	world_free(w);
}

static void test_release_keeps_deletes_or_detaches(void **state)
{
	struct world *w = world_new();
	struct hf_xvol *v;
	const char *ids[] = {"nope", "ffeeddccbbaa99887766554433221100"};

	(void)state;
	v = add_volume(w, "n1", HF_XVOL_ACTIVE);
	/* Not attached: nothing to detach. */
	hf_decide_xvols_release(&w->m, w->svc, w->in, HF_XVOLOP_DETACH, "x",
				&w->a);
	assert_int_equal(count(&w->a, HF_ACT_XVOL), 0);
	v->attached = hf_xstrdup("n1");
	hf_decide_xvols_release(&w->m, w->svc, w->in, HF_XVOLOP_DETACH, "x",
				&w->a);
	assert_non_null(xvol_action(&w->a, HF_XVOLOP_DETACH));
	hf_actions_reset(&w->a);
	hf_decide_xvols_release(&w->m, w->svc, w->in, HF_XVOLOP_KEEP, "x",
				&w->a);
	assert_non_null(xvol_action(&w->a, HF_XVOLOP_KEEP));
	hf_actions_reset(&w->a);
	/* A kept volume is deleted with its service's kept ones. */
	v->state = HF_XVOL_KEPT;
	assert_int_equal(hf_decide_xvols_delete_kept(&w->m, "s", "operator",
						     &w->a),
			 1);
	assert_non_null(xvol_action(&w->a, HF_XVOLOP_DELETE));
	assert_int_equal(hf_decide_xvols_delete_kept(&w->m, "other",
						     "operator", &w->a),
			 0);
	hf_actions_reset(&w->a);
	/* Its replica's deletion is taken only once it is DELETING there. */
	hf_decide_replicas_deleted(&w->m, "n1", ids, 2, &w->a);
	assert_int_equal(count(&w->a, HF_ACT_XVOL), 0);
	v->state = HF_XVOL_DELETING;
	v->replicas.items[0].state = HF_XREP_DELETING;
	hf_decide_replicas_deleted(&w->m, "n2", ids, 2, &w->a);
	assert_int_equal(count(&w->a, HF_ACT_XVOL), 0);
	hf_decide_replicas_deleted(&w->m, "n1", ids, 2, &w->a);
	assert_string_equal(xvol_action(&w->a, HF_XVOLOP_REPLICA_GONE)->replica,
			    ids[1]);
	world_free(w);
}

/* repl=2: a replica on the instance's node and one on another pool. */
static void test_repl2_needs_two_pools(void **state)
{
	struct world *w = world_with(spec_repl2);
	struct hf_place_node c[3] = {0};
	struct hf_strlist notes = {0};
	const struct hf_act_xvol *x;

	(void)state;
	candidates(w, c);
	assert_null(hf_decide_xvol_candidates(&w->m, w->svc, w->pod, w->in, c,
					      3, &w->ctx, &notes));
	assert_true(c[0].usable);
	assert_true(c[1].usable);
	assert_false(c[2].usable);
	/* n2 cannot hold a second replica: n1 alone is no longer enough. */
	w->n[1]->storage->capacity = GIB;
	candidates(w, c);
	assert_null(hf_decide_xvol_candidates(&w->m, w->svc, w->pod, w->in, c,
					      3, &w->ctx, &notes));
	assert_false(c[0].usable);
	assert_non_null(strstr(c[0].unusable_why, "need 1 more replica"));
	/*
	 * Other hostnames come first: with n1 and n2 on one host and n3 (a
	 * pool now) on another, n1's second replica goes to n3; with n3
	 * gone, to n2 (one host holding two replicas beats none).
	 */
	w->n[1]->storage->capacity = 10 * GIB;
	w->n[0]->hostname = hf_xstrdup("h");
	w->n[1]->hostname = hf_xstrdup("h");
	w->n[2]->hostname = hf_xstrdup("h3");
	w->n[2]->storage = calloc(1, sizeof(*w->n[2]->storage));
	w->n[2]->storage->capacity = 5 * GIB;
	w->in->node = hf_xstrdup("n1");
	assert_false(hf_decide_xvols_attached(&w->m, w->svc, w->pod, w->in,
					      "n1", &w->ctx, &w->a));
	x = xvol_action(&w->a, HF_XVOLOP_CREATE);
	assert_non_null(x);
	assert_string_equal(x->more_node[0], "n3");
	hf_actions_reset(&w->a);
	w->n[2]->last_seen = 0;
	assert_false(hf_decide_xvols_attached(&w->m, w->svc, w->pod, w->in,
					      "n1", &w->ctx, &w->a));
	x = xvol_action(&w->a, HF_XVOLOP_CREATE);
	assert_non_null(x);
	assert_string_equal(x->more_node[0], "n2");
	hf_actions_reset(&w->a);
	free(w->in->node);
	w->in->node = NULL;
	free(w->n[1]->hostname);
	w->n[1]->hostname = hf_xstrdup("h2");
	/* Made: one replica on n1, the other on n2. */
	w->in->node = hf_xstrdup("n1");
	assert_false(hf_decide_xvols_attached(&w->m, w->svc, w->pod, w->in,
					      "n1", &w->ctx, &w->a));
	x = xvol_action(&w->a, HF_XVOLOP_CREATE);
	assert_non_null(x);
	assert_int_equal(x->repl, 2);
	assert_string_equal(x->node, "n1");
	assert_non_null(x->more_node[0]);
	assert_string_equal(x->more_node[0], "n2");
	assert_non_null(x->more_replica[0]);
	assert_string_not_equal(x->more_replica[0], x->replica);
	assert_null(x->more_node[1]);
	hf_strlist_release(&notes);
	world_free(w);
}

/*
 * The node of an instance whose data is all in replicated volumes is
 * lost: the instance moves at once (its replica there goes DOWN, the
 * volume is detached, the instance unplaced), unless too few in-sync
 * replicas are left on connected nodes for the volume's min_sync.
 */
static void test_failover_when_the_node_is_lost(void **state)
{
	struct world *w = world_with(spec_repl2);
	const struct hf_config *cfg = hf_model_target(w->svc);
	const struct hf_act_xvol *x;
	struct hf_xvol *v;

	(void)state;
	v = add_volume(w, "n1", HF_XVOL_ACTIVE);
	hf_xvol_replica_add(v, "n2", "aa", T0);
	v->repl = 2;
	v->formatted = true;
	v->epoch = 3;
	v->attached = hf_xstrdup("n1");
	v->replicas.items[0].state = HF_XREP_IN_SYNC;
	v->replicas.items[1].state = HF_XREP_IN_SYNC;
	w->in->node = hf_xstrdup("n1");
	/* Reachable: nothing moves. */
	hf_decide_node_loss(&w->m, w->svc, cfg, &w->ctx, &w->a);
	assert_int_equal(count(&w->a, HF_ACT_UNPLACE), 0);
	/* n1 and n2 silent past the node timeout: no in-sync replica left. */
	w->ctx.now = T0 + 60000;
	w->n[2]->last_seen = w->ctx.now;
	hf_decide_node_loss(&w->m, w->svc, cfg, &w->ctx, &w->a);
	assert_int_equal(count(&w->a, HF_ACT_UNPLACE), 0);
	hf_actions_reset(&w->a);
	/* n2 connected: the instance fails over. */
	w->n[1]->last_seen = w->ctx.now;
	hf_decide_node_loss(&w->m, w->svc, cfg, &w->ctx, &w->a);
	assert_int_equal(count(&w->a, HF_ACT_UNPLACE), 1);
	x = xvol_action(&w->a, HF_XVOLOP_REPLICA_DOWN);
	assert_non_null(x);
	assert_string_equal(x->node, "n1");
	assert_non_null(xvol_action(&w->a, HF_XVOLOP_DETACH));
	world_free(w);
}

/*
 * The attached node asks that a failed remote leave the in-sync set: taken
 * at the current epoch from that node while min_sync replicas remain.
 */
static void test_isr_drop_follows_the_policy(void **state)
{
	struct world *w = world_with(spec_repl2);
	const char *drop[] = {"aa"};
	const struct hf_act_xvol *x;
	struct hf_xvol *v;

	(void)state;
	v = add_volume(w, "n1", HF_XVOL_ACTIVE);
	hf_xvol_replica_add(v, "n2", "aa", T0);
	v->repl = 2;
	v->min_sync = 1;
	v->formatted = true;
	v->epoch = 3;
	v->attached = hf_xstrdup("n1");
	v->replicas.items[0].state = HF_XREP_IN_SYNC;
	v->replicas.items[1].state = HF_XREP_IN_SYNC;
	/* Another node, or an older epoch: ignored. */
	hf_decide_isr_drop(&w->m, "n2", "s-app-0", 3, drop, 1, "x", &w->a);
	hf_decide_isr_drop(&w->m, "n1", "s-app-0", 2, drop, 1, "x", &w->a);
	assert_int_equal(count(&w->a, HF_ACT_XVOL), 0);
	/* The attached node at its epoch: n2's replica goes DOWN. */
	hf_decide_isr_drop(&w->m, "n1", "s-app-0", 3, drop, 1,
			   "no answer in 3 s", &w->a);
	x = xvol_action(&w->a, HF_XVOLOP_REPLICA_DOWN);
	assert_non_null(x);
	assert_string_equal(x->node, "n2");
	assert_string_equal(x->why, "no answer in 3 s");
	hf_actions_reset(&w->a);
	/* min_sync=2: dropping it would leave too few; writes wait. */
	v->min_sync = 2;
	hf_decide_isr_drop(&w->m, "n1", "s-app-0", 3, drop, 1, "x", &w->a);
	assert_int_equal(count(&w->a, HF_ACT_XVOL), 0);
	world_free(w);
}

/*
 * Remote access: a storage-less node is a candidate only when no node
 * with the data (or a pool for it) is; its new volume's replica is then
 * made on a pool elsewhere, and it reaches it over the network.
 */
static void test_a_storage_less_node_reaches_its_volume_remotely(void **state)
{
	struct world *w = world_new();
	struct hf_place_node c[3] = {0};
	struct hf_strlist notes = {0};
	const struct hf_act_xvol *x;

	(void)state;
	candidates(w, c);
	assert_null(hf_decide_xvol_candidates(&w->m, w->svc, w->pod, w->in, c,
					      3, &w->ctx, &notes));
	assert_false(c[2].usable); /* pools first */
	assert_true(c[2].fallback); /* unless none of them fits */
	/* n1 and n2 cannot take the pod (say, no cpus left): n3 may. */
	candidates(w, c);
	c[0].usable = c[1].usable = false;
	assert_null(hf_decide_xvol_candidates(&w->m, w->svc, w->pod, w->in, c,
					      3, &w->ctx, &notes));
	assert_true(c[2].usable);
	w->in->node = hf_xstrdup("n3");
	assert_false(hf_decide_xvols_attached(&w->m, w->svc, w->pod, w->in,
					      "n3", &w->ctx, &w->a));
	x = xvol_action(&w->a, HF_XVOLOP_CREATE);
	assert_non_null(x);
	assert_true(strcmp(x->node, "n1") == 0 || strcmp(x->node, "n2") == 0);
	assert_null(x->more_node[0]);
	hf_strlist_release(&notes);
	world_free(w);
}

/*
 * A down replica whose node is connected again (with its replica server)
 * is resynced; the attached node's word at the current epoch makes it
 * in sync again.
 */
static void test_a_returning_replica_is_resynced(void **state)
{
	struct world *w = world_with(spec_repl2);
	const char *ids[] = {"aa"};
	const struct hf_act_xvol *x;
	struct hf_xvol *v;

	(void)state;
	v = add_volume(w, "n1", HF_XVOL_ACTIVE);
	hf_xvol_replica_add(v, "n2", "aa", T0);
	v->repl = 2;
	v->formatted = true;
	v->epoch = 3;
	v->attached = hf_xstrdup("n1");
	v->replicas.items[0].state = HF_XREP_IN_SYNC;
	v->replicas.items[1].state = HF_XREP_DOWN;
	/* No replica server yet: nothing. */
	w->n[1]->storage->port = 0;
	w->ctx.now = T0 + 6000;
	w->n[0]->last_seen = w->n[1]->last_seen = w->ctx.now;
	hf_decide_xvols_heal(&w->m, "s", &w->ctx, &w->a);
	assert_int_equal(count(&w->a, HF_ACT_XVOL), 0);
	w->n[1]->storage->port = 7446;
	/* Down only a moment ago: not yet. */
	v->replicas.items[1].since = w->ctx.now - 1000;
	hf_decide_xvols_heal(&w->m, "s", &w->ctx, &w->a);
	assert_int_equal(count(&w->a, HF_ACT_XVOL), 0);
	v->replicas.items[1].since = T0;
	hf_decide_xvols_heal(&w->m, "s", &w->ctx, &w->a);
	x = xvol_action(&w->a, HF_XVOLOP_REPLICA_RESYNC);
	assert_non_null(x);
	assert_string_equal(x->node, "n2");
	hf_actions_reset(&w->a);
	/* Resynced: only from n1 at epoch 3, only while resyncing. */
	v->replicas.items[1].state = HF_XREP_RESYNCING;
	hf_decide_resynced(&w->m, "n2", "s-app-0", 3, ids, 1, &w->a);
	hf_decide_resynced(&w->m, "n1", "s-app-0", 2, ids, 1, &w->a);
	assert_int_equal(count(&w->a, HF_ACT_XVOL), 0);
	hf_decide_resynced(&w->m, "n1", "s-app-0", 3, ids, 1, &w->a);
	x = xvol_action(&w->a, HF_XVOLOP_REPLICA_SYNCED);
	assert_non_null(x);
	assert_string_equal(x->replica, "aa");
	assert_int_equal(x->epoch, 3);
	hf_actions_reset(&w->a);
	/* Progress of the copy: kept when the percent moves. */
	hf_decide_resync_progress(&w->m, "n1", "s-app-0", 3, "aa", 0, 100,
				  &w->a);
	assert_non_null(xvol_action(&w->a, HF_XVOLOP_REPLICA_PROGRESS));
	hf_actions_reset(&w->a);
	v->replicas.items[1].resync_total = 100; /* as applied */
	hf_decide_resync_progress(&w->m, "n1", "s-app-0", 3, "aa", 0, 100,
				  &w->a);
	assert_null(xvol_action(&w->a, HF_XVOLOP_REPLICA_PROGRESS));
	hf_decide_resync_progress(&w->m, "n1", "s-app-0", 3, "aa", 42, 100,
				  &w->a);
	x = xvol_action(&w->a, HF_XVOLOP_REPLICA_PROGRESS);
	assert_non_null(x);
	assert_int_equal(x->done, 42);
	assert_int_equal(x->size, 100);
	hf_actions_reset(&w->a);
	hf_decide_resync_progress(&w->m, "n2", "s-app-0", 3, "aa", 50, 100,
				  &w->a);
	assert_null(xvol_action(&w->a, HF_XVOLOP_REPLICA_PROGRESS));
	/* A failed copy: down again. */
	hf_decide_isr_drop(&w->m, "n1", "s-app-0", 3, ids, 1, "copy failed",
			   &w->a);
	x = xvol_action(&w->a, HF_XVOLOP_REPLICA_DOWN);
	assert_non_null(x);
	assert_string_equal(x->node, "n2");
	world_free(w);
}

/*
 * Re-replication: a replica on a decommissioned node (or down too long)
 * gets a replacement on another pool; once repl replicas are in sync,
 * the lost one is given up.
 */
static void test_a_lost_replica_is_rebuilt_elsewhere(void **state)
{
	struct world *w = world_with(spec_repl2);
	const struct hf_act_xvol *x;
	struct hf_xvol *v;

	(void)state;
	w->opts.rereplicate_after = 600;
	w->n[2]->storage = calloc(1, sizeof(*w->n[2]->storage));
	w->n[2]->storage->capacity = 10 * GIB;
	v = add_volume(w, "n1", HF_XVOL_ACTIVE);
	hf_xvol_replica_add(v, "n2", "aa", T0);
	v->repl = 2;
	v->formatted = true;
	v->epoch = 3;
	v->attached = hf_xstrdup("n1");
	v->replicas.items[0].state = HF_XREP_IN_SYNC;
	v->replicas.items[1].state = HF_XREP_IN_SYNC;
	w->ctx.now = T0 + 1000;
	for (int i = 0; i < 3; i++)
		w->n[i]->last_seen = w->ctx.now;
	hf_decide_xvols_heal(&w->m, "s", &w->ctx, &w->a);
	assert_null(xvol_action(&w->a, HF_XVOLOP_REPLICA_ADD));
	/* n2 decommissioned: a new replica on n3, resyncing. */
	w->n[1]->decommissioned = true;
	hf_decide_xvols_heal(&w->m, "s", &w->ctx, &w->a);
	x = xvol_action(&w->a, HF_XVOLOP_REPLICA_ADD);
	assert_non_null(x);
	assert_string_equal(x->node, "n3");
	assert_null(xvol_action(&w->a, HF_XVOLOP_REPLICA_RETIRE));
	hf_actions_reset(&w->a);
	/* Made, being copied to: nothing more yet. */
	hf_xvol_replica_add(v, "n3", "bb", T0)->state = HF_XREP_RESYNCING;
	hf_decide_xvols_heal(&w->m, "s", &w->ctx, &w->a);
	assert_null(xvol_action(&w->a, HF_XVOLOP_REPLICA_ADD));
	assert_null(xvol_action(&w->a, HF_XVOLOP_REPLICA_RETIRE));
	/* In sync: n2's is given up. */
	v->replicas.items[2].state = HF_XREP_IN_SYNC;
	hf_decide_xvols_heal(&w->m, "s", &w->ctx, &w->a);
	x = xvol_action(&w->a, HF_XVOLOP_REPLICA_RETIRE);
	assert_non_null(x);
	assert_string_equal(x->replica, "aa");
	hf_actions_reset(&w->a);
	/* Down past the delay (not decommissioned) counts as lost too. */
	w->n[1]->decommissioned = false;
	v->replicas.items[2].state = HF_XREP_DOWN;
	v->replicas.items[2].since = T0;
	w->ctx.now = T0 + 601 * 1000;
	for (int i = 0; i < 3; i++)
		w->n[i]->last_seen = w->ctx.now;
	hf_decide_xvols_heal(&w->m, "s", &w->ctx, &w->a);
	assert_null(xvol_action(&w->a, HF_XVOLOP_REPLICA_RESYNC));
	world_free(w);
}

/*
 * Snapshots (plan/xsnap.c): taken only by an attachment; a name once;
 * the attach process's answers change the record once, from its
 * attachment at its epoch only ("local" is its node's replica); a restore
 * needs every replica to hold the snapshot, and only a later attachment's
 * answer ends it.
 */
static void test_snapshot_rules(void **state)
{
	struct world *w = world_new();
	struct hf_xvol *v = add_volume(w, "n1", HF_XVOL_ACTIVE);
	const struct hf_act_xvol *x;
	struct hf_xsnap *sn;
	char *why = NULL;
	bool conflict = false;
	const char *local[] = {"local"};
	struct hf_snap_outcome o = {"00000000000000a1", "take", NULL, true,
				    local, 1};

	(void)state;
	/* Not attached: refused, nothing asked. */
	assert_int_equal(hf_decide_snap_take(&w->m, "s-app-0", "first",
					     "00000000000000a1", T0, "operator",
					     &w->a, &why, &conflict),
			 -1);
	assert_true(conflict);
	assert_non_null(strstr(why, "not attached"));
	assert_int_equal(w->a.len, 0);
	free(why);
	assert_int_equal(hf_decide_snap_take(&w->m, "nope", "first", "00000000000000a1",
					     T0, "operator", &w->a, &why, &conflict),
			 -1);
	assert_false(conflict);
	free(why);
	v->attached = hf_xstrdup("n1");
	v->epoch = 3;
	v->formatted = true;
	assert_int_equal(hf_decide_snap_take(&w->m, "s-app-0", "first",
					     "00000000000000a1", T0, "operator",
					     &w->a, &why, &conflict),
			 1);
	x = xvol_action(&w->a, HF_XVOLOP_SNAP_ADD);
	assert_non_null(x);
	assert_string_equal(x->snap, "00000000000000a1");
	assert_string_equal(x->snap_name, "first");
	assert_int_equal(x->size, 2 * GIB);
	assert_int_equal(count(&w->a, HF_ACT_EVENT), 1);
	/* As applied: the record, taking. */
	sn = hf_xvol_snap_add(v, "00000000000000a1", "first", T0);
	sn->state = HF_XSNAP_TAKING;
	hf_actions_reset(&w->a);
	assert_int_equal(hf_decide_snap_take(&w->m, "s-app-0", "first",
					     "00000000000000b2", T0, "operator",
					     &w->a, &why, &conflict),
			 -1);
	assert_non_null(strstr(why, "already"));
	free(why);
	assert_int_equal(hf_decide_snap_take(&w->m, "s-app-0", "a/b",
					     "00000000000000b2", T0, "operator",
					     &w->a, &why, &conflict),
			 -1);
	free(why);
	/* An answer from another epoch or node changes nothing. */
	hf_decide_snap_results(&w->m, "n1", "s-app-0", 2, &o, 1, T0 + 5, &w->a);
	hf_decide_snap_results(&w->m, "n2", "s-app-0", 3, &o, 1, T0 + 5, &w->a);
	assert_int_equal(w->a.len, 0);
	hf_decide_snap_results(&w->m, "n1", "s-app-0", 3, &o, 1, T0 + 5, &w->a);
	x = xvol_action(&w->a, HF_XVOLOP_SNAP_TAKEN);
	assert_non_null(x);
	assert_int_equal(x->holders.len, 1);
	assert_string_equal(x->holders.items[0],
			    "ffeeddccbbaa99887766554433221100");
	assert_int_equal(x->at, T0 + 5);
	/* Ready (as applied), the same answer again is no news. */
	sn->state = HF_XSNAP_READY;
	hf_strlist_push(&sn->replicas, "ffeeddccbbaa99887766554433221100");
	hf_actions_reset(&w->a);
	hf_decide_snap_results(&w->m, "n1", "s-app-0", 3, &o, 1, T0 + 6, &w->a);
	assert_int_equal(w->a.len, 0);
	/* A restore needs every replica to hold it. */
	hf_xvol_replica_add(v, "n2", "0a0a0a0a0a0a0a0a", T0)->state =
	    HF_XREP_IN_SYNC;
	assert_int_equal(hf_decide_snap_restore(&w->m, "s-app-0", "first",
						"operator", &w->a, &why,
						&conflict),
			 -1);
	assert_non_null(strstr(why, "does not hold"));
	free(why);
	hf_strlist_push(&sn->replicas, "0a0a0a0a0a0a0a0a");
	assert_int_equal(hf_decide_snap_restore(&w->m, "s-app-0", "first",
						"operator", &w->a, &why,
						&conflict),
			 1);
	x = xvol_action(&w->a, HF_XVOLOP_RESTORE);
	assert_non_null(x);
	assert_string_equal(x->snap, "00000000000000a1");
	/* As applied: pending after epoch 3; epoch 3's answer is ignored. */
	v->restore = hf_xstrdup("00000000000000a1");
	v->restore_after = 3;
	hf_actions_reset(&w->a);
	o.op = "restore";
	hf_decide_snap_results(&w->m, "n1", "s-app-0", 3, &o, 1, T0 + 7, &w->a);
	assert_int_equal(w->a.len, 0);
	v->epoch = 4;
	hf_decide_snap_results(&w->m, "n1", "s-app-0", 4, &o, 1, T0 + 8, &w->a);
	x = xvol_action(&w->a, HF_XVOLOP_RESTORE);
	assert_non_null(x);
	assert_null(x->snap);
	/* The snapshot being restored is not deleted meanwhile. */
	assert_int_equal(hf_decide_snap_delete(&w->m, "s-app-0", "first",
					       "operator", &w->a, &why,
					       &conflict),
			 -1);
	free(why);
	world_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_new_volumes_need_a_pool_that_holds_them),
	    cmocka_unit_test(test_a_volume_pins_its_instance_to_its_replica),
	    cmocka_unit_test(test_another_services_name_is_refused),
	    cmocka_unit_test(test_made_attached_then_ready_at_its_epoch),
	    cmocka_unit_test(test_a_kept_volume_is_taken_back),
	    cmocka_unit_test(test_release_keeps_deletes_or_detaches),
	    cmocka_unit_test(test_repl2_needs_two_pools),
	    cmocka_unit_test(test_failover_when_the_node_is_lost),
	    cmocka_unit_test(test_isr_drop_follows_the_policy),
	    cmocka_unit_test(test_a_storage_less_node_reaches_its_volume_remotely),
	    cmocka_unit_test(test_a_returning_replica_is_resynced),
	    cmocka_unit_test(test_a_lost_replica_is_rebuilt_elsewhere),
	    cmocka_unit_test(test_snapshot_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
