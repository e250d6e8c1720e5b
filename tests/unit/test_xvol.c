/*
 * test_xvol.c - replicated volumes' records (model-t.h's struct hf_xvol):
 * state names both ways, the model's lookups (by name, an instance's
 * volumes, a node's replicas), the store's encoding (model/codec.h:
 * written, read back, damaged records refused with a message naming the
 * key and the reason), the API's form (which never holds the secret), and
 * a server loading them from its store (server/state.h's hf_state_load).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "model/codec.h"
#include "model/model.h"
#include "server/state.h"
#include "store/store.h"

/* A key no other text in a record looks like. */
#define SECRET                                                                 \
	"5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e70001"
#define VOL_ID "3f2a9c0e1b7d4e55a0c1d2e3f4a5b6c7"
#define REP_A "9ac0000000000000000000000000000a"
#define REP_B "71d0000000000000000000000000000b"
#define REP_C "c4e0000000000000000000000000000c"

static struct hf_node *node_new(const char *id)
{
	struct hf_node *n = hf_xcalloc(1, sizeof(*n));

	n->id = hf_xstrdup(id);
	return n;
}

/* A model with nodes n1, n2 and n3, for volumes' replicas to name. */
static void model_with_nodes(struct hf_model *m)
{
	memset(m, 0, sizeof(*m));
	hf_model_node_add(m, node_new("n1"));
	hf_model_node_add(m, node_new("n2"));
	hf_model_node_add(m, node_new("n3"));
}

/*
 * A volume with every field set to something other than its zero value:
 * attached on n1 at epoch 4, one replica in sync, one resyncing (a quarter
 * done, why set), one down.
 */
static struct hf_xvol *full_volume(struct hf_model *m, const char *name)
{
	struct hf_xvol *v = hf_model_xvol_add(m, name);
	struct hf_xrep *r;

	v->id = hf_xstrdup(VOL_ID);
	v->service = hf_xstrdup("hello-world");
	v->instance = hf_xstrdup("hello-0");
	v->state = HF_XVOL_ACTIVE;
	v->size = (int64_t)3 << 30;
	v->repl = 3;
	v->min_sync = 2;
	v->ro = true;
	v->epoch = 4;
	v->attached = hf_xstrdup("n1");
	v->formatted = true;
	v->secret = hf_xstrdup(SECRET);
	v->created = 1796419707439;
	r = hf_xvol_replica_add(v, "n1", REP_A, 1000);
	r->state = HF_XREP_IN_SYNC;
	r = hf_xvol_replica_add(v, "n2", REP_B, 2000);
	r->state = HF_XREP_RESYNCING;
	r->resync_done = 1 << 20;
	r->resync_total = 4 << 20;
	r->why = hf_xstrdup("back after 12 s away");
	r = hf_xvol_replica_add(v, "n3", REP_C, 3000);
	r->state = HF_XREP_DOWN;
	r->why = hf_xstrdup("no answer in 3 s");
	return v;
}

static char *dump(const json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);

	assert_non_null(s);
	return s;
}

/* Loads one record into m (which has nodes n1..n3); returns its result. */
static int load_one(struct hf_model *m, const char *key, const char *value,
		    char **err)
{
	struct hf_codec_rec rec = {key, value, strlen(value)};

	return hf_codec_load_xvols(m, &rec, 1, err);
}

/* ------------------------------------------------------------------ */
/* Names                                                                */

