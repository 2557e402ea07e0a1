/* workflow_store.c - the service store (STATE_DIR/workflow) and the XPath
 * provider over it.
 *
 * Families:
 *   res        rid (u64be)                      -> Resource
 *   res_id     lower-cased ObjectID             -> rid (u64be)
 *   res_index  attr \0 tag value \0 type \0 rid -> ""   (every string, reference,
 *              integer, boolean and datetime value, and ObjectType; tag 's' with
 *              the lower-cased text, 'i'/'t' with 8 bytes big-endian (sign bit
 *              flipped), 'b' with one byte)
 *   req        seq (u64be)                      -> Request
 *   req_id     request id                       -> seq (u64be)
 *   meta       "next_rid", "next_seq", "next_chg", "chg_first" -> u64be;
 *              "sets_version" -> u64be (members are kept: 1);
 *              "store_id" -> a UUID made when the store was created
 *   member     set rid (u64be) member rid (u64be) -> ""   (ComputedMember of every
 *              Set and Group, written with the request that changes it; workflow_sets.c)
 *   chg        commit number (u64be)            -> ResourceChange
 *   origin     agent \0 change_id (u64be)       -> request id \0 hash (8 bytes)
 *   approval   approval id                      -> Approval (workflow_approval.c)
 *   mail       seq (u64be)                      -> MailMessage waiting for the relay (workflow_mail.c)
 * A resource's rows (res, res_id, res_index, member), its chg row and (for a
 * request an engine export made) its origin row change in the same batch as the
 * request that commits the change.
 */
#include "workflow.h"
#include "loom_alloc.h"
#include "loom_buf.h"

#include <sodium.h>
#include <stdio.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const cfs[] = { "res", "res_id", "res_index", "req", "req_id", "meta", "member", "chg", "origin", "approval",
	"mail", "sspr", NULL };

static uint64_t meta_u64(wf_t *w, const char *key)
{
	void *v;
	size_t len;
	const char *err;
	if (loom_store_get(w->store, w->cf_meta, key, strlen(key), &v, &len, &err) != 1)
		return 0;
	uint64_t x = len == 8 ? loom_store_get_u64be(v) : 0;
	free(v);
	return x;
}

int wf_store_open(wf_t *w, const char *path, char **ret_error)
{
	loom_store_opts_t so;
	loom_store_opts_default(&so);
	if (loom_store_open(path, cfs, &so, &w->store, ret_error) < 0)
		return -1;
	w->cf_res = loom_store_cf(w->store, "res");
	w->cf_res_id = loom_store_cf(w->store, "res_id");
	w->cf_res_index = loom_store_cf(w->store, "res_index");
	w->cf_req = loom_store_cf(w->store, "req");
	w->cf_req_id = loom_store_cf(w->store, "req_id");
	w->cf_meta = loom_store_cf(w->store, "meta");
	w->cf_chg = loom_store_cf(w->store, "chg");
	w->cf_origin = loom_store_cf(w->store, "origin");
	w->cf_member = loom_store_cf(w->store, "member");
	w->cf_approval = loom_store_cf(w->store, "approval");
	w->cf_mail = loom_store_cf(w->store, "mail");
	w->next_rid = meta_u64(w, "next_rid");
	w->next_chg = meta_u64(w, "next_chg");
	w->chg_first = meta_u64(w, "chg_first");
	if (w->next_chg == 0)
		w->next_chg = 1;
	if (w->chg_first == 0)
		w->chg_first = 1;
	void *v;
	size_t len;
	const char *err;
	int rc = loom_store_get(w->store, w->cf_meta, "store_id", 8, &v, &len, &err);
	if (rc == 1) {
		w->store_id = loom_strndup(v, len);
		free(v);
	} else if (rc == 0) {
		/* A new store: its id tells a policy agent's watermark from another
		 * store's (one restored from elsewhere, or made afresh). */
		uint8_t b[16];
		randombytes_buf(b, sizeof b);
		w->store_id = loom_malloc(33);
		for (size_t i = 0; i < 16; i++)
			snprintf(w->store_id + 2 * i, 3, "%02x", b[i]);
		rc = loom_store_put(w->store, w->cf_meta, "store_id", 8, w->store_id, 32, &err);
	}
	if (rc < 0) {
		*ret_error = loom_sprintf("cannot read or write the store id: %s", err);
		loom_store_close(&w->store);
		return -1;
	}
	w->next_seq = meta_u64(w, "next_seq");
	if (w->next_rid == 0)
		w->next_rid = 1;
	if (w->next_seq == 0)
		w->next_seq = 1;
	return 0;
}

