/* engine_scope.c - FIM scoping filters on synchronization rules.
 *
 * A filter is a list of groups; an object is in scope when any group holds,
 * and a group holds when all its clauses do. A clause tests one attribute
 * (of the connector-space object for inbound rules, of the metaverse object
 * for outbound ones):
 *
 *   positive operators (EQUAL, LESSTHAN..., CONTAINS, STARTSWITH, ENDSWITH,
 *   ISIN, ISBITSET) hold when any value of the attribute satisfies them;
 *   negative ones (NOTEQUAL, NOTCONTAINS, NOTSTARTSWITH, NOTENDSWITH, ISNOTIN,
 *   ISNOTBITSET) hold when no value does, so an absent attribute satisfies them;
 *   ISNULL / ISNOTNULL test whether the attribute has a value.
 *
 * Strings compare case-insensitively (like joins). LESSTHAN and its kin
 * compare as integers when both sides are integers, as strings otherwise.
 *
 * ISMEMBEROF / ISNOTMEMBEROF test membership in the metaverse: the object's
 * metaverse object is one of the references in the clause's attribute
 * (member) of the metaverse group joined to the connector at DN 'value' in
 * agent 'agent' (default: the rule's). One point read of mv_ref per test;
 * the group's id is remembered for the run. An object not joined yet, or a
 * group not in the metaverse, is a member of nothing.
 */
#define _GNU_SOURCE /* strcasestr */
#include "engine.h"
#include "loom_alloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool parse_int(const char *s, long long *ret)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return false;
	*ret = v;
	return true;
}

