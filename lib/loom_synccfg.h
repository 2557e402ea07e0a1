/* loom_synccfg.h - config/sync/NAME.yaml: synchronization rules.
 *
 *   rules:
 *     - name: hr-people-in
 *       direction: inbound            # connected system -> metaverse
 *       agent: hr
 *       cs_type: person               # connector-space object type it applies to
 *       mv_type: person               # metaverse object type
 *       filter: 'Eq(status, "test")'  # connector filter: true -> filtered disconnector
 *       join:                         # ordered groups; AND inside a group; the first
 *         - match:                    # group with exactly one candidate wins
 *             - { cs: employeeId, mv: employeeId }
 *       project: true                 # no join: create a metaverse object
 *       precedence: 10                # lower wins; equal numbers: last writer wins
 *       flows:
 *         - { mv: displayName, expr: 'givenName + " " + sn' }
 *     - name: people-to-directory
 *       direction: outbound           # metaverse -> connected system
 *       agent: directory
 *       cs_type: inetOrgPerson
 *       mv_type: person
 *       provision: true               # in scope and no connector: create one
 *       scope: 'IsPresent(uid)'       # which metaverse objects (default: all of mv_type)
 *       scope_filter:                 # FIM scoping filter (inbound: the cs object; outbound:
 *         - all:                      # the mv object): any group, all clauses in a group
 *             - { attribute: employeeType, operator: EQUAL, value: employee }
 *             - { attribute: department, operator: ISNOTIN, values: [Sales] }
 *             - { attribute: member, operator: ISMEMBEROF, value: "cn=staff,ou=groups,o=corp", agent: corp }
 *       dn: '"uid=" + EscapeDNComponent(uid) + ",ou=people,dc=example,dc=com"'
 *       link_type: provision          # provision | join | sticky-join (provision: true is the same)
 *       anchor: 'uid'                 # anchor of new objects where the agent does not anchor on dn
 *       deprovision: delete           # out of scope: disconnect | explicit-disconnect | delete
 *       flows:
 *         - { cs: cn, expr: displayName }
 *         - { cs: objectClass, expr: '"inetOrgPerson"', initial: true }
 *         - { cs: mail, expr: mail, existence: true }   # no mail: deprovisioned
 *   mv_deletion:
 *     - { mv_type: person, when: agent-disconnected, agent: hr }  # or when: last-connector
 *
 * Expressions are kept with their position (loom_cfg_text_t) and compiled by
 * the engine, which reports their errors with file:line:column.
 */
#ifndef LOOM_SYNCCFG_H
#define LOOM_SYNCCFG_H

#include <stdbool.h>

#include "loom_config.h"

enum { LOOM_SYNC_INBOUND = 0, LOOM_SYNC_OUTBOUND = 1 };
enum { LOOM_DEPROV_DISCONNECT = 0, LOOM_DEPROV_EXPLICIT = 1, LOOM_DEPROV_DELETE = 2 };
/* Outbound link types: provision creates connectors and deprovisions those it
 * created on leaving scope; join manages connectors that exist and
 * deprovisions them on leaving scope; sticky-join manages connectors that
 * exist and keeps them on leaving scope (its flows stop). */
enum { LOOM_LINK_JOIN = 0, LOOM_LINK_PROVISION = 1, LOOM_LINK_STICKY = 2 };
enum { LOOM_MVDEL_LAST_CONNECTOR = 0, LOOM_MVDEL_AGENT = 1 };

/* Scoping filter operators (FIM synchronization rules), in this order. */
enum {
	LOOM_SCOPE_EQUAL, LOOM_SCOPE_NOTEQUAL, LOOM_SCOPE_LESSTHAN, LOOM_SCOPE_LESSTHAN_OR_EQUAL,
	LOOM_SCOPE_GREATERTHAN, LOOM_SCOPE_GREATERTHAN_OR_EQUAL, LOOM_SCOPE_CONTAINS, LOOM_SCOPE_NOTCONTAINS,
	LOOM_SCOPE_STARTSWITH, LOOM_SCOPE_NOTSTARTSWITH, LOOM_SCOPE_ENDSWITH, LOOM_SCOPE_NOTENDSWITH,
	LOOM_SCOPE_ISNULL, LOOM_SCOPE_ISNOTNULL, LOOM_SCOPE_ISIN, LOOM_SCOPE_ISNOTIN,
	LOOM_SCOPE_ISBITSET, LOOM_SCOPE_ISNOTBITSET, LOOM_SCOPE_ISMEMBEROF, LOOM_SCOPE_ISNOTMEMBEROF,
};

