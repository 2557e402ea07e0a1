/* loom_bus.c - bus client: registration, heartbeats, requests, events.
 * The dialog's state machine is described in loom_bus.h. */
#include "loom_bus.h"
#include "loom_alloc.h"
#include "loom_buf.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define BUS_VERSION 1
#define INBOX_MAX 100000

typedef struct inbox_item {
	Loom__Envelope *env;           /* received while waiting for a reply */
	struct inbox_item *next;       /* FIFO link */
} inbox_item_t;

struct loom_bus {
	void *zctx;                    /* borrowed ZeroMQ context */
	void *dealer;                  /* directed messages, to the broker's ROUTER */
	void *pub;                     /* events out, or NULL */
	void *sub;                     /* events in, or NULL */
	void *monitor;                 /* PAIR receiving the DEALER's transport events */
	char *service;                 /* registered service name */
	char *process;                 /* process kind */
	char *instance;                /* "service@xxxxxxxx", also the routing id */
	char *router;                  /* broker endpoint, for messages */
	long long heartbeat_ms;        /* heartbeat interval */
	unsigned liveness;             /* intervals of silence before LOST */
	loom_keypair_t keypair;        /* our keys (valid when have_keys) */
	bool have_keys;                /* keypair loaded */
	loom_bus_state_t state;        /* dialog state */
	bool auth_refused;             /* the broker refused our CURVE key */
	int64_t last_send;             /* monotonic ms of the last envelope sent */
	int64_t last_recv;             /* monotonic ms of the last envelope received */
	int64_t last_hello;            /* monotonic ms of the last Hello */
	int64_t started_us;            /* wall clock at creation, for Hello */
	int64_t started_ms;            /* monotonic at creation, for Pong uptime */
	uint64_t hb_seq;               /* heartbeat sequence */
	inbox_item_t *inbox_head;      /* messages kept for loom_bus_recv */
	inbox_item_t *inbox_tail;
	size_t inbox_len;
	loom_bus_state_fn *on_state;   /* state callback */
	void *state_arg;
	loom_buf_t frame;              /* reused encoding buffer */
	char *error;                   /* last error text returned by request */
	loom_bus_stats_t stats;        /* counters */
	char *role;                    /* Pong.role, or NULL */
	char *role_detail;             /* Pong.role_detail, or NULL */
	char *lease_host;              /* Pong.lease_host, or NULL */
};

void loom_bus_set_role(loom_bus_t *bus, const char *role, const char *detail, const char *lease_host)
{
	free(bus->role);
	free(bus->role_detail);
	free(bus->lease_host);
	bus->role = role ? loom_strdup(role) : NULL;
	bus->role_detail = detail ? loom_strdup(detail) : NULL;
	bus->lease_host = lease_host ? loom_strdup(lease_host) : NULL;
}

static void set_state(loom_bus_t *bus, loom_bus_state_t state, const char *detail)
{
	bus->state = state;
	if (bus->on_state)
		bus->on_state(bus, state, detail, bus->state_arg);
}

static const char *set_error(loom_bus_t *bus, char *text)
{
	free(bus->error);
	bus->error = text;
	return text;
}

static int setopt_int(void *s, int opt, int v)
{
	return zmq_setsockopt(s, opt, &v, sizeof v);
}

static int apply_curve(loom_bus_t *bus, void *s, const loom_bus_opts_t *opts)
{
	if (opts->server_key == NULL)
		return 0;
	if (zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, opts->server_key, LOOM_KEY_LEN) < 0 ||
	    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, bus->keypair.pub, LOOM_KEY_LEN) < 0 ||
	    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, bus->keypair.sec, LOOM_KEY_LEN) < 0)
		return -1;
	return 0;
}

