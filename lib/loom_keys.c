/* loom_keys.c - key files, allow-list and sealed boxes. */
#include "loom_keys.h"
#include "loom_envelope.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

static void sodium_ready(void)
{
	if (sodium_init() < 0)
		abort(); /* no usable randomness: nothing secure can happen */
}

void loom_keypair_generate(loom_keypair_t *kp)
{
	sodium_ready();
	crypto_box_keypair(kp->pub, kp->sec);
}

void loom_keypair_wipe(loom_keypair_t *kp)
{
	sodium_memzero(kp->sec, sizeof kp->sec);
}

void loom_keys_z85(const uint8_t key[LOOM_KEY_LEN], char buf[LOOM_Z85_KEY_LEN + 1])
{
	zmq_z85_encode(buf, key, LOOM_KEY_LEN);
}

int loom_keys_write(const char *dir, const char *name, const loom_keypair_t *kp,
    bool force, char **ret_error)
{
	/* A key pair is named after the service that uses it. */
	if (!loom_service_name_valid(name, strlen(name))) {
		*ret_error = loom_sprintf("bad key name '%s': a service name (a letter, then letters, digits, "
		    "'.', '_' and '-', at most %d characters)", name, LOOM_ADDR_MAX);
		return -1;
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		*ret_error = loom_sprintf("cannot create key directory '%s': %s", dir, strerror(errno));
		return -1;
	}
	char *keypath = loom_sprintf("%s/%s.key", dir, name);
	char *pubpath = loom_sprintf("%s/%s.pub", dir, name);
	int rc = -1;
	if (!force && (access(keypath, F_OK) == 0 || access(pubpath, F_OK) == 0)) {
		*ret_error = loom_sprintf("key '%s' already exists in '%s' (use --force to replace it)", name, dir);
		goto out;
	}
	char pz[LOOM_Z85_KEY_LEN + 1], sz[LOOM_Z85_KEY_LEN + 1];
	loom_keys_z85(kp->pub, pz);
	loom_keys_z85(kp->sec, sz);
	char *keytext = loom_sprintf(
	    "# Loom key pair '%s' (Curve25519, Z85). Secret: keep this file mode 0600.\n"
	    "public-key = \"%s\"\nsecret-key = \"%s\"\n", name, pz, sz);
	sodium_memzero(sz, sizeof sz);
	char *pubtext = loom_sprintf(
	    "# Loom public key '%s' (Curve25519, Z85). Listing it here allows it on the bus.\n"
	    "public-key = \"%s\"\n", name, pz);
	/* The secret first: a .pub without its .key is harmless, the reverse confuses. */
	rc = loom_file_replace(keypath, keytext, strlen(keytext), 0600, ret_error);
	if (rc == 0)
		rc = loom_file_replace(pubpath, pubtext, strlen(pubtext), 0644, ret_error);
	sodium_memzero(keytext, strlen(keytext));
	free(keytext);
	free(pubtext);
out:
	free(keypath);
	free(pubpath);
	return rc;
}

/* Parses `name = "z85"` lines; fills pub/sec when present. */
static int parse_keyfile(const char *path, uint8_t *pub, bool *have_pub, uint8_t *sec,
    bool *have_sec, char **ret_error)
{
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		*ret_error = loom_sprintf("cannot read key file '%s': %s", path, strerror(errno));
		return -1;
	}
	char line[256];
	unsigned lineno = 0;
	int rc = 0;
	*have_pub = *have_sec = false;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		char *s = line;
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '#' || *s == '\n' || *s == '\0')
			continue;
		char name[32], val[64];
		if (sscanf(s, "%31[a-z-] = \"%63[^\"]\"", name, val) != 2) {
			*ret_error = loom_sprintf("key file '%s' line %u: expected name = \"value\"", path, lineno);
			rc = -1;
			break;
		}
		uint8_t *dst = NULL;
		if (strcmp(name, "public-key") == 0) {
			dst = pub;
			*have_pub = true;
		} else if (strcmp(name, "secret-key") == 0) {
			dst = sec;
			*have_sec = true;
		} else {
			sodium_memzero(val, sizeof val);
			*ret_error = loom_sprintf("key file '%s' line %u: unknown name '%s'", path, lineno, name);
			rc = -1;
			break;
		}
		if (strlen(val) != LOOM_Z85_KEY_LEN || zmq_z85_decode(dst, val) == NULL) {
			sodium_memzero(val, sizeof val);
			*ret_error = loom_sprintf("key file '%s' line %u: %s is not a 40-character Z85 key", path, lineno, name);
			rc = -1;
			break;
		}
		sodium_memzero(val, sizeof val);
	}
	sodium_memzero(line, sizeof line);
	fclose(f);
	return rc;
}

