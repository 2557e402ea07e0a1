/* engine.h - loom-engine, the synchronization service: shared state of its files.
 *
 *   engine_main.c    daemon definition, store, configuration, message dispatch
 *   engine_rules.c   sync rules compiled from config/sync (expressions, indexes)
 *   engine_obj.c     attributes, values, deltas; cs and mv objects in the store
 *   engine_run.c     run records, counters, the run state machine, loomctl queries
 *   engine_import.c  full and delta import: staging pending imports
 *   engine_sync.c    synchronization of one object: filter, join, projection,
 *                    flows with precedence, deletion rules, provisioning
 *   engine_refs.c    reference attributes: the metaverse's reverse references
 *                    and the queues that make late references come right
 *   engine_export.c  export: pending exports to the agent, results
 *   engine_schedule.c  schedules: run profiles started on an interval or cron
 *   engine_live.c    live mode: changes streamed by agents as they happen,
 *                    staged at once, then delta sync and export
 *   engine_pwsync.c  password synchronization: a changed password (from
 *                    loom-pcns) set on every joined connector of an agent
 *                    with password_sync.enabled, retried, with history
 */
#ifndef ENGINE_H
#define ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "agent.pb-c.h"
#include "engine.pb-c.h"
#include "loom_agentcfg.h"
#include "loom_attrs.h"
#include "loom_buf.h"
#include "loom_deploy.h"
#include "loom_daemon.h"
#include "loom_expr.h"
#include "loom_map.h"
#include "loom_store.h"
#include "loom_synccfg.h"
#include "sync.pb-c.h"

/* Column families of the engine store (DESIGN.md §3). */
enum {
	CF_CS = 1,      /* agent \0 anchor -> CsObject */
	CF_CSDN,        /* agent \0 lower(dn) -> anchor */
	CF_MV,          /* mv id (8 bytes) -> MvObject */
	CF_MVIDX,       /* mv_type \0 lower(attr) \0 lower(value) \0 id -> "" (join look-ups) */
	CF_LINK,        /* mv id \0 agent \0 anchor -> "" (connectors of an mv object) */
	CF_EXPORT,      /* agent \0 anchor -> EXPORT_MARK_* (objects with a pending export; an empty
	                 * value, written by older engines, says nothing of the kind) */
	CF_DELTA,       /* agent \0 anchor -> "" (objects a delta sync must visit) */
	CF_RUN,         /* run id (8 bytes) -> RunRecord */
	CF_META,        /* name -> value: sequences, watermarks, generations */
	CF_MVREF,       /* target id, source id, lower(attr) -> "" (who references an mv object) */
	CF_UNRES,       /* agent \0 lower(name) \0 referrer anchor -> "" (references waiting for their object) */
	CF_RESYNC,      /* agent \0 anchor -> "" (connectors to synchronize again at their agent's sync end) */
	CF_REFRESH,     /* mv id, agent -> "" (mv objects whose outbound flows to agent (none: all) are
	                 * recomputed at a sync end) */
	CF_PWSYNC,      /* ~received_at (8 bytes, newest first) change id (16) -> PasswordSyncRecord */
	CF_PWSYNC_ID,   /* change id (16 bytes) -> its CF_PWSYNC key (duplicates) */
};

typedef struct eng_flow {
	const loom_sync_flow_t *cfg;   /* as configured */
	const char *target;            /* attribute written (mv for inbound, cs for outbound) */
	loom_expr_t *expr;             /* compiled value */
	const char *direct;            /* the source attribute when expr is just that attribute, else NULL */
} eng_flow_t;

typedef struct eng_agent eng_agent_t;

typedef struct eng_rule {
	const loom_sync_rule_t *cfg;   /* as configured */
	const char *file;              /* the sync file it came from */
	eng_agent_t *agent;            /* the agent it applies to */
	loom_expr_t *filter;           /* inbound connector filter, or NULL */
	loom_expr_t *scope;            /* outbound scope, or NULL (all) */
	loom_expr_t *dn;               /* outbound DN for provisioning, or NULL */
	loom_expr_t *anchor;           /* outbound anchor for provisioning, or NULL */
	bool provision;                /* outbound: creates connectors (provision or link_type) */
	eng_flow_t *flows;             /* its flows */
	size_t nflows;
} eng_rule_t;

