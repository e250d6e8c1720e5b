/*
 * api_doc.c - what each route of the server's HTTP API does, takes and
 * answers, keyed by method and pattern, and the writer of docs/api.md (see
 * api_doc.h). The route table itself stays in api.c: a route added there
 * without a description here makes `holdfast _doc api` fail, and the tests
 * with it.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http/http.h"
#include "common/err.h"
#include "common/util.h"
#include "common/version.h"
#include "server/api.h"
#include "server/api_doc.h"

struct route_doc {
	const char *method, *pattern;
	const char *section;      /* the heading it is listed under */
	const char *summary;      /* markdown: what it does, then notes */
	const char *query;        /* "key=VALUE: meaning" lines, or NULL */
	const char *request;      /* the body's shape, or NULL for none */
	const char *status;       /* success statuses: "200", "200 202 417" */
	const char *content_type; /* NULL: application/json */
	const char *response;     /* the body's shape (JSON answers only) */
	const char *errors;       /* error names beyond the common ones */
};

/* Shapes several routes share. */
#define SERVICE_SHAPE                                                          \
	"{\"name\": \"string\", "                                              \
	"\"config_id\": \"string|null (the target configuration)\", "          \
	"\"removing\": \"boolean\", "                                          \
	"\"plans\": {\"<plan>\": \"string (the plan's status)\"}, "            \
	"\"tasks\": {\"<state>\": \"integer (how many tasks are in it)\"}, "   \
	"\"pod_types\": [{\"name\": \"string\", "                              \
	"\"count\": \"integer (the instances the target runs)\", "             \
	"\"spec_count\": \"integer (the spec's count)\", "                     \
	"\"overridden\": \"boolean (count is set over the spec's: pod "        \
	"scale)\"}], "                                                         \
	"\"created\": \"integer (unix ms)\"}"

#define CONFIG_BODY                                                            \
	"{\"spec\": \"string (the spec: YAML, a mustache template)\", "        \
	"\"file?\": \"string (its file name, for messages)\", "                \
	"\"options?\": {\"<name>\": \"string|number|boolean (a template "      \
	"variable)\"}, "                                                       \
	"\"templates?\": {\"<path>\": \"string (a config template's text, by " \
	"its path in the spec)\"}}"

#define DIFF_SHAPE                                                             \
	"{\"allowed\": \"boolean\", "                                          \
	"\"refusals\": [\"string (why the change cannot be made)\"], "         \
	"\"changes\": [\"string\"], "                                          \
	"\"pods\": [{\"pod\": \"string\", "                                    \
	"\"change\": \"string (unchanged, changed, added, removed)\", "        \
	"\"old-count\": \"integer\", \"new-count\": \"integer\", "             \
	"\"relaunch\": [\"string (instances relaunched)\"], "                  \
	"\"added\": [\"string\"], \"removed\": [\"string\"], "                 \
	"\"changes\": [\"string\"]}], "                                        \
	"\"changed\": \"boolean (a new target was made)\", "                   \
	"\"from\": \"string|null (the configuration before)\", "               \
	"\"to\": \"string|null (the new target)\", "                           \
	"\"plan?\": \"string (the plan the new target runs)\", "               \
	"\"error?\": \"string (refused)\", \"message?\": \"string\"}"

#define STATUS_WORDS                                                           \
	"PENDING, PREPARED, STARTING, STARTED, COMPLETE, DELAYED, WAITING, "   \
	"ERROR"

#define PLAN_OP_SHAPE "{\"message\": \"string\", \"plan\": \"string\"}"

#define KEPT_VOLUME_SHAPE                                                      \
	"{\"key\": \"string (service/instance)\", \"service\": \"string\", "   \
	"\"instance\": \"string\", \"node\": \"string\", "                     \
	"\"status\": \"string (kept)\", "                                     \
	"\"why\": \"string (how it came to be kept)\", "                      \
	"\"since\": \"integer (unix ms)\"}"

#define POD_OP_SHAPE                                                           \
	"{\"pod\": \"string\", \"tasks\": [\"string (the instance's task "     \
	"names)\"]}"

#define POD_STATUS_SHAPE                                                       \
	"{\"service\": \"string\", \"pods\": [{\"name\": \"string\", "         \
	"\"pod\": \"string (its pod type)\", "                                 \
	"\"node\": \"string|null\", \"placed\": \"boolean\", "                 \
	"\"node_reachable\": \"boolean\", "                                   \
	"\"message\": \"string|null (why it is not placed, or waits)\", "      \
	"\"paused\": \"boolean\", "                                           \
	"\"replacing\": \"boolean\", "                                         \
	"\"tasks\": [{\"name\": \"string\", "                                  \
	"\"id\": \"string|null (the current launch)\", "                       \
	"\"status\": \"string (a task state, or NOT_LAUNCHED)\", "             \
	"\"ready\": \"boolean\", "                                         \
	"\"restarts\": \"integer (relaunches and restarts in place)\", "     \
	"\"message\": \"string|null\"}]}]}"

#define STACK_SHAPE                                                            \
	"{\"name\": \"string\", \"phase\": \"string (deploying, updating, "    \
	"deployed, removing, failed)\", \"file?\": \"string (the stack "       \
	"file's name)\", \"generation\": \"integer (1, then one more per "     \
	"update)\", \"created?\": \"integer (unix ms)\", \"updated?\": "       \
	"\"integer (unix ms)\", \"delete_volumes\": \"boolean\", "             \
	"\"services\": [{\"name\": \"string (its key in the stack file)\", "   \
	"\"service\": \"string (its name in the cluster)\", \"phase\": "       \
	"\"string (waiting, deploying, updating, deployed, removing, "         \
	"removed, failed)\", \"spec?\": \"string (its spec's path)\", "        \
	"\"depends_on\": [\"string\"], \"exists\": \"boolean (the service "    \
	"runs in the cluster)\", \"message?\": \"string (what it waits for, "  \
	"or why it failed)\", \"since?\": \"integer (unix ms)\", \"plan?\": "  \
	"{\"name\": \"string (the plan of its latest change)\", \"status\": "  \
	"\"string\"}, \"options?\": {\"<name>\": \"string (as written; "       \
	"secret-looking names hidden)\"}}]}"
#define STACK_BODY                                                             \
	"{\"file\": \"string (the stack file's name, for messages)\", "        \
	"\"text\": \"string (the stack file)\", \"specs\": {\"<path as the "   \
	"file names it>\": {\"text\": \"string (the spec)\", \"templates?\": " \
	"{\"<template path>\": \"string\"}}}}"
#define REMOTE_SHAPE                                                           \
	"{\"name\": \"string\", \"url\": \"string\", \"as\": \"string (the "   \
	"name the remote knows this cluster by)\", \"added\": \"integer (unix "   \
	"ms)\", \"link\": {\"state\": \"up|down|unknown\", \"since?\": "        \
	"\"integer (unix ms)\", \"checked_at?\": \"integer (unix ms)\", "       \
	"\"cluster?\": \"string\", \"rtt_ms?\": \"number\", \"error?\": "       \
	"\"string\"}}"
#define REMOTES_SHAPE "{\"remotes\": [" REMOTE_SHAPE "]}"

