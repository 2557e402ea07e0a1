/* ma_ext_proc.c - one run of an extensible agent's program.
 *
 * The program is spawned without a shell (posix_spawnp), in its own
 * process group, with the signals the daemon blocks unblocked and SIGPIPE
 * back to its default, stdin/stdout/stderr on pipes, the working directory
 * ext.dir and LOOM_AGENT=NAME in its environment.
 *
 * States of a run (what the owner sees):
 *
 *   running   lines from stdout are delivered one at a time to ops->line
 *             while not paused; a paused run is not read at all, so the
 *             program blocks on its full pipe (flow control). stderr is
 *             read always and each line logged (the last is kept for
 *             failure messages).
 *   ending    stdout reached its end: buffered lines are still delivered
 *             (when not paused), the process is reaped (killed if it has
 *             not exited 5 s after closing stdout).
 *   gone      ops->gone has been called, once, after the last line: with
 *             the exit status, or why the run was killed (silent past the
 *             timeout while the owner expects something, a line longer
 *             than ext.max_line).
 *
 * ext_proc_destroy() kills the process group if needed and frees the run
 * at any time; inside a callback the free is deferred to its end.
 */
#define _GNU_SOURCE
#include "ma_ext.h"
#include "loom_alloc.h"
#include "loom_log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct ext_proc {
	loom_loop_t *loop;             /* the daemon's loop */
	const ext_proc_ops_t *ops;     /* the owner's callbacks */
	void *arg;                     /* their argument */
	char *agent;                   /* for log lines */
	char *program;                 /* command[0], for messages */
	pid_t pid;                     /* the process (0 once reaped) */
	int status;                    /* its wait status once reaped */
	int in, out, err;              /* our ends of its pipes (-1 when closed) */
	bool out_watched;              /* out is registered with the loop */
	bool err_watched;              /* err is registered with the loop */
	loom_buf_t obuf;               /* stdout bytes not yet delivered */
	size_t opos;                   /* delivered up to here */
	bool out_eof;                  /* stdout ended */
	long long eof_at;              /* when */
	loom_buf_t line;               /* the line being delivered */
	loom_buf_t ebuf;               /* a partial stderr line */
	char last_err[512];            /* the last stderr line */
	bool paused;                   /* not reading stdout */
	bool waiting;                  /* the owner expects output */
	long long timeout_ms;          /* silence allowed while waiting */
	size_t max_line;               /* longest stdout line */
	long long last_activity;       /* last time stdout had bytes (or waiting began) */
	int timer;                     /* the housekeeping timer */
	bool gone;                     /* ops->gone was called */
	int busy;                      /* callbacks running */
	bool doomed;                   /* destroy was called inside a callback */
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void free_proc(ext_proc_t *p);

static void unwatch(ext_proc_t *p)
{
	if (p->out_watched)
		loom_loop_remove_fd(p->loop, p->out);
	if (p->err_watched)
		loom_loop_remove_fd(p->loop, p->err);
	p->out_watched = p->err_watched = false;
}

/* SIGKILL to the process group, then reap. */
static void kill_now(ext_proc_t *p)
{
	if (p->pid <= 0)
		return;
	kill(-p->pid, SIGKILL);
	kill(p->pid, SIGKILL);
	while (waitpid(p->pid, &p->status, 0) < 0 && errno == EINTR)
		;
	p->pid = 0;
}

static void report_gone(ext_proc_t *p, bool clean, const char *why)
{
	if (p->gone)
		return;
	p->gone = true;
	unwatch(p);
	p->busy++;
	p->ops->gone(p->arg, clean, why);
	if (--p->busy == 0 && p->doomed)
		free_proc(p);
}

/* Kills the run for a reason and tells the owner. */
static void fail(ext_proc_t *p, const char *why)
{
	kill_now(p);
	report_gone(p, false, why);
}

