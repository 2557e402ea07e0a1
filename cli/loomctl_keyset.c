/* loomctl_keyset.c - `loomctl keys create|export|import|list|rotate` and
 * `loomctl secret set|list`: the installation's key set and the secrets it
 * seals (docs/recovery.md).
 *
 * Files in STATE_DIR:
 *   keyset                the key set (mode 0600; never in a backup)
 *   installation          the installation id alone (in backups: a key set
 *                         from another installation is refused by it)
 *   secrets/AGENT/KEY     one sealed line per credential (loom_keyset.h)
 *   secrets-to-reenter    "AGENT KEY" lines a restore without the key set
 *                         could not bring back; `secret set` removes them
 */
#include "loomctl.h"
#include "loomctl_recovery.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_file.h"
#include "loom_keyset.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

char *rcv_read_file(const char *path, size_t max, char **ret_error)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*ret_error = loom_sprintf("cannot open '%s': %s", path, strerror(errno));
		return NULL;
	}
	loom_buf_t b = LOOM_BUF_INIT;
	char chunk[8192];
	ssize_t r;
	while ((r = read(fd, chunk, sizeof(chunk))) > 0) {
		loom_buf_add(&b, chunk, (size_t)r);
		if (b.len > max) {
			close(fd);
			loom_buf_release(&b);
			*ret_error = loom_sprintf("'%s' is too large", path);
			return NULL;
		}
	}
	int e = errno;
	close(fd);
	if (r < 0) {
		loom_buf_release(&b);
		*ret_error = loom_sprintf("cannot read '%s': %s", path, strerror(e));
		return NULL;
	}
	loom_buf_adds(&b, "");
	return loom_buf_steal(&b);
}

int rcv_mkdirs(const char *path, mode_t mode)
{
	char *p = loom_strdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			free(p);
			return -1;
		}
		*s = '/';
	}
	int rc = mkdir(p, mode) < 0 && errno != EEXIST ? -1 : 0;
	free(p);
	return rc;
}

char *rcv_passphrase(const char *file, bool twice, char **ret_error)
{
	if (file != NULL) {
		char *t = rcv_read_file(file, 4096, ret_error);
		if (t == NULL)
			return NULL;
		t[strcspn(t, "\r\n")] = '\0';
		if (*t == '\0') {
			free(t);
			*ret_error = loom_sprintf("passphrase file '%s' is empty", file);
			return NULL;
		}
		return t;
	}
	const char *env = getenv("LOOM_PASSPHRASE");
	if (env != NULL && *env != '\0')
		return loom_strdup(env);
	if (!isatty(STDIN_FILENO)) {
		*ret_error = loom_strdup("no passphrase: give --passphrase-file FILE, set LOOM_PASSPHRASE or run on a terminal");
		return NULL;
	}
	char *a = getpass("passphrase: ");
	if (a == NULL || *a == '\0') {
		*ret_error = loom_strdup("no passphrase given");
		return NULL;
	}
	char *first = loom_strdup(a);
	sodium_memzero(a, strlen(a));
	if (twice) {
		char *b = getpass("again: ");
		bool same = b != NULL && strcmp(b, first) == 0;
		if (b != NULL)
			sodium_memzero(b, strlen(b));
		if (!same) {
			rcv_wipe_free(&first);
			*ret_error = loom_strdup("the passphrases differ");
			return NULL;
		}
	}
	return first;
}

void rcv_wipe_free(char **s_p)
{
	if (*s_p == NULL)
		return;
	sodium_memzero(*s_p, strlen(*s_p));
	free(*s_p);
	*s_p = NULL;
}

bool rcv_valid_name(const char *s)
{
	if (*s == '\0' || *s == '.' || strlen(s) > 128)
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == strlen(s);
}

/* The state directory of the deployment, or NULL after saying why. */
static const char *state_dir(ctl_t *ctl, const char *what)
{
	if (ctl_load_config(ctl) < 0) {
		fprintf(stderr, "loomctl %s: cannot load the configuration\n", what);
		return NULL;
	}
	return ctl->cfg.state_dir;
}

