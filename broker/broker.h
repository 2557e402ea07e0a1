/* broker.h - loom-broker's routing core, shared by its source files. */
#ifndef BROKER_H
#define BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include "loom_daemon.h"
#include "loom_keys.h"
#include "loom_buf.h"
#include "loom_map.h"

typedef struct peer {
	char *id;                      /* routing id = instance address "service@xxxx" */
	size_t idlen;                  /* its length */
	char *service;                 /* service name (the part before '@') */
	char *process;                 /* process kind from Hello, or "?" */
	char *host;                    /* host from Hello, or "" */
	char *address;                 /* transport address seen, or "" */
	uint32_t pid;                  /* pid from Hello */
	bool said_hello;               /* a Hello arrived (else implicitly registered) */
	int64_t registered_us;         /* wall clock of registration */
	int64_t last_seen_ms;          /* monotonic ms of its last frame */
	int64_t last_sent_ms;          /* monotonic ms of our last frame to it */
	uint64_t msgs_in;              /* frames from it */
	uint64_t msgs_out;             /* frames delivered to it */
} peer_t;

typedef struct service {
	char *name;                    /* service name */
	peer_t **v;                    /* its instances */
	size_t n;                      /* how many */
	size_t rr;                     /* next instance for round-robin */
} service_t;

typedef struct broker {
	loom_daemon_t *daemon;         /* the skeleton running us */
	void *router;                  /* ROUTER: directed messages */
	void *xsub;                    /* XSUB: publishers connect here */
	void *xpub;                    /* XPUB: subscribers connect here */
	void *tap;                     /* XPUB used as the tap's PUB */
	void *zap;                     /* REP for ZAP requests (CURVE only) */
	loom_keyring_t *allowed;       /* the allow-list (CURVE only) */
	loom_map_t *peers;             /* id -> peer_t */
	loom_map_t *services;          /* name -> service_t */
	unsigned tap_subs;             /* subscriptions on the tap (0: skip mirroring) */
	loom_buf_t tapbuf;             /* mirrored frames waiting to go to the tap */
	long long heartbeat_ms;        /* heartbeat interval */
	long long liveness;            /* missed intervals before a peer is forgotten */
	int64_t started_ms;            /* monotonic start */
	uint64_t routed;               /* directed messages delivered */
	uint64_t events;               /* events fanned out */
	uint64_t dropped;              /* frames dropped */
	uint64_t hb_seq;               /* heartbeat sequence */
	char instance[16];             /* our own address: "broker" */
} broker_t;

/* Sets up the ZAP handler and allow-list; must run before any bind. */
int broker_zap_start(broker_t *b, const char **error_r);
void broker_zap_stop(broker_t *b);

#endif
