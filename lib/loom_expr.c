/* loom_expr.c - the expression compiler (lexer, parser, type checker) and
 * the evaluator. The functions themselves are in loom_expr_funcs.c; what
 * both files share is described in loom_expr_int.h; the language is
 * described in docs/expressions.md.
 *
 * Compilation: the lexer turns the text into tokens on demand; the parser
 * (recursive descent, depth-limited) builds the tree with attribute names
 * and functions resolved by name; the checker walks the tree bottom-up,
 * giving every node its static type, resolving '+' into concatenation or
 * addition, turning enum arguments into integers, resolving variables to
 * the slots of the calls that declare them, checking argument types
 * and marking the arguments whose types only evaluation can check; a last
 * walk checks where AuthoritativeNull and IgnoreThisFlow stand. Every error
 * stops compilation and is reported once, located in the config file.
 *
 * Evaluation: see loom_expr_int.h. The scratch memory (value stack, output
 * list, arena, attribute cache) belongs to the result, not the expression,
 * so a compiled expression is never written to after compilation.
 */
#include "loom_expr.h"
#include "loom_text.h"
#include "loom_expr_int.h"

#include "loom_alloc.h"
#include "loom_buf.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_DEPTH 64          /* nesting of calls and parentheses */
#define MAX_TEXT (1u << 20)   /* bytes of expression text */
#define QUOTE_MAX 40          /* characters of user text quoted in a message */
#define LOCAL_ARGS 8          /* arguments handled without scratch memory */

/* ---- arena ------------------------------------------------------------------------ */

typedef struct arena_block {
	struct arena_block *next;  /* the block filled before this one */
	size_t size;               /* bytes in data */
	size_t used;               /* bytes handed out */
	max_align_t data[];        /* the memory */
} arena_block_t;

typedef struct arena {
	arena_block_t *head;       /* the block being filled */
	size_t total;              /* bytes in all blocks */
} arena_t;

#define ARENA_MIN 4096
#define ARENA_KEEP (1u << 20)  /* most a reset keeps for the next evaluation */

static void *arena_alloc(arena_t *a, size_t n)
{
	n = (n + 7) & ~(size_t)7;
	arena_block_t *b = a->head;
	if (b == NULL || b->size - b->used < n) {
		size_t size = a->total > ARENA_MIN ? a->total : ARENA_MIN;
		if (size < n)
			size = n;
		b = loom_malloc(sizeof *b + size);
		b->next = a->head;
		b->size = size;
		b->used = 0;
		a->head = b;
		a->total += size;
	}
	void *p = (unsigned char *)b->data + b->used;
	b->used += n;
	return p;
}

static void arena_release(arena_t *a)
{
	while (a->head) {
		arena_block_t *next = a->head->next;
		free(a->head);
		a->head = next;
	}
	a->total = 0;
}

/* Forgets everything handed out; keeps one block as large as what the
 * last use needed (up to ARENA_KEEP), so steady use allocates nothing. */
static void arena_reset(arena_t *a)
{
	if (a->head == NULL)
		return;
	if (a->head->next == NULL) {
		a->head->used = 0;
		return;
	}
	size_t keep = a->total < ARENA_KEEP ? a->total : ARENA_KEEP;
	arena_release(a);
	arena_block_t *b = loom_malloc(sizeof *b + keep);
	b->next = NULL;
	b->size = keep;
	b->used = 0;
	a->head = b;
	a->total = keep;
}

static char *arena_strndup(arena_t *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);
	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* ---- the compiled expression and the evaluation state ----------------------------- */

struct loom_expr {
	arena_t arena;             /* nodes, literals, names */
	char *text;                /* the source text */
	char *file;                /* opts->file, or NULL */
	unsigned line;             /* line of file where text starts */
	unsigned column;           /* column of that line where text starts */
	expr_node_t *root;         /* the tree */
	const char **attrs;        /* attribute names read, NULL-terminated */
	size_t n_attrs;            /* their count */
	loom_expr_type_t want;     /* the type the result must have, or ANY */
	unsigned type;             /* static type of the root */
	size_t start;              /* offset of the first token, for messages about the whole */
	size_t n_slots;            /* variables declared (binding calls) */
};

struct loom_expr_work {
	xval_t *stack;             /* the value stack */
	size_t len;                /* values on it */
	size_t cap;                /* slots allocated */
	xval_t *out;               /* the values the current function emits */
	size_t olen;               /* how many */
	size_t ocap;               /* slots allocated */
	arena_t arena;             /* strings and scratch of this evaluation */
	Loom__Value *vals;         /* the result's values */
	size_t vcap;               /* slots allocated */
	const Loom__Attr **attrs;  /* attribute cache: what lookup returned, by attribute index */
	bool *looked;              /* attribute cache: whether lookup was called */
	size_t acap;               /* slots allocated in both */
	size_t *var_at;            /* per variable slot: stack position of its values */
	size_t *var_n;             /* per variable slot: how many */
	size_t vslots;             /* slots allocated in both */
};

struct expr_ctx {
	const loom_expr_t *e;          /* what is evaluated */
	loom_expr_lookup_fn *lookup;   /* the caller's attribute lookup, or NULL */
	void *arg;                     /* passed to lookup */
	struct loom_expr_work *w;      /* scratch memory */
	const expr_node_t *at;         /* the call being evaluated, for messages */
	char *error;                   /* the message, once failed */
	bool auth_null;                /* AuthoritativeNull() was evaluated */
	bool ignore_flow;              /* IgnoreThisFlow() was evaluated */
};

/* ---- messages ---------------------------------------------------------------------- */

const char *expr_type_name(unsigned t)
{
	static const char *const names[] = {
		"any value", "a string", "an integer", "a boolean", "a binary value",
		"a datetime", "a reference", "no value",
	};
	return t < sizeof names / sizeof names[0] ? names[t] : "an unknown type";
}

const char *loom_expr_type_name(loom_expr_type_t t)
{
	return expr_type_name((unsigned)t);
}

/* "a string", "a string or a binary value", "a string, an integer or a boolean". */
static void add_mask_name(loom_buf_t *b, unsigned mask)
{
	unsigned types[8], n = 0;
	for (unsigned t = LOOM_EXPR_STRING; t <= LOOM_EXPR_REF; t++)
		if (mask & TBIT(t))
			types[n++] = t;
	for (unsigned i = 0; i < n; i++) {
		if (i > 0)
			loom_buf_adds(b, i + 1 == n ? " or " : ", ");
		loom_buf_adds(b, expr_type_name(types[i]));
	}
}

/* Line and column (1-based, in characters) of byte offset off of e's text. */
static void locate(const loom_expr_t *e, size_t off, unsigned *ret_line, unsigned *ret_col)
{
	unsigned line = e->line, col = e->column;
	size_t i = 0;
	while (i < off && e->text[i]) {
		if (e->text[i] == '\n') {
			line++;
			col = 1;
			i++;
			continue;
		}
		expr_utf8_next(e->text, off, &i);
		col++;
	}
	*ret_line = line;
	*ret_col = col;
}

static void add_location(loom_buf_t *b, const loom_expr_t *e, size_t off)
{
	unsigned line, col;
	locate(e, off, &line, &col);
	loom_buf_printf(b, "%s:%u:%u: ", e->file ? e->file : "<expression>", line, col);
}

__attribute__((format(printf, 3, 0)))
static char *vformat_at(const loom_expr_t *e, size_t off, const char *fmt, va_list ap)
{
	loom_buf_t b = LOOM_BUF_INIT;
	add_location(&b, e, off);
	loom_buf_vprintf(&b, fmt, ap);
	return loom_buf_steal(&b);
}

