/* loom_pbfmt.c - render decoded protobuf-c messages by walking their descriptors.
 *
 * Which fields are printed follows protobuf-c 1.4's packer
 * (protobuf_c_message_get_packed_size), so the output shows what is on the
 * wire:
 *   - a oneof member (PROTOBUF_C_FIELD_FLAG_ONEOF) when the uint32 case at
 *     quantifier_offset equals its id; a string or message member also needs
 *     a pointer that is neither NULL nor the field's default_value;
 *   - LABEL_REQUIRED always (a NULL message or string is skipped);
 *   - LABEL_OPTIONAL: a string or message when its pointer is neither NULL
 *     nor default_value, any other type when the has_ flag at
 *     quantifier_offset is set;
 *   - LABEL_NONE (proto3 implicit presence) when not zero/empty/NULL;
 *   - LABEL_REPEATED when the size_t count at quantifier_offset is not 0.
 */
#include "loom_pbfmt.h"

#include <inttypes.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loom_types.h"

/* Bytes of a bytes field shown in text before it is cut short. */
#define PBFMT_TEXT_BYTES_MAX 32

static void add_message(struct loom_buf *out, const ProtobufCMessage *msg, bool json, bool braces);

static void add_sealed(struct loom_buf *out, bool json)
{
	loom_buf_adds(out, json ? "\"<sealed>\"" : "<sealed>");
}

/* Size of one element in a repeated field's array (protobuf-c keeps its own
 * table private). */
static size_t elem_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_ENUM:
		return sizeof(uint32_t);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return sizeof(uint64_t);
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	}
	abort(); /* a type protobuf-c 1.4 does not have: broken descriptor */
}

/* True when a proto3 implicit-presence member holds its type's default. */
static bool is_zeroish(ProtobufCType type, const void *member)
{
	switch (type) {
	case PROTOBUF_C_TYPE_BOOL:
		return *(const protobuf_c_boolean *)member == 0;
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_ENUM:
		return *(const uint32_t *)member == 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return *(const uint64_t *)member == 0;
	case PROTOBUF_C_TYPE_FLOAT:
		return *(const float *)member == 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		return *(const double *)member == 0;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(const char *const *)member;
		return s == NULL || s[0] == '\0';
	}
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)member)->len == 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(const void *const *)member == NULL;
	}
	return true;
}

/* True when a string or message pointer member counts as set. */
static bool pointer_set(const ProtobufCFieldDescriptor *f, const void *member)
{
	const void *p = *(const void *const *)member;
	return p != NULL && p != f->default_value;
}

/* Whether field f of msg is to be printed; for a repeated field also its
 * element count in *count_r. */
static bool field_present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f, size_t *count_r)
{
	const char *base = (const char *)msg;
	const void *member = base + f->offset;
	const void *quantifier = base + f->quantifier_offset;
	bool is_pointer = f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE;

	*count_r = 1;
	if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
	    (f->label == PROTOBUF_C_LABEL_OPTIONAL || f->label == PROTOBUF_C_LABEL_NONE)) {
		if (*(const uint32_t *)quantifier != f->id)
			return false;
		return !is_pointer || pointer_set(f, member);
	}
	switch (f->label) {
	case PROTOBUF_C_LABEL_REQUIRED:
		return !is_pointer || *(const void *const *)member != NULL;
	case PROTOBUF_C_LABEL_OPTIONAL:
		if (is_pointer)
			return pointer_set(f, member);
		return *(const protobuf_c_boolean *)quantifier != 0;
	case PROTOBUF_C_LABEL_NONE:
		return !is_zeroish(f->type, member);
	case PROTOBUF_C_LABEL_REPEATED:
		*count_r = *(const size_t *)quantifier;
		return *count_r > 0 && *(const void *const *)member != NULL;
	}
	return false;
}

/* Shortest %g form that reads back as the same float or double. */
static void add_floating(struct loom_buf *out, double v, bool is_float, bool json)
{
	char tmp[40];

	if (isnan(v)) {
		loom_buf_adds(out, json ? "\"NaN\"" : "nan");
		return;
	}
	if (isinf(v)) {
		if (v > 0)
			loom_buf_adds(out, json ? "\"Infinity\"" : "inf");
		else
			loom_buf_adds(out, json ? "\"-Infinity\"" : "-inf");
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (is_float ? strtof(tmp, NULL) == (float)v : strtod(tmp, NULL) == v)
			break;
	}
	loom_buf_adds(out, tmp);
}

/* A text string: loom_buf_add_logval, except that a string it would leave
 * bare is quoted when it holds a character of the text structure. Such a
 * string has nothing logval would escape, so plain quotes are enough. */
static void add_text_str(struct loom_buf *out, const char *s)
{
	size_t n = strlen(s);
	bool structural = strpbrk(s, "{}[],") != NULL;

	if (structural) {
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) {
				structural = false; /* logval quotes it anyway */
				break;
			}
		}
	}
	if (!structural) {
		loom_buf_add_logval(out, s, n);
		return;
	}
	loom_buf_addc(out, '"');
	loom_buf_add(out, s, n);
	loom_buf_addc(out, '"');
}

static void add_base64(struct loom_buf *out, const uint8_t *p, size_t n)
{
	size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);

	loom_buf_addc(out, '"');
	loom_buf_reserve(out, cap);
	sodium_bin2base64(out->data + out->len, cap, p, n, sodium_base64_VARIANT_ORIGINAL);
	out->len += strlen(out->data + out->len);
	loom_buf_addc(out, '"');
}

