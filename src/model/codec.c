/*
 * codec.c - records <-> JSON, and the checks every stored record passes
 * before it is read (codec.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "model/codec.h"
#include "volume/crypt.h"

static void escape_into(struct hf_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '/')
			hf_buf_adds(b, "%2F");
		else if (*s == '%')
			hf_buf_adds(b, "%25");
		else
			hf_buf_addc(b, *s);
	}
}

static char *unescape(const char *s)
{
	struct hf_buf b = HF_BUF_INIT;

	for (; *s; s++) {
		if (s[0] == '%' && s[1] == '2' && (s[2] == 'F' || s[2] == 'f')) {
			hf_buf_addc(&b, '/');
			s += 2;
		} else if (s[0] == '%' && s[1] == '2' && s[2] == '5') {
			hf_buf_addc(&b, '%');
			s += 2;
		} else {
			hf_buf_addc(&b, *s);
		}
	}
	return hf_buf_detach(&b);
}

/* fmt holds up to two "%s", each replaced by an escaped name. */
char *hf_codec_key(const char *fmt, const char *a, const char *b)
{
	struct hf_buf out = HF_BUF_INIT;
	const char *args[2] = {a, b};
	int n = 0;

	for (const char *p = fmt; *p; p++) {
		if (p[0] == '%' && p[1] == 's' && n < 2) {
			escape_into(&out, args[n++] ? args[n - 1] : "");
			p++;
		} else {
			hf_buf_addc(&out, *p);
		}
	}
	return hf_buf_detach(&out);
}

/* ------------------------------------------------------------------ */
/* JSON                                                                 */

json_t *hf_codec_kv_json(const struct hf_kvlist *l)
{
	json_t *o = json_object();

	for (size_t i = 0; i < l->len; i++)
		json_object_set_new(o, l->items[i].key,
				    json_string(l->items[i].value));
	return o;
}

void hf_codec_kv_from_json(struct hf_kvlist *l, const json_t *o)
{
	const char *k;
	json_t *v;

	if (!json_is_object(o))
		return;
	json_object_foreach((json_t *)o, k, v)
	    if (json_is_string(v)) hf_kvlist_set(l, k, json_string_value(v));
}

/* A checked object of counts (F_COUNT_MAP) into pod -> decimal. */
static void counts_from_json(struct hf_kvlist *l, const json_t *o)
{
	const char *k;
	json_t *v;

	if (!json_is_object(o))
		return;
	json_object_foreach((json_t *)o, k, v)
	{
		char num[32];

		snprintf(num, sizeof(num), "%lld",
			 (long long)json_integer_value(v));
		hf_kvlist_set(l, k, num);
	}
}

static json_t *strs_json(const struct hf_strlist *l)
{
	json_t *a = json_array();

	for (size_t i = 0; i < l->len; i++)
		json_array_append_new(a, json_string(l->items[i]));
	return a;
}

static void strs_from_json(struct hf_strlist *l, const json_t *a)
{
	size_t i;
	json_t *v;

	if (!json_is_array(a))
		return;
	json_array_foreach(a, i, v) if (json_is_string(v))
	    hf_strlist_push(l, json_string_value(v));
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static char *str_dup_json(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? hf_xstrdup(s) : NULL;
}

static int64_t int_json(const json_t *o, const char *key, int64_t def)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

static bool bool_json(const json_t *o, const char *key)
{
	return json_is_true(json_object_get(o, key));
}

json_t *hf_task_rec_to_json(const struct hf_task_rec *r)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_string(r->id));
	json_object_set_new(o, "config_id", str_or_null(r->config_id));
	json_object_set_new(o, "run", str_or_null(r->run));
	json_object_set_new(o, "state",
			    json_string(hf_task_state_name(r->state)));
	json_object_set_new(o, "ready", json_boolean(r->ready));
	json_object_set_new(o, "healthy",
			    r->healthy < 0 ? json_null()
					   : json_boolean(r->healthy));
	json_object_set_new(o, "exit_code",
			    r->exit_code < 0 ? json_null()
					     : json_integer(r->exit_code));
	json_object_set_new(o, "signal",
			    r->signal <= 0 ? json_null()
					   : json_integer(r->signal));
	json_object_set_new(o, "oom_killed", json_boolean(r->oom_killed));
	json_object_set_new(o, "kill", json_boolean(r->kill));
	json_object_set_new(o, "restart", json_boolean(r->restart));
	json_object_set_new(o, "paused", json_boolean(r->paused));
	if (r->permanent)
		json_object_set_new(o, "permanent", json_true());
	json_object_set_new(o, "launched_at", json_integer(r->launched_at));
	json_object_set_new(o, "started_at", json_integer(r->started_at));
	json_object_set_new(o, "finished_at", json_integer(r->finished_at));
	/* Only for a launch restarted in place: others read as before. */
	if (r->in_place_restarts || r->backoff) {
		json_object_set_new(o, "in_place_restarts",
				    json_integer(r->in_place_restarts));
		json_object_set_new(o, "backoff", json_boolean(r->backoff));
		json_object_set_new(o, "restart_at",
				    r->backoff && r->restart_at > 0
					? json_integer(r->restart_at)
					: json_null());
		json_object_set_new(o, "last_exit_code",
				    r->last_exit_code < 0
					? json_null()
					: json_integer(r->last_exit_code));
		json_object_set_new(o, "last_signal",
				    r->last_signal <= 0
					? json_null()
					: json_integer(r->last_signal));
		json_object_set_new(o, "last_exit_at",
				    r->last_exit_at <= 0
					? json_null()
					: json_integer(r->last_exit_at));
	}
	json_object_set_new(o, "message", str_or_null(r->message));
	json_object_set_new(o, "params", hf_codec_kv_json(&r->params));
	return o;
}

static struct hf_task_rec *task_rec_from_json(const json_t *o)
{
	struct hf_task_rec *r;

	if (!json_is_object(o) || !json_is_string(json_object_get(o, "id")))
		return NULL;
	r = hf_xcalloc(1, sizeof(*r));
	r->id = str_dup_json(o, "id");
	r->config_id = str_dup_json(o, "config_id");
	r->run = str_dup_json(o, "run");
	/* What a record never holds (the node side's states) reads as LOST. */
	if (!hf_task_state_parse(json_string_value(json_object_get(o, "state")),
				 &r->state) ||
	    r->state > HF_TS_LOST)
		r->state = HF_TS_LOST;
	r->ready = bool_json(o, "ready");
	r->healthy = json_is_boolean(json_object_get(o, "healthy"))
			 ? bool_json(o, "healthy")
			 : -1;
	r->exit_code = (int)int_json(o, "exit_code", -1);
	r->signal = (int)int_json(o, "signal", 0);
	r->oom_killed = bool_json(o, "oom_killed");
	r->kill = bool_json(o, "kill");
	r->restart = bool_json(o, "restart");
	r->paused = bool_json(o, "paused");
	r->permanent = bool_json(o, "permanent");
	r->launched_at = int_json(o, "launched_at", 0);
	r->started_at = int_json(o, "started_at", 0);
	r->finished_at = int_json(o, "finished_at", 0);
	{
		int64_t n = int_json(o, "in_place_restarts", 0);

		r->in_place_restarts =
		    n > 0 && n <= UINT32_MAX ? (unsigned)n : 0;
	}
	r->backoff = bool_json(o, "backoff");
	r->restart_at = int_json(o, "restart_at", 0);
	r->last_exit_code = (int)int_json(o, "last_exit_code", -1);
	r->last_signal = (int)int_json(o, "last_signal", 0);
	r->last_exit_at = int_json(o, "last_exit_at", 0);
	r->message = str_dup_json(o, "message");
	hf_codec_kv_from_json(&r->params, json_object_get(o, "params"));
	return r;
}

/*
 * The instance's stage as the API has always shown it (and as records
 * before the lifecycle table stored it): a flag per stage, decom 1 while
 * draining, 2 while its tasks stop. A drain that failed and was then
 * force-completed shows both drain_failed and drain_skipped.
 */
static void stage_flags_json(json_t *o, const struct hf_instance *in)
{
	enum hf_instance_state st = in->state;
	int decom = st == HF_IS_STOPPING				 ? 2
		    : st == HF_IS_DRAINING || st == HF_IS_DRAIN_FAILED ? 1
									 : 0;

	json_object_set_new(o, "replacing",
			    json_boolean(hf_instance_replacing(in)));
	json_object_set_new(o, "replace_deleting",
			    json_boolean(st == HF_IS_REPLACE_DELETING));
	json_object_set_new(o, "decom", json_integer(decom));
	json_object_set_new(o, "drain_done",
			    json_boolean(in->drain == HF_DRAIN_DONE));
	json_object_set_new(o, "drain_failed",
			    json_boolean(in->drain == HF_DRAIN_FAILED));
	json_object_set_new(o, "drain_skipped",
			    json_boolean(in->drain == HF_DRAIN_SKIPPED ||
					 (st == HF_IS_STOPPING &&
					  in->drain == HF_DRAIN_FAILED)));
}

