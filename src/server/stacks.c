/*
 * stacks.c - stacks of services: stacks.h says what a stack is and does.
 *
 * The stack record holds what the operator gave (the stack file's text,
 * each spec's text and templates by the path the file names) and what the
 * loop did with it. The loop and the handlers that change a record hold
 * stacks_mu around reading and writing it, so neither overwrites what the
 * other just wrote; the loop lets go of nothing else (the operations take
 * srv->mu themselves, after stacks_mu).
 */
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/ticker.h"
#include "common/err.h"
#include "common/log.h"
#include "model/codec.h"
#include "server/api.h"
#include "server/events.h"
#include "server/ops.h"
#include "server/stacks.h"
#include "server/state.h"
#include "spec/stack.h"

#define PASS_EVERY_MS 500
/* A body's specs and templates together: what one stack may carry. */
#define STACK_MAX_SPECS 64

static pthread_mutex_t stacks_mu = PTHREAD_MUTEX_INITIALIZER;

/* ---- what the operator gave ------------------------------------------ */

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/*
 * Checks a stack as a body gives it ({"file", "text", "specs": {path:
 * {"text", "templates"}}}): the file parses, each service's spec is there
 * and loads under its name with its options, and every endpoint an option
 * names is a port that spec advertises. 0 with *out, or an HF_E* code with
 * err (and err->diags: file:line:col of the stack file or of a spec).
 */
static int stack_check(const json_t *body, struct hf_stack **out,
		       struct hf_ops_err *err)
{
	const char *text = jstr(body, "text"), *file = jstr(body, "file");
	const json_t *specs = json_object_get(body, "specs");
	struct hf_stack *st = NULL;
	struct hf_stack_ports l = {0};
	int rc;

	*out = NULL;
	if (!json_is_object(body) || !text || !json_is_object(specs) ||
	    (json_object_get(body, "file") && !file)) {
		err->why = hf_xstrdup(
		    "the body is {\"file\": the stack file's name, \"text\": "
		    "its text, \"specs\": {path as the file names it: "
		    "{\"text\", \"templates\"}}}");
		return HF_EINVAL;
	}
	if (json_object_size(specs) > STACK_MAX_SPECS) {
		err->why = hf_xasprintf("a stack holds at most %d specs",
					STACK_MAX_SPECS);
		return HF_EINVAL;
	}
	if (!file)
		file = "stack.yml";
	rc = hf_stack_parse(text, strlen(text), file, &st, &err->diags);
	if (rc) {
		err->why = hf_xstrdup("the stack file is invalid");
		return HF_ESPEC;
	}
	hf_stack_ports_init(&l, st);
	for (size_t i = 0; i < st->services.len && !rc; i++) {
		const struct hf_stack_service *sv = &st->services.items[i];
		const json_t *sp = json_object_get(specs, sv->spec);
		const json_t *tj = json_object_get(sp, "templates");
		struct hf_kvlist options = {0}, templates = {0};
		struct hf_spec *spec = NULL;
		const char *k;
		json_t *v;

		if (!jstr(sp, "text") || (tj && !json_is_object(tj))) {
			err->why = hf_xasprintf(
			    "the body's specs lack '%s' (service %s): "
			    "{\"text\", \"templates\"}",
			    sv->spec, sv->key);
			rc = HF_EINVAL;
			break;
		}
		json_object_foreach((json_t *)tj, k, v)
			if (!json_is_string(v) && !rc) {
				err->why = hf_xasprintf(
				    "template '%s' of spec '%s' is not a "
				    "string",
				    k, sv->spec);
				rc = HF_EINVAL;
			}
		hf_codec_kv_from_json(&templates, tj);
		hf_stack_render_options(sv, hf_stack_placeholder, st, &options, NULL);
		if (!rc) {
			struct hf_spec_load_opts lo = {.options = &options,
						       .template_files =
							   &templates,
						       .name = sv->name};
			const char *t = jstr(sp, "text");

			if (hf_spec_load_string(t, strlen(t), sv->spec, &lo,
						&spec, &err->diags) ||
			    hf_spec_check_supported(spec, &err->diags)) {
				err->why = hf_xasprintf(
				    "the spec of service %s (%s) is invalid",
				    sv->key, sv->spec);
				rc = HF_ESPEC;
			} else {
				hf_stack_ports_add(&l, i, spec);
			}
		}
		hf_spec_free(spec);
		hf_kvlist_release(&options);
		hf_kvlist_release(&templates);
	}
	if (!rc && hf_stack_ports_check(&l, &err->diags)) {
		err->why = hf_xstrdup("the stack names an endpoint no spec "
				      "advertises");
		rc = HF_ESPEC;
	}
	if (!rc) {
		/* Warnings of specs that load are not an answer's business. */
		hf_diags_release(&err->diags);
		*out = st;
		st = NULL;
	}
	hf_stack_ports_release(&l);
	hf_stack_free(st);
	return rc;
}

/* The body's parts a record keeps: file, text, specs it names. */
static json_t *desired_of(const json_t *body, const struct hf_stack *st)
{
	json_t *specs = json_object();

	for (size_t i = 0; i < st->services.len; i++) {
		const char *p = st->services.items[i].spec;
		const json_t *sp = json_object_get(json_object_get(body, "specs"),
						   p);
		json_t *t = json_object_get(sp, "templates");

		json_object_set_new(specs, p,
				    json_pack("{s:s, s:o}", "text",
					      jstr(sp, "text"), "templates",
					      t ? json_incref(t)
						: json_object()));
	}
	return json_pack("{s:s, s:s, s:o}", "file",
			 jstr(body, "file") ? jstr(body, "file") : "stack.yml",
			 "text", jstr(body, "text"), "specs", specs);
}

/* ---- records ---------------------------------------------------------- */

static char *rec_key(const char *name)
{
	return hf_state_key("/stacks/%s", name, NULL);
}

