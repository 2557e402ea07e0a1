/* workflow.h - loom-workflow, the policy service (DESIGN.md §5, docs/policy.md):
 * the schema and MPRs of config/policy/NAME.yaml, resources in the service
 * store, the XPath provider over them, and the request pipeline. */
#ifndef WORKFLOW_H
#define WORKFLOW_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent.pb-c.h"
#include "loom_buf.h"
#include "loom_config.h"
#include "loom_daemon.h"
#include "loom_store.h"
#include "loom_xpath.h"
#include "policy.pb-c.h"

/* Value types, numbered as loom_xpath_attr_info_t wants them. */
enum { WF_STRING = 1, WF_INTEGER = 2, WF_BOOLEAN = 3, WF_BINARY = 4, WF_DATETIME = 5, WF_REFERENCE = 6 };

/* ---- the policy configuration (workflow_schema.c) ---- */

typedef struct wf_attr {
	char *name;                /* attribute name, case-sensitive */
	int type;                  /* WF_STRING ... WF_REFERENCE */
	bool multi;                /* multi-valued */
	bool system;               /* set by the service only (ObjectID, ObjectType, CreatedTime, Creator) */
	bool has_re;               /* re is compiled */
	regex_t re;                /* POSIX extended regex every string value must match */
	char *re_text;             /* the regex as written */
	char *where;               /* "FILE:LINE:COLUMN" of the regex (or of the attribute), the description
	                              resource ("AttributeTypeDescription 'NAME'") or "built-in", for reasons */
	bool builtin;              /* defined by the service: its description cannot change or go */
	char *description;         /* free text, or NULL */
} wf_attr_t;

typedef struct wf_binding {
	const wf_attr_t *attr;     /* the attribute bound */
	bool required;             /* every resource of the type must have a value */
	char *where;               /* "FILE:LINE:COLUMN" of the binding, "BindingDescription '...'" or "built-in" */
	bool implicit;             /* one of the attributes bound to every type (ObjectID ... DisplayName) */
	bool builtin;              /* a built-in schema type's own binding: its description cannot change or go */
	bool declared;             /* declared by a policy file or a BindingDescription (not only implicit) */
	bool has_re;               /* re is compiled: it replaces the attribute's regex for this type */
	regex_t re;                /* the binding's StringRegex */
	char *re_text;             /* ... as written */
} wf_binding_t;

typedef struct wf_type {
	char *name;                /* object type name */
	wf_binding_t *b;           /* its bindings, built-ins first */
	size_t nb;                 /* how many */
	bool builtin;              /* a built-in type: its description cannot change or go */
	char *description;         /* free text, or NULL */
} wf_type_t;

/* Operations an MPR grants, as bits. */
enum { WF_OP_CREATE = 1, WF_OP_DELETE = 2, WF_OP_READ = 4, WF_OP_ADD = 8, WF_OP_REMOVE = 16, WF_OP_MODIFY = 32 };

typedef struct wf_mpr {
	char *name;                /* unique MPR name */
	loom_xpath_t *requesters;  /* requester set filter, or NULL (then req_sync, relative or requester_set is set) */
	bool req_sync;             /* requesters: sync, the built-in requester of engine exports */
	char *relative;            /* requester relative to the target: an attribute of the target
	                              whose values must hold the requester (ObjectID: the target itself), or NULL */
	unsigned ops;              /* WF_OP_* bits */
	bool all_attrs;            /* attributes: '*' */
	char **attrs;              /* the attributes it covers */
	size_t nattrs;             /* how many */
	loom_xpath_t *before;      /* target-before filter, or NULL: any */
	loom_xpath_t *after;       /* target-after filter, or NULL: any */
	char *requester_set;       /* or: a Set or Group (ObjectID or DisplayName) holding the requester, or NULL */
	char *before_set;          /* a Set or Group the target must be in before, or NULL: any */
	char *after_set;           /* a Set or Group the target must be in after, or NULL: any */
	char **workflows;          /* "authn:NAME", "authz:NAME", "action:NAME" */
	size_t nworkflows;         /* how many */
	char *where;               /* FILE:LINE:COLUMN of its name */
} wf_mpr_t;

