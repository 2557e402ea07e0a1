/* engine_obj.c - attribute values, attribute lists and deltas, and the
 * engine store's keys and objects.
 *
 * Ownership: objects come from protobuf-c unpack and are freed with
 * protobuf_c_message_free_unpacked(), which frees every string, array and
 * sub-message with free(). So every pointer put into such an object here is
 * heap memory owned by the object, never a literal or a borrowed pointer.
 */
#include "engine.h"
#include "loom_alloc.h"
#include "loom_log.h"
#include "loom_envelope.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *eng_state_name(Loom__CsObject__State s)
{
	switch (s) {
	case LOOM__CS_OBJECT__STATE__NORMAL: return "normal-disconnector";
	case LOOM__CS_OBJECT__STATE__FILTERED: return "filtered-disconnector";
	case LOOM__CS_OBJECT__STATE__EXPLICIT_DISCONNECTOR: return "explicit-disconnector";
	case LOOM__CS_OBJECT__STATE__JOINED: return "joined";
	case LOOM__CS_OBJECT__STATE__EXPLICIT_CONNECTOR: return "explicit-connector";
	case LOOM__CS_OBJECT__STATE__PLACEHOLDER: return "placeholder";
	default: return "?";
	}
}

/* ---- keys and store access ------------------------------------------------ */

void eng_key_agent_anchor(loom_buf_t *k, const char *agent, const char *anchor)
{
	loom_buf_reset(k);
	loom_buf_adds(k, agent);
	loom_buf_addc(k, '\0');
	loom_buf_adds(k, anchor);
}

void eng_key_agent_dn(loom_buf_t *k, const char *agent, const char *dn)
{
	loom_buf_reset(k);
	loom_buf_adds(k, agent);
	loom_buf_addc(k, '\0');
	size_t start = k->len;
	loom_buf_adds(k, dn);
	for (size_t i = start; i < k->len; i++)
		k->data[i] = (char)tolower((unsigned char)k->data[i]);
}

static void pack_into(loom_buf_t *v, const ProtobufCMessage *m)
{
	loom_buf_reset(v);
	size_t len = protobuf_c_message_get_packed_size(m);
	loom_buf_reserve(v, len);
	protobuf_c_message_pack(m, (uint8_t *)v->data);
	v->len = len;
}

Loom__CsObject *eng_cs_get(engine_t *e, const char *agent, const char *anchor, const char **error_r)
{
	eng_key_agent_anchor(&e->key, agent, anchor);
	void *val;
	size_t len;
	int rc = loom_store_get(e->store, CF_CS, e->key.data, e->key.len, &val, &len, error_r);
	if (rc <= 0) {
		if (rc == 0)
			*error_r = NULL;
		return NULL;
	}
	Loom__CsObject *cs = loom__cs_object__unpack(NULL, len, val);
	free(val);
	if (cs == NULL)
		*error_r = "stored connector-space object does not decode";
	return cs;
}

void eng_cs_put(engine_t *e, loom_batch_t *b, const char *agent, const Loom__CsObject *cs, const char *old_dn)
{
	eng_key_agent_anchor(&e->key, agent, cs->anchor);
	pack_into(&e->val, &cs->base);
	loom_batch_put(b, CF_CS, e->key.data, e->key.len, e->val.data, e->val.len);
	if (old_dn && strcasecmp(old_dn, cs->dn) == 0)
		return; /* the DN index already says so */
	if (old_dn && old_dn[0]) {
		eng_key_agent_dn(&e->key, agent, old_dn);
		loom_batch_delete(b, CF_CSDN, e->key.data, e->key.len);
	}
	if (cs->dn[0]) {
		eng_key_agent_dn(&e->key, agent, cs->dn);
		loom_batch_put(b, CF_CSDN, e->key.data, e->key.len, cs->anchor, strlen(cs->anchor));
	}
	/* A connector renamed: references to its object carry the new DN. */
	if (old_dn && old_dn[0] && cs->mv_id.len == 8)
		eng_queue_referrers(e, b, cs->mv_id.data, agent, false);
}

