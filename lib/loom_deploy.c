/* loom_deploy.c - the deployment file's key table and derived defaults. */
#include "loom_deploy.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_envelope.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

static const char *const log_levels[] = { "debug", "info", "warning", "error", NULL };

static const loom_cfg_key_t log_keys[] = {
	{ .name = "level", .type = LOOM_CFG_ENUM, .offset = offsetof(loom_deploy_log_t, level),
	  .def = "info", .choices = log_levels, .help = "lowest level written to stderr" },
	{ NULL }
};
static const loom_cfg_table_t log_table = { .what = "log", .keys = log_keys };

static const loom_cfg_key_t bus_keys[] = {
	{ .name = "router", .type = LOOM_CFG_ENDPOINT, .offset = offsetof(loom_deploy_bus_t, router),
	  .help = "broker endpoint for directed messages (default ipc in STATE_DIR/run)" },
	{ .name = "publish", .type = LOOM_CFG_ENDPOINT, .offset = offsetof(loom_deploy_bus_t, publish),
	  .help = "broker endpoint where processes publish events" },
	{ .name = "subscribe", .type = LOOM_CFG_ENDPOINT, .offset = offsetof(loom_deploy_bus_t, subscribe),
	  .help = "broker endpoint where processes subscribe to events" },
	{ .name = "tap", .type = LOOM_CFG_ENDPOINT, .offset = offsetof(loom_deploy_bus_t, tap),
	  .help = "broker endpoint mirroring every frame, for loom-tap" },
	{ .name = "heartbeat", .type = LOOM_CFG_DURATION, .offset = offsetof(loom_deploy_bus_t, heartbeat_ms),
	  .def = "1s", .min = 50, .max = 60000, .help = "heartbeat interval between processes and broker" },
	{ .name = "liveness", .type = LOOM_CFG_INT, .offset = offsetof(loom_deploy_bus_t, liveness),
	  .def = "3", .min = 2, .max = 100, .help = "missed heartbeats before a peer counts as gone" },
	{ .name = "request_timeout", .type = LOOM_CFG_DURATION, .offset = offsetof(loom_deploy_bus_t, request_timeout_ms),
	  .def = "5s", .min = 100, .max = 3600000, .help = "default wait for a reply" },
	{ .name = "max_frame", .type = LOOM_CFG_SIZE, .offset = offsetof(loom_deploy_bus_t, max_frame),
	  .def = "64MiB", .min = 4096, .max = 1LL << 31, .help = "largest frame the broker accepts" },
	{ .name = "curve", .type = LOOM_CFG_BOOL, .offset = offsetof(loom_deploy_bus_t, curve),
	  .def = "false", .help = "encrypt with CURVE and admit only keys listed in keys_dir" },
	{ .name = "keys_dir", .type = LOOM_CFG_PATH, .offset = offsetof(loom_deploy_bus_t, keys_dir),
	  .def = "keys", .help = "directory of NAME.key / NAME.pub files" },
	{ NULL }
};
static const loom_cfg_table_t bus_table = { .what = "bus", .keys = bus_keys };

static const loom_cfg_key_t schedule_keys[] = {
	{ .name = "name", .type = LOOM_CFG_TEXT, .offset = offsetof(loom_deploy_schedule_t, name),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "the schedule's name, unique" },
	{ .name = "agent", .type = LOOM_CFG_TEXT, .offset = offsetof(loom_deploy_schedule_t, agent),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "the agent whose profiles run" },
	{ .name = "profiles", .type = LOOM_CFG_STRLIST, .offset = offsetof(loom_deploy_schedule_t, profiles),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY,
	  .help = "run profiles, in order; one that does not succeed stops the rest" },
	{ .name = "every", .type = LOOM_CFG_DURATION, .offset = offsetof(loom_deploy_schedule_t, every_ms),
	  .min = 1000, .max = 366LL * 86400000, .help = "run at every multiple of this interval since the epoch" },
	{ .name = "cron", .type = LOOM_CFG_TEXT, .offset = offsetof(loom_deploy_schedule_t, cron),
	  .help = "or when this cron expression matches (minute hour day-of-month month day-of-week, UTC)" },
	{ .name = "enabled", .type = LOOM_CFG_BOOL, .offset = offsetof(loom_deploy_schedule_t, enabled),
	  .def = "true", .help = "false: keep the schedule but never start it" },
	{ NULL }
};
static const loom_cfg_table_t schedule_table = { .what = "schedule", .size = sizeof(loom_deploy_schedule_t),
	.keys = schedule_keys };

