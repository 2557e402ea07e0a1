/* loom_agentcfg.h - config/agents/NAME.yaml: one management agent.
 *
 *   type: file                 # file, ldap or policy
 *   object_type: person        # connector-space object type of what it imports (default:
 *                              # csv person, ldif the entry's last objectClass but top)
 *   anchor: employeeId         # attribute holding the anchor ("dn" for the DN);
 *                              # required for file, ldap defaults to entryUUID
 *                              # (objectGUID with ldap.directory ad)
 *   import_batch: 500          # objects per import batch
 *   import_credit: 8           # batches in flight (credit-based flow control)
 *   error_limit: 100           # a run stops with stopped-error-limit past this
 *   references: [manager, member]  # values name other objects (by DN, or anchor)
 *   deletion_threshold:        # an export deleting more than this stops (0: no limit)
 *     count: 500
 *     percent: 50              # share of the agent's connector space
 *   file:
 *     format: csv              # csv or ldif
 *     path: ../data/hr.csv     # the connected system: the file imported from
 *     export_mode: apply       # apply: rewrite path with the changes applied;
 *                              # changes: write each export run's changes to changes_dir
 *     changes_dir: ../var/exports
 *     delta_dir: ../data/hr-changes   # delta import reads change files here (ldif)
 *     allow_file_urls: false   # LDIF ":< file://" values
 *     dn_attribute: employeeId # csv: the column whose value makes the DN "NAME=VALUE"
 *     multi_value_separator: "|"   # csv: separates values in one cell
 *     csv:
 *       delimiter: ","
 *   live:                      # changes as they happen (type ldap; docs/ldap.md "Live mode")
 *     enabled: true            # the agent streams changes (refreshAndPersist; AD: DirSync poll)
 *     poll: 2s                 # AD: DirSync interval
 *     keepalive: 5s            # an empty batch this often when nothing changes
 *     window: 0ms              # engine: wait this long after a change before syncing
 *     sync: true               # engine: delta-sync this agent after live changes
 *     export: [target]         # engine: then export to these agents
 *   ldap:                      # type ldap: see docs/ldap.md and
 *     uri: ldap://127.0.0.1:389 #   loom-ma-ldap --help-config
 *     bind: simple             # simple, sasl-external or none
 *     bind_dn: cn=loom,dc=example,dc=com
 *     password_file: ../keys/ldap.pw
 *     bases: [ { dn: "ou=people,dc=example,dc=com", scope: sub, filter: "(objectClass=*)" } ]
 *     object_classes: [ { object_class: inetOrgPerson, type: person } ]
 *   policy:                    # type policy: loom-workflow as a connected system
 *     service: workflow        #   (no agent process: the policy service answers)
 *     object_types: [Person, Group]
 *     requester: sync          #   who export's requests name as requester
 *
 * The engine reads the common keys; the agent process reads its section.
 * The agent's service name on the bus is "ma." + NAME (NAME = file name),
 * except for type policy, whose objects the policy service itself serves
 * (policy.service); its anchor and DN are the resource's ObjectID.
 */
#ifndef LOOM_AGENTCFG_H
#define LOOM_AGENTCFG_H

#include <stdbool.h>

#include "loom_config.h"

enum { LOOM_AGENT_FILE = 0, LOOM_AGENT_LDAP = 1, LOOM_AGENT_POLICY = 2 };
enum { LOOM_LDAP_OPENLDAP = 0, LOOM_LDAP_AD = 1 };
enum { LOOM_LDAP_AD_DIRSYNC = 0, LOOM_LDAP_AD_USN = 1 };
enum { LOOM_LDAP_EXPORT_ANCHOR_POST_READ = 0, LOOM_LDAP_EXPORT_ANCHOR_IMPORT = 1 };
enum { LOOM_LDAP_BIND_SIMPLE = 0, LOOM_LDAP_BIND_SASL_EXTERNAL = 1, LOOM_LDAP_BIND_NONE = 2 };
enum { LOOM_LDAP_SCOPE_SUB = 0, LOOM_LDAP_SCOPE_ONE = 1, LOOM_LDAP_SCOPE_BASE = 2 };
enum { LOOM_FILE_CSV = 0, LOOM_FILE_LDIF = 1 };
enum { LOOM_EXPORT_APPLY = 0, LOOM_EXPORT_CHANGES = 1 };

typedef struct loom_agentcfg_csv {
	char *delimiter;               /* one character */
	bool header;                   /* first row names the columns */
} loom_agentcfg_csv_t;

typedef struct loom_agentcfg_file {
	int format;                    /* LOOM_FILE_CSV / LOOM_FILE_LDIF */
	char *path;                    /* the file that is the connected system */
	int export_mode;               /* LOOM_EXPORT_APPLY / LOOM_EXPORT_CHANGES */
	char *changes_dir;             /* where export_mode changes writes */
	char *delta_dir;               /* change files for delta import */
	bool allow_file_urls;          /* LDIF :< file:// values */
	char *dn_attribute;            /* csv: column whose value makes the DN */
	char *multi_value_separator;   /* csv: separator inside one cell, "" for none */
	loom_agentcfg_csv_t csv;       /* csv dialect */
} loom_agentcfg_file_t;

