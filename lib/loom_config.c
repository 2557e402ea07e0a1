/* loom_config.c - YAML configuration loaded through declarative key tables.
 *
 * Loading runs in two passes. The first feeds libyaml's event stream into a
 * small tree of our own (struct node), kept in one flat array so that no
 * input, however deeply nested, makes us recurse: anchors, tags and aliases
 * are remembered on the node, never resolved, and a second document stops
 * the read. The second pass walks that tree against the key tables, writes
 * each value into the caller's struct and collects every problem as a diag.
 * Diags are put in document order (line, then column) before returning.
 *
 * The second pass only recurses as deep as the tables nest: a value the
 * table does not expect to be a container is rejected without descending.
 *
 * Defaults are pushed through the same second pass: a scalar default becomes
 * a one-node tree, a container default (STRLIST, LIST, MAP) is read by
 * libyaml like file text. A bad default is the table author's mistake; it is
 * reported as "FILE: bad default: ..." without a position in the file.
 */
#include "loom_config.h"
#include "loom_text.h"
#include "loom_alloc.h"
#include "loom_buf.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

/* Longest quoted value or key in a message, in characters. */
#define QUOTE_MAX_CHARS 60
/* Longest dotted key path in a message, in characters. */
#define PATH_MAX_CHARS 120
/* Largest configuration file read. */
#define CONFIG_MAX_BYTES (16 << 20)
/* Longest ipc:// path ZeroMQ accepts (sizeof sun_path - 1 on Linux). */
#define IPC_PATH_MAX 107
/* Nesting beyond which describe stops (tables that contain themselves). */
#define DESCRIBE_MAX_DEPTH 8

#define NO_NODE SIZE_MAX

/* ---- the tree read from libyaml ---------------------------------------- */

typedef enum {
	NODE_SCALAR,
	NODE_SEQUENCE,
	NODE_MAPPING,
	NODE_ALIAS,
} node_kind_t;

typedef struct node {
	node_kind_t kind;     /* what libyaml reported */
	unsigned line;        /* 1-based line of the node's start */
	unsigned column;      /* 1-based column of the node's start */
	char *value;          /* SCALAR: the text (may hold NUL); ALIAS: anchor name */
	size_t len;           /* bytes in value */
	bool plain;           /* SCALAR: written without quotes or block style */
	char *anchor;         /* &anchor written on the node, or NULL */
	char *tag;            /* explicit tag written on the node, or NULL */
	size_t *kids;         /* SEQUENCE: items; MAPPING: key, value, key, value... */
	size_t nkids;         /* entries used in kids */
	size_t capkids;       /* entries allocated in kids */
} node_t;

typedef struct doc {
	node_t *nodes;        /* every node, parents before their children */
	size_t n;             /* nodes used */
	size_t cap;           /* nodes allocated */
	size_t root;          /* index of the document's root, NO_NODE when empty */
} doc_t;

/* What stopped a read: a libyaml error or a second document. */
typedef struct read_error {
	bool failed;          /* libyaml reported an error */
	const char *problem;  /* libyaml's problem text (static in libyaml) */
	const char *context;  /* libyaml's context text, or NULL */
	unsigned line;        /* 1-based position of the problem */
	unsigned column;      /* 1-based position of the problem */
	bool second_doc;      /* another document follows the first */
	unsigned doc_line;    /* 1-based position of the second document */
	unsigned doc_column;  /* 1-based position of the second document */
} read_error_t;

static void doc_free(doc_t *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->nodes[i].value);
		free(d->nodes[i].anchor);
		free(d->nodes[i].tag);
		free(d->nodes[i].kids);
	}
	free(d->nodes);
	memset(d, 0, sizeof *d);
	d->root = NO_NODE;
}

static size_t doc_add(doc_t *d, node_kind_t kind, const yaml_mark_t *mark)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 16;
		d->nodes = loom_realloc(d->nodes, d->cap * sizeof *d->nodes);
	}
	node_t *nd = &d->nodes[d->n];
	memset(nd, 0, sizeof *nd);
	nd->kind = kind;
	nd->line = (unsigned)mark->line + 1;
	nd->column = (unsigned)mark->column + 1;
	return d->n++;
}

static void node_add_kid(node_t *parent, size_t kid)
{
	if (parent->nkids == parent->capkids) {
		parent->capkids = parent->capkids ? parent->capkids * 2 : 8;
		parent->kids = loom_realloc(parent->kids, parent->capkids * sizeof *parent->kids);
	}
	parent->kids[parent->nkids++] = kid;
}

/* Line and column (1-based) of byte offset off in text; libyaml counts
 * characters, so continuation bytes of UTF-8 do not advance the column. */
static void offset_position(const char *text, size_t len, size_t off,
    unsigned *line, unsigned *column)
{
	unsigned l = 1, c = 1;
	for (size_t i = 0; i < off && i < len; i++) {
		unsigned char ch = (unsigned char)text[i];
		if (ch == '\n') {
			l++;
			c = 1;
		} else if ((ch & 0xc0) != 0x80) {
			c++;
		}
	}
	*line = l;
	*column = c;
}

/* Reads the first document of text into d. Returns 0, or -1 with err
 * filled when libyaml found the text malformed (d then holds nothing). */
static int doc_read(const char *text, size_t len, doc_t *d, read_error_t *err)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	size_t *stack = NULL, depth = 0, capstack = 0;
	int ndocs = 0;
	bool done = false;

	memset(d, 0, sizeof *d);
	d->root = NO_NODE;
	memset(err, 0, sizeof *err);
	if (!yaml_parser_initialize(&parser))
		abort(); /* libyaml only fails here when out of memory */
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);

	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			if (parser.error == YAML_MEMORY_ERROR)
				abort();
			err->failed = true;
			err->problem = parser.problem ? parser.problem : "malformed document";
			err->context = parser.context;
			if (parser.error == YAML_READER_ERROR) {
				offset_position(text, len, parser.problem_offset,
				    &err->line, &err->column);
			} else {
				err->line = (unsigned)parser.problem_mark.line + 1;
				err->column = (unsigned)parser.problem_mark.column + 1;
			}
			break;
		}
		size_t idx = NO_NODE;
		const char *anchor = NULL, *tag = NULL;
		switch (ev.type) {
		case YAML_DOCUMENT_START_EVENT:
			if (++ndocs > 1) {
				err->second_doc = true;
				err->doc_line = (unsigned)ev.start_mark.line + 1;
				err->doc_column = (unsigned)ev.start_mark.column + 1;
				done = true;
			}
			break;
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_SCALAR_EVENT:
			idx = doc_add(d, NODE_SCALAR, &ev.start_mark);
			d->nodes[idx].value = loom_strndup((const char *)ev.data.scalar.value,
			    ev.data.scalar.length);
			d->nodes[idx].len = ev.data.scalar.length;
			d->nodes[idx].plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
			anchor = (const char *)ev.data.scalar.anchor;
			tag = (const char *)ev.data.scalar.tag;
			break;
		case YAML_SEQUENCE_START_EVENT:
			idx = doc_add(d, NODE_SEQUENCE, &ev.start_mark);
			anchor = (const char *)ev.data.sequence_start.anchor;
			tag = (const char *)ev.data.sequence_start.tag;
			break;
		case YAML_MAPPING_START_EVENT:
			idx = doc_add(d, NODE_MAPPING, &ev.start_mark);
			anchor = (const char *)ev.data.mapping_start.anchor;
			tag = (const char *)ev.data.mapping_start.tag;
			break;
		case YAML_ALIAS_EVENT:
			idx = doc_add(d, NODE_ALIAS, &ev.start_mark);
			d->nodes[idx].value = loom_strdup((const char *)ev.data.alias.anchor);
			d->nodes[idx].len = strlen(d->nodes[idx].value);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (depth > 0)
				depth--;
			break;
		default:
			break;
		}
		if (idx != NO_NODE) {
			d->nodes[idx].anchor = loom_strdup(anchor);
			d->nodes[idx].tag = loom_strdup(tag);
			if (depth > 0)
				node_add_kid(&d->nodes[stack[depth - 1]], idx);
			else if (d->root == NO_NODE)
				d->root = idx;
			if (d->nodes[idx].kind == NODE_SEQUENCE || d->nodes[idx].kind == NODE_MAPPING) {
				if (depth == capstack) {
					capstack = capstack ? capstack * 2 : 16;
					stack = loom_realloc(stack, capstack * sizeof *stack);
				}
				stack[depth++] = idx;
			}
		}
		yaml_event_delete(&ev);
	}
	free(stack);
	yaml_parser_delete(&parser);
	if (err->failed) {
		doc_free(d);
		return -1;
	}
	return 0;
}

