/* loom_dsml.c - DSML v2 reader (libxml2 xmlTextReader, one operation
 * expanded at a time) and writer. See loom_dsml.h for what is checked.
 *
 * Reader states (r->state), advanced by loom_dsml_read():
 *
 *   START   before the batch element: SOAP Envelope and Body are entered,
 *           a SOAP Header is skipped; the batch element checks its own
 *           attributes and moves to BATCH (an empty one to TAIL).
 *   BATCH   each child element of the batch is expanded, checked and
 *           returned (or refused), then skipped with xmlTextReaderNext; a
 *           batchResponse's searchResponse is entered instead (SEARCH),
 *           since it may hold any number of entries. The batch's end
 *           element moves to TAIL.
 *   SEARCH  each searchResultEntry/Reference/Done is expanded and returned
 *           one by one; the searchResponse's end checks that it ended with
 *           one searchResultDone and goes back to BATCH.
 *   TAIL    reads to the end of the document (the rest of a SOAP envelope)
 *           so that a syntax error there is still reported; then END.
 *   END     every read returns 0. A fatal error also ends here.
 */
#include "loom_dsml.h"
#include "loom_alloc.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlreader.h>

#define NS_DSML_XSD "urn:oasis:names:tc:DSML:2:0:core"
#define NS_DSML_DOT "urn:oasis:names:tc:DSML:2.0:core"
#define NS_XSI "http://www.w3.org/2001/XMLSchema-instance"
#define NS_XSD "http://www.w3.org/2001/XMLSchema"
#define NS_SOAP11 "http://schemas.xmlsoap.org/soap/envelope/"
#define NS_SOAP12 "http://www.w3.org/2003/05/soap-envelope"

enum { ST_START, ST_BATCH, ST_SEARCH, ST_TAIL, ST_END };

/* A value collected for an attribute (grouped when the record is made). */
typedef struct pair {
	size_t attr;                   /* index into attrs */
	loom_dsml_value_t v;           /* the value */
} pair_t;

struct loom_dsml_reader {
	xmlTextReaderPtr xr;           /* libxml2's reader */
	int state;                     /* ST_* */
	bool have_current;             /* the reader already sits on the next node (after xmlTextReaderNext) */
	bool is_request;               /* the batch is a batchRequest */
	bool need_ids;                 /* parallel or unordered: every request needs a requestID */
	int batch_depth;               /* depth of the batch element */
	unsigned nops;                 /* operations seen in the batch */
	int search_depth;              /* depth of the searchResponse being read */
	unsigned search_line;          /* its line */
	bool search_done;              /* its searchResultDone was seen */
	/* the first libxml2 error of the last read */
	bool xerr;                     /* an error was caught */
	unsigned xerr_line;            /* its line */
	unsigned xerr_col;             /* its column */
	char xerr_msg[256];            /* its message, without the trailing newline */
	/* the record being built */
	loom_dsml_error_t *err;        /* where a fault goes (never NULL while reading) */
	loom_dsml_error_t scratch_err; /* used when the caller passes none */
	char **blocks;                 /* strings owned by the current record */
	size_t nblocks, cap_blocks;
	loom_dsml_attr_t *attrs;       /* ENTRY/ADD attributes */
	size_t nattrs, cap_attrs;
	pair_t *pairs;                 /* ENTRY/ADD values before grouping */
	size_t npairs, cap_pairs;
	loom_dsml_value_t *vals;       /* grouped values; MODIFY values */
	size_t nvals, cap_vals;
	loom_dsml_mod_t *mods;         /* MODIFY modifications */
	size_t nmods, cap_mods;
	size_t *mod_start;             /* index in vals of each modification's first value */
	size_t cap_mod_start;
};

/* ---- small helpers ---------------------------------------------------------------- */

static void *grow(void *v, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return v;
	size_t c = *cap ? *cap : 8;
	while (c < need)
		c *= 2;
	*cap = c;
	return loom_realloc(v, c * size);
}

/* A copy of len bytes of s owned by the current record. */
static char *keep(loom_dsml_reader_t *r, const char *s, size_t len)
{
	r->blocks = grow(r->blocks, &r->cap_blocks, r->nblocks + 1, sizeof *r->blocks);
	char *p = loom_malloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	r->blocks[r->nblocks++] = p;
	return p;
}

/* len + 1 bytes owned by the current record. */
static char *keep_alloc(loom_dsml_reader_t *r, size_t len)
{
	r->blocks = grow(r->blocks, &r->cap_blocks, r->nblocks + 1, sizeof *r->blocks);
	char *p = loom_calloc(1, len + 1);
	r->blocks[r->nblocks++] = p;
	return p;
}

static void reset_record(loom_dsml_reader_t *r)
{
	for (size_t i = 0; i < r->nblocks; i++)
		free(r->blocks[i]);
	r->nblocks = r->nattrs = r->npairs = r->nvals = r->nmods = 0;
}

static bool blank(const char *s)
{
	for (; s && *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
			return false;
	return true;
}

/* The subject of a message: at most 48 bytes, cut on a character boundary. */
static void cut(char *dst, size_t size, const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		n--;
	char tmp[64];
	if (n < sizeof tmp) {
		memcpy(tmp, s, n);
		tmp[n] = '\0';
		s = tmp;
	}
	if (n > 48) {
		n = 48;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	snprintf(dst, size, "%.*s%s", (int)n, s, strlen(s) > n ? "..." : "");
}

/* Records a fault at node's line; returns -1. The first fault of a record wins. */
__attribute__((format(printf, 3, 4))) static int fault(loom_dsml_reader_t *r, xmlNodePtr node, const char *fmt, ...)
{
	if (r->err->message[0])
		return -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->err->message, sizeof r->err->message, fmt, ap);
	va_end(ap);
	long line = node ? xmlGetLineNo(node) : 0;
	r->err->line = line > 0 ? (unsigned)line : 0;
	r->err->column = 0;
	r->err->fatal = false;
	return -1;
}

static bool dsml_ns(const xmlNs *ns)
{
	return ns == NULL || strcmp((const char *)ns->href, NS_DSML_XSD) == 0 ||
	    strcmp((const char *)ns->href, NS_DSML_DOT) == 0;
}

static bool dsml_ns_uri(const xmlChar *href)
{
	return href == NULL || strcmp((const char *)href, NS_DSML_XSD) == 0 ||
	    strcmp((const char *)href, NS_DSML_DOT) == 0;
}

static const char *name_of(xmlNodePtr n)
{
	return (const char *)n->name;
}

static bool is(xmlNodePtr n, const char *local)
{
	return n->type == XML_ELEMENT_NODE && strcmp(name_of(n), local) == 0;
}

/* An unqualified attribute of n, owned by the record, or NULL. */
static const char *attr(loom_dsml_reader_t *r, xmlNodePtr n, const char *name)
{
	xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);
	if (v == NULL)
		return NULL;
	char *k = keep(r, (const char *)v, strlen((const char *)v));
	xmlFree(v);
	return k;
}

/* Checks that n's children are elements of the DSML namespace (plus
 * comments, processing instructions and blank text). */
static int check_content(loom_dsml_reader_t *r, xmlNodePtr n)
{
	for (xmlNodePtr c = n->children; c; c = c->next) {
		if (c->type == XML_ELEMENT_NODE) {
			if (!dsml_ns(c->ns))
				return fault(r, c, "element '%s' from namespace '%s' inside <%s>: expected DSML v2 elements",
				    name_of(c), c->ns->href, name_of(n));
		} else if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
			if (!blank((const char *)c->content)) {
				char s[64];
				cut(s, sizeof s, (const char *)c->content);
				return fault(r, c, "text '%s' inside <%s>: only elements belong there", s, name_of(n));
			}
		} else if (c->type == XML_ENTITY_REF_NODE) {
			return fault(r, c, "entity reference '&%s;' inside <%s>", name_of(c), name_of(n));
		}
	}
	return 0;
}

static int unexpected(loom_dsml_reader_t *r, xmlNodePtr c, xmlNodePtr parent)
{
	return fault(r, c, "unexpected element <%s> inside <%s>", name_of(c), name_of(parent));
}

/* ---- lexical checks ---------------------------------------------------------------- */

static bool parse_bool(const char *s, bool *ret)
{
	if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
		*ret = true;
	else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
		*ret = false;
	else
		return false;
	return true;
}

