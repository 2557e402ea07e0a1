/* test_store.c - the RocksDB store wrapper, against a real RocksDB in a
 * temporary directory per test.
 *
 * The "in use by another process" case re-runs this program as
 * `test_store --hold PATH`: the child opens the store, says "ready" on
 * stdout and keeps it open until its stdin closes.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loom_store.h"

typedef struct fixture {
	char dir[64];   /* mkdtemp directory, removed in teardown */
	char path[128]; /* store path inside dir */
} fixture_t;

/* A key or value: bytes and their length (may hold NULs). */
typedef struct blob {
	const char *p; /* bytes */
	size_t n;      /* length */
} blob_t;

#define BLOB(s) { (s), sizeof(s) - 1 }

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(p);
}

static int setup(void **state)
{
	fixture_t *f = calloc(1, sizeof *f);
	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof f->dir, "/tmp/loom-store-test-XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof f->path, "%s/store", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture_t *f = *state;
	int rc = nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return rc;
}

static loom_store_t *open_opts(const char *path, const char *const *cfs,
    const loom_store_opts_t *opts)
{
	loom_store_t *store = NULL;
	char *err = NULL;
	if (loom_store_open(path, cfs, opts, &store, &err) < 0)
		fail_msg("%s", err);
	assert_non_null(store);
	return store;
}

static loom_store_t *open_ok(const char *path, const char *const *cfs)
{
	loom_store_opts_t opts;
	loom_store_opts_default(&opts);
	return open_opts(path, cfs, &opts);
}

/* Opens expecting failure; returns the malloc'd message. */
static char *open_fail(const char *path, const char *const *cfs,
    const loom_store_opts_t *opts)
{
	loom_store_t *store = (loom_store_t *)&store; /* must stay untouched */
	loom_store_t *const sentinel = store;
	char *err = NULL;
	assert_int_equal(loom_store_open(path, cfs, opts, &store, &err), -1);
	assert_ptr_equal(store, sentinel);
	assert_non_null(err);
	return err;
}

static void put_s(loom_store_t *store, int cf, const char *key, const char *val)
{
	const char *err = NULL;
	if (loom_store_put(store, cf, key, strlen(key), val, strlen(val), &err) < 0)
		fail_msg("%s", err);
}

/* Asserts key holds val (NULL: key absent). */
static void check_s(loom_store_t *store, int cf, const char *key, const char *val)
{
	void *got = NULL;
	size_t len = 0;
	const char *err = NULL;
	int rc = loom_store_get(store, cf, key, strlen(key), &got, &len, &err);
	if (rc < 0)
		fail_msg("%s", err);
	if (val == NULL) {
		assert_int_equal(rc, 0);
		return;
	}
	assert_int_equal(rc, 1);
	assert_string_equal(got, val);
	assert_int_equal(len, strlen(val));
	free(got);
}

/* Asserts the family holds exactly keys[0..n) in this order (values unchecked
 * when vals is NULL). */
static void check_keys(loom_store_t *store, int cf, const blob_t *keys,
    const blob_t *vals, size_t n)
{
	loom_iter_t *it = loom_iter_new(store, cf);
	assert_non_null(it);
	size_t i = 0;
	for (loom_iter_seek_first(it); loom_iter_valid(it); loom_iter_next(it), i++) {
		assert_true(i < n);
		size_t klen = 0;
		const void *k = loom_iter_key(it, &klen);
		assert_int_equal(klen, keys[i].n);
		if (klen)
			assert_memory_equal(k, keys[i].p, klen);
		if (vals != NULL) {
			size_t vlen = 0;
			const void *v = loom_iter_value(it, &vlen);
			assert_int_equal(vlen, vals[i].n);
			if (vlen)
				assert_memory_equal(v, vals[i].p, vlen);
		}
	}
	assert_int_equal(i, n);
	const char *err = NULL;
	assert_int_equal(loom_iter_status(it, &err), 0);
	loom_iter_destroy(&it);
	assert_null(it);
}

static void check_prefix(const char *msg, const char *prefix)
{
	if (strncmp(msg, prefix, strlen(prefix)) != 0)
		fail_msg("message '%s' does not start with '%s'", msg, prefix);
}

