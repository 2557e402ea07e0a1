/* loomd.c - the per-host supervisor (DESIGN.md §1, docs/deploy.md), like
 * Postfix's master: starts the processes config/loom.yaml assigns to this
 * host, restarts one that exits, stops them in order.
 *
 * Process states (this block and the functions named change together):
 *
 *   starting  --fork+exec ok (spawn)-------------------> running
 *   running   --exit while loomd runs (on_sigchld)-----> backoff | failed
 *   backoff   --its timer fires (on_restart)-----------> running (spawn)
 *   failed    (give_up fast crashes in a row: stays; restart loomd to retry)
 *   running   --loomd stops (stop_all)-----------------> stopping --> stopped
 *
 * A fast crash is an exit sooner than supervisor.fast_crash after the start.
 * The wait before a restart is restart_min after a process that had run
 * longer (the count of fast crashes starts again), and doubles with each fast
 * crash in a row up to restart_max; after give_up of them loomd logs why it
 * stops trying and leaves the process failed (Postfix's "throttling", with an
 * end). Order: broker, then engine, then workflow and pcns, then agents and
 * tap; stopped in the reverse order, each tier's processes getting SIGTERM
 * together, SIGKILL after stop_timeout.
 *
 * Status: loomd registers as "loomd.HOST" on the bus and answers
 * HostStatusRequest (proto/loomd.proto); `loomctl status` asks every loomd it
 * finds through the broker. The same table is also written, on every change,
 * to STATE_DIR/run/loomd.HOST.state (for a look when the bus is down).
 */
#define _GNU_SOURCE
#include "loom_alloc.h"
#include "loom_agentcfg.h"
#include "loom_buf.h"
#include "loom_daemon.h"
#include "loom_envelope.h"
#include "loom_log.h"
#include "loomd.pb-c.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef enum { P_STARTING, P_RUNNING, P_BACKOFF, P_FAILED, P_STOPPING, P_STOPPED } pstate_t;
static const char *const pstate_names[] = { "starting", "running", "backoff", "failed", "stopping", "stopped" };

typedef struct loomd loomd_t;

typedef struct child {
	loomd_t *ld;                   /* back pointer, for timers */
	char *name;                    /* broker, engine, ma.hr, ... */
	char *binary;                  /* the program's path */
	char **argv;                   /* its arguments, NULL-terminated */
	int tier;                      /* start order (0 first); stopped in reverse */
	pstate_t state;                /* see the block at the top */
	pid_t pid;                     /* when running or stopping, else 0 */
	unsigned restarts;             /* starts after the first */
	unsigned fast;                 /* fast crashes in a row */
	int64_t since_us;              /* when state was entered */
	int64_t started_us;            /* when the current/last instance started */
	int64_t next_start_us;         /* in backoff: when it starts again */
	int timer;                     /* restart timer id, or -1 */
	char last_exit[48];            /* "exit 1", "signal KILL", or "" */
} child_t;

struct loomd {
	loom_daemon_t *d;              /* the skeleton */
	char *host;                    /* this host's name */
	char *log_dir;                 /* where each child's stderr goes */
	char *state_path;              /* STATE_DIR/run/loomd.HOST.state */
	int lock_fd;                   /* STATE_DIR/run/loomd.HOST.pid, locked */
	int sigchld_fd;                /* signalfd for SIGCHLD */
	int64_t started_us;            /* loomd's start */
	child_t *kids;                 /* the processes of this host */
	size_t n_kids;                 /* how many */
	bool stopping;                 /* SIGTERM received: no more restarts */
};

static loomd_t the_loomd;
static char *opt_host;             /* --host */
static char *opt_bin_dir;          /* --bin-dir */
static char default_service[300];  /* "loomd.HOSTNAME" */

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int set_host(loom_daemon_t *d, const char *v, const char **error_r)
{
	if (!loom_service_name_valid(v, strlen(v))) {
		*error_r = "expected a host name of letters, digits, '.', '_' and '-', starting with a letter";
		return -1;
	}
	free(opt_host);
	opt_host = loom_strdup(v);
	char *svc = loom_sprintf("loomd.%s", v);
	loom_daemon_set_default_service(d, svc);
	free(svc);
	return 0;
}

