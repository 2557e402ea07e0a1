/* ma_ldap_import.c - full and delta import from a directory, streamed to the
 * engine in batches under its credit (agent.proto). Active Directory's
 * delta (DirSync) has its own section below; the rest is OpenLDAP's.
 *
 * Full import: for each base, first a content sync refreshOnly search
 * without a cookie and with a filter no entry matches, whose only answer is
 * the server's current cookie; then the base's entries by the paged results
 * control (RFC 2696). The cookies (taken before the entries are read, so a
 * change made meanwhile is seen again, never missed) are the watermark.
 *
 * Delta import: for each base, a refreshOnly search (RFC 4533) from its
 * cookie. Entries added or modified come whole (REPLACE); deletes come as
 * entries in state delete or as a syncIdSet with refreshDeletes; the final
 * cookie of each base is the new watermark. A delete means "no longer
 * matches this search": slapd's session log reports every entry changed
 * since the cookie that is outside the base searched as gone, and an entry
 * moved from one base to another is gone from the first and added to the
 * second. So deletes are collected (entryUUIDs only) and sent after every
 * base is read, less the entries some base sent as present: an object is
 * deleted only when no base holds it any more. A server that answers with the
 * present phase (its session log does not reach back to the cookie: deletes
 * can only be found by comparing every entry) or refuses the cookie
 * (e-syncRefreshRequired; unwillingToPerform for a cookie newer than its
 * own state) makes the run end with watermark_lost: the engine
 * goes on with a full import in the same run, whose mark-and-sweep finds
 * the deletes; nothing is guessed.
 *
 * States of a run: idle -> (connected, cookies read) -> reading base i
 * (search msgid outstanding; paged: next page started on each page's end)
 * -> search_done (the last batch goes when credit allows) -> idle. Failure
 * at any point sends ImportBatch{last, failed, message} and goes idle.
 * Reading stops (the socket leaves the loop) while a full batch waits for
 * credit; the server then blocks on TCP, so memory holds one batch.
 */
#include "ma_ldap.h"
#include "loom_agentproto.h"
#include "loom_alloc.h"
#include "loom_attrs.h"
#include "loom_envelope.h"
#include "loom_log.h"
#include "loom_map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void batch_new(ml_import_t *im)
{
	Loom__ImportBatch *b = loom_malloc(sizeof *b);
	loom__import_batch__init(b);
	b->run_id = im->run_id;
	b->objects = loom_calloc(im->batch_size, sizeof *b->objects);
	im->batch = b;
}

static bool batch_full(const ml_import_t *im)
{
	return im->batch->n_objects + im->batch->n_errors >= im->batch_size;
}

static void add_object(ml_import_t *im, Loom__ImportObject *o)
{
	im->batch->objects[im->batch->n_objects++] = o;
}

static void add_error(ml_import_t *im, const char *code, const char *dn, const char *message)
{
	Loom__ImportBatch *b = im->batch;
	Loom__RunObjectError *e = loom_malloc(sizeof *e);
	loom__run_object_error__init(e);
	e->code = loom_strdup(code);
	e->dn = loom_strdup(dn ? dn : "");
	e->message = loom_strdup(message);
	b->errors = loom_realloc(b->errors, (b->n_errors + 1) * sizeof *b->errors);
	b->errors[b->n_errors++] = e;
	im->errors++;
}

static void send_batch(ldapagent_t *la, Loom__ImportBatch *b)
{
	loom_agent_send_batch(la->d, la->imp.engine, b);
}

void ml_import_stop(ldapagent_t *la)
{
	ml_import_t *im = &la->imp;
	ml_conn_close(&im->conn);
	if (im->batch)
		loom__import_batch__free_unpacked(im->batch, NULL);
	free(im->page_cookie.bv_val);
	ml_watermark_release(&im->wm);
	free(im->deletes);
	loom_map_destroy(&im->gone);
	loom_map_destroy(&im->seen);
	free(im->nc);
	free(im->engine);
	memset(im, 0, sizeof *im);
	im->msgid = -1;
	im->conn.fd = -1;
}

/* Ends the run with a failure (message names what failed). */
static void fail(ldapagent_t *la, const char *message)
{
	ml_import_t *im = &la->imp;
	Loom__ImportBatch b = LOOM__IMPORT_BATCH__INIT;
	b.run_id = im->run_id;
	b.seq = ++im->seq;
	b.last = true;
	b.failed = true;
	b.message = (char *)message;
	send_batch(la, &b);
	loom_error("import failed run=%llu: %s", (unsigned long long)im->run_id, message);
	ml_import_stop(la);
}

/* Ends a delta run whose watermark the server cannot resume from. */
static void lost(ldapagent_t *la, const char *why)
{
	ml_import_t *im = &la->imp;
	Loom__ImportBatch b = LOOM__IMPORT_BATCH__INIT;
	b.run_id = im->run_id;
	b.seq = ++im->seq;
	b.last = true;
	b.watermark_lost = true;
	b.message = (char *)why;
	send_batch(la, &b);
	loom_warning("watermark lost run=%llu: delta import cannot resume: %s; the engine goes on with a full import",
	    (unsigned long long)im->run_id, why);
	ml_import_stop(la);
}

/* Sends the batch being filled (not the last one) and starts another. */
static void flush(ldapagent_t *la)
{
	ml_import_t *im = &la->imp;
	Loom__ImportBatch *b = im->batch;
	b->seq = ++im->seq;
	im->objects += b->n_objects;
	send_batch(la, b);
	im->credit--;
	loom__import_batch__free_unpacked(b, NULL);
	batch_new(im);
}

static void finish(ldapagent_t *la)
{
	ml_import_t *im = &la->imp;
	Loom__ImportBatch *b = im->batch;
	b->seq = ++im->seq;
	b->last = true;
	im->objects += b->n_objects;
	ml_watermark_encode(&im->wm, &b->watermark.data, &b->watermark.len);
	send_batch(la, b);
	long long ms = loom_mono_ms() - im->started_ms;
	loom_info("import sent run=%llu mode=%s objects=%llu errors=%llu batches=%llu ms=%lld rate=%.0f/s",
	    (unsigned long long)im->run_id, im->usn ? "delta-usn" : im->dirsync ? "delta-dirsync" : im->delta ? "delta" : "full",
	    (unsigned long long)im->objects,
	    (unsigned long long)im->errors, (unsigned long long)im->seq, ms,
	    ms > 0 ? (double)im->objects * 1000.0 / (double)ms : 0.0);
	ml_import_stop(la);
}

