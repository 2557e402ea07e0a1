/* test_expr.c - the expression language (lib/loom_expr.c, lib/loom_expr_funcs.c).
 *
 * Table-driven: each case has a label, the expression, the attributes the
 * object holds and the wanted result (rendered) or the wanted error (full
 * text, location included). Every case runs twice: once compiled with the
 * attribute types known (typed: a type error is found at compile time) and
 * once without them (untyped: the same error is found at evaluation, with
 * the same text), unless its flags restrict it to one mode. Every value
 * case is evaluated twice into the same result, to prove reuse.
 *
 * Attributes are written "name[:type[*]][=value]": type is str (default),
 * int, bool, bin (hex), ref, time (µs since the epoch); '*' declares the
 * attribute multi-valued; a name given twice is multi-valued; without
 * "=value" the attribute is declared but absent.
 *
 * Rendering: null, authoritative-null, ignore-flow, or the values joined
 * by ", ": 'string', 42, true, x'00ff' (binary), ref'cn=x' (reference),
 * t'2024-03-01T12:30:00Z' (datetime, printed by the test from µs).
 *
 * Every example and documented edge case of /work/shared/testdata/functions
 * (FUNCTIONS-TABLE.md and the MIM 2016 reference) is in the first tables,
 * labelled "MIM ..." and "Entra ...", translated to Loom's syntax where the
 * Entra text uses operators (= < > &) or %parameters%; the doc bugs are
 * tested as printed (the error) and as meant. Functions whose result depends
 * on time or chance (Now, RandomNum, Guid) get property checks in
 * test_volatile instead.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_expr.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- fixture: attributes from their spec -------------------------------------------- */

#define MAX_ATTRS 12

typedef struct fx_attr {
	Loom__Attr a;               /* the attribute handed to the expression */
	int type;                   /* declared type (loom_expr_type_t) */
	bool multi;                 /* declared multi-valued */
} fx_attr_t;

typedef struct fixture {
	fx_attr_t at[MAX_ATTRS];    /* the object's attributes */
	size_t n;                   /* how many */
	int lie;                    /* >= 0: attr_type declares every attribute of this type */
} fixture_t;

static int parse_type(const char *s, size_t n)
{
	static const char *const names[] = { "any", "str", "int", "bool", "bin", "time", "ref" };
	for (size_t i = 0; i < N_ELEMS(names); i++)
		if (strlen(names[i]) == n && strncmp(names[i], s, n) == 0)
			return (int)i;
	fail_msg("bad type in attribute spec '%.*s'", (int)n, s);
	return -1;
}

static Loom__Value *make_value(int type, const char *text)
{
	Loom__Value *v = loom_calloc(1, sizeof *v);
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
	case LOOM_EXPR_INT:
		v->v_case = LOOM__VALUE__V_INT;
		v->int_ = strtoll(text, NULL, 10);
		break;
	case LOOM_EXPR_TIME:
		v->v_case = LOOM__VALUE__V_TIME;
		v->time = strtoll(text, NULL, 10);
		break;
	case LOOM_EXPR_BOOL:
		v->v_case = LOOM__VALUE__V_BOOL;
		v->bool_ = strcmp(text, "true") == 0;
		break;
	case LOOM_EXPR_BIN: {
		size_t n = strlen(text) / 2;
		v->v_case = LOOM__VALUE__V_BIN;
		v->bin.data = loom_malloc(n ? n : 1);
		v->bin.len = n;
		for (size_t i = 0; i < n; i++) {
			unsigned byte;
			sscanf(text + 2 * i, "%2x", &byte);
			v->bin.data[i] = (uint8_t)byte;
		}
		break;
	}
	default:
		fail_msg("bad value type %d", type);
	}
	return v;
}

static void fixture_add(fixture_t *fx, const char *spec)
{
	const char *eq = strchr(spec, '=');
	size_t head = eq ? (size_t)(eq - spec) : strlen(spec);
	const char *colon = memchr(spec, ':', head);
	size_t nlen = colon ? (size_t)(colon - spec) : head;
	int type = LOOM_EXPR_STRING;
	bool star = false;
	if (colon) {
		size_t tl = head - nlen - 1;
		if (tl && colon[tl] == '*') {
			star = true;
			tl--;
		}
		type = parse_type(colon + 1, tl);
	}
	fx_attr_t *a = NULL;
	for (size_t i = 0; i < fx->n; i++)
		if (strlen(fx->at[i].a.name) == nlen && strncmp(fx->at[i].a.name, spec, nlen) == 0)
			a = &fx->at[i];
	if (a == NULL) {
		assert_true(fx->n < MAX_ATTRS);
		a = &fx->at[fx->n++];
		loom__attr__init(&a->a);
		a->a.name = loom_strndup(spec, nlen);
		a->type = type;
	}
	a->multi = a->multi || star;
	if (eq) {
		a->a.values = loom_realloc(a->a.values, (a->a.n_values + 1) * sizeof *a->a.values);
		a->a.values[a->a.n_values++] = make_value(a->type, eq + 1);
		if (a->a.n_values > 1)
			a->multi = true;
	}
}

static void fixture_free(fixture_t *fx)
{
	for (size_t i = 0; i < fx->n; i++) {
		Loom__Attr *a = &fx->at[i].a;
		for (size_t j = 0; j < a->n_values; j++) {
			Loom__Value *v = a->values[j];
			if (v->v_case == LOOM__VALUE__V_STR)
				free(v->str);
			else if (v->v_case == LOOM__VALUE__V_REF)
				free(v->ref);
			else if (v->v_case == LOOM__VALUE__V_BIN)
				free(v->bin.data);
			free(v);
		}
		free(a->values);
		free(a->name);
	}
	fx->n = 0;
}

static const Loom__Attr *fx_lookup(void *arg, const char *name)
{
	fixture_t *fx = arg;
	for (size_t i = 0; i < fx->n; i++)
		if (strcasecmp(fx->at[i].a.name, name) == 0)
			return &fx->at[i].a;
	return NULL;
}

static int fx_attr_type(void *arg, const char *name, bool *ret_multi)
{
	fixture_t *fx = arg;
	for (size_t i = 0; i < fx->n; i++) {
		if (strcasecmp(fx->at[i].a.name, name) == 0) {
			*ret_multi = fx->at[i].multi;
			return fx->lie >= 0 ? fx->lie : fx->at[i].type;
		}
	}
	return -1;
}

/* ---- rendering -------------------------------------------------------------------------- */

static void add_time(loom_buf_t *b, int64_t us)
{
	time_t secs = (time_t)(us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000));
	long frac = (long)(us - (int64_t)secs * 1000000);
	struct tm tm;
	char buf[64];
	gmtime_r(&secs, &tm);
	strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
	loom_buf_printf(b, "t'%s", buf);
	if (frac)
		loom_buf_printf(b, ".%06ld", frac);
	loom_buf_adds(b, "Z'");
}

static char *render(const loom_expr_result_t *r)
{
	loom_buf_t b = LOOM_BUF_INIT;
	if (r->ignore_flow)
		loom_buf_adds(&b, "ignore-flow");
	else if (r->authoritative_null)
		loom_buf_adds(&b, "authoritative-null");
	else if (r->n == 0)
		loom_buf_adds(&b, "null");
	for (size_t i = 0; i < r->n; i++) {
		const Loom__Value *v = r->v[i];
		if (i > 0)
			loom_buf_adds(&b, ", ");
		switch (v->v_case) {
		case LOOM__VALUE__V_STR:
			loom_buf_printf(&b, "'%s'", v->str);
			break;
		case LOOM__VALUE__V_REF:
			loom_buf_printf(&b, "ref'%s'", v->ref);
			break;
		case LOOM__VALUE__V_INT:
			loom_buf_printf(&b, "%" PRId64, v->int_);
			break;
		case LOOM__VALUE__V_BOOL:
			loom_buf_adds(&b, v->bool_ ? "true" : "false");
			break;
		case LOOM__VALUE__V_BIN:
			loom_buf_adds(&b, "x'");
			loom_buf_add_hex(&b, v->bin.data, v->bin.len);
			loom_buf_adds(&b, "'");
			break;
		case LOOM__VALUE__V_TIME:
			add_time(&b, v->time);
			break;
		default:
			loom_buf_adds(&b, "<unset>");
		}
	}
	return loom_buf_steal(&b);
}

/* ---- cases -------------------------------------------------------------------------------- */

/* Flags. */
#define TYPED_ONLY 0x01u    /* run compiled with attribute types only */
#define UNTYPED_ONLY 0x02u  /* run compiled without attribute types only */
#define STRICT 0x04u        /* compile strict (implies typed) */
#define AT_COMPILE 0x08u    /* the error must come from compilation (in every mode run) */
#define AT_EVAL 0x10u       /* the error must come from evaluation (in every mode run) */

typedef struct expr_case {
	const char *label;             /* what the case shows */
	const char *text;              /* the expression */
	const char *attrs[MAX_ATTRS];  /* the object's attributes, specs as above */
	const char *want;              /* rendered result, or NULL when an error is wanted */
	const char *error;             /* the wanted error, location included */
	unsigned flags;                /* TYPED_ONLY ... */
	loom_expr_type_t want_type;    /* compile option want */
} expr_case_t;

#define E(...) { __VA_ARGS__ }

/* The tables leave the fields a case does not need (error, flags, want
 * type) out, to stay readable; they are zero. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* Examples of the references, for the functions implemented. */
