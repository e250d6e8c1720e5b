/*
 * cli_spec.c - `holdfast spec validate|render|diff`: the spec module on the
 * command line, with no server involved.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/err.h"
#include "spec/spec.h"

struct spec_args {
	struct hf_kvlist options;     /* -o and --options, in order */
	struct hf_kvlist old_options; /* --old-option (diff only) */
	struct hf_strlist template_dirs;
	bool allow_missing;
	bool json;
	int nfiles;
	char *files[2];
};

static void spec_args_release(struct spec_args *a)
{
	hf_kvlist_release(&a->options);
	hf_kvlist_release(&a->old_options);
	hf_strlist_release(&a->template_dirs);
}

/*
 * Parses the flags shared by the spec commands. Returns 0 or an exit code;
 * problems with option values are printed here.
 */
static int parse_spec_args(int argc, char **argv, int want_files,
			   struct spec_args *a)
{
	static const struct option longopts[] = {
	    {"option", required_argument, NULL, 'o'},
	    {"options", required_argument, NULL, 'F'},
	    {"old-option", required_argument, NULL, 'O'},
	    {"allow-missing", no_argument, NULL, 'm'},
	    {"template-dir", required_argument, NULL, 't'},
	    {"json", no_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	struct hf_diags diags = {0};
	struct hf_kvlist cli_opts = {0};
	int c, rc = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			/* -o wins over options files, whatever the order. */
			if (hf_options_add_arg(&cli_opts, optarg, &diags))
				rc = HF_EXIT_USAGE;
			break;
		case 'O':
			if (hf_options_add_arg(&a->old_options, optarg, &diags))
				rc = HF_EXIT_USAGE;
			break;
		case 'F': {
			int err = hf_options_load_file(&a->options, optarg,
						       &diags);
			if (err == HF_ENOTFOUND || err == HF_EIO) {
				fprintf(stderr,
					"holdfast: cannot read options file "
					"%s: %s\n",
					optarg, hf_err_msg(err));
				rc = HF_EXIT_USAGE;
			} else if (err) {
				rc = HF_EXIT_FAIL;
			}
			break;
		}
		case 'm':
			a->allow_missing = true;
			break;
		case 't':
			hf_strlist_push(&a->template_dirs, optarg);
			break;
		case 'j':
			a->json = true;
			break;
		case ':':
			fprintf(stderr, "holdfast: %s needs a value\n",
				argv[optind - 1]);
			hf_kvlist_release(&cli_opts);
			hf_diags_release(&diags);
			return HF_EXIT_USAGE;
		default:
			fprintf(stderr, "holdfast: unknown flag %s\n",
				argv[optind - 1]);
			hf_kvlist_release(&cli_opts);
			hf_diags_release(&diags);
			return HF_EXIT_USAGE;
		}
	}
	hf_kvlist_copy(&a->options, &cli_opts);
	hf_kvlist_release(&cli_opts);
	if (diags.len) {
		hf_diags_print(stderr, &diags);
		hf_diags_release(&diags);
	}
	if (rc)
		return rc;
	for (int i = optind; i < argc; i++) {
		if (a->nfiles >= want_files) {
			fprintf(stderr, "holdfast: unexpected argument '%s'\n",
				argv[i]);
			return HF_EXIT_USAGE;
		}
		a->files[a->nfiles++] = argv[i];
	}
	if (a->nfiles != want_files) {
		fprintf(stderr, "holdfast: expected %d spec file%s\n",
			want_files, want_files > 1 ? "s" : "");
		return HF_EXIT_USAGE;
	}
	return 0;
}

static void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (s) {
		puts(s);
		free(s);
	}
}

/*
 * Loads one spec and prints its diagnostics (to stderr, or as JSON when
 * json_diags is given). Returns 0, or the exit code to use.
 */
