/* test_envelope.c - envelope coding, validation and peeking (lib/loom_envelope.c).
 *
 * Tables, one cmocka test per case:
 *   - unpack cases: an envelope described field by field (packed with the
 *     generated code, so absent fields are really absent), and the exact
 *     static error loom_envelope_unpack must give, or NULL for "accepted";
 *     every accepted frame must also peek to the same fields;
 *   - peek cases: raw wire bytes and the exact error of loom_envelope_peek;
 *   - raw unpack cases: wire bytes the generated code would never write
 *     (garbage, NUL bytes inside strings) and the exact unpack error;
 *   - body, msgid formatting, address and service name cases.
 * Then peek is run over every prefix of a valid frame, over random bytes and
 * over random mutations of a valid frame, each in a heap block of exactly
 * its length so ASan reports any read past the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.pb-c.h"
#include "envelope.pb-c.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_envelope.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Error strings of lib/loom_envelope.c, spelled out on purpose. */
#define E_DECODE "envelope does not decode"
#define E_VERSION "unsupported envelope version"
#define E_TYPE "envelope has no valid type"
#define E_MSGID "envelope msg_id is not 16 bytes"
#define E_CORR "envelope correlation_id is not 16 bytes"
#define E_FROM "envelope has no valid sender address"
#define E_TO "envelope has an invalid receiver address"
#define E_BODY_TYPE "body is not of the expected type"
#define E_BODY_DECODE "body does not decode"
#define E_PEEK_WIRE "frame is not a protobuf envelope"
#define E_PEEK_FIELDS "envelope lacks a valid type, msg_id or address"
#define E_NUL "envelope type or address holds a NUL byte"

/* Strings too long for a literal in a table; filled by fill_long(). */
static char long128[LOOM_ADDR_MAX + 1];
static char long129[LOOM_ADDR_MAX + 2];

static void fill_long(void)
{
	memset(long128, 'a', LOOM_ADDR_MAX);
	long128[LOOM_ADDR_MAX] = '\0';
	memset(long129, 'b', LOOM_ADDR_MAX + 1);
	long129[LOOM_ADDR_MAX + 1] = '\0';
}

/* Copies len bytes into a heap block of exactly len bytes (ASan guards it). */
static uint8_t *exact_copy(const void *p, size_t len)
{
	uint8_t *q = loom_malloc(len);
	if (len)
		memcpy(q, p, len);
	return q;
}

/* ---- pack / unpack round trip -------------------------------------------- */

static void test_pack_round_trip(void **state)
{
	(void)state;
	static const struct {
		const char *label;        /* what the case shows */
		const char *from;         /* header from */
		const char *to;           /* header to (NULL: none) */
		bool reply;               /* carry a correlation id */
		size_t payload_len;       /* Ping payload size (big ones take the heap path) */
	} cases[] = {
		{ "request to a service", "engine@1f2e", "ma.hr", false, 5 },
		{ "reply to an instance", "ma.hr@7", "engine@1f2e", true, 0 },
		{ "no receiver", "engine@1", NULL, false, 3 },
		{ "body larger than the stack buffer", "engine@1", "broker", true, 4000 },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		const char *label = cases[i].label;
		uint8_t corr[LOOM_MSG_ID_LEN];
		for (size_t j = 0; j < sizeof corr; j++)
			corr[j] = (uint8_t)(0xa0 + j);
		uint8_t *payload = loom_malloc(cases[i].payload_len);
		for (size_t j = 0; j < cases[i].payload_len; j++)
			payload[j] = (uint8_t)(j * 7);
		Loom__Ping ping = LOOM__PING__INIT;
		ping.payload.data = payload;
		ping.payload.len = cases[i].payload_len;
		loom_env_hdr_t hdr = {
			.from = cases[i].from, .to = cases[i].to,
			.correlation = cases[i].reply ? corr : NULL,
			.correlation_len = cases[i].reply ? sizeof corr : 0,
		};

		loom_buf_t out = LOOM_BUF_INIT;
		loom_buf_adds(&out, "xyz"); /* pack appends: what was there stays */
		uint8_t id1[LOOM_MSG_ID_LEN], id2[LOOM_MSG_ID_LEN];
		int64_t before = loom_now_us();
		loom_envelope_pack(&out, &hdr, &ping.base, id1);
		int64_t after = loom_now_us();
		if (out.len <= 3 || memcmp(out.data, "xyz", 3) != 0 || out.data[out.len] != '\0')
			fail_msg("%s: pack did not append to the buffer", label);

		const char *err = NULL;
		Loom__Envelope *env = loom_envelope_unpack(out.data + 3, out.len - 3, &err);
		if (env == NULL)
			fail_msg("%s: unpack failed: %s", label, err);
		if (env->version != LOOM_ENVELOPE_VERSION)
			fail_msg("%s: version %u", label, env->version);
		if (strcmp(env->type, "loom.Ping") != 0 || !loom_envelope_is(env, &loom__ping__descriptor))
			fail_msg("%s: type '%s'", label, env->type);
		if (loom_envelope_is(env, &loom__pong__descriptor))
			fail_msg("%s: loom_envelope_is says Pong", label);
		if (strcmp(env->from, cases[i].from) != 0)
			fail_msg("%s: from '%s'", label, env->from);
		if (strcmp(env->to, cases[i].to ? cases[i].to : "") != 0)
			fail_msg("%s: to '%s'", label, env->to);
		if (env->msg_id.len != LOOM_MSG_ID_LEN || memcmp(env->msg_id.data, id1, sizeof id1) != 0)
			fail_msg("%s: msg_id differs from the one returned", label);
		if (cases[i].reply) {
			if (env->correlation_id.len != sizeof corr ||
			    memcmp(env->correlation_id.data, corr, sizeof corr) != 0)
				fail_msg("%s: correlation_id lost", label);
		} else if (env->correlation_id.len != 0) {
			fail_msg("%s: correlation_id set on a request", label);
		}
		if (env->sent_at < before || env->sent_at > after)
			fail_msg("%s: sent_at %lld outside [%lld, %lld]", label, (long long)env->sent_at,
			    (long long)before, (long long)after);

		Loom__Ping *back = (Loom__Ping *)loom_envelope_body(env, &loom__ping__descriptor, &err);
		if (back == NULL)
			fail_msg("%s: body: %s", label, err);
		if (back->payload.len != cases[i].payload_len ||
		    (back->payload.len && memcmp(back->payload.data, payload, back->payload.len) != 0))
			fail_msg("%s: payload differs", label);
		protobuf_c_message_free_unpacked(&back->base, NULL);

		/* A second pack of the same body gets a fresh msg_id. */
		loom_buf_reset(&out);
		loom_envelope_pack(&out, &hdr, &ping.base, id2);
		if (memcmp(id1, id2, sizeof id1) == 0)
			fail_msg("%s: two packs gave the same msg_id", label);
		/* ret_msg_id may be NULL. */
		loom_buf_reset(&out);
		loom_envelope_pack(&out, &hdr, &ping.base, NULL);
		Loom__Envelope *env2 = loom_envelope_unpack(out.data, out.len, &err);
		if (env2 == NULL)
			fail_msg("%s: unpack without ret_msg_id: %s", label, err);
		if (memcmp(env2->msg_id.data, id1, sizeof id1) == 0 || memcmp(env2->msg_id.data, id2, sizeof id2) == 0)
			fail_msg("%s: msg_id repeated", label);

		loom_envelope_free(&env2);
		loom_envelope_free(&env);
		assert_null(env);
		loom_envelope_free(&env); /* NULL is fine */
		loom_buf_release(&out);
		free(payload);
	}
}

