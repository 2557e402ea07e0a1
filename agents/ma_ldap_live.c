/* ma_ldap_live.c - live mode (live.enabled in the agent's file): changes
 * stream to the engine as they happen (docs/ldap.md "Live mode";
 * agent.proto's Live section).
 *
 * The engine opens a stream with ImportRequest{live, delta, watermark};
 * run_id is the session. OpenLDAP: one content sync search per base in
 * refreshAndPersist mode (RFC 4533) from the base's cookie, all on one
 * connection. Active Directory: a DirSync search of the naming context
 * every live.poll (ma_ldap_import.c's DirSync code reads each one).
 *
 * States of a stream (this block and the code change together):
 *
 *   idle --ImportRequest{live}--> refreshing: searches started from the
 *        watermark; added/modified entries are sent as REPLACE as they
 *        come; deletes (entries in state delete, syncIdSet refreshDeletes)
 *        are collected as in a delta import, because slapd's session log
 *        reports entries outside one base's search as gone from it
 *   refreshing --every base's refresh is done (syncInfo refreshDelete /
 *        refreshPresent with refreshDone)--> persisting: the deletes
 *        gone from some base, present in none and (with several bases)
 *        found in none by entryUUID are sent
 *   persisting --entry add/modify/delete, syncInfo newcookie--> persisting:
 *        sent as they come (a delete from one base is checked against the
 *        other bases first: an entry moved between bases is not deleted)
 *   any --server refuses the cookie, present phase, search ended, connection
 *        lost, malformed message--> idle, after ImportBatch{live, failed or
 *        watermark_lost}; the engine opens the stream again with backoff
 *        from the watermark it stored (nothing is resumed from memory)
 *
 * Flow control: one batch at a time. A batch goes when the engine has
 * acknowledged the previous one (ImportCredit of the session) and holds
 * whatever arrived meanwhile, up to the batch size (so changes coalesce
 * while the engine works); a full batch stops reading and slapd waits on
 * TCP. Each batch carries the watermark that holds after its objects: the
 * cookies as of the last message read, but during the refresh phase the
 * watermark the stream started from (the collected deletes are not sent
 * yet, so a cookie past them must not be stored). With nothing to send, an
 * empty batch goes every live.keepalive (it carries the newest cookie too).
 */
#include "ma_ldap.h"
#include "loom_alloc.h"
#include "loom_envelope.h"
#include "loom_log.h"
#include "loom_map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void batch_new(ml_live_t *lv)
{
	Loom__ImportBatch *b = loom_malloc(sizeof *b);
	loom__import_batch__init(b);
	b->objects = loom_calloc(lv->batch_size, sizeof *b->objects);
	lv->batch = b;
}

static bool batch_full(const ml_live_t *lv)
{
	return lv->batch->n_objects + lv->batch->n_errors >= lv->batch_size;
}

static void add_error(ml_live_t *lv, const char *code, const char *dn, const char *message)
{
	Loom__ImportBatch *b = lv->batch;
	Loom__RunObjectError *e = loom_malloc(sizeof *e);
	loom__run_object_error__init(e);
	e->code = loom_strdup(code);
	e->dn = loom_strdup(dn ? dn : "");
	e->message = loom_strdup(message);
	b->errors = loom_realloc(b->errors, (b->n_errors + 1) * sizeof *b->errors);
	b->errors[b->n_errors++] = e;
}

static void add_delete(ldapagent_t *la, const uint8_t uuid[16])
{
	ml_live_t *lv = &la->live;
	Loom__ImportObject *o = loom_malloc(sizeof *o);
	loom__import_object__init(o);
	o->change = LOOM__IMPORT_OBJECT__CHANGE__DELETE;
	char t[37];
	ml_uuid_text(uuid, la->cfg.ldap.directory == LOOM_LDAP_AD, t);
	o->anchor = loom_strdup(t);
	o->dn = loom_strdup("");
	lv->batch->objects[lv->batch->n_objects++] = o;
}

