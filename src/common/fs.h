/*
 * fs.h - creating and writing below a directory that someone else may
 * also write to (a task's sandbox or volume), without ever following a
 * symbolic link they could have planted or leaving the directory.
 *
 * Paths given here are relative, '/'-separated, without "." or ".."
 * components (callers normalise them first; hf_fs_* refuse the rest with
 * EXDEV). Every component is opened on its own with openat2(2)'s
 * RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH, so a link anywhere on the way
 * fails with ELOOP instead of being followed; mount points are crossed
 * (a volume mounted inside a sandbox is part of it).
 */
#ifndef HF_COMMON_FS_H
#define HF_COMMON_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* "do not change the owner" for the uid/gid arguments below. */
#define HF_FS_KEEP_OWNER ((uid_t)-1)

/*
 * Opens directory rel below dirfd as an O_PATH, close-on-exec descriptor
 * (rel "" opens dirfd itself). With create, missing directories are made
 * with mode and given to uid:gid (unless uid is HF_FS_KEEP_OWNER). Returns
 * the descriptor, or -1 with errno (ELOOP: a symbolic link on the way;
 * ENOTDIR: something else than a directory). Async-signal-safe: it does
 * not allocate, so a forked child may call it.
 */
int hf_fs_open_dir_beneath(int dirfd, const char *rel, bool create,
			   mode_t mode, uid_t uid, gid_t gid);

/*
 * Writes data to the file rel below dirfd atomically: a temporary file
 * in the same directory, fsync, rename over rel, fsync of the directory.
 * Missing directories are created as by hf_fs_open_dir_beneath; the file
 * gets mode and, unless uid is HF_FS_KEEP_OWNER, the owner uid:gid. A link
 * at rel itself is replaced, never written through; a directory there is
 * an error (EISDIR). Returns 0 or -1 with errno.
 */
int hf_fs_write_beneath(int dirfd, const char *rel, const void *data,
			size_t len, mode_t mode, uid_t uid, gid_t gid);

/*
 * mkdir -p: creates the missing directories of path (absolute, or relative
 * to the working directory), its parents with mode parents and path itself
 * with mode last; existing ones are left as they are. Returns 0, or -1 with
 * the errno of the first failure (EACCES, not a later ENOENT; ENOTDIR when
 * path or a parent is something else). Async-signal-safe: it does not
 * allocate, so a forked child may call it.
 */
int hf_fs_mkdir_p(const char *path, mode_t parents, mode_t last);

#endif
