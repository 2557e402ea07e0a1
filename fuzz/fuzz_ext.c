/* fuzz_ext.c - the extensible agent's stream (agents/ma_ext_json.c and the
 * line handling of agents/ma_ext.c): what a connected program writes on
 * its stdout, one JSON message per line. Each line is parsed the way
 * loom-ma-ext does (lib/loom_json.c, an object with a string "type");
 * "object" messages become import objects (full or delta import). Then the
 * other direction: every value written as the protocol writes values
 * (ext_json_value) must read back as the same value, and the object sent
 * back as an export change (ext_json_change) must be one JSON line.
 * The first byte picks delta or full import and the anchor; the rest is
 * the program's output. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "loom_buf.h"
#include "loom_json.h"
#include "ma_ext.h"

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

static void value_round_trip(const Loom__Value *v)
{
	loom_buf_t b = LOOM_BUF_INIT;
	ext_json_value(&b, v);
	loom_json_t *j = NULL;
	char *err = NULL;
	if (loom_json_parse(b.data, b.len, &j, &err) < 0) {
		fprintf(stderr, "value written as '%.*s': %s\n", (int)b.len, b.data, err);
		FUZZ_BUG("ext: a value written is not JSON");
	}
	char why[200];
	Loom__Value *v2 = ext_value_from_json(j, why, sizeof why);
	if (v2 == NULL) {
		fprintf(stderr, "value written as '%.*s': %s\n", (int)b.len, b.data, why);
		FUZZ_BUG("ext: a value written does not read back");
	}
	if (!same_value(v, v2)) {
		fprintf(stderr, "value written as '%.*s'\n", (int)b.len, b.data);
		FUZZ_BUG("ext: a value written reads back different");
	}
	loom__value__free_unpacked(v2, NULL);
	loom_json_free(&j);
	loom_buf_release(&b);
}

static void change_of(const Loom__ImportObject *o)
{
	Loom__ExportChange c = LOOM__EXPORT_CHANGE__INIT;
	c.change_id = 7;
	c.op = o->change == LOOM__IMPORT_OBJECT__CHANGE__DELETE ? LOOM__EXPORT_CHANGE__OP__DELETE
	       : o->change == LOOM__IMPORT_OBJECT__CHANGE__UPDATE ? LOOM__EXPORT_CHANGE__OP__UPDATE
								   : LOOM__EXPORT_CHANGE__OP__ADD;
	c.anchor = o->anchor;
	c.dn = o->dn;
	c.new_dn = o->new_dn;
	c.object_type = o->object_type;
	c.n_deltas = o->n_deltas;
	c.deltas = o->deltas;
	loom_buf_t b = LOOM_BUF_INIT;
	ext_json_change(&b, &c);
	if (b.len == 0 || b.data[b.len - 1] != '\n' || memchr(b.data, '\n', b.len - 1) != NULL)
		FUZZ_BUG("ext: an export change is not one line");
	loom_json_t *j = NULL;
	char *err = NULL;
	if (loom_json_parse(b.data, b.len - 1, &j, &err) < 0) {
		fprintf(stderr, "change written as '%.*s': %s\n", (int)b.len, b.data, err);
		FUZZ_BUG("ext: an export change is not JSON");
	}
	loom_json_free(&j);
	loom_buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	loom_agentcfg_t cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.anchor = (data[0] & 2) ? "dn" : "uid";
	cfg.object_type = (data[0] & 4) ? "account" : NULL;
	bool delta = data[0] & 1;
	const char *text = (const char *)data + 1;
	size_t left = size - 1;
	while (left > 0) {
		const char *nl = memchr(text, '\n', left);
		size_t len = nl ? (size_t)(nl - text) : left;
		loom_json_t *j = NULL;
		char *err = NULL;
		if (len > 0 && loom_json_parse(text, len, &j, &err) == 0) {
			const char *type = loom_json_get_str(j, "type");
			if (j->type == LOOM_JSON_OBJECT && type && strcmp(type, "object") == 0) {
				char why[400];
				Loom__ImportObject *o = ext_object_from_json(&cfg, delta, j, why, sizeof why);
				if (o) {
					for (size_t i = 0; i < o->n_attrs; i++)
						for (size_t k = 0; k < o->attrs[i]->n_values; k++)
							value_round_trip(o->attrs[i]->values[k]);
					for (size_t i = 0; i < o->n_deltas; i++)
						for (size_t k = 0; k < o->deltas[i]->n_values; k++)
							value_round_trip(o->deltas[i]->values[k]);
					change_of(o);
					size_t n = loom__import_object__get_packed_size(o);
					uint8_t *p = malloc(n + 1);
					loom__import_object__pack(o, p);
					free(p);
					loom__import_object__free_unpacked(o, NULL);
				} else if (why[0] == '\0') {
					FUZZ_BUG("ext: an object refused without a reason");
				}
			} else if (j->type != LOOM_JSON_OBJECT) {
				/* loom-ma-ext refuses the line: not a message. */
			}
			loom_json_free(&j);
		} else {
			free(err);
		}
		if (nl == NULL)
			break;
		left -= len + 1;
		text = nl + 1;
	}
	return 0;
}
