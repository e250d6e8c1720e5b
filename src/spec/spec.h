/*
 * spec.h - the service spec: rendering, parsing, validation, default plans
 * and configuration diffs.
 *
 * A spec is a mustache template (hf_mustache_render) rendered with options
 * (hf_options_*) into YAML, parsed into the model below (hf_spec_load*),
 * validated as a whole (every problem is reported at once, as hf_diag entries
 * with file:line:col and the spec path), and then used to build the plans a
 * service runs (hf_spec_build_plans) and to judge a change
 * (hf_spec_diff).
 *
 * This module is pure: it reads the files it is told to read (the spec,
 * option files, config templates) and never prints, logs or exits. All
 * memory in a struct hf_spec is owned by it and freed by hf_spec_free().
 */
#ifndef HF_SPEC_SPEC_H
#define HF_SPEC_SPEC_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/util.h"

/* ------------------------------------------------------------------ */
/* Diagnostics                                                          */

enum hf_diag_level {
	HF_DIAG_ERROR,
	HF_DIAG_WARNING,
};

struct hf_diag {
	enum hf_diag_level level;
	char *file; /* may be NULL for input without a file name */
	int line;   /* 1-based; 0 when unknown */
	int col;    /* 1-based; 0 when unknown */
	char *path; /* spec path such as "pods.world.tasks.server.cpus"; may be "" */
	char *msg;  /* one plain sentence */
};

struct hf_diags {
	struct hf_diag *items;
	size_t len, cap;
	size_t errors, warnings;
};

void hf_diags_release(struct hf_diags *d);
void hf_diags_add(struct hf_diags *d, enum hf_diag_level level,
		  const char *file, int line, int col, const char *path,
		  const char *fmt, ...) HF_PRINTF(7, 8);
/* Sorts by file, line, column (stable), so output reads top to bottom. */
void hf_diags_sort(struct hf_diags *d);
/* Writes "file:line:col: error: path: message" lines. */
void hf_diags_print(FILE *f, const struct hf_diags *d);

/* ------------------------------------------------------------------ */
/* Mustache templates                                                  */

/* Maps output line N (1-based, index N-1) to the template line it came from. */
struct hf_linemap {
	int *items;
	size_t len, cap;
};
void hf_linemap_release(struct hf_linemap *m);
/* Returns the source line for an output line (identity when unmapped). */
int hf_linemap_lookup(const struct hf_linemap *m, int out_line);

/*
 * Renders a mustache template: {{VAR}} and {{{VAR}}} (holdfast never
 * HTML-escapes: specs are YAML, not HTML, as in the SDK), {{#VAR}}..{{/VAR}}
 * (rendered when VAR is set and not "false" or empty), {{^VAR}}..{{/VAR}}
 * (the inverse), {{! comments }}. Standalone section lines are removed as
 * the mustache spec says.
 *
 * A variable that is used but missing from vars is an error naming it and
 * its line, unless allow_missing is set, in which case it renders empty.
 * Section tags never count as missing (an unset section is simply false).
 *
 * file names the template in diagnostics (may be NULL). On success returns 0
 * and *out owns the rendered text; map (optional) receives the line map. On
 * failure returns HF_ESPEC with the reasons in diags and *out = NULL.
 */
int hf_mustache_render(const char *tmpl, size_t len,
		       const struct hf_kvlist *vars, bool allow_missing,
		       const char *file, char **out, struct hf_linemap *map,
		       struct hf_diags *diags);

/* A variable a template uses, at its first use. */
struct hf_mustache_use {
	char *name;
	int line, col;
};
struct hf_mustache_uses {
	struct hf_mustache_use *items;
	size_t len, cap;
};
void hf_mustache_uses_release(struct hf_mustache_uses *u);

/*
 * Renders as hf_mustache_render does, except that a variable used (outside
 * false sections) but unset is not an error: it renders empty and is
 * appended to *missing once, at its first use (at most 100 names). The
 * caller says what a missing variable means and how to give it. Template
 * syntax problems are still errors in diags.
 */
int hf_mustache_render_missing(const char *tmpl, size_t len,
			       const struct hf_kvlist *vars, const char *file,
			       char **out, struct hf_linemap *map,
			       struct hf_mustache_uses *missing,
			       struct hf_diags *diags);

/* ------------------------------------------------------------------ */
/* Options                                                             */

/*
 * Adds a "KEY=VALUE" argument (from -o) to vars. Returns 0, or HF_EINVAL
 * when the argument has no '=' or the key is empty (diags say why).
 */
int hf_options_add_arg(struct hf_kvlist *vars, const char *arg,
		       struct hf_diags *diags);
