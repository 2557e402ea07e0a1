/* loomctl_backup.c - `loomctl backup --to DIR`, `loomctl backup verify DIR`
 * and `loomctl restore --from DIR --to CONFIG_DIR [--keyset FILE]`
 * (docs/recovery.md).
 *
 * A backup directory:
 *   MANIFEST      "loom-backup 1", then "key: value" lines (created,
 *                 installation, config_dir, config_file, state_dir), then one
 *                 "file: SHA256 SIZE PATH" line per file; written last
 *                 (atomically), so a backup without it is unfinished
 *   backup.log    what each step did, its retry, why it failed
 *   config/       the configuration directory (state_dir and DIR left out)
 *   state/        the state directory: every RocksDB store as a fresh store
 *                 holding a point-in-time copy of each column family, other
 *                 files (spools, secrets/ still sealed, installation) as they
 *                 are; never the key set, never sockets
 *   external/AGENT/KEY   a file agent's path, changes_dir or delta_dir that
 *                 lies outside both directories ("external: AGENT/KEY PATH"
 *                 in the MANIFEST says where it was)
 *
 * Stores are copied while their processes run: each is opened read-only
 * (RocksDB takes no lock for that and reads a consistent view of the store
 * as it is at the open: its SST files and its WAL replayed in memory), and
 * every family is copied from one snapshot into a new store. A store whose
 * owner deletes a file between the listing and the open fails that step,
 * which is tried once more.
 *
 * Restore refuses, before writing anything: a manifest that does not parse
 * or a file that does not match its checksum; a key set that does not open
 * (wrong passphrase) or belongs to another installation; a target that is
 * not empty.
 */
#include "loomctl.h"
#include "loomctl_recovery.h"
#include "loom_agentcfg.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_deploy.h"
#include "loom_file.h"
#include "loom_keyset.h"
#include "loom_store.h"
#include "pcns.pb-c.h"
#include "sspr.pb-c.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <rocksdb/c.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct bk {
	char *dir;              /* the backup directory (absolute) */
	FILE *log;              /* DIR/backup.log */
	const char *skip[4];    /* absolute paths never copied (state_dir, DIR) */
	char *error;            /* the failure of the last operation */
} bk_t;

static void bk_log(bk_t *bk, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bk_log(bk_t *bk, const char *fmt, ...)
{
	if (bk->log == NULL)
		return;
	char when[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(bk->log, "%s ", when);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(bk->log, fmt, ap);
	va_end(ap);
	fputc('\n', bk->log);
	fflush(bk->log);
}

static void bk_fail(bk_t *bk, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bk_fail(bk_t *bk, const char *fmt, ...)
{
	free(bk->error);
	loom_buf_t b = LOOM_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	loom_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	bk->error = loom_buf_steal(&b);
}

/* Removes a tree this command made (rm -r of one path). */
static void rm_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *e;
		while (d != NULL && (e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			char *p = loom_sprintf("%s/%s", path, e->d_name);
			rm_tree(p);
			free(p);
		}
		if (d != NULL)
			closedir(d);
		rmdir(path);
	} else
		unlink(path);
}

static int copy_file(const char *from, const char *to, mode_t mode, char **ret_error)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		*ret_error = loom_sprintf("cannot open '%s': %s", from, strerror(errno));
		return -1;
	}
	int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 07777);
	if (out < 0) {
		*ret_error = loom_sprintf("cannot create '%s': %s", to, strerror(errno));
		close(in);
		return -1;
	}
	char buf[65536];
	ssize_t r;
	int rc = 0;
	while ((r = read(in, buf, sizeof(buf))) > 0)
		if (loom_write_all(out, buf, (size_t)r) < 0) {
			*ret_error = loom_sprintf("cannot write '%s': %s", to, strerror(errno));
			rc = -1;
			break;
		}
	if (r < 0 && rc == 0) {
		*ret_error = loom_sprintf("cannot read '%s': %s", from, strerror(errno));
		rc = -1;
	}
	if (rc == 0 && fsync(out) < 0) {
		*ret_error = loom_sprintf("cannot fsync '%s': %s", to, strerror(errno));
		rc = -1;
	}
	close(in);
	close(out);
	return rc;
}

static int sha256_file(const char *path, char hex[65], long long *ret_size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	crypto_hash_sha256_state st;
	crypto_hash_sha256_init(&st);
	unsigned char buf[65536];
	ssize_t r;
	long long size = 0;
	while ((r = read(fd, buf, sizeof(buf))) > 0) {
		crypto_hash_sha256_update(&st, buf, (unsigned long long)r);
		size += r;
	}
	close(fd);
	if (r < 0)
		return -1;
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256_final(&st, h);
	sodium_bin2hex(hex, 65, h, sizeof(h));
	*ret_size = size;
	return 0;
}

static bool is_store(const char *dir)
{
	char *p = loom_sprintf("%s/CURRENT", dir);
	bool yes = access(p, F_OK) == 0;
	free(p);
	return yes;
}