static void *make_socket(loom_bus_t *bus, int type, const char *endpoint,
    const loom_bus_opts_t *opts, const char *what, char **ret_error)
{
	void *s = zmq_socket(bus->zctx, type);
	if (s == NULL) {
		*ret_error = loom_sprintf("cannot create %s socket: %s", what, zmq_strerror(errno));
		return NULL;
	}
	setopt_int(s, ZMQ_LINGER, 0);
	setopt_int(s, ZMQ_RECONNECT_IVL, 100);
	setopt_int(s, ZMQ_RECONNECT_IVL_MAX, 2000);
	setopt_int(s, ZMQ_SNDHWM, 100000);
	setopt_int(s, ZMQ_RCVHWM, 100000);
	if (apply_curve(bus, s, opts) < 0) {
		*ret_error = loom_sprintf("cannot set CURVE keys on %s socket: %s", what, zmq_strerror(errno));
		zmq_close(s);
		return NULL;
	}
	if (type == ZMQ_DEALER &&
	    zmq_setsockopt(s, ZMQ_ROUTING_ID, bus->instance, strlen(bus->instance)) < 0) {
		*ret_error = loom_sprintf("cannot set routing id '%s': %s", bus->instance, zmq_strerror(errno));
		zmq_close(s);
		return NULL;
	}
	if (zmq_connect(s, endpoint) < 0) {
		*ret_error = loom_sprintf("cannot connect %s socket to '%s': %s", what, endpoint, zmq_strerror(errno));
		zmq_close(s);
		return NULL;
	}
	return s;
}

