/* loom_daemon.c - daemon skeleton: flags, config, keys, bus, signals, loop. */
#include "loom_daemon.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_envelope.h"
#include "loom_lease.h"
#include "loom_log.h"
#include "loom_store.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <zmq.h>

struct loom_daemon {
	const loom_daemon_def_t *def;  /* what this daemon is */
	char *config_path;             /* --config */
	char *service;                 /* --service or the default */
	loom_deploy_t cfg;             /* loaded deployment */
	void *zctx;                    /* ZeroMQ context */
	loom_loop_t *loop;             /* the event loop */
	loom_bus_t *bus;               /* broker connection, when a client */
	loom_keypair_t keypair;        /* this process's keys */
	bool have_keys;                /* keypair loaded */
	int sigfd;                     /* signalfd for TERM/INT/HUP */
	void *user;                    /* the daemon's own state */
	char *default_service;         /* set by a flag handler, or NULL */
	char *host_flag;               /* --host, or NULL */
	const char *host;              /* this host's name for the lease */
	bool standby;                  /* --standby: follow the stores, do nothing else */
	bool activated;                /* --activated: restarted by an activation */
	long long catch_up_ms;         /* --catch-up: a standby's catch-up interval */
	loom_fence_t *fence;           /* the lease this primary writes under, or NULL */
	loom_store_t **secondaries;    /* standby: def->stores as secondary instances */
	bool *sec_waiting;             /* standby: said that store i cannot be opened yet */
	size_t nstores;                /* entries of def->stores */
	long long caught_up_at;        /* standby: wall clock ms of the last catch-up */
	bool reexec;                   /* standby: activated, restart as primary */
	unsigned long long activated_epoch; /* the epoch of that activation */
};

/* How often a primary looks at the lease file before a write (at most),
 * and how often an idle one looks anyway. */
#define FENCE_WRITE_INTERVAL_MS 20
#define FENCE_IDLE_INTERVAL_MS 1000
/* How long a process restarted by an activation waits for the old
 * primary to let go of a store's LOCK. */
#define ACTIVATE_LOCK_WAIT_MS 60000

void loom_daemon_set_default_service(loom_daemon_t *d, const char *service)
{
	free(d->default_service);
	d->default_service = loom_strdup(service);
}

const loom_deploy_t *loom_daemon_config(const loom_daemon_t *d) { return &d->cfg; }
const char *loom_daemon_service(const loom_daemon_t *d) { return d->service; }
loom_loop_t *loom_daemon_loop(loom_daemon_t *d) { return d->loop; }
loom_bus_t *loom_daemon_bus(loom_daemon_t *d) { return d->bus; }
void *loom_daemon_zctx(loom_daemon_t *d) { return d->zctx; }
const loom_keypair_t *loom_daemon_keypair(const loom_daemon_t *d) { return d->have_keys ? &d->keypair : NULL; }
void loom_daemon_set_user(loom_daemon_t *d, void *user) { d->user = user; }
void *loom_daemon_user(loom_daemon_t *d) { return d->user; }

int loom_daemon_load_keys(const loom_deploy_t *cfg, const char *name, bool required,
    loom_keypair_t *ret_kp, bool *ret_have, uint8_t ret_server[LOOM_KEY_LEN], char **ret_error)
{
	char *path = loom_sprintf("%s/%s.key", cfg->bus.keys_dir, name);
	int rc = 0;
	*ret_have = false;
	if (access(path, F_OK) == 0 || required) {
		rc = loom_keys_read_pair(path, ret_kp, ret_error);
		if (rc < 0 && required && errno == ENOENT && access(path, F_OK) != 0) {
			free(*ret_error);
			*ret_error = loom_sprintf("bus.curve is on but this process has no key '%s' "
			    "(create it with: loomctl keys gen %s --dir %s)", path, name, cfg->bus.keys_dir);
		}
		*ret_have = rc == 0;
	}
	free(path);
	if (rc == 0 && cfg->bus.curve && ret_server) {
		path = loom_sprintf("%s/broker.pub", cfg->bus.keys_dir);
		rc = loom_keys_read_public(path, ret_server, ret_error);
		free(path);
	}
	return rc;
}