void wf_store_close(wf_t *w)
{
	if (w->cache_res)
		protobuf_c_message_free_unpacked(&w->cache_res->base, NULL);
	if (w->tcache_res)
		protobuf_c_message_free_unpacked(&w->tcache_res->base, NULL);
	w->cache_res = w->tcache_res = NULL;
	loom_store_close(&w->store);
	free(w->store_id);
	w->store_id = NULL;
}

void wf_meta_write(wf_t *w, loom_batch_t *b)
{
	unsigned char v[8];
	loom_store_put_u64be(v, w->next_rid);
	loom_batch_put(b, w->cf_meta, "next_rid", 8, v, 8);
	loom_store_put_u64be(v, w->next_seq);
	loom_batch_put(b, w->cf_meta, "next_seq", 8, v, 8);
	loom_store_put_u64be(v, w->next_chg);
	loom_batch_put(b, w->cf_meta, "next_chg", 8, v, 8);
	loom_store_put_u64be(v, w->chg_first);
	loom_batch_put(b, w->cf_meta, "chg_first", 9, v, 8);
}

void wf_chg_write(wf_t *w, loom_batch_t *b, const Loom__Request *rq, const Loom__Resource *before,
    const Loom__Resource *after)
{
	const Loom__Resource *r = after ? after : before;
	if (r == NULL)
		return;
	wf_chg_write_id(w, b, r->object_id, r->object_type, after == NULL, rq->id);
}

void wf_chg_write_id(wf_t *w, loom_batch_t *b, const char *object_id, const char *object_type, bool deleted,
    const char *request_id)
{
	Loom__ResourceChange c = LOOM__RESOURCE_CHANGE__INIT;
	c.object_id = (char *)object_id;
	c.object_type = (char *)object_type;
	c.deleted = deleted;
	c.request_id = (char *)request_id;
	size_t len = loom__resource_change__get_packed_size(&c);
	uint8_t *buf = loom_malloc(len ? len : 1);
	loom__resource_change__pack(&c, buf);
	unsigned char k[8], e[8];
	loom_store_put_u64be(k, w->next_chg++);
	loom_batch_put(b, w->cf_chg, k, 8, buf, len);
	free(buf);
	/* The change log keeps the newest WF_CHG_KEEP commits; a delta import
	 * from before them is refused (watermark lost) and runs full. */
	if (w->next_chg - w->chg_first > WF_CHG_KEEP + WF_CHG_KEEP / 16) {
		uint64_t to = w->next_chg - WF_CHG_KEEP;
		loom_store_put_u64be(k, w->chg_first);
		loom_store_put_u64be(e, to);
		loom_batch_delete_range(b, w->cf_chg, k, 8, e, 8);
		w->chg_first = to;
	}
}

void wf_origin_key(loom_buf_t *k, const char *agent, uint64_t change_id)
{
	unsigned char c[8];
	loom_buf_reset(k);
	loom_buf_adds(k, agent);
	loom_buf_addc(k, '\0');
	loom_store_put_u64be(c, change_id);
	loom_buf_add(k, c, 8);
}