static const struct route_doc docs[] = {
    /* ---- Agents ---- */
    {.method = "POST",
     .pattern = "/v1/agent/sync",
     .section = "Agents",
     .summary =
	 "An agent's sync: its node's info and its task reports in, the "
	 "node's desired tasks out. The server holds the request (a long "
	 "poll) until the desired set changes or `wait` seconds pass. The "
	 "whole exchange is specified in [protocol.md](protocol.md).",
     .request = "{\"node_id\": \"string\", "
		"\"cluster?\": \"string (the cluster that accepted the "
		"agent)\", "
		"\"generation?\": \"integer (the desired set it has)\", "
		"\"seq?\": \"number (orders its reports)\", "
		"\"wait?\": \"number (seconds to hold the request)\", "
		"\"info?\": \"object (the node: resources, attributes, "
		"address)\", "
		"\"tasks?\": [\"object (a task report)\"], "
		"\"same?\": [\"string (a task whose acknowledged report "
		"holds)\"], "
		"\"reports_epoch?\": \"string (the epoch of those "
		"acknowledgments)\", "
		"\"held?\": \"boolean (it holds the whole set of its "
		"generation)\", "
		"\"deleted_volumes?\": [\"string\"]}",
     .status = "200",
     .response = "{\"generation\": \"integer\", "
		 "\"tasks?\": [\"object (a task to run)\"], "
		 "\"tasks_unchanged?\": \"boolean (the set held; no tasks)\", "
		 "\"delete_volumes\": [\"string\"], "
		 "\"heartbeat_interval\": \"integer (seconds)\", "
		 "\"cluster\": \"string|null (this cluster's id)\", "
		 "\"reports_epoch\": \"string (this server's memory of the "
		 "reports)\", "
		 "\"resend?\": \"boolean (send every report whole)\"}",
     .errors = "invalid bad-json not-in-cluster"},

    {.method = "POST",
     .pattern = "/v1/agent/register",
     .section = "Agents",
     .summary =
	 "A new node registers the credential its agent made (once, with a "
	 "join token); its syncs then use that credential, and the server "
	 "answers them as that node only. The same node and token again is "
	 "answered 200 (`registered` false); another token for a node that "
	 "has one is refused (`409`) until an operator resets its identity. "
	 "See [protocol.md](protocol.md).",
     .request = "{\"node_id\": \"string (1 to 128 of A-Z a-z 0-9 . _ : -)\", "
		"\"token\": \"string (the node's own token: 32 to 256 of "
		"A-Z a-z 0-9 . _ ~ -)\"}",
     .status = "200",
     .response = "{\"node_id\": \"string\", "
		 "\"registered\": \"boolean (false: it was already)\"}",
     .errors = "invalid bad-json conflict unavailable"},

    /* ---- Servers ---- */
    {.method = "GET",
     .pattern = "/v1/version",
     .section = "Servers",
     .summary = "The server's version.",
     .status = "200",
     .response = "{\"version\": \"string\"}"},
    {.method = "GET",
     .pattern = "/v1/whoami",
     .section = "Servers",
     .summary =
	 "The role of the token the request carries (the web UI shows "
	 "actions to admins only). The token itself is never echoed.",
     .status = "200",
     .response = "{\"role\": \"string (admin or read)\"}"},
    {.method = "GET",
     .pattern = "/v1/leader",
     .section = "Servers",
     .summary =
	 "Which server leads. Every server answers it, followers included, so "
	 "clients can find the leader.",
     .status = "200",
     .response = "{\"leader\": \"string|null (the leader's URL)\", "
		 "\"self\": \"string (this server's URL)\", "
		 "\"leading\": \"boolean\"}"},
    {.method = "GET",
     .pattern = "/metrics",
     .section = "Servers",
     .summary = "The server's metrics in the Prometheus text format.",
     .status = "200",
     .content_type = "text/plain; version=0.0.4"},

    /* ---- Web UI ---- */
    {.method = "GET",
     .pattern = "/ui",
     .section = "Web UI",
     .summary = "Redirects (`308`) to `/ui/`, the query kept.",
     .query = "token=TOKEN: kept in the redirect (see `GET /ui/{asset*}`)",
     .status = "308",
     .content_type = "text/plain; charset=utf-8"},
    {.method = "GET",
     .pattern = "/ui/{asset*}",
     .section = "Web UI",
     .summary =
	 "The web UI's files, built into the binary from `ui/`: `/ui/` is "
	 "the page, `/ui/NAME` its script, style and images, with their "
	 "content type (`text/html; charset=utf-8` for the page). No token: "
	 "the files hold no data; the page calls the API with the token it "
	 "is given (see [ui.md](ui.md)). Every answer carries "
	 "`Content-Security-Policy` (this origin only, no inline script, "
	 "no framing), `X-Frame-Options: DENY` and `Referrer-Policy: "
	 "no-referrer`, besides `X-Content-Type-Options: nosniff` and "
	 "`Cache-Control: no-store` as every answer. Any other name is "
	 "answered `404 "
	 "not-found` (JSON).",
     .query = "token=TOKEN: read by the page, which signs in with it, keeps "
	      "it and drops it from the address bar; the server ignores it",
     .status = "200",
     .content_type = "text/html; charset=utf-8",
     .errors = "not-found"},

    /* ---- Services ---- */
    {.method = "GET",
     .pattern = "/v1/services",
     .section = "Services",
     .summary = "Every service, with its plans' statuses and task counts.",
     .status = "200",
     .response = "[" SERVICE_SHAPE "]"},
    {.method = "POST",
     .pattern = "/v1/services",
     .section = "Services",
     .summary =
	 "Deploys a new service: the spec is rendered with the options, "
	 "validated, stored as configuration 1 and its `deploy` plan starts. "
	 "An invalid spec changes nothing; the answer lists every problem "
	 "(`diagnostics`, each with file, line, column and path). "
	 "`kept_volumes` lists the volumes an earlier service of this name "
	 "kept: its instances placed on their node reuse them.",
     .request = CONFIG_BODY,
     .status = "201",
     .response = "{\"name\": \"string\", \"config_id\": \"string\", "
		 "\"plan\": \"string (deploy)\", "
		 "\"kept_volumes?\": [" KEPT_VOLUME_SHAPE "]}",
     .errors = "bad-json invalid invalid-spec not-supported exists"},
    {.method = "GET",
     .pattern = "/v1/services/{svc}",
     .section = "Services",
     .summary = "One service, as in the list.",
     .status = "200",
     .response = SERVICE_SHAPE,
     .errors = "not-found"},
    {.method = "PUT",
     .pattern = "/v1/services/{svc}",
     .section = "Services",
     .summary =
	 "Updates a service's configuration: the new spec is diffed against "
	 "the target and either refused (`409`, the diff with every reason; "
	 "nothing changes) or made the new target, relaunching only the pod "
	 "instances whose effective spec changed. A spec with no effective "
	 "change answers `200` with `changed: false`.",
     .request = CONFIG_BODY,
     .status = "200",
     .response = DIFF_SHAPE,
     .errors = "bad-json invalid invalid-spec not-supported not-found "
	       "refused conflict internal"},
    {.method = "DELETE",
     .pattern = "/v1/services/{svc}",
     .section = "Services",
     .summary =
	 "Removes a service: its tasks are stopped and its reservations "
	 "freed. Volumes are kept (the answer says where; `GET /v1/volumes` "
	 "lists them) unless `delete_volumes` is given. For a service "
	 "removed before, `delete_volumes` deletes the volumes it kept "
	 "(`already_removed` is then true).",
     .query = "delete_volumes=true: delete the service's volumes too (`1` "
	      "also means true)",
     .status = "202",
     .response = "{\"name\": \"string\", \"delete_volumes\": \"boolean\", "
		 "\"already_removed?\": \"boolean\", "
		 "\"volumes\": [{\"instance?\": \"string\", "
		 "\"node\": \"string\", \"key\": \"string (the volume "
		 "directory's key on that node)\"}]}",
     .errors = "not-found"},
    {.method = "POST",
     .pattern = "/v1/services/{svc}/diff",
     .section = "Services",
     .summary =
	 "What an update with this spec would do, without doing it. A change "
	 "that would be refused answers `200` with `allowed: false` and the "
	 "reasons.",
     .request = CONFIG_BODY,
     .status = "200",
     .response = DIFF_SHAPE,
     .errors = "bad-json invalid invalid-spec not-supported not-found "
	       "refused conflict internal"},
    {.method = "POST",
     .pattern = "/v1/services/{svc}/rollback",
     .section = "Services",
     .summary =
	 "Makes the previous configuration (or the one named by `to`) the "
	 "target again, as an update to it would.",
     .query = "to=CONFIG_ID: the configuration to return to (default: the "
	      "previous target)",
     .status = "200",
     .response = DIFF_SHAPE,
     .errors = "not-found conflict refused"},

    /* ---- Plans ---- */
    {.method = "GET",
     .pattern = "/v1/service/{svc}/plans",
     .section = "Plans",
     .summary =
	 "The names of a service's plans, the generated `recovery` and "
	 "`decommission` included.",
     .status = "200",
     .response = "[\"string\"]",
     .errors = "not-found"},
    {.method = "GET",
     .pattern = "/v1/service/{svc}/plans/{plan}",
     .section = "Plans",
     .summary =
	 "A plan's phases and steps with their statuses (" STATUS_WORDS
	 "), and the operator's overrides of its current run. As in the "
	 "SDK, the HTTP status tells the plan's: `200` COMPLETE, `417` "
	 "ERROR, `202` anything else.",
     .status = "200 202 417",
     .response =
	 "{\"name\": \"string\", \"status\": \"string\", "
	 "\"strategy\": \"string\", "
	 "\"phases\": [{\"id\": \"string (plan/phase)\", \"name\": \"string\", "
	 "\"pod\": \"string\", \"status\": \"string\", "
	 "\"strategy\": \"string\", "
	 "\"steps\": [{\"id\": \"string (plan/phase/step)\", "
	 "\"name\": \"string\", \"status\": \"string\", "
	 "\"message\": \"string\"}]}], "
	 "\"errors\": [\"string (step: message, for steps in ERROR)\"], "
	 "\"parameters\": {\"<NAME>\": \"string (secrets hidden)\"}, "
	 "\"interrupted\": \"boolean\", "
	 "\"interrupted_phases\": [\"string\"], "
	 "\"force_complete\": [\"string (phase/step)\"], "
	 "\"run\": \"integer (0: never started)\"}",
     .errors = "not-found"},
    {.method = "POST",
     .pattern = "/v1/service/{svc}/plans/{plan}/start",
     .section = "Plans",
     .summary =
	 "Starts a plan, or starts it again from the beginning. The body, "
	 "when there is one, gives the plan's parameters, which become "
	 "environment variables of its tasks.",
     .request = "{\"<NAME>\": \"string|number|boolean (a parameter)\"}",
     .status = "200",
     .response = PLAN_OP_SHAPE,
     .errors = "bad-json invalid not-found conflict"},
    {.method = "POST",
     .pattern = "/v1/service/{svc}/plans/{plan}/stop",
     .section = "Plans",
     .summary = "Stops a plan and resets its progress.",
     .status = "200",
     .response = PLAN_OP_SHAPE,
     .errors = "not-found conflict"},
    {.method = "POST",
     .pattern = "/v1/service/{svc}/plans/{plan}/interrupt",
     .section = "Plans",
     .summary =
	 "Pauses a plan (or one phase): steps already running go on, no new "
	 "step starts.",
     .query = "phase=PHASE: interrupt only this phase",
     .status = "200",
     .response = PLAN_OP_SHAPE,
     .errors = "not-found conflict"},
    {.method = "POST",
     .pattern = "/v1/service/{svc}/plans/{plan}/continue",
     .section = "Plans",
     .summary =
	 "Resumes an interrupted plan (or phase), or passes a canary gate. "
	 "Without `phase` the gate is the next one of the first canary phase "
	 "that still has one. The answer says what it let go (`continued`) "
	 "and which gates remain; a continue that would change nothing (a "
	 "COMPLETE plan, nothing interrupted, no gate) answers `409`.",
     .query = "phase=PHASE: continue only this phase",
     .status = "200",
     .response = "{\"message\": \"string\", \"plan\": \"string\", "
		 "\"status?\": \"string (the plan's, after the continue)\", "
		 "\"continued\": [\"string (what it let go)\"], "
		 "\"gates?\": [{\"phase\": \"string\", "
		 "\"step\": \"string (the step the next continue lets go)\", "
		 "\"continues_left\": \"integer\", "
		 "\"waits_for\": \"string\"}], "
		 "\"continues_needed?\": \"integer (in all)\"}",
     .errors = "not-found conflict"},
    {.method = "POST",
     .pattern = "/v1/service/{svc}/plans/{plan}/forceComplete",
     .section = "Plans",
     .summary =
	 "Marks a step COMPLETE without running it. On the `decommission` "
	 "plan, it removes an instance whose drain does not finish (its "
	 "volumes are kept).",
     .query = "phase=PHASE: the step's phase (required)\n"
	      "step=STEP: the step's name or id (required)",
     .status = "200",
     .response = PLAN_OP_SHAPE,
     .errors = "invalid not-found conflict"},
    {.method = "POST",
     .pattern = "/v1/service/{svc}/plans/{plan}/restart",
     .section = "Plans",
     .summary = "Runs a step again: its tasks are stopped and relaunched.",
     .query = "phase=PHASE: the step's phase (required)\n"
	      "step=STEP: the step's name or id (required)",
     .status = "200",
     .response = PLAN_OP_SHAPE,
     .errors = "invalid not-found conflict"},

    /* ---- Pods ---- */
    {.method = "GET",
     .pattern = "/v1/service/{svc}/pod",
     .section = "Pods",
     .summary = "The names of a service's pod instances.",
     .status = "200",
     .response = "[\"string\"]",
     .errors = "not-found"},
    {.method = "GET",
     .pattern = "/v1/service/{svc}/pod/status",
     .section = "Pods",
     .summary =
	 "Every pod instance: its node and its tasks' states. Instances not "
	 "placed yet are listed too (`placed` false, no tasks), with why in "
	 "`message`: the reason placement gave, or the plan step they wait "
	 "for.",
     .status = "200",
     .response = POD_STATUS_SHAPE,
     .errors = "not-found"},
    {.method = "GET",
     .pattern = "/v1/service/{svc}/pod/{pod}/status",
     .section = "Pods",
     .summary = "One pod instance, as in the list.",
     .status = "200",
     .response = POD_STATUS_SHAPE,
     .errors = "not-found"},
    {.method = "GET",
     .pattern = "/v1/service/{svc}/pod/{pod}/info",
     .section = "Pods",
     .summary =
	 "A pod instance's whole record as the server keeps it (secrets "
	 "hidden), for debugging.",
     .status = "200",
     .response =
	 "{\"name\": \"string\", \"pod\": \"string\", \"index\": \"integer\", "
	 "\"node\": \"string|null\", "
	 "\"ports\": {\"<name>\": \"string (the port number)\"}, "
	 "\"message\": \"string|null\", \"paused\": \"boolean\", "
	 "\"replacing\": \"boolean\", \"replace_deleting\": \"boolean\", "
	 "\"decom\": \"integer (decommission stage)\", "
	 "\"drain_done\": \"boolean\", \"drain_failed\": \"boolean\", "
	 "\"drain_skipped\": \"boolean\", "
	 "\"replaced_node\": \"string|null\", "
	 "\"replaced_address\": \"string|null\", "
	 "\"replace_pending\": \"boolean\", "
	 "\"tasks\": [{\"task\": \"string\", "
	 "\"current\": \"object|null (the current launch; after a restart "
	 "in place also in_place_restarts, backoff, restart_at, "
	 "last_exit_code, last_signal, last_exit_at)\", "
	 "\"failures\": \"integer\", "
	 "\"backoff_until\": \"integer (unix ms)\", "
	 "\"once_done\": \"boolean\", \"want_running\": \"boolean\", "
	 "\"launches\": \"integer\", "
	 "\"restarts\": \"integer (relaunches and restarts in place)\"}]}",
     .errors = "not-found"},
    {.method = "PUT",
     .pattern = "/v1/service/{svc}/pod-types/{pod}/count",
     .section = "Pods",
     .summary =
	 "Sets the count of a pod type over its spec's (`holdfast pod "
	 "scale`), as an update with that count would: a new configuration "
	 "becomes the target and runs the update plan (else deploy), which "
	 "launches the new instances; the highest indexes beyond a lower "
	 "count are drained (their `decommission` task) and removed. A count "
	 "lower than now needs `allow-decommission: true` (else `409` with "
	 "the diff). The count stays set across updates that leave the "
	 "spec's count of that pod type as it was; an update that changes "
	 "it drops the count set here (its diff says so). A count equal to "
	 "the spec's sets none; the same count as now answers `changed: "
	 "false`. `GET /v1/services/{svc}` shows each pod type's count. "
	 "While the pod type has an `autoscale` policy that is not a dry "
	 "run, the autoscaler owns its count: `409` (refused).",
     .request = "{\"count\": \"integer (0 to 100000)\"}",
     .status = "200",
     .response = DIFF_SHAPE,
     .errors = "bad-json invalid invalid-spec not-found refused conflict "
	       "internal"},
    {.method = "GET",
     .pattern = "/v1/service/{svc}/autoscale",
     .section = "Pods",
     .summary =
	 "The autoscale policy of each pod type that has one "
	 "(`holdfast autoscale status`; docs/autoscaling.md): the policy as "
	 "the spec's keys, the count, the value the last evaluation read "
	 "(null with `error` when it failed), the count the policy wanted, "
	 "the last decision, when the count last changed, the samples in a "
	 "row, the next possible action in words, the actions taken and the "
	 "last 10 values. Only the leader evaluates: another server answers "
	 "with the policies and `decision` \"evaluated by the leader\".",
     .status = "200",
     .response =
	 "{\"service\": \"string\", \"pods\": [{\"pod\": \"string\", "
	 "\"policy\": \"object (min, max, interval, timeout, samples, "
	 "dry-run, on-error, metric, up, down, target?, tolerance?)\", "
	 "\"count\": \"integer\", \"dry_run\": \"boolean\", "
	 "\"value\": \"number|null\", \"error\": \"string|null\", "
	 "\"desired\": \"integer\", \"decision\": \"string|null\", "
	 "\"decided_at\": \"integer|null (unix ms)\", "
	 "\"last_action_at\": \"integer|null (unix ms)\", "
	 "\"next\": \"string|null\", "
	 "\"samples_in_a_row\": {\"up\": \"integer\", \"down\": "
	 "\"integer\", \"errors\": \"integer\"}, "
	 "\"actions\": {\"up\": \"integer\", \"down\": \"integer\"}, "
	 "\"history\": [{\"at\": \"integer (unix ms)\", \"value\": "
	 "\"number|null\"}]}]}",
     .errors = "not-found"},
    {.method = "DELETE",
     .pattern = "/v1/service/{svc}/pod-types/{pod}/count",
     .section = "Pods",
     .summary =
	 "Hands a pod type's count back to its spec (`holdfast pod scale "
	 "--reset`): the count set over it is dropped, as a `PUT` of the "
	 "spec's count would. With none set it answers `changed: false`.",
     .status = "200",
     .response = DIFF_SHAPE,
     .errors = "invalid-spec not-found refused conflict internal"},
    {.method = "POST",
     .pattern = "/v1/service/{svc}/pod/{pod}/restart",
     .section = "Pods",
     .summary =
	 "Restarts a pod instance in place: same node, same volumes.",
     .status = "200",
     .response = POD_OP_SHAPE,
     .errors = "not-found conflict"},
    {.method = "POST",
     .pattern = "/v1/service/{svc}/pod/{pod}/replace",
     .section = "Pods",
     .summary =
	 "Replaces a pod instance: its tasks stop, its volumes are deleted "
	 "and it is launched afresh, on any node.",
     .status = "200",
     .response = POD_OP_SHAPE,
     .errors = "not-found conflict"},
    {.method = "POST",
     .pattern = "/v1/service/{svc}/pod/{pod}/pause",
     .section = "Pods",
     .summary =
	 "Relaunches a pod instance's tasks as sleeps, with their volumes, "
	 "so that an operator can repair them.",
     .status = "200",
     .response = POD_OP_SHAPE,
     .errors = "not-found conflict"},
    {.method = "POST",
     .pattern = "/v1/service/{svc}/pod/{pod}/resume",
     .section = "Pods",
     .summary = "Relaunches a paused pod instance's tasks normally.",
     .status = "200",
     .response = POD_OP_SHAPE,
     .errors = "not-found conflict"},

    /* ---- Tasks ---- */
    {.method = "GET",
     .pattern = "/v1/tasks/{task}/logs",
     .section = "Tasks",
     .summary =
	 "A task's stdout or stderr, fetched from the agent that runs it. "
	 "`{task}` is a task id or a task name (`hello-0-server`: its "
	 "current launch). With `follow` the answer streams until the task "
	 "exits or the client goes.",
     .query = "stream=stdout: `stdout` (default) or `stderr`\n"
	      "tail=N: start with the last N lines (default 100)\n"
	      "follow=true: keep streaming what the task writes\n"
	      "service=NAME: look for the task in this service only",
     .status = "200",
     .content_type = "text/plain; charset=utf-8",
     .errors = "invalid not-found conflict unavailable"},
    {.method = "POST",
     .pattern = "/v1/tasks/{task}/exec",
     .section = "Tasks",
     .summary =
	 "Runs a command in a task's sandbox, with its environment, on its "
	 "node, and answers with its output and exit status (not "
	 "interactive; stopped after 120 s).",
     .query = "service=NAME: look for the task in this service only",
     .request = "{\"cmd\": \"string (run as /bin/sh -c cmd)\"}",
     .status = "200",
     .response = "{\"exit_code\": \"integer\", \"stdout\": \"string\", "
		 "\"stderr\": \"string\"}",
     .errors = "bad-json invalid not-found conflict unavailable io"},

    /* ---- Nodes ---- */
    {.method = "GET",
     .pattern = "/v1/nodes",
     .section = "Nodes",
     .summary = "Every node an agent registered, with its resources and its "
		"storage pool (`storage`, as its agent last reported it; absent "
		"for a storage-less node: an agent without `--storage`).",
     .status = "200",
     .response =
	 "[{\"id\": \"string\", \"hostname\": \"string|null\", "
	 "\"address\": \"string|null\", "
	 "\"attributes\": {\"<name>\": \"string\"}, "
	 "\"resources\": {\"cpus\": \"number\", \"memory_mb\": \"number\", "
	 "\"disk_mb\": \"number\", \"port_begin\": \"integer\", "
	 "\"port_end\": \"integer\"}, "
	 "\"cgroups\": \"string|null (whether task limits are enforced)\", "
	 "\"last_seen\": \"integer (unix ms)\", "
	 "\"connected\": \"boolean\", \"decommissioned\": \"boolean\", "
	 "\"storage?\": {\"pool\": \"string|null (the pool's directory on "
	 "the node)\", \"capacity\": \"integer (bytes the pool may hold)\", "
	 "\"provisioned\": \"integer (bytes its replicas were given)\", "
	 "\"used\": \"integer (bytes its replicas take on disk)\", "
	 "\"free\": \"integer (bytes free on its filesystem)\"}, "
	 "\"refused?\": \"string (why its agent's syncs are refused)\", "
	 "\"agent_cluster?\": \"string|null (the cluster the agent says it "
	 "belongs to)\", "
	 "\"live_tasks?\": \"integer (tasks the refused agent runs)\"}]"},
    {.method = "POST",
     .pattern = "/v1/nodes/{node}/decommission",
     .section = "Nodes",
     .summary =
	 "Takes a node out of placement; every pod instance on it is "
	 "replaced elsewhere with fresh volumes.",
     .status = "200",
     .response = "{\"node\": \"string\", "
		 "\"replacing\": [\"string (service/instance)\"]}",
     .errors = "not-found"},
    {.method = "POST",
     .pattern = "/v1/nodes/{node}/adopt",
     .section = "Nodes",
     .summary =
	 "Lets an agent this server refused (it belongs to another cluster, "
	 "or the store does not know its node) join this cluster: its next "
	 "sync is accepted, it takes this cluster's id, and the desired set "
	 "it gets stops every task this cluster does not know. See "
	 "[operations.md](operations.md), \"A damaged or lost store\".",
     .status = "200",
     .response = "{\"node\": \"string\", "
		 "\"cluster\": \"string|null (this cluster's id)\", "
		 "\"live_tasks\": \"integer (tasks its agent runs, that this "
		 "cluster may not know)\"}",
     .errors = "not-found conflict"},

    /* ---- The store ---- */
    {.method = "GET",
     .pattern = "/v1/store/backup",
     .section = "Store",
     .summary =
	 "A consistent copy of the whole store at one moment, as an SQLite "
	 "store file (`holdfast store backup`): SQLite's online backup, or "
	 "one read at one revision for etcd. It holds every secret. Any "
	 "server answers it, leading or not, also one whose store cannot be "
	 "written.",
     .status = "200",
     .content_type = "application/vnd.sqlite3",
     .errors = "io unavailable"},

    /* ---- Volumes ---- */
    {.method = "GET",
     .pattern = "/v1/volumes",
     .section = "Volumes",
     .summary =
	 "Every pod instance's volume directory the server knows of. Each is "
	 "`in use` by a deployed instance, `kept` (its service was removed "
	 "without `delete_volumes`, or a scale-in kept it; a service deployed "
	 "again under its name reuses it) or `deleting` (until the agent "
	 "confirms). External (replicated) volumes follow, as rows with "
	 "`type` `EXTERNAL`: `key` is the volume's name, `node` where it is "
	 "attached (else its replica's node), `status` `in use (attached)`, "
	 "`in use`, `kept` or `deleting`, and the fields of `GET "
	 "/v1/external-volumes/{name}`.",
     .query = "service=NAME: only this service's volumes",
     .status = "200",
     .response = "[{\"key\": \"string (service/instance)\", "
		 "\"service\": \"string\", \"instance\": \"string\", "
		 "\"node\": \"string\", "
		 "\"status\": \"string (in use, kept, deleting)\", "
		 "\"why?\": \"string (kept: how)\", "
		 "\"since?\": \"integer (kept: since when, unix ms)\", "
		 "\"type?\": \"string (EXTERNAL)\"}]"},
    {.method = "GET",
     .pattern = "/v1/external-volumes",
     .section = "Volumes",
     .summary =
	 "The external (replicated) volumes of pods' `external-volumes` "
	 "(docs/design/volumes.md): one object each, as `GET "
	 "/v1/external-volumes/{name}` shows it.",
     .query = "service=NAME: only this service's volumes",
     .status = "200",
     .response = "[{\"name\": \"string\", \"...\": \"...\"}]"},
    {.method = "GET",
     .pattern = "/v1/external-volumes/{name}",
     .section = "Volumes",
     .summary =
	 "One external volume: its owner (`service`, `instance`, null once "
	 "`kept`), `state` (`active`, `kept`, `deleting`), `size` in bytes, "
	 "`repl` and `min_sync`, `epoch` (bumped by every attach), the node "
	 "it is `attached` on (or null), whether its file system is "
	 "`formatted`, and each replica's node, id and state (`new`, "
	 "`in_sync`, ...). While attached, `io` has its attach process's "
	 "byte counters (since that process started) and each replica it "
	 "knew in sync its `missed` bytes (the regions written without it, "
	 "which a resync sends). A replica being made (a clone's, or from a "
	 "backup) has `made`: bytes `done` of `total`, as its node last said. "
	 "A backup under way is `backup_job`, a schedule `backup_schedule`; "
	 "an encrypted volume sealed by a named key says which "
	 "(`secret_key`). Its keys never appear.",
     .status = "200",
     .response = "{\"name\": \"string\", \"id\": \"string\", "
		 "\"service\": \"string\", \"instance\": \"string|null\", "
		 "\"state\": \"string\", \"size\": \"integer (bytes)\", "
		 "\"repl\": \"integer\", \"min_sync\": \"integer\", "
		 "\"ro\": \"boolean\", \"epoch\": \"integer\", "
		 "\"attached\": \"string|null\", "
		 "\"formatted\": \"boolean\", \"created\": \"integer\", "
		 "\"in_sync\": \"integer\", \"degraded\": \"boolean\", "
		 "\"replicas\": [{\"node\": \"string\", \"id\": \"string\", "
		 "\"state\": \"string\", \"since\": \"integer\", "
		 "\"percent\": \"integer|null\", "
		 "\"missed\": \"integer (bytes; absent when unknown)\"}], "
		 "\"io\": {\"written\": \"integer\", \"replicated\": "
		 "\"integer\", \"resync_sent\": \"integer\", "
		 "\"resync_planned\": \"integer (absent while detached)\", "
		 "\"note?\": \"string (what the attach waits for: a resize's "
		 "replicas or file system)\"}}",
     .errors = "not-found"},
    {.method = "POST",
     .pattern = "/v1/external-volumes/{name}/resize",
     .section = "Volumes",
     .summary =
	 "Grows an external volume while it is in use: every replica grows, "
	 "then the attached volume and its file system (online; where the "
	 "node does not give ext4's online resize the CAP_SYS_RESOURCE it "
	 "needs, at the next attach). `size` is bytes, or a string read as "
	 "`driver-options`' size (`\"3\"` is 3 GiB, `\"512M\"`). A smaller "
	 "size is refused (`409`: volumes never shrink), as is one no pool "
	 "holding a replica has room for; the same size changes nothing "
	 "(`changed: false`).",
     .request = "{\"size\": \"integer (bytes) | string\"}",
     .status = "200",
     .response = "{\"volume\": \"string\", \"size\": \"integer\", "
		 "\"changed\": \"boolean\"}",
     .errors = "bad-json invalid not-found conflict"},
    {.method = "GET",
     .pattern = "/v1/credentials",
     .section = "Volumes",
     .summary =
	 "The named credentials volume backups use, without their secrets "
	 "(`secret_key` reads `(hidden)`).",
     .status = "200",
     .response = "{\"credentials\": [{\"name\": \"string\", \"type\": "
		 "\"s3\", \"endpoint\": \"string\", \"region\": \"string\", "
		 "\"access_key\": \"string\", \"secret_key\": \"(hidden)\", "
		 "\"created\": \"integer\"}]}"},
    {.method = "POST",
     .pattern = "/v1/credentials",
     .section = "Volumes",
     .summary =
	 "Stores a named S3 credential for volume backups: the store's "
	 "`endpoint` (http:// or https://, path-style), `region` (default "
	 "`us-east-1`), the keys, and optionally `ca`, a PEM file on the "
	 "nodes to trust. Or, with `\"type\": \"key\"` and `value` (64 hex "
	 "digits), a key that seals the data keys of encrypted volumes whose "
	 "driver-options say `secret_key=NAME`. The secret is kept in the "
	 "cluster's store and never shown back (`(hidden)`), logged or put "
	 "in an event. A name in use is refused (`409`).",
     .request = "{\"type\": \"s3\", \"name\": \"string\", \"endpoint\": "
		"\"string\", \"region?\": \"string\", \"access_key\": "
		"\"string\", \"secret_key\": \"string\", \"ca?\": \"string\"}",
     .status = "201",
     .response = "{\"name\": \"string\", \"type\": \"s3\", \"endpoint\": "
		 "\"string\", \"secret_key\": \"(hidden)\"}",
     .errors = "bad-json invalid conflict"},
    {.method = "DELETE",
     .pattern = "/v1/credentials/{name}",
     .section = "Volumes",
     .summary = "Deletes a named credential; a key that seals a volume's "
		"data key is refused (`409`) while the volume exists, and "
		"one a backup schedule uses (a volume's or a spec's) while "
		"the schedule does.",
     .status = "200",
     .response = "{\"name\": \"string\", \"deleted\": true}",
     .errors = "not-found conflict"},
    {.method = "GET",
     .pattern = "/v1/external-volumes/{name}/snapshots",
     .section = "Volumes",
     .summary =
	 "The volume's snapshots, oldest first: each with its `state` "
	 "(`taking`, `ready`, `failed`, `deleting`), the volume's `size` "
	 "when it was asked for, when it was asked for (`created`) and "
	 "taken (`taken`, unix ms; 0 before), the replicas that hold it, "
	 "and `why` a failed one failed.",
     .status = "200",
     .response = "{\"volume\": \"string\", \"snapshots\": [{\"id\": "
		 "\"string\", \"name\": \"string\", \"state\": \"string\", "
		 "\"created\": \"integer\", \"taken\": \"integer\", "
		 "\"size\": \"integer\", \"replicas\": [\"string\"], "
		 "\"why\": \"string|null\"}]}",
     .errors = "not-found"},
    {.method = "POST",
     .pattern = "/v1/external-volumes/{name}/snapshots",
     .section = "Volumes",
     .summary =
	 "Takes a crash-consistent snapshot of an attached volume: its "
	 "attach process holds writes, flushes every replica and has each "
	 "in-sync replica keep that point by copy-on-write. `name` is "
	 "optional (default: the UTC time, `20261206-093000`). Answers at "
	 "once with the snapshot `taking`; it is `ready` when every "
	 "replica took it (`GET .../snapshots`). A volume that is not "
	 "attached, a name in use, or a 65th snapshot is refused (`409`). "
	 "When the pod declares `snapshot-hooks`, its `before` command runs "
	 "in the task first (a non-zero exit: `409`, no snapshot), the "
	 "answer waits until the snapshot is taken, and `after` runs; "
	 "`hooks` says what each did.",
     .request = "{\"name?\": \"string\"}",
     .status = "202",
     .response = "{\"volume\": \"string\", \"snapshot\": {\"id\": "
		 "\"string\", \"name\": \"string\", \"state\": \"string\", "
		 "\"created\": \"integer\", \"taken\": \"integer\", "
		 "\"size\": \"integer\", \"replicas\": [\"string\"], "
		 "\"why\": \"string|null\"}, \"hooks?\": {\"before?\": "
		 "{\"task\": \"string\", \"cmd\": \"string\", "
		 "\"exit_code\": \"integer\", \"output\": \"string\"}, "
		 "\"after?\": \"object\"}}",
     .errors = "bad-json invalid not-found conflict"},
    {.method = "DELETE",
     .pattern = "/v1/external-volumes/{name}/snapshots/{snap}",
     .section = "Volumes",
     .summary =
	 "Deletes a snapshot: its replicas let it go (at once when the "
	 "volume is attached, else at its next attach); the other "
	 "snapshots keep their bytes. A failed one's record goes at once.",
     .status = "202",
     .response = "{\"volume\": \"string\", \"snapshot_name\": "
		 "\"string\", \"changed\": \"boolean\", \"snapshot\": "
		 "\"object|null\"}",
     .errors = "not-found conflict"},
    {.method = "POST",
     .pattern = "/v1/external-volumes/{name}/snapshots/{snap}/clone",
     .section = "Volumes",
     .summary =
	 "A new volume `name` from a ready snapshot, for `service` "
	 "(default: the source's): kept until an instance of that service "
	 "whose volume has that name takes it (for a spec's external volume "
	 "`data` of pod `db`: `<service>-db-0`, or `<volume-name>-db-0`). "
	 "Each node that holds the snapshot makes a replica of it from its "
	 "own copy (sparse; an encrypted volume's ciphertext, with the same "
	 "key); the volume is usable once they did (its replicas `in_sync`). "
	 "The snapshot cannot be deleted meanwhile.",
     .request = "{\"name\": \"string\", \"service?\": \"string\"}",
     .status = "202",
     .response = "{\"name\": \"string\", \"state\": \"kept\", "
		 "\"replicas\": [{\"node\": \"string\", \"state\": \"new\", "
		 "\"clone\": \"string\"}]}",
     .errors = "bad-json invalid not-found conflict"},
    {.method = "POST",
     .pattern = "/v1/external-volumes/{name}/backups",
     .section = "Volumes",
     .summary =
	 "Backs an attached volume up to an S3 store with a named "
	 "credential: a snapshot (`backup-<id>`), then a node that holds it "
	 "(the attached one first) stores it in 1 MiB chunks, compressed and "
	 "kept once under their SHA-256, and a manifest. The first backup to "
	 "a place is full; the next ones are incremental on the last one "
	 "(whose snapshot is kept for that): only chunks written since are "
	 "read and sent. Answers once it started (`202`); `GET` says how it "
	 "goes. One at a time per volume (`409`).",
     .request = "{\"to\": \"s3://bucket[/prefix]\", \"credential\": "
		"\"string\"}",
     .status = "202",
     .response = "{\"volume\": \"string\", \"backup\": \"string\", "
		 "\"snapshot\": \"string\", \"node\": \"string\", \"to\": "
		 "\"string\", \"base\": \"string|null\", \"state\": "
		 "\"running\"}",
     .errors = "bad-json invalid not-found conflict unavailable"},
    {.method = "GET",
     .pattern = "/v1/external-volumes/{name}/backups",
     .section = "Volumes",
     .summary =
	 "The volume's last completed backup, this server's backup jobs of "
	 "it of the last day (`state` `starting`, `running`, `done`, "
	 "`failed`, `cancelled`, `lost` until it is started again; bytes "
	 "`done` of `total`, `uploaded`, `stored`, `reused` from the base, "
	 "`present` in the store already), and, with `?credential=NAME&"
	 "from=s3://bucket[/prefix]`, the backups the store holds for a "
	 "volume of that name (also one this cluster does not have). "
	 "`schedule`: the backup schedule that applies (`PUT "
	 ".../backup-schedule`, or the pod's in the spec), or null.",
     .query = "credential=NAME: the credential to read the store with "
	      "(with from)\n"
	      "from=s3://bucket[/prefix]: list the store's backups of this "
	      "volume there too (with credential)",
     .status = "200",
     .response = "{\"volume\": \"string\", \"last_backup\": {\"id\": "
		 "\"string|null\", \"to\": \"string|null\"}, \"schedule\": "
		 "\"object|null\", \"jobs\": "
		 "[{\"backup\": \"string\", \"state\": \"string\", "
		 "\"done\": \"integer|null\", \"total\": \"integer|null\", "
		 "\"restarts?\": \"integer\"}], "
		 "\"backups?\": [{\"backup\": \"string\", \"parent\": "
		 "\"string|null\", \"created\": \"integer\", \"size\": "
		 "\"integer\"}]}",
     .errors = "invalid not-found conflict unavailable"},
    {.method = "DELETE",
     .pattern = "/v1/external-volumes/{name}/backups/{id}",
     .section = "Volumes",
     .summary =
	 "Cancels backup `id`, the one under way: its node ends the process "
	 "(`stopped` says whether one ran; a node that is away cannot be "
	 "asked, and a process that outlives this only adds a manifest to "
	 "the store), the volume's record lets it go so that no server starts "
	 "it again, and its snapshot is deleted. An event `backup` "
	 "`running` → `cancelled`. `404` when it is not the backup under "
	 "way, `409` when it completed first.",
     .status = "200",
     .response = "{\"volume\": \"string\", \"backup\": \"string\", "
		 "\"state\": \"cancelled\", \"stopped\": \"boolean\", "
		 "\"node\": \"string|null\"}",
     .errors = "not-found conflict unavailable"},
    {.method = "PUT",
     .pattern = "/v1/external-volumes/{name}/backup-schedule",
     .section = "Volumes",
     .summary =
	 "Backs the volume up on a schedule: `every` seconds after its last "
	 "backup to the place (at once when it has none there), while it is "
	 "attached, by the leader's backups thread; after each one the store "
	 "keeps the newest `keep` backups (0: all) and the chunks they name, "
	 "the others are deleted. It goes before the pod's `backup-schedule` "
	 "in the spec. The answer is the schedule that applies now.",
     .request = "{\"to\": \"s3://bucket[/prefix]\", \"credential\": "
		"\"string\", \"every\": \"number\", \"keep?\": "
		"\"integer\"}",
     .status = "200",
     .response = "{\"volume\": \"string\", \"schedule\": {\"to\": "
		 "\"string\", \"credential\": \"string\", \"every\": "
		 "\"number\", \"keep\": \"integer\", \"source\": "
		 "\"volume|spec\", \"next\": \"integer\"}}",
     .errors = "bad-json invalid not-found conflict"},
    {.method = "DELETE",
     .pattern = "/v1/external-volumes/{name}/backup-schedule",
     .section = "Volumes",
     .summary =
	 "Ends the volume's own backup schedule (the pod's `backup-schedule` "
	 "in the spec, if any, applies again). The backups made stay.",
     .status = "200",
     .response = "{\"volume\": \"string\", \"schedule\": \"object|null\"}",
     .errors = "not-found"},
    {.method = "POST",
     .pattern = "/v1/external-volumes/{name}/from-backup",
     .section = "Volumes",
     .summary =
	 "A new volume `name` from a backup in an S3 store (this cluster's "
	 "or another's, with a credential for it): kept for `service` until "
	 "an instance of it whose external volume has that name takes it, "
	 "`repl` replicas (default 1) on the pools with the most room, each "
	 "made by its node from the backup (every chunk's hash checked); "
	 "usable once they are (`in_sync`). `volume` is the backed-up "
	 "volume's name (default: `name`); `backup` the backup's id "
	 "(default: the newest the store holds). An encrypted backup needs "
	 "its key: the backed-up volume in this cluster (a cluster key's "
	 "volume), or the named key its manifest names (`secret_key`).",
     .request = "{\"from\": \"s3://bucket[/prefix]\", \"backup?\": "
		"\"string\", \"credential\": \"string\", \"service\": "
		"\"string\", \"volume?\": \"string\", \"repl?\": "
		"\"integer\"}",
     .status = "202",
     .response = "{\"volume\": \"string\", \"service\": \"string\", "
		 "\"backup\": \"string\", \"state\": \"restoring\", "
		 "\"size\": \"integer\"}",
     .errors = "bad-json invalid conflict unavailable"},
    {.method = "POST",
     .pattern = "/v1/external-volumes/{name}/restore",
     .section = "Volumes",
     .summary =
	 "Restores a volume to a ready snapshot: the pod using it is "
	 "restarted, the volume attached again and rewritten from the "
	 "snapshot on every replica before the pod's tasks mount it "
	 "(only what changed since is written; later snapshots stay). "
	 "Every replica must be in sync and hold the snapshot (`409` "
	 "otherwise). `GET /v1/external-volumes/{name}` shows `restore` "
	 "until it is done; events say when.",
     .request = "{\"snapshot\": \"string\"}",
     .status = "202",
     .response = "{\"volume\": \"string\", \"snapshot\": \"string\", "
		 "\"state\": \"restoring\"}",
     .errors = "bad-json invalid not-found conflict"},
    {.method = "DELETE",
     .pattern = "/v1/volumes/{svc}",
     .section = "Volumes",
     .summary =
	 "Deletes every kept volume of a service. Volumes in use are not "
	 "touched (`409`); `service remove` with `delete_volumes`, or `pod "
	 "replace`, deletes those.",
     .status = "202",
     .response = "{\"deleting\": [{\"key\": \"string\", "
		 "\"node\": \"string\"}]}",
     .errors = "not-found conflict"},
    {.method = "DELETE",
     .pattern = "/v1/volumes/{svc}/{pod}",
     .section = "Volumes",
     .summary = "Deletes one pod instance's kept volume.",
     .status = "202",
     .response = "{\"deleting\": [{\"key\": \"string\", "
		 "\"node\": \"string\"}]}",
     .errors = "not-found conflict"},

    {.method = "POST",
     .pattern = "/v1/nodes/{node}/reset-identity",
     .section = "Nodes",
     .summary =
	 "Forgets a node's own credential, when its machine was rebuilt: the "
	 "next agent to register as that node (with a join token) gets it. "
	 "Its tasks and volumes are not touched.",
     .status = "200",
     .response = "{\"node\": \"string\", \"reset\": \"boolean\"}",
     .errors = "not-found unavailable"},

    /* ---- Endpoints, configurations, health ---- */
    {.method = "GET",
     .pattern = "/v1/service/{svc}/endpoints",
     .section = "Endpoints",
     .summary = "The names of the ports a service advertises.",
     .status = "200",
     .response = "[\"string\"]",
     .errors = "not-found"},
    {.method = "GET",
     .pattern = "/v1/service/{svc}/endpoints/{name}",
     .section = "Endpoints",
     .summary = "Where one advertised port is served, per instance.",
     .status = "200",
     .response = "{\"address\": [\"string (address:port)\"], "
		 "\"dns\": [\"string (the node's host name:port; it resolves "
		 "where that host name does)\"]}",
     .errors = "not-found"},
    {.method = "GET",
     .pattern = "/v1/service/{svc}/configurations",
     .section = "Configurations",
     .summary = "The ids of a service's configurations, oldest first.",
     .status = "200",
     .response = "[\"string\"]",
     .errors = "not-found"},
    {.method = "GET",
     .pattern = "/v1/service/{svc}/configurations/{id}",
     .section = "Configurations",
     .summary =
	 "One configuration: the spec model as `holdfast spec render --json` "
	 "prints it, with its id, options and creation time (secrets "
	 "hidden). `{id}` may be `target`; `targetId` answers the target's "
	 "id alone, as a JSON string.",
     .status = "200",
     .response = "{\"id\": \"string\", "
		 "\"options\": {\"<name>\": \"string\"}, "
		 "\"created\": \"integer (unix ms)\", "
		 "\"...\": \"the spec model's keys\"}",
     .errors = "not-found"},
    {.method = "GET",
     .pattern = "/v1/service/{svc}/configurations/{id}/source",
     .section = "Configurations",
     .summary =
	 "What a configuration was made from, as `PUT /v1/services/{svc}` "
	 "takes it back: the spec's text, its options and templates. `{id}` "
	 "may be `target`. The web UI edits it for an update. Admin only: "
	 "the text and options are as given, secrets included.",
     .status = "200",
     .response = "{\"id\": \"string\", \"file?\": \"string\", "
		 "\"spec\": \"string (the spec as given: a mustache "
		 "template)\", "
		 "\"options\": {\"<name>\": \"string\"}, "
		 "\"templates\": {\"<path>\": \"string\"}}",
     .errors = "not-found"},
    {.method = "GET",
     .pattern = "/v1/service/{svc}/health",
     .section = "Health",
     .summary =
	 "A service's health as the SDK reported it: `200` HEALTHY when "
	 "deployed and recovered, `202` DEPLOYING_OR_RECOVERING, `417` "
	 "ERROR when the deploy plan failed.",
     .status = "200 202 417",
     .response = "{\"service\": \"string\", "
		 "\"health\": \"string (HEALTHY, DEPLOYING_OR_RECOVERING, "
		 "ERROR)\", "
		 "\"deploy\": \"string (the deploy plan's status)\", "
		 "\"recovery\": \"string (the recovery plan's status)\"}",
     .errors = "not-found"},

    /* ---- Events ---- */
    {.method = "GET",
     .pattern = "/v1/events",
     .section = "Events",
     .summary =
	 "What the server changed and why, as server-sent events: each is "
	 "`id: N`, `event: KIND` and `data: JSON` (the shape below). A "
	 "client that reconnects with `Last-Event-ID` (or `since`) gets what "
	 "it missed, across server restarts. A comment line is sent every "
	 "few seconds while nothing happens.",
     .query = "since=ID: only events after this id\n"
	      "follow=false: end after the events so far (default: stream)\n"
	      "service=NAME: only this service's events\n"
	      "tail=N: start with the last N events (of the service)",
     .status = "200",
     .content_type = "text/event-stream",
     .response = "{\"id\": \"integer\", \"time\": \"string (ISO 8601, UTC)\", "
		 "\"who\": \"string|null (operator, scheduler, agent:NODE)\", "
		 "\"service\": \"string|null\", "
		 "\"kind\": \"string (task, plan, service, pod, node, step)\", "
		 "\"object\": \"string|null\", \"before\": \"string|null\", "
		 "\"after\": \"string|null\", \"why\": \"string|null\"}",
     .errors = "invalid"},
    {.method = "GET",
     .pattern = "/v1/stacks",
     .section = "Stacks",
     .summary = "Every stack (`holdfast stack list`), each with its "
		"services' phases in dependency order.",
     .status = "200",
     .response = "{\"stacks\": [" STACK_SHAPE "]}"},
    {.method = "POST",
     .pattern = "/v1/stacks",
     .section = "Stacks",
     .summary =
	 "Deploys a stack (`holdfast stack deploy`; docs/stacks.md): the "
	 "stack file and every spec it names, with their config templates. "
	 "The file is parsed and its dependencies checked, each spec loads "
	 "under its service's name with its options, and every endpoint an "
	 "option names must be a port that service's spec advertises; any "
	 "problem is `400` with `diagnostics` (file:line:col) and changes "
	 "nothing. A stack of that name (`exists`), or a service name another "
	 "stack or a service outside the stack holds (`conflict`), is "
	 "refused. The services then start in dependency order: each once "
	 "those it depends on completed their deploy plans, with their "
	 "endpoints filled into its options.",
     .request = STACK_BODY,
     .status = "201",
     .response = STACK_SHAPE,
     .errors = "bad-json invalid invalid-spec exists conflict"},
    {.method = "GET",
     .pattern = "/v1/stacks/{stack}",
     .section = "Stacks",
     .summary = "One stack (`holdfast stack status`), with each service's "
		"options as written.",
     .status = "200",
     .response = STACK_SHAPE,
     .errors = "not-found"},
    {.method = "PUT",
     .pattern = "/v1/stacks/{stack}",
     .section = "Stacks",
     .summary =
	 "Updates a stack to a new stack file (`holdfast stack update`), "
	 "checked as a deploy is. Services whose rendered spec (spec, options "
	 "with endpoints filled in, templates) changed are updated in "
	 "dependency order, and only those; services the file no longer "
	 "names are removed, keeping their volumes; new ones are deployed. "
	 "A stack being removed is `conflict`; a file naming another stack, "
	 "`invalid`.",
     .request = STACK_BODY,
     .status = "200",
     .response = STACK_SHAPE,
     .errors = "bad-json invalid invalid-spec not-found conflict"},
    {.method = "DELETE",
     .pattern = "/v1/stacks/{stack}",
     .section = "Stacks",
     .summary = "Removes a stack (`holdfast stack remove`): its services "
		"go in reverse dependency order, each once those depending "
		"on it are gone; their volumes are kept unless "
		"`delete_volumes=true`. The stack's record goes last.",
     .query = "delete_volumes=true: delete the services' volumes too",
     .status = "202",
     .response = STACK_SHAPE,
     .errors = "not-found"},
    {.method = "POST",
     .pattern = "/v1/stacks/{stack}/diff",
     .section = "Stacks",
     .summary =
	 "What an update with this stack file would do, per service, without "
	 "doing it (`holdfast stack diff`): `add`, `remove`, `none`, or "
	 "`update` with the service's diff. Endpoints not known yet are "
	 "compared as placeholders (`endpoints_pending`).",
     .request = STACK_BODY,
     .status = "200",
     .response =
	 "{\"stack\": \"string\", \"services\": [{\"name\": \"string\", "
	 "\"service\": \"string\", \"change\": \"string (add, update, none, "
	 "remove, invalid)\", \"diff?\": \"object (allowed, refusals, "
	 "changes, pods: as POST /v1/services/{svc}/diff)\", \"refused?\": "
	 "\"string\", \"message?\": \"string\", \"endpoints_pending?\": "
	 "\"boolean\"}]}",
     .errors = "bad-json invalid invalid-spec not-found"},
    {.method = "GET",
     .pattern = "/v1/remotes",
     .section = "Remote clusters",
     .summary =
	 "The remote clusters this one knows (`holdfast remote list`; "
	 "disaster recovery), without their keys, each with its link as the "
	 "leader last checked it (every 5 s, `GET /v1/dr/hello` over mutual "
	 "TLS): `up` with the round trip and the remote's cluster id, `down` "
	 "with why, or `unknown` before the first check.",
     .status = "200",
     .response = REMOTES_SHAPE},
    {.method = "POST",
     .pattern = "/v1/remotes",
     .section = "Remote clusters",
     .summary =
	 "Registers a remote cluster (`holdfast remote add`): `url` its "
	 "servers' API (https only), `ca` the PEM of the CA its server "
	 "certificate chains to, `cert` and `key` the PEM of this cluster's "
	 "client certificate and its key, which the remote's `server "
	 "--client-ca` must have signed. The remote knows this cluster by "
	 "the certificate's common name (`as`). The key is kept in the "
	 "store and never shown back, logged or put in an event. A name in "
	 "use is refused (`409`); a certificate and key that are no pair, "
	 "or a certificate without a common name, `400`.",
     .request = "{\"name\": \"string\", \"url\": \"string "
		"(https://HOST:PORT)\", \"ca\": \"string (PEM)\", \"cert\": "
		"\"string (PEM)\", \"key\": \"string (PEM)\"}",
     .status = "201",
     .response = REMOTE_SHAPE,
     .errors = "bad-json invalid exists"},
    {.method = "GET",
     .pattern = "/v1/remotes/{name}",
     .section = "Remote clusters",
     .summary = "One remote cluster and its link (`holdfast remote show`).",
     .status = "200",
     .response = REMOTE_SHAPE,
     .errors = "not-found"},
    {.method = "DELETE",
     .pattern = "/v1/remotes/{name}",
     .section = "Remote clusters",
     .summary = "Forgets a remote cluster and its key (`holdfast remote "
		"remove`).",
     .status = "200",
     .response = "{\"name\": \"string\", \"removed\": true}",
     .errors = "not-found"},
    {.method = "GET",
     .pattern = "/v1/dr/hello",
     .section = "Remote clusters",
     .summary =
	 "A remote cluster's link check. Only a client whose TLS "
	 "certificate this server's `--client-ca` signed may call it (and "
	 "such a client may call nothing else): it answers this cluster's "
	 "id and the name it knows the caller by (the certificate's common "
	 "name). Without such a certificate: `401`; with a token: `403`.",
     .status = "200",
     .response = "{\"cluster\": \"string\", \"remote\": \"string\", "
		 "\"version\": \"string\", \"time\": \"integer (unix ms)\"}"},
    {.method = "PUT",
     .pattern = "/v1/dr/standby/{svc}",
     .section = "Remote clusters",
     .summary =
	 "A remote cluster keeps service `svc` here as its standby (the "
	 "primary's DR thread sends it; role REMOTE only): its target "
	 "configuration, which must load on this cluster, and its plans' "
	 "parameters. A standby runs no pod, and a service of that name "
	 "cannot be deployed here meanwhile. Refused (`409`) when `svc` "
	 "runs here or is another remote's standby.",
     .request = "{\"cluster\": \"string\", \"config\": {\"id\": "
		"\"string\", \"text\": \"string\", \"file?\": \"string\", "
		"\"options\": \"object\", \"templates\": \"object\", "
		"\"counts\": \"object\"}, \"plans\": \"object (plan -> "
		"parameters)\"}",
     .status = "200",
     .response = "{\"service\": \"string\", \"role\": \"standby\", "
		 "\"config\": \"string\"}",
     .errors = "bad-json invalid invalid-spec conflict"},
    {.method = "DELETE",
     .pattern = "/v1/dr/standby/{svc}",
     .section = "Remote clusters",
     .summary = "The remote cluster's standby of `svc` goes (`dr disable` "
		"on the primary; role REMOTE, its own standbys only).",
     .status = "200",
     .response = "{\"service\": \"string\", \"removed\": true}",
     .errors = "not-found"},
    {.method = "GET",
     .pattern = "/v1/dr",
     .section = "Remote clusters",
     .summary = "Every service with disaster recovery on this cluster "
		"(`holdfast dr list`): primaries, then standbys, each as "
		"`GET /v1/service/{svc}/dr` shows it.",
     .status = "200",
     .response = "{\"services\": [\"object\"]}"},
    {.method = "POST",
     .pattern = "/v1/service/{svc}/dr",
     .section = "Remote clusters",
     .summary =
	 "Replicates the service to a remote cluster (`holdfast -s SVC dr "
	 "enable --to REMOTE`): its target configuration is sent there "
	 "whenever it changes, and at least every minute, as a standby "
	 "service; each of its replicated volumes streams every write to "
	 "a standby replica there through a journal on its node "
	 "(`journal_size` bytes, default 256 MiB, a multiple of 4096 from "
	 "16 MiB; `when_full`: \"resync\", the default, or \"block\"). "
	 "Again to the same remote: the journal settings change (200, "
	 "`updated`); to another: 409 (docs/operations.md, \"Disaster "
	 "recovery\").",
     .request = "{\"to\": \"string (a remote cluster)\", "
		"\"journal_size\": \"integer?\", \"when_full\": "
		"\"string?\"}",
     .status = "201",
     .response = "{\"service\": \"string\", \"role\": \"primary\", "
		 "\"to\": \"string\", \"updated\": \"boolean\"}",
     .errors = "bad-json invalid not-found conflict"},
    {.method = "DELETE",
     .pattern = "/v1/service/{svc}/dr",
     .section = "Remote clusters",
     .summary = "Stops replicating the service (`dr disable`); the "
		"remote is told to drop its standby (`standby_told`).",
     .status = "200",
     .response = "{\"service\": \"string\", \"to\": \"string\", "
		 "\"disabled\": true, \"standby_told\": \"boolean\"}",
     .errors = "not-found"},
    {.method = "GET",
     .pattern = "/v1/service/{svc}/dr",
     .section = "Remote clusters",
     .summary =
	 "The service's disaster recovery (`holdfast -s SVC dr status`). "
	 "On the primary: where to, the target configuration and the one "
	 "the standby acknowledged, when, whether they are the same, the "
	 "last error, each volume's stream, a switchover under way, "
	 "`fenced` when the service moved to the standby by a failover. "
	 "On the standby: from which remote cluster, the configuration it "
	 "holds and when it came, and each volume's standby replica with "
	 "its `applied_time` (ns: the newest write it holds was made then "
	 "on the primary; null while its copy is not consistent). A "
	 "service with several volumes is a `consistency_group`: each "
	 "volume's `spooled` bytes wait until every volume has received "
	 "as far, and are then applied together.",
     .status = "200",
     .response = "{\"service\": \"string\", \"role\": "
		 "\"primary|standby\", \"to?\": \"string\", \"since?\": "
		 "\"integer\", \"journal?\": {\"size\": \"integer\", "
		 "\"when_full\": \"string\"}, \"from?\": \"string\", "
		 "\"cluster?\": "
		 "\"string\", \"config\": {\"target?\": \"string|null\", "
		 "\"replicated?\": \"string|null\", \"replicated_at?\": "
		 "\"integer|null\", \"in_sync?\": \"boolean\", \"error?\": "
		 "\"string|null\", \"id?\": \"string\", \"received_at?\": "
		 "\"integer\"}, \"volumes?\": [{\"volume\": \"string\", "
		 "\"node?\": \"string\", \"standby?\": \"object\", "
		 "\"stream?\": \"object|null\", \"replica?\": \"string\", "
		 "\"size?\": \"integer\", \"applied_time?\": "
		 "\"integer|null\", \"consistent?\": \"boolean\", "
		 "\"spooled?\": \"integer|null\"}], "
		 "\"consistency_group?\": \"boolean\", "
		 "\"switchover?\": \"object\", \"fenced?\": \"object\"}",
     .errors = "not-found"},
    {.method = "POST",
     .pattern = "/v1/service/{svc}/dr/failover",
     .section = "Remote clusters",
     .summary =
	 "On a standby (`holdfast -s SVC dr failover`): the service starts "
	 "here from its standby replicas, the primary being lost. Each "
	 "volume becomes the service's kept volume with its standby "
	 "replica in sync, at an epoch above the primary's (whose stream "
	 "is then refused), and the configuration the primary sent is "
	 "deployed. `last_write_applied`: when the oldest of the volumes' "
	 "newest applied writes was made on the primary (ns since the "
	 "epoch): writes made after it may be lost. Refused (409) when a "
	 "volume has no standby replica here, or one not known to be "
	 "consistent, unless `force`.",
     .request = "{\"force?\": \"boolean\"}",
     .status = "200",
     .response = "{\"service\": \"string\", \"role\": \"primary\", "
		 "\"deployed\": \"boolean\", \"last_write_applied\": "
		 "\"integer|null\", \"deploy_error?\": \"string\"}",
     .errors = "bad-json not-found conflict"},
    {.method = "POST",
     .pattern = "/v1/service/{svc}/dr/switchover",
     .section = "Remote clusters",
     .summary =
	 "On a primary (`holdfast -s SVC dr switchover`): a planned move "
	 "to the standby that loses nothing. Refused (409) unless the "
	 "standby acknowledged the target configuration and every volume "
	 "streams to a consistent standby replica over a live link. The "
	 "service stops here (its volumes kept); each volume's detach "
	 "waits until its standby acknowledged every write; the standby "
	 "is then asked to take over (`POST /v1/dr/standby/{svc}/promote`) "
	 "and to replicate the service back to the remote named `back` "
	 "there (default: its only remote); then this cluster's volumes go "
	 "and it holds the standby the new primary sends. Progress is in "
	 "`GET /v1/service/{svc}/dr`'s `switchover` (phase stopping, "
	 "promoting or failed, and a message); when done that route shows "
	 "the standby.",
     .request = "{\"back?\": \"string\"}",
     .status = "202",
     .response = "{\"service\": \"string\", \"role\": \"primary\", "
		 "\"switchover\": {\"phase\": \"string\", \"since\": "
		 "\"integer\", \"back?\": \"string\", \"volumes\": "
		 "[\"string\"], \"by\": \"string\", \"message\": "
		 "\"string\"}}",
     .errors = "bad-json invalid not-found conflict"},
    {.method = "POST",
     .pattern = "/v1/dr/standby/{svc}/promote",
     .section = "Remote clusters",
     .summary =
	 "A switchover's last step (role REMOTE; only the cluster that "
	 "sent the standby may): the standby takes over as `dr failover` "
	 "does (refused unless every volume's copy is consistent), and "
	 "the service is replicated back to remote `back` (default: the "
	 "only remote here; 409 when there is none or several).",
     .request = "{\"back?\": \"string\"}",
     .status = "200",
     .response = "{\"service\": \"string\", \"role\": \"primary\", "
		 "\"deployed\": \"boolean\", \"last_write_applied\": "
		 "\"integer|null\", \"replicated_to\": \"string|null\", "
		 "\"replicate_error?\": \"string\"}",
     .errors = "bad-json not-found conflict forbidden"},
    {.method = "POST",
     .pattern = "/v1/service/{svc}/dr/failback",
     .section = "Remote clusters",
     .summary =
	 "On an old primary whose service failed over to its standby "
	 "(`holdfast -s SVC dr failback`): the remote is asked to "
	 "replicate the service here (`POST /v1/dr/failback/{svc}`, to its "
	 "remote `back`, default its only one), this cluster's copies of "
	 "the volumes are kept as the standby's (the remote sends only "
	 "what differs from them) and the `/dr` record goes; the remote's "
	 "configuration then comes as a standby. Refused (409) while the "
	 "service runs here; unavailable (503) while a copy the fence "
	 "stopped is still stopping (the CLI's `--wait` waits for it).",
     .request = "{\"back?\": \"string\"}",
     .status = "200",
     .response = "{\"service\": \"string\", \"role\": \"standby\", "
		 "\"from\": \"string\", \"replicated_to\": \"string\"}",
     .errors = "bad-json invalid not-found conflict unavailable"},
    {.method = "POST",
     .pattern = "/v1/dr/failback/{svc}",
     .section = "Remote clusters",
     .summary =
	 "A failback's request to the new primary (role REMOTE): "
	 "replicate service `svc`, which runs here, to remote `back` "
	 "(default: the only remote here; 409 when there is none or "
	 "several), as `dr enable` does.",
     .request = "{\"back?\": \"string\"}",
     .status = "200",
     .response = "{\"service\": \"string\", \"role\": \"primary\", "
		 "\"replicated_to\": \"string\"}",
     .errors = "bad-json not-found conflict forbidden"},
};

