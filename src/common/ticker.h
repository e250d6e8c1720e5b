/*
 * ticker.h - a thread that runs a pass every so often until it is
 * stopped: the server's loops that look at something on a period (DR
 * shipping and switchovers, backups, the links to remote clusters, the
 * autoscaler, stacks). A pass runs without the ticker's lock; a long
 * pass asks hf_ticker_stopping() between its pieces so that a stop does
 * not wait for all of it.
 */
#ifndef HF_COMMON_TICKER_H
#define HF_COMMON_TICKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct hf_ticker {
	/* Set by the owner before hf_ticker_start. */
	const char *name;        /* "the backups thread", for the log */
	const char *without;     /* what is not done if it cannot start */
	int64_t every_ms;        /* from the end of a pass to the next */
	bool first_at_once;      /* the first pass at the start, not after */
	void (*pass)(void *arg);
	void *arg;
	/* The ticker's own. */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool started, kicked, stop;
};

/* A ticker not started yet, with its lock and condition made. */
#define HF_TICKER_INIT                                                         \
	{                                                                      \
		.mu = PTHREAD_MUTEX_INITIALIZER,                               \
		.cond = PTHREAD_COND_INITIALIZER,                              \
	}

/*
 * Starts the thread (once; again after hf_ticker_stop). Returns false,
 * having logged what the thread would have done, when it cannot start.
 */
bool hf_ticker_start(struct hf_ticker *t, void (*pass)(void *), void *arg);
/* The next pass now, not at the end of the period. Any thread. */
void hf_ticker_kick(struct hf_ticker *t);
/* Stops the thread and waits for it (its pass ends first). */
void hf_ticker_stop(struct hf_ticker *t);
/* Whether a stop was asked: a long pass checks it between pieces. */
bool hf_ticker_stopping(struct hf_ticker *t);

#endif
