/* engine_refs.c - reference attributes (manager, member, ...): the store
 * side of resolving them through the metaverse.
 *
 * In a connector space a reference value names another object of the same
 * system, by DN (or by anchor where no object has that DN: an HR file's
 * manager column holds an employee number). In the metaverse it is the
 * referenced object's id, 16 hex digits. Inbound flows translate the first
 * into the second through the referenced connector's link; outbound flows
 * translate back through the referenced object's connector in the target
 * system (engine_sync.c).
 *
 * Both translations can miss: the referenced object is not joined yet, or
 * has no connector in the target yet. Four families make such references
 * come right later, each written in the batch of the object that caused it:
 *
 *   mv_ref      target id, source id, lower(attr) -> ""
 *               who references a metaverse object (kept by mv_set)
 *   unresolved  agent \0 lower(name) \0 referrer anchor -> ""
 *               a connector-space reference waiting for its object to join
 *   resync      agent \0 anchor -> ""
 *               connectors to synchronize again (whole) when their agent's
 *               current or next sync run ends
 *   refresh     mv id, agent -> ""
 *               metaverse objects whose outbound flows to agent (all when
 *               empty) must be recomputed (whole) at the end of the current
 *               or next sync run
 *
 * A connector joining (or projecting) wakes the unresolved references that
 * name its DN or anchor; a metaverse object gaining a connector, or one of
 * its connectors being renamed or deleted, queues the objects that
 * reference it for a refresh. Queues are durable: a crash before a sync
 * run's end leaves them for the next one.
 */
#include "engine.h"
#include "loom_alloc.h"
#include "loom_log.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool eng_mvid_parse(const char *hex, uint8_t id[8])
{
	if (hex == NULL || strlen(hex) != 16)
		return false;
	for (int i = 0; i < 16; i++) {
		int c = tolower((unsigned char)hex[i]), v;
		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else
			return false;
		if (i % 2 == 0)
			id[i / 2] = (uint8_t)(v << 4);
		else
			id[i / 2] |= (uint8_t)v;
	}
	return true;
}

static void mvref_key(loom_buf_t *k, const uint8_t *target, const uint8_t *source, const char *attr)
{
	loom_buf_reset(k);
	loom_buf_add(k, target, 8);
	loom_buf_add(k, source, 8);
	size_t start = k->len;
	loom_buf_adds(k, attr);
	for (size_t i = start; i < k->len; i++)
		k->data[i] = (char)tolower((unsigned char)k->data[i]);
}

/* Whether a family may hold keys: looked at once, then kept up to date by
 * the puts (a deployment without references never pays for the look-ups). */
static bool family_maybe(engine_t *e, int cf, int *state)
{
	if (*state == 0) {
		loom_iter_t *it = loom_iter_new_ex(e->store, cf, false);
		loom_iter_seek_first(it);
		const char *err;
		*state = loom_iter_valid(it) || loom_iter_status(it, &err) < 0 ? 2 : 1;
		loom_iter_destroy(&it);
	}
	return *state == 2;
}

void eng_mvref_put(engine_t *e, loom_batch_t *b, const uint8_t *target, const uint8_t *source, const char *attr,
    bool del)
{
	if (!del)
		e->mvref_state = 2;
	mvref_key(&e->key, target, source, attr);
	if (del)
		loom_batch_delete(b, CF_MVREF, e->key.data, e->key.len);
	else
		loom_batch_put(b, CF_MVREF, e->key.data, e->key.len, "", 0);
}

bool eng_mvref_has(engine_t *e, const uint8_t *target, const uint8_t *source, const char *attr)
{
	if (!family_maybe(e, CF_MVREF, &e->mvref_state))
		return false;
	loom_buf_t k = LOOM_BUF_INIT;
	mvref_key(&k, target, source, attr);
	void *v = NULL;
	size_t len;
	const char *err = NULL;
	int rc = loom_store_get(e->store, CF_MVREF, k.data, k.len, &v, &len, &err);
	loom_buf_release(&k);
	free(v);
	if (rc < 0)
		eng_read_failed(e, err);
	return rc == 1;
}

static bool has_refs(const Loom__MvAttr *a)
{
	return a && a->n_values && a->values[0]->v_case == LOOM__VALUE__V_REF;
}

void eng_mvref_update(engine_t *e, loom_batch_t *b, const uint8_t *id, const char *attr, const Loom__MvAttr *before,
    const Loom__MvAttr *after)
{
	if (!has_refs(before) && !has_refs(after))
		return;
	loom_vset_t *keep = after ? loom_vset_new(after->values, after->n_values) : NULL;
	loom_vset_t *had = before ? loom_vset_new(before->values, before->n_values) : NULL;
	uint8_t t[8];
	for (size_t i = 0; before && i < before->n_values; i++) {
		const Loom__Value *v = before->values[i];
		if (v->v_case == LOOM__VALUE__V_REF && (keep == NULL || !loom_vset_has(keep, v)) && eng_mvid_parse(v->ref, t)) {
			eng_mvref_put(e, b, t, id, attr, true);
			if (e->uses_membership) /* its ISMEMBEROF scopes may have changed */
				eng_queue_refresh(e, b, t, NULL);
		}
	}
	for (size_t i = 0; after && i < after->n_values; i++) {
		const Loom__Value *v = after->values[i];
		if (v->v_case == LOOM__VALUE__V_REF && (had == NULL || !loom_vset_has(had, v)) && eng_mvid_parse(v->ref, t)) {
			eng_mvref_put(e, b, t, id, attr, false);
			if (e->uses_membership)
				eng_queue_refresh(e, b, t, NULL);
		}
	}
	loom_vset_free(&keep);
	loom_vset_free(&had);
}