static int set_bin_dir(loom_daemon_t *d, const char *v, const char **error_r)
{
	(void)d;
	struct stat st;
	if (stat(v, &st) < 0 || !S_ISDIR(st.st_mode)) {
		*error_r = "not a directory";
		return -1;
	}
	free(opt_bin_dir);
	opt_bin_dir = loom_strdup(v);
	return 0;
}

static const loom_flag_t flags[] = {
	{ "host", "NAME", "this host's entry in hosts: of loom.yaml (default: the hostname)", set_host },
	{ "bin-dir", "DIR", "where the loom-* programs are (default: beside loomd, or the build tree)", set_bin_dir },
	{ NULL }
};

/* Looks for prog in --bin-dir, beside loomd, in the build tree's subdir
 * (loomd in build/cli, the others in build/SUBDIR), then in PATH. */
static char *find_binary(const char *prog, const char *subdir)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	char *cands[3] = { NULL, NULL, NULL };
	int nc = 0;
	if (opt_bin_dir)
		cands[nc++] = loom_sprintf("%s/%s", opt_bin_dir, prog);
	if (n > 0) {
		self[n] = '\0';
		char *dir = dirname(self);
		cands[nc++] = loom_sprintf("%s/%s", dir, prog);
		cands[nc++] = loom_sprintf("%s/../%s/%s", dir, subdir, prog);
	}
	char *found = NULL;
	for (int i = 0; i < nc; i++) {
		if (found == NULL && access(cands[i], X_OK) == 0)
			found = realpath(cands[i], NULL);
		free(cands[i]);
	}
	if (found)
		return found;
	const char *path = getenv("PATH");
	if (path == NULL)
		return NULL;
	char *copy = loom_strdup(path), *save = NULL;
	for (char *p = strtok_r(copy, ":", &save); p && !found; p = strtok_r(NULL, ":", &save)) {
		char *c = loom_sprintf("%s/%s", *p ? p : ".", prog);
		if (access(c, X_OK) == 0)
			found = c;
		else
			free(c);
	}
	free(copy);
	return found;
}

static const char *agent_program(int type)
{
	switch (type) {
	case LOOM_AGENT_FILE: return "loom-ma-file";
	case LOOM_AGENT_LDAP: return "loom-ma-ldap";
	case LOOM_AGENT_EXT: return "loom-ma-ext";
	case LOOM_AGENT_SQL: return "loom-ma-sql";
	default: return NULL; /* policy: answered by loom-workflow itself */
	}
}

/* Adds a child; returns -1 with *error_r (malloc'd) when its program is missing. */
static int add_child(loomd_t *ld, const char *name, const char *prog, const char *subdir, int tier,
    const char *agent, char **error_r)
{
	for (size_t i = 0; i < ld->n_kids; i++)
		if (strcmp(ld->kids[i].name, name) == 0)
			return 0; /* "agents" and "ma.NAME" both name it */
	char *bin = find_binary(prog, subdir);
	if (bin == NULL) {
		*error_r = loom_sprintf("cannot find program '%s' for process '%s' (looked beside loomd, "
		    "in ../%s of the build tree and in PATH): use --bin-dir DIR", prog, name, subdir);
		return -1;
	}
	ld->kids = loom_realloc(ld->kids, (ld->n_kids + 1) * sizeof *ld->kids);
	child_t *c = &ld->kids[ld->n_kids++];
	memset(c, 0, sizeof *c);
	c->ld = ld;
	c->name = loom_strdup(name);
	c->binary = bin;
	c->tier = tier;
	c->timer = -1;
	c->state = P_STARTING;
	const loom_deploy_t *cfg = loom_daemon_config(ld->d);
	c->argv = loom_calloc(8, sizeof *c->argv);
	int a = 0;
	c->argv[a++] = loom_strdup(prog);
	c->argv[a++] = loom_strdup("-c");
	c->argv[a++] = loom_strdup(cfg->path);
	if (agent) {
		c->argv[a++] = loom_strdup("--agent");
		c->argv[a++] = loom_strdup(agent);
	}
	return 0;
}