/* ---- open ---------------------------------------------------------- */

static void test_opts_default(void **state)
{
	(void)state;
	loom_store_opts_t opts;
	memset(&opts, 0xff, sizeof opts);
	loom_store_opts_default(&opts);
	assert_true(opts.create_if_missing);
	assert_true(opts.sync);
	assert_false(opts.read_only);
	assert_int_equal(opts.cache_bytes, 64u << 20);
}

static void test_open_bad_args(void **state)
{
	fixture_t *f = *state;
	static const char *const dup[] = { "users", "groups", "users", NULL };
	static const char *const dflt[] = { "users", "default", NULL };
	char dup_msg[256], dflt_msg[256];
	snprintf(dup_msg, sizeof dup_msg,
	    "cannot open store '%s': column family 'users' named twice", f->path);
	snprintf(dflt_msg, sizeof dflt_msg, "cannot open store '%s': column family "
	    "'default' is always index 0 and must not be named", f->path);
	const struct {
		const char *label;        /* case name */
		const char *path;         /* path given */
		const char *const *cfs;   /* families requested */
		const char *want;         /* exact message */
	} cases[] = {
		{ "NULL path", NULL, NULL, "cannot open store: no path given" },
		{ "empty path", "", NULL, "cannot open store '': empty path" },
		{ "family named twice", f->path, dup, dup_msg },
		{ "default named", f->path, dflt, dflt_msg },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *err = open_fail(cases[i].path, cases[i].cfs, NULL);
		if (strcmp(err, cases[i].want) != 0)
			fail_msg("%s: got '%s', want '%s'", cases[i].label, err, cases[i].want);
		free(err);
	}
	/* Nothing was created for the refused requests. */
	struct stat st;
	assert_int_equal(stat(f->path, &st), -1);
}

static void test_open_no_create(void **state)
{
	fixture_t *f = *state;
	loom_store_opts_t opts;
	loom_store_opts_default(&opts);
	opts.create_if_missing = false;
	char prefix[256];
	snprintf(prefix, sizeof prefix, "cannot open store '%s': ", f->path);

	char *err = open_fail(f->path, NULL, &opts);
	check_prefix(err, prefix);
	free(err);

	/* An existing store does not grow families it was not allowed to. */
	static const char *const users[] = { "users", NULL };
	static const char *const more[] = { "users", "groups", NULL };
	loom_store_t *store = open_ok(f->path, users);
	loom_store_close(&store);
	assert_null(store);
	store = open_opts(f->path, users, &opts);
	loom_store_close(&store);
	err = open_fail(f->path, more, &opts);
	check_prefix(err, prefix);
	free(err);
}

static void test_open_families_reopen(void **state)
{
	fixture_t *f = *state;
	static const char *const cfs[] = { "users", "groups", "links", NULL };
	loom_store_t *store = open_ok(f->path, cfs);
	assert_string_equal(loom_store_path(store), f->path);
	assert_int_equal(loom_store_cf(store, "default"), 0);
	assert_int_equal(loom_store_cf(store, "users"), 1);
	assert_int_equal(loom_store_cf(store, "groups"), 2);
	assert_int_equal(loom_store_cf(store, "links"), 3);
	assert_int_equal(loom_store_cf(store, "nope"), -1);
	assert_int_equal(loom_store_cf(store, NULL), -1);
	put_s(store, 0, "k", "in default");
	put_s(store, 1, "k", "in users");
	put_s(store, 2, "k", "in groups");
	put_s(store, 3, "k", "in links");
	loom_store_close(&store);

	/* Same request: same indexes, data kept. */
	store = open_ok(f->path, cfs);
	assert_int_equal(loom_store_cf(store, "users"), 1);
	assert_int_equal(loom_store_cf(store, "links"), 3);
	check_s(store, 0, "k", "in default");
	check_s(store, 1, "k", "in users");
	check_s(store, 2, "k", "in groups");
	check_s(store, 3, "k", "in links");
	loom_store_close(&store);

	/* Indexes follow the request order; the data follows the name. */
	static const char *const reordered[] = { "links", "users", "groups", NULL };
	store = open_ok(f->path, reordered);
	assert_int_equal(loom_store_cf(store, "links"), 1);
	assert_int_equal(loom_store_cf(store, "users"), 2);
	assert_int_equal(loom_store_cf(store, "groups"), 3);
	check_s(store, 1, "k", "in links");
	check_s(store, 2, "k", "in users");
	check_s(store, 3, "k", "in groups");
	loom_store_close(&store);
}

