/* loomctl_expr.c - `loomctl expr eval`: compile and evaluate one expression
 * offline, against attributes given on the command line, and print the
 * result typed. Needs no configuration, no store and no bus: it is the
 * engine's compiler and evaluator (lib/loom_expr.h), run once.
 */
#include "loomctl.h"
#include "loom_alloc.h"
#include "loom_attrs.h"
#include "loom_buf.h"
#include "loom_expr.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CMD "loomctl expr eval"

/* Exit statuses. */
#define EXIT_COMPILE 1  /* the expression does not compile */
#define EXIT_USAGE 2    /* bad flags or attribute values */
#define EXIT_EVAL 3     /* the evaluation failed, as a flow error on an object */

/* The attributes of the object the expression is evaluated against. */
typedef struct cli_obj {
	Loom__Attr **attrs;    /* the attributes, in the order given */
	int *types;            /* loom_expr_type_t of each */
	size_t n;              /* how many */
} cli_obj_t;

static const char *const type_words[] = {
	[LOOM_EXPR_STRING] = "string", [LOOM_EXPR_INT] = "integer", [LOOM_EXPR_BOOL] = "boolean",
	[LOOM_EXPR_BIN] = "binary", [LOOM_EXPR_TIME] = "datetime", [LOOM_EXPR_REF] = "reference",
};

static void obj_release(cli_obj_t *o)
{
	loom_attrs_free(o->attrs, o->n);
	free(o->types);
	memset(o, 0, sizeof *o);
}

static Loom__Attr *obj_find(const cli_obj_t *o, const char *name, size_t *ret_i)
{
	for (size_t i = 0; i < o->n; i++) {
		if (strcasecmp(o->attrs[i]->name, name) == 0) {
			if (ret_i)
				*ret_i = i;
			return o->attrs[i];
		}
	}
	return NULL;
}

static int parse_hex(const char *s, uint8_t **ret, size_t *ret_len)
{
	size_t n = strlen(s);
	if (n % 2)
		return -1;
	uint8_t *b = loom_malloc(n / 2 + 1);
	for (size_t i = 0; i < n / 2; i++) {
		if (!isxdigit((unsigned char)s[2 * i]) || !isxdigit((unsigned char)s[2 * i + 1])) {
			free(b);
			return -1;
		}
		char pair[3] = { s[2 * i], s[2 * i + 1], '\0' };
		b[i] = (uint8_t)strtoul(pair, NULL, 16);
	}
	*ret = b;
	*ret_len = n / 2;
	return 0;
}

/* Adds the value of "NAME=VALUE" given with flag, of type type. */
static int obj_add(cli_obj_t *o, int type, const char *flag, const char *spec)
{
	const char *eq = strchr(spec, '=');
	if (eq == NULL || eq == spec) {
		fprintf(stderr, CMD ": %s '%s': expected NAME=VALUE\n", flag, spec);
		return -1;
	}
	const char *text = eq + 1;
	Loom__Value *v = loom_malloc(sizeof *v);
	loom__value__init(v);
	switch (type) {
	case LOOM_EXPR_STRING:
		v->v_case = LOOM__VALUE__V_STR;
		v->str = loom_strdup(text);
		break;
	case LOOM_EXPR_REF:
		v->v_case = LOOM__VALUE__V_REF;
		v->ref = loom_strdup(text);
		break;
	case LOOM_EXPR_INT: {
		char *end;
		errno = 0;
		long long i = strtoll(text, &end, 10);
		if (*text == '\0' || *end != '\0' || errno) {
			fprintf(stderr, CMD ": %s '%s': '%s' is not an integer\n", flag, spec, text);
			goto fail;
		}
		v->v_case = LOOM__VALUE__V_INT;
		v->int_ = i;
		break;
	}
	case LOOM_EXPR_BOOL:
		if (strcasecmp(text, "true") != 0 && strcasecmp(text, "false") != 0) {
			fprintf(stderr, CMD ": %s '%s': '%s' is not true or false\n", flag, spec, text);
			goto fail;
		}
		v->v_case = LOOM__VALUE__V_BOOL;
		v->bool_ = strcasecmp(text, "true") == 0;
		break;
	case LOOM_EXPR_BIN:
		if (parse_hex(text, &v->bin.data, &v->bin.len) < 0) {
			fprintf(stderr, CMD ": %s '%s': '%s' is not hexadecimal bytes (such as 0a0b)\n", flag, spec, text);
			goto fail;
		}
		v->v_case = LOOM__VALUE__V_BIN;
		break;
	case LOOM_EXPR_TIME:
		if (loom_expr_parse_time(text, &v->time) < 0) {
			fprintf(stderr, CMD ": %s '%s': '%s' is not a datetime (such as 2024-03-01T12:30:00Z)\n", flag, spec,
			    text);
			goto fail;
		}
		v->v_case = LOOM__VALUE__V_TIME;
		break;
	}
	char *name = loom_strndup(spec, (size_t)(eq - spec));
	size_t i;
	Loom__Attr *a = obj_find(o, name, &i);
	if (a && o->types[i] != type) {
		fprintf(stderr, CMD ": attribute '%s' is given as %s and as %s\n", name, loom_expr_type_name(o->types[i]),
		    loom_expr_type_name(type));
		free(name);
		goto fail;
	}
	if (a == NULL) {
		o->attrs = loom_realloc(o->attrs, (o->n + 1) * sizeof *o->attrs);
		o->types = loom_realloc(o->types, (o->n + 1) * sizeof *o->types);
		a = loom_malloc(sizeof *a);
		loom__attr__init(a);
		a->name = name;
		o->attrs[o->n] = a;
		o->types[o->n++] = type;
	} else {
		free(name);
	}
	a->values = loom_realloc(a->values, (a->n_values + 1) * sizeof *a->values);
	a->values[a->n_values++] = v;
	return 0;
fail:
	loom_value_free(v);
	return -1;
}