static const expr_case_t doc_cases[] = {
	/* MIM 2016 functions reference */
	{ "MIM UpperCase", "UpperCase(\"test\")", E(0), "'TEST'" },
	{ "MIM LowerCase", "LowerCase(\"TeSt\")", E(0), "'test'" },
	{ "MIM ProperCase TEsT", "ProperCase(\"TEsT\")", E(0), "'Test'" },
	{ "MIM ProperCase britta simon", "ProperCase(\"britta simon\")", E(0), "'Britta Simon'" },
	{ "MIM ProperCase keeps a leading space", "ProperCase(\" TEsT\")", E(0), "' Test'" },
	{ "MIM ProperCase word starting with $", "ProperCase(\"$TEsT\")", E(0), "'$Test'" },
	{ "MIM LTrim", "LTrim(\" Test \")", E(0), "'Test '" },
	{ "MIM RTrim", "RTrim(\" Test \")", E(0), "' Test'" },
	{ "MIM Trim", "Trim(\" Test \")", E(0), "'Test'" },
	{ "MIM RightPad", "RightPad(\"User\", 10, \"0\")", E(0), "'User000000'" },
	{ "MIM RightPad of RandomNum 9 (doc prints 9000, a doc bug)", "RightPad(\"9\", 5, \"0\")", E(0), "'90000'" },
	{ "MIM LeftPad (doc labels it RightPad)", "LeftPad(\"User\", 10, \"0\")", E(0), "'000000User'" },
	{ "MIM LeftPad of RandomNum 9 (doc prints 0009, a doc bug)", "LeftPad(\"9\", 5, \"0\")", E(0), "'00009'" },
	{ "MIM ReplaceString as printed: the stray \\W is an error",
	    "ReplaceString(\"One\\n\\rMicrosoft\\n\\r\\Way\",\"\\n\\r\",\" \")", E(0), NULL,
	    "t.yaml:1:36: unknown escape '\\W' in a string (the escapes are \\\" \\\\ \\n \\r \\t)", AT_COMPILE },
	{ "MIM ReplaceString without the stray backslash",
	    "ReplaceString(\"One\\n\\rMicrosoft\\n\\rWay\",\"\\n\\r\",\" \")", E(0), "'One Microsoft Way'" },
	{ "MIM Word third word", "Word(\"Test;of%function;\", 3, \";$&%\")", E(0), "'function'" },
	{ "MIM Word adjacent delimiters give an empty word", "Word(\"Test;;Function\" , 2 , \";\")", E(0), "''" },
	{ "MIM Word number 0", "Word(\"Test;of%function;\", 0, \";$&%\")", E(0), "''" },
	{ "MIM Left", "Left(\"Britta Simon\", 3)", E(0), "'Bri'" },
	{ "MIM Right", "Right(\"Britta Simon\", 3)", E(0), "'mon'" },
	{ "MIM Mid", "Mid(\"Britta Simon\", 3, 5)", E(0), "'itta '" },
	{ "MIM CRLF between two address lines", "AddressLine1 + CRLF() + AddressLine2",
	    E("AddressLine1=One Microsoft Way", "AddressLine2=Redmond"), "'One Microsoft Way\r\nRedmond'" },
	{ "MIM RandomNum as printed: Random is not a function", "Random(0,999)", E(0), NULL,
	    "t.yaml:1:1: unknown function 'Random' (did you mean 'RandomNum'?)", AT_COMPILE },
	{ "MIM RandomNum of one number", "RandomNum(9, 9)", E(0), "9" },
	{ "MIM BitOr sets the mask's bits on the flag", "BitOr(2, userAccountControl)", E("userAccountControl:int=512"),
	    "514" },
	{ "MIM BitAnd clears the bits the mask has as 0", "BitAnd(&HFFFFFFFD, userAccountControl)",
	    E("userAccountControl:int=514"), "512" },
	{ "MIM DateTimeFormat as printed: DateTime is not a function", "DateTime(\"12/25/2007\", \"yyyy-MM-dd\")", E(0),
	    NULL, "t.yaml:1:1: unknown function 'DateTime' (did you mean 'DateTimeFormat'?)", AT_COMPILE },
	{ "MIM DateTimeFormat of a date written as a string", "DateTimeFormat(\"12/25/2007\", \"yyyy-MM-dd\")", E(0),
	    "'2007-12-25'" },
	{ "MIM DateTimeFormat with a format that is not valid", "DateTimeFormat(\"12/25/2007\", \"yyyy-MM-dd\\\\\")",
	    E(0), NULL, "t.yaml:1:30: DateTimeFormat cannot use the format 'yyyy-MM-dd\\': '\\' at the end escapes nothing",
	    AT_COMPILE },
	{ "MIM DateTimeFormat with a format from an attribute that is not valid", "DateTimeFormat(\"12/25/2007\", f)",
	    E("f=yyyy%"), NULL,
	    "t.yaml:1:30: DateTimeFormat cannot use the format 'yyyy%': '%' must be followed by one format character",
	    AT_EVAL },
	{ "MIM ConvertSidToString", "ConvertSidToString(objectSid)",
	    E("objectSid:bin=010500000000000515000000dcf4dc3b833d2b46828ba62800020000"),
	    "'S-1-5-21-1004336348-1177238915-682003330-512'" },
	{ "MIM ConvertStringToGuid of the doc's sample (a hyphen missing)",
	    "ConvertStringToGuid(\"382c74c3-721d-4f34-80e557657b6cbc27\")", E(0), NULL,
	    "t.yaml:1:1: ConvertStringToGuid cannot convert '382c74c3-721d-4f34-80e557657b6cbc27' to a GUID "
	    "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", AT_EVAL },
	{ "MIM ConvertStringToGuid of the sample with its hyphen",
	    "ConvertStringToGuid(\"382c74c3-721d-4f34-80e5-57657b6cbc27\")", E(0), "x'c3742c381d72344f80e557657b6cbc27'" },
	{ "MIM Null as printed: Eq with one argument", "IIF(Eq(domain), \"unknown\", Null())", E("domain=x"), NULL,
	    "t.yaml:1:14: Eq expects 2 arguments, got 1", AT_COMPILE },
	{ "MIM Null: no value to contribute", "IIF(Eq(domain, \"\"), \"unknown\", Null())", E("domain=contoso"), "null" },
	{ "MIM Null: the other branch", "IIF(Eq(domain, \"\"), \"unknown\", Null())", E("domain="), "'unknown'" },
	{ "MIM IIF intern", "IIF(Eq(EmployeeType,\"Intern\"),\"t-\" + Alias, Alias)",
	    E("EmployeeType=Intern", "Alias=bsimon"), "'t-bsimon'" },
	{ "MIM IIF not an intern", "IIF(Eq(EmployeeType,\"Intern\"),\"t-\" + Alias, Alias)",
	    E("EmployeeType=Employee", "Alias=bsimon"), "'bsimon'" },
	{ "MIM NotEquals", "NotEquals(EmployeeType, \"Contractor\")", E("EmployeeType=Employee"), "true" },
	{ "MIM NotEquals equal", "NotEquals(EmployeeType, \"Contractor\")", E("EmployeeType=Contractor"), "false" },
	{ "MIM LessThan", "LessThan(Salary, 100000)", E("Salary:int=50000"), "true" },
	{ "MIM GreaterThan", "GreaterThan(Salary, 100000)", E("Salary:int=50000"), "false" },
	{ "MIM LessThanOrEquals", "LessThanOrEquals(Salary, 100000)", E("Salary:int=100000"), "true" },
	{ "MIM GreaterThanOrEquals", "GreaterThanOrEquals(Salary, 100000)", E("Salary:int=99999"), "false" },
	{ "MIM IsPresent", "IsPresent(Alias)", E("Alias=bsimon"), "true" },
	{ "MIM IsPresent absent", "IsPresent(Alias)", E("Alias:str"), "false" },
	/* Entra Connect functions reference (operators written as functions) */
	{ "Entra BitAnd", "BitAnd(&HF, &HF7)", E(0), "7" },
	{ "Entra BitOr", "BitOr(&H10, 3)", E(0), "19" },
	{ "Entra CBool of an equality", "CBool(Eq(attrib1, attrib2))", E("attrib1=a", "attrib2=a"), "true" },
	{ "Entra CBool of an inequality", "CBool(Eq(attrib1, attrib2))", E("attrib1=a", "attrib2=b"), "false" },
	{ "Entra CDate with a time zone", "CDate(\"2013-01-10 4:00 PM -8\")", E(0), "t'2013-01-11T00:00:00Z'" },
	{ "Entra CGuid", "CGuid(\"00112233-4455-6677-8899-aabbccddeeff\")", E(0), "x'33221100554477668899aabbccddeeff'" },
	{ "Entra CGuid in braces", "CGuid(\"{00112233-4455-6677-8899-AABBCCDDEEFF}\")", E(0),
	    "x'33221100554477668899aabbccddeeff'" },
	{ "Entra Contains: the primary address is there", "IIF(GreaterThan(Contains(proxyAddresses, \"SMTP:\"), 0), "
	    "proxyAddresses, Error(\"No primary SMTP address found.\"))",
	    E("proxyAddresses=smtp:jd@contoso.com", "proxyAddresses=SMTP:john.doe@contoso.com"),
	    "'smtp:jd@contoso.com', 'SMTP:john.doe@contoso.com'" },
	{ "Entra Contains: no primary address", "IIF(GreaterThan(Contains(proxyAddresses, \"SMTP:\"), 0), "
	    "proxyAddresses, Error(\"No primary SMTP address found.\"))",
	    E("proxyAddresses=smtp:jd@contoso.com", "proxyAddresses=x500:/o=contoso"), NULL,
	    "t.yaml:1:72: No primary SMTP address found.", AT_EVAL },
	{ "Entra Contains is case-sensitive", "Contains(proxyAddresses, \"SMTP:\")",
	    E("proxyAddresses=smtp:jd@contoso.com", "proxyAddresses=SMTP:john.doe@contoso.com"), "2" },
	{ "Entra Contains CaseInsensitive", "Contains(proxyAddresses, \"SMTP:\", CaseInsensitive)",
	    E("proxyAddresses=smtp:jd@contoso.com", "proxyAddresses=SMTP:john.doe@contoso.com"), "1" },
	{ "Entra Contains of references is exact", "Contains(member, \"cn=a,dc=x\")",
	    E("member:ref=cn=ab,dc=x", "member:ref=cn=a,dc=x"), "2" },
	{ "Entra ConvertFromUTF8Hex", "ConvertFromUTF8Hex(\"48656C6C6F20776F726C6421\")", E(0), "'Hello world!'" },
	{ "Entra ConvertToUTF8Hex", "ConvertToUTF8Hex(\"Hello world!\")", E(0), "'48656C6C6F20776F726C6421'" },
	{ "Entra CRef (a parameter as an attribute)",
	    "CRef(\"CN=LC Services,CN=Microsoft,CN=lcspool01,CN=Pools,CN=RTC Service,\" + forestLDAP)",
	    E("forestLDAP=DC=contoso,DC=com"),
	    "ref'CN=LC Services,CN=Microsoft,CN=lcspool01,CN=Pools,CN=RTC Service,DC=contoso,DC=com'" },
	{ "Entra DateAdd three months", "DateAdd(\"m\", 3, CDate(\"2001-01-01\"))", E(0), "t'2001-04-01T00:00:00Z'" },
	{ "Entra DateFromNum", "DateFromNum(129699324000000000)", E(0), "t'2012-01-01T23:00:00Z'" },
	{ "Entra DNComponent", "DNComponent(CRef(dn), 1)", E("dn=cn=Joe,ou=Atlanta,ou=GA,ou=US, dc=contoso,dc=com"),
	    "'Joe'" },
	{ "Entra DNComponentRev", "DNComponentRev(CRef(dn), 3)", E("dn=cn=Joe,ou=Atlanta,ou=GA,ou=US, dc=contoso,dc=com"),
	    "'US'" },
	{ "Entra DNComponentRev without dc", "DNComponentRev(CRef(dn), 1, \"DC\")",
	    E("dn=cn=Joe,ou=Atlanta,ou=GA,ou=US, dc=contoso,dc=com"), "'US'" },
	{ "Entra ConvertFromBase64 Unicode", "ConvertFromBase64(\"SABlAGwAbABvACAAdwBvAHIAbABkACEA\")", E(0),
	    "'Hello world!'" },
	{ "Entra ConvertFromBase64 UTF8", "ConvertFromBase64(\"SGVsbG8gd29ybGQh\", UTF8)", E(0), "'Hello world!'" },
	{ "Entra ConvertToBase64", "ConvertToBase64(\"Hello world!\")", E(0), "'SABlAGwAbABvACAAdwBvAHIAbABkACEA'" },
	{ "Entra CStr of a reference", "CStr(dn)", E("dn:ref=cn=Joe,dc=contoso,dc=com"), "'cn=Joe,dc=contoso,dc=com'" },
	{ "Entra Error not raised", "IIF(IsPresent(accountName), accountName, Error(\"AccountName is required\"))",
	    E("accountName=jdoe"), "'jdoe'" },
	{ "Entra Error raised", "IIF(IsPresent(accountName), accountName, Error(\"AccountName is required\"))",
	    E("accountName:str"), NULL, "t.yaml:1:42: AccountName is required", AT_EVAL },
	{ "Entra EscapeDNComponent (doc example with its brackets fixed)",
	    "EscapeDNComponent(\"CN=\" + displayName) + \",OU=Users,DC=contoso,DC=com\"", E("displayName=Doe, John"),
	    "'CN=Doe\\, John,OU=Users,DC=contoso,DC=com'" },
	{ "Entra FormatDateTime", "FormatDateTime(CDate(\"12/25/2007\"), \"yyyy-MM-dd\")", E(0), "'2007-12-25'" },
	{ "Entra FormatDateTime of pwdLastSet", "FormatDateTime(DateFromNum(pwdLastSet), \"yyyyMMddHHmmss.0Z\")",
	    E("pwdLastSet:int=130543784930000000"), "'20140905081453.0Z'" },
	{ "Entra IIF with an equality", "IIF(Eq(employeeType, \"Intern\"), \"t-\" + alias, alias)",
	    E("employeeType=Intern", "alias=jdoe"), "'t-jdoe'" },
	{ "Entra InStr", "InStr(\"The quick brown fox\", \"quick\")", E(0), "5" },
	{ "Entra InStr from 3, binary compare", "InStr(\"repEated\", \"e\", 3, vbBinaryCompare)", E(0), "7" },
	{ "Entra InStrRev", "InStrRev(\"abbcdbbbef\", \"bb\")", E(0), "7" },
	{ "Entra IsBitSet", "IsBitSet(&HF, 4)", E(0), "true" },
	{ "Entra IsDate", "IsDate(x)", E("x=2013-01-10"), "true" },
	{ "Entra IsDate not a date", "IsDate(x)", E("x=yesterday"), "false" },
	{ "Entra IsEmpty", "IsEmpty(x)", E("x="), "true" },
	{ "Entra IsEmpty absent", "IsEmpty(x)", E("x:str"), "false" },
	{ "Entra IsGuid then CGuid", "IIF(IsGuid(strAttribute), CGuid(strAttribute), Null)",
	    E("strAttribute=00112233-4455-6677-8899-aabbccddeeff"), "x'33221100554477668899aabbccddeeff'" },
	{ "Entra IsGuid then CGuid, not a GUID", "IIF(IsGuid(strAttribute), CGuid(strAttribute), Null)",
	    E("strAttribute=not a guid"), "null" },
	{ "Entra IsNumeric", "IsNumeric(x)", E("x=42"), "true" },
	{ "Entra IsNumeric not a number", "IsNumeric(x)", E("x=4two"), "false" },
	{ "Entra IsString", "IsString(x)", E("x:int=42"), "true" },
	{ "Entra IsString of binary", "IsString(x)", E("x:bin=00"), "false" },
	{ "Entra IsNull absent", "IsNull(displayName)", E("displayName:str"), "true" },
	{ "Entra IsNull present", "IsNull(displayName)", E("displayName=Joe"), "false" },
	{ "Entra IsNullOrEmpty empty", "IsNullOrEmpty(displayName)", E("displayName="), "true" },
	{ "Entra IsNullOrEmpty absent", "IsNullOrEmpty(displayName)", E("displayName:str"), "true" },
	{ "Entra IsPresent in Switch",
	    "Switch(IsPresent(directManager), directManager, IsPresent(skiplevelManager), skiplevelManager, "
	    "IsPresent(director), director)",
	    E("directManager:ref", "skiplevelManager:ref=cn=boss", "director:ref=cn=top"), "ref'cn=boss'" },
	{ "Entra Item: the primary SMTP address", "Mid(Item(proxyAddresses, Contains(proxyAddresses, \"SMTP:\")), 6)",
	    E("proxyAddresses=smtp:jd@contoso.com", "proxyAddresses=SMTP:john.doe@contoso.com"),
	    "'john.doe@contoso.com'" },
	{ "Entra ItemOrNull out of bounds", "ItemOrNull(proxyAddresses, 3)",
	    E("proxyAddresses=smtp:jd@contoso.com", "proxyAddresses=SMTP:john.doe@contoso.com"), "null" },
	{ "Entra ItemOrNull in bounds", "ItemOrNull(proxyAddresses, 2)",
	    E("proxyAddresses=smtp:jd@contoso.com", "proxyAddresses=SMTP:john.doe@contoso.com"),
	    "'SMTP:john.doe@contoso.com'" },
	{ "Entra Join", "Join(proxyAddresses, \",\")",
	    E("proxyAddresses=SMTP:john.doe@contoso.com", "proxyAddresses=smtp:jd@contoso.com"),
	    "'SMTP:john.doe@contoso.com,smtp:jd@contoso.com'" },
	{ "Entra LCase", "LCase(\"TeSt\")", E(0), "'test'" },
	{ "Entra Left", "Left(\"John Doe\", 3)", E(0), "'Joh'" },
	{ "Entra Len", "Len(\"John Doe\")", E(0), "8" },
	{ "Entra LTrim", "LTrim(\" Test \")", E(0), "'Test '" },
	{ "Entra Mid", "Mid(\"John Doe\", 3, 5)", E(0), "'hn Do'" },
	{ "Entra Mid past the end", "Mid(\"John Doe\", 6, 999)", E(0), "'Doe'" },
	{ "Entra NumFromDate", "NumFromDate(CDate(\"2012-01-01 23:00:00\"))", E(0), "129699324000000000" },
	{ "Entra PadLeft", "PadLeft(\"User\", 10, \"0\")", E(0), "'000000User'" },
	{ "Entra PadRight", "PadRight(\"User\", 10, \"0\")", E(0), "'User000000'" },
	{ "Entra PCase", "PCase(\"TEsT\")", E(0), "'Test'" },
	{ "Entra PCase of LCase", "PCase(LCase(\"TEST\"))", E(0), "'Test'" },
	{ "Entra PCase leaves a word in capitals (an acronym) alone", "PCase(\"TEST\")", E(0), "'TEST'" },
	{ "Entra RandomNum as printed: Random is not a function", "Random(100,999)", E(0), NULL,
	    "t.yaml:1:1: unknown function 'Random' (did you mean 'RandomNum'?)", AT_COMPILE },
	{ "Entra RemoveDuplicates", "RemoveDuplicates(proxyAddresses)",
	    E("proxyAddresses=smtp:a@x", "proxyAddresses=smtp:b@x", "proxyAddresses=smtp:a@x"), "'smtp:a@x', 'smtp:b@x'" },
	{ "Entra Replace", "Replace(address, \"\\r\\n\", \", \")",
	    E("address=One Microsoft Way\r\nRedmond\r\nWA\r\nUSA"), "'One Microsoft Way, Redmond, WA, USA'" },
	{ "Entra ReplaceChars (pattern as meant)", "ReplaceChars(\"Räksmörgås\", p)",
	    E("p=’:,Å:A,Ä:A,Ö:O,å:a,ä:a,ö:o"), "'Raksmorgas'" },
	{ "Entra ReplaceChars removes the apostrophe", "ReplaceChars(\"O’Neil\", p)", E("p=’:,Å:A,Ä:A,Ö:O,å:a,ä:a,ö:o"),
	    "'ONeil'" },
	{ "Entra ReplaceChars with the pattern as printed (ö,o)", "ReplaceChars(\"Räksmörgås\", p)",
	    E("p=’:,Å:A,Ä:A,Ö:O,å:a,ä:a,ö,o"), NULL,
	    "t.yaml:1:28: the pattern of ReplaceChars is not valid at 'ö': expected SOURCE:TARGET", AT_EVAL },
	{ "Entra ReplaceChars several characters for one", "ReplaceChars(\"Gößeβ\", \"ö:oe,ß:ss,β:ss\")", E(0),
	    "'Goessess'" },
	{ "Entra ReplaceChars is case-sensitive, ignores white space", "ReplaceChars(\"Aa\", \" a : x , \")", E(0),
	    "'Ax'" },
	{ "Entra ReplaceChars source of two characters", "ReplaceChars(x, \"ab:c\")", E(0), NULL,
	    "t.yaml:1:17: the pattern of ReplaceChars is not valid at 'ab:c': the source must be one character",
	    AT_COMPILE },
	{ "Entra Right", "Right(\"John Doe\", 3)", E(0), "'Doe'" },
	{ "Entra RTrim", "RTrim(\" Test \")", E(0), "' Test'" },
	{ "Entra Select", "Select($item, otherPhone, Replace($item, \"-\", \"\"))",
	    E("otherPhone=425-555-0100", "otherPhone=425-555-0199"), "'4255550100', '4255550199'" },
	{ "Entra Split", "Split(\"SMTP:john.doe@contoso.com,smtp:jd@contoso.com\", \",\")", E(0),
	    "'SMTP:john.doe@contoso.com', 'smtp:jd@contoso.com'" },
	{ "Entra StringFromGuid", "StringFromGuid(objectGUID)", E("objectGUID:bin=33221100554477668899aabbccddeeff"),
	    "'00112233-4455-6677-8899-aabbccddeeff'" },
	{ "Entra StringFromSid", "StringFromSid(objectSid)",
	    E("objectSid:bin=010500000000000515000000dcf4dc3b833d2b46828ba62800020000"),
	    "'S-1-5-21-1004336348-1177238915-682003330-512'" },
	{ "Entra Switch", "Switch(Eq(city, \"London\"), \"English\", Eq(city, \"Rome\"), \"Italian\", "
	    "Eq(city, \"Paris\"), \"French\", True, Error(\"Unknown city\"))", E("city=Rome"), "'Italian'" },
	{ "Entra Switch reaching its default", "Switch(Eq(city, \"London\"), \"English\", Eq(city, \"Rome\"), "
	    "\"Italian\", Eq(city, \"Paris\"), \"French\", True, Error(\"Unknown city\"))", E("city=Oslo"), NULL,
	    "t.yaml:1:103: Unknown city", AT_EVAL },
	{ "Entra Switch: no condition true", "Switch(Eq(city, \"London\"), \"English\")", E("city=Oslo"), "null" },
	{ "Entra Switch: the first true condition's value is null", "Switch(true, x, true, \"y\")", E("x:str"), "null" },
	{ "Entra Switch with unpaired arguments", "Switch(true, 1, false)", E(0), NULL,
	    "t.yaml:1:17: Switch expects pairs of a condition and a value, got 3 arguments", AT_COMPILE },
	{ "Entra Trim", "Trim(\" Test \")", E(0), "'Test'" },
	{ "Entra Trim every value", "Trim(proxyAddresses)", E("proxyAddresses= smtp:a@x ", "proxyAddresses=smtp:b@x  "),
	    "'smtp:a@x', 'smtp:b@x'" },
	{ "Entra UCase", "UCase(\"TeSt\")", E(0), "'TEST'" },
	{ "Entra Where (certificates by expiry; CertNotAfter is not implemented)",
	    "Where($item, certExpiry, GreaterThan($item, Now()))",
	    E("certExpiry:time=946684800000000", "certExpiry:time=221845392000000000"), "t'9000-01-01T00:00:00Z'" },
	{ "Entra With", "With($unExpired, Where($item, certExpiry, GreaterThan($item, Now())), "
	    "IIF(GreaterThan(Count($unExpired), 0), $unExpired, Null))", E("certExpiry:time=946684800000000"), "null" },
	{ "Entra With, some left", "With($unExpired, Where($item, certExpiry, GreaterThan($item, Now())), "
	    "IIF(GreaterThan(Count($unExpired), 0), $unExpired, Null))",
	    E("certExpiry:time=946684800000000", "certExpiry:time=221845392000000000"), "t'9000-01-01T00:00:00Z'" },
	{ "Entra Word fox", "Word(\"The quick brown fox\",3,\" \")", E(0), "'brown'" },
	{ "Entra Word many separators", "Word(\"This,string!has&many separators\",3,\",!&#\")", E(0), "'has'" },
	{ "Entra Word on every value, then a new domain", "Word(proxyAddresses,1,\"@\") + \"@contoso.com\"",
	    E("proxyAddresses=SMTP:john@fabrikam.com", "proxyAddresses=smtp:jd@fabrikam.com"),
	    "'SMTP:john@contoso.com', 'smtp:jd@contoso.com'" },
	{ "Entra IIF on every value (removing SIP:), written with Where",
	    "Where($a, proxyAddresses, NotEquals(InStr($a, \"SIP:\"), 1))",
	    E("proxyAddresses=SMTP:a@x", "proxyAddresses=SIP:a@x", "proxyAddresses=smtp:b@x"), "'SMTP:a@x', 'smtp:b@x'" },
	{ "Entra hexadecimal literal", "&HFF + &h10", E(0), "271" },
	{ "Entra constants without parentheses", "\"a\" + CRLF + \"b\"", E(0), "'a\r\nb'" },
	{ "Entra parameters are not supported", "%Domain.Netbios% + \"\\\\\" + sAMAccountName", E(0), NULL,
	    "t.yaml:1:1: unexpected character '%' (Entra's %parameters% are not supported; use an attribute)", AT_COMPILE },
	{ "Entra certificate functions are not implemented", "CertThumbprint(userCertificate)", E(0), NULL,
	    "t.yaml:1:1: unknown function 'CertThumbprint'", AT_COMPILE },
};

