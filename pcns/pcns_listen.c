/* pcns_listen.c - loom-pcns, the password change notification listener
 * (DESIGN.md §6, docs/pcns.md).
 *
 * Notifiers (loom-pcns-notify on the domain controllers) connect a DEALER
 * to this process's ROUTER at pcns.yaml `listen`, always under CURVE with
 * this process's key pair (keys_dir/pcns.key); the ZAP handler admits only
 * the keys listed under `notifiers` and logs every refusal. Each
 * PcnsNotify is stored (its password still sealed to our key) with fsync
 * before it is acknowledged; a change id seen before is acknowledged as a
 * duplicate and dropped. Stored changes are handed to the engine
 * (PasswordSyncRequest, the password opened and sealed again to the
 * engine's key at that moment) until the engine answers.
 *
 * A change (PcnsRecord.state; this block and the code change together):
 *
 *   (PcnsNotify) --bad, or not openable with our key--> refused (PcnsAck ok=false), nothing kept
 *   (PcnsNotify) --change id known--> PcnsAck duplicate; the record counts it
 *   (PcnsNotify) --stored (fsync)--> QUEUED, PcnsAck ok
 *   QUEUED --due (next_at), fewer than in_flight outstanding--> sent to the engine (in flight)
 *   in flight --ACCEPTED or DUPLICATE--> DELIVERED (sealed password cleared)
 *   in flight --UNMATCHED--> UNMATCHED (recorded, never retried)
 *   in flight --REFUSED not retryable--> FAILED
 *   in flight --REFUSED retryable, loom.Error (engine down), no answer in
 *             engine_timeout--> QUEUED, next_at = now + retry_interval;
 *             FAILED once max_retries attempts were made (when not 0)
 *   QUEUED --received more than max_queue_age ago--> EXPIRED
 *   DELIVERED|UNMATCHED|EXPIRED|FAILED --older than history--> deleted
 *
 * At start every QUEUED record is loaded and sent again: the engine drops
 * what it had already taken (DUPLICATE), so delivery is at least once and
 * the effect once.
 */
#include "pcns.h"
#include "pcns.pb-c.h"
#include "loom_alloc.h"
#include "loom_daemon.h"
#include "loom_envelope.h"
#include "loom_log.h"
#include "loom_map.h"
#include "loom_store.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#define TICK_MS 100
#define DRAIN_MAX 512              /* notifications taken per write */
#define REC_KEY_LEN (8 + PCNS_ID_LEN)
#define PRUNE_MS (3600 * 1000)
#define ZAP_ENDPOINT "inproc://zeromq.zap.01"

enum { CF_CHANGE = 1, CF_ID };
static const char *const cfs[] = { "change", "id", NULL };

typedef struct rec {
	Loom__PcnsRecord *r;           /* unpacked: owns its fields */
	uint8_t key[REC_KEY_LEN];      /* in CF_CHANGE */
	bool inflight;                 /* sent to the engine, no answer yet */
	int64_t sent_ms;               /* monotonic */
	uint8_t msg_id[LOOM_MSG_ID_LEN];
} rec_t;

typedef struct nstat {
	uint64_t received;             /* changes stored */
	uint64_t duplicates;           /* copies dropped */
	int64_t last_at;               /* wall clock µs */
} nstat_t;

typedef struct pcns {
	loom_daemon_t *d;
	char *cfg_path;                /* --pcns-config, or NULL: pcns.yaml beside loom.yaml */
	pcns_cfg_t cfg;
	loom_store_t *store;
	loom_batch_t *batch;
	loom_buf_t val;                /* reused */
	void *router;                  /* the notifiers' socket */
	void *zap;                     /* the ZAP handler */
	uint8_t engine_pub[LOOM_KEY_LEN];
	bool have_engine_pub;
	rec_t **queue;                 /* QUEUED records, oldest first */
	size_t nqueue;
	loom_map_t *flights;           /* msg id -> rec_t */
	size_t inflight;
	nstat_t *nstats;               /* per cfg.notifiers */
	uint64_t received, duplicates, delivered, unmatched, expired, failed, refused, engine_errors;
	char *last_error;              /* the last failure of an attempt */
	int timer;
	int64_t pruned_ms;
} pcns_t;

static pcns_t the_pcns;

static void set_str(char **p, const char *v)
{
	if (*p != protobuf_c_empty_string)
		free(*p);
	*p = loom_strdup(v ? v : "");
}

static const char *state_name(int s)
{
	static const char *const names[] = { "queued", "delivered", "unmatched", "expired", "failed" };
	return s >= 0 && s < 5 ? names[s] : "?";
}

/* ---- store ---------------------------------------------------------------------------- */

static void pack(pcns_t *p, const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	loom_buf_reset(&p->val);
	loom_buf_reserve(&p->val, len);
	protobuf_c_message_pack(m, (uint8_t *)p->val.data);
	p->val.len = len;
}

static void rec_free(rec_t **rp)
{
	if (*rp == NULL)
		return;
	if ((*rp)->r)
		loom__pcns_record__free_unpacked((*rp)->r, NULL);
	free(*rp);
	*rp = NULL;
}

/* Writes the record's new state (without fsync: a lost update means one
 * more attempt, which the engine answers DUPLICATE). */
