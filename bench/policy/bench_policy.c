/* bench_policy.c - loom-bench-policy: the policy service's request pipeline
 * with --persons persons (default 200,000), --sets Sets (100) and --mprs
 * request MPRs (100).
 *
 * 1. Builds a service store in a temporary directory with the workflow
 *    library itself (persons and Sets written straight into the store, as
 *    a loaded system would hold them; not through requests) and opens it as
 *    loom-workflow does, which computes every Set's members and every MPR
 *    filter's in full (first start of a store without members).
 * 2. In-process pipeline: --requests modify requests (JobTitle or
 *    Department of a random person, by a random person: MPRs decide, from
 *    kept sets) through wf_request_submit, the function the bus handler
 *    calls; requests per second, wall and per CPU second.
 * 3. The cost of one attribute change's set recomputation: wf_sets_plan +
 *    wf_sets_abort (what every request pays between validation and
 *    commit) per kind of change, with how many sets it evaluated in full and
 *    how many single-resource tests it made.
 * 4. Through the real service: starts loom-broker and loom-workflow on the
 *    store (start-up time: members read back from the store), and sends
 *    --requests RequestSubmit messages with --in-flight outstanding from
 *    one bus client; requests per second.
 *
 * Figures only: it fails when something breaks (a request lost, a process
 * that does not start), never for being slow. */
#include "bench_common.h"
#include "loom_alloc.h"
#include "loom_bus.h"
#include "loom_envelope.h"
#include "loom_log.h"
#include "workflow.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <zmq.h>

#define PROG "loom-bench-policy"

extern char **environ;

typedef struct opts {
	long long persons;         /* --persons */
	long long sets;            /* --sets */
	long long mprs;            /* --mprs */
	long long requests;        /* --requests */
	long long in_flight;       /* --in-flight */
	bool keep;                 /* --keep-dir */
	bool no_bus;               /* --no-bus */
} opts_t;

static const char *const titles[] = { "Engineer", "Analyst", "Manager", "Director", "Clerk", "Designer", "Architect",
	"Consultant", "Technician", "Specialist", "Lead", "Officer", "Planner", "Scientist", "Writer", "Auditor",
	"Buyer", "Nurse", "Pilot", "Chef" };
static const char *const kinds[] = { "Employee", "Employee", "Employee", "Contractor", "Intern" };
#define N_DEPTS 50
#define N_MANAGERS 2000

static uint64_t rng = 88172645463325252ULL;

