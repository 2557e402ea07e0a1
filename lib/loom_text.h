/* loom_text.h - small text helpers shared by the configuration loader and the
 * expression compiler. */
#ifndef LOOM_TEXT_H
#define LOOM_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Edit distance between a and b (ASCII case-insensitive), counting an
 * insertion, deletion, substitution or swap of two neighbours as one: the
 * measure behind "did you mean '...'?" suggestions. */
size_t loom_edit_distance(const char *a, size_t la, const char *b, size_t lb);

/* "Did you mean ...?": offer every known name; best() is the one close to
 * the unknown name s (within 1 edit for names up to 3 characters, 2 up to 6,
 * else 3, and fewer edits than the shorter name's length), or NULL when
 * none is or two are equally close. A name longer than LOOM_SUGGEST_MAX_LEN
 * gets no suggestion (the distance is quadratic in the lengths).
 *
 *   loom_suggest_t sg;
 *   loom_suggest_init(&sg, s, n);
 *   for (...) loom_suggest_offer(&sg, name);
 *   hint = loom_suggest_best(&sg);
 */
#define LOOM_SUGGEST_MAX_LEN 64
typedef struct loom_suggest {
	const char *s;       /* the unknown name */
	size_t n;
	const char *best;    /* closest offer so far */
	size_t best_d;       /* its distance */
	int tie;             /* another offer is as close */
} loom_suggest_t;

void loom_suggest_init(loom_suggest_t *sg, const char *s, size_t n);
void loom_suggest_offer(loom_suggest_t *sg, const char *name);
const char *loom_suggest_best(const loom_suggest_t *sg);

/* Whether s[0..n) is text: well-formed UTF-8 sequences (by their lead and
 * continuation bytes) and no NUL byte. */
bool loom_utf8_text(const void *s, size_t n);

#endif
