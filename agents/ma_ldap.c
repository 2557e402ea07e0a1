/* ma_ldap.c - loom-ma-ldap: a management agent whose connected system is an
 * LDAP directory. One process per agent: `loom-ma-ldap --agent people` reads
 * config/agents/people.yaml (type: ldap) and registers as "ma.people". */
#include "ma_ldap.h"
#include "loom_agentproto.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_envelope.h"
#include "loom_log.h"
#include "sspr.pb-c.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static ldapagent_t the_agent;

static int set_agent(loom_daemon_t *d, const char *v, const char **error_r)
{
	return loom_agent_name_option(d, &the_agent.name, v, error_r);
}

/* "FILE:LINE:COL: key 'KEY': bad value 'V': WHY" at a text value, col_off bytes in. */
static void bad_text(loom_buf_t *b, const char *path, const char *key, const loom_cfg_text_t *t, size_t col_off,
    const char *why)
{
	loom_buf_printf(b, "%s%s:%u:%u: key '%s': bad value '%s': %s", b->len ? "\n" : "", path, t->line,
	    t->column + (unsigned)col_off, key, t->text, why);
}

static void bad_key(loom_buf_t *b, const char *path, const char *key, const char *why)
{
	loom_buf_printf(b, "%s%s: key '%s': %s", b->len ? "\n" : "", path, key, why);
}

/* The checks the declarative table cannot make: URI, DNs, filters, bind
 * settings, readable files. Errors go to b. */