static int send_frame(loom_bus_t *bus, void *sock, const char *topic, const char *to,
    const ProtobufCMessage *body, const uint8_t *corr, uint8_t ret_id[LOOM_MSG_ID_LEN],
    const char **error_r)
{
	loom_env_hdr_t hdr = { .from = bus->instance, .to = to, .correlation = corr,
		.correlation_len = corr ? LOOM_MSG_ID_LEN : 0 };
	loom_buf_reset(&bus->frame);
	loom_envelope_pack(&bus->frame, &hdr, body, ret_id);
	if (topic && zmq_send(sock, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		goto fail;
	if (zmq_send(sock, bus->frame.data, bus->frame.len, ZMQ_DONTWAIT) < 0)
		goto fail;
	if (sock == bus->dealer) {
		bus->last_send = loom_mono_ms();
		bus->stats.sent++;
	}
	return 0;
fail:
	*error_r = errno == EAGAIN ? "send queue full (broker not keeping up or unreachable)"
				   : zmq_strerror(errno);
	return -1;
}

static void send_hello(loom_bus_t *bus)
{
	Loom__Hello h = LOOM__HELLO__INIT;
	char host[256] = "";
	gethostname(host, sizeof host - 1);
	h.service = bus->service;
	h.process = bus->process;
	h.pid = (uint32_t)getpid();
	h.host = host;
	h.bus_version = BUS_VERSION;
	h.started_at = bus->started_us;
	h.heartbeat_ms = (uint32_t)bus->heartbeat_ms;
	const char *err;
	/* A full queue means the broker is away; the next tick tries again. */
	(void)send_frame(bus, bus->dealer, NULL, LOOM_BROKER_ADDR, &h.base, NULL, NULL, &err);
	bus->last_hello = loom_mono_ms();
}

int loom_bus_new(void *zctx, const loom_bus_opts_t *opts, loom_bus_t **ret_bus, char **ret_error)
{
	if (opts->service == NULL || !loom_service_name_valid(opts->service, strlen(opts->service))) {
		*ret_error = loom_sprintf("bad service name '%s': use letters, digits, '.', '_' and '-', starting with a letter",
		    opts->service ? opts->service : "");
		return -1;
	}
	if (opts->server_key && opts->keypair == NULL) {
		*ret_error = loom_strdup("CURVE needs this process's key pair");
		return -1;
	}
	loom_bus_t *bus = loom_calloc(1, sizeof *bus);
	bus->zctx = zctx;
	bus->service = loom_strdup(opts->service);
	bus->process = loom_strdup(opts->process ? opts->process : opts->service);
	bus->router = loom_strdup(opts->router);
	uint8_t rnd[4];
	randombytes_buf(rnd, sizeof rnd);
	bus->instance = loom_sprintf("%s@%02x%02x%02x%02x", opts->service, rnd[0], rnd[1], rnd[2], rnd[3]);
	bus->heartbeat_ms = opts->heartbeat_ms > 0 ? opts->heartbeat_ms : 1000;
	bus->liveness = opts->liveness > 0 ? opts->liveness : 3;
	if (opts->keypair) {
		bus->keypair = *opts->keypair;
		bus->have_keys = true;
	}
	bus->on_state = opts->on_state;
	bus->state_arg = opts->state_arg;
	bus->started_us = loom_now_us();
	bus->started_ms = bus->last_recv = loom_mono_ms();
	bus->state = LOOM_BUS_CONNECTING;

	bus->dealer = make_socket(bus, ZMQ_DEALER, opts->router, opts, "bus", ret_error);
	if (bus->dealer == NULL)
		goto fail;
	char *mon = loom_sprintf("inproc://loom-bus-monitor-%p", (void *)bus);
	int rc = zmq_socket_monitor(bus->dealer, mon,
	    ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
	    ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_DISCONNECTED);
	if (rc == 0) {
		bus->monitor = zmq_socket(zctx, ZMQ_PAIR);
		if (bus->monitor == NULL || zmq_connect(bus->monitor, mon) < 0)
			rc = -1;
	}
	free(mon);
	if (rc < 0) {
		*ret_error = loom_sprintf("cannot monitor bus socket: %s", zmq_strerror(errno));
		goto fail;
	}
	if (opts->publish) {
		bus->pub = make_socket(bus, ZMQ_PUB, opts->publish, opts, "publish", ret_error);
		if (bus->pub == NULL)
			goto fail;
	}
	if (opts->subscribe) {
		bus->sub = make_socket(bus, ZMQ_SUB, opts->subscribe, opts, "subscribe", ret_error);
		if (bus->sub == NULL)
			goto fail;
	}
	send_hello(bus);
	*ret_bus = bus;
	return 0;
fail:
	loom_bus_destroy(&bus, NULL);
	return -1;
}

void loom_bus_destroy(loom_bus_t **bus_p, const char *reason)
{
	loom_bus_t *bus = *bus_p;
	if (bus == NULL)
		return;
	if (reason && bus->dealer && bus->state == LOOM_BUS_UP) {
		Loom__Bye bye = LOOM__BYE__INIT;
		bye.reason = (char *)reason;
		const char *err;
		setopt_int(bus->dealer, ZMQ_LINGER, 200);
		(void)send_frame(bus, bus->dealer, NULL, LOOM_BROKER_ADDR, &bye.base, NULL, NULL, &err);
	}
	if (bus->dealer) {
		zmq_socket_monitor(bus->dealer, NULL, 0);
		zmq_close(bus->dealer);
	}
	if (bus->monitor)
		zmq_close(bus->monitor);
	if (bus->pub)
		zmq_close(bus->pub);
	if (bus->sub)
		zmq_close(bus->sub);
	while (bus->inbox_head) {
		inbox_item_t *it = bus->inbox_head;
		bus->inbox_head = it->next;
		loom_envelope_free(&it->env);
		free(it);
	}
	loom_keypair_wipe(&bus->keypair);
	loom_buf_release(&bus->frame);
	free(bus->service);
	free(bus->role);
	free(bus->role_detail);
	free(bus->lease_host);
	free(bus->process);
	free(bus->instance);
	free(bus->router);
	free(bus->error);
	free(bus);
	*bus_p = NULL;
}

const char *loom_bus_instance(const loom_bus_t *bus)
{
	return bus->instance;
}

loom_bus_state_t loom_bus_state(const loom_bus_t *bus)
{
	return bus->state;
}

void *loom_bus_socket(loom_bus_t *bus)
{
	return bus->dealer;
}

void *loom_bus_event_socket(loom_bus_t *bus)
{
	return bus->sub;
}

bool loom_bus_pending(void *arg)
{
	return ((loom_bus_t *)arg)->inbox_head != NULL;
}

void loom_bus_get_stats(const loom_bus_t *bus, loom_bus_stats_t *ret)
{
	*ret = bus->stats;
}

int loom_bus_send(loom_bus_t *bus, const char *to, const ProtobufCMessage *body,
    const uint8_t *correlation, uint8_t ret_msg_id[LOOM_MSG_ID_LEN], const char **error_r)
{
	if (to == NULL || to[0] == '\0' || strlen(to) > LOOM_ADDR_MAX) {
		*error_r = "bad receiver address";
		return -1;
	}
	return send_frame(bus, bus->dealer, NULL, to, body, correlation, ret_msg_id, error_r);
}

int loom_bus_reply(loom_bus_t *bus, const Loom__Envelope *req, const ProtobufCMessage *body,
    const char **error_r)
{
	return loom_bus_send(bus, req->from, body, req->msg_id.data, NULL, error_r);
}

int loom_bus_reply_error(loom_bus_t *bus, const Loom__Envelope *req, Loom__Error__Code code,
    bool retryable, const char *message, const char **error_r)
{
	Loom__Error e = LOOM__ERROR__INIT;
	e.code = code;
	e.retryable = retryable;
	e.message = (char *)message;
	return loom_bus_reply(bus, req, &e.base, error_r);
}

/* Reads the DEALER's transport events (auth refusals, disconnects). */
static void drain_monitor(loom_bus_t *bus)
{
	if (bus->monitor == NULL)
		return;
	for (;;) {
		zmq_msg_t ev, addr;
		zmq_msg_init(&ev);
		if (zmq_msg_recv(&ev, bus->monitor, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&ev);
			return;
		}
		uint16_t event = 0;
		uint32_t value = 0;
		if (zmq_msg_size(&ev) >= 6) {
			memcpy(&event, zmq_msg_data(&ev), 2);
			memcpy(&value, (char *)zmq_msg_data(&ev) + 2, 4);
		}
		int more = zmq_msg_more(&ev);
		zmq_msg_close(&ev);
		if (more) {
			zmq_msg_init(&addr);
			zmq_msg_recv(&addr, bus->monitor, 0);
			zmq_msg_close(&addr);
		}
		if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
			if (!bus->auth_refused) {
				bus->auth_refused = true;
				char *d = loom_sprintf("broker refused this process's key (status %u): "
				    "its public key is not in the broker's allow-list", value);
				set_state(bus, bus->state, d);
				free(d);
			}
		} else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
		    event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
			char *d = loom_sprintf("handshake with the broker failed (event %u, code %u): "
			    "check that CURVE is on or off on both sides and the broker's key is right", event, value);
			set_state(bus, bus->state, d);
			free(d);
		}
	}
}