/* Copies one store through a read-only instance into a new store at to. */
static int copy_store(bk_t *bk, const char *from, const char *to, size_t *ret_keys)
{
	rocksdb_options_t *o = rocksdb_options_create();
	char *rerr = NULL;
	size_t nlisted = 0;
	char **listed = rocksdb_list_column_families(o, from, &nlisted, &rerr);
	rocksdb_options_destroy(o);
	if (rerr != NULL) {
		bk_fail(bk, "cannot list the families of store '%s': %s", from, rerr);
		rocksdb_free(rerr);
		return -1;
	}
	const char **cfs = loom_calloc(nlisted + 1, sizeof(char *));
	size_t n = 0;
	for (size_t i = 0; i < nlisted; i++)
		if (strcmp(listed[i], "default") != 0)
			cfs[n++] = listed[i];
	loom_store_opts_t ro, wo;
	loom_store_opts_default(&ro);
	ro.read_only = true;
	ro.create_if_missing = false;
	loom_store_opts_default(&wo);
	wo.sync = false;
	loom_store_t *src = NULL, *dst = NULL;
	char *err = NULL;
	const char *serr = NULL;
	int rc = -1;
	size_t keys = 0;
	if (loom_store_open(from, cfs, &ro, &src, &err) < 0) {
		bk_fail(bk, "%s", err);
		free(err);
		goto out;
	}
	if (loom_store_open(to, cfs, &wo, &dst, &err) < 0) {
		bk_fail(bk, "%s", err);
		free(err);
		goto out;
	}
	loom_batch_t *batch = loom_batch_new(dst);
	for (size_t cf = 0; cf <= n; cf++) {
		loom_iter_t *it = loom_iter_new(src, (int)cf);
		for (loom_iter_seek_first(it); loom_iter_valid(it); loom_iter_next(it)) {
			size_t kl, vl;
			const void *k = loom_iter_key(it, &kl), *v = loom_iter_value(it, &vl);
			loom_batch_put(batch, (int)cf, k, kl, v, vl);
			keys++;
			if (loom_batch_count(batch) >= 4096) {
				if (loom_store_write_ex(dst, batch, false, &serr) < 0)
					break;
				loom_batch_clear(batch);
			}
		}
		if (serr == NULL && loom_iter_status(it, &serr) < 0) {
			bk_fail(bk, "cannot read store '%s': %s", from, serr);
			loom_iter_destroy(&it);
			loom_batch_destroy(&batch);
			goto out;
		}
		loom_iter_destroy(&it);
		if (serr != NULL)
			break;
	}
	if (serr == NULL)
		loom_store_write_ex(dst, batch, true, &serr);
	loom_batch_destroy(&batch);
	if (serr != NULL) {
		bk_fail(bk, "cannot write store copy '%s': %s", to, serr);
		goto out;
	}
	*ret_keys = keys;
	rc = 0;
out:
	loom_store_close(&src);
	loom_store_close(&dst);
	free(cfs);
	rocksdb_list_column_families_destroy(listed, nlisted);
	return rc;
}

static bool skipped(const bk_t *bk, const char *path)
{
	for (size_t i = 0; i < sizeof(bk->skip) / sizeof(bk->skip[0]); i++)
		if (bk->skip[i] != NULL && strcmp(bk->skip[i], path) == 0)
			return true;
	return false;
}

/* Copies the tree from into to; stores (when stores) copied as stores. */
static int copy_tree(bk_t *bk, const char *from, const char *to, bool stores, bool top)
{
	if (mkdir(to, 0700) < 0 && errno != EEXIST) {
		bk_fail(bk, "cannot create '%s': %s", to, strerror(errno));
		return -1;
	}
	DIR *d = opendir(from);
	if (d == NULL) {
		bk_fail(bk, "cannot read directory '%s': %s", from, strerror(errno));
		return -1;
	}
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		/* the key set is exported on its own, never in a backup */
		if (stores && top && strcmp(e->d_name, "keyset") == 0)
			continue;
		/* which host is primary is not data: a restored installation takes
		 * a new lease at its first start; standby/ holds only the secondary
		 * instances' info logs (docs/recovery.md, "Warm standby") */
		if (stores && top && (strcmp(e->d_name, "lease") == 0 || strcmp(e->d_name, "standby") == 0))
			continue;
		char *src = loom_sprintf("%s/%s", from, e->d_name), *dst = loom_sprintf("%s/%s", to, e->d_name);
		struct stat st;
		if (skipped(bk, src) || lstat(src, &st) < 0) {
			/* left out, or gone since the listing (a spool file delivered) */
		} else if (S_ISDIR(st.st_mode) && stores && is_store(src)) {
			size_t keys = 0;
			int tries = 0;
			while ((rc = copy_store(bk, src, dst, &keys)) < 0 && ++tries < 2) {
				bk_log(bk, "store '%s' failed: %s; retrying once", src, bk->error);
				rm_tree(dst);
			}
			if (rc == 0)
				bk_log(bk, "store '%s': %zu keys copied", src, keys);
		} else if (S_ISDIR(st.st_mode))
			rc = copy_tree(bk, src, dst, stores, false);
		else if (S_ISREG(st.st_mode)) {
			char *err = NULL;
			if (copy_file(src, dst, st.st_mode, &err) < 0) {
				bk_fail(bk, "%s", err);
				free(err);
				rc = -1;
			}
		}
		free(src);
		free(dst);
	}
	closedir(d);
	return rc;
}

/* Adds a "file:" line for every file under DIR/rel. */
static int sum_tree(bk_t *bk, const char *rel, loom_buf_t *m, size_t *count)
{
	char *path = loom_sprintf("%s/%s", bk->dir, rel);
	DIR *d = opendir(path);
	if (d == NULL) {
		bk_fail(bk, "cannot read directory '%s': %s", path, strerror(errno));
		free(path);
		return -1;
	}
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char *r = loom_sprintf("%s/%s", rel, e->d_name), *p = loom_sprintf("%s/%s", bk->dir, r);
		struct stat st;
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			rc = sum_tree(bk, r, m, count);
		else if (lstat(p, &st) == 0 && S_ISREG(st.st_mode)) {
			char hex[65];
			long long size;
			if (sha256_file(p, hex, &size) < 0) {
				bk_fail(bk, "cannot read '%s': %s", p, strerror(errno));
				rc = -1;
			} else {
				loom_buf_printf(m, "file: %s %lld %s\n", hex, size, r);
				(*count)++;
			}
		}
		free(r);
		free(p);
	}
	closedir(d);
	free(path);
	return rc;
}

