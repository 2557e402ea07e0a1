/* engine_export.c - export: pending exports go to the agent in batches; each
 * change's result comes back. A change that succeeded becomes the object's
 * unconfirmed export until an import shows it; one that failed stays pending
 * with its error and attempt count, and is sent again by the next export.
 *
 * A change is identified by its change_id. If the engine dies after the agent
 * applied a batch but before the results were recorded, the next export sends
 * the same changes again with the same ids; agents apply them idempotently
 * (an add of an identical object, a replace of the same values), so nothing
 * is applied twice in effect.
 */
#include "engine.h"
#include "loom_alloc.h"
#include "loom_attrs.h"
#include "loom_envelope.h"
#include "loom_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EXPORT_BATCH 1000

/* The change for cs's pending export; takes its deltas (cs is freed after). */
static Loom__ExportChange *change_of(Loom__CsObject *cs)
{
	Loom__PendingExport *p = cs->pending_export;
	Loom__ExportChange *c = loom_malloc(sizeof *c);
	loom__export_change__init(c);
	c->change_id = p->change_id;
	c->op = p->kind == LOOM__PENDING_EXPORT__KIND__ADD ? LOOM__EXPORT_CHANGE__OP__ADD
	    : p->kind == LOOM__PENDING_EXPORT__KIND__DELETE ? LOOM__EXPORT_CHANGE__OP__DELETE
							   : LOOM__EXPORT_CHANGE__OP__UPDATE;
	c->anchor = loom_strdup(cs->anchor[0] == '~' ? "" : cs->anchor);
	c->dn = loom_strdup(cs->dn);
	c->new_dn = loom_strdup(p->new_dn);
	c->object_type = loom_strdup(cs->object_type);
	/* Both were unpacked with the default allocator: the deltas move. */
	c->deltas = p->deltas;
	c->n_deltas = p->n_deltas;
	p->deltas = NULL;
	p->n_deltas = 0;
	return c;
}

/* Sends the next batch (if any is left); finishes the run when there was
 * nothing to export at all. May end the run: callers check e->run after. */
static void send_next(engine_t *e)
{
	eng_run_t *r = e->run;
	if (r->export_done || r->ninflight == 2)
		return;
	const char *agent = r->agent->cfg->name;
	Loom__ExportBatch *b = loom_malloc(sizeof *b);
	loom__export_batch__init(b);
	b->agent = loom_strdup(agent);
	b->run_id = r->id;
	b->seq = ++r->export_seq;
	b->changes = loom_calloc(EXPORT_BATCH, sizeof *b->changes);
	/* A placeholder's temporary anchor is not sent (the change has none
	 * yet); the copy kept for the results gets it back, so that they find
	 * the object without a look-up by DN. */
	char **temp = loom_calloc(EXPORT_BATCH, sizeof *temp);
	const char *err;
	while (loom_iter_valid(r->iter) && b->n_changes < EXPORT_BATCH) {
		size_t klen;
		const char *k = loom_iter_key(r->iter, &klen);
		if (klen < r->prefix_len || memcmp(k, r->prefix, r->prefix_len) != 0)
			break;
		char *anchor = loom_strndup(k + r->prefix_len, klen - r->prefix_len);
		loom_iter_next(r->iter);
		err = NULL;
		Loom__CsObject *cs = eng_cs_get(e, agent, anchor, &err);
		if (cs == NULL && err) /* the change stays pending: the next export sends it */
			eng_run_error(e, anchor, NULL, "store-error", err, NULL, true);
		free(anchor);
		if (cs == NULL)
			continue;
		if (cs->pending_export && cs->pending_export->kind != LOOM__PENDING_EXPORT__KIND__NONE) {
			if (cs->anchor[0] == '~')
				temp[b->n_changes] = loom_strdup(cs->anchor);
			b->changes[b->n_changes++] = change_of(cs);
		}
		loom__cs_object__free_unpacked(cs, NULL);
	}
	bool end = !loom_iter_valid(r->iter);
	if (!end) {
		size_t klen;
		const char *k = loom_iter_key(r->iter, &klen);
		end = klen < r->prefix_len || memcmp(k, r->prefix, r->prefix_len) != 0;
	}
	b->last = end;
	if (b->n_changes == 0 && r->export_seq > 1 && !end) {
		/* Only stale marks in this stretch: keep going. */
		loom__export_batch__free_unpacked(b, NULL);
		free(temp);
		send_next(e);
		return;
	}
	if (b->n_changes == 0 && r->export_seq == 1 && end) {
		loom__export_batch__free_unpacked(b, NULL);
		free(temp);
		eng_run_finish(e, "success", NULL);
		return;
	}
	r->last_heard_ms = loom_mono_ms();
	if (loom_bus_send(loom_daemon_bus(e->daemon), r->agent->service, &b->base, NULL, NULL, &err) < 0) {
		char *m = loom_sprintf("cannot reach agent '%s': %s", r->agent->service, err);
		loom__export_batch__free_unpacked(b, NULL);
		eng_strv_free(temp, EXPORT_BATCH);
		eng_run_finish(e, "failed", m);
		free(m);
		return;
	}
	for (size_t i = 0; i < b->n_changes; i++)
		if (temp[i]) {
			free(b->changes[i]->anchor);
			b->changes[i]->anchor = temp[i];
		}
	free(temp);
	r->inflight[r->ninflight++] = b;
	r->export_done = end;
}

