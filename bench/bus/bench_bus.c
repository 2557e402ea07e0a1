/* bench_bus.c - loom-bench-bus: messages per second through the real loom-broker.
 *
 * What runs, all on this host, in a temporary directory:
 *
 *   producer thread              loom-broker                consumer thread
 *   bench.src  --envelopes-->  ROUTER --route-->  DEALER    bench.sink
 *       ^                          |                            |
 *       +------------ loom.Ack credit (every --credit-every) ---+
 *                                  |
 *                                  +--tap XPUB--> tap thread (tap cases only)
 *
 * A stream is --count-small or --count-large envelopes from bench.src to the
 * service "bench.sink", each carrying a loom.Ack whose msg_id field holds the
 * payload. loom.Ack is not bus control, so the client hands it to the
 * consumer; loom.Ping would be answered by the bus client itself. The last 16
 * bytes of every payload are [stream id][sequence number], so the consumer
 * notices a lost, repeated or stale message. The consumer sends a credit
 * (loom.Ack with [stream id][received so far]) every --credit-every messages
 * and the producer keeps at most --window envelopes in flight: far below the
 * 100,000-message ZeroMQ queues on every hop, so nothing is dropped for
 * being full.
 *
 * A case (one size, with or without a tap) is an untimed warm-up stream,
 * then the timed stream, from the producer's first send to the consumer's
 * last receive. For the tap cases a third thread subscribes to everything on
 * bus.tap and counts the mirrored deliveries of loom.Ack to bench.sink; it
 * is attached, and has seen a probe message, before the first tap case.
 *
 * Case order: every run of both sizes without a tap, then every run with
 * one. The broker learns that a tap listener left from an unsubscription it
 * reads asynchronously and says nothing about it at level warning, so a "no
 * tap" case that followed a tap case could not be sure the mirroring had
 * stopped.
 *
 * Each client has its own ZeroMQ context (its own I/O thread), as it would in
 * its own process.
 */
#include "bench_common.h"
#include "loom_alloc.h"
#include "loom_bus.h"
#include "loom_deploy.h"
#include "loom_envelope.h"
#include "loom_tapwire.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

extern char **environ;

#define PROG "loom-bench-bus"
#define SRC_SERVICE "bench.src"
#define SINK_SERVICE "bench.sink"
/* [stream id][sequence] at the end of every payload. */
#define TRAILER_LEN 16
/* The targets. */
#define TARGET_SMALL_MSGS 500000.0
#define TARGET_TAP_COST_PCT 10.0

typedef struct bench_opts {
	char *broker;                  /* loom-broker binary */
	long long count_small;         /* envelopes in a timed small stream */
	long long count_large;         /* envelopes in a timed large stream */
	long long size_small;          /* payload bytes of a small envelope */
	long long size_large;          /* payload bytes of a large envelope */
	long long warmup;              /* envelopes in the untimed stream before each case */
	long long window;              /* most envelopes in flight */
	long long credit_every;        /* the consumer sends a credit every this many */
	long long stall_ms;            /* no progress this long: the messages are lost */
	long long start_ms;            /* how long the broker may take to answer */
	long long repeat;              /* runs of every case */
	bool tap;                      /* run the tap cases */
	bool keep_dir;                 /* leave the temporary directory behind */
} bench_opts_t;

/* One client of the bus with the context it lives in. */
typedef struct client {
	void *zctx;                    /* its own ZeroMQ context */
	loom_bus_t *bus;               /* the bus client */
} client_t;

typedef struct bench {
	bench_opts_t o;                /* the flags */
	char *dir;                     /* temporary directory (state_dir) */
	char *config_path;             /* DIR/loom.yaml */
	loom_deploy_t cfg;             /* that file, loaded */
	bool cfg_loaded;               /* cfg needs releasing */
	pid_t broker_pid;              /* 0 when no broker runs */
	client_t ctl;                  /* "bench.ctl": start-up probe and broker counters */
	client_t src;                  /* "bench.src": the producer's client */
	client_t sink;                 /* "bench.sink": the consumer's client */
	uint64_t next_stream_id;       /* id of the next stream */
} bench_t;

/* One stream of envelopes from bench.src to bench.sink. */
typedef struct stream {
	loom_bus_t *src;               /* producer's client */
	loom_bus_t *sink;              /* consumer's client */
	uint64_t id;                   /* written into every payload and credit */
	long long count;               /* envelopes to send */
	size_t size;                   /* payload bytes */
	long long window;              /* most in flight */
	long long credit_every;        /* credit interval */
	long long stall_ms;            /* loss timeout */
	/* producer results */
	long long sent;                /* envelopes sent */
	long long retries;             /* sends refused with "send queue full" */
	long long window_waits;        /* times the producer waited for credit */
	int64_t t_start_ns;            /* first send */
	char *prod_error;              /* why the producer stopped early, or NULL */
	atomic_bool prod_done;         /* producer thread finished */
	/* consumer results */
	long long received;            /* envelopes of this stream received */
	long long gaps;                /* sequence numbers out of order (loss or repeat) */
	long long ignored;             /* other envelopes (probes, stale streams) */
	long long malformed;           /* frames the bus client dropped */
	int64_t t_end_ns;              /* last receive */
	char *cons_error;              /* why the consumer stopped early, or NULL */
	atomic_bool cons_done;         /* consumer thread finished */
} stream_t;

/* The tap subscriber of a tap case. */
typedef struct tap {
	void *zctx;                    /* its own ZeroMQ context */
	void *sub;                     /* SUB connected to bus.tap, subscribed to "" */
	char *sink;                    /* bench.sink's instance address */
	size_t sink_len;               /* its length */
	atomic_llong data;             /* loom.Ack deliveries to bench.sink seen */
	atomic_llong messages;         /* all mirrored messages seen */
	atomic_bool stop;              /* asks the thread to end */
	pthread_t thread;              /* the draining thread */
	bool running;                  /* thread started */
	pid_t tids[8];                 /* its threads: the drain and ZeroMQ's, for CPU accounting */
	size_t ntids;                  /* how many */
} tap_t;