/*
 * Loads an options file: a JSON object or YAML mapping of scalar values
 * (strings, numbers, booleans; null becomes ""). Nested objects and lists
 * are errors naming the key and its line. Later values replace earlier ones.
 * Returns 0, HF_ENOTFOUND / HF_EIO (file), or HF_ESPEC (diags say why).
 */
int hf_options_load_file(struct hf_kvlist *vars, const char *path,
			 struct hf_diags *diags);

/* ------------------------------------------------------------------ */
/* SDK packages (package.c)                                             */

/*
 * A DC/OS SDK package, as the SDK shipped a service to DC/OS:
 *   universe/config.json            the options' JSON schema, with defaults
 *   universe/marathon.json.mustache the scheduler's Marathon app; its
 *                                   "env" holds the spec's variables
 *   universe/resource.json          artifact URIs (resource.assets.uris)
 *   universe/package.json           name and version
 *   src/main/dist/<name>.yml        the specs and their config templates
 * It is rendered as DC/OS did: the schema's defaults, the user's options
 * (`dcos package install --options FILE`) merged over them and validated
 * against the schema, then the Marathon template rendered with them and
 * `resource`, its env taken as the spec's template variables.
 */
struct hf_package_file {
	const char *name; /* for messages */
	const char *text; /* NULL when the file does not exist */
	size_t len;
};

struct hf_package_input {
	struct hf_package_file config;   /* required */
	struct hf_package_file marathon; /* required */
	struct hf_package_file resource; /* optional */
	struct hf_package_file package;  /* optional: name, version */
	const struct hf_package_file *options; /* user options, later win */
	size_t noptions;
	/*
	 * Values of the SDK build tooling's placeholders ("artifact-dir",
	 * "package-version", ...); may be NULL. Missing ones are filled as
	 * docs/spec.md says, or render empty with a warning.
	 */
	const struct hf_kvlist *build;
};

struct hf_package {
	struct hf_kvlist vars; /* the Marathon app's env: template variables */
	char *spec_name;       /* the spec is src/main/dist/<spec_name>.yml */
	char *spec_file;       /* hf_package_load: that file's path */
	char *dir;             /* hf_package_load: the package directory */
	struct json_t *options; /* the merged, validated options */
};

/*
 * Renders a package held in memory. On success returns 0 and fills *out
 * (release it with hf_package_release); warnings may be in diags. On
 * failure returns HF_ESPEC with every reason in diags, each at the file
 * and line at fault (config.json, an options file, resource.json or the
 * Marathon template), and *out is empty.
 */
int hf_package_render(const struct hf_package_input *in, struct hf_package *out,
		      struct hf_diags *diags);
/*
 * Reads the package in dir and the options files, renders it, and finds
 * its spec: src/main/dist/<service.yaml option>.yml (hello-world's
 * choice), else src/main/dist/svc.yml. artifact-dir defaults to
 * file://<dir>/artifacts and package-name to package.json's name or the
 * directory's. Returns 0, HF_ENOTFOUND / HF_EIO (a file), or HF_ESPEC;
 * diags say why.
 */
int hf_package_load(const char *dir, const struct hf_strlist *options_files,
		    const struct hf_kvlist *build, struct hf_package *out,
		    struct hf_diags *diags);
void hf_package_release(struct hf_package *p);

/* ------------------------------------------------------------------ */
/* The model                                                            */

enum hf_goal {
	HF_GOAL_RUNNING,
	HF_GOAL_FINISH, /* "FINISHED" is accepted as the SDK's spelling */
	HF_GOAL_ONCE,
};

enum hf_strategy {
	HF_STRATEGY_SERIAL,
	HF_STRATEGY_PARALLEL,
	HF_STRATEGY_SERIAL_CANARY, /* also "canary" */
	HF_STRATEGY_PARALLEL_CANARY,
};

enum hf_volume_type {
	HF_VOLUME_ROOT,
	HF_VOLUME_MOUNT,
};

enum hf_check_kind {
	HF_CHECK_NONE,
	HF_CHECK_CMD,
	HF_CHECK_HTTP, /* holdfast extension */
	HF_CHECK_TCP,  /* holdfast extension */
};

/* Source position of a model element in the (original) spec file. */
struct hf_pos {
	int line, col;
};

struct hf_spec_volume {
	char *name; /* key under `volumes:`; "" for a single `volume:` */
	char *path; /* relative to the task sandbox */
	enum hf_volume_type type;
	int64_t size_mb;
	struct hf_strlist profiles; /* SDK volume profiles: not supported yet */
	struct hf_pos pos;      /* the volume's key */
	struct hf_pos path_pos; /* its path value */
};

struct hf_spec_port_range {
	int64_t begin; /* -1 when open */
	int64_t end;   /* -1 when open */
};