/* Delete safety: counts the deletes waiting for this agent (counter
 * pending-deletes, with the objects) and its connector space. Returns true
 * when the export may go on; otherwise the run has been stopped with
 * stopped-deletion-threshold-exceeded and nothing was sent. */
static bool deletion_check(engine_t *e)
{
	eng_run_t *r = e->run;
	const char *agent = r->agent->cfg->name;
	const loom_agentcfg_threshold_t *t = &r->agent->cfg->deletion_threshold;
	uint64_t deletes = 0, size = 0;
	const char *err;
	char *m;
	loom_iter_t *it = loom_iter_new(e->store, CF_EXPORT);
	for (loom_iter_seek(it, r->prefix, r->prefix_len); loom_iter_valid(it); loom_iter_next(it)) {
		size_t klen, vlen;
		const char *k = loom_iter_key(it, &klen);
		if (klen < r->prefix_len || memcmp(k, r->prefix, r->prefix_len) != 0)
			break;
		/* The mark says the kind; only a mark written by an older engine
		 * (empty) needs the object read. */
		const char *v = loom_iter_value(it, &vlen);
		if (vlen == 1 && v[0] != EXPORT_MARK_DELETE)
			continue;
		char *anchor = loom_strndup(k + r->prefix_len, klen - r->prefix_len);
		if (vlen == 1) {
			deletes++;
			/* The counter shows DNs where it can: its first anchors only. */
			Loom__CsObject *cs = NULL;
			if (deletes <= ENG_KEEP_ANCHORS) {
				err = NULL;
				cs = eng_cs_get(e, agent, anchor, &err);
			}
			eng_run_count(e, "pending-deletes", cs && cs->dn[0] ? cs->dn : anchor);
			if (cs)
				loom__cs_object__free_unpacked(cs, NULL);
			free(anchor);
			continue;
		}
		err = NULL;
		Loom__CsObject *cs = eng_cs_get(e, agent, anchor, &err);
		if (cs == NULL && err) {
			/* An unread delete is not "no delete": the count must be whole. */
			free(anchor);
			loom_iter_destroy(&it);
			goto unreadable;
		}
		if (cs && cs->pending_export && cs->pending_export->kind == LOOM__PENDING_EXPORT__KIND__DELETE) {
			deletes++;
			eng_run_count(e, "pending-deletes", cs->dn[0] ? cs->dn : cs->anchor);
		}
		if (cs)
			loom__cs_object__free_unpacked(cs, NULL);
		free(anchor);
	}
	if (loom_iter_status(it, &err) < 0) {
		loom_iter_destroy(&it);
		goto unreadable;
	}
	loom_iter_destroy(&it);
	if (deletes == 0)
		return true;
	it = loom_iter_new(e->store, CF_CS);
	for (loom_iter_seek(it, r->prefix, r->prefix_len); loom_iter_valid(it); loom_iter_next(it)) {
		size_t klen;
		const char *k = loom_iter_key(it, &klen);
		if (klen < r->prefix_len || memcmp(k, r->prefix, r->prefix_len) != 0)
			break;
		size++;
	}
	if (loom_iter_status(it, &err) < 0) {
		loom_iter_destroy(&it);
		goto unreadable;
	}
	loom_iter_destroy(&it);
	bool over_count = t->count > 0 && deletes > (uint64_t)t->count;
	bool over_share = t->percent > 0 && size > 0 && deletes * 100 > (uint64_t)t->percent * size;
	if (!(over_count || over_share) || deletes <= r->allow_deletes)
		return true;
	m = loom_sprintf("the export would delete %llu of the %llu objects of agent '%s' (%.1f%%), past its "
	    "deletion threshold (%s); nothing was exported: check the objects under pending-deletes, then run "
	    "'loomctl run %s export --allow-deletes %llu' to go on", (unsigned long long)deletes,
	    (unsigned long long)size, agent, size ? 100.0 * (double)deletes / (double)size : 0.0,
	    over_count ? "count" : "percent", agent, (unsigned long long)deletes);
	eng_run_finish(e, "stopped-deletion-threshold-exceeded", m);
	free(m);
	return false;
unreadable:
	m = loom_sprintf("cannot count the pending deletes of agent '%s' for its deletion threshold: %s; "
	    "nothing was exported", agent, err);
	eng_run_finish(e, "failed", m);
	free(m);
	return false;
}

