/* ma_ldap_passwd.c - SetPassword: an administrator's reset of one account's
 * password (proto/agent.proto SetPasswordRequest).
 *
 * The password arrives sealed to this agent's key (keys_dir/ma.NAME.key) and
 * is opened into libsodium guarded memory; every copy the agent makes (the
 * UTF-16LE value for AD) is guarded memory too, and all of it is wiped as
 * soon as the directory has answered. libldap copies the value into its
 * request BER: main() gives liblber an allocator that wipes every block it
 * frees (ml_wipe_ber_memory), so that copy is wiped too. The password is
 * never logged and never part of a reply; replies carry the server's text.
 *
 *   OpenLDAP          Password Modify extended operation (RFC 3062) with the
 *                     user's DN and the new password, no old one: the
 *                     server hashes it as its password-hash says.
 *   Active Directory  modify: replace unicodePwd with the password in
 *                     double quotes, UTF-16LE. AD takes it only over an
 *                     encrypted connection: without ldaps:// or StartTLS
 *                     the request is refused here, before anything is sent.
 *
 * The target is the DN, or the anchor (entryUUID / objectGUID, or the DN
 * when the anchor is the DN) looked up in the configured bases; with both,
 * the anchor decides and the DN must name the same entry (a rename since
 * the caller last looked is refused rather than guessed at).
 *
 * Requests share one connection of their own, kept open between them (so
 * a running import or export is not disturbed, and password sync does not
 * pay a connect and bind per change), and their operations are
 * synchronous, bounded by ldap.timeout: a password change is one small
 * operation.
 */
#include "ma_ldap.h"
#include "loom_agentproto.h"
#include "loom_alloc.h"
#include "loom_keys.h"
#include "loom_log.h"

#include <ctype.h>
#include <malloc.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- liblber's memory: wiped when freed ---------------------------------------------- */

static void *wipe_malloc(ber_len_t n, void *ctx)
{
	(void)ctx;
	return malloc(n ? n : 1);
}

static void *wipe_calloc(ber_len_t n, ber_len_t size, void *ctx)
{
	(void)ctx;
	return calloc(n ? n : 1, size ? size : 1);
}

static void wipe_free(void *p, void *ctx)
{
	(void)ctx;
	if (p == NULL)
		return;
	sodium_memzero(p, malloc_usable_size(p));
	free(p);
}

static void *wipe_realloc(void *p, ber_len_t n, void *ctx)
{
	if (p == NULL)
		return wipe_malloc(n, ctx);
	size_t old = malloc_usable_size(p);
	if (n <= old)
		return p; /* shrinking in place keeps the block, and wipe_free wipes all of it */
	void *q = malloc(n);
	if (q == NULL)
		return NULL;
	memcpy(q, p, old);
	wipe_free(p, ctx);
	return q;
}

int ml_wipe_ber_memory(void)
{
	static BerMemoryFunctions fns = { wipe_malloc, wipe_calloc, wipe_realloc, wipe_free };
	return ber_set_option(NULL, LBER_OPT_MEMORY_FNS, &fns) == LBER_OPT_SUCCESS ? 0 : -1;
}

/* ---- pure helpers --------------------------------------------------------------------- */

/* The 16 bytes of a UUID written as ml_uuid_text writes it (ad: objectGUID
 * byte order). -1 when text is not 8-4-4-4-12 hex digits. */
