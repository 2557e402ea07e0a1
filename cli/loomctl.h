/* loomctl.h - shared state of loomctl's subcommands. */
#ifndef LOOMCTL_H
#define LOOMCTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

#include "loom_bus.h"
#include "loom_deploy.h"

typedef struct ctl {
	const char *config_path;       /* --config */
	bool json;                     /* -o json */
	long long timeout_ms;          /* --timeout, or bus.request_timeout */
	const char *key_name;          /* --key: key pair to use with CURVE */
	loom_deploy_t cfg;             /* loaded deployment (when needed) */
	bool cfg_loaded;               /* cfg is valid */
	void *zctx;                    /* ZeroMQ context (when connected) */
	loom_bus_t *bus;               /* broker connection (when connected) */
} ctl_t;

typedef struct ctl_cmd {
	const char *name;              /* subcommand word */
	const char *args;              /* argument synopsis */
	const char *help;              /* one line */
	const char *details;           /* more lines for `loomctl CMD --help`, or NULL */
	int (*run)(ctl_t *ctl, int argc, char **argv); /* returns the exit status */
} ctl_cmd_t;

/* Loads the deployment once; prints the errors and returns -1 on failure. */
int ctl_load_config(ctl_t *ctl);
/* Connects to the broker and waits for registration; prints why not. */
int ctl_connect(ctl_t *ctl);
/* The broker's list of instances of service ("": every one), its
 * envelope in *ret_env (the caller frees both), or NULL after printing
 * "loomctl WHAT: ..." (silently when what is NULL; loomctl_bus.c). */
struct Loom__Envelope;
struct Loom__ServicesReply;
struct Loom__ServicesReply *ctl_list_services(ctl_t *ctl, const char *what, const char *service,
    struct Loom__Envelope **ret_env);
/* True when argv holds -h or --help. */
bool ctl_wants_help(int argc, char **argv);
void ctl_cmd_usage(const ctl_cmd_t *cmd, FILE *out);
/* Sleeps ms milliseconds (signals do not cut it short). */
void ctl_sleep_ms(long long ms);
/* Parses a duration flag value or prints an error naming the flag. */
int ctl_parse_duration(const char *flag, const char *s, long long *ret_ms);
/* Parses a --limit value (1 to CTL_LIMIT_MAX, the engine's cap on a
 * listing) or prints an error. */
#define CTL_LIMIT_MAX 10000
int ctl_parse_limit(const char *s, uint32_t *ret);
/* Parses --offset (0 up to UINT32_MAX); prints the error and returns -1 when bad. */
int ctl_parse_offset(const char *s, uint32_t *ret);
/* Sends rq to the engine and returns the reply body of type want, or NULL
 * after printing why ("loomctl WHAT: ..."). */
ProtobufCMessage *ctl_ask_engine(ctl_t *ctl, const ProtobufCMessage *rq, const ProtobufCMessageDescriptor *want,
    const char *what);
/* Same with any service (the policy service is "workflow"). */
ProtobufCMessage *ctl_ask(ctl_t *ctl, const char *service, const ProtobufCMessage *rq,
    const ProtobufCMessageDescriptor *want, const char *what);
/* Prints m as one line of JSON (-o json). */
void ctl_print_json(const ProtobufCMessage *m);
/* Prints to stderr the line of text at line (1-based) with a caret under
 * column col (characters, tabs kept), for a parse error; nothing for 0. */
void ctl_show_caret(const char *text, unsigned line, unsigned col);
/* All of standard input, NUL-terminated (caller frees). */
char *ctl_read_stdin(void);
/* One secret line into buf (max + 1 bytes; the caller's guarded memory):
 * after prompt with echo off when tty (echo off before the prompt, as
 * getpass does), else the next line of standard input, read byte by byte so
 * nothing past the line is buffered in clear. A trailing CR is dropped.
 * 0 with *ret_len; 1 at end of input with nothing read; -1 with errno
 * (EMSGSIZE: a line over max bytes). */
int ctl_read_secret(const char *prompt, bool tty, char *buf, size_t max, size_t *ret_len);
/* The value of option argv[*i] (flag, flen bytes long): the rest of
 * "--flag=value" or the next argument (advancing *i); NULL after saying,
 * as cmd, that it needs one. */
