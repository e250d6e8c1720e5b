/*
 * rng.h - a small seedable random number generator (xoshiro256**), for
 * what must be unpredictable in practice but reproducible in a test: the
 * scheduler's task ids and the jitter of its restart backoff. Pure: it
 * reads no device and keeps no global state; the caller seeds it (the
 * server from /dev/urandom, a test from a constant). Not for secrets.
 */
#ifndef HF_COMMON_RNG_H
#define HF_COMMON_RNG_H

#include <stddef.h>
#include <stdint.h>

struct hf_rng {
	uint64_t s[4];
};

/* Seeds the generator from one 64-bit value (any value, 0 included). */
void hf_rng_seed(struct hf_rng *r, uint64_t seed);
/* The next 64 random bits. */
uint64_t hf_rng_next(struct hf_rng *r);
/* A value in [0, n) (n > 0), without modulo bias. */
uint64_t hf_rng_below(struct hf_rng *r, uint64_t n);
/* 2*bytes lowercase hex digits; the caller frees them. */
char *hf_rng_hex(struct hf_rng *r, size_t bytes);

#endif