struct eng_agent {
	loom_agentcfg_t *cfg;          /* config/agents/NAME.yaml */
	char *service;                 /* "ma.NAME" */
	eng_rule_t **in;               /* inbound rules for this agent, in file order */
	size_t nin;
	eng_rule_t **out;              /* outbound rules to this agent */
	size_t nout;
};

typedef enum {
	RUN_IDLE,
	RUN_IMPORT,                    /* waiting for import batches */
	RUN_SYNC,                      /* synchronizing in slices */
	RUN_EXPORT,                    /* waiting for export results */
	RUN_MARK,                      /* end of a full import: marking unseen objects deleted, in slices */
} run_phase_t;

/* Anchors kept per counter in a run's record. */
#define ENG_KEEP_ANCHORS 1000

/* A counter in a running run: count plus the first anchors behind it. */
typedef struct eng_counter {
	char *name;
	uint64_t count;
	char **anchors;
	size_t nanchors;
} eng_counter_t;

typedef struct eng_run {
	uint64_t id;                   /* run id */
	eng_agent_t *agent;            /* whose run */
	char *profile;                 /* full-import ... */
	run_phase_t phase;             /* what it waits for */
	int64_t started_us;            /* wall clock */
	int64_t last_heard_ms;         /* monotonic: last message from the agent */
	uint64_t objects;              /* objects processed */
	eng_counter_t *counters;       /* counters in first-use order */
	size_t ncounters;
	Loom__RunObjectError **errors; /* first errors, owned */
	size_t nerrors;
	uint64_t error_count;          /* all errors */
	char **warnings;               /* what the run did other than asked (RunRecord.warnings) */
	size_t nwarnings;
	/* import */
	bool delta;                    /* delta import / delta sync */
	uint64_t gen;                  /* full-import generation */
	uint64_t next_seq;             /* next import batch expected */
	uint32_t outstanding;          /* batches granted but not received */
	bool fell_back;                /* a delta import whose watermark the agent refused, now running as full */
	uint8_t *watermark;            /* the agent's new watermark, saved when the import ends */
	size_t watermark_len;
	/* sync */
	loom_iter_t *iter;             /* position in cs or delta */
	char *prefix;                  /* agent \0 */
	size_t prefix_len;
	/* export */
	uint64_t export_seq;           /* last batch sent */
	uint64_t allow_deletes;        /* deletes an administrator let past the threshold */
	Loom__ExportBatch *inflight[2]; /* batches sent, awaiting results, oldest first */
	size_t ninflight;              /* how many (two overlap the agent's work with ours) */
	bool export_done;              /* no more pending exports to send */
	int post;                      /* sync: 0 objects, 1 resync queue, 2 refresh queue */
	uint64_t post_done;            /* objects the current pass over a queue handled */
	unsigned post_rounds;          /* passes over the queues so far */
	int timer;                     /* slice/timeout timer id */
	bool lazy;                     /* records written without fsync (live mode's sync and export runs) */
} eng_run_t;

typedef struct eng_sched eng_sched_t;
typedef struct eng_live eng_live_t;
typedef struct eng_pwsync eng_pwsync_t;

/* Most inbound rules for one metaverse type (checked at load; sync keeps
 * them in fixed arrays). */
#define ENG_MAX_INBOUND 64

typedef struct engine engine_t;

