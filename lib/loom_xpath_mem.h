/* loom_xpath_mem.h - resources in memory, as an XPath provider.
 *
 * Holds resources (object type, ObjectID, typed attributes) and answers the
 * evaluator's questions (loom_xpath_provider_t) from hash indexes: one on
 * ObjectType, one on ObjectID, and one per attribute on its values, built
 * the first time an equality on that attribute is looked up and kept up to
 * date as resources are added. Resource numbers (rids) are 0, 1, 2, ... in
 * the order of addition.
 *
 * The attribute types are a schema: an attribute has one type and is
 * single- or multi-valued for every resource, declared by
 * loom_xpath_mem_declare or by its first values.
 *
 * Used by `loomctl xpath eval` (resources from a YAML file), the tests and
 * the benchmark. Not thread-safe: the provider's index look-ups reuse one
 * scratch buffer and build indexes on demand.
 */
#ifndef LOOM_XPATH_MEM_H
#define LOOM_XPATH_MEM_H

#include <stdbool.h>
#include <stddef.h>

#include "loom_xpath.h"
#include "sync.pb-c.h"

typedef struct loom_xpath_mem loom_xpath_mem_t;

loom_xpath_mem_t *loom_xpath_mem_new(void);
/* Frees *m and every resource (NULL allowed); sets *m to NULL. */
void loom_xpath_mem_destroy(loom_xpath_mem_t **m);

/* Declares attribute name of type (1 string, 2 integer, 3 boolean, 4 binary,
 * 5 datetime, 6 reference), multi-valued or not. Returns 0, or -1 with
 * *ret_error (the caller frees it) when it is already declared otherwise. */
int loom_xpath_mem_declare(loom_xpath_mem_t *m, const char *name, int type, bool multi, char **ret_error);

/* Adds a resource of object type type with ObjectID id and the n
 * attributes attrs (ObjectID and ObjectType are made from type and id and
 * must not be among them). Takes the attributes (each freed with
 * protobuf_c_message_free_unpacked) and the array, whatever happens. An
 * undeclared attribute is declared by its values (multi-valued when it has
 * several). Returns 0 and sets *ret_rid (may be NULL), or -1 with
 * *ret_error when id is taken or a value's type differs from the
 * attribute's. */
int loom_xpath_mem_add(loom_xpath_mem_t *m, const char *type, const char *id, Loom__Attr **attrs, size_t n,
    loom_xpath_rid_t *ret_rid, char **ret_error);

/* Replaces attribute a->name of resource rid with a's values (none:
 * removes it), keeping the indexes up to date; takes a whatever happens.
 * Returns 0, or -1 with *ret_error when rid does not exist, a is ObjectID
 * or ObjectType, or a's values do not fit the attribute's type. */
int loom_xpath_mem_set(loom_xpath_mem_t *m, loom_xpath_rid_t rid, Loom__Attr *a, char **ret_error);

/* Makes resource rid (a Set or Group) one whose ComputedMember
 * loom_xpath_mem_compute_sets computes: its ExplicitMember and what filter
 * x selects (x may be NULL; m takes it). where ("FILE:LINE:COLUMN" of the
 * filter, or NULL) prefixes messages about it. */
void loom_xpath_mem_add_set(loom_xpath_mem_t *m, loom_xpath_rid_t rid, loom_xpath_t *x, const char *where);

/* Computes the ComputedMember of every set added with
 * loom_xpath_mem_add_set, again and again until none changes (a set's
 * filter may read other sets' members). Returns 0, or -1 with *ret_error:
 * a filter's evaluation error (located in the file the filter came from),
 * or sets whose members do not settle (filters that depend on each other). */
int loom_xpath_mem_compute_sets(loom_xpath_mem_t *m, const loom_xpath_eval_opts_t *opts, char **ret_error);

/* Loads a YAML file: a list of maps, each with ObjectType, ObjectID and
 * attributes (a list is a multi-valued attribute; plain true/false are
 * booleans, plain integers integers, plain ISO 8601 dates and datetimes
 * (2026-01-02, 2026-01-02T03:04:05Z) datetimes, other scalars strings; a string
 * attribute any of whose values is the ObjectID of a resource of the file
 * is a reference attribute; null, ~ and '' are no value). A Set or Group
 * with a Filter or an ExplicitMember and no ComputedMember gets its filter
 * compiled (errors located in the file) and is added with
 * loom_xpath_mem_add_set: call loom_xpath_mem_compute_sets after loading
 * to compute its members. Returns 0, or -1
 * with *ret_error "FILE:LINE:COLUMN: what is wrong" (the caller frees it).
 * Nothing is added when it fails. */
int loom_xpath_mem_load_yaml(loom_xpath_mem_t *m, const char *path, char **ret_error);
/* Same for text in memory; name is used in messages. */
int loom_xpath_mem_load_yaml_string(loom_xpath_mem_t *m, const char *name, const char *text, size_t len,
    char **ret_error);

/* How many resources there are. */
size_t loom_xpath_mem_count(const loom_xpath_mem_t *m);
/* The ObjectID of rid (borrowed), or NULL when there is no such resource. */
const char *loom_xpath_mem_object_id(const loom_xpath_mem_t *m, loom_xpath_rid_t rid);

/* Fills *ret with the callbacks that read m. */
void loom_xpath_mem_provider(loom_xpath_mem_t *m, loom_xpath_provider_t *ret);

/* How many find_eq look-ups were answered from an index (for tests that
 * prove an index was used). */
size_t loom_xpath_mem_index_lookups(const loom_xpath_mem_t *m);

#endif
