/* ma_ldap_conn.c - connections to the directory and the translation of
 * entries and values between LDAP and the agent protocol.
 *
 * Security: a connection to ldaps:// or with StartTLS always verifies the
 * server's certificate and name (LDAP_OPT_X_TLS_DEMAND, CA from
 * ldap.ca_file or the system's); there is no switch to turn that off. The
 * password is read from password_file at each bind, used, and wiped; it is
 * never part of a message.
 */
#include "ma_ldap.h"
#include "loom_alloc.h"
#include "loom_attrs.h"
#include "loom_buf.h"
#include "loom_daemon.h"
#include "loom_keyset.h"
#include "loom_log.h"
#include "loom_text.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

char *ml_ld_error(LDAP *ld, int rc)
{
	char *diag = NULL;
	if (ld)
		ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
	/* libldap leaves "(unknown error code)" where it has nothing to add. */
	if (diag && strcmp(diag, "(unknown error code)") == 0)
		diag[0] = '\0';
	char *m = diag && diag[0] ? loom_sprintf("%s (%d): %s", ldap_err2string(rc), rc, diag)
				  : loom_sprintf("%s (%d)", ldap_err2string(rc), rc);
	ldap_memfree(diag);
	return m;
}

/* Reads the password file: the first line, without its end. */
static int read_password(const char *path, struct berval *ret, char **ret_error)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*ret_error = loom_sprintf("cannot read password_file '%s': %s", path, strerror(errno));
		return -1;
	}
	size_t cap = 256, len = 0;
	char *buf = sodium_malloc(cap);
	if (buf == NULL) {
		close(fd);
		*ret_error = loom_strdup("cannot allocate guarded memory for the password");
		return -1;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*ret_error = loom_sprintf("cannot read password_file '%s': %s", path, strerror(errno));
			close(fd);
			sodium_free(buf);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == cap - 1) {
			*ret_error = loom_sprintf("password_file '%s' is over %zu bytes", path, cap - 2);
			close(fd);
			sodium_free(buf);
			return -1;
		}
	}
	close(fd);
	char *nl = memchr(buf, '\n', len);
	if (nl)
		len = (size_t)(nl - buf);
	if (len && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	ret->bv_val = buf;
	ret->bv_len = len;
	return 0;
}

/* Opens STATE_DIR/secrets/AGENT/KEY with STATE_DIR/keyset into guarded
 * memory (sodium_free wipes it). The key set is read at each bind and
 * dropped at once: the agent holds no key between binds. */
static int read_secret(ldapagent_t *la, const char *key, struct berval *ret, char **ret_error)
{
	const char *sd = loom_daemon_config(la->d)->state_dir;
	char *kpath = loom_sprintf("%s/keyset", sd), *spath = loom_sprintf("%s/secrets/%s/%s", sd, la->name, key);
	loom_keyset_t *ks = NULL;
	char *err = NULL, *plain = NULL;
	size_t len = 0;
	int rc = -1;
	char line[4096];
	ssize_t n = -1;
	int fd = open(spath, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, line, sizeof(line) - 1);
		close(fd);
	}
	if (n <= 0) {
		*ret_error = loom_sprintf("cannot read secret '%s' (set it with `loomctl secret set %s %s`): %s", spath,
		    la->name, key, n == 0 ? "empty" : strerror(errno));
		goto out;
	}
	line[n] = '\0';
	if (loom_keyset_load(kpath, &ks, &err) < 0 || loom_secret_open(ks, line, &plain, &len, &err) < 0) {
		*ret_error = loom_sprintf("cannot open secret '%s': %s", spath, err);
		free(err);
		goto out;
	}
	ret->bv_val = plain;
	ret->bv_len = len;
	rc = 0;
out:
	loom_keyset_destroy(&ks);
	free(kpath);
	free(spath);
	return rc;
}

