/*
 * tasks_api.h - GET /v1/tasks/{task}/logs and POST /v1/tasks/{task}/exec,
 * answered with the help of the agent that runs the task.
 */
#ifndef HF_SERVER_TASKS_API_H
#define HF_SERVER_TASKS_API_H

#include "http/http.h"

void hf_task_logs_handler(void *ctx, const struct hf_http_req *req,
			  struct hf_http_resp *resp);
void hf_task_exec_handler(void *ctx, const struct hf_http_req *req,
			  struct hf_http_resp *resp);

struct hf_srv;

/*
 * Runs cmd with /bin/sh -c inside task `name` of service svc (its current
 * launch, through its agent, as POST /v1/tasks/{task}/exec does), waiting
 * at most timeout_ms. Returns 0 with *exit_code and the output (stdout
 * then stderr, malloc'ed, may be NULL), or an HF_E* code with *why
 * (malloc'ed): no such task, no agent, no answer. The state lock must
 * not be held.
 */
int hf_task_exec_sync(struct hf_srv *s, const char *svc, const char *name,
		      const char *cmd, long timeout_ms, int *exit_code,
		      char **output, char **why);

#endif
