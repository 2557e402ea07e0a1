/* loom_ldif.h - streaming LDIF (RFC 2849) reader and writer.
 *
 * The reader takes an fd (read in 64 KiB chunks) or a memory block and hands
 * back one record at a time; everything a record points to lives in the
 * reader's buffers and stays valid until the next loom_ldif_read() or
 * loom_ldif_reader_destroy(). Memory is bounded by opts.max_record plus one
 * read chunk, whatever the size of the file. Values are decoded in place in
 * the input buffer (unfolding and base64 only ever shrink text), so typical
 * entries are parsed without copying.
 *
 * A bad record is reported (line, column, what was expected), skipped up to
 * the next blank line, and reading goes on with the next record, so an import
 * can count errors against its limit.
 *
 * Reading decisions where RFC 2849 leaves room or where real files disagree
 * with it:
 *   - Content and change records may be mixed in one file, record by record:
 *     the RFC grammar has "ldif-content" and "ldif-changes" as two file types,
 *     but ldapmodify, Net::LDAP and go-ldap accept both in one stream and
 *     every record's kind says which it is. A caller that wants one kind per
 *     file checks ret->kind.
 *   - Plain values are taken byte for byte after the FILL spaces that follow
 *     the colon: trailing spaces are kept (SAFE-STRING allows them; the
 *     writer base64-encodes such values so they survive). Leading spaces are
 *     always FILL, so a value cannot start with one unless base64-encoded.
 *   - A plain value may start with '<' or ':' after at least one FILL space
 *     ("member: <UID=x>", as OpenLDAP reads it); only ":<" and "::" directly
 *     after the colon select a URL or base64. NUL and a lone CR in a plain
 *     value are errors (SAFE-CHAR); raw non-ASCII bytes are accepted.
 *   - Trailing spaces after a base64 value are ignored; a bad base64 is an
 *     error naming the column of the first bad character.
 *   - "version:" is only allowed as the first non-comment line of the file,
 *     and only "1" is allowed there.
 *   - Lines with nothing but spaces or tabs between records count as blank.
 *   - The last mod-spec of a modify record may omit its "-" (OpenLDAP and
 *     perl-ldap data do that); a modify record with no mod-spec is valid.
 *   - Keywords (dn, changetype, control, add, delete, replace, increment,
 *     newrdn, deleteoldrdn, newsuperior, version) and "true"/"false" are
 *     matched without regard to case; "moddn" is read as "modrdn".
 *   - Values of one attribute in a content or add record are grouped in the
 *     order their attribute description is first seen; descriptions compare
 *     case-insensitively as written (options in another order are another
 *     description), and the spelling seen first is kept.
 *   - file:// URLs (":<") are refused unless opts.allow_file_urls is set, and
 *     then only files that resolve (symbolic links followed) to a path under
 *     opts.url_base_dir are read; a ".." path segment is always refused.
 *     Other URL schemes are errors.
 *
 * The writer appends records to a loom_buf_t; it base64-encodes every value,
 * DN, RDN and control value that is not a SAFE-STRING of printable ASCII
 * (non-ASCII, control characters, a leading space, ':' or '<', a trailing
 * space), and folds lines at 76 columns.
 */
#ifndef LOOM_LDIF_H
#define LOOM_LDIF_H

#include <stdbool.h>
#include <stddef.h>

#include "loom_buf.h"

/* What a record asks for. */
typedef enum {
	LOOM_LDIF_CONTENT,  /* an entry, no changetype */
	LOOM_LDIF_ADD,      /* changetype: add */
	LOOM_LDIF_DELETE,   /* changetype: delete */
	LOOM_LDIF_MODIFY,   /* changetype: modify */
	LOOM_LDIF_MODRDN,   /* changetype: modrdn or moddn */
} loom_ldif_kind_t;

/* One value: binary-safe, and NUL-terminated too (data[len] == '\0'). */
typedef struct loom_ldif_value {
	const char *data;  /* the bytes */
	size_t len;        /* how many */
} loom_ldif_value_t;

/* An attribute and its values. */
typedef struct loom_ldif_attr {
	const char *name;             /* attribute description incl. options, e.g. "cn;lang-en" */
	size_t n;                     /* number of values */
	const loom_ldif_value_t *v;   /* the values, in file order */
} loom_ldif_attr_t;

/* The operation of one mod-spec. */
typedef enum {
	LOOM_LDIF_MOD_ADD,        /* add: */
	LOOM_LDIF_MOD_DELETE,     /* delete: */
	LOOM_LDIF_MOD_REPLACE,    /* replace: */
	LOOM_LDIF_MOD_INCREMENT,  /* increment: (RFC 4525) */
} loom_ldif_modop_t;

/* One mod-spec of a modify record. */
typedef struct loom_ldif_mod {
	loom_ldif_modop_t op;    /* what to do */
	loom_ldif_attr_t attr;   /* n==0: delete all / replace with nothing */
} loom_ldif_mod_t;

