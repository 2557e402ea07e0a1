/* test_lease.c - the primary's lease (loom_lease.c), the fence that checks
 * it before store writes, and RocksDB secondary stores (loom_store.c), in a
 * temporary directory per test with a real RocksDB. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loom_lease.h"
#include "loom_store.h"

typedef struct fixture {
	char dir[256];     /* mkdtemp directory, removed in teardown */
} fixture_t;

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(p);
}

static int setup(void **state)
{
	fixture_t *f = calloc(1, sizeof *f);
	const char *tmp = getenv("TMPDIR");
	snprintf(f->dir, sizeof f->dir, "%s/loom-lease-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture_t *f = *state;
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void write_text(const char *dir, const char *name, const char *text)
{
	char *path = NULL;
	assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	free(path);
}

/* ---- lease files: read --------------------------------------------------------------------- */

typedef struct read_case {
	const char *label;     /* what the case is */
	const char *text;      /* the lease file, or NULL for none */
	int want_rc;           /* loom_lease_read's result */
	unsigned long long epoch; /* wanted epoch when 1 */
	const char *holder;    /* wanted holder when 1 */
	const char *error;     /* a substring of the error when -1 */
} read_case_t;

static const read_case_t read_cases[] = {
	{ "no lease yet", NULL, 0, 0, NULL, NULL },
	{ "a good lease", "loom-lease 1\nepoch: 7\nholder: b\nsince: 1763716000\n", 1, 7, "b", NULL },
	{ "since is optional", "loom-lease 1\nepoch: 1\nholder: host-1.example\n", 1, 1, "host-1.example", NULL },
	{ "wrong magic", "loom-lease 2\nepoch: 1\nholder: a\n", -1, 0, NULL, "is damaged" },
	{ "epoch zero", "loom-lease 1\nepoch: 0\nholder: a\n", -1, 0, NULL, "is damaged" },
	{ "epoch not a number", "loom-lease 1\nepoch: 1x\nholder: a\n", -1, 0, NULL, "is damaged" },
	{ "no holder", "loom-lease 1\nepoch: 3\n", -1, 0, NULL, "is damaged" },
	{ "empty file", "", -1, 0, NULL, "is damaged" },
};

static void test_lease_read(void **state)
{
	fixture_t *f = *state;
	for (size_t i = 0; i < sizeof read_cases / sizeof read_cases[0]; i++) {
		const read_case_t *c = &read_cases[i];
		char sub[1024];
		snprintf(sub, sizeof sub, "%s/%zu", f->dir, i);
		assert_int_equal(mkdir(sub, 0755), 0);
		if (c->text)
			write_text(sub, "lease", c->text);
		loom_lease_t l;
		char *err = NULL;
		int rc = loom_lease_read(sub, &l, &err);
		if (rc != c->want_rc)
			fail_msg("%s: rc %d, want %d (%s)", c->label, rc, c->want_rc, err ? err : "");
		if (rc == 1) {
			assert_int_equal(l.epoch, c->epoch);
			assert_string_equal(l.holder, c->holder);
		}
		if (rc < 0 && strstr(err, c->error) == NULL)
			fail_msg("%s: error '%s' lacks '%s'", c->label, err, c->error);
		free(err);
	}
}

static void test_lease_write_read(void **state)
{
	fixture_t *f = *state;
	loom_lease_t l = { .epoch = 42, .since = 1763716000 };
	strcpy(l.holder, "standby-1");
	char *err = NULL;
	assert_int_equal(loom_lease_write(f->dir, &l, &err), 0);
	loom_lease_t back;
	assert_int_equal(loom_lease_read(f->dir, &back, &err), 1);
	assert_int_equal(back.epoch, 42);
	assert_string_equal(back.holder, "standby-1");
	assert_int_equal(back.since, 1763716000);
}

/* ---- the fence ----------------------------------------------------------------------------- */

static void bump(const char *dir, unsigned long long epoch, const char *holder)
{
	loom_lease_t l = { .epoch = epoch, .since = 1763716000 };
	snprintf(l.holder, sizeof l.holder, "%s", holder);
	char *err = NULL;
	assert_int_equal(loom_lease_write(dir, &l, &err), 0);
}

static void test_fence_takes_and_holds(void **state)
{
	fixture_t *f = *state;
	loom_fence_t *fa = NULL, *fa2 = NULL, *fb = NULL;
	char *err = NULL;
	/* the first process of an installation takes epoch 1 */
	assert_int_equal(loom_fence_new(f->dir, "a", &fa, &err), 0);
	assert_int_equal(loom_fence_epoch(fa), 1);
	/* another process of the same host holds the same lease */
	assert_int_equal(loom_fence_new(f->dir, "a", &fa2, &err), 0);
	assert_int_equal(loom_fence_epoch(fa2), 1);
	/* a process of another host is refused */
	assert_int_equal(loom_fence_new(f->dir, "b", &fb, &err), -1);
	assert_null(fb);
	assert_non_null(strstr(err, "fenced: host 'a' holds the lease (epoch 1 since "));
	assert_non_null(strstr(err, "not this host 'b'"));
	free(err);
	err = NULL;
	const char *cerr;
	assert_int_equal(loom_fence_check(fa, 0, &cerr), 0);
	/* the same content written again (same epoch, same holder) is no change */
	bump(f->dir, 1, "a");
	assert_int_equal(loom_fence_check(fa, 0, &cerr), 0);
	/* activation of b: a is fenced, and stays fenced */
	bump(f->dir, 2, "b");
	assert_int_equal(loom_fence_check(fa, 0, &cerr), -1);
	assert_non_null(strstr(cerr, "fenced: host 'b' took the lease (epoch 2 since "));
	assert_non_null(strstr(cerr, "this host 'a' wrote under epoch 1 and stops writing"));
	/* with an interval, a check right after the last one does not look:
	 * fa2 looked at creation, so within a minute it sees nothing yet */
	assert_int_equal(loom_fence_check(fa2, 60000, &cerr), 0);
	assert_int_equal(loom_fence_check(fa2, 0, &cerr), -1);
	/* once fenced, always: even if the file said a again */
	bump(f->dir, 1, "a");
	assert_int_equal(loom_fence_check(fa, 0, &cerr), -1);
	loom_fence_destroy(&fa);
	loom_fence_destroy(&fa2);
	loom_fence_destroy(&fb);
	assert_null(fa);
}

static void test_fence_lease_removed(void **state)
{
	fixture_t *f = *state;
	loom_fence_t *fa = NULL;
	char *err = NULL;
	assert_int_equal(loom_fence_new(f->dir, "a", &fa, &err), 0);
	char path[1024];
	snprintf(path, sizeof path, "%s/lease", f->dir);
	assert_int_equal(unlink(path), 0);
	const char *cerr;
	assert_int_equal(loom_fence_check(fa, 0, &cerr), -1);
	assert_non_null(strstr(cerr, "fenced: cannot check lease"));
	loom_fence_destroy(&fa);
}

/* ---- stores: the fence before writes, secondary instances ----------------------------------- */

static int fenced_flag;
static int fence_cb(void *arg, const char **error_r)
{
	(void)arg;
	if (!fenced_flag)
		return 0;
	*error_r = "fenced: test";
	return -1;
}

static void test_store_fenced_write(void **state)
{
	fixture_t *f = *state;
	char path[1024];
	snprintf(path, sizeof path, "%s/s", f->dir);
	const char *const cfs[] = { "x", NULL };
	loom_store_t *s = NULL;
	char *err = NULL;
	assert_int_equal(loom_store_open(path, cfs, NULL, &s, &err), 0);
	loom_store_set_fence(fence_cb, NULL);
	const char *e;
	fenced_flag = 0;
	assert_int_equal(loom_store_put(s, 1, "k1", 2, "v", 1, &e), 0);
	fenced_flag = 1;
	assert_int_equal(loom_store_put(s, 1, "k2", 2, "v", 1, &e), -1);
	assert_non_null(strstr(e, "cannot write to store"));
	assert_non_null(strstr(e, "fenced: test"));
	assert_int_equal(loom_store_delete(s, 1, "k1", 2, &e), -1);
	loom_batch_t *b = loom_batch_new(s);
	loom_batch_put(b, 1, "k3", 2, "v", 1);
	assert_int_equal(loom_store_write(s, b, &e), -1);
	loom_batch_destroy(&b);
	void *v;
	size_t n;
	assert_int_equal(loom_store_get(s, 1, "k1", 2, &v, &n, &e), 1);
	free(v);
	assert_int_equal(loom_store_get(s, 1, "k2", 2, &v, &n, &e), 0);
	assert_int_equal(loom_store_get(s, 1, "k3", 2, &v, &n, &e), 0);
	loom_store_set_fence(NULL, NULL);
	loom_store_close(&s);
}

static void test_store_secondary(void **state)
{
	fixture_t *f = *state;
	char path[1024], sec[1024];
	snprintf(path, sizeof path, "%s/p", f->dir);
	snprintf(sec, sizeof sec, "%s/sec", f->dir);
	assert_int_equal(mkdir(sec, 0755), 0);
	const char *const cfs[] = { "x", "y", NULL };
	loom_store_t *p = NULL, *s = NULL;
	char *err = NULL;
	const char *e;
	assert_int_equal(loom_store_open(path, cfs, NULL, &p, &err), 0);
	assert_int_equal(loom_store_put(p, 2, "before", 6, "1", 1, &e), 0);
	loom_store_opts_t so;
	loom_store_opts_default(&so);
	so.secondary_path = sec;
	/* families come from the disk: the secondary names none */
	assert_int_equal(loom_store_open(path, NULL, &so, &s, &err), 0);
	int cy = loom_store_cf(s, "y");
	assert_true(cy > 0);
	void *v;
	size_t n;
	assert_int_equal(loom_store_get(s, cy, "before", 6, &v, &n, &e), 1);
	free(v);
	unsigned long long seq0 = loom_store_sequence(s);
	assert_int_equal(loom_store_put(p, 2, "after", 5, "2", 1, &e), 0);
	/* not seen until the secondary catches up */
	assert_int_equal(loom_store_get(s, cy, "after", 5, &v, &n, &e), 0);
	assert_int_equal(loom_store_catch_up(s, &e), 0);
	assert_int_equal(loom_store_get(s, cy, "after", 5, &v, &n, &e), 1);
	assert_memory_equal(v, "2", 1);
	free(v);
	assert_true(loom_store_sequence(s) > seq0);
	assert_int_equal(loom_store_sequence(s), loom_store_sequence(p));
	/* a secondary takes no write */
	assert_int_equal(loom_store_put(s, cy, "no", 2, "x", 1, &e), -1);
	assert_non_null(strstr(e, "opened read-only"));
	loom_store_close(&s);
	loom_store_close(&p);
	/* no store: a secondary does not create one */
	snprintf(path, sizeof path, "%s/absent", f->dir);
	assert_int_equal(loom_store_open(path, NULL, &so, &s, &err), -1);
	assert_non_null(strstr(err, "cannot open store"));
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lease_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease_write_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fence_takes_and_holds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fence_lease_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_fenced_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_secondary, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
