/* engine_import.c - full and delta import: the agent streams what the
 * connected system holds; the engine stages it as pending imports.
 *
 * Flow control: the engine grants `import_credit` batches; the agent sends
 * at most that many ahead; each batch the engine has written is answered
 * with one more credit. Each batch is one atomic write, so a crash leaves
 * whole batches staged and a rerun stages the rest (staging is idempotent:
 * it compares with the hologram, never with the last import).
 *
 * Full import: every object seen is stamped with this run's generation; at
 * the end, objects of the agent without it (and not placeholders waiting
 * for their export) become pending deletes. That step only runs when the
 * agent said the import is complete, so a failed or cut-short import never
 * deletes anything.
 *
 * Delta import: what the agent sends is staged as is; the new watermark is
 * saved at the end. When the agent refuses the watermark (ImportBatch
 * watermark_lost: the server cannot resume from it), the run goes on as a
 * full import, with a warning in the run record (fall_back_to_full).
 *
 * Exports are confirmed here: an object with an unconfirmed export is
 * checked against what came back; a change that did not come back is the
 * run error exported-change-not-reimported.
 */
#include "engine.h"
#include "loom_alloc.h"
#include "loom_envelope.h"
#include "loom_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int send_credit(engine_t *e, uint32_t credit, bool abort_run)
{
	Loom__ImportCredit c = LOOM__IMPORT_CREDIT__INIT;
	c.run_id = e->run->id;
	c.credit = credit;
	c.abort = abort_run;
	const char *err;
	if (loom_bus_send(loom_daemon_bus(e->daemon), e->run->agent->service, &c.base, NULL, NULL, &err) < 0) {
		loom_warning("cannot send credit to agent=%s: %s", e->run->agent->service, err);
		return -1;
	}
	return 0;
}

/* Sends the ImportRequest of the run as it stands (r->delta), a full import
 * first taking the next generation. 0 or -1 with *error_r. */
static int import_request(engine_t *e, const char **error_r)
{
	eng_run_t *r = e->run;
	const loom_agentcfg_t *ac = r->agent->cfg;
	static char errbuf[256];
	Loom__ImportRequest rq = LOOM__IMPORT_REQUEST__INIT;
	rq.agent = ac->name;
	rq.run_id = r->id;
	rq.delta = r->delta;
	rq.batch_size = (uint32_t)ac->import_batch;
	rq.credit = (uint32_t)ac->import_credit;
	char *wmkey = loom_sprintf("wm:%s", ac->name);
	void *wm = NULL;
	size_t wmlen = 0;
	const char *err;
	if (r->delta && loom_store_get(e->store, CF_META, wmkey, strlen(wmkey), &wm, &wmlen, &err) > 0) {
		rq.watermark.data = wm;
		rq.watermark.len = wmlen;
	}
	free(wmkey);
	if (!r->delta) {
		char *gkey = loom_sprintf("gen:%s", ac->name);
		r->gen = eng_meta_get_u64(e, gkey) + 1;
		loom_batch_clear(e->batch);
		eng_meta_put_u64(e, e->batch, gkey, r->gen);
		free(gkey);
		if (loom_store_write_ex(e->store, e->batch, true, &err) < 0) {
			free(wm);
			snprintf(errbuf, sizeof errbuf, "cannot start import: %s", err);
			*error_r = errbuf;
			return -1;
		}
	}
	r->phase = RUN_IMPORT;
	r->next_seq = 1;
	r->outstanding = rq.credit;
	int rc = loom_bus_send(loom_daemon_bus(e->daemon), r->agent->service, &rq.base, NULL, NULL, &err);
	free(wm);
	if (rc < 0) {
		snprintf(errbuf, sizeof errbuf, "cannot reach agent '%s': %s", r->agent->service, err);
		*error_r = errbuf;
		return -1;
	}
	return 0;
}

int eng_import_begin(engine_t *e, const char **error_r)
{
	eng_run_t *r = e->run;
	if (import_request(e, error_r) < 0)
		return -1;
	r->timer = loom_loop_add_timer(loom_daemon_loop(e->daemon), 500, 0, eng_run_watch, e);
	return 0;
}