/* The stage of a record written with the flags stage_flags_json shows. */
static void stage_from_flags(struct hf_instance *in, const json_t *o)
{
	int64_t decom = int_json(o, "decom", 0);
	bool failed = bool_json(o, "drain_failed");
	bool skipped = bool_json(o, "drain_skipped");

	in->state = HF_IS_ACTIVE;
	in->drain = HF_DRAIN_NONE;
	if (bool_json(o, "replacing")) {
		/* A replace wins over a scale-in under way (instance_life.h). */
		in->state = bool_json(o, "replace_deleting")
				? HF_IS_REPLACE_DELETING
				: HF_IS_REPLACING;
		return;
	}
	if (decom == 0)
		return;
	if (failed)
		in->drain = HF_DRAIN_FAILED;
	else if (bool_json(o, "drain_done"))
		in->drain = HF_DRAIN_DONE;
	else if (skipped)
		in->drain = HF_DRAIN_SKIPPED;
	/*
	 * decom 1 with a skipped drain moved to 2 at the next tick; any
	 * other non-zero stage read as "stopping its tasks".
	 */
	if (decom == 1 && !skipped)
		in->state = failed ? HF_IS_DRAIN_FAILED : HF_IS_DRAINING;
	else
		in->state = HF_IS_STOPPING;
}

/* store: the record's form (its stage by name), else the API's. */
static json_t *instance_json(const struct hf_instance *in, bool store)
{
	json_t *o = json_object();
	json_t *slots = json_array();

	json_object_set_new(o, "name", json_string(in->name));
	json_object_set_new(o, "pod", json_string(in->pod));
	json_object_set_new(o, "index", json_integer(in->index));
	json_object_set_new(o, "node", str_or_null(in->node));
	json_object_set_new(o, "ports", hf_codec_kv_json(&in->ports));
	json_object_set_new(o, "message", str_or_null(in->message));
	json_object_set_new(o, "paused", json_boolean(in->paused));
	if (store) {
		json_object_set_new(
		    o, "state", json_string(hf_instance_state_name(in->state)));
		json_object_set_new(o, "drain",
				    json_string(hf_drain_name(in->drain)));
	} else {
		stage_flags_json(o, in);
	}
	json_object_set_new(o, "replaced_node", str_or_null(in->replaced_node));
	json_object_set_new(o, "replaced_address",
			    str_or_null(in->replaced_address));
	json_object_set_new(o, "replace_pending",
			    json_boolean(in->replace_pending));
	for (size_t i = 0; i < in->slots.len; i++) {
		const struct hf_task_slot *sl = &in->slots.items[i];
		json_t *j = json_object();

		json_object_set_new(j, "task", json_string(sl->task));
		json_object_set_new(j, "current",
				    sl->cur ? hf_task_rec_to_json(sl->cur)
					    : json_null());
		json_object_set_new(j, "failures", json_integer(sl->failures));
		json_object_set_new(j, "backoff_until",
				    json_integer(sl->backoff_until));
		json_object_set_new(j, "once_done", json_boolean(sl->once_done));
		json_object_set_new(j, "want_running",
				    json_boolean(sl->want_running));
		json_object_set_new(j, "launches",
				    json_integer((json_int_t)sl->launches));
		json_object_set_new(j, "restarts",
				    json_integer((json_int_t)sl->restarts));
		json_array_append_new(slots, j);
	}
	json_object_set_new(o, "tasks", slots);
	return o;
}

json_t *hf_codec_instance(const struct hf_instance *in)
{
	return instance_json(in, true);
}

json_t *hf_instance_to_json(const struct hf_instance *in)
{
	return instance_json(in, false);
}

static struct hf_instance *instance_from_json(const json_t *o)
{
	struct hf_instance *in;
	size_t i;
	json_t *j;

	if (!json_is_string(json_object_get(o, "name")) ||
	    !json_is_string(json_object_get(o, "pod")))
		return NULL;
	in = hf_xcalloc(1, sizeof(*in));
	in->name = str_dup_json(o, "name");
	in->pod = str_dup_json(o, "pod");
	in->index = int_json(o, "index", 0);
	in->node = str_dup_json(o, "node");
	in->message = str_dup_json(o, "message");
	in->paused = bool_json(o, "paused");
	/* Checked by check_instance: a stage this holdfast knows. */
	if (json_object_get(o, "state")) {
		hf_instance_state_parse(
		    json_string_value(json_object_get(o, "state")), &in->state);
		if (json_object_get(o, "drain"))
			hf_drain_parse(
			    json_string_value(json_object_get(o, "drain")),
			    &in->drain);
	} else {
		stage_from_flags(in, o);
	}
	in->replaced_node = str_dup_json(o, "replaced_node");
	in->replaced_address = str_dup_json(o, "replaced_address");
	in->replace_pending = bool_json(o, "replace_pending");
	hf_codec_kv_from_json(&in->ports, json_object_get(o, "ports"));
	json_array_foreach(json_object_get(o, "tasks"), i, j)
	{
		struct hf_task_slot *sl;

		if (!json_is_string(json_object_get(j, "task")))
			continue;
		sl = HF_VEC_PUSH(&in->slots);
		sl->task = str_dup_json(j, "task");
		sl->cur = task_rec_from_json(json_object_get(j, "current"));
		sl->failures = (unsigned)int_json(j, "failures", 0);
		sl->backoff_until = int_json(j, "backoff_until", 0);
		sl->once_done = bool_json(j, "once_done");
		sl->want_running = bool_json(j, "want_running");
		sl->launches = (uint64_t)int_json(j, "launches", 0);
		sl->restarts = (uint64_t)int_json(j, "restarts", 0);
	}
	return in;
}

json_t *hf_codec_run(const struct hf_plan_run *r)
{
	json_t *o = json_object();

	json_object_set_new(o, "plan", json_string(r->plan));
	json_object_set_new(o, "number", json_integer(r->number));
	json_object_set_new(o, "active", json_boolean(r->active));
	json_object_set_new(o, "interrupted", json_boolean(r->interrupted));
	json_object_set_new(o, "status", json_string(hf_status_name(r->status)));
	json_object_set_new(o, "config_id", str_or_null(r->config_id));
	json_object_set_new(o, "completed", strs_json(&r->completed));
	json_object_set_new(o, "force_complete", strs_json(&r->force_complete));
	json_object_set_new(o, "interrupted_phases",
			    strs_json(&r->interrupted_phases));
	json_object_set_new(o, "continues", hf_codec_kv_json(&r->continues));
	json_object_set_new(o, "params", hf_codec_kv_json(&r->params));
	json_object_set_new(o, "step_started", hf_codec_kv_json(&r->step_started));
	json_object_set_new(o, "reverted", json_boolean(r->reverted));
	json_object_set_new(o, "started_at", json_integer(r->started_at));
	json_object_set_new(o, "finished_at", json_integer(r->finished_at));
	return o;
}

static void run_from_json(struct hf_plan_run *r, const json_t *o)
{
	const char *st = json_string_value(json_object_get(o, "status"));

	r->plan = str_dup_json(o, "plan");
	r->number = (unsigned)int_json(o, "number", 0);
	r->active = bool_json(o, "active");
	r->interrupted = bool_json(o, "interrupted");
	if (!st || !hf_status_parse(st, &r->status))
		r->status = HF_STATUS_PENDING;
	r->config_id = str_dup_json(o, "config_id");
	strs_from_json(&r->completed, json_object_get(o, "completed"));
	strs_from_json(&r->force_complete, json_object_get(o, "force_complete"));
	strs_from_json(&r->interrupted_phases,
		       json_object_get(o, "interrupted_phases"));
	hf_codec_kv_from_json(&r->continues, json_object_get(o, "continues"));
	hf_codec_kv_from_json(&r->params, json_object_get(o, "params"));
	hf_codec_kv_from_json(&r->step_started, json_object_get(o, "step_started"));
	r->reverted = bool_json(o, "reverted");
	r->started_at = int_json(o, "started_at", 0);
	r->finished_at = int_json(o, "finished_at", 0);
}


