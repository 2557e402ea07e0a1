/* ma_ext_json.c - the JSON of the extensible agents' protocol
 * (docs/agents.md "Extensible agents"):
 *
 *   value      "text" (string), 42 (integer), true/false (boolean),
 *              {"binary": "<base64>"}, {"time": "2024-05-01T12:00:00Z"} (UTC,
 *              up to 6 fraction digits; or an integer of microseconds since
 *              the epoch), {"ref": "<dn>"} (a reference)
 *   attrs      {"name": value or [values...]}; null or [] is no value
 *   deltas     [{"name": "...", "op": "replace|add|delete", "values": [...]}]
 */
#include "ma_ext.h"
#include "loom_alloc.h"
#include "loom_attrs.h"
#include "loom_expr.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* {"time":"2024-03-01T12:30:00Z"}, with .ffffff when there are microseconds. */
static void add_time(loom_buf_t *b, long long us)
{
	loom_buf_adds(b, "{\"time\":\"");
	loom_expr_format_time(b, us);
	loom_buf_adds(b, "\"}");
}

void ext_json_value(loom_buf_t *b, const Loom__Value *v)
{
	switch (v->v_case) {
	case LOOM__VALUE__V_STR: loom_buf_add_json_str(b, v->str, strlen(v->str)); break;
	case LOOM__VALUE__V_INT: loom_buf_printf(b, "%lld", (long long)v->int_); break;
	case LOOM__VALUE__V_BOOL: loom_buf_adds(b, v->bool_ ? "true" : "false"); break;
	case LOOM__VALUE__V_REF:
		loom_buf_adds(b, "{\"ref\":");
		loom_buf_add_json_str(b, v->ref, strlen(v->ref));
		loom_buf_addc(b, '}');
		break;
	case LOOM__VALUE__V_TIME: add_time(b, v->time); break;
	case LOOM__VALUE__V_BIN: {
		size_t n = sodium_base64_ENCODED_LEN(v->bin.len, sodium_base64_VARIANT_ORIGINAL);
		char *t = loom_malloc(n);
		sodium_bin2base64(t, n, v->bin.data, v->bin.len, sodium_base64_VARIANT_ORIGINAL);
		loom_buf_printf(b, "{\"binary\":\"%s\"}", t);
		free(t);
		break;
	}
	default: loom_buf_adds(b, "null"); break;
	}
}

/* YYYY-MM-DDTHH:MM:SS[.ffffff][Z] as microseconds (UTC). */
static bool parse_iso(const char *s, long long *ret)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	int n = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
		&tm.tm_sec, &n) != 6 || n != 19)
		return false;
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
	    tm.tm_sec > 60)
		return false;
	const char *p = s + n;
	long long frac = 0;
	if (*p == '.') {
		int digits = 0;
		for (p++; isdigit((unsigned char)*p); p++, digits++)
			if (digits < 6)
				frac = frac * 10 + (*p - '0');
		if (digits == 0)
			return false;
		for (; digits < 6; digits++)
			frac *= 10;
	}
	if (*p == 'Z')
		p++;
	if (*p)
		return false;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*ret = (long long)timegm(&tm) * 1000000LL + frac;
	return true;
}