int eng_export_begin(engine_t *e, const char **error_r)
{
	(void)error_r;
	eng_run_t *r = e->run;
	r->phase = RUN_EXPORT;
	loom_buf_t p = LOOM_BUF_INIT;
	loom_buf_adds(&p, r->agent->cfg->name);
	loom_buf_addc(&p, '\0');
	r->prefix_len = p.len;
	r->prefix = loom_buf_steal(&p);
	if (!deletion_check(e))
		return 0;
	r->iter = loom_iter_new(e->store, CF_EXPORT);
	loom_iter_seek(r->iter, r->prefix, r->prefix_len);
	r->timer = loom_loop_add_timer(loom_daemon_loop(e->daemon), 500, 0, eng_run_watch, e);
	send_next(e);
	if (e->run == r)
		send_next(e); /* a second batch in flight while the agent applies the first */
	return 0;
}

/* Drops from x's values those d names (all of them for a delete without values). */
static void values_remove(Loom__AttrDelta *x, const Loom__AttrDelta *d)
{
	size_t j = 0;
	for (size_t i = 0; i < x->n_values; i++) {
		bool gone = d->n_values == 0 && d->op == LOOM__ATTR_DELTA__OP__DELETE;
		for (size_t k = 0; k < d->n_values && !gone; k++)
			gone = loom_value_eq(x->values[i], d->values[k]);
		if (gone)
			loom__value__free_unpacked(x->values[i], NULL);
		else
			x->values[j++] = x->values[i];
	}
	x->n_values = j;
}

/* Adds to x the values of d it lacks. */
static void values_add(Loom__AttrDelta *x, const Loom__AttrDelta *d)
{
	for (size_t k = 0; k < d->n_values; k++) {
		bool have = false;
		for (size_t i = 0; i < x->n_values && !have; i++)
			have = loom_value_eq(x->values[i], d->values[k]);
		if (have)
			continue;
		x->values = loom_realloc(x->values, (x->n_values + 1) * sizeof *x->values);
		x->values[x->n_values++] = loom_value_dup(d->values[k]);
	}
}

/* A change applied while an earlier one waits for its confirming import:
 * the unconfirmed export becomes what both leave in the system, so that
 * the import confirms the latest values (an added title then replaced is
 * expected as replaced, not as added). */
static void merge_unconfirmed(Loom__CsObject *cs, Loom__PendingExport *done)
{
	if (cs->unconfirmed == NULL || cs->unconfirmed->kind == LOOM__PENDING_EXPORT__KIND__NONE) {
		if (cs->unconfirmed)
			loom__pending_export__free_unpacked(cs->unconfirmed, NULL);
		cs->unconfirmed = done;
		return;
	}
	Loom__PendingExport *u = cs->unconfirmed;
	for (size_t i = 0; i < done->n_deltas; i++) {
		Loom__AttrDelta *d = done->deltas[i];
		bool folded = false;
		size_t j = 0;
		for (size_t k = 0; k < u->n_deltas; k++) {
			Loom__AttrDelta *x = u->deltas[k];
			if (strcasecmp(x->name, d->name) != 0) {
				u->deltas[j++] = x;
				continue;
			}
			if (d->op == LOOM__ATTR_DELTA__OP__REPLACE) {
				loom__attr_delta__free_unpacked(x, NULL); /* superseded */
				continue;
			}
			if (x->op == LOOM__ATTR_DELTA__OP__REPLACE) {
				/* the values x set, then d's added or removed */
				if (d->op == LOOM__ATTR_DELTA__OP__ADD)
					values_add(x, d);
				else
					values_remove(x, d);
				folded = true;
				u->deltas[j++] = x;
				continue;
			}
			/* values added or removed, then d's: d's opposite goes from x */
			if (x->op != d->op)
				values_remove(x, d);
			if (x->n_values == 0) {
				loom__attr_delta__free_unpacked(x, NULL);
				continue;
			}
			u->deltas[j++] = x;
		}
		u->n_deltas = j;
		if (folded) {
			loom__attr_delta__free_unpacked(d, NULL);
			continue;
		}
		u->deltas = loom_realloc(u->deltas, (u->n_deltas + 1) * sizeof *u->deltas);
		u->deltas[u->n_deltas++] = d;
	}
	done->n_deltas = 0;
	u->change_id = done->change_id;
	loom__pending_export__free_unpacked(done, NULL);
}

