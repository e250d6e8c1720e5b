/*
 * cli_client.c - the operator's commands that talk to a server: service,
 * plan, pod and node. They use the HTTP API only (no back doors), print
 * human output by default and the API's JSON with --json, and exit with
 * the codes in cli.h.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http/cred.h"
#include "http/http.h"
#include "cli/cli.h"
#include "common/clock.h"
#include "common/err.h"
#include "spec/spec.h"

#define DEFAULT_ADDR "http://127.0.0.1:7070"
#define REQUEST_TIMEOUT_MS 30000

static struct hf_cli_globals g;

struct hf_cli_globals *hf_cli_globals(void)
{
	return &g;
}

static const char *addr(void)
{
	if (g.addr)
		return g.addr;
	if (getenv("HOLDFAST_ADDR") && *getenv("HOLDFAST_ADDR"))
		return getenv("HOLDFAST_ADDR");
	return DEFAULT_ADDR;
}

/*
 * --token, else $HOLDFAST_TOKEN, else the admin credential a server on
 * this machine left for this user (api/cred.h), looked up by the address.
 */
static const char *token(void)
{
	static char *local, *local_for;
	char *err = NULL;

	if (g.token)
		return g.token;
	if (getenv("HOLDFAST_TOKEN") && *getenv("HOLDFAST_TOKEN"))
		return getenv("HOLDFAST_TOKEN");
	if (local_for && strcmp(local_for, addr()) == 0)
		return local;
	free(local);
	local = NULL;
	free(local_for);
	local_for = hf_xstrdup(addr());
	if (hf_cred_local_load(addr(), &local, &err) == HF_EFORBIDDEN)
		fprintf(stderr, "holdfast: %s\n", err);
	free(err);
	return local;
}

const char *hf_cli_addr(void)
{
	return addr();
}

const char *hf_cli_token(void)
{
	return token();
}

/* An epoch-ms time as UTC ISO 8601 into buf; "-" for 0. */
static const char *iso_time(json_int_t ms, char *buf, size_t len)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0)
		return "-";
	gmtime_r(&secs, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

/* Seconds since start, a hf_mono_ms() reading. */
static double elapsed_s(int64_t start)
{
	return (double)(hf_mono_ms() - start) / 1000.0;
}

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static json_int_t jint(const json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static void print_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
				    JSON_ENCODE_ANY);

	if (s) {
		puts(s);
		free(s);
	}
}

/* The request being made, for messages about its answer (a copy). */
static const char *req_method = "GET";
static char *req_path;

static void note_request(const char *method, const char *path)
{
	req_method = method;
	free(req_path);
	req_path = hf_xstrdup(path);
}

/*
 * Why the server could not be reached, with what to check: TLS trust,
 * or whether a server runs at the address at all.
 */
static void print_unreachable(int rc, const char *err)
{
	if (rc == HF_EPARSE) {
		fprintf(stderr, "holdfast: the server at %s: %s\n", addr(),
			err ? err : hf_err_msg(rc));
		return;
	}
	fprintf(stderr, "holdfast: cannot reach the server at %s: %s\n", addr(),
		err ? err : hf_err_msg(rc));
	if (err && (strstr(err, "certificate") || strstr(err, "SSL")))
		fprintf(stderr, "holdfast: if the server's certificate comes "
				"from a private CA, give the CA with --ca-file "
				"or $HOLDFAST_CA_FILE\n");
	else
		fprintf(stderr, "holdfast: is `holdfast dev` (or `holdfast "
				"server`) running there? The address comes from "
				"%s\n",
			g.addr ? "--addr"
			: getenv("HOLDFAST_ADDR") && *getenv("HOLDFAST_ADDR")
			    ? "$HOLDFAST_ADDR"
			    : "the default (set $HOLDFAST_ADDR or --addr)");
}

/*
 * One API call. Returns 0 with *out (new reference) for any HTTP status,
 * or an exit code after printing why the server could not be reached.
 */
static int api(const char *method, const char *path, const json_t *body,
	       long *status, json_t **out)
{
	char *err = NULL;
	int rc;

	*out = NULL;
	note_request(method, path);
	rc = hf_httpc_json(addr(), method, path, token(), body,
			   REQUEST_TIMEOUT_MS, status, out, &err);
	if (rc) {
		print_unreachable(rc, err);
		free(err);
		json_decref(*out);
		*out = NULL;
		return HF_EXIT_SERVER;
	}
	free(err);
	/* A server that does not lead says who does: ask the leader. */
	if (*status == 503 && json_is_string(json_object_get(*out, "leader")) &&
	    strcmp(json_string_value(json_object_get(*out, "leader")), addr())) {
		static char *leader;

		free(leader);
		leader = hf_xstrdup(
		    json_string_value(json_object_get(*out, "leader")));
		g.addr = leader;
		json_decref(*out);
		*out = NULL;
		return api(method, path, body, status, out);
	}
	return 0;
}

/* Prints an API error body; returns the exit code for it. */
static int api_error(long status, const json_t *body)
{
	const char *msg = json_string_value(json_object_get(body, "message"));
	const char *code = json_string_value(json_object_get(body, "error"));
	json_t *diags = json_object_get(body, "diagnostics");
	size_t i;
	json_t *d;

	if (g.json && json_is_object(body)) {
		print_json(body);
	} else if (!msg) {
		/* Not a holdfast error body: say what was asked, and where. */
		fprintf(stderr,
			"holdfast: %s %s at %s: the server answered HTTP %ld "
			"without an error message (is it a holdfast server?)\n",
			req_method, req_path ? req_path : "", addr(), status);
	} else {
		/* A message that names its code already is not repeated. */
		char tail[64];

		snprintf(tail, sizeof(tail), "(%s)", code ? code : "error");
		if (strlen(msg) >= strlen(tail) &&
		    strcmp(msg + strlen(msg) - strlen(tail), tail) == 0)
			fprintf(stderr, "holdfast: %s\n", msg);
		else
			fprintf(stderr, "holdfast: %s %s\n", msg, tail);
		json_array_foreach(diags, i, d)
		{
			const char *file =
			    json_string_value(json_object_get(d, "file"));

			fprintf(stderr, "%s:%lld:%lld: %s: %s%s%s\n",
				file ? file : "<spec>",
				(long long)json_integer_value(
				    json_object_get(d, "line")),
				(long long)json_integer_value(
				    json_object_get(d, "col")),
				json_string_value(json_object_get(d, "level")),
				json_string_value(json_object_get(d, "path")),
				*json_string_value(json_object_get(d, "path"))
				    ? ": "
				    : "",
				json_string_value(json_object_get(d, "message")));
		}
	}
	if (status >= 500)
		return HF_EXIT_SERVER;
	return HF_EXIT_FAIL;
}

/*
 * After api(): 0 when it answered want; else rc when the call itself
 * failed, or the exit code of the error body it printed (api_error).
 */
static int answered(int rc, long status, long want, const json_t *out)
{
	if (rc)
		return rc;
	return status == want ? 0 : api_error(status, out);
}

/* The service to act on: -s, or the only one there is. */
static int pick_service(char **out)
{
	long status;
	json_t *list;
	int rc;

	*out = NULL;
	if (g.service) {
		*out = hf_xstrdup(g.service);
		return 0;
	}
	rc = api("GET", "/v1/services", NULL, &status, &list);
	if (rc)
		return rc;
	if (status != 200) {
		rc = api_error(status, list);
		json_decref(list);
		return rc;
	}
	if (json_array_size(list) == 1) {
		*out = hf_xstrdup(json_string_value(
		    json_object_get(json_array_get(list, 0), "name")));
		json_decref(list);
		return 0;
	}
	fprintf(stderr, "holdfast: %s; name one with -s SERVICE\n",
		json_array_size(list) ? "there are several services"
				      : "there are no services");
	json_decref(list);
	return HF_EXIT_USAGE;
}

static char *svc_path(const char *svc, const char *rest)
{
	char *esc = hf_url_escape(svc);
	char *p = hf_xasprintf("/v1/service/%s%s", esc, rest);

	free(esc);
	return p;
}

/* ------------------------------------------------------------------ */
/* Plans                                                                */

static const char *status_mark(const char *st)
{
	if (!st)
		return "?";
	return st;
}

/* Prints a plan tree; returns the number of lines printed. */
static int print_plan_tree(FILE *f, const json_t *plan)
{
	const json_t *phases = json_object_get(plan, "phases");
	size_t np = json_array_size(phases);
	int lines = 1;

	fprintf(f, "%s (%s strategy) (%s)\n",
		json_string_value(json_object_get(plan, "name")),
		json_string_value(json_object_get(plan, "strategy")),
		status_mark(json_string_value(json_object_get(plan, "status"))));
	for (size_t p = 0; p < np; p++) {
		const json_t *ph = json_array_get(phases, p);
		const json_t *steps = json_object_get(ph, "steps");
		size_t ns = json_array_size(steps);
		bool lastp = p + 1 == np;

		fprintf(f, "%s %s (%s strategy) (%s)\n", lastp ? "└─" : "├─",
			json_string_value(json_object_get(ph, "name")),
			json_string_value(json_object_get(ph, "strategy")),
			status_mark(
			    json_string_value(json_object_get(ph, "status"))));
		lines++;
		for (size_t s = 0; s < ns; s++) {
			const json_t *st = json_array_get(steps, s);
			const char *msg =
			    json_string_value(json_object_get(st, "message"));

			fprintf(f, "%s  %s %s (%s)%s%s\n", lastp ? " " : "│",
				s + 1 == ns ? "└─" : "├─",
				json_string_value(json_object_get(st, "name")),
				status_mark(json_string_value(
				    json_object_get(st, "status"))),
				msg && *msg ? ": " : "", msg ? msg : "");
			lines++;
		}
	}
	{
		size_t i;
		json_t *e;

		json_array_foreach(json_object_get(plan, "errors"), i, e)
		{
			fprintf(f, "error: %s\n", json_string_value(e));
			lines++;
		}
	}
	return lines;
}

/*
 * Waits for a plan to finish, showing progress: a redrawn tree on a
 * terminal, otherwise one line whenever a step's status or message (why it
 * waits) changes. timeout_s > 0 gives up after that long. Returns 0 on
 * COMPLETE, HF_EXIT_FAIL on ERROR (or timeout).
 */
static int wait_plan(const char *svc, const char *plan, double timeout_s)
{
	char *esc = hf_url_escape(plan);
	char *rest = hf_xasprintf("/plans/%s", esc);
	char *path = svc_path(svc, rest);
	bool tty = isatty(STDOUT_FILENO);
	json_t *last = NULL;
	int drawn = 0, rc = HF_EXIT_FAIL;
	int64_t start = hf_mono_ms();

	free(esc);
	free(rest);
	for (;;) {
		long status;
		json_t *p;
		const char *st;

		rc = api("GET", path, NULL, &status, &p);
		if (rc)
			break;
		if (status == 404) {
			rc = api_error(status, p);
			json_decref(p);
			break;
		}
		st = json_string_value(json_object_get(p, "status"));
		if (tty && !g.json) {
			if (drawn)
				printf("\033[%dA\033[J", drawn);
			drawn = print_plan_tree(stdout, p);
			fflush(stdout);
		} else if (!g.json) {
			/* Plain lines: each step whose status changed. */
			size_t i, k;
			json_t *ph, *s;

			json_array_foreach(json_object_get(p, "phases"), i, ph)
			    json_array_foreach(json_object_get(ph, "steps"), k, s)
			{
				const char *now = json_string_value(
				    json_object_get(s, "status"));
				const json_t *lph = json_array_get(
				    json_object_get(last, "phases"), i);
				const json_t *ls = json_array_get(
				    json_object_get(lph, "steps"), k);
				const char *was = json_string_value(
				    json_object_get(ls, "status"));
				const char *msg = json_string_value(
				    json_object_get(s, "message"));
				const char *wmsg = json_string_value(
				    json_object_get(ls, "message"));

				/*
				 * A new status, or news of why it waits
				 * (placement, backoff, readiness).
				 */
				if (!was || strcmp(was, now) != 0 ||
				    strcmp(wmsg ? wmsg : "", msg ? msg : "") != 0)
					printf("%s %s %s %s%s%s\n", plan,
					       json_string_value(
						   json_object_get(ph, "name")),
					       json_string_value(
						   json_object_get(s, "name")),
					       now, msg && *msg ? ": " : "",
					       msg ? msg : "");
			}
			fflush(stdout);
		}
		json_decref(last);
		last = p;
		if (st && strcmp(st, "COMPLETE") == 0) {
			rc = 0;
			break;
		}
		if (st && strcmp(st, "ERROR") == 0) {
			rc = HF_EXIT_FAIL;
			break;
		}
		if (timeout_s > 0 && elapsed_s(start) > timeout_s) {
			fprintf(stderr,
				"holdfast: plan %s is still %s after %.0f s\n",
				plan, st ? st : "?", timeout_s);
			rc = HF_EXIT_FAIL;
			break;
		}
		usleep(300 * 1000);
	}
	if (last && !tty && !g.json)
		printf("%s %s\n", plan,
		       json_string_value(json_object_get(last, "status")));
	if (last && g.json)
		print_json(last);
	json_decref(last);
	free(path);
	return rc;
}

/*
 * After a configuration change's plan: instances beyond a lowered count
 * are removed by the decommission plan, which a --wait also waits for
 * (quietly when there is nothing to remove). timeout_s counts from start.
 */
static int wait_change(const char *svc, const char *plan, double timeout_s)
{
	int64_t start = hf_mono_ms();
	char *path;
	long status;
	json_t *p = NULL;
	int rc = wait_plan(svc, plan, timeout_s);

	if (rc)
		return rc;
	path = svc_path(svc, "/plans/decommission");
	rc = api("GET", path, NULL, &status, &p);
	free(path);
	if (rc)
		return rc;
	if (status == 200 || status == 404) {
		json_decref(p);
		return 0; /* nothing to remove */
	}
	json_decref(p);
	if (timeout_s > 0) {
		timeout_s -= elapsed_s(start);
		if (timeout_s < 1)
			timeout_s = 1;
	}
	return wait_plan(svc, "decommission", timeout_s);
}

/* ------------------------------------------------------------------ */
/* service                                                              */

struct deploy_args {
	struct hf_cli_spec_src src;
	bool wait;
	double timeout;
};

enum spec_verb { SPEC_DEPLOY, SPEC_UPDATE, SPEC_DIFF };

static void print_diff_body(const json_t *d)
{
	size_t i, k;
	json_t *p, *v;

	json_array_foreach(json_object_get(d, "changes"), i, v)
	    printf("service: %s\n", json_string_value(v));
	json_array_foreach(json_object_get(d, "pods"), i, p)
	{
		hf_cli_print_pod_change(
			json_string_value(json_object_get(p, "pod")),
			json_string_value(json_object_get(p, "change")),
			(long long)json_integer_value(json_object_get(p, "old-count")),
			(long long)json_integer_value(json_object_get(p, "new-count")));
		json_array_foreach(json_object_get(p, "changes"), k, v)
		    printf("  change   %s\n", json_string_value(v));
		json_array_foreach(json_object_get(p, "relaunch"), k, v)
		    printf("  relaunch %s\n", json_string_value(v));
		json_array_foreach(json_object_get(p, "added"), k, v)
		    printf("  add      %s\n", json_string_value(v));
		json_array_foreach(json_object_get(p, "removed"), k, v)
		    printf("  remove   %s\n", json_string_value(v));
	}
	json_array_foreach(json_object_get(d, "refusals"), i, v)
	    printf("refused: %s\n", json_string_value(v));
}

/* cli.h's: what the commands in other files share of this one. */
int hf_cli_api(const char *method, const char *path, const json_t *body,
	       long *status, json_t **out)
{
	return api(method, path, body, status, out);
}

int hf_cli_api_error(long status, const json_t *body)
{
	return api_error(status, body);
}

void hf_cli_print_json(const json_t *j)
{
	print_json(j);
}

void hf_cli_print_diff(const json_t *d)
{
	print_diff_body(d);
}

/*
 * deploy / update / diff: validate the spec here (errors point at the
 * operator's own file), then send it with its options and templates.
 */
static int spec_command(int argc, char **argv, enum spec_verb verb)
{
	static const char *const verbs[] = {"deploy", "update", "diff"};
	static const struct option longopts[] = {
	    {"file", required_argument, NULL, 'f'},
	    {"option", required_argument, NULL, 'o'},
	    {"options", required_argument, NULL, 'F'},
	    {"template-dir", required_argument, NULL, 't'},
	    {"package", required_argument, NULL, 'P'},
	    {"wait", no_argument, NULL, 'w'},
	    {"timeout", required_argument, NULL, 'T'},
	    {"json", no_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	struct deploy_args a = {0};
	struct hf_diags diags = {0};
	struct hf_spec *spec = NULL;
	struct hf_spec_load_opts lo = {0};
	json_t *body = NULL, *opts_j, *tmpl_j, *out = NULL;
	const char *name = NULL;
	char *text = NULL, *copy, *path = NULL;
	long status;
	int c, rc = HF_EXIT_USAGE;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "f:o:", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			a.src.file = optarg;
			break;
		case 'o':
			/* -o wins over options files, whatever the order. */
			if (hf_options_add_arg(&a.src.cli_opts, optarg, &diags))
				goto out;
			break;
		case 'F':
			hf_strlist_push(&a.src.options_files, optarg);
			break;
		case 'P':
			a.src.package = optarg;
			break;
		case 't':
			hf_strlist_push(&a.src.template_dirs, optarg);
			break;
		case 'w':
			a.wait = true;
			break;
		case 'T':
			a.timeout = atof(optarg);
			break;
		case 'j':
			g.json = true;
			break;
		default:
			fprintf(stderr, "holdfast: unknown or incomplete flag %s\n",
				argv[optind - 1]);
			goto out;
		}
	}
	if (verb != SPEC_DEPLOY && optind < argc)
		name = argv[optind++];
	if (!name && verb != SPEC_DEPLOY)
		name = g.service;
	if ((!a.src.file && !a.src.package) || optind < argc ||
	    (verb != SPEC_DEPLOY && !name)) {
		hf_cli_usage("service", verbs[verb]);
		goto out;
	}
	rc = hf_cli_spec_resolve(&a.src);
	if (rc)
		goto out;
	lo.options = &a.src.options;
	lo.template_dirs = &a.src.template_dirs;
	rc = hf_spec_load_file(a.src.spec_file, &lo, &spec, &diags);
	if (rc == HF_ENOTFOUND || rc == HF_EIO) {
		fprintf(stderr, "holdfast: cannot read %s\n", a.src.spec_file);
		rc = HF_EXIT_USAGE;
		goto out;
	}
	if (rc) {
		rc = HF_EXIT_FAIL;
		goto out;
	}
	hf_read_file(a.src.spec_file, 16 << 20, &text, NULL);
	/* The server gets flat values: a package arrives rendered. */
	opts_j = json_object();
	for (size_t i = 0; i < a.src.options.len; i++)
		json_object_set_new(opts_j, a.src.options.items[i].key,
				    json_string(a.src.options.items[i].value));
	tmpl_j = json_object();
	for (size_t p = 0; p < spec->pods.len; p++)
		for (size_t t = 0; t < spec->pods.items[p].tasks.len; t++) {
			const struct hf_spec_task *task =
			    &spec->pods.items[p].tasks.items[t];

			for (size_t k = 0; k < task->configs.len; k++)
				if (task->configs.items[k].content)
					json_object_set_new(
					    tmpl_j,
					    task->configs.items[k].template_path,
					    json_string(
						task->configs.items[k].content));
		}
	copy = hf_xstrdup(a.src.spec_file);
	body = json_pack("{s:s, s:s, s:o, s:o}", "spec", text ? text : "",
			 "file", basename(copy), "options", opts_j, "templates",
			 tmpl_j);
	free(copy);
	if (verb == SPEC_DEPLOY) {
		rc = api("POST", "/v1/services", body, &status, &out);
	} else {
		char *esc = hf_url_escape(name);

		path = hf_xasprintf("/v1/services/%s%s", esc,
				    verb == SPEC_DIFF ? "/diff" : "");
		free(esc);
		rc = api(verb == SPEC_DIFF ? "POST" : "PUT", path, body, &status,
			 &out);
	}
	if (rc)
		goto out;
	if (status != (verb == SPEC_DEPLOY ? 201 : 200)) {
		if (status == 409 && json_object_get(out, "refusals") &&
		    !g.json) {
			/* Every reason above; the summary does not repeat one. */
			print_diff_body(out);
			fprintf(stderr, "holdfast: the %s of %s is refused; "
					"nothing changed\n",
				verbs[verb], name ? name : spec->name);
			rc = HF_EXIT_FAIL;
			goto out;
		}
		rc = api_error(status, out);
		goto out;
	}
	if (g.json && !a.wait) {
		print_json(out);
	} else if (!g.json && verb == SPEC_DEPLOY) {
		size_t i;
		json_t *v;

		printf("deployed %s (config %s); plan deploy started\n",
		       json_string_value(json_object_get(out, "name")),
		       json_string_value(json_object_get(out, "config_id")));
		json_array_foreach(json_object_get(out, "kept_volumes"), i, v)
		{
			if (i == 0)
				printf("volumes kept from an earlier %s are "
				       "reused by its instances placed on their "
				       "node (to start empty instead: service "
				       "remove %s --delete-volumes):\n",
				       spec->name, spec->name);
			printf("  %s on node %s (%s)\n",
			       json_string_value(json_object_get(v, "key")),
			       json_string_value(json_object_get(v, "node")),
			       json_string_value(json_object_get(v, "why")));
		}
	} else if (!g.json) {
		print_diff_body(out);
		if (verb == SPEC_DIFF)
			printf("%s\n",
			       json_array_size(json_object_get(out, "refusals"))
				   ? "the update would be refused"
				   : "the update is allowed");
		else if (json_is_true(json_object_get(out, "changed")))
			printf("updated %s: config %s -> %s\n", name,
			       json_string_value(json_object_get(out, "from")),
			       json_string_value(json_object_get(out, "to")));
		else
			printf("no change: %s stays at config %s\n", name,
			       json_string_value(json_object_get(out, "from")));
	}
	if (verb == SPEC_DIFF) {
		rc = json_array_size(json_object_get(out, "refusals"))
			 ? HF_EXIT_FAIL
			 : HF_EXIT_OK;
	} else if (a.wait &&
		   (verb == SPEC_DEPLOY ||
		    json_is_true(json_object_get(out, "changed")))) {
		rc = wait_change(spec->name,
				 hf_spec_update_plan_name(spec,
							  verb == SPEC_DEPLOY),
				 a.timeout);
	} else {
		rc = HF_EXIT_OK;
	}
out:
	if (diags.len)
		hf_diags_print(stderr, &diags);
	hf_diags_release(&diags);
	hf_spec_free(spec);
	hf_cli_spec_src_release(&a.src);
	json_decref(body);
	json_decref(out);
	free(text);
	free(path);
	return rc;
}

static int cmd_service_deploy(int argc, char **argv)
{
	return spec_command(argc, argv, SPEC_DEPLOY);
}

static int cmd_service_update(int argc, char **argv)
{
	return spec_command(argc, argv, SPEC_UPDATE);
}