/* A non-negative xsd integer within [0, max]. */
static bool parse_uint(const char *s, long long max, long long *ret)
{
	const char *p = s;
	if (*p == '+')
		p++;
	if (!isdigit((unsigned char)*p))
		return false;
	long long v = 0;
	for (; isdigit((unsigned char)*p); p++) {
		v = v * 10 + (*p - '0');
		if (v > max)
			return false;
	}
	if (*p)
		return false;
	*ret = v;
	return true;
}

/* A numeric OID: digit groups separated by dots (at least two groups). */
static bool oid_valid(const char *s)
{
	int groups = 0;
	for (;;) {
		if (!isdigit((unsigned char)*s))
			return false;
		if (*s == '0' && isdigit((unsigned char)s[1]))
			return false;
		while (isdigit((unsigned char)*s))
			s++;
		groups++;
		if (*s == '\0')
			return groups >= 2;
		if (*s++ != '.')
			return false;
	}
}

/* An attribute description: (keystring | numericoid) (;option)*. */
static bool attrdesc_valid(const char *s)
{
	const char *p = s;
	if (isalpha((unsigned char)*p)) {
		while (isalnum((unsigned char)*p) || *p == '-')
			p++;
	} else if (isdigit((unsigned char)*p)) {
		const char *semi = strchr(p, ';');
		size_t n = semi ? (size_t)(semi - p) : strlen(p);
		char oid[128];
		if (n >= sizeof oid)
			return false;
		memcpy(oid, p, n);
		oid[n] = '\0';
		if (!oid_valid(oid))
			return false;
		p += n;
	} else {
		return false;
	}
	while (*p == ';') {
		p++;
		if (!isalnum((unsigned char)*p) && *p != '-')
			return false;
		while (isalnum((unsigned char)*p) || *p == '-')
			p++;
	}
	return *p == '\0';
}

static const char *skip_sp(const char *p)
{
	while (*p == ' ')
		p++;
	return p;
}

/* One RDN's attribute type and value at *pp; advances past it. */
static bool ava(const char **pp)
{
	const char *p = skip_sp(*pp);
	if (isalpha((unsigned char)*p)) {
		while (isalnum((unsigned char)*p) || *p == '-')
			p++;
	} else if (isdigit((unsigned char)*p)) {
		while (isdigit((unsigned char)*p) || *p == '.')
			p++;
	} else {
		return false;
	}
	p = skip_sp(p);
	if (*p++ != '=')
		return false;
	p = skip_sp(p);
	if (*p == '#') {
		p++;
		int n = 0;
		while (isxdigit((unsigned char)p[0]) && isxdigit((unsigned char)p[1])) {
			p += 2;
			n++;
		}
		if (n == 0)
			return false;
	} else if (*p == '"') {
		for (p++; *p != '"'; p++) {
			if (*p == '\0')
				return false;
			if (*p == '\\' && *++p == '\0')
				return false;
		}
		p++;
	} else {
		while (*p && *p != ',' && *p != ';' && *p != '+') {
			if (*p == '\\') {
				p++;
				if (isxdigit((unsigned char)p[0]) && isxdigit((unsigned char)p[1]))
					p += 2;
				else if (*p && strchr(" \"#+,;<=>\\", *p))
					p++;
				else
					return false;
			} else if (*p == '"' || *p == '<' || *p == '>') {
				return false;
			} else {
				p++;
			}
		}
	}
	*pp = skip_sp(p);
	return true;
}

/* A DN of at least min_rdns and at most max_rdns RDNs ("" is zero RDNs). */
static bool dn_check(const char *s, int min_rdns, int max_rdns)
{
	const char *p = skip_sp(s);
	int rdns = 0;
	if (*p == '\0')
		return min_rdns == 0;
	for (;;) {
		if (!ava(&p))
			return false;
		while (*p == '+') {
			p++;
			if (!ava(&p))
				return false;
		}
		rdns++;
		if (*p == '\0')
			break;
		if (*p != ',' && *p != ';')
			return false;
		p++;
	}
	return rdns >= min_rdns && rdns <= max_rdns;
}

bool loom_dsml_dn_valid(const char *s)
{
	return dn_check(s, 0, INT_MAX);
}

static bool ldap_url(const char *s)
{
	return strncasecmp(s, "ldap://", 7) == 0 || strncasecmp(s, "ldaps://", 8) == 0 ||
	    strncasecmp(s, "ldapi://", 8) == 0;
}

static const char *const result_descrs[] = { "success", "operationsError", "protocolError", "timeLimitExceeded",
	"sizeLimitExceeded", "compareFalse", "compareTrue", "authMethodNotSupported", "strongAuthRequired", "referral",
	"adminLimitExceeded", "unavailableCriticalExtension", "confidentialityRequired", "saslBindInProgress",
	"noSuchAttribute", "undefinedAttributeType", "inappropriateMatching", "constraintViolation",
	"attributeOrValueExists", "invalidAttributeSyntax", "noSuchObject", "aliasProblem", "invalidDNSyntax",
	"aliasDereferencingProblem", "inappropriateAuthentication", "invalidCredentials", "insufficientAccessRights",
	"busy", "unavailable", "unwillingToPerform", "loopDetect", "namingViolation", "objectClassViolation",
	"notAllowedOnNonLeaf", "notAllowedOnRDN", "entryAlreadyExists", "objectClassModsProhibited",
	"affectMultipleDSAs", "other", NULL };

static bool one_of(const char *s, const char *const *words)
{
	for (; *words; words++)
		if (strcmp(s, *words) == 0)
			return true;
	return false;
}

/* ---- values ------------------------------------------------------------------------ */

/* The text of n (text and CDATA children; comments skipped). */
static int text_of(loom_dsml_reader_t *r, xmlNodePtr n, loom_buf_t *out)
{
	for (xmlNodePtr c = n->children; c; c = c->next) {
		if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE)
			loom_buf_adds(out, (const char *)c->content);
		else if (c->type == XML_ELEMENT_NODE)
			return fault(r, c, "element <%s> inside <%s>: a value holds text only", name_of(c), name_of(n));
		else if (c->type == XML_ENTITY_REF_NODE)
			return fault(r, c, "entity reference '&%s;' inside <%s>", name_of(c), name_of(n));
	}
	return 0;
}

/* A DsmlValue element: text, or base64 with xsi:type="xsd:base64Binary". */
static int value_of(loom_dsml_reader_t *r, xmlNodePtr n, loom_dsml_value_t *ret)
{
	loom_buf_t b = LOOM_BUF_INIT;
	int rc = text_of(r, n, &b);
	if (rc < 0)
		goto out;
	const char *text = b.data ? b.data : "";
	xmlChar *type = xmlGetNsProp(n, (const xmlChar *)"type", (const xmlChar *)NS_XSI);
	const char *local = "string";
	if (type) {
		const char *colon = strchr((const char *)type, ':');
		char prefix[64] = "";
		local = colon ? colon + 1 : (const char *)type;
		if (colon && (size_t)(colon - (const char *)type) < sizeof prefix)
			memcpy(prefix, type, (size_t)(colon - (const char *)type)), prefix[colon - (const char *)type] = '\0';
		xmlNsPtr ns = xmlSearchNs(n->doc, n, colon ? (const xmlChar *)prefix : NULL);
		if (ns == NULL || strcmp((const char *)ns->href, NS_XSD) != 0) {
			rc = fault(r, n, "xsi:type '%s' of <%s>: the prefix is not bound to %s", type, name_of(n), NS_XSD);
			xmlFree(type);
			goto out;
		}
	}
	if (strcmp(local, "string") == 0) {
		ret->data = keep(r, text, b.len);
		ret->len = b.len;
		ret->base64 = false;
	} else if (strcmp(local, "base64Binary") == 0) {
		size_t max = b.len / 4 * 3 + 3;
		char *bin = keep_alloc(r, max);
		size_t len = 0;
		const char *end = NULL;
		if (sodium_base642bin((unsigned char *)bin, max, text, b.len, " \t\r\n", &len, &end,
			sodium_base64_VARIANT_ORIGINAL) != 0 || end != text + b.len) {
			size_t at = end ? (size_t)(end - text) : 0;
			rc = fault(r, n, "bad base64 value in <%s> at character %zu", name_of(n), at + 1);
		} else {
			bin[len] = '\0';
			ret->data = bin;
			ret->len = len;
			ret->base64 = true;
		}
	} else if (strcmp(local, "anyURI") == 0) {
		rc = fault(r, n, "value of <%s> given by URL (xsd:anyURI): values are read from the document only",
		    name_of(n));
	} else {
		rc = fault(r, n, "xsi:type '%s' of <%s>: expected xsd:string, xsd:base64Binary or xsd:anyURI", type,
		    name_of(n));
	}
	if (type)
		xmlFree(type);
out:
	loom_buf_release(&b);
	return rc;
}