struct hf_spec_port {
	char *name;
	int64_t port;  /* 0 = dynamic */
	char *env_key; /* NULL = PORT_<NAME> */
	bool advertise;
	bool has_vip;
	int64_t vip_port;
	char *vip_prefix;   /* NULL = port name */
	char *vip_protocol; /* NULL = tcp */
	struct {
		struct hf_spec_port_range *items;
		size_t len, cap;
	} ranges;
	struct hf_pos pos;       /* the port's key */
	struct hf_pos value_pos; /* its `port` value */
};

struct hf_spec_rlimit {
	char *name; /* RLIMIT_* */
	int resource; /* RLIMIT_* value from <sys/resource.h> */
	bool has_soft, has_hard;
	int64_t soft, hard; /* -1 = unlimited */
};

/*
 * A resource set: the resources and volumes that tasks use in turn. A task
 * without `resource-set:` gets an implicit one named "<task>-resource-set".
 */
struct hf_spec_resource_set {
	char *name;
	bool implicit;
	double cpus;   /* 0 = not set */
	double gpus;
	double memory_mb; /* 0 = not set */
	/* resource-limits: < 0 means unlimited, 0 means not set */
	double limit_cpus;
	double limit_memory_mb;
	bool has_limits;
	struct {
		struct hf_spec_port *items;
		size_t len, cap;
	} ports;
	struct {
		struct hf_spec_volume *items;
		size_t len, cap;
	} volumes;
	struct hf_pos pos;
};

struct hf_spec_check {
	enum hf_check_kind kind;
	char *cmd;       /* HF_CHECK_CMD */
	char *port;      /* HTTP/TCP: a port name of the task, or a number */
	char *http_path; /* HTTP: request path, default "/" */
	double interval, delay, timeout, grace_period; /* seconds */
	int64_t max_consecutive_failures;
	struct hf_pos pos;      /* the check's key */
	struct hf_pos port_pos; /* its http/tcp port value */
};

struct hf_spec_config {
	char *name;
	char *template_path; /* as written */
	char *dest;
	char *content; /* the template, read when the spec was loaded */
	char *source;  /* the file it was read from (for messages); may be NULL */
};

struct hf_spec_tls {
	char *name;
	char *type; /* TLS or KEYSTORE */
};

struct hf_spec_task {
	char *name;
	enum hf_goal goal;
	bool essential;
	char *cmd;
	struct hf_kvlist env;
	struct {
		struct hf_spec_config *items;
		size_t len, cap;
	} configs;
	/* Index into the pod's resource_sets (explicit or implicit). */
	size_t resource_set;
	char *resource_set_name; /* as written; NULL when implicit */
	struct hf_spec_check health;
	struct hf_spec_check readiness;
	int64_t kill_grace_period; /* seconds */
	char *discovery_prefix;
	char *discovery_visibility;
	struct hf_kvlist labels;
	struct {
		struct hf_spec_tls *items;
		size_t len, cap;
	} tls;
	char *ipc_mode; /* NULL, PRIVATE or SHARE_PARENT */
	int64_t shm_size;
	struct hf_pos pos;           /* the task's key */
	struct hf_pos rs_pos;        /* its `resource-set` value */
	struct hf_pos discovery_pos; /* its discovery prefix value */
};

/* One parsed constraint: field, operator and optional argument. */
struct hf_spec_constraint {
	char *field;
	char *op; /* UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER, IS, IS_NOT */
	char *arg; /* may be NULL */
};

struct hf_spec_network {
	char *name;
	struct hf_kvlist labels;
	struct {
		int64_t *items;
		size_t len, cap;
	} host_ports, container_ports;
};

struct hf_spec_secret {
	char *name;
	char *secret;
	char *env_key;
	char *file;
};

struct hf_spec_host_volume {
	char *name;
	char *host_path;
	char *container_path;
	char *mode; /* RW or RO */
};

/*
 * The driver-options of an external volume served by holdfast (driver
 * `holdfast` or `pxd`): the SDK's "key=value;key=value" scalar, read as
 * Portworx reads it (docs/spec.md, "External volumes").
 */
struct hf_spec_volopts {
	int64_t size_bytes; /* a whole number of MiB; default 1 GiB */
	unsigned repl;      /* 1..3; default 1 */
	unsigned min_sync;  /* 1..repl; default repl - 1, at least 1 */
	bool shared;        /* one volume for all instances (refused) */
	bool secure;        /* encrypted (volume/crypt.h) */
	/*
	 * secret_key=NAME: the data key is sealed by named key NAME
	 * (`holdfast credential create key`) rather than the cluster key;
	 * "" for the cluster key. Only with secure=true.
	 */
	char secret_key[65];
	/*
	 * fs=ext4|xfs|auto (Portworx's option): the file system made on
	 * it (HF_FS_*). XFS grows online with CAP_SYS_ADMIN alone (ext4's
	 * online resize wants CAP_SYS_RESOURCE too); it needs size >= 320M.
	 * auto, the default: the attach process that formats it makes an
	 * XFS where it lacks CAP_SYS_RESOURCE and the volume is that large,
	 * else an ext4, so that a volume grows online wherever it can.
	 */
	int fs;
};