/* ------------------------------------------------------------------ */
/* Loading: every record is checked; a damaged one is an error          */

/*
 * What a field of a record may hold. A field of a known record is either
 * absent (written by an older holdfast; the loader's default applies) or
 * of its type: anything else means the record was damaged, and the load
 * fails naming it rather than guessing, since a record read wrong would
 * be acted on (an instance that vanished has its tasks stopped).
 */
enum field_type {
	F_STR,
	F_STR_NULL,
	F_INT,
	F_INT_NULL,
	F_NUM,
	F_BOOL,
	F_BOOL_NULL,
	F_STR_MAP,   /* an object of strings */
	F_STR_LIST,  /* an array of strings */
	F_LIST,      /* an array; its items are checked by the caller */
	F_OBJ_NULL,  /* an object (checked by the caller) or null */
	F_COUNT_MAP, /* an object of pod counts (0 .. HF_SPEC_POD_COUNT_MAX) */
};

struct field {
	const char *name;
	enum field_type type;
	bool required;
};

static const struct field node_fields[] = {
    {"id", F_STR, true},          {"hostname", F_STR_NULL, false},
    {"address", F_STR_NULL, false}, {"attributes", F_STR_MAP, false},
    {"cpus", F_NUM, false},       {"memory_mb", F_NUM, false},
    {"disk_mb", F_NUM, false},    {"port_begin", F_INT, false},
    {"port_end", F_INT, false},   {"cgroups", F_STR_NULL, false},
    {"last_seen", F_INT, false},  {"delete_volumes", F_STR_LIST, false},
    {"decommissioned", F_BOOL, false}, {"storage", F_OBJ_NULL, false},
};

/* A node's storage pool (hf_node_storage); figures are bytes, 0 or more. */
static const struct field storage_fields[] = {
    {"pool", F_STR_NULL, false}, {"capacity", F_INT, true},
    {"provisioned", F_INT, true}, {"used", F_INT, true},
    {"free", F_INT, true}, {"port", F_INT, false},
};

static const struct field service_fields[] = {
    {"name", F_STR, true},           {"target", F_STR_NULL, false},
    {"previous", F_STR_NULL, false}, {"next_config", F_INT, false},
    {"removing", F_BOOL, false},     {"delete_volumes", F_BOOL, false},
    {"created", F_INT, false},
};

static const struct field config_fields[] = {
    {"id", F_STR, true},           {"text", F_STR, true},
    {"file", F_STR_NULL, false},   {"options", F_STR_MAP, false},
    {"templates", F_STR_MAP, false}, {"created", F_INT, false},
    {"counts", F_COUNT_MAP, false}, {"name", F_STR_NULL, false},
};

static const struct field instance_fields[] = {
    {"name", F_STR, true},
    {"pod", F_STR, true},
    {"index", F_INT, false},
    {"node", F_STR_NULL, false},
    {"ports", F_STR_MAP, false},
    {"message", F_STR_NULL, false},
    {"paused", F_BOOL, false},
    {"state", F_STR, false},
    {"drain", F_STR, false},
    /* A record written before the lifecycle table: its stage as flags. */
    {"replacing", F_BOOL, false},
    {"replace_deleting", F_BOOL, false},
    {"decom", F_INT, false},
    {"drain_done", F_BOOL, false},
    {"drain_failed", F_BOOL, false},
    {"drain_skipped", F_BOOL, false},
    {"replaced_node", F_STR_NULL, false},
    {"replaced_address", F_STR_NULL, false},
    {"replace_pending", F_BOOL, false},
    {"tasks", F_LIST, true},
};

static const struct field slot_fields[] = {
    {"task", F_STR, true},          {"current", F_OBJ_NULL, false},
    {"failures", F_INT, false},     {"backoff_until", F_INT, false},
    {"once_done", F_BOOL, false},   {"want_running", F_BOOL, false},
    {"launches", F_INT, false},     {"restarts", F_INT, false},
};

static const struct field task_fields[] = {
    {"id", F_STR, true},          {"config_id", F_STR_NULL, false},
    {"run", F_STR_NULL, false},   {"state", F_STR, true},
    {"ready", F_BOOL, false},     {"healthy", F_BOOL_NULL, false},
    {"exit_code", F_INT_NULL, false}, {"signal", F_INT_NULL, false},
    {"oom_killed", F_BOOL, false}, {"kill", F_BOOL, false},
    {"restart", F_BOOL, false},   {"paused", F_BOOL, false},
    {"permanent", F_BOOL, false},
    {"launched_at", F_INT, false}, {"started_at", F_INT, false},
    {"finished_at", F_INT, false}, {"message", F_STR_NULL, false},
    {"params", F_STR_MAP, false},
    {"in_place_restarts", F_INT, false}, {"backoff", F_BOOL, false},
    {"restart_at", F_INT_NULL, false}, {"last_exit_code", F_INT_NULL, false},
    {"last_signal", F_INT_NULL, false}, {"last_exit_at", F_INT_NULL, false},
};

static const struct field run_fields[] = {
    {"plan", F_STR, true},
    {"number", F_INT, false},
    {"active", F_BOOL, false},
    {"interrupted", F_BOOL, false},
    {"status", F_STR, false},
    {"config_id", F_STR_NULL, false},
    {"completed", F_STR_LIST, false},
    {"force_complete", F_STR_LIST, false},
    {"interrupted_phases", F_STR_LIST, false},
    {"continues", F_STR_MAP, false},
    {"params", F_STR_MAP, false},
    {"step_started", F_STR_MAP, false},
    {"reverted", F_BOOL, false},
    {"started_at", F_INT, false},
    {"finished_at", F_INT, false},
};

static const struct field cluster_fields[] = {
    {"id", F_STR, true},
    {"created", F_INT, false},
};

static bool all_strings(const json_t *j, bool object)
{
	const char *k;
	size_t i;
	json_t *v;

	if (object) {
		json_object_foreach((json_t *)j, k, v) if (!json_is_string(v))
		    return false;
	} else {
		json_array_foreach(j, i, v) if (!json_is_string(v))
		    return false;
	}
	return true;
}

static bool field_ok(const json_t *v, enum field_type t)
{
	switch (t) {
	case F_STR:
		return json_is_string(v);
	case F_STR_NULL:
		return json_is_string(v) || json_is_null(v);
	case F_INT:
		return json_is_integer(v);
	case F_INT_NULL:
		return json_is_integer(v) || json_is_null(v);
	case F_NUM:
		return json_is_number(v);
	case F_BOOL:
		return json_is_boolean(v);
	case F_BOOL_NULL:
		return json_is_boolean(v) || json_is_null(v);
	case F_STR_MAP:
		return json_is_object(v) && all_strings(v, true);
	case F_STR_LIST:
		return json_is_array(v) && all_strings(v, false);
	case F_LIST:
		return json_is_array(v);
	case F_OBJ_NULL:
		return json_is_object(v) || json_is_null(v);
	case F_COUNT_MAP: {
		const char *k;
		json_t *c;

		if (!json_is_object(v))
			return false;
		json_object_foreach((json_t *)v, k, c)
		    if (!json_is_integer(c) || json_integer_value(c) < 0 ||
			json_integer_value(c) > HF_SPEC_POD_COUNT_MAX)
			return false;
		return true;
	}
	}
	return false;
}

static const char *const field_type_names[] = {
    [F_STR] = "a string",
    [F_STR_NULL] = "a string or null",
    [F_INT] = "an integer",
    [F_INT_NULL] = "an integer or null",
    [F_NUM] = "a number",
    [F_BOOL] = "true or false",
    [F_BOOL_NULL] = "true, false or null",
    [F_STR_MAP] = "an object of strings",
    [F_STR_LIST] = "an array of strings",
    [F_LIST] = "an array",
    [F_OBJ_NULL] = "an object or null",
    [F_COUNT_MAP] = "an object of pod counts",
};

/*
 * Checks o against a record's fields; where says which part of the record
 * ("", "tasks[2].current"). Returns NULL or the problem (the caller frees).
 */
static char *check_fields(const json_t *o, const struct field *f, size_t n,
			  const char *where)
{
	const char *sep = *where ? "." : "";

	if (!json_is_object(o))
		return hf_xasprintf("%s%sis not a JSON object", where,
				    *where ? " " : "");
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_object_get(o, f[i].name);

		if (!v && f[i].required)
			return hf_xasprintf("%s%s%s is missing", where, sep,
					    f[i].name);
		if (v && !field_ok(v, f[i].type))
			return hf_xasprintf("%s%s%s is not %s", where, sep,
					    f[i].name,
					    field_type_names[f[i].type]);
	}
	return NULL;
}