static void add_bytes(struct loom_buf *out, const ProtobufCBinaryData *b, bool json)
{
	if (json) {
		add_base64(out, b->data, b->len);
	} else if (b->len == 0) {
		loom_buf_adds(out, "\"\"");
	} else if (b->len <= PBFMT_TEXT_BYTES_MAX) {
		loom_buf_add_hex(out, b->data, b->len);
	} else {
		loom_buf_add_hex(out, b->data, PBFMT_TEXT_BYTES_MAX);
		loom_buf_printf(out, "...(%zu bytes)", b->len);
	}
}

static void add_enum(struct loom_buf *out, const ProtobufCFieldDescriptor *f, int value, bool json)
{
	const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, value);

	if (ev == NULL)
		loom_buf_printf(out, "%d", value);
	else if (json)
		loom_buf_add_json_str(out, ev->name, strlen(ev->name));
	else
		loom_buf_adds(out, ev->name);
}

/* One value of field f stored at member (a single field or one element). */
static void add_value(struct loom_buf *out, const ProtobufCFieldDescriptor *f, const void *member, bool json)
{
	const char *q = json ? "\"" : ""; /* quote for 64-bit integers */

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		loom_buf_printf(out, "%" PRId32, *(const int32_t *)member);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		loom_buf_printf(out, "%" PRIu32, *(const uint32_t *)member);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		loom_buf_printf(out, "%s%" PRId64 "%s", q, *(const int64_t *)member, q);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		loom_buf_printf(out, "%s%" PRIu64 "%s", q, *(const uint64_t *)member, q);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		add_floating(out, *(const float *)member, true, json);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		add_floating(out, *(const double *)member, false, json);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		loom_buf_adds(out, *(const protobuf_c_boolean *)member ? "true" : "false");
		break;
	case PROTOBUF_C_TYPE_ENUM:
		add_enum(out, f, *(const int *)member, json);
		break;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(const char *const *)member;
		if (s == NULL)
			s = "";
		if (json)
			loom_buf_add_json_str(out, s, strlen(s));
		else
			add_text_str(out, s);
		break;
	}
	case PROTOBUF_C_TYPE_BYTES:
		add_bytes(out, member, json);
		break;
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)member;
		/* Decided by the field's type, before the value is even read. */
		if (loom_types_is_sealed(f->descriptor))
			add_sealed(out, json);
		else if (sub == NULL) /* only a broken repeated array has these */
			loom_buf_adds(out, json ? "null" : "{}");
		else
			add_message(out, sub, json, true);
		break;
	}
	}
}

/* msg's fields; braces false only for the top level of text output. */
static void add_message(struct loom_buf *out, const ProtobufCMessage *msg, bool json, bool braces)
{
	const ProtobufCMessageDescriptor *desc = msg->descriptor;
	bool first = true;

	if (loom_types_is_sealed(desc)) {
		add_sealed(out, json);
		return;
	}
	if (json || braces)
		loom_buf_addc(out, '{');
	for (unsigned i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];
		const char *member = (const char *)msg + f->offset;
		size_t count;

		if (!field_present(msg, f, &count))
			continue;
		if (!first)
			loom_buf_addc(out, json ? ',' : ' ');
		first = false;
		if (json) {
			loom_buf_add_json_str(out, f->name, strlen(f->name));
			loom_buf_addc(out, ':');
		} else {
			loom_buf_adds(out, f->name);
			loom_buf_addc(out, '=');
		}
		if (f->label != PROTOBUF_C_LABEL_REPEATED) {
			add_value(out, f, member, json);
			continue;
		}
		const char *array = *(const char *const *)member;
		size_t size = elem_size(f->type);
		loom_buf_addc(out, '[');
		for (size_t j = 0; j < count; j++) {
			if (j > 0)
				loom_buf_addc(out, ',');
			add_value(out, f, array + j * size, json);
		}
		loom_buf_addc(out, ']');
	}
	if (json || braces)
		loom_buf_addc(out, '}');
}

void loom_pbfmt_text(struct loom_buf *out, const ProtobufCMessage *msg)
{
	add_message(out, msg, false, false);
}

void loom_pbfmt_json(struct loom_buf *out, const ProtobufCMessage *msg)
{
	add_message(out, msg, true, true);
}

int loom_pbfmt_body(struct loom_buf *out, const char *type_name, const void *body, size_t len,
		    bool json, const char **error_r)
{
	static const uint8_t empty[1]; /* something to point at for a 0-byte body */
	const ProtobufCMessageDescriptor *desc = type_name ? loom_types_find(type_name) : NULL;
	ProtobufCMessage *msg;

	if (desc == NULL) {
		*error_r = "unknown type";
		return -1;
	}
	if (body == NULL && len > 0) {
		*error_r = "body does not decode";
		return -1;
	}
	msg = protobuf_c_message_unpack(desc, NULL, len, body ? body : empty);
	if (msg == NULL) {
		*error_r = "body does not decode";
		return -1;
	}
	if (json)
		loom_pbfmt_json(out, msg);
	else
		loom_pbfmt_text(out, msg);
	protobuf_c_message_free_unpacked(msg, NULL);
	return 0;
}
