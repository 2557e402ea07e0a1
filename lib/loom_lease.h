/* loom_lease.h - the primary's lease: which host may write the stores
 * (docs/recovery.md, "Warm standby and activation").
 *
 * One small file, STATE_DIR/lease, on the same (shared) storage as the
 * stores:
 *
 *   loom-lease 1
 *   epoch: 2
 *   holder: b
 *   since: 1763716000
 *
 * The epoch only grows. `loomctl activate` on a standby host writes
 * epoch+1 with itself as holder; that is what fences the old primary. A
 * process that writes a store holds a loom_fence_t: it remembers the epoch
 * it started under and refuses to write once the file says otherwise.
 */
#ifndef LOOM_LEASE_H
#define LOOM_LEASE_H

#include <stdbool.h>

typedef struct loom_lease {
	unsigned long long epoch;  /* grows by one at every activation */
	char holder[128];          /* the host that may write the stores */
	long long since;           /* when it took the lease (unix seconds) */
} loom_lease_t;

typedef struct loom_fence loom_fence_t;

/* This host's name for the lease: name if non-NULL and non-empty, else
 * $LOOM_HOST, else the operating system's host name (borrowed, static). */
const char *loom_lease_host(const char *name);

/* Reads STATE_DIR/lease. Returns 1 with *ret_lease, 0 when there is no
 * lease yet, -1 with *ret_error (malloc'd) when it cannot be read or parsed. */
int loom_lease_read(const char *state_dir, loom_lease_t *ret_lease, char **ret_error);
/* Replaces STATE_DIR/lease atomically (temporary, fsync, rename, fsync of
 * the directory). Returns 0 or -1 with *ret_error. */
int loom_lease_write(const char *state_dir, const loom_lease_t *lease, char **ret_error);

/* A process about to write the stores of state_dir as host: takes the lease
 * when there is none (epoch 1), accepts it when host holds it, and refuses
 * (-1, *ret_error: "fenced: ...") when another host holds it. */
int loom_fence_new(const char *state_dir, const char *host, loom_fence_t **ret_fence, char **ret_error);
void loom_fence_destroy(loom_fence_t **fence_p);
/* 0 while the lease is still this process's; -1 with *error_r (owned by
 * the fence) once another epoch was written. The file is looked at (one
 * stat, re-read only when it changed) at most every interval_ms; with 0
 * on every call. */
int loom_fence_check(loom_fence_t *fence, long long interval_ms, const char **error_r);
/* The epoch the fence holds. */
unsigned long long loom_fence_epoch(const loom_fence_t *fence);

#endif