/* Error codes the HTTP layer answers besides err.h's. */
static const struct {
	const char *name;
	int status;
	const char *when;
} layer_codes[] = {
    {"bad-request", 400,
     "the request is malformed: an unknown query key, a bad encoding"},
    {"bad-json", 400, "the body is not JSON (the message says where)"},
    {"method-not-allowed", 405, "the path exists with other methods (see `Allow`)"},
    {"request-timeout", 408,
     "the request's headers and body did not arrive within the server's "
     "`--request-timeout`"},
    {"unsupported-media-type", 415, "a request body that is not JSON"},
    {"headers-too-large", 431,
     "the request line and headers are over 32 KiB"},
};

static const struct {
	const char *name, *msg;
	int status;
} err_codes[] = {
#define HF_ERR_DOC(code, name, msg, http) {name, msg, http},
    HF_ERR_MAP(HF_ERR_DOC)
#undef HF_ERR_DOC
};

/* The HTTP status of an error name, or 0 when it is not one. */
static int error_status(const char *name, size_t len)
{
	for (size_t i = 0; i < HF_ARRAY_LEN(err_codes); i++)
		if (strlen(err_codes[i].name) == len &&
		    strncmp(err_codes[i].name, name, len) == 0)
			return err_codes[i].status;
	for (size_t i = 0; i < HF_ARRAY_LEN(layer_codes); i++)
		if (strlen(layer_codes[i].name) == len &&
		    strncmp(layer_codes[i].name, name, len) == 0)
			return layer_codes[i].status;
	return 0;
}