/* What one case measured. */
typedef struct result {
	const char *size_name;         /* "small" or "large" */
	size_t size;                   /* payload bytes */
	bool tap;                      /* run with a tap attached */
	bool done;                     /* the case ran */
	long long count;               /* envelopes timed */
	double seconds;                /* first send to last receive */
	double msgs_per_s;             /* count / seconds */
	double mb_per_s;               /* payload megabytes (10^6) per second */
	size_t frame_len;              /* bytes of one envelope frame */
	long long retries;             /* "send queue full" retries */
	long long window_waits;        /* waits for credit */
	double tap_saw_pct;            /* tap deliveries seen / count */
	uint64_t broker_dropped;       /* the broker's dropped counter, during the stream */
	double broker_main_us;         /* broker main-thread CPU per message, microseconds */
	double broker_io_us;           /* broker ZeroMQ threads CPU per message */
	double clients_us;             /* this process minus the tap subscriber, per message */
	double tap_us;                 /* the tap subscriber's threads, per message */
	double busy_pct;               /* broker + this process CPU, % of one core */
} result_t;

/* ---- small helpers ---- */

static void put_u64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof v); /* same host on both ends: native order */
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof v);
	return v;
}

/* ---- CPU accounting from /proc ---- */

typedef struct cpu_sample {
	double broker_main_s;          /* broker main thread */
	double broker_other_s;         /* broker's other threads (ZeroMQ I/O, reaper) */
	double self_s;                 /* this process */
	double tap_s;                  /* the tap subscriber's threads in this process */
	int64_t at_ns;                 /* when taken */
} cpu_sample_t;

static void cpu_take(pid_t broker, const tap_t *tap, cpu_sample_t *ret)
{
	memset(ret, 0, sizeof *ret);
	pid_t tids[64];
	size_t n = bench_list_tids(broker, tids, sizeof tids / sizeof *tids);
	for (size_t i = 0; i < n; i++) {
		double s = bench_thread_cpu(broker, tids[i]);
		if (tids[i] == broker)
			ret->broker_main_s += s;
		else
			ret->broker_other_s += s;
	}
	for (size_t i = 0; tap && i < tap->ntids; i++)
		ret->tap_s += bench_thread_cpu(getpid(), tap->tids[i]);
	ret->self_s = bench_self_cpu();
	ret->at_ns = bench_now_ns();
}

/* ---- producer and consumer ---- */

/* Reads every waiting credit for this stream into *acked. Returns true when
 * *acked grew. */
static bool drain_credits(stream_t *s, long long *acked)
{
	bool grew = false;
	for (;;) {
		Loom__Envelope *env = NULL;
		const char *err;
		int rc = loom_bus_recv(s->src, &env, &err);
		if (rc == 0)
			return grew;
		if (rc < 0)
			continue; /* a malformed frame, counted by the client */
		if (loom_envelope_is(env, &loom__ack__descriptor)) {
			Loom__Ack *a = (Loom__Ack *)loom_envelope_body(env, &loom__ack__descriptor, &err);
			if (a && a->msg_id.len == 16 && get_u64(a->msg_id.data) == s->id) {
				long long n = (long long)get_u64(a->msg_id.data + 8);
				if (n > *acked) {
					*acked = n;
					grew = true;
				}
			}
			if (a)
				protobuf_c_message_free_unpacked(&a->base, NULL);
		}
		loom_envelope_free(&env);
	}
}

static void *producer_main(void *arg)
{
	stream_t *s = arg;
	uint8_t *payload = loom_malloc(s->size);
	memset(payload, 'x', s->size);
	put_u64(payload + s->size - TRAILER_LEN, s->id);
	Loom__Ack body = LOOM__ACK__INIT;
	body.msg_id.data = payload;
	body.msg_id.len = s->size;
	void *sock = loom_bus_socket(s->src);
	long long seq = 0, acked = 0;
	int64_t last_progress = bench_now_ns();
	s->t_start_ns = bench_now_ns();
	while (seq < s->count) {
		if (bench_interrupted()) {
			s->prod_error = bench_interrupted_text();
			break;
		}
		/* Credits are rare (one per credit_every): look every 64 sends. */
		if ((seq & 63) == 0 || seq - acked >= s->window) {
			if (drain_credits(s, &acked))
				last_progress = bench_now_ns();
		}
		if (seq - acked >= s->window) {
			s->window_waits++;
			zmq_pollitem_t it = { .socket = sock, .events = ZMQ_POLLIN };
			(void)zmq_poll(&it, 1, 100);
			loom_bus_tick(s->src);
			if (bench_now_ns() - last_progress > s->stall_ms * 1000000) {
				s->prod_error = loom_sprintf("no credit from " SINK_SERVICE " for %lld ms with %lld sent "
				    "and %lld acknowledged", s->stall_ms, seq, acked);
				break;
			}
			continue;
		}
		put_u64(payload + s->size - 8, (uint64_t)seq);
		const char *err;
		if (loom_bus_send(s->src, SINK_SERVICE, &body.base, NULL, NULL, &err) < 0) {
			if (strncmp(err, "send queue full", 15) == 0) {
				s->retries++;
				bench_sleep_us(100);
				continue;
			}
			s->prod_error = loom_sprintf("cannot send to " SINK_SERVICE ": %s", err);
			break;
		}
		seq++;
	}
	s->sent = seq;
	free(payload);
	atomic_store(&s->prod_done, true);
	return NULL;
}

/* Sends the consumer's credit; false when the send queue is full (try later). */
static bool send_credit(stream_t *s, const char *src_instance, long long received, char **error)
{
	uint8_t data[16];
	put_u64(data, s->id);
	put_u64(data + 8, (uint64_t)received);
	Loom__Ack credit = LOOM__ACK__INIT;
	credit.msg_id.data = data;
	credit.msg_id.len = sizeof data;
	const char *err;
	if (loom_bus_send(s->sink, src_instance, &credit.base, NULL, NULL, &err) == 0)
		return true;
	if (strncmp(err, "send queue full", 15) != 0 && *error == NULL)
		*error = loom_sprintf("cannot send credit to " SRC_SERVICE ": %s", err);
	return false;
}

