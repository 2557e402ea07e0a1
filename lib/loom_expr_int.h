/* loom_expr_int.h - what the expression compiler and evaluator (loom_expr.c)
 * share with the function library (loom_expr_funcs.c). Not for other modules.
 *
 * A compiled expression is a tree of nodes (literal, attribute, call). Every
 * node evaluates to a list of values, pushed on the value stack of the
 * evaluation; no value is null. A call evaluates its arguments, then its
 * function, which emits its values into a separate output list (so the
 * stack may grow while the function reads its arguments), and the outputs
 * replace the arguments on the stack. Values are small descriptors (xval_t)
 * that point at bytes in the attributes, the expression's literals or the
 * evaluation arena: slicing a string costs nothing, and strings are copied
 * once, into the result, at the end.
 *
 * Adding a function: one C function of one of the three kinds below and one
 * row in expr_funcs[] (loom_expr_funcs.c) giving its name, argument count,
 * argument types and result type. Another name for the same function (an
 * Entra spelling of a MIM function) is one more row with the same C function:
 * messages name the function as it was called (expr_fn_name).
 *
 * Variables ($item) are declared by the first argument of a binding function
 * (Select, Where, With: F_BINDS or F_BINDS_LIST) and visible in its third
 * argument. Each binding call has a slot (its attr field, numbered at compile
 * time); the evaluator keeps, per slot, where on the value stack the values
 * bound to the variable are, and a variable node pushes copies of them.
 */
#ifndef LOOM_EXPR_INT_H
#define LOOM_EXPR_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loom_buf.h"
#include "loom_expr.h"

/* Static type of a node that never gives a value (Null(), Error(),
 * AuthoritativeNull()): it fits wherever any type is wanted. */
#define T_NONE 7

/* Masks of accepted argument types. A reference is accepted where a string
 * is (its DN or id is read as a string). */
#define TBIT(t) (1u << (t))
#define P_STR TBIT(LOOM_EXPR_STRING)
#define P_INT TBIT(LOOM_EXPR_INT)
#define P_BOOL TBIT(LOOM_EXPR_BOOL)
#define P_BIN TBIT(LOOM_EXPR_BIN)
#define P_TIME TBIT(LOOM_EXPR_TIME)
#define P_REF TBIT(LOOM_EXPR_REF)
#define P_ANY (P_STR | P_INT | P_BOOL | P_BIN | P_TIME | P_REF)
#define P_ENUM 0x100u /* a name from the function's enums[], written bare or quoted; becomes its index */
#define P_VAR 0x200u  /* a variable declared by a binding function ($item) */

/* ---- values ----------------------------------------------------------------- */

typedef struct xval {
	const char *s;  /* STRING, REF, BIN: the bytes (no terminator unless nul) */
	size_t len;     /* STRING, REF, BIN: their count */
	int64_t i;      /* INT, TIME (µs since the epoch): the number; BOOL: 0 or 1 */
	uint8_t t;      /* loom_expr_type_t of the value */
	bool nul;       /* s lives in the evaluation arena and s[len] is '\0' */
} xval_t;

typedef struct xspan {
	xval_t *v;      /* the values of one argument */
	size_t n;       /* how many (0: null) */
} xspan_t;

/* ---- compiled form -------------------------------------------------------------- */

typedef struct expr_func expr_func_t;
typedef struct expr_node expr_node_t;

typedef enum { N_LIT, N_ATTR, N_CALL, N_VAR } expr_node_kind_t;

struct expr_node {
	expr_node_kind_t kind;    /* literal, attribute reference or call */
	uint8_t type;             /* static type: loom_expr_type_t or T_NONE */
	bool multi;               /* may give several values */
	uint8_t mode;             /* N_CALL: function-specific setting chosen at compile time */
	size_t off;               /* byte offset in the text, for messages */
	xval_t lit;               /* N_LIT: the value; N_ATTR, N_VAR: the name as written (N_VAR: without '$') */
	size_t attr;              /* N_ATTR: index in the attribute names; N_VAR and binding calls: the variable's slot */
	const expr_func_t *fn;    /* N_CALL: the function */
	expr_node_t **args;       /* N_CALL: the arguments */
	size_t nargs;             /* N_CALL: their count */
	uint32_t fix;             /* N_CALL: bit i: check (and convert) argument i's values at run time */
};

