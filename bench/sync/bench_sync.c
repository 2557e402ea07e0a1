/* bench_sync.c - loom-bench-sync: objects per second through a whole
 * HR CSV -> directory LDIF cycle, with the real processes.
 *
 * What runs, all on this host, in a temporary directory DIR:
 *
 *   DIR/loom.yaml            state_dir DIR/state, ipc:// sockets in DIR/state/run
 *   DIR/sync/people.yaml     a copy of config/sync/people.yaml (--rules)
 *   DIR/agents/hr.yaml       file agent, csv,  ../data/hr.csv
 *   DIR/agents/directory.yaml file agent, ldif, ../data/directory.ldif
 *   DIR/data/hr.csv          N synthetic, deterministic employees
 *
 *   loom-broker, loom-engine, loom-ma-file --agent hr, loom-ma-file --agent directory
 *   (their logs in DIR/NAME.log)
 *
 * Each process is started only once the one before it answers a loom.Ping
 * through the broker, so nothing waits a fixed time. Then four runs, one
 * after the other, each timed from the RunRequest this program sends to the
 * engine to the first status poll (every 10 ms) that says it ended:
 *
 *   hr full-import          the CSV into the hr connector space
 *   hr full-sync            join/project into the metaverse, provision the directory
 *   directory export        the agent writes DIR/data/directory.ldif
 *   directory full-import   reads it back and confirms every export
 *
 * It prints objects/s per step and end to end (N / the sum of the step
 * times), the CPU each process used during each step, the engine's peak RSS
 * (VmHWM) and each agent's, the engine store's size on disk, and a table
 * with PASS/MISS against the goals. A MISS is not a failure: the exit
 * status is 1 only when something broke (a process did not start or stop, a
 * run did not end in success, the LDIF or the connector space is wrong).
 */
#define _GNU_SOURCE /* nftw */
#include "bench_common.h"
#include "engine.pb-c.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_bus.h"
#include "loom_deploy.h"
#include "loom_envelope.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

extern char **environ;

#define PROG "loom-bench-sync"
/* The goals. */
#define TARGET_OBJECTS_PER_S 20000.0
#define TARGET_RSS_PER_M_CS 1.5e9 /* bytes of engine RSS per 10^6 connector-space objects */
#define POLL_MS 10                /* run status poll interval */
#define FIRST_ID 1000000ULL       /* employeeId of row i is FIRST_ID + i */

#ifndef LOOM_SOURCE_DIR
#define LOOM_SOURCE_DIR "."
#endif

typedef struct bench_opts {
	long long objects;             /* N: rows in hr.csv */
	char *broker;                  /* loom-broker binary */
	char *engine;                  /* loom-engine binary */
	char *mafile;                  /* loom-ma-file binary */
	char *rules;                   /* the sync rules copied into the deployment */
	char *log_level;               /* the processes' log level */
	long long start_ms;            /* how long a process may take to answer a ping */
	long long stall_ms;            /* a run whose object count does not move this long is stuck */
	long long stop_ms;             /* how long a process may take to exit on SIGTERM */
	bool keep;                     /* leave the temporary directory behind */
	long long group_members;       /* members of corp's group (the reference case), 0: no such case */
} bench_opts_t;

/* The processes, in start order (stopped in reverse). */
enum { P_BROKER, P_ENGINE, P_HR, P_DIR, P_CORP, NPROC };

typedef struct proc {
	const char *name;              /* "broker", "engine", "hr", "directory", "corp" */
	const char *service;           /* whom to ping for readiness */
	pid_t pid;                     /* 0 when not running */
	char *log;                     /* DIR/NAME.log */
	long hwm_kb;                   /* VmHWM at the end */
	long rss_kb;                   /* VmRSS at the end */
} proc_t;

typedef struct bench {
	bench_opts_t o;                /* the flags */
	char *dir;                     /* the temporary directory */
	char *config_path;             /* DIR/loom.yaml */
	char *csv_path;                /* DIR/data/hr.csv */
	char *ldif_path;               /* DIR/data/directory.ldif */
	char *store_path;              /* DIR/state/engine */
	loom_deploy_t cfg;             /* loom.yaml, loaded */
	bool cfg_loaded;
	proc_t p[NPROC];               /* the processes */
	void *zctx;                    /* this program's ZeroMQ context */
	loom_bus_t *bus;               /* "bench.sync": pings, runs, queries */
} bench_t;

/* CPU (seconds) and engine I/O (bytes) at one moment. */
typedef struct usage {
	double engine_main;            /* the engine's main thread (the event loop) */
	double engine_other;           /* its other threads (RocksDB flush and compaction) */
	double hr;                     /* the hr agent */
	double dir;                    /* the directory agent */
	double corp;                   /* the corp agent (groups) */
	double broker;                 /* the broker */
	double self;                   /* this program */
	double engine_wait;            /* the engine's main thread: runnable, waiting for a CPU */
	double hr_wait;                /* the same for each agent's main thread */
	double dir_wait;
	unsigned long long eng_read;   /* engine read_bytes (storage) */
	unsigned long long eng_write;  /* engine write_bytes (storage) */
	int64_t at_ns;                 /* when */
} usage_t;

/* One timed run. */
typedef struct step {
	const char *agent;             /* "hr" or "directory" */
	const char *profile;           /* "full-import", ... */
	long long count;               /* objects the rate counts (0: N) */
	bool done;                     /* it ran to success */
	uint64_t run_id;               /* the engine's run id */
	double seconds;                /* request sent -> end seen */
	double engine_seconds;         /* ended_at - started_at of the run record */
	uint64_t objects;              /* the record's object count */
	double rate;                   /* N / seconds */
	usage_t used;                  /* CPU and I/O during the step (differences) */
	long eng_rss_kb;               /* engine VmRSS after the step */
	long eng_hwm_kb;               /* engine VmHWM after the step */
	long status_timeouts;          /* status polls that timed out (the engine was busy) */
	long polls;                    /* status polls */
	double slowest_poll_ms;        /* the longest a status poll waited for its reply */
} step_t;

/* ---- /proc ---- */

/* A "Key:   123 kB" line of /proc/PID/status, in kB; -1 when absent. */
static long proc_status_kb(pid_t pid, const char *key)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	long v = -1;
	size_t kl = strlen(key);
	while (fgets(line, sizeof line, f))
		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			v = strtol(line + kl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* Seconds thread tid of pid spent runnable but waiting for a CPU (second
 * field of /proc/PID/task/TID/schedstat); 0 when it cannot be read. */
static double proc_runq_wait(pid_t pid, pid_t tid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task/%d/schedstat", (int)pid, (int)tid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	unsigned long long run, wait;
	int n = fscanf(f, "%llu %llu", &run, &wait);
	fclose(f);
	return n == 2 ? (double)wait / 1e9 : 0;
}

/* read_bytes and write_bytes of /proc/PID/io. */
static void proc_io(pid_t pid, unsigned long long *ret_read, unsigned long long *ret_write)
{
	char path[64], line[128];
	snprintf(path, sizeof path, "/proc/%d/io", (int)pid);
	*ret_read = *ret_write = 0;
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "read_bytes:", 11) == 0)
			*ret_read = strtoull(line + 11, NULL, 10);
		else if (strncmp(line, "write_bytes:", 12) == 0)
			*ret_write = strtoull(line + 12, NULL, 10);
	}
	fclose(f);
}

