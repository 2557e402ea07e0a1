/* bench_pcns_fire.c - loom-bench-pcns: fires password changes at a source
 * slapd and times their arrival in a target slapd (bench/pcns/bench_pcns.sh
 * builds the rest of the chain; bench/README.md "bench_pcns").
 *
 *   loom-bench-pcns --source URI --binddn DN --bindpw PW --base BASE
 *       --users N --changes C --rate R --sock PATH [--wait SECONDS]
 *
 * Change i is a Password Modify (RFC 3062, asynchronous, one connection) of
 * uid=user((i % N) + 1),BASE to "Bench-i-XXXXXXXX"; its time is taken just
 * before it is sent. The target slapd's sock overlay (socketpath PATH,
 * sockops extended, sockresps result, extensions connid) reports the
 * agent's Password Modify there, and its RESULT: the arrival is the RESULT
 * with code 0, i.e. the password is set in the target. The new password
 * names the change (i), so nothing else needs matching. Latency = arrival
 * - fire. Lost = changes fired (and taken by the source) that never
 * arrived within --wait seconds after the last arrival. Change 0 goes
 * first, alone, and is waited for: it warms the chain up (connections,
 * caches) and is not counted.
 */
#include "bench_common.h"
#include "pcns.h"

#include <errno.h>
#include <ldap.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

typedef struct held {
	char key[64];
	long seq;
	struct held *next;
} held_t;

static const char *sock_path;
static long nchanges;
static int64_t *fired_ns;           /* per change: 0 not fired */
static _Atomic int64_t *arrived_ns; /* per change: 0 not arrived */
static _Atomic long arrivals, duplicates, stray;
static atomic_bool stop;

/* The change a "Bench-i-..." password names, or -1. */
static long seq_of(const uint8_t *pw, size_t len)
{
	if (len < 7 || memcmp(pw, "Bench-", 6) != 0)
		return -1;
	long v = 0;
	size_t i = 6;
	for (; i < len && pw[i] >= '0' && pw[i] <= '9'; i++)
		v = v * 10 + (pw[i] - '0');
	return i > 6 && v <= nchanges ? v : -1;
}

static void handle(char *text, size_t len, held_t **held)
{
	pcns_kvs_t kv;
	const char *err;
	if (pcns_kv_parse(text, len, &kv, &err) < 0 || kv.n == 0)
		return;
	const pcns_kv_t *msgid = pcns_kv_get(&kv, "msgid"), *connid = pcns_kv_get(&kv, "connid");
	char key[64];
	snprintf(key, sizeof key, "%s/%s", connid ? connid->val : "-", msgid ? msgid->val : "-");
	if (strcmp(kv.v[0].name, "EXTENDED") == 0) {
		const pcns_kv_t *value = pcns_kv_get(&kv, "value");
		if (value) {
			uint8_t *ber = sodium_malloc(value->vlen + 1);
			size_t blen = 0;
			pcns_passwd_modify_t pm;
			if (sodium_base642bin(ber, value->vlen, value->val, value->vlen, NULL, &blen, NULL,
				sodium_base64_VARIANT_ORIGINAL) == 0 && pcns_passwd_modify_parse(ber, blen, &pm) == 0 && pm.have_new) {
				long s = seq_of(pm.newpw, pm.newpw_len);
				if (s >= 0) {
					held_t *h = calloc(1, sizeof *h);
					snprintf(h->key, sizeof h->key, "%s", key);
					h->seq = s;
					h->next = *held;
					*held = h;
				} else {
					stray++;
				}
			}
			sodium_free(ber);
		}
	} else if (strcmp(kv.v[0].name, "RESULT") == 0) {
		const pcns_kv_t *code = pcns_kv_get(&kv, "code");
		for (held_t **p = held; *p; p = &(*p)->next)
			if (strcmp((*p)->key, key) == 0) {
				held_t *h = *p;
				*p = h->next;
				if (code && strcmp(code->val, "0") == 0) {
					int64_t zero = 0;
					if (atomic_compare_exchange_strong(&arrived_ns[h->seq], &zero, bench_now_ns()))
						arrivals++;
					else
						duplicates++;
				}
				free(h);
				break;
			}
	}
	pcns_kvs_release(&kv);
}