static char *abs_path(const char *p)
{
	char buf[PATH_MAX];
	if (realpath(p, buf) != NULL)
		return loom_strdup(buf);
	return loom_strdup(p);
}

static bool dir_empty(const char *path)
{
	DIR *d = opendir(path);
	if (d == NULL)
		return errno == ENOENT;
	struct dirent *e;
	bool empty = true;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			empty = false;
			break;
		}
	closedir(d);
	return empty;
}

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* Copies what file agents read or write outside the configuration and state
 * directories into DIR/external/AGENT/KEY, with "external:" lines in m. */
static int backup_external(bk_t *bk, const char *deploy_path, const char *cfgdir, const char *sd, loom_buf_t *m,
    bool *ret_any)
{
	char *adir = loom_agentcfg_dir(deploy_path);
	loom_agentcfg_t *agents = NULL;
	size_t n = 0;
	loom_cfg_diags_t diags;
	memset(&diags, 0, sizeof diags);
	/* A configuration that does not load is the agents' concern: what loads is used. */
	loom_agentcfg_load_dir(adir, &agents, &n, &diags);
	loom_cfg_diags_release(&diags);
	free(adir);
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (agents[i].type != LOOM_AGENT_FILE || agents[i].name == NULL)
			continue;
		struct { const char *key, *path; } paths[] = {
			{ "path", agents[i].file.path },
			{ "changes_dir", agents[i].file.changes_dir },
			{ "delta_dir", agents[i].file.delta_dir },
		};
		for (size_t k = 0; rc == 0 && k < sizeof(paths) / sizeof(paths[0]); k++) {
			if (paths[k].path == NULL)
				continue;
			char *abs = abs_path(paths[k].path);
			struct stat st;
			if (abs[0] != '/' || under(abs, cfgdir) || under(abs, sd) || lstat(abs, &st) < 0) {
				free(abs);
				continue;
			}
			char *adst = loom_sprintf("%s/external/%s", bk->dir, agents[i].name);
			char *dst = loom_sprintf("%s/%s", adst, paths[k].key);
			int tries = 0;
			for (;;) {
				rc = rcv_mkdirs(adst, 0700);
				if (rc < 0)
					bk_fail(bk, "cannot create '%s': %s", adst, strerror(errno));
				else if (S_ISDIR(st.st_mode))
					rc = copy_tree(bk, abs, dst, false, false);
				else {
					char *err = NULL;
					if ((rc = copy_file(abs, dst, st.st_mode, &err)) < 0) {
						bk_fail(bk, "%s", err);
						free(err);
					}
				}
				if (rc == 0 || ++tries >= 2)
					break;
				bk_log(bk, "agent %s %s '%s' failed: %s; retrying once", agents[i].name, paths[k].key, abs, bk->error);
				rm_tree(dst);
			}
			if (rc == 0) {
				bk_log(bk, "agent %s %s '%s' (outside the configuration) copied", agents[i].name, paths[k].key, abs);
				loom_buf_printf(m, "external: %s/%s %s\n", agents[i].name, paths[k].key, abs);
				*ret_any = true;
			}
			free(dst);
			free(adst);
			free(abs);
		}
	}
	loom_agentcfg_free_all(&agents, n);
	return rc;
}

static void count_sspr(const char *state, const loom_keyset_t *ks, size_t *ret_n, size_t *ret_unusable);

