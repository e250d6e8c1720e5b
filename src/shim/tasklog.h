/*
 * tasklog.h - one of a task's output files (<sandbox>/stdout or stderr)
 * with size-based rotation: when a write would take the file past max
 * bytes, the file becomes .1, .1 becomes .2 and so on up to .keep, and a
 * new file starts. Writes never fail to the caller: output that cannot be
 * written (disk full, a vanished sandbox) is counted in `dropped`, and the
 * file is reopened on the next write, so the shim keeps draining the pipe
 * and the task never blocks on its logs.
 */
#ifndef HF_SHIM_TASKLOG_H
#define HF_SHIM_TASKLOG_H

#include <stddef.h>
#include <stdint.h>

struct hf_tasklog {
	char *path;
	int fd;             /* -1 while the file cannot be opened */
	uint64_t size;      /* bytes in the current file */
	uint64_t max;       /* 0 = never rotate */
	int keep;           /* rotated files kept; 0 = truncate on rotation */
	uint64_t dropped;   /* bytes lost to write errors */
	int last_errno;     /* the last write or open error, 0 if none */
};

/*
 * Opens path for appending (an existing file keeps its content and counts
 * towards max). Returns 0, or HF_EIO with errno set and the log closed.
 * Copies path.
 */
int hf_tasklog_open(struct hf_tasklog *l, const char *path, uint64_t max,
		    int keep);
void hf_tasklog_write(struct hf_tasklog *l, const char *data, size_t n);
void hf_tasklog_close(struct hf_tasklog *l);

#endif