/* The target's sock overlay: answer CONTINUE, note arrivals. */
static void *sock_thread(void *arg)
{
	int lfd = *(int *)arg;
	held_t *held = NULL;
	char *buf = sodium_malloc(1 << 20);
	while (!atomic_load(&stop)) {
		struct pollfd pfd = { lfd, POLLIN, 0 };
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			continue;
		size_t len = 0;
		for (;;) {
			ssize_t n = read(fd, buf + len, (1 << 20) - 1 - len);
			if (n <= 0)
				break;
			len += (size_t)n;
			if (len >= 2 && buf[len - 1] == '\n' && buf[len - 2] == '\n')
				break;
		}
		bool result = len >= 6 && memcmp(buf, "RESULT", 6) == 0;
		if (!result && write(fd, "CONTINUE\n\n", 10) < 0)
			perror("loom-bench-pcns: write");
		close(fd);
		handle(buf, len, &held);
	}
	sodium_free(buf);
	while (held) {
		held_t *h = held;
		held = h->next;
		free(h);
	}
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	const char *uri = NULL, *binddn = NULL, *bindpw = NULL, *base = NULL, *trace = NULL;
	long users = 1000, rate = 100, wait_s = 30;
	nchanges = 1000;
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *f = argv[i], *v = argv[i + 1];
		if (strcmp(f, "--source") == 0) uri = v;
		else if (strcmp(f, "--binddn") == 0) binddn = v;
		else if (strcmp(f, "--bindpw") == 0) bindpw = v;
		else if (strcmp(f, "--base") == 0) base = v;
		else if (strcmp(f, "--users") == 0) users = atol(v);
		else if (strcmp(f, "--changes") == 0) nchanges = atol(v);
		else if (strcmp(f, "--rate") == 0) rate = atol(v);
		else if (strcmp(f, "--sock") == 0) sock_path = v;
		else if (strcmp(f, "--wait") == 0) wait_s = atol(v);
		else if (strcmp(f, "--trace") == 0) trace = v;
		else {
			fprintf(stderr, "loom-bench-pcns: unknown flag '%s'\n", f);
			return 2;
		}
	}
	if (!uri || !binddn || !bindpw || !base || !sock_path || users < 1 || nchanges < 1 || rate < 1) {
		fprintf(stderr, "usage: loom-bench-pcns --source URI --binddn DN --bindpw PW --base BASE --users N "
				"--changes C --rate R --sock PATH [--wait S]\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	fired_ns = calloc((size_t)nchanges + 1, sizeof *fired_ns);
	arrived_ns = calloc((size_t)nchanges + 1, sizeof *arrived_ns);

	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
	unlink(sock_path);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 256) < 0) {
		fprintf(stderr, "loom-bench-pcns: cannot listen on '%s': %s\n", sock_path, strerror(errno));
		return 1;
	}
	pthread_t th;
	pthread_create(&th, NULL, sock_thread, &lfd);

	LDAP *ld;
	int v3 = LDAP_VERSION3;
	if (ldap_initialize(&ld, uri) != LDAP_SUCCESS) {
		fprintf(stderr, "loom-bench-pcns: bad URI '%s'\n", uri);
		return 1;
	}
	ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
	struct berval cred = { strlen(bindpw), (char *)bindpw };
	int rc = ldap_sasl_bind_s(ld, binddn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
	if (rc != LDAP_SUCCESS) {
		fprintf(stderr, "loom-bench-pcns: bind to %s: %s\n", uri, ldap_err2string(rc));
		return 1;
	}
	long src_errors = 0, src_ok = 0;
	struct timeval zero = { 0, 0 };
	{
		/* change 0: the warm-up */
		char dn[512], pw[64];
		snprintf(dn, sizeof dn, "uid=user1,%s", base);
		snprintf(pw, sizeof pw, "Bench-0-%08x", randombytes_random());
		struct berval u = { strlen(dn), dn }, n = { strlen(pw), pw };
		int msgid;
		fired_ns[0] = bench_now_ns();
		if (ldap_passwd(ld, &u, NULL, &n, NULL, NULL, &msgid) != LDAP_SUCCESS) {
			fprintf(stderr, "loom-bench-pcns: the warm-up change cannot be sent\n");
			return 1;
		}
		int64_t until = bench_now_ns() + 60 * 1000000000LL;
		while (atomic_load(&arrived_ns[0]) == 0 && bench_now_ns() < until)
			usleep(10000);
		if (atomic_load(&arrived_ns[0]) == 0) {
			fprintf(stderr, "loom-bench-pcns: the warm-up change did not arrive in 60 s\n");
			return 1;
		}
		LDAPMessage *res;
		struct timeval tv = { 5, 0 };
		if (ldap_result(ld, msgid, LDAP_MSG_ALL, &tv, &res) > 0)
			ldap_msgfree(res);
		printf("warm-up      %.1f ms\n", (double)(arrived_ns[0] - fired_ns[0]) / 1e6);
		arrivals = 0;
	}
	int64_t start = bench_now_ns();
	for (long i = 1; i <= nchanges; i++) {
		int64_t due = start + (int64_t)((i - 1) * (1000000000.0 / (double)rate));
		for (;;) {
			LDAPMessage *res;
			while (ldap_result(ld, LDAP_RES_ANY, LDAP_MSG_ONE, &zero, &res) > 0) {
				int err = 0;
				ldap_parse_result(ld, res, &err, NULL, NULL, NULL, NULL, 1);
				if (err == LDAP_SUCCESS)
					src_ok++;
				else
					src_errors++;
			}
			int64_t now = bench_now_ns();
			if (now >= due)
				break;
			int64_t left = due - now;
			usleep((useconds_t)(left > 2000000 ? 2000 : left / 1000));
		}
		char dn[512], pw[64];
		uint32_t r = randombytes_random();
		snprintf(dn, sizeof dn, "uid=user%ld,%s", ((i - 1) % users) + 1, base);
		snprintf(pw, sizeof pw, "Bench-%ld-%08x", i, r);
		struct berval u = { strlen(dn), dn }, n = { strlen(pw), pw };
		int msgid;
		fired_ns[i] = bench_now_ns();
		rc = ldap_passwd(ld, &u, NULL, &n, NULL, NULL, &msgid);
		sodium_memzero(pw, sizeof pw);
		if (rc != LDAP_SUCCESS) {
			src_errors++;
			fired_ns[i] = 0;
		}
	}
	double fire_s = (double)(bench_now_ns() - start) / 1e9;
	/* the last source results, then the arrivals: until all came, or none for wait_s */
	int64_t last_progress = bench_now_ns();
	long seen = -1;
	while (atomic_load(&arrivals) + src_errors < nchanges) {
		LDAPMessage *res;
		struct timeval tv = { 0, 100000 };
		if (ldap_result(ld, LDAP_RES_ANY, LDAP_MSG_ONE, &tv, &res) > 0) {
			int err = 0;
			ldap_parse_result(ld, res, &err, NULL, NULL, NULL, NULL, 1);
			if (err == LDAP_SUCCESS)
				src_ok++;
			else
				src_errors++;
		}
		long a = atomic_load(&arrivals);
		if (a != seen) {
			seen = a;
			last_progress = bench_now_ns();
		} else if (bench_now_ns() - last_progress > wait_s * 1000000000LL) {
			break;
		}
	}
	int64_t end = bench_now_ns();
	atomic_store(&stop, true);
	pthread_join(th, NULL);
	ldap_unbind_ext_s(ld, NULL, NULL);
	close(lfd);
	unlink(sock_path);

	int64_t *lat = calloc((size_t)nchanges, sizeof *lat);
	long nl = 0, lost = 0;
	for (long i = 1; i <= nchanges; i++) {
		if (fired_ns[i] == 0)
			continue;
		if (arrived_ns[i])
			lat[nl++] = arrived_ns[i] - fired_ns[i];
		else
			lost++;
	}
	if (trace) {
		/* seq, user, fired and arrived (wall clock, µs; 0: never), to line up with the logs */
		FILE *f = fopen(trace, "w");
		struct timespec rt;
		clock_gettime(CLOCK_REALTIME, &rt);
		int64_t off = ((int64_t)rt.tv_sec * 1000000000 + rt.tv_nsec) - bench_now_ns();
		for (long i = 1; f && i <= nchanges; i++)
			fprintf(f, "%ld user%ld %lld %lld\n", i, ((i - 1) % users) + 1, (long long)((fired_ns[i] + off) / 1000),
			    arrived_ns[i] ? (long long)((arrived_ns[i] + off) / 1000) : 0LL);
		if (f)
			fclose(f);
	}
	qsort(lat, (size_t)nl, sizeof *lat, cmp_i64);
#define PCT(p) (nl ? (double)lat[(size_t)((double)(nl - 1) * (p))] / 1e6 : 0.0)
	printf("changes      %ld fired at %ld/s in %.1f s (%ld users); the source took %ld, refused %ld\n", nchanges, rate,
	    fire_s, users, src_ok, src_errors);
	printf("arrived      %ld in the target (%.1f s after the first change), lost %ld, applied twice %ld, stray %ld\n", nl,
	    (double)(end - start) / 1e9, lost, (long)duplicates, (long)stray);
	printf("latency      p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms (change sent to the source -> set in "
	       "the target)\n",
	    PCT(0.50), PCT(0.90), PCT(0.99), nl ? (double)lat[nl - 1] / 1e6 : 0.0);
	printf("throughput   %.0f changes/s end to end\n", nl ? (double)nl / ((double)(end - start) / 1e9) : 0.0);
	bench_result("pcns.latency_p50", PCT(0.50), NAN, "-", "ms", "-");
	bench_result("pcns.latency_p99", PCT(0.99), NAN, "-", "ms", "<=500");
	bench_result("pcns.lost", (double)lost, NAN, "-", "changes", "<=0");
	free(lat);
	free(fired_ns);
	free((void *)arrived_ns);
	return lost ? 3 : 0;
}