static void status_text(char *b, size_t n, int status)
{
	if (WIFEXITED(status))
		snprintf(b, n, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(b, n, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(b, n, "ended (wait status %d)", status);
}

/* Delivers the buffered complete lines while not paused. */
static void deliver(ext_proc_t *p)
{
	p->busy++;
	while (!p->paused && !p->doomed && !p->gone) {
		char *start = p->obuf.data + p->opos;
		size_t avail = p->obuf.len - p->opos;
		char *nl = avail ? memchr(start, '\n', avail) : NULL;
		size_t len;
		if (nl) {
			len = (size_t)(nl - start);
		} else if (p->out_eof && avail) {
			len = avail; /* a last line without its line end */
		} else {
			if (avail > p->max_line) {
				char why[160];
				snprintf(why, sizeof why, "wrote a line longer than %zu bytes (ext.max_line): killed", p->max_line);
				fail(p, why);
			}
			break;
		}
		if (len > p->max_line) {
			char why[160];
			snprintf(why, sizeof why, "wrote a line longer than %zu bytes (ext.max_line): killed", p->max_line);
			fail(p, why);
			break;
		}
		/* The owner gets a NUL-terminated copy: obuf may grow while it
		 * runs (ext_proc_send reads stdout). */
		size_t l = len;
		if (l && start[l - 1] == '\r')
			l--;
		loom_buf_reset(&p->line);
		loom_buf_add(&p->line, start, l);
		p->opos += len + (nl ? 1 : 0);
		p->ops->line(p->arg, loom_buf_cstr(&p->line), l);
	}
	if (!p->doomed && p->opos > 0 && p->opos == p->obuf.len) {
		loom_buf_reset(&p->obuf);
		p->opos = 0;
	} else if (!p->doomed && p->opos > 65536) {
		memmove(p->obuf.data, p->obuf.data + p->opos, p->obuf.len - p->opos);
		p->obuf.len -= p->opos;
		p->opos = 0;
	}
	p->busy--;
	if (p->busy == 0 && p->doomed)
		free_proc(p);
}

/* Reads what stdout holds (up to 1 MiB) into obuf. Returns bytes read,
 * 0 at its end, -1 when nothing was there (or an error). */
static ssize_t read_out(ext_proc_t *p)
{
	size_t total = 0;
	while (total < (1u << 20)) {
		loom_buf_reserve(&p->obuf, 65536);
		ssize_t n = read(p->out, p->obuf.data + p->obuf.len, 65536);
		if (n > 0) {
			p->obuf.len += (size_t)n;
			total += (size_t)n;
			continue;
		}
		if (n == 0) {
			p->out_eof = true;
			p->eof_at = now_ms();
			if (p->out_watched)
				loom_loop_remove_fd(p->loop, p->out);
			p->out_watched = false;
			close(p->out);
			p->out = -1;
			break;
		}
		if (errno == EINTR)
			continue;
		break; /* EAGAIN */
	}
	if (total)
		p->last_activity = now_ms();
	return total ? (ssize_t)total : p->out_eof ? 0 : -1;
}

static int on_out(loom_loop_t *loop, void *arg)
{
	(void)loop;
	ext_proc_t *p = arg;
	read_out(p);
	deliver(p);
	return 0;
}

static void log_err_line(ext_proc_t *p, const char *s, size_t n)
{
	if (n && s[n - 1] == '\r')
		n--;
	if (n == 0)
		return;
	snprintf(p->last_err, sizeof p->last_err, "%.*s", (int)n, s);
	loom_buf_t t = LOOM_BUF_INIT;
	loom_buf_add_logval(&t, s, n);
	loom_info("program stderr agent=%s program=%s line=%s", p->agent, p->program, loom_buf_cstr(&t));
	loom_buf_release(&t);
}

static int on_err(loom_loop_t *loop, void *arg)
{
	(void)loop;
	ext_proc_t *p = arg;
	char chunk[4096];
	ssize_t n = read(p->err, chunk, sizeof chunk);
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (p->ebuf.len)
			log_err_line(p, p->ebuf.data, p->ebuf.len);
		loom_buf_reset(&p->ebuf);
		loom_loop_remove_fd(p->loop, p->err);
		p->err_watched = false;
		close(p->err);
		p->err = -1;
		return 0;
	}
	loom_buf_add(&p->ebuf, chunk, (size_t)n);
	char *s = p->ebuf.data;
	size_t left = p->ebuf.len;
	char *nl;
	while ((nl = memchr(s, '\n', left)) != NULL) {
		log_err_line(p, s, (size_t)(nl - s));
		left -= (size_t)(nl - s) + 1;
		s = nl + 1;
	}
	if (left > 4096) { /* a runaway line: log what we have */
		log_err_line(p, s, left);
		left = 0;
	}
	memmove(p->ebuf.data, s, left);
	p->ebuf.len = left;
	return 0;
}

static int on_timer(loom_loop_t *loop, void *arg)
{
	(void)loop;
	ext_proc_t *p = arg;
	if (p->gone || p->doomed)
		return 0;
	long long now = now_ms();
	if (p->waiting && !p->paused && !p->out_eof && now - p->last_activity > p->timeout_ms) {
		char why[160];
		snprintf(why, sizeof why, "sent nothing for %.1fs (ext.timeout): killed", (double)p->timeout_ms / 1000.0);
		fail(p, why);
		return 0;
	}
	if (!p->out_eof)
		return 0;
	if (p->pid > 0) {
		pid_t r = waitpid(p->pid, &p->status, WNOHANG);
		if (r == p->pid) {
			p->pid = 0;
		} else if (now - p->eof_at > 5000) {
			fail(p, "closed its output and did not exit within 5s: killed");
			return 0;
		}
	}
	/* Every line first; then the end. */
	if (p->pid == 0 && (p->opos == p->obuf.len || p->paused == false)) {
		deliver(p);
		if (p->doomed || p->gone || p->opos != p->obuf.len)
			return 0;
		char why[200];
		status_text(why, sizeof why, p->status);
		report_gone(p, WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0, why);
	}
	return 0;
}

int ext_proc_start(loom_loop_t *loop, const loom_agentcfg_t *cfg, const char *agent, const ext_proc_ops_t *ops,
    void *arg, ext_proc_t **ret, char **ret_error)
{
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
	if (pipe2(pin, O_CLOEXEC) < 0 || pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0) {
		*ret_error = loom_sprintf("cannot make pipes: %s", strerror(errno));
		goto fail_pipes;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
	posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
	posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
	if (cfg->ext.dir)
		posix_spawn_file_actions_addchdir_np(&fa, cfg->ext.dir);
	posix_spawnattr_t at;
	posix_spawnattr_init(&at);
	sigset_t none, defs;
	sigemptyset(&none);
	sigemptyset(&defs);
	sigaddset(&defs, SIGPIPE);
	sigaddset(&defs, SIGTERM);
	sigaddset(&defs, SIGINT);
	sigaddset(&defs, SIGHUP);
	sigaddset(&defs, SIGCHLD);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &defs);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
	/* argv: the command; environment: ours and LOOM_AGENT. */
	char **argv = loom_calloc(cfg->ext.command.n + 1, sizeof *argv);
	for (size_t i = 0; i < cfg->ext.command.n; i++)
		argv[i] = cfg->ext.command.v[i];
	size_t ne = 0;
	while (environ[ne])
		ne++;
	char **envp = loom_calloc(ne + 2, sizeof *envp);
	size_t k = 0;
	for (size_t i = 0; i < ne; i++)
		if (strncmp(environ[i], "LOOM_AGENT=", 11) != 0)
			envp[k++] = environ[i];
	char *agent_env = loom_sprintf("LOOM_AGENT=%s", agent);
	envp[k++] = agent_env;
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	free(argv);
	free(envp);
	free(agent_env);
	if (rc != 0) {
		*ret_error = loom_sprintf("cannot run '%s' (in '%s'): %s", cfg->ext.command.v[0],
		    cfg->ext.dir ? cfg->ext.dir : ".", strerror(rc));
		goto fail_pipes;
	}
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	ext_proc_t *p = loom_calloc(1, sizeof *p);
	p->loop = loop;
	p->ops = ops;
	p->arg = arg;
	p->agent = loom_strdup(agent);
	p->program = loom_strdup(cfg->ext.command.v[0]);
	p->pid = pid;
	p->in = pin[1];
	p->out = pout[0];
	p->err = perr[0];
	p->timeout_ms = cfg->ext.timeout_ms;
	p->max_line = (size_t)cfg->ext.max_line;
	p->last_activity = now_ms();
	fcntl(p->in, F_SETFL, fcntl(p->in, F_GETFL) | O_NONBLOCK);
	fcntl(p->out, F_SETFL, fcntl(p->out, F_GETFL) | O_NONBLOCK);
	fcntl(p->err, F_SETFL, fcntl(p->err, F_GETFL) | O_NONBLOCK);
	loom_loop_add_fd(loop, p->out, on_out, p);
	loom_loop_add_fd(loop, p->err, on_err, p);
	p->out_watched = p->err_watched = true;
	p->timer = loom_loop_add_timer(loop, 50, 0, on_timer, p);
	loom_info("program started agent=%s program=%s pid=%d", agent, p->program, (int)pid);
	*ret = p;
	return 0;
fail_pipes:
	for (int i = 0; i < 2; i++) {
		if (pin[i] >= 0)
			close(pin[i]);
		if (pout[i] >= 0)
			close(pout[i]);
		if (perr[i] >= 0)
			close(perr[i]);
	}
	return -1;
}

int ext_proc_send(ext_proc_t *p, const char *data, size_t len, char **ret_error)
{
	if (p->in < 0)
		return 0; /* it closed its input: its output and its end say the rest */
	size_t off = 0;
	long long last = now_ms();
	while (off < len) {
		ssize_t n = write(p->in, data + off, len - off);
		if (n > 0) {
			off += (size_t)n;
			last = now_ms();
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EPIPE) {
			/* The program stopped reading (or exited): what it wrote and
			 * how it ended tell the owner what happened, not this write. */
			close(p->in);
			p->in = -1;
			return 0;
		}
		if (n < 0 && errno != EAGAIN) {
			*ret_error = loom_sprintf("cannot write to '%s': %s", p->program, strerror(errno));
			return -1;
		}
		/* The pipe is full: wait for room, draining stdout meanwhile. */
		if (now_ms() - last > p->timeout_ms) {
			*ret_error = loom_sprintf("'%s' read nothing for %.1fs (ext.timeout)", p->program,
			    (double)p->timeout_ms / 1000.0);
			return -1;
		}
		struct pollfd fds[2] = { { p->in, POLLOUT, 0 }, { p->out, POLLIN, 0 } };
		int nf = p->out >= 0 ? 2 : 1;
		if (poll(fds, (nfds_t)nf, 100) < 0 && errno != EINTR) {
			*ret_error = loom_sprintf("poll: %s", strerror(errno));
			return -1;
		}
		if (nf == 2 && (fds[1].revents & (POLLIN | POLLHUP)))
			read_out(p);
	}
	return 0;
}

void ext_proc_close_input(ext_proc_t *p)
{
	if (p && p->in >= 0) {
		close(p->in);
		p->in = -1;
	}
}

void ext_proc_pause(ext_proc_t *p, bool paused)
{
	if (p == NULL || p->paused == paused)
		return;
	p->paused = paused;
	if (paused) {
		if (p->out_watched)
			loom_loop_remove_fd(p->loop, p->out);
		p->out_watched = false;
		return;
	}
	p->last_activity = now_ms();
	if (p->out >= 0 && !p->out_watched && !p->gone) {
		loom_loop_add_fd(p->loop, p->out, on_out, p);
		p->out_watched = true;
	}
	deliver(p);
}

void ext_proc_expect(ext_proc_t *p, bool waiting)
{
	if (p == NULL)
		return;
	if (waiting && !p->waiting)
		p->last_activity = now_ms();
	p->waiting = waiting;
}

const char *ext_proc_last_stderr(const ext_proc_t *p)
{
	return p ? p->last_err : "";
}

static void free_proc(ext_proc_t *p)
{
	unwatch(p);
	loom_loop_cancel_timer(p->loop, p->timer);
	if (p->in >= 0)
		close(p->in);
	if (p->out >= 0)
		close(p->out);
	if (p->err >= 0)
		close(p->err);
	kill_now(p);
	loom_buf_release(&p->obuf);
	loom_buf_release(&p->line);
	loom_buf_release(&p->ebuf);
	free(p->agent);
	free(p->program);
	free(p);
}

void ext_proc_destroy(ext_proc_t **p_p)
{
	ext_proc_t *p = *p_p;
	*p_p = NULL;
	if (p == NULL || p->doomed)
		return;
	if (p->busy > 0) {
		p->doomed = true;
		unwatch(p);
		kill_now(p);
		return;
	}
	free_proc(p);
}
