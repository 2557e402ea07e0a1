/* ma_ldap_export.c - export to a directory: one LDAP operation per change
 * (two for a rename with attribute changes: modrdn, then modify; an add
 * gets its new entry's anchor back through the post-read control, or, from
 * a server that ignores the control, a read-back search), many in flight on
 * ldap.connections connections, one result per change in the batch's order.
 *
 * A change's stages:
 *
 *   queued --ADD--> adding --ok, anchor in the post-read control--> done
 *                          --ok, no control--> reading back the anchor --> done
 *                          --ok, export_anchor: import--> done without an anchor
 *                            (the engine learns it at the next import, by DN)
 *          --UPDATE with new_dn--> renaming --ok--> modifying (if deltas) --> done
 *          --UPDATE--> modifying --> done
 *          --DELETE--> deleting --> done (noSuchObject counts as done: already gone)
 *   adding --entryAlreadyExists--> verifying: is the entry there the one the
 *          add would make (a base search with every value of the add as an
 *          equality filter)? --yes--> done, its anchor from the search
 *          (an add applied before its result was lost: a batch sent again
 *          after a crash, a connection lost mid-export) --no--> the add's error
 *   renaming --noSuchObject--> verifying the rename: an entry at the new DN
 *          with the change's anchor --yes--> modifying / done --no--> the error
 *
 * A connection lost with operations outstanding: they may or may not have
 * been applied. The connection is opened again and those changes are sent
 * again one at a time, alone (nothing else in flight), from the stage they
 * were in; the checks above make that exactly once. A change that loses the
 * connection again while alone is one the server closes the connection on
 * (a request larger than slapd's sockbuf_max_incoming_auth does that): an
 * error on that change, not retryable, and the batch goes on. When no
 * connection can be opened any more, the run fails (the engine keeps every
 * change of the batch pending; the next export sends them again).
 *
 * Any stage's failure is the change's result (code = the LDAP result's name,
 * the server's message, retryable for busy/unavailable/unwilling and lost
 * connections only). Changes of one batch run concurrently, so one may need
 * another first (an entry under an OU added in the same batch, an OU deleted
 * with its last child): an add or rename refused with noSuchObject or
 * entryAlreadyExists and a delete refused with notAllowedOnNonLeaf are
 * deferred and tried again after the rest of the batch, as long as a round
 * makes progress. Modifies carry the permissive modify control, so adding a
 * value already there or deleting one already gone is not an error: a batch
 * sent again after a crash applies cleanly.
 *
 * Batches are applied one at a time in arrival order (the engine sends up
 * to two ahead); the run's connections stay open until its last batch.
 */
#include "ma_ldap.h"
#include "loom_alloc.h"
#include "loom_attrs.h"
#include "loom_envelope.h"
#include "loom_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { ST_QUEUED, ST_ADD, ST_READBACK, ST_RENAME, ST_MODIFY, ST_DELETE, ST_VERIFY, ST_RVERIFY, ST_DONE };

struct ml_change {
	int stage;                     /* ST_* */
	int msgid;                     /* the operation outstanding */
	ml_conn_t *conn;               /* where it is outstanding */
	char *dn;                      /* the entry's DN now (the new one after a rename) */
	Loom__ExportChangeResult res;  /* the result, final in ST_DONE */
	bool lost;                     /* outstanding when its connection was lost: now sent alone */
	bool verified;                 /* an entryAlreadyExists / noSuchObject was checked once */
	bool found;                    /* the verifying search found the entry */
};

static const Loom__ExportChange *change_of(ml_export_t *ex, size_t i)
{
	return ex->queue[0]->changes[i];
}

static void send_results(ldapagent_t *la, Loom__ExportResults *rs)
{
	const char *err;
	if (loom_bus_send(loom_daemon_bus(la->d), la->exp.engine, &rs->base, NULL, NULL, &err) < 0)
		loom_warning("cannot send export results run=%llu seq=%llu: %s", (unsigned long long)rs->run_id,
		    (unsigned long long)rs->seq, err);
}

static void free_changes(ml_export_t *ex)
{
	for (size_t i = 0; i < ex->nch; i++) {
		free(ex->ch[i].dn);
		free(ex->ch[i].res.code == protobuf_c_empty_string ? NULL : ex->ch[i].res.code);
		free(ex->ch[i].res.message == protobuf_c_empty_string ? NULL : ex->ch[i].res.message);
		free(ex->ch[i].res.anchor == protobuf_c_empty_string ? NULL : ex->ch[i].res.anchor);
	}
	free(ex->ch);
	free(ex->todo);
	free(ex->deferred);
	free(ex->suspects);
	ex->ch = NULL;
	ex->todo = ex->deferred = ex->suspects = NULL;
	ex->nch = ex->ntodo = ex->todo_pos = ex->ndeferred = ex->inflight = ex->done = ex->ok_since_defer = 0;
	ex->nsuspects = ex->solo = 0;
}

