/* ma_ldap.h - loom-ma-ldap: the management agent for LDAP directories
 * (OpenLDAP first; docs/ldap.md).
 *
 *   ma_ldap.c         the daemon: configuration and its checks, message dispatch
 *   ma_ldap_conn.c    connections: TLS, binds, the loop's view of a socket,
 *                     entries -> objects and values -> LDAP values, reading
 *                     the server's schema and checking the configuration's names
 *   ma_ldap_import.c  full import (paged results, RFC 2696) and delta import
 *                     (content sync refreshOnly, RFC 4533; DirSync for Active
 *                     Directory), streamed under the engine's credit
 *   ma_ldap_live.c    live mode: refreshAndPersist (OpenLDAP) or a DirSync poll
 *                     (AD) streaming changes as they happen
 *   ma_ldap_export.c  export: add, modify, modrdn, delete, several in flight on
 *                     several connections, one result per change
 *   ma_ldap_passwd.c  SetPassword: Password Modify (RFC 3062) or AD unicodePwd,
 *                     the sealed password opened into guarded memory and wiped
 *   ma_ldap_usn.c     Active Directory's delta by uSNChanged, where DirSync is
 *                     not permitted or configured off (ldap.ad_delta)
 *   ma_ldap_usnmark.c pure code of it (unit-tested): its watermark cookie
 *   ma_ldap_proto.c   pure code (unit-tested): RFC 4533 controls and messages,
 *                     the post-read control, the watermark, result code names,
 *                     filter shape, DN-in-base, UUID text, schema definitions
 *
 * Every LDAP operation during a run is asynchronous: the connection's socket
 * is a reader of the daemon's loop, and messages are taken one at a time
 * (ldap_result with a zero timeout), so the bus and its heartbeats are served
 * while a directory streams entries. Connect, StartTLS and bind are
 * synchronous, bounded by ldap.timeout.
 *
 * The agent keeps no state between runs: the engine hands the watermark in.
 */
#ifndef MA_LDAP_H
#define MA_LDAP_H

#include <stdbool.h>
#include <stdint.h>

#include <lber.h>
#include <ldap.h>

#include "agent.pb-c.h"
#include "loom_agentcfg.h"
#include "loom_daemon.h"

/* ---- ma_ldap_proto.c: pure ---------------------------------------------------------- */

/* A Sync Info Message (RFC 4533 2.5), parsed. */
typedef enum {
	ML_INFO_NEW_COOKIE,            /* newcookie */
	ML_INFO_REFRESH_DELETE,        /* the delete phase (ended when done) */
	ML_INFO_REFRESH_PRESENT,       /* the present phase (ended when done) */
	ML_INFO_ID_SET,                /* syncIdSet */
} ml_info_kind_t;

typedef struct ml_sync_info {
	ml_info_kind_t kind;           /* which message */
	struct berval cookie;          /* the cookie, owned (bv_val NULL when absent) */
	bool refresh_done;             /* refreshDelete/refreshPresent: the phase is over */
	bool refresh_deletes;          /* syncIdSet: the uuids are deleted (else present) */
	uint8_t (*uuids)[16];          /* syncIdSet: the entries, owned */
	size_t nuuids;                 /* how many */
} ml_sync_info_t;

/* Sync Request Control value: mode LDAP_SYNC_REFRESH_ONLY or
 * LDAP_SYNC_REFRESH_AND_PERSIST, cookie may be NULL. *ret is ber_memfree'd
 * by the caller (ret->bv_val). */
int ml_sync_request_value(int mode, const struct berval *cookie, struct berval *ret);
/* Sync State Control value -> state (LDAP_SYNC_PRESENT..DELETE), entryUUID,
 * cookie (owned copy, bv_val NULL when absent). 0 or -1 with *error_r. */
int ml_sync_state_parse(const struct berval *v, int *ret_state, uint8_t ret_uuid[16], struct berval *ret_cookie,
    const char **error_r);
/* Sync Done Control value -> cookie (owned, NULL when absent), refreshDeletes. */
int ml_sync_done_parse(const struct berval *v, struct berval *ret_cookie, bool *ret_refresh_deletes,
    const char **error_r);
/* Sync Info Message value -> *ret (release with ml_sync_info_release). */
int ml_sync_info_parse(const struct berval *v, ml_sync_info_t *ret, const char **error_r);
void ml_sync_info_release(ml_sync_info_t *info);

/* The Post-Read control's request value (RFC 4527): the attribute asked
 * for. *ret is ber_memfree'd by the caller (ret->bv_val). */
