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
 *
 * Endpoints left out default to ipc:// sockets in STATE_DIR/run, so the
 * embedded default needs no network at all.
 */
#ifndef LOOM_DEPLOY_H
#define LOOM_DEPLOY_H

#include <stdbool.h>

#include "loom_config.h"

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

typedef struct loom_deploy {
	char *path;                    /* the file this was loaded from */
	char *state_dir;               /* where process state lives */
	loom_deploy_log_t log;         /* logging */
	loom_deploy_bus_t bus;         /* the bus */
} loom_deploy_t;

/* The table behind loom.yaml (for --help-config and tests). */
extern const loom_cfg_table_t loom_deploy_table;

/* Loads path into *cfg (zeroed by the caller), fills derived defaults and
 * checks cross-field rules (tcp:// needs curve; ipc paths fit a socket
 * address). Returns 0, or -1 with every problem in *diags. */
int loom_deploy_load(const char *path, loom_deploy_t *cfg, loom_cfg_diags_t *diags);
void loom_deploy_release(loom_deploy_t *cfg);

/* The default config path: $LOOM_CONFIG, else "config/loom.yaml". */
const char *loom_deploy_default_path(void);

#endif