static void rec_save(pcns_t *p, rec_t *rec)
{
	pack(p, &rec->r->base);
	const char *err;
	if (loom_store_put(p->store, CF_CHANGE, rec->key, REC_KEY_LEN, p->val.data, p->val.len, &err) < 0)
		loom_error("cannot record a password change's state account=%s: %s", loom_log_kv_quote(rec->r->account),
		    err);
}

/* ---- the engine ------------------------------------------------------------------------ */

static bool load_engine_key(pcns_t *p)
{
	if (p->have_engine_pub)
		return true;
	char *path = loom_sprintf("%s/%s.pub", loom_daemon_config(p->d)->bus.keys_dir, p->cfg.engine);
	char *err = NULL;
	if (loom_keys_read_public(path, p->engine_pub, &err) == 0) {
		p->have_engine_pub = true;
	} else {
		char *msg = loom_sprintf("cannot seal to the engine: %s (loomctl keys gen %s)", err, p->cfg.engine);
		if (p->last_error == NULL || strcmp(p->last_error, msg) != 0)
			loom_error("%s", msg);
		free(p->last_error);
		p->last_error = msg;
		free(err);
	}
	free(path);
	return p->have_engine_pub;
}

static void queue_remove(pcns_t *p, rec_t *rec)
{
	for (size_t i = 0; i < p->nqueue; i++)
		if (p->queue[i] == rec) {
			memmove(&p->queue[i], &p->queue[i + 1], (p->nqueue - i - 1) * sizeof *p->queue);
			p->nqueue--;
			return;
		}
}

/* The record leaves the queue in a final state. */
static void finish(pcns_t *p, rec_t *rec, Loom__PcnsRecord__State state, const char *why)
{
	Loom__PcnsRecord *r = rec->r;
	r->state = state;
	r->done_at = loom_now_us();
	r->next_at = 0;
	if (why)
		set_str(&r->last_error, why);
	if (r->password) {
		loom__sealed__free_unpacked(r->password, NULL);
		r->password = NULL;
	}
	rec_save(p, rec);
	char *id = loom_hex(r->change_id.data, r->change_id.len);
	if (state == LOOM__PCNS_RECORD__STATE__DELIVERED)
		loom_info("password change delivered change=%s notifier=%s account=%s engine=%s attempts=%u", id, r->notifier,
		    loom_log_kv_quote(r->account), r->engine_status, r->attempts);
	else
		loom_warning("password change %s change=%s notifier=%s account=%s attempts=%u: %s", state_name(state), id,
		    r->notifier, loom_log_kv_quote(r->account), r->attempts, why ? why : r->engine_message);
	free(id);
	switch (state) {
	case LOOM__PCNS_RECORD__STATE__DELIVERED: p->delivered++; break;
	case LOOM__PCNS_RECORD__STATE__UNMATCHED: p->unmatched++; break;
	case LOOM__PCNS_RECORD__STATE__EXPIRED: p->expired++; break;
	default: p->failed++; break;
	}
	queue_remove(p, rec);
	rec_free(&rec);
}

/* An attempt failed: again after retry_interval, or FAILED past max_retries. */
static void attempt_failed(pcns_t *p, rec_t *rec, const char *why)
{
	p->engine_errors++;
	free(p->last_error);
	p->last_error = loom_strdup(why);
	set_str(&rec->r->last_error, why);
	if (p->cfg.max_retries && rec->r->attempts >= (uint32_t)p->cfg.max_retries) {
		char *msg = loom_sprintf("gave up after %u attempts: %s", rec->r->attempts, why);
		finish(p, rec, LOOM__PCNS_RECORD__STATE__FAILED, msg);
		free(msg);
		return;
	}
	rec->r->next_at = loom_now_us() + p->cfg.retry_interval_ms * 1000;
	rec_save(p, rec);
	loom_info("password change not taken by the engine yet account=%s attempt=%u retry_in_ms=%lld: %s",
	    loom_log_kv_quote(rec->r->account), rec->r->attempts, p->cfg.retry_interval_ms, loom_log_kv_quote(why));
}

static int send_one(pcns_t *p, rec_t *rec)
{
	Loom__PcnsRecord *r = rec->r;
	const loom_keypair_t *kp = loom_daemon_keypair(p->d);
	uint8_t *plain = NULL;
	size_t plen = 0;
	if (r->password == NULL || loom_unseal(kp, r->password, &plain, &plen) < 0) {
		finish(p, rec, LOOM__PCNS_RECORD__STATE__FAILED, "the stored password does not open with this listener's key");
		return 0;
	}
	Loom__Sealed sealed = LOOM__SEALED__INIT;
	loom_seal(p->engine_pub, p->cfg.engine, plain, plen, &sealed);
	loom_unsealed_free(&plain, plen);
	char *origin = loom_sprintf("pcns:%s", r->notifier);
	Loom__PasswordSyncRequest rq = LOOM__PASSWORD_SYNC_REQUEST__INIT;
	rq.change_id = r->change_id;
	rq.agent = r->agent;
	rq.account = r->account;
	rq.dn = r->dn;
	rq.anchor = r->anchor;
	rq.password = &sealed;
	rq.changed_at = r->changed_at;
	rq.origin = origin;
	const char *err;
	int rc = loom_bus_send(loom_daemon_bus(p->d), p->cfg.engine, &rq.base, NULL, rec->msg_id, &err);
	loom_sealed_release(&sealed);
	free(origin);
	if (rc < 0) {
		loom_warning("cannot send a password change to the engine: %s", err);
		return -1;
	}
	r->attempts++;
	rec->inflight = true;
	rec->sent_ms = loom_mono_ms();
	loom_map_put(p->flights, rec->msg_id, LOOM_MSG_ID_LEN, rec);
	p->inflight++;
	return 0;
}