void ml_live_stop(ldapagent_t *la)
{
	ml_live_t *lv = &la->live;
	if (lv->timer)
		loom_loop_cancel_timer(loom_daemon_loop(la->d), lv->timer);
	ml_conn_close(&lv->conn);
	if (lv->batch)
		loom__import_batch__free_unpacked(lv->batch, NULL);
	ml_watermark_release(&lv->wm);
	free(lv->wm_start);
	free(lv->msgids);
	free(lv->refreshed);
	free(lv->deletes);
	loom_map_destroy(&lv->gone);
	loom_map_destroy(&lv->seen);
	free(lv->engine);
	memset(lv, 0, sizeof *lv);
	lv->conn.fd = -1;
}

static void send_batch(ldapagent_t *la, Loom__ImportBatch *b)
{
	ml_live_t *lv = &la->live;
	b->run_id = lv->session;
	b->live = true;
	b->agent = la->name;
	const char *err;
	if (loom_bus_send(loom_daemon_bus(la->d), lv->engine, &b->base, NULL, NULL, &err) < 0)
		loom_warning("cannot send a live batch session=%llu seq=%llu: %s", (unsigned long long)lv->session,
		    (unsigned long long)b->seq, err);
	b->agent = NULL; /* borrowed */
}

/* Ends the stream: failed (or watermark_lost with lost), message says why. */
static void end_stream(ldapagent_t *la, const char *message, bool lost)
{
	ml_live_t *lv = &la->live;
	Loom__ImportBatch b = LOOM__IMPORT_BATCH__INIT;
	b.seq = ++lv->seq;
	b.last = true;
	b.failed = !lost;
	b.watermark_lost = lost;
	b.message = (char *)message;
	send_batch(la, &b);
	loom_log(lost ? LOOM_LOG_WARNING : LOOM_LOG_ERROR, "live stream ended session=%llu%s: %s",
	    (unsigned long long)lv->session, lost ? " (watermark lost)" : "", message);
	ml_live_stop(la);
}

/* Sends the batch being filled (maybe empty: keepalive) and starts another. */
static void flush(ldapagent_t *la)
{
	ml_live_t *lv = &la->live;
	Loom__ImportBatch *b = lv->batch;
	b->seq = ++lv->seq;
	bool current = lv->persisting && lv->deletes_pos == lv->ndeletes;
	if (current) {
		ml_watermark_encode(&lv->wm, &b->watermark.data, &b->watermark.len);
	} else {
		b->watermark.len = lv->wm_start_len;
		b->watermark.data = loom_memdup(lv->wm_start, lv->wm_start_len ? lv->wm_start_len : 1);
	}
	lv->objects += b->n_objects;
	if (b->n_objects || b->n_errors)
		loom_debug("live batch sent session=%llu seq=%llu objects=%zu", (unsigned long long)lv->session,
		    (unsigned long long)b->seq, b->n_objects);
	send_batch(la, b);
	lv->credit = false;
	lv->sent_ms = loom_mono_ms();
	loom__import_batch__free_unpacked(b, NULL);
	batch_new(lv);
}

/* Every base's refresh is over: the collected deletes become sendable.
 * With several bases, each base's cookie is its own (a change seen by one
 * search advances only that search's cookie), so a base's refresh may
 * report as gone an entry that another base holds but has no reason to
 * send again: each candidate is looked up in the bases by entryUUID first.
 * -1 when the stream ended. */
static int refresh_over(ldapagent_t *la)
{
	ml_live_t *lv = &la->live;
	lv->persisting = true;
	lv->deletes = loom_malloc((loom_map_count(lv->gone) + 1) * sizeof *lv->deletes);
	size_t pos = 0, klen, kept = 0;
	const void *k;
	while (loom_map_next(lv->gone, &pos, &k, &klen, NULL)) {
		if (klen != 16 || loom_map_get(lv->seen, k, 16) != NULL)
			continue;
		char *err = NULL;
		int held = la->cfg.ldap.bases.n > 1 ? ml_entry_in_bases(la, lv->conn.ld, la->cfg.ldap.bases.n, k, &err) : 0;
		if (held < 0) {
			end_stream(la, err, false);
			free(err);
			return -1;
		}
		if (held > 0) {
			kept++;
			continue;
		}
		memcpy(lv->deletes[lv->ndeletes++], k, 16);
	}
	loom_map_destroy(&lv->gone);
	loom_map_destroy(&lv->seen);
	loom_info("live stream persisting session=%llu refresh_objects=%llu refresh_deletes=%zu still_in_a_base=%zu",
	    (unsigned long long)lv->session, (unsigned long long)(lv->objects + lv->batch->n_objects), lv->ndeletes,
	    kept);
	return 0;
}

