/*
 * s3cmd.c - `holdfast-volume s3`: one S3 operation per run (see s3cmd.h).
 */
#include "volume/s3cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "volume/s3.h"

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2

/* S3's limit for one PUT; `get` holds the object in memory as well. */
#define S3CMD_MAX_OBJECT ((size_t)5 << 30)

struct s3cmd {
	struct hf_s3 *s3;
	int max_keys;
	size_t max_bytes; /* of `get` */
	char **args; /* the command's operands */
};

static const char USAGE[] =
	"usage: holdfast-volume s3 --endpoint URL [--region REGION] "
	"[--ca FILE]\n"
	"                          [--timeout-ms N] [--attempts N] "
	"COMMAND ARGS\n"
	"  put BUCKET/KEY FILE   store FILE ('-': standard input) as the "
	"object\n"
	"  get BUCKET/KEY FILE [--max-bytes N]\n"
	"                        write the object to FILE ('-': standard "
	"output);\n"
	"                        fail if it is over N bytes (5 GiB)\n"
	"  head BUCKET/KEY       print the object's size in bytes\n"
	"  rm BUCKET/KEY         delete the object\n"
	"  ls BUCKET[/PREFIX] [--max-keys N]\n"
	"                        print \"SIZE KEY\" for each object under "
	"PREFIX\n"
	"  mb BUCKET             create the bucket (in REGION)\n"
	"REGION is us-east-1 unless given. The keys come from the "
	"environment:\n"
	"HOLDFAST_S3_ACCESS_KEY and HOLDFAST_S3_SECRET_KEY.\n";

/* Splits "bucket/key" (key required unless key_optional) in place. */
static int split_name(char *name, char **key, bool key_optional)
{
	char *slash = strchr(name, '/');

	*key = NULL;
	if (slash) {
		*slash = '\0';
		*key = slash + 1;
	}
	if (!*name)
		return -1;
	if (!key_optional && (!*key || !**key))
		return -1;
	return 0;
}

static int bad_name(const char *what)
{
	fprintf(stderr, "holdfast-volume s3: expected %s\n", what);
	return EXIT_USAGE;
}

static int cmd_put(struct s3cmd *c, char *err)
{
	char *key, *data = NULL;
	const char *path = c->args[1];
	size_t len = 0;
	int rc;

	if (split_name(c->args[0], &key, false) < 0)
		return bad_name("BUCKET/KEY");
	rc = hf_read_file(strcmp(path, "-") == 0 ? "/dev/stdin" : path,
			  S3CMD_MAX_OBJECT, &data, &len);
	if (rc < 0) {
		hf_s3_seterr(err, "holdfast-volume s3: %s: %s", path,
			     rc == HF_ETOOBIG ? "larger than 5 GiB, S3's limit "
			     "for one PUT" : strerror(errno));
		return rc;
	}
	rc = hf_s3_put(c->s3, c->args[0], key, data, len, err);
	free(data);
	return rc;
}

static int cmd_get(struct s3cmd *c, char *err)
{
	struct hf_buf b = HF_BUF_INIT;
	const char *path = c->args[1];
	char *key;
	int rc;

	if (split_name(c->args[0], &key, false) < 0)
		return bad_name("BUCKET/KEY");
	rc = hf_s3_get(c->s3, c->args[0], key, c->max_bytes, &b, err);
	if (rc == 0 && strcmp(path, "-") == 0) {
		if (fwrite(b.data, 1, b.len, stdout) != b.len ||
		    fflush(stdout) != 0) {
			hf_s3_seterr(err, "holdfast-volume s3: "
				     "standard output: %s", strerror(errno));
			rc = HF_EIO;
		}
	} else if (rc == 0 &&
		   hf_write_file_atomic(path, b.data, b.len, 0644) < 0) {
		hf_s3_seterr(err, "holdfast-volume s3: %s: %s", path,
			     strerror(errno));
		rc = HF_EIO;
	}
	hf_buf_release(&b);
	return rc;
}

static int cmd_head(struct s3cmd *c, char *err)
{
	uint64_t size;
	char *key;
	int rc;

	if (split_name(c->args[0], &key, false) < 0)
		return bad_name("BUCKET/KEY");
	rc = hf_s3_head(c->s3, c->args[0], key, &size, err);
	if (rc == 0)
		printf("%llu\n", (unsigned long long)size);
	return rc;
}

static int cmd_rm(struct s3cmd *c, char *err)
{
	char *key;

	if (split_name(c->args[0], &key, false) < 0)
		return bad_name("BUCKET/KEY");
	return hf_s3_delete(c->s3, c->args[0], key, err);
}

static int cmd_ls(struct s3cmd *c, char *err)
{
	struct hf_s3_list l = HF_S3_LIST_INIT;
	char *prefix;
	int rc;

	if (split_name(c->args[0], &prefix, true) < 0)
		return bad_name("BUCKET[/PREFIX]");
	rc = hf_s3_list(c->s3, c->args[0], prefix, c->max_keys, &l, err);
	for (size_t i = 0; rc == 0 && i < l.len; i++)
		printf("%llu %s\n", (unsigned long long)l.items[i].size,
		       l.items[i].key);
	hf_s3_list_release(&l);
	return rc;
}