static char *lower(const char *s)
{
	char *l = loom_strdup(s);
	for (char *p = l; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return l;
}

int wf_res_get(wf_t *w, loom_xpath_rid_t rid, Loom__Resource **ret, const char **error_r)
{
	unsigned char k[8];
	loom_store_put_u64be(k, rid);
	void *v;
	size_t len;
	int rc = loom_store_get(w->store, w->cf_res, k, 8, &v, &len, error_r);
	if (rc != 1)
		return rc;
	Loom__Resource *r = loom__resource__unpack(NULL, len, v);
	free(v);
	if (r == NULL) {
		*error_r = "a resource record does not decode";
		return -1;
	}
	*ret = r;
	return 1;
}

static int rid_of(wf_t *w, const char *id, loom_xpath_rid_t *ret, const char **error_r)
{
	char *l = lower(id);
	void *v;
	size_t len;
	int rc = loom_store_get(w->store, w->cf_res_id, l, strlen(l), &v, &len, error_r);
	free(l);
	if (rc == 1) {
		*ret = len == 8 ? loom_store_get_u64be(v) : 0;
		free(v);
	}
	return rc;
}

int wf_res_get_by_id(wf_t *w, const char *id, Loom__Resource **ret, const char **error_r)
{
	loom_xpath_rid_t rid;
	int rc = rid_of(w, id, &rid, error_r);
	if (rc != 1)
		return rc;
	return wf_res_get(w, rid, ret, error_r);
}

/* Appends the index key of value v of attribute attr (up to the type). */
static bool index_prefix(loom_buf_t *k, const char *attr, const Loom__Value *v)
{
	unsigned char b[8];
	loom_buf_reset(k);
	loom_buf_adds(k, attr);
	loom_buf_addc(k, '\0');
	switch (v->v_case) {
	case LOOM__VALUE__V_STR:
	case LOOM__VALUE__V_REF: {
		const char *s = v->v_case == LOOM__VALUE__V_STR ? v->str : v->ref;
		loom_buf_addc(k, 's');
		for (; *s; s++)
			loom_buf_addc(k, (char)tolower((unsigned char)*s));
		break;
	}
	case LOOM__VALUE__V_INT:
	case LOOM__VALUE__V_TIME:
		loom_buf_addc(k, v->v_case == LOOM__VALUE__V_INT ? 'i' : 't');
		loom_store_put_u64be(b, (uint64_t)(v->v_case == LOOM__VALUE__V_INT ? v->int_ : v->time) ^ (1ull << 63));
		loom_buf_add(k, b, 8);
		break;
	case LOOM__VALUE__V_BOOL:
		loom_buf_addc(k, 'b');
		loom_buf_addc(k, v->bool_ ? 1 : 0);
		break;
	default:
		return false;
	}
	loom_buf_addc(k, '\0');
	return true;
}

/* One index key. */
typedef struct ikey {
	char *k;                   /* the key */
	size_t len;                /* its bytes */
} ikey_t;

static int ikey_cmp(const void *a, const void *b)
{
	const ikey_t *x = a, *y = b;
	int c = memcmp(x->k, y->k, x->len < y->len ? x->len : y->len);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* The index keys of r (NULL: none), sorted; the caller frees each and the array. */
static size_t index_keys(const Loom__Resource *r, ikey_t **ret)
{
	size_t n = 0, cap = 0;
	ikey_t *v = NULL;
	if (r == NULL) {
		*ret = NULL;
		return 0;
	}
	loom_buf_t k = LOOM_BUF_INIT;
	unsigned char rid[8];
	loom_store_put_u64be(rid, r->rid);
	for (size_t i = 0; i <= r->n_attrs; i++) {
		Loom__Value tv = LOOM__VALUE__INIT;
		const char *name;
		Loom__Value *one = &tv, **vals;
		size_t nv;
		if (i == r->n_attrs) {
			tv.v_case = LOOM__VALUE__V_STR;
			tv.str = r->object_type;
			name = "ObjectType";
			vals = &one;
			nv = 1;
		} else {
			name = r->attrs[i]->name;
			vals = r->attrs[i]->values;
			nv = r->attrs[i]->n_values;
		}
		for (size_t j = 0; j < nv; j++) {
			if (!index_prefix(&k, name, vals[j]))
				continue;
			loom_buf_adds(&k, r->object_type);
			loom_buf_addc(&k, '\0');
			loom_buf_add(&k, rid, 8);
			if (n == cap)
				v = loom_realloc(v, (cap = cap ? 2 * cap : 16) * sizeof *v);
			v[n].k = loom_malloc(k.len);
			memcpy(v[n].k, k.data, k.len);
			v[n++].len = k.len;
		}
	}
	loom_buf_release(&k);
	if (n)
		qsort(v, n, sizeof *v, ikey_cmp);
	*ret = v;
	return n;
}

/* Queues the index rows that differ between before and after: a modify
 * of one attribute touches that attribute's rows only. */
static void index_rows(wf_t *w, loom_batch_t *b, const Loom__Resource *before, const Loom__Resource *after)
{
	ikey_t *o, *n;
	size_t no = index_keys(before, &o), nn = index_keys(after, &n), i = 0, j = 0;
	while (i < no || j < nn) {
		int c = i == no ? 1 : j == nn ? -1 : ikey_cmp(&o[i], &n[j]);
		if (c < 0) {
			loom_batch_delete(b, w->cf_res_index, o[i].k, o[i].len);
			i++;
		} else if (c > 0) {
			loom_batch_put(b, w->cf_res_index, n[j].k, n[j].len, "", 0);
			j++;
		} else {
			i++;
			j++;
		}
	}
	for (i = 0; i < no; i++)
		free(o[i].k);
	for (j = 0; j < nn; j++)
		free(n[j].k);
	free(o);
	free(n);
}

void wf_res_write(wf_t *w, loom_batch_t *b, const Loom__Resource *before, const Loom__Resource *after)
{
	index_rows(w, b, before, after);
	const Loom__Resource *r = after ? after : before;
	unsigned char rid[8];
	loom_store_put_u64be(rid, r->rid);
	char *l = lower(r->object_id);
	if (after) {
		size_t len = loom__resource__get_packed_size(after);
		uint8_t *buf = loom_malloc(len ? len : 1);
		loom__resource__pack(after, buf);
		loom_batch_put(b, w->cf_res, rid, 8, buf, len);
		free(buf);
		loom_batch_put(b, w->cf_res_id, l, strlen(l), rid, 8);
	} else {
		loom_batch_delete(b, w->cf_res, rid, 8);
		loom_batch_delete(b, w->cf_res_id, l, strlen(l));
	}
	free(l);
	/* the provider's caches may hold the old state */
	if (w->cache_res && w->cache_rid == r->rid) {
		protobuf_c_message_free_unpacked(&w->cache_res->base, NULL);
		w->cache_res = NULL;
	}
	if (w->tcache_res && w->tcache_rid == r->rid) {
		protobuf_c_message_free_unpacked(&w->tcache_res->base, NULL);
		w->tcache_res = NULL;
	}
}

char *wf_new_uuid(void)
{
	uint8_t b[16];
	randombytes_buf(b, sizeof b);
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	return loom_sprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
	    b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* The ObjectID of rid: 1 with *ret_id, 0 when gone, -1. */
static int id_of(wf_t *w, loom_xpath_rid_t rid, char **ret_id, const char **error_r)
{
	Loom__Resource *r;
	int rc = wf_res_get(w, rid, &r, error_r);
	if (rc == 1) {
		*ret_id = loom_strdup(r->object_id);
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
	return rc;
}

int wf_attr_in_use(wf_t *w, const wf_attr_t *a, const char *type, char **ret_id, const char **error_r)
{
	int rc = 0;
	loom_iter_t *it;
	if (a->type == WF_BINARY) {
		/* binary values are not indexed: read the resources */
		it = loom_iter_new(w->store, w->cf_res);
		for (loom_iter_seek_first(it); loom_iter_valid(it) && rc == 0; loom_iter_next(it)) {
			size_t len;
			const void *v = loom_iter_value(it, &len);
			Loom__Resource *r = loom__resource__unpack(NULL, len, v);
			if (r == NULL)
				continue;
			if ((type == NULL || strcmp(r->object_type, type) == 0) && wf_res_attr(r, a->name)) {
				*ret_id = loom_strdup(r->object_id);
				rc = 1;
			}
			protobuf_c_message_free_unpacked(&r->base, NULL);
		}
	} else {
		/* index rows: attr \0 tag value \0 type \0 rid; the value may hold
		 * NULs (integers), the type does not: it is found from the end */
		size_t plen = strlen(a->name) + 1, tlen = type ? strlen(type) : 0;
		it = loom_iter_new(w->store, w->cf_res_index);
		for (loom_iter_seek(it, a->name, plen); loom_iter_valid(it) && rc == 0; loom_iter_next(it)) {
			size_t len;
			const unsigned char *key = loom_iter_key(it, &len);
			if (len < plen + 10 || memcmp(key, a->name, plen) != 0)
				break;
			if (type) {
				size_t end = len - 9; /* the NUL after the type */
				size_t beg = end;
				while (beg > plen && key[beg - 1] != '\0')
					beg--;
				if (end - beg != tlen || memcmp(key + beg, type, tlen) != 0)
					continue;
			}
			rc = id_of(w, loom_store_get_u64be(key + len - 8), ret_id, error_r);
		}
	}
	const char *err;
	if (rc >= 0 && loom_iter_status(it, &err) < 0) {
		*error_r = err;
		rc = -1;
	}
	loom_iter_destroy(&it);
	return rc;
}

int wf_type_in_use(wf_t *w, const char *type, char **ret_id, const char **error_r)
{
	Loom__Value tv = LOOM__VALUE__INIT;
	tv.v_case = LOOM__VALUE__V_STR;
	tv.str = (char *)type;
	loom_buf_t k = LOOM_BUF_INIT;
	index_prefix(&k, "ObjectType", &tv);
	loom_buf_adds(&k, type);
	loom_buf_addc(&k, '\0');
	int rc = 0;
	loom_iter_t *it = loom_iter_new(w->store, w->cf_res_index);
	loom_iter_seek(it, k.data, k.len);
	if (loom_iter_valid(it)) {
		size_t len;
		const unsigned char *key = loom_iter_key(it, &len);
		if (len == k.len + 8 && memcmp(key, k.data, k.len) == 0)
			rc = id_of(w, loom_store_get_u64be(key + k.len), ret_id, error_r);
	}
	const char *err;
	if (rc >= 0 && loom_iter_status(it, &err) < 0) {
		*error_r = err;
		rc = -1;
	}
	loom_iter_destroy(&it);
	loom_buf_release(&k);
	return rc;
}

void wf_req_write(wf_t *w, loom_batch_t *b, const Loom__Request *rq)
{
	unsigned char k[8];
	loom_store_put_u64be(k, rq->seq);
	size_t len = loom__request__get_packed_size(rq);
	uint8_t *buf = loom_malloc(len ? len : 1);
	loom__request__pack(rq, buf);
	loom_batch_put(b, w->cf_req, k, 8, buf, len);
	free(buf);
	loom_batch_put(b, w->cf_req_id, rq->id, strlen(rq->id), k, 8);
}

int wf_req_get(wf_t *w, const char *id, Loom__Request **ret, const char **error_r)
{
	void *k, *v;
	size_t klen, len;
	char *l = lower(id);
	int rc = loom_store_get(w->store, w->cf_req_id, l, strlen(l), &k, &klen, error_r);
	free(l);
	if (rc != 1)
		return rc;
	rc = loom_store_get(w->store, w->cf_req, k, klen, &v, &len, error_r);
	free(k);
	if (rc != 1)
		return rc < 0 ? -1 : 0;
	Loom__Request *rq = loom__request__unpack(NULL, len, v);
	free(v);
	if (rq == NULL) {
		*error_r = "a request record does not decode";
		return -1;
	}
	*ret = rq;
	return 1;
}

/* ---- the XPath provider ---- */

static Loom__Resource *cached(wf_t *w, loom_xpath_rid_t rid, Loom__Resource **slot, loom_xpath_rid_t *slot_rid)
{
	if (w->overlay.active && rid == w->overlay.rid)
		return w->overlay.gone ? NULL : (Loom__Resource *)w->overlay.res;
	if (*slot && *slot_rid == rid)
		return *slot;
	if (*slot)
		protobuf_c_message_free_unpacked(&(*slot)->base, NULL);
	*slot = NULL;
	const char *err;
	Loom__Resource *r;
	if (wf_res_get(w, rid, &r, &err) != 1)
		return NULL; /* a read error reads as no resource: the evaluator has no error path here */
	*slot = r;
	*slot_rid = rid;
	return r;
}

static int xp_scan(void *arg, const char *type, loom_xpath_visit_fn *fn, void *varg, char **ret_error)
{
	wf_t *w = arg;
	bool overlay_new = w->overlay.active && !w->overlay.gone && w->overlay.rid >= w->next_rid;
	bool overlay_gone = w->overlay.active && w->overlay.gone;
	int rc = 0;
	loom_iter_t *it;
	loom_buf_t k = LOOM_BUF_INIT;
	if (type == NULL) {
		it = loom_iter_new(w->store, w->cf_res);
		for (loom_iter_seek_first(it); loom_iter_valid(it) && rc == 0; loom_iter_next(it)) {
			size_t len;
			const void *key = loom_iter_key(it, &len);
			if (len == 8 && !(overlay_gone && loom_store_get_u64be(key) == w->overlay.rid))
				rc = fn(varg, loom_store_get_u64be(key));
		}
	} else {
		Loom__Value tv = LOOM__VALUE__INIT;
		tv.v_case = LOOM__VALUE__V_STR;
		tv.str = (char *)type;
		index_prefix(&k, "ObjectType", &tv);
		loom_buf_adds(&k, type);
		loom_buf_addc(&k, '\0');
		it = loom_iter_new(w->store, w->cf_res_index);
		for (loom_iter_seek(it, k.data, k.len); loom_iter_valid(it) && rc == 0; loom_iter_next(it)) {
			size_t len;
			const unsigned char *key = loom_iter_key(it, &len);
			if (len != k.len + 8 || memcmp(key, k.data, k.len) != 0)
				break;
			if (overlay_gone && loom_store_get_u64be(key + k.len) == w->overlay.rid)
				continue;
			rc = fn(varg, loom_store_get_u64be(key + k.len));
		}
	}
	const char *err;
	if (rc == 0 && loom_iter_status(it, &err) < 0) {
		*ret_error = loom_sprintf("cannot scan the resources: %s", err);
		rc = -1;
	}
	loom_iter_destroy(&it);
	loom_buf_release(&k);
	if (rc == 0 && overlay_new && (type == NULL || strcmp(type, w->overlay.res->object_type) == 0))
		rc = fn(varg, w->overlay.rid);
	return rc;
}

static const char *xp_object_type(void *arg, loom_xpath_rid_t rid)
{
	wf_t *w = arg;
	Loom__Resource *r = cached(w, rid, &w->tcache_res, &w->tcache_rid);
	if (r == NULL)
		return NULL;
	const wf_type_t *t = wf_type_find(&w->policy, r->object_type);
	return t ? t->name : r->object_type;
}

static const Loom__Attr *xp_attr(void *arg, loom_xpath_rid_t rid, const char *name)
{
	wf_t *w = arg;
	Loom__Resource *r = cached(w, rid, &w->cache_res, &w->cache_rid);
	if (r == NULL)
		return NULL;
	bool is_id = strcmp(name, "ObjectID") == 0;
	if (is_id || strcmp(name, "ObjectType") == 0) {
		loom__attr__init(&w->cache_attr);
		loom__value__init(&w->cache_val);
		w->cache_attr.name = (char *)name;
		w->cache_valp = &w->cache_val;
		w->cache_attr.values = &w->cache_valp;
		w->cache_attr.n_values = 1;
		if (is_id) {
			w->cache_val.v_case = LOOM__VALUE__V_REF;
			w->cache_val.ref = r->object_id;
		} else {
			w->cache_val.v_case = LOOM__VALUE__V_STR;
			w->cache_val.str = r->object_type;
		}
		return &w->cache_attr;
	}
	if (strcmp(name, "ComputedMember") == 0 && wf_sets_is_set(w, rid))
		return wf_sets_members_attr(w, rid); /* kept in memory, not in the resource */
	return wf_res_attr(r, name);
}

static int xp_resolve(void *arg, const char *id, size_t len, loom_xpath_rid_t *ret)
{
	wf_t *w = arg;
	char *s = loom_strndup(id, len);
	int found = 0;
	if (w->overlay.active && strcasecmp(s, w->overlay.res->object_id) == 0) {
		*ret = w->overlay.rid;
		found = !w->overlay.gone;
	} else {
		const char *err;
		found = rid_of(w, s, ret, &err) == 1;
	}
	free(s);
	return found ? 0 : 1;
}

static int xp_attr_info(void *arg, const char *name, loom_xpath_attr_info_t *ret)
{
	wf_t *w = arg;
	const wf_attr_t *a = wf_attr_find(&w->policy, name);
	if (a == NULL)
		return 1;
	ret->type = a->type;
	ret->multi = a->multi;
	return 0;
}

static int xp_find_eq(void *arg, const char *type, const char *attr, const Loom__Value *v, loom_xpath_visit_fn *fn,
    void *varg, char **ret_error)
{
	wf_t *w = arg;
	if (strcmp(attr, "ComputedMember") == 0 && w->sets)
		return wf_sets_find_member(w, type, v, fn, varg);
	loom_buf_t k = LOOM_BUF_INIT;
	if (!index_prefix(&k, attr, v)) {
		loom_buf_release(&k);
		return LOOM_XPATH_NO_INDEX;
	}
	if (type) {
		loom_buf_adds(&k, type);
		loom_buf_addc(&k, '\0');
	}
	int rc = 0;
	loom_iter_t *it = loom_iter_new(w->store, w->cf_res_index);
	for (loom_iter_seek(it, k.data, k.len); loom_iter_valid(it) && rc == 0; loom_iter_next(it)) {
		size_t len;
		const unsigned char *key = loom_iter_key(it, &len);
		if (len < k.len + 8 || memcmp(key, k.data, k.len) != 0)
			break;
		loom_xpath_rid_t rid = loom_store_get_u64be(key + len - 8);
		if (w->overlay.active && rid == w->overlay.rid)
			continue; /* its stored state is not the one asked about: visited below */
		rc = fn(varg, rid);
	}
	const char *err;
	if (rc == 0 && loom_iter_status(it, &err) < 0) {
		*ret_error = loom_sprintf("cannot read the attribute index: %s", err);
		rc = -1;
	}
	loom_iter_destroy(&it);
	loom_buf_release(&k);
	if (rc == 0 && w->overlay.active && !w->overlay.gone &&
	    (type == NULL || strcmp(type, w->overlay.res->object_type) == 0))
		rc = fn(varg, w->overlay.rid); /* may not match: the evaluator checks */
	return rc;
}

void wf_xpath_provider(wf_t *w, loom_xpath_provider_t *ret)
{
	*ret = (loom_xpath_provider_t){
		.arg = w, .scan = xp_scan, .object_type = xp_object_type, .attr = xp_attr, .resolve = xp_resolve,
		.attr_info = xp_attr_info, .find_eq = xp_find_eq,
	};
}
