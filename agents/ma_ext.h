/* ma_ext.h - loom-ma-ext: the extensible management agent. It runs a
 * configured program for each operation and speaks the agent protocol with
 * it as JSON lines over the program's stdin and stdout (docs/agents.md
 * "Extensible agents" has the protocol and config/examples/ext-agent.py a
 * complete agent).
 *
 *   ma_ext.c       the daemon: configuration, import, export, SetPassword
 *   ma_ext_proc.c  one program run: spawn (no shell, own process group),
 *                  lines in and out without blocking the loop, flow
 *                  control by not reading, timeouts, kill, reaping
 *   ma_ext_json.c  the JSON of the protocol <-> agent.proto messages
 */
#ifndef MA_EXT_H
#define MA_EXT_H

#include <stdbool.h>
#include <stdint.h>

#include "agent.pb-c.h"
#include "loom_agentcfg.h"
#include "loom_buf.h"
#include "loom_daemon.h"
#include "loom_json.h"

/* ---- ma_ext_proc.c -------------------------------------------------------------- */

typedef struct ext_proc ext_proc_t;

typedef struct ext_proc_ops {
	/* One line the program wrote on stdout (no line end, NUL-terminated). */
	void (*line)(void *arg, const char *line, size_t len);
	/* The program is gone: why says how ("exited with status 0", "killed by
	 * signal 9", "sent nothing for 30s: killed"...); clean is true only for
	 * exit status 0. Called once, after every line it wrote. */
	void (*gone)(void *arg, bool clean, const char *why);
} ext_proc_ops_t;

/* Starts the agent's program (cfg->ext) with stdin, stdout and stderr
 * piped. Returns 0 with *ret, or -1 with *ret_error (malloc'd). */
int ext_proc_start(loom_loop_t *loop, const loom_agentcfg_t *cfg, const char *agent, const ext_proc_ops_t *ops,
    void *arg, ext_proc_t **ret, char **ret_error);
/* Writes len bytes to the program's stdin, reading (not delivering) its
 * stdout meanwhile so that neither side blocks the other, within the
 * timeout. A program that no longer reads its input (a closed pipe) is
 * not an error here: the bytes are dropped, and what it wrote and how it
 * ended decide the operation. Returns 0, or -1 with *ret_error (malloc'd). */
int ext_proc_send(ext_proc_t *p, const char *data, size_t len, char **ret_error);
/* Closes the program's stdin (it sees the end of its input). */
void ext_proc_close_input(ext_proc_t *p);
/* Stops (or resumes) reading the program's stdout: a paused program
 * blocks on a full pipe, which is the flow control of an import. */
void ext_proc_pause(ext_proc_t *p, bool paused);
/* Whether Loom waits for the program now (its silence then counts
 * against the timeout). */
void ext_proc_expect(ext_proc_t *p, bool waiting);
/* The program's last line on stderr, or "". */
const char *ext_proc_last_stderr(const ext_proc_t *p);
/* Kills the program (its process group) if it still runs, reaps it and
 * frees p; no callback is made. NULL allowed; sets *p_p to NULL. Safe
 * inside a callback of p. */
void ext_proc_destroy(ext_proc_t **p_p);

/* ---- ma_ext_json.c ------------------------------------------------------------- */

/* Appends v as the protocol writes values. */
void ext_json_value(loom_buf_t *b, const Loom__Value *v);
/* A value from JSON; NULL with *why (static or in why_buf) when it is not one. */
Loom__Value *ext_value_from_json(const loom_json_t *j, char *why_buf, size_t why_len);
/* An import object from an "object" message; NULL with a message in why_buf. */
Loom__ImportObject *ext_object_from_json(const loom_agentcfg_t *cfg, bool delta, const loom_json_t *j, char *why_buf,
    size_t why_len);
/* Appends an export change as a "change" message line (with its newline). */
void ext_json_change(loom_buf_t *b, const Loom__ExportChange *c);

/* ---- ma_ext.c ---------------------------------------------------------------------- */

typedef struct ext_import {
	bool active;                   /* a run is being streamed */
	uint64_t run_id;               /* the engine's run */
	char *engine;                  /* the engine instance that asked */
	bool delta;                    /* delta import */
	uint32_t batch_size;           /* objects per batch */
	uint32_t credit;               /* batches we may still send */
	uint64_t seq;                  /* last batch sent */
	Loom__ImportBatch *batch;      /* the batch being filled */
	size_t items;                  /* objects and errors in it */
	uint64_t objects;              /* objects sent */
	unsigned lines;                /* lines read from the program */
	char *watermark;               /* from the program's end message */
	bool ended;                    /* the end message arrived */
	ext_proc_t *proc;              /* the program */
} ext_import_t;

/* An export batch sent to the program, awaiting its results. The engine
 * keeps up to two batches in flight; results go back in batch order. */
typedef struct ext_batch {
	uint64_t seq;                  /* the engine's batch */
	bool last;                     /* the run's last batch */
	uint64_t *ids;                 /* its change ids */
	size_t nids;
	Loom__ExportChangeResult **results; /* one per id once answered (NULL until then) */
	size_t nresults;               /* answered so far */
} ext_batch_t;

typedef struct ext_export {
	bool active;                   /* a run is under way */
	uint64_t run_id;               /* the engine's run */
	char *engine;                  /* where results go */
	ext_batch_t *q;                /* batches awaiting results, oldest first */
	size_t nq;
	uint64_t last_seq;             /* the last batch received (for failures) */
	unsigned lines;                /* lines read from the program */
	ext_proc_t *proc;              /* the program */
} ext_export_t;

typedef struct ext_pw {
	bool active;                   /* a password is being set */
	Loom__Envelope *env;           /* the request's envelope (a copy) */
	uint64_t request_id;           /* echoed in the reply */
	char *dn;                      /* the account */
	bool answered;                 /* the program answered */
	ext_proc_t *proc;              /* the program */
} ext_pw_t;

/* A SchemaRequest or TestConnectionRequest handed to the program. */
typedef struct ext_ask {
	bool active;                   /* a question is with the program */
	bool schema;                   /* schema (else connection test) */
	Loom__Envelope *env;           /* the request's envelope (a copy) */
	bool answered;                 /* the program answered */
	ext_proc_t *proc;              /* the program */
} ext_ask_t;

typedef struct extagent {
	loom_daemon_t *d;              /* the skeleton */
	char *name;                    /* agent name (--agent) */
	loom_agentcfg_t cfg;           /* config/agents/NAME.yaml */
	ext_import_t imp;              /* the import in progress */
	ext_export_t exp;              /* the export in progress */
	ext_pw_t pw;                   /* the password in progress */
	ext_ask_t ask;                 /* the schema request or connection test in progress */
} extagent_t;

#endif
