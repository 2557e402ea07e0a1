/* loom_xpath_int.h - what the XPath parser (loom_xpath.c) shares with the
 * evaluator (loom_xpath_eval.c). Not for other modules.
 *
 * A compiled filter is a tree:
 *
 *   UNION   kids: PATH ...                       a | b | c
 *   PATH    steps[0]: object type or '*' with    /Person[...]/Manager[...]
 *           its predicate; steps[1..]: reference
 *           attributes, each with its predicate
 *   OR, AND kids (n-ary, flattened)
 *   NOT     kids[0]
 *   CMP     attr op rhs: a literal, a PATH       Manager = /Person[...]
 *           (kids[0]) or a datetime (kids[0])
 *   FUNC    contains / starts-with / ends-with(attr, literal)
 *   TIME    fn:current-dateTime(), a datetime literal, or op:add-/op:
 *           subtract-dayTimeDuration(kids[0], duration)
 *
 * Literals are converted at compile time into every type they can stand
 * for (the string '5' is also the integer 5, 'True' also a boolean,
 * '2024-01-15T10:30:00' also a datetime); the attribute's type, which only
 * the provider knows, picks one at evaluation.
 *
 * Every PATH owns two slots of the evaluation's scratch memory (its result
 * set and a spare for dereferencing), every AND two (the intersection of
 * its conjuncts' index candidates and a spare), and every CMP and FUNC one comparison
 * slot (the attribute's type and the literal as a typed value for index
 * look-ups), numbered at compile time, so evaluation allocates nothing once
 * the scratch memory has grown to the filter's needs.
 */
#ifndef LOOM_XPATH_INT_H
#define LOOM_XPATH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loom_xpath.h"

/* Value types (loom_expr_type_t numbering). */
#define XT_STRING 1
#define XT_INT 2
#define XT_BOOL 3
#define XT_BIN 4
#define XT_TIME 5
#define XT_REF 6

typedef enum { XN_UNION, XN_PATH, XN_OR, XN_AND, XN_NOT, XN_CMP, XN_FUNC, XN_TIME } xp_kind_t;

typedef enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE } xp_op_t;

typedef enum { FN_CONTAINS, FN_STARTS, FN_ENDS } xp_fn_t;

typedef enum { TM_NOW, TM_LIT, TM_ADD, TM_SUB } xp_time_t;

/* What the right-hand side of a comparison is. */
typedef enum { R_LIT, R_PATH, R_TIME } xp_rhs_t;

/* A literal and what it can stand for. */
typedef struct xp_lit {
	uint8_t kind;     /* XT_STRING (quoted), XT_INT (a number) or XT_BOOL (true, false) */
	const char *s;    /* XT_STRING: the decoded text, NUL-terminated */
	size_t len;       /* its bytes */
	bool has_int;     /* it is (or its text is) an integer: i */
	bool has_bool;    /* it is (or its text is, in any case) true or false: b */
	bool has_time;    /* its text is an ISO 8601 datetime: t */
	int64_t i;        /* the integer */
	bool b;           /* the boolean */
	int64_t t;        /* the datetime, µs since the epoch */
} xp_lit_t;

typedef struct xp_node xp_node_t;

/* One step of a location path. */
typedef struct xp_step {
	const char *name;  /* step 0: object type, NULL for '*'; later: reference attribute */
	size_t off;        /* offset of the name (or '*') in the text */
	xp_node_t *pred;   /* the predicates, ANDed; NULL: none */
} xp_step_t;

struct xp_node {
	xp_kind_t kind;        /* what it is */
	size_t off;            /* offset in the text, for messages */
	xp_node_t **kids;      /* UNION, OR, AND, NOT; CMP: the PATH or TIME right-hand side; TIME: the base */
	size_t nkids;          /* their count */
	xp_step_t *steps;      /* PATH: the steps */
	size_t nsteps;         /* PATH: their count (at least 1) */
	size_t slot;           /* PATH, AND: first of its two set slots; CMP, FUNC: its comparison slot */
	const char *attr;      /* CMP, FUNC: the attribute */
	size_t attr_off;       /* CMP, FUNC: where the attribute is written */
	xp_op_t op;            /* CMP: the operator */
	size_t op_off;         /* CMP: where the operator is written */
	xp_rhs_t rhs;          /* CMP: literal, PATH or TIME */
	xp_fn_t fn;            /* FUNC: which function */
	xp_lit_t lit;          /* CMP with R_LIT, FUNC, TIME with TM_LIT: the literal */
	size_t lit_off;        /* where the literal is written */
	const char *pat;       /* FUNC starts-with, ends-with: the LIKE pattern with its implied '%' */
	size_t patlen;         /* its bytes */
	xp_time_t tm;          /* TIME: what it computes */
	int64_t dur;           /* TIME with TM_ADD, TM_SUB: the duration, µs */
};

struct loom_xpath {
	char *text;                 /* the text as given */
	char *src;                  /* what was parsed: text, or the XML-unescaped content of <Filter> */
	size_t *map;                /* when src is not text: offset in text of each byte of src (and of its end) */
	char *file;                 /* opts->file, or NULL */
	unsigned line;              /* line of file where text starts */
	unsigned column;            /* column of that line where text starts */
	struct xp_arena *arena;     /* nodes, names, literals */
	xp_node_t *root;            /* a UNION */
	size_t n_set_slots;         /* set slots the PATHs use */
	size_t n_cmp_slots;         /* comparison slots the CMPs and FUNCs use */
	loom_xpath_deps_t deps;     /* what the result depends on */
	loom_xpath_dep_t *dep_v;    /* deps.v, owned */
	const char **type_v;        /* deps.types, owned */
};

/* Arena memory of x (8-byte aligned, zeroed), freed with x. */
void *xp_alloc(loom_xpath_t *x, size_t n);

/* Fills *e (when not NULL) with a message located at byte offset off of
 * x->src; returns -1. */
int xp_fail(const loom_xpath_t *x, loom_xpath_error_t *e, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ASCII case-insensitive comparison of two byte strings: <0, 0, >0. */
int xp_casecmp(const char *a, size_t la, const char *b, size_t lb);

/* FIM's string functions (docs/xpath.md): starts-with and ends-with are SQL
 * LIKE patterns ('%', '_', [a-c], [^a]) with an implied '%' after (starts)
 * or before (ends) the text; contains finds the text at the start of a word. */
bool xp_like(const char *s, size_t ls, const char *pat, size_t lp);
bool xp_contains_word(const char *s, size_t ls, const char *w, size_t lw);

#endif