static void test_state_names(void **state)
{
	static const struct {
		enum hf_xvol_state st;
		const char *name;
	} vols[] = {
	    {HF_XVOL_ACTIVE, "active"},
	    {HF_XVOL_KEPT, "kept"},
	    {HF_XVOL_DELETING, "deleting"},
	};
	static const struct {
		enum hf_xrep_state st;
		const char *name;
	} reps[] = {
	    {HF_XREP_NEW, "new"},
	    {HF_XREP_IN_SYNC, "in_sync"},
	    {HF_XREP_RESYNCING, "resyncing"},
	    {HF_XREP_DOWN, "down"},
	    {HF_XREP_STALE, "stale"},
	    {HF_XREP_DELETING, "deleting"},
	};
	static const char *const bad[] = {"", "ACTIVE", "in sync", "in_sync ",
					  "gone", "unknown"};
	enum hf_xvol_state vs;
	enum hf_xrep_state rs;

	(void)state;
	for (size_t i = 0; i < HF_ARRAY_LEN(vols); i++) {
		assert_string_equal(hf_xvol_state_name(vols[i].st),
				    vols[i].name);
		vs = (enum hf_xvol_state)99;
		assert_true(hf_xvol_state_parse(vols[i].name, &vs));
		assert_int_equal(vs, vols[i].st);
	}
	for (size_t i = 0; i < HF_ARRAY_LEN(reps); i++) {
		assert_string_equal(hf_xrep_state_name(reps[i].st),
				    reps[i].name);
		rs = (enum hf_xrep_state)99;
		assert_true(hf_xrep_state_parse(reps[i].name, &rs));
		assert_int_equal(rs, reps[i].st);
	}
	/* Anything else is refused and leaves the output alone. */
	for (size_t i = 0; i < HF_ARRAY_LEN(bad); i++) {
		vs = (enum hf_xvol_state)99;
		rs = (enum hf_xrep_state)99;
		if (hf_xvol_state_parse(bad[i], &vs))
			fail_msg("'%s' read as a volume state", bad[i]);
		if (hf_xrep_state_parse(bad[i], &rs))
			fail_msg("'%s' read as a replica state", bad[i]);
		assert_int_equal(vs, 99);
		assert_int_equal(rs, 99);
	}
	assert_false(hf_xvol_state_parse(NULL, &vs));
	assert_false(hf_xrep_state_parse(NULL, &rs));
	assert_string_equal(hf_xvol_state_name((enum hf_xvol_state)42),
			    "unknown");
	assert_string_equal(hf_xrep_state_name((enum hf_xrep_state)42),
			    "unknown");
}

static void test_names(void **state)
{
	static const char *const good[] = {
	    "hello-world-hello-0", "data-1", "a", "svc__folder-pod-3",
	    "with space", "..a", "x.y"};
	static const char *const bad[] = {"", ".", "..", "a/b", "/a", "a\n",
					  "tab\there", "del\x7f"};
	char longest[HF_XVOL_NAME_MAX + 2];

	(void)state;
	for (size_t i = 0; i < HF_ARRAY_LEN(good); i++)
		if (!hf_xvol_name_ok(good[i]))
			fail_msg("'%s' should name a volume", good[i]);
	for (size_t i = 0; i < HF_ARRAY_LEN(bad); i++)
		if (hf_xvol_name_ok(bad[i]))
			fail_msg("'%s' should not name a volume", bad[i]);
	assert_false(hf_xvol_name_ok(NULL));
	memset(longest, 'v', sizeof(longest));
	longest[HF_XVOL_NAME_MAX] = '\0';
	assert_true(hf_xvol_name_ok(longest));
	longest[HF_XVOL_NAME_MAX] = 'v';
	longest[HF_XVOL_NAME_MAX + 1] = '\0';
	assert_false(hf_xvol_name_ok(longest));
}

/* ------------------------------------------------------------------ */
/* The model                                                            */