/* ---- DsmlMessage: requestID and controls ----------------------------------------- */

static int check_request_id(loom_dsml_reader_t *r, xmlNodePtr n, const char **ret_id)
{
	const char *id = attr(r, n, "requestID");
	*ret_id = id;
	if (id == NULL)
		return 0;
	const char *p = id;
	if (*p == '-' || *p == '+')
		p++;
	bool numeric = *p != '\0';
	for (; *p; p++)
		if (!isdigit((unsigned char)*p))
			numeric = false;
	long long v;
	if (numeric && !parse_uint(id, INT_MAX, &v))
		return fault(r, n, "requestID '%s' of <%s>: a numeric requestID is an LDAP message id, 0 to 2147483647",
		    id, name_of(n));
	return 0;
}

/* A control child; sets *ret_critical_oid to its OID when critical. */
static int check_control(loom_dsml_reader_t *r, xmlNodePtr c, const char **ret_critical_oid)
{
	const char *oid = attr(r, c, "type");
	if (oid == NULL)
		return fault(r, c, "<control> without its 'type' attribute (the control's OID)");
	if (!oid_valid(oid))
		return fault(r, c, "control type '%s': expected a numeric OID", oid);
	const char *crit = attr(r, c, "criticality");
	bool critical = false;
	if (crit && !parse_bool(crit, &critical))
		return fault(r, c, "control criticality '%s': expected true or false", crit);
	if (check_content(r, c) < 0)
		return -1;
	int nv = 0;
	for (xmlNodePtr v = c->children; v; v = v->next) {
		if (v->type != XML_ELEMENT_NODE)
			continue;
		if (!is(v, "controlValue"))
			return unexpected(r, v, c);
		if (++nv > 1)
			return fault(r, v, "<control> with more than one <controlValue>");
		loom_dsml_value_t val;
		if (value_of(r, v, &val) < 0)
			return -1;
	}
	if (critical && *ret_critical_oid == NULL)
		*ret_critical_oid = oid;
	return 0;
}

/* Common to every operation: requestID, the batch's requestID rule, controls. */
static int check_message(loom_dsml_reader_t *r, xmlNodePtr n, loom_dsml_record_t *rec, bool request)
{
	if (check_request_id(r, n, &rec->request_id) < 0)
		return -1;
	if (request && r->need_ids && rec->request_id == NULL)
		return fault(r, n, "<%s> without requestID in a batch with processing=\"parallel\" or "
				   "responseOrder=\"unordered\" (responses are matched by it)",
		    name_of(n));
	if (check_content(r, n) < 0)
		return -1;
	for (xmlNodePtr c = n->children; c; c = c->next)
		if (is(c, "control") && check_control(r, c, &rec->critical_control) < 0)
			return -1;
	return 0;
}

static int require_dn(loom_dsml_reader_t *r, xmlNodePtr n, const char *what, const char **ret)
{
	const char *dn = attr(r, n, what);
	if (dn == NULL)
		return fault(r, n, "<%s> without its '%s' attribute", name_of(n), what);
	if (!loom_dsml_dn_valid(dn)) {
		char s[64];
		cut(s, sizeof s, dn);
		return fault(r, n, "%s '%s' of <%s>: not a DN (RFC 4514: attribute=value, separated by commas)", what, s,
		    name_of(n));
	}
	*ret = dn;
	return 0;
}

/* ---- attributes of entries and adds ---------------------------------------------- */

static size_t attr_index(loom_dsml_reader_t *r, const char *name)
{
	for (size_t i = 0; i < r->nattrs; i++)
		if (strcasecmp(r->attrs[i].name, name) == 0)
			return i;
	r->attrs = grow(r->attrs, &r->cap_attrs, r->nattrs + 1, sizeof *r->attrs);
	r->attrs[r->nattrs].name = name;
	r->attrs[r->nattrs].n = 0;
	r->attrs[r->nattrs].v = NULL;
	return r->nattrs++;
}

static int check_attr_name(loom_dsml_reader_t *r, xmlNodePtr c, const char **ret)
{
	const char *name = attr(r, c, "name");
	if (name == NULL)
		return fault(r, c, "<%s> without its 'name' attribute", name_of(c));
	if (!attrdesc_valid(name)) {
		char s[64];
		cut(s, sizeof s, name);
		return fault(r, c, "attribute name '%s' of <%s>: expected a name or OID with ;options", s, name_of(c));
	}
	*ret = name;
	return 0;
}

/* <attr name=...><value/>*</attr> children, grouped by name into r->attrs. */
static int collect_attrs(loom_dsml_reader_t *r, xmlNodePtr n, loom_dsml_record_t *rec)
{
	for (xmlNodePtr c = n->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || is(c, "control"))
			continue;
		if (!is(c, "attr"))
			return unexpected(r, c, n);
		const char *name;
		if (check_attr_name(r, c, &name) < 0 || check_content(r, c) < 0)
			return -1;
		size_t ai = attr_index(r, name);
		for (xmlNodePtr v = c->children; v; v = v->next) {
			if (v->type != XML_ELEMENT_NODE)
				continue;
			if (!is(v, "value"))
				return unexpected(r, v, c);
			pair_t p = { ai, { NULL, 0, false } };
			if (value_of(r, v, &p.v) < 0)
				return -1;
			r->pairs = grow(r->pairs, &r->cap_pairs, r->npairs + 1, sizeof *r->pairs);
			r->pairs[r->npairs++] = p;
			r->attrs[ai].n++;
		}
	}
	/* Lay the values out grouped by attribute. */
	r->vals = grow(r->vals, &r->cap_vals, r->npairs, sizeof *r->vals);
	size_t off = 0;
	for (size_t i = 0; i < r->nattrs; i++) {
		/* NULL when no attribute has a value (the first record without
		 * any: vals not allocated yet; NULL + 0 is undefined in C). */
		r->attrs[i].v = r->attrs[i].n ? r->vals + off : NULL;
		off += r->attrs[i].n;
		r->attrs[i].n = 0;
	}
	for (size_t k = 0; k < r->npairs; k++) {
		loom_dsml_attr_t *a = &r->attrs[r->pairs[k].attr];
		((loom_dsml_value_t *)a->v)[a->n++] = r->pairs[k].v;
	}
	r->nvals = r->npairs;
	rec->attrs = r->attrs;
	rec->nattrs = r->nattrs;
	return 0;
}

/* ---- the operations ------------------------------------------------------------- */

static int op_add(loom_dsml_reader_t *r, xmlNodePtr n, loom_dsml_record_t *rec)
{
	rec->kind = LOOM_DSML_ADD;
	if (check_message(r, n, rec, true) < 0 || require_dn(r, n, "dn", &rec->dn) < 0)
		return -1;
	return collect_attrs(r, n, rec);
}

static int op_entry(loom_dsml_reader_t *r, xmlNodePtr n, loom_dsml_record_t *rec)
{
	rec->kind = LOOM_DSML_ENTRY;
	if (check_message(r, n, rec, false) < 0 || require_dn(r, n, "dn", &rec->dn) < 0)
		return -1;
	return collect_attrs(r, n, rec);
}

