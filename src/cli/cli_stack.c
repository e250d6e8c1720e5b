/*
 * cli_stack.c - `holdfast stack ...`: reads a stack file and the specs it
 * names (relative to it), checks them here so errors point at the
 * operator's files, and hands them to the server as one stack
 * (server/stacks.h says what it does with them).
 */
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/util.h"
#include "http/http.h"
#include "spec/stack.h"

#define STACK_FILE_MAX (16 << 20)
/* Without --timeout, how long --wait waits for a server it cannot reach. */
#define WAIT_UNREACHABLE_MS 60000

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/*
 * Reads stack file `file` and its specs into the API's body ({"file",
 * "text", "specs": {path: {"text", "templates"}}}), checking each spec
 * with its options; *name gets the stack's name. Problems are printed
 * (file:line:col); returns an exit code.
 */
static int read_stack(const char *file, json_t **body, char **name)
{
	struct hf_diags diags = {0};
	struct hf_stack *st = NULL;
	struct hf_stack_ports p = {0};
	json_t *specs = json_object();
	char *text = NULL, *copy = hf_xstrdup(file), *dir;
	int rc = HF_EXIT_FAIL;

	*body = NULL;
	*name = NULL;
	dir = dirname(copy);
	if (hf_read_file(file, STACK_FILE_MAX, &text, NULL)) {
		fprintf(stderr, "holdfast: cannot read %s\n", file);
		rc = HF_EXIT_USAGE;
		goto out;
	}
	if (hf_stack_parse(text, strlen(text), file, &st, &diags))
		goto out;
	hf_stack_ports_init(&p, st);
	for (size_t i = 0; i < st->services.len; i++) {
		const struct hf_stack_service *sv = &st->services.items[i];
		char *path = sv->spec[0] == '/'
				 ? hf_xstrdup(sv->spec)
				 : hf_xasprintf("%s/%s", dir, sv->spec);
		struct hf_kvlist options = {0};
		struct hf_spec_load_opts lo = {.options = &options,
					       .name = sv->name};
		struct hf_spec *spec = NULL;
		char *stext = NULL;
		json_t *tmpl;
		int lrc;

		hf_stack_render_options(sv, hf_stack_placeholder, st, &options, NULL);
		lrc = hf_spec_load_file(path, &lo, &spec, &diags);
		hf_kvlist_release(&options);
		if (lrc == HF_ENOTFOUND || lrc == HF_EIO) {
			char *where = hf_xasprintf("services.%s.spec", sv->key);

			hf_diags_add(&diags, HF_DIAG_ERROR, file,
				     sv->spec_pos.line, sv->spec_pos.col,
				     where, "cannot read spec %s of service %s",
				     path, sv->key);
			free(where);
			free(path);
			continue;
		}
		if (lrc || hf_spec_check_supported(spec, &diags) ||
		    hf_read_file(path, STACK_FILE_MAX, &stext, NULL)) {
			hf_spec_free(spec);
			free(path);
			continue;
		}
		hf_stack_ports_add(&p, i, spec);
		tmpl = json_object();
		for (size_t q = 0; q < spec->pods.len; q++)
			for (size_t t = 0; t < spec->pods.items[q].tasks.len;
			     t++) {
				const struct hf_spec_task *task =
				    &spec->pods.items[q].tasks.items[t];

				for (size_t k = 0; k < task->configs.len; k++)
					if (task->configs.items[k].content)
						json_object_set_new(
						    tmpl,
						    task->configs.items[k]
							.template_path,
						    json_string(
							task->configs.items[k]
							    .content));
			}
		/* Services sharing a spec file may render other templates. */
		if (json_object_get(specs, sv->spec))
			json_object_update(
			    json_object_get(json_object_get(specs, sv->spec),
					    "templates"),
			    tmpl);
		else
			json_object_set_new(specs, sv->spec,
					    json_pack("{s:s, s:O}", "text",
						      stext, "templates",
						      tmpl));
		json_decref(tmpl);
		free(stext);
		hf_spec_free(spec);
		free(path);
	}
	if (diags.errors)
		goto out;
	if (hf_stack_ports_check(&p, &diags))
		goto out;
	{
		char *base = hf_xstrdup(file);

		*body = json_pack("{s:s, s:s, s:O}", "file", basename(base),
				  "text", text, "specs", specs);
		free(base);
	}
	*name = hf_xstrdup(st->name);
	rc = HF_EXIT_OK;
out:
	if (diags.len) {
		hf_diags_sort(&diags);
		hf_diags_print(stderr, &diags);
	}
	hf_stack_ports_release(&p);
	hf_diags_release(&diags);
	hf_stack_free(st);
	json_decref(specs);
	free(text);
	free(copy);
	return rc;
}