static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static int write_text(const char *path, const char *text, char **ret_error)
{
	FILE *f = fopen(path, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
		*ret_error = loom_sprintf("cannot write '%s': %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static char *person_id(long long i)
{
	return loom_sprintf("00000000-0000-4000-8000-%012lld", i);
}

static void set_str(Loom__Resource *r, const char *name, int kind, const char *s)
{
	Loom__Value **v = loom_calloc(2, sizeof *v);
	v[0] = wf_value_str(kind, s);
	wf_res_set(r, name, v, 1);
}

/* The sets: a mix of the filters a deployment has. */
static char *set_filter(long long i, long long persons)
{
	switch (i % 10) {
	case 0: case 1: case 2: case 3: case 4:
		return loom_sprintf("/Person[Department = 'Dept%02lld']", i % N_DEPTS);
	case 5: case 6:
		return loom_sprintf("/Person[JobTitle = '%s' and EmployeeType = 'Employee']", titles[i % 20]);
	case 7:
		return loom_sprintf("/Person[EmployeeType = 'Contractor' and Department = 'Dept%02lld']", i % N_DEPTS);
	case 8:
		return loom_sprintf("/Person[Manager = /Person[AccountName = 'user%07lld']]", (i * 7) % N_MANAGERS);
	default:
		return loom_sprintf("/Person[starts-with(AccountName, 'user%05lld')]", (i * 13) % (persons / 100 + 1));
	}
}

static char *mprs_yaml(long long n)
{
	char *y = loom_strdup("administrators: []\nmprs:\n");
	for (long long i = 0; i < n; i++) {
		char *m;
		switch (i % 4) {
		case 0: case 1:
			m = loom_sprintf("  - name: dept%02lld-titles-%lld\n"
					 "    requesters: /Person[Department = 'Dept%02lld']\n"
					 "    operations: [modify]\n"
					 "    attributes: [JobTitle]\n"
					 "    target_before: /Person[EmployeeType = 'Employee']\n"
					 "    target_after: /Person[not(JobTitle = 'Chef')]\n",
			    i % N_DEPTS, i, i % N_DEPTS);
			break;
		case 2:
			m = loom_sprintf("  - name: managers-%lld\n"
					 "    relative_to_target: Manager\n"
					 "    operations: [modify]\n"
					 "    attributes: [Department, JobTitle]\n"
					 "    target_after: /Person[Department = 'Dept%02lld' or EmployeeType = 'Employee']\n",
			    i, i % N_DEPTS);
			break;
		default:
			m = loom_sprintf("  - name: set-members-%lld\n"
					 "    requester_set: set-%03lld\n"
					 "    operations: [modify]\n"
					 "    attributes: [Department]\n"
					 "    target_after_set: set-%03lld\n",
			    i, i % 100, (i + 10) % 100);
			break;
		}
		char *j = loom_sprintf("%s%s", y, m);
		free(y);
		free(m);
		y = j;
	}
	return y;
}

static int build_store(wf_t *w, const opts_t *o, const char *store, char **ret_error)
{
	if (wf_store_open(w, store, ret_error) < 0)
		return -1;
	wf_xpath_provider(w, &w->xp);
	int64_t t0 = bench_now_ns();
	loom_batch_t *b = loom_batch_new(w->store);
	for (long long i = 0; i < o->persons; i++) {
		Loom__Resource *r = loom_malloc(sizeof *r);
		loom__resource__init(r);
		r->object_id = person_id(i);
		r->object_type = loom_strdup("Person");
		r->rid = w->next_rid++;
		char buf[64];
		snprintf(buf, sizeof buf, "user%07lld", i);
		set_str(r, "AccountName", LOOM__VALUE__V_STR, buf);
		snprintf(buf, sizeof buf, "Dept%02u", rnd(N_DEPTS));
		set_str(r, "Department", LOOM__VALUE__V_STR, buf);
		set_str(r, "EmployeeType", LOOM__VALUE__V_STR, kinds[rnd(5)]);
		set_str(r, "JobTitle", LOOM__VALUE__V_STR, titles[rnd(20)]);
		snprintf(buf, sizeof buf, "%07lld", i);
		set_str(r, "EmployeeID", LOOM__VALUE__V_STR, buf);
		if (i >= N_MANAGERS) {
			char *m = person_id(i % N_MANAGERS);
			set_str(r, "Manager", LOOM__VALUE__V_REF, m);
			free(m);
		}
		wf_res_write(w, b, NULL, r);
		protobuf_c_message_free_unpacked(&r->base, NULL);
		if (loom_batch_count(b) > 20000) {
			const char *e;
			if (loom_store_write_ex(w->store, b, false, &e) < 0) {
				*ret_error = loom_sprintf("cannot write persons: %s", e);
				loom_batch_destroy(&b);
				return -1;
			}
			loom_batch_clear(b);
		}
	}
	for (long long i = 0; i < o->sets; i++) {
		Loom__Resource *r = loom_malloc(sizeof *r);
		loom__resource__init(r);
		r->object_id = loom_sprintf("11111111-0000-4000-8000-%012lld", i);
		r->object_type = loom_strdup("Set");
		r->rid = w->next_rid++;
		char name[32];
		snprintf(name, sizeof name, "set-%03lld", i);
		set_str(r, "DisplayName", LOOM__VALUE__V_STR, name);
		if (i % 20 == 19) {
			/* explicit members only: 100 persons */
			Loom__Value **v = loom_calloc(101, sizeof *v);
			for (int k = 0; k < 100; k++) {
				char *id = person_id(rnd((unsigned)o->persons));
				v[k] = wf_value_str(LOOM__VALUE__V_REF, id);
				free(id);
			}
			wf_res_set(r, "ExplicitMember", v, 100);
		} else {
			char *f = set_filter(i, o->persons);
			set_str(r, "Filter", LOOM__VALUE__V_STR, f);
			free(f);
		}
		wf_res_write(w, b, NULL, r);
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
	wf_meta_write(w, b);
	const char *e;
	int rc = loom_store_write(w->store, b, &e);
	loom_batch_destroy(&b);
	if (rc < 0) {
		*ret_error = loom_sprintf("cannot write: %s", e);
		return -1;
	}
	printf("  store: %lld persons and %lld sets written in %.1f s\n", o->persons, o->sets,
	    (double)(bench_now_ns() - t0) / 1e9);
	t0 = bench_now_ns();
	if (wf_sets_open(w, ret_error) < 0)
		return -1;
	size_t full, tests;
	wf_sets_counters(w, &full, &tests);
	printf("  first open: every set and MPR filter computed in full (%zu evaluations) in %.1f s\n", full,
	    (double)(bench_now_ns() - t0) / 1e9);
	return 0;
}

/* A modify request: JobTitle or Department of a random person, by a random person. */
static void make_request(Loom__Request *in, const opts_t *o, char **requester, char **target)
{
	loom__request__init(in);
	*requester = person_id(rnd((unsigned)o->persons));
	*target = person_id(rnd((unsigned)o->persons));
	in->requester = *requester;
	in->target_id = *target;
	in->target_type = (char *)"Person";
	in->operation = LOOM__REQUEST__OPERATION__MODIFY;
	Loom__RequestChange *c = loom_malloc(sizeof *c);
	loom__request_change__init(c);
	char buf[32];
	if (rnd(2)) {
		c->attr = loom_strdup("JobTitle");
		snprintf(buf, sizeof buf, "%s", titles[rnd(20)]);
	} else {
		c->attr = loom_strdup("Department");
		snprintf(buf, sizeof buf, "Dept%02u", rnd(N_DEPTS));
	}
	c->values = loom_calloc(1, sizeof *c->values);
	c->values[0] = wf_value_str(LOOM__VALUE__V_STR, buf);
	c->n_values = 1;
	in->changes = loom_calloc(1, sizeof *in->changes);
	in->changes[0] = c;
	in->n_changes = 1;
}

static void free_request_in(Loom__Request *in, char *requester, char *target)
{
	for (size_t i = 0; i < in->n_changes; i++)
		protobuf_c_message_free_unpacked(&in->changes[i]->base, NULL);
	free(in->changes);
	free(requester);
	free(target);
}

/* n requests through wf_request_submit; group > 0: group commit, one
 * synced write every group requests; 0: every write synced. */
/* The in-process rate with group commit: the limit the bus figure is shown beside. */
static double inproc_rate = NAN;

static int in_process(wf_t *w, const opts_t *o, long long n, long long group, char **ret_error)
{
	w->group_commit = group > 0;
	size_t f0, t0c;
	wf_sets_counters(w, &f0, &t0c);
	long long done = 0, granted = 0, denied = 0;
	double cpu0 = bench_self_cpu();
	int64_t t0 = bench_now_ns();
	for (long long i = 0; i < n && !bench_interrupted(); i++) {
		Loom__Request in;
		char *rq_id, *tg;
		make_request(&in, o, &rq_id, &tg);
		Loom__Request *rq = wf_request_submit(w, &in, ret_error);
		free_request_in(&in, rq_id, tg);
		if (rq == NULL)
			return -1;
		done++;
		if (rq->status == LOOM__REQUEST__STATUS__COMPLETED)
			granted++;
		else if (rq->status == LOOM__REQUEST__STATUS__DENIED)
			denied++;
		else {
			*ret_error = loom_sprintf("request %s ended %s: %s", rq->id, wf_status_name(rq->status), rq->reason);
			protobuf_c_message_free_unpacked(&rq->base, NULL);
			return -1;
		}
		protobuf_c_message_free_unpacked(&rq->base, NULL);
		if (group > 0 && (i + 1) % group == 0 && wf_request_flush(w, ret_error) < 0)
			return -1;
	}
	if (group > 0 && wf_request_flush(w, ret_error) < 0)
		return -1;
	w->group_commit = false;
	double secs = (double)(bench_now_ns() - t0) / 1e9, cpu = bench_self_cpu() - cpu0;
	size_t f1, t1c;
	wf_sets_counters(w, &f1, &t1c);
	char a[32], b[32];
	char g[48];
	snprintf(g, sizeof g, group ? "one sync per %lld" : "every write synced", group);
	printf("  in-process pipeline, %s: %lld requests (%lld completed, %lld denied) in %.2f s: %s requests/s, "
	       "%s per CPU second (%.0f µs CPU each)\n",
	    g, done, granted, denied, secs, bench_fmt_count(a, sizeof a, (double)done / secs),
	    bench_fmt_count(b, sizeof b, (double)done / cpu), cpu / (double)done * 1e6);
	if (group > 0) {
		inproc_rate = (double)done / secs;
		bench_result("policy.requests_in_process", inproc_rate, NAN, "-", "requests/s", ">=5000");
	}
	printf("    set work: %.2f full evaluations and %.1f one-resource tests per request\n",
	    (double)(f1 - f0) / (double)done, (double)(t1c - t0c) / (double)done);
	return 0;
}

typedef struct change_case {
	const char *label;         /* what changes */
	const char *attr;          /* the attribute */
	int who;                   /* 0: any person, 1: a manager */
} change_case_t;

static int recompute_cost(wf_t *w, const opts_t *o, char **ret_error)
{
	static const change_case_t cases[] = {
		{ "EmployeeID (no filter mentions it)", "EmployeeID", 0 },
		{ "JobTitle (own-attribute sets, MPR target_after)", "JobTitle", 0 },
		{ "Department (own-attribute sets, MPR requester sets)", "Department", 0 },
		{ "Manager (reverse-reference sets: the person alone re-tested)", "Manager", 0 },
		{ "AccountName of a manager (reverse-reference sets in full, starts-with sets)", "AccountName", 1 },
	};
	printf("  one attribute change's set recomputation (wf_sets_plan + wf_sets_abort, 2,000 changes each):\n");
	const wf_type_t *pt = wf_type_find(&w->policy, "Person");
	for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
		size_t f0, t0c;
		wf_sets_counters(w, &f0, &t0c);
		int64_t total = 0;
		int n = 2000;
		for (int i = 0; i < n; i++) {
			long long who = cases[c].who ? rnd(N_MANAGERS) : rnd((unsigned)o->persons);
			char *id = person_id(who);
			Loom__Resource *before;
			const char *e;
			if (wf_res_get_by_id(w, id, &before, &e) != 1) {
				*ret_error = loom_sprintf("cannot read person %s", id);
				free(id);
				return -1;
			}
			Loom__RequestChange ch = LOOM__REQUEST_CHANGE__INIT;
			Loom__Value *v[1];
			char buf[64];
			ch.attr = (char *)cases[c].attr;
			ch.values = v;
			ch.n_values = 1;
			if (strcmp(cases[c].attr, "Manager") == 0) {
				char *m = person_id(rnd(N_MANAGERS));
				snprintf(buf, sizeof buf, "%s", m);
				free(m);
			} else if (strcmp(cases[c].attr, "Department") == 0) {
				snprintf(buf, sizeof buf, "Dept%02u", rnd(N_DEPTS));
			} else if (strcmp(cases[c].attr, "JobTitle") == 0) {
				snprintf(buf, sizeof buf, "%s", titles[rnd(20)]);
			} else {
				snprintf(buf, sizeof buf, "x%07d", i);
			}
			v[0] = wf_value_str(LOOM__VALUE__V_STR, buf);
			Loom__RequestChange *chp = &ch;
			Loom__Resource *after = NULL;
			if (strcmp(cases[c].attr, "Manager") == 0) {
				/* a reference: wf_apply_changes would resolve it through the pipeline's callback */
				size_t len = loom__resource__get_packed_size(before);
				uint8_t *pk = loom_malloc(len + 1);
				loom__resource__pack(before, pk);
				after = loom__resource__unpack(NULL, len, pk);
				free(pk);
				set_str(after, "Manager", LOOM__VALUE__V_REF, buf);
			} else {
				char *why;
				if (wf_apply_changes(&w->policy, pt, before, &chp, 1, NULL, NULL, &after, &why) < 0) {
					*ret_error = loom_sprintf("change %s: %s", cases[c].attr, why);
					free(why);
					return -1;
				}
			}
			protobuf_c_message_free_unpacked(&v[0]->base, NULL);
			Loom__Request rq = LOOM__REQUEST__INIT;
			rq.requester = (char *)"sync";
			rq.target_id = id;
			int64_t t0 = bench_now_ns();
			char *reason = NULL;
			if (wf_sets_plan(w, &rq, before, after, &reason) < 0) {
				*ret_error = loom_sprintf("plan: %s", reason);
				free(reason);
				return -1;
			}
			wf_sets_abort(w);
			total += bench_now_ns() - t0;
			protobuf_c_message_free_unpacked(&before->base, NULL);
			protobuf_c_message_free_unpacked(&after->base, NULL);
			free(id);
		}
		size_t f1, t1c;
		wf_sets_counters(w, &f1, &t1c);
		printf("    %-70s %8.1f µs  (%.2f full evaluations, %.1f tests)\n", cases[c].label,
		    (double)total / n / 1e3, (double)(f1 - f0) / n, (double)(t1c - t0c) / n);
	}
	return 0;
}

/* ---- through the bus ---- */

static pid_t spawn(char *const argv[], const char *log, char **ret_error)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	pid_t pid;
	int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		*ret_error = loom_sprintf("cannot start '%s': %s", argv[0], strerror(rc));
		return 0;
	}
	return pid;
}

static void reap(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	int st;
	waitpid(pid, &st, 0);
}

static int wait_ping(loom_bus_t *bus, const char *service, pid_t pid, long long ms, char **ret_error)
{
	int64_t deadline = bench_now_ns() + ms * 1000000;
	Loom__Ping ping = LOOM__PING__INIT;
	for (;;) {
		Loom__Envelope *reply = NULL;
		const char *err;
		if (loom_bus_request(bus, service, &ping.base, 200, &reply, &err) == 0) {
			loom_envelope_free(&reply);
			return 0;
		}
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			*ret_error = loom_sprintf("%s exited (see its log)", service);
			return -1;
		}
		if (bench_now_ns() > deadline || bench_interrupted()) {
			*ret_error = loom_sprintf("%s did not answer a ping: %s", service, err);
			return -1;
		}
		bench_sleep_us(20000);
	}
}

