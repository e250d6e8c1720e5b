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

#endif
