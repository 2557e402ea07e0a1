/* loom_log.c - one line per event on stderr. */
#include "loom_log.h"
#include "loom_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_process = "loom";
static loom_log_level_t log_level = LOOM_LOG_INFO;

static const char *const level_names[] = { "debug", "info", "warning", "error", "fatal" };

void loom_log_init(const char *process)
{
	log_process = process;
}

void loom_log_set_level(loom_log_level_t level)
{
	log_level = level;
}

loom_log_level_t loom_log_get_level(void)
{
	return log_level;
}

int loom_log_parse_level(const char *s)
{
	for (int i = LOOM_LOG_DEBUG; i <= LOOM_LOG_ERROR; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

const char *loom_log_level_name(loom_log_level_t level)
{
	return level <= LOOM_LOG_FATAL ? level_names[level] : "?";
}

bool loom_log_enabled(loom_log_level_t level)
{
	return level >= log_level;
}

static void log_line(loom_log_level_t level, const char *fmt, va_list ap)
{
	if (level < log_level)
		return;
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	char stamp[40];
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);

	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_printf(&b, "%s.%03dZ %s %s ", stamp, (int)(tv.tv_usec / 1000),
	    level_names[level], log_process);
	loom_buf_vprintf(&b, fmt, ap);
	/* A message must stay on one line whatever a caller put in it. */
	for (size_t i = 0; i < b.len; i++)
		if (b.data[i] == '\n' || b.data[i] == '\r')
			b.data[i] = ' ';
	loom_buf_addc(&b, '\n');
	size_t off = 0;
	while (off < b.len) {
		ssize_t n = write(2, b.data + off, b.len - off);
		if (n <= 0)
			break; /* stderr is gone: nowhere to report that either */
		off += (size_t)n;
	}
	loom_buf_release(&b);
}

void loom_log(loom_log_level_t level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_line(level, fmt, ap);
	va_end(ap);
}

void loom_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_line(LOOM_LOG_FATAL, fmt, ap);
	va_end(ap);
	exit(1);
}

void loom_panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_line(LOOM_LOG_FATAL, fmt, ap);
	va_end(ap);
	abort();
}

const char *loom_log_kv_quoten(const char *s, size_t n)
{
	static char *slots[8];
	static unsigned next;
	unsigned i = next++ % 8;
	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_add_logval(&b, s ? s : "", s ? n : 0);
	if (b.len == 0)
		loom_buf_adds(&b, "\"\"");
	free(slots[i]);
	slots[i] = loom_buf_steal(&b);
	return slots[i];
}

const char *loom_log_kv_quote(const char *s)
{
	return loom_log_kv_quoten(s, s ? strlen(s) : 0);
}