/* Where MIM and Entra disagree, and the edges both references document. */
static const expr_case_t edge_cases[] = {
	{ "choice: Mid with a negative count gives \"\" (MIM; Entra gives the input)", "Mid(\"John Doe\", 3, -1)", E(0),
	    "''" },
	{ "choice: IsPresent of an empty string is false (Entra)", "IsPresent(x)", E("x="), "false" },
	{ "choice: ProperCase of an all-capitals word (MIM)", "ProperCase(\"NASA TEST\")", E(0), "'Nasa Test'" },
	{ "choice: CStr of a boolean (Entra)", "CStr(true) + CStr(false)", E(0), "'TrueFalse'" },
	{ "Left 0", "Left(\"abc\", 0)", E(0), "''" },
	{ "Left negative gives the input", "Left(\"abc\", -1)", E(0), "'abc'" },
	{ "Left of null gives \"\"", "Left(x, 2)", E("x:str"), "''" },
	{ "Left longer than the string", "Left(\"abc\", 10)", E(0), "'abc'" },
	{ "Left with a null count is null", "Left(\"abc\", n)", E("n:int"), "null" },
	{ "Right 0", "Right(\"abc\", 0)", E(0), "''" },
	{ "Right negative gives the input", "Right(\"abc\", -2)", E(0), "'abc'" },
	{ "Right of null gives \"\"", "Right(x, 2)", E("x:str"), "''" },
	{ "Right longer than the string", "Right(\"abc\", 4)", E(0), "'abc'" },
	{ "Mid 0", "Mid(\"abc\", 1, 0)", E(0), "''" },
	{ "Mid pos past the end gives the input", "Mid(\"abc\", 4, 1)", E(0), "'abc'" },
	{ "Mid pos 0 gives the input", "Mid(\"abc\", 0, 1)", E(0), "'abc'" },
	{ "Mid negative pos gives the input", "Mid(\"abc\", -3, 1)", E(0), "'abc'" },
	{ "Mid of null gives \"\"", "Mid(x, 1, 1)", E("x:str"), "''" },
	{ "Mid fewer remaining", "Mid(\"John Doe\", 7, 5)", E(0), "'oe'" },
	{ "Mid counts characters, not bytes", "Mid(\"Ærøskøbing\", 2, 3)", E(0), "'røs'" },
	{ "Word of null gives \"\"", "Word(x, 1, \" \")", E("x:str"), "''" },
	{ "Word past the last word", "Word(\"a b\", 3, \" \")", E(0), "''" },
	{ "Word after a trailing delimiter", "Word(\"Test;of%function;\", 4, \";$&%\")", E(0), "''" },
	{ "Word with no delimiters is the whole string", "Word(\"a b\", 1, \"\")", E(0), "'a b'" },
	{ "Word with a non-ASCII delimiter", "Word(\"a·b·c\", 2, \"·\")", E(0), "'b'" },
	{ "LeftPad longer than length: unchanged", "LeftPad(\"abcdef\", 3, \"0\")", E(0), "'abcdef'" },
	{ "RightPad equal length: unchanged", "RightPad(\"abc\", 3, \"0\")", E(0), "'abc'" },
	{ "LeftPad with a space", "LeftPad(\"7\", 3, \" \")", E(0), "'  7'" },
	{ "LeftPad of null gives \"\"", "LeftPad(x, 3, \"0\")", E("x:str"), "''" },
	{ "RightPad of null gives \"\"", "RightPad(x, 3, \"0\")", E("x:str"), "''" },
	{ "RightPad with a non-ASCII pad", "RightPad(\"ab\", 4, \"é\")", E(0), "'abéé'" },
	{ "LeftPad pads to characters, not bytes", "LeftPad(\"é\", 3, \"-\")", E(0), "'--é'" },
	{ "LeftPad of an employee number", "LeftPad(CStr(employeeNumber), 6, \"0\")", E("employeeNumber:int=4711"),
	    "'004711'" },
	{ "Len of null is null", "Len(x)", E("x:str"), "null" },
	{ "Len counts characters", "Len(\"Ærøskøbing\")", E(0), "10" },
	{ "Len of every value", "Len(x)", E("x=a", "x=bcd"), "1, 3" },
	{ "UpperCase beyond ASCII", "UpperCase(\"straße müller ÿ\")", E(0), "'STRAßE MÜLLER Ÿ'" },
	{ "LowerCase beyond ASCII", "LowerCase(\"ÅNGSTRÖM ŁÓDŹ ΑΘΗΝΑ МОСКВА Ѐ\")", E(0), "'ångström łódź αθηνα москва ѐ'" },
	{ "LowerCase leaves dotted I alone", "LowerCase(\"İSTANBUL\")", E(0), "'İstanbul'" },
	{ "UpperCase of an unchanged string", "UpperCase(\"ABC 123\")", E(0), "'ABC 123'" },
	{ "ProperCase hyphen and apostrophe are not word breaks", "ProperCase(\"jean-luc o'neil\")", E(0),
	    "'Jean-luc O'neil'" },
	{ "ProperCase beyond ASCII", "ProperCase(\"ÉMILE ZOLA\")", E(0), "'Émile Zola'" },
	{ "ProperCase several spaces", "ProperCase(\"  two  words \")", E(0), "'  Two  Words '" },
	{ "ProperCase digits start a word", "ProperCase(\"1ST FLOOR\")", E(0), "'1st Floor'" },
	{ "ProperCase punctuation before the letter", "ProperCase(\"(john) smith\")", E(0), "'(John) Smith'" },
	{ "Trim tabs, newlines, no-break spaces", "Trim(\"\\t\u00a0x y\\n\")", E(0), "'x y'" },
	{ "Trim of spaces only", "Trim(\"   \")", E(0), "''" },
	{ "ReplaceString every occurrence", "ReplaceString(\"aaa\", \"a\", \"bb\")", E(0), "'bbbbbb'" },
	{ "ReplaceString does not overlap", "ReplaceString(\"aaaa\", \"aa\", \"b\")", E(0), "'bb'" },
	{ "ReplaceString removes", "ReplaceString(\"0711-555-01\", \"-\", \"\")", E(0), "'071155501'" },
	{ "ReplaceString empty old value changes nothing", "ReplaceString(\"abc\", \"\", \"x\")", E(0), "'abc'" },
	{ "ReplaceString tab moniker", "ReplaceString(\"a\\tb\", \"\\t\", \" \")", E(0), "'a b'" },
	{ "EscapeDNComponent comma", "EscapeDNComponent(\"Doe, John\")", E(0), "'Doe\\, John'" },
	{ "EscapeDNComponent every special", "EscapeDNComponent(\"a+b\\\"c\\\\d<e>f;g\")", E(0),
	    "'a\\+b\\\"c\\\\d\\<e\\>f\\;g'" },
	{ "EscapeDNComponent leading space, trailing space", "EscapeDNComponent(\" x \")", E(0), "'\\ x\\ '" },
	{ "EscapeDNComponent leading #, inner # and =", "EscapeDNComponent(\"#1 a#b=c\")", E(0), "'\\#1 a#b=c'" },
	{ "EscapeDNComponent single space", "EscapeDNComponent(\" \")", E(0), "'\\ '" },
	{ "EscapeDNComponent whole RDN: value start escaped", "EscapeDNComponent(\"CN= #x, y \")", E(0),
	    "'CN=\\ #x\\, y\\ '" },
	{ "EscapeDNComponent OID type", "EscapeDNComponent(\"2.5.4.3=#a\")", E(0), "'2.5.4.3=\\#a'" },
	{ "EscapeDNComponent value then RDN", "\"CN=\" + EscapeDNComponent(cn) + \",OU=People\"", E("cn=#Smith, J. "),
	    "'CN=\\#Smith\\, J.\\ ,OU=People'" },
	{ "EscapeDNComponent every value", "EscapeDNComponent(x)", E("x=a,b", "x=c"), "'a\\,b', 'c'" },
	{ "CStr integer", "CStr(employeeNumber)", E("employeeNumber:int=-4711"), "'-4711'" },
	{ "CStr datetime", "CStr(hired)", E("hired:time=1709296200000000"), "'2024-03-01T12:30:00Z'" },
	{ "CStr datetime before 1970 with microseconds", "CStr(t)", E("t:time=-500000"), "'1969-12-31T23:59:59.500000Z'" },
	{ "CStr string", "CStr(\"x\")", E(0), "'x'" },
	{ "CNum", "CNum(\"42\") + CNum(\" -2 \") + CNum(\"&HFF\") + CNum(7)", E(0), "302" },
	{ "CBool strings and numbers", "Concatenate(CStr(CBool(\"True\")), CStr(CBool(\"false\")), CStr(CBool(\"0\")), "
	    "CStr(CBool(5)), CStr(CBool(true)))", E(0), "'TrueFalseFalseTrueTrue'" },
	{ "ConvertFromBase64 named encoding in quotes", "ConvertFromBase64(\"SGVsbG8gd29ybGQh\", \"utf8\")", E(0),
	    "'Hello world!'" },
	{ "ConvertToBase64 UTF8", "ConvertToBase64(\"é\", UTF8)", E(0), "'w6k='" },
	{ "ConvertToBase64 ASCII", "ConvertToBase64(\"Hi\", ASCII)", E(0), "'SGk='" },
	{ "ConvertToBase64 beyond the BMP (UTF-16 surrogates)", "ConvertToBase64(\"😀\")", E(0), "'PdgA3g=='" },
	{ "ConvertFromBase64 round trip beyond the BMP", "ConvertFromBase64(ConvertToBase64(\"a😀é\"))", E(0), "'a😀é'" },
	{ "ConvertFromBase64 without padding", "ConvertFromBase64(\"w6k\", UTF8)", E(0), "'é'" },
	{ "ConvertToBase64 of binary is of the bytes", "ConvertToBase64(objectGUID)", E("objectGUID:bin=000102ff"),
	    "'AAEC/w=='" },
	{ "ConvertToBase64 of the empty string", "ConvertToBase64(\"\")", E(0), "''" },
	/* Entra names: the same function as the MIM name, or Entra's own */
	{ "choice: UCase, LCase, PadLeft, PadRight, Replace are the MIM functions",
	    "UCase(\"a\") + LCase(\"B\") + PadLeft(\"1\", 2, \"0\") + PadRight(\"1\", 2, \"0\") + "
	    "Replace(\"x-y\", \"-\", \"\")",
	    E(0), "'Ab0110xy'" },
	{ "choice: PCase is Entra's (acronyms stay), ProperCase MIM's",
	    "PCase(\"NASA TEsT\") + \"|\" + ProperCase(\"NASA TEsT\")",
	    E(0), "'NASA Test|Nasa Test'" },
	{ "choice: PCase breaks words at '-', not at an apostrophe", "PCase(\"jean-luc o'neil\")", E(0),
	    "'Jean-Luc O'neil'" },
	{ "PCase after an apostrophe lower-cases", "PCase(\"O'NEIL\")", E(0), "'O'neil'" },
	{ "PCase of a word opening with a digit (as .NET's ToTitleCase)", "PCase(\"1st floor\")", E(0), "'1St Floor'" },
	{ "PCase beyond ASCII", "PCase(\"émile ZOLA zoë\")", E(0), "'Émile ZOLA Zoë'" },
	{ "PCase of every value", "PCase(x)", E("x=ab", "x=cD"), "'Ab', 'Cd'" },
	{ "choice: FormatDateTime and DateTimeFormat are one function", "FormatDateTime(\"2024-03-01\", \"dd.MM.yyyy\") + "
	    "DateTimeFormat(t, \" HH:mm\")", E("t:time=1709296200000000"), "'01.03.2024 12:30'" },
	{ "choice: ConvertSidToString and StringFromSid are one function", "Eq(ConvertSidToString(s), StringFromSid(s))",
	    E("s:bin=010100000000000100000000"), "true" },
	{ "choice: Switch evaluates only up to the value chosen", "Switch(true, \"a\", Error(\"never\"), \"b\")", E(0),
	    "'a'" },
	{ "choice: Mid without a count goes to the end", "Mid(\"John Doe\", 6)", E(0), "'Doe'" },
	/* dates */
	{ "CDate of ISO 8601 with an offset and a fraction", "CDate(\"2024-03-01T12:30:00.5+01:30\")", E(0),
	    "t'2024-03-01T11:00:00.500000Z'" },
	{ "CDate of a date alone is midnight UTC", "CDate(\"2024-02-29\")", E(0), "t'2024-02-29T00:00:00Z'" },
	{ "CDate of US dates", "CStr(CDate(\"12/25/2007\")) + \" \" + CStr(CDate(\"1/2/2003 11:05:09 AM\"))", E(0),
	    "'2007-12-25T00:00:00Z 2003-01-02T11:05:09Z'" },
	{ "CDate 12 AM and 12 PM", "CStr(CDate(\"2024-03-01 12:00 AM\")) + \" \" + CStr(CDate(\"2024-03-01 12 pm\"))", E(0),
	    "'2024-03-01T00:00:00Z 2024-03-01T12:00:00Z'" },
	{ "CDate of month names", "CStr(CDate(\"January 10, 2013\")) + \" \" + CStr(CDate(\"10 jan 2013 4:00 PM\"))", E(0),
	    "'2013-01-10T00:00:00Z 2013-01-10T16:00:00Z'" },
	{ "CDate of RFC 1123 (FormatDateTime R)", "CDate(\"Thu, 10 Jan 2013 16:00:00 GMT\")", E(0),
	    "t'2013-01-10T16:00:00Z'" },
	{ "CDate of LDAP generalized time",
	    "CStr(CDate(\"20140905081453.0Z\")) + \" \" + CStr(CDate(\"20140905081453-0130\"))",
	    E(0), "'2014-09-05T08:14:53Z 2014-09-05T09:44:53Z'" },
	{ "CDate of a datetime is the datetime", "CDate(t)", E("t:time=1"), "t'1970-01-01T00:00:00.000001Z'" },
	{ "CDate of every value", "CDate(x)", E("x=2024-01-01", "x=2024-01-02"),
	    "t'2024-01-01T00:00:00Z', t'2024-01-02T00:00:00Z'" },
	{ "CDate of null is null", "CDate(x)", E("x:str"), "null" },
	{ "IsDate checks day, month, hour and weekday",
	    "Concatenate(CStr(IsDate(\"2023-02-29\")), CStr(IsDate(\"2024-13-01\")), "
	    "CStr(IsDate(\"2024-03-01 24:00\")), CStr(IsDate(\"Thu, 01 Mar 2024\")), CStr(IsDate(\"Fri, 01 Mar 2024\")))",
	    E(0), "'FalseFalseFalseFalseTrue'" },
	{ "IsDate of a time without a date", "IsDate(\"4:00 PM\")", E(0), "false" },
	{ "IsDate of two-digit years", "IsDate(\"12/25/07\")", E(0), "false" },
	{ "IsDate of null", "IsDate(x)", E("x:str"), "false" },
	{ "IsDate of every value", "IsDate(x)", E("x=2024-01-01", "x=no"), "false" },
	{ "DateAdd keeps the time, clamps the day", "DateAdd(\"m\", 1, CDate(\"2001-01-31 10:30\"))", E(0),
	    "t'2001-02-28T10:30:00Z'" },
	{ "DateAdd years to a leap day", "DateAdd(yyyy, 1, CDate(\"2024-02-29\"))", E(0), "t'2025-02-28T00:00:00Z'" },
	{ "DateAdd quarters back", "DateAdd(\"q\", -2, CDate(\"2024-03-31\"))", E(0), "t'2023-09-30T00:00:00Z'" },
	{ "DateAdd d y w ww h n s", "Concatenate(CStr(DateAdd(d, 1, t)), \" \", CStr(DateAdd(y, 1, t)), \" \", "
	    "CStr(DateAdd(w, 1, t)), \" \", CStr(DateAdd(ww, 1, t)), \" \", CStr(DateAdd(h, -1, t)), \" \", "
	    "CStr(DateAdd(n, 90, t)), \" \", CStr(DateAdd(s, 61, t)))", E("t:time=1709296200000000"),
	    "'2024-03-02T12:30:00Z 2024-03-02T12:30:00Z 2024-03-02T12:30:00Z 2024-03-08T12:30:00Z 2024-03-01T11:30:00Z "
	    "2024-03-01T14:00:00Z 2024-03-01T12:31:01Z'" },
	{ "DateFromNum of 0 is 1601", "DateFromNum(0)", E(0), "t'1601-01-01T00:00:00Z'" },
	{ "NumFromDate of 1601 is 0", "NumFromDate(DateFromNum(0))", E(0), "0" },
	{ "NumFromDate and DateFromNum round trip", "NumFromDate(DateFromNum(x))", E("x:int=133534128000000000"),
	    "133534128000000000" },
	{ "FormatDateTime custom specifiers",
	    "FormatDateTime(t, \"yyyy yy y MMMM MMM MM M dddd ddd dd d HH H hh h mm m ss s tt t fff FFF zzz zz z K g\")",
	    E("t:time=1709298065007000"),
	    "'2024 24 24 March Mar 03 3 Friday Fri 01 1 13 13 01 1 01 1 05 5 PM P 007 007 +00:00 +00 +0 Z A.D.'" },
	{ "FormatDateTime quotes, escapes and %", "FormatDateTime(t, \"'yyyy' \\\\d \\\"at\\\" %d|%M\")", E("t:time=0"),
	    "'yyyy d at 1|1'" },
	{ "FormatDateTime F drops trailing zeros and a dot before nothing", "FormatDateTime(t, \"ss.FFF|ss.FFF\")",
	    E("t:time=500000"), "'00.5|00.5'" },
	{ "FormatDateTime F with no fraction drops the dot", "FormatDateTime(t, \"HH:mm:ss.FFFFFFF\")", E("t:time=0"),
	    "'00:00:00'" },
	{ "FormatDateTime standard formats", "Join(Select($f, Split(\"d,D,g,G,M,o,R,s,t,T,u,U,Y,f,F\", \",\"), "
	    "FormatDateTime(t, $f)), \"|\")", E("t:time=1709296205000000"),
	    "'03/01/2024|Friday, 01 March 2024|03/01/2024 12:30|03/01/2024 12:30:05|March 01|2024-03-01T12:30:05.0000000Z|"
	    "Fri, 01 Mar 2024 12:30:05 GMT|2024-03-01T12:30:05|12:30|12:30:05|2024-03-01 12:30:05Z|"
	    "Friday, 01 March 2024 12:30:05|2024 March|Friday, 01 March 2024 12:30|Friday, 01 March 2024 12:30:05'" },
	{ "FormatDateTime of an empty format is G", "FormatDateTime(t, \"\")", E("t:time=0"), "'01/01/1970 00:00:00'" },
	{ "FormatDateTime hh at midnight and noon",
	    "FormatDateTime(t, \"hh tt\") + FormatDateTime(DateAdd(h, 12, t), \" h tt\")",
	    E("t:time=0"), "'12 AM 12 PM'" },
	{ "FormatDateTime of a year below 1000 pads", "FormatDateTime(\"0099-12-31\", \"yyyy|yyy|yy|y|yyyyy\")", E(0),
	    "'0099|099|99|99|00099'" },
	{ "FormatDateTime pads a year to any width (wider than a number buffer)",
	    "FormatDateTime(\"2024-01-01\", \"" "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy" "\")", E(0),
	    "'0000000000000000000000000000000000002024'" },
	{ "FormatDateTime of every value", "FormatDateTime(t, \"MM\")", E("t:time=0", "t:time=3000000000000000"),
	    "'01', '01'" },
	/* numbers and bits */
	{ "IsBitSet with a mask of several bits: all set", "IsBitSet(&HF, 6)", E(0), "true" },
	{ "IsBitSet with a mask of several bits: one missing", "IsBitSet(&HB, 6)", E(0), "false" },
	{ "IsBitSet of a disabled account", "IsBitSet(userAccountControl, 2)", E("userAccountControl:int=514"), "true" },
	{ "BitAnd of every value", "BitAnd(x, 1)", E("x:int=3", "x:int=4"), "1, 0" },
	{ "RandomNum with a null bound is null", "RandomNum(x, 5)", E("x:int"), "null" },
	{ "RandomNum with two multi-valued bounds", "RandomNum(x, x)", E("x:int=3", "x:int=4"), NULL,
	    "t.yaml:1:14: RandomNum cannot combine two multi-valued arguments (arguments 1 and 2)" },
	{ "RandomNum with one multi-valued bound", "Count(RandomNum(x, 10))", E("x:int=3", "x:int=4"), "2" },
	{ "hexadecimal literal of 63 bits", "&H7FFFFFFFFFFFFFFF", E(0), "9223372036854775807" },
	/* GUIDs and SIDs */
	{ "CGuid forms", "Concatenate(ConvertToBase64(CGuid(\" 00112233445566778899aabbccddeeff \")), \" \", "
	    "ConvertToBase64(CGuid(\"(00112233-4455-6677-8899-aabbccddeeff)\")))", E(0),
	    "'MyIRAFVEd2aImaq7zN3u/w== MyIRAFVEd2aImaq7zN3u/w=='" },
	{ "CGuid of 16 bytes is those bytes", "CGuid(objectGUID)", E("objectGUID:bin=000102030405060708090a0b0c0d0e0f"),
	    "x'000102030405060708090a0b0c0d0e0f'" },
	{ "StringFromGuid of CGuid round trip", "StringFromGuid(CGuid(\"{382C74C3-721D-4F34-80E5-57657B6CBC27}\"))", E(0),
	    "'382c74c3-721d-4f34-80e5-57657b6cbc27'" },
	{ "IsGuid forms", "Concatenate(CStr(IsGuid(\"382c74c3-721d-4f34-80e5-57657b6cbc27\")), "
	    "CStr(IsGuid(\"382c74c3-721d-4f34-80e557657b6cbc27\")), CStr(IsGuid(\"{382c74c3721d4f3480e557657b6cbc27}\")), "
	    "CStr(IsGuid(\"382c74c3-721d-4f34-80e5-57657b6cbc2g\")), CStr(IsGuid(g)))",
	    E("g:bin=000102030405060708090a0b0c0d0e0f"), "'TrueFalseFalseFalseTrue'" },
	{ "StringFromSid of the well-known Everyone", "StringFromSid(s)", E("s:bin=010100000000000100000000"), "'S-1-1-0'" },
	{ "StringFromSid of an authority of 2^32 or more", "StringFromSid(s)", E("s:bin=0100010203040506"),
	    "'S-1-0x010203040506'" },
	{ "StringFromSid of every value", "StringFromSid(s)", E("s:bin=010100000000000100000000",
	    "s:bin=010100000000000512000000"), "'S-1-1-0', 'S-1-5-18'" },
	{ "ConvertToUTF8Hex beyond ASCII", "ConvertToUTF8Hex(\"é\")", E(0), "'C3A9'" },
	{ "ConvertFromUTF8Hex of lower case", "ConvertFromUTF8Hex(\"c3a9\")", E(0), "'é'" },
	{ "ConvertFromUTF8Hex of nothing", "ConvertFromUTF8Hex(\"\")", E(0), "''" },
	/* searching */
	{ "InStr not found", "InStr(\"abc\", \"d\")", E(0), "0" },
	{ "InStr of an empty string", "InStr(\"\", \"a\")", E(0), "0" },
	{ "InStr of an empty match is the start", "InStr(\"abc\", \"\", 2)", E(0), "2" },
	{ "InStr with a start past the end", "InStr(\"abc\", \"c\", 5)", E(0), "0" },
	{ "InStr counts characters", "InStr(\"Ærøskøbing\", \"ø\", 4)", E(0), "6" },
	{ "InStr vbTextCompare is case-insensitive", "InStr(\"repEated\", \"e\", 3, vbTextCompare)", E(0), "4" },
	{ "InStr vbTextCompare beyond ASCII", "InStr(\"STRAßE ÅSA\", \"å\", 1, \"vbtextcompare\")", E(0), "8" },
	{ "InStr of every value", "InStr(x, \"@\")", E("x=a@b", "x=ab@c", "x=abc"), "2, 3, 0" },
	{ "InStrRev from a start", "InStrRev(\"abbcdbbbef\", \"bb\", 7)", E(0), "6" },
	{ "InStrRev the match must end by the start", "InStrRev(\"abbcdbbbef\", \"bb\", 6)", E(0), "2" },
	{ "InStrRev not found and past the end", "CStr(InStrRev(\"abc\", \"x\")) + CStr(InStrRev(\"abc\", \"a\", 4))", E(0),
	    "'00'" },
	{ "InStrRev of an empty match is the start", "InStrRev(\"abc\", \"\")", E(0), "3" },
	{ "InStrRev vbTextCompare", "InStrRev(\"aXbx\", \"X\", -1, vbTextCompare)", E(0), "4" },
	{ "Contains of null is 0", "Contains(x, \"a\")", E("x:str"), "0" },
	{ "Contains with a null search is null", "Contains(x, y)", E("x=a", "y:str"), "null" },
	{ "Contains CaseInsensitive of references", "Contains(member, \"CN=A,DC=X\", CaseInsensitive)",
	    E("member:ref=cn=ab,dc=x", "member:ref=cn=a,dc=x"), "2" },
	/* distinguished names */
	{ "DNComponent unescapes", "DNComponent(dn, 1)", E("dn:ref=cn=Doe\\, John\\2C Jr.,ou=x"), "'Doe, John, Jr.'" },
	{ "DNComponent past the end is null", "DNComponent(dn, 3)", E("dn=cn=a,ou=b"), "null" },
	{ "DNComponent 0 is null", "DNComponent(dn, 0)", E("dn=cn=a,ou=b"), "null" },
	{ "DNComponent of a multi-valued RDN: the first value", "DNComponent(dn, 1)", E("dn=cn=a+uid=b,ou=c"), "'a'" },
	{ "DNComponent keeps an escaped trailing space", "DNComponent(dn, 1)", E("dn=cn=a\\ , ou=c"), "'a '" },
	{ "DNComponent of every value", "DNComponent(member, 1)", E("member:ref=cn=a,dc=x", "member:ref=cn=b,dc=x"),
	    "'a', 'b'" },
	{ "DNComponent of an empty DN is null", "DNComponent(\"\", 1)", E(0), "null" },
	{ "DNComponentRev DC of the domain alone", "DNComponentRev(\"dc=contoso,dc=com\", 1, DC)", E(0), "null" },
	{ "DNComponentRev 1 is the last", "DNComponentRev(\"cn=a;ou=b;dc=com\", 1)", E(0), "'com'" },
	/* ReplaceChars */
	{ "ReplaceChars with an empty pattern changes nothing", "ReplaceChars(\"abc\", \"\")", E(0), "'abc'" },
	{ "ReplaceChars: the first pair for a character wins", "ReplaceChars(\"a\", \"a:1,a:2\")", E(0), "'1'" },
	{ "ReplaceChars of every value", "ReplaceChars(x, \"-:\")", E("x=a-b", "x=-c-"), "'ab', 'c'" },
	/* tests of values */
	{ "IsNumeric of forms CNum reads", "Concatenate(CStr(IsNumeric(\" -12 \")), CStr(IsNumeric(\"&HFF\")), "
	    "CStr(IsNumeric(\"1.5\")), CStr(IsNumeric(true)), CStr(IsNumeric(7)))", E(0), "'TrueTrueFalseFalseTrue'" },
	{ "IsNumeric of null", "IsNumeric(x)", E("x:str"), "false" },
	{ "IsString of null", "IsString(x)", E("x:str"), "false" },
	{ "IsString of a reference and a datetime", "Concatenate(CStr(IsString(r)), CStr(IsString(t)))",
	    E("r:ref=cn=x", "t:time=0"), "'TrueTrue'" },
	{ "IsEmpty of values all empty", "IsEmpty(x)", E("x=", "x="), "true" },
	{ "IsEmpty of one not empty", "IsEmpty(x)", E("x=", "x=a"), "false" },
	{ "IsEmpty of an empty binary", "IsEmpty(x)", E("x:bin="), "true" },
	{ "IsNullOrEmpty is IsNull or IsEmpty", "Concatenate(CStr(IsNull(x)), CStr(IsEmpty(x)), CStr(IsNullOrEmpty(x)))",
	    E("x="), "'FalseTrueTrue'" },
	/* variables */
	{ "Select of null is null", "Select($x, y, UCase($x))", E("y:str"), "null" },
	{ "Select keeps the body's type", "Select($n, x, $n + 1)", E("x:int=1", "x:int=2"), "2, 3" },
	{ "Select body giving several values", "Select($v, x, Split($v, \",\"))", E("x=a,b", "x=c"), "'a', 'b', 'c'" },
	{ "Select body giving null drops the value", "Select($v, x, IIF(Eq($v, \"b\"), Null, $v))", E("x=a", "x=b", "x=c"),
	    "'a', 'c'" },
	{ "Select nested, the inner variable shadowing", "Select($v, x, Join(Select($v, Split($v, \"-\"), UCase($v)), \"+\"))",
	    E("x=a-b", "x=c"), "'A+B', 'C'" },
	{ "Select with an outer variable inside", "Select($a, x, Select($b, y, $a + $b))", E("x=1", "x=2", "y=a", "y=b"),
	    "'1a', '1b', '2a', '2b'" },
	{ "variable names are case-insensitive", "Select($Item, x, $ITEM)", E("x=a"), "'a'" },
	{ "Where with a null condition drops the value", "Where($v, x, Eq($v, y))", E("x=a", "y:str"), "null" },
	{ "Where keeps references", "Where($m, member, NotEquals(DNComponent($m, 1), \"b\"))",
	    E("member:ref=cn=a,dc=x", "member:ref=cn=b,dc=x"), "ref'cn=a,dc=x'" },
	{ "With evaluates its value once", "With($r, RandomNum(1, 1000000), Eq($r, $r))", E(0), "true" },
	{ "With of null", "With($x, y, IsNull($x))", E("y:str"), "true" },
	{ "Count of Where", "Count(Where($x, y, GreaterThan($x, 1)))", E("y:int=1", "y:int=2", "y:int=3"), "2" },
};

