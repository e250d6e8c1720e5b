/*
 * map.c - string-keyed hash map; see map.h. Deletion shifts the following
 * entries of the probe run back, so there are no tombstones.
 */
#include <stdlib.h>
#include <string.h>

#include "common/map.h"
#include "common/util.h"

uint64_t hf_hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	/* splitmix64's finaliser spreads the low bits used as the index. */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

static size_t find(const struct hf_map *m, const char *key, uint64_t h)
{
	size_t mask = m->cap - 1, i = (size_t)h & mask;

	while (m->slots[i].key) {
		if (m->slots[i].hash == h && strcmp(m->slots[i].key, key) == 0)
			return i;
		i = (i + 1) & mask;
	}
	return i;
}

static void grow(struct hf_map *m)
{
	struct hf_map_slot *old = m->slots;
	size_t oldcap = m->cap;

	m->cap = oldcap ? oldcap * 2 : 16;
	m->slots = hf_xcalloc(m->cap, sizeof(*m->slots));
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].key)
			m->slots[find(m, old[i].key, old[i].hash)] = old[i];
	free(old);
}

void hf_map_put(struct hf_map *m, const char *key, void *value)
{
	uint64_t h = hf_hash_str(key);
	size_t i;

	if ((m->len + 1) * 4 > m->cap * 3)
		grow(m);
	i = find(m, key, h);
	if (!m->slots[i].key)
		m->len++;
	m->slots[i].key = key;
	m->slots[i].value = value;
	m->slots[i].hash = h;
}

void *hf_map_get(const struct hf_map *m, const char *key)
{
	size_t i;

	if (!m->len || !key)
		return NULL;
	i = find(m, key, hf_hash_str(key));
	return m->slots[i].key ? m->slots[i].value : NULL;
}

bool hf_map_del(struct hf_map *m, const char *key)
{
	size_t mask, i, j;

	if (!m->len || !key)
		return false;
	mask = m->cap - 1;
	i = find(m, key, hf_hash_str(key));
	if (!m->slots[i].key)
		return false;
	m->slots[i].key = NULL;
	m->len--;
	/* Move back every later entry of the run that may sit at i. */
	for (j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
		size_t home = (size_t)m->slots[j].hash & mask;

		/* j's home lies cyclically in (i, j]: it must stay. */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		m->slots[i] = m->slots[j];
		m->slots[j].key = NULL;
		i = j;
	}
	return true;
}

void hf_map_clear(struct hf_map *m)
{
	if (m->cap)
		memset(m->slots, 0, m->cap * sizeof(*m->slots));
	m->len = 0;
}

void hf_map_release(struct hf_map *m)
{
	free(m->slots);
	memset(m, 0, sizeof(*m));
}