/* ---- Active Directory: DirSync ---------------------------------------------------------
 *
 * DirSync searches a whole naming context from a cookie and returns every
 * object whose asked-for attributes changed since, with only the changed
 * attributes, and deleted objects (isDeleted) too. So each changed object
 * in one of the bases is read again whole (a base search with that base's
 * filter) and sent as REPLACE; one that is deleted, left every base or no
 * longer matches is gone (collected as for content sync). The cookie is the
 * same for every base: the watermark holds it once per base line. */

#define DIRSYNC_FLAGS (LDAP_CONTROL_X_DIRSYNC_OBJECT_SECURITY | LDAP_CONTROL_X_DIRSYNC_ANCESTORS_FIRST)

static char *dirsync_filter(ldapagent_t *la)
{
	loom_buf_t b = LOOM_BUF_INIT;
	const loom_agentcfg_ldap_class_t *cl = la->cfg.ldap.object_classes.v;
	for (size_t i = 0; i < la->cfg.ldap.object_classes.n; i++)
		loom_buf_printf(&b, "(objectClass=%s)", cl[i].object_class);
	char *f = b.len ? loom_sprintf("(|%s)", loom_buf_cstr(&b)) : loom_strdup("(objectClass=*)");
	loom_buf_release(&b);
	return f;
}

/* The naming context (defaultNamingContext) DirSync searches. -1 after failing the run. */
static int dirsync_nc(ldapagent_t *la)
{
	ml_import_t *im = &la->imp;
	char *attrs[] = { "defaultNamingContext", NULL };
	struct timeval tv = { la->cfg.ldap.timeout_ms / 1000, (la->cfg.ldap.timeout_ms % 1000) * 1000 };
	LDAPMessage *res = NULL;
	int rc = ldap_search_ext_s(im->conn.ld, "", LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL, NULL, &tv, 1, &res);
	LDAPMessage *e = rc == LDAP_SUCCESS ? ldap_first_entry(im->conn.ld, res) : NULL;
	struct berval **v = e ? ldap_get_values_len(im->conn.ld, e, "defaultNamingContext") : NULL;
	if (v && v[0])
		im->nc = loom_strndup(v[0]->bv_val, v[0]->bv_len);
	ldap_value_free_len(v);
	ldap_msgfree(res);
	if (im->nc == NULL) {
		char *t = ml_ld_error(im->conn.ld, rc == LDAP_SUCCESS ? LDAP_NO_SUCH_ATTRIBUTE : rc);
		char *m = loom_sprintf("cannot read defaultNamingContext from '%s': %s", la->cfg.ldap.uri.text, t);
		fail(la, m);
		free(m);
		free(t);
		return -1;
	}
	return 0;
}

/* Every base's cookie set to the DirSync cookie. */
static void dirsync_set_cookie(ml_import_t *im, const struct berval *cookie)
{
	for (size_t i = 0; i < im->wm.n; i++)
		ml_watermark_set(&im->wm, i, cookie);
}

/* Full import: the DirSync cookie now, from searches that match nothing
 * (repeated while the server says there is more). 0; 1 with *ret_refused
 * (malloc'd) when the server will not let this account use DirSync; -1
 * after failing the run. */
static int dirsync_cookie_now(ldapagent_t *la, char **ret_refused)
{
	ml_import_t *im = &la->imp;
	struct berval cookie = { 0, NULL };
	char *attrs[] = { "objectGUID", NULL };
	struct timeval tv = { la->cfg.ldap.timeout_ms / 1000, (la->cfg.ldap.timeout_ms % 1000) * 1000 };
	for (int round = 0; round < 100000; round++) {
		LDAPControl *ctrl = NULL, *ctrls[2] = { NULL, NULL };
		struct berval none = { 0, (char *)"" }; /* libldap wants a cookie: the first is empty */
		int rc = ldap_create_dirsync_control(im->conn.ld, DIRSYNC_FLAGS, 0x100000, cookie.bv_val ? &cookie : &none, &ctrl);
		if (rc != LDAP_SUCCESS) {
			fail(la, "cannot encode the DirSync control");
			free(cookie.bv_val);
			return -1;
		}
		ctrls[0] = ctrl;
		LDAPMessage *res = NULL;
		rc = ldap_search_ext_s(im->conn.ld, im->nc, LDAP_SCOPE_SUBTREE, "(&(objectClass=top)(!(objectClass=top)))",
		    attrs, 0, ctrls, NULL, &tv, LDAP_NO_LIMIT, &res);
		ldap_control_free(ctrl);
		int err = rc, more = 0;
		LDAPControl **rctrls = NULL;
		if (res && ldap_parse_result(im->conn.ld, res, &err, NULL, NULL, NULL, &rctrls, 0) != LDAP_SUCCESS)
			err = rc;
		ldap_msgfree(res);
		LDAPControl *dc = err == LDAP_SUCCESS ? ml_find_control(rctrls, LDAP_CONTROL_X_DIRSYNC) : NULL;
		struct berval next = { 0, NULL };
		if (dc == NULL || ldap_parse_dirsync_control(im->conn.ld, dc, &more, &next) != LDAP_SUCCESS) {
			char *t = ml_ld_error(im->conn.ld, err == LDAP_SUCCESS ? LDAP_CONTROL_NOT_FOUND : err);
			if (ml_dirsync_refused(err)) {
				*ret_refused = loom_sprintf("DirSync on '%s' refused to '%s': %s", im->nc,
				    la->cfg.ldap.bind_dn ? la->cfg.ldap.bind_dn : "the agent's account", t);
				free(t);
				ldap_controls_free(rctrls);
				free(cookie.bv_val);
				return 1;
			}
			char *m = loom_sprintf("cannot read the DirSync cookie of '%s' on '%s': %s", im->nc, la->cfg.ldap.uri.text, t);
			fail(la, m);
			free(m);
			free(t);
			ldap_controls_free(rctrls);
			free(cookie.bv_val);
			return -1;
		}
		ldap_controls_free(rctrls);
		free(cookie.bv_val);
		cookie.bv_len = next.bv_len;
		cookie.bv_val = loom_memdup(next.bv_val, next.bv_len ? next.bv_len : 1);
		ber_memfree(next.bv_val);
		if (!more)
			break;
	}
	dirsync_set_cookie(im, &cookie);
	free(cookie.bv_val);
	return 0;
}

