/* ma_file.h - loom-ma-file: the management agent for files (CSV, LDIF,
 * DSML v2, fixed width, attribute-value pairs; docs/agents.md).
 *
 *   ma_file.c         the daemon: configuration, message dispatch
 *   ma_file_import.c  full import (the whole file) and delta import (LDIF,
 *                     DSML and AVP change files in delta_dir), streamed in
 *                     credit-based batches
 *   ma_file_export.c  export: collect a run's changes, then rewrite the file
 *                     atomically with them applied (or write a change file)
 *   ma_file_fmt.c     the DSML, fixed-width and AVP readers and writers in
 *                     terms of import objects and export changes
 *
 * The agent keeps no state between runs: the engine hands the watermark in.
 */
#ifndef MA_FILE_H
#define MA_FILE_H

#include <stdbool.h>
#include <stdint.h>

#include "agent.pb-c.h"
#include "loom_agentcfg.h"
#include "loom_agentproto.h"
#include "loom_buf.h"
#include "loom_csv.h"
#include "loom_daemon.h"
#include "loom_fixed.h"
#include "loom_ldif.h"
#include "loom_map.h"

typedef struct fa_reader fa_reader_t;
typedef struct fa_writer fa_writer_t;

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
	fa_reader_t *rd;               /* dsml, fixed or avp reader */
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
	loom_fixed_col_t *cols;        /* fixed: the layout, resolved (names borrowed from cfg) */
	size_t ncols;
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
/* Reads the import file as a full import would, up to max objects, adding
 * each to s (may be NULL): for SchemaRequest and TestConnectionRequest.
 * Refused while an import runs. 0 with the objects and malformed records
 * seen, or -1 with *ret_error (malloc'd: the file cannot be read or is not
 * of its format). */
int fa_scan(fileagent_t *fa, loom_schema_t *s, uint64_t max, uint64_t *ret_objects, uint64_t *ret_errors,
    char **ret_error);
Loom__ImportObject *fa_ldif_object(fileagent_t *fa, const loom_ldif_record_t *rec, const char **error_r);
/* The key objects are matched by: lower-cased DN or the anchor value. */
char *fa_key(fileagent_t *fa, const char *anchor);

/* Shared by the readers. */
Loom__Value *fa_value(const char *data, size_t len);
Loom__ImportObject *fa_object_new(Loom__ImportObject__Change change);
Loom__RunObjectError *fa_object_error(const char *path, unsigned line, unsigned col, const char *msg);
/* An entry's last objectClass but top, or "". */
const char *fa_ldif_type(Loom__Attr *const *attrs, size_t n);
/* The format's name, and whether it can hold changes (delta import,
 * export_mode changes). */
const char *fa_format_name(int format);
bool fa_format_has_changes(int format);
/* Whether a delta_dir entry is a change file of the format. */
bool fa_change_file(int format, const char *name);

/* ma_file_fmt.c: the DSML, fixed and AVP readers and writers. */
/* Resolves and checks the fixed layout of fa's config (anchor and DN
 * columns in it). Returns 0, or -1 with *ret_error (malloc'd). */
int fa_fixed_layout(fileagent_t *fa, char **ret_error);
/* A reader of path (fd borrowed); delta: a change file. */
int fa_reader_open(fileagent_t *fa, int fd, const char *path, bool delta, fa_reader_t **ret, char **ret_error);
/* 1 object, 2 object error (*ret_err), 0 end, -1 fatal (*ret_error malloc'd). */
int fa_reader_next(fa_reader_t *r, Loom__ImportObject **ret, Loom__RunObjectError **ret_err, char **ret_error);
/* fixed: the header lines read so far (kept on export), else "". */
const char *fa_reader_header(const fa_reader_t *r, size_t *ret_len);
void fa_reader_destroy(fa_reader_t **r);
/* A writer appending to out: objects (the file as it is), or changes
 * (export_mode changes). header: fixed header lines written first. */
fa_writer_t *fa_writer_new(fileagent_t *fa, loom_buf_t *out, bool changes, const char *header, size_t header_len);
int fa_writer_object(fa_writer_t *w, const char *dn, Loom__Attr *const *attrs, size_t n, char **ret_error);
int fa_writer_change(fa_writer_t *w, const Loom__ExportChange *c, char **ret_error);
/* Appends the document's end. */
void fa_writer_finish(fa_writer_t *w);
void fa_writer_destroy(fa_writer_t **w);
/* fixed: why a change cannot be written (a column missing for an
 * attribute, a value too long), as a result code and message, or NULL. */
const char *fa_fixed_check(fileagent_t *fa, const Loom__ExportChange *c, char **ret_message);

/* ma_file_export.c */
void fa_export_batch(fileagent_t *fa, Loom__Envelope *env, const Loom__ExportBatch *b);
void fa_export_reset(fileagent_t *fa);

#endif
