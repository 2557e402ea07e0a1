/* loom_xpath.h - the FIM XPath filter dialect: sets, groups, search scopes
 * and searches select resources with it.
 *
 *   /Person[EmployeeType = 'Contractor' and not(starts-with(DisplayName, '%'))]
 *   /Person[Manager = /Person[AccountName = 'jsmith']]
 *   /Group[DisplayName = 'Executive Team']/ComputedMember | /Person[Domain = 'DMZ']
 *   /Group[ExpirationTime <= op:add-dayTimeDuration-to-dateTime(fn:current-dateTime(), xs:dayTimeDuration('P7D'))]
 *
 * A filter is parsed once (loom_xpath_compile) and evaluated any number of
 * times (loom_xpath_eval). A compiled filter is immutable: several threads
 * may evaluate it at once, each into its own result. Evaluation reuses the
 * memory of the result it writes into, so evaluating into the same result
 * again allocates nothing once it has warmed up (a provider may allocate).
 *
 * The evaluator does not know where resources live: it asks a provider
 * (loom_xpath_provider_t) to list the resources of a type, to give a
 * resource's attribute, to resolve an ObjectID and, when the provider has an
 * index, to find the resources whose attribute equals a value (which is also
 * how "who references this id through Manager" is answered).
 * loom_xpath_mem_t (loom_xpath_mem.h) is an in-memory provider with hash
 * indexes; the policy service supplies one backed by its store.
 *
 * The dialect, its null and multi-value rules, the choices made where FIM is
 * unclear and what is refused with which message: docs/xpath.md.
 */
#ifndef LOOM_XPATH_H
#define LOOM_XPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sync.pb-c.h"

typedef struct loom_xpath loom_xpath_t;

/* Where a filter is wrong: the message (the caller frees it with
 * loom_xpath_error_release) and the place it points at. */
typedef struct loom_xpath_error {
	char *text;        /* "column 12: expected ']', found the end of the filter" (see loom_xpath_compile) */
	unsigned line;     /* line of the offending token (1-based, in the file when opts gave one) */
	unsigned column;   /* its column (1-based, in characters) */
} loom_xpath_error_t;

/* Frees e->text and zeroes *e; NULL allowed. */
void loom_xpath_error_release(loom_xpath_error_t *e);

typedef struct loom_xpath_compile_opts {
	const char *file;  /* config file the filter comes from, for messages (NULL: none) */
	unsigned line;     /* line of the file where the filter starts (0 is taken as 1) */
	unsigned column;   /* column of that line where it starts (0 is taken as 1) */
} loom_xpath_compile_opts_t;

/* Parses a filter: raw XPath, or the <Filter ... Dialect="...">…</Filter>
 * element FIM stores in a Set's Filter attribute (its text XML-unescaped;
 * positions still point into text). On success stores the filter in *ret
 * and returns 0. On failure returns -1 and, when ret_error is not NULL,
 * fills it: the text is "column N: what is wrong" ("line L, column N: ..."
 * when the filter spans lines, "FILE:LINE:COLUMN: ..." when opts->file is
 * set), usually "expected X, found Y". opts may be NULL. */
int loom_xpath_compile(const char *text, const loom_xpath_compile_opts_t *opts, loom_xpath_t **ret,
    loom_xpath_error_t *ret_error);

/* Frees *x (NULL allowed) and sets it to NULL. */
void loom_xpath_destroy(loom_xpath_t **x);

/* The filter text as given to loom_xpath_compile. */
const char *loom_xpath_text(const loom_xpath_t *x);

/* ---- what a filter depends on (for incremental set recomputation) ---- */

/* A change of attribute attr on a resource of object type type ("*": of
 * any type) may change the filter's result. attr "ObjectType" stands for
 * the creation or deletion of such a resource. */
typedef struct loom_xpath_dep {
	const char *type;  /* object type, or "*" */
	const char *attr;  /* attribute name, as written in the filter */
	bool inner;        /* read inside a location path compared with (Manager = /Person[...]) or by a later step */
} loom_xpath_dep_t;

