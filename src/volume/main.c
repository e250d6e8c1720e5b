/*
 * main.c - holdfast-volume: the per-volume program of replicated volumes
 * (docs/design/volumes.md §3.7). A program of its own, not a mode of
 * holdfast, so that only it links libfuse3.
 */
#include <stdio.h>
#include <string.h>

#include "volume/attach.h"
#include "volume/backup.h"
#include "volume/s3cmd.h"
#include "volume/serve.h"
#include "volume/snap.h"

static int usage(FILE *f)
{
	fprintf(f, "usage: holdfast-volume attach DIR | serve DIR | snap ... | s3 ...\n"
		   "  attach DIR   serve the volume DIR/attach.json describes "
		   "through FUSE and a\n"
		   "               loop device until SIGTERM (see "
		   "src/volume/attach.h)\n"
		   "  serve DIR    serve the node's replicas DIR/serve.json "
		   "lists to their\n"
		   "               volumes' primaries until SIGTERM (see "
		   "src/volume/serve.h)\n"
		   "  snap ...     a replica's snapshots, offline (`snap "
		   "--help`; src/volume/snap.h)\n"
		   "  backup ...   a snapshot to an S3 store; restore ..., "
		   "backups ...\n"
		   "               (src/volume/backup.h)\n"
		   "  s3 ...       one request to an S3 store (`s3 --help`; "
		   "see src/volume/s3.h)\n");
	return f == stdout ? HF_VOLUME_EXIT_OK : HF_VOLUME_EXIT_USAGE;
}

int main(int argc, char **argv)
{
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 ||
			  strcmp(argv[1], "-h") == 0))
		return usage(stdout);
	if (argc == 3 && strcmp(argv[1], "attach") == 0)
		return hf_volume_attach_main(argv[2]);
	if (argc == 3 && strcmp(argv[1], "serve") == 0)
		return hf_volume_serve_main(argv[2]);
	if (argc >= 2 && (strcmp(argv[1], "backup") == 0 ||
			  strcmp(argv[1], "restore") == 0 ||
			  strcmp(argv[1], "backups") == 0))
		return hf_volume_backup_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "snap") == 0)
		return hf_volume_snap_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "s3") == 0)
		return hf_volume_s3_main(argc - 1, argv + 1);
	return usage(stderr);
}