enum { HF_FS_AUTO, HF_FS_EXT4, HF_FS_XFS };

#define HF_VOLOPTS_MIN_SIZE ((int64_t)64 << 20) /* ext4 with a journal */
#define HF_VOLOPTS_MIN_XFS_SIZE ((int64_t)320 << 20)
#define HF_VOLOPTS_MAX_SIZE ((int64_t)64 << 40)
#define HF_VOLOPTS_DEFAULT_SIZE ((int64_t)1 << 30)
#define HF_VOLOPTS_MAX_REPL 3

/* One thing wrong (or doubtful) in a driver-options string. */
struct hf_volopts_problem {
	bool warning;  /* accepted, but the user should know */
	size_t offset; /* byte offset in the string of the key at fault */
	char *msg;     /* one sentence naming the key and what it allows */
};

struct hf_volopts_problems {
	struct hf_volopts_problem *items;
	size_t len, cap;
	size_t errors;
};
void hf_volopts_problems_release(struct hf_volopts_problems *p);

/*
 * Parses a driver-options string of len bytes (it may hold NULs; NULL with
 * len 0 is the empty string, which means every default). Fills *out with
 * the defaults and then the options given. Every problem found is
 * appended to *problems, in string order, with the offset of its key.
 * Returns 0 when there is no error (warnings may be there), HF_ESPEC when
 * there is one; *out is then still filled with what could be read.
 */
int hf_spec_volopts_parse(const char *s, size_t len,
			  struct hf_spec_volopts *out,
			  struct hf_volopts_problems *problems);

/*
 * Whether to is a place in an S3 store as backups take it:
 * "s3://BUCKET" or "s3://BUCKET/PREFIX", without a trailing '/', a '?'
 * or a space.
 */
bool hf_spec_s3_place_ok(const char *to);

/* Whether a driver-name is one holdfast serves ("holdfast" or "pxd"). */
bool hf_spec_volume_driver_ok(const char *driver);

struct hf_spec_external_volume {
	char *name;
	char *type;
	char *container_path;
	char *driver_name;
	char *driver_options;
	char *volume_name;
	char *volume_mode;
	/*
	 * Parsed driver-options, when the driver is one holdfast serves
	 * (has_opts); the defaults otherwise.
	 */
	struct hf_spec_volopts opts;
	bool has_opts;
	struct hf_pos pos;          /* the volume's key */
	struct hf_pos type_pos;     /* its values; the key's when absent */
	struct hf_pos driver_pos;
	struct hf_pos options_pos;
	struct hf_pos name_pos;     /* volume-name */
};

/*
 * The cluster-wide name of instance <pod>-<index>'s external volume, as
 * the SDK's Portworx provider makes it: base = volume-name when given,
 * else "<service>-<pod>"; '/' in base (a service in a folder) written as
 * "__"; then base itself for a shared volume, else "<base>-<index>". The
 * one place such names are made. Returns a string the caller frees, or
 * NULL when base already holds "__" (the SDK refuses it; validation
 * reports it, so a valid spec never gets NULL).
 */
char *hf_spec_external_volume_name(const char *service, const char *pod,
				   int64_t index,
				   const struct hf_spec_external_volume *ev);

/* The most instances of a pod type a spec (or a count set over it) asks. */
#define HF_SPEC_POD_COUNT_MAX 100000

/* Where an autoscale policy's metric comes from (docs/autoscaling.md). */
enum hf_as_source {
	HF_AS_COMMAND = 1, /* a command run in a task of the pod (its stdout) */
	HF_AS_HTTP,        /* an HTTP endpoint: a number, or JSON and a path */
	HF_AS_PROMETHEUS,  /* a Prometheus server's instant query */
	HF_AS_METRICS,     /* the pod's tasks' own Prometheus endpoints */
};

/*
 * holdfast `autoscale:` of a pod type: the autoscaler owns its count
 * within [min, max], evaluating the metric every `interval` seconds.
 * Thresholds (has_up / has_down: above, below, step) or a target value
 * per instance (has_target: desired = ceil(value / target), held within
 * the tolerance); cooldowns apart for each direction; `samples`
 * evaluations in a row agreeing before it acts; on a metric error it
 * holds, or goes to error_count (>= 0) after `samples` errors in a row.
 * dry_run: decisions are events only, the count stays the operator's.
 */