/* A set-transition MPR: when a resource joins (in) or leaves (out) a set,
 * its action workflows are due (recorded on the request; run later). */
typedef struct wf_tmpr {
	char *name;                /* unique among set-transition MPRs */
	char *set;                 /* the transition set: its ObjectID or DisplayName */
	bool in;                   /* transition in (else out) */
	char **workflows;          /* "action:NAME" */
	size_t nworkflows;         /* how many */
	char *where;               /* FILE:LINE:COLUMN of its name */
} wf_tmpr_t;

typedef struct wf_policy {
	wf_attr_t *attrs;          /* every attribute type, built-ins first */
	size_t nattrs;             /* how many */
	wf_type_t *types;          /* every object type, built-ins first */
	size_t ntypes;             /* how many */
	wf_mpr_t *mprs;            /* request MPRs, enabled ones only */
	size_t nmprs;              /* how many */
	char **admins;             /* requesters granted everything (ObjectIDs, lower case) */
	size_t nadmins;            /* how many */
	bool sync_restricted;      /* sync_unrestricted: false in some file: sync is under the MPRs */
	wf_tmpr_t *tmprs;          /* set-transition MPRs, enabled ones only */
	size_t ntmprs;             /* how many */
} wf_policy_t;

/* AttributeTypeDescription.DataType of each WF_* type ("String" ...), NULL at 0. */
extern const char *const wf_data_types[];

/* Loads every NAME.yaml of dir (attributes, types, mprs, administrators) on
 * top of the built-in schema. Returns 0, or -1 with *ret_error: every
 * problem, one "FILE:LINE:COLUMN: ..." per line (the caller frees it).
 * provider is used to check MPR filters against the schema (may be NULL
 * while the store is not open: then filters are only parsed). */
int wf_policy_load(const char *dir, wf_policy_t *p, char **ret_error);
void wf_policy_release(wf_policy_t *p);
const wf_attr_t *wf_attr_find(const wf_policy_t *p, const char *name);
const wf_type_t *wf_type_find(const wf_policy_t *p, const char *name);
const wf_binding_t *wf_binding_find(const wf_type_t *t, const char *attr);
/* Whether requester is the built-in sync identity, the service's own
 * identity (workflow: requests of action workflows and the scheduler) or an
 * administrator. */
bool wf_policy_is_admin(const wf_policy_t *p, const char *requester);

/* Building a schema (workflow_schema.c, used by workflow_schemares.c). */

/* Fills an empty p with the built-in attributes, types and bindings, with
 * room for extra_attrs more attributes (attrs never moves afterwards:
 * bindings point into it). */
void wf_schema_builtin(wf_policy_t *p, size_t extra_attrs);
/* Frees p's attributes and types only (what wf_schema_builtin and the
 * functions below make) and leaves them empty. */
void wf_schema_release(wf_policy_t *p);
/* Whether s is a valid attribute or type name (a letter, then letters,
 * digits, '_' or '-'). */
bool wf_name_ok(const char *s);
/* Adds attribute name (room must be left by wf_schema_builtin). regex may be
 * NULL. Returns it, or NULL with *ret_reason (a regex that does not compile,
 * with regcomp's message, or one on a non-string attribute; the caller frees it). */
wf_attr_t *wf_schema_add_attr(wf_policy_t *p, const char *name, int type, bool multi, const char *regex,
    const char *where, const char *description, char **ret_reason);
/* Adds object type name with the implicit bindings. */
wf_type_t *wf_schema_add_type(wf_policy_t *p, const char *name, const char *description);
/* Binds a to t (merged with a binding there already: required is or-ed, a
 * regex replaces). Returns 0, or -1 with *ret_reason (a regex that does not
 * compile, or on a non-string attribute; a system attribute made required). */
int wf_schema_bind(wf_type_t *t, const wf_attr_t *a, bool required, const char *regex, const char *where,
    char **ret_reason);

/* Says whether id (an ObjectID) names an existing resource and, when it
 * does, its ObjectID as stored (*ret_id, the caller frees it). */
typedef bool wf_ref_exists_fn(void *arg, const char *id, char **ret_id);

