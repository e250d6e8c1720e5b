/*
 * status.c - status.json for holdfast-volume (status.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "volume/status.h"

static pthread_mutex_t write_mu = PTHREAD_MUTEX_INITIALIZER;

void hf_vol_status_write(const char *dir, json_t *o, const char *msg)
{
	char *path = hf_xasprintf("%s/status.json", dir), *text;

	json_object_set_new(o, "message", msg ? json_string(msg) : json_null());
	text = json_dumps(o, JSON_INDENT(2));
	pthread_mutex_lock(&write_mu);
	if (!text ||
	    hf_write_file_replace(path, text, strlen(text), 0644,
				  HF_WRITE_DURABLE))
		hf_log("cannot write %s: %s", path, strerror(errno));
	pthread_mutex_unlock(&write_mu);
	free(text);
	free(path);
	json_decref(o);
}