static const node_t *doc_node(const doc_t *d, size_t idx)
{
	return idx == NO_NODE ? NULL : &d->nodes[idx];
}

/* A plain empty scalar: "key:" with nothing after it, YAML's null. */
static bool node_is_null(const node_t *nd)
{
	return nd->kind == NODE_SCALAR && nd->plain && nd->len == 0 && nd->tag == NULL;
}

/* ---- messages ---------------------------------------------------------- */

/* Appends s (n bytes) for a message: control characters, quotes and
 * backslashes escaped, cut after max characters with "...". */
static void add_quoted(loom_buf_t *b, const char *s, size_t n, size_t max)
{
	size_t chars = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c & 0xc0) != 0x80 && chars++ == max) {
			loom_buf_adds(b, "...");
			return;
		}
		switch (c) {
		case '\'': loom_buf_adds(b, "\\'"); break;
		case '\\': loom_buf_adds(b, "\\\\"); break;
		case '\n': loom_buf_adds(b, "\\n"); break;
		case '\r': loom_buf_adds(b, "\\r"); break;
		case '\t': loom_buf_adds(b, "\\t"); break;
		default:
			if (c < 0x20 || c == 0x7f)
				loom_buf_printf(b, "\\x%02x", c);
			else
				loom_buf_addc(b, (char)c);
		}
	}
}

static const char *kind_name(const node_t *nd)
{
	switch (nd->kind) {
	case NODE_SEQUENCE: return "a sequence";
	case NODE_MAPPING: return "a mapping";
	case NODE_ALIAS: return "an alias";
	case NODE_SCALAR: break;
	}
	return "a scalar";
}

/* Short form of the tags YAML spells with "!!". */
static const char *tag_shown(const char *tag, bool *short_form)
{
	static const char yaml_prefix[] = "tag:yaml.org,2002:";
	*short_form = strncmp(tag, yaml_prefix, sizeof yaml_prefix - 1) == 0;
	return *short_form ? tag + sizeof yaml_prefix - 1 : tag;
}

typedef struct cfg_ctx {
	const char *file;          /* file name for messages, as given */
	char *dir;                 /* directory relative paths resolve against, or NULL */
	loom_cfg_diags_t *diags;   /* where problems go */
	size_t first_diag;         /* diags->n when this load started */
	loom_buf_t path;           /* dotted key path of the value being parsed */
	bool in_default;           /* parsing a table default, not file text */
} cfg_ctx_t;

/* Records one problem at node at (NULL: no position). key is the dotted
 * path (NULL: none), value the bad value (NULL: none), msg the message
 * without its "FILE:LINE:COL: " prefix. */
static void diag_push(cfg_ctx_t *ctx, const node_t *at, const char *key,
    const char *value, size_t vlen, const char *msg)
{
	loom_cfg_diags_t *ds = ctx->diags;
	ds->v = loom_realloc(ds->v, (ds->n + 1) * sizeof *ds->v);
	loom_cfg_diag_t *dg = &ds->v[ds->n++];
	memset(dg, 0, sizeof *dg);
	dg->file = loom_strdup(ctx->file);
	if (at != NULL && !ctx->in_default) {
		dg->line = at->line;
		dg->column = at->column;
	}
	dg->key = key ? loom_strdup(key) : NULL;
	dg->value = value ? loom_strndup(value, vlen) : NULL;
	if (ctx->in_default)
		dg->text = loom_sprintf("%s: bad default: %s", ctx->file, msg);
	else if (dg->line > 0)
		dg->text = loom_sprintf("%s:%u:%u: %s", ctx->file, dg->line, dg->column, msg);
	else
		dg->text = loom_sprintf("%s: %s", ctx->file, msg);
}

/* Appends "key 'PATH'" for the current path, "top level" at the root. */
static void add_where(loom_buf_t *b, const cfg_ctx_t *ctx)
{
	if (ctx->path.len == 0) {
		loom_buf_adds(b, "top level");
		return;
	}
	loom_buf_adds(b, "key '");
	add_quoted(b, ctx->path.data, ctx->path.len, PATH_MAX_CHARS);
	loom_buf_addc(b, '\'');
}

static const char *ctx_key(const cfg_ctx_t *ctx)
{
	return ctx->path.len ? ctx->path.data : NULL;
}

