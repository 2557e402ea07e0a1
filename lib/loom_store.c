/* loom_store.c - the RocksDB wrapper every Loom process uses for its store.
 *
 * Column families: index 0 is always "default", the families the caller
 * names get 1..n in the order given, and any family found on disk that was
 * not named comes after them, so a store is never opened without one of its
 * families (RocksDB refuses that) and none is ever dropped.
 *
 * Error text lives in the object that failed (store or iterator) and is
 * replaced by the next failure or freed when the object goes away.
 */
#include "loom_store.h"
#include "loom_alloc.h"
#include "loom_buf.h"

#include <rocksdb/c.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CACHE_BYTES ((size_t)64 << 20)
/* A write-heavy store on a small (2-core) box. */
#define BACKGROUND_JOBS 2
#define BLOOM_BITS_PER_KEY 10.0

struct loom_store {
	char *path;                              /* directory the store was opened at */
	rocksdb_t *db;                           /* the open database */
	rocksdb_readoptions_t *read_opts;        /* options for point lookups */
	rocksdb_writeoptions_t *write_opts;      /* options for writes (sync per opts.sync) */
	rocksdb_writeoptions_t *write_opts_sync;   /* fsync the WAL */
	rocksdb_writeoptions_t *write_opts_nosync; /* WAL in the page cache: survives a process crash */
	bool sync_default;                         /* opts.sync */
	char **cf_names;                         /* family names, by Loom index */
	rocksdb_column_family_handle_t **cf;     /* family handles, by Loom index */
	int ncf;                                 /* number of families open */
	char *error;                             /* last error message, owned here */
	bool writable;                           /* opened read-write (fenced writes) */
};

/* The process's fence: checked before every write to a writable store. */
static int (*fence_check)(void *arg, const char **error_r);
static void *fence_arg;                      /* fence_check's argument */

void loom_store_set_fence(int (*check)(void *arg, const char **error_r), void *arg)
{
	fence_check = check;
	fence_arg = arg;
}

struct loom_batch {
	loom_store_t *store;                     /* store whose families the batch names */
	rocksdb_writebatch_t *wb;                /* operations queued so far */
	int bad_cf;                              /* first unknown family index queued */
	bool has_bad_cf;                         /* an operation named an unknown family */
};

struct loom_iter {
	loom_store_t *store;                     /* store being read */
	const rocksdb_snapshot_t *snapshot;      /* view taken when the iterator was made */
	rocksdb_readoptions_t *read_opts;        /* read options pinned to snapshot */
	rocksdb_iterator_t *it;                  /* the RocksDB iterator */
	char *error;                             /* last status message, owned here */
};