static const char *role_of(unsigned flags)
{
	unsigned auth =
	    flags & ~(unsigned)(HF_ROUTE_STREAM | HF_ROUTE_BLOCKING);

	if (auth == HF_ROUTE_READ)
		return "read or admin";
	if (auth == HF_ROUTE_WRITE)
		return "admin";
	if (auth == HF_ROUTE_AGENT)
		return "the node's own credential";
	if (auth == HF_ROUTE_JOIN)
		return "agent (join) or admin";
	if (auth == HF_ROUTE_PUBLIC)
		return "none";
	if (auth == HF_ROUTE_REMOTE)
		return "a remote cluster's client certificate (--client-ca)";
	return NULL;
}

static const struct route_doc *find_doc(const struct hf_http_route *r)
{
	for (size_t i = 0; i < HF_ARRAY_LEN(docs); i++)
		if (strcmp(docs[i].method, r->method) == 0 &&
		    strcmp(docs[i].pattern, r->pattern) == 0)
			return &docs[i];
	return NULL;
}

/*
 * True when word is one of the space-separated words of list (a query key
 * is compared without its ":bool").
 */
static bool has_word(const char *list, const char *word, size_t len)
{
	for (const char *p = list; p && *p;) {
		size_t n;

		p += strspn(p, " ");
		n = strcspn(p, " ");
		if (strcspn(p, ": ") == len && strncmp(p, word, len) == 0)
			return true;
		p += n;
	}
	return false;
}