#define CHECK_FIELDS(o, table, where)                                          \
	check_fields(o, table, HF_ARRAY_LEN(table), where)

/* A state a record holds (STAGING ... LOST). */
static bool task_state_known(const char *name)
{
	enum hf_task_state st;

	return hf_task_state_parse(name, &st) && st <= HF_TS_LOST;
}

/* The instance record's task slots and their launches. */
static char *check_instance(const json_t *o)
{
	char *why = CHECK_FIELDS(o, instance_fields, "");
	const char *st = json_string_value(json_object_get(o, "state"));
	const char *dr = json_string_value(json_object_get(o, "drain"));
	enum hf_instance_state state;
	enum hf_drain drain;
	size_t i;
	json_t *j;

	if (why)
		return why;
	if (st && !hf_instance_state_parse(st, &state))
		return hf_xasprintf("state '%s' is not an instance state", st);
	if (dr && !hf_drain_parse(dr, &drain))
		return hf_xasprintf("drain '%s' is not a drain outcome", dr);
	json_array_foreach(json_object_get(o, "tasks"), i, j)
	{
		char where[48];
		json_t *cur = json_object_get(j, "current");

		snprintf(where, sizeof(where), "tasks[%zu]", i);
		why = CHECK_FIELDS(j, slot_fields, where);
		if (why)
			return why;
		if (!json_is_object(cur))
			continue;
		snprintf(where, sizeof(where), "tasks[%zu].current", i);
		why = CHECK_FIELDS(cur, task_fields, where);
		if (why)
			return why;
		if (!task_state_known(
			json_string_value(json_object_get(cur, "state"))))
			return hf_xasprintf("%s.state '%s' is not a task state",
					    where,
					    json_string_value(
						json_object_get(cur, "state")));
	}
	return NULL;
}

static char *check_run(const json_t *o)
{
	char *why = CHECK_FIELDS(o, run_fields, "");
	const char *st = json_string_value(json_object_get(o, "status"));
	enum hf_status status;

	if (!why && st && !hf_status_parse(st, &status))
		why = hf_xasprintf("status '%s' is not a plan status", st);
	return why;
}

/*
 * Parses a record's value as JSON (a damaged record is an error that names
 * its key, never an absence) and checks it with check, which returns NULL
 * or a problem. Returns the object, or NULL with *err set. secret: the
 * record holds a secret, so a parse error says where but not what
 * jansson saw there (its "near '...'" may quote the secret's text).
 */