static int over_bus(const char *dir, const opts_t *o, char **ret_error)
{
	char *cfgp = loom_sprintf("%s/loom.yaml", dir);
	loom_deploy_t cfg;
	memset(&cfg, 0, sizeof cfg);
	int rc = bench_deploy_load(cfgp, &cfg, ret_error);
	char *broker = bench_next_to_self("broker/loom-broker"), *wfbin = bench_next_to_self("workflow/loom-workflow");
	char *blog = loom_sprintf("%s/broker.log", dir), *wlog = loom_sprintf("%s/workflow.log", dir);
	pid_t bp = 0, wp = 0;
	void *zctx = NULL;
	loom_bus_t *bus = NULL;
	if (rc < 0)
		goto out;
	rc = -1;
	char *bargv[] = { broker, (char *)"-c", cfgp, NULL };
	if ((bp = spawn(bargv, blog, ret_error)) == 0)
		goto out;
	zctx = zmq_ctx_new();
	loom_bus_opts_t bo = { .service = "bench.policy", .process = PROG, .router = cfg.bus.router,
		.heartbeat_ms = cfg.bus.heartbeat_ms, .liveness = (unsigned)cfg.bus.liveness };
	if (loom_bus_new(zctx, &bo, &bus, ret_error) < 0)
		goto out;
	if (wait_ping(bus, "broker", bp, 10000, ret_error) < 0)
		goto out;
	int64_t t0 = bench_now_ns();
	char *wargv[] = { wfbin, (char *)"-c", cfgp, NULL };
	if ((wp = spawn(wargv, wlog, ret_error)) == 0)
		goto out;
	if (wait_ping(bus, "workflow", wp, 600000, ret_error) < 0)
		goto out;
	printf("  loom-workflow started on the store in %.1f s (members read back, MPR filters computed)\n",
	    (double)(bench_now_ns() - t0) / 1e9);
	long long sent = 0, got = 0, granted = 0, denied = 0;
	t0 = bench_now_ns();
	double wcpu0 = bench_thread_cpu(wp, 0);
	while (got < o->requests && !bench_interrupted()) {
		while (sent < o->requests && sent - got < o->in_flight) {
			Loom__Request in;
			char *rq_id, *tg;
			make_request(&in, o, &rq_id, &tg);
			Loom__RequestSubmit s = LOOM__REQUEST_SUBMIT__INIT;
			s.request = &in;
			const char *e;
			int src = loom_bus_send(bus, "workflow", &s.base, NULL, NULL, &e);
			free_request_in(&in, rq_id, tg);
			if (src < 0) {
				*ret_error = loom_sprintf("cannot send: %s", e);
				goto out;
			}
			sent++;
		}
		zmq_pollitem_t it = { .socket = loom_bus_socket(bus), .events = ZMQ_POLLIN };
		if (zmq_poll(&it, 1, 30000) == 0) {
			*ret_error = loom_sprintf("no reply for 30 s with %lld requests outstanding", sent - got);
			goto out;
		}
		Loom__Envelope *env;
		const char *e;
		int r;
		while ((r = loom_bus_recv(bus, &env, &e)) != 0) {
			if (r < 0)
				continue;
			if (loom_envelope_is(env, &loom__pong__descriptor)) {
				loom_envelope_free(&env); /* a late answer to a start-up ping */
				continue;
			}
			Loom__RequestReply *rr = (Loom__RequestReply *)loom_envelope_body(env, &loom__request_reply__descriptor, &e);
			if (rr == NULL || rr->request == NULL) {
				*ret_error = loom_sprintf("unexpected reply %s: %s", env->type, rr ? "no request" : e);
				loom_envelope_free(&env);
				goto out;
			}
			got++;
			if (rr->request->status == LOOM__REQUEST__STATUS__COMPLETED)
				granted++;
			else if (rr->request->status == LOOM__REQUEST__STATUS__DENIED)
				denied++;
			protobuf_c_message_free_unpacked(&rr->base, NULL);
			loom_envelope_free(&env);
		}
		loom_bus_tick(bus);
	}
	double secs = (double)(bench_now_ns() - t0) / 1e9, wcpu = bench_thread_cpu(wp, 0) - wcpu0;
	char a[32];
	printf("  through the bus: %lld requests (%lld completed, %lld denied), %lld in flight, in %.2f s: "
	       "%s requests/s; loom-workflow used %.0f µs CPU per request\n",
	    got, granted, denied, o->in_flight, secs, bench_fmt_count(a, sizeof a, (double)got / secs),
	    wcpu / (double)got * 1e6);
	bench_result("policy.requests_bus", (double)got / secs, inproc_rate, "in-process", "requests/s", ">=5000");
	rc = 0;
out:
	loom_bus_destroy(&bus, "done");
	if (zctx)
		zmq_ctx_term(zctx);
	reap(wp);
	reap(bp);
	loom_deploy_release(&cfg);
	free(cfgp);
	free(broker);
	free(wfbin);
	free(blog);
	free(wlog);
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: " PROG " [--persons N] [--sets N] [--mprs N] [--requests N] [--in-flight N] [--no-bus] "
		   "[--keep-dir]\n"
		   "  The policy pipeline with N persons (200000), sets (100) and request MPRs (100): requests/s\n"
		   "  in process and through loom-broker + loom-workflow, and the cost of one attribute change's\n"
		   "  set recomputation. Prints figures; fails only when something breaks.\n");
}

