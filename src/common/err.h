/*
 * err.h - holdfast's one list of error codes.
 *
 * Every function that can fail returns int: 0 on success or a negative
 * HF_E* code from this list. The X-macro yields the code, its name (used in
 * API error bodies), a default sentence and the HTTP status an API handler
 * answers with, so the four never drift apart.
 */
#ifndef HF_COMMON_ERR_H
#define HF_COMMON_ERR_H

#define HF_ERR_MAP(X)                                                          \
	X(NOMEM, "out-of-memory", "out of memory", 500)                        \
	X(INVAL, "invalid", "invalid argument", 400)                           \
	X(NOTFOUND, "not-found", "not found", 404)                             \
	X(EXISTS, "exists", "already exists", 409)                             \
	X(CONFLICT, "conflict", "conflicting action", 409)                     \
	X(IO, "io", "input/output error", 500)                                 \
	X(PARSE, "parse", "could not parse input", 400)                        \
	X(SPEC, "invalid-spec", "the service spec is invalid", 400)            \
	X(REFUSED, "refused", "the change was refused", 409)                   \
	X(UNSUPPORTED, "not-supported", "not supported yet", 422)              \
	X(TOOBIG, "too-large", "input too large", 413)                         \
	X(AUTH, "unauthorized", "authentication required", 401)                \
	X(FORBIDDEN, "forbidden", "not allowed", 403)                          \
	X(UNAVAIL, "unavailable", "temporarily unavailable", 503)              \
	X(INTERNAL, "internal", "internal error", 500)                         \
	X(NOTLEADER, "not-leader",                                             \
	  "this server does not lead; `leader` in the body is the URL to use", \
	  503)                                                                 \
	X(NOLEADER, "no-leader",                                               \
	  "no server leads yet; try again in a few seconds", 503)              \
	X(UNWRITABLE, "store-unwritable",                                      \
	  "a store write failed (a full disk): this server answers reads and " \
	  "takes writes again by itself once the store does",                  \
	  503)                                                                 \
	X(UNREADABLE, "store-unreadable",                                      \
	  "the store cannot be read or holds a damaged record (named in the "  \
	  "message): this server answers nothing from it",                     \
	  503)                                                                 \
	X(NOTINCLUSTER, "not-in-cluster",                                      \
	  "an agent's sync: it belongs to another cluster, or this store does " \
	  "not know its node; nothing was changed",                            \
	  409)

enum hf_err {
	HF_OK = 0,
#define HF_ERR_ENUM(code, name, msg, http) HF_E##code,
	HF_ERR_FIRST_ = -1000,
	HF_ERR_MAP(HF_ERR_ENUM)
#undef HF_ERR_ENUM
	HF_ERR_LAST_
};

/*
 * The binary's exit codes, which scripts rely on: 0 success, 1 the command
 * ran and failed (invalid spec, plan in ERROR, refused change), 2 usage
 * error, 3 could not reach the server or the server failed, 4 (spec
 * validate) the spec is valid but uses features holdfast does not support
 * yet, so a deploy would refuse it.
 */
enum {
	HF_EXIT_OK = 0,
	HF_EXIT_FAIL = 1,
	HF_EXIT_USAGE = 2,
	HF_EXIT_SERVER = 3,
	HF_EXIT_UNSUPPORTED = 4,
};

/* Short machine name ("not-found") of an error code; "ok" for 0. */
const char *hf_err_name(int err);
/* A plain sentence describing an error code. */
const char *hf_err_msg(int err);
/* The HTTP status an API handler answers with for an error code. */
int hf_err_http(int err);

#endif