static size_t base_of(ml_live_t *lv, size_t nbases, int msgid)
{
	for (size_t i = 0; i < nbases; i++)
		if (lv->msgids[i] == msgid)
			return i;
	return nbases;
}

#define PRESENT_PHASE "the server answered with a present phase (its session log does not reach back to the " \
	"cookie), which cannot show deletes without a full import"

/* One entry of base i. -1 when the stream ended. */
static int on_entry(ldapagent_t *la, size_t i, LDAPMessage *msg)
{
	ml_live_t *lv = &la->live;
	LDAP *ld = lv->conn.ld;
	LDAPControl **ctrls = NULL;
	int rc = ldap_get_entry_controls(ld, msg, &ctrls);
	LDAPControl *sc = rc == LDAP_SUCCESS ? ml_find_control(ctrls, LDAP_CONTROL_SYNC_STATE) : NULL;
	char *dn = ldap_get_dn(ld, msg);
	int state;
	uint8_t uuid[16];
	struct berval cookie = { 0, NULL };
	const char *why = "an entry without a sync state control in a content sync";
	int ret = 0;
	if (sc == NULL || ml_sync_state_parse(&sc->ldctl_value, &state, uuid, &cookie, &why) < 0) {
		add_error(lv, "bad-sync-message", dn, why);
		goto out;
	}
	if (cookie.bv_val)
		ml_watermark_set(&lv->wm, i, &cookie);
	if (state == LDAP_SYNC_PRESENT) {
		end_stream(la, PRESENT_PHASE, true);
		ret = -1;
		goto out;
	}
	if (state == LDAP_SYNC_DELETE) {
		if (!lv->persisting) {
			loom_map_put(lv->gone, uuid, 16, (void *)1);
			goto out;
		}
		char *err = NULL;
		int moved = la->cfg.ldap.bases.n > 1 ? ml_entry_in_bases(la, lv->conn.ld, i, uuid, &err) : 0;
		if (moved < 0) {
			end_stream(la, err, false);
			free(err);
			ret = -1;
			goto out;
		}
		if (moved == 0)
			add_delete(la, uuid);
		goto out;
	}
	if (!lv->persisting)
		loom_map_put(lv->seen, uuid, 16, (void *)1);
	char *err = NULL;
	Loom__ImportObject *o = ml_entry_object(la, ld, msg, &err);
	if (o == NULL) {
		add_error(lv, "bad-entry", dn, err);
		free(err);
		goto out;
	}
	o->change = LOOM__IMPORT_OBJECT__CHANGE__REPLACE;
	lv->batch->objects[lv->batch->n_objects++] = o;
out:
	free(cookie.bv_val);
	ldap_memfree(dn);
	ldap_controls_free(ctrls);
	return ret;
}

static int on_intermediate(ldapagent_t *la, size_t i, LDAPMessage *msg)
{
	ml_live_t *lv = &la->live;
	char *oid = NULL;
	struct berval *data = NULL;
	int rc = ldap_parse_intermediate(lv->conn.ld, msg, &oid, &data, NULL, 0);
	if (rc != LDAP_SUCCESS || oid == NULL || strcmp(oid, LDAP_SYNC_INFO) != 0 || data == NULL) {
		ldap_memfree(oid);
		ber_bvfree(data);
		return 0;
	}
	ml_sync_info_t info;
	const char *why;
	rc = ml_sync_info_parse(data, &info, &why);
	ldap_memfree(oid);
	ber_bvfree(data);
	if (rc < 0) {
		char *m = loom_sprintf("malformed sync info message from '%s': %s", la->cfg.ldap.uri.text, why);
		end_stream(la, m, false);
		free(m);
		return -1;
	}
	if (info.cookie.bv_val)
		ml_watermark_set(&lv->wm, i, &info.cookie);
	if ((info.kind == ML_INFO_REFRESH_PRESENT && !lv->persisting) ||
	    (info.kind == ML_INFO_ID_SET && !info.refresh_deletes)) {
		ml_sync_info_release(&info);
		end_stream(la, PRESENT_PHASE, true);
		return -1;
	}
	for (size_t k = 0; info.kind == ML_INFO_ID_SET && k < info.nuuids; k++) {
		if (lv->persisting)
			add_delete(la, info.uuids[k]); /* not expected in persist; deletes all the same */
		else
			loom_map_put(lv->gone, info.uuids[k], 16, (void *)1);
	}
	bool done = (info.kind == ML_INFO_REFRESH_DELETE || info.kind == ML_INFO_REFRESH_PRESENT) && info.refresh_done;
	ml_sync_info_release(&info);
	if (done && !lv->refreshed[i]) {
		lv->refreshed[i] = true;
		if (++lv->nrefreshed == la->cfg.ldap.bases.n)
			return refresh_over(la);
	}
	return 0;
}

