/* engine_run.c - runs: starting one, counting what happens, recording it,
 * and answering loomctl's questions about runs and objects.
 *
 * Run states (this block and the code change together):
 *
 *   (none) --RunRequest--> in-progress --finished--> success
 *                                                  | completed-errors (some objects failed)
 *                                                  | stopped-error-limit
 *                                                  | failed (the run could not go on: message)
 *                                                  | stopped-deletion-threshold-exceeded (export
 *                                                    only: it would delete too much; nothing sent)
 *   in-progress --engine restarted--> stopped-engine-restart   eng_runs_recover()
 *
 * A run may also carry warnings (RunRecord.warnings) whatever its status:
 * e.g. a delta import whose watermark the agent refused goes on as a full
 * import (engine_import.c) and says so.
 *
 * One run at a time: a second request while one runs is refused with the
 * running one named. A run record is written when the run starts, every few
 * thousand objects, and (durably) when it ends.
 */
#include "engine.h"
#include "loom_alloc.h"
#include "loom_envelope.h"
#include "loom_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KEEP_ANCHORS ENG_KEEP_ANCHORS
#define KEEP_ERRORS 1000   /* object errors kept in the record */

static const char *const profiles[] = { "full-import", "delta-import", "full-sync", "delta-sync", "export", NULL };

bool eng_run_profile_known(const char *profile)
{
	for (const char *const *p = profiles; *p; p++)
		if (strcmp(*p, profile) == 0)
			return true;
	return false;
}

void eng_run_count(engine_t *e, const char *counter, const char *anchor)
{
	eng_run_t *r = e->run;
	if (r == NULL)
		return;
	eng_counter_t *c = NULL;
	for (size_t i = 0; i < r->ncounters; i++)
		if (strcmp(r->counters[i].name, counter) == 0)
			c = &r->counters[i];
	if (c == NULL) {
		r->counters = loom_realloc(r->counters, (r->ncounters + 1) * sizeof *r->counters);
		c = &r->counters[r->ncounters++];
		memset(c, 0, sizeof *c);
		c->name = loom_strdup(counter);
	}
	c->count++;
	if (anchor && c->nanchors < KEEP_ANCHORS) {
		c->anchors = loom_realloc(c->anchors, (c->nanchors + 1) * sizeof *c->anchors);
		c->anchors[c->nanchors++] = loom_strdup(anchor);
	}
}

void eng_run_error(engine_t *e, const char *anchor, const char *dn, const char *code, const char *message,
    const char *where, bool retryable)
{
	if (e->trace) {
		e->trace_failed = true;
		eng_explain(e, "error", "error %s%s%s: %s", code, where && where[0] ? " at " : "", where ? where : "", message ? message : "");
	}
	eng_run_t *r = e->run;
	if (r == NULL)
		return;
	r->error_count++;
	eng_run_count(e, "errors", anchor);
	if (r->nerrors >= KEEP_ERRORS)
		return;
	Loom__RunObjectError *er = loom_malloc(sizeof *er);
	loom__run_object_error__init(er);
	er->anchor = loom_strdup(anchor ? anchor : "");
	er->dn = loom_strdup(dn ? dn : "");
	er->code = loom_strdup(code);
	er->message = loom_strdup(message ? message : "");
	er->where = loom_strdup(where ? where : "");
	er->retryable = retryable;
	r->errors = loom_realloc(r->errors, (r->nerrors + 1) * sizeof *r->errors);
	r->errors[r->nerrors++] = er;
}

void eng_run_warning(engine_t *e, const char *text)
{
	eng_run_t *r = e->run;
	if (r == NULL)
		return;
	r->warnings = loom_realloc(r->warnings, (r->nwarnings + 1) * sizeof *r->warnings);
	r->warnings[r->nwarnings++] = loom_strdup(text);
}

void eng_run_reset_stats(engine_t *e)
{
	eng_run_t *r = e->run;
	for (size_t i = 0; i < r->ncounters; i++) {
		free(r->counters[i].name);
		eng_strv_free(r->counters[i].anchors, r->counters[i].nanchors);
	}
	free(r->counters);
	r->counters = NULL;
	r->ncounters = 0;
	for (size_t i = 0; i < r->nerrors; i++)
		protobuf_c_message_free_unpacked(&r->errors[i]->base, NULL);
	free(r->errors);
	r->errors = NULL;
	r->nerrors = 0;
	r->error_count = 0;
	r->objects = 0;
}