void ml_export_stop(ldapagent_t *la)
{
	ml_export_t *ex = &la->exp;
	for (size_t i = 0; i < ex->nconns; i++)
		ml_conn_close(&ex->conns[i]);
	free(ex->conns);
	free_changes(ex);
	for (size_t i = 0; i < ex->nqueue; i++)
		loom__export_batch__free_unpacked(ex->queue[i], NULL);
	free(ex->queue);
	free(ex->engine);
	ber_memfree(ex->postread.bv_val);
	memset(ex, 0, sizeof *ex);
}

/* ---- building operations ------------------------------------------------------------ */

typedef struct mods {
	LDAPMod **v;                   /* NULL-ended */
	size_t n;
} mods_t;

static void mods_add(mods_t *m, int op, const char *name, Loom__Value *const *vals, size_t nv)
{
	LDAPMod *mod = loom_calloc(1, sizeof *mod);
	mod->mod_op = op | LDAP_MOD_BVALUES;
	mod->mod_type = loom_strdup(name);
	if (nv) {
		mod->mod_bvalues = loom_calloc(nv + 1, sizeof *mod->mod_bvalues);
		for (size_t i = 0; i < nv; i++) {
			mod->mod_bvalues[i] = loom_malloc(sizeof(struct berval));
			ml_value_ber(vals[i], mod->mod_bvalues[i]);
		}
	}
	m->v = loom_realloc(m->v, (m->n + 2) * sizeof *m->v);
	m->v[m->n++] = mod;
	m->v[m->n] = NULL;
}

