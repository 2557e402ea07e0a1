/* loomctl_store.c - `loomctl store compare A B`: two stores object by object
 * (every column family, every key and value), for recovery drills: a
 * restored store against the original, a backup's copy against what was
 * restored from it. Both are opened read-only, so a store whose process runs
 * can be compared too (it is seen as it was at the open, as backup sees it).
 * --ignore-times compares the engine's cs and mv objects without their
 * timestamps, import generation and export run ids (see normalize()). */
#include "loomctl.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_store.h"
#include "sync.pb-c.h"

#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SHOWN 5

typedef struct side {
	const char *path;              /* the store's directory */
	char **cfs;                    /* its families as listed (with "default") */
	size_t n;                      /* how many */
	loom_store_t *store;           /* opened read-only */
} side_t;

static int side_open(side_t *s, const char *path, char **ret_error)
{
	s->path = path;
	char *probe = loom_sprintf("%s/CURRENT", path);
	bool is_store = access(probe, F_OK) == 0;
	free(probe);
	if (!is_store) {
		*ret_error = loom_sprintf("'%s' is not a store (no CURRENT file)", path);
		return -1;
	}
	rocksdb_options_t *o = rocksdb_options_create();
	char *rerr = NULL;
	s->cfs = rocksdb_list_column_families(o, path, &s->n, &rerr);
	rocksdb_options_destroy(o);
	if (rerr) {
		*ret_error = loom_sprintf("cannot list the families of store '%s': %s", path, rerr);
		rocksdb_free(rerr);
		s->cfs = NULL;
		return -1;
	}
	const char **named = loom_calloc(s->n + 1, sizeof *named);
	size_t k = 0;
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->cfs[i], "default") != 0)
			named[k++] = s->cfs[i];
	loom_store_opts_t ro;
	loom_store_opts_default(&ro);
	ro.read_only = true;
	ro.create_if_missing = false;
	int rc = loom_store_open(path, named, &ro, &s->store, ret_error);
	free(named);
	return rc;
}

static void side_close(side_t *s)
{
	loom_store_close(&s->store);
	if (s->cfs)
		rocksdb_list_column_families_destroy(s->cfs, s->n);
}

/* A key for a person: printable bytes as they are, others as \xHH, cut at 80. */
static void show_key(loom_buf_t *b, const unsigned char *k, size_t n)
{
	loom_buf_adds(b, "'");
	for (size_t i = 0; i < n && i < 80; i++) {
		if (k[i] >= 0x20 && k[i] < 0x7f && k[i] != '\'' && k[i] != '\\')
			loom_buf_printf(b, "%c", k[i]);
		else
			loom_buf_printf(b, "\\x%02x", k[i]);
	}
	loom_buf_adds(b, n > 80 ? "'..." : "'");
}

/* --ignore-times: the engine's objects with what says *when* (and in which
 * run or import generation) they were last synchronized cleared, so that an
 * installation rerun from a backup compares equal to the original when it
 * holds the same data. Returns the normalized encoding (malloc'd), or NULL
 * when the family is not one of them or the value does not decode. */
static uint8_t *normalize(const char *cf, const void *v, size_t vl, size_t *ret_len)
{
	ProtobufCMessage *m = NULL;
	if (strcmp(cf, "cs") == 0) {
		Loom__CsObject *o = loom__cs_object__unpack(NULL, vl, v);
		if (o == NULL)
			return NULL;
		o->connected_at = 0;
		o->changed_at = 0;
		o->seen_gen = 0;
		Loom__PendingExport *pe[2] = { o->pending_export, o->unconfirmed };
		for (int i = 0; i < 2; i++)
			if (pe[i]) {
				pe[i]->change_id = 0;
				pe[i]->run_id = 0;
			}
		m = &o->base;
	} else if (strcmp(cf, "mv") == 0) {
		Loom__MvObject *o = loom__mv_object__unpack(NULL, vl, v);
		if (o == NULL)
			return NULL;
		for (size_t i = 0; i < o->n_attrs; i++)
			o->attrs[i]->changed_at = 0;
		m = &o->base;
	} else {
		return NULL;
	}
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *out = loom_malloc(n ? n : 1);
	protobuf_c_message_pack(m, out);
	protobuf_c_message_free_unpacked(m, NULL);
	*ret_len = n;
	return out;
}

static bool values_equal(const char *cf, bool ignore_times, const void *a, size_t al, const void *b, size_t bl)
{
	if (al == bl && memcmp(a, b, al) == 0)
		return true;
	if (!ignore_times)
		return false;
	size_t na = 0, nb = 0;
	uint8_t *xa = normalize(cf, a, al, &na), *xb = normalize(cf, b, bl, &nb);
	bool eq = xa && xb && na == nb && memcmp(xa, xb, na) == 0;
	free(xa);
	free(xb);
	return eq;
}

static bool skip_cf(const char *name, char **skips, size_t nskips)
{
	for (size_t i = 0; i < nskips; i++)
		if (strcmp(skips[i], name) == 0)
			return true;
	return false;
}

/* Compares family name in both (either may lack it: then it counts as
 * empty). Adds the keys seen to *keys; returns the differences found. */
