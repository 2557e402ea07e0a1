/* loom_buf.c - growable byte buffer. */
#include "loom_buf.h"
#include "loom_alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void loom_buf_init(loom_buf_t *b)
{
	b->data = NULL;
	b->len = b->cap = 0;
}

void loom_buf_release(loom_buf_t *b)
{
	free(b->data);
	loom_buf_init(b);
}

void loom_buf_reset(loom_buf_t *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void loom_buf_reserve(loom_buf_t *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->data = loom_realloc(b->data, cap);
	b->cap = cap;
}

void loom_buf_add(loom_buf_t *b, const void *p, size_t n)
{
	loom_buf_reserve(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void loom_buf_adds(loom_buf_t *b, const char *s)
{
	loom_buf_add(b, s, strlen(s));
}

void loom_buf_addc(loom_buf_t *b, char c)
{
	loom_buf_add(b, &c, 1);
}

void loom_buf_vprintf(loom_buf_t *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	char probe[1];
	int n = vsnprintf(probe, 0, fmt, ap);
	if (n < 0)
		abort(); /* bad format: a programming error */
	loom_buf_reserve(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	b->len += (size_t)n;
}

void loom_buf_printf(loom_buf_t *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	loom_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void loom_buf_add_json_str(loom_buf_t *b, const char *s, size_t n)
{
	loom_buf_addc(b, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"': loom_buf_adds(b, "\\\""); break;
		case '\\': loom_buf_adds(b, "\\\\"); break;
		case '\n': loom_buf_adds(b, "\\n"); break;
		case '\r': loom_buf_adds(b, "\\r"); break;
		case '\t': loom_buf_adds(b, "\\t"); break;
		default:
			if (c < 0x20 || c == 0x7f)
				loom_buf_printf(b, "\\u%04x", c);
			else
				loom_buf_addc(b, (char)c);
		}
	}
	loom_buf_addc(b, '"');
}

void loom_buf_add_logval(loom_buf_t *b, const char *s, size_t n)
{
	int plain = n > 0;
	for (size_t i = 0; i < n && plain; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
			plain = 0;
	}
	if (plain) {
		loom_buf_add(b, s, n);
		return;
	}
	loom_buf_addc(b, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			loom_buf_addc(b, '\\');
			loom_buf_addc(b, (char)c);
		} else if (c == '\n') {
			loom_buf_adds(b, "\\n");
		} else if (c < 0x20 || c == 0x7f) {
			loom_buf_printf(b, "\\x%02x", c);
		} else {
			loom_buf_addc(b, (char)c);
		}
	}
	loom_buf_addc(b, '"');
}

void loom_buf_add_hex(loom_buf_t *b, const void *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = p;
	loom_buf_reserve(b, n * 2);
	for (size_t i = 0; i < n; i++) {
		b->data[b->len++] = hex[u[i] >> 4];
		b->data[b->len++] = hex[u[i] & 15];
	}
	b->data[b->len] = '\0';
}

char *loom_hex(const void *p, size_t n)
{
	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_add_hex(&b, p, n);
	return loom_buf_steal(&b);
}

char *loom_buf_steal(loom_buf_t *b)
{
	char *s = b->data ? b->data : loom_strdup("");
	loom_buf_init(b);
	return s;
}

const char *loom_buf_cstr(const loom_buf_t *b)
{
	return b->data ? b->data : "";
}