static const loom_cfg_key_t mail_keys[] = {
	{ .name = "relay", .type = LOOM_CFG_STRING, .offset = offsetof(loom_deploy_mail_t, relay),
	  .help = "HOST:PORT of the SMTP relay workflows send through (absent: mail is logged, not sent)" },
	{ .name = "from", .type = LOOM_CFG_STRING, .offset = offsetof(loom_deploy_mail_t, from),
	  .def = "loom@localhost", .help = "sender address of workflow mail" },
	{ .name = "helo", .type = LOOM_CFG_STRING, .offset = offsetof(loom_deploy_mail_t, helo),
	  .def = "localhost", .help = "the name given to the relay in EHLO" },
	{ .name = "timeout", .type = LOOM_CFG_DURATION, .offset = offsetof(loom_deploy_mail_t, timeout_ms),
	  .def = "10s", .min = 100, .max = 600000, .help = "wait for each reply of the relay" },
	{ .name = "retry", .type = LOOM_CFG_DURATION, .offset = offsetof(loom_deploy_mail_t, retry_ms),
	  .def = "1m", .min = 100, .max = 86400000, .help = "wait before another attempt after a failure" },
	{ .name = "give_up", .type = LOOM_CFG_DURATION, .offset = offsetof(loom_deploy_mail_t, give_up_ms),
	  .def = "2d", .min = 1000, .max = 366LL * 86400000, .help = "drop (and log) a message not sent after this long" },
	{ NULL }
};
static const loom_cfg_table_t mail_table = { .what = "mail", .keys = mail_keys };

static const loom_cfg_key_t workflow_keys[] = {
	{ .name = "scheduler", .type = LOOM_CFG_DURATION, .offset = offsetof(loom_deploy_workflow_t, scheduler_ms),
	  .def = "1m", .min = 100, .max = 86400000,
	  .help = "how often loom-workflow re-evaluates temporal Sets and deletes expired resources" },
	{ .name = "max_depth", .type = LOOM_CFG_INT, .offset = offsetof(loom_deploy_workflow_t, max_depth),
	  .def = "8", .min = 1, .max = 100,
	  .help = "requests made by action workflows because of requests made by action workflows, at most" },
	{ .name = "ctl_hint", .type = LOOM_CFG_STRING, .offset = offsetof(loom_deploy_workflow_t, ctl_hint),
	  .def = "loomctl", .help = "the loomctl command approvers are told to run in approval e-mails" },
	{ NULL }
};
static const loom_cfg_table_t workflow_table = { .what = "workflow", .keys = workflow_keys };

static const loom_cfg_key_t host_keys[] = {
	{ .name = "name", .type = LOOM_CFG_TEXT, .offset = offsetof(loom_deploy_host_t, name),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "the host's name, given to loomd with --host (default: the hostname)" },
	{ .name = "processes", .type = LOOM_CFG_STRLIST, .offset = offsetof(loom_deploy_host_t, processes),
	  .flags = LOOM_CFG_REQUIRED,
	  .help = "what loomd starts there: broker, tap, engine, workflow, pcns, agents (every agent process), ma.NAME" },
	{ NULL }
};
static const loom_cfg_table_t host_table = { .what = "host", .size = sizeof(loom_deploy_host_t), .keys = host_keys };

