/* loom_pbfmt.h - render any decoded protobuf-c message for people and tools.
 *
 * Works from the message descriptor alone, so a message added to proto/ is
 * printed without further code (loom-tap uses it for every bus body).
 * Fields are printed when they would be packed on the wire: proto3 fields
 * holding their default (0, "", empty bytes, false, empty repeated, NULL
 * message) are left out, fields with explicit presence (proto2 optional,
 * proto3 "optional", oneof members) are printed when set, even as 0.
 * Unknown fields kept by the decoder are never printed: they could be
 * secrets from a newer schema.
 *
 * A message of type loom.Sealed holds a secret: wherever it appears (top
 * level, nested at any depth, repeated, inside a oneof) it is rendered as
 * <sealed> and nothing of its content is looked at.
 */
#ifndef LOOM_PBFMT_H
#define LOOM_PBFMT_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "loom_buf.h"

/* Appends msg as one line of text: field=value pairs separated by spaces,
 * nested messages as {a=1 b=2}, repeated fields as [x,y], strings bare when
 * safe and otherwise double-quoted with C escapes (loom_buf_add_logval rules;
 * strings holding one of {}[], are quoted too, so the structure stays
 * readable), bytes as lowercase hex (at most 32 bytes, then "...(N bytes)"),
 * enums by value name (the number when the value has no name), bools as
 * true/false. A message with nothing to print appends nothing; a loom.Sealed
 * message appends <sealed>. */
void loom_pbfmt_text(struct loom_buf *out, const ProtobufCMessage *msg);

/* Appends msg as one compact JSON object in the proto3 JSON mapping style,
 * keyed by the .proto field names: 64-bit integers as strings, bytes as
 * standard padded base64, enums as their name strings (the number when the
 * value has no name), NaN and infinities as "NaN", "Infinity", "-Infinity".
 * A loom.Sealed value, top-level included, is the string "<sealed>". */
void loom_pbfmt_json(struct loom_buf *out, const ProtobufCMessage *msg);

/* Decodes len bytes at body as the registered type type_name (loom_types.h)
 * and appends it as loom_pbfmt_json (json true) or loom_pbfmt_text renders
 * it. Returns 0; or -1 with nothing appended and *error_r set to a static
 * string ("unknown type", "body does not decode") when the type is not
 * registered or the bytes are not a valid encoding of it. */
int loom_pbfmt_body(struct loom_buf *out, const char *type_name, const void *body, size_t len,
		    bool json, const char **error_r);

#endif
