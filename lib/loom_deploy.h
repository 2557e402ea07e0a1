/* loom_deploy.h - config/loom.yaml: the deployment every process reads.
 *
 *   state_dir: ../var            # stores, sockets and spools (relative to this file)
 *   log:
 *     level: info
 *   bus:
 *     router: ipc://../var/run/bus-router   # default: ipc:// in state_dir/run
 *     publish: ...                          # where publishers connect (broker XSUB)
 *     subscribe: ...                        # where subscribers connect (broker XPUB)
 *     tap: ...                              # the broker's mirror of every frame
 *     heartbeat: 1s
 *     liveness: 3
 *     request_timeout: 5s
 *     curve: false                          # true: CURVE + allow-list (needed for tcp://)
 *     keys_dir: keys                        # NAME.key / NAME.pub files
 *   schedules:                              # run profiles on their own (loom-engine)
 *     - name: hr-hourly
 *       agent: hr
 *       profiles: [full-import, delta-sync] # in order; a step that fails stops it
 *       every: 1h                           # an interval (from the epoch), or
 *       cron: "0 7-19 * * 1-5"              # five cron fields, UTC
 *       enabled: true
 *   mail:                                   # e-mail of workflows (loom-workflow)
 *     relay: 127.0.0.1:25                   # absent: mail is logged, not sent
 *     from: loom@localhost
 *   workflow:
 *     scheduler: 1m                         # temporal Sets, ExpirationTime
 *   hosts:                                  # which host runs what (loomd; docs/deploy.md)
 *     - name: core1                         # --host of loomd, default the hostname
 *       processes: [broker, engine, workflow, pcns, tap, agents, ma.hr]
 *   supervisor:                             # loomd's restarts and stops
 *     restart_min: 500ms                    # first wait before a restart (doubles)
 *     restart_max: 30s                      # the wait's cap
 *     fast_crash: 10s                       # an exit sooner than this after a start is a fast crash
 *     give_up: 5                            # fast crashes in a row before loomd stops restarting
 *     stop_timeout: 15s                     # SIGTERM, then SIGKILL after this long
 *
 * Endpoints left out default to ipc:// sockets in STATE_DIR/run, so the
 * embedded default needs no network at all.
 */
#ifndef LOOM_DEPLOY_H
#define LOOM_DEPLOY_H

#include <stdbool.h>

#include "loom_config.h"
#include "loom_cron.h"

typedef struct loom_deploy_log {
	int level;                     /* loom_log_level_t */
} loom_deploy_log_t;

typedef struct loom_deploy_bus {
	char *router;                  /* broker ROUTER endpoint (directed messages) */
	char *publish;                 /* broker XSUB endpoint (publishers connect) */
	char *subscribe;               /* broker XPUB endpoint (subscribers connect) */
	char *tap;                     /* broker PUB endpoint mirroring every frame */
	long long heartbeat_ms;        /* heartbeat interval */
	long long liveness;            /* missed heartbeats before a peer is gone */
	long long request_timeout_ms;  /* default wait for a reply */
	long long max_frame;           /* largest frame the broker accepts (bytes) */
	bool curve;                    /* CURVE encryption and the key allow-list */
	char *keys_dir;                /* key files */
} loom_deploy_bus_t;

typedef struct loom_deploy_schedule {
	loom_cfg_text_t name;          /* unique name, with where it is written */
	loom_cfg_text_t agent;         /* whose profiles (checked by loom-engine) */
	loom_cfg_strlist_t profiles;   /* run profiles, run one after another */
	long long every_ms;            /* interval; 0 when cron is used */
	loom_cfg_text_t cron;          /* cron expression as written; text NULL with every */
	bool enabled;                  /* false: listed but never started */
	loom_cron_t spec;              /* derived: cron parsed (when cron.text) */
} loom_deploy_schedule_t;

typedef struct loom_deploy_mail {
	char *relay;                   /* HOST:PORT of the SMTP relay; NULL: no mail is sent (it is logged) */
	char *from;                    /* the envelope sender and From: header */
	char *helo;                    /* the name given in EHLO */
	long long timeout_ms;          /* wait for each reply of the relay */
	long long retry_ms;            /* wait before another attempt after a failure */
	long long give_up_ms;          /* a message not sent after this long is dropped (logged) */
} loom_deploy_mail_t;

typedef struct loom_deploy_workflow {
	long long scheduler_ms;        /* how often temporal Sets and ExpirationTime are looked at */
	long long max_depth;           /* requests an action workflow's request may make in a chain */
	char *ctl_hint;                /* how approvers call loomctl in e-mails */
} loom_deploy_workflow_t;

typedef struct loom_deploy_host {
	loom_cfg_text_t name;          /* the host's name (loomd --host), unique */
	loom_cfg_strlist_t processes;  /* broker, engine, workflow, pcns, tap, agents, ma.NAME */
} loom_deploy_host_t;

typedef struct loom_deploy_supervisor {
	long long restart_min_ms;      /* first wait before restarting a process that exited */
	long long restart_max_ms;      /* cap of the doubling wait */
	long long fast_crash_ms;       /* an exit sooner than this after its start is a fast crash */
	long long give_up;             /* fast crashes in a row before loomd stops restarting it */
	long long stop_timeout_ms;     /* wait after SIGTERM before SIGKILL */
} loom_deploy_supervisor_t;

typedef struct loom_deploy {
	char *path;                    /* the file this was loaded from */
	char *state_dir;               /* where process state lives */
	loom_deploy_log_t log;         /* logging */
	loom_deploy_bus_t bus;         /* the bus */
	loom_cfg_array_t schedules;    /* loom_deploy_schedule_t: scheduled run profiles */
	loom_deploy_mail_t mail;       /* e-mail of the policy service's workflows */
	loom_deploy_workflow_t workflow; /* the policy service's workflows and scheduler */
	loom_cfg_array_t hosts;        /* loom_deploy_host_t: what runs where (empty: one host runs the default set) */
	loom_deploy_supervisor_t supervisor; /* loomd's restart and stop policy */
} loom_deploy_t;

/* The table behind loom.yaml (for --help-config and tests). */
extern const loom_cfg_table_t loom_deploy_table;

/* Loads path into *cfg (zeroed by the caller), fills derived defaults and
 * checks cross-field rules (tcp:// needs curve; ipc paths fit a socket
 * address; a schedule has exactly one of every/cron, a valid cron expression
 * and a unique name). Returns 0, or -1 with every problem in *diags. */
int loom_deploy_load(const char *path, loom_deploy_t *cfg, loom_cfg_diags_t *diags);
void loom_deploy_release(loom_deploy_t *cfg);

/* The host entry named name, or NULL. */
const loom_deploy_host_t *loom_deploy_host(const loom_deploy_t *cfg, const char *name);

/* True when s names a process loomd knows: broker, tap, engine, workflow,
 * pcns, agents, or ma.NAME. */
bool loom_deploy_process_valid(const char *s);

/* The default config path: $LOOM_CONFIG, else "config/loom.yaml". */
const char *loom_deploy_default_path(void);

#endif