static void mods_free(mods_t *m)
{
	for (size_t i = 0; i < m->n; i++) {
		LDAPMod *mod = m->v[i];
		for (size_t k = 0; mod->mod_bvalues && mod->mod_bvalues[k]; k++) {
			free(mod->mod_bvalues[k]->bv_val);
			free(mod->mod_bvalues[k]);
		}
		free(mod->mod_bvalues);
		free(mod->mod_type);
		free(mod);
	}
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

/* Splits a DN into its first RDN and its parent (malloc'd); -1 when it is not a DN. */
static int dn_split(const char *dn, char **ret_rdn, char **ret_parent)
{
	LDAPDN parts = NULL;
	if (ldap_str2dn(dn, &parts, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS || parts == NULL || parts[0] == NULL) {
		ldap_dnfree(parts);
		return -1;
	}
	char *rdn = NULL, *parent = NULL;
	if (ldap_rdn2str(parts[0], &rdn, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS) {
		ldap_dnfree(parts);
		return -1;
	}
	if (parts[1] && ldap_dn2str(parts + 1, &parent, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS) {
		ldap_memfree(rdn);
		ldap_dnfree(parts);
		return -1;
	}
	*ret_rdn = loom_strdup(rdn);
	*ret_parent = loom_strdup(parent ? parent : "");
	ldap_memfree(rdn);
	ldap_memfree(parent);
	ldap_dnfree(parts);
	return 0;
}

/* ---- results ------------------------------------------------------------------------ */

static void set_error(ml_change_t *c, const char *code, const char *message, bool retryable)
{
	loom_pb_str_set(&c->res.code, code);
	loom_pb_str_set(&c->res.message, message);
	c->res.retryable = retryable;
	c->res.ok = false;
}

static void set_ldap_error(ml_change_t *c, const char *what, int err, const char *text)
{
	char buf[32];
	char *m = loom_sprintf("%s '%s': %s (%d)%s%s", what, c->dn, ldap_err2string(err), err,
	    text && text[0] ? ": " : "", text && text[0] ? text : "");
	set_error(c, ml_result_name(err, buf), m, ml_result_retryable(err));
	free(m);
}

static void dispatch(ldapagent_t *la);

/* The change has its final result. */
static void complete(ldapagent_t *la, ml_change_t *c)
{
	ml_export_t *ex = &la->exp;
	c->stage = ST_DONE;
	c->conn = NULL;
	ex->done++;
	if (c->res.ok) {
		ex->ok_since_defer++;
		ex->applied++;
	}
}

/* A failure that another change of the batch may cure: tried again later. */
static bool defer(ldapagent_t *la, ml_change_t *c, int op_stage, int err)
{
	ml_export_t *ex = &la->exp;
	bool curable = ((op_stage == ST_ADD || op_stage == ST_RENAME) &&
			   (err == LDAP_NO_SUCH_OBJECT || err == LDAP_ALREADY_EXISTS)) ||
	    (op_stage == ST_DELETE && err == LDAP_NOT_ALLOWED_ON_NONLEAF);
	if (!curable || ex->done + 1 >= ex->nch)
		return false;
	c->stage = ST_QUEUED;
	c->conn = NULL;
	ex->deferred = loom_realloc(ex->deferred, (ex->ndeferred + 1) * sizeof *ex->deferred);
	ex->deferred[ex->ndeferred++] = (size_t)(c - ex->ch);
	return true;
}

/* "(&(a=v)...)" of every value of an add, escaped; "(objectClass=*)" for none. */
static char *add_filter(const Loom__ExportChange *ch)
{
	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_adds(&b, "(&(objectClass=*)");
	for (size_t k = 0; k < ch->n_deltas; k++)
		for (size_t j = 0; j < ch->deltas[k]->n_values; j++) {
			struct berval v, esc = { 0, NULL };
			ml_value_ber(ch->deltas[k]->values[j], &v);
			if (ldap_bv2escaped_filter_value(&v, &esc) == 0) {
				loom_buf_printf(&b, "(%s=%s)", ch->deltas[k]->name, esc.bv_val);
				ber_memfree(esc.bv_val);
			}
			free(v.bv_val);
		}
	loom_buf_addc(&b, ')');
	char *out = loom_strdup(loom_buf_cstr(&b));
	loom_buf_release(&b);
	return out;
}

static int conn_lost(ldapagent_t *la, ml_conn_t *conn, const char *why);

/* Starts the operation of c's current stage on conn. Returns 0; 1 when
 * conn was found lost (c waits to be sent again, connection loads
 * changed); -1 when that failed the run (nothing of it is left). */
static int start_op(ldapagent_t *la, ml_change_t *c, ml_conn_t *conn)
{
	ml_export_t *ex = &la->exp;
	size_t i = (size_t)(c - ex->ch);
	const Loom__ExportChange *ch = change_of(ex, i);
	LDAP *ld = conn->ld;
	int rc = LDAP_SUCCESS;
	const char *what = "cannot send";
	mods_t m = { NULL, 0 };
	static char permissive_oid[] = LDAP_CONTROL_X_PERMISSIVE_MODIFY;
	LDAPControl permissive = { permissive_oid, { 0, NULL }, 0 };
	LDAPControl *mctrls[] = { &permissive, NULL };

	if (c->stage == ST_QUEUED) {
		if (ch->dn[0] == '\0') {
			set_error(c, "missing-dn", "the change names no DN", false);
			complete(la, c);
			return 0;
		}
		if (ch->op == LOOM__EXPORT_CHANGE__OP__ADD)
			c->stage = ST_ADD;
		else if (ch->op == LOOM__EXPORT_CHANGE__OP__DELETE)
			c->stage = ST_DELETE;
		else if (ch->new_dn[0] && strcmp(ch->new_dn, ch->dn) != 0)
			c->stage = ST_RENAME;
		else
			c->stage = ST_MODIFY;
	}
	switch (c->stage) {
	case ST_ADD: {
		for (size_t k = 0; k < ch->n_deltas; k++)
			if (ch->deltas[k]->n_values)
				mods_add(&m, LDAP_MOD_ADD, ch->deltas[k]->name, ch->deltas[k]->values, ch->deltas[k]->n_values);
		/* The new entry's anchor in the add's own response (RFC 4527); a
		 * server that ignores the control gets a read-back search. */
		static char postread_oid[] = LDAP_CONTROL_POST_READ;
		LDAPControl postread = { postread_oid, ex->postread, 0 };
		LDAPControl *actrls[] = { &postread, NULL };
		rc = ldap_add_ext(ld, c->dn, m.v ? m.v : (LDAPMod *[]){ NULL }, ex->postread.bv_val ? actrls : NULL, NULL,
		    &c->msgid);
		what = "cannot add";
		break;
	}
	case ST_READBACK: {
		char *attrs[] = { la->cfg.anchor, NULL };
		rc = ldap_search_ext(ld, c->dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL, NULL, NULL, 1, &c->msgid);
		what = "cannot read back";
		break;
	}
	case ST_VERIFY: {
		/* Every value of the add, matched by the server's own rules. */
		char *filter = add_filter(ch);
		char *attrs[] = { la->dn_anchor ? LDAP_NO_ATTRS : la->cfg.anchor, NULL };
		c->found = false;
		rc = ldap_search_ext(ld, c->dn, LDAP_SCOPE_BASE, filter, attrs, 0, NULL, NULL, NULL, 1, &c->msgid);
		free(filter);
		what = "cannot verify the add of";
		break;
	}
	case ST_RVERIFY: {
		char *attrs[] = { la->dn_anchor ? LDAP_NO_ATTRS : la->cfg.anchor, NULL };
		c->found = false;
		loom_pb_str_set(&c->res.anchor, "");
		rc = ldap_search_ext(ld, ch->new_dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL, NULL, NULL, 1,
		    &c->msgid);
		what = "cannot verify the rename of";
		break;
	}
	case ST_RENAME: {
		char *rdn = NULL, *parent = NULL, *old_rdn = NULL, *old_parent = NULL;
		if (dn_split(ch->new_dn, &rdn, &parent) < 0 || dn_split(c->dn, &old_rdn, &old_parent) < 0) {
			char *t = loom_sprintf("cannot rename '%s' to '%s': not a valid DN", c->dn, ch->new_dn);
			set_error(c, "invalid-dn-syntax", t, false);
			free(t);
			free(rdn);
			free(parent);
			free(old_rdn);
			free(old_parent);
			complete(la, c);
			return 0;
		}
		bool move = strcasecmp(parent, old_parent) != 0;
		rc = ldap_rename(ld, c->dn, rdn, move ? parent : NULL, 1, NULL, NULL, &c->msgid);
		what = "cannot rename";
		free(rdn);
		free(parent);
		free(old_rdn);
		free(old_parent);
		break;
	}
	case ST_MODIFY:
		for (size_t k = 0; k < ch->n_deltas; k++) {
			const Loom__AttrDelta *d = ch->deltas[k];
			int op = d->op == LOOM__ATTR_DELTA__OP__ADD ? LDAP_MOD_ADD
			    : d->op == LOOM__ATTR_DELTA__OP__DELETE ? LDAP_MOD_DELETE : LDAP_MOD_REPLACE;
			if (op == LDAP_MOD_ADD && d->n_values == 0)
				continue;
			mods_add(&m, op, d->name, d->values, d->n_values);
		}
		if (m.n == 0) {
			c->res.ok = true; /* nothing (left) to change */
			complete(la, c);
			return 0;
		}
		rc = ldap_modify_ext(ld, c->dn, m.v, mctrls, NULL, &c->msgid);
		what = "cannot modify";
		break;
	case ST_DELETE:
		rc = ldap_delete_ext(ld, c->dn, NULL, NULL, &c->msgid);
		what = "cannot delete";
		break;
	default:
		break;
	}
	mods_free(&m);
	if (rc != LDAP_SUCCESS && (c->stage == ST_VERIFY || c->stage == ST_RVERIFY)) {
		/* Unverified: the change's own error (already in its result) stands. */
		complete(la, c);
		return 0;
	}
	if (rc != LDAP_SUCCESS && c->stage == ST_READBACK) {
		/* The add is done; only its anchor is unknown. The next import finds it. */
		loom_warning("added '%s' but cannot read its %s back: %s (%d)", c->dn, la->cfg.anchor, ldap_err2string(rc), rc);
		c->res.ok = true;
		complete(la, c);
		return 0;
	}
	if (rc == LDAP_SERVER_DOWN) {
		/* The connection is gone (the server closed it since its last
		 * answer): c counts as outstanding on it, and is sent again. */
		char *t = loom_sprintf("%s (%d)", ldap_err2string(rc), rc);
		c->conn = conn;
		ex->inflight++;
		if (c->lost)
			ex->solo++;
		int lost = conn_lost(la, conn, t);
		free(t);
		return lost < 0 ? -1 : 1;
	}
	if (rc != LDAP_SUCCESS) {
		char *t = ml_ld_error(ld, rc);
		set_ldap_error(c, what, rc, t);
		free(t);
		complete(la, c);
		return 0;
	}
	c->conn = conn;
	if (++ex->inflight > ex->max_inflight)
		ex->max_inflight = ex->inflight;
	if (c->lost)
		ex->solo++;
	ml_conn_watch(conn, true);
	return 0;
}

static size_t conn_load(ml_export_t *ex, const ml_conn_t *conn)
{
	size_t n = 0;
	for (size_t i = 0; i < ex->nch; i++)
		if (ex->ch[i].conn == conn)
			n++;
	return n;
}

static void finish_batch(ldapagent_t *la);

/* Starts queued changes while connections have room; finishes the batch when all are done. */
static void dispatch(ldapagent_t *la)
{
	ml_export_t *ex = &la->exp;
	if (ex->nqueue == 0)
		return;
	size_t cap = (size_t)la->cfg.ldap.in_flight;
	size_t *load = loom_calloc(ex->nconns, sizeof *load);
	for (size_t k = 0; k < ex->nconns; k++)
		load[k] = ex->conns[k].ld ? conn_load(ex, &ex->conns[k]) : cap;
	for (;;) {
		/* Changes caught by a lost connection go one at a time, alone,
		 * before anything else (a request the server drops the connection
		 * on then takes nothing else with it). */
		if (ex->solo > 0)
			break;
		if (ex->nsuspects > 0) {
			if (ex->inflight > 0)
				break; /* the rest drains first */
			size_t k = 0;
			while (k < ex->nconns && ex->conns[k].ld == NULL)
				k++;
			if (k == ex->nconns)
				break; /* conn_lost fails the run when none can be opened */
			ml_change_t *c = &ex->ch[ex->suspects[0]];
			memmove(ex->suspects, ex->suspects + 1, (ex->nsuspects - 1) * sizeof *ex->suspects);
			ex->nsuspects--;
			int rc = start_op(la, c, &ex->conns[k]);
			if (rc < 0) {
				free(load);
				return;
			}
			if (c->conn)
				break;
			continue;
		}
		while (ex->todo_pos < ex->ntodo) {
			size_t best = ex->nconns;
			for (size_t k = 0; k < ex->nconns; k++)
				if (load[k] < cap && (best == ex->nconns || load[k] < load[best]))
					best = k;
			if (best == ex->nconns)
				break;
			ml_change_t *c = &ex->ch[ex->todo[ex->todo_pos++]];
			int rc = start_op(la, c, &ex->conns[best]);
			if (rc < 0) {
				free(load);
				return;
			}
			if (rc > 0) {
				for (size_t k = 0; k < ex->nconns; k++)
					load[k] = ex->conns[k].ld ? conn_load(ex, &ex->conns[k]) : cap;
				break; /* the changes of the lost connection first */
			}
			if (c->conn)
				load[best]++;
		}
		if (ex->nsuspects > 0 || ex->solo > 0)
			continue;
		if (ex->todo_pos < ex->ntodo || ex->inflight > 0)
			break;
		/* Nothing outstanding: another round for deferred changes if the last one helped. */
		if (ex->ndeferred == 0)
			break;
		if (ex->ok_since_defer == 0) {
			for (size_t k = 0; k < ex->ndeferred; k++)
				complete(la, &ex->ch[ex->deferred[k]]);
			ex->ndeferred = 0;
			break;
		}
		free(ex->todo);
		ex->todo = ex->deferred;
		ex->ntodo = ex->ndeferred;
		ex->todo_pos = 0;
		ex->deferred = NULL;
		ex->ndeferred = 0;
		ex->ok_since_defer = 0;
	}
	free(load);
	if (ex->done == ex->nch)
		finish_batch(la);
}

static void fail_run(ldapagent_t *la, const char *message);

/* A connection is gone. What was outstanding on it may or may not have
 * been applied: it is sent again, alone (see the top of the file), on a
 * connection opened again. Returns -1 when the run failed (no connection
 * can be opened: the export state is gone, conn included), else 0. */
static int conn_lost(ldapagent_t *la, ml_conn_t *conn, const char *why)
{
	ml_export_t *ex = &la->exp;
	loom_warning("export connection to '%s' lost: %s", la->cfg.ldap.uri.text, why);
	ml_change_t *culprit = NULL;
	for (size_t i = 0; i < ex->nch; i++) {
		ml_change_t *c = &ex->ch[i];
		if (c->conn != conn || c->stage == ST_DONE)
			continue;
		ex->inflight--;
		if (c->lost)
			ex->solo--;
		c->conn = NULL;
		if (c->stage == ST_READBACK) {
			/* The add is done; only its anchor is unknown. */
			loom_warning("added '%s' but cannot read its %s back: %s", c->dn, la->cfg.anchor, why);
			c->res.ok = true;
			complete(la, c);
			continue;
		}
		if (c->lost) {
			culprit = c; /* lost again, alone: judged once a connection is open again */
			continue;
		}
		c->lost = true;
		ex->suspects = loom_realloc(ex->suspects, (ex->nsuspects + 1) * sizeof *ex->suspects);
		ex->suspects[ex->nsuspects++] = i;
	}
	ml_conn_close(conn);
	char *err = NULL;
	if (ml_conn_open(la, conn, &err) < 0) {
		bool any = false;
		for (size_t k = 0; k < ex->nconns; k++)
			any |= ex->conns[k].ld != NULL;
		if (!any) {
			char *m = loom_sprintf("lost the connection to '%s' during the export (%s) and cannot open another: %s",
			    la->cfg.ldap.uri.text, why, err);
			free(err);
			fail_run(la, m);
			free(m);
			return -1;
		}
		loom_warning("export goes on without the lost connection: %s", err);
		free(err);
	}
	if (culprit) {
		/* The server is there, and closed the connection on this change
		 * sent alone: the change itself is what it will not take. */
		char *m = loom_sprintf("the connection was lost again on the change of '%s', sent alone after a first loss "
				       "(the server drops the connection on it: a request larger than it accepts?): %s",
		    culprit->dn, why);
		set_error(culprit, "connection-closed", m, false);
		free(m);
		complete(la, culprit);
	}
	return 0;
}

/* The anchor of an added entry from its value (objectGUID as text for AD). */
static void set_anchor(ldapagent_t *la, ml_change_t *c, const struct berval *v)
{
	if (la->cfg.ldap.directory == LOOM_LDAP_AD && v->bv_len == 16) {
		char t[37];
		ml_uuid_text((const uint8_t *)v->bv_val, true, t);
		loom_pb_str_set(&c->res.anchor, t);
	} else {
		char *s = loom_strndup(v->bv_val, v->bv_len);
		loom_pb_str_set(&c->res.anchor, s);
		free(s);
	}
}

static ml_change_t *find_op(ml_export_t *ex, ml_conn_t *conn, int msgid)
{
	for (size_t i = 0; i < ex->nch; i++)
		if (ex->ch[i].conn == conn && ex->ch[i].msgid == msgid && ex->ch[i].stage != ST_DONE)
			return &ex->ch[i];
	return NULL;
}

/* A rename is done (now, or by an attempt whose result was lost): the
 * change goes on at the new DN with its modifications, if any. */
static void renamed(ldapagent_t *la, ml_change_t *c, ml_conn_t *conn, const Loom__ExportChange *ch)
{
	free(c->dn);
	c->dn = loom_strdup(ch->new_dn);
	if (la->dn_anchor)
		loom_pb_str_set(&c->res.anchor, c->dn);
	if (ch->n_deltas) {
		c->stage = ST_MODIFY;
		start_op(la, c, conn);
	} else {
		complete(la, c);
	}
}

static void on_op_result(ldapagent_t *la, ml_conn_t *conn, ml_change_t *c, LDAPMessage *msg)
{
	ml_export_t *ex = &la->exp;
	const Loom__ExportChange *ch = change_of(ex, (size_t)(c - ex->ch));
	int err = 0;
	char *text = NULL;
	char **refs = NULL;
	LDAPControl **ctrls = NULL;
	int rc = ldap_parse_result(conn->ld, msg, &err, NULL, &text, &refs, &ctrls, 0);
	if (rc != LDAP_SUCCESS)
		err = rc;
	if (refs) {
		/* A referral (never chased): where the server says the entry is. */
		loom_buf_t b = LOOM_BUF_INIT;
		loom_buf_adds(&b, text && text[0] ? text : "");
		for (size_t k = 0; refs[k]; k++)
			loom_buf_printf(&b, "%s%s", b.len || k ? " " : "", refs[k]);
		ldap_memfree(text);
		text = ldap_strdup(loom_buf_cstr(&b));
		loom_buf_release(&b);
		ber_memvfree((void **)refs);
	}
	struct berval anchor = { 0, NULL };
	int have_anchor = 0;
	for (size_t k = 0; err == LDAP_SUCCESS && c->stage == ST_ADD && ctrls && ctrls[k]; k++) {
		if (strcmp(ctrls[k]->ldctl_oid, LDAP_CONTROL_POST_READ) != 0)
			continue;
		const char *why;
		have_anchor = ml_postread_value(&ctrls[k]->ldctl_value, la->cfg.anchor, &anchor, &why);
		if (have_anchor < 0)
			loom_warning("added '%s' but its post-read control is malformed (%s): reading the entry back", c->dn, why);
	}
	ldap_controls_free(ctrls);
	ex->inflight--;
	if (c->lost)
		ex->solo--;
	c->conn = NULL;
	int stage = c->stage;
	if (stage == ST_VERIFY || stage == ST_RVERIFY) {
		ldap_memfree(text);
		if (err != LDAP_SUCCESS || !c->found) {
			/* Not the entry the change would make: its own error stands. */
			if (!defer(la, c, stage == ST_VERIFY ? ST_ADD : ST_RENAME,
				stage == ST_VERIFY ? LDAP_ALREADY_EXISTS : LDAP_NO_SUCH_OBJECT))
				complete(la, c);
			return;
		}
		loom_info("%s '%s' was already done (an earlier attempt whose result was lost): counted as applied",
		    stage == ST_VERIFY ? "add of" : "rename to", stage == ST_VERIFY ? c->dn : ch->new_dn);
		c->res.ok = true;
		loom_pb_str_set(&c->res.code, "");
		loom_pb_str_set(&c->res.message, "");
		c->res.retryable = false;
		if (stage == ST_VERIFY) {
			if (la->dn_anchor)
				loom_pb_str_set(&c->res.anchor, c->dn);
			complete(la, c);
			return;
		}
		/* res.anchor held the verification's entryUUID: a rename keeps
		 * the anchor, so it goes back to unchanged (""), as after a
		 * rename done now */
		loom_pb_str_set(&c->res.anchor, "");
		renamed(la, c, conn, ch);
		return;
	}
	if (stage == ST_DELETE && err == LDAP_NO_SUCH_OBJECT)
		err = LDAP_SUCCESS; /* already gone: what the change wanted */
	if (err != LDAP_SUCCESS && stage == ST_READBACK) {
		/* The add is done; only its anchor is unknown. The next import finds it. */
		loom_warning("added '%s' but cannot read its %s back: %s (%d)", c->dn, la->cfg.anchor,
		    ldap_err2string(err), err);
		err = LDAP_SUCCESS;
	}
	if (err != LDAP_SUCCESS) {
		static const char *const whats[] = { [ST_ADD] = "cannot add", [ST_RENAME] = "cannot rename",
			[ST_MODIFY] = "cannot modify", [ST_DELETE] = "cannot delete" };
		set_ldap_error(c, whats[stage] ? whats[stage] : "cannot change", err, text);
		ldap_memfree(text);
		if (stage == ST_ADD && err == LDAP_ALREADY_EXISTS && !c->verified) {
			c->verified = true; /* is it this add, applied by an earlier attempt? */
			c->stage = ST_VERIFY;
			(void)start_op(la, c, conn); /* on_readable sees a failed run */
			return;
		}
		if (stage == ST_RENAME && err == LDAP_NO_SUCH_OBJECT && !c->verified && ch->anchor[0] && !la->dn_anchor) {
			c->verified = true; /* renamed already, by an earlier attempt? */
			c->stage = ST_RVERIFY;
			(void)start_op(la, c, conn); /* on_readable sees a failed run */
			return;
		}
		if (!defer(la, c, stage, err))
			complete(la, c);
		return;
	}
	ldap_memfree(text);
	c->res.ok = true;
	loom_pb_str_set(&c->res.code, "");
	loom_pb_str_set(&c->res.message, "");
	c->res.retryable = false;
	switch (stage) {
	case ST_ADD:
		if (la->dn_anchor) {
			loom_pb_str_set(&c->res.anchor, c->dn);
			complete(la, c);
		} else if (have_anchor > 0) {
			set_anchor(la, c, &anchor);
			free(anchor.bv_val);
			complete(la, c);
		} else if (la->cfg.ldap.export_anchor == LOOM_LDAP_EXPORT_ANCHOR_IMPORT) {
			complete(la, c); /* no anchor: the next import finds the entry by its DN */
		} else {
			c->stage = ST_READBACK;
			c->res.ok = false; /* until the read-back ends */
			start_op(la, c, conn);
		}
		return;
	case ST_READBACK:
		c->res.ok = true;
		complete(la, c);
		return;
	case ST_RENAME:
		renamed(la, c, conn, ch);
		return;
	default:
		complete(la, c);
		return;
	}
}

static int on_readable(ml_conn_t *conn)
{
	ldapagent_t *la = conn->la;
	ml_export_t *ex = &la->exp;
	for (;;) {
		if (conn->ld == NULL)
			break;
		LDAPMessage *msg = NULL;
		struct timeval zero = { 0, 0 };
		int rc = ldap_result(conn->ld, LDAP_RES_ANY, LDAP_MSG_ONE, &zero, &msg);
		if (rc == 0)
			break;
		if (rc < 0) {
			int e = LDAP_SERVER_DOWN;
			ldap_get_option(conn->ld, LDAP_OPT_RESULT_CODE, &e);
			/* Not ml_ld_error: the handle's diagnostic is an earlier operation's. */
			char *t = loom_sprintf("%s (%d)", ldap_err2string(e), e);
			int lost = conn_lost(la, conn, t);
			free(t);
			if (lost < 0)
				return 0; /* the run failed: nothing of it is left */
			break;
		}
		ex->heard_ms = loom_mono_ms();
		ml_change_t *c = find_op(ex, conn, ldap_msgid(msg));
		if (c == NULL) {
			ldap_msgfree(msg);
			continue;
		}
		if (rc == LDAP_RES_SEARCH_ENTRY && c->stage == ST_RVERIFY) {
			/* The entry at the new DN is the change's object when its anchor says so. */
			const Loom__ExportChange *ch = change_of(ex, (size_t)(c - ex->ch));
			struct berval **vals = ldap_get_values_len(conn->ld, msg, la->cfg.anchor);
			if (vals && vals[0]) {
				set_anchor(la, c, vals[0]);
				c->found = strcasecmp(c->res.anchor, ch->anchor) == 0;
			}
			ldap_value_free_len(vals);
		} else if (rc == LDAP_RES_SEARCH_ENTRY) {
			/* The read-back of an added entry (or the entry an add is
			 * verified against): its anchor. */
			c->found = true;
			struct berval **vals = la->dn_anchor ? NULL : ldap_get_values_len(conn->ld, msg, la->cfg.anchor);
			if (vals && vals[0])
				set_anchor(la, c, vals[0]);
			ldap_value_free_len(vals);
		} else if (rc == LDAP_RES_SEARCH_REFERENCE || rc == LDAP_RES_INTERMEDIATE) {
			/* nothing to learn */
		} else {
			on_op_result(la, conn, c, msg);
			if (!ex->active) {
				ldap_msgfree(msg);
				return 0; /* the run failed: nothing of it is left */
			}
		}
		ldap_msgfree(msg);
	}
	dispatch(la);
	return 0;
}

/* ---- batches ------------------------------------------------------------------------ */

static void begin_batch(ldapagent_t *la);

static void finish_batch(ldapagent_t *la)
{
	ml_export_t *ex = &la->exp;
	Loom__ExportBatch *b = ex->queue[0];
	Loom__ExportResults rs = LOOM__EXPORT_RESULTS__INIT;
	rs.run_id = b->run_id;
	rs.seq = b->seq;
	rs.n_results = ex->nch;
	rs.results = loom_malloc((ex->nch ? ex->nch : 1) * sizeof *rs.results);
	size_t failed = 0;
	for (size_t i = 0; i < ex->nch; i++) {
		ex->ch[i].res.change_id = b->changes[i]->change_id;
		rs.results[i] = &ex->ch[i].res;
		failed += !ex->ch[i].res.ok;
	}
	send_results(la, &rs);
	free(rs.results);
	loom_info("export batch applied run=%llu seq=%llu changes=%zu failed=%zu", (unsigned long long)b->run_id,
	    (unsigned long long)b->seq, ex->nch, failed);
	bool last = b->last;
	free_changes(ex);
	loom__export_batch__free_unpacked(b, NULL);
	memmove(ex->queue, ex->queue + 1, (ex->nqueue - 1) * sizeof *ex->queue);
	ex->nqueue--;
	if (last) {
		long long ms = loom_mono_ms() - ex->started_ms;
		loom_info("export done run=%llu applied=%llu ms=%lld rate=%.0f/s connections=%zu max_in_flight=%zu",
		    (unsigned long long)ex->run_id, (unsigned long long)ex->applied, ms,
		    ms > 0 ? (double)ex->applied * 1000.0 / (double)ms : 0.0, ex->nconns, ex->max_inflight);
		ml_export_stop(la);
		return;
	}
	if (ex->nqueue)
		begin_batch(la);
}

/* Sends a failure for the head batch and forgets the run. */
static void fail_run(ldapagent_t *la, const char *message)
{
	ml_export_t *ex = &la->exp;
	Loom__ExportResults rs = LOOM__EXPORT_RESULTS__INIT;
	rs.run_id = ex->queue[0]->run_id;
	rs.seq = ex->queue[0]->seq;
	rs.failed = true;
	rs.message = (char *)message;
	send_results(la, &rs);
	loom_error("export failed run=%llu: %s", (unsigned long long)rs.run_id, message);
	ml_export_stop(la);
	ex->failed_run = rs.run_id;
}

static void begin_batch(ldapagent_t *la)
{
	ml_export_t *ex = &la->exp;
	Loom__ExportBatch *b = ex->queue[0];
	if (ex->nconns == 0) {
		size_t want = (size_t)la->cfg.ldap.connections;
		ex->conns = loom_calloc(want, sizeof *ex->conns);
		for (size_t k = 0; k < want; k++) {
			char *err = NULL;
			ex->conns[k].fd = -1;
			if (ml_conn_open(la, &ex->conns[k], &err) < 0) {
				if (k == 0) {
					fail_run(la, err);
					free(err);
					return;
				}
				loom_warning("export goes on with %zu connection(s) of %zu: %s", k, want, err);
				free(err);
				break;
			}
			ex->conns[k].on_readable = on_readable;
			ex->nconns = k + 1;
		}
		char *err = NULL;
		if (ml_schema_load(la, ex->conns[0].ld, &err) < 0) {
			fail_run(la, err);
			free(err);
			return;
		}
	}
	ex->nch = b->n_changes;
	ex->ch = loom_calloc(ex->nch ? ex->nch : 1, sizeof *ex->ch);
	ex->todo = loom_malloc((ex->nch ? ex->nch : 1) * sizeof *ex->todo);
	for (size_t i = 0; i < ex->nch; i++) {
		loom__export_change_result__init(&ex->ch[i].res);
		ex->ch[i].dn = loom_strdup(b->changes[i]->dn);
		ex->todo[i] = i;
	}
	ex->ntodo = ex->nch;
	ex->heard_ms = loom_mono_ms();
	/* Every connection was lost during an earlier batch: one new one, or
	 * the batch fails as that one would have (retryable). */
	bool any = false;
	for (size_t k = 0; k < ex->nconns; k++)
		any |= ex->conns[k].ld != NULL;
	char *err = NULL;
	if (!any && ex->nch && ml_conn_open(la, &ex->conns[0], &err) < 0) {
		for (size_t i = 0; i < ex->nch; i++) {
			set_error(&ex->ch[i], "connect-error", err, true);
			complete(la, &ex->ch[i]);
		}
		ex->todo_pos = ex->ntodo;
		free(err);
	}
	dispatch(la); /* finishes the batch when it is done (at once when empty) */
}

void ml_export_batch(ldapagent_t *la, Loom__Envelope *env, const Loom__ExportBatch *b)
{
	ml_export_t *ex = &la->exp;
	if (ex->failed_run && b->run_id == ex->failed_run) {
		/* A batch the engine sent ahead before it heard of the failure. */
		loom_info("dropping export batch run=%llu seq=%llu: the run failed", (unsigned long long)b->run_id,
		    (unsigned long long)b->seq);
		return;
	}
	if (ex->active && ex->run_id != b->run_id) {
		loom_warning("abandoning export run=%llu for run=%llu", (unsigned long long)ex->run_id,
		    (unsigned long long)b->run_id);
		ml_export_stop(la);
	}
	if (!ex->active) {
		ex->active = true;
		/* export_anchor: import asks nothing (the server builds no entry
		 * for the response: about a fifth of slapd's work per add). */
		if (!la->dn_anchor && la->cfg.ldap.export_anchor == LOOM_LDAP_EXPORT_ANCHOR_POST_READ &&
		    ml_postread_request(la->cfg.anchor, &ex->postread) < 0)
			loom_warning("cannot encode the post-read control: adds read their anchor back with a search");
		ex->run_id = b->run_id;
		ex->engine = loom_strdup(env->from);
		ex->started_ms = loom_mono_ms();
		loom_info("export started run=%llu", (unsigned long long)b->run_id);
	}
	/* Kept for the length of the batch: copy it out of the envelope's message. */
	size_t len = loom__export_batch__get_packed_size(b);
	uint8_t *buf = loom_malloc(len ? len : 1);
	loom__export_batch__pack(b, buf);
	Loom__ExportBatch *copy = loom__export_batch__unpack(NULL, len, buf);
	free(buf);
	ex->queue = loom_realloc(ex->queue, (ex->nqueue + 1) * sizeof *ex->queue);
	ex->queue[ex->nqueue++] = copy;
	if (ex->nqueue == 1)
		begin_batch(la);
}

void ml_export_tick(ldapagent_t *la)
{
	ml_export_t *ex = &la->exp;
	if (!ex->active || ex->inflight == 0 || loom_mono_ms() - ex->heard_ms <= la->cfg.ldap.timeout_ms)
		return;
	char *why = loom_sprintf("no answer in %lld ms (ldap.timeout)", la->cfg.ldap.timeout_ms);
	for (size_t k = 0; k < ex->nconns && ex->active; k++)
		if (ex->conns[k].ld && conn_load(ex, &ex->conns[k]) && conn_lost(la, &ex->conns[k], why) < 0)
			break;
	free(why);
	if (ex->active)
		dispatch(la);
}
