/*
 * status.h - the status.json of holdfast-volume's modes (attach.h,
 * serve.h): one writer for both.
 */
#ifndef HF_VOLUME_STATUS_H
#define HF_VOLUME_STATUS_H

#include <jansson.h>

/*
 * Writes o (its reference is taken) as DIR/status.json with "message" set
 * to msg (NULL: null): atomically and durably, so a reader after a crash
 * sees one whole status. Writers on several threads are serialised. A
 * failure to write is logged; the caller goes on.
 */
void hf_vol_status_write(const char *dir, json_t *o, const char *msg);

#endif
