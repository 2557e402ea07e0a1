/* loom_store.h - the RocksDB wrapper every Loom process uses for its store.
 *
 * One store is one RocksDB directory owned by exactly one process, holding
 * named column families (created when missing). Writes that must survive a
 * crash go through a batch: one loom_batch per logical change, applied
 * atomically by loom_store_write(). With opts.sync (the default) a write
 * returns only once the WAL is on disk.
 *
 * Errors: functions return 0 (or 1/0 for found/not found) on success and -1
 * on failure with *error_r set to a message owned by the store, valid until
 * the next call on it. Messages name the operation and the store path:
 *   "cannot open store 'var/engine': IO error: lock var/engine/LOCK: ..."
 */
#ifndef LOOM_STORE_H
#define LOOM_STORE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct loom_store loom_store_t;
typedef struct loom_batch loom_batch_t;
typedef struct loom_iter loom_iter_t;

typedef struct loom_store_opts {
	bool create_if_missing;  /* create the directory and families (default true) */
	bool sync;               /* fsync the WAL on every write (default true) */
	bool read_only;          /* open read-only (loomctl inspection) */
	const char *secondary_path; /* non-NULL: open as a RocksDB secondary instance
	                          * (a warm standby: read-only, follows the primary
	                          * through loom_store_catch_up); its own info logs
	                          * go in this directory */
	size_t cache_bytes;      /* block cache size; 0 = RocksDB's default */
} loom_store_opts_t;

/* Fills opts with the defaults above. */
void loom_store_opts_default(loom_store_opts_t *opts);

/* Opens (creating if allowed) the store at path with the column families
 * named in cfs (NULL-terminated; "default" is implied and always index 0,
 * the families in cfs get indexes 1..n in order). Families that exist on
 * disk but are not named are opened too and kept, never dropped.
 * Returns 0 and *ret_store, or -1 with *ret_error (malloc'd, caller frees). */
int loom_store_open(const char *path, const char *const *cfs,
    const loom_store_opts_t *opts, loom_store_t **ret_store, char **ret_error);

/* A secondary store (opts.secondary_path) reads what the primary wrote
 * since the last call: the new WAL records and the new SST files. */
int loom_store_catch_up(loom_store_t *store, const char **error_r);
/* The newest sequence number the store sees (a secondary: as of its last
 * catch-up), to tell how far a standby follows its primary. */
unsigned long long loom_store_sequence(loom_store_t *store);

/* Fencing (docs/recovery.md, "Warm standby and activation"): check, when
 * set, runs before every write to a store opened read-write in this process
 * (loom_store_put/delete/write*) and refuses the write when it returns -1
 * (with *error_r). One per process: the daemon skeleton sets it to its
 * lease check. NULL removes it. */
void loom_store_set_fence(int (*check)(void *arg, const char **error_r), void *arg);

/* Closes the store (flushing nothing extra: the WAL already holds every
 * write) and sets *store_p to NULL. NULL is allowed. */
void loom_store_close(loom_store_t **store_p);

/* Index of the named column family, or -1. */
int loom_store_cf(const loom_store_t *store, const char *name);
/* Path the store was opened at (borrowed). */
const char *loom_store_path(const loom_store_t *store);

/* Looks key up in family cf. Returns 1 with *ret_val (malloc'd, caller
 * frees; NUL-terminated for convenience, not counted in *ret_len) when found,
 * 0 when absent, -1 on error. */
int loom_store_get(loom_store_t *store, int cf, const void *key, size_t klen,
    void **ret_val, size_t *ret_len, const char **error_r);
/* Single writes: each is its own atomic batch. */
int loom_store_put(loom_store_t *store, int cf, const void *key, size_t klen,
    const void *val, size_t vlen, const char **error_r);
int loom_store_delete(loom_store_t *store, int cf, const void *key, size_t klen,
    const char **error_r);

/* A batch of puts and deletes applied atomically by loom_store_write(). */
loom_batch_t *loom_batch_new(loom_store_t *store);
void loom_batch_destroy(loom_batch_t **batch_p);
void loom_batch_put(loom_batch_t *batch, int cf, const void *key, size_t klen,
    const void *val, size_t vlen);
void loom_batch_delete(loom_batch_t *batch, int cf, const void *key, size_t klen);
/* Deletes every key in [begin, end) of cf. */
void loom_batch_delete_range(loom_batch_t *batch, int cf, const void *begin,
    size_t blen, const void *end, size_t elen);
void loom_batch_clear(loom_batch_t *batch);
/* Number of operations queued. */
size_t loom_batch_count(const loom_batch_t *batch);
/* Applies the batch atomically (and durably with opts.sync). The batch is
 * left as it was; clear it to reuse it. */
int loom_store_write(loom_store_t *store, loom_batch_t *batch, const char **error_r);

/* Same with the durability chosen per write: sync=false survives a crash of
 * the process (the WAL is in the page cache) but not of the machine; a run
 * of many such writes ends with one sync=true write to make them all durable. */
int loom_store_write_ex(loom_store_t *store, loom_batch_t *batch, bool sync, const char **error_r);

/* Iterators see a consistent snapshot taken when created. */
loom_iter_t *loom_iter_new(loom_store_t *store, int cf);
/* Without a snapshot: sees the store as it is at each step; cheaper, for
 * short look-ups by one process that is the store's only writer. */
loom_iter_t *loom_iter_new_ex(loom_store_t *store, int cf, bool snapshot);
void loom_iter_destroy(loom_iter_t **iter_p);
void loom_iter_seek_first(loom_iter_t *iter);
/* Positions at the first key >= key. */
void loom_iter_seek(loom_iter_t *iter, const void *key, size_t klen);
bool loom_iter_valid(const loom_iter_t *iter);
void loom_iter_next(loom_iter_t *iter);
/* Borrowed until the iterator moves. */
const void *loom_iter_key(const loom_iter_t *iter, size_t *ret_len);
const void *loom_iter_value(const loom_iter_t *iter, size_t *ret_len);
/* 0 when iteration ended normally, -1 with *error_r when it hit an error. */
int loom_iter_status(loom_iter_t *iter, const char **error_r);

/* Writes a consistent checkpoint (hard links where possible) of the whole
 * store to dir, which must not exist. */
int loom_store_checkpoint(loom_store_t *store, const char *dir, const char **error_r);

/* Big-endian fixed-width integers, so keys sort numerically. */
void loom_store_put_u64be(unsigned char out[8], unsigned long long v);
unsigned long long loom_store_get_u64be(const unsigned char in[8]);

#endif