static int op_modify(loom_dsml_reader_t *r, xmlNodePtr n, loom_dsml_record_t *rec)
{
	rec->kind = LOOM_DSML_MODIFY;
	if (check_message(r, n, rec, true) < 0 || require_dn(r, n, "dn", &rec->dn) < 0)
		return -1;
	for (xmlNodePtr c = n->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || is(c, "control"))
			continue;
		if (!is(c, "modification"))
			return unexpected(r, c, n);
		const char *name;
		if (check_attr_name(r, c, &name) < 0 || check_content(r, c) < 0)
			return -1;
		const char *op = attr(r, c, "operation");
		loom_dsml_modop_t mop;
		if (op == NULL)
			return fault(r, c, "<modification> of '%s' without its 'operation' attribute", name);
		if (strcmp(op, "add") == 0)
			mop = LOOM_DSML_MOD_ADD;
		else if (strcmp(op, "delete") == 0)
			mop = LOOM_DSML_MOD_DELETE;
		else if (strcmp(op, "replace") == 0)
			mop = LOOM_DSML_MOD_REPLACE;
		else if (strcmp(op, "increment") == 0)
			mop = LOOM_DSML_MOD_INCREMENT;
		else
			return fault(r, c, "operation '%s' of the modification of '%s': expected add, delete or replace", op,
			    name);
		r->mods = grow(r->mods, &r->cap_mods, r->nmods + 1, sizeof *r->mods);
		r->mod_start = grow(r->mod_start, &r->cap_mod_start, r->nmods + 1, sizeof *r->mod_start);
		r->mods[r->nmods].op = mop;
		r->mods[r->nmods].attr.name = name;
		r->mods[r->nmods].attr.n = 0;
		r->mod_start[r->nmods] = r->nvals;
		for (xmlNodePtr v = c->children; v; v = v->next) {
			if (v->type != XML_ELEMENT_NODE)
				continue;
			if (!is(v, "value"))
				return unexpected(r, v, c);
			loom_dsml_value_t val;
			if (value_of(r, v, &val) < 0)
				return -1;
			r->vals = grow(r->vals, &r->cap_vals, r->nvals + 1, sizeof *r->vals);
			r->vals[r->nvals++] = val;
			r->mods[r->nmods].attr.n++;
		}
		r->nmods++;
	}
	for (size_t i = 0; i < r->nmods; i++)
		r->mods[i].attr.v = r->mods[i].attr.n ? r->vals + r->mod_start[i] : NULL;
	rec->mods = r->mods;
	rec->nmods = r->nmods;
	return 0;
}

/* An operation with no children but controls. */
static int no_children(loom_dsml_reader_t *r, xmlNodePtr n)
{
	for (xmlNodePtr c = n->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && !is(c, "control"))
			return unexpected(r, c, n);
	return 0;
}

static int op_del(loom_dsml_reader_t *r, xmlNodePtr n, loom_dsml_record_t *rec)
{
	rec->kind = LOOM_DSML_DELETE;
	if (check_message(r, n, rec, true) < 0 || require_dn(r, n, "dn", &rec->dn) < 0)
		return -1;
	return no_children(r, n);
}

static int op_moddn(loom_dsml_reader_t *r, xmlNodePtr n, loom_dsml_record_t *rec)
{
	rec->kind = LOOM_DSML_MODDN;
	if (check_message(r, n, rec, true) < 0 || require_dn(r, n, "dn", &rec->dn) < 0)
		return -1;
	const char *rdn = attr(r, n, "newrdn");
	if (rdn == NULL)
		return fault(r, n, "<modDNRequest> without its 'newrdn' attribute");
	if (!dn_check(rdn, 1, 1))
		return fault(r, n, "newrdn '%s': expected one RDN (attribute=value)", rdn);
	rec->newrdn = rdn;
	rec->deleteoldrdn = true;
	const char *del = attr(r, n, "deleteoldrdn");
	if (del && !parse_bool(del, &rec->deleteoldrdn))
		return fault(r, n, "deleteoldrdn '%s': expected true or false", del);
	const char *sup = attr(r, n, "newSuperior");
	if (sup && !loom_dsml_dn_valid(sup))
		return fault(r, n, "newSuperior '%s': not a DN", sup);
	rec->newsuperior = sup;
	return no_children(r, n);
}

/* One DsmlValue child (exactly one, or at most one when optional). */
static int one_value(loom_dsml_reader_t *r, xmlNodePtr n, const char *child, bool optional)
{
	int nv = 0;
	for (xmlNodePtr v = n->children; v; v = v->next) {
		if (v->type != XML_ELEMENT_NODE)
			continue;
		if (!is(v, child))
			return unexpected(r, v, n);
		if (++nv > 1)
			return fault(r, v, "<%s> holds more than one <%s>", name_of(n), child);
		loom_dsml_value_t val;
		if (value_of(r, v, &val) < 0)
			return -1;
	}
	if (nv == 0 && !optional)
		return fault(r, n, "<%s> without its <%s>", name_of(n), child);
	return 0;
}

static int op_compare(loom_dsml_reader_t *r, xmlNodePtr n, loom_dsml_record_t *rec)
{
	if (check_message(r, n, rec, true) < 0 || require_dn(r, n, "dn", &rec->dn) < 0)
		return -1;
	int na = 0;
	for (xmlNodePtr c = n->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || is(c, "control"))
			continue;
		if (!is(c, "assertion"))
			return unexpected(r, c, n);
		if (++na > 1)
			return fault(r, c, "<compareRequest> with more than one <assertion>");
		const char *name;
		if (check_attr_name(r, c, &name) < 0 || check_content(r, c) < 0 || one_value(r, c, "value", false) < 0)
			return -1;
	}
	if (na == 0)
		return fault(r, n, "<compareRequest> without its <assertion>");
	return 0;
}

static int check_filter(loom_dsml_reader_t *r, xmlNodePtr f, int depth);

/* A filter element's one filter child (or, for and/or, any number). */
static int filter_children(loom_dsml_reader_t *r, xmlNodePtr f, int min, int max, int depth)
{
	if (check_content(r, f) < 0)
		return -1;
	int n = 0;
	for (xmlNodePtr c = f->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (++n > max)
			return fault(r, c, "<%s> holds more than %d filter%s", name_of(f), max, max == 1 ? "" : "s");
		if (check_filter(r, c, depth + 1) < 0)
			return -1;
	}
	if (n < min)
		return fault(r, f, "<%s> holds no filter", name_of(f));
	return 0;
}

static int check_filter(loom_dsml_reader_t *r, xmlNodePtr f, int depth)
{
	if (depth > 64)
		return fault(r, f, "filter nested more than 64 deep");
	const char *name;
	if (is(f, "and") || is(f, "or"))
		return filter_children(r, f, 1, INT_MAX, depth);
	if (is(f, "not"))
		return filter_children(r, f, 1, 1, depth);
	if (is(f, "equalityMatch") || is(f, "greaterOrEqual") || is(f, "lessOrEqual") || is(f, "approxMatch")) {
		if (check_attr_name(r, f, &name) < 0 || check_content(r, f) < 0)
			return -1;
		return one_value(r, f, "value", false);
	}
	if (is(f, "present")) {
		if (check_attr_name(r, f, &name) < 0 || check_content(r, f) < 0)
			return -1;
		return no_children(r, f);
	}
	if (is(f, "substrings")) {
		if (check_attr_name(r, f, &name) < 0 || check_content(r, f) < 0)
			return -1;
		int ni = 0, nf = 0;
		for (xmlNodePtr c = f->children; c; c = c->next) {
			if (c->type != XML_ELEMENT_NODE)
				continue;
			loom_dsml_value_t val;
			if (is(c, "initial")) {
				if (++ni > 1)
					return fault(r, c, "<substrings> with more than one <initial>");
			} else if (is(c, "final")) {
				if (++nf > 1)
					return fault(r, c, "<substrings> with more than one <final>");
			} else if (!is(c, "any")) {
				return unexpected(r, c, f);
			}
			if (value_of(r, c, &val) < 0)
				return -1;
		}
		return 0;
	}
	if (is(f, "extensibleMatch")) {
		const char *nm = attr(r, f, "name");
		if (nm && !attrdesc_valid(nm))
			return fault(r, f, "attribute name '%s' of <extensibleMatch>", nm);
		const char *dna = attr(r, f, "dnAttributes");
		bool b;
		if (dna && !parse_bool(dna, &b))
			return fault(r, f, "dnAttributes '%s' of <extensibleMatch>: expected true or false", dna);
		if (check_content(r, f) < 0)
			return -1;
		return one_value(r, f, "value", false);
	}
	return fault(r, f, "unknown filter <%s>: expected and, or, not, equalityMatch, substrings, greaterOrEqual, "
			   "lessOrEqual, present, approxMatch or extensibleMatch",
	    name_of(f));
}