static loom_keyset_t *load_local(const char *sd, const char *what)
{
	char *path = loom_sprintf("%s/keyset", sd), *err = NULL;
	loom_keyset_t *ks = NULL;
	if (access(path, F_OK) < 0 && errno == ENOENT)
		fprintf(stderr, "loomctl %s: no key set in '%s' (create one with `loomctl keys create` "
		    "or import it with `loomctl keys import --from FILE`)\n", what, sd);
	else if (loom_keyset_load(path, &ks, &err) < 0) {
		fprintf(stderr, "loomctl %s: %s\n", what, err);
		free(err);
	}
	free(path);
	return ks;
}

char *rcv_installation(const char *sd)
{
	char *path = loom_sprintf("%s/installation", sd), *err = NULL;
	char *t = rcv_read_file(path, 256, &err);
	free(path);
	free(err);
	if (t == NULL)
		return NULL;
	t[strcspn(t, "\r\n")] = '\0';
	return t;
}

int rcv_write_installation(const char *sd, const char *id, char **ret_error)
{
	char *path = loom_sprintf("%s/installation", sd);
	char *text = loom_sprintf("%s\n", id);
	int rc = loom_file_replace(path, text, strlen(text), 0644, ret_error);
	free(path);
	free(text);
	return rc;
}

/* Calls fn for every secrets/AGENT/KEY; stops at the first non-zero. */
static int each_secret(const char *sd, int (*fn)(const char *path, const char *agent, const char *key, void *arg), void *arg)
{
	char *root = loom_sprintf("%s/secrets", sd);
	DIR *d = opendir(root);
	int rc = 0;
	if (d == NULL) {
		free(root);
		return 0;
	}
	struct dirent *a;
	while (rc == 0 && (a = readdir(d)) != NULL) {
		if (!rcv_valid_name(a->d_name))
			continue;
		char *ad = loom_sprintf("%s/%s", root, a->d_name);
		DIR *d2 = opendir(ad);
		struct dirent *k;
		while (d2 != NULL && rc == 0 && (k = readdir(d2)) != NULL) {
			if (!rcv_valid_name(k->d_name))
				continue;
			char *p = loom_sprintf("%s/%s", ad, k->d_name);
			rc = fn(p, a->d_name, k->d_name, arg);
			free(p);
		}
		if (d2 != NULL)
			closedir(d2);
		free(ad);
	}
	closedir(d);
	free(root);
	return rc;
}

int rcv_list_secrets(const char *sd, int (*fn)(const char *path, const char *agent, const char *key, void *arg), void *arg)
{
	return each_secret(sd, fn, arg);
}

static int keys_create(ctl_t *ctl)
{
	const char *sd = state_dir(ctl, "keys create");
	if (sd == NULL)
		return 1;
	char *path = loom_sprintf("%s/keyset", sd), *err = NULL;
	int rc = 1;
	char *inst = rcv_installation(sd);
	if (access(path, F_OK) == 0) {
		fprintf(stderr, "loomctl keys create: a key set already exists in '%s' (rotate it with `loomctl keys rotate`)\n", sd);
		goto out;
	}
	if (rcv_mkdirs(sd, 0755) < 0) {
		fprintf(stderr, "loomctl keys create: cannot create '%s': %s\n", sd, strerror(errno));
		goto out;
	}
	loom_keyset_t *ks = loom_keyset_new();
	if (loom_keyset_save(ks, path, &err) < 0 ||
	    rcv_write_installation(sd, loom_keyset_installation(ks), &err) < 0) {
		fprintf(stderr, "loomctl keys create: %s\n", err);
		free(err);
		loom_keyset_destroy(&ks);
		goto out;
	}
	printf("created key set for installation %s in '%s' (key version 1)\n", loom_keyset_installation(ks), path);
	if (inst != NULL && strcmp(inst, loom_keyset_installation(ks)) != 0)
		printf("warning: this state was restored from installation %s: its secrets must be re-entered\n", inst);
	printf("export it now (`loomctl keys export --to FILE`) and keep the file apart from the backups\n");
	loom_keyset_destroy(&ks);
	rc = 0;
out:
	free(inst);
	free(path);
	return rc;
}