/* "key 'P': <fmt...>" at node at. */
static void err_at(cfg_ctx_t *ctx, const node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void err_at(cfg_ctx_t *ctx, const node_t *at, const char *fmt, ...)
{
	loom_buf_t m = LOOM_BUF_INIT;
	va_list ap;
	add_where(&m, ctx);
	loom_buf_adds(&m, ": ");
	va_start(ap, fmt);
	loom_buf_vprintf(&m, fmt, ap);
	va_end(ap);
	diag_push(ctx, at, ctx_key(ctx), NULL, 0, loom_buf_cstr(&m));
	loom_buf_release(&m);
}

/* "key 'P': bad value 'V': expected E" at node at. */
static void err_value(cfg_ctx_t *ctx, const node_t *at, const char *s, size_t n,
    const char *expected)
{
	loom_buf_t m = LOOM_BUF_INIT;
	add_where(&m, ctx);
	loom_buf_adds(&m, ": bad value '");
	add_quoted(&m, s, n, QUOTE_MAX_CHARS);
	loom_buf_adds(&m, "': expected ");
	loom_buf_adds(&m, expected);
	diag_push(ctx, at, ctx_key(ctx), s, n, loom_buf_cstr(&m));
	loom_buf_release(&m);
}

/* The node is not the kind wanted: "key 'P': expected E, found a mapping",
 * or the bad-value form when it is a scalar. */
static void err_kind(cfg_ctx_t *ctx, const node_t *nd, const char *expected)
{
	if (nd->kind == NODE_SCALAR)
		err_value(ctx, nd, nd->value, nd->len, expected);
	else
		err_at(ctx, nd, "expected %s, found %s", expected, kind_name(nd));
}

/* Reports what YAML features the node carries that a config may not use.
 * Returns -1 when the node is an alias and must not be looked at further. */
static int check_node(cfg_ctx_t *ctx, const node_t *nd)
{
	loom_buf_t q = LOOM_BUF_INIT;
	int r = 0;
	if (nd->anchor) {
		add_quoted(&q, nd->anchor, strlen(nd->anchor), QUOTE_MAX_CHARS);
		err_at(ctx, nd, "yaml anchor '&%s' is not allowed", loom_buf_cstr(&q));
		loom_buf_reset(&q);
	}
	if (nd->tag) {
		bool short_form;
		const char *t = tag_shown(nd->tag, &short_form);
		add_quoted(&q, t, strlen(t), QUOTE_MAX_CHARS);
		err_at(ctx, nd, "yaml tag '%s%s' is not allowed", short_form ? "!!" : "",
		    loom_buf_cstr(&q));
		loom_buf_reset(&q);
	}
	if (nd->kind == NODE_ALIAS) {
		add_quoted(&q, nd->value, nd->len, QUOTE_MAX_CHARS);
		err_at(ctx, nd, "yaml alias '*%s' is not allowed", loom_buf_cstr(&q));
		r = -1;
	}
	loom_buf_release(&q);
	return r;
}

/* ---- path helpers ------------------------------------------------------ */

static size_t path_push_key(cfg_ctx_t *ctx, const char *name, size_t n)
{
	size_t old = ctx->path.len;
	if (old)
		loom_buf_addc(&ctx->path, '.');
	loom_buf_add(&ctx->path, name, n);
	return old;
}

static size_t path_push_index(cfg_ctx_t *ctx, size_t i)
{
	size_t old = ctx->path.len;
	loom_buf_printf(&ctx->path, "[%zu]", i);
	return old;
}

static void path_pop(cfg_ctx_t *ctx, size_t old)
{
	ctx->path.len = old;
	if (ctx->path.data)
		ctx->path.data[old] = '\0';
}

/* ---- scalar parsers ---------------------------------------------------- */

typedef enum {
	PARSE_OK = 0,
	PARSE_BAD = -1,       /* not the expected syntax */
	PARSE_NO_UNIT = -2,   /* DURATION: a non-zero number without a unit */
} parse_result_t;

static bool mul_overflows(long long a, long long b)
{
	return b != 0 && a > LLONG_MAX / b;
}

/* Non-negative decimal digits at *p; advances *p. -1 when none or overflow. */
static int parse_digits(const char **p, const char *end, long long *ret)
{
	const char *s = *p;
	long long v = 0;
	if (s == end || !isdigit((unsigned char)*s))
		return -1;
	while (s < end && isdigit((unsigned char)*s)) {
		int dgt = *s - '0';
		if (v > (LLONG_MAX - dgt) / 10)
			return -1;
		v = v * 10 + dgt;
		s++;
	}
	*p = s;
	*ret = v;
	return 0;
}

static parse_result_t duration_parse(const char *s, size_t n, long long *ret_ms)
{
	static const struct { const char *unit; long long ms; } units[] = {
		{ "d", 86400000LL }, { "h", 3600000LL }, { "ms", 1LL },
		{ "m", 60000LL }, { "s", 1000LL },
	};
	/* Rank of each unit above, largest first: components must descend. */
	static const int rank[] = { 0, 1, 4, 2, 3 };
	const char *p = s, *end = s + n;
	long long total = 0;
	int last_rank = -1;

	if (n == 0)
		return PARSE_BAD;
	while (p < end) {
		long long v;
		if (parse_digits(&p, end, &v) < 0)
			return PARSE_BAD;
		if (p == end) {
			/* A number with no unit: only a lone 0 means anything. */
			if (last_rank >= 0)
				return PARSE_BAD;
			if (v != 0)
				return PARSE_NO_UNIT;
			break;
		}
		size_t u;
		for (u = 0; u < sizeof units / sizeof units[0]; u++) {
			size_t ul = strlen(units[u].unit);
			/* "ms" is listed before "m" so that it wins. */
			if ((size_t)(end - p) >= ul && memcmp(p, units[u].unit, ul) == 0)
				break;
		}
		if (u == sizeof units / sizeof units[0] || rank[u] <= last_rank)
			return PARSE_BAD;
		last_rank = rank[u];
		p += strlen(units[u].unit);
		if (mul_overflows(v, units[u].ms) || total > LLONG_MAX - v * units[u].ms)
			return PARSE_BAD;
		total += v * units[u].ms;
	}
	*ret_ms = total;
	return PARSE_OK;
}

static parse_result_t size_parse(const char *s, size_t n, long long *ret_bytes)
{
	static const struct { const char *unit; long long mult; } units[] = {
		{ "B", 1LL },
		{ "KiB", 1LL << 10 }, { "MiB", 1LL << 20 }, { "GiB", 1LL << 30 }, { "TiB", 1LL << 40 },
		{ "K", 1LL << 10 }, { "M", 1LL << 20 }, { "G", 1LL << 30 },
		{ "kB", 1000LL }, { "MB", 1000000LL }, { "GB", 1000000000LL },
		{ "TB", 1000000000000LL },
	};
	const char *p = s, *end = s + n;
	long long v, mult = 1;

	if (parse_digits(&p, end, &v) < 0)
		return PARSE_BAD;
	if (p < end) {
		size_t u, rest = (size_t)(end - p);
		for (u = 0; u < sizeof units / sizeof units[0]; u++)
			if (strlen(units[u].unit) == rest && memcmp(p, units[u].unit, rest) == 0)
				break;
		if (u == sizeof units / sizeof units[0])
			return PARSE_BAD;
		mult = units[u].mult;
	}
	if (mul_overflows(v, mult))
		return PARSE_BAD;
	*ret_bytes = v * mult;
	return PARSE_OK;
}

static bool word_eq(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

static parse_result_t bool_parse(const char *s, size_t n, bool *ret)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };
	for (size_t i = 0; i < 3; i++) {
		if (word_eq(s, n, yes[i])) {
			*ret = true;
			return PARSE_OK;
		}
		if (word_eq(s, n, no[i])) {
			*ret = false;
			return PARSE_OK;
		}
	}
	return PARSE_BAD;
}

/* True when s looks like a decimal integer, however large. */
static bool is_decimal(const char *s, size_t n)
{
	size_t i = n > 0 && (s[0] == '+' || s[0] == '-');
	if (i == n)
		return false;
	for (; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* Decimal integer, optional sign. PARSE_BAD also for overflow. */
static parse_result_t int_parse(const char *s, size_t n, long long *ret)
{
	const char *p = s, *end = s + n;
	bool neg = false;
	unsigned long long v = 0, limit;

	if (p < end && (*p == '+' || *p == '-'))
		neg = *p++ == '-';
	if (p == end)
		return PARSE_BAD;
	limit = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
	for (; p < end; p++) {
		if (!isdigit((unsigned char)*p))
			return PARSE_BAD;
		unsigned dgt = (unsigned)(*p - '0');
		if (v > (limit - dgt) / 10)
			return PARSE_BAD;
		v = v * 10 + dgt;
	}
	if (neg)
		*ret = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
	else
		*ret = (long long)v;
	return PARSE_OK;
}

int loom_config_parse_duration(const char *s, long long *ret_ms)
{
	long long v;
	if (s == NULL || duration_parse(s, strlen(s), &v) != PARSE_OK)
		return -1;
	*ret_ms = v;
	return 0;
}

int loom_config_parse_size(const char *s, long long *ret_bytes)
{
	long long v;
	if (s == NULL || size_parse(s, strlen(s), &v) != PARSE_OK)
		return -1;
	*ret_bytes = v;
	return 0;
}

int loom_config_parse_bool(const char *s, bool *ret)
{
	bool v;
	if (s == NULL || bool_parse(s, strlen(s), &v) != PARSE_OK)
		return -1;
	*ret = v;
	return 0;
}

/* ---- value formatting (bounds, describe) -------------------------------- */

static void add_duration(loom_buf_t *b, long long ms)
{
	static const struct { const char *unit; long long ms; } units[] = {
		{ "d", 86400000LL }, { "h", 3600000LL }, { "m", 60000LL },
		{ "s", 1000LL }, { "ms", 1LL },
	};
	if (ms <= 0) {
		loom_buf_printf(b, "%lld", ms);
		return;
	}
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (ms >= units[i].ms) {
			loom_buf_printf(b, "%lld%s", ms / units[i].ms, units[i].unit);
			ms %= units[i].ms;
		}
	}
}

static void add_size(loom_buf_t *b, long long bytes)
{
	static const struct { const char *unit; long long mult; } units[] = {
		{ "TiB", 1LL << 40 }, { "GiB", 1LL << 30 }, { "MiB", 1LL << 20 }, { "KiB", 1LL << 10 },
		{ "TB", 1000000000000LL }, { "GB", 1000000000LL }, { "MB", 1000000LL }, { "kB", 1000LL },
	};
	if (bytes > 0) {
		for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
			if (bytes % units[i].mult == 0) {
				loom_buf_printf(b, "%lld%s", bytes / units[i].mult, units[i].unit);
				return;
			}
		}
	}
	loom_buf_printf(b, "%lld", bytes);
}

