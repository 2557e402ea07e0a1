/* ma_ldap_proto.c - the LDAP agent's pure code: RFC 4533 content sync
 * controls and messages (BER through liblber), the watermark, result code
 * names and whether a retry may succeed, the shape of a filter, UUID text.
 * Nothing here touches a connection; tests/unit/test_ldap_proto.c covers it. */
#include "ma_ldap.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_map.h"

#include <ldap_schema.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void bv_copy(struct berval *dst, const struct berval *src)
{
	dst->bv_len = src->bv_len;
	dst->bv_val = loom_malloc(src->bv_len + 1);
	memcpy(dst->bv_val, src->bv_val, src->bv_len);
	dst->bv_val[src->bv_len] = '\0';
}

int ml_sync_request_value(int mode, const struct berval *cookie, struct berval *ret)
{
	BerElement *ber = ber_alloc_t(LBER_USE_DER);
	if (ber == NULL)
		return -1;
	int rc;
	if (cookie && cookie->bv_val)
		rc = ber_printf(ber, "{eON}", (ber_int_t)mode, cookie);
	else
		rc = ber_printf(ber, "{eN}", (ber_int_t)mode);
	if (rc < 0 || ber_flatten2(ber, ret, 1) < 0) {
		ber_free(ber, 1);
		return -1;
	}
	ber_free(ber, 1);
	return 0;
}

int ml_sync_state_parse(const struct berval *v, int *ret_state, uint8_t ret_uuid[16], struct berval *ret_cookie,
    const char **error_r)
{
	BerElement *ber = ber_init((struct berval *)v);
	if (ber == NULL) {
		*error_r = "empty sync state control";
		return -1;
	}
	ber_int_t state;
	struct berval uuid = { 0, NULL }, cookie = { 0, NULL };
	ber_len_t len;
	int rc = -1;
	if (ber_peek_tag(ber, &len) != LBER_SEQUENCE || ber_scanf(ber, "{em", &state, &uuid) == LBER_ERROR) {
		*error_r = "malformed sync state control";
		goto out;
	}
	if (ber_peek_tag(ber, &len) == LBER_OCTETSTRING && ber_scanf(ber, "m", &cookie) == LBER_ERROR) {
		*error_r = "malformed cookie in a sync state control";
		goto out;
	}
	if (uuid.bv_len != 16) {
		*error_r = "sync state control with an entryUUID that is not 16 bytes";
		goto out;
	}
	if (state < LDAP_SYNC_PRESENT || state > LDAP_SYNC_DELETE) {
		*error_r = "sync state control with an unknown state";
		goto out;
	}
	*ret_state = state;
	memcpy(ret_uuid, uuid.bv_val, 16);
	if (cookie.bv_val)
		bv_copy(ret_cookie, &cookie);
	else
		ret_cookie->bv_val = NULL, ret_cookie->bv_len = 0;
	rc = 0;
out:
	ber_free(ber, 1);
	return rc;
}

int ml_sync_done_parse(const struct berval *v, struct berval *ret_cookie, bool *ret_refresh_deletes,
    const char **error_r)
{
	BerElement *ber = ber_init((struct berval *)v);
	if (ber == NULL) {
		*error_r = "empty sync done control";
		return -1;
	}
	struct berval cookie = { 0, NULL };
	ber_int_t rd = 0;
	ber_len_t len;
	int rc = -1;
	/* liblber's '{' does not check the tag: a value that is no sequence would pass. */
	if (ber_peek_tag(ber, &len) != LBER_SEQUENCE || ber_scanf(ber, "{") == LBER_ERROR) {
		*error_r = "malformed sync done control";
		goto out;
	}
	ber_tag_t tag = ber_peek_tag(ber, &len);
	if (tag == LDAP_TAG_SYNC_COOKIE) {
		if (ber_scanf(ber, "m", &cookie) == LBER_ERROR) {
			*error_r = "malformed cookie in a sync done control";
			goto out;
		}
		tag = ber_peek_tag(ber, &len);
	}
	if (tag == LDAP_TAG_REFRESHDELETES && ber_scanf(ber, "b", &rd) == LBER_ERROR) {
		*error_r = "malformed refreshDeletes in a sync done control";
		goto out;
	}
	if (cookie.bv_val)
		bv_copy(ret_cookie, &cookie);
	else
		ret_cookie->bv_val = NULL, ret_cookie->bv_len = 0;
	*ret_refresh_deletes = rd != 0;
	rc = 0;
out:
	ber_free(ber, 1);
	return rc;
}

