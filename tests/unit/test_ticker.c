/*
 * test_ticker.c - the periodic thread of common/ticker.h: passes on its
 * period, at once when kicked or when asked to start with one, a stop
 * seen by a long pass, and a start again after a stop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "common/ticker.h"

struct counter {
	struct hf_ticker *t;
	int passes;
	int stopping_seen;
	int64_t long_ms; /* a pass this long, checking for a stop */
	pthread_mutex_t mu;
};

static void count_pass(void *arg)
{
	struct counter *c = arg;
	int64_t until = hf_mono_ms() + c->long_ms;

	pthread_mutex_lock(&c->mu);
	c->passes++;
	pthread_mutex_unlock(&c->mu);
	while (hf_mono_ms() < until) {
		if (hf_ticker_stopping(c->t)) {
			pthread_mutex_lock(&c->mu);
			c->stopping_seen++;
			pthread_mutex_unlock(&c->mu);
			return;
		}
		usleep(1000);
	}
}

static int passes(struct counter *c)
{
	int n;

	pthread_mutex_lock(&c->mu);
	n = c->passes;
	pthread_mutex_unlock(&c->mu);
	return n;
}

/* Waits up to ms for at least n passes; returns the count. */
static int wait_passes(struct counter *c, int n, int64_t ms)
{
	int64_t until = hf_mono_ms() + ms;

	while (passes(c) < n && hf_mono_ms() < until)
		usleep(1000);
	return passes(c);
}

static void test_period_kick_and_stop(void **state)
{
	struct hf_ticker t = HF_TICKER_INIT;
	struct counter c = {.t = &t, .mu = PTHREAD_MUTEX_INITIALIZER};

	(void)state;
	t.name = "the test ticker";
	t.without = "nothing";
	t.every_ms = 60000;
	assert_true(hf_ticker_start(&t, count_pass, &c));
	assert_true(hf_ticker_start(&t, count_pass, &c)); /* once */
	usleep(50000);
	assert_int_equal(passes(&c), 0); /* the first after the period */
	hf_ticker_kick(&t);
	assert_int_equal(wait_passes(&c, 1, 5000), 1);
	hf_ticker_kick(&t);
	assert_int_equal(wait_passes(&c, 2, 5000), 2);
	hf_ticker_stop(&t);
	hf_ticker_stop(&t); /* twice: nothing */
	assert_false(t.started);

	/* A short period runs by itself; started again after the stop. */
	t.every_ms = 5;
	assert_true(hf_ticker_start(&t, count_pass, &c));
	assert_false(hf_ticker_stopping(&t));
	assert_true(wait_passes(&c, 5, 5000) >= 5);
	hf_ticker_stop(&t);
}

static void test_first_at_once_and_long_pass(void **state)
{
	struct hf_ticker t = HF_TICKER_INIT;
	struct counter c = {.t = &t, .mu = PTHREAD_MUTEX_INITIALIZER,
			    .long_ms = 60000};
	int64_t t0;

	(void)state;
	t.name = "the test ticker";
	t.without = "nothing";
	t.every_ms = 60000;
	t.first_at_once = true;
	assert_true(hf_ticker_start(&t, count_pass, &c));
	assert_int_equal(wait_passes(&c, 1, 5000), 1);
	/* The pass runs for a minute unless it sees the stop. */
	t0 = hf_mono_ms();
	hf_ticker_stop(&t);
	assert_true(hf_mono_ms() - t0 < 5000);
	assert_int_equal(c.stopping_seen, 1);
	assert_true(hf_ticker_stopping(&t));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_period_kick_and_stop),
		cmocka_unit_test(test_first_at_once_and_long_pass),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
