/*
 * caps.h - Linux capability names, and the set a root task keeps by
 * default. Pure: no system calls.
 *
 * The default is the set container runtimes give a root process (Docker's
 * and containerd's), without CAP_MKNOD: holdfast has no device cgroup, so
 * a task that could create device nodes could open the node's disks.
 */
#ifndef HF_COMMON_CAPS_H
#define HF_COMMON_CAPS_H

#include <stdint.h>

/* Capabilities as bits: 1 << CAP_xxx. */
#define HF_CAP_BIT(cap) (UINT64_C(1) << (cap))

/*
 * The capability numbered by name: "NET_ADMIN" or "CAP_NET_ADMIN", upper
 * case. Returns -1 for an unknown name.
 */
int hf_cap_by_name(const char *name);
/* "CAP_NET_ADMIN" for a capability number; NULL when unknown. */
const char *hf_cap_name(int cap);
/* The highest capability number holdfast knows by name. */
int hf_cap_last(void);
/* What a root task keeps unless its spec asks for more. */
uint64_t hf_cap_default_set(void);

#endif