static void check_ldap(const loom_agentcfg_t *cfg, loom_buf_t *b)
{
	const loom_agentcfg_ldap_t *lc = &cfg->ldap;
	const char *path = cfg->path;
	LDAPURLDesc *u = NULL;
	if (ldap_url_parse(lc->uri.text, &u) != LDAP_URL_SUCCESS) {
		bad_text(b, path, "ldap.uri", &lc->uri, 0, "expected ldap://HOST:PORT, ldaps://HOST:PORT or ldapi://PATH");
	} else {
		bool ldaps = strcasecmp(u->lud_scheme, "ldaps") == 0, ldapi = strcasecmp(u->lud_scheme, "ldapi") == 0;
		if (lc->starttls && (ldaps || ldapi))
			bad_key(b, path, "ldap.starttls", ldaps ? "StartTLS on ldaps:// (already TLS): use one of them"
								: "StartTLS on ldapi:// (a local socket): remove it");
		if ((u->lud_dn && u->lud_dn[0]) || u->lud_attrs || u->lud_filter)
			bad_text(b, path, "ldap.uri", &lc->uri, 0,
			    "expected only scheme, host and port (bases, attributes and filters have their own keys)");
		ldap_free_urldesc(u);
	}
	switch (lc->bind) {
	case LOOM_LDAP_BIND_SIMPLE:
		if (lc->bind_dn == NULL || lc->bind_dn[0] == '\0')
			bad_key(b, path, "ldap.bind_dn", "missing: bind simple needs bind_dn");
		if ((lc->password != NULL) + (lc->password_file != NULL) + (lc->password_secret != NULL) != 1)
			bad_key(b, path, "ldap.password_file",
			    "bind simple needs exactly one of password, password_file and password_secret");
		if (lc->password_file && access(lc->password_file, R_OK) < 0)
			loom_buf_printf(b, "%s%s: key 'ldap.password_file': cannot read '%s': %s", b->len ? "\n" : "", path,
			    lc->password_file, strerror(errno));
		break;
	default:
		if (lc->bind_dn || lc->password || lc->password_file || lc->password_secret)
			bad_key(b, path, "ldap.bind", "bind_dn, password, password_file and password_secret are for bind simple only");
		break;
	}
	if (lc->ca_file && access(lc->ca_file, R_OK) < 0)
		loom_buf_printf(b, "%s%s: key 'ldap.ca_file': cannot read '%s': %s", b->len ? "\n" : "", path, lc->ca_file,
		    strerror(errno));
	const loom_agentcfg_ldap_base_t *bases = lc->bases.v;
	for (size_t i = 0; i < lc->bases.n; i++) {
		char key[64];
		snprintf(key, sizeof key, "ldap.bases[%zu].dn", i);
		LDAPDN dn = NULL;
		if (strchr(bases[i].dn.text, '\n') ||
		    ldap_str2dn(bases[i].dn.text, &dn, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS)
			bad_text(b, path, key, &bases[i].dn, 0, "expected a DN such as ou=people,dc=example,dc=com");
		ldap_dnfree(dn);
		snprintf(key, sizeof key, "ldap.bases[%zu].filter", i);
		size_t off;
		const char *why;
		if (ml_filter_check(bases[i].filter.text, &off, &why) < 0) {
			char *w = loom_sprintf("expected an LDAP filter such as (objectClass=person): %s at byte %zu", why, off + 1);
			bad_text(b, path, key, &bases[i].filter, 0, w);
			free(w);
		}
	}
	if (cfg->ldap.directory == LOOM_LDAP_OPENLDAP && cfg->ldap.ad_delta == LOOM_LDAP_AD_USN)
		bad_key(b, path, "ldap.ad_delta", "usn is for directory ad (OpenLDAP's delta import is content sync)");
	if (cfg->ldap.directory == LOOM_LDAP_OPENLDAP && strcasecmp(cfg->anchor, "objectGUID") == 0)
		bad_key(b, path, "anchor", "objectGUID is Active Directory's: use entryUUID with directory openldap");
}

static int load(ldapagent_t *la, const loom_deploy_t *cfg, char **ret_error)
{
	if (loom_agentcfg_load_named(cfg->path, la->name, LOOM_AGENT_LDAP, &la->cfg, ret_error) < 0)
		return -1;
	const char *path = la->cfg.path;
	loom_buf_t b = LOOM_BUF_INIT;
	check_ldap(&la->cfg, &b);
	const char *sec = la->cfg.ldap.password_secret;
	if (sec != NULL && la->cfg.ldap.bind == LOOM_LDAP_BIND_SIMPLE) {
		char *sp = loom_sprintf("%s/secrets/%s/%s", cfg->state_dir, la->name, sec);
		if (access(sp, R_OK) < 0)
			loom_buf_printf(&b, "%s%s: key 'ldap.password_secret': secret '%s' is not set "
			    "(loomctl secret set %s %s): %s", b.len ? "\n" : "", path, sec, la->name, sec, strerror(errno));
		free(sp);
	}
	if (b.len) {
		*ret_error = loom_buf_steal(&b);
		return -1;
	}
	loom_buf_release(&b);
	la->dn_anchor = strcasecmp(la->cfg.anchor, "dn") == 0;
	/* Attributes asked for: the configured ones (or all user attributes),
	 * objectClass for the type, and the anchor (operational in OpenLDAP). */
	const loom_cfg_strlist_t *at = &la->cfg.ldap.attributes;
	la->attrs = loom_calloc(at->n + 4, sizeof *la->attrs);
	size_t n = 0;
	bool have_oc = false, have_anchor = la->dn_anchor;
	if (at->n == 0)
		la->attrs[n++] = loom_strdup("*");
	for (size_t i = 0; i < at->n; i++) {
		la->attrs[n++] = loom_strdup(at->v[i]);
		have_oc |= strcasecmp(at->v[i], "objectClass") == 0;
		have_anchor |= strcasecmp(at->v[i], la->cfg.anchor) == 0;
	}
	if (!have_oc && at->n)
		la->attrs[n++] = loom_strdup("objectClass");
	if (!have_anchor)
		la->attrs[n++] = loom_strdup(la->cfg.anchor);
	const loom_agentcfg_ldap_base_t *bases = la->cfg.ldap.bases.v;
	la->filters = loom_calloc(la->cfg.ldap.bases.n, sizeof *la->filters);
	loom_buf_t oc = LOOM_BUF_INIT;
	const loom_agentcfg_ldap_class_t *cl = la->cfg.ldap.object_classes.v;
	for (size_t i = 0; i < la->cfg.ldap.object_classes.n; i++)
		loom_buf_printf(&oc, "(objectClass=%s)", cl[i].object_class);
	for (size_t i = 0; i < la->cfg.ldap.bases.n; i++)
		la->filters[i] = oc.len ? loom_sprintf("(&%s(|%s))", bases[i].filter.text, loom_buf_cstr(&oc))
					: loom_strdup(bases[i].filter.text);
	loom_buf_release(&oc);
	return 0;
}

static void unload(ldapagent_t *la)
{
	for (size_t i = 0; la->attrs && la->attrs[i]; i++)
		free(la->attrs[i]);
	free(la->attrs);
	for (size_t i = 0; la->filters && i < la->cfg.ldap.bases.n; i++)
		free(la->filters[i]);
	free(la->filters);
	la->attrs = NULL;
	la->filters = NULL;
	loom_agentcfg_release(&la->cfg);
}

static int ml_check(loom_daemon_t *d, const char **error_r)
{
	static char *msg;
	ldapagent_t tmp;
	memset(&tmp, 0, sizeof tmp);
	tmp.name = the_agent.name;
	free(msg);
	msg = NULL;
	int rc = load(&tmp, loom_daemon_config(d), &msg);
	unload(&tmp);
	*error_r = msg;
	return rc;
}

static int on_tick(loom_loop_t *loop, void *arg)
{
	(void)loop;
	ldapagent_t *la = arg;
	ml_import_tick(la);
	ml_export_tick(la);
	return 0;
}

static int ml_start(loom_daemon_t *d, const char **error_r)
{
	static char *msg;
	ldapagent_t *la = &the_agent;
	la->d = d;
	la->imp.msgid = -1;
	la->imp.conn.fd = -1;
	la->live.conn.fd = -1;
	loom_daemon_set_user(d, la);
	if (load(la, loom_daemon_config(d), &msg) < 0) {
		*error_r = msg;
		return -1;
	}
	la->timer = loom_loop_add_timer(loom_daemon_loop(d), 1000, 0, on_tick, la);
	static const char *const binds[] = { "simple", "sasl-external", "none" };
	loom_info("agent ready agent=%s uri=%s bind=%s%s%s bases=%zu anchor=%s", la->name, la->cfg.ldap.uri.text,
	    binds[la->cfg.ldap.bind], la->cfg.ldap.bind_dn ? " bind_dn=" : "",
	    la->cfg.ldap.bind_dn ? la->cfg.ldap.bind_dn : "", la->cfg.ldap.bases.n, la->cfg.anchor);
	ml_live_hello(la);
	return 0;
}

/* The agent protocol's messages (lib/loom_agentproto.h). */
static void on_import_start(void *a, Loom__Envelope *env, const Loom__ImportRequest *rq)
{
	if (rq->live)
		ml_live_start(a, env, rq);
	else
		ml_import_start(a, env, rq);
}

static void on_import_credit(void *a, const Loom__ImportCredit *c)
{
	if (ml_live_is(a, c->run_id))
		ml_live_credit(a, c);
	else
		ml_import_credit(a, c);
}

static void on_export_batch(void *a, Loom__Envelope *env, const Loom__ExportBatch *b)
{
	ml_export_batch(a, env, b);
}

static void on_set_password(void *a, Loom__Envelope *env, const Loom__SetPasswordRequest *rq)
{
	ml_set_password(a, env, rq);
}

/* Entries read per base for a schema. */
#define SCHEMA_ENTRIES 200

/* Connects and binds on a connection of its own, and reads the server's
 * schema (which checks the configuration's names against it). */
static int probe_open(ldapagent_t *la, ml_conn_t *c, char **ret_error)
{
	memset(c, 0, sizeof *c);
	c->fd = -1;
	c->la = la;
	if (ml_conn_open(la, c, ret_error) < 0)
		return -1;
	/* A run or the live stream uses the schema it loaded: it is read again
	 * only when none is going on. */
	bool busy = la->imp.active || la->exp.active || la->live.active;
	if (!busy && ml_schema_load(la, c->ld, ret_error) < 0) {
		ml_conn_close(c);
		return -1;
	}
	return 0;
}

static void on_schema(void *a, Loom__Envelope *env, const Loom__SchemaRequest *rq)
{
	(void)rq;
	ldapagent_t *la = a;
	ml_conn_t c;
	char *err = NULL;
	if (probe_open(la, &c, &err) < 0) {
		loom_agent_schema_reply(la->d, env, NULL, false, false, 0, "", err);
		free(err);
		return;
	}
	loom_schema_t *s = loom_schema_new();
	const loom_agentcfg_ldap_class_t *cl = la->cfg.ldap.object_classes.v;
	for (size_t i = 0; i < la->cfg.ldap.object_classes.n; i++)
		loom_schema_type(s, cl[i].type, la->cfg.anchor);
	uint64_t n = 0, skipped = 0;
	struct timeval tv = { la->cfg.ldap.timeout_ms / 1000, (la->cfg.ldap.timeout_ms % 1000) * 1000 };
	for (size_t b = 0; b < la->cfg.ldap.bases.n && err == NULL; b++) {
		const loom_agentcfg_ldap_base_t *base = ml_base(la, b);
		LDAPMessage *res = NULL;
		int rc = ldap_search_ext_s(c.ld, base->dn.text, ml_scope(base->scope), la->filters[b], la->attrs, 0, NULL,
		    NULL, &tv, SCHEMA_ENTRIES, &res);
		if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
			char *m = ml_ld_error(c.ld, rc);
			err = loom_sprintf("search of '%s': %s", base->dn.text, m);
			free(m);
		}
		for (LDAPMessage *e = res ? ldap_first_entry(c.ld, res) : NULL; e && err == NULL;
		     e = ldap_next_entry(c.ld, e)) {
			char *oerr = NULL;
			Loom__ImportObject *o = ml_entry_object(la, c.ld, e, &oerr);
			if (o == NULL) {
				if (skipped++ == 0)
					loom_warning("schema: an entry of '%s' left out: %s", base->dn.text, oerr ? oerr : "?");
				free(oerr);
				continue;
			}
			free(oerr);
			loom_schema_object(s, o, la->cfg.object_type ? la->cfg.object_type : "person", la->cfg.anchor);
			loom__import_object__free_unpacked(o, NULL);
			n++;
		}
		ldap_msgfree(res);
	}
	ml_conn_close(&c);
	if (err != NULL) {
		loom_agent_schema_reply(la->d, env, NULL, false, false, 0, "", err);
		free(err);
	} else {
		char *src = loom_sprintf("'%s': %llu entr%s of the bases read (at most %d per base), values typed by the "
		    "server's schema%s", la->cfg.ldap.uri.text, (unsigned long long)n, n == 1 ? "y" : "ies", SCHEMA_ENTRIES,
		    skipped ? "; entries that do not make objects left out (the first is logged)" : "");
		loom_agent_schema_reply(la->d, env, s, true, true, n, src, NULL);
		free(src);
	}
	loom_schema_destroy(&s);
}