/* Appends user text for a message: at most QUOTE_MAX characters, "..." after. */
void expr_add_quoted(loom_buf_t *b, const char *s, size_t len)
{
	size_t cut = expr_utf8_skip(s, len, QUOTE_MAX);
	for (size_t i = 0; i < cut; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f)
			loom_buf_printf(b, "\\x%02x", ch);
		else
			loom_buf_addc(b, (char)ch);
	}
	if (cut < len)
		loom_buf_adds(b, "...");
}

/* ---- compile context and lexer ------------------------------------------------------ */

typedef enum {
	K_END, K_STR, K_INT, K_IDENT, K_BRACKET, K_LPAREN, K_RPAREN, K_COMMA, K_PLUS, K_VAR,
} tok_kind_t;

typedef struct tok {
	tok_kind_t k;     /* kind */
	size_t off;       /* byte offset of its first character */
	size_t len;       /* bytes of its text */
	const char *s;    /* K_STR: decoded bytes; K_BRACKET: the name; K_IDENT: the text; K_VAR: the name after '$' */
	size_t slen;      /* their count */
	int64_t i;        /* K_INT: the value */
} tok_t;

struct expr_cc {
	loom_expr_t *e;                     /* the expression being built */
	const loom_expr_compile_opts_t *o;  /* the caller's options */
	const char *text;                   /* e->text */
	size_t pos;                         /* lexer: next byte to read */
	tok_t tok;                          /* lexer: the current token */
	char *error;                        /* the message, once failed */
	const char **names;                 /* attribute names read so far */
	size_t n_names;                     /* their count */
	size_t cap_names;                   /* slots allocated */
	struct scope_var *scope;            /* variables visible where the checker is, innermost last */
	size_t n_scope;                     /* their count */
	size_t cap_scope;                   /* slots allocated */
	size_t n_slots;                     /* variables declared so far */
};

/* A variable visible to the checker. */
struct scope_var {
	const char *name;                   /* without '$' */
	size_t len;                         /* its bytes */
	uint8_t type;                       /* static type of its values */
	bool multi;                         /* may hold several values */
	size_t slot;                        /* slot of the call that declares it */
};