/* The processes of this host, in start order. */
static int plan(loomd_t *ld, char **error_r)
{
	const loom_deploy_t *cfg = loom_daemon_config(ld->d);
	static const char *const dflt[] = { "broker", "engine", "agents" };
	const char *const *procs = dflt;
	size_t nprocs = 3;
	if (cfg->hosts.n) {
		const loom_deploy_host_t *h = loom_deploy_host(cfg, ld->host);
		if (h == NULL) {
			loom_buf_t b = LOOM_BUF_INIT;
			const loom_deploy_host_t *v = cfg->hosts.v;
			for (size_t i = 0; i < cfg->hosts.n; i++)
				loom_buf_printf(&b, "%s%s", i ? ", " : "", v[i].name.text);
			*error_r = loom_sprintf("host '%s' is not in hosts: of '%s' (hosts: %s): give --host NAME",
			    ld->host, cfg->path, loom_buf_cstr(&b));
			loom_buf_release(&b);
			return -1;
		}
		procs = (const char *const *)h->processes.v;
		nprocs = h->processes.n;
	}
	loom_agentcfg_t *agents = NULL;
	size_t nagents = 0;
	bool have_agents = false;
	int rc = 0;
	/* tiers: 0 broker, 1 engine, 2 workflow and pcns, 3 agents and tap */
	for (int tier = 0; tier <= 3 && rc == 0; tier++) {
		for (size_t i = 0; i < nprocs && rc == 0; i++) {
			const char *p = procs[i];
			if (tier == 0 && strcmp(p, "broker") == 0)
				rc = add_child(ld, "broker", "loom-broker", "broker", 0, NULL, error_r);
			else if (tier == 1 && strcmp(p, "engine") == 0)
				rc = add_child(ld, "engine", "loom-engine", "engine", 1, NULL, error_r);
			else if (tier == 2 && strcmp(p, "workflow") == 0)
				rc = add_child(ld, "workflow", "loom-workflow", "workflow", 2, NULL, error_r);
			else if (tier == 2 && strcmp(p, "pcns") == 0)
				rc = add_child(ld, "pcns", "loom-pcns", "pcns", 2, NULL, error_r);
			else if (tier == 3 && strcmp(p, "tap") == 0)
				rc = add_child(ld, "tap", "loom-tap", "broker", 3, NULL, error_r);
			else if (tier == 3 && (strcmp(p, "agents") == 0 || strncmp(p, "ma.", 3) == 0)) {
				if (!have_agents) {
					char *dir = loom_agentcfg_dir(cfg->path);
					loom_cfg_diags_t diags;
					memset(&diags, 0, sizeof diags);
					if (loom_agentcfg_load_dir(dir, &agents, &nagents, &diags) < 0) {
						loom_buf_t b = LOOM_BUF_INIT;
						for (size_t k = 0; k < diags.n; k++)
							loom_buf_printf(&b, "%s%s", k ? "; " : "", diags.v[k].text);
						*error_r = loom_sprintf("agents in '%s': %s", dir, loom_buf_cstr(&b));
						loom_buf_release(&b);
						rc = -1;
					}
					loom_cfg_diags_release(&diags);
					free(dir);
					have_agents = true;
					if (rc < 0)
						break;
				}
				bool found = false;
				for (size_t k = 0; k < nagents && rc == 0; k++) {
					const char *prog = agent_program(agents[k].type);
					char *svc = loom_sprintf("ma.%s", agents[k].name);
					bool want = strcmp(p, "agents") == 0 ? prog != NULL : strcmp(p, svc) == 0;
					if (want && prog == NULL) {
						*error_r = loom_sprintf("process '%s': agent '%s' is of type policy, which loom-workflow "
						    "answers itself: list workflow instead", p, agents[k].name);
						rc = -1;
					} else if (want) {
						rc = add_child(ld, svc, prog, "agents", 3, agents[k].name, error_r);
					}
					found = found || strcmp(p, svc) == 0;
					free(svc);
				}
				if (rc == 0 && !found && strcmp(p, "agents") != 0) {
					char *dir = loom_agentcfg_dir(cfg->path);
					*error_r = loom_sprintf("process '%s': no agent '%s' in '%s'", p, p + 3, dir);
					free(dir);
					rc = -1;
				}
			}
		}
	}
	if (agents)
		loom_agentcfg_free_all(&agents, nagents);
	return rc;
}