static int set_tls_options(ldapagent_t *la, LDAP *ld, char **ret_error)
{
	int demand = LDAP_OPT_X_TLS_DEMAND, zero = 0, rc;
	if ((rc = ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand)) != LDAP_OPT_SUCCESS) {
		*ret_error = loom_sprintf("cannot require a verified server certificate: %s", ldap_err2string(rc));
		return -1;
	}
	if (la->cfg.ldap.ca_file &&
	    (rc = ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, la->cfg.ldap.ca_file)) != LDAP_OPT_SUCCESS) {
		*ret_error = loom_sprintf("cannot use ca_file '%s': %s", la->cfg.ldap.ca_file, ldap_err2string(rc));
		return -1;
	}
	/* Per-handle TLS options take effect in a new context. */
	if ((rc = ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero)) != LDAP_OPT_SUCCESS) {
		*ret_error = loom_sprintf("cannot set up TLS%s%s: %s", la->cfg.ldap.ca_file ? " with ca_file " : "",
		    la->cfg.ldap.ca_file ? la->cfg.ldap.ca_file : "", ldap_err2string(rc));
		return -1;
	}
	return 0;
}

int ml_conn_open(ldapagent_t *la, ml_conn_t *c, char **ret_error)
{
	const loom_agentcfg_ldap_t *lc = &la->cfg.ldap;
	const char *uri = lc->uri.text;
	LDAP *ld = NULL;
	int rc = ldap_initialize(&ld, uri);
	if (rc != LDAP_SUCCESS) {
		*ret_error = loom_sprintf("cannot use uri '%s': %s", uri, ldap_err2string(rc));
		return -1;
	}
	int v3 = LDAP_VERSION3;
	struct timeval tv = { lc->timeout_ms / 1000, (lc->timeout_ms % 1000) * 1000 };
	ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
	ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF); /* referrals are reported, never chased */
	ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
	ldap_set_option(ld, LDAP_OPT_RESTART, LDAP_OPT_ON);
	bool tls = lc->starttls || strncasecmp(uri, "ldaps://", 8) == 0;
	if (tls && set_tls_options(la, ld, ret_error) < 0)
		goto fail;
	if (lc->starttls) {
		rc = ldap_start_tls_s(ld, NULL, NULL);
		if (rc != LDAP_SUCCESS) {
			char *m = ml_ld_error(ld, rc);
			*ret_error = loom_sprintf("cannot start TLS with '%s': %s", uri, m);
			free(m);
			goto fail;
		}
	}
	struct berval cred = { 0, NULL };
	bool guarded = false;
	const char *mech = LDAP_SASL_SIMPLE, *dn = NULL;
	switch (lc->bind) {
	case LOOM_LDAP_BIND_SIMPLE:
		dn = lc->bind_dn;
		if (lc->password_file) {
			if (read_password(lc->password_file, &cred, ret_error) < 0)
				goto fail;
			guarded = true;
		} else if (lc->password_secret) {
			if (read_secret(la, lc->password_secret, &cred, ret_error) < 0)
				goto fail;
			guarded = true;
		} else {
			cred.bv_val = lc->password;
			cred.bv_len = strlen(lc->password);
		}
		break;
	case LOOM_LDAP_BIND_SASL_EXTERNAL:
		/* EXTERNAL needs no SASL library: the server takes the identity
		 * from the transport (ldapi peer credentials, a TLS client certificate). */
		mech = "EXTERNAL";
		cred.bv_val = (char *)""; /* an empty initial response, not none */
		break;
	default:
		break;
	}
	if (lc->bind != LOOM_LDAP_BIND_NONE) {
		rc = ldap_sasl_bind_s(ld, dn, mech, &cred, NULL, NULL, NULL);
		/* EXTERNAL: the server may answer the empty initial response with
		 * an empty challenge; the empty response completes it (RFC 4422 A). */
		for (int step = 0; rc == LDAP_SASL_BIND_IN_PROGRESS && step < 2; step++)
			rc = ldap_sasl_bind_s(ld, dn, mech, &cred, NULL, NULL, NULL);
		if (guarded)
			sodium_free(cred.bv_val); /* zeroes it */
		if (rc != LDAP_SUCCESS) {
			char *m = ml_ld_error(ld, rc);
			const char *hint = tls && !lc->starttls && (rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR)
			    ? " (with ldaps the server's certificate must verify against ca_file and name the host)" : "";
			if (lc->bind == LOOM_LDAP_BIND_SIMPLE)
				*ret_error = loom_sprintf("cannot bind to '%s' as '%s': %s%s", uri, dn, m, hint);
			else
				*ret_error = loom_sprintf("cannot bind to '%s' with SASL EXTERNAL: %s%s", uri, m, hint);
			free(m);
			goto fail;
		}
	} else {
		/* Anonymous: nothing to send; make the connection now so that an
		 * unreachable server is reported here, not by the first search. */
		rc = ldap_connect(ld);
		if (rc != LDAP_SUCCESS) {
			char *m = ml_ld_error(ld, rc);
			*ret_error = loom_sprintf("cannot connect to '%s': %s", uri, m);
			free(m);
			goto fail;
		}
	}
	c->ld = ld;
	c->la = la;
	c->fd = -1;
	c->watched = false;
	ldap_get_option(ld, LDAP_OPT_DESC, &c->fd);
	return 0;