/* The stack's parsed file (it was checked when it was stored). */
static struct hf_stack *rec_stack(const json_t *rec)
{
	struct hf_diags d = {0};
	struct hf_stack *st = NULL;
	const char *t = jstr(rec, "text");

	if (t)
		hf_stack_parse(t, strlen(t), jstr(rec, "file"), &st, &d);
	hf_diags_release(&d);
	return st;
}

static json_t *svc_rec(json_t *rec, const char *key)
{
	json_t *all = json_object_get(rec, "services"), *o;

	if (!json_is_object(all)) {
		all = json_object();
		json_object_set_new(rec, "services", all);
	}
	o = json_object_get(all, key);
	if (!json_is_object(o)) {
		o = json_pack("{s:s}", "state", "waiting");
		json_object_set_new(all, key, o);
	}
	return o;
}

static const char *svc_state(json_t *rec, const char *key)
{
	const char *st = jstr(svc_rec(rec, key), "state");

	return st ? st : "waiting";
}

/*
 * Sets a service's state (and message, NULL for none); an event says so
 * when the state changes. Lock held.
 */
static void set_state(struct hf_srv *s, json_t *rec,
		      const struct hf_stack_service *sv, const char *state,
		      const char *msg)
{
	json_t *o = svc_rec(rec, sv->key);
	const char *was = jstr(o, "state");
	char *before = was ? hf_xstrdup(was) : NULL;
	char *obj;

	if (!before || strcmp(before, state) != 0) {
		json_object_set_new(o, "since", json_integer(hf_now_ms()));
		obj = hf_xasprintf("%s/%s", jstr(rec, "name"), sv->key);
		hf_event(s, "scheduler", sv->name, "stack", obj, before, state,
			 msg);
		free(obj);
	}
	json_object_set_new(o, "state", json_string(state));
	if (msg)
		json_object_set_new(o, "message", json_string(msg));
	else
		json_object_del(o, "message");
	free(before);
}

static void set_phase(struct hf_srv *s, json_t *rec, const char *phase,
		      const char *why)
{
	const char *was = jstr(rec, "phase");

	if (was && strcmp(was, phase) == 0)
		return;
	hf_event(s, "scheduler", NULL, "stack", jstr(rec, "name"), was, phase,
		 why);
	json_object_set_new(rec, "phase", json_string(phase));
	json_object_set_new(rec, "updated", json_integer(hf_now_ms()));
}

/* ---- the loop --------------------------------------------------------- */

struct render_ctx {
	struct hf_srv *s;
	const struct hf_stack *st;
};

/* A reference's value from the running services (lock held), or NULL. */
static char *live_value(void *arg, const struct hf_stack_ref *ref)
{
	struct render_ctx *r = arg;
	const struct hf_stack_service *to = hf_stack_find(r->st, ref->service);
	struct hf_strlist addrs = {0}, dns = {0};
	struct hf_service *svc;
	struct hf_buf b = HF_BUF_INIT;
	char *out;

	if (!to)
		return NULL;
	if (!ref->endpoint)
		return hf_xstrdup(to->name);
	svc = hf_state_service(r->s, to->name);
	if (!svc || svc->removing)
		return NULL;
	hf_state_endpoint(r->s, svc, ref->endpoint, &addrs, &dns);
	for (size_t i = 0; i < (ref->dns ? dns : addrs).len; i++)
		hf_buf_addf(&b, "%s%s", i ? "," : "",
			    (ref->dns ? dns : addrs).items[i]);
	hf_strlist_release(&addrs);
	hf_strlist_release(&dns);
	out = b.len ? hf_buf_detach(&b) : NULL;
	hf_buf_release(&b);
	return out;
}

/* The digest of what a service would be given: a change of it relaunches. */
static char *digest(const char *name, const char *file, const char *text,
		    const struct hf_kvlist *options, const json_t *templates)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:o, s:O}", "name", name,
			      "file", file, "text", text, "options",
			      hf_codec_kv_json(options), "templates",
			      templates ? templates : json_null());
	char *dump = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	struct hf_buf b = HF_BUF_INIT;

	EVP_Digest(dump, strlen(dump), md, &n, EVP_sha256(), NULL);
	for (unsigned int i = 0; i < n; i++)
		hf_buf_addf(&b, "%02x", md[i]);
	free(dump);
	json_decref(j);
	return hf_buf_detach(&b);
}

/*
 * Writes the stack's record now, in the operation's batch, so that the
 * events the same hold recorded go out after it (events.h). Lock held.
 */
static void save(struct hf_srv *s, json_t *rec)
{
	char *key = rec_key(jstr(rec, "name"));

	if (s->leading)
		hf_state_put_record(s, key, rec);
	free(key);
}

/* Sets a service's state and saves the record at once. */
static void note(struct hf_srv *s, json_t *rec,
		 const struct hf_stack_service *sv, const char *state,
		 const char *msg)
{
	hf_state_lock(s);
	set_state(s, rec, sv, state, msg);
	save(s, rec);
	hf_state_unlock(s);
}

/*
 * The run of a deploy or update plan of service name that is not
 * complete, if any: what a change the record does not know of (the
 * server stopped between the change and the record's write) still runs.
 * Lock held.
 */
static struct hf_plan_run *unfinished(struct hf_srv *s, const char *name)
{
	static const char *const plans[] = {"deploy", "update"};
	struct hf_service *svc = hf_state_service(s, name);

	for (size_t i = 0; svc && i < 2; i++) {
		struct hf_plan_run *run = hf_state_run(svc, plans[i]);

		if (run && run->active && run->status != HF_STATUS_COMPLETE)
			return run;
	}
	return NULL;
}

/*
 * Why a change's run does not complete, when its tasks say: an instance
 * that cannot be placed, a task that keeps failing. NULL otherwise.
 */