bool eng_run_over_limit(engine_t *e)
{
	eng_run_t *r = e->run;
	long long limit = r->agent->cfg->error_limit;
	return limit > 0 && r->error_count >= (uint64_t)limit;
}

/* Builds the record of r (details: anchors and errors included). The record
 * borrows r's strings: free only its arrays (record_release). */
static void record_fill(const eng_run_t *r, Loom__RunRecord *rec, const char *status, const char *message,
    bool details)
{
	loom__run_record__init(rec);
	rec->id = r->id;
	rec->agent = r->agent->cfg->name;
	rec->profile = r->profile;
	rec->status = (char *)status;
	rec->message = (char *)(message ? message : "");
	rec->started_at = r->started_us;
	rec->objects = r->objects;
	rec->error_count = r->error_count;
	rec->n_warnings = r->nwarnings;
	rec->warnings = r->warnings;
	rec->n_counters = r->ncounters;
	rec->counters = loom_calloc(r->ncounters ? r->ncounters : 1, sizeof *rec->counters);
	for (size_t i = 0; i < r->ncounters; i++) {
		Loom__RunCounter *c = loom_malloc(sizeof *c);
		loom__run_counter__init(c);
		c->name = r->counters[i].name;
		c->count = r->counters[i].count;
		if (details) {
			c->n_anchors = r->counters[i].nanchors;
			c->anchors = r->counters[i].anchors;
		}
		rec->counters[i] = c;
	}
	if (details) {
		rec->n_errors = r->nerrors;
		rec->errors = r->errors;
	}
}

static void record_release(Loom__RunRecord *rec)
{
	for (size_t i = 0; i < rec->n_counters; i++)
		free(rec->counters[i]);
	free(rec->counters);
}

static void record_put(engine_t *e, loom_batch_t *b, const Loom__RunRecord *rec)
{
	(void)e;
	unsigned char k[8];
	loom_store_put_u64be(k, rec->id);
	size_t len = loom__run_record__get_packed_size(rec);
	uint8_t *buf = loom_malloc(len);
	loom__run_record__pack(rec, buf);
	loom_batch_put(b, CF_RUN, k, 8, buf, len);
	free(buf);
}

void eng_run_save(engine_t *e, loom_batch_t *b)
{
	Loom__RunRecord rec;
	record_fill(e->run, &rec, "in-progress", NULL, true);
	record_put(e, b, &rec);
	record_release(&rec);
}

static void run_free(eng_run_t *r)
{
	for (size_t i = 0; i < r->ncounters; i++) {
		free(r->counters[i].name);
		eng_strv_free(r->counters[i].anchors, r->counters[i].nanchors);
	}
	free(r->counters);
	for (size_t i = 0; i < r->nerrors; i++)
		protobuf_c_message_free_unpacked(&r->errors[i]->base, NULL);
	free(r->errors);
	eng_strv_free(r->warnings, r->nwarnings);
	loom_iter_destroy(&r->iter);
	free(r->prefix);
	free(r->profile);
	free(r->watermark);
	for (size_t i = 0; i < r->ninflight; i++)
		protobuf_c_message_free_unpacked(&r->inflight[i]->base, NULL);
	free(r);
}

void eng_run_finish(engine_t *e, const char *status, const char *message)
{
	eng_run_t *r = e->run;
	if (r == NULL)
		return;
	if (strcmp(status, "success") == 0 && r->error_count > 0)
		status = "completed-errors";
	if (r->timer)
		loom_loop_cancel_timer(loom_daemon_loop(e->daemon), r->timer);
	Loom__RunRecord rec;
	record_fill(r, &rec, status, message, true);
	rec.ended_at = loom_now_us();
	loom_batch_clear(e->batch);
	record_put(e, e->batch, &rec);
	record_release(&rec);
	const char *err;
	/* Synchronous: it also makes every unsynced write of the run durable
	 * (a lazy run's become durable with the next synchronous write). */
	if (loom_store_write_ex(e->store, e->batch, !r->lazy, &err) < 0)
		loom_error("cannot record run run=%llu: %s", (unsigned long long)r->id, err);
	loom_buf_t line = LOOM_BUF_INIT;
	for (size_t i = 0; i < r->ncounters; i++)
		loom_buf_printf(&line, " %s=%llu", r->counters[i].name, (unsigned long long)r->counters[i].count);
	loom_log(strcmp(status, "success") == 0 ? LOOM_LOG_INFO : LOOM_LOG_WARNING,
	    "run finished run=%llu agent=%s profile=%s status=%s objects=%llu%s%s%s",
	    (unsigned long long)r->id, r->agent->cfg->name, r->profile, status,
	    (unsigned long long)r->objects, loom_buf_cstr(&line), message ? " message=" : "",
	    message ? loom_log_kv_quote(message) : "");
	loom_buf_release(&line);
	e->run = NULL;
	/* Before run_free: status and message may point into the run. */
	eng_sched_run_finished(e, r->id, status, message);
	eng_live_run_finished(e, r->id, r->agent->cfg->name, r->profile, status);
	run_free(r);
}

