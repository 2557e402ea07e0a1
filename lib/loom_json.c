/* loom_json.c - a strict JSON parser (see loom_json.h). */
#include "loom_json.h"
#include "loom_alloc.h"
#include "loom_buf.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
	const char *s;                 /* the text */
	size_t len;                    /* its length */
	size_t pos;                    /* where we are */
	char *error;                   /* the first error (malloc'd) */
} parser_t;

__attribute__((format(printf, 2, 3))) static int perr(parser_t *p, const char *fmt, ...)
{
	if (p->error)
		return -1;
	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_printf(&b, "column %zu: ", p->pos + 1);
	va_list ap;
	va_start(ap, fmt);
	loom_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	p->error = loom_buf_steal(&b);
	return -1;
}

static void skip_ws(parser_t *p)
{
	while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' ||
				      p->s[p->pos] == '\r'))
		p->pos++;
}

static loom_json_t *node(loom_json_type_t t)
{
	loom_json_t *v = loom_calloc(1, sizeof *v);
	v->type = t;
	return v;
}

static int hex4(parser_t *p, unsigned *ret)
{
	if (p->pos + 4 > p->len)
		return perr(p, "\\u needs four hex digits");
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p->s[p->pos + (size_t)i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return perr(p, "\\u needs four hex digits");
	}
	p->pos += 4;
	*ret = v;
	return 0;
}

