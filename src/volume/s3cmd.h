/*
 * s3cmd.h - `holdfast-volume s3 ...`: the S3 client (volume/s3.h) as a
 * command, for tests and for an operator checking a store's settings.
 */
#ifndef HF_VOLUME_S3CMD_H
#define HF_VOLUME_S3CMD_H

/*
 * Runs `s3 OPTIONS COMMAND ARGS` (argv[0] is "s3"); prints its usage on
 * stdout for --help. The access and secret keys come from the environment
 * (HOLDFAST_S3_ACCESS_KEY, HOLDFAST_S3_SECRET_KEY), never from argv,
 * which every user of the machine can read. Returns the exit status: 0,
 * 1 when the store or a file said no (the error on stderr), 2 for a
 * usage error.
 */
int hf_volume_s3_main(int argc, char **argv);

#endif