/* Many msg_ids: all distinct (not a proof of randomness, a guard against a
 * constant or a counter that restarts). */
static void test_msgid_distinct(void **state)
{
	(void)state;
	enum { N = 1000 };
	uint8_t (*ids)[LOOM_MSG_ID_LEN] = loom_malloc(N * LOOM_MSG_ID_LEN);
	for (size_t i = 0; i < N; i++)
		loom_msgid_new(ids[i]);
	for (size_t i = 0; i < N; i++)
		for (size_t j = i + 1; j < N; j++)
			if (memcmp(ids[i], ids[j], LOOM_MSG_ID_LEN) == 0)
				fail_msg("msg_id %zu equals msg_id %zu", i, j);
	free(ids);
}

/* ---- loom_envelope_body -------------------------------------------------- */

typedef struct body_case {
	const char *label;           /* what the case shows */
	const char *type;            /* envelope type */
	const uint8_t *body;         /* body bytes */
	size_t body_len;             /* their length */
	const ProtobufCMessageDescriptor *want_desc;  /* asked for */
	const char *want_error;      /* NULL: must decode */
} body_case_t;

/* Ping{payload: "hi"} */
static const uint8_t ping_hi[] = { 0x0a, 0x02, 'h', 'i' };
/* field 1, length 5, but only 2 bytes follow */
static const uint8_t ping_short[] = { 0x0a, 0x05, 'h', 'i' };
/* field 1 with wire type 7: not protobuf */
static const uint8_t ping_wire7[] = { 0x0f, 0x00 };

static const body_case_t body_cases[] = {
	{ "right type", "loom.Ping", ping_hi, sizeof ping_hi, &loom__ping__descriptor, NULL },
	{ "empty body of the right type", "loom.Ping", NULL, 0, &loom__ping__descriptor, NULL },
	{ "wrong type", "loom.Ping", ping_hi, sizeof ping_hi, &loom__pong__descriptor, E_BODY_TYPE },
	{ "type is a prefix of the wanted one", "loom.Pin", ping_hi, sizeof ping_hi, &loom__ping__descriptor, E_BODY_TYPE },
	{ "truncated body", "loom.Ping", ping_short, sizeof ping_short, &loom__ping__descriptor, E_BODY_DECODE },
	{ "bad wire type in body", "loom.Ping", ping_wire7, sizeof ping_wire7, &loom__ping__descriptor, E_BODY_DECODE },
};