static int cmd_service_diff(int argc, char **argv)
{
	return spec_command(argc, argv, SPEC_DIFF);
}

static int cmd_service_rollback(int argc, char **argv)
{
	const char *name = NULL, *to = NULL;
	bool wait = false;
	double timeout = 0;
	char *esc, *path, *tesc = NULL;
	long status;
	json_t *out = NULL;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--to") == 0 && k + 1 < argc)
			to = argv[++k];
		else if (strcmp(argv[k], "--wait") == 0)
			wait = true;
		else if (strcmp(argv[k], "--timeout") == 0 && k + 1 < argc)
			timeout = atof(argv[++k]);
		else if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (!name && argv[k][0] != '-')
			name = argv[k];
		else
			return hf_cli_usage("service", "rollback");
	}
	if (!name)
		name = g.service;
	if (!name)
		return hf_cli_usage("service", "rollback");
	esc = hf_url_escape(name);
	if (to)
		tesc = hf_url_escape(to);
	path = hf_xasprintf("/v1/services/%s/rollback%s%s", esc,
			    to ? "?to=" : "", to ? tesc : "");
	rc = api("POST", path, NULL, &status, &out);
	if (rc)
		goto out;
	if (status == 409 && json_object_get(out, "refusals") && !g.json) {
		print_diff_body(out);
		fprintf(stderr, "holdfast: the rollback of %s is refused; "
				"nothing changed\n",
			name);
		rc = HF_EXIT_FAIL;
		goto out;
	}
	if (status != 200) {
		rc = api_error(status, out);
		goto out;
	}
	if (g.json && !wait)
		print_json(out);
	else if (!g.json)
		printf("rolling %s back: config %s -> %s\n", name,
		       json_string_value(json_object_get(out, "from")),
		       json_string_value(json_object_get(out, "to")));
	if (wait) {
		/* The plan that carries the rollback is the target's. */
		char *p2 = hf_xasprintf("/v1/service/%s/plans", esc);
		json_t *plans = NULL;
		const char *plan = "deploy";
		size_t i;
		json_t *v;

		if (api("GET", p2, NULL, &status, &plans) == 0)
			json_array_foreach(plans, i, v) if (strcmp(
			    json_string_value(v), "update") == 0) plan = "update";
		rc = wait_change(name, plan, timeout);
		json_decref(plans);
		free(p2);
	}
out:
	json_decref(out);
	free(esc);
	free(tesc);
	free(path);
	return rc;
}

static const char *counts_text(const json_t *tasks, struct hf_buf *b)
{
	const char *k;
	json_t *v;

	hf_buf_reset(b);
	json_object_foreach((json_t *)tasks, k, v)
	    hf_buf_addf(b, "%s%lld %s", b->len ? ", " : "",
			(long long)json_integer_value(v), k);
	return b->len ? hf_buf_str(b) : "-";
}

static int cmd_service_list(int argc, char **argv)
{
	long status;
	json_t *list;
	size_t i;
	json_t *e;
	struct hf_buf b = HF_BUF_INIT;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else
			return hf_cli_usage("service", "list");
	}
	rc = api("GET", "/v1/services", NULL, &status, &list);
	if (rc)
		return rc;
	if (status != 200) {
		rc = api_error(status, list);
		json_decref(list);
		return rc;
	}
	if (g.json) {
		print_json(list);
	} else {
		printf("%-24s %-7s %-12s %s\n", "NAME", "CONFIG", "DEPLOY",
		       "TASKS");
		json_array_foreach(list, i, e)
		{
			const char *dep = json_string_value(json_object_get(
			    json_object_get(e, "plans"), "deploy"));

			printf("%-24s %-7s %-12s %s%s\n",
			       json_string_value(json_object_get(e, "name")),
			       json_string_value(json_object_get(e, "config_id")),
			       dep ? dep : "-",
			       counts_text(json_object_get(e, "tasks"), &b),
			       json_is_true(json_object_get(e, "removing"))
				   ? " (removing)"
				   : "");
		}
	}
	hf_buf_release(&b);
	json_decref(list);
	return HF_EXIT_OK;
}

static int cmd_service_status(int argc, char **argv)
{
	char *svc = NULL, *esc, *path;
	long status;
	json_t *out;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (!g.service)
			g.service = argv[k];
		else
			return hf_cli_usage("service", "status");
	}
	rc = pick_service(&svc);
	if (rc)
		return rc;
	esc = hf_url_escape(svc);
	path = hf_xasprintf("/v1/services/%s", esc);
	free(esc);
	rc = api("GET", path, NULL, &status, &out);
	free(path);
	if (rc)
		goto out;
	if (status != 200) {
		rc = api_error(status, out);
	} else if (g.json) {
		print_json(out);
	} else {
		const char *k;
		json_t *v;
		struct hf_buf b = HF_BUF_INIT;

		printf("service %s, config %s%s\n", svc,
		       json_string_value(json_object_get(out, "config_id")),
		       json_is_true(json_object_get(out, "removing"))
			   ? " (being removed)"
			   : "");
		json_object_foreach(json_object_get(out, "plans"), k, v)
		    printf("  plan %-20s %s\n", k, json_string_value(v));
		printf("  tasks: %s\n",
		       counts_text(json_object_get(out, "tasks"), &b));
		hf_buf_release(&b);
	}
	json_decref(out);
out:
	free(svc);
	return rc;
}

/*
 * Waits until the agents confirmed the deletion of a service's volumes
 * (one instance's when instance is set): none is listed any more.
 */
/* Waits until the replicated volume `name` is gone (every replica). */
static int wait_xvol_gone(const char *name, double timeout, int64_t start)
{
	char *esc = hf_url_escape(name);
	char *path = hf_xasprintf("/v1/external-volumes/%s", esc);
	long status;
	json_t *out;
	int rc;

	free(esc);
	for (;;) {
		rc = api("GET", path, NULL, &status, &out);
		if (rc)
			break;
		json_decref(out);
		if (status == 404)
			break;
		if (status != 200) {
			rc = HF_EXIT_FAIL;
			break;
		}
		if (timeout > 0 && elapsed_s(start) > timeout) {
			fprintf(stderr,
				"holdfast: volume %s not deleted yet after %.0f "
				"s (are its replicas' agents running? see "
				"'holdfast volume show %s')\n",
				name, timeout, name);
			rc = HF_EXIT_FAIL;
			break;
		}
		usleep(300 * 1000);
	}
	free(path);
	return rc;
}

static int wait_volumes_gone(const char *svc, const char *instance,
			     double timeout, int64_t start)
{
	char *esc = hf_url_escape(svc);
	char *path = hf_xasprintf("/v1/volumes?service=%s", esc);
	long status;
	json_t *out, *v;
	size_t i, left;
	int rc;

	free(esc);
	for (;;) {
		rc = api("GET", path, NULL, &status, &out);
		if (rc)
			break;
		if (status != 200) {
			rc = api_error(status, out);
			json_decref(out);
			break;
		}
		left = 0;
		json_array_foreach(out, i, v) if (!instance ||
						  strcmp(jstr(v, "instance"),
							 instance) == 0) left++;
		if (!left) {
			json_decref(out);
			break;
		}
		if (timeout > 0 && elapsed_s(start) > timeout) {
			fprintf(stderr,
				"holdfast: %zu volume(s) of %s not deleted yet "
				"after %.0f s (is their node's agent "
				"running? see 'holdfast volume list')\n",
				left, svc, timeout);
			json_decref(out);
			rc = HF_EXIT_FAIL;
			break;
		}
		json_decref(out);
		usleep(300 * 1000);
	}
	free(path);
	return rc;
}

static int cmd_service_remove(int argc, char **argv)
{
	const char *name = NULL;
	bool del = false, wait = false;
	double timeout = 0;
	int64_t start = hf_mono_ms();
	char *esc, *path;
	long status;
	json_t *out;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--delete-volumes") == 0)
			del = true;
		else if (strcmp(argv[k], "--wait") == 0)
			wait = true;
		else if (strcmp(argv[k], "--timeout") == 0 && k + 1 < argc)
			timeout = atof(argv[++k]);
		else if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (!name && argv[k][0] != '-')
			name = argv[k];
		else
			return hf_cli_usage("service", "remove");
	}
	if (!name)
		name = g.service;
	if (!name)
		return hf_cli_usage("service", "remove");
	esc = hf_url_escape(name);
	path = hf_xasprintf("/v1/services/%s%s", esc,
			    del ? "?delete_volumes=true" : "");
	rc = api("DELETE", path, NULL, &status, &out);
	free(path);
	if (rc)
		goto out;
	if (status != 202) {
		rc = api_error(status, out);
		json_decref(out);
		goto out;
	}
	if (g.json) {
		print_json(out);
	} else if (json_is_true(json_object_get(out, "already_removed"))) {
		size_t i;
		json_t *v;

		printf("%s was already removed; deleting the volumes it kept:\n",
		       name);
		json_array_foreach(json_object_get(out, "volumes"), i, v)
		    printf("  deleting %s on node %s\n",
			   json_string_value(json_object_get(v, "key")),
			   json_string_value(json_object_get(v, "node")));
	} else {
		size_t i;
		json_t *v;

		printf("removing %s: its tasks are being stopped\n", name);
		json_array_foreach(json_object_get(out, "volumes"), i, v)
		    printf("  %s volumes of %s on node %s (volumes/%s)\n",
			   del ? "deleting" : "keeping",
			   json_string_value(json_object_get(v, "instance")),
			   json_string_value(json_object_get(v, "node")),
			   json_string_value(json_object_get(v, "key")));
		if (!del && json_array_size(json_object_get(out, "volumes")))
			printf("volumes are kept under the agent's data "
			       "directory; remove with --delete-volumes to "
			       "delete them\n");
	}
	json_decref(out);
	if (wait) {
		char *p2 = hf_xasprintf("/v1/services/%s", esc);

		for (;;) {
			rc = api("GET", p2, NULL, &status, &out);
			json_decref(out);
			if (rc || status == 404)
				break;
			if (timeout > 0 &&
			    elapsed_s(start) > timeout) {
				fprintf(stderr,
					"holdfast: %s is still being removed "
					"after %.0f s (see 'holdfast -s %s pod "
					"status')\n",
					name, timeout, name);
				rc = HF_EXIT_FAIL;
				break;
			}
			usleep(300 * 1000);
		}
		free(p2);
		if (!rc && del)
			rc = wait_volumes_gone(name, NULL, timeout, start);
		if (!rc && !g.json)
			printf("%s removed%s\n", name,
			       del ? ", its volumes deleted" : "");
	}
out:
	free(esc);
	return rc;
}

/* ------------------------------------------------------------------ */
/* plan                                                                 */

static int cmd_plan_list(int argc, char **argv)
{
	char *svc = NULL, *path;
	long status;
	json_t *out;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else
			return hf_cli_usage("plan", "list");
	}
	rc = pick_service(&svc);
	if (rc)
		return rc;
	path = svc_path(svc, "/plans");
	rc = api("GET", path, NULL, &status, &out);
	free(path);
	if (!rc) {
		if (status != 200) {
			rc = api_error(status, out);
		} else if (g.json) {
			print_json(out);
		} else {
			size_t i;
			json_t *v;

			json_array_foreach(out, i, v)
			    printf("%s\n", json_string_value(v));
		}
		json_decref(out);
	}
	free(svc);
	return rc;
}

static int cmd_plan_show(int argc, char **argv)
{
	const char *plan = NULL;
	char *svc = NULL, *esc, *rest, *path;
	long status;
	json_t *out;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (!plan && argv[k][0] != '-')
			plan = argv[k];
		else
			return hf_cli_usage("plan", "show");
	}
	if (!plan)
		plan = "deploy";
	rc = pick_service(&svc);
	if (rc)
		return rc;
	esc = hf_url_escape(plan);
	rest = hf_xasprintf("/plans/%s", esc);
	path = svc_path(svc, rest);
	rc = api("GET", path, NULL, &status, &out);
	if (!rc) {
		if (status == 200 || status == 202 || status == 417) {
			if (g.json)
				print_json(out);
			else
				print_plan_tree(stdout, out);
			rc = status == 417 ? HF_EXIT_FAIL : HF_EXIT_OK;
		} else {
			rc = api_error(status, out);
		}
		json_decref(out);
	}
	free(esc);
	free(rest);
	free(path);
	free(svc);
	return rc;
}

/* What a continue let go, and the canary gates that remain. */
static void print_continued(const char *plan, const json_t *out)
{
	const json_t *gates = json_object_get(out, "gates");
	const char *st = json_string_value(json_object_get(out, "status"));
	json_int_t need =
	    json_integer_value(json_object_get(out, "continues_needed"));
	size_t i;
	json_t *v;

	json_array_foreach(json_object_get(out, "continued"), i, v)
	    printf("plan %s: %s\n", plan, json_string_value(v));
	if (!st)
		return;
	if (!need) {
		printf("plan %s is %s; no canary gate remains\n", plan, st);
		return;
	}
	printf("plan %s is %s; %lld more continue%s needed:\n", plan, st,
	       (long long)need, need == 1 ? " is" : "s are");
	json_array_foreach(gates, i, v)
	    printf("  phase %s: %lld, the next for %s (it waits for %s)\n",
		   json_string_value(json_object_get(v, "phase")),
		   (long long)json_integer_value(
		       json_object_get(v, "continues_left")),
		   json_string_value(json_object_get(v, "step")),
		   json_string_value(json_object_get(v, "waits_for")));
}

/* plan start|stop|pause|resume|force-restart|force-complete */
static int plan_action(int argc, char **argv, const char *verb,
		       const char *endpoint, bool takes_step)
{
	static const struct option longopts[] = {
	    {"param", required_argument, NULL, 'p'},
	    {"phase", required_argument, NULL, 'P'},
	    {"step", required_argument, NULL, 'S'},
	    {"wait", no_argument, NULL, 'w'},
	    {"timeout", required_argument, NULL, 'T'},
	    {"json", no_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	const char *plan = NULL, *phase = NULL, *step = NULL;
	struct hf_kvlist params = {0};
	struct hf_diags d = {0};
	struct hf_buf q = HF_BUF_INIT;
	bool wait = false;
	double timeout = 0;
	char *svc = NULL, *esc = NULL, *rest = NULL, *path = NULL;
	json_t *body = NULL, *out = NULL;
	long status;
	int c, rc = HF_EXIT_USAGE;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "p:", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (hf_options_add_arg(&params, optarg, &d)) {
				hf_diags_print(stderr, &d);
				goto out;
			}
			if (!hf_is_env_name(params.items[params.len - 1].key)) {
				fprintf(stderr,
					"holdfast: plan parameter '%s' is not "
					"a valid environment variable name\n",
					params.items[params.len - 1].key);
				goto out;
			}
			break;
		case 'P':
			phase = optarg;
			break;
		case 'S':
			step = optarg;
			break;
		case 'w':
			wait = true;
			break;
		case 'T':
			timeout = atof(optarg);
			break;
		case 'j':
			g.json = true;
			break;
		default:
			fprintf(stderr, "holdfast: unknown or incomplete flag %s\n",
				argv[optind - 1]);
			goto out;
		}
	}
	for (int k = optind; k < argc; k++) {
		if (!plan)
			plan = argv[k];
		else if (takes_step && !phase)
			phase = argv[k];
		else if (takes_step && !step)
			step = argv[k];
		else {
			hf_cli_usage("plan", verb);
			goto out;
		}
	}
	if (!plan || (takes_step && (!phase || !step))) {
		hf_cli_usage("plan", verb);
		goto out;
	}
	rc = pick_service(&svc);
	if (rc)
		goto out;
	if (phase) {
		char *e = hf_url_escape(phase);

		hf_buf_addf(&q, "?phase=%s", e);
		free(e);
	}
	if (step) {
		char *e = hf_url_escape(step);

		hf_buf_addf(&q, "&step=%s", e);
		free(e);
	}
	esc = hf_url_escape(plan);
	rest = hf_xasprintf("/plans/%s/%s%s", esc, endpoint, hf_buf_str(&q));
	path = svc_path(svc, rest);
	if (params.len) {
		body = json_object();
		for (size_t i = 0; i < params.len; i++)
			json_object_set_new(body, params.items[i].key,
					    json_string(params.items[i].value));
	}
	rc = api("POST", path, body, &status, &out);
	if ((rc = answered(rc, status, 200, out)))
		goto out;
	if (g.json && !wait)
		print_json(out);
	else if (!g.json && json_object_get(out, "continued"))
		print_continued(plan, out);
	else if (!g.json)
		printf("plan %s: %s %s\n", plan, verb,
		       phase ? phase : "done");
	rc = wait ? wait_plan(svc, plan, timeout) : HF_EXIT_OK;
out:
	hf_diags_release(&d);
	hf_kvlist_release(&params);
	hf_buf_release(&q);
	json_decref(body);
	json_decref(out);
	free(svc);
	free(esc);
	free(rest);
	free(path);
	return rc;
}

static int cmd_plan_start(int argc, char **argv)
{
	return plan_action(argc, argv, "start", "start", false);
}
static int cmd_plan_stop(int argc, char **argv)
{
	return plan_action(argc, argv, "stop", "stop", false);
}
static int cmd_plan_pause(int argc, char **argv)
{
	return plan_action(argc, argv, "pause", "interrupt", false);
}
static int cmd_plan_resume(int argc, char **argv)
{
	return plan_action(argc, argv, "resume", "continue", false);
}
static int cmd_plan_interrupt(int argc, char **argv)
{
	return plan_action(argc, argv, "interrupt", "interrupt", false);
}
static int cmd_plan_continue(int argc, char **argv)
{
	return plan_action(argc, argv, "continue", "continue", false);
}
static int cmd_plan_force_restart(int argc, char **argv)
{
	return plan_action(argc, argv, "force-restart", "restart", true);
}
static int cmd_plan_force_complete(int argc, char **argv)
{
	return plan_action(argc, argv, "force-complete", "forceComplete", true);
}

/* ------------------------------------------------------------------ */
/* pod and node                                                         */

/*
 * A table whose columns are as wide as their widest cell, so that no
 * value (NOT_LAUNCHED, a long task name) shifts the columns after it.
 * Rows have the header's number of cells (at most TABLE_COLS); a row may
 * end with a free-form note, printed after two spaces.
 */
#define TABLE_COLS 8

struct table {
	size_t ncols;
	HF_VEC(char *) cells; /* ncols + 1 per row; the note may be NULL */
	size_t width[TABLE_COLS];
};

/* cells: ncols values (NULL prints "-"), then the note (may be NULL). */
static void table_row(struct table *t, const char *const *cells,
		      size_t n, const char *note)
{
	if (!t->ncols)
		t->ncols = n < TABLE_COLS ? n : TABLE_COLS;
	for (size_t i = 0; i < t->ncols; i++) {
		const char *v = i < n && cells[i] ? cells[i] : "-";

		if (strlen(v) > t->width[i])
			t->width[i] = strlen(v);
		*HF_VEC_PUSH(&t->cells) = hf_xstrdup(v);
	}
	*HF_VEC_PUSH(&t->cells) = note && *note ? hf_xstrdup(note) : NULL;
}

static void table_print(const struct table *t)
{
	size_t step = t->ncols + 1;

	for (size_t r = 0; t->ncols && r + step <= t->cells.len; r += step) {
		char *const *row = &t->cells.items[r];
		const char *note = row[t->ncols];

		for (size_t i = 0; i < t->ncols; i++) {
			bool last = i + 1 == t->ncols;

			/* No padding after the last cell unless a note follows. */
			printf("%-*s%s", !last || note ? (int)t->width[i] : 0,
			       row[i], last ? "" : " ");
		}
		printf("%s%s\n", note ? "  " : "", note ? note : "");
	}
}

static void table_release(struct table *t)
{
	for (size_t i = 0; i < t->cells.len; i++)
		free(t->cells.items[i]);
	HF_VEC_FREE(&t->cells);
}

static int cmd_pod_status(int argc, char **argv)
{
	const char *only = NULL;
	char *svc = NULL, *path;
	long status;
	json_t *out;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (!only && argv[k][0] != '-')
			only = argv[k];
		else
			return hf_cli_usage("pod", argv[0]);
	}
	rc = pick_service(&svc);
	if (rc)
		return rc;
	path = svc_path(svc, "/pod/status");
	rc = api("GET", path, NULL, &status, &out);
	free(path);
	if (rc)
		goto out;
	if (status != 200) {
		rc = api_error(status, out);
	} else if (g.json) {
		print_json(out);
	} else {
		size_t i, k;
		json_t *p, *tk;
		bool list = strcmp(argv[0], "list") == 0;
		struct table t = {0};

		static const char *const head[] = {
		    "POD", "TASK", "STATUS", "READY", "RESTARTS", "NODE"};

		table_row(&t, head, HF_ARRAY_LEN(head), NULL);
		json_array_foreach(json_object_get(out, "pods"), i, p)
		{
			const char *pname =
			    json_string_value(json_object_get(p, "name"));
			const char *node =
			    json_string_value(json_object_get(p, "node"));
			const char *pmsg =
			    json_string_value(json_object_get(p, "message"));

			if (only && strcmp(only, pname) != 0)
				continue;
			if (list) {
				printf("%s%s\n", pname,
				       node ? "" : "  (not placed)");
				continue;
			}
			/* An instance not placed yet has no tasks: one row. */
			if (!json_array_size(json_object_get(p, "tasks"))) {
				const char *row[] = {
				    pname, "-",
				    node ? "NOT_LAUNCHED" : "NOT_PLACED", "no",
				    "0", node};

				table_row(&t, row, HF_ARRAY_LEN(row), pmsg);
			}
			json_array_foreach(json_object_get(p, "tasks"), k, tk)
			{
				const char *msg = json_string_value(
				    json_object_get(tk, "message"));
				char restarts[24];

				if (!msg)
					msg = pmsg;
				snprintf(restarts, sizeof(restarts), "%lld",
					 (long long)json_integer_value(
					     json_object_get(tk, "restarts")));
				{
					const char *row[] = {
					    pname, jstr(tk, "name"),
					    jstr(tk, "status"),
					    json_is_true(
						json_object_get(tk, "ready"))
						? "yes"
						: "no",
					    restarts, node};

					table_row(&t, row, HF_ARRAY_LEN(row),
						  msg);
				}
			}
		}
		if (!list)
			table_print(&t);
		table_release(&t);
	}
	json_decref(out);
out:
	free(svc);
	return rc;
}