static void usage(const loom_daemon_def_t *def, FILE *out)
{
	fprintf(out, "usage: %s [options]\n%s\n\noptions:\n", def->process, def->summary);
	fprintf(out, "  -c, --config FILE      deployment file (default $LOOM_CONFIG or config/loom.yaml)\n");
	fprintf(out, "      --check-config     validate the configuration and exit\n");
	fprintf(out, "      --service NAME     service name on the bus (default %s)\n",
	    def->default_service ? def->default_service : "none");
	fprintf(out, "      --log-level LEVEL  debug, info, warning or error (overrides log.level)\n");
	if (def->bus_client) {
		fprintf(out, "      --standby          warm standby: register as standby.SERVICE, follow the stores\n"
		    "                         as RocksDB secondary instances, do nothing else until\n"
		    "                         `loomctl activate` (docs/recovery.md)\n");
		fprintf(out, "      --catch-up DUR     standby: how often to catch up with the primary (default 1s)\n");
		fprintf(out, "      --host NAME        this host's name for the lease (default $LOOM_HOST, else\n"
		    "                         the system host name)\n");
	}
	fprintf(out, "      --help-config      describe every key of the deployment file%s\n",
	    def->own_config ? " and of this process's own file" : "");
	fprintf(out, "  -h, --help             this help\n");
	fprintf(out, "  -V, --version          print the version\n");
	for (const loom_flag_t *f = def->flags; f && f->name; f++) {
		char left[64];
		snprintf(left, sizeof left, "--%s%s%s", f->name, f->arg ? " " : "", f->arg ? f->arg : "");
		fprintf(out, "      %-18s %s\n", left, f->help);
	}
}

static int on_signal(loom_loop_t *loop, void *arg)
{
	loom_daemon_t *d = arg;
	struct signalfd_siginfo si;
	ssize_t n = read(d->sigfd, &si, sizeof si);
	if (n != (ssize_t)sizeof si)
		return 0;
	if (si.ssi_signo == SIGHUP) {
		loom_info("SIGHUP received; configuration is read at start: restart the process to apply changes");
		return 0;
	}
	loom_info("shutting down signal=%s", si.ssi_signo == SIGTERM ? "TERM" : "INT");
	loom_loop_stop(loop);
	return 0;
}

static void on_bus_state(loom_bus_t *bus, loom_bus_state_t state, const char *detail, void *arg)
{
	(void)arg;
	if (state == LOOM_BUS_LOST)
		loom_warning("%s instance=%s", detail, loom_bus_instance(bus));
	else
		loom_info("%s instance=%s", detail, loom_bus_instance(bus));
}

static void standby_message(loom_daemon_t *d, Loom__Envelope *env);

static int on_bus(loom_loop_t *loop, void *arg)
{
	(void)loop;
	loom_daemon_t *d = arg;
	/* Bounded batch so timers and other sockets are not starved. */
	for (int i = 0; i < 1000; i++) {
		Loom__Envelope *env = NULL;
		const char *err;
		int rc = loom_bus_recv(d->bus, &env, &err);
		if (rc == 0)
			break;
		if (rc < 0) {
			loom_warning("%s", err);
			continue;
		}
		if (d->standby) {
			standby_message(d, env);
		} else if (d->def->on_message) {
			d->def->on_message(d, env);
		} else {
			char *msg = loom_sprintf("%s does not handle '%s'", d->def->process, env->type);
			if (env->correlation_id.len == 0 &&
			    loom_bus_reply_error(d->bus, env, LOOM__ERROR__CODE__UNKNOWN_TYPE, false, msg, &err) < 0)
				loom_warning("cannot reply to from=%s: %s", env->from, err);
			free(msg);
			loom_envelope_free(&env);
		}
	}
	return 0;
}