static char *stack_path(const char *name, const char *tail)
{
	char *esc = hf_url_escape(name);
	char *p = hf_xasprintf("/v1/stacks/%s%s", esc, tail ? tail : "");

	free(esc);
	return p;
}

/* The stack's name: NAME, or the name in -f FILE. NULL after a message. */
static char *name_of(const char *arg, const char *file)
{
	char *text = NULL, *name = NULL;
	struct hf_diags d = {0};
	struct hf_stack *st = NULL;

	if (arg)
		return hf_xstrdup(arg);
	if (!file)
		return NULL;
	if (hf_read_file(file, STACK_FILE_MAX, &text, NULL)) {
		fprintf(stderr, "holdfast: cannot read %s\n", file);
	} else if (hf_stack_parse(text, strlen(text), file, &st, &d)) {
		hf_diags_print(stderr, &d);
	} else {
		name = hf_xstrdup(st->name);
	}
	hf_stack_free(st);
	hf_diags_release(&d);
	free(text);
	return name;
}

static void print_services(const json_t *stack)
{
	size_t i;
	json_t *e;

	printf("%-14s %-20s %-10s %-22s %s\n", "SERVICE", "NAME", "PHASE",
	       "PLAN", "DEPENDS ON");
	json_array_foreach(json_object_get(stack, "services"), i, e) {
		json_t *plan = json_object_get(e, "plan"), *d;
		struct hf_buf deps = HF_BUF_INIT, pl = HF_BUF_INIT;
		size_t k;

		json_array_foreach(json_object_get(e, "depends_on"), k, d)
			hf_buf_addf(&deps, "%s%s", k ? "," : "",
				    json_string_value(d));
		if (plan)
			hf_buf_addf(&pl, "%s %s", jstr(plan, "name"),
				    jstr(plan, "status"));
		printf("%-14s %-20s %-10s %-22s %s\n", jstr(e, "name"),
		       jstr(e, "service"), jstr(e, "phase"),
		       pl.len ? pl.data : "-", deps.len ? deps.data : "-");
		if (jstr(e, "message"))
			printf("  %s\n", jstr(e, "message"));
		hf_buf_release(&deps);
		hf_buf_release(&pl);
	}
}

/*
 * Polls the stack until its phase is `until` (or, for a removal, it is
 * gone), printing each service's phase as it changes. An exit code.
 */
static int wait_stack(const char *name, const char *until, double timeout_s)
{
	int64_t start = hf_mono_ms(), down_since = 0;
	char *path = stack_path(name, NULL);
	json_t *seen = json_object(), *last = NULL;
	bool json = hf_cli_globals()->json;
	int rc;

	for (;;) {
		long status;
		json_t *out = NULL, *e;
		const char *phase;
		size_t i;

		rc = hf_cli_api("GET", path, NULL, &status, &out);
		/*
		 * The server restarting, or leadership moving: the stack goes
		 * on there; so does the wait, until its timeout.
		 */
		if (rc == HF_EXIT_SERVER || (!rc && status == 503)) {
			int64_t now = hf_mono_ms();

			if (!down_since)
				down_since = now;
			if (timeout_s > 0
				? (double)(now - start) / 1000.0 < timeout_s
				: now - down_since < WAIT_UNREACHABLE_MS) {
				json_decref(out);
				rc = 0;
				sleep(1);
				continue;
			}
		} else {
			down_since = 0;
		}
		if (rc)
			break;
		if (status == 404 && !until) {
			if (!json)
				printf("stack %s is removed\n", name);
			json_decref(out);
			break;
		}
		if (status != 200) {
			rc = hf_cli_api_error(status, out);
			json_decref(out);
			break;
		}
		json_array_foreach(json_object_get(out, "services"), i, e) {
			const char *k = jstr(e, "name"), *ph = jstr(e, "phase");
			const char *was = jstr(seen, k);

			if (!json && (!was || strcmp(was, ph) != 0))
				printf("  %s: %s%s%s\n", k, ph,
				       jstr(e, "message") ? " - " : "",
				       jstr(e, "message") ? jstr(e, "message")
							  : "");
			json_object_set_new(seen, k, json_string(ph));
		}
		fflush(stdout);
		json_decref(last);
		last = out;
		phase = jstr(out, "phase");
		if (until && phase && strcmp(phase, until) == 0) {
			if (!json)
				printf("stack %s is %s\n", name, phase);
			break;
		}
		if (until && phase && strcmp(phase, "failed") == 0) {
			fprintf(stderr, "holdfast: stack %s failed:\n", name);
			json_array_foreach(json_object_get(out, "services"), i,
					   e)
				if (strcmp(jstr(e, "phase"), "failed") == 0)
					fprintf(stderr, "  %s: %s\n",
						jstr(e, "name"),
						jstr(e, "message")
						    ? jstr(e, "message")
						    : "failed");
			rc = HF_EXIT_FAIL;
			break;
		}
		if (timeout_s > 0 &&
		    (double)(hf_mono_ms() - start) / 1000.0 > timeout_s) {
			fprintf(stderr,
				"holdfast: stack %s is still %s after %.0f s\n",
				name, phase ? phase : "?", timeout_s);
			rc = HF_EXIT_FAIL;
			break;
		}
		usleep(500 * 1000);
	}
	if (json && last && until)
		hf_cli_print_json(last);
	json_decref(last);
	json_decref(seen);
	free(path);
	return rc;
}

