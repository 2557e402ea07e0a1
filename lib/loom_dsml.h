/* loom_dsml.h - streaming DSML v2 reader and writer (OASIS DSMLv2 core,
 * parsed with libxml2's xmlTextReader).
 *
 * The reader takes a batchRequest or a batchResponse, bare or in a SOAP
 * envelope (SOAP 1.1 or 1.2 Body; a Header is skipped), and hands back one
 * operation at a time: a searchResultEntry as an entry, addRequest,
 * modifyRequest, delRequest and modDNRequest as changes, searchResultDone
 * with its result code, and every other operation (searchRequest,
 * compareRequest, responses, errorResponse...) as LOOM_DSML_OTHER after it
 * has been checked. Only one operation element (for a searchResponse, one of
 * its entries) is in memory at a time, so a 100,000-entry searchResponse is
 * read in constant memory.
 *
 * Everything a record points to lives in the reader and stays valid until
 * the next loom_dsml_read() or loom_dsml_reader_destroy().
 *
 * What is checked (the XSD, plus the rules real parsers apply where the
 * schema types are loose):
 *   - The XML must be well-formed (libxml2's message, line and column); a
 *     DOCTYPE is refused (no entity expansion, no external loads: the
 *     parser runs with XML_PARSE_NONET and without XML_PARSE_NOENT).
 *   - The root (inside a SOAP Body) is batchRequest or batchResponse in the
 *     DSMLv2 namespace ("urn:oasis:names:tc:DSML:2:0:core" as the XSD
 *     writes it, "urn:oasis:names:tc:DSML:2.0:core" as several products
 *     do). Operation elements are in the same namespace or in none (SOAP
 *     clients that bind the batch to a prefix often leave its children
 *     unqualified).
 *   - requestID is a string (the XSD's type); when it is a number it must be
 *     an LDAP message id, 0..2147483647. In a batchRequest with
 *     processing="parallel" or responseOrder="unordered" every request must
 *     carry one. processing, responseOrder and onError take the XSD's words.
 *   - Required attributes and children (dn, newrdn, principal, abandonID,
 *     name, operation, scope, derefAliases, filter, assertion, resultCode,
 *     type...), their counts (one filter, one assertion value, at most one
 *     requestValue...), booleans (true, false, 1, 0), non-negative
 *     integers, enumerations, DNs and RDNs (RFC 4514, with the RFC 2253
 *     leniencies: spaces around separators, ';' between RDNs, quoted
 *     values), numeric OIDs, attribute descriptions, LDAP URLs in
 *     searchResultReference/ref and referral, the result code's descr
 *     matching the LDAPResultCode enumeration.
 *   - authRequest only as the first request of a batch; a searchResponse
 *     ends with exactly one searchResultDone.
 *   - A value is text (xsi:type absent or xsd:string) or base64
 *     (xsi:type="xsd:base64Binary", whitespace ignored); xsd:anyURI values
 *     are refused (the reader fetches nothing).
 *   - Unknown attributes on the batch element are ignored (products add
 *     their own, or misspell requestID); inside an operation an unknown
 *     unqualified attribute is an error (a misspelt deleteoldrdn would
 *     otherwise silently mean its default). Unknown elements, and text
 *     where the schema has none, are errors.
 *
 * Errors: a fault inside one operation element is reported with the line
 * of the element at fault (libxml2 keeps no column for a parsed node), and
 * the next read goes on with the next operation. Faults that leave the
 * document unreadable or incomplete are fatal (ret_err->fatal, every later
 * read returns 0): XML that is not well-formed (line and column), a root
 * that is not DSML, a bad batch element, a searchResponse without its
 * searchResultDone.
 *
 * The writer appends to a loom_buf_t: a batchResponse holding one
 * searchResponse of entries (ended by a successful searchResultDone), or a
 * batchRequest of add, modify, del and modDN requests numbered from 1.
 * Values that are not XML-safe UTF-8 text (invalid UTF-8, control
 * characters, CR) are written as base64 with xsi:type="xsd:base64Binary".
 */
#ifndef LOOM_DSML_H
#define LOOM_DSML_H

#include <stdbool.h>
#include <stddef.h>

#include "loom_buf.h"

/* What one record is. */
typedef enum {
	LOOM_DSML_ENTRY,   /* searchResultEntry */
	LOOM_DSML_ADD,     /* addRequest */
	LOOM_DSML_MODIFY,  /* modifyRequest */
	LOOM_DSML_DELETE,  /* delRequest */
	LOOM_DSML_MODDN,   /* modDNRequest */
	LOOM_DSML_DONE,    /* searchResultDone: result_code, message */
	LOOM_DSML_OTHER,   /* any other operation, checked; element names it */
} loom_dsml_kind_t;

/* One value: binary-safe, and NUL-terminated too (data[len] == '\0'). */
typedef struct loom_dsml_value {
	const char *data;  /* the bytes */
	size_t len;        /* how many */
	bool base64;       /* it was written as base64 */
} loom_dsml_value_t;

