/* fuzz_fixed.c - lib/loom_fixed.c: a column layout (positions, widths,
 * types, datetime formats) checked by loom_fixed_layout, lines split into
 * cells and typed; every value is written back into its column and must
 * split and type to the same value. The first byte gives the number of
 * columns, 3 bytes per column give start, width and type; the rest is the
 * file, one record per line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "loom_buf.h"
#include "loom_fixed.h"
#include "sync.pb-c.h"

#define MAXCOLS 8

static const char *const formats[] = { NULL, "%Y-%m-%d", "%d.%m.%Y %H:%M", "%Y%m%d%H%M%S" };

static bool same_value(const Loom__Value *a, const Loom__Value *b)
{
	size_t na = loom__value__get_packed_size(a), nb = loom__value__get_packed_size(b);
	if (na != nb)
		return false;
	uint8_t *pa = malloc(na + 1), *pb = malloc(nb + 1);
	loom__value__pack(a, pa);
	loom__value__pack(b, pb);
	bool same = memcmp(pa, pb, na) == 0;
	free(pa);
	free(pb);
	return same;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t n = 1 + data[0] % MAXCOLS;
	if (size < 1 + 3 * n)
		return 0;
	loom_fixed_col_t cols[MAXCOLS];
	static const char *const names[MAXCOLS] = { "a", "b", "c", "d", "e", "f", "g", "h" };
	const uint8_t *p = data + 1;
	for (size_t i = 0; i < n; i++, p += 3) {
		memset(&cols[i], 0, sizeof cols[i]);
		cols[i].name = names[i];
		cols[i].start = (p[0] & 0x80) ? p[0] & 0x3f : 0;
		cols[i].width = p[1] % 40;
		cols[i].type = (loom_fixed_type_t)(p[2] & 3);
		cols[i].align = (loom_fixed_align_t)((p[2] >> 2) % 3);
		if (cols[i].type == LOOM_FIXED_DATETIME)
			cols[i].format = formats[(p[2] >> 4) & 3];
	}
	char *lerr = NULL;
	if (loom_fixed_layout(cols, n, &lerr) < 0) {
		if (lerr == NULL || lerr[0] == '\0')
			FUZZ_BUG("fixed layout refused without a message");
		free(lerr);
		return 0;
	}
	(void)loom_fixed_length(cols, n);
	const char *text = (const char *)p;
	size_t left = size - (size_t)(p - data);
	loom_fixed_cell_t cells[MAXCOLS], cells2[MAXCOLS];
	while (left > 0) {
		const char *nl = memchr(text, '\n', left);
		size_t len = nl ? (size_t)(nl - text) : left;
		(void)loom_fixed_chars(text, len);
		unsigned col = 0;
		const char *why = NULL;
		if (loom_fixed_split(cols, n, text, len, cells, &col, &why) == 0) {
			for (size_t i = 0; i < n; i++) {
				if (cells[i].len == 0)
					continue;
				char whybuf[200];
				Loom__Value *v = loom_fixed_value(&cols[i], cells[i].text, cells[i].len, whybuf, sizeof whybuf);
				if (v == NULL)
					continue;
				/* Written into its column, the value splits and types the same. */
				loom_buf_t t = LOOM_BUF_INIT, cell = LOOM_BUF_INIT;
				loom_fixed_value_text(&t, &cols[i], v);
				if (loom_fixed_put(&cell, &cols[i], t.data ? t.data : "", t.len) == 0) {
					loom_fixed_col_t one = cols[i];
					one.start = 1;
					unsigned c2 = 0;
					const char *why2 = NULL;
					if (loom_fixed_split(&one, 1, cell.data ? cell.data : "", cell.len, cells2, &c2, &why2) < 0)
						FUZZ_BUG("fixed: a written cell does not split");
					if (cells2[0].len == 0)
						FUZZ_BUG("fixed: a written value reads back blank");
					Loom__Value *v2 = loom_fixed_value(&one, cells2[0].text, cells2[0].len, whybuf, sizeof whybuf);
					if (v2 == NULL) {
						fprintf(stderr, "cell '%.*s': %s\n", (int)cell.len, cell.data, whybuf);
						FUZZ_BUG("fixed: a written value does not type again");
					}
					if (cols[i].format == NULL && !same_value(v, v2)) {
						fprintf(stderr, "cell '%.*s' from '%.*s'\n", (int)cell.len, cell.data, (int)cells[i].len,
						    cells[i].text);
						FUZZ_BUG("fixed: a written value reads back different");
					}
					loom__value__free_unpacked(v2, NULL);
				}
				loom_buf_release(&t);
				loom_buf_release(&cell);
				loom__value__free_unpacked(v, NULL);
			}
		} else if (why == NULL && col != loom_fixed_length(cols, n) + 1) {
			/* NULL is for a line longer than the layout, which the caller words. */
			FUZZ_BUG("fixed split failed without a message");
		}
		if (nl == NULL)
			break;
		left -= len + 1;
		text = nl + 1;
	}
	return 0;
}
