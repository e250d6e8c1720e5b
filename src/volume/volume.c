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

const int64_t hf_vol_lat_bounds_us[HF_VOL_LAT_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
    1000000};

size_t hf_vol_lat_bucket(int64_t us)
{
	size_t i = 0;

	while (i < HF_VOL_LAT_BUCKETS && us > hf_vol_lat_bounds_us[i])
		i++;
	return i;
}
