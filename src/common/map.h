/*
 * map.h - a hash map from strings to pointers (open addressing, linear
 * probing). The map does not own its keys: each key must stay valid, and
 * unchanged, while it is in the map (typically the key is a field of the
 * value, such as an instance's name).
 */
#ifndef HF_COMMON_MAP_H
#define HF_COMMON_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hf_map_slot {
	const char *key; /* NULL: empty */
	void *value;
	uint64_t hash;
};

struct hf_map {
	struct hf_map_slot *slots;
	size_t len, cap; /* cap: 0 or a power of two */
};

/* 64-bit FNV-1a of a string, finished with a mixer. */
uint64_t hf_hash_str(const char *s);

/* Sets key to value (replacing an existing entry's value and key). */
void hf_map_put(struct hf_map *m, const char *key, void *value);
/* The value of key, or NULL. */
void *hf_map_get(const struct hf_map *m, const char *key);
/* Removes key; returns whether it was there. */
bool hf_map_del(struct hf_map *m, const char *key);
void hf_map_clear(struct hf_map *m);
void hf_map_release(struct hf_map *m);

#endif
