/* loom_alloc.c - allocation wrappers that abort instead of returning NULL. */
#include "loom_alloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void out_of_memory(size_t size)
{
	/* No allocation, no stdio buffering: this must work with the heap gone. */
	char line[96];
	int n = snprintf(line, sizeof line, "panic: out of memory allocating %zu bytes\n", size);
	if (n > 0 && write(2, line, (size_t)n) < 0) {
		/* nothing left to report to */
	}
	abort();
}

void *loom_malloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (p == NULL)
		out_of_memory(size);
	return p;
}

void *loom_calloc(size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		out_of_memory(SIZE_MAX);
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (p == NULL)
		out_of_memory(n * size);
	return p;
}

void *loom_realloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);
	if (p == NULL)
		out_of_memory(size);
	return p;
}

char *loom_strdup(const char *s)
{
	return s ? loom_memdup(s, strlen(s) + 1) : NULL;
}

char *loom_strndup(const char *s, size_t n)
{
	char *p = loom_malloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void *loom_memdup(const void *p, size_t n)
{
	void *q = loom_malloc(n);
	if (n)
		memcpy(q, p, n);
	return q;
}

char *loom_sprintf(const char *fmt, ...)
{
	va_list ap, ap2;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort(); /* a bad format string is a programming error */
	char *s = loom_malloc((size_t)n + 1);
	vsnprintf(s, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	return s;
}
