/*
 * backups.h - POST /v1/external-volumes/{name}/backups (a backup of the
 * volume to an S3 store, run by a node that holds it) and GET (its jobs
 * under way and, given a credential and a place, the store's catalogue).
 * See backups.c and docs/design/volumes.md §16.
 */
#ifndef HF_SERVER_BACKUPS_H
#define HF_SERVER_BACKUPS_H

#include "http/http.h"

void hf_backup_cancel_handler(void *ctx, const struct hf_http_req *req,
			      struct hf_http_resp *resp);
void hf_backup_start_handler(void *ctx, const struct hf_http_req *req,
			     struct hf_http_resp *resp);
void hf_backup_list_handler(void *ctx, const struct hf_http_req *req,
			    struct hf_http_resp *resp);
/* PUT and DELETE /v1/external-volumes/{name}/backup-schedule. */
void hf_backup_schedule_handler(void *ctx, const struct hf_http_req *req,
				struct hf_http_resp *resp);
void hf_backup_restore_handler(void *ctx, const struct hf_http_req *req,
			       struct hf_http_resp *resp);

/*
 * The leader's backups thread: it follows the backups under way (a
 * server that takes over adopts them from the volumes' records and starts
 * again those their node lost), starts the scheduled ones and prunes the
 * store to their retention. Started when leading, stopped before the
 * state goes.
 */
struct hf_srv;
void hf_backups_start(struct hf_srv *s);
void hf_backups_stop(void);

#endif
