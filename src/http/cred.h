/*
 * cred.h - credentials outside the wire: the local admin credential a server
 * leaves for its owner's CLI and agent, files holding secrets (which must
 * be private), digests of node credentials, and keeping secrets out of
 * /proc/PID/cmdline and /proc/PID/environ.
 *
 * The local credential. A server without a tokens file (which then listens
 * on loopback only) has an admin token of its own that is never
 * configured: a random one, or HOLDFAST_ADMIN_TOKEN's (`holdfast dev` hands
 * one to its server and agent that way). It writes it to
 *
 *     <config dir>/credentials/local-<port>
 *
 * (mode 0600 in a 0700 directory owned by the server's user), and the CLI
 * and the agent of the same user find it from nothing but the server's
 * address: a loopback address ("127.0.0.1", "::1", "localhost") with that
 * port. The config dir is $HOLDFAST_CONFIG_DIR, else ~/.config/holdfast of
 * the effective user, taken from the password database (not $HOME, which
 * sudo and service managers change). So `holdfast dev` and then any
 * `holdfast` command by the same user just work, and other local users
 * (and web pages) have nothing to present. A local credential is never sent
 * to an address that is not loopback.
 *
 * Errors: functions that can fail return 0 or a negative HF_E* code
 * (common/err.h) with a sentence in *err (owned by the caller).
 */
#ifndef HF_HTTP_CRED_H
#define HF_HTTP_CRED_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes of randomness in a generated token (hex: twice as many digits). */
#define HF_CRED_TOKEN_BYTES 32

/* A new random token (hex); caller frees. */
char *hf_cred_new_token(void);

/*
 * The credentials directory: $HOLDFAST_CONFIG_DIR/credentials, else
 * <home>/.config/holdfast/credentials. NULL when the user has no home
 * directory. Caller frees.
 */
char *hf_cred_dir(void);

/*
 * The port of a server address ("http://127.0.0.1:7070", "localhost:7070",
 * "https://[::1]:8443/", "127.0.0.1" = 80) if its host is loopback, else 0.
 */
int hf_cred_loopback_port(const char *addr);

/*
 * Saves token as the local credential of the server on port (0600, written
 * atomically), creating the directories (0700). A credentials directory
 * that another user owns, or that others may read or write, is refused.
 * *path (may be NULL) gets the file's path. Returns 0, HF_ENOTFOUND (no
 * home directory) or HF_EIO / HF_EFORBIDDEN with *err.
 */
int hf_cred_local_save(int port, const char *token, char **path, char **err);

/*
 * The local credential for addr: 0 with *token (caller frees),
 * HF_ENOTFOUND when there is none (addr not loopback, no file), or
 * HF_EFORBIDDEN with *err when the file or its directory is not private to
 * the caller (it is then not used).
 */
int hf_cred_local_load(const char *addr, char **token, char **err);

/* Removes the local credential of port if it still holds token. */
void hf_cred_local_forget(int port, const char *token);

/*
 * Reads a file that holds secrets (tokens file, token file, TLS key) into
 * *text (NUL-terminated; *len may be NULL). It must be a regular file owned
 * by the caller or root that no other user may read and that no group
 * member may write (mode 0600 or 0640): anything else is refused with
 * HF_EFORBIDDEN and a sentence saying how to fix it. what names the file
 * in messages ("tokens file"). Returns 0, HF_ENOTFOUND, HF_ETOOBIG (over
 * max bytes), HF_EIO or HF_EFORBIDDEN, with *err.
 */
int hf_cred_read_private(const char *path, const char *what, size_t max,
			 char **text, size_t *len, char **err);

/* The lower-case hex SHA-256 of s into out (64 digits and a NUL). */
void hf_cred_digest(const char *s, char out[65]);

/*
 * The value of environment variable name (a copy, caller frees; NULL when
 * unset or empty). The original is overwritten in place and the variable
 * removed, so neither /proc/self/environ nor a child process sees it.
 */
char *hf_cred_take_env(const char *name);

/*
 * Overwrites s in place (an argv string): /proc/PID/cmdline then no longer
 * shows it. Every local user could read it until this ran.
 */
void hf_cred_scrub(char *s);

#endif