/* A control line: control: OID [true|false] [: value | :: base64 | :< url]. */
typedef struct loom_ldif_control {
	const char *oid;          /* numeric OID */
	bool critical;            /* criticality, false when not given */
	bool has_value;           /* a control value was given */
	loom_ldif_value_t value;  /* the control value when has_value */
} loom_ldif_control_t;

/* One record, as read or to be written. Fields that do not apply to the kind
 * are 0/NULL. */
typedef struct loom_ldif_record {
	loom_ldif_kind_t kind;                 /* content or which change */
	const char *dn;                        /* distinguished name, NUL-terminated */
	size_t dn_len;                         /* its length in bytes */
	unsigned line;                         /* line of the dn: line (reader only) */
	size_t nattrs;                         /* CONTENT and ADD: number of attributes */
	const loom_ldif_attr_t *attrs;         /* CONTENT and ADD: values of one attribute grouped, in first-seen order */
	size_t nmods;                          /* MODIFY: number of mod-specs (may be 0) */
	const loom_ldif_mod_t *mods;           /* MODIFY: the mod-specs in order */
	const char *newrdn;                    /* MODRDN: the new RDN */
	bool deleteoldrdn;                     /* MODRDN: remove the old RDN values */
	const char *newsuperior;               /* MODRDN: new parent, NULL when absent */
	size_t ncontrols;                      /* change records: number of controls */
	const loom_ldif_control_t *controls;   /* change records: the controls in order */
} loom_ldif_record_t;

/* Reader options; a zeroed struct (or NULL) gives the defaults. */
typedef struct loom_ldif_opts {
	bool allow_file_urls;     /* read ":< file://" values (default: refused with an error) */
	const char *url_base_dir; /* only files under this directory are read; NULL refuses all */
	size_t max_record;        /* largest record in bytes, file URL contents included; 0 means 16 MiB */
	bool validate_utf8_dn;    /* reject a dn, newrdn or newsuperior that is not UTF-8 */
} loom_ldif_opts_t;

/* Why a record was refused. */
typedef struct loom_ldif_error {
	unsigned line;         /* 1-based physical line of the fault */
	unsigned column;       /* 1-based byte column in that line (1 when the whole line is at fault) */
	unsigned record_line;  /* first line of the refused record */
	bool fatal;            /* reading cannot go on (read error); later reads return 0 */
	char message[320];     /* "what failed 'subject': reason", subjects cut at 48 bytes */
} loom_ldif_error_t;

typedef struct loom_ldif_reader loom_ldif_reader_t;
typedef struct loom_ldif_writer loom_ldif_writer_t;

/* Writer options; a zeroed struct or NULL gives the defaults. */
typedef struct loom_ldif_writer_opts {
	bool version;     /* write "version: 1" before the first record */
	unsigned fold;    /* longest line in bytes before folding; 0 means 76, minimum 2 */
} loom_ldif_writer_opts_t;

/* A reader over fd (not closed by the reader, read from its current offset);
 * opts are copied. Returns NULL only when fd is negative. */
loom_ldif_reader_t *loom_ldif_reader_new_fd(int fd, const loom_ldif_opts_t *opts);

/* A reader over len bytes at data, which must stay unchanged while the
 * reader lives; opts are copied. Never NULL. */
loom_ldif_reader_t *loom_ldif_reader_new_mem(const void *data, size_t len, const loom_ldif_opts_t *opts);

/* Frees the reader and what its last record pointed to; NULL allowed; sets
 * *reader_p to NULL. */
void loom_ldif_reader_destroy(loom_ldif_reader_t **reader_p);

/* Reads the next record into *ret: returns 1 with a record, 0 at the end of
 * the input, -1 for a bad record with *ret_err filled (ret_err may be NULL).
 * After -1 the bad record has been skipped up to the next blank line and the
 * next call goes on after it, unless ret_err->fatal (read error), after which
 * every call returns 0. The record stays valid until the next call. */
int loom_ldif_read(loom_ldif_reader_t *r, loom_ldif_record_t *ret, loom_ldif_error_t *ret_err);

/* A writer that appends to out (borrowed, must outlive the writer); opts are
 * copied. Never NULL. */
loom_ldif_writer_t *loom_ldif_writer_new(loom_buf_t *out, const loom_ldif_writer_opts_t *opts);

/* Frees the writer (not its buffer); NULL allowed; sets *writer_p to NULL. */
void loom_ldif_writer_destroy(loom_ldif_writer_t **writer_p);

/* Appends rec (any kind; rec->line is ignored) followed by a blank line;
 * "version: 1" comes first when asked for. Returns 0, or -1 with *error_r
 * (may be NULL) set to a message owned by the writer, valid until the next
 * call, when rec is something the reader would refuse: no dn, a bad
 * attribute description (or an ldif keyword as attribute), an attribute
 * without values, a content or add record without attributes, controls on a
 * content record, a bad control OID, an increment without exactly one
 * value, a modrdn without newrdn, an unknown kind or op. Nothing is
 * appended on failure. */
int loom_ldif_write(loom_ldif_writer_t *w, const loom_ldif_record_t *rec, const char **error_r);

#endif