static void *consumer_main(void *arg)
{
	stream_t *s = arg;
	void *sock = loom_bus_socket(s->sink);
	long long next_seq = 0;
	bool credit_owed = false;
	char *src_instance = NULL;    /* credits go to the producer's exact instance */
	/* Progress is checked only when idle: no clock read per message. */
	long long seen_at_check = 0;
	int64_t last_progress = bench_now_ns();
	while (s->received < s->count && s->cons_error == NULL) {
		if (bench_interrupted()) {
			s->cons_error = bench_interrupted_text();
			break;
		}
		Loom__Envelope *env = NULL;
		const char *err;
		int rc = loom_bus_recv(s->sink, &env, &err);
		if (rc == 1) {
			const uint8_t *b = env->body.data;
			size_t blen = env->body.len;
			if (!loom_envelope_is(env, &loom__ack__descriptor) || blen < TRAILER_LEN + 2 ||
			    get_u64(b + blen - TRAILER_LEN) != s->id) {
				s->ignored++; /* a tap probe, or something not from this stream */
				loom_envelope_free(&env);
				continue;
			}
			if (src_instance == NULL)
				src_instance = loom_strdup(env->from);
			uint64_t seq = get_u64(b + blen - 8);
			if (seq != (uint64_t)next_seq)
				s->gaps++;
			next_seq = (long long)seq + 1;
			s->received++;
			if (s->received == s->count)
				s->t_end_ns = bench_now_ns();
			loom_envelope_free(&env);
			if (s->received % s->credit_every == 0 || s->received == s->count)
				credit_owed = true;
			if (credit_owed && send_credit(s, src_instance, s->received, &s->cons_error))
				credit_owed = false;
			continue;
		}
		if (rc < 0) {
			s->malformed++;
			continue;
		}
		if (credit_owed && send_credit(s, src_instance, s->received, &s->cons_error))
			credit_owed = false;
		zmq_pollitem_t it = { .socket = sock, .events = ZMQ_POLLIN };
		(void)zmq_poll(&it, 1, credit_owed ? 1 : 100);
		loom_bus_tick(s->sink);
		if (s->received != seen_at_check) {
			seen_at_check = s->received;
			last_progress = bench_now_ns();
		} else if (bench_now_ns() - last_progress > s->stall_ms * 1000000) {
			s->cons_error = loom_sprintf("received %lld of %lld, then nothing for %lld ms: "
			    "messages lost or the broker stalled",
			    s->received, s->count, s->stall_ms);
			break;
		}
	}
	/* The last credit must reach the producer or it may wait for it. */
	int64_t give_up = bench_now_ns() + 1000000000;
	while (credit_owed && s->cons_error == NULL && bench_now_ns() < give_up) {
		if (send_credit(s, src_instance, s->received, &s->cons_error))
			credit_owed = false;
		else
			bench_sleep_us(100);
	}
	free(src_instance);
	atomic_store(&s->cons_done, true);
	return NULL;
}

/* Reads and frees whatever the control client was sent (heartbeats, stray
 * replies), so it stays UP while the main thread waits. */
static void ctl_idle(client_t *ctl)
{
	Loom__Envelope *env = NULL;
	const char *err;
	int rc;
	while ((rc = loom_bus_recv(ctl->bus, &env, &err)) != 0)
		if (rc == 1)
			loom_envelope_free(&env);
	loom_bus_tick(ctl->bus);
}

/* Runs one stream to the end. Returns 0, or -1 with *ret_error (malloc'd). */
static int stream_run(bench_t *b, stream_t *s, char **ret_error)
{
	pthread_t prod, cons;
	if (pthread_create(&cons, NULL, consumer_main, s) != 0) {
		*ret_error = loom_strdup("cannot start the consumer thread");
		return -1;
	}
	if (pthread_create(&prod, NULL, producer_main, s) != 0) {
		bench_interrupt();
		pthread_join(cons, NULL);
		*ret_error = loom_strdup("cannot start the producer thread");
		return -1;
	}
	/* Keep the control client alive while the threads work. */
	while (!atomic_load(&s->prod_done) || !atomic_load(&s->cons_done)) {
		zmq_pollitem_t it = { .socket = loom_bus_socket(b->ctl.bus), .events = ZMQ_POLLIN };
		(void)zmq_poll(&it, 1, 50);
		ctl_idle(&b->ctl);
	}
	pthread_join(prod, NULL);
	pthread_join(cons, NULL);
	int rc = 0;
	if (s->prod_error && s->cons_error && strcmp(s->prod_error, s->cons_error) != 0) {
		*ret_error = loom_sprintf("%s; %s", s->prod_error, s->cons_error);
		rc = -1;
	} else if (s->prod_error || s->cons_error) {
		*ret_error = loom_strdup(s->cons_error ? s->cons_error : s->prod_error);
		rc = -1;
	} else if (s->gaps) {
		*ret_error = loom_sprintf("%lld envelopes arrived out of sequence: messages lost or repeated", s->gaps);
		rc = -1;
	} else if (s->malformed) {
		*ret_error = loom_sprintf("the consumer's bus client dropped %lld malformed frames", s->malformed);
		rc = -1;
	}
	free(s->prod_error);
	free(s->cons_error);
	s->prod_error = s->cons_error = NULL;
	return rc;
}

static void stream_init(bench_t *b, stream_t *s, long long count, size_t size)
{
	memset(s, 0, sizeof *s);
	s->src = b->src.bus;
	s->sink = b->sink.bus;
	s->id = ++b->next_stream_id;
	s->count = count;
	s->size = size;
	s->window = b->o.window;
	s->credit_every = b->o.credit_every;
	/* Large payloads: keep at most about 256 MiB in flight. */
	long long cap = (256LL << 20) / (long long)size;
	if (s->window > cap) {
		s->window = cap > 1 ? cap : 1;
		if (s->credit_every > s->window / 4)
			s->credit_every = s->window / 4 > 0 ? s->window / 4 : 1;
	}
	s->stall_ms = b->o.stall_ms;
	atomic_init(&s->prod_done, false);
	atomic_init(&s->cons_done, false);
}

/* ---- the tap subscriber ---- */

