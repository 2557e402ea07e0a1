/* loom_log.h - one line per event on stderr:
 *
 *   2026-11-21T02:50:01.123Z info broker peer registered service=engine instance=engine@1f2e
 *
 * time (UTC, milliseconds), level, process name, the message, then key=value
 * pairs. Values with spaces, quotes or '=' are double-quoted (loom_buf_add_logval).
 * Each line goes out in a single write(2) so lines from concurrent processes
 * sharing a file never interleave.
 *
 * Library code does not log (STYLE.md): it returns errors, and the daemon or
 * tool that called it logs them once.
 */
#ifndef LOOM_LOG_H
#define LOOM_LOG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
	LOOM_LOG_DEBUG = 0,
	LOOM_LOG_INFO,
	LOOM_LOG_WARNING,
	LOOM_LOG_ERROR, /* an operation failed; the process goes on */
	LOOM_LOG_FATAL, /* the process cannot go on: logged, then exit(1) */
} loom_log_level_t;

/* Sets the process name printed on every line (borrowed; keep it alive). */
void loom_log_init(const char *process);
/* Lines below this level are not written. Default: info. */
void loom_log_set_level(loom_log_level_t level);
loom_log_level_t loom_log_get_level(void);
/* Parses "debug", "info", "warning", "error"; returns -1 for anything else. */
int loom_log_parse_level(const char *s);
const char *loom_log_level_name(loom_log_level_t level);
/* True when a line at this level would be written (skip costly formatting). */
bool loom_log_enabled(loom_log_level_t level);

/* fmt is the message followed by its key=value pairs, printf-style; use
 * loom_log_kv_quote() for values that may hold spaces. */
void loom_log(loom_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define loom_debug(...) do { if (loom_log_enabled(LOOM_LOG_DEBUG)) loom_log(LOOM_LOG_DEBUG, __VA_ARGS__); } while (0)
#define loom_info(...) loom_log(LOOM_LOG_INFO, __VA_ARGS__)
#define loom_warning(...) loom_log(LOOM_LOG_WARNING, __VA_ARGS__)
#define loom_error(...) loom_log(LOOM_LOG_ERROR, __VA_ARGS__)
/* Logs at fatal level and exits with status 1. */
void loom_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Logs at fatal level and aborts (core dump): a broken invariant. */
void loom_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Returns s quoted for a log value when it needs it, in one of a few
 * rotating static buffers (valid for the next few calls only). */
const char *loom_log_kv_quote(const char *s);
/* The same for n bytes that need not end in NUL (a frame, a field). */
const char *loom_log_kv_quoten(const char *s, size_t n);

#endif