const char *ctl_option_value(const char *cmd, int argc, char **argv, int *i, const char *flag, size_t flen);
/* "YYYY-MM-DD HH:MM:SS" (UTC) of us, or "-" for 0. */
void ctl_fmt_time(char *out, size_t n, int64_t us);

int ctl_ping(ctl_t *ctl, int argc, char **argv);
int ctl_services(ctl_t *ctl, int argc, char **argv);
int ctl_status(ctl_t *ctl, int argc, char **argv);
int ctl_status_roles(ctl_t *ctl);
int ctl_store(ctl_t *ctl, int argc, char **argv);
int ctl_keys(ctl_t *ctl, int argc, char **argv);
int ctl_keyset(ctl_t *ctl, int argc, char **argv);
int ctl_secret(ctl_t *ctl, int argc, char **argv);
int ctl_backup(ctl_t *ctl, int argc, char **argv);
int ctl_restore(ctl_t *ctl, int argc, char **argv);
int ctl_password(ctl_t *ctl, int argc, char **argv);
int ctl_agent(ctl_t *ctl, int argc, char **argv);
int ctl_sspr(ctl_t *ctl, int argc, char **argv);
int ctl_run(ctl_t *ctl, int argc, char **argv);
int ctl_runs(ctl_t *ctl, int argc, char **argv);
int ctl_schedule(ctl_t *ctl, int argc, char **argv);
int ctl_live(ctl_t *ctl, int argc, char **argv);
int ctl_cs(ctl_t *ctl, int argc, char **argv);
int ctl_mv(ctl_t *ctl, int argc, char **argv);
int ctl_preview(ctl_t *ctl, int argc, char **argv);
int ctl_expr(ctl_t *ctl, int argc, char **argv);
int ctl_xpath(ctl_t *ctl, int argc, char **argv);
int ctl_request(ctl_t *ctl, int argc, char **argv);
int ctl_requests(ctl_t *ctl, int argc, char **argv);
int ctl_get(ctl_t *ctl, int argc, char **argv);
int ctl_search(ctl_t *ctl, int argc, char **argv);
int ctl_approvals(ctl_t *ctl, int argc, char **argv);
int ctl_approve(ctl_t *ctl, int argc, char **argv);
int ctl_reject(ctl_t *ctl, int argc, char **argv);
int ctl_config(ctl_t *ctl, int argc, char **argv);
/* Shared by the policy commands (loomctl_policy.c). */
struct Loom__Value;
void ctl_print_value(const struct Loom__Value *v);
const char *ctl_request_status(int s);
int ctl_pcns(ctl_t *ctl, int argc, char **argv);
int ctl_report(ctl_t *ctl, int argc, char **argv);
int ctl_activate(ctl_t *ctl, int argc, char **argv);