int eng_run_open(engine_t *e, eng_agent_t *a, const char *profile, bool durable, uint64_t *ret_id,
    const char **error_r)
{
	static char errbuf[256];
	if (e->run) {
		snprintf(errbuf, sizeof errbuf, "the engine is busy with run %llu (%s %s); try again when it ends",
		    (unsigned long long)e->run->id, e->run->agent->cfg->name, e->run->profile);
		*error_r = errbuf;
		return -1;
	}
	eng_run_t *r = loom_calloc(1, sizeof *r);
	r->agent = a;
	r->profile = loom_strdup(profile);
	r->started_us = loom_now_us();
	r->last_heard_ms = loom_mono_ms();
	loom_batch_clear(e->batch);
	r->id = eng_seq_next(e, e->batch, &e->seq_run, &e->lim_run, "seq:run", 1);
	e->run = r;
	eng_run_save(e, e->batch);
	const char *err;
	if (loom_store_write_ex(e->store, e->batch, durable, &err) < 0) {
		snprintf(errbuf, sizeof errbuf, "cannot record the run: %s", err);
		*error_r = errbuf;
		e->run = NULL;
		run_free(r);
		return -1;
	}
	*ret_id = r->id;
	return 0;
}

int eng_run_start(engine_t *e, const char *agent, const char *profile, uint64_t allow_deletes,
    uint64_t *ret_id, const char **error_r)
{
	return eng_run_start_ex(e, agent, profile, allow_deletes, true, ret_id, error_r);
}

int eng_run_start_ex(engine_t *e, const char *agent, const char *profile, uint64_t allow_deletes, bool durable,
    uint64_t *ret_id, const char **error_r)
{
	static char errbuf[256];
	if (e->run) {
		snprintf(errbuf, sizeof errbuf, "the engine is busy with run %llu (%s %s); try again when it ends",
		    (unsigned long long)e->run->id, e->run->agent->cfg->name, e->run->profile);
		*error_r = errbuf;
		return -1;
	}
	eng_agent_t *a = eng_agent_find(e, agent);
	if (a == NULL) {
		snprintf(errbuf, sizeof errbuf, "no agent '%s' is configured", agent);
		*error_r = errbuf;
		return -1;
	}
	bool ok = false;
	for (const char *const *p = profiles; *p; p++)
		ok |= strcmp(*p, profile) == 0;
	if (!ok) {
		snprintf(errbuf, sizeof errbuf, "unknown run profile '%s': expected full-import, delta-import, "
		    "full-sync, delta-sync or export", profile);
		*error_r = errbuf;
		return -1;
	}
	const char *err;
	if (eng_run_open(e, a, profile, durable, ret_id, &err) < 0) {
		*error_r = err;
		return -1;
	}
	eng_run_t *r = e->run;
	r->allow_deletes = allow_deletes;
	r->lazy = !durable;
	loom_info("run started run=%llu agent=%s profile=%s", (unsigned long long)r->id, agent, profile);
	int rc;
	if (strcmp(profile, "full-import") == 0 || strcmp(profile, "delta-import") == 0) {
		r->delta = profile[0] == 'd';
		rc = eng_import_begin(e, &err);
	} else if (strcmp(profile, "full-sync") == 0 || strcmp(profile, "delta-sync") == 0) {
		r->delta = profile[0] == 'd';
		rc = eng_sync_begin(e, &err);
	} else {
		rc = eng_export_begin(e, &err);
	}
	if (rc < 0)
		eng_run_finish(e, "failed", err);
	return 0;
}