static char *stuck(const struct hf_service *svc,
		   const struct hf_plan_run *run)
{
	for (size_t i = 0; i < svc->instances.len; i++) {
		const struct hf_instance *in = svc->instances.items[i];

		if (!in->node && in->message)
			return hf_xasprintf("plan %s is %s: %s: %s", run->plan,
					    hf_status_name(run->status),
					    in->name, in->message);
		for (size_t k = 0; k < in->slots.len; k++) {
			const struct hf_task_slot *sl = &in->slots.items[k];

			if (sl->failures || sl->restarts)
				return hf_xasprintf(
				    "plan %s is %s: task %s-%s failed %llu "
				    "time%s (holdfast -s %s pod status says "
				    "why)",
				    run->plan, hf_status_name(run->status),
				    in->name, sl->task,
				    (unsigned long long)(sl->failures
							     ? sl->failures
							     : sl->restarts),
				    (sl->failures ? sl->failures
						  : sl->restarts) == 1
					? ""
					: "s",
				    svc->name);
		}
	}
	return NULL;
}

/*
 * How service sv's latest change (its plan, in the record) goes: true
 * once its run is complete; a run in ERROR fails the service, one that
 * waits on a backoff or an error says so in its message. Lock held.
 */
static bool change_done(struct hf_srv *s, json_t *rec,
			const struct hf_stack_service *sv)
{
	json_t *o = svc_rec(rec, sv->key);
	const char *plan = jstr(o, "plan");
	struct hf_service *svc = hf_state_service(s, sv->name);
	struct hf_plan_run *run = svc && plan ? hf_state_run(svc, plan) : NULL;
	const char *state = svc_state(rec, sv->key);
	char *msg;

	if (!run)
		run = unfinished(s, sv->name);
	if (!run || run->status == HF_STATUS_COMPLETE)
		return true;
	if (!svc)
		return false;
	if (run->status == HF_STATUS_ERROR) {
		msg = hf_xasprintf("plan %s is in ERROR (holdfast -s %s plan "
				   "show %s says where)",
				   run->plan, sv->name, run->plan);
		set_state(s, rec, sv, "failed", msg);
		json_object_set(o, "tried", json_object_get(o, "applied"));
	} else {
		msg = stuck(svc, run);
		set_state(s, rec, sv, state, msg);
	}
	free(msg);
	return false;
}

/*
 * One service of a deploying or updating stack: deploy it, update it,
 * or see its change through. Returns true when it is deployed. rec is the
 * loop's copy, saved after each step; stacks_mu held, srv->mu not.
 */
static bool step_service(struct hf_srv *s, json_t *rec,
			 const struct hf_stack *st,
			 const struct hf_stack_service *sv)
{
	const json_t *sp =
	    json_object_get(json_object_get(rec, "specs"), sv->spec);
	struct render_ctx rc_ = {s, st};
	struct hf_kvlist options = {0}, templates = {0};
	struct hf_ops_err err = {0};
	struct hf_service *svc;
	struct hf_config *cfg;
	char *missing = NULL, *want = NULL, *msg = NULL;
	const char *state = svc_state(rec, sv->key), *applied, *tried;
	bool exists, removing, foreign, done = false;
	int rc;

	if (!jstr(sp, "text"))
		return false; /* not a record this server wrote */
	for (size_t d = 0; d < sv->depends_on.len; d++) {
		const char *dst = svc_state(rec, sv->depends_on.items[d]);

		if (strcmp(dst, "deployed") != 0) {
			if (strcmp(state, "deployed") != 0 &&
			    strcmp(state, "failed") != 0) {
				msg = hf_xasprintf("waiting for %s (%s)",
						   sv->depends_on.items[d],
						   dst);
				note(s, rec, sv, "waiting", msg);
			}
			goto out;
		}
	}
	hf_state_lock(s);
	if (hf_stack_render_options(sv, live_value, &rc_, &options,
				    &missing)) {
		msg = hf_xasprintf("waiting for {{%s}}: no task of it "
				   "answers yet",
				   missing);
		set_state(s, rec, sv, "waiting", msg);
		save(s, rec);
		hf_state_unlock(s);
		goto out;
	}
	svc = hf_state_service(s, sv->name);
	cfg = svc ? hf_state_target(svc) : NULL;
	exists = svc != NULL;
	removing = svc && svc->removing;
	/*
	 * A service of its name the stack never changed, and not deployed
	 * under a name given over its spec's (as the stack deploys), was
	 * deployed by hand meanwhile: not the stack's to take.
	 */
	applied = jstr(svc_rec(rec, sv->key), "applied");
	foreign = exists && !removing && !applied && (!cfg || !cfg->name);
	hf_state_unlock(s);
	if (foreign) {
		note(s, rec, sv, "failed",
		     "a service of this name was deployed outside the stack; "
		     "remove it, or give the stack's service another name "
		     "('name:'), then update the stack");
		goto out;
	}
	hf_codec_kv_from_json(&templates, json_object_get(sp, "templates"));
	want = digest(sv->name, sv->spec, jstr(sp, "text"), &options,
		      json_object_get(sp, "templates"));
	tried = jstr(svc_rec(rec, sv->key), "tried");
	if (strcmp(state, "failed") == 0 && tried && strcmp(tried, want) == 0)
		goto out; /* the same change again would fail the same way */
	if (removing) {
		note(s, rec, sv, "waiting",
		     "waiting for an earlier service of its name to be "
		     "removed");
		goto out;
	}
	if (!exists || !applied || strcmp(applied, want) != 0) {
		struct hf_ops_spec spec = {jstr(sp, "text"), sv->spec, &options,
					   &templates, sv->name};
		const char *plan = "deploy";

		if (!exists) {
			struct hf_ops_deployed dep = {0};

			rc = hf_ops_deploy(s, &spec, &dep, &err);
			hf_ops_deployed_release(&dep);
		} else {
			struct hf_ops_change chg = {0};

			rc = hf_ops_update(s, sv->name, &spec, &chg, &err);
			plan = chg.changed ? chg.plan : NULL;
			hf_ops_change_release(&chg);
		}
		hf_state_lock(s);
		if (rc == HF_EUNAVAIL || rc == HF_EEXISTS) {
			/* Not this change's fault: tried again next pass. */
			msg = hf_xasprintf("%s: %s",
					   exists ? "update" : "deploy",
					   err.why ? err.why : hf_err_msg(rc));
			set_state(s, rec, sv, state, msg);
		} else if (rc) {
			const struct hf_diag *d = NULL;

			for (size_t i = 0; i < err.diags.len && !d; i++)
				if (err.diags.items[i].level == HF_DIAG_ERROR)
					d = &err.diags.items[i];
			msg = d ? hf_xasprintf("%s failed: %s: %s:%d:%d: %s",
					       exists ? "update" : "deploy",
					       err.why ? err.why
						       : hf_err_msg(rc),
					       d->file ? d->file : sv->spec,
					       d->line, d->col, d->msg)
				: hf_xasprintf("%s %s: %s",
					       exists ? "update" : "deploy",
					       rc == HF_EREFUSED ? "refused"
								 : "failed",
					       err.why ? err.why
						       : hf_err_msg(rc));
			set_state(s, rec, sv, "failed", msg);
			json_object_set_new(svc_rec(rec, sv->key), "tried",
					    json_string(want));
		} else {
			json_t *o = svc_rec(rec, sv->key);
			struct hf_plan_run *run;

			json_object_set_new(o, "applied", json_string(want));
			json_object_del(o, "tried");
			/*
			 * An update that changes nothing leaves the service
			 * as the change before it left it: done once no
			 * deploy or update of it runs.
			 */
			if (!plan && (run = unfinished(s, sv->name)))
				plan = run->plan;
			if (plan) {
				json_object_set_new(o, "plan",
						    json_string(plan));
				set_state(s, rec, sv,
					  exists ? "updating" : "deploying",
					  NULL);
			} else {
				set_state(s, rec, sv, "deployed", NULL);
			}
		}
		save(s, rec);
		hf_state_unlock(s);
		goto out;
	}
	if (strcmp(state, "deployed") != 0 && strcmp(state, "failed") != 0) {
		hf_state_lock(s);
		if (change_done(s, rec, sv))
			set_state(s, rec, sv, "deployed", NULL);
		save(s, rec);
		hf_state_unlock(s);
	}
	done = strcmp(svc_state(rec, sv->key), "deployed") == 0;
out:
	hf_kvlist_release(&options);
	hf_kvlist_release(&templates);
	hf_ops_err_release(&err);
	free(missing);
	free(want);
	free(msg);
	return done;
}