/* A delta import whose watermark the agent refused (lost, too old for the
 * server, from another server...) goes on as a full import in the same
 * run: its mark-and-sweep finds what was deleted meanwhile, which no delta
 * could any more. What the delta staged stays staged (staging is
 * idempotent); the counters start again, so the run counts what the full
 * import sees. Once per run: a full import has no watermark to refuse. */
static void fall_back_to_full(engine_t *e, const char *why)
{
	eng_run_t *r = e->run;
	char *w = loom_sprintf("delta import fell back to a full import: %s", why);
	loom_warning("%s run=%llu agent=%s", w, (unsigned long long)r->id, r->agent->cfg->name);
	eng_run_reset_stats(e);
	eng_run_warning(e, w);
	free(w);
	r->fell_back = true;
	r->delta = false;
	const char *err;
	if (import_request(e, &err) < 0)
		eng_run_finish(e, "failed", err);
}

/* True when the imported attributes show the exported change was made. */
static bool change_visible(const Loom__AttrDelta *d, Loom__Attr *const *attrs, size_t n)
{
	const Loom__Attr *a = loom_attr_find(attrs, n, d->name);
	switch (d->op) {
	case LOOM__ATTR_DELTA__OP__REPLACE: {
		Loom__Attr want = LOOM__ATTR__INIT;
		want.n_values = d->n_values;
		want.values = d->values;
		return loom_attr_values_eq(a, d->n_values ? &want : NULL);
	}
	case LOOM__ATTR_DELTA__OP__ADD:
		for (size_t i = 0; i < d->n_values; i++) {
			bool found = false;
			for (size_t k = 0; a && k < a->n_values && !found; k++)
				found = loom_value_eq(a->values[k], d->values[i]);
			if (!found)
				return false;
		}
		return true;
	case LOOM__ATTR_DELTA__OP__DELETE:
		if (d->n_values == 0)
			return a == NULL || a->n_values == 0;
		for (size_t i = 0; i < d->n_values; i++)
			for (size_t k = 0; a && k < a->n_values; k++)
				if (loom_value_eq(a->values[k], d->values[i]))
					return false;
		return true;
	default:
		return true;
	}
}

/* Checks an unconfirmed export against what the import shows. Returns true
 * when a change did not come back (the object must be synchronized again so
 * its outbound flows send it anew). */
static bool confirm_export(engine_t *e, Loom__CsObject *cs, Loom__Attr *const *attrs, size_t n)
{
	Loom__PendingExport *u = cs->unconfirmed;
	if (u == NULL || u->kind == LOOM__PENDING_EXPORT__KIND__NONE)
		return false;
	const Loom__AttrDelta *missing = NULL;
	for (size_t i = 0; i < u->n_deltas && !missing; i++)
		if (!change_visible(u->deltas[i], attrs, n))
			missing = u->deltas[i];
	if (missing) {
		char *m = loom_sprintf("attribute '%s' was exported but the import shows otherwise", missing->name);
		eng_run_error(e, cs->anchor, cs->dn, "exported-change-not-reimported", m, NULL, true);
		loom_pb_str_set(&cs->last_error, "exported-change-not-reimported"); /* the next sync sends it whole */
		free(m);
	} else {
		eng_run_count(e, "export-confirmed", cs->anchor);
	}
	loom__pending_export__free_unpacked(u, NULL);
	cs->unconfirmed = NULL;
	return missing != NULL;
}

static Loom__PendingImport *pending_new(Loom__PendingImport__Kind kind, uint64_t run_id)
{
	Loom__PendingImport *p = loom_malloc(sizeof *p);
	loom__pending_import__init(p);
	p->kind = kind;
	p->run_id = run_id;
	return p;
}

static void set_pending(Loom__CsObject *cs, Loom__PendingImport *p)
{
	if (cs->pending_import)
		loom__pending_import__free_unpacked(cs->pending_import, NULL);
	cs->pending_import = p;
}

static Loom__CsObject *cs_new(const char *anchor, const char *dn, const char *type)
{
	Loom__CsObject *cs = loom_malloc(sizeof *cs);
	loom__cs_object__init(cs);
	cs->anchor = loom_strdup(anchor);
	cs->dn = loom_strdup(dn);
	cs->object_type = loom_strdup(type);
	cs->connected_at = cs->changed_at = loom_now_us();
	return cs;
}

