/*
 * util.h - small helpers every module uses: allocation, a growable string
 * buffer, growable arrays and ordered string maps.
 *
 * Allocation failure is not an error holdfast recovers from: hf_xmalloc and
 * friends print a message and abort, as an orchestrator that cannot allocate
 * a few bytes cannot keep any promise about the state it writes. This keeps
 * the error paths for the failures that matter (bad input, I/O) readable.
 */
#ifndef HF_COMMON_UTIL_H
#define HF_COMMON_UTIL_H

#include <stdarg.h>
#include <string.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HF_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define HF_PRINTF(f, a) __attribute__((format(printf, f, a)))

void *hf_xmalloc(size_t n);
void *hf_xcalloc(size_t n, size_t size);
void *hf_xrealloc(void *p, size_t n);
char *hf_xstrdup(const char *s);
char *hf_xstrndup(const char *s, size_t n);
/* Returns a newly allocated formatted string; the caller frees it. */
char *hf_xasprintf(const char *fmt, ...) HF_PRINTF(1, 2);

/*
 * Growable arrays: a struct with `items`, `len` and `cap` members.
 * HF_VEC_PUSH grows it and returns a pointer to the new, zeroed slot.
 */
#define HF_VEC(type)                                                           \
	struct {                                                               \
		type *items;                                                   \
		size_t len, cap;                                               \
	}
/* Grows an array to hold one more element; returns the (new) items. */
void *hf_vec_grow(void *items, size_t *cap, size_t len, size_t elem);
#define HF_VEC_GROW(v)                                                         \
	((v)->items = hf_vec_grow((v)->items, &(v)->cap, (v)->len,             \
				  sizeof(*(v)->items)))
#define HF_VEC_PUSH(v)                                                         \
	(HF_VEC_GROW(v),                                                       \
	 memset(&(v)->items[(v)->len], 0, sizeof(*(v)->items)),                \
	 &(v)->items[(v)->len++])
#define HF_VEC_FREE(v)                                                         \
	do {                                                                   \
		free((v)->items);                                              \
		(v)->items = NULL;                                             \
		(v)->len = (v)->cap = 0;                                       \
	} while (0)

/* A growable, always NUL-terminated string buffer. */
struct hf_buf {
	char *data;
	size_t len, cap;
};