static void pump(pcns_t *p)
{
	int64_t now = loom_now_us();
	for (size_t i = 0; i < p->nqueue && p->inflight < (size_t)p->cfg.in_flight; i++) {
		rec_t *rec = p->queue[i];
		if (rec->inflight)
			continue;
		if (p->cfg.max_queue_age_ms && now - rec->r->received_at > p->cfg.max_queue_age_ms * 1000) {
			char *msg = loom_sprintf("not taken by the engine within max_queue_age (%lld ms)%s%s",
			    p->cfg.max_queue_age_ms, rec->r->last_error[0] ? "; last error: " : "", rec->r->last_error);
			finish(p, rec, LOOM__PCNS_RECORD__STATE__EXPIRED, msg);
			free(msg);
			i--;
			continue;
		}
		if (rec->r->next_at > now)
			continue;
		if (!load_engine_key(p))
			return;
		if (send_one(p, rec) < 0)
			return;
		if (i < p->nqueue && p->queue[i] != rec)
			i--; /* finished (failed) by send_one: the list moved */
	}
}

static rec_t *flight_take(pcns_t *p, const ProtobufCBinaryData *corr)
{
	if (corr->len != LOOM_MSG_ID_LEN)
		return NULL;
	rec_t *rec = loom_map_remove(p->flights, corr->data, corr->len);
	if (rec) {
		rec->inflight = false;
		p->inflight--;
	}
	return rec;
}

static void on_engine_reply(pcns_t *p, Loom__Envelope *env, rec_t *rec)
{
	const char *err;
	Loom__PasswordSyncReply *rep = (Loom__PasswordSyncReply *)loom_envelope_body(env,
	    &loom__password_sync_reply__descriptor, &err);
	if (rep == NULL) {
		attempt_failed(p, rec, err);
		return;
	}
	static const char *const st[] = { "accepted", "duplicate", "unmatched", "refused" };
	set_str(&rec->r->engine_status, rep->status <= 3 ? st[rep->status] : "?");
	set_str(&rec->r->engine_message, rep->message);
	switch (rep->status) {
	case LOOM__PASSWORD_SYNC_REPLY__STATUS__ACCEPTED:
	case LOOM__PASSWORD_SYNC_REPLY__STATUS__DUPLICATE:
		finish(p, rec, LOOM__PCNS_RECORD__STATE__DELIVERED, NULL);
		break;
	case LOOM__PASSWORD_SYNC_REPLY__STATUS__UNMATCHED:
		finish(p, rec, LOOM__PCNS_RECORD__STATE__UNMATCHED, rep->message);
		break;
	default:
		if (rep->retryable) {
			char *msg = loom_sprintf("the engine refused it for now: %s", rep->message);
			attempt_failed(p, rec, msg);
			free(msg);
		} else {
			char *msg = loom_sprintf("the engine refused it: %s", rep->message);
			finish(p, rec, LOOM__PCNS_RECORD__STATE__FAILED, msg);
			free(msg);
		}
		break;
	}
	protobuf_c_message_free_unpacked(&rep->base, NULL);
}

/* ---- notifiers ------------------------------------------------------------------------ */

static const pcns_notifier_cfg_t *notifier_find(pcns_t *p, const char *name, size_t *ret_index)
{
	const pcns_notifier_cfg_t *n = p->cfg.notifiers.v;
	for (size_t i = 0; i < p->cfg.notifiers.n; i++)
		if (strcmp(n[i].name, name) == 0) {
			*ret_index = i;
			return &n[i];
		}
	return NULL;
}