static void usage_take(const bench_t *b, usage_t *u)
{
	memset(u, 0, sizeof *u);
	pid_t eng = b->p[P_ENGINE].pid;
	/* The whole process's figure includes threads that have ended. */
	u->engine_main = bench_thread_cpu(eng, eng);
	u->engine_other = bench_thread_cpu(eng, 0) - u->engine_main;
	u->engine_wait = proc_runq_wait(eng, eng);
	u->hr = bench_thread_cpu(b->p[P_HR].pid, 0);
	u->dir = bench_thread_cpu(b->p[P_DIR].pid, 0);
	u->corp = bench_thread_cpu(b->p[P_CORP].pid, 0);
	u->hr_wait = proc_runq_wait(b->p[P_HR].pid, b->p[P_HR].pid);
	u->dir_wait = proc_runq_wait(b->p[P_DIR].pid, b->p[P_DIR].pid);
	u->broker = bench_thread_cpu(b->p[P_BROKER].pid, 0);
	u->self = bench_self_cpu();
	proc_io(eng, &u->eng_read, &u->eng_write);
	u->at_ns = bench_now_ns();
}

static void usage_diff(const usage_t *a, const usage_t *z, usage_t *ret)
{
	ret->engine_main = z->engine_main - a->engine_main;
	/* Per-thread and per-process ticks round apart: never below 0. */
	ret->engine_other = z->engine_other > a->engine_other ? z->engine_other - a->engine_other : 0;
	ret->hr = z->hr - a->hr;
	ret->dir = z->dir - a->dir;
	ret->corp = z->corp - a->corp;
	ret->broker = z->broker - a->broker;
	ret->self = z->self - a->self;
	ret->engine_wait = z->engine_wait - a->engine_wait;
	ret->hr_wait = z->hr_wait - a->hr_wait;
	ret->dir_wait = z->dir_wait - a->dir_wait;
	ret->eng_read = z->eng_read - a->eng_read;
	ret->eng_write = z->eng_write - a->eng_write;
	ret->at_ns = z->at_ns - a->at_ns;
}

/* ---- the store on disk ---- */

static unsigned long long du_sst, du_wal, du_other, du_alloc;

static int du_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)ftw;
	if (flag != FTW_F)
		return 0;
	size_t n = strlen(path);
	if (n > 4 && strcmp(path + n - 4, ".sst") == 0)
		du_sst += (unsigned long long)st->st_size;
	else if (n > 4 && strcmp(path + n - 4, ".log") == 0)
		du_wal += (unsigned long long)st->st_size;
	else
		du_other += (unsigned long long)st->st_size;
	du_alloc += (unsigned long long)st->st_blocks * 512ULL;
	return 0;
}

typedef struct disk {
	unsigned long long sst, wal, other, alloc;
} disk_t;

static void store_size(const char *path, disk_t *ret)
{
	du_sst = du_wal = du_other = du_alloc = 0;
	(void)nftw(path, du_entry, 16, FTW_PHYS);
	ret->sst = du_sst;
	ret->wal = du_wal;
	ret->other = du_other;
	ret->alloc = du_alloc;
}

static void print_store(const char *when, const disk_t *d)
{
	char t[32], s[32], w[32], o[32], a[32];
	printf("engine store %-28s %s (sst %s, wal %s, other %s; %s allocated)\n", when,
	    bench_fmt_bytes(t, sizeof t, (double)(d->sst + d->wal + d->other)),
	    bench_fmt_bytes(s, sizeof s, (double)d->sst), bench_fmt_bytes(w, sizeof w, (double)d->wal),
	    bench_fmt_bytes(o, sizeof o, (double)d->other), bench_fmt_bytes(a, sizeof a, (double)d->alloc));
}

/* ---- the deployment ---- */

