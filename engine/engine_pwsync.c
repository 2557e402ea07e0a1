/* engine_pwsync.c - password synchronization (DESIGN.md §6, docs/pcns.md).
 *
 * A PasswordSyncRequest (from loom-pcns, which took it from a domain
 * controller's notifier) names a source agent, the account (anchor, DN or
 * account name) and the new password sealed to the engine's key. The engine
 * finds the source connector (password_sync.match of the source agent), its
 * metaverse object, and every other connector of that object whose agent
 * has password_sync.enabled; it opens the password, seals it again to each
 * target agent's key (keys_dir/ma.NAME.pub), wipes the clear text, and
 * writes one PasswordSyncRecord holding those sealed boxes before it
 * answers ACCEPTED. From then on only the agents can open what it keeps.
 *
 * A change (PasswordSyncRecord.state; this block and the code change together):
 *
 *   (request) --duplicate change id--> answered DUPLICATE, nothing written
 *   (request) --no connector, or not joined--> UNMATCHED (kept for the report)
 *   (request) --same password this mv object was given within ECHO_MS--> ECHO
 *             (a change Loom made coming back from a target's own hook)
 *   (request) --joined, no target--> NO_TARGETS
 *   (request) --targets--> PENDING (record written with fsync, then ACCEPTED)
 *   PENDING --every target terminal and none in flight--> DONE (all OK) or
 *             PARTIAL (some FAILED or SKIPPED)
 *
 * A target (PasswordSyncTarget.state):
 *
 *   PENDING --due and fewer than AGENT_WINDOW in flight to its agent-->
 *           SetPasswordRequest sent (in flight; attempts + 1)
 *   in flight --reply ok--> OK (sealed box cleared)
 *   in flight --reply not retryable (policy, no such object, cannot open)-->
 *           FAILED with the agent's code and the server's message
 *   in flight --reply not-supported--> SKIPPED (the agent cannot take passwords)
 *   in flight --retryable reply, loom.Error, or no reply in password_sync.timeout-->
 *           PENDING again after retry_interval doubling up to retry_max;
 *           FAILED once max_attempts were made
 *   PENDING --a newer change of the same account arrives--> SUPERSEDED
 *   (at creation) file/policy agent, provisioned but not exported yet -> SKIPPED;
 *           no public key to seal to -> FAILED (no-key)
 *
 * Durability: the record is durable before ACCEPTED (the listener deletes
 * its copy only then): records are written without fsync and a group
 * commit (one synced write, within a millisecond) makes every record
 * written since durable before their answers go; progress is written without fsync
 * (after a crash a target may be set twice: the same password again).
 * Pending records are loaded at start and their targets sent again.
 */
#include "engine.h"
#include "loom_alloc.h"
#include "loom_envelope.h"
#include "loom_keys.h"
#include "loom_log.h"
#include "pcns.pb-c.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PW_TICK_MS 100
#define PW_KEY_LEN 24             /* ~received_at (8) + change id (16) */
#define PW_ID_LEN 16
#define AGENT_WINDOW 16           /* SetPasswordRequests in flight per agent */
#define ECHO_MS (10 * 60 * 1000)  /* a password given to an account this recently, coming back, is an echo */
#define HISTORY_US (30LL * 24 * 3600 * 1000000) /* finished records kept this long */
#define PRUNE_MS (3600 * 1000)

typedef struct pw_rec {
	Loom__PasswordSyncRecord *r;   /* unpacked: owns its fields (protobuf-c's malloc allocator) */
	uint8_t key[PW_KEY_LEN];       /* its key in CF_PWSYNC */
	bool *inflight;                /* per target: a SetPasswordRequest awaits its reply */
	size_t ninflight;              /* how many */
} pw_rec_t;

typedef struct pw_flight {
	pw_rec_t *rec;                 /* whose target */
	size_t ti;                     /* which target */
	size_t agent;                  /* index in e->agents */
	int64_t sent_ms;               /* monotonic */
	uint8_t msg_id[LOOM_MSG_ID_LEN];
} pw_flight_t;

typedef struct pw_ack {
	char *to;                      /* the requester */
	uint8_t corr[LOOM_MSG_ID_LEN]; /* its request's msg id */
	bool have_corr;
	uint8_t id[PW_ID_LEN];         /* the change id */
	size_t idlen;
	int status;                    /* PasswordSyncReply */
	char *message;
	uint32_t targets;
	bool retryable;
	bool durable;                  /* promises a record written since the last commit */
} pw_ack_t;

typedef struct pw_echo {
	uint8_t hash[16];              /* keyed hash of the last password given */
	int64_t at_ms;                 /* monotonic: when */
} pw_echo_t;

struct eng_pwsync {
	pw_rec_t **pending;            /* records not finished, oldest first */
	size_t npending;
	loom_map_t *flights;           /* msg id (16 bytes) -> pw_flight_t */
	size_t *agent_inflight;        /* per e->agents index */
	loom_map_t *echo;              /* mv id hex -> pw_echo_t */
	uint8_t echo_key[crypto_generichash_KEYBYTES]; /* random per process: hashes never leave memory */
	int timer;                     /* the tick */
	int64_t pruned_ms;             /* monotonic: last prune */
	loom_batch_t *batch;           /* reused */
	pw_ack_t *acks;                /* answers waiting for the group commit */
	size_t nacks;
	int flush_timer;               /* armed while answers wait, else 0 */
};

static int flush_acks(loom_loop_t *loop, void *arg);

static const char *const rec_states[] = { "pending", "done", "partial", "unmatched", "echo", "no-targets" };

static const char *rec_state_name(int s) { return s >= 0 && s < 6 ? rec_states[s] : "?"; }

static void set_str(char **p, const char *v)
{
	if (*p != protobuf_c_empty_string)
		free(*p);
	*p = loom_strdup(v ? v : "");
}

/* ---- store -------------------------------------------------------------------------- */

static void rec_key(uint8_t key[PW_KEY_LEN], int64_t received_us, const uint8_t id[PW_ID_LEN])
{
	loom_store_put_u64be(key, ~(unsigned long long)received_us);
	memcpy(key + 8, id, PW_ID_LEN);
}

/* Writes rec (and its id index when first) into b. */
static void rec_put(engine_t *e, loom_batch_t *b, const pw_rec_t *rec, bool first)
{
	size_t len = protobuf_c_message_get_packed_size(&rec->r->base);
	loom_buf_reset(&e->val);
	loom_buf_reserve(&e->val, len);
	protobuf_c_message_pack(&rec->r->base, (uint8_t *)e->val.data);
	loom_batch_put(b, CF_PWSYNC, rec->key, PW_KEY_LEN, e->val.data, len);
	if (first)
		loom_batch_put(b, CF_PWSYNC_ID, rec->r->change_id.data, rec->r->change_id.len, rec->key, PW_KEY_LEN);
}