fail:
	ldap_unbind_ext_s(ld, NULL, NULL);
	return -1;
}

static int on_fd(loom_loop_t *loop, void *arg)
{
	(void)loop;
	ml_conn_t *c = arg;
	if (c->on_readable)
		(void)c->on_readable(c);
	return 0;
}

void ml_conn_watch(ml_conn_t *c, bool on)
{
	if (c->ld == NULL || c->fd < 0 || c->watched == on)
		return;
	loom_loop_t *loop = loom_daemon_loop(c->la->d);
	if (on)
		loom_loop_add_fd(loop, c->fd, on_fd, c);
	else
		loom_loop_remove_fd(loop, c->fd);
	c->watched = on;
}

void ml_conn_close(ml_conn_t *c)
{
	if (c->ld == NULL)
		return;
	ml_conn_watch(c, false);
	ldap_unbind_ext_s(c->ld, NULL, NULL);
	c->ld = NULL;
	c->fd = -1;
}

/* ---- where an entry is ------------------------------------------------------------- */

int ml_scope(int cfg_scope)
{
	static const int scopes[] = { LDAP_SCOPE_SUBTREE, LDAP_SCOPE_ONELEVEL, LDAP_SCOPE_BASE };
	return scopes[cfg_scope];
}

const loom_agentcfg_ldap_base_t *ml_base(const ldapagent_t *la, size_t i)
{
	return &((const loom_agentcfg_ldap_base_t *)la->cfg.ldap.bases.v)[i];
}

LDAPControl *ml_find_control(LDAPControl **ctrls, const char *oid)
{
	for (size_t i = 0; ctrls && ctrls[i]; i++)
		if (strcmp(ctrls[i]->ldctl_oid, oid) == 0)
			return ctrls[i];
	return NULL;
}

/* Whether the entry uuid is in a base other than skip (a delete from one
 * base's search may be a move), matching its filter: 1 yes, 0 no, -1
 * cannot tell (error in *ret_error). skip = number of bases: any base. */
int ml_entry_in_bases(ldapagent_t *la, LDAP *ld, size_t skip, const uint8_t uuid[16], char **ret_error)
{
	char t[37];
	ml_uuid_text(uuid, false, t);
	struct timeval tv = { la->cfg.ldap.timeout_ms / 1000, (la->cfg.ldap.timeout_ms % 1000) * 1000 };
	for (size_t i = 0; i < la->cfg.ldap.bases.n; i++) {
		if (i == skip)
			continue;
		const loom_agentcfg_ldap_base_t *bc = ml_base(la, i);
		char *f = loom_sprintf("(&(entryUUID=%s)%s)", t, la->filters[i]);
		char *attrs[] = { LDAP_NO_ATTRS, NULL };
		LDAPMessage *res = NULL;
		int rc = ldap_search_ext_s(ld, bc->dn.text, ml_scope(bc->scope), f, attrs, 1, NULL, NULL, &tv, 1, &res);
		free(f);
		int n = rc == LDAP_SUCCESS || rc == LDAP_SIZELIMIT_EXCEEDED ? ldap_count_entries(ld, res) : -1;
		ldap_msgfree(res);
		if (rc == LDAP_NO_SUCH_OBJECT)
			continue;
		if (n < 0) {
			char *e = ml_ld_error(ld, rc);
			*ret_error = loom_sprintf("cannot check whether a deleted entry moved to '%s': %s", bc->dn.text, e);
			free(e);
			return -1;
		}
		if (n > 0)
			return 1;
	}
	return 0;
}

