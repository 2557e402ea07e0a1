/* broker.c - loom-broker: routes directed messages between services, fans
 * out events, mirrors every frame to the tap, and keeps peers alive.
 *
 * Peer life cycle (this block and the functions named change together):
 *
 *   (unknown) --Hello--> registered                      peer_hello()
 *   (unknown) --any other message--> registered          peer_implicit()
 *        implicitly from its address, its message routed, and it is told
 *        NOT_REGISTERED so it sends a Hello (this is how clients come back
 *        after a broker restart without losing the message in hand)
 *   registered --Bye--> (forgotten)                      peer_forget()
 *   registered --silent for liveness x heartbeat--> (forgotten)  on_heartbeat()
 *   registered --a send fails with EHOSTUNREACH--> (forgotten)   route_to_peer()
 *
 * Directed messages: frame [routing id][envelope]. The broker reads only the
 * routing fields (loom_envelope_peek: no allocation) and checks that `from`
 * is the sender's own routing id, so no peer can speak for another. `to` is
 * "broker" (control), an instance address "service@id" (exact), or a
 * service name (round-robin over its instances). A message nobody can take
 * is answered with loom.Error NO_SUCH_SERVICE, unless it is itself a reply
 * (replies to a vanished requester are dropped and counted).
 */
#include "broker.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_envelope.h"
#include "loom_log.h"
#include "loom_tapwire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define BUS_VERSION 1
#define BATCH 512

static void service_remove_peer(broker_t *b, peer_t *p)
{
	service_t *s = loom_map_gets(b->services, p->service);
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i] == p) {
			memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof *s->v);
			s->n--;
			break;
		}
	}
	if (s->n == 0) {
		loom_map_removes(b->services, s->name);
		free(s->name);
		free(s->v);
		free(s);
	}
}

static void peer_free(peer_t *p)
{
	free(p->id);
	free(p->service);
	free(p->process);
	free(p->host);
	free(p->address);
	free(p);
}

static void peer_forget(broker_t *b, peer_t *p, const char *why)
{
	loom_info("peer %s service=%s instance=%s", why, p->service, p->id);
	service_remove_peer(b, p);
	loom_map_remove(b->peers, p->id, p->idlen);
	peer_free(p);
}

static peer_t *peer_add(broker_t *b, const char *id, size_t idlen, const char *service, size_t slen)
{
	peer_t *p = loom_calloc(1, sizeof *p);
	p->id = loom_strndup(id, idlen);
	p->idlen = idlen;
	p->service = loom_strndup(service, slen);
	p->process = loom_strdup("?");
	p->host = loom_strdup("");
	p->address = loom_strdup("");
	p->registered_us = loom_now_us();
	p->last_seen_ms = p->last_sent_ms = loom_mono_ms();
	loom_map_put(b->peers, p->id, p->idlen, p);
	service_t *s = loom_map_gets(b->services, p->service);
	if (s == NULL) {
		s = loom_calloc(1, sizeof *s);
		s->name = loom_strdup(p->service);
		loom_map_puts(b->services, s->name, s);
	}
	s->v = loom_realloc(s->v, (s->n + 1) * sizeof *s->v);
	s->v[s->n++] = p;
	return p;
}

/* Sends the mirrored frames gathered so far as one tap message. */
static void tap_flush(broker_t *b)
{
	if (b->tapbuf.len <= 1)
		return;
	/* A slow tap loses batches (non-blocking send); the bus never waits for it. */
	(void)zmq_send(b->tap, b->tapbuf.data, b->tapbuf.len, ZMQ_DONTWAIT);
	loom_buf_reset(&b->tapbuf);
}