static const loom_cfg_key_t supervisor_keys[] = {
	{ .name = "restart_min", .type = LOOM_CFG_DURATION, .offset = offsetof(loom_deploy_supervisor_t, restart_min_ms),
	  .def = "500ms", .min = 10, .max = 3600000, .help = "loomd's first wait before restarting a process that exited (doubles after each fast crash)" },
	{ .name = "restart_max", .type = LOOM_CFG_DURATION, .offset = offsetof(loom_deploy_supervisor_t, restart_max_ms),
	  .def = "30s", .min = 10, .max = 86400000, .help = "the longest wait before a restart" },
	{ .name = "fast_crash", .type = LOOM_CFG_DURATION, .offset = offsetof(loom_deploy_supervisor_t, fast_crash_ms),
	  .def = "10s", .min = 10, .max = 86400000, .help = "a process that exits sooner than this after its start crashed fast" },
	{ .name = "give_up", .type = LOOM_CFG_INT, .offset = offsetof(loom_deploy_supervisor_t, give_up),
	  .def = "5", .min = 1, .max = 1000, .help = "fast crashes in a row after which loomd stops restarting a process" },
	{ .name = "stop_timeout", .type = LOOM_CFG_DURATION, .offset = offsetof(loom_deploy_supervisor_t, stop_timeout_ms),
	  .def = "15s", .min = 100, .max = 3600000, .help = "wait after SIGTERM before loomd kills a process with SIGKILL" },
	{ NULL }
};
static const loom_cfg_table_t supervisor_table = { .what = "supervisor", .keys = supervisor_keys };

static const loom_cfg_key_t top_keys[] = {
	{ .name = "state_dir", .type = LOOM_CFG_PATH, .offset = offsetof(loom_deploy_t, state_dir),
	  .def = "../var", .help = "where stores, sockets and spools live" },
	{ .name = "log", .type = LOOM_CFG_SECTION, .offset = offsetof(loom_deploy_t, log),
	  .sub = &log_table, .help = "logging" },
	{ .name = "bus", .type = LOOM_CFG_SECTION, .offset = offsetof(loom_deploy_t, bus),
	  .sub = &bus_table, .help = "the message bus" },
	{ .name = "schedules", .type = LOOM_CFG_LIST, .offset = offsetof(loom_deploy_t, schedules),
	  .sub = &schedule_table, .help = "run profiles started by loom-engine on a timetable" },
	{ .name = "mail", .type = LOOM_CFG_SECTION, .offset = offsetof(loom_deploy_t, mail),
	  .sub = &mail_table, .help = "e-mail sent by the policy service's workflows" },
	{ .name = "workflow", .type = LOOM_CFG_SECTION, .offset = offsetof(loom_deploy_t, workflow),
	  .sub = &workflow_table, .help = "the policy service's workflows and scheduler" },
	{ .name = "hosts", .type = LOOM_CFG_LIST, .offset = offsetof(loom_deploy_t, hosts),
	  .sub = &host_table, .help = "which processes loomd starts on which host (absent: one host runs broker, engine and every agent)" },
	{ .name = "supervisor", .type = LOOM_CFG_SECTION, .offset = offsetof(loom_deploy_t, supervisor),
	  .sub = &supervisor_table, .help = "loomd's restart and stop policy" },
	{ NULL }
};
const loom_cfg_table_t loom_deploy_table = { .what = "loom.yaml", .keys = top_keys };

const char *loom_deploy_default_path(void)
{
	const char *env = getenv("LOOM_CONFIG");
	return env && *env ? env : "config/loom.yaml";
}

static void add_diag_at(loom_cfg_diags_t *diags, const char *file, const loom_cfg_text_t *at,
    const char *key, const char *value, char *text)
{
	loom_cfg_diag_t *d = loom_cfg_diag_add(diags, file, key, text);
	d->line = at->line;
	d->column = at->column;
	d->value = value ? loom_strdup(value) : NULL;
}