/* Applies changes to before (NULL for a create) and checks the result
 * against the schema: values converted to the attribute's type, single-
 * and multi-valued, regexes, references that resolve, attributes bound to
 * type, system attributes left alone, required bindings present. Returns 0
 * with *ret_after (a new Resource the caller frees with
 * protobuf_c_message_free_unpacked; object_id/object_type copied from
 * before or left empty), or -1 with *ret_reason naming the attribute and
 * the rule it broke (the caller frees it). */
int wf_apply_changes(const wf_policy_t *p, const wf_type_t *type, const Loom__Resource *before,
    Loom__RequestChange *const *changes, size_t nchanges, wf_ref_exists_fn *ref_exists, void *arg,
    Loom__Resource **ret_after, char **ret_reason);

/* ---- proto helpers (workflow_schema.c) ---- */
const Loom__Attr *wf_res_attr(const Loom__Resource *r, const char *name);
Loom__Value *wf_value_str(int case_, const char *s);
Loom__Value *wf_value_i64(int case_, int64_t v);
/* The value as text (references and strings as they are). */
char *wf_value_text(const Loom__Value *v);
/* Sets attribute name of r to the n values (taken); n == 0 removes it. */
void wf_res_set(Loom__Resource *r, const char *name, Loom__Value **v, size_t n);
const char *wf_status_name(Loom__Request__Status s);
int wf_status_parse(const char *s, Loom__Request__Status *ret);
const char *wf_op_name(Loom__Request__Operation o);

/* ---- the service (workflow_store.c, workflow_xpath.c, workflow_request.c) ---- */

typedef struct wf_overlay {
	bool active;               /* answer for this resource from res below */
	bool gone;                 /* the request deletes it: it does not exist (res is its old state) */
	loom_xpath_rid_t rid;      /* its rid (a fresh one for a create) */
	const Loom__Resource *res; /* its state after the request (before it, when gone) */
} wf_overlay_t;

struct wf_sets;

typedef struct wf {
	loom_daemon_t *daemon;     /* the skeleton */
	wf_policy_t policy;        /* schema and MPRs */
	loom_store_t *store;       /* STATE_DIR/workflow */
	int cf_res, cf_res_id, cf_res_index, cf_req, cf_req_id, cf_meta; /* family indexes */
	int cf_chg, cf_origin;     /* change log and export origins (workflow_agent.c) */
	uint64_t next_chg;         /* next commit number (chg) */
	uint64_t chg_first;        /* oldest commit number the change log still holds */
	char *store_id;            /* made with the store: part of a policy agent's watermark */
	const Loom__ExportChange *origin;  /* during an export's request: the change it comes from */
	const char *origin_agent;  /* ... and its agent */
	uint64_t origin_hash;      /* ... and a hash of the change (origin rows) */
	struct wf_agents *agents;  /* policy agents served (workflow_agent.c) */
	int cf_member;             /* set membership: set rid, member rid (workflow_sets.c) */
	struct wf_sets *sets;      /* computed membership of Sets, Groups and MPR filters (workflow_sets.c) */
	uint64_t next_rid;         /* next resource number */
	uint64_t next_seq;         /* next request number */
	loom_xpath_provider_t xp;  /* the provider over the store */
	wf_overlay_t overlay;      /* the target's after-state during a target-after check */
	loom_xpath_rid_t cache_rid;    /* rid of cache_res */
	Loom__Resource *cache_res;     /* the last resource the provider read */
	loom_xpath_rid_t tcache_rid;   /* rid of tcache_res (object_type's cache) */
	Loom__Resource *tcache_res;    /* the last resource object_type read */
	Loom__Attr cache_attr;         /* synthesized ObjectID/ObjectType attribute */
	Loom__Value cache_val;         /* its value */
	Loom__Value *cache_valp;       /* pointer to it */
	char *crash_at;            /* fault injection: LOOM_WORKFLOW_CRASH_AT (a status name) */
	wf_policy_t cfg_schema;    /* the policy files' schema (attributes and types only): the seed, and
	                              where a reason points when the store's definition is the file's */
	struct wf_schema_next *schema_next; /* the schema a request being run would make (validated), or NULL */
	char **schema_problems;    /* descriptions the live schema leaves out (a store that does not build) */
	size_t nschema_problems;   /* how many */
	bool group_commit;         /* writes are not synced one by one: wf_request_flush syncs them (group commit) */
	bool unsynced;             /* a write since the last sync */
	struct wf_held *held;      /* replies held until the sync that makes their requests durable */
	size_t nheld, capheld;     /* how many, allocated */
	bool flush_armed;          /* a timer will flush */
	struct wf_defs *defs;      /* workflow definitions (workflow_defs.c), or NULL */
	struct wf_run *run;        /* running workflows: queue, approvals, programs, mail (workflow_run.c) */
	int cf_approval;           /* approvals by id (workflow_approval.c) */
	int cf_mail;               /* mail waiting for the relay (workflow_mail.c) */
	struct wf_sspr *sspr;      /* self-service password reset (workflow_sspr.c), or NULL when not configured */
} wf_t;