/* Handles bus-level messages. Returns 1 when env was consumed, 0 when it is
 * not a control message, -1 when it was consumed but malformed (the reason,
 * naming the sender, is in bus->error). */
static int handle_control(loom_bus_t *bus, Loom__Envelope *env)
{
	const char *err;
	if (loom_envelope_is(env, &loom__heartbeat__descriptor))
		return 1;
	if (loom_envelope_is(env, &loom__welcome__descriptor)) {
		loom_bus_state_t was = bus->state;
		bus->auth_refused = false;
		if (was == LOOM_BUS_LOST) {
			bus->stats.reconnects++;
			set_state(bus, LOOM_BUS_UP, "reconnected to broker");
		} else if (was == LOOM_BUS_CONNECTING) {
			set_state(bus, LOOM_BUS_UP, "registered with broker");
		}
		return 1;
	}
	if (loom_envelope_is(env, &loom__error__descriptor) && strcmp(env->from, LOOM_BROKER_ADDR) == 0 &&
	    env->correlation_id.len == 0) {
		Loom__Error *e = (Loom__Error *)loom_envelope_body(env, &loom__error__descriptor, &err);
		if (e && e->code == LOOM__ERROR__CODE__NOT_REGISTERED) {
			/* The broker restarted and met us through our last message. */
			bus->stats.reconnects++;
			send_hello(bus);
			set_state(bus, bus->state, "broker restarted; registering again");
		}
		if (e)
			protobuf_c_message_free_unpacked(&e->base, NULL);
		return 1;
	}
	if (loom_envelope_is(env, &loom__ping__descriptor)) {
		Loom__Ping *p = (Loom__Ping *)loom_envelope_body(env, &loom__ping__descriptor, &err);
		if (p == NULL) {
			set_error(bus, loom_sprintf("dropped malformed %s from '%s': %s", env->type, env->from, err));
			(void)loom_bus_reply_error(bus, env, LOOM__ERROR__CODE__MALFORMED, false, err, &err);
			return -1;
		}
		Loom__Pong pong = LOOM__PONG__INIT;
		uint8_t digest[32];
		pong.payload = p->payload;
		pong.process = bus->process;
		pong.pid = (uint32_t)getpid();
		pong.uptime_ms = loom_mono_ms() - bus->started_ms;
		if (bus->role)
			pong.role = bus->role;
		if (bus->role_detail)
			pong.role_detail = bus->role_detail;
		if (bus->lease_host)
			pong.lease_host = bus->lease_host;
		if (p->probe) {
			uint8_t *plain;
			size_t len;
			if (!bus->have_keys) {
				pong.probe_error = "this process holds no key pair";
			} else if (loom_unseal(&bus->keypair, p->probe, &plain, &len) < 0) {
				pong.probe_error = "probe does not open with this process's key";
			} else {
				crypto_generichash(digest, sizeof digest, plain, len, NULL, 0);
				loom_unsealed_free(&plain, len);
				pong.probe_digest.data = digest;
				pong.probe_digest.len = sizeof digest;
			}
		}
		(void)loom_bus_reply(bus, env, &pong.base, &err);
		protobuf_c_message_free_unpacked(&p->base, NULL);
		return 1;
	}
	return 0;
}