void ml_sync_info_release(ml_sync_info_t *info)
{
	free(info->cookie.bv_val);
	free(info->uuids);
	memset(info, 0, sizeof *info);
}

int ml_sync_info_parse(const struct berval *v, ml_sync_info_t *ret, const char **error_r)
{
	memset(ret, 0, sizeof *ret);
	BerElement *ber = ber_init((struct berval *)v);
	if (ber == NULL) {
		*error_r = "empty sync info message";
		return -1;
	}
	ber_len_t len;
	struct berval cookie = { 0, NULL };
	BerVarray uuids = NULL;
	int rc = -1;
	ber_tag_t tag = ber_peek_tag(ber, &len);
	switch (tag) {
	case LDAP_TAG_SYNC_NEW_COOKIE:
		ret->kind = ML_INFO_NEW_COOKIE;
		if (ber_scanf(ber, "m", &cookie) == LBER_ERROR) {
			*error_r = "malformed newcookie";
			goto out;
		}
		break;
	case LDAP_TAG_SYNC_REFRESH_DELETE:
	case LDAP_TAG_SYNC_REFRESH_PRESENT: {
		ret->kind = tag == LDAP_TAG_SYNC_REFRESH_DELETE ? ML_INFO_REFRESH_DELETE : ML_INFO_REFRESH_PRESENT;
		ber_int_t done = 1; /* refreshDone DEFAULT TRUE */
		if (ber_scanf(ber, "{") == LBER_ERROR) {
			*error_r = "malformed refreshDelete/refreshPresent";
			goto out;
		}
		tag = ber_peek_tag(ber, &len);
		if (tag == LDAP_TAG_SYNC_COOKIE) {
			if (ber_scanf(ber, "m", &cookie) == LBER_ERROR) {
				*error_r = "malformed cookie in refreshDelete/refreshPresent";
				goto out;
			}
			tag = ber_peek_tag(ber, &len);
		}
		if (tag == LDAP_TAG_REFRESHDONE && ber_scanf(ber, "b", &done) == LBER_ERROR) {
			*error_r = "malformed refreshDone";
			goto out;
		}
		ret->refresh_done = done != 0;
		break;
	}
	case LDAP_TAG_SYNC_ID_SET: {
		ret->kind = ML_INFO_ID_SET;
		ber_int_t rd = 0; /* refreshDeletes DEFAULT FALSE */
		if (ber_scanf(ber, "{") == LBER_ERROR) {
			*error_r = "malformed syncIdSet";
			goto out;
		}
		tag = ber_peek_tag(ber, &len);
		if (tag == LDAP_TAG_SYNC_COOKIE) {
			if (ber_scanf(ber, "m", &cookie) == LBER_ERROR) {
				*error_r = "malformed cookie in syncIdSet";
				goto out;
			}
			tag = ber_peek_tag(ber, &len);
		}
		if (tag == LDAP_TAG_REFRESHDELETES) {
			if (ber_scanf(ber, "b", &rd) == LBER_ERROR) {
				*error_r = "malformed refreshDeletes in syncIdSet";
				goto out;
			}
		}
		if (ber_scanf(ber, "[W]", &uuids) == LBER_ERROR) {
			*error_r = "malformed syncUUIDs in syncIdSet";
			goto out;
		}
		ret->refresh_deletes = rd != 0;
		size_t n = 0;
		while (uuids && uuids[n].bv_val)
			n++;
		ret->uuids = loom_malloc((n ? n : 1) * sizeof *ret->uuids);
		for (size_t i = 0; i < n; i++) {
			if (uuids[i].bv_len != 16) {
				*error_r = "syncIdSet holds an entryUUID that is not 16 bytes";
				goto out;
			}
			memcpy(ret->uuids[i], uuids[i].bv_val, 16);
		}
		ret->nuuids = n;
		break;
	}
	default:
		*error_r = "unknown sync info message";
		goto out;
	}
	if (cookie.bv_val)
		bv_copy(&ret->cookie, &cookie);
	rc = 0;
out:
	if (uuids)
		ber_bvarray_free(uuids);
	ber_free(ber, 1);
	if (rc < 0)
		ml_sync_info_release(ret);
	return rc;
}