static void put_utf8(loom_buf_t *b, unsigned cp)
{
	if (cp < 0x80) {
		loom_buf_addc(b, (char)cp);
	} else if (cp < 0x800) {
		loom_buf_addc(b, (char)(0xc0 | (cp >> 6)));
		loom_buf_addc(b, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		loom_buf_addc(b, (char)(0xe0 | (cp >> 12)));
		loom_buf_addc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
		loom_buf_addc(b, (char)(0x80 | (cp & 0x3f)));
	} else {
		loom_buf_addc(b, (char)(0xf0 | (cp >> 18)));
		loom_buf_addc(b, (char)(0x80 | ((cp >> 12) & 0x3f)));
		loom_buf_addc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
		loom_buf_addc(b, (char)(0x80 | (cp & 0x3f)));
	}
}

/* A string at p->pos (the opening quote) into *ret and *ret_len (malloc'd). */
static int string(parser_t *p, char **ret, size_t *ret_len)
{
	p->pos++;
	loom_buf_t b = LOOM_BUF_INIT;
	while (p->pos < p->len) {
		unsigned char c = (unsigned char)p->s[p->pos];
		if (c == '"') {
			p->pos++;
			*ret_len = b.len;
			*ret = b.data ? loom_buf_steal(&b) : loom_strdup("");
			return 0;
		}
		if (c < 0x20) {
			loom_buf_release(&b);
			return perr(p, "control character 0x%02x in a string (escape it)", c);
		}
		if (c == '\\') {
			p->pos++;
			if (p->pos >= p->len)
				break;
			char e = p->s[p->pos++];
			switch (e) {
			case '"': loom_buf_addc(&b, '"'); break;
			case '\\': loom_buf_addc(&b, '\\'); break;
			case '/': loom_buf_addc(&b, '/'); break;
			case 'b': loom_buf_addc(&b, '\b'); break;
			case 'f': loom_buf_addc(&b, '\f'); break;
			case 'n': loom_buf_addc(&b, '\n'); break;
			case 'r': loom_buf_addc(&b, '\r'); break;
			case 't': loom_buf_addc(&b, '\t'); break;
			case 'u': {
				size_t esc = p->pos - 2; /* errors point at the backslash */
				unsigned cp;
				if (hex4(p, &cp) < 0) {
					loom_buf_release(&b);
					return -1;
				}
				if (cp >= 0xd800 && cp <= 0xdbff) {
					unsigned lo;
					if (p->pos + 2 > p->len || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
						loom_buf_release(&b);
						p->pos = esc;
						return perr(p, "a high surrogate \\u%04x without its low surrogate", cp);
					}
					p->pos += 2;
					if (hex4(p, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff) {
						loom_buf_release(&b);
						p->pos = esc;
						return perr(p, "a high surrogate \\u%04x without its low surrogate", cp);
					}
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				} else if (cp >= 0xdc00 && cp <= 0xdfff) {
					loom_buf_release(&b);
					p->pos = esc;
					return perr(p, "a lone low surrogate \\u%04x", cp);
				} else if (cp == 0) {
					loom_buf_release(&b);
					p->pos = esc;
					return perr(p, "\\u0000 in a string");
				}
				put_utf8(&b, cp);
				break;
			}
			default:
				p->pos--;
				loom_buf_release(&b);
				return perr(p, "bad escape '\\%c'", e);
			}
			continue;
		}
		/* UTF-8 */
		size_t extra = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 9;
		if (extra == 9 || p->pos + extra >= p->len) {
			loom_buf_release(&b);
			return perr(p, "invalid UTF-8 in a string");
		}
		for (size_t k = 1; k <= extra; k++)
			if (((unsigned char)p->s[p->pos + k] & 0xc0) != 0x80) {
				loom_buf_release(&b);
				return perr(p, "invalid UTF-8 in a string");
			}
		loom_buf_add(&b, p->s + p->pos, extra + 1);
		p->pos += extra + 1;
	}
	loom_buf_release(&b);
	return perr(p, "unterminated string");
}

static int number(parser_t *p, loom_json_t **ret)
{
	size_t start = p->pos;
	bool integer = true;
	if (p->s[p->pos] == '-')
		p->pos++;
	if (p->pos >= p->len || !(p->s[p->pos] >= '0' && p->s[p->pos] <= '9'))
		return perr(p, "expected a digit");
	if (p->s[p->pos] == '0' && p->pos + 1 < p->len && p->s[p->pos + 1] >= '0' && p->s[p->pos + 1] <= '9')
		return perr(p, "a number with a leading zero");
	while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
		p->pos++;
	if (p->pos < p->len && p->s[p->pos] == '.') {
		integer = false;
		p->pos++;
		if (p->pos >= p->len || !(p->s[p->pos] >= '0' && p->s[p->pos] <= '9'))
			return perr(p, "expected a digit after '.'");
		while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
			p->pos++;
	}
	if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
		integer = false;
		p->pos++;
		if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			p->pos++;
		if (p->pos >= p->len || !(p->s[p->pos] >= '0' && p->s[p->pos] <= '9'))
			return perr(p, "expected a digit in the exponent");
		while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
			p->pos++;
	}
	char *t = loom_strndup(p->s + start, p->pos - start);
	loom_json_t *v = node(LOOM_JSON_NUMBER);
	v->d = strtod(t, NULL);
	if (integer) {
		errno = 0;
		long long i = strtoll(t, NULL, 10);
		if (errno == 0) {
			v->is_int = true;
			v->i = i;
		}
	}
	free(t);
	if (!isfinite(v->d)) {
		loom_json_free(&v);
		p->pos = start;
		return perr(p, "number out of range");
	}
	*ret = v;
	return 0;
}

static int value(parser_t *p, int depth, loom_json_t **ret);

static int members(parser_t *p, int depth, loom_json_t *v, bool object)
{
	char close = object ? '}' : ']';
	p->pos++;
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == close) {
		p->pos++;
		return 0;
	}
	for (;;) {
		skip_ws(p);
		char *key = NULL;
		size_t klen;
		if (object) {
			if (p->pos >= p->len || p->s[p->pos] != '"')
				return perr(p, "expected a key in quotes");
			size_t kstart = p->pos;
			if (string(p, &key, &klen) < 0)
				return -1;
			for (size_t i = 0; i < v->n; i++)
				if (strcmp(v->keys[i], key) == 0) {
					free(key);
					p->pos = kstart;
					return perr(p, "key '%s' appears twice", v->keys[i]);
				}
			skip_ws(p);
			if (p->pos >= p->len || p->s[p->pos] != ':') {
				free(key);
				return perr(p, "expected ':' after a key");
			}
			p->pos++;
		}
		loom_json_t *item = NULL;
		if (value(p, depth + 1, &item) < 0) {
			free(key);
			return -1;
		}
		v->items = loom_realloc(v->items, (v->n + 1) * sizeof *v->items);
		if (object)
			v->keys = loom_realloc(v->keys, (v->n + 1) * sizeof *v->keys), v->keys[v->n] = key;
		v->items[v->n++] = item;
		skip_ws(p);
		if (p->pos < p->len && p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->pos < p->len && p->s[p->pos] == close) {
			p->pos++;
			return 0;
		}
		return perr(p, "expected ',' or '%c'", close);
	}
}

