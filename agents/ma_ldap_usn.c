/* ma_ldap_usn.c - Active Directory's delta import by uSNChanged, for an
 * account that may not use DirSync or an agent configured with
 * ldap.ad_delta: usn.
 *
 * The watermark is the DC's mark (ma_ldap_usnmark.c): the invocationId of
 * its database and its highestCommittedUSN, read from the root DSE at the
 * start of a run, before any entry (so a change made during the run is
 * seen again by the next one, never missed). A delta run from mark N with
 * the DC now at H:
 *
 *   1. each base, by pages: (&(uSNChanged>=N+1)<the base's filter>), the
 *      objects whole, sent as REPLACE, their objectGUIDs seen;
 *   2. the sweep: the naming context with the show-deleted control,
 *      (&(uSNChanged>=N+1)(uSNChanged<=H)<object classes>), objectGUIDs
 *      only: deleted objects (isDeleted, under CN=Deleted Objects), moved
 *      out of every base, or no longer matching. Those step 1 did not see
 *      are gone, and become DELETEs (ma_ldap_import.c, as for DirSync).
 *
 * The sweep stops at H: an object changed after step 1 read its base has
 * a USN above H, so it is not taken for gone; the next run, from H, reads
 * it. A different invocationId (the DC was restored from a backup, or
 * another DC answers at the uri) makes the USNs incomparable: the
 * watermark is refused and the engine goes on with a full import.
 *
 * The account must be able to read the Deleted Objects container (an
 * administrator can; others need List Contents on it): without it the
 * deletes would be missed, so the delta is refused, never guessed.
 */
#include "ma_ldap.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHOW_DELETED_OID "1.2.840.113556.1.4.417"
#define DELETED_OBJECTS_WKGUID "18e2ea80684f11d2b9aa00c04f79f805"

static struct timeval timeout(ldapagent_t *la)
{
	struct timeval tv = { la->cfg.ldap.timeout_ms / 1000, (la->cfg.ldap.timeout_ms % 1000) * 1000 };
	return tv;
}

/* The first value of attr of the only entry of a base search of dn (NULL
 * with *ret_error when there is none). */
static struct berval *read_one(ldapagent_t *la, LDAP *ld, const char *dn, const char *attr, char **ret_error)
{
	char *attrs[] = { (char *)attr, NULL };
	struct timeval tv = timeout(la);
	LDAPMessage *res = NULL;
	int rc = ldap_search_ext_s(ld, dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL, NULL, &tv, 1, &res);
	LDAPMessage *e = rc == LDAP_SUCCESS ? ldap_first_entry(ld, res) : NULL;
	struct berval **v = e ? ldap_get_values_len(ld, e, attr) : NULL;
	struct berval *copy = NULL;
	if (v && v[0]) {
		copy = loom_malloc(sizeof *copy);
		copy->bv_len = v[0]->bv_len;
		copy->bv_val = loom_strndup(v[0]->bv_val, v[0]->bv_len);
	} else {
		char *t = ml_ld_error(ld, rc == LDAP_SUCCESS ? LDAP_NO_SUCH_ATTRIBUTE : rc);
		*ret_error = loom_sprintf("cannot read %s of '%s' on '%s': %s", attr, dn[0] ? dn : "the root DSE",
		    la->cfg.ldap.uri.text, t);
		free(t);
	}
	ldap_value_free_len(v);
	ldap_msgfree(res);
	return copy;
}

static void bv_free(struct berval *b)
{
	if (b)
		free(b->bv_val);
	free(b);
}

int ml_usn_now(ldapagent_t *la, LDAP *ld, ml_usn_mark_t *ret, char **ret_error)
{
	struct berval *usn = read_one(la, ld, "", "highestCommittedUSN", ret_error);
	if (usn == NULL)
		return -1;
	char *end;
	unsigned long long u = strtoull(usn->bv_val, &end, 10);
	if (*end || usn->bv_len == 0) {
		*ret_error = loom_sprintf("the root DSE of '%s' has highestCommittedUSN '%s', not a number",
		    la->cfg.ldap.uri.text, usn->bv_val);
		bv_free(usn);
		return -1;
	}
	bv_free(usn);
	struct berval *ds = read_one(la, ld, "", "dsServiceName", ret_error);
	if (ds == NULL)
		return -1;
	struct berval *inv = read_one(la, ld, ds->bv_val, "invocationId", ret_error);
	if (inv && inv->bv_len != 16) {
		*ret_error = loom_sprintf("invocationId of '%s' on '%s' is %lu bytes, not 16", ds->bv_val,
		    la->cfg.ldap.uri.text, (unsigned long)inv->bv_len);
		bv_free(inv);
		inv = NULL;
	}
	bv_free(ds);
	if (inv == NULL)
		return -1;
	memcpy(ret->invocation, inv->bv_val, 16);
	ret->usn = u;
	bv_free(inv);
	return 0;
}

