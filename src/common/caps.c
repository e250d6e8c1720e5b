/*
 * caps.c - capability names and the default set; see caps.h.
 */
#include <string.h>

#include "common/caps.h"
#include "common/util.h"

/* Indexed by capability number (linux/capability.h). */
static const char *const names[] = {
	"CAP_CHOWN",		"CAP_DAC_OVERRIDE",	"CAP_DAC_READ_SEARCH",
	"CAP_FOWNER",		"CAP_FSETID",		"CAP_KILL",
	"CAP_SETGID",		"CAP_SETUID",		"CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE",	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",	"CAP_NET_RAW",		"CAP_IPC_LOCK",
	"CAP_IPC_OWNER",	"CAP_SYS_MODULE",	"CAP_SYS_RAWIO",
	"CAP_SYS_CHROOT",	"CAP_SYS_PTRACE",	"CAP_SYS_PACCT",
	"CAP_SYS_ADMIN",	"CAP_SYS_BOOT",		"CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",	"CAP_SYS_TIME",		"CAP_SYS_TTY_CONFIG",
	"CAP_MKNOD",		"CAP_LEASE",		"CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL",	"CAP_SETFCAP",		"CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN",	"CAP_SYSLOG",		"CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",	"CAP_AUDIT_READ",	"CAP_PERFMON",
	"CAP_BPF",		"CAP_CHECKPOINT_RESTORE",
};

int hf_cap_by_name(const char *name)
{
	const char *bare = hf_str_has_prefix(name, "CAP_") ? name + 4 : name;

	for (size_t i = 0; i < HF_ARRAY_LEN(names); i++)
		if (strcmp(names[i] + 4, bare) == 0)
			return (int)i;
	return -1;
}

const char *hf_cap_name(int cap)
{
	if (cap < 0 || (size_t)cap >= HF_ARRAY_LEN(names))
		return NULL;
	return names[cap];
}

int hf_cap_last(void)
{
	return (int)HF_ARRAY_LEN(names) - 1;
}

uint64_t hf_cap_default_set(void)
{
	static const char *const keep[] = {
		"CHOWN",  "DAC_OVERRIDE", "FOWNER",	      "FSETID",
		"KILL",	  "SETGID",	  "SETUID",	      "SETPCAP",
		"NET_BIND_SERVICE",	  "NET_RAW",	      "SYS_CHROOT",
		"AUDIT_WRITE",		  "SETFCAP",
	};
	uint64_t set = 0;

	for (size_t i = 0; i < HF_ARRAY_LEN(keep); i++)
		set |= HF_CAP_BIT(hf_cap_by_name(keep[i]));
	return set;
}
