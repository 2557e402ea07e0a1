/* loom_agentproto.c - the agent side of the agent protocol's dispatch. */
#include "loom_agentproto.h"
#include "loom_agentcfg.h"
#include "loom_alloc.h"
#include "loom_envelope.h"
#include "loom_log.h"
#include "loom_map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void loom_agent_password_reply(loom_daemon_t *d, const Loom__Envelope *env, const Loom__SetPasswordRequest *rq,
    const char *dn, const char *code, int ldap_code, const char *message, bool retryable)
{
	Loom__SetPasswordReply r = LOOM__SET_PASSWORD_REPLY__INIT;
	r.request_id = rq->request_id;
	r.ok = code == NULL;
	r.dn = (char *)(dn ? dn : "");
	r.code = (char *)(code ? code : "");
	r.ldap_code = ldap_code;
	r.message = (char *)(message ? message : "");
	r.retryable = retryable;
	const char *err;
	if (loom_bus_reply(loom_daemon_bus(d), env, &r.base, &err) < 0)
		loom_warning("cannot answer a password request from=%s: %s", env->from, err);
}

void loom_agent_dispatch(loom_daemon_t *d, const loom_agent_ops_t *ops, void *agent, Loom__Envelope *env)
{
	const char *err;
	ProtobufCMessage *m = NULL;
	if (loom_envelope_is(env, &loom__import_request__descriptor)) {
		if ((m = loom_envelope_body(env, &loom__import_request__descriptor, &err)))
			ops->import_start(agent, env, (Loom__ImportRequest *)m);
	} else if (loom_envelope_is(env, &loom__import_credit__descriptor)) {
		if ((m = loom_envelope_body(env, &loom__import_credit__descriptor, &err)))
			ops->import_credit(agent, (Loom__ImportCredit *)m);
	} else if (loom_envelope_is(env, &loom__export_batch__descriptor)) {
		if ((m = loom_envelope_body(env, &loom__export_batch__descriptor, &err)))
			ops->export_batch(agent, env, (Loom__ExportBatch *)m);
	} else if (loom_envelope_is(env, &loom__set_password_request__descriptor)) {
		m = loom_envelope_body(env, &loom__set_password_request__descriptor, &err);
		if (m && ops->set_password) {
			ops->set_password(agent, env, (Loom__SetPasswordRequest *)m);
		} else if (m) {
			char *t = loom_sprintf("'%s' (%s) cannot set passwords: its connected system holds no accounts "
					       "with passwords",
			    loom_daemon_service(d), ops->process);
			loom_agent_password_reply(d, env, (Loom__SetPasswordRequest *)m, NULL, "not-supported", 0, t, false);
			free(t);
		}
	} else if (loom_envelope_is(env, &loom__schema_request__descriptor)) {
		m = loom_envelope_body(env, &loom__schema_request__descriptor, &err);
		if (m && ops->schema)
			ops->schema(agent, env, (Loom__SchemaRequest *)m);
		else if (m) {
			char *t = loom_sprintf("%s cannot describe its connected system's schema", ops->process);
			loom_agent_schema_reply(d, env, NULL, false, false, 0, "", t);
			free(t);
		}
	} else if (loom_envelope_is(env, &loom__test_connection_request__descriptor)) {
		m = loom_envelope_body(env, &loom__test_connection_request__descriptor, &err);
		if (m && ops->test_connection)
			ops->test_connection(agent, env, (Loom__TestConnectionRequest *)m);
		else if (m) {
			char *t = loom_sprintf("%s cannot test its connection", ops->process);
			loom_agent_test_reply(d, env, false, t);
			free(t);
		}
	} else {
		char *t = loom_sprintf("%s does not handle '%s'", ops->process, env->type);
		if (env->correlation_id.len == 0 &&
		    loom_bus_reply_error(loom_daemon_bus(d), env, LOOM__ERROR__CODE__UNKNOWN_TYPE, false, t, &err) < 0)
			loom_warning("cannot reply to from=%s: %s", env->from, err);
		free(t);
		loom_envelope_free(&env);
		return;
	}
	if (m == NULL) {
		loom_warning("dropped malformed %s from=%s: %s", env->type, env->from, err);
		if (loom_bus_reply_error(loom_daemon_bus(d), env, LOOM__ERROR__CODE__MALFORMED, false, err, &err) < 0)
			loom_warning("cannot reply to from=%s: %s", env->from, err);
	} else {
		protobuf_c_message_free_unpacked(m, NULL);
	}
	loom_envelope_free(&env);
}

