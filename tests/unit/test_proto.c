/*
 * test_proto.c - the server <-> agent protocol (proto/proto.h) and the
 * task lifecycle table (task/lifecycle.h): docs/protocol.md's examples
 * decode to what they say, what is encoded decodes back, bad messages get
 * a sentence naming the place, and the table's cells act as the agent and
 * the server always did.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/util.h"
#include "proto/proto.h"
#include "task/lifecycle.h"

/* ---- the lifecycle table ---------------------------------------------- */

static void expect_step(enum hf_task_state s, enum hf_task_event ev,
			enum hf_task_side side, enum hf_task_action act,
			enum hf_task_state next)
{
	struct hf_task_step st = hf_task_step(s, ev, side);

	if (st.act != act || st.next != next)
		fail_msg("%s x event %d (%s side): got action %d -> %s, want "
			 "%d -> %s",
			 hf_task_state_name(s), (int)ev,
			 side == HF_TASK_NODE ? "node" : "record", (int)st.act,
			 hf_task_state_name(st.next), (int)act,
			 hf_task_state_name(next));
}

static void test_lifecycle_table(void **state)
{
	(void)state;
	/* Starting and running, both sides alike. */
	for (int side = HF_TASK_NODE; side <= HF_TASK_RECORD; side++) {
		expect_step(HF_TS_STAGING, HF_TEV_STARTING, side,
			    HF_TACT_START, HF_TS_STARTING);
		expect_step(HF_TS_STAGING, HF_TEV_RUNNING, side, HF_TACT_RUN,
			    HF_TS_RUNNING);
		expect_step(HF_TS_STARTING, HF_TEV_STARTING, side,
			    HF_TACT_UPDATE, HF_TS_STARTING);
		expect_step(HF_TS_STARTING, HF_TEV_RUNNING, side, HF_TACT_RUN,
			    HF_TS_RUNNING);
		expect_step(HF_TS_RUNNING, HF_TEV_RUNNING, side,
			    HF_TACT_UPDATE, HF_TS_RUNNING);
		/* Reports can be late: a running task never goes back. */
		expect_step(HF_TS_RUNNING, HF_TEV_STARTING, side,
			    HF_TACT_IGNORE, HF_TS_RUNNING);
		expect_step(HF_TS_RUNNING, HF_TEV_STOPPED, side, HF_TACT_END,
			    HF_TS_KILLED);
		expect_step(HF_TS_STAGING, HF_TEV_LOST, side, HF_TACT_END,
			    HF_TS_LOST);
		/* A restart in place goes on, live, from any live state. */
		expect_step(HF_TS_RUNNING, HF_TEV_RESTARTING, side,
			    HF_TACT_RESTART, HF_TS_STARTING);
		expect_step(HF_TS_STARTING, HF_TEV_RESTARTING, side,
			    HF_TACT_RESTART, HF_TS_STARTING);
		expect_step(HF_TS_STAGING, HF_TEV_RESTARTING, side,
			    HF_TACT_RESTART, HF_TS_STARTING);
	}
	/* Positions of a launch restarted in place only grow. */
	assert_true(hf_task_restart_pos(0, false) < hf_task_restart_pos(0, true));
	assert_true(hf_task_restart_pos(0, true) < hf_task_restart_pos(1, false));
	assert_true(hf_task_restart_pos(1, false) < hf_task_restart_pos(1, true));
	/* How an exit ends it depends on the side. */
	expect_step(HF_TS_RUNNING, HF_TEV_EXIT_OK, HF_TASK_NODE, HF_TACT_END,
		    HF_TS_EXITED);
	expect_step(HF_TS_RUNNING, HF_TEV_EXIT_FAIL, HF_TASK_NODE, HF_TACT_END,
		    HF_TS_EXITED);
	expect_step(HF_TS_RUNNING, HF_TEV_EXIT_OK, HF_TASK_RECORD, HF_TACT_END,
		    HF_TS_FINISHED);
	expect_step(HF_TS_RUNNING, HF_TEV_EXIT_FAIL, HF_TASK_RECORD,
		    HF_TACT_END, HF_TS_FAILED);
	expect_step(HF_TS_STAGING, HF_TEV_FAILED_TO_START, HF_TASK_NODE,
		    HF_TACT_END, HF_TS_FAILED_TO_START);
	expect_step(HF_TS_STARTING, HF_TEV_FAILED_TO_START, HF_TASK_RECORD,
		    HF_TACT_END, HF_TS_FAILED);
	/* An ended launch ignores everything: reports are idempotent. */
	for (int s = HF_TS_FINISHED; s < HF_TS_COUNT; s++)
		for (int ev = 0; ev < HF_TEV_COUNT; ev++) {
			expect_step(s, ev, HF_TASK_NODE, HF_TACT_IGNORE, s);
			expect_step(s, ev, HF_TASK_RECORD, HF_TACT_IGNORE, s);
		}
	/* Out of range: ignored, never read past the table. */
	expect_step(HF_TS_COUNT, HF_TEV_RUNNING, HF_TASK_NODE, HF_TACT_IGNORE,
		    HF_TS_COUNT);
	expect_step(HF_TS_RUNNING, HF_TEV_COUNT, HF_TASK_NODE, HF_TACT_IGNORE,
		    HF_TS_RUNNING);
}

static void test_lifecycle_events(void **state)
{
	(void)state;
	assert_int_equal(hf_task_event_of(HF_TS_STARTING, false, false),
			 HF_TEV_STARTING);
	assert_int_equal(hf_task_event_of(HF_TS_RUNNING, false, true),
			 HF_TEV_RUNNING);
	assert_int_equal(hf_task_event_of(HF_TS_EXITED, true, false),
			 HF_TEV_EXIT_OK);
	assert_int_equal(hf_task_event_of(HF_TS_EXITED, false, false),
			 HF_TEV_EXIT_FAIL);
	/* An exit after the stop this side ordered is that stop. */
	assert_int_equal(hf_task_event_of(HF_TS_EXITED, true, true),
			 HF_TEV_STOPPED);
	assert_int_equal(hf_task_event_of(HF_TS_KILLED, false, true),
			 HF_TEV_STOPPED);
	/* Killed when nobody asked: a failure. */
	assert_int_equal(hf_task_event_of(HF_TS_KILLED, false, false),
			 HF_TEV_EXIT_FAIL);
	/* A launch that never started fails even when a stop was asked. */
	assert_int_equal(hf_task_event_of(HF_TS_FAILED_TO_START, false, true),
			 HF_TEV_FAILED_TO_START);
	assert_int_equal(hf_task_event_of(HF_TS_LOST, false, false),
			 HF_TEV_LOST);
}

static void test_lifecycle_names(void **state)
{
	static const char *const wire[] = {"starting", "running", "exited",
					   "failed-to-start", "killed", "lost"};
	static const char *const record[] = {"STAGING",  "STARTING", "RUNNING",
					     "FINISHED", "FAILED",   "KILLED",
					     "LOST"};
	enum hf_task_state s;

	(void)state;
	for (size_t i = 0; i < HF_ARRAY_LEN(wire); i++) {
		assert_true(hf_task_state_from_wire(wire[i], &s));
		assert_string_equal(hf_task_state_wire(s), wire[i]);
	}
	assert_true(hf_task_state_from_wire("starting", &s));
	assert_int_equal(s, HF_TS_STARTING);
	assert_string_equal(hf_task_state_wire(HF_TS_STAGING), "starting");
	assert_false(hf_task_state_from_wire("RUNNING", &s));
	assert_false(hf_task_state_from_wire(NULL, &s));
	for (size_t i = 0; i < HF_ARRAY_LEN(record); i++) {
		assert_true(hf_task_state_parse(record[i], &s));
		assert_int_equal(s, (enum hf_task_state)i);
		assert_string_equal(hf_task_state_name(s), record[i]);
	}
	assert_false(hf_task_state_parse("running", &s));
	assert_string_equal(hf_task_state_name(HF_TS_COUNT), "UNKNOWN");
	assert_string_equal(hf_task_state_wire(HF_TS_FINISHED), "unknown");
	assert_true(hf_task_state_live(HF_TS_STAGING));
	assert_true(hf_task_state_live(HF_TS_RUNNING));
	assert_true(hf_task_state_final(HF_TS_EXITED));
	assert_true(hf_task_state_final(HF_TS_FAILED));
}