/* Null, multi-valued attributes, the '+' operator, special results, syntax. */
static const expr_case_t value_cases[] = {
	{ "Concatenate", "Concatenate(givenName, \" \", sn)", E("givenName=Britta", "sn=Simon"), "'Britta Simon'" },
	{ "Concatenate with a null argument is null", "Concatenate(givenName, \" \", sn)", E("givenName=Britta", "sn:str"),
	    "null" },
	{ "Concatenate one argument", "Concatenate(sn)", E("sn=Simon"), "'Simon'" },
	{ "+ on strings", "givenName + \".\" + sn + \"@example.com\"", E("givenName=britta", "sn=simon"),
	    "'britta.simon@example.com'" },
	{ "+ with a null operand is null", "\"t-\" + alias", E("alias:str"), "null" },
	{ "+ with Coalesce for an optional part", "givenName + Coalesce(\" \" + initials, \"\") + \" \" + sn",
	    E("givenName=Britta", "initials:str", "sn=Simon"), "'Britta Simon'" },
	{ "+ on integers adds", "1 + 2 + salary", E("salary:int=50000"), "50003" },
	{ "+ on unknown types decides at evaluation: strings", "a + b", E("a=x", "b=y"), "'xy'" },
	{ "+ on unknown types decides at evaluation: integers", "a + b", E("a:int=40", "b:int=2"), "42" },
	{ "+ reads references as strings", "\"manager: \" + manager", E("manager:ref=cn=boss"), "'manager: cn=boss'" },
	{ "+ over every value", "\"smtp:\" + LowerCase(mail)", E("mail=A@X", "mail=B@X"), "'smtp:a@x', 'smtp:b@x'" },
	{ "parentheses group", "(\"a\" + (\"b\" + \"c\"))", E(0), "'abc'" },
	{ "LowerCase of every value", "LowerCase(proxyAddresses)", E("proxyAddresses=SMTP:A@X", "proxyAddresses=smtp:B@x"),
	    "'smtp:a@x', 'smtp:b@x'" },
	{ "LowerCase of null is null", "LowerCase(x)", E("x:str"), "null" },
	{ "absent attribute is null", "x", E(0), "null" },
	{ "attribute declared multi-valued, holding one value", "x", E("x:int*=1"), "1" },
	{ "attribute reference passes references", "manager", E("manager:ref=cn=boss,dc=x"), "ref'cn=boss,dc=x'" },
	{ "attribute of booleans", "flag", E("flag:bool=true"), "true" },
	{ "attribute of binary", "guid", E("guid:bin=00ff"), "x'00ff'" },
	{ "attribute of datetimes", "t", E("t:time=1709296200000000"), "t'2024-03-01T12:30:00Z'" },
	{ "attribute names are case-insensitive", "GIVENNAME + givenname", E("givenName=B"), "'BB'" },
	{ "bracketed attribute name", "[display name] + [ x.y ]", E("display name=D", "x.y=!"), "'D!'" },
	{ "function names are case-insensitive", "lowercase(\"A\") + LOWERCASE(\"B\") + lOwErCaSe(\"C\")", E(0), "'abc'" },
	{ "true and false in any case", "IIF(TRUE, False, true)", E(0), "false" },
	{ "negative integer literal", "-5", E(0), "-5" },
	{ "largest and smallest integers", "CStr(9223372036854775807) + CStr(-9223372036854775808)", E(0),
	    "'9223372036854775807-9223372036854775808'" },
	{ "string escapes", "\"q\\\"b\\\\\"", E(0), "'q\"b\\'" },
	{ "multi-line expression", "Concatenate(\n\tgivenName,\n\t\" \",\n\tsn)", E("givenName=a", "sn=b"), "'a b'" },
	{ "Split with a limit", "Split(\"a,b,c\", \",\", 2)", E(0), "'a', 'b,c'" },
	{ "Split keeps empty pieces", "Split(\"a,,b\", \",\")", E(0), "'a', '', 'b'" },
	{ "Split of an empty string", "Split(\"\", \",\")", E(0), "''" },
	{ "Split every value", "Split(x, \";\")", E("x=a;b", "x=c"), "'a', 'b', 'c'" },
	{ "Split with a non-ASCII delimiter", "Split(\"a·b\", \"·\")", E(0), "'a', 'b'" },
	{ "Split of null", "Split(x, \",\")", E("x:str"), "null" },
	{ "Join with the default delimiter", "Join(x)", E("x=a", "x=b"), "'a b'" },
	{ "Join with a null delimiter joins without one", "Join(x, Null())", E("x=a", "x=b"), "'ab'" },
	{ "Join of null", "Join(x, \",\")", E("x:str"), "null" },
	{ "Join of one value", "Join(x, \",\")", E("x=a"), "'a'" },
	{ "Join after Split", "Join(Split(\"a b c\", \" \"), \"-\")", E(0), "'a-b-c'" },
	{ "Count", "Count(proxyAddresses)", E("proxyAddresses=a", "proxyAddresses=b", "proxyAddresses=c"), "3" },
	{ "Count of null is 0", "Count(x)", E("x:str"), "0" },
	{ "Count of Split", "Count(Split(\"a,b\", \",\"))", E(0), "2" },
	{ "Item", "Item(x, 2)", E("x=a", "x=b", "x=c"), "'b'" },
	{ "Item keeps the type", "Item(x, 1)", E("x:int=7", "x:int=8"), "7" },
	{ "Item with a null index", "Item(x, n)", E("x=a", "n:int"), "null" },
	{ "RemoveDuplicates keeps first occurrences in order", "RemoveDuplicates(x)", E("x=b", "x=a", "x=b", "x=c", "x=a"),
	    "'b', 'a', 'c'" },
	{ "RemoveDuplicates is exact", "RemoveDuplicates(x)", E("x=a", "x=A"), "'a', 'A'" },
	{ "RemoveDuplicates of null", "RemoveDuplicates(x)", E("x:str"), "null" },
	{ "RemoveDuplicates of LowerCase", "RemoveDuplicates(LowerCase(x))", E("x=a", "x=A"), "'a'" },
	{ "Eq with a multi-valued attribute: any value", "Eq(objectClass, \"user\")",
	    E("objectClass=top", "objectClass=person", "objectClass=user"), "true" },
	{ "Eq is case-sensitive", "Eq(x, \"User\")", E("x=user"), "false" },
	{ "Eq of null is false", "Eq(x, \"a\")", E("x:str"), "false" },
	{ "Eq of two nulls is false", "Eq(x, y)", E("x:str", "y:str"), "false" },
	{ "NotEquals of null is true", "NotEquals(EmployeeType, \"Contractor\")", E("EmployeeType:str"), "true" },
	{ "Eq compares a reference with a string", "Eq(manager, \"cn=boss\")", E("manager:ref=cn=boss"), "true" },
	{ "Eq integers and booleans", "Concatenate(CStr(Eq(1, 1)), CStr(Eq(true, false)))", E(0), "'TrueFalse'" },
	{ "LessThan with null is false", "LessThan(x, 5)", E("x:int"), "false" },
	{ "LessThan on datetimes", "LessThan(a, b)", E("a:time=1", "b:time=2"), "true" },
	{ "GreaterThan any value", "GreaterThan(x, 5)", E("x:int=1", "x:int=9"), "true" },
	{ "IsNull of Null()", "IsNull(Null())", E(0), "true" },
	{ "IsPresent of Null()", "IsPresent(Null())", E(0), "false" },
	{ "IsNullOrEmpty of a space", "IsNullOrEmpty(\" \")", E(0), "false" },
	{ "IsPresent of values one non-empty", "IsPresent(x)", E("x=", "x=a"), "true" },
	{ "IsPresent of a false boolean", "IsPresent(x)", E("x:bool=false"), "true" },
	{ "Coalesce takes the first present", "Coalesce(a, b, \"c\")", E("a:str", "b=B"), "'B'" },
	{ "Coalesce skips empty strings", "Coalesce(a, \"x\")", E("a="), "'x'" },
	{ "Coalesce gives the last when none is present", "Coalesce(a, b)", E("a:str", "b="), "''" },
	{ "Coalesce of nulls", "Coalesce(a, b)", E("a:str", "b:str"), "null" },
	{ "Coalesce does not evaluate past the one taken", "Coalesce(\"x\", Error(\"never\"))", E(0), "'x'" },
	{ "Coalesce keeps every value", "Coalesce(a, b)", E("a=1", "a=2", "b=3"), "'1', '2'" },
	{ "IIF evaluates only the branch taken", "IIF(true, \"ok\", Error(\"never\"))", E(0), "'ok'" },
	{ "IIF with a null condition takes the false branch", "IIF(flag, \"y\", \"n\")", E("flag:bool"), "'n'" },
	{ "IIF branches of reference and string", "IIF(c, manager, \"none\")", E("c:bool=true", "manager:ref=cn=m"),
	    "'cn=m'" },
	{ "IIF passes multi-valued branches", "IIF(true, x, Null())", E("x=a", "x=b"), "'a', 'b'" },
	{ "Null()", "Null()", E(0), "null" },
	{ "Null written bare", "Null", E(0), "null" },
	{ "AuthoritativeNull()", "AuthoritativeNull()", E(0), "authoritative-null" },
	{ "IgnoreThisFlow written bare", "IgnoreThisFlow", E(0), "ignore-flow" },
	{ "AuthoritativeNull as an IIF branch", "IIF(IsPresent(x), x, AuthoritativeNull())", E("x:str"),
	    "authoritative-null" },
	{ "IgnoreThisFlow in a nested IIF branch", "IIF(IsPresent(x), x, IIF(true, IgnoreThisFlow(), Null()))", E("x:str"),
	    "ignore-flow" },
	{ "the IIF branch not taken leaves no flag", "IIF(IsPresent(x), x, AuthoritativeNull())", E("x=v"), "'v'" },
	{ "many arguments", "Concatenate(\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",x)", E("x=l"),
	    "'abcdefghijkl'" },
	{ "many arguments, one multi-valued", "Concatenate(\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",x)",
	    E("x=1", "x=2"), "'abcdefghi1', 'abcdefghi2'" },
	{ "want string: a reference is delivered as a string", "manager", E("manager:ref=cn=m"), "'cn=m'", NULL, 0,
	    LOOM_EXPR_STRING },
	{ "want reference: a string is delivered as a reference", "\"cn=\" + cn + \",dc=x\"", E("cn=a"), "ref'cn=a,dc=x'",
	    NULL, 0, LOOM_EXPR_REF },
	{ "want integer: Null fits", "Null()", E(0), "null", NULL, 0, LOOM_EXPR_INT },
};