struct stack_args {
	const char *file;
	const char *name;
	bool wait, delete_volumes;
	double timeout;
};

/* Flags of every stack command; an exit code for a bad one, else 0. */
static int parse_args(int argc, char **argv, struct stack_args *a,
		      bool want_name)
{
	static const struct option longopts[] = {
	    {"file", required_argument, NULL, 'f'},
	    {"wait", no_argument, NULL, 'w'},
	    {"timeout", required_argument, NULL, 'T'},
	    {"delete-volumes", no_argument, NULL, 'D'},
	    {"json", no_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "f:", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			a->file = optarg;
			break;
		case 'w':
			a->wait = true;
			break;
		case 'T':
			a->timeout = atof(optarg);
			break;
		case 'D':
			a->delete_volumes = true;
			break;
		case 'j':
			hf_cli_globals()->json = true;
			break;
		default:
			fprintf(stderr, "holdfast: unknown or incomplete flag %s\n",
				argv[optind - 1]);
			return HF_EXIT_USAGE;
		}
	}
	if (want_name && optind < argc)
		a->name = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "holdfast: unexpected argument %s\n",
			argv[optind]);
		return HF_EXIT_USAGE;
	}
	return 0;
}

enum stack_verb { STACK_DEPLOY, STACK_UPDATE, STACK_DIFF };

/* Prints a diff's answer: each service's change. An exit code. */
static int print_stack_diff(const json_t *out)
{
	size_t i;
	json_t *e;
	int rc = HF_EXIT_OK;

	json_array_foreach(json_object_get(out, "services"), i, e) {
		const char *ch = jstr(e, "change");

		printf("%s (%s): %s%s\n", jstr(e, "name"), jstr(e, "service"),
		       strcmp(ch, "none") == 0 ? "no change" : ch,
		       json_is_true(json_object_get(e, "endpoints_pending"))
			   ? " (its dependencies' endpoints are not known "
			     "yet)"
			   : "");
		if (jstr(e, "message"))
			printf("  %s\n", jstr(e, "message"));
		if (strcmp(ch, "update") == 0)
			hf_cli_print_diff(json_object_get(e, "diff"));
		if (strcmp(ch, "invalid") == 0 || jstr(e, "refused"))
			rc = HF_EXIT_FAIL;
	}
	return rc;
}

/* deploy, update, diff: the stack file and its specs to the server. */
static int send_stack(int argc, char **argv, enum stack_verb verb)
{
	static const char *const verbs[] = {"deploy", "update", "diff"};
	static const char *const methods[] = {"POST", "PUT", "POST"};
	static const long want[] = {201, 200, 200};
	struct stack_args a = {0};
	json_t *body = NULL, *out = NULL;
	char *name = NULL, *path = NULL;
	bool json = false;
	long status;
	int rc = parse_args(argc, argv, &a, false);

	if (rc)
		return rc;
	if (!a.file)
		return hf_cli_usage("stack", verbs[verb]);
	json = hf_cli_globals()->json;
	rc = read_stack(a.file, &body, &name);
	if (rc)
		goto out;
	path = verb == STACK_DEPLOY ? hf_xstrdup("/v1/stacks")
				    : stack_path(name, verb == STACK_DIFF
							   ? "/diff"
							   : NULL);
	rc = hf_cli_api(methods[verb], path, body, &status, &out);
	if (rc)
		goto out;
	if (status != want[verb]) {
		rc = hf_cli_api_error(status, out);
		goto out;
	}
	if (json && (verb == STACK_DIFF || !a.wait)) {
		hf_cli_print_json(out);
	} else if (verb == STACK_DIFF) {
		rc = print_stack_diff(out);
	} else if (!json) {
		size_t i;
		json_t *e;

		printf("%s stack %s:",
		       verb == STACK_UPDATE ? "updating" : "deploying", name);
		json_array_foreach(json_object_get(out, "services"), i, e)
			printf("%s %s", i ? "," : "", jstr(e, "name"));
		printf(" (in this order)\n");
	}
	if (verb != STACK_DIFF && a.wait)
		rc = wait_stack(name, "deployed", a.timeout);
out:
	json_decref(body);
	json_decref(out);
	free(name);
	free(path);
	return rc;
}

