/* loom_envelope.c - envelope coding, validation and allocation-free peeking. */
#include "loom_envelope.h"

#include <stddef.h>
#include "loom_alloc.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void loom_msgid_new(uint8_t id[LOOM_MSG_ID_LEN])
{
	/* Ids need to be unique, not secret: draw them from a per-thread pool
	 * refilled 4 KiB at a time, instead of one getrandom(2) per message. */
	static __thread uint8_t pool[4096];
	static __thread size_t left;
	static int ready;
	if (!ready) {
		if (sodium_init() < 0)
			abort();
		ready = 1;
	}
	if (left < LOOM_MSG_ID_LEN) {
		randombytes_buf(pool, sizeof pool);
		left = sizeof pool;
	}
	memcpy(id, pool + sizeof pool - left, LOOM_MSG_ID_LEN);
	left -= LOOM_MSG_ID_LEN;
}

int64_t loom_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t loom_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void loom_envelope_pack(loom_buf_t *out, const loom_env_hdr_t *hdr,
    const ProtobufCMessage *body, uint8_t ret_msg_id[LOOM_MSG_ID_LEN])
{
	uint8_t id[LOOM_MSG_ID_LEN];
	loom_msgid_new(id);

	size_t blen = protobuf_c_message_get_packed_size(body);
	uint8_t stackbuf[512];
	uint8_t *bbuf = blen <= sizeof stackbuf ? stackbuf : loom_malloc(blen);
	protobuf_c_message_pack(body, bbuf);

	Loom__Envelope env = LOOM__ENVELOPE__INIT;
	env.version = LOOM_ENVELOPE_VERSION;
	env.type = (char *)body->descriptor->name;
	env.msg_id.data = id;
	env.msg_id.len = sizeof id;
	if (hdr->correlation && hdr->correlation_len) {
		env.correlation_id.data = (uint8_t *)hdr->correlation;
		env.correlation_id.len = hdr->correlation_len;
	}
	env.from = (char *)(hdr->from ? hdr->from : "");
	env.to = (char *)(hdr->to ? hdr->to : "");
	env.sent_at = loom_now_us();
	env.body.data = bbuf;
	env.body.len = blen;

	size_t elen = loom__envelope__get_packed_size(&env);
	loom_buf_reserve(out, elen);
	loom__envelope__pack(&env, (uint8_t *)out->data + out->len);
	out->len += elen;
	out->data[out->len] = '\0';
	if (bbuf != stackbuf)
		free(bbuf);
	if (ret_msg_id)
		memcpy(ret_msg_id, id, sizeof id);
}

static bool addr_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > LOOM_ADDR_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

Loom__Envelope *loom_envelope_unpack(const void *data, size_t len, const char **error_r)
{
	Loom__Envelope *env = loom__envelope__unpack(NULL, len, data);
	if (env == NULL) {
		*error_r = "envelope does not decode";
		return NULL;
	}
	const char *why = NULL;
	if (env->version == 0 || env->version > LOOM_ENVELOPE_VERSION)
		why = "unsupported envelope version";
	else if (env->type[0] == '\0' || strlen(env->type) > LOOM_ADDR_MAX)
		why = "envelope has no valid type";
	else if (env->msg_id.len != LOOM_MSG_ID_LEN)
		why = "envelope msg_id is not 16 bytes";
	else if (env->correlation_id.len != 0 && env->correlation_id.len != LOOM_MSG_ID_LEN)
		why = "envelope correlation_id is not 16 bytes";
	else if (!addr_ok(env->from))
		why = "envelope has no valid sender address";
	else if (env->to[0] != '\0' && !addr_ok(env->to))
		why = "envelope has an invalid receiver address";
	/* protobuf-c ends a string at its first NUL byte: "engine@1\0x" would pass
	 * above as "engine@1", while the broker checked all of it (peek) against
	 * the sender's connection. Hold the strings to their wire lengths; a
	 * frame peek refuses (e.g. a version above 2^32 that protobuf-c
	 * truncates) is refused here too, with peek's reason. */
	loom_env_peek_t pk;
	if (why == NULL && loom_envelope_peek(data, len, &pk, &why) == 0 &&
	    (pk.type_len != strlen(env->type) || pk.from_len != strlen(env->from) ||
	    pk.to_len != strlen(env->to)))
		why = "envelope type or address holds a NUL byte";
	if (why) {
		loom__envelope__free_unpacked(env, NULL);
		*error_r = why;
		return NULL;
	}
	return env;
}

void loom_envelope_free(Loom__Envelope **env_p)
{
	if (*env_p)
		loom__envelope__free_unpacked(*env_p, NULL);
	*env_p = NULL;
}

bool loom_envelope_is(const Loom__Envelope *env, const ProtobufCMessageDescriptor *desc)
{
	return strcmp(env->type, desc->name) == 0;
}

ProtobufCMessage *loom_envelope_body(const Loom__Envelope *env,
    const ProtobufCMessageDescriptor *want, const char **error_r)
{
	if (!loom_envelope_is(env, want)) {
		*error_r = "body is not of the expected type";
		return NULL;
	}
	ProtobufCMessage *m = protobuf_c_message_unpack(want, NULL, env->body.len, env->body.data);
	if (m == NULL)
		*error_r = "body does not decode";
	return m;
}

