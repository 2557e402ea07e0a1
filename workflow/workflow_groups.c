/* workflow_groups.c - group management (docs/workflows.md, "Groups").
 *
 * A Group's MembershipType says how its members come:
 *   Static    ExplicitMember, managed by its owners (Owner, several allowed)
 *             and by join requests, as JoinRestriction says: Open (granted),
 *             OwnerApproval (one owner approves: the authorization workflow
 *             group-owner-approval), None (refused);
 *   Manager   ManagerBase and the persons whose Manager it is, kept as HR
 *             changes managers: the service writes the group's Filter,
 *             /Person[ObjectID = 'M' or Manager = 'M'], and the Sets code
 *             keeps its members as it keeps any filter's;
 *   Criteria  its Filter (an XPath filter).
 * Explicit members and join requests are refused for the two computed
 * kinds. A join is a request by a person who is not an owner that adds
 * (or, to leave, removes) exactly that person to ExplicitMember. Without
 * MembershipType in the schema, groups are plain Sets (nothing here applies).
 */
#include "workflow_run.h"
#include "loom_alloc.h"
#include "loom_attrs.h"
#include "loom_buf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *str_of(const Loom__Resource *r, const char *name)
{
	const Loom__Attr *a = r ? wf_res_attr(r, name) : NULL;
	if (a == NULL || a->n_values == 0)
		return NULL;
	const Loom__Value *v = a->values[0];
	return v->v_case == LOOM__VALUE__V_STR ? v->str : v->v_case == LOOM__VALUE__V_REF ? v->ref : NULL;
}

static bool same(const Loom__Attr *a, const Loom__Attr *b)
{
	size_t na = a ? a->n_values : 0, nb = b ? b->n_values : 0;
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) {
		bool f = false;
		for (size_t j = 0; j < nb && !f; j++)
			f = loom_value_eq(a->values[i], b->values[j]);
		if (!f)
			return false;
	}
	return true;
}

static bool changes_attr(const Loom__Request *rq, const char *name)
{
	for (size_t i = 0; i < rq->n_changes; i++)
		if (strcmp(rq->changes[i]->attr, name) == 0)
			return true;
	return false;
}

/* MembershipType, or what a Group without one is: criteria-based when it
 * has a Filter (groups made before MembershipType), else static. */
static const char *kind_of(const Loom__Resource *r)
{
	const char *k = str_of(r, "MembershipType");
	return k ? k : str_of(r, "Filter") ? "Criteria" : "Static";
}

static char *label(const Loom__Resource *r)
{
	const char *dn = str_of(r, "DisplayName");
	return loom_sprintf("group '%s'", dn ? dn : r->object_id);
}

char *wf_groups_validate(wf_t *w, const Loom__Request *rq, const Loom__Resource *before, Loom__Resource *after)
{
	if (after == NULL || strcmp(after->object_type, "Group") != 0 || wf_attr_find(&w->policy, "MembershipType") == NULL)
		return NULL;
	const char *kind = kind_of(after);
	char *l = label(after);
	char *why = NULL;
	bool expl_changed = !same(before ? wf_res_attr(before, "ExplicitMember") : NULL, wf_res_attr(after, "ExplicitMember"));
	bool has_expl = wf_res_attr(after, "ExplicitMember") != NULL;
	const char *was = before ? kind_of(before) : NULL;
	if (strcasecmp(kind, "Manager") == 0) {
		const char *m = str_of(after, "ManagerBase");
		if (m == NULL)
			why = loom_sprintf("%s is manager-based: it needs ManagerBase, the manager whose direct reports are its "
			    "members (group membership rule)", l);
		else if (changes_attr(rq, "Filter"))
			why = loom_sprintf("attribute 'Filter': the Filter of manager-based %s is made from ManagerBase (group "
			    "membership rule)", l);
		else if (expl_changed && has_expl)
			why = loom_sprintf("%s is manager-based: its members are ManagerBase and their direct reports; it takes "
			    "no explicit member and no join request (group membership rule)", l);
		else {
			char *f = loom_sprintf("/Person[ObjectID = '%s' or Manager = '%s']", m, m);
			Loom__Value **v = loom_calloc(1, sizeof *v);
			v[0] = wf_value_str(LOOM__VALUE__V_STR, f);
			wf_res_set(after, "Filter", v, 1);
			free(f);
		}
	} else if (strcasecmp(kind, "Criteria") == 0) {
		if (was && strcasecmp(was, "Manager") == 0 && !changes_attr(rq, "Filter"))
			why = loom_sprintf("%s becomes criteria-based: give it its Filter (group membership rule)", l);
		else if (str_of(after, "Filter") == NULL)
			why = loom_sprintf("%s is criteria-based: it needs a Filter (group membership rule)", l);
		else if (str_of(after, "ManagerBase"))
			why = loom_sprintf("attribute 'ManagerBase': %s is criteria-based, not manager-based (group membership "
			    "rule)", l);
		else if (expl_changed && has_expl)
			why = loom_sprintf("%s is criteria-based: its members are what its Filter selects; it takes no explicit "
			    "member and no join request (group membership rule)", l);
	} else if (strcasecmp(kind, "Static") == 0) {
		if (was && strcasecmp(was, "Manager") == 0 && !changes_attr(rq, "Filter"))
			wf_res_set(after, "Filter", NULL, 0); /* the Filter was the service's */
		if (str_of(after, "Filter"))
			why = loom_sprintf("attribute 'Filter': %s is static (owners and join requests manage ExplicitMember): set "
			    "MembershipType Criteria to give it a Filter (group membership rule)", l);
		else if (str_of(after, "ManagerBase"))
			why = loom_sprintf("attribute 'ManagerBase': %s is static: set MembershipType Manager (group membership "
			    "rule)", l);
	} else {
		why = loom_sprintf("attribute 'MembershipType': '%s': expected Static, Manager or Criteria (group membership "
		    "rule)", kind);
	}
	free(l);
	return why;
}

