/* loom_badpeer.c - a hostile bus peer for the tests: connects to the broker
 * as "bad@0001" and sends what a broken or malicious process might:
 *   1. bytes that are no protobuf at all
 *   2. an envelope whose sender claims another peer's address
 *   3. a message split over three frames
 *   4. an envelope to SERVICE with type loom.Ping and a body that does not decode
 *   5. an envelope to SERVICE with an unknown type
 * then checks it gets a loom.Error MALFORMED reply for 4 and UNKNOWN_TYPE-
 * or-MALFORMED for 5, and prints "badpeer: done". Usage: loom-badpeer ROUTER SERVICE
 */
#include "loom_buf.h"
#include "loom_envelope.h"
#include "bus.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static void send_env(void *s, const char *from, const char *to, const char *type, const void *body, size_t blen,
    uint8_t *ret_id)
{
	uint8_t id[LOOM_MSG_ID_LEN];
	loom_msgid_new(id);
	Loom__Envelope env = LOOM__ENVELOPE__INIT;
	env.version = LOOM_ENVELOPE_VERSION;
	env.type = (char *)type;
	env.msg_id.data = id;
	env.msg_id.len = sizeof id;
	env.from = (char *)from;
	env.to = (char *)to;
	env.body.data = (uint8_t *)body;
	env.body.len = blen;
	size_t n = loom__envelope__get_packed_size(&env);
	uint8_t *buf = malloc(n);
	loom__envelope__pack(&env, buf);
	zmq_send(s, buf, n, 0);
	free(buf);
	if (ret_id)
		memcpy(ret_id, id, sizeof id);
}

/* Waits for an Error reply correlated with id; returns its code or -1. */
static int wait_error(void *s, const uint8_t *id)
{
	for (int i = 0; i < 50; i++) {
		zmq_pollitem_t it = { .socket = s, .events = ZMQ_POLLIN };
		if (zmq_poll(&it, 1, 100) <= 0)
			continue;
		zmq_msg_t m;
		zmq_msg_init(&m);
		zmq_msg_recv(&m, s, 0);
		const char *err;
		Loom__Envelope *env = loom_envelope_unpack(zmq_msg_data(&m), zmq_msg_size(&m), &err);
		zmq_msg_close(&m);
		if (env == NULL)
			continue;
		int code = -2;
		if (env->correlation_id.len == LOOM_MSG_ID_LEN && memcmp(env->correlation_id.data, id, LOOM_MSG_ID_LEN) == 0 &&
		    loom_envelope_is(env, &loom__error__descriptor)) {
			Loom__Error *e = (Loom__Error *)loom_envelope_body(env, &loom__error__descriptor, &err);
			code = e ? (int)e->code : -1;
			printf("badpeer: got error code=%d message=%s\n", code, e ? e->message : "?");
			if (e)
				protobuf_c_message_free_unpacked(&e->base, NULL);
		}
		loom_envelope_free(&env);
		if (code != -2)
			return code;
	}
	return -1;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: loom-badpeer ROUTER SERVICE\n");
		return 2;
	}
	void *ctx = zmq_ctx_new();
	void *s = zmq_socket(ctx, ZMQ_DEALER);
	int zero = 0;
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
	zmq_setsockopt(s, ZMQ_ROUTING_ID, "bad@0001", 8);
	if (zmq_connect(s, argv[1]) < 0) {
		fprintf(stderr, "badpeer: cannot connect: %s\n", zmq_strerror(zmq_errno()));
		return 1;
	}
	zmq_send(s, "this is not protobuf \xff\xff\xff", 24, 0);
	send_env(s, "echo@spoofed", argv[2], "loom.Ping", "", 0, NULL);
	zmq_send(s, "a", 1, ZMQ_SNDMORE);
	zmq_send(s, "b", 1, ZMQ_SNDMORE);
	zmq_send(s, "c", 1, 0);
	uint8_t id4[LOOM_MSG_ID_LEN], id5[LOOM_MSG_ID_LEN];
	send_env(s, "bad@0001", argv[2], "loom.Ping", "\x0a\xff\xff", 3, id4);
	int c4 = wait_error(s, id4);
	send_env(s, "bad@0001", argv[2], "loom.NoSuchType", "\x01", 1, id5);
	int c5 = wait_error(s, id5);
	int ok = c4 == LOOM__ERROR__CODE__MALFORMED &&
	    (c5 == LOOM__ERROR__CODE__UNKNOWN_TYPE || c5 == LOOM__ERROR__CODE__MALFORMED);
	printf("badpeer: %s\n", ok ? "done" : "unexpected replies");
	zmq_close(s);
	zmq_ctx_term(ctx);
	return ok ? 0 : 1;
}