static void test_body_case(void **state)
{
	const body_case_t *c = *state;
	Loom__Envelope env = LOOM__ENVELOPE__INIT;
	env.version = 1;
	env.type = (char *)c->type;
	env.body.data = (uint8_t *)c->body;
	env.body.len = c->body_len;
	const char *err = NULL;
	ProtobufCMessage *m = loom_envelope_body(&env, c->want_desc, &err);
	if (c->want_error == NULL) {
		if (m == NULL)
			fail_msg("%s: failed: %s", c->label, err);
		if (m->descriptor != c->want_desc)
			fail_msg("%s: decoded as %s", c->label, m->descriptor->name);
		if (c->body_len) {
			Loom__Ping *p = (Loom__Ping *)m;
			if (p->payload.len != 2 || memcmp(p->payload.data, "hi", 2) != 0)
				fail_msg("%s: payload differs", c->label);
		}
		protobuf_c_message_free_unpacked(m, NULL);
	} else {
		if (m != NULL) {
			protobuf_c_message_free_unpacked(m, NULL);
			fail_msg("%s: decoded, want '%s'", c->label, c->want_error);
		}
		if (err == NULL || strcmp(err, c->want_error) != 0)
			fail_msg("%s: error '%s', want '%s'", c->label, err ? err : "(null)", c->want_error);
	}
}

/* ---- unpack validation ---------------------------------------------------- */

/* An envelope described field by field. Lengths of -1 leave the field out. */
typedef struct unpack_case {
	const char *label;           /* what the case shows */
	uint32_t version;            /* 0 leaves it out */
	const char *type;            /* NULL leaves it out */
	int msg_id_len;              /* bytes of msg_id */
	int corr_len;                /* bytes of correlation_id */
	const char *from;            /* NULL leaves it out */
	const char *to;              /* NULL leaves it out */
	const char *want_error;      /* exact unpack error; NULL: accepted */
	const char *want_peek_error; /* exact peek error; NULL: accepted */
} unpack_case_t;

static const unpack_case_t unpack_cases[] = {
	{ "good request", 1, "loom.Ping", 16, 0, "engine@1", "ma.hr", NULL, NULL },
	{ "good reply", 1, "loom.Pong", 16, 16, "ma.hr@2", "engine@1", NULL, NULL },
	{ "no receiver", 1, "loom.Ping", 16, 0, "engine@1", NULL, NULL, NULL },
	{ "128-byte from and to", 1, "loom.Ping", 16, 0, long128, long128, NULL, NULL },
	{ "128-byte type", 1, long128, 16, 0, "engine@1", "x", NULL, NULL },
	{ "version 0", 0, "loom.Ping", 16, 0, "engine@1", "ma.hr", E_VERSION, E_VERSION },
	{ "version 2", 2, "loom.Ping", 16, 0, "engine@1", "ma.hr", E_VERSION, E_VERSION },
	{ "empty type", 1, "", 16, 0, "engine@1", "ma.hr", E_TYPE, E_PEEK_FIELDS },
	{ "no type", 1, NULL, 16, 0, "engine@1", "ma.hr", E_TYPE, E_PEEK_FIELDS },
	{ "129-byte type", 1, long129, 16, 0, "engine@1", "ma.hr", E_TYPE, E_PEEK_FIELDS },
	{ "msg_id of 15 bytes", 1, "loom.Ping", 15, 0, "engine@1", "ma.hr", E_MSGID, E_PEEK_FIELDS },
	{ "msg_id of 17 bytes", 1, "loom.Ping", 17, 0, "engine@1", "ma.hr", E_MSGID, E_PEEK_FIELDS },
	{ "no msg_id", 1, "loom.Ping", 0, 0, "engine@1", "ma.hr", E_MSGID, E_PEEK_FIELDS },
	/* peek leaves correlation and address characters to the receiver */
	{ "correlation of 5 bytes", 1, "loom.Pong", 16, 5, "engine@1", "ma.hr", E_CORR, NULL },
	{ "empty from", 1, "loom.Ping", 16, 0, "", "ma.hr", E_FROM, E_PEEK_FIELDS },
	{ "no from", 1, "loom.Ping", 16, 0, NULL, "ma.hr", E_FROM, E_PEEK_FIELDS },
	{ "from with a space", 1, "loom.Ping", 16, 0, "engine @1", "ma.hr", E_FROM, NULL },
	{ "from with a control char", 1, "loom.Ping", 16, 0, "engine\x01@1", "ma.hr", E_FROM, NULL },
	{ "from with DEL", 1, "loom.Ping", 16, 0, "engine\x7f", "ma.hr", E_FROM, NULL },
	{ "from with a high byte", 1, "loom.Ping", 16, 0, "engin\xc3\xa9", "ma.hr", E_FROM, NULL },
	{ "129-byte from", 1, "loom.Ping", 16, 0, long129, "ma.hr", E_FROM, E_PEEK_FIELDS },
	{ "129-byte to", 1, "loom.Ping", 16, 0, "engine@1", long129, E_TO, E_PEEK_FIELDS },
	{ "to with a space", 1, "loom.Ping", 16, 0, "engine@1", "ma hr", E_TO, NULL },
	{ "to with a newline", 1, "loom.Ping", 16, 0, "engine@1", "ma.hr\n", E_TO, NULL },
};

/* Packs the described envelope with the generated code. */
static void unpack_case_pack(const unpack_case_t *c, loom_buf_t *out)
{
	uint8_t id[32], corr[32];
	memset(id, 0x11, sizeof id);
	memset(corr, 0x22, sizeof corr);
	Loom__Envelope env = LOOM__ENVELOPE__INIT;
	env.version = c->version;
	if (c->type)
		env.type = (char *)c->type;
	env.msg_id.data = id;
	env.msg_id.len = (size_t)c->msg_id_len;
	env.correlation_id.data = corr;
	env.correlation_id.len = (size_t)c->corr_len;
	if (c->from)
		env.from = (char *)c->from;
	if (c->to)
		env.to = (char *)c->to;
	env.sent_at = 1700000000000000;
	static uint8_t body[] = { 0x0a, 0x01, 'x' };
	env.body.data = body;
	env.body.len = sizeof body;
	size_t n = loom__envelope__get_packed_size(&env);
	loom_buf_reserve(out, n);
	loom__envelope__pack(&env, (uint8_t *)out->data + out->len);
	out->len += n;
	out->data[out->len] = '\0';
}

