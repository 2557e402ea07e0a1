/* loom_lease.c - the primary's lease file and the fence that checks it. */
#include "loom_lease.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LEASE_MAX 4096

struct loom_fence {
	char *state_dir;               /* where the lease lives */
	char *path;                    /* STATE_DIR/lease */
	char *host;                    /* this host */
	unsigned long long epoch;      /* the epoch this process writes under */
	struct stat seen;              /* the file as it was when last read */
	long long checked_ms;          /* monotonic time of the last look */
	char *error;                   /* why it is fenced, once it is */
};

const char *loom_lease_host(const char *name)
{
	static char buf[128];
	if (name != NULL && *name != '\0')
		return name;
	const char *env = getenv("LOOM_HOST");
	if (env != NULL && *env != '\0')
		return env;
	if (gethostname(buf, sizeof buf - 1) < 0)
		snprintf(buf, sizeof buf, "localhost");
	buf[sizeof buf - 1] = '\0';
	return buf;
}

static char *lease_path(const char *state_dir)
{
	return loom_sprintf("%s/lease", state_dir);
}

/* Parses the file's text; -1 with *ret_error naming path. */
static int parse(const char *path, char *text, loom_lease_t *l, char **ret_error)
{
	memset(l, 0, sizeof *l);
	bool magic = false, have_epoch = false, have_holder = false;
	int lineno = 0;
	for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		lineno++;
		char *end;
		if (lineno == 1) {
			magic = strcmp(line, "loom-lease 1") == 0;
			if (!magic)
				break;
		} else if (strncmp(line, "epoch: ", 7) == 0) {
			errno = 0;
			l->epoch = strtoull(line + 7, &end, 10);
			have_epoch = errno == 0 && *end == '\0' && end != line + 7 && l->epoch > 0;
		} else if (strncmp(line, "holder: ", 8) == 0) {
			have_holder = strlen(line + 8) > 0 && strlen(line + 8) < sizeof l->holder;
			if (have_holder)
				strcpy(l->holder, line + 8);
		} else if (strncmp(line, "since: ", 7) == 0) {
			l->since = strtoll(line + 7, &end, 10);
		}
	}
	if (!magic || !have_epoch || !have_holder) {
		*ret_error = loom_sprintf("lease '%s' is damaged: expected 'loom-lease 1', 'epoch: N' (N > 0) "
		    "and 'holder: HOST' lines", path);
		return -1;
	}
	return 0;
}

static int read_at(const char *path, loom_lease_t *l, struct stat *ret_st, char **ret_error)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		if (errno == ENOENT)
			return 0;
		*ret_error = loom_sprintf("cannot read lease '%s': %s", path, strerror(errno));
		return -1;
	}
	char *text = loom_malloc(LEASE_MAX + 1);
	size_t n = fread(text, 1, LEASE_MAX, f);
	text[n] = '\0';
	int rerr = ferror(f);
	if (ret_st != NULL && fstat(fileno(f), ret_st) < 0)
		rerr = 1;
	fclose(f);
	int rc = 1;
	if (rerr) {
		*ret_error = loom_sprintf("cannot read lease '%s': %s", path, strerror(errno));
		rc = -1;
	} else if (parse(path, text, l, ret_error) < 0) {
		rc = -1;
	}
	free(text);
	return rc;
}

int loom_lease_read(const char *state_dir, loom_lease_t *ret_lease, char **ret_error)
{
	char *path = lease_path(state_dir);
	loom_lease_t l;
	int rc = read_at(path, &l, NULL, ret_error);
	free(path);
	if (rc == 1)
		*ret_lease = l;
	return rc;
}