/* Full import from Active Directory: the watermark now, DirSync's cookie,
 * or the DC's USN mark (ma_ldap_usn.c) when so configured or when DirSync
 * is refused. -1 after failing the run. */
static int ad_watermark_now(ldapagent_t *la)
{
	ml_import_t *im = &la->imp;
	char *err = NULL;
	if (la->cfg.ldap.ad_delta == LOOM_LDAP_AD_DIRSYNC) {
		int rc = dirsync_cookie_now(la, &err);
		if (rc <= 0)
			return rc;
		loom_warning("%s: delta imports will read uSNChanged instead (set ldap.ad_delta: usn to say so, or grant "
			     "the account Replicating Directory Changes)",
		    err);
		free(err);
		err = NULL;
	}
	ml_usn_mark_t m;
	if (ml_usn_now(la, im->conn.ld, &m, &err) < 0) {
		fail(la, err);
		free(err);
		return -1;
	}
	if (ml_usn_deleted_readable(la, im->conn.ld, im->nc, &err) < 0) {
		loom_warning("%s: delta imports will be refused", err);
		free(err);
	}
	struct berval c;
	ml_usn_cookie_encode(&m, &c);
	dirsync_set_cookie(im, &c);
	free(c.bv_val);
	return 0;
}

/* Delta import by uSNChanged from the watermark's mark: the DC must be the
 * same database, and the deleted objects readable. Sets the new watermark
 * (the DC's mark now). -1 after failing the run (or refusing the watermark). */
static int usn_begin(ldapagent_t *la, const ml_usn_mark_t *from)
{
	ml_import_t *im = &la->imp;
	char *err = NULL;
	ml_usn_mark_t now;
	if (ml_usn_now(la, im->conn.ld, &now, &err) < 0) {
		fail(la, err);
		free(err);
		return -1;
	}
	if (memcmp(now.invocation, from->invocation, 16) != 0 || now.usn < from->usn) {
		char a[37], b[37];
		ml_uuid_text(from->invocation, true, a);
		ml_uuid_text(now.invocation, true, b);
		char *why = memcmp(now.invocation, from->invocation, 16) != 0
		    ? loom_sprintf("the domain controller's invocationId is %s, not the watermark's %s (restored from a "
				   "backup, or another DC answers at '%s'): its USNs cannot be compared",
			  b, a, la->cfg.ldap.uri.text)
		    : loom_sprintf("the domain controller's highestCommittedUSN %llu is below the watermark's %llu",
			  (unsigned long long)now.usn, (unsigned long long)from->usn);
		lost(la, why);
		free(why);
		return -1;
	}
	if (ml_usn_deleted_readable(la, im->conn.ld, im->nc, &err) < 0) {
		fail(la, err);
		free(err);
		return -1;
	}
	im->usn_from = from->usn + 1;
	im->usn_to = now.usn;
	struct berval c;
	ml_usn_cookie_encode(&now, &c);
	dirsync_set_cookie(im, &c);
	free(c.bv_val);
	return 0;
}

static int dirsync_search(ldapagent_t *la)
{
	ml_import_t *im = &la->imp;
	LDAPControl *ctrl = NULL;
	struct berval none = { 0, (char *)"" };
	struct berval *ck = im->wm.n && im->wm.cookies[0].bv_val ? &im->wm.cookies[0] : &none;
	int rc = ldap_create_dirsync_control(im->conn.ld, DIRSYNC_FLAGS, 0x100000, ck, &ctrl);
	if (rc != LDAP_SUCCESS) {
		fail(la, "cannot encode the DirSync control");
		return -1;
	}
	LDAPControl *ctrls[] = { ctrl, NULL };
	size_t n = 0;
	while (la->attrs[n])
		n++;
	char **attrs = loom_calloc(n + 2, sizeof *attrs);
	memcpy(attrs, la->attrs, n * sizeof *attrs);
	attrs[n] = "isDeleted";
	char *filter = dirsync_filter(la);
	rc = ldap_search_ext(im->conn.ld, im->nc, LDAP_SCOPE_SUBTREE, filter, attrs, 0, ctrls, NULL, NULL, LDAP_NO_LIMIT,
	    &im->msgid);
	free(filter);
	free(attrs);
	ldap_control_free(ctrl);
	if (rc != LDAP_SUCCESS) {
		char *e = ml_ld_error(im->conn.ld, rc);
		char *m = loom_sprintf("cannot start DirSync on '%s' at '%s': %s", la->cfg.ldap.uri.text, im->nc, e);
		fail(la, m);
		free(m);
		free(e);
		return -1;
	}
	return 0;
}

/* A DirSync entry: read again whole if it is in a base and matches, else gone. */
static void dirsync_entry(ldapagent_t *la, ml_import_t *im, LDAPMessage *msg)
{
	LDAP *ld = im->conn.ld;
	char *dn = ldap_get_dn(ld, msg);
	struct berval **guid = ldap_get_values_len(ld, msg, "objectGUID");
	struct berval **del = ldap_get_values_len(ld, msg, "isDeleted");
	if (guid == NULL || guid[0] == NULL || guid[0]->bv_len != 16) {
		add_error(im, "bad-entry", dn, "a DirSync entry without a 16-byte objectGUID");
		goto out;
	}
	const uint8_t *g = (const uint8_t *)guid[0]->bv_val;
	bool deleted = del && del[0] && del[0]->bv_len == 4 && strncasecmp(del[0]->bv_val, "TRUE", 4) == 0;
	size_t base = la->cfg.ldap.bases.n;
	for (size_t i = 0; !deleted && dn && i < la->cfg.ldap.bases.n; i++)
		if (ml_dn_in_base(dn, ml_base(la, i)->dn.text, ml_base(la, i)->scope)) {
			base = i;
			break;
		}
	if (deleted || base == la->cfg.ldap.bases.n) {
		loom_map_put(im->gone, g, 16, (void *)1);
		goto out;
	}
	struct timeval tv = { la->cfg.ldap.timeout_ms / 1000, (la->cfg.ldap.timeout_ms % 1000) * 1000 };
	LDAPMessage *res = NULL;
	int rc = ldap_search_ext_s(ld, dn, LDAP_SCOPE_BASE, la->filters[base], la->attrs, 0, NULL, NULL, &tv, 1, &res);
	LDAPMessage *e = rc == LDAP_SUCCESS ? ldap_first_entry(ld, res) : NULL;
	if (e == NULL && rc != LDAP_SUCCESS && rc != LDAP_NO_SUCH_OBJECT) {
		char *t = ml_ld_error(ld, rc);
		add_error(im, "read-failed", dn, t);
		free(t);
	} else if (e == NULL) {
		loom_map_put(im->gone, g, 16, (void *)1); /* no longer matches its base's filter */
	} else {
		char *err = NULL;
		Loom__ImportObject *o = ml_entry_object(la, ld, e, &err);
		if (o == NULL) {
			add_error(im, "bad-entry", dn, err);
			free(err);
		} else {
			o->change = LOOM__IMPORT_OBJECT__CHANGE__REPLACE;
			loom_map_put(im->seen, g, 16, (void *)1);
			add_object(im, o);
		}
	}
	ldap_msgfree(res);
out:
	ldap_value_free_len(guid);
	ldap_value_free_len(del);
	ldap_memfree(dn);
}