/* Checks that a peek agrees with an unpacked envelope, pointers inside frame. */
static void peek_matches(const char *label, const Loom__Envelope *env, const loom_env_peek_t *pk,
    const uint8_t *frame, size_t len)
{
	const uint8_t *end = frame + len;
#define INSIDE(p, n) ((n) == 0 || ((const uint8_t *)(p) >= frame && (const uint8_t *)(p) + (n) <= end))
	if (pk->version != env->version)
		fail_msg("%s: peek version %u, unpack %u", label, pk->version, env->version);
	if (pk->type_len != strlen(env->type) || !INSIDE(pk->type, pk->type_len) ||
	    memcmp(pk->type, env->type, pk->type_len) != 0)
		fail_msg("%s: peek type '%.*s', unpack '%s'", label, (int)pk->type_len, pk->type, env->type);
	if (pk->from_len != strlen(env->from) || !INSIDE(pk->from, pk->from_len) ||
	    memcmp(pk->from, env->from, pk->from_len) != 0)
		fail_msg("%s: peek from '%.*s', unpack '%s'", label, (int)pk->from_len, pk->from, env->from);
	if (pk->to_len != strlen(env->to) || !INSIDE(pk->to, pk->to_len) ||
	    (pk->to_len && memcmp(pk->to, env->to, pk->to_len) != 0))
		fail_msg("%s: peek to '%.*s', unpack '%s'", label, (int)pk->to_len,
		    pk->to ? pk->to : "", env->to);
	if (pk->msg_id_len != env->msg_id.len || !INSIDE(pk->msg_id, pk->msg_id_len) ||
	    memcmp(pk->msg_id, env->msg_id.data, pk->msg_id_len) != 0)
		fail_msg("%s: peek msg_id differs", label);
	if (pk->correlation_len != env->correlation_id.len ||
	    !INSIDE(pk->correlation, pk->correlation_len) ||
	    (pk->correlation_len && memcmp(pk->correlation, env->correlation_id.data, pk->correlation_len) != 0))
		fail_msg("%s: peek correlation differs", label);
	if (pk->correlation_len == 0 && pk->correlation != NULL)
		fail_msg("%s: peek correlation pointer set without a correlation", label);
#undef INSIDE
}

static void test_unpack_case(void **state)
{
	const unpack_case_t *c = *state;
	loom_buf_t b = LOOM_BUF_INIT;
	unpack_case_pack(c, &b);
	uint8_t *frame = exact_copy(b.data, b.len);
	size_t len = b.len;
	loom_buf_release(&b);

	const char *err = NULL;
	Loom__Envelope *env = loom_envelope_unpack(frame, len, &err);
	if (c->want_error == NULL && env == NULL)
		fail_msg("%s: rejected: %s", c->label, err);
	if (c->want_error != NULL) {
		if (env != NULL) {
			loom_envelope_free(&env);
			fail_msg("%s: accepted, want '%s'", c->label, c->want_error);
		}
		if (err == NULL || strcmp(err, c->want_error) != 0)
			fail_msg("%s: error '%s', want '%s'", c->label, err ? err : "(null)", c->want_error);
	}

	loom_env_peek_t pk;
	memset(&pk, 0xee, sizeof pk);
	const char *perr = NULL;
	int rc = loom_envelope_peek(frame, len, &pk, &perr);
	if (c->want_peek_error == NULL) {
		if (rc != 0)
			fail_msg("%s: peek failed: %s", c->label, perr);
		if (env)
			peek_matches(c->label, env, &pk, frame, len);
	} else {
		if (rc != -1)
			fail_msg("%s: peek accepted, want '%s'", c->label, c->want_peek_error);
		if (perr == NULL || strcmp(perr, c->want_peek_error) != 0)
			fail_msg("%s: peek error '%s', want '%s'", c->label, perr ? perr : "(null)", c->want_peek_error);
		/* nothing written on failure */
		for (size_t i = 0; i < sizeof pk; i++)
			if (((const uint8_t *)&pk)[i] != 0xee)
				fail_msg("%s: peek wrote its output on failure", c->label);
	}
	loom_envelope_free(&env);
	free(frame);
}

/* ---- peek on malformed wire bytes ----------------------------------------- */

/* A valid envelope's fields, written by hand (field number, wire type 2). */
#define F_VERSION1 "\x08\x01"
#define F_TYPE "\x12\x09loom.Ping"
#define F_MSGID "\x1a\x10" "0123456789abcdef"
#define F_FROM "\x2a\x08" "engine@1"
#define F_TO "\x32\x05" "ma.hr"
#define F_SENT "\x38\x01"
#define F_BODY "\x42\x00"
#define GOOD F_VERSION1 F_TYPE F_MSGID F_FROM F_TO

typedef struct peek_case {
	const char *label;           /* what the case shows */
	const char *bytes;           /* the frame */
	size_t len;                  /* its length (sizeof literal - 1) */
	const char *want_error;      /* exact error; NULL: accepted */
} peek_case_t;