/* `pod info` for people: the record, with times and states spelled out. */
static void print_pod_info(const json_t *in)
{
	const json_t *ports = json_object_get(in, "ports");
	json_int_t decom = jint(in, "decom");
	const char *k;
	json_t *v, *sl;
	size_t i;
	char t1[40], t2[40];

	printf("%s (pod %s, instance %lld)\n", jstr(in, "name"), jstr(in, "pod"),
	       (long long)jint(in, "index"));
	printf("  node:      %s\n",
	       jstr(in, "node") ? jstr(in, "node") : "- (not placed)");
	if (json_object_size(ports)) {
		printf("  ports:    ");
		json_object_foreach((json_t *)ports, k, v)
		    printf(" %s %s", k, json_string_value(v));
		printf("\n");
	}
	if (json_is_true(json_object_get(in, "paused")))
		printf("  state:     paused (its tasks run a sleep; 'pod resume' "
		       "undoes it)\n");
	if (json_is_true(json_object_get(in, "replacing")))
		printf("  state:     being replaced%s\n",
		       json_is_true(json_object_get(in, "replace_deleting"))
			   ? " (its old volumes are being deleted)"
			   : "");
	if (decom)
		printf("  state:     being decommissioned (%s)\n",
		       decom == 1 ? "draining" : "stopping its tasks");
	if (json_is_true(json_object_get(in, "drain_failed")))
		printf("  drain:     failed; its volumes are kept\n");
	if (jstr(in, "replaced_node"))
		printf("  replaces:  the instance on node %s (%s)%s\n",
		       jstr(in, "replaced_node"),
		       jstr(in, "replaced_address") ? jstr(in, "replaced_address")
						    : "-",
		       json_is_true(json_object_get(in, "replace_pending"))
			   ? "; its replace tasks have not finished"
			   : "");
	if (jstr(in, "message"))
		printf("  message:   %s\n", jstr(in, "message"));
	json_array_foreach(json_object_get(in, "tasks"), i, sl)
	{
		const json_t *c = json_object_get(sl, "current");
		json_t *h;

		if (!json_is_object(c)) {
			printf("  task %s: not launched\n", jstr(sl, "task"));
			continue;
		}
		h = json_object_get(c, "healthy");
		printf("  task %s: %s%s%s%s\n", jstr(sl, "task"), jstr(c, "state"),
		       json_is_true(json_object_get(c, "ready")) ? ", ready" : "",
		       json_is_true(h)	    ? ", healthy"
		       : json_is_false(h) ? ", unhealthy"
					  : "",
		       json_is_true(json_object_get(c, "kill"))
			   ? ", being stopped"
			   : "");
		printf("    id:        %s\n", jstr(c, "id"));
		printf("    config:    %s (launched by %s)\n",
		       jstr(c, "config_id") ? jstr(c, "config_id") : "-",
		       jstr(c, "run") ? jstr(c, "run") : "-");
		printf("    launched:  %s", iso_time(jint(c, "launched_at"), t1,
						 sizeof(t1)));
		if (jint(c, "started_at"))
			printf(", running since %s",
			       iso_time(jint(c, "started_at"), t2, sizeof(t2)));
		printf("\n");
		if (jint(c, "finished_at")) {
			printf("    ended:     %s", iso_time(jint(c, "finished_at"),
							t1, sizeof(t1)));
			if (json_is_integer(json_object_get(c, "exit_code")))
				printf(", exit status %lld",
				       (long long)jint(c, "exit_code"));
			if (json_is_integer(json_object_get(c, "signal")))
				printf(", signal %lld",
				       (long long)jint(c, "signal"));
			if (json_is_true(json_object_get(c, "oom_killed")))
				printf(", out of memory");
			printf("\n");
		}
		printf("    restarts:  %lld (launches %lld)",
		       (long long)jint(sl, "restarts"),
		       (long long)jint(sl, "launches"));
		/* Restarts in place by its node: the same launch, counted in. */
		if (jint(c, "in_place_restarts")) {
			printf(", %lld in place by its node, the latest after ",
			       (long long)jint(c, "in_place_restarts"));
			if (json_is_integer(json_object_get(c, "last_exit_code")))
				printf("exit code %lld",
				       (long long)jint(c, "last_exit_code"));
			else
				printf("signal %lld",
				       (long long)jint(c, "last_signal"));
			printf(" at %s", iso_time(jint(c, "last_exit_at"), t1,
						  sizeof(t1)));
		}
		if (jint(sl, "failures"))
			printf("; %lld failure%s in a row",
			       (long long)jint(sl, "failures"),
			       jint(sl, "failures") == 1 ? "" : "s");
		if (jint(sl, "backoff_until") > (json_int_t)hf_now_ms())
			printf("; %s not before %s",
			       json_is_true(json_object_get(c, "backoff"))
				   ? "restarted in place"
				   : "next launch",
			       iso_time(jint(sl, "backoff_until"), t1,
					sizeof(t1)));
		printf("\n");
		if (json_object_size(json_object_get(c, "params"))) {
			printf("    params:   ");
			json_object_foreach(json_object_get(c, "params"), k, v)
			    printf(" %s=%s", k, json_string_value(v));
			printf("\n");
		}
		if (jstr(c, "message"))
			printf("    message:   %s\n", jstr(c, "message"));
	}
}

static int cmd_pod_info(int argc, char **argv)
{
	const char *pod = NULL;
	char *svc = NULL, *esc, *rest, *path;
	long status;
	json_t *out;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (!pod && argv[k][0] != '-')
			pod = argv[k];
		else
			return hf_cli_usage("pod", "info");
	}
	if (!pod)
		return hf_cli_usage("pod", "info");
	rc = pick_service(&svc);
	if (rc)
		return rc;
	esc = hf_url_escape(pod);
	rest = hf_xasprintf("/pod/%s/info", esc);
	path = svc_path(svc, rest);
	rc = api("GET", path, NULL, &status, &out);
	if (!rc) {
		if (status != 200)
			rc = api_error(status, out);
		else if (g.json)
			print_json(out);
		else
			print_pod_info(out);
		json_decref(out);
	}
	free(esc);
	free(rest);
	free(path);
	free(svc);
	return rc;
}

/* pod restart|replace|pause|resume POD */
static int pod_action(int argc, char **argv, const char *op)
{
	const char *pod = NULL;
	bool yes = false;
	char *svc = NULL, *esc, *rest, *path;
	long status;
	json_t *out;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--yes") == 0 || strcmp(argv[k], "-y") == 0)
			yes = true;
		else if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (!pod && argv[k][0] != '-')
			pod = argv[k];
		else
			return hf_cli_usage("pod", op);
	}
	if (!pod)
		return hf_cli_usage("pod", op);
	rc = pick_service(&svc);
	if (rc)
		return rc;
	if (strcmp(op, "replace") == 0 && !yes) {
		char answer[16] = "";

		if (!isatty(STDIN_FILENO)) {
			fprintf(stderr,
				"holdfast: replacing %s deletes its volumes; "
				"confirm with --yes\n",
				pod);
			free(svc);
			return HF_EXIT_USAGE;
		}
		fprintf(stderr,
			"Replacing %s of %s discards its volumes and starts it "
			"afresh. Type 'yes' to go on: ",
			pod, svc);
		if (!fgets(answer, sizeof(answer), stdin) ||
		    strncmp(answer, "yes", 3) != 0) {
			fprintf(stderr, "holdfast: not replaced\n");
			free(svc);
			return HF_EXIT_FAIL;
		}
	}
	esc = hf_url_escape(pod);
	rest = hf_xasprintf("/pod/%s/%s", esc, op);
	path = svc_path(svc, rest);
	rc = api("POST", path, NULL, &status, &out);
	if (!rc) {
		if (status != 200)
			rc = api_error(status, out);
		else if (g.json)
			print_json(out);
		else
			printf("pod %s: %s requested\n", pod, op);
		json_decref(out);
	}
	free(esc);
	free(rest);
	free(path);
	free(svc);
	return rc;
}

static int cmd_pod_restart(int argc, char **argv)
{
	return pod_action(argc, argv, "restart");
}
static int cmd_pod_replace(int argc, char **argv)
{
	return pod_action(argc, argv, "replace");
}
static int cmd_pod_pause(int argc, char **argv)
{
	return pod_action(argc, argv, "pause");
}
static int cmd_pod_resume(int argc, char **argv)
{
	return pod_action(argc, argv, "resume");
}

/* The old and new count of pod type pod in a change's diff. */
static void diff_counts(const json_t *d, const char *pod, long long *from,
			long long *to)
{
	size_t i;
	json_t *p;

	*from = *to = -1;
	json_array_foreach(json_object_get(d, "pods"), i, p)
	{
		if (strcmp(json_string_value(json_object_get(p, "pod")), pod))
			continue;
		*from = json_integer_value(json_object_get(p, "old-count"));
		*to = json_integer_value(json_object_get(p, "new-count"));
	}
}

/* pod scale POD-TYPE (COUNT | --reset): a count set over the spec's. */
static int cmd_pod_scale(int argc, char **argv)
{
	const char *pod = NULL, *num = NULL;
	bool reset = false, wait = false;
	double timeout = 0;
	char *svc = NULL, *esc, *rest, *path, *end;
	long long count = 0, from, to;
	json_t *body = NULL, *out = NULL;
	long status;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--reset") == 0)
			reset = true;
		else if (strcmp(argv[k], "--wait") == 0)
			wait = true;
		else if (strcmp(argv[k], "--timeout") == 0 && k + 1 < argc)
			timeout = atof(argv[++k]);
		else if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (!pod && argv[k][0] != '-')
			pod = argv[k];
		else if (!num && (argv[k][0] != '-' ||
				  (argv[k][1] >= '0' && argv[k][1] <= '9')))
			num = argv[k];
		else
			return hf_cli_usage("pod", "scale");
	}
	if (num) {
		errno = 0;
		count = strtoll(num, &end, 10);
		if (errno || *end || end == num) {
			fprintf(stderr, "holdfast: '%s' is not a count\n", num);
			return HF_EXIT_USAGE;
		}
	}
	if (!pod || !num == !reset)
		return hf_cli_usage("pod", "scale");
	rc = pick_service(&svc);
	if (rc)
		return rc;
	esc = hf_url_escape(pod);
	rest = hf_xasprintf("/pod-types/%s/count", esc);
	path = svc_path(svc, rest);
	if (!reset)
		body = json_pack("{s:I}", "count", (json_int_t)count);
	rc = api(reset ? "DELETE" : "PUT", path, body, &status, &out);
	if (rc)
		goto out;
	if (status == 409 && json_object_get(out, "refusals") && !g.json) {
		print_diff_body(out);
		fprintf(stderr,
			"holdfast: scaling %s of %s is refused; nothing "
			"changed\n",
			pod, svc);
		rc = HF_EXIT_FAIL;
		goto out;
	}
	if (status != 200) {
		rc = api_error(status, out);
		goto out;
	}
	if (g.json && !wait) {
		print_json(out);
	} else if (!g.json) {
		print_diff_body(out);
		diff_counts(out, pod, &from, &to);
		if (json_is_true(json_object_get(out, "changed")))
			printf("scaled %s of %s: count %lld -> %lld (config %s "
			       "-> %s)\n",
			       pod, svc, from, to,
			       json_string_value(json_object_get(out, "from")),
			       json_string_value(json_object_get(out, "to")));
		else
			printf("no change: %s of %s %s\n", pod, svc,
			       reset ? "has its spec's count already"
				     : "has that count already");
	}
	if (wait && json_is_true(json_object_get(out, "changed")))
		rc = wait_change(
		    svc, json_string_value(json_object_get(out, "plan")),
		    timeout);
out:
	json_decref(body);
	json_decref(out);
	free(esc);
	free(rest);
	free(path);
	free(svc);
	return rc;
}

static void print_ms_ago(const char *label, const json_t *ms)
{
	if (!json_is_integer(ms))
		return;
	printf("  %-13s %.1f s ago\n", label,
	       (double)(hf_now_ms() - json_integer_value(ms)) / 1000);
}

/* autoscale status [POD-TYPE] [--json]: each policy, its values, what next. */
static int cmd_autoscale_status(int argc, char **argv)
{
	const char *only = NULL;
	char *svc = NULL, *path;
	json_t *out = NULL, *pods;
	long status;
	size_t shown = 0;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (!only && argv[k][0] != '-')
			only = argv[k];
		else
			return hf_cli_usage("autoscale", "status");
	}
	rc = pick_service(&svc);
	if (rc)
		return rc;
	path = svc_path(svc, "/autoscale");
	rc = api("GET", path, NULL, &status, &out);
	if (rc)
		goto out;
	if (status != 200) {
		rc = api_error(status, out);
		goto out;
	}
	pods = json_object_get(out, "pods");
	if (g.json) {
		print_json(out);
		goto out;
	}
	for (size_t i = 0; i < json_array_size(pods); i++) {
		const json_t *p = json_array_get(pods, i);
		const json_t *pol = json_object_get(p, "policy");
		const json_t *m = json_object_get(pol, "metric");
		const json_t *up = json_object_get(pol, "up");
		const json_t *down = json_object_get(pol, "down");
		const json_t *h = json_object_get(p, "history");
		const char *name = json_string_value(json_object_get(p, "pod"));
		const char *src;
		char *msrc;

		if (only && strcmp(only, name) != 0)
			continue;
		shown++;
		src = json_object_get(m, "command")	  ? "command"
		      : json_object_get(m, "http")	  ? "http"
		      : json_object_get(m, "prometheus") ? "prometheus"
							  : "task-metrics";
		msrc = json_dumps(json_object_get(m, src), JSON_COMPACT |
							       JSON_ENCODE_ANY);
		printf("%s: count %lld, min %lld, max %lld, every %gs%s\n",
		       name,
		       (long long)json_integer_value(json_object_get(p, "count")),
		       (long long)json_integer_value(json_object_get(pol, "min")),
		       (long long)json_integer_value(json_object_get(pol, "max")),
		       json_number_value(json_object_get(pol, "interval")),
		       json_is_true(json_object_get(p, "dry_run")) ? " (dry run)"
								    : "");
		printf("  metric        %s %s\n", src, msrc ? msrc : "");
		free(msrc);
		if (json_object_get(pol, "target"))
			printf("  rule          target %g per instance "
			       "(tolerance %g)\n",
			       json_number_value(json_object_get(pol, "target")),
			       json_number_value(
				   json_object_get(pol, "tolerance")));
		else {
			char ab[32] = "-", be[32] = "-";

			if (json_is_number(json_object_get(up, "above")))
				snprintf(ab, sizeof(ab), "%g",
					 json_number_value(
					     json_object_get(up, "above")));
			if (json_is_number(json_object_get(down, "below")))
				snprintf(be, sizeof(be), "%g",
					 json_number_value(
					     json_object_get(down, "below")));
			printf("  rule          up above %s by %lld, down below "
			       "%s by %lld\n",
			       ab,
			       (long long)json_integer_value(
				   json_object_get(up, "step")),
			       be,
			       (long long)json_integer_value(
				   json_object_get(down, "step")));
		}
		printf("  cooldowns     up %gs, down %gs; %lld sample(s) in a "
		       "row\n",
		       json_number_value(json_object_get(up, "cooldown")),
		       json_number_value(json_object_get(down, "cooldown")),
		       (long long)json_integer_value(
			   json_object_get(pol, "samples")));
		if (json_is_number(json_object_get(p, "value")))
			printf("  value         %g (wants %lld)\n",
			       json_number_value(json_object_get(p, "value")),
			       (long long)json_integer_value(
				   json_object_get(p, "desired")));
		if (json_is_string(json_object_get(p, "error")))
			printf("  metric error  %s\n",
			       json_string_value(json_object_get(p, "error")));
		if (json_array_size(h)) {
			printf("  last values  ");
			for (size_t k = 0; k < json_array_size(h); k++) {
				const json_t *v = json_object_get(
				    json_array_get(h, k), "value");

				if (json_is_number(v))
					printf(" %g", json_number_value(v));
				else
					printf(" error");
			}
			printf("\n");
		}
		if (json_is_string(json_object_get(p, "decision")))
			printf("  decision      %s\n",
			       json_string_value(json_object_get(p, "decision")));
		print_ms_ago("last change", json_object_get(p, "last_action_at"));
		if (json_is_string(json_object_get(p, "next")))
			printf("  next          %s\n",
			       json_string_value(json_object_get(p, "next")));
	}
	if (!shown) {
		if (only)
			fprintf(stderr, "holdfast: pod type '%s' of %s has no "
					"autoscale policy\n",
				only, svc);
		else
			printf("no pod type of %s has an autoscale policy\n",
			       svc);
		rc = only ? HF_EXIT_FAIL : 0;
	}
out:
	json_decref(out);
	free(path);
	free(svc);
	return rc;
}

/* GET a service path and print it (JSON, or lines for string arrays). */
static int show_get(const char *rest, bool lines)
{
	char *svc = NULL, *path;
	long status;
	json_t *out;
	int rc = pick_service(&svc);

	if (rc)
		return rc;
	path = svc_path(svc, rest);
	rc = api("GET", path, NULL, &status, &out);
	if (!rc) {
		if (status != 200) {
			rc = api_error(status, out);
		} else if (lines && !g.json && json_is_array(out)) {
			size_t i;
			json_t *v;

			json_array_foreach(out, i, v)
			    printf("%s\n", json_is_string(v)
						 ? json_string_value(v)
						 : "?");
		} else if (!g.json && json_is_string(out)) {
			printf("%s\n", json_string_value(out));
		} else {
			print_json(out);
		}
		json_decref(out);
	}
	free(path);
	free(svc);
	return rc;
}

static int cmd_endpoints(int argc, char **argv)
{
	const char *name = NULL;
	char *rest, *path, *svc = NULL;
	json_t *out = NULL, *v;
	long status;
	size_t i;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (!name && argv[k][0] != '-')
			name = argv[k];
		else
			return hf_cli_usage("endpoints", NULL);
	}
	if (name) {
		char *esc = hf_url_escape(name);

		rest = hf_xasprintf("/endpoints/%s", esc);
		free(esc);
	} else {
		rest = hf_xstrdup("/endpoints");
	}
	if (g.json) {
		rc = show_get(rest, true);
		free(rest);
		return rc;
	}
	rc = pick_service(&svc);
	if (rc) {
		free(rest);
		return rc;
	}
	path = svc_path(svc, rest);
	free(rest);
	rc = api("GET", path, NULL, &status, &out);
	free(path);
	if (rc)
		goto out;
	if (status != 200) {
		rc = api_error(status, out);
	} else if (!name && !json_array_size(out)) {
		/* Said, not left to an empty output. */
		printf("%s advertises no endpoints: none of its ports has "
		       "'advertise: true' (its pods' ports are in 'holdfast -s "
		       "%s pod info POD')\n",
		       svc, svc);
	} else if (!name) {
		json_array_foreach(out, i, v)
		    printf("%s\n", json_string_value(v));
	} else {
		/* One address a line: what a client connects to. */
		json_array_foreach(json_object_get(out, "address"), i, v)
		    printf("%s\n", json_string_value(v));
		if (!json_array_size(json_object_get(out, "address")))
			printf("%s: no instance has this port yet\n", name);
	}
out:
	json_decref(out);
	free(svc);
	return rc;
}

static int cmd_config_list(int argc, char **argv)
{
	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else
			return hf_cli_usage("config", "list");
	}
	return show_get("/configurations", true);
}

static int cmd_config_show(int argc, char **argv)
{
	char *esc, *rest;
	int rc;

	if (argc < 2)
		return hf_cli_usage("config", "show");
	esc = hf_url_escape(argv[1]);
	rest = hf_xasprintf("/configurations/%s", esc);
	rc = show_get(rest, false);
	free(esc);
	free(rest);
	return rc;
}

static int cmd_config_target(int argc, char **argv)
{
	bool id_only = argc > 1 && strcmp(argv[1], "--id") == 0;

	return show_get(id_only ? "/configurations/targetId"
				: "/configurations/target",
			false);
}

/* Parses server-sent events out of the byte stream, one event a call. */
struct sse {
	struct hf_buf pending;
	int printed;
};

static void print_event(const char *data)
{
	json_error_t jerr;
	json_t *e = json_loads(data, 0, &jerr);
	const char *before, *after, *why, *svc;

	if (!e)
		return;
	if (g.json) {
		char *s = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);

		puts(s ? s : "{}");
		free(s);
		json_decref(e);
		return;
	}
	before = json_string_value(json_object_get(e, "before"));
	after = json_string_value(json_object_get(e, "after"));
	why = json_string_value(json_object_get(e, "why"));
	svc = json_string_value(json_object_get(e, "service"));
	/* Without a change of state, the reason is the whole line. */
	printf("%s %-6lld %-10s %-12s %-6s %s: %s%s%s%s%s%s\n",
	       json_string_value(json_object_get(e, "time")),
	       (long long)json_integer_value(json_object_get(e, "id")),
	       json_string_value(json_object_get(e, "who")), svc ? svc : "-",
	       json_string_value(json_object_get(e, "kind")),
	       json_string_value(json_object_get(e, "object")),
	       before ? before : "", before ? " -> " : "", after ? after : "",
	       why && (before || after) ? " (" : "", why ? why : "",
	       why && (before || after) ? ")" : "");
	json_decref(e);
}

static int on_sse(void *arg, const char *data, size_t len)
{
	struct sse *st = arg;
	char *end;

	hf_buf_add(&st->pending, data, len);
	while ((end = strstr(st->pending.data ? st->pending.data : "",
			     "\n\n")) != NULL) {
		size_t n = (size_t)(end - st->pending.data) + 2;
		char *ev = hf_xstrndup(st->pending.data, n);
		char *line, *save = NULL;

		for (line = strtok_r(ev, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			if (strncmp(line, "data: ", 6) == 0) {
				print_event(line + 6);
				st->printed++;
			}
		free(ev);
		memmove(st->pending.data, st->pending.data + n,
			st->pending.len - n + 1);
		st->pending.len -= n;
	}
	fflush(stdout);
	return 0;
}

/*
 * The exit code of a streamed request (hf_httpc_stream): the server could
 * not be reached, or answered an error (its JSON body), or 0. Frees err
 * and err_body.
 */
static int stream_result(int rc, long status, char *err, char *err_body)
{
	if (rc) {
		print_unreachable(rc, err);
		rc = HF_EXIT_SERVER;
	} else if (status != 200) {
		json_error_t jerr;
		json_t *b = json_loads(err_body ? err_body : "", 0, &jerr);

		rc = api_error(status, b);
		json_decref(b);
	}
	free(err);
	free(err_body);
	return rc;
}

static int cmd_events(int argc, char **argv)
{
	bool follow = false;
	const char *since = NULL, *tail = NULL;
	struct sse st = {HF_BUF_INIT, 0};
	struct hf_buf path = HF_BUF_INIT;
	char *err = NULL, *err_body = NULL;
	long status = 0;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "-f") == 0 || strcmp(argv[k], "--follow") == 0)
			follow = true;
		else if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (strcmp(argv[k], "--since") == 0 && k + 1 < argc)
			since = argv[++k];
		else if ((strcmp(argv[k], "--tail") == 0 ||
			  strcmp(argv[k], "-n") == 0) &&
			 k + 1 < argc)
			tail = argv[++k];
		else
			return hf_cli_usage("events", NULL);
	}
	if (tail && (!*tail || strspn(tail, "0123456789") != strlen(tail)))
		return hf_cli_usage("events", NULL);
	hf_buf_addf(&path, "/v1/events?follow=%s", follow ? "true" : "false");
	if (since)
		hf_buf_addf(&path, "&since=%s", since);
	if (tail)
		hf_buf_addf(&path, "&tail=%s", tail);
	if (g.service) {
		char *e = hf_url_escape(g.service);

		hf_buf_addf(&path, "&service=%s", e);
		free(e);
	}
	note_request("GET", hf_buf_str(&path));
	rc = hf_httpc_stream(addr(), hf_buf_str(&path), token(), NULL, 0, on_sse,
			     &st, &status, &err_body, &err);
	rc = stream_result(rc, status, err, err_body);
	hf_buf_release(&st.pending);
	hf_buf_release(&path);
	return rc;
}