/* ---- entries -> objects ------------------------------------------------------------- */

static bool in_list(const loom_cfg_strlist_t *l, const char *name, size_t len)
{
	for (size_t i = 0; i < l->n; i++)
		if (strlen(l->v[i]) == len && strncasecmp(l->v[i], name, len) == 0)
			return true;
	return false;
}

static Loom__Value *value_new(int kind, const char *data, size_t len)
{
	Loom__Value *v = loom_malloc(sizeof *v);
	loom__value__init(v);
	if (kind == LOOM__VALUE__V_BIN) {
		v->v_case = LOOM__VALUE__V_BIN;
		v->bin.len = len;
		v->bin.data = loom_memdup(data, len ? len : 1);
	} else {
		v->v_case = kind;
		char *s = loom_strndup(data, len);
		if (kind == LOOM__VALUE__V_REF)
			v->ref = s;
		else
			v->str = s;
	}
	return v;
}

/* The type of entries with these objectClass values (BerVarray form). */
static const char *type_of(ldapagent_t *la, const struct berval *classes)
{
	const loom_agentcfg_ldap_class_t *m = la->cfg.ldap.object_classes.v;
	if (la->cfg.ldap.object_classes.n == 0)
		return la->cfg.object_type;
	for (size_t i = 0; i < la->cfg.ldap.object_classes.n; i++)
		for (size_t k = 0; classes && classes[k].bv_val; k++)
			if (strlen(m[i].object_class) == classes[k].bv_len &&
			    strncasecmp(m[i].object_class, classes[k].bv_val, classes[k].bv_len) == 0)
				return m[i].type;
	return NULL;
}

/* One pass over the entry's BER (ldap_get_attribute_ber): values are read
 * in place and copied once, into the object. */