#define PC(label, lit, err) { label, lit, sizeof(lit) - 1, err }

static const peek_case_t peek_cases[] = {
	PC("hand-written good frame", GOOD, NULL),
	PC("good frame with sent_at and body", GOOD F_SENT F_BODY, NULL),
	PC("fields in reverse order", F_TO F_FROM F_MSGID F_TYPE F_VERSION1, NULL),
	PC("unknown fixed64 field skipped", GOOD "\x49" "12345678", NULL),
	PC("unknown fixed32 field skipped", GOOD "\x4d" "1234", NULL),
	PC("unknown varint field skipped", GOOD "\x48\xff\xff\x01", NULL),
	PC("unknown bytes field skipped", GOOD "\x4a\x03" "abc", NULL),
	PC("truncated varint value", GOOD "\x38\xff", E_PEEK_WIRE),
	PC("truncated tag", GOOD "\x80", E_PEEK_WIRE),
	PC("varint longer than 10 bytes", GOOD "\x38\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", E_PEEK_WIRE),
	PC("length past the end", GOOD "\x42\x05" "abcd", E_PEEK_WIRE),
	PC("length past the end in a known field", F_VERSION1 "\x12\x40loom.Ping", E_PEEK_WIRE),
	PC("length varint truncated", GOOD "\x42", E_PEEK_WIRE),
	PC("huge length", GOOD "\x42\xff\xff\xff\xff\xff\xff\xff\xff\x7f", E_PEEK_WIRE),
	PC("fixed64 truncated", GOOD "\x49" "1234567", E_PEEK_WIRE),
	PC("fixed32 truncated", GOOD "\x4d" "123", E_PEEK_WIRE),
	PC("wire type 3 (group start)", GOOD "\x4b", E_PEEK_WIRE),
	PC("wire type 4 (group end)", GOOD "\x4c", E_PEEK_WIRE),
	PC("wire type 6", GOOD "\x4e\x00", E_PEEK_WIRE),
	PC("wire type 7", GOOD "\x4f\x00", E_PEEK_WIRE),
	PC("field number 0", "\x02\x00" GOOD, E_PEEK_WIRE),
	PC("field number 0, varint", GOOD "\x00\x00", E_PEEK_WIRE),
	PC("field number above 2^29-1", GOOD "\x80\x80\x80\x80\x80\x01\x00", E_PEEK_WIRE),
	PC("missing msg_id", F_VERSION1 F_TYPE F_FROM F_TO, E_PEEK_FIELDS),
	PC("msg_id of 15 bytes", F_VERSION1 F_TYPE "\x1a\x0f" "0123456789abcde" F_FROM, E_PEEK_FIELDS),
	PC("missing type", F_VERSION1 F_MSGID F_FROM F_TO, E_PEEK_FIELDS),
	PC("missing version", F_TYPE F_MSGID F_FROM F_TO, E_VERSION),
	PC("version 0 written out", "\x08\x00" F_TYPE F_MSGID F_FROM, E_VERSION),
	PC("version 2", "\x08\x02" F_TYPE F_MSGID F_FROM, E_VERSION),
	PC("version 2^32 + 1", "\x08\x81\x80\x80\x80\x10" F_TYPE F_MSGID F_FROM, E_VERSION),
	PC("from missing", F_VERSION1 F_TYPE F_MSGID F_TO, E_PEEK_FIELDS),
	PC("from empty", F_VERSION1 F_TYPE F_MSGID "\x2a\x00" F_TO, E_PEEK_FIELDS),
	PC("later field wins: from emptied", GOOD "\x2a\x00", E_PEEK_FIELDS),
	PC("empty frame", "", E_VERSION),
};

static void test_peek_case(void **state)
{
	const peek_case_t *c = *state;
	uint8_t *frame = exact_copy(c->bytes, c->len);
	loom_env_peek_t pk;
	memset(&pk, 0xee, sizeof pk);
	const char *err = NULL;
	int rc = loom_envelope_peek(frame, c->len, &pk, &err);
	if (c->want_error == NULL) {
		if (rc != 0)
			fail_msg("%s: failed: %s", c->label, err);
		if (pk.version != 1 || pk.type_len != 9 || memcmp(pk.type, "loom.Ping", 9) != 0 ||
		    pk.msg_id_len != 16 || memcmp(pk.msg_id, "0123456789abcdef", 16) != 0 ||
		    pk.from_len != 8 || memcmp(pk.from, "engine@1", 8) != 0 ||
		    pk.to_len != 5 || memcmp(pk.to, "ma.hr", 5) != 0 ||
		    pk.correlation != NULL || pk.correlation_len != 0)
			fail_msg("%s: wrong fields", c->label);
	} else {
		if (rc != -1)
			fail_msg("%s: rc %d, want -1 '%s'", c->label, rc, c->want_error);
		if (err == NULL || strcmp(err, c->want_error) != 0)
			fail_msg("%s: error '%s', want '%s'", c->label, err ? err : "(null)", c->want_error);
	}
	free(frame);
}

/* ---- unpack on raw wire bytes --------------------------------------------- */

/* Frames the generated code would never write: garbage, strings holding a
 * NUL byte (protobuf-c would cut them there), a version that only fits in
 * 64 bits. Exact unpack error; NULL: accepted. */