/* Adds an envelope frame to the tap's batch when anyone listens. */
static void tap_mirror(broker_t *b, char kind, const char *detail, size_t dlen, zmq_msg_t *env)
{
	if (b->tap_subs == 0)
		return;
	if (dlen > 0xffff)
		dlen = 0xffff;
	size_t elen = zmq_msg_size(env);
	if (b->tapbuf.len == 0)
		loom_buf_addc(&b->tapbuf, LOOM_TAP_VERSION);
	uint8_t h[3] = { (uint8_t)kind, (uint8_t)(dlen >> 8), (uint8_t)dlen };
	uint8_t l[4] = { (uint8_t)(elen >> 24), (uint8_t)(elen >> 16), (uint8_t)(elen >> 8), (uint8_t)elen };
	loom_buf_add(&b->tapbuf, h, 3);
	loom_buf_add(&b->tapbuf, detail, dlen);
	loom_buf_add(&b->tapbuf, l, 4);
	loom_buf_add(&b->tapbuf, zmq_msg_data(env), elen);
	if (b->tapbuf.len >= LOOM_TAP_BATCH_MAX)
		tap_flush(b);
}

/* Sends [peer id][frame]; the frame is consumed on success. Returns 0, or -1
 * when the peer is gone (the peer is forgotten). */