/* Receives one frame from the DEALER. 1: *ret_env for the caller; 0: none;
 * -1: malformed (dropped); 2: consumed as control. */
static int recv_one(loom_bus_t *bus, Loom__Envelope **ret_env, const char **error_r)
{
	zmq_msg_t m;
	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, bus->dealer, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&m);
		return 0;
	}
	bool more = zmq_msg_more(&m);
	if (more) {
		/* Drain the rest: a multi-frame message is not ours. */
		while (more) {
			zmq_msg_close(&m);
			zmq_msg_init(&m);
			if (zmq_msg_recv(&m, bus->dealer, 0) < 0)
				break;
			more = zmq_msg_more(&m);
		}
		zmq_msg_close(&m);
		bus->stats.dropped++;
		*error_r = "dropped a multi-frame message (expected one envelope frame)";
		return -1;
	}
	bus->last_recv = loom_mono_ms();
	const char *why;
	Loom__Envelope *env = loom_envelope_unpack(zmq_msg_data(&m), zmq_msg_size(&m), &why);
	if (env == NULL) {
		loom_env_peek_t pk;
		const char *ignored;
		static char text[256];
		if (loom_envelope_peek(zmq_msg_data(&m), zmq_msg_size(&m), &pk, &ignored) == 0)
			snprintf(text, sizeof text, "dropped malformed message from '%.*s': %s",
			    (int)pk.from_len, pk.from, why);
		else
			snprintf(text, sizeof text, "dropped malformed message from unknown sender: %s", why);
		zmq_msg_close(&m);
		bus->stats.dropped++;
		*error_r = text;
		return -1;
	}
	zmq_msg_close(&m);
	bus->stats.received++;
	int hc = handle_control(bus, env);
	if (hc != 0) {
		loom_envelope_free(&env);
		if (hc < 0) {
			bus->stats.dropped++;
			*error_r = bus->error;
			return -1;
		}
		return 2;
	}
	*ret_env = env;
	return 1;
}