struct count_arg {
	const loom_keyset_t *ks;   /* the set whose versions are counted */
	size_t *counts;            /* per version index */
	size_t unknown;            /* secrets sealed with a version not held */
};

static int count_one(const char *path, const char *agent, const char *key, void *arg)
{
	(void)agent;
	(void)key;
	struct count_arg *ca = arg;
	char *err = NULL, *t = rcv_read_file(path, 1 << 20, &err);
	free(err);
	unsigned v = t ? loom_secret_version(t) : 0;
	free(t);
	for (size_t i = 0; i < loom_keyset_count(ca->ks); i++) {
		unsigned kv;
		int64_t created;
		loom_keyset_version_at(ca->ks, i, &kv, &created);
		if (kv == v) {
			ca->counts[i]++;
			return 0;
		}
	}
	ca->unknown++;
	return 0;
}

static int keys_list(ctl_t *ctl)
{
	const char *sd = state_dir(ctl, "keys list");
	if (sd == NULL)
		return 1;
	loom_keyset_t *ks = load_local(sd, "keys list");
	if (ks == NULL)
		return 1;
	struct count_arg ca = { ks, loom_calloc(loom_keyset_count(ks), sizeof(size_t)), 0 };
	each_secret(sd, count_one, &ca);
	if (ctl->json) {
		printf("{\"installation\":\"%s\",\"current\":%u,\"versions\":[", loom_keyset_installation(ks),
		    loom_keyset_current(ks));
		for (size_t i = 0; i < loom_keyset_count(ks); i++) {
			unsigned v;
			int64_t c;
			loom_keyset_version_at(ks, i, &v, &c);
			printf("%s{\"version\":%u,\"created\":%lld,\"secrets\":%zu}", i ? "," : "", v, (long long)c, ca.counts[i]);
		}
		printf("],\"unreadable_secrets\":%zu}\n", ca.unknown);
	} else {
		printf("installation %s\n%-8s %-20s %-8s %s\n", loom_keyset_installation(ks), "VERSION", "CREATED", "SECRETS", "");
		for (size_t i = 0; i < loom_keyset_count(ks); i++) {
			unsigned v;
			int64_t c;
			loom_keyset_version_at(ks, i, &v, &c);
			char when[32];
			ctl_fmt_time(when, sizeof(when), c * 1000000);
			printf("%-8u %-20s %-8zu %s\n", v, when, ca.counts[i], v == loom_keyset_current(ks) ? "current" : "");
		}
		if (ca.unknown)
			printf("%zu secret(s) sealed with a version this set does not hold\n", ca.unknown);
	}
	free(ca.counts);
	loom_keyset_destroy(&ks);
	return 0;
}

static int keys_export(ctl_t *ctl, const char *to, const char *pwfile, bool force)
{
	if (to == NULL) {
		fprintf(stderr, "loomctl keys export: expected --to FILE\n");
		return 2;
	}
	const char *sd = state_dir(ctl, "keys export");
	if (sd == NULL)
		return 1;
	if (!force && access(to, F_OK) == 0) {
		fprintf(stderr, "loomctl keys export: '%s' exists (give --force to replace it)\n", to);
		return 1;
	}
	loom_keyset_t *ks = load_local(sd, "keys export");
	if (ks == NULL)
		return 1;
	char *err = NULL, *pw = rcv_passphrase(pwfile, true, &err);
	if (pw == NULL) {
		fprintf(stderr, "loomctl keys export: %s\n", err);
		free(err);
		loom_keyset_destroy(&ks);
		return 1;
	}
	char *text = loom_keyset_export(ks, pw);
	rcv_wipe_free(&pw);
	int rc = loom_file_replace(to, text, strlen(text), 0600, &err);
	free(text);
	if (rc < 0) {
		fprintf(stderr, "loomctl keys export: %s\n", err);
		free(err);
	} else
		printf("exported key set of installation %s (%zu version(s)) to '%s'\n", loom_keyset_installation(ks),
		    loom_keyset_count(ks), to);
	loom_keyset_destroy(&ks);
	return rc < 0 ? 1 : 0;
}