int eng_run_watch(loom_loop_t *loop, void *arg)
{
	(void)loop;
	engine_t *e = arg;
	eng_run_t *r = e->run;
	if (r == NULL || (r->phase != RUN_IMPORT && r->phase != RUN_EXPORT))
		return 0;
	int64_t silent = loom_mono_ms() - r->last_heard_ms;
	if (silent <= r->agent->cfg->timeout_ms)
		return 0;
	char *m = r->phase == RUN_IMPORT
	    ? loom_sprintf("agent '%s' sent nothing for %lld ms (is loom-ma-file --agent %s running?)",
		  r->agent->service, (long long)silent, r->agent->cfg->name)
	    : loom_sprintf("agent '%s' did not answer an export batch within %lld ms; the changes stay pending",
		  r->agent->service, (long long)silent);
	eng_run_finish(e, "failed", m);
	free(m);
	return 0;
}

static Loom__RunRecord *record_get(engine_t *e, uint64_t id)
{
	unsigned char k[8];
	loom_store_put_u64be(k, id);
	void *v;
	size_t len;
	const char *err = NULL;
	int rc = loom_store_get(e->store, CF_RUN, k, 8, &v, &len, &err);
	if (rc < 0)
		loom_error("cannot read run record run=%llu: %s", (unsigned long long)id, err);
	if (rc <= 0)
		return NULL;
	Loom__RunRecord *rec = loom__run_record__unpack(NULL, len, v);
	free(v);
	return rec;
}

/* Only one run is in progress at a time, so an interrupted run is the newest
 * record (or, when marking it failed before, the newest few): walk back from
 * seq_run to the first finished one instead of reading every run ever. */
void eng_runs_recover(engine_t *e)
{
	loom_batch_clear(e->batch);
	for (uint64_t id = e->seq_run; id > 0; id--) {
		Loom__RunRecord *rec = record_get(e, id);
		if (rec == NULL)
			continue; /* an id reserved by a run that never started */
		bool cut = strcmp(rec->status, "in-progress") == 0;
		if (cut) {
			loom_warning("run was cut short by an engine restart run=%llu agent=%s profile=%s",
			    (unsigned long long)rec->id, rec->agent, rec->profile);
			char *old = rec->status, *oldm = rec->message;
			rec->status = "stopped-engine-restart";
			rec->message = "the engine stopped during this run; objects already processed are kept: run it again";
			rec->ended_at = loom_now_us();
			record_put(e, e->batch, rec);
			rec->status = old;
			rec->message = oldm;
		}
		loom__run_record__free_unpacked(rec, NULL);
		if (!cut)
			break;
	}
	const char *err;
	if (loom_batch_count(e->batch) && loom_store_write_ex(e->store, e->batch, true, &err) < 0)
		loom_error("cannot update interrupted runs: %s", err);
}

/* ---- queries from loomctl --------------------------------------------------- */

static void reply(engine_t *e, Loom__Envelope *env, const ProtobufCMessage *m)
{
	const char *err;
	if (loom_bus_reply(loom_daemon_bus(e->daemon), env, m, &err) < 0)
		loom_warning("cannot reply to from=%s type=%s: %s", env->from, m->descriptor->name, err);
}

static void reply_error(engine_t *e, Loom__Envelope *env, Loom__Error__Code code, const char *text)
{
	const char *err;
	if (loom_bus_reply_error(loom_daemon_bus(e->daemon), env, code, false, text, &err) < 0)
		loom_warning("cannot reply to from=%s: %s", env->from, err);
}


static void q_run_status(engine_t *e, Loom__Envelope *env, const ProtobufCMessage *m)
{
	const Loom__RunStatusRequest *rq = (const Loom__RunStatusRequest *)m;
	if (e->run && e->run->id == rq->run_id) {
		Loom__RunRecord rec;
		record_fill(e->run, &rec, "in-progress", NULL, rq->details);
		reply(e, env, &rec.base);
		record_release(&rec);
		return;
	}
	Loom__RunRecord *rec = record_get(e, rq->run_id);
	if (rec == NULL) {
		char *t = loom_sprintf("no run %llu", (unsigned long long)rq->run_id);
		reply_error(e, env, LOOM__ERROR__CODE__BAD_REQUEST, t);
		free(t);
		return;
	}
	if (!rq->details) {
		for (size_t i = 0; i < rec->n_counters; i++) {
			for (size_t k = 0; k < rec->counters[i]->n_anchors; k++)
				free(rec->counters[i]->anchors[k]);
			rec->counters[i]->n_anchors = 0;
		}
		for (size_t i = 0; i < rec->n_errors; i++)
			loom__run_object_error__free_unpacked(rec->errors[i], NULL);
		rec->n_errors = 0;
	}
	reply(e, env, &rec->base);
	loom__run_record__free_unpacked(rec, NULL);
}

