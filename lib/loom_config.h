/* loom_config.h - YAML configuration loaded through declarative key tables.
 *
 * A table lists the keys a mapping may hold, each with its type, where the
 * parsed value goes in the caller's struct (offsetof), whether it is required,
 * its default and its bounds. loom_config_load_*() walks the YAML document
 * (libyaml) against the table and fills the struct. Anything the table does
 * not allow is an error that names the file, line, column, the key (dotted
 * path from the document root, list items as [N]), the bad value and what
 * was expected:
 *
 *   config/loom.yaml:12:14: key 'bus.heartbeat': bad value 'fast': expected a duration such as 500ms, 2s, 5m
 *   config/loom.yaml:7:3: unknown key 'hearbeat' in bus (did you mean 'heartbeat'?)
 *
 * All errors in a document are collected, not just the first, so an
 * administrator fixes a file in one pass. Values already parsed are freed
 * with loom_config_release() whether loading succeeded or not.
 *
 * Value types and their C representation at `offset`:
 *   LOOM_CFG_STRING    char *            any scalar, as written
 *   LOOM_CFG_PATH      char *            a scalar; a relative path is resolved
 *                                        against the directory of the file
 *   LOOM_CFG_ENDPOINT  char *            ipc://PATH (relative PATH resolved as
 *                                        for PATH), tcp://HOST:PORT, inproc://NAME
 *   LOOM_CFG_INT       long long         decimal integer within [min, max]
 *   LOOM_CFG_BOOL      bool              true/false, yes/no, on/off
 *   LOOM_CFG_DURATION  long long (ms)    500ms, 2s, 5m, 1h, 1d; bare 0 allowed;
 *                                        within [min, max] milliseconds
 *   LOOM_CFG_SIZE      long long (bytes) 512, 64KiB, 10MiB, 2GiB (also kB/MB/GB,
 *                                        powers of 1000) within [min, max]
 *   LOOM_CFG_ENUM      int               index into the NULL-terminated choices
 *   LOOM_CFG_STRLIST   loom_cfg_strlist_t a sequence of scalars (a lone scalar
 *                                        is a one-item list)
 *   LOOM_CFG_SECTION   embedded struct   a mapping, parsed with key->sub
 *   LOOM_CFG_LIST      loom_cfg_array_t  a sequence of mappings, each parsed
 *                                        with key->sub into an element of
 *                                        key->sub->size bytes
 *   LOOM_CFG_TEXT      loom_cfg_text_t   a scalar kept with where it starts in the
 *                                        file (expressions report file:line:column)
 *   LOOM_CFG_MAP       loom_cfg_array_t  a mapping of NAME: {mapping}; each
 *                                        element is parsed with key->sub and
 *                                        gets NAME (char *) at sub->name_offset
 *
 * Defaults are given as text (`def`) and parsed exactly like a value from the
 * file, so a default can never be something the file could not say. A
 * SECTION that is absent from the file still gets its keys' defaults, and its
 * required keys are reported missing only when the section is required.
 * Duplicate keys, YAML aliases and anchors, tags, multiple documents and a
 * non-mapping root are errors.
 */
#ifndef LOOM_CONFIG_H
#define LOOM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
	LOOM_CFG_STRING,
	LOOM_CFG_PATH,
	LOOM_CFG_ENDPOINT,
	LOOM_CFG_INT,
	LOOM_CFG_BOOL,
	LOOM_CFG_DURATION,
	LOOM_CFG_SIZE,
	LOOM_CFG_ENUM,
	LOOM_CFG_STRLIST,
	LOOM_CFG_SECTION,
	LOOM_CFG_LIST,
	LOOM_CFG_MAP,
	LOOM_CFG_TEXT,
} loom_cfg_type_t;

/* Key flags. */
#define LOOM_CFG_REQUIRED 0x1u /* absence is an error */
#define LOOM_CFG_NONEMPTY 0x2u /* STRING/PATH/STRLIST/LIST/MAP: empty is an error */

struct loom_cfg_table;

typedef struct loom_cfg_key {
	const char *name;                  /* key as written in YAML; NULL ends a table */
	loom_cfg_type_t type;              /* what the value must be */
	size_t offset;                     /* offsetof() the destination in the struct */
	unsigned flags;                    /* LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY */
	const char *def;                   /* default, parsed like file text; NULL: none */
	long long min;                     /* INT/DURATION/SIZE lower bound (if min < max) */
	long long max;                     /* INT/DURATION/SIZE upper bound (if min < max) */
	const char *const *choices;        /* ENUM: NULL-terminated allowed words */
	const struct loom_cfg_table *sub;  /* SECTION/LIST/MAP: the nested table */
	const char *help;                  /* one line: what the key means */
} loom_cfg_key_t;

