/* fuzz_csv.c - lib/loom_csv.c: the reader under every option the file
 * agent uses, and the writer on what was read: a record written and read
 * again must come back field for field. The first byte picks the options;
 * the rest is the file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "loom_buf.h"
#include "loom_csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t sel = data[0];
	static const char delims[] = { ',', ';', '\t', '|' };
	loom_csv_opts_t o;
	loom_csv_opts_default(&o);
	o.delimiter = delims[sel & 3];
	o.header = !(sel & 4);
	o.validate_utf8 = !(sel & 8);
	o.trim_bom = !(sel & 16);
	if (sel & 32)
		o.max_record = 64;
	o.crlf = !(sel & 64);
	static const char *const expect[] = { "id", "name", "mail" };
	if ((sel & 128) && o.header) {
		o.expect_columns = expect;
		o.n_expect_columns = 3;
	}
	char *oerr = NULL;
	if (loom_csv_opts_check(&o, &oerr) < 0)
		FUZZ_BUG("options refused");

	loom_csv_reader_t *r = NULL;
	if (loom_csv_reader_open_mem((const char *)data + 1, size - 1, "fuzz.csv", &o, &r) < 0)
		return 0;
	const char *const *names;
	size_t ncols = loom_csv_columns(r, &names);
	(void)ncols;
	loom_csv_record_t rec;
	loom_csv_error_t err;
	int got;
	unsigned records = 0;
	while ((got = loom_csv_read(r, &rec, &err)) != 0) {
		if (got < 0) {
			if (err.message[0] == '\0' || strlen(err.message) >= sizeof err.message)
				FUZZ_BUG("csv error without a message");
			if (err.fatal)
				break;
			continue;
		}
		if (rec.n < 1)
			FUZZ_BUG("csv record without a field");
		for (size_t i = 0; i < rec.n; i++)
			if (strlen(rec.v[i]) > rec.len[i] || rec.v[i][rec.len[i]] != '\0')
				FUZZ_BUG("csv field not NUL-terminated at its length");
		/* Round trip: what the writer makes of the record reads back the same. */
		loom_buf_t out = LOOM_BUF_INIT;
		loom_csv_opts_t wo = o;
		wo.header = false;
		wo.expect_columns = NULL;
		wo.n_expect_columns = 0;
		wo.max_record = 1 << 20;
		loom_csv_writer_t *w = loom_csv_writer_new_buf(&out, &wo);
		char *werr = NULL;
		if (loom_csv_write(w, rec.n, rec.v, rec.len, &werr) == 0) {
			loom_csv_reader_t *r2 = NULL;
			loom_csv_record_t rec2;
			loom_csv_error_t err2;
			wo.validate_utf8 = false;
			wo.trim_bom = false;
			if (loom_csv_reader_open_mem(out.data, out.len, "again.csv", &wo, &r2) == 0) {
				if (loom_csv_read(r2, &rec2, &err2) != 1)
					FUZZ_BUG("csv: a written record does not read back");
				if (rec2.n != rec.n)
					FUZZ_BUG("csv: a written record reads back with another field count");
				for (size_t i = 0; i < rec.n; i++)
					if (rec2.len[i] != rec.len[i] || memcmp(rec2.v[i], rec.v[i], rec.len[i]) != 0)
						FUZZ_BUG("csv: a written field reads back different");
				loom_csv_reader_destroy(&r2);
			}
		}
		free(werr);
		loom_csv_writer_destroy(&w);
		loom_buf_release(&out);
		if (++records > 10000)
			break;
	}
	loom_csv_reader_destroy(&r);
	return 0;
}
