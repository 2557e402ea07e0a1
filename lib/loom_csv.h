/* loom_csv.h - streaming CSV reader and writer (RFC 4180).
 *
 * The reader streams: it holds one record at a time (at most max_record
 * bytes plus one 64 KiB read), splits fields in place in its own buffer and
 * reuses that buffer and its field arrays from record to record, so a
 * million-row HR export costs no allocation per field or per record.
 *
 * What the reader accepts (strict RFC 4180, UTF-8):
 * - Fields are separated by the delimiter; a field that starts with the
 *   quote is quoted and may hold the delimiter, CR, LF and doubled quotes.
 *   Line breaks inside quoted fields are kept byte for byte (CRLF stays
 *   CRLF). Spaces are data: nothing is trimmed.
 * - A record ends with CRLF or LF; the last one may have no line break.
 *   A CR alone outside quotes is an error (old Mac line ends are refused,
 *   not guessed at); inside quotes it is data.
 * - A quote inside an unquoted field, anything but the delimiter or a line
 *   break after a closing quote, a NUL byte, invalid UTF-8 and a quoted
 *   field still open at the end of input are errors. There is no lenient
 *   mode: such bytes would be imported as something else than what the
 *   file's author meant.
 * - Header files (opts.header): the first record names the columns; every
 *   other record must have as many fields. A completely empty line (just
 *   a line break) is skipped there, before or after the header, so a
 *   one-column file cannot hold an empty unquoted value: write "" for it.
 *   Without a header an empty line is a record of one empty field.
 *
 * Errors and recovery: loom_csv_read returns -1 with a loom_csv_error_t
 * for a malformed record; the reader has then consumed that record (read
 * leniently: a stray quote or byte is taken as data, so the record ends
 * where a forgiving reader would end it) and the next call goes on with
 * the next record. Two errors lose more: once a record is past
 * max_record bytes (+2 for lookahead) without ending, the reader drops
 * input up to the next LF and starts again there (for a runaway quoted
 * field, that is the next line, not the field's end); and a quoted field
 * still open at the end of input takes the rest of the input with it.
 * Errors flagged fatal (I/O error, malformed or unexpected header) end the
 * reading: every later call repeats them.
 *
 * Lines and columns are 1-based; columns count characters (UTF-8 code
 * points), not bytes, so they match what an editor shows. A BOM does not
 * count.
 */
#ifndef LOOM_CSV_H
#define LOOM_CSV_H

#include <stdbool.h>
#include <stddef.h>

#include "loom_buf.h"

typedef struct loom_csv_opts {
	char delimiter;        /* field separator: ',' by default, '\t' for TSV, ';' ... */
	char quote;            /* quote character, '"' by default */
	bool header;           /* reader: the first record names the columns (default true) */
	bool trim_bom;         /* reader: skip a UTF-8 BOM at the start (default true) */
	bool validate_utf8;    /* reader: invalid UTF-8 is a record error (default true) */
	size_t max_record;     /* reader: longest record in bytes, line break excluded (default 1 MiB) */
	const char *const *expect_columns; /* reader: NULL, or the exact header wanted (copied at open) */
	size_t n_expect_columns; /* reader: number of names in expect_columns */
	bool crlf;             /* writer: end records with CRLF (default true), else LF */
} loom_csv_opts_t;

typedef struct loom_csv_reader loom_csv_reader_t;
typedef struct loom_csv_writer loom_csv_writer_t;

/* One record, valid until the next loom_csv_read or destroy. */
typedef struct loom_csv_record {
	size_t n;                /* number of fields, at least 1 */
	const char *const *v;    /* n fields, each NUL-terminated, quotes undone */
	const size_t *len;       /* n field lengths in bytes */
	unsigned line;           /* 1-based line where the record starts */
} loom_csv_record_t;