static int send_to_peer(broker_t *b, peer_t *p, zmq_msg_t *frame)
{
	if (zmq_send(b->router, p->id, p->idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
	    zmq_msg_send(frame, b->router, ZMQ_DONTWAIT) < 0) {
		if (errno == EHOSTUNREACH) {
			peer_forget(b, p, "gone (unreachable)");
			return -1;
		}
		/* EAGAIN: its queue is full (a stuck peer); the frame is dropped. */
		loom_warning("dropped message for slow peer instance=%s reason=%s", p->id, zmq_strerror(errno));
		return -1;
	}
	p->msgs_out++;
	p->last_sent_ms = loom_mono_ms();
	return 0;
}

/* Encodes body from the broker to peer p and sends it; -1 when it could not
 * be sent (p may then be forgotten and freed: see send_to_peer). */
static int send_body(broker_t *b, peer_t *p, const ProtobufCMessage *body, const uint8_t *corr)
{
	loom_buf_t buf = LOOM_BUF_INIT;
	loom_env_hdr_t hdr = { .from = LOOM_BROKER_ADDR, .to = p->id, .correlation = corr,
		.correlation_len = corr ? LOOM_MSG_ID_LEN : 0 };
	loom_envelope_pack(&buf, &hdr, body, NULL);
	zmq_msg_t m;
	zmq_msg_init_size(&m, buf.len);
	memcpy(zmq_msg_data(&m), buf.data, buf.len);
	loom_buf_release(&buf);
	tap_mirror(b, LOOM_TAP_DIRECT, p->id, p->idlen, &m);
	if (send_to_peer(b, p, &m) < 0) {
		zmq_msg_close(&m);
		return -1;
	}
	return 0;
}

static int send_error(broker_t *b, peer_t *p, const uint8_t *corr, Loom__Error__Code code,
    bool retryable, const char *text)
{
	Loom__Error e = LOOM__ERROR__INIT;
	e.code = code;
	e.retryable = retryable;
	e.message = (char *)text;
	return send_body(b, p, &e.base, corr);
}

static void peer_hello(broker_t *b, peer_t *p, const Loom__Envelope *env, zmq_msg_t *frame)
{
	const char *err;
	Loom__Hello *h = (Loom__Hello *)loom_envelope_body(env, &loom__hello__descriptor, &err);
	if (h == NULL) {
		loom_warning("dropped malformed Hello from instance=%s reason=%s", p->id, loom_log_kv_quote(err));
		b->dropped++;
		return;
	}
	if (strcmp(h->service, p->service) != 0) {
		char *text = loom_sprintf("Hello names service '%s' but the address says '%s'", h->service, p->service);
		loom_warning("refused Hello instance=%s reason=%s", p->id, loom_log_kv_quote(text));
		send_error(b, p, env->msg_id.data, LOOM__ERROR__CODE__BAD_REQUEST, false, text);
		free(text);
		protobuf_c_message_free_unpacked(&h->base, NULL);
		return;
	}
	bool again = p->said_hello;
	free(p->process);
	p->process = loom_strndup(h->process, strnlen(h->process, 64));
	free(p->host);
	p->host = loom_strndup(h->host, strnlen(h->host, 255));
	p->pid = h->pid;
	p->said_hello = true;
	const char *paddr = zmq_msg_gets(frame, "Peer-Address");
	if (paddr) {
		free(p->address);
		p->address = loom_strdup(paddr);
	}
	if (again)
		loom_debug("peer said hello again service=%s instance=%s", p->service, p->id);
	else
		loom_info("peer registered service=%s instance=%s process=%s pid=%u host=%s",
		    p->service, p->id, p->process, p->pid, loom_log_kv_quote(p->host));
	Loom__Welcome w = LOOM__WELCOME__INIT;
	w.instance = p->id;
	w.bus_version = BUS_VERSION < h->bus_version ? BUS_VERSION : h->bus_version;
	w.heartbeat_ms = (uint32_t)b->heartbeat_ms;
	w.liveness = (uint32_t)b->liveness;
	send_body(b, p, &w.base, env->msg_id.data);
	protobuf_c_message_free_unpacked(&h->base, NULL);
}

static void services_reply(broker_t *b, peer_t *p, const Loom__Envelope *env)
{
	const char *err;
	Loom__ServicesRequest *rq = (Loom__ServicesRequest *)loom_envelope_body(env,
	    &loom__services_request__descriptor, &err);
	if (rq == NULL) {
		send_error(b, p, env->msg_id.data, LOOM__ERROR__CODE__MALFORMED, false, err);
		return;
	}
	size_t n = loom_map_count(b->peers), k = 0;
	Loom__ServiceInstance *items = loom_calloc(n ? n : 1, sizeof *items);
	Loom__ServiceInstance **ptrs = loom_calloc(n ? n : 1, sizeof *ptrs);
	int64_t now = loom_mono_ms();
	size_t pos = 0;
	void *v;
	while (loom_map_next(b->peers, &pos, NULL, NULL, &v)) {
		peer_t *q = v;
		if (rq->service[0] && strcmp(rq->service, q->service) != 0)
			continue;
		Loom__ServiceInstance *si = &items[k];
		loom__service_instance__init(si);
		si->service = q->service;
		si->instance = q->id;
		si->process = q->process;
		si->pid = q->pid;
		si->host = q->host;
		si->peer_address = q->address;
		si->registered_at = q->registered_us;
		si->last_seen_ms = now - q->last_seen_ms;
		si->msgs_in = q->msgs_in;
		si->msgs_out = q->msgs_out;
		ptrs[k++] = si;
	}
	Loom__ServicesReply r = LOOM__SERVICES_REPLY__INIT;
	r.n_instances = k;
	r.instances = ptrs;
	r.broker_uptime_ms = now - b->started_ms;
	r.routed = b->routed;
	r.events = b->events;
	r.dropped = b->dropped;
	send_body(b, p, &r.base, env->msg_id.data);
	free(items);
	free(ptrs);
	protobuf_c_message_free_unpacked(&rq->base, NULL);
}

static void broker_pong(broker_t *b, peer_t *p, const Loom__Envelope *env)
{
	const char *err;
	Loom__Ping *ping = (Loom__Ping *)loom_envelope_body(env, &loom__ping__descriptor, &err);
	if (ping == NULL) {
		send_error(b, p, env->msg_id.data, LOOM__ERROR__CODE__MALFORMED, false, err);
		return;
	}
	Loom__Pong pong = LOOM__PONG__INIT;
	pong.payload = ping->payload;
	pong.process = "loom-broker";
	pong.pid = (uint32_t)getpid();
	pong.uptime_ms = loom_mono_ms() - b->started_ms;
	if (ping->probe)
		pong.probe_error = "the broker opens no sealed probes";
	send_body(b, p, &pong.base, env->msg_id.data);
	protobuf_c_message_free_unpacked(&ping->base, NULL);
}

/* A message addressed to the broker itself. */
static void control(broker_t *b, peer_t *p, zmq_msg_t *frame)
{
	const char *err;
	Loom__Envelope *env = loom_envelope_unpack(zmq_msg_data(frame), zmq_msg_size(frame), &err);
	if (env == NULL) {
		loom_warning("dropped malformed message from instance=%s reason=%s", p->id, loom_log_kv_quote(err));
		b->dropped++;
		return;
	}
	if (loom_envelope_is(env, &loom__heartbeat__descriptor)) {
		/* last_seen is already updated */
	} else if (loom_envelope_is(env, &loom__hello__descriptor)) {
		peer_hello(b, p, env, frame);
	} else if (loom_envelope_is(env, &loom__bye__descriptor)) {
		peer_forget(b, p, "left");
	} else if (loom_envelope_is(env, &loom__services_request__descriptor)) {
		services_reply(b, p, env);
	} else if (loom_envelope_is(env, &loom__ping__descriptor)) {
		broker_pong(b, p, env);
	} else if (env->correlation_id.len == 0) {
		char *text = loom_sprintf("loom-broker does not handle '%s'", env->type);
		send_error(b, p, env->msg_id.data, LOOM__ERROR__CODE__UNKNOWN_TYPE, false, text);
		free(text);
	}
	loom_envelope_free(&env);
}

/* Picks the instance a directed message goes to, or NULL. */
static peer_t *route_target(broker_t *b, const loom_env_peek_t *pk)
{
	if (memchr(pk->to, '@', pk->to_len))
		return loom_map_get(b->peers, pk->to, pk->to_len);
	service_t *s = loom_map_get(b->services, pk->to, pk->to_len);
	if (s == NULL || s->n == 0)
		return NULL;
	peer_t *p = s->v[s->rr % s->n];
	s->rr = (s->rr + 1) % s->n;
	return p;
}

static void route(broker_t *b, peer_t *from, const loom_env_peek_t *pk, zmq_msg_t *frame)
{
	/* A send failure forgets the target; try the service's other instances. */
	for (int attempt = 0; attempt < 8; attempt++) {
		peer_t *to = route_target(b, pk);
		if (to == NULL)
			break;
		tap_mirror(b, LOOM_TAP_DIRECT, to->id, to->idlen, frame);
		if (send_to_peer(b, to, frame) == 0) {
			b->routed++;
			return;
		}
		if (memchr(pk->to, '@', pk->to_len))
			break;
	}
	b->dropped++;
	tap_mirror(b, LOOM_TAP_UNDELIVERED, "no such service", 15, frame);
	bool is_reply = pk->correlation_len != 0;
	if (is_reply) {
		loom_debug("dropped reply for vanished instance to=%.*s from=%s", (int)pk->to_len, pk->to, from->id);
		return;
	}
	char *text = pk->to_len ? loom_sprintf("no service '%.*s' is registered", (int)pk->to_len, pk->to)
				: loom_strdup("message has no receiver address");
	loom_debug("undeliverable to=%.*s from=%s", (int)pk->to_len, pk->to, from->id);
	send_error(b, from, pk->msg_id, LOOM__ERROR__CODE__NO_SUCH_SERVICE, true, text);
	free(text);
}

/* A routing id as it may be logged: printable ASCII as is, anything else
 * (ZeroMQ's generated ids, hostile bytes) as hex. Static buffer. */
static const char *safe_id(const char *id, size_t idlen)
{
	static char out[2 * 64 + 8];
	size_t n = idlen > 64 ? 64 : idlen;
	bool printable = n > 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)id[i] <= ' ' || (unsigned char)id[i] >= 0x7f || id[i] == '"')
			printable = false;
	if (printable) {
		memcpy(out, id, n);
		out[n] = '\0';
	} else {
		static const char hex[] = "0123456789abcdef";
		memcpy(out, "0x", 2);
		for (size_t i = 0; i < n; i++) {
			out[2 + 2 * i] = hex[(unsigned char)id[i] >> 4];
			out[3 + 2 * i] = hex[(unsigned char)id[i] & 15];
		}
		out[2 + 2 * n] = '\0';
	}
	return out;
}