/* ---- docs/protocol.md ------------------------------------------------- */

/* The first ```json block after heading in docs/protocol.md. */
static json_t *doc_example(const char *heading)
{
	const char *root = getenv("HF_TEST_ROOT");
	char *path = hf_xasprintf("%s/docs/protocol.md", root ? root : ".");
	char *text = NULL, *at, *start, *end;
	json_error_t jerr;
	json_t *j;

	if (hf_read_file(path, 1 << 20, &text, NULL))
		fail_msg("cannot read %s", path);
	at = strstr(text, heading);
	if (!at)
		fail_msg("%s has no \"%s\"", path, heading);
	start = strstr(at, "```json\n");
	assert_non_null(start);
	start += 8;
	end = strstr(start, "```");
	assert_non_null(end);
	j = json_loadb(start, (size_t)(end - start), 0, &jerr);
	if (!j)
		fail_msg("%s, after \"%s\": line %d: %s", path, heading,
			 jerr.line, jerr.text);
	free(text);
	free(path);
	return j;
}

static void test_doc_sync_request(void **state)
{
	json_t *j = doc_example("## `POST /v1/agent/sync`");
	struct hf_proto_sync_req rq;
	const struct hf_proto_report *r;
	char *err = NULL;

	(void)state;
	hf_proto_sync_req_init(&rq);
	if (hf_proto_sync_req_decode(j, &rq, &err))
		fail_msg("docs/protocol.md's sync request: %s", err);
	assert_string_equal(rq.node_id, "node-1");
	assert_string_equal(rq.cluster, "1f3a9c0d2b7e4a5f8c6d1e2f3a4b5c6d");
	assert_int_equal(rq.seq, 1700000000123LL);
	assert_int_equal(rq.generation, 41);
	assert_true(rq.wait == 10);
	assert_true(rq.has_info && rq.has_tasks);
	assert_string_equal(rq.info.hostname, "host-a");
	assert_string_equal(hf_kvlist_get(&rq.info.attributes, "zone"), "a");
	assert_true(rq.info.cpus == 8);
	assert_int_equal(rq.info.memory_mb, 16000);
	assert_int_equal(rq.info.ports.len, 1);
	assert_int_equal(rq.info.ports.items[0].end, 20000);
	assert_int_equal(rq.info.cgroups_version, 2);
	assert_true(rq.info.has_isolation && rq.info.mount_namespaces);
	assert_string_equal(rq.info.hidden.items[0], "/var/lib/holdfast");
	assert_true(rq.info.has_storage);
	assert_string_equal(rq.info.storage.pool, "/var/lib/holdfast/pool");
	assert_int_equal(rq.info.storage.capacity, 107374182400LL);
	assert_int_equal(rq.info.storage.provisioned, 0);
	assert_int_equal(rq.info.storage.free, 107374182400LL);
	assert_int_equal(rq.info.storage.port, 7446);
	assert_int_equal(rq.tasks.len, 1);
	r = &rq.tasks.items[0];
	assert_int_equal(r->state, HF_TS_RUNNING);
	assert_int_equal(r->pid, 1234);
	assert_false(r->has_exit_code);
	assert_true(r->ready);
	assert_int_equal(r->healthy, 1);
	assert_null(r->message);
	assert_string_equal(rq.deleted_volumes.items[0],
			    "hello-world/world-1");
	assert_true(rq.brief);
	hf_proto_sync_req_release(&rq);
	json_decref(j);
}

static void test_doc_launch_order(void **state)
{
	json_t *j = doc_example("### Launch order"), *back;
	struct hf_proto_launch l;
	const char *key;
	json_t *v;
	char *err = NULL;

	(void)state;
	hf_proto_launch_init(&l);
	if (hf_proto_launch_decode(j, &l, &err))
		fail_msg("docs/protocol.md's launch order: %s", err);
	assert_string_equal(l.service, "hello-world");
	assert_string_equal(l.cmd, "echo hello >> hello-container-path/output "
				   "&& sleep 1000");
	assert_string_equal(hf_kvlist_get(&l.env, "PORT_HTTP"), "10001");
	assert_true(l.cpus == 0.1 && l.memory_mb == 252);
	assert_true(l.limit_cpus == HF_PROTO_LIMIT_NONE);
	assert_int_equal(l.rlimits.len, 1);
	assert_int_equal(l.rlimits.items[0].soft, 128000);
	assert_true(l.kill_grace_period == 3);
	assert_int_equal(hf_proto_launch_port(&l, "http"), 10001);
	assert_int_equal(hf_proto_launch_port(&l, "nope"), -1);
	assert_string_equal(l.volumes.items[0].type, "ROOT");
	assert_int_equal(l.volumes.items[0].size_mb, 25);
	assert_string_equal(l.configs.items[0].tmpl, "port={{PORT_HTTP}}\n");
	assert_string_equal(l.uris.items[0], "file:///opt/artifacts/app.tgz");
	assert_int_equal(l.health.kind, HF_CHECK_CMD);
	assert_true(l.health.grace_period == 30);
	assert_int_equal(l.readiness.kind, HF_CHECK_NONE);
	assert_null(l.user);
	assert_false(l.privileged || l.paused);
	/* What the server writes has every key the documentation shows. */
	back = hf_proto_launch_encode(&l);
	json_object_foreach(j, key, v)
		if (!json_object_get(back, key))
			fail_msg("the encoded launch order lacks \"%s\"", key);
	json_object_foreach(back, key, v)
		if (!json_object_get(j, key))
			fail_msg("docs/protocol.md's launch order lacks \"%s\"",
				 key);
	json_decref(back);
	hf_proto_launch_release(&l);
	json_decref(j);
}

/* ---- round trips and errors ------------------------------------------- */

static void test_launch_round_trip(void **state)
{
	struct hf_proto_launch a, b;
	json_t *ja, *jb;
	char *err = NULL, *ta, *tb;

	(void)state;
	hf_proto_launch_init(&a);
	hf_proto_launch_init(&b);
	a.task_id = hf_xstrdup("web-0-server__1");
	a.cmd = hf_xstrdup("exec sleep 1000");
	hf_kvlist_set(&a.env, "A", "1");
	a.limit_cpus = HF_PROTO_LIMIT_UNLIMITED;
	a.limit_memory_mb = 512;
	a.kill_grace_period = 2.5;
	a.readiness.kind = HF_CHECK_TCP;
	a.readiness.port = hf_xstrdup("http");
	a.readiness.interval = 0.2;
	a.readiness.max_consecutive_failures = 3;
	{
		struct hf_proto_config *c = HF_VEC_PUSH(&a.configs);

		c->dest = hf_xstrdup("x.conf");
		/* A NUL inside survives. */
		c->tmpl = hf_xmalloc(4);
		memcpy(c->tmpl, "a\0b", 4);
		c->tmpl_len = 3;
	}
	hf_strlist_push(&a.capabilities, "CAP_NET_RAW");
	a.paused = true;
	a.restart.on = true;
	a.restart.backoff_base = 0.5;
	a.restart.backoff_max = 30;
	a.restart.reset_after = 120;
	a.restart.max = 7;
	ja = hf_proto_launch_encode(&a);
	assert_string_equal(json_string_value(json_object_get(ja, "limit_cpus")),
			    "unlimited");
	assert_true(json_is_null(json_object_get(ja, "health_check")));
	if (hf_proto_launch_decode(ja, &b, &err))
		fail_msg("%s", err);
	assert_int_equal(b.configs.items[0].tmpl_len, 3);
	assert_memory_equal(b.configs.items[0].tmpl, "a\0b", 3);
	assert_true(b.kill_grace_period == 2.5);
	assert_string_equal(b.readiness.port, "http");
	assert_true(b.restart.on && b.restart.backoff_base == 0.5 &&
		    b.restart.backoff_max == 30 && b.restart.reset_after == 120);
	assert_int_equal(b.restart.max, 7);
	jb = hf_proto_launch_encode(&b);
	ta = json_dumps(ja, JSON_SORT_KEYS | JSON_COMPACT);
	tb = json_dumps(jb, JSON_SORT_KEYS | JSON_COMPACT);
	assert_string_equal(ta, tb);
	free(ta);
	free(tb);
	json_decref(ja);
	json_decref(jb);
	hf_proto_launch_release(&a);
	hf_proto_launch_release(&b);
}

