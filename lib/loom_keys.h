/* loom_keys.h - Curve25519 key pairs for the bus and for sealed secrets.
 *
 * One key pair per process serves both ZeroMQ CURVE (transport encryption
 * and the broker's allow-list) and crypto_box_seal (secrets sealed to the
 * receiving process): both are Curve25519.
 *
 * Files, in a keys directory (config/keys/ by default):
 *   NAME.key  mode 0600, the pair:    public-key = "<z85>" / secret-key = "<z85>"
 *   NAME.pub  mode 0644, public only: public-key = "<z85>"
 * Lines starting with '#' are comments. Keys are written atomically
 * (temporary file, fsync, rename, fsync of the directory).
 */
#ifndef LOOM_KEYS_H
#define LOOM_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "envelope.pb-c.h"

#define LOOM_KEY_LEN 32
#define LOOM_Z85_KEY_LEN 40

typedef struct loom_keypair {
	uint8_t pub[LOOM_KEY_LEN];   /* public key */
	uint8_t sec[LOOM_KEY_LEN];   /* secret key; wiped by loom_keypair_wipe */
} loom_keypair_t;

/* Makes a fresh key pair. */
void loom_keypair_generate(loom_keypair_t *kp);
/* Zeroes the secret half. */
void loom_keypair_wipe(loom_keypair_t *kp);

/* Writes DIR/NAME.key and DIR/NAME.pub. Refuses to replace existing files
 * unless force. Returns 0, or -1 with *ret_error (malloc'd). */
int loom_keys_write(const char *dir, const char *name, const loom_keypair_t *kp,
    bool force, char **ret_error);
/* Reads a .key file. Returns 0 or -1 with *ret_error (malloc'd). */
int loom_keys_read_pair(const char *path, loom_keypair_t *ret_kp, char **ret_error);
/* Reads the public key from a .pub or .key file. */
int loom_keys_read_public(const char *path, uint8_t ret_pub[LOOM_KEY_LEN], char **ret_error);

/* Z85 text of a key (buf holds LOOM_Z85_KEY_LEN + 1). */
void loom_keys_z85(const uint8_t key[LOOM_KEY_LEN], char buf[LOOM_Z85_KEY_LEN + 1]);

/* The allow-list: every NAME.pub in a directory. */
typedef struct loom_keyring loom_keyring_t;
/* Loads every *.pub in dir. A file that does not parse is an error naming it. */
int loom_keyring_load(const char *dir, loom_keyring_t **ret_ring, char **ret_error);
void loom_keyring_destroy(loom_keyring_t **ring_p);
/* Name of the key (file name without .pub), or NULL when not listed. */
const char *loom_keyring_find(const loom_keyring_t *ring, const uint8_t pub[LOOM_KEY_LEN]);
size_t loom_keyring_count(const loom_keyring_t *ring);

/* Seals len bytes to pub into *sealed (fields allocated with loom_malloc;
 * release with loom_sealed_release). key_id names the receiver's key. */
void loom_seal(const uint8_t pub[LOOM_KEY_LEN], const char *key_id,
    const void *plain, size_t len, Loom__Sealed *sealed);
/* Opens a sealed box with kp. Returns 0 with *ret_plain (sodium_malloc'd:
 * free with loom_unsealed_free, which wipes it) and *ret_len, or -1. */
int loom_unseal(const loom_keypair_t *kp, const Loom__Sealed *sealed,
    uint8_t **ret_plain, size_t *ret_len);
void loom_unsealed_free(uint8_t **plain_p, size_t len);
void loom_sealed_release(Loom__Sealed *sealed);

#endif