int ml_postread_request(const char *attr, struct berval *ret);
/* The first value of attr in a Post-Read response control's value (a
 * SearchResultEntry): 1 with *ret (owned copy), 0 when the entry lacks
 * attr, -1 with *error_r when the value is malformed. */
int ml_postread_value(const struct berval *v, const char *attr, struct berval *ret, const char **error_r);

/* Whether dn lies in the search base with scope LOOM_LDAP_SCOPE_* (RDNs
 * compared case-insensitively after parsing, so spacing and case of the
 * two writings do not matter). False for a DN that does not parse. */
bool ml_dn_in_base(const char *dn, const char *base, int scope);

/* The RFC 4122 text of a 16-byte UUID as OpenLDAP writes entryUUID (lower
 * case); with ad, the byte order of an objectGUID (first three groups
 * little-endian), as AD tools write it. */
void ml_uuid_text(const uint8_t uuid[16], bool ad, char out[37]);

/* The watermark: one content sync cookie per configured base, in order,
 * each with its base DN so that a watermark of other bases is refused.
 * Text: "loom-ldap-1\n" then per base "<cookie hex>\t<base dn>\n"
 * (a base without content sync has an empty cookie). */
typedef struct ml_watermark {
	char **dns;                    /* base DNs */
	struct berval *cookies;        /* their cookies (bv_val NULL: none) */
	size_t n;                      /* how many */
} ml_watermark_t;

/* Encodes w (malloc'd bytes in *ret, length *ret_len). */
void ml_watermark_encode(const ml_watermark_t *w, uint8_t **ret, size_t *ret_len);
/* Decodes; -1 with *error_r on anything that is not a watermark this code wrote. */
int ml_watermark_decode(const uint8_t *data, size_t len, ml_watermark_t *ret, const char **error_r);
void ml_watermark_release(ml_watermark_t *w);
/* Sets base i's cookie (copy; NULL clears). */
void ml_watermark_set(ml_watermark_t *w, size_t i, const struct berval *cookie);

/* A result code's name in the agent protocol's form: noSuchObject ->
 * "no-such-object"; unknown codes are "ldap-error-N". */
const char *ml_result_name(int code, char buf[32]);
/* Whether sending the same change again may succeed (busy, unavailable,
 * unwillingToPerform, server down, timeouts), not for the change's own
 * faults (constraint or schema violations, missing entries...). */
bool ml_result_retryable(int code);

/* Checks the shape of an RFC 4515 filter: one parenthesised filter,
 * balanced, non-empty items, valid escapes. 0, or -1 with *ret_offset (the
 * byte where it goes wrong) and *why. */
int ml_filter_check(const char *f, size_t *ret_offset, const char **why);

/* The server's schema as far as the agent needs it: attribute types (by
 * every name and OID, lower-cased) with their syntax, SUP resolved, and
 * object class names. Filled from subschema text (RFC 4512) by
 * ml_schema_add_*; ml_schema_resolve() follows SUP chains once all are in. */
typedef struct ml_schema {
	struct loom_map *attrs;        /* lower name -> ml_schema_attr_t */
	struct loom_map *classes;      /* lower name -> (void *)1 */
	char **owned;                  /* distinct ml_schema_attr_t to free */
	size_t nowned;
} ml_schema_t;

ml_schema_t *ml_schema_new(void);
void ml_schema_destroy(ml_schema_t **s);
/* One attributeTypes / objectClasses value; -1 with *error_r when it does not parse. */
int ml_schema_add_attr(ml_schema_t *s, const char *def, const char **error_r);
int ml_schema_add_class(ml_schema_t *s, const char *def, const char **error_r);
void ml_schema_resolve(ml_schema_t *s);
/* Whether the schema has the attribute type (name or OID; options such as ;binary ignored). */
bool ml_schema_has_attr(const ml_schema_t *s, const char *name, size_t len);
bool ml_schema_has_class(const ml_schema_t *s, const char *name);
/* Whether its values are bytes rather than text (octet string, JPEG,
 * certificate... syntaxes). */
bool ml_schema_binary(const ml_schema_t *s, const char *name, size_t len);

/* ---- ma_ldap_usnmark.c: pure ------------------------------------------------------- */

/* Where a uSNChanged delta of Active Directory starts: the DC's database
 * (invocationId) and its highestCommittedUSN then. */
typedef struct ml_usn_mark {
	uint8_t invocation[16];        /* invocationId of the DC's NTDS Settings */
	uint64_t usn;                  /* highestCommittedUSN */
} ml_usn_mark_t;