static int do_backup(ctl_t *ctl, const char *to)
{
	if (ctl_load_config(ctl) < 0) {
		fprintf(stderr, "loomctl backup: cannot load the configuration\n");
		return 1;
	}
	if (!dir_empty(to)) {
		fprintf(stderr, "loomctl backup: '%s' is not empty\n", to);
		return 1;
	}
	if (rcv_mkdirs(to, 0700) < 0) {
		fprintf(stderr, "loomctl backup: cannot create '%s': %s\n", to, strerror(errno));
		return 1;
	}
	bk_t bk = { 0 };
	bk.dir = abs_path(to);
	char *logp = loom_sprintf("%s/backup.log", bk.dir);
	bk.log = fopen(logp, "a");
	free(logp);
	char *cfgpath = abs_path(ctl->cfg.path);
	char *cfgdir = loom_strdup(cfgpath);
	char *slash = strrchr(cfgdir, '/');
	const char *cfgfile = slash ? slash + 1 : cfgpath;
	if (slash != NULL)
		*slash = '\0';
	cfgfile = strrchr(cfgpath, '/') ? strrchr(cfgpath, '/') + 1 : cfgpath;
	char *sd = abs_path(ctl->cfg.state_dir);
	char *inst = rcv_installation(sd);
	bk.skip[0] = sd;
	bk.skip[1] = bk.dir;
	bk_log(&bk, "backup of config '%s' and state '%s' started (installation %s)", cfgdir, sd, inst ? inst : "-");
	int rc = 1;
	struct { const char *name, *from; bool stores; } steps[] = {
		{ "state", sd, true },
		{ "config", cfgdir, false },
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		char *dst = loom_sprintf("%s/%s", bk.dir, steps[i].name);
		int r, tries = 0;
		/* LOOM_TEST_BACKUP_FAIL=STEP[:N] (tests only): the first N attempts
		 * of STEP fail after copying, as a store that moved would. */
		const char *fault = getenv("LOOM_TEST_BACKUP_FAIL");
		int fail_n = 0;
		if (fault != NULL && strncmp(fault, steps[i].name, strlen(steps[i].name)) == 0)
			fail_n = fault[strlen(steps[i].name)] == ':' ? atoi(fault + strlen(steps[i].name) + 1) : 1;
		for (;;) {
			r = copy_tree(&bk, steps[i].from, dst, steps[i].stores, true);
			if (r == 0 && tries < fail_n) {
				bk_fail(&bk, "injected fault (LOOM_TEST_BACKUP_FAIL)");
				r = -1;
			}
			if (r == 0 || ++tries >= 2)
				break;
			bk_log(&bk, "step %s failed: %s; retrying once", steps[i].name, bk.error);
			rm_tree(dst);
		}
		free(dst);
		if (r < 0) {
			bk_log(&bk, "step %s failed again: %s; backup incomplete (no MANIFEST)", steps[i].name, bk.error);
			fprintf(stderr, "loomctl backup: step %s failed twice: %s (see %s/backup.log)\n", steps[i].name,
			    bk.error, bk.dir);
			goto out;
		}
		bk_log(&bk, "step %s done", steps[i].name);
	}
	loom_buf_t m = LOOM_BUF_INIT;
	time_t now = time(NULL);
	loom_buf_printf(&m, "loom-backup 1\ncreated: %lld\ninstallation: %s\nconfig_dir: %s\nconfig_file: %s\n"
	    "state_dir: %s\n", (long long)now, inst ? inst : "-", cfgdir, cfgfile, sd);
	bool have_external = false;
	if (backup_external(&bk, ctl->cfg.path, cfgdir, sd, &m, &have_external) < 0) {
		bk_log(&bk, "step external failed again: %s; backup incomplete (no MANIFEST)", bk.error);
		fprintf(stderr, "loomctl backup: step external failed twice: %s (see %s/backup.log)\n", bk.error, bk.dir);
		loom_buf_release(&m);
		goto out;
	}
	size_t files = 0;
	if (sum_tree(&bk, "state", &m, &files) < 0 || sum_tree(&bk, "config", &m, &files) < 0 ||
	    (have_external && sum_tree(&bk, "external", &m, &files) < 0)) {
		bk_log(&bk, "checksums failed: %s", bk.error);
		fprintf(stderr, "loomctl backup: %s\n", bk.error);
		loom_buf_release(&m);
		goto out;
	}
	char *mp = loom_sprintf("%s/MANIFEST", bk.dir), *err = NULL;
	int w = loom_file_replace(mp, m.data, m.len, 0600, &err);
	free(mp);
	loom_buf_release(&m);
	if (w < 0) {
		bk_log(&bk, "%s", err);
		fprintf(stderr, "loomctl backup: %s\n", err);
		free(err);
		goto out;
	}
	bk_log(&bk, "backup complete: %zu files in MANIFEST", files);
	printf("backup of installation %s written to '%s': %zu files (key set not included: export it with "
	    "`loomctl keys export`)\n", inst ? inst : "-", bk.dir, files);
	char *bstate = loom_sprintf("%s/state", bk.dir);
	size_t nsspr = 0, nlost = 0;
	count_sspr(bstate, NULL, &nsspr, &nlost);
	free(bstate);
	if (nsspr > 0) {
		bk_log(&bk, "%zu SSPR registration(s): usable only with this installation's key set", nsspr);
		printf("%zu SSPR registration(s) in it: usable only with this installation's key set (their answers' pepper "
		       "is derived from it); restored without it, those users must register again\n", nsspr);
	}
	rc = 0;
out:
	if (bk.log != NULL)
		fclose(bk.log);
	free(bk.error);
	free(bk.dir);
	free(cfgpath);
	free(cfgdir);
	free(sd);
	free(inst);
	return rc;
}

typedef struct manifest {
	char *text;             /* the MANIFEST, cut into lines in place */
	size_t len;             /* bytes of text */
	const char *installation; /* "-" when the installation had no key set */
	const char *config_dir; /* where the configuration was */
	const char *config_file; /* its deployment file's name */
	const char *state_dir;  /* where the state was */
	size_t nfiles;          /* files listed */
	size_t nexternal;       /* "external:" lines (NUL-separated in text after verify) */
} manifest_t;

