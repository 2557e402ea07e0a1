/* pcns_proto.c - the hooks' formats (pure functions, tests/unit/test_pcns.c).
 *
 * Samba's `samba-tool user syncpasswords --script` writes one object as
 * LDIF to the script's standard input; slapd's sock overlay writes each
 * request as "KEYWORD\nname: value\n...\n\n". Both are "name: value" /
 * "name:: base64" lines with continuation lines starting with a space, so
 * one parser reads both. Everything decoded goes to guarded memory
 * (sodium_malloc), wiped when released: these texts carry passwords.
 */
#include "pcns.h"
#include "loom_alloc.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int pcns_kv_parse(char *text, size_t len, pcns_kvs_t *ret, const char **error_r)
{
	memset(ret, 0, sizeof *ret);
	/* unfold in place: "\n " (or "\r\n ") joins two lines; \r\n becomes \n */
	size_t w = 0;
	for (size_t r = 0; r < len; r++) {
		if (text[r] == '\r' && r + 1 < len && text[r + 1] == '\n')
			continue;
		if (text[r] == '\n' && r + 1 < len && text[r + 1] == ' ') {
			r++; /* skip the newline and the one space */
			continue;
		}
		text[w++] = text[r];
	}
	size_t n = w;
	ret->scratch_len = n + 1;
	ret->scratch = sodium_malloc(ret->scratch_len);
	if (ret->scratch == NULL)
		abort();
	size_t used = 0;
	size_t cap = 0;
	bool first = true;
	for (size_t pos = 0; pos < n;) {
		size_t end = pos;
		while (end < n && text[end] != '\n')
			end++;
		char *line = text + pos;
		size_t llen = end - pos;
		if (end < n)
			text[end] = '\0';
		pos = end + 1;
		if (llen == 0 || line[0] == '#')
			continue;
		if (llen >= 6 && strncmp(line, "DEBUG:", 6) == 0)
			continue;
		char *colon = memchr(line, ':', llen);
		const char *val = "";
		size_t vlen = 0;
		bool b64 = false;
		if (colon == NULL) {
			/* "-" separates mod-specs; a bare word starts a sock message */
			if (!(llen == 1 && line[0] == '-') && !first) {
				*error_r = "a line without ':' in the middle of the text";
				pcns_kvs_release(ret);
				return -1;
			}
			line[llen] = '\0';
		} else {
			*colon = '\0';
			val = colon + 1;
			if (*val == ':') {
				b64 = true;
				val++;
			}
			while (*val == ' ')
				val++;
			vlen = (size_t)(line + llen - val);
		}
		first = false;
		char *dst = ret->scratch + used;
		size_t dlen = 0;
		if (b64) {
			while (vlen && (val[vlen - 1] == ' ' || val[vlen - 1] == '\t'))
				vlen--;
			if (sodium_base642bin((unsigned char *)dst, ret->scratch_len - used - 1, val, vlen, NULL, &dlen, NULL,
				sodium_base64_VARIANT_ORIGINAL) != 0) {
				*error_r = "a base64 value does not decode";
				pcns_kvs_release(ret);
				return -1;
			}
		} else {
			memcpy(dst, val, vlen);
			dlen = vlen;
		}
		dst[dlen] = '\0';
		used += dlen + 1;
		if (ret->n == cap) {
			cap = cap ? cap * 2 : 16;
			ret->v = loom_realloc(ret->v, cap * sizeof *ret->v);
		}
		ret->v[ret->n].name = line;
		ret->v[ret->n].val = dst;
		ret->v[ret->n].vlen = dlen;
		ret->n++;
	}
	return 0;
}

void pcns_kvs_release(pcns_kvs_t *kvs)
{
	if (kvs->scratch)
		sodium_free(kvs->scratch); /* zeroes it */
	free(kvs->v);
	memset(kvs, 0, sizeof *kvs);
}

const pcns_kv_t *pcns_kv_get(const pcns_kvs_t *kvs, const char *name)
{
	for (size_t i = 0; i < kvs->n; i++)
		if (strcasecmp(kvs->v[i].name, name) == 0)
			return &kvs->v[i];
	return NULL;
}

/* One BER tag-length: 0 with the content's bounds, -1 when malformed. */
static int ber_tl(const uint8_t *p, size_t len, size_t *pos, uint8_t *ret_tag, size_t *ret_len)
{
	if (*pos + 2 > len)
		return -1;
	*ret_tag = p[(*pos)++];
	size_t l = p[(*pos)++];
	if (l & 0x80) {
		size_t nb = l & 0x7f;
		if (nb == 0 || nb > 4 || *pos + nb > len)
			return -1;
		l = 0;
		for (size_t i = 0; i < nb; i++)
			l = (l << 8) | p[(*pos)++];
	}
	if (l > len - *pos)
		return -1;
	*ret_len = l;
	return 0;
}

int pcns_passwd_modify_parse(const uint8_t *ber, size_t len, pcns_passwd_modify_t *ret)
{
	memset(ret, 0, sizeof *ret);
	if (len == 0)
		return 0; /* no value at all: the bound user, a generated password */
	size_t pos = 0, seqlen;
	uint8_t tag;
	if (ber_tl(ber, len, &pos, &tag, &seqlen) < 0 || tag != 0x30)
		return -1;
	size_t end = pos + seqlen;
	while (pos < end) {
		size_t l;
		if (ber_tl(ber, end, &pos, &tag, &l) < 0)
			return -1;
		if (tag == 0x80) {
			ret->user = ber + pos;
			ret->user_len = l;
			ret->have_user = true;
		} else if (tag == 0x82) {
			ret->newpw = ber + pos;
			ret->newpw_len = l;
			ret->have_new = true;
		} else if (tag != 0x81) {
			return -1;
		}
		pos += l;
	}
	return 0;
}

bool pcns_is_hashed(const char *value, size_t len)
{
	if (len < 3 || value[0] != '{')
		return false;
	size_t i = 1;
	while (i < len && (isalnum((unsigned char)value[i]) || value[i] == '-' || value[i] == '.' || value[i] == '_'))
		i++;
	return i > 1 && i < len && value[i] == '}';
}

void pcns_change_id_derive(uint8_t id[PCNS_ID_LEN], const char *const *parts, size_t nparts)
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, (const unsigned char *)"loom-pcns-change", 16, PCNS_ID_LEN);
	for (size_t i = 0; i < nparts; i++) {
		const char *p = parts[i] ? parts[i] : "";
		crypto_generichash_update(&st, (const unsigned char *)p, strlen(p) + 1); /* with its NUL: unambiguous */
	}
	crypto_generichash_final(&st, id, PCNS_ID_LEN);
}

char *pcns_spool_name(int64_t changed_at, const uint8_t id[PCNS_ID_LEN])
{
	char hex[2 * PCNS_ID_LEN + 1];
	sodium_bin2hex(hex, sizeof hex, id, PCNS_ID_LEN);
	return loom_sprintf("%016llx-%s.chg", (unsigned long long)changed_at, hex);
}
