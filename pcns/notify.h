/* notify.h - loom-pcns-notify: shared state of its files.
 *
 *   notify_main.c   the daemon: spool watching, delivery to the listeners
 *                   (primary first, then the next, with backoff), status
 *   notify_hooks.c  the hooks: Samba's syncpasswords --script and the
 *                   generic --submit (short-lived processes that spool one
 *                   change), slapd's sock overlay (inside the daemon)
 *
 * A change is sealed to every target listener's key as soon as the hook
 * has it, and only the sealed boxes are written: the spool never holds a
 * password in clear.
 */
#ifndef NOTIFY_H
#define NOTIFY_H

#include "pcns.h"
#include "pcns.pb-c.h"
#include "loom_daemon.h"
#include "loom_deploy.h"

/* What a hook took from the directory, before it is sealed. */
typedef struct notify_change {
	uint8_t id[PCNS_ID_LEN];       /* the change id */
	const char *account;           /* account name ("" when unknown) */
	const char *dn;                /* DN ("" when unknown) */
	const char *anchor;            /* objectGUID text ("" when unknown) */
	const char *hook;              /* samba, slapd, stdin */
	char **groups;                 /* group DNs the account is a member of */
	size_t ngroups;
	const uint8_t *password;       /* the new password (guarded memory, the caller's) */
	size_t password_len;
} notify_change_t;

/* Seals c to every target of t that accepts it and writes the spool file
 * (atomically, with fsync). Returns the number of targets it was sealed
 * for (0: none accepts it, nothing written) with the file's name in
 * *ret_name (malloc'd; ret_name may be NULL), or -1 with *ret_error. */
int notify_spool_change(const char *spool, const pcns_targets_t *t, const notify_change_t *c, char **ret_name,
    char **ret_error);

/* Seals c to every target of t that accepts it and packs the spool entry:
 * returns the number of targets (0: none accepts it, nothing made) with
 * the file name and content in *ret_name and *ret_data (malloc'd). */
int notify_spool_pack(const pcns_targets_t *t, const notify_change_t *c, char **ret_name, uint8_t **ret_data,
    size_t *ret_len);

/* The spool directory of a notifier configuration: cfg->spool or
 * STATE_DIR/pcns-spool (caller frees). */
char *notify_spool_dir(const pcns_notify_cfg_t *cfg, const loom_deploy_t *deploy);

/* Loads the notifier's file and its targets file; prints every error to
 * stderr naming the process. Returns 0 or -1. */
int notify_load(const char *process, const char *path, pcns_notify_cfg_t *cfg, pcns_targets_t *targets);

/* Hook modes, run instead of the daemon (argv after the mode word). */
int notify_samba_script(const loom_deploy_t *deploy, const pcns_notify_cfg_t *cfg, const pcns_targets_t *t);
int notify_submit(const loom_deploy_t *deploy, const pcns_notify_cfg_t *cfg, const pcns_targets_t *t,
    const char *account, const char *dn, const char *anchor, const char *id_hex);

/* The slapd sock overlay hook inside the daemon. */
typedef struct notify_slapd notify_slapd_t;
/* A change to spool: the file's name and content (the callee takes both),
 * the DN for the log, and how long slapd took to say it made it. */
typedef void notify_spooled_fn(void *arg, char *name, uint8_t *data, size_t len, const char *dn, int64_t held_ms);
/* Listens on cfg->slapd.socket; spooled() gets each change slapd made.
 * Returns 0 or -1 with *ret_error. */
int notify_slapd_start(loom_loop_t *loop, const pcns_notify_cfg_t *cfg, const char *spool,
    const pcns_targets_t *const *targets, notify_spooled_fn *spooled, void *arg, notify_slapd_t **ret,
    char **ret_error);
/* Drops pending changes whose RESULT never came. */
void notify_slapd_tick(notify_slapd_t *s);
void notify_slapd_stop(notify_slapd_t **s_p);

#endif