static json_t *load_record_as(const struct hf_codec_rec *kv,
			      char *(*check)(const json_t *o), bool secret,
			      char **err)
{
	json_error_t jerr;
	json_t *o = json_loadb(kv->value, kv->len, JSON_REJECT_DUPLICATES, &jerr);
	char *why;

	if (!o) {
		*err = hf_xasprintf("the store's record %s is damaged: not "
				    "valid JSON (%s at byte %d)",
				    kv->key,
				    secret ? "a syntax error" : jerr.text,
				    jerr.position);
		return NULL;
	}
	why = check(o);
	if (why) {
		*err = hf_xasprintf("the store's record %s is damaged: %s",
				    kv->key, why);
		free(why);
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *load_record(const struct hf_codec_rec *kv,
			   char *(*check)(const json_t *o), char **err)
{
	return load_record_as(kv, check, false, err);
}

static char *check_node(const json_t *o)
{
	char *why = CHECK_FIELDS(o, node_fields, "");
	const json_t *st = json_object_get(o, "storage");
	static const char *const figures[] = {"capacity", "provisioned",
					      "used", "free"};

	if (why || !json_is_object(st))
		return why;
	why = CHECK_FIELDS(st, storage_fields, "storage");
	for (size_t i = 0; !why && i < HF_ARRAY_LEN(figures); i++)
		if (json_integer_value(json_object_get(st, figures[i])) < 0)
			why = hf_xasprintf("storage.%s is negative",
					   figures[i]);
	return why;
}

static char *check_service(const json_t *o)
{
	return CHECK_FIELDS(o, service_fields, "");
}

static char *check_config(const json_t *o)
{
	return CHECK_FIELDS(o, config_fields, "");
}

static char *check_cluster(const json_t *o)
{
	char *why = CHECK_FIELDS(o, cluster_fields, "");
	const char *id = json_string_value(json_object_get(o, "id"));

	if (!why && (strlen(id) < 16 || strlen(id) > 64 ||
		     strspn(id, "0123456789abcdef") != strlen(id)))
		why = hf_xstrdup("id is not a cluster id (16 to 64 lowercase "
				 "hex digits)");
	return why;
}

/* The last path segment of a key, unescaped. */
static char *last_segment(const char *key)
{
	const char *slash = strrchr(key, '/');

	return unescape(slash ? slash + 1 : key);
}

/* Fails the load when a record's own name is not the one its key gives. */
static char *check_name(const struct hf_codec_rec *kv, const json_t *o,
			const char *field)
{
	char *seg = last_segment(kv->key);
	const char *name = json_string_value(json_object_get(o, field));
	char *err = NULL;

	if (!name || strcmp(seg, name) != 0)
		err = hf_xasprintf("the store's record %s is damaged: its %s "
				   "is '%s', but its key says '%s'",
				   kv->key, field, name ? name : "", seg);
	free(seg);
	return err;
}

int hf_codec_load_nodes(struct hf_model *m, const struct hf_codec_rec *recs,
			size_t nrecs, char **err)
{
	*err = NULL;
	for (size_t i = 0; i < nrecs; i++) {
		json_t *o = load_record(&recs[i], check_node, err);
		struct hf_node *n;
		size_t k;
		json_t *v;

		if (!o)
			return HF_EINVAL;
		*err = check_name(&recs[i], o, "id");
		if (*err) {
			json_decref(o);
			return HF_EINVAL;
		}
		n = hf_xcalloc(1, sizeof(*n));
		n->id = str_dup_json(o, "id");
		n->hostname = str_dup_json(o, "hostname");
		n->address = str_dup_json(o, "address");
		hf_codec_kv_from_json(&n->attributes, json_object_get(o, "attributes"));
		n->cpus = json_number_value(json_object_get(o, "cpus"));
		n->memory_mb = json_number_value(json_object_get(o, "memory_mb"));
		n->disk_mb = json_number_value(json_object_get(o, "disk_mb"));
		n->port_begin = int_json(o, "port_begin", 10000);
		n->port_end = int_json(o, "port_end", 20000);
		n->cgroups = str_dup_json(o, "cgroups");
		n->last_seen = int_json(o, "last_seen", 0);
		n->decommissioned = bool_json(o, "decommissioned");
		v = json_object_get(o, "storage");
		if (json_is_object(v)) {
			n->storage = hf_xcalloc(1, sizeof(*n->storage));
			n->storage->pool = str_dup_json(v, "pool");
			n->storage->capacity = int_json(v, "capacity", 0);
			n->storage->provisioned = int_json(v, "provisioned", 0);
			n->storage->used = int_json(v, "used", 0);
			n->storage->free = int_json(v, "free", 0);
			n->storage->port = int_json(v, "port", 0);
		}
		hf_model_node_add(m, n);
		/* The volumes its agent is told to delete, then those kept. */
		json_array_foreach(json_object_get(o, "delete_volumes"), k, v)
		{
			if (json_is_string(v) &&
			    !hf_model_volume_find(m, json_string_value(v), n->id,
						  HF_VOL_DELETING))
				hf_model_volume_add(m, json_string_value(v), n->id,
						    HF_VOL_DELETING);
		}
		json_array_foreach(json_object_get(o, "kept_volumes"), k, v)
		{
			const char *key = json_string_value(json_object_get(v, "key"));
			const char *kind =
			    json_string_value(json_object_get(v, "kind"));
			struct hf_volume *vol;

			if (!key)
				continue;
			vol = hf_model_volume_add(m, key, n->id, HF_VOL_KEPT);
			vol->why = str_dup_json(v, "why");
			if (!vol->why)
				vol->why = hf_xstrdup("kept");
			vol->since = int_json(v, "since", 0);
			vol->size_mb = int_json(v, "size_mb", 0);
			if (kind && strcmp(kind, "MOUNT") == 0)
				vol->kind = HF_VOLUME_MOUNT;
		}
		json_decref(o);
	}
	return 0;
}

static int load_service(struct hf_model *m, const struct hf_codec_rec *kv,
			char **err)
{
	json_t *o = load_record(kv, check_service, err);
	struct hf_service *svc;

	if (!o)
		return HF_EINVAL;
	*err = check_name(kv, o, "name");
	if (*err) {
		json_decref(o);
		return HF_EINVAL;
	}
	if (hf_model_service(m, json_string_value(json_object_get(o, "name")))) {
		*err = hf_xasprintf("the store's record %s is damaged: another "
				    "record names service '%s' too",
				    kv->key,
				    json_string_value(json_object_get(o, "name")));
		json_decref(o);
		return HF_EINVAL;
	}
	svc = hf_model_service_add(m, json_string_value(json_object_get(o, "name")));
	svc->target = str_dup_json(o, "target");
	svc->previous = str_dup_json(o, "previous");
	svc->next_config = (unsigned)int_json(o, "next_config", 1);
	svc->removing = bool_json(o, "removing");
	svc->delete_volumes = bool_json(o, "delete_volumes");
	svc->created = int_json(o, "created", 0);
	json_decref(o);
	return 0;
}

/* The first error of a spec's diagnostics, as one line. */
static char *first_error(const struct hf_diags *d)
{
	for (size_t i = 0; i < d->len; i++) {
		const struct hf_diag *g = &d->items[i];

		if (g->level == HF_DIAG_ERROR)
			return hf_xasprintf("line %d col %d: %s%s%s", g->line,
					    g->col, g->path ? g->path : "",
					    g->path && *g->path ? ": " : "",
					    g->msg);
	}
	return hf_xstrdup("it does not parse");
}

/* One record under a service: a config, an instance or a plan run. */
static int load_service_part(struct hf_service *svc,
			     const struct hf_codec_rec *kv, const char *kind,
			     struct hf_strlist *warnings, char **err)
{
	json_t *o = NULL;
	int rc = HF_EINVAL;

	if (strcmp(kind, "configs") == 0) {
		struct hf_config *cfg;
		struct hf_diags d = {0};

		o = load_record(kv, check_config, err);
		if (!o || (*err = check_name(kv, o, "id")))
			goto out;
		cfg = hf_xcalloc(1, sizeof(*cfg));
		cfg->id = str_dup_json(o, "id");
		cfg->text = str_dup_json(o, "text");
		cfg->file = str_dup_json(o, "file");
		cfg->name = str_dup_json(o, "name");
		cfg->created = int_json(o, "created", 0);
		hf_codec_kv_from_json(&cfg->options, json_object_get(o, "options"));
		hf_codec_kv_from_json(&cfg->templates, json_object_get(o, "templates"));
		counts_from_json(&cfg->counts, json_object_get(o, "counts"));
		/*
		 * An old config that no longer loads is kept, unused; the
		 * target must load (load_services).
		 */
		if (hf_model_config_load(cfg, true, &d)) {
			cfg->load_error = first_error(&d);
			if (warnings &&
			    (!svc->target || strcmp(svc->target, cfg->id) != 0)) {
				char *w = hf_xasprintf(
				    "service %s: stored config %s no longer "
				    "loads; it is kept but cannot be used",
				    svc->name, cfg->id);

				hf_strlist_push(warnings, w);
				free(w);
			}
		}
		hf_diags_release(&d);
		*HF_VEC_PUSH(&svc->configs) = cfg;
	} else if (strcmp(kind, "instances") == 0) {
		struct hf_instance *in;

		o = load_record(kv, check_instance, err);
		if (!o || (*err = check_name(kv, o, "name")))
			goto out;
		in = instance_from_json(o);
		*HF_VEC_PUSH(&svc->instances) = in;
		hf_map_put(&svc->instance_index, in->name, in);
	} else if (strcmp(kind, "runs") == 0) {
		struct hf_plan_run *r;

		o = load_record(kv, check_run, err);
		if (!o || (*err = check_name(kv, o, "plan")))
			goto out;
		r = HF_VEC_PUSH(&svc->runs);
		run_from_json(r, o);
	} else {
		*err = hf_xasprintf("the store's record %s is of a kind this "
				    "holdfast does not know ('%s')",
				    kv->key, kind);
		goto out;
	}
	rc = 0;
out:
	json_decref(o);
	return rc;
}

int hf_codec_load_services(struct hf_model *m,
			   const struct hf_codec_rec *recs, size_t n,
			   struct hf_strlist *warnings, char **err)
{
	const size_t plen = strlen("/services/");
	int rc = 0;

	*err = NULL;
	/* Service records first: their keys have no further '/'. */
	for (size_t i = 0; !rc && i < n; i++)
		if (!strchr(recs[i].key + plen, '/'))
			rc = load_service(m, &recs[i], err);
	for (size_t i = 0; !rc && i < n; i++) {
		const char *rest = recs[i].key + plen;
		const char *slash = strchr(rest, '/'), *kind, *end;
		char *escaped, *name, *kindname;
		struct hf_service *svc;

		if (!slash)
			continue;
		escaped = hf_xstrndup(rest, (size_t)(slash - rest));
		name = unescape(escaped);
		svc = hf_model_service(m, name);
		free(escaped);
		kind = slash + 1;
		end = strchr(kind, '/');
		if (!svc || !end || !end[1]) {
			*err = hf_xasprintf(
			    !svc ? "the store's record %s belongs to no "
				   "service: the record of service '%s' is "
				   "missing"
				 : "the store's key %s is not a record of "
				   "service '%s'",
			    recs[i].key, name);
			free(name);
			return HF_EINVAL;
		}
		free(name);
		kindname = hf_xstrndup(kind, (size_t)(end - kind));
		rc = load_service_part(svc, &recs[i], kindname, warnings, err);
		free(kindname);
	}
	/*
	 * A service always points at a config that was written first, and
	 * was valid then: a target that is missing or no longer loads would
	 * be a service without plans or tasks, and every task of it would be
	 * stopped.
	 */
	for (size_t i = 0; !rc && i < m->services.len; i++) {
		struct hf_service *svc = m->services.items[i];
		struct hf_config *cfg = hf_model_target(svc);
		char *key;

		if (!svc->target || (cfg && cfg->spec))
			continue;
		if (cfg) {
			key = hf_codec_key("/services/%s/configs/%s", svc->name,
					   svc->target);
			*err = hf_xasprintf("the store's record %s is damaged: "
					    "it is the target config of service "
					    "'%s' and its spec no longer loads "
					    "(%s)",
					    key, svc->name, cfg->load_error);
		} else {
			key = hf_codec_key("/services/%s", svc->name, NULL);
			*err = hf_xasprintf("the store's record %s is damaged or "
					    "its config is lost: its target "
					    "config %s is not in the store",
					    key, svc->target);
		}
		free(key);
		rc = HF_EINVAL;
	}
	return rc;
}

void hf_codec_derive_volumes(struct hf_model *m)
{
	for (size_t i = 0; i < m->services.len; i++) {
		struct hf_service *svc = m->services.items[i];
		struct hf_config *cfg = hf_model_target(svc);

		for (size_t k = 0; k < svc->instances.len; k++) {
			struct hf_instance *in = svc->instances.items[k];
			char *key;

			if (!in->node)
				continue;
			key = hf_model_volume_key(svc->name, in->name);
			if (!hf_model_volume_find(m, key, in->node, HF_VOL_IN_USE))
				hf_model_volume_describe(
				    hf_model_volume_add(m, key, in->node,
							HF_VOL_IN_USE),
				    hf_model_pod(cfg, in->pod));
			free(key);
		}
	}
}

int hf_codec_load_cluster(const struct hf_codec_rec *rec, char **id,
			  char **err)
{
	json_t *o;

	*id = NULL;
	*err = NULL;
	o = load_record(rec, check_cluster, err);
	if (!o)
		return HF_EINVAL;
	*id = str_dup_json(o, "id");
	json_decref(o);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Encoding of the records without a function of their own above       */

json_t *hf_codec_service(const struct hf_service *svc)
{
	return json_pack("{s:s, s:o, s:o, s:i, s:b, s:b, s:I}", "name",
			 svc->name, "target", str_or_null(svc->target),
			 "previous", str_or_null(svc->previous), "next_config",
			 (int)svc->next_config, "removing", svc->removing,
			 "delete_volumes", svc->delete_volumes, "created",
			 (json_int_t)svc->created);
}

json_t *hf_codec_config(const struct hf_config *cfg)
{
	json_t *counts = json_object(), *o;

	/* Counts are decimal in memory (the spec loader's), numbers here. */
	for (size_t i = 0; i < cfg->counts.len; i++) {
		const struct hf_kv *kv = &cfg->counts.items[i];

		json_object_set_new(counts, kv->key,
				    json_integer(strtoll(kv->value, NULL, 10)));
	}
	o = json_pack("{s:s, s:s, s:o, s:o, s:o, s:I, s:o}", "id", cfg->id,
			 "text", cfg->text, "file", str_or_null(cfg->file),
			 "options", hf_codec_kv_json(&cfg->options), "templates",
			 hf_codec_kv_json(&cfg->templates), "created",
			 (json_int_t)cfg->created, "counts", counts);
	if (cfg->name)
		json_object_set_new(o, "name", json_string(cfg->name));
	return o;
}

json_t *hf_codec_node_storage(const struct hf_node_storage *st)
{
	return json_pack("{s:o, s:I, s:I, s:I, s:I, s:I}", "pool",
			 str_or_null(st->pool), "capacity",
			 (json_int_t)st->capacity, "provisioned",
			 (json_int_t)st->provisioned, "used",
			 (json_int_t)st->used, "free", (json_int_t)st->free,
			 "port", (json_int_t)st->port);
}

json_t *hf_codec_node(const struct hf_model *m, const struct hf_node *n)
{
	json_t *kept = json_array(), *deleting = json_array(), *o;

	/* The volumes on the node that no instance owns travel with it. */
	for (size_t i = 0; i < m->volumes.len; i++) {
		const struct hf_volume *v = m->volumes.items[i];

		if (strcmp(v->node, n->id) != 0)
			continue;
		if (v->state == HF_VOL_DELETING) {
			json_array_append_new(deleting, json_string(v->key));
		} else if (v->state == HF_VOL_KEPT) {
			json_t *k = json_pack("{s:s, s:s, s:I}", "key", v->key,
					      "why", v->why ? v->why : "kept",
					      "since", (json_int_t)v->since);

			if (v->size_mb > 0)
				json_object_set_new(k, "size_mb",
						    json_integer(v->size_mb));
			if (v->kind != HF_VOLUME_ROOT)
				json_object_set_new(
				    k, "kind",
				    json_string(hf_volume_type_name(v->kind)));
			json_array_append_new(kept, k);
		}
	}
	o = json_pack("{s:s, s:o, s:o, s:o, s:f, s:f, s:f, s:I, s:I, "
		      "s:o, s:I, s:o, s:b, s:o}",
		      "id", n->id, "hostname", str_or_null(n->hostname),
		      "address", str_or_null(n->address), "attributes",
		      hf_codec_kv_json(&n->attributes), "cpus", n->cpus, "memory_mb",
		      n->memory_mb, "disk_mb", n->disk_mb, "port_begin",
		      (json_int_t)n->port_begin, "port_end",
		      (json_int_t)n->port_end, "cgroups",
		      str_or_null(n->cgroups), "last_seen",
		      (json_int_t)n->last_seen, "delete_volumes", deleting,
		      "decommissioned", n->decommissioned, "kept_volumes",
		      kept);
	/* Only for a node with a pool: other records stay as they were. */
	if (n->storage)
		json_object_set_new(o, "storage",
				    hf_codec_node_storage(n->storage));
	return o;
}

/* ------------------------------------------------------------------ */
/* Replicated volumes                                                   */

/*
 * Everything of a volume's record but its secret, which this never
 * reads: the API's form is built on it, so no change here can leak the
 * key into API output.
 */
static json_t *xvol_public_json(const struct hf_xvol *v)
{
	json_t *reps = json_array(), *o;

	for (size_t i = 0; i < v->replicas.len; i++) {
		const struct hf_xrep *r = &v->replicas.items[i];

		json_t *e = json_pack(
		    "{s:s, s:s, s:s, s:I, s:I, s:I, s:o}", "node", r->node,
		    "id", r->id, "state", hf_xrep_state_name(r->state),
		    "since", (json_int_t)r->since, "resync_done",
		    (json_int_t)r->resync_done, "resync_total",
		    (json_int_t)r->resync_total, "why", str_or_null(r->why));

		if (r->clone)
			json_object_set_new(e, "clone", json_string(r->clone));
		json_array_append_new(reps, e);
	}
	json_t *snaps = json_array();

	for (size_t i = 0; i < v->snaps.len; i++) {
		const struct hf_xsnap *s = &v->snaps.items[i];
		json_t *reps_of = json_array();

		for (size_t k = 0; k < s->replicas.len; k++)
			json_array_append_new(reps_of,
					      json_string(s->replicas.items[k]));
		json_array_append_new(
		    snaps,
		    json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:o}", "id",
			      s->id, "name", s->name, "state",
			      hf_xsnap_state_name(s->state), "created",
			      (json_int_t)s->created, "taken",
			      (json_int_t)s->taken, "size", (json_int_t)s->size,
			      "replicas", reps_of, "why", str_or_null(s->why)));
	}
	o = json_pack("{s:s, s:s, s:s, s:o, s:s, s:I, s:i, s:i, s:b, s:I, "
			 "s:o, s:b, s:I, s:o, s:b, s:o, s:o, s:I, s:{s:o, s:o, "
			 "s:o, s:I}, s:{s:o, s:o, s:o, s:o}}",
			 "name", v->name, "id", v->id ? v->id : "", "service",
			 v->service ? v->service : "", "instance",
			 str_or_null(v->instance), "state",
			 hf_xvol_state_name(v->state), "size",
			 (json_int_t)v->size, "repl", (int)v->repl,
			 "min_sync", (int)v->min_sync, "ro", v->ro, "epoch",
			 (json_int_t)v->epoch, "attached",
			 str_or_null(v->attached), "formatted", v->formatted,
			 "created", (json_int_t)v->created, "replicas", reps,
			 "secure", v->secure, "snapshots", snaps, "restore",
			 str_or_null(v->restore), "restore_after",
			 (json_int_t)v->restore_after, "last_backup", "id",
			 str_or_null(v->bk_last), "to", str_or_null(v->bk_to),
			 "snapshot", str_or_null(v->bk_snap), "at",
			 (json_int_t)v->bk_at, "from_backup",
			 "credential", str_or_null(v->rs_cred), "url",
			 str_or_null(v->rs_url), "volume",
			 str_or_null(v->rs_volume), "backup",
			 str_or_null(v->rs_backup));
	if (v->key_name)
		json_object_set_new(o, "secret_key", json_string(v->key_name));
	json_object_set_new(o, "fs",
			    json_string(v->fs == HF_FS_XFS    ? "xfs"
					: v->fs == HF_FS_AUTO ? "auto"
							      : "ext4"));
	json_object_set_new(
	    o, "backup_job",
	    v->bk_run.id
		? json_pack("{s:s, s:s, s:s, s:s, s:o, s:I}", "id",
			    v->bk_run.id, "snapshot", v->bk_run.snap, "to",
			    v->bk_run.to, "credential", v->bk_run.cred, "node",
			    str_or_null(v->bk_run.node), "started",
			    (json_int_t)v->bk_run.started)
		: json_null());
	json_object_set_new(
	    o, "backup_schedule",
	    v->bk_sched.to
		? json_pack("{s:s, s:s, s:I, s:i}", "to", v->bk_sched.to,
			    "credential", v->bk_sched.cred, "every_ms",
			    (json_int_t)v->bk_sched.every_ms, "keep",
			    (int)v->bk_sched.keep)
		: json_null());
	return o;
}

json_t *hf_codec_xvol(const struct hf_xvol *v)
{
	json_t *o = xvol_public_json(v);

	json_object_set_new(o, "secret",
			    json_string(v->secret ? v->secret : ""));
	if (v->data_key)
		json_object_set_new(o, "data_key", json_string(v->data_key));
	return o;
}

json_t *hf_xvol_to_json(const struct hf_xvol *v)
{
	json_t *o = xvol_public_json(v);
	json_t *reps = json_object_get(o, "replicas");
	unsigned in_sync = hf_xvol_in_sync(v);

	json_object_set_new(o, "in_sync", json_integer(in_sync));
	json_object_set_new(o, "degraded", json_boolean(in_sync < v->repl));
	for (size_t i = 0; i < v->replicas.len; i++) {
		const struct hf_xrep *r = &v->replicas.items[i];
		json_t *percent = json_null();

		if (r->state == HF_XREP_RESYNCING && r->resync_total > 0) {
			int64_t done = r->resync_done < 0 ? 0 : r->resync_done;

			if (done > r->resync_total)
				done = r->resync_total;
			/* Floor: 100 only once everything is copied. */
			percent = json_integer(
			    (json_int_t)((double)done * 100.0 /
					 (double)r->resync_total));
		}
		json_object_set_new(json_array_get(reps, i), "percent",
				    percent);
	}
	return o;
}

static const struct field xvol_fields[] = {
    {"name", F_STR, true},	  {"id", F_STR, true},
    {"service", F_STR, true},	  {"instance", F_STR_NULL, false},
    {"state", F_STR, true},	  {"size", F_INT, true},
    {"repl", F_INT, true},	  {"min_sync", F_INT, true},
    {"ro", F_BOOL, false},	  {"epoch", F_INT, true},
    {"attached", F_STR_NULL, false}, {"formatted", F_BOOL, false},
    {"secret", F_STR, true},	  {"created", F_INT, false},
    {"replicas", F_LIST, true},  {"secure", F_BOOL, false},
    {"data_key", F_STR, false},  {"snapshots", F_LIST, false},
    {"restore", F_STR_NULL, false}, {"restore_after", F_INT, false},
    {"last_backup", F_OBJ_NULL, false}, {"from_backup", F_OBJ_NULL, false},
    {"backup_job", F_OBJ_NULL, false}, {"backup_schedule", F_OBJ_NULL, false},
    {"secret_key", F_STR, false}, {"fs", F_STR, false},
};

static const struct field xsnap_fields[] = {
    {"id", F_STR, true},      {"name", F_STR, true},
    {"state", F_STR, true},   {"created", F_INT, false},
    {"taken", F_INT, false},  {"size", F_INT, false},
    {"replicas", F_LIST, false}, {"why", F_STR_NULL, false},
};

static const struct field xrep_fields[] = {
    {"node", F_STR, true},	    {"id", F_STR, true},
    {"state", F_STR, true},	    {"since", F_INT, false},
    {"resync_done", F_INT, false}, {"resync_total", F_INT, false},
    {"clone", F_STR_NULL, false},
    {"why", F_STR_NULL, false},
};

/* A string field of a checked record (NULL when absent or null). */
static const char *field_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* Whether s is min..max lowercase hex digits. */
static bool hex_ok(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);

	return n >= min && n <= max && strspn(s, "0123456789abcdef") == n;
}

