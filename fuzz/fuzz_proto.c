/* fuzz_proto.c - what every process does with a frame from the bus before
 * its own handler runs: lib/loom_envelope.c (the broker's peek at the
 * routing fields without decoding, the unpack and validation every process
 * does, the body decoded as the type it names) and lib/loom_pbfmt.c (the
 * text and JSON rendering of logs, loomctl and the bus tap), over every
 * registered message type of proto/ (lib/loom_types.c).
 * The input is tried twice: whole as an envelope frame, and, after its
 * first byte (which picks the type), as the body of every type. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.pb-c.h"
#include "fuzz.h"
#include "loom_buf.h"
#include "loom_envelope.h"
#include "loom_pbfmt.h"
#include "loom_types.h"

/* ---- seeds: FUZZ_PROTO_SEEDS=DIR writes one frame per registered type ---- */

/* Fills every field of m (up to depth 3): strings "x", numbers 1, one
 * element per repeated field, the first value of an enum, one member of a
 * oneof. Allocates from malloc; freed with protobuf_c_message_free_unpacked. */
static void fill(ProtobufCMessage *m, int depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t *which = (uint32_t *)((char *)m + f->quantifier_offset);
			if (*which != 0)
				continue;
			*which = f->id;
		}
		size_t sz;
		switch (f->type) {
		case PROTOBUF_C_TYPE_STRING: sz = sizeof(char *); break;
		case PROTOBUF_C_TYPE_BYTES: sz = sizeof(ProtobufCBinaryData); break;
		case PROTOBUF_C_TYPE_MESSAGE: sz = sizeof(void *); break;
		case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_SINT64:
		case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_DOUBLE: sz = 8; break;
		case PROTOBUF_C_TYPE_BOOL: sz = sizeof(protobuf_c_boolean); break;
		default: sz = 4; break;
		}
		if (f->type == PROTOBUF_C_TYPE_MESSAGE && depth >= 3)
			continue;
		void *slot = (char *)m + f->offset;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			*(size_t *)((char *)m + f->quantifier_offset) = 1;
			void *arr = calloc(1, sz);
			*(void **)slot = arr;
			slot = arr;
		}
		switch (f->type) {
		case PROTOBUF_C_TYPE_STRING:
			*(char **)slot = strdup("x");
			break;
		case PROTOBUF_C_TYPE_BYTES: {
			ProtobufCBinaryData *b = slot;
			b->data = malloc(16);
			memset(b->data, 0xab, 16);
			b->len = 16;
			break;
		}
		case PROTOBUF_C_TYPE_MESSAGE: {
			const ProtobufCMessageDescriptor *sd = f->descriptor;
			ProtobufCMessage *sub = calloc(1, sd->sizeof_message);
			protobuf_c_message_init(sd, sub);
			fill(sub, depth + 1);
			*(ProtobufCMessage **)slot = sub;
			break;
		}
		case PROTOBUF_C_TYPE_ENUM: {
			const ProtobufCEnumDescriptor *ed = f->descriptor;
			*(int *)slot = ed->n_values > 1 ? ed->values[1].value : ed->values[0].value;
			break;
		}
		case PROTOBUF_C_TYPE_BOOL: *(protobuf_c_boolean *)slot = 1; break;
		case PROTOBUF_C_TYPE_FLOAT: *(float *)slot = 1; break;
		case PROTOBUF_C_TYPE_DOUBLE: *(double *)slot = 1; break;
		default:
			if (sz == 8)
				*(uint64_t *)slot = 1;
			else
				*(uint32_t *)slot = 1;
			break;
		}
	}
}

static void write_seed(const char *dir, const char *name, unsigned k, const void *data, size_t len)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s-%u", dir, name, k);
	FILE *f = fopen(path, "wb");
	if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "fuzz_proto: cannot write %s\n", path);
		exit(2);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *dir = getenv("FUZZ_PROTO_SEEDS");
	if (dir == NULL || dir[0] == '\0')
		return 0;
	const ProtobufCMessageDescriptor *const *all = loom_types_all();
	for (unsigned i = 0; all[i]; i++) {
		for (int full = 0; full < 2; full++) {
			ProtobufCMessage *m = calloc(1, all[i]->sizeof_message);
			protobuf_c_message_init(all[i], m);
			if (full)
				fill(m, 0);
			loom_buf_t b = LOOM_BUF_INIT;
			loom_env_hdr_t h = { .from = "engine@1", .to = "agent-hr" };
			loom_envelope_pack(&b, &h, m, NULL);
			write_seed(dir, all[i]->name, full, b.data, b.len);
			/* The same body after the type's index, for the second half of the target. */
			size_t n = protobuf_c_message_get_packed_size(m);
			uint8_t *raw = malloc(n + 1);
			raw[0] = (uint8_t)i;
			protobuf_c_message_pack(m, raw + 1);
			write_seed(dir, all[i]->name, 2 + full, raw, n + 1);
			free(raw);
			loom_buf_release(&b);
			protobuf_c_message_free_unpacked(m, NULL);
		}
	}
	fprintf(stderr, "fuzz_proto: seeds written to %s\n", dir);
	exit(0);
}

