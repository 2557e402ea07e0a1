/* loom_keyset.c - versioned secretbox keys, their export, sealed secrets.
 * Formats are described in loom_keyset.h. */
#include "loom_keyset.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_file.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KS_INST_LEN 16

typedef struct ks_key {
	unsigned version;                         /* 1, 2, ... */
	int64_t created;                          /* unix seconds */
	uint8_t key[crypto_secretbox_KEYBYTES];   /* the secretbox key */
} ks_key_t;

struct loom_keyset {
	char installation[KS_INST_LEN * 2 + 1];   /* hex id of the installation */
	unsigned current;                         /* version used to seal */
	ks_key_t *keys;                           /* sodium_malloc'd array */
	size_t nkeys;                             /* entries in keys */
	size_t cap;                               /* room in keys */
};

static const ks_key_t *ks_find(const loom_keyset_t *ks, unsigned version);

static void ks_grow(loom_keyset_t *ks)
{
	if (ks->nkeys < ks->cap)
		return;
	size_t cap = ks->cap ? ks->cap * 2 : 4;
	ks_key_t *k = sodium_malloc(cap * sizeof(*k));
	if (k == NULL)
		abort();
	if (ks->nkeys)
		memcpy(k, ks->keys, ks->nkeys * sizeof(*k));
	if (ks->keys != NULL)
		sodium_free(ks->keys);
	ks->keys = k;
	ks->cap = cap;
}

static loom_keyset_t *ks_alloc(void)
{
	if (sodium_init() < 0)
		abort();
	return loom_calloc(1, sizeof(loom_keyset_t));
}

loom_keyset_t *loom_keyset_new(void)
{
	loom_keyset_t *ks = ks_alloc();
	uint8_t id[KS_INST_LEN];
	randombytes_buf(id, sizeof(id));
	sodium_bin2hex(ks->installation, sizeof(ks->installation), id, sizeof(id));
	loom_keyset_rotate(ks);
	return ks;
}

void loom_keyset_destroy(loom_keyset_t **ks_p)
{
	if (ks_p == NULL || *ks_p == NULL)
		return;
	if ((*ks_p)->keys != NULL)
		sodium_free((*ks_p)->keys);
	free(*ks_p);
	*ks_p = NULL;
}

unsigned loom_keyset_rotate(loom_keyset_t *ks)
{
	ks_grow(ks);
	ks_key_t *k = &ks->keys[ks->nkeys++];
	k->version = ks->current + 1;
	for (size_t i = 0; i + 1 < ks->nkeys; i++)
		if (ks->keys[i].version >= k->version)
			k->version = ks->keys[i].version + 1;
	k->created = (int64_t)time(NULL);
	crypto_secretbox_keygen(k->key);
	ks->current = k->version;
	return k->version;
}

size_t loom_keyset_merge(loom_keyset_t *dst, const loom_keyset_t *src)
{
	size_t added = 0;
	for (size_t i = 0; i < src->nkeys; i++) {
		if (ks_find(dst, src->keys[i].version) != NULL)
			continue;
		ks_grow(dst);
		dst->keys[dst->nkeys++] = src->keys[i];
		added++;
	}
	return added;
}

int loom_keyset_derive(const loom_keyset_t *ks, unsigned version, const char *context, uint8_t *out, size_t len,
    unsigned *ret_version)
{
	if (version == 0)
		version = ks->current;
	const ks_key_t *k = ks_find(ks, version);
	if (k == NULL || len < crypto_generichash_BYTES_MIN || len > crypto_generichash_BYTES_MAX)
		return -1;
	static const char label[] = "loom-keyset-derive";
	crypto_generichash_state st;
	crypto_generichash_init(&st, k->key, sizeof k->key, len);
	crypto_generichash_update(&st, (const uint8_t *)label, sizeof label); /* with its NUL: a separator */
	crypto_generichash_update(&st, (const uint8_t *)context, strlen(context));
	crypto_generichash_final(&st, out, len);
	sodium_memzero(&st, sizeof st);
	if (ret_version != NULL)
		*ret_version = version;
	return 0;
}

bool loom_keyset_sspr_check_matches(const loom_keyset_t *ks, unsigned version, const uint8_t *check, size_t len)
{
	uint8_t want[LOOM_KEYSET_SSPR_CHECK_LEN];
	return ks != NULL && version != 0 && len == sizeof want &&
	    loom_keyset_derive(ks, version, LOOM_KEYSET_CTX_SSPR_CHECK, want, sizeof want, NULL) == 0 &&
	    sodium_memcmp(want, check, sizeof want) == 0;
}