struct engine {
	loom_daemon_t *daemon;         /* the skeleton */
	loom_store_t *store;           /* the engine store */
	loom_agentcfg_t *agentcfgs;    /* loaded agent files */
	size_t nagentcfgs;
	loom_synccfg_t *synccfgs;      /* loaded sync files */
	size_t nsynccfgs;
	eng_agent_t *agents;           /* one per agent file */
	size_t nagents;
	eng_rule_t *rules;             /* every sync rule */
	size_t nrules;
	eng_run_t *run;                /* the run in progress, or NULL */
	uint64_t seq_run;              /* last run id */
	uint64_t seq_mv;               /* last mv id */
	uint64_t seq_change;           /* last export change id */
	uint64_t lim_run;              /* sequences are reserved in blocks: */
	uint64_t lim_mv;               /* ids up to lim_* are persisted as taken */
	uint64_t lim_change;
	loom_map_t *indexed;           /* "mv_type \0 lower(attr)" of join attributes: the only ones indexed */
	loom_batch_t *batch;           /* reused write batch */
	loom_buf_t *trace;             /* during a preview: one line per decision */
	Loom__PreviewStep **pv_steps;  /* during a preview: the decisions, with their kinds */
	size_t pv_nsteps;
	Loom__PreviewExport **pv_exports; /* during a preview: the pending exports left */
	size_t pv_nexports;
	bool dry_run;                  /* during a preview without --commit: write nothing */
	bool resyncing;                /* eng_sync_one takes the object off the resync queue */
	bool trace_failed;             /* an error was reported during the preview */
	char *read_error;              /* first store read error of the object being synchronized:
	                                * a lookup that failed is not "absent", so the object's
	                                * sync writes nothing (eng_read_failed, commit) */
	loom_buf_t key;                /* reused key buffer */
	loom_buf_t val;                /* reused value buffer */
	loom_expr_result_t res;        /* reused by filter and flow evaluations (not nested): no
	                                * allocation per evaluation once warm; zeroed is ready */
	eng_sched_t *scheds;           /* one per configured schedule */
	size_t nscheds;
	eng_sched_t *sched_active;     /* the sequence running (between its steps too), or NULL */
	uint64_t sched_order;          /* last queue position handed out */
	int sched_timer;               /* the schedules' tick timer, 0 when none */
	loom_map_t *groups;            /* ISMEMBEROF: "agent \0 lower(dn)" -> the group's mv id (8 bytes, owned) */
	bool uses_membership;          /* some rule tests ISMEMBEROF: membership changes refresh members */
	int unres_state;               /* unresolved family: 0 not looked at, 1 empty, 2 may hold keys */
	int mvref_state;               /* mv_ref family: the same (deployments without references skip the look-ups) */
	eng_live_t *lives;             /* one per agent with live.enabled */
	size_t nlives;
	int live_timer;                /* the live streams' tick timer, 0 when none */
	eng_pwsync_t *pwsync;          /* password synchronization (engine_pwsync.c), or NULL */
};

/* engine_sync.c: during a preview, appends one line explaining a decision
 * of a kind (PreviewStep.kind); a text starting with two spaces is a detail
 * of the decision before it. */
