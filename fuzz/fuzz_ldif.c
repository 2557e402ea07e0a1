/* fuzz_ldif.c - lib/loom_ldif.c: the reader (content and change records,
 * folding, base64, controls; file URLs refused) and the writer on every
 * record read: a record written reads back with the same kind, DN and
 * values. The first byte picks the reader options; the rest is the file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "loom_buf.h"
#include "loom_ldif.h"

static size_t values_total(const loom_ldif_record_t *r)
{
	size_t n = 0;
	for (size_t i = 0; i < r->nattrs; i++)
		n += r->attrs[i].n;
	for (size_t i = 0; i < r->nmods; i++)
		n += r->mods[i].attr.n + 1;
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	loom_ldif_opts_t o = { 0 };
	o.validate_utf8_dn = data[0] & 1;
	if (data[0] & 2)
		o.max_record = 200;
	loom_ldif_writer_opts_t wo = { .version = data[0] & 4, .fold = (data[0] & 8) ? 2 + (data[0] >> 4) : 0 };
	loom_ldif_reader_t *r = loom_ldif_reader_new_mem(data + 1, size - 1, &o);
	loom_ldif_record_t rec;
	loom_ldif_error_t err;
	int got;
	unsigned n = 0;
	while ((got = loom_ldif_read(r, &rec, &err)) != 0 && n++ < 10000) {
		if (got < 0) {
			if (err.message[0] == '\0' || strnlen(err.message, sizeof err.message) == sizeof err.message)
				FUZZ_BUG("ldif error without a message");
			if (err.fatal)
				break;
			continue;
		}
		if (rec.dn == NULL || rec.dn[rec.dn_len] != '\0')
			FUZZ_BUG("ldif dn not NUL-terminated at its length");
		loom_buf_t out = LOOM_BUF_INIT;
		loom_ldif_writer_t *w = loom_ldif_writer_new(&out, &wo);
		const char *werr = NULL;
		if (loom_ldif_write(w, &rec, &werr) == 0) {
			loom_ldif_reader_t *r2 = loom_ldif_reader_new_mem(out.data, out.len, NULL);
			loom_ldif_record_t rec2;
			loom_ldif_error_t err2;
			int got2 = loom_ldif_read(r2, &rec2, &err2);
			if (got2 != 1) {
				fprintf(stderr, "wrote:\n%.*s\nread back: %s\n", (int)out.len, out.data, got2 < 0 ? err2.message : "end");
				FUZZ_BUG("ldif: a written record does not read back");
			}
			if (rec2.kind != rec.kind || rec2.dn_len != rec.dn_len || memcmp(rec2.dn, rec.dn, rec.dn_len) != 0)
				FUZZ_BUG("ldif: a written record reads back with another kind or dn");
			if (rec2.nattrs != rec.nattrs || rec2.nmods != rec.nmods || values_total(&rec2) != values_total(&rec))
				FUZZ_BUG("ldif: a written record reads back with other attributes");
			for (size_t i = 0; i < rec.nattrs; i++)
				for (size_t k = 0; k < rec.attrs[i].n; k++)
					if (rec2.attrs[i].v[k].len != rec.attrs[i].v[k].len ||
					    memcmp(rec2.attrs[i].v[k].data, rec.attrs[i].v[k].data, rec.attrs[i].v[k].len) != 0)
						FUZZ_BUG("ldif: a written value reads back different");
			loom_ldif_reader_destroy(&r2);
		}
		loom_ldif_writer_destroy(&w);
		loom_buf_release(&out);
	}
	loom_ldif_reader_destroy(&r);
	return 0;
}