Loom__ImportObject *ml_entry_object(ldapagent_t *la, LDAP *ld, LDAPMessage *e, char **ret_error)
{
	BerElement *ber = NULL;
	struct berval dn = { 0, NULL };
	if (ldap_get_dn_ber(ld, e, &ber, &dn) != LDAP_SUCCESS || dn.bv_val == NULL) {
		if (ber)
			ber_free(ber, 0);
		*ret_error = loom_strdup("an entry without a DN");
		return NULL;
	}
	Loom__ImportObject *o = loom_malloc(sizeof *o);
	loom__import_object__init(o);
	o->change = LOOM__IMPORT_OBJECT__CHANGE__FULL;
	o->dn = loom_strndup(dn.bv_val, dn.bv_len);
	const char *anchor = la->cfg.anchor;
	size_t cap = 0;
	struct berval name;
	BerVarray vals = NULL;
	while (ldap_get_attribute_ber(ld, e, ber, &name, &vals) == LDAP_SUCCESS && name.bv_val) {
		size_t nv = 0;
		while (vals && vals[nv].bv_val)
			nv++;
		char *a = loom_strndup(name.bv_val, name.bv_len);
		size_t alen = name.bv_len;
		const char *semi = strchr(a, ';');
		size_t base_len = semi ? (size_t)(semi - a) : alen;
		if (o->object_type[0] == '\0' && strcasecmp(a, "objectClass") == 0) {
			const char *t = type_of(la, vals);
			if (t)
				loom_pb_str_set(&o->object_type, t);
		}
		if (!la->dn_anchor && nv > 0 && o->anchor[0] == '\0' && strcasecmp(a, anchor) == 0) {
			if (la->cfg.ldap.directory == LOOM_LDAP_AD && strcasecmp(anchor, "objectGUID") == 0) {
				if (vals[0].bv_len == 16) {
					char t[37];
					ml_uuid_text((const uint8_t *)vals[0].bv_val, true, t);
					loom_pb_str_set(&o->anchor, t);
				}
			} else if (loom_utf8_text(vals[0].bv_val, vals[0].bv_len)) {
				char *t = loom_strndup(vals[0].bv_val, vals[0].bv_len);
				loom_pb_str_set(&o->anchor, t);
				free(t);
			}
			/* The anchor is the object's name, not one of its attributes,
			 * unless the configuration lists it. */
			if (!in_list(&la->cfg.ldap.attributes, a, alen))
				goto next;
		}
		if (nv > 0) {
			int kind = in_list(&la->cfg.references, a, base_len) ? LOOM__VALUE__V_REF : LOOM__VALUE__V_STR;
			bool bin = in_list(&la->cfg.ldap.binary, a, base_len) || (semi && strcasecmp(semi, ";binary") == 0) ||
			    (la->schema && ml_schema_binary(la->schema, a, alen));
			if (o->n_attrs == cap) {
				cap = cap ? cap * 2 : 16;
				o->attrs = loom_realloc(o->attrs, cap * sizeof *o->attrs);
			}
			Loom__Attr *at = loom_malloc(sizeof *at);
			loom__attr__init(at);
			at->name = a;
			a = NULL;
			at->values = loom_malloc(nv * sizeof *at->values);
			for (size_t i = 0; i < nv; i++) {
				int k = kind;
				if (bin || (kind == LOOM__VALUE__V_STR &&
					       !loom_utf8_text(vals[i].bv_val, vals[i].bv_len)))
					k = LOOM__VALUE__V_BIN;
				at->values[at->n_values++] = value_new(k, vals[i].bv_val, vals[i].bv_len);
			}
			o->attrs[o->n_attrs++] = at;
		}
	next:
		free(a);
		ber_memfree(vals);
		vals = NULL;
	}
	ber_memfree(vals);
	ber_free(ber, 0);
	if (la->dn_anchor)
		loom_pb_str_set(&o->anchor, o->dn);
	if (o->anchor[0] == '\0') {
		*ret_error = loom_sprintf("the entry has no usable value for the anchor attribute '%s'", anchor);
		loom__import_object__free_unpacked(o, NULL);
		return NULL;
	}
	if (o->object_type[0] == '\0') {
		if (la->cfg.ldap.object_classes.n) {
			*ret_error = loom_strdup("the entry has none of the object classes in ldap.object_classes");
			loom__import_object__free_unpacked(o, NULL);
			return NULL;
		}
		loom_pb_str_set(&o->object_type, la->cfg.object_type);
	}
	return o;
}

/* ---- values -> LDAP ----------------------------------------------------------------- */

void ml_value_ber(const Loom__Value *v, struct berval *ret)
{
	char *s;
	switch (v->v_case) {
	case LOOM__VALUE__V_STR:
		s = loom_strdup(v->str);
		break;
	case LOOM__VALUE__V_REF:
		s = loom_strdup(v->ref);
		break;
	case LOOM__VALUE__V_BIN:
		ret->bv_len = v->bin.len;
		ret->bv_val = loom_memdup(v->bin.data, v->bin.len ? v->bin.len : 1);
		return;
	case LOOM__VALUE__V_INT:
		s = loom_sprintf("%lld", (long long)v->int_);
		break;
	case LOOM__VALUE__V_BOOL:
		s = loom_strdup(v->bool_ ? "TRUE" : "FALSE");
		break;
	case LOOM__VALUE__V_TIME: {
		/* GeneralizedTime (RFC 4517 3.3.13), UTC. */
		time_t t = (time_t)(v->time / 1000000);
		long long us = v->time % 1000000;
		if (us < 0) {
			us += 1000000;
			t--;
		}
		struct tm tm;
		gmtime_r(&t, &tm);
		char b[64];
		size_t n = strftime(b, sizeof b, "%Y%m%d%H%M%S", &tm);
		if (us)
			snprintf(b + n, sizeof b - n, ".%06lldZ", us);
		else
			snprintf(b + n, sizeof b - n, "Z");
		s = loom_strdup(b);
		break;
	}
	default:
		s = loom_strdup("");
		break;
	}
	ret->bv_val = s;
	ret->bv_len = strlen(s);
}