/* Values of the agent's reference attributes are references: agents that
 * know no better send them as strings (str and ref share the oneof's
 * storage, so retagging is the whole conversion). */
static void retag(const loom_agentcfg_t *ac, const char *name, Loom__Value **v, size_t n)
{
	if (!loom_agentcfg_is_ref(ac, name))
		return;
	for (size_t i = 0; i < n; i++)
		if (v[i]->v_case == LOOM__VALUE__V_STR)
			v[i]->v_case = LOOM__VALUE__V_REF;
}

static void mark_refs(const loom_agentcfg_t *ac, Loom__ImportObject *o)
{
	if (ac->references.n == 0)
		return;
	for (size_t i = 0; i < o->n_attrs; i++)
		retag(ac, o->attrs[i]->name, o->attrs[i]->values, o->attrs[i]->n_values);
	for (size_t i = 0; i < o->n_deltas; i++)
		retag(ac, o->deltas[i]->name, o->deltas[i]->values, o->deltas[i]->n_values);
}

/* An entry an export added without learning its anchor (the agent's
 * export_anchor: import, or a read-back that failed) is in the connector
 * space under a temporary anchor ("~CHANGE_ID") and its DN: an import that
 * shows an unknown anchor at that DN names it, as FIM's confirming import
 * does. Re-keys that object to anchor in b and returns it (NULL: none such,
 * or a read error, reported). A placeholder whose add was not applied yet is
 * not taken: its export still has to add the entry. */
static Loom__CsObject *adopt_by_dn(engine_t *e, loom_batch_t *b, const char *agent, const char *anchor, const char *dn,
    bool *ret_failed)
{
	*ret_failed = false;
	char *tmp = eng_csdn_get(e, agent, dn);
	char *rerr = eng_read_error_take(e);
	const char *err = NULL;
	Loom__CsObject *cs = NULL;
	if (rerr == NULL && tmp && tmp[0] == '~')
		cs = eng_cs_get(e, agent, tmp, &err);
	free(tmp);
	if (rerr || err) {
		eng_run_error(e, anchor, dn, "store-error", rerr ? rerr : err, NULL, true);
		free(rerr);
		*ret_failed = true;
		return NULL;
	}
	if (cs == NULL || cs->state == LOOM__CS_OBJECT__STATE__PLACEHOLDER) {
		if (cs)
			loom__cs_object__free_unpacked(cs, NULL);
		return NULL;
	}
	char kind = eng_export_kind(cs);
	eng_key_agent_anchor(&e->key, agent, cs->anchor);
	loom_batch_delete(b, CF_CS, e->key.data, e->key.len);
	loom_batch_delete(b, CF_DELTA, e->key.data, e->key.len);
	if (kind)
		loom_batch_delete(b, CF_EXPORT, e->key.data, e->key.len);
	if (cs->mv_id.len == 8)
		eng_link_put(e, b, cs->mv_id.data, agent, cs->anchor, true);
	loom_pb_str_set(&cs->anchor, anchor);
	if (cs->mv_id.len == 8)
		eng_link_put(e, b, cs->mv_id.data, agent, cs->anchor, false);
	if (kind)
		eng_export_mark(e, b, agent, cs->anchor, kind);
	/* The DN index names the new anchor (the caller writes the object
	 * with its DN unchanged, which leaves the index alone). */
	eng_key_agent_dn(&e->key, agent, cs->dn);
	loom_batch_put(b, CF_CSDN, e->key.data, e->key.len, cs->anchor, strlen(cs->anchor));
	eng_run_count(e, "anchors-learned", cs->anchor);
	return cs;
}