/*
 * Removes service name (a step of a removal); true once it is gone. o
 * holds whether the removal was asked already.
 */
static bool remove_service(struct hf_srv *s, const char *stack, json_t *o,
			   const char *name, bool delete_volumes)
{
	struct hf_service *svc;
	bool gone, asked = json_is_true(json_object_get(o, "remove_asked"));

	hf_state_lock(s);
	svc = hf_state_service(s, name);
	gone = !svc;
	hf_state_unlock(s);
	if (gone && (asked || !delete_volumes))
		return true;
	if (!asked) {
		struct hf_ops_removed out = {0};
		struct hf_ops_err err = {0};
		int rc = hf_ops_remove(s, name, delete_volumes, &out, &err);

		if (rc && rc != HF_ENOTFOUND)
			hf_log("stack %s: service %s: remove: %s", stack, name,
			       err.why ? err.why : hf_err_msg(rc));
		/* Once: whatever it answered, the service's own state says. */
		json_object_set_new(o, "remove_asked", json_true());
		hf_ops_removed_release(&out);
		hf_ops_err_release(&err);
		return gone && rc == HF_ENOTFOUND;
	}
	return false;
}

/*
 * Services an update dropped from the stack ("dropped": service name ->
 * {"key"}) are removed, keeping their volumes; so are they when the
 * stack is removed (with its volume choice).
 */
static bool step_dropped(struct hf_srv *s, json_t *rec, bool delete_volumes)
{
	json_t *dropped = json_object_get(rec, "dropped"), *v;
	const char *name;
	void *tmp;

	json_object_foreach_safe(dropped, tmp, name, v) {
		if (!json_is_object(v)) {
			json_object_del(dropped, name);
			continue;
		}
		if (!remove_service(s, jstr(rec, "name"), v, name,
				    delete_volumes)) {
			hf_state_lock(s);
			save(s, rec);
			hf_state_unlock(s);
			continue;
		}
		hf_state_lock(s);
		hf_event(s, "scheduler", name, "stack", jstr(rec, "name"),
			 "dropped", "removed", "the stack no longer has it");
		json_object_del(dropped, name);
		save(s, rec);
		hf_state_unlock(s);
	}
	return !json_object_size(dropped);
}

/* The stack's removal, a step: dependents first. True once all are gone. */
static bool step_removal(struct hf_srv *s, json_t *rec,
			 const struct hf_stack *st)
{
	bool dv = json_is_true(json_object_get(rec, "delete_volumes"));
	bool all = step_dropped(s, rec, dv);

	for (size_t k = st->services.len; k-- > 0;) {
		const struct hf_stack_service *sv =
		    &st->services.items[st->order[k]];
		bool blocked = false;

		if (strcmp(svc_state(rec, sv->key), "removed") == 0)
			continue;
		/* Whoever depends on it goes first. */
		for (size_t i = 0; i < st->services.len && !blocked; i++) {
			const struct hf_stack_service *o = &st->services.items[i];

			blocked = hf_strlist_has(&o->depends_on, sv->key) &&
				  strcmp(svc_state(rec, o->key), "removed") != 0;
		}
		all = false;
		if (blocked)
			continue;
		if (remove_service(s, jstr(rec, "name"),
				   svc_rec(rec, sv->key), sv->name, dv))
			note(s, rec, sv, "removed", NULL);
		else
			note(s, rec, sv, "removing", NULL);
	}
	return all;
}