static void test_lookups(void **state)
{
	struct hf_model m;
	struct hf_xvol *a, *b, *c, *kept;
	struct hf_xvols of = {0};
	struct hf_xrep_refs on = {0};

	(void)state;
	model_with_nodes(&m);
	a = full_volume(&m, "hello-world-hello-0");
	b = full_volume(&m, "hello-world-hello-1");
	free(b->instance);
	b->instance = hf_xstrdup("hello-1");
	c = full_volume(&m, "other-hello-0"); /* same instance, other service */
	free(c->service);
	c->service = hf_xstrdup("other");
	kept = full_volume(&m, "hello-world-world-0");
	kept->state = HF_XVOL_KEPT;
	free(kept->instance);
	kept->instance = NULL;
	/* On n2, kept's replica is being deleted and a new one was placed. */
	kept->replicas.items[1].state = HF_XREP_DELETING;
	hf_xvol_replica_add(kept, "n2", "d00000000000000000000000000000dd", 5);

	assert_ptr_equal(hf_model_xvol(&m, "hello-world-hello-0"), a);
	assert_ptr_equal(hf_model_xvol(&m, "other-hello-0"), c);
	assert_null(hf_model_xvol(&m, "hello-world-hello-2"));
	assert_null(hf_model_xvol(&m, NULL));

	hf_model_xvols_of_instance(&m, "hello-world", "hello-0", &of);
	assert_int_equal(of.len, 1);
	assert_ptr_equal(of.items[0], a);
	hf_model_xvols_of_instance(&m, "hello-world", "hello-1", &of);
	assert_int_equal(of.len, 2); /* appended */
	assert_ptr_equal(of.items[1], b);
	HF_VEC_FREE(&of);
	hf_model_xvols_of_instance(&m, "hello-world", "world-0", &of);
	assert_int_equal(of.len, 0); /* KEPT: no instance */
	HF_VEC_FREE(&of);

	/* Every replica on n2, whatever its state, with its volume. */
	hf_model_node_replicas(&m, "n2", &on);
	assert_int_equal(on.len, 5);
	assert_ptr_equal(on.items[0].vol, a);
	assert_string_equal(on.items[0].rep->id, REP_B);
	assert_ptr_equal(on.items[3].vol, kept);
	assert_int_equal(on.items[3].rep->state, HF_XREP_DELETING);
	assert_ptr_equal(on.items[4].vol, kept);
	assert_string_equal(on.items[4].rep->id,
			    "d00000000000000000000000000000dd");
	HF_VEC_FREE(&on);
	hf_model_node_replicas(&m, "n9", &on);
	assert_int_equal(on.len, 0);
	HF_VEC_FREE(&on);

	assert_ptr_equal(hf_xvol_replica(a, REP_C), &a->replicas.items[2]);
	assert_null(hf_xvol_replica(a, "ffff"));
	/* The live replica on a node, not the one being deleted. */
	assert_string_equal(hf_xvol_replica_on(kept, "n2")->id,
			    "d00000000000000000000000000000dd");
	assert_null(hf_xvol_replica_on(a, "n9"));
	assert_int_equal(hf_xvol_in_sync(a), 1);
	a->replicas.items[1].state = HF_XREP_IN_SYNC;
	assert_int_equal(hf_xvol_in_sync(a), 2);

	/* Removal keeps the order and the index. */
	hf_xvol_replica_remove(a, &a->replicas.items[0]);
	assert_int_equal(a->replicas.len, 2);
	assert_string_equal(a->replicas.items[0].id, REP_B);
	assert_string_equal(a->replicas.items[1].id, REP_C);
	hf_model_xvol_remove(&m, b);
	assert_null(hf_model_xvol(&m, "hello-world-hello-1"));
	assert_int_equal(m.xvols.len, 3);
	assert_ptr_equal(m.xvols.items[1], c);
	assert_ptr_equal(hf_model_xvol(&m, "other-hello-0"), c);
	hf_model_release(&m);
}

/* ------------------------------------------------------------------ */
/* The store's encoding                                                 */

