/* loomctl_recovery.h - helpers shared by loomctl's keys, secret, backup and
 * restore commands (docs/recovery.md). */
#ifndef LOOMCTL_RECOVERY_H
#define LOOMCTL_RECOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "loom_keyset.h"

/* All of a file up to max bytes, NUL-terminated (caller frees), or NULL
 * with *ret_error. */
char *rcv_read_file(const char *path, size_t max, char **ret_error);
/* mkdir -p. 0 or -1 (errno). */
int rcv_mkdirs(const char *path, mode_t mode);
/* The passphrase: first line of file, else $LOOM_PASSPHRASE, else asked on
 * the terminal (twice when twice). Caller frees with rcv_wipe_free. */
char *rcv_passphrase(const char *file, bool twice, char **ret_error);
void rcv_wipe_free(char **s_p);
/* Letters, digits, '_', '.', '-'; not starting with '.'. */
bool rcv_valid_name(const char *s);
/* STATE_DIR/installation (caller frees), or NULL when absent. */
char *rcv_installation(const char *state_dir);
int rcv_write_installation(const char *state_dir, const char *id, char **ret_error);
/* Opens an exported key set with its passphrase. */
int rcv_open_export(const char *file, const char *pwfile, loom_keyset_t **ret_ks, char **ret_error);
/* Checks an opened key set *ks_p against the installation of state_dir
 * (its installation file, its key set) and merges it with the key set
 * there: *ret_merged is the set to save (*ks_p is consumed). Writes
 * nothing. -1 with *ret_error (one line, names from) when it belongs to
 * another installation or the local set cannot be read. */
int rcv_keyset_accept(const char *state_dir, loom_keyset_t **ks_p, const char *from, loom_keyset_t **ret_merged,
    char **ret_error);
/* Saves ks as STATE_DIR/keyset (and the installation id when absent). */
int rcv_keyset_install(const char *state_dir, const loom_keyset_t *ks, char **ret_error);
/* Calls fn for every STATE_DIR/secrets/AGENT/KEY until one returns non-zero. */
int rcv_list_secrets(const char *state_dir,
    int (*fn)(const char *path, const char *agent, const char *key, void *arg), void *arg);

#endif