/* Volume and replica ids: 16 to 64 lowercase hex digits (hf_random_hex). */
#define XVOL_ID_MIN 16
#define XVOL_ID_MAX 64
/* The volume's key: 16 to 64 bytes, in hex. */
#define XVOL_SECRET_MIN 32
#define XVOL_SECRET_MAX 128

static char *check_xrep(const json_t *r, size_t i)
{
	char where[32];
	const char *id, *node, *st;
	enum hf_xrep_state state;
	char *why;

	snprintf(where, sizeof(where), "replicas[%zu]", i);
	why = CHECK_FIELDS(r, xrep_fields, where);
	if (why)
		return why;
	id = json_string_value(json_object_get(r, "id"));
	node = json_string_value(json_object_get(r, "node"));
	st = json_string_value(json_object_get(r, "state"));
	if (!*node)
		return hf_xasprintf("%s.node is empty", where);
	if (!hex_ok(id, XVOL_ID_MIN, XVOL_ID_MAX))
		return hf_xasprintf("%s.id '%s' is not a replica id (16 to 64 "
				    "lowercase hex digits)",
				    where, id);
	if (!hf_xrep_state_parse(st, &state))
		return hf_xasprintf("%s.state '%s' is not a replica state",
				    where, st);
	if (int_json(r, "resync_done", 0) < 0 ||
	    int_json(r, "resync_total", 0) < 0)
		return hf_xasprintf("%s: resync byte counts are negative",
				    where);
	return NULL;
}