Loom__Value *ext_value_from_json(const loom_json_t *j, char *why, size_t why_len)
{
	Loom__Value *v = loom_malloc(sizeof *v);
	loom__value__init(v);
	switch (j->type) {
	case LOOM_JSON_STRING:
		v->v_case = LOOM__VALUE__V_STR;
		v->str = loom_strndup(j->s, j->len);
		return v;
	case LOOM_JSON_BOOL:
		v->v_case = LOOM__VALUE__V_BOOL;
		v->bool_ = j->b;
		return v;
	case LOOM_JSON_NUMBER:
		if (!j->is_int) {
			snprintf(why, why_len, "the number %g is not an integer (write other numbers as strings)", j->d);
			break;
		}
		v->v_case = LOOM__VALUE__V_INT;
		v->int_ = j->i;
		return v;
	case LOOM_JSON_OBJECT: {
		if (j->n != 1) {
			snprintf(why, why_len, "a value object has one key: binary, time or ref");
			break;
		}
		const char *key = j->keys[0];
		const loom_json_t *x = j->items[0];
		if (strcmp(key, "binary") == 0 && x->type == LOOM_JSON_STRING) {
			size_t max = x->len / 4 * 3 + 3;
			unsigned char *bin = loom_malloc(max ? max : 1);
			size_t len = 0;
			const char *end = NULL;
			if (sodium_base642bin(bin, max, x->s, x->len, " \t\r\n", &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
			    end != x->s + x->len) {
				free(bin);
				snprintf(why, why_len, "bad base64 in a binary value");
				break;
			}
			v->v_case = LOOM__VALUE__V_BIN;
			v->bin.data = bin;
			v->bin.len = len;
			return v;
		}
		if (strcmp(key, "time") == 0 && (x->type == LOOM_JSON_STRING || (x->type == LOOM_JSON_NUMBER && x->is_int))) {
			long long us = x->i;
			if (x->type == LOOM_JSON_STRING && !parse_iso(x->s, &us)) {
				snprintf(why, why_len, "time '%.40s' is not YYYY-MM-DDTHH:MM:SS[.ffffff][Z]", x->s);
				break;
			}
			v->v_case = LOOM__VALUE__V_TIME;
			v->time = us;
			return v;
		}
		if (strcmp(key, "ref") == 0 && x->type == LOOM_JSON_STRING) {
			v->v_case = LOOM__VALUE__V_REF;
			v->ref = loom_strndup(x->s, x->len);
			return v;
		}
		snprintf(why, why_len, "a value object is {\"binary\": base64}, {\"time\": ISO 8601 or microseconds} or "
				       "{\"ref\": dn}, not {\"%.32s\": %s}",
		    key, loom_json_type_name(x->type));
		break;
	}
	default:
		snprintf(why, why_len, "%s is not a value", loom_json_type_name(j->type));
		break;
	}
	free(v);
	return NULL;
}

/* The values of j (a value, an array of values, or null) into vals. */
static int values_of(const loom_json_t *j, const char *name, Loom__Value ***ret, size_t *ret_n, char *why, size_t why_len)
{
	const loom_json_t *const *items = &j;
	size_t n = 1;
	if (j->type == LOOM_JSON_NULL)
		n = 0;
	else if (j->type == LOOM_JSON_ARRAY) {
		items = (const loom_json_t *const *)j->items;
		n = j->n;
	}
	Loom__Value **vals = loom_calloc(n ? n : 1, sizeof *vals);
	for (size_t i = 0; i < n; i++) {
		char w[200];
		vals[i] = ext_value_from_json(items[i], w, sizeof w);
		if (vals[i] == NULL) {
			snprintf(why, why_len, "attribute '%.64s': %s", name, w);
			for (size_t k = 0; k < i; k++)
				loom_value_free(vals[k]);
			free(vals);
			return -1;
		}
	}
	*ret = vals;
	*ret_n = n;
	return 0;
}

Loom__ImportObject *ext_object_from_json(const loom_agentcfg_t *cfg, bool delta, const loom_json_t *j, char *why,
    size_t why_len)
{
	static const char *const changes[] = { "full", "add", "update", "delete", "replace", NULL };
	static const char *const known[] = { "type", "change", "anchor", "dn", "new_dn", "object_type", "attrs", "deltas",
		NULL };
	for (size_t i = 0; i < j->n; i++) {
		bool ok = false;
		for (int k = 0; known[k]; k++)
			if (strcmp(j->keys[i], known[k]) == 0)
				ok = true;
		if (!ok) {
			snprintf(why, why_len, "unknown key '%.48s' in an object message", j->keys[i]);
			return NULL;
		}
		if (strcmp(j->keys[i], "attrs") != 0 && strcmp(j->keys[i], "deltas") != 0 &&
		    j->items[i]->type != LOOM_JSON_STRING) {
			snprintf(why, why_len, "'%s' must be a string, not %s", j->keys[i], loom_json_type_name(j->items[i]->type));
			return NULL;
		}
	}
	const char *change = loom_json_get_str(j, "change");
	int ci = 0;
	if (change) {
		while (changes[ci] && strcmp(changes[ci], change) != 0)
			ci++;
		if (changes[ci] == NULL) {
			snprintf(why, why_len, "change '%.32s': expected full, add, update, delete or replace", change);
			return NULL;
		}
	} else {
		ci = delta ? 4 : 0;
	}
	if (!delta && ci != 0) {
		snprintf(why, why_len, "change '%s' in a full import: a full import sends whole objects (change full)",
		    changes[ci]);
		return NULL;
	}
	if (delta && ci == 0)
		ci = 4; /* the whole object as it is now */
	const char *anchor = loom_json_get_str(j, "anchor");
	const char *dn = loom_json_get_str(j, "dn");
	bool by_dn_ok = ci == 2 || ci == 3; /* update and delete may name the object by DN alone */
	bool dn_anchor = strcasecmp(cfg->anchor, "dn") == 0;
	if (dn_anchor)
		anchor = dn;
	if ((anchor == NULL || anchor[0] == '\0') && !(by_dn_ok && dn && dn[0])) {
		snprintf(why, why_len, dn_anchor ? "object without its dn (the anchor)" : "object without its anchor");
		return NULL;
	}
	const loom_json_t *attrs = loom_json_get(j, "attrs");
	const loom_json_t *deltas = loom_json_get(j, "deltas");
	if (attrs && attrs->type != LOOM_JSON_OBJECT) {
		snprintf(why, why_len, "attrs must be an object of name: value(s)");
		return NULL;
	}
	if (deltas && deltas->type != LOOM_JSON_ARRAY) {
		snprintf(why, why_len, "deltas must be an array");
		return NULL;
	}
	if (deltas && ci != 2) {
		snprintf(why, why_len, "deltas belong to change update (attrs hold a whole object)");
		return NULL;
	}
	if (attrs && (ci == 2 || ci == 3)) {
		snprintf(why, why_len, "attrs do not belong to change %s (update sends deltas)", changes[ci]);
		return NULL;
	}
	static const Loom__ImportObject__Change kinds[] = { LOOM__IMPORT_OBJECT__CHANGE__FULL,
		LOOM__IMPORT_OBJECT__CHANGE__ADD, LOOM__IMPORT_OBJECT__CHANGE__UPDATE, LOOM__IMPORT_OBJECT__CHANGE__DELETE,
		LOOM__IMPORT_OBJECT__CHANGE__REPLACE };
	Loom__ImportObject *o = loom_malloc(sizeof *o);
	loom__import_object__init(o);
	o->change = kinds[ci];
	if (dn_anchor && anchor) {
		char *k = loom_strdup(anchor);
		for (char *p = k; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		o->anchor = k;
	} else {
		o->anchor = loom_strdup(anchor ? anchor : "");
	}
	o->dn = dn ? loom_strdup(dn) : loom_sprintf("%s=%s", cfg->anchor, anchor ? anchor : "");
	const char *ndn = loom_json_get_str(j, "new_dn");
	if (ndn)
		o->new_dn = loom_strdup(ndn);
	const char *ot = loom_json_get_str(j, "object_type");
	o->object_type = loom_strdup(ot ? ot : cfg->object_type ? cfg->object_type : ci == 2 || ci == 3 ? "" : "person");
	for (size_t i = 0; attrs && i < attrs->n; i++) {
		Loom__Value **vals;
		size_t n;
		if (values_of(attrs->items[i], attrs->keys[i], &vals, &n, why, why_len) < 0) {
			loom__import_object__free_unpacked(o, NULL);
			return NULL;
		}
		if (n)
			loom_attrs_set(&o->attrs, &o->n_attrs, attrs->keys[i], vals, n);
		for (size_t k = 0; k < n; k++)
			loom_value_free(vals[k]);
		free(vals);
	}
	for (size_t i = 0; deltas && i < deltas->n; i++) {
		const loom_json_t *d = deltas->items[i];
		const char *name = loom_json_get_str(d, "name");
		const char *op = loom_json_get_str(d, "op");
		const loom_json_t *vj = loom_json_get(d, "values");
		Loom__AttrDelta__Op dop;
		if (name == NULL || name[0] == '\0') {
			snprintf(why, why_len, "delta %zu has no name", i + 1);
			goto bad;
		}
		if (op == NULL || strcmp(op, "replace") == 0)
			dop = LOOM__ATTR_DELTA__OP__REPLACE;
		else if (strcmp(op, "add") == 0)
			dop = LOOM__ATTR_DELTA__OP__ADD;
		else if (strcmp(op, "delete") == 0)
			dop = LOOM__ATTR_DELTA__OP__DELETE;
		else {
			snprintf(why, why_len, "delta of '%.48s': op '%.16s': expected replace, add or delete", name, op);
			goto bad;
		}
		Loom__AttrDelta *ad = loom_malloc(sizeof *ad);
		loom__attr_delta__init(ad);
		ad->name = loom_strdup(name);
		ad->op = dop;
		o->deltas = loom_realloc(o->deltas, (o->n_deltas + 1) * sizeof *o->deltas);
		o->deltas[o->n_deltas++] = ad;
		if (vj && values_of(vj, name, &ad->values, &ad->n_values, why, why_len) < 0)
			goto bad;
	}
	return o;
bad:
	loom__import_object__free_unpacked(o, NULL);
	return NULL;
}

void ext_json_change(loom_buf_t *b, const Loom__ExportChange *c)
{
	static const char *const ops[] = { "add", "update", "delete" };
	static const char *const dops[] = { "replace", "add", "delete" };
	loom_buf_printf(b, "{\"type\":\"change\",\"id\":%llu,\"op\":\"%s\",\"anchor\":", (unsigned long long)c->change_id,
	    c->op <= 2 ? ops[c->op] : "?");
	loom_buf_add_json_str(b, c->anchor, strlen(c->anchor));
	loom_buf_adds(b, ",\"dn\":");
	loom_buf_add_json_str(b, c->dn, strlen(c->dn));
	if (c->new_dn[0]) {
		loom_buf_adds(b, ",\"new_dn\":");
		loom_buf_add_json_str(b, c->new_dn, strlen(c->new_dn));
	}
	loom_buf_adds(b, ",\"object_type\":");
	loom_buf_add_json_str(b, c->object_type, strlen(c->object_type));
	if (c->op == LOOM__EXPORT_CHANGE__OP__ADD) {
		/* An add is the whole object: attrs, as in an import. */
		Loom__Attr **attrs = NULL;
		size_t n = 0;
		loom_attrs_apply(&attrs, &n, c->deltas, c->n_deltas);
		loom_buf_adds(b, ",\"attrs\":{");
		for (size_t i = 0; i < n; i++) {
			loom_buf_adds(b, i ? "," : "");
			loom_buf_add_json_str(b, attrs[i]->name, strlen(attrs[i]->name));
			loom_buf_adds(b, ":[");
			for (size_t k = 0; k < attrs[i]->n_values; k++) {
				loom_buf_adds(b, k ? "," : "");
				ext_json_value(b, attrs[i]->values[k]);
			}
			loom_buf_addc(b, ']');
		}
		loom_buf_addc(b, '}');
		loom_attrs_free(attrs, n);
	} else if (c->op == LOOM__EXPORT_CHANGE__OP__UPDATE) {
		loom_buf_adds(b, ",\"deltas\":[");
		for (size_t i = 0; i < c->n_deltas; i++) {
			const Loom__AttrDelta *d = c->deltas[i];
			loom_buf_adds(b, i ? ",{\"name\":" : "{\"name\":");
			loom_buf_add_json_str(b, d->name, strlen(d->name));
			loom_buf_printf(b, ",\"op\":\"%s\",\"values\":[", d->op <= 2 ? dops[d->op] : "replace");
			for (size_t k = 0; k < d->n_values; k++) {
				loom_buf_adds(b, k ? "," : "");
				ext_json_value(b, d->values[k]);
			}
			loom_buf_adds(b, "]}");
		}
		loom_buf_addc(b, ']');
	}
	loom_buf_adds(b, "}\n");
}