static void test_open_extra_family_kept(void **state)
{
	fixture_t *f = *state;
	static const char *const ab[] = { "a", "b", NULL };
	static const char *const a[] = { "a", NULL };
	static const char *const b_c[] = { "b", "c", NULL };
	loom_store_t *store = open_ok(f->path, ab);
	put_s(store, 2, "kb", "vb");
	loom_store_close(&store);

	/* "b" is not asked for: it is opened after the requested ones. */
	store = open_ok(f->path, a);
	assert_int_equal(loom_store_cf(store, "a"), 1);
	assert_int_equal(loom_store_cf(store, "b"), 2);
	check_s(store, 2, "kb", "vb");
	loom_store_close(&store);

	/* No families requested at all: everything on disk still opens. */
	store = open_ok(f->path, NULL);
	assert_int_equal(loom_store_cf(store, "default"), 0);
	assert_true(loom_store_cf(store, "a") > 0);
	assert_true(loom_store_cf(store, "b") > 0);
	loom_store_close(&store);

	/* A new family is created; the unrequested "a" comes after it. */
	store = open_ok(f->path, b_c);
	assert_int_equal(loom_store_cf(store, "b"), 1);
	assert_int_equal(loom_store_cf(store, "c"), 2);
	assert_int_equal(loom_store_cf(store, "a"), 3);
	check_s(store, 1, "kb", "vb");
	loom_store_close(&store);
}

/* ---- single writes ------------------------------------------------- */

static void test_put_get_delete(void **state)
{
	fixture_t *f = *state;
	static const char *const cfs[] = { "users", NULL };
	const struct {
		const char *label; /* case name */
		blob_t key;        /* key written */
		blob_t val;        /* value written */
	} cases[] = {
		{ "plain", BLOB("alice"), BLOB("Alice Liddell") },
		{ "empty value", BLOB("bob"), BLOB("") },
		{ "NULs in key and value", BLOB("c\0d\0"), BLOB("\0x\0y") },
		{ "empty key", BLOB(""), BLOB("root of nothing") },
		{ "high bytes", BLOB("\xff\xfe"), BLOB("\x80\x81\x00") },
	};
	const size_t n = sizeof cases / sizeof cases[0];
	for (int sync = 0; sync <= 1; sync++) {
		loom_store_opts_t opts;
		loom_store_opts_default(&opts);
		opts.sync = sync;
		loom_store_t *store = open_opts(f->path, cfs, &opts);
		const char *err = NULL;
		for (size_t i = 0; i < n; i++)
			assert_int_equal(loom_store_put(store, 1, cases[i].key.p, cases[i].key.n,
			    cases[i].val.p, cases[i].val.n, &err), 0);
		for (size_t i = 0; i < n; i++) {
			void *got = NULL;
			size_t len = 12345;
			int rc = loom_store_get(store, 1, cases[i].key.p, cases[i].key.n,
			    &got, &len, &err);
			if (rc != 1)
				fail_msg("%s: get returned %d", cases[i].label, rc);
			assert_int_equal(len, cases[i].val.n);
			if (len)
				assert_memory_equal(got, cases[i].val.p, len);
			assert_int_equal(((char *)got)[len], '\0');
			free(got);
			/* Families are separate. */
			got = (void *)&got;
			assert_int_equal(loom_store_get(store, 0, cases[i].key.p,
			    cases[i].key.n, &got, &len, &err), 0);
			assert_ptr_equal(got, (void *)&got);
		}
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(loom_store_delete(store, 1, cases[i].key.p,
			    cases[i].key.n, &err), 0);
			void *got = (void *)&got;
			size_t len = 777;
			assert_int_equal(loom_store_get(store, 1, cases[i].key.p,
			    cases[i].key.n, &got, &len, &err), 0);
			/* Outputs are written only on success. */
			assert_ptr_equal(got, (void *)&got);
			assert_int_equal(len, 777);
		}
		/* Deleting what is not there is not an error. */
		assert_int_equal(loom_store_delete(store, 1, "ghost", 5, &err), 0);
		check_s(store, 1, "ghost", NULL);
		loom_store_close(&store);
	}
}