/* A query's limit: the client's, or the default when 0, never above
 * QUERY_LIMIT_MAX (the reply array is allocated for it up front, and a
 * client must not be able to make the engine allocate gigabytes). */
#define QUERY_LIMIT_MAX 10000
static uint32_t query_limit(uint32_t asked, uint32_t dflt)
{
	if (asked == 0)
		return dflt;
	return asked < QUERY_LIMIT_MAX ? asked : QUERY_LIMIT_MAX;
}

static void q_runs(engine_t *e, Loom__Envelope *env, const ProtobufCMessage *m)
{
	const Loom__RunsRequest *rq = (const Loom__RunsRequest *)m;
	uint32_t limit = query_limit(rq->limit, 50);
	Loom__RunsReply rep = LOOM__RUNS_REPLY__INIT;
	rep.runs = loom_calloc(limit, sizeof *rep.runs);
	for (uint64_t id = e->seq_run; id > 0 && rep.n_runs < limit; id--) {
		Loom__RunRecord *rec = record_get(e, id);
		if (rec == NULL)
			continue;
		if (rq->agent[0] && strcmp(rq->agent, rec->agent) != 0) {
			loom__run_record__free_unpacked(rec, NULL);
			continue;
		}
		if (e->run && e->run->id == id) {
			loom_pb_str_set(&rec->status, "in-progress");
			rec->objects = e->run->objects;
		}
		/* Listings carry counts only. */
		for (size_t i = 0; i < rec->n_errors; i++)
			loom__run_object_error__free_unpacked(rec->errors[i], NULL);
		rec->n_errors = 0;
		for (size_t i = 0; i < rec->n_counters; i++) {
			for (size_t k = 0; k < rec->counters[i]->n_anchors; k++)
				free(rec->counters[i]->anchors[k]);
			rec->counters[i]->n_anchors = 0;
		}
		rep.runs[rep.n_runs++] = rec;
	}
	reply(e, env, &rep.base);
	for (size_t i = 0; i < rep.n_runs; i++)
		loom__run_record__free_unpacked(rep.runs[i], NULL);
	free(rep.runs);
}

static bool state_match(const Loom__CsObject *cs, const char *state)
{
	if (state[0] == '\0')
		return true;
	if (strcmp(state, "pending-import") == 0)
		return cs->pending_import && cs->pending_import->kind != LOOM__PENDING_IMPORT__KIND__NONE;
	if (strcmp(state, "pending-export") == 0)
		return cs->pending_export && cs->pending_export->kind != LOOM__PENDING_EXPORT__KIND__NONE;
	if (strcmp(state, "unconfirmed") == 0)
		return cs->unconfirmed && cs->unconfirmed->kind != LOOM__PENDING_EXPORT__KIND__NONE;
	if (strcmp(state, "error") == 0)
		return cs->last_error[0] != '\0';
	if (strcmp(state, "connector") == 0)
		return cs->mv_id.len > 0;
	if (strcmp(state, "disconnector") == 0)
		return cs->mv_id.len == 0;
	const char *name = eng_state_name(cs->state);
	return strcmp(name, state) == 0 || (strncmp(name, state, strlen(state)) == 0 && name[strlen(state)] == '-');
}

static const char *const cs_states[] = { "", "pending-import", "pending-export", "unconfirmed", "error",
	"connector", "disconnector", "normal", "filtered", "explicit", "joined", "placeholder", NULL };