struct hf_spec_autoscale {
	int64_t min, max;
	double interval, timeout;
	int64_t samples;
	bool dry_run;
	enum hf_as_source source;
	char *command;   /* COMMAND */
	char *task;      /* COMMAND: the task of the pod it runs in (NULL: the
			    first task whose goal is RUNNING) */
	char *url;       /* HTTP, PROMETHEUS */
	char *json_path; /* HTTP: "a.b.0" into the JSON answer; NULL: a number */
	char *query;     /* PROMETHEUS */
	char *port;      /* METRICS: the port's name (or a number) */
	char *path;      /* METRICS: default /metrics */
	char *sample;    /* METRICS: the sample's name (its series summed) */
	char *aggregate; /* METRICS: sum (default), avg, max or min */
	bool has_up, has_down, has_target;
	double above, below, target, tolerance;
	int64_t up_step, down_step;
	double up_cooldown, down_cooldown;
	int64_t error_count; /* -1: hold */
	struct hf_pos pos;
};
/* Frees a policy and its strings (NULL: nothing). */
void hf_spec_autoscale_free(struct hf_spec_autoscale *a);
/* The policy as JSON (the spec's key names; the API shows it). */
struct json_t *hf_spec_autoscale_json(const struct hf_spec_autoscale *a);
/* A pod's snapshot-hooks and backup-schedule as JSON; NULL when unset. */
struct hf_spec_pod;
struct json_t *hf_spec_hooks_json(const struct hf_spec_pod *pod);
struct json_t *hf_spec_backup_schedule_json(const struct hf_spec_pod *pod);

struct hf_spec_pod {
	char *name;
	/*
	 * The instances to run: the spec's count, or the count set over it
	 * (hf_spec_load_opts.counts) when there is one. spec_count is the
	 * spec's own.
	 */
	int64_t count;
	int64_t spec_count;
	bool allow_decommission;
	char *placement; /* as written; NULL when absent */
	struct {
		struct hf_spec_constraint *items;
		size_t len, cap;
	} constraints;
	struct hf_strlist uris;
	/* Pod-level volumes: shared by all tasks of the instance. */
	struct {
		struct hf_spec_volume *items;
		size_t len, cap;
	} volumes;
	/* Explicit resource sets first, then implicit ones, in task order. */
	struct {
		struct hf_spec_resource_set *items;
		size_t len, cap;
	} resource_sets;
	struct {
		struct hf_spec_rlimit *items;
		size_t len, cap;
	} rlimits;
	char *pre_reserved_role;
	char *image;
	char *user; /* the pod's tasks run as this user (over scheduler's) */
	/*
	 * ext: capabilities its tasks get beyond the default ("CAP_..."
	 * names), or the one entry "ALL" for every capability (privileged).
	 */
	struct hf_strlist capabilities;
	struct {
		struct hf_spec_network *items;
		size_t len, cap;
	} networks;
	struct {
		struct hf_spec_secret *items;
		size_t len, cap;
	} secrets;
	struct {
		struct hf_spec_host_volume *items;
		size_t len, cap;
	} host_volumes;
	struct {
		struct hf_spec_external_volume *items;
		size_t len, cap;
	} external_volumes;
	bool share_pid_namespace;
	char *ipc_mode;
	int64_t shm_size;
	bool seccomp_unconfined;
	char *seccomp_profile_name;
	/* holdfast: keep a decommissioned instance's volumes. */
	bool retain_volumes;
	/*
	 * holdfast `replace: {tasks: [...]}`: ONCE/FINISH tasks a replacement
	 * instance runs before its other tasks (bootstrap from a peer); they
	 * and all its tasks see REPLACED_NODE / REPLACED_ADDRESS.
	 */
	struct hf_strlist replace_tasks;
	/*
	 * holdfast `snapshot-hooks: {task, before, after, timeout}`:
	 * commands a snapshot of the pod's external volumes runs in task
	 * `task` (a RUNNING one; default: the pod's first) before it is
	 * taken (a non-zero exit refuses the snapshot) and after (always,
	 * once the before one ran), each within timeout seconds (default
	 * 60). hooks_pos: where it is written; has_hooks: it is.
	 */
	bool has_hooks;
	char *hook_task, *hook_before, *hook_after;
	double hook_timeout;
	struct hf_pos hooks_pos;
	/*
	 * holdfast `backup-schedule: {to, credential, every, keep}`: each
	 * instance's external volumes are backed up to `to`
	 * ("s3://bucket[/prefix]") with the named credential every `every`
	 * seconds, the newest `keep` backups kept in the store (0: all). A
	 * volume's own schedule (volume backup-schedule) goes before it.
	 * bk_to NULL: none.
	 */
	char *bk_to, *bk_cred;
	double bk_every;
	int64_t bk_keep;
	struct hf_pos bk_pos;
	/* holdfast `autoscale:`; NULL: none (struct hf_spec_autoscale). */
	struct hf_spec_autoscale *autoscale;
	struct {
		struct hf_spec_task *items;
		size_t len, cap;
	} tasks;
	struct hf_pos pos;
};

