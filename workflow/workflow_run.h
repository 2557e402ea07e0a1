/* workflow_run.h - workflows of the policy service (docs/workflows.md):
 * definitions of config/policy/workflows/NAME.yaml (workflow_defs.c), their
 * instances on requests (workflow_run.c), the built-in activities
 * (workflow_activities.c), approvals (workflow_approval.c), e-mail through an
 * SMTP relay (workflow_mail.c), groups (workflow_groups.c) and the scheduler
 * of temporal Sets, expiration and policy updates (workflow_timer.c). */
#ifndef WORKFLOW_RUN_H
#define WORKFLOW_RUN_H

#include "workflow.h"
#include "loom_expr.h"

/* ---- definitions (workflow_defs.c) ---- */

enum { WFP_AUTHN, WFP_AUTHZ, WFP_ACTION };      /* a workflow's kind (its phase) */

enum {                                           /* activity types */
	WFA_APPROVAL, WFA_FILTER, WFA_NOTIFY, WFA_FUNCTION, WFA_CREATE, WFA_UPDATE, WFA_DELETE, WFA_SYNC_RULE,
	WFA_EXTERNAL,
};

enum {                                           /* the root of a lookup */
	WFL_TARGET, WFL_REQUESTER, WFL_REQUEST, WFL_DATA, WFL_APPROVAL, WFL_RECIPIENT,
};

/* A lookup, FIM style: //Target/Manager/Email, //Requester/DisplayName,
 * //Request/ID, //WorkflowData/Name, //Approval/ID. */
typedef struct wf_lookup {
	int root;                  /* WFL_* */
	char **path;               /* attribute (or field) names after the root */
	size_t n;                  /* how many */
	char *text;                /* as written */
} wf_lookup_t;

enum { WHO_LOOKUP, WHO_FILTER, WHO_SET, WHO_ID, WHO_ADDRESS };

/* One entry of approvers, escalation, to or cc. */
typedef struct wf_who {
	int kind;                  /* WHO_* */
	wf_lookup_t lk;            /* WHO_LOOKUP */
	loom_xpath_t *x;           /* WHO_FILTER */
	char *text;                /* as written (WHO_SET: the Set's or Group's name; WHO_ID; WHO_ADDRESS) */
	char *where;               /* FILE:LINE:COLUMN */
} wf_who_t;

/* A template: text with [//...] lookups. */
typedef struct wf_tmpl_part {
	char *lit;                 /* literal text, or NULL */
	wf_lookup_t lk;            /* else this lookup */
} wf_tmpl_part_t;

typedef struct wf_tmpl {
	wf_tmpl_part_t *p;         /* the parts */
	size_t n;                  /* how many */
} wf_tmpl_t;

/* One attribute a create or update activity writes. */
typedef struct wf_valdef {
	char *attr;                /* the attribute */
	int op;                    /* LOOM__REQUEST_CHANGE__OP__* */
	loom_expr_t *e;            /* its value(s); NULL with op REMOVE: every value */
} wf_valdef_t;

typedef struct wf_activity {
	int type;                  /* WFA_* */
	char *label;               /* "NAME" or "activity N (TYPE)" */
	char *where;               /* FILE:LINE:COLUMN of its type key */
	/* approval */
	wf_who_t *approvers;       /* who may decide */
	size_t napprovers;
	wf_who_t *escalation;      /* who is asked too once the timeout passes */
	size_t nescalation;
	unsigned threshold;        /* approvals needed (0: every approver) */
	long long timeout_ms;      /* approval: until escalation or expiry (0: never); external: until killed */
	long long escalation_timeout_ms; /* after escalation, until expiry */
	/* filter validation */
	loom_xpath_t *filter;      /* the target after the request must match it, or NULL */
	loom_expr_t *cond;         /* or this must be true, or NULL */
	char *reason;              /* said when it fails, or NULL */
	/* notification (and an approval's own mail) */
	wf_who_t *to;              /* recipients */
	size_t nto;
	wf_tmpl_t subject;         /* templates (empty: the built-in ones) */
	wf_tmpl_t body;
	bool has_subject, has_body;
	/* function evaluator */
	loom_expr_t *expr;         /* the value */
	wf_lookup_t dest;          /* //Target/ATTR or //WorkflowData/NAME */
	/* create, update, delete */
	char *object_type;         /* create: the type */
	wf_valdef_t *values;       /* create, update: what to write */
	size_t nvalues;
	wf_lookup_t target;        /* update, delete: whom (default //Target) */
	/* add to a synchronization rule */
	char *rule;                /* the outbound rule's name */
	char *rule_attr;           /* the attribute holding rule names (default ExpectedRules) */
	bool remove;               /* take the target out of the rule instead */
	/* external */
	char **argv;               /* program and arguments (NULL-terminated) */
	size_t argc;
	bool rerun;                /* on_restart: rerun (at least once); false: fail (at most once) */
} wf_activity_t;