static void q_cs_search(engine_t *e, Loom__Envelope *env, const ProtobufCMessage *m)
{
	const Loom__CsSearchRequest *rq = (const Loom__CsSearchRequest *)m;
	if (eng_agent_find(e, rq->agent) == NULL) {
		char *t = loom_sprintf("no agent '%s' is configured", rq->agent);
		reply_error(e, env, LOOM__ERROR__CODE__BAD_REQUEST, t);
		free(t);
		return;
	}
	bool known = false;
	for (const char *const *s = cs_states; *s; s++)
		known |= strcmp(*s, rq->state) == 0;
	if (!known) {
		char *t = loom_sprintf("unknown state '%s': expected pending-import, pending-export, unconfirmed, error, "
		    "connector, disconnector, normal, filtered, explicit, joined or placeholder", rq->state);
		reply_error(e, env, LOOM__ERROR__CODE__BAD_REQUEST, t);
		free(t);
		return;
	}
	uint32_t limit = query_limit(rq->limit, 100);
	Loom__CsSearchReply rep = LOOM__CS_SEARCH_REPLY__INIT;
	rep.objects = loom_calloc(limit, sizeof *rep.objects);
	const char *err;
	if (rq->anchor[0] || rq->dn[0]) {
		char *anchor = rq->anchor[0] ? loom_strdup(rq->anchor) : eng_csdn_get(e, rq->agent, rq->dn);
		free(eng_read_error_take(e)); /* a query reports "not found"; syncs judge their own reads */
		Loom__CsObject *cs = anchor ? eng_cs_get(e, rq->agent, anchor, &err) : NULL;
		if (cs && state_match(cs, rq->state))
			rep.objects[rep.n_objects++] = cs;
		else if (cs)
			loom__cs_object__free_unpacked(cs, NULL);
		free(anchor);
	} else {
		loom_buf_t prefix = LOOM_BUF_INIT;
		loom_buf_adds(&prefix, rq->agent);
		loom_buf_addc(&prefix, '\0');
		int cf = strcmp(rq->state, "pending-export") == 0 ? CF_EXPORT : CF_CS;
		loom_iter_t *it = loom_iter_new(e->store, cf);
		for (loom_iter_seek(it, prefix.data, prefix.len); loom_iter_valid(it); loom_iter_next(it)) {
			size_t klen, vlen;
			const char *k = loom_iter_key(it, &klen);
			if (klen < prefix.len || memcmp(k, prefix.data, prefix.len) != 0)
				break;
			Loom__CsObject *cs;
			if (cf == CF_CS) {
				const void *v = loom_iter_value(it, &vlen);
				cs = loom__cs_object__unpack(NULL, vlen, v);
			} else {
				char *anchor = loom_strndup(k + prefix.len, klen - prefix.len);
				cs = eng_cs_get(e, rq->agent, anchor, &err);
				free(anchor);
			}
			if (cs == NULL)
				continue;
			if (!state_match(cs, rq->state)) {
				loom__cs_object__free_unpacked(cs, NULL);
				continue;
			}
			if (rep.n_objects == limit) {
				rep.truncated = true;
				loom__cs_object__free_unpacked(cs, NULL);
				break;
			}
			rep.objects[rep.n_objects++] = cs;
		}
		loom_iter_destroy(&it);
		loom_buf_release(&prefix);
	}
	reply(e, env, &rep.base);
	for (size_t i = 0; i < rep.n_objects; i++)
		loom__cs_object__free_unpacked(rep.objects[i], NULL);
	free(rep.objects);
}

static void q_cs_show(engine_t *e, Loom__Envelope *env, const ProtobufCMessage *m)
{
	const Loom__CsShowRequest *rq = (const Loom__CsShowRequest *)m;
	const char *err = NULL;
	Loom__CsObject *cs = eng_cs_get(e, rq->agent, rq->anchor, &err);
	if (cs == NULL) {
		char *t = err ? loom_sprintf("cannot read '%s' in agent '%s': %s", rq->anchor, rq->agent, err)
			      : loom_sprintf("no object with anchor '%s' in agent '%s'", rq->anchor, rq->agent);
		reply_error(e, env, LOOM__ERROR__CODE__BAD_REQUEST, t);
		free(t);
		return;
	}
	Loom__CsShowReply rep = LOOM__CS_SHOW_REPLY__INIT;
	rep.object = cs;
	rep.agent = rq->agent;
	reply(e, env, &rep.base);
	loom__cs_object__free_unpacked(cs, NULL);
}

static Loom__MvShowReply *mv_show(engine_t *e, Loom__MvObject *mv)
{
	Loom__MvShowReply *r = loom_malloc(sizeof *r);
	loom__mv_show_reply__init(r);
	r->object = mv;
	char **agents, **anchors;
	size_t n = eng_links(e, mv->id.data, &agents, &anchors);
	free(eng_read_error_take(e)); /* a listing shows what it could read */
	r->connectors = loom_calloc(n ? n : 1, sizeof *r->connectors);
	for (size_t i = 0; i < n; i++) {
		Loom__MvConnector *c = loom_malloc(sizeof *c);
		loom__mv_connector__init(c);
		c->agent = agents[i];
		c->anchor = anchors[i];
		const char *err;
		Loom__CsObject *cs = eng_cs_get(e, agents[i], anchors[i], &err);
		c->dn = loom_strdup(cs ? cs->dn : "");
		c->state = loom_strdup(cs ? eng_state_name(cs->state) : "missing");
		if (cs)
			loom__cs_object__free_unpacked(cs, NULL);
		r->connectors[r->n_connectors++] = c;
	}
	free(agents);
	free(anchors);
	return r;
}