/* Compile errors: exact messages and columns. */
static const expr_case_t compile_errors[] = {
	{ "unknown function, with a suggestion", "Lefft(givenName, 1)", E("givenName=a"), NULL,
	    "t.yaml:1:1: unknown function 'Lefft' (did you mean 'Left'?)", AT_COMPILE },
	{ "unknown function, case-insensitive suggestion", "uppercas(x)", E(0), NULL,
	    "t.yaml:1:1: unknown function 'uppercas' (did you mean 'UpperCase'?)", AT_COMPILE },
	{ "unknown function, another name", "x + Substring(x, 1, 2)", E(0), NULL,
	    "t.yaml:1:5: unknown function 'Substring' (did you mean 'Mid'?)", AT_COMPILE },
	{ "unknown function, nothing close", "Frobnicate(1)", E(0), NULL, "t.yaml:1:1: unknown function 'Frobnicate'",
	    AT_COMPILE },
	{ "too many arguments", "Left(givenName, 1, 2)", E("givenName=a"), NULL, "t.yaml:1:20: Left expects 2 arguments, got 3",
	    AT_COMPILE },
	{ "too few arguments", "Mid(\"abc\")", E(0), NULL, "t.yaml:1:10: Mid expects 2 or 3 arguments, got 1", AT_COMPILE },
	{ "arguments to a function without", "Null(1)", E(0), NULL, "t.yaml:1:6: Null expects no arguments, got 1",
	    AT_COMPILE },
	{ "no argument to a variadic function", "Concatenate()", E(0), NULL,
	    "t.yaml:1:13: Concatenate expects at least 1 argument, got 0", AT_COMPILE },
	{ "optional argument range", "Split(\"a\")", E(0), NULL, "t.yaml:1:10: Split expects 2 or 3 arguments, got 1",
	    AT_COMPILE },
	{ "argument type: literal", "Left(givenName, \"3\")", E("givenName=a"), NULL,
	    "t.yaml:1:17: argument 2 of Left must be an integer, got a string", AT_COMPILE },
	{ "argument type: not a boolean condition", "IIF(\"yes\", 1, 2)", E(0), NULL,
	    "t.yaml:1:5: argument 1 of IIF must be a boolean, got a string", AT_COMPILE },
	{ "argument type: several accepted", "LessThan(\"a\", \"b\")", E(0), NULL,
	    "t.yaml:1:10: argument 1 of LessThan must be an integer or a datetime, got a string", AT_COMPILE },
	{ "argument type: Error takes a string", "Error(1)", E(0), NULL,
	    "t.yaml:1:7: argument 1 of Error must be a string, got an integer", AT_COMPILE },
	{ "unterminated string", "Left(\"abc, 3)", E(0), NULL, "t.yaml:1:6: unterminated string (missing closing '\"')",
	    AT_COMPILE },
	{ "unterminated string ending in a backslash", "\"abc\\", E(0), NULL,
	    "t.yaml:1:1: unterminated string (missing closing '\"')", AT_COMPILE },
	{ "unexpected token", "Left(,3)", E(0), NULL, "t.yaml:1:6: expected a value, found ','", AT_COMPILE },
	{ "missing operand", "givenName +", E(0), NULL, "t.yaml:1:12: expected a value, found the end of the expression",
	    AT_COMPILE },
	{ "missing comma", "Left(givenName 3)", E(0), NULL,
	    "t.yaml:1:16: expected ',' or ')' after argument 1 of Left, found '3'", AT_COMPILE },
	{ "after the last argument", "Left(givenName, 3 4)", E(0), NULL,
	    "t.yaml:1:19: expected ')' after the arguments of Left, found '4'", AT_COMPILE },
	{ "unclosed call", "Left(givenName, 3", E(0), NULL,
	    "t.yaml:1:18: expected ')' after the arguments of Left, found the end of the expression", AT_COMPILE },
	{ "unclosed parenthesis", "(givenName + sn", E(0), NULL,
	    "t.yaml:1:16: expected ')' to close the '(' at 1:1, found the end of the expression", AT_COMPILE },
	{ "trailing garbage", "Left(givenName, 3) x", E(0), NULL,
	    "t.yaml:1:20: expected '+' or the end of the expression, found 'x'", AT_COMPILE },
	{ "trailing parenthesis", "givenName)", E(0), NULL,
	    "t.yaml:1:10: expected '+' or the end of the expression, found ')'", AT_COMPILE },
	{ "trailing string", "givenName \"x\"", E(0), NULL,
	    "t.yaml:1:11: expected '+' or the end of the expression, found a string", AT_COMPILE },
	{ "empty expression", "", E(0), NULL, "t.yaml:1:1: empty expression", AT_COMPILE },
	{ "blank expression", "  \t", E(0), NULL, "t.yaml:1:4: empty expression", AT_COMPILE },
	{ "unexpected character &", "givenName & sn", E(0), NULL,
	    "t.yaml:1:11: unexpected character '&' (concatenate with '+')", AT_COMPILE },
	{ "unexpected character =", "IIF(a = b, 1, 2)", E(0), NULL,
	    "t.yaml:1:7: unexpected character '=' (compare with Eq, NotEquals, LessThan or GreaterThan)", AT_COMPILE },
	{ "single quotes", "Left('a', 1)", E(0), NULL,
	    "t.yaml:1:6: unexpected character ''' (strings are written in double quotes)", AT_COMPILE },
	{ "non-ASCII character", "a · b", E(0), NULL, "t.yaml:1:3: unexpected character '·'", AT_COMPILE },
	{ "integer out of range", "99999999999999999999", E(0), NULL,
	    "t.yaml:1:1: integer '99999999999999999999' is out of range", AT_COMPILE },
	{ "integer just out of range", "9223372036854775808", E(0), NULL,
	    "t.yaml:1:1: integer '9223372036854775808' is out of range", AT_COMPILE },
	{ "unknown escape", "\"a\\qb\"", E(0), NULL,
	    "t.yaml:1:3: unknown escape '\\q' in a string (the escapes are \\\" \\\\ \\n \\r \\t)", AT_COMPILE },
	{ "unterminated attribute name", "[display name", E(0), NULL,
	    "t.yaml:1:1: unterminated attribute name (missing ']')", AT_COMPILE },
	{ "empty attribute name", "x + [ ]", E(0), NULL, "t.yaml:1:5: empty attribute name '[]'", AT_COMPILE },
	{ "'+' mixing a string and an integer", "\"a\" + 1", E(0), NULL,
	    "t.yaml:1:7: operator '+' cannot combine a string and an integer (convert with CStr or CNum)", AT_COMPILE },
	{ "'+' with a boolean", "true + 1", E(0), NULL, "t.yaml:1:1: operator '+' needs strings or integers, got a boolean",
	    AT_COMPILE },
	{ "unknown attribute, strict", "givnName", E("givenName=a"), NULL, "t.yaml:1:1: unknown attribute 'givnName'",
	    STRICT | AT_COMPILE },
	{ "result type not the one wanted", "Len(givenName)", E("givenName=a"), NULL,
	    "t.yaml:1:1: the expression gives an integer, expected a string", AT_COMPILE, LOOM_EXPR_STRING },
	{ "result type not the one wanted, located at its start", "  1 + 2", E(0), NULL,
	    "t.yaml:1:3: the expression gives an integer, expected a boolean", AT_COMPILE, LOOM_EXPR_BOOL },
	{ "AuthoritativeNull inside a function", "LowerCase(AuthoritativeNull())", E(0), NULL,
	    "t.yaml:1:11: AuthoritativeNull can only be the whole expression or a branch of IIF", AT_COMPILE },
	{ "IgnoreThisFlow as an argument", "Concatenate(\"a\", IgnoreThisFlow)", E(0), NULL,
	    "t.yaml:1:18: IgnoreThisFlow can only be the whole expression or a branch of IIF", AT_COMPILE },
	{ "AuthoritativeNull as an IIF condition", "IIF(AuthoritativeNull(), 1, 2)", E(0), NULL,
	    "t.yaml:1:5: AuthoritativeNull can only be the whole expression or a branch of IIF", AT_COMPILE },
	{ "AuthoritativeNull in an IIF used by a function", "Len(IIF(true, \"a\", AuthoritativeNull()))", E(0), NULL,
	    "t.yaml:1:20: AuthoritativeNull can only be the whole expression or a branch of IIF", AT_COMPILE },
	{ "enum argument not allowed", "ConvertFromBase64(x, UTF16)", E(0), NULL,
	    "t.yaml:1:22: argument 2 of ConvertFromBase64 must be one of Unicode, UTF8, ASCII, got 'UTF16'", AT_COMPILE },
	{ "enum argument as an expression", "ConvertFromBase64(x, Left(\"UTF8\", 4))", E(0), NULL,
	    "t.yaml:1:22: argument 2 of ConvertFromBase64 must be one of Unicode, UTF8, ASCII, got an expression",
	    AT_COMPILE },
	{ "IIF branches of different types", "IIF(true, \"a\", 1)", E(0), NULL,
	    "t.yaml:1:16: the branches of IIF have different types: a string and an integer", AT_COMPILE },
	{ "Coalesce arguments of different types", "Coalesce(Null(), 1, \"a\")", E(0), NULL,
	    "t.yaml:1:21: the arguments of Coalesce have different types: an integer and a string", AT_COMPILE },
	{ "Eq of a string and an integer", "Eq(\"a\", 1)", E(0), NULL,
	    "t.yaml:1:9: Eq cannot compare a string with an integer", AT_COMPILE },
	{ "LessThan of an integer and a datetime", "LessThan(1, t)", E("t:time=1"), NULL,
	    "t.yaml:1:13: LessThan cannot compare an integer with a datetime", TYPED_ONLY | AT_COMPILE },
	{ "Split delimiter literal of two characters", "Split(x, \",;\")", E(0), NULL,
	    "t.yaml:1:10: the delimiter of Split must be one character, got ',;'", AT_COMPILE },
	{ "Split limit literal below 1", "Split(x, \",\", 0)", E(0), NULL,
	    "t.yaml:1:15: the limit of Split must be at least 1, got 0", AT_COMPILE },
	{ "pad character literal of two characters", "LeftPad(x, 5, \"ab\")", E(0), NULL,
	    "t.yaml:1:15: the pad character of LeftPad must be one character, got 'ab'", AT_COMPILE },
	{ "invalid wanted type", "1", E(0), NULL, "t.yaml:1:1: invalid wanted type 9", AT_COMPILE, 9 },
	{ "hexadecimal literal out of range", "&H8000000000000000", E(0), NULL,
	    "t.yaml:1:1: integer '&H8000000000000000' is out of range", AT_COMPILE },
	{ "& without H is not a literal", "&HG", E(0), NULL, "t.yaml:1:1: unexpected character '&' (concatenate with '+')",
	    AT_COMPILE },
	{ "DateAdd interval not known", "DateAdd(\"mm\", 1, Now())", E(0), NULL,
	    "t.yaml:1:9: argument 1 of DateAdd must be one of yyyy, q, m, y, d, w, ww, h, n, s, got 'mm'", AT_COMPILE },
	{ "InStr compare not known", "InStr(x, \"a\", 1, TextCompare)", E(0), NULL,
	    "t.yaml:1:18: argument 4 of InStr must be one of vbBinaryCompare, vbTextCompare, got 'TextCompare'", AT_COMPILE },
	{ "Contains case type not known", "Contains(x, \"a\", IgnoreCase)", E(0), NULL,
	    "t.yaml:1:18: argument 3 of Contains must be one of CaseSensitive, CaseInsensitive, got 'IgnoreCase'",
	    AT_COMPILE },
	{ "DNComponentRev option not known", "DNComponentRev(x, 1, OU)", E(0), NULL,
	    "t.yaml:1:22: argument 3 of DNComponentRev must be one of DC, got 'OU'", AT_COMPILE },
	{ "format literal not valid: unclosed quote", "FormatDateTime(Now(), \"yyyy 'at\")", E(0), NULL,
	    "t.yaml:1:23: FormatDateTime cannot use the format 'yyyy 'at': a quoted text is not closed", AT_COMPILE },
	{ "format literal not valid: eight fraction digits", "FormatDateTime(Now(), \"ffffffff\")", E(0), NULL,
	    "t.yaml:1:23: FormatDateTime cannot use the format 'ffffffff': more than 7 fraction digits", AT_COMPILE },
	{ "format literal not valid: unknown standard format", "FormatDateTime(Now(), \"x\")", E(0), NULL,
	    "t.yaml:1:23: FormatDateTime cannot use the format 'x': a format of one character must be a standard format "
	    "(d D f F g G M o R s t T u U Y)", AT_COMPILE },
	{ "format literal not valid: %%", "FormatDateTime(Now(), \"%%\")", E(0), NULL,
	    "t.yaml:1:23: FormatDateTime cannot use the format '%%': '%' must be followed by one format character",
	    AT_COMPILE },
	{ "ReplaceChars pattern literal: no colon", "ReplaceChars(x, \"a:b,c\")", E(0), NULL,
	    "t.yaml:1:17: the pattern of ReplaceChars is not valid at 'c': expected SOURCE:TARGET", AT_COMPILE },
	{ "ReplaceChars pattern literal: colon in the target", "ReplaceChars(x, \"a:b:c\")", E(0), NULL,
	    "t.yaml:1:17: the pattern of ReplaceChars is not valid at 'a:b:c': a target cannot hold ':'", AT_COMPILE },
	{ "Select without a variable", "Select(item, x, x)", E(0), NULL,
	    "t.yaml:1:8: argument 1 of Select must be a variable such as $item", AT_COMPILE },
	{ "variable used outside its function", "Select($item, x, $item) + $item", E(0), NULL,
	    "t.yaml:1:27: unknown variable '$item' (variables are declared by Select, Where and With)", AT_COMPILE },
	{ "variable used in the list it ranges over", "Select($item, $item, 1)", E(0), NULL,
	    "t.yaml:1:15: unknown variable '$item' (variables are declared by Select, Where and With)", AT_COMPILE },
	{ "$ without a name", "Select($, x, 1)", E(0), NULL, "t.yaml:1:8: expected a variable name after '$'",
	    AT_COMPILE },
	{ "Where condition not a boolean", "Where($v, x, \"yes\")", E(0), NULL,
	    "t.yaml:1:14: argument 3 of Where must be a boolean, got a string", AT_COMPILE },
	{ "Switch condition not a boolean", "Switch(true, 1, \"no\", 2)", E(0), NULL,
	    "t.yaml:1:17: argument 3 of Switch must be a boolean, got a string", AT_COMPILE },
	{ "Switch values of different types", "Switch(true, 1, false, \"a\")", E(0), NULL,
	    "t.yaml:1:24: the values of Switch have different types: an integer and a string", AT_COMPILE },
	{ "AuthoritativeNull as a Switch value", "Switch(IsPresent(x), x, true, AuthoritativeNull)", E("x=a"), "'a'" },
	{ "AuthoritativeNull as a Switch condition", "Switch(AuthoritativeNull, 1)", E(0), NULL,
	    "t.yaml:1:8: AuthoritativeNull can only be the whole expression or a branch of IIF", AT_COMPILE },
	{ "AuthoritativeNull in a Select", "Select($v, x, AuthoritativeNull)", E(0), NULL,
	    "t.yaml:1:15: AuthoritativeNull can only be the whole expression or a branch of IIF", AT_COMPILE },
	{ "Now takes no arguments", "Now(1)", E(0), NULL, "t.yaml:1:5: Now expects no arguments, got 1", AT_COMPILE },
	{ "Guid needs its parentheses: guid is an attribute", "guid", E("guid=g"), "'g'" },
};