typedef struct loom_xpath_deps {
	const loom_xpath_dep_t *v;  /* each (type, attribute) once, in order of appearance */
	size_t n;                   /* how many */
	const char *const *types;   /* the object types the result is drawn from ("*": any), NULL-terminated */
	bool temporal;              /* uses the current time: the result changes as time passes */
	bool has_contains;          /* uses contains() (FIM refuses it in Set and Group filters) */
	bool has_path_compare;      /* compares an attribute with a location path (Manager = /Person[...]) */
	bool has_step;              /* follows a reference attribute (/Group[...]/ComputedMember) */
} loom_xpath_deps_t;

/* What x depends on; borrowed from x. */
const loom_xpath_deps_t *loom_xpath_deps(const loom_xpath_t *x);

/* Whether a change of attribute attr on a resource of object type type
 * (NULL: of a type not known) may change x's result; attr "ObjectType" asks
 * about the creation or deletion of such a resource. A false answer is
 * certain; a true one means x must be re-evaluated. When x has neither a
 * location step nor a comparison with a location path (deps->has_step and
 * deps->has_path_compare are false), only the changed resource's own
 * membership can change: re-testing it with loom_xpath_matches suffices.
 * The passing of time is deps->temporal's business, not this one's. */
bool loom_xpath_depends_on(const loom_xpath_t *x, const char *type, const char *attr);

/* Whether a change of attribute attr on a resource of object type type
 * may change what a location path inside x selects (the right-hand side of
 * Manager = /Person[AccountName = 'x'], or anything of a filter with a
 * location step): then resources other than the changed one may enter or
 * leave x's result. When it says false but loom_xpath_depends_on says true,
 * only the changed resource's own membership can change: re-testing it
 * with loom_xpath_matches suffices (a Manager change for the filter above;
 * an AccountName change is inner). */
bool loom_xpath_depends_inner(const loom_xpath_t *x, const char *type, const char *attr);

/* ---- the resource provider ---- */

/* A resource, as the provider numbers it. */
typedef uint64_t loom_xpath_rid_t;

/* Called for each resource found; returns 0 to go on (anything else is
 * returned by the caller at once). */
typedef int loom_xpath_visit_fn(void *varg, loom_xpath_rid_t rid);

/* Value types, the numbering of loom_expr_type_t (string 1, integer 2,
 * boolean 3, binary 4, datetime 5, reference 6). */
typedef struct loom_xpath_attr_info {
	int type;          /* the type of every value of the attribute */
	bool multi;        /* the attribute may hold several values */
} loom_xpath_attr_info_t;

/* find_eq's answer when it has no index for the attribute. */
#define LOOM_XPATH_NO_INDEX 1

typedef struct loom_xpath_provider {
	void *arg;  /* passed to every callback */
	/* Calls fn for every resource of object type type (NULL: every
	 * resource), in any order, each once. Returns 0, what fn returned when
	 * not 0, or -1 with *ret_error (the caller frees it). */
	int (*scan)(void *arg, const char *type, loom_xpath_visit_fn *fn, void *varg, char **ret_error);
	/* The object type of rid, or NULL when rid does not exist. */
	const char *(*object_type)(void *arg, loom_xpath_rid_t rid);
	/* Attribute name (case-sensitive) of rid, or NULL when it has no value.
	 * ObjectID (a reference) and ObjectType (a string) are attributes too.
	 * What it returns stays valid until the next call of attr. */
	const Loom__Attr *(*attr)(void *arg, loom_xpath_rid_t rid, const char *name);
	/* The resource whose ObjectID is id (len bytes; ObjectIDs compare
	 * case-insensitively): returns 0 and sets *ret, or 1 when there is none. */
	int (*resolve)(void *arg, const char *id, size_t len, loom_xpath_rid_t *ret);
	/* The type of attribute name (the schema): returns 0 and fills *ret, or
	 * 1 when no resource can have it (then it is null everywhere). */
	int (*attr_info)(void *arg, const char *name, loom_xpath_attr_info_t *ret);
	/* Optional (NULL: the evaluator scans): calls fn for every resource of
	 * type (NULL: any) whose attribute attr has a value equal to v (strings
	 * and references compare case-insensitively; v has the attribute's
	 * type). With a reference attribute this finds the resources that
	 * reference an id. It may call fn for resources that do not match (the
	 * evaluator checks each); it must not miss one. Returns 0, what fn
	 * returned, LOOM_XPATH_NO_INDEX when it cannot answer for attr, or -1
	 * with *ret_error. */
	int (*find_eq)(void *arg, const char *type, const char *attr, const Loom__Value *v, loom_xpath_visit_fn *fn,
	    void *varg, char **ret_error);
} loom_xpath_provider_t;