/* The policy service's commands (loomctl_policy.c), for ctl_cmds. */
#define CTL_POLICY_CMDS \
	{ "request", "create TYPE ATTR=VALUE... | modify ID [ATTR=VALUE|+ATTR=VALUE|-ATTR=VALUE|-ATTR]... | delete ID " \
	  "| show ID  [--as REQUESTER]", \
	  "submit a request to the policy service (loom-workflow), or show one with its history", \
	  "  create TYPE ATTR=VALUE...  a new resource; repeat ATTR=VALUE for several values\n" \
	  "  modify ID CHANGE...        ATTR=VALUE replaces the attribute's values (ATTR= clears it),\n" \
	  "                             +ATTR=VALUE adds a value, -ATTR=VALUE removes one, -ATTR all\n" \
	  "  delete ID                  deletes the resource\n" \
	  "  show ID                    status, reason, granting MPRs, workflows and history\n" \
	  "  --as REQUESTER             the requester: an ObjectID, or sync (default: sync,\n" \
	  "                             the service's built-in requester, granted everything)\n" \
	  "  Values are text; the service converts them to the attribute's type (integers,\n" \
	  "  true/false, 2026-01-02T03:04:05Z, hex for binary, an ObjectID for a reference).\n" \
	  "output: a first line 'request ID STATUS OPERATION TYPE TARGET', then the details;\n" \
	  "  -o json: the Request\n" \
	  "exit status: 0 completed (or committed, its action workflows running); 3 denied or failed\n" \
	  "  (the reason is shown); 4 waiting: for an approval (loomctl approvals) or an external\n" \
	  "  program of a workflow (loomctl request show ID later); 1 no answer", ctl_request }, \
	{ "requests", "[--status S] [-n N] [--offset K]", "list requests of the policy service, newest first", \
	  "  --status S   validating, authorizing, committed, completed, denied, failed, ...\n" \
	  "  -n N         at most N (default 100, at most 10000)\n" \
	  "  --offset K   skip the K newest first (page through more than 10000)\n" \
	  "output: one line per request: id, status, operation, type, target, requester", ctl_requests }, \
	{ "get", "TYPE ID", "show a resource of the policy service", \
	  "  TYPE may be '-' for any type. output: one 'Attribute: value' line per value\n" \
	  "  (ObjectID and ObjectType first); -o json: the Resource", ctl_get }, \
	{ "search", "'XPATH' [-n N] [--offset K]", "resources of the policy service an XPath filter selects", \
	  "  The FIM XPath dialect of docs/xpath.md, evaluated by loom-workflow on its store.\n" \
	  "  -n N         at most N (default 100, at most 10000)\n" \
	  "  --offset K   skip the first K (page through more than 10000)\n" \
	  "output: one line per resource: ObjectID, ObjectType, DisplayName (sorted by the\n" \
	  "  service's resource number); -o json: the reply\n" \
	  "exit status: 0 (even when nothing matches); 2 the filter is wrong (the column) or no answer", ctl_search },

/* Approvals (loomctl_approvals.c). */
#define CTL_APPROVAL_CMDS \
	{ "approvals", "[--for PERSON] [--all] [-n N]", "approvals waiting for a decision (workflows of the policy service)", \
	  "  --for PERSON  only those PERSON (an ObjectID or an AccountName) may decide\n" \
	  "  --all         decided ones too (approved, rejected, expired, canceled)\n" \
	  "  -n N          at most N, newest first (default 100)\n" \
	  "output: per approval a line 'ID STATE CREATED expires DEADLINE', what is asked,\n" \
	  "  its request, approvers and decisions; -o json: the reply", ctl_approvals }, \
	{ "approve", "ID --as PERSON [--reason TEXT]", "approve a request as one of its approvers", \
	  "  ID            the approval (from loomctl approvals or the e-mail; a unique start is enough)\n" \
	  "  --as PERSON   the approver: an ObjectID or an AccountName\n" \
	  "  --reason TEXT recorded in the request's history\n" \
	  "output: the approval's state and the request's status after it\n" \
	  "exit status: 0 recorded; 1 refused (not an approver, decided already, no such approval)", ctl_approve }, \
	{ "reject", "ID --as PERSON [--reason TEXT]", "reject a request as one of its approvers (it is denied)", \
	  "  as approve; one rejection denies the request", ctl_reject }, \
	{ "config", "export --to DIR | import --from DIR [--dry-run] [--as REQUESTER]", \
	  "move the policy and sync configuration between environments (dev -> test -> production)", \
	  "  export  writes DIR/schema/schema.yaml (the policy service's live schema), DIR/sets/sets.yaml\n" \
	  "          (its Sets, explicit members by AccountName) and copies of policy/*.yaml,\n" \
	  "          policy/workflows/*.yaml and sync/*.yaml\n" \
	  "  import  prints the differences in the order they are applied (attributes, types,\n" \
	  "          bindings, Sets, then files), checks the files with loom-workflow and\n" \
	  "          loom-engine --check-config, then applies them: requests (by REQUESTER, default\n" \
	  "          sync) and files written atomically (files DIR lacks are removed); restart the\n" \
	  "          services afterwards. No schema or Set is deleted: those only here are noted.\n" \
	  "  --dry-run  the differences only\n" \
	  "exit status: 0 done (or no changes); 1 a check or a step failed (the steps before it are\n" \
	  "applied); 2 bad usage", ctl_config },

extern const ctl_cmd_t ctl_cmds[];

#endif