int ml_postread_request(const char *attr, struct berval *ret)
{
	BerElement *ber = ber_alloc_t(LBER_USE_DER);
	if (ber == NULL)
		return -1;
	if (ber_printf(ber, "{s}", attr) < 0 || ber_flatten2(ber, ret, 1) < 0) {
		ber_free(ber, 1);
		return -1;
	}
	ber_free(ber, 1);
	return 0;
}

int ml_postread_value(const struct berval *v, const char *attr, struct berval *ret, const char **error_r)
{
	BerElement *ber = ber_init((struct berval *)v);
	if (ber == NULL) {
		*error_r = "empty post-read control";
		return -1;
	}
	struct berval dn;
	ber_len_t len;
	int rc = 0;
	ret->bv_val = NULL;
	ret->bv_len = 0;
	if (ber_scanf(ber, "{m{", &dn) == LBER_ERROR) {
		*error_r = "malformed post-read control";
		rc = -1;
		goto out;
	}
	while (ber_peek_tag(ber, &len) == LBER_SEQUENCE) {
		struct berval type;
		BerVarray vals = NULL;
		if (ber_scanf(ber, "{m[W]}", &type, &vals) == LBER_ERROR) {
			*error_r = "malformed attribute in a post-read control";
			rc = -1;
			goto out;
		}
		if (rc == 0 && type.bv_len == strlen(attr) && strncasecmp(type.bv_val, attr, type.bv_len) == 0 && vals &&
		    vals[0].bv_val) {
			bv_copy(ret, &vals[0]);
			rc = 1;
		}
		ber_bvarray_free(vals);
	}
out:
	ber_free(ber, 1);
	if (rc < 0) {
		free(ret->bv_val);
		ret->bv_val = NULL;
	}
	return rc;
}

