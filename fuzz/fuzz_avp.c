/* fuzz_avp.c - lib/loom_avp.c: attribute-value-pair files ("name: value"
 * lines, objects ended by a blank line, base64 with the separator doubled)
 * and the writer: an object written reads back pair for pair. The first
 * byte picks the separator and the longest line; the rest is the file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "loom_avp.h"
#include "loom_buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static const char seps[] = { ':', '=', ';', '|' }; /* what loom_avp_reader_new_mem accepts */
	char sep = seps[data[0] & 3];
	size_t max_line = (data[0] & 4) ? 80 : 0;
	loom_avp_reader_t *r = loom_avp_reader_new_mem((const char *)data + 1, size - 1, sep, max_line);
	loom_avp_record_t rec;
	loom_avp_error_t err;
	int got;
	unsigned n = 0;
	while ((got = loom_avp_read(r, &rec, &err)) != 0 && n++ < 10000) {
		if (got < 0) {
			if (err.message[0] == '\0' || strnlen(err.message, sizeof err.message) == sizeof err.message)
				FUZZ_BUG("avp error without a message");
			if (err.fatal)
				break;
			continue;
		}
		if (rec.n < 1)
			FUZZ_BUG("avp object without a pair");
		loom_buf_t out = LOOM_BUF_INIT;
		for (size_t i = 0; i < rec.n; i++)
			loom_avp_write_pair(&out, sep, rec.pairs[i].name, rec.pairs[i].value, rec.pairs[i].len);
		loom_avp_write_end(&out);
		loom_avp_reader_t *r2 = loom_avp_reader_new_mem(out.data, out.len, sep, 0);
		loom_avp_record_t rec2;
		loom_avp_error_t err2;
		int got2 = loom_avp_read(r2, &rec2, &err2);
		if (got2 != 1) {
			fprintf(stderr, "wrote:\n%.*s\nread back: %s\n", (int)out.len, out.data, got2 < 0 ? err2.message : "end");
			FUZZ_BUG("avp: a written object does not read back");
		}
		if (rec2.n != rec.n)
			FUZZ_BUG("avp: a written object reads back with another pair count");
		for (size_t i = 0; i < rec.n; i++)
			if (strcmp(rec2.pairs[i].name, rec.pairs[i].name) != 0 || rec2.pairs[i].len != rec.pairs[i].len ||
			    memcmp(rec2.pairs[i].value, rec.pairs[i].value, rec.pairs[i].len) != 0)
				FUZZ_BUG("avp: a written pair reads back different");
		loom_avp_reader_destroy(&r2);
		loom_buf_release(&out);
	}
	loom_avp_reader_destroy(&r);
	return 0;
}