int loom_lease_write(const char *state_dir, const loom_lease_t *l, char **ret_error)
{
	char *path = lease_path(state_dir);
	char *text = loom_sprintf("loom-lease 1\nepoch: %llu\nholder: %s\nsince: %lld\n",
	    l->epoch, l->holder, l->since);
	int rc = loom_file_replace(path, text, strlen(text), 0644, ret_error);
	free(text);
	free(path);
	return rc;
}

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *fenced_text(const loom_lease_t *l, const char *host, unsigned long long mine)
{
	char when[32] = "?";
	time_t t = (time_t)l->since;
	struct tm tm;
	if (gmtime_r(&t, &tm) != NULL)
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (mine == 0)
		return loom_sprintf("fenced: host '%s' holds the lease (epoch %llu since %s), not this host '%s': "
		    "run this host's processes with --standby, or make it primary with `loomctl activate`",
		    l->holder, l->epoch, when, host);
	return loom_sprintf("fenced: host '%s' took the lease (epoch %llu since %s); this host '%s' wrote under "
	    "epoch %llu and stops writing", l->holder, l->epoch, when, host, mine);
}

int loom_fence_new(const char *state_dir, const char *host, loom_fence_t **ret_fence, char **ret_error)
{
	loom_fence_t *f = loom_calloc(1, sizeof *f);
	f->state_dir = loom_strdup(state_dir);
	f->path = lease_path(state_dir);
	f->host = loom_strdup(host);
	if (strlen(host) >= sizeof ((loom_lease_t *)0)->holder || strchr(host, '\n') != NULL) {
		*ret_error = loom_sprintf("bad host name '%s' for the lease", host);
		goto fail;
	}
	loom_lease_t l;
	int rc = read_at(f->path, &l, &f->seen, ret_error);
	if (rc < 0)
		goto fail;
	if (rc == 0) {
		/* The first start of an installation: this host is primary. */
		memset(&l, 0, sizeof l);
		l.epoch = 1;
		snprintf(l.holder, sizeof l.holder, "%s", host);
		l.since = (long long)time(NULL);
		if (loom_lease_write(state_dir, &l, ret_error) < 0)
			goto fail;
		rc = read_at(f->path, &l, &f->seen, ret_error);
		if (rc <= 0) {
			if (rc == 0)
				*ret_error = loom_sprintf("lease '%s' vanished after it was written", f->path);
			goto fail;
		}
	}
	if (strcmp(l.holder, host) != 0) {
		*ret_error = fenced_text(&l, host, 0);
		goto fail;
	}
	f->epoch = l.epoch;
	f->checked_ms = mono_ms();
	*ret_fence = f;
	return 0;
fail:
	loom_fence_destroy(&f);
	return -1;
}

void loom_fence_destroy(loom_fence_t **fence_p)
{
	if (fence_p == NULL || *fence_p == NULL)
		return;
	loom_fence_t *f = *fence_p;
	free(f->state_dir);
	free(f->path);
	free(f->host);
	free(f->error);
	free(f);
	*fence_p = NULL;
}

unsigned long long loom_fence_epoch(const loom_fence_t *f)
{
	return f->epoch;
}

int loom_fence_check(loom_fence_t *f, long long interval_ms, const char **error_r)
{
	if (f->error != NULL) {
		*error_r = f->error;
		return -1;
	}
	long long now = mono_ms();
	if (interval_ms > 0 && now - f->checked_ms < interval_ms)
		return 0;
	f->checked_ms = now;
	struct stat st;
	if (stat(f->path, &st) < 0) {
		/* A lease that vanished is not a lease given to someone else; but
		 * a file that cannot be looked at cannot prove the lease either. */
		f->error = loom_sprintf("fenced: cannot check lease '%s': %s", f->path, strerror(errno));
		*error_r = f->error;
		return -1;
	}
	if (st.st_ino == f->seen.st_ino && st.st_dev == f->seen.st_dev && st.st_size == f->seen.st_size &&
	    st.st_mtim.tv_sec == f->seen.st_mtim.tv_sec && st.st_mtim.tv_nsec == f->seen.st_mtim.tv_nsec)
		return 0;
	loom_lease_t l;
	char *err = NULL;
	int rc = read_at(f->path, &l, &f->seen, &err);
	if (rc <= 0) {
		f->error = rc < 0 ? loom_sprintf("fenced: %s", err)
		    : loom_sprintf("fenced: lease '%s' vanished", f->path);
		free(err);
	} else if (l.epoch != f->epoch || strcmp(l.holder, f->host) != 0) {
		f->error = fenced_text(&l, f->host, f->epoch);
	} else {
		return 0;  /* rewritten with the same content */
	}
	*error_r = f->error;
	return -1;
}