static int on_events(loom_loop_t *loop, void *arg)
{
	(void)loop;
	loom_daemon_t *d = arg;
	for (int i = 0; i < 1000; i++) {
		char *topic = NULL;
		Loom__Envelope *env = NULL;
		const char *err;
		int rc = loom_bus_recv_event(d->bus, &topic, &env, &err);
		if (rc == 0)
			break;
		if (rc < 0) {
			loom_warning("%s", err);
			continue;
		}
		if (d->def->on_event) {
			d->def->on_event(d, topic, env);
		} else {
			free(topic);
			loom_envelope_free(&env);
		}
	}
	return 0;
}

static int on_tick(loom_loop_t *loop, void *arg)
{
	(void)loop;
	loom_bus_tick(((loom_daemon_t *)arg)->bus);
	return 0;
}

static int setup_signals(loom_daemon_t *d)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	d->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return d->sigfd < 0 ? -1 : 0;
}

/* ---- lease, fencing and standby (docs/recovery.md, "Warm standby and activation") ----
 *
 * A process with stores (def->stores) is in one of two roles:
 *
 *   primary   takes or holds the lease (loom_fence_new) before def->start;
 *             every write to its stores checks the lease first (through
 *             loom_store_set_fence, at most every FENCE_WRITE_INTERVAL_MS)
 *             and a timer checks it every FENCE_IDLE_INTERVAL_MS; once
 *             another epoch is written the process logs one line and exits
 *             with LOOM_EXIT_FENCED without writing again.
 *   standby   (--standby) registers as "standby.SERVICE", opens its stores
 *             as secondary instances and catches up every --catch-up;
 *             def->start never runs; every request but Ping and Activate
 *             is answered UNAVAILABLE.
 *
 * standby -> primary: an Activate whose epoch and host match the lease file
 * stops the loop; the process cleans up and execs itself again without
 * --standby and with --activated, which waits for the old primary's LOCKs
 * to go before def->start opens the stores read-write. */

static int fence_cb(void *arg, const char **error_r)
{
	loom_daemon_t *d = arg;
	if (loom_fence_check(d->fence, FENCE_WRITE_INTERVAL_MS, error_r) == 0)
		return 0;
	/* Nothing after this line may write: no def->stop, no run bookkeeping.
	 * What is in the stores is durable already (the WAL). */
	loom_error("%s", *error_r);
	_exit(LOOM_EXIT_FENCED);
}

static int on_fence_tick(loom_loop_t *loop, void *arg)
{
	(void)loop;
	loom_daemon_t *d = arg;
	const char *err;
	if (loom_fence_check(d->fence, 0, &err) < 0) {
		loom_error("%s", err);
		_exit(LOOM_EXIT_FENCED);
	}
	return 0;
}

static long long wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void standby_role(loom_daemon_t *d)
{
	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_printf(&b, "host %s", d->host);
	for (size_t i = 0; i < d->nstores; i++) {
		if (d->secondaries[i] == NULL)
			loom_buf_printf(&b, "; %s not open yet", d->def->stores[i]);
		else
			loom_buf_printf(&b, "; %s seq %llu", d->def->stores[i],
			    loom_store_sequence(d->secondaries[i]));
	}
	if (d->caught_up_at > 0)
		loom_buf_printf(&b, "; caught up %.1fs ago", (double)(wall_ms() - d->caught_up_at) / 1000.0);
	loom_bus_set_role(d->bus, "standby", loom_buf_cstr(&b), d->host);
	loom_buf_release(&b);
}