static void render(const ProtobufCMessage *m)
{
	loom_buf_t b = LOOM_BUF_INIT;
	loom_pbfmt_text(&b, m);
	loom_buf_reset(&b);
	loom_pbfmt_json(&b, m);
	loom_buf_release(&b);
	/* A decoded message packs again, to the size it announces. */
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *out = malloc(n + 1);
	if (protobuf_c_message_pack(m, out) != n)
		FUZZ_BUG("a decoded message packs to another size than announced");
	free(out);
}

/* Same bytes; a peeked field that is absent is NULL with length 0. */
static bool same(const void *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static void envelope(const uint8_t *data, size_t size)
{
	loom_env_peek_t pk;
	const char *why = NULL;
	int peeked = loom_envelope_peek(data, size, &pk, &why);
	if (peeked < 0 && why == NULL)
		FUZZ_BUG("peek refused a frame without a reason");
	if (peeked == 0) {
		loom_buf_t b = LOOM_BUF_INIT;
		loom_msgid_format(&b, pk.msg_id, pk.msg_id_len);
		loom_msgid_format(&b, pk.correlation, pk.correlation_len);
		(void)loom_addr_service_len(pk.from, pk.from_len);
		(void)loom_addr_service_len(pk.to, pk.to_len);
		(void)loom_service_name_valid(pk.to, pk.to_len);
		loom_buf_release(&b);
	}
	why = NULL;
	Loom__Envelope *env = loom_envelope_unpack(data, size, &why);
	if (env == NULL) {
		if (why == NULL)
			FUZZ_BUG("unpack refused a frame without a reason");
		return;
	}
	/* What the broker routes on is what the process decodes. */
	if (peeked < 0)
		FUZZ_BUG("a frame unpack takes is one peek refuses");
	if (!same(pk.type, pk.type_len, env->type, strlen(env->type)) ||
	    !same(pk.from, pk.from_len, env->from, strlen(env->from)) ||
	    !same(pk.to, pk.to_len, env->to, strlen(env->to)) ||
	    !same(pk.msg_id, pk.msg_id_len, env->msg_id.data, env->msg_id.len))
		FUZZ_BUG("peek and unpack disagree on the routing fields");
	render(&env->base);
	const ProtobufCMessageDescriptor *d = loom_types_find(env->type);
	if (d) {
		if (!loom_envelope_is(env, d))
			FUZZ_BUG("envelope is not of the type it names");
		ProtobufCMessage *m = loom_envelope_body(env, d, &why);
		if (m) {
			render(m);
			protobuf_c_message_free_unpacked(m, NULL);
		}
	}
	loom_buf_t b = LOOM_BUF_INIT;
	(void)loom_pbfmt_body(&b, env->type, env->body.data, env->body.len, false, &why);
	(void)loom_pbfmt_body(&b, env->type, env->body.data, env->body.len, true, &why);
	loom_buf_release(&b);
	loom_envelope_free(&env);
	if (env != NULL)
		FUZZ_BUG("loom_envelope_free left the pointer");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	envelope(data, size);
	if (size < 1)
		return 0;
	const ProtobufCMessageDescriptor *const *all = loom_types_all();
	size_t n = 0;
	while (all[n])
		n++;
	const ProtobufCMessageDescriptor *d = all[data[0] % n];
	ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, size - 1, data + 1);
	if (m) {
		render(m);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	loom_buf_t b = LOOM_BUF_INIT;
	const char *why;
	if (loom_pbfmt_body(&b, d->name, data + 1, size - 1, data[0] & 0x80, &why) < 0 && m != NULL)
		FUZZ_BUG("pbfmt refused a body that decodes");
	loom_buf_release(&b);
	return 0;
}
