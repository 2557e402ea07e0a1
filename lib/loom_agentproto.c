/* loom_agentproto.c - the agent side of the agent protocol's dispatch. */
#include "loom_agentproto.h"
#include "loom_alloc.h"
#include "loom_envelope.h"
#include "loom_log.h"

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