static int uuid_parse(const char *text, bool ad, uint8_t out[16])
{
	static const int at[16] = { 0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34 };
	if (strlen(text) != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' || text[23] != '-')
		return -1;
	uint8_t b[16];
	for (int i = 0; i < 16; i++) {
		unsigned v;
		char hex[3] = { text[at[i]], text[at[i] + 1], '\0' };
		if (!isxdigit((unsigned char)hex[0]) || !isxdigit((unsigned char)hex[1]) || sscanf(hex, "%2x", &v) != 1)
			return -1;
		b[i] = (uint8_t)v;
	}
	if (ad) { /* first three groups little-endian */
		static const int order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
		for (int i = 0; i < 16; i++)
			out[i] = b[order[i]];
	} else {
		memcpy(out, b, 16);
	}
	return 0;
}

/* The code point at s[*i] (valid UTF-8, no overlongs, no surrogates, not
 * NUL), advancing *i; -1 when it is not. */
static long utf8_next(const uint8_t *s, size_t len, size_t *i)
{
	uint8_t c = s[*i];
	long cp;
	size_t n;
	if (c == 0)
		return -1;
	if (c < 0x80) {
		(*i)++;
		return c;
	} else if ((c & 0xe0) == 0xc0) {
		cp = c & 0x1f, n = 1;
	} else if ((c & 0xf0) == 0xe0) {
		cp = c & 0x0f, n = 2;
	} else if ((c & 0xf8) == 0xf0) {
		cp = c & 0x07, n = 3;
	} else {
		return -1;
	}
	for (size_t k = 1; k <= n; k++) {
		if (*i + k >= len || (s[*i + k] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[*i + k] & 0x3f);
	}
	static const long min[4] = { 0, 0x80, 0x800, 0x10000 };
	if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*i += n + 1;
	return cp;
}

/* AD's unicodePwd value: "password" (with the quotes) in UTF-16LE, in guarded
 * memory (sodium_free it). -1 when the password is not valid UTF-8. */
static int ad_unicode_pwd(const uint8_t *pw, size_t len, struct berval *ret)
{
	/* At most two UTF-16 units per byte, and the two quotes. */
	size_t cap = (len + 2) * 4;
	uint8_t *out = sodium_malloc(cap);
	if (out == NULL)
		abort();
	size_t o = 0, i = 0;
	out[o++] = '"', out[o++] = 0;
	while (i < len) {
		long cp = utf8_next(pw, len, &i);
		if (cp < 0) {
			sodium_free(out);
			return -1;
		}
		if (cp >= 0x10000) {
			cp -= 0x10000;
			unsigned hi = 0xd800 + (unsigned)(cp >> 10), lo = 0xdc00 + (unsigned)(cp & 0x3ff);
			out[o++] = (uint8_t)(hi & 0xff), out[o++] = (uint8_t)(hi >> 8);
			out[o++] = (uint8_t)(lo & 0xff), out[o++] = (uint8_t)(lo >> 8);
		} else {
			out[o++] = (uint8_t)(cp & 0xff), out[o++] = (uint8_t)(cp >> 8);
		}
	}
	out[o++] = '"', out[o++] = 0;
	ret->bv_val = (char *)out;
	ret->bv_len = o;
	return 0;
}

static bool utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;
	while (i < len)
		if (utf8_next(s, len, &i) < 0)
			return false;
	return true;
}

/* ---- the request ------------------------------------------------------------------------ */

typedef struct pw_result {
	const char *code;              /* NULL: ok */
	int ldap_code;                 /* the server's result code, 0 when it did not answer */
	char *message;                 /* malloc'd */
	bool retryable;
} pw_result_t;

static void result_set(pw_result_t *r, const char *code, int ldap_code, bool retryable, char *message)
{
	r->code = code;
	r->ldap_code = ldap_code;
	r->retryable = retryable;
	free(r->message);
	r->message = message;
}

/* Waits for msgid's result and reads its code and text into r (ok when
 * success). what names the operation for the message. */
static void wait_result(ldapagent_t *la, LDAP *ld, int msgid, const char *what, const char *dn, pw_result_t *r)
{
	static char namebuf[32];
	struct timeval tv = { la->cfg.ldap.timeout_ms / 1000, (la->cfg.ldap.timeout_ms % 1000) * 1000 };
	LDAPMessage *res = NULL;
	int rc = ldap_result(ld, msgid, LDAP_MSG_ALL, &tv, &res);
	if (rc == 0) {
		ldap_abandon_ext(ld, msgid, NULL, NULL);
		result_set(r, "timeout", 0, true,
		    loom_sprintf("%s of '%s' on '%s': no answer in %lld ms (ldap.timeout); the password may or may not "
				 "have been set",
			what, dn, la->cfg.ldap.uri.text, la->cfg.ldap.timeout_ms));
		return;
	}
	if (rc < 0) {
		int e = LDAP_SERVER_DOWN;
		ldap_get_option(ld, LDAP_OPT_RESULT_CODE, &e);
		char *t = ml_ld_error(ld, e);
		result_set(r, "server-down", e, true,
		    loom_sprintf("%s of '%s': lost the connection to '%s': %s", what, dn, la->cfg.ldap.uri.text, t));
		free(t);
		return;
	}
	int err = LDAP_OTHER;
	char *text = NULL, *matched = NULL;
	if (ldap_parse_result(ld, res, &err, &matched, &text, NULL, NULL, 1) != LDAP_SUCCESS) {
		result_set(r, "protocol-error", 0, true,
		    loom_sprintf("%s of '%s': cannot read the answer of '%s'", what, dn, la->cfg.ldap.uri.text));
		return;
	}
	if (err == LDAP_SUCCESS) {
		result_set(r, NULL, 0, false, NULL);
	} else {
		result_set(r, ml_result_name(err, namebuf), err, ml_result_retryable(err),
		    loom_sprintf("%s of '%s' refused by '%s': %s (%d)%s%s", what, dn, la->cfg.ldap.uri.text,
			ldap_err2string(err), err, text && text[0] ? ": " : "", text && text[0] ? text : ""));
	}
	ldap_memfree(text);
	ldap_memfree(matched);
}

/* The DN of the entry whose anchor is anchor, searched in the bases (NULL
 * with r set when there is none or the search failed). */
static char *find_by_anchor(ldapagent_t *la, LDAP *ld, const char *anchor, pw_result_t *r)
{
	bool ad = la->cfg.ldap.directory == LOOM_LDAP_AD;
	char *filter;
	if (la->dn_anchor)
		return loom_strdup(anchor);
	if (strcasecmp(la->cfg.anchor, ad ? "objectGUID" : "entryUUID") == 0) {
		uint8_t u[16];
		if (uuid_parse(anchor, ad, u) < 0) {
			result_set(r, "bad-anchor", 0, false,
			    loom_sprintf("anchor '%s' is not a UUID (%s is written 8-4-4-4-12 hex digits)", anchor,
				la->cfg.anchor));
			return NULL;
		}
		if (ad) {
			char esc[16 * 3 + 1];
			for (int i = 0; i < 16; i++)
				snprintf(esc + i * 3, 4, "\\%02x", u[i]);
			filter = loom_sprintf("(objectGUID=%s)", esc);
		} else {
			filter = loom_sprintf("(entryUUID=%s)", anchor);
		}
	} else {
		struct berval in = { strlen(anchor), (char *)anchor }, out = { 0, NULL };
		if (ldap_bv2escaped_filter_value(&in, &out) != 0)
			abort();
		filter = loom_sprintf("(%s=%s)", la->cfg.anchor, out.bv_val);
		ber_memfree(out.bv_val);
	}
	char *what = loom_sprintf("%s '%s'", la->cfg.anchor, anchor);
	char *dn = NULL;
	ml_find_fail_t f;
	if (ml_find_entry(la, ld, filter, what, &dn, &f) == 0)
		result_set(r, strcmp(f.code, "ambiguous") == 0 ? "ambiguous-anchor" : f.code, f.rc, f.retryable, f.message);
	free(what);
	free(filter);
	return dn;
}

/* One connection is kept for passwords between requests: connecting and
 * binding cost more than the operation itself (bench/pcns: password sync
 * sends one request per change). It is its own connection, so a running
 * import or export is untouched; it is closed after PW_IDLE_MS unused,
 * when it breaks, and when the agent stops. */
#define PW_IDLE_MS 60000
static ml_conn_t pw_conn;           /* pw_conn.ld NULL: none open */
static int64_t pw_used_ms;          /* monotonic: last request on it */

void ml_password_stop(void)
{
	ml_conn_close(&pw_conn);
}

/* The operation on c (r says how it went). */
static void set_on_conn(ldapagent_t *la, ml_conn_t *c, const Loom__SetPasswordRequest *rq, const uint8_t *pw,
    size_t len, char **ret_dn, pw_result_t *r)
{
	const loom_agentcfg_ldap_t *lc = &la->cfg.ldap;
	bool ad = lc->directory == LOOM_LDAP_AD;
	char *dn = NULL;
	if (rq->anchor[0]) {
		dn = find_by_anchor(la, c->ld, rq->anchor, r);
		if (dn == NULL)
			goto out;
		if (rq->dn[0] && !ml_dn_in_base(rq->dn, dn, LOOM_LDAP_SCOPE_BASE)) {
			result_set(r, "anchor-dn-mismatch", 0, false,
			    loom_sprintf("%s '%s' is the entry '%s', not '%s' (renamed since?): nothing was changed",
				la->cfg.anchor, rq->anchor, dn, rq->dn));
			goto out;
		}
	} else {
		dn = loom_strdup(rq->dn);
	}
	int msgid = -1, rc;
	if (ad) {
		struct berval v;
		if (ad_unicode_pwd(pw, len, &v) < 0)
			abort(); /* checked valid UTF-8 before */
		struct berval *vals[] = { &v, NULL };
		LDAPMod mod = { .mod_op = LDAP_MOD_REPLACE | LDAP_MOD_BVALUES, .mod_type = "unicodePwd" };
		mod.mod_bvalues = vals;
		LDAPMod *mods[] = { &mod, NULL };
		rc = ldap_modify_ext(c->ld, dn, mods, NULL, NULL, &msgid);
		sodium_free(v.bv_val);
	} else {
		struct berval user = { strlen(dn), dn }, np = { len, (char *)pw };
		rc = ldap_passwd(c->ld, &user, NULL, &np, NULL, NULL, &msgid);
	}
	const char *what = ad ? "setting unicodePwd" : "Password Modify (RFC 3062)";
	if (rc != LDAP_SUCCESS) {
		char *t = ml_ld_error(c->ld, rc);
		result_set(r, "server-down", rc, true,
		    loom_sprintf("%s of '%s': cannot send it to '%s': %s", what, dn, lc->uri.text, t));
		free(t);
		goto out;
	}
	wait_result(la, c->ld, msgid, what, dn, r);
out:
	*ret_dn = dn;
}

/* Sets the password on the directory (r says how it went). */
static void set_on_directory(ldapagent_t *la, const Loom__SetPasswordRequest *rq, const uint8_t *pw, size_t len,
    char **ret_dn, pw_result_t *r)
{
	const loom_agentcfg_ldap_t *lc = &la->cfg.ldap;
	bool ad = lc->directory == LOOM_LDAP_AD;
	bool tls = lc->starttls || strncasecmp(lc->uri.text, "ldaps://", 8) == 0;
	bool local = strncasecmp(lc->uri.text, "ldapi://", 8) == 0;
	if (ad && !tls) {
		result_set(r, "insecure-connection", 0, false,
		    loom_sprintf("Active Directory takes a password (unicodePwd) only over an encrypted connection, and "
				 "agent '%s' connects to '%s' in clear: use an ldaps:// uri or starttls: true",
			la->name, lc->uri.text));
		return;
	}
	int64_t now = loom_mono_ms();
	if (pw_conn.ld && now - pw_used_ms > PW_IDLE_MS)
		ml_conn_close(&pw_conn);
	/* a kept connection may have been closed by the server meanwhile:
	 * when it fails as a connection, the request goes once more on a new one */
	for (int attempt = 0; attempt < 2; attempt++) {
		bool reused = pw_conn.ld != NULL;
		if (!reused) {
			char *err = NULL;
			memset(&pw_conn, 0, sizeof pw_conn);
			if (ml_conn_open(la, &pw_conn, &err) < 0) {
				result_set(r, "cannot-connect", 0, true, err);
				return;
			}
			if (!tls && !local && !ad)
				loom_warning("setting passwords over an unencrypted connection agent=%s uri=%s (use ldaps:// or "
					     "starttls: true)",
				    la->name, lc->uri.text);
		}
		free(*ret_dn);
		*ret_dn = NULL;
		set_on_conn(la, &pw_conn, rq, pw, len, ret_dn, r);
		pw_used_ms = loom_mono_ms();
		bool broken = r->code && (strcmp(r->code, "server-down") == 0 || strcmp(r->code, "timeout") == 0 ||
			      strcmp(r->code, "protocol-error") == 0 || r->ldap_code == LDAP_SERVER_DOWN);
		if (!broken)
			return;
		ml_conn_close(&pw_conn);
		if (!reused || strcmp(r->code, "timeout") == 0)
			return; /* a new connection failed, or the server is slow: the caller retries */
		result_set(r, NULL, 0, false, NULL);
	}
}

void ml_set_password(ldapagent_t *la, Loom__Envelope *env, const Loom__SetPasswordRequest *rq)
{
	pw_result_t r = { NULL, 0, NULL, false };
	char *dn = NULL;
	uint8_t *pw = NULL;
	size_t len = 0;
	const char *target = rq->anchor[0] ? rq->anchor : rq->dn;
	const loom_keypair_t *kp = loom_daemon_keypair(la->d);
	if (rq->agent[0] && strcmp(rq->agent, la->name) != 0) {
		result_set(&r, "bad-request", 0, false,
		    loom_sprintf("the request is for agent '%s', and this is agent '%s'", rq->agent, la->name));
	} else if (rq->dn[0] == '\0' && rq->anchor[0] == '\0') {
		result_set(&r, "bad-request", 0, false, loom_strdup("the request names no account: give a DN or an anchor"));
	} else if (rq->password == NULL || rq->password->box.len == 0) {
		result_set(&r, "bad-request", 0, false, loom_strdup("the request carries no sealed password"));
	} else if (kp == NULL) {
		result_set(&r, "no-key", 0, false,
		    loom_sprintf("this agent has no key pair to open sealed passwords with: create %s/%s.key (loomctl keys "
				 "gen %s) and restart it",
			loom_daemon_config(la->d)->bus.keys_dir, loom_daemon_service(la->d), loom_daemon_service(la->d)));
	} else if (loom_unseal(kp, rq->password, &pw, &len) < 0) {
		result_set(&r, "cannot-open", 0, false,
		    loom_sprintf("the password does not open with this agent's key '%s' (sealed to '%s'): seal it to "
				 "%s.pub of this deployment",
			loom_daemon_service(la->d), rq->password->key_id, loom_daemon_service(la->d)));
	} else if (len == 0) {
		result_set(&r, "bad-password", 0, false, loom_strdup("the password is empty"));
	} else if (!utf8_valid(pw, len)) {
		result_set(&r, "bad-password", 0, false, loom_strdup("the password is not valid UTF-8 text (or holds a NUL)"));
	} else {
		set_on_directory(la, rq, pw, len, &dn, &r);
	}
	loom_unsealed_free(&pw, len);
	if (r.code == NULL)
		loom_info("password set agent=%s dn=%s from=%s", la->name, dn, env->from);
	else
		loom_warning("password not set agent=%s target=%s from=%s code=%s message=%s", la->name,
		    dn ? dn : target, env->from, r.code, loom_log_kv_quote(r.message));
	loom_agent_password_reply(la->d, env, rq, dn ? dn : rq->dn, r.code, r.ldap_code, r.message, r.retryable);
	free(r.message);
	free(dn);
}