static void test_round_trip(void **state)
{
	struct hf_model m, back;
	struct hf_xvol *v, *w;
	json_t *o, *again;
	char *text, *key, *err = NULL;

	(void)state;
	model_with_nodes(&m);
	v = full_volume(&m, "hello-world-hello-0");
	/* A backup under way and a schedule: a new leader follows them. */
	v->bk_last = hf_xstrdup("b0");
	v->bk_to = hf_xstrdup("s3://vault/p");
	v->bk_snap = hf_xstrdup("0123456789abcdef");
	v->bk_at = 1796419700000;
	v->bk_run.id = hf_xstrdup("b1");
	v->bk_run.snap = hf_xstrdup("backup-b1");
	v->bk_run.to = hf_xstrdup("s3://vault/p");
	v->bk_run.cred = hf_xstrdup("site");
	v->bk_run.node = hf_xstrdup("n2");
	v->bk_run.started = 1796419707000;
	v->bk_sched.to = hf_xstrdup("s3://vault/p");
	v->bk_sched.cred = hf_xstrdup("site");
	v->bk_sched.every_ms = 3600000;
	v->bk_sched.keep = 7;
	o = hf_codec_xvol(v);
	text = dump(o);
	/* The store holds the secret: the agents of its nodes need it. */
	assert_string_equal(json_string_value(json_object_get(o, "secret")),
			    SECRET);
	key = hf_codec_key(HF_CODEC_XVOL_PREFIX "%s", v->name, NULL);
	assert_string_equal(key, "/volumes/hello-world-hello-0");

	model_with_nodes(&back);
	if (load_one(&back, key, text, &err))
		fail_msg("load: %s", err);
	assert_null(err);
	w = hf_model_xvol(&back, "hello-world-hello-0");
	assert_non_null(w);
	assert_string_equal(w->id, VOL_ID);
	assert_string_equal(w->service, "hello-world");
	assert_string_equal(w->instance, "hello-0");
	assert_int_equal(w->state, HF_XVOL_ACTIVE);
	assert_int_equal(w->size, (int64_t)3 << 30);
	assert_int_equal(w->repl, 3);
	assert_int_equal(w->min_sync, 2);
	assert_true(w->ro);
	assert_int_equal(w->epoch, 4);
	assert_string_equal(w->attached, "n1");
	assert_true(w->formatted);
	assert_string_equal(w->secret, SECRET);
	assert_int_equal(w->created, 1796419707439);
	assert_int_equal(w->replicas.len, 3);
	assert_string_equal(w->replicas.items[0].node, "n1");
	assert_string_equal(w->replicas.items[0].id, REP_A);
	assert_int_equal(w->replicas.items[0].state, HF_XREP_IN_SYNC);
	assert_int_equal(w->replicas.items[0].since, 1000);
	assert_null(w->replicas.items[0].why);
	assert_int_equal(w->replicas.items[1].state, HF_XREP_RESYNCING);
	assert_int_equal(w->replicas.items[1].resync_done, 1 << 20);
	assert_int_equal(w->replicas.items[1].resync_total, 4 << 20);
	assert_string_equal(w->replicas.items[1].why, "back after 12 s away");
	assert_int_equal(w->replicas.items[2].state, HF_XREP_DOWN);
	assert_string_equal(w->bk_last, "b0");
	assert_int_equal(w->bk_at, 1796419700000);
	assert_string_equal(w->bk_run.id, "b1");
	assert_string_equal(w->bk_run.snap, "backup-b1");
	assert_string_equal(w->bk_run.cred, "site");
	assert_string_equal(w->bk_run.node, "n2");
	assert_int_equal(w->bk_run.started, 1796419707000);
	assert_string_equal(w->bk_sched.to, "s3://vault/p");
	assert_int_equal(w->bk_sched.every_ms, 3600000);
	assert_int_equal(w->bk_sched.keep, 7);
	/* Written again, it is the same record. */
	again = hf_codec_xvol(w);
	if (!json_equal(o, again)) {
		char *t2 = dump(again);

		fail_msg("round trip changed the record:\n%s\n%s", text, t2);
	}
	json_decref(again);
	json_decref(o);
	free(text);
	free(key);

	/* A KEPT volume never attached: instance and attached null. */
	v = full_volume(&m, "data-0");
	v->state = HF_XVOL_KEPT;
	free(v->instance);
	v->instance = NULL;
	free(v->attached);
	v->attached = NULL;
	v->epoch = 0;
	v->formatted = false;
	v->ro = false;
	o = hf_codec_xvol(v);
	text = dump(o);
	if (load_one(&back, "/volumes/data-0", text, &err))
		fail_msg("load: %s", err);
	w = hf_model_xvol(&back, "data-0");
	assert_int_equal(w->state, HF_XVOL_KEPT);
	assert_null(w->instance);
	assert_null(w->attached);
	assert_int_equal(w->epoch, 0);
	again = hf_codec_xvol(w);
	assert_true(json_equal(o, again));
	json_decref(again);
	json_decref(o);
	free(text);
	hf_model_release(&back);
	hf_model_release(&m);
}

/* A name the key escapes reads back as itself. */
static void test_escaped_name(void **state)
{
	struct hf_model m, back;
	struct hf_xvol *v;
	json_t *o;
	char *text, *key, *err = NULL;

	(void)state;
	model_with_nodes(&m);
	v = full_volume(&m, "100%-data-0");
	o = hf_codec_xvol(v);
	text = dump(o);
	key = hf_codec_key(HF_CODEC_XVOL_PREFIX "%s", v->name, NULL);
	assert_string_equal(key, "/volumes/100%25-data-0");
	model_with_nodes(&back);
	if (load_one(&back, key, text, &err))
		fail_msg("load: %s", err);
	assert_non_null(hf_model_xvol(&back, "100%-data-0"));
	json_decref(o);
	free(text);
	free(key);
	hf_model_release(&back);
	hf_model_release(&m);
}

/* ------------------------------------------------------------------ */
/* The API's form                                                       */

static json_t *rep_get(json_t *reps, size_t i, const char *key)
{
	return json_object_get(json_array_get(reps, i), key);
}