/* Reads DIR/MANIFEST and checks every file; -1 with *ret_error. */
static int verify(const char *dir, manifest_t *ret_m, char **ret_error)
{
	char *mp = loom_sprintf("%s/MANIFEST", dir), *err = NULL;
	char *text = rcv_read_file(mp, 64 << 20, &err);
	free(mp);
	if (text == NULL) {
		*ret_error = loom_sprintf("backup '%s' has no readable MANIFEST (unfinished or not a backup): %s", dir, err);
		free(err);
		return -1;
	}
	manifest_t m = { .text = text, .len = strlen(text) };
	if (strncmp(text, "loom-backup 1\n", 14) != 0) {
		*ret_error = loom_sprintf("backup '%s': MANIFEST is not a Loom backup manifest", dir);
		free(text);
		return -1;
	}
	unsigned line = 1;
	for (char *p = text + 14, *e; *p != '\0'; p = e + 1, line++) {
		e = strchr(p, '\n');
		if (e == NULL) {
			*ret_error = loom_sprintf("backup '%s': MANIFEST is cut short", dir);
			free(text);
			return -1;
		}
		*e = '\0';
		if (strncmp(p, "installation: ", 14) == 0)
			m.installation = p + 14;
		else if (strncmp(p, "config_dir: ", 12) == 0)
			m.config_dir = p + 12;
		else if (strncmp(p, "config_file: ", 13) == 0)
			m.config_file = p + 13;
		else if (strncmp(p, "state_dir: ", 11) == 0)
			m.state_dir = p + 11;
		else if (strncmp(p, "external: ", 10) == 0)
			m.nexternal++;
		else if (strncmp(p, "file: ", 6) == 0) {
			char want[65];
			long long size;
			int off = 0;
			if (sscanf(p + 6, "%64s %lld %n", want, &size, &off) != 2 || off == 0 ||
			    strstr(p + 6 + off, "..") != NULL) {
				*ret_error = loom_sprintf("backup '%s': MANIFEST line %u does not parse", dir, line + 1);
				free(text);
				return -1;
			}
			const char *rel = p + 6 + off;
			char *path = loom_sprintf("%s/%s", dir, rel), hex[65];
			long long got;
			int r = sha256_file(path, hex, &got);
			free(path);
			if (r < 0 || got != size || strcmp(hex, want) != 0) {
				*ret_error = loom_sprintf("backup '%s' is damaged: '%s' %s", dir, rel,
				    r < 0 ? "is missing" : "does not match its checksum");
				free(text);
				return -1;
			}
			m.nfiles++;
		}
	}
	if (m.installation == NULL || m.config_dir == NULL || m.config_file == NULL || m.state_dir == NULL) {
		*ret_error = loom_sprintf("backup '%s': MANIFEST lacks a header line", dir);
		free(text);
		return -1;
	}
	*ret_m = m;
	return 0;
}

static int backup_verify(const char *dir)
{
	manifest_t m;
	char *err = NULL;
	if (verify(dir, &m, &err) < 0) {
		fprintf(stderr, "loomctl backup verify: %s\n", err);
		free(err);
		return 1;
	}
	printf("backup '%s' is whole: %zu files match the MANIFEST (installation %s)\n", dir, m.nfiles, m.installation);
	free(m.text);
	return 0;
}

int ctl_backup(ctl_t *ctl, int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "verify") == 0)
		return backup_verify(argv[2]);
	const char *to = NULL;
	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], "--to", 4) == 0 && (argv[i][4] == '\0' || argv[i][4] == '=')) {
			if ((to = ctl_option_value("backup", argc, argv, &i, "--to", 4)) == NULL)
				return 2;
		} else {
			fprintf(stderr, "loomctl backup: unexpected '%s' (--to DIR, or verify DIR)\n", argv[i]);
			return 2;
		}
	}
	if (to == NULL) {
		fprintf(stderr, "loomctl backup: expected --to DIR or verify DIR\n");
		return 2;
	}
	return do_backup(ctl, to);
}

/* Replaces every occurrence of from by to in the file at path. */
static int rewrite_paths(const char *path, const char *from, const char *to, char **ret_error)
{
	char *t = rcv_read_file(path, 16 << 20, ret_error);
	if (t == NULL)
		return -1;
	if (strstr(t, from) == NULL) {
		free(t);
		return 0;
	}
	loom_buf_t b = LOOM_BUF_INIT;
	const char *p = t, *q;
	size_t flen = strlen(from);
	while ((q = strstr(p, from)) != NULL) {
		/* only the directory itself or a path under it: "/cfg/q" must not
		 * turn "/cfg/qkeys" (a sibling sharing the prefix) into "/cfg/q2keys" */
		char next = q[flen];
		bool whole = next == '\0' || next == '/' || !(isalnum((unsigned char)next) || next == '.' ||
		    next == '_' || next == '-' || next == '+' || next == '@' || next == '~');
		loom_buf_add(&b, p, (size_t)(q - p));
		loom_buf_adds(&b, whole ? to : from);
		p = q + flen;
	}
	loom_buf_adds(&b, p);
	struct stat st;
	mode_t mode = stat(path, &st) == 0 ? st.st_mode & 07777 : 0644;
	int rc = loom_file_replace(path, b.data, b.len, mode, ret_error);
	loom_buf_release(&b);
	free(t);
	return rc;
}

static int rewrite_yaml(const char *dir, const char *from, const char *to, char **ret_error)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return 0;
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char *p = loom_sprintf("%s/%s", dir, e->d_name);
		struct stat st;
		size_t l = strlen(e->d_name);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			rc = rewrite_yaml(p, from, to, ret_error);
		else if (l > 5 && strcmp(e->d_name + l - 5, ".yaml") == 0)
			rc = rewrite_paths(p, from, to, ret_error);
		free(p);
	}
	closedir(d);
	return rc;
}

struct reenter {
	const loom_keyset_t *ks;  /* the imported set, or NULL */
	loom_buf_t list;          /* "AGENT KEY" lines */
	size_t n;                 /* lines in list */
};

static int check_secret(const char *path, const char *agent, const char *key, void *arg)
{
	struct reenter *re = arg;
	char *err = NULL, *t = rcv_read_file(path, 1 << 20, &err), *plain = NULL;
	size_t len;
	bool ok = t != NULL && re->ks != NULL && loom_secret_open(re->ks, t, &plain, &len, &err) == 0;
	loom_secret_free(&plain);
	free(err);
	free(t);
	if (!ok) {
		loom_buf_printf(&re->list, "%s %s\n", agent, key);
		re->n++;
		if (re->ks == NULL)
			unlink(path);
	}
	return 0;
}

