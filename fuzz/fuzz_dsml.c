/* fuzz_dsml.c - lib/loom_dsml.c: DSML v2 documents (searchResponse and
 * batchRequest, libxml2's reader underneath) and the writer on every
 * record read. The whole input is the document. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "loom_buf.h"
#include "loom_dsml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	loom_dsml_reader_t *r = loom_dsml_reader_new_mem(data, size, "fuzz.dsml");
	loom_dsml_record_t rec;
	loom_dsml_error_t err;
	int got;
	unsigned n = 0;
	loom_buf_t out = LOOM_BUF_INIT;
	loom_dsml_writer_t *w = NULL;
	while ((got = loom_dsml_read(r, &rec, &err)) != 0 && n++ < 10000) {
		if (got < 0) {
			if (err.message[0] == '\0' || strnlen(err.message, sizeof err.message) == sizeof err.message)
				FUZZ_BUG("dsml error without a message");
			if (err.fatal)
				break;
			continue;
		}
		if (rec.element == NULL)
			FUZZ_BUG("dsml record without its element");
		if (rec.dn)
			(void)loom_dsml_dn_valid(rec.dn);
		for (size_t i = 0; i < rec.nattrs; i++)
			for (size_t k = 0; k < rec.attrs[i].n; k++)
				if (rec.attrs[i].v[k].data[rec.attrs[i].v[k].len] != '\0')
					FUZZ_BUG("dsml value not NUL-terminated at its length");
		if (w == NULL)
			w = loom_dsml_writer_new(&out, loom_dsml_is_request(r) ? LOOM_DSML_DOC_CHANGES : LOOM_DSML_DOC_SEARCH);
		const char *werr = NULL;
		(void)loom_dsml_write(w, &rec, &werr);
	}
	if (w) {
		loom_dsml_writer_finish(w);
		loom_dsml_writer_destroy(&w);
		/* What the writer made is a document the reader takes whole. */
		loom_dsml_reader_t *r2 = loom_dsml_reader_new_mem(out.data, out.len, "again.dsml");
		while ((got = loom_dsml_read(r2, &rec, &err)) != 0) {
			if (got < 0) {
				fprintf(stderr, "wrote:\n%.*s\nread back: %s\n", (int)out.len, out.data, err.message);
				FUZZ_BUG("dsml: the writer's document does not read back");
			}
		}
		loom_dsml_reader_destroy(&r2);
	}
	loom_buf_release(&out);
	loom_dsml_reader_destroy(&r);
	return 0;
}
