/* loom_attrs.h - typed multi-valued attributes (proto/sync.proto): value
 * comparison and copies, attribute lists, and attribute-level deltas. Shared
 * by the engine and the agents.
 *
 * Ownership: lists and values here are heap memory owned by the protobuf-c
 * message they sit in and freed with protobuf_c_message_free_unpacked(); so
 * everything put into them is a fresh copy, never a literal or a borrow.
 */
#ifndef LOOM_ATTRS_H
#define LOOM_ATTRS_H

#include <stdbool.h>
#include <stddef.h>

#include "loom_buf.h"
#include "sync.pb-c.h"

/* The attribute named name (case-insensitive), or NULL. */
const Loom__Attr *loom_attr_find(Loom__Attr *const *attrs, size_t n, const char *name);
/* Values are equal: same type and content (references compare case-insensitively). */
bool loom_value_eq(const Loom__Value *a, const Loom__Value *b);
/* Appends the value's text (binary as hex). */
void loom_value_text(loom_buf_t *out, const Loom__Value *v);
/* Appends the value's comparison key: its text, lower-cased for strings. */
void loom_value_key(loom_buf_t *out, const Loom__Value *v);
Loom__Value *loom_value_dup(const Loom__Value *v);
/* A string value holding len bytes of s. */
Loom__Value *loom_value_str(const char *s, size_t len);
void loom_value_free(Loom__Value *v);
/* Sets name to copies of vals (no duplicates); nvals 0 removes it. */
void loom_attrs_set(Loom__Attr ***attrs, size_t *n, const char *name, Loom__Value *const *vals, size_t nvals);
/* Applies deltas in order. */
void loom_attrs_apply(Loom__Attr ***attrs, size_t *n, Loom__AttrDelta *const *deltas, size_t nd);
/* Deltas that turn from into to: a REPLACE per differing attribute, or for
 * a multi-valued one the values removed (DELETE) and added (ADD) when fewer
 * than its new values. */
void loom_attrs_diff(Loom__Attr *const *from, size_t nfrom, Loom__Attr *const *to, size_t nto,
    Loom__AttrDelta ***ret, size_t *ret_n);
/* Same values, in any order (NULL counts as no values). */
bool loom_attr_values_eq(const Loom__Attr *a, const Loom__Attr *b);
void loom_deltas_free(Loom__AttrDelta **d, size_t n);
/* Sets a protobuf-c string field to a copy of v, freeing the old value
 * unless it is protobuf-c's shared empty string (which must never be freed). */
void loom_pb_str_set(char **field, const char *v);

/* A set of values, for attributes with many values (a 50,000-member group):
 * membership by hash instead of comparing every pair. Values are borrowed;
 * identity is loom_value_eq's (references case-insensitive). */
typedef struct loom_vset loom_vset_t;
loom_vset_t *loom_vset_new(Loom__Value *const *v, size_t n);
bool loom_vset_has(loom_vset_t *s, const Loom__Value *v);
/* Adds v; returns false when it was there already. */
bool loom_vset_add(loom_vset_t *s, const Loom__Value *v);
bool loom_vset_remove(loom_vset_t *s, const Loom__Value *v);
size_t loom_vset_count(const loom_vset_t *s);
void loom_vset_free(loom_vset_t **s);
/* The same values in any order (each list without duplicates). */
bool loom_values_same(Loom__Value *const *a, size_t na, Loom__Value *const *b, size_t nb);

/* Frees a list of attributes. */
void loom_attrs_free(Loom__Attr **v, size_t n);

#endif