static const Loom__Attr *obj_lookup(void *arg, const char *name)
{
	return obj_find(arg, name, NULL);
}

/* The attributes given are typed and, given more than once, multi-valued;
 * the others are unknown (absent), not an error. */
static int obj_attr_type(void *arg, const char *name, bool *ret_multi)
{
	const cli_obj_t *o = arg;
	size_t i;
	if (obj_find(o, name, &i) == NULL)
		return -1;
	*ret_multi = o->attrs[i]->n_values > 1;
	return o->types[i];
}

/* Prints the line and column an error message starts with as the line of
 * the expression and a caret under the column. */
static void show_location(const char *text, const char *err)
{
	unsigned line, col;
	if (sscanf(err, "<expression>:%u:%u:", &line, &col) == 2)
		ctl_show_caret(text, line, col);
}

static loom_expr_type_t value_type(const Loom__Value *v)
{
	switch (v->v_case) {
	case LOOM__VALUE__V_STR: return LOOM_EXPR_STRING;
	case LOOM__VALUE__V_INT: return LOOM_EXPR_INT;
	case LOOM__VALUE__V_BOOL: return LOOM_EXPR_BOOL;
	case LOOM__VALUE__V_BIN: return LOOM_EXPR_BIN;
	case LOOM__VALUE__V_TIME: return LOOM_EXPR_TIME;
	case LOOM__VALUE__V_REF: return LOOM_EXPR_REF;
	default: return LOOM_EXPR_ANY;
	}
}

/* Appends a value: strings and references JSON-quoted, binary in hex,
 * datetimes in ISO 8601; json quotes binary and datetimes too. */
static void add_value(loom_buf_t *b, const Loom__Value *v, bool json)
{
	switch (v->v_case) {
	case LOOM__VALUE__V_STR:
		loom_buf_add_json_str(b, v->str, strlen(v->str));
		break;
	case LOOM__VALUE__V_REF:
		loom_buf_add_json_str(b, v->ref, strlen(v->ref));
		break;
	case LOOM__VALUE__V_INT:
		loom_buf_printf(b, "%" PRId64, v->int_);
		break;
	case LOOM__VALUE__V_BOOL:
		loom_buf_adds(b, v->bool_ ? "true" : "false");
		break;
	case LOOM__VALUE__V_BIN:
		if (json)
			loom_buf_addc(b, '"');
		loom_buf_add_hex(b, v->bin.data, v->bin.len);
		if (json)
			loom_buf_addc(b, '"');
		break;
	case LOOM__VALUE__V_TIME:
		if (json)
			loom_buf_addc(b, '"');
		loom_expr_format_time(b, v->time);
		if (json)
			loom_buf_addc(b, '"');
		break;
	default:
		loom_buf_adds(b, "null");
		break;
	}
}

static void print_result(const loom_expr_result_t *r, bool json)
{
	loom_buf_t b = LOOM_BUF_INIT;
	const char *special = r->ignore_flow ? "ignore-this-flow" : r->authoritative_null ? "authoritative-null"
	    : r->n == 0 ? "null" : NULL;
	if (json) {
		const char *type = special;
		if (type == NULL) {
			loom_expr_type_t t = value_type(r->v[0]);
			for (size_t i = 1; i < r->n; i++)
				if (value_type(r->v[i]) != t)
					t = LOOM_EXPR_ANY;
			type = t == LOOM_EXPR_ANY ? "mixed" : type_words[t];
		}
		loom_buf_printf(&b, "{\"type\":\"%s\",\"values\":[", type);
		for (size_t i = 0; i < r->n; i++) {
			if (i)
				loom_buf_addc(&b, ',');
			add_value(&b, r->v[i], true);
		}
		loom_buf_adds(&b, "]}\n");
	} else if (special) {
		loom_buf_printf(&b, "%s\n", special);
	} else {
		for (size_t i = 0; i < r->n; i++) {
			loom_expr_type_t t = value_type(r->v[i]);
			loom_buf_adds(&b, t == LOOM_EXPR_ANY ? "unset" : type_words[t]);
			if (t != LOOM_EXPR_BIN || r->v[i]->bin.len) {
				loom_buf_addc(&b, ' ');
				add_value(&b, r->v[i], false);
			}
			loom_buf_addc(&b, '\n');
		}
	}
	fputs(loom_buf_cstr(&b), stdout);
	loom_buf_release(&b);
}