int loom_bus_recv(loom_bus_t *bus, Loom__Envelope **ret_env, const char **error_r)
{
	if (bus->inbox_head) {
		inbox_item_t *it = bus->inbox_head;
		bus->inbox_head = it->next;
		if (bus->inbox_head == NULL)
			bus->inbox_tail = NULL;
		bus->inbox_len--;
		*ret_env = it->env;
		free(it);
		return 1;
	}
	for (;;) {
		int rc = recv_one(bus, ret_env, error_r);
		if (rc == 0)
			drain_monitor(bus); /* transport events only when the queue is empty: an empty
					     * read of the monitor costs two system calls */
		if (rc != 2)
			return rc;
	}
}

static void inbox_push(loom_bus_t *bus, Loom__Envelope *env)
{
	if (bus->inbox_len >= INBOX_MAX) {
		/* A caller that never reads its inbox must not eat all memory. */
		loom_envelope_free(&env);
		bus->stats.dropped++;
		return;
	}
	inbox_item_t *it = loom_malloc(sizeof *it);
	it->env = env;
	it->next = NULL;
	if (bus->inbox_tail)
		bus->inbox_tail->next = it;
	else
		bus->inbox_head = it;
	bus->inbox_tail = it;
	bus->inbox_len++;
}

void loom_bus_tick(loom_bus_t *bus)
{
	drain_monitor(bus);
	int64_t now = loom_mono_ms();
	int64_t silence = now - bus->last_recv;
	if (bus->state == LOOM_BUS_UP && silence > bus->heartbeat_ms * (int64_t)bus->liveness) {
		char *d = loom_sprintf("broker silent for %lld ms; registering again", (long long)silence);
		set_state(bus, LOOM_BUS_LOST, d);
		free(d);
	}
	if (bus->state != LOOM_BUS_UP) {
		if (now - bus->last_hello >= bus->heartbeat_ms)
			send_hello(bus);
		return;
	}
	if (now - bus->last_send >= bus->heartbeat_ms) {
		Loom__Heartbeat hb = LOOM__HEARTBEAT__INIT;
		hb.seq = ++bus->hb_seq;
		const char *err;
		(void)send_frame(bus, bus->dealer, NULL, LOOM_BROKER_ADDR, &hb.base, NULL, NULL, &err);
	}
}

/* Polls the DEALER until deadline; returns false on timeout. */
static bool wait_readable(loom_bus_t *bus, int64_t deadline)
{
	for (;;) {
		int64_t now = loom_mono_ms();
		if (now >= deadline)
			return false;
		int64_t slice = deadline - now;
		if (slice > bus->heartbeat_ms)
			slice = bus->heartbeat_ms;
		zmq_pollitem_t it = { .socket = bus->dealer, .events = ZMQ_POLLIN };
		int rc = zmq_poll(&it, 1, (long)slice);
		loom_bus_tick(bus);
		if (rc > 0)
			return true;
		if (rc < 0 && errno != EINTR)
			return false;
		if (bus->auth_refused)
			return false;
	}
}

int loom_bus_request(loom_bus_t *bus, const char *to, const ProtobufCMessage *body,
    long long timeout_ms, Loom__Envelope **ret_reply, const char **error_r)
{
	uint8_t id[LOOM_MSG_ID_LEN];
	const char *err;
	if (loom_bus_send(bus, to, body, NULL, id, &err) < 0) {
		*error_r = set_error(bus, loom_sprintf("cannot send to '%s': %s", to, err));
		return -1;
	}
	int64_t deadline = loom_mono_ms() + timeout_ms;
	for (;;) {
		Loom__Envelope *env = NULL;
		int rc = recv_one(bus, &env, &err);
		if (rc == 2 || rc == -1)
			continue;
		if (rc == 1) {
			if (env->correlation_id.len == LOOM_MSG_ID_LEN &&
			    memcmp(env->correlation_id.data, id, LOOM_MSG_ID_LEN) == 0) {
				if (loom_envelope_is(env, &loom__error__descriptor)) {
					Loom__Error *e = (Loom__Error *)loom_envelope_body(env, &loom__error__descriptor, &err);
					*error_r = set_error(bus, e ? loom_sprintf("%s", e->message)
								   : loom_strdup("peer sent an undecodable error"));
					if (e)
						protobuf_c_message_free_unpacked(&e->base, NULL);
					loom_envelope_free(&env);
					return -1;
				}
				*ret_reply = env;
				return 0;
			}
			inbox_push(bus, env);
			continue;
		}
		if (!wait_readable(bus, deadline))
			break;
	}
	drain_monitor(bus);
	if (bus->auth_refused)
		*error_r = set_error(bus, loom_sprintf("the broker at '%s' refused this process's key: "
		    "its public key is not in the broker's allow-list", bus->router));
	else if (bus->state != LOOM_BUS_UP)
		*error_r = set_error(bus, loom_sprintf("no answer from the broker at '%s' within %lld ms "
		    "(is loom-broker running?)", bus->router, timeout_ms));
	else
		*error_r = set_error(bus, loom_sprintf("no reply from '%s' within %lld ms", to, timeout_ms));
	return -1;
}