typedef struct loom_sync_clause {
	char *attribute;               /* attribute tested */
	int op;                        /* LOOM_SCOPE_* */
	char *value;                   /* the operand (not for ISNULL/ISNOTNULL/ISIN/ISNOTIN) */
	loom_cfg_strlist_t values;     /* ISIN/ISNOTIN: the list */
	char *agent;                   /* ISMEMBEROF: the group's agent (NULL: the rule's) */
} loom_sync_clause_t;

typedef struct loom_sync_scopegroup {
	loom_cfg_array_t all;          /* loom_sync_clause_t: all must hold */
} loom_sync_scopegroup_t;

typedef struct loom_sync_match {
	char *cs;                      /* connector-space attribute (or expression source) */
	char *mv;                      /* metaverse attribute it must equal */
} loom_sync_match_t;

typedef struct loom_sync_joingroup {
	loom_cfg_array_t match;        /* loom_sync_match_t, all must hold */
} loom_sync_joingroup_t;

typedef struct loom_sync_flow {
	char *mv;                      /* inbound: metaverse attribute written */
	char *cs;                      /* outbound: connector-space attribute written */
	loom_cfg_text_t expr;          /* value expression over the source object */
	bool initial;                  /* outbound: only when the object is created */
	bool existence;                /* outbound: existence test (null: out of scope) */
} loom_sync_flow_t;

typedef struct loom_sync_rule {
	char *name;                    /* unique rule name */
	int direction;                 /* LOOM_SYNC_INBOUND / OUTBOUND */
	char *agent;                   /* the agent it applies to */
	char *cs_type;                 /* connector-space object type */
	char *mv_type;                 /* metaverse object type */
	loom_cfg_text_t filter;        /* inbound connector filter (true: filtered) */
	loom_cfg_array_t join;         /* loom_sync_joingroup_t */
	bool project;                  /* inbound: project when nothing joins */
	long long precedence;          /* inbound: lower number wins */
	loom_cfg_text_t scope;         /* outbound: which metaverse objects (expression) */
	loom_cfg_array_t scope_filter; /* loom_sync_scopegroup_t: any group in scope (FIM scoping filter) */
	bool provision;                /* outbound: create connectors (same as link_type: provision) */
	int link_type;                 /* outbound: LOOM_LINK_* */
	loom_cfg_text_t anchor;        /* outbound: anchor of provisioned objects (agents not anchored on dn) */
	loom_cfg_text_t dn;            /* outbound: DN of provisioned objects */
	int deprovision;               /* LOOM_DEPROV_* */
	loom_cfg_array_t flows;        /* loom_sync_flow_t */
} loom_sync_rule_t;

typedef struct loom_sync_mvdel {
	char *mv_type;                 /* metaverse object type */
	int when;                      /* LOOM_MVDEL_* */
	char *agent;                   /* for when: agent-disconnected */
} loom_sync_mvdel_t;

typedef struct loom_synccfg {
	char *path;                    /* the file it came from */
	loom_cfg_array_t rules;        /* loom_sync_rule_t */
	loom_cfg_array_t mv_deletion;  /* loom_sync_mvdel_t */
} loom_synccfg_t;

extern const loom_cfg_table_t loom_synccfg_table;

/* Loads every *.yaml of dir (name order) into *ret (n files). A missing
 * directory is no rules. All errors of all files are collected. */
int loom_synccfg_load_dir(const char *dir, loom_synccfg_t **ret, size_t *ret_n, loom_cfg_diags_t *diags);
void loom_synccfg_free_all(loom_synccfg_t **v, size_t n);

#endif
