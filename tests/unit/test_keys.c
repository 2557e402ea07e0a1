/* test_keys.c - key files, the allow-list and sealed boxes (lib/loom_keys.c).
 *
 * Every test that touches files works in its own mkdtemp directory, removed
 * afterwards. Tables, one case per row: umasks for the written file modes,
 * bad key names, key file texts with the wanted read_pair and read_public
 * outcome (placeholders stand for real Z85 keys), keyring directories, and
 * sealed boxes.
 */
#define _GNU_SOURCE /* nftw, scandir, memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_keys.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- scratch directory ---------------------------------------------------- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int scratch_setup(void **state)
{
	const char *base = getenv("TMPDIR");
	char *tmpl = loom_sprintf("%s/loom-test-keys.XXXXXX", base && *base ? base : "/tmp");
	if (mkdtemp(tmpl) == NULL) {
		free(tmpl);
		return -1;
	}
	*state = tmpl;
	return 0;
}

static int scratch_teardown(void **state)
{
	char *dir = *state;
	int rc = nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
	return rc;
}

static char *path_in(const char *dir, const char *name)
{
	return loom_sprintf("%s/%s", dir, name);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f == NULL)
		fail_msg("cannot create '%s': %s", path, strerror(errno));
	fputs(text, f);
	if (fclose(f) != 0)
		fail_msg("cannot write '%s': %s", path, strerror(errno));
}

static char *read_whole(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		fail_msg("cannot open '%s': %s", path, strerror(errno));
	loom_buf_t b = LOOM_BUF_INIT;
	char chunk[512];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		loom_buf_add(&b, chunk, n);
	fclose(f);
	return loom_buf_steal(&b);
}

/* Names of the entries in dir, sorted, joined by spaces. */
static char *list_dir(const char *dir)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, alphasort);
	if (n < 0)
		fail_msg("cannot list '%s': %s", dir, strerror(errno));
	loom_buf_t b = LOOM_BUF_INIT;
	for (int i = 0; i < n; i++) {
		if (strcmp(ents[i]->d_name, ".") != 0 && strcmp(ents[i]->d_name, "..") != 0)
			loom_buf_printf(&b, "%s%s", b.len ? " " : "", ents[i]->d_name);
		free(ents[i]);
	}
	free(ents);
	return loom_buf_steal(&b);
}

static bool contains(const char *s, const char *want)
{
	return s != NULL && strstr(s, want) != NULL;
}

/* ---- write, modes, read back ---------------------------------------------- */

