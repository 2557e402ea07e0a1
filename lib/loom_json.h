/* loom_json.h - a strict JSON (RFC 8259) parser into a small tree, for
 * line protocols (loom-ma-ext's JSON lines).
 *
 * Strict: one value and nothing after it but whitespace; no comments, no
 * trailing commas, no NaN; strings must be valid UTF-8 and their \u escapes
 * valid (surrogates paired; \u0000 is refused so that strings stay C
 * strings); duplicate keys in an object are an error; nesting is limited to
 * 64 levels. Errors name the 1-based byte column.
 *
 * Numbers: an integer literal (no fraction, no exponent) that fits an
 * int64 is is_int with i set; every number has d.
 */
#ifndef LOOM_JSON_H
#define LOOM_JSON_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
	LOOM_JSON_NULL,
	LOOM_JSON_BOOL,
	LOOM_JSON_NUMBER,
	LOOM_JSON_STRING,
	LOOM_JSON_ARRAY,
	LOOM_JSON_OBJECT,
} loom_json_type_t;

typedef struct loom_json loom_json_t;

struct loom_json {
	loom_json_type_t type;         /* what it is */
	bool b;                        /* BOOL */
	double d;                      /* NUMBER */
	bool is_int;                   /* NUMBER: an integer literal within int64 */
	long long i;                   /* NUMBER when is_int */
	char *s;                       /* STRING (NUL-terminated, no NUL inside) */
	size_t len;                    /* STRING: bytes */
	size_t n;                      /* ARRAY, OBJECT: members */
	loom_json_t **items;           /* ARRAY, OBJECT: the values */
	char **keys;                   /* OBJECT: the keys */
};

/* Parses len bytes of text. Returns 0 with *ret (free with loom_json_free),
 * or -1 with *ret_error (malloc'd, "column N: what was wrong"). */
int loom_json_parse(const char *text, size_t len, loom_json_t **ret, char **ret_error);
void loom_json_free(loom_json_t **v);

/* The member key of an object, or NULL (also when obj is not an object). */
const loom_json_t *loom_json_get(const loom_json_t *obj, const char *key);
/* The member key when it is a string, else NULL. */
const char *loom_json_get_str(const loom_json_t *obj, const char *key);
/* Names the type, for messages ("a string", "an object"...). */
const char *loom_json_type_name(loom_json_type_t t);

#endif