/* Decodes text as a sync request and expects err as the sentence. */
static void expect_req_error(const char *text, const char *want)
{
	json_t *j = json_loads(text, 0, NULL);
	struct hf_proto_sync_req rq;
	char *err = NULL;

	assert_non_null(j);
	hf_proto_sync_req_init(&rq);
	assert_int_equal(hf_proto_sync_req_decode(j, &rq, &err), HF_EINVAL);
	assert_non_null(err);
	assert_string_equal(err, want);
	free(err);
	hf_proto_sync_req_release(&rq);
	json_decref(j);
}

/* A detached volume's DR stream's end goes through the codec as sent. */
static void test_sync_dr_final(void **state)
{
	struct hf_proto_sync_req rq, back;
	struct hf_proto_dr_final *f;
	json_t *j;
	char *err = NULL;

	(void)state;
	hf_proto_sync_req_init(&rq);
	rq.node_id = hf_xstrdup("n1");
	f = HF_VEC_PUSH(&rq.dr_final);
	f->volume = hf_xstrdup("pg-db-0");
	f->epoch = 7;
	f->drained = true;
	j = hf_proto_sync_req_encode(&rq);
	hf_proto_sync_req_init(&back);
	assert_int_equal(hf_proto_sync_req_decode(j, &back, &err), 0);
	assert_int_equal(back.dr_final.len, 1);
	assert_string_equal(back.dr_final.items[0].volume, "pg-db-0");
	assert_int_equal(back.dr_final.items[0].epoch, 7);
	assert_true(back.dr_final.items[0].drained);
	hf_proto_sync_req_release(&back);
	json_decref(j);
	/* A volume is required; an epoch is never negative. */
	j = json_pack("{s:s, s:[{s:I}]}", "node_id", "n1", "dr_final", "epoch",
		      (json_int_t)1);
	hf_proto_sync_req_init(&back);
	assert_int_equal(hf_proto_sync_req_decode(j, &back, &err), HF_EINVAL);
	assert_non_null(strstr(err, "dr_final"));
	free(err);
	err = NULL;
	hf_proto_sync_req_release(&back);
	json_decref(j);
	j = json_pack("{s:s, s:[{s:s, s:I}]}", "node_id", "n1", "dr_final",
		      "volume", "v", "epoch", (json_int_t)-1);
	hf_proto_sync_req_init(&back);
	assert_int_equal(hf_proto_sync_req_decode(j, &back, &err), HF_EINVAL);
	free(err);
	hf_proto_sync_req_release(&back);
	json_decref(j);
	hf_proto_sync_req_release(&rq);
}

static void test_sync_request_errors(void **state)
{
	(void)state;
	expect_req_error("{\"wait\": 0}", "the sync needs a node_id");
	expect_req_error("{\"node_id\": 3}", "node_id: must be a string");
	expect_req_error("{\"node_id\": \"n\", \"tasks\": {}}",
			 "tasks: must be an array");
	expect_req_error("{\"node_id\": \"n\", \"tasks\": [{\"task_id\": "
			 "\"a\", \"state\": \"running\"}, {\"task_id\": \"b\", "
			 "\"state\": \"exited\", \"exit_code\": \"3\"}]}",
			 "tasks[1].exit_code: must be an integer or null");
	expect_req_error("{\"node_id\": \"n\", \"tasks\": [{\"state\": "
			 "\"running\"}]}",
			 "tasks[0].task_id: is missing");
	expect_req_error("{\"node_id\": \"n\", \"info\": {\"resources\": "
			 "{\"ports\": [{\"begin\": \"x\"}]}}}",
			 "info.resources.ports[0].begin: must be an integer");
	expect_req_error("{\"node_id\": \"n\", \"deleted_volumes\": [1]}",
			 "deleted_volumes[0]: must be a string");
	expect_req_error("{\"node_id\": \"n\", \"info\": {\"storage\": 5}}",
			 "info.storage: must be an object");
	expect_req_error("{\"node_id\": \"n\", \"info\": {\"storage\": "
			 "{\"pool\": \"/p\", \"used\": -1}}}",
			 "info.storage.used: must not be negative");
	expect_req_error("{\"node_id\": \"n\", \"info\": {\"storage\": "
			 "{\"capacity\": 1.5}}}",
			 "info.storage.capacity: must be an integer");
	expect_req_error("{\"node_id\": \"n\", \"info\": {\"storage\": "
			 "{\"pool\": 7}}}",
			 "info.storage.pool: must be a string");
}

/* A node's pool: encoded when it has one, decoded back to the same. */
static void test_node_storage(void **state)
{
	struct hf_proto_node_info in, out;
	json_t *j, *again;
	char *err = NULL;

	(void)state;
	hf_proto_node_info_init(&in);
	j = hf_proto_node_info_encode(&in);
	/* Storage-less: no key at all, and none decoded. */
	assert_null(json_object_get(j, "storage"));
	hf_proto_node_info_init(&out);
	assert_int_equal(hf_proto_node_info_decode(j, &out, &err), 0);
	assert_false(out.has_storage);
	hf_proto_node_info_release(&out);
	json_decref(j);

	in.has_storage = true;
	in.storage.pool = hf_xstrdup("/srv/pool");
	in.storage.capacity = 10LL << 30;
	in.storage.provisioned = 3LL << 30;
	in.storage.used = 4096;
	in.storage.free = 9LL << 30;
	j = hf_proto_node_info_encode(&in);
	assert_int_equal(json_integer_value(json_object_get(
			     json_object_get(j, "storage"), "capacity")),
			 10LL << 30);
	hf_proto_node_info_init(&out);
	if (hf_proto_node_info_decode(j, &out, &err))
		fail_msg("%s", err);
	assert_true(out.has_storage);
	assert_string_equal(out.storage.pool, "/srv/pool");
	assert_int_equal(out.storage.capacity, 10LL << 30);
	assert_int_equal(out.storage.provisioned, 3LL << 30);
	assert_int_equal(out.storage.used, 4096);
	assert_int_equal(out.storage.free, 9LL << 30);
	again = hf_proto_node_info_encode(&out);
	assert_true(json_equal(j, again));
	json_decref(again);
	hf_proto_node_info_release(&out);
	json_decref(j);
	hf_proto_node_info_release(&in);

	/* null is storage-less; missing figures are 0. */
	j = json_loads("{\"storage\": null}", 0, NULL);
	hf_proto_node_info_init(&out);
	assert_int_equal(hf_proto_node_info_decode(j, &out, &err), 0);
	assert_false(out.has_storage);
	hf_proto_node_info_release(&out);
	json_decref(j);
	j = json_loads("{\"storage\": {\"pool\": \"/p\"}}", 0, NULL);
	hf_proto_node_info_init(&out);
	assert_int_equal(hf_proto_node_info_decode(j, &out, &err), 0);
	assert_true(out.has_storage);
	assert_int_equal(out.storage.capacity, 0);
	assert_int_equal(out.storage.used, 0);
	hf_proto_node_info_release(&out);
	json_decref(j);
}