void eng_cs_delete(engine_t *e, loom_batch_t *b, const char *agent, const Loom__CsObject *cs)
{
	eng_key_agent_anchor(&e->key, agent, cs->anchor);
	loom_batch_delete(b, CF_CS, e->key.data, e->key.len);
	loom_batch_delete(b, CF_EXPORT, e->key.data, e->key.len);
	loom_batch_delete(b, CF_DELTA, e->key.data, e->key.len);
	if (cs->dn[0]) {
		eng_key_agent_dn(&e->key, agent, cs->dn);
		loom_batch_delete(b, CF_CSDN, e->key.data, e->key.len);
	}
}

char *eng_csdn_get(engine_t *e, const char *agent, const char *dn)
{
	eng_key_agent_dn(&e->key, agent, dn);
	void *val;
	size_t len;
	const char *err = NULL;
	int rc = loom_store_get(e->store, CF_CSDN, e->key.data, e->key.len, &val, &len, &err);
	if (rc < 0)
		eng_read_failed(e, err);
	if (rc <= 0)
		return NULL;
	return val; /* NUL-terminated by loom_store_get */
}

void eng_read_failed(engine_t *e, const char *err)
{
	if (e->read_error == NULL)
		e->read_error = loom_strdup(err ? err : "store read failed");
}

char *eng_read_error_take(engine_t *e)
{
	char *err = e->read_error;
	e->read_error = NULL;
	return err;
}

void eng_mvid_hex(char out[17], const uint8_t *id)
{
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 8; i++) {
		out[2 * i] = hex[id[i] >> 4];
		out[2 * i + 1] = hex[id[i] & 15];
	}
	out[16] = '\0';
}

Loom__MvObject *eng_mv_get(engine_t *e, const uint8_t *id, size_t idlen, const char **error_r)
{
	void *val;
	size_t len;
	int rc = loom_store_get(e->store, CF_MV, id, idlen, &val, &len, error_r);
	if (rc <= 0) {
		if (rc == 0)
			*error_r = NULL;
		return NULL;
	}
	Loom__MvObject *mv = loom__mv_object__unpack(NULL, len, val);
	free(val);
	if (mv == NULL)
		*error_r = "stored metaverse object does not decode";
	return mv;
}

void eng_mv_put(engine_t *e, loom_batch_t *b, const Loom__MvObject *mv)
{
	pack_into(&e->val, &mv->base);
	loom_batch_put(b, CF_MV, mv->id.data, mv->id.len, e->val.data, e->val.len);
}

void eng_mv_delete(engine_t *e, loom_batch_t *b, const Loom__MvObject *mv)
{
	loom_batch_delete(b, CF_MV, mv->id.data, mv->id.len);
	for (size_t i = 0; i < mv->n_attrs; i++) {
		eng_mvidx_update(e, b, mv->object_type, mv->id.data, mv->attrs[i]->name, mv->attrs[i], NULL);
		eng_mvref_update(e, b, mv->id.data, mv->attrs[i]->name, mv->attrs[i], NULL);
	}
	/* Objects referencing it lose it: their outbound flows are recomputed. */
	eng_queue_referrers(e, b, mv->id.data, NULL, true);
}

void eng_mvidx_key(loom_buf_t *k, const char *mv_type, const char *attr, const Loom__Value *v, const uint8_t *id)
{
	loom_buf_reset(k);
	loom_buf_adds(k, mv_type);
	loom_buf_addc(k, '\0');
	size_t start = k->len;
	loom_buf_adds(k, attr);
	for (size_t i = start; i < k->len; i++)
		k->data[i] = (char)tolower((unsigned char)k->data[i]);
	loom_buf_addc(k, '\0');
	loom_value_key(k, v);
	loom_buf_addc(k, '\0');
	if (id)
		loom_buf_add(k, id, 8);
}

void eng_mvidx_update(engine_t *e, loom_batch_t *b, const char *mv_type, const uint8_t *id,
    const char *attr, const Loom__MvAttr *before, const Loom__MvAttr *after)
{
	if (!eng_indexed(e, mv_type, attr))
		return;
	loom_buf_t k = LOOM_BUF_INIT;
	for (size_t i = 0; before && i < before->n_values; i++) {
		bool kept = false;
		for (size_t j = 0; after && j < after->n_values && !kept; j++)
			kept = loom_value_eq(before->values[i], after->values[j]);
		if (!kept) {
			eng_mvidx_key(&k, mv_type, attr, before->values[i], id);
			loom_batch_delete(b, CF_MVIDX, k.data, k.len);
		}
	}
	for (size_t j = 0; after && j < after->n_values; j++) {
		eng_mvidx_key(&k, mv_type, attr, after->values[j], id);
		loom_batch_put(b, CF_MVIDX, k.data, k.len, "", 0);
	}
	loom_buf_release(&k);
}