static void pass_one(struct hf_srv *s, const char *name)
{
	char *key = rec_key(name);
	json_t *rec = NULL;
	struct hf_stack *st = NULL;
	const char *phase;
	int rc;

	hf_state_lock(s);
	rc = s->leading ? hf_state_get_record(s, key, &rec) : HF_EUNAVAIL;
	hf_state_unlock(s);
	if (rc)
		goto out;
	st = rec_stack(rec);
	phase = jstr(rec, "phase");
	if (!st || !phase)
		goto out;
	if (strcmp(phase, "removing") == 0) {
		if (step_removal(s, rec, st)) {
			hf_state_lock(s);
			if (s->leading && !hf_state_delete_record(s, key))
				hf_event(s, "scheduler", NULL, "stack", name,
					 "removing", "removed",
					 "every service of it is removed");
			hf_state_unlock(s);
		}
	} else if (strcmp(phase, "deployed") != 0) {
		bool all = step_dropped(s, rec, false), failed = false;

		for (size_t k = 0; k < st->services.len; k++) {
			const struct hf_stack_service *sv =
			    &st->services.items[st->order[k]];

			if (!step_service(s, rec, st, sv))
				all = false;
			failed = failed ||
				 strcmp(svc_state(rec, sv->key), "failed") == 0;
		}
		hf_state_lock(s);
		if (all)
			set_phase(s, rec, "deployed",
				  "every service of it is deployed");
		else if (failed)
			set_phase(s, rec, "failed",
				  "a service of it failed (stack status says "
				  "which and why)");
		save(s, rec);
		hf_state_unlock(s);
	}
out:
	hf_stack_free(st);
	json_decref(rec);
	free(key);
}

static void pass(struct hf_srv *s)
{
	json_t *all = NULL, *e;
	size_t i;
	int rc;

	hf_state_lock(s);
	rc = s->leading ? hf_state_list_records(s, "/stacks/", &all)
			: HF_EUNAVAIL;
	hf_state_unlock(s);
	if (rc)
		return;
	json_array_foreach(all, i, e) {
		const char *phase = jstr(e, "phase");

		if (!jstr(e, "name") || (phase && strcmp(phase, "deployed") == 0))
			continue;
		pthread_mutex_lock(&stacks_mu);
		pass_one(s, jstr(e, "name"));
		pthread_mutex_unlock(&stacks_mu);
	}
	json_decref(all);
}

static struct hf_ticker loop_ticker = HF_TICKER_INIT;

static void loop_pass(void *arg)
{
	pass(arg);
}

/* The loop looks at the stacks now (a handler changed one). */
static void kick(void)
{
	hf_ticker_kick(&loop_ticker);
}

void hf_stacks_start(struct hf_srv *s)
{
	loop_ticker.name = "the stacks thread";
	loop_ticker.without = "stacks do not progress";
	loop_ticker.every_ms = PASS_EVERY_MS;
	hf_ticker_start(&loop_ticker, loop_pass, s);
}

void hf_stacks_stop(void)
{
	hf_ticker_stop(&loop_ticker);
}

/* ---- the API ---------------------------------------------------------- */

/* A stack as the API shows it, with what its services do now. Lock held. */
static json_t *stack_json(struct hf_srv *s, const json_t *rec, bool full)
{
	struct hf_stack *st = rec_stack(rec);
	json_t *o = json_pack("{s:s, s:s?, s:s?, s:O?, s:O?, s:b}", "name",
			      jstr(rec, "name"), "phase", jstr(rec, "phase"),
			      "file", jstr(rec, "file"), "created",
			      json_object_get(rec, "created"), "updated",
			      json_object_get(rec, "updated"), "delete_volumes",
			      json_is_true(json_object_get(rec,
							   "delete_volumes")));
	json_t *svcs = json_array(), *sr = json_object_get(rec, "services");
	json_t *dropped = json_object_get(rec, "dropped"), *v;
	const char *k;

	json_object_set_new(o, "generation",
			    json_integer(json_integer_value(
				json_object_get(rec, "generation"))));
	for (size_t i = 0; st && i < st->services.len; i++) {
		const struct hf_stack_service *sv =
		    &st->services.items[st->order[i]];
		const json_t *r = json_object_get(sr, sv->key);
		struct hf_service *svc = hf_state_service(s, sv->name);
		const char *plan = jstr(r, "plan");
		struct hf_plan_run *run = svc && plan ? hf_state_run(svc, plan)
						      : NULL;
		json_t *deps = json_array(), *e;

		for (size_t d = 0; d < sv->depends_on.len; d++)
			json_array_append_new(
			    deps, json_string(sv->depends_on.items[d]));
		const char *phase = jstr(r, "state") ? jstr(r, "state")
						     : "waiting";
		bool missing = !svc && strcmp(phase, "deployed") == 0;

		e = json_pack("{s:s, s:s, s:s, s:s, s:o, s:b}", "name",
			      sv->key, "service", sv->name, "phase",
			      missing ? "missing" : phase, "spec", sv->spec,
			      "depends_on", deps, "exists", svc != NULL);
		if (missing)
			json_object_set_new(
			    e, "message",
			    json_string("removed outside the stack; a stack "
					"update deploys it again"));
		else if (jstr(r, "message"))
			json_object_set_new(e, "message",
					    json_string(jstr(r, "message")));
		if (json_object_get(r, "since"))
			json_object_set(e, "since",
					json_object_get(r, "since"));
		if (run)
			json_object_set_new(
			    e, "plan",
			    json_pack("{s:s, s:s}", "name", plan, "status",
				      hf_status_name(run->status)));
		if (full) {
			json_t *opts = json_object();

			for (size_t i2 = 0; i2 < sv->options.len; i2++)
				json_object_set_new(
				    opts, sv->options.items[i2].key,
				    json_string(hf_spec_secret_name(
						    sv->options.items[i2].key)
						    ? "(hidden)"
						    : sv->options.items[i2]
							  .value));
			json_object_set_new(e, "options", opts);
		}
		json_array_append_new(svcs, e);
	}
	json_object_foreach(dropped, k, v)
		json_array_append_new(
		    svcs, json_pack("{s:s, s:s, s:s, s:o, s:b, s:s}", "name",
				    jstr(v, "key") ? jstr(v, "key") : k,
				    "service", k, "phase", "removing",
				    "depends_on", json_array(), "exists",
				    hf_state_service(s, k) != NULL, "message",
				    "the stack no longer has it"));
	json_object_set_new(o, "services", svcs);
	hf_stack_free(st);
	return o;
}