static void push(char ***v, size_t *n, const char *s)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i], s) == 0)
			return;
	*v = loom_realloc(*v, (*n + 1) * sizeof **v);
	(*v)[(*n)++] = loom_strdup(s);
}

static bool holds(const Loom__Resource *r, const char *attr, const char *id)
{
	const Loom__Attr *a = wf_res_attr(r, attr);
	for (size_t i = 0; a && i < a->n_values; i++)
		if (a->values[i]->v_case == LOOM__VALUE__V_REF && strcasecmp(a->values[i]->ref, id) == 0)
			return true;
	return false;
}

int wf_groups_authorize(wf_t *w, Loom__Request *rq, const Loom__Resource *before, const Loom__Resource *after,
    char **ret_reason)
{
	(void)after;
	if (before == NULL || strcmp(before->object_type, "Group") != 0 ||
	    wf_attr_find(&w->policy, "MembershipType") == NULL || rq->n_changes != 1)
		return 0;
	const Loom__RequestChange *c = rq->changes[0];
	if (strcmp(c->attr, "ExplicitMember") != 0 || c->n_values != 1 || c->op == LOOM__REQUEST_CHANGE__OP__REPLACE)
		return 0;
	const Loom__Value *v = c->values[0];
	const char *id = v->v_case == LOOM__VALUE__V_STR ? v->str : v->v_case == LOOM__VALUE__V_REF ? v->ref : NULL;
	if (id == NULL || strcasecmp(id, rq->requester) != 0 || holds(before, "Owner", rq->requester))
		return 0; /* not a person adding or removing themselves, or an owner: the MPRs decide */
	char *l = label(before);
	int rc = 1;
	if (c->op == LOOM__REQUEST_CHANGE__OP__REMOVE) {
		push(&rq->granting_mprs, &rq->n_granting_mprs, "(built-in: a member leaves a static group)");
	} else {
		const char *jr = str_of(before, "JoinRestriction");
		if (jr == NULL)
			jr = "OwnerApproval";
		if (strcasecmp(jr, "Open") == 0) {
			push(&rq->granting_mprs, &rq->n_granting_mprs, "(built-in: join an open group)");
		} else if (strcasecmp(jr, "None") == 0) {
			*ret_reason = loom_sprintf("%s takes no join requests (JoinRestriction None): ask an owner", l);
			rc = -1;
		} else if (wf_res_attr(before, "Owner") == NULL) {
			*ret_reason = loom_sprintf("%s has no owner to approve a join request", l);
			rc = -1;
		} else {
			push(&rq->granting_mprs, &rq->n_granting_mprs, "(built-in: join a group with owner approval)");
			push(&rq->workflows, &rq->n_workflows, "authz:group-owner-approval");
		}
	}
	free(l);
	return rc;
}