int ml_dirsync_changes(ldapagent_t *la, LDAP *ld, const struct berval *cookie, struct berval *ret_cookie,
    Loom__ImportObject ***ret_objs, size_t *ret_nobjs, Loom__RunObjectError ***ret_errs, size_t *ret_nerrs,
    char **ret_error)
{
	struct timeval tv = { la->cfg.ldap.timeout_ms / 1000, (la->cfg.ldap.timeout_ms % 1000) * 1000 };
	ml_import_t im;
	memset(&im, 0, sizeof im);
	im.conn.ld = ld;
	im.conn.fd = -1;
	im.batch_size = 64;
	batch_new(&im);
	im.gone = loom_map_new();
	im.seen = loom_map_new();
	int ret = -1;
	char *nc_attrs[] = { "defaultNamingContext", NULL };
	LDAPMessage *res = NULL;
	int rc = ldap_search_ext_s(ld, "", LDAP_SCOPE_BASE, "(objectClass=*)", nc_attrs, 0, NULL, NULL, &tv, 1, &res);
	LDAPMessage *e = rc == LDAP_SUCCESS ? ldap_first_entry(ld, res) : NULL;
	struct berval **v = e ? ldap_get_values_len(ld, e, "defaultNamingContext") : NULL;
	if (v && v[0])
		im.nc = loom_strndup(v[0]->bv_val, v[0]->bv_len);
	ldap_value_free_len(v);
	ldap_msgfree(res);
	if (im.nc == NULL) {
		char *t = ml_ld_error(ld, rc == LDAP_SUCCESS ? LDAP_NO_SUCH_ATTRIBUTE : rc);
		*ret_error = loom_sprintf("cannot read defaultNamingContext from '%s': %s", la->cfg.ldap.uri.text, t);
		free(t);
		goto out;
	}
	size_t n = 0;
	while (la->attrs[n])
		n++;
	char **attrs = loom_calloc(n + 2, sizeof *attrs);
	memcpy(attrs, la->attrs, n * sizeof *attrs);
	attrs[n] = "isDeleted";
	char *filter = dirsync_filter(la);
	struct berval ck = { cookie->bv_len, loom_memdup(cookie->bv_val, cookie->bv_len ? cookie->bv_len : 1) };
	for (int more = 1; more;) {
		LDAPControl *ctrl = NULL;
		if (ldap_create_dirsync_control(ld, DIRSYNC_FLAGS, 0x100000, &ck, &ctrl) != LDAP_SUCCESS) {
			*ret_error = loom_strdup("cannot encode the DirSync control");
			break;
		}
		LDAPControl *ctrls[] = { ctrl, NULL };
		res = NULL;
		rc = ldap_search_ext_s(ld, im.nc, LDAP_SCOPE_SUBTREE, filter, attrs, 0, ctrls, NULL, &tv, LDAP_NO_LIMIT, &res);
		ldap_control_free(ctrl);
		if (rc != LDAP_SUCCESS) {
			char *t = ml_ld_error(ld, rc);
			*ret_error = loom_sprintf("DirSync on '%s' at '%s' failed: %s", la->cfg.ldap.uri.text, im.nc, t);
			free(t);
			ldap_msgfree(res);
			break;
		}
		for (LDAPMessage *m = ldap_first_entry(ld, res); m; m = ldap_next_entry(ld, m)) {
			if (im.batch->n_objects + 1 >= im.batch_size) {
				im.batch_size *= 2;
				im.batch->objects = loom_realloc(im.batch->objects, im.batch_size * sizeof *im.batch->objects);
			}
			dirsync_entry(la, &im, m);
		}
		LDAPControl **rctrls = NULL;
		int err = 0;
		ldap_parse_result(ld, res, &err, NULL, NULL, NULL, &rctrls, 0);
		ldap_msgfree(res);
		LDAPControl *dc = ml_find_control(rctrls, LDAP_CONTROL_X_DIRSYNC);
		struct berval next = { 0, NULL };
		if (dc == NULL || ldap_parse_dirsync_control(ld, dc, &more, &next) != LDAP_SUCCESS) {
			*ret_error = loom_sprintf("DirSync on '%s' at '%s': no DirSync control on the result",
			    la->cfg.ldap.uri.text, im.nc);
			ldap_controls_free(rctrls);
			break;
		}
		ldap_controls_free(rctrls);
		free(ck.bv_val);
		ck.bv_len = next.bv_len;
		ck.bv_val = loom_memdup(next.bv_val, next.bv_len ? next.bv_len : 1);
		ber_memfree(next.bv_val);
		if (!more)
			ret = 0;
	}
	free(filter);
	free(attrs);
	if (ret < 0) {
		free(ck.bv_val);
		goto out;
	}
	/* Gone from the bases and not seen in one: deleted. */
	size_t pos = 0, klen;
	const void *k;
	while (loom_map_next(im.gone, &pos, &k, &klen, NULL)) {
		if (klen != 16 || loom_map_get(im.seen, k, 16) != NULL)
			continue;
		if (im.batch->n_objects + 1 >= im.batch_size) {
			im.batch_size *= 2;
			im.batch->objects = loom_realloc(im.batch->objects, im.batch_size * sizeof *im.batch->objects);
		}
		Loom__ImportObject *o = loom_malloc(sizeof *o);
		loom__import_object__init(o);
		o->change = LOOM__IMPORT_OBJECT__CHANGE__DELETE;
		char t[37];
		ml_uuid_text(k, true, t);
		o->anchor = loom_strdup(t);
		o->dn = loom_strdup("");
		add_object(&im, o);
	}
	*ret_cookie = ck;
	*ret_objs = im.batch->objects;
	*ret_nobjs = im.batch->n_objects;
	*ret_errs = im.batch->errors;
	*ret_nerrs = im.batch->n_errors;
	im.batch->objects = NULL;
	im.batch->n_objects = 0;
	im.batch->errors = NULL;
	im.batch->n_errors = 0;
out:
	loom__import_batch__free_unpacked(im.batch, NULL);
	loom_map_destroy(&im.gone);
	loom_map_destroy(&im.seen);
	free(im.nc);
	return ret;
}

