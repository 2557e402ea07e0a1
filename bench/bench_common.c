/* bench_common.c - helpers the benchmark programs share (see bench_common.h). */
#define _GNU_SOURCE /* nftw, sigabbrev_np */
#include "bench_common.h"

#include "loom_alloc.h"
#include "loom_buf.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Set by SIGINT/SIGTERM (or bench_interrupt): every loop stops. */
static atomic_bool interrupted;
/* The signal that set it, 0 for none. */
static atomic_int interrupt_signal;
/* The pid that sent it, 0 when unknown. */
static atomic_int interrupt_sender;

/* ---- clock ---- */

int64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bench_sleep_us(long us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !atomic_load(&interrupted))
		;
}

/* ---- formatting ---- */

void bench_result(const char *name, double loom, double peer, const char *peer_name, const char *unit,
    const char *goal)
{
	if (peer == peer)
		printf("RESULT %s loom=%.6g peer=%.6g peer_name=%s unit=%s goal=%s\n", name, loom, peer, peer_name, unit,
		    goal);
	else
		printf("RESULT %s loom=%.6g peer=- peer_name=- unit=%s goal=%s\n", name, loom, unit, goal);
	fflush(stdout);
}

const char *bench_fmt_count(char *buf, size_t len, double n)
{
	char digits[32];
	snprintf(digits, sizeof digits, "%.0f", n < 0 ? -n : n);
	size_t nd = strlen(digits), o = 0;
	if (n < 0 && o + 1 < len)
		buf[o++] = '-';
	for (size_t i = 0; i < nd && o + 2 < len; i++) {
		if (i > 0 && (nd - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

const char *bench_fmt_size(char *buf, size_t len, size_t n)
{
	if (n >= 1024 * 1024 && n % (1024 * 1024) == 0)
		snprintf(buf, len, "%zuMB", n / (1024 * 1024));
	else if (n >= 1024 && n % 1024 == 0)
		snprintf(buf, len, "%zuKB", n / 1024);
	else
		snprintf(buf, len, "%zuB", n);
	return buf;
}

const char *bench_fmt_bytes(char *buf, size_t len, double n)
{
	if (n >= 1024.0 * 1024 * 1024)
		snprintf(buf, len, "%.2f GiB", n / (1024.0 * 1024 * 1024));
	else if (n >= 1024.0 * 1024)
		snprintf(buf, len, "%.1f MiB", n / (1024.0 * 1024));
	else if (n >= 1024.0)
		snprintf(buf, len, "%.1f KiB", n / 1024.0);
	else
		snprintf(buf, len, "%.0f B", n);
	return buf;
}

/* ---- SIGINT and SIGTERM ---- */

static void on_signal(int sig, siginfo_t *info, void *ctx)
{
	(void)ctx;
	atomic_store(&interrupt_signal, sig);
	atomic_store(&interrupt_sender, info ? (int)info->si_pid : 0);
	atomic_store(&interrupted, true);
}

void bench_signals_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	/* sigaction fails only for a bad signal number or a bad pointer. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

bool bench_interrupted(void)
{
	return atomic_load(&interrupted);
}

void bench_interrupt(void)
{
	atomic_store(&interrupted, true);
}

char *bench_interrupted_text(void)
{
	int sig = atomic_load(&interrupt_signal), pid = atomic_load(&interrupt_sender);
	if (sig == 0)
		return loom_strdup("interrupted");
	char path[64], comm[64] = "";
	snprintf(path, sizeof path, "/proc/%d/comm", pid);
	FILE *f = pid > 0 ? fopen(path, "r") : NULL;
	if (f) {
		if (fgets(comm, sizeof comm, f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
	return loom_sprintf("interrupted by SIG%s from pid %d%s%s%s", sigabbrev_np(sig) ? sigabbrev_np(sig) : "?",
	    pid, comm[0] ? " (" : "", comm, comm[0] ? ")" : "");
}

/* ---- /proc ---- */

double bench_thread_cpu(pid_t pid, pid_t tid)
{
	char path[64], buf[1024];
	if (tid)
		snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	else
		snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
	unsigned long long ut, st;
	if (p == NULL || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

double bench_self_cpu(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	    (double)ru.ru_stime.tv_usec / 1e6;
}

size_t bench_list_tids(pid_t pid, pid_t *ret, size_t max)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	size_t n = 0;
	if (d == NULL)
		return 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < max)
		if (e->d_name[0] >= '1' && e->d_name[0] <= '9')
			ret[n++] = (pid_t)atoi(e->d_name);
	closedir(d);
	return n;
}

/* ---- files and paths ---- */

int bench_mkdtemp(const char *name, char **ret_dir, char **ret_error)
{
	const char *tmp = getenv("TMPDIR");
	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	char *tmpl = loom_sprintf("%s/%s-XXXXXX", tmp, name);
	if (mkdtemp(tmpl) == NULL) {
		*ret_error = loom_sprintf("cannot create a directory in '%s': %s", tmp, strerror(errno));
		free(tmpl);
		return -1;
	}
	*ret_dir = tmpl;
	return 0;
}

int bench_deploy_load(const char *path, loom_deploy_t *cfg, char **ret_error)
{
	loom_cfg_diags_t diags;
	int rc = loom_deploy_load(path, cfg, &diags);
	if (rc < 0) {
		*ret_error = loom_cfg_diags_join(&diags, "; ");
	}
	loom_cfg_diags_release(&diags);
	return rc < 0 ? -1 : 0;
}

/* The program named in bench_rm_tree's messages: nftw passes its callback
 * no context of its own. */
static const char *rm_prog;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) < 0)
		fprintf(stderr, "%s: cannot remove '%s': %s\n", rm_prog, path, strerror(errno));
	return 0;
}

void bench_rm_tree(const char *prog, const char *dir)
{
	rm_prog = prog;
	(void)nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	rm_prog = NULL;
}

char *bench_next_to_self(const char *rel)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return NULL;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash == NULL)
		return NULL;
	*slash = '\0';
	return loom_sprintf("%s/../%s", self, rel);
}

/* ---- flags ---- */

int bench_parse_num(const char *prog, const char *flag, const char *s, long long min, long long max,
    long long *ret)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "%s: bad --%s '%s': expected a whole number from %lld to %lld\n", prog, flag, s, min,
		    max);
		return -1;
	}
	*ret = v;
	return 0;
}
