/* test_workflow_schemares.c - the schema as resources (workflow/
 * workflow_schemares.c), driven through the real request pipeline and
 * store without a bus:
 *   - seeding: every built-in and policy-file attribute, type and binding
 *     is a description resource after the first start, none is made again
 *     at the next, one deleted by a request stays deleted, a new one in the
 *     files is made, a file that differs from the store does not win;
 *   - a table of schema requests: what they change in the live schema at
 *     once (a new attribute and binding usable by the next request, a regex
 *     enforced by the next request, a binding's regex, a required binding)
 *     and what is denied with the attribute and the rule (unknown DataType,
 *     a regex that does not compile, a taken Name, a binding to something
 *     that is no type or attribute, a duplicate binding, a DataType change
 *     or a delete while values exist, built-ins, renames, a requester no MPR
 *     grants); a denied request leaves the resources and the schema as they
 *     were;
 *   - the schema is the same after the store is closed and opened again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "workflow.h"
#include "loom_alloc.h"
#include "loom_buf.h"

static char dir[] = "/tmp/test_workflow_schemares.XXXXXX";

static const char *const schema =
    "attributes:\n"
    "  - { name: AccountName, type: string, regex: '^[a-z0-9]+$' }\n"
    "  - { name: Department, type: string }\n"
    "  - { name: Manager, type: reference }\n"
    "  - { name: Description, type: string }\n"
    "types:\n"
    "  - name: Person\n"
    "    bindings:\n"
    "      - { attribute: AccountName, required: true }\n"
    "      - { attribute: Department }\n"
    "      - { attribute: Manager }\n"
    "  - name: Room\n"
    "    bindings:\n"
    "      - { attribute: Description }\n";

/* schema, later: AccountName's regex changed, Badge added and bound with a regex of the binding */
static const char *const schema2 =
    "attributes:\n"
    "  - { name: AccountName, type: string, regex: '^[a-z]+$' }\n"
    "  - { name: Department, type: string }\n"
    "  - { name: Manager, type: reference }\n"
    "  - { name: Description, type: string }\n"
    "  - { name: Badge, type: string }\n"
    "types:\n"
    "  - name: Person\n"
    "    bindings:\n"
    "      - { attribute: AccountName, required: true }\n"
    "      - { attribute: Department }\n"
    "      - { attribute: Manager }\n"
    "      - { attribute: Badge, regex: '^B[0-9]+$' }\n"
    "  - name: Room\n"
    "    bindings:\n"
    "      - { attribute: Description }\n";

static const char *const mprs =
    "mprs:\n"
    "  - name: everyone-everything-on-persons\n"
    "    requesters: /Person\n"
    "    operations: [create, modify, delete, add, remove]\n"
    "    target_after: /Person\n";

static wf_t W;

#include "wf_test_fixture.h"

/* The ObjectIDs filter selects, one per line (the caller frees it). */
static char *search(const char *filter)
{
	loom_xpath_t *x;
	loom_xpath_error_t xe = { 0 };
	if (loom_xpath_compile(filter, NULL, &x, &xe) < 0)
		fail_msg("filter %s: %s", filter, xe.text);
	loom_xpath_result_t r;
	loom_xpath_result_init(&r);
	if (loom_xpath_eval(x, &W.xp, NULL, &r, &xe) < 0)
		fail_msg("eval %s: %s", filter, xe.text);
	loom_buf_t b = LOOM_BUF_INIT;
	for (size_t i = 0; i < r.n; i++) {
		const Loom__Attr *a = W.xp.attr(&W, r.rids[i], "ObjectID");
		loom_buf_printf(&b, "%s\n", a->values[0]->ref);
	}
	loom_xpath_result_release(&r);
	loom_xpath_destroy(&x);
	char *s = loom_strdup(loom_buf_cstr(&b));
	loom_buf_release(&b);
	return s;
}

static size_t count(const char *filter)
{
	char *s = search(filter);
	size_t n = 0;
	for (char *p = s; *p; p++)
		n += *p == '\n';
	free(s);
	return n;
}