static void *tap_main(void *arg)
{
	tap_t *t = arg;
	const char *ack = loom__ack__descriptor.name;
	size_t ack_len = strlen(ack);
	long long data = 0, messages = 0;
	while (!atomic_load_explicit(&t->stop, memory_order_relaxed)) {
		zmq_pollitem_t it = { .socket = t->sub, .events = ZMQ_POLLIN };
		if (zmq_poll(&it, 1, 50) <= 0)
			continue;
		for (int i = 0; i < 4096; i++) {
			zmq_msg_t batch;
			zmq_msg_init(&batch);
			if (zmq_msg_recv(&batch, t->sub, ZMQ_DONTWAIT) < 0) {
				zmq_msg_close(&batch);
				break;
			}
			const uint8_t *d = zmq_msg_data(&batch);
			size_t len = zmq_msg_size(&batch), pos = 1;
			loom_tap_record_t rec;
			while (len > 0 && d[0] == LOOM_TAP_VERSION && loom_tapwire_next(d, len, &pos, &rec) == 1) {
				loom_env_peek_t pk;
				const char *err;
				if (rec.kind == LOOM_TAP_DIRECT && rec.detail_len == t->sink_len &&
				    memcmp(rec.detail, t->sink, t->sink_len) == 0 &&
				    loom_envelope_peek(rec.env, rec.env_len, &pk, &err) == 0 &&
				    pk.type_len == ack_len && memcmp(pk.type, ack, ack_len) == 0)
					data++;
				messages++;
			}
			zmq_msg_close(&batch);
		}
		atomic_store_explicit(&t->data, data, memory_order_relaxed);
		atomic_store_explicit(&t->messages, messages, memory_order_relaxed);
	}
	return NULL;
}

static void tap_close(tap_t *t)
{
	if (t->running) {
		atomic_store(&t->stop, true);
		pthread_join(t->thread, NULL);
		t->running = false;
	}
	if (t->sub)
		zmq_close(t->sub);
	if (t->zctx)
		zmq_ctx_term(t->zctx);
	free(t->sink);
	memset(t, 0, sizeof *t);
}

/* Connects the tap subscriber and waits until it sees a probe sent from
 * bench.src to bench.sink. Returns 0, or -1 with *ret_error. */
static int tap_open(bench_t *b, tap_t *t, char **ret_error)
{
	memset(t, 0, sizeof *t);
	atomic_init(&t->data, 0);
	atomic_init(&t->messages, 0);
	atomic_init(&t->stop, false);
	t->sink = loom_strdup(loom_bus_instance(b->sink.bus));
	t->sink_len = strlen(t->sink);
	/* The threads that appear from here on are the tap subscriber's. */
	pid_t before[64];
	size_t nbefore = bench_list_tids(getpid(), before, sizeof before / sizeof *before);
	t->zctx = zmq_ctx_new();
	t->sub = zmq_socket(t->zctx, ZMQ_SUB);
	int zero = 0;
	zmq_setsockopt(t->sub, ZMQ_LINGER, &zero, sizeof zero);
	if (zmq_connect(t->sub, b->cfg.bus.tap) < 0 || zmq_setsockopt(t->sub, ZMQ_SUBSCRIBE, "", 0) < 0) {
		*ret_error = loom_sprintf("cannot connect the tap to '%s': %s", b->cfg.bus.tap, zmq_strerror(errno));
		goto out_close;
	}
	if (pthread_create(&t->thread, NULL, tap_main, t) != 0) {
		*ret_error = loom_strdup("cannot start the tap thread");
		goto out_close;
	}
	t->running = true;
	pid_t after[64];
	size_t nafter = bench_list_tids(getpid(), after, sizeof after / sizeof *after);
	for (size_t i = 0; i < nafter && t->ntids < sizeof t->tids / sizeof *t->tids; i++) {
		bool old = false;
		for (size_t j = 0; j < nbefore && !old; j++)
			old = before[j] == after[i];
		if (!old)
			t->tids[t->ntids++] = after[i];
	}
	/* The broker mirrors only once it has read our subscription: send a
	 * probe every 100 ms until the tap shows one. */
	Loom__Bye probe = LOOM__BYE__INIT;
	probe.reason = "tap probe";
	int64_t deadline = bench_now_ns() + 10 * 1000000000LL;
	while (atomic_load(&t->messages) == 0) {
		if (bench_interrupted() || bench_now_ns() > deadline) {
			*ret_error = loom_sprintf("the tap at '%s' saw nothing within 10 s", b->cfg.bus.tap);
			goto out_close;
		}
		const char *err;
		(void)loom_bus_send(b->src.bus, SINK_SERVICE, &probe.base, NULL, NULL, &err);
		for (int i = 0; i < 20 && atomic_load(&t->messages) == 0; i++) {
			zmq_pollitem_t it = { .socket = loom_bus_socket(b->ctl.bus), .events = ZMQ_POLLIN };
			(void)zmq_poll(&it, 1, 5);
			ctl_idle(&b->ctl);
		}
	}
	return 0;
out_close:
	tap_close(t);
	return -1;
}

/* Waits until the tap has seen `want` more deliveries than `base`, or
 * until it has seen nothing new for a second (the broker drops what a slow
 * tap cannot take). Returns what it saw. */
static long long tap_settle(bench_t *b, tap_t *t, long long base, long long want)
{
	long long seen = atomic_load(&t->data) - base;
	int64_t quiet_since = bench_now_ns();
	while (seen < want && bench_now_ns() - quiet_since < 1000000000LL && !bench_interrupted()) {
		zmq_pollitem_t it = { .socket = loom_bus_socket(b->ctl.bus), .events = ZMQ_POLLIN };
		(void)zmq_poll(&it, 1, 10);
		ctl_idle(&b->ctl);
		long long now_seen = atomic_load(&t->data) - base;
		if (now_seen != seen) {
			seen = now_seen;
			quiet_since = bench_now_ns();
		}
	}
	return seen;
}

/* ---- the broker ---- */

/* Asks the broker for its counters. Returns 0 or -1. */
static int broker_counters(bench_t *b, uint64_t *ret_routed, uint64_t *ret_dropped)
{
	Loom__ServicesRequest rq = LOOM__SERVICES_REQUEST__INIT;
	rq.service = SINK_SERVICE;
	Loom__Envelope *reply = NULL;
	const char *err;
	if (loom_bus_request(b->ctl.bus, LOOM_BROKER_ADDR, &rq.base, 5000, &reply, &err) < 0)
		return -1;
	Loom__ServicesReply *r = (Loom__ServicesReply *)loom_envelope_body(reply,
	    &loom__services_reply__descriptor, &err);
	loom_envelope_free(&reply);
	if (r == NULL)
		return -1;
	*ret_routed = r->routed;
	*ret_dropped = r->dropped;
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}

