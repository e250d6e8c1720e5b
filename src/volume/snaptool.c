/*
 * snaptool.c - `holdfast-volume snap list|export DATAFILE ...`: a
 * replica's snapshots read offline (snap.h), for an operator who wants a
 * snapshot's image out of a node (to inspect it, or to copy it away), and
 * for the tests that check what a snapshot holds. Run it on a replica no
 * process serves, or on a copy of one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "volume/attach.h"
#include "volume/snap.h"

static int usage(void)
{
	fprintf(stderr,
		"usage: holdfast-volume snap list DATAFILE\n"
		"       holdfast-volume snap export DATAFILE SNAPSHOT OUT\n"
		"  DATAFILE is a replica's data file; its snapshots are in "
		"the snaps/ next to it.\n"
		"  export writes the snapshot's image to OUT (sparse; "
		"ciphertext for an encrypted volume).\n");
	return HF_VOLUME_EXIT_USAGE;
}

static int is_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

int hf_volume_snap_main(int argc, char **argv)
{
	struct hf_snap_info info[HF_SNAP_MAX];
	struct hf_snaps *s;
	char err[HF_VOL_ERR_MAX], *dir, *slash;
	int fd, code = HF_VOLUME_EXIT_FAIL;
	size_t n;

	if (argc < 3 || (strcmp(argv[1], "list") == 0 ? argc != 3
			 : strcmp(argv[1], "export") == 0 ? argc != 5
							   : 1))
		return usage();
	if ((fd = open(argv[2], O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "holdfast-volume: %s: %s\n", argv[2],
			strerror(errno));
		return HF_VOLUME_EXIT_FAIL;
	}
	dir = hf_xstrdup(argv[2]);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	s = hf_snaps_open(slash ? (dir[0] ? dir : "/") : ".", fd, err,
			  sizeof(err));
	free(dir);
	if (!s) {
		fprintf(stderr, "holdfast-volume: %s\n", err);
		close(fd);
		return HF_VOLUME_EXIT_FAIL;
	}
	n = hf_snaps_list(s, info, HF_SNAP_MAX);
	if (strcmp(argv[1], "list") == 0) {
		for (size_t i = 0; i < n; i++)
			printf("%s seq=%llu size=%lld created_ms=%lld "
			       "kept_bytes=%lld chunks=%lld\n",
			       info[i].id, (unsigned long long)info[i].seq,
			       (long long)info[i].size,
			       (long long)info[i].created_ms,
			       (long long)info[i].bytes,
			       (long long)info[i].chunks);
		code = HF_VOLUME_EXIT_OK;
	} else {
		int64_t size = -1;
		uint8_t *buf = hf_xmalloc(HF_SNAP_CHUNK);
		int out, e = 0;

		for (size_t i = 0; i < n; i++)
			if (strcmp(info[i].id, argv[3]) == 0)
				size = info[i].size;
		out = size < 0 ? -1
			       : open(argv[4],
				      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
				      0600);
		if (size < 0)
			fprintf(stderr, "holdfast-volume: no snapshot %s\n",
				argv[3]);
		else if (out < 0 || ftruncate(out, size) < 0)
			e = errno;
		for (int64_t off = 0; out >= 0 && !e && off < size;
		     off += HF_SNAP_CHUNK) {
			size_t len = size - off < HF_SNAP_CHUNK
					     ? (size_t)(size - off)
					     : HF_SNAP_CHUNK;

			if ((e = hf_snaps_read(s, argv[3], (uint64_t)off, buf,
					       len)))
				break;
			if (!is_zero(buf, len) &&
			    pwrite(out, buf, len, off) != (ssize_t)len)
				e = errno ? errno : EIO;
		}
		if (out >= 0 && !e && fsync(out) < 0)
			e = errno;
		if (e)
			fprintf(stderr, "holdfast-volume: export %s: %s\n",
				argv[3], strerror(e));
		else if (size >= 0)
			code = HF_VOLUME_EXIT_OK;
		if (out >= 0)
			close(out);
		free(buf);
	}
	hf_snaps_close(s);
	close(fd);
	return code;
}
