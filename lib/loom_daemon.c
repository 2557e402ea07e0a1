/* loom_daemon.c - daemon skeleton: flags, config, keys, bus, signals, loop. */
#include "loom_daemon.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_log.h"

#include <errno.h>
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
};

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
		if (d->def->on_message) {
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

static void print_diags(const loom_cfg_diags_t *diags)
{
	for (size_t i = 0; i < diags->n; i++)
		fprintf(stderr, "%s\n", diags->v[i].text);
}

int loom_daemon_main(const loom_daemon_def_t *def, int argc, char **argv)
{
	loom_daemon_t dd, *d = &dd;
	memset(d, 0, sizeof *d);
	d->def = def;
	d->sigfd = -1;
	loom_log_init(def->process);

	enum { OPT_CHECK = 256, OPT_SERVICE, OPT_LOGLEVEL, OPT_HELPCONFIG, OPT_EXTRA };
	size_t nextra = 0;
	for (const loom_flag_t *f = def->flags; f && f->name; f++)
		nextra++;
	struct option *opts = loom_calloc(8 + nextra, sizeof *opts);
	struct option base[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, OPT_CHECK },
		{ "service", required_argument, NULL, OPT_SERVICE },
		{ "log-level", required_argument, NULL, OPT_LOGLEVEL },
		{ "help-config", no_argument, NULL, OPT_HELPCONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
	};
	memcpy(opts, base, sizeof base);
	for (size_t i = 0; i < nextra; i++) {
		opts[7 + i].name = def->flags[i].name;
		opts[7 + i].has_arg = def->flags[i].arg ? required_argument : no_argument;
		opts[7 + i].val = OPT_EXTRA + (int)i;
	}
	bool check_only = false;
	int log_level = -1;
	int c, status = 1;
	while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		const char *err;
		switch (c) {
		case 'c': free(d->config_path); d->config_path = loom_strdup(optarg); break;
		case OPT_CHECK: check_only = true; break;
		case OPT_SERVICE: free(d->service); d->service = loom_strdup(optarg); break;
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

	if (setup_signals(d) < 0) {
		loom_error("cannot set up signal handling: %s", strerror(errno));
		goto out;
	}
	d->zctx = zmq_ctx_new();
	d->loop = loom_loop_new();
	if (def->bus_client) {
		loom_bus_opts_t bo = {
			.service = d->service, .process = def->process,
			.router = d->cfg.bus.router, .publish = d->cfg.bus.publish,
			.subscribe = def->on_event ? d->cfg.bus.subscribe : NULL,
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
	if (def->start) {
		const char *err = "start failed";
		if (def->start(d, &err) < 0) {
			loom_error("cannot start: %s", err);
			goto out;
		}
	}
	loom_info("started pid=%d config=%s%s%s", (int)getpid(), loom_log_kv_quote(d->config_path),
	    d->bus ? " instance=" : "", d->bus ? loom_bus_instance(d->bus) : "");
	if (loom_loop_run(d->loop) < 0) {
		loom_error("event loop failed: %s", zmq_strerror(errno));
	} else {
		status = 0;
	}
	if (def->stop)
		def->stop(d);
	loom_info("stopped");
out:
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
	free(opts);
	return status;
}