/* Queued passwords in the restored stores: the pcns queue (changes not yet
 * taken by the engine, sealed to the listener's key) and the engine's
 * password sync (targets still pending, each sealed to its agent's key).
 * They are sealed to process key pairs in keys_dir, never to the key set,
 * so a restore without the key set keeps them -- unless the key that opens
 * one is not in the restored keys_dir (kept outside the configuration, on
 * the lost machine): those are listed as lost. */
typedef struct queued {
	const char *keys_dir;          /* the restored deployment's keys_dir */
	size_t kept;                   /* sealed to a key that is present */
	size_t lost;                   /* sealed to a key that is not */
	loom_buf_t lost_list;          /* one line per lost password */
	loom_buf_t missing;            /* key names missing, comma-separated */
} queued_t;

static bool queued_key_present(queued_t *q, const char *key_id)
{
	char *path = loom_sprintf("%s/%s.key", q->keys_dir, key_id);
	bool yes = access(path, R_OK) == 0;
	free(path);
	if (!yes) {
		char *needle = loom_sprintf("'%s'", key_id);
		if (strstr(loom_buf_cstr(&q->missing), needle) == NULL)
			loom_buf_printf(&q->missing, "%s%s", q->missing.len ? ", " : "", needle);
		free(needle);
	}
	return yes;
}

static int queued_scan(const char *state, const char *name, const char *const *cfs, const char *cf, queued_t *q,
    char **ret_error)
{
	char *path = loom_sprintf("%s/%s", state, name);
	char *current = loom_sprintf("%s/CURRENT", path);
	bool exists = access(current, F_OK) == 0;
	free(current);
	if (!exists) {
		free(path);
		return 0;
	}
	loom_store_opts_t ro;
	loom_store_opts_default(&ro);
	ro.read_only = true;
	ro.create_if_missing = false;
	loom_store_t *st = NULL;
	if (loom_store_open(path, cfs, &ro, &st, ret_error) < 0) {
		free(path);
		return -1;
	}
	free(path);
	loom_iter_t *it = loom_iter_new(st, loom_store_cf(st, cf));
	for (loom_iter_seek_first(it); loom_iter_valid(it); loom_iter_next(it)) {
		size_t vl;
		const uint8_t *v = loom_iter_value(it, &vl);
		if (strcmp(name, "pcns") == 0) {
			Loom__PcnsRecord *r = loom__pcns_record__unpack(NULL, vl, v);
			if (r == NULL)
				continue;
			if (r->state == LOOM__PCNS_RECORD__STATE__QUEUED && r->password && r->password->box.len) {
				/* the listener's own key opens its queue (key_id is the
				 * notifier's name for the target) */
				const char *kid = "pcns";
				if (queued_key_present(q, kid))
					q->kept++;
				else {
					q->lost++;
					loom_buf_printf(&q->lost_list, "pcns queue: account %s (notifier %s, agent %s), sealed to '%s'\n",
					    r->account, r->notifier, r->agent, kid);
				}
			}
			protobuf_c_message_free_unpacked(&r->base, NULL);
		} else {
			Loom__PasswordSyncRecord *r = loom__password_sync_record__unpack(NULL, vl, v);
			if (r == NULL)
				continue;
			for (size_t i = 0; i < r->n_targets; i++) {
				Loom__PasswordSyncTarget *t = r->targets[i];
				if (t->state != LOOM__PASSWORD_SYNC_TARGET__STATE__PENDING || t->password == NULL ||
				    t->password->box.len == 0)
					continue;
				char *kid = t->password->key_id[0] ? loom_strdup(t->password->key_id) : loom_sprintf("ma.%s", t->agent);
				if (queued_key_present(q, kid))
					q->kept++;
				else {
					q->lost++;
					loom_buf_printf(&q->lost_list, "engine password sync: account %s to agent %s, sealed to '%s'\n",
					    r->account, t->agent, kid);
				}
				free(kid);
			}
			protobuf_c_message_free_unpacked(&r->base, NULL);
		}
	}
	const char *ierr = NULL;
	int rc = 0;
	if (loom_iter_status(it, &ierr) < 0) {
		*ret_error = loom_sprintf("cannot read the %s store: %s", name, ierr);
		rc = -1;
	}
	loom_iter_destroy(&it);
	loom_store_close(&st);
	return rc;
}

/* Prints what became of the queued passwords (see queued_t). */
static void report_queued(const char *cfgfile, const char *state)
{
	loom_deploy_t cfg;
	loom_cfg_diags_t diags;
	memset(&cfg, 0, sizeof cfg);
	queued_t q = { 0 };
	q.lost_list = (loom_buf_t)LOOM_BUF_INIT;
	q.missing = (loom_buf_t)LOOM_BUF_INIT;
	if (loom_deploy_load(cfgfile, &cfg, &diags) < 0 || cfg.bus.keys_dir == NULL) {
		fprintf(stderr, "loomctl restore: cannot read '%s' to find keys_dir: queued passwords not checked\n", cfgfile);
		loom_cfg_diags_release(&diags);
		loom_deploy_release(&cfg);
		return;
	}
	loom_cfg_diags_release(&diags);
	q.keys_dir = cfg.bus.keys_dir;
	static const char *const pcns_cfs[] = { "change", "id", NULL };
	static const char *const eng_cfs[] = { "pwsync", NULL };
	char *err = NULL;
	if (queued_scan(state, "pcns", pcns_cfs, "change", &q, &err) < 0 ||
	    queued_scan(state, "engine", eng_cfs, "pwsync", &q, &err) < 0) {
		fprintf(stderr, "loomctl restore: queued passwords not checked: %s\n", err);
		free(err);
	} else if (q.kept == 0 && q.lost == 0) {
		printf("no queued passwords in the backup\n");
	} else {
		if (q.kept)
			printf("%zu queued password(s) kept: sealed to process keys in '%s', not to the key set\n", q.kept,
			    q.keys_dir);
		if (q.lost) {
			printf("%zu queued password(s) lost: sealed to keys not in '%s' (%s); each account must change its "
			    "password again:\n", q.lost, q.keys_dir, loom_buf_cstr(&q.missing));
			for (char *line = strtok(q.lost_list.data, "\n"); line != NULL; line = strtok(NULL, "\n"))
				printf("  %s\n", line);
		}
	}
	loom_buf_release(&q.lost_list);
	loom_buf_release(&q.missing);
	loom_deploy_release(&cfg);
}