static int print_chunk(void *arg, const char *data, size_t len)
{
	(void)arg;
	if (len) {
		fwrite(data, 1, len, stdout);
		fflush(stdout);
	}
	return 0;
}

static int cmd_task_logs(int argc, char **argv)
{
	const char *task = NULL, *tail = "100";
	bool follow = false, err_stream = false;
	char *esc, *path, *err = NULL, *err_body = NULL;
	long status = 0;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "-f") == 0 || strcmp(argv[k], "--follow") == 0)
			follow = true;
		else if (strcmp(argv[k], "--stderr") == 0)
			err_stream = true;
		else if (strcmp(argv[k], "--tail") == 0 && k + 1 < argc)
			tail = argv[++k];
		else if (!task && argv[k][0] != '-')
			task = argv[k];
		else
			return hf_cli_usage("task", "logs");
	}
	if (!task || strspn(tail, "0123456789") != strlen(tail))
		return hf_cli_usage("task", "logs");
	esc = hf_url_escape(task);
	{
		char *se = g.service ? hf_url_escape(g.service) : NULL;

		path = hf_xasprintf("/v1/tasks/%s/logs?stream=%s&tail=%s&"
				    "follow=%s%s%s",
				    esc, err_stream ? "stderr" : "stdout", tail,
				    follow ? "true" : "false",
				    se ? "&service=" : "", se ? se : "");
		free(se);
	}
	note_request("GET", path);
	rc = hf_httpc_stream(addr(), path, token(), NULL, 0, print_chunk, NULL,
			     &status, &err_body, &err);
	rc = stream_result(rc, status, err, err_body);
	free(esc);
	free(path);
	return rc;
}

static int cmd_task_exec(int argc, char **argv)
{
	const char *task = NULL;
	struct hf_buf cmd = HF_BUF_INIT;
	char *esc, *path;
	json_t *body, *out = NULL;
	long status;
	int k, rc;

	for (k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--") == 0) {
			k++;
			break;
		}
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (!task)
			task = argv[k];
		else
			break;
	}
	if (!task || k >= argc)
		return hf_cli_usage("task", "exec");
	/* One shell command line, quoting each argument. */
	for (; k < argc; k++) {
		hf_buf_adds(&cmd, cmd.len ? " '" : "'");
		for (const char *c = argv[k]; *c; c++) {
			if (*c == '\'')
				hf_buf_adds(&cmd, "'\\''");
			else
				hf_buf_addc(&cmd, *c);
		}
		hf_buf_addc(&cmd, '\'');
	}
	body = json_pack("{s:s}", "cmd", hf_buf_str(&cmd));
	esc = hf_url_escape(task);
	{
		char *se = g.service ? hf_url_escape(g.service) : NULL;

		path = hf_xasprintf("/v1/tasks/%s/exec%s%s", esc,
				    se ? "?service=" : "", se ? se : "");
		free(se);
	}
	rc = api("POST", path, body, &status, &out);
	if (!rc) {
		if (status != 200) {
			rc = api_error(status, out);
		} else if (g.json) {
			print_json(out);
		} else {
			const char *o = json_string_value(json_object_get(out, "stdout"));
			const char *e = json_string_value(json_object_get(out, "stderr"));

			if (o)
				fputs(o, stdout);
			if (e)
				fputs(e, stderr);
			rc = (int)json_integer_value(json_object_get(out, "exit_code"));
			if (rc < 0 || rc > 255)
				rc = HF_EXIT_FAIL;
		}
	}
	json_decref(body);
	json_decref(out);
	hf_buf_release(&cmd);
	free(esc);
	free(path);
	return rc;
}

/* ------------------------------------------------------------------ */
/* volume                                                               */

/*
 * The STATUS of an external volume's row (GET /v1/volumes: type
 * EXTERNAL): its status with size, repl, epoch and each replica's node
 * and state, e.g. "external, in use (attached), 1024 MiB, repl 1, epoch
 * 2, replica n1 in_sync". NULL for other rows.
 */
static char *external_status(const json_t *v)
{
	const char *type = jstr(v, "type");
	struct hf_buf b = HF_BUF_INIT;
	const json_t *r;
	size_t i;

	if (!type || strcmp(type, "EXTERNAL") != 0)
		return NULL;
	hf_buf_addf(&b, "external, %s, %lld MiB, repl %lld, epoch %lld",
		    jstr(v, "status") ? jstr(v, "status") : "?",
		    (long long)(jint(v, "size") >> 20), (long long)jint(v, "repl"),
		    (long long)jint(v, "epoch"));
	json_array_foreach(json_object_get(v, "replicas"), i, r)
		hf_buf_addf(&b, ", replica %s %s",
			    jstr(r, "node") ? jstr(r, "node") : "?",
			    jstr(r, "state") ? jstr(r, "state") : "?");
	return hf_buf_detach(&b);
}

static int cmd_volume_list(int argc, char **argv)
{
	char *path;
	long status;
	json_t *out, *v;
	size_t i;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else
			return hf_cli_usage("volume", "list");
	}
	if (g.service) {
		char *e = hf_url_escape(g.service);

		path = hf_xasprintf("/v1/volumes?service=%s", e);
		free(e);
	} else {
		path = hf_xstrdup("/v1/volumes");
	}
	rc = api("GET", path, NULL, &status, &out);
	free(path);
	if (rc)
		return rc;
	if (status != 200) {
		rc = api_error(status, out);
	} else if (g.json) {
		print_json(out);
	} else if (!json_array_size(out)) {
		printf("no volumes%s%s\n", g.service ? " of " : "",
		       g.service ? g.service : "");
	} else {
		struct table t = {0};

		static const char *const head[] = {"VOLUME", "NODE", "STATUS",
						   "SINCE"};

		table_row(&t, head, HF_ARRAY_LEN(head), NULL);
		json_array_foreach(out, i, v)
		{
			char when[40];
			json_int_t since = jint(v, "since");
			char *ext = external_status(v);
			const char *node = jstr(v, "node");

			const char *row[] = {
			    jstr(v, "key"), node ? node : "-",
			    ext ? ext : jstr(v, "status"),
			    since ? iso_time(since, when, sizeof(when)) : "-"};

			table_row(&t, row, HF_ARRAY_LEN(row), jstr(v, "why"));
			free(ext);
		}
		table_print(&t);
		table_release(&t);
	}
	json_decref(out);
	return rc;
}

/* Whether every replica of the volume (out) that is not going is in sync. */
static bool xvol_settled(const json_t *out)
{
	const json_t *r;
	size_t i;

	json_array_foreach(json_object_get(out, "replicas"), i, r) {
		const char *st = jstr(r, "state");

		if (st && strcmp(st, "in_sync") != 0 && strcmp(st, "deleting") != 0)
			return false;
	}
	return jint(out, "in_sync") >= jint(out, "repl");
}

/*
 * --wait: draws the replicas' progress (one line per change) until every
 * one is in sync, or the timeout. Returns 0 or an exit code.
 */
static int xvol_wait(const char *path, double timeout, int64_t start)
{
	char *last = NULL;
	long status;
	json_t *out;
	int rc;

	for (;;) {
		struct hf_buf b = HF_BUF_INIT;
		const json_t *r;
		size_t i;
		bool done;

		rc = api("GET", path, NULL, &status, &out);
		if (rc)
			break;
		if (status != 200) {
			rc = api_error(status, out);
			json_decref(out);
			break;
		}
		json_array_foreach(json_object_get(out, "replicas"), i, r) {
			hf_buf_addf(&b, "%s%s %s", i ? ", " : "", jstr(r, "node"),
				    jstr(r, "state"));
			if (json_is_integer(json_object_get(r, "percent")))
				hf_buf_addf(&b, " %lld%%",
					    (long long)jint(r, "percent"));
		}
		if (!last || strcmp(last, hf_buf_str(&b)) != 0) {
			fprintf(stderr, "%s: %s\n", jstr(out, "name"),
				hf_buf_str(&b));
			free(last);
			last = hf_buf_detach(&b);
		}
		hf_buf_release(&b);
		done = xvol_settled(out);
		json_decref(out);
		if (done)
			break;
		if (timeout > 0 && elapsed_s(start) > timeout) {
			fprintf(stderr, "holdfast: replicas not all in sync after "
					"%.0f s\n",
				timeout);
			rc = HF_EXIT_FAIL;
			break;
		}
		usleep(500 * 1000);
	}
	free(last);
	return rc;
}

/* `volume show NAME`: one replicated volume and its replicas. */
static int cmd_volume_show(int argc, char **argv)
{
	const char *name = NULL;
	bool wait = false;
	double timeout = 0;
	int64_t start = hf_mono_ms();
	char *path, *e;
	long status;
	json_t *out, *r;
	size_t i;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (strcmp(argv[k], "--wait") == 0)
			wait = true;
		else if (strcmp(argv[k], "--timeout") == 0 && k + 1 < argc)
			timeout = atof(argv[++k]);
		else if (!name && argv[k][0] != '-')
			name = argv[k];
		else
			return hf_cli_usage("volume", "show");
	}
	if (!name || !*name)
		return hf_cli_usage("volume", "show");
	e = hf_url_escape(name);
	path = hf_xasprintf("/v1/external-volumes/%s", e);
	free(e);
	rc = wait ? xvol_wait(path, timeout, start) : 0;
	if (!rc)
		rc = api("GET", path, NULL, &status, &out);
	free(path);
	if (rc)
		return rc;
	if (status != 200) {
		rc = api_error(status, out);
	} else if (g.json) {
		print_json(out);
	} else {
		struct table t = {0};
		static const char *const head[] = {"REPLICA", "NODE", "STATE",
						   "SINCE"};
		const char *att = jstr(out, "attached");
		char when[40];

		printf("volume %s (id %s)\n", jstr(out, "name"), jstr(out, "id"));
		printf("  owner     %s%s%s (%s)\n", jstr(out, "service"),
		       jstr(out, "instance") ? "/" : "",
		       jstr(out, "instance") ? jstr(out, "instance") : "",
		       jstr(out, "state"));
		printf("  size      %lld MiB, %s%s\n",
		       (long long)(jint(out, "size") >> 20),
		       json_is_true(json_object_get(out, "formatted"))
			   ? "formatted"
			   : "not formatted yet",
		       json_is_true(json_object_get(out, "secure"))
			   ? ", encrypted (AES-256-XTS)"
			   : "");
		{
			json_t *sn = json_object_get(out, "snapshots");
			json_t *lb = json_object_get(out, "last_backup");
			size_t nready = 0, k;
			json_t *x;

			json_array_foreach(sn, k, x)
				nready += !strcmp(jstr(x, "state"), "ready");
			if (json_array_size(sn))
				printf("  snapshots %zu (%zu ready; holdfast "
				       "volume snapshots %s)\n",
				       json_array_size(sn), nready,
				       jstr(out, "name"));
			if (json_is_string(json_object_get(out, "restore")))
				printf("  restore   to a snapshot, at its next "
				       "attach\n");
			if (json_is_string(json_object_get(lb, "id")))
				printf("  backup    %s, to %s\n", jstr(lb, "id"),
				       jstr(lb, "to"));
		}
		printf("  replicas  %lld wanted, %lld in sync, writes need "
		       "%lld%s\n",
		       (long long)jint(out, "repl"), (long long)jint(out, "in_sync"),
		       (long long)jint(out, "min_sync"),
		       json_is_true(json_object_get(out, "degraded"))
			   ? " (degraded)"
			   : "");
		printf("  attached  %s, epoch %lld\n", att ? att : "nowhere",
		       (long long)jint(out, "epoch"));
		if (json_is_object(json_object_get(out, "io"))) {
			const json_t *io = json_object_get(out, "io");
			char *w = hf_bytes_human(jint(io, "written")),
			     *rp = hf_bytes_human(jint(io, "replicated")),
			     *rs = hf_bytes_human(jint(io, "resync_sent"));

			printf("  io        %s written, %s sent to remote "
			       "replicas, %s copied to resyncing ones\n",
			       w, rp, rs);
			if (jstr(io, "note"))
				printf("  note      %s\n", jstr(io, "note"));
			free(w);
			free(rp);
			free(rs);
		}
		table_row(&t, head, HF_ARRAY_LEN(head), NULL);
		json_array_foreach(json_object_get(out, "replicas"), i, r)
		{
			json_int_t since = jint(r, "since");
			char *st = NULL;

			if (json_is_integer(json_object_get(r, "percent"))) {
				st = hf_xasprintf("%s %lld%%", jstr(r, "state"),
						  (long long)jint(r, "percent"));
			} else if (jint(r, "missed") > 0) {
				/* What a resync will send it. */
				char *m = hf_bytes_human(jint(r, "missed"));

				st = hf_xasprintf("%s, missed %s",
						  jstr(r, "state"), m);
				free(m);
			}
			{
				const char *row[] = {
				    jstr(r, "id"), jstr(r, "node"),
				    st ? st : jstr(r, "state"),
				    since ? iso_time(since, when, sizeof(when))
					  : "-"};

				table_row(&t, row, HF_ARRAY_LEN(row),
					  jstr(r, "why"));
			}
			free(st);
		}
		table_print(&t);
		table_release(&t);
	}
	json_decref(out);
	return rc;
}

static int cmd_volume_delete(int argc, char **argv)
{
	const char *what = NULL;
	bool yes = false, wait = false;
	double timeout = 0;
	int64_t start = hf_mono_ms();
	char *svc, *inst, *path;
	long status;
	json_t *out = NULL, *v;
	size_t i;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--yes") == 0 || strcmp(argv[k], "-y") == 0)
			yes = true;
		else if (strcmp(argv[k], "--wait") == 0)
			wait = true;
		else if (strcmp(argv[k], "--timeout") == 0 && k + 1 < argc)
			timeout = atof(argv[++k]);
		else if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (!what && argv[k][0] != '-')
			what = argv[k];
		else
			return hf_cli_usage("volume", "delete");
	}
	if (!what || !*what || *what == '/')
		return hf_cli_usage("volume", "delete");
	if (!yes) {
		char answer[16] = "";

		if (!isatty(STDIN_FILENO)) {
			fprintf(stderr, "holdfast: deleting %s's kept volumes "
					"discards their data; confirm with "
					"--yes\n",
				what);
			return HF_EXIT_USAGE;
		}
		fprintf(stderr, "Deleting the kept volumes of %s discards their "
				"data. Type 'yes' to go on: ",
			what);
		if (!fgets(answer, sizeof(answer), stdin) ||
		    strncmp(answer, "yes", 3) != 0) {
			fprintf(stderr, "holdfast: not deleted\n");
			return HF_EXIT_FAIL;
		}
	}
	inst = strchr(what, '/');
	svc = hf_url_escape(what);
	/* SERVICE or SERVICE/INSTANCE: the slash stays a path separator. */
	if (inst) {
		char *s = hf_xstrndup(what, (size_t)(inst - what));
		char *e1 = hf_url_escape(s), *e2 = hf_url_escape(inst + 1);

		free(svc);
		svc = hf_xasprintf("%s/%s", e1, e2);
		free(s);
		free(e1);
		free(e2);
	}
	path = hf_xasprintf("/v1/volumes/%s", svc);
	free(svc);
	rc = api("DELETE", path, NULL, &status, &out);
	free(path);
	if ((rc = answered(rc, status, 202, out)))
		goto out;
	if (g.json) {
		print_json(out);
	} else {
		json_array_foreach(json_object_get(out, "deleting"), i, v)
		    printf("deleting %s on node %s\n", jstr(v, "key"),
			   jstr(v, "node"));
	}
	if (wait) {
		char *s = inst ? hf_xstrndup(what, (size_t)(inst - what))
			       : hf_xstrdup(what);
		bool xvol = false;

		json_array_foreach(json_object_get(out, "deleting"), i, v)
		    xvol = xvol || (!inst && strcmp(jstr(v, "key"), what) == 0);
		rc = xvol ? wait_xvol_gone(what, timeout, start)
			  : wait_volumes_gone(s, inst ? inst + 1 : NULL,
					      timeout, start);
		free(s);
		if (!rc && !g.json)
			printf("deleted\n");
	}
out:
	json_decref(out);
	return rc;
}

static int cmd_volume_resize(int argc, char **argv)
{
	const char *name = NULL, *size = NULL;
	char *esc, *path;
	long status;
	json_t *out = NULL, *body;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (!name && argv[k][0] != '-')
			name = argv[k];
		else if (!size && argv[k][0] != '-')
			size = argv[k];
		else
			return hf_cli_usage("volume", "resize");
	}
	if (!name || !size || !*name || !*size)
		return hf_cli_usage("volume", "resize");
	esc = hf_url_escape(name);
	path = hf_xasprintf("/v1/external-volumes/%s/resize", esc);
	body = json_pack("{s:s}", "size", size);
	rc = api("POST", path, body, &status, &out);
	json_decref(body);
	free(path);
	free(esc);
	if ((rc = answered(rc, status, 200, out)))
		goto out;
	if (g.json)
		print_json(out);
	else if (json_is_true(json_object_get(out, "changed")))
		printf("volume %s grows to %lld MiB (see 'holdfast volume show "
		       "%s')\n",
		       name, (long long)(jint(out, "size") >> 20), name);
	else
		printf("volume %s is %lld MiB already\n", name,
		       (long long)(jint(out, "size") >> 20));
out:
	json_decref(out);
	return rc;
}

/* The snapshot named snap of volume name (a new reference), or NULL. */
static json_t *get_snapshot(const char *name, const char *snap, long *status)
{
	char *esc = hf_url_escape(name);
	char *path = hf_xasprintf("/v1/external-volumes/%s/snapshots", esc);
	json_t *out = NULL, *found = NULL, *e;
	size_t i;

	free(esc);
	if (api("GET", path, NULL, status, &out) == 0 && *status == 200)
		json_array_foreach(json_object_get(out, "snapshots"), i, e)
			if (strcmp(jstr(e, "name"), snap) == 0)
				found = json_incref(e);
	free(path);
	json_decref(out);
	return found;
}

/*
 * Waits until snapshot snap of volume name is no longer in state `from`
 * (NULL: until it is gone). Returns 0 when it ended well (ready, or
 * gone), else HF_EXIT_FAIL with a line on stderr.
 */
static int wait_snapshot(const char *name, const char *snap, const char *from,
			 double timeout, int64_t start)
{
	for (;;) {
		long status = 0;
		json_t *s = get_snapshot(name, snap, &status);
		const char *st = s ? jstr(s, "state") : NULL;
		int rc = -1;

		if (status != 200)
			rc = HF_EXIT_FAIL;
		else if (!s)
			rc = from ? HF_EXIT_FAIL : 0;
		else if (from && strcmp(st, from) != 0)
			rc = strcmp(st, "ready") == 0 ? 0 : HF_EXIT_FAIL;
		if (rc > 0)
			fprintf(stderr, "holdfast: snapshot %s of %s is %s%s%s\n",
				snap, name, st ? st : "gone",
				s && json_is_string(json_object_get(s, "why"))
				    ? ": "
				    : "",
				s && json_is_string(json_object_get(s, "why"))
				    ? jstr(s, "why")
				    : "");
		json_decref(s);
		if (rc >= 0)
			return rc;
		if (timeout > 0 && elapsed_s(start) > timeout) {
			fprintf(stderr,
				"holdfast: snapshot %s of %s still %s after "
				"%.0f s (see 'holdfast volume snapshots %s')\n",
				snap, name, from ? from : "there", timeout,
				name);
			return HF_EXIT_FAIL;
		}
		usleep(200 * 1000);
	}
}

static int cmd_volume_snapshot(int argc, char **argv)
{
	const char *name = NULL, *snap = NULL;
	bool wait = false;
	double timeout = 0;
	int64_t start = hf_mono_ms();
	char *esc, *path;
	long status;
	json_t *out = NULL, *body;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (strcmp(argv[k], "--wait") == 0)
			wait = true;
		else if (strcmp(argv[k], "--timeout") == 0 && k + 1 < argc)
			timeout = atof(argv[++k]);
		else if (strcmp(argv[k], "--name") == 0 && k + 1 < argc)
			snap = argv[++k];
		else if (!name && argv[k][0] != '-')
			name = argv[k];
		else
			return hf_cli_usage("volume", "snapshot");
	}
	if (!name || !*name)
		return hf_cli_usage("volume", "snapshot");
	esc = hf_url_escape(name);
	path = hf_xasprintf("/v1/external-volumes/%s/snapshots", esc);
	body = snap ? json_pack("{s:s}", "name", snap) : json_object();
	rc = api("POST", path, body, &status, &out);
	json_decref(body);
	free(path);
	free(esc);
	if ((rc = answered(rc, status, 202, out)))
		goto out;
	snap = jstr(json_object_get(out, "snapshot"), "name");
	if (!g.json)
		printf("snapshot %s of volume %s: taking\n", snap, name);
	if (wait) {
		char *keep = hf_xstrdup(snap);

		rc = wait_snapshot(name, keep, "taking", timeout, start);
		if (!rc && !g.json)
			printf("snapshot %s of volume %s: ready\n", keep, name);
		if (g.json) {
			long st;
			json_t *s = get_snapshot(name, keep, &st);

			json_object_set_new(out, "snapshot",
					    s ? s : json_null());
		}
		free(keep);
	}
	if (g.json)
		print_json(out);
out:
	json_decref(out);
	return rc;
}

static int cmd_volume_snapshots(int argc, char **argv)
{
	const char *name = NULL;
	char *esc, *path;
	long status;
	json_t *out = NULL, *e;
	size_t i;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (!name && argv[k][0] != '-')
			name = argv[k];
		else
			return hf_cli_usage("volume", "snapshots");
	}
	if (!name || !*name)
		return hf_cli_usage("volume", "snapshots");
	esc = hf_url_escape(name);
	path = hf_xasprintf("/v1/external-volumes/%s/snapshots", esc);
	rc = api("GET", path, NULL, &status, &out);
	free(path);
	free(esc);
	if ((rc = answered(rc, status, 200, out)))
		goto out;
	if (g.json) {
		print_json(out);
	} else {
		struct table t = {0};
		const char *head[] = {"NAME", "STATE", "TAKEN", "SIZE",
				      "REPLICAS"};

		table_row(&t, head, HF_ARRAY_LEN(head), NULL);
		json_array_foreach(json_object_get(out, "snapshots"), i, e) {
			char when[32], size[32], reps[16];
			const char *row[5];

			snprintf(size, sizeof(size), "%lld MiB",
				 (long long)(jint(e, "size") >> 20));
			snprintf(reps, sizeof(reps), "%zu",
				 json_array_size(json_object_get(e, "replicas")));
			row[0] = jstr(e, "name");
			row[1] = jstr(e, "state");
			row[2] = jint(e, "taken")
				     ? iso_time(jint(e, "taken"), when,
						sizeof(when))
				     : "-";
			row[3] = size;
			row[4] = reps;
			table_row(&t, row, HF_ARRAY_LEN(row),
				  json_is_string(json_object_get(e, "why"))
				      ? jstr(e, "why")
				      : NULL);
		}
		if (json_array_size(json_object_get(out, "snapshots")))
			table_print(&t);
		else
			printf("volume %s has no snapshots\n", name);
		table_release(&t);
	}