/* Starts the search of base im->base: a page (full) or a refresh (delta).
 * -1 after failing the run. */
static int start_search(ldapagent_t *la)
{
	ml_import_t *im = &la->imp;
	if (im->dirsync)
		return dirsync_search(la);
	if (im->usn) {
		char *err = NULL;
		if (ml_usn_search(la, &err) < 0) {
			fail(la, err);
			free(err);
			return -1;
		}
		return 0;
	}
	const loom_agentcfg_ldap_base_t *bc = ml_base(la, im->base);
	LDAPControl *ctrls[2] = { NULL, NULL };
	LDAPControl sync = { 0 };
	int rc;
	if (im->delta) {
		if (ml_sync_request_value(LDAP_SYNC_REFRESH_ONLY, &im->wm.cookies[im->base], &sync.ldctl_value) < 0) {
			fail(la, "cannot encode the content sync request");
			return -1;
		}
		sync.ldctl_oid = LDAP_CONTROL_SYNC;
		sync.ldctl_iscritical = 1;
		ctrls[0] = &sync;
	} else {
		rc = ldap_create_page_control(im->conn.ld, (ber_int_t)la->cfg.ldap.page_size,
		    im->page_cookie.bv_val ? &im->page_cookie : NULL, 1, &ctrls[0]);
		if (rc != LDAP_SUCCESS) {
			fail(la, "cannot encode the paged results control");
			return -1;
		}
	}
	rc = ldap_search_ext(im->conn.ld, bc->dn.text, ml_scope(bc->scope), la->filters[im->base], la->attrs, 0, ctrls,
	    NULL, NULL, LDAP_NO_LIMIT, &im->msgid);
	if (im->delta)
		ber_memfree(sync.ldctl_value.bv_val);
	else
		ldap_control_free(ctrls[0]);
	if (rc != LDAP_SUCCESS) {
		char *e = ml_ld_error(im->conn.ld, rc);
		char *m = loom_sprintf("cannot search '%s' on '%s': %s", bc->dn.text, la->cfg.ldap.uri.text, e);
		fail(la, m);
		free(m);
		free(e);
		return -1;
	}
	return 0;
}

/* The next base, or the end of the reading. -1 after failing the run. */
static int next_base(ldapagent_t *la)
{
	ml_import_t *im = &la->imp;
	im->msgid = -1;
	free(im->page_cookie.bv_val);
	im->page_cookie.bv_val = NULL;
	im->page_cookie.bv_len = 0;
	if (++im->base < la->cfg.ldap.bases.n)
		return start_search(la);
	im->search_done = true;
	return 0;
}

static void add_delete(ldapagent_t *la, const uint8_t uuid[16], const char *dn)
{
	ml_import_t *im = &la->imp;
	Loom__ImportObject *o = loom_malloc(sizeof *o);
	loom__import_object__init(o);
	o->change = LOOM__IMPORT_OBJECT__CHANGE__DELETE;
	if (la->dn_anchor) {
		o->anchor = loom_strdup(dn ? dn : "");
	} else if (strcasecmp(la->cfg.anchor, "entryUUID") == 0 || strcasecmp(la->cfg.anchor, "objectGUID") == 0) {
		char t[37];
		ml_uuid_text(uuid, la->cfg.ldap.directory == LOOM_LDAP_AD, t);
		o->anchor = loom_strdup(t);
	} else {
		o->anchor = loom_strdup(""); /* the engine finds it by DN */
	}
	o->dn = loom_strdup(dn ? dn : "");
	add_object(im, o);
}

/* One search entry. -1 when the run ended. */
static int on_entry(ldapagent_t *la, LDAPMessage *msg)
{
	ml_import_t *im = &la->imp;
	LDAP *ld = im->conn.ld;
	char *err = NULL;
	if (!im->delta || im->usn) {
		Loom__ImportObject *o = ml_entry_object(la, ld, msg, &err);
		if (o) {
			if (im->usn)
				ml_usn_seen(la, ld, msg, o);
			add_object(im, o);
		} else {
			char *dn = ldap_get_dn(ld, msg);
			add_error(im, "bad-entry", dn, err);
			ldap_memfree(dn);
			free(err);
		}
		return 0;
	}
	if (im->dirsync) {
		dirsync_entry(la, im, msg);
		return 0;
	}
	LDAPControl **ctrls = NULL;
	int rc = ldap_get_entry_controls(ld, msg, &ctrls);
	LDAPControl *sc = rc == LDAP_SUCCESS ? ml_find_control(ctrls, LDAP_CONTROL_SYNC_STATE) : NULL;
	char *dn = ldap_get_dn(ld, msg);
	int state;
	uint8_t uuid[16];
	struct berval cookie = { 0, NULL };
	const char *why = "an entry without a sync state control in a content sync";
	if (sc == NULL || ml_sync_state_parse(&sc->ldctl_value, &state, uuid, &cookie, &why) < 0) {
		add_error(im, "bad-sync-message", dn, why);
		goto out;
	}
	if (cookie.bv_val)
		ml_watermark_set(&im->wm, im->base, &cookie);
	switch (state) {
	case LDAP_SYNC_PRESENT:
		ldap_memfree(dn);
		ldap_controls_free(ctrls);
		free(cookie.bv_val);
		lost(la, "the server answered with a present phase (its session log does not reach back to the "
			 "cookie), which cannot show deletes without a full import");
		return -1;
	case LDAP_SYNC_DELETE:
		loom_map_put(im->gone, uuid, 16, (void *)1);
		break;
	default: {
		loom_map_put(im->seen, uuid, 16, (void *)1);
		Loom__ImportObject *o = ml_entry_object(la, ld, msg, &err);
		if (o == NULL) {
			add_error(im, "bad-entry", dn, err);
			free(err);
			break;
		}
		o->change = LOOM__IMPORT_OBJECT__CHANGE__REPLACE;
		add_object(im, o);
	}
	}
out:
	free(cookie.bv_val);
	ldap_memfree(dn);
	ldap_controls_free(ctrls);
	return 0;
}