/* STATE_DIR/run/loomd.HOST.state: replaced atomically on every change. */
static void write_state(loomd_t *ld)
{
	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_printf(&b, "loomd host=%s pid=%d\n", ld->host, (int)getpid());
	for (size_t i = 0; i < ld->n_kids; i++) {
		child_t *c = &ld->kids[i];
		loom_buf_printf(&b, "%s %s pid=%d restarts=%u last_exit=%s\n", c->name, pstate_names[c->state],
		    (int)c->pid, c->restarts, c->last_exit[0] ? loom_log_kv_quote(c->last_exit) : "-");
	}
	char *tmp = loom_sprintf("%s.tmp", ld->state_path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		const char *s = loom_buf_cstr(&b);
		size_t len = strlen(s);
		bool ok = write(fd, s, len) == (ssize_t)len;
		close(fd);
		if (!ok || rename(tmp, ld->state_path) < 0)
			loom_warning("cannot write state file %s: %s", loom_log_kv_quote(ld->state_path), strerror(errno));
	}
	free(tmp);
	loom_buf_release(&b);
}

static void set_state(child_t *c, pstate_t s)
{
	c->state = s;
	c->since_us = now_us();
}

static int spawn(child_t *c)
{
	loomd_t *ld = c->ld;
	char *logpath = loom_sprintf("%s/%s.log", ld->log_dir, c->name);
	int logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (logfd < 0) {
		loom_error("cannot open log %s for process %s: %s", loom_log_kv_quote(logpath), c->name, strerror(errno));
		free(logpath);
		return -1;
	}
	free(logpath);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		loom_error("cannot fork for process %s: %s", c->name, strerror(errno));
		close(logfd);
		return -1;
	}
	if (pid == 0) {
		/* the child: signals as a fresh process has them, output to its log */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		/* loomd gone (even by kill -9): its processes stop cleanly too */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1); /* loomd died before the line above took effect */
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		closefrom(3);
		execv(c->binary, c->argv);
		dprintf(2, "loomd: cannot run '%s': %s\n", c->binary, strerror(errno));
		_exit(127);
	}
	close(logfd);
	c->pid = pid;
	c->started_us = now_us();
	c->next_start_us = 0;
	set_state(c, P_RUNNING);
	loom_info("started process=%s pid=%d restarts=%u", c->name, (int)pid, c->restarts);
	return 0;
}

static int on_restart(loom_loop_t *loop, void *arg)
{
	(void)loop;
	child_t *c = arg;
	c->timer = -1;
	if (c->ld->stopping || c->state != P_BACKOFF)
		return 0;
	c->restarts++;
	if (spawn(c) < 0) {
		set_state(c, P_FAILED);
		loom_error("giving up on process=%s: it cannot be started (see above)", c->name);
	}
	write_state(c->ld);
	return 0;
}

static void describe_status(int status, char *out, size_t n)
{
	if (WIFEXITED(status)) {
		snprintf(out, n, "exit %d", WEXITSTATUS(status));
	} else if (WIFSIGNALED(status)) {
		const char *s = sigabbrev_np(WTERMSIG(status));
		if (s)
			snprintf(out, n, "signal %s", s);
		else
			snprintf(out, n, "signal %d", WTERMSIG(status));
	} else {
		snprintf(out, n, "status %d", status);
	}
}

static child_t *child_by_pid(loomd_t *ld, pid_t pid)
{
	for (size_t i = 0; i < ld->n_kids; i++)
		if (ld->kids[i].pid == pid)
			return &ld->kids[i];
	return NULL;
}