static void add_bound(loom_buf_t *b, loom_cfg_type_t type, long long v)
{
	if (type == LOOM_CFG_DURATION)
		add_duration(b, v);
	else if (type == LOOM_CFG_SIZE)
		add_size(b, v);
	else
		loom_buf_printf(b, "%lld", v);
}

static bool has_bounds(const loom_cfg_key_t *k)
{
	return k->min < k->max;
}

static void add_choices(loom_buf_t *b, const char *const *choices, const char *sep)
{
	for (size_t i = 0; choices && choices[i]; i++)
		loom_buf_printf(b, "%s%s", i ? sep : "", choices[i]);
}

/* ---- scalar values into the struct -------------------------------------- */

static void *field(void *obj, size_t offset)
{
	return (char *)obj + offset;
}

/* Joins a relative path onto the config file's directory. */
/* Cleans a path lexically, in place: "a//b/./c/../d" -> "a/b/d". A ".."
 * that would climb above a relative start is kept; above "/" it is dropped. */
static char *path_clean(char *p)
{
	bool abs = p[0] == '/';
	char *out = p, *r = p;
	size_t keep = 0; /* leading ".." components that cannot be removed */
	if (abs)
		*out++ = *r++;
	char *start = out;
	while (*r) {
		while (*r == '/')
			r++;
		if (*r == '\0')
			break;
		char *seg = r;
		while (*r && *r != '/')
			r++;
		size_t len = (size_t)(r - seg);
		if (len == 1 && seg[0] == '.')
			continue;
		if (len == 2 && seg[0] == '.' && seg[1] == '.') {
			if (out > start + keep * 3) {
				/* drop the last component */
				while (out > start && out[-1] != '/')
					out--;
				if (out > start)
					out--;
				continue;
			}
			if (abs)
				continue;
			keep++;
		}
		if (out > start)
			*out++ = '/';
		memmove(out, seg, len);
		out += len;
	}
	if (out == p)
		*out++ = '.';
	*out = '\0';
	return p;
}

static char *resolve_path(const cfg_ctx_t *ctx, const char *s, size_t n)
{
	if (n == 0 || s[0] == '/' || ctx->dir == NULL)
		return loom_strndup(s, n);
	while (n >= 2 && s[0] == '.' && s[1] == '/') {
		s += 2;
		n -= 2;
		while (n > 0 && s[0] == '/') {
			s++;
			n--;
		}
	}
	if (n == 0 || (n == 1 && s[0] == '.'))
		return loom_strdup(ctx->dir);
	size_t dl = strlen(ctx->dir);
	bool slash = dl > 0 && ctx->dir[dl - 1] == '/';
	return path_clean(loom_sprintf("%s%s%.*s", ctx->dir, slash ? "" : "/", (int)n, s));
}

/* Checks an endpoint; on success returns its stored form (ipc paths
 * resolved), otherwise NULL with *expected saying what was wanted. */
static char *endpoint_parse(const cfg_ctx_t *ctx, const char *s, size_t n,
    const char **expected)
{
	static const char generic[] = "an endpoint such as ipc://PATH or tcp://HOST:PORT";
	if (n > 6 && memcmp(s, "ipc://", 6) == 0) {
		char *p = resolve_path(ctx, s + 6, n - 6);
		if (strlen(p) > IPC_PATH_MAX) {
			free(p);
			*expected = "an ipc path of at most 107 bytes";
			return NULL;
		}
		char *r = loom_sprintf("ipc://%s", p);
		free(p);
		return r;
	}
	if (n >= 6 && memcmp(s, "ipc://", 6) == 0) {
		*expected = "ipc://PATH with a non-empty path";
		return NULL;
	}
	if (n >= 9 && memcmp(s, "inproc://", 9) == 0) {
		if (n == 9) {
			*expected = "inproc://NAME with a non-empty name";
			return NULL;
		}
		return loom_strndup(s, n);
	}
	if (n >= 6 && memcmp(s, "tcp://", 6) == 0) {
		const char *h = s + 6, *end = s + n, *colon;
		if (h < end && *h == '[') {
			const char *close = memchr(h, ']', (size_t)(end - h));
			if (close == NULL || close == h + 1 || close + 1 == end || close[1] != ':') {
				*expected = "tcp://HOST:PORT with a port from 1 to 65535";
				return NULL;
			}
			colon = close + 1;
		} else {
			colon = NULL;
			for (const char *q = h; q < end; q++)
				if (*q == ':')
					colon = q;
			if (colon == NULL) {
				*expected = "tcp://HOST:PORT with a port from 1 to 65535";
				return NULL;
			}
			if (colon == h) {
				*expected = "tcp://HOST:PORT with a non-empty host";
				return NULL;
			}
		}
		bool bracketed = *h == '[';
		for (const char *q = h; q < colon; q++) {
			if ((unsigned char)*q <= ' ' || *q == '/' || *q == 0x7f
			    || (*q == ':' && !bracketed)) {
				*expected = "tcp://HOST:PORT with a host name or address";
				return NULL;
			}
		}
		const char *pp = colon + 1;
		long long port;
		if (parse_digits(&pp, end, &port) < 0 || pp != end || port < 1 || port > 65535) {
			*expected = "tcp://HOST:PORT with a port from 1 to 65535";
			return NULL;
		}
		return loom_strndup(s, n);
	}
	*expected = generic;
	return NULL;
}

static const char *type_expected(const loom_cfg_key_t *k)
{
	switch (k->type) {
	case LOOM_CFG_STRING: return "a string";
	case LOOM_CFG_TEXT: return "a string";
	case LOOM_CFG_PATH: return "a path";
	case LOOM_CFG_ENDPOINT: return "an endpoint such as ipc://PATH or tcp://HOST:PORT";
	case LOOM_CFG_INT: return "an integer";
	case LOOM_CFG_BOOL: return "one of true, false, yes, no, on, off";
	case LOOM_CFG_DURATION: return "a duration such as 500ms, 2s, 5m";
	case LOOM_CFG_SIZE: return "a size such as 512, 64KiB, 10MiB, 2GiB";
	case LOOM_CFG_ENUM: return "one of the listed words";
	case LOOM_CFG_STRLIST: return "a list of strings";
	case LOOM_CFG_SECTION: return "a mapping";
	case LOOM_CFG_LIST: return "a list of mappings";
	case LOOM_CFG_MAP: return "a mapping of names to mappings";
	}
	return "a value";
}