void hf_stacks_list_handler(void *ctx, const struct hf_http_req *req,
			    struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	json_t *all = NULL, *out = json_array(), *e;
	size_t i;
	int rc;

	(void)req;
	hf_state_lock(s);
	rc = hf_state_list_records(s, "/stacks/", &all);
	json_array_foreach(all, i, e)
		json_array_append_new(out, stack_json(s, e, false));
	hf_state_unlock(s);
	json_decref(all);
	if (rc) {
		json_decref(out);
		hf_http_error(resp, rc, "the store cannot be read");
		return;
	}
	hf_http_json(resp, 200, json_pack("{s:o}", "stacks", out));
}

void hf_stacks_get_handler(void *ctx, const struct hf_http_req *req,
			   struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *name = hf_kvlist_get(&req->params, "stack");
	char *key = rec_key(name);
	json_t *rec = NULL, *out = NULL;
	int rc;

	hf_state_lock(s);
	rc = hf_state_get_record(s, key, &rec);
	if (!rc)
		out = stack_json(s, rec, true);
	hf_state_unlock(s);
	if (rc == HF_ENOTFOUND)
		hf_http_error(resp, rc, "no stack named '%s'", name);
	else if (rc)
		hf_http_error(resp, rc, "the store cannot be read");
	else
		hf_http_json(resp, 200, out);
	json_decref(rec);
	free(key);
}

/*
 * Whether each service's name is free for stack `name`: no service of
 * another stack, and none outside a stack unless this stack already owns
 * it (recorded in its services). Lock held; 0 or HF_ECONFLICT with err.
 */
static int names_free(struct hf_srv *s, const char *name,
		      const struct hf_stack *st, const json_t *own,
		      struct hf_ops_err *err)
{
	json_t *all = NULL, *e;
	size_t i;
	int rc = hf_state_list_records(s, "/stacks/", &all);

	if (rc) {
		err->why = hf_xstrdup("the store cannot be read");
		return rc;
	}
	for (size_t k = 0; k < st->services.len && !rc; k++) {
		const struct hf_stack_service *sv = &st->services.items[k];
		bool ours = false;
		const char *key;
		json_t *v;

		json_array_foreach(all, i, e) {
			struct hf_stack *other;

			if (strcmp(jstr(e, "name") ? jstr(e, "name") : "",
				   name) == 0)
				continue;
			other = rec_stack(e);
			for (size_t j = 0;
			     other && !rc && j < other->services.len; j++)
				if (strcmp(other->services.items[j].name,
					   sv->name) == 0) {
					err->why = hf_xasprintf(
					    "service '%s' belongs to stack %s",
					    sv->name, jstr(e, "name"));
					rc = HF_ECONFLICT;
				}
			hf_stack_free(other);
		}
		json_object_foreach((json_t *)own, key, v)
			ours = ours ||
			       (json_is_string(v) &&
				strcmp(json_string_value(v), sv->name) == 0);
		if (!rc && !ours && hf_state_service(s, sv->name)) {
			err->why = hf_xasprintf(
			    "service '%s' already exists outside the stack; "
			    "remove it or give the stack's service another "
			    "name ('name:')",
			    sv->name);
			rc = HF_ECONFLICT;
		}
	}
	json_decref(all);
	return rc;
}

/* key -> service name of a record's stack (what it owns). */
static json_t *owned(const json_t *rec)
{
	struct hf_stack *st = rec ? rec_stack(rec) : NULL;
	json_t *o = json_object(), *v;
	const char *k;

	for (size_t i = 0; st && i < st->services.len; i++)
		json_object_set_new(o, st->services.items[i].key,
				    json_string(st->services.items[i].name));
	/* Services an update dropped stay the stack's until removed. */
	json_object_foreach(json_object_get(rec, "dropped"), k, v) {
		char *as = hf_xasprintf("dropped %s", k);

		json_object_set_new(o, as, json_string(k));
		free(as);
	}
	hf_stack_free(st);
	return o;
}

void hf_stacks_deploy_handler(void *ctx, const struct hf_http_req *req,
			      struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	struct hf_ops_err err = {0};
	struct hf_stack *st = NULL;
	json_t *body = NULL, *rec = NULL, *none = json_object();
	char *key = NULL;
	int rc;

	if (hf_http_body_json(req, resp, &body))
		goto out;
	rc = stack_check(body, &st, &err);
	if (rc) {
		hf_api_answer_err(resp, rc, &err);
		goto out;
	}
	key = rec_key(st->name);
	pthread_mutex_lock(&stacks_mu);
	hf_state_lock(s);
	if (!s->leading) {
		rc = HF_EUNAVAIL;
		err.why = hf_xstrdup("this server does not lead");
	} else if ((rc = hf_state_get_record(s, key, &rec)) == 0) {
		rc = HF_EEXISTS;
		err.why = hf_xasprintf(
		    "stack '%s' exists; use an update to change it", st->name);
	} else if (rc == HF_ENOTFOUND) {
		rc = names_free(s, st->name, st, none, &err);
	}
	if (!rc) {
		json_decref(rec);
		rec = desired_of(body, st);
		json_object_set_new(rec, "name", json_string(st->name));
		json_object_set_new(rec, "phase", json_string("deploying"));
		json_object_set_new(rec, "generation", json_integer(1));
		json_object_set_new(rec, "created", json_integer(hf_now_ms()));
		json_object_set_new(rec, "updated", json_integer(hf_now_ms()));
		json_object_set_new(rec, "services", json_object());
		rc = hf_state_put_record(s, key, rec);
		if (rc)
			err.why = hf_xstrdup("the store cannot be written");
		else
			hf_event(s, req->principal ? req->principal : "api",
				 NULL, "stack", st->name, NULL, "deploying",
				 jstr(rec, "file"));
	}
	if (!rc)
		hf_http_json(resp, 201, stack_json(s, rec, true));
	hf_state_unlock(s);
	pthread_mutex_unlock(&stacks_mu);
	if (rc)
		hf_api_answer_err(resp, rc, &err);
	else
		kick();
out:
	hf_stack_free(st);
	hf_ops_err_release(&err);
	json_decref(body);
	json_decref(rec);
	json_decref(none);
	free(key);
}