/*
 * Checks one route against its description: the same query keys, shapes
 * that are JSON, known error names, a known role. Returns an error
 * sentence (the caller frees it) or NULL.
 */
static char *check_route(const struct hf_http_route *r,
			 const struct route_doc *d)
{
	const char *shapes[] = {d->request, d->response};

	if (!role_of(r->flags))
		return hf_xasprintf("%s %s: unknown route flags %#x", r->method,
				    r->pattern, r->flags);
	for (const char *p = d->query; p && *p;) {
		size_t n = strcspn(p, "=");

		if (!has_word(r->query_keys, p, n))
			return hf_xasprintf("%s %s: query key '%.*s' is "
					    "described but not taken",
					    r->method, r->pattern, (int)n, p);
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	for (const char *p = r->query_keys; p && *p;) {
		bool found = false;
		size_t n;

		p += strspn(p, " ");
		n = strcspn(p, ": ");
		for (const char *q = d->query; q && *q && !found;) {
			found = strcspn(q, "=") == n && strncmp(q, p, n) == 0;
			q = strchr(q, '\n');
			q = q ? q + 1 : NULL;
		}
		if (n && !found)
			return hf_xasprintf("%s %s: query key '%.*s' has no "
					    "description",
					    r->method, r->pattern, (int)n, p);
		p += strcspn(p, " ");
	}
	for (size_t i = 0; i < HF_ARRAY_LEN(shapes); i++) {
		json_error_t jerr;
		json_t *j;

		if (!shapes[i])
			continue;
		j = json_loads(shapes[i], JSON_REJECT_DUPLICATES, &jerr);
		if (!j)
			return hf_xasprintf("%s %s: a shape is not JSON: %s",
					    r->method, r->pattern, jerr.text);
		json_decref(j);
	}
	for (const char *p = d->errors; p && *p;) {
		size_t n;

		p += strspn(p, " ");
		n = strcspn(p, " ");
		if (n && !error_status(p, n))
			return hf_xasprintf("%s %s: unknown error name '%.*s'",
					    r->method, r->pattern, (int)n, p);
		p += n;
	}
	if (!d->response && !d->content_type)
		return hf_xasprintf("%s %s: a JSON answer needs a shape",
				    r->method, r->pattern);
	return NULL;
}

/* Checks the whole table; returns an error sentence or NULL. */
static char *check_all(const struct hf_http_route *routes, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct route_doc *d = find_doc(&routes[i]);
		char *err;

		if (!d)
			return hf_xasprintf("route %s %s has no description in "
					    "src/server/api_doc.c",
					    routes[i].method, routes[i].pattern);
		err = check_route(&routes[i], d);
		if (err)
			return err;
	}
	for (size_t k = 0; k < HF_ARRAY_LEN(docs); k++) {
		bool found = false;

		for (size_t i = 0; i < n && !found; i++)
			found = strcmp(docs[k].method, routes[i].method) == 0 &&
				strcmp(docs[k].pattern, routes[i].pattern) == 0;
		if (!found)
			return hf_xasprintf("the description of %s %s has no "
					    "route in src/server/api.c",
					    docs[k].method, docs[k].pattern);
	}
	return NULL;
}