/* The mark as a watermark cookie (ret->bv_val malloc'd). */
void ml_usn_cookie_encode(const ml_usn_mark_t *m, struct berval *ret);
/* 1 with *ret when c is such a cookie, 0 when it is not one (a DirSync
 * cookie), -1 with *error_r when it is one but malformed. */
int ml_usn_cookie_decode(const struct berval *c, ml_usn_mark_t *ret, const char **error_r);
/* Whether a DirSync search failing with code means DirSync cannot be used
 * (no right, not offered, cookie refused), so the uSNChanged way is taken,
 * rather than a passing failure (busy, unavailable, timeout). */
bool ml_dirsync_refused(int code);

/* ---- the agent ---------------------------------------------------------------------- */

struct ldapagent;

/* One connection to the directory, a reader of the loop while a run uses it. */
typedef struct ml_conn {
	LDAP *ld;                      /* the handle, NULL when closed */
	int fd;                        /* its socket, -1 when unknown */
	bool watched;                  /* fd is registered in the loop */
	struct ldapagent *la;          /* back pointer */
	int (*on_readable)(struct ml_conn *c); /* the run's handler: 0 or -1 (stop reading) */
	void *user;                    /* the run's data */
} ml_conn_t;

typedef struct ml_import {
	bool active;                   /* a run is being streamed */
	uint64_t run_id;               /* the engine's run */
	char *engine;                  /* instance address of the engine that asked */
	bool delta;                    /* delta import (content sync) or full (paged) */
	bool dirsync;                  /* delta from Active Directory: DirSync at the naming context */
	bool usn;                      /* delta from Active Directory by uSNChanged (ma_ldap_usn.c) */
	uint64_t usn_from;             /* usn: objects with uSNChanged >= this changed since the watermark */
	uint64_t usn_to;               /* usn: the DC's highestCommittedUSN at the start (the new watermark) */
	bool usn_swept;                /* usn: the sweep for objects gone has run */
	char *nc;                      /* dirsync: the naming context searched */
	uint32_t batch_size;           /* objects per batch */
	uint32_t credit;               /* batches we may still send */
	uint64_t seq;                  /* last batch sent */
	ml_conn_t conn;                /* the run's connection */
	size_t base;                   /* index of the base being read */
	int msgid;                     /* the search in progress, -1 when none */
	struct berval page_cookie;     /* full: the server's paged results cookie (owned) */
	ml_watermark_t wm;             /* cookies: from the engine (delta), then as they advance */
	Loom__ImportBatch *batch;      /* the batch being filled */
	struct loom_map *gone;         /* delta: entryUUIDs a base's search said are gone */
	struct loom_map *seen;         /* delta: entryUUIDs sent as added or modified */
	uint8_t (*deletes)[16];        /* delta: gone and not seen: sent after every base is read */
	size_t ndeletes;
	size_t deletes_pos;            /* next one to send */
	bool deletes_ready;            /* deletes is built */
	bool search_done;              /* every base read: the last batch goes when credit allows */
	uint64_t objects;              /* objects sent */
	uint64_t errors;               /* object errors sent */
	long long started_ms;          /* monotonic start, for the rate logged */
	long long heard_ms;            /* last message from the server */
} ml_import_t;

typedef struct ml_live {
	bool active;                   /* a stream is open */
	uint64_t session;              /* the engine's session id (ImportRequest.run_id) */
	char *engine;                  /* instance address of the engine */
	uint32_t batch_size;           /* objects per batch at most */
	bool credit;                   /* the last batch is acknowledged: the next may go */
	uint64_t seq;                  /* last batch sent */
	ml_conn_t conn;                /* the stream's connection */
	int *msgids;                   /* per base: its search */
	bool *refreshed;               /* per base: its refresh phase is over */
	size_t nrefreshed;             /* how many are */
	bool persisting;               /* every base's refresh is over */
	ml_watermark_t wm;             /* the cookies as of the last message read */
	uint8_t *wm_start;             /* the watermark the stream started from (sent during the refresh) */
	size_t wm_start_len;
	Loom__ImportBatch *batch;      /* the batch being filled */
	struct loom_map *gone;         /* refresh: entryUUIDs reported gone */
	struct loom_map *seen;         /* refresh: entryUUIDs sent as added or modified */
	uint8_t (*deletes)[16];        /* refresh: gone and not seen, sent once persisting */
	size_t ndeletes;
	size_t deletes_pos;            /* next one to send */
	uint64_t objects;              /* objects sent */
	long long sent_ms;             /* monotonic: last batch sent (keepalive) */
	long long polled_ms;           /* AD: last DirSync poll */
	int timer;                     /* keepalives and AD polls, 0 when none */
} ml_live_t;