static int rec_save(engine_t *e, pw_rec_t *rec, bool first, bool sync, const char **error_r)
{
	loom_batch_t *b = e->pwsync->batch;
	loom_batch_clear(b);
	rec_put(e, b, rec, first);
	int rc = loom_store_write_ex(e->store, b, sync, error_r);
	loom_batch_clear(b);
	return rc;
}

static void rec_free(pw_rec_t **rec_p)
{
	pw_rec_t *rec = *rec_p;
	if (rec == NULL)
		return;
	if (rec->r)
		loom__password_sync_record__free_unpacked(rec->r, NULL);
	free(rec->inflight);
	free(rec);
	*rec_p = NULL;
}

/* A record made in memory, packed and unpacked again so that one allocator
 * owns every field (updates then free and replace fields freely). */
static pw_rec_t *rec_adopt(const Loom__PasswordSyncRecord *built, const uint8_t key[PW_KEY_LEN])
{
	size_t len = protobuf_c_message_get_packed_size(&built->base);
	uint8_t *buf = loom_malloc(len ? len : 1);
	protobuf_c_message_pack(&built->base, buf);
	Loom__PasswordSyncRecord *r = loom__password_sync_record__unpack(NULL, len, buf);
	sodium_memzero(buf, len);
	free(buf);
	if (r == NULL)
		return NULL;
	pw_rec_t *rec = loom_calloc(1, sizeof *rec);
	rec->r = r;
	memcpy(rec->key, key, PW_KEY_LEN);
	rec->inflight = loom_calloc(r->n_targets ? r->n_targets : 1, sizeof *rec->inflight);
	return rec;
}

/* ---- the account ---------------------------------------------------------------------- */

static bool attr_has(const Loom__CsObject *cs, const char *name, const char *value)
{
	for (size_t i = 0; i < cs->n_attrs; i++) {
		if (strcasecmp(cs->attrs[i]->name, name) != 0)
			continue;
		for (size_t k = 0; k < cs->attrs[i]->n_values; k++) {
			const Loom__Value *v = cs->attrs[i]->values[k];
			if (v->v_case == LOOM__VALUE__V_STR && strcasecmp(v->str, value) == 0)
				return true;
		}
	}
	return false;
}

/* The connector of agent holding account name: a scan of the agent's
 * connector space (no index on arbitrary attributes; see docs/pcns.md). */
static Loom__CsObject *find_by_account(engine_t *e, const char *agent, const char *attr, const char *name)
{
	loom_buf_t prefix = LOOM_BUF_INIT;
	loom_buf_adds(&prefix, agent);
	loom_buf_addc(&prefix, '\0');
	Loom__CsObject *found = NULL;
	loom_iter_t *it = loom_iter_new_ex(e->store, CF_CS, false);
	for (loom_iter_seek(it, prefix.data, prefix.len); loom_iter_valid(it); loom_iter_next(it)) {
		size_t klen, vlen;
		const void *k = loom_iter_key(it, &klen);
		if (klen < prefix.len || memcmp(k, prefix.data, prefix.len) != 0)
			break;
		const void *v = loom_iter_value(it, &vlen);
		Loom__CsObject *cs = loom__cs_object__unpack(NULL, vlen, v);
		if (cs == NULL)
			continue;
		if (!cs->deleted && attr_has(cs, attr, name)) {
			found = cs;
			break;
		}
		loom__cs_object__free_unpacked(cs, NULL);
	}
	const char *err;
	if (loom_iter_status(it, &err) < 0)
		eng_read_failed(e, err);
	loom_iter_destroy(&it);
	loom_buf_release(&prefix);
	return found;
}

static Loom__CsObject *find_source(engine_t *e, eng_agent_t *a, const Loom__PasswordSyncRequest *rq,
    const char **ret_how)
{
	const loom_agentcfg_pwsync_t *pc = &a->cfg->password_sync;
	for (size_t i = 0; i < pc->match.n; i++) {
		const char *m = pc->match.v[i];
		Loom__CsObject *cs = NULL;
		const char *err = NULL;
		if (strcmp(m, "anchor") == 0 && rq->anchor[0]) {
			cs = eng_cs_get(e, a->cfg->name, rq->anchor, &err);
			if (cs == NULL && err == NULL) {
				/* AD GUIDs are written in lower case by the agent; a hook may not */
				char *low = loom_strdup(rq->anchor);
				for (char *p = low; *p; p++)
					if (*p >= 'A' && *p <= 'Z')
						*p = (char)(*p - 'A' + 'a');
				cs = eng_cs_get(e, a->cfg->name, low, &err);
				free(low);
			}
		} else if (strcmp(m, "dn") == 0 && rq->dn[0]) {
			char *anchor = eng_csdn_get(e, a->cfg->name, rq->dn);
			if (anchor) {
				cs = eng_cs_get(e, a->cfg->name, anchor, &err);
				free(anchor);
			}
		} else if (strcmp(m, "account") == 0 && rq->account[0] && pc->account_attribute) {
			cs = find_by_account(e, a->cfg->name, pc->account_attribute, rq->account);
		}
		if (err)
			eng_read_failed(e, err);
		if (cs && cs->deleted) {
			loom__cs_object__free_unpacked(cs, NULL);
			cs = NULL;
		}
		if (cs) {
			*ret_how = m;
			return cs;
		}
	}
	return NULL;
}

/* ---- replies ------------------------------------------------------------------------------ */

static void send_reply(engine_t *e, const char *to, const uint8_t *corr, const ProtobufCBinaryData *id, int status,
    const char *message, uint32_t targets, bool retryable)
{
	Loom__PasswordSyncReply rep = LOOM__PASSWORD_SYNC_REPLY__INIT;
	rep.change_id = *id;
	rep.status = status;
	rep.message = (char *)(message ? message : "");
	rep.targets = targets;
	rep.retryable = retryable;
	const char *err;
	if (loom_bus_send(loom_daemon_bus(e->daemon), to, &rep.base, corr, NULL, &err) < 0)
		loom_warning("cannot answer a password change to=%s: %s", to, err);
}

/* Answers rq. durable: the answer promises what was just written (without
 * fsync): it waits for the next group commit (flush_acks), as does every
 * answer while one waits, so answers keep their order. */