int rcv_open_export(const char *file, const char *pwfile, loom_keyset_t **ret_ks, char **ret_error)
{
	char *err = NULL, *text = rcv_read_file(file, 1 << 20, &err);
	if (text == NULL) {
		*ret_error = err;
		return -1;
	}
	char *pw = rcv_passphrase(pwfile, false, &err);
	if (pw == NULL) {
		free(text);
		*ret_error = err;
		return -1;
	}
	int rc = loom_keyset_import(text, pw, ret_ks, &err);
	rcv_wipe_free(&pw);
	free(text);
	if (rc < 0) {
		*ret_error = loom_sprintf("key set '%s': %s", file, err);
		free(err);
	}
	return rc;
}

int rcv_keyset_accept(const char *sd, loom_keyset_t **ks_p, const char *from, loom_keyset_t **ret_merged,
    char **ret_error)
{
	loom_keyset_t *ks = *ks_p;
	char *inst = rcv_installation(sd);
	if (inst != NULL && strcmp(inst, loom_keyset_installation(ks)) != 0) {
		*ret_error = loom_sprintf("key set '%s' is from another installation (%s; this one is %s)",
		    from, loom_keyset_installation(ks), inst);
		free(inst);
		return -1;
	}
	free(inst);
	char *path = loom_sprintf("%s/keyset", sd);
	/* Into an installation that has a key set: the versions it lacks are
	 * added and its current version stays, so an older export never takes
	 * away a key that seals a secret now. */
	if (access(path, F_OK) == 0) {
		loom_keyset_t *local = NULL;
		char *err = NULL;
		if (loom_keyset_load(path, &local, &err) < 0) {
			*ret_error = err;
			free(path);
			return -1;
		}
		if (strcmp(loom_keyset_installation(local), loom_keyset_installation(ks)) != 0) {
			*ret_error = loom_sprintf("key set '%s' is from another installation (%s; this one is %s)",
			    from, loom_keyset_installation(ks), loom_keyset_installation(local));
			loom_keyset_destroy(&local);
			free(path);
			return -1;
		}
		loom_keyset_merge(local, ks);
		loom_keyset_destroy(ks_p);
		*ret_merged = local;
	} else {
		*ret_merged = ks;
		*ks_p = NULL;
	}
	free(path);
	return 0;
}

int rcv_keyset_install(const char *sd, const loom_keyset_t *ks, char **ret_error)
{
	char *path = loom_sprintf("%s/keyset", sd), *err = NULL;
	char *inst = rcv_installation(sd);
	int rc = 0;
	if (rcv_mkdirs(sd, 0755) < 0 || loom_keyset_save(ks, path, &err) < 0 ||
	    (inst == NULL && rcv_write_installation(sd, loom_keyset_installation(ks), &err) < 0)) {
		*ret_error = err ? err : loom_strdup(strerror(errno));
		rc = -1;
	}
	free(inst);
	free(path);
	return rc;
}

static int keys_import(ctl_t *ctl, const char *from, const char *pwfile)
{
	if (from == NULL) {
		fprintf(stderr, "loomctl keys import: expected --from FILE\n");
		return 2;
	}
	const char *sd = state_dir(ctl, "keys import");
	if (sd == NULL)
		return 1;
	loom_keyset_t *ks = NULL, *merged = NULL;
	char *err = NULL;
	if (rcv_open_export(from, pwfile, &ks, &err) < 0) {
		fprintf(stderr, "loomctl keys import: %s\n", err);
		free(err);
		return 1;
	}
	int rc = 1;
	if (rcv_keyset_accept(sd, &ks, from, &merged, &err) < 0 || rcv_keyset_install(sd, merged, &err) < 0) {
		fprintf(stderr, "loomctl keys import: %s\n", err);
		free(err);
		goto out;
	}
	printf("imported key set of installation %s (%zu version(s), current %u) into '%s/keyset'\n",
	    loom_keyset_installation(merged), loom_keyset_count(merged), loom_keyset_current(merged), sd);
	rc = 0;
out:
	loom_keyset_destroy(&ks);
	loom_keyset_destroy(&merged);
	return rc;
}

