/* loom_map.h - string-keyed hash map (open addressing, linear probing).
 *
 * Keys are copied and owned by the map; values are borrowed pointers the
 * caller manages. Used for peer tables, service indexes and the like.
 */
#ifndef LOOM_MAP_H
#define LOOM_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct loom_map loom_map_t;

loom_map_t *loom_map_new(void);
/* Frees the map and its keys (not the values); NULL allowed. */
void loom_map_destroy(loom_map_t **map_p);
/* Value stored under key (klen bytes), or NULL. */
void *loom_map_get(const loom_map_t *map, const void *key, size_t klen);
/* Stores value under key, replacing and returning any previous value. */
void *loom_map_put(loom_map_t *map, const void *key, size_t klen, void *value);
/* Removes key and returns its value, or NULL when absent. */
void *loom_map_remove(loom_map_t *map, const void *key, size_t klen);
size_t loom_map_count(const loom_map_t *map);

/* Iteration: pos starts at 0; returns false at the end. The map must not be
 * modified during iteration except through loom_map_remove of the current key. */
bool loom_map_next(const loom_map_t *map, size_t *pos, const void **ret_key,
    size_t *ret_klen, void **ret_value);

/* Convenience for NUL-terminated keys. */
#define loom_map_gets(m, s) loom_map_get((m), (s), strlen(s))
#define loom_map_puts(m, s, v) loom_map_put((m), (s), strlen(s), (v))
#define loom_map_removes(m, s) loom_map_remove((m), (s), strlen(s))

#endif
