/* loom_daemon.h - the skeleton every Loom daemon's main() hands control to
 * (Postfix single_server): flags, config, keys, bus, signals, the loop.
 *
 *   int main(int argc, char **argv) { return loom_daemon_main(&def, argc, argv); }
 *
 * Common flags: --config FILE, --check-config, --service NAME,
 * --log-level LEVEL, --host NAME, --standby, --help, --version. A daemon adds its own through
 * def->flags. Start-up failures exit 1 with one line saying why; SIGTERM
 * and SIGINT stop the loop, def->stop runs, the bus says Bye, exit 0.
 */
#ifndef LOOM_DAEMON_H
#define LOOM_DAEMON_H

#include <stdbool.h>

#include "loom_bus.h"
#include "loom_deploy.h"
#include "loom_loop.h"

typedef struct loom_daemon loom_daemon_t;

typedef struct loom_flag {
	const char *name;              /* long option without "--"; NULL ends the list */
	const char *arg;               /* argument name for --help, or NULL for a switch */
	const char *help;              /* one line */
	/* Stores the value; returns 0 or -1 with *error_r. */
	int (*set)(loom_daemon_t *d, const char *value, const char **error_r);
} loom_flag_t;

typedef struct loom_daemon_def {
	const char *process;           /* binary name, e.g. "loom-broker" */
	const char *summary;           /* one line for --help */
	const char *default_service;   /* service name when --service is not given */
	const char *no_service_hint;   /* said when there is no service name, or NULL */
	bool bus_client;               /* connect to the broker as a client */
	const loom_flag_t *flags;      /* extra flags, or NULL */
	/* After config and bus, before the loop. Returns 0 or -1 with *error_r
	 * (the skeleton logs it as fatal). */
	int (*start)(loom_daemon_t *d, const char **error_r);
	/* A directed message the skeleton did not handle itself; env is the
	 * handler's to free. NULL: every such message gets UNKNOWN_TYPE. */
	void (*on_message)(loom_daemon_t *d, Loom__Envelope *env);
	/* An event from a subscription; topic and env are the handler's to free. */
	void (*on_event)(loom_daemon_t *d, char *topic, Loom__Envelope *env);
	/* On shutdown, before the bus closes. */
	void (*stop)(loom_daemon_t *d);
	/* Extra --check-config validation. */
	int (*check)(loom_daemon_t *d, const char **error_r);
	/* A second configuration file the process reads (an agent's
	 * config/agents/NAME.yaml), described by --help-config after the
	 * deployment file; NULL: none. */
	const struct loom_cfg_table *own_config;
	const char *own_config_what;   /* how --help-config titles it */
	/* The process's stores, as directory names under state_dir
	 * (NULL-terminated), or NULL for a process without one. A process
	 * with stores writes them under the lease (loom_lease.h) and, with
	 * --standby, follows them as RocksDB secondary instances. */
	const char *const *stores;
} loom_daemon_def_t;

/* Exit status of a process that stopped because another host took the
 * lease (so a supervisor does not restart it). */
#define LOOM_EXIT_FENCED 3

int loom_daemon_main(const loom_daemon_def_t *def, int argc, char **argv);

/* Accessors for the daemon's handlers. */
const loom_deploy_t *loom_daemon_config(const loom_daemon_t *d);
const char *loom_daemon_service(const loom_daemon_t *d);
loom_loop_t *loom_daemon_loop(loom_daemon_t *d);
loom_bus_t *loom_daemon_bus(loom_daemon_t *d);
void *loom_daemon_zctx(loom_daemon_t *d);
/* This process's key pair, or NULL when it has none. */
const loom_keypair_t *loom_daemon_keypair(const loom_daemon_t *d);
void loom_daemon_set_user(loom_daemon_t *d, void *user);
/* From a flag handler: the service name to use when --service is not given. */
void loom_daemon_set_default_service(loom_daemon_t *d, const char *service);
void *loom_daemon_user(loom_daemon_t *d);

/* Loads the key pair DIR/NAME.key (and with CURVE the broker's DIR/broker.pub)
 * for a process on the bus: shared by daemons and tools. required: a missing
 * .key file is an error. Returns 0 (ret_have says whether a pair was found) or -1. */
int loom_daemon_load_keys(const loom_deploy_t *cfg, const char *name, bool required,
    loom_keypair_t *ret_kp, bool *ret_have, uint8_t ret_server[LOOM_KEY_LEN], char **ret_error);

#endif
