/* pcns.h - password change notification (DESIGN.md §6, docs/pcns.md): what
 * loom-pcns (the listener), loom-pcns-notify (the domain controller's side)
 * and loomctl share. The pure parts live in pcns_core, unit-tested by
 * tests/unit/test_pcns.c.
 *
 *   pcns_cfg.c     the tables behind pcns.yaml (listener), pcns-notify.yaml
 *                  (notifier) and pcns-targets.yaml (the notifier's
 *                  listeners, written by loomctl pcns target)
 *   pcns_proto.c   the hooks' formats: "name: value" / "name:: base64"
 *                  lines (Samba's syncpasswords LDIF, slapd's sock overlay),
 *                  the Password Modify request value (RFC 3062 BER), group
 *                  filters, change ids
 *   pcns_listen.c  loom-pcns: the notifiers' socket, the queue, the engine
 *   notify_*.c     loom-pcns-notify: spool, delivery, hooks
 */
#ifndef PCNS_H
#define PCNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loom_config.h"
#include "loom_keys.h"

#define PCNS_ID_LEN 16

/* ---- pcns.yaml (loom-pcns) ------------------------------------------------------- */

typedef struct pcns_notifier_cfg {
	char *name;                    /* the map key: the notifier's name */
	char *key;                     /* its public key file (NAME.pub or .key) */
	char *agent;                   /* the engine agent its accounts belong to */
	uint8_t pub[LOOM_KEY_LEN];     /* derived: the key */
} pcns_notifier_cfg_t;

typedef struct pcns_cfg {
	char *path;                    /* the file loaded */
	char *listen;                  /* endpoint notifiers connect to (CURVE) */
	char *engine;                  /* the engine's bus service */
	loom_cfg_array_t notifiers;    /* pcns_notifier_cfg_t: who may send */
	long long max_queue_age_ms;    /* a change the engine has not taken by then expires (0: never) */
	long long max_retries;         /* attempts to hand a change to the engine (0: no limit) */
	long long retry_interval_ms;   /* between two attempts */
	long long engine_timeout_ms;   /* an attempt without an answer failed */
	long long in_flight;           /* changes sent to the engine without an answer yet */
	long long history_ms;          /* finished records kept this long */
} pcns_cfg_t;

extern const loom_cfg_table_t pcns_cfg_table;
/* Loads path (and every notifier's key). Returns 0 or -1 with *diags. */
int pcns_cfg_load(const char *path, pcns_cfg_t *cfg, loom_cfg_diags_t *diags);
void pcns_cfg_release(pcns_cfg_t *cfg);
/* dirname(deploy_path)/NAME */
char *pcns_cfg_beside(const char *deploy_path, const char *name);

/* ---- pcns-notify.yaml and pcns-targets.yaml (loom-pcns-notify) -------------------- */

typedef struct pcns_notify_groups {
	char *uri;                     /* the directory to read group membership from (empty: not read) */
	char *bind_dn;                 /* simple bind as this DN (empty: anonymous) */
	char *password_file;           /* its password, first line */
	char *base;                    /* where groups are searched (subtree) */
	char *filter;                  /* the groups of {dn} / {account} */
	long long timeout_ms;          /* a change whose groups cannot be read by then is dropped */
} pcns_notify_groups_t;

typedef struct pcns_notify_slapd {
	char *socket;                  /* the sock overlay's socketpath: the notifier listens there */
	pcns_notify_groups_t groups;   /* where the account's groups come from (include/exclude groups) */
	loom_cfg_strlist_t ignore_binddn; /* changes made by these DNs are not forwarded (Loom's own agent) */
	long long result_timeout_ms;   /* a change whose RESULT does not come is dropped after this */
} pcns_notify_slapd_t;

typedef struct pcns_notify_cfg {
	char *path;                    /* the file loaded */
	char *name;                    /* this notifier: its key pair is keys_dir/NAME.key */
	char *spool;                   /* the spool directory (default STATE_DIR/pcns-spool) */
	char *targets;                 /* the targets file (default pcns-targets.yaml beside this one) */
	long long retry_initial_ms;    /* first wait after a listener failed */
	long long retry_max_ms;        /* the wait doubles up to this */
	long long ack_timeout_ms;      /* a listener that has not acknowledged by then failed */
	long long max_age_ms;          /* spooled changes older than this are dropped (0: never) */
	long long queue_warning;       /* warn when the spool holds more changes than this */
	long long in_flight;           /* changes sent and not yet acknowledged */
	pcns_notify_slapd_t slapd;     /* the slapd sock overlay hook */
} pcns_notify_cfg_t;