/* The one ObjectID filter selects ("" when none; the caller frees it). */
static char *one(const char *filter)
{
	char *s = search(filter);
	char *nl = strchr(s, '\n');
	if (nl && nl[1])
		fail_msg("%s selects more than one resource", filter);
	if (nl)
		*nl = '\0';
	return s;
}

/* Replaces {atd:NAME}, {otd:NAME}, {bd:TYPE/ATTR}, {person:ACCOUNT} and
 * {dn:TYPE/DISPLAYNAME} by ObjectIDs. */
static char *expand(const char *spec)
{
	loom_buf_t b = LOOM_BUF_INIT;
	for (const char *p = spec; *p;) {
		if (*p != '{') {
			loom_buf_addc(&b, *p++);
			continue;
		}
		const char *end = strchr(p, '}');
		assert_non_null(end);
		char *tok = loom_strndup(p + 1, (size_t)(end - p - 1));
		char *colon = strchr(tok, ':');
		*colon = '\0';
		const char *arg = colon + 1;
		char *f;
		if (strcmp(tok, "atd") == 0) {
			f = loom_sprintf("/AttributeTypeDescription[Name = '%s']", arg);
		} else if (strcmp(tok, "otd") == 0) {
			f = loom_sprintf("/ObjectTypeDescription[Name = '%s']", arg);
		} else if (strcmp(tok, "person") == 0) {
			f = loom_sprintf("/Person[AccountName = '%s']", arg);
		} else if (strcmp(tok, "dn") == 0) {
			const char *slash = strchr(arg, '/');
			f = loom_sprintf("/%.*s[DisplayName = '%s']", (int)(slash - arg), arg, slash + 1);
		} else {
			const char *slash = strchr(arg, '/');
			f = loom_sprintf("/BindingDescription[BoundObjectType = /ObjectTypeDescription[Name = '%.*s'] and "
			    "BoundAttributeType = /AttributeTypeDescription[Name = '%s']]", (int)(slash - arg), arg, slash + 1);
		}
		char *id = one(f);
		loom_buf_adds(&b, id[0] ? id : "no-such-resource");
		free(id);
		free(f);
		free(tok);
		p = end + 1;
	}
	char *s = loom_strdup(loom_buf_cstr(&b));
	loom_buf_release(&b);
	return s;
}

/* Submits a request: op 'c' (create TYPE), 'm' (modify TARGET) or 'd'
 * (delete TARGET); changes "ATTR=V;+ATTR=V;-ATTR=V;-ATTR", expanded. */
static Loom__Request *submit(const char *as, char op, const char *type, const char *target, const char *changes)
{
	Loom__Request in = LOOM__REQUEST__INIT;
	char *as_x = expand(as);
	char *target_x = target ? expand(target) : loom_strdup("");
	in.requester = as_x;
	in.operation = op == 'c' ? LOOM__REQUEST__OPERATION__CREATE : op == 'm' ? LOOM__REQUEST__OPERATION__MODIFY
	                                                                       : LOOM__REQUEST__OPERATION__DELETE;
	in.target_type = (char *)(type ? type : "");
	in.target_id = target_x;
	char *copy = expand(changes ? changes : ""), *save = NULL;
	for (char *c = strtok_r(copy, ";", &save); c; c = strtok_r(NULL, ";", &save)) {
		Loom__RequestChange *ch = loom_malloc(sizeof *ch);
		loom__request_change__init(ch);
		ch->op = LOOM__REQUEST_CHANGE__OP__REPLACE;
		if (c[0] == '+' || c[0] == '-') {
			ch->op = c[0] == '+' ? LOOM__REQUEST_CHANGE__OP__ADD : LOOM__REQUEST_CHANGE__OP__REMOVE;
			c++;
		}
		const char *eq = strchr(c, '=');
		ch->attr = eq ? loom_strndup(c, (size_t)(eq - c)) : loom_strdup(c);
		if (eq && eq[1]) {
			ch->values = loom_calloc(1, sizeof *ch->values);
			ch->values[0] = wf_value_str(LOOM__VALUE__V_STR, eq + 1);
			ch->n_values = 1;
		}
		in.changes = loom_realloc(in.changes, (in.n_changes + 1) * sizeof *in.changes);
		in.changes[in.n_changes++] = ch;
	}
	free(copy);
	char *err = NULL;
	Loom__Request *rq = wf_request_submit(&W, &in, &err);
	if (rq == NULL)
		fail_msg("submit: %s", err);
	for (size_t i = 0; i < in.n_changes; i++)
		protobuf_c_message_free_unpacked(&in.changes[i]->base, NULL);
	free(in.changes);
	free(as_x);
	free(target_x);
	return rq;
}