static int on_intermediate(ldapagent_t *la, LDAPMessage *msg)
{
	ml_import_t *im = &la->imp;
	char *oid = NULL;
	struct berval *data = NULL;
	int rc = ldap_parse_intermediate(im->conn.ld, msg, &oid, &data, NULL, 0);
	if (rc != LDAP_SUCCESS || oid == NULL || strcmp(oid, LDAP_SYNC_INFO) != 0 || data == NULL) {
		ldap_memfree(oid);
		ber_bvfree(data);
		return 0; /* not ours to read */
	}
	ml_sync_info_t info;
	const char *why;
	rc = ml_sync_info_parse(data, &info, &why);
	ldap_memfree(oid);
	ber_bvfree(data);
	if (rc < 0) {
		char *m = loom_sprintf("malformed sync info message from '%s': %s", la->cfg.ldap.uri.text, why);
		fail(la, m);
		free(m);
		return -1;
	}
	if (info.cookie.bv_val)
		ml_watermark_set(&im->wm, im->base, &info.cookie);
	if (info.kind == ML_INFO_REFRESH_PRESENT || (info.kind == ML_INFO_ID_SET && !info.refresh_deletes)) {
		ml_sync_info_release(&info);
		lost(la, "the server answered with a present phase (its session log does not reach back to the "
			 "cookie), which cannot show deletes without a full import");
		return -1;
	}
	for (size_t i = 0; info.kind == ML_INFO_ID_SET && i < info.nuuids; i++)
		loom_map_put(im->gone, info.uuids[i], 16, (void *)1);
	ml_sync_info_release(&info);
	return 0;
}

static int on_result(ldapagent_t *la, LDAPMessage *msg)
{
	ml_import_t *im = &la->imp;
	LDAP *ld = im->conn.ld;
	const loom_agentcfg_ldap_base_t *bc = ml_base(la, im->base);
	int err = 0;
	char *text = NULL, *matched = NULL;
	LDAPControl **ctrls = NULL;
	int rc = ldap_parse_result(ld, msg, &err, &matched, &text, NULL, &ctrls, 0);
	if (rc != LDAP_SUCCESS) {
		char *e = ml_ld_error(ld, rc);
		char *m = loom_sprintf("cannot read the search result of '%s': %s", bc->dn.text, e);
		fail(la, m);
		free(m);
		free(e);
		return -1;
	}
	int ret = 0;
	if (im->delta && err == LDAP_SYNC_REFRESH_REQUIRED) {
		lost(la, "the server refused the cookie (e-syncRefreshRequired)");
		ret = -1;
		goto out;
	}
	if (im->dirsync && ml_dirsync_refused(err)) {
		char *why = loom_sprintf("DirSync from the watermark's cookie was refused: %s (%d)%s%s",
		    ldap_err2string(err), err, text && text[0] ? ": " : "", text && text[0] ? text : "");
		lost(la, why);
		free(why);
		ret = -1;
		goto out;
	}
	if (im->delta && !im->dirsync && !im->usn && err == LDAP_UNWILLING_TO_PERFORM) {
		/* slapd: "consumer state is newer than provider!": a cookie from
		 * another server, or a directory restored from an older backup. */
		char *why = loom_sprintf("the server refused the cookie: %s (%d)%s%s (a cookie from another server, or a "
					 "directory restored from an older backup?)",
		    ldap_err2string(err), err, text && text[0] ? ": " : "", text && text[0] ? text : "");
		lost(la, why);
		free(why);
		ret = -1;
		goto out;
	}
	if (err != LDAP_SUCCESS) {
		char *m = loom_sprintf("search of '%s' on '%s' failed: %s (%d)%s%s", bc->dn.text, la->cfg.ldap.uri.text,
		    ldap_err2string(err), err, text && text[0] ? ": " : "", text && text[0] ? text : "");
		fail(la, m);
		free(m);
		ret = -1;
		goto out;
	}
	if (im->dirsync) {
		LDAPControl *dc = ml_find_control(ctrls, LDAP_CONTROL_X_DIRSYNC);
		struct berval cookie = { 0, NULL };
		int more = 0;
		if (dc == NULL || ldap_parse_dirsync_control(ld, dc, &more, &cookie) != LDAP_SUCCESS) {
			char *m = loom_sprintf("DirSync on '%s' at '%s': no DirSync control on the result", la->cfg.ldap.uri.text,
			    im->nc);
			fail(la, m);
			free(m);
			ret = -1;
			goto out;
		}
		dirsync_set_cookie(im, &cookie);
		ber_memfree(cookie.bv_val);
		im->msgid = -1;
		if (more)
			ret = dirsync_search(la);
		else
			im->search_done = true;
	} else if (im->delta && !im->usn) {
		LDAPControl *dc = ml_find_control(ctrls, LDAP_CONTROL_SYNC_DONE);
		struct berval cookie = { 0, NULL };
		bool refresh_deletes = false;
		const char *why = "no sync done control on the end of a content sync";
		if (dc == NULL || ml_sync_done_parse(&dc->ldctl_value, &cookie, &refresh_deletes, &why) < 0) {
			char *m = loom_sprintf("content sync of '%s' on '%s': %s", bc->dn.text, la->cfg.ldap.uri.text, why);
			fail(la, m);
			free(m);
			ret = -1;
			goto out;
		}
		if (cookie.bv_val)
			ml_watermark_set(&im->wm, im->base, &cookie);
		free(cookie.bv_val);
		ret = next_base(la);
	} else {
		LDAPControl *pc = ml_find_control(ctrls, LDAP_CONTROL_PAGEDRESULTS);
		struct berval cookie = { 0, NULL };
		ber_int_t count = 0;
		if (pc && ldap_parse_pageresponse_control(ld, pc, &count, &cookie) != LDAP_SUCCESS) {
			char *m = loom_sprintf("malformed paged results control from '%s'", la->cfg.ldap.uri.text);
			fail(la, m);
			free(m);
			ret = -1;
			goto out;
		}
		if (cookie.bv_len > 0) {
			free(im->page_cookie.bv_val);
			im->page_cookie.bv_val = loom_memdup(cookie.bv_val, cookie.bv_len);
			im->page_cookie.bv_len = cookie.bv_len;
			ber_memfree(cookie.bv_val);
			ret = start_search(la);
		} else {
			ber_memfree(cookie.bv_val);
			ret = next_base(la);
		}
	}
out:
	ldap_memfree(text);
	ldap_memfree(matched);
	ldap_controls_free(ctrls);
	return ret;
}