static int write_file(const char *path, const char *text, char **ret_error)
{
	FILE *f = fopen(path, "w");
	if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0) {
		*ret_error = loom_sprintf("cannot write '%s': %s", path, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	return 0;
}

static int copy_file(const char *from, const char *to, char **ret_error)
{
	FILE *in = fopen(from, "r");
	if (in == NULL) {
		*ret_error = loom_sprintf("cannot read the sync rules '%s': %s (give --rules)", from, strerror(errno));
		return -1;
	}
	FILE *out = fopen(to, "w");
	if (out == NULL) {
		*ret_error = loom_sprintf("cannot create '%s': %s", to, strerror(errno));
		fclose(in);
		return -1;
	}
	char buf[8192];
	size_t n;
	bool bad = false;
	while ((n = fread(buf, 1, sizeof buf, in)) > 0)
		bad |= fwrite(buf, 1, n, out) != n;
	bad |= ferror(in) != 0;
	fclose(in);
	if (fclose(out) != 0 || bad) {
		*ret_error = loom_sprintf("cannot copy '%s' to '%s'", from, to);
		return -1;
	}
	return 0;
}

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Writes the HR export: n employees, the same every time. Names come from
 * small pools (a few with non-ASCII letters, which the LDIF must base64);
 * the surname carries the employee number so every uid, and so every DN,
 * is unique. One title holds a comma (a quoted CSV field). Every tenth
 * person is a contractor; nobody is "test" (the rules would filter them).
 * Managers form a tree with eight reports each. */
static int write_hr_csv(const char *path, long long n, char **ret_error)
{
	static const char *const given[] = {
		"James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
		"William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
		"Zoë", "Renée", "Jürgen", "Björn", "Chloé", "Ingrid", "Mateo", "Aisha", "Wei", "Priya", "Olga", "Kenji",
	};
	static const char *const surname[] = {
		"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
		"Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
		"Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
		"Walker", "Young",
	};
	static const char *const title[] = {
		"Engineer", "Senior Engineer", "Staff Engineer", "Analyst", "Accountant", "Sales Representative",
		"Account Manager", "Designer", "Recruiter", "Support Specialist", "Team Lead", "\"Director, Operations\"",
	};
	static const char *const dept[] = {
		"Engineering", "Finance", "Sales", "Marketing", "Human Resources", "Legal", "Operations", "Support",
		"Research", "Facilities", "Procurement", "Security", "Product", "Design", "Quality", "Logistics",
	};
#define NELEM(a) (sizeof(a) / sizeof *(a))
	FILE *f = fopen(path, "w");
	if (f == NULL) {
		*ret_error = loom_sprintf("cannot create '%s': %s", path, strerror(errno));
		return -1;
	}
	static char iobuf[1 << 20];
	setvbuf(f, iobuf, _IOFBF, sizeof iobuf);
	fputs("employeeId,givenName,sn,title,department,employeeType,manager\n", f);
	for (long long i = 1; i <= n; i++) {
		uint64_t h = splitmix64((uint64_t)i);
		unsigned long long id = FIRST_ID + (unsigned long long)i;
		fprintf(f, "%llu,%s,%s-%llu,%s,%s,%s,", id, given[h % NELEM(given)], surname[(h >> 8) % NELEM(surname)],
		    id, title[(h >> 16) % NELEM(title)], dept[(h >> 24) % NELEM(dept)],
		    i % 10 == 0 ? "contractor" : "employee");
		if (i > 1)
			fprintf(f, "%llu", FIRST_ID + (unsigned long long)((i - 2) / 8 + 1));
		fputc('\n', f);
	}
#undef NELEM
	if (ferror(f) | (fclose(f) != 0)) {
		*ret_error = loom_sprintf("cannot write '%s': %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int setup_dir(bench_t *b, char **ret_error)
{
	if (bench_mkdtemp("loom-bench-sync", &b->dir, ret_error) < 0)
		return -1;
	b->config_path = loom_sprintf("%s/loom.yaml", b->dir);
	b->csv_path = loom_sprintf("%s/data/hr.csv", b->dir);
	b->ldif_path = loom_sprintf("%s/data/directory.ldif", b->dir);
	b->store_path = loom_sprintf("%s/state/engine", b->dir);
	const char *sub[] = { "agents", "sync", "data", "state", "keys", "data/corp-changes" };
	for (size_t i = 0; i < sizeof sub / sizeof *sub; i++) {
		char *p = loom_sprintf("%s/%s", b->dir, sub[i]);
		int rc = mkdir(p, 0755);
		free(p);
		if (rc < 0) {
			*ret_error = loom_sprintf("cannot create %s/%s: %s", b->dir, sub[i], strerror(errno));
			return -1;
		}
	}
	/* A generous liveness: a long synchronous step in a daemon must not
	 * read as a dead peer. */
	char *yaml = loom_sprintf("# written by " PROG "\n"
				  "state_dir: %s/state\n"
				  "log: { level: %s }\n"
				  "bus: { heartbeat: 1s, liveness: 10, request_timeout: 60s, curve: false, keys_dir: %s/keys }\n",
	    b->dir, b->o.log_level, b->dir);
	int rc = write_file(b->config_path, yaml, ret_error);
	free(yaml);
	if (rc < 0)
		return -1;
	char *p = loom_sprintf("%s/agents/hr.yaml", b->dir);
	rc = write_file(p, "type: file\n"
			   "object_type: person\n"
			   "anchor: employeeId\n"
			   "file: { format: csv, path: ../data/hr.csv }\n", ret_error);
	free(p);
	if (rc < 0)
		return -1;
	/* No object_type: an entry's type is its last objectClass (people
	 * inetOrgPerson, the group groupOfNames). */
	p = loom_sprintf("%s/agents/directory.yaml", b->dir);
	rc = write_file(p, "type: file\n"
			   "anchor: dn\n"
			   "references: [member, manager]\n"
			   "file: { format: ldif, path: ../data/directory.ldif }\n", ret_error);
	free(p);
	if (rc < 0)
		return -1;
	p = loom_sprintf("%s/agents/corp.yaml", b->dir);
	rc = write_file(p, "type: file\n"
			   "anchor: dn\n"
			   "references: [member]\n"
			   "timeout: 300s\n"
			   "file: { format: ldif, path: ../data/corp.ldif, delta_dir: ../data/corp-changes }\n", ret_error);
	free(p);
	if (rc < 0)
		return -1;
	p = loom_sprintf("%s/sync/groups.yaml", b->dir);
	rc = write_file(p, "# written by " PROG ": the reference case\n"
			   "rules:\n"
			   "  - name: corp-people-in\n"
			   "    direction: inbound\n"
			   "    agent: corp\n"
			   "    cs_type: person\n"
			   "    mv_type: person\n"
			   "    join: [ { match: [ { cs: employeeNumber, mv: employeeId } ] } ]\n"
			   "    precedence: 50\n"
			   "    flows: []\n"
			   "  - name: corp-groups-in\n"
			   "    direction: inbound\n"
			   "    agent: corp\n"
			   "    cs_type: groupOfNames\n"
			   "    mv_type: group\n"
			   "    project: true\n"
			   "    join: [ { match: [ { cs: cn, mv: cn } ] } ]\n"
			   "    flows:\n"
			   "      - { mv: cn, expr: cn }\n"
			   "      - { mv: member, expr: member }\n"
			   "  - name: groups-out\n"
			   "    direction: outbound\n"
			   "    agent: directory\n"
			   "    cs_type: groupOfNames\n"
			   "    mv_type: group\n"
			   "    link_type: provision\n"
			   "    dn: '\"cn=\" + EscapeDNComponent(cn) + \",ou=groups,dc=example,dc=com\"'\n"
			   "    flows:\n"
			   "      - { cs: objectClass, expr: '\"groupOfNames\"', initial: true }\n"
			   "      - { cs: cn, expr: cn, initial: true }\n"
			   "      - { cs: member, expr: member }\n", ret_error);
	free(p);
	if (rc < 0)
		return -1;
	p = loom_sprintf("%s/sync/people.yaml", b->dir);
	rc = copy_file(b->o.rules, p, ret_error);
	free(p);
	if (rc < 0)
		return -1;
	rc = bench_deploy_load(b->config_path, &b->cfg, ret_error);
	b->cfg_loaded = true; /* released even after a failed load */
	return rc;
}

/* ---- the processes ---- */

/* The last lines of a process's log, to stderr. */
static void show_log_tail(const proc_t *p, int lines)
{
	FILE *f = fopen(p->log, "r");
	if (f == NULL)
		return;
	char **ring = loom_calloc((size_t)lines, sizeof *ring);
	char line[2048];
	int n = 0;
	while (fgets(line, sizeof line, f)) {
		free(ring[n % lines]);
		ring[n % lines] = loom_strdup(line);
		n++;
	}
	fclose(f);
	fprintf(stderr, "---- %s (last %d lines)\n", p->log, n < lines ? n : lines);
	for (int i = n < lines ? 0 : n - lines; i < n; i++)
		fputs(ring[i % lines], stderr);
	for (int i = 0; i < lines; i++)
		free(ring[i]);
	free(ring);
}

/* Whether p exited (reaped here); *ret_error then says how. */
static bool proc_gone(proc_t *p, char **ret_error)
{
	int status;
	if (p->pid == 0 || waitpid(p->pid, &status, WNOHANG) != p->pid)
		return false;
	p->pid = 0;
	*ret_error = WIFEXITED(status) ? loom_sprintf("%s exited with status %d (log: %s)", p->name,
					     WEXITSTATUS(status), p->log)
				       : loom_sprintf("%s was killed by signal %d (log: %s)", p->name,
					     WTERMSIG(status), p->log);
	return true;
}

/* Starts argv as p, stdout and stderr to its log, and waits until its
 * service answers a loom.Ping. Returns 0, or -1 with *ret_error. */
static int proc_start(bench_t *b, proc_t *p, char *const argv[], char **ret_error)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, p->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	int rc = posix_spawn(&p->pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		p->pid = 0;
		*ret_error = loom_sprintf("cannot start '%s': %s", argv[0], strerror(rc));
		return -1;
	}
	if (b->bus == NULL) {
		b->zctx = zmq_ctx_new();
		loom_bus_opts_t opts = {
			.service = "bench.sync",
			.process = PROG,
			.router = b->cfg.bus.router,
			.heartbeat_ms = b->cfg.bus.heartbeat_ms,
			.liveness = (unsigned)b->cfg.bus.liveness,
		};
		if (b->zctx == NULL || loom_bus_new(b->zctx, &opts, &b->bus, ret_error) < 0)
			return -1;
	}
	int64_t t0 = bench_now_ns(), deadline = t0 + b->o.start_ms * 1000000;
	Loom__Ping ping = LOOM__PING__INIT;
	for (;;) {
		if (proc_gone(p, ret_error)) {
			show_log_tail(p, 20);
			return -1;
		}
		int64_t before = bench_now_ns();
		Loom__Envelope *reply = NULL;
		const char *err;
		if (loom_bus_request(b->bus, p->service, &ping.base, 200, &reply, &err) == 0) {
			loom_envelope_free(&reply);
			printf("  %-10s pid %-8d ready in %.2f s\n", p->name, (int)p->pid,
			    (double)(bench_now_ns() - t0) / 1e9);
			return 0;
		}
		if (bench_interrupted()) {
			*ret_error = bench_interrupted_text();
			return -1;
		}
		if (bench_now_ns() > deadline) {
			*ret_error = loom_sprintf("%s did not answer a ping within %lld ms: %s (log: %s)", p->name,
			    b->o.start_ms, err, p->log);
			return -1;
		}
		/* "no such service" comes back at once: poll, do not spin. */
		if (bench_now_ns() - before < 20000000)
			bench_sleep_us(20000);
	}
}

/* SIGTERMs p and waits for it (SIGKILL after --stop-timeout). Returns 0
 * when it exited with status 0. */
static int proc_stop(const bench_t *b, proc_t *p)
{
	if (p->pid == 0)
		return 0;
	kill(p->pid, SIGTERM);
	int status = 0;
	int64_t t0 = bench_now_ns(), deadline = t0 + b->o.stop_ms * 1000000;
	pid_t r;
	while ((r = waitpid(p->pid, &status, WNOHANG)) == 0 && bench_now_ns() < deadline)
		bench_sleep_us(5000);
	if (r == 0) {
		fprintf(stderr, PROG ": %s (pid %d) did not stop within %lld ms of SIGTERM: killing it\n", p->name,
		    (int)p->pid, b->o.stop_ms);
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &status, 0);
		p->pid = 0;
		return -1;
	}
	p->pid = 0;
	if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, PROG ": %s did not exit cleanly (status 0x%x; log: %s)\n", p->name, (unsigned)status,
		    p->log);
		return -1;
	}
	printf("  %-10s stopped in %.2f s\n", p->name, (double)(bench_now_ns() - t0) / 1e9);
	return 0;
}