const char *loom_keyset_installation(const loom_keyset_t *ks) { return ks->installation; }
unsigned loom_keyset_current(const loom_keyset_t *ks) { return ks->current; }
size_t loom_keyset_count(const loom_keyset_t *ks) { return ks->nkeys; }

void loom_keyset_version_at(const loom_keyset_t *ks, size_t i, unsigned *ret_version, int64_t *ret_created)
{
	*ret_version = ks->keys[i].version;
	*ret_created = ks->keys[i].created;
}

static const ks_key_t *ks_find(const loom_keyset_t *ks, unsigned version)
{
	for (size_t i = 0; i < ks->nkeys; i++)
		if (ks->keys[i].version == version)
			return &ks->keys[i];
	return NULL;
}

/* The set as text, in sodium_malloc'd memory (wiped by sodium_free). */
static char *ks_format(const loom_keyset_t *ks, size_t *ret_len)
{
	size_t cap = 256 + ks->nkeys * 128;
	char *t = sodium_malloc(cap);
	if (t == NULL)
		abort();
	size_t n = (size_t)snprintf(t, cap, "# loom key set: secret, never in a backup; export it with `loomctl keys export`\n"
	    "installation: %s\ncurrent: %u\n", ks->installation, ks->current);
	for (size_t i = 0; i < ks->nkeys; i++) {
		char hex[crypto_secretbox_KEYBYTES * 2 + 1];
		sodium_bin2hex(hex, sizeof(hex), ks->keys[i].key, sizeof(ks->keys[i].key));
		n += (size_t)snprintf(t + n, cap - n, "key: %u %s %lld\n", ks->keys[i].version, hex,
		    (long long)ks->keys[i].created);
		sodium_memzero(hex, sizeof(hex));
	}
	*ret_len = n;
	return t;
}

static int ks_parse(const char *text, loom_keyset_t **ret_ks, char **ret_error)
{
	loom_keyset_t *ks = ks_alloc();
	const char *p = text;
	unsigned line = 0;
	while (*p != '\0') {
		line++;
		const char *e = strchr(p, '\n');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		char buf[256];
		if (len >= sizeof(buf))
			goto bad;
		memcpy(buf, p, len);
		buf[len] = '\0';
		p += len + (e ? 1 : 0);
		if (buf[0] == '#' || buf[0] == '\0')
			continue;
		char hex[130];
		unsigned v;
		long long created;
		if (sscanf(buf, "installation: %32s", ks->installation) == 1 && strlen(ks->installation) == 32)
			continue;
		if (sscanf(buf, "current: %u", &ks->current) == 1)
			continue;
		if (sscanf(buf, "key: %u %129s %lld", &v, hex, &created) == 3 && v > 0) {
			ks_grow(ks);
			ks_key_t *k = &ks->keys[ks->nkeys];
			size_t bl = 0;
			int rc = sodium_hex2bin(k->key, sizeof(k->key), hex, strlen(hex), NULL, &bl, NULL);
			sodium_memzero(hex, sizeof(hex));
			sodium_memzero(buf, sizeof(buf));
			if (rc != 0 || bl != sizeof(k->key) || ks_find(ks, v) != NULL)
				goto bad;
			k->version = v;
			k->created = created;
			ks->nkeys++;
			continue;
		}
bad:
		sodium_memzero(buf, sizeof(buf));
		*ret_error = loom_sprintf("key set line %u does not parse", line);
		loom_keyset_destroy(&ks);
		return -1;
	}
	if (ks->installation[0] == '\0' || ks->nkeys == 0 || ks_find(ks, ks->current) == NULL) {
		*ret_error = loom_strdup("key set is incomplete (installation, current and its key are needed)");
		loom_keyset_destroy(&ks);
		return -1;
	}
	*ret_ks = ks;
	return 0;
}

