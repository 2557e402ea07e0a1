/* loom_agentproto.c - the agent side of the agent protocol's dispatch. */
#include "loom_agentproto.h"
#include "loom_alloc.h"
#include "loom_envelope.h"
#include "loom_log.h"

#include <stdlib.h>

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
