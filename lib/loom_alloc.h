/* loom_alloc.h - allocation wrappers that never return NULL.
 *
 * Running out of memory is not an error Loom tries to recover from: the
 * wrappers print one line and abort (Postfix mymalloc), so callers never
 * check for NULL.
 */
#ifndef LOOM_ALLOC_H
#define LOOM_ALLOC_H

#include <stddef.h>

/* Returns size bytes of uninitialised memory; aborts when none is left. */
void *loom_malloc(size_t size);
/* Returns n*size zeroed bytes; aborts on overflow or when none is left. */
void *loom_calloc(size_t n, size_t size);
/* Resizes ptr (which may be NULL); aborts when none is left. */
void *loom_realloc(void *ptr, size_t size);
/* Returns a copy of s (NULL gives NULL). */
char *loom_strdup(const char *s);
/* Returns a NUL-terminated copy of the first n bytes of s. */
char *loom_strndup(const char *s, size_t n);
/* Returns a copy of n bytes at p. */
void *loom_memdup(const void *p, size_t n);
/* Returns a newly allocated printf-formatted string. */
char *loom_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Frees *pp (NULL allowed) and sets it to NULL. */
#define loom_free(pp) do { free(*(pp)); *(pp) = NULL; } while (0)

#endif