typedef struct loom_agentcfg_ldap_base {
	loom_cfg_text_t dn;            /* search base (with its position, for errors) */
	int scope;                     /* LOOM_LDAP_SCOPE_* */
	loom_cfg_text_t filter;        /* LDAP filter (RFC 4515) */
} loom_agentcfg_ldap_base_t;

typedef struct loom_agentcfg_ldap_class {
	char *object_class;            /* an objectClass value */
	char *type;                    /* the connector-space object type of entries of that class */
} loom_agentcfg_ldap_class_t;

typedef struct loom_agentcfg_ldap {
	loom_cfg_text_t uri;           /* ldap://, ldaps:// or ldapi:// URI */
	int directory;                 /* LOOM_LDAP_OPENLDAP / LOOM_LDAP_AD */
	int ad_delta;                  /* LOOM_LDAP_AD_DIRSYNC / LOOM_LDAP_AD_USN: how AD delta imports read */
	int bind;                      /* LOOM_LDAP_BIND_* */
	char *bind_dn;                 /* simple bind: the DN */
	char *password;                /* simple bind: the password (prefer password_file) */
	char *password_file;           /* simple bind: file holding the password */
	bool starttls;                 /* StartTLS on an ldap:// connection */
	char *ca_file;                 /* CA certificates that verify the server (ldaps, StartTLS) */
	long long timeout_ms;          /* connect and operation timeout */
	long long page_size;           /* entries per page (RFC 2696) */
	long long connections;         /* export connections */
	long long in_flight;           /* export operations outstanding per connection */
	int export_anchor;             /* LOOM_LDAP_EXPORT_ANCHOR_*: how an added entry's anchor is learned */
	loom_cfg_array_t bases;        /* loom_agentcfg_ldap_base_t: where objects live */
	loom_cfg_array_t object_classes; /* loom_agentcfg_ldap_class_t: objectClass -> object type */
	loom_cfg_strlist_t attributes; /* attributes imported (empty: all user attributes) */
	loom_cfg_strlist_t binary;     /* attributes imported as binary values */
} loom_agentcfg_ldap_t;

typedef struct loom_agentcfg_policy {
	char *service;                 /* bus service of the policy service ("workflow") */
	loom_cfg_strlist_t object_types; /* resource types imported and exported */
	char *requester;               /* requester of the requests an export makes ("sync") */
} loom_agentcfg_policy_t;

typedef struct loom_agentcfg_threshold {
	long long count;               /* an export deleting more objects than this stops (0: no limit) */
	long long percent;             /* ... or more than this share of the connector space (0: no limit) */
} loom_agentcfg_threshold_t;

typedef struct loom_agentcfg_live {
	bool enabled;                  /* the agent streams changes as they happen */
	long long poll_ms;             /* AD: DirSync poll interval */
	long long keepalive_ms;        /* an empty batch this often when nothing changes */
	long long window_ms;           /* engine: coalescing window before the sync */
	bool sync;                     /* engine: delta-sync this agent after live changes */
	loom_cfg_strlist_t export;     /* engine: agents exported to after the sync */
} loom_agentcfg_live_t;

typedef struct loom_agentcfg {
	char *name;                    /* from the file name */
	char *path;                    /* the file it was loaded from */
	int type;                      /* LOOM_AGENT_FILE / LOOM_AGENT_LDAP */
	char *object_type;             /* object type of imported objects, or NULL (agent's default) */
	char *anchor;                  /* anchor attribute, or "dn" */
	long long import_batch;        /* objects per batch */
	long long import_credit;       /* batches in flight */
	long long error_limit;         /* per run */
	long long timeout_ms;          /* silence from the agent that fails a run */
	loom_cfg_strlist_t references; /* reference attributes: values are DNs (or anchors) */
	loom_agentcfg_threshold_t deletion_threshold; /* export delete safety */
	loom_agentcfg_file_t file;     /* type file */
	loom_agentcfg_ldap_t ldap;     /* type ldap */
	loom_agentcfg_policy_t policy; /* type policy */
	loom_agentcfg_live_t live;     /* live mode */
} loom_agentcfg_t;

/* The table of the ldap section, for the LDAP agent's --help-config. */
extern const loom_cfg_table_t loom_agentcfg_ldap_table;

extern const loom_cfg_table_t loom_agentcfg_table;

/* True when attr is one of cfg's reference attributes. */
bool loom_agentcfg_is_ref(const loom_agentcfg_t *cfg, const char *attr);

/* Loads DIR/NAME.yaml. */
int loom_agentcfg_load(const char *path, loom_agentcfg_t *cfg, loom_cfg_diags_t *diags);
void loom_agentcfg_release(loom_agentcfg_t *cfg);

/* Loads every *.yaml in dir (sorted by name) into *ret (array of n). A
 * missing directory is an empty list. All errors of all files are collected. */
int loom_agentcfg_load_dir(const char *dir, loom_agentcfg_t **ret, size_t *ret_n, loom_cfg_diags_t *diags);
void loom_agentcfg_free_all(loom_agentcfg_t **v, size_t n);

/* The agents directory of a deployment: dirname(loom.yaml)/agents. */
char *loom_agentcfg_dir(const char *deploy_path);

#endif
