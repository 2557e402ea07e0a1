#define _GNU_SOURCE
/* bench_standby.c - what the warm standby costs (docs/recovery.md, "Warm
 * standby and activation"), printed, never asserted:
 *   1. a write batch with the fence (lease check) against one without,
 *      as the engine writes (one small batch per object, WAL not synced
 *      per write), and the cost of one loom_fence_check on its own;
 *   2. how long a secondary instance takes to catch up with N writes of
 *      the primary, and that it then sees them all.
 *
 *   loom-bench-standby [--writes N] [--dir DIR]
 */
#include "loom_lease.h"
#include "loom_store.h"

#include <errno.h>
#include <stdbool.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static loom_fence_t *fence;
static int fence_cb(void *arg, const char **error_r)
{
	(void)arg;
	return loom_fence_check(fence, 20, error_r);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(p);
}

/* Writes n batches of one 200-byte value; returns seconds. */
static double write_n(loom_store_t *s, long n, long base)
{
	loom_batch_t *b = loom_batch_new(s);
	char key[32], val[200];
	memset(val, 'v', sizeof val);
	const char *err;
	double t0 = now_s();
	for (long i = 0; i < n; i++) {
		int kl = snprintf(key, sizeof key, "obj%010ld", base + i);
		loom_batch_clear(b);
		loom_batch_put(b, 1, key, (size_t)kl, val, sizeof val);
		if (loom_store_write_ex(s, b, false, &err) < 0) {
			fprintf(stderr, "loom-bench-standby: %s\n", err);
			exit(1);
		}
	}
	double t = now_s() - t0;
	loom_batch_destroy(&b);
	return t;
}

int main(int argc, char **argv)
{
	long n = 200000;
	const char *tmp = getenv("TMPDIR");
	char dir[512];
	snprintf(dir, sizeof dir, "%s/loom-bench-standby-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--writes") == 0 && i + 1 < argc) {
			n = strtol(argv[++i], NULL, 10);
			if (n <= 0) {
				fprintf(stderr, "loom-bench-standby: bad --writes '%s': expected a positive number\n", argv[i]);
				return 2;
			}
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("usage: loom-bench-standby [--writes N]   (default 200000; in $TMPDIR)\n"
			       "Prints the cost of the fence per write batch and a secondary's catch-up time.\n");
			return 0;
		} else {
			fprintf(stderr, "loom-bench-standby: unexpected '%s' (see --help)\n", argv[i]);
			return 2;
		}
	}
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "loom-bench-standby: cannot make '%s': %s\n", dir, strerror(errno));
		return 1;
	}
	char path[600], sec[600];
	snprintf(path, sizeof path, "%s/store", dir);
	snprintf(sec, sizeof sec, "%s/secondary", dir);
	mkdir(sec, 0755);
	const char *const cfs[] = { "obj", NULL };
	loom_store_t *s = NULL, *s2 = NULL;
	char *err = NULL;
	if (loom_store_open(path, cfs, NULL, &s, &err) < 0) {
		fprintf(stderr, "loom-bench-standby: %s\n", err);
		return 1;
	}
	if (loom_fence_new(dir, "bench", &fence, &err) < 0) {
		fprintf(stderr, "loom-bench-standby: %s\n", err);
		return 1;
	}
	/* warm up, then alternate so neither side gets the warmer cache */
	write_n(s, n / 10, 0);
	double plain = 0, fenced = 0;
	for (int round = 0; round < 4; round++) {
		/* ABBA order: memtable flushes fall on both sides alike */
		bool fence_first = round == 1 || round == 2;
		for (int k = 0; k < 2; k++) {
			bool with = (k == 0) == fence_first;
			loom_store_set_fence(with ? fence_cb : NULL, NULL);
			double t = write_n(s, n / 4, (long)(round * 2 + k + 1) * n);
			if (with)
				fenced += t;
			else
				plain += t;
		}
	}
	loom_store_set_fence(NULL, NULL);
	const char *cerr;
	double t0 = now_s();
	long checks = 1000000;
	for (long i = 0; i < checks; i++)
		if (loom_fence_check(fence, 0, &cerr) < 0) {
			fprintf(stderr, "loom-bench-standby: %s\n", cerr);
			return 1;
		}
	double per_check = (now_s() - t0) / (double)checks;
	t0 = now_s();
	for (long i = 0; i < checks; i++)
		(void)loom_fence_check(fence, 20, &cerr);
	double per_cached = (now_s() - t0) / (double)checks;
	printf("write batches          %ld without the fence, %ld with\n", n, n);
	printf("without fence          %.2f us/write (%.0f writes/s)\n", plain / (double)n * 1e6, (double)n / plain);
	printf("with fence (20 ms)     %.2f us/write (%.0f writes/s), %+.1f%%\n", fenced / (double)n * 1e6,
	    (double)n / fenced, (fenced - plain) / plain * 100.0);
	printf("fence check            %.3f us when it stats the lease, %.3f us within the 20 ms interval\n",
	    per_check * 1e6, per_cached * 1e6);

	/* a secondary following N writes */
	loom_store_opts_t so;
	loom_store_opts_default(&so);
	so.secondary_path = sec;
	if (loom_store_open(path, NULL, &so, &s2, &err) < 0) {
		fprintf(stderr, "loom-bench-standby: %s\n", err);
		return 1;
	}
	double w = write_n(s, n, 10 * n);
	t0 = now_s();
	if (loom_store_catch_up(s2, &cerr) < 0) {
		fprintf(stderr, "loom-bench-standby: %s\n", cerr);
		return 1;
	}
	double cu = now_s() - t0;
	unsigned long long p = loom_store_sequence(s), q = loom_store_sequence(s2);
	t0 = now_s();
	if (loom_store_catch_up(s2, &cerr) < 0) {
		fprintf(stderr, "loom-bench-standby: %s\n", cerr);
		return 1;
	}
	double idle = now_s() - t0;
	printf("primary wrote          %ld batches in %.2f s\n", n, w);
	printf("secondary catch-up     %.3f s for them (seq %llu of %llu), %.3f ms when nothing is new\n", cu, q, p,
	    idle * 1e3);
	loom_store_close(&s2);
	loom_store_close(&s);
	loom_fence_destroy(&fence);
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return q == p ? 0 : 1;
}