static void test_api_json_has_no_secret(void **state)
{
	struct hf_model m;
	struct hf_xvol *v;
	json_t *o, *reps, *st;
	char *text, *store;

	(void)state;
	model_with_nodes(&m);
	v = full_volume(&m, "hello-world-hello-0");
	o = hf_xvol_to_json(v);
	text = dump(o);
	/* Nowhere, under no key, in no form a reader could use. */
	assert_null(strstr(text, SECRET));
	assert_null(strstr(text, "5ec7e75ec7e7"));
	assert_null(strstr(text, "\"secret\""));
	/* ... whereas the store's form, built from the same record, has it. */
	st = hf_codec_xvol(v);
	store = dump(st);
	json_decref(st);
	assert_non_null(strstr(store, SECRET));
	free(store);

	/* The rest of the record is there, and what the API adds. */
	assert_string_equal(json_string_value(json_object_get(o, "name")),
			    "hello-world-hello-0");
	assert_string_equal(json_string_value(json_object_get(o, "state")),
			    "active");
	assert_int_equal(json_integer_value(json_object_get(o, "epoch")), 4);
	assert_string_equal(json_string_value(json_object_get(o, "attached")),
			    "n1");
	assert_int_equal(json_integer_value(json_object_get(o, "in_sync")), 1);
	assert_true(json_is_true(json_object_get(o, "degraded")));
	reps = json_object_get(o, "replicas");
	assert_int_equal(json_array_size(reps), 3);
	assert_string_equal(json_string_value(rep_get(reps, 0, "state")),
			    "in_sync");
	assert_true(json_is_null(rep_get(reps, 0, "percent")));
	assert_int_equal(json_integer_value(rep_get(reps, 1, "percent")), 25);
	assert_string_equal(json_string_value(rep_get(reps, 2, "why")),
			    "no answer in 3 s");
	json_decref(o);
	free(text);

	/* All in sync: not degraded. */
	for (size_t i = 0; i < v->replicas.len; i++)
		v->replicas.items[i].state = HF_XREP_IN_SYNC;
	o = hf_xvol_to_json(v);
	assert_int_equal(json_integer_value(json_object_get(o, "in_sync")), 3);
	assert_true(json_is_false(json_object_get(o, "degraded")));
	text = dump(o);
	assert_null(strstr(text, SECRET));
	free(text);
	json_decref(o);
	hf_model_release(&m);
}

/* ------------------------------------------------------------------ */
/* Damaged records                                                      */

/* Applies one damage to a valid record (the full volume's). */
typedef void (*damage_fn)(json_t *o);

static void set_int(json_t *o, const char *k, json_int_t v)
{
	json_object_set_new(o, k, json_integer(v));
}

static void set_str(json_t *o, const char *k, const char *v)
{
	json_object_set_new(o, k, json_string(v));
}

static json_t *rep(json_t *o, size_t i)
{
	return json_array_get(json_object_get(o, "replicas"), i);
}