int hf_api_doc_check(const struct hf_http_route *routes, size_t n,
		     char **err)
{
	*err = check_all(routes, n);
	return *err ? HF_EINVAL : 0;
}

/* A shape, re-indented, in a fenced block. */
static void put_shape(FILE *f, const char *shape)
{
	json_t *j = json_loads(shape, JSON_REJECT_DUPLICATES, NULL);
	char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	fprintf(f, "```json\n%s\n```\n\n", text);
	free(text);
	json_decref(j);
}

/* GitHub's anchor of a heading: lower case, punctuation dropped. */
static void put_anchor(FILE *f, const char *method, const char *pattern)
{
	char *heading = hf_xasprintf("%s %s", method, pattern);

	for (const char *p = heading; *p; p++) {
		if (*p == ' ')
			fputc('-', f);
		else if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			 *p == '-' || *p == '_')
			fputc(*p, f);
		else if (*p >= 'A' && *p <= 'Z')
			fputc(*p - 'A' + 'a', f);
	}
	free(heading);
}

static void put_route(FILE *f, const struct hf_http_route *r,
		      const struct route_doc *d)
{
	fprintf(f, "### `%s %s`\n\n%s\n\n", r->method, r->pattern, d->summary);
	fprintf(f, "- Token: %s.\n", role_of(r->flags));
	if (d->query) {
		fprintf(f, "- Query:\n");
		for (const char *p = d->query; p && *p;) {
			size_t n = strcspn(p, "\n");
			size_t k = strcspn(p, ":");

			fprintf(f, "  - `%.*s`%.*s\n", (int)k, p, (int)(n - k),
				p + k);
			p += n;
			p += *p == '\n';
		}
	} else {
		fprintf(f, "- Query: none.\n");
	}
	fprintf(f, "- Answers: ");
	for (const char *p = d->status; *p;) {
		size_t n = strcspn(p, " ");

		fprintf(f, "`%.*s`%s", (int)n, p, p[n] ? ", " : "");
		p += n;
		p += strspn(p, " ");
	}
	fprintf(f, ", %s%s.\n", d->content_type ? d->content_type
						 : "application/json",
		r->flags & HF_ROUTE_STREAM ? ", streamed" : "");
	if (d->errors) {
		fprintf(f, "- Errors:");
		for (const char *p = d->errors; *p;) {
			size_t n = strcspn(p, " ");

			fprintf(f, " `%d %.*s`%s", error_status(p, n), (int)n, p,
				p[n] ? "," : ".\n");
			p += n;
			p += strspn(p, " ");
		}
	}
	fputc('\n', f);
	if (d->request) {
		fprintf(f, "Request body:\n\n");
		put_shape(f, d->request);
	} else {
		fprintf(f, "No request body.\n\n");
	}
	if (d->response) {
		fprintf(f, "%s:\n\n", d->content_type ? "Each event's data"
						      : "Response body");
		put_shape(f, d->response);
	}
}