#define HF_BUF_INIT {NULL, 0, 0}
void hf_buf_init(struct hf_buf *b);
void hf_buf_release(struct hf_buf *b);
void hf_buf_add(struct hf_buf *b, const void *data, size_t n);
void hf_buf_adds(struct hf_buf *b, const char *s);
void hf_buf_addc(struct hf_buf *b, char c);
void hf_buf_addf(struct hf_buf *b, const char *fmt, ...) HF_PRINTF(2, 3);
void hf_buf_vaddf(struct hf_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
void hf_buf_reset(struct hf_buf *b);
/* Hands the buffer's string to the caller (never NULL) and resets it. */
char *hf_buf_detach(struct hf_buf *b);
/* Returns the buffer's string, "" when empty; owned by the buffer. */
const char *hf_buf_str(const struct hf_buf *b);

/* An ordered list of string pairs (environment, labels, options). */
struct hf_kv {
	char *key;
	char *value;
};
struct hf_kvlist {
	struct hf_kv *items;
	size_t len, cap;
};
void hf_kvlist_release(struct hf_kvlist *l);
/* Sets key to value, replacing an existing entry in place. Copies both. */
void hf_kvlist_set(struct hf_kvlist *l, const char *key, const char *value);
/* Returns the value for key or NULL; owned by the list. */
/* Adds key without looking for it: the caller knows it is not there. */
void hf_kvlist_append(struct hf_kvlist *l, const char *key, const char *value);
const char *hf_kvlist_get(const struct hf_kvlist *l, const char *key);
void hf_kvlist_copy(struct hf_kvlist *dst, const struct hf_kvlist *src);

/* A list of owned strings. */
struct hf_strlist {
	char **items;
	size_t len, cap;
};
void hf_strlist_release(struct hf_strlist *l);
void hf_strlist_push(struct hf_strlist *l, const char *s);
bool hf_strlist_has(const struct hf_strlist *l, const char *s);

/*
 * Reads a whole file into *out (NUL-terminated; *len_out may be NULL).
 * Returns 0, HF_ENOTFOUND, HF_ETOOBIG (over max bytes) or HF_EIO; errno is
 * kept for the caller's message.
 */
int hf_read_file(const char *path, size_t max, char **out, size_t *len_out);

/*
 * Writes data to path atomically: path.new, fsync, rename, fsync of the
 * directory. Returns 0 or HF_EIO with errno set.
 */
int hf_write_file_atomic(const char *path, const void *data, size_t len,
			 int mode);

/* fsyncs the directory that holds path (a rename in it made durable). */
int hf_fsync_parent(const char *path);

/* How hf_write_file_replace() writes. */
enum {
	/*
	 * fsync the file and its directory: the new content survives a
	 * power loss. Without it the replacement is still atomic for every
	 * process (a kill -9 of the writer at any instant leaves the old or
	 * the new content), but after a power loss the file may hold the
	 * old content, the new one, or nothing: for files whose meaning
	 * ends with the machine (a running task's status, its launch order)
	 * that is enough, and it spares a disk round trip per write.
	 */
	HF_WRITE_DURABLE = 1 << 0,
	/*
	 * Keep path.new after the write, holding the previous content, and
	 * swap it in again next time (renameat2 RENAME_EXCHANGE): a file
	 * rewritten often then frees no inode per write. Ext4 without a
	 * journal skips inodes freed in the last ~30 s when it allocates
	 * one, so freeing one per write makes every later file creation on
	 * the node slower (quadratic over a deploy). Falls back to a plain
	 * rename where the file system has no RENAME_EXCHANGE.
	 */
	HF_WRITE_KEEP_OLD = 1 << 1,
};

/*
 * Replaces path's content atomically with data, as flags say (0: atomic
 * for processes, not durable). Returns 0 or HF_EIO with errno set.
 */
int hf_write_file_replace(const char *path, const void *data, size_t len,
			  int mode, int flags);

/*
 * Takes an exclusive lock (flock, not blocking) on the file path, created
 * 0600 if missing, and writes our pid into it. The lock lasts while *fd
 * (close-on-exec) stays open, and ends with the process however it ends;
 * the file stays (removing it would race with the next taker). Returns 0,
 * HF_EUNAVAIL when another process holds it (*holder, if not NULL, gets
 * its pid as written in the file, 0 when unknown), or HF_EIO with errno.
 */
int hf_lock_file(const char *path, int *fd, long *holder);

/*
 * Whether a process holds hf_lock_file's lock on path now (probed with a
 * shared lock that is let go at once; a missing file is no holder). Sets
 * *pid to the holder's pid as written in the file (0 when unknown).
 */
bool hf_lock_held(const char *path, long *pid);

/*
 * A byte count for people: "512 B", "1.5 KiB", "10.0 GiB" (binary units,
 * one decimal past bytes). The caller frees it.
 */
char *hf_bytes_human(int64_t n);

/* Levenshtein distance, capped at 100; for "did you mean" suggestions. */
int hf_edit_distance(const char *a, const char *b);

/* True if s is a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*). */
bool hf_is_env_name(const char *s);

bool hf_str_has_prefix(const char *s, const char *prefix);

/*
 * A name as one path component: bytes other than [A-Za-z0-9._:@+-] (so
 * '/' and '%') become %XX, as does a leading '.'; ordinary names stay as
 * they are. Injective, so names that differ never share a component (the
 * service "a/b" is "a%2Fb", never inside "a"). The caller frees it.
 */
char *hf_name_escape(const char *name);
/* The name n bytes of an escaped component stand for; the caller frees. */
char *hf_name_unescape(const char *s, size_t n);

/* The value of one hex digit, or -1 for any other character. */
int hf_hex_val(char c);

/* 2*bytes random hex digits from /dev/urandom (ids, keys); caller frees. */
char *hf_random_hex(size_t bytes);

#endif