static void on_reference(ldapagent_t *la, LDAPMessage *msg)
{
	ml_import_t *im = &la->imp;
	char **refs = NULL;
	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_adds(&b, "the server returned a referral (not followed):");
	if (ldap_parse_reference(im->conn.ld, msg, &refs, NULL, 0) == LDAP_SUCCESS)
		for (size_t i = 0; refs && refs[i]; i++)
			loom_buf_printf(&b, " %s", refs[i]);
	ldap_memvfree((void **)refs);
	add_error(im, "referral", ml_base(la, im->base)->dn.text, loom_buf_cstr(&b));
	loom_buf_release(&b);
}

/* Moves the run on as far as credit and the server allow. */
static void pump(ldapagent_t *la)
{
	ml_import_t *im = &la->imp;
	while (im->active) {
		if (batch_full(im)) {
			if (im->credit == 0)
				break;
			flush(la);
			continue;
		}
		if (im->search_done && im->usn && !im->usn_swept) {
			char *err = NULL;
			if (ml_usn_sweep(la, &err) < 0) {
				fail(la, err);
				free(err);
				return;
			}
			im->usn_swept = true;
		}
		if (im->search_done && im->delta && !im->deletes_ready) {
			/* Gone from some base and present in none. With several
			 * bases each has its own cookie, so a change made between
			 * two bases' searches is replayed next time by the one
			 * whose cookie is older (as gone, when the entry is not
			 * in that base) and not by the other: a candidate is
			 * looked up in the bases by entryUUID first. (DirSync
			 * has one cookie: no such case.) */
			im->deletes = loom_malloc((loom_map_count(im->gone) + 1) * sizeof *im->deletes);
			size_t pos = 0;
			const void *k;
			size_t klen;
			bool check = la->cfg.ldap.bases.n > 1 && !im->dirsync;
			while (loom_map_next(im->gone, &pos, &k, &klen, NULL)) {
				if (klen != 16 || loom_map_get(im->seen, k, 16) != NULL)
					continue;
				char *err = NULL;
				int held = check ? ml_entry_in_bases(la, im->conn.ld, la->cfg.ldap.bases.n, k, &err) : 0;
				if (held < 0) {
					fail(la, err);
					free(err);
					return;
				}
				if (held == 0)
					memcpy(im->deletes[im->ndeletes++], k, 16);
			}
			im->deletes_ready = true;
		}
		if (im->deletes_pos < im->ndeletes) {
			add_delete(la, im->deletes[im->deletes_pos++], NULL);
			continue;
		}
		if (im->search_done) {
			if (im->credit == 0)
				break;
			finish(la);
			return;
		}
		LDAPMessage *msg = NULL;
		struct timeval zero = { 0, 0 };
		int rc = ldap_result(im->conn.ld, im->msgid, LDAP_MSG_ONE, &zero, &msg);
		if (rc == 0) {
			ml_conn_watch(&im->conn, true);
			return;
		}
		if (rc < 0) {
			int e = LDAP_SERVER_DOWN;
			ldap_get_option(im->conn.ld, LDAP_OPT_RESULT_CODE, &e);
			char *t = ml_ld_error(im->conn.ld, e);
			char *m = loom_sprintf("lost the connection to '%s' while reading '%s': %s", la->cfg.ldap.uri.text,
			    ml_base(la, im->base)->dn.text, t);
			fail(la, m);
			free(m);
			free(t);
			return;
		}
		im->heard_ms = loom_mono_ms();
		int r = 0;
		switch (rc) {
		case LDAP_RES_SEARCH_ENTRY:
			r = on_entry(la, msg);
			break;
		case LDAP_RES_SEARCH_REFERENCE:
			on_reference(la, msg);
			break;
		case LDAP_RES_INTERMEDIATE:
			r = on_intermediate(la, msg);
			break;
		case LDAP_RES_SEARCH_RESULT:
			r = on_result(la, msg);
			break;
		default:
			break;
		}
		ldap_msgfree(msg);
		if (r < 0)
			return;
	}
	/* Waiting for credit: stop reading; the server waits on TCP. */
	if (im->active)
		ml_conn_watch(&im->conn, false);
}

static int on_readable(ml_conn_t *c)
{
	pump(c->la);
	return 0;
}

/* The server's cookie now, for base i: a refreshOnly search without a cookie
 * that matches nothing answers with it. A server without content sync gives
 * none (a warning; delta import is then refused). -1 after failing the run. */
static int base_cookie(ldapagent_t *la, size_t i, bool *warned)
{
	ml_import_t *im = &la->imp;
	const loom_agentcfg_ldap_base_t *bc = ml_base(la, i);
	LDAPControl sync = { 0 };
	if (ml_sync_request_value(LDAP_SYNC_REFRESH_ONLY, NULL, &sync.ldctl_value) < 0) {
		fail(la, "cannot encode the content sync request");
		return -1;
	}
	sync.ldctl_oid = LDAP_CONTROL_SYNC;
	sync.ldctl_iscritical = 1;
	LDAPControl *ctrls[2] = { &sync, NULL };
	char *attrs[] = { LDAP_NO_ATTRS, NULL };
	LDAPMessage *res = NULL;
	struct timeval tv = { la->cfg.ldap.timeout_ms / 1000, (la->cfg.ldap.timeout_ms % 1000) * 1000 };
	int rc = ldap_search_ext_s(im->conn.ld, bc->dn.text, ml_scope(bc->scope),
	    "(entryUUID=00000000-0000-0000-0000-000000000000)", attrs, 1, ctrls, NULL, &tv, 1, &res);
	ber_memfree(sync.ldctl_value.bv_val);
	int err = rc;
	LDAPControl **rctrls = NULL;
	if (res && ldap_parse_result(im->conn.ld, res, &err, NULL, NULL, NULL, &rctrls, 0) != LDAP_SUCCESS)
		err = rc;
	ldap_msgfree(res);
	if (err == LDAP_UNAVAILABLE_CRITICAL_EXTENSION || err == LDAP_UNWILLING_TO_PERFORM) {
		if (!*warned)
			loom_warning("the server '%s' does not offer content sync (RFC 4533) on '%s': delta import will be "
				     "refused (enable the syncprov overlay)",
			    la->cfg.ldap.uri.text, bc->dn.text);
		*warned = true;
		ldap_controls_free(rctrls);
		return 0;
	}
	if (err != LDAP_SUCCESS) {
		char *e = ml_ld_error(im->conn.ld, err);
		char *m = loom_sprintf("cannot read the content sync cookie of '%s' on '%s': %s", bc->dn.text,
		    la->cfg.ldap.uri.text, e);
		fail(la, m);
		free(m);
		free(e);
		ldap_controls_free(rctrls);
		return -1;
	}
	LDAPControl *dc = ml_find_control(rctrls, LDAP_CONTROL_SYNC_DONE);
	struct berval cookie = { 0, NULL };
	bool rd;
	const char *why = "no sync done control";
	if (dc == NULL || ml_sync_done_parse(&dc->ldctl_value, &cookie, &rd, &why) < 0 || cookie.bv_val == NULL) {
		char *m = loom_sprintf("cannot read the content sync cookie of '%s' on '%s': %s", bc->dn.text,
		    la->cfg.ldap.uri.text, cookie.bv_val == NULL && dc ? "the server gave none" : why);
		fail(la, m);
		free(m);
		free(cookie.bv_val);
		ldap_controls_free(rctrls);
		return -1;
	}
	ml_watermark_set(&im->wm, i, &cookie);
	free(cookie.bv_val);
	ldap_controls_free(rctrls);
	return 0;
}