/* ---- evaluation ---- */

typedef struct loom_xpath_eval_opts {
	int64_t now_us;    /* fn:current-dateTime() in µs since the epoch, UTC; 0: the clock */
} loom_xpath_eval_opts_t;

/* The resources a filter selects, and the memory reused by every
 * evaluation into it. */
typedef struct loom_xpath_result {
	loom_xpath_rid_t *rids;       /* the resources, ascending, each once */
	size_t n;                     /* how many */
	struct loom_xpath_work *work; /* private: memory reused by every evaluation into this result */
} loom_xpath_result_t;

/* Prepares an embedded result; loom_xpath_result_release undoes it. */
void loom_xpath_result_init(loom_xpath_result_t *r);
/* Frees what the result holds and leaves it empty (init state). */
void loom_xpath_result_release(loom_xpath_result_t *r);

/* Evaluates x against the resources of p and stores the selected ones in
 * *ret, replacing what it held. Returns 0, or -1 with an empty *ret and,
 * when ret_error is not NULL, the reason located at the part of the filter
 * that failed: a comparison the data makes meaningless (a reference with
 * '<', a string that is no datetime against a datetime attribute, '!=' on a
 * multi-valued attribute, a location step through a non-reference
 * attribute, ...) or a provider failure. opts may be NULL. */
int loom_xpath_eval(const loom_xpath_t *x, const loom_xpath_provider_t *p, const loom_xpath_eval_opts_t *opts,
    loom_xpath_result_t *ret, loom_xpath_error_t *ret_error);

/* Checks every comparison and location step of x against the schema p
 * gives (attr_info) without reading a resource: the errors of
 * loom_xpath_eval that do not depend on the data (a reference compared
 * with '<', a literal that is no integer against an integer attribute, a
 * step through a string attribute, ...), as the policy service needs when
 * a set's filter is saved. Returns 0, or -1 with *ret_error. */
int loom_xpath_check(const loom_xpath_t *x, const loom_xpath_provider_t *p, loom_xpath_error_t *ret_error);

/* Whether resource rid is selected by x (the question a set asks when one
 * resource changes). Cheap for /Type[predicate] branches (the predicate is
 * tested on rid alone); a branch with a location step is evaluated whole.
 * Returns 0 and sets *ret_match, or -1 as loom_xpath_eval does. r is
 * scratch memory, as for loom_xpath_eval (its rids are overwritten). */
int loom_xpath_matches(const loom_xpath_t *x, const loom_xpath_provider_t *p, const loom_xpath_eval_opts_t *opts,
    loom_xpath_rid_t rid, loom_xpath_result_t *r, bool *ret_match, loom_xpath_error_t *ret_error);

/* ---- values, shared with the in-memory provider and loomctl ---- */

/* Parses an ISO 8601 date and time as the dialect writes it:
 * YYYY-MM-DD, optionally followed by Thh:mm[:ss[.fraction]] and Z or
 * ±hh:mm (none: UTC), into µs since the epoch. Returns 0, or -1. */
int loom_xpath_parse_time(const char *s, size_t len, int64_t *ret_us);

/* Parses an xs:dayTimeDuration (-?P[nD][T[nH][nM][n[.f]S]]) into µs.
 * Returns 0, or -1 when s is not one or does not fit. */
int loom_xpath_parse_duration(const char *s, size_t len, int64_t *ret_us);

#endif