static void test_sync_request_lenient(void **state)
{
	/* What older agents and the bench's simulated ones send. */
	json_t *j = json_loads(
	    "{\"node_id\": \"n\", \"seq\": 12.0, \"wait\": 0, \"tasks\": "
	    "[{\"task_id\": \"a\", \"state\": \"killed\", \"exit_code\": null, "
	    "\"signal\": 15, \"ready\": false}, {\"task_id\": \"b\", "
	    "\"state\": \"some-new-state\"}], \"future\": 1}",
	    0, NULL);
	struct hf_proto_sync_req rq;
	char *err = NULL;

	(void)state;
	hf_proto_sync_req_init(&rq);
	if (hf_proto_sync_req_decode(j, &rq, &err))
		fail_msg("%s", err);
	assert_int_equal(rq.seq, 12);
	assert_false(rq.has_info);
	assert_int_equal(rq.tasks.items[0].state, HF_TS_KILLED);
	assert_int_equal(rq.tasks.items[0].signal, 15);
	assert_false(hf_proto_report_exit_ok(&rq.tasks.items[0]));
	/* A state this build does not know: gone, as far as it can tell. */
	assert_int_equal(rq.tasks.items[1].state, HF_TS_LOST);
	hf_proto_sync_req_release(&rq);
	json_decref(j);
	/* No "tasks": the request says nothing of what is gone. */
	j = json_loads("{\"node_id\": \"n\"}", 0, NULL);
	hf_proto_sync_req_init(&rq);
	assert_int_equal(hf_proto_sync_req_decode(j, &rq, &err), 0);
	assert_false(rq.has_tasks);
	hf_proto_sync_req_release(&rq);
	json_decref(j);
}

static void test_sync_response(void **state)
{
	json_t *j = json_loads(
	    "{\"generation\": 7, \"tasks\": [{\"task_id\": \"ok__1\", \"cmd\": "
	    "\"true\"}, {\"task_id\": \"bad__1\", \"cmd\": \"true\", "
	    "\"health_check\": {\"kind\": \"udp\"}}, {\"cmd\": \"true\"}], "
	    "\"delete_volumes\": [\"s/p-0\"], \"cluster\": \"c1\"}",
	    0, NULL);
	struct hf_proto_sync_resp r;
	char *err = NULL;

	(void)state;
	hf_proto_sync_resp_init(&r);
	if (hf_proto_sync_resp_decode(j, &r, &err))
		fail_msg("%s", err);
	assert_int_equal(r.generation, 7);
	assert_int_equal(r.heartbeat_interval, 2);
	assert_string_equal(r.cluster, "c1");
	assert_int_equal(r.tasks.len, 3);
	assert_null(r.tasks.items[0].invalid);
	/* A bad order is kept for its id, with what is wrong with it. */
	assert_string_equal(r.tasks.items[1].task_id, "bad__1");
	assert_string_equal(r.tasks.items[1].invalid,
			    "health_check.kind: unknown kind \"udp\" (cmd, "
			    "http, tcp)");
	assert_null(r.tasks.items[2].task_id);
	assert_string_equal(r.tasks.items[2].invalid, "task_id: is missing");
	hf_proto_sync_resp_release(&r);
	json_decref(j);
	/* Without a generation there is no desired set. */
	j = json_loads("{\"tasks\": []}", 0, NULL);
	hf_proto_sync_resp_init(&r);
	assert_int_equal(hf_proto_sync_resp_decode(j, &r, &err), HF_EINVAL);
	assert_string_equal(err, "the answer has no generation");
	free(err);
	hf_proto_sync_resp_release(&r);
	json_decref(j);
}

/*
 * To a brief request, tasks it listed come as ids alone: they decode as
 * known with nothing else set, and encode back to the id alone.
 */
static void test_sync_response_known(void **state)
{
	json_t *j = json_loads(
	    "{\"generation\": 3, \"tasks\": [{\"task_id\": \"a__1\", "
	    "\"known\": true}, {\"task_id\": \"b__1\", \"cmd\": \"x\"}, "
	    "{\"known\": true}, {\"task_id\": \"c__1\", \"known\": 1}]}",
	    0, NULL);
	struct hf_proto_sync_resp r;
	struct hf_proto_sync_req rq;
	json_t *back;
	char *err = NULL;

	(void)state;
	hf_proto_sync_resp_init(&r);
	if (hf_proto_sync_resp_decode(j, &r, &err))
		fail_msg("%s", err);
	assert_int_equal(r.tasks.len, 4);
	assert_true(r.tasks.items[0].known);
	assert_null(r.tasks.items[0].invalid);
	assert_null(r.tasks.items[0].cmd);
	assert_string_equal(r.tasks.items[0].task_id, "a__1");
	assert_false(r.tasks.items[1].known);
	assert_string_equal(r.tasks.items[1].cmd, "x");
	/* "known" without an id, or not a boolean, is an invalid order. */
	assert_string_equal(r.tasks.items[2].invalid, "task_id: is missing");
	assert_string_equal(r.tasks.items[3].invalid,
			    "known: must be true or false");
	back = hf_proto_launch_encode(&r.tasks.items[0]);
	assert_int_equal(json_object_size(back), 2);
	assert_true(json_is_true(json_object_get(back, "known")));
	json_decref(back);
	hf_proto_sync_resp_release(&r);
	json_decref(j);
	/* brief round-trips; absent means full orders. */
	hf_proto_sync_req_init(&rq);
	rq.node_id = hf_xstrdup("n1");
	rq.brief = true;
	back = hf_proto_sync_req_encode(&rq);
	hf_proto_sync_req_release(&rq);
	hf_proto_sync_req_init(&rq);
	if (hf_proto_sync_req_decode(back, &rq, &err))
		fail_msg("%s", err);
	assert_true(rq.brief);
	hf_proto_sync_req_release(&rq);
	json_object_del(back, "brief");
	hf_proto_sync_req_init(&rq);
	if (hf_proto_sync_req_decode(back, &rq, &err))
		fail_msg("%s", err);
	assert_false(rq.brief);
	hf_proto_sync_req_release(&rq);
	json_decref(back);
}

/*
 * Unchanged reports go as ids ("same") with the server's reports_epoch;
 * the answer says its epoch and asks for every report again ("resend").
 * A report equals its copy, and no longer once any field differs.
 */