/* One "- <index>: [[a], [b, c]]" entry of a phase's steps. */
struct hf_spec_step_entry {
	int64_t index; /* -1 for "default" */
	/* Each group is one step: the tasks it launches together. */
	struct {
		struct hf_strlist *items;
		size_t len, cap;
	} groups;
	struct hf_pos pos;
};

struct hf_spec_phase {
	char *name;
	char *pod;
	enum hf_strategy strategy;
	bool has_steps;
	struct {
		struct hf_spec_step_entry *items;
		size_t len, cap;
	} steps;
	struct hf_pos pos;     /* the phase's key */
	struct hf_pos pod_pos; /* its `pod` value */
};

struct hf_spec_plan {
	char *name;
	enum hf_strategy strategy;
	/* holdfast: a step not complete this long after it started is ERROR. */
	double healthy_deadline; /* seconds; 0 = no deadline */
	bool auto_revert;        /* holdfast: an update in ERROR rolls back */
	struct {
		struct hf_spec_phase *items;
		size_t len, cap;
	} phases;
	struct hf_pos pos;
};

/* A field the spec uses that holdfast cannot honour yet. */
struct hf_spec_feature_use {
	char *feature; /* "docker images", "overlay networks", ... */
	/* The whole message, when the feature's name alone says too little. */
	char *msg; /* may be NULL */
	char *path;
	struct hf_pos pos;
};

struct hf_spec {
	char *name;
	char *web_url;
	char *scheduler_user; /* NULL when absent or empty: the agent's user */
	/*
	 * The effective principal: as written, or "<name>-principal" when
	 * absent or empty, as the SDK's FrameworkConfig does.
	 */
	char *scheduler_principal;
	struct hf_kvlist scheduler_other; /* other scheduler keys, as written */
	struct {
		struct hf_spec_pod *items;
		size_t len, cap;
	} pods;
	struct {
		struct hf_spec_plan *items;
		size_t len, cap;
	} plans;
	/*
	 * replacement-failure-policy (the SDK's keys): replace an instance
	 * whose node stayed unreachable this long; -1 = never (the default).
	 */
	int64_t permanent_failure_timeout_ms;
	int64_t min_replace_delay_ms;
	/* Fields used that holdfast cannot honour yet (hf_spec_check_supported). */
	struct {
		struct hf_spec_feature_use *items;
		size_t len, cap;
	} unsupported;
	/* The options the spec was rendered with (TASKCFG_* routing needs them). */
	struct hf_kvlist options;
	char *file; /* the spec's file name, for messages; may be NULL */
};

/* How to load a spec. */
struct hf_spec_load_opts {
	const struct hf_kvlist *options; /* mustache values; may be NULL */
	bool allow_missing;              /* unset variables render empty */
	/*
	 * Directories searched for `configs` templates after the spec's own
	 * directory. May be NULL.
	 */
	const struct hf_strlist *template_dirs;
	/*
	 * Values used for variables the options do not set, like the
	 * environment the SDK's scheduler rendered specs with (PORT_API).
	 * May be NULL; holdfast's built-ins (hf_spec_builtin_vars) apply after.
	 */
	const struct hf_kvlist *defaults;
	/*
	 * Config templates given as (template path as written -> content),
	 * used instead of reading files: the server gets them with the spec.
	 * May be NULL.
	 */
	const struct hf_kvlist *template_files;
	/* Skip reading config templates (for specs given as strings). */
	bool skip_templates;
	/*
	 * The spec is a configuration holdfast accepted before (read back
	 * from the store). Checks that only guard a new deployment (config
	 * template variables no task gets) report warnings, so a service an
	 * older holdfast accepted stays manageable.
	 */
	bool stored;
	/*
	 * Counts set over the spec's, pod name -> a count of 0 ..
	 * HF_SPEC_POD_COUNT_MAX in decimal (the server's `pod scale`): the
	 * spec is validated and its plans built with them. A pod the spec
	 * does not declare, or a value that is no count, is ignored. May be
	 * NULL.
	 */
	const struct hf_kvlist *counts;
	/*
	 * The service's name over the spec's `name:` (a stack names its
	 * services), checked as `name:` is; NULL keeps the spec's. Everything
	 * made from the name (volume names, principal) follows it.
	 */
	const char *name;
};