/* Reports a number outside [min, max] or malformed, naming the range. */
static void err_range(cfg_ctx_t *ctx, const node_t *nd, const loom_cfg_key_t *k,
    const char *what)
{
	loom_buf_t e = LOOM_BUF_INIT;
	loom_buf_printf(&e, "%s from ", what);
	add_bound(&e, k->type, k->min);
	loom_buf_adds(&e, " to ");
	add_bound(&e, k->type, k->max);
	err_value(ctx, nd, nd->value, nd->len, loom_buf_cstr(&e));
	loom_buf_release(&e);
}

/* Parses scalar node nd as key k into obj. Errors are reported. */
static void parse_scalar(cfg_ctx_t *ctx, const loom_cfg_key_t *k, const node_t *nd, void *obj)
{
	const char *s = nd->value;
	size_t n = nd->len;
	void *dst = field(obj, k->offset);
	long long v = 0;
	parse_result_t r;

	if (memchr(s, '\0', n) != NULL) {
		err_value(ctx, nd, s, n, "text without NUL characters");
		return;
	}
	switch (k->type) {
	case LOOM_CFG_STRING:
	case LOOM_CFG_PATH:
		if (n == 0 && (k->flags & LOOM_CFG_NONEMPTY)) {
			err_value(ctx, nd, s, n, k->type == LOOM_CFG_PATH ? "a non-empty path"
			    : "a non-empty string");
			return;
		}
		free(*(char **)dst);
		*(char **)dst = k->type == LOOM_CFG_PATH ? resolve_path(ctx, s, n)
		    : loom_strndup(s, n);
		return;
	case LOOM_CFG_TEXT: {
		loom_cfg_text_t *t = dst;
		if (n == 0 && (k->flags & LOOM_CFG_NONEMPTY)) {
			err_value(ctx, nd, s, n, "a non-empty string");
			return;
		}
		free(t->text);
		t->text = loom_strndup(s, n);
		t->line = nd->line;
		/* A quoted scalar's content starts after its quote. */
		t->column = nd->column + (nd->plain ? 0 : 1);
		return;
	}
	case LOOM_CFG_ENDPOINT: {
		const char *expected = NULL;
		char *ep = endpoint_parse(ctx, s, n, &expected);
		if (ep == NULL) {
			err_value(ctx, nd, s, n, expected);
			return;
		}
		free(*(char **)dst);
		*(char **)dst = ep;
		return;
	}
	case LOOM_CFG_INT:
		r = int_parse(s, n, &v);
		if (r != PARSE_OK || (has_bounds(k) && (v < k->min || v > k->max))) {
			if (has_bounds(k))
				err_range(ctx, nd, k, "an integer");
			else if (r != PARSE_OK && is_decimal(s, n))
				err_value(ctx, nd, s, n, "an integer from -9223372036854775808 to 9223372036854775807");
			else
				err_value(ctx, nd, s, n, "an integer");
			return;
		}
		*(long long *)dst = v;
		return;
	case LOOM_CFG_DURATION:
		r = duration_parse(s, n, &v);
		if (r == PARSE_NO_UNIT) {
			err_value(ctx, nd, s, n, "a duration with a unit such as 500ms or 2s");
			return;
		}
		if (r != PARSE_OK) {
			err_value(ctx, nd, s, n, type_expected(k));
			return;
		}
		if (has_bounds(k) && (v < k->min || v > k->max)) {
			err_range(ctx, nd, k, "a duration");
			return;
		}
		*(long long *)dst = v;
		return;
	case LOOM_CFG_SIZE:
		r = size_parse(s, n, &v);
		if (r != PARSE_OK) {
			err_value(ctx, nd, s, n, type_expected(k));
			return;
		}
		if (has_bounds(k) && (v < k->min || v > k->max)) {
			err_range(ctx, nd, k, "a size");
			return;
		}
		*(long long *)dst = v;
		return;
	case LOOM_CFG_BOOL: {
		bool b;
		if (bool_parse(s, n, &b) != PARSE_OK) {
			err_value(ctx, nd, s, n, type_expected(k));
			return;
		}
		*(bool *)dst = b;
		return;
	}
	case LOOM_CFG_ENUM:
		for (int i = 0; k->choices && k->choices[i]; i++) {
			if (word_eq(s, n, k->choices[i])) {
				*(int *)dst = i;
				return;
			}
		}
		{
			loom_buf_t e = LOOM_BUF_INIT;
			loom_buf_adds(&e, "one of ");
			add_choices(&e, k->choices, ", ");
			err_value(ctx, nd, s, n, loom_buf_cstr(&e));
			loom_buf_release(&e);
		}
		return;
	default:
		return;
	}
}

/* ---- the table walk ----------------------------------------------------- */

static void parse_mapping(cfg_ctx_t *ctx, const doc_t *d, const node_t *map,
    const node_t *pos, const loom_cfg_table_t *t, void *obj, bool report_missing);

/* True when key kids[i] of mapping map repeats an earlier scalar key. */
static bool key_repeats(const doc_t *d, const node_t *map, size_t i)
{
	const node_t *k = doc_node(d, map->kids[i]);
	if (k->kind != NODE_SCALAR)
		return false;
	for (size_t j = 0; j < i; j += 2) {
		const node_t *o = doc_node(d, map->kids[j]);
		if (o->kind == NODE_SCALAR && o->len == k->len && memcmp(o->value, k->value, k->len) == 0)
			return true;
	}
	return false;
}


/* The one table key close to the unknown name, or NULL when none is, or
 * when two are equally close. */
static const char *suggest(const loom_cfg_table_t *t, const char *s, size_t n)
{
	loom_suggest_t sg;
	loom_suggest_init(&sg, s, n);
	for (const loom_cfg_key_t *k = t->keys; k->name; k++)
		loom_suggest_offer(&sg, k->name);
	return loom_suggest_best(&sg);
}

static void err_unknown(cfg_ctx_t *ctx, const loom_cfg_table_t *t, const node_t *key)
{
	loom_buf_t m = LOOM_BUF_INIT;
	loom_buf_adds(&m, "unknown key '");
	add_quoted(&m, key->value, key->len, QUOTE_MAX_CHARS);
	loom_buf_adds(&m, "' in ");
	if (t->what)
		loom_buf_adds(&m, t->what);
	else if (ctx->path.len)
		add_quoted(&m, ctx->path.data, ctx->path.len, PATH_MAX_CHARS);
	else
		loom_buf_adds(&m, "the top level");
	const char *hint = suggest(t, key->value, key->len);
	if (hint)
		loom_buf_printf(&m, " (did you mean '%s'?)", hint);
	size_t old = path_push_key(ctx, key->value, key->len);
	diag_push(ctx, key, ctx_key(ctx), NULL, 0, loom_buf_cstr(&m));
	path_pop(ctx, old);
	loom_buf_release(&m);
}

/* "duplicate key 'P'" at the second occurrence; the path is pushed. */
static void err_duplicate(cfg_ctx_t *ctx, const node_t *key)
{
	loom_buf_t m = LOOM_BUF_INIT;
	loom_buf_adds(&m, "duplicate key '");
	add_quoted(&m, ctx->path.data, ctx->path.len, PATH_MAX_CHARS);
	loom_buf_addc(&m, '\'');
	diag_push(ctx, key, ctx_key(ctx), NULL, 0, loom_buf_cstr(&m));
	loom_buf_release(&m);
}

/* Reports a mapping key that is not a plain scalar; returns -1 then. */
static int check_key_node(cfg_ctx_t *ctx, const node_t *key)
{
	if (key->kind == NODE_ALIAS)
		return check_node(ctx, key);
	if (key->kind != NODE_SCALAR) {
		err_at(ctx, key, "expected a scalar key, found %s", kind_name(key));
		return -1;
	}
	return 0;
}

