/* loom_keyset.h - the installation's key set: versioned secretbox keys that
 * encrypt every secret at rest (agent credentials given with `loomctl
 * secret set`), and the passphrase-protected export of the set.
 *
 * The set lives in STATE_DIR/keyset (mode 0600) as text:
 *   installation: <32 hex>        # made once by `loomctl keys create`
 *   current: N                    # version new secrets are sealed with
 *   key: V <64 hex> <created, unix seconds>   # one line per version
 * A backup never holds this file: it is exported on its own (docs/recovery.md).
 *
 * A sealed secret is one line "V <nonce hex> <box hex>": crypto_secretbox
 * with key version V. Rotation adds a version, makes it current, re-seals
 * every secret, and keeps the old versions (they open backups taken before).
 *
 * Export file (text):
 *   loom-keyset-export 1
 *   kdf: argon2id13 OPSLIMIT MEMLIMIT <salt hex>
 *   nonce: <hex>
 *   box: <hex>                    # secretbox of the key set text
 */
#ifndef LOOM_KEYSET_H
#define LOOM_KEYSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct loom_keyset loom_keyset_t;

/* A new set for a new installation: a random installation id and key 1. */
loom_keyset_t *loom_keyset_new(void);
void loom_keyset_destroy(loom_keyset_t **ks_p);

/* Reads / writes (atomically, mode 0600) a key set file. -1 with *ret_error
 * (malloc'd) when the file cannot be read or does not parse. */
int loom_keyset_load(const char *path, loom_keyset_t **ret_ks, char **ret_error);
int loom_keyset_save(const loom_keyset_t *ks, const char *path, char **ret_error);

/* The installation id (32 hex characters), borrowed. */
const char *loom_keyset_installation(const loom_keyset_t *ks);
/* The current version. */
unsigned loom_keyset_current(const loom_keyset_t *ks);
/* Number of versions; the i-th version and when it was made. */
size_t loom_keyset_count(const loom_keyset_t *ks);
void loom_keyset_version_at(const loom_keyset_t *ks, size_t i, unsigned *ret_version, int64_t *ret_created);
/* Adds a fresh key and makes it current; returns its version. */
unsigned loom_keyset_rotate(loom_keyset_t *ks);

/* Adds to dst the versions of src it lacks (same installation: the caller
 * checks); dst's current version stays. Returns how many were added. */
size_t loom_keyset_merge(loom_keyset_t *dst, const loom_keyset_t *src);

/* Export text of ks protected by passphrase (Argon2id + secretbox). The
 * returned string is the caller's to free. */
char *loom_keyset_export(const loom_keyset_t *ks, const char *passphrase);
/* Opens an export. -1 with *ret_error "wrong passphrase or damaged key set
 * file" or a format error; nothing else is touched. */
int loom_keyset_import(const char *text, const char *passphrase, loom_keyset_t **ret_ks, char **ret_error);

/* Seals len bytes with the current key: a line "V NONCE BOX" (caller frees). */
char *loom_secret_seal(const loom_keyset_t *ks, const void *plain, size_t len);
/* Opens a sealed line. 0 with *ret_plain (sodium_malloc'd, NUL-terminated:
 * free with loom_secret_free) and *ret_len, or -1 with *ret_error. */
int loom_secret_open(const loom_keyset_t *ks, const char *sealed, char **ret_plain, size_t *ret_len, char **ret_error);
void loom_secret_free(char **plain_p);
/* Version a sealed line was made with, 0 if it does not parse. */
unsigned loom_secret_version(const char *sealed);

/* Derives len bytes (16..64) from key version (0: the current one) for a
 * purpose named by context: BLAKE2b keyed with that key over
 * "loom-keyset-derive" and context. The same version and context always
 * give the same bytes; another version, context or key set other bytes
 * (the SSPR pepper, docs/sspr.md). 0 with *ret_version (the version used),
 * -1 when the set has no such version. */
int loom_keyset_derive(const loom_keyset_t *ks, unsigned version, const char *context, uint8_t *out, size_t len,
    unsigned *ret_version);

/* Contexts of loom_keyset_derive. The SSPR pepper, and a check value
 * derived beside it and stored with each registration (so loomctl restore
 * and loom-workflow tell which registrations a key set can still check). */
#define LOOM_KEYSET_CTX_SSPR_PEPPER "sspr-pepper"
#define LOOM_KEYSET_CTX_SSPR_CHECK "sspr-pepper-check"
#define LOOM_KEYSET_SSPR_CHECK_LEN 16

/* True when check (len bytes, as stored with an SSPR registration) is the
 * check value of ks's key version (not 0: a registration without a version
 * matches nothing), i.e. when ks can still give back that pepper. */
bool loom_keyset_sspr_check_matches(const loom_keyset_t *ks, unsigned version, const uint8_t *check, size_t len);

#endif