/* Reads and frees whatever the client was sent (heartbeats, stray replies)
 * while waiting ms, so it stays registered. */
static void bus_idle(bench_t *b, long ms)
{
	zmq_pollitem_t it = { .socket = loom_bus_socket(b->bus), .events = ZMQ_POLLIN };
	(void)zmq_poll(&it, 1, ms);
	Loom__Envelope *env = NULL;
	const char *err;
	int rc;
	while ((rc = loom_bus_recv(b->bus, &env, &err)) != 0)
		if (rc == 1)
			loom_envelope_free(&env);
	loom_bus_tick(b->bus);
}

/* ---- runs ---- */

/* Asks the engine for run id's record. Returns it, or NULL with *ret_err
 * (owned by the bus) and *ret_timeout when it was only a timeout. */
static Loom__RunRecord *run_status(bench_t *b, uint64_t id, bool details, long long timeout_ms,
    const char **ret_err, bool *ret_timeout)
{
	Loom__RunStatusRequest rq = LOOM__RUN_STATUS_REQUEST__INIT;
	rq.run_id = id;
	rq.details = details;
	Loom__Envelope *env = NULL;
	*ret_timeout = false;
	if (loom_bus_request(b->bus, "engine", &rq.base, timeout_ms, &env, ret_err) < 0) {
		/* loom_bus_request: "no reply from 'engine' within N ms". */
		*ret_timeout = strncmp(*ret_err, "no reply", 8) == 0;
		return NULL;
	}
	Loom__RunRecord *r = (Loom__RunRecord *)loom_envelope_body(env, &loom__run_record__descriptor, ret_err);
	loom_envelope_free(&env);
	return r;
}

static void print_counters(const Loom__RunRecord *r)
{
	printf("    counters:");
	for (size_t i = 0; i < r->n_counters; i++)
		printf(" %s=%llu", r->counters[i]->name, (unsigned long long)r->counters[i]->count);
	printf("%s\n", r->n_counters ? "" : " none");
}

/* Runs PROFILE of AGENT to its end and fills s. Returns 0, or -1 with
 * *ret_error when the run could not start, got stuck, or did not end in
 * success. */