static void apply_result(engine_t *e, loom_batch_t *b, const Loom__ExportChange *c, const Loom__ExportChangeResult *res)
{
	eng_run_t *r = e->run;
	const char *agent = r->agent->cfg->name;
	const char *err;
	/* The batch kept here has each object's anchor in the store (send_next
	 * put back the temporary anchors of placeholders). */
	char *anchor = c->anchor[0] ? loom_strdup(c->anchor) : eng_csdn_get(e, agent, c->dn);
	err = NULL;
	Loom__CsObject *cs = anchor ? eng_cs_get(e, agent, anchor, &err) : NULL;
	free(anchor);
	char *rerr = eng_read_error_take(e);
	if (rerr || (cs == NULL && err)) {
		/* The result cannot be recorded: the change stays pending and is
		 * sent again by the next export (agents apply changes idempotently). */
		eng_run_error(e, c->anchor, c->dn, "store-error", rerr ? rerr : err, NULL, true);
		free(rerr);
		return;
	}
	if (cs == NULL || cs->pending_export == NULL || cs->pending_export->change_id != c->change_id) {
		if (cs)
			loom__cs_object__free_unpacked(cs, NULL);
		return; /* changed meanwhile: the next export sends the new state */
	}
	r->objects++;
	if (!res->ok) {
		cs->pending_export->attempts++;
		{ char *t_ = loom_sprintf("%s: %s", res->code, res->message); loom_pb_str_set(&cs->pending_export->last_error, t_); free(t_); }
		loom_pb_str_set(&cs->last_error, cs->pending_export->last_error);
		eng_run_error(e, cs->anchor, cs->dn, res->code[0] ? res->code : "export-failed", res->message, NULL,
		    res->retryable);
		eng_cs_put(e, b, agent, cs, cs->dn);
		loom__cs_object__free_unpacked(cs, NULL);
		return;
	}
	if (c->op == LOOM__EXPORT_CHANGE__OP__DELETE) {
		eng_run_count(e, "exported-deletes", cs->anchor);
		eng_cs_delete(e, b, agent, cs);
		loom__cs_object__free_unpacked(cs, NULL);
		return;
	}
	eng_run_count(e, c->op == LOOM__EXPORT_CHANGE__OP__ADD ? "exported-adds" : "exported-updates", cs->anchor);
	char *old_dn = loom_strdup(cs->dn);
	bool rekeyed = false;
	if (c->op != LOOM__EXPORT_CHANGE__OP__DELETE && res->anchor[0] && strcmp(res->anchor, cs->anchor) != 0) {
		/* The system named the object (an add), or its anchor is its DN and
		 * the DN changed (a rename): re-key it and its link. The old key's
		 * rows go (the object and its marks); the DN index entry is
		 * rewritten below, naming the new anchor. */
		eng_key_agent_anchor(&e->key, agent, cs->anchor);
		loom_batch_delete(b, CF_CS, e->key.data, e->key.len);
		loom_batch_delete(b, CF_EXPORT, e->key.data, e->key.len);
		/* Only imports mark for a delta sync, and nothing is imported
		 * under a placeholder's temporary anchor. */
		if (cs->anchor[0] != '~')
			loom_batch_delete(b, CF_DELTA, e->key.data, e->key.len);
		rekeyed = true;
		if (cs->mv_id.len == 8)
			eng_link_put(e, b, cs->mv_id.data, agent, cs->anchor, true);
		loom_pb_str_set(&cs->anchor, res->anchor);
		/* Where the anchor is the DN (a policy agent's ObjectID), the
		 * provisional DN goes with the provisional anchor. */
		if (strcasecmp(r->agent->cfg->anchor, "dn") == 0 && strcmp(cs->dn, res->anchor) != 0) {
			loom_pb_str_set(&cs->dn, res->anchor);
			/* References to it can be sent now (a policy agent's object
			 * had only its provisional DN): refresh the referrers. */
			if (cs->mv_id.len == 8)
				eng_queue_referrers(e, b, cs->mv_id.data, agent, false);
		}
		if (cs->mv_id.len == 8)
			eng_link_put(e, b, cs->mv_id.data, agent, cs->anchor, false);
		/* The delete dropped the old key's delta-sync mark: an import
		 * still waiting to be synchronized keeps it under the new key. */
		if (cs->pending_import && cs->pending_import->kind != LOOM__PENDING_IMPORT__KIND__NONE)
			eng_mark(e, b, CF_DELTA, agent, cs->anchor, true);
	}
	if (cs->state == LOOM__CS_OBJECT__STATE__PLACEHOLDER)
		cs->state = cs->mv_id.len ? LOOM__CS_OBJECT__STATE__JOINED : LOOM__CS_OBJECT__STATE__NORMAL;
	if (cs->pending_export->new_dn[0]) {
		loom_pb_str_set(&cs->dn, cs->pending_export->new_dn);
	}
	merge_unconfirmed(cs, cs->pending_export);
	cs->pending_export = NULL;
	loom_pb_str_set(&cs->last_error, "");
	if (rekeyed) {
		/* The object and its DN index entry under the new anchor; the
		 * new key has no export mark to clear (the old one went above). */
		if (old_dn[0] && strcasecmp(old_dn, cs->dn) != 0) {
			eng_key_agent_dn(&e->key, agent, old_dn);
			loom_batch_delete(b, CF_CSDN, e->key.data, e->key.len);
		}
		eng_cs_put(e, b, agent, cs, NULL);
	} else {
		eng_cs_put(e, b, agent, cs, old_dn);
		eng_mark(e, b, CF_EXPORT, agent, cs->anchor, false);
	}
	free(old_dn);
	loom__cs_object__free_unpacked(cs, NULL);
}