static void completed(Loom__Request *rq, const char *what)
{
	if (rq->status != LOOM__REQUEST__STATUS__COMPLETED)
		fail_msg("%s: not completed: %s", what, rq->reason);
	protobuf_c_message_free_unpacked(&rq->base, NULL);
}

static void test_seed(void **state)
{
	(void)state;
	write_file("schema.yaml", schema);
	write_file("mprs.yaml", mprs);
	h_fresh();
	/* 14 built-in attributes + AccountName, Department, Manager (Description is built in) */
	assert_int_equal(count("/AttributeTypeDescription"), 17);
	/* 8 built-in types + Room */
	assert_int_equal(count("/ObjectTypeDescription"), 9);
	/* 12 built-in bindings of the schema types + 3 on Person + 1 on Room */
	assert_int_equal(count("/BindingDescription"), 16);
	assert_int_equal(count("/AttributeTypeDescription[Name = 'AccountName' and DataType = 'String' and "
	                       "StringRegex = '^[a-z0-9]+$' and Multivalued = false]"), 1);
	assert_int_equal(count("/BindingDescription[Required = true and BoundAttributeType = "
	                       "/AttributeTypeDescription[Name = 'AccountName']]"), 1);
	assert_int_equal(count("/BindingDescription[BoundObjectType = /ObjectTypeDescription[Name = 'Room']]"), 1);
	/* reasons still point into the file when the store holds its definition */
	Loom__Request *rq = submit("sync", 'c', "Person", NULL, "AccountName=Bad Name");
	assert_int_equal(rq->status, LOOM__REQUEST__STATUS__DENIED);
	assert_non_null(strstr(rq->reason, "/schema.yaml:2:"));
	protobuf_c_message_free_unpacked(&rq->base, NULL);
	uint64_t rid = W.next_rid;
	h_close();
	/* a second start makes nothing */
	h_open();
	assert_int_equal(W.next_rid, rid);
	assert_int_equal(count("/AttributeTypeDescription"), 17);
	assert_int_equal(count("/BindingDescription"), 16);
	/* deleted by requests: the files do not bring them back */
	completed(submit("sync", 'd', NULL, "{bd:Person/Department}", NULL), "delete the binding");
	completed(submit("sync", 'd', NULL, "{atd:Department}", NULL), "delete the attribute");
	completed(submit("sync", 'd', NULL, "{bd:Room/Description}", NULL), "delete Room's binding");
	completed(submit("sync", 'd', NULL, "{otd:Room}", NULL), "delete Room");
	/* the store wins over a changed file; a new attribute and binding in it are made */
	h_close();
	write_file("schema.yaml", schema2);
	h_open();
	assert_int_equal(count("/AttributeTypeDescription[Name = 'Department']"), 0);
	assert_int_equal(count("/ObjectTypeDescription[Name = 'Room']"), 0);
	assert_null(wf_attr_find(&W.policy, "Department"));
	assert_null(wf_type_find(&W.policy, "Room"));
	assert_int_equal(count("/AttributeTypeDescription[Name = 'Badge']"), 1);
	assert_int_equal(count("/BindingDescription[StringRegex = '^B[0-9]+$']"), 1);
	assert_string_equal(wf_attr_find(&W.policy, "AccountName")->re_text, "^[a-z0-9]+$");
	completed(submit("sync", 'c', "Person", NULL, "AccountName=ada7;Badge=B7"), "create with the new attribute");
	rq = submit("sync", 'c', "Person", NULL, "AccountName=bob;Badge=7");
	assert_int_equal(rq->status, LOOM__REQUEST__STATUS__DENIED);
	assert_non_null(strstr(rq->reason, "attribute 'Badge': '7' does not match regex '^B[0-9]+$'"));
	protobuf_c_message_free_unpacked(&rq->base, NULL);
	h_close();
}