out:
	json_decref(out);
	return rc;
}

static int cmd_volume_snapshot_delete(int argc, char **argv)
{
	const char *name = NULL, *snap = NULL;
	bool wait = false;
	double timeout = 0;
	int64_t start = hf_mono_ms();
	char *e1, *e2, *path;
	long status;
	json_t *out = NULL;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (strcmp(argv[k], "--wait") == 0)
			wait = true;
		else if (strcmp(argv[k], "--timeout") == 0 && k + 1 < argc)
			timeout = atof(argv[++k]);
		else if (!name && argv[k][0] != '-')
			name = argv[k];
		else if (!snap && argv[k][0] != '-')
			snap = argv[k];
		else
			return hf_cli_usage("volume", "snapshot-delete");
	}
	if (!name || !snap || !*name || !*snap)
		return hf_cli_usage("volume", "snapshot-delete");
	e1 = hf_url_escape(name);
	e2 = hf_url_escape(snap);
	path = hf_xasprintf("/v1/external-volumes/%s/snapshots/%s", e1, e2);
	rc = api("DELETE", path, NULL, &status, &out);
	free(path);
	free(e1);
	free(e2);
	if ((rc = answered(rc, status, 202, out)))
		goto out;
	if (g.json)
		print_json(out);
	else
		printf("snapshot %s of volume %s: deleting\n", snap, name);
	if (wait) {
		rc = wait_snapshot(name, snap, NULL, timeout, start);
		if (!rc && !g.json)
			printf("snapshot %s of volume %s: deleted\n", snap,
			       name);
	}
out:
	json_decref(out);
	return rc;
}

/*
 * Waits until every replica of the volume at path (GET) is made (none
 * is marked "clone"), drawing how far the one being made is. Returns 0
 * with the volume's last state in *last, or an exit code.
 */
static int wait_made(const char *path, const char *name, double timeout,
		     int64_t start, json_t **last)
{
	long status;
	bool drawn = false;
	int rc = 0;

	*last = NULL;
	for (;;) {
		json_t *v = NULL, *r, *made = NULL;
		size_t i, pending = 0;

		rc = api("GET", path, NULL, &status, &v);
		if (rc || status != 200) {
			json_decref(v);
			rc = rc ? rc : HF_EXIT_FAIL;
			break;
		}
		json_array_foreach(json_object_get(v, "replicas"), i, r) {
			pending += json_is_string(json_object_get(r, "clone"));
			if (json_is_object(json_object_get(r, "made")))
				made = json_object_get(r, "made");
		}
		if (!g.json && made && jint(made, "total") > 0) {
			fprintf(stderr, "\rvolume %s: %lld of %lld MiB made", name,
				(long long)(jint(made, "done") >> 20),
				(long long)(jint(made, "total") >> 20));
			drawn = true;
		}
		if (!pending) {
			if (drawn)
				fprintf(stderr, "\n");
			if (!g.json)
				printf("volume %s: ready\n", name);
			*last = v;
			break;
		}
		json_decref(v);
		if (timeout > 0 && elapsed_s(start) > timeout) {
			fprintf(stderr, "%sholdfast: volume %s not made yet after "
					"%.0f s (see 'holdfast volume show %s')\n",
				drawn ? "\n" : "", name, timeout, name);
			rc = HF_EXIT_FAIL;
			break;
		}
		usleep(300 * 1000);
	}
	return rc;
}

static int cmd_volume_clone(int argc, char **argv)
{
	const char *name = NULL, *snap = NULL, *new_name = NULL, *svc = NULL;
	bool wait = false;
	double timeout = 0;
	int64_t start = hf_mono_ms();
	char *e1, *e2, *path;
	long status;
	json_t *out = NULL, *body;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (strcmp(argv[k], "--wait") == 0)
			wait = true;
		else if (strcmp(argv[k], "--timeout") == 0 && k + 1 < argc)
			timeout = atof(argv[++k]);
		else if (strcmp(argv[k], "--for-service") == 0 && k + 1 < argc)
			svc = argv[++k];
		else if (!name && argv[k][0] != '-')
			name = argv[k];
		else if (!snap && argv[k][0] != '-')
			snap = argv[k];
		else if (!new_name && argv[k][0] != '-')
			new_name = argv[k];
		else
			return hf_cli_usage("volume", "clone");
	}
	if (!name || !snap || !new_name)
		return hf_cli_usage("volume", "clone");
	e1 = hf_url_escape(name);
	e2 = hf_url_escape(snap);
	path = hf_xasprintf("/v1/external-volumes/%s/snapshots/%s/clone", e1,
			    e2);
	body = json_pack("{s:s}", "name", new_name);
	if (svc)
		json_object_set_new(body, "service", json_string(svc));
	rc = api("POST", path, body, &status, &out);
	json_decref(body);
	free(path);
	free(e1);
	free(e2);
	if ((rc = answered(rc, status, 202, out)))
		goto out;
	if (!g.json)
		printf("volume %s: cloned from snapshot %s of %s, for service "
		       "%s (its replicas are being made)\n",
		       new_name, snap, name, jstr(out, "service"));
	e1 = hf_url_escape(new_name);
	path = hf_xasprintf("/v1/external-volumes/%s", e1);
	free(e1);
	if (wait) {
		json_t *v = NULL;

		rc = wait_made(path, new_name, timeout, start, &v);
		if (v) {
			json_decref(out);
			out = v;
		}
	}
	free(path);
	if (g.json)
		print_json(out);
out:
	json_decref(out);
	return rc;
}

/* volume restore NEWNAME --from ... --backup ... --credential ... */
static int restore_from_backup(const char *name, const char *from,
			       const char *backup, const char *cred,
			       const char *src, const char *svc, int repl,
			       bool wait, double timeout, int64_t start)
{
	char *esc = hf_url_escape(name), *path;
	long status;
	json_t *out = NULL, *body;
	int rc;

	path = hf_xasprintf("/v1/external-volumes/%s/from-backup", esc);
	body = json_pack("{s:s, s:s?, s:s, s:s, s:i}", "from", from, "backup",
			 backup, "credential", cred, "service", svc, "repl",
			 repl);
	if (src)
		json_object_set_new(body, "volume", json_string(src));
	rc = api("POST", path, body, &status, &out);
	json_decref(body);
	free(path);
	if ((rc = answered(rc, status, 202, out)))
		goto out;
	if (!g.json)
		printf("volume %s: being made from backup %s (%lld MiB), for "
		       "service %s\n",
		       name, jstr(out, "backup"),
		       (long long)(jint(out, "size") >> 20), svc);
	path = hf_xasprintf("/v1/external-volumes/%s", esc);
	if (wait) {
		json_t *v = NULL;

		rc = wait_made(path, name, timeout, start, &v);
		json_decref(v);
	}
	free(path);
	if (g.json)
		print_json(out);
out:
	free(esc);
	json_decref(out);
	return rc;
}

static int cmd_volume_restore(int argc, char **argv)
{
	const char *name = NULL, *snap = NULL;
	const char *from = NULL, *backup = NULL, *cred = NULL, *src = NULL;
	const char *svc = NULL;
	int repl = 1;
	bool wait = false;
	double timeout = 0;
	int64_t start = hf_mono_ms();
	char *esc, *path;
	long status;
	json_t *out = NULL, *body;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (strcmp(argv[k], "--wait") == 0)
			wait = true;
		else if (strcmp(argv[k], "--timeout") == 0 && k + 1 < argc)
			timeout = atof(argv[++k]);
		else if (strcmp(argv[k], "--snapshot") == 0 && k + 1 < argc)
			snap = argv[++k];
		else if (strcmp(argv[k], "--from") == 0 && k + 1 < argc)
			from = argv[++k];
		else if (strcmp(argv[k], "--backup") == 0 && k + 1 < argc)
			backup = argv[++k];
		else if (strcmp(argv[k], "--credential") == 0 && k + 1 < argc)
			cred = argv[++k];
		else if (strcmp(argv[k], "--volume") == 0 && k + 1 < argc)
			src = argv[++k];
		else if (strcmp(argv[k], "--for-service") == 0 && k + 1 < argc)
			svc = argv[++k];
		else if (strcmp(argv[k], "--repl") == 0 && k + 1 < argc)
			repl = atoi(argv[++k]);
		else if (!name && argv[k][0] != '-')
			name = argv[k];
		else
			return hf_cli_usage("volume", "restore");
	}
	if (name && from && cred && svc && !snap)
		return restore_from_backup(name, from, backup, cred, src, svc,
					   repl, wait, timeout, start);
	if (!name || !snap || !*name || !*snap || from)
		return hf_cli_usage("volume", "restore");
	esc = hf_url_escape(name);
	path = hf_xasprintf("/v1/external-volumes/%s/restore", esc);
	body = json_pack("{s:s}", "snapshot", snap);
	rc = api("POST", path, body, &status, &out);
	json_decref(body);
	if ((rc = answered(rc, status, 202, out)))
		goto out;
	if (g.json)
		print_json(out);
	else
		printf("volume %s: restoring to snapshot %s (its pod restarts "
		       "on it)\n",
		       name, snap);
	free(path);
	path = hf_xasprintf("/v1/external-volumes/%s", esc);
	while (wait) {
		json_t *v = NULL;

		rc = api("GET", path, NULL, &status, &v);
		if (!rc && status == 200 &&
		    !json_is_string(json_object_get(v, "restore"))) {
			json_decref(v);
			if (!g.json)
				printf("volume %s: restored to %s\n", name,
				       snap);
			break;
		}
		json_decref(v);
		if (rc || status != 200) {
			rc = rc ? rc : HF_EXIT_FAIL;
			break;
		}
		if (timeout > 0 && elapsed_s(start) > timeout) {
			fprintf(stderr,
				"holdfast: volume %s not restored yet after "
				"%.0f s (is its pod's node up? see 'holdfast "
				"volume show %s' and the events)\n",
				name, timeout, name);
			rc = HF_EXIT_FAIL;
			break;
		}
		usleep(300 * 1000);
	}
out:
	free(path);
	free(esc);
	json_decref(out);
	return rc;
}

/*
 * volume backup NAME --cancel [ID]: the backup under way (ID, or the one
 * the volume's record names) stops.
 */
static int cancel_backup(const char *name, const char *id)
{
	char *esc = hf_url_escape(name), *path, *eid;
	json_t *out = NULL;
	long status;
	int rc;

	if (!id) {
		path = hf_xasprintf("/v1/external-volumes/%s", esc);
		rc = api("GET", path, NULL, &status, &out);
		free(path);
		if ((rc = answered(rc, status, 200, out)))
			goto out;
		id = jstr(json_object_get(out, "backup_job"), "id");
		if (!id) {
			fprintf(stderr, "holdfast: volume %s has no backup under "
					"way\n",
				name);
			rc = HF_EXIT_FAIL;
			goto out;
		}
	}
	eid = hf_url_escape(id);
	path = hf_xasprintf("/v1/external-volumes/%s/backups/%s", esc, eid);
	free(eid);
	{
		json_t *got = NULL;

		rc = api("DELETE", path, NULL, &status, &got);
		free(path);
		json_decref(out);
		out = got;
	}
	if ((rc = answered(rc, status, 200, out)))
		goto out;
	if (g.json)
		print_json(out);
	else
		printf("backup %s of volume %s: cancelled (%s)\n",
		       jstr(out, "backup"), name,
		       json_is_true(json_object_get(out, "stopped"))
			   ? "its process stopped"
			   : "no process ran on its node");
out:
	json_decref(out);
	free(esc);
	return rc;
}

static int cmd_volume_backup(int argc, char **argv)
{
	const char *name = NULL, *to = NULL, *cred = NULL, *cancel_id = NULL;
	bool wait = false, cancel = false;
	double timeout = 0;
	int64_t start = hf_mono_ms();
	char *esc, *path, *id = NULL;
	long status;
	json_t *out = NULL, *body;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (strcmp(argv[k], "--wait") == 0)
			wait = true;
		else if (strcmp(argv[k], "--timeout") == 0 && k + 1 < argc)
			timeout = atof(argv[++k]);
		else if (strcmp(argv[k], "--to") == 0 && k + 1 < argc)
			to = argv[++k];
		else if (strcmp(argv[k], "--credential") == 0 && k + 1 < argc)
			cred = argv[++k];
		else if (strcmp(argv[k], "--cancel") == 0)
			cancel = true;
		else if (!name && argv[k][0] != '-')
			name = argv[k];
		else if (cancel && !cancel_id && argv[k][0] != '-')
			cancel_id = argv[k];
		else
			return hf_cli_usage("volume", "backup");
	}
	if (cancel && name && !to && !cred && !wait)
		return cancel_backup(name, cancel_id);
	if (!name || !to || !cred || cancel)
		return hf_cli_usage("volume", "backup");
	esc = hf_url_escape(name);
	path = hf_xasprintf("/v1/external-volumes/%s/backups", esc);
	body = json_pack("{s:s, s:s}", "to", to, "credential", cred);
	rc = api("POST", path, body, &status, &out);
	json_decref(body);
	if ((rc = answered(rc, status, 202, out)))
		goto out;
	id = hf_xstrdup(jstr(out, "backup"));
	if (!g.json)
		printf("backup %s of volume %s to %s: %s on node %s\n", id,
		       name, to,
		       json_is_string(json_object_get(out, "base"))
			   ? "incremental"
			   : "full",
		       jstr(out, "node"));
	while (wait) {
		json_t *v = NULL, *j, *found = NULL;
		size_t i;
		const char *st;

		rc = api("GET", path, NULL, &status, &v);
		if (rc || status != 200) {
			json_decref(v);
			rc = rc ? rc : HF_EXIT_FAIL;
			break;
		}
		json_array_foreach(json_object_get(v, "jobs"), i, j)
			if (!strcmp(jstr(j, "backup"), id))
				found = j;
		st = found ? jstr(found, "state") : "gone";
		if (!g.json && found && jint(found, "total") > 0)
			fprintf(stderr, "\r%s: %lld of %lld MiB read, %.1f MiB "
					"sent",
				id, (long long)(jint(found, "done") >> 20),
				(long long)(jint(found, "total") >> 20),
				(double)jint(found, "stored") / (1 << 20));
		if (strcmp(st, "done") == 0 || strcmp(st, "failed") == 0 ||
		    strcmp(st, "cancelled") == 0 || strcmp(st, "gone") == 0) {
			if (!g.json)
				fprintf(stderr, "\n");
			if (strcmp(st, "done") != 0) {
				fprintf(stderr, "holdfast: backup %s %s%s%s\n",
					id, st,
					found && json_is_string(json_object_get(
						     found, "message"))
					    ? ": "
					    : "",
					found && json_is_string(json_object_get(
						     found, "message"))
					    ? jstr(found, "message")
					    : "");
				rc = HF_EXIT_FAIL;
			} else if (!g.json) {
				printf("backup %s of volume %s: done\n", id,
				       name);
			}
			if (found) {
				json_object_set(out, "result", found);
			}
			json_decref(v);
			break;
		}
		json_decref(v);
		if (timeout > 0 && elapsed_s(start) > timeout) {
			fprintf(stderr, "\nholdfast: backup %s not done after "
					"%.0f s (see 'holdfast volume backups "
					"%s')\n",
				id, timeout, name);
			rc = HF_EXIT_FAIL;
			break;
		}
		usleep(500 * 1000);
	}
	if (g.json)
		print_json(out);
out:
	free(id);
	free(path);
	free(esc);
	json_decref(out);
	return rc;
}

static int cmd_volume_backups(int argc, char **argv)
{
	const char *name = NULL, *from = NULL, *cred = NULL;
	char *esc, *path, *e1 = NULL, *e2 = NULL;
	long status;
	json_t *out = NULL, *e;
	size_t i;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (strcmp(argv[k], "--from") == 0 && k + 1 < argc)
			from = argv[++k];
		else if (strcmp(argv[k], "--credential") == 0 && k + 1 < argc)
			cred = argv[++k];
		else if (!name && argv[k][0] != '-')
			name = argv[k];
		else
			return hf_cli_usage("volume", "backups");
	}
	if (!name || !from != !cred)
		return hf_cli_usage("volume", "backups");
	esc = hf_url_escape(name);
	if (from) {
		e1 = hf_url_escape(cred);
		e2 = hf_url_escape(from);
		path = hf_xasprintf("/v1/external-volumes/%s/backups?"
				    "credential=%s&from=%s",
				    esc, e1, e2);
	} else {
		path = hf_xasprintf("/v1/external-volumes/%s/backups", esc);
	}
	rc = api("GET", path, NULL, &status, &out);
	free(path);
	free(esc);
	free(e1);
	free(e2);
	if ((rc = answered(rc, status, 200, out)))
		goto out;
	if (g.json) {
		print_json(out);
		goto out;
	}
	if (json_is_string(json_object_get(json_object_get(out, "last_backup"),
					   "id")))
		printf("last backup: %s to %s\n",
		       jstr(json_object_get(out, "last_backup"), "id"),
		       jstr(json_object_get(out, "last_backup"), "to"));
	if (json_is_object(json_object_get(out, "schedule"))) {
		json_t *sc = json_object_get(out, "schedule");
		char when[32];

		char keep[32] = "all";

		if (jint(sc, "keep"))
			snprintf(keep, sizeof(keep), "%lld",
				 (long long)jint(sc, "keep"));
		printf("schedule: every %.0f s to %s, keep %s (%s); next %s\n",
		       json_number_value(json_object_get(sc, "every")),
		       jstr(sc, "to"), keep, jstr(sc, "source"),
		       jint(sc, "next") ? iso_time(jint(sc, "next"), when,
						    sizeof(when))
					: "when attached");
	}
	json_array_foreach(json_object_get(out, "jobs"), i, e)
		printf("backup %s: %s, %lld of %lld MiB\n", jstr(e, "backup"),
		       jstr(e, "state"), (long long)(jint(e, "done") >> 20),
		       (long long)(jint(e, "total") >> 20));
	if (json_is_array(json_object_get(out, "backups"))) {
		struct table t = {0};
		const char *head[] = {"BACKUP", "PARENT", "CREATED", "SIZE",
				      "SENT"};

		table_row(&t, head, HF_ARRAY_LEN(head), NULL);
		json_array_foreach(json_object_get(out, "backups"), i, e) {
			char when[32], size[32], sent[32];
			const char *row[5];

			snprintf(size, sizeof(size), "%lld MiB",
				 (long long)(jint(e, "size") >> 20));
			snprintf(sent, sizeof(sent), "%lld KiB",
				 (long long)(jint(json_object_get(e, "stats"),
						  "stored") >>
					     10));
			row[0] = jstr(e, "backup");
			row[1] = json_is_string(json_object_get(e, "parent"))
				     ? jstr(e, "parent")
				     : "-";
			row[2] = iso_time(jint(e, "created"), when, sizeof(when));
			row[3] = size;
			row[4] = sent;
			table_row(&t, row, HF_ARRAY_LEN(row), NULL);
		}
		table_print(&t);
		table_release(&t);
	}
out:
	json_decref(out);
	return rc;
}

/* "90", "90s", "15m", "6h", "1d": seconds, or -1. */
static double duration_arg(const char *text)
{
	char *end;
	double v = strtod(text, &end);

	if (end == text || v <= 0)
		return -1;
	if (!*end || !strcmp(end, "s"))
		return v;
	if (!strcmp(end, "m"))
		return v * 60;
	if (!strcmp(end, "h"))
		return v * 3600;
	if (!strcmp(end, "d"))
		return v * 86400;
	return -1;
}

static int cmd_volume_backup_schedule(int argc, char **argv)
{
	const char *name = NULL, *to = NULL, *cred = NULL;
	double every = 0;
	long keep = 0;
	bool off = false;
	char *esc, *path, *end;
	long status;
	json_t *out = NULL, *body = NULL, *sc;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (strcmp(argv[k], "--off") == 0)
			off = true;
		else if (strcmp(argv[k], "--to") == 0 && k + 1 < argc)
			to = argv[++k];
		else if (strcmp(argv[k], "--credential") == 0 && k + 1 < argc)
			cred = argv[++k];
		else if (strcmp(argv[k], "--every") == 0 && k + 1 < argc) {
			if ((every = duration_arg(argv[++k])) < 1) {
				fprintf(stderr, "holdfast: --every takes a "
						"duration of at least 1s (90, "
						"90s, 15m, 6h, 1d), not '%s'\n",
					argv[k]);
				return HF_EXIT_USAGE;
			}
		} else if (strcmp(argv[k], "--keep") == 0 && k + 1 < argc) {
			keep = strtol(argv[++k], &end, 10);
			if (*end || end == argv[k] || keep < 0 || keep > 10000) {
				fprintf(stderr, "holdfast: --keep takes 0 (all) "
						"to 10000, not '%s'\n",
					argv[k]);
				return HF_EXIT_USAGE;
			}
		} else if (!name && argv[k][0] != '-')
			name = argv[k];
		else
			return hf_cli_usage("volume", "backup-schedule");
	}
	if (!name || off == !!(to || cred || every > 0) ||
	    (!off && (!to || !cred || every <= 0)))
		return hf_cli_usage("volume", "backup-schedule");
	esc = hf_url_escape(name);
	path = hf_xasprintf("/v1/external-volumes/%s/backup-schedule", esc);
	if (!off)
		body = json_pack("{s:s, s:s, s:f, s:i}", "to", to, "credential",
				 cred, "every", every, "keep", (int)keep);
	rc = api(off ? "DELETE" : "PUT", path, body, &status, &out);
	json_decref(body);
	free(path);
	free(esc);
	if ((rc = answered(rc, status, 200, out)))
		goto out;
	if (g.json) {
		print_json(out);
		goto out;
	}
	sc = json_object_get(out, "schedule");
	if (json_is_object(sc)) {
		char kept[48] = "all its backups";

		if (jint(sc, "keep"))
			snprintf(kept, sizeof(kept), "the newest %lld",
				 (long long)jint(sc, "keep"));
		printf("volume %s: backed up every %.0f s to %s with "
		       "credential %s, keeping %s (%s)\n",
		       name, json_number_value(json_object_get(sc, "every")),
		       jstr(sc, "to"), jstr(sc, "credential"), kept,
		       !strcmp(jstr(sc, "source"), "spec")
			   ? "the pod's schedule in the spec"
			   : "its own schedule");
	} else {
		printf("volume %s: no backup schedule\n", name);
	}
out:
	json_decref(out);
	return rc;
}