static void answer_ex(engine_t *e, Loom__Envelope *env, const Loom__PasswordSyncRequest *rq,
    Loom__PasswordSyncReply__Status status, const char *message, uint32_t targets, bool retryable, bool durable)
{
	eng_pwsync_t *ps = e->pwsync;
	if (!durable && ps->nacks == 0) {
		send_reply(e, env->from, env->msg_id.len == LOOM_MSG_ID_LEN ? env->msg_id.data : NULL, &rq->change_id, status,
		    message, targets, retryable);
		return;
	}
	ps->acks = loom_realloc(ps->acks, (ps->nacks + 1) * sizeof *ps->acks);
	pw_ack_t *a = &ps->acks[ps->nacks++];
	memset(a, 0, sizeof *a);
	a->to = loom_strdup(env->from);
	if (env->msg_id.len == LOOM_MSG_ID_LEN) {
		memcpy(a->corr, env->msg_id.data, LOOM_MSG_ID_LEN);
		a->have_corr = true;
	}
	memcpy(a->id, rq->change_id.data, rq->change_id.len < PW_ID_LEN ? rq->change_id.len : PW_ID_LEN);
	a->idlen = rq->change_id.len < PW_ID_LEN ? rq->change_id.len : PW_ID_LEN;
	a->status = status;
	a->message = loom_strdup(message ? message : "");
	a->targets = targets;
	a->retryable = retryable;
	a->durable = durable;
	if (ps->flush_timer == 0)
		ps->flush_timer = loom_loop_add_timer(loom_daemon_loop(e->daemon), 1, 1, flush_acks, e);
}

static void answer(engine_t *e, Loom__Envelope *env, const Loom__PasswordSyncRequest *rq,
    Loom__PasswordSyncReply__Status status, const char *message, uint32_t targets, bool retryable)
{
	answer_ex(e, env, rq, status, message, targets, retryable, false);
}

/* The group commit: one synced write makes every record written since
 * durable (RocksDB's WAL is sequential), then the waiting answers go. */
static int flush_acks(loom_loop_t *loop, void *arg)
{
	(void)loop;
	engine_t *e = arg;
	eng_pwsync_t *ps = e->pwsync;
	ps->flush_timer = 0;
	bool need = false;
	for (size_t i = 0; i < ps->nacks; i++)
		need |= ps->acks[i].durable;
	const char *err = NULL;
	int rc = 0;
	if (need) {
		loom_batch_t *b = ps->batch;
		loom_batch_clear(b);
		uint8_t v[8];
		loom_store_put_u64be(v, (unsigned long long)loom_now_us());
		loom_batch_put(b, CF_META, "pwsync:commit", 13, v, sizeof v);
		rc = loom_store_write_ex(e->store, b, true, &err);
		loom_batch_clear(b);
		if (rc < 0)
			loom_error("cannot make password changes durable count=%zu: %s", ps->nacks, err);
	}
	for (size_t i = 0; i < ps->nacks; i++) {
		pw_ack_t *a = &ps->acks[i];
		ProtobufCBinaryData id = { a->idlen, a->id };
		if (rc < 0 && a->durable)
			/* the listener sends it again; the record (if it survives) answers DUPLICATE then */
			send_reply(e, a->to, a->have_corr ? a->corr : NULL, &id, LOOM__PASSWORD_SYNC_REPLY__STATUS__REFUSED,
			    err, 0, true);
		else
			send_reply(e, a->to, a->have_corr ? a->corr : NULL, &id, a->status, a->message, a->targets,
			    a->retryable);
		free(a->to);
		free(a->message);
	}
	ps->nacks = 0;
	return 0;
}

/* ---- sending ------------------------------------------------------------------------------ */

static void target_done(pw_rec_t *rec, size_t ti, int state, const char *code, const char *message)
{
	Loom__PasswordSyncTarget *t = rec->r->targets[ti];
	t->state = state;
	t->done_at = loom_now_us();
	t->next_at = 0;
	set_str(&t->code, code);
	set_str(&t->message, message);
	if (t->password) {
		loom__sealed__free_unpacked(t->password, NULL);
		t->password = NULL;
	}
}

/* True when the record has nothing left to do; then sets its final state. */
static bool rec_settle(pw_rec_t *rec)
{
	if (rec->ninflight)
		return false;
	bool all_ok = true;
	for (size_t i = 0; i < rec->r->n_targets; i++) {
		int s = rec->r->targets[i]->state;
		if (s == LOOM__PASSWORD_SYNC_TARGET__STATE__PENDING)
			return false;
		if (s != LOOM__PASSWORD_SYNC_TARGET__STATE__OK && s != LOOM__PASSWORD_SYNC_TARGET__STATE__SUPERSEDED)
			all_ok = false;
	}
	if (rec->r->state == LOOM__PASSWORD_SYNC_RECORD__STATE__PENDING) {
		rec->r->state = all_ok ? LOOM__PASSWORD_SYNC_RECORD__STATE__DONE : LOOM__PASSWORD_SYNC_RECORD__STATE__PARTIAL;
		rec->r->done_at = loom_now_us();
	}
	return true;
}

static void pending_remove(eng_pwsync_t *ps, size_t i)
{
	memmove(&ps->pending[i], &ps->pending[i + 1], (ps->npending - i - 1) * sizeof *ps->pending);
	ps->npending--;
}

/* Saves rec (without fsync) and, when it is finished, logs it and lets it go. */
static void rec_progress(engine_t *e, pw_rec_t *rec)
{
	eng_pwsync_t *ps = e->pwsync;
	bool finished = rec_settle(rec);
	const char *err;
	if (rec_save(e, rec, false, false, &err) < 0)
		loom_error("cannot record password sync progress account=%s: %s", loom_log_kv_quote(rec->r->account), err);
	if (!finished)
		return;
	char *id = loom_hex(rec->r->change_id.data, rec->r->change_id.len);
	loom_info("password change finished change=%s account=%s state=%s targets=%zu", id,
	    loom_log_kv_quote(rec->r->account), rec_state_name(rec->r->state), rec->r->n_targets);
	free(id);
	for (size_t i = 0; i < ps->npending; i++)
		if (ps->pending[i] == rec) {
			pending_remove(ps, i);
			break;
		}
	rec_free(&rec);
}

static char *agent_pub_path(engine_t *e, const char *agent)
{
	return loom_sprintf("%s/ma.%s.pub", loom_daemon_config(e->daemon)->bus.keys_dir, agent);
}