void eng_import_stage(engine_t *e, loom_batch_t *b, const Loom__ImportObject *o)
{
	mark_refs(e->run->agent->cfg, (Loom__ImportObject *)o);
	eng_run_t *r = e->run;
	const char *agent = r->agent->cfg->name;
	const char *err = NULL;
	char *by_dn = NULL;
	if (o->anchor[0] == '\0' && o->dn[0] && o->change != LOOM__IMPORT_OBJECT__CHANGE__FULL) {
		/* A change file names objects by DN: the connector space knows their anchor. */
		by_dn = eng_csdn_get(e, agent, o->dn);
		char *rerr = eng_read_error_take(e);
		if (rerr) {
			eng_run_error(e, NULL, o->dn, "store-error", rerr, NULL, true);
			free(rerr);
			return;
		}
		if (by_dn == NULL) {
			eng_run_error(e, NULL, o->dn, "update-of-unknown-object",
			    "a change names a DN the connector space does not hold: run a full import", NULL, false);
			return;
		}
		/* o may live in an arena (eng_import_batch): a shallow copy names
		 * the anchor, kept until the next call (o's strings are borrowed). */
		static char *kept;
		static Loom__ImportObject named;
		free(kept);
		kept = by_dn;
		named = *o;
		named.anchor = by_dn;
		o = &named;
	}
	if (o->anchor[0] == '\0') {
		eng_run_error(e, NULL, o->dn, "missing-anchor", "the object has no anchor value", NULL, false);
		return;
	}
	Loom__CsObject *cs = eng_cs_get(e, agent, o->anchor, &err);
	if (cs == NULL && err) {
		eng_run_error(e, o->anchor, o->dn, "store-error", err, NULL, true);
		return;
	}
	const char *type = o->object_type[0] ? o->object_type
	    : r->agent->cfg->object_type ? r->agent->cfg->object_type : "person";
	bool whole = o->change == LOOM__IMPORT_OBJECT__CHANGE__FULL || o->change == LOOM__IMPORT_OBJECT__CHANGE__ADD ||
	    o->change == LOOM__IMPORT_OBJECT__CHANGE__REPLACE;
	if (cs == NULL && whole && o->dn[0]) {
		bool failed;
		cs = adopt_by_dn(e, b, agent, o->anchor, o->dn, &failed);
		if (failed)
			return;
	}
	r->objects++;

	if (o->change == LOOM__IMPORT_OBJECT__CHANGE__DELETE) {
		if (cs == NULL) {
			eng_run_count(e, "deletes-of-unknown", o->anchor);
			return;
		}
		if (cs->pending_import == NULL || cs->pending_import->kind != LOOM__PENDING_IMPORT__KIND__DELETE) {
			set_pending(cs, pending_new(LOOM__PENDING_IMPORT__KIND__DELETE, r->id));
			eng_run_count(e, "deletes", o->anchor);
			cs->changed_at = loom_now_us();
			eng_cs_put(e, b, agent, cs, cs->dn);
			eng_mark(e, b, CF_DELTA, agent, cs->anchor, true);
		}
		loom__cs_object__free_unpacked(cs, NULL);
		return;
	}

	if (cs == NULL) {
		if (!whole) {
			eng_run_error(e, o->anchor, o->dn, "update-of-unknown-object",
			    "a delta changes an object the connector space does not hold: run a full import", NULL, false);
			return;
		}
		cs = cs_new(o->anchor, o->dn[0] ? o->dn : o->anchor, type);
		Loom__PendingImport *p = pending_new(LOOM__PENDING_IMPORT__KIND__ADD, r->id);
		loom_pb_str_set(&p->object_type, type);
		Loom__Attr **none = NULL;
		size_t nnone = 0;
		loom_attrs_diff(none, nnone, o->attrs, o->n_attrs, &p->deltas, &p->n_deltas);
		set_pending(cs, p);
		cs->seen_gen = r->gen;
		eng_run_count(e, "adds", o->anchor);
		eng_cs_put(e, b, agent, cs, NULL);
		eng_mark(e, b, CF_DELTA, agent, cs->anchor, true);
		loom__cs_object__free_unpacked(cs, NULL);
		return;
	}

	/* The object as the connected system has it now. */
	Loom__Attr **now = NULL;
	size_t nnow = 0;
	if (whole) {
		for (size_t i = 0; i < o->n_attrs; i++)
			loom_attrs_set(&now, &nnow, o->attrs[i]->name, o->attrs[i]->values, o->attrs[i]->n_values);
	} else {
		for (size_t i = 0; i < cs->n_attrs; i++)
			loom_attrs_set(&now, &nnow, cs->attrs[i]->name, cs->attrs[i]->values, cs->attrs[i]->n_values);
		if (cs->pending_import && cs->pending_import->kind != LOOM__PENDING_IMPORT__KIND__DELETE)
			loom_attrs_apply(&now, &nnow, cs->pending_import->deltas, cs->pending_import->n_deltas);
		loom_attrs_apply(&now, &nnow, o->deltas, o->n_deltas);
	}
	bool lost = confirm_export(e, cs, now, nnow);
	bool was_delete = cs->pending_import && cs->pending_import->kind == LOOM__PENDING_IMPORT__KIND__DELETE;
	bool never_synced = cs->pending_import && cs->pending_import->kind == LOOM__PENDING_IMPORT__KIND__ADD;
	Loom__AttrDelta **d;
	size_t nd;
	loom_attrs_diff(cs->attrs, cs->n_attrs, now, nnow, &d, &nd);
	const char *newdn = o->new_dn[0] ? o->new_dn : o->dn;
	bool rename = newdn[0] && strcasecmp(newdn, cs->dn) != 0;
	bool changed = false;
	if (nd || rename || never_synced) {
		Loom__PendingImport *p = pending_new(never_synced ? LOOM__PENDING_IMPORT__KIND__ADD
		    : was_delete ? LOOM__PENDING_IMPORT__KIND__DELETE_ADD : LOOM__PENDING_IMPORT__KIND__UPDATE, r->id);
		p->deltas = d;
		p->n_deltas = nd;
		if (rename) {
			loom_pb_str_set(&p->new_dn, newdn);
		}
		bool same = cs->pending_import && cs->pending_import->kind == p->kind &&
		    cs->pending_import->n_deltas == nd && !rename && !was_delete;
		set_pending(cs, p);
		eng_run_count(e, never_synced ? "adds" : was_delete ? "delete-adds" : rename ? "renames" : "updates",
		    o->anchor);
		changed = !same;
	} else {
		loom_deltas_free(d, nd);
		if (cs->pending_import && cs->pending_import->kind != LOOM__PENDING_IMPORT__KIND__NONE) {
			set_pending(cs, NULL); /* back to what was synchronized: nothing to do */
			changed = true;
		}
		eng_run_count(e, "unchanged", NULL);
	}
	if (r->gen)
		cs->seen_gen = r->gen;
	if (changed)
		cs->changed_at = loom_now_us();
	eng_cs_put(e, b, agent, cs, cs->dn);
	if (changed || lost)
		eng_mark(e, b, CF_DELTA, agent, cs->anchor, true);
	loom_attrs_free(now, nnow);
	loom__cs_object__free_unpacked(cs, NULL);
}