static int client_new(bench_t *b, client_t *c, const char *service, char **ret_error)
{
	c->zctx = zmq_ctx_new();
	if (c->zctx == NULL) {
		*ret_error = loom_sprintf("cannot create a ZeroMQ context: %s", zmq_strerror(errno));
		return -1;
	}
	loom_bus_opts_t opts = {
		.service = service,
		.process = PROG,
		.router = b->cfg.bus.router,
		.heartbeat_ms = b->cfg.bus.heartbeat_ms,
		.liveness = (unsigned)b->cfg.bus.liveness,
	};
	return loom_bus_new(c->zctx, &opts, &c->bus, ret_error);
}

static void client_destroy(client_t *c)
{
	loom_bus_destroy(&c->bus, "benchmark done");
	if (c->zctx)
		zmq_ctx_term(c->zctx);
	c->zctx = NULL;
}

/* Starts loom-broker on the temporary config and waits until it answers a
 * loom.Ping. Returns 0, or -1 with *ret_error. */
static int broker_start(bench_t *b, char **ret_error)
{
	char *argv[] = { b->o.broker, "--config", b->config_path, NULL };
	int rc = posix_spawn(&b->broker_pid, b->o.broker, NULL, NULL, argv, environ);
	if (rc != 0) {
		b->broker_pid = 0;
		*ret_error = loom_sprintf("cannot start '%s': %s", b->o.broker, strerror(rc));
		return -1;
	}
	if (client_new(b, &b->ctl, "bench.ctl", ret_error) < 0)
		return -1;
	int64_t deadline = bench_now_ns() + b->o.start_ms * 1000000;
	Loom__Ping ping = LOOM__PING__INIT;
	for (;;) {
		int status;
		if (waitpid(b->broker_pid, &status, WNOHANG) == b->broker_pid) {
			b->broker_pid = 0;
			*ret_error = WIFEXITED(status)
			    ? loom_sprintf("loom-broker exited with status %d before answering", WEXITSTATUS(status))
			    : loom_sprintf("loom-broker was killed by signal %d before answering", WTERMSIG(status));
			return -1;
		}
		Loom__Envelope *reply = NULL;
		const char *err;
		if (loom_bus_request(b->ctl.bus, LOOM_BROKER_ADDR, &ping.base, 200, &reply, &err) == 0) {
			loom_envelope_free(&reply);
			return 0;
		}
		if (bench_interrupted()) {
			*ret_error = bench_interrupted_text();
			return -1;
		}
		if (bench_now_ns() > deadline) {
			*ret_error = loom_sprintf("loom-broker did not answer a ping within %lld ms: %s",
			    b->o.start_ms, err);
			return -1;
		}
	}
}

/* SIGTERMs the broker and waits for it (SIGKILL after 5 s). Returns 0 when
 * it exited with status 0. */
static int broker_stop(bench_t *b)
{
	if (b->broker_pid == 0)
		return 0;
	kill(b->broker_pid, SIGTERM);
	int status = 0;
	int64_t deadline = bench_now_ns() + 5 * 1000000000LL;
	pid_t r;
	while ((r = waitpid(b->broker_pid, &status, WNOHANG)) == 0 && bench_now_ns() < deadline)
		bench_sleep_us(10000);
	if (r == 0) {
		fprintf(stderr, PROG ": loom-broker did not stop within 5 s of SIGTERM: killing it\n");
		kill(b->broker_pid, SIGKILL);
		waitpid(b->broker_pid, &status, 0);
		b->broker_pid = 0;
		return -1;
	}
	b->broker_pid = 0;
	if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, PROG ": loom-broker did not exit cleanly (status 0x%x)\n", (unsigned)status);
		return -1;
	}
	return 0;
}

/* ---- the temporary directory ---- */

static int setup_dir(bench_t *b, char **ret_error)
{
	if (bench_mkdtemp("loom-bench", &b->dir, ret_error) < 0)
		return -1;
	b->config_path = loom_sprintf("%s/loom.yaml", b->dir);
	FILE *f = fopen(b->config_path, "w");
	if (f == NULL) {
		*ret_error = loom_sprintf("cannot create '%s': %s", b->config_path, strerror(errno));
		return -1;
	}
	/* state_dir "." is this file's directory; the endpoints default to
	 * ipc:// sockets in its run/ folder. */
	fprintf(f, "# written by " PROG "\n"
		   "state_dir: .\n"
		   "log:\n"
		   "  level: warning\n"
		   "bus:\n"
		   "  heartbeat: 1s\n"
		   "  liveness: 3\n"
		   "  curve: false\n");
	if (fclose(f) != 0) {
		*ret_error = loom_sprintf("cannot write '%s': %s", b->config_path, strerror(errno));
		return -1;
	}
	int rc = bench_deploy_load(b->config_path, &b->cfg, ret_error);
	b->cfg_loaded = true; /* released even after a failed load */
	return rc;
}

/* ---- a case ---- */

static size_t frame_len(bench_t *b, size_t size)
{
	uint8_t *payload = loom_calloc(1, size);
	Loom__Ack body = LOOM__ACK__INIT;
	body.msg_id.data = payload;
	body.msg_id.len = size;
	loom_buf_t buf = LOOM_BUF_INIT;
	loom_env_hdr_t hdr = { .from = loom_bus_instance(b->src.bus), .to = SINK_SERVICE };
	loom_envelope_pack(&buf, &hdr, &body.base, NULL);
	size_t n = buf.len;
	loom_buf_release(&buf);
	free(payload);
	return n;
}