int expr_cc_fail(expr_cc_t *cc, size_t off, const char *fmt, ...)
{
	if (cc->error == NULL) {
		va_list ap;
		va_start(ap, fmt);
		cc->error = vformat_at(cc->e, off, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Describes a token for "found ..." in messages. */
static const char *describe_tok(expr_cc_t *cc, const tok_t *t, loom_buf_t *b)
{
	loom_buf_reset(b);
	if (t->k == K_END)
		return "the end of the expression";
	if (t->k == K_STR)
		return "a string";
	loom_buf_addc(b, '\'');
	expr_add_quoted(b, cc->text + t->off, t->len);
	loom_buf_addc(b, '\'');
	return loom_buf_cstr(b);
}

static bool is_ident_start(char ch)
{
	return isalpha((unsigned char)ch) || ch == '_';
}

static bool is_ident_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '_' || ch == '-';
}

static int lex_string(expr_cc_t *cc, tok_t *k)
{
	const char *t = cc->text;
	size_t p = k->off + 1, n = 0;
	for (;;) {
		char ch = t[p];
		if (ch == '\0')
			return expr_cc_fail(cc, k->off, "unterminated string (missing closing '\"')");
		if (ch == '"')
			break;
		if (ch == '\\') {
			char esc = t[p + 1];
			if (esc == '\0')
				return expr_cc_fail(cc, k->off, "unterminated string (missing closing '\"')");
			if (esc != '"' && esc != '\\' && esc != 'n' && esc != 'r' && esc != 't') {
				loom_buf_t b = LOOM_BUF_INIT;
				size_t j = p + 1;
				expr_utf8_next(t, strlen(t), &j);
				expr_add_quoted(&b, t + p + 1, j - p - 1);
				expr_cc_fail(cc, p, "unknown escape '\\%s' in a string (the escapes are \\\" \\\\ \\n \\r \\t)",
				    loom_buf_cstr(&b));
				loom_buf_release(&b);
				return -1;
			}
			p += 2;
		} else {
			p++;
		}
		n++;
	}
	char *s = arena_alloc(&cc->e->arena, n + 1);
	size_t o = 0;
	for (size_t q = k->off + 1; q < p; q++) {
		char ch = t[q];
		if (ch == '\\') {
			ch = t[++q];
			ch = ch == 'n' ? '\n' : ch == 'r' ? '\r' : ch == 't' ? '\t' : ch;
		}
		s[o++] = ch;
	}
	s[o] = '\0';
	k->k = K_STR;
	k->s = s;
	k->slen = o;
	k->len = p + 1 - k->off;
	return 0;
}

static int lex_int(expr_cc_t *cc, tok_t *k)
{
	const char *t = cc->text;
	size_t p = k->off;
	bool neg = t[p] == '-';
	if (neg)
		p++;
	uint64_t v = 0;
	bool over = false;
	for (; isdigit((unsigned char)t[p]); p++) {
		unsigned d = (unsigned)(t[p] - '0');
		if (v > (UINT64_MAX - d) / 10)
			over = true;
		else
			v = v * 10 + d;
	}
	k->len = p - k->off;
	if (over || v > (uint64_t)INT64_MAX + neg) {
		loom_buf_t b = LOOM_BUF_INIT;
		expr_add_quoted(&b, t + k->off, k->len);
		expr_cc_fail(cc, k->off, "integer '%s' is out of range", loom_buf_cstr(&b));
		loom_buf_release(&b);
		return -1;
	}
	k->k = K_INT;
	k->i = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

/* &H followed by hexadecimal digits (Entra's notation): a non-negative integer. */
static int lex_hex(expr_cc_t *cc, tok_t *k)
{
	const char *t = cc->text;
	size_t p = k->off + 2;
	uint64_t v = 0;
	bool over = false;
	for (; isxdigit((unsigned char)t[p]); p++) {
		unsigned char ch = (unsigned char)t[p];
		unsigned d = isdigit(ch) ? (unsigned)(ch - '0') : (unsigned)(tolower(ch) - 'a' + 10);
		if (v > (UINT64_MAX >> 4))
			over = true;
		v = v << 4 | d;
	}
	k->len = p - k->off;
	if (over || v > (uint64_t)INT64_MAX) {
		loom_buf_t b = LOOM_BUF_INIT;
		expr_add_quoted(&b, t + k->off, k->len);
		expr_cc_fail(cc, k->off, "integer '%s' is out of range", loom_buf_cstr(&b));
		loom_buf_release(&b);
		return -1;
	}
	k->k = K_INT;
	k->i = (int64_t)v;
	return 0;
}

static int lex_bracket(expr_cc_t *cc, tok_t *k)
{
	const char *t = cc->text;
	size_t p = k->off + 1;
	while (t[p] && t[p] != ']' && t[p] != '\n')
		p++;
	if (t[p] != ']')
		return expr_cc_fail(cc, k->off, "unterminated attribute name (missing ']')");
	size_t b = k->off + 1, e = p;
	while (b < e && (t[b] == ' ' || t[b] == '\t'))
		b++;
	while (e > b && (t[e - 1] == ' ' || t[e - 1] == '\t' || t[e - 1] == '\r'))
		e--;
	if (b == e)
		return expr_cc_fail(cc, k->off, "empty attribute name '[]'");
	k->k = K_BRACKET;
	k->s = arena_strndup(&cc->e->arena, t + b, e - b);
	k->slen = e - b;
	k->len = p + 1 - k->off;
	return 0;
}

/* Reads the next token into cc->tok. */
static int lex(expr_cc_t *cc)
{
	const char *t = cc->text;
	size_t p = cc->pos;
	while (t[p] == ' ' || t[p] == '\t' || t[p] == '\r' || t[p] == '\n')
		p++;
	tok_t *k = &cc->tok;
	memset(k, 0, sizeof *k);
	k->off = p;
	k->len = 1;
	char ch = t[p];
	int r = 0;
	switch (ch) {
	case '\0':
		k->k = K_END;
		k->len = 0;
		break;
	case '(':
		k->k = K_LPAREN;
		break;
	case ')':
		k->k = K_RPAREN;
		break;
	case ',':
		k->k = K_COMMA;
		break;
	case '+':
		k->k = K_PLUS;
		break;
	case '"':
		r = lex_string(cc, k);
		break;
	case '[':
		r = lex_bracket(cc, k);
		break;
	case '$': {
		size_t q = p + 1;
		if (!is_ident_start(t[q]))
			return expr_cc_fail(cc, p, "expected a variable name after '$'");
		while (is_ident_char(t[q]))
			q++;
		k->k = K_VAR;
		k->s = t + p + 1;
		k->slen = q - p - 1;
		k->len = q - p;
		break;
	}
	default:
		if (isdigit((unsigned char)ch) || (ch == '-' && isdigit((unsigned char)t[p + 1]))) {
			r = lex_int(cc, k);
		} else if (ch == '&' && (t[p + 1] == 'H' || t[p + 1] == 'h') && isxdigit((unsigned char)t[p + 2])) {
			r = lex_hex(cc, k);
		} else if (is_ident_start(ch)) {
			size_t q = p + 1;
			while (is_ident_char(t[q]))
				q++;
			k->k = K_IDENT;
			k->s = t + p;
			k->slen = k->len = q - p;
		} else {
			size_t q = p;
			uint32_t cp = expr_utf8_next(t, strlen(t), &q);
			const char *hint = ch == '&' ? " (concatenate with '+')"
			    : ch == '=' || ch == '<' || ch == '>' ? " (compare with Eq, NotEquals, LessThan or GreaterThan)"
			    : ch == '\'' ? " (strings are written in double quotes)"
			    : ch == '%' ? " (Entra's %parameters% are not supported; use an attribute)" : "";
			if (cp < 0x20 || cp == 0x7f)
				return expr_cc_fail(cc, p, "unexpected character U+%04X", (unsigned)cp);
			return expr_cc_fail(cc, p, "unexpected character '%.*s'%s", (int)(q - p), t + p, hint);
		}
		break;
	}
	if (r < 0)
		return -1;
	cc->pos = p + k->len;
	return 0;
}

/* ---- parser --------------------------------------------------------------------------- */

static const expr_func_t *find_func(const char *name, size_t len)
{
	for (size_t i = 0; i < expr_n_funcs; i++) {
		const expr_func_t *f = &expr_funcs[i];
		if (strncasecmp(f->name, name, len) == 0 && f->name[len] == '\0')
			return f;
	}
	return NULL;
}


/* The function an unknown name most likely meant: the Entra Connect name of
 * a MIM function, or the one close name; NULL when none is (or two are). */
static const char *suggest_func(const char *s, size_t n)
{
	static const char *const aliases[][2] = {
		{ "Equals", "Eq" }, { "NotEq", "NotEquals" }, { "Ne", "NotEquals" },
		{ "Substring", "Mid" }, { "Length", "Len" }, { "Concat", "Concatenate" },
		{ "If", "IIF" }, { "Random", "RandomNum" }, { "DateTime", "DateTimeFormat" },
		{ "NewGuid", "Guid" }, { "IsNothing", "IsNull" }, { "Choose", "Switch" },
	};
	for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
		if (strncasecmp(aliases[i][0], s, n) == 0 && aliases[i][0][n] == '\0')
			return aliases[i][1];
	loom_suggest_t sg;
	loom_suggest_init(&sg, s, n);
	for (size_t i = 0; i < expr_n_funcs; i++)
		loom_suggest_offer(&sg, expr_funcs[i].name);
	return loom_suggest_best(&sg);
}

static expr_node_t *node_new(expr_cc_t *cc, expr_node_kind_t kind, size_t off)
{
	expr_node_t *n = arena_alloc(&cc->e->arena, sizeof *n);
	memset(n, 0, sizeof *n);
	n->kind = kind;
	n->off = off;
	n->type = LOOM_EXPR_ANY;
	return n;
}

static expr_node_t *node_call(expr_cc_t *cc, const expr_func_t *fn, size_t off, expr_node_t **args, size_t nargs)
{
	expr_node_t *n = node_new(cc, N_CALL, off);
	n->fn = fn;
	n->nargs = nargs;
	if (nargs) {
		n->args = arena_alloc(&cc->e->arena, nargs * sizeof *n->args);
		memcpy(n->args, args, nargs * sizeof *n->args);
	}
	return n;
}

/* "2 arguments", "1 or 2 arguments", "at least 1 argument", "no arguments". */
static void add_arity(loom_buf_t *b, const expr_func_t *fn)
{
	unsigned lo = fn->min_args, hi = fn->max_args;
	if (hi == ARGS_MANY)
		loom_buf_printf(b, "at least %u argument%s", lo, lo == 1 ? "" : "s");
	else if (lo == hi && lo == 0)
		loom_buf_adds(b, "no arguments");
	else if (lo == hi)
		loom_buf_printf(b, "%u argument%s", lo, lo == 1 ? "" : "s");
	else if (hi == lo + 1)
		loom_buf_printf(b, "%u or %u arguments", lo, hi);
	else
		loom_buf_printf(b, "%u to %u arguments", lo, hi);
}

static expr_node_t *parse_sum(expr_cc_t *cc, unsigned depth);

static expr_node_t *parse_call(expr_cc_t *cc, const tok_t *name, unsigned depth)
{
	loom_buf_t b = LOOM_BUF_INIT;
	expr_node_t **args = NULL, *n = NULL;
	size_t nargs = 0, cap = 0;
	const expr_func_t *fn = find_func(name->s, name->slen);
	if (depth >= MAX_DEPTH) {
		expr_cc_fail(cc, name->off, "expression nested too deeply (more than %d levels)", MAX_DEPTH);
		goto out;
	}
	if (fn == NULL) {
		expr_add_quoted(&b, name->s, name->slen);
		const char *hint = suggest_func(name->s, name->slen);
		if (hint)
			expr_cc_fail(cc, name->off, "unknown function '%s' (did you mean '%s'?)", loom_buf_cstr(&b), hint);
		else
			expr_cc_fail(cc, name->off, "unknown function '%s'", loom_buf_cstr(&b));
		goto out;
	}
	if (lex(cc) < 0) /* the '(' */
		goto out;
	if (cc->tok.k != K_RPAREN) {
		for (;;) {
			expr_node_t *a = parse_sum(cc, depth + 1);
			if (a == NULL)
				goto out;
			if (nargs == cap) {
				cap = cap ? 2 * cap : 4;
				args = loom_realloc(args, cap * sizeof *args);
			}
			args[nargs++] = a;
			if (cc->tok.k == K_COMMA) {
				if (lex(cc) < 0)
					goto out;
				continue;
			}
			if (cc->tok.k == K_RPAREN)
				break;
			if (nargs == fn->max_args)
				expr_cc_fail(cc, cc->tok.off, "expected ')' after the arguments of %s, found %s",
				    fn->name, describe_tok(cc, &cc->tok, &b));
			else
				expr_cc_fail(cc, cc->tok.off, "expected ',' or ')' after argument %zu of %s, found %s",
				    nargs, fn->name, describe_tok(cc, &cc->tok, &b));
			goto out;
		}
	}
	size_t close = cc->tok.off;
	if (lex(cc) < 0)
		goto out;
	if (nargs > fn->max_args || nargs < fn->min_args) {
		loom_buf_reset(&b);
		add_arity(&b, fn);
		expr_cc_fail(cc, nargs > fn->max_args ? args[fn->max_args]->off : close, "%s expects %s, got %zu",
		    fn->name, loom_buf_cstr(&b), nargs);
		goto out;
	}
	n = node_call(cc, fn, name->off, args, nargs);
out:
	free(args);
	loom_buf_release(&b);
	return n;
}

static expr_node_t *parse_term(expr_cc_t *cc, unsigned depth)
{
	loom_buf_t b = LOOM_BUF_INIT;
	expr_node_t *n = NULL;
	tok_t t = cc->tok;
	switch (t.k) {
	case K_STR:
		n = node_new(cc, N_LIT, t.off);
		n->type = n->lit.t = LOOM_EXPR_STRING;
		n->lit.s = t.s;
		n->lit.len = t.slen;
		break;
	case K_INT:
		n = node_new(cc, N_LIT, t.off);
		n->type = n->lit.t = LOOM_EXPR_INT;
		n->lit.i = t.i;
		break;
	case K_BRACKET:
		n = node_new(cc, N_ATTR, t.off);
		n->lit.s = t.s;
		n->lit.len = t.slen;
		break;
	case K_VAR:
		n = node_new(cc, N_VAR, t.off);
		n->lit.s = arena_strndup(&cc->e->arena, t.s, t.slen);
		n->lit.len = t.slen;
		break;
	case K_LPAREN: {
		if (depth >= MAX_DEPTH) {
			expr_cc_fail(cc, t.off, "expression nested too deeply (more than %d levels)", MAX_DEPTH);
			goto out;
		}
		if (lex(cc) < 0)
			goto out;
		expr_node_t *inner = parse_sum(cc, depth + 1);
		if (inner == NULL)
			goto out;
		if (cc->tok.k != K_RPAREN) {
			unsigned line, col;
			locate(cc->e, t.off, &line, &col);
			expr_cc_fail(cc, cc->tok.off, "expected ')' to close the '(' at %u:%u, found %s", line, col,
			    describe_tok(cc, &cc->tok, &b));
			goto out;
		}
		n = inner;
		break;
	}
	case K_IDENT: {
		if (lex(cc) < 0)
			goto out;
		if (cc->tok.k == K_LPAREN) {
			n = parse_call(cc, &t, depth);
			goto out; /* parse_call has read past the ')' */
		}
		const expr_func_t *fn;
		if ((t.slen == 4 && strncasecmp(t.s, "true", 4) == 0) || (t.slen == 5 && strncasecmp(t.s, "false", 5) == 0)) {
			n = node_new(cc, N_LIT, t.off);
			n->type = n->lit.t = LOOM_EXPR_BOOL;
			n->lit.i = t.slen == 4;
		} else if ((fn = find_func(t.s, t.slen)) != NULL && (fn->flags & F_CONST)) {
			n = node_call(cc, fn, t.off, NULL, 0);
		} else {
			n = node_new(cc, N_ATTR, t.off);
			n->lit.s = arena_strndup(&cc->e->arena, t.s, t.slen);
			n->lit.len = t.slen;
		}
		goto out; /* the token after the identifier is read already */
	}
	default:
		expr_cc_fail(cc, t.off, "expected a value, found %s", describe_tok(cc, &t, &b));
		goto out;
	}
	if (lex(cc) < 0)
		n = NULL;
out:
	loom_buf_release(&b);
	return n;
}

/* term ('+' term)*: a chain of '+' is one call with every term an argument;
 * its function is chosen by the checker. */
static expr_node_t *parse_sum(expr_cc_t *cc, unsigned depth)
{
	expr_node_t *first = parse_term(cc, depth);
	if (first == NULL || cc->tok.k != K_PLUS)
		return first;
	size_t off = cc->tok.off, n = 1, cap = 4;
	expr_node_t **terms = loom_malloc(cap * sizeof *terms), *r = NULL;
	terms[0] = first;
	while (cc->tok.k == K_PLUS) {
		if (lex(cc) < 0)
			goto out;
		expr_node_t *t = parse_term(cc, depth);
		if (t == NULL)
			goto out;
		if (n == cap) {
			cap *= 2;
			terms = loom_realloc(terms, cap * sizeof *terms);
		}
		terms[n++] = t;
	}
	r = node_call(cc, NULL, off, terms, n);
out:
	free(terms);
	return r;
}

/* ---- checker ------------------------------------------------------------------------------ */

unsigned expr_param_mask(const expr_func_t *fn, size_t i)
{
	if (fn->flags & F_PAIRS)
		return fn->params[i % 2];
	size_t last = 0;
	while (last + 1 < sizeof fn->params / sizeof fn->params[0] && fn->params[last + 1])
		last++;
	return fn->params[i < last ? i : last];
}

const char *expr_func_label(const expr_func_t *fn)
{
	return (fn->flags & F_OPERATOR) ? "operator '+'" : fn->name;
}

int expr_unify(unsigned a, unsigned b, bool *ret_retag)
{
	if (a == T_NONE)
		return (int)b;
	if (b == T_NONE || a == b)
		return (int)a;
	if (a == LOOM_EXPR_ANY || b == LOOM_EXPR_ANY)
		return LOOM_EXPR_ANY;
	if ((a == LOOM_EXPR_STRING && b == LOOM_EXPR_REF) || (a == LOOM_EXPR_REF && b == LOOM_EXPR_STRING)) {
		*ret_retag = true;
		return LOOM_EXPR_STRING;
	}
	return -1;
}

bool expr_comparable(unsigned a, unsigned b)
{
	bool sa = a == LOOM_EXPR_STRING || a == LOOM_EXPR_REF, sb = b == LOOM_EXPR_STRING || b == LOOM_EXPR_REF;
	return a == b || (sa && sb);
}

static size_t intern_name(expr_cc_t *cc, const char *name)
{
	for (size_t i = 0; i < cc->n_names; i++)
		if (strcasecmp(cc->names[i], name) == 0)
			return i;
	if (cc->n_names == cc->cap_names) {
		cc->cap_names = cc->cap_names ? 2 * cc->cap_names : 8;
		cc->names = loom_realloc(cc->names, cc->cap_names * sizeof *cc->names);
	}
	cc->names[cc->n_names] = name;
	return cc->n_names++;
}

static int check_attr(expr_cc_t *cc, expr_node_t *n)
{
	const loom_expr_compile_opts_t *o = cc->o;
	n->type = LOOM_EXPR_ANY;
	n->multi = false;
	if (o->attr_type) {
		bool multi = false;
		int t = o->attr_type(o->arg, n->lit.s, &multi);
		if (t < 0) {
			if (o->strict) {
				loom_buf_t b = LOOM_BUF_INIT;
				expr_add_quoted(&b, n->lit.s, n->lit.len);
				expr_cc_fail(cc, n->off, "unknown attribute '%s'", loom_buf_cstr(&b));
				loom_buf_release(&b);
				return -1;
			}
		} else {
			n->type = t <= LOOM_EXPR_REF ? (uint8_t)t : LOOM_EXPR_ANY;
			n->multi = multi;
		}
	}
	n->attr = intern_name(cc, n->lit.s);
	return 0;
}

/* An enum argument: a bare name or a string literal naming one of fn->enums;
 * becomes the integer literal of its index. */
static int resolve_enum(expr_cc_t *cc, expr_node_t *call, size_t i)
{
	expr_node_t *a = call->args[i];
	const expr_func_t *fn = call->fn;
	loom_buf_t names = LOOM_BUF_INIT, got = LOOM_BUF_INIT;
	for (size_t j = 0; fn->enums[j]; j++) {
		if (j > 0)
			loom_buf_adds(&names, ", ");
		loom_buf_adds(&names, fn->enums[j]);
	}
	if (a->kind == N_ATTR || (a->kind == N_LIT && a->lit.t == LOOM_EXPR_STRING)) {
		for (size_t j = 0; fn->enums[j]; j++) {
			if (strlen(fn->enums[j]) == a->lit.len && strncasecmp(fn->enums[j], a->lit.s, a->lit.len) == 0) {
				a->kind = N_LIT;
				a->type = a->lit.t = LOOM_EXPR_INT;
				a->lit.i = (int64_t)j;
				a->multi = false;
				loom_buf_release(&names);
				return 0;
			}
		}
		loom_buf_addc(&got, '\'');
		expr_add_quoted(&got, a->lit.s, a->lit.len);
		loom_buf_addc(&got, '\'');
	} else {
		loom_buf_adds(&got, "an expression");
	}
	expr_cc_fail(cc, a->off, "argument %zu of %s must be one of %s, got %s", i + 1, fn->name,
	    loom_buf_cstr(&names), loom_buf_cstr(&got));
	loom_buf_release(&names);
	loom_buf_release(&got);
	return -1;
}

/* Picks the function of a '+' chain from its operands' types. */
static int resolve_plus(expr_cc_t *cc, expr_node_t *call)
{
	unsigned kind = 0; /* 1: strings, 2: integers */
	for (size_t i = 0; i < call->nargs; i++) {
		const expr_node_t *a = call->args[i];
		unsigned t = a->type, k;
		if (t == T_NONE || t == LOOM_EXPR_ANY)
			continue;
		k = t == LOOM_EXPR_STRING || t == LOOM_EXPR_REF ? 1 : t == LOOM_EXPR_INT ? 2 : 0;
		if (k == 0)
			return expr_cc_fail(cc, a->off, "operator '+' needs strings or integers, got %s", expr_type_name(t));
		if (kind == 0)
			kind = k;
		else if (k != kind)
			return expr_cc_fail(cc, a->off,
			    "operator '+' cannot combine a string and an integer (convert with CStr or CNum)");
	}
	call->fn = kind == 1 ? &expr_op_concat : kind == 2 ? &expr_op_add : &expr_op_plus;
	return 0;
}

/* Makes the variable of a binding call visible (to its third argument). */
static void declare_var(expr_cc_t *cc, expr_node_t *call)
{
	expr_node_t *v = call->args[0];
	const expr_node_t *values = call->args[1];
	if (cc->n_scope == cc->cap_scope) {
		cc->cap_scope = cc->cap_scope ? 2 * cc->cap_scope : 4;
		cc->scope = loom_realloc(cc->scope, cc->cap_scope * sizeof *cc->scope);
	}
	call->attr = v->attr = cc->n_slots++;
	v->type = values->type;
	v->multi = (call->fn->flags & F_BINDS_LIST) ? values->multi : false;
	cc->scope[cc->n_scope++] = (struct scope_var){
		.name = v->lit.s, .len = v->lit.len, .type = v->type, .multi = v->multi, .slot = v->attr,
	};
}

/* A variable used: the innermost one of that name in scope. */
static int check_var(expr_cc_t *cc, expr_node_t *n)
{
	for (size_t i = cc->n_scope; i-- > 0;) {
		const struct scope_var *v = &cc->scope[i];
		if (v->len == n->lit.len && strncasecmp(v->name, n->lit.s, v->len) == 0) {
			n->attr = v->slot;
			n->type = v->type;
			n->multi = v->multi;
			return 0;
		}
	}
	loom_buf_t b = LOOM_BUF_INIT;
	expr_add_quoted(&b, n->lit.s, n->lit.len);
	expr_cc_fail(cc, n->off, "unknown variable '$%s' (variables are declared by Select, Where and With)",
	    loom_buf_cstr(&b));
	loom_buf_release(&b);
	return -1;
}

static int check_node(expr_cc_t *cc, expr_node_t *n);

static int check_call(expr_cc_t *cc, expr_node_t *n)
{
	bool binds = n->fn && (n->fn->flags & (F_BINDS | F_BINDS_LIST));
	size_t scope_mark = cc->n_scope;
	for (size_t i = 0; i < n->nargs; i++) {
		unsigned mask = n->fn ? expr_param_mask(n->fn, i) : 0;
		if (mask & P_ENUM) {
			if (resolve_enum(cc, n, i) < 0)
				return -1;
			continue;
		}
		if (mask & P_VAR) {
			if (n->args[i]->kind != N_VAR)
				return expr_cc_fail(cc, n->args[i]->off, "argument %zu of %s must be a variable such as $item",
				    i + 1, n->fn->name);
			continue;
		}
		if (binds && i == 2)
			declare_var(cc, n);
		if (check_node(cc, n->args[i]) < 0)
			return -1;
	}
	cc->n_scope = scope_mark;
	if (n->fn == NULL && resolve_plus(cc, n) < 0)
		return -1;
	const expr_func_t *fn = n->fn;
	size_t first_multi = SIZE_MAX;
	bool any_multi = false;
	for (size_t i = 0; i < n->nargs; i++) {
		const expr_node_t *a = n->args[i];
		unsigned mask = expr_param_mask(fn, i), t = a->type;
		uint32_t bit = 1u << (i < 31 ? i : 31);
		if (mask & (P_ENUM | P_VAR))
			continue;
		if (t == LOOM_EXPR_ANY) {
			n->fix |= bit;
		} else if (t != T_NONE && !(mask & TBIT(t))) {
			if (t == LOOM_EXPR_REF && (mask & P_STR)) {
				n->fix |= bit;
			} else {
				loom_buf_t b = LOOM_BUF_INIT;
				add_mask_name(&b, mask);
				expr_cc_fail(cc, a->off, "argument %zu of %s must be %s, got %s", i + 1, fn->name,
				    loom_buf_cstr(&b), expr_type_name(t));
				loom_buf_release(&b);
				return -1;
			}
		}
		if (a->multi) {
			any_multi = true;
			if (fn->map && first_multi != SIZE_MAX)
				return expr_cc_fail(cc, a->off, "%s cannot combine two multi-valued arguments (arguments %zu and %zu)",
				    expr_func_label(fn), first_multi + 1, i + 1);
			if (first_multi == SIZE_MAX)
				first_multi = i;
		}
	}
	if (fn->result == R_ARG0) {
		n->type = n->nargs ? n->args[0]->type : LOOM_EXPR_ANY;
		n->multi = n->nargs ? n->args[0]->multi : false;
	} else if (fn->result != R_CHECK) {
		n->type = fn->result;
		n->multi = (fn->flags & F_MULTI) || (fn->map && any_multi);
	}
	return fn->check ? fn->check(cc, n) : 0;
}

static int check_node(expr_cc_t *cc, expr_node_t *n)
{
	switch (n->kind) {
	case N_LIT:
		return 0;
	case N_ATTR:
		return check_attr(cc, n);
	case N_CALL:
		return check_call(cc, n);
	case N_VAR:
		return check_var(cc, n);
	}
	return 0;
}

/* AuthoritativeNull and IgnoreThisFlow say what to do with the flow, so they
 * must decide the whole result: the expression itself, or a branch of an IIF
 * that does. */
static int check_special(expr_cc_t *cc, const expr_node_t *n, bool top)
{
	if (n->kind != N_CALL)
		return 0;
	if ((n->fn->flags & F_SPECIAL) && !top)
		return expr_cc_fail(cc, n->off, "%s can only be the whole expression or a branch of IIF", n->fn->name);
	for (size_t i = 0; i < n->nargs; i++) {
		bool branch = (n->fn->flags & F_BRANCHES) && ((n->fn->flags & F_PAIRS) ? i % 2 == 1 : i > 0);
		if (check_special(cc, n->args[i], branch ? top : false) < 0)
			return -1;
	}
	return 0;
}

static bool str_ref_pair(unsigned a, unsigned b)
{
	return (a == LOOM_EXPR_STRING && b == LOOM_EXPR_REF) || (a == LOOM_EXPR_REF && b == LOOM_EXPR_STRING);
}

int loom_expr_compile(const char *text, const loom_expr_compile_opts_t *opts, loom_expr_t **ret, char **ret_error)
{
	static const loom_expr_compile_opts_t defaults = { 0 };
	const loom_expr_compile_opts_t *o = opts ? opts : &defaults;
	loom_expr_t *e = loom_calloc(1, sizeof *e);
	e->text = loom_strdup(text ? text : "");
	e->file = o->file ? loom_strdup(o->file) : NULL;
	e->line = o->line ? o->line : 1;
	e->column = o->column ? o->column : 1;
	e->want = o->want;
	expr_cc_t cc = { .e = e, .o = o, .text = e->text };
	if (o->want > LOOM_EXPR_REF) {
		expr_cc_fail(&cc, 0, "invalid wanted type %d", (int)o->want);
		goto fail;
	}
	if (strlen(e->text) > MAX_TEXT) {
		expr_cc_fail(&cc, 0, "expression too long (more than %u bytes)", MAX_TEXT);
		goto fail;
	}
	if (lex(&cc) < 0)
		goto fail;
	if (cc.tok.k == K_END) {
		expr_cc_fail(&cc, cc.tok.off, "empty expression");
		goto fail;
	}
	e->start = cc.tok.off;
	e->root = parse_sum(&cc, 0);
	if (e->root == NULL)
		goto fail;
	if (cc.tok.k != K_END) {
		loom_buf_t b = LOOM_BUF_INIT;
		expr_cc_fail(&cc, cc.tok.off, "expected '+' or the end of the expression, found %s",
		    describe_tok(&cc, &cc.tok, &b));
		loom_buf_release(&b);
		goto fail;
	}
	if (check_node(&cc, e->root) < 0 || check_special(&cc, e->root, true) < 0)
		goto fail;
	unsigned t = e->root->type;
	if (o->want != LOOM_EXPR_ANY && t != LOOM_EXPR_ANY && t != T_NONE && t != o->want && !str_ref_pair(t, o->want)) {
		expr_cc_fail(&cc, e->start, "the expression gives %s, expected %s", expr_type_name(t),
		    expr_type_name(o->want));
		goto fail;
	}
	e->type = t;
	e->n_slots = cc.n_slots;
	e->n_attrs = cc.n_names;
	e->attrs = arena_alloc(&e->arena, (cc.n_names + 1) * sizeof *e->attrs);
	for (size_t i = 0; i < cc.n_names; i++)
		e->attrs[i] = cc.names[i];
	e->attrs[cc.n_names] = NULL;
	free(cc.names);
	free(cc.scope);
	*ret = e;
	return 0;
fail:
	if (cc.error == NULL)
		cc.error = loom_strdup("expression compilation failed");
	if (ret_error)
		*ret_error = cc.error;
	else
		free(cc.error);
	free(cc.names);
	free(cc.scope);
	loom_expr_destroy(&e);
	return -1;
}

void loom_expr_destroy(loom_expr_t **e)
{
	if (e == NULL || *e == NULL)
		return;
	arena_release(&(*e)->arena);
	free((*e)->text);
	free((*e)->file);
	free(*e);
	*e = NULL;
}

loom_expr_type_t loom_expr_result_type(const loom_expr_t *e)
{
	if (e->want != LOOM_EXPR_ANY)
		return e->want;
	return e->type == T_NONE ? LOOM_EXPR_ANY : (loom_expr_type_t)e->type;
}

const char *const *loom_expr_attributes(const loom_expr_t *e)
{
	return e->attrs;
}

const char *loom_expr_direct_attr(const loom_expr_t *e)
{
	return e->root && e->root->kind == N_ATTR ? e->attrs[e->root->attr] : NULL;
}

/* ---- evaluation --------------------------------------------------------------------------- */

static xval_t *stack_push(struct loom_expr_work *w)
{
	if (w->len == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 64;
		w->stack = loom_realloc(w->stack, w->cap * sizeof *w->stack);
	}
	return &w->stack[w->len++];
}

__attribute__((format(printf, 3, 0)))
static int vfail_at(expr_ctx_t *c, size_t off, const char *fmt, va_list ap)
{
	if (c->error == NULL)
		c->error = vformat_at(c->e, off, fmt, ap);
	return -1;
}

const char *expr_fn_name(expr_ctx_t *c)
{
	return c->at && c->at->fn ? expr_func_label(c->at->fn) : "the expression";
}

int expr_fail(expr_ctx_t *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail_at(c, c->at ? c->at->off : c->e->start, fmt, ap);
	va_end(ap);
	return -1;
}

int expr_fail_arg(expr_ctx_t *c, size_t i, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail_at(c, c->at && i < c->at->nargs ? c->at->args[i]->off : c->e->start, fmt, ap);
	va_end(ap);
	return -1;
}

void expr_emit(expr_ctx_t *c, const xval_t *v)
{
	struct loom_expr_work *w = c->w;
	if (w->olen == w->ocap) {
		w->ocap = w->ocap ? 2 * w->ocap : 16;
		w->out = loom_realloc(w->out, w->ocap * sizeof *w->out);
	}
	w->out[w->olen++] = *v;
}

void expr_emit_str(expr_ctx_t *c, const char *s, size_t len)
{
	xval_t v = { .s = s, .len = len, .t = LOOM_EXPR_STRING };
	expr_emit(c, &v);
}

char *expr_new_str(expr_ctx_t *c, size_t len)
{
	char *s = arena_alloc(&c->w->arena, len + 1);
	s[len] = '\0';
	return s;
}

void expr_emit_new(expr_ctx_t *c, const char *s, size_t len)
{
	xval_t v = { .s = s, .len = len, .t = LOOM_EXPR_STRING, .nul = true };
	expr_emit(c, &v);
}

void expr_emit_int(expr_ctx_t *c, uint8_t type, int64_t i)
{
	xval_t v = { .i = i, .t = type };
	expr_emit(c, &v);
}

void *expr_scratch(expr_ctx_t *c, size_t n)
{
	return arena_alloc(&c->w->arena, n);
}

void expr_set_authoritative_null(expr_ctx_t *c)
{
	c->auth_null = true;
}

void expr_set_ignore_flow(expr_ctx_t *c)
{
	c->ignore_flow = true;
}

size_t expr_mark(expr_ctx_t *c)
{
	return c->w->len;
}

void expr_truncate(expr_ctx_t *c, size_t mark)
{
	c->w->len = mark;
}

void expr_refs_to_strings(expr_ctx_t *c, size_t mark)
{
	for (size_t i = mark; i < c->w->len; i++)
		if (c->w->stack[i].t == LOOM_EXPR_REF)
			c->w->stack[i].t = LOOM_EXPR_STRING;
}

void expr_push_copy(expr_ctx_t *c, size_t i)
{
	xval_t x = c->w->stack[i]; /* copied first: the push may move the stack */
	*stack_push(c->w) = x;
}

void expr_drop(expr_ctx_t *c, size_t at, size_t n)
{
	struct loom_expr_work *w = c->w;
	if (n == 0)
		return;
	memmove(w->stack + at, w->stack + at + n, (w->len - at - n) * sizeof *w->stack);
	w->len -= n;
}

void expr_bind(expr_ctx_t *c, size_t slot, size_t at, size_t n)
{
	c->w->var_at[slot] = at;
	c->w->var_n[slot] = n;
}

/* Checks the values of argument i of call against its accepted types,
 * reading references as strings where strings are wanted. */
static int check_values(expr_ctx_t *c, const expr_node_t *call, size_t i, xspan_t *a)
{
	const expr_func_t *fn = call->fn;
	unsigned mask = expr_param_mask(fn, i);
	for (size_t j = 0; j < a->n; j++) {
		xval_t *v = &a->v[j];
		if (mask & TBIT(v->t))
			continue;
		if (v->t == LOOM_EXPR_REF && (mask & P_STR)) {
			v->t = LOOM_EXPR_STRING;
			continue;
		}
		const expr_node_t *prev = c->at;
		c->at = call;
		if (fn->flags & F_OPERATOR) {
			if (v->t == LOOM_EXPR_STRING || v->t == LOOM_EXPR_INT)
				expr_fail_arg(c, i, "operator '+' cannot combine a string and an integer (convert with CStr or CNum)");
			else
				expr_fail_arg(c, i, "operator '+' needs strings or integers, got %s", expr_type_name(v->t));
		} else {
			loom_buf_t b = LOOM_BUF_INIT;
			add_mask_name(&b, mask);
			expr_fail_arg(c, i, "argument %zu of %s must be %s, got %s", i + 1, fn->name, loom_buf_cstr(&b),
			    expr_type_name(v->t));
			loom_buf_release(&b);
		}
		c->at = prev;
		return -1;
	}
	return 0;
}

static int eval_node(expr_ctx_t *c, const expr_node_t *n);

int expr_eval_arg(expr_ctx_t *c, const expr_node_t *call, size_t i, xspan_t *ret)
{
	size_t s = c->w->len;
	if (eval_node(c, call->args[i]) < 0)
		return -1;
	ret->v = c->w->stack + s;
	ret->n = c->w->len - s;
	if ((call->fix & (1u << (i < 31 ? i : 31))) && check_values(c, call, i, ret) < 0)
		return -1;
	return 0;
}

static int eval_attr(expr_ctx_t *c, const expr_node_t *n)
{
	struct loom_expr_work *w = c->w;
	const Loom__Attr *a;
	if (w->looked[n->attr]) {
		a = w->attrs[n->attr];
	} else {
		a = c->lookup ? c->lookup(c->arg, c->e->attrs[n->attr]) : NULL;
		w->attrs[n->attr] = a;
		w->looked[n->attr] = true;
	}
	if (a == NULL)
		return 0;
	for (size_t i = 0; i < a->n_values; i++) {
		const Loom__Value *v = a->values[i];
		xval_t x = { 0 };
		if (v == NULL)
			continue;
		switch (v->v_case) {
		case LOOM__VALUE__V_STR:
			x.t = LOOM_EXPR_STRING;
			x.s = v->str ? v->str : "";
			x.len = strlen(x.s);
			break;
		case LOOM__VALUE__V_REF:
			x.t = LOOM_EXPR_REF;
			x.s = v->ref ? v->ref : "";
			x.len = strlen(x.s);
			break;
		case LOOM__VALUE__V_BIN:
			x.t = LOOM_EXPR_BIN;
			x.s = (const char *)v->bin.data;
			x.len = v->bin.len;
			if (x.s == NULL)
				x.s = "";
			break;
		case LOOM__VALUE__V_INT:
			x.t = LOOM_EXPR_INT;
			x.i = v->int_;
			break;
		case LOOM__VALUE__V_BOOL:
			x.t = LOOM_EXPR_BOOL;
			x.i = v->bool_ != 0;
			break;
		case LOOM__VALUE__V_TIME:
			x.t = LOOM_EXPR_TIME;
			x.i = v->time;
			break;
		default:
			continue; /* no member set: not a value */
		}
		if (n->type != LOOM_EXPR_ANY && x.t != n->type) {
			if (str_ref_pair(x.t, n->type)) {
				x.t = n->type;
			} else {
				const expr_node_t *prev = c->at;
				c->at = n;
				expr_fail(c, "attribute '%s' holds %s, but it is declared as %s", c->e->attrs[n->attr],
				    expr_type_name(x.t), expr_type_name(n->type));
				c->at = prev;
				return -1;
			}
		}
		*stack_push(w) = x;
	}
	return 0;
}

/* Applies a value-by-value function: once when every argument has one
 * value, once per value of the one multi-valued argument otherwise. */
static int call_map(expr_ctx_t *c, const expr_node_t *n, const xspan_t *a)
{
	const expr_func_t *fn = n->fn;
	size_t na = n->nargs, multi = SIZE_MAX;
	xval_t local[LOCAL_ARGS];
	xval_t *one = na <= LOCAL_ARGS ? local : expr_scratch(c, na * sizeof *one);
	for (size_t i = 0; i < na; i++) {
		if (a[i].n == 0) {
			if (i == 0 && (fn->flags & F_NULL_EMPTY)) {
				expr_emit_str(c, "", 0);
				return 0;
			}
			if (i > 0 && (fn->flags & F_SEES_NULL)) {
				memset(&one[i], 0, sizeof one[i]);
				one[i].t = T_NONE;
				continue;
			}
			return 0; /* null in, null out */
		}
		one[i] = a[i].v[0];
		if (a[i].n > 1) {
			if (multi != SIZE_MAX)
				return expr_fail_arg(c, i, "%s cannot combine two multi-valued arguments (arguments %zu and %zu)",
				    expr_func_label(fn), multi + 1, i + 1);
			multi = i;
		}
	}
	if (multi == SIZE_MAX)
		return fn->map(c, one, na);
	for (size_t j = 0; j < a[multi].n; j++) {
		one[multi] = a[multi].v[j];
		if (fn->map(c, one, na) < 0)
			return -1;
	}
	return 0;
}

static int eval_call(expr_ctx_t *c, const expr_node_t *n)
{
	struct loom_expr_work *w = c->w;
	const expr_func_t *fn = n->fn;
	const expr_node_t *prev = c->at;
	int r;
	if (fn->lazy) {
		c->at = n;
		r = fn->lazy(c, n);
		c->at = prev;
		return r;
	}
	size_t base = w->len, na = n->nargs;
	size_t local_starts[LOCAL_ARGS + 1];
	xspan_t local_spans[LOCAL_ARGS];
	size_t *starts = na <= LOCAL_ARGS ? local_starts : expr_scratch(c, (na + 1) * sizeof *starts);
	xspan_t *spans = na <= LOCAL_ARGS ? local_spans : expr_scratch(c, na * sizeof *spans);
	for (size_t i = 0; i < na; i++) {
		starts[i] = w->len;
		if (eval_node(c, n->args[i]) < 0)
			return -1;
	}
	starts[na] = w->len;
	for (size_t i = 0; i < na; i++) {
		spans[i].v = w->stack + starts[i];
		spans[i].n = starts[i + 1] - starts[i];
		if ((n->fix & (1u << (i < 31 ? i : 31))) && check_values(c, n, i, &spans[i]) < 0)
			return -1;
	}
	c->at = n;
	r = fn->map ? call_map(c, n, spans) : fn->set(c, spans, na);
	c->at = prev;
	if (r < 0) {
		w->olen = 0;
		return -1;
	}
	w->len = base;
	if (w->len + w->olen > w->cap) {
		while (w->len + w->olen > w->cap)
			w->cap = w->cap ? 2 * w->cap : 64;
		w->stack = loom_realloc(w->stack, w->cap * sizeof *w->stack);
	}
	if (w->olen)
		memcpy(w->stack + w->len, w->out, w->olen * sizeof *w->out);
	w->len += w->olen;
	w->olen = 0;
	return 0;
}

static int eval_node(expr_ctx_t *c, const expr_node_t *n)
{
	switch (n->kind) {
	case N_LIT:
		*stack_push(c->w) = n->lit;
		return 0;
	case N_ATTR:
		return eval_attr(c, n);
	case N_CALL:
		return eval_call(c, n);
	case N_VAR:
		for (size_t i = 0; i < c->w->var_n[n->attr]; i++)
			expr_push_copy(c, c->w->var_at[n->attr] + i);
		return 0;
	}
	return 0;
}

void loom_expr_result_init(loom_expr_result_t *r)
{
	memset(r, 0, sizeof *r);
}

void loom_expr_result_release(loom_expr_result_t *r)
{
	struct loom_expr_work *w = r->work;
	if (w) {
		free(w->stack);
		free(w->out);
		arena_release(&w->arena);
		free(w->vals);
		free(w->attrs);
		free(w->looked);
		free(w->var_at);
		free(w->var_n);
		free(w);
	}
	free(r->v);
	loom_expr_result_init(r);
}

/* Copies bytes that are not the arena's own into it (with a terminator). */
static const char *own_bytes(struct loom_expr_work *w, const xval_t *x)
{
	return x->nul ? x->s : arena_strndup(&w->arena, x->s, x->len);
}

int loom_expr_eval(const loom_expr_t *e, loom_expr_lookup_fn *lookup, void *arg, loom_expr_result_t *ret,
    char **ret_error)
{
	struct loom_expr_work *w = ret->work;
	if (w == NULL) {
		w = ret->work = loom_calloc(1, sizeof *w);
		/* The value stack exists from the start: spans of no values point
		 * into it (stack + n on a NULL stack is undefined behaviour). */
		w->cap = 64;
		w->stack = loom_malloc(w->cap * sizeof *w->stack);
	}
	arena_reset(&w->arena);
	w->len = w->olen = 0;
	if (e->n_attrs > w->acap) {
		w->acap = e->n_attrs;
		w->attrs = loom_realloc(w->attrs, w->acap * sizeof *w->attrs);
		w->looked = loom_realloc(w->looked, w->acap * sizeof *w->looked);
	}
	if (e->n_attrs)
		memset(w->looked, 0, e->n_attrs * sizeof *w->looked);
	if (e->n_slots > w->vslots) {
		w->vslots = e->n_slots;
		w->var_at = loom_realloc(w->var_at, w->vslots * sizeof *w->var_at);
		w->var_n = loom_realloc(w->var_n, w->vslots * sizeof *w->var_n);
	}
	if (e->n_slots)
		memset(w->var_n, 0, e->n_slots * sizeof *w->var_n);
	ret->n = 0;
	ret->authoritative_null = ret->ignore_flow = false;

	expr_ctx_t c = { .e = e, .lookup = lookup, .arg = arg, .w = w };
	if (eval_node(&c, e->root) < 0)
		goto fail;
	if (c.ignore_flow) {
		ret->ignore_flow = true;
		return 0;
	}
	if (c.auth_null) {
		ret->authoritative_null = true;
		return 0;
	}
	size_t n = w->len;
	if (e->want != LOOM_EXPR_ANY) {
		for (size_t i = 0; i < n; i++) {
			xval_t *x = &w->stack[i];
			if (x->t == e->want)
				continue;
			if (str_ref_pair(x->t, e->want)) {
				x->t = (uint8_t)e->want;
				continue;
			}
			c.at = NULL;
			expr_fail(&c, "the expression gives %s, expected %s", expr_type_name(x->t), expr_type_name(e->want));
			goto fail;
		}
	}
	if (n > w->vcap) {
		w->vcap = n;
		w->vals = loom_realloc(w->vals, n * sizeof *w->vals);
	}
	if (n > ret->cap) {
		ret->cap = n;
		ret->v = loom_realloc(ret->v, n * sizeof *ret->v);
	}
	static const Loom__Value init = LOOM__VALUE__INIT;
	for (size_t i = 0; i < n; i++) {
		const xval_t *x = &w->stack[i];
		Loom__Value *v = &w->vals[i];
		*v = init;
		switch (x->t) {
		case LOOM_EXPR_STRING:
			v->v_case = LOOM__VALUE__V_STR;
			v->str = (char *)own_bytes(w, x);
			break;
		case LOOM_EXPR_REF:
			v->v_case = LOOM__VALUE__V_REF;
			v->ref = (char *)own_bytes(w, x);
			break;
		case LOOM_EXPR_BIN:
			v->v_case = LOOM__VALUE__V_BIN;
			v->bin.data = (uint8_t *)own_bytes(w, x);
			v->bin.len = x->len;
			break;
		case LOOM_EXPR_INT:
			v->v_case = LOOM__VALUE__V_INT;
			v->int_ = x->i;
			break;
		case LOOM_EXPR_BOOL:
			v->v_case = LOOM__VALUE__V_BOOL;
			v->bool_ = x->i != 0;
			break;
		case LOOM_EXPR_TIME:
			v->v_case = LOOM__VALUE__V_TIME;
			v->time = x->i;
			break;
		default:
			break;
		}
		ret->v[i] = v;
	}
	ret->n = n;
	return 0;
fail:
	w->len = w->olen = 0;
	if (c.error == NULL)
		c.error = loom_strdup("expression evaluation failed");
	if (ret_error)
		*ret_error = c.error;
	else
		free(c.error);
	return -1;
}

/* ---- datetimes for other modules --------------------------------------------------------- */

int loom_expr_parse_time(const char *text, int64_t *ret_us)
{
	int64_t us;
	if (text == NULL || !expr_parse_time(text, strlen(text), &us))
		return -1;
	*ret_us = us;
	return 0;
}

void loom_expr_format_time(loom_buf_t *out, int64_t us)
{
	char buf[EXPR_TIME_LEN];
	loom_buf_add(out, buf, expr_format_time(buf, sizeof buf, us));
}

/* ---- UTF-8 ------------------------------------------------------------------------------ */

uint32_t expr_utf8_next(const char *s, size_t len, size_t *i)
{
	const unsigned char *p = (const unsigned char *)s + *i;
	size_t left = len - *i, n;
	unsigned ch = p[0];
	uint32_t cp;
	if (ch < 0x80) {
		(*i)++;
		return ch;
	}
	if (ch >= 0xc2 && ch <= 0xdf) {
		n = 2;
		cp = ch & 0x1f;
	} else if (ch >= 0xe0 && ch <= 0xef) {
		n = 3;
		cp = ch & 0x0f;
	} else if (ch >= 0xf0 && ch <= 0xf4) {
		n = 4;
		cp = ch & 0x07;
	} else {
		goto bad;
	}
	if (left < n)
		goto bad;
	for (size_t k = 1; k < n; k++) {
		if ((p[k] & 0xc0) != 0x80)
			goto bad;
		cp = cp << 6 | (p[k] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		goto bad;
	*i += n;
	return cp;
bad:
	(*i)++;
	return 0xfffd;
}

size_t expr_utf8_count(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; n++) {
		if ((unsigned char)s[i] < 0x80)
			i++;
		else
			expr_utf8_next(s, len, &i);
	}
	return n;
}

size_t expr_utf8_skip(const char *s, size_t len, size_t nchars)
{
	size_t i = 0;
	for (size_t k = 0; k < nchars && i < len; k++) {
		if ((unsigned char)s[i] < 0x80)
			i++;
		else
			expr_utf8_next(s, len, &i);
	}
	return i;
}

size_t expr_utf8_put(char *out, uint32_t cp)
{
	unsigned char *o = (unsigned char *)out;
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xc0 | cp >> 6);
		o[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xe0 | cp >> 12);
		o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (unsigned char)(0xf0 | cp >> 18);
	o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

bool expr_utf8_valid(const char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		if ((unsigned char)s[i] < 0x80) {
			i++;
			continue;
		}
		size_t j = i;
		if (expr_utf8_next(s, len, &j) == 0xfffd && !(j - i == 3 && memcmp(s + i, "\xef\xbf\xbd", 3) == 0))
			return false;
		i = j;
	}
	return true;
}