static int on_standby_tick(loom_loop_t *loop, void *arg)
{
	(void)loop;
	loom_daemon_t *d = arg;
	bool all = true;
	for (size_t i = 0; i < d->nstores; i++) {
		const char *name = d->def->stores[i];
		if (d->secondaries[i] == NULL) {
			char *path = loom_sprintf("%s/%s", d->cfg.state_dir, name);
			char *sec = loom_sprintf("%s/standby/%s/%s", d->cfg.state_dir, d->host, name);
			char *dir = loom_sprintf("%s/standby", d->cfg.state_dir);
			(void)mkdir(dir, 0755);
			free(dir);
			dir = loom_sprintf("%s/standby/%s", d->cfg.state_dir, d->host);
			(void)mkdir(dir, 0755);
			free(dir);
			(void)mkdir(sec, 0755);
			loom_store_opts_t so;
			loom_store_opts_default(&so);
			so.secondary_path = sec;
			so.create_if_missing = false;
			char *err = NULL;
			if (loom_store_open(path, NULL, &so, &d->secondaries[i], &err) < 0) {
				if (!d->sec_waiting[i])
					loom_warning("standby: store not followed yet (retrying) store=%s reason=%s",
					    loom_log_kv_quote(path), loom_log_kv_quote(err));
				d->sec_waiting[i] = true;
				all = false;
			} else {
				loom_info("standby: following store=%s as a secondary instance seq=%llu",
				    loom_log_kv_quote(path), loom_store_sequence(d->secondaries[i]));
				d->sec_waiting[i] = false;
			}
			free(err);
			free(sec);
			free(path);
			continue;
		}
		const char *err;
		if (loom_store_catch_up(d->secondaries[i], &err) < 0) {
			loom_warning("standby: %s", err);
			all = false;
		}
	}
	if (all)
		d->caught_up_at = wall_ms();
	standby_role(d);
	return 0;
}

static void standby_close(loom_daemon_t *d)
{
	for (size_t i = 0; d->secondaries && i < d->nstores; i++)
		loom_store_close(&d->secondaries[i]);
	free(d->secondaries);
	free(d->sec_waiting);
	d->secondaries = NULL;
	d->sec_waiting = NULL;
}

static void standby_activate(loom_daemon_t *d, Loom__Envelope *env)
{
	const char *err;
	Loom__Activate *a = (Loom__Activate *)loom_envelope_body(env, &loom__activate__descriptor, &err);
	if (a == NULL) {
		(void)loom_bus_reply_error(d->bus, env, LOOM__ERROR__CODE__MALFORMED, false, err, &err);
		return;
	}
	Loom__ActivateReply r = LOOM__ACTIVATE_REPLY__INIT;
	loom_lease_t l;
	char *lerr = NULL, *why = NULL;
	int rc = loom_lease_read(d->cfg.state_dir, &l, &lerr);
	if (rc < 0)
		why = loom_sprintf("cannot activate: %s", lerr);
	else if (rc == 0)
		why = loom_sprintf("cannot activate: there is no lease in '%s'", d->cfg.state_dir);
	else if (strcmp(l.holder, d->host) != 0 || l.epoch != a->epoch || strcmp(a->host, d->host) != 0)
		why = loom_sprintf("cannot activate host '%s' epoch %llu: the lease says host '%s' epoch %llu "
		    "and this process is on host '%s'", a->host, (unsigned long long)a->epoch, l.holder, l.epoch, d->host);
	free(lerr);
	if (why != NULL) {
		r.error = why;
		loom_warning("%s", why);
	} else {
		r.ok = true;
		d->reexec = true;
		d->activated_epoch = l.epoch;
		loom_info("activated: host=%s epoch=%llu; restarting as primary", d->host, l.epoch);
		loom_loop_stop(d->loop);
	}
	if (loom_bus_reply(d->bus, env, &r.base, &err) < 0)
		loom_warning("cannot reply to from=%s: %s", env->from, err);
	free(why);
	protobuf_c_message_free_unpacked(&a->base, NULL);
}