int hf_cmd_stack_deploy(int argc, char **argv)
{
	return send_stack(argc, argv, STACK_DEPLOY);
}

int hf_cmd_stack_update(int argc, char **argv)
{
	return send_stack(argc, argv, STACK_UPDATE);
}

int hf_cmd_stack_diff(int argc, char **argv)
{
	return send_stack(argc, argv, STACK_DIFF);
}

int hf_cmd_stack_status(int argc, char **argv)
{
	struct stack_args a = {0};
	json_t *out = NULL;
	char *name, *path;
	long status;
	int rc = parse_args(argc, argv, &a, true);

	if (rc)
		return rc;
	name = name_of(a.name, a.file);
	if (!name)
		return a.file ? HF_EXIT_FAIL : hf_cmd_stack_list(argc, argv);
	path = stack_path(name, NULL);
	rc = hf_cli_api("GET", path, NULL, &status, &out);
	if (!rc && status != 200)
		rc = hf_cli_api_error(status, out);
	else if (!rc && hf_cli_globals()->json)
		hf_cli_print_json(out);
	else if (!rc) {
		printf("stack %s: %s (generation %lld)\n", name,
		       jstr(out, "phase"),
		       (long long)json_integer_value(
			   json_object_get(out, "generation")));
		print_services(out);
	}
	json_decref(out);
	free(name);
	free(path);
	return rc;
}

int hf_cmd_stack_list(int argc, char **argv)
{
	json_t *out = NULL, *e, *v;
	long status;
	size_t i, k;
	int rc;

	(void)argc;
	(void)argv;
	rc = hf_cli_api("GET", "/v1/stacks", NULL, &status, &out);
	if (rc)
		return rc;
	if (status != 200) {
		rc = hf_cli_api_error(status, out);
	} else if (hf_cli_globals()->json) {
		hf_cli_print_json(json_object_get(out, "stacks"));
	} else {
		printf("%-20s %-10s %s\n", "STACK", "PHASE", "SERVICES");
		json_array_foreach(json_object_get(out, "stacks"), i, e) {
			printf("%-20s %-10s ", jstr(e, "name"),
			       jstr(e, "phase"));
			json_array_foreach(json_object_get(e, "services"), k,
					   v)
				printf("%s%s(%s)", k ? " " : "",
				       jstr(v, "name"), jstr(v, "phase"));
			printf("\n");
		}
	}
	json_decref(out);
	return rc;
}

int hf_cmd_stack_remove(int argc, char **argv)
{
	struct stack_args a = {0};
	json_t *out = NULL;
	char *name, *path, *q;
	long status;
	int rc = parse_args(argc, argv, &a, true);

	if (rc)
		return rc;
	name = name_of(a.name, a.file);
	if (!name)
		return a.file ? HF_EXIT_FAIL : hf_cli_usage("stack", "remove");
	q = stack_path(name, NULL);
	path = hf_xasprintf("%s%s", q,
			    a.delete_volumes ? "?delete_volumes=true" : "");
	free(q);
	rc = hf_cli_api("DELETE", path, NULL, &status, &out);
	if (!rc && status != 202) {
		rc = hf_cli_api_error(status, out);
	} else if (!rc) {
		if (hf_cli_globals()->json && !a.wait)
			hf_cli_print_json(out);
		else if (!hf_cli_globals()->json)
			printf("removing stack %s (dependents first); volumes "
			       "%s\n",
			       name,
			       a.delete_volumes ? "are deleted" : "are kept");
		if (a.wait)
			rc = wait_stack(name, NULL, a.timeout);
	}
	json_decref(out);
	free(name);
	free(path);
	return rc;
}