static void send_target(engine_t *e, pw_rec_t *rec, size_t ti, size_t agent_index)
{
	eng_pwsync_t *ps = e->pwsync;
	Loom__PasswordSyncTarget *t = rec->r->targets[ti];
	eng_agent_t *a = &e->agents[agent_index];
	Loom__SetPasswordRequest rq = LOOM__SET_PASSWORD_REQUEST__INIT;
	rq.agent = t->agent;
	rq.dn = t->dn;
	rq.anchor = t->anchor;
	rq.password = t->password;
	rq.request_id = ++t->attempts;
	uint8_t msg_id[LOOM_MSG_ID_LEN];
	const char *err;
	if (loom_bus_send(loom_daemon_bus(e->daemon), a->service, &rq.base, NULL, msg_id, &err) < 0) {
		/* the bus could not even queue it: try again at the next tick */
		t->attempts--;
		loom_warning("cannot send a password to agent=%s: %s", a->cfg->name, err);
		return;
	}
	pw_flight_t *f = loom_calloc(1, sizeof *f);
	f->rec = rec;
	f->ti = ti;
	f->agent = agent_index;
	f->sent_ms = loom_mono_ms();
	memcpy(f->msg_id, msg_id, sizeof msg_id);
	loom_map_put(ps->flights, msg_id, sizeof msg_id, f);
	rec->inflight[ti] = true;
	rec->ninflight++;
	ps->agent_inflight[agent_index]++;
}

/* Sends every due target, within each agent's window. */
static void pump(engine_t *e)
{
	eng_pwsync_t *ps = e->pwsync;
	int64_t now = loom_now_us();
	for (size_t i = 0; i < ps->npending; i++) {
		pw_rec_t *rec = ps->pending[i];
		for (size_t ti = 0; ti < rec->r->n_targets; ti++) {
			Loom__PasswordSyncTarget *t = rec->r->targets[ti];
			if (t->state != LOOM__PASSWORD_SYNC_TARGET__STATE__PENDING || rec->inflight[ti] || t->next_at > now)
				continue;
			eng_agent_t *a = eng_agent_find(e, t->agent);
			if (a == NULL) {
				target_done(rec, ti, LOOM__PASSWORD_SYNC_TARGET__STATE__FAILED, "unknown-agent",
				    "the agent is no longer configured");
				continue;
			}
			size_t ai = (size_t)(a - e->agents);
			if (ps->agent_inflight[ai] >= AGENT_WINDOW)
				continue;
			send_target(e, rec, ti, ai);
		}
	}
}

/* An attempt failed: retry later, or fail the target for good. */
static void attempt_failed(engine_t *e, pw_rec_t *rec, size_t ti, const char *code, const char *message,
    bool retryable)
{
	Loom__PasswordSyncTarget *t = rec->r->targets[ti];
	eng_agent_t *a = eng_agent_find(e, t->agent);
	const loom_agentcfg_pwsync_t *pc = a ? &a->cfg->password_sync : NULL;
	if (t->state != LOOM__PASSWORD_SYNC_TARGET__STATE__PENDING)
		return; /* superseded meanwhile */
	if (!retryable || pc == NULL || t->attempts >= (uint32_t)pc->max_attempts) {
		char *msg = retryable ? loom_sprintf("%s (gave up after %u attempts)", message, t->attempts)
				      : loom_strdup(message);
		target_done(rec, ti, LOOM__PASSWORD_SYNC_TARGET__STATE__FAILED, code, msg);
		loom_warning("password not set account=%s agent=%s dn=%s code=%s attempts=%u: %s",
		    loom_log_kv_quote(rec->r->account), t->agent, loom_log_kv_quote(t->dn), code, t->attempts, msg);
		free(msg);
		return;
	}
	long long wait = pc->retry_interval_ms;
	for (uint32_t k = 1; k < t->attempts && wait < pc->retry_max_ms; k++)
		wait *= 2;
	if (wait > pc->retry_max_ms)
		wait = pc->retry_max_ms;
	t->next_at = loom_now_us() + wait * 1000;
	set_str(&t->code, code);
	set_str(&t->message, message);
	loom_info("password not set yet account=%s agent=%s code=%s attempt=%u retry_in_ms=%lld: %s",
	    loom_log_kv_quote(rec->r->account), t->agent, code, t->attempts, wait, loom_log_kv_quote(message));
}

static pw_flight_t *flight_take(engine_t *e, const uint8_t *msg_id, size_t len)
{
	eng_pwsync_t *ps = e->pwsync;
	if (len != LOOM_MSG_ID_LEN)
		return NULL;
	pw_flight_t *f = loom_map_remove(ps->flights, msg_id, len);
	if (f == NULL)
		return NULL;
	f->rec->inflight[f->ti] = false;
	f->rec->ninflight--;
	ps->agent_inflight[f->agent]--;
	return f;
}

static void on_reply(engine_t *e, Loom__Envelope *env)
{
	pw_flight_t *f = flight_take(e, env->correlation_id.data, env->correlation_id.len);
	if (f == NULL)
		return; /* an answer after its timeout: the target was already retried */
	pw_rec_t *rec = f->rec;
	size_t ti = f->ti;
	free(f);
	Loom__PasswordSyncTarget *t = rec->r->targets[ti];
	const char *err;
	Loom__SetPasswordReply *r = (Loom__SetPasswordReply *)loom_envelope_body(env, &loom__set_password_reply__descriptor,
	    &err);
	if (r == NULL) {
		attempt_failed(e, rec, ti, "malformed-reply", err, true);
	} else if (t->state != LOOM__PASSWORD_SYNC_TARGET__STATE__PENDING) {
		/* superseded while in flight: keep what the newer change does */
	} else if (r->ok) {
		if (r->dn[0] && strcmp(r->dn, t->dn) != 0)
			set_str(&t->dn, r->dn);
		target_done(rec, ti, LOOM__PASSWORD_SYNC_TARGET__STATE__OK, "", "");
		loom_info("password set account=%s agent=%s dn=%s attempts=%u", loom_log_kv_quote(rec->r->account),
		    t->agent, loom_log_kv_quote(t->dn), t->attempts);
	} else if (strcmp(r->code, "not-supported") == 0) {
		char *msg = loom_sprintf("the agent cannot take passwords: %s", r->message);
		target_done(rec, ti, LOOM__PASSWORD_SYNC_TARGET__STATE__SKIPPED, r->code, msg);
		free(msg);
	} else {
		attempt_failed(e, rec, ti, r->code[0] ? r->code : "failed", r->message, r->retryable);
	}
	if (r)
		protobuf_c_message_free_unpacked(&r->base, NULL);
	rec_progress(e, rec);
	pump(e);
}