static int op_search(loom_dsml_reader_t *r, xmlNodePtr n, loom_dsml_record_t *rec)
{
	static const char *const scopes[] = { "baseObject", "singleLevel", "wholeSubtree", NULL };
	static const char *const derefs[] = { "neverDerefAliases", "derefInSearching", "derefFindingBaseObj",
		"derefAlways", NULL };
	if (check_message(r, n, rec, true) < 0 || require_dn(r, n, "dn", &rec->dn) < 0)
		return -1;
	const char *scope = attr(r, n, "scope");
	if (scope == NULL)
		return fault(r, n, "<searchRequest> without its 'scope' attribute");
	if (!one_of(scope, scopes))
		return fault(r, n, "scope '%s': expected baseObject, singleLevel or wholeSubtree", scope);
	const char *deref = attr(r, n, "derefAliases");
	if (deref == NULL)
		return fault(r, n, "<searchRequest> without its 'derefAliases' attribute");
	if (!one_of(deref, derefs))
		return fault(r, n, "derefAliases '%s': expected neverDerefAliases, derefInSearching, "
				   "derefFindingBaseObj or derefAlways",
		    deref);
	static const char *const limits[] = { "sizeLimit", "timeLimit" };
	for (int i = 0; i < 2; i++) {
		const char *v = attr(r, n, limits[i]);
		long long x;
		if (v && !parse_uint(v, INT_MAX, &x))
			return fault(r, n, "%s '%s': expected a number from 0 to 2147483647", limits[i], v);
	}
	const char *to = attr(r, n, "typesOnly");
	bool b;
	if (to && !parse_bool(to, &b))
		return fault(r, n, "typesOnly '%s': expected true or false", to);
	int nf = 0, na = 0;
	for (xmlNodePtr c = n->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || is(c, "control"))
			continue;
		if (is(c, "filter")) {
			if (++nf > 1)
				return fault(r, c, "<searchRequest> with more than one <filter>");
			if (filter_children(r, c, 1, 1, 0) < 0)
				return -1;
		} else if (is(c, "attributes")) {
			if (++na > 1)
				return fault(r, c, "<searchRequest> with more than one <attributes>");
			if (check_content(r, c) < 0)
				return -1;
			for (xmlNodePtr a = c->children; a; a = a->next) {
				if (a->type != XML_ELEMENT_NODE)
					continue;
				if (!is(a, "attribute"))
					return unexpected(r, a, c);
				const char *name = attr(r, a, "name");
				if (name == NULL)
					return fault(r, a, "<attribute> without its 'name' attribute");
				if (check_content(r, a) < 0 || no_children(r, a) < 0)
					return -1;
			}
		} else {
			return unexpected(r, c, n);
		}
	}
	if (nf == 0)
		return fault(r, n, "<searchRequest> without its <filter>");
	return 0;
}

/* The text of c (<requestName>, <responseName>) as a numeric OID; empty
 * only when may_be_empty. Returns 0, or -1 with the fault recorded. */
static int oid_text(loom_dsml_reader_t *r, xmlNodePtr c, bool may_be_empty)
{
	loom_buf_t b = LOOM_BUF_INIT;
	int rc = text_of(r, c, &b);
	bool ok = rc == 0 && ((b.data == NULL || blank(b.data)) ? may_be_empty : oid_valid(b.data));
	loom_buf_release(&b);
	if (rc < 0)
		return -1;
	if (!ok)
		return fault(r, c, "<%s> is not a numeric OID", name_of(c));
	return 0;
}

static int op_extended(loom_dsml_reader_t *r, xmlNodePtr n, loom_dsml_record_t *rec)
{
	if (check_message(r, n, rec, true) < 0)
		return -1;
	int nn = 0, nv = 0;
	for (xmlNodePtr c = n->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || is(c, "control"))
			continue;
		if (is(c, "requestName")) {
			if (++nn > 1)
				return fault(r, c, "<extendedRequest> with more than one <requestName>");
			if (oid_text(r, c, false) < 0)
				return -1;
		} else if (is(c, "requestValue")) {
			if (++nv > 1)
				return fault(r, c, "<extendedRequest> with more than one <requestValue>");
			loom_dsml_value_t val;
			if (value_of(r, c, &val) < 0)
				return -1;
		} else {
			return unexpected(r, c, n);
		}
	}
	if (nn == 0)
		return fault(r, n, "<extendedRequest> without its <requestName>");
	return 0;
}

static int op_abandon(loom_dsml_reader_t *r, xmlNodePtr n, loom_dsml_record_t *rec)
{
	if (check_message(r, n, rec, true) < 0)
		return -1;
	const char *id = attr(r, n, "abandonID");
	if (id == NULL)
		return fault(r, n, "<abandonRequest> without its 'abandonID' attribute");
	return no_children(r, n);
}

static int op_auth(loom_dsml_reader_t *r, xmlNodePtr n, loom_dsml_record_t *rec)
{
	if (check_message(r, n, rec, true) < 0)
		return -1;
	if (attr(r, n, "principal") == NULL)
		return fault(r, n, "<authRequest> without its 'principal' attribute");
	if (r->nops > 1)
		return fault(r, n, "<authRequest> after another request: it may only be a batch's first request");
	return no_children(r, n);
}

/* LDAPResult: resultCode, errorMessage, referral (plus what extra allows). */
static int check_result(loom_dsml_reader_t *r, xmlNodePtr n, loom_dsml_record_t *rec, const char *const *extra)
{
	if (check_message(r, n, rec, false) < 0)
		return -1;
	const char *mdn = attr(r, n, "matchedDN");
	if (mdn && !loom_dsml_dn_valid(mdn))
		return fault(r, n, "matchedDN '%s' of <%s>: not a DN", mdn, name_of(n));
	int nc = 0, nm = 0;
	for (xmlNodePtr c = n->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || is(c, "control"))
			continue;
		if (is(c, "resultCode")) {
			if (++nc > 1)
				return fault(r, c, "<%s> with more than one <resultCode>", name_of(n));
			const char *code = attr(r, c, "code");
			long long v;
			if (code == NULL)
				return fault(r, c, "<resultCode> without its 'code' attribute");
			if (!parse_uint(code, INT_MAX, &v))
				return fault(r, c, "result code '%s': expected a number", code);
			const char *descr = attr(r, c, "descr");
			if (descr && !one_of(descr, result_descrs))
				return fault(r, c, "result descr '%s' is not an LDAP result code name", descr);
			if (check_content(r, c) < 0 || no_children(r, c) < 0)
				return -1;
			rec->result_code = (int)v;
		} else if (is(c, "errorMessage")) {
			if (++nm > 1)
				return fault(r, c, "<%s> with more than one <errorMessage>", name_of(n));
			loom_buf_t b = LOOM_BUF_INIT;
			int rc = text_of(r, c, &b);
			if (rc == 0 && b.len)
				rec->message = keep(r, b.data, b.len);
			loom_buf_release(&b);
			if (rc < 0)
				return -1;
		} else if (is(c, "referral")) {
			loom_buf_t b = LOOM_BUF_INIT;
			int rc = text_of(r, c, &b);
			bool ok = rc == 0 && (b.len == 0 || blank(b.data) || ldap_url(b.data));
			loom_buf_release(&b);
			if (rc < 0)
				return -1;
			if (!ok)
				return fault(r, c, "<referral> is not an LDAP URL");
		} else if (extra && one_of(name_of(c), extra)) {
			continue; /* the caller checks it */
		} else {
			return unexpected(r, c, n);
		}
	}
	if (nc == 0)
		return fault(r, n, "<%s> without its <resultCode>", name_of(n));
	return 0;
}

static int op_result(loom_dsml_reader_t *r, xmlNodePtr n, loom_dsml_record_t *rec)
{
	return check_result(r, n, rec, NULL);
}

static int op_extended_response(loom_dsml_reader_t *r, xmlNodePtr n, loom_dsml_record_t *rec)
{
	static const char *const extra[] = { "responseName", "response", NULL };
	if (check_result(r, n, rec, extra) < 0)
		return -1;
	int nn = 0, nr = 0;
	for (xmlNodePtr c = n->children; c; c = c->next) {
		if (is(c, "responseName")) {
			if (++nn > 1)
				return fault(r, c, "<extendedResponse> with more than one <responseName>");
			if (oid_text(r, c, true) < 0)
				return -1;
		} else if (is(c, "response")) {
			if (++nr > 1)
				return fault(r, c, "<extendedResponse> with more than one <response>");
			loom_dsml_value_t val;
			if (value_of(r, c, &val) < 0)
				return -1;
		}
	}
	return 0;
}