void eng_explain(engine_t *e, const char *kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Answers loomctl preview. */
void eng_preview(engine_t *e, Loom__Envelope *env, const ProtobufCMessage *m);

/* engine_scope.c */
/* Who is tested, for ISMEMBEROF: the object's metaverse id (NULL: not
 * joined, a member of nothing) and the rule's agent. */
typedef struct eng_member_ctx {
	engine_t *e;
	const uint8_t *id;
	const char *agent;
} eng_member_ctx_t;
/* True when the object seen through lookup is in the scoping filter (an
 * empty filter holds everything); m may be NULL (no membership). */
bool eng_scope_match(const loom_cfg_array_t *filter, loom_expr_lookup_fn *lookup, void *arg, const eng_member_ctx_t *m);
/* Forgets the group ids ISMEMBEROF remembered (at each run's start). */
void eng_groups_forget(engine_t *e);
/* Appends one line per clause that cannot be evaluated. */
void eng_scope_check(const char *file, const loom_sync_rule_t *rule, loom_buf_t *errors);

/* engine_rules.c */
int eng_rules_load(engine_t *e, const char *deploy_path, char **ret_error);
void eng_rules_free(engine_t *e);
eng_agent_t *eng_agent_find(engine_t *e, const char *name);

/* engine_obj.c: store access (keys built in e->key) */
Loom__CsObject *eng_cs_get(engine_t *e, const char *agent, const char *anchor, const char **error_r);
/* Writes cs; old_dn is its DN as stored (NULL for a new object), so the DN
 * index is only touched when the DN changed. */
void eng_cs_put(engine_t *e, loom_batch_t *b, const char *agent, const Loom__CsObject *cs, const char *old_dn);
void eng_cs_delete(engine_t *e, loom_batch_t *b, const char *agent, const Loom__CsObject *cs);
/* The anchor at dn, or NULL (absent, or unreadable: then eng_read_failed). */
char *eng_csdn_get(engine_t *e, const char *agent, const char *dn);
/* Records a store read error for the object being synchronized (the first
 * one is kept). Lookups that answer "none" on an error call it, so no
 * decision is written on the strength of a read that did not happen. */
void eng_read_failed(engine_t *e, const char *err);
/* The recorded read error (caller frees), or NULL; clears it. */
char *eng_read_error_take(engine_t *e);
Loom__MvObject *eng_mv_get(engine_t *e, const uint8_t *id, size_t idlen, const char **error_r);
void eng_mv_put(engine_t *e, loom_batch_t *b, const Loom__MvObject *mv);
void eng_mv_delete(engine_t *e, loom_batch_t *b, const Loom__MvObject *mv);
void eng_mvidx_update(engine_t *e, loom_batch_t *b, const char *mv_type, const uint8_t *id,
    const char *attr, const Loom__MvAttr *before, const Loom__MvAttr *after);
/* The metaverse index key "mv_type \0 lower(attr) \0 valuekey \0 id" in
 * *k (replacing it); with id NULL, the prefix of every id with that value. */
void eng_mvidx_key(loom_buf_t *k, const char *mv_type, const char *attr, const Loom__Value *v, const uint8_t *id);
void eng_link_put(engine_t *e, loom_batch_t *b, const uint8_t *id, const char *agent, const char *anchor, bool del);
void eng_mark(engine_t *e, loom_batch_t *b, int cf, const char *agent, const char *anchor, bool on);
/* The value of an export mark: the kind of the pending export, so that the
 * deletion threshold counts deletes from the marks alone. */
#define EXPORT_MARK_DELETE 'd'     /* a delete */
#define EXPORT_MARK_OTHER 'x'      /* an add or an update */
/* The export mark cs's pending export calls for: EXPORT_MARK_*, or 0 for none. */
char eng_export_kind(const Loom__CsObject *cs);
/* Writes the export mark of kind (EXPORT_MARK_*), or deletes it (0). */
void eng_export_mark(engine_t *e, loom_batch_t *b, const char *agent, const char *anchor, char kind);
/* Next id of a sequence. Ids are reserved in blocks: the meta key holds the
 * end of the reserved block, written only when a new block is taken, so a
 * restart resumes past every id that may have been handed out. */
uint64_t eng_seq_next(engine_t *e, loom_batch_t *b, uint64_t *seq, uint64_t *lim, const char *name,
    uint64_t block);
/* True when the metaverse index keeps attr of mv_type (a join attribute). */
bool eng_indexed(engine_t *e, const char *mv_type, const char *attr);
/* Rebuilds the metaverse index when the set of join attributes changed. */
int eng_mvidx_check(engine_t *e, const char **error_r);
void eng_key_agent_anchor(loom_buf_t *k, const char *agent, const char *anchor);
/* "agent \0 lower(dn)" in *k (replacing it): the DN index's key. */
void eng_key_agent_dn(loom_buf_t *k, const char *agent, const char *dn);
void eng_mvid_hex(char out[17], const uint8_t *id);
uint64_t eng_meta_get_u64(engine_t *e, const char *name);
void eng_meta_put_u64(engine_t *e, loom_batch_t *b, const char *name, uint64_t v);
/* Connectors of an mv object: parallel arrays of agent names and anchors
 * (caller frees); on a read error, those read so far (eng_read_failed). */
size_t eng_links(engine_t *e, const uint8_t *id, char ***ret_agents, char ***ret_anchors);
void eng_strv_free(char **v, size_t n);
const char *eng_state_name(Loom__CsObject__State s);

/* engine_refs.c */
bool eng_mvid_parse(const char *hex, uint8_t id[8]);
/* True when source references target through attr (one point read). */
bool eng_mvref_has(engine_t *e, const uint8_t *target, const uint8_t *source, const char *attr);
void eng_mvref_put(engine_t *e, loom_batch_t *b, const uint8_t *target, const uint8_t *source, const char *attr,
    bool del);
/* Keeps mv_ref in step with a metaverse attribute's change (either NULL). */
void eng_mvref_update(engine_t *e, loom_batch_t *b, const uint8_t *id, const char *attr, const Loom__MvAttr *before,
    const Loom__MvAttr *after);
/* Queues mv object id for a refresh of its outbound flows to agent (NULL:
 * to every agent). */
void eng_queue_refresh(engine_t *e, loom_batch_t *b, const uint8_t *id, const char *agent);
/* Queues every object referencing id for a refresh of its flows to agent
 * (whose connector of id changed; NULL: every agent); with drop, forgets
 * those references (id is being deleted). Returns how many. */
size_t eng_queue_referrers(engine_t *e, loom_batch_t *b, const uint8_t *id, const char *agent, bool drop);
void eng_queue_resync(engine_t *e, loom_batch_t *b, const char *agent, const char *anchor);
/* Records that referrer (in agent) names an object as name that does not resolve. */
void eng_unres_put(engine_t *e, loom_batch_t *b, const char *agent, const char *name, const char *referrer);
/* The object known as name in agent can now be resolved: queues its
 * waiting referrers (but self) for a resync. Returns how many. */
size_t eng_unres_wake(engine_t *e, loom_batch_t *b, const char *agent, const char *name, const char *self);
/* Resolves a connector-space reference (a DN, else an anchor) of agent to
 * the metaverse object its connector is joined to: 1 with id, 0 when it
 * does not resolve (a read error is recorded by eng_read_failed). */
int eng_ref_in(engine_t *e, const char *agent, const char *name, uint8_t id[8]);
/* The DN of mv object id's connector in agent (caller frees), or NULL. */
/* Whether dn is a provisional DN (a policy agent's object not exported yet,
 * named new:MVID until the service gives its ObjectID): no reference to it
 * can be sent; the referrers are refreshed when it gets its real DN. */
bool eng_dn_provisional(engine_t *e, const char *agent, const char *dn);
char *eng_ref_out(engine_t *e, const uint8_t *id, const char *agent);

/* engine_run.c */
/* Records a new run of profile for agent and makes it the run in progress,
 * without starting any work (eng_run_start does, for loomctl's profiles;
 * live mode opens live-import runs with it). durable: the start record is
 * written with fsync (a run finished in the same turn of the loop needs
 * not: its end record is). */
int eng_run_open(engine_t *e, eng_agent_t *a, const char *profile, bool durable, uint64_t *ret_id,
    const char **error_r);
int eng_run_start(engine_t *e, const char *agent, const char *profile, uint64_t allow_deletes,
    uint64_t *ret_id, const char **error_r);
/* eng_run_start, choosing whether the run's start and end records are
 * written with fsync. Live mode's sync and export runs are not (two fewer
 * fsyncs each: a third of a live change's latency here). A crash of the
 * process loses nothing (the writes are in the WAL); a crash of the machine
 * may lose the last such runs' records and effects, which are redone: each
 * object's effects are one write batch with the delta mark or pending
 * export they clear, and an export sent again applies idempotently. The
 * next synchronous write (the next live-import's) makes them durable. */
int eng_run_start_ex(engine_t *e, const char *agent, const char *profile, uint64_t allow_deletes, bool durable,
    uint64_t *ret_id, const char **error_r);
void eng_run_count(engine_t *e, const char *counter, const char *anchor);
void eng_run_error(engine_t *e, const char *anchor, const char *dn, const char *code, const char *message,
    const char *where, bool retryable);
/* Ends the run in progress: status, message; writes the record durably. */
void eng_run_finish(engine_t *e, const char *status, const char *message);
/* Adds a line to the run's warnings (kept in its record and shown by loomctl). */
void eng_run_warning(engine_t *e, const char *text);
/* Forgets the run's counters, objects and errors so far (an import that
 * starts again as a full import counts only what that one sees). */
void eng_run_reset_stats(engine_t *e);
/* Past the agent's error limit? (then the caller finishes with stopped-error-limit) */
bool eng_run_over_limit(engine_t *e);
void eng_run_save(engine_t *e, loom_batch_t *b);
void eng_runs_recover(engine_t *e);
/* Loop timer while a run waits for its agent: fails the run when the agent
 * has been silent longer than its timeout. */
int eng_run_watch(loom_loop_t *loop, void *arg);
void eng_handle_query(engine_t *e, Loom__Envelope *env);
/* True for a run profile eng_run_start() knows. */
bool eng_run_profile_known(const char *profile);

/* engine_schedule.c */
/* Builds e's schedules from cfg (after eng_rules_load: agents are checked);
 * returns -1 with every unknown agent and profile in *ret_error (caller frees). */
int eng_sched_load(engine_t *e, const loom_deploy_t *cfg, char **ret_error);
/* Computes the first due times from now and starts the tick timer. */
void eng_sched_start(engine_t *e);
/* eng_run_finish() reports every run's end here. */
void eng_sched_run_finished(engine_t *e, uint64_t id, const char *status, const char *message);
void eng_sched_query(engine_t *e, Loom__Envelope *env, const ProtobufCMessage *m);
/* Stops the timer and frees the schedules; a sequence in progress is dropped. */
void eng_sched_free(engine_t *e);

/* engine_live.c */
/* Builds e's live agents (after eng_rules_load); -1 with every unknown
 * live.export agent in *ret_error (caller frees). */
int eng_live_load(engine_t *e, char **ret_error);
/* Starts the tick that opens, watches and reopens the streams. */
void eng_live_start(engine_t *e);
void eng_live_free(engine_t *e);
/* An ImportBatch with live set (takes ib). */
void eng_live_batch(engine_t *e, Loom__Envelope *env, Loom__ImportBatch *ib);
void eng_live_hello(engine_t *e, Loom__Envelope *env);
/* eng_run_finish() reports every run's end here. */
void eng_live_run_finished(engine_t *e, uint64_t id, const char *agent, const char *profile, const char *status);
void eng_live_query(engine_t *e, Loom__Envelope *env, const ProtobufCMessage *m);

/* engine_pwsync.c */
/* Loads the pending password changes and starts their timer. Returns 0 or
 * -1 with *error_r (static). */
int eng_pwsync_start(engine_t *e, const char **error_r);
void eng_pwsync_free(engine_t *e);
/* Takes PasswordSyncRequest, SetPasswordReply, a loom.Error answering a
 * SetPasswordRequest, and PasswordSyncReportRequest: true when env was one
 * of them (answered; the caller still frees env). */
bool eng_pwsync_message(engine_t *e, Loom__Envelope *env);

/* engine_import.c */
int eng_import_begin(engine_t *e, const char **error_r);
/* Stages one imported object of the run in progress into b. */
void eng_import_stage(engine_t *e, loom_batch_t *b, const Loom__ImportObject *o);
void eng_import_batch(engine_t *e, Loom__Envelope *env);
/* engine_sync.c */
int eng_sync_begin(engine_t *e, const char **error_r);
int eng_sync_one(engine_t *e, const char *agent, const char *anchor, bool full, const char **error_r);
/* Recomputes the outbound flows of metaverse object id to agent (NULL:
 * every agent), whole: a refresh from the queue (key, klen: its entry). */
int eng_mv_refresh(engine_t *e, const uint8_t *id, const char *agent, const void *key, size_t klen,
    const char **error_r);
/* engine_export.c */
int eng_export_begin(engine_t *e, const char **error_r);
void eng_export_results(engine_t *e, Loom__Envelope *env);

#endif
