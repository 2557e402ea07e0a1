/* loom_bus.h - a process's connection to loom-broker.
 *
 * The client connects a DEALER to the broker's ROUTER with the routing id
 * "SERVICE@XXXXXXXX" (its instance address), says Hello, and is routed to
 * by service name (round-robin across instances) or by that address. It may
 * also connect a PUB to publish events and a SUB to receive them.
 *
 * Dialog states (this comment and bus_handle_control() change together):
 *
 *   CONNECTING --Welcome--> UP --broker silent for liveness x heartbeat--> LOST
 *   LOST --Welcome--> UP (reported as "reconnected")
 *   UP --Error NOT_REGISTERED from the broker (it restarted)--> Hello sent, stays UP
 *
 * In CONNECTING and LOST a Hello goes out every heartbeat interval. ZeroMQ
 * reconnects the transport by itself; the dialog only re-registers. The
 * broker registers an unknown sender from its instance address and routes
 * its message anyway, so a message sent across a broker restart still
 * arrives. Messages are not durable at this layer: what must not be lost is
 * stored by the sender and acknowledged by the receiver (DESIGN.md §2).
 *
 * Every client answers loom.Ping with loom.Pong by itself (opening a sealed
 * probe when it holds a key pair), so `loomctl ping SERVICE` works for any
 * process without code of its own.
 */
#ifndef LOOM_BUS_H
#define LOOM_BUS_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.pb-c.h"
#include "loom_envelope.h"
#include "loom_keys.h"

typedef struct loom_bus loom_bus_t;

typedef enum {
	LOOM_BUS_CONNECTING,  /* Hello sent, no Welcome yet */
	LOOM_BUS_UP,          /* registered with the broker */
	LOOM_BUS_LOST,        /* broker silent too long; re-registering */
} loom_bus_state_t;

/* Called on every state change and on notable transport events; detail is
 * one line for the log ("broker silent for 3000 ms", "broker refused our key"). */
typedef void loom_bus_state_fn(loom_bus_t *bus, loom_bus_state_t state, const char *detail, void *arg);

typedef struct loom_bus_opts {
	const char *service;             /* service name to register, e.g. "engine" */
	const char *process;             /* process kind for Hello, e.g. "loom-engine" */
	const char *router;              /* broker ROUTER endpoint */
	const char *publish;             /* broker endpoint for publishers, or NULL */
	const char *subscribe;           /* broker endpoint for subscribers, or NULL */
	long long heartbeat_ms;          /* heartbeat interval (default 1000) */
	unsigned liveness;               /* missed intervals before LOST (default 3) */
	const loom_keypair_t *keypair;   /* this process's keys: CURVE client and probe opening */
	const uint8_t *server_key;       /* broker public key: set to use CURVE */
	loom_bus_state_fn *on_state;     /* state change callback, or NULL */
	void *state_arg;                 /* its argument */
} loom_bus_opts_t;

/* Creates the client in ZeroMQ context zctx, connects and sends Hello (it
 * does not wait for the Welcome). Returns 0, or -1 with *ret_error (malloc'd). */
int loom_bus_new(void *zctx, const loom_bus_opts_t *opts, loom_bus_t **ret_bus, char **ret_error);
/* Says Bye (waiting at most 200 ms for it to leave), closes the sockets,
 * frees the client and sets *bus_p to NULL. NULL allowed. */
void loom_bus_destroy(loom_bus_t **bus_p, const char *reason);

/* This client's instance address (borrowed). */
const char *loom_bus_instance(const loom_bus_t *bus);
/* What the process's Pong says of its role (copied): "primary" or
 * "standby", a detail line, and its lease host. NULL leaves a field empty. */
void loom_bus_set_role(loom_bus_t *bus, const char *role, const char *detail, const char *lease_host);
loom_bus_state_t loom_bus_state(const loom_bus_t *bus);
/* The DEALER socket, for an event loop. */
void *loom_bus_socket(loom_bus_t *bus);
/* The SUB socket (NULL unless opts.subscribe). */
void *loom_bus_event_socket(loom_bus_t *bus);
/* True when received messages wait in the inbox (see loom_loop_set_pending). */
bool loom_bus_pending(void *bus);

/* Sends body to a service or instance address. correlation may be NULL.
 * Returns 0 (and the msg_id in ret_msg_id if not NULL), or -1 with *error_r
 * when the message could not be queued (send queue full, bad address). */
int loom_bus_send(loom_bus_t *bus, const char *to, const ProtobufCMessage *body,
    const uint8_t *correlation, uint8_t ret_msg_id[LOOM_MSG_ID_LEN], const char **error_r);
/* Replies to req (to its sender, correlated with its msg_id). */
int loom_bus_reply(loom_bus_t *bus, const Loom__Envelope *req, const ProtobufCMessage *body,
    const char **error_r);
/* Replies with loom.Error. */
int loom_bus_reply_error(loom_bus_t *bus, const Loom__Envelope *req, Loom__Error__Code code,
    bool retryable, const char *message, const char **error_r);

/* Receives without blocking. Control traffic (Welcome, Heartbeat, Ping,
 * broker errors) is handled here and never returned. Returns 1 with *ret_env
 * (free with loom_envelope_free), 0 when nothing is waiting, or -1 when a
 * frame was dropped as malformed (*error_r says why, naming the sender when
 * it could be read; call again for the next). */
int loom_bus_recv(loom_bus_t *bus, Loom__Envelope **ret_env, const char **error_r);

/* Sends body to `to` and waits up to timeout_ms for the reply, handling
 * control traffic and keeping other messages for loom_bus_recv. Returns 0
 * with *ret_reply, or -1 with *error_r (owned by the bus, valid until the
 * next call): a timeout, a refused key, or the loom.Error the peer sent back. */
int loom_bus_request(loom_bus_t *bus, const char *to, const ProtobufCMessage *body,
    long long timeout_ms, Loom__Envelope **ret_reply, const char **error_r);

/* Waits up to timeout_ms for the broker's Welcome. Returns 0 when UP, -1
 * with *error_r otherwise. */
int loom_bus_wait_up(loom_bus_t *bus, long long timeout_ms, const char **error_r);

/* Heartbeats and liveness: call at least every heartbeat interval (the
 * daemon skeleton runs it from a timer; request/wait call it themselves). */
void loom_bus_tick(loom_bus_t *bus);

/* Events: publish body under topic (e.g. "run.completed"); subscribe to a
 * topic prefix ("" for all). */
int loom_bus_publish(loom_bus_t *bus, const char *topic, const ProtobufCMessage *body,
    const char **error_r);
int loom_bus_subscribe(loom_bus_t *bus, const char *prefix, const char **error_r);
/* Receives one event without blocking: 1 with *ret_topic (malloc'd) and
 * *ret_env, 0 when none, -1 when a malformed one was dropped. */
int loom_bus_recv_event(loom_bus_t *bus, char **ret_topic, Loom__Envelope **ret_env,
    const char **error_r);

/* Counters for status displays. */
typedef struct loom_bus_stats {
	uint64_t sent;        /* envelopes sent on the DEALER */
	uint64_t received;    /* envelopes received on the DEALER */
	uint64_t dropped;     /* malformed frames dropped */
	uint64_t reconnects;  /* LOST -> UP transitions and broker restarts seen */
} loom_bus_stats_t;
void loom_bus_get_stats(const loom_bus_t *bus, loom_bus_stats_t *ret);

#endif