static int cmd_mb(struct s3cmd *c, char *err)
{
	if (strchr(c->args[0], '/'))
		return bad_name("BUCKET, without '/'");
	return hf_s3_create_bucket(c->s3, c->args[0], err);
}

/* The commands: name, operands, handler. */
static const struct {
	const char *name;
	int nargs;
	int (*run)(struct s3cmd *c, char *err);
} commands[] = {
	{"put", 2, cmd_put}, {"get", 2, cmd_get}, {"head", 1, cmd_head},
	{"rm", 1, cmd_rm},   {"ls", 1, cmd_ls},   {"mb", 1, cmd_mb},
};

static int usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "holdfast-volume s3: %s%s\n%s", what, arg, USAGE);
	return EXIT_USAGE;
}

/* A decimal number in [min, max] into *out; -1 when it is none. */
static int parse_num(const char *s, long long min, long long max,
		     long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int hf_volume_s3_main(int argc, char **argv)
{
	struct hf_s3_config cfg = {.region = "us-east-1"};
	struct s3cmd c = {.max_bytes = S3CMD_MAX_OBJECT};
	char **pos = hf_xcalloc((size_t)argc + 1, sizeof(*pos));
	char err[HF_S3_ERRLEN] = "";
	int npos = 0, rc, status = EXIT_USAGE;
	bool options_done = false;
	size_t i;

	for (int a = 1; a < argc; a++) {
		const char *arg = argv[a], *val;
		long long n;

		if (options_done || strncmp(arg, "--", 2) != 0 ||
		    strcmp(arg, "-") == 0) {
			pos[npos++] = argv[a];
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			options_done = true;
			continue;
		}
		if (strcmp(arg, "--help") == 0) {
			fputs(USAGE, stdout);
			status = EXIT_OK;
			goto out;
		}
		if (a + 1 >= argc) {
			status = usage_error("a value is needed after ", arg);
			goto out;
		}
		val = argv[++a];
		if (strcmp(arg, "--endpoint") == 0) {
			cfg.endpoint = val;
		} else if (strcmp(arg, "--region") == 0) {
			cfg.region = val;
		} else if (strcmp(arg, "--ca") == 0) {
			cfg.ca_file = val;
		} else if (strcmp(arg, "--timeout-ms") == 0 &&
			   parse_num(val, 1, 24L * 3600 * 1000, &n) == 0) {
			cfg.timeout_ms = (long)n;
		} else if (strcmp(arg, "--attempts") == 0 &&
			   parse_num(val, 1, 100, &n) == 0) {
			cfg.attempts = (int)n;
		} else if (strcmp(arg, "--max-keys") == 0 &&
			   parse_num(val, 1, 1000, &n) == 0) {
			c.max_keys = (int)n;
		} else if (strcmp(arg, "--max-bytes") == 0 &&
			   parse_num(val, 0, (long long)S3CMD_MAX_OBJECT,
				     &n) == 0) {
			c.max_bytes = (size_t)n;
		} else {
			status = usage_error("bad option or value: ", arg);
			goto out;
		}
	}
	if (npos == 0) {
		status = usage_error("no command", "");
		goto out;
	}
	for (i = 0; i < HF_ARRAY_LEN(commands); i++)
		if (strcmp(pos[0], commands[i].name) == 0)
			break;
	if (i == HF_ARRAY_LEN(commands)) {
		status = usage_error("unknown command ", pos[0]);
		goto out;
	}
	if (npos - 1 != commands[i].nargs) {
		status = usage_error("wrong number of operands for ", pos[0]);
		goto out;
	}
	if (!cfg.endpoint) {
		status = usage_error("--endpoint is required", "");
		goto out;
	}
	cfg.access_key = getenv("HOLDFAST_S3_ACCESS_KEY");
	cfg.secret_key = getenv("HOLDFAST_S3_SECRET_KEY");
	if (!cfg.access_key || !*cfg.access_key || !cfg.secret_key ||
	    !*cfg.secret_key) {
		status = usage_error("set HOLDFAST_S3_ACCESS_KEY and "
				     "HOLDFAST_S3_SECRET_KEY", "");
		goto out;
	}
	if (hf_s3_new(&cfg, &c.s3, err) < 0) {
		fprintf(stderr, "%s\n", err);
		status = EXIT_USAGE;
		goto out;
	}
	c.args = pos + 1;
	err[0] = '\0';
	rc = commands[i].run(&c, err);
	if (rc == EXIT_USAGE) {
		status = EXIT_USAGE; /* a handler's usage error, printed */
	} else if (rc < 0) {
		fprintf(stderr, "%s\n", err);
		status = EXIT_FAIL;
	} else {
		status = EXIT_OK;
	}
out:
	hf_s3_free(c.s3);
	free(pos);
	return status;
}