void eng_link_put(engine_t *e, loom_batch_t *b, const uint8_t *id, const char *agent, const char *anchor, bool del)
{
	loom_buf_reset(&e->key);
	loom_buf_add(&e->key, id, 8);
	loom_buf_adds(&e->key, agent);
	loom_buf_addc(&e->key, '\0');
	loom_buf_adds(&e->key, anchor);
	if (del)
		loom_batch_delete(b, CF_LINK, e->key.data, e->key.len);
	else
		loom_batch_put(b, CF_LINK, e->key.data, e->key.len, "", 0);
}

size_t eng_links(engine_t *e, const uint8_t *id, char ***ret_agents, char ***ret_anchors)
{
	char **agents = NULL, **anchors = NULL;
	size_t n = 0;
	loom_iter_t *it = loom_iter_new_ex(e->store, CF_LINK, false);
	for (loom_iter_seek(it, id, 8); loom_iter_valid(it); loom_iter_next(it)) {
		size_t klen;
		const char *k = loom_iter_key(it, &klen);
		if (klen < 8 || memcmp(k, id, 8) != 0)
			break;
		const char *agent = k + 8;
		size_t alen = strnlen(agent, klen - 8);
		if (8 + alen >= klen)
			continue;
		agents = loom_realloc(agents, (n + 1) * sizeof *agents);
		anchors = loom_realloc(anchors, (n + 1) * sizeof *anchors);
		agents[n] = loom_strndup(agent, alen);
		anchors[n] = loom_strndup(agent + alen + 1, klen - 8 - alen - 1);
		n++;
	}
	const char *err;
	if (loom_iter_status(it, &err) < 0)
		eng_read_failed(e, err);
	loom_iter_destroy(&it);
	*ret_agents = agents;
	*ret_anchors = anchors;
	return n;
}

void eng_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void eng_mark(engine_t *e, loom_batch_t *b, int cf, const char *agent, const char *anchor, bool on)
{
	eng_key_agent_anchor(&e->key, agent, anchor);
	if (on)
		loom_batch_put(b, cf, e->key.data, e->key.len, "", 0);
	else
		loom_batch_delete(b, cf, e->key.data, e->key.len);
}

char eng_export_kind(const Loom__CsObject *cs)
{
	if (cs->pending_export == NULL || cs->pending_export->kind == LOOM__PENDING_EXPORT__KIND__NONE)
		return 0;
	return cs->pending_export->kind == LOOM__PENDING_EXPORT__KIND__DELETE ? EXPORT_MARK_DELETE : EXPORT_MARK_OTHER;
}

void eng_export_mark(engine_t *e, loom_batch_t *b, const char *agent, const char *anchor, char kind)
{
	eng_key_agent_anchor(&e->key, agent, anchor);
	if (kind)
		loom_batch_put(b, CF_EXPORT, e->key.data, e->key.len, &kind, 1);
	else
		loom_batch_delete(b, CF_EXPORT, e->key.data, e->key.len);
}

uint64_t eng_meta_get_u64(engine_t *e, const char *name)
{
	void *val;
	size_t len;
	const char *err;
	if (loom_store_get(e->store, CF_META, name, strlen(name), &val, &len, &err) <= 0)
		return 0;
	uint64_t v = len == 8 ? loom_store_get_u64be(val) : 0;
	free(val);
	return v;
}

void eng_meta_put_u64(engine_t *e, loom_batch_t *b, const char *name, uint64_t v)
{
	(void)e;
	unsigned char buf[8];
	loom_store_put_u64be(buf, v);
	loom_batch_put(b, CF_META, name, strlen(name), buf, 8);
}

uint64_t eng_seq_next(engine_t *e, loom_batch_t *b, uint64_t *seq, uint64_t *lim, const char *name,
    uint64_t block)
{
	++*seq;
	if (*seq > *lim) {
		*lim = *seq + block - 1;
		if (block == 1) {
			eng_meta_put_u64(e, b, name, *lim); /* atomic with what the id names (a run record) */
		} else {
			/* A block outlives the batch that took it (an object whose sync
			 * fails or is previewed writes nothing else): record it now. */
			unsigned char v[8];
			const char *err;
			loom_store_put_u64be(v, *lim);
			if (loom_store_put(e->store, CF_META, name, strlen(name), v, 8, &err) < 0)
				loom_error("cannot record the id block of %s up to %llu: %s", name, (unsigned long long)*lim, err);
		}
	}
	return *seq;
}