/* Errors that depend on the attributes' types: found at compile time when
 * they are known, at evaluation otherwise, with the same text. */
static const expr_case_t type_errors[] = {
	{ "string function on an integer attribute", "Left(salary, 3)", E("salary:int=50000"), NULL,
	    "t.yaml:1:6: argument 1 of Left must be a string, got an integer" },
	{ "integer argument from a string attribute", "Left(x, n)", E("x=abc", "n=3"), NULL,
	    "t.yaml:1:9: argument 2 of Left must be an integer, got a string" },
	{ "'+' of a string attribute and an integer attribute", "givenName + salary", E("givenName=B", "salary:int=1"),
	    NULL, "t.yaml:1:13: operator '+' cannot combine a string and an integer (convert with CStr or CNum)" },
	{ "'+' of a literal string and an integer attribute", "\"a\" + x", E("x:int=1"), NULL,
	    "t.yaml:1:7: operator '+' cannot combine a string and an integer (convert with CStr or CNum)" },
	{ "'+' with a boolean attribute", "x + y", E("x=a", "y:bool=true"), NULL,
	    "t.yaml:1:5: operator '+' needs strings or integers, got a boolean" },
	{ "two multi-valued arguments", "Concatenate(proxyAddresses, otherMailbox)",
	    E("proxyAddresses=a", "proxyAddresses=b", "otherMailbox=c", "otherMailbox=d"), NULL,
	    "t.yaml:1:29: Concatenate cannot combine two multi-valued arguments (arguments 1 and 2)" },
	{ "two multi-valued operands of '+'", "x + y", E("x=a", "x=b", "y=c", "y=d"), NULL,
	    "t.yaml:1:5: operator '+' cannot combine two multi-valued arguments (arguments 1 and 2)" },
	{ "CStr of binary", "CStr(guid)", E("guid:bin=00"), NULL,
	    "t.yaml:1:6: argument 1 of CStr must be a string, an integer, a boolean, a datetime or a reference, "
	    "got a binary value" },
	{ "Eq of a string attribute and an integer", "Eq(x, 1)", E("x=a"), NULL,
	    "t.yaml:1:7: Eq cannot compare a string with an integer" },
	{ "IIF condition not a boolean", "IIF(x, 1, 2)", E("x=yes"), NULL,
	    "t.yaml:1:5: argument 1 of IIF must be a boolean, got a string" },
	{ "result type not the one wanted", "x", E("x=a"), NULL, "t.yaml:1:1: the expression gives a string, expected an integer",
	    0, LOOM_EXPR_INT },
	{ "DateAdd of a string", "DateAdd(d, 1, x)", E("x=2024-01-01"), NULL,
	    "t.yaml:1:15: argument 3 of DateAdd must be a datetime, got a string" },
	{ "FormatDateTime of an integer", "FormatDateTime(x, \"yyyy\")", E("x:int=2024"), NULL,
	    "t.yaml:1:16: argument 1 of FormatDateTime must be a string or a datetime, got an integer" },
	{ "NumFromDate of a string", "NumFromDate(x)", E("x=2024-01-01"), NULL,
	    "t.yaml:1:13: argument 1 of NumFromDate must be a datetime, got a string" },
	{ "BitAnd of a string", "BitAnd(x, 1)", E("x=1"), NULL,
	    "t.yaml:1:8: argument 1 of BitAnd must be an integer, got a string" },
	{ "StringFromGuid of a string", "StringFromGuid(x)", E("x=00112233-4455-6677-8899-aabbccddeeff"), NULL,
	    "t.yaml:1:16: argument 1 of StringFromGuid must be a binary value, got a string" },
	{ "StringFromSid of an integer", "StringFromSid(x)", E("x:int=1"), NULL,
	    "t.yaml:1:15: argument 1 of StringFromSid must be a binary value, got an integer" },
	{ "InStr of an integer", "InStr(x, \"1\")", E("x:int=1"), NULL,
	    "t.yaml:1:7: argument 1 of InStr must be a string, got an integer" },
	{ "Contains of integers", "Contains(x, \"1\")", E("x:int=1"), NULL,
	    "t.yaml:1:10: argument 1 of Contains must be a string or a reference, got an integer" },
	{ "Where condition from an attribute not a boolean", "Where($v, x, y)", E("x=a", "y=yes"), NULL,
	    "t.yaml:1:14: argument 3 of Where must be a boolean, got a string" },
	{ "variable of integers where a string is wanted", "Select($v, x, UCase($v))", E("x:int=1"), NULL,
	    "t.yaml:1:21: argument 1 of UCase must be a string, got an integer" },
	{ "Switch condition from an attribute not a boolean", "Switch(c, 1)", E("c=yes"), NULL,
	    "t.yaml:1:8: argument 1 of Switch must be a boolean, got a string" },
	{ "RandomNum of strings", "RandomNum(a, 2)", E("a=1"), NULL,
	    "t.yaml:1:11: argument 1 of RandomNum must be an integer, got a string" },
};

/* Run-time errors. */
static const expr_case_t eval_errors[] = {
	{ "Error()", "Error(\"no \" + \"luck\")", E(0), NULL, "t.yaml:1:1: no luck", AT_EVAL },
	{ "Error() with a null message", "Error(x)", E("x:str"), NULL, "t.yaml:1:1: Error called with a null message",
	    AT_EVAL },
	{ "Coalesce reaching an Error", "Coalesce(x, Error(\"x is required\"))", E("x:str"), NULL,
	    "t.yaml:1:13: x is required", AT_EVAL },
	{ "CNum of text", "CNum(\"abc\")", E(0), NULL, "t.yaml:1:1: CNum cannot convert 'abc' to an integer", AT_EVAL },
	{ "CNum out of range", "CNum(\"9223372036854775808\")", E(0), NULL,
	    "t.yaml:1:1: CNum cannot convert '9223372036854775808' to an integer", AT_EVAL },
	{ "CNum of an empty string", "CNum(\" \")", E(0), NULL, "t.yaml:1:1: CNum cannot convert ' ' to an integer", AT_EVAL },
	{ "CBool of text", "CBool(\"maybe\")", E(0), NULL, "t.yaml:1:1: CBool cannot convert 'maybe' to a boolean", AT_EVAL },
	{ "Item out of range", "Item(proxyAddresses, 4)", E("proxyAddresses=a", "proxyAddresses=b", "proxyAddresses=c"),
	    NULL, "t.yaml:1:22: Item index 4 is out of range (1 to 3)", AT_EVAL },
	{ "Item index 0", "Item(x, 0)", E("x=a"), NULL, "t.yaml:1:9: Item index 0 is out of range (1 to 1)", AT_EVAL },
	{ "Item of null", "Item(x, 1)", E("x:str"), NULL, "t.yaml:1:9: Item index 1 is out of range (the list is empty)",
	    AT_EVAL },
	{ "Item with several indexes", "Item(x, n)", E("x=a", "n:int=1", "n:int=2"), NULL,
	    "t.yaml:1:9: the index of Item has 2 values, expected one", AT_EVAL },
	{ "Split delimiter from an attribute", "Split(x, d)", E("x=a", "d=,;"), NULL,
	    "t.yaml:1:10: the delimiter of Split must be one character, got ',;'", AT_EVAL },
	{ "Split limit from an attribute", "Split(x, \",\", n)", E("x=a", "n:int=-1"), NULL,
	    "t.yaml:1:15: the limit of Split must be at least 1, got -1", AT_EVAL },
	{ "Join with several delimiters", "Join(x, d)", E("x=a", "d=,", "d=;"), NULL,
	    "t.yaml:1:9: the delimiter of Join has 2 values, expected one", AT_EVAL },
	{ "ConvertFromBase64 of text", "ConvertFromBase64(\"!!!\")", E(0), NULL,
	    "t.yaml:1:1: ConvertFromBase64 cannot decode '!!!': not valid Base64", AT_EVAL },
	{ "ConvertFromBase64 of a bad length", "ConvertFromBase64(\"QUJDR\", UTF8)", E(0), NULL,
	    "t.yaml:1:1: ConvertFromBase64 cannot decode 'QUJDR': not valid Base64", AT_EVAL },
	{ "ConvertFromBase64 of an odd byte count as UTF-16", "ConvertFromBase64(\"QQ==\")", E(0), NULL,
	    "t.yaml:1:1: ConvertFromBase64 cannot decode 'QQ==': not valid UTF-16", AT_EVAL },
	{ "ConvertFromBase64 of a lone surrogate", "ConvertFromBase64(\"PdhBAA==\")", E(0), NULL,
	    "t.yaml:1:1: ConvertFromBase64 cannot decode 'PdhBAA==': not valid UTF-16", AT_EVAL },
	{ "ConvertFromBase64 of bad UTF-8", "ConvertFromBase64(\"/w==\", UTF8)", E(0), NULL,
	    "t.yaml:1:1: ConvertFromBase64 cannot decode '/w==': not valid UTF-8", AT_EVAL },
	{ "ConvertFromBase64 of a NUL", "ConvertFromBase64(\"AA==\", ASCII)", E(0), NULL,
	    "t.yaml:1:1: ConvertFromBase64 cannot decode 'AA==': the text holds a NUL character", AT_EVAL },
	{ "ConvertToBase64 of non-ASCII as ASCII", "ConvertToBase64(\"é\", ASCII)", E(0), NULL,
	    "t.yaml:1:1: ConvertToBase64 cannot encode 'é' in ASCII", AT_EVAL },
	{ "pad character null", "LeftPad(\"a\", 3, p)", E("p:str"), NULL,
	    "t.yaml:1:17: the pad character of LeftPad cannot be null", AT_EVAL },
	{ "pad character of two characters", "RightPad(\"a\", 3, p)", E("p=ab"), NULL,
	    "t.yaml:1:18: the pad character of RightPad must be one character, got 'ab'", AT_EVAL },
	{ "pad length too large", "LeftPad(\"a\", 2000000, \"0\")", E(0), NULL,
	    "t.yaml:1:14: the length of LeftPad is too large (2000000; the limit is 1048576)", AT_EVAL },
	{ "IIF condition with several values", "IIF(flags, 1, 2)", E("flags:bool=true", "flags:bool=false"), NULL,
	    "t.yaml:1:5: the condition of IIF has 2 values, expected one", AT_EVAL },
	{ "integer overflow", "9223372036854775807 + 1", E(0), NULL, "t.yaml:1:21: integer overflow in operator '+'",
	    AT_EVAL },
	{ "LessThan of an integer and a datetime, untyped", "LessThan(1, t)", E("t:time=1"), NULL,
	    "t.yaml:1:13: LessThan cannot compare an integer with a datetime", UNTYPED_ONLY | AT_EVAL },
	{ "a mix of strings and integers in one '+'", "x + y", E("x=a", "y:int=1"), NULL,
	    "t.yaml:1:5: operator '+' cannot combine a string and an integer (convert with CStr or CNum)",
	    UNTYPED_ONLY | AT_EVAL },
	{ "CDate of text", "CDate(x)", E("x=next tuesday"), NULL,
	    "t.yaml:1:1: CDate cannot convert 'next tuesday' to a datetime", AT_EVAL },
	{ "CDate of a day that does not exist", "CDate(\"2023-02-29\")", E(0), NULL,
	    "t.yaml:1:1: CDate cannot convert '2023-02-29' to a datetime", AT_EVAL },
	{ "DateTimeFormat of a string that is no date", "DateTimeFormat(\"25/12/2007\", \"yyyy\")", E(0), NULL,
	    "t.yaml:1:1: DateTimeFormat cannot convert '25/12/2007' to a datetime", AT_EVAL },
	{ "FormatDateTime of a datetime past 9999", "FormatDateTime(t, \"yyyy\")", E("t:time=253402300800000000"), NULL,
	    "t.yaml:1:16: FormatDateTime cannot format a datetime outside the years 1 to 9999", AT_EVAL },
	{ "DateAdd past 9999", "DateAdd(yyyy, 8000, CDate(\"2024-01-01\"))", E(0), NULL,
	    "t.yaml:1:1: the result of DateAdd is out of range (years 1 to 9999)", AT_EVAL },
	{ "DateAdd overflowing", "DateAdd(s, 9223372036854775807, CDate(\"2024-01-01\"))", E(0), NULL,
	    "t.yaml:1:1: the result of DateAdd is out of range (years 1 to 9999)", AT_EVAL },
	{ "DateAdd before the year 1", "DateAdd(d, -1, CDate(\"0001-01-01\"))", E(0), NULL,
	    "t.yaml:1:1: the result of DateAdd is out of range (years 1 to 9999)", AT_EVAL },
	{ "DateFromNum of AD's 'never'", "DateFromNum(accountExpires)", E("accountExpires:int=9223372036854775807"), NULL,
	    "t.yaml:1:1: DateFromNum cannot convert 9223372036854775807 to a datetime (it must be 0 to 2650467743999999999)",
	    AT_EVAL },
	{ "DateFromNum of a negative number", "DateFromNum(-1)", E(0), NULL,
	    "t.yaml:1:1: DateFromNum cannot convert -1 to a datetime (it must be 0 to 2650467743999999999)", AT_EVAL },
	{ "NumFromDate before 1601", "NumFromDate(CDate(\"1600-12-31\"))", E(0), NULL,
	    "t.yaml:1:1: NumFromDate cannot convert 1600-12-31T00:00:00Z to a number (before 1601 or after 30827)",
	    AT_EVAL },
	{ "NumFromDate of the last datetime", "NumFromDate(t)", E("t:time=9223372036854775807"), NULL,
	    "t.yaml:1:1: NumFromDate cannot convert 294247-01-10T04:00:54.775807Z to a number (before 1601 or after 30827)",
	    AT_EVAL },
	{ "CStr of the first datetime", "CStr(t)", E("t:time=-9223372036854775808"), "'-290308-12-21T19:59:05.224192Z'" },
	{ "RandomNum with start above end", "RandomNum(10, 1)", E(0), NULL,
	    "t.yaml:1:1: RandomNum cannot pick a number from 10 to 1 (the start is greater than the end)", AT_EVAL },
	{ "CGuid of text", "CGuid(x)", E("x=not-a-guid"), NULL,
	    "t.yaml:1:1: CGuid cannot convert 'not-a-guid' to a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", AT_EVAL },
	{ "CGuid of a brace not closed", "CGuid(\"{00112233-4455-6677-8899-aabbccddeeff\")", E(0), NULL,
	    "t.yaml:1:1: CGuid cannot convert '{00112233-4455-6677-8899-aabbccddeeff' to a GUID "
	    "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", AT_EVAL },
	{ "CGuid of binary that is not 16 bytes", "CGuid(x)", E("x:bin=0001"), NULL,
	    "t.yaml:1:1: CGuid cannot convert binary 0001 to a GUID (2 bytes, not 16)", AT_EVAL },
	{ "StringFromGuid of 2 bytes", "StringFromGuid(x)", E("x:bin=0001"), NULL,
	    "t.yaml:1:1: StringFromGuid cannot read binary 0001 as a GUID (2 bytes, not 16)", AT_EVAL },
	{ "StringFromSid of bytes that are no SID", "StringFromSid(x)", E("x:bin=0105000000000005"), NULL,
	    "t.yaml:1:1: StringFromSid cannot read binary 0105000000000005 as a SID", AT_EVAL },
	{ "ConvertSidToString of a wrong revision", "ConvertSidToString(x)", E("x:bin=020100000000000100000000"), NULL,
	    "t.yaml:1:1: ConvertSidToString cannot read binary 020100000000000100000000 as a SID", AT_EVAL },
	{ "ConvertFromUTF8Hex of an odd length", "ConvertFromUTF8Hex(\"414\")", E(0), NULL,
	    "t.yaml:1:1: ConvertFromUTF8Hex cannot decode '414': an odd number of digits", AT_EVAL },
	{ "ConvertFromUTF8Hex of letters", "ConvertFromUTF8Hex(\"4G\")", E(0), NULL,
	    "t.yaml:1:1: ConvertFromUTF8Hex cannot decode '4G': not hexadecimal", AT_EVAL },
	{ "ConvertFromUTF8Hex of bad UTF-8", "ConvertFromUTF8Hex(\"C3\")", E(0), NULL,
	    "t.yaml:1:1: ConvertFromUTF8Hex cannot decode 'C3': not valid UTF-8", AT_EVAL },
	{ "ConvertFromUTF8Hex of a NUL", "ConvertFromUTF8Hex(\"4100\")", E(0), NULL,
	    "t.yaml:1:1: ConvertFromUTF8Hex cannot decode '4100': the text holds a NUL character", AT_EVAL },
	{ "InStr start 0", "InStr(\"abc\", \"a\", 0)", E(0), NULL, "t.yaml:1:19: the start of InStr must be at least 1, got 0",
	    AT_EVAL },
	{ "InStrRev start 0", "InStrRev(\"abc\", \"a\", 0)", E(0), NULL,
	    "t.yaml:1:22: the start of InStrRev must be -1 or at least 1, got 0", AT_EVAL },
	{ "Contains with several search strings", "Contains(x, y)", E("x=a", "y=a", "y=b"), NULL,
	    "t.yaml:1:13: the search string of Contains has 2 values, expected one", AT_EVAL },
	{ "ItemOrNull with several indexes", "ItemOrNull(x, n)", E("x=a", "n:int=1", "n:int=2"), NULL,
	    "t.yaml:1:15: the index of ItemOrNull has 2 values, expected one", AT_EVAL },
	{ "DNComponent of text that is no DN", "DNComponent(x, 1)", E("x=Joe Doe"), NULL,
	    "t.yaml:1:1: DNComponent cannot read 'Joe Doe' as a DN", AT_EVAL },
	{ "DNComponentRev of a DN with an empty RDN", "DNComponentRev(x, 1)", E("x=cn=a,,dc=x"), NULL,
	    "t.yaml:1:1: DNComponentRev cannot read 'cn=a,,dc=x' as a DN", AT_EVAL },
	{ "Switch condition with several values", "Switch(c, 1)", E("c:bool=true", "c:bool=false"), NULL,
	    "t.yaml:1:8: condition 1 of Switch has 2 values, expected one", AT_EVAL },
	{ "Where condition giving several values", "Where($v, x, c)", E("x=a", "c:bool=true", "c:bool=false"), NULL,
	    "t.yaml:1:14: the condition of Where has 2 values, expected one", AT_EVAL },
	{ "an error inside Select names the value's function", "Select($v, x, CNum($v))", E("x=1", "x=b"), NULL,
	    "t.yaml:1:15: CNum cannot convert 'b' to an integer", AT_EVAL },
	{ "PadLeft names itself in errors", "PadLeft(\"a\", 3, p)", E("p:str"), NULL,
	    "t.yaml:1:17: the pad character of PadLeft cannot be null", AT_EVAL },
};