static void test_write_read_round_trip(void **state)
{
	const char *dir = *state;
	static const struct {
		const char *label;
		const char *name;        /* key name */
		mode_t umask;            /* process umask while writing */
	} cases[] = {
		{ "usual umask", "engine", 022 },
		{ "strict umask", "ma.hr", 077 },
		{ "no umask", "a-b_c", 0 },
		{ "umask that would strip the owner", "pcns", 0277 },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		const char *label = cases[i].label;
		loom_keypair_t kp;
		loom_keypair_generate(&kp);
		char *err = NULL;
		mode_t old = umask(cases[i].umask);
		int rc = loom_keys_write(dir, cases[i].name, &kp, false, &err);
		umask(old);
		if (rc != 0)
			fail_msg("%s: write failed: %s", label, err);

		char *keyname = loom_sprintf("%s.key", cases[i].name);
		char *pubname = loom_sprintf("%s.pub", cases[i].name);
		char *keypath = path_in(dir, keyname);
		char *pubpath = path_in(dir, pubname);
		struct stat st;
		if (stat(keypath, &st) != 0 || !S_ISREG(st.st_mode))
			fail_msg("%s: no file '%s'", label, keypath);
		if ((st.st_mode & 07777) != 0600)
			fail_msg("%s: '%s' has mode %04o, want 0600", label, keypath, (unsigned)(st.st_mode & 07777));
		if (stat(pubpath, &st) != 0 || !S_ISREG(st.st_mode))
			fail_msg("%s: no file '%s'", label, pubpath);
		if ((st.st_mode & 07777) != 0644)
			fail_msg("%s: '%s' has mode %04o, want 0644", label, pubpath, (unsigned)(st.st_mode & 07777));

		/* The files hold the Z85 text; the .pub holds no secret. */
		char pz[LOOM_Z85_KEY_LEN + 1], sz[LOOM_Z85_KEY_LEN + 1];
		loom_keys_z85(kp.pub, pz);
		loom_keys_z85(kp.sec, sz);
		assert_int_equal(strlen(pz), LOOM_Z85_KEY_LEN);
		char *keytext = read_whole(keypath);
		char *pubtext = read_whole(pubpath);
		if (!contains(keytext, pz) || !contains(keytext, sz))
			fail_msg("%s: .key lacks the keys:\n%s", label, keytext);
		if (!contains(pubtext, pz) || contains(pubtext, sz) || contains(pubtext, "secret-key"))
			fail_msg("%s: .pub is wrong:\n%s", label, pubtext);
		sodium_memzero(keytext, strlen(keytext));
		free(keytext);
		free(pubtext);

		loom_keypair_t back;
		if (loom_keys_read_pair(keypath, &back, &err) != 0)
			fail_msg("%s: read_pair: %s", label, err);
		if (memcmp(back.pub, kp.pub, LOOM_KEY_LEN) != 0 || memcmp(back.sec, kp.sec, LOOM_KEY_LEN) != 0)
			fail_msg("%s: read_pair gave other keys", label);
		uint8_t pub[LOOM_KEY_LEN];
		if (loom_keys_read_public(pubpath, pub, &err) != 0)
			fail_msg("%s: read_public .pub: %s", label, err);
		if (memcmp(pub, kp.pub, LOOM_KEY_LEN) != 0)
			fail_msg("%s: read_public .pub gave another key", label);
		memset(pub, 0, sizeof pub);
		if (loom_keys_read_public(keypath, pub, &err) != 0)
			fail_msg("%s: read_public .key: %s", label, err);
		if (memcmp(pub, kp.pub, LOOM_KEY_LEN) != 0)
			fail_msg("%s: read_public .key gave another key", label);

		/* No temporary files left behind. */
		char *listing = list_dir(dir);
		if (contains(listing, ".tmp"))
			fail_msg("%s: temporary file left: %s", label, listing);
		free(listing);

		loom_keypair_wipe(&kp);
		for (size_t j = 0; j < LOOM_KEY_LEN; j++)
			if (kp.sec[j] != 0)
				fail_msg("%s: wipe left the secret", label);
		loom_keypair_wipe(&back);
		sodium_memzero(sz, sizeof sz);
		free(keyname);
		free(pubname);
		free(keypath);
		free(pubpath);
	}
}

/* A key directory that does not exist yet is created. */
static void test_write_creates_dir(void **state)
{
	const char *dir = *state;
	char *sub = path_in(dir, "keys");
	loom_keypair_t kp;
	loom_keypair_generate(&kp);
	char *err = NULL;
	if (loom_keys_write(sub, "engine", &kp, false, &err) != 0)
		fail_msg("write into a new directory: %s", err);
	char *listing = list_dir(sub);
	assert_string_equal(listing, "engine.key engine.pub");
	free(listing);

	/* A directory that cannot be created is an error naming it. */
	char *deep = path_in(dir, "no/such/parent");
	if (loom_keys_write(deep, "engine", &kp, false, &err) != -1)
		fail_msg("write under a missing parent succeeded");
	if (!contains(err, "cannot create key directory") || !contains(err, deep))
		fail_msg("error '%s'", err);
	free(err);
	free(deep);
	free(sub);
	loom_keypair_wipe(&kp);
}

