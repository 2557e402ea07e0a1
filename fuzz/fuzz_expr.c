/* fuzz_expr.c - lib/loom_expr.c and loom_expr_funcs.c: the sync-rule
 * expression language (MIM functions, operators, literals). Every text
 * that compiles is evaluated against a fixed object whose attributes have
 * every value type, once with the attribute types unknown and once
 * strictly typed. The whole input is the expression text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "loom_expr.h"
#include "sync.pb-c.h"

static Loom__Value v_str = LOOM__VALUE__INIT, v_str2 = LOOM__VALUE__INIT, v_int = LOOM__VALUE__INIT,
    v_bool = LOOM__VALUE__INIT, v_bin = LOOM__VALUE__INIT, v_ref = LOOM__VALUE__INIT, v_time = LOOM__VALUE__INIT;
static Loom__Value *vs_str[] = { &v_str }, *vs_multi[] = { &v_str, &v_str2 }, *vs_int[] = { &v_int },
    *vs_bool[] = { &v_bool }, *vs_bin[] = { &v_bin }, *vs_ref[] = { &v_ref }, *vs_time[] = { &v_time };
static Loom__Attr attrs[] = {
	{ PROTOBUF_C_MESSAGE_INIT(&loom__attr__descriptor), "cn", 1, vs_str },
	{ PROTOBUF_C_MESSAGE_INIT(&loom__attr__descriptor), "proxyAddresses", 2, vs_multi },
	{ PROTOBUF_C_MESSAGE_INIT(&loom__attr__descriptor), "employeeID", 1, vs_int },
	{ PROTOBUF_C_MESSAGE_INIT(&loom__attr__descriptor), "enabled", 1, vs_bool },
	{ PROTOBUF_C_MESSAGE_INIT(&loom__attr__descriptor), "objectSid", 1, vs_bin },
	{ PROTOBUF_C_MESSAGE_INIT(&loom__attr__descriptor), "manager", 1, vs_ref },
	{ PROTOBUF_C_MESSAGE_INIT(&loom__attr__descriptor), "hireDate", 1, vs_time },
};
static const int attr_types[] = { LOOM_EXPR_STRING, LOOM_EXPR_STRING, LOOM_EXPR_INT, LOOM_EXPR_BOOL,
	LOOM_EXPR_BIN, LOOM_EXPR_REF, LOOM_EXPR_TIME };

static const Loom__Attr *lookup(void *arg, const char *name)
{
	(void)arg;
	for (size_t i = 0; i < sizeof attrs / sizeof *attrs; i++)
		if (strcasecmp(attrs[i].name, name) == 0)
			return &attrs[i];
	return NULL;
}

static int attr_type(void *arg, const char *name, bool *ret_multi)
{
	(void)arg;
	for (size_t i = 0; i < sizeof attrs / sizeof *attrs; i++)
		if (strcasecmp(attrs[i].name, name) == 0) {
			*ret_multi = attrs[i].n_values > 1;
			return attr_types[i];
		}
	return -1;
}

static void init(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	v_str.v_case = LOOM__VALUE__V_STR;
	v_str.str = "Jane Doe";
	v_str2.v_case = LOOM__VALUE__V_STR;
	v_str2.str = "smtp:jane@example.com";
	v_int.v_case = LOOM__VALUE__V_INT;
	v_int.int_ = 4711;
	v_bool.v_case = LOOM__VALUE__V_BOOL;
	v_bool.bool_ = true;
	static uint8_t sid[] = { 1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef };
	v_bin.v_case = LOOM__VALUE__V_BIN;
	v_bin.bin.data = sid;
	v_bin.bin.len = sizeof sid;
	v_ref.v_case = LOOM__VALUE__V_REF;
	v_ref.ref = "CN=Boss,OU=People,DC=example,DC=com";
	v_time.v_case = LOOM__VALUE__V_TIME;
	v_time.time = 1700000000000000LL;
}

static void run(const char *text, bool typed)
{
	loom_expr_compile_opts_t o = { .file = "fuzz.yaml", .line = 3, .column = 7 };
	if (typed) {
		o.attr_type = attr_type;
		o.strict = true;
	}
	loom_expr_t *e = NULL;
	char *err = NULL;
	if (loom_expr_compile(text, &o, &e, &err) < 0) {
		if (err == NULL || err[0] == '\0')
			FUZZ_BUG("expression refused without a message");
		free(err);
		return;
	}
	(void)loom_expr_type_name(loom_expr_result_type(e));
	for (const char *const *a = loom_expr_attributes(e); *a; a++)
		if ((*a)[0] == '\0')
			FUZZ_BUG("expression reads an attribute without a name");
	(void)loom_expr_direct_attr(e);
	loom_expr_result_t r;
	loom_expr_result_init(&r);
	if (loom_expr_eval(e, lookup, NULL, &r, &err) < 0) {
		if (r.n != 0)
			FUZZ_BUG("failed evaluation left values");
		free(err);
	} else {
		for (size_t i = 0; i < r.n; i++)
			if (r.v[i] == NULL || r.v[i]->v_case == LOOM__VALUE__V__NOT_SET)
				FUZZ_BUG("expression gave a value without a type");
	}
	/* Again into the same result: its memory is reused. */
	if (loom_expr_eval(e, NULL, NULL, &r, &err) < 0)
		free(err);
	loom_expr_result_release(&r);
	loom_expr_destroy(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init();
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	run(text, false);
	run(text, true);
	int64_t us;
	(void)loom_expr_parse_time(text, &us);
	free(text);
	return 0;
}
