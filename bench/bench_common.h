/* bench_common.h - helpers the benchmark programs share.
 *
 * Clock and sleep, number formatting, SIGINT/SIGTERM handling (a flag every
 * loop polls, and a message that names who sent the signal), CPU time from
 * /proc, the temporary directory (made in $TMPDIR, removed as a tree), flag
 * parsing and the paths of the binaries next to the running one.
 *
 * Only the benchmarks under bench/ use this; it is not part of lib/. The
 * functions that report a problem themselves (bench_parse_num,
 * bench_rm_tree) print one line to stderr prefixed with the program's name,
 * as the benchmarks did before they shared them.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include "loom_deploy.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- clock ---- */

/* Returns CLOCK_MONOTONIC in nanoseconds. */
int64_t bench_now_ns(void);

/* Sleeps us microseconds; returns early once bench_interrupted() is true. */
void bench_sleep_us(long us);

/* ---- formatting ---- */

/* Writes n rounded to a whole number with thousands separators
 * ("1,234,567") into buf (len bytes, truncated to fit); returns buf. */
const char *bench_fmt_count(char *buf, size_t len, double n);

/* Prints one machine-readable line for bench/report.sh:
 *   RESULT NAME loom=X peer=Y peer_name=P unit=U goal=G
 * peer (and peer_name) is "-" when peer is NaN (no limit or peer measured
 * beside it); goal is e.g. ">=500000" (on loom) or "ratio>=0.8" (on
 * loom/peer), or "-". NAME, P, U and G hold no spaces. */
void bench_result(const char *name, double loom, double peer, const char *peer_name, const char *unit,
    const char *goal);

/* Writes a payload size as "100B", "10KB" or "1MB" (KB and MB only when
 * exact, 1024-based) into buf; returns buf. */
const char *bench_fmt_size(char *buf, size_t len, size_t n);

/* Writes a byte count as "512 B", "1.5 KiB", "123.4 MiB" or "1.23 GiB"
 * into buf; returns buf. */
const char *bench_fmt_bytes(char *buf, size_t len, double n);

/* ---- SIGINT and SIGTERM ---- */

/* Makes SIGINT and SIGTERM set the flag bench_interrupted() reads (and
 * remember the signal and its sender), and ignores SIGPIPE. */
void bench_signals_install(void);

/* Whether SIGINT or SIGTERM arrived, or bench_interrupt() was called:
 * every loop stops and the run fails cleanly. Safe from any thread. */
bool bench_interrupted(void);

/* Sets the flag as a signal would, without a signal (bench_interrupted_text
 * then says only "interrupted"). */
void bench_interrupt(void);

/* Returns "interrupted by SIGTERM from pid 123 (bash)", the sender's
 * command named when it is still there (stray signals happen on shared
 * hosts), or "interrupted" when no signal came. The caller frees it. */
char *bench_interrupted_text(void);

/* ---- /proc ---- */

/* Returns the user + system CPU seconds of thread tid of process pid, or
 * of the whole process when tid is 0 (threads that ended included), at
 * clock-tick resolution; 0 when it cannot be read. A value rather than an
 * int and a ret_ output: a thread that has gone used no CPU since, and
 * every caller wants 0 for it. */
double bench_thread_cpu(pid_t pid, pid_t tid);

/* Returns the user + system CPU seconds this process has used (getrusage),
 * at microsecond resolution. */
double bench_self_cpu(void);

/* Writes up to max thread ids of process pid into ret; returns how many
 * (0 when pid is gone). */
size_t bench_list_tids(pid_t pid, pid_t *ret, size_t max);

/* ---- files and paths ---- */

/* Makes a new directory $TMPDIR/NAME-XXXXXX ($TMPDIR unset or empty:
 * /tmp). Returns 0 with its path in *ret_dir (the caller's to free), or -1
 * with *ret_error (the caller's to free). */
int bench_mkdtemp(const char *name, char **ret_dir, char **ret_error);

/* Loads the loom.yaml at path into *cfg (zeroed by the caller). Returns 0,
 * or -1 with every problem, joined by "; ", in *ret_error (the caller's to
 * free). Either way *cfg must be released with loom_deploy_release. */
int bench_deploy_load(const char *path, loom_deploy_t *cfg, char **ret_error);

/* Removes dir and everything below it, not following symbolic links.
 * What cannot be removed is reported on stderr as "PROG: cannot remove
 * 'PATH': REASON" and left behind; the rest goes. */
void bench_rm_tree(const char *prog, const char *dir);

/* Returns DIR/../rel, DIR being the folder of the running binary (from
 * /proc/self/exe), for a binary of the same build tree; NULL when
 * /proc/self/exe cannot be read. The caller frees it. */
char *bench_next_to_self(const char *rel);

/* ---- flags ---- */

/* Parses s, the value of --flag, as a whole decimal number from min to max
 * into *ret. Returns 0, or -1 after printing "PROG: bad --FLAG 'S':
 * expected a whole number from MIN to MAX" to stderr (*ret untouched). */
int bench_parse_num(const char *prog, const char *flag, const char *s, long long min, long long max,
    long long *ret);

#endif