/* SSPR registrations in the restored workflow store (STATE/workflow, family
 * "sspr"), and how many of them ks cannot check (all of them without a key
 * set): their answers' pepper is derived from the key set (docs/sspr.md). */
static void count_sspr(const char *state, const loom_keyset_t *ks, size_t *ret_n, size_t *ret_unusable)
{
	*ret_n = *ret_unusable = 0;
	char *path = loom_sprintf("%s/workflow", state), *rerr = NULL;
	rocksdb_options_t *o = rocksdb_options_create();
	size_t nl = 0;
	char **listed = rocksdb_list_column_families(o, path, &nl, &rerr);
	rocksdb_options_destroy(o);
	bool has = false;
	for (size_t i = 0; rerr == NULL && i < nl; i++)
		has = has || strcmp(listed[i], "sspr") == 0;
	if (listed != NULL) /* allocated even when it fails (no store there) */
		rocksdb_list_column_families_destroy(listed, nl);
	rocksdb_free(rerr);
	static const char *const cfs[] = { "sspr", NULL };
	loom_store_opts_t ro;
	loom_store_opts_default(&ro);
	ro.read_only = true;
	ro.create_if_missing = false;
	loom_store_t *st = NULL;
	char *err = NULL;
	if (!has || loom_store_open(path, cfs, &ro, &st, &err) < 0) {
		free(err);
		free(path);
		return;
	}
	loom_iter_t *it = loom_iter_new(st, loom_store_cf(st, "sspr"));
	for (loom_iter_seek_first(it); loom_iter_valid(it); loom_iter_next(it)) {
		size_t vl;
		const void *v = loom_iter_value(it, &vl);
		Loom__SsprRecord *r = loom__sspr_record__unpack(NULL, vl, v);
		if (r == NULL)
			continue;
		(*ret_n)++;
		if (!loom_keyset_sspr_check_matches(ks, r->pepper_version, r->pepper_check.data, r->pepper_check.len))
			(*ret_unusable)++;
		loom__sspr_record__free_unpacked(r, NULL);
	}
	loom_iter_destroy(&it);
	loom_store_close(&st);
	free(path);
}