static int op_error_response(loom_dsml_reader_t *r, xmlNodePtr n, loom_dsml_record_t *rec)
{
	static const char *const types[] = { "notAttempted", "couldNotConnect", "connectionClosed", "malformedRequest",
		"gatewayInternalError", "authenticationFailed", "unresolvableURI", "other", NULL };
	if (check_request_id(r, n, &rec->request_id) < 0 || check_content(r, n) < 0)
		return -1;
	const char *type = attr(r, n, "type");
	if (type == NULL)
		return fault(r, n, "<errorResponse> without its 'type' attribute");
	if (!one_of(type, types))
		return fault(r, n, "errorResponse type '%s' is not one DSML v2 defines", type);
	int nm = 0, nd = 0;
	for (xmlNodePtr c = n->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (is(c, "message")) {
			if (++nm > 1)
				return fault(r, c, "<errorResponse> with more than one <message>");
			loom_buf_t b = LOOM_BUF_INIT;
			int rc = text_of(r, c, &b);
			if (rc == 0 && b.len)
				rec->message = keep(r, b.data, b.len);
			loom_buf_release(&b);
			if (rc < 0)
				return -1;
		} else if (is(c, "detail")) {
			if (++nd > 1)
				return fault(r, c, "<errorResponse> with more than one <detail>");
		} else {
			return unexpected(r, c, n);
		}
	}
	return 0;
}

static int op_reference(loom_dsml_reader_t *r, xmlNodePtr n, loom_dsml_record_t *rec)
{
	if (check_message(r, n, rec, false) < 0)
		return -1;
	int nref = 0;
	for (xmlNodePtr c = n->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || is(c, "control"))
			continue;
		if (!is(c, "ref"))
			return unexpected(r, c, n);
		nref++;
		loom_buf_t b = LOOM_BUF_INIT;
		int rc = text_of(r, c, &b);
		bool ok = rc == 0 && (b.len == 0 || blank(b.data) || ldap_url(b.data));
		loom_buf_release(&b);
		if (rc < 0)
			return -1;
		if (!ok)
			return fault(r, c, "<ref> is not an LDAP URL");
	}
	if (nref == 0)
		return fault(r, n, "<searchResultReference> without a <ref>");
	return 0;
}

static int op_done(loom_dsml_reader_t *r, xmlNodePtr n, loom_dsml_record_t *rec)
{
	rec->kind = LOOM_DSML_DONE;
	return check_result(r, n, rec, NULL);
}

/* The unqualified attributes each element may carry. Unknown ones are
 * refused inside operations: a misspelt deleteoldrdn would otherwise
 * silently mean its default. */
static const struct {
	const char *element;
	const char *attrs[8];
} allowed_attrs[] = {
	{ "addRequest", { "requestID", "dn" } },
	{ "delRequest", { "requestID", "dn" } },
	{ "modifyRequest", { "requestID", "dn" } },
	{ "compareRequest", { "requestID", "dn" } },
	{ "searchResultEntry", { "requestID", "dn" } },
	{ "modDNRequest", { "requestID", "dn", "newrdn", "deleteoldrdn", "newSuperior" } },
	{ "searchRequest", { "requestID", "dn", "scope", "derefAliases", "sizeLimit", "timeLimit", "typesOnly" } },
	{ "extendedRequest", { "requestID" } },
	{ "searchResultReference", { "requestID" } },
	{ "abandonRequest", { "requestID", "abandonID" } },
	{ "authRequest", { "requestID", "principal" } },
	{ "addResponse", { "requestID", "matchedDN" } },
	{ "delResponse", { "requestID", "matchedDN" } },
	{ "modifyResponse", { "requestID", "matchedDN" } },
	{ "modDNResponse", { "requestID", "matchedDN" } },
	{ "compareResponse", { "requestID", "matchedDN" } },
	{ "authResponse", { "requestID", "matchedDN" } },
	{ "extendedResponse", { "requestID", "matchedDN" } },
	{ "searchResultDone", { "requestID", "matchedDN" } },
	{ "errorResponse", { "requestID", "type" } },
	{ "control", { "type", "criticality" } },
	{ "attr", { "name" } },
	{ "modification", { "name", "operation" } },
	{ "assertion", { "name" } },
	{ "attribute", { "name" } },
	{ "equalityMatch", { "name" } },
	{ "greaterOrEqual", { "name" } },
	{ "lessOrEqual", { "name" } },
	{ "approxMatch", { "name" } },
	{ "present", { "name" } },
	{ "substrings", { "name" } },
	{ "extensibleMatch", { "name", "matchingRule", "dnAttributes" } },
	{ "resultCode", { "code", "descr" } },
};

static int check_attrs_tree(loom_dsml_reader_t *r, xmlNodePtr n, int depth)
{
	if (n->type != XML_ELEMENT_NODE || depth > 128)
		return 0;
	if (is(n, "detail"))
		return 0; /* xsd:any */
	size_t i = 0;
	const size_t na = sizeof allowed_attrs / sizeof allowed_attrs[0];
	while (i < na && strcmp(allowed_attrs[i].element, name_of(n)) != 0)
		i++;
	for (xmlAttrPtr a = n->properties; a; a = a->next) {
		if (a->ns != NULL)
			continue; /* xsi:type and other qualified attributes */
		bool ok = false;
		for (size_t k = 0; i < na && k < 8 && allowed_attrs[i].attrs[k]; k++)
			if (strcmp(allowed_attrs[i].attrs[k], (const char *)a->name) == 0)
				ok = true;
		if (!ok)
			return fault(r, n, "unknown attribute '%s' on <%s>", (const char *)a->name, name_of(n));
	}
	for (xmlNodePtr c = n->children; c; c = c->next)
		if (check_attrs_tree(r, c, depth + 1) < 0)
			return -1;
	return 0;
}

typedef int op_fn(loom_dsml_reader_t *r, xmlNodePtr n, loom_dsml_record_t *rec);

typedef struct op_def {
	const char *name;              /* element */
	op_fn *fn;                     /* its check */
} op_def_t;

static const op_def_t request_ops[] = {
	{ "addRequest", op_add }, { "modifyRequest", op_modify }, { "delRequest", op_del },
	{ "modDNRequest", op_moddn }, { "searchRequest", op_search }, { "compareRequest", op_compare },
	{ "extendedRequest", op_extended }, { "abandonRequest", op_abandon }, { "authRequest", op_auth },
	{ NULL, NULL },
};

static const op_def_t response_ops[] = {
	{ "addResponse", op_result }, { "modifyResponse", op_result }, { "delResponse", op_result },
	{ "modDNResponse", op_result }, { "compareResponse", op_result }, { "authResponse", op_result },
	{ "extendedResponse", op_extended_response }, { "errorResponse", op_error_response }, { NULL, NULL },
};

static const op_def_t search_ops[] = {
	{ "searchResultEntry", op_entry }, { "searchResultReference", op_reference },
	{ "searchResultDone", op_done }, { NULL, NULL },
};

/* ---- the reader ----------------------------------------------------------------- */

static void on_xml_error(void *arg, xmlErrorPtr e)
{
	loom_dsml_reader_t *r = arg;
	if (r->xerr || e == NULL || e->level < XML_ERR_ERROR)
		return;
	r->xerr = true;
	r->xerr_line = e->line > 0 ? (unsigned)e->line : 0;
	r->xerr_col = e->int2 > 0 ? (unsigned)e->int2 : 0;
	snprintf(r->xerr_msg, sizeof r->xerr_msg, "%s", e->message ? e->message : "XML error");
	size_t n = strlen(r->xerr_msg);
	while (n > 0 && (r->xerr_msg[n - 1] == '\n' || r->xerr_msg[n - 1] == ' '))
		r->xerr_msg[--n] = '\0';
}

static loom_dsml_reader_t *reader_new(xmlTextReaderPtr xr)
{
	loom_dsml_reader_t *r = loom_calloc(1, sizeof *r);
	r->xr = xr;
	if (xr)
		xmlTextReaderSetStructuredErrorHandler(xr, on_xml_error, r);
	return r;
}

/* No network, no entity substitution, no DTD loading; lines past 65535. */
#define PARSE_OPTS (XML_PARSE_NONET | XML_PARSE_BIG_LINES | XML_PARSE_NOCDATA)

loom_dsml_reader_t *loom_dsml_reader_new_fd(int fd, const char *name)
{
	if (fd < 0)
		return NULL;
	return reader_new(xmlReaderForFd(fd, name, NULL, PARSE_OPTS));
}

loom_dsml_reader_t *loom_dsml_reader_new_mem(const void *data, size_t len, const char *name)
{
	return reader_new(xmlReaderForMemory(data, (int)(len > INT_MAX ? INT_MAX : len), name, NULL, PARSE_OPTS));
}

void loom_dsml_reader_destroy(loom_dsml_reader_t **reader_p)
{
	loom_dsml_reader_t *r = *reader_p;
	if (r == NULL)
		return;
	reset_record(r);
	if (r->xr)
		xmlFreeTextReader(r->xr);
	free(r->blocks);
	free(r->attrs);
	free(r->pairs);
	free(r->vals);
	free(r->mods);
	free(r->mod_start);
	free(r);
	*reader_p = NULL;
}

