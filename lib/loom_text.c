/* loom_text.c - small text helpers. */
#include "loom_text.h"
#include "loom_alloc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

size_t loom_edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
	size_t *prev2 = loom_calloc(lb + 1, sizeof *prev2);
	size_t *prev = loom_calloc(lb + 1, sizeof *prev);
	size_t *cur = loom_calloc(lb + 1, sizeof *cur);
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
			size_t cost = ca != cb;
			size_t best = prev[j - 1] + cost;
			if (prev[j] + 1 < best)
				best = prev[j] + 1;
			if (cur[j - 1] + 1 < best)
				best = cur[j - 1] + 1;
			if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2])
			    && tolower((unsigned char)a[i - 2]) == cb && prev2[j - 2] + 1 < best)
				best = prev2[j - 2] + 1;
			cur[j] = best;
		}
		size_t *tmp = prev2;
		prev2 = prev;
		prev = cur;
		cur = tmp;
	}
	size_t r = prev[lb];
	free(prev2);
	free(prev);
	free(cur);
	return r;
}

void loom_suggest_init(loom_suggest_t *sg, const char *s, size_t n)
{
	sg->s = s;
	sg->n = n;
	sg->best = NULL;
	sg->best_d = (size_t)-1;
	sg->tie = 0;
}

void loom_suggest_offer(loom_suggest_t *sg, const char *name)
{
	if (sg->n == 0 || sg->n > LOOM_SUGGEST_MAX_LEN)
		return;
	size_t kl = strlen(name);
	size_t d = loom_edit_distance(sg->s, sg->n, name, kl);
	size_t shorter = kl < sg->n ? kl : sg->n;
	size_t limit = shorter <= 3 ? 1 : shorter <= 6 ? 2 : 3;
	if (d > limit || d >= shorter)
		return;
	if (d < sg->best_d) {
		sg->best = name;
		sg->best_d = d;
		sg->tie = 0;
	} else if (d == sg->best_d) {
		sg->tie = 1;
	}
}

const char *loom_suggest_best(const loom_suggest_t *sg)
{
	return sg->tie ? NULL : sg->best;
}

bool loom_utf8_text(const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t extra = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 9;
		if (c == 0 || extra == 9 || (extra && i + extra >= n))
			return false;
		for (size_t k = 1; k <= extra; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
		i += extra + 1;
	}
	return true;
}