typedef struct wf_def {
	char *name;                /* unique workflow name */
	int phase;                 /* WFP_* */
	char *description;         /* free text, or NULL */
	bool run_on_policy_update; /* a set-transition MPR naming it, new or changed, runs it for the set's members */
	wf_activity_t *acts;       /* the activities, in order */
	size_t nacts;
	char *where;               /* FILE:LINE:COLUMN of its name */
	bool builtin;              /* made by the service (group-owner-approval) */
} wf_def_t;

typedef struct wf_defs {
	wf_def_t *v;               /* every workflow */
	size_t n;
	char *dir;                 /* where they were read from */
} wf_defs_t;

/* Loads every NAME.yaml of dir/workflows against the schema of p (and the
 * outbound sync rules of sync_dir, when not NULL), checks that every
 * workflow an MPR or set-transition MPR of p names exists with the right
 * kind, and adds the built-in ones. Returns 0, or -1 with *ret_error: every
 * problem, one "FILE:LINE:COLUMN: ..." per line. */
int wf_defs_load(const char *policy_dir, const char *sync_dir, const wf_policy_t *p, wf_defs_t *d, char **ret_error);
void wf_defs_release(wf_defs_t *d);
const wf_def_t *wf_defs_find(const wf_defs_t *d, const char *name);
/* With the store: every Set or Group a definition names exists, and its
 * XPath filters work with the schema. Returns 0 or -1 with *ret_error. */
int wf_defs_check_store(wf_t *w, char **ret_error);
/* A request deleting or renaming a Set or Group a workflow names by
 * set:NAME is denied (the reason), else NULL. */
char *wf_defs_validate_set(wf_t *w, const Loom__Resource *before, const Loom__Resource *after);
const char *wf_phase_name(int phase);
const char *wf_act_type_name(int type);

/* ---- running (workflow_run.c) ---- */

/* What one activity did. */
enum { ACT_NEXT, ACT_WAIT, ACT_FAIL };

/* What an activity works with. */
typedef struct wf_ctx {
	wf_t *w;
	Loom__Request *rq;         /* the request (its record is rewritten after the step) */
	size_t ii;                 /* index of the instance in rq->instances */
	Loom__WorkflowInstance *in;/* rq->instances[ii] */
	const wf_def_t *def;       /* its definition */
	const wf_activity_t *act;  /* the activity */
	Loom__Resource *target;    /* //Target: the resource as it is (action), or as the request would make it
	                              (authn, authz; before it for a delete), or NULL when it is gone */
	Loom__Resource *requester; /* //Requester, or NULL (sync, workflow, an administrator without a resource) */
	const Loom__Approval *approval; /* //Approval in an approval's mail */
	const char *recipient;     /* //Recipient/ObjectID in an approval's mail */
	loom_batch_t *b;           /* the step's batch: rows an activity adds go with the request's record */
	char *note;                /* what it did, for the history (the activity sets it) */
} wf_ctx_t;

struct wf_run;

int wf_run_open(wf_t *w, char **ret_error);
void wf_run_close(wf_t *w);
/* The request's runnable instances run at the next drain (a timer arms it). */
void wf_run_enqueue(wf_t *w, const char *request_id);
/* Runs what is queued until nothing is (never from inside wf_request_run). */
void wf_run_drain(wf_t *w);
/* Whether the workflows named authn:/authz: in rq->workflows have all run
 * and passed. When not, makes instances for those of the earliest phase
 * that has some left (the caller stores rq). Returns the phase to run, or -1
 * when all passed. */
int wf_run_needed(wf_t *w, Loom__Request *rq);
/* At commit: instances for the action workflows of rq->workflows and of its
 * set-transition matches. Returns how many. */
size_t wf_run_actions(wf_t *w, Loom__Request *rq);
/* The request ended (denied, failed): cancels its waiting instances, their
 * approvals (rows queued in b) and external programs. */
void wf_run_cancel(wf_t *w, Loom__Request *rq, loom_batch_t *b);
/* At start, for a request found in a workflow phase: instances that were in
 * an activity when the service stopped run it again. */
void wf_run_recover(wf_t *w, Loom__Request *rq);
/* Periodic work: approval deadlines, external programs, the mailer's results. */
void wf_run_tick(wf_t *w);
/* Finds the instance's definition; NULL when the configuration lost it. */
const wf_def_t *wf_run_def(wf_t *w, const Loom__WorkflowInstance *in);
/* The requester and target of ctx (read from the store). */
void wf_ctx_load(wf_ctx_t *c);
void wf_ctx_release(wf_ctx_t *c);
/* Replaces a string field of an unpacked message (which may hold
 * protobuf-c's static empty string). */
void wf_str_set(char **field, const char *value);
/* A history line on ctx's request. */
void wf_history(Loom__Request *rq, const char *who, const char *note);
/* Writes rq (and what b holds) in one batch; then mail staged in it may go. */
int wf_run_write(wf_t *w, Loom__Request *rq, loom_batch_t *b);

/* ---- activities (workflow_activities.c) ---- */

/* Runs ctx->act. Returns ACT_NEXT, ACT_WAIT or ACT_FAIL with ctx->note set. */
int wf_activity_run(wf_ctx_t *c);
/* The values a lookup gives in ctx: 0 with *ret (n values, the caller frees
 * each and the array), or -1 with *ret_reason. */