static const char intro[] =
    "The server's HTTP API is what the `holdfast` command line uses, and "
    "all it uses: anything the CLI does, a script can do with these "
    "routes. Agents use `POST /v1/agent/register` and "
    "`POST /v1/agent/sync` (see [protocol.md](protocol.md)).\n"
    "\n"
    "## Conventions\n"
    "\n"
    "- **Address.** `http://127.0.0.1:7070` unless the server was given "
    "`--listen`; `https://` with `--tls-cert`/`--tls-key`. Path "
    "parameters are percent-encoded (`/v1/service/a%2Fb/plans` names "
    "service `a/b`).\n"
    "- **Bodies.** Requests and answers are JSON (`Content-Type: "
    "application/json`) unless a route says otherwise; a request body is "
    "at most 1 MiB (`413 too-large`).\n"
    "- **Tokens.** Every request but `GET /v1/version` and the web UI's "
    "files (`GET /ui/...`) carries `Authorization: Bearer TOKEN`. A token of the tokens file has a role: "
    "`read` reads, `admin` may also change anything, `agent` lets a new "
    "node register its own credential, with which that node's agent "
    "syncs. A server without a tokens file has an admin credential of "
    "its own that the CLI of the user running it finds (see "
    "[operations.md](operations.md)). A missing or unknown token gets "
    "`401 unauthorized` (on every path, so that routes cannot be probed), "
    "a token whose role is not enough `403 forbidden`.\n"
    "- **Cross-site requests.** A `Host` that does not name the server, "
    "or an `Origin` other than its own, gets `403 forbidden`; a request "
    "body must be JSON (`415 unsupported-media-type`). `Host`, `Origin`, "
    "`Authorization`, `Content-Type` and `Content-Length` are given once "
    "(else `400 bad-request`).\n"
    "- **Connections.** Each answer closes its connection. One client "
    "address may hold `--max-connections-per-ip` connections at once, "
    "all clients `--max-connections` (else `503 unavailable`); a request "
    "must arrive whole within `--request-timeout` seconds (else `408 "
    "request-timeout`).\n"
    "- **Query keys.** Each route takes the keys listed for it, each at "
    "most once; any other key, a repeated one, or a boolean that is not "
    "`true`, `false`, `1` or `0` is answered `400 bad-request`.\n"
    "- **Several servers.** Only the leader answers writes, the agents' "
    "sync, events, task logs and exec and metrics; the others answer reads "
    "from the store and everything else with `503 not-leader` and the "
    "leader's URL in `leader`. `GET /v1/leader` says who leads.\n"
    "- **Shapes.** Below, a JSON shape gives each value's type (`string`, "
    "`integer`, `number`, `boolean`, `null`, `object`, several joined by "
    "`|`), with a comment in parentheses. A key ending in `?` may be "
    "absent; `<name>` stands for any number of keys; `...` for keys not "
    "listed; an array holds elements of the shape shown.\n"
    "\n"
    "## Errors\n"
    "\n"
    "An error is answered with its HTTP status and a body "
    "`{\"error\": NAME, \"message\": SENTENCE}`; an invalid spec adds "
    "`diagnostics` (each `{level, file, line, col, path, message}`), a "
    "refused update the diff. The names, from `src/common/err.h`:\n"
    "\n"
    "| Status | Error | Meaning |\n"
    "|---|---|---|\n";