int ctl_expr(ctl_t *ctl, int argc, char **argv)
{
	static const struct {
		const char *flag;          /* long form */
		const char *alias;         /* short form, or NULL */
		int type;                  /* type of the value it gives */
	} value_flags[] = {
		{ "--attr", "-a", LOOM_EXPR_STRING }, { "--int", NULL, LOOM_EXPR_INT }, { "--bool", NULL, LOOM_EXPR_BOOL },
		{ "--bin", NULL, LOOM_EXPR_BIN }, { "--time", NULL, LOOM_EXPR_TIME }, { "--ref", NULL, LOOM_EXPR_REF },
	};
	if (argc < 2 || strcmp(argv[1], "eval") != 0) {
		fprintf(stderr, "loomctl expr: expected 'eval EXPRESSION' (see loomctl expr --help)\n");
		return EXIT_USAGE;
	}
	cli_obj_t obj = { 0 };
	const char *expr_arg = NULL;
	loom_expr_type_t want = LOOM_EXPR_ANY;
	bool json = ctl->json, options = true;
	int status = EXIT_USAGE;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		/* an argument starting with '-' and a digit is an expression (-5) */
		if (!options || a[0] != '-' || a[1] == '\0' || isdigit((unsigned char)a[1])) {
			if (expr_arg) {
				fprintf(stderr, CMD ": more than one expression ('%s' and '%s'); quote the expression\n", expr_arg,
				    a);
				goto out;
			}
			expr_arg = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			options = false;
			continue;
		}
		bool known = false;
		for (size_t f = 0; f < sizeof value_flags / sizeof value_flags[0] && !known; f++) {
			const char *flag = value_flags[f].flag;
			size_t fl = strlen(flag);
			if (strncmp(a, flag, fl) == 0 && (a[fl] == '\0' || a[fl] == '=')) {
				known = true;
			} else if (value_flags[f].alias && strcmp(a, value_flags[f].alias) == 0) {
				known = true;
				fl = strlen(a);
			}
			if (!known)
				continue;
			const char *v = ctl_option_value(CMD, argc, argv, &i, flag, fl);
			if (v == NULL || obj_add(&obj, value_flags[f].type, flag, v) < 0)
				goto out;
		}
		if (known)
			continue;
		if (strcmp(a, "-o") == 0 || (strncmp(a, "--output", 8) == 0 && (a[8] == '\0' || a[8] == '='))) {
			const char *v = ctl_option_value(CMD, argc, argv, &i, "--output", a[1] == 'o' ? 2 : 8);
			if (v == NULL)
				goto out;
			if (strcmp(v, "json") != 0 && strcmp(v, "text") != 0) {
				fprintf(stderr, CMD ": bad --output '%s': expected text or json\n", v);
				goto out;
			}
			json = strcmp(v, "json") == 0;
		} else if (strncmp(a, "--want", 6) == 0 && (a[6] == '\0' || a[6] == '=')) {
			const char *v = ctl_option_value(CMD, argc, argv, &i, "--want", 6);
			if (v == NULL)
				goto out;
			want = LOOM_EXPR_ANY;
			for (int t = LOOM_EXPR_STRING; t <= LOOM_EXPR_REF; t++)
				if (strcmp(v, type_words[t]) == 0)
					want = (loom_expr_type_t)t;
			if (want == LOOM_EXPR_ANY) {
				fprintf(stderr, CMD ": bad --want '%s': expected string, integer, boolean, binary, datetime or "
				    "reference\n", v);
				goto out;
			}
		} else {
			fprintf(stderr, CMD ": unknown option '%s' (see loomctl expr --help)\n", a);
			goto out;
		}
	}
	if (expr_arg == NULL) {
		fprintf(stderr, CMD ": expected an EXPRESSION (see loomctl expr --help)\n");
		goto out;
	}
	char *text = strcmp(expr_arg, "-") == 0 ? ctl_read_stdin() : loom_strdup(expr_arg);
	loom_expr_compile_opts_t o = { .attr_type = obj_attr_type, .arg = &obj, .want = want };
	loom_expr_t *e = NULL;
	char *err = NULL;
	if (loom_expr_compile(text, &o, &e, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		show_location(text, err);
		free(err);
		status = EXIT_COMPILE;
		goto out_text;
	}
	loom_expr_result_t r;
	loom_expr_result_init(&r);
	if (loom_expr_eval(e, obj_lookup, &obj, &r, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		show_location(text, err);
		free(err);
		status = EXIT_EVAL;
	} else {
		print_result(&r, json);
		status = 0;
	}
	loom_expr_result_release(&r);
	loom_expr_destroy(&e);
out_text:
	free(text);
out:
	obj_release(&obj);
	return status;
}