static void test_bad_family(void **state)
{
	fixture_t *f = *state;
	loom_store_t *store = open_ok(f->path, NULL);
	const int bad[] = { 1, 7, -1 };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char want[256];
		const char *err = NULL;
		void *got = NULL;
		size_t len = 0;
		assert_int_equal(loom_store_get(store, bad[i], "k", 1, &got, &len, &err), -1);
		snprintf(want, sizeof want, "cannot read from store '%s': no column family %d",
		    f->path, bad[i]);
		assert_string_equal(err, want);
		snprintf(want, sizeof want, "cannot write to store '%s': no column family %d",
		    f->path, bad[i]);
		err = NULL;
		assert_int_equal(loom_store_put(store, bad[i], "k", 1, "v", 1, &err), -1);
		assert_string_equal(err, want);
		err = NULL;
		assert_int_equal(loom_store_delete(store, bad[i], "k", 1, &err), -1);
		assert_string_equal(err, want);
		assert_null(loom_iter_new(store, bad[i]));
	}
	/* error_r may be NULL. */
	assert_int_equal(loom_store_put(store, 9, "k", 1, "v", 1, NULL), -1);
	loom_store_close(&store);
}

/* ---- batches ------------------------------------------------------- */

static void test_batch_atomic(void **state)
{
	fixture_t *f = *state;
	static const char *const cfs[] = { "users", "groups", NULL };
	loom_store_t *store = open_ok(f->path, cfs);
	const int users = 1, groups = 2;
	const char *err = NULL;
	put_s(store, users, "u0", "old user");
	put_s(store, groups, "g0", "old group");

	loom_batch_t *b = loom_batch_new(store);
	assert_non_null(b);
	assert_int_equal(loom_batch_count(b), 0);
	loom_batch_put(b, users, "u1", 2, "new user", 8);
	loom_batch_put(b, groups, "g1", 2, "new group", 9);
	loom_batch_delete(b, users, "u0", 2);
	loom_batch_delete(b, groups, "g0", 2);
	assert_int_equal(loom_batch_count(b), 4);

	/* Nothing lands before the write. */
	check_s(store, users, "u1", NULL);
	check_s(store, users, "u0", "old user");

	assert_int_equal(loom_store_write(store, b, &err), 0);
	check_s(store, users, "u1", "new user");
	check_s(store, groups, "g1", "new group");
	check_s(store, users, "u0", NULL);
	check_s(store, groups, "g0", NULL);
	/* The batch is left as it was. */
	assert_int_equal(loom_batch_count(b), 4);
	loom_batch_clear(b);
	assert_int_equal(loom_batch_count(b), 0);
	assert_int_equal(loom_store_write(store, b, &err), 0);

	/* One bad operation refuses the whole batch: nothing is applied. */
	loom_batch_put(b, users, "u2", 2, "never", 5);
	loom_batch_delete(b, groups, "g1", 2);
	loom_batch_put(b, 42, "x", 1, "y", 1);
	assert_int_equal(loom_batch_count(b), 2);
	assert_int_equal(loom_store_write(store, b, &err), -1);
	char want[256];
	snprintf(want, sizeof want, "cannot write to store '%s': batch names column "
	    "family 42, which is not open", f->path);
	assert_string_equal(err, want);
	check_s(store, users, "u2", NULL);
	check_s(store, groups, "g1", "new group");

	/* Cleared, the batch is good again. */
	loom_batch_clear(b);
	loom_batch_put(b, users, "u2", 2, "now", 3);
	assert_int_equal(loom_store_write(store, b, &err), 0);
	check_s(store, users, "u2", "now");

	/* A batch only goes to the store it was made for. */
	char other_path[160];
	snprintf(other_path, sizeof other_path, "%s/other", f->dir);
	loom_store_t *other = open_ok(other_path, cfs);
	assert_int_equal(loom_store_write(other, b, &err), -1);
	check_prefix(err, "cannot write to store '");
	check_s(other, users, "u2", NULL);
	loom_store_close(&other);

	loom_batch_destroy(&b);
	assert_null(b);
	loom_store_close(&store);
}