static int cmd_credential_create(int argc, char **argv)
{
	const char *kind = NULL, *name = NULL, *endpoint = NULL, *region = NULL;
	const char *ak = NULL, *sk = NULL, *skfile = NULL, *ca = NULL;
	char *sktext = NULL;
	long status;
	json_t *out = NULL, *body;
	int rc;

	for (int k = 1; k < argc; k++) {
		const char **opt = NULL;

		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (strcmp(argv[k], "--endpoint") == 0)
			opt = &endpoint;
		else if (strcmp(argv[k], "--region") == 0)
			opt = &region;
		else if (strcmp(argv[k], "--access-key") == 0)
			opt = &ak;
		else if (strcmp(argv[k], "--secret-key") == 0)
			opt = &sk;
		else if (strcmp(argv[k], "--secret-key-file") == 0)
			opt = &skfile;
		else if (strcmp(argv[k], "--ca") == 0)
			opt = &ca;
		else if (strcmp(argv[k], "--value-file") == 0)
			opt = &skfile;
		else if (!kind && argv[k][0] != '-')
			kind = argv[k];
		else if (!name && argv[k][0] != '-')
			name = argv[k];
		else
			return hf_cli_usage("credential", "create");
		if (opt) {
			if (k + 1 >= argc)
				return hf_cli_usage("credential", "create");
			*opt = argv[++k];
		}
	}
	if (!sk && !skfile)
		sk = getenv(kind && !strcmp(kind, "key") ? "HOLDFAST_KEY_VALUE"
							 : "HOLDFAST_S3_SECRET_KEY");
	if (skfile) {
		size_t n = 0;

		if (hf_read_file(skfile, 4096, &sktext, &n) != 0) {
			fprintf(stderr, "holdfast: %s: %s\n", skfile,
				strerror(errno));
			return HF_EXIT_FAIL;
		}
		while (n && (sktext[n - 1] == '\n' || sktext[n - 1] == ' '))
			sktext[--n] = '\0';
		sk = sktext;
	}
	if (kind && !strcmp(kind, "key") && name && sk && !endpoint && !ak) {
		/* A key that seals encrypted volumes' keys (secret_key=). */
		body = json_pack("{s:s, s:s, s:s}", "type", kind, "name", name,
				 "value", sk);
	} else if (!kind || strcmp(kind, "s3") != 0 || !name || !endpoint ||
		   !ak || !sk) {
		bool key = kind && !strcmp(kind, "key");

		free(sktext);
		fprintf(stderr, "holdfast: credential create: %s\n",
			!kind ? "missing the type (s3 or key)"
			: strcmp(kind, "s3") && !key
			    ? "the type is s3 or key"
			: !name ? "missing the credential's NAME"
			: key	? "a key takes --value-file FILE (or "
				  "$HOLDFAST_KEY_VALUE) and nothing of s3's"
			: !endpoint ? "missing --endpoint URL"
			: !ak	    ? "missing --access-key KEY"
				    : "missing --secret-key-file FILE (or "
				      "--secret-key, or "
				      "$HOLDFAST_S3_SECRET_KEY)");
		return hf_cli_usage("credential", "create");
	} else {
		body = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", kind,
				 "name", name, "endpoint", endpoint,
				 "access_key", ak, "secret_key", sk);
	}
	if (region)
		json_object_set_new(body, "region", json_string(region));
	if (ca)
		json_object_set_new(body, "ca", json_string(ca));
	rc = api("POST", "/v1/credentials", body, &status, &out);
	json_decref(body);
	if (sktext) {
		explicit_bzero(sktext, strlen(sktext));
		free(sktext);
	}
	if ((rc = answered(rc, status, 201, out)))
		goto out;
	if (g.json)
		print_json(out);
	else if (!strcmp(kind, "key"))
		printf("credential %s (key) created\n", name);
	else
		printf("credential %s (s3, %s) created\n", name, endpoint);
out:
	json_decref(out);
	return rc;
}

static int cmd_credential_list(int argc, char **argv)
{
	long status;
	json_t *out = NULL, *e;
	size_t i;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else
			return hf_cli_usage("credential", "list");
	}
	rc = api("GET", "/v1/credentials", NULL, &status, &out);
	if ((rc = answered(rc, status, 200, out)))
		goto out;
	if (g.json) {
		print_json(out);
	} else {
		struct table t = {0};
		const char *head[] = {"NAME", "TYPE", "ENDPOINT", "REGION",
				      "ACCESS KEY"};

		table_row(&t, head, HF_ARRAY_LEN(head), NULL);
		json_array_foreach(json_object_get(out, "credentials"), i, e) {
			const char *row[] = {jstr(e, "name"), jstr(e, "type"),
					     jstr(e, "endpoint"),
					     jstr(e, "region"),
					     jstr(e, "access_key")};

			table_row(&t, row, HF_ARRAY_LEN(row), NULL);
		}
		table_print(&t);
		table_release(&t);
	}
out:
	json_decref(out);
	return rc;
}

static int cmd_credential_delete(int argc, char **argv)
{
	char *esc, *path;
	long status;
	json_t *out = NULL;
	int rc;

	if (argc != 2)
		return hf_cli_usage("credential", "delete");
	esc = hf_url_escape(argv[1]);
	path = hf_xasprintf("/v1/credentials/%s", esc);
	rc = api("DELETE", path, NULL, &status, &out);
	free(path);
	free(esc);
	if (!rc && status != 200)
		rc = api_error(status, out);
	else if (!rc)
		printf("credential %s deleted\n", argv[1]);
	json_decref(out);
	return rc;
}

/* ---- remote clusters (disaster recovery) ------------------------------ */

static int read_pem_arg(const char *flag, const char *path, bool private_key,
			char **out)
{
	size_t n = 0;
	char *err = NULL;
	int rc;

	if (private_key) {
		rc = hf_cred_read_private(path, "key", 256 * 1024, out, &n,
					  &err);
		if (rc) {
			fprintf(stderr, "holdfast: %s %s: %s\n", flag, path,
				err ? err : "cannot read it");
			free(err);
			return HF_EXIT_USAGE;
		}
		return 0;
	}
	if (hf_read_file(path, 256 * 1024, out, &n) != 0) {
		fprintf(stderr, "holdfast: %s %s: %s\n", flag, path,
			strerror(errno));
		return HF_EXIT_USAGE;
	}
	return 0;
}

/* remote add NAME --url URL --ca FILE --cert FILE --key FILE */
static int cmd_remote_add(int argc, char **argv)
{
	const char *name = NULL, *url = NULL, *ca = NULL, *cert = NULL,
		   *key = NULL;
	char *cat = NULL, *certt = NULL, *keyt = NULL;
	json_t *body = NULL, *out = NULL;
	long status;
	int rc;

	for (int k = 1; k < argc; k++) {
		const char **opt = NULL;

		if (strcmp(argv[k], "--url") == 0)
			opt = &url;
		else if (strcmp(argv[k], "--ca") == 0)
			opt = &ca;
		else if (strcmp(argv[k], "--cert") == 0)
			opt = &cert;
		else if (strcmp(argv[k], "--key") == 0)
			opt = &key;
		else if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (!name && argv[k][0] != '-')
			name = argv[k];
		else
			return hf_cli_usage("remote", "add");
		if (opt) {
			if (k + 1 >= argc)
				return hf_cli_usage("remote", "add");
			*opt = argv[++k];
		}
	}
	if (!name || !url || !ca || !cert || !key) {
		fprintf(stderr, "holdfast: remote add: missing %s\n",
			!name  ? "the remote's NAME"
			: !url ? "--url https://HOST:PORT"
			: !ca  ? "--ca FILE (the CA that signed its certificate)"
			: !cert ? "--cert FILE (this cluster's client "
				  "certificate)"
				: "--key FILE (the key of --cert)");
		return hf_cli_usage("remote", "add");
	}
	if ((rc = read_pem_arg("--ca", ca, false, &cat)) ||
	    (rc = read_pem_arg("--cert", cert, false, &certt)) ||
	    (rc = read_pem_arg("--key", key, true, &keyt)))
		goto out;
	body = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", name, "url", url,
			 "ca", cat, "cert", certt, "key", keyt);
	rc = api("POST", "/v1/remotes", body, &status, &out);
	if ((rc = answered(rc, status, 201, out)))
		goto out;
	if (g.json)
		print_json(out);
	else
		printf("remote cluster %s added: %s, which knows this cluster "
		       "as %s (its --client-ca must have signed the "
		       "certificate); `holdfast remote show %s` says whether "
		       "the link is up\n",
		       name, url, jstr(out, "as"), name);
out:
	if (keyt)
		explicit_bzero(keyt, strlen(keyt));
	if (body) {
		json_object_del(body, "key");
		json_decref(body);
	}
	json_decref(out);
	free(cat);
	free(certt);
	free(keyt);
	return rc;
}

static void remote_link_words(const json_t *r, char *buf, size_t n)
{
	const json_t *l = json_object_get(r, "link");
	const char *st = jstr(l, "state");

	if (!strcmp(st, "up"))
		snprintf(buf, n, "up (%.1f ms, cluster %s)",
			 json_number_value(json_object_get(l, "rtt_ms")),
			 jstr(l, "cluster"));
	else if (!strcmp(st, "down"))
		snprintf(buf, n, "down: %s", jstr(l, "error"));
	else
		snprintf(buf, n, "%s (not checked yet)", st);
}

static int cmd_remote_list(int argc, char **argv)
{
	json_t *out = NULL, *e;
	long status;
	size_t i;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else
			return hf_cli_usage("remote", "list");
	}
	rc = api("GET", "/v1/remotes", NULL, &status, &out);
	if ((rc = answered(rc, status, 200, out)))
		goto out;
	if (g.json) {
		print_json(out);
	} else {
		struct table t = {0};
		const char *head[] = {"NAME", "URL", "KNOWN THERE AS", "LINK"};

		table_row(&t, head, HF_ARRAY_LEN(head), NULL);
		json_array_foreach(json_object_get(out, "remotes"), i, e) {
			char link[512];
			const char *row[] = {jstr(e, "name"), jstr(e, "url"),
					     jstr(e, "as"), link};

			remote_link_words(e, link, sizeof(link));
			table_row(&t, row, HF_ARRAY_LEN(row), NULL);
		}
		table_print(&t);
		table_release(&t);
	}
out:
	json_decref(out);
	return rc;
}

static int cmd_remote_show(int argc, char **argv)
{
	const char *name = NULL;
	json_t *out = NULL;
	char *esc, *path, link[512];
	long status;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (!name && argv[k][0] != '-')
			name = argv[k];
		else
			return hf_cli_usage("remote", "show");
	}
	if (!name)
		return hf_cli_usage("remote", "show");
	esc = hf_url_escape(name);
	path = hf_xasprintf("/v1/remotes/%s", esc);
	rc = api("GET", path, NULL, &status, &out);
	free(path);
	free(esc);
	if ((rc = answered(rc, status, 200, out)))
		goto out;
	if (g.json) {
		print_json(out);
		goto out;
	}
	remote_link_words(out, link, sizeof(link));
	printf("name            %s\nurl             %s\nknown there as  %s\n"
	       "link            %s\n",
	       jstr(out, "name"), jstr(out, "url"), jstr(out, "as"), link);
out:
	json_decref(out);
	return rc;
}

static int cmd_remote_remove(int argc, char **argv)
{
	char *esc, *path;
	long status;
	json_t *out = NULL;
	int rc;

	if (argc != 2 || argv[1][0] == '-')
		return hf_cli_usage("remote", "remove");
	esc = hf_url_escape(argv[1]);
	path = hf_xasprintf("/v1/remotes/%s", esc);
	rc = api("DELETE", path, NULL, &status, &out);
	free(path);
	free(esc);
	if ((rc = answered(rc, status, 200, out)) == 0)
		printf("remote cluster %s removed\n", argv[1]);
	json_decref(out);
	return rc;
}

/* ---- disaster recovery -------------------------------------------------- */

/* "512MiB", "2G", "1.5GiB", "4096" (bytes): -1 when it is none of those. */
static int64_t parse_bytes(const char *t)
{
	static const char units[] = "KMGT";
	char *end;
	double v = strtod(t, &end);
	const char *u;

	if (end == t || v < 0)
		return -1;
	if (!*end)
		return (int64_t)v;
	if (!(u = strchr(units, *end)))
		return -1;
	for (int k = 0; k <= u - units; k++)
		v *= 1024;
	end++;
	if (*end && strcmp(end, "i") != 0 && strcmp(end, "iB") != 0 &&
	    strcmp(end, "B") != 0)
		return -1;
	return v > 9e18 ? -1 : (int64_t)v;
}

/*
 * Whether every volume of the service streams to a consistent standby
 * (dr status, out), printing each volume's copy progress when it moved.
 */
static bool dr_synced(const json_t *out, char **last)
{
	const json_t *vols = json_object_get(out, "volumes"), *v;
	const json_t *cfg = json_object_get(out, "config");
	json_int_t size = json_integer_value(
	    json_object_get(json_object_get(out, "journal"), "size"));
	/*
	 * The configuration there, and each volume's copy consistent: a
	 * service without replicated volumes is done with the first.
	 */
	bool all = json_is_true(json_object_get(cfg, "in_sync"));
	struct hf_buf b = HF_BUF_INIT;
	size_t i;

	if (!all)
		hf_buf_addf(&b, "configuration: %s\n",
			    json_is_string(json_object_get(cfg, "error"))
				? jstr(cfg, "error")
				: "not on the standby yet");

	json_array_foreach(vols, i, v) {
		const json_t *st = json_object_get(v, "stream");
		const json_t *sy = json_object_get(st, "sync");
		int64_t total = json_integer_value(json_object_get(sy, "total"));
		int64_t done = json_integer_value(json_object_get(sy, "done"));

		if (!json_is_object(st) ||
		    (size && json_integer_value(json_object_get(
				 st, "journal_size")) != size)) {
			/* None, or one from before the settings changed. */
			hf_buf_addf(&b, "volume %s: no stream yet\n",
				      jstr(v, "volume"));
			all = false;
		} else if (!json_is_true(json_object_get(st, "consistent")) ||
			   strcmp(jstr(st, "state"), "streaming") != 0) {
			char *d = hf_bytes_human(done), *t = hf_bytes_human(total);
			char *sent = hf_bytes_human(
			    json_integer_value(json_object_get(st, "shipped")));

			/* A copy compares first: what it sent is apart. */
			if (total > 0)
				hf_buf_addf(&b, "volume %s: %s, %s of %s "
						  "gone through (%.0f%%), %s "
						  "sent\n",
					      jstr(v, "volume"), jstr(st, "state"),
					      d, t,
					      100.0 * (double)done /
						  (double)total,
					      sent);
			else
				hf_buf_addf(&b, "volume %s: %s%s\n",
					      jstr(v, "volume"), jstr(st, "state"),
					      json_is_true(json_object_get(
						  st, "link_up"))
						  ? ""
						  : " (link down)");
			free(d);
			free(t);
			free(sent);
			all = false;
		}
	}
	if (b.len && (!*last || strcmp(*last, b.data) != 0)) {
		if (!g.json)
			fputs(b.data, stdout);
		fflush(stdout);
		free(*last);
		*last = hf_xstrdup(b.data);
	}
	hf_buf_release(&b);
	return all;
}

static int cmd_dr_enable(int argc, char **argv)
{
	const char *to = NULL, *when_full = NULL;
	char *svc = NULL, *path;
	json_t *body, *out = NULL;
	int64_t start = hf_mono_ms(), jsize = 0;
	double timeout = 0;
	bool wait = false;
	long status;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--to") == 0 && k + 1 < argc)
			to = argv[++k];
		else if (strcmp(argv[k], "--journal-size") == 0 && k + 1 < argc) {
			if ((jsize = parse_bytes(argv[++k])) <= 0) {
				fprintf(stderr, "holdfast: --journal-size %s: a "
						"size such as 512MiB or 4GiB\n",
					argv[k]);
				return HF_EXIT_USAGE;
			}
		} else if (strcmp(argv[k], "--when-full") == 0 && k + 1 < argc)
			when_full = argv[++k];
		else if (strcmp(argv[k], "--wait") == 0)
			wait = true;
		else if (strcmp(argv[k], "--timeout") == 0 && k + 1 < argc)
			timeout = atof(argv[++k]);
		else if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else
			return hf_cli_usage("dr", "enable");
	}
	if (!to)
		return hf_cli_usage("dr", "enable");
	if ((rc = pick_service(&svc)))
		return rc;
	path = svc_path(svc, "/dr");
	body = json_pack("{s:s}", "to", to);
	if (jsize)
		json_object_set_new(body, "journal_size", json_integer(jsize));
	if (when_full)
		json_object_set_new(body, "when_full", json_string(when_full));
	rc = api("POST", path, body, &status, &out);
	if (status == 200 && rc == 0 && json_is_object(out))
		status = 201; /* the journal settings of a stream changed */
	if ((rc = answered(rc, status, 201, out)) != 0)
		goto out;
	if (!g.json)
		printf(json_is_true(json_object_get(out, "updated"))
			   ? "service %s: its streams to remote cluster %s take "
			     "the new journal settings (`holdfast -s %s dr "
			     "status`)\n"
			   : "service %s is replicated to remote cluster %s: "
			     "its configuration goes there as a standby "
			     "service, its volumes' writes to standby replicas "
			     "(`holdfast -s %s dr status`)\n",
		       svc, to, svc);
	fflush(stdout);
	if (wait) {
		char *last = NULL;

		/* Until every volume's standby holds a consistent copy. */
		for (;;) {
			json_t *st = NULL;
			long code = 0;
			bool done;

			rc = api("GET", path, NULL, &code, &st);
			if ((rc = answered(rc, code, 200, st))) {
				json_decref(st);
				break;
			}
			done = dr_synced(st, &last);
			if (done && g.json)
				json_object_set(out, "status", st);
			if (done && !g.json)
				printf("service %s: the standby on %s holds "
				       "its configuration and a consistent "
				       "copy of each of its %zu volume(s)\n",
				       svc, to,
				       json_array_size(
					   json_object_get(st, "volumes")));
			json_decref(st);
			if (done)
				break;
			if (timeout > 0 &&
			    (double)(hf_mono_ms() - start) / 1000 > timeout) {
				fprintf(stderr,
					"holdfast: service %s: the standby "
					"copies are not complete after %.0f s "
					"(`holdfast -s %s dr status`)\n",
					svc, timeout, svc);
				rc = HF_EXIT_FAIL;
				break;
			}
			usleep(500 * 1000);
		}
		free(last);
	}
	if (g.json && !rc)
		print_json(out);
out:
	json_decref(body);
	json_decref(out);
	free(path);
	free(svc);
	return rc;
}

static int cmd_dr_disable(int argc, char **argv)
{
	char *svc = NULL, *path;
	json_t *out = NULL;
	long status;
	int rc;

	if (argc != 1)
		return hf_cli_usage("dr", "disable");
	if ((rc = pick_service(&svc)))
		return rc;
	path = svc_path(svc, "/dr");
	rc = api("DELETE", path, NULL, &status, &out);
	if ((rc = answered(rc, status, 200, out)) == 0)
		printf("service %s is no longer replicated to %s%s\n", svc,
		       jstr(out, "to"),
		       json_is_true(json_object_get(out, "standby_told"))
			   ? " (its standby there is gone)"
			   : " (it could not be told now: its standby stays "
			     "there until removed)");
	json_decref(out);
	free(path);
	free(svc);
	return rc;
}

/*
 * A stream's copy: how far it is, and what it sent against what the
 * standby held already (compared by digests, not sent).
 */
static void dr_copy_print(const json_t *st)
{
	const json_t *sy = json_object_get(st, "sync");
	json_int_t same = json_integer_value(json_object_get(st, "copy_same"));
	char *a, *b;

	if (json_is_object(sy)) {
		a = hf_bytes_human(json_integer_value(json_object_get(sy, "done")));
		b = hf_bytes_human(json_integer_value(json_object_get(sy, "total")));
		printf("    copy: %s of %s gone through\n", a, b);
		free(a);
		free(b);
	}
	if (same > 0) {
		a = hf_bytes_human(json_integer_value(json_object_get(st, "shipped")));
		b = hf_bytes_human(same);
		printf("    sent %s; %s the standby held already was not sent\n",
		       a, b);
		free(a);
		free(b);
	}
}

/* Each volume's stream: state, lag, journal, the standby's newest write. */
static void dr_volumes_print(const json_t *vols)
{
	const json_t *v;
	size_t i;

	json_array_foreach(vols, i, v) {
		const json_t *st = json_object_get(v, "stream");
		const json_t *sb = json_object_get(v, "standby");
		char *lag, *jb, *js;

		if (!json_is_object(st)) {
			printf("  volume %-20s no stream yet (%s)\n",
			       jstr(v, "volume"),
			       !json_is_object(sb) ? "the standby has not placed "
						     "its replica"
			       : !json_integer_value(json_object_get(sb, "port"))
				   ? "the standby's node has no DR listener"
				   : "not attached, or not reported yet");
			continue;
		}
		lag = hf_bytes_human(
		    json_integer_value(json_object_get(st, "lag_bytes")));
		jb = hf_bytes_human(
		    json_integer_value(json_object_get(st, "journal_bytes")));
		js = hf_bytes_human(
		    json_integer_value(json_object_get(st, "journal_size")));
		printf("  volume %-20s %s%s, lag %.1f s (%s), journal %s of "
		       "%s%s\n",
		       jstr(v, "volume"), jstr(st, "state"),
		       json_is_true(json_object_get(st, "link_up")) ? ""
								    : " (link down)",
		       json_number_value(json_object_get(st, "lag_seconds")),
		       lag, jb, js,
		       json_is_true(json_object_get(st, "consistent"))
			   ? ""
			   : "; the standby is being copied (not consistent)");
		free(lag);
		free(jb);
		free(js);
		dr_copy_print(st);
		if (json_integer_value(json_object_get(st, "applied_time")) > 0)
			printf("    the standby holds every write made until "
			       "%.1f s ago\n",
			       (double)(hf_now_ms() -
					json_integer_value(json_object_get(
					    st, "applied_time")) /
					    1000000) /
				   1000);
		if (json_is_string(json_object_get(st, "message")))
			printf("    %s\n", jstr(st, "message"));
	}
}

/* dr switchover's and failback's flags: -1 on one it does not take. */
static int dr_move_args(int argc, char **argv, json_t *body, bool *yes,
			bool *wait, double *timeout)
{
	for (int k = 1; k < argc; k++) {
		if (!strcmp(argv[k], "--yes") || !strcmp(argv[k], "-y"))
			*yes = true;
		else if (!strcmp(argv[k], "--back") && k + 1 < argc)
			json_object_set_new(body, "back", json_string(argv[++k]));
		else if (!strcmp(argv[k], "--wait"))
			*wait = true;
		else if (!strcmp(argv[k], "--timeout") && k + 1 < argc)
			*timeout = atof(argv[++k]);
		else if (!strcmp(argv[k], "--json"))
			g.json = true;
		else
			return -1;
	}
	return 0;
}

