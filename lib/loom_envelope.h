/* loom_envelope.h - coding of the one frame every bus message travels in.
 *
 * An envelope (proto/envelope.proto) names its body's type, a 16-byte
 * msg_id, the correlation id of what it answers, sender and receiver
 * addresses, the send time, and the body bytes. Helpers here pack a body
 * into an envelope, unpack and validate one from a peer (never trusting it),
 * and peek at the routing fields without allocating, for the broker.
 */
#ifndef LOOM_ENVELOPE_H
#define LOOM_ENVELOPE_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "envelope.pb-c.h"
#include "loom_buf.h"

#define LOOM_ENVELOPE_VERSION 1
#define LOOM_MSG_ID_LEN 16
/* Longest service name or instance address accepted on the bus. */
#define LOOM_ADDR_MAX 128
/* The broker's own address for control messages. */
#define LOOM_BROKER_ADDR "broker"

/* Fills id with LOOM_MSG_ID_LEN random bytes. */
void loom_msgid_new(uint8_t id[LOOM_MSG_ID_LEN]);
/* Wall clock, microseconds since the epoch. */
int64_t loom_now_us(void);
/* Monotonic clock, milliseconds. */
int64_t loom_mono_ms(void);

/* What an outgoing envelope carries besides its body. */
typedef struct loom_env_hdr {
	const char *from;            /* sender instance address */
	const char *to;              /* service name or instance address */
	const uint8_t *correlation;  /* msg_id this answers, or NULL */
	size_t correlation_len;      /* its length (LOOM_MSG_ID_LEN or 0) */
} loom_env_hdr_t;

/* Packs body (type taken from its descriptor) into an envelope and appends
 * the encoded frame to out. Writes the new msg_id to ret_msg_id if not NULL. */
void loom_envelope_pack(loom_buf_t *out, const loom_env_hdr_t *hdr,
    const ProtobufCMessage *body, uint8_t ret_msg_id[LOOM_MSG_ID_LEN]);

/* Unpacks and validates an envelope frame from a peer: version supported,
 * type, from and msg_id present and well formed, addresses within
 * LOOM_ADDR_MAX. Returns the envelope (free with loom_envelope_free) or NULL
 * with *error_r set to a static reason. */
Loom__Envelope *loom_envelope_unpack(const void *data, size_t len, const char **error_r);
void loom_envelope_free(Loom__Envelope **env_p);

/* Unpacks the body of env as want. Returns NULL with *error_r when the
 * type differs or the bytes do not decode. Free with
 * protobuf_c_message_free_unpacked(msg, NULL). */
ProtobufCMessage *loom_envelope_body(const Loom__Envelope *env,
    const ProtobufCMessageDescriptor *want, const char **error_r);

/* A bump allocator for a body decoded and dropped whole (an import batch of
 * a thousand objects): protobuf-c's one malloc per string, value and
 * attribute, and the frees that undo them, were about a quarter of the
 * engine's time in a full import. Everything decoded with it goes at once
 * in loom_pbarena_release; nothing of it may be freed or kept alone. */
typedef struct loom_pbarena_chunk loom_pbarena_chunk_t;
typedef struct loom_pbarena {
	loom_pbarena_chunk_t *chunks;  /* newest first */
	ProtobufCAllocator alloc;      /* what protobuf-c calls (free does nothing) */
} loom_pbarena_t;

/* Prepares an empty arena whose first block fits about hint bytes. */
void loom_pbarena_init(loom_pbarena_t *a, size_t hint);

/* Frees every block (and so every message decoded in it); a may be reused
 * after loom_pbarena_init. */
void loom_pbarena_release(loom_pbarena_t *a);

/* loom_envelope_body, decoded in arena a: release a, never
 * protobuf_c_message_free_unpacked, to free the message. */
ProtobufCMessage *loom_envelope_body_in(const Loom__Envelope *env, const ProtobufCMessageDescriptor *want,
    loom_pbarena_t *a, const char **error_r);
/* True when env carries a body of type desc. */
bool loom_envelope_is(const Loom__Envelope *env, const ProtobufCMessageDescriptor *desc);

/* Routing fields seen without decoding: pointers into the frame. */
typedef struct loom_env_peek {
	uint32_t version;            /* envelope version (0 when absent) */
	const char *type;            /* not NUL-terminated: type_len bytes */
	size_t type_len;
	const char *from;
	size_t from_len;
	const char *to;
	size_t to_len;
	const uint8_t *msg_id;
	size_t msg_id_len;
	const uint8_t *correlation;
	size_t correlation_len;
} loom_env_peek_t;

/* Walks the protobuf wire format of an envelope frame and fills *ret with
 * its routing fields, checking every length against the frame. Returns 0,
 * or -1 with *error_r for a frame that is not a well-formed envelope. */
int loom_envelope_peek(const void *data, size_t len, loom_env_peek_t *ret, const char **error_r);

/* Appends a msg_id as 32 hex digits ("-" when empty). */
void loom_msgid_format(loom_buf_t *out, const uint8_t *id, size_t len);

/* Splits an instance address "service@id": returns the length of the
 * service part, or len when there is no '@'. */
size_t loom_addr_service_len(const char *addr, size_t len);
/* True when s (len bytes) is a valid service name: 1..LOOM_ADDR_MAX bytes of
 * [A-Za-z0-9._-], starting with a letter. */
bool loom_service_name_valid(const char *s, size_t len);

#endif