static void test_delete_range(void **state)
{
	fixture_t *f = *state;
	static const char *const cfs[] = { "a", "b", NULL };
	loom_store_t *store = open_ok(f->path, cfs);
	unsigned char keys[20][8];
	loom_batch_t *b = loom_batch_new(store);
	for (unsigned i = 0; i < 20; i++) {
		loom_store_put_u64be(keys[i], i);
		loom_batch_put(b, 1, keys[i], 8, "v", 1);
		loom_batch_put(b, 2, keys[i], 8, "v", 1);
	}
	const char *err = NULL;
	assert_int_equal(loom_store_write(store, b, &err), 0);
	loom_batch_clear(b);

	loom_batch_delete_range(b, 1, keys[5], 8, keys[15], 8);
	assert_int_equal(loom_batch_count(b), 1);
	assert_int_equal(loom_store_write(store, b, &err), 0);
	loom_batch_destroy(&b);

	blob_t left[10], all[20];
	size_t nleft = 0;
	for (unsigned i = 0; i < 20; i++) {
		all[i] = (blob_t){ (const char *)keys[i], 8 };
		if (i < 5 || i >= 15)
			left[nleft++] = all[i];
	}
	check_keys(store, 1, left, NULL, nleft);   /* [5, 15) gone, 15 kept */
	check_keys(store, 2, all, NULL, 20);       /* other family untouched */
	loom_store_close(&store);
}

/* ---- iterators ----------------------------------------------------- */

static void test_u64be(void **state)
{
	(void)state;
	const struct {
		unsigned long long v;   /* value */
		unsigned char be[8];    /* its big-endian bytes */
	} cases[] = {
		{ 0, { 0, 0, 0, 0, 0, 0, 0, 0 } },
		{ 1, { 0, 0, 0, 0, 0, 0, 0, 1 } },
		{ 256, { 0, 0, 0, 0, 0, 0, 1, 0 } },
		{ 0x0102030405060708ULL, { 1, 2, 3, 4, 5, 6, 7, 8 } },
		{ ULLONG_MAX, { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff } },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		unsigned char out[8];
		loom_store_put_u64be(out, cases[i].v);
		assert_memory_equal(out, cases[i].be, 8);
		assert_true(loom_store_get_u64be(cases[i].be) == cases[i].v);
	}
}