static int cmd_dr_switchover(int argc, char **argv)
{
	char *svc = NULL, *path;
	json_t *out = NULL, *body = json_object();
	int64_t start = hf_mono_ms();
	double timeout = 0;
	bool yes = false, wait = false;
	char *last = NULL;
	long status;
	int rc;

	if (dr_move_args(argc, argv, body, &yes, &wait, &timeout)) {
		json_decref(body);
		return hf_cli_usage("dr", "switchover");
	}
	if (!yes) {
		fprintf(stderr, "holdfast: dr switchover stops the service here "
				"and starts it on its standby cluster (nothing "
				"written is lost; the service is down meanwhile): "
				"confirm with --yes\n");
		json_decref(body);
		return HF_EXIT_USAGE;
	}
	if ((rc = pick_service(&svc))) {
		json_decref(body);
		return rc;
	}
	path = svc_path(svc, "/dr/switchover");
	rc = api("POST", path, body, &status, &out);
	free(path);
	if ((rc = answered(rc, status, 202, out)) != 0)
		goto out;
	if (!g.json)
		printf("service %s: switching over: %s\n", svc,
		       jstr(json_object_get(out, "switchover"), "message"));
	path = svc_path(svc, "/dr");
	while (wait) {
		json_t *st = NULL;
		const json_t *sw;
		long code = 0;

		rc = api("GET", path, NULL, &code, &st);
		if (rc == 0 && code == 404) {
			/* Done here; the new primary's standby not yet. */
			if (!last || strcmp(last, "handed over") != 0) {
				if (!g.json)
					printf("service %s: handed over; "
					       "waiting for its standby to "
					       "come here\n",
					       svc);
				free(last);
				last = hf_xstrdup("handed over");
			}
			json_decref(st);
			st = NULL;
			goto next;
		}
		if ((rc = answered(rc, code, 200, st))) {
			json_decref(st);
			break;
		}
		sw = json_object_get(st, "switchover");
		if (!strcmp(jstr(st, "role"), "standby")) {
			if (!g.json)
				printf("service %s: switchover done: it runs on "
				       "%s, this cluster holds its standby\n",
				       svc, jstr(st, "from"));
			json_object_set(out, "status", st);
			json_decref(st);
			break;
		}
		if (json_is_object(sw)) {
			char *line = hf_xasprintf("%s: %s", jstr(sw, "phase"),
						  jstr(sw, "message"));

			if (!last || strcmp(last, line) != 0) {
				if (!g.json)
					printf("service %s: %s\n", svc, line);
				fflush(stdout);
				free(last);
				last = line;
			} else {
				free(line);
			}
			if (!strcmp(jstr(sw, "phase"), "failed")) {
				fprintf(stderr, "holdfast: service %s: the "
						"switchover failed: %s\n",
					svc, jstr(sw, "message"));
				json_object_set(out, "status", st);
				json_decref(st);
				rc = HF_EXIT_FAIL;
				break;
			}
		}
		json_decref(st);
next:
		if (timeout > 0 && elapsed_s(start) > timeout) {
			fprintf(stderr, "holdfast: service %s: the switchover is "
					"not done after %.0f s (`holdfast -s %s dr "
					"status`)\n",
				svc, timeout, svc);
			rc = HF_EXIT_FAIL;
			break;
		}
		usleep(500 * 1000);
	}
	free(path);
	if (g.json)
		print_json(out);
out:
	free(last);
	json_decref(body);
	json_decref(out);
	free(svc);
	return rc;
}

static int cmd_dr_failback(int argc, char **argv)
{
	char *svc = NULL, *path, *last = NULL;
	json_t *out = NULL, *body = json_object();
	int64_t start = hf_mono_ms();
	double timeout = 0;
	bool yes = false, wait = false;
	long status;
	int rc;

	if (dr_move_args(argc, argv, body, &yes, &wait, &timeout)) {
		json_decref(body);
		return hf_cli_usage("dr", "failback");
	}
	if (!yes) {
		fprintf(stderr, "holdfast: dr failback makes this cluster the "
				"standby of the service that runs on the remote "
				"now: its copies here are replaced by the "
				"remote's: confirm with --yes\n");
		json_decref(body);
		return HF_EXIT_USAGE;
	}
	if ((rc = pick_service(&svc))) {
		json_decref(body);
		return rc;
	}
	path = svc_path(svc, "/dr/failback");
	for (;;) {
		rc = api("POST", path, body, &status, &out);
		/* With --wait, a fenced copy still stopping here is waited for. */
		if (rc || !wait || status != 503 ||
		    !jstr(out, "error") ||
		    strcmp(jstr(out, "error"), "unavailable") ||
		    (timeout > 0 && elapsed_s(start) > timeout))
			break;
		json_decref(out);
		out = NULL;
		usleep(500 * 1000);
	}
	free(path);
	if ((rc = answered(rc, status, 200, out)) != 0)
		goto out;
	if (!g.json)
		printf("service %s: this cluster is its standby now; %s "
		       "replicates it here\n",
		       svc, jstr(out, "from"));
	path = svc_path(svc, "/dr");
	while (wait) {
		json_t *st = NULL;
		long code = 0;

		rc = api("GET", path, NULL, &code, &st);
		if (rc == 0 && code == 200 &&
		    !strcmp(jstr(st, "role"), "standby")) {
			/* Until every volume's copy here is consistent. */
			const json_t *v;
			size_t i, n = json_array_size(
				      json_object_get(st, "volumes")),
				  done = 0;
			char *line;

			json_array_foreach(json_object_get(st, "volumes"), i, v)
				done += json_is_true(
				    json_object_get(v, "consistent"));
			line = hf_xasprintf("%zu of %zu volume(s) copied here "
					    "and consistent",
					    done, n);
			if (!g.json && (!last || strcmp(last, line)))
				printf("service %s: %s\n", svc, line);
			fflush(stdout);
			free(last);
			last = line;
			if (n && done == n) {
				json_object_set(out, "status", st);
				json_decref(st);
				break;
			}
			json_decref(st);
			goto next;
		}
		json_decref(st);
		if (rc || (code != 200 && code != 404)) {
			rc = answered(rc, code, 200, NULL);
			break;
		}
next:
		if (timeout > 0 && elapsed_s(start) > timeout) {
			fprintf(stderr, "holdfast: service %s: its standby "
					"copy is not complete here after %.0f "
					"s\n",
				svc, timeout);
			rc = HF_EXIT_FAIL;
			break;
		}
		usleep(500 * 1000);
	}
	free(path);
	if (g.json && !rc)
		print_json(out);
out:
	free(last);
	json_decref(body);
	json_decref(out);
	free(svc);
	return rc;
}

static int cmd_dr_failover(int argc, char **argv)
{
	char *svc = NULL, *path;
	json_t *out = NULL, *body = json_object();
	bool yes = false;
	long status;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (!strcmp(argv[k], "--yes") || !strcmp(argv[k], "-y"))
			yes = true;
		else if (!strcmp(argv[k], "--force"))
			json_object_set_new(body, "force", json_true());
		else if (!strcmp(argv[k], "--json"))
			g.json = true;
		else {
			json_decref(body);
			return hf_cli_usage("dr", "failover");
		}
	}
	if (!yes) {
		fprintf(stderr, "holdfast: dr failover starts the service here "
				"from its standby copy; the primary site must be "
				"down (two sites must never both run it): "
				"confirm with --yes\n");
		json_decref(body);
		return HF_EXIT_USAGE;
	}
	if ((rc = pick_service(&svc))) {
		json_decref(body);
		return rc;
	}
	path = svc_path(svc, "/dr/failover");
	rc = api("POST", path, body, &status, &out);
	if ((rc = answered(rc, status, 200, out)) == 0) {
		if (g.json) {
			print_json(out);
		} else {
			json_int_t t = json_integer_value(
			    json_object_get(out, "last_write_applied"));

			printf("service %s is the primary here now%s\n", svc,
			       json_is_true(json_object_get(out, "deployed"))
				   ? ", deploying from its standby volumes"
				   : "");
			if (t > 0)
				printf("loss window: writes made on the old "
				       "primary after %.3f s ago may be lost\n",
				       (double)(hf_now_ms() * 1000000 - t) /
					   1e9);
			if (json_is_string(json_object_get(out, "deploy_error")))
				printf("the deploy failed: %s\n",
				       jstr(out, "deploy_error"));
		}
	}
	json_decref(out);
	json_decref(body);
	free(path);
	free(svc);
	return rc;
}

static void dr_print(const json_t *d)
{
	const json_t *c = json_object_get(d, "config");

	if (!strcmp(jstr(d, "role"), "primary")) {
		printf("%s: primary, replicated to %s\n", jstr(d, "service"),
		       jstr(d, "to"));
		printf("  configuration  %s here, %s on %s%s%s\n",
		       jstr(c, "target"),
		       json_is_string(json_object_get(c, "replicated"))
			   ? jstr(c, "replicated")
			   : "none yet",
		       jstr(d, "to"),
		       json_is_true(json_object_get(c, "in_sync"))
			   ? " (in sync)"
			   : " (behind)",
		       "");
		if (json_is_integer(json_object_get(c, "replicated_at")))
			printf("  sent           %.1f s ago\n",
			       (double)(hf_now_ms() -
					json_integer_value(json_object_get(
					    c, "replicated_at"))) /
				   1000);
		if (json_is_string(json_object_get(c, "error")))
			printf("  last error     %s\n", jstr(c, "error"));
		if (json_is_object(json_object_get(d, "switchover")))
			printf("  switchover     %s: %s\n",
			       jstr(json_object_get(d, "switchover"), "phase"),
			       jstr(json_object_get(d, "switchover"), "message"));
		if (json_is_object(json_object_get(d, "fenced")))
			printf("  fenced         %s\n",
			       jstr(json_object_get(d, "fenced"), "message"));
		if (json_is_object(json_object_get(d, "journal"))) {
			const json_t *j = json_object_get(d, "journal");
			char *size = hf_bytes_human(
			    json_integer_value(json_object_get(j, "size")));

			printf("  journal        %s per volume, when full: %s\n",
			       size, jstr(j, "when_full"));
			free(size);
		}
		dr_volumes_print(json_object_get(d, "volumes"));
	} else {
		printf("%s: standby of %s (cluster %s)\n", jstr(d, "service"),
		       jstr(d, "from"), jstr(d, "cluster"));
		printf("  configuration  %s, received %.1f s ago; its pods do "
		       "not run here\n",
		       jstr(c, "id"),
		       (double)(hf_now_ms() - json_integer_value(json_object_get(
						  c, "received_at"))) /
			   1000);
		{
			const json_t *v;
			size_t i;

			json_array_foreach(json_object_get(d, "volumes"), i, v) {
				json_int_t t = json_integer_value(
				    json_object_get(v, "applied_time"));

				if (t > 0)
					printf("  volume %-20s on %s: consistent, "
					       "every write made on %s until "
					       "%.1f s ago\n",
					       jstr(v, "volume"), jstr(v, "node"),
					       jstr(d, "from"),
					       (double)(hf_now_ms() -
							t / 1000000) /
						   1000);
				else
					printf("  volume %-20s on %s: %s\n",
					       jstr(v, "volume"),
					       json_is_string(
						   json_object_get(v, "node"))
						   ? jstr(v, "node")
						   : "no node yet",
					       "being copied, not consistent "
					       "yet");
				if (json_is_integer(json_object_get(v, "spooled"))) {
					char *b = hf_bytes_human(json_integer_value(
					    json_object_get(v, "spooled")));

					printf("    %s held back until the other "
					       "volumes have as far\n", b);
					free(b);
				}
			}
			if (json_is_true(json_object_get(d, "consistency_group")))
				printf("  consistency group: the volumes are "
				       "applied together, up to their common "
				       "mark\n");
		}
	}
}

static int cmd_dr_status(int argc, char **argv)
{
	char *svc = NULL, *path;
	json_t *out = NULL;
	long status;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else
			return hf_cli_usage("dr", "status");
	}
	if (g.service)
		svc = hf_xstrdup(g.service);
	else if ((rc = pick_service(&svc)))
		return rc;
	path = svc_path(svc, "/dr");
	rc = api("GET", path, NULL, &status, &out);
	if ((rc = answered(rc, status, 200, out)) == 0) {
		if (g.json)
			print_json(out);
		else
			dr_print(out);
	}
	json_decref(out);
	free(path);
	free(svc);
	return rc;
}

static int cmd_dr_list(int argc, char **argv)
{
	json_t *out = NULL, *e;
	long status;
	size_t i;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else
			return hf_cli_usage("dr", "list");
	}
	rc = api("GET", "/v1/dr", NULL, &status, &out);
	if ((rc = answered(rc, status, 200, out)) == 0) {
		if (g.json)
			print_json(out);
		else if (!json_array_size(json_object_get(out, "services")))
			printf("no service has disaster recovery here\n");
		else
			json_array_foreach(json_object_get(out, "services"), i, e)
				dr_print(e);
	}
	json_decref(out);
	return rc;
}

static int cmd_node_decommission(int argc, char **argv)
{
	char *esc, *path;
	long status;
	json_t *out;
	int rc;

	if (argc != 2)
		return hf_cli_usage("node", "decommission");
	esc = hf_url_escape(argv[1]);
	path = hf_xasprintf("/v1/nodes/%s/decommission", esc);
	rc = api("POST", path, NULL, &status, &out);
	if (!rc) {
		if (status != 200)
			rc = api_error(status, out);
		else if (g.json)
			print_json(out);
		else {
			size_t i;
			json_t *v;

			printf("node %s decommissioned\n", argv[1]);
			json_array_foreach(json_object_get(out, "replacing"), i, v)
			    printf("  replacing %s\n", json_string_value(v));
		}
		json_decref(out);
	}
	free(esc);
	free(path);
	return rc;
}

/*
 * node adopt: a node whose agent the server refused (it belongs to
 * another cluster, or this store does not know it) joins this cluster;
 * the desired set it then gets stops what this cluster does not know.
 */
static int cmd_node_adopt(int argc, char **argv)
{
	const char *node = NULL;
	bool yes = false;
	char *esc, *path;
	long status;
	json_t *out;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--yes") == 0 || strcmp(argv[k], "-y") == 0)
			yes = true;
		else if (!node && argv[k][0] != '-')
			node = argv[k];
		else
			return hf_cli_usage("node", "adopt");
	}
	if (!node)
		return hf_cli_usage("node", "adopt");
	if (!yes) {
		char answer[16] = "";

		if (!isatty(STDIN_FILENO)) {
			fprintf(stderr,
				"holdfast: adopting %s stops every task on it "
				"that this cluster does not know; confirm with "
				"--yes\n",
				node);
			return HF_EXIT_USAGE;
		}
		fprintf(stderr,
			"Adopting %s into this cluster stops every task on it "
			"that this cluster does not know (restoring the "
			"server's store keeps them). Type 'yes' to go on: ",
			node);
		if (!fgets(answer, sizeof(answer), stdin) ||
		    strncmp(answer, "yes", 3) != 0) {
			fprintf(stderr, "holdfast: not adopted\n");
			return HF_EXIT_FAIL;
		}
	}
	esc = hf_url_escape(node);
	path = hf_xasprintf("/v1/nodes/%s/adopt", esc);
	rc = api("POST", path, NULL, &status, &out);
	if (!rc) {
		if (status != 200)
			rc = api_error(status, out);
		else if (g.json)
			print_json(out);
		else
			printf("node %s adopted into cluster %s: its next sync "
			       "stops the %lld task(s) this cluster does not "
			       "know\n",
			       node,
			       json_string_value(json_object_get(out, "cluster")),
			       (long long)json_integer_value(
				   json_object_get(out, "live_tasks")));
		json_decref(out);
	}
	free(esc);
	free(path);
	return rc;
}

/*
 * POST /v1/nodes/{node}/reset-identity: forget a node's own credential, so
 * that the next agent to register as that node (a rebuilt machine) gets it.
 */
static int cmd_node_reset_identity(int argc, char **argv)
{
	char *esc, *path;
	long status;
	json_t *out;
	int rc;

	if (argc != 2)
		return hf_cli_usage("node", "reset-identity");
	esc = hf_url_escape(argv[1]);
	path = hf_xasprintf("/v1/nodes/%s/reset-identity", esc);
	rc = api("POST", path, NULL, &status, &out);
	if (!rc) {
		if (status != 200)
			rc = api_error(status, out);
		else if (g.json)
			print_json(out);
		else
			printf("node %s: identity reset; the next agent to "
			       "register as %s with a join token becomes it\n",
			       argv[1], argv[1]);
		json_decref(out);
	}
	free(esc);
	free(path);
	return rc;
}

/*
 * A node's pool in one line ("/pool: capacity 9.8 GiB, provisioned 0 B,
 * used 0 B; 9.8 GiB free on its filesystem"), or NULL for a storage-less
 * node. The caller frees it.
 */
static char *pool_line(const json_t *node)
{
	const json_t *st = json_object_get(node, "storage");
	char *cap, *prov, *used, *fr, *line;

	if (!json_is_object(st))
		return NULL;
	cap = hf_bytes_human(jint(st, "capacity"));
	prov = hf_bytes_human(jint(st, "provisioned"));
	used = hf_bytes_human(jint(st, "used"));
	fr = hf_bytes_human(jint(st, "free"));
	line = hf_xasprintf("%s: capacity %s, provisioned %s, used %s; %s "
			    "free on its filesystem",
			    jstr(st, "pool") ? jstr(st, "pool") : "-", cap,
			    prov, used, fr);
	free(cap);
	free(prov);
	free(used);
	free(fr);
	return line;
}

static int cmd_node_list(int argc, char **argv)
{
	long status;
	json_t *out;
	size_t i;
	json_t *n;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else
			return hf_cli_usage("node", "list");
	}
	rc = api("GET", "/v1/nodes", NULL, &status, &out);
	if (rc)
		return rc;
	if (status != 200) {
		rc = api_error(status, out);
	} else if (g.json) {
		print_json(out);
	} else {
		printf("%-20s %-16s %-10s %-6s %-10s %s\n", "NODE", "ADDRESS",
		       "CONNECTED", "CPUS", "MEMORY", "LIMITS");
		json_array_foreach(out, i, n)
		{
			const json_t *r = json_object_get(n, "resources");
			const char *cg =
			    json_string_value(json_object_get(n, "cgroups"));

			const char *refused =
			    json_string_value(json_object_get(n, "refused"));

			printf("%-20s %-16s %-10s %-6g %-10.0f %s\n",
			       json_string_value(json_object_get(n, "id")),
			       json_string_value(json_object_get(n, "address"))
				   ? json_string_value(
					 json_object_get(n, "address"))
				   : "-",
			       refused ? "refused"
			       : json_is_true(json_object_get(n, "connected"))
				   ? "yes"
				   : "no",
			       json_number_value(json_object_get(r, "cpus")),
			       json_number_value(json_object_get(r, "memory_mb")),
			       cg ? cg : "-");
			if (refused)
				printf("  refused: %s\n", refused);
			{
				char *pool = pool_line(n);

				if (pool)
					printf("  storage: %s\n", pool);
				free(pool);
			}
		}
	}
	json_decref(out);
	return rc;
}

/* node show NODE: one node of GET /v1/nodes, its pool included. */
static int cmd_node_show(int argc, char **argv)
{
	const char *id = NULL;
	const json_t *n = NULL, *r, *e;
	json_t *out;
	long status;
	size_t i;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			g.json = true;
		else if (!id && argv[k][0] != '-')
			id = argv[k];
		else
			return hf_cli_usage("node", "show");
	}
	if (!id)
		return hf_cli_usage("node", "show");
	rc = api("GET", "/v1/nodes", NULL, &status, &out);
	if (rc)
		return rc;
	if (status != 200) {
		rc = api_error(status, out);
		goto out;
	}
	json_array_foreach(out, i, e) if (jstr(e, "id") &&
					  strcmp(jstr(e, "id"), id) == 0) n = e;
	if (!n) {
		fprintf(stderr, "holdfast: no node %s (holdfast node list "
				"lists them)\n",
			id);
		rc = 1;
		goto out;
	}
	if (g.json) {
		print_json(n);
		goto out;
	}
	r = json_object_get(n, "resources");
	printf("%s\n", id);
	printf("  hostname:   %s\n", jstr(n, "hostname") ? jstr(n, "hostname")
							: "-");
	printf("  address:    %s\n", jstr(n, "address") ? jstr(n, "address")
						       : "-");
	printf("  connected:  %s%s\n",
	       jstr(n, "refused") ? "refused"
	       : json_is_true(json_object_get(n, "connected")) ? "yes"
								: "no",
	       json_is_true(json_object_get(n, "decommissioned"))
		   ? " (decommissioned)"
		   : "");
	if (jstr(n, "refused"))
		printf("  refused:    %s\n", jstr(n, "refused"));
	if (json_object_size(r))
		printf("  resources:  cpus %g, memory %.0f MB, disk %.0f MB, "
		       "ports %lld-%lld\n",
		       json_number_value(json_object_get(r, "cpus")),
		       json_number_value(json_object_get(r, "memory_mb")),
		       json_number_value(json_object_get(r, "disk_mb")),
		       (long long)jint(r, "port_begin"),
		       (long long)jint(r, "port_end"));
	if (json_object_size(json_object_get(n, "attributes"))) {
		const char *k;
		json_t *v;

		printf("  attributes:");
		json_object_foreach(json_object_get(n, "attributes"), k, v)
		    printf(" %s=%s", k, json_string_value(v));
		printf("\n");
	}
	printf("  limits:     %s\n", jstr(n, "cgroups") ? jstr(n, "cgroups")
						       : "-");
	{
		char *pool = pool_line(n);

		printf("  storage:    %s\n",
		       pool ? pool
			    : "none (storage-less: its agent runs without "
			      "--storage)");
		free(pool);
	}
	if (jint(n, "last_seen")) {
		char t[40];

		printf("  last seen:  %s\n",
		       iso_time(jint(n, "last_seen"), t, sizeof(t)));
	}
out:
	json_decref(out);
	return rc;
}