struct reseal_arg {
	const loom_keyset_t *ks;   /* the rotated set */
	size_t done;               /* secrets re-sealed */
	char *error;               /* first failure */
};

static int reseal_one(const char *path, const char *agent, const char *key, void *arg)
{
	struct reseal_arg *ra = arg;
	char *err = NULL, *t = rcv_read_file(path, 1 << 20, &err), *plain = NULL;
	size_t len;
	if (t == NULL || loom_secret_open(ra->ks, t, &plain, &len, &err) < 0) {
		ra->error = loom_sprintf("secret %s %s: %s", agent, key, err);
		free(err);
		free(t);
		return -1;
	}
	free(t);
	char *sealed = loom_secret_seal(ra->ks, plain, len);
	loom_secret_free(&plain);
	int rc = loom_file_replace(path, sealed, strlen(sealed), 0600, &err);
	free(sealed);
	if (rc < 0) {
		ra->error = err;
		return -1;
	}
	ra->done++;
	return 0;
}

static int keys_rotate(ctl_t *ctl)
{
	const char *sd = state_dir(ctl, "keys rotate");
	if (sd == NULL)
		return 1;
	loom_keyset_t *ks = load_local(sd, "keys rotate");
	if (ks == NULL)
		return 1;
	/* The new version is saved before any secret is re-sealed, and the old
	 * versions stay: a rotation stopped half-way leaves every secret
	 * readable, and running it again finishes it. */
	unsigned v = loom_keyset_rotate(ks);
	char *path = loom_sprintf("%s/keyset", sd), *err = NULL;
	int rc = 1;
	if (loom_keyset_save(ks, path, &err) < 0) {
		fprintf(stderr, "loomctl keys rotate: %s\n", err);
		free(err);
		goto out;
	}
	struct reseal_arg ra = { ks, 0, NULL };
	if (each_secret(sd, reseal_one, &ra) != 0) {
		fprintf(stderr, "loomctl keys rotate: %s (key version %u is current; run again to finish)\n", ra.error, v);
		free(ra.error);
		goto out;
	}
	printf("rotated to key version %u: %zu secret(s) re-sealed; older versions kept for older backups\n", v, ra.done);
	printf("export the key set again: an export made before this rotation cannot open new secrets\n");
	rc = 0;
out:
	free(path);
	loom_keyset_destroy(&ks);
	return rc;
}

int ctl_keyset(ctl_t *ctl, int argc, char **argv)
{
	const char *to = NULL, *from = NULL, *pwfile = NULL;
	bool force = false;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (strncmp(a, "--to", 4) == 0 && (a[4] == '\0' || a[4] == '=')) {
			if ((to = ctl_option_value("keys", argc, argv, &i, "--to", 4)) == NULL)
				return 2;
		} else if (strncmp(a, "--from", 6) == 0 && (a[6] == '\0' || a[6] == '=')) {
			if ((from = ctl_option_value("keys", argc, argv, &i, "--from", 6)) == NULL)
				return 2;
		} else if (strncmp(a, "--passphrase-file", 17) == 0 && (a[17] == '\0' || a[17] == '=')) {
			if ((pwfile = ctl_option_value("keys", argc, argv, &i, "--passphrase-file", 17)) == NULL)
				return 2;
		} else if (strcmp(a, "--force") == 0)
			force = true;
		else {
			fprintf(stderr, "loomctl keys %s: unexpected '%s'\n", argv[1], a);
			return 2;
		}
	}
	if (strcmp(argv[1], "create") == 0)
		return keys_create(ctl);
	if (strcmp(argv[1], "list") == 0)
		return keys_list(ctl);
	if (strcmp(argv[1], "export") == 0)
		return keys_export(ctl, to, pwfile, force);
	if (strcmp(argv[1], "import") == 0)
		return keys_import(ctl, from, pwfile);
	if (strcmp(argv[1], "rotate") == 0)
		return keys_rotate(ctl);
	fprintf(stderr, "loomctl keys: unknown '%s' (gen, create, export, import, list, rotate)\n", argv[1]);
	return 2;
}