/* The stack of the route, its record (a new reference) or an answer. */
static json_t *route_rec(struct hf_srv *s, const struct hf_http_req *req,
			 struct hf_http_resp *resp, char **key)
{
	const char *name = hf_kvlist_get(&req->params, "stack");
	json_t *rec = NULL;
	int rc;

	*key = rec_key(name);
	rc = hf_state_get_record(s, *key, &rec);
	if (rc == HF_ENOTFOUND)
		hf_http_error(resp, rc, "no stack named '%s'", name);
	else if (rc)
		hf_http_error(resp, rc, "the store cannot be read");
	return rc ? NULL : rec;
}

/*
 * The body of an update or a diff: a stack that checks (stack_check) and
 * names the route's stack; NULL after answering otherwise. *body gets the
 * parsed body (a new reference) either way.
 */
static struct hf_stack *route_body(const struct hf_http_req *req,
				   struct hf_http_resp *resp, json_t **body)
{
	const char *name = hf_kvlist_get(&req->params, "stack");
	struct hf_ops_err err = {0};
	struct hf_stack *st = NULL;
	int rc;

	*body = NULL;
	if (hf_http_body_json(req, resp, body))
		return NULL;
	rc = stack_check(*body, &st, &err);
	if (!rc && strcmp(st->name, name) != 0) {
		err.why = hf_xasprintf("the stack file names stack '%s', not "
				       "'%s'",
				       st->name, name);
		rc = HF_EINVAL;
	}
	if (rc) {
		hf_api_answer_err(resp, rc, &err);
		hf_stack_free(st);
		st = NULL;
	}
	hf_ops_err_release(&err);
	return st;
}

void hf_stacks_update_handler(void *ctx, const struct hf_http_req *req,
			      struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	struct hf_ops_err err = {0};
	struct hf_stack *st = NULL, *old = NULL;
	json_t *body = NULL, *rec = NULL, *own = NULL, *des;
	const char *name = hf_kvlist_get(&req->params, "stack");
	char *key = NULL;
	int rc = 0;

	st = route_body(req, resp, &body);
	if (!st)
		goto out;
	pthread_mutex_lock(&stacks_mu);
	hf_state_lock(s);
	rec = s->leading ? route_rec(s, req, resp, &key) : NULL;
	if (!s->leading) {
		rc = HF_EUNAVAIL;
		err.why = hf_xstrdup("this server does not lead");
	} else if (!rec) {
		goto unlock; /* answered */
	} else if (strcmp(jstr(rec, "phase") ? jstr(rec, "phase") : "",
			  "removing") == 0) {
		rc = HF_ECONFLICT;
		err.why = hf_xasprintf("stack '%s' is being removed", name);
	} else {
		own = owned(rec);
		rc = names_free(s, name, st, own, &err);
	}
	if (!rc) {
		json_t *dropped = json_object_get(rec, "dropped");

		old = rec_stack(rec);
		if (!json_is_object(dropped)) {
			dropped = json_object();
			json_object_set_new(rec, "dropped", dropped);
		}
		/*
		 * Services the file no longer has, or has under another name,
		 * are removed; a renamed one starts afresh under its key.
		 */
		for (size_t i = 0; old && i < old->services.len; i++) {
			const struct hf_stack_service *sv = &old->services.items[i];
			const struct hf_stack_service *now =
			    hf_stack_find(st, sv->key);

			if (now && strcmp(now->name, sv->name) == 0)
				continue;
			json_object_set_new(dropped, sv->name,
					    json_pack("{s:s}", "key", sv->key));
			json_object_del(json_object_get(rec, "services"),
					sv->key);
		}
		/* A service of a name the stack dropped is its own again. */
		for (size_t i = 0; i < st->services.len; i++)
			json_object_del(dropped, st->services.items[i].name);
		des = desired_of(body, st);
		json_object_update(rec, des);
		json_decref(des);
		/* Failed services get another try. */
		for (size_t i = 0; i < st->services.len; i++) {
			json_t *o = svc_rec(rec, st->services.items[i].key);

			if (strcmp(svc_state(rec, st->services.items[i].key),
				   "failed") == 0)
				json_object_set_new(o, "state",
						    json_string("waiting"));
			json_object_del(o, "remove_asked");
		}
		json_object_set_new(
		    rec, "generation",
		    json_integer(json_integer_value(
				     json_object_get(rec, "generation")) +
				 1));
		set_phase(s, rec, "updating", jstr(rec, "file"));
		rc = hf_state_put_record(s, key, rec);
		if (rc)
			err.why = hf_xstrdup("the store cannot be written");
		else
			hf_http_json(resp, 200, stack_json(s, rec, true));
	}
unlock:
	hf_state_unlock(s);
	pthread_mutex_unlock(&stacks_mu);
	if (rc)
		hf_api_answer_err(resp, rc, &err);
	else if (rec)
		kick();
out:
	hf_stack_free(st);
	hf_stack_free(old);
	hf_ops_err_release(&err);
	json_decref(body);
	json_decref(rec);
	json_decref(own);
	free(key);
}