const struct hf_cmd hf_client_cmds[] = {
    {"service", "deploy", cmd_service_deploy,
     "(-f SPEC | --package DIR [-f SPEC]) [-o KEY=VALUE]... [--options FILE]... "
     "[--template-dir DIR] [--wait] [--timeout S] [--json]",
     "deploy a new service from a spec or an SDK package",
     "Validates the spec here, sends it with its options and config\n"
     "templates to the server, and starts its deploy plan. --wait shows the\n"
     "plan's progress and exits 1 if it ends in ERROR.\n"
     "--package DIR (or a directory given to -f) takes a DC/OS SDK package:\n"
     "--options FILE is then the user's options JSON, as for `dcos package\n"
     "install --options`, rendered through the package's universe/ files\n"
     "into the spec's variables (docs/spec.md); -o KEY=VALUE still wins.", NULL},
    {"service", "update", cmd_service_update,
     "NAME (-f SPEC | --package DIR [-f SPEC]) [-o KEY=VALUE]... "
     "[--options FILE]... [--template-dir DIR] [--wait] [--timeout S]",
     "change a running service's configuration",
     "Renders and validates the spec, diffs it against the running target\n"
     "and either refuses it (printing every reason; nothing changes) or\n"
     "makes it the new target: only pod instances whose effective spec\n"
     "changed are relaunched, with their phase's strategy. --package works\n"
     "as for deploy.", NULL},
    {"service", "diff", cmd_service_diff,
     "NAME (-f SPEC | --package DIR [-f SPEC]) [-o KEY=VALUE]... "
     "[--options FILE]... [--template-dir DIR] [--json]",
     "show what an update would do, without doing it", NULL, NULL},
    {"service", "rollback", cmd_service_rollback,
     "NAME [--to CONFIG_ID] [--wait] [--timeout S]",
     "make the previous (or a given) configuration the target again", NULL, NULL},
    {"service", "list", cmd_service_list, "[--json]", "list services", NULL, NULL},
    {"service", "status", cmd_service_status, "[NAME] [--json]",
     "show a service's plans and tasks", NULL, NULL},
    {"service", "remove", cmd_service_remove,
     "NAME [--delete-volumes] [--wait] [--timeout S] [--json]",
     "stop a service's tasks and forget it",
     "Kills the service's tasks and frees their reservations. Volumes are\n"
     "kept (the command says where; 'holdfast volume list' lists them)\n"
     "unless --delete-volumes is given; a later 'service remove NAME\n"
     "--delete-volumes' or 'volume delete NAME' deletes kept ones, and a\n"
     "service deployed again as NAME reuses them. --wait returns once the\n"
     "service is gone (with --delete-volumes, once its volumes are too).", NULL},
    {"stack", "deploy", hf_cmd_stack_deploy,
     "-f FILE [--wait] [--timeout S] [--json]",
     "deploy a stack of services from a stack file",
     "Reads the stack file and every spec it names (paths relative to the\n"
     "file), checks them here (errors are file:line:col), and hands them to\n"
     "the server as one stack: each service starts once the services it\n"
     "depends on have completed their deploy plans, with their endpoints\n"
     "({{services.NAME.endpoints.PORT}}) filled into its options. --wait\n"
     "shows each service's phase and returns once all are deployed (exit 1\n"
     "if one fails). docs/stacks.md has the file's format.", NULL},
    {"stack", "update", hf_cmd_stack_update,
     "-f FILE [--wait] [--timeout S] [--json]",
     "change a stack to what its file now says",
     "Services whose rendered spec (spec, options with endpoints filled in,\n"
     "templates) changed are updated, in dependency order; the others are\n"
     "not touched. Services the file no longer names are removed (their\n"
     "volumes kept); new ones are deployed.", NULL},
    {"stack", "diff", hf_cmd_stack_diff, "-f FILE [--json]",
     "show what a stack update would do, per service",
     "Exit status 1 when an update would be refused for a service.", NULL},
    {"stack", "status", hf_cmd_stack_status, "[NAME | -f FILE] [--json]",
     "show a stack's services: phase, plan, dependencies", NULL, NULL},
    {"stack", "list", hf_cmd_stack_list, "[--json]", "list stacks", NULL,
     NULL},
    {"stack", "remove", hf_cmd_stack_remove,
     "(NAME | -f FILE) [--delete-volumes] [--wait] [--timeout S] [--json]",
     "remove a stack's services, dependents first",
     "Services are removed in reverse dependency order; their volumes are\n"
     "kept unless --delete-volumes is given. --wait returns once the stack\n"
     "is gone.", NULL},
    {"plan", "list", cmd_plan_list, "[--json]", "list a service's plans", NULL, NULL},
    {"plan", "show", cmd_plan_show, "[PLAN] [--json]",
     "show a plan's phases and steps", NULL, NULL},
    {"plan", "start", cmd_plan_start,
     "PLAN [-p KEY=VALUE]... [--wait] [--timeout S]",
     "start (or restart) a plan; parameters become task env vars", NULL, NULL},
    {"plan", "stop", cmd_plan_stop, "PLAN", "stop a plan and reset it", NULL, NULL},
    {"plan", "pause", cmd_plan_pause, "PLAN [--phase PHASE]",
     "interrupt a plan or one phase (also: plan interrupt)",
     "Steps already under way go on; no other step starts until the plan\n"
     "(or the phase) is resumed. 'plan interrupt' is the SDK's name for it.", NULL},
    {"plan", "interrupt", cmd_plan_interrupt, "PLAN [--phase PHASE]",
     "the SDK's name for plan pause", NULL, NULL},
    {"plan", "resume", cmd_plan_resume,
     "PLAN [--phase PHASE] [--wait] [--timeout S]",
     "continue a plan (also lets a canary go on; also: plan continue)",
     "Resumes an interrupted plan or phase, or passes the next canary gate:\n"
     "a canary phase waits for one continue before its first step and for\n"
     "another before the rest. Says what it let go, which gates remain and\n"
     "how many continues they need. A plan that is COMPLETE, or that nothing\n"
     "holds back, is refused (exit 1). 'plan continue' is the SDK's name.", NULL},
    {"plan", "continue", cmd_plan_continue,
     "PLAN [--phase PHASE] [--wait] [--timeout S]",
     "the SDK's name for plan resume", NULL, NULL},
    {"plan", "force-restart", cmd_plan_force_restart, "PLAN PHASE STEP",
     "run a step again", NULL, NULL},
    {"plan", "force-complete", cmd_plan_force_complete, "PLAN PHASE STEP",
     "mark a step complete", NULL, NULL},
    {"pod", "list", cmd_pod_status, "[--json]", "list pod instances", NULL, NULL},
    {"pod", "status", cmd_pod_status, "[POD] [--json]",
     "show pod instances and their tasks", NULL, NULL},
    {"pod", "info", cmd_pod_info, "POD [--json]",
     "show a pod instance: node, ports, state and each task's launch",
     "Times are UTC. --json gives the record as the API has it (times in\n"
     "ms since the epoch).", NULL},
    {"pod", "restart", cmd_pod_restart, "POD",
     "restart a pod instance in place (same node, same volumes)", NULL, NULL},
    {"pod", "replace", cmd_pod_replace, "POD [--yes]",
     "replace a pod instance: its volumes are discarded",
     "The instance's tasks are stopped, its volumes deleted, and it is\n"
     "launched afresh as a new instance. Asks for confirmation on a\n"
     "terminal unless --yes is given.", NULL},
    {"pod", "pause", cmd_pod_pause, "POD",
     "relaunch a pod's tasks as sleeps, to repair its volumes", NULL, NULL},
    {"pod", "resume", cmd_pod_resume, "POD",
     "relaunch a paused pod's tasks normally", NULL, NULL},
    {"pod", "scale", cmd_pod_scale,
     "POD-TYPE (COUNT | --reset) [--wait] [--timeout S] [--json]",
     "set how many instances of a pod type run, over the spec's count",
     "Makes a new target configuration with that count, as an update with\n"
     "it would: new instances are launched; with a lower count the highest\n"
     "indexes are drained (their decommission task) and removed, which\n"
     "needs allow-decommission: true. The count stays set across updates\n"
     "that leave the spec's count of the pod type as it was; an update\n"
     "that changes it wins (its diff says so). --reset hands the count\n"
     "back to the spec. --wait follows the plan as 'service update --wait'\n"
     "does.", NULL},
    {"autoscale", "status", cmd_autoscale_status, "[POD-TYPE] [--json]",
     "show each autoscale policy, its last values and its next action",
     "For every pod type with an `autoscale:` policy in the service's\n"
     "target spec: the policy, the count, the metric's last values (or\n"
     "its error), the last decision and when the next scale up or down\n"
     "may happen (docs/autoscaling.md). While a policy is active it owns\n"
     "the count: 'pod scale' and updates that change `count` are\n"
     "refused; change the policy's min and max instead.", NULL},
    {"endpoints", NULL, cmd_endpoints, "[NAME] [--json]",
     "list advertised endpoints, or show one's addresses",
     "Without NAME: the names of the ports the service advertises\n"
     "('advertise: true'), or a line saying it advertises none. With NAME:\n"
     "the address:port of every instance, one a line. --json gives the\n"
     "SDK's shape, whose \"dns\" entries are <node host name>:port: they\n"
     "resolve wherever the nodes' host names do (holdfast runs no DNS).", NULL},
    {"config", "list", cmd_config_list, "[--json]",
     "list a service's configuration ids", NULL, NULL},
    {"config", "show", cmd_config_show, "ID",
     "show one configuration (secrets hidden)", NULL, NULL},
    {"config", "target", cmd_config_target, "[--id]",
     "show the target configuration", NULL, NULL},
    {"node", "list", cmd_node_list, "[--json]", "list nodes and their agents",
     "One line a node, and below a node with a storage pool (its agent's\n"
     "--storage) what the pool holds.", NULL},
    {"node", "show", cmd_node_show, "NODE [--json]",
     "show one node: address, resources, limits and storage pool", NULL,
     NULL},
    {"task", "logs", cmd_task_logs, "TASK [-f] [--stderr] [--tail N]",
     "show a task's stdout (or stderr); -f follows",
     "TASK is a task name such as hello-0-server (its current launch) or\n"
     "a task id.", NULL},
    {"task", "exec", cmd_task_exec, "TASK -- CMD [ARG...]",
     "run a command in a task's sandbox with its environment",
     "For debugging: the command runs on the task's node, in its sandbox,\n"
     "with the task's environment, and its output and exit status come\n"
     "back. It is not interactive and is stopped after 120 s.", NULL},
    {"volume", "list", cmd_volume_list, "[--json]",
     "list pod volumes: in use, kept after a remove, being deleted",
     "Every pod instance's volume directory the server knows of, as\n"
     "SERVICE/INSTANCE on its node: in use by a deployed instance, kept\n"
     "(its service was removed without --delete-volumes, or a scale-in\n"
     "kept it), or being deleted. With -s SERVICE, that service's. A\n"
     "service deployed again under the same name reuses the kept volumes\n"
     "of its instances.", NULL},
    {"volume", "show", cmd_volume_show,
     "NAME [--wait] [--timeout S] [--json]",
     "show a replicated volume: size, epoch, where it is attached, replicas",
     "NAME is an external volume's name (holdfast volume list shows them):\n"
     "its owner, size, how many replicas it wants and has in sync, the\n"
     "min_sync policy, the node it is attached on at which epoch, and\n"
     "each replica's node and state (new, in_sync, resyncing with percent\n"
     "done, down, stale, deleting) with the reason of its last change.\n"
     "--wait first draws the replicas' progress (a line on stderr at each\n"
     "change) until every one is in sync.",
     NULL},
    {"volume", "resize", cmd_volume_resize, "NAME SIZE [--json]",
     "grow a replicated volume while it is in use",
     "Grows external volume NAME to SIZE (as driver-options' size: 3 is\n"
     "3 GiB; 512M, 1.5T): every replica, then the attached volume and its\n"
     "file system, without restarting its task (where the node does not\n"
     "give ext4's online resize CAP_SYS_RESOURCE, the file system grows\n"
     "at the volume's next attach). Volumes never shrink. A spec update\n"
     "that raises size in driver-options does the same.",
     NULL},
    {"volume", "snapshot", cmd_volume_snapshot,
     "NAME [--name S] [--wait] [--timeout S] [--json]",
     "take a crash-consistent snapshot of a replicated volume",
     "Takes snapshot S (default: named from the UTC time) of external\n"
     "volume NAME while its pod runs: the volume's attach process holds\n"
     "writes for a moment, flushes every replica, and each in-sync\n"
     "replica keeps that point by copy-on-write (the first write to a\n"
     "64 KiB chunk afterwards copies the old chunk aside). The volume must\n"
     "be attached. --wait returns once it is ready (or failed: exit 1).\n"
     "See also: volume snapshots, volume snapshot-delete, volume restore.",
     NULL},
    {"volume", "snapshots", cmd_volume_snapshots, "NAME [--json]",
     "list a replicated volume's snapshots",
     "Each snapshot of external volume NAME, oldest first: its state\n"
     "(taking, ready, failed, deleting), when it was taken, the volume's\n"
     "size then, and how many replicas hold it; a failed one says why.",
     NULL},
    {"volume", "snapshot-delete", cmd_volume_snapshot_delete,
     "NAME SNAPSHOT [--wait] [--timeout S] [--json]",
     "delete a snapshot of a replicated volume",
     "Deletes SNAPSHOT of external volume NAME from its replicas (at once\n"
     "when the volume is attached, else at its next attach); the other\n"
     "snapshots keep their bytes. --wait returns once it is gone.",
     NULL},
    {"volume", "clone", cmd_volume_clone,
     "NAME SNAPSHOT NEWNAME [--for-service SVC] [--wait] [--timeout S] "
     "[--json]",
     "make a new volume from a snapshot, for another service",
     "Makes external volume NEWNAME from SNAPSHOT of volume NAME, kept for\n"
     "service SVC (default: NAME's service) until an instance of it whose\n"
     "external volume has that name takes it: for a pod db with external\n"
     "volume data in service test, NEWNAME is test-db-0 (or, with a\n"
     "volume-name V, V-db-0). Each node holding the snapshot makes a\n"
     "replica from its own copy. --wait returns once they are made.",
     NULL},
    {"volume", "restore", cmd_volume_restore,
     "NAME --snapshot S [--wait] [--timeout S] [--json]\n"
     "       NEWNAME --from s3://BUCKET[/PREFIX] [--backup ID] --credential C\n"
     "       --for-service SVC [--volume NAME] [--repl N] [--wait] [--timeout S]\n"
     "       [--json]",
     "restore a volume to a snapshot, or make one from a backup",
     "Brings external volume NAME back to snapshot S: the pod that uses it\n"
     "is restarted, and the volume is attached again and rewritten from\n"
     "the snapshot on every replica (only the chunks that changed since)\n"
     "before the pod's tasks mount it. Snapshots taken after S stay.\n"
     "Every replica must be in sync and hold S. --wait returns once it\n"
     "is done.\n"
     "With --from, makes new external volume NEWNAME from backup ID\n"
     "(holdfast volume backups lists them; default: the newest) of volume\n"
     "NAME (--volume;\n"
     "default NEWNAME) in that store, read with credential C, kept for\n"
     "service SVC until an instance of it whose volume has that name\n"
     "takes it; --repl replicas (default 1), each made by its node.",
     NULL},
    {"volume", "delete", cmd_volume_delete,
     "SERVICE[/INSTANCE]|NAME [--yes] [--wait] [--timeout S] [--json]",
     "delete kept volumes (of a removed service, or one instance)",
     "Deletes volumes that no deployed instance uses: a removed service's,\n"
     "one instance's, or one replicated volume by its NAME (every replica\n"
     "of it, on every node). Asks on a terminal\n"
     "unless --yes is given. --wait returns once the agents deleted them.\n"
     "Volumes in use go with 'service remove --delete-volumes' or 'pod\n"
     "replace'.", NULL},
    {"volume", "backup", cmd_volume_backup,
     "NAME --to s3://BUCKET[/PREFIX] --credential C [--wait] [--timeout S]\n"
     "       [--json] | NAME --cancel [ID] [--json]",
     "back a replicated volume up to an S3 store",
     "Takes a snapshot of external volume NAME and has a node that holds\n"
     "it store it under s3://BUCKET/PREFIX/NAME/ with credential C: 1 MiB\n"
     "chunks, compressed, each stored once under its SHA-256, and a\n"
     "manifest per backup. The first backup to a place is full, later\n"
     "ones incremental (only what was written since the last one). An\n"
     "encrypted volume's backup holds its ciphertext. --wait draws the\n"
     "progress and returns once it is done. --cancel stops the backup\n"
     "under way (ID, or the volume's one): its node ends the process, its\n"
     "snapshot is deleted, and no server starts it again.",
     NULL},
    {"volume", "backup-schedule", cmd_volume_backup_schedule,
     "NAME (--to s3://BUCKET[/PREFIX] --credential C --every DURATION\n"
     "       [--keep N] | --off) [--json]",
     "back a volume up on a schedule, keeping the newest N backups",
     "Backs external volume NAME up every DURATION (90, 90s, 15m, 6h, 1d)\n"
     "after its last backup to the place, as 'volume backup' does, while it\n"
     "is attached. After each backup the store keeps the newest N backups\n"
     "(0, the default: all) and the chunks they use; the others are\n"
     "deleted. It goes before a pod's backup-schedule in the spec; --off\n"
     "ends it (the spec's applies again). 'volume backups NAME' shows the\n"
     "schedule that applies and when the next backup is due.",
     NULL},
    {"volume", "backups", cmd_volume_backups,
     "NAME [--from s3://BUCKET[/PREFIX] --credential C] [--json]",
     "list a volume's backups (its last one, those under way, the store's)",
     NULL, NULL},
    {"credential", "create", cmd_credential_create,
     "s3 NAME --endpoint URL [--region R] --access-key KEY\n"
     "       (--secret-key KEY | --secret-key-file FILE) [--ca FILE] [--json]\n"
     "       key NAME --value-file FILE [--json]",
     "store a named S3 credential, or a key for encrypted volumes",
     "s3: stores credential NAME for an S3-compatible store at URL (http://\n"
     "or https://, path-style requests; REGION defaults to us-east-1; --ca:\n"
     "a PEM file on the nodes to trust). The secret comes from --secret-key,\n"
     "--secret-key-file, or $HOLDFAST_S3_SECRET_KEY. Used by 'volume\n"
     "backup'.\n"
     "key: stores key NAME (64 hex digits: openssl rand -hex 32 > FILE;\n"
     "or $HOLDFAST_KEY_VALUE). An external volume with\n"
     "'secure=true;secret_key=NAME' in its driver-options has its data key\n"
     "sealed by it instead of the cluster key; its backups carry that\n"
     "sealed key, so another cluster given the same key can restore them.\n"
     "It cannot be deleted while a volume uses it.\n"
     "The server keeps secrets in its store and never shows them back.",
     NULL},
    {"credential", "list", cmd_credential_list, "[--json]",
     "list the named credentials (without their secrets)", NULL, NULL},
    {"credential", "delete", cmd_credential_delete, "NAME",
     "delete a named credential", NULL, NULL},
    {"dr", "enable", cmd_dr_enable,
     "--to REMOTE [--journal-size SIZE] [--when-full block|resync] [--wait "
     "[--timeout SECS]] [--json]",
     "replicate a service to a remote cluster: its configuration and its volumes' data",
     "The service's target configuration (spec, options, templates, counts\n"
     "set over the spec, plan parameters) is sent to REMOTE whenever it\n"
     "changes, and at least every minute, over mutual TLS; there it is a\n"
     "standby service that runs no pod and cannot be deployed meanwhile.\n"
     "Each replicated volume streams every write to a standby replica\n"
     "there (dr status shows the lag), through a journal on the primary's\n"
     "node: --journal-size (default 256MiB, from 16MiB) absorbs spikes and\n"
     "link outages; --when-full says what a full journal does: resync (the\n"
     "default: writes go on, the regions they write are copied once it\n"
     "drained; the standby is not consistent meanwhile) or block (writers\n"
     "wait for room). Enabling again to the same remote changes these.\n"
     "--wait returns once every volume's standby holds a consistent copy,\n"
     "showing the initial copy's progress.", NULL},
    {"dr", "disable", cmd_dr_disable, "",
     "stop replicating a service; its standby is told to go", NULL, NULL},
    {"dr", "failover", cmd_dr_failover, "--yes [--force] [--json]",
     "on a standby: start the service here from its standby volumes",
     "For when the primary site is lost. Each volume becomes the service's\n"
     "kept volume here, its standby replica in sync, at an epoch above the\n"
     "primary's (the old primary's stream is refused from then on), and the\n"
     "configuration the primary sent is deployed. It says the loss window:\n"
     "writes made on the primary after the standby's last applied one may\n"
     "be lost. Refused while a volume's standby copy is not known to be\n"
     "consistent, unless --force. The primary site must be down: two sites\n"
     "must never both run the service.", NULL},
    {"dr", "switchover", cmd_dr_switchover,
     "--yes [--back NAME] [--wait [--timeout SECS]] [--json]",
     "on a primary: move the service to its standby cluster, losing nothing",
     "A planned move, both sites up. Refused unless the standby holds the\n"
     "service's configuration and every volume streams to a consistent\n"
     "standby copy over a live link. The service stops here; each volume\n"
     "detaches only once its standby has every write; then the standby\n"
     "starts the service from its copies and replicates it back to this\n"
     "cluster (--back: this cluster's name there, a remote it registered;\n"
     "default its only one), and this cluster's copies go: it holds the\n"
     "standby. The service is down meanwhile. --wait follows the phases\n"
     "(stopping, promoting) until this cluster is the standby.", NULL},
    {"dr", "failback", cmd_dr_failback,
     "--yes [--back NAME] [--wait [--timeout SECS]] [--json]",
     "on an old primary: become the standby of the service that failed over",
     "After a failover to the remote, this cluster's copy of the service is\n"
     "stopped (it stops by itself once it hears from the remote that the\n"
     "service runs there: the fencing rule). failback asks the remote to\n"
     "replicate the service here (--back: this cluster's name there;\n"
     "default its only remote) and keeps this cluster's old copies of its\n"
     "volumes as the standby's: the remote sends only what differs from\n"
     "them. --wait first waits for a fenced copy still stopping here, then\n"
     "returns once every volume's copy here is consistent. Then\n"
     "`dr switchover` on the remote brings the service home.", NULL},
    {"dr", "status", cmd_dr_status, "[--json]",
     "a service's disaster recovery: primary (where to, what is there) or "
     "standby (from where, how fresh)",
     NULL, NULL},
    {"dr", "list", cmd_dr_list, "[--json]",
     "every service with disaster recovery on this cluster", NULL, NULL},
    {"remote", "add", cmd_remote_add,
     "NAME --url https://HOST:PORT --ca FILE --cert FILE --key FILE [--json]",
     "register a remote cluster (disaster recovery)",
     "NAME is the remote cluster as this one calls it; --url its servers'\n"
     "API (https: every link between sites is TLS); --ca the PEM of the CA\n"
     "its server certificate chains to; --cert and --key this cluster's\n"
     "client certificate and key (private to the user), which the remote's\n"
     "`server --client-ca` must have signed: the remote knows this cluster\n"
     "by the certificate's common name, and lets it do nothing but what\n"
     "replication needs. The key is kept in the store and never shown\n"
     "back. The leader checks the link every 5 s.", NULL},
    {"remote", "list", cmd_remote_list, "[--json]",
     "list remote clusters and the state of each link", NULL, NULL},
    {"remote", "show", cmd_remote_show, "NAME [--json]",
     "show a remote cluster and its link (state, round trip, its cluster id)",
     NULL, NULL},
    {"remote", "remove", cmd_remote_remove, "NAME",
     "forget a remote cluster (and its key)", NULL, NULL},
    {"node", "decommission", cmd_node_decommission, "NODE",
     "take a node out: its pods are replaced elsewhere with fresh volumes",
     NULL, NULL},
    {"node", "adopt", cmd_node_adopt, "NODE [--yes]",
     "let a refused agent join this cluster (stops what it does not know)",
     "An agent that belongs to another cluster, or that this server's store\n"
     "does not know (an empty, lost or replaced store), is refused: its\n"
     "tasks keep running and `node list` says why. Restore the store\n"
     "(holdfast store restore) to keep them; or adopt the node: its agent\n"
     "joins this cluster, and the desired set it gets stops every task\n"
     "this cluster does not know. Asks for confirmation on a terminal\n"
     "unless --yes is given.", NULL},
    {"node", "reset-identity", cmd_node_reset_identity, "NODE",
     "forget a node's credential, so its rebuilt agent can register again",
     "Each agent registers a credential of its own, once, with a join\n"
     "token; the server then refuses another agent claiming that node.\n"
     "When a node's machine is rebuilt (its data directory lost), reset its\n"
     "identity: the next agent to register as NODE gets it. Its tasks and\n"
     "volumes are untouched.", NULL},
    {"events", NULL, cmd_events, "[-f] [--tail N] [--since ID] [--json]",
     "show what the server changed, and why (-f follows)",
     "Every state change the server makes is an event: who, what, before\n"
     "and after, and why. With -s SERVICE only that service's events are\n"
     "shown. --tail N (-n N) starts with the last N of them; -f keeps\n"
     "following; --since ID resumes after an event.", NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