static void on_test_connection(void *a, Loom__Envelope *env, const Loom__TestConnectionRequest *rq)
{
	(void)rq;
	ldapagent_t *la = a;
	ml_conn_t c;
	char *err = NULL;
	if (probe_open(la, &c, &err) < 0) {
		loom_agent_test_reply(la->d, env, false, err);
		free(err);
		return;
	}
	ml_conn_close(&c);
	bool busy = la->imp.active || la->exp.active || la->live.active;
	char *m = loom_sprintf("connected to '%s' and bound; %s", la->cfg.ldap.uri.text, busy ?
	    "a run or the live stream is going on: the server's schema was not read again" :
	    "the configuration's names are in the server's schema");
	loom_agent_test_reply(la->d, env, true, m);
	free(m);
}

static const loom_agent_ops_t agent_ops = { "loom-ma-ldap", on_import_start, on_import_credit, on_export_batch,
	on_set_password, on_schema, on_test_connection };

static void ml_message(loom_daemon_t *d, Loom__Envelope *env)
{
	if (loom_envelope_is(env, &loom__verify_password_request__descriptor)) {
		/* loom-workflow's password authentication challenge (ma_ldap_verify.c) */
		const char *err;
		Loom__VerifyPasswordRequest *rq = (Loom__VerifyPasswordRequest *)loom_envelope_body(env,
		    &loom__verify_password_request__descriptor, &err);
		if (rq == NULL) {
			loom_bus_reply_error(loom_daemon_bus(d), env, LOOM__ERROR__CODE__MALFORMED, false, err, &err);
		} else {
			ml_verify_password(loom_daemon_user(d), env, rq);
			loom__verify_password_request__free_unpacked(rq, NULL);
		}
		loom_envelope_free(&env);
		return;
	}
	loom_agent_dispatch(d, &agent_ops, loom_daemon_user(d), env);
}

