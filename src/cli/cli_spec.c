/*
 * cli_spec.c - `holdfast spec validate|render|diff`: the spec module on the
 * command line, with no server involved.
 */
#include <ctype.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "common/err.h"
#include "spec/spec.h"

/* ------------------------------------------------------------------ */
/* Where a spec comes from                                              */

extern char **environ;

/*
 * The SDK's build tooling took TEMPLATE_<NAME> environment variables as
 * the values of its {{name}} placeholders (NAME lower-cased, '_' as '-');
 * so does holdfast when it renders a package.
 */
static void build_values(struct hf_kvlist *out)
{
	static const char pre[] = "TEMPLATE_";

	for (char **e = environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		char *name;

		if (!eq || !hf_str_has_prefix(*e, pre) ||
		    eq == *e + sizeof(pre) - 1)
			continue;
		name = hf_xstrndup(*e + sizeof(pre) - 1,
				   (size_t)(eq - *e) - (sizeof(pre) - 1));
		for (char *p = name; *p; p++)
			*p = *p == '_' ? '-' : (char)tolower((unsigned char)*p);
		hf_kvlist_set(out, name, eq + 1);
		free(name);
	}
}

static bool is_dir(const char *path)
{
	struct stat st;

	return path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int hf_cli_spec_resolve(struct hf_cli_spec_src *s)
{
	struct hf_diags diags = {0};
	int rc = 0;

	if (s->package && s->file && is_dir(s->file)) {
		fprintf(stderr, "holdfast: give the package once: --package "
				"DIR, or DIR in place of the spec\n");
		return HF_EXIT_USAGE;
	}
	if (!s->package && is_dir(s->file)) {
		s->package = s->file;
		s->file = NULL;
	}
	s->is_package = s->package != NULL;
	if (s->is_package) {
		struct hf_kvlist build = {0};
		int err;

		build_values(&build);
		err = hf_package_load(s->package, &s->options_files, &build,
				      &s->pkg, &diags);
		hf_kvlist_release(&build);
		hf_diags_sort(&diags);
		hf_diags_print(stderr, &diags);
		if (err) {
			rc = err == HF_ESPEC ? HF_EXIT_FAIL : HF_EXIT_USAGE;
			goto out;
		}
		hf_kvlist_copy(&s->options, &s->pkg.vars);
		/* -f next to --package picks another spec of the package. */
		s->spec_file = s->file ? s->file : s->pkg.spec_file;
	} else {
		for (size_t i = 0; i < s->options_files.len; i++) {
			const char *f = s->options_files.items[i];
			int err = hf_options_load_file(&s->options, f, &diags);

			if (err == HF_ENOTFOUND || err == HF_EIO) {
				fprintf(stderr,
					"holdfast: cannot read options file "
					"%s: %s\n",
					f, hf_err_msg(err));
				rc = HF_EXIT_USAGE;
			} else if (err && !rc) {
				rc = HF_EXIT_FAIL;
			}
		}
		hf_diags_print(stderr, &diags);
		s->spec_file = s->file;
	}
	/* -o wins over options files and packages, whatever the order. */
	hf_kvlist_copy(&s->options, &s->cli_opts);
out:
	hf_diags_release(&diags);
	return rc;
}

void hf_cli_spec_src_release(struct hf_cli_spec_src *s)
{
	hf_strlist_release(&s->options_files);
	hf_kvlist_release(&s->cli_opts);
	hf_strlist_release(&s->template_dirs);
	hf_kvlist_release(&s->options);
	hf_package_release(&s->pkg);
}

void hf_cli_print_pod_change(const char *pod, const char *change,
			     long long old_count, long long new_count)
{
	if (old_count == new_count)
		printf("pod %s: %s (count %lld)\n", pod, change, new_count);
	else
		printf("pod %s: %s (count %lld -> %lld)\n", pod, change,
		       old_count, new_count);
}

/* ------------------------------------------------------------------ */
/* spec validate | render | diff                                       */

struct spec_args {
	struct hf_cli_spec_src src;
	struct hf_kvlist old_options; /* --old-option (diff only) */
	bool allow_missing;
	bool json;
	int nfiles;
	char *files[2];
};

static void spec_args_release(struct spec_args *a)
{
	hf_cli_spec_src_release(&a->src);
	hf_kvlist_release(&a->old_options);
}

/*
 * Parses the flags shared by the spec commands and resolves where the spec
 * comes from. want_files: how many spec files the command takes (a
 * package stands for the one). Returns 0 or an exit code; problems are
 * printed here.
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
	    {"package", required_argument, NULL, 'P'},
	    {"json", no_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	struct hf_diags diags = {0};
	int c, rc = 0;

	/* --json before the command, as for the server's commands. */
	a->json = hf_cli_globals()->json;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (hf_options_add_arg(&a->src.cli_opts, optarg,
					       &diags))
				rc = HF_EXIT_USAGE;
			break;
		case 'O':
			if (hf_options_add_arg(&a->old_options, optarg, &diags))
				rc = HF_EXIT_USAGE;
			break;
		case 'F':
			hf_strlist_push(&a->src.options_files, optarg);
			break;
		case 'm':
			a->allow_missing = true;
			break;
		case 't':
			hf_strlist_push(&a->src.template_dirs, optarg);
			break;
		case 'P':
			a->src.package = optarg;
			break;
		case 'j':
			a->json = true;
			break;
		case ':':
			fprintf(stderr, "holdfast: %s needs a value\n",
				argv[optind - 1]);
			hf_diags_release(&diags);
			return HF_EXIT_USAGE;
		default:
			fprintf(stderr, "holdfast: unknown flag %s\n",
				argv[optind - 1]);
			hf_diags_release(&diags);
			return HF_EXIT_USAGE;
		}
	}
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
	if (want_files == 2 && a->src.package) {
		fprintf(stderr, "holdfast: spec diff compares two spec files; "
				"it takes no --package\n");
		return HF_EXIT_USAGE;
	}
	if (a->nfiles != want_files &&
	    !(want_files == 1 && a->nfiles == 0 && a->src.package)) {
		fprintf(stderr, "holdfast: expected %d spec file%s%s\n",
			want_files, want_files > 1 ? "s" : "",
			want_files == 1 ? " (or --package DIR)" : "");
		return HF_EXIT_USAGE;
	}
	if (want_files == 1) {
		a->src.file = a->files[0];
		rc = hf_cli_spec_resolve(&a->src);
		if (rc)
			return rc;
		a->files[0] = (char *)a->src.spec_file;
	} else {
		rc = hf_cli_spec_resolve(&a->src);
	}
	return rc;
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
	    .template_dirs = &a->src.template_dirs,
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