static int write_md(FILE *f, const struct hf_http_route *routes, size_t n)
{
	struct hf_strlist sections = {0};

	fprintf(f, "# The holdfast HTTP API\n\n"
		   "<!-- Generated by `holdfast _doc api` from the route table "
		   "(src/server/api.c) and its descriptions "
		   "(src/server/api_doc.c). Do not edit: `make docs` writes "
		   "it, and the tests fail when it is out of date. -->\n\n"
		   "holdfast %s.\n\n%s",
		HF_VERSION, intro);
	for (size_t i = 0; i < HF_ARRAY_LEN(err_codes); i++)
		fprintf(f, "| %d | `%s` | %s |\n", err_codes[i].status,
			err_codes[i].name, err_codes[i].msg);
	for (size_t i = 0; i < HF_ARRAY_LEN(layer_codes); i++)
		fprintf(f, "| %d | `%s` | %s |\n", layer_codes[i].status,
			layer_codes[i].name, layer_codes[i].when);
	fprintf(f, "\nEach route below lists the errors of its own; any route "
		   "may also answer `400 bad-request`, `401 unauthorized`, "
		   "`403 forbidden`, `500 internal` and, on a server that does "
		   "not lead, `503 not-leader`, `503 no-leader`, `503 "
		   "store-unwritable` or `503 store-unreadable`.\n\n"
		   "## Routes\n\n| Route | Token | What it does |\n"
		   "|---|---|---|\n");
	for (size_t i = 0; i < n; i++) {
		const struct route_doc *d = find_doc(&routes[i]);
		size_t len = strcspn(d->summary, ".:");

		if (!hf_strlist_has(&sections, d->section))
			hf_strlist_push(&sections, d->section);
		fprintf(f, "| [`%s %s`](#", routes[i].method,
			routes[i].pattern);
		put_anchor(f, routes[i].method, routes[i].pattern);
		fprintf(f, ") | %s | %.*s |\n",
			(routes[i].flags &
			 ~(unsigned)(HF_ROUTE_STREAM | HF_ROUTE_BLOCKING)) ==
				HF_ROUTE_READ
			    ? "read"
			    : role_of(routes[i].flags),
			(int)len, d->summary);
	}
	fputc('\n', f);
	for (size_t s = 0; s < sections.len; s++) {
		fprintf(f, "## %s\n\n", sections.items[s]);
		for (size_t i = 0; i < n; i++) {
			const struct route_doc *d = find_doc(&routes[i]);

			if (strcmp(d->section, sections.items[s]) == 0)
				put_route(f, &routes[i], d);
		}
	}
	hf_strlist_release(&sections);
	return 0;
}

int hf_api_doc_write(FILE *f, char **err)
{
	size_t n;
	const struct hf_http_route *routes = hf_server_routes(&n);

	if (hf_api_doc_check(routes, n, err))
		return HF_EINVAL;
	return write_md(f, routes, n);
}

static json_t *words_json(const char *list, bool numbers)
{
	json_t *a = json_array();

	for (const char *p = list; p && *p;) {
		size_t n;

		p += strspn(p, " ");
		n = strcspn(p, " ");
		if (n && numbers)
			json_array_append_new(a, json_integer(atoi(p)));
		else if (n) /* a query key without its ":bool" */
			json_array_append_new(a, json_stringn(p, strcspn(p, ": ")));
		p += n;
	}
	return a;
}

static json_t *shape_json(const char *shape)
{
	return shape ? json_loads(shape, JSON_REJECT_DUPLICATES, NULL)
		     : json_null();
}

int hf_api_doc_write_json(FILE *f, char **err)
{
	size_t n;
	const struct hf_http_route *routes = hf_server_routes(&n);
	json_t *a;

	if (hf_api_doc_check(routes, n, err))
		return HF_EINVAL;
	a = json_array();
	for (size_t i = 0; i < n; i++) {
		const struct route_doc *d = find_doc(&routes[i]);

		json_array_append_new(
		    a,
		    json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:o, s:o, "
			      "s:b}",
			      "method", routes[i].method, "pattern",
			      routes[i].pattern, "role", role_of(routes[i].flags),
			      "query", words_json(routes[i].query_keys, false),
			      "request", shape_json(d->request), "status",
			      words_json(d->status, true), "content_type",
			      d->content_type ? d->content_type
					      : "application/json",
			      "response", shape_json(d->response), "errors",
			      words_json(d->errors, false), "stream",
			      (routes[i].flags & HF_ROUTE_STREAM) != 0));
	}
	if (json_dumpf(a, f, JSON_INDENT(1) | JSON_PRESERVE_ORDER) ||
	    fputc('\n', f) == EOF) {
		json_decref(a);
		*err = hf_xstrdup("cannot write the output");
		return HF_EIO;
	}
	json_decref(a);
	return 0;
}