static long compare_cf(side_t *a, side_t *b, const char *name, bool ignore_times, size_t *keys, loom_buf_t *out,
    int *ret_err)
{
	int ca = loom_store_cf(a->store, name), cb = loom_store_cf(b->store, name);
	loom_iter_t *ia = ca >= 0 ? loom_iter_new(a->store, ca) : NULL;
	loom_iter_t *ib = cb >= 0 ? loom_iter_new(b->store, cb) : NULL;
	if (ia)
		loom_iter_seek_first(ia);
	if (ib)
		loom_iter_seek_first(ib);
	long only_a = 0, only_b = 0, differ = 0;
	size_t n = 0, shown = 0;
	loom_buf_t first = LOOM_BUF_INIT;
	for (;;) {
		bool va = ia && loom_iter_valid(ia), vb = ib && loom_iter_valid(ib);
		if (!va && !vb)
			break;
		size_t kla = 0, klb = 0;
		const unsigned char *ka = va ? loom_iter_key(ia, &kla) : NULL;
		const unsigned char *kb = vb ? loom_iter_key(ib, &klb) : NULL;
		int c;
		if (!va)
			c = 1;
		else if (!vb)
			c = -1;
		else {
			c = memcmp(ka, kb, kla < klb ? kla : klb);
			if (c == 0)
				c = kla < klb ? -1 : kla > klb ? 1 : 0;
		}
		n++;
		/* what differs is noted before the iterators move: the key is
		 * borrowed from the iterator */
		const char *what = NULL;
		size_t vla = 0, vlb = 0;
		if (c < 0) {
			only_a++;
			what = "only in A";
		} else if (c > 0) {
			only_b++;
			what = "only in B";
		} else {
			const void *xa = loom_iter_value(ia, &vla), *xb = loom_iter_value(ib, &vlb);
			if (!values_equal(name, ignore_times, xa, vla, xb, vlb)) {
				differ++;
				what = "value differs";
			}
		}
		if (what && shown < MAX_SHOWN) {
			loom_buf_printf(&first, "    %s ", name);
			if (c <= 0)
				show_key(&first, ka, kla);
			else
				show_key(&first, kb, klb);
			if (c == 0)
				loom_buf_printf(&first, ": %s (%zu and %zu bytes)\n", what, vla, vlb);
			else
				loom_buf_printf(&first, ": %s\n", what);
			shown++;
		}
		if (c <= 0)
			loom_iter_next(ia);
		if (c >= 0)
			loom_iter_next(ib);
	}
	const char *err = NULL;
	if ((ia && loom_iter_status(ia, &err) < 0) || (ib && loom_iter_status(ib, &err) < 0)) {
		fprintf(stderr, "loomctl store compare: cannot read family '%s': %s\n", name, err);
		*ret_err = 1;
	}
	loom_iter_destroy(&ia);
	loom_iter_destroy(&ib);
	long diffs = only_a + only_b + differ;
	if (diffs == 0)
		loom_buf_printf(out, "  %-12s %8zu keys equal\n", name, n);
	else
		loom_buf_printf(out, "  %-12s %8zu keys: %ld only in A, %ld only in B, %ld values differ\n%s", name, n,
		    only_a, only_b, differ, loom_buf_cstr(&first));
	loom_buf_release(&first);
	*keys += n;
	return diffs;
}

int ctl_store(ctl_t *ctl, int argc, char **argv)
{
	(void)ctl;
	if (argc < 2 || strcmp(argv[1], "compare") != 0) {
		fprintf(stderr, "loomctl store: expected compare STORE_A STORE_B [--skip-cf NAME]... [--ignore-times]\n");
		return 2;
	}
	const char *pa = NULL, *pb = NULL;
	char **skips = loom_calloc((size_t)argc, sizeof *skips);
	size_t nskips = 0;
	int status = 2;
	bool ignore_times = false;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--ignore-times") == 0) {
			ignore_times = true;
		} else if (strncmp(argv[i], "--skip-cf", 9) == 0 && (argv[i][9] == '\0' || argv[i][9] == '=')) {
			const char *v = ctl_option_value("store compare", argc, argv, &i, "--skip-cf", 9);
			if (v == NULL)
				goto out_free;
			skips[nskips++] = (char *)v;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "loomctl store compare: unknown option '%s'\n", argv[i]);
			goto out_free;
		} else if (pa == NULL) {
			pa = argv[i];
		} else if (pb == NULL) {
			pb = argv[i];
		} else {
			fprintf(stderr, "loomctl store compare: unexpected argument '%s'\n", argv[i]);
			goto out_free;
		}
	}
	if (pb == NULL) {
		fprintf(stderr, "loomctl store compare: expected two stores: STORE_A STORE_B\n");
		goto out_free;
	}
	side_t a = { 0 }, b = { 0 };
	char *err = NULL;
	status = 1;
	if (side_open(&a, pa, &err) < 0 || side_open(&b, pb, &err) < 0) {
		fprintf(stderr, "loomctl store compare: %s\n", err);
		free(err);
		goto out_close;
	}
	/* every family of either side, in A's order then B's extras */
	loom_buf_t out = LOOM_BUF_INIT;
	size_t keys = 0, fams = 0;
	long diffs = 0;
	int rerr = 0;
	for (int side = 0; side < 2; side++) {
		side_t *s = side ? &b : &a;
		for (size_t i = 0; i < s->n; i++) {
			const char *name = s->cfs[i];
			if (side == 1 && loom_store_cf(a.store, name) >= 0)
				continue;
			if (skip_cf(name, skips, nskips)) {
				loom_buf_printf(&out, "  %-12s skipped\n", name);
				continue;
			}
			fams++;
			diffs += compare_cf(&a, &b, name, ignore_times, &keys, &out, &rerr);
		}
	}
	printf("A = %s\nB = %s\n%s", pa, pb, loom_buf_cstr(&out));
	if (rerr)
		status = 1;
	else if (diffs) {
		printf("stores differ: %ld difference(s) in %zu keys of %zu families\n", diffs, keys, fams);
		status = 3;
	} else {
		printf("stores equal: %zu keys in %zu families, object by object\n", keys, fams);
		status = 0;
	}
	loom_buf_release(&out);
out_close:
	side_close(&a);
	side_close(&b);
out_free:
	free(skips);
	return status;
}