struct loom_pbarena_chunk {
	loom_pbarena_chunk_t *next;    /* the block before this one */
	size_t size, used;             /* bytes of data[] and those handed out */
	max_align_t data[];            /* the memory handed out */
};

static void *pbarena_alloc(void *arg, size_t n)
{
	loom_pbarena_t *a = arg;
	n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
	loom_pbarena_chunk_t *c = a->chunks;
	if (c == NULL || c->size - c->used < n) {
		size_t size = c ? c->size * 2 : 0;
		if (size < n)
			size = n;
		if (size < 65536)
			size = 65536;
		loom_pbarena_chunk_t *nc = loom_malloc(sizeof *nc + size);
		nc->next = c;
		nc->size = size;
		nc->used = 0;
		a->chunks = c = nc;
	}
	void *p = (char *)c->data + c->used;
	c->used += n;
	return p;
}

static void pbarena_free(void *arg, void *p)
{
	(void)arg;
	(void)p; /* all of it goes in loom_pbarena_release */
}

void loom_pbarena_init(loom_pbarena_t *a, size_t hint)
{
	a->chunks = NULL;
	a->alloc.alloc = pbarena_alloc;
	a->alloc.free = pbarena_free;
	a->alloc.allocator_data = a;
	if (hint) {
		/* One block for the usual case (decoded structures take about
		 * three times the wire bytes); more are added if needed. */
		void *p = pbarena_alloc(a, hint * 3 + 4096);
		(void)p;
		a->chunks->used = 0;
	}
}

void loom_pbarena_release(loom_pbarena_t *a)
{
	while (a->chunks) {
		loom_pbarena_chunk_t *c = a->chunks;
		a->chunks = c->next;
		free(c);
	}
}

ProtobufCMessage *loom_envelope_body_in(const Loom__Envelope *env, const ProtobufCMessageDescriptor *want,
    loom_pbarena_t *a, const char **error_r)
{
	if (!loom_envelope_is(env, want)) {
		*error_r = "body is not of the expected type";
		return NULL;
	}
	ProtobufCMessage *m = protobuf_c_message_unpack(want, &a->alloc, env->body.len, env->body.data);
	if (m == NULL)
		*error_r = "body does not decode";
	return m;
}

/* Reads a varint at *p (< end); returns -1 on truncation or overlength. */
static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (*p >= end)
			return -1;
		uint8_t b = *(*p)++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			*ret = v;
			return 0;
		}
	}
	return -1;
}

int loom_envelope_peek(const void *data, size_t len, loom_env_peek_t *ret, const char **error_r)
{
	const uint8_t *p = data, *end = p + len;
	loom_env_peek_t pk;
	memset(&pk, 0, sizeof pk);
	while (p < end) {
		uint64_t tag, v;
		if (read_varint(&p, end, &tag) < 0)
			goto malformed;
		uint32_t field = (uint32_t)(tag >> 3);
		if (field == 0 || tag >> 3 > 0x1fffffff)
			goto malformed;
		switch (tag & 7) {
		case 0: /* varint */
			if (read_varint(&p, end, &v) < 0)
				goto malformed;
			if (field == 1)
				pk.version = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
			break;
		case 1: /* 64-bit */
			if (end - p < 8)
				goto malformed;
			p += 8;
			break;
		case 5: /* 32-bit */
			if (end - p < 4)
				goto malformed;
			p += 4;
			break;
		case 2: { /* length-delimited */
			if (read_varint(&p, end, &v) < 0 || v > (uint64_t)(end - p))
				goto malformed;
			const uint8_t *s = p;
			p += v;
			switch (field) {
			case 2: pk.type = (const char *)s; pk.type_len = v; break;
			case 3: pk.msg_id = s; pk.msg_id_len = v; break;
			case 4: pk.correlation = s; pk.correlation_len = v; break;
			case 5: pk.from = (const char *)s; pk.from_len = v; break;
			case 6: pk.to = (const char *)s; pk.to_len = v; break;
			default: break;
			}
			break;
		}
		default: /* groups (3, 4) and 6, 7 are not valid here */
			goto malformed;
		}
	}
	if (pk.version == 0 || pk.version > LOOM_ENVELOPE_VERSION) {
		*error_r = "unsupported envelope version";
		return -1;
	}
	if (pk.type_len == 0 || pk.type_len > LOOM_ADDR_MAX || pk.msg_id_len != LOOM_MSG_ID_LEN ||
	    pk.from_len == 0 || pk.from_len > LOOM_ADDR_MAX || pk.to_len > LOOM_ADDR_MAX) {
		*error_r = "envelope lacks a valid type, msg_id or address";
		return -1;
	}
	*ret = pk;
	return 0;
malformed:
	*error_r = "frame is not a protobuf envelope";
	return -1;
}

void loom_msgid_format(loom_buf_t *out, const uint8_t *id, size_t len)
{
	if (len == 0)
		loom_buf_addc(out, '-');
	else
		loom_buf_add_hex(out, id, len);
}

size_t loom_addr_service_len(const char *addr, size_t len)
{
	/* len 0: addr may be NULL (an absent field of a peeked frame). */
	const char *at = len ? memchr(addr, '@', len) : NULL;
	return at ? (size_t)(at - addr) : len;
}

bool loom_service_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > LOOM_ADDR_MAX)
		return false;
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	for (size_t i = 1; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}