static void ml_stop(loom_daemon_t *d)
{
	ldapagent_t *la = loom_daemon_user(d);
	if (la == NULL)
		return;
	ml_import_stop(la);
	ml_export_stop(la);
	ml_live_stop(la);
	ml_password_stop();
	ml_schema_destroy(&la->schema);
	unload(la);
}

static const loom_flag_t flags[] = {
	{ "agent", "NAME", "the agent to run (config/agents/NAME.yaml; service ma.NAME)", set_agent },
	{ NULL, NULL, NULL, NULL },
};

static const loom_daemon_def_t def = {
	.process = "loom-ma-ldap",
	.summary = "Loom management agent for LDAP directories: full import (paged results), delta import "
		   "(RFC 4533 content sync; DirSync or uSNChanged for AD), live mode (refreshAndPersist, or a DirSync "
		   "poll), export (add, modify, modrdn, delete) and passwords (RFC 3062, AD unicodePwd). See docs/ldap.md.",
	.default_service = NULL,
	.no_service_hint = "--agent NAME is required (the agent's file is config/agents/NAME.yaml)",
	.bus_client = true,
	.flags = flags,
	.start = ml_start,
	.on_message = ml_message,
	.stop = ml_stop,
	.check = ml_check,
	.own_config = &loom_agentcfg_table,
	.own_config_what = "agent file config/agents/NAME.yaml (type: ldap, with its ldap: section)",
};

int main(int argc, char **argv)
{
	if (ml_wipe_ber_memory() < 0) {
		fprintf(stderr, "loom-ma-ldap: cannot start: cannot set liblber's memory functions\n");
		return 1;
	}
	int rc = loom_daemon_main(&def, argc, argv);
	free(the_agent.name);
	return rc;
}