int ml_usn_deleted_readable(ldapagent_t *la, LDAP *ld, const char *nc, char **ret_error)
{
	LDAPControl sd = { .ldctl_oid = SHOW_DELETED_OID, .ldctl_iscritical = 1 };
	LDAPControl *ctrls[] = { &sd, NULL };
	char *attrs[] = { LDAP_NO_ATTRS, NULL };
	char *dn = loom_sprintf("<WKGUID=" DELETED_OBJECTS_WKGUID ",%s>", nc);
	struct timeval tv = timeout(la);
	LDAPMessage *res = NULL;
	int rc = ldap_search_ext_s(ld, dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 1, ctrls, NULL, &tv, 1, &res);
	bool found = rc == LDAP_SUCCESS && ldap_first_entry(ld, res) != NULL;
	ldap_msgfree(res);
	free(dn);
	if (found)
		return 0;
	char *t = ml_ld_error(ld, rc == LDAP_SUCCESS ? LDAP_NO_SUCH_OBJECT : rc);
	*ret_error = loom_sprintf("cannot read the Deleted Objects container of '%s' on '%s' with the show-deleted control "
				  "(%s): a uSNChanged delta finds deletes there; grant '%s' List Contents on it, or run full "
				  "imports",
	    nc, la->cfg.ldap.uri.text, t, la->cfg.ldap.bind_dn ? la->cfg.ldap.bind_dn : "the agent's account");
	free(t);
	return -1;
}

int ml_usn_search(ldapagent_t *la, char **ret_error)
{
	ml_import_t *im = &la->imp;
	const loom_agentcfg_ldap_base_t *bc = ml_base(la, im->base);
	LDAPControl *page = NULL;
	int rc = ldap_create_page_control(im->conn.ld, (ber_int_t)la->cfg.ldap.page_size,
	    im->page_cookie.bv_val ? &im->page_cookie : NULL, 1, &page);
	if (rc != LDAP_SUCCESS) {
		*ret_error = loom_strdup("cannot encode the paged results control");
		return -1;
	}
	LDAPControl *ctrls[] = { page, NULL };
	char *filter = loom_sprintf("(&(uSNChanged>=%llu)%s)", (unsigned long long)im->usn_from, la->filters[im->base]);
	rc = ldap_search_ext(im->conn.ld, bc->dn.text, ml_scope(bc->scope), filter, la->attrs, 0, ctrls, NULL, NULL,
	    LDAP_NO_LIMIT, &im->msgid);
	free(filter);
	ldap_control_free(page);
	if (rc != LDAP_SUCCESS) {
		char *e = ml_ld_error(im->conn.ld, rc);
		*ret_error = loom_sprintf("cannot search '%s' on '%s' for uSNChanged >= %llu: %s", bc->dn.text,
		    la->cfg.ldap.uri.text, (unsigned long long)im->usn_from, e);
		free(e);
		return -1;
	}
	return 0;
}

void ml_usn_seen(ldapagent_t *la, LDAP *ld, LDAPMessage *e, Loom__ImportObject *o)
{
	o->change = LOOM__IMPORT_OBJECT__CHANGE__REPLACE;
	struct berval **guid = ldap_get_values_len(ld, e, "objectGUID");
	if (guid && guid[0] && guid[0]->bv_len == 16)
		loom_map_put(la->imp.seen, guid[0]->bv_val, 16, (void *)1);
	ldap_value_free_len(guid);
}