/* An attribute and its values. */
typedef struct loom_dsml_attr {
	const char *name;              /* attribute description, as written first */
	size_t n;                      /* number of values */
	const loom_dsml_value_t *v;    /* the values, in document order */
} loom_dsml_attr_t;

/* A modification's operation. */
typedef enum {
	LOOM_DSML_MOD_ADD,
	LOOM_DSML_MOD_DELETE,
	LOOM_DSML_MOD_REPLACE,
	LOOM_DSML_MOD_INCREMENT,       /* not in the XSD; written by some products (RFC 4525) */
} loom_dsml_modop_t;

/* One modification of a modifyRequest. */
typedef struct loom_dsml_mod {
	loom_dsml_modop_t op;          /* what to do */
	loom_dsml_attr_t attr;         /* n == 0: delete all / replace with nothing */
} loom_dsml_mod_t;

/* One record, as read or to be written; fields that do not apply are 0/NULL. */
typedef struct loom_dsml_record {
	loom_dsml_kind_t kind;             /* which operation */
	const char *element;               /* the element's local name */
	const char *request_id;            /* requestID, NULL when absent */
	const char *dn;                    /* ENTRY, ADD, MODIFY, DELETE, MODDN: the DN */
	unsigned line;                     /* line of the element (reader only) */
	size_t nattrs;                     /* ENTRY, ADD: attributes */
	const loom_dsml_attr_t *attrs;     /* ENTRY, ADD: values of one name grouped, first-seen order */
	size_t nmods;                      /* MODIFY: modifications */
	const loom_dsml_mod_t *mods;       /* MODIFY: in order */
	const char *newrdn;                /* MODDN */
	bool deleteoldrdn;                 /* MODDN (default true) */
	const char *newsuperior;           /* MODDN: NULL when absent */
	const char *critical_control;      /* OID of the first critical control, NULL when none */
	int result_code;                   /* DONE: resultCode code */
	const char *message;               /* DONE: errorMessage, NULL when absent */
} loom_dsml_record_t;

/* Why a record (or the document) was refused. */
typedef struct loom_dsml_error {
	unsigned line;         /* 1-based line of the fault (0 when unknown) */
	unsigned column;       /* 1-based column for XML syntax errors, else 0 */
	bool fatal;            /* reading cannot go on; later reads return 0 */
	char message[320];     /* "what failed 'subject': reason" */
} loom_dsml_error_t;

typedef struct loom_dsml_reader loom_dsml_reader_t;
typedef struct loom_dsml_writer loom_dsml_writer_t;

/* A reader over fd (not closed by the reader, read from its current offset);
 * name is used in libxml2's own messages. Returns NULL only when fd < 0. */
loom_dsml_reader_t *loom_dsml_reader_new_fd(int fd, const char *name);
/* A reader over len bytes at data, which must stay unchanged while the
 * reader lives. Never NULL. */
loom_dsml_reader_t *loom_dsml_reader_new_mem(const void *data, size_t len, const char *name);
/* Frees the reader; NULL allowed; sets *reader_p to NULL. */
void loom_dsml_reader_destroy(loom_dsml_reader_t **reader_p);

/* True once the reader has seen a batchRequest (false: a batchResponse, or
 * nothing yet). */
bool loom_dsml_is_request(const loom_dsml_reader_t *r);

/* Reads the next record: 1 with *ret, 0 at the end of the document, -1 with
 * *ret_err (may be NULL) for a refused operation, after which the next call
 * goes on with the next one - unless ret_err->fatal, after which every call
 * returns 0. */
int loom_dsml_read(loom_dsml_reader_t *r, loom_dsml_record_t *ret, loom_dsml_error_t *ret_err);

/* Which document a writer makes. */
typedef enum {
	LOOM_DSML_DOC_SEARCH,   /* batchResponse / searchResponse of entries */
	LOOM_DSML_DOC_CHANGES,  /* batchRequest of add, modify, del, modDN */
} loom_dsml_doc_t;

/* A writer appending to out (borrowed, must outlive the writer); writes the
 * XML declaration and the opening elements. Never NULL. */
loom_dsml_writer_t *loom_dsml_writer_new(loom_buf_t *out, loom_dsml_doc_t doc);
/* Appends one record: ENTRY in a search document, ADD, MODIFY, DELETE or
 * MODDN in a changes document. Returns 0, or -1 with *error_r (static text)
 * for a kind the document cannot hold, no DN, a bad attribute name or a
 * MODDN without newrdn; nothing is appended then. */
int loom_dsml_write(loom_dsml_writer_t *w, const loom_dsml_record_t *rec, const char **error_r);
/* Appends the closing elements (a search document's successful
 * searchResultDone first). Later writes fail. */
void loom_dsml_writer_finish(loom_dsml_writer_t *w);
/* Frees the writer (not its buffer); NULL allowed; sets *writer_p to NULL. */
void loom_dsml_writer_destroy(loom_dsml_writer_t **writer_p);

/* True when s is a DN (RFC 4514, with the leniencies above; "" is the root). */
bool loom_dsml_dn_valid(const char *s);

#endif