/* Modes of IIF, Switch and Coalesce: retag references as strings in the result. */
#define MODE_REF_TO_STR 1

/* ---- evaluation context -------------------------------------------------------- */

typedef struct expr_ctx expr_ctx_t;

/* A function applied value by value: a holds one value per argument (t is
 * T_NONE for a null argument when the function has F_SEES_NULL); n is the
 * count of arguments given. Emits zero or more values; returns 0 or -1 after
 * expr_fail. */
typedef int expr_map_fn(expr_ctx_t *c, const xval_t *a, size_t n);
/* A function that sees every argument's whole value list. */
typedef int expr_set_fn(expr_ctx_t *c, const xspan_t *a, size_t n);
/* A function that evaluates its own arguments (with expr_eval_arg), in the
 * order and number it needs; what it leaves on the stack is its result. */
typedef int expr_lazy_fn(expr_ctx_t *c, const expr_node_t *call);

typedef struct expr_cc expr_cc_t;
/* Extra compile-time checks of a call whose arguments are checked; may set
 * call->type, call->multi, call->mode. Returns 0 or -1 after expr_cc_fail. */
typedef int expr_check_fn(expr_cc_t *cc, expr_node_t *call);

/* Function flags. */
#define F_NULL_EMPTY 0x01u /* map: a null first argument gives "" (MIM's "if string is null, returns an empty string") */
#define F_SEES_NULL 0x02u  /* map: null arguments (but the first) are passed as T_NONE instead of giving null */
#define F_CONST 0x04u      /* no arguments; may be written without parentheses (Null, IgnoreThisFlow) */
#define F_SPECIAL 0x08u    /* only the whole expression or an IIF branch (AuthoritativeNull, IgnoreThisFlow) */
#define F_MULTI 0x10u      /* may give several values from single-valued arguments (Split) */
#define F_OPERATOR 0x20u   /* the '+' operator: not callable by name, messages say "operator '+'" */
#define F_BRANCHES 0x40u   /* arguments 2.. are branches: the result is one of them (IIF) */
#define F_PAIRS 0x80u      /* arguments come in pairs: params[0] for the first of each, params[1] for the
                            * second; with F_BRANCHES the second of each pair is a branch (Switch) */
#define F_BINDS 0x100u     /* argument 1 is a variable bound to each value of argument 2 in turn while
                            * argument 3 is evaluated (Select, Where) */
#define F_BINDS_LIST 0x200u /* argument 1 is a variable bound to all the values of argument 2 (With) */

/* Result type of a function: a loom_expr_type_t, T_NONE, or */
#define R_ARG0 8           /* the type of argument 1, single-valued or not like it */
#define R_CHECK 9          /* decided by the check function */

#define ARGS_MANY 255      /* max_args: no maximum */

struct expr_func {
	const char *name;         /* as documented; looked up case-insensitively */
	uint8_t min_args;         /* fewest arguments */
	uint8_t max_args;         /* most arguments, or ARGS_MANY */
	uint16_t params[4];       /* accepted types of arguments 1..4; the last non-zero one repeats */
	uint8_t result;           /* result type, R_ARG0 or R_CHECK */
	uint16_t flags;           /* F_* */
	expr_map_fn *map;         /* value-by-value implementation, or */
	expr_set_fn *set;         /* whole-list implementation, or */
	expr_lazy_fn *lazy;       /* self-evaluating implementation */
	expr_check_fn *check;     /* optional extra compile-time checks */
	const char *const *enums; /* P_ENUM arguments: the allowed names, NULL-terminated */
};

/* The function table and the three internal '+' operators. */
extern const expr_func_t expr_funcs[];
extern const size_t expr_n_funcs;
extern const expr_func_t expr_op_concat;  /* '+' on strings */
extern const expr_func_t expr_op_add;     /* '+' on integers */
extern const expr_func_t expr_op_plus;    /* '+' on operands whose types only evaluation tells */

/* Accepted type mask of argument i of fn. */
unsigned expr_param_mask(const expr_func_t *fn, size_t i);
/* "Left" or "operator '+'". */
const char *expr_func_label(const expr_func_t *fn);

/* ---- services for function implementations ------------------------------------ */