/* True when every byte of an instance address is printable and not a space. */
static bool addr_printable(const char *id, size_t idlen)
{
	for (size_t i = 0; i < idlen; i++)
		if ((unsigned char)id[i] <= ' ' || (unsigned char)id[i] >= 0x7f)
			return false;
	return idlen > 0;
}

/* Reads [id][frame] from the ROUTER; 0 when nothing is waiting. */
static int router_one(broker_t *b)
{
	zmq_msg_t idm, frame;
	zmq_msg_init(&idm);
	if (zmq_msg_recv(&idm, b->router, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&idm);
		return 0;
	}
	zmq_msg_init(&frame);
	int nframes = 1;
	bool more = zmq_msg_more(&idm);
	if (more) {
		zmq_msg_recv(&frame, b->router, 0);
		nframes++;
		more = zmq_msg_more(&frame);
		while (more) { /* surplus frames: drain */
			zmq_msg_t x;
			zmq_msg_init(&x);
			zmq_msg_recv(&x, b->router, 0);
			more = zmq_msg_more(&x);
			zmq_msg_close(&x);
			nframes++;
		}
	}
	const char *id = zmq_msg_data(&idm);
	size_t idlen = zmq_msg_size(&idm);
	peer_t *p = loom_map_get(b->peers, id, idlen);
	const char *err = NULL;
	loom_env_peek_t pk;
	if (nframes != 2) {
		err = "expected exactly one envelope frame";
	} else if (loom_envelope_peek(zmq_msg_data(&frame), zmq_msg_size(&frame), &pk, &err) == 0 &&
	    (pk.from_len != idlen || memcmp(pk.from, id, idlen) != 0)) {
		err = "sender address does not match its connection";
	}
	if (err) {
		b->dropped++;
		loom_warning("dropped malformed message from peer=%s reason=%s", safe_id(id, idlen),
		    loom_log_kv_quote(err));
		goto out;
	}
	if (p == NULL) {
		size_t slen = loom_addr_service_len(id, idlen);
		if (slen == idlen || !loom_service_name_valid(id, slen) || !addr_printable(id, idlen) ||
		    idlen > LOOM_ADDR_MAX) {
			b->dropped++;
			loom_warning("dropped message from peer with a bad address peer=%s", safe_id(id, idlen));
			goto out;
		}
		p = peer_add(b, id, idlen, id, slen);
		bool is_hello = pk.type_len == strlen(loom__hello__descriptor.name) &&
		    memcmp(pk.type, loom__hello__descriptor.name, pk.type_len) == 0;
		if (!is_hello) {
			loom_info("peer registered from its traffic service=%s instance=%s", p->service, p->id);
			if (send_error(b, p, NULL, LOOM__ERROR__CODE__NOT_REGISTERED, true, "say Hello") < 0)
				goto out; /* p may be gone (unreachable) */
		}
	}
	p->last_seen_ms = loom_mono_ms();
	p->msgs_in++;
	if (pk.to_len == strlen(LOOM_BROKER_ADDR) && memcmp(pk.to, LOOM_BROKER_ADDR, pk.to_len) == 0) {
		tap_mirror(b, LOOM_TAP_DIRECT, LOOM_BROKER_ADDR, strlen(LOOM_BROKER_ADDR), &frame);
		control(b, p, &frame);
	} else {
		route(b, p, &pk, &frame);
	}
out:
	zmq_msg_close(&idm);
	zmq_msg_close(&frame);
	return 1;
}