/* Saves the watermark and ends the import successfully. */
static void import_done(engine_t *e)
{
	eng_run_t *r = e->run;
	const char *err;
	char *wmkey = loom_sprintf("wm:%s", r->agent->cfg->name);
	loom_batch_clear(e->batch);
	loom_batch_put(e->batch, CF_META, wmkey, strlen(wmkey), r->watermark ? (const char *)r->watermark : "",
	    r->watermark_len);
	free(wmkey);
	if (loom_store_write_ex(e->store, e->batch, false, &err) < 0)
		eng_run_finish(e, "failed", err);
	else
		eng_run_finish(e, "success", NULL);
}

#define MARK_SLICE 2000

/* A protobuf varint at *p (below end); -1 when malformed. */
static int wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*ret = v;
			return 0;
		}
	}
	return -1;
}

/* What the end of a full import needs of a stored CsObject (seen_gen,
 * state, the pending import's kind), read from its wire form without
 * unpacking it: the unpack of every object of the agent (attributes and
 * all) was a tenth of a full import's engine time, nearly all of it
 * malloc and free. Returns -1 when the bytes are not what this reader
 * understands (the caller unpacks them as before). */
static int cs_mark_fields(const uint8_t *p, size_t len, uint64_t *ret_gen, uint64_t *ret_state, uint64_t *ret_pi_kind)
{
	const uint8_t *end = p + len;
	uint64_t gen = 0, state = 0, kind = 0;
	while (p < end) {
		uint64_t tag, v;
		if (wire_varint(&p, end, &tag) < 0)
			return -1;
		switch (tag & 7) {
		case 0: /* varint */
			if (wire_varint(&p, end, &v) < 0)
				return -1;
			if (tag >> 3 == 5)
				state = v;
			else if (tag >> 3 == 10)
				gen = v;
			break;
		case 1: /* 64-bit */
			if ((size_t)(end - p) < 8)
				return -1;
			p += 8;
			break;
		case 5: /* 32-bit */
			if ((size_t)(end - p) < 4)
				return -1;
			p += 4;
			break;
		case 2: { /* length-delimited */
			if (wire_varint(&p, end, &v) < 0 || v > (uint64_t)(end - p))
				return -1;
			if (tag >> 3 == 7) {
				/* PendingImport: its kind is field 1; the last one wins */
				const uint8_t *q = p, *qend = p + v;
				kind = 0;
				while (q < qend) {
					uint64_t t2, v2;
					if (wire_varint(&q, qend, &t2) < 0)
						return -1;
					if ((t2 & 7) == 0) {
						if (wire_varint(&q, qend, &v2) < 0)
							return -1;
						if (t2 >> 3 == 1)
							kind = v2;
					} else if ((t2 & 7) == 2) {
						if (wire_varint(&q, qend, &v2) < 0 || v2 > (uint64_t)(qend - q))
							return -1;
						q += v2;
					} else if ((t2 & 7) == 1 && qend - q >= 8) {
						q += 8;
					} else if ((t2 & 7) == 5 && qend - q >= 4) {
						q += 4;
					} else {
						return -1;
					}
				}
			}
			p += v;
			break;
		}
		default:
			return -1;
		}
	}
	*ret_gen = gen;
	*ret_state = state;
	*ret_pi_kind = kind;
	return 0;
}