/* Exactly one of every/cron, a cron expression that parses, unique names. */
static void check_schedules(loom_deploy_t *cfg, loom_cfg_diags_t *diags)
{
	loom_deploy_schedule_t *v = cfg->schedules.v;
	for (size_t i = 0; i < cfg->schedules.n; i++) {
		loom_deploy_schedule_t *s = &v[i];
		if (s->name.text == NULL)
			continue; /* reported missing by the loader */
		char *key = loom_sprintf("schedules[%zu]", i);
		if (s->cron.text && s->every_ms) {
			add_diag_at(diags, cfg->path, &s->cron, key, NULL, loom_sprintf(
			    "%s:%u:%u: key '%s': schedule '%s' has both 'every' and 'cron': expected one of them",
			    cfg->path, s->cron.line, s->cron.column, key, s->name.text));
		} else if (s->cron.text == NULL && s->every_ms == 0) {
			add_diag_at(diags, cfg->path, &s->name, key, NULL, loom_sprintf(
			    "%s:%u:%u: key '%s': schedule '%s' has neither 'every' nor 'cron': expected one of them",
			    cfg->path, s->name.line, s->name.column, key, s->name.text));
		} else if (s->cron.text) {
			char *err = NULL;
			if (loom_cron_parse(s->cron.text, &s->spec, &err) < 0) {
				char *ckey = loom_sprintf("%s.cron", key);
				add_diag_at(diags, cfg->path, &s->cron, ckey, s->cron.text, loom_sprintf(
				    "%s:%u:%u: key '%s': bad value '%s': %s",
				    cfg->path, s->cron.line, s->cron.column, ckey, s->cron.text, err));
				free(ckey);
				free(err);
			}
		}
		for (size_t k = 0; k < i; k++) {
			if (v[k].name.text && strcmp(v[k].name.text, s->name.text) == 0) {
				char *nkey = loom_sprintf("%s.name", key);
				add_diag_at(diags, cfg->path, &s->name, nkey, s->name.text, loom_sprintf(
				    "%s:%u:%u: key '%s': schedule name '%s' is already used at line %u: expected a unique name",
				    cfg->path, s->name.line, s->name.column, nkey, s->name.text, v[k].name.line));
				free(nkey);
				break;
			}
		}
		free(key);
	}
}

bool loom_deploy_process_valid(const char *s)
{
	static const char *const fixed[] = { "broker", "tap", "engine", "workflow", "pcns", "agents", NULL };
	for (int i = 0; fixed[i]; i++)
		if (strcmp(s, fixed[i]) == 0)
			return true;
	return strncmp(s, "ma.", 3) == 0 && loom_service_name_valid(s, strlen(s)) && s[3] != '\0';
}

const loom_deploy_host_t *loom_deploy_host(const loom_deploy_t *cfg, const char *name)
{
	const loom_deploy_host_t *v = cfg->hosts.v;
	for (size_t i = 0; i < cfg->hosts.n; i++)
		if (v[i].name.text && strcmp(v[i].name.text, name) == 0)
			return &v[i];
	return NULL;
}

/* Unique host names, known process names, each process on one host only
 * (two brokers, or two engines on one store, would split the bus). */