static void on_error(engine_t *e, Loom__Envelope *env, pw_flight_t *f)
{
	pw_rec_t *rec = f->rec;
	size_t ti = f->ti;
	free(f);
	const char *err;
	Loom__Error *er = (Loom__Error *)loom_envelope_body(env, &loom__error__descriptor, &err);
	char *msg = loom_sprintf("the bus answered: %s", er ? er->message : err);
	/* no agent registered (down, restarting) is worth waiting for */
	attempt_failed(e, rec, ti, "unavailable", msg, er == NULL || er->retryable ||
	    er->code == LOOM__ERROR__CODE__NO_SUCH_SERVICE);
	free(msg);
	if (er)
		protobuf_c_message_free_unpacked(&er->base, NULL);
	rec_progress(e, rec);
	pump(e);
}

static int on_tick(loom_loop_t *loop, void *arg)
{
	(void)loop;
	engine_t *e = arg;
	eng_pwsync_t *ps = e->pwsync;
	int64_t now = loom_mono_ms();
	/* timeouts: collected first, the map must not change while walked */
	pw_flight_t **late = NULL;
	size_t nlate = 0, pos = 0;
	const void *k;
	size_t klen;
	void *v;
	while (loom_map_next(ps->flights, &pos, &k, &klen, &v)) {
		pw_flight_t *f = v;
		const eng_agent_t *a = &e->agents[f->agent];
		if (now - f->sent_ms >= a->cfg->password_sync.timeout_ms) {
			late = loom_realloc(late, (nlate + 1) * sizeof *late);
			late[nlate++] = f;
		}
	}
	for (size_t i = 0; i < nlate; i++) {
		pw_flight_t *f = flight_take(e, late[i]->msg_id, LOOM_MSG_ID_LEN);
		pw_rec_t *rec = f->rec;
		char *msg = loom_sprintf("no answer from %s in %lld ms", e->agents[f->agent].service,
		    e->agents[f->agent].cfg->password_sync.timeout_ms);
		attempt_failed(e, rec, f->ti, "timeout", msg, true);
		free(msg);
		free(f);
		rec_progress(e, rec);
	}
	free(late);
	pump(e);
	if (now - ps->pruned_ms >= PRUNE_MS) {
		ps->pruned_ms = now;
		/* finished records past HISTORY_US: keys sort newest first, so from the cut to the end */
		uint8_t from[8];
		loom_store_put_u64be(from, ~(unsigned long long)(loom_now_us() - HISTORY_US));
		loom_iter_t *it = loom_iter_new_ex(e->store, CF_PWSYNC, false);
		loom_batch_t *b = ps->batch;
		loom_batch_clear(b);
		size_t n = 0;
		for (loom_iter_seek(it, from, sizeof from); loom_iter_valid(it) && n < 10000; loom_iter_next(it)) {
			size_t kl, vl;
			const uint8_t *key = loom_iter_key(it, &kl);
			const void *val = loom_iter_value(it, &vl);
			Loom__PasswordSyncRecord *r = loom__password_sync_record__unpack(NULL, vl, val);
			if (r && r->state == LOOM__PASSWORD_SYNC_RECORD__STATE__PENDING) {
				loom__password_sync_record__free_unpacked(r, NULL);
				continue;
			}
			if (r) {
				loom_batch_delete(b, CF_PWSYNC_ID, r->change_id.data, r->change_id.len);
				loom__password_sync_record__free_unpacked(r, NULL);
			}
			loom_batch_delete(b, CF_PWSYNC, key, kl);
			n++;
		}
		loom_iter_destroy(&it);
		const char *err;
		if (n && loom_store_write_ex(e->store, b, false, &err) < 0)
			loom_warning("cannot prune the password sync history: %s", err);
		else if (n)
			loom_info("password sync history pruned records=%zu", n);
		loom_batch_clear(b);
	}
	return 0;
}

/* ---- a new change ---------------------------------------------------------------------- */

/* Marks the pending targets of older changes of the same mv object superseded. */
static void supersede(engine_t *e, const char *mv_id, const pw_rec_t *newer)
{
	eng_pwsync_t *ps = e->pwsync;
	for (size_t i = 0; i < ps->npending; i++) {
		pw_rec_t *rec = ps->pending[i];
		if (rec == newer || strcmp(rec->r->mv_id, mv_id) != 0)
			continue;
		bool changed = false;
		for (size_t ti = 0; ti < rec->r->n_targets; ti++)
			if (rec->r->targets[ti]->state == LOOM__PASSWORD_SYNC_TARGET__STATE__PENDING) {
				char *id = loom_hex(newer->r->change_id.data, newer->r->change_id.len);
				char *msg = loom_sprintf("a newer change (%s) of the account took over", id);
				target_done(rec, ti, LOOM__PASSWORD_SYNC_TARGET__STATE__SUPERSEDED, "", msg);
				free(msg);
				free(id);
				changed = true;
			}
		if (changed) {
			rec_progress(e, rec); /* may free rec and shift the list */
			i = (size_t)-1;       /* start again: the list may have changed */
		}
	}
}

