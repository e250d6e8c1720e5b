/*
 * api.h (agent) - the agent's own small HTTP API, used by the server to
 * answer `holdfast task logs` and `holdfast task exec`:
 *
 *   GET  /v1/agent/tasks/{id}/logs?stream=stdout|stderr&offset=N&tail=N
 *        -> {"data": text, "offset": next offset, "size": file size,
 *            "exited": bool}
 *   POST /v1/agent/tasks/{id}/exec  {"cmd": "..."}
 *        -> {"exit_code": N, "stdout": text, "stderr": text}
 *
 * It works from the task directories alone (<data>/tasks/<id>/launch.json
 * and sandbox/), so it needs nothing else from the agent. Requests must
 * carry the key the agent generated at start (sent to the server in the
 * sync's info as "api_key"); the API listens on loopback unless told
 * otherwise.
 */
#ifndef HF_AGENT_API_H
#define HF_AGENT_API_H

struct hf_agent_api;

/*
 * Starts the API on listen ("127.0.0.1:0" for an ephemeral port) for the
 * agent whose data directory is data_dir. On success *url is
 * "http://<address>:<port>" and *key the bearer key (both owned by the
 * API). Returns 0 or an error with *err (owned by the caller).
 */
int hf_agent_api_start(const char *data_dir, const char *listen,
		       const char *address, struct hf_agent_api **out,
		       const char **url, const char **key, char **err);
void hf_agent_api_stop(struct hf_agent_api *api);

#endif