int loom_keyset_load(const char *path, loom_keyset_t **ret_ks, char **ret_error)
{
	if (sodium_init() < 0)
		abort();
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*ret_error = loom_sprintf("cannot open key set '%s': %s", path, strerror(errno));
		return -1;
	}
	size_t cap = 64 * 1024, n = 0;
	char *t = sodium_malloc(cap);
	if (t == NULL)
		abort();
	ssize_t r;
	while (n + 1 < cap && (r = read(fd, t + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	close(fd);
	t[n] = '\0';
	char *err = NULL;
	int rc = ks_parse(t, ret_ks, &err);
	sodium_free(t);
	if (rc < 0) {
		*ret_error = loom_sprintf("key set '%s': %s", path, err);
		free(err);
	}
	return rc;
}

int loom_keyset_save(const loom_keyset_t *ks, const char *path, char **ret_error)
{
	size_t len;
	char *t = ks_format(ks, &len);
	int rc = loom_file_replace(path, t, len, 0600, ret_error);
	sodium_free(t);
	return rc;
}

#define EXPORT_MAGIC "loom-keyset-export 1\n"

char *loom_keyset_export(const loom_keyset_t *ks, const char *passphrase)
{
	size_t len;
	char *plain = ks_format(ks, &len);
	uint8_t salt[crypto_pwhash_SALTBYTES], nonce[crypto_secretbox_NONCEBYTES];
	randombytes_buf(salt, sizeof(salt));
	randombytes_buf(nonce, sizeof(nonce));
	unsigned long long ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
	size_t mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
	uint8_t key[crypto_secretbox_KEYBYTES];
	if (crypto_pwhash(key, sizeof(key), passphrase, strlen(passphrase), salt, ops, mem,
	    crypto_pwhash_ALG_ARGON2ID13) != 0)
		abort(); /* out of memory */
	size_t blen = len + crypto_secretbox_MACBYTES;
	uint8_t *box = loom_malloc(blen);
	crypto_secretbox_easy(box, (const uint8_t *)plain, len, nonce, key);
	sodium_memzero(key, sizeof(key));
	sodium_free(plain);
	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_adds(&b, EXPORT_MAGIC);
	loom_buf_printf(&b, "kdf: argon2id13 %llu %zu ", ops, mem);
	loom_buf_add_hex(&b, salt, sizeof(salt));
	loom_buf_adds(&b, "\nnonce: ");
	loom_buf_add_hex(&b, nonce, sizeof(nonce));
	loom_buf_adds(&b, "\nbox: ");
	loom_buf_add_hex(&b, box, blen);
	loom_buf_adds(&b, "\n");
	free(box);
	return loom_buf_steal(&b);
}

/* The hex after "NAME: " on its own line, decoded into *ret (malloc'd). */
static int export_field(const char *text, const char *name, uint8_t **ret, size_t *ret_len)
{
	char *pat = loom_sprintf("\n%s: ", name);
	const char *p = strstr(text, pat);
	size_t pl = strlen(pat);
	free(pat);
	if (p == NULL)
		return -1;
	p += pl;
	size_t hl = strcspn(p, "\n");
	uint8_t *bin = loom_malloc(hl / 2 + 1);
	size_t bl = 0;
	if (sodium_hex2bin(bin, hl / 2 + 1, p, hl, NULL, &bl, NULL) != 0) {
		free(bin);
		return -1;
	}
	*ret = bin;
	*ret_len = bl;
	return 0;
}

int loom_keyset_import(const char *text, const char *passphrase, loom_keyset_t **ret_ks, char **ret_error)
{
	if (sodium_init() < 0)
		abort();
	unsigned long long ops;
	size_t mem;
	char salthex[crypto_pwhash_SALTBYTES * 2 + 1];
	const char *kdf = strstr(text, "\nkdf: ");
	if (strncmp(text, EXPORT_MAGIC, strlen(EXPORT_MAGIC)) != 0 || kdf == NULL ||
	    sscanf(kdf, "\nkdf: argon2id13 %llu %zu %32s", &ops, &mem, salthex) != 3 ||
	    ops < crypto_pwhash_OPSLIMIT_MIN || ops > crypto_pwhash_OPSLIMIT_MAX ||
	    mem < crypto_pwhash_MEMLIMIT_MIN || mem > (size_t)4 << 30) {
		*ret_error = loom_strdup("not a Loom key set export");
		return -1;
	}
	uint8_t salt[crypto_pwhash_SALTBYTES];
	size_t sl = 0;
	uint8_t *nonce = NULL, *box = NULL;
	size_t nl = 0, bl = 0;
	if (sodium_hex2bin(salt, sizeof(salt), salthex, strlen(salthex), NULL, &sl, NULL) != 0 ||
	    sl != sizeof(salt) || export_field(text, "nonce", &nonce, &nl) < 0 ||
	    nl != crypto_secretbox_NONCEBYTES || export_field(text, "box", &box, &bl) < 0 ||
	    bl < crypto_secretbox_MACBYTES) {
		free(nonce);
		free(box);
		*ret_error = loom_strdup("not a Loom key set export");
		return -1;
	}
	uint8_t key[crypto_secretbox_KEYBYTES];
	if (crypto_pwhash(key, sizeof(key), passphrase, strlen(passphrase), salt, ops, mem,
	    crypto_pwhash_ALG_ARGON2ID13) != 0)
		abort();
	size_t pl = bl - crypto_secretbox_MACBYTES;
	char *plain = sodium_malloc(pl + 1);
	if (plain == NULL)
		abort();
	int rc = crypto_secretbox_open_easy((uint8_t *)plain, box, bl, nonce, key);
	sodium_memzero(key, sizeof(key));
	free(nonce);
	free(box);
	if (rc != 0) {
		sodium_free(plain);
		*ret_error = loom_strdup("wrong passphrase or damaged key set file");
		return -1;
	}
	plain[pl] = '\0';
	rc = ks_parse(plain, ret_ks, ret_error);
	sodium_free(plain);
	return rc;
}

char *loom_secret_seal(const loom_keyset_t *ks, const void *plain, size_t len)
{
	const ks_key_t *k = ks_find(ks, ks->current);
	uint8_t nonce[crypto_secretbox_NONCEBYTES];
	randombytes_buf(nonce, sizeof(nonce));
	size_t blen = len + crypto_secretbox_MACBYTES;
	uint8_t *box = loom_malloc(blen);
	crypto_secretbox_easy(box, plain, len, nonce, k->key);
	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_printf(&b, "%u ", k->version);
	loom_buf_add_hex(&b, nonce, sizeof(nonce));
	loom_buf_addc(&b, ' ');
	loom_buf_add_hex(&b, box, blen);
	loom_buf_addc(&b, '\n');
	free(box);
	return loom_buf_steal(&b);
}

unsigned loom_secret_version(const char *sealed)
{
	unsigned v = 0;
	if (sscanf(sealed, "%u ", &v) != 1)
		return 0;
	return v;
}

int loom_secret_open(const loom_keyset_t *ks, const char *sealed, char **ret_plain, size_t *ret_len, char **ret_error)
{
	unsigned v = loom_secret_version(sealed);
	const ks_key_t *k = ks_find(ks, v);
	if (k == NULL) {
		*ret_error = v ? loom_sprintf("sealed with key version %u, which this key set does not hold", v)
		    : loom_strdup("not a sealed secret");
		return -1;
	}
	const char *p = strchr(sealed, ' ');
	const char *q = p ? strchr(p + 1, ' ') : NULL;
	uint8_t nonce[crypto_secretbox_NONCEBYTES];
	size_t nl = 0;
	if (q == NULL || sodium_hex2bin(nonce, sizeof(nonce), p + 1, (size_t)(q - p - 1), NULL, &nl, NULL) != 0 ||
	    nl != sizeof(nonce)) {
		*ret_error = loom_strdup("not a sealed secret");
		return -1;
	}
	q++;
	size_t hl = strcspn(q, "\n");
	uint8_t *box = loom_malloc(hl / 2 + 1);
	size_t bl = 0;
	if (sodium_hex2bin(box, hl / 2 + 1, q, hl, NULL, &bl, NULL) != 0 || bl < crypto_secretbox_MACBYTES) {
		free(box);
		*ret_error = loom_strdup("not a sealed secret");
		return -1;
	}
	size_t pl = bl - crypto_secretbox_MACBYTES;
	char *plain = sodium_malloc(pl + 1);
	if (plain == NULL)
		abort();
	if (crypto_secretbox_open_easy((uint8_t *)plain, box, bl, nonce, k->key) != 0) {
		free(box);
		sodium_free(plain);
		*ret_error = loom_sprintf("secret does not open with key version %u (damaged)", v);
		return -1;
	}
	free(box);
	plain[pl] = '\0';
	*ret_plain = plain;
	*ret_len = pl;
	return 0;
}

void loom_secret_free(char **plain_p)
{
	if (plain_p == NULL || *plain_p == NULL)
		return;
	sodium_free(*plain_p);
	*plain_p = NULL;
}