static void strlist_add(loom_cfg_strlist_t *l, const node_t *nd)
{
	l->v = loom_realloc(l->v, (l->n + 1) * sizeof *l->v);
	l->v[l->n++] = loom_strndup(nd->value, nd->len);
}

static void parse_strlist(cfg_ctx_t *ctx, const doc_t *d, const loom_cfg_key_t *k,
    const node_t *nd, void *obj)
{
	loom_cfg_strlist_t *l = field(obj, k->offset);

	if (nd->kind == NODE_SCALAR && !node_is_null(nd)) {
		/* A lone scalar is a one-item list. */
		if (memchr(nd->value, '\0', nd->len) != NULL) {
			err_value(ctx, nd, nd->value, nd->len, "text without NUL characters");
			return;
		}
		strlist_add(l, nd);
		return;
	}
	if (nd->kind == NODE_SEQUENCE) {
		for (size_t i = 0; i < nd->nkids; i++) {
			const node_t *it = doc_node(d, nd->kids[i]);
			size_t old = path_push_index(ctx, i);
			if (check_node(ctx, it) == 0) {
				if (it->kind != NODE_SCALAR) {
					err_kind(ctx, it, "a string");
				} else if (memchr(it->value, '\0', it->len) != NULL) {
					err_value(ctx, it, it->value, it->len, "text without NUL characters");
				} else {
					strlist_add(l, it);
				}
			}
			path_pop(ctx, old);
		}
	} else if (!node_is_null(nd)) {
		err_kind(ctx, nd, type_expected(k));
		return;
	}
	/* Count what was written, not what was valid: a bad item is reported
	 * on its own and does not make the list empty. */
	if ((nd->kind != NODE_SEQUENCE || nd->nkids == 0) && (k->flags & LOOM_CFG_NONEMPTY))
		err_at(ctx, nd, "expected a non-empty list");
}

static void *array_grow(loom_cfg_array_t *a, size_t size)
{
	a->v = loom_realloc(a->v, (a->n + 1) * size);
	void *el = (char *)a->v + a->n * size;
	memset(el, 0, size);
	a->n++;
	return el;
}

static void parse_list(cfg_ctx_t *ctx, const doc_t *d, const loom_cfg_key_t *k,
    const node_t *nd, void *obj)
{
	loom_cfg_array_t *a = field(obj, k->offset);
	if (nd->kind == NODE_SEQUENCE) {
		for (size_t i = 0; i < nd->nkids; i++) {
			const node_t *it = doc_node(d, nd->kids[i]);
			size_t old = path_push_index(ctx, i);
			if (check_node(ctx, it) == 0) {
				if (it->kind == NODE_MAPPING || node_is_null(it)) {
					/* Parsing the element never touches a->v, so el stays put. */
					void *el = array_grow(a, k->sub->size);
					parse_mapping(ctx, d, it->kind == NODE_MAPPING ? it : NULL, it,
					    k->sub, el, true);
				} else {
					err_kind(ctx, it, "a mapping");
				}
			}
			path_pop(ctx, old);
		}
	} else if (!node_is_null(nd)) {
		err_kind(ctx, nd, type_expected(k));
		return;
	}
	if ((nd->kind != NODE_SEQUENCE || nd->nkids == 0) && (k->flags & LOOM_CFG_NONEMPTY))
		err_at(ctx, nd, "expected a non-empty list");
}

static void parse_map(cfg_ctx_t *ctx, const doc_t *d, const loom_cfg_key_t *k,
    const node_t *nd, void *obj)
{
	loom_cfg_array_t *a = field(obj, k->offset);
	if (nd->kind == NODE_MAPPING) {
		for (size_t i = 0; i + 1 < nd->nkids; i += 2) {
			const node_t *name = doc_node(d, nd->kids[i]);
			const node_t *val = doc_node(d, nd->kids[i + 1]);
			if (check_key_node(ctx, name) < 0)
				continue;
			size_t old = path_push_key(ctx, name->value, name->len);
			if (key_repeats(d, nd, i)) {
				err_duplicate(ctx, name);
				goto next;
			}
			check_node(ctx, name);
			if (name->len == 0 || memchr(name->value, '\0', name->len) != NULL) {
				path_pop(ctx, old);
				err_value(ctx, name, name->value, name->len, "a non-empty name");
				continue;
			}
			if (check_node(ctx, val) < 0)
				goto next;
			if (val->kind != NODE_MAPPING && !node_is_null(val)) {
				err_kind(ctx, val, "a mapping");
				goto next;
			}
			void *el = array_grow(a, k->sub->size);
			*(char **)field(el, k->sub->name_offset) = loom_strndup(name->value, name->len);
			parse_mapping(ctx, d, val->kind == NODE_MAPPING ? val : NULL,
			    val->kind == NODE_MAPPING ? val : name, k->sub, el, true);
next:
			path_pop(ctx, old);
		}
	} else if (!node_is_null(nd)) {
		err_kind(ctx, nd, type_expected(k));
		return;
	}
	if ((nd->kind != NODE_MAPPING || nd->nkids == 0) && (k->flags & LOOM_CFG_NONEMPTY))
		err_at(ctx, nd, "expected a non-empty mapping");
}

/* Parses value node nd (not NULL) for key k into obj; keynode positions
 * problems of an empty section. The caller has pushed k's path. */
static void parse_value(cfg_ctx_t *ctx, const doc_t *d, const loom_cfg_key_t *k,
    const node_t *keynode, const node_t *nd, void *obj)
{
	if (check_node(ctx, nd) < 0)
		return;
	switch (k->type) {
	case LOOM_CFG_STRLIST:
		parse_strlist(ctx, d, k, nd, obj);
		return;
	case LOOM_CFG_SECTION:
		if (nd->kind == NODE_MAPPING)
			parse_mapping(ctx, d, nd, nd, k->sub, field(obj, k->offset), true);
		else if (node_is_null(nd))
			parse_mapping(ctx, d, NULL, keynode ? keynode : nd, k->sub,
			    field(obj, k->offset), true);
		else
			err_kind(ctx, nd, type_expected(k));
		return;
	case LOOM_CFG_LIST:
		parse_list(ctx, d, k, nd, obj);
		return;
	case LOOM_CFG_MAP:
		parse_map(ctx, d, k, nd, obj);
		return;
	default:
		if (nd->kind != NODE_SCALAR) {
			if (k->type == LOOM_CFG_ENUM) {
				loom_buf_t e = LOOM_BUF_INIT;
				loom_buf_adds(&e, "one of ");
				add_choices(&e, k->choices, ", ");
				err_kind(ctx, nd, loom_buf_cstr(&e));
				loom_buf_release(&e);
			} else {
				err_kind(ctx, nd, type_expected(k));
			}
			return;
		}
		parse_scalar(ctx, k, nd, obj);
		return;
	}
}

/* Applies k's default text to obj as if the file had said it. */
static void apply_default(cfg_ctx_t *ctx, const loom_cfg_key_t *k, void *obj)
{
	bool was = ctx->in_default;
	doc_t d;
	ctx->in_default = true;
	switch (k->type) {
	case LOOM_CFG_STRLIST:
	case LOOM_CFG_LIST:
	case LOOM_CFG_MAP: {
		read_error_t err;
		if (doc_read(k->def, strlen(k->def), &d, &err) < 0) {
			err_at(ctx, NULL, "yaml syntax: %s", err.problem);
			break;
		}
		if (d.root == NO_NODE || err.second_doc)
			err_at(ctx, NULL, "expected one yaml value");
		else
			parse_value(ctx, &d, k, NULL, doc_node(&d, d.root), obj);
		doc_free(&d);
		break;
	}
	default: {
		/* A scalar default is one scalar node, taken as written. */
		node_t nd;
		memset(&nd, 0, sizeof nd);
		nd.kind = NODE_SCALAR;
		nd.value = (char *)k->def;
		nd.len = strlen(k->def);
		parse_value(ctx, NULL, k, NULL, &nd, obj);
		break;
	}
	}
	ctx->in_default = was;
}