static void test_iter_order_and_seek(void **state)
{
	fixture_t *f = *state;
	static const char *const cfs[] = { "bin", "num", NULL };
	loom_store_t *store = open_ok(f->path, cfs);
	const char *err = NULL;

	/* Binary keys, sorted bytewise (a prefix sorts first). */
	const blob_t sorted[] = {
		BLOB("\0"), BLOB("\0\0"), BLOB("\0\x01"), BLOB("a"), BLOB("a\0"),
		BLOB("a\0b"), BLOB("a\x01"), BLOB("b"), BLOB("\xff"),
	};
	const size_t nsorted = sizeof sorted / sizeof sorted[0];
	const size_t order[] = { 5, 0, 8, 3, 1, 7, 4, 2, 6 }; /* insertion order */
	for (size_t i = 0; i < nsorted; i++) {
		const blob_t *k = &sorted[order[i]];
		assert_int_equal(loom_store_put(store, 1, k->p, k->n, k->p, k->n, &err), 0);
	}
	check_keys(store, 1, sorted, sorted, nsorted);

	/* Big-endian u64 keys sort numerically, whatever the insertion order. */
	const unsigned long long nums[] = {
		65536, 1, ULLONG_MAX, 256, 0, 255, 1ULL << 32, ULLONG_MAX - 1, 65535,
		(1ULL << 40) + 5,
	};
	const size_t nnums = sizeof nums / sizeof nums[0];
	for (size_t i = 0; i < nnums; i++) {
		unsigned char k[8];
		loom_store_put_u64be(k, nums[i]);
		assert_int_equal(loom_store_put(store, 2, k, 8, "", 0, &err), 0);
	}
	loom_iter_t *it = loom_iter_new(store, 2);
	size_t seen = 0;
	unsigned long long prev = 0;
	for (loom_iter_seek_first(it); loom_iter_valid(it); loom_iter_next(it), seen++) {
		size_t klen = 0;
		const unsigned char *k = loom_iter_key(it, &klen);
		assert_int_equal(klen, 8);
		unsigned long long v = loom_store_get_u64be(k);
		if (seen > 0)
			assert_true(v > prev);
		prev = v;
	}
	assert_int_equal(seen, nnums);
	assert_true(prev == ULLONG_MAX);
	/* Past the end: no key, no value, no error; next stays put. */
	size_t len = 99;
	assert_null(loom_iter_key(it, &len));
	assert_int_equal(len, 0);
	assert_null(loom_iter_value(it, &len));
	loom_iter_next(it);
	assert_false(loom_iter_valid(it));
	assert_int_equal(loom_iter_status(it, &err), 0);
	loom_iter_destroy(&it);

	/* Seek lands on the first key >= the target. */
	const struct {
		const char *label;   /* case name */
		int cf;              /* family */
		blob_t target;       /* seek key */
		bool found;          /* a key is expected */
		blob_t want;         /* the key expected */
	} seeks[] = {
		{ "exact", 1, BLOB("a"), true, BLOB("a") },
		{ "between NUL keys", 1, BLOB("a\0a"), true, BLOB("a\0b") },
		{ "empty target", 1, BLOB(""), true, BLOB("\0") },
		{ "before a prefix", 1, BLOB("\0\0\0"), true, BLOB("\0\x01") },
		{ "past the end", 1, BLOB("\xff\x00"), false, BLOB("") },
		{ "u64 257", 2, { "\0\0\0\0\0\0\x01\x01", 8 }, true,
		  { "\0\0\0\0\0\0\xff\xff", 8 } },
		{ "u64 exact 256", 2, { "\0\0\0\0\0\0\x01\x00", 8 }, true,
		  { "\0\0\0\0\0\0\x01\x00", 8 } },
	};
	for (size_t i = 0; i < sizeof seeks / sizeof seeks[0]; i++) {
		it = loom_iter_new(store, seeks[i].cf);
		loom_iter_seek(it, seeks[i].target.p, seeks[i].target.n);
		if (loom_iter_valid(it) != seeks[i].found)
			fail_msg("%s: valid is %d", seeks[i].label, !seeks[i].found);
		if (seeks[i].found) {
			size_t klen = 0;
			const void *k = loom_iter_key(it, &klen);
			if (klen != seeks[i].want.n || memcmp(k, seeks[i].want.p, klen) != 0)
				fail_msg("%s: wrong key", seeks[i].label);
		}
		loom_iter_destroy(&it);
	}
	loom_store_close(&store);
}

static void test_iter_snapshot(void **state)
{
	fixture_t *f = *state;
	loom_store_t *store = open_ok(f->path, NULL);
	const char *err = NULL;
	put_s(store, 0, "k1", "v1");
	put_s(store, 0, "k2", "v2");

	loom_iter_t *old = loom_iter_new(store, 0);
	put_s(store, 0, "k0", "new");
	put_s(store, 0, "k2", "changed");
	assert_int_equal(loom_store_delete(store, 0, "k1", 2, &err), 0);
	loom_batch_t *b = loom_batch_new(store);
	loom_batch_put(b, 0, "k3", 2, "batched", 7);
	assert_int_equal(loom_store_write(store, b, &err), 0);
	loom_batch_destroy(&b);

	const blob_t old_keys[] = { BLOB("k1"), BLOB("k2") };
	const blob_t old_vals[] = { BLOB("v1"), BLOB("v2") };
	size_t i = 0;
	for (loom_iter_seek_first(old); loom_iter_valid(old); loom_iter_next(old), i++) {
		assert_true(i < 2);
		size_t klen = 0, vlen = 0;
		const void *k = loom_iter_key(old, &klen);
		const void *v = loom_iter_value(old, &vlen);
		assert_int_equal(klen, old_keys[i].n);
		assert_memory_equal(k, old_keys[i].p, klen);
		assert_int_equal(vlen, old_vals[i].n);
		assert_memory_equal(v, old_vals[i].p, vlen);
	}
	assert_int_equal(i, 2);
	loom_iter_destroy(&old);

	const blob_t new_keys[] = { BLOB("k0"), BLOB("k2"), BLOB("k3") };
	const blob_t new_vals[] = { BLOB("new"), BLOB("changed"), BLOB("batched") };
	check_keys(store, 0, new_keys, new_vals, 3);
	loom_store_close(&store);
}