void hf_stacks_remove_handler(void *ctx, const struct hf_http_req *req,
			      struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	bool dv = hf_http_query_bool(req, "delete_volumes", false);
	json_t *rec = NULL;
	char *key = NULL;
	int rc = 0;

	pthread_mutex_lock(&stacks_mu);
	hf_state_lock(s);
	if (!s->leading) {
		hf_http_error(resp, HF_EUNAVAIL, "this server does not lead");
		goto unlock;
	}
	rec = route_rec(s, req, resp, &key);
	if (!rec)
		goto unlock;
	if (dv || !json_object_get(rec, "delete_volumes"))
		json_object_set_new(rec, "delete_volumes", json_boolean(dv));
	{
		const char *was = jstr(rec, "phase");

		if (!was || strcmp(was, "removing") != 0) {
			hf_event(s, req->principal ? req->principal : "api",
				 NULL, "stack", jstr(rec, "name"), was,
				 "removing",
				 dv ? "removed with its volumes"
				    : "removed; volumes kept");
			json_object_set_new(rec, "phase",
					    json_string("removing"));
			json_object_set_new(rec, "updated",
					    json_integer(hf_now_ms()));
		}
	}
	rc = hf_state_put_record(s, key, rec);
	if (rc)
		hf_http_error(resp, rc, "the store cannot be written");
	else
		hf_http_json(resp, 202, stack_json(s, rec, false));
unlock:
	hf_state_unlock(s);
	pthread_mutex_unlock(&stacks_mu);
	if (rec && !rc)
		kick();
	json_decref(rec);
	free(key);
}

void hf_stacks_diff_handler(void *ctx, const struct hf_http_req *req,
			    struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	struct hf_stack *st = NULL, *old = NULL;
	json_t *body = NULL, *rec = NULL, *out = NULL, *rows;
	const char *name = hf_kvlist_get(&req->params, "stack");
	char *key = NULL;

	st = route_body(req, resp, &body);
	if (!st)
		goto out;
	hf_state_lock(s);
	rec = route_rec(s, req, resp, &key);
	if (rec)
		old = rec_stack(rec);
	hf_state_unlock(s);
	if (!rec)
		goto out;
	rows = json_array();
	for (size_t k = 0; k < st->services.len; k++) {
		const struct hf_stack_service *sv =
		    &st->services.items[st->order[k]];
		const json_t *sp =
		    json_object_get(json_object_get(body, "specs"), sv->spec);
		struct render_ctx r = {s, st};
		struct hf_kvlist options = {0}, templates = {0};
		struct hf_ops_change chg = {0};
		struct hf_ops_err derr = {0};
		bool exists, rendered;
		json_t *row;

		hf_state_lock(s);
		exists = hf_state_service(s, sv->name) != NULL;
		rendered = hf_stack_render_options(sv, live_value, &r, &options,
						   NULL) == 0;
		hf_state_unlock(s);
		if (!rendered) {
			hf_kvlist_release(&options);
			hf_stack_render_options(sv, hf_stack_placeholder, st, &options,
						NULL);
		}
		hf_codec_kv_from_json(&templates,
				      json_object_get(sp, "templates"));
		row = json_pack("{s:s, s:s}", "name", sv->key, "service",
				sv->name);
		if (!exists) {
			json_object_set_new(row, "change", json_string("add"));
		} else {
			struct hf_ops_spec spec = {jstr(sp, "text"), sv->spec,
						   &options, &templates,
						   sv->name};
			int drc = hf_ops_diff(s, sv->name, &spec, &chg, &derr);

			if (drc && drc != HF_EREFUSED) {
				json_object_set_new(row, "change",
						    json_string("invalid"));
				json_object_set_new(
				    row, "message",
				    json_string(derr.why ? derr.why
							 : hf_err_msg(drc)));
			} else {
				json_t *d = hf_spec_diff_to_json(&chg.diff), *pd;
				bool same = !json_array_size(json_object_get(
						d, "changes")) &&
					    !json_array_size(json_object_get(
						d, "refusals"));
				size_t q;

				/* A count alone changes a pod "unchanged". */
				json_array_foreach(json_object_get(d, "pods"),
						   q, pd)
					same = same &&
					       strcmp(jstr(pd, "change")
							  ? jstr(pd, "change")
							  : "",
						      "unchanged") == 0 &&
					       json_equal(
						   json_object_get(pd,
								   "old-count"),
						   json_object_get(pd,
								   "new-count")) &&
					       !json_array_size(json_object_get(
						   pd, "added")) &&
					       !json_array_size(json_object_get(
						   pd, "removed")) &&
					       !json_array_size(json_object_get(
						   pd, "relaunch"));

				json_object_set_new(
				    row, "change",
				    json_string(same ? "none" : "update"));
				json_object_set_new(row, "diff", d);
				if (chg.refused)
					json_object_set_new(
					    row, "refused",
					    json_string(chg.refused));
			}
		}
		if (!rendered)
			json_object_set_new(row, "endpoints_pending",
					    json_true());
		json_array_append_new(rows, row);
		hf_kvlist_release(&options);
		hf_kvlist_release(&templates);
		hf_ops_change_release(&chg);
		hf_ops_err_release(&derr);
	}
	for (size_t i = 0; old && i < old->services.len; i++)
		if (!hf_stack_find(st, old->services.items[i].key))
			json_array_append_new(
			    rows, json_pack("{s:s, s:s, s:s}", "name",
					    old->services.items[i].key,
					    "service",
					    old->services.items[i].name,
					    "change", "remove"));
	out = json_pack("{s:s, s:o}", "stack", name, "services", rows);
	hf_http_json(resp, 200, out);
out:
	hf_stack_free(st);
	hf_stack_free(old);
	json_decref(body);
	json_decref(rec);
	free(key);
}
