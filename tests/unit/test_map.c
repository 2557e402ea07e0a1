/* test_map.c - the string-keyed hash map (lib/loom_map.c).
 *
 * A table of operation scripts (put / get / remove / count steps, each with
 * the wanted result) covers the basic contract, binary keys included; the
 * bulk tests check the map against a plain array model through growth,
 * tombstones and iteration, with and without removal of the current key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loom_alloc.h"
#include "loom_map.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Values are small integers cast to pointers; 0 is "no value" (NULL). */
#define V(n) ((void *)(uintptr_t)(n))

/* ---- operation scripts ---------------------------------------------------- */

typedef enum { OP_PUT, OP_GET, OP_REMOVE, OP_COUNT, OP_END } op_kind_t;

typedef struct op {
	op_kind_t kind;              /* what to do */
	const char *key;             /* key bytes */
	size_t klen;                 /* their length */
	uintptr_t value;             /* OP_PUT: the value stored */
	uintptr_t want;              /* returned value (or count) wanted */
} op_t;

/* Key from a string literal, embedded NULs included. */
#define K(lit) lit, sizeof(lit) - 1
#define PUT(k, v, w) { OP_PUT, K(k), v, w }
#define GET(k, w) { OP_GET, K(k), 0, w }
#define REMOVE(k, w) { OP_REMOVE, K(k), 0, w }
#define COUNT(w) { OP_COUNT, NULL, 0, 0, w }
#define END { OP_END, NULL, 0, 0, 0 }

typedef struct script {
	const char *label;           /* what the script shows */
	op_t ops[24];                /* steps, ended by END */
} script_t;

static const script_t scripts[] = {
	{ "empty map", { COUNT(0), GET("a", 0), REMOVE("a", 0), COUNT(0), END } },
	{ "put then get", { PUT("engine", 1, 0), GET("engine", 1), COUNT(1), GET("engin", 0),
	    GET("engine2", 0), GET("Engine", 0), END } },
	{ "replace returns the old value", { PUT("k", 1, 0), PUT("k", 2, 1), GET("k", 2), COUNT(1),
	    PUT("k", 3, 2), COUNT(1), END } },
	{ "remove returns the value", { PUT("a", 1, 0), PUT("b", 2, 0), REMOVE("a", 1), GET("a", 0),
	    GET("b", 2), COUNT(1), REMOVE("a", 0), COUNT(1), END } },
	{ "put after remove", { PUT("a", 1, 0), REMOVE("a", 1), PUT("a", 5, 0), GET("a", 5), COUNT(1), END } },
	{ "NULL value is stored but reads as absent", { PUT("a", 0, 0), COUNT(1), GET("a", 0), REMOVE("a", 0),
	    COUNT(0), END } },
	{ "empty key", { PUT("", 7, 0), GET("", 7), GET("a", 0), COUNT(1), REMOVE("", 7), COUNT(0), END } },
	{ "keys with NUL bytes", { PUT("a\0b", 1, 0), PUT("a\0c", 2, 0), PUT("a", 3, 0), PUT("a\0", 4, 0),
	    PUT("\0", 5, 0), PUT("\0\0", 6, 0), COUNT(6), GET("a\0b", 1), GET("a\0c", 2), GET("a", 3),
	    GET("a\0", 4), GET("\0", 5), GET("\0\0", 6), GET("", 0), REMOVE("a\0", 4), GET("a", 3), END } },
	{ "high bytes", { PUT("\xff\xfe", 1, 0), PUT("\xfe\xff", 2, 0), GET("\xff\xfe", 1), GET("\xfe\xff", 2), END } },
	{ "key is a prefix of another", { PUT("engine", 1, 0), PUT("engine@1", 2, 0), REMOVE("engine", 1),
	    GET("engine@1", 2), GET("engine", 0), END } },
};

static void test_script(void **state)
{
	const script_t *s = *state;
	loom_map_t *m = loom_map_new();
	assert_non_null(m);
	for (size_t i = 0; s->ops[i].kind != OP_END; i++) {
		const op_t *o = &s->ops[i];
		uintptr_t got = 0;
		const char *what = "";
		/* Each key lives in an exact heap copy, freed right away: the map
		 * must have copied it, and must never read past klen. */
		char *key = o->key ? loom_memdup(o->key, o->klen) : NULL;
		switch (o->kind) {
		case OP_PUT:
			got = (uintptr_t)loom_map_put(m, key, o->klen, V(o->value));
			what = "put";
			break;
		case OP_GET:
			got = (uintptr_t)loom_map_get(m, key, o->klen);
			what = "get";
			break;
		case OP_REMOVE:
			got = (uintptr_t)loom_map_remove(m, key, o->klen);
			what = "remove";
			break;
		case OP_COUNT:
			got = loom_map_count(m);
			what = "count";
			break;
		case OP_END:
			break;
		}
		if (key)
			memset(key, '#', o->klen);
		free(key);
		if (got != o->want)
			fail_msg("%s: step %zu (%s): got %zu, want %zu", s->label, i, what, (size_t)got, (size_t)o->want);
	}
	loom_map_destroy(&m);
	assert_null(m);
	loom_map_destroy(&m); /* NULL is fine */
}