static bool has_suffix_ci(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* One value against a positive operator. */
static bool value_holds(int op, const char *v, const loom_sync_clause_t *c)
{
	switch (op) {
	case LOOM_SCOPE_EQUAL: return strcasecmp(v, c->value) == 0;
	case LOOM_SCOPE_CONTAINS: return strcasestr(v, c->value) != NULL;
	case LOOM_SCOPE_STARTSWITH: return strncasecmp(v, c->value, strlen(c->value)) == 0;
	case LOOM_SCOPE_ENDSWITH: return has_suffix_ci(v, c->value);
	case LOOM_SCOPE_ISIN:
		for (size_t i = 0; i < c->values.n; i++)
			if (strcasecmp(v, c->values.v[i]) == 0)
				return true;
		return false;
	case LOOM_SCOPE_ISBITSET: {
		long long x, mask;
		return parse_int(v, &x) && parse_int(c->value, &mask) && (x & mask) == mask;
	}
	case LOOM_SCOPE_LESSTHAN:
	case LOOM_SCOPE_LESSTHAN_OR_EQUAL:
	case LOOM_SCOPE_GREATERTHAN:
	case LOOM_SCOPE_GREATERTHAN_OR_EQUAL: {
		long long a, b;
		int cmp;
		if (parse_int(v, &a) && parse_int(c->value, &b))
			cmp = a < b ? -1 : a > b;
		else
			cmp = strcasecmp(v, c->value);
		return op == LOOM_SCOPE_LESSTHAN ? cmp < 0 : op == LOOM_SCOPE_LESSTHAN_OR_EQUAL ? cmp <= 0
		    : op == LOOM_SCOPE_GREATERTHAN ? cmp > 0 : cmp >= 0;
	}
	default:
		return false;
	}
}

/* The positive form of a negative operator, or -1. */
static int positive_of(int op)
{
	switch (op) {
	case LOOM_SCOPE_NOTEQUAL: return LOOM_SCOPE_EQUAL;
	case LOOM_SCOPE_NOTCONTAINS: return LOOM_SCOPE_CONTAINS;
	case LOOM_SCOPE_NOTSTARTSWITH: return LOOM_SCOPE_STARTSWITH;
	case LOOM_SCOPE_NOTENDSWITH: return LOOM_SCOPE_ENDSWITH;
	case LOOM_SCOPE_ISNOTIN: return LOOM_SCOPE_ISIN;
	case LOOM_SCOPE_ISNOTBITSET: return LOOM_SCOPE_ISBITSET;
	default: return -1;
	}
}

/* The metaverse id of the group a membership clause names, remembered for
 * the run. */
static bool group_id(engine_t *e, const char *agent, const char *dn, uint8_t id[8])
{
	loom_buf_t k = LOOM_BUF_INIT;
	loom_buf_adds(&k, agent);
	loom_buf_addc(&k, '\0');
	for (const char *p = dn; *p; p++)
		loom_buf_addc(&k, (char)tolower((unsigned char)*p));
	if (e->groups == NULL)
		e->groups = loom_map_new();
	const uint8_t *have = loom_map_get(e->groups, k.data, k.len);
	bool ok = have != NULL;
	if (have) {
		memcpy(id, have, 8);
	} else if ((ok = eng_ref_in(e, agent, dn, id) == 1)) {
		loom_map_put(e->groups, k.data, k.len, loom_memdup(id, 8));
	}
	loom_buf_release(&k);
	return ok;
}

static bool is_member(const eng_member_ctx_t *m, const loom_sync_clause_t *c)
{
	if (m == NULL || m->id == NULL)
		return false;
	uint8_t g[8];
	if (!group_id(m->e, c->agent ? c->agent : m->agent, c->value, g))
		return false;
	return eng_mvref_has(m->e, m->id, g, c->attribute);
}

void eng_groups_forget(engine_t *e)
{
	size_t pos = 0;
	void *v;
	while (e->groups && loom_map_next(e->groups, &pos, NULL, NULL, &v))
		free(v);
	loom_map_destroy(&e->groups);
}

static bool clause_holds(const loom_sync_clause_t *c, loom_expr_lookup_fn *lookup, void *arg, const eng_member_ctx_t *m)
{
	if (c->op == LOOM_SCOPE_ISMEMBEROF)
		return is_member(m, c);
	if (c->op == LOOM_SCOPE_ISNOTMEMBEROF)
		return !is_member(m, c);
	const Loom__Attr *a = lookup(arg, c->attribute);
	size_t n = a ? a->n_values : 0;
	if (c->op == LOOM_SCOPE_ISNULL)
		return n == 0;
	if (c->op == LOOM_SCOPE_ISNOTNULL)
		return n > 0;
	int pos = positive_of(c->op);
	int op = pos >= 0 ? pos : c->op;
	bool any = false;
	loom_buf_t t = LOOM_BUF_INIT;
	for (size_t i = 0; i < n && !any; i++) {
		loom_buf_reset(&t);
		loom_value_text(&t, a->values[i]);
		any = value_holds(op, loom_buf_cstr(&t), c);
	}
	loom_buf_release(&t);
	return pos >= 0 ? !any : any;
}

bool eng_scope_match(const loom_cfg_array_t *filter, loom_expr_lookup_fn *lookup, void *arg, const eng_member_ctx_t *m)
{
	if (filter->n == 0)
		return true;
	const loom_sync_scopegroup_t *g = filter->v;
	for (size_t i = 0; i < filter->n; i++) {
		const loom_sync_clause_t *c = g[i].all.v;
		bool all = true;
		for (size_t k = 0; k < g[i].all.n && all; k++)
			all = clause_holds(&c[k], lookup, arg, m);
		if (all)
			return true;
	}
	return false;
}

void eng_scope_check(const char *file, const loom_sync_rule_t *rule, loom_buf_t *errors)
{
	const loom_sync_scopegroup_t *g = rule->scope_filter.v;
	for (size_t i = 0; i < rule->scope_filter.n; i++) {
		const loom_sync_clause_t *c = g[i].all.v;
		for (size_t k = 0; k < g[i].all.n; k++) {
			const char *what = NULL;
			int op = c[k].op;
			if ((op == LOOM_SCOPE_ISMEMBEROF || op == LOOM_SCOPE_ISNOTMEMBEROF) && c[k].value == NULL)
				what = "ISMEMBEROF and ISNOTMEMBEROF need 'value', the group's DN";
			else if (c[k].agent && op != LOOM_SCOPE_ISMEMBEROF && op != LOOM_SCOPE_ISNOTMEMBEROF)
				what = "'agent' belongs to ISMEMBEROF and ISNOTMEMBEROF";
			else if ((op == LOOM_SCOPE_ISIN || op == LOOM_SCOPE_ISNOTIN) && c[k].values.n == 0)
				what = "ISIN and ISNOTIN need 'values', a list";
			else if (op != LOOM_SCOPE_ISIN && op != LOOM_SCOPE_ISNOTIN && op != LOOM_SCOPE_ISNULL &&
			    op != LOOM_SCOPE_ISNOTNULL && c[k].value == NULL)
				what = "this operator needs 'value'";
			else if ((op == LOOM_SCOPE_ISBITSET || op == LOOM_SCOPE_ISNOTBITSET) && c[k].value) {
				long long mask;
				if (!parse_int(c[k].value, &mask))
					what = "ISBITSET and ISNOTBITSET need an integer 'value' (the bit mask)";
			}
			if (what)
				loom_buf_printf(errors, "%s: rule '%s': scope_filter group %zu clause %zu (%s): %s\n", file,
				    rule->name, i + 1, k + 1, c[k].attribute, what);
		}
	}
}