static const peek_case_t unpack_raw_cases[] = {
	PC("hand-written good frame", GOOD F_SENT F_BODY, NULL),
	PC("text", "hello, world", E_DECODE),
	PC("truncated length", GOOD "\x42\x10" "body", E_DECODE),
	PC("wire type 7", GOOD "\x4f\x01", E_DECODE),
	PC("field number 0", "\x02\x00" GOOD, E_DECODE),
	PC("truncated varint", GOOD "\x38\xff", E_DECODE),
	PC("from as a varint", F_VERSION1 F_TYPE F_MSGID "\x28\x01", E_DECODE),
	PC("empty frame", "", E_VERSION),
	PC("version 2^32 + 1", "\x08\x81\x80\x80\x80\x10" F_TYPE F_MSGID F_FROM, E_VERSION),
	PC("NUL inside from", F_VERSION1 F_TYPE F_MSGID "\x2a\x0a" "engine@1\0x", E_NUL),
	PC("NUL at the end of from", F_VERSION1 F_TYPE F_MSGID "\x2a\x09" "engine@1\0", E_NUL),
	PC("NUL inside to", GOOD "\x32\x07" "ma.hr\0x", E_NUL),
	PC("NUL inside type", F_VERSION1 "\x12\x0b" "loom.Ping\0x" F_MSGID F_FROM, E_NUL),
	PC("NUL starting from", F_VERSION1 F_TYPE F_MSGID "\x2a\x02" "\0x", E_FROM),
};

static void test_unpack_raw_case(void **state)
{
	const peek_case_t *c = *state;
	uint8_t *frame = exact_copy(c->bytes, c->len);
	const char *err = NULL;
	Loom__Envelope *env = loom_envelope_unpack(frame, c->len, &err);
	if (c->want_error == NULL) {
		if (env == NULL)
			fail_msg("%s: rejected: %s", c->label, err);
		if (strcmp(env->from, "engine@1") != 0 || strcmp(env->to, "ma.hr") != 0)
			fail_msg("%s: wrong fields", c->label);
		loom_envelope_free(&env);
	} else {
		if (env != NULL) {
			loom_envelope_free(&env);
			fail_msg("%s: accepted, want '%s'", c->label, c->want_error);
		}
		if (err == NULL || strcmp(err, c->want_error) != 0)
			fail_msg("%s: error '%s', want '%s'", c->label, err ? err : "(null)", c->want_error);
	}
	free(frame);
}

/* ---- peek never reads out of bounds --------------------------------------- */

/* A real packed envelope with every field set. */
static void packed_good_frame(loom_buf_t *out)
{
	uint8_t corr[LOOM_MSG_ID_LEN];
	memset(corr, 0x5a, sizeof corr);
	Loom__Ping ping = LOOM__PING__INIT;
	ping.payload.data = (uint8_t *)"payload";
	ping.payload.len = 7;
	loom_env_hdr_t hdr = { .from = "engine@1f2e", .to = "ma.hr", .correlation = corr,
		.correlation_len = sizeof corr };
	loom_envelope_pack(out, &hdr, &ping.base, NULL);
}

/* Peeks at len bytes in an exact heap block; when it accepts, every pointer
 * must lie in the block. Returns peek's result. */
static int peek_exact(const uint8_t *bytes, size_t len, const char *label)
{
	uint8_t *frame = exact_copy(bytes, len);
	loom_env_peek_t pk;
	const char *err = NULL;
	int rc = loom_envelope_peek(frame, len, &pk, &err);
	if (rc == 0) {
		const uint8_t *end = frame + len;
#define OK(p, n) ((n) == 0 || ((const uint8_t *)(p) >= frame && (const uint8_t *)(p) + (n) <= end))
		if (!OK(pk.type, pk.type_len) || !OK(pk.from, pk.from_len) || !OK(pk.to, pk.to_len) ||
		    !OK(pk.msg_id, pk.msg_id_len) || !OK(pk.correlation, pk.correlation_len))
			fail_msg("%s: peek pointer outside the frame", label);
#undef OK
	} else if (rc != -1 || err == NULL) {
		fail_msg("%s: rc %d without an error", label, rc);
	}
	free(frame);
	return rc;
}

static void test_peek_every_prefix(void **state)
{
	(void)state;
	loom_buf_t b = LOOM_BUF_INIT;
	packed_good_frame(&b);
	char label[64];
	size_t accepted = 0;
	for (size_t n = 0; n <= b.len; n++) {
		snprintf(label, sizeof label, "prefix of %zu/%zu bytes", n, b.len);
		if (peek_exact((const uint8_t *)b.data, n, label) == 0)
			accepted++;
	}
	/* Fields are packed in number order; the prefixes that end right after
	 * from, to, sent_at and body are complete envelopes, no other is. */
	if (peek_exact((const uint8_t *)b.data, b.len, "whole frame") != 0)
		fail_msg("the whole frame was refused");
	if (accepted != 4)
		fail_msg("%zu prefixes accepted, want 4 (after from, to, sent_at, body)", accepted);
	loom_buf_release(&b);
}

/* xorshift64*: reproducible pseudo-random bytes without libc state. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static void test_peek_random_bytes(void **state)
{
	(void)state;
	uint8_t bytes[128];
	char label[64];
	for (int i = 0; i < 10000; i++) {
		size_t len = (size_t)(rng() % sizeof bytes);
		for (size_t j = 0; j < len; j++)
			bytes[j] = (uint8_t)rng();
		/* bias some toward plausible tags so the walk gets further */
		if (len && i % 2)
			bytes[0] = (uint8_t)(((rng() % 9) << 3) | (rng() % 8));
		snprintf(label, sizeof label, "random string %d (%zu bytes)", i, len);
		(void)peek_exact(bytes, len, label);
	}
}