void ml_import_start(ldapagent_t *la, Loom__Envelope *env, const Loom__ImportRequest *rq)
{
	ml_import_t *im = &la->imp;
	if (im->active)
		loom_warning("abandoning import run=%llu for run=%llu", (unsigned long long)im->run_id,
		    (unsigned long long)rq->run_id);
	ml_import_stop(la);
	im->active = true;
	im->run_id = rq->run_id;
	im->engine = loom_strdup(env->from);
	im->delta = rq->delta;
	im->batch_size = rq->batch_size ? rq->batch_size : 500;
	im->credit = rq->credit ? rq->credit : 1;
	im->started_ms = im->heard_ms = loom_mono_ms();
	batch_new(im);
	loom_info("import started run=%llu mode=%s", (unsigned long long)rq->run_id, rq->delta ? "delta" : "full");
	size_t nb = la->cfg.ldap.bases.n;
	ml_usn_mark_t usn_mark;
	if (rq->delta) {
		const char *why;
		if (ml_watermark_decode(rq->watermark.data, rq->watermark.len, &im->wm, &why) < 0) {
			lost(la, why);
			return;
		}
		bool same = im->wm.n == nb;
		for (size_t i = 0; same && i < nb; i++)
			same = strcasecmp(im->wm.dns[i], ml_base(la, i)->dn.text) == 0;
		if (!same) {
			lost(la, "the watermark is for other bases (ldap.bases changed since the last import)");
			return;
		}
		bool ad = la->cfg.ldap.directory == LOOM_LDAP_AD;
		if (strcasecmp(la->cfg.anchor, ad ? "objectGUID" : "entryUUID") != 0) {
			char *m = loom_sprintf("delta import needs anchor %s (%s names deleted entries by it), not '%s': run "
					       "full imports",
			    ad ? "objectGUID" : "entryUUID", ad ? "DirSync" : "content sync", la->cfg.anchor);
			fail(la, m);
			free(m);
			return;
		}
		im->gone = loom_map_new();
		im->seen = loom_map_new();
		if (ad && nb && im->wm.cookies[0].bv_val) {
			int k = ml_usn_cookie_decode(&im->wm.cookies[0], &usn_mark, &why);
			if (k < 0) {
				lost(la, why);
				return;
			}
			if (k == 0 && la->cfg.ldap.ad_delta == LOOM_LDAP_AD_USN) {
				lost(la, "the watermark is a DirSync cookie and ldap.ad_delta is usn (the configuration changed)");
				return;
			}
			im->usn = k == 1;
		}
		for (size_t i = 0; i < nb; i++) {
			if (im->wm.cookies[i].bv_val == NULL) {
				char *m = ad
				    ? loom_sprintf("the last full import got no DirSync cookie for '%s': run a full import",
					  ml_base(la, i)->dn.text)
				    : loom_sprintf("the server did not offer content sync (RFC 4533) on '%s' when the last full "
						   "import ran: enable the syncprov overlay, then run a full import",
					  ml_base(la, i)->dn.text);
				fail(la, m);
				free(m);
				return;
			}
		}
	} else {
		im->wm.n = nb;
		im->wm.dns = loom_calloc(nb, sizeof *im->wm.dns);
		im->wm.cookies = loom_calloc(nb, sizeof *im->wm.cookies);
		for (size_t i = 0; i < nb; i++)
			im->wm.dns[i] = loom_strdup(ml_base(la, i)->dn.text);
	}
	char *err = NULL;
	if (ml_conn_open(la, &im->conn, &err) < 0) {
		fail(la, err);
		free(err);
		return;
	}
	im->conn.on_readable = on_readable;
	if (ml_schema_load(la, im->conn.ld, &err) < 0) {
		fail(la, err);
		free(err);
		return;
	}
	if (la->cfg.ldap.directory == LOOM_LDAP_AD) {
		if (dirsync_nc(la) < 0)
			return;
		im->dirsync = rq->delta && !im->usn;
		if (im->usn && usn_begin(la, &usn_mark) < 0)
			return;
		if (!rq->delta && ad_watermark_now(la) < 0)
			return;
	} else if (!rq->delta) {
		bool warned = false;
		for (size_t i = 0; i < nb; i++)
			if (base_cookie(la, i, &warned) < 0)
				return;
	}
	im->base = 0;
	if (start_search(la) < 0)
		return;
	pump(la);
}

void ml_import_credit(ldapagent_t *la, const Loom__ImportCredit *c)
{
	ml_import_t *im = &la->imp;
	if (!im->active || c->run_id != im->run_id)
		return;
	if (c->abort) {
		loom_info("import aborted by the engine run=%llu", (unsigned long long)im->run_id);
		ml_import_stop(la);
		return;
	}
	im->credit += c->credit;
	im->heard_ms = loom_mono_ms();
	pump(la);
}

void ml_import_tick(ldapagent_t *la)
{
	ml_import_t *im = &la->imp;
	if (!im->active || !im->conn.watched)
		return; /* idle, or waiting for the engine's credit */
	if (loom_mono_ms() - im->heard_ms > la->cfg.ldap.timeout_ms) {
		char *m = loom_sprintf("no answer from '%s' in %lld ms while reading '%s' (ldap.timeout)",
		    la->cfg.ldap.uri.text, la->cfg.ldap.timeout_ms, ml_base(la, im->base)->dn.text);
		fail(la, m);
		free(m);
	}
}
