/*
 * ticker.c - see ticker.h.
 */
#include "common/ticker.h"

#include <errno.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"

static void *ticker_main(void *arg)
{
	struct hf_ticker *t = arg;
	bool first = t->first_at_once;

	pthread_mutex_lock(&t->mu);
	while (!t->stop) {
		if (!first) {
			struct timespec until;

			hf_deadline_after_ms(&until, t->every_ms);
			while (!t->stop && !t->kicked &&
			       pthread_cond_timedwait(&t->cond, &t->mu,
						      &until) != ETIMEDOUT)
				;
			if (t->stop)
				break;
		}
		first = false;
		t->kicked = false;
		pthread_mutex_unlock(&t->mu);
		t->pass(t->arg);
		pthread_mutex_lock(&t->mu);
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

bool hf_ticker_start(struct hf_ticker *t, void (*pass)(void *), void *arg)
{
	if (t->started)
		return true;
	t->pass = pass;
	t->arg = arg;
	__atomic_store_n(&t->stop, false, __ATOMIC_RELEASE);
	if (pthread_create(&t->thread, NULL, ticker_main, t) != 0) {
		hf_log("cannot start %s: %s", t->name, t->without);
		return false;
	}
	t->started = true;
	return true;
}

void hf_ticker_kick(struct hf_ticker *t)
{
	pthread_mutex_lock(&t->mu);
	t->kicked = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->mu);
}

void hf_ticker_stop(struct hf_ticker *t)
{
	if (!t->started)
		return;
	pthread_mutex_lock(&t->mu);
	__atomic_store_n(&t->stop, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->mu);
	pthread_join(t->thread, NULL);
	t->started = false;
}

bool hf_ticker_stopping(struct hf_ticker *t)
{
	return __atomic_load_n(&t->stop, __ATOMIC_ACQUIRE);
}
