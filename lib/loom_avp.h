/* loom_avp.h - attribute-value pair files: a streaming reader and a writer.
 *
 * The format (MIIS/FIM's "attribute-value pairs" text file, made exact):
 *
 *   # a comment line (only at the start of a line)
 *   employeeId: 1001          one attribute per line: NAME SEP VALUE
 *   mail: ada@example.com
 *   mail: ada.l@example.com   several values: the name repeated
 *   photo:: /9j/4AAQSk...     SEP doubled: the value is base64 (binary,
 *                             line breaks, leading spaces, non-UTF-8)
 *                             a blank line ends an object
 *
 *   - SEP is one character, ':' by default. One space after it (or after
 *     the doubled SEP) is dropped, so "name: value" and "name:value" are the
 *     same; trailing spaces are data.
 *   - NAME is what comes before the first SEP: not empty, no spaces or tabs,
 *     no SEP. The reader does not interpret names: the caller decides what
 *     "dn" or "changetype" mean, and what a leading '+' or '-' means.
 *   - Lines end with LF or CRLF; lines with nothing but spaces and tabs are
 *     blank. Blank lines before the first object and between objects may
 *     repeat. A NUL byte or invalid UTF-8 outside base64 is an error.
 *   - An empty value ("name:") is a pair with an empty value.
 *
 * Errors: a bad line (no SEP, a bad name, bad base64, a line longer than
 * max_line) makes its object an error (line and column of the fault); the
 * rest of that object is skipped up to the next blank line and reading
 * goes on. A read error is fatal. Memory is bounded by one object plus one
 * 64 KiB read.
 *
 * The writer appends pairs to a loom_buf_t, base64-encoding any value that
 * would not read back as it is.
 */
#ifndef LOOM_AVP_H
#define LOOM_AVP_H

#include <stdbool.h>
#include <stddef.h>

#include "loom_buf.h"

/* One pair; strings NUL-terminated, valid until the next read. */
typedef struct loom_avp_pair {
	const char *name;      /* as written */
	const char *value;     /* the value's bytes (binary-safe) */
	size_t len;            /* how many */
	unsigned line;         /* its line */
} loom_avp_pair_t;

/* One object: its pairs in file order. */
typedef struct loom_avp_record {
	size_t n;                       /* number of pairs, at least 1 */
	const loom_avp_pair_t *pairs;   /* the pairs */
	unsigned line;                  /* line of the first pair */
} loom_avp_record_t;

typedef struct loom_avp_error {
	unsigned line;         /* 1-based line of the fault */
	unsigned column;       /* 1-based byte column in it */
	unsigned record_line;  /* first line of the refused object */
	bool fatal;            /* reading cannot go on (I/O error) */
	char message[256];     /* what was found and what was expected */
} loom_avp_error_t;

typedef struct loom_avp_reader loom_avp_reader_t;

/* A reader over fd (not closed; read from its offset) with separator sep
 * ('\0' means ':'); max_line 0 means 16 MiB. Returns NULL when fd < 0 or
 * sep is a space, tab, CR, LF or #. */
loom_avp_reader_t *loom_avp_reader_new_fd(int fd, char sep, size_t max_line);
/* A reader over len bytes at data (unchanged while the reader lives). */
loom_avp_reader_t *loom_avp_reader_new_mem(const char *data, size_t len, char sep, size_t max_line);
void loom_avp_reader_destroy(loom_avp_reader_t **r);

/* Reads the next object: 1 with *ret, 0 at the end, -1 with *ret_err (may
 * be NULL) for a refused object, after which reading goes on with the next
 * one unless ret_err->fatal (then every call returns 0). */
int loom_avp_read(loom_avp_reader_t *r, loom_avp_record_t *ret, loom_avp_error_t *ret_err);

/* Appends "name SEP value\n" (base64 with SEP doubled when needed). */
void loom_avp_write_pair(loom_buf_t *out, char sep, const char *name, const char *value, size_t len);
/* Appends the blank line that ends an object. */
void loom_avp_write_end(loom_buf_t *out);

#endif