/*
 * Loading also checks every task's config templates against the
 * environment the task will have (hf_spec_task_env, the variables the
 * launch adds, its ports): a variable no task environment has is an error
 * at its line in the template, saying how to give it (-o TASKCFG_ALL_X=..),
 * unless allow_missing or stored make it a warning. Tasks only custom plans
 * launch get a warning: a plan parameter may give it.
 *
 * Renders, parses and validates the spec at path. On success returns 0 and
 * *out owns a new spec (warnings may still be in diags). On failure returns
 * HF_ESPEC (or HF_ENOTFOUND / HF_EIO for the file) with every reason in
 * diags, and *out = NULL.
 */
int hf_spec_load_file(const char *path, const struct hf_spec_load_opts *opts,
		      struct hf_spec **out, struct hf_diags *diags);
/*
 * The same for a spec held in memory; file names it in messages (may be
 * NULL) and is the base for relative template paths when not NULL.
 */
int hf_spec_load_string(const char *text, size_t len, const char *file,
			const struct hf_spec_load_opts *opts,
			struct hf_spec **out, struct hf_diags *diags);
void hf_spec_free(struct hf_spec *spec);

/*
 * Whether a config `dest` can be written where the agent writes configs:
 * relative to the task sandbox, at most one '..' out of it (into the
 * task's directory, as the SDK allowed into the executor's sandbox), and
 * never over the sandbox or the files holdfast keeps beside it. Returns
 * NULL when it can, else why not (static text). *outside (may be NULL) is
 * set when it is written outside the sandbox. The agent and validation
 * both use it, so a spec that validates never fails here at launch.
 */
const char *hf_spec_config_dest_problem(const char *dest, bool *outside);

/*
 * The agent's key of a volume of a pod instance: "<service>/<instance>/
 * <owner>/<name>", owner "pod" for pod-level volumes or the resource set's
 * name, name the volume's (or its path with '/' as '_'), each part
 * escaped by hf_name_escape (so service "a/p-0" never lies inside service
 * "a"'s instance "p-0"). The caller frees it. Validation makes sure two
 * volumes of an instance never share one.
 */
char *hf_spec_volume_key(const char *service, const char *instance,
			 const char *owner, const struct hf_spec_volume *v);

/* The port the API listens on by default; PORT_API renders to it. */
#define HF_DEFAULT_API_PORT 7070

const char *hf_goal_name(enum hf_goal g);
const char *hf_strategy_name(enum hf_strategy s);
const char *hf_volume_type_name(enum hf_volume_type t);

struct hf_spec_pod *hf_spec_find_pod(const struct hf_spec *spec,
				     const char *name);
struct hf_spec_task *hf_spec_find_task(const struct hf_spec_pod *pod,
				       const char *name);
struct hf_spec_plan *hf_spec_find_plan(const struct hf_spec *spec,
				       const char *name);
/*
 * Whether spec declares an encrypted external volume (secure=true); the
 * first one's pod and volume (its key under external-volumes) in *pod
 * and *vol.
 */
bool hf_spec_secure_volume(const struct hf_spec *spec, const char **pod,
			   const char **vol);

/*
 * Walks spec's encrypted external volumes: *at is 0 at first and moves
 * on at each call; returns false after the last. Each one's pod, volume
 * and secret_key ("" when the cluster key seals its key).
 */
bool hf_spec_next_secure(const struct hf_spec *spec, size_t *at,
			 const char **pod, const char **vol, const char **key);

/*
 * Lists the fields the spec uses that holdfast cannot honour yet, as
 * errors at their positions ("not supported yet"). Returns the number added.
 * Deploy refuses a spec for which this is not zero.
 */
size_t hf_spec_check_supported(const struct hf_spec *spec,
			       struct hf_diags *diags);

/*
 * The environment a task gets from the spec: TASKCFG_ALL_<K>, then
 * TASKCFG_<POD>_<K> (pod name upper-cased, '-' as '_'), then the task's
 * `env`, later ones winning. Appends to *env.
 */
void hf_spec_task_env(const struct hf_spec *spec, const struct hf_spec_pod *pod,
		      const struct hf_spec_task *task, struct hf_kvlist *env);

/* A port's environment key: env-key, else PORT_<NAME upper-cased, '-' as '_'>. */
char *hf_spec_port_env_key(const struct hf_spec_port *p);

/*
 * A pod's task named "decommission" (goal FINISH) drains an instance
 * before it is removed by a scale-in; it is never part of default steps.
 */
#define HF_DECOMMISSION_TASK "decommission"

/* ------------------------------------------------------------------ */
/* Plans built from a spec                                             */

struct hf_plan_step_def {
	char *name; /* "<pod>-<i>:[task,...]" */
	char *pod;
	int64_t index;
	struct hf_strlist tasks;
};