int main(int argc, char **argv)
{
	opts_t o = { .persons = 200000, .sets = 100, .mprs = 100, .requests = 20000, .in_flight = 64 };
	static const struct option lo[] = {
		{ "persons", required_argument, NULL, 'p' }, { "sets", required_argument, NULL, 's' },
		{ "mprs", required_argument, NULL, 'm' }, { "requests", required_argument, NULL, 'r' },
		{ "in-flight", required_argument, NULL, 'f' }, { "no-bus", no_argument, NULL, 'n' },
		{ "keep-dir", no_argument, NULL, 'k' }, { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	for (int c; (c = getopt_long(argc, argv, "", lo, NULL)) != -1;) {
		int rc = 0;
		switch (c) {
		case 'p': rc = bench_parse_num(PROG, "persons", optarg, N_MANAGERS + 1, 100000000, &o.persons); break;
		case 's': rc = bench_parse_num(PROG, "sets", optarg, 0, 100000, &o.sets); break;
		case 'm': rc = bench_parse_num(PROG, "mprs", optarg, 0, 100000, &o.mprs); break;
		case 'r': rc = bench_parse_num(PROG, "requests", optarg, 1, 100000000, &o.requests); break;
		case 'f': rc = bench_parse_num(PROG, "in-flight", optarg, 1, 100000, &o.in_flight); break;
		case 'n': o.no_bus = true; break;
		case 'k': o.keep = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (rc < 0)
			return 2;
	}
	bench_signals_install();
	loom_log_set_level(LOOM_LOG_WARNING);
	char *dir = NULL, *err = NULL;
	if (bench_mkdtemp("loom-bench-policy", &dir, &err) < 0) {
		fprintf(stderr, PROG ": %s\n", err);
		return 1;
	}
	int rc = -1;
	char *pdir = loom_sprintf("%s/policy", dir), *state = loom_sprintf("%s/state", dir);
	char *store = loom_sprintf("%s/state/workflow", dir);
	char *p, *y;
	(void)mkdir(pdir, 0755);
	(void)mkdir(state, 0755);
	p = loom_sprintf("%s/loom.yaml", dir);
	y = loom_sprintf("state_dir: %s\nlog: { level: warning }\n"
			 "bus: { heartbeat: 1s, liveness: 10, request_timeout: 60s, curve: false }\n", state);
	rc = write_text(p, y, &err);
	free(p);
	free(y);
	if (rc == 0) {
		/* the shipped schema */
		FILE *f = fopen(LOOM_SOURCE_DIR "/config/policy/schema.yaml", "r");
		char buf[65536];
		size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
		if (f)
			fclose(f);
		buf[n] = '\0';
		p = loom_sprintf("%s/schema.yaml", pdir);
		rc = n ? write_text(p, buf, &err) : -1;
		if (n == 0)
			err = loom_strdup("cannot read " LOOM_SOURCE_DIR "/config/policy/schema.yaml");
		free(p);
	}
	if (rc == 0) {
		p = loom_sprintf("%s/mprs.yaml", pdir);
		y = mprs_yaml(o.mprs);
		rc = write_text(p, y, &err);
		free(p);
		free(y);
	}
	wf_t w;
	memset(&w, 0, sizeof w);
	bool open = false;
	printf(PROG ": %lld persons, %lld sets, %lld request MPRs, %lld requests (%s)\n", o.persons, o.sets, o.mprs,
	    o.requests, dir);
	if (rc == 0)
		rc = wf_policy_load(pdir, &w.policy, &err);
	if (rc == 0) {
		open = true;
		rc = build_store(&w, &o, store, &err);
	}
	if (rc == 0)
		rc = in_process(&w, &o, o.requests / 10 + 1, 0, &err);
	if (rc == 0)
		rc = in_process(&w, &o, o.requests, o.in_flight, &err);
	if (rc == 0)
		rc = recompute_cost(&w, &o, &err);
	if (open) {
		wf_sets_close(&w);
		if (w.store)
			wf_store_close(&w);
		wf_policy_release(&w.policy);
	}
	if (rc == 0 && !o.no_bus)
		rc = over_bus(dir, &o, &err);
	if (rc < 0)
		fprintf(stderr, PROG ": %s (kept %s)\n", err ? err : "failed", dir);
	else if (!o.keep)
		bench_rm_tree(PROG, dir);
	else
		printf("kept %s\n", dir);
	free(err);
	free(dir);
	free(pdir);
	free(state);
	free(store);
	return rc < 0 ? 1 : 0;
}