static int load_spec(const char *file, const struct hf_kvlist *options,
		     const struct spec_args *a, struct hf_spec **out,
		     json_t *json_diags)
{
	struct hf_spec_load_opts lo = {
	    .options = options,
	    .allow_missing = a->allow_missing,
	    .template_dirs = &a->template_dirs,
	};
	struct hf_diags diags = {0};
	int err;

	err = hf_spec_load_file(file, &lo, out, &diags);
	if (err == HF_ENOTFOUND || err == HF_EIO || err == HF_ETOOBIG) {
		fprintf(stderr, "holdfast: cannot read %s: %s\n", file,
			err == HF_ENOTFOUND ? "no such file"
					    : hf_err_msg(err));
		hf_diags_release(&diags);
		return HF_EXIT_USAGE;
	}
	if (json_diags) {
		json_t *d = hf_diags_to_json(&diags);

		json_array_extend(json_diags, d);
		json_decref(d);
	} else {
		hf_diags_print(stderr, &diags);
	}
	hf_diags_release(&diags);
	return err ? HF_EXIT_FAIL : 0;
}

int hf_cmd_spec_validate(int argc, char **argv)
{
	struct spec_args a = {0};
	struct hf_spec *spec = NULL;
	json_t *jd = NULL;
	int rc;

	rc = parse_spec_args(argc, argv, 1, &a);
	if (rc)
		goto out;
	if (a.json)
		jd = json_array();
	rc = load_spec(a.files[0], &a.options, &a, &spec, jd);
	if (a.json && rc != HF_EXIT_USAGE) {
		json_t *j = json_pack("{s:b, s:O}", "valid", rc == 0,
				      "diagnostics", jd);
		print_json(j);
		json_decref(j);
	} else if (rc == 0) {
		struct hf_diags un = {0};

		if (hf_spec_check_supported(spec, &un)) {
			for (size_t i = 0; i < un.len; i++)
				un.items[i].level = HF_DIAG_WARNING;
			hf_diags_print(stderr, &un);
			fprintf(stderr,
				"%s: valid, but holdfast refuses to deploy it "
				"until the features above are supported\n",
				a.files[0]);
		}
		hf_diags_release(&un);
		printf("%s: valid (service '%s', %zu pod type%s, %zu plan%s)\n",
		       a.files[0], spec->name, spec->pods.len,
		       spec->pods.len == 1 ? "" : "s", spec->plans.len,
		       spec->plans.len == 1 ? "" : "s");
	}
out:
	json_decref(jd);
	hf_spec_free(spec);
	spec_args_release(&a);
	return rc;
}

static void print_plan_tree(const struct hf_plan_def *p)
{
	printf("plan %s (%s%s, strategy %s)\n", p->name,
	       p->kind == HF_PLAN_DEPLOY   ? "deploy"
	       : p->kind == HF_PLAN_UPDATE ? "update"
					   : "custom",
	       p->generated ? ", generated" : "", hf_strategy_name(p->strategy));
	for (size_t i = 0; i < p->phases.len; i++) {
		const struct hf_plan_phase_def *ph = &p->phases.items[i];

		printf("  phase %s (pod %s, strategy %s)\n", ph->name, ph->pod,
		       hf_strategy_name(ph->strategy));
		for (size_t k = 0; k < ph->steps.len; k++)
			printf("    step %s\n", ph->steps.items[k].name);
	}
}

static void print_spec_human(const struct hf_spec *spec)
{
	struct hf_plan_defs defs = {0};

	printf("service %s\n", spec->name);
	if (spec->scheduler_user)
		printf("  user %s\n", spec->scheduler_user);
	for (size_t i = 0; i < spec->pods.len; i++) {
		const struct hf_spec_pod *pod = &spec->pods.items[i];

		printf("pod %s: count %lld%s\n", pod->name,
		       (long long)pod->count,
		       pod->allow_decommission ? ", allow-decommission" : "");
		for (size_t t = 0; t < pod->tasks.len; t++) {
			const struct hf_spec_task *task = &pod->tasks.items[t];
			const struct hf_spec_resource_set *rs =
			    &pod->resource_sets.items[task->resource_set];

			printf("  task %s: goal %s, resource-set %s, cpus %g, "
			       "memory %g MB%s\n",
			       task->name, hf_goal_name(task->goal), rs->name,
			       rs->cpus, rs->memory_mb,
			       task->essential ? "" : ", non-essential");
		}
	}
	hf_spec_build_plans(spec, &defs);
	for (size_t i = 0; i < defs.len; i++)
		print_plan_tree(&defs.items[i]);
	hf_plan_defs_release(&defs);
}