void eng_export_results(engine_t *e, Loom__Envelope *env)
{
	const char *err;
	Loom__ExportResults *rs = (Loom__ExportResults *)loom_envelope_body(env, &loom__export_results__descriptor, &err);
	if (rs == NULL) {
		loom_warning("dropped malformed ExportResults from=%s: %s", env->from, err);
		return;
	}
	eng_run_t *r = e->run;
	if (r == NULL || r->phase != RUN_EXPORT || rs->run_id != r->id || r->ninflight == 0 ||
	    rs->seq != r->inflight[0]->seq) {
		loom_debug("ignored export results run=%llu seq=%llu from=%s", (unsigned long long)rs->run_id,
		    (unsigned long long)rs->seq, env->from);
		goto out;
	}
	r->last_heard_ms = loom_mono_ms();
	Loom__ExportBatch *b = r->inflight[0];
	r->inflight[0] = r->inflight[1];
	r->inflight[1] = NULL;
	r->ninflight--;
	if (rs->failed) {
		char *m = loom_sprintf("the agent could not apply the export: %s", rs->message);
		loom__export_batch__free_unpacked(b, NULL);
		eng_run_finish(e, "failed", m);
		free(m);
		goto out;
	}
	loom_batch_t *wb = loom_batch_new(e->store);
	for (size_t i = 0; i < b->n_changes; i++) {
		/* Results come in the order of the changes; search only if not. */
		const Loom__ExportChangeResult *res = i < rs->n_results &&
		    rs->results[i]->change_id == b->changes[i]->change_id ? rs->results[i] : NULL;
		for (size_t k = 0; k < rs->n_results && !res; k++)
			if (rs->results[k]->change_id == b->changes[i]->change_id)
				res = rs->results[k];
		if (res == NULL) {
			eng_run_error(e, b->changes[i]->anchor, b->changes[i]->dn, "export-no-result",
			    "the agent returned no result for this change; it stays pending", NULL, true);
			continue;
		}
		apply_result(e, wb, b->changes[i], res);
	}
	/* The run's progress record every ten batches (its end is always
	 * written): results are in the store either way. */
	if (rs->seq % 10 == 0)
		eng_run_save(e, wb);
	int rc = loom_store_write_ex(e->store, wb, false, &err);
	loom_batch_destroy(&wb);
	loom__export_batch__free_unpacked(b, NULL);
	if (rc < 0) {
		eng_run_finish(e, "failed", err);
		goto out;
	}
	if (eng_run_over_limit(e)) {
		eng_run_finish(e, "stopped-error-limit", NULL);
		goto out;
	}
	send_next(e);
	if (e->run == r && r->ninflight == 0 && r->export_done)
		eng_run_finish(e, "success", NULL);
out:
	loom__export_results__free_unpacked(rs, NULL);
}