/* A standby answers Activate; anything else that asks is told it is standby. */
static void standby_message(loom_daemon_t *d, Loom__Envelope *env)
{
	const char *err;
	if (loom_envelope_is(env, &loom__activate__descriptor)) {
		standby_activate(d, env);
	} else if (env->correlation_id.len == 0) {
		char *msg = loom_sprintf("%s is a standby on host '%s': it does no work until `loomctl activate`",
		    loom_bus_instance(d->bus), d->host);
		if (loom_bus_reply_error(d->bus, env, LOOM__ERROR__CODE__UNAVAILABLE, true, msg, &err) < 0)
			loom_warning("cannot reply to from=%s: %s", env->from, err);
		free(msg);
	}
	loom_envelope_free(&env);
}

/* After an activation: waits until no other process holds a lock on the
 * stores' LOCK files (the old primary exits at its next lease check, or
 * is gone already). Returns 0, or -1 after ACTIVATE_LOCK_WAIT_MS. */
static int wait_store_locks(loom_daemon_t *d)
{
	for (size_t i = 0; i < d->nstores; i++) {
		char *lock = loom_sprintf("%s/%s/LOCK", d->cfg.state_dir, d->def->stores[i]);
		long long until = wall_ms() + ACTIVATE_LOCK_WAIT_MS;
		bool said = false;
		for (;;) {
			int fd = open(lock, O_RDWR | O_CLOEXEC);
			if (fd < 0)
				break;  /* no store yet, or nothing to wait for */
			struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
			int rc = fcntl(fd, F_GETLK, &fl);
			close(fd);
			if (rc < 0 || fl.l_type == F_UNLCK)
				break;
			if (!said)
				loom_info("activation: waiting for the old primary to let go of lock=%s pid=%d",
				    loom_log_kv_quote(lock), (int)fl.l_pid);
			said = true;
			if (wall_ms() > until) {
				loom_error("cannot start: store lock '%s' still held by pid %d after %ds", lock,
				    (int)fl.l_pid, ACTIVATE_LOCK_WAIT_MS / 1000);
				free(lock);
				return -1;
			}
			struct timespec ts = { 0, 100 * 1000000L };
			nanosleep(&ts, NULL);
		}
		free(lock);
	}
	return 0;
}

/* Execs this program again as primary: argv without --standby, with --activated. */
static void reexec_primary(char **argv, int argc)
{
	char **nargv = loom_calloc((size_t)argc + 2, sizeof *nargv);
	int n = 0;
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--standby") != 0 && strcmp(argv[i], "--activated") != 0)
			nargv[n++] = argv[i];
	nargv[n++] = "--activated";
	nargv[n] = NULL;
	execv("/proc/self/exe", nargv);
	fprintf(stderr, "%s: cannot restart as primary: exec /proc/self/exe: %s\n", argv[0], strerror(errno));
	free(nargv);
}

static void print_diags(const loom_cfg_diags_t *diags)
{
	for (size_t i = 0; i < diags->n; i++)
		fprintf(stderr, "%s\n", diags->v[i].text);
}