/* Handles key k that the mapping at pos does not hold. */
static void parse_absent(cfg_ctx_t *ctx, const loom_cfg_key_t *k, const node_t *pos,
    void *obj, bool report_missing)
{
	if ((k->flags & LOOM_CFG_REQUIRED) && report_missing)
		err_at(ctx, pos, "missing required key");
	if (k->type == LOOM_CFG_SECTION)
		parse_mapping(ctx, NULL, NULL, pos, k->sub, field(obj, k->offset), false);
	else if (k->def && !(k->flags & LOOM_CFG_REQUIRED))
		apply_default(ctx, k, obj);
}

/* Parses mapping node map (NULL: absent or empty) against t into obj.
 * pos positions "missing required key"; report_missing is false inside a
 * section the file does not have. */
static void parse_mapping(cfg_ctx_t *ctx, const doc_t *d, const node_t *map,
    const node_t *pos, const loom_cfg_table_t *t, void *obj, bool report_missing)
{
	size_t nkeys = 0;
	while (t->keys[nkeys].name)
		nkeys++;
	bool *seen = loom_calloc(nkeys + 1, sizeof *seen);

	for (size_t i = 0; map && i + 1 < map->nkids; i += 2) {
		const node_t *key = doc_node(d, map->kids[i]);
		const node_t *val = doc_node(d, map->kids[i + 1]);
		if (check_key_node(ctx, key) < 0)
			continue;
		if (key_repeats(d, map, i)) {
			size_t old = path_push_key(ctx, key->value, key->len);
			err_duplicate(ctx, key);
			path_pop(ctx, old);
			continue;
		}
		size_t ki;
		for (ki = 0; ki < nkeys; ki++)
			if (strlen(t->keys[ki].name) == key->len
			    && memcmp(t->keys[ki].name, key->value, key->len) == 0)
				break;
		if (ki == nkeys) {
			err_unknown(ctx, t, key);
			continue;
		}
		seen[ki] = true;
		size_t old = path_push_key(ctx, key->value, key->len);
		check_node(ctx, key);
		parse_value(ctx, d, &t->keys[ki], key, val, obj);
		path_pop(ctx, old);
	}
	for (size_t ki = 0; ki < nkeys; ki++) {
		if (seen[ki])
			continue;
		const loom_cfg_key_t *k = &t->keys[ki];
		size_t old = path_push_key(ctx, k->name, strlen(k->name));
		parse_absent(ctx, k, pos, obj, report_missing);
		path_pop(ctx, old);
	}
	free(seen);
}

/* ---- loading ------------------------------------------------------------ */

static char *dir_of(const char *name)
{
	const char *slash = strrchr(name, '/');
	if (slash == NULL)
		return NULL;
	if (slash == name)
		return loom_strdup("/");
	return loom_strndup(name, (size_t)(slash - name));
}

/* Stable sort of the diags this load added, by line then column; the
 * position-less ones (bad defaults, unreadable file) stay first. */
static void diags_sort(loom_cfg_diags_t *ds, size_t first)
{
	for (size_t i = first + 1; i < ds->n; i++) {
		loom_cfg_diag_t tmp = ds->v[i];
		size_t j = i;
		while (j > first && (ds->v[j - 1].line > tmp.line
		    || (ds->v[j - 1].line == tmp.line && ds->v[j - 1].column > tmp.column))) {
			ds->v[j] = ds->v[j - 1];
			j--;
		}
		ds->v[j] = tmp;
	}
}

int loom_config_load_string(const char *name, const char *text, size_t len,
    const loom_cfg_table_t *table, void *out, loom_cfg_diags_t *diags)
{
	cfg_ctx_t ctx;
	doc_t d;
	read_error_t err;

	memset(&ctx, 0, sizeof ctx);
	ctx.file = name;
	ctx.dir = dir_of(name);
	ctx.diags = diags;
	ctx.first_diag = diags->n;
	loom_buf_init(&ctx.path);

	if (doc_read(text, len, &d, &err) < 0) {
		node_t at = { .line = err.line, .column = err.column };
		loom_buf_t m = LOOM_BUF_INIT;
		loom_buf_printf(&m, "yaml syntax: %s", err.problem);
		if (err.context)
			loom_buf_printf(&m, " (%s)", err.context);
		diag_push(&ctx, &at, NULL, NULL, 0, loom_buf_cstr(&m));
		loom_buf_release(&m);
		goto out_free_ctx;
	}
	if (err.second_doc) {
		node_t at = { .line = err.doc_line, .column = err.doc_column };
		diag_push(&ctx, &at, NULL, NULL, 0,
		    "unexpected second document: expected one document per file");
	}

	const node_t *root = doc_node(&d, d.root);
	node_t start = { .line = 1, .column = 1 };
	if (root == NULL || node_is_null(root)) {
		/* An empty file: every key takes its default. */
		parse_mapping(&ctx, &d, NULL, root ? root : &start, table, out, true);
	} else if (check_node(&ctx, root) == 0) {
		if (root->kind == NODE_MAPPING)
			parse_mapping(&ctx, &d, root, root, table, out, true);
		else
			err_kind(&ctx, root, "a mapping");
	}
	doc_free(&d);
out_free_ctx:
	diags_sort(diags, ctx.first_diag);
	loom_buf_release(&ctx.path);
	free(ctx.dir);
	return diags->n > ctx.first_diag ? -1 : 0;
}

int loom_config_load_file(const char *path, const loom_cfg_table_t *table,
    void *out, loom_cfg_diags_t *diags)
{
	loom_buf_t text = LOOM_BUF_INIT;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int saved = 0;

	if (fd < 0) {
		saved = errno;
		goto out_unreadable;
	}
	for (;;) {
		loom_buf_reserve(&text, 65536);
		ssize_t got = read(fd, text.data + text.len, text.cap - text.len - 1);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			saved = errno;
			close(fd);
			goto out_unreadable;
		}
		if (got == 0)
			break;
		text.len += (size_t)got;
		text.data[text.len] = '\0';
		if (text.len > CONFIG_MAX_BYTES) { /* -c /dev/zero, a log given by mistake */
			close(fd);
			loom_buf_release(&text);
			loom_cfg_diag_add(diags, path, NULL,
			    loom_sprintf("%s: more than %d MiB: not a configuration file", path, CONFIG_MAX_BYTES >> 20));
			return -1;
		}
	}
	close(fd);
	int r = loom_config_load_string(path, loom_buf_cstr(&text), text.len, table, out, diags);
	loom_buf_release(&text);
	return r;

out_unreadable:
	loom_buf_release(&text);
	loom_cfg_diag_add(diags, path, NULL, loom_sprintf("%s: cannot read: %s", path, strerror(saved)));
	return -1;
}

/* ---- releasing ---------------------------------------------------------- */