bool ml_dn_in_base(const char *dn, const char *base, int scope)
{
	LDAPDN d = NULL, b = NULL;
	bool in = false;
	if (ldap_str2dn(dn, &d, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS ||
	    ldap_str2dn(base, &b, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS)
		goto out;
	size_t nd = 0, nb = 0;
	while (d && d[nd])
		nd++;
	while (b && b[nb])
		nb++;
	size_t depth = nd >= nb ? nd - nb : 0;
	if (nd < nb || (scope == LOOM_LDAP_SCOPE_BASE && depth != 0) || (scope == LOOM_LDAP_SCOPE_ONE && depth != 1))
		goto out;
	in = true;
	for (size_t i = 0; in && i < nb; i++) {
		char *x = NULL, *y = NULL;
		if (ldap_rdn2str(d[depth + i], &x, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS ||
		    ldap_rdn2str(b[i], &y, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS || strcasecmp(x, y) != 0)
			in = false;
		ldap_memfree(x);
		ldap_memfree(y);
	}
out:
	ldap_dnfree(d);
	ldap_dnfree(b);
	return in;
}

void ml_uuid_text(const uint8_t u[16], bool ad, char out[37])
{
	static const int ad_order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (int i = 0; i < 16; i++) {
		uint8_t b = u[ad ? ad_order[i] : i];
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b >> 4];
		out[o++] = hex[b & 15];
	}
	out[o] = '\0';
}

/* ---- watermark ---------------------------------------------------------------------- */

#define WM_MAGIC "loom-ldap-1\n"

void ml_watermark_encode(const ml_watermark_t *w, uint8_t **ret, size_t *ret_len)
{
	static const char hex[] = "0123456789abcdef";
	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_adds(&b, WM_MAGIC);
	for (size_t i = 0; i < w->n; i++) {
		const struct berval *c = &w->cookies[i];
		for (size_t k = 0; c->bv_val && k < c->bv_len; k++) {
			unsigned char x = (unsigned char)c->bv_val[k];
			char h[2] = { hex[x >> 4], hex[x & 15] };
			loom_buf_add(&b, h, 2);
		}
		loom_buf_printf(&b, "\t%s\n", w->dns[i]);
	}
	*ret_len = b.len;
	*ret = (uint8_t *)loom_buf_steal(&b);
}

static int unhex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int ml_watermark_decode(const uint8_t *data, size_t len, ml_watermark_t *ret, const char **error_r)
{
	memset(ret, 0, sizeof *ret);
	const char *p = (const char *)data, *end = p + len;
	size_t ml = strlen(WM_MAGIC);
	if (len < ml || memcmp(p, WM_MAGIC, ml) != 0) {
		*error_r = len == 0 ? "no watermark (no import has run yet)" : "not a watermark of the LDAP agent";
		return -1;
	}
	p += ml;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *tab = nl ? memchr(p, '\t', (size_t)(nl - p)) : NULL;
		if (nl == NULL || tab == NULL || (tab - p) % 2 != 0 || nl == tab + 1) {
			*error_r = "malformed watermark line";
			goto fail;
		}
		size_t clen = (size_t)(tab - p) / 2;
		struct berval c = { 0, NULL };
		if (clen) {
			c.bv_len = clen;
			c.bv_val = loom_malloc(clen + 1);
			for (size_t k = 0; k < clen; k++) {
				int hi = unhex(p[2 * k]), lo = unhex(p[2 * k + 1]);
				if (hi < 0 || lo < 0) {
					free(c.bv_val);
					*error_r = "malformed cookie in the watermark";
					goto fail;
				}
				c.bv_val[k] = (char)(hi << 4 | lo);
			}
			c.bv_val[clen] = '\0';
		}
		ret->dns = loom_realloc(ret->dns, (ret->n + 1) * sizeof *ret->dns);
		ret->cookies = loom_realloc(ret->cookies, (ret->n + 1) * sizeof *ret->cookies);
		ret->dns[ret->n] = loom_strndup(tab + 1, (size_t)(nl - tab - 1));
		ret->cookies[ret->n] = c;
		ret->n++;
		p = nl + 1;
	}
	return 0;
fail:
	ml_watermark_release(ret);
	return -1;
}

void ml_watermark_release(ml_watermark_t *w)
{
	for (size_t i = 0; i < w->n; i++) {
		free(w->dns[i]);
		free(w->cookies[i].bv_val);
	}
	free(w->dns);
	free(w->cookies);
	memset(w, 0, sizeof *w);
}

void ml_watermark_set(ml_watermark_t *w, size_t i, const struct berval *cookie)
{
	free(w->cookies[i].bv_val);
	w->cookies[i].bv_val = NULL;
	w->cookies[i].bv_len = 0;
	if (cookie && cookie->bv_val)
		bv_copy(&w->cookies[i], cookie);
}

/* ---- result codes ------------------------------------------------------------------- */

static const struct {
	int code;
	const char *name;
} result_names[] = {
	{ LDAP_SUCCESS, "success" },
	{ LDAP_OPERATIONS_ERROR, "operations-error" },
	{ LDAP_PROTOCOL_ERROR, "protocol-error" },
	{ LDAP_TIMELIMIT_EXCEEDED, "time-limit-exceeded" },
	{ LDAP_SIZELIMIT_EXCEEDED, "size-limit-exceeded" },
	{ LDAP_STRONG_AUTH_REQUIRED, "strong-auth-required" },
	{ LDAP_REFERRAL, "referral" },
	{ LDAP_ADMINLIMIT_EXCEEDED, "admin-limit-exceeded" },
	{ LDAP_UNAVAILABLE_CRITICAL_EXTENSION, "unavailable-critical-extension" },
	{ LDAP_CONFIDENTIALITY_REQUIRED, "confidentiality-required" },
	{ LDAP_SASL_BIND_IN_PROGRESS, "sasl-bind-in-progress" },
	{ LDAP_NO_SUCH_ATTRIBUTE, "no-such-attribute" },
	{ LDAP_UNDEFINED_TYPE, "undefined-attribute-type" },
	{ LDAP_INAPPROPRIATE_MATCHING, "inappropriate-matching" },
	{ LDAP_CONSTRAINT_VIOLATION, "constraint-violation" },
	{ LDAP_TYPE_OR_VALUE_EXISTS, "attribute-or-value-exists" },
	{ LDAP_INVALID_SYNTAX, "invalid-attribute-syntax" },
	{ LDAP_NO_SUCH_OBJECT, "no-such-object" },
	{ LDAP_ALIAS_PROBLEM, "alias-problem" },
	{ LDAP_INVALID_DN_SYNTAX, "invalid-dn-syntax" },
	{ LDAP_ALIAS_DEREF_PROBLEM, "alias-dereferencing-problem" },
	{ LDAP_INAPPROPRIATE_AUTH, "inappropriate-authentication" },
	{ LDAP_INVALID_CREDENTIALS, "invalid-credentials" },
	{ LDAP_INSUFFICIENT_ACCESS, "insufficient-access-rights" },
	{ LDAP_BUSY, "busy" },
	{ LDAP_UNAVAILABLE, "unavailable" },
	{ LDAP_UNWILLING_TO_PERFORM, "unwilling-to-perform" },
	{ LDAP_LOOP_DETECT, "loop-detect" },
	{ LDAP_NAMING_VIOLATION, "naming-violation" },
	{ LDAP_OBJECT_CLASS_VIOLATION, "object-class-violation" },
	{ LDAP_NOT_ALLOWED_ON_NONLEAF, "not-allowed-on-non-leaf" },
	{ LDAP_NOT_ALLOWED_ON_RDN, "not-allowed-on-rdn" },
	{ LDAP_ALREADY_EXISTS, "entry-already-exists" },
	{ LDAP_NO_OBJECT_CLASS_MODS, "object-class-mods-prohibited" },
	{ LDAP_AFFECTS_MULTIPLE_DSAS, "affects-multiple-dsas" },
	{ LDAP_OTHER, "other" },
	{ LDAP_SYNC_REFRESH_REQUIRED, "sync-refresh-required" },
	{ LDAP_SERVER_DOWN, "server-down" },
	{ LDAP_LOCAL_ERROR, "local-error" },
	{ LDAP_ENCODING_ERROR, "encoding-error" },
	{ LDAP_DECODING_ERROR, "decoding-error" },
	{ LDAP_TIMEOUT, "timeout" },
	{ LDAP_AUTH_UNKNOWN, "auth-unknown" },
	{ LDAP_FILTER_ERROR, "filter-error" },
	{ LDAP_PARAM_ERROR, "param-error" },
	{ LDAP_NO_MEMORY, "no-memory" },
	{ LDAP_CONNECT_ERROR, "connect-error" },
	{ LDAP_NOT_SUPPORTED, "not-supported" },
};

const char *ml_result_name(int code, char buf[32])
{
	for (size_t i = 0; i < sizeof result_names / sizeof *result_names; i++)
		if (result_names[i].code == code)
			return result_names[i].name;
	snprintf(buf, 32, "ldap-error-%d", code);
	return buf;
}

bool ml_result_retryable(int code)
{
	switch (code) {
	case LDAP_BUSY:
	case LDAP_UNAVAILABLE:
	case LDAP_UNWILLING_TO_PERFORM:
	case LDAP_TIMELIMIT_EXCEEDED:
	case LDAP_ADMINLIMIT_EXCEEDED:
	case LDAP_OTHER:
	case LDAP_SERVER_DOWN:
	case LDAP_TIMEOUT:
	case LDAP_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
}

/* ---- filters ------------------------------------------------------------------------ */

int ml_filter_check(const char *f, size_t *ret_offset, const char **why)
{
	size_t i = 0, n = strlen(f);
	int depth = 0;
	bool item_has_text = false;
	if (n == 0 || f[0] != '(') {
		*ret_offset = 0;
		*why = "a filter starts with '('";
		return -1;
	}
	for (i = 0; i < n; i++) {
		char c = f[i];
		if (c == '(') {
			depth++;
			item_has_text = false;
			/* (&...) (|...) (!...) hold filters; an item holds attr op value. */
			if (i + 1 < n && (f[i + 1] == '&' || f[i + 1] == '|' || f[i + 1] == '!')) {
				i++;
				if (i + 1 >= n || (f[i + 1] != '(' && f[i + 1] != ')')) {
					*ret_offset = i + 1;
					*why = "'&', '|' and '!' are followed by parenthesised filters";
					return -1;
				}
				item_has_text = true; /* (&) and (|) are the absolute true/false filters */
			}
		} else if (c == ')') {
			if (depth == 0) {
				*ret_offset = i;
				*why = "unbalanced ')'";
				return -1;
			}
			if (!item_has_text) {
				*ret_offset = i;
				*why = "empty filter item";
				return -1;
			}
			depth--;
			if (depth == 0 && i + 1 != n) {
				*ret_offset = i + 1;
				*why = "text after the end of the filter";
				return -1;
			}
		} else if (c == '\\') {
			if (i + 2 >= n || unhex((char)(f[i + 1] | 0x20)) < 0 || unhex((char)(f[i + 2] | 0x20)) < 0) {
				*ret_offset = i;
				*why = "'\\' must be followed by two hex digits";
				return -1;
			}
			i += 2;
			item_has_text = true;
		} else {
			if (depth == 0) {
				*ret_offset = i;
				*why = "text outside parentheses";
				return -1;
			}
			item_has_text = true;
		}
	}
	if (depth != 0) {
		*ret_offset = n;
		*why = "missing ')'";
		return -1;
	}
	return 0;
}

/* ---- schema ------------------------------------------------------------------------- */

typedef struct ml_schema_attr {
	char *syntax;                  /* syntax OID (NULL: inherited from sup) */
	char *sup;                     /* lower-cased SUP name or OID, or NULL */
	bool resolving;                /* loop guard of ml_schema_resolve */
} ml_schema_attr_t;

ml_schema_t *ml_schema_new(void)
{
	ml_schema_t *s = loom_calloc(1, sizeof *s);
	s->attrs = loom_map_new();
	s->classes = loom_map_new();
	return s;
}

void ml_schema_destroy(ml_schema_t **sp)
{
	ml_schema_t *s = *sp;
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nowned; i++) {
		ml_schema_attr_t *a = (ml_schema_attr_t *)s->owned[i];
		free(a->syntax);
		free(a->sup);
		free(a);
	}
	free(s->owned);
	loom_map_destroy(&s->attrs);
	loom_map_destroy(&s->classes);
	free(s);
	*sp = NULL;
}

static char *lower_dup(const char *p, size_t n)
{
	char *k = loom_strndup(p, n);
	for (char *q = k; *q; q++)
		if (*q >= 'A' && *q <= 'Z')
			*q = (char)(*q + 32);
	return k;
}

int ml_schema_add_attr(ml_schema_t *s, const char *def, const char **error_r)
{
	int code;
	LDAPAttributeType *at = ldap_str2attributetype(def, &code, error_r, LDAP_SCHEMA_ALLOW_ALL);
	if (at == NULL) {
		*error_r = ldap_scherr2str(code);
		return -1;
	}
	ml_schema_attr_t *a = loom_calloc(1, sizeof *a);
	a->syntax = at->at_syntax_oid ? loom_strdup(at->at_syntax_oid) : NULL;
	a->sup = at->at_sup_oid ? lower_dup(at->at_sup_oid, strlen(at->at_sup_oid)) : NULL;
	s->owned = loom_realloc(s->owned, (s->nowned + 1) * sizeof *s->owned);
	s->owned[s->nowned++] = (char *)a;
	char *k = lower_dup(at->at_oid, strlen(at->at_oid));
	loom_map_put(s->attrs, k, strlen(k), a);
	free(k);
	for (size_t i = 0; at->at_names && at->at_names[i]; i++) {
		k = lower_dup(at->at_names[i], strlen(at->at_names[i]));
		loom_map_put(s->attrs, k, strlen(k), a);
		free(k);
	}
	ldap_attributetype_free(at);
	return 0;
}

int ml_schema_add_class(ml_schema_t *s, const char *def, const char **error_r)
{
	int code;
	LDAPObjectClass *oc = ldap_str2objectclass(def, &code, error_r, LDAP_SCHEMA_ALLOW_ALL);
	if (oc == NULL) {
		*error_r = ldap_scherr2str(code);
		return -1;
	}
	char *k = lower_dup(oc->oc_oid, strlen(oc->oc_oid));
	loom_map_put(s->classes, k, strlen(k), (void *)1);
	free(k);
	for (size_t i = 0; oc->oc_names && oc->oc_names[i]; i++) {
		k = lower_dup(oc->oc_names[i], strlen(oc->oc_names[i]));
		loom_map_put(s->classes, k, strlen(k), (void *)1);
		free(k);
	}
	ldap_objectclass_free(oc);
	return 0;
}

static const char *resolve(ml_schema_t *s, ml_schema_attr_t *a)
{
	if (a->syntax || a->sup == NULL || a->resolving)
		return a->syntax;
	a->resolving = true;
	ml_schema_attr_t *sup = loom_map_get(s->attrs, a->sup, strlen(a->sup));
	const char *syn = sup ? resolve(s, sup) : NULL;
	a->resolving = false;
	if (syn)
		a->syntax = loom_strdup(syn);
	return a->syntax;
}

void ml_schema_resolve(ml_schema_t *s)
{
	for (size_t i = 0; i < s->nowned; i++)
		(void)resolve(s, (ml_schema_attr_t *)s->owned[i]);
}

static const ml_schema_attr_t *find_attr(const ml_schema_t *s, const char *name, size_t len)
{
	const char *semi = memchr(name, ';', len);
	if (semi)
		len = (size_t)(semi - name);
	char buf[128];
	if (len >= sizeof buf)
		return NULL; /* no schema names an attribute that long */
	for (size_t i = 0; i < len; i++)
		buf[i] = name[i] >= 'A' && name[i] <= 'Z' ? (char)(name[i] + 32) : name[i];
	return loom_map_get(s->attrs, buf, len);
}

bool ml_schema_has_attr(const ml_schema_t *s, const char *name, size_t len)
{
	return find_attr(s, name, len) != NULL;
}

bool ml_schema_has_class(const ml_schema_t *s, const char *name)
{
	char *k = lower_dup(name, strlen(name));
	bool r = loom_map_get(s->classes, k, strlen(k)) != NULL;
	free(k);
	return r;
}

bool ml_schema_binary(const ml_schema_t *s, const char *name, size_t len)
{
	/* RFC 4517 and RFC 4523 syntaxes whose values are not text. */
	static const char *const binary[] = {
		"1.3.6.1.4.1.1466.115.121.1.40", /* Octet String */
		"1.3.6.1.4.1.1466.115.121.1.28", /* JPEG */
		"1.3.6.1.4.1.1466.115.121.1.8",  /* Certificate */
		"1.3.6.1.4.1.1466.115.121.1.9",  /* Certificate List */
		"1.3.6.1.4.1.1466.115.121.1.10", /* Certificate Pair */
		"1.3.6.1.4.1.1466.115.121.1.49", /* Supported Algorithm */
		"1.3.6.1.4.1.1466.115.121.1.5",  /* Binary */
		"1.3.6.1.4.1.1466.115.121.1.23", /* Fax */
		"1.3.6.1.4.1.1466.115.121.1.4",  /* Audio */
		"1.2.840.113556.1.4.907",        /* AD: Object(Replica-Link), security descriptors */
		NULL,
	};
	const ml_schema_attr_t *a = find_attr(s, name, len);
	if (a == NULL || a->syntax == NULL)
		return false;
	size_t sl = strcspn(a->syntax, "{"); /* a length bound: 1.3.6...40{32} */
	for (size_t i = 0; binary[i]; i++)
		if (strlen(binary[i]) == sl && strncmp(binary[i], a->syntax, sl) == 0)
			return true;
	return false;
}