/* A search ended: in refreshAndPersist that is always the end of the stream. */
static int on_result(ldapagent_t *la, size_t i, LDAPMessage *msg)
{
	ml_live_t *lv = &la->live;
	int err = 0;
	char *text = NULL;
	int rc = ldap_parse_result(lv->conn.ld, msg, &err, NULL, &text, NULL, NULL, 0);
	const char *dn = ml_base(la, i)->dn.text;
	if (rc == LDAP_SUCCESS && err == LDAP_SYNC_REFRESH_REQUIRED) {
		end_stream(la, "the server refused the cookie (e-syncRefreshRequired)", true);
	} else {
		char *m = rc != LDAP_SUCCESS ? loom_sprintf("cannot read the end of the content sync of '%s'", dn)
		    : loom_sprintf("the server ended the content sync of '%s' on '%s': %s (%d)%s%s", dn,
			  la->cfg.ldap.uri.text, ldap_err2string(err), err, text && text[0] ? ": " : "", text ? text : "");
		end_stream(la, m, false);
		free(m);
	}
	ldap_memfree(text);
	return -1;
}

/* Moves the stream on as far as the acknowledgements and the server allow. */
static void pump(ldapagent_t *la)
{
	ml_live_t *lv = &la->live;
	size_t nb = la->cfg.ldap.bases.n;
	while (lv->active) {
		if (lv->persisting && lv->deletes_pos < lv->ndeletes && !batch_full(lv)) {
			add_delete(la, lv->deletes[lv->deletes_pos++]);
			continue;
		}
		if (batch_full(lv) || (lv->persisting && lv->deletes_pos < lv->ndeletes)) {
			if (!lv->credit)
				break;
			flush(la);
			continue;
		}
		LDAPMessage *msg = NULL;
		struct timeval zero = { 0, 0 };
		int rc = ldap_result(lv->conn.ld, LDAP_RES_ANY, LDAP_MSG_ONE, &zero, &msg);
		if (rc == 0) {
			/* Nothing more to read now: send what we have if we may. */
			if (lv->credit && (lv->batch->n_objects || lv->batch->n_errors))
				flush(la);
			ml_conn_watch(&lv->conn, true);
			return;
		}
		if (rc < 0) {
			int e = LDAP_SERVER_DOWN;
			ldap_get_option(lv->conn.ld, LDAP_OPT_RESULT_CODE, &e);
			char *t = ml_ld_error(lv->conn.ld, e);
			char *m = loom_sprintf("lost the connection to '%s': %s", la->cfg.ldap.uri.text, t);
			end_stream(la, m, false);
			free(m);
			free(t);
			return;
		}
		size_t i = base_of(lv, nb, ldap_msgid(msg));
		int r = 0;
		if (i < nb) {
			switch (rc) {
			case LDAP_RES_SEARCH_ENTRY:
				r = on_entry(la, i, msg);
				break;
			case LDAP_RES_INTERMEDIATE:
				r = on_intermediate(la, i, msg);
				break;
			case LDAP_RES_SEARCH_RESULT:
				r = on_result(la, i, msg);
				break;
			case LDAP_RES_SEARCH_REFERENCE:
				add_error(lv, "referral", ml_base(la, i)->dn.text, "the server returned a referral (not followed)");
				break;
			default:
				break;
			}
		}
		ldap_msgfree(msg);
		if (r < 0)
			return;
	}
	if (lv->active)
		ml_conn_watch(&lv->conn, false); /* a full batch waits for the acknowledgement */
}

static int on_readable(ml_conn_t *c)
{
	pump(c->la);
	return 0;
}

