/* loom_agentcfg.h - config/agents/NAME.yaml: one management agent.
 *
 *   type: file                 # file, ldap, policy, ext or sql
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
 *     format: csv              # csv, ldif, dsml, fixed or avp (docs/agents.md)
 *     path: ../data/hr.csv     # the connected system: the file imported from
 *     export_mode: apply       # apply: rewrite path with the changes applied;
 *                              # changes: write each export run's changes to changes_dir
 *     changes_dir: ../var/exports
 *     delta_dir: ../data/hr-changes   # delta import reads change files here (ldif, dsml, avp)
 *     allow_file_urls: false   # LDIF ":< file://" values
 *     dn_attribute: employeeId # csv: the column whose value makes the DN "NAME=VALUE"
 *     multi_value_separator: "|"   # csv: separates values in one cell
 *     csv:
 *       delimiter: ","
 *     fixed:                   # format fixed: one record per line
 *       header_lines: 0
 *       columns:
 *         - { name: employeeId, start: 1, width: 6 }
 *         - { name: hired, width: 10, type: datetime, format: "%Y-%m-%d" }
 *     avp:
 *       separator: ":"         # format avp: NAME: VALUE per line
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
 *   password_sync:             # password synchronization (docs/pcns.md)
 *     enabled: true            # engine: set passwords on this agent's connectors
 *     match: [anchor, dn, account]  # how a change from this agent finds its connector, in order
 *     account_attribute: uid   # match account: the attribute holding the account name
 *     retry_interval: 10s      # first retry of a retryable failure (doubles up to retry_max)
 *     retry_max: 10m
 *     max_attempts: 10         # then the target fails
 *     timeout: 30s             # no reply from the agent: the attempt failed (retryable)
 *   ext:                       # type ext: a program speaking JSON lines (docs/agents.md)
 *     command: [python3, ext-agent.py, --data, people.json]
 *     dir: ../examples         # working directory (default: this file's)
 *     timeout: 30s             # program silence that fails an operation
 *   sql:                       # type sql: PostgreSQL or SQLite (docs/agents.md)
 *     driver: postgresql       # or sqlite (database: FILE)
 *     conninfo: "host=127.0.0.1 port=5432 dbname=hr user=loom"
 *     password_file: ../keys/hr-db.pw
 *     tables:
 *       - { object_type: person, table: people, anchor: id,
 *           multi_valued: { table: people_values } }
 *     delta: { mode: changes, table: loom_changes }   # or modified (column)
 *     password_statement: "UPDATE people SET pw = crypt($2, gen_salt('bf')) WHERE id = $1"
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

enum { LOOM_AGENT_FILE = 0, LOOM_AGENT_LDAP = 1, LOOM_AGENT_POLICY = 2, LOOM_AGENT_EXT = 3, LOOM_AGENT_SQL = 4 };
enum { LOOM_SQL_POSTGRESQL = 0, LOOM_SQL_SQLITE = 1 };
enum { LOOM_SQL_DELTA_NONE = 0, LOOM_SQL_DELTA_CHANGES = 1, LOOM_SQL_DELTA_MODIFIED = 2 };
enum { LOOM_LDAP_OPENLDAP = 0, LOOM_LDAP_AD = 1 };
enum { LOOM_LDAP_AD_DIRSYNC = 0, LOOM_LDAP_AD_USN = 1 };
enum { LOOM_LDAP_EXPORT_ANCHOR_POST_READ = 0, LOOM_LDAP_EXPORT_ANCHOR_IMPORT = 1 };
enum { LOOM_LDAP_BIND_SIMPLE = 0, LOOM_LDAP_BIND_SASL_EXTERNAL = 1, LOOM_LDAP_BIND_NONE = 2 };
enum { LOOM_LDAP_SCOPE_SUB = 0, LOOM_LDAP_SCOPE_ONE = 1, LOOM_LDAP_SCOPE_BASE = 2 };
enum { LOOM_FILE_CSV = 0, LOOM_FILE_LDIF = 1, LOOM_FILE_DSML = 2, LOOM_FILE_FIXED = 3, LOOM_FILE_AVP = 4 };
enum { LOOM_FIXED_COL_STRING = 0, LOOM_FIXED_COL_INTEGER = 1, LOOM_FIXED_COL_BOOLEAN = 2, LOOM_FIXED_COL_DATETIME = 3 };
enum { LOOM_EXPORT_APPLY = 0, LOOM_EXPORT_CHANGES = 1 };

typedef struct loom_agentcfg_csv {
	char *delimiter;               /* one character */
	bool header;                   /* first row names the columns */
} loom_agentcfg_csv_t;

typedef struct loom_agentcfg_fixed_col {
	char *name;                    /* attribute */
	long long start;               /* 1-based first character, 0: after the previous column */
	long long width;               /* characters */
	int type;                      /* LOOM_FIXED_COL_* */
	char *format;                  /* datetime: strftime format, NULL for the defaults */
	int align;                     /* 0 auto, 1 left, 2 right */
} loom_agentcfg_fixed_col_t;

typedef struct loom_agentcfg_fixed {
	loom_cfg_array_t columns;      /* loom_agentcfg_fixed_col_t, in line order */
	long long header_lines;        /* lines at the top that are not records (kept on export) */
} loom_agentcfg_fixed_t;