static void test_write_no_overwrite(void **state)
{
	const char *dir = *state;
	static const struct {
		const char *label;
		const char *remove;      /* file removed after the first write, or NULL */
	} cases[] = {
		{ "both files exist", NULL },
		{ "only the .pub exists", "engine.key" },
		{ "only the .key exists", "engine.pub" },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		const char *label = cases[i].label;
		loom_keypair_t first, second, back;
		loom_keypair_generate(&first);
		loom_keypair_generate(&second);
		char *err = NULL;
		if (loom_keys_write(dir, "engine", &first, true, &err) != 0)
			fail_msg("%s: first write: %s", label, err);
		char *keypath = path_in(dir, "engine.key");
		char *pubpath = path_in(dir, "engine.pub");
		if (cases[i].remove) {
			char *p = path_in(dir, cases[i].remove);
			assert_int_equal(unlink(p), 0);
			free(p);
		}
		char *before = list_dir(dir);

		if (loom_keys_write(dir, "engine", &second, false, &err) != -1)
			fail_msg("%s: overwrote without force", label);
		if (!contains(err, "already exists") || !contains(err, "'engine'"))
			fail_msg("%s: error '%s'", label, err);
		free(err);
		err = NULL;
		char *after = list_dir(dir);
		assert_string_equal(before, after);
		free(after);
		uint8_t pub[LOOM_KEY_LEN];
		const char *left = cases[i].remove && strcmp(cases[i].remove, "engine.pub") == 0 ? keypath : pubpath;
		if (loom_keys_read_public(left, pub, &err) != 0 || memcmp(pub, first.pub, LOOM_KEY_LEN) != 0)
			fail_msg("%s: refused write changed '%s'", label, left);

		if (loom_keys_write(dir, "engine", &second, true, &err) != 0)
			fail_msg("%s: forced write: %s", label, err);
		if (loom_keys_read_pair(keypath, &back, &err) != 0)
			fail_msg("%s: read after force: %s", label, err);
		if (memcmp(back.pub, second.pub, LOOM_KEY_LEN) != 0 || memcmp(back.sec, second.sec, LOOM_KEY_LEN) != 0)
			fail_msg("%s: forced write did not replace the pair", label);
		if (loom_keys_read_public(pubpath, pub, &err) != 0 || memcmp(pub, second.pub, LOOM_KEY_LEN) != 0)
			fail_msg("%s: forced write did not replace the .pub", label);
		struct stat st;
		assert_int_equal(stat(keypath, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0600);
		assert_int_equal(stat(pubpath, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0644);

		loom_keypair_wipe(&first);
		loom_keypair_wipe(&second);
		loom_keypair_wipe(&back);
		free(before);
		free(keypath);
		free(pubpath);
	}
}

static void test_write_bad_names(void **state)
{
	const char *dir = *state;
	static const struct {
		const char *label;
		const char *name;
	} cases[] = {
		{ "empty", "" },
		{ "hidden", ".hidden" },
		{ "dot dot", ".." },
		{ "slash", "a/b" },
		{ "parent path", "../x" },
		{ "space", "a b" },
		{ "tab", "a\tb" },
		{ "newline", "a\n" },
		{ "shell and address characters", "a*b:c" },
		{ "starts with a digit", "1abc" },
		{ "an instance address, not a service", "engine@1" },
	};
	loom_keypair_t kp;
	loom_keypair_generate(&kp);
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		char *err = NULL;
		if (loom_keys_write(dir, cases[i].name, &kp, true, &err) != -1)
			fail_msg("%s: name accepted", cases[i].label);
		if (!contains(err, "bad key name"))
			fail_msg("%s: error '%s'", cases[i].label, err);
		free(err);
	}
	char *listing = list_dir(dir);
	if (listing[0] != '\0')
		fail_msg("bad names left files: %s", listing);
	free(listing);
	loom_keypair_wipe(&kp);
}

/* ---- read_pair / read_public errors --------------------------------------- */

/* In texts: @P@ is the public key of pair A, @S@ its secret, @Q@ the public
 * key of pair B, @T@ B's secret. */
typedef struct keyfile_case {
	const char *label;           /* what the case shows */
	const char *text;            /* file text; NULL: the file does not exist */
	const char *want_pair;       /* substring of the read_pair error; NULL: ok */
	const char *want_public;     /* substring of the read_public error; NULL: ok */
} keyfile_case_t;

static const keyfile_case_t keyfile_cases[] = {
	{ "good pair", "public-key = \"@P@\"\nsecret-key = \"@S@\"\n", NULL, NULL },
	{ "comments, blanks and indentation",
	  "# a comment\n\n   # indented comment\n\tpublic-key = \"@P@\"\n  secret-key = \"@S@\"\n", NULL, NULL },
	{ "secret first", "secret-key = \"@S@\"\npublic-key = \"@P@\"\n", NULL, NULL },
	{ "no trailing newline", "public-key = \"@P@\"\nsecret-key = \"@S@\"", NULL, NULL },
	{ "missing file", NULL, "cannot read key file", "cannot read key file" },
	{ "colon instead of =", "public-key: \"@P@\"\nsecret-key = \"@S@\"\n",
	  "line 1: expected name = \"value\"", "line 1: expected name = \"value\"" },
	{ "unquoted value", "# key\npublic-key = @P@\n",
	  "line 2: expected name = \"value\"", "line 2: expected name = \"value\"" },
	{ "underscore in the name", "public_key = \"@P@\"\n",
	  "line 1: expected name = \"value\"", "line 1: expected name = \"value\"" },
	{ "unknown name", "public-key = \"@P@\"\nprivate-key = \"@S@\"\n",
	  "line 2: unknown name 'private-key'", "line 2: unknown name 'private-key'" },
	{ "39-character key", "public-key = \"@P39@\"\nsecret-key = \"@S@\"\n",
	  "line 1: public-key is not a 40-character Z85 key", "line 1: public-key is not a 40-character Z85 key" },
	{ "41-character key", "public-key = \"@P@\"\nsecret-key = \"@S@x\"\n",
	  "line 2: secret-key is not a 40-character Z85 key", "line 2: secret-key is not a 40-character Z85 key" },
	{ "character outside Z85", "public-key = \"@P39@~\"\nsecret-key = \"@S@\"\n",
	  "line 1: public-key is not a 40-character Z85 key", "line 1: public-key is not a 40-character Z85 key" },
	{ "mismatched public and secret", "public-key = \"@Q@\"\nsecret-key = \"@S@\"\n",
	  "public-key does not match secret-key", NULL },
	{ "pair B public with pair A secret, reversed", "public-key = \"@P@\"\nsecret-key = \"@T@\"\n",
	  "public-key does not match secret-key", NULL },
	{ ".key lacking secret-key", "public-key = \"@P@\"\n", "lacks secret-key", NULL },
	{ ".key lacking public-key", "secret-key = \"@S@\"\n", "lacks public-key", "lacks public-key" },
	{ "empty file", "", "lacks public-key", "lacks public-key" },
	{ "only comments", "# nothing\n# here\n", "lacks public-key", "lacks public-key" },
};

/* Replaces the placeholders of t->text with real Z85 keys. */
static char *keyfile_text(const char *text, const char *p, const char *s, const char *q, const char *t)
{
	loom_buf_t b = LOOM_BUF_INIT;
	for (const char *c = text; *c;) {
		if (strncmp(c, "@P39@", 5) == 0) {
			loom_buf_add(&b, p, LOOM_Z85_KEY_LEN - 1);
			c += 5;
		} else if (strncmp(c, "@P@", 3) == 0) {
			loom_buf_adds(&b, p);
			c += 3;
		} else if (strncmp(c, "@S@", 3) == 0) {
			loom_buf_adds(&b, s);
			c += 3;
		} else if (strncmp(c, "@Q@", 3) == 0) {
			loom_buf_adds(&b, q);
			c += 3;
		} else if (strncmp(c, "@T@", 3) == 0) {
			loom_buf_adds(&b, t);
			c += 3;
		} else {
			loom_buf_addc(&b, *c++);
		}
	}
	return loom_buf_steal(&b);
}

static void test_keyfile_case(void **state)
{
	const keyfile_case_t *c = *state;
	char *dir = NULL;
	if (scratch_setup((void **)&dir) != 0)
		fail_msg("%s: mkdtemp: %s", c->label, strerror(errno));
	loom_keypair_t a, b;
	loom_keypair_generate(&a);
	loom_keypair_generate(&b);
	char p[LOOM_Z85_KEY_LEN + 1], s[LOOM_Z85_KEY_LEN + 1], q[LOOM_Z85_KEY_LEN + 1], t[LOOM_Z85_KEY_LEN + 1];
	loom_keys_z85(a.pub, p);
	loom_keys_z85(a.sec, s);
	loom_keys_z85(b.pub, q);
	loom_keys_z85(b.sec, t);
	char *path = path_in(dir, "engine.key");
	if (c->text) {
		char *text = keyfile_text(c->text, p, s, q, t);
		write_file(path, text);
		free(text);
	}

	loom_keypair_t got;
	memset(&got, 0xee, sizeof got);
	char *err = NULL;
	int rc = loom_keys_read_pair(path, &got, &err);
	if (c->want_pair == NULL) {
		if (rc != 0)
			fail_msg("%s: read_pair failed: %s", c->label, err);
		if (memcmp(got.pub, a.pub, LOOM_KEY_LEN) != 0 || memcmp(got.sec, a.sec, LOOM_KEY_LEN) != 0)
			fail_msg("%s: read_pair gave other keys", c->label);
	} else {
		if (rc != -1)
			fail_msg("%s: read_pair accepted, want '%s'", c->label, c->want_pair);
		if (!contains(err, c->want_pair) || !contains(err, path))
			fail_msg("%s: read_pair error '%s', want '%s' naming '%s'", c->label, err, c->want_pair, path);
		for (size_t i = 0; i < sizeof got; i++)
			if (((uint8_t *)&got)[i] != 0xee)
				fail_msg("%s: read_pair wrote its output on failure", c->label);
		free(err);
		err = NULL;
	}

	uint8_t pub[LOOM_KEY_LEN];
	memset(pub, 0xee, sizeof pub);
	rc = loom_keys_read_public(path, pub, &err);
	if (c->want_public == NULL) {
		if (rc != 0)
			fail_msg("%s: read_public failed: %s", c->label, err);
		if (memcmp(pub, contains(c->text, "@Q@") ? b.pub : a.pub, LOOM_KEY_LEN) != 0)
			fail_msg("%s: read_public gave another key", c->label);
	} else {
		if (rc != -1)
			fail_msg("%s: read_public accepted, want '%s'", c->label, c->want_public);
		if (!contains(err, c->want_public) || !contains(err, path))
			fail_msg("%s: read_public error '%s', want '%s' naming '%s'", c->label, err, c->want_public, path);
		for (size_t i = 0; i < sizeof pub; i++)
			if (pub[i] != 0xee)
				fail_msg("%s: read_public wrote its output on failure", c->label);
		free(err);
	}
	loom_keypair_wipe(&a);
	loom_keypair_wipe(&b);
	loom_keypair_wipe(&got);
	free(path);
	scratch_teardown((void **)&dir);
}

/* A pair written by loom_keys_write, then its public line edited to another
 * key: read_pair notices, read_public believes the file. */
static void test_read_pair_edited_file(void **state)
{
	const char *dir = *state;
	loom_keypair_t a, b, got;
	loom_keypair_generate(&a);
	loom_keypair_generate(&b);
	char *err = NULL;
	if (loom_keys_write(dir, "engine", &a, false, &err) != 0)
		fail_msg("write: %s", err);
	char *keypath = path_in(dir, "engine.key");
	char *text = read_whole(keypath);
	char pa[LOOM_Z85_KEY_LEN + 1], pb[LOOM_Z85_KEY_LEN + 1];
	loom_keys_z85(a.pub, pa);
	loom_keys_z85(b.pub, pb);
	char *at = strstr(text, pa);
	assert_non_null(at);
	memcpy(at, pb, LOOM_Z85_KEY_LEN);
	write_file(keypath, text);
	sodium_memzero(text, strlen(text));
	free(text);

	if (loom_keys_read_pair(keypath, &got, &err) != -1)
		fail_msg("edited pair accepted");
	if (!contains(err, "does not match") || !contains(err, keypath))
		fail_msg("error '%s'", err);
	free(err);
	uint8_t pub[LOOM_KEY_LEN];
	if (loom_keys_read_public(keypath, pub, &err) != 0 || memcmp(pub, b.pub, LOOM_KEY_LEN) != 0)
		fail_msg("read_public of the edited file");
	loom_keypair_wipe(&a);
	loom_keypair_wipe(&b);
	free(keypath);
}

/* ---- keyring -------------------------------------------------------------- */

static void test_keyring(void **state)
{
	const char *dir = *state;
	static const char *const names[] = { "alpha", "beta", "ma.hr" };
	loom_keypair_t kps[3];
	char *err = NULL;
	for (size_t i = 0; i < 3; i++) {
		loom_keypair_generate(&kps[i]);
		if (loom_keys_write(dir, names[i], &kps[i], false, &err) != 0)
			fail_msg("write %s: %s", names[i], err);
	}
	/* .key files (beside every .pub) and files that are not NAME.pub are
	 * not listed; a hidden .pub is skipped even when it does not parse. */
	char *p;
	write_file(p = path_in(dir, "README.md"), "not a key\n");
	free(p);
	write_file(p = path_in(dir, "old.pub.bak"), "not a key\n");
	free(p);
	write_file(p = path_in(dir, ".hidden.pub"), "not a key\n");
	free(p);
	write_file(p = path_in(dir, ".pub"), "not a key\n");
	free(p);

	loom_keyring_t *ring = NULL;
	if (loom_keyring_load(dir, &ring, &err) != 0)
		fail_msg("load: %s", err);
	assert_int_equal(loom_keyring_count(ring), 3);
	for (size_t i = 0; i < 3; i++) {
		const char *name = loom_keyring_find(ring, kps[i].pub);
		if (name == NULL || strcmp(name, names[i]) != 0)
			fail_msg("key of %s found as '%s'", names[i], name ? name : "(null)");
	}
	loom_keypair_t stranger;
	loom_keypair_generate(&stranger);
	assert_null(loom_keyring_find(ring, stranger.pub));
	/* a secret key is not a listed public key */
	assert_null(loom_keyring_find(ring, kps[0].sec));
	loom_keyring_destroy(&ring);
	assert_null(ring);
	loom_keyring_destroy(&ring); /* NULL is fine */

	/* One .pub that does not parse fails the whole load, naming the file. */
	char *bad = path_in(dir, "delta.pub");
	write_file(bad, "public-key = \"too short\"\n");
	ring = NULL;
	if (loom_keyring_load(dir, &ring, &err) != -1)
		fail_msg("load with a corrupt .pub succeeded");
	if (!contains(err, bad))
		fail_msg("error '%s' does not name '%s'", err, bad);
	assert_null(ring);
	free(err);
	err = NULL;
	unlink(bad);
	free(bad);

	/* An empty directory is an empty ring; a missing one is an error. */
	char *empty = path_in(dir, "empty");
	assert_int_equal(mkdir(empty, 0700), 0);
	if (loom_keyring_load(empty, &ring, &err) != 0)
		fail_msg("load of an empty directory: %s", err);
	assert_int_equal(loom_keyring_count(ring), 0);
	assert_null(loom_keyring_find(ring, kps[0].pub));
	loom_keyring_destroy(&ring);
	char *missing = path_in(dir, "missing");
	ring = NULL;
	if (loom_keyring_load(missing, &ring, &err) != -1)
		fail_msg("load of a missing directory succeeded");
	if (!contains(err, "cannot open key directory") || !contains(err, missing))
		fail_msg("error '%s'", err);
	assert_null(ring);
	free(err);
	free(missing);
	free(empty);
	for (size_t i = 0; i < 3; i++)
		loom_keypair_wipe(&kps[i]);
}

/* ---- sealed boxes --------------------------------------------------------- */

typedef struct seal_case {
	const char *label;           /* what the case shows */
	size_t len;                  /* plaintext length */
	const char *key_id;          /* key_id given to loom_seal */
} seal_case_t;

static const seal_case_t seal_cases[] = {
	{ "short secret", 6, "engine" },
	{ "empty secret", 0, "engine" },
	{ "no key id", 16, NULL },
	{ "large secret", 100000, "ma.hr" },
};

static void test_seal_case(void **state)
{
	const seal_case_t *c = *state;
	loom_keypair_t kp, other;
	loom_keypair_generate(&kp);
	loom_keypair_generate(&other);
	uint8_t *plain = loom_malloc(c->len);
	for (size_t i = 0; i < c->len; i++)
		plain[i] = (uint8_t)(i * 31 + 7);

	Loom__Sealed sealed;
	loom_seal(kp.pub, c->key_id, plain, c->len, &sealed);
	assert_int_equal(sealed.box.len, c->len + crypto_box_SEALBYTES);
	assert_string_equal(sealed.key_id, c->key_id ? c->key_id : "");
	if (c->len >= 6 && memmem(sealed.box.data, sealed.box.len, plain, 6) != NULL)
		fail_msg("%s: plaintext visible in the box", c->label);

	uint8_t *out = NULL;
	size_t outlen = 0;
	if (loom_unseal(&kp, &sealed, &out, &outlen) != 0)
		fail_msg("%s: unseal failed", c->label);
	assert_int_equal(outlen, c->len);
	if (c->len && memcmp(out, plain, c->len) != 0)
		fail_msg("%s: unsealed bytes differ", c->label);
	loom_unsealed_free(&out, outlen);
	assert_null(out);
	loom_unsealed_free(&out, 0); /* NULL is fine */

	/* Sealing twice gives different boxes (ephemeral keys). */
	Loom__Sealed again;
	loom_seal(kp.pub, c->key_id, plain, c->len, &again);
	if (memcmp(again.box.data, sealed.box.data, sealed.box.len) == 0)
		fail_msg("%s: two seals gave the same box", c->label);
	loom_sealed_release(&again);

	/* Wrong key pair. */
	out = NULL;
	if (loom_unseal(&other, &sealed, &out, &outlen) != -1)
		fail_msg("%s: opened with the wrong key pair", c->label);
	assert_null(out);

	/* Tampered: one flipped bit anywhere (first, middle, last byte). */
	size_t where[] = { 0, crypto_box_PUBLICKEYBYTES, sealed.box.len / 2, sealed.box.len - 1 };
	for (size_t i = 0; i < N_ELEMS(where); i++) {
		sealed.box.data[where[i]] ^= 0x01;
		if (loom_unseal(&kp, &sealed, &out, &outlen) != -1)
			fail_msg("%s: opened a box tampered at byte %zu", c->label, where[i]);
		sealed.box.data[where[i]] ^= 0x01;
	}
	assert_null(out);

	/* Too short to be a box: every length below crypto_box_SEALBYTES. */
	size_t full = sealed.box.len;
	for (size_t n = 0; n < crypto_box_SEALBYTES; n++) {
		sealed.box.len = n;
		if (loom_unseal(&kp, &sealed, &out, &outlen) != -1)
			fail_msg("%s: opened a %zu-byte box", c->label, n);
	}
	sealed.box.len = full;
	/* Cut by one byte. */
	if (c->len) {
		sealed.box.len = full - 1;
		if (loom_unseal(&kp, &sealed, &out, &outlen) != -1)
			fail_msg("%s: opened a truncated box", c->label);
		sealed.box.len = full;
	}
	assert_null(out);

	loom_sealed_release(&sealed);
	assert_null(sealed.box.data);
	assert_int_equal(sealed.box.len, 0);
	assert_null(sealed.key_id);
	loom_sealed_release(&sealed); /* twice is harmless */

	free(plain);
	loom_keypair_wipe(&kp);
	loom_keypair_wipe(&other);
}

/* A Sealed the way a peer sends it: packed, unpacked, opened. */
static void test_seal_over_the_wire(void **state)
{
	(void)state;
	loom_keypair_t kp;
	loom_keypair_generate(&kp);
	Loom__Sealed sealed;
	loom_seal(kp.pub, "engine", "s3cret", 6, &sealed);
	size_t n = loom__sealed__get_packed_size(&sealed);
	uint8_t *wire = loom_malloc(n);
	loom__sealed__pack(&sealed, wire);
	loom_sealed_release(&sealed);
	Loom__Sealed *back = loom__sealed__unpack(NULL, n, wire);
	assert_non_null(back);
	assert_string_equal(back->key_id, "engine");
	uint8_t *out = NULL;
	size_t outlen = 0;
	assert_int_equal(loom_unseal(&kp, back, &out, &outlen), 0);
	assert_int_equal(outlen, 6);
	assert_memory_equal(out, "s3cret", 6);
	loom_unsealed_free(&out, outlen);
	loom__sealed__free_unpacked(back, NULL);
	free(wire);
	loom_keypair_wipe(&kp);
}

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test_setup_teardown(test_write_read_round_trip, scratch_setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_write_creates_dir, scratch_setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_write_no_overwrite, scratch_setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_write_bad_names, scratch_setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_read_pair_edited_file, scratch_setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_keyring, scratch_setup, scratch_teardown),
		cmocka_unit_test(test_seal_over_the_wire),
	};
	size_t n = N_ELEMS(fixed) + N_ELEMS(keyfile_cases) + N_ELEMS(seal_cases);
	struct CMUnitTest *tests = loom_calloc(n, sizeof *tests);
	char **names = loom_calloc(n, sizeof *names);
	size_t k = 0, nn = 0;
	for (size_t i = 0; i < N_ELEMS(fixed); i++)
		tests[k++] = fixed[i];
	for (size_t i = 0; i < N_ELEMS(keyfile_cases); i++) {
		tests[k] = (struct CMUnitTest)cmocka_unit_test_prestate(test_keyfile_case, (void *)&keyfile_cases[i]);
		tests[k++].name = names[nn++] = loom_sprintf("key file: %s", keyfile_cases[i].label);
	}
	for (size_t i = 0; i < N_ELEMS(seal_cases); i++) {
		tests[k] = (struct CMUnitTest)cmocka_unit_test_prestate(test_seal_case, (void *)&seal_cases[i]);
		tests[k++].name = names[nn++] = loom_sprintf("seal: %s", seal_cases[i].label);
	}
	int failed = _cmocka_run_group_tests("test_keys", tests, k, NULL, NULL);
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	free(names);
	free(tests);
	return failed;
}