static int do_restore(const char *from, const char *to, const char *keyset, const char *pwfile)
{
	manifest_t m;
	char *err = NULL;
	loom_keyset_t *ks = NULL;
	int rc = 1;
	/* Everything that can refuse is checked before anything is written. */
	if (verify(from, &m, &err) < 0) {
		fprintf(stderr, "loomctl restore: %s\n", err);
		free(err);
		return 1;
	}
	if (keyset != NULL) {
		if (rcv_open_export(keyset, pwfile, &ks, &err) < 0) {
			fprintf(stderr, "loomctl restore: %s\n", err);
			free(err);
			goto out;
		}
		if (strcmp(loom_keyset_installation(ks), m.installation) != 0) {
			fprintf(stderr, "loomctl restore: key set '%s' is from another installation (%s; the backup is of %s)\n",
			    keyset, loom_keyset_installation(ks), m.installation);
			goto out;
		}
	}
	if (!dir_empty(to)) {
		fprintf(stderr, "loomctl restore: '%s' is not empty (restore goes onto an empty installation)\n", to);
		goto out;
	}
	/* Where the state goes: the state_dir of the restored deployment, with
	 * paths under the old configuration directory moved to the new one. */
	if (rcv_mkdirs(to, 0755) < 0) {
		fprintf(stderr, "loomctl restore: cannot create '%s': %s\n", to, strerror(errno));
		goto out;
	}
	char *newcfg = abs_path(to);
	char *new_state = NULL;
	if (strncmp(m.state_dir, m.config_dir, strlen(m.config_dir)) == 0 && m.state_dir[strlen(m.config_dir)] == '/')
		new_state = loom_sprintf("%s%s", newcfg, m.state_dir + strlen(m.config_dir));
	else if (strcmp(newcfg, m.config_dir) == 0)
		new_state = loom_strdup(m.state_dir);
	else {
		fprintf(stderr, "loomctl restore: the backed-up state_dir '%s' is outside the configuration directory '%s': "
		    "restore into '%s' itself\n", m.state_dir, m.config_dir, m.config_dir);
		rmdir(to);
		free(newcfg);
		goto out;
	}
	if (!dir_empty(new_state)) {
		fprintf(stderr, "loomctl restore: state directory '%s' is not empty\n", new_state);
		free(newcfg);
		free(new_state);
		goto out;
	}
	bk_t bk = { 0 };
	char *src = loom_sprintf("%s/config", from);
	int r = copy_tree(&bk, src, newcfg, false, true);
	free(src);
	if (r == 0 && strcmp(newcfg, m.config_dir) != 0 && rewrite_yaml(newcfg, m.config_dir, newcfg, &err) < 0) {
		bk_fail(&bk, "%s", err);
		free(err);
		r = -1;
	}
	if (r == 0 && rcv_mkdirs(new_state, 0755) < 0) {
		bk_fail(&bk, "cannot create '%s': %s", new_state, strerror(errno));
		r = -1;
	}
	if (r == 0) {
		src = loom_sprintf("%s/state", from);
		r = copy_tree(&bk, src, new_state, false, true);
		free(src);
	}
	if (r < 0) {
		fprintf(stderr, "loomctl restore: %s\n", bk.error);
		free(bk.error);
		free(newcfg);
		free(new_state);
		goto out;
	}
	/* File agents' data that lived outside: back where it was when that
	 * place is free, never over a file that exists there. */
	for (const char *p = m.text + 14; m.nexternal > 0 && p < m.text + m.len; p += strlen(p) + 1) {
		char rel[300], *orig;
		if (strncmp(p, "external: ", 10) != 0 || sscanf(p + 10, "%299s", rel) != 1)
			continue;
		orig = (char *)p + 10 + strlen(rel) + 1;
		char *src2 = loom_sprintf("%s/external/%s", from, rel);
		struct stat st;
		if (lstat(orig, &st) == 0)
			printf("kept '%s' (file agent data %s): it exists; the backup's copy is '%s'\n", orig, rel, src2);
		else {
			char *parent = loom_strdup(orig), *sl = strrchr(parent, '/');
			if (sl != NULL && sl != parent)
				*sl = '\0';
			int er = -1;
			if (rcv_mkdirs(parent, 0755) == 0 && lstat(src2, &st) == 0) {
				if (S_ISDIR(st.st_mode))
					er = copy_tree(&bk, src2, orig, false, false);
				else
					er = copy_file(src2, orig, st.st_mode, &err);
			}
			if (er < 0) {
				fprintf(stderr, "loomctl restore: cannot put back '%s' (file agent data %s): %s\n", orig, rel,
				    err ? err : bk.error ? bk.error : strerror(errno));
				free(err);
				err = NULL;
			} else
				printf("restored '%s' (file agent data %s)\n", orig, rel);
			free(parent);
		}
		free(src2);
	}
	struct reenter re = { ks, LOOM_BUF_INIT, 0 };
	rcv_list_secrets(new_state, check_secret, &re);
	char *path = loom_sprintf("%s/secrets-to-reenter", new_state);
	if (re.n > 0 && loom_file_replace(path, re.list.data, re.list.len, 0644, &err) < 0) {
		fprintf(stderr, "loomctl restore: %s\n", err);
		free(err);
	}
	free(path);
	if (ks != NULL) {
		path = loom_sprintf("%s/keyset", new_state);
		if (loom_keyset_save(ks, path, &err) < 0) {
			fprintf(stderr, "loomctl restore: %s\n", err);
			free(err);
		}
		free(path);
	}
	printf("restored backup '%s' of installation %s: configuration in '%s', state in '%s'\n", from,
	    m.installation, newcfg, new_state);
	if (re.n > 0) {
		printf("%zu credential(s) to re-enter (%s), with `loomctl secret set AGENT KEY`:\n", re.n,
		    ks ? "sealed with a key this key set does not hold" : "no key set given");
		for (char *line = strtok(re.list.data, "\n"); line != NULL; line = strtok(NULL, "\n"))
			printf("  %s\n", line);
		if (ks == NULL)
			printf("first make a key set: `loomctl keys create` (or import this installation's with --keyset)\n");
	} else
		printf("all secrets restored\n");
	size_t nsspr, lost;
	count_sspr(new_state, ks, &nsspr, &lost);
	if (lost > 0)
		printf("%zu of %zu SSPR registration(s) cannot be used (%s: the answers' pepper is derived from it): "
		    "those users must register again (`loomctl sspr register`)\n", lost, nsspr,
		    ks ? "registered under a key this key set does not hold" : "no key set given");
	else if (nsspr > 0)
		printf("all %zu SSPR registration(s) usable\n", nsspr);
	char *cfgfile = loom_sprintf("%s/%s", newcfg, m.config_file);
	report_queued(cfgfile, new_state);
	free(cfgfile);
	loom_buf_release(&re.list);
	free(newcfg);
	free(new_state);
	rc = 0;
out:
	loom_keyset_destroy(&ks);
	free(m.text);
	return rc;
}

int ctl_restore(ctl_t *ctl, int argc, char **argv)
{
	(void)ctl;
	const char *from = NULL, *to = NULL, *keyset = NULL, *pwfile = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **dst = NULL;
		const char *flag = NULL;
		if (strncmp(a, "--from", 6) == 0 && (a[6] == '\0' || a[6] == '='))
			dst = &from, flag = "--from";
		else if (strncmp(a, "--to", 4) == 0 && (a[4] == '\0' || a[4] == '='))
			dst = &to, flag = "--to";
		else if (strncmp(a, "--keyset", 8) == 0 && (a[8] == '\0' || a[8] == '='))
			dst = &keyset, flag = "--keyset";
		else if (strncmp(a, "--passphrase-file", 17) == 0 && (a[17] == '\0' || a[17] == '='))
			dst = &pwfile, flag = "--passphrase-file";
		else {
			fprintf(stderr, "loomctl restore: unexpected '%s'\n", a);
			return 2;
		}
		if ((*dst = ctl_option_value("restore", argc, argv, &i, flag, strlen(flag))) == NULL)
			return 2;
	}
	if (from == NULL || to == NULL) {
		fprintf(stderr, "loomctl restore: expected --from BACKUP_DIR --to CONFIG_DIR [--keyset FILE]\n");
		return 2;
	}
	return do_restore(from, to, keyset, pwfile);
}