/* The plans a deploy would have, generated ones included. */
static size_t plan_count(const struct hf_spec *spec)
{
	struct hf_plan_defs defs = {0};
	size_t n;

	hf_spec_build_plans(spec, &defs);
	n = defs.len;
	hf_plan_defs_release(&defs);
	return n;
}

/*
 * Exit status: 0 valid and deployable, 1 invalid, 2 usage, 4 valid but
 * using features holdfast does not support yet (a deploy refuses it). The
 * not-supported uses are warnings here, in text and JSON alike.
 */
int hf_cmd_spec_validate(int argc, char **argv)
{
	struct spec_args a = {0};
	struct hf_spec *spec = NULL;
	struct hf_diags un = {0};
	json_t *jd = NULL;
	const char *what;
	int rc;

	rc = parse_spec_args(argc, argv, 1, &a);
	if (rc)
		goto out;
	what = a.src.is_package ? a.src.package : a.files[0];
	if (a.json)
		jd = json_array();
	rc = load_spec(a.files[0], &a.src.options, &a, &spec, jd);
	if (rc == 0 && hf_spec_check_supported(spec, &un)) {
		for (size_t i = 0; i < un.len; i++)
			un.items[i].level = HF_DIAG_WARNING;
		un.warnings = un.errors;
		un.errors = 0;
		rc = HF_EXIT_UNSUPPORTED;
	}
	if (a.json && rc != HF_EXIT_USAGE) {
		json_t *d = hf_diags_to_json(&un);
		json_t *j;

		json_array_extend(jd, d);
		json_decref(d);
		j = json_pack("{s:b, s:b, s:i, s:O}", "valid",
			      rc == 0 || rc == HF_EXIT_UNSUPPORTED,
			      "deployable", rc == 0, "exit", rc,
			      "diagnostics", jd);
		if (a.src.is_package)
			json_object_set_new(j, "spec",
					    json_string(a.files[0]));
		print_json(j);
		json_decref(j);
	} else if (rc == HF_EXIT_UNSUPPORTED) {
		hf_diags_print(stderr, &un);
		fprintf(stderr,
			"%s: holdfast cannot deploy this spec: it uses %zu "
			"feature%s holdfast does not support yet (listed "
			"above); it is otherwise valid\n",
			what, un.warnings, un.warnings == 1 ? "" : "s");
	} else if (rc == 0) {
		size_t np = plan_count(spec);

		printf("%s: valid (service '%s', %zu pod type%s, %zu plan%s)\n",
		       what, spec->name, spec->pods.len,
		       spec->pods.len == 1 ? "" : "s", np,
		       np == 1 ? "" : "s");
	}
out:
	hf_diags_release(&un);
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

/*
 * A rendered spec is not a deploy's answer: the features a deploy would
 * refuse are said on stderr (the output stays the model, text or JSON),
 * as validate says them, so that rendering never suggests all is well.
 */
static void warn_unsupported(const struct hf_spec *spec, const char *what)
{
	struct hf_diags un = {0};

	if (hf_spec_check_supported(spec, &un)) {
		for (size_t i = 0; i < un.len; i++)
			un.items[i].level = HF_DIAG_WARNING;
		un.warnings = un.errors;
		un.errors = 0;
		hf_diags_print(stderr, &un);
		fprintf(stderr,
			"%s: a deploy would refuse this spec: it uses %zu "
			"feature%s holdfast does not support yet (listed "
			"above)\n",
			what, un.warnings, un.warnings == 1 ? "" : "s");
	}
	hf_diags_release(&un);
}

int hf_cmd_spec_render(int argc, char **argv)
{
	struct spec_args a = {0};
	struct hf_spec *spec = NULL;
	int rc;

	rc = parse_spec_args(argc, argv, 1, &a);
	if (rc)
		goto out;
	rc = load_spec(a.files[0], &a.src.options, &a, &spec, NULL);
	if (rc)
		goto out;
	warn_unsupported(spec, a.src.is_package ? a.src.package : a.files[0]);
	if (a.json) {
		json_t *j = hf_spec_to_json(spec);

		if (a.src.is_package) {
			json_t *vars = json_object();

			for (size_t i = 0; i < a.src.pkg.vars.len; i++)
				json_object_set_new(
				    vars, a.src.pkg.vars.items[i].key,
				    json_string(a.src.pkg.vars.items[i].value));
			json_object_set_new(
			    j, "package",
			    json_pack("{s:s, s:s, s:o}", "dir", a.src.package,
				      "spec", a.files[0], "variables", vars));
		}
		print_json(j);
		json_decref(j);
	} else {
		if (a.src.is_package) {
			printf("package %s: spec %s, %zu variable%s\n",
			       a.src.package, a.files[0], a.src.pkg.vars.len,
			       a.src.pkg.vars.len == 1 ? "" : "s");
			for (size_t i = 0; i < a.src.pkg.vars.len; i++)
				printf("  %s=%s\n", a.src.pkg.vars.items[i].key,
				       a.src.pkg.vars.items[i].value);
		}
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

		hf_cli_print_pod_change(p->pod, change_names[p->change],
					(long long)p->old_count,
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
	hf_kvlist_copy(&old_opts, &a.src.options);
	hf_kvlist_copy(&old_opts, &a.old_options);
	rc = load_spec(a.files[0], &old_opts, &a, &old_spec, NULL);
	if (rc)
		goto out;
	rc = load_spec(a.files[1], &a.src.options, &a, &new_spec, NULL);
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