/* ---- self-service password reset (workflow_sspr.c, docs/sspr.md) ---- */

/* Loads sspr_path (sspr.yaml beside the deployment file) when it exists,
 * and logs how many registrations the key set can check (the pepper is
 * derived from STATE_DIR/keyset at each use). 0 (w->sspr stays NULL
 * without the file), or -1 with *ret_error. */
int wf_sspr_open(wf_t *w, const char *sspr_path, char **ret_error);
void wf_sspr_close(wf_t *w);
/* Writes answer normalised into out (strlen(answer) + 1 bytes): ASCII
 * letters folded to lower case, leading and trailing blanks dropped, inner
 * runs of blanks made one space. Returns its length. */
size_t wf_sspr_normalize(const char *answer, char *out);
/* Checks sspr_path (when it exists) without starting: 0, or -1 with *ret_error. */
int wf_sspr_check(const char *sspr_path, char **ret_error);
/* Answers SsprQuestionsRequest, SsprRegister, SsprReset and takes the
 * engine's PasswordSyncReply. true when env was one of them (env is
 * left to the caller to free). */
bool wf_sspr_handle(wf_t *w, Loom__Envelope *env);

int wf_store_open(wf_t *w, const char *path, char **ret_error);
void wf_store_close(wf_t *w);
/* The resource with ObjectID id (any case): 1 with *ret, 0 when none, -1 with *error_r. */
int wf_res_get_by_id(wf_t *w, const char *id, Loom__Resource **ret, const char **error_r);
int wf_res_get(wf_t *w, loom_xpath_rid_t rid, Loom__Resource **ret, const char **error_r);
/* Queues in b the writes that replace before with after (either may be NULL). */
void wf_res_write(wf_t *w, loom_batch_t *b, const Loom__Resource *before, const Loom__Resource *after);
/* Queues the request's record in b. */
void wf_req_write(wf_t *w, loom_batch_t *b, const Loom__Request *rq);
int wf_req_get(wf_t *w, const char *id, Loom__Request **ret, const char **error_r);
void wf_meta_write(wf_t *w, loom_batch_t *b);
/* Commits the change log keeps (older ones are trimmed). */
#define WF_CHG_KEEP 1000000u
/* Queues the change-log row of a commit that turns before into after. */
void wf_chg_write(wf_t *w, loom_batch_t *b, const Loom__Request *rq, const Loom__Resource *before,
    const Loom__Resource *after);
/* Queues a change-log row for a resource changed otherwise (a Set or Group
 * whose members a request changed). */
void wf_chg_write_id(wf_t *w, loom_batch_t *b, const char *object_id, const char *object_type, bool deleted,
    const char *request_id);
/* The origin key of an export's change. */
void wf_origin_key(loom_buf_t *k, const char *agent, uint64_t change_id);

void wf_xpath_provider(wf_t *w, loom_xpath_provider_t *ret);

/* Runs rq (status validating, or authorizing, or committed after a
 * restart: resumed) through the pipeline to its end, persisting every status. */
void wf_request_run(wf_t *w, Loom__Request *rq, bool resumed);
/* The same; again is the history note when the request is validated once
 * more (its workflows passed, or after a restart). */
void wf_request_run_ex(wf_t *w, Loom__Request *rq, bool resumed, const char *again);
/* Validates rq against the resources as they are now, changing nothing:
 * NULL with *ret_before and *ret_after (either may be NULL; the caller frees
 * them), or the reason it would be denied. */