/* ---- Active Directory: a DirSync poll ------------------------------------------------ */

/* One poll: the changes since the cookie, read by the delta import's code
 * into the batch (ml_dirsync_changes); the new cookie holds after them. */
static void ad_poll(ldapagent_t *la)
{
	ml_live_t *lv = &la->live;
	char *err = NULL;
	size_t nb = la->cfg.ldap.bases.n;
	struct berval cookie = { 0, NULL };
	Loom__ImportObject **objs = NULL;
	size_t nobjs = 0;
	Loom__RunObjectError **errs = NULL;
	size_t nerrs = 0;
	if (ml_dirsync_changes(la, lv->conn.ld, &lv->wm.cookies[0], &cookie, &objs, &nobjs, &errs, &nerrs, &err) < 0) {
		end_stream(la, err, false);
		free(err);
		return;
	}
	Loom__ImportBatch *b = lv->batch;
	b->objects = loom_realloc(b->objects, (b->n_objects + nobjs + lv->batch_size) * sizeof *b->objects);
	for (size_t k = 0; k < nobjs; k++)
		b->objects[b->n_objects++] = objs[k];
	b->errors = loom_realloc(b->errors, (b->n_errors + nerrs + 1) * sizeof *b->errors);
	for (size_t k = 0; k < nerrs; k++)
		b->errors[b->n_errors++] = errs[k];
	free(objs);
	free(errs);
	for (size_t i = 0; i < nb; i++)
		ml_watermark_set(&lv->wm, i, &cookie);
	free(cookie.bv_val);
	lv->polled_ms = loom_mono_ms();
	if (b->n_objects || b->n_errors)
		flush(la); /* ad_poll only runs with credit */
}

/* ---- the stream --------------------------------------------------------------------- */

static int on_timer(loom_loop_t *loop, void *arg);