/* ---- schema ------------------------------------------------------------------------- */

/* The values of attr of the single entry of a base search, or NULL. */
static struct berval **base_values(LDAP *ld, const char *dn, const char *filter, char **attrs, const char *attr,
    long long timeout_ms, int *ret_rc)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	LDAPMessage *res = NULL;
	*ret_rc = ldap_search_ext_s(ld, dn, LDAP_SCOPE_BASE, filter, attrs, 0, NULL, NULL, &tv, 1, &res);
	struct berval **vals = NULL;
	LDAPMessage *e = *ret_rc == LDAP_SUCCESS ? ldap_first_entry(ld, res) : NULL;
	if (e)
		vals = ldap_get_values_len(ld, e, attr);
	ldap_msgfree(res);
	return vals;
}

static int check_names(const ml_schema_t *s, const char *sdn, const char *path, const char *key,
    const loom_cfg_strlist_t *names, loom_buf_t *b)
{
	int bad = 0;
	for (size_t i = 0; i < names->n; i++) {
		const char *n = names->v[i];
		if (strcmp(n, "*") == 0 || strcmp(n, "+") == 0 || strcmp(n, "1.1") == 0)
			continue;
		if (!ml_schema_has_attr(s, n, strlen(n))) {
			loom_buf_printf(b, "%s%s: key '%s': '%s' is not an attribute type of the server's schema (%s)",
			    b->len ? "; " : "", path, key, n, sdn);
			bad++;
		}
	}
	return bad;
}

int ml_schema_load(ldapagent_t *la, LDAP *ld, char **ret_error)
{
	int rc;
	char *rattrs[] = { "subschemaSubentry", NULL };
	struct berval **v = base_values(ld, "", "(objectClass=*)", rattrs, "subschemaSubentry", la->cfg.ldap.timeout_ms, &rc);
	char *sdn = v && v[0] ? loom_strndup(v[0]->bv_val, v[0]->bv_len) : loom_strdup("cn=Subschema");
	ldap_value_free_len(v);
	char *sattrs[] = { "attributeTypes", "objectClasses", NULL };
	struct timeval tv = { la->cfg.ldap.timeout_ms / 1000, (la->cfg.ldap.timeout_ms % 1000) * 1000 };
	LDAPMessage *res = NULL;
	rc = ldap_search_ext_s(ld, sdn, LDAP_SCOPE_BASE, "(objectClass=subschema)", sattrs, 0, NULL, NULL, &tv, 1, &res);
	LDAPMessage *e = rc == LDAP_SUCCESS ? ldap_first_entry(ld, res) : NULL;
	if (e == NULL) {
		char *m = ml_ld_error(ld, rc == LDAP_SUCCESS ? LDAP_NO_SUCH_OBJECT : rc);
		loom_warning("cannot read the schema of '%s' from '%s': %s; names in the configuration are not checked and "
			     "binary attributes are only those listed in ldap.binary or not UTF-8",
		    la->cfg.ldap.uri.text, sdn, m);
		free(m);
		ldap_msgfree(res);
		free(sdn);
		ml_schema_destroy(&la->schema);
		return 0;
	}
	ml_schema_t *s = ml_schema_new();
	size_t bad = 0;
	const char *why = NULL;
	struct berval **at = ldap_get_values_len(ld, e, "attributeTypes");
	for (size_t i = 0; at && at[i]; i++) {
		char *def = loom_strndup(at[i]->bv_val, at[i]->bv_len);
		if (ml_schema_add_attr(s, def, &why) < 0)
			bad++;
		free(def);
	}
	ldap_value_free_len(at);
	struct berval **oc = ldap_get_values_len(ld, e, "objectClasses");
	for (size_t i = 0; oc && oc[i]; i++) {
		char *def = loom_strndup(oc[i]->bv_val, oc[i]->bv_len);
		if (ml_schema_add_class(s, def, &why) < 0)
			bad++;
		free(def);
	}
	ldap_value_free_len(oc);
	ldap_msgfree(res);
	if (bad)
		loom_warning("%zu schema definitions of '%s' do not parse (last: %s); they are left out", bad, sdn, why);
	ml_schema_resolve(s);
	/* The names the configuration uses. */
	const char *path = la->cfg.path;
	loom_buf_t b = LOOM_BUF_INIT;
	int errs = check_names(s, sdn, path, "ldap.attributes", &la->cfg.ldap.attributes, &b) +
	    check_names(s, sdn, path, "references", &la->cfg.references, &b) +
	    check_names(s, sdn, path, "ldap.binary", &la->cfg.ldap.binary, &b);
	if (!la->dn_anchor && !ml_schema_has_attr(s, la->cfg.anchor, strlen(la->cfg.anchor))) {
		loom_buf_printf(&b, "%s%s: key 'anchor': '%s' is not an attribute type of the server's schema (%s)",
		    b.len ? "; " : "", path, la->cfg.anchor, sdn);
		errs++;
	}
	const loom_agentcfg_ldap_class_t *cl = la->cfg.ldap.object_classes.v;
	for (size_t i = 0; i < la->cfg.ldap.object_classes.n; i++)
		if (!ml_schema_has_class(s, cl[i].object_class)) {
			loom_buf_printf(&b, "%s%s: key 'ldap.object_classes[%zu].object_class': '%s' is not an object class of the server's schema (%s)",
			    b.len ? "; " : "", path, i, cl[i].object_class, sdn);
			errs++;
		}
	free(sdn);
	ml_schema_destroy(&la->schema);
	la->schema = s;
	if (errs) {
		*ret_error = loom_buf_steal(&b);
		return -1;
	}
	loom_buf_release(&b);
	return 0;
}