static int on_router(loom_loop_t *loop, void *arg)
{
	(void)loop;
	broker_t *b = arg;
	for (int i = 0; i < BATCH; i++)
		if (router_one(b) == 0)
			break;
	tap_flush(b);
	return 0;
}

/* Events: [topic][envelope] from publishers to subscribers. */
static int on_xsub(loom_loop_t *loop, void *arg)
{
	(void)loop;
	broker_t *b = arg;
	for (int i = 0; i < BATCH; i++) {
		zmq_msg_t topic, frame;
		zmq_msg_init(&topic);
		if (zmq_msg_recv(&topic, b->xsub, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&topic);
			break;
		}
		zmq_msg_init(&frame);
		int nframes = 1;
		bool more = zmq_msg_more(&topic);
		if (more) {
			zmq_msg_recv(&frame, b->xsub, 0);
			nframes++;
			more = zmq_msg_more(&frame);
			while (more) {
				zmq_msg_t x;
				zmq_msg_init(&x);
				zmq_msg_recv(&x, b->xsub, 0);
				more = zmq_msg_more(&x);
				zmq_msg_close(&x);
				nframes++;
			}
		}
		loom_env_peek_t pk;
		const char *err = NULL;
		if (nframes != 2)
			err = "expected [topic][envelope]";
		else
			(void)loom_envelope_peek(zmq_msg_data(&frame), zmq_msg_size(&frame), &pk, &err);
		if (err) {
			b->dropped++;
			loom_warning("dropped malformed event topic=%s reason=%s",
			    loom_log_kv_quoten(zmq_msg_data(&topic), zmq_msg_size(&topic) < 128 ? zmq_msg_size(&topic) : 128),
			    loom_log_kv_quote(err));
		} else {
			tap_mirror(b, LOOM_TAP_EVENT, zmq_msg_data(&topic), zmq_msg_size(&topic), &frame);
			zmq_msg_send(&topic, b->xpub, ZMQ_SNDMORE | ZMQ_DONTWAIT);
			zmq_msg_send(&frame, b->xpub, ZMQ_DONTWAIT);
			b->events++;
		}
		zmq_msg_close(&topic);
		zmq_msg_close(&frame);
	}
	tap_flush(b);
	return 0;
}