/*
 * A volume record: its fields, then what they say together (the rules
 * that every writer keeps: an attachment bumps the epoch first, an
 * ACTIVE volume has an owner instance and a KEPT one none, never two
 * live replicas on one node).
 */
static char *check_xvol(const json_t *o)
{
	char *why = CHECK_FIELDS(o, xvol_fields, "");
	const char *name, *id, *st, *svc, *inst, *att, *secret;
	enum hf_xvol_state state;
	int64_t repl, min_sync, epoch;
	const json_t *reps, *r, *q;
	size_t i, k;

	if (why)
		return why;
	name = json_string_value(json_object_get(o, "name"));
	id = json_string_value(json_object_get(o, "id"));
	st = json_string_value(json_object_get(o, "state"));
	svc = json_string_value(json_object_get(o, "service"));
	inst = json_string_value(json_object_get(o, "instance"));
	att = json_string_value(json_object_get(o, "attached"));
	secret = json_string_value(json_object_get(o, "secret"));
	repl = int_json(o, "repl", 0);
	min_sync = int_json(o, "min_sync", 0);
	epoch = int_json(o, "epoch", 0);
	if (!hf_xvol_name_ok(name))
		return hf_xasprintf("name '%s' cannot name a volume (1 to %d "
				    "bytes, no '/', no control character, "
				    "not '.' or '..')",
				    name, HF_XVOL_NAME_MAX);
	if (!hex_ok(id, XVOL_ID_MIN, XVOL_ID_MAX))
		return hf_xasprintf("id '%s' is not a volume id (16 to 64 "
				    "lowercase hex digits)",
				    id);
	if (!hf_xvol_state_parse(st, &state))
		return hf_xasprintf("state '%s' is not a volume state", st);
	if (!*svc)
		return hf_xstrdup("service is empty");
	if (state == HF_XVOL_ACTIVE && (!inst || !*inst))
		return hf_xstrdup("an active volume has no instance");
	if (state == HF_XVOL_KEPT && inst)
		return hf_xasprintf("a kept volume names instance '%s'", inst);
	if (int_json(o, "size", 0) <= 0)
		return hf_xasprintf("size %lld is not a number of bytes",
				    (long long)int_json(o, "size", 0));
	if (repl < 1 || repl > HF_VOLOPTS_MAX_REPL)
		return hf_xasprintf("repl %lld is not 1 to %d", (long long)repl,
				    HF_VOLOPTS_MAX_REPL);
	if (min_sync < 1 || min_sync > repl)
		return hf_xasprintf("min_sync %lld is not 1 to repl (%lld)",
				    (long long)min_sync, (long long)repl);
	if (epoch < 0)
		return hf_xasprintf("epoch %lld is negative", (long long)epoch);
	if (att && !*att)
		return hf_xstrdup("attached is empty");
	if (att && epoch == 0)
		return hf_xasprintf("it is attached on '%s' at epoch 0 (an "
				    "attachment bumps the epoch first)",
				    att);
	if (bool_json(o, "formatted") && epoch == 0)
		return hf_xstrdup("it is formatted at epoch 0 (formatting "
				  "needs an attachment)");
	/* The secret's own text never goes into a message. */
	if (!hex_ok(secret, XVOL_SECRET_MIN, XVOL_SECRET_MAX) ||
	    strlen(secret) % 2)
		return hf_xstrdup("secret is not a volume key (32 to 128 "
				  "lowercase hex digits, whole bytes)");
	/* Nor the sealed data key's. */
	if (bool_json(o, "secure") &&
	    (!field_str(o, "data_key") ||
	     !hex_ok(field_str(o, "data_key"), HF_VOL_SEALED_HEX,
		     HF_VOL_SEALED_HEX)))
		return hf_xasprintf("an encrypted volume's data_key is not a "
				    "sealed key (%d lowercase hex digits)",
				    HF_VOL_SEALED_HEX);
	if (!bool_json(o, "secure") && json_object_get(o, "data_key"))
		return hf_xstrdup("a volume that is not encrypted has a "
				  "data_key");
	reps = json_object_get(o, "replicas");
	json_array_foreach(reps, i, r)
	{
		why = check_xrep(r, i);
		if (why)
			return why;
	}
	json_array_foreach(json_object_get(o, "snapshots"), i, r)
	{
		char where[32];
		enum hf_xsnap_state sst;
		const char *sid, *sname;
		size_t j;
		json_t *e;

		snprintf(where, sizeof(where), "snapshots[%zu]", i);
		if ((why = CHECK_FIELDS(r, xsnap_fields, where)))
			return why;
		sid = field_str(r, "id");
		sname = field_str(r, "name");
		if (!hex_ok(sid, XVOL_ID_MIN, XVOL_ID_MAX))
			return hf_xasprintf("%s.id '%s' is not a snapshot id "
					    "(16 to 64 lowercase hex digits)",
					    where, sid);
		if (!hf_xsnap_name_ok(sname))
			return hf_xasprintf("%s.name '%s' cannot name a "
					    "snapshot",
					    where, sname);
		if (!hf_xsnap_state_parse(field_str(r, "state"), &sst))
			return hf_xasprintf("%s.state '%s' is not a snapshot "
					    "state",
					    where, field_str(r, "state"));
		json_array_foreach(json_object_get(r, "replicas"), j, e)
			if (!json_is_string(e))
				return hf_xasprintf("%s.replicas lists a "
						    "non-string",
						    where);
		for (k = 0; k < i; k++) {
			q = json_array_get(json_object_get(o, "snapshots"), k);
			if (!strcmp(field_str(q, "id"), sid) ||
			    !strcmp(field_str(q, "name"), sname))
				return hf_xasprintf("snapshots[%zu] and [%zu] "
						    "share an id or a name",
						    k, i);
		}
	}
	/* Each pair once: a volume has a handful of replicas. */
	json_array_foreach(reps, i, r)
	{
		const char *rid = field_str(r, "id");
		const char *rnode = field_str(r, "node");
		bool live = strcmp(field_str(r, "state"), "deleting") != 0;

		for (k = i + 1; k < json_array_size(reps); k++) {
			q = json_array_get(reps, k);
			if (strcmp(rid, field_str(q, "id")) == 0)
				return hf_xasprintf("replicas[%zu] and [%zu] "
						    "have one id '%s'",
						    i, k, rid);
			if (live && strcmp(field_str(q, "state"), "deleting") &&
			    strcmp(rnode, field_str(q, "node")) == 0)
				return hf_xasprintf("replicas[%zu] and [%zu] "
						    "are both on node '%s'",
						    i, k, rnode);
		}
	}
	return NULL;
}