int loom_bus_wait_up(loom_bus_t *bus, long long timeout_ms, const char **error_r)
{
	int64_t deadline = loom_mono_ms() + timeout_ms;
	while (bus->state != LOOM_BUS_UP) {
		Loom__Envelope *env = NULL;
		const char *err;
		int rc = recv_one(bus, &env, &err);
		if (rc == 1)
			inbox_push(bus, env);
		if (rc != 0)
			continue;
		if (!wait_readable(bus, deadline))
			break;
	}
	if (bus->state == LOOM_BUS_UP)
		return 0;
	drain_monitor(bus);
	if (bus->auth_refused)
		*error_r = set_error(bus, loom_sprintf("the broker at '%s' refused this process's key: "
		    "its public key is not in the broker's allow-list", bus->router));
	else
		*error_r = set_error(bus, loom_sprintf("no answer from the broker at '%s' within %lld ms "
		    "(is loom-broker running?)", bus->router, timeout_ms));
	return -1;
}

int loom_bus_publish(loom_bus_t *bus, const char *topic, const ProtobufCMessage *body,
    const char **error_r)
{
	if (bus->pub == NULL) {
		*error_r = "this client has no publish endpoint";
		return -1;
	}
	return send_frame(bus, bus->pub, topic, "", body, NULL, NULL, error_r);
}

int loom_bus_subscribe(loom_bus_t *bus, const char *prefix, const char **error_r)
{
	if (bus->sub == NULL) {
		*error_r = "this client has no subscribe endpoint";
		return -1;
	}
	if (zmq_setsockopt(bus->sub, ZMQ_SUBSCRIBE, prefix, strlen(prefix)) < 0) {
		*error_r = zmq_strerror(errno);
		return -1;
	}
	return 0;
}

int loom_bus_recv_event(loom_bus_t *bus, char **ret_topic, Loom__Envelope **ret_env,
    const char **error_r)
{
	if (bus->sub == NULL)
		return 0;
	zmq_msg_t t, m;
	zmq_msg_init(&t);
	if (zmq_msg_recv(&t, bus->sub, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&t);
		return 0;
	}
	if (!zmq_msg_more(&t)) {
		zmq_msg_close(&t);
		*error_r = "dropped an event without a body frame";
		return -1;
	}
	zmq_msg_init(&m);
	zmq_msg_recv(&m, bus->sub, 0);
	bool extra = zmq_msg_more(&m);
	for (bool more = extra; more;) { /* more than [topic][envelope]: drain */
		zmq_msg_t x;
		zmq_msg_init(&x);
		zmq_msg_recv(&x, bus->sub, 0);
		more = zmq_msg_more(&x);
		zmq_msg_close(&x);
	}
	const char *why = "dropped an event with extra frames";
	Loom__Envelope *env = extra ? NULL : loom_envelope_unpack(zmq_msg_data(&m), zmq_msg_size(&m), &why);
	if (env == NULL) {
		zmq_msg_close(&t);
		zmq_msg_close(&m);
		*error_r = why;
		return -1;
	}
	*ret_topic = loom_strndup(zmq_msg_data(&t), zmq_msg_size(&t));
	*ret_env = env;
	zmq_msg_close(&t);
	zmq_msg_close(&m);
	return 1;
}
