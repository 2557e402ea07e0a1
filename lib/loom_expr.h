/* loom_expr.h - the expression language of every computed value in Loom.
 *
 * Attribute flows, DN and anchor construction and (later) scoping filters
 * are small expressions in the FIM/MIM sync-rule style:
 *
 *   IIF(Eq(employeeType, "Intern"), "t-" + alias, alias)
 *   "CN=" + EscapeDNComponent(displayName) + ",OU=People,DC=example,DC=com"
 *   LowerCase(proxyAddresses)
 *
 * An expression is parsed and type-checked once, when the configuration is
 * loaded (loom_expr_compile), and then evaluated any number of times
 * (loom_expr_eval) without reparsing. A compiled expression is immutable:
 * several threads may evaluate it at once, each into its own result.
 * Evaluation reuses the memory of the result it writes into, so evaluating
 * into the same result again and again allocates nothing once it has warmed up.
 *
 * The language, its null and multi-value rules and every function are
 * described in docs/expressions.md.
 */
#ifndef LOOM_EXPR_H
#define LOOM_EXPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sync.pb-c.h"

typedef struct loom_expr loom_expr_t;

/* The type of a value; ANY is "not known before evaluation". The numbering
 * is fixed: an attr_type callback returns these numbers. */
typedef enum {
	LOOM_EXPR_ANY,
	LOOM_EXPR_STRING,
	LOOM_EXPR_INT,
	LOOM_EXPR_BOOL,
	LOOM_EXPR_BIN,
	LOOM_EXPR_TIME,
	LOOM_EXPR_REF,
} loom_expr_type_t;

/* Resolves an attribute reference at evaluation time: returns the attribute
 * or NULL when absent. Names compare case-insensitively. The attribute must
 * stay valid until loom_expr_eval returns. */
typedef const Loom__Attr *loom_expr_lookup_fn(void *arg, const char *name);

/* Optional at compile time: tells the type of a known attribute (a
 * loom_expr_type_t, for type checking), and through *ret_multi whether it
 * may hold several values; or -1 when the attribute is unknown (an error
 * only when the caller compiles with strict=true). */
typedef int loom_expr_attr_type_fn(void *arg, const char *name, bool *ret_multi);

typedef struct loom_expr_compile_opts {
	const char *file;                  /* config file the text comes from, for messages (NULL: "<expression>") */
	unsigned line;                     /* line of the file where the text starts (0 is taken as 1) */
	unsigned column;                   /* column of that line where the text starts (0 is taken as 1) */
	loom_expr_attr_type_fn *attr_type; /* types of attributes, or NULL: every attribute is ANY */
	void *arg;                         /* passed to attr_type */
	bool strict;                       /* an attribute attr_type does not know is an error */
	loom_expr_type_t want;             /* type the result must have, or LOOM_EXPR_ANY */
} loom_expr_compile_opts_t;

/* Parses and type-checks text. On success stores the expression in *ret and
 * returns 0. On failure returns -1 and, when ret_error is not NULL, stores a
 * message the caller frees, of the form
 *   FILE:LINE:COLUMN: what is wrong
 * where LINE and COLUMN point at the offending token inside the file
 * (opts->line and opts->column locate the first character of text; columns
 * count characters, not bytes). opts may be NULL. */
int loom_expr_compile(const char *text, const loom_expr_compile_opts_t *opts,
    loom_expr_t **ret, char **ret_error);

/* Frees *e (NULL allowed) and sets it to NULL. */
void loom_expr_destroy(loom_expr_t **e);

/* The type of every value the expression gives: its static type, or the
 * wanted type it was compiled for; LOOM_EXPR_ANY when only evaluation tells. */
loom_expr_type_t loom_expr_result_type(const loom_expr_t *e);

/* The names of the attributes the expression reads (for dependency
 * tracking), each once (the first spelling), in order of appearance;
 * NULL-terminated, borrowed from the expression. */
const char *const *loom_expr_attributes(const loom_expr_t *e);

/* The attribute name when the whole expression is one attribute reference
 * (a direct flow, which the engine can apply change by change), else NULL. */
const char *loom_expr_direct_attr(const loom_expr_t *e);

/* "a string", "an integer", ... as used in messages. */
const char *loom_expr_type_name(loom_expr_type_t t);

/* The result of an evaluation: zero or more values. No value is the null of
 * MIM ("nothing to contribute"); the two flags say that it is a special null.
 * The values belong to the result and stay valid until the next evaluation
 * into it or loom_expr_result_release; they do not borrow from the inputs. */
typedef struct loom_expr_result {
	Loom__Value **v;          /* the values, v[0] .. v[n-1] */
	size_t n;                 /* how many (0: null) */
	size_t cap;               /* slots allocated in v */
	bool authoritative_null;  /* AuthoritativeNull(): delete the target value, whatever the precedence */
	bool ignore_flow;         /* IgnoreThisFlow(): this flow contributes nothing, not even a null */
	struct loom_expr_work *work; /* private: memory reused by every evaluation into this result */
} loom_expr_result_t;

/* Prepares an embedded result; loom_expr_result_release undoes it. */
void loom_expr_result_init(loom_expr_result_t *r);
/* Frees what the result holds and leaves it empty (init state). */
void loom_expr_result_release(loom_expr_result_t *r);

/* Evaluates e against the attributes lookup returns (lookup may be NULL:
 * every attribute is absent) and stores the values in *ret, replacing what it
 * held. Returns 0, or -1 with an empty *ret and, when ret_error is not NULL,
 * a message the caller frees ("FILE:LINE:COLUMN: reason", pointing at the
 * function that failed) for a run-time error: Error("..."), a failed
 * conversion, an index out of range, a value of the wrong type where the
 * type was not known at compile time. */
int loom_expr_eval(const loom_expr_t *e, loom_expr_lookup_fn *lookup, void *arg,
    loom_expr_result_t *ret, char **ret_error);

/* Parses a date and time the way CDate does ("2024-03-01", "2024-03-01T12:30:00Z",
 * "12/25/2007 4:00 PM -8", "20140905081453.0Z", ...; docs/expressions.md) into
 * µs since the epoch, UTC. Returns 0, or -1 when text is not one. */
int loom_expr_parse_time(const char *text, int64_t *ret_us);

struct loom_buf;
/* Appends us (µs since the epoch) as ISO 8601 UTC, the way CStr writes a
 * datetime: 2024-03-01T12:30:00Z, with .ffffff when there are microseconds. */
void loom_expr_format_time(struct loom_buf *out, int64_t us);

#endif
