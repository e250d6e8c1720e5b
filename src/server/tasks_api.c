/*
 * tasks_api.c - a task's logs and `exec`, served by the server for the
 * CLI and fetched from the agent that runs the task (its own small API,
 * reported in the sync's info). The server never reads a node's files.
 * Both routes are BLOCKING (http.h): their handlers and the log stream's
 * steps wait on the agent from a worker thread.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/http.h"
#include "common/err.h"
#include "server/state.h"
#include "server/tasks_api.h"

#define AGENT_TIMEOUT_MS 10000
#define EXEC_TIMEOUT_MS 130000
/* A followed log with nothing new is asked again this often. */
#define LOG_POLL_MS 300

/*
 * Resolves {task}: a task id, or a task name "<pod>-<i>-<task>" meaning
 * its current launch. Lock held. Fills the agent's address and key.
 */
static int resolve(struct hf_srv *s, const char *only_svc, const char *name,
		   char **id, char **api, char **key, char **why)
{
	size_t matches = 0;
	struct hf_instance *found = NULL;
	struct hf_task_slot *found_sl = NULL;
	struct hf_node *n;

	/* A task name may exist in several services: it must be unique. */
	for (size_t i = 0; i < s->model.services.len; i++) {
		struct hf_service *svc = s->model.services.items[i];

		if (only_svc && strcmp(svc->name, only_svc) != 0)
			continue;
		for (size_t k = 0; k < svc->instances.len; k++) {
			struct hf_instance *in = svc->instances.items[k];

			for (size_t t = 0; t < in->slots.len; t++) {
				struct hf_task_slot *sl = &in->slots.items[t];
				char *tn;
				bool match;

				if (!sl->cur)
					continue;
				tn = hf_xasprintf("%s-%s", in->name, sl->task);
				match = strcmp(tn, name) == 0 ||
					strcmp(sl->cur->id, name) == 0;
				free(tn);
				if (match && !matches++) {
					found = in;
					found_sl = sl;
				}
			}
		}
	}
	if (matches > 1) {
		*why = hf_xasprintf("task '%s' exists in several services; name "
				    "the service (-s) or give the task id",
				    name);
		return HF_ECONFLICT;
	}
	if (found) {
		n = hf_state_node(s, found->node);
		if (!n || !n->link->api) {
			*why = hf_xasprintf("the agent of node %s does not serve "
					    "task logs",
					    found->node ? found->node : "(none)");
			return HF_EUNAVAIL;
		}
		*id = hf_xstrdup(found_sl->cur->id);
		*api = hf_xstrdup(n->link->api);
		*key = n->link->api_key ? hf_xstrdup(n->link->api_key) : NULL;
		return 0;
	}
	*why = hf_xasprintf("no task named '%s'", name);
	return HF_ENOTFOUND;
}

struct log_stream {
	char *api, *key, *path_base;
	long long offset;
	bool follow;
	bool started;
	const struct hf_http_server *http;
};

static void log_stream_free(void *arg)
{
	struct log_stream *ls = arg;

	free(ls->api);
	free(ls->key);
	free(ls->path_base);
	free(ls);
}

static int log_stream_next(void *arg, struct hf_buf *out)
{
	struct log_stream *ls = arg;
	char *path, *err = NULL;
	json_t *resp = NULL;
	long status = 0;
	const char *data;
	int rc;

	if (hf_http_server_stopping(ls->http))
		return 1;
	path = hf_xasprintf("%s&offset=%lld", ls->path_base, ls->offset);
	rc = hf_httpc_json(ls->api, "GET", path, ls->key, NULL,
			   AGENT_TIMEOUT_MS, &status, &resp, &err);
	free(path);
	free(err);
	if (rc || status != 200) {
		json_decref(resp);
		/* The agent may be restarting: ask again after a while. */
		return ls->follow ? 0 : 1;
	}
	data = json_string_value(json_object_get(resp, "data"));
	if (data && *data)
		hf_buf_adds(out, data);
	ls->offset = json_integer_value(json_object_get(resp, "offset"));
	if ((!data || !*data) &&
	    (!ls->follow || json_is_true(json_object_get(resp, "exited")))) {
		json_decref(resp);
		return 1;
	}
	json_decref(resp);
	return 0;
}

