/*
 * volume.c - the helpers volume.h declares for every part of the volume
 * program: identifiers and generation ids.
 */
#include <string.h>

#include "volume/volume.h"

bool hf_vol_id_ok(const char *s, size_t n, size_t max)
{
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

bool hf_vol_gen_is_zero(const struct hf_vol_gen *g)
{
	static const struct hf_vol_gen zero;

	return memcmp(g->b, zero.b, sizeof(g->b)) == 0;
}

bool hf_vol_gen_equal(const struct hf_vol_gen *a, const struct hf_vol_gen *b)
{
	return memcmp(a->b, b->b, sizeof(a->b)) == 0;
}