static int literal(parser_t *p, const char *word)
{
	size_t n = strlen(word);
	if (p->pos + n > p->len || memcmp(p->s + p->pos, word, n) != 0)
		return perr(p, "expected a value");
	p->pos += n;
	return 0;
}

static int value(parser_t *p, int depth, loom_json_t **ret)
{
	if (depth > 64)
		return perr(p, "nested more than 64 deep");
	skip_ws(p);
	if (p->pos >= p->len)
		return perr(p, "expected a value, found the end");
	char c = p->s[p->pos];
	loom_json_t *v = NULL;
	int rc = 0;
	switch (c) {
	case '{':
	case '[':
		v = node(c == '{' ? LOOM_JSON_OBJECT : LOOM_JSON_ARRAY);
		rc = members(p, depth, v, c == '{');
		break;
	case '"':
		v = node(LOOM_JSON_STRING);
		rc = string(p, &v->s, &v->len);
		break;
	case 't':
	case 'f':
		v = node(LOOM_JSON_BOOL);
		v->b = c == 't';
		rc = literal(p, c == 't' ? "true" : "false");
		break;
	case 'n':
		v = node(LOOM_JSON_NULL);
		rc = literal(p, "null");
		break;
	default:
		if (c == '-' || (c >= '0' && c <= '9'))
			return number(p, ret);
		return perr(p, "expected a value, found '%c'", c);
	}
	if (rc < 0) {
		loom_json_free(&v);
		return -1;
	}
	*ret = v;
	return 0;
}

int loom_json_parse(const char *text, size_t len, loom_json_t **ret, char **ret_error)
{
	parser_t p = { text, len, 0, NULL };
	loom_json_t *v = NULL;
	if (value(&p, 0, &v) == 0) {
		skip_ws(&p);
		if (p.pos < p.len) {
			perr(&p, "text after the value");
			loom_json_free(&v);
		}
	}
	if (p.error) {
		*ret_error = p.error;
		return -1;
	}
	*ret = v;
	return 0;
}

void loom_json_free(loom_json_t **vp)
{
	loom_json_t *v = *vp;
	if (v == NULL)
		return;
	for (size_t i = 0; i < v->n; i++) {
		loom_json_free(&v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->s);
	free(v);
	*vp = NULL;
}

const loom_json_t *loom_json_get(const loom_json_t *obj, const char *key)
{
	if (obj == NULL || obj->type != LOOM_JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < obj->n; i++)
		if (strcmp(obj->keys[i], key) == 0)
			return obj->items[i];
	return NULL;
}

const char *loom_json_get_str(const loom_json_t *obj, const char *key)
{
	const loom_json_t *v = loom_json_get(obj, key);
	return v && v->type == LOOM_JSON_STRING ? v->s : NULL;
}

const char *loom_json_type_name(loom_json_type_t t)
{
	static const char *const names[] = { "null", "a boolean", "a number", "a string", "an array", "an object" };
	return t <= LOOM_JSON_OBJECT ? names[t] : "?";
}