static void test_sync_same_reports(void **state)
{
	struct hf_proto_sync_req rq;
	struct hf_proto_sync_resp rs;
	struct hf_proto_report a, b;
	json_t *j;
	char *err = NULL;

	(void)state;
	hf_proto_sync_req_init(&rq);
	rq.node_id = hf_xstrdup("n1");
	rq.has_tasks = true;
	hf_strlist_push(&rq.same, "svc__a-0-x__1");
	hf_strlist_push(&rq.same, "svc__a-1-x__1");
	rq.reports_epoch = hf_xstrdup("00ff");
	j = hf_proto_sync_req_encode(&rq);
	hf_proto_sync_req_release(&rq);
	hf_proto_sync_req_init(&rq);
	if (hf_proto_sync_req_decode(j, &rq, &err))
		fail_msg("%s", err);
	assert_int_equal(rq.same.len, 2);
	assert_string_equal(rq.same.items[1], "svc__a-1-x__1");
	assert_string_equal(rq.reports_epoch, "00ff");
	assert_true(rq.has_tasks);
	assert_int_equal(rq.tasks.len, 0);
	hf_proto_sync_req_release(&rq);
	/* A "same" that is not a list of strings is refused, with where. */
	json_object_set_new(j, "same", json_pack("[s, i]", "x", 3));
	hf_proto_sync_req_init(&rq);
	assert_int_equal(hf_proto_sync_req_decode(j, &rq, &err), HF_EINVAL);
	assert_non_null(strstr(err, "same"));
	free(err);
	err = NULL;
	hf_proto_sync_req_release(&rq);
	json_decref(j);

	hf_proto_sync_resp_init(&rs);
	rs.generation = 4;
	rs.reports_epoch = hf_xstrdup("abcd");
	rs.resend = true;
	j = hf_proto_sync_resp_encode(&rs);
	hf_proto_sync_resp_release(&rs);
	hf_proto_sync_resp_init(&rs);
	if (hf_proto_sync_resp_decode(j, &rs, &err))
		fail_msg("%s", err);
	assert_string_equal(rs.reports_epoch, "abcd");
	assert_true(rs.resend);
	hf_proto_sync_resp_release(&rs);
	/* An older server's answer: no epoch, no resend. */
	json_object_del(j, "reports_epoch");
	json_object_del(j, "resend");
	hf_proto_sync_resp_init(&rs);
	if (hf_proto_sync_resp_decode(j, &rs, &err))
		fail_msg("%s", err);
	assert_null(rs.reports_epoch);
	assert_false(rs.resend);
	hf_proto_sync_resp_release(&rs);
	json_decref(j);

	memset(&a, 0, sizeof(a));
	a.task_id = hf_xstrdup("t__1");
	a.state = HF_TS_RUNNING;
	a.healthy = -1;
	a.message = hf_xstrdup("up");
	a.not_ready = NULL;
	a.restarts = 2;
	hf_proto_report_copy(&b, &a);
	assert_true(hf_proto_report_equal(&a, &b));
	assert_ptr_not_equal(a.message, b.message);
	b.healthy = 1;
	assert_false(hf_proto_report_equal(&a, &b));
	b.healthy = -1;
	free(b.message);
	b.message = hf_xstrdup("down");
	assert_false(hf_proto_report_equal(&a, &b));
	free(b.message);
	b.message = NULL;
	assert_false(hf_proto_report_equal(&a, &b));
	b.message = hf_xstrdup("up");
	b.not_ready = hf_xstrdup("probe failed");
	assert_false(hf_proto_report_equal(&a, &b));
	free(b.not_ready);
	b.not_ready = NULL;
	b.last_exit_at = 5;
	assert_false(hf_proto_report_equal(&a, &b));
	b.last_exit_at = 0;
	assert_true(hf_proto_report_equal(&a, &b));
	hf_proto_report_release(&a);
	hf_proto_report_release(&b);
}

/*
 * An answer to a request that held its generation's set may leave the
 * tasks out ("tasks_unchanged"): it round-trips without "tasks", and
 * one with both, or with neither, is refused.
 */
static void test_sync_tasks_unchanged(void **state)
{
	struct hf_proto_sync_req rq;
	struct hf_proto_sync_resp rs;
	json_t *j;
	char *err = NULL;

	(void)state;
	hf_proto_sync_req_init(&rq);
	rq.node_id = hf_xstrdup("n1");
	rq.generation = 7;
	rq.held = true;
	j = hf_proto_sync_req_encode(&rq);
	hf_proto_sync_req_release(&rq);
	assert_true(json_is_true(json_object_get(j, "held")));
	hf_proto_sync_req_init(&rq);
	if (hf_proto_sync_req_decode(j, &rq, &err))
		fail_msg("%s", err);
	assert_true(rq.held);
	hf_proto_sync_req_release(&rq);
	json_decref(j);

	hf_proto_sync_resp_init(&rs);
	rs.generation = 7;
	rs.tasks_unchanged = true;
	j = hf_proto_sync_resp_encode(&rs);
	hf_proto_sync_resp_release(&rs);
	assert_null(json_object_get(j, "tasks"));
	hf_proto_sync_resp_init(&rs);
	if (hf_proto_sync_resp_decode(j, &rs, &err))
		fail_msg("%s", err);
	assert_true(rs.tasks_unchanged);
	assert_int_equal(rs.tasks.len, 0);
	hf_proto_sync_resp_release(&rs);
	json_object_set_new(j, "tasks", json_array());
	hf_proto_sync_resp_init(&rs);
	assert_int_equal(hf_proto_sync_resp_decode(j, &rs, &err), HF_EINVAL);
	assert_string_equal(err,
			    "tasks: must be absent when tasks_unchanged is true");
	free(err);
	err = NULL;
	hf_proto_sync_resp_release(&rs);
	json_object_del(j, "tasks");
	json_object_set_new(j, "tasks_unchanged", json_false());
	hf_proto_sync_resp_init(&rs);
	assert_int_equal(hf_proto_sync_resp_decode(j, &rs, &err), HF_EINVAL);
	assert_string_equal(err, "the answer has no tasks");
	free(err);
	hf_proto_sync_resp_release(&rs);
	json_decref(j);
}

/* Decodes text as a launch order and expects err as the sentence. */
static void expect_launch_error(const char *text, const char *want)
{
	json_t *j = json_loads(text, 0, NULL);
	struct hf_proto_launch l;
	char *err = NULL;

	assert_non_null(j);
	hf_proto_launch_init(&l);
	assert_int_equal(hf_proto_launch_decode(j, &l, &err), HF_EINVAL);
	assert_non_null(err);
	assert_string_equal(err, want);
	free(err);
	hf_proto_launch_release(&l);
	json_decref(j);
}

static void test_restart_policy(void **state)
{
	json_t *j = json_loads("{\"task_id\": \"a__1\", \"cmd\": \"true\", "
			       "\"restart\": {\"backoff_max\": 5}}",
			       0, NULL);
	struct hf_proto_launch l;
	char *err = NULL;

	(void)state;
	hf_proto_launch_init(&l);
	if (hf_proto_launch_decode(j, &l, &err))
		fail_msg("%s", err);
	/* What is not said takes the shim's defaults. */
	assert_true(l.restart.on);
	assert_true(l.restart.backoff_base == 1 && l.restart.backoff_max == 5);
	assert_true(l.restart.reset_after == 120 && l.restart.max == 0);
	hf_proto_launch_release(&l);
	json_decref(j);
	/* null and absent: none. */
	j = json_loads("{\"task_id\": \"a__1\", \"cmd\": \"true\", "
		       "\"restart\": null}",
		       0, NULL);
	hf_proto_launch_init(&l);
	assert_int_equal(hf_proto_launch_decode(j, &l, &err), 0);
	assert_false(l.restart.on);
	json_t *back = hf_proto_launch_encode(&l);
	assert_true(json_is_null(json_object_get(back, "restart")));
	json_decref(back);
	hf_proto_launch_release(&l);
	json_decref(j);
	expect_launch_error("{\"task_id\": \"a\", \"cmd\": \"true\", "
			    "\"restart\": 3}",
			    "restart: must be an object");
	expect_launch_error("{\"task_id\": \"a\", \"cmd\": \"true\", "
			    "\"restart\": {\"backoff_base\": -1}}",
			    "restart.backoff_base: must be a number of seconds");
	expect_launch_error("{\"task_id\": \"a\", \"cmd\": \"true\", "
			    "\"restart\": {\"max\": -2}}",
			    "restart.max: must not be negative");
}