static int on_zap(loom_loop_t *loop, void *arg)
{
	(void)loop;
	pcns_t *p = arg;
	for (;;) {
		zmq_msg_t f[8];
		int n = 0;
		bool more = true;
		while (more) {
			zmq_msg_t *m = &f[n < 7 ? n : 7];
			zmq_msg_init(m);
			if (zmq_msg_recv(m, p->zap, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
				zmq_msg_close(m);
				if (n == 0)
					return 0;
				break;
			}
			more = zmq_msg_more(m);
			if (n >= 7)
				zmq_msg_close(m);
			else
				n++;
		}
		const char *status = "400", *text = "key not listed under notifiers", *user = "";
		char z85[LOOM_Z85_KEY_LEN + 1] = "?", addr[64] = "?";
		if (n == 7) {
			snprintf(addr, sizeof addr, "%.*s", (int)zmq_msg_size(&f[3]), (char *)zmq_msg_data(&f[3]));
			if (zmq_msg_size(&f[5]) == 5 && memcmp(zmq_msg_data(&f[5]), "CURVE", 5) == 0 &&
			    zmq_msg_size(&f[6]) == LOOM_KEY_LEN) {
				const uint8_t *key = zmq_msg_data(&f[6]);
				loom_keys_z85(key, z85);
				const pcns_notifier_cfg_t *nc = p->cfg.notifiers.v;
				for (size_t i = 0; i < p->cfg.notifiers.n; i++)
					if (sodium_memcmp(nc[i].pub, key, LOOM_KEY_LEN) == 0) {
						status = "200";
						text = "OK";
						user = nc[i].name;
					}
			} else {
				text = "only CURVE is accepted";
			}
		}
		if (strcmp(status, "200") == 0) {
			loom_debug("notifier admitted name=%s key=%s address=%s", user, z85, addr);
		} else {
			p->refused++;
			loom_warning("refused notifier key=%s address=%s reason=%s", z85, addr, loom_log_kv_quote(text));
		}
		if (n >= 2) {
			zmq_send(p->zap, "1.0", 3, ZMQ_SNDMORE);
			zmq_send(p->zap, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), ZMQ_SNDMORE);
			zmq_send(p->zap, status, 3, ZMQ_SNDMORE);
			zmq_send(p->zap, text, strlen(text), ZMQ_SNDMORE);
			zmq_send(p->zap, user, strlen(user), ZMQ_SNDMORE);
			zmq_send(p->zap, "", 0, 0);
		}
		for (int i = 0; i < n; i++)
			zmq_msg_close(&f[i]);
	}
}

typedef struct pending_ack {
	zmq_msg_t ident;               /* the notifier's routing id */
	Loom__PcnsAck ack;
	uint8_t id[PCNS_ID_LEN];
	bool stored;                   /* its record is in the batch */
} pending_ack_t;

/* Checks one notification; on success puts its record in p->batch and
 * returns it (to queue once written), else fills the ack's refusal. */
static rec_t *take(pcns_t *p, const char *user, const uint8_t *data, size_t len, pending_ack_t *pa, loom_map_t *seen)
{
	Loom__PcnsAck *ack = &pa->ack;
	size_t ni;
	const pcns_notifier_cfg_t *nc = notifier_find(p, user, &ni);
	Loom__PcnsNotify *n = loom__pcns_notify__unpack(NULL, len, data);
	if (n == NULL || nc == NULL || n->change_id.len != PCNS_ID_LEN || n->password == NULL) {
		ack->code = "bad-notification";
		ack->message = "the notification does not decode, or lacks its change id or password";
		loom_warning("refused a notification notifier=%s: %s", user, ack->message);
		p->refused++;
		if (n)
			loom__pcns_notify__free_unpacked(n, NULL);
		return NULL;
	}
	memcpy(pa->id, n->change_id.data, PCNS_ID_LEN);
	ack->change_id.data = pa->id;
	ack->change_id.len = PCNS_ID_LEN;
	rec_t *rec = NULL;
	char *id = loom_hex(n->change_id.data, PCNS_ID_LEN);
	if (strcmp(n->notifier, user) != 0) {
		ack->code = "bad-notification";
		ack->message = "the notification names another notifier than the key it came with";
		loom_warning("refused a notification change=%s notifier=%s names=%s: %s", id, user,
		    loom_log_kv_quote(n->notifier), ack->message);
		p->refused++;
		goto out;
	}
	/* a copy of a change we have (stored, or earlier in this batch) */
	void *val;
	size_t vlen;
	const char *err;
	int rc = loom_store_get(p->store, CF_ID, n->change_id.data, PCNS_ID_LEN, &val, &vlen, &err);
	if (rc > 0)
		free(val);
	if (rc > 0 || loom_map_get(seen, n->change_id.data, PCNS_ID_LEN)) {
		ack->ok = true;
		ack->duplicate = true;
		p->duplicates++;
		p->nstats[ni].duplicates++;
		loom_info("password change duplicate change=%s notifier=%s account=%s: dropped", id, user,
		    loom_log_kv_quote(n->account));
		goto out;
	}
	if (rc < 0) {
		ack->code = "store-failed";
		ack->message = "the listener cannot read its store";
		ack->retryable = true;
		loom_error("cannot look a change up change=%s: %s", id, err);
		goto out;
	}
	/* it must open with our key, or it was sealed for another listener */
	uint8_t *plain;
	size_t plen;
	if (loom_unseal(loom_daemon_keypair(p->d), n->password, &plain, &plen) < 0) {
		ack->code = "cannot-open";
		ack->message = "the password does not open with this listener's key";
		loom_warning("refused a notification change=%s notifier=%s: %s", id, user, ack->message);
		p->refused++;
		goto out;
	}
	loom_unsealed_free(&plain, plen);
	Loom__PcnsRecord r = LOOM__PCNS_RECORD__INIT;
	r.change_id = n->change_id;
	r.notifier = n->notifier;
	r.agent = nc->agent;
	r.account = n->account;
	r.dn = n->dn;
	r.anchor = n->anchor;
	r.password = n->password;
	r.changed_at = n->changed_at;
	r.received_at = loom_now_us();
	r.hook = n->hook;
	r.state = LOOM__PCNS_RECORD__STATE__QUEUED;
	rec = loom_calloc(1, sizeof *rec);
	loom_store_put_u64be(rec->key, ~(unsigned long long)r.received_at);
	memcpy(rec->key + 8, n->change_id.data, PCNS_ID_LEN);
	pack(p, &r.base);
	rec->r = loom__pcns_record__unpack(NULL, p->val.len, (const uint8_t *)p->val.data);
	loom_batch_put(p->batch, CF_CHANGE, rec->key, REC_KEY_LEN, p->val.data, p->val.len);
	loom_batch_put(p->batch, CF_ID, n->change_id.data, PCNS_ID_LEN, rec->key, REC_KEY_LEN);
	loom_map_put(seen, n->change_id.data, PCNS_ID_LEN, rec);
	pa->stored = true;
	p->nstats[ni].received++;
	p->nstats[ni].last_at = r.received_at;
out:
	free(id);
	loom__pcns_notify__free_unpacked(n, NULL);
	return rec;
}