static void index_key(loom_buf_t *k, const char *mv_type, const char *attr)
{
	loom_buf_reset(k);
	loom_buf_adds(k, mv_type);
	loom_buf_addc(k, '\0');
	size_t s = k->len;
	loom_buf_adds(k, attr);
	for (size_t i = s; i < k->len; i++)
		k->data[i] = (char)tolower((unsigned char)k->data[i]);
}

bool eng_indexed(engine_t *e, const char *mv_type, const char *attr)
{
	if (e->indexed == NULL)
		return true;
	loom_buf_t k = LOOM_BUF_INIT;
	index_key(&k, mv_type, attr);
	bool yes = loom_map_get(e->indexed, k.data, k.len) != NULL;
	loom_buf_release(&k);
	return yes;
}

/* The index's definition, as text: sorted "type\0attr" lines. */
static char *index_spec(engine_t *e)
{
	size_t n = loom_map_count(e->indexed), pos = 0, i = 0;
	char **v = loom_calloc(n ? n : 1, sizeof *v);
	const void *key;
	size_t klen;
	while (loom_map_next(e->indexed, &pos, &key, &klen, NULL))
		v[i++] = loom_strndup(key, klen);
	for (size_t a = 1; a < n; a++)
		for (size_t b = a; b > 0 && strcmp(v[b - 1], v[b]) > 0; b--) {
			char *t = v[b];
			v[b] = v[b - 1];
			v[b - 1] = t;
		}
	loom_buf_t out = LOOM_BUF_INIT;
	for (i = 0; i < n; i++) {
		for (char *p = v[i]; *p; p++)
			loom_buf_addc(&out, *p);
		loom_buf_addc(&out, '/');
		loom_buf_adds(&out, v[i] + strlen(v[i]) + 1);
		loom_buf_addc(&out, '\n');
		free(v[i]);
	}
	free(v);
	return loom_buf_steal(&out);
}

int eng_mvidx_check(engine_t *e, const char **error_r)
{
	char *spec = index_spec(e);
	void *old = NULL;
	size_t oldlen = 0;
	int rc = loom_store_get(e->store, CF_META, "mvidx:spec", 10, &old, &oldlen, error_r);
	if (rc < 0) {
		free(spec);
		return -1;
	}
	if (rc == 1 && oldlen == strlen(spec) && memcmp(old, spec, oldlen) == 0) {
		free(old);
		free(spec);
		return 0;
	}
	free(old);
	/* Rebuild: drop the index, then index every metaverse object again. */
	loom_batch_t *b = loom_batch_new(e->store);
	loom_batch_delete_range(b, CF_MVIDX, "", 0, "\xff\xff\xff\xff", 4);
	rc = loom_store_write_ex(e->store, b, false, error_r);
	loom_batch_clear(b);
	loom_iter_t *it = loom_iter_new(e->store, CF_MV);
	size_t count = 0;
	for (loom_iter_seek_first(it); rc == 0 && loom_iter_valid(it); loom_iter_next(it)) {
		size_t vlen;
		const void *v = loom_iter_value(it, &vlen);
		Loom__MvObject *mv = loom__mv_object__unpack(NULL, vlen, v);
		if (mv == NULL)
			continue;
		for (size_t i = 0; i < mv->n_attrs; i++)
			eng_mvidx_update(e, b, mv->object_type, mv->id.data, mv->attrs[i]->name, NULL, mv->attrs[i]);
		loom__mv_object__free_unpacked(mv, NULL);
		if (++count % 1000 == 0) {
			rc = loom_store_write_ex(e->store, b, false, error_r);
			loom_batch_clear(b);
		}
	}
	loom_iter_destroy(&it);
	if (rc == 0) {
		loom_batch_put(b, CF_META, "mvidx:spec", 10, spec, strlen(spec));
		rc = loom_store_write_ex(e->store, b, true, error_r);
	}
	loom_batch_destroy(&b);
	free(spec);
	return rc;
}
