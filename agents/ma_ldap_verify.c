/* ma_ldap_verify.c - VerifyPasswordRequest: does the directory take this
 * password for this account? (loom-workflow's password authentication
 * challenge, docs/sspr.md). The account is found by
 * password_sync.account_attribute under the agent's bases on a connection
 * bound as the agent, then that connection binds again as the account.
 * The connection is closed after each request: it ends bound as the user.
 * Synchronous, bounded by ldap.timeout, like ma_ldap_passwd.c.
 */
#include "ma_ldap.h"
#include "loom_alloc.h"
#include "loom_envelope.h"
#include "loom_keys.h"
#include "loom_log.h"
#include "sspr.pb-c.h"

#include <stdlib.h>
#include <string.h>

static void answer(ldapagent_t *la, Loom__Envelope *env, const char *code, const char *message)
{
	Loom__VerifyPasswordReply rep = LOOM__VERIFY_PASSWORD_REPLY__INIT;
	rep.ok = code == NULL;
	rep.code = (char *)(code ? code : "");
	rep.message = (char *)(message ? message : "");
	const char *err;
	if (loom_bus_reply(loom_daemon_bus(la->d), env, &rep.base, &err) < 0)
		loom_warning("cannot answer a password check to=%s: %s", env->from, err);
}

/* The DN of account (malloc'd), or NULL with *ret_code and *ret_msg. */
static char *find_account(ldapagent_t *la, LDAP *ld, const char *account, const char **ret_code, char **ret_msg)
{
	const char *attr = la->cfg.password_sync.account_attribute;
	struct berval in = { strlen(account), (char *)account }, out = { 0, NULL };
	if (ldap_bv2escaped_filter_value(&in, &out) != 0)
		abort();
	char *filter = loom_sprintf("(%s=%s)", attr, out.bv_val);
	ber_memfree(out.bv_val);
	char *what = loom_sprintf("%s '%s'", attr, account);
	char *dn = NULL;
	ml_find_fail_t f;
	if (ml_find_entry(la, ld, filter, what, &dn, &f) == 0) {
		*ret_code = strcmp(f.code, "ambiguous") == 0 ? "ambiguous-account" : f.code;
		*ret_msg = f.message;
	}
	free(what);
	free(filter);
	return dn;
}

void ml_verify_password(ldapagent_t *la, Loom__Envelope *env, const Loom__VerifyPasswordRequest *rq)
{
	const char *code = NULL;
	char *msg = NULL, *dn = NULL;
	uint8_t *pw = NULL;
	size_t len = 0;
	const loom_keypair_t *kp = loom_daemon_keypair(la->d);
	ml_conn_t c;
	memset(&c, 0, sizeof c);
	if (la->cfg.password_sync.account_attribute == NULL || la->cfg.password_sync.account_attribute[0] == '\0') {
		code = "not-configured";
		msg = loom_sprintf("agent '%s' has no password_sync.account_attribute to find accounts by", la->name);
	} else if (rq->account[0] == '\0' || rq->password == NULL) {
		code = "bad-request";
		msg = loom_strdup("the request needs an account and a sealed password");
	} else if (kp == NULL || loom_unseal(kp, rq->password, &pw, &len) < 0) {
		code = "cannot-open";
		msg = loom_sprintf("the password does not open with this agent's key '%s'", loom_daemon_service(la->d));
	} else if (len == 0) {
		code = "bad-password";
		msg = loom_strdup("the password is empty");
	} else if (ml_conn_open(la, &c, &msg) < 0) {
		code = "cannot-connect";
	} else if ((dn = find_account(la, c.ld, rq->account, &code, &msg)) != NULL) {
		struct berval cred = { len, (char *)pw };
		int rc = ldap_sasl_bind_s(c.ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
		if (rc != LDAP_SUCCESS) {
			code = rc == LDAP_INVALID_CREDENTIALS ? "bad-password" : "bind-failed";
			msg = loom_sprintf("bind as '%s' refused by '%s': %s (%d)", dn, la->cfg.ldap.uri.text,
			    ldap_err2string(rc), rc);
		}
	}
	if (c.ld)
		ml_conn_close(&c);
	loom_unsealed_free(&pw, len);
	if (code == NULL)
		loom_info("password checked agent=%s dn=%s from=%s result=ok", la->name, dn, env->from);
	else
		loom_warning("password checked agent=%s account=%s from=%s code=%s message=%s", la->name,
		    loom_log_kv_quote(rq->account), env->from, code, loom_log_kv_quote(msg));
	answer(la, env, code, msg);
	free(msg);
	free(dn);
}
