/*
 * sys.h - Linux system calls that not every C library wraps: close_range
 * (glibc 2.34) and the new mount API (open_tree, move_mount,
 * mount_setattr; glibc 2.36). holdfast-shim is linked statically against
 * musl (the Makefile), and musl 1.2.3, Debian 12's, has none of them, so
 * code that both the shim and holdfast use calls the kernel through
 * syscall(2) here, with the same arguments and the same -1/errno result
 * as glibc's wrappers (integers are widened to long, the type syscall(2)
 * reads them as). Each is async-signal-safe: a forked child may call it
 * before exec.
 *
 * The mount API's flags and struct mount_attr come from glibc's
 * <sys/mount.h>, or from the kernel's <linux/mount.h> where the C library
 * lacks them (musl).
 */
#ifndef HF_COMMON_SYS_H
#define HF_COMMON_SYS_H

#include <stddef.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifndef OPEN_TREE_CLONE
#include <linux/mount.h>
#endif

/* close_range(2): closes first..last (~0U: every descriptor above). */
static inline int hf_sys_close_range(unsigned first, unsigned last,
				     unsigned flags)
{
	return (int)syscall(SYS_close_range, (long)first, (long)last,
			    (long)flags);
}

/* open_tree(2): with OPEN_TREE_CLONE, a detached copy of a mount tree. */
static inline int hf_sys_open_tree(int dirfd, const char *path,
				   unsigned flags)
{
	return (int)syscall(SYS_open_tree, (long)dirfd, path, (long)flags);
}

/* move_mount(2): attaches a detached tree (or moves a mount). */
static inline int hf_sys_move_mount(int from_dirfd, const char *from_path,
				    int to_dirfd, const char *to_path,
				    unsigned flags)
{
	return (int)syscall(SYS_move_mount, (long)from_dirfd, from_path,
			    (long)to_dirfd, to_path, (long)flags);
}

/* mount_setattr(2): changes the attributes of a mount (tree). */
static inline int hf_sys_mount_setattr(int dirfd, const char *path,
				       unsigned flags, struct mount_attr *attr,
				       size_t size)
{
	return (int)syscall(SYS_mount_setattr, (long)dirfd, path, (long)flags,
			    attr, size);
}

/* fsopen(2): a file system context to configure (FSOPEN_CLOEXEC). */
static inline int hf_sys_fsopen(const char *fstype, unsigned flags)
{
	return (int)syscall(SYS_fsopen, fstype, (long)flags);
}

/* fsconfig(2): sets a parameter of, or creates, a context's superblock. */
static inline int hf_sys_fsconfig(int fd, unsigned cmd, const char *key,
				  const void *value, int aux)
{
	return (int)syscall(SYS_fsconfig, (long)fd, (long)cmd, key, value,
			    (long)aux);
}

/* fsmount(2): a detached mount of a created superblock, as a descriptor. */
static inline int hf_sys_fsmount(int fd, unsigned flags, unsigned attrs)
{
	return (int)syscall(SYS_fsmount, (long)fd, (long)flags, (long)attrs);
}

#endif