int ml_usn_sweep(ldapagent_t *la, char **ret_error)
{
	ml_import_t *im = &la->imp;
	LDAP *ld = im->conn.ld;
	loom_buf_t f = LOOM_BUF_INIT;
	loom_buf_printf(&f, "(&(uSNChanged>=%llu)(uSNChanged<=%llu)", (unsigned long long)im->usn_from,
	    (unsigned long long)im->usn_to);
	const loom_agentcfg_ldap_class_t *cl = la->cfg.ldap.object_classes.v;
	if (la->cfg.ldap.object_classes.n) {
		loom_buf_adds(&f, "(|");
		for (size_t i = 0; i < la->cfg.ldap.object_classes.n; i++)
			loom_buf_printf(&f, "(objectClass=%s)", cl[i].object_class);
		loom_buf_adds(&f, ")");
	}
	loom_buf_adds(&f, ")");
	char *attrs[] = { "objectGUID", NULL };
	struct berval cookie = { 0, NULL };
	int ret = 0;
	for (;;) {
		LDAPControl *page = NULL;
		if (ldap_create_page_control(ld, (ber_int_t)la->cfg.ldap.page_size, cookie.bv_val ? &cookie : NULL, 1, &page) !=
		    LDAP_SUCCESS) {
			*ret_error = loom_strdup("cannot encode the paged results control");
			ret = -1;
			break;
		}
		LDAPControl sd = { .ldctl_oid = SHOW_DELETED_OID, .ldctl_iscritical = 1 };
		LDAPControl *ctrls[] = { page, &sd, NULL };
		struct timeval tv = timeout(la);
		LDAPMessage *res = NULL;
		int rc = ldap_search_ext_s(ld, im->nc, LDAP_SCOPE_SUBTREE, loom_buf_cstr(&f), attrs, 0, ctrls, NULL, &tv,
		    LDAP_NO_LIMIT, &res);
		ldap_control_free(page);
		int err = rc;
		LDAPControl **rctrls = NULL;
		for (LDAPMessage *m = ldap_first_message(ld, res); m; m = ldap_next_message(ld, m)) {
			int t = ldap_msgtype(m);
			if (t == LDAP_RES_SEARCH_ENTRY) {
				struct berval **guid = ldap_get_values_len(ld, m, "objectGUID");
				if (guid && guid[0] && guid[0]->bv_len == 16 &&
				    loom_map_get(im->seen, guid[0]->bv_val, 16) == NULL)
					loom_map_put(im->gone, guid[0]->bv_val, 16, (void *)1);
				ldap_value_free_len(guid);
			} else if (t == LDAP_RES_SEARCH_RESULT) {
				if (ldap_parse_result(ld, m, &err, NULL, NULL, NULL, &rctrls, 0) != LDAP_SUCCESS)
					err = LDAP_DECODING_ERROR;
			}
			/* continuation references (other naming contexts) are not ours */
		}
		ldap_msgfree(res);
		free(cookie.bv_val);
		cookie.bv_val = NULL;
		cookie.bv_len = 0;
		if (err != LDAP_SUCCESS) {
			char *t = ml_ld_error(ld, err);
			*ret_error = loom_sprintf("cannot read the objects of '%s' changed since USN %llu (deleted ones "
						  "included) on '%s': %s",
			    im->nc, (unsigned long long)im->usn_from, la->cfg.ldap.uri.text, t);
			free(t);
			ldap_controls_free(rctrls);
			ret = -1;
			break;
		}
		LDAPControl *pc = NULL;
		for (size_t i = 0; rctrls && rctrls[i]; i++)
			if (strcmp(rctrls[i]->ldctl_oid, LDAP_CONTROL_PAGEDRESULTS) == 0)
				pc = rctrls[i];
		struct berval next = { 0, NULL };
		ber_int_t count = 0;
		if (pc && ldap_parse_pageresponse_control(ld, pc, &count, &next) == LDAP_SUCCESS && next.bv_len > 0) {
			cookie.bv_val = loom_memdup(next.bv_val, next.bv_len);
			cookie.bv_len = next.bv_len;
		}
		ber_memfree(next.bv_val);
		ldap_controls_free(rctrls);
		if (cookie.bv_val == NULL)
			break;
	}
	free(cookie.bv_val);
	loom_buf_release(&f);
	return ret;
}