int loom_keys_read_pair(const char *path, loom_keypair_t *ret_kp, char **ret_error)
{
	loom_keypair_t kp;
	bool hp, hs;
	if (parse_keyfile(path, kp.pub, &hp, kp.sec, &hs, ret_error) < 0) {
		loom_keypair_wipe(&kp); /* a bad later line leaves a decoded secret */
		return -1;
	}
	if (!hp || !hs) {
		loom_keypair_wipe(&kp);
		*ret_error = loom_sprintf("key file '%s' lacks %s", path, hp ? "secret-key" : "public-key");
		return -1;
	}
	/* A pair whose halves do not belong together would fail later, obscurely. */
	uint8_t derived[LOOM_KEY_LEN];
	crypto_scalarmult_base(derived, kp.sec);
	if (memcmp(derived, kp.pub, LOOM_KEY_LEN) != 0) {
		loom_keypair_wipe(&kp);
		*ret_error = loom_sprintf("key file '%s': public-key does not match secret-key", path);
		return -1;
	}
	*ret_kp = kp;
	loom_keypair_wipe(&kp);
	return 0;
}

int loom_keys_read_public(const char *path, uint8_t ret_pub[LOOM_KEY_LEN], char **ret_error)
{
	uint8_t pub[LOOM_KEY_LEN], sec[LOOM_KEY_LEN];
	bool hp, hs;
	int rc = parse_keyfile(path, pub, &hp, sec, &hs, ret_error);
	sodium_memzero(sec, sizeof sec);
	if (rc < 0)
		return -1;
	if (!hp) {
		*ret_error = loom_sprintf("key file '%s' lacks public-key", path);
		return -1;
	}
	memcpy(ret_pub, pub, LOOM_KEY_LEN);
	return 0;
}

typedef struct ring_entry {
	char *name;                 /* file name without .pub */
	uint8_t pub[LOOM_KEY_LEN];  /* the key */
} ring_entry_t;

struct loom_keyring {
	ring_entry_t *v;            /* the listed keys */
	size_t n;                   /* how many */
};

int loom_keyring_load(const char *dir, loom_keyring_t **ret_ring, char **ret_error)
{
	DIR *d = opendir(dir);
	if (d == NULL) {
		*ret_error = loom_sprintf("cannot open key directory '%s': %s", dir, strerror(errno));
		return -1;
	}
	loom_keyring_t *ring = loom_calloc(1, sizeof *ring);
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		if (len <= 4 || strcmp(de->d_name + len - 4, ".pub") != 0 || de->d_name[0] == '.')
			continue;
		char *path = loom_sprintf("%s/%s", dir, de->d_name);
		uint8_t pub[LOOM_KEY_LEN];
		rc = loom_keys_read_public(path, pub, ret_error);
		free(path);
		if (rc < 0)
			break;
		ring->v = loom_realloc(ring->v, (ring->n + 1) * sizeof *ring->v);
		ring->v[ring->n].name = loom_strndup(de->d_name, len - 4);
		memcpy(ring->v[ring->n].pub, pub, LOOM_KEY_LEN);
		ring->n++;
	}
	closedir(d);
	if (rc < 0) {
		loom_keyring_destroy(&ring);
		return -1;
	}
	*ret_ring = ring;
	return 0;
}

void loom_keyring_destroy(loom_keyring_t **ring_p)
{
	loom_keyring_t *r = *ring_p;
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].name);
	free(r->v);
	free(r);
	*ring_p = NULL;
}

const char *loom_keyring_find(const loom_keyring_t *ring, const uint8_t pub[LOOM_KEY_LEN])
{
	for (size_t i = 0; i < ring->n; i++)
		if (sodium_memcmp(ring->v[i].pub, pub, LOOM_KEY_LEN) == 0)
			return ring->v[i].name;
	return NULL;
}

size_t loom_keyring_count(const loom_keyring_t *ring)
{
	return ring->n;
}

void loom_seal(const uint8_t pub[LOOM_KEY_LEN], const char *key_id,
    const void *plain, size_t len, Loom__Sealed *sealed)
{
	sodium_ready();
	loom__sealed__init(sealed);
	sealed->box.len = len + crypto_box_SEALBYTES;
	sealed->box.data = loom_malloc(sealed->box.len);
	crypto_box_seal(sealed->box.data, plain, len, pub);
	sealed->key_id = loom_strdup(key_id ? key_id : "");
}

int loom_unseal(const loom_keypair_t *kp, const Loom__Sealed *sealed,
    uint8_t **ret_plain, size_t *ret_len)
{
	sodium_ready();
	if (sealed->box.len < crypto_box_SEALBYTES)
		return -1;
	size_t len = sealed->box.len - crypto_box_SEALBYTES;
	/* sodium_malloc: guarded pages, wiped on free. */
	uint8_t *plain = sodium_malloc(len ? len : 1);
	if (plain == NULL)
		abort();
	if (crypto_box_seal_open(plain, sealed->box.data, sealed->box.len, kp->pub, kp->sec) != 0) {
		sodium_free(plain);
		return -1;
	}
	*ret_plain = plain;
	*ret_len = len;
	return 0;
}

void loom_unsealed_free(uint8_t **plain_p, size_t len)
{
	(void)len; /* sodium_free wipes the whole allocation */
	if (*plain_p)
		sodium_free(*plain_p);
	*plain_p = NULL;
}

void loom_sealed_release(Loom__Sealed *sealed)
{
	free(sealed->box.data);
	sealed->box.data = NULL;
	sealed->box.len = 0;
	if (sealed->key_id != protobuf_c_empty_string)
		free(sealed->key_id);
	sealed->key_id = NULL;
}