/* A child exited while loomd runs: schedule its restart, or give up. */
static void child_exited(loomd_t *ld, child_t *c, int status)
{
	const loom_deploy_supervisor_t *sv = &loom_daemon_config(ld->d)->supervisor;
	describe_status(status, c->last_exit, sizeof c->last_exit);
	int64_t ran_ms = (now_us() - c->started_us) / 1000;
	int pid = (int)c->pid;
	c->pid = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == LOOM_EXIT_FENCED) {
		/* Another host took the lease (docs/recovery.md): restarting
		 * would only be refused again. */
		set_state(c, P_FAILED);
		loom_error("process=%s pid=%d was fenced (another host holds the lease, exit %d): not restarted; "
		    "see `loomctl status` and %s/%s.log", c->name, pid, LOOM_EXIT_FENCED, ld->log_dir, c->name);
		return;
	}
	if (ran_ms >= sv->fast_crash_ms)
		c->fast = 0;
	else
		c->fast++;
	if (c->fast >= (unsigned)sv->give_up) {
		set_state(c, P_FAILED);
		loom_error("giving up on process=%s pid=%d: it exited %u times in a row within %lldms of its start, "
		    "last status=%s: see %s/%s.log, fix the cause and restart loomd", c->name, pid, c->fast,
		    sv->fast_crash_ms, loom_log_kv_quote(c->last_exit), ld->log_dir, c->name);
		return;
	}
	long long delay = sv->restart_min_ms;
	for (unsigned i = 1; i < c->fast && delay < sv->restart_max_ms; i++)
		delay *= 2;
	if (delay > sv->restart_max_ms)
		delay = sv->restart_max_ms;
	set_state(c, P_BACKOFF);
	c->next_start_us = now_us() + delay * 1000;
	c->timer = loom_loop_add_timer(loom_daemon_loop(ld->d), delay, 1, on_restart, c);
	loom_warning("process exited process=%s pid=%d status=%s ran_ms=%lld; restarting in %lldms "
	    "(fast crashes in a row %u of %lld)", c->name, pid, loom_log_kv_quote(c->last_exit), (long long)ran_ms,
	    delay, c->fast, sv->give_up);
}

static int on_sigchld(loom_loop_t *loop, void *arg)
{
	(void)loop;
	loomd_t *ld = arg;
	struct signalfd_siginfo si;
	while (read(ld->sigchld_fd, &si, sizeof si) == (ssize_t)sizeof si)
		;
	int status;
	pid_t pid;
	bool changed = false;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		child_t *c = child_by_pid(ld, pid);
		if (c == NULL)
			continue;
		child_exited(ld, c, status);
		changed = true;
	}
	if (changed)
		write_state(ld);
	return 0;
}

/* SIGTERM to every running process of the tier, then wait for them;
 * SIGKILL after stop_timeout. */
static void stop_tier(loomd_t *ld, int tier)
{
	const loom_deploy_supervisor_t *sv = &loom_daemon_config(ld->d)->supervisor;
	int n = 0;
	for (size_t i = 0; i < ld->n_kids; i++) {
		child_t *c = &ld->kids[i];
		if (c->tier != tier)
			continue;
		if (c->timer >= 0) {
			loom_loop_cancel_timer(loom_daemon_loop(ld->d), c->timer);
			c->timer = -1;
		}
		if (c->pid <= 0) {
			set_state(c, P_STOPPED);
			continue;
		}
		loom_info("stopping process=%s pid=%d", c->name, (int)c->pid);
		kill(c->pid, SIGTERM);
		set_state(c, P_STOPPING);
		n++;
	}
	write_state(ld);
	int64_t deadline = now_us() + sv->stop_timeout_ms * 1000;
	bool killed = false;
	while (n > 0) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid > 0) {
			child_t *c = child_by_pid(ld, pid);
			if (c == NULL)
				continue;
			describe_status(status, c->last_exit, sizeof c->last_exit);
			loom_info("stopped process=%s pid=%d status=%s", c->name, (int)pid, loom_log_kv_quote(c->last_exit));
			c->pid = 0;
			set_state(c, P_STOPPED);
			if (c->tier == tier)
				n--;
			continue;
		}
		if (pid < 0 && errno == ECHILD)
			break;
		if (!killed && now_us() >= deadline) {
			for (size_t i = 0; i < ld->n_kids; i++) {
				child_t *c = &ld->kids[i];
				if (c->tier == tier && c->pid > 0) {
					loom_warning("process did not stop within %lldms of SIGTERM: killing process=%s pid=%d",
					    sv->stop_timeout_ms, c->name, (int)c->pid);
					kill(c->pid, SIGKILL);
				}
			}
			killed = true;
		}
		usleep(20000);
	}
	write_state(ld);
}