/* ---- locking ------------------------------------------------------- */

static void test_in_use_same_process(void **state)
{
	fixture_t *f = *state;
	static const char *const cfs[] = { "users", NULL };
	loom_store_t *store = open_ok(f->path, cfs);
	char want[256];
	snprintf(want, sizeof want, "cannot open store '%s': already in use by another "
	    "process (LOCK held)", f->path);
	char *err = open_fail(f->path, cfs, NULL);
	assert_string_equal(err, want);
	free(err);
	loom_store_close(&store);
	/* Released on close. */
	store = open_ok(f->path, cfs);
	loom_store_close(&store);
}

/* `test_store --hold PATH`: open, say "ready", hold until stdin closes. */
static int hold_store(const char *path)
{
	loom_store_t *store = NULL;
	char *err = NULL;
	if (loom_store_open(path, NULL, NULL, &store, &err) < 0) {
		fprintf(stderr, "hold: %s\n", err);
		free(err);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	char buf[64];
	while (read(0, buf, sizeof buf) > 0)
		;
	loom_store_close(&store);
	return 0;
}

static void test_in_use_other_process(void **state)
{
	fixture_t *f = *state;
	int to_child[2], from_child[2];
	assert_int_equal(pipe(to_child), 0);
	assert_int_equal(pipe(from_child), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(to_child[0], 0);
		dup2(from_child[1], 1);
		close(to_child[0]); close(to_child[1]);
		close(from_child[0]); close(from_child[1]);
		execl("/proc/self/exe", "test_store", "--hold", f->path, (char *)NULL);
		_exit(127);
	}
	close(to_child[0]);
	close(from_child[1]);

	/* Wait for the child to hold the store (a real event, not a sleep). */
	char line[16] = { 0 };
	size_t got = 0;
	while (got < 6) {
		ssize_t n = read(from_child[0], line + got, 6 - got);
		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_memory_equal(line, "ready\n", 6);

	char want[256];
	snprintf(want, sizeof want, "cannot open store '%s': already in use by another "
	    "process (LOCK held)", f->path);
	char *err = open_fail(f->path, NULL, NULL);
	assert_string_equal(err, want);
	free(err);

	close(to_child[1]);
	close(from_child[0]);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	loom_store_t *store = open_ok(f->path, NULL);
	loom_store_close(&store);
}

/* ---- read-only ----------------------------------------------------- */

static void test_read_only(void **state)
{
	fixture_t *f = *state;
	static const char *const cfs[] = { "users", NULL };
	static const char *const missing[] = { "users", "nope", NULL };
	loom_store_opts_t ro;
	loom_store_opts_default(&ro);
	ro.read_only = true;
	char prefix[256];

	/* Nothing to open yet. */
	snprintf(prefix, sizeof prefix, "cannot open store '%s': ", f->path);
	char *oerr = open_fail(f->path, cfs, &ro);
	check_prefix(oerr, prefix);
	free(oerr);

	loom_store_t *store = open_ok(f->path, cfs);
	put_s(store, 1, "alice", "Alice");
	loom_store_close(&store);

	/* A family that is not there cannot be created read-only. */
	oerr = open_fail(f->path, missing, &ro);
	check_prefix(oerr, prefix);
	free(oerr);

	store = open_opts(f->path, cfs, &ro);
	check_s(store, 1, "alice", "Alice");
	const blob_t keys[] = { BLOB("alice") };
	check_keys(store, 1, keys, NULL, 1);

	snprintf(prefix, sizeof prefix, "cannot write to store '%s': ", f->path);
	const char *err = NULL;
	assert_int_equal(loom_store_put(store, 1, "bob", 3, "Bob", 3, &err), -1);
	check_prefix(err, prefix);
	assert_true(strlen(err) > strlen(prefix));
	err = NULL;
	assert_int_equal(loom_store_delete(store, 1, "alice", 5, &err), -1);
	check_prefix(err, prefix);
	loom_batch_t *b = loom_batch_new(store);
	loom_batch_put(b, 1, "carol", 5, "Carol", 5);
	err = NULL;
	assert_int_equal(loom_store_write(store, b, &err), -1);
	check_prefix(err, prefix);
	loom_batch_destroy(&b);
	loom_store_close(&store);

	store = open_ok(f->path, cfs);
	check_s(store, 1, "alice", "Alice");
	check_s(store, 1, "bob", NULL);
	check_s(store, 1, "carol", NULL);
	loom_store_close(&store);
}

/* ---- checkpoint ---------------------------------------------------- */

static void test_checkpoint(void **state)
{
	fixture_t *f = *state;
	static const char *const cfs[] = { "users", "groups", NULL };
	loom_store_t *store = open_ok(f->path, cfs);
	put_s(store, 1, "alice", "Alice");
	put_s(store, 1, "bob", "Bob");
	put_s(store, 2, "staff", "alice,bob");
	put_s(store, 0, "meta", "v1");

	char cp[160];
	snprintf(cp, sizeof cp, "%s/checkpoint", f->dir);
	const char *err = NULL;
	if (loom_store_checkpoint(store, cp, &err) < 0)
		fail_msg("%s", err);

	/* Later writes stay out of the checkpoint. */
	put_s(store, 1, "carol", "Carol");

	/* The directory must not exist. */
	char prefix[400];
	snprintf(prefix, sizeof prefix, "cannot checkpoint store '%s' to '%s': ", f->path, cp);
	err = NULL;
	assert_int_equal(loom_store_checkpoint(store, cp, &err), -1);
	check_prefix(err, prefix);
	err = NULL;
	assert_int_equal(loom_store_checkpoint(store, "", &err), -1);
	check_prefix(err, "cannot checkpoint store '");

	/* Opens (its own lock) while the original is still open. */
	loom_store_t *copy = open_ok(cp, cfs);
	const blob_t users[] = { BLOB("alice"), BLOB("bob") };
	const blob_t user_vals[] = { BLOB("Alice"), BLOB("Bob") };
	const blob_t groups[] = { BLOB("staff") };
	const blob_t group_vals[] = { BLOB("alice,bob") };
	const blob_t meta[] = { BLOB("meta") };
	check_keys(copy, 1, users, user_vals, 2);
	check_keys(copy, 2, groups, group_vals, 1);
	check_keys(copy, 0, meta, NULL, 1);
	check_s(copy, 1, "carol", NULL);
	loom_store_close(&copy);
	check_s(store, 1, "carol", "Carol");
	loom_store_close(&store);
}

/* ---- NULL safety --------------------------------------------------- */

static void test_null_safe(void **state)
{
	(void)state;
	loom_store_t *store = NULL;
	loom_batch_t *batch = NULL;
	loom_iter_t *iter = NULL;
	loom_store_close(NULL);
	loom_store_close(&store);
	loom_batch_destroy(NULL);
	loom_batch_destroy(&batch);
	loom_iter_destroy(NULL);
	loom_iter_destroy(&iter);
	assert_null(loom_batch_new(NULL));
	assert_null(loom_iter_new(NULL, 0));
	assert_int_equal(loom_store_cf(NULL, "default"), -1);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--hold") == 0)
		return hold_store(argv[2]);

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_opts_default),
		T(test_open_bad_args),
		T(test_open_no_create),
		T(test_open_families_reopen),
		T(test_open_extra_family_kept),
		T(test_put_get_delete),
		T(test_bad_family),
		T(test_batch_atomic),
		T(test_delete_range),
		cmocka_unit_test(test_u64be),
		T(test_iter_order_and_seek),
		T(test_iter_snapshot),
		T(test_in_use_same_process),
		T(test_in_use_other_process),
		T(test_read_only),
		T(test_checkpoint),
		cmocka_unit_test(test_null_safe),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