void eng_queue_refresh(engine_t *e, loom_batch_t *b, const uint8_t *id, const char *agent)
{
	(void)e;
	loom_buf_t k = LOOM_BUF_INIT;
	loom_buf_add(&k, id, 8);
	if (agent)
		loom_buf_adds(&k, agent);
	loom_batch_put(b, CF_REFRESH, k.data, k.len, "", 0);
	loom_buf_release(&k);
}

size_t eng_queue_referrers(engine_t *e, loom_batch_t *b, const uint8_t *id, const char *agent, bool drop)
{
	size_t n = 0;
	if (!family_maybe(e, CF_MVREF, &e->mvref_state))
		return 0;
	loom_iter_t *it = loom_iter_new_ex(e->store, CF_MVREF, false);
	for (loom_iter_seek(it, id, 8); loom_iter_valid(it); loom_iter_next(it)) {
		size_t klen;
		const char *k = loom_iter_key(it, &klen);
		if (klen < 16 || memcmp(k, id, 8) != 0)
			break;
		if (memcmp(k + 8, id, 8) != 0) {
			eng_queue_refresh(e, b, (const uint8_t *)k + 8, agent);
			n++;
		}
		if (drop)
			loom_batch_delete(b, CF_MVREF, k, klen);
	}
	const char *err;
	if (loom_iter_status(it, &err) < 0)
		eng_read_failed(e, err);
	loom_iter_destroy(&it);
	return n;
}

void eng_queue_resync(engine_t *e, loom_batch_t *b, const char *agent, const char *anchor)
{
	eng_mark(e, b, CF_RESYNC, agent, anchor, true);
}

static void unres_prefix(loom_buf_t *k, const char *agent, const char *name)
{
	eng_key_agent_dn(k, agent, name);
	loom_buf_addc(k, '\0');
}

void eng_unres_put(engine_t *e, loom_batch_t *b, const char *agent, const char *name, const char *referrer)
{
	e->unres_state = 2;
	unres_prefix(&e->key, agent, name);
	loom_buf_adds(&e->key, referrer);
	loom_batch_put(b, CF_UNRES, e->key.data, e->key.len, "", 0);
}

size_t eng_unres_wake(engine_t *e, loom_batch_t *b, const char *agent, const char *name, const char *self)
{
	if (name == NULL || name[0] == '\0' || !family_maybe(e, CF_UNRES, &e->unres_state))
		return 0;
	loom_buf_t p = LOOM_BUF_INIT;
	unres_prefix(&p, agent, name);
	size_t n = 0;
	loom_iter_t *it = loom_iter_new_ex(e->store, CF_UNRES, false);
	for (loom_iter_seek(it, p.data, p.len); loom_iter_valid(it); loom_iter_next(it)) {
		size_t klen;
		const char *k = loom_iter_key(it, &klen);
		if (klen <= p.len || memcmp(k, p.data, p.len) != 0)
			break;
		char *referrer = loom_strndup(k + p.len, klen - p.len);
		loom_batch_delete(b, CF_UNRES, k, klen);
		if (strcmp(referrer, self) != 0) {
			eng_queue_resync(e, b, agent, referrer);
			n++;
		}
		free(referrer);
	}
	const char *err;
	if (loom_iter_status(it, &err) < 0)
		eng_read_failed(e, err);
	loom_iter_destroy(&it);
	loom_buf_release(&p);
	return n;
}

int eng_ref_in(engine_t *e, const char *agent, const char *name, uint8_t id[8])
{
	char *anchor = eng_csdn_get(e, agent, name);
	const char *err = NULL;
	Loom__CsObject *cs = eng_cs_get(e, agent, anchor ? anchor : name, &err);
	free(anchor);
	if (cs == NULL) {
		if (err)
			eng_read_failed(e, err);
		return 0;
	}
	int rc = 0;
	if (cs->mv_id.len == 8) {
		memcpy(id, cs->mv_id.data, 8);
		rc = 1;
	}
	loom__cs_object__free_unpacked(cs, NULL);
	return rc;
}

bool eng_dn_provisional(engine_t *e, const char *agent, const char *dn)
{
	const eng_agent_t *a = eng_agent_find(e, agent);
	return a && a->cfg->type == LOOM_AGENT_POLICY && strncmp(dn, "new:", 4) == 0;
}

char *eng_ref_out(engine_t *e, const uint8_t *id, const char *agent)
{
	char **agents, **anchors;
	size_t n = eng_links(e, id, &agents, &anchors);
	char *dn = NULL;
	for (size_t i = 0; i < n && dn == NULL; i++) {
		if (strcmp(agents[i], agent) != 0)
			continue;
		const char *err = NULL;
		Loom__CsObject *cs = eng_cs_get(e, agent, anchors[i], &err);
		if (cs == NULL && err)
			eng_read_failed(e, err);
		if (cs && cs->dn[0] && !eng_dn_provisional(e, agent, cs->dn))
			dn = loom_strdup(cs->dn);
		if (cs)
			loom__cs_object__free_unpacked(cs, NULL);
	}
	eng_strv_free(agents, n);
	eng_strv_free(anchors, n);
	return dn;
}