/* End of a complete full import: what was not seen is gone. Runs in slices
 * from the loop, so the engine keeps answering while it walks a large
 * connector space. */
static int on_mark_slice(loom_loop_t *loop, void *arg)
{
	(void)loop;
	engine_t *e = arg;
	eng_run_t *r = e->run;
	if (r == NULL || r->phase != RUN_MARK)
		return 0;
	const char *agent = r->agent->cfg->name;
	loom_batch_t *b = e->batch;
	loom_batch_clear(b);
	size_t seen = 0;
	for (; loom_iter_valid(r->iter) && seen < MARK_SLICE; loom_iter_next(r->iter), seen++) {
		size_t klen, vlen;
		const char *k = loom_iter_key(r->iter, &klen);
		if (klen < r->prefix_len || memcmp(k, r->prefix, r->prefix_len) != 0)
			break;
		const void *v = loom_iter_value(r->iter, &vlen);
		uint64_t gen, state, kind;
		if (cs_mark_fields(v, vlen, &gen, &state, &kind) == 0 &&
		    (gen == r->gen || state == LOOM__CS_OBJECT__STATE__PLACEHOLDER || kind == LOOM__PENDING_IMPORT__KIND__DELETE))
			continue; /* seen (or exempt): nothing to write, no need to unpack it */
		Loom__CsObject *cs = loom__cs_object__unpack(NULL, vlen, v);
		if (cs == NULL)
			continue;
		bool gone = cs->seen_gen != r->gen && cs->state != LOOM__CS_OBJECT__STATE__PLACEHOLDER &&
		    !(cs->pending_import && cs->pending_import->kind == LOOM__PENDING_IMPORT__KIND__DELETE);
		if (gone) {
			set_pending(cs, pending_new(LOOM__PENDING_IMPORT__KIND__DELETE, r->id));
			cs->changed_at = loom_now_us();
			eng_cs_put(e, b, agent, cs, cs->dn);
			eng_mark(e, b, CF_DELTA, agent, cs->anchor, true);
			eng_run_count(e, "deletes", cs->anchor);
		}
		loom__cs_object__free_unpacked(cs, NULL);
	}
	const char *err;
	if (loom_batch_count(b) && loom_store_write_ex(e->store, b, false, &err) < 0) {
		char *m = loom_sprintf("cannot mark deleted objects: %s", err);
		eng_run_finish(e, "failed", m);
		free(m);
		return 0;
	}
	bool end = !loom_iter_valid(r->iter);
	if (!end) {
		size_t klen;
		const char *k = loom_iter_key(r->iter, &klen);
		end = klen < r->prefix_len || memcmp(k, r->prefix, r->prefix_len) != 0;
	}
	if (!end)
		return 0;
	if (loom_iter_status(r->iter, &err) < 0) {
		char *m = loom_sprintf("cannot mark deleted objects: %s", err);
		eng_run_finish(e, "failed", m);
		free(m);
		return 0;
	}
	import_done(e);
	return 0;
}