static void on_request(engine_t *e, Loom__Envelope *env)
{
	eng_pwsync_t *ps = e->pwsync;
	const char *err;
	Loom__PasswordSyncRequest *rq = (Loom__PasswordSyncRequest *)loom_envelope_body(env,
	    &loom__password_sync_request__descriptor, &err);
	if (rq == NULL) {
		loom_warning("dropped malformed loom.PasswordSyncRequest from=%s: %s", env->from, err);
		loom_bus_reply_error(loom_daemon_bus(e->daemon), env, LOOM__ERROR__CODE__MALFORMED, false, err, &err);
		return;
	}
	char *id = loom_hex(rq->change_id.data, rq->change_id.len);
	uint8_t *plain = NULL;
	size_t plen = 0;
	Loom__CsObject *src = NULL;
	char **agents = NULL, **anchors = NULL;
	size_t nlinks = 0;
	Loom__PasswordSyncTarget **targets = NULL;
	size_t ntargets = 0;
	if (rq->change_id.len != PW_ID_LEN || rq->password == NULL) {
		answer(e, env, rq, LOOM__PASSWORD_SYNC_REPLY__STATUS__REFUSED,
		    "a change needs a 16-byte change_id and a sealed password", 0, false);
		goto out;
	}
	/* a change seen before: its record says what became of it */
	void *val = NULL;
	size_t vlen;
	int rc = loom_store_get(e->store, CF_PWSYNC_ID, rq->change_id.data, rq->change_id.len, &val, &vlen, &err);
	if (rc < 0) {
		answer(e, env, rq, LOOM__PASSWORD_SYNC_REPLY__STATUS__REFUSED, err, 0, true);
		goto out;
	}
	if (rc > 0) {
		free(val);
		loom_info("password change duplicate change=%s account=%s from=%s", id, loom_log_kv_quote(rq->account),
		    env->from);
		answer(e, env, rq, LOOM__PASSWORD_SYNC_REPLY__STATUS__DUPLICATE, "this change was taken before", 0, false);
		goto out;
	}
	eng_agent_t *a = eng_agent_find(e, rq->agent);
	if (a == NULL) {
		char *msg = loom_sprintf("no agent '%s' is configured", rq->agent);
		loom_warning("password change refused change=%s: %s", id, msg);
		answer(e, env, rq, LOOM__PASSWORD_SYNC_REPLY__STATUS__REFUSED, msg, 0, false);
		free(msg);
		goto out;
	}
	const loom_keypair_t *kp = loom_daemon_keypair(e->daemon);
	if (kp == NULL) {
		answer(e, env, rq, LOOM__PASSWORD_SYNC_REPLY__STATUS__REFUSED,
		    "the engine has no key pair to open passwords with (loomctl keys gen engine)", 0, true);
		goto out;
	}
	if (loom_unseal(kp, rq->password, &plain, &plen) < 0) {
		loom_warning("password change refused change=%s from=%s: the password does not open with the engine's key",
		    id, env->from);
		answer(e, env, rq, LOOM__PASSWORD_SYNC_REPLY__STATUS__REFUSED,
		    "cannot-open: the password does not open with the engine's key", 0, false);
		goto out;
	}

	Loom__PasswordSyncRecord r = LOOM__PASSWORD_SYNC_RECORD__INIT;
	r.change_id = rq->change_id;
	r.agent = rq->agent;
	r.account = rq->account;
	r.dn = rq->dn;
	r.origin = rq->origin;
	r.changed_at = rq->changed_at;
	r.received_at = loom_now_us();
	const char *how = NULL;
	src = find_source(e, a, rq, &how);
	char *rerr = eng_read_error_take(e);
	if (rerr) {
		answer(e, env, rq, LOOM__PASSWORD_SYNC_REPLY__STATUS__REFUSED, rerr, 0, true);
		free(rerr);
		goto out;
	}
	char mvhex[17] = "";
	char *note = NULL;
	if (src == NULL) {
		r.state = LOOM__PASSWORD_SYNC_RECORD__STATE__UNMATCHED;
		note = loom_sprintf("no connector of agent '%s' matches (%s%s%s%s%s%s)", rq->agent,
		    rq->anchor[0] ? "anchor " : "", rq->anchor, rq->dn[0] ? " dn " : "", rq->dn,
		    rq->account[0] ? " account " : "", rq->account);
	} else if (src->mv_id.len != 8) {
		r.state = LOOM__PASSWORD_SYNC_RECORD__STATE__UNMATCHED;
		r.anchor = src->anchor;
		note = loom_sprintf("the connector '%s' of agent '%s' is not joined to the metaverse (state %s)",
		    src->dn, rq->agent, eng_state_name(src->state));
	} else {
		r.anchor = src->anchor;
		eng_mvid_hex(mvhex, src->mv_id.data);
		r.mv_id = mvhex;
		nlinks = eng_links(e, src->mv_id.data, &agents, &anchors);
		for (size_t i = 0; i < nlinks; i++) {
			if (!rq->include_source && strcmp(agents[i], rq->agent) == 0 &&
			    strcmp(anchors[i], src->anchor) == 0)
				continue; /* the source itself (it has the password already) */
			eng_agent_t *ta = eng_agent_find(e, agents[i]);
			if (ta == NULL || !ta->cfg->password_sync.enabled)
				continue;
			Loom__PasswordSyncTarget *t = loom_malloc(sizeof *t);
			loom__password_sync_target__init(t);
			t->agent = loom_strdup(agents[i]);
			t->anchor = loom_strdup(anchors[i]);
			targets = loom_realloc(targets, (ntargets + 1) * sizeof *targets);
			targets[ntargets++] = t;
			const char *cerr = NULL;
			Loom__CsObject *cs = eng_cs_get(e, agents[i], anchors[i], &cerr);
			t->dn = loom_strdup(cs ? cs->dn : "");
			if (ta->cfg->type != LOOM_AGENT_LDAP) {
				t->state = LOOM__PASSWORD_SYNC_TARGET__STATE__SKIPPED;
				t->code = loom_strdup("not-supported");
				t->message = loom_sprintf("a %s agent cannot take passwords",
				    ta->cfg->type == LOOM_AGENT_FILE ? "file" : "policy");
			} else if (cs == NULL || cs->deleted) {
				t->state = LOOM__PASSWORD_SYNC_TARGET__STATE__SKIPPED;
				t->code = loom_strdup("no-connector");
				t->message = loom_sprintf("the connector cannot be read%s%s", cerr ? ": " : "", cerr ? cerr : "");
			} else if (cs->state == LOOM__CS_OBJECT__STATE__PLACEHOLDER) {
				t->state = LOOM__PASSWORD_SYNC_TARGET__STATE__SKIPPED;
				t->code = loom_strdup("not-exported");
				t->message = loom_strdup("the account is provisioned but not exported yet");
			} else {
				char *path = agent_pub_path(e, agents[i]);
				uint8_t pub[LOOM_KEY_LEN];
				char *kerr = NULL;
				if (loom_keys_read_public(path, pub, &kerr) < 0) {
					t->state = LOOM__PASSWORD_SYNC_TARGET__STATE__FAILED;
					t->code = loom_strdup("no-key");
					t->message = loom_sprintf("cannot seal the password to agent '%s': %s (loomctl keys gen ma.%s)",
					    agents[i], kerr, agents[i]);
					free(kerr);
				} else {
					t->password = loom_malloc(sizeof *t->password);
					loom__sealed__init(t->password);
					char *kid = loom_sprintf("ma.%s", agents[i]);
					loom_seal(pub, kid, plain, plen, t->password);
					free(kid);
					t->state = LOOM__PASSWORD_SYNC_TARGET__STATE__PENDING;
				}
				free(path);
			}
			if (t->state != LOOM__PASSWORD_SYNC_TARGET__STATE__PENDING)
				t->done_at = r.received_at;
			if (cs)
				loom__cs_object__free_unpacked(cs, NULL);
		}
		/* an echo: this password was just given to this account */
		uint8_t h[16];
		crypto_generichash(h, sizeof h, plain, plen, ps->echo_key, sizeof ps->echo_key);
		pw_echo_t *ec = loom_map_get(ps->echo, mvhex, 16);
		int64_t now = loom_mono_ms();
		if (ec && now - ec->at_ms < ECHO_MS && sodium_memcmp(ec->hash, h, sizeof h) == 0) {
			r.state = LOOM__PASSWORD_SYNC_RECORD__STATE__ECHO;
			note = loom_strdup("the account was given this password moments ago (a change Loom made, "
					   "reported back by the target's own hook): nothing to do");
			for (size_t i = 0; i < ntargets; i++) {
				loom__password_sync_target__free_unpacked(targets[i], NULL); /* malloc'd fields: same allocator */
			}
			free(targets);
			targets = NULL;
			ntargets = 0;
		} else {
			if (ec == NULL) {
				ec = loom_calloc(1, sizeof *ec);
				loom_map_put(ps->echo, mvhex, 16, ec);
			}
			memcpy(ec->hash, h, sizeof h);
			ec->at_ms = now;
			size_t npend = 0;
			for (size_t i = 0; i < ntargets; i++)
				npend += targets[i]->state == LOOM__PASSWORD_SYNC_TARGET__STATE__PENDING;
			if (ntargets == 0) {
				r.state = LOOM__PASSWORD_SYNC_RECORD__STATE__NO_TARGETS;
				note = loom_sprintf("no other connector of mv object %s belongs to an agent with password_sync.enabled",
				    mvhex);
			} else if (npend == 0) {
				r.state = LOOM__PASSWORD_SYNC_RECORD__STATE__PARTIAL;
			} else {
				r.state = LOOM__PASSWORD_SYNC_RECORD__STATE__PENDING;
			}
		}
		sodium_memzero(h, sizeof h);
	}
	loom_unsealed_free(&plain, plen); /* from here on only sealed boxes */
	plain = NULL;
	r.message = note ? note : (char *)"";
	r.targets = targets;
	r.n_targets = ntargets;
	if (r.state != LOOM__PASSWORD_SYNC_RECORD__STATE__PENDING)
		r.done_at = r.received_at;
	uint8_t key[PW_KEY_LEN];
	rec_key(key, r.received_at, rq->change_id.data);
	pw_rec_t *rec = rec_adopt(&r, key);
	free(note);
	if (rec == NULL) {
		answer(e, env, rq, LOOM__PASSWORD_SYNC_REPLY__STATUS__REFUSED, "cannot build the record", 0, true);
		goto out;
	}
	if (rec_save(e, rec, true, false, &err) < 0) {
		loom_error("cannot record a password change change=%s: %s", id, err);
		answer(e, env, rq, LOOM__PASSWORD_SYNC_REPLY__STATUS__REFUSED, err, 0, true);
		rec_free(&rec);
		goto out;
	}
	uint32_t npend = 0;
	for (size_t i = 0; i < rec->r->n_targets; i++)
		npend += rec->r->targets[i]->state == LOOM__PASSWORD_SYNC_TARGET__STATE__PENDING;
	if (rec->r->state == LOOM__PASSWORD_SYNC_RECORD__STATE__UNMATCHED) {
		loom_warning("password change unmatched change=%s agent=%s account=%s: %s", id, rq->agent,
		    loom_log_kv_quote(rq->account), rec->r->message);
		answer_ex(e, env, rq, LOOM__PASSWORD_SYNC_REPLY__STATUS__UNMATCHED, rec->r->message, 0, false, true);
	} else {
		loom_info("password change accepted change=%s agent=%s account=%s matched_by=%s mv=%s state=%s targets=%u",
		    id, rq->agent, loom_log_kv_quote(rq->account), how ? how : "-", mvhex, rec_state_name(rec->r->state),
		    npend);
		answer_ex(e, env, rq, LOOM__PASSWORD_SYNC_REPLY__STATUS__ACCEPTED, rec->r->message, npend, false, true);
	}
	if (rec->r->state == LOOM__PASSWORD_SYNC_RECORD__STATE__PENDING) {
		supersede(e, rec->r->mv_id, rec);
		ps->pending = loom_realloc(ps->pending, (ps->npending + 1) * sizeof *ps->pending);
		ps->pending[ps->npending++] = rec;
		pump(e);
	} else {
		rec_free(&rec);
	}
out:
	for (size_t i = 0; i < ntargets; i++)
		loom__password_sync_target__free_unpacked(targets[i], NULL); /* malloc'd fields: the same allocator */
	free(targets);
	if (plain)
		loom_unsealed_free(&plain, plen);
	if (src)
		loom__cs_object__free_unpacked(src, NULL);
	eng_strv_free(agents, nlinks);
	eng_strv_free(anchors, nlinks);
	free(id);
	protobuf_c_message_free_unpacked(&rq->base, NULL);
}