char *wf_request_preview(wf_t *w, Loom__Request *rq, Loom__Resource **ret_before, Loom__Resource **ret_after);
/* rq was committed (note says how): post-processing with its action
 * workflows queued, or completed. */
void wf_request_after_commit(wf_t *w, Loom__Request *rq, const char *note);
/* Moves rq to status s with a history entry and stores it. Returns 0, or -1 (logged). */
int wf_set_status(wf_t *w, Loom__Request *rq, Loom__Request__Status s, const char *who, const char *note);
void wf_set_reason(Loom__Request *rq, const char *reason);
/* Writes b: synced, or (group commit) unsynced until wf_request_flush. */
int wf_store_write(wf_t *w, loom_batch_t *b, const char **error_r);
void wf_reply(wf_t *w, Loom__Envelope *env, const ProtobufCMessage *m);
void wf_reply_error(wf_t *w, Loom__Envelope *env, Loom__Error__Code code, const char *msg);
/* Puts requests left in flight by a crash back through the pipeline. */
int wf_requests_recover(wf_t *w, char **ret_error);
/* Stores a new request made from in (requester, operation, target, changes
 * moved out of in) and runs it through the pipeline. Returns the request as
 * it ended, or NULL with *ret_error when it could not even be stored. */
Loom__Request *wf_request_submit(wf_t *w, Loom__Request *in, char **ret_error);
/* Handles a directed message. */
void wf_handle(wf_t *w, Loom__Envelope *env);
/* Takes a submitted request (requester, operation, target, changes: moved
 * out of in), gives it an id, stores it and runs it through the pipeline.
 * Returns the request as it ended (the caller frees it), or NULL with
 * *ret_error when it cannot be stored. */
Loom__Request *wf_request_submit(wf_t *w, Loom__Request *in, char **ret_error);
/* wf_request_submit under the id given (an activity's step key, see
 * workflow_activities.c), at most once: when a request with that id is
 * stored already (made before a restart), it is returned as it is now,
 * with *ret_existed true, and nothing is submitted. */
Loom__Request *wf_request_submit_once(wf_t *w, Loom__Request *in, const char *id, bool *ret_existed, char **ret_error);
/* With group_commit: makes every write so far durable (one synced write)
 * and sends the replies held for it. Returns 0, or -1 with *ret_error (the
 * held requests get an error reply). Without: nothing to do. */
int wf_request_flush(wf_t *w, char **ret_error);

/* Whether some resource (of type; NULL: any) has a value for attribute a:
 * 1 with *ret_id (its ObjectID, the caller frees it), 0 when none, -1 with *error_r. */
int wf_attr_in_use(wf_t *w, const wf_attr_t *a, const char *type, char **ret_id, const char **error_r);
/* Whether some resource of type exists: 1 with *ret_id, 0, -1 with *error_r. */
int wf_type_in_use(wf_t *w, const char *type, char **ret_id, const char **error_r);
/* A new UUID (the caller frees it). */
char *wf_new_uuid(void);

/* ---- the schema as resources (workflow_schemares.c) ---- */

/* At start (after wf_store_open, before wf_sets_open): makes every built-in
 * attribute, type and binding, and every one of the policy files not made
 * before, an AttributeTypeDescription, ObjectTypeDescription or
 * BindingDescription resource (one synced batch), then builds w->policy's
 * schema from the description resources (the store is the truth). The
 * files' schema moves to w->cfg_schema. Returns 0, or -1 with *ret_error. */
int wf_schema_open(wf_t *w, char **ret_error);
void wf_schema_close(wf_t *w);
/* During validation of a request on a description resource (before/after
 * as wf_apply_changes made them): the rules a schema change must keep, and
 * the schema it makes, kept in w->schema_next. Returns NULL (also for any
 * other resource), or the reason it is denied (the caller frees it). */
char *wf_schema_validate(wf_t *w, const Loom__Request *rq, const Loom__Resource *before,
    const Loom__Resource *after);
/* The request committed: w->schema_next becomes the live schema. */
void wf_schema_commit(wf_t *w);
/* The request does not commit: w->schema_next is dropped. */
void wf_schema_abort(wf_t *w);