/* Subscriptions are read and passed upstream (harmless: the broker itself
 * subscribes the publish side to everything, see broker_start). */
static int on_xpub(loom_loop_t *loop, void *arg)
{
	(void)loop;
	broker_t *b = arg;
	for (int i = 0; i < BATCH; i++) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, b->xpub, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			break;
		}
		zmq_msg_send(&m, b->xsub, ZMQ_DONTWAIT);
		zmq_msg_close(&m);
	}
	return 0;
}

/* The tap is an XPUB so the broker knows whether anyone listens. */
static int on_tap_subs(loom_loop_t *loop, void *arg)
{
	(void)loop;
	broker_t *b = arg;
	for (;;) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, b->tap, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			break;
		}
		const unsigned char *d = zmq_msg_data(&m);
		if (zmq_msg_size(&m) >= 1) {
			if (d[0] == 1) {
				b->tap_subs++;
				loom_info("tap listener attached subscriptions=%u", b->tap_subs);
			} else if (d[0] == 0 && b->tap_subs > 0) {
				b->tap_subs--;
				loom_info("tap listener detached subscriptions=%u", b->tap_subs);
			}
		}
		zmq_msg_close(&m);
	}
	return 0;
}

static int on_heartbeat(loom_loop_t *loop, void *arg)
{
	(void)loop;
	broker_t *b = arg;
	int64_t now = loom_mono_ms();
	size_t pos = 0;
	void *v;
	while (loom_map_next(b->peers, &pos, NULL, NULL, &v)) {
		peer_t *p = v;
		int64_t silent = now - p->last_seen_ms;
		if (silent > b->heartbeat_ms * b->liveness) {
			char *why = loom_sprintf("expired (silent %lld ms)", (long long)silent);
			peer_forget(b, p, why);
			free(why);
			continue;
		}
		if (now - p->last_sent_ms >= b->heartbeat_ms) {
			Loom__Heartbeat hb = LOOM__HEARTBEAT__INIT;
			hb.seq = ++b->hb_seq;
			send_body(b, p, &hb.base, NULL);
		}
	}
	tap_flush(b);
	return 0;
}