bool loom_dsml_is_request(const loom_dsml_reader_t *r)
{
	return r->is_request;
}

__attribute__((format(printf, 3, 4))) static int fatal(loom_dsml_reader_t *r, unsigned line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->err->message, sizeof r->err->message, fmt, ap);
	va_end(ap);
	r->err->line = line;
	r->err->column = 0;
	r->err->fatal = true;
	r->state = ST_END;
	return -1;
}

/* The line of the reader's current node (the parser itself may be further on). */
static unsigned cur_line(loom_dsml_reader_t *r)
{
	xmlNodePtr n = xmlTextReaderCurrentNode(r->xr);
	long l = n ? xmlGetLineNo(n) : -1;
	if (l <= 0)
		l = xmlTextReaderGetParserLineNumber(r->xr);
	return l > 0 ? (unsigned)l : 0;
}

/* The current node's attribute, malloc'd by libxml2 (xmlFree), or NULL. */
static int check_batch(loom_dsml_reader_t *r)
{
	static const struct {
		const char *attr;
		const char *words[3];
	} enums[] = {
		{ "processing", { "sequential", "parallel", NULL } },
		{ "responseOrder", { "sequential", "unordered", NULL } },
		{ "onError", { "resume", "exit", NULL } },
	};
	xmlNodePtr n = xmlTextReaderCurrentNode(r->xr);
	unsigned line = cur_line(r);
	const char *id = attr(r, n, "requestID");
	long long v;
	if (id && (id[0] == '-' || isdigit((unsigned char)id[0])) && strspn(id + 1, "0123456789") == strlen(id + 1) &&
	    !parse_uint(id, INT_MAX, &v))
		return fatal(r, line, "requestID '%s' of <%s>: a numeric requestID is an LDAP message id, 0 to 2147483647",
		    id, name_of(n));
	for (size_t i = 0; i < sizeof enums / sizeof enums[0]; i++) {
		const char *val = attr(r, n, enums[i].attr);
		if (val == NULL)
			continue;
		if (!one_of(val, enums[i].words))
			return fatal(r, line, "%s '%s' of <%s>: expected %s or %s", enums[i].attr, val, name_of(n),
			    enums[i].words[0], enums[i].words[1]);
		if (r->is_request && strcmp(val, enums[i].words[1]) == 0 && i < 2)
			r->need_ids = true;
	}
	return 0;
}

/* Expands the current element, checks it with the table and skips it. */
static int handle_op(loom_dsml_reader_t *r, const op_def_t *ops, loom_dsml_record_t *rec)
{
	xmlNodePtr n = xmlTextReaderExpand(r->xr);
	const char *local = (const char *)xmlTextReaderConstLocalName(r->xr);
	unsigned line = cur_line(r);
	if (n == NULL) /* the subtree is not well-formed: the read below reports it */
		return 0;
	int rc = -1;
	line = (unsigned)xmlGetLineNo(n);
	memset(rec, 0, sizeof *rec);
	rec->element = keep(r, local, strlen(local));
	rec->line = line;
	rec->kind = LOOM_DSML_OTHER;
	r->nops++;
	const op_def_t *d = ops;
	while (d->name && strcmp(d->name, local) != 0)
		d++;
	if (!dsml_ns(n->ns))
		rc = fault(r, n, "element '%s' from namespace '%s': expected a DSML v2 operation", local, n->ns->href);
	else if (d->name == NULL)
		rc = fault(r, n, "unexpected element <%s> in <%s>", local,
		    r->state == ST_SEARCH ? "searchResponse" : r->is_request ? "batchRequest" : "batchResponse");
	else if ((rc = d->fn(r, n, rec)) == 0)
		rc = check_attrs_tree(r, n, 0);
	if (xmlTextReaderNext(r->xr) < 0)
		r->have_current = false; /* the error handler has it; the next read reports it */
	else
		r->have_current = true;
	return rc < 0 ? -1 : 1;
}

int loom_dsml_read(loom_dsml_reader_t *r, loom_dsml_record_t *ret, loom_dsml_error_t *ret_err)
{
	r->err = ret_err ? ret_err : &r->scratch_err;
	memset(r->err, 0, sizeof *r->err);
	reset_record(r);
	if (r->xr == NULL) {
		if (r->state == ST_END)
			return 0;
		return fatal(r, 0, "cannot set up the XML parser");
	}
	for (;;) {
		if (r->state == ST_END)
			return 0;
		int rc = 1;
		if (r->have_current)
			r->have_current = false;
		else
			rc = xmlTextReaderRead(r->xr);
		if (rc < 0 || r->xerr) {
			r->err->column = r->xerr_col;
			fatal(r, r->xerr_line, "%s", r->xerr ? r->xerr_msg : "the XML document cannot be read");
			r->err->column = r->xerr_col;
			return -1;
		}
		if (rc == 0) {
			if (r->state == ST_START)
				return fatal(r, cur_line(r), "the document holds no DSML batchRequest or batchResponse");
			if (r->state != ST_TAIL)
				return fatal(r, cur_line(r), "the document ends inside the batch");
			r->state = ST_END;
			return 0;
		}
		int type = xmlTextReaderNodeType(r->xr);
		int depth = xmlTextReaderDepth(r->xr);
		const char *local = (const char *)xmlTextReaderConstLocalName(r->xr);
		const xmlChar *ns = xmlTextReaderConstNamespaceUri(r->xr);
		if (type == XML_READER_TYPE_DOCUMENT_TYPE)
			return fatal(r, cur_line(r), "a DOCTYPE is not allowed in a DSML document");
		if (type == XML_READER_TYPE_ENTITY_REFERENCE)
			return fatal(r, cur_line(r), "entity reference '&%s;' in a DSML document", local);
		if (type == XML_READER_TYPE_TEXT || type == XML_READER_TYPE_CDATA) {
			const char *v = (const char *)xmlTextReaderConstValue(r->xr);
			if (!blank(v) && r->state != ST_TAIL) {
				char s[64];
				cut(s, sizeof s, v);
				return fatal(r, cur_line(r), "text '%s' outside any DSML operation", s);
			}
			continue;
		}
		bool soap = ns && (strcmp((const char *)ns, NS_SOAP11) == 0 || strcmp((const char *)ns, NS_SOAP12) == 0);
		switch (r->state) {
		case ST_START:
			if (type != XML_READER_TYPE_ELEMENT)
				continue;
			if (soap && (strcmp(local, "Envelope") == 0 || strcmp(local, "Body") == 0))
				continue;
			if (soap && strcasecmp(local, "Header") == 0) {
				if (xmlTextReaderNext(r->xr) > 0)
					r->have_current = true;
				continue;
			}
			if (ns && dsml_ns_uri(ns) &&
			    (strcmp(local, "batchRequest") == 0 || strcmp(local, "batchResponse") == 0)) {
				r->is_request = strcmp(local, "batchRequest") == 0;
				r->batch_depth = depth;
				if (check_batch(r) < 0)
					return -1;
				r->state = xmlTextReaderIsEmptyElement(r->xr) ? ST_TAIL : ST_BATCH;
				continue;
			}
			return fatal(r, cur_line(r), "element <%s>%s%s%s: expected a DSML v2 batchRequest or batchResponse",
			    local, ns ? " of namespace '" : "", ns ? (const char *)ns : "", ns ? "'" : "");
		case ST_BATCH:
			if (type == XML_READER_TYPE_END_ELEMENT && depth == r->batch_depth) {
				r->state = ST_TAIL;
				continue;
			}
			if (type != XML_READER_TYPE_ELEMENT)
				continue;
			if (!r->is_request && strcmp(local, "searchResponse") == 0 && dsml_ns_uri(ns)) {
				xmlNodePtr n = xmlTextReaderCurrentNode(r->xr);
				loom_dsml_record_t tmp;
				memset(&tmp, 0, sizeof tmp);
				r->nops++;
				r->search_line = (unsigned)xmlGetLineNo(n);
				if (check_request_id(r, n, &tmp.request_id) < 0) {
					r->err->fatal = true;
					r->state = ST_END;
					return -1;
				}
				if (xmlTextReaderIsEmptyElement(r->xr))
					return fatal(r, r->search_line, "<searchResponse> without its <searchResultDone>: "
									"the search result may be incomplete");
				r->state = ST_SEARCH;
				r->search_depth = depth;
				r->search_done = false;
				continue;
			}
			rc = handle_op(r, r->is_request ? request_ops : response_ops, ret);
			if (rc != 0)
				return rc;
			continue;
		case ST_SEARCH:
			if (type == XML_READER_TYPE_END_ELEMENT && depth == r->search_depth) {
				if (!r->search_done)
					return fatal(r, r->search_line, "<searchResponse> without its <searchResultDone>: "
									"the search result may be incomplete");
				r->state = ST_BATCH;
				continue;
			}
			if (type != XML_READER_TYPE_ELEMENT)
				continue;
			if (r->search_done)
				return fatal(r, cur_line(r), "<%s> after <searchResultDone>: the search response ends there",
				    local);
			bool done = strcmp(local, "searchResultDone") == 0;
			rc = handle_op(r, search_ops, ret);
			if (done)
				r->search_done = true;
			if (rc != 0)
				return rc;
			continue;
		case ST_TAIL:
			continue;
		default:
			return 0;
		}
	}
}