void hf_task_logs_handler(void *ctx, const struct hf_http_req *req,
			  struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *task = hf_kvlist_get(&req->params, "task");
	const char *stream = hf_kvlist_get(&req->query, "stream");
	const char *tail = hf_kvlist_get(&req->query, "tail");
	char *id = NULL, *api = NULL, *key = NULL, *why = NULL, *path, *err = NULL;
	struct log_stream *ls;
	json_t *first = NULL;
	long status = 0;
	int rc;

	if (!stream)
		stream = "stdout";
	if (strcmp(stream, "stdout") != 0 && strcmp(stream, "stderr") != 0) {
		hf_http_error(resp, HF_EINVAL,
			      "stream is stdout or stderr, not '%s'", stream);
		return;
	}
	if (tail && strspn(tail, "0123456789") != strlen(tail)) {
		hf_http_error(resp, HF_EINVAL, "tail is a number of lines");
		return;
	}
	hf_state_lock(s);
	rc = resolve(s, hf_kvlist_get(&req->query, "service"), task, &id, &api,
		     &key, &why);
	hf_state_unlock(s);
	if (rc) {
		hf_http_error(resp, rc, "%s", why);
		free(why);
		return;
	}
	/* The first piece (the tail) is fetched now: errors get a status. */
	path = hf_xasprintf("/v1/agent/tasks/%s/logs?stream=%s&tail=%s", id,
			    stream, tail ? tail : "100");
	rc = hf_httpc_json(api, "GET", path, key, NULL, AGENT_TIMEOUT_MS,
			   &status, &first, &err);
	free(path);
	if (rc || status != 200) {
		hf_http_error(resp, rc ? HF_EUNAVAIL : HF_ENOTFOUND,
			      "the agent could not give the logs of %s: %s", id,
			      rc ? (err ? err : "unreachable")
				 : json_string_value(
				       json_object_get(first, "message")));
		goto out;
	}
	ls = hf_xcalloc(1, sizeof(*ls));
	ls->api = api;
	ls->key = key;
	api = key = NULL;
	ls->path_base =
	    hf_xasprintf("/v1/agent/tasks/%s/logs?stream=%s", id, stream);
	ls->offset = json_integer_value(json_object_get(first, "offset"));
	ls->follow = hf_http_query_bool(req, "follow", false);
	ls->http = req->server;
	resp->status = 200;
	resp->content_type = "text/plain; charset=utf-8";
	{
		const char *data = json_string_value(json_object_get(first, "data"));

		if (data) {
			resp->body = hf_xstrdup(data);
			resp->body_len = strlen(data);
		}
	}
	if (ls->follow) {
		/*
		 * The route is BLOCKING: each step (one request to the agent)
		 * runs on a worker; between empty steps the layer waits.
		 */
		resp->stream = log_stream_next;
		resp->stream_free = log_stream_free;
		resp->stream_arg = ls;
		resp->stream_poll_ms = LOG_POLL_MS;
	} else {
		log_stream_free(ls);
	}
out:
	json_decref(first);
	free(err);
	free(id);
	free(api);
	free(key);
}

int hf_task_exec_sync(struct hf_srv *s, const char *svc, const char *name,
		      const char *cmd, long timeout_ms, int *exit_code,
		      char **output, char **why)
{
	char *id = NULL, *api = NULL, *key = NULL, *path, *err = NULL;
	json_t *body = json_pack("{s:s}", "cmd", cmd), *out = NULL;
	long status = 0;
	int rc;

	*output = NULL;
	*why = NULL;
	*exit_code = -1;
	hf_state_lock(s);
	rc = resolve(s, svc, name, &id, &api, &key, why);
	hf_state_unlock(s);
	if (rc)
		goto out;
	path = hf_xasprintf("/v1/agent/tasks/%s/exec", id);
	rc = hf_httpc_json(api, "POST", path, key, body, timeout_ms, &status,
			   &out, &err);
	free(path);
	if (rc) {
		*why = hf_xasprintf("the agent did not answer: %s",
				    err ? err : "unreachable");
		rc = HF_EUNAVAIL;
	} else if (status != 200) {
		const char *m =
		    json_string_value(json_object_get(out, "message"));

		*why = hf_xasprintf("the agent answered %ld: %s", status,
				    m ? m : "an error");
		rc = status == 409 ? HF_ECONFLICT : HF_EUNAVAIL;
	} else {
		*exit_code = (int)json_integer_value(
		    json_object_get(out, "exit_code"));
		*output = hf_xasprintf(
		    "%s%s",
		    json_string_value(json_object_get(out, "stdout"))
			? json_string_value(json_object_get(out, "stdout"))
			: "",
		    json_string_value(json_object_get(out, "stderr"))
			? json_string_value(json_object_get(out, "stderr"))
			: "");
	}
out:
	json_decref(body);
	json_decref(out);
	free(err);
	free(id);
	free(api);
	free(key);
	return rc;
}

void hf_task_exec_handler(void *ctx, const struct hf_http_req *req,
			  struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *task = hf_kvlist_get(&req->params, "task");
	char *id = NULL, *api = NULL, *key = NULL, *why = NULL, *path, *err = NULL;
	json_t *body = NULL, *out = NULL;
	long status = 0;
	int rc;

	if (hf_http_body_json(req, resp, &body))
		return;
	if (!json_is_string(json_object_get(body, "cmd"))) {
		hf_http_error(resp, HF_EINVAL,
			      "the body needs \"cmd\": the command to run");
		goto out;
	}
	hf_state_lock(s);
	rc = resolve(s, hf_kvlist_get(&req->query, "service"), task, &id, &api,
		     &key, &why);
	hf_state_unlock(s);
	if (rc) {
		hf_http_error(resp, rc, "%s", why);
		goto out;
	}
	path = hf_xasprintf("/v1/agent/tasks/%s/exec", id);
	rc = hf_httpc_json(api, "POST", path, key, body, EXEC_TIMEOUT_MS,
			   &status, &out, &err);
	free(path);
	if (rc) {
		hf_http_error(resp, HF_EUNAVAIL, "the agent did not answer: %s",
			      err ? err : "unreachable");
		goto out;
	}
	hf_http_json(resp, (int)status, out);
	out = NULL;
out:
	json_decref(body);
	json_decref(out);
	free(err);
	free(why);
	free(id);
	free(api);
	free(key);
}