static void test_string_macros(void **state)
{
	(void)state;
	loom_map_t *m = loom_map_new();
	assert_null(loom_map_puts(m, "engine", V(1)));
	assert_ptr_equal(loom_map_gets(m, "engine"), V(1));
	assert_ptr_equal(loom_map_get(m, "engine", 6), V(1));
	assert_null(loom_map_get(m, "engine", 7)); /* the NUL is a different key */
	assert_ptr_equal(loom_map_removes(m, "engine"), V(1));
	assert_int_equal(loom_map_count(m), 0);
	loom_map_destroy(&m);
}

/* ---- bulk: growth, tombstones, iteration ---------------------------------- */

enum { BULK = 100000 };

/* Key i as text, in buf; returns its length. Some keys carry a NUL byte. */
static size_t bulk_key(size_t i, char buf[32])
{
	int n = snprintf(buf, 32, "key-%zu", i);
	if (i % 7 == 0)
		buf[1] = '\0'; /* "k\0y-..." */
	return (size_t)n;
}

static void test_bulk_insert_remove(void **state)
{
	(void)state;
	loom_map_t *m = loom_map_new();
	char k[32];
	for (size_t i = 0; i < BULK; i++) {
		size_t n = bulk_key(i, k);
		if (loom_map_put(m, k, n, V(i + 1)) != NULL)
			fail_msg("fresh key %zu replaced something", i);
		if (loom_map_count(m) != i + 1)
			fail_msg("count %zu after %zu puts", loom_map_count(m), i + 1);
	}
	for (size_t i = 0; i < BULK; i++) {
		size_t n = bulk_key(i, k);
		if (loom_map_get(m, k, n) != V(i + 1))
			fail_msg("key %zu lost after growth", i);
	}
	/* Every other key removed: the table fills with tombstones. */
	for (size_t i = 0; i < BULK; i += 2) {
		size_t n = bulk_key(i, k);
		if (loom_map_remove(m, k, n) != V(i + 1))
			fail_msg("remove of key %zu returned the wrong value", i);
	}
	assert_int_equal(loom_map_count(m), BULK / 2);
	for (size_t i = 0; i < BULK; i++) {
		size_t n = bulk_key(i, k);
		void *want = i % 2 ? V(i + 1) : NULL;
		if (loom_map_get(m, k, n) != want)
			fail_msg("key %zu after removals: wrong value", i);
	}
	/* Churn over the tombstones: removed keys come back with new values,
	 * and then go again; lookups through long tombstone runs still work. */
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < BULK; i += 2) {
			size_t n = bulk_key(i, k);
			if (loom_map_put(m, k, n, V(i + 2)) != NULL)
				fail_msg("round %d: removed key %zu still there", round, i);
		}
		assert_int_equal(loom_map_count(m), BULK);
		for (size_t i = 0; i < BULK; i += 2) {
			size_t n = bulk_key(i, k);
			if (loom_map_remove(m, k, n) != V(i + 2))
				fail_msg("round %d: key %zu lost", round, i);
		}
		assert_int_equal(loom_map_count(m), BULK / 2);
	}
	for (size_t i = 1; i < BULK; i += 2) {
		size_t n = bulk_key(i, k);
		if (loom_map_get(m, k, n) != V(i + 1))
			fail_msg("key %zu lost in the churn", i);
	}
	/* Remove everything, then the map is empty and usable. */
	for (size_t i = 1; i < BULK; i += 2) {
		size_t n = bulk_key(i, k);
		assert_ptr_equal(loom_map_remove(m, k, n), V(i + 1));
	}
	assert_int_equal(loom_map_count(m), 0);
	size_t pos = 0;
	assert_false(loom_map_next(m, &pos, NULL, NULL, NULL));
	assert_null(loom_map_puts(m, "again", V(9)));
	assert_ptr_equal(loom_map_gets(m, "again"), V(9));
	loom_map_destroy(&m);
}

/* Many put/remove cycles on a small live set: without tombstone clean-up a
 * table this size would fill up and a lookup of a missing key never end. */
static void test_tombstone_churn(void **state)
{
	(void)state;
	loom_map_t *m = loom_map_new();
	char k[32];
	for (size_t i = 0; i < BULK; i++) {
		size_t n = bulk_key(i, k);
		assert_null(loom_map_put(m, k, n, V(i + 1)));
		if (i >= 5) {
			size_t n2 = bulk_key(i - 5, k);
			assert_ptr_equal(loom_map_remove(m, k, n2), V(i - 4));
		}
		assert_null(loom_map_gets(m, "never-there"));
	}
	assert_int_equal(loom_map_count(m), 5);
	loom_map_destroy(&m);
}

/* Walks the map and checks it holds exactly the keys i with live[i] set,
 * each once, with value i + 1. When remove_every > 0, removes the current
 * key of every remove_every-th step during the walk (and clears live[]). */