static struct hf_xvol *xvol_from_json(struct hf_model *m, const json_t *o)
{
	struct hf_xvol *v =
	    hf_model_xvol_add(m, json_string_value(json_object_get(o, "name")));
	size_t i;
	json_t *r;

	v->id = str_dup_json(o, "id");
	v->service = str_dup_json(o, "service");
	v->instance = str_dup_json(o, "instance");
	hf_xvol_state_parse(json_string_value(json_object_get(o, "state")),
			    &v->state);
	v->size = int_json(o, "size", 0);
	v->repl = (unsigned)int_json(o, "repl", 1);
	v->min_sync = (unsigned)int_json(o, "min_sync", 1);
	v->ro = bool_json(o, "ro");
	v->epoch = (uint64_t)int_json(o, "epoch", 0);
	v->attached = str_dup_json(o, "attached");
	v->formatted = bool_json(o, "formatted");
	v->secret = str_dup_json(o, "secret");
	v->secure = bool_json(o, "secure");
	v->data_key = v->secure ? str_dup_json(o, "data_key") : NULL;
	v->key_name = v->secure ? str_dup_json(o, "secret_key") : NULL;
	{
		/* Records from before the option: ext4. */
		const char *fs = json_string_value(json_object_get(o, "fs"));

		v->fs = fs && !strcmp(fs, "xfs")    ? HF_FS_XFS
			: fs && !strcmp(fs, "auto") ? HF_FS_AUTO
						    : HF_FS_EXT4;
	}
	v->created = int_json(o, "created", 0);
	v->restore = str_dup_json(o, "restore");
	v->restore_after = (uint64_t)int_json(o, "restore_after", 0);
	{
		const json_t *lb = json_object_get(o, "last_backup");

		v->bk_last = str_dup_json(lb, "id");
		v->bk_to = str_dup_json(lb, "to");
		v->bk_snap = str_dup_json(lb, "snapshot");
		v->bk_at = int_json(lb, "at", 0);
		lb = json_object_get(o, "backup_job");
		if (json_string_value(json_object_get(lb, "id")) &&
		    json_string_value(json_object_get(lb, "snapshot")) &&
		    json_string_value(json_object_get(lb, "to")) &&
		    json_string_value(json_object_get(lb, "credential"))) {
			v->bk_run.id = str_dup_json(lb, "id");
			v->bk_run.snap = str_dup_json(lb, "snapshot");
			v->bk_run.to = str_dup_json(lb, "to");
			v->bk_run.cred = str_dup_json(lb, "credential");
			v->bk_run.node = str_dup_json(lb, "node");
			v->bk_run.started = int_json(lb, "started", 0);
		}
		lb = json_object_get(o, "backup_schedule");
		if (json_string_value(json_object_get(lb, "to")) &&
		    json_string_value(json_object_get(lb, "credential")) &&
		    int_json(lb, "every_ms", 0) > 0) {
			v->bk_sched.to = str_dup_json(lb, "to");
			v->bk_sched.cred = str_dup_json(lb, "credential");
			v->bk_sched.every_ms = int_json(lb, "every_ms", 0);
			v->bk_sched.keep = (unsigned)int_json(lb, "keep", 0);
		}
		lb = json_object_get(o, "from_backup");
		v->rs_cred = str_dup_json(lb, "credential");
		v->rs_url = str_dup_json(lb, "url");
		v->rs_volume = str_dup_json(lb, "volume");
		v->rs_backup = str_dup_json(lb, "backup");
	}
	json_array_foreach(json_object_get(o, "snapshots"), i, r)
	{
		struct hf_xsnap *s = hf_xvol_snap_add(
		    v, field_str(r, "id"), field_str(r, "name"),
		    int_json(r, "created", 0));
		size_t k;
		json_t *e;

		hf_xsnap_state_parse(field_str(r, "state"), &s->state);
		s->taken = int_json(r, "taken", 0);
		s->size = int_json(r, "size", 0);
		s->why = str_dup_json(r, "why");
		json_array_foreach(json_object_get(r, "replicas"), k, e)
			hf_strlist_push(&s->replicas, json_string_value(e));
	}
	json_array_foreach(json_object_get(o, "replicas"), i, r)
	{
		struct hf_xrep *rep = hf_xvol_replica_add(
		    v, json_string_value(json_object_get(r, "node")),
		    json_string_value(json_object_get(r, "id")),
		    int_json(r, "since", 0));

		hf_xrep_state_parse(field_str(r, "state"), &rep->state);
		rep->resync_done = int_json(r, "resync_done", 0);
		rep->resync_total = int_json(r, "resync_total", 0);
		rep->why = str_dup_json(r, "why");
		rep->clone = str_dup_json(r, "clone");
	}
	return v;
}

/* A node a loaded volume names that the model does not hold, or NULL. */
static const char *unknown_node(const struct hf_model *m, const json_t *o,
				const char **field)
{
	const char *att = json_string_value(json_object_get(o, "attached"));
	size_t i;
	json_t *r;

	*field = "its attachment";
	if (att && !hf_model_node(m, att))
		return att;
	*field = "a replica";
	json_array_foreach(json_object_get(o, "replicas"), i, r)
	{
		const char *node = field_str(r, "node");

		if (!hf_model_node(m, node))
			return node;
	}
	return NULL;
}

int hf_codec_load_xvols(struct hf_model *m, const struct hf_codec_rec *recs,
			size_t n, char **err)
{
	const size_t plen = strlen(HF_CODEC_XVOL_PREFIX);

	*err = NULL;
	for (size_t i = 0; i < n; i++) {
		const struct hf_codec_rec *kv = &recs[i];
		const char *name, *node, *field;
		json_t *o;

		/* One segment: "/volumes/a/b" would pass as volume "b". */
		if (strncmp(kv->key, HF_CODEC_XVOL_PREFIX, plen) != 0 ||
		    !kv->key[plen] || strchr(kv->key + plen, '/')) {
			*err = hf_xasprintf("the store's key %s is not a "
					    "volume record (%s<name>)",
					    kv->key, HF_CODEC_XVOL_PREFIX);
			return HF_EINVAL;
		}
		o = load_record_as(kv, check_xvol, true, err);
		if (!o)
			return HF_EINVAL;
		*err = check_name(kv, o, "name");
		if (*err) {
			json_decref(o);
			return HF_EINVAL;
		}
		name = json_string_value(json_object_get(o, "name"));
		/* "%25" and "%" unescape alike: two keys, one name. */
		if (hf_model_xvol(m, name)) {
			*err = hf_xasprintf("the store's record %s is damaged: "
					    "another record names volume '%s' "
					    "too",
					    kv->key, name);
			json_decref(o);
			return HF_EINVAL;
		}
		node = unknown_node(m, o, &field);
		if (node) {
			*err = hf_xasprintf("the store's record %s is damaged: "
					    "%s is on node '%s', which the "
					    "store does not hold",
					    kv->key, field, node);
			json_decref(o);
			return HF_EINVAL;
		}
		xvol_from_json(m, o);
		json_decref(o);
	}
	return 0;
}