#pragma GCC diagnostic pop

/* ---- running a case ------------------------------------------------------------------------- */

static void run_case_mode(const expr_case_t *tc, bool typed)
{
	fixture_t fx = { .lie = -1 };
	for (size_t i = 0; i < MAX_ATTRS && tc->attrs[i]; i++)
		fixture_add(&fx, tc->attrs[i]);
	loom_expr_compile_opts_t o = {
		.file = "t.yaml", .line = 1, .column = 1,
		.attr_type = typed ? fx_attr_type : NULL, .arg = &fx,
		.strict = (tc->flags & STRICT) != 0, .want = tc->want_type,
	};
	const char *mode = typed ? "typed" : "untyped";
	loom_expr_t *e = NULL;
	char *err = NULL;
	if (loom_expr_compile(tc->text, &o, &e, &err) < 0) {
		assert_non_null(err);
		if (tc->error == NULL)
			fail_msg("%s (%s): compile failed: %s", tc->label, mode, err);
		if (tc->flags & AT_EVAL)
			fail_msg("%s (%s): wanted an evaluation error, compile failed: %s", tc->label, mode, err);
		if (strcmp(err, tc->error) != 0)
			fail_msg("%s (%s):\n  got  %s\n  want %s", tc->label, mode, err, tc->error);
		assert_null(e);
		free(err);
		fixture_free(&fx);
		return;
	}
	if (tc->error && (tc->flags & AT_COMPILE))
		fail_msg("%s (%s): compiled, wanted a compile error: %s", tc->label, mode, tc->error);
	loom_expr_result_t r;
	loom_expr_result_init(&r);
	for (int round = 0; round < 2; round++) {
		int rc = loom_expr_eval(e, fx_lookup, &fx, &r, &err);
		if (rc < 0) {
			assert_non_null(err);
			if (tc->error == NULL)
				fail_msg("%s (%s): evaluation failed: %s", tc->label, mode, err);
			if (strcmp(err, tc->error) != 0)
				fail_msg("%s (%s):\n  got  %s\n  want %s", tc->label, mode, err, tc->error);
			assert_int_equal(r.n, 0);
			free(err);
			err = NULL;
			continue;
		}
		if (tc->error)
			fail_msg("%s (%s): evaluation succeeded, wanted: %s", tc->label, mode, tc->error);
		char *got = render(&r);
		if (strcmp(got, tc->want) != 0)
			fail_msg("%s (%s) round %d:\n  got  %s\n  want %s", tc->label, mode, round, got, tc->want);
		free(got);
	}
	loom_expr_result_release(&r);
	loom_expr_destroy(&e);
	assert_null(e);
	fixture_free(&fx);
}

static void test_case(void **state)
{
	const expr_case_t *tc = *state;
	if (!(tc->flags & UNTYPED_ONLY))
		run_case_mode(tc, true);
	if (!(tc->flags & (TYPED_ONLY | STRICT)))
		run_case_mode(tc, false);
}

/* ---- fixed tests ----------------------------------------------------------------------------- */

static loom_expr_t *compile_ok(const char *text, const loom_expr_compile_opts_t *o)
{
	loom_expr_t *e = NULL;
	char *err = NULL;
	if (loom_expr_compile(text, o, &e, &err) < 0)
		fail_msg("'%s': %s", text, err);
	return e;
}

static char *compile_error(const char *text, const loom_expr_compile_opts_t *o)
{
	loom_expr_t *e = NULL;
	char *err = NULL;
	if (loom_expr_compile(text, o, &e, &err) == 0)
		fail_msg("'%s' compiled", text);
	assert_null(e);
	return err;
}

static void test_attributes(void **state)
{
	(void)state;
	static const struct {
		const char *text;          /* expression */
		const char *want;          /* names joined by '|' */
	} cases[] = {
		{ "\"literal\"", "" },
		{ "givenName", "givenName" },
		{ "Concatenate(givenName, \" \", sn, GivenName, [display name])", "givenName|sn|display name" },
		{ "IIF(IsPresent(Alias), Alias, ALIAS + [alias])", "Alias" },
		{ "ConvertFromBase64(blob, UTF8) + ConvertFromBase64(blob2, [Unicode])", "blob|blob2" },
		{ "Null + IgnoreThisFlow2", "IgnoreThisFlow2" },
		{ "Coalesce(a, IIF(b, c, d))", "a|b|c|d" },
		{ "Select($item, proxyAddresses, $item + sn) + CRLF + CStr(Now())", "proxyAddresses|sn" },
		{ "CStr(DateAdd(m, 1, t)) + CStr(InStr(x, \"a\", 1, vbTextCompare))", "t|x" },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		loom_expr_t *e = compile_ok(cases[i].text, NULL);
		loom_buf_t b = LOOM_BUF_INIT;
		const char *const *names = loom_expr_attributes(e);
		for (size_t j = 0; names[j]; j++) {
			if (j)
				loom_buf_addc(&b, '|');
			loom_buf_adds(&b, names[j]);
		}
		if (strcmp(loom_buf_cstr(&b), cases[i].want) != 0)
			fail_msg("'%s': got '%s', want '%s'", cases[i].text, loom_buf_cstr(&b), cases[i].want);
		loom_buf_release(&b);
		loom_expr_destroy(&e);
	}
}

static int typed_all(void *arg, const char *name, bool *ret_multi)
{
	(void)arg;
	*ret_multi = strcmp(name, "proxyAddresses") == 0;
	if (strcmp(name, "salary") == 0)
		return LOOM_EXPR_INT;
	if (strcmp(name, "manager") == 0)
		return LOOM_EXPR_REF;
	if (strcmp(name, "photo") == 0)
		return LOOM_EXPR_BIN;
	return strcmp(name, "mystery") == 0 ? -1 : LOOM_EXPR_STRING;
}

static void test_result_type(void **state)
{
	(void)state;
	static const struct {
		const char *text;          /* expression */
		bool typed;                /* compiled with typed_all */
		loom_expr_type_t want;     /* compile option */
		loom_expr_type_t type;     /* loom_expr_result_type */
	} cases[] = {
		{ "\"a\"", false, LOOM_EXPR_ANY, LOOM_EXPR_STRING },
		{ "1 + 2", false, LOOM_EXPR_ANY, LOOM_EXPR_INT },
		{ "x", false, LOOM_EXPR_ANY, LOOM_EXPR_ANY },
		{ "x", true, LOOM_EXPR_ANY, LOOM_EXPR_STRING },
		{ "mystery", true, LOOM_EXPR_ANY, LOOM_EXPR_ANY },
		{ "salary + 1", true, LOOM_EXPR_ANY, LOOM_EXPR_INT },
		{ "a + b", false, LOOM_EXPR_ANY, LOOM_EXPR_ANY },
		{ "Eq(a, b)", false, LOOM_EXPR_ANY, LOOM_EXPR_BOOL },
		{ "Null()", false, LOOM_EXPR_ANY, LOOM_EXPR_ANY },
		{ "IIF(c, Null(), 5)", false, LOOM_EXPR_ANY, LOOM_EXPR_INT },
		{ "IIF(true, manager, \"x\")", true, LOOM_EXPR_ANY, LOOM_EXPR_STRING },
		{ "Item(photo, 1)", true, LOOM_EXPR_ANY, LOOM_EXPR_BIN },
		{ "RemoveDuplicates(manager)", true, LOOM_EXPR_ANY, LOOM_EXPR_REF },
		{ "Coalesce(a, Null())", true, LOOM_EXPR_ANY, LOOM_EXPR_STRING },
		{ "x", false, LOOM_EXPR_REF, LOOM_EXPR_REF },
		{ "\"cn=\" + x", true, LOOM_EXPR_REF, LOOM_EXPR_REF },
		{ "Now()", false, LOOM_EXPR_ANY, LOOM_EXPR_TIME },
		{ "CGuid(x)", false, LOOM_EXPR_ANY, LOOM_EXPR_BIN },
		{ "CRef(x)", false, LOOM_EXPR_ANY, LOOM_EXPR_REF },
		{ "Select($m, manager, $m)", true, LOOM_EXPR_ANY, LOOM_EXPR_REF },
		{ "Select($m, manager, Len($m))", true, LOOM_EXPR_ANY, LOOM_EXPR_INT },
		{ "Where($p, photo, true)", true, LOOM_EXPR_ANY, LOOM_EXPR_BIN },
		{ "With($s, salary, $s + 1)", true, LOOM_EXPR_ANY, LOOM_EXPR_INT },
		{ "Switch(true, manager, false, \"x\")", true, LOOM_EXPR_ANY, LOOM_EXPR_STRING },
		{ "ItemOrNull(photo, 1)", true, LOOM_EXPR_ANY, LOOM_EXPR_BIN },
		{ "DateAdd(d, 1, Now())", false, LOOM_EXPR_ANY, LOOM_EXPR_TIME },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		loom_expr_compile_opts_t o = { .attr_type = cases[i].typed ? typed_all : NULL, .want = cases[i].want };
		loom_expr_t *e = compile_ok(cases[i].text, &o);
		if (loom_expr_result_type(e) != cases[i].type)
			fail_msg("'%s': type %s, want %s", cases[i].text, loom_expr_type_name(loom_expr_result_type(e)),
			    loom_expr_type_name(cases[i].type));
		loom_expr_destroy(&e);
	}
	assert_string_equal(loom_expr_type_name(LOOM_EXPR_TIME), "a datetime");
	assert_string_equal(loom_expr_type_name((loom_expr_type_t)42), "an unknown type");
}

static void test_locations(void **state)
{
	(void)state;
	static const struct {
		const char *file;          /* opts.file */
		unsigned line, column;     /* opts.line, opts.column */
		const char *text;          /* expression */
		const char *want;          /* the error */
	} cases[] = {
		{ "config/sync/hr.yaml", 12, 25, "Left(givenName, 3, 4)",
		    "config/sync/hr.yaml:12:44: Left expects 2 arguments, got 3" },
		{ "config/sync/hr.yaml", 12, 25, "Lefft(givenName, 3)",
		    "config/sync/hr.yaml:12:25: unknown function 'Lefft' (did you mean 'Left'?)" },
		{ "f.yaml", 3, 9, "Concatenate(\n  givenName,\n  Left(sn, \"x\"))",
		    "f.yaml:5:12: argument 2 of Left must be an integer, got a string" },
		{ "f.yaml", 3, 9, "\"Ærøskøbing\" + 1", "f.yaml:3:24: operator '+' cannot combine a string and an integer "
		    "(convert with CStr or CNum)" },
		{ NULL, 0, 0, "Left(x)", "<expression>:1:7: Left expects 2 arguments, got 1" },
		{ "f.yaml", 0, 0, "(a\n", "f.yaml:2:1: expected ')' to close the '(' at 1:1, found the end of the expression" },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		loom_expr_compile_opts_t o = { .file = cases[i].file, .line = cases[i].line, .column = cases[i].column };
		char *err = compile_error(cases[i].text, &o);
		assert_string_equal(err, cases[i].want);
		free(err);
	}
	/* NULL options */
	char *err = compile_error("Left(x)", NULL);
	assert_string_equal(err, "<expression>:1:7: Left expects 2 arguments, got 1");
	free(err);
	/* a run-time error is located in the file too */
	loom_expr_compile_opts_t o = { .file = "sync.yaml", .line = 40, .column = 17 };
	loom_expr_t *e = compile_ok("IIF(true, CNum(\"x1\"), 0)", &o);
	loom_expr_result_t r;
	loom_expr_result_init(&r);
	assert_int_equal(loom_expr_eval(e, NULL, NULL, &r, &err), -1);
	assert_string_equal(err, "sync.yaml:40:27: CNum cannot convert 'x1' to an integer");
	free(err);
	/* ret_error NULL: nothing leaks */
	assert_int_equal(loom_expr_eval(e, NULL, NULL, &r, NULL), -1);
	loom_expr_result_release(&r);
	loom_expr_destroy(&e);
	assert_int_equal(loom_expr_compile("Left(", NULL, &e, NULL), -1);
	assert_null(e);
}

static void test_nesting_limit(void **state)
{
	(void)state;
	loom_buf_t b = LOOM_BUF_INIT;
	for (int i = 0; i < 64; i++)
		loom_buf_adds(&b, "LowerCase(");
	loom_buf_adds(&b, "\"X\"");
	for (int i = 0; i < 64; i++)
		loom_buf_addc(&b, ')');
	loom_expr_t *e = compile_ok(loom_buf_cstr(&b), NULL);
	loom_expr_result_t r;
	loom_expr_result_init(&r);
	assert_int_equal(loom_expr_eval(e, NULL, NULL, &r, NULL), 0);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.v[0]->str, "x");
	loom_expr_result_release(&r);
	loom_expr_destroy(&e);

	loom_buf_reset(&b);
	for (int i = 0; i < 65; i++)
		loom_buf_adds(&b, "(");
	loom_buf_adds(&b, "1");
	for (int i = 0; i < 65; i++)
		loom_buf_addc(&b, ')');
	char *err = compile_error(loom_buf_cstr(&b), NULL);
	assert_string_equal(err, "<expression>:1:65: expression nested too deeply (more than 64 levels)");
	free(err);
	loom_buf_release(&b);
}

/* Values belong to the result: the attributes can go away; the result can be
 * reused by other expressions and keeps working. */