static void test_report_restarts(void **state)
{
	struct hf_proto_report r = {0}, b = {0};
	char *err = NULL;
	json_t *j;

	(void)state;
	r.task_id = hf_xstrdup("a__1");
	r.state = HF_TS_STARTING;
	r.healthy = -1;
	r.restarts = 4;
	r.backoff = true;
	r.restart_at = 1700000002000;
	r.last_signal = 9;
	r.last_exit_at = 1700000001000;
	r.last_oom_killed = true;
	j = hf_proto_report_encode(&r);
	assert_int_equal(json_integer_value(json_object_get(j, "restarts")), 4);
	assert_true(json_is_true(json_object_get(j, "backoff")));
	assert_true(json_is_null(json_object_get(j, "last_exit_code")));
	if (hf_proto_report_decode(j, &b, &err))
		fail_msg("%s", err);
	assert_int_equal(b.restarts, 4);
	assert_true(b.backoff);
	assert_int_equal(b.restart_at, 1700000002000);
	assert_false(b.has_last_exit_code);
	assert_int_equal(b.last_signal, 9);
	assert_int_equal(b.last_exit_at, 1700000001000);
	assert_true(b.last_oom_killed);
	json_decref(j);
	hf_proto_report_release(&b);
	/* A launch that ended waits for no restart. */
	r.state = HF_TS_EXITED;
	j = hf_proto_report_encode(&r);
	assert_true(json_is_false(json_object_get(j, "backoff")));
	assert_true(json_is_null(json_object_get(j, "restart_at")));
	json_decref(j);
	/* An older agent says nothing of restarts: none. */
	j = json_loads("{\"task_id\": \"a\", \"state\": \"running\"}", 0,
		       NULL);
	assert_int_equal(hf_proto_report_decode(j, &b, &err), 0);
	assert_int_equal(b.restarts, 0);
	assert_false(b.backoff);
	json_decref(j);
	hf_proto_report_release(&b);
	j = json_loads("{\"task_id\": \"a\", \"state\": \"running\", "
		       "\"restarts\": -1}",
		       0, NULL);
	assert_int_equal(hf_proto_report_decode(j, &b, &err), HF_EINVAL);
	assert_string_equal(err, "restarts: must be 0 to 4294967295");
	free(err);
	json_decref(j);
	hf_proto_report_release(&b);
	hf_proto_report_release(&r);
}

static void test_report_encoding(void **state)
{
	struct hf_proto_report r = {0};
	json_t *j;

	(void)state;
	r.task_id = hf_xstrdup("a__1");
	r.state = HF_TS_STAGING; /* an agent preparing the sandbox */
	r.pid = 0;
	r.healthy = -1;
	r.not_ready = hf_xstrdup("connection refused");
	j = hf_proto_report_encode(&r);
	assert_string_equal(json_string_value(json_object_get(j, "state")),
			    "starting");
	assert_true(json_is_null(json_object_get(j, "pid")));
	assert_true(json_is_null(json_object_get(j, "healthy")));
	assert_string_equal(json_string_value(json_object_get(j, "not_ready")),
			    "connection refused");
	assert_null(json_object_get(j, "permanent"));
	json_decref(j);
	/* Final: exit code and signal shown, pid not; permanent if so. */
	r.state = HF_TS_FAILED_TO_START;
	r.pid = 42;
	r.permanent = true;
	r.ready = true;
	j = hf_proto_report_encode(&r);
	assert_string_equal(json_string_value(json_object_get(j, "state")),
			    "failed-to-start");
	assert_true(json_is_null(json_object_get(j, "pid")));
	assert_true(json_is_true(json_object_get(j, "permanent")));
	assert_true(json_is_null(json_object_get(j, "not_ready")));
	json_decref(j);
	hf_proto_report_release(&r);
}

/* Attachments, volume reports and replica deletions round-trip. */
static void test_volumes(void **state)
{
	const char *ans =
	    "{\"generation\": 3, \"tasks\": [], \"attachments\": [{\"volume\": "
	    "\"hello-world-hello-0\", \"id\": \"v1\", \"replica\": \"r1\", "
	    "\"epoch\": 2, \"size\": 1073741824, \"format\": true, \"uid\": 65534,"
	    " \"gid\": 65534}], \"delete_replicas\": [{\"id\": \"v0\", "
	    "\"replica\": \"r0\"}]}";
	const char *req =
	    "{\"node_id\": \"n1\", \"volumes\": [{\"volume\": \"hello-world-"
	    "hello-0\", \"id\": \"v1\", \"epoch\": 2, \"state\": \"ready\", "
	    "\"device\": \"/dev/loop3\", \"message\": null}], "
	    "\"deleted_replicas\": [\"r0\"]}";
	struct hf_proto_sync_resp rs, rs2;
	struct hf_proto_sync_req rq;
	json_t *j = json_loads(ans, 0, NULL), *k;
	char *err = NULL;

	hf_proto_sync_resp_init(&rs);
	assert_int_equal(hf_proto_sync_resp_decode(j, &rs, &err), 0);
	assert_int_equal(rs.attachments.len, 1);
	assert_string_equal(rs.attachments.items[0].replica, "r1");
	assert_int_equal(rs.attachments.items[0].epoch, 2);
	assert_true(rs.attachments.items[0].format);
	assert_int_equal(rs.attachments.items[0].uid, 65534);
	assert_int_equal(rs.delete_replicas.len, 1);
	k = hf_proto_sync_resp_encode(&rs);
	hf_proto_sync_resp_init(&rs2);
	assert_int_equal(hf_proto_sync_resp_decode(k, &rs2, &err), 0);
	assert_int_equal(rs2.attachments.items[0].size, 1073741824);
	assert_string_equal(rs2.delete_replicas.items[0].id, "v0");
	hf_proto_sync_resp_release(&rs2);
	hf_proto_sync_resp_release(&rs);
	json_decref(k);
	json_decref(j);

	j = json_loads(req, 0, NULL);
	hf_proto_sync_req_init(&rq);
	assert_int_equal(hf_proto_sync_req_decode(j, &rq, &err), 0);
	assert_int_equal(rq.volumes.len, 1);
	assert_string_equal(rq.volumes.items[0].state, "ready");
	assert_string_equal(rq.volumes.items[0].device, "/dev/loop3");
	assert_null(rq.volumes.items[0].message);
	assert_string_equal(rq.deleted_replicas.items[0], "r0");
	hf_proto_sync_req_release(&rq);
	json_decref(j);

	expect_req_error("{\"node_id\": \"n\", \"volumes\": [{\"volume\": \"v\","
			 " \"id\": \"x\", \"epoch\": 1, \"state\": \"up\"}]}",
			 "volumes[0].state: must be attaching, ready, detaching "
			 "or failed");
	j = json_loads("{\"generation\": 1, \"tasks\": [], \"attachments\": "
		       "[{\"volume\": \"v\", \"id\": \"../x\", \"replica\": \"r\","
		       " \"epoch\": 1, \"size\": 4096}]}", 0, NULL);
	hf_proto_sync_resp_init(&rs);
	assert_int_equal(hf_proto_sync_resp_decode(j, &rs, &err), HF_EINVAL);
	assert_string_equal(err, "attachments[0].id: must be 1-64 letters, "
				 "digits, '-' or '_'");
	free(err);
	err = NULL;
	hf_proto_sync_resp_release(&rs);
	json_decref(j);
	j = json_loads("{\"generation\": 1, \"tasks\": [], \"attachments\": "
		       "[{\"volume\": \"v\", \"id\": \"x\", \"replica\": \"r\","
		       " \"epoch\": 0, \"size\": 4096}]}", 0, NULL);
	hf_proto_sync_resp_init(&rs);
	assert_int_equal(hf_proto_sync_resp_decode(j, &rs, &err), HF_EINVAL);
	assert_string_equal(err, "attachments[0].epoch: must be >= 1");
	free(err);
	hf_proto_sync_resp_release(&rs);
	json_decref(j);
}