static void d_no_secret(json_t *o) { json_object_del(o, "secret"); }
static void d_size_str(json_t *o) { set_str(o, "size", "1G"); }
static void d_size_zero(json_t *o) { set_int(o, "size", 0); }
static void d_state(json_t *o) { set_str(o, "state", "ACTIVE"); }
static void d_rep_state(json_t *o) { set_str(rep(o, 1), "state", "in sync"); }
static void d_repl_0(json_t *o) { set_int(o, "repl", 0); }
static void d_repl_4(json_t *o) { set_int(o, "repl", 4); }
static void d_min_sync(json_t *o) { set_int(o, "min_sync", 4); }
static void d_min_sync_0(json_t *o) { set_int(o, "min_sync", 0); }
static void d_epoch_neg(json_t *o) { set_int(o, "epoch", -1); }
static void d_attached_epoch_0(json_t *o)
{
	set_int(o, "epoch", 0);
	json_object_set_new(o, "formatted", json_false());
}
static void d_formatted_epoch_0(json_t *o)
{
	set_int(o, "epoch", 0);
	json_object_set_new(o, "attached", json_null());
}
static void d_active_no_instance(json_t *o)
{
	json_object_set_new(o, "instance", json_null());
}
static void d_kept_instance(json_t *o) { set_str(o, "state", "kept"); }
static void d_empty_service(json_t *o) { set_str(o, "service", ""); }
static void d_bad_id(json_t *o) { set_str(o, "id", "3F2A9C0E1B7D4E55"); }
static void d_bad_rep_id(json_t *o) { set_str(rep(o, 2), "id", "x"); }
static void d_secret_short(json_t *o) { set_str(o, "secret", "5ec7e7"); }
static void d_secret_odd(json_t *o)
{
	set_str(o, "secret", SECRET "a");
}
static void d_secret_upper(json_t *o)
{
	set_str(o, "secret", "5EC7E75EC7E75EC7E75EC7E75EC7E75E");
}
static void d_dup_rep_id(json_t *o) { set_str(rep(o, 2), "id", REP_A); }
static void d_two_on_node(json_t *o) { set_str(rep(o, 2), "node", "n1"); }
static void d_unknown_node(json_t *o) { set_str(rep(o, 1), "node", "n9"); }
static void d_unknown_attached(json_t *o) { set_str(o, "attached", "n7"); }
static void d_rep_not_obj(json_t *o)
{
	json_array_append_new(json_object_get(o, "replicas"),
			      json_string("n2"));
}
static void d_rep_no_node(json_t *o) { json_object_del(rep(o, 0), "node"); }
static void d_negative_resync(json_t *o)
{
	set_int(rep(o, 1), "resync_done", -5);
}
static void d_replicas_obj(json_t *o)
{
	json_object_set_new(o, "replicas", json_object());
}
static void d_name_slash(json_t *o) { set_str(o, "name", "a/b"); }

static const struct {
	const char *what;
	damage_fn damage;
	const char *key; /* NULL: the volume's own */
	const char *want; /* in the message, after the key */
} damaged[] = {
    {"secret missing", d_no_secret, NULL, "secret is missing"},
    {"size as text", d_size_str, NULL, "size is not an integer"},
    {"size 0", d_size_zero, NULL, "size 0 is not a number of bytes"},
    {"unknown state", d_state, NULL, "state 'ACTIVE' is not a volume state"},
    {"unknown replica state", d_rep_state, NULL,
     "replicas[1].state 'in sync' is not a replica state"},
    {"repl 0", d_repl_0, NULL, "repl 0 is not 1 to 3"},
    {"repl 4", d_repl_4, NULL, "repl 4 is not 1 to 3"},
    {"min_sync over repl", d_min_sync, NULL,
     "min_sync 4 is not 1 to repl (3)"},
    {"min_sync 0", d_min_sync_0, NULL, "min_sync 0 is not 1 to repl (3)"},
    {"negative epoch", d_epoch_neg, NULL, "epoch -1 is negative"},
    {"attached at epoch 0", d_attached_epoch_0, NULL,
     "it is attached on 'n1' at epoch 0"},
    {"formatted at epoch 0", d_formatted_epoch_0, NULL,
     "it is formatted at epoch 0"},
    {"active without instance", d_active_no_instance, NULL,
     "an active volume has no instance"},
    {"kept with instance", d_kept_instance, NULL,
     "a kept volume names instance 'hello-0'"},
    {"empty service", d_empty_service, NULL, "service is empty"},
    {"id in capitals", d_bad_id, NULL,
     "id '3F2A9C0E1B7D4E55' is not a volume id"},
    {"replica id", d_bad_rep_id, NULL,
     "replicas[2].id 'x' is not a replica id"},
    {"secret too short", d_secret_short, NULL,
     "secret is not a volume key"},
    {"secret of half a byte", d_secret_odd, NULL,
     "secret is not a volume key"},
    {"secret in capitals", d_secret_upper, NULL,
     "secret is not a volume key"},
    {"one replica id twice", d_dup_rep_id, NULL,
     "replicas[0] and [2] have one id '" REP_A "'"},
    {"two live replicas on a node", d_two_on_node, NULL,
     "replicas[0] and [2] are both on node 'n1'"},
    {"replica on an unknown node", d_unknown_node, NULL,
     "a replica is on node 'n9', which the store does not hold"},
    {"attached on an unknown node", d_unknown_attached, NULL,
     "its attachment is on node 'n7', which the store does not hold"},
    {"replica not an object", d_rep_not_obj, NULL,
     "replicas[3] is not a JSON object"},
    {"replica without node", d_rep_no_node, NULL,
     "replicas[0].node is missing"},
    {"negative resync", d_negative_resync, NULL,
     "replicas[1]: resync byte counts are negative"},
    {"replicas an object", d_replicas_obj, NULL,
     "replicas is not an array"},
    {"name with a slash", d_name_slash, "/volumes/a%2Fb",
     "name 'a/b' cannot name a volume"},
    {"name not the key's", NULL, "/volumes/hello-world-hello-1",
     "its name is 'hello-world-hello-0', but its key says "
     "'hello-world-hello-1'"},
};