static void check_iteration(loom_map_t *m, bool *live, size_t nkeys, size_t remove_every,
    const char *label)
{
	unsigned char *seen = loom_calloc(nkeys, 1);
	size_t pos = 0, visits = 0, want = 0;
	const void *key;
	size_t klen;
	void *value;
	for (size_t i = 0; i < nkeys; i++)
		want += live[i];
	while (loom_map_next(m, &pos, &key, &klen, &value)) {
		size_t i = (size_t)(uintptr_t)value - 1;
		char k[32];
		if (i >= nkeys)
			fail_msg("%s: value %zu out of range", label, i + 1);
		size_t n = bulk_key(i, k);
		if (klen != n || memcmp(key, k, n) != 0)
			fail_msg("%s: key and value of entry %zu disagree", label, i);
		if (!live[i])
			fail_msg("%s: removed key %zu visited", label, i);
		if (seen[i]++)
			fail_msg("%s: key %zu visited twice", label, i);
		visits++;
		if (remove_every && visits % remove_every == 0) {
			if (loom_map_remove(m, key, klen) != value)
				fail_msg("%s: removing the current key %zu", label, i);
			live[i] = false;
		}
	}
	if (visits != want)
		fail_msg("%s: %zu visits, want %zu", label, visits, want);
	/* At the end it stays at the end. */
	assert_false(loom_map_next(m, &pos, &key, &klen, &value));
	free(seen);
}

static void test_iteration(void **state)
{
	(void)state;
	static const struct {
		const char *label;
		size_t nkeys;            /* keys inserted */
		size_t removed_every;    /* keys i with i % this == 0 removed before; 0: none */
		size_t remove_during;    /* remove every Nth visited key while iterating; 0: none */
	} cases[] = {
		{ "empty map", 0, 0, 0 },
		{ "one key", 1, 0, 0 },
		{ "small map", 10, 0, 0 },
		{ "after growth", 5000, 0, 0 },
		{ "with tombstones", 5000, 3, 0 },
		{ "remove every current key", 5000, 0, 1 },
		{ "remove every third current key", 5000, 0, 3 },
		{ "tombstones and removal while iterating", 5000, 2, 2 },
	};
	for (size_t c = 0; c < N_ELEMS(cases); c++) {
		const char *label = cases[c].label;
		size_t nkeys = cases[c].nkeys;
		loom_map_t *m = loom_map_new();
		bool *live = loom_calloc(nkeys ? nkeys : 1, sizeof *live);
		char k[32];
		for (size_t i = 0; i < nkeys; i++) {
			size_t n = bulk_key(i, k);
			assert_null(loom_map_put(m, k, n, V(i + 1)));
			live[i] = true;
		}
		if (cases[c].removed_every) {
			for (size_t i = 0; i < nkeys; i += cases[c].removed_every) {
				size_t n = bulk_key(i, k);
				assert_ptr_equal(loom_map_remove(m, k, n), V(i + 1));
				live[i] = false;
			}
		}
		check_iteration(m, live, nkeys, cases[c].remove_during, label);
		size_t left = 0;
		for (size_t i = 0; i < nkeys; i++)
			left += live[i];
		if (loom_map_count(m) != left)
			fail_msg("%s: count %zu, want %zu", label, loom_map_count(m), left);
		/* A second walk sees exactly what is left. */
		check_iteration(m, live, nkeys, 0, label);
		for (size_t i = 0; i < nkeys; i++) {
			size_t n = bulk_key(i, k);
			if (loom_map_get(m, k, n) != (live[i] ? V(i + 1) : NULL))
				fail_msg("%s: key %zu wrong after the walk", label, i);
		}
		free(live);
		loom_map_destroy(&m);
	}
}

/* The optional outputs of loom_map_next may be NULL. */
static void test_next_null_outputs(void **state)
{
	(void)state;
	loom_map_t *m = loom_map_new();
	loom_map_puts(m, "a", V(1));
	loom_map_puts(m, "b", V(2));
	size_t pos = 0, n = 0;
	while (loom_map_next(m, &pos, NULL, NULL, NULL))
		n++;
	assert_int_equal(n, 2);
	loom_map_destroy(&m);
}

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_string_macros),
		cmocka_unit_test(test_bulk_insert_remove),
		cmocka_unit_test(test_tombstone_churn),
		cmocka_unit_test(test_iteration),
		cmocka_unit_test(test_next_null_outputs),
	};
	size_t n = N_ELEMS(fixed) + N_ELEMS(scripts);
	struct CMUnitTest *tests = loom_calloc(n, sizeof *tests);
	size_t k = 0;
	for (size_t i = 0; i < N_ELEMS(scripts); i++) {
		tests[k] = (struct CMUnitTest)cmocka_unit_test_prestate(test_script, (void *)&scripts[i]);
		tests[k++].name = scripts[i].label;
	}
	for (size_t i = 0; i < N_ELEMS(fixed); i++)
		tests[k++] = fixed[i];
	int failed = _cmocka_run_group_tests("test_map", tests, k, NULL, NULL);
	free(tests);
	return failed;
}