static void expect_resp_error(const char *text, const char *want)
{
	json_t *j = json_loads(text, 0, NULL);
	struct hf_proto_sync_resp rs;
	char *err = NULL;

	assert_non_null(j);
	hf_proto_sync_resp_init(&rs);
	assert_int_equal(hf_proto_sync_resp_decode(j, &rs, &err), HF_EINVAL);
	assert_non_null(err);
	assert_string_equal(err, want);
	free(err);
	hf_proto_sync_resp_release(&rs);
	json_decref(j);
}

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/*
 * Replication's fields: attachments with remotes and a ticket (and none
 * with a local replica), the pool's held replicas with their keys, the
 * replica server's port; and what is refused.
 */
static void test_replication_fields(void **state)
{
	const char *ans =
	    "{\"generation\": 4, \"tasks\": [], \"attachments\": ["
	    "{\"volume\": \"svc-0\", \"id\": \"v1\", \"replica\": \"r1\", "
	    "\"epoch\": 3, \"size\": 67108864, \"remotes\": [{\"replica\": "
	    "\"r2\", \"node\": \"n2\", \"address\": \"10.0.0.2\", \"port\": "
	    "7446}], \"ticket\": \"" HEX64 "\"}, "
	    "{\"volume\": \"svc-1\", \"id\": \"v2\", \"replica\": null, "
	    "\"epoch\": 1, \"size\": 67108864, \"remotes\": [{\"replica\": "
	    "\"r3\", \"node\": \"n3\", \"address\": \"10.0.0.3\", \"port\": "
	    "7447}, {\"replica\": \"r4\", \"node\": \"n4\", \"address\": "
	    "\"10.0.0.4\", \"port\": 7448}], \"ticket\": \"" HEX64 "\"}], "
	    "\"replicas\": [{\"volume\": \"svc-2\", \"id\": \"v3\", "
	    "\"replica\": \"r5\", \"key\": \"" HEX64 "\", \"size\": 67108864}]}";
	struct hf_proto_sync_resp rs, rs2;
	struct hf_proto_node_info in, out;
	const struct hf_proto_attachment *a;
	json_t *j = json_loads(ans, 0, NULL), *k;
	char *err = NULL;

	(void)state;
	assert_non_null(j);
	hf_proto_sync_resp_init(&rs);
	if (hf_proto_sync_resp_decode(j, &rs, &err))
		fail_msg("%s", err);
	assert_int_equal(rs.attachments.len, 2);
	a = &rs.attachments.items[0];
	assert_string_equal(a->replica, "r1");
	assert_int_equal(a->remotes.len, 1);
	assert_string_equal(a->remotes.items[0].replica, "r2");
	assert_string_equal(a->remotes.items[0].node, "n2");
	assert_string_equal(a->remotes.items[0].address, "10.0.0.2");
	assert_int_equal(a->remotes.items[0].port, 7446);
	assert_string_equal(a->ticket, HEX64);
	a = &rs.attachments.items[1];
	assert_null(a->replica);
	assert_int_equal(a->remotes.len, 2);
	assert_int_equal(a->remotes.items[1].port, 7448);
	assert_int_equal(rs.replicas.len, 1);
	assert_string_equal(rs.replicas.items[0].volume, "svc-2");
	assert_string_equal(rs.replicas.items[0].replica, "r5");
	assert_string_equal(rs.replicas.items[0].key, HEX64);
	assert_int_equal(rs.replicas.items[0].size, 67108864);
	/* Encoded and decoded back: the same, "replica": null kept. */
	k = hf_proto_sync_resp_encode(&rs);
	assert_true(json_is_null(json_object_get(
	    json_array_get(json_object_get(k, "attachments"), 1), "replica")));
	hf_proto_sync_resp_init(&rs2);
	if (hf_proto_sync_resp_decode(k, &rs2, &err))
		fail_msg("%s", err);
	assert_null(rs2.attachments.items[1].replica);
	assert_string_equal(rs2.attachments.items[1].remotes.items[0].address,
			    "10.0.0.3");
	assert_string_equal(rs2.attachments.items[0].ticket, HEX64);
	assert_string_equal(rs2.replicas.items[0].key, HEX64);
	assert_string_equal(rs2.replicas.items[0].id, "v3");
	hf_proto_sync_resp_release(&rs2);
	hf_proto_sync_resp_release(&rs);
	json_decref(k);
	json_decref(j);

	expect_resp_error(
	    "{\"generation\": 1, \"tasks\": [], \"attachments\": [{\"volume\": "
	    "\"v\", \"id\": \"x\", \"replica\": \"r\", \"epoch\": 1, \"size\": "
	    "4096, \"remotes\": [{\"replica\": \"r2\", \"node\": \"n2\", "
	    "\"address\": \"10.0.0.2\", \"port\": 7446}]}]}",
	    "attachments[0].ticket: must be 64 hex digits with remotes");
	expect_resp_error(
	    "{\"generation\": 1, \"tasks\": [], \"attachments\": [{\"volume\": "
	    "\"v\", \"id\": \"x\", \"replica\": \"r\", \"epoch\": 1, \"size\": "
	    "4096, \"remotes\": [{\"replica\": \"r2\", \"node\": \"n2\", "
	    "\"address\": \"10.0.0.2\", \"port\": 7446}], \"ticket\": \"abc\"}]}",
	    "attachments[0].ticket: must be 64 hex digits with remotes");
	expect_resp_error(
	    "{\"generation\": 1, \"tasks\": [], \"attachments\": [{\"volume\": "
	    "\"v\", \"id\": \"x\", \"replica\": null, \"epoch\": 1, \"size\": "
	    "4096}]}",
	    "attachments[0]: has neither a replica nor remotes");
	expect_resp_error(
	    "{\"generation\": 1, \"tasks\": [], \"attachments\": [{\"volume\": "
	    "\"v\", \"id\": \"x\", \"epoch\": 1, \"size\": 4096, \"remotes\": "
	    "[{\"replica\": \"r2\", \"node\": \"n2\", \"address\": "
	    "\"10.0.0.2\", \"port\": 0}], \"ticket\": \"" HEX64 "\"}]}",
	    "attachments[0].remotes[0].port: must be 1-65535");
	expect_resp_error(
	    "{\"generation\": 1, \"tasks\": [], \"replicas\": [{\"volume\": "
	    "\"v\", \"id\": \"x\", \"replica\": \"r\", \"key\": \"" HEX64
	    "0\", \"size\": 67108864}]}",
	    "replicas[0].key: must be 64 hex digits");
	expect_resp_error(
	    "{\"generation\": 1, \"tasks\": [], \"replicas\": [{\"volume\": "
	    "\"v\", \"id\": \"x\", \"replica\": \"r\", \"key\": \"zz"
	    "23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	    "\", \"size\": 67108864}]}",
	    "replicas[0].key: must be 64 hex digits");
	expect_resp_error(
	    "{\"generation\": 1, \"tasks\": [], \"replicas\": [{\"volume\": "
	    "\"v\", \"id\": \"x\", \"replica\": \"r\", \"size\": 67108864}]}",
	    "replicas[0].key: is missing");

	/* storage.port: round trip, and only 0-65535. */
	hf_proto_node_info_init(&in);
	in.has_storage = true;
	in.storage.pool = hf_xstrdup("/srv/pool");
	in.storage.port = 7446;
	k = hf_proto_node_info_encode(&in);
	hf_proto_node_info_init(&out);
	assert_int_equal(hf_proto_node_info_decode(k, &out, &err), 0);
	assert_int_equal(out.storage.port, 7446);
	hf_proto_node_info_release(&out);
	hf_proto_node_info_release(&in);
	json_decref(k);
	expect_req_error("{\"node_id\": \"n\", \"info\": {\"storage\": "
			 "{\"pool\": \"/p\", \"port\": 70000}}}",
			 "info.storage.port: must be 0-65535");
}