static int run_step(bench_t *b, step_t *s, char **ret_error)
{
	usage_t u0, u1;
	usage_take(b, &u0);
	int64_t t0 = bench_now_ns();
	Loom__RunRequest rq = LOOM__RUN_REQUEST__INIT;
	rq.agent = (char *)s->agent;
	rq.profile = (char *)s->profile;
	Loom__Envelope *env = NULL;
	const char *err;
	if (loom_bus_request(b->bus, "engine", &rq.base, 60000, &env, &err) < 0) {
		*ret_error = loom_sprintf("the engine refused the run: %s", err);
		return -1;
	}
	Loom__RunReply *rep = (Loom__RunReply *)loom_envelope_body(env, &loom__run_reply__descriptor, &err);
	loom_envelope_free(&env);
	if (rep == NULL) {
		*ret_error = loom_sprintf("the engine's reply to the run: %s", err);
		return -1;
	}
	s->run_id = rep->run_id;
	loom__run_reply__free_unpacked(rep, NULL);
	/* Poll until it ends; stuck when its object count stands still too long. */
	uint64_t last_objects = 0;
	int64_t last_progress = bench_now_ns();
	Loom__RunRecord *r = NULL;
	for (;;) {
		if (bench_interrupted()) {
			*ret_error = bench_interrupted_text();
			return -1;
		}
		for (int i = 0; i < NPROC; i++)
			if (proc_gone(&b->p[i], ret_error)) {
				show_log_tail(&b->p[i], 20);
				return -1;
			}
		bool timeout;
		int64_t asked = bench_now_ns();
		r = run_status(b, s->run_id, false, 5000, &err, &timeout);
		int64_t now = bench_now_ns();
		s->polls++;
		if ((double)(now - asked) / 1e6 > s->slowest_poll_ms)
			s->slowest_poll_ms = (double)(now - asked) / 1e6;
		if (r == NULL) {
			if (!timeout) {
				*ret_error = loom_sprintf("run %llu: status: %s", (unsigned long long)s->run_id, err);
				return -1;
			}
			s->status_timeouts++;
		} else if (strcmp(r->status, "in-progress") != 0) {
			break;
		} else if (r->objects != last_objects) {
			last_objects = r->objects;
			last_progress = now;
		}
		if (r)
			loom__run_record__free_unpacked(r, NULL);
		r = NULL;
		if (now - last_progress > b->o.stall_ms * 1000000) {
			*ret_error = loom_sprintf("run %llu made no progress for %lld ms (%llu objects)",
			    (unsigned long long)s->run_id, b->o.stall_ms, (unsigned long long)last_objects);
			return -1;
		}
		bus_idle(b, POLL_MS);
	}
	int64_t t1 = bench_now_ns();
	loom__run_record__free_unpacked(r, NULL);
	usage_take(b, &u1);
	usage_diff(&u0, &u1, &s->used);
	s->eng_rss_kb = proc_status_kb(b->p[P_ENGINE].pid, "VmRSS");
	s->eng_hwm_kb = proc_status_kb(b->p[P_ENGINE].pid, "VmHWM");
	s->seconds = (double)(t1 - t0) / 1e9;
	long long count = s->count ? s->count : b->o.objects;
	s->rate = (double)count / s->seconds;
	/* The final record, with counters and the first errors. */
	bool timeout;
	r = run_status(b, s->run_id, true, 60000, &err, &timeout);
	if (r == NULL) {
		*ret_error = loom_sprintf("run %llu: final record: %s", (unsigned long long)s->run_id, err);
		return -1;
	}
	s->objects = r->objects;
	s->engine_seconds = r->ended_at > r->started_at ? (double)(r->ended_at - r->started_at) / 1e6 : 0;
	char c1[32], c2[32], c3[32], m1[32], m2[32], w[32];
	char label[64];
	snprintf(label, sizeof label, "%s %s", s->agent, s->profile);
	printf("%-22s %10s objects/s  %s objects in %.3f s (engine's record: %.3f s, %s objects, run %llu %s)\n", label,
	    bench_fmt_count(c1, sizeof c1, s->rate), bench_fmt_count(c2, sizeof c2, (double)count), s->seconds,
	    s->engine_seconds, bench_fmt_count(c3, sizeof c3, (double)s->objects), (unsigned long long)s->run_id,
	    r->status);
	print_counters(r);
	const usage_t *u = &s->used;
	double wall = (double)u->at_ns / 1e9;
	double agent_cpu = strcmp(s->agent, "hr") == 0 ? u->hr : strcmp(s->agent, "corp") == 0 ? u->corp : u->dir;
	double other_agent = u->hr + u->dir + u->corp - agent_cpu;
	printf("    cpu: engine main thread %.2f s (%.0f%% of the step), engine other threads %.2f s, agent %s %.2f s, "
	       "broker %.2f s, other agents %.2f s, bench %.2f s; all busy %.0f%% of one core\n",
	    u->engine_main, 100.0 * u->engine_main / wall, u->engine_other, s->agent, agent_cpu, u->broker,
	    other_agent, u->self,
	    100.0 * (u->engine_main + u->engine_other + u->hr + u->dir + u->corp + u->broker + u->self) / wall);
	/* Where the engine's main thread spent the step: on a CPU, runnable
	 * but waiting for one (other work on the host), or idle (waiting for
	 * the agent's messages or for I/O). The same split for the agent. */
	double agent_wait = strcmp(s->agent, "hr") == 0 ? u->hr_wait : u->dir_wait;
	double eng_idle = wall - u->engine_main - u->engine_wait;
	double agent_idle = wall - agent_cpu - agent_wait;
	printf("    engine main thread: on cpu %.0f%%, waiting for a cpu %.0f%%, idle %.0f%%; "
	       "agent %s: on cpu %.0f%%, waiting for a cpu %.0f%%, idle %.0f%%\n",
	    100.0 * u->engine_main / wall, 100.0 * u->engine_wait / wall, eng_idle > 0 ? 100.0 * eng_idle / wall : 0.0,
	    s->agent, 100.0 * agent_cpu / wall, 100.0 * agent_wait / wall,
	    agent_idle > 0 ? 100.0 * agent_idle / wall : 0.0);
	printf("    engine: rss %s (peak so far %s); storage read %s, written %s\n",
	    bench_fmt_bytes(m1, sizeof m1, (double)s->eng_rss_kb * 1024),
	    bench_fmt_bytes(m2, sizeof m2, (double)s->eng_hwm_kb * 1024),
	    bench_fmt_bytes(w, sizeof w, (double)u->eng_read), bench_fmt_bytes(c1, sizeof c1, (double)u->eng_write));
	/* The engine answers between batches and slices: a slow reply means
	 * its loop was busy with one thing that long. */
	printf("    status polls: %ld, slowest reply %.0f ms", s->polls, s->slowest_poll_ms);
	if (s->status_timeouts)
		printf(", %ld without a reply within 5 s", s->status_timeouts);
	printf("\n");
	fflush(stdout);
	int rc = 0;
	if (strcmp(r->status, "success") != 0) {
		loom_buf_t t = LOOM_BUF_INIT;
		loom_buf_printf(&t, "run %llu (%s %s) ended %s", (unsigned long long)s->run_id, s->agent, s->profile,
		    r->status);
		if (r->message[0])
			loom_buf_printf(&t, ": %s", r->message);
		for (size_t i = 0; i < r->n_errors && i < 5; i++)
			loom_buf_printf(&t, "\n    %s anchor=%s: %s", r->errors[i]->code, r->errors[i]->anchor,
			    r->errors[i]->message);
		if (r->error_count)
			loom_buf_printf(&t, "\n    (%llu errors in all)", (unsigned long long)r->error_count);
		*ret_error = loom_buf_steal(&t);
		rc = -1;
	} else {
		s->done = true;
	}
	loom__run_record__free_unpacked(r, NULL);
	return rc;
}

/* How many objects of agent are in state (at most 1 asked): 0, 1, or -1
 * with *ret_error. */
static int cs_any(bench_t *b, const char *agent, const char *state, char **ret_error)
{
	Loom__CsSearchRequest rq = LOOM__CS_SEARCH_REQUEST__INIT;
	rq.agent = (char *)agent;
	rq.state = (char *)state;
	rq.limit = 1;
	Loom__Envelope *env = NULL;
	const char *err;
	/* A state other than pending-export scans the connector space. */
	if (loom_bus_request(b->bus, "engine", &rq.base, 600000, &env, &err) < 0) {
		*ret_error = loom_sprintf("cs search %s --state %s: %s", agent, state, err);
		return -1;
	}
	Loom__CsSearchReply *r = (Loom__CsSearchReply *)loom_envelope_body(env, &loom__cs_search_reply__descriptor, &err);
	loom_envelope_free(&env);
	if (r == NULL) {
		*ret_error = loom_sprintf("cs search %s --state %s: %s", agent, state, err);
		return -1;
	}
	int n = r->n_objects > 0;
	if (n)
		printf("  e.g. %s anchor=%s dn=%s\n", state, r->objects[0]->anchor, r->objects[0]->dn);
	loom__cs_search_reply__free_unpacked(r, NULL);
	return n;
}

/* Counts the entries ("dn:" or "dn::" lines) of the LDIF the export wrote. */
static long long ldif_entries(const char *path, char **ret_error)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		*ret_error = loom_sprintf("cannot read the exported '%s': %s", path, strerror(errno));
		return -1;
	}
	char *line = NULL;
	size_t cap = 0;
	long long n = 0;
	while (getline(&line, &cap, f) > 0)
		n += strncmp(line, "dn:", 3) == 0;
	free(line);
	fclose(f);
	return n;
}

static const char *label_of(const step_t *s)
{
	static char label[64];
	snprintf(label, sizeof label, "%s %s", s->agent, s->profile);
	return label;
}

/* corp.ldif: the n employees by DN (uid=pID,ou=people,o=corp, employeeNumber
 * ID, which joins them to HR's people) and one group whose members are the
 * first m of them. */
