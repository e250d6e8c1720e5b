/*
 * rng.c - xoshiro256** (Blackman and Vigna), seeded through splitmix64 so
 * that any seed, 0 included, gives a usable state.
 */
#include <stdlib.h>

#include "common/rng.h"
#include "common/util.h"

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void hf_rng_seed(struct hf_rng *r, uint64_t seed)
{
	for (size_t i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t hf_rng_next(struct hf_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

uint64_t hf_rng_below(struct hf_rng *r, uint64_t n)
{
	/* Rejects the top sliver that would favour small values. */
	uint64_t limit = UINT64_MAX - UINT64_MAX % n;
	uint64_t v;

	do
		v = hf_rng_next(r);
	while (v >= limit);
	return v % n;
}

char *hf_rng_hex(struct hf_rng *r, size_t bytes)
{
	static const char digits[] = "0123456789abcdef";
	char *out = hf_xmalloc(2 * bytes + 1);
	uint64_t v = 0;

	for (size_t i = 0; i < bytes; i++) {
		if (i % 8 == 0)
			v = hf_rng_next(r);
		out[2 * i] = digits[(v >> 4) & 0xf];
		out[2 * i + 1] = digits[v & 0xf];
		v >>= 8;
	}
	out[2 * bytes] = '\0';
	return out;
}