int hf_cmd_spec_render(int argc, char **argv)
{
	struct spec_args a = {0};
	struct hf_spec *spec = NULL;
	int rc;

	rc = parse_spec_args(argc, argv, 1, &a);
	if (rc)
		goto out;
	rc = load_spec(a.files[0], &a.options, &a, &spec, NULL);
	if (rc)
		goto out;
	if (a.json) {
		json_t *j = hf_spec_to_json(spec);

		print_json(j);
		json_decref(j);
	} else {
		print_spec_human(spec);
	}
out:
	hf_spec_free(spec);
	spec_args_release(&a);
	return rc;
}

static void print_diff_human(const struct hf_spec_diff *d)
{
	static const char *change_names[] = {"unchanged", "changed", "added",
					     "removed"};

	for (size_t i = 0; i < d->changes.len; i++)
		printf("service: %s\n", d->changes.items[i]);
	for (size_t i = 0; i < d->pods.len; i++) {
		const struct hf_pod_diff *p = &d->pods.items[i];

		printf("pod %s: %s (count %lld -> %lld)\n", p->pod,
		       change_names[p->change], (long long)p->old_count,
		       (long long)p->new_count);
		for (size_t k = 0; k < p->changes.len; k++)
			printf("  change   %s\n", p->changes.items[k]);
		for (size_t k = 0; k < p->relaunch.len; k++)
			printf("  relaunch %s\n", p->relaunch.items[k]);
		for (size_t k = 0; k < p->added.len; k++)
			printf("  add      %s\n", p->added.items[k]);
		for (size_t k = 0; k < p->removed.len; k++)
			printf("  remove   %s\n", p->removed.items[k]);
	}
	for (size_t i = 0; i < d->refusals.len; i++)
		printf("refused: %s\n", d->refusals.items[i]);
	if (hf_spec_diff_is_empty(d))
		printf("no changes\n");
	else if (d->refusals.len)
		printf("the change would be refused (%zu reason%s)\n",
		       d->refusals.len, d->refusals.len == 1 ? "" : "s");
	else
		printf("the change is allowed\n");
}

int hf_cmd_spec_diff(int argc, char **argv)
{
	struct spec_args a = {0};
	struct hf_spec *old_spec = NULL, *new_spec = NULL;
	struct hf_kvlist old_opts = {0};
	struct hf_spec_diff d = {0};
	int rc;

	rc = parse_spec_args(argc, argv, 2, &a);
	if (rc)
		goto out;
	hf_kvlist_copy(&old_opts, &a.options);
	hf_kvlist_copy(&old_opts, &a.old_options);
	rc = load_spec(a.files[0], &old_opts, &a, &old_spec, NULL);
	if (rc)
		goto out;
	rc = load_spec(a.files[1], &a.options, &a, &new_spec, NULL);
	if (rc)
		goto out;
	hf_spec_diff(old_spec, new_spec, &d);
	if (a.json) {
		json_t *j = hf_spec_diff_to_json(&d);

		print_json(j);
		json_decref(j);
	} else {
		print_diff_human(&d);
	}
	rc = d.refusals.len ? HF_EXIT_FAIL : HF_EXIT_OK;
out:
	hf_spec_diff_release(&d);
	hf_kvlist_release(&old_opts);
	hf_spec_free(old_spec);
	hf_spec_free(new_spec);
	spec_args_release(&a);
	return rc;
}
