/* loom_map.c - string-keyed hash map with linear probing and tombstones. */
#include "loom_map.h"
#include "loom_alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TOMBSTONE ((char *)1)

typedef struct slot {
	char *key;      /* owned copy; NULL empty, TOMBSTONE deleted */
	size_t klen;    /* key length */
	uint64_t hash;  /* cached hash of key */
	void *value;    /* borrowed */
} slot_t;

struct loom_map {
	slot_t *slots;  /* cap slots */
	size_t cap;     /* power of two */
	size_t count;   /* live keys */
	size_t used;    /* live keys + tombstones */
};

static uint64_t hash_bytes(const void *p, size_t n)
{
	/* FNV-1a: short keys, no adversary that can see the table. */
	const unsigned char *s = p;
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

loom_map_t *loom_map_new(void)
{
	loom_map_t *m = loom_calloc(1, sizeof *m);
	m->cap = 16;
	m->slots = loom_calloc(m->cap, sizeof *m->slots);
	return m;
}

void loom_map_destroy(loom_map_t **map_p)
{
	loom_map_t *m = *map_p;
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key && m->slots[i].key != TOMBSTONE)
			free(m->slots[i].key);
	free(m->slots);
	free(m);
	*map_p = NULL;
}

static slot_t *find(const loom_map_t *m, const void *key, size_t klen, uint64_t h)
{
	size_t mask = m->cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		slot_t *s = &m->slots[i];
		if (s->key == NULL)
			return NULL;
		if (s->key != TOMBSTONE && s->hash == h && s->klen == klen &&
		    memcmp(s->key, key, klen) == 0)
			return s;
	}
}

static void grow(loom_map_t *m)
{
	slot_t *old = m->slots;
	size_t oldcap = m->cap;
	if (m->count * 2 >= m->cap)
		m->cap *= 2;
	m->slots = loom_calloc(m->cap, sizeof *m->slots);
	m->used = m->count;
	size_t mask = m->cap - 1;
	for (size_t i = 0; i < oldcap; i++) {
		if (old[i].key == NULL || old[i].key == TOMBSTONE)
			continue;
		size_t j = old[i].hash & mask;
		while (m->slots[j].key)
			j = (j + 1) & mask;
		m->slots[j] = old[i];
	}
	free(old);
}

void *loom_map_get(const loom_map_t *m, const void *key, size_t klen)
{
	slot_t *s = find(m, key, klen, hash_bytes(key, klen));
	return s ? s->value : NULL;
}

void *loom_map_put(loom_map_t *m, const void *key, size_t klen, void *value)
{
	uint64_t h = hash_bytes(key, klen);
	slot_t *s = find(m, key, klen, h);
	if (s) {
		void *prev = s->value;
		s->value = value;
		return prev;
	}
	if ((m->used + 1) * 4 >= m->cap * 3)
		grow(m);
	size_t mask = m->cap - 1;
	size_t i = h & mask;
	while (m->slots[i].key && m->slots[i].key != TOMBSTONE)
		i = (i + 1) & mask;
	if (m->slots[i].key == NULL)
		m->used++;
	m->slots[i].key = loom_strndup(key, klen);
	m->slots[i].klen = klen;
	m->slots[i].hash = h;
	m->slots[i].value = value;
	m->count++;
	return NULL;
}

void *loom_map_remove(loom_map_t *m, const void *key, size_t klen)
{
	slot_t *s = find(m, key, klen, hash_bytes(key, klen));
	if (s == NULL)
		return NULL;
	void *v = s->value;
	free(s->key);
	s->key = TOMBSTONE;
	s->value = NULL;
	m->count--;
	return v;
}

size_t loom_map_count(const loom_map_t *m)
{
	return m->count;
}

bool loom_map_next(const loom_map_t *m, size_t *pos, const void **ret_key,
    size_t *ret_klen, void **ret_value)
{
	for (size_t i = *pos; i < m->cap; i++) {
		slot_t *s = &m->slots[i];
		if (s->key == NULL || s->key == TOMBSTONE)
			continue;
		if (ret_key)
			*ret_key = s->key;
		if (ret_klen)
			*ret_klen = s->klen;
		if (ret_value)
			*ret_value = s->value;
		*pos = i + 1;
		return true;
	}
	*pos = m->cap;
	return false;
}