static void loomd_stop(loom_daemon_t *d)
{
	loomd_t *ld = loom_daemon_user(d);
	if (ld == NULL)
		return;
	ld->stopping = true;
	/* agents and tap, then workflow and pcns, then the engine, the broker last:
	 * every process says Bye (and hands back what it holds) while the bus is up */
	for (int tier = 3; tier >= 0; tier--)
		stop_tier(ld, tier);
	loom_info("all processes stopped host=%s", ld->host);
}

/* This host's name: --host; else the hostname as gethostname() says it,
 * or its first label (core1 for core1.example.com) when only that is in
 * hosts:. (Without hosts: the full hostname.) */
static char *this_host(loom_daemon_t *d)
{
	if (opt_host)
		return loom_strdup(opt_host);
	const char *full = loom_daemon_service(d) + strlen("loomd.");
	const loom_deploy_t *cfg = loom_daemon_config(d);
	char *shrt = loom_strdup(full);
	shrt[strcspn(shrt, ".")] = '\0';
	if (cfg->hosts.n && loom_deploy_host(cfg, full) == NULL && loom_deploy_host(cfg, shrt) != NULL)
		return shrt;
	free(shrt);
	return loom_strdup(full);
}

/* the_loomd, emptied, for daemon d (start and --check-config). */
static loomd_t *loomd_init(loom_daemon_t *d)
{
	loomd_t *ld = &the_loomd;
	memset(ld, 0, sizeof *ld);
	ld->d = d;
	ld->lock_fd = -1;
	ld->sigchld_fd = -1;
	ld->host = this_host(d);
	return ld;
}