typedef struct ml_change ml_change_t;

typedef struct ml_export {
	bool active;                   /* a run's connections are open */
	uint64_t run_id;               /* the run they belong to */
	char *engine;                  /* instance address of the engine */
	ml_conn_t *conns;              /* ldap.connections of them */
	size_t nconns;                 /* open ones (0 before the first batch) */
	Loom__ExportBatch **queue;     /* batches received, the head being applied */
	size_t nqueue;
	ml_change_t *ch;               /* the head batch's changes' state */
	size_t nch;
	size_t *todo;                  /* indexes of changes to start, in order */
	size_t ntodo, todo_pos;
	size_t *deferred;              /* changes that failed for want of another one */
	size_t ndeferred;
	size_t inflight;               /* operations outstanding, all connections */
	size_t max_inflight;           /* the most outstanding at once in the run (logged) */
	struct berval postread;        /* Post-Read control value asking for the anchor (ber_memfree) */
	size_t done;                   /* changes with a final result */
	size_t ok_since_defer;         /* successes since the last deferral round started */
	long long heard_ms;            /* last progress, for the timeout */
	uint64_t applied;              /* changes applied in the run (for the log) */
	long long started_ms;          /* monotonic start of the run */
	size_t *suspects;              /* changes outstanding on a lost connection: retried one at a time */
	size_t nsuspects;
	size_t solo;                   /* operations of such changes outstanding (nothing else starts meanwhile) */
	uint64_t failed_run;           /* a run this agent failed: its later batches are dropped */
} ml_export_t;

typedef struct ldapagent {
	loom_daemon_t *d;              /* the skeleton */
	char *name;                    /* agent name (--agent) */
	loom_agentcfg_t cfg;           /* config/agents/NAME.yaml */
	bool dn_anchor;                /* the anchor is the DN */
	char **attrs;                  /* attributes asked for in searches (NULL-ended) */
	char *filters_and;             /* "(|(objectClass=a)...)" from object_classes, or NULL */
	char **filters;                /* per base: the filter searched */
	ml_schema_t *schema;           /* the server's, read at the start of each run; NULL before */
	ml_import_t imp;               /* the import in progress */
	ml_export_t exp;               /* the export in progress */
	ml_live_t live;                /* the live stream */
	int timer;                     /* the timeout watch */
} ldapagent_t;

/* ma_ldap_conn.c */
/* Opens and binds a connection (TLS as configured). 0, or -1 with
 * *ret_error (malloc'd; names the URI and the bind DN, never the password). */
int ml_conn_open(ldapagent_t *la, ml_conn_t *c, char **ret_error);
/* Starts calling c->on_readable when the socket is readable. */
void ml_conn_watch(ml_conn_t *c, bool on);
/* Unbinds and closes; safe on a closed one. */
void ml_conn_close(ml_conn_t *c);
/* The server's message for the last error on ld: "Text (N)[: diagnostic]", malloc'd. */
char *ml_ld_error(LDAP *ld, int rc);
/* An entry as an import object (NULL with *ret_error malloc'd when it cannot be one). */
Loom__ImportObject *ml_entry_object(ldapagent_t *la, LDAP *ld, LDAPMessage *e, char **ret_error);
/* A Loom value as LDAP text/bytes (malloc'd into *ret). */
void ml_value_ber(const Loom__Value *v, struct berval *ret);

/* Whether the entry with entryUUID uuid is in one of the bases but skip
 * (skip = the number of bases: any), matching that base's filter: 1 yes,
 * 0 no, -1 cannot tell (*ret_error malloc'd). Deletes reported by one
 * base's content sync are checked with it when there are several bases. */
/* The LDAP scope of a configured base's scope (LOOM_LDAP_SCOPE_*). */
int ml_scope(int cfg_scope);
/* Base i of the agent's ldap.bases. */
const loom_agentcfg_ldap_base_t *ml_base(const ldapagent_t *la, size_t i);
/* The control with oid among ctrls (NULL-terminated, may be NULL), or NULL. */
LDAPControl *ml_find_control(LDAPControl **ctrls, const char *oid);
/* Why ml_find_entry found no DN: code "no-such-object", "ambiguous" or
 * "search-failed" (with the LDAP result code and whether a retry may help);
 * message malloc'd (the caller frees it). */
typedef struct ml_find_fail {
	const char *code;
	int rc;
	bool retryable;
	char *message;
} ml_find_fail_t;
/* The one entry under the agent's bases that filter selects (what names it
 * in messages: "uid 'ada'"): 1 with *ret_dn (malloc'd), 0 with *ret_fail. */