static int on_router(loom_loop_t *loop, void *arg)
{
	(void)loop;
	pcns_t *p = arg;
	pending_ack_t *acks = loom_calloc(DRAIN_MAX, sizeof *acks);
	rec_t **recs = loom_calloc(DRAIN_MAX, sizeof *recs);
	size_t n = 0;
	loom_map_t *seen = loom_map_new();
	loom_batch_clear(p->batch);
	while (n < DRAIN_MAX) {
		pending_ack_t *pa = &acks[n];
		zmq_msg_init(&pa->ident);
		if (zmq_msg_recv(&pa->ident, p->router, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&pa->ident);
			break;
		}
		zmq_msg_t body;
		zmq_msg_init(&body);
		if (!zmq_msg_more(&pa->ident) || zmq_msg_recv(&body, p->router, 0) < 0) {
			zmq_msg_close(&body);
			zmq_msg_close(&pa->ident);
			continue;
		}
		while (zmq_msg_more(&body)) { /* surplus frames: not ours */
			zmq_msg_t extra;
			zmq_msg_init(&extra);
			zmq_msg_recv(&extra, p->router, 0);
			bool more = zmq_msg_more(&extra);
			zmq_msg_close(&extra);
			if (!more)
				break;
		}
		const char *user = zmq_msg_gets(&body, "User-Id");
		loom__pcns_ack__init(&pa->ack);
		recs[n] = take(p, user ? user : "", zmq_msg_data(&body), zmq_msg_size(&body), pa, seen);
		zmq_msg_close(&body);
		n++;
	}
	loom_map_destroy(&seen);
	if (n == 0)
		goto out;
	bool written = true;
	if (loom_batch_count(p->batch)) {
		const char *err;
		if (loom_store_write(p->store, p->batch, &err) < 0) {
			loom_error("cannot store password changes count=%zu: %s", n, err);
			written = false;
		}
		loom_batch_clear(p->batch);
	}
	for (size_t i = 0; i < n; i++) {
		pending_ack_t *pa = &acks[i];
		if (pa->stored) {
			if (written) {
				pa->ack.ok = true;
				p->received++;
				p->queue = loom_realloc(p->queue, (p->nqueue + 1) * sizeof *p->queue);
				p->queue[p->nqueue++] = recs[i];
				char *id = loom_hex(pa->id, PCNS_ID_LEN);
				loom_info("password change queued change=%s notifier=%s agent=%s account=%s", id, recs[i]->r->notifier,
				    recs[i]->r->agent, loom_log_kv_quote(recs[i]->r->account));
				free(id);
			} else {
				pa->ack.code = "store-failed";
				pa->ack.message = "the listener cannot write its store";
				pa->ack.retryable = true;
				rec_free(&recs[i]);
			}
		}
		size_t len = protobuf_c_message_get_packed_size(&pa->ack.base);
		uint8_t *buf = loom_malloc(len ? len : 1);
		protobuf_c_message_pack(&pa->ack.base, buf);
		if (zmq_msg_send(&pa->ident, p->router, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
		    zmq_send(p->router, buf, len, ZMQ_DONTWAIT) < 0)
			loom_debug("cannot acknowledge to a notifier: %s", zmq_strerror(errno));
		free(buf);
		zmq_msg_close(&pa->ident);
	}
	pump(p);
out:
	free(acks);
	free(recs);
	return 0;
}

/* ---- loomctl pcns status ----------------------------------------------------------------- */

static void on_status(pcns_t *p, Loom__Envelope *env)
{
	const char *err;
	Loom__PcnsStatusRequest *rq = (Loom__PcnsStatusRequest *)loom_envelope_body(env,
	    &loom__pcns_status_request__descriptor, &err);
	if (rq == NULL) {
		loom_bus_reply_error(loom_daemon_bus(p->d), env, LOOM__ERROR__CODE__MALFORMED, false, err, &err);
		return;
	}
	Loom__PcnsStatusReply rep = LOOM__PCNS_STATUS_REPLY__INIT;
	rep.queued = p->nqueue;
	rep.oldest_queued_at = p->nqueue ? p->queue[0]->r->received_at : 0;
	for (size_t i = 1; i < p->nqueue; i++)
		if (p->queue[i]->r->received_at < rep.oldest_queued_at)
			rep.oldest_queued_at = p->queue[i]->r->received_at;
	rep.in_flight = p->inflight;
	rep.received = p->received;
	rep.duplicates = p->duplicates;
	rep.delivered = p->delivered;
	rep.unmatched = p->unmatched;
	rep.expired = p->expired;
	rep.failed = p->failed;
	rep.refused = p->refused;
	rep.engine_errors = p->engine_errors;
	rep.last_error = p->last_error ? p->last_error : "";
	rep.max_queue_age_ms = p->cfg.max_queue_age_ms;
	rep.max_retries = (uint32_t)p->cfg.max_retries;
	rep.retry_interval_ms = p->cfg.retry_interval_ms;
	rep.listen = p->cfg.listen;
	size_t nn = p->cfg.notifiers.n;
	Loom__PcnsNotifierStatus *ns = loom_calloc(nn ? nn : 1, sizeof *ns);
	Loom__PcnsNotifierStatus **nsp = loom_calloc(nn ? nn : 1, sizeof *nsp);
	const pcns_notifier_cfg_t *nc = p->cfg.notifiers.v;
	for (size_t i = 0; i < nn; i++) {
		loom__pcns_notifier_status__init(&ns[i]);
		ns[i].name = nc[i].name;
		ns[i].agent = nc[i].agent;
		ns[i].received = p->nstats[i].received;
		ns[i].duplicates = p->nstats[i].duplicates;
		ns[i].last_at = p->nstats[i].last_at;
		nsp[i] = &ns[i];
	}
	rep.notifiers = nsp;
	rep.n_notifiers = nn;
	uint32_t limit = rq->limit > 10000 ? 10000 : rq->limit;
	rep.changes = loom_calloc(limit ? limit : 1, sizeof *rep.changes);
	loom_iter_t *it = loom_iter_new(p->store, CF_CHANGE);
	for (loom_iter_seek_first(it); loom_iter_valid(it); loom_iter_next(it)) {
		rep.kept++;
		if (rep.n_changes >= limit)
			continue;
		size_t vl;
		const void *v = loom_iter_value(it, &vl);
		Loom__PcnsRecord *r = loom__pcns_record__unpack(NULL, vl, v);
		if (r == NULL)
			continue;
		if (rq->state[0] && strcmp(rq->state, state_name(r->state)) != 0) {
			loom__pcns_record__free_unpacked(r, NULL);
			continue;
		}
		if (r->password) {
			loom__sealed__free_unpacked(r->password, NULL);
			r->password = NULL;
		}
		rep.changes[rep.n_changes++] = r;
	}
	loom_iter_destroy(&it);
	if (loom_bus_reply(loom_daemon_bus(p->d), env, &rep.base, &err) < 0)
		loom_warning("cannot answer a status request from=%s: %s", env->from, err);
	for (size_t i = 0; i < rep.n_changes; i++)
		loom__pcns_record__free_unpacked(rep.changes[i], NULL);
	free(rep.changes);
	free(ns);
	free(nsp);
	protobuf_c_message_free_unpacked(&rq->base, NULL);
}

/* ---- the daemon ---------------------------------------------------------------------------- */

static void pcns_message(loom_daemon_t *d, Loom__Envelope *env)
{
	pcns_t *p = loom_daemon_user(d);
	if (loom_envelope_is(env, &loom__password_sync_reply__descriptor)) {
		rec_t *rec = flight_take(p, &env->correlation_id);
		if (rec)
			on_engine_reply(p, env, rec);
		pump(p);
	} else if (loom_envelope_is(env, &loom__error__descriptor)) {
		rec_t *rec = flight_take(p, &env->correlation_id);
		if (rec) {
			const char *err;
			Loom__Error *er = (Loom__Error *)loom_envelope_body(env, &loom__error__descriptor, &err);
			char *msg = loom_sprintf("the bus answered: %s", er ? er->message : err);
			attempt_failed(p, rec, msg);
			free(msg);
			if (er)
				protobuf_c_message_free_unpacked(&er->base, NULL);
		}
	} else if (loom_envelope_is(env, &loom__pcns_status_request__descriptor)) {
		on_status(p, env);
	} else if (env->correlation_id.len == 0) {
		const char *err;
		loom_bus_reply_error(loom_daemon_bus(d), env, LOOM__ERROR__CODE__UNKNOWN_TYPE, false,
		    "loom-pcns does not handle this message", &err);
	}
	loom_envelope_free(&env);
}

static void prune(pcns_t *p)
{
	if (p->cfg.history_ms == 0)
		return;
	uint8_t from[8];
	loom_store_put_u64be(from, ~(unsigned long long)(loom_now_us() - p->cfg.history_ms * 1000));
	loom_iter_t *it = loom_iter_new_ex(p->store, CF_CHANGE, false);
	loom_batch_clear(p->batch);
	size_t n = 0;
	for (loom_iter_seek(it, from, sizeof from); loom_iter_valid(it) && n < 10000; loom_iter_next(it)) {
		size_t kl, vl;
		const void *k = loom_iter_key(it, &kl);
		const void *v = loom_iter_value(it, &vl);
		Loom__PcnsRecord *r = loom__pcns_record__unpack(NULL, vl, v);
		if (r && r->state == LOOM__PCNS_RECORD__STATE__QUEUED) {
			loom__pcns_record__free_unpacked(r, NULL);
			continue;
		}
		if (r) {
			loom_batch_delete(p->batch, CF_ID, r->change_id.data, r->change_id.len);
			loom__pcns_record__free_unpacked(r, NULL);
		}
		loom_batch_delete(p->batch, CF_CHANGE, k, kl);
		n++;
	}
	loom_iter_destroy(&it);
	const char *err;
	if (n && loom_store_write_ex(p->store, p->batch, false, &err) < 0)
		loom_warning("cannot prune the history: %s", err);
	else if (n)
		loom_info("history pruned records=%zu", n);
	loom_batch_clear(p->batch);
}

static int on_tick(loom_loop_t *loop, void *arg)
{
	(void)loop;
	pcns_t *p = arg;
	int64_t now = loom_mono_ms();
	for (size_t i = 0; i < p->nqueue; i++) {
		rec_t *rec = p->queue[i];
		if (rec->inflight && now - rec->sent_ms >= p->cfg.engine_timeout_ms) {
			ProtobufCBinaryData corr = { LOOM_MSG_ID_LEN, rec->msg_id };
			flight_take(p, &corr);
			char *msg = loom_sprintf("no answer from the engine in %lld ms", p->cfg.engine_timeout_ms);
			attempt_failed(p, rec, msg); /* may finish it: the list moves */
			free(msg);
			i = (size_t)-1;
		}
	}
	pump(p);
	if (now - p->pruned_ms >= PRUNE_MS) {
		p->pruned_ms = now;
		prune(p);
	}
	return 0;
}

static int load_cfg(loom_daemon_t *d, const char *path, pcns_cfg_t *cfg, char **ret_error)
{
	loom_cfg_diags_t diags;
	memset(&diags, 0, sizeof diags);
	if (pcns_cfg_load(path, cfg, &diags) == 0) {
		loom_cfg_diags_release(&diags);
		return 0;
	}
	*ret_error = loom_cfg_diags_join(&diags, "\n");
	loom_cfg_diags_release(&diags);
	(void)d;
	return -1;
}

static char *cfg_path(loom_daemon_t *d)
{
	pcns_t *p = &the_pcns;
	return p->cfg_path ? loom_strdup(p->cfg_path) : pcns_cfg_beside(loom_daemon_config(d)->path, "pcns.yaml");
}

static int pcns_check(loom_daemon_t *d, const char **error_r)
{
	static char *msg;
	char *path = cfg_path(d);
	pcns_cfg_t cfg;
	memset(&cfg, 0, sizeof cfg);
	free(msg);
	msg = NULL;
	int rc = load_cfg(d, path, &cfg, &msg);
	pcns_cfg_release(&cfg);
	free(path);
	*error_r = msg;
	return rc;
}

static int pcns_start(loom_daemon_t *d, const char **error_r)
{
	static char *msg;
	pcns_t *p = &the_pcns;
	p->d = d;
	loom_daemon_set_user(d, p);
	char *path = cfg_path(d);
	int rc = load_cfg(d, path, &p->cfg, &msg);
	free(path);
	if (rc < 0) {
		*error_r = msg;
		return -1;
	}
	const loom_keypair_t *kp = loom_daemon_keypair(d);
	if (kp == NULL) {
		msg = loom_sprintf("no key pair '%s/%s.key': the listener needs one for CURVE and sealed passwords "
				   "(loomctl keys gen %s)", loom_daemon_config(d)->bus.keys_dir, loom_daemon_service(d),
		    loom_daemon_service(d));
		*error_r = msg;
		return -1;
	}
	const loom_deploy_t *dc = loom_daemon_config(d);
	(void)mkdir(dc->state_dir, 0755);
	char *spath = loom_sprintf("%s/pcns", dc->state_dir);
	loom_store_opts_t so;
	loom_store_opts_default(&so);
	char *err = NULL;
	rc = loom_store_open(spath, cfs, &so, &p->store, &err);
	free(spath);
	if (rc < 0) {
		msg = err;
		*error_r = msg;
		return -1;
	}
	p->batch = loom_batch_new(p->store);
	p->flights = loom_map_new();
	p->nstats = loom_calloc(p->cfg.notifiers.n ? p->cfg.notifiers.n : 1, sizeof *p->nstats);
	/* the queue: QUEUED records, oldest first (the store holds them newest first) */
	loom_iter_t *it = loom_iter_new(p->store, CF_CHANGE);
	for (loom_iter_seek_first(it); loom_iter_valid(it); loom_iter_next(it)) {
		size_t kl, vl;
		const void *k = loom_iter_key(it, &kl);
		const void *v = loom_iter_value(it, &vl);
		if (kl != REC_KEY_LEN)
			continue;
		Loom__PcnsRecord *r = loom__pcns_record__unpack(NULL, vl, v);
		if (r == NULL)
			continue;
		if (r->state != LOOM__PCNS_RECORD__STATE__QUEUED) {
			loom__pcns_record__free_unpacked(r, NULL);
			continue;
		}
		r->next_at = 0; /* at once */
		rec_t *rec = loom_calloc(1, sizeof *rec);
		rec->r = r;
		memcpy(rec->key, k, REC_KEY_LEN);
		p->queue = loom_realloc(p->queue, (p->nqueue + 1) * sizeof *p->queue);
		memmove(p->queue + 1, p->queue, p->nqueue * sizeof *p->queue);
		p->queue[0] = rec;
		p->nqueue++;
	}
	const char *ierr;
	rc = loom_iter_status(it, &ierr);
	loom_iter_destroy(&it);
	if (rc < 0) {
		msg = loom_sprintf("cannot read the queue: %s", ierr);
		*error_r = msg;
		return -1;
	}
	/* the notifiers' socket: CURVE server with our key, keys checked by ZAP */
	void *zctx = loom_daemon_zctx(d);
	p->zap = zmq_socket(zctx, ZMQ_REP);
	int linger = 0;
	if (p->zap == NULL || zmq_bind(p->zap, ZAP_ENDPOINT) < 0) {
		msg = loom_sprintf("cannot bind the ZAP handler: %s", zmq_strerror(errno));
		*error_r = msg;
		return -1;
	}
	zmq_setsockopt(p->zap, ZMQ_LINGER, &linger, sizeof linger);
	p->router = zmq_socket(zctx, ZMQ_ROUTER);
	int one = 1;
	zmq_setsockopt(p->router, ZMQ_LINGER, &linger, sizeof linger);
	zmq_setsockopt(p->router, ZMQ_CURVE_SERVER, &one, sizeof one);
	zmq_setsockopt(p->router, ZMQ_CURVE_SECRETKEY, kp->sec, LOOM_KEY_LEN);
	zmq_setsockopt(p->router, ZMQ_ZAP_DOMAIN, "pcns", 4);
	if (zmq_bind(p->router, p->cfg.listen) < 0) {
		msg = loom_sprintf("cannot listen on '%s': %s", p->cfg.listen, zmq_strerror(errno));
		*error_r = msg;
		return -1;
	}
	loom_loop_t *loop = loom_daemon_loop(d);
	loom_loop_add_socket(loop, p->zap, on_zap, p);
	loom_loop_add_socket(loop, p->router, on_router, p);
	p->timer = loom_loop_add_timer(loop, TICK_MS, 0, on_tick, p);
	p->pruned_ms = loom_mono_ms() - PRUNE_MS + 60000;
	char z85[LOOM_Z85_KEY_LEN + 1];
	loom_keys_z85(kp->pub, z85);
	loom_info("listening endpoint=%s key=%s notifiers=%zu queued=%zu engine=%s", loom_log_kv_quote(p->cfg.listen), z85,
	    p->cfg.notifiers.n, p->nqueue, p->cfg.engine);
	load_engine_key(p);
	pump(p);
	return 0;
}

static void pcns_stop(loom_daemon_t *d)
{
	pcns_t *p = loom_daemon_user(d);
	if (p == NULL)
		return;
	loom_loop_t *loop = loom_daemon_loop(d);
	if (p->timer)
		loom_loop_cancel_timer(loop, p->timer);
	if (p->router) {
		loom_loop_remove_socket(loop, p->router);
		zmq_close(p->router);
	}
	if (p->zap) {
		loom_loop_remove_socket(loop, p->zap);
		zmq_close(p->zap);
	}
	for (size_t i = 0; i < p->nqueue; i++)
		rec_free(&p->queue[i]);
	free(p->queue);
	loom_map_destroy(&p->flights);
	free(p->nstats);
	free(p->last_error);
	loom_batch_destroy(&p->batch);
	loom_store_close(&p->store);
	loom_buf_release(&p->val);
	pcns_cfg_release(&p->cfg);
	sodium_memzero(p->engine_pub, sizeof p->engine_pub);
}

static int set_cfg(loom_daemon_t *d, const char *v, const char **error_r)
{
	(void)d;
	(void)error_r;
	free(the_pcns.cfg_path);
	the_pcns.cfg_path = loom_strdup(v);
	return 0;
}

static const loom_flag_t flags[] = {
	{ "pcns-config", "FILE", "the listener's file (default: pcns.yaml beside loom.yaml)", set_cfg },
	{ NULL, NULL, NULL, NULL },
};

static const char *const stores[] = { "pcns", NULL };

static const loom_daemon_def_t def = {
	.process = "loom-pcns",
	.summary = "Loom's password change notification listener: takes changes from loom-pcns-notify on the domain "
		   "controllers, queues them durably and hands them to the engine. See docs/pcns.md.",
	.default_service = "pcns",
	.bus_client = true,
	.flags = flags,
	.start = pcns_start,
	.on_message = pcns_message,
	.stop = pcns_stop,
	.check = pcns_check,
	.own_config = &pcns_cfg_table,
	.own_config_what = "listener file pcns.yaml (--pcns-config)",
	.stores = stores,
};

int main(int argc, char **argv)
{
	if (sodium_init() < 0) {
		fprintf(stderr, "loom-pcns: cannot start: libsodium does not initialise\n");
		return 1;
	}
	int rc = loom_daemon_main(&def, argc, argv);
	free(the_pcns.cfg_path);
	return rc;
}