static void mark_begin(engine_t *e)
{
	eng_run_t *r = e->run;
	r->phase = RUN_MARK;
	loom_buf_t p = LOOM_BUF_INIT;
	loom_buf_adds(&p, r->agent->cfg->name);
	loom_buf_addc(&p, '\0');
	r->prefix_len = p.len;
	r->prefix = loom_buf_steal(&p);
	r->iter = loom_iter_new(e->store, CF_CS);
	loom_iter_seek(r->iter, r->prefix, r->prefix_len);
	loom_loop_t *loop = loom_daemon_loop(e->daemon);
	if (r->timer)
		loom_loop_cancel_timer(loop, r->timer);
	r->timer = loom_loop_add_timer(loop, 0, 0, on_mark_slice, e);
}

void eng_import_batch(engine_t *e, Loom__Envelope *env)
{
	const char *err;
	/* Decoded in an arena and dropped whole (docs/sync.md "Throughput"). */
	loom_pbarena_t arena;
	loom_pbarena_init(&arena, env->body.len);
	Loom__ImportBatch *ib = (Loom__ImportBatch *)loom_envelope_body_in(env, &loom__import_batch__descriptor, &arena, &err);
	if (ib == NULL) {
		loom_warning("dropped malformed ImportBatch from=%s: %s", env->from, err);
		loom_pbarena_release(&arena);
		return;
	}
	if (ib->live) {
		/* Live batches may be held past this call: decoded the usual way. */
		loom_pbarena_release(&arena);
		ib = (Loom__ImportBatch *)loom_envelope_body(env, &loom__import_batch__descriptor, &err);
		if (ib == NULL) {
			loom_warning("dropped malformed ImportBatch from=%s: %s", env->from, err);
			return;
		}
		eng_live_batch(e, env, ib);
		return;
	}
	eng_run_t *r = e->run;
	if (r == NULL || r->phase != RUN_IMPORT || ib->run_id != r->id) {
		loom_debug("ignored import batch for run=%llu from=%s (not the run in progress)",
		    (unsigned long long)ib->run_id, env->from);
		goto out;
	}
	r->last_heard_ms = loom_mono_ms();
	if (ib->seq != r->next_seq) {
		loom_warning("ignored import batch out of order run=%llu seq=%llu want=%llu", (unsigned long long)r->id,
		    (unsigned long long)ib->seq, (unsigned long long)r->next_seq);
		goto out;
	}
	r->next_seq++;
	if (r->outstanding)
		r->outstanding--;
	for (size_t i = 0; i < ib->n_errors; i++) {
		const Loom__RunObjectError *er = ib->errors[i];
		eng_run_error(e, er->anchor, er->dn, er->code, er->message, er->where, er->retryable);
	}
	loom_batch_clear(e->batch);
	for (size_t i = 0; i < ib->n_objects; i++)
		eng_import_stage(e, e->batch, ib->objects[i]);
	if (r->objects % 10000 < ib->n_objects)
		eng_run_save(e, e->batch);
	if (loom_store_write_ex(e->store, e->batch, false, &err) < 0) {
		char *m = loom_sprintf("cannot write to the engine store: %s", err);
		send_credit(e, 0, true);
		eng_run_finish(e, "failed", m);
		free(m);
		goto out;
	}
	if (eng_run_over_limit(e)) {
		send_credit(e, 0, true);
		eng_run_finish(e, "stopped-error-limit", NULL);
		goto out;
	}
	if (!ib->last) {
		r->outstanding++;
		send_credit(e, 1, false);
		goto out;
	}
	if (ib->failed) {
		eng_run_finish(e, "failed", ib->message[0] ? ib->message : "the agent could not complete the import");
		goto out;
	}
	if (ib->watermark_lost) {
		if (r->delta && !r->fell_back)
			fall_back_to_full(e, ib->message[0] ? ib->message : "the agent refused the watermark");
		else
			eng_run_finish(e, "failed", "the agent refused the watermark of a full import");
		goto out;
	}
	r->watermark_len = ib->watermark.len;
	r->watermark = ib->watermark.len ? loom_memdup(ib->watermark.data, ib->watermark.len) : NULL;
	if (r->delta)
		import_done(e);
	else
		mark_begin(e);
out:
	loom_pbarena_release(&arena);
}