int ml_find_entry(ldapagent_t *la, LDAP *ld, const char *filter, const char *what, char **ret_dn,
    ml_find_fail_t *ret_fail);
int ml_entry_in_bases(ldapagent_t *la, LDAP *ld, size_t skip, const uint8_t uuid[16], char **ret_error);

/* Reads the server's schema on ld into la->schema and checks the names the
 * configuration uses against it. 0, or -1 with *ret_error (malloc'd) naming
 * the key and the unknown name. */
int ml_schema_load(ldapagent_t *la, LDAP *ld, char **ret_error);

/* ma_ldap_import.c */
void ml_import_start(ldapagent_t *la, Loom__Envelope *env, const Loom__ImportRequest *rq);
void ml_import_credit(ldapagent_t *la, const Loom__ImportCredit *c);
void ml_import_stop(ldapagent_t *la);
/* The timeout watch: fails a run the server has been silent in too long. */
void ml_import_tick(ldapagent_t *la);

/* Active Directory: the changes since cookie by DirSync (synchronous),
 * each changed object read again whole (REPLACE), deleted ones or ones
 * that left every base as DELETE; the new cookie in *ret_cookie (bv_val
 * malloc'd). 0, or -1 with *ret_error. */
int ml_dirsync_changes(ldapagent_t *la, LDAP *ld, const struct berval *cookie, struct berval *ret_cookie,
    Loom__ImportObject ***ret_objs, size_t *ret_nobjs, Loom__RunObjectError ***ret_errs, size_t *ret_nerrs,
    char **ret_error);

/* ma_ldap_live.c */
void ml_live_start(ldapagent_t *la, Loom__Envelope *env, const Loom__ImportRequest *rq);
/* An acknowledgement of the session (true when run_id is the live session's). */
bool ml_live_is(const ldapagent_t *la, uint64_t run_id);
void ml_live_credit(ldapagent_t *la, const Loom__ImportCredit *c);
void ml_live_stop(ldapagent_t *la);
/* At start: asks the engine to open the stream (live.enabled only). */
void ml_live_hello(ldapagent_t *la);

/* ma_ldap_export.c */
void ml_export_batch(ldapagent_t *la, Loom__Envelope *env, const Loom__ExportBatch *b);
void ml_export_stop(ldapagent_t *la);
void ml_export_tick(ldapagent_t *la);

/* ma_ldap_usn.c: Active Directory's delta by uSNChanged */
/* The DC's mark now: highestCommittedUSN and the invocationId of its
 * database (dsServiceName's). 0 or -1 with *ret_error (malloc'd). */
int ml_usn_now(ldapagent_t *la, LDAP *ld, ml_usn_mark_t *ret, char **ret_error);
/* Whether the account can read deleted objects (the Deleted Objects
 * container of nc, with the show-deleted control): the delta finds deletes
 * there. 0 or -1 with *ret_error (malloc'd). */
int ml_usn_deleted_readable(ldapagent_t *la, LDAP *ld, const char *nc, char **ret_error);
/* Starts the page (im->page_cookie) of base im->base's objects with
 * uSNChanged >= im->usn_from. 0 or -1 with *ret_error (malloc'd). */
int ml_usn_search(ldapagent_t *la, char **ret_error);
/* An object that search returned: sent as REPLACE, its objectGUID seen. */
void ml_usn_seen(ldapagent_t *la, LDAP *ld, LDAPMessage *e, Loom__ImportObject *o);
/* After every base: the objects of the naming context changed between
 * the marks, deleted ones included; those no base returned are gone
 * (im->gone). Synchronous, by pages. 0 or -1 with *ret_error (malloc'd). */
int ml_usn_sweep(ldapagent_t *la, char **ret_error);

/* ma_ldap_passwd.c */
/* Answers a SetPasswordRequest (always with a SetPasswordReply). */
void ml_set_password(ldapagent_t *la, Loom__Envelope *env, const Loom__SetPasswordRequest *rq);
/* Answers a VerifyPasswordRequest (always with a VerifyPasswordReply;
 * ma_ldap_verify.c). */
struct Loom__VerifyPasswordRequest;
void ml_verify_password(ldapagent_t *la, Loom__Envelope *env, const struct Loom__VerifyPasswordRequest *rq);
/* Closes the connection kept for passwords. */
void ml_password_stop(void);
/* Makes liblber wipe every block it frees (it holds copies of passwords in
 * request BERs); before any other libldap call. 0 or -1. */
int ml_wipe_ber_memory(void);

#endif