static void check_hosts(loom_deploy_t *cfg, loom_cfg_diags_t *diags)
{
	loom_deploy_host_t *v = cfg->hosts.v;
	for (size_t i = 0; i < cfg->hosts.n; i++) {
		loom_deploy_host_t *h = &v[i];
		if (h->name.text == NULL)
			continue;
		char *key = loom_sprintf("hosts[%zu]", i);
		if (!loom_service_name_valid(h->name.text, strlen(h->name.text)))
			add_diag_at(diags, cfg->path, &h->name, key, h->name.text, loom_sprintf(
			    "%s:%u:%u: key '%s.name': bad value '%s': expected letters, digits, '.', '_' and '-', starting with a letter",
			    cfg->path, h->name.line, h->name.column, key, h->name.text));
		for (size_t k = 0; k < i; k++)
			if (v[k].name.text && strcmp(v[k].name.text, h->name.text) == 0)
				add_diag_at(diags, cfg->path, &h->name, key, h->name.text, loom_sprintf(
				    "%s:%u:%u: key '%s.name': host name '%s' is already used at line %u: expected a unique name",
				    cfg->path, h->name.line, h->name.column, key, h->name.text, v[k].name.line));
		for (size_t p = 0; p < h->processes.n; p++) {
			const char *s = h->processes.v[p];
			if (!loom_deploy_process_valid(s)) {
				add_diag_at(diags, cfg->path, &h->name, key, s, loom_sprintf(
				    "%s:%u:%u: key '%s.processes': bad value '%s': expected broker, tap, engine, workflow, pcns, agents or ma.NAME",
				    cfg->path, h->name.line, h->name.column, key, s));
				continue;
			}
			/* the same process twice, on this host or an earlier one */
			for (size_t k = 0; k <= i; k++) {
				size_t lim = k == i ? p : v[k].processes.n;
				bool dup = false;
				for (size_t q = 0; q < lim; q++)
					if (strcmp(v[k].processes.v[q], s) == 0)
						dup = true;
				if (dup) {
					add_diag_at(diags, cfg->path, &h->name, key, s, loom_sprintf(
					    "%s:%u:%u: key '%s.processes': '%s' is already assigned to host '%s': a process runs on one host only",
					    cfg->path, h->name.line, h->name.column, key, s, v[k].name.text ? v[k].name.text : "?"));
					break;
				}
			}
		}
		free(key);
	}
}

static void default_endpoint(char **ep, const char *state_dir, const char *name)
{
	if (*ep == NULL)
		*ep = loom_sprintf("ipc://%s/run/%s", state_dir, name);
}

static void check_endpoint(const loom_deploy_t *cfg, const char *key, const char *ep,
    loom_cfg_diags_t *diags)
{
	if (strncmp(ep, "ipc://", 6) == 0) {
		struct sockaddr_un sun;
		if (strlen(ep + 6) >= sizeof sun.sun_path)
			loom_cfg_diag_add(diags, cfg->path, key, loom_sprintf(
			    "%s: key '%s': ipc path '%s' is %zu bytes, a socket path holds at most %zu: "
			    "use a shorter state_dir or set the endpoint", cfg->path, key, ep + 6,
			    strlen(ep + 6), sizeof sun.sun_path - 1));
	} else if (strncmp(ep, "tcp://", 6) == 0 && !cfg->bus.curve) {
		loom_cfg_diag_add(diags, cfg->path, key, loom_sprintf(
		    "%s: key '%s': tcp endpoint '%s' needs 'bus.curve: true': the bus never crosses a network unencrypted",
		    cfg->path, key, ep));
	}
}

int loom_deploy_load(const char *path, loom_deploy_t *cfg, loom_cfg_diags_t *diags)
{
	memset(diags, 0, sizeof *diags);
	int rc = loom_config_load_file(path, &loom_deploy_table, cfg, diags);
	cfg->path = loom_strdup(path);
	if (cfg->state_dir == NULL) {
		/* The file could not be read or state_dir is bad: nothing to derive. */
		return -1;
	}
	default_endpoint(&cfg->bus.router, cfg->state_dir, "bus-router");
	default_endpoint(&cfg->bus.publish, cfg->state_dir, "bus-publish");
	default_endpoint(&cfg->bus.subscribe, cfg->state_dir, "bus-subscribe");
	default_endpoint(&cfg->bus.tap, cfg->state_dir, "bus-tap");
	check_endpoint(cfg, "bus.router", cfg->bus.router, diags);
	check_endpoint(cfg, "bus.publish", cfg->bus.publish, diags);
	check_endpoint(cfg, "bus.subscribe", cfg->bus.subscribe, diags);
	check_endpoint(cfg, "bus.tap", cfg->bus.tap, diags);
	check_schedules(cfg, diags);
	check_hosts(cfg, diags);
	/* Cross-field checks run even after load errors: one pass shows all. */
	return rc < 0 || diags->n ? -1 : 0;
}

void loom_deploy_release(loom_deploy_t *cfg)
{
	loom_config_release(&loom_deploy_table, cfg);
	free(cfg->path);
	cfg->path = NULL;
}