static int loomd_start(loom_daemon_t *d, const char **error_r)
{
	static char *msg;
	loomd_t *ld = loomd_init(d);
	ld->started_us = now_us();
	const loom_deploy_t *cfg = loom_daemon_config(d);
	loom_daemon_set_user(d, ld);
	free(msg);
	msg = NULL;
	if (plan(ld, &msg) < 0) {
		*error_r = msg;
		return -1;
	}
	char *run = loom_sprintf("%s/run", cfg->state_dir);
	ld->log_dir = loom_sprintf("%s/log", cfg->state_dir);
	mkdir(cfg->state_dir, 0750);
	mkdir(run, 0750);
	mkdir(ld->log_dir, 0750);
	char *lock = loom_sprintf("%s/loomd.%s.pid", run, ld->host);
	ld->state_path = loom_sprintf("%s/loomd.%s.state", run, ld->host);
	free(run);
	ld->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (ld->lock_fd < 0 || flock(ld->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		char other[32] = "";
		if (ld->lock_fd >= 0) {
			ssize_t n = pread(ld->lock_fd, other, sizeof other - 1, 0);
			other[n > 0 ? n : 0] = '\0';
			other[strcspn(other, "\n")] = '\0';
		}
		msg = loom_sprintf("another loomd runs for host '%s' (pid %s, lock '%s')", ld->host,
		    other[0] ? other : "?", lock);
		free(lock);
		*error_r = msg;
		return -1;
	}
	if (ftruncate(ld->lock_fd, 0) == 0)
		dprintf(ld->lock_fd, "%d\n", (int)getpid());
	free(lock);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	ld->sigchld_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (ld->sigchld_fd < 0) {
		*error_r = "cannot watch child processes (signalfd)";
		return -1;
	}
	loom_loop_add_fd(loom_daemon_loop(d), ld->sigchld_fd, on_sigchld, ld);
	loom_info("host=%s processes=%zu logs=%s", ld->host, ld->n_kids, loom_log_kv_quote(ld->log_dir));
	for (size_t i = 0; i < ld->n_kids; i++) {
		child_t *c = &ld->kids[i];
		if (spawn(c) < 0) {
			msg = loom_sprintf("cannot start process '%s'", c->name);
			*error_r = msg;
			ld->stopping = true;
			loomd_stop(d);
			return -1;
		}
	}
	write_state(ld);
	return 0;
}

static void loomd_message(loom_daemon_t *d, Loom__Envelope *env)
{
	loomd_t *ld = loom_daemon_user(d);
	const char *err;
	if (strcmp(env->type, loom__host_status_request__descriptor.name) != 0) {
		char *m = loom_sprintf("loomd does not handle '%s'", env->type);
		if (env->correlation_id.len == 0 &&
		    loom_bus_reply_error(loom_daemon_bus(d), env, LOOM__ERROR__CODE__UNKNOWN_TYPE, false, m, &err) < 0)
			loom_warning("cannot reply to from=%s: %s", env->from, err);
		free(m);
		loom_envelope_free(&env);
		return;
	}
	/* monotonic times in the table; the reply carries wall-clock µs */
	int64_t mono = now_us(), wall = loom_now_us();
	Loom__HostStatusReply rep = LOOM__HOST_STATUS_REPLY__INIT;
	char hostname[256] = "";
	gethostname(hostname, sizeof hostname - 1);
	rep.host = ld->host;
	rep.hostname = hostname;
	rep.pid = (uint32_t)getpid();
	rep.started = wall - (mono - ld->started_us);
	Loom__ProcessStatus *ps = loom_calloc(ld->n_kids ? ld->n_kids : 1, sizeof *ps);
	Loom__ProcessStatus **pp = loom_calloc(ld->n_kids ? ld->n_kids : 1, sizeof *pp);
	for (size_t i = 0; i < ld->n_kids; i++) {
		child_t *c = &ld->kids[i];
		loom__process_status__init(&ps[i]);
		ps[i].name = c->name;
		ps[i].binary = c->binary;
		ps[i].state = (char *)pstate_names[c->state];
		ps[i].pid = (uint32_t)c->pid;
		ps[i].restarts = c->restarts;
		ps[i].since = wall - (mono - c->since_us);
		ps[i].last_exit = c->last_exit;
		ps[i].next_start = c->next_start_us ? wall + (c->next_start_us - mono) : 0;
		ps[i].fast_crashes = c->fast;
		pp[i] = &ps[i];
	}
	rep.processes = pp;
	rep.n_processes = ld->n_kids;
	if (loom_bus_reply(loom_daemon_bus(d), env, &rep.base, &err) < 0)
		loom_warning("cannot reply to from=%s: %s", env->from, err);
	free(ps);
	free(pp);
	loom_envelope_free(&env);
}

/* --check-config: the host's entry, its agents and every program. */
static int loomd_check(loom_daemon_t *d, const char **error_r)
{
	static char *msg;
	loomd_t *ld = loomd_init(d);
	free(msg);
	msg = NULL;
	if (plan(ld, &msg) < 0) {
		*error_r = msg;
		return -1;
	}
	return 0;
}

static const loom_daemon_def_t def = {
	.process = "loomd",
	.summary = "The Loom per-host supervisor: starts the processes loom.yaml's hosts: assigns to this host\n"
	    "(without hosts: broker, engine and every agent), restarts one that exits (backoff doubling from\n"
	    "supervisor.restart_min to restart_max; after give_up fast crashes in a row it stops trying),\n"
	    "stops them in order on SIGTERM (agents and tap, workflow and pcns, engine, broker), and answers\n"
	    "`loomctl status` over the bus as service loomd.HOST. Each process's output goes to\n"
	    "STATE_DIR/log/NAME.log; the table is also in STATE_DIR/run/loomd.HOST.state (docs/deploy.md).",
	.default_service = default_service,
	.bus_client = true,
	.flags = flags,
	.start = loomd_start,
	.on_message = loomd_message,
	.stop = loomd_stop,
	.check = loomd_check,
};

int main(int argc, char **argv)
{
	char hn[256] = "";
	if (gethostname(hn, sizeof hn - 1) < 0 || !loom_service_name_valid(hn, strlen(hn)))
		snprintf(hn, sizeof hn, "localhost");
	snprintf(default_service, sizeof default_service, "loomd.%s", hn);
	int rc = loom_daemon_main(&def, argc, argv);
	loomd_t *ld = &the_loomd;
	for (size_t i = 0; i < ld->n_kids; i++) {
		child_t *c = &ld->kids[i];
		free(c->name);
		free(c->binary);
		for (char **a = c->argv; a && *a; a++)
			free(*a);
		free(c->argv);
	}
	free(ld->kids);
	free(ld->host);
	free(ld->log_dir);
	free(ld->state_path);
	if (ld->lock_fd >= 0)
		close(ld->lock_fd);
	if (ld->sigchld_fd >= 0)
		close(ld->sigchld_fd);
	free(opt_host);
	free(opt_bin_dir);
	return rc;
}