void loom_agent_send_batch(loom_daemon_t *d, const char *engine, Loom__ImportBatch *b)
{
	const char *err;
	if (loom_bus_send(loom_daemon_bus(d), engine, &b->base, NULL, NULL, &err) < 0)
		loom_warning("cannot send import batch run=%llu seq=%llu: %s", (unsigned long long)b->run_id,
		    (unsigned long long)b->seq, err);
}

int loom_agent_name_option(loom_daemon_t *d, char **name_p, const char *v, const char **error_r)
{
	if (!loom_service_name_valid(v, strlen(v))) {
		*error_r = "expected a name of letters, digits, '.', '_' and '-', starting with a letter";
		return -1;
	}
	free(*name_p);
	*name_p = loom_strdup(v);
	char *svc = loom_sprintf("ma.%s", v);
	loom_daemon_set_default_service(d, svc);
	free(svc);
	return 0;
}

int loom_agent_check_named(loom_daemon_t *d, const char *name, int type, const char **error_r)
{
	static char *msg;
	free(msg);
	msg = NULL;
	loom_agentcfg_t cfg;
	memset(&cfg, 0, sizeof cfg);
	int rc = loom_agentcfg_load_named(loom_daemon_config(d)->path, name, type, &cfg, &msg);
	loom_agentcfg_release(&cfg);
	*error_r = msg;
	return rc;
}

/* ---- schema and connection test ---------------------------------------------------------- */

typedef struct schema_attr {
	char *name;                    /* the attribute */
	char *vtype;                   /* value type, NULL until one is seen */
	bool multi;                    /* ever multi-valued */
} schema_attr_t;

typedef struct schema_type {
	char *name;                    /* the object type */
	char *anchor;                  /* its anchor attribute */
	schema_attr_t *attrs;          /* in order of first sight */
	size_t nattrs;                 /* entries in attrs */
	loom_map_t *index;             /* attribute name -> index + 1 */
} schema_type_t;

struct loom_schema {
	schema_type_t *types;          /* in order of first sight */
	size_t ntypes;                 /* entries in types */
};

loom_schema_t *loom_schema_new(void)
{
	return loom_calloc(1, sizeof(loom_schema_t));
}

void loom_schema_destroy(loom_schema_t **s_p)
{
	loom_schema_t *s = *s_p;
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->ntypes; i++) {
		schema_type_t *t = &s->types[i];
		for (size_t k = 0; k < t->nattrs; k++) {
			free(t->attrs[k].name);
			free(t->attrs[k].vtype);
		}
		free(t->attrs);
		free(t->name);
		free(t->anchor);
		loom_map_destroy(&t->index);
	}
	free(s->types);
	free(s);
	*s_p = NULL;
}

static schema_type_t *schema_type(loom_schema_t *s, const char *type, const char *anchor)
{
	for (size_t i = 0; i < s->ntypes; i++)
		if (strcmp(s->types[i].name, type) == 0) {
			if (s->types[i].anchor[0] == '\0' && anchor && anchor[0]) {
				free(s->types[i].anchor);
				s->types[i].anchor = loom_strdup(anchor);
			}
			return &s->types[i];
		}
	s->types = loom_realloc(s->types, (s->ntypes + 1) * sizeof *s->types);
	schema_type_t *t = &s->types[s->ntypes++];
	memset(t, 0, sizeof *t);
	t->name = loom_strdup(type);
	t->anchor = loom_strdup(anchor ? anchor : "");
	t->index = loom_map_new();
	return t;
}

void loom_schema_type(loom_schema_t *s, const char *type, const char *anchor)
{
	(void)schema_type(s, type, anchor);
}