/* mkdir -p of the directory holding an ipc:// endpoint's socket file (the
 * run directory may not exist yet on a fresh state_dir). */
static int make_ipc_dir(const char *endpoint, char *errbuf, size_t errlen)
{
	char *dir = loom_strdup(endpoint + 6);
	char *slash = strrchr(dir, '/');
	int rc = 0;
	if (slash && slash != dir) {
		*slash = '\0';
		for (char *q = dir + 1;; q++) {
			if (*q != '/' && *q != '\0')
				continue;
			char c = *q;
			*q = '\0';
			if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
				snprintf(errbuf, errlen, "cannot create directory '%s' for '%s': %s", dir, endpoint,
				    strerror(errno));
				rc = -1;
				break;
			}
			if ((*q = c) == '\0')
				break;
		}
	}
	free(dir);
	return rc;
}

static void *bind_socket(broker_t *b, int type, const char *endpoint, const char *what,
    bool curve, const char **error_r)
{
	static char errbuf[512];
	const loom_deploy_t *cfg = loom_daemon_config(b->daemon);
	void *s = zmq_socket(loom_daemon_zctx(b->daemon), type);
	if (s == NULL) {
		snprintf(errbuf, sizeof errbuf, "cannot create %s socket: %s", what, zmq_strerror(errno));
		*error_r = errbuf;
		return NULL;
	}
	int zero = 0, hwm = 100000, one = 1;
	int64_t maxmsg = cfg->bus.max_frame;
	const loom_keypair_t *kp = curve ? loom_daemon_keypair(b->daemon) : NULL;
	/* Every (un)subscription on the tap, duplicates included, so tap_subs counts listeners. */
	bool tap = strcmp(what, "tap") == 0;
	const char *opt = NULL;
	if (zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero) < 0)
		opt = "ZMQ_LINGER";
	else if (zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm) < 0 ||
	    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm) < 0)
		opt = "ZMQ_SNDHWM/ZMQ_RCVHWM";
	else if (zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) < 0)
		opt = "ZMQ_MAXMSGSIZE";
	else if (type == ZMQ_ROUTER && (zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof one) < 0 ||
	    zmq_setsockopt(s, ZMQ_ROUTER_HANDOVER, &one, sizeof one) < 0))
		opt = "ZMQ_ROUTER_MANDATORY/ZMQ_ROUTER_HANDOVER";
	else if (curve && (zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one) < 0 ||
	    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, kp->sec, LOOM_KEY_LEN) < 0 ||
	    zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, "loom", 4) < 0))
		opt = "CURVE server (is libzmq built with CURVE?)";
	else if (tap && zmq_setsockopt(s, ZMQ_XPUB_VERBOSER, &one, sizeof one) < 0)
		opt = "ZMQ_XPUB_VERBOSER";
	if (opt) {
		snprintf(errbuf, sizeof errbuf, "cannot set %s on the %s socket: %s", opt, what, zmq_strerror(errno));
		goto fail;
	}
	if (strncmp(endpoint, "ipc://", 6) == 0 && make_ipc_dir(endpoint, errbuf, sizeof errbuf) < 0)
		goto fail;
	if (zmq_bind(s, endpoint) < 0) {
		snprintf(errbuf, sizeof errbuf, "cannot bind %s socket to '%s': %s", what, endpoint, zmq_strerror(errno));
		goto fail;
	}
	return s;