/* A volume report's counters and missed regions: round trip, checks. */
static void test_volume_report_io(void **state)
{
	const char *req =
	    "{\"node_id\": \"n1\", \"volumes\": [{\"volume\": \"svc-0\", "
	    "\"id\": \"v1\", \"epoch\": 3, \"state\": \"ready\", "
	    "\"written\": 8192, \"replicated\": 4096, \"resync_sent\": "
	    "1048576, \"resync_planned\": 2097152, \"missed\": "
	    "[{\"replica\": \"r2\", \"bytes\": 12288}, {\"replica\": "
	    "\"r3\", \"bytes\": 0}], \"write_us\": [0, 5, 7, 0, 0, 0, 0, "
	    "0, 0, 0, 0, 0, 1], \"write_us_sum\": 2000900}]}";
	struct hf_proto_sync_req rq, rq2;
	const struct hf_proto_volume_report *r;
	json_t *j = json_loads(req, 0, NULL), *k;
	char *err = NULL;

	(void)state;
	assert_non_null(j);
	hf_proto_sync_req_init(&rq);
	if (hf_proto_sync_req_decode(j, &rq, &err))
		fail_msg("%s", err);
	r = &rq.volumes.items[0];
	assert_int_equal(r->written, 8192);
	assert_int_equal(r->replicated, 4096);
	assert_int_equal(r->resync_sent, 1048576);
	assert_int_equal(r->resync_planned, 2097152);
	assert_int_equal(r->missed.len, 2);
	assert_string_equal(r->missed.items[0].replica, "r2");
	assert_int_equal(r->missed.items[0].bytes, 12288);
	assert_int_equal(r->missed.items[1].bytes, 0);
	assert_true(r->has_write_us);
	assert_int_equal(r->write_us[1], 5);
	assert_int_equal(r->write_us[HF_VOL_LAT_BUCKETS], 1);
	assert_int_equal(r->write_us_sum, 2000900);
	k = hf_proto_sync_req_encode(&rq);
	hf_proto_sync_req_init(&rq2);
	if (hf_proto_sync_req_decode(k, &rq2, &err))
		fail_msg("%s", err);
	r = &rq2.volumes.items[0];
	assert_int_equal(r->resync_planned, 2097152);
	assert_int_equal(r->missed.len, 2);
	assert_string_equal(r->missed.items[1].replica, "r3");
	assert_true(r->has_write_us);
	assert_int_equal(r->write_us[2], 7);
	assert_int_equal(r->write_us_sum, 2000900);
	hf_proto_sync_req_release(&rq2);
	hf_proto_sync_req_release(&rq);
	json_decref(k);
	json_decref(j);

	expect_req_error("{\"node_id\": \"n\", \"volumes\": [{\"volume\": "
			 "\"v\", \"id\": \"x\", \"epoch\": 1, \"state\": "
			 "\"ready\", \"written\": -1}]}",
			 "volumes[0].written: must be 0 or more");
	expect_req_error("{\"node_id\": \"n\", \"volumes\": [{\"volume\": "
			 "\"v\", \"id\": \"x\", \"epoch\": 1, \"state\": "
			 "\"ready\", \"resync_planned\": \"a lot\"}]}",
			 "volumes[0].resync_planned: must be an integer");
	expect_req_error("{\"node_id\": \"n\", \"volumes\": [{\"volume\": "
			 "\"v\", \"id\": \"x\", \"epoch\": 1, \"state\": "
			 "\"ready\", \"missed\": [{\"replica\": \"../r\", "
			 "\"bytes\": 1}]}]}",
			 "volumes[0].missed[0].replica: must be a replica id");
	expect_req_error("{\"node_id\": \"n\", \"volumes\": [{\"volume\": "
			 "\"v\", \"id\": \"x\", \"epoch\": 1, \"state\": "
			 "\"ready\", \"missed\": [{\"replica\": \"r\", "
			 "\"bytes\": -4096}]}]}",
			 "volumes[0].missed[0].bytes: must be 0 or more");
	expect_req_error("{\"node_id\": \"n\", \"volumes\": [{\"volume\": "
			 "\"v\", \"id\": \"x\", \"epoch\": 1, \"state\": "
			 "\"ready\", \"write_us\": [1, 2]}]}",
			 "volumes[0].write_us: must be an array of 13 counts");
	expect_req_error("{\"node_id\": \"n\", \"volumes\": [{\"volume\": "
			 "\"v\", \"id\": \"x\", \"epoch\": 1, \"state\": "
			 "\"ready\", \"write_us\": [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "
			 "0, 0, 0], \"write_us_sum\": -1}]}",
			 "volumes[0].write_us_sum: must be 0 or more");
}

/* An EXTERNAL volume of a launch order carries its attachment's epoch. */
static void test_external_launch_volume(void **state)
{
	struct hf_proto_launch l, m;
	json_t *j;
	char *err = NULL;

	hf_proto_launch_init(&l);
	l.task_id = hf_xstrdup("a-0-s__1");
	l.service = hf_xstrdup("a");
	l.pod = hf_xstrdup("a");
	l.pod_instance = hf_xstrdup("a-0");
	l.task = hf_xstrdup("s");
	l.cmd = hf_xstrdup("true");
	l.config_id = hf_xstrdup("1");
	{
		struct hf_proto_volume *v = HF_VEC_PUSH(&l.volumes);

		memset(v, 0, sizeof(*v));
		v->key = hf_xstrdup("a-a-0");
		v->path = hf_xstrdup("data");
		v->type = hf_xstrdup("EXTERNAL");
		v->size_mb = 1024;
		v->epoch = 4;
		v->ro = true;
	}
	j = hf_proto_launch_encode(&l);
	hf_proto_launch_init(&m);
	assert_int_equal(hf_proto_launch_decode(j, &m, &err), 0);
	assert_int_equal(m.volumes.items[0].epoch, 4);
	assert_true(m.volumes.items[0].ro);
	hf_proto_launch_release(&m);
	json_object_set_new(json_array_get(json_object_get(j, "volumes"), 0),
			    "epoch", json_integer(0));
	hf_proto_launch_init(&m);
	assert_int_equal(hf_proto_launch_decode(j, &m, &err), HF_EINVAL);
	assert_string_equal(err, "volumes[0].epoch: an EXTERNAL volume needs "
				 "an epoch >= 1");
	free(err);
	hf_proto_launch_release(&m);
	hf_proto_launch_release(&l);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifecycle_table),
		cmocka_unit_test(test_lifecycle_events),
		cmocka_unit_test(test_lifecycle_names),
		cmocka_unit_test(test_doc_sync_request),
		cmocka_unit_test(test_doc_launch_order),
		cmocka_unit_test(test_launch_round_trip),
		cmocka_unit_test(test_sync_request_errors),
		cmocka_unit_test(test_sync_request_lenient),
		cmocka_unit_test(test_node_storage),
		cmocka_unit_test(test_sync_response),
		cmocka_unit_test(test_sync_response_known),
		cmocka_unit_test(test_report_encoding),
		cmocka_unit_test(test_restart_policy),
		cmocka_unit_test(test_report_restarts),
		cmocka_unit_test(test_volumes),
		cmocka_unit_test(test_volume_report_io),
		cmocka_unit_test(test_sync_dr_final),
		cmocka_unit_test(test_sync_same_reports),
		cmocka_unit_test(test_sync_tasks_unchanged),
		cmocka_unit_test(test_replication_fields),
		cmocka_unit_test(test_external_launch_volume),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