extern const loom_cfg_table_t pcns_notify_cfg_table;
int pcns_notify_cfg_load(const char *path, pcns_notify_cfg_t *cfg, loom_cfg_diags_t *diags);
void pcns_notify_cfg_release(pcns_notify_cfg_t *cfg);

typedef struct pcns_target {
	char *name;                    /* unique */
	char *endpoint;                /* tcp://HOST:PORT or ipc://PATH of a loom-pcns */
	char *key;                     /* the listener's public key, Z85 */
	loom_cfg_strlist_t include_groups; /* only members of one of these (empty: everyone) */
	loom_cfg_strlist_t exclude_groups; /* never members of these */
	bool disabled;                 /* kept but not used */
	uint8_t pub[LOOM_KEY_LEN];     /* derived: key decoded */
} pcns_target_t;

typedef struct pcns_targets {
	loom_cfg_array_t targets;      /* pcns_target_t, in delivery order (the first is the primary) */
} pcns_targets_t;

extern const loom_cfg_table_t pcns_targets_table;
/* Loads the targets file; a missing file is an empty list. */
int pcns_targets_load(const char *path, pcns_targets_t *t, loom_cfg_diags_t *diags);
void pcns_targets_release(pcns_targets_t *t);
/* Writes t to path atomically. Returns 0 or -1 with *ret_error (malloc'd). */
int pcns_targets_save(const char *path, const pcns_targets_t *t, char **ret_error);
/* Whether a change of an account in groups (DNs) goes to target t: not
 * disabled, a member of an include group when there are any, of no exclude
 * group. A configured group matches a DN equal to it or whose first RDN's
 * value equals it (case-insensitive). */
bool pcns_target_accepts(const pcns_target_t *t, char *const *groups, size_t ngroups);
/* Why t does not take a change of an account in groups ("disabled", "in
 * none of its include_groups", "in its exclude group 'G'"), or NULL when it
 * does. The caller frees the text. */
char *pcns_target_refusal(const pcns_target_t *t, char *const *groups, size_t ngroups);
/* True when a target of ts names include or exclude groups. */
bool pcns_targets_use_groups(const pcns_targets_t *ts);

/* ---- the hooks' formats ------------------------------------------------------------- */

/* One "name: value" line. */
typedef struct pcns_kv {
	const char *name;              /* NUL-terminated, in the text */
	const char *val;               /* NUL-terminated, in the scratch */
	size_t vlen;                   /* bytes of val */
} pcns_kv_t;

typedef struct pcns_kvs {
	pcns_kv_t *v;                  /* in order */
	size_t n;
	char *scratch;                 /* guarded memory: every value decoded */
	size_t scratch_len;
} pcns_kvs_t;

/* Parses text (len bytes, modified in place: lines unfolded and split) as
 * lines of "name: value", "name:: base64" and "-" (name "-", empty value);
 * a line starting with a space continues the previous one; lines starting
 * with '#' and blank lines are skipped; the first line may be a bare word
 * (slapd's "MODIFY"): name = the word, empty value. Values go to guarded
 * memory (the caller keeps text in guarded memory too when it holds a
 * password). Returns 0 with *ret, or -1 with *error_r (static). */
int pcns_kv_parse(char *text, size_t len, pcns_kvs_t *ret, const char **error_r);
/* Wipes and frees. */
void pcns_kvs_release(pcns_kvs_t *kvs);
/* The first value of name (case-insensitive), or NULL. */
const pcns_kv_t *pcns_kv_get(const pcns_kvs_t *kvs, const char *name);

/* The Password Modify request value (RFC 3062): pointers into ber. Returns
 * 0, or -1 when it does not decode. Absent fields have len 0 and have_*. */
typedef struct pcns_passwd_modify {
	const uint8_t *user;           /* userIdentity [0] */
	size_t user_len;
	bool have_user;
	const uint8_t *newpw;          /* newPasswd [2] */
	size_t newpw_len;
	bool have_new;
} pcns_passwd_modify_t;
int pcns_passwd_modify_parse(const uint8_t *ber, size_t len, pcns_passwd_modify_t *ret);

/* True when value is a stored hash ("{SSHA}...", "{CRYPT}..."), not a password. */
bool pcns_is_hashed(const char *value, size_t len);

/* A change id derived from what identifies one password version (Samba:
 * objectGUID, pwdLastSet, msDS-KeyVersionNumber), so a change the hook sees
 * twice has one id. */
void pcns_change_id_derive(uint8_t id[PCNS_ID_LEN], const char *const *parts, size_t nparts);

/* The spool file name of a change: "<changed_at, 16 hex>-<id, 32 hex>.chg". */
char *pcns_spool_name(int64_t changed_at, const uint8_t id[PCNS_ID_LEN]);

#endif