/* ---- loomctl report password-sync ------------------------------------------------------- */

static bool rec_selected(const Loom__PasswordSyncRecord *r, const Loom__PasswordSyncReportRequest *rq)
{
	if (rq->account[0] && strcasecmp(r->account, rq->account) != 0 && strcasecmp(r->dn, rq->account) != 0 &&
	    strcasecmp(r->anchor, rq->account) != 0)
		return false;
	if (rq->agent[0] && strcmp(r->agent, rq->agent) != 0) {
		bool found = false;
		for (size_t i = 0; i < r->n_targets && !found; i++)
			found = strcmp(r->targets[i]->agent, rq->agent) == 0;
		if (!found)
			return false;
	}
	if (rq->pending && r->state != LOOM__PASSWORD_SYNC_RECORD__STATE__PENDING)
		return false;
	if (rq->failed) {
		bool bad = r->state == LOOM__PASSWORD_SYNC_RECORD__STATE__UNMATCHED ||
			   r->state == LOOM__PASSWORD_SYNC_RECORD__STATE__PARTIAL;
		for (size_t i = 0; i < r->n_targets && !bad; i++)
			bad = r->targets[i]->state == LOOM__PASSWORD_SYNC_TARGET__STATE__FAILED;
		if (!bad)
			return false;
	}
	return true;
}

static void strip(Loom__PasswordSyncRecord *r)
{
	for (size_t i = 0; i < r->n_targets; i++)
		if (r->targets[i]->password) {
			loom__sealed__free_unpacked(r->targets[i]->password, NULL);
			r->targets[i]->password = NULL;
		}
}