typedef struct schema_case {
	const char *label;
	const char *as;        /* requester */
	char op;               /* 'c', 'm', 'd' */
	const char *type;      /* for create */
	const char *target;    /* for modify and delete */
	const char *changes;   /* as submit takes them */
	const char *want;      /* NULL: completed; else a substring of the reason */
} schema_case_t;

static void test_requests(void **state)
{
	(void)state;
	write_file("schema.yaml", schema);
	write_file("mprs.yaml", mprs);
	h_fresh();
	completed(submit("sync", 'c', "Person", NULL, "AccountName=ada"), "ada");
	static const schema_case_t cases[] = {
		/* a new attribute and binding: live for the next request */
		{ "unbound before", "sync", 'c', "Person", NULL, "AccountName=bob;Badge=B1", "attribute 'Badge' is not bound to type 'Person'" },
		{ "new attribute", "sync", 'c', "AttributeTypeDescription", NULL, "Name=Badge;DataType=String", NULL },
		{ "new binding", "sync", 'c', "BindingDescription", NULL, "BoundObjectType={otd:Person};BoundAttributeType={atd:Badge}", NULL },
		{ "used at once", "sync", 'c', "Person", NULL, "AccountName=bob;Badge=x1", NULL },
		/* a regex added to the attribute: enforced on the next request */
		{ "add a regex", "sync", 'm', NULL, "{atd:Badge}", "StringRegex=^B[0-9]+$", NULL },
		{ "regex enforced", "sync", 'm', NULL, "{person:ada}", "Badge=x2", "attribute 'Badge': 'x2' does not match regex '^B[0-9]+$' (AttributeTypeDescription 'Badge')" },
		{ "regex kept", "sync", 'm', NULL, "{person:ada}", "Badge=B2", NULL },
		/* a binding's regex replaces the attribute's for its type */
		{ "binding regex", "sync", 'm', NULL, "{bd:Person/Badge}", "StringRegex=^P[0-9]+$", NULL },
		{ "binding regex enforced", "sync", 'm', NULL, "{person:ada}", "Badge=B3", "does not match regex '^P[0-9]+$' (BindingDescription 'Badge on Person')" },
		{ "binding regex kept", "sync", 'm', NULL, "{person:ada}", "Badge=P3", NULL },
		{ "binding regex on a reference", "sync", 'm', NULL, "{bd:Person/Manager}", "StringRegex=^x$", "attribute 'StringRegex': a regex applies to string attributes only, 'Manager' is Reference (binding rule, BindingDescription 'Manager on Person')" },
		/* required through a binding, and on an implicit attribute */
		{ "required display name", "sync", 'c', "BindingDescription", NULL, "BoundObjectType={otd:Person};BoundAttributeType={atd:DisplayName};Required=true", NULL },
		{ "required enforced", "sync", 'c', "Person", NULL, "AccountName=carl", "attribute 'DisplayName' is required for type 'Person' (required binding, BindingDescription 'DisplayName on Person')" },
		{ "implicit binding kept on delete", "sync", 'd', NULL, "{bd:Person/DisplayName}", NULL, NULL },
		{ "not required any more", "sync", 'c', "Person", NULL, "AccountName=carl", NULL },
		{ "system attribute required", "sync", 'c', "BindingDescription", NULL, "BoundObjectType={otd:Person};BoundAttributeType={atd:Creator};Required=true", "attribute 'Required': 'Creator' is set by the service and cannot be required" },
		/* bad descriptions */
		{ "unknown data type", "sync", 'c', "AttributeTypeDescription", NULL, "Name=Shoe;DataType=Text", "attribute 'DataType': 'Text' is no data type: expected String, Integer, Boolean, DateTime, Reference or Binary (data type rule" },
		{ "regex does not compile", "sync", 'c', "AttributeTypeDescription", NULL, "Name=Shoe;DataType=String;StringRegex=a(", "attribute 'StringRegex': bad regex 'a(': " },
		{ "regex on an integer", "sync", 'c', "AttributeTypeDescription", NULL, "Name=Shoe;DataType=Integer;StringRegex=^1$", "attribute 'StringRegex': a regex applies to String attributes only, 'Shoe' is Integer (regex rule" },
		{ "taken name", "sync", 'c', "AttributeTypeDescription", NULL, "Name=Badge;DataType=Integer", "attribute 'Name': 'Badge' is taken: AttributeTypeDescription " },
		{ "built-in name", "sync", 'c', "AttributeTypeDescription", NULL, "Name=DisplayName;DataType=String", "attribute 'Name': 'DisplayName' is taken" },
		{ "bad name", "sync", 'c', "AttributeTypeDescription", NULL, "Name=Shoe Size;DataType=Integer", "attribute 'Name': 'Shoe Size' is no name" },
		{ "taken type name", "sync", 'c', "ObjectTypeDescription", NULL, "Name=Person", "attribute 'Name': 'Person' is taken" },
		{ "name required", "sync", 'c', "AttributeTypeDescription", NULL, "DataType=String", "attribute 'Name' is required for type 'AttributeTypeDescription'" },
		{ "binding to no type", "sync", 'c', "BindingDescription", NULL, "BoundObjectType={person:ada};BoundAttributeType={atd:Badge}", "attribute 'BoundObjectType': '" },
		{ "binding of no attribute", "sync", 'c', "BindingDescription", NULL, "BoundObjectType={otd:Person};BoundAttributeType={otd:Group}", "is no AttributeTypeDescription (binding rule" },
		{ "binding to a missing resource", "sync", 'c', "BindingDescription", NULL, "BoundObjectType=00000000-0000-4000-8000-000000000000;BoundAttributeType={atd:Badge}", "attribute 'BoundObjectType': '00000000-0000-4000-8000-000000000000' is no resource" },
		{ "duplicate binding", "sync", 'c', "BindingDescription", NULL, "BoundObjectType={otd:Person};BoundAttributeType={atd:Badge}", "the binding of 'Badge' to 'Person' is made already" },
		/* changes the values forbid */
		{ "data type of a used attribute", "sync", 'm', NULL, "{atd:Badge}", "DataType=Integer", "attribute 'DataType': 'Badge' cannot change from String to Integer: resource " },
		{ "rename", "sync", 'm', NULL, "{atd:Badge}", "Name=Token", "attribute 'Name': 'Badge' cannot become 'Token'" },
		{ "delete a used attribute", "sync", 'd', NULL, "{atd:Badge}", NULL, "attribute 'Badge' cannot be deleted: resource " },
		{ "delete a used binding", "sync", 'd', NULL, "{bd:Person/Badge}", NULL, "the binding 'Badge on Person' cannot be deleted: Person " },
		{ "rebind", "sync", 'm', NULL, "{bd:Person/Badge}", "BoundObjectType={otd:Group}", "attribute 'BoundObjectType': the binding 'Badge on Person' keeps its type and attribute" },
		/* built-ins */
		{ "delete a built-in attribute", "sync", 'd', NULL, "{atd:ObjectID}", NULL, "attribute 'ObjectID' is built in: it cannot be deleted (built-in rule" },
		{ "change a built-in attribute", "sync", 'm', NULL, "{atd:DisplayName}", "StringRegex=^x$", "attribute 'StringRegex': attribute 'DisplayName' is built in: only its DisplayName and Description change" },
		{ "describe a built-in", "sync", 'm', NULL, "{atd:DisplayName}", "Description=what it is called", NULL },
		{ "delete a built-in type", "sync", 'd', NULL, "{otd:Group}", NULL, "object type 'Group' is built in: it cannot be deleted" },
		{ "delete a built-in binding", "sync", 'd', NULL, "{bd:AttributeTypeDescription/Name}", NULL, "binding 'Name on AttributeTypeDescription' is built in" },
		/* who may: the schema is the administrators' and sync's */
		{ "a person may not", "{person:ada}", 'c', "AttributeTypeDescription", NULL, "Name=Shoe;DataType=Integer", "no management policy rule grants requester '" },
		/* a new object type, and its end */
		{ "new type", "sync", 'c', "ObjectTypeDescription", NULL, "Name=Badgeholder", NULL },
		{ "bind to it", "sync", 'c', "BindingDescription", NULL, "BoundObjectType={otd:Badgeholder};BoundAttributeType={atd:Badge};Required=true", NULL },
		{ "a resource of it", "sync", 'c', "Badgeholder", NULL, "DisplayName=h1;Badge=B9", NULL },
		{ "delete a used type", "sync", 'd', NULL, "{otd:Badgeholder}", NULL, "object type 'Badgeholder' cannot be deleted: Badgeholder " },
		/* taking an attribute away: values, then bindings, then attribute and type */
		{ "values gone", "sync", 'm', NULL, "{person:ada}", "-Badge", NULL },
		{ "values gone 2", "sync", 'm', NULL, "{person:bob}", "-Badge", NULL },
		{ "used elsewhere", "sync", 'd', NULL, "{atd:Badge}", NULL, "attribute 'Badge' cannot be deleted: resource " },
		{ "unbind", "sync", 'd', NULL, "{bd:Person/Badge}", NULL, NULL },
		{ "no resource of the type", "sync", 'd', NULL, "{dn:Badgeholder/h1}", NULL, NULL },
		{ "still bound", "sync", 'd', NULL, "{atd:Badge}", NULL, "attribute 'Badge' cannot be deleted: BindingDescription " },
		{ "type still bound", "sync", 'd', NULL, "{otd:Badgeholder}", NULL, "object type 'Badgeholder' cannot be deleted: BindingDescription " },
		{ "unbind 2", "sync", 'd', NULL, "{bd:Badgeholder/Badge}", NULL, NULL },
		{ "attribute gone", "sync", 'd', NULL, "{atd:Badge}", NULL, NULL },
		{ "type gone", "sync", 'd', NULL, "{otd:Badgeholder}", NULL, NULL },
		{ "no such type now", "sync", 'c', "Badgeholder", NULL, "DisplayName=h2", "unknown object type 'Badgeholder'" },
		{ "unused data type", "sync", 'c', "AttributeTypeDescription", NULL, "Name=Shoe;DataType=String", NULL },
		{ "data type of an unused attribute", "sync", 'm', NULL, "{atd:Shoe}", "DataType=Integer", NULL },
		{ "typed at once", "sync", 'c', "BindingDescription", NULL, "BoundObjectType={otd:Person};BoundAttributeType={atd:Shoe}", NULL },
		{ "integer enforced", "sync", 'm', NULL, "{person:carl}", "Shoe=big", "attribute 'Shoe': 'big' is not a valid integer" },
		{ "integer kept", "sync", 'm', NULL, "{person:carl}", "Shoe=44", NULL },
		{ "unbound after", "sync", 'm', NULL, "{person:carl}", "Badge=B1", "attribute 'Badge' is not bound to type 'Person'" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const schema_case_t *c = &cases[i];
		size_t before = count("/AttributeTypeDescription | /ObjectTypeDescription | /BindingDescription");
		size_t nattrs = W.policy.nattrs, ntypes = W.policy.ntypes;
		Loom__Request *rq = submit(c->as, c->op, c->type, c->target, c->changes);
		if (c->want == NULL) {
			if (rq->status != LOOM__REQUEST__STATUS__COMPLETED)
				fail_msg("%s: %s: %s", c->label, wf_status_name(rq->status), rq->reason);
		} else {
			if (rq->status != LOOM__REQUEST__STATUS__DENIED)
				fail_msg("%s: %s, want denied", c->label, wf_status_name(rq->status));
			if (strstr(rq->reason, c->want) == NULL)
				fail_msg("%s: reason '%s' lacks '%s'", c->label, rq->reason, c->want);
			/* nothing half-written */
			if (count("/AttributeTypeDescription | /ObjectTypeDescription | /BindingDescription") != before ||
			    W.policy.nattrs != nattrs || W.policy.ntypes != ntypes)
				fail_msg("%s: a denied request changed the schema", c->label);
			assert_null(W.schema_next);
		}
		protobuf_c_message_free_unpacked(&rq->base, NULL);
	}
	/* the same schema after a restart */
	h_close();
	h_open();
	assert_null(wf_attr_find(&W.policy, "Badge"));
	assert_null(wf_type_find(&W.policy, "Badgeholder"));
	const wf_attr_t *shoe = wf_attr_find(&W.policy, "Shoe");
	assert_non_null(shoe);
	assert_int_equal(shoe->type, WF_INTEGER);
	assert_non_null(wf_binding_find(wf_type_find(&W.policy, "Person"), "Shoe"));
	assert_int_equal(W.nschema_problems, 0);
	h_close();
}

static void test_load(void **state)
{
	(void)state;
	static const struct {
		const char *label;
		const char *text;
		const char *want;      /* NULL: loads */
	} cases[] = {
		{ "built-in declared again", "attributes:\n  - { name: Description, type: string }\n", NULL },
		{ "built-in with another type", "attributes:\n  - { name: Description, type: integer }\n",
		  "attribute 'Description' is built in (string, single-valued, no regex)" },
		{ "built-in with a regex", "attributes:\n  - { name: Name, type: string, regex: x }\n",
		  "attribute 'Name' is built in" },
		{ "binding regex", "attributes:\n  - { name: Code, type: string }\ntypes:\n  - name: Person\n    bindings:\n"
		  "      - { attribute: Code, regex: '^[A-Z]+$' }\n", NULL },
		{ "binding regex does not compile", "attributes:\n  - { name: Code, type: string }\ntypes:\n  - name: Person\n"
		  "    bindings:\n      - { attribute: Code, regex: 'a(' }\n", "type 'Person': binding of 'Code': bad regex 'a('" },
		{ "binding regex on an integer", "attributes:\n  - { name: Code, type: integer }\ntypes:\n  - name: Person\n"
		  "    bindings:\n      - { attribute: Code, regex: '^1$' }\n", "a regex applies to string attributes only" },
		{ "system attribute required", "types:\n  - name: Person\n    bindings:\n      - { attribute: ObjectID, required: true }\n",
		  "'ObjectID' is set by the service and cannot be required" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *cmd = loom_sprintf("rm -f %s/*.yaml", dir);
		assert_int_equal(system(cmd), 0);
		free(cmd);
		write_file("a.yaml", cases[i].text);
		wf_policy_t p;
		char *err = NULL;
		int rc = wf_policy_load(dir, &p, &err);
		if (cases[i].want == NULL) {
			if (rc != 0)
				fail_msg("%s: %s", cases[i].label, err);
			assert_non_null(wf_type_find(&p, "BindingDescription"));
			wf_policy_release(&p);
		} else {
			if (rc == 0)
				fail_msg("%s: loaded", cases[i].label);
			if (strstr(err, cases[i].want) == NULL)
				fail_msg("%s: error '%s' lacks '%s'", cases[i].label, err, cases[i].want);
			free(err);
		}
	}
	char *cmd = loom_sprintf("rm -f %s/*.yaml", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

int main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_seed),
		cmocka_unit_test(test_requests),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	char *cmd = loom_sprintf("rm -rf %s", dir);
	if (system(cmd) != 0)
		rc = 1;
	free(cmd);
	return rc;
}