static int remove_reenter(const char *sd, const char *agent, const char *key)
{
	char *path = loom_sprintf("%s/secrets-to-reenter", sd), *err = NULL;
	char *t = rcv_read_file(path, 1 << 20, &err);
	free(err);
	if (t == NULL) {
		free(path);
		return 0;
	}
	char *want = loom_sprintf("%s %s", agent, key);
	loom_buf_t b = LOOM_BUF_INIT;
	size_t left = 0;
	for (char *line = strtok(t, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		if (strcmp(line, want) == 0)
			continue;
		loom_buf_printf(&b, "%s\n", line);
		left++;
	}
	int rc;
	if (left == 0)
		rc = unlink(path) < 0 && errno != ENOENT ? -1 : 0;
	else
		rc = loom_file_replace(path, b.data, b.len, 0644, &err);
	free(err);
	loom_buf_release(&b);
	free(want);
	free(t);
	free(path);
	return rc;
}

static int print_secret(const char *path, const char *agent, const char *key, void *arg)
{
	(void)arg;
	char *err = NULL, *t = rcv_read_file(path, 1 << 20, &err);
	free(err);
	printf("%-20s %-24s %u\n", agent, key, t ? loom_secret_version(t) : 0);
	free(t);
	return 0;
}

int ctl_secret(ctl_t *ctl, int argc, char **argv)
{
	if (argc < 2 || (strcmp(argv[1], "set") != 0 && strcmp(argv[1], "list") != 0)) {
		fprintf(stderr, "loomctl secret: expected 'set AGENT KEY' (value on standard input) or 'list'\n");
		return 2;
	}
	const char *sd = state_dir(ctl, "secret");
	if (sd == NULL)
		return 1;
	if (strcmp(argv[1], "list") == 0) {
		printf("%-20s %-24s %s\n", "AGENT", "KEY", "KEY-VERSION");
		rcv_list_secrets(sd, print_secret, NULL);
		char *path = loom_sprintf("%s/secrets-to-reenter", sd), *err = NULL;
		char *t = rcv_read_file(path, 1 << 20, &err);
		free(err);
		free(path);
		for (char *line = t ? strtok(t, "\n") : NULL; line != NULL; line = strtok(NULL, "\n"))
			printf("%-45s missing: re-enter with `loomctl secret set %s`\n", line, line);
		free(t);
		return 0;
	}
	if (argc != 4 || !rcv_valid_name(argv[2]) || !rcv_valid_name(argv[3])) {
		fprintf(stderr, "loomctl secret set: expected AGENT KEY (letters, digits, '_', '.', '-')\n");
		return 2;
	}
	loom_keyset_t *ks = load_local(sd, "secret set");
	if (ks == NULL)
		return 1;
	char *value = ctl_read_stdin();
	size_t len = strlen(value);
	while (len > 0 && (value[len - 1] == '\n' || value[len - 1] == '\r'))
		len--;
	char *sealed = loom_secret_seal(ks, value, len);
	sodium_memzero(value, strlen(value));
	free(value);
	char *dir = loom_sprintf("%s/secrets/%s", sd, argv[2]);
	char *path = loom_sprintf("%s/%s", dir, argv[3]), *err = NULL;
	int rc = 1;
	if (len == 0)
		fprintf(stderr, "loomctl secret set: no value on standard input\n");
	else if (rcv_mkdirs(dir, 0700) < 0)
		fprintf(stderr, "loomctl secret set: cannot create '%s': %s\n", dir, strerror(errno));
	else if (loom_file_replace(path, sealed, strlen(sealed), 0600, &err) < 0) {
		fprintf(stderr, "loomctl secret set: %s\n", err);
		free(err);
	} else {
		remove_reenter(sd, argv[2], argv[3]);
		printf("secret %s %s sealed with key version %u\n", argv[2], argv[3], loom_keyset_current(ks));
		rc = 0;
	}
	free(sealed);
	free(dir);
	free(path);
	loom_keyset_destroy(&ks);
	return rc;
}