/* Random mutations of a good frame: peek stays in bounds, and whenever
 * unpack accepts a frame, peek accepts it too with the same fields. */
static void test_peek_mutations(void **state)
{
	(void)state;
	loom_buf_t b = LOOM_BUF_INIT;
	packed_good_frame(&b);
	uint8_t *m = loom_malloc(b.len);
	char label[64];
	for (int i = 0; i < 10000; i++) {
		memcpy(m, b.data, b.len);
		int flips = 1 + (int)(rng() % 3);
		for (int f = 0; f < flips; f++)
			m[rng() % b.len] = (uint8_t)rng();
		size_t len = b.len - (size_t)(rng() % 4 == 0 ? rng() % b.len : 0);
		snprintf(label, sizeof label, "mutation %d", i);
		int rc = peek_exact(m, len, label);
		uint8_t *frame = exact_copy(m, len);
		const char *err = NULL;
		Loom__Envelope *env = loom_envelope_unpack(frame, len, &err);
		if (env) {
			if (rc != 0)
				fail_msg("%s: unpack accepts what peek refuses", label);
			loom_env_peek_t pk;
			if (loom_envelope_peek(frame, len, &pk, &err) != 0)
				fail_msg("%s: peek refused the second time", label);
			peek_matches(label, env, &pk, frame, len);
			loom_envelope_free(&env);
		}
		free(frame);
	}
	free(m);
	loom_buf_release(&b);
}

/* ---- small helpers -------------------------------------------------------- */

static void test_msgid_format(void **state)
{
	(void)state;
	static const uint8_t id16[16] = { 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
		0x89, 0xab, 0xcd, 0xef, 0xf0, 0x10, 0x7f, 0xff };
	static const struct {
		const char *label;
		const char *prefix;      /* already in the buffer */
		const uint8_t *id;
		size_t len;
		const char *want;        /* whole buffer afterwards */
	} cases[] = {
		{ "16 bytes", "", id16, 16, "000102030405060789abcdeff0107fff" },
		{ "empty id", "", NULL, 0, "-" },
		{ "one byte", "", id16 + 9, 1, "ab" },
		{ "appends", "id=", id16, 16, "id=000102030405060789abcdeff0107fff" },
		{ "empty appends", "id=", NULL, 0, "id=-" },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		loom_buf_t b = LOOM_BUF_INIT;
		loom_buf_adds(&b, cases[i].prefix);
		loom_msgid_format(&b, cases[i].id, cases[i].len);
		if (strcmp(loom_buf_cstr(&b), cases[i].want) != 0 || b.len != strlen(cases[i].want))
			fail_msg("%s: got '%s', want '%s'", cases[i].label, loom_buf_cstr(&b), cases[i].want);
		loom_buf_release(&b);
	}
}

static void test_addr_service_len(void **state)
{
	(void)state;
	static const struct {
		const char *label;
		const char *addr;
		size_t len;              /* bytes of addr to consider */
		size_t want;
	} cases[] = {
		{ "instance address", "engine@1f2e", 11, 6 },
		{ "service name", "engine", 6, 6 },
		{ "dotted service", "ma.hr@3", 7, 5 },
		{ "empty service part", "@1f2e", 5, 0 },
		{ "empty address", "", 0, 0 },
		{ "first '@' counts", "a@b@c", 5, 1 },
		{ "'@' past len ignored", "engine@1f2e", 4, 4 },
		{ "NUL before '@' is just a byte", "en\0gine@1", 9, 7 },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		size_t got = loom_addr_service_len(cases[i].addr, cases[i].len);
		if (got != cases[i].want)
			fail_msg("%s: got %zu, want %zu", cases[i].label, got, cases[i].want);
	}
}

static void test_service_name_valid(void **state)
{
	(void)state;
	fill_long();
	static const struct {
		const char *label;
		const char *s;
		size_t len;              /* SIZE_MAX: strlen(s) */
		bool want;
	} cases[] = {
		{ "plain", "engine", SIZE_MAX, true },
		{ "dotted", "ma.hr", SIZE_MAX, true },
		{ "all punctuation", "a-b_c.d", SIZE_MAX, true },
		{ "capital and digits", "Engine2", SIZE_MAX, true },
		{ "one letter", "a", SIZE_MAX, true },
		{ "128 bytes", long128, SIZE_MAX, true },
		{ "service part of an address", "engine@1", 6, true },
		{ "empty", "", SIZE_MAX, false },
		{ "starts with a digit", "1abc", SIZE_MAX, false },
		{ "starts with a dot", ".abc", SIZE_MAX, false },
		{ "starts with a dash", "-abc", SIZE_MAX, false },
		{ "space", "a b", SIZE_MAX, false },
		{ "at sign", "a@b", SIZE_MAX, false },
		{ "slash", "a/b", SIZE_MAX, false },
		{ "non-ASCII", "caf\xc3\xa9", SIZE_MAX, false },
		{ "embedded NUL", "ab\0c", 4, false },
		{ "129 bytes", long129, SIZE_MAX, false },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		size_t len = cases[i].len == SIZE_MAX ? strlen(cases[i].s) : cases[i].len;
		bool got = loom_service_name_valid(cases[i].s, len);
		if (got != cases[i].want)
			fail_msg("%s: got %s, want %s", cases[i].label, got ? "valid" : "invalid",
			    cases[i].want ? "valid" : "invalid");
	}
}