static void q_mv_show(engine_t *e, Loom__Envelope *env, const ProtobufCMessage *m)
{
	const Loom__MvShowRequest *rq = (const Loom__MvShowRequest *)m;
	uint8_t id[8];
	const char *h = rq->id;
	bool ok = strlen(h) == 16;
	for (int i = 0; ok && i < 8; i++) {
		unsigned v;
		ok = sscanf(h + 2 * i, "%2x", &v) == 1;
		id[i] = (uint8_t)v;
	}
	const char *err = NULL;
	Loom__MvObject *mv = ok ? eng_mv_get(e, id, 8, &err) : NULL;
	if (mv == NULL) {
		char *t = ok ? loom_sprintf("no metaverse object '%s'", h)
			     : loom_sprintf("bad metaverse id '%s': expected 16 hex digits", h);
		reply_error(e, env, LOOM__ERROR__CODE__BAD_REQUEST, t);
		free(t);
		return;
	}
	Loom__MvShowReply *r = mv_show(e, mv);
	reply(e, env, &r->base);
	loom__mv_show_reply__free_unpacked(r, NULL);
}

/* True when attr is indexed for some metaverse type (or for mv_type). */
static bool indexed_any(engine_t *e, const char *mv_type, const char *attr)
{
	if (mv_type[0])
		return eng_indexed(e, mv_type, attr);
	size_t pos = 0, klen;
	const void *k;
	while (loom_map_next(e->indexed, &pos, &k, &klen, NULL)) {
		const char *a = memchr(k, '\0', klen);
		if (a && strlen(attr) == klen - (size_t)(a + 1 - (const char *)k) &&
		    strncasecmp(a + 1, attr, strlen(attr)) == 0)
			return true;
	}
	return false;
}

/* Does mv have attr with a value whose key is want? */
static bool mv_has(const Loom__MvObject *mv, const char *attr, const loom_buf_t *want)
{
	for (size_t i = 0; i < mv->n_attrs; i++) {
		if (strcasecmp(mv->attrs[i]->name, attr) != 0)
			continue;
		for (size_t k = 0; k < mv->attrs[i]->n_values; k++) {
			loom_buf_t v = LOOM_BUF_INIT;
			loom_value_key(&v, mv->attrs[i]->values[k]);
			bool eq = v.len == want->len && memcmp(v.data, want->data, v.len) == 0;
			loom_buf_release(&v);
			if (eq)
				return true;
		}
	}
	return false;
}