static void test_result_ownership(void **state)
{
	(void)state;
	loom_expr_t *e1 = compile_ok("Concatenate(givenName, \" \", sn)", NULL);
	loom_expr_t *e2 = compile_ok("Split(x, \",\")", NULL);
	loom_expr_t *e3 = compile_ok("guid", NULL);
	loom_expr_result_t r;
	loom_expr_result_init(&r);
	fixture_t fx = { .lie = -1 };
	fixture_add(&fx, "givenName=Britta");
	fixture_add(&fx, "sn=Simon");
	fixture_add(&fx, "guid:bin=0a0b");
	loom_buf_t big = LOOM_BUF_INIT;
	for (int i = 0; i < 5000; i++)
		loom_buf_printf(&big, "%sv%d", i ? "," : "", i);
	char *spec = loom_sprintf("x=%s", loom_buf_cstr(&big));
	fixture_add(&fx, spec);
	free(spec);
	loom_buf_release(&big);

	assert_int_equal(loom_expr_eval(e2, fx_lookup, &fx, &r, NULL), 0);
	assert_int_equal(r.n, 5000);
	assert_string_equal(r.v[4999]->str, "v4999");
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(loom_expr_eval(e1, fx_lookup, &fx, &r, NULL), 0);
		assert_int_equal(r.n, 1);
	}
	assert_int_equal(loom_expr_eval(e3, fx_lookup, &fx, &r, NULL), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.v[0]->v_case, LOOM__VALUE__V_BIN);
	assert_int_equal(r.v[0]->bin.len, 2);
	assert_int_equal(loom_expr_eval(e1, fx_lookup, &fx, &r, NULL), 0);
	fixture_free(&fx); /* the inputs are gone */
	assert_string_equal(r.v[0]->str, "Britta Simon");
	/* a result filled by protobuf-c helpers: the values are proper messages */
	size_t sz = loom__value__get_packed_size(r.v[0]);
	assert_true(sz > 0);
	/* flags are reset by the next evaluation */
	loom_expr_t *e4 = compile_ok("AuthoritativeNull()", NULL);
	assert_int_equal(loom_expr_eval(e4, NULL, NULL, &r, NULL), 0);
	assert_true(r.authoritative_null);
	assert_int_equal(r.n, 0);
	assert_int_equal(loom_expr_eval(e1, NULL, NULL, &r, NULL), 0);
	assert_false(r.authoritative_null);
	assert_int_equal(r.n, 0);
	loom_expr_result_release(&r);
	loom_expr_result_release(&r); /* twice is harmless */
	loom_expr_destroy(&e1);
	loom_expr_destroy(&e2);
	loom_expr_destroy(&e3);
	loom_expr_destroy(&e4);
	loom_expr_destroy(&e4); /* NULL is harmless */
	loom_expr_destroy(NULL);
}

/* An attribute whose values do not have its declared type is an error on
 * the object, not a crash. */
static void test_declared_type_mismatch(void **state)
{
	(void)state;
	fixture_t fx = { .lie = LOOM_EXPR_INT };
	fixture_add(&fx, "n=12");
	fixture_add(&fx, "m:ref=cn=x");
	loom_expr_compile_opts_t o = { .file = "t.yaml", .attr_type = fx_attr_type, .arg = &fx };
	loom_expr_t *e = compile_ok("x + n + 1", &o);
	loom_expr_result_t r;
	loom_expr_result_init(&r);
	char *err = NULL;
	assert_int_equal(loom_expr_eval(e, fx_lookup, &fx, &r, &err), -1);
	assert_string_equal(err, "t.yaml:1:5: attribute 'n' holds a string, but it is declared as an integer");
	free(err);
	loom_expr_destroy(&e);
	/* a reference where a string is declared is read as a string */
	fx.lie = LOOM_EXPR_STRING;
	e = compile_ok("LowerCase(m)", &o);
	assert_int_equal(loom_expr_eval(e, fx_lookup, &fx, &r, &err), 0);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.v[0]->str, "cn=x");
	loom_expr_result_release(&r);
	loom_expr_destroy(&e);
	fixture_free(&fx);
}

/* RemoveDuplicates past its small-list path: sorted, first occurrences kept. */
static void test_remove_duplicates_large(void **state)
{
	(void)state;
	fixture_t fx = { .lie = -1 };
	char spec[32];
	for (int i = 0; i < 100; i++) {
		snprintf(spec, sizeof spec, "x=v%d", (i * 7) % 30);
		fixture_add(&fx, spec);
	}
	loom_expr_t *e = compile_ok("RemoveDuplicates(x)", NULL);
	loom_expr_result_t r;
	loom_expr_result_init(&r);
	assert_int_equal(loom_expr_eval(e, fx_lookup, &fx, &r, NULL), 0);
	assert_int_equal(r.n, 30);
	for (int i = 0; i < 30; i++) {
		snprintf(spec, sizeof spec, "v%d", (i * 7) % 30);
		assert_string_equal(r.v[i]->str, spec);
	}
	loom_expr_result_release(&r);
	loom_expr_destroy(&e);
	fixture_free(&fx);
}

/* Evaluates text (no attributes) into r, which must give one value. */
static const Loom__Value *eval_one(const char *text, loom_expr_result_t *r)
{
	loom_expr_t *e = compile_ok(text, NULL);
	char *err = NULL;
	if (loom_expr_eval(e, NULL, NULL, r, &err) < 0)
		fail_msg("'%s': %s", text, err);
	loom_expr_destroy(&e);
	assert_int_equal(r->n, 1);
	return r->v[0];
}

static bool is_guid_text(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		bool hyphen = i == 8 || i == 13 || i == 18 || i == 23;
		if (hyphen ? s[i] != '-' : !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return s[14] == '4' && strchr("89ab", s[19]) != NULL; /* version 4, RFC 4122 variant */
}

/* Now, RandomNum and Guid: their type, range and form, not their value. */
static void test_volatile(void **state)
{
	(void)state;
	loom_expr_result_t r;
	loom_expr_result_init(&r);
	/* Now: a datetime between the clock before and after */
	struct timespec t0, t1;
	clock_gettime(CLOCK_REALTIME, &t0);
	const Loom__Value *v = eval_one("Now()", &r);
	clock_gettime(CLOCK_REALTIME, &t1);
	assert_int_equal(v->v_case, LOOM__VALUE__V_TIME);
	assert_true(v->time >= (int64_t)t0.tv_sec * 1000000 + t0.tv_nsec / 1000);
	assert_true(v->time <= (int64_t)t1.tv_sec * 1000000 + t1.tv_nsec / 1000);
	v = eval_one("LessThanOrEquals(CDate(\"2024-01-01\"), Now())", &r);
	assert_true(v->bool_);
	v = eval_one("CStr(Now())", &r);
	assert_int_equal(v->str[strlen(v->str) - 1], 'Z');
	v = eval_one("FormatDateTime(Now(), \"yyyy\")", &r);
	assert_int_equal(strlen(v->str), 4);

	/* RandomNum: integers within the bounds, both bounds reached, spread out */
	loom_expr_t *e = compile_ok("RandomNum(0, 999)", NULL);
	static bool seen[1000];
	int distinct = 0;
	for (int i = 0; i < 3000; i++) {
		assert_int_equal(loom_expr_eval(e, NULL, NULL, &r, NULL), 0);
		assert_int_equal(r.n, 1);
		assert_int_equal(r.v[0]->v_case, LOOM__VALUE__V_INT);
		int64_t k = r.v[0]->int_;
		assert_true(k >= 0 && k <= 999);
		distinct += !seen[k];
		seen[k] = true;
	}
	loom_expr_destroy(&e);
	assert_true(distinct > 800); /* expected about 950 */
	e = compile_ok("RandomNum(-2, -1)", NULL);
	bool lo = false, hi = false;
	for (int i = 0; i < 200; i++) {
		assert_int_equal(loom_expr_eval(e, NULL, NULL, &r, NULL), 0);
		assert_true(r.v[0]->int_ == -2 || r.v[0]->int_ == -1);
		lo = lo || r.v[0]->int_ == -2;
		hi = hi || r.v[0]->int_ == -1;
	}
	assert_true(lo && hi);
	loom_expr_destroy(&e);
	v = eval_one("RandomNum(-9223372036854775808, 9223372036854775807)", &r); /* the whole range */
	assert_int_equal(v->v_case, LOOM__VALUE__V_INT);

	/* Guid: a random version-4 GUID, different each time, that CGuid reads back */
	v = eval_one("Guid()", &r);
	assert_int_equal(v->v_case, LOOM__VALUE__V_STR);
	assert_true(is_guid_text(v->str));
	char first[37];
	snprintf(first, sizeof first, "%s", v->str);
	v = eval_one("Guid()", &r);
	assert_true(is_guid_text(v->str));
	assert_string_not_equal(first, v->str);
	v = eval_one("With($g, Guid(), Eq(StringFromGuid(CGuid($g)), $g))", &r);
	assert_true(v->bool_);
	v = eval_one("ConvertToBase64(CGuid(Guid()))", &r);
	assert_int_equal(strlen(v->str), 24); /* 16 bytes */
	loom_expr_result_release(&r);
}

/* A deterministic pseudo-random number below n. */
static uint32_t rnd(uint32_t *seed, uint32_t n)
{
	*seed = *seed * 1103515245u + 12345u;
	return (*seed >> 16) % n;
}

/* A random expression: right in shape, random in arity and types. */
static void gen_expr(loom_buf_t *b, uint32_t *seed, int depth)
{
	static const char *const leaves[] = {
		"\"a,b\"", "\"\"", "\" Mixed Case \"", "\"é#,+\"", "\"SGk=\"", "1", "-2", "0", "3", "true", "false",
		"x", "y", "n", "[z z]", "absent", "Null", "AuthoritativeNull", "IgnoreThisFlow", "UTF8",
		"$v", "$w", "&HF", "\"2024-03-01\"", "\"yyyy-MM-dd\"", "DC", "m", "vbTextCompare", "\"a:b,c:\"",
		"\"cn=a,dc=b\"", "\"00112233-4455-6677-8899-aabbccddeeff\"", "d",
	};
	static const struct {
		const char *name;      /* function */
		unsigned args;         /* its usual argument count */
	} funcs[] = {
		{ "Left", 2 }, { "Right", 2 }, { "Mid", 3 }, { "Len", 1 }, { "Word", 3 }, { "Concatenate", 3 },
		{ "LowerCase", 1 }, { "UpperCase", 1 }, { "ProperCase", 1 }, { "Trim", 1 }, { "IIF", 3 }, { "Eq", 2 },
		{ "NotEquals", 2 }, { "LessThan", 2 }, { "IsPresent", 1 }, { "IsNullOrEmpty", 1 }, { "Coalesce", 2 },
		{ "Split", 2 }, { "Join", 2 }, { "Count", 1 }, { "Item", 2 }, { "RemoveDuplicates", 1 }, { "LeftPad", 3 },
		{ "RightPad", 3 }, { "CStr", 1 }, { "CNum", 1 }, { "CBool", 1 }, { "ConvertToBase64", 1 },
		{ "ConvertFromBase64", 2 }, { "EscapeDNComponent", 1 }, { "ReplaceString", 3 }, { "Error", 1 },
		{ "Null", 0 }, { "CRLF", 0 }, { "PCase", 1 }, { "InStr", 2 }, { "InStrRev", 3 }, { "Contains", 2 },
		{ "ReplaceChars", 2 }, { "DNComponent", 2 }, { "DNComponentRev", 3 }, { "CDate", 1 }, { "IsDate", 1 },
		{ "DateAdd", 3 }, { "FormatDateTime", 2 }, { "DateFromNum", 1 }, { "NumFromDate", 1 }, { "CGuid", 1 },
		{ "StringFromGuid", 1 }, { "StringFromSid", 1 }, { "ConvertToUTF8Hex", 1 }, { "ConvertFromUTF8Hex", 1 },
		{ "BitAnd", 2 }, { "IsBitSet", 2 }, { "ItemOrNull", 2 }, { "Switch", 4 }, { "Select", 3 }, { "Where", 3 },
		{ "With", 3 }, { "IsGuid", 1 }, { "IsNumeric", 1 }, { "IsEmpty", 1 }, { "CRef", 1 },
	};
	uint32_t kind = depth > 4 ? 0 : rnd(seed, 10);
	if (kind < 4) {
		loom_buf_adds(b, leaves[rnd(seed, N_ELEMS(leaves))]);
	} else if (kind < 8) {
		size_t f = rnd(seed, N_ELEMS(funcs));
		unsigned n = rnd(seed, 4) ? funcs[f].args : rnd(seed, 5);
		loom_buf_printf(b, "%s(", funcs[f].name);
		for (unsigned i = 0; i < n; i++) {
			if (i)
				loom_buf_adds(b, ", ");
			gen_expr(b, seed, depth + 1);
		}
		loom_buf_addc(b, ')');
	} else if (kind < 9) {
		gen_expr(b, seed, depth + 1);
		loom_buf_adds(b, " + ");
		gen_expr(b, seed, depth + 1);
	} else {
		loom_buf_addc(b, '(');
		gen_expr(b, seed, depth + 1);
		loom_buf_addc(b, ')');
	}
}

/* Garbage in: compilation fails or succeeds cleanly, never crashes; what
 * compiles evaluates or fails cleanly. Random expressions, and every table
 * expression cut, spliced and bit-flipped. */
static void test_garbage(void **state)
{
	(void)state;
	static const char *const inserts[] = { "(", ")", ",", "+", "\"", "\\", "[", "]", "x", "1", " ", "\xc3" };
	const expr_case_t *const tables[] = { doc_cases, edge_cases, value_cases, compile_errors, eval_errors };
	const size_t sizes[] = { N_ELEMS(doc_cases), N_ELEMS(edge_cases), N_ELEMS(value_cases),
		N_ELEMS(compile_errors), N_ELEMS(eval_errors) };
	uint32_t seed = 12345;
	fixture_t fx = { .lie = -1 };
	fixture_add(&fx, "x=a,b");
	fixture_add(&fx, "x=Cé");
	fixture_add(&fx, "y:int=3");
	fixture_add(&fx, "n:int=2");
	fixture_add(&fx, "z z=SGk=");
	loom_expr_result_t r;
	loom_expr_result_init(&r);
	int compiled = 0, evaluated = 0;
	for (int round = 0; round < 20000; round++) {
		loom_buf_t b = LOOM_BUF_INIT;
		if (round % 2 == 0) {
			gen_expr(&b, &seed, 0);
		} else {
			size_t t = rnd(&seed, N_ELEMS(tables));
			const char *text = tables[t][rnd(&seed, (uint32_t)sizes[t])].text;
			size_t len = strlen(text), at = len ? rnd(&seed, (uint32_t)len) : 0;
			switch (rnd(&seed, 4)) {
			case 0: /* cut */
				loom_buf_add(&b, text, at);
				break;
			case 1: /* drop a few bytes */
				loom_buf_add(&b, text, at);
				if (at + 3 < len)
					loom_buf_adds(&b, text + at + 3);
				break;
			case 2: /* insert */
				loom_buf_add(&b, text, at);
				loom_buf_adds(&b, inserts[rnd(&seed, N_ELEMS(inserts))]);
				loom_buf_adds(&b, text + at);
				break;
			default: /* flip a bit */
				loom_buf_adds(&b, text);
				if (len) {
					b.data[at] = (char)(b.data[at] ^ (1 << rnd(&seed, 7)));
					if (b.data[at] == '\0')
						b.data[at] = ' ';
				}
				break;
			}
		}
		loom_expr_t *e = NULL;
		char *err = NULL;
		loom_expr_compile_opts_t o = { .attr_type = (round & 2) ? fx_attr_type : NULL, .arg = &fx };
		if (loom_expr_compile(loom_buf_cstr(&b), &o, &e, &err) == 0) {
			compiled++;
			if (loom_expr_eval(e, fx_lookup, &fx, &r, &err) < 0) {
				assert_non_null(err);
				assert_true(strncmp(err, "<expression>:", 13) == 0);
				free(err);
			} else {
				evaluated++;
			}
			loom_expr_destroy(&e);
		} else {
			assert_non_null(err);
			assert_true(strncmp(err, "<expression>:", 13) == 0);
			free(err);
		}
		loom_buf_release(&b);
	}
	print_message("garbage: %d of 20000 compiled, %d of them evaluated\n", compiled, evaluated);
	assert_true(compiled > 1000 && evaluated > 500);
	loom_expr_result_release(&r);
	fixture_free(&fx);
}

/* ---- main ------------------------------------------------------------------------------------ */

typedef struct table {
	const expr_case_t *cases;  /* the table */
	size_t n;                  /* its length */
} table_t;

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_attributes),
		cmocka_unit_test(test_result_type),
		cmocka_unit_test(test_locations),
		cmocka_unit_test(test_nesting_limit),
		cmocka_unit_test(test_result_ownership),
		cmocka_unit_test(test_declared_type_mismatch),
		cmocka_unit_test(test_remove_duplicates_large),
		cmocka_unit_test(test_volatile),
		cmocka_unit_test(test_garbage),
	};
	const table_t tables[] = {
		{ doc_cases, N_ELEMS(doc_cases) },
		{ edge_cases, N_ELEMS(edge_cases) },
		{ value_cases, N_ELEMS(value_cases) },
		{ compile_errors, N_ELEMS(compile_errors) },
		{ type_errors, N_ELEMS(type_errors) },
		{ eval_errors, N_ELEMS(eval_errors) },
	};
	size_t n = N_ELEMS(fixed);
	for (size_t t = 0; t < N_ELEMS(tables); t++)
		n += tables[t].n;
	struct CMUnitTest *tests = loom_calloc(n, sizeof *tests);
	size_t k = 0;
	for (size_t t = 0; t < N_ELEMS(tables); t++) {
		for (size_t i = 0; i < tables[t].n; i++) {
			tests[k] = (struct CMUnitTest)cmocka_unit_test_prestate(test_case, (void *)&tables[t].cases[i]);
			tests[k++].name = tables[t].cases[i].label;
		}
	}
	for (size_t i = 0; i < N_ELEMS(fixed); i++)
		tests[k++] = fixed[i];
	int failed = _cmocka_run_group_tests("test_expr", tests, k, NULL, NULL);
	free(tests);
	return failed;
}
