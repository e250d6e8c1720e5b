/*
 * fuzz_spool.c - libFuzzer target for a standby replica's spool files
 * (src/volume/spool.h), as a crash or a damaged disk may leave them.
 *
 * The input's first 32 bytes become spool.pos (its two slots), the rest
 * the spool. Then the contract is checked: opening never fails on the
 * files' content; what is pending is no more than the spool holds; an
 * apply up to a cut and then of everything returns 0, or -EBADMSG /
 * -ERANGE for a record that does not check or lies outside the volume,
 * and leaves nothing pending when it returns 0; the data file keeps its
 * size; a record appended after that is applied whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "volume/spool.h"

#define VSIZE (256 * 4096)

static char dir[64];
static int data_fd = -1;

/* The files go with the process (libFuzzer ends with exit()). */
static void cleanup(void)
{
	static const char *const names[] = {"spool", "spool.pos", "data"};
	char path[128];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

static void put_file(const char *name, const uint8_t *p, size_t n)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || (n && write(fd, p, n) != (ssize_t)n))
		abort();
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t page[4096];
	struct hf_spool *p;
	char err[512];
	uint64_t pending, n = 0;
	struct stat st;
	int rc;

	if (!dir[0]) {
		const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm"
								 : "/tmp";
		char path[128];

		snprintf(dir, sizeof(dir), "%s/hf-fuzz-spool-XXXXXX", base);
		if (!mkdtemp(dir))
			abort();
		snprintf(path, sizeof(path), "%s/data", dir);
		data_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (data_fd < 0 || ftruncate(data_fd, VSIZE))
			abort();
		atexit(cleanup);
	}
	put_file("spool.pos", data, size < 32 ? size : 32);
	put_file("spool", size > 32 ? data + 32 : NULL,
		 size > 32 ? size - 32 : 0);
	p = hf_spool_open(dir, data_fd, VSIZE, err, sizeof(err));
	if (!p) {
		fprintf(stderr, "open failed on content: %s\n", err);
		abort();
	}
	pending = hf_spool_pending(p);
	if (pending > (size > 32 ? size - 32 : 0))
		abort();
	/* A cut from the input, then everything. */
	rc = hf_spool_apply(p, size > 40 ? (int64_t)data[40] << 8 : 0, false,
			    &n);
	if (rc && rc != -EBADMSG && rc != -ERANGE)
		abort();
	rc = hf_spool_apply(p, 0, true, &n);
	if (rc && rc != -EBADMSG && rc != -ERANGE)
		abort();
	if (!rc && hf_spool_pending(p))
		abort();
	if (fstat(data_fd, &st) || st.st_size != VSIZE)
		abort();
	if (!rc) {
		/* A fresh record after that is applied whole. */
		memset(page, 0xa5, sizeof(page));
		if (hf_spool_add(p, false, 4096, sizeof(page), 1, page) ||
		    hf_spool_apply(p, 2, false, &n) || n != 1 ||
		    hf_spool_pending(p))
			abort();
	}
	hf_spool_close(p);
	return 0;
}