/* What was wrong with one record; print as "<name>:<line>:<column>: <message>". */
typedef struct loom_csv_error {
	unsigned line;           /* 1-based line of the offending byte */
	unsigned column;         /* 1-based column (in characters) of the offending byte */
	unsigned record_line;    /* 1-based line where the bad record starts */
	bool fatal;              /* true when reading cannot go on (I/O error, bad header) */
	char message[160];       /* what was found and what was expected */
} loom_csv_error_t;

/* Fills o with the defaults listed on each field. */
void loom_csv_opts_default(loom_csv_opts_t *o);
/* Returns 0 when o is usable, or -1 with *ret_error (malloc'd) naming the
 * bad option: delimiter and quote must differ and be ASCII other than NUL,
 * CR and LF; max_record must be at least 1; expect_columns needs header. */
int loom_csv_opts_check(const loom_csv_opts_t *o, char **ret_error);

/* Opens a reader on fd (not closed by the reader; read in 64 KiB chunks).
 * name is only used in messages. o NULL means the defaults. Returns 0 with
 * *ret, or -1 with *ret_error (malloc'd) when the options are bad. */
int loom_csv_reader_open_fd(int fd, const char *name, const loom_csv_opts_t *o,
    loom_csv_reader_t **ret, char **ret_error);
/* Opens a reader on len bytes at data, which must stay valid and unchanged
 * until the reader is destroyed. Returns 0 with *ret, or -1 when the
 * options are bad (loom_csv_opts_check says why). */
int loom_csv_reader_open_mem(const char *data, size_t len, const char *name,
    const loom_csv_opts_t *o, loom_csv_reader_t **ret);
/* Frees the reader; NULL and *r NULL allowed; sets *r to NULL. */
void loom_csv_reader_destroy(loom_csv_reader_t **r);

/* The header's column names: with header on, known after the first
 * loom_csv_read (0 columns for an empty input or a malformed header; the
 * names read when they differ from expect_columns; always 0 with header
 * off). Names stay valid until the reader is destroyed. */
size_t loom_csv_columns(const loom_csv_reader_t *r, const char *const **ret_names);

/* Reads the next data record. Returns 1 with *ret; 0 at the end of input
 * (and on every later call); -1 with *ret_err for a malformed record, after
 * which the next call returns the record after it - unless ret_err->fatal,
 * in which case every later call returns the same error again. */
int loom_csv_read(loom_csv_reader_t *r, loom_csv_record_t *ret, loom_csv_error_t *ret_err);

/* Returns a writer appending records to out (borrowed, must outlive the
 * writer), or NULL when the options are bad. Only delimiter, quote and
 * crlf are used. */
loom_csv_writer_t *loom_csv_writer_new_buf(loom_buf_t *out, const loom_csv_opts_t *o);
/* Returns a writer on fd (not closed by the writer; name used in messages)
 * that buffers up to 64 KiB, or NULL when the options are bad. */
loom_csv_writer_t *loom_csv_writer_new_fd(int fd, const char *name, const loom_csv_opts_t *o);
/* Writes one record of n fields (len NULL: the fields are NUL-terminated;
 * a NULL field is empty). A field is quoted only when it holds the
 * delimiter, the quote, CR or LF, starts or ends with a space or tab,
 * starts with a UTF-8 BOM, or is the only field and empty (an empty line
 * reads back as no record in a header file). UTF-8 is not checked. Returns
 * 0, or -1 with *ret_error (malloc'd): when n is 0 or a field holds a NUL
 * byte nothing is written; when an fd writer cannot flush, the record
 * stays buffered with the other unwritten bytes. */
int loom_csv_write(loom_csv_writer_t *w, size_t n, const char *const *v, const size_t *len,
    char **ret_error);
/* Writes whatever an fd writer still holds (no-op for a buffer writer).
 * Returns 0, or -1 with *ret_error (malloc'd); unwritten bytes are kept. */
int loom_csv_writer_flush(loom_csv_writer_t *w, char **ret_error);
/* Frees the writer without flushing; NULL and *w NULL allowed; sets *w to NULL. */
void loom_csv_writer_destroy(loom_csv_writer_t **w);

#endif