static char *vformat(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static char *vformat(const char *fmt, va_list ap)
{
	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_vprintf(&b, fmt, ap);
	return loom_buf_steal(&b);
}

/* Replaces the store's error message and hands it out; returns -1. */
static int store_fail(loom_store_t *store, const char **error_r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int store_fail(loom_store_t *store, const char **error_r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = vformat(fmt, ap);
	va_end(ap);
	free(store->error);
	store->error = msg;
	if (error_r != NULL)
		*error_r = msg;
	return -1;
}

/* Turns a RocksDB error (which it frees) into the store's message. */
static int store_fail_rocks(loom_store_t *store, const char **error_r, const char *what,
    char *rerr)
{
	store_fail(store, error_r, "cannot %s store '%s': %s", what, store->path, rerr);
	rocksdb_free(rerr);
	return -1;
}

static bool cf_ok(const loom_store_t *store, int cf)
{
	return cf >= 0 && cf < store->ncf;
}

void loom_store_opts_default(loom_store_opts_t *opts)
{
	opts->create_if_missing = true;
	opts->sync = true;
	opts->read_only = false;
	opts->secondary_path = NULL;
	/* The header keeps 0 for "RocksDB's own default"; Loom's default is an
	 * explicit cache large enough for the working set of a small store. */
	opts->cache_bytes = DEFAULT_CACHE_BYTES;
}

/* RocksDB's lock errors: another process holds the fcntl lock ("While lock
 * file"), or this process already has the store open ("lock hold by current
 * process"). Either way the LOCK file is named. */
static bool is_lock_error(const char *path, const char *rerr)
{
	if (strstr(rerr, "While lock file") == NULL &&
	    strstr(rerr, "lock hold by current process") == NULL)
		return false;
	char *lock = loom_sprintf("%s/LOCK", path);
	bool named = strstr(rerr, lock) != NULL;
	free(lock);
	return named;
}

static rocksdb_options_t *make_options(const loom_store_opts_t *opts)
{
	rocksdb_options_t *o = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(o, opts->create_if_missing);
	rocksdb_options_set_create_missing_column_families(o, opts->create_if_missing);
	rocksdb_options_increase_parallelism(o, BACKGROUND_JOBS);
	rocksdb_options_set_max_background_jobs(o, BACKGROUND_JOBS);
	rocksdb_options_set_compaction_style(o, rocksdb_level_compaction);
	rocksdb_options_set_level_compaction_dynamic_level_bytes(o, 1);
	rocksdb_options_set_compression(o, rocksdb_lz4_compression);
	/* Spread SST and WAL writeback instead of stalling on big fsyncs. */
	rocksdb_options_set_bytes_per_sync(o, 1 << 20);
	rocksdb_options_set_wal_bytes_per_sync(o, 1 << 20);
	rocksdb_options_set_keep_log_file_num(o, 10);
	/* Memory: every family's memtables share one budget, flushed when it
	 * fills, instead of 64 MiB per family each. */
	rocksdb_options_set_write_buffer_size(o, 16 << 20);
	rocksdb_options_set_max_write_buffer_number(o, 3);
	rocksdb_options_set_db_write_buffer_size(o, 96 << 20);
	/* Bound the WAL: past this, the families still holding old log files
	 * are flushed so the files can go (small families rarely fill their
	 * memtables and would otherwise keep every log alive). */
	rocksdb_options_set_max_total_wal_size(o, 128 << 20);

	rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
	/* The table options take ownership of the filter policy. */
	rocksdb_block_based_options_set_filter_policy(t,
	    rocksdb_filterpolicy_create_bloom_full(BLOOM_BITS_PER_KEY));
	if (opts->cache_bytes > 0) {
		/* One cache for every family: the table options hold a reference. */
		rocksdb_cache_t *cache = rocksdb_cache_create_lru(opts->cache_bytes);
		rocksdb_block_based_options_set_block_cache(t, cache);
		rocksdb_cache_destroy(cache);
		/* Index and filter blocks stay with their table reader, not in the
		 * sharded cache: a large index block does not fit a cache shard and
		 * would be read and decompressed again on every look-up. */
	}
	rocksdb_options_set_block_based_table_factory(o, t);
	rocksdb_block_based_options_destroy(t);
	return o;
}

static bool name_in(char *const *names, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

/* Fills store->cf_names: "default", the requested families, then the ones
 * on disk nobody asked for. Returns -1 with *ret_error on a bad request. */
static int plan_families(loom_store_t *store, const char *const *cfs,
    const rocksdb_options_t *options, char **ret_error)
{
	int nreq = 0;
	while (cfs != NULL && cfs[nreq] != NULL)
		nreq++;

	/* A store that does not exist yet has nothing to list; any other
	 * failure here is met again, and reported, by the open itself. */
	char *rerr = NULL;
	size_t nlisted = 0;
	char **listed = rocksdb_list_column_families(options, store->path, &nlisted, &rerr);
	if (rerr != NULL) {
		/* Even then RocksDB hands back an (empty) array to destroy. */
		rocksdb_free(rerr);
		nlisted = 0;
	}

	store->cf_names = loom_calloc((size_t)nreq + nlisted + 1, sizeof *store->cf_names);
	store->cf_names[store->ncf++] = loom_strdup("default");
	for (int i = 0; i < nreq; i++) {
		if (name_in(store->cf_names, store->ncf, cfs[i])) {
			*ret_error = strcmp(cfs[i], "default") == 0
			    ? loom_sprintf("cannot open store '%s': column family 'default' "
			        "is always index 0 and must not be named", store->path)
			    : loom_sprintf("cannot open store '%s': column family '%s' named twice",
			        store->path, cfs[i]);
			rocksdb_list_column_families_destroy(listed, nlisted);
			return -1;
		}
		store->cf_names[store->ncf++] = loom_strdup(cfs[i]);
	}
	for (size_t i = 0; i < nlisted; i++)
		if (!name_in(store->cf_names, store->ncf, listed[i]))
			store->cf_names[store->ncf++] = loom_strdup(listed[i]);
	rocksdb_list_column_families_destroy(listed, nlisted);
	return 0;
}

static rocksdb_t *open_db(loom_store_t *store, const rocksdb_options_t *options,
    const loom_store_opts_t *opts, char **rerr)
{
	bool read_only = opts->read_only;
	const rocksdb_options_t **cf_opts = loom_calloc((size_t)store->ncf, sizeof *cf_opts);
	for (int i = 0; i < store->ncf; i++)
		cf_opts[i] = options;
	const char *const *names = (const char *const *)store->cf_names;
	rocksdb_t *db = opts->secondary_path != NULL
	    ? rocksdb_open_as_secondary_column_families(options, store->path, opts->secondary_path,
	        store->ncf, names, cf_opts, store->cf, rerr)
	    : read_only
	    ? rocksdb_open_for_read_only_column_families(options, store->path, store->ncf,
	        names, cf_opts, store->cf, 0, rerr)
	    : rocksdb_open_column_families(options, store->path, store->ncf,
	        names, cf_opts, store->cf, rerr);
	free(cf_opts);
	return db;
}

int loom_store_open(const char *path, const char *const *cfs,
    const loom_store_opts_t *opts, loom_store_t **ret_store, char **ret_error)
{
	loom_store_opts_t defaults;
	if (opts == NULL) {
		loom_store_opts_default(&defaults);
		opts = &defaults;
	}
	if (path == NULL) {
		*ret_error = loom_strdup("cannot open store: no path given");
		return -1;
	}
	if (*path == '\0') {
		*ret_error = loom_strdup("cannot open store '': empty path");
		return -1;
	}

	loom_store_t *store = loom_calloc(1, sizeof *store);
	store->path = loom_strdup(path);
	rocksdb_options_t *options = make_options(opts);
	if (opts->secondary_path != NULL) {
		/* A secondary must keep every table file open: it cannot reopen
		 * one the primary has since compacted away. */
		rocksdb_options_set_max_open_files(options, -1);
		rocksdb_options_set_create_if_missing(options, 0);
		rocksdb_options_set_create_missing_column_families(options, 0);
	}
	if (plan_families(store, cfs, options, ret_error) < 0)
		goto out_free_store;
	store->cf = loom_calloc((size_t)store->ncf, sizeof *store->cf);

	char *rerr = NULL;
	store->db = open_db(store, options, opts, &rerr);
	if (rerr != NULL && strstr(rerr, "is not linked with the binary") != NULL) {
		/* This librocksdb was built without LZ4: options are checked
		 * before anything touches the disk, so just try again. */
		rocksdb_free(rerr);
		rerr = NULL;
		rocksdb_options_set_compression(options, rocksdb_no_compression);
		store->db = open_db(store, options, opts, &rerr);
	}
	if (rerr != NULL) {
		if (is_lock_error(path, rerr))
			*ret_error = loom_sprintf("cannot open store '%s': already in use by "
			    "another process (LOCK held)", path);
		else
			*ret_error = loom_sprintf("cannot open store '%s': %s", path, rerr);
		rocksdb_free(rerr);
		store->db = NULL;
		goto out_free_store;
	}
	rocksdb_options_destroy(options);

	store->read_opts = rocksdb_readoptions_create();
	store->write_opts = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(store->write_opts, opts->sync);
	store->sync_default = opts->sync;
	store->writable = !opts->read_only && opts->secondary_path == NULL;
	store->write_opts_sync = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(store->write_opts_sync, 1);
	store->write_opts_nosync = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(store->write_opts_nosync, 0);
	*ret_store = store;
	return 0;

out_free_store:
	rocksdb_options_destroy(options);
	loom_store_close(&store);
	return -1;
}

void loom_store_close(loom_store_t **store_p)
{
	if (store_p == NULL || *store_p == NULL)
		return;
	loom_store_t *store = *store_p;
	/* Handles go before the database, as RocksDB requires. */
	for (int i = 0; store->cf != NULL && i < store->ncf; i++)
		if (store->cf[i] != NULL)
			rocksdb_column_family_handle_destroy(store->cf[i]);
	if (store->db != NULL)
		rocksdb_close(store->db);
	if (store->read_opts != NULL)
		rocksdb_readoptions_destroy(store->read_opts);
	if (store->write_opts != NULL)
		rocksdb_writeoptions_destroy(store->write_opts);
	if (store->write_opts_sync != NULL)
		rocksdb_writeoptions_destroy(store->write_opts_sync);
	if (store->write_opts_nosync != NULL)
		rocksdb_writeoptions_destroy(store->write_opts_nosync);
	for (int i = 0; store->cf_names != NULL && i < store->ncf; i++)
		free(store->cf_names[i]);
	free(store->cf_names);
	free(store->cf);
	free(store->error);
	free(store->path);
	free(store);
	*store_p = NULL;
}

int loom_store_cf(const loom_store_t *store, const char *name)
{
	if (store == NULL || name == NULL)
		return -1;
	for (int i = 0; i < store->ncf; i++)
		if (strcmp(store->cf_names[i], name) == 0)
			return i;
	return -1;
}

const char *loom_store_path(const loom_store_t *store)
{
	return store->path;
}

int loom_store_catch_up(loom_store_t *store, const char **error_r)
{
	char *rerr = NULL;
	rocksdb_try_catch_up_with_primary(store->db, &rerr);
	if (rerr != NULL)
		return store_fail_rocks(store, error_r, "catch up with the primary of", rerr);
	return 0;
}

unsigned long long loom_store_sequence(loom_store_t *store)
{
	return (unsigned long long)rocksdb_get_latest_sequence_number(store->db);
}

/* Every write passes here first: a store opened read-only or as a secondary
 * takes none, and a fenced process none either. */
static int write_allowed(loom_store_t *store, const char **error_r)
{
	if (!store->writable)
		return store_fail(store, error_r, "cannot write to store '%s': opened read-only", store->path);
	const char *ferr = NULL;
	if (fence_check != NULL && fence_check(fence_arg, &ferr) < 0)
		return store_fail(store, error_r, "cannot write to store '%s': %s", store->path,
		    ferr ? ferr : "fenced");
	return 0;
}

int loom_store_get(loom_store_t *store, int cf, const void *key, size_t klen,
    void **ret_val, size_t *ret_len, const char **error_r)
{
	if (!cf_ok(store, cf))
		return store_fail(store, error_r, "cannot read from store '%s': "
		    "no column family %d", store->path, cf);
	char *rerr = NULL;
	/* A pinnable slice tells "absent" from "empty value" without relying
	 * on what malloc(0) returns. */
	rocksdb_pinnableslice_t *v = rocksdb_get_pinned_cf(store->db, store->read_opts,
	    store->cf[cf], key, klen, &rerr);
	if (rerr != NULL)
		return store_fail_rocks(store, error_r, "read from", rerr);
	if (v == NULL)
		return 0;
	size_t len = 0;
	const char *data = rocksdb_pinnableslice_value(v, &len);
	char *copy = loom_malloc(len + 1);
	if (len > 0)
		memcpy(copy, data, len);
	copy[len] = '\0';
	rocksdb_pinnableslice_destroy(v);
	*ret_val = copy;
	if (ret_len != NULL)
		*ret_len = len;
	return 1;
}

int loom_store_put(loom_store_t *store, int cf, const void *key, size_t klen,
    const void *val, size_t vlen, const char **error_r)
{
	if (!cf_ok(store, cf))
		return store_fail(store, error_r, "cannot write to store '%s': "
		    "no column family %d", store->path, cf);
	if (write_allowed(store, error_r) < 0)
		return -1;
	char *rerr = NULL;
	rocksdb_put_cf(store->db, store->write_opts, store->cf[cf], key, klen, val, vlen, &rerr);
	if (rerr != NULL)
		return store_fail_rocks(store, error_r, "write to", rerr);
	return 0;
}

int loom_store_delete(loom_store_t *store, int cf, const void *key, size_t klen,
    const char **error_r)
{
	if (!cf_ok(store, cf))
		return store_fail(store, error_r, "cannot write to store '%s': "
		    "no column family %d", store->path, cf);
	if (write_allowed(store, error_r) < 0)
		return -1;
	char *rerr = NULL;
	rocksdb_delete_cf(store->db, store->write_opts, store->cf[cf], key, klen, &rerr);
	if (rerr != NULL)
		return store_fail_rocks(store, error_r, "write to", rerr);
	return 0;
}

loom_batch_t *loom_batch_new(loom_store_t *store)
{
	if (store == NULL)
		return NULL;
	loom_batch_t *batch = loom_calloc(1, sizeof *batch);
	batch->store = store;
	batch->wb = rocksdb_writebatch_create();
	return batch;
}

void loom_batch_destroy(loom_batch_t **batch_p)
{
	if (batch_p == NULL || *batch_p == NULL)
		return;
	loom_batch_t *batch = *batch_p;
	if (batch->wb != NULL)
		rocksdb_writebatch_destroy(batch->wb);
	free(batch);
	*batch_p = NULL;
}

/* An unknown family is a caller bug, but the batch functions return
 * nothing: remember it and refuse the whole batch in loom_store_write(). */
static bool batch_cf_ok(loom_batch_t *batch, int cf)
{
	if (cf_ok(batch->store, cf))
		return true;
	if (!batch->has_bad_cf) {
		batch->has_bad_cf = true;
		batch->bad_cf = cf;
	}
	return false;
}

void loom_batch_put(loom_batch_t *batch, int cf, const void *key, size_t klen,
    const void *val, size_t vlen)
{
	if (batch_cf_ok(batch, cf))
		rocksdb_writebatch_put_cf(batch->wb, batch->store->cf[cf], key, klen, val, vlen);
}

void loom_batch_delete(loom_batch_t *batch, int cf, const void *key, size_t klen)
{
	if (batch_cf_ok(batch, cf))
		rocksdb_writebatch_delete_cf(batch->wb, batch->store->cf[cf], key, klen);
}

void loom_batch_delete_range(loom_batch_t *batch, int cf, const void *begin,
    size_t blen, const void *end, size_t elen)
{
	if (batch_cf_ok(batch, cf))
		rocksdb_writebatch_delete_range_cf(batch->wb, batch->store->cf[cf],
		    begin, blen, end, elen);
}

void loom_batch_clear(loom_batch_t *batch)
{
	rocksdb_writebatch_clear(batch->wb);
	batch->has_bad_cf = false;
	batch->bad_cf = 0;
}

size_t loom_batch_count(const loom_batch_t *batch)
{
	int n = rocksdb_writebatch_count(batch->wb);
	return n > 0 ? (size_t)n : 0;
}

int loom_store_write(loom_store_t *store, loom_batch_t *batch, const char **error_r)
{
	return loom_store_write_ex(store, batch, store->sync_default, error_r);
}

int loom_store_write_ex(loom_store_t *store, loom_batch_t *batch, bool sync, const char **error_r)
{
	if (batch->store != store)
		return store_fail(store, error_r, "cannot write to store '%s': "
		    "batch was made for store '%s'", store->path, batch->store->path);
	if (batch->has_bad_cf)
		return store_fail(store, error_r, "cannot write to store '%s': "
		    "batch names column family %d, which is not open", store->path,
		    batch->bad_cf);
	if (write_allowed(store, error_r) < 0)
		return -1;
	char *rerr = NULL;
	rocksdb_write(store->db, sync ? store->write_opts_sync : store->write_opts_nosync, batch->wb, &rerr);
	if (rerr != NULL)
		return store_fail_rocks(store, error_r, "write to", rerr);
	return 0;
}

loom_iter_t *loom_iter_new(loom_store_t *store, int cf)
{
	return loom_iter_new_ex(store, cf, true);
}

loom_iter_t *loom_iter_new_ex(loom_store_t *store, int cf, bool snapshot)
{
	if (store == NULL || !cf_ok(store, cf))
		return NULL;
	loom_iter_t *iter = loom_calloc(1, sizeof *iter);
	iter->store = store;
	iter->read_opts = rocksdb_readoptions_create();
	if (snapshot) {
		iter->snapshot = rocksdb_create_snapshot(store->db);
		rocksdb_readoptions_set_snapshot(iter->read_opts, iter->snapshot);
	}
	iter->it = rocksdb_create_iterator_cf(store->db, iter->read_opts, store->cf[cf]);
	return iter;
}

void loom_iter_destroy(loom_iter_t **iter_p)
{
	if (iter_p == NULL || *iter_p == NULL)
		return;
	loom_iter_t *iter = *iter_p;
	/* The iterator reads through the snapshot: it goes first. */
	if (iter->it != NULL)
		rocksdb_iter_destroy(iter->it);
	if (iter->snapshot != NULL)
		rocksdb_release_snapshot(iter->store->db, iter->snapshot);
	if (iter->read_opts != NULL)
		rocksdb_readoptions_destroy(iter->read_opts);
	free(iter->error);
	free(iter);
	*iter_p = NULL;
}

void loom_iter_seek_first(loom_iter_t *iter)
{
	rocksdb_iter_seek_to_first(iter->it);
}

void loom_iter_seek(loom_iter_t *iter, const void *key, size_t klen)
{
	rocksdb_iter_seek(iter->it, key, klen);
}

bool loom_iter_valid(const loom_iter_t *iter)
{
	return rocksdb_iter_valid(iter->it) != 0;
}

void loom_iter_next(loom_iter_t *iter)
{
	if (rocksdb_iter_valid(iter->it))
		rocksdb_iter_next(iter->it);
}

const void *loom_iter_key(const loom_iter_t *iter, size_t *ret_len)
{
	size_t len = 0;
	const char *key = rocksdb_iter_valid(iter->it) ? rocksdb_iter_key(iter->it, &len) : NULL;
	if (ret_len != NULL)
		*ret_len = len;
	return key;
}

const void *loom_iter_value(const loom_iter_t *iter, size_t *ret_len)
{
	size_t len = 0;
	const char *val = rocksdb_iter_valid(iter->it) ? rocksdb_iter_value(iter->it, &len) : NULL;
	if (ret_len != NULL)
		*ret_len = len;
	return val;
}

int loom_iter_status(loom_iter_t *iter, const char **error_r)
{
	char *rerr = NULL;
	rocksdb_iter_get_error(iter->it, &rerr);
	if (rerr == NULL)
		return 0;
	free(iter->error);
	iter->error = loom_sprintf("cannot iterate store '%s': %s", iter->store->path, rerr);
	rocksdb_free(rerr);
	if (error_r != NULL)
		*error_r = iter->error;
	return -1;
}

int loom_store_checkpoint(loom_store_t *store, const char *dir, const char **error_r)
{
	if (dir == NULL || *dir == '\0')
		return store_fail(store, error_r, "cannot checkpoint store '%s': "
		    "no directory given", store->path);
	char *rerr = NULL;
	rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(store->db, &rerr);
	if (rerr == NULL) {
		/* log_size_for_flush 0: flush the memtables first, so the
		 * checkpoint holds the data in SST files, not only in a WAL. */
		rocksdb_checkpoint_create(cp, dir, 0, &rerr);
		rocksdb_checkpoint_object_destroy(cp);
	}
	if (rerr != NULL) {
		store_fail(store, error_r, "cannot checkpoint store '%s' to '%s': %s",
		    store->path, dir, rerr);
		rocksdb_free(rerr);
		return -1;
	}
	return 0;
}

void loom_store_put_u64be(unsigned char out[8], unsigned long long v)
{
	for (int i = 7; i >= 0; i--) {
		out[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

unsigned long long loom_store_get_u64be(const unsigned char in[8])
{
	unsigned long long v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | in[i];
	return v;
}