/* ---- sets (workflow_sets.c) ---- */

/* Loads every Set and Group (Filter, ExplicitMember) and their stored
 * members, compiles each MPR filter into a set kept like them, and computes
 * what is not stored. Returns 0, or -1 with *ret_error. */
int wf_sets_open(wf_t *w, char **ret_error);
void wf_sets_close(wf_t *w);
/* Refuses (returns the reason, the caller frees it) a request that writes
 * ComputedMember; NULL when it does not. */
char *wf_sets_validate_changes(const Loom__Request *rq);
/* Refuses a Set or Group whose Filter (new or changed from before) does not
 * compile or cannot work with the schema, naming the column; NULL when fine. */
char *wf_sets_validate_filter(wf_t *w, const Loom__Resource *before, const Loom__Resource *after);
/* Before authorization: notes the requester's and the target's memberships,
 * then applies the request's effect on every set's members in memory
 * (undone by wf_sets_abort). before/after as validate made them. Returns
 * 0, or -1 with *ret_reason (a set filter that cannot be evaluated, sets
 * that do not settle). */
int wf_sets_plan(wf_t *w, Loom__Request *rq, const Loom__Resource *before, const Loom__Resource *after,
    char **ret_reason);
/* Whether the requester was in MPR m's requester set (filter or Set), the
 * target in its target_before filter and Set before the request and in its
 * target_after filter and Set after it (as planned); a condition the MPR
 * does not have holds. */
bool wf_sets_mpr_requester(wf_t *w, size_t m);
bool wf_sets_mpr_before(wf_t *w, size_t m);
bool wf_sets_mpr_after(wf_t *w, size_t m);
/* Queues the planned membership rows in b and records the transitions
 * (and the set-transition MPRs they match) on rq. */
void wf_sets_commit_batch(wf_t *w, loom_batch_t *b, Loom__Request *rq);
/* The batch was written: the plan is now the state. */
void wf_sets_done(wf_t *w);
/* The request does not commit: undoes the plan. */
void wf_sets_abort(wf_t *w);
/* The provider's answers about ComputedMember (workflow_store.c asks). */
const Loom__Attr *wf_sets_members_attr(wf_t *w, loom_xpath_rid_t rid);
int wf_sets_find_member(wf_t *w, const char *type, const Loom__Value *v, loom_xpath_visit_fn *fn, void *varg);
/* Whether rid is a Set or Group whose members the service keeps. */
bool wf_sets_is_set(wf_t *w, loom_xpath_rid_t rid);
/* Adds ComputedMember to r (a copy handed out by get or search). */
void wf_sets_decorate(wf_t *w, Loom__Resource *r);
/* The scheduler's plan (workflow_timer.c): every Set, Group and MPR filter
 * whose filter reads the time is evaluated in full, and those reading
 * their members after them. Commit it like a request's (wf_sets_commit_batch,
 * wf_sets_done) or undo it (wf_sets_abort). Returns how many Set and Group
 * memberships changed, or -1 with *ret_reason. */
int wf_sets_plan_temporal(wf_t *w, int64_t now_us, char **ret_reason);
/* The ObjectIDs of the members of the Set or Group name (ObjectID or
 * DisplayName): 1 with them (the caller frees), 0 when there is no such set. */
int wf_sets_members_of(wf_t *w, const char *name, char ***ret_ids, size_t *ret_n);
/* A SetRef of the Set or Group name: 1 with it, or 0. */
int wf_sets_ref(wf_t *w, const char *name, Loom__SetRef **ret);
/* Counters (tests, bench): sets evaluated in full, resources tested one by one. */
void wf_sets_counters(wf_t *w, size_t *ret_full, size_t *ret_tests);

/* ---- the policy service as a connected system (workflow_agent.c) ---- */

/* Loads config/agents/NAME.yaml files: those of type policy naming this service are served. */
int wf_agents_load(wf_t *w, const char *deploy_path, const char *service, char **ret_error);
void wf_agents_free(wf_t *w);
/* Whether env is agent protocol (ImportRequest, ImportCredit, ExportBatch):
 * then it is handled and freed. */
bool wf_agent_handle(wf_t *w, Loom__Envelope *env);

#endif
