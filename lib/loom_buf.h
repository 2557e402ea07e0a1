/* loom_buf.h - growable byte buffer, always NUL-terminated (Postfix VSTRING). */
#ifndef LOOM_BUF_H
#define LOOM_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct loom_buf {
	char *data;  /* bytes, data[len] is always '\0'; NULL until first write */
	size_t len;  /* bytes in use, not counting the terminator */
	size_t cap;  /* bytes allocated */
} loom_buf_t;

#define LOOM_BUF_INIT { NULL, 0, 0 }

/* Prepares an embedded buffer; loom_buf_release undoes it. */
void loom_buf_init(loom_buf_t *b);
/* Frees the storage and leaves an empty buffer. */
void loom_buf_release(loom_buf_t *b);
/* Empties the buffer, keeping the storage. */
void loom_buf_reset(loom_buf_t *b);
/* Makes room for at least extra more bytes. */
void loom_buf_reserve(loom_buf_t *b, size_t extra);
void loom_buf_add(loom_buf_t *b, const void *p, size_t n);
void loom_buf_adds(loom_buf_t *b, const char *s);
void loom_buf_addc(loom_buf_t *b, char c);
void loom_buf_printf(loom_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void loom_buf_vprintf(loom_buf_t *b, const char *fmt, va_list ap);
/* Appends s as a JSON string literal, quotes included. */
void loom_buf_add_json_str(loom_buf_t *b, const char *s, size_t n);
/* Appends s for a log value: bare when it has no space, quote, '=' or
 * control character, otherwise double-quoted with C escapes. */
void loom_buf_add_logval(loom_buf_t *b, const char *s, size_t n);
/* Appends n bytes as lowercase hex. */
void loom_buf_add_hex(loom_buf_t *b, const void *p, size_t n);

/* n bytes as a new lowercase hex string (caller frees). */
char *loom_hex(const void *p, size_t n);
/* Hands the storage to the caller (never NULL) and empties the buffer. */
char *loom_buf_steal(loom_buf_t *b);
/* Borrowed C string of the contents ("" when empty). */
const char *loom_buf_cstr(const loom_buf_t *b);

#endif