static int write_corp_ldif(const char *path, long long n, long long m, char **ret_error)
{
	FILE *f = fopen(path, "w");
	if (f == NULL) {
		*ret_error = loom_sprintf("cannot create '%s': %s", path, strerror(errno));
		return -1;
	}
	static char iobuf[1 << 20];
	setvbuf(f, iobuf, _IOFBF, sizeof iobuf);
	for (long long i = 1; i <= n; i++) {
		unsigned long long id = FIRST_ID + (unsigned long long)i;
		fprintf(f, "dn: uid=p%llu,ou=people,o=corp\nobjectClass: person\nuid: p%llu\nemployeeNumber: %llu\n\n", id, id,
		    id);
	}
	fputs("dn: cn=bench-group,ou=groups,o=corp\nobjectClass: groupOfNames\ncn: bench-group\n", f);
	for (long long i = 1; i <= m; i++)
		fprintf(f, "member: uid=p%llu,ou=people,o=corp\n", FIRST_ID + (unsigned long long)i);
	fputc('\n', f);
	if (ferror(f) | (fclose(f) != 0)) {
		*ret_error = loom_sprintf("cannot write '%s': %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* The member lines of the directory's bench group, or -1 with *ret_error. */
static long long group_members_in(const char *path, char **ret_error)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		*ret_error = loom_sprintf("cannot read '%s': %s", path, strerror(errno));
		return -1;
	}
	char *line = NULL;
	size_t cap = 0;
	long long n = -1;
	bool in = false;
	while (getline(&line, &cap, f) > 0) {
		if (strncmp(line, "dn:", 3) == 0) {
			in = strcasecmp(line, "dn: cn=bench-group,ou=groups,dc=example,dc=com\n") == 0;
			if (in)
				n = 0;
		} else if (in && strncasecmp(line, "member:", 7) == 0) {
			n++;
		}
	}
	free(line);
	fclose(f);
	if (n < 0)
		*ret_error = loom_sprintf("'%s' holds no cn=bench-group,ou=groups,dc=example,dc=com", path);
	return n;
}

/* The reference case: a group of m members in corp is provisioned to the
 * directory with its members' directory DNs; then one member joins it in
 * corp (an LDIF change file) and the delta import, delta sync and export
 * that carry that one change are timed. */
static int group_case(bench_t *b, char **ret_error)
{
	long long n = b->o.objects, m = b->o.group_members;
	char c1[32], c2[32], m1[32];
	if (m > n - 1)
		m = n - 1;
	printf("\nreference case: corp (LDIF) holds the %s employees and a group of %s of them, provisioned to the\n"
	       "directory with member = their directory DNs; then one more member joins the group in corp\n\n",
	    bench_fmt_count(c1, sizeof c1, (double)n), bench_fmt_count(c2, sizeof c2, (double)m));
	char *corp = loom_sprintf("%s/data/corp.ldif", b->dir);
	int rc = write_corp_ldif(corp, n, m, ret_error);
	free(corp);
	if (rc < 0)
		return -1;
	step_t setup[] = {
		{ .agent = "corp", .profile = "full-import", .count = n + 1 },
		{ .agent = "corp", .profile = "full-sync", .count = n + 1 },
		{ .agent = "directory", .profile = "export", .count = 1 },
		{ .agent = "directory", .profile = "full-import", .count = n + 1 },
	};
	for (size_t i = 0; i < sizeof setup / sizeof *setup; i++)
		if (run_step(b, &setup[i], ret_error) < 0)
			return -1;
	long long have = group_members_in(b->ldif_path, ret_error);
	if (have < 0)
		return -1;
	if (have != m) {
		*ret_error = loom_sprintf("the directory's group has %lld members, not %lld", have, m);
		return -1;
	}
	printf("    directory group: %s members (checked outside the timing)\n\n", bench_fmt_count(c1, sizeof c1, (double)have));
	char *chg = loom_sprintf("%s/data/corp-changes/0001.ldif", b->dir);
	char *text = loom_sprintf("dn: cn=bench-group,ou=groups,o=corp\nchangetype: modify\nadd: member\n"
				  "member: uid=p%llu,ou=people,o=corp\n-\n\n", FIRST_ID + (unsigned long long)m + 1);
	rc = write_file(chg, text, ret_error);
	free(chg);
	free(text);
	if (rc < 0)
		return -1;
	step_t delta[] = {
		{ .agent = "corp", .profile = "delta-import", .count = 1 },
		{ .agent = "corp", .profile = "delta-sync", .count = 1 },
		{ .agent = "directory", .profile = "export", .count = 1 },
	};
	for (size_t i = 0; i < sizeof delta / sizeof *delta; i++)
		if (run_step(b, &delta[i], ret_error) < 0)
			return -1;
	have = group_members_in(b->ldif_path, ret_error);
	if (have < 0)
		return -1;
	if (have != m + 1) {
		*ret_error = loom_sprintf("after one member joined, the directory's group has %lld members, not %lld", have,
		    m + 1);
		return -1;
	}
	printf("\none member joining a group of %s members:\n", bench_fmt_count(c1, sizeof c1, (double)m));
	for (size_t i = 0; i < sizeof delta / sizeof *delta; i++)
		printf("  %-20s %8.3f s  (engine main thread %.3f s, engine storage written %s)\n",
		    label_of(&delta[i]), delta[i].seconds, delta[i].used.engine_main,
		    bench_fmt_bytes(m1, sizeof m1, (double)delta[i].used.eng_write));
	printf("  for scale: the group's first sync (corp full-sync, %s objects) took %.3f s\n",
	    bench_fmt_count(c1, sizeof c1, (double)(n + 1)), setup[1].seconds);
	printf("  directory group: %s members after the export (checked outside the timing)\n",
	    bench_fmt_count(c1, sizeof c1, (double)have));
	/* the one change's three runs beside the group's first sync */
	double one = 0;
	for (size_t i = 0; i < sizeof delta / sizeof *delta; i++)
		one += delta[i].seconds;
	char rn[64];
	snprintf(rn, sizeof rn, "sync.group%lld.one_member", m);
	bench_result(rn, one, setup[1].seconds, "first-group-sync", "s", "-");
	return 0;
}

/* ---- the summary ---- */

static void print_table(const bench_t *b, const step_t *steps, size_t nsteps, const disk_t *disk)
{
	char c1[32], c2[32], m1[32];
	double total = 0, eng_main = 0;
	bool all = true;
	printf("\n%-24s %12s %10s %14s %12s\n", "step", "objects/s", "seconds", "engine main", "engine rss");
	for (size_t i = 0; i < nsteps; i++) {
		const step_t *s = &steps[i];
		char label[64];
		snprintf(label, sizeof label, "%s %s", s->agent, s->profile);
		if (!s->done) {
			printf("%-24s %12s\n", label, "(not run)");
			all = false;
			continue;
		}
		total += s->seconds;
		eng_main += s->used.engine_main;
		printf("%-24s %12s %10.3f %11.0f%%  %12s\n", label, bench_fmt_count(c1, sizeof c1, s->rate), s->seconds,
		    100.0 * s->used.engine_main / s->seconds,
		    bench_fmt_bytes(m1, sizeof m1, (double)s->eng_rss_kb * 1024));
	}
	if (!all || total <= 0)
		return;
	double e2e = (double)b->o.objects / total;
	printf("%-24s %12s %10.3f %11.0f%%\n", "end to end", bench_fmt_count(c1, sizeof c1, e2e), total,
	    100.0 * eng_main / total);
	printf("(objects/s = %s objects / seconds; end to end = %s / the sum of the four steps;\n"
	       " engine main = the engine's main thread's CPU as a share of the step's time)\n",
	    bench_fmt_count(c1, sizeof c1, (double)b->o.objects), bench_fmt_count(c2, sizeof c2, (double)b->o.objects));

	double cs_objects = 2.0 * (double)b->o.objects;
	double hwm = (double)b->p[P_ENGINE].hwm_kb * 1024;
	double per_m = hwm / (cs_objects / 1e6);
	printf("\n%-48s %16s  %-6s %s\n", "goal", "measured", "", "target");
	printf("%-48s %16s  %-6s >= %s objects/s\n", "end-to-end objects/s", bench_fmt_count(c1, sizeof c1, e2e),
	    e2e >= TARGET_OBJECTS_PER_S ? "PASS" : "MISS", bench_fmt_count(c2, sizeof c2, TARGET_OBJECTS_PER_S));
	char what[96];
	snprintf(what, sizeof what, "engine peak RSS per 1M cs objects (%s cs)",
	    bench_fmt_count(c2, sizeof c2, cs_objects));
	printf("%-48s %13.3f GB  %-6s <= %.1f GB\n", what, per_m / 1e9, per_m <= TARGET_RSS_PER_M_CS ? "PASS" : "MISS",
	    TARGET_RSS_PER_M_CS / 1e9);
	char rn[64];
	snprintf(rn, sizeof rn, "sync.%lld.end_to_end", (long long)b->o.objects);
	bench_result(rn, e2e, NAN, "-", "objects/s", ">=20000");
	snprintf(rn, sizeof rn, "sync.%lld.rss_per_1M_cs", (long long)b->o.objects);
	bench_result(rn, per_m / 1e9, NAN, "-", "GB", "<=1.5");
	printf("(GB = 10^9 bytes; engine peak RSS %s = VmHWM at the end, scaled by 10^6 / %s connector-space\n"
	       " objects: %s hr + %s directory. Fixed costs (RocksDB caches, memtables) weigh more at small N.)\n",
	    bench_fmt_bytes(m1, sizeof m1, hwm), bench_fmt_count(c2, sizeof c2, cs_objects),
	    bench_fmt_count(c1, sizeof c1, (double)b->o.objects), bench_fmt_count(c1, sizeof c1, (double)b->o.objects));

	printf("\npeak RSS (VmHWM):");
	for (int i = 0; i < NPROC; i++)
		printf("%s %s %s", i ? "," : "", b->p[i].name,
		    bench_fmt_bytes(m1, sizeof m1, (double)b->p[i].hwm_kb * 1024));
	printf("\n");
	print_store("after the last step:", disk);
}

/* ---- flags ---- */

static void usage(FILE *out)
{
	fprintf(out,
	    "usage: " PROG " [FLAGS]\n"
	    "\n"
	    "Measures a whole synchronization cycle with the real processes: writes an HR\n"
	    "CSV of N synthetic employees and a deployment (config/sync/people.yaml, agents\n"
	    "hr (csv) and directory (ldif)) in a temporary directory, starts loom-broker,\n"
	    "loom-engine and two loom-ma-file agents, and times four runs: hr full-import,\n"
	    "hr full-sync, directory export, directory full-import. Prints objects/s per\n"
	    "step and end to end (N / the sum of the steps), CPU per process, the peak RSS\n"
	    "of the engine and the agents and the engine store's size, then a table with\n"
	    "PASS/MISS against the goals (>= 20,000 objects/s end to end; <= 1.5 GB of\n"
	    "engine RSS per 10^6 connector-space objects, of which there are 2N). A MISS is\n"
	    "not a failure: the exit status is 1 only when something broke.\n"
	    "\n"
	    "  --objects N           employees in the CSV (default 100000)\n"
	    "  --broker PATH         loom-broker (default: ../broker/loom-broker next to this\n"
	    "                        program's folder, from /proc/self/exe)\n"
	    "  --engine PATH         loom-engine (default ../engine/loom-engine, likewise)\n"
	    "  --ma-file PATH        loom-ma-file (default ../agents/loom-ma-file, likewise)\n"
	    "  --rules PATH          the sync rules to deploy\n"
	    "                        (default " LOOM_SOURCE_DIR "/config/sync/people.yaml)\n"
	    "  --log-level LEVEL     the processes' log level (default info)\n"
	    "  --start-timeout MS    how long a process may take to answer a ping (default 30000)\n"
	    "  --stall-timeout MS    a run whose object count stands still this long is stuck\n"
	    "                        (default 300000)\n"
	    "  --stop-timeout MS     how long a process may take to exit on SIGTERM (default 60000)\n"
	    "  --group-members M     the reference case: a group of M members (at most N-1)\n"
	    "                        provisioned to the directory, then one member joins it\n"
	    "                        and the delta import, delta sync and export of that one\n"
	    "                        change are timed (default 50000; 0 skips the case)\n"
	    "  --keep                leave the temporary directory (data, store, logs) behind\n"
	    "  -h, --help            this text\n"
	    "\n"
	    "The temporary directory is made in $TMPDIR (default /tmp); its ipc socket\n"
	    "paths must fit in 107 bytes. Give it about 1.5 KB of disk per object.\n");
}

static void opts_free(bench_opts_t *o)
{
	free(o->broker);
	free(o->engine);
	free(o->mafile);
	free(o->rules);
	free(o->log_level);
}

/* Returns 0 to run, 1 to exit 0 (--help), 2 for a usage error. */
static int parse_flags(bench_opts_t *o, int argc, char **argv)
{
	enum { F_OBJECTS = 256, F_BROKER, F_ENGINE, F_MAFILE, F_RULES, F_LOG, F_START, F_STALL, F_STOP, F_KEEP, F_GROUP };
	static const struct option longopts[] = {
		{ "objects", required_argument, NULL, F_OBJECTS },
		{ "broker", required_argument, NULL, F_BROKER },
		{ "engine", required_argument, NULL, F_ENGINE },
		{ "ma-file", required_argument, NULL, F_MAFILE },
		{ "rules", required_argument, NULL, F_RULES },
		{ "log-level", required_argument, NULL, F_LOG },
		{ "start-timeout", required_argument, NULL, F_START },
		{ "stall-timeout", required_argument, NULL, F_STALL },
		{ "stop-timeout", required_argument, NULL, F_STOP },
		{ "keep", no_argument, NULL, F_KEEP },
		{ "group-members", required_argument, NULL, F_GROUP },
		{ "keep-dir", no_argument, NULL, F_KEEP },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	*o = (bench_opts_t){ .objects = 100000, .start_ms = 30000, .stall_ms = 300000, .stop_ms = 60000,
		.group_members = 50000 };
	int c, rc = 0;
	char **target;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case F_OBJECTS: rc |= bench_parse_num(PROG, "objects", optarg, 1, 8999999, &o->objects); break;
		case F_BROKER: target = &o->broker; goto str;
		case F_ENGINE: target = &o->engine; goto str;
		case F_MAFILE: target = &o->mafile; goto str;
		case F_RULES: target = &o->rules; goto str;
		case F_LOG: target = &o->log_level; goto str;
		case F_START: rc |= bench_parse_num(PROG, "start-timeout", optarg, 100, 3600000, &o->start_ms); break;
		case F_STALL: rc |= bench_parse_num(PROG, "stall-timeout", optarg, 1000, 86400000, &o->stall_ms); break;
		case F_STOP: rc |= bench_parse_num(PROG, "stop-timeout", optarg, 100, 3600000, &o->stop_ms); break;
		case F_KEEP: o->keep = true; break;
		case F_GROUP: rc |= bench_parse_num(PROG, "group-members", optarg, 0, 8999999, &o->group_members); break;
		case 'h': usage(stdout); return 1;
		default: usage(stderr); return 2;
		str:
			free(*target);
			*target = loom_strdup(optarg);
			break;
		}
	}
	if (rc)
		return 2;
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	struct { char **p; const char *rel; const char *flag; } defs[] = {
		{ &o->broker, "broker/loom-broker", "--broker" },
		{ &o->engine, "engine/loom-engine", "--engine" },
		{ &o->mafile, "agents/loom-ma-file", "--ma-file" },
	};
	for (size_t i = 0; i < sizeof defs / sizeof *defs; i++)
		if (*defs[i].p == NULL && (*defs[i].p = bench_next_to_self(defs[i].rel)) == NULL) {
			fprintf(stderr, PROG ": cannot find this program's path in /proc/self/exe: give %s\n", defs[i].flag);
			return 2;
		}
	if (o->rules == NULL)
		o->rules = loom_strdup(LOOM_SOURCE_DIR "/config/sync/people.yaml");
	if (o->log_level == NULL)
		o->log_level = loom_strdup("info");
	return 0;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
	bench_t b;
	memset(&b, 0, sizeof b);
	int pr = parse_flags(&b.o, argc, argv);
	if (pr != 0) {
		opts_free(&b.o);
		return pr == 1 ? 0 : 2;
	}
	const char *bins[] = { b.o.broker, b.o.engine, b.o.mafile };
	for (size_t i = 0; i < 3; i++)
		if (access(bins[i], X_OK) < 0) {
			fprintf(stderr, PROG ": cannot run '%s': %s (build it, or give its flag)\n", bins[i], strerror(errno));
			opts_free(&b.o);
			return 1;
		}
	bench_signals_install();

	step_t steps[] = {
		{ .agent = "hr", .profile = "full-import" },
		{ .agent = "hr", .profile = "full-sync" },
		{ .agent = "directory", .profile = "export" },
		{ .agent = "directory", .profile = "full-import" },
	};
	const size_t nsteps = sizeof steps / sizeof *steps;
	const char *names[NPROC] = { "broker", "engine", "hr", "directory", "corp" };
	const char *services[NPROC] = { LOOM_BROKER_ADDR, "engine", "ma.hr", "ma.directory", "ma.corp" };
	int status = 1;
	char *error = NULL;
	disk_t disk = { 0 }, disk_after = { 0 };
	char c1[32], m1[32];

	if (setup_dir(&b, &error) < 0)
		goto out;
	for (int i = 0; i < NPROC; i++) {
		b.p[i].name = names[i];
		b.p[i].service = services[i];
		b.p[i].log = loom_sprintf("%s/%s.log", b.dir, names[i]);
	}
	printf(PROG ": %s objects, directory %s, %ld cpus online\n",
	    bench_fmt_count(c1, sizeof c1, (double)b.o.objects), b.dir, sysconf(_SC_NPROCESSORS_ONLN));
	int64_t g0 = bench_now_ns();
	if (write_hr_csv(b.csv_path, b.o.objects, &error) < 0)
		goto out;
	struct stat st;
	stat(b.csv_path, &st);
	printf("  hr.csv     %s written in %.2f s (not timed)\n", bench_fmt_bytes(m1, sizeof m1, (double)st.st_size),
	    (double)(bench_now_ns() - g0) / 1e9);
	fflush(stdout);

	char *argv_broker[] = { b.o.broker, "--config", b.config_path, NULL };
	char *argv_engine[] = { b.o.engine, "--config", b.config_path, NULL };
	char *argv_hr[] = { b.o.mafile, "--config", b.config_path, "--agent", "hr", NULL };
	char *argv_dir[] = { b.o.mafile, "--config", b.config_path, "--agent", "directory", NULL };
	char *argv_corp[] = { b.o.mafile, "--config", b.config_path, "--agent", "corp", NULL };
	char *const *argvs[NPROC] = { argv_broker, argv_engine, argv_hr, argv_dir, argv_corp };
	for (int i = 0; i < NPROC; i++)
		if (proc_start(&b, &b.p[i], argvs[i], &error) < 0)
			goto out;
	printf("\n");
	fflush(stdout);

	for (size_t i = 0; i < nsteps; i++) {
		if (run_step(&b, &steps[i], &error) < 0) {
			char *e = loom_sprintf("%s %s: %s", steps[i].agent, steps[i].profile, error);
			free(error);
			error = e;
			goto out;
		}
		if (strcmp(steps[i].profile, "export") == 0) {
			long long n = ldif_entries(b.ldif_path, &error);
			if (n < 0)
				goto out;
			stat(b.ldif_path, &st);
			printf("    directory.ldif: %s entries, %s (checked outside the timing)\n",
			    bench_fmt_count(c1, sizeof c1, (double)n),
			    bench_fmt_bytes(m1, sizeof m1, (double)st.st_size));
			if (n != b.o.objects) {
				error = loom_sprintf("the export wrote %lld entries, not %lld", n, b.o.objects);
				goto out;
			}
		}
	}
	/* The peaks, before anything else runs in the engine. */
	for (int i = 0; i < NPROC; i++) {
		b.p[i].hwm_kb = proc_status_kb(b.p[i].pid, "VmHWM");
		b.p[i].rss_kb = proc_status_kb(b.p[i].pid, "VmRSS");
	}
	store_size(b.store_path, &disk);
	/* Every export confirmed, nothing left to export. */
	printf("\nchecks (not timed):\n");
	int64_t k0 = bench_now_ns();
	const char *states[] = { "pending-export", "unconfirmed", "error" };
	for (size_t i = 0; i < sizeof states / sizeof *states; i++) {
		int n = cs_any(&b, "directory", states[i], &error);
		if (n < 0)
			goto out;
		if (n > 0) {
			error = loom_sprintf("objects of the directory are still %s after the confirming import", states[i]);
			goto out;
		}
	}
	printf("  no directory object pending export, unconfirmed or in error (%.2f s)\n",
	    (double)(bench_now_ns() - k0) / 1e9);
	print_table(&b, steps, nsteps, &disk);
	if (b.o.group_members > 0 && group_case(&b, &error) < 0)
		goto out;
	status = 0;
out:
	if (error) {
		fprintf(stderr, PROG ": %s\n", error);
		free(error);
		status = 1;
	}
	if (b.dir && b.p[0].log)
		printf("\nstopping:\n");
	loom_bus_destroy(&b.bus, "benchmark done");
	if (b.zctx)
		zmq_ctx_term(b.zctx);
	for (int i = NPROC - 1; i >= 0; i--)
		if (proc_stop(&b, &b.p[i]) < 0) {
			show_log_tail(&b.p[i], 20);
			status = 1;
		}
	if (status == 0 && b.store_path) {
		store_size(b.store_path, &disk_after);
		print_store("after the engine stopped:", &disk_after);
	}
	if (b.dir) {
		if (b.o.keep || status != 0)
			printf("kept %s\n", b.dir);
		else
			bench_rm_tree(PROG, b.dir);
	}
	if (b.cfg_loaded)
		loom_deploy_release(&b.cfg);
	for (int i = 0; i < NPROC; i++)
		free(b.p[i].log);
	free(b.dir);
	free(b.config_path);
	free(b.csv_path);
	free(b.ldif_path);
	free(b.store_path);
	opts_free(&b.o);
	return status;
}