struct hf_plan_phase_def {
	char *name;
	char *pod;
	enum hf_strategy strategy;
	struct {
		struct hf_plan_step_def *items;
		size_t len, cap;
	} steps;
};

enum hf_plan_kind {
	HF_PLAN_DEPLOY,
	HF_PLAN_UPDATE,
	HF_PLAN_CUSTOM,
};

struct hf_plan_def {
	char *name;
	enum hf_plan_kind kind;
	bool generated; /* built by holdfast, not written in the spec */
	enum hf_strategy strategy;
	double healthy_deadline; /* seconds; 0 = none */
	bool auto_revert;
	struct {
		struct hf_plan_phase_def *items;
		size_t len, cap;
	} phases;
};

struct hf_plan_defs {
	struct hf_plan_def *items;
	size_t len, cap;
};

/*
 * Builds every plan of a valid spec as the SDK does: the spec's plans with
 * their steps expanded per instance, and a generated serial `deploy` plan
 * (one serial phase per pod type in declaration order, one step per
 * instance) when the spec has none. Appends to *out; the caller releases it
 * with hf_plan_defs_release().
 */
void hf_spec_build_plans(const struct hf_spec *spec, struct hf_plan_defs *out);
void hf_plan_defs_release(struct hf_plan_defs *defs);
const struct hf_plan_def *hf_plan_defs_find(const struct hf_plan_defs *defs,
					    const char *name);
/*
 * The plan a configuration change runs, by the SDK's rule: `update` when
 * the spec has one and this is not the first deployment, else `deploy`.
 */
const char *hf_spec_update_plan_name(const struct hf_spec *spec,
				     bool first_deploy);

/* ------------------------------------------------------------------ */
/* Configuration diff                                                   */

enum hf_pod_change {
	HF_POD_UNCHANGED,
	HF_POD_CHANGED,
	HF_POD_ADDED,
	HF_POD_REMOVED,
};

struct hf_pod_diff {
	char *pod;
	enum hf_pod_change change;
	int64_t old_count, new_count;
	struct hf_strlist relaunch;  /* instance names "<pod>-<i>" */
	struct hf_strlist added;     /* instance names */
	struct hf_strlist removed;   /* instance names */
	struct hf_strlist changes;   /* "tasks.server.cmd: \"a\" -> \"b\"" */
};

struct hf_spec_diff {
	struct {
		struct hf_pod_diff *items;
		size_t len, cap;
	} pods;
	/* Why the change must be refused; empty when it may go ahead. */
	struct hf_strlist refusals;
	/* Service-level changes (name, user, web-url, plans). */
	struct hf_strlist changes;
};

/*
 * Compares a running target with a new spec. Every instance whose effective
 * spec (ignoring count, placement and allow-decommission) changed must
 * relaunch; instances past the old count are added, past the new count
 * removed. Refusals: count decrease without allow-decommission, any volume
 * change, an existing external volume's driver (other than between
 * holdfast and pxd), container-path, volume-name or driver-options
 * (shared, secure, repl, min_sync) changing or its size shrinking (a
 * larger size relaunches nothing: the volumes grow), user change,
 * pre-reserved-role change, a pod type removed without
 * allow-decommission on the old spec. Fills *out; release it with
 * hf_spec_diff_release(). Change lines hide secret values
 * (hf_spec_secret_name): "env.DB_PASSWORD: (hidden) -> (hidden)".
 */
void hf_spec_diff(const struct hf_spec *old, const struct hf_spec *new_spec,
		  struct hf_spec_diff *out);
/*
 * Whether a variable's name says its value is secret (PASSWORD, SECRET,
 * TOKEN, ... in any case): such values are never shown, in the API's
 * answers, events or the diff's change lines ("(hidden)").
 */
bool hf_spec_secret_name(const char *name);
void hf_spec_diff_release(struct hf_spec_diff *d);
bool hf_spec_diff_is_empty(const struct hf_spec_diff *d);

/* ------------------------------------------------------------------ */
/* JSON                                                                 */

struct json_t;
/*
 * The normalised model with defaults filled in and the built plans, as a
 * new JSON object (the caller owns the reference).
 */
struct json_t *hf_spec_to_json(const struct hf_spec *spec);
/* One pod's effective spec, as compared by the diff. */
struct json_t *hf_spec_pod_to_json(const struct hf_spec *spec,
				   const struct hf_spec_pod *pod,
				   bool for_diff);
struct json_t *hf_plan_def_to_json(const struct hf_plan_def *def);
struct json_t *hf_spec_diff_to_json(const struct hf_spec_diff *d);
struct json_t *hf_diags_to_json(const struct hf_diags *d);

#endif