static void on_report(engine_t *e, Loom__Envelope *env)
{
	const char *err;
	Loom__PasswordSyncReportRequest *rq = (Loom__PasswordSyncReportRequest *)loom_envelope_body(env,
	    &loom__password_sync_report_request__descriptor, &err);
	if (rq == NULL) {
		loom_bus_reply_error(loom_daemon_bus(e->daemon), env, LOOM__ERROR__CODE__MALFORMED, false, err, &err);
		return;
	}
	uint32_t limit = rq->limit ? rq->limit : 50;
	if (limit > 10000)
		limit = 10000;
	Loom__PasswordSyncReportReply rep = LOOM__PASSWORD_SYNC_REPORT_REPLY__INIT;
	rep.records = loom_calloc(limit, sizeof *rep.records);
	/* the pending ones are in memory, and the newest: they come first in the store anyway */
	loom_iter_t *it = loom_iter_new(e->store, CF_PWSYNC);
	for (loom_iter_seek_first(it); loom_iter_valid(it); loom_iter_next(it)) {
		size_t vl;
		const void *val = loom_iter_value(it, &vl);
		rep.total++;
		Loom__PasswordSyncRecord *r = loom__password_sync_record__unpack(NULL, vl, val);
		if (r == NULL)
			continue;
		if (r->state == LOOM__PASSWORD_SYNC_RECORD__STATE__PENDING)
			rep.pending++;
		if (rep.n_records < limit && rec_selected(r, rq)) {
			strip(r);
			rep.records[rep.n_records++] = r;
		} else {
			if (rep.n_records == limit && rec_selected(r, rq))
				rep.truncated = true;
			loom__password_sync_record__free_unpacked(r, NULL);
		}
	}
	loom_iter_destroy(&it);
	if (loom_bus_reply(loom_daemon_bus(e->daemon), env, &rep.base, &err) < 0)
		loom_warning("cannot answer a password sync report from=%s: %s", env->from, err);
	for (size_t i = 0; i < rep.n_records; i++)
		loom__password_sync_record__free_unpacked(rep.records[i], NULL);
	free(rep.records);
	protobuf_c_message_free_unpacked(&rq->base, NULL);
}

/* ---- the engine's entry points --------------------------------------------------------- */

bool eng_pwsync_message(engine_t *e, Loom__Envelope *env)
{
	if (e->pwsync == NULL)
		return false;
	if (loom_envelope_is(env, &loom__password_sync_request__descriptor)) {
		on_request(e, env);
		return true;
	}
	if (loom_envelope_is(env, &loom__set_password_reply__descriptor)) {
		on_reply(e, env);
		return true;
	}
	if (loom_envelope_is(env, &loom__password_sync_report_request__descriptor)) {
		on_report(e, env);
		return true;
	}
	if (loom_envelope_is(env, &loom__error__descriptor)) {
		pw_flight_t *f = flight_take(e, env->correlation_id.data, env->correlation_id.len);
		if (f == NULL)
			return false;
		on_error(e, env, f);
		return true;
	}
	return false;
}

int eng_pwsync_start(engine_t *e, const char **error_r)
{
	static char msg[256];
	eng_pwsync_t *ps = loom_calloc(1, sizeof *ps);
	e->pwsync = ps;
	ps->flights = loom_map_new();
	ps->echo = loom_map_new();
	ps->agent_inflight = loom_calloc(e->nagents ? e->nagents : 1, sizeof *ps->agent_inflight);
	ps->batch = loom_batch_new(e->store);
	randombytes_buf(ps->echo_key, sizeof ps->echo_key);
	ps->pruned_ms = loom_mono_ms() - PRUNE_MS + 60000; /* the first prune a minute after start */
	/* the pending records, oldest first (the store holds them newest first) */
	loom_iter_t *it = loom_iter_new(e->store, CF_PWSYNC);
	for (loom_iter_seek_first(it); loom_iter_valid(it); loom_iter_next(it)) {
		size_t kl, vl;
		const void *key = loom_iter_key(it, &kl);
		const void *val = loom_iter_value(it, &vl);
		if (kl != PW_KEY_LEN)
			continue;
		Loom__PasswordSyncRecord *r = loom__password_sync_record__unpack(NULL, vl, val);
		if (r == NULL)
			continue;
		if (r->state != LOOM__PASSWORD_SYNC_RECORD__STATE__PENDING) {
			loom__password_sync_record__free_unpacked(r, NULL);
			continue;
		}
		pw_rec_t *rec = loom_calloc(1, sizeof *rec);
		rec->r = r;
		memcpy(rec->key, key, PW_KEY_LEN);
		rec->inflight = loom_calloc(r->n_targets ? r->n_targets : 1, sizeof *rec->inflight);
		ps->pending = loom_realloc(ps->pending, (ps->npending + 1) * sizeof *ps->pending);
		memmove(ps->pending + 1, ps->pending, ps->npending * sizeof *ps->pending);
		ps->pending[0] = rec;
		ps->npending++;
	}
	const char *err;
	int rc = loom_iter_status(it, &err);
	loom_iter_destroy(&it);
	if (rc < 0) {
		snprintf(msg, sizeof msg, "cannot read the pending password changes: %s", err);
		*error_r = msg;
		return -1;
	}
	size_t targets = 0;
	for (size_t i = 0; i < e->nagents; i++)
		targets += e->agents[i].cfg->password_sync.enabled;
	if (ps->npending || targets)
		loom_info("password sync ready target_agents=%zu pending_changes=%zu key=%s", targets, ps->npending,
		    loom_daemon_keypair(e->daemon) ? "yes" : "none (loomctl keys gen engine)");
	ps->timer = loom_loop_add_timer(loom_daemon_loop(e->daemon), PW_TICK_MS, 0, on_tick, e);
	return 0;
}

void eng_pwsync_free(engine_t *e)
{
	eng_pwsync_t *ps = e->pwsync;
	if (ps == NULL)
		return;
	if (ps->timer)
		loom_loop_cancel_timer(loom_daemon_loop(e->daemon), ps->timer);
	if (ps->flush_timer) {
		loom_loop_cancel_timer(loom_daemon_loop(e->daemon), ps->flush_timer);
		flush_acks(loom_daemon_loop(e->daemon), e); /* what was accepted is made durable and answered */
	}
	free(ps->acks);
	size_t pos = 0;
	const void *k;
	size_t kl;
	void *v;
	while (loom_map_next(ps->flights, &pos, &k, &kl, &v))
		free(v);
	loom_map_destroy(&ps->flights);
	pos = 0;
	while (loom_map_next(ps->echo, &pos, &k, &kl, &v)) {
		sodium_memzero(v, sizeof(pw_echo_t));
		free(v);
	}
	loom_map_destroy(&ps->echo);
	for (size_t i = 0; i < ps->npending; i++)
		rec_free(&ps->pending[i]);
	free(ps->pending);
	free(ps->agent_inflight);
	loom_batch_destroy(&ps->batch);
	sodium_memzero(ps->echo_key, sizeof ps->echo_key);
	free(ps);
	e->pwsync = NULL;
}
