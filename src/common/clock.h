/*
 * clock.h - holdfast's clocks: the wall clock, for what is recorded or shown
 * (records, events, log lines, backoff deadlines stored in the cluster), and
 * the monotonic clock, for timeouts and intervals inside one process (it
 * never jumps when the time of day is set).
 *
 * Pure code (spec/, plan/, model/) reads neither: its callers pass the time
 * in, so it can be tested with any time.
 */
#ifndef HF_COMMON_CLOCK_H
#define HF_COMMON_CLOCK_H

#include <stdint.h>

struct timespec;

/* Wall clock: milliseconds since the Unix epoch. */
int64_t hf_now_ms(void);
/* Wall clock in nanoseconds, for times another site compares. */
int64_t hf_now_ns(void);
/* Monotonic clock in milliseconds (an arbitrary origin). */
int64_t hf_mono_ms(void);
/* Monotonic clock in nanoseconds, for durations finer than a millisecond. */
int64_t hf_mono_ns(void);
/*
 * Fills *out with the wall-clock time ms from now: the absolute deadline
 * pthread_cond_timedwait takes for a condition variable of the default
 * clock.
 */
void hf_deadline_after_ms(struct timespec *out, int64_t ms);
/* Sleeps ms milliseconds, a signal's interruption included. */
void hf_sleep_ms(int64_t ms);

#endif