/* Prints one run; base_rate is the median no-tap rate of the same size (0: none). */
static void print_result(const result_t *r, double base_rate, size_t rep, size_t reps)
{
	char cnt[32], sz[32], label[64], run[64] = "";
	snprintf(label, sizeof label, "%s(%s)", r->size_name, bench_fmt_size(sz, sizeof sz, r->size));
	if (reps > 1)
		snprintf(run, sizeof run, " [run %zu/%zu]", rep + 1, reps);
	printf("bus %-13s %-7s %11s msg/s %8.1f MB/s", label, r->tap ? "tap" : "no tap",
	    bench_fmt_count(cnt, sizeof cnt, r->msgs_per_s), r->mb_per_s);
	if (!r->tap) {
		if (strcmp(r->size_name, "small") == 0)
			printf("   %s (target >= %s msg/s)", r->msgs_per_s >= TARGET_SMALL_MSGS ? "PASS" : "MISS",
			    bench_fmt_count(cnt, sizeof cnt, TARGET_SMALL_MSGS));
	} else if (base_rate > 0) {
		double cost = 100.0 * (1.0 - r->msgs_per_s / base_rate);
		printf("   (tap cost %.1f%%, tap saw %.1f%%)   %s (target tap cost <= %.0f%%)", cost, r->tap_saw_pct,
		    cost <= TARGET_TAP_COST_PCT ? "PASS" : "MISS", TARGET_TAP_COST_PCT);
	} else {
		printf("   (tap saw %.1f%%)", r->tap_saw_pct);
	}
	printf("%s\n", run);
	printf("    %s msgs in %.3f s; frame %zu B; send retries %lld; credit waits %lld; broker dropped %llu\n",
	    bench_fmt_count(cnt, sizeof cnt, (double)r->count), r->seconds, r->frame_len, r->retries, r->window_waits,
	    (unsigned long long)r->broker_dropped);
	printf("    cpu per msg: broker main %.2f us + broker zmq i/o %.2f us; bench clients %.2f us",
	    r->broker_main_us, r->broker_io_us, r->clients_us);
	if (r->tap)
		printf("; tap subscriber %.2f us", r->tap_us);
	printf(" (all busy %.0f%% of one core)\n", r->busy_pct);
	fflush(stdout);
}

/* Runs one case into *r; tap is the attached subscriber for a tap case.
 * Returns 0, or -1 with *ret_error. */
static int run_case(bench_t *b, result_t *r, tap_t *tap, char **ret_error)
{
	stream_t s;
	if (b->o.warmup > 0) {
		long long warm_base = tap ? atomic_load(&tap->data) : 0;
		stream_init(b, &s, b->o.warmup, r->size);
		if (stream_run(b, &s, ret_error) < 0)
			return -1;
		/* The tap may lag: let it take the warm-up before counting. */
		if (tap)
			(void)tap_settle(b, tap, warm_base, b->o.warmup);
	}
	long long tap_base = tap ? atomic_load(&tap->data) : 0;
	uint64_t routed0 = 0, dropped0 = 0, routed1 = 0, dropped1 = 0;
	bool have_counters = broker_counters(b, &routed0, &dropped0) == 0;
	stream_init(b, &s, r->count, r->size);
	cpu_sample_t c0, c1;
	cpu_take(b->broker_pid, tap, &c0);
	if (stream_run(b, &s, ret_error) < 0)
		return -1;
	cpu_take(b->broker_pid, tap, &c1);
	r->seconds = (double)(s.t_end_ns - s.t_start_ns) / 1e9;
	if (r->seconds <= 0)
		r->seconds = 1e-9;
	r->msgs_per_s = (double)r->count / r->seconds;
	r->mb_per_s = r->msgs_per_s * (double)r->size / 1e6;
	r->retries = s.retries;
	r->window_waits = s.window_waits;
	r->frame_len = frame_len(b, r->size);
	double wall = (double)(c1.at_ns - c0.at_ns) / 1e9;
	double per = 1e6 / (double)r->count;
	r->broker_main_us = (c1.broker_main_s - c0.broker_main_s) * per;
	r->broker_io_us = (c1.broker_other_s - c0.broker_other_s) * per;
	r->tap_us = (c1.tap_s - c0.tap_s) * per;
	r->clients_us = (c1.self_s - c0.self_s) * per - r->tap_us;
	r->busy_pct = 100.0 * (c1.broker_main_s - c0.broker_main_s + c1.broker_other_s - c0.broker_other_s +
	    c1.self_s - c0.self_s) / wall;
	if (tap) {
		long long seen = tap_settle(b, tap, tap_base, r->count);
		r->tap_saw_pct = 100.0 * (double)seen / (double)r->count;
	}
	if (have_counters && broker_counters(b, &routed1, &dropped1) == 0)
		r->broker_dropped = dropped1 - dropped0;
	r->done = true;
	return 0;
}

/* Median, lowest and highest rate of the finished runs in res[0..n). */
typedef struct summary {
	size_t runs;                   /* finished runs */
	double median;                 /* msg/s */
	double min;                    /* msg/s */
	double max;                    /* msg/s */
	double tap_saw_min;            /* lowest tap saw % */
} summary_t;

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void summarize(const result_t *res, size_t n, summary_t *ret)
{
	double *v = loom_calloc(n ? n : 1, sizeof *v);
	memset(ret, 0, sizeof *ret);
	ret->tap_saw_min = 100.0;
	for (size_t i = 0; i < n; i++) {
		if (!res[i].done)
			continue;
		v[ret->runs++] = res[i].msgs_per_s;
		if (res[i].tap_saw_pct < ret->tap_saw_min)
			ret->tap_saw_min = res[i].tap_saw_pct;
	}
	if (ret->runs) {
		qsort(v, ret->runs, sizeof *v, cmp_double);
		ret->min = v[0];
		ret->max = v[ret->runs - 1];
		ret->median = ret->runs % 2 ? v[ret->runs / 2] : (v[ret->runs / 2 - 1] + v[ret->runs / 2]) / 2;
	}
	free(v);
}

/* res holds nkinds blocks of reps runs each; block k + 2 is the tap twin
 * of block k. */