void loom_config_release(const loom_cfg_table_t *table, void *obj)
{
	if (table == NULL || obj == NULL)
		return;
	for (const loom_cfg_key_t *k = table->keys; k->name; k++) {
		void *dst = field(obj, k->offset);
		switch (k->type) {
		case LOOM_CFG_STRING:
		case LOOM_CFG_PATH:
		case LOOM_CFG_ENDPOINT:
			loom_free((char **)dst);
			break;
		case LOOM_CFG_TEXT: {
			loom_cfg_text_t *t = dst;
			loom_free(&t->text);
			t->line = t->column = 0;
			break;
		}
		case LOOM_CFG_STRLIST: {
			loom_cfg_strlist_t *l = dst;
			for (size_t i = 0; i < l->n; i++)
				free(l->v[i]);
			free(l->v);
			l->v = NULL;
			l->n = 0;
			break;
		}
		case LOOM_CFG_SECTION:
			loom_config_release(k->sub, dst);
			break;
		case LOOM_CFG_LIST:
		case LOOM_CFG_MAP: {
			loom_cfg_array_t *a = dst;
			for (size_t i = 0; i < a->n; i++) {
				void *el = (char *)a->v + i * k->sub->size;
				loom_config_release(k->sub, el);
				if (k->type == LOOM_CFG_MAP)
					loom_free((char **)field(el, k->sub->name_offset));
			}
			free(a->v);
			a->v = NULL;
			a->n = 0;
			break;
		}
		case LOOM_CFG_INT:
		case LOOM_CFG_DURATION:
		case LOOM_CFG_SIZE:
			*(long long *)dst = 0;
			break;
		case LOOM_CFG_BOOL:
			*(bool *)dst = false;
			break;
		case LOOM_CFG_ENUM:
			*(int *)dst = 0;
			break;
		}
	}
}

loom_cfg_diag_t *loom_cfg_diag_add(loom_cfg_diags_t *diags, const char *file, const char *key, char *text)
{
	diags->v = loom_realloc(diags->v, (diags->n + 1) * sizeof *diags->v);
	loom_cfg_diag_t *d = &diags->v[diags->n++];
	memset(d, 0, sizeof *d);
	d->file = file ? loom_strdup(file) : NULL;
	d->key = key ? loom_strdup(key) : NULL;
	d->text = text;
	return d;
}

void loom_cfg_diags_move(loom_cfg_diags_t *dst, loom_cfg_diags_t *src)
{
	if (src->n) {
		dst->v = loom_realloc(dst->v, (dst->n + src->n) * sizeof *dst->v);
		memcpy(dst->v + dst->n, src->v, src->n * sizeof *src->v);
		dst->n += src->n;
	}
	free(src->v);
	src->v = NULL;
	src->n = 0;
}

char *loom_cfg_diags_join(const loom_cfg_diags_t *diags, const char *sep)
{
	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_adds(&b, "");
	for (size_t i = 0; i < diags->n; i++)
		loom_buf_printf(&b, "%s%s", i ? sep : "", diags->v[i].text);
	return loom_buf_steal(&b);
}

void loom_cfg_diags_release(loom_cfg_diags_t *diags)
{
	if (diags == NULL)
		return;
	for (size_t i = 0; i < diags->n; i++) {
		free(diags->v[i].file);
		free(diags->v[i].key);
		free(diags->v[i].value);
		free(diags->v[i].text);
	}
	free(diags->v);
	diags->v = NULL;
	diags->n = 0;
}

/* ---- describe ----------------------------------------------------------- */

static const char *type_name(loom_cfg_type_t type)
{
	switch (type) {
	case LOOM_CFG_STRING: return "string";
	case LOOM_CFG_TEXT: return "string";
	case LOOM_CFG_PATH: return "path";
	case LOOM_CFG_ENDPOINT: return "endpoint";
	case LOOM_CFG_INT: return "integer";
	case LOOM_CFG_BOOL: return "boolean";
	case LOOM_CFG_DURATION: return "duration";
	case LOOM_CFG_SIZE: return "size";
	case LOOM_CFG_ENUM: return "one of";
	case LOOM_CFG_STRLIST: return "list of strings";
	case LOOM_CFG_SECTION: return "section";
	case LOOM_CFG_LIST: return "list of mappings";
	case LOOM_CFG_MAP: return "mapping of NAME to mappings";
	}
	return "value";
}

static void describe_table(const loom_cfg_table_t *t, loom_buf_t *out, int depth)
{
	for (const loom_cfg_key_t *k = t->keys; k->name; k++) {
		loom_buf_printf(out, "%*s%s (%s", depth * 2, "", k->name, type_name(k->type));
		if (k->type == LOOM_CFG_ENUM) {
			loom_buf_addc(out, ' ');
			add_choices(out, k->choices, "|");
		}
		if (has_bounds(k) && (k->type == LOOM_CFG_INT || k->type == LOOM_CFG_DURATION
		    || k->type == LOOM_CFG_SIZE)) {
			loom_buf_adds(out, ", from ");
			add_bound(out, k->type, k->min);
			loom_buf_adds(out, " to ");
			add_bound(out, k->type, k->max);
		}
		if (k->flags & LOOM_CFG_REQUIRED)
			loom_buf_adds(out, ", required");
		if (k->flags & LOOM_CFG_NONEMPTY)
			loom_buf_adds(out, ", not empty");
		if (k->def && !(k->flags & LOOM_CFG_REQUIRED))
			loom_buf_printf(out, ", default %s", k->def[0] ? k->def : "\"\"");
		loom_buf_adds(out, ")");
		if (k->help)
			loom_buf_printf(out, ": %s", k->help);
		loom_buf_addc(out, '\n');
		if (k->sub && (k->type == LOOM_CFG_SECTION || k->type == LOOM_CFG_LIST
		    || k->type == LOOM_CFG_MAP)) {
			if (depth + 1 >= DESCRIBE_MAX_DEPTH)
				loom_buf_printf(out, "%*s...\n", (depth + 1) * 2, "");
			else
				describe_table(k->sub, out, depth + 1);
		}
	}
}

void loom_config_describe(const loom_cfg_table_t *table, struct loom_buf *out)
{
	describe_table(table, out, 0);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int loom_config_list_yaml(const char *dir, char ***ret_names, size_t *ret_n, loom_cfg_diags_t *diags)
{
	char **names = NULL;
	size_t n = 0;
	int rc = 0;
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			size_t len = strlen(de->d_name);
			if (de->d_name[0] == '.' || len <= 5 || strcmp(de->d_name + len - 5, ".yaml") != 0)
				continue;
			names = loom_realloc(names, (n + 1) * sizeof *names);
			names[n++] = loom_strdup(de->d_name);
		}
		closedir(d);
	} else if (errno != ENOENT) {
		loom_cfg_diag_add(diags, dir, NULL, loom_sprintf("%s: cannot list: %s", dir, strerror(errno)));
		rc = -1;
	}
	if (n)
		qsort(names, n, sizeof *names, cmp_names);
	*ret_names = names;
	*ret_n = n;
	return rc;
}

int loom_config_load_dir(const char *dir, size_t size, loom_config_load_fn *load, void **ret, size_t *ret_n,
    loom_cfg_diags_t *diags)
{
	memset(diags, 0, sizeof *diags);
	char **names;
	size_t n;
	int rc = loom_config_list_yaml(dir, &names, &n, diags);
	char *v = loom_calloc(n ? n : 1, size);
	for (size_t i = 0; i < n; i++) {
		char *path = loom_sprintf("%s/%s", dir, names[i]);
		loom_cfg_diags_t one = { 0 };
		if (load(path, v + i * size, &one) < 0)
			rc = -1;
		loom_cfg_diags_move(diags, &one);
		free(path);
	}
	loom_config_names_free(names, n);
	*ret = v;
	*ret_n = n;
	return rc;
}

void loom_config_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}