static void test_damaged(void **state)
{
	(void)state;
	for (size_t i = 0; i < HF_ARRAY_LEN(damaged); i++) {
		struct hf_model m;
		json_t *o;
		const char *key = damaged[i].key
				      ? damaged[i].key
				      : "/volumes/hello-world-hello-0";
		char *text, *err = NULL, *want;
		int rc;

		model_with_nodes(&m);
		o = hf_codec_xvol(full_volume(&m, "hello-world-hello-0"));
		hf_model_release(&m);
		if (damaged[i].damage)
			damaged[i].damage(o);
		text = dump(o);
		json_decref(o);
		model_with_nodes(&m);
		rc = load_one(&m, key, text, &err);
		want = hf_xasprintf("the store's record %s is damaged: %s", key,
				    damaged[i].want);
		if (rc != HF_EINVAL || !err || !strstr(err, want))
			fail_msg("%s: want HF_EINVAL with \"%s\", got %d "
				 "\"%s\"",
				 damaged[i].what, want, rc,
				 err ? err : "(none)");
		/* A message never quotes the volume's key. */
		if (strstr(err, "5ec7e7"))
			fail_msg("%s: the message shows the secret: %s",
				 damaged[i].what, err);
		/* The damaged record was not read as something else. */
		assert_null(hf_model_xvol(&m, "hello-world-hello-0"));
		assert_int_equal(m.xvols.len, 0);
		free(want);
		free(err);
		free(text);
		hf_model_release(&m);
	}
}

/* What each damage above changes is otherwise fine: the checks are not
 * refusing the base record. Also what is allowed that looks close. */
static void test_allowed(void **state)
{
	struct hf_model m;
	json_t *o;
	char *text, *err = NULL;

	(void)state;
	model_with_nodes(&m);
	o = hf_codec_xvol(full_volume(&m, "hello-world-hello-0"));
	hf_model_release(&m);
	/* A replica being deleted may share a node with a live one. */
	set_str(rep(o, 2), "node", "n1");
	set_str(rep(o, 2), "state", "deleting");
	/* A deleting volume may still name its instance. */
	set_str(o, "state", "deleting");
	/* Optional fields may be absent. */
	json_object_del(o, "ro");
	json_object_del(o, "created");
	json_object_del(rep(o, 0), "why");
	json_object_del(rep(o, 0), "since");
	text = dump(o);
	json_decref(o);
	model_with_nodes(&m);
	if (load_one(&m, "/volumes/hello-world-hello-0", text, &err))
		fail_msg("refused: %s", err);
	assert_int_equal(hf_model_xvol(&m, "hello-world-hello-0")->state,
			 HF_XVOL_DELETING);
	assert_false(hf_model_xvol(&m, "hello-world-hello-0")->ro);
	free(text);
	hf_model_release(&m);
}

/*
 * Not JSON: the message says where, not the text there, which may be the
 * secret's (jansson quotes the token it stopped in when it is short).
 */
static void test_not_json(void **state)
{
	static const char *const texts[] = {
	    /* A control character inside the secret's string. */
	    "{\"name\":\"v-0\",\"secret\":\"5ec7e75ec7e7\x01"
	    "\"}",
	    /* The secret without its quotes. */
	    "{\"name\":\"v-0\",\"secret\":5ec7e75ec7e7}",
	    /* Cut short inside it. */
	    "{\"name\":\"v-0\",\"secret\":\"5ec7e75ec7e7",
	};
	struct hf_model m;
	char *err = NULL;

	(void)state;
	model_with_nodes(&m);
	for (size_t i = 0; i < HF_ARRAY_LEN(texts); i++) {
		assert_int_equal(load_one(&m, "/volumes/v-0", texts[i], &err),
				 HF_EINVAL);
		assert_non_null(strstr(err, "the store's record /volumes/v-0 "
					    "is damaged: not valid JSON"));
		if (strstr(err, "5ec7") || strstr(err, "5e'"))
			fail_msg("the message shows the secret: %s", err);
		free(err);
	}
	hf_model_release(&m);
}