static void q_mv_search(engine_t *e, Loom__Envelope *env, const ProtobufCMessage *m)
{
	const Loom__MvSearchRequest *rq = (const Loom__MvSearchRequest *)m;
	uint32_t limit = query_limit(rq->limit, 100);
	Loom__MvSearchReply rep = LOOM__MV_SEARCH_REPLY__INIT;
	rep.objects = loom_calloc(limit, sizeof *rep.objects);
	loom_buf_t want = LOOM_BUF_INIT;
	Loom__Value v = LOOM__VALUE__INIT;
	v.v_case = LOOM__VALUE__V_STR;
	v.str = rq->value;
	loom_value_key(&want, &v);
	const char *err;
	if (indexed_any(e, rq->mv_type, rq->attr)) {
		/* Join attributes are indexed: seek each indexed type's
		 * "mv_type \0 attr \0 value \0" prefix; the ids follow it. */
		loom_iter_t *it = loom_iter_new(e->store, CF_MVIDX);
		loom_buf_t prefix = LOOM_BUF_INIT;
		size_t pos = 0, tlen;
		const void *tk;
		size_t alen = strlen(rq->attr);
		while (!rep.truncated && loom_map_next(e->indexed, &pos, &tk, &tlen, NULL)) {
			const char *type = tk;
			size_t typelen = strnlen(type, tlen);
			if (typelen + 1 + alen != tlen || strncasecmp(type + typelen + 1, rq->attr, alen) != 0 ||
			    (rq->mv_type[0] && strcasecmp(type, rq->mv_type) != 0))
				continue;
			char *typez = loom_strndup(type, typelen);
			eng_mvidx_key(&prefix, typez, rq->attr, &v, NULL);
			free(typez);
			for (loom_iter_seek(it, prefix.data, prefix.len); loom_iter_valid(it); loom_iter_next(it)) {
				size_t klen;
				const char *k = loom_iter_key(it, &klen);
				if (klen < prefix.len || memcmp(k, prefix.data, prefix.len) != 0)
					break;
				if (klen != prefix.len + 8)
					continue; /* a longer value that starts like this one */
				Loom__MvObject *mv = eng_mv_get(e, (const uint8_t *)k + klen - 8, 8, &err);
				if (mv == NULL)
					continue;
				if (rep.n_objects == limit) {
					rep.truncated = true;
					loom__mv_object__free_unpacked(mv, NULL);
					break;
				}
				rep.objects[rep.n_objects++] = mv_show(e, mv);
			}
		}
		loom_buf_release(&prefix);
		loom_iter_destroy(&it);
	} else {
		/* Not a join attribute: look at every metaverse object. */
		loom_iter_t *it = loom_iter_new(e->store, CF_MV);
		for (loom_iter_seek_first(it); loom_iter_valid(it); loom_iter_next(it)) {
			size_t vlen;
			const void *val = loom_iter_value(it, &vlen);
			Loom__MvObject *mv = loom__mv_object__unpack(NULL, vlen, val);
			if (mv == NULL)
				continue;
			if ((rq->mv_type[0] && strcmp(mv->object_type, rq->mv_type) != 0) || !mv_has(mv, rq->attr, &want)) {
				loom__mv_object__free_unpacked(mv, NULL);
				continue;
			}
			if (rep.n_objects == limit) {
				rep.truncated = true;
				loom__mv_object__free_unpacked(mv, NULL);
				break;
			}
			rep.objects[rep.n_objects++] = mv_show(e, mv);
		}
		loom_iter_destroy(&it);
	}
	loom_buf_release(&want);
	reply(e, env, &rep.base);
	for (size_t i = 0; i < rep.n_objects; i++)
		loom__mv_show_reply__free_unpacked(rep.objects[i], NULL);
	free(rep.objects);
}

static void q_run(engine_t *e, Loom__Envelope *env, const ProtobufCMessage *m)
{
	const Loom__RunRequest *rq = (const Loom__RunRequest *)m;
	uint64_t id;
	const char *err;
	if (eng_run_start(e, rq->agent, rq->profile, rq->allow_deletes, &id, &err) < 0) {
		reply_error(e, env, LOOM__ERROR__CODE__BAD_REQUEST, err);
		return;
	}
	Loom__RunReply rep = LOOM__RUN_REPLY__INIT;
	rep.run_id = id;
	reply(e, env, &rep.base);
}

/* loomctl's requests: the message type and the handler that answers it. */
typedef void query_fn(engine_t *e, Loom__Envelope *env, const ProtobufCMessage *request);
static const struct query {
	const ProtobufCMessageDescriptor *type;
	query_fn *fn;
} queries[] = {
	{ &loom__run_request__descriptor, q_run },
	{ &loom__run_status_request__descriptor, q_run_status },
	{ &loom__runs_request__descriptor, q_runs },
	{ &loom__cs_search_request__descriptor, q_cs_search },
	{ &loom__cs_show_request__descriptor, q_cs_show },
	{ &loom__mv_search_request__descriptor, q_mv_search },
	{ &loom__mv_show_request__descriptor, q_mv_show },
	{ &loom__schedule_list_request__descriptor, eng_sched_query },
	{ &loom__live_status_request__descriptor, eng_live_query },
	{ &loom__preview_request__descriptor, eng_preview },
};

void eng_handle_query(engine_t *e, Loom__Envelope *env)
{
	for (size_t i = 0; i < sizeof queries / sizeof *queries; i++) {
		if (!loom_envelope_is(env, queries[i].type))
			continue;
		const char *err;
		ProtobufCMessage *m = loom_envelope_body(env, queries[i].type, &err);
		if (m == NULL) {
			loom_warning("dropped malformed %s from=%s: %s", env->type, env->from, err);
			reply_error(e, env, LOOM__ERROR__CODE__MALFORMED, err);
			return;
		}
		queries[i].fn(e, env, m);
		protobuf_c_message_free_unpacked(m, NULL);
		return;
	}
	char *t = loom_sprintf("loom-engine does not handle '%s'", env->type);
	if (env->correlation_id.len == 0)
		reply_error(e, env, LOOM__ERROR__CODE__UNKNOWN_TYPE, t);
	free(t);
}