static void print_table(const result_t *res, size_t nkinds, size_t reps)
{
	/* the machine-readable lines for bench/report.sh, after the table */
	char results[8][160];
	size_t nresults = 0;
	printf("\n%-22s %11s %19s %8s %9s %8s  %s\n", "case", "msg/s", reps > 1 ? "(range)" : "",
	    "MB/s", "tap cost", "tap saw", "target");
	for (size_t k = 0; k < nkinds; k++) {
		const result_t *r = &res[k * reps];
		summary_t sm;
		summarize(r, reps, &sm);
		if (sm.runs == 0)
			continue;
		char cnt[32], lo[32], hi[32], range[48] = "", sz[32], label[80];
		char cost[16] = "-", saw[16] = "-", target[64] = "-";
		snprintf(label, sizeof label, "%s(%s) %s", r->size_name, bench_fmt_size(sz, sizeof sz, r->size),
		    r->tap ? "tap" : "no tap");
		if (reps > 1)
			snprintf(range, sizeof range, "(%s-%s)", bench_fmt_count(lo, sizeof lo, sm.min),
			    bench_fmt_count(hi, sizeof hi, sm.max));
		if (!r->tap && strcmp(r->size_name, "small") == 0)
			snprintf(target, sizeof target, "%s  >= %s msg/s", sm.median >= TARGET_SMALL_MSGS ? "PASS" : "MISS",
			    bench_fmt_count(cnt, sizeof cnt, TARGET_SMALL_MSGS));
		if (r->tap) {
			summary_t base;
			summarize(&res[(k - 2) * reps], reps, &base);
			snprintf(saw, sizeof saw, "%.1f%%", sm.tap_saw_min);
			if (base.runs) {
				double c = 100.0 * (1.0 - sm.median / base.median);
				snprintf(cost, sizeof cost, "%.1f%%", c);
				snprintf(target, sizeof target, "%s  tap cost <= %.0f%%",
				    c <= TARGET_TAP_COST_PCT ? "PASS" : "MISS", TARGET_TAP_COST_PCT);
				/* the tap's cost: tap msg/s beside the same stream without a tap */
				if (nresults < 8)
					snprintf(results[nresults++], sizeof results[0],
					    "bus.%s_with_tap|%.0f|%.0f|no-tap|msg/s|ratio>=%.2f", r->size_name, sm.median,
					    base.median, 1.0 - TARGET_TAP_COST_PCT / 100.0);
			}
		} else if (strcmp(r->size_name, "small") == 0 && nresults < 8) {
			snprintf(results[nresults++], sizeof results[0], "bus.small_msgs|%.0f|nan|-|msg/s|>=%.0f", sm.median,
			    TARGET_SMALL_MSGS);
		} else if (nresults < 8) {
			snprintf(results[nresults++], sizeof results[0], "bus.%s_msgs|%.0f|nan|-|msg/s|-", r->size_name,
			    sm.median);
		}
		printf("%-22s %11s %19s %8.1f %9s %8s  %s\n", label, bench_fmt_count(cnt, sizeof cnt, sm.median), range,
		    sm.median * (double)r->size / 1e6, cost, saw, target);
	}
	printf("%s; MB/s counts payload bytes (10^6);\n"
	       "tap cost = 1 - (tap msg/s) / (no-tap msg/s) for the same size; tap saw = the lowest share of the\n"
	       "deliveries to " SINK_SERVICE " that the tap subscriber received.\n",
	    reps > 1 ? "msg/s is the median of the runs" : "one run per case");
	for (size_t i = 0; i < nresults; i++) {
		char name[64], pname[32], unit[16], goal[32];
		double v, peer;
		if (sscanf(results[i], "%63[^|]|%lf|%lf|%31[^|]|%15[^|]|%31s", name, &v, &peer, pname, unit, goal) == 6)
			bench_result(name, v, peer, pname, unit, goal);
	}
}

/* ---- flags ---- */

static void usage(FILE *out)
{
	fprintf(out,
	    "usage: " PROG " [FLAGS]\n"
	    "\n"
	    "Measures messages per second through the real loom-broker: starts it in a\n"
	    "temporary directory, streams envelopes from a producer thread (bench.src)\n"
	    "to a consumer thread (bench.sink) through it, small and large, without and\n"
	    "with a tap subscriber attached, then stops it and removes the directory.\n"
	    "Prints one line per case and a table with PASS/MISS against the targets\n"
	    "(>= 500,000 small msg/s; tap cost <= 10%%). A MISS is not a failure: the exit\n"
	    "status is 1 only when the broker did not start or messages were lost.\n"
	    "\n"
	    "  --broker PATH         loom-broker binary (default: ../broker/loom-broker\n"
	    "                        next to this program's folder, from /proc/self/exe)\n"
	    "  --count-small N       envelopes in the timed small stream (default 500000)\n"
	    "  --count-large N       envelopes in the timed large stream (default 50000)\n"
	    "  --size-small BYTES    payload of a small envelope (default 100)\n"
	    "  --size-large BYTES    payload of a large envelope (default 10240)\n"
	    "  --warmup N            untimed envelopes before each case, 0 for none (default 20000)\n"
	    "  --window N            most envelopes in flight (default 10000)\n"
	    "  --credit-every N      the consumer sends a credit every N envelopes (default 1000)\n"
	    "  --stall-timeout MS    no progress this long counts as lost messages (default 10000)\n"
	    "  --start-timeout MS    how long the broker may take to answer (default 10000)\n"
	    "  --repeat N            run every case N times; the table shows the median and\n"
	    "                        the range (default 1)\n"
	    "  --no-tap              skip the two tap cases\n"
	    "  --keep-dir            leave the temporary directory (config, sockets) behind\n"
	    "  -h, --help            this text\n"
	    "\n"
	    "The temporary directory is made in $TMPDIR (default /tmp); its ipc socket\n"
	    "paths must fit in 107 bytes.\n");
}