/* The name of the current call's function as it was called ("PadLeft", "operator '+'"). */
const char *expr_fn_name(expr_ctx_t *c);
/* Fails the evaluation with a message located at the current call; returns -1. */
int expr_fail(expr_ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, located at argument i of the current call. */
int expr_fail_arg(expr_ctx_t *c, size_t i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Emits one value of the current call. */
void expr_emit(expr_ctx_t *c, const xval_t *v);
/* Emits a string that borrows s (an argument's bytes or a literal). */
void expr_emit_str(expr_ctx_t *c, const char *s, size_t len);
/* Returns len+1 bytes of arena memory with buf[len] = '\0', for a new string. */
char *expr_new_str(expr_ctx_t *c, size_t len);
/* Emits a string made by expr_new_str (len bytes). */
void expr_emit_new(expr_ctx_t *c, const char *s, size_t len);
/* Emits an integer, boolean, datetime. */
void expr_emit_int(expr_ctx_t *c, uint8_t type, int64_t i);
/* Arena memory for scratch arrays (8-byte aligned), valid for this evaluation. */
void *expr_scratch(expr_ctx_t *c, size_t n);
/* Sets the flags of the result (AuthoritativeNull, IgnoreThisFlow). */
void expr_set_authoritative_null(expr_ctx_t *c);
void expr_set_ignore_flow(expr_ctx_t *c);

/* For lazy functions: the stack height, to come back to with expr_truncate. */
size_t expr_mark(expr_ctx_t *c);
void expr_truncate(expr_ctx_t *c, size_t mark);
/* Evaluates argument i of call onto the stack and returns its values (valid
 * until the next push); checks their types when the compiler asked for it. */
int expr_eval_arg(expr_ctx_t *c, const expr_node_t *call, size_t i, xspan_t *ret);
/* Retags the references in the values above mark as strings. */
void expr_refs_to_strings(expr_ctx_t *c, size_t mark);
/* Pushes a copy of the value at stack position i (i < the stack height). */
void expr_push_copy(expr_ctx_t *c, size_t i);
/* Removes n values from stack position at, moving the ones above down. */
void expr_drop(expr_ctx_t *c, size_t at, size_t n);
/* Binds the variable of slot to the n values at stack position at. */
void expr_bind(expr_ctx_t *c, size_t slot, size_t at, size_t n);

/* ---- services for compile-time checks ------------------------------------------ */

/* Fails the compilation with a message located at byte offset off; returns -1. */
int expr_cc_fail(expr_cc_t *cc, size_t off, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Appends user text for a message (control characters as \xNN, at most
 * 40 characters, then "..."). */
void expr_add_quoted(loom_buf_t *b, const char *s, size_t len);
/* Type name with article ("a string"); T_NONE reads "no value". */
const char *expr_type_name(unsigned t);
/* The common type of two branches, or -1 when they cannot be unified;
 * *ret_retag says references must be retagged as strings. */
int expr_unify(unsigned a, unsigned b, bool *ret_retag);
/* Whether values of types a and b can be compared for equality. */
bool expr_comparable(unsigned a, unsigned b);

/* ---- text helpers ----------------------------------------------------------------- */

/* Decodes the code point at s[*i] and advances *i; a byte that starts no
 * valid UTF-8 sequence is one character (returned as U+FFFD). */
uint32_t expr_utf8_next(const char *s, size_t len, size_t *i);
/* Characters (code points) in s. */
size_t expr_utf8_count(const char *s, size_t len);
/* Byte offset just after the first nchars characters of s (len when fewer). */
size_t expr_utf8_skip(const char *s, size_t len, size_t nchars);
/* Encodes cp at out (room for 4 bytes); returns the byte count. */
size_t expr_utf8_put(char *out, uint32_t cp);
/* Whether s is valid UTF-8. */
bool expr_utf8_valid(const char *s, size_t len);

/* ---- datetimes (loom_expr_funcs.c) --------------------------------------------------- */

/* Parses a date and time the way CDate does (see docs/expressions.md). */
bool expr_parse_time(const char *s, size_t len, int64_t *ret_us);
/* Writes us as ISO 8601 UTC (2024-03-01T12:30:00Z, .ffffff when there are
 * microseconds) into buf (at least EXPR_TIME_LEN bytes); returns the length. */
#define EXPR_TIME_LEN 40
size_t expr_format_time(char *buf, size_t size, int64_t us);

#endif
