/*
 * log.h - holdfast's one logger: a line on stderr per call,
 * "<UTC time with ms>Z <program>: <message>", written with a single write(2)
 * so that the lines of several threads never mix. The server, agent and
 * shim differ only in the program name they set (the shim adds its pid).
 * Callers keep secrets out of what they log.
 */
#ifndef HF_COMMON_LOG_H
#define HF_COMMON_LOG_H

#include <stdbool.h>

#include "common/util.h" /* HF_PRINTF */

/*
 * Names the program in every later line ("holdfast" until called); with_pid
 * adds "[<pid>]", read at each line (the shim's pid changes when it
 * detaches). Call once at start, before threads; name must outlive them.
 */
void hf_log_init(const char *name, bool with_pid);
void hf_log(const char *fmt, ...) HF_PRINTF(1, 2);

#endif