void ml_live_start(ldapagent_t *la, Loom__Envelope *env, const Loom__ImportRequest *rq)
{
	ml_live_t *lv = &la->live;
	if (lv->active)
		loom_info("live stream restarted by the engine old_session=%llu session=%llu",
		    (unsigned long long)lv->session, (unsigned long long)rq->run_id);
	ml_live_stop(la);
	lv->active = true;
	lv->session = rq->run_id;
	lv->engine = loom_strdup(env->from);
	lv->batch_size = rq->batch_size ? rq->batch_size : 500;
	lv->credit = true;
	lv->sent_ms = loom_mono_ms();
	batch_new(lv);
	/* Keepalives and AD polls: a tick of a tenth of the shorter period. */
	long long period = la->cfg.live.keepalive_ms;
	if (la->cfg.ldap.directory == LOOM_LDAP_AD && la->cfg.live.poll_ms < period)
		period = la->cfg.live.poll_ms;
	lv->timer = loom_loop_add_timer(loom_daemon_loop(la->d), period / 10 > 10 ? period / 10 : 10, 0, on_timer, la);
	size_t nb = la->cfg.ldap.bases.n;
	bool ad = la->cfg.ldap.directory == LOOM_LDAP_AD;
	if (!la->cfg.live.enabled) {
		end_stream(la, "live mode is not enabled in the agent's file (live.enabled: true)", false);
		return;
	}
	const char *why;
	if (ml_watermark_decode(rq->watermark.data, rq->watermark.len, &lv->wm, &why) < 0) {
		end_stream(la, why, true);
		return;
	}
	lv->wm_start_len = rq->watermark.len;
	lv->wm_start = loom_memdup(rq->watermark.data, rq->watermark.len ? rq->watermark.len : 1);
	bool same = lv->wm.n == nb;
	for (size_t i = 0; same && i < nb; i++)
		same = strcasecmp(lv->wm.dns[i], ml_base(la, i)->dn.text) == 0;
	if (!same) {
		end_stream(la, "the watermark is for other bases (ldap.bases changed since the last import)", true);
		return;
	}
	if (strcasecmp(la->cfg.anchor, ad ? "objectGUID" : "entryUUID") != 0) {
		char *m = loom_sprintf("live mode needs anchor %s (deleted entries are named by it), not '%s'",
		    ad ? "objectGUID" : "entryUUID", la->cfg.anchor);
		end_stream(la, m, false);
		free(m);
		return;
	}
	for (size_t i = 0; i < nb; i++) {
		if (lv->wm.cookies[i].bv_val == NULL) {
			char *m = loom_sprintf("no %s cookie for '%s' (the server did not offer it at the last full import)",
			    ad ? "DirSync" : "content sync", ml_base(la, i)->dn.text);
			end_stream(la, m, true);
			free(m);
			return;
		}
	}
	char *err = NULL;
	if (ml_conn_open(la, &lv->conn, &err) < 0) {
		end_stream(la, err, false);
		free(err);
		return;
	}
	lv->conn.on_readable = on_readable;
	if (ml_schema_load(la, lv->conn.ld, &err) < 0) {
		end_stream(la, err, false);
		free(err);
		return;
	}
	loom_info("live stream started session=%llu mode=%s bases=%zu", (unsigned long long)lv->session,
	    ad ? "dirsync-poll" : "refreshAndPersist", nb);
	if (ad) {
		lv->persisting = true; /* a poll's batch is complete: its cookie holds after it */
		ad_poll(la);
		return;
	}
	lv->gone = loom_map_new();
	lv->seen = loom_map_new();
	lv->msgids = loom_calloc(nb, sizeof *lv->msgids);
	lv->refreshed = loom_calloc(nb, sizeof *lv->refreshed);
	for (size_t i = 0; i < nb; i++) {
		const loom_agentcfg_ldap_base_t *bc = ml_base(la, i);
		LDAPControl sync = { 0 };
		if (ml_sync_request_value(LDAP_SYNC_REFRESH_AND_PERSIST, &lv->wm.cookies[i], &sync.ldctl_value) < 0) {
			end_stream(la, "cannot encode the content sync request", false);
			return;
		}
		sync.ldctl_oid = LDAP_CONTROL_SYNC;
		sync.ldctl_iscritical = 1;
		LDAPControl *ctrls[2] = { &sync, NULL };
		int rc = ldap_search_ext(lv->conn.ld, bc->dn.text, ml_scope(bc->scope), la->filters[i], la->attrs, 0, ctrls,
		    NULL, NULL, LDAP_NO_LIMIT, &lv->msgids[i]);
		ber_memfree(sync.ldctl_value.bv_val);
		if (rc != LDAP_SUCCESS) {
			char *e = ml_ld_error(lv->conn.ld, rc);
			char *m = loom_sprintf("cannot start the content sync of '%s' on '%s': %s", bc->dn.text,
			    la->cfg.ldap.uri.text, e);
			end_stream(la, m, false);
			free(m);
			free(e);
			return;
		}
	}
	pump(la);
}

void ml_live_credit(ldapagent_t *la, const Loom__ImportCredit *c)
{
	ml_live_t *lv = &la->live;
	if (!lv->active || c->run_id != lv->session)
		return;
	if (c->abort) {
		loom_info("live stream stopped by the engine session=%llu", (unsigned long long)lv->session);
		ml_live_stop(la);
		return;
	}
	lv->credit = true;
	if (la->cfg.ldap.directory != LOOM_LDAP_AD)
		pump(la);
}

bool ml_live_is(const ldapagent_t *la, uint64_t run_id)
{
	return la->live.active && la->live.session == run_id;
}

static int on_timer(loom_loop_t *loop, void *arg)
{
	(void)loop;
	ldapagent_t *la = arg;
	ml_live_t *lv = &la->live;
	if (!lv->active || !lv->credit)
		return 0;
	long long now = loom_mono_ms();
	if (la->cfg.ldap.directory == LOOM_LDAP_AD && now - lv->polled_ms >= la->cfg.live.poll_ms) {
		ad_poll(la);
		if (!lv->active || !lv->credit)
			return 0;
	}
	if (now - lv->sent_ms >= la->cfg.live.keepalive_ms)
		flush(la); /* keepalive, with the newest cookie when it holds */
	return 0;
}

void ml_live_hello(ldapagent_t *la)
{
	if (!la->cfg.live.enabled)
		return;
	Loom__LiveHello h = LOOM__LIVE_HELLO__INIT;
	h.agent = la->name;
	const char *err;
	if (loom_bus_send(loom_daemon_bus(la->d), "engine", &h.base, NULL, NULL, &err) < 0)
		loom_warning("cannot ask the engine for the live stream: %s", err);
}