/* Bodies decoded in an arena equal the heap decode, whatever the arena's
 * first block and however many bodies share it (blocks are added). */
static void test_body_arena(void **state)
{
	(void)state;
	static const struct {
		const char *label;        /* what the case shows */
		size_t payload_len;       /* Ping payload size */
		bool hinted;              /* first block sized from the body */
		int decodes;              /* bodies decoded into one arena */
	} cases[] = {
		{ "small body, hinted", 10, true, 1 },
		{ "small body, no hint", 10, false, 1 },
		{ "body over the 64 KiB first block, no hint", 200000, false, 1 },
		{ "many bodies outgrow the hinted block", 3000, true, 50 },
		{ "empty payload", 0, true, 2 },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		const char *label = cases[i].label;
		uint8_t *payload = loom_malloc(cases[i].payload_len + 1);
		for (size_t j = 0; j < cases[i].payload_len; j++)
			payload[j] = (uint8_t)(j * 13 + i);
		Loom__Ping ping = LOOM__PING__INIT;
		ping.payload.data = payload;
		ping.payload.len = cases[i].payload_len;
		loom_env_hdr_t hdr = { .from = "engine@1", .to = "ma.x" };
		loom_buf_t out = LOOM_BUF_INIT;
		uint8_t id[LOOM_MSG_ID_LEN];
		loom_envelope_pack(&out, &hdr, &ping.base, id);
		const char *err = NULL;
		Loom__Envelope *env = loom_envelope_unpack(out.data, out.len, &err);
		if (env == NULL)
			fail_msg("%s: unpack failed: %s", label, err);
		loom_pbarena_t a;
		loom_pbarena_init(&a, cases[i].hinted ? env->body.len : 0);
		Loom__Ping **got = loom_calloc((size_t)cases[i].decodes, sizeof *got);
		for (int d = 0; d < cases[i].decodes; d++) {
			got[d] = (Loom__Ping *)loom_envelope_body_in(env, &loom__ping__descriptor, &a, &err);
			if (got[d] == NULL)
				fail_msg("%s: decode %d failed: %s", label, d, err);
		}
		for (int d = 0; d < cases[i].decodes; d++)
			if (got[d]->payload.len != cases[i].payload_len ||
			    (cases[i].payload_len && memcmp(got[d]->payload.data, payload, cases[i].payload_len) != 0))
				fail_msg("%s: body %d differs from what was packed", label, d);
		if (loom_envelope_body_in(env, &loom__pong__descriptor, &a, &err) != NULL || err == NULL)
			fail_msg("%s: a body of another type was decoded", label);
		loom_pbarena_release(&a);
		if (a.chunks != NULL)
			fail_msg("%s: release left blocks", label);
		free(got);
		loom_envelope_free(&env);
		loom_buf_release(&out);
		free(payload);
	}
}

int main(void)
{
	fill_long();
	enum { FIXED = 9 };
	size_t n = FIXED + N_ELEMS(body_cases) + N_ELEMS(unpack_cases) + N_ELEMS(peek_cases) +
	    N_ELEMS(unpack_raw_cases);
	struct CMUnitTest *tests = loom_calloc(n, sizeof *tests);
	char **names = loom_calloc(n, sizeof *names);
	size_t k = 0, nn = 0;
	tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_pack_round_trip);
	tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_msgid_distinct);
	tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_peek_every_prefix);
	tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_peek_random_bytes);
	tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_peek_mutations);
	tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_msgid_format);
	tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_addr_service_len);
	tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_service_name_valid);
	tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_body_arena);
	for (size_t i = 0; i < N_ELEMS(body_cases); i++) {
		tests[k] = (struct CMUnitTest)cmocka_unit_test_prestate(test_body_case, (void *)&body_cases[i]);
		tests[k++].name = names[nn++] = loom_sprintf("body: %s", body_cases[i].label);
	}
	for (size_t i = 0; i < N_ELEMS(unpack_cases); i++) {
		tests[k] = (struct CMUnitTest)cmocka_unit_test_prestate(test_unpack_case, (void *)&unpack_cases[i]);
		tests[k++].name = names[nn++] = loom_sprintf("unpack: %s", unpack_cases[i].label);
	}
	for (size_t i = 0; i < N_ELEMS(peek_cases); i++) {
		tests[k] = (struct CMUnitTest)cmocka_unit_test_prestate(test_peek_case, (void *)&peek_cases[i]);
		tests[k++].name = names[nn++] = loom_sprintf("peek: %s", peek_cases[i].label);
	}
	for (size_t i = 0; i < N_ELEMS(unpack_raw_cases); i++) {
		tests[k] = (struct CMUnitTest)cmocka_unit_test_prestate(test_unpack_raw_case, (void *)&unpack_raw_cases[i]);
		tests[k++].name = names[nn++] = loom_sprintf("unpack raw: %s", unpack_raw_cases[i].label);
	}
	int failed = _cmocka_run_group_tests("test_envelope", tests, k, NULL, NULL);
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	free(names);
	free(tests);
	return failed;
}
