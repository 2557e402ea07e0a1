/* ma_file.h - loom-ma-file: the management agent for files (CSV, LDIF).
 *
 *   ma_file.c         the daemon: configuration, message dispatch
 *   ma_file_import.c  full import (the whole file) and delta import (LDIF
 *                     change files in delta_dir), streamed in credit-based batches
 *   ma_file_export.c  export: collect a run's changes, then rewrite the file
 *                     atomically with them applied (or write a change file)
 *
 * The agent keeps no state between runs: the engine hands the watermark in.
 */
#ifndef MA_FILE_H
#define MA_FILE_H

#include <stdbool.h>
#include <stdint.h>

#include "agent.pb-c.h"
#include "loom_agentcfg.h"
#include "loom_csv.h"
#include "loom_daemon.h"
#include "loom_ldif.h"
#include "loom_map.h"

typedef struct fa_import {
	bool active;                   /* a run is being streamed */
	uint64_t run_id;               /* the engine's run */
	char *engine;                  /* instance address of the engine that asked */
	bool delta;                    /* delta import */
	uint32_t batch_size;           /* objects per batch */
	uint32_t credit;               /* batches we may still send */
	uint64_t seq;                  /* last batch sent */
	int fd;                        /* the file being read */
	char *path;                    /* its path, for error locations */
	loom_csv_reader_t *csv;        /* csv reader */
	loom_ldif_reader_t *ldif;      /* ldif reader */
	long anchor_col;               /* csv: anchor column */
	long dn_col;                   /* csv: column that makes the DN */
	char **files;                  /* delta: change files still to read */
	size_t nfiles;
	size_t fi;                     /* delta: index of the file being read */
	char *watermark;               /* delta: last file fully read */
	uint64_t objects;              /* objects sent */
} fa_import_t;

typedef struct fa_export {
	bool active;                   /* a run is collecting changes */
	uint64_t run_id;               /* the engine's run */
	loom_map_t *changes;           /* key -> packed ExportChange (owned blob): a few
	                                * hundred bytes each, not an unpacked tree */
	Loom__ExportChange *cur;       /* the one change unpacked at a time */
	char **order;                  /* keys in arrival order */
	size_t norder;
	size_t order_cap;              /* allocated entries in order */
	loom_map_t *existing;          /* keys of the objects in the file now (apply mode; read on the first batch) */
} fa_export_t;

typedef struct fileagent {
	loom_daemon_t *d;              /* the skeleton */
	char *name;                    /* agent name (--agent) */
	loom_agentcfg_t cfg;           /* config/agents/NAME.yaml */
	bool dn_anchor;                /* the anchor is the DN */
	char sep[2];                   /* csv multi-value separator, "" for none */
	char *base_dir;                /* directory of the file: LDIF file URLs stay under it */
	fa_import_t imp;               /* the import in progress */
	fa_export_t exp;               /* the export in progress */
} fileagent_t;

/* ma_file_import.c */
void fa_import_start(fileagent_t *fa, Loom__Envelope *env, const Loom__ImportRequest *rq);
void fa_import_credit(fileagent_t *fa, const Loom__ImportCredit *c);
void fa_import_stop(fileagent_t *fa);
/* Turns one CSV record into an object (shared with export, which reads the file). */
Loom__ImportObject *fa_csv_object(fileagent_t *fa, const char *const *cols, size_t ncols,
    const loom_csv_record_t *rec, long anchor_col, long dn_col, const char **error_r);
/* Finds the anchor and DN columns of a CSV header; -1 with *ret_error
 * (malloc'd, naming path and the missing column) when one is missing. */
int fa_csv_columns(fileagent_t *fa, const char *path, const char *const *cols, size_t ncols, long *anchor_col,
    long *dn_col, char **ret_error);
Loom__ImportObject *fa_ldif_object(fileagent_t *fa, const loom_ldif_record_t *rec, const char **error_r);
/* The key objects are matched by: lower-cased DN or the anchor value. */
char *fa_key(fileagent_t *fa, const char *anchor);

/* ma_file_export.c */
void fa_export_batch(fileagent_t *fa, Loom__Envelope *env, const Loom__ExportBatch *b);
void fa_export_reset(fileagent_t *fa);

#endif