/* Keys: one segment under the prefix; one record per name. */
static void test_keys(void **state)
{
	struct hf_model m;
	json_t *o;
	char *text, *err = NULL;
	struct hf_codec_rec recs[2];

	(void)state;
	model_with_nodes(&m);
	o = hf_codec_xvol(full_volume(&m, "a%b"));
	hf_model_release(&m);
	text = dump(o);
	json_decref(o);

	model_with_nodes(&m);
	assert_int_equal(load_one(&m, "/volumes/x/a%25b", text, &err),
			 HF_EINVAL);
	assert_string_equal(err, "the store's key /volumes/x/a%25b is not a "
				 "volume record (/volumes/<name>)");
	free(err);
	assert_int_equal(load_one(&m, "/volumes/", text, &err), HF_EINVAL);
	assert_non_null(strstr(err, "is not a volume record"));
	free(err);

	/* "%25" and a bare "%" both unescape to "%". */
	recs[0] = (struct hf_codec_rec){"/volumes/a%25b", text, strlen(text)};
	recs[1] = (struct hf_codec_rec){"/volumes/a%b", text, strlen(text)};
	assert_int_equal(hf_codec_load_xvols(&m, recs, 2, &err), HF_EINVAL);
	assert_string_equal(err, "the store's record /volumes/a%b is damaged: "
				 "another record names volume 'a%b' too");
	free(err);
	free(text);
	hf_model_release(&m);
}

/* ------------------------------------------------------------------ */
/* A server loading its store                                           */

static void srv_init(struct hf_srv *s, struct hf_store *store)
{
	memset(s, 0, sizeof(*s));
	s->store = store;
	pthread_mutex_init(&s->mu, NULL);
}

static void srv_fini(struct hf_srv *s)
{
	hf_state_release(s);
	pthread_mutex_destroy(&s->mu);
}

static void put(struct hf_store *store, const char *key, const char *value)
{
	struct hf_store_txn txn = HF_STORE_TXN_INIT;

	hf_store_txn_put(&txn, key, value, strlen(value));
	assert_int_equal(hf_store_txn(store, &txn, NULL), 0);
	hf_store_txn_release(&txn);
}

static void put_json(struct hf_store *store, const char *key, json_t *o)
{
	char *text = dump(o);

	put(store, key, text);
	free(text);
	json_decref(o);
}

static void test_server_load(void **state)
{
	struct hf_store *store;
	struct hf_model m;
	struct hf_srv s;
	struct hf_xvol *v;
	char *err = NULL;

	(void)state;
	assert_int_equal(hf_store_open("mem:", &store), 0);
	model_with_nodes(&m);
	for (size_t i = 0; i < m.nodes.len; i++) {
		char *key =
		    hf_codec_key("/nodes/%s", m.nodes.items[i]->id, NULL);

		put_json(store, key, hf_codec_node(&m, m.nodes.items[i]));
		free(key);
	}
	put_json(store, "/volumes/hello-world-hello-0",
		 hf_codec_xvol(full_volume(&m, "hello-world-hello-0")));
	hf_model_release(&m);

	srv_init(&s, store);
	if (hf_state_load(&s, &err))
		fail_msg("load: %s", err);
	v = hf_model_xvol(&s.model, "hello-world-hello-0");
	assert_non_null(v);
	assert_int_equal(v->epoch, 4);
	assert_int_equal(v->replicas.len, 3);
	assert_string_equal(v->secret, SECRET);
	srv_fini(&s);

	/* A damaged volume fails the load, which says why and keeps nothing. */
	put(store, "/volumes/data-0", "{\"name\":\"data-0\"}");
	srv_init(&s, store);
	assert_int_equal(hf_state_load(&s, &err), HF_EINVAL);
	assert_string_equal(err, "the store's record /volumes/data-0 is "
				 "damaged: id is missing");
	assert_int_equal(s.model.xvols.len, 0);
	assert_int_equal(s.model.nodes.len, 0);
	free(err);
	srv_fini(&s);
	hf_store_close(store);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_state_names),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_lookups),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_escaped_name),
	    cmocka_unit_test(test_api_json_has_no_secret),
	    cmocka_unit_test(test_damaged),
	    cmocka_unit_test(test_allowed),
	    cmocka_unit_test(test_not_json),
	    cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_server_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