typedef struct loom_cfg_table {
	const char *what;                  /* how errors name this mapping, e.g. "bus" */
	size_t size;                       /* sizeof an element (LIST/MAP elements) */
	size_t name_offset;                /* MAP elements: offsetof their char *name */
	const loom_cfg_key_t *keys;        /* the allowed keys, ended by { NULL } */
} loom_cfg_table_t;

typedef struct loom_cfg_strlist {
	char **v;                          /* the strings, owned */
	size_t n;                          /* how many */
} loom_cfg_strlist_t;

typedef struct loom_cfg_array {
	void *v;                           /* n elements of the sub table's size, owned */
	size_t n;                          /* how many */
} loom_cfg_array_t;

typedef struct loom_cfg_text {
	char *text;                        /* the scalar, owned; NULL when absent */
	unsigned line;                     /* 1-based line where its content starts */
	unsigned column;                   /* 1-based column where its content starts */
} loom_cfg_text_t;

typedef struct loom_cfg_diag {
	char *file;                        /* file name as given to the loader */
	unsigned line;                     /* 1-based line of the offending node */
	unsigned column;                   /* 1-based column of the offending node */
	char *key;                         /* dotted key path, NULL for syntax errors */
	char *value;                       /* the bad value as written, or NULL */
	char *text;                        /* the whole one-line message, as printed */
} loom_cfg_diag_t;

typedef struct loom_cfg_diags {
	loom_cfg_diag_t *v;                /* the errors, in document order */
	size_t n;                          /* how many */
} loom_cfg_diags_t;

/* Loads the YAML file at path into out (zeroed by the caller) following
 * table. Returns 0 when the document is valid, -1 otherwise with every
 * problem in *diags (which the caller releases). A file that cannot be read
 * is one diag: "PATH: cannot read: <strerror>". */
int loom_config_load_file(const char *path, const loom_cfg_table_t *table,
    void *out, loom_cfg_diags_t *diags);

/* Same for text already in memory; name is used in messages and relative
 * paths resolve against dirname(name). */
int loom_config_load_string(const char *name, const char *text, size_t len,
    const loom_cfg_table_t *table, void *out, loom_cfg_diags_t *diags);

/* Frees everything the loader allocated inside obj (strings, lists, nested
 * elements) and zeroes those fields. Safe on a partly loaded struct. */
void loom_config_release(const loom_cfg_table_t *table, void *obj);

/* Every diag's text joined by sep (malloc'd; "" when none). */
char *loom_cfg_diags_join(const loom_cfg_diags_t *diags, const char *sep);
/* Frees the diags and empties *diags. */
void loom_cfg_diags_release(loom_cfg_diags_t *diags);
/* Appends a diag about file (and key, or NULL); takes text (malloc'd, the
 * whole message). Returns it, for the caller to add a position. */
loom_cfg_diag_t *loom_cfg_diag_add(loom_cfg_diags_t *diags, const char *file, const char *key, char *text);
/* Moves every diag of src to the end of dst; src is left empty. */
void loom_cfg_diags_move(loom_cfg_diags_t *dst, loom_cfg_diags_t *src);

/* Writes a human-readable reference of every key in table (name, type,
 * default, bounds, help), indented per nesting level, to buf-like callback;
 * used by --help-config. */
struct loom_buf;
void loom_config_describe(const loom_cfg_table_t *table, struct loom_buf *out);

/* The names of the *.yaml files in dir (no dot files), sorted, in *ret
 * (free with loom_config_names_free). A missing directory has none; one
 * that cannot be listed is a diag ("DIR: cannot list: <strerror>"), -1. */
int loom_config_list_yaml(const char *dir, char ***ret_names, size_t *ret_n, loom_cfg_diags_t *diags);

/* Loads every *.yaml of dir, in name order, into an array of elements of
 * size bytes (zeroed) with load(path, element, diags). Returns 0, or -1
 * when a file has errors (all of them in *diags) or dir cannot be listed;
 * *ret and *ret_n are set either way (for the caller to free). */
typedef int loom_config_load_fn(const char *path, void *element, loom_cfg_diags_t *diags);
int loom_config_load_dir(const char *dir, size_t size, loom_config_load_fn *load, void **ret, size_t *ret_n,
    loom_cfg_diags_t *diags);
void loom_config_names_free(char **names, size_t n);

/* Parsing helpers shared with flags (--heartbeat 2s on a command line). Each
 * returns 0 and writes *ret on success, -1 on a bad string. */
int loom_config_parse_duration(const char *s, long long *ret_ms);
int loom_config_parse_size(const char *s, long long *ret_bytes);
int loom_config_parse_bool(const char *s, bool *ret);

#endif