fail:
	zmq_close(s);
	*error_r = errbuf;
	return NULL;
}

static broker_t the_broker;

static int broker_start(loom_daemon_t *d, const char **error_r)
{
	broker_t *b = &the_broker;
	const loom_deploy_t *cfg = loom_daemon_config(d);
	b->daemon = d;
	b->peers = loom_map_new();
	b->services = loom_map_new();
	b->heartbeat_ms = cfg->bus.heartbeat_ms;
	b->liveness = cfg->bus.liveness;
	b->started_ms = loom_mono_ms();
	loom_daemon_set_user(d, b);
	bool curve = cfg->bus.curve;
	if (curve && broker_zap_start(b, error_r) < 0)
		return -1;
	if ((b->router = bind_socket(b, ZMQ_ROUTER, cfg->bus.router, "router", curve, error_r)) == NULL ||
	    (b->xsub = bind_socket(b, ZMQ_XSUB, cfg->bus.publish, "publish", curve, error_r)) == NULL ||
	    (b->xpub = bind_socket(b, ZMQ_XPUB, cfg->bus.subscribe, "subscribe", curve, error_r)) == NULL ||
	    (b->tap = bind_socket(b, ZMQ_XPUB, cfg->bus.tap, "tap", curve, error_r)) == NULL)
		return -1;
	/* Take every event from the publishers, whoever subscribes downstream:
	 * the tap mirrors every frame, so none may be filtered out at the source. */
	if (zmq_send(b->xsub, "\x01", 1, 0) < 0) {
		*error_r = "cannot subscribe the publish socket to all events";
		return -1;
	}
	loom_loop_t *loop = loom_daemon_loop(d);
	loom_loop_add_socket(loop, b->router, on_router, b);
	loom_loop_add_socket(loop, b->xsub, on_xsub, b);
	loom_loop_add_socket(loop, b->xpub, on_xpub, b);
	loom_loop_add_socket(loop, b->tap, on_tap_subs, b);
	/* Half the interval: a peer then never waits more than 1.5 intervals. */
	loom_loop_add_timer(loop, b->heartbeat_ms / 2 > 0 ? b->heartbeat_ms / 2 : 1, 0, on_heartbeat, b);
	loom_info("listening router=%s publish=%s subscribe=%s tap=%s curve=%s", cfg->bus.router,
	    cfg->bus.publish, cfg->bus.subscribe, cfg->bus.tap, curve ? "on" : "off");
	return 0;
}

static void broker_stop(loom_daemon_t *d)
{
	broker_t *b = loom_daemon_user(d);
	if (b == NULL)
		return;
	loom_info("routed=%llu events=%llu dropped=%llu peers=%zu", (unsigned long long)b->routed,
	    (unsigned long long)b->events, (unsigned long long)b->dropped, loom_map_count(b->peers));
	void *sockets[] = { b->router, b->xsub, b->xpub, b->tap };
	for (size_t i = 0; i < sizeof sockets / sizeof *sockets; i++)
		if (sockets[i])
			zmq_close(sockets[i]);
	broker_zap_stop(b);
	size_t pos = 0;
	void *v;
	while (loom_map_next(b->peers, &pos, NULL, NULL, &v))
		peer_free(v);
	pos = 0;
	while (loom_map_next(b->services, &pos, NULL, NULL, &v)) {
		service_t *s = v;
		free(s->name);
		free(s->v);
		free(s);
	}
	loom_map_destroy(&b->peers);
	loom_map_destroy(&b->services);
	loom_buf_release(&b->tapbuf);
}

const loom_daemon_def_t loom_broker_def = {
	.process = "loom-broker",
	.summary = "The Loom bus: routes messages between services, fans out events, mirrors all to the tap.",
	.default_service = "broker",
	.bus_client = false,
	.start = broker_start,
	.stop = broker_stop,
};