int loom_daemon_main(const loom_daemon_def_t *def, int argc, char **argv)
{
	loom_daemon_t dd, *d = &dd;
	char *bus_service = NULL;      /* the name registered: SERVICE or standby.SERVICE */
	bool started = false;          /* def->start ran */
	memset(d, 0, sizeof *d);
	d->def = def;
	d->sigfd = -1;
	loom_log_init(def->process);

	enum { OPT_CHECK = 256, OPT_SERVICE, OPT_LOGLEVEL, OPT_HELPCONFIG, OPT_STANDBY, OPT_ACTIVATED,
		OPT_HOST, OPT_CATCHUP, OPT_EXTRA };
	size_t nextra = 0;
	for (const loom_flag_t *f = def->flags; f && f->name; f++)
		nextra++;
	for (const char *const *st = def->stores; st && *st; st++)
		d->nstores++;
	d->catch_up_ms = 1000;
	struct option *opts = loom_calloc(12 + nextra, sizeof *opts);
	struct option base[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, OPT_CHECK },
		{ "service", required_argument, NULL, OPT_SERVICE },
		{ "log-level", required_argument, NULL, OPT_LOGLEVEL },
		{ "help-config", no_argument, NULL, OPT_HELPCONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "standby", no_argument, NULL, OPT_STANDBY },
		{ "activated", no_argument, NULL, OPT_ACTIVATED },
		{ "host", required_argument, NULL, OPT_HOST },
		{ "catch-up", required_argument, NULL, OPT_CATCHUP },
	};
	/* A program's own flags come first: getopt_long takes the first exact
	 * match, so a program may give a base flag its own meaning (loomd's
	 * --host names its entry in hosts:, not a lease holder). */
	for (size_t i = 0; i < nextra; i++) {
		opts[i].name = def->flags[i].name;
		opts[i].has_arg = def->flags[i].arg ? required_argument : no_argument;
		opts[i].val = OPT_EXTRA + (int)i;
	}
	memcpy(opts + nextra, base, sizeof base);
	bool check_only = false;
	int log_level = -1;
	int c, status = 1;
	while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		const char *err;
		switch (c) {
		case 'c': free(d->config_path); d->config_path = loom_strdup(optarg); break;
		case OPT_CHECK: check_only = true; break;
		case OPT_SERVICE: free(d->service); d->service = loom_strdup(optarg); break;
		case OPT_STANDBY: d->standby = true; break;
		case OPT_ACTIVATED: d->activated = true; break;
		case OPT_HOST:
			if (*optarg == '\0' || strlen(optarg) >= sizeof ((loom_lease_t *)0)->holder ||
			    strpbrk(optarg, " \t\r\n") != NULL) {
				fprintf(stderr, "%s: bad --host '%s': expected a host name without spaces\n",
				    def->process, optarg);
				goto out;
			}
			free(d->host_flag);
			d->host_flag = loom_strdup(optarg);
			break;
		case OPT_CATCHUP:
			if (loom_config_parse_duration(optarg, &d->catch_up_ms) < 0 || d->catch_up_ms <= 0) {
				fprintf(stderr, "%s: bad --catch-up '%s': expected a duration such as 500ms, 2s\n",
				    def->process, optarg);
				goto out;
			}
			break;
		case OPT_LOGLEVEL:
			log_level = loom_log_parse_level(optarg);
			if (log_level < 0) {
				fprintf(stderr, "%s: bad --log-level '%s': expected debug, info, warning or error\n",
				    def->process, optarg);
				goto out;
			}
			break;
		case OPT_HELPCONFIG: {
			loom_buf_t b = LOOM_BUF_INIT;
			loom_config_describe(&loom_deploy_table, &b);
			if (def->own_config) {
				loom_buf_printf(&b, "\n%s:\n", def->own_config_what ? def->own_config_what : "own configuration");
				loom_config_describe(def->own_config, &b);
			}
			fputs(loom_buf_cstr(&b), stdout);
			loom_buf_release(&b);
			status = 0;
			goto out;
		}
		case 'h': usage(def, stdout); status = 0; goto out;
		case 'V': printf("%s %s\n", def->process, LOOM_VERSION); status = 0; goto out;
		default:
			if (c >= OPT_EXTRA && c < OPT_EXTRA + (int)nextra) {
				const loom_flag_t *f = &def->flags[c - OPT_EXTRA];
				if (f->set(d, optarg, &err) < 0) {
					fprintf(stderr, "%s: bad --%s: %s\n", def->process, f->name, err);
					goto out;
				}
				break;
			}
			fprintf(stderr, "%s: see --help for the options\n", def->process);
			goto out;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", def->process, argv[optind]);
		goto out;
	}
	if (d->config_path == NULL)
		d->config_path = loom_strdup(loom_deploy_default_path());
	if (d->service == NULL && d->default_service)
		d->service = loom_strdup(d->default_service);
	if (d->service == NULL && def->default_service)
		d->service = loom_strdup(def->default_service);
	if (def->bus_client && d->service == NULL && def->no_service_hint) {
		fprintf(stderr, "%s: %s\n", def->process, def->no_service_hint);
		goto out;
	}
	if (def->bus_client && (d->service == NULL || !loom_service_name_valid(d->service, strlen(d->service)))) {
		fprintf(stderr, "%s: bad service name '%s': use letters, digits, '.', '_' and '-', starting with a letter\n",
		    def->process, d->service ? d->service : "");
		goto out;
	}

	if (d->standby && !def->bus_client) {
		fprintf(stderr, "%s: --standby: this process has no standby mode\n", def->process);
		goto out;
	}
	d->host = loom_lease_host(d->host_flag);
	if (d->host_flag == NULL && (strlen(d->host) >= sizeof ((loom_lease_t *)0)->holder ||
	    strpbrk(d->host, " \t\r\n") != NULL)) {
		fprintf(stderr, "%s: bad host name '%s' (from $LOOM_HOST or the system): expected a name without spaces\n",
		    def->process, d->host);
		goto out;
	}

	loom_cfg_diags_t diags;
	if (loom_deploy_load(d->config_path, &d->cfg, &diags) < 0) {
		print_diags(&diags);
		loom_cfg_diags_release(&diags);
		fprintf(stderr, "%s: cannot start: configuration '%s' has errors\n", def->process, d->config_path);
		goto out;
	}
	loom_cfg_diags_release(&diags);
	loom_log_set_level(log_level >= 0 ? (loom_log_level_t)log_level : (loom_log_level_t)d->cfg.log.level);

	char *kerr = NULL;
	uint8_t server_key[LOOM_KEY_LEN];
	const char *keyname = d->service ? d->service : def->default_service;
	if (keyname && loom_daemon_load_keys(&d->cfg, keyname, d->cfg.bus.curve, &d->keypair,
	    &d->have_keys, def->bus_client ? server_key : NULL, &kerr) < 0) {
		fprintf(stderr, "%s: cannot start: %s\n", def->process, kerr);
		free(kerr);
		goto out;
	}
	if (check_only) {
		const char *err;
		if (def->check && def->check(d, &err) < 0) {
			/* Check errors name their own file, line and column. */
			fprintf(stderr, "%s\n", err);
			goto out;
		}
		printf("%s: configuration ok\n", d->config_path);
		status = 0;
		goto out;
	}

	/* A primary with stores holds the lease before it is seen on the bus:
	 * after an activation it first waits for the old primary's locks. */
	if (!d->standby && d->nstores > 0) {
		if (d->activated && wait_store_locks(d) < 0)
			goto out;
		char *err = NULL;
		/* the daemons make their state directory themselves (one level) */
		(void)mkdir(d->cfg.state_dir, 0755);
		if (loom_fence_new(d->cfg.state_dir, d->host, &d->fence, &err) < 0) {
			loom_error("cannot start: %s", err);
			free(err);
			status = LOOM_EXIT_FENCED;
			goto out;
		}
	}

	if (setup_signals(d) < 0) {
		loom_error("cannot set up signal handling: %s", strerror(errno));
		goto out;
	}
	d->zctx = zmq_ctx_new();
	d->loop = loom_loop_new();
	bus_service = d->standby ? loom_sprintf("standby.%s", d->service) : loom_strdup(d->service ? d->service : "");
	if (def->bus_client) {
		loom_bus_opts_t bo = {
			.service = bus_service, .process = def->process,
			.router = d->cfg.bus.router, .publish = d->cfg.bus.publish,
			.subscribe = def->on_event && !d->standby ? d->cfg.bus.subscribe : NULL,
			.heartbeat_ms = d->cfg.bus.heartbeat_ms, .liveness = (unsigned)d->cfg.bus.liveness,
			.keypair = d->have_keys ? &d->keypair : NULL,
			.server_key = d->cfg.bus.curve ? server_key : NULL,
			.on_state = on_bus_state,
		};
		char *err = NULL;
		if (loom_bus_new(d->zctx, &bo, &d->bus, &err) < 0) {
			loom_error("cannot start: %s", err);
			free(err);
			goto out;
		}
		loom_loop_add_socket(d->loop, loom_bus_socket(d->bus), on_bus, d);
		/* The check reads the bus's inbox: its argument is the bus (the
		 * handler's is the daemon; given that, it read the daemon's bytes as
		 * an inbox pointer, and a process with a key pair spun at 0 timeout). */
		loom_loop_set_pending(d->loop, loom_bus_socket(d->bus), loom_bus_pending, d->bus);
		if (loom_bus_event_socket(d->bus))
			loom_loop_add_socket(d->loop, loom_bus_event_socket(d->bus), on_events, d);
		long long tick = d->cfg.bus.heartbeat_ms / 2;
		loom_loop_add_timer(d->loop, tick > 0 ? tick : 1, 0, on_tick, d);
	}
	loom_loop_add_fd(d->loop, d->sigfd, on_signal, d);
	if (d->standby) {
		d->secondaries = loom_calloc(d->nstores ? d->nstores : 1, sizeof *d->secondaries);
		d->sec_waiting = loom_calloc(d->nstores ? d->nstores : 1, sizeof *d->sec_waiting);
		on_standby_tick(d->loop, d);
		loom_loop_add_timer(d->loop, d->catch_up_ms, 0, on_standby_tick, d);
		loom_info("standby: host=%s stores=%zu; no processing until `loomctl activate`", d->host, d->nstores);
	} else {
		if (d->fence != NULL) {
			loom_store_set_fence(fence_cb, d);
			loom_loop_add_timer(d->loop, FENCE_IDLE_INTERVAL_MS, 0, on_fence_tick, d);
			char *detail = loom_sprintf("host %s; lease epoch %llu", d->host, loom_fence_epoch(d->fence));
			if (d->bus)
				loom_bus_set_role(d->bus, "primary", detail, d->host);
			free(detail);
		} else if (d->bus) {
			char *detail = loom_sprintf("host %s; no store", d->host);
			loom_bus_set_role(d->bus, "primary", detail, d->host);
			free(detail);
		}
		if (def->start) {
			const char *err = "start failed";
			if (def->start(d, &err) < 0) {
				loom_error("cannot start: %s", err);
				goto out;
			}
		}
		started = true;
	}
	loom_info("started pid=%d config=%s%s%s", (int)getpid(), loom_log_kv_quote(d->config_path),
	    d->bus ? " instance=" : "", d->bus ? loom_bus_instance(d->bus) : "");
	if (loom_loop_run(d->loop) < 0) {
		loom_error("event loop failed: %s", zmq_strerror(errno));
	} else {
		status = 0;
	}
	if (def->stop && started)
		def->stop(d);
	loom_info("stopped");
out:
	standby_close(d);
	loom_store_set_fence(NULL, NULL);
	loom_fence_destroy(&d->fence);
	free(bus_service);
	bus_service = NULL;
	loom_bus_destroy(&d->bus, "shutdown");
	loom_loop_destroy(&d->loop);
	if (d->zctx)
		zmq_ctx_term(d->zctx);
	if (d->sigfd >= 0)
		close(d->sigfd);
	loom_keypair_wipe(&d->keypair);
	loom_deploy_release(&d->cfg);
	free(d->config_path);
	free(d->service);
	free(d->default_service);
	free(d->host_flag);
	free(opts);
	if (d->reexec) {
		reexec_primary(argv, argc);
		return 1;
	}
	return status;
}