void loom_schema_attr(loom_schema_t *s, const char *type, const char *name, const char *vtype, bool multi)
{
	schema_type_t *t = schema_type(s, type, NULL);
	uintptr_t i = (uintptr_t)loom_map_gets(t->index, name);
	schema_attr_t *a;
	if (i == 0) {
		t->attrs = loom_realloc(t->attrs, (t->nattrs + 1) * sizeof *t->attrs);
		a = &t->attrs[t->nattrs++];
		memset(a, 0, sizeof *a);
		a->name = loom_strdup(name);
		loom_map_puts(t->index, a->name, (void *)(uintptr_t)t->nattrs);
	} else
		a = &t->attrs[i - 1];
	a->multi = a->multi || multi;
	if (vtype != NULL) {
		if (a->vtype == NULL)
			a->vtype = loom_strdup(vtype);
		else if (strcmp(a->vtype, vtype) != 0) {
			free(a->vtype);
			a->vtype = loom_strdup("string"); /* types disagree: text holds them all */
		}
	}
}

const char *loom_schema_value_type(const Loom__Value *v)
{
	switch (v->v_case) {
	case LOOM__VALUE__V_INT: return "integer";
	case LOOM__VALUE__V_BOOL: return "boolean";
	case LOOM__VALUE__V_BIN: return "binary";
	case LOOM__VALUE__V_REF: return "reference";
	case LOOM__VALUE__V_TIME: return "datetime";
	default: return "string";
	}
}

void loom_schema_object(loom_schema_t *s, const Loom__ImportObject *o, const char *default_type, const char *anchor)
{
	const char *type = o->object_type && o->object_type[0] ? o->object_type : default_type;
	(void)schema_type(s, type, anchor);
	for (size_t i = 0; i < o->n_attrs; i++) {
		const Loom__Attr *a = o->attrs[i];
		loom_schema_attr(s, type, a->name, a->n_values ? loom_schema_value_type(a->values[0]) : NULL, a->n_values > 1);
	}
}

void loom_agent_schema_reply(loom_daemon_t *d, const Loom__Envelope *env, const loom_schema_t *s, bool can_delta,
    bool can_export, uint64_t sampled, const char *source, const char *error)
{
	Loom__SchemaReply r = LOOM__SCHEMA_REPLY__INIT;
	size_t nt = s ? s->ntypes : 0, na = 0;
	for (size_t i = 0; i < nt; i++)
		na += s->types[i].nattrs;
	Loom__SchemaObjectType *ts = loom_calloc(nt ? nt : 1, sizeof *ts);
	Loom__SchemaObjectType **tp = loom_calloc(nt ? nt : 1, sizeof *tp);
	Loom__SchemaAttribute *as = loom_calloc(na ? na : 1, sizeof *as);
	Loom__SchemaAttribute **ap = loom_calloc(na ? na : 1, sizeof *ap);
	size_t k = 0;
	for (size_t i = 0; i < nt; i++) {
		const schema_type_t *t = &s->types[i];
		loom__schema_object_type__init(&ts[i]);
		ts[i].name = t->name;
		ts[i].anchor = t->anchor;
		ts[i].attrs = &ap[k];
		ts[i].n_attrs = t->nattrs;
		for (size_t j = 0; j < t->nattrs; j++, k++) {
			loom__schema_attribute__init(&as[k]);
			as[k].name = t->attrs[j].name;
			as[k].type = t->attrs[j].vtype ? t->attrs[j].vtype : "string";
			as[k].multi = t->attrs[j].multi;
			ap[k] = &as[k];
		}
		tp[i] = &ts[i];
	}
	r.types = tp;
	r.n_types = nt;
	r.can_delta = can_delta;
	r.can_export = can_export;
	r.sampled = sampled;
	r.source = (char *)(source ? source : "");
	r.error = (char *)(error ? error : "");
	const char *err;
	if (loom_bus_reply(loom_daemon_bus(d), env, &r.base, &err) < 0)
		loom_warning("cannot answer a schema request from=%s: %s", env->from, err);
	free(ts);
	free(tp);
	free(as);
	free(ap);
}

void loom_agent_test_reply(loom_daemon_t *d, const Loom__Envelope *env, bool ok, const char *message)
{
	Loom__TestConnectionReply r = LOOM__TEST_CONNECTION_REPLY__INIT;
	r.ok = ok;
	r.message = (char *)(message ? message : "");
	const char *err;
	if (loom_bus_reply(loom_daemon_bus(d), env, &r.base, &err) < 0)
		loom_warning("cannot answer a connection test from=%s: %s", env->from, err);
	if (ok)
		loom_info("connection test ok from=%s: %s", env->from, r.message);
	else
		loom_warning("connection test failed from=%s: %s", env->from, r.message);
}