/* Returns 0 to run, 1 to exit 0 (--help), 2 for a usage error. */
static int parse_flags(bench_opts_t *o, int argc, char **argv)
{
	enum { F_BROKER = 256, F_CSMALL, F_CLARGE, F_SSMALL, F_SLARGE, F_WARMUP, F_WINDOW, F_CREDIT,
		F_STALL, F_START, F_NOTAP, F_KEEP, F_REPEAT };
	static const struct option longopts[] = {
		{ "broker", required_argument, NULL, F_BROKER },
		{ "count-small", required_argument, NULL, F_CSMALL },
		{ "count-large", required_argument, NULL, F_CLARGE },
		{ "size-small", required_argument, NULL, F_SSMALL },
		{ "size-large", required_argument, NULL, F_SLARGE },
		{ "warmup", required_argument, NULL, F_WARMUP },
		{ "window", required_argument, NULL, F_WINDOW },
		{ "credit-every", required_argument, NULL, F_CREDIT },
		{ "stall-timeout", required_argument, NULL, F_STALL },
		{ "start-timeout", required_argument, NULL, F_START },
		{ "repeat", required_argument, NULL, F_REPEAT },
		{ "no-tap", no_argument, NULL, F_NOTAP },
		{ "keep-dir", no_argument, NULL, F_KEEP },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	*o = (bench_opts_t){ .count_small = 500000, .count_large = 50000, .size_small = 100,
		.size_large = 10240, .warmup = 20000, .window = 10000, .credit_every = 1000,
		.stall_ms = 10000, .start_ms = 10000, .repeat = 1, .tap = true };
	int c, rc = 0;
	/* Envelopes stay well under the broker's default max_frame (64 MiB). */
	const long long max_size = 16LL << 20;
	const long long max_count = LLONG_MAX / 2;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case F_BROKER: free(o->broker); o->broker = loom_strdup(optarg); break;
		case F_CSMALL: rc |= bench_parse_num(PROG, "count-small", optarg, 1, max_count, &o->count_small); break;
		case F_CLARGE: rc |= bench_parse_num(PROG, "count-large", optarg, 1, max_count, &o->count_large); break;
		case F_SSMALL: rc |= bench_parse_num(PROG, "size-small", optarg, TRAILER_LEN, max_size, &o->size_small); break;
		case F_SLARGE: rc |= bench_parse_num(PROG, "size-large", optarg, TRAILER_LEN, max_size, &o->size_large); break;
		case F_WARMUP: rc |= bench_parse_num(PROG, "warmup", optarg, 0, max_count, &o->warmup); break;
		case F_WINDOW: rc |= bench_parse_num(PROG, "window", optarg, 1, 90000, &o->window); break;
		case F_CREDIT: rc |= bench_parse_num(PROG, "credit-every", optarg, 1, 90000, &o->credit_every); break;
		case F_STALL: rc |= bench_parse_num(PROG, "stall-timeout", optarg, 100, 3600000, &o->stall_ms); break;
		case F_START: rc |= bench_parse_num(PROG, "start-timeout", optarg, 100, 3600000, &o->start_ms); break;
		case F_REPEAT: rc |= bench_parse_num(PROG, "repeat", optarg, 1, 100, &o->repeat); break;
		case F_NOTAP: o->tap = false; break;
		case F_KEEP: o->keep_dir = true; break;
		case 'h': usage(stdout); return 1;
		default: usage(stderr); return 2;
		}
	}
	if (rc)
		return 2;
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (o->credit_every > o->window) {
		/* The producer would wait for a credit the consumer never sends. */
		fprintf(stderr, PROG ": --credit-every (%lld) must not exceed --window (%lld)\n",
		    o->credit_every, o->window);
		return 2;
	}
	if (o->broker == NULL && (o->broker = bench_next_to_self("broker/loom-broker")) == NULL) {
		fprintf(stderr, PROG ": cannot find this program's path in /proc/self/exe: give --broker\n");
		return 2;
	}
	return 0;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
	bench_t b;
	memset(&b, 0, sizeof b);
	int pr = parse_flags(&b.o, argc, argv);
	if (pr != 0) {
		free(b.o.broker);
		return pr == 1 ? 0 : 2;
	}
	if (access(b.o.broker, X_OK) < 0) {
		fprintf(stderr, PROG ": cannot run loom-broker '%s': %s (build it, or give --broker)\n", b.o.broker,
		    strerror(errno));
		free(b.o.broker);
		return 1;
	}
	bench_signals_install();

	int status = 1;
	char *error = NULL;
	/* Both sizes without a tap, then both with one (see the top comment). */
	const result_t kinds[] = {
		{ .size_name = "small", .size = (size_t)b.o.size_small, .count = b.o.count_small, .tap = false },
		{ .size_name = "large", .size = (size_t)b.o.size_large, .count = b.o.count_large, .tap = false },
		{ .size_name = "small", .size = (size_t)b.o.size_small, .count = b.o.count_small, .tap = true },
		{ .size_name = "large", .size = (size_t)b.o.size_large, .count = b.o.count_large, .tap = true },
	};
	size_t nkinds = b.o.tap ? 4 : 2, reps = (size_t)b.o.repeat;
	result_t *res = loom_calloc(nkinds * reps, sizeof *res);
	tap_t tap;
	memset(&tap, 0, sizeof tap);

	if (setup_dir(&b, &error) < 0 || broker_start(&b, &error) < 0)
		goto out;
	if (client_new(&b, &b.src, SRC_SERVICE, &error) < 0 || client_new(&b, &b.sink, SINK_SERVICE, &error) < 0)
		goto out;
	const char *err;
	if (loom_bus_wait_up(b.src.bus, 5000, &err) < 0 || loom_bus_wait_up(b.sink.bus, 5000, &err) < 0) {
		error = loom_strdup(err);
		goto out;
	}
	printf(PROG ": broker %s (pid %d), config %s, %ld cpus online\n", b.o.broker, (int)b.broker_pid,
	    b.config_path, sysconf(_SC_NPROCESSORS_ONLN));
	printf("window %lld in flight, credit every %lld, warm-up %lld per case, %zu run(s) per case\n\n",
	    b.o.window, b.o.credit_every, b.o.warmup, reps);
	fflush(stdout);
	for (size_t phase = 0; phase < nkinds; phase += 2) {
		bool with_tap = kinds[phase].tap;
		if (with_tap && tap_open(&b, &tap, &error) < 0)
			goto out;
		for (size_t i = 0; i < reps; i++) {
			for (size_t k = phase; k < phase + 2; k++) {
				result_t *r = &res[k * reps + i];
				*r = kinds[k];
				if (run_case(&b, r, with_tap ? &tap : NULL, &error) < 0) {
					char sz[32];
					char *e = loom_sprintf("case %s(%s) %s: %s", r->size_name,
					    bench_fmt_size(sz, sizeof sz, r->size), r->tap ? "tap" : "no tap", error);
					free(error);
					error = e;
					goto out;
				}
				summary_t base = { 0 };
				if (with_tap)
					summarize(&res[(k - 2) * reps], reps, &base);
				print_result(r, base.median, i, reps);
			}
		}
	}
	print_table(res, nkinds, reps);
	status = 0;
out:
	if (error) {
		fprintf(stderr, PROG ": %s\n", error);
		free(error);
	}
	tap_close(&tap);
	free(res);
	client_destroy(&b.src);
	client_destroy(&b.sink);
	client_destroy(&b.ctl);
	if (broker_stop(&b) < 0)
		status = 1;
	if (b.dir) {
		if (b.o.keep_dir)
			printf("kept %s\n", b.dir);
		else
			bench_rm_tree(PROG, b.dir);
	}
	if (b.cfg_loaded)
		loom_deploy_release(&b.cfg);
	free(b.dir);
	free(b.config_path);
	free(b.o.broker);
	return status;
}
