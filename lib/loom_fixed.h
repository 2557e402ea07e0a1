/* loom_fixed.h - fixed-width records: a column layout with types, one
 * record per line.
 *
 * A layout lists columns: a name, the 1-based character position where the
 * column starts (0: right after the previous one), its width in characters
 * (UTF-8 code points, not bytes, so a name with accents takes as many
 * positions as an editor shows), a type and, for datetimes, a strftime
 * format.
 *
 * Reading a line: a line longer than the layout is an error (a column is
 * missing from the layout, or the file is another layout); a shorter line
 * is read as if padded with spaces (editors strip trailing blanks). A
 * cell's padding (spaces on both sides) is not part of its value; a blank
 * cell has no value. Values by type:
 *   string    the text
 *   integer   optional sign and decimal digits (leading zeros allowed)
 *   boolean   true/false, yes/no, y/n, t/f, 1/0 (any case)
 *   datetime  the column's format, else any of %Y-%m-%dT%H:%M:%S (Z or no
 *             zone: UTC), "%Y-%m-%d %H:%M:%S", %Y-%m-%d, %Y%m%d%H%M%S,
 *             %Y%m%d, each exactly (zero-padded: "2024-3-1" is not
 *             one) and a date that exists (not 2024-02-30);
 *             microseconds since the epoch, UTC
 *
 * Writing: strings, booleans and datetimes are left-aligned, integers
 * right-aligned (align overrides), padded with spaces; booleans are Y/N in
 * columns narrower than 5, else true/false; datetimes use the column's
 * format, else %Y-%m-%dT%H:%M:%S in columns of 19 or more, %Y-%m-%d in 10
 * or more, %Y%m%d in 8 or more; %Y always gives 4 digits at least, in the
 * column's format too. A value that does not fit its column is an
 * error, never cut.
 */
#ifndef LOOM_FIXED_H
#define LOOM_FIXED_H

#include <stdbool.h>
#include <stddef.h>

#include "loom_buf.h"
#include "sync.pb-c.h"

typedef enum {
	LOOM_FIXED_STRING,
	LOOM_FIXED_INTEGER,
	LOOM_FIXED_BOOLEAN,
	LOOM_FIXED_DATETIME,
} loom_fixed_type_t;

typedef enum { LOOM_FIXED_ALIGN_AUTO, LOOM_FIXED_ALIGN_LEFT, LOOM_FIXED_ALIGN_RIGHT } loom_fixed_align_t;

/* One column. */
typedef struct loom_fixed_col {
	const char *name;              /* attribute name */
	unsigned start;                /* 1-based first character (resolved by loom_fixed_layout) */
	unsigned width;                /* characters */
	loom_fixed_type_t type;        /* what its values are */
	const char *format;            /* datetime: strftime/strptime format, NULL for the defaults */
	loom_fixed_align_t align;      /* padding side on writing */
} loom_fixed_col_t;

/* Resolves start 0 to "after the previous column" and checks the layout:
 * widths of at least 1, no overlaps, unique names. Returns 0, or -1 with
 * *ret_error (malloc'd) naming the column. */
int loom_fixed_layout(loom_fixed_col_t *cols, size_t n, char **ret_error);

/* Characters a line of the layout holds (the end of its last column). */
unsigned loom_fixed_length(const loom_fixed_col_t *cols, size_t n);

/* One cell of a line. */
typedef struct loom_fixed_cell {
	const char *text;              /* its value without padding (points into the line) */
	size_t len;                    /* bytes; 0 for a blank cell */
} loom_fixed_cell_t;

/* Splits a line (no line end) into n cells. Returns 0, or -1 with *ret_col
 * (1-based character column of the fault) and *error_r: static text when
 * the line is not UTF-8; NULL when it is longer than the layout (*ret_col
 * is then the layout's length + 1, and the caller words the message, as it
 * knows the lengths). */
int loom_fixed_split(const loom_fixed_col_t *cols, size_t n, const char *line, size_t len, loom_fixed_cell_t *cells,
    unsigned *ret_col, const char **error_r);

/* The typed value of a cell's text (not blank). Returns a new value, or
 * NULL with *why (a message in why_buf of why_len bytes). */
Loom__Value *loom_fixed_value(const loom_fixed_col_t *col, const char *text, size_t len, char *why_buf,
    size_t why_len);

/* Appends text as the cell of col (padded). Returns 0, or -1 when it is
 * longer than the column. */
int loom_fixed_put(loom_buf_t *out, const loom_fixed_col_t *col, const char *text, size_t len);

/* Appends v's text as the column writes it (no padding). */
void loom_fixed_value_text(loom_buf_t *out, const loom_fixed_col_t *col, const Loom__Value *v);

/* UTF-8 characters in s (invalid bytes count one each). */
size_t loom_fixed_chars(const char *s, size_t len);

#endif
