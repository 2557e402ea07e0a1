/* ma_ldap_usnmark.c - pure code of Active Directory's uSNChanged delta
 * (unit-tested): the watermark's per-base cookie that holds it, and which
 * DirSync refusals mean "use uSNChanged instead".
 *
 * The cookie is text, so that it can never be taken for a DirSync cookie
 * (binary, starting "MSDS"):
 *   "loom-usn-1 <invocationId: 32 hex digits> <highestCommittedUSN>"
 * The invocationId names the DC's database: USNs are comparable only
 * within one (a DC restored from a backup gets a new one).
 */
#include "ma_ldap.h"
#include "loom_alloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USN_PREFIX "loom-usn-1 "

void ml_usn_cookie_encode(const ml_usn_mark_t *m, struct berval *ret)
{
	char hex[33];
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", m->invocation[i]);
	ret->bv_val = loom_sprintf(USN_PREFIX "%s %llu", hex, (unsigned long long)m->usn);
	ret->bv_len = strlen(ret->bv_val);
}

int ml_usn_cookie_decode(const struct berval *c, ml_usn_mark_t *ret, const char **error_r)
{
	size_t pl = strlen(USN_PREFIX);
	if (c->bv_val == NULL || c->bv_len < pl || memcmp(c->bv_val, USN_PREFIX, pl) != 0)
		return 0;
	/* prefix, 32 hex, a blank, 1 to 20 digits */
	size_t n = c->bv_len - pl;
	const char *p = c->bv_val + pl;
	if (n < 34 || n > 53 || p[32] != ' ') {
		*error_r = "a uSNChanged watermark of the wrong shape";
		return -1;
	}
	ml_usn_mark_t m;
	for (int i = 0; i < 16; i++) {
		unsigned v;
		char h[3] = { p[2 * i], p[2 * i + 1], '\0' };
		if (strspn(h, "0123456789abcdef") != 2 || sscanf(h, "%2x", &v) != 1) {
			*error_r = "a uSNChanged watermark whose invocationId is not hex";
			return -1;
		}
		m.invocation[i] = (uint8_t)v;
	}
	char digits[24];
	size_t dl = n - 33;
	memcpy(digits, p + 33, dl);
	digits[dl] = '\0';
	if (strspn(digits, "0123456789") != dl) {
		*error_r = "a uSNChanged watermark whose USN is not a number";
		return -1;
	}
	errno = 0;
	unsigned long long u = strtoull(digits, NULL, 10);
	if (errno) {
		*error_r = "a uSNChanged watermark whose USN is out of range";
		return -1;
	}
	m.usn = u;
	*ret = m;
	return 1;
}

bool ml_dirsync_refused(int code)
{
	switch (code) {
	case LDAP_INSUFFICIENT_ACCESS:          /* no Replicating Directory Changes right */
	case LDAP_UNAVAILABLE_CRITICAL_EXTENSION: /* no DirSync on this server */
	case LDAP_UNWILLING_TO_PERFORM:         /* DirSync turned off, or a cookie it will not take */
	case LDAP_OPERATIONS_ERROR:             /* AD: a cookie from another DC or malformed */
	case LDAP_PROTOCOL_ERROR:
		return true;
	default:
		return false;
	}
}
