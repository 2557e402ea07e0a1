/* loom_text.c - small text helpers. */
#include "loom_text.h"
#include "loom_alloc.h"

#include <ctype.h>
#include <stdlib.h>

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
