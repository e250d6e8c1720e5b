/*
 * tasklog.c - rotating output files for the shim. See tasklog.h.
 */
#include "shim/tasklog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"

#define LOG_MODE 0640

static int reopen(struct hf_tasklog *l, bool truncate)
{
	struct stat st;

	l->fd = open(l->path,
		     O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC |
			     (truncate ? O_TRUNC : 0),
		     LOG_MODE);
	if (l->fd < 0) {
		l->last_errno = errno;
		return HF_EIO;
	}
	l->size = fstat(l->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	return 0;
}

int hf_tasklog_open(struct hf_tasklog *l, const char *path, uint64_t max,
		    int keep)
{
	memset(l, 0, sizeof(*l));
	l->path = hf_xstrdup(path);
	l->max = max;
	l->keep = keep;
	if (reopen(l, false)) {
		int saved = errno;

		hf_tasklog_close(l);
		errno = saved;
		return HF_EIO;
	}
	return 0;
}

/*
 * Shifts path.N-1 to path.N down to path -> path.1, then starts a new
 * file. A crash in the middle leaves a gap in the numbering, never a lost
 * current file: each step is one rename(2).
 */
static void rotate(struct hf_tasklog *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	for (int i = l->keep; i >= 1; i--) {
		char *from = i == 1 ? hf_xstrdup(l->path)
				    : hf_xasprintf("%s.%d", l->path, i - 1);
		char *to = hf_xasprintf("%s.%d", l->path, i);

		rename(from, to); /* ENOENT for files not made yet: fine */
		free(from);
		free(to);
	}
	reopen(l, true);
}

void hf_tasklog_write(struct hf_tasklog *l, const char *data, size_t n)
{
	while (n > 0) {
		size_t chunk = n;
		ssize_t w;

		if (l->fd < 0 && reopen(l, false)) {
			l->dropped += n;
			return;
		}
		if (l->max > 0 && l->size + chunk > l->max) {
			if (l->size >= l->max) {
				rotate(l);
				if (l->fd < 0) {
					l->dropped += n;
					return;
				}
				continue;
			}
			chunk = (size_t)(l->max - l->size);
		}
		w = write(l->fd, data, chunk);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			/*
			 * Disk full or I/O error: drop this output rather
			 * than stall the pipe; the next write tries again on
			 * a fresh descriptor.
			 */
			l->last_errno = w < 0 ? errno : EIO;
			l->dropped += n;
			close(l->fd);
			l->fd = -1;
			return;
		}
		l->size += (uint64_t)w;
		data += w;
		n -= (size_t)w;
	}
}

void hf_tasklog_close(struct hf_tasklog *l)
{
	if (l->fd >= 0)
		close(l->fd);
	free(l->path);
	memset(l, 0, sizeof(*l));
	l->fd = -1;
}