typedef struct loom_agentcfg_avp {
	char *separator;               /* one character between name and value */
} loom_agentcfg_avp_t;

typedef struct loom_agentcfg_file {
	int format;                    /* LOOM_FILE_* */
	char *path;                    /* the file that is the connected system */
	int export_mode;               /* LOOM_EXPORT_APPLY / LOOM_EXPORT_CHANGES */
	char *changes_dir;             /* where export_mode changes writes */
	char *delta_dir;               /* change files for delta import */
	bool allow_file_urls;          /* LDIF :< file:// values */
	char *dn_attribute;            /* csv: column whose value makes the DN */
	char *multi_value_separator;   /* csv: separator inside one cell, "" for none */
	loom_agentcfg_csv_t csv;       /* csv dialect */
	loom_agentcfg_fixed_t fixed;   /* fixed: the column layout */
	loom_agentcfg_avp_t avp;       /* avp: the separator */
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
	char *password_secret;         /* simple bind: KEY of STATE_DIR/secrets/AGENT/KEY (loomctl secret set) */
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

typedef struct loom_agentcfg_ext {
	loom_cfg_strlist_t command;    /* the program and its arguments (no shell) */
	char *dir;                     /* its working directory (default: the agent file's) */
	long long timeout_ms;          /* silence from the program that fails an operation */
	long long max_line;            /* longest line the program may write */
} loom_agentcfg_ext_t;

typedef struct loom_agentcfg_sql_mv {
	char *table;                   /* (anchor, name, value) rows of multi-valued attributes */
	char *anchor_column;           /* the object's anchor */
	char *name_column;             /* the attribute's name */
	char *value_column;            /* one value */
} loom_agentcfg_sql_mv_t;

typedef struct loom_agentcfg_sql_table {
	char *object_type;             /* connector-space object type of its rows */
	char *table;                   /* table or view (schema.table allowed) */
	char *anchor;                  /* anchor column (default: the agent's anchor) */
	char *dn_column;               /* column holding the DN (default: ANCHOR=VALUE) */
	char *modified_column;         /* delta mode modified: the row's last change (default: sql.delta.column) */
	char *deleted_column;          /* soft delete: a row with a value neither NULL nor false here is gone
	                                  (default: sql.delta.deleted_column) */
	loom_agentcfg_sql_mv_t multi_valued; /* the multi-valued attribute table, if any */
} loom_agentcfg_sql_table_t;

typedef struct loom_agentcfg_sql_delta {
	int mode;                      /* LOOM_SQL_DELTA_* */
	char *table;                   /* changes: the change table */
	char *column;                  /* modified: the timestamp column */
	long long overlap_ms;          /* modified: read again what changed this long before the watermark */
	char *deleted_column;          /* soft delete (tombstone) column of every table, or NULL */
} loom_agentcfg_sql_delta_t;

typedef struct loom_agentcfg_sql {
	int driver;                    /* LOOM_SQL_POSTGRESQL / LOOM_SQL_SQLITE */
	char *conninfo;                /* postgresql: libpq connection string (no password) */
	char *password_file;           /* postgresql: the password, one line */
	char *database;                /* sqlite: the database file */
	long long timeout_ms;          /* connect and statement timeout */
	loom_cfg_array_t tables;       /* loom_agentcfg_sql_table_t */
	loom_agentcfg_sql_delta_t delta; /* delta import */
	char *password_statement;      /* SetPassword: $1 the anchor, $2 the password */
} loom_agentcfg_sql_t;

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

enum { LOOM_PWMATCH_ANCHOR = 0, LOOM_PWMATCH_DN = 1, LOOM_PWMATCH_ACCOUNT = 2 };

typedef struct loom_agentcfg_pwsync {
	bool enabled;                  /* the engine sets passwords on this agent's connectors */
	loom_cfg_strlist_t match;      /* anchor, dn, account: how a change's account is found, in order */
	char *account_attribute;       /* match account: the connector-space attribute with the name */
	long long retry_interval_ms;   /* first retry after a retryable failure */
	long long retry_max_ms;        /* the retry interval doubles up to this */
	long long max_attempts;        /* attempts before the target fails */
	long long timeout_ms;          /* an attempt without a reply this long failed (retryable) */
} loom_agentcfg_pwsync_t;

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
	loom_agentcfg_ext_t ext;       /* type ext */
	loom_agentcfg_sql_t sql;       /* type sql */
	loom_agentcfg_live_t live;     /* live mode */
	loom_agentcfg_pwsync_t password_sync; /* password synchronization */
} loom_agentcfg_t;

extern const loom_cfg_table_t loom_agentcfg_ext_table;
extern const loom_cfg_table_t loom_agentcfg_sql_table;

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
/* What an agent process loads: config/agents/NAME.yaml beside deploy_path,
 * which must be of type (LOOM_AGENT_*). NULL name is the missing --agent.
 * Returns 0, or -1 with *ret_error (every problem, one per line; malloc'd). */
int loom_agentcfg_load_named(const char *deploy_path, const char *name, int type, loom_agentcfg_t *cfg,
    char **ret_error);

#endif