int ml_find_entry(ldapagent_t *la, LDAP *ld, const char *filter, const char *what, char **ret_dn,
    ml_find_fail_t *ret_fail)
{
	struct timeval tv = { la->cfg.ldap.timeout_ms / 1000, (la->cfg.ldap.timeout_ms % 1000) * 1000 };
	char *attrs[] = { LDAP_NO_ATTRS, NULL };
	memset(ret_fail, 0, sizeof *ret_fail);
	for (size_t i = 0; i < la->cfg.ldap.bases.n; i++) {
		const loom_agentcfg_ldap_base_t *bc = ml_base(la, i);
		LDAPMessage *res = NULL;
		int rc = ldap_search_ext_s(ld, bc->dn.text, ml_scope(bc->scope), filter, attrs, 1, NULL, NULL, &tv, 2, &res);
		LDAPMessage *e = rc == LDAP_SUCCESS || rc == LDAP_SIZELIMIT_EXCEEDED ? ldap_first_entry(ld, res) : NULL;
		if (e && ldap_next_entry(ld, e)) {
			ldap_msgfree(res);
			ret_fail->code = "ambiguous";
			ret_fail->message = loom_sprintf("more than one entry under '%s' has %s", bc->dn.text, what);
			return 0;
		}
		if (e) {
			char *d = ldap_get_dn(ld, e);
			*ret_dn = loom_strdup(d);
			ldap_memfree(d);
			ldap_msgfree(res);
			return 1;
		}
		ldap_msgfree(res);
		if (rc != LDAP_SUCCESS && rc != LDAP_NO_SUCH_OBJECT) {
			char *t = ml_ld_error(ld, rc);
			ret_fail->code = "search-failed";
			ret_fail->rc = rc;
			ret_fail->retryable = ml_result_retryable(rc);
			ret_fail->message = loom_sprintf("cannot look up %s under '%s' on '%s': %s", what, bc->dn.text,
			    la->cfg.ldap.uri.text, t);
			free(t);
			return 0;
		}
	}
	ret_fail->code = "no-such-object";
	ret_fail->rc = LDAP_NO_SUCH_OBJECT;
	ret_fail->message = loom_sprintf("no entry with %s under the bases of agent '%s'", what, la->name);
	return 0;
}
