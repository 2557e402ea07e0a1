/* loom_agentcfg.h - config/agents/NAME.yaml: one management agent.
 *
 *   type: file                 # file (more types come with their issues)
 *   object_type: person        # connector-space object type of what it imports (default:
 *                              # csv person, ldif the entry's last objectClass but top)
 *   anchor: employeeId         # attribute holding the anchor ("dn" for the DN)
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
 *
 * The engine reads the common keys; the agent process reads its section.
 * The agent's service name on the bus is "ma." + NAME (NAME = file name).
 */
#ifndef LOOM_AGENTCFG_H
#define LOOM_AGENTCFG_H

#include <stdbool.h>

#include "loom_config.h"

enum { LOOM_AGENT_FILE = 0 };
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

typedef struct loom_agentcfg_threshold {
	long long count;               /* an export deleting more objects than this stops (0: no limit) */
	long long percent;             /* ... or more than this share of the connector space (0: no limit) */
} loom_agentcfg_threshold_t;

typedef struct loom_agentcfg {
	char *name;                    /* from the file name */
	char *path;                    /* the file it was loaded from */
	int type;                      /* LOOM_AGENT_FILE */
	char *object_type;             /* object type of imported objects, or NULL (agent's default) */
	char *anchor;                  /* anchor attribute, or "dn" */
	long long import_batch;        /* objects per batch */
	long long import_credit;       /* batches in flight */
	long long error_limit;         /* per run */
	long long timeout_ms;          /* silence from the agent that fails a run */
	loom_cfg_strlist_t references; /* reference attributes: values are DNs (or anchors) */
	loom_agentcfg_threshold_t deletion_threshold; /* export delete safety */
	loom_agentcfg_file_t file;     /* type file */
} loom_agentcfg_t;

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