int wf_lookup_values(wf_ctx_t *c, const wf_lookup_t *lk, Loom__Value ***ret, size_t *ret_n, char **ret_reason);
/* Expands a template. */
char *wf_tmpl_expand(wf_ctx_t *c, const wf_tmpl_t *t);
/* The ObjectIDs (lower case, each once) an approvers list gives, or -1 with
 * *ret_reason. */
int wf_who_ids(wf_ctx_t *c, const wf_who_t *v, size_t n, char ***ret, size_t *ret_n, char **ret_reason);
/* The e-mail addresses a recipients list gives (persons without Email are
 * skipped and named in *ret_missing, which may be NULL). */
int wf_who_addresses(wf_ctx_t *c, const wf_who_t *v, size_t n, char ***ret, size_t *ret_n, char **ret_missing,
    char **ret_reason);
/* One line saying what rq asks ("modify Person 'Ada' (id): JobTitle = CFO"). */
char *wf_request_summary(wf_t *w, const Loom__Request *rq);
/* External programs: started by the external activity; wf_ext_poll reaps
 * them and resumes their instances (0 when none is left running). */
size_t wf_ext_poll(wf_t *w);
void wf_ext_kill_request(wf_t *w, const char *request_id);
/* After a restart: kills (SIGKILL, their process groups) the programs of
 * request_id that outlived the service that started them, found by the
 * LOOM_REQUEST_ID in their environment (/proc). Returns true when one was. */
bool wf_ext_kill_orphan(wf_t *w, const char *request_id);
void wf_ext_close(wf_t *w);

/* ---- approvals (workflow_approval.c) ---- */

/* The approval activity: makes the Approval (row in c->b), mails the approvers. */
int wf_approval_start(wf_ctx_t *c);
/* An approver decides. Returns 0 with *ret_a (the approval as it stands, the
 * caller frees it), or -1 with *ret_error and *ret_code (a LOOM__ERROR__CODE__*). */
int wf_approval_respond(wf_t *w, const Loom__ApprovalRespond *r, Loom__Approval **ret_a, char **ret_error,
    int *ret_code);
/* Pending approvals (of approver, when not NULL or empty). */
int wf_approval_list(wf_t *w, const Loom__ApprovalList *l, Loom__ApprovalListReply *ret, char **ret_error);
/* Queues in b the cancellation of rq's pending approvals. */
void wf_approval_cancel(wf_t *w, const Loom__Request *rq, loom_batch_t *b);
/* Escalates or expires what is past its deadline. */
void wf_approval_tick(wf_t *w);
int wf_approval_open(wf_t *w, char **ret_error);
/* The bus: ApprovalList and ApprovalRespond (an approver's decision, then
 * the request runs on before the answer). */
void wf_handle_approval_list(wf_t *w, Loom__Envelope *env, void *body);
void wf_handle_approval_respond(wf_t *w, Loom__Envelope *env, void *body);
void wf_approval_close(wf_t *w);
/* Resolves an approver given as an ObjectID or an AccountName (1 with *ret_id). */
int wf_person_id(wf_t *w, const char *who, char **ret_id);

/* ---- e-mail (workflow_mail.c) ---- */

/* Queues a message in b (sent once b is written and wf_mail_commit runs). */
void wf_mail_queue(wf_t *w, loom_batch_t *b, char **to, size_t nto, const char *subject, const char *body,
    const char *request_id);
/* b was written: what it queued may go. */
void wf_mail_commit(wf_t *w);
/* b was not written: forget what it queued. */
void wf_mail_abort(wf_t *w);
int wf_mail_open(wf_t *w, char **ret_error);
void wf_mail_close(wf_t *w);
void wf_mail_tick(wf_t *w);

/* ---- groups (workflow_groups.c) ---- */

/* Validation of a Group's membership settings (MembershipType, ManagerBase,
 * JoinRestriction, Filter); may write the Filter of a manager-based group
 * into after. Returns NULL or the reason it is denied. */
char *wf_groups_validate(wf_t *w, const Loom__Request *rq, const Loom__Resource *before, Loom__Resource *after);
/* A join or leave of a static group by a person who is not its owner:
 * returns 0 when rq is none (the MPRs decide), 1 granted (granting_mprs and
 * workflows filled), or -1 denied with *ret_reason. */
int wf_groups_authorize(wf_t *w, Loom__Request *rq, const Loom__Resource *before, const Loom__Resource *after,
    char **ret_reason);

/* ---- scheduler (workflow_timer.c) ---- */

int wf_timer_open(wf_t *w, char **ret_error);
void wf_timer_close(wf_t *w);
/* Re-evaluates temporal Sets and deletes expired resources now (the
 * scheduler's work; tests call it). */
void wf_timer_run(wf_t *w);
/* At start: set-transition MPRs new or changed since the last start whose
 * workflows run on policy update are applied to the members of their set. */
int wf_timer_policy_update(wf_t *w, char **ret_error);

#endif
