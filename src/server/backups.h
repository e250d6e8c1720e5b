/*
 * backups.h - POST /v1/external-volumes/{name}/backups (a backup of the
 * volume to an S3 store, run by a node that holds it) and GET (its jobs
 * under way and, given a credential and a place, the store's catalogue).
 * See backups.c and docs/design/volumes.md §16.
 */
#ifndef HF_SERVER_BACKUPS_H
#define HF_SERVER_BACKUPS_H

#include "http/http.h"

void hf_backup_start_handler(void *ctx, const struct hf_http_req *req,
			     struct hf_http_resp *resp);
void hf_backup_list_handler(void *ctx, const struct hf_http_req *req,
			    struct hf_http_resp *resp);
void hf_backup_restore_handler(void *ctx, const struct hf_http_req *req,
			       struct hf_http_resp *resp);

#endif
