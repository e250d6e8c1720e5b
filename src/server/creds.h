/*
 * creds.h - named credentials (docs/api.md "Credentials"): GET, POST
 * /v1/credentials and DELETE /v1/credentials/{name}; and what the
 * server's volume backups read of one.
 */
#ifndef HF_SERVER_CREDS_H
#define HF_SERVER_CREDS_H

#include <stdbool.h>
#include <stdint.h>

#include "http/http.h"

struct hf_srv;

/* An S3 credential as stored (strings malloc'ed; secret_key wiped). */
struct hf_cred {
	char *endpoint, *region, *access_key, *secret_key, *ca;
};

/* 1-64 letters, digits, '-', '_' or '.', not starting with '.'. */
bool hf_cred_name_ok(const char *name);

/*
 * The S3 credential `name` into *out (hf_cred_release), or an HF_E*
 * code with *why (malloc'ed): none, or not an S3 one. No lock needed.
 */
int hf_cred_s3(struct hf_srv *s, const char *name, struct hf_cred *out,
	       char **why);
void hf_cred_release(struct hf_cred *c);

void hf_creds_list_handler(void *ctx, const struct hf_http_req *req,
			   struct hf_http_resp *resp);
void hf_creds_create_handler(void *ctx, const struct hf_http_req *req,
			     struct hf_http_resp *resp);
void hf_creds_delete_handler(void *ctx, const struct hf_http_req *req,
			     struct hf_http_resp *resp);

/*
 * The key that seals encrypted volumes' data keys: named key `name` (a
 * credential of type "key": 32 bytes) into out, or the cluster key when
 * name is NULL. Returns 0, or an HF_E* code with *why (malloc'ed).
 */
int hf_cred_sealing_key(struct hf_srv *s, const char *name, uint8_t *out,
			char **why);

/* Opens data key `sealed` of volume id with it (crypt.h); 0 or HF_E*. */
int hf_cred_open_data_key(struct hf_srv *s, const char *key_name,
			  const char *id, const char *sealed, uint8_t *dk,
			  char **why);

/* Seals data key dk for volume id with it; NULL with *why. */
char *hf_cred_seal_data_key(struct hf_srv *s, const char *key_name,
			    const char *id, const uint8_t *dk, char **why);

#endif