/* ---- the writer ----------------------------------------------------------------- */

struct loom_dsml_writer {
	loom_buf_t *out;               /* where records go (borrowed) */
	loom_dsml_doc_t doc;           /* which document */
	unsigned long next_id;         /* requestID of the next request */
	bool finished;                 /* the closing elements are written */
};

static void esc(loom_buf_t *b, const char *s, size_t len, bool in_attr)
{
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '&')
			loom_buf_adds(b, "&amp;");
		else if (c == '<')
			loom_buf_adds(b, "&lt;");
		else if (c == '>')
			loom_buf_adds(b, "&gt;");
		else if (c == '"' && in_attr)
			loom_buf_adds(b, "&quot;");
		else if (in_attr && (c == '\t' || c == '\n'))
			loom_buf_printf(b, "&#%d;", c);
		else
			loom_buf_addc(b, c);
	}
}

/* Text that an XML element can carry as is: UTF-8 without control
 * characters (tab and LF aside) or CR (which parsers fold into LF). */
static bool xml_safe(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x80) {
			if (c < 0x20 && c != '\t' && c != '\n')
				return false;
			i++;
			continue;
		}
		size_t extra = (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 0;
		if (extra == 0 || i + extra >= len)
			return false;
		for (size_t k = 1; k <= extra; k++)
			if (((unsigned char)s[i + k] & 0xc0) != 0x80)
				return false;
		if (c == 0xef && (unsigned char)s[i + 1] == 0xbf && (unsigned char)s[i + 2] >= 0xbe)
			return false; /* U+FFFE, U+FFFF */
		i += extra + 1;
	}
	return true;
}

static void write_value(loom_buf_t *b, const char *tag, const loom_dsml_value_t *v)
{
	if (xml_safe(v->data, v->len)) {
		loom_buf_printf(b, "<%s>", tag);
		esc(b, v->data, v->len, false);
		loom_buf_printf(b, "</%s>", tag);
		return;
	}
	size_t n = sodium_base64_ENCODED_LEN(v->len, sodium_base64_VARIANT_ORIGINAL);
	char *t = loom_malloc(n);
	sodium_bin2base64(t, n, (const unsigned char *)v->data, v->len, sodium_base64_VARIANT_ORIGINAL);
	loom_buf_printf(b, "<%s xsi:type=\"xsd:base64Binary\">%s</%s>", tag, t, tag);
	free(t);
}

static void write_attr_el(loom_buf_t *b, const char *el, const char *extra, const loom_dsml_attr_t *a)
{
	loom_buf_printf(b, "    <%s name=\"", el);
	esc(b, a->name, strlen(a->name), true);
	loom_buf_printf(b, "\"%s>", extra ? extra : "");
	for (size_t k = 0; k < a->n; k++)
		write_value(b, "value", &a->v[k]);
	loom_buf_printf(b, "</%s>\n", el);
}

loom_dsml_writer_t *loom_dsml_writer_new(loom_buf_t *out, loom_dsml_doc_t doc)
{
	loom_dsml_writer_t *w = loom_calloc(1, sizeof *w);
	w->out = out;
	w->doc = doc;
	w->next_id = 1;
	loom_buf_printf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<%s xmlns=\"%s\" xmlns:xsd=\"%s\" "
			     "xmlns:xsi=\"%s\">\n",
	    doc == LOOM_DSML_DOC_SEARCH ? "batchResponse" : "batchRequest", NS_DSML_XSD, NS_XSD, NS_XSI);
	if (doc == LOOM_DSML_DOC_SEARCH)
		loom_buf_adds(out, "<searchResponse>\n");
	return w;
}

static const char *check_write(const loom_dsml_writer_t *w, const loom_dsml_record_t *rec)
{
	if (w->finished)
		return "the document is finished";
	if ((rec->kind == LOOM_DSML_ENTRY) != (w->doc == LOOM_DSML_DOC_SEARCH))
		return w->doc == LOOM_DSML_DOC_SEARCH ? "a search document holds entries only"
						      : "a changes document holds add, modify, delete and modDN requests";
	if (rec->kind != LOOM_DSML_ENTRY && rec->kind != LOOM_DSML_ADD && rec->kind != LOOM_DSML_MODIFY &&
	    rec->kind != LOOM_DSML_DELETE && rec->kind != LOOM_DSML_MODDN)
		return "unknown record kind";
	if (rec->dn == NULL)
		return "record without a DN";
	for (size_t i = 0; i < rec->nattrs; i++)
		if (!attrdesc_valid(rec->attrs[i].name))
			return "bad attribute name";
	for (size_t i = 0; i < rec->nmods; i++)
		if (!attrdesc_valid(rec->mods[i].attr.name))
			return "bad attribute name";
	if (rec->kind == LOOM_DSML_MODDN && (rec->newrdn == NULL || rec->newrdn[0] == '\0'))
		return "modDN without newrdn";
	return NULL;
}

int loom_dsml_write(loom_dsml_writer_t *w, const loom_dsml_record_t *rec, const char **error_r)
{
	const char *why = check_write(w, rec);
	if (why) {
		if (error_r)
			*error_r = why;
		return -1;
	}
	loom_buf_t *b = w->out;
	static const char *const el[] = { "searchResultEntry", "addRequest", "modifyRequest", "delRequest",
		"modDNRequest" };
	loom_buf_printf(b, "  <%s", el[rec->kind]);
	if (rec->kind != LOOM_DSML_ENTRY)
		loom_buf_printf(b, " requestID=\"%lu\"", w->next_id++);
	loom_buf_adds(b, " dn=\"");
	esc(b, rec->dn, strlen(rec->dn), true);
	loom_buf_addc(b, '"');
	if (rec->kind == LOOM_DSML_MODDN) {
		loom_buf_adds(b, " newrdn=\"");
		esc(b, rec->newrdn, strlen(rec->newrdn), true);
		loom_buf_printf(b, "\" deleteoldrdn=\"%s\"", rec->deleteoldrdn ? "true" : "false");
		if (rec->newsuperior) {
			loom_buf_adds(b, " newSuperior=\"");
			esc(b, rec->newsuperior, strlen(rec->newsuperior), true);
			loom_buf_addc(b, '"');
		}
	}
	if (rec->nattrs == 0 && rec->nmods == 0) {
		loom_buf_adds(b, "/>\n");
		return 0;
	}
	loom_buf_adds(b, ">\n");
	for (size_t i = 0; i < rec->nattrs; i++)
		write_attr_el(b, "attr", NULL, &rec->attrs[i]);
	for (size_t i = 0; i < rec->nmods; i++) {
		static const char *const ops[] = { " operation=\"add\"", " operation=\"delete\"", " operation=\"replace\"",
			" operation=\"increment\"" };
		write_attr_el(b, "modification", ops[rec->mods[i].op], &rec->mods[i].attr);
	}
	loom_buf_printf(b, "  </%s>\n", el[rec->kind]);
	return 0;
}

void loom_dsml_writer_finish(loom_dsml_writer_t *w)
{
	if (w->finished)
		return;
	w->finished = true;
	if (w->doc == LOOM_DSML_DOC_SEARCH)
		loom_buf_adds(w->out, "  <searchResultDone><resultCode code=\"0\" descr=\"success\"/></searchResultDone>\n"
				      "</searchResponse>\n</batchResponse>\n");
	else
		loom_buf_adds(w->out, "</batchRequest>\n");
}

void loom_dsml_writer_destroy(loom_dsml_writer_t **writer_p)
{
	free(*writer_p);
	*writer_p = NULL;
}
