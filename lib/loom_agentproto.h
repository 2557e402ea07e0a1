/* loom_agentproto.h - the agent side of proto/agent.proto's dispatch: every
 * management agent takes the same messages from the engine and answers
 * everything else the same way.
 *
 *   static const loom_agent_ops_t ops = { "loom-ma-file", start, credit, batch, NULL };
 *   static void on_message(loom_daemon_t *d, Loom__Envelope *env)
 *   { loom_agent_dispatch(d, &ops, loom_daemon_user(d), env); }
 */
#ifndef LOOM_AGENTPROTO_H
#define LOOM_AGENTPROTO_H

#include "agent.pb-c.h"
#include "envelope.pb-c.h"
#include "loom_daemon.h"

typedef struct loom_agent_ops {
	const char *process;           /* named in the answer to a message it does not handle */
	void (*import_start)(void *agent, Loom__Envelope *env, const Loom__ImportRequest *rq);
	void (*import_credit)(void *agent, const Loom__ImportCredit *c);
	void (*export_batch)(void *agent, Loom__Envelope *env, const Loom__ExportBatch *b);
	/* SetPasswordRequest; must answer it with a SetPasswordReply. NULL: the
	 * connected system has no passwords, and the dispatch answers
	 * not-supported itself. */
	void (*set_password)(void *agent, Loom__Envelope *env, const Loom__SetPasswordRequest *rq);
	/* SchemaRequest; must answer with loom_agent_schema_reply. */
	void (*schema)(void *agent, Loom__Envelope *env, const Loom__SchemaRequest *rq);
	/* TestConnectionRequest; must answer with loom_agent_test_reply. */
	void (*test_connection)(void *agent, Loom__Envelope *env, const Loom__TestConnectionRequest *rq);
} loom_agent_ops_t;

/* A schema being gathered: object types with their anchor and attributes,
 * each attribute with the value type seen (string when types disagree) and
 * whether it was ever multi-valued. */
typedef struct loom_schema loom_schema_t;
loom_schema_t *loom_schema_new(void);
void loom_schema_destroy(loom_schema_t **s_p);
/* Adds type (when new) with its anchor attribute. */
void loom_schema_type(loom_schema_t *s, const char *type, const char *anchor);
/* Adds attribute name of type (the type is added when new): vtype one of
 * string, integer, boolean, binary, reference, datetime (NULL: unknown
 * yet, string unless later seen otherwise). */
void loom_schema_attr(loom_schema_t *s, const char *type, const char *name, const char *vtype, bool multi);
/* Adds every attribute of o (its object_type, else default_type). */
void loom_schema_object(loom_schema_t *s, const Loom__ImportObject *o, const char *default_type, const char *anchor);
/* The type name of a value: string, integer, ... */
const char *loom_schema_value_type(const Loom__Value *v);
/* Answers a SchemaRequest with s (NULL with error: the schema could not be
 * read). Logs when the reply cannot be sent. */
void loom_agent_schema_reply(loom_daemon_t *d, const Loom__Envelope *env, const loom_schema_t *s, bool can_delta,
    bool can_export, uint64_t sampled, const char *source, const char *error);
/* Answers a TestConnectionRequest. */
void loom_agent_test_reply(loom_daemon_t *d, const Loom__Envelope *env, bool ok, const char *message);

/* Answers a SetPasswordRequest: ok, or code, LDAP code (0 when none), message
 * and whether a retry may succeed. Logs when the reply cannot be sent. */
void loom_agent_password_reply(loom_daemon_t *d, const Loom__Envelope *env, const Loom__SetPasswordRequest *rq,
    const char *dn, const char *code, int ldap_code, const char *message, bool retryable);

/* Sends import batch b to engine (the run's requester); logs when it cannot. */
void loom_agent_send_batch(loom_daemon_t *d, const char *engine, Loom__ImportBatch *b);

/* Decodes env and hands it to ops; a body that does not decode is answered
 * MALFORMED (and logged), another type UNKNOWN_TYPE. Frees env. */
void loom_agent_dispatch(loom_daemon_t *d, const loom_agent_ops_t *ops, void *agent, Loom__Envelope *env);

/* The --agent NAME option of every agent process: checks NAME, keeps it in
 * *name_p and makes "ma.NAME" the default service. */
int loom_agent_name_option(loom_daemon_t *d, char **name_p, const char *v, const char **error_r);

/* The --check of an agent whose configuration is its agent file alone: loads
 * config/agents/NAME.yaml (of type, LOOM_AGENT_*) and lets it go again.
 * Returns 0, or -1 with *error_r every problem (kept until the next call). */
int loom_agent_check_named(loom_daemon_t *d, const char *name, int type, const char **error_r);

#endif
