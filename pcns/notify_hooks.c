/* notify_hooks.c - where loom-pcns-notify takes changes from (docs/pcns.md).
 *
 * Samba AD DC: `samba-tool user syncpasswords --script="loom-pcns-notify
 * --samba-script"` runs this program once per changed account with the
 * account's LDIF on standard input (virtualClearTextUTF8:: the password,
 * with --decrypt-samba-gpg). It seals the password to each target, writes
 * the spool file, and prints "DONE-EXIT: ..."; when it cannot spool it
 * prints nothing and exits 1, which stops syncpasswords with its cache
 * where it was, so the change is offered again at its next start.
 *
 * OpenLDAP: slapd's sock overlay (sockops modify extended, sockresps result,
 * extensions binddn connid) connects to the daemon's socket for every
 * modify and extended operation and waits for CONTINUE, which is sent at
 * once: the directory is never held up. A Password Modify (RFC 3062) with a
 * new password, or a modify that replaces or adds a userPassword value that
 * is not a {SCHEME}hash, is sealed at once and held, keyed by connid and
 * msgid, until slapd's RESULT for the same operation says code 0; only
 * then is it spooled. A refused change is dropped; so is one whose RESULT
 * does not come within slapd.result_timeout. Password Modify's own
 * follow-up modify (same connid and msgid, the hash only) is ignored.
 *
 * Pending slapd change (this block and the code change together):
 *   (request) --not a password change, or by an ignore_binddn--> CONTINUE only
 *   (request) --password change--> sealed, held; CONTINUE
 *   held --RESULT code 0--> spooled (the daemon's delivery takes it)
 *   held --RESULT code != 0--> dropped (slapd refused the change)
 *   held --no RESULT in result_timeout--> dropped, warning
 *   held --RESULT code 0, groups wanted--> GROUPING: a search for the
 *             account's groups is sent on the notifier's own connection
 *             to the directory (slapd.groups, asynchronous: the loop and
 *             so slapd's CONTINUEs never wait for it)
 *   GROUPING --search done--> spooled with the groups (targets whose
 *             include/exclude groups refuse it are logged "excluded")
 *   GROUPING --search or connection failed--> searched again at the next
 *             tick (a new connection when needed)
 *   GROUPING --no groups in slapd.groups.timeout--> dropped, warning (never
 *             sent to a target whose groups might exclude it)
 * "Groups wanted": slapd.groups.uri is set and a target names include or
 * exclude groups. The groups are those of the source directory at the time
 * of the change, as pcnscfg's are evaluated on the domain controller.
 */
#define _GNU_SOURCE /* accept4 */
#include "notify.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_file.h"
#include "loom_log.h"
#include "loom_map.h"

#include <errno.h>
#include <fcntl.h>
#include <ldap.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define INPUT_MAX (1024 * 1024)    /* bytes of one hook input */
#define PW_MAX 4096                /* bytes of a password */

/* ---- shared ------------------------------------------------------------------------------- */

char *notify_spool_dir(const pcns_notify_cfg_t *cfg, const loom_deploy_t *deploy)
{
	return cfg->spool ? loom_strdup(cfg->spool) : loom_sprintf("%s/pcns-spool", deploy->state_dir);
}

static void print_diags(const char *process, loom_cfg_diags_t *diags)
{
	for (size_t i = 0; i < diags->n; i++)
		fprintf(stderr, "%s: %s\n", process, diags->v[i].text);
	loom_cfg_diags_release(diags);
}

int notify_load(const char *process, const char *path, pcns_notify_cfg_t *cfg, pcns_targets_t *targets)
{
	loom_cfg_diags_t diags;
	memset(&diags, 0, sizeof diags);
	if (pcns_notify_cfg_load(path, cfg, &diags) < 0) {
		print_diags(process, &diags);
		return -1;
	}
	loom_cfg_diags_release(&diags);
	if (pcns_targets_load(cfg->targets, targets, &diags) < 0) {
		print_diags(process, &diags);
		return -1;
	}
	loom_cfg_diags_release(&diags);
	return 0;
}

int notify_spool_pack(const pcns_targets_t *t, const notify_change_t *c, char **ret_name, uint8_t **ret_data,
    size_t *ret_len)
{
	const pcns_target_t *tv = t->targets.v;
	Loom__PcnsSealedFor *boxes = loom_calloc(t->targets.n ? t->targets.n : 1, sizeof *boxes);
	Loom__PcnsSealedFor **bp = loom_calloc(t->targets.n ? t->targets.n : 1, sizeof *bp);
	Loom__Sealed *sealed = loom_calloc(t->targets.n ? t->targets.n : 1, sizeof *sealed);
	size_t n = 0;
	for (size_t i = 0; i < t->targets.n; i++) {
		if (!pcns_target_accepts(&tv[i], c->groups, c->ngroups))
			continue;
		loom__pcns_sealed_for__init(&boxes[n]);
		loom__sealed__init(&sealed[n]);
		boxes[n].target = tv[i].name;
		loom_seal(tv[i].pub, tv[i].name, c->password, c->password_len, &sealed[n]);
		boxes[n].password = &sealed[n];
		bp[n] = &boxes[n];
		n++;
	}
	if (n) {
		Loom__PcnsSpoolEntry e = LOOM__PCNS_SPOOL_ENTRY__INIT;
		e.change_id.data = (uint8_t *)c->id;
		e.change_id.len = PCNS_ID_LEN;
		e.account = (char *)c->account;
		e.dn = (char *)c->dn;
		e.anchor = (char *)c->anchor;
		e.changed_at = loom_now_us();
		e.hook = (char *)c->hook;
		e.boxes = bp;
		e.n_boxes = n;
		e.groups = c->groups;
		e.n_groups = c->ngroups;
		size_t len = protobuf_c_message_get_packed_size(&e.base);
		uint8_t *buf = loom_malloc(len ? len : 1);
		protobuf_c_message_pack(&e.base, buf);
		*ret_name = pcns_spool_name(e.changed_at, c->id);
		*ret_data = buf;
		*ret_len = len;
	}
	for (size_t i = 0; i < n; i++)
		loom_sealed_release(&sealed[i]);
	free(sealed);
	free(boxes);
	free(bp);
	return (int)n;
}

int notify_spool_change(const char *spool, const pcns_targets_t *t, const notify_change_t *c, char **ret_name,
    char **ret_error)
{
	char *name = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = notify_spool_pack(t, c, &name, &buf, &len);
	if (rc > 0) {
		(void)mkdir(spool, 0700);
		char *path = loom_sprintf("%s/%s", spool, name);
		if (loom_file_replace(path, buf, len, 0600, ret_error) < 0)
			rc = -1;
		else if (ret_name)
			*ret_name = loom_strdup(name);
		free(path);
	}
	free(name);
	free(buf);
	return rc;
}

/* Reads all of fd into guarded memory (at most INPUT_MAX bytes). */
static char *read_all(int fd, size_t *ret_len, const char **error_r)
{
	char *buf = sodium_malloc(INPUT_MAX + 1);
	if (buf == NULL)
		abort();
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, INPUT_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = strerror(errno);
			sodium_free(buf);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == INPUT_MAX) {
			*error_r = "the input is over 1 MiB";
			sodium_free(buf);
			return NULL;
		}
	}
	buf[len] = '\0';
	*ret_len = len;
	return buf;
}

/* ---- Samba: syncpasswords --script ---------------------------------------------------- */

int notify_samba_script(const loom_deploy_t *deploy, const pcns_notify_cfg_t *cfg, const pcns_targets_t *t)
{
	const char *err;
	size_t len;
	char *in = read_all(STDIN_FILENO, &len, &err);
	if (in == NULL) {
		loom_error("cannot read the account from standard input: %s", err);
		return 1;
	}
	pcns_kvs_t kv;
	if (pcns_kv_parse(in, len, &kv, &err) < 0) {
		/* bad input from Samba: say so, and let syncpasswords go on */
		printf("DONE-EXIT: loom-pcns-notify: unreadable LDIF (%s): skipped\n", err);
		fflush(stdout);
		loom_error("cannot read the account's LDIF: %s", err);
		sodium_free(in);
		return 0;
	}
	const pcns_kv_t *dn = pcns_kv_get(&kv, "dn");
	const pcns_kv_t *guid = pcns_kv_get(&kv, "objectGUID");
	const pcns_kv_t *sam = pcns_kv_get(&kv, "sAMAccountName");
	const pcns_kv_t *pw = pcns_kv_get(&kv, "virtualClearTextUTF8");
	const pcns_kv_t *deleted = pcns_kv_get(&kv, "isDeleted");
	const pcns_kv_t *last = pcns_kv_get(&kv, "pwdLastSet");
	const pcns_kv_t *kvno = pcns_kv_get(&kv, "msDS-KeyVersionNumber");
	const char *account = sam ? sam->val : "";
	int status = 0;
	if (deleted && strcasecmp(deleted->val, "TRUE") == 0) {
		printf("DONE-EXIT: %s is deleted: nothing to send\n", account);
		goto out;
	}
	if (pw == NULL || pw->vlen == 0) {
		/* syncpasswords also calls for changes that are not passwords
		 * (userAccountControl, a rename), and without
		 * "password hash gpg key ids" there is no clear text at all */
		printf("DONE-EXIT: no clear-text password for %s: skipped\n", account);
		fflush(stdout);
		loom_debug("no clear-text password for account=%s: skipped", loom_log_kv_quote(account));
		goto out;
	}
	if (pw->vlen > PW_MAX) {
		printf("DONE-EXIT: the password of %s is too long: skipped\n", account);
		fflush(stdout);
		loom_error("the password of account=%s is over %d bytes: skipped", loom_log_kv_quote(account), PW_MAX);
		goto out;
	}
	notify_change_t c;
	memset(&c, 0, sizeof c);
	bool random_id = false;
	if (last || kvno) {
		/* one id per password version: the same change offered twice is one change */
		const char *parts[3] = { guid ? guid->val : account, last ? last->val : "", kvno ? kvno->val : "" };
		pcns_change_id_derive(c.id, parts, 3);
	} else {
		randombytes_buf(c.id, sizeof c.id);
		random_id = true;
	}
	c.account = account;
	c.dn = dn ? dn->val : "";
	c.anchor = guid ? guid->val : "";
	c.hook = "samba";
	c.groups = loom_calloc(kv.n ? kv.n : 1, sizeof *c.groups);
	for (size_t i = 0; i < kv.n; i++)
		if (strcasecmp(kv.v[i].name, "memberOf") == 0)
			c.groups[c.ngroups++] = (char *)kv.v[i].val;
	c.password = (const uint8_t *)pw->val;
	c.password_len = pw->vlen;
	char *spool = notify_spool_dir(cfg, deploy);
	char *serr = NULL;
	int n = notify_spool_change(spool, t, &c, NULL, &serr);
	char hex[2 * PCNS_ID_LEN + 1];
	sodium_bin2hex(hex, sizeof hex, c.id, PCNS_ID_LEN);
	if (n < 0) {
		loom_error("cannot spool the password change of account=%s: %s", loom_log_kv_quote(account), serr);
		status = 1; /* no DONE-EXIT: syncpasswords stops and offers it again */
	} else if (n == 0) {
		/* syncpasswords reads standard output and error together and wants
		 * DONE-EXIT first: the log lines come after it */
		printf("DONE-EXIT: %s goes to no target\n", account);
		fflush(stdout);
		loom_warning("password change of account=%s goes to no target (none configured, or groups exclude it)",
		    loom_log_kv_quote(account));
	} else {
		printf("DONE-EXIT: %s spooled as %s for %d targets\n", account, hex, n);
		fflush(stdout);
		loom_info("password change spooled change=%s account=%s targets=%d", hex, loom_log_kv_quote(account), n);
	}
	if (random_id)
		loom_warning("syncpasswords gives neither pwdLastSet nor msDS-KeyVersionNumber: a change offered twice "
			     "cannot be recognised (add them to --attributes)");
	free(serr);
	free(spool);
	free(c.groups);
out:
	fflush(stdout);
	pcns_kvs_release(&kv);
	sodium_free(in);
	return status;
}

/* ---- any hook: --submit -------------------------------------------------------------------- */

int notify_submit(const loom_deploy_t *deploy, const pcns_notify_cfg_t *cfg, const pcns_targets_t *t,
    const char *account, const char *dn, const char *anchor, const char *id_hex)
{
	const char *err;
	size_t len;
	char *in = read_all(STDIN_FILENO, &len, &err);
	if (in == NULL) {
		fprintf(stderr, "loom-pcns-notify: cannot read the password from standard input: %s\n", err);
		return 1;
	}
	size_t pl = 0;
	while (pl < len && in[pl] != '\n')
		pl++;
	if (pl && in[pl - 1] == '\r')
		pl--;
	int status = 1;
	notify_change_t c;
	memset(&c, 0, sizeof c);
	if (pl == 0 || pl > PW_MAX) {
		fprintf(stderr, "loom-pcns-notify: the password (first line of standard input) is %s\n",
		    pl ? "over 4096 bytes" : "empty");
		goto out;
	}
	if (id_hex) {
		size_t bl = 0;
		if (sodium_hex2bin(c.id, sizeof c.id, id_hex, strlen(id_hex), NULL, &bl, NULL) != 0 || bl != PCNS_ID_LEN) {
			fprintf(stderr, "loom-pcns-notify: bad --id '%s': expected 32 hex digits\n", id_hex);
			goto out;
		}
	} else {
		randombytes_buf(c.id, sizeof c.id);
	}
	c.account = account ? account : "";
	c.dn = dn ? dn : "";
	c.anchor = anchor ? anchor : "";
	c.hook = "stdin";
	c.password = (const uint8_t *)in;
	c.password_len = pl;
	char *spool = notify_spool_dir(cfg, deploy);
	char *serr = NULL;
	int n = notify_spool_change(spool, t, &c, NULL, &serr);
	char hex[2 * PCNS_ID_LEN + 1];
	sodium_bin2hex(hex, sizeof hex, c.id, PCNS_ID_LEN);
	if (n < 0)
		fprintf(stderr, "loom-pcns-notify: cannot spool the change: %s\n", serr);
	else if (n == 0)
		fprintf(stderr, "loom-pcns-notify: no target takes this change (see loomctl pcns target list)\n");
	else {
		printf("spooled %s for %d targets\n", hex, n);
		status = 0;
	}
	free(serr);
	free(spool);
out:
	sodium_free(in);
	return status;
}

/* ---- OpenLDAP: the sock overlay --------------------------------------------------------- */

typedef struct held {
	char key[64];                  /* "connid/msgid" */
	char *dn;                      /* the account */
	uint8_t *pw;                   /* guarded; wiped as soon as it is spooled or dropped */
	size_t pwlen;
	int64_t at_ms;                 /* monotonic: when the request came */
	int64_t group_ms;              /* monotonic: when slapd's RESULT came (GROUPING) */
	int msgid;                     /* GROUPING: the group search under way, 0 when it must be (re)sent */
	char **groups;                 /* GROUPING: group DNs found so far */
	size_t ngroups;                /* entries in groups */
	char *why;                     /* GROUPING: why the last search failed, or NULL */
} held_t;

typedef struct client {
	int fd;
	char *buf;                     /* guarded: requests carry passwords */
	size_t len, cap;
	struct notify_slapd *s;
} client_t;

struct notify_slapd {
	loom_loop_t *loop;
	const pcns_notify_cfg_t *cfg;
	const char *spool;
	const pcns_targets_t *const *targets;
	notify_spooled_fn *spooled;
	void *arg;
	int fd;                        /* the listening socket */
	char *path;
	loom_map_t *held;              /* key -> held_t, waiting for slapd's RESULT */
	loom_map_t *grouping;          /* key -> held_t, waiting for the account's groups */
	loom_map_t *clients;           /* fd (text) -> client_t */
	LDAP *ld;                      /* the connection groups are read on, or NULL */
	int ldfd;                      /* its socket, watched by the loop (-1: none) */
	bool warned_connid;
	bool warned_groups;            /* said once that targets name groups but none are read */
};

static void groups_clear(held_t *h)
{
	for (size_t i = 0; i < h->ngroups; i++)
		free(h->groups[i]);
	free(h->groups);
	h->groups = NULL;
	h->ngroups = 0;
}

static void held_free(held_t *h)
{
	if (h == NULL)
		return;
	if (h->pw)
		sodium_free(h->pw);
	groups_clear(h);
	free(h->why);
	free(h->dn);
	free(h);
}

static void client_close(client_t *c)
{
	char k[16];
	snprintf(k, sizeof k, "%d", c->fd);
	loom_map_removes(c->s->clients, k);
	loom_loop_remove_fd(c->s->loop, c->fd);
	close(c->fd);
	if (c->buf)
		sodium_free(c->buf);
	free(c);
}

static bool ignored_binddn(notify_slapd_t *s, const char *binddn)
{
	for (size_t i = 0; i < s->cfg->slapd.ignore_binddn.n; i++)
		if (strcasecmp(s->cfg->slapd.ignore_binddn.v[i], binddn) == 0)
			return true;
	return false;
}

/* The account name of a DN: its first RDN's value ("uid=ada,ou=people" -> "ada"). */
static char *rdn_value(const char *dn)
{
	const char *eq = strchr(dn, '=');
	if (eq == NULL)
		return loom_strdup("");
	const char *v = eq + 1;
	size_t n = 0;
	while (v[n] && !(v[n] == ',' && (n == 0 || v[n - 1] != '\\')) && v[n] != '+')
		n++;
	return loom_strndup(v, n);
}

static void hold(notify_slapd_t *s, const char *key, const char *dn, const uint8_t *pw, size_t pwlen)
{
	held_t *h = loom_calloc(1, sizeof *h);
	snprintf(h->key, sizeof h->key, "%s", key);
	h->dn = loom_strdup(dn);
	h->pw = sodium_malloc(pwlen ? pwlen : 1);
	if (h->pw == NULL)
		abort();
	memcpy(h->pw, pw, pwlen);
	h->pwlen = pwlen;
	h->at_ms = loom_mono_ms();
	held_free(loom_map_puts(s->held, h->key, h));
}

static void spool_held(notify_slapd_t *s, held_t *h)
{
	notify_change_t c;
	memset(&c, 0, sizeof c);
	randombytes_buf(c.id, sizeof c.id);
	char *account = rdn_value(h->dn);
	c.account = account;
	c.dn = h->dn;
	c.anchor = "";
	c.hook = "slapd";
	c.password = h->pw;
	c.password_len = h->pwlen;
	c.groups = h->groups;
	c.ngroups = h->ngroups;
	const pcns_targets_t *ts = *s->targets;
	const pcns_target_t *tv = ts->targets.v;
	for (size_t i = 0; i < ts->targets.n; i++) {
		const pcns_target_t *t = &tv[i];
		char *why = t->disabled ? NULL : pcns_target_refusal(t, h->groups, h->ngroups);
		if (why != NULL)
			loom_info("password change excluded dn=%s target=%s groups=%zu reason=%s", loom_log_kv_quote(h->dn),
			    t->name, h->ngroups, loom_log_kv_quote(why));
		free(why);
	}
	char *name = NULL;
	uint8_t *data = NULL;
	size_t len = 0;
	int n = notify_spool_pack(ts, &c, &name, &data, &len);
	if (n == 0) {
		loom_warning("password change of dn=%s goes to no target (none configured, or groups exclude it)",
		    loom_log_kv_quote(h->dn));
	} else {
		/* written (fsync) by the daemon's writer thread: never in slapd's path */
		s->spooled(s->arg, name, data, len, h->dn, loom_mono_ms() - h->at_ms);
	}
	free(account);
}

/* ---- the account's groups (slapd.groups) ---- */

static bool groups_wanted(notify_slapd_t *s)
{
	const char *uri = s->cfg->slapd.groups.uri;
	bool use = pcns_targets_use_groups(*s->targets);
	if (use && (uri == NULL || uri[0] == '\0')) {
		if (!s->warned_groups)
			loom_warning("targets name include or exclude groups but slapd.groups.uri is not set: slapd changes "
				     "carry no groups (an include group takes none of them, an exclude group excludes none)");
		s->warned_groups = true;
		return false;
	}
	return use;
}

/* Drops the connection; every search under way is sent again later. */
static void ld_close(notify_slapd_t *s, const char *why)
{
	if (s->ld == NULL)
		return;
	if (s->ldfd >= 0)
		loom_loop_remove_fd(s->loop, s->ldfd);
	s->ldfd = -1;
	ldap_unbind_ext_s(s->ld, NULL, NULL);
	s->ld = NULL;
	size_t pos = 0;
	const void *k;
	size_t kl;
	void *v;
	while (loom_map_next(s->grouping, &pos, &k, &kl, &v)) {
		held_t *h = v;
		h->msgid = 0;
		groups_clear(h);
		free(h->why);
		h->why = loom_strdup(why);
	}
	loom_warning("group lookup connection closed uri=%s: %s", s->cfg->slapd.groups.uri, why);
}

static int on_ldap(loom_loop_t *loop, void *arg);

/* Connects and binds (the only blocking step: once, to the directory the
 * hook runs beside). 0, or -1 with *ret_error. */
static int ld_open(notify_slapd_t *s, char **ret_error)
{
	const pcns_notify_groups_t *g = &s->cfg->slapd.groups;
	LDAP *ld = NULL;
	int rc = ldap_initialize(&ld, g->uri);
	if (rc != LDAP_SUCCESS) {
		*ret_error = loom_sprintf("bad slapd.groups.uri '%s': %s", g->uri, ldap_err2string(rc));
		return -1;
	}
	int v3 = LDAP_VERSION3;
	struct timeval tv = { 5, 0 };
	ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
	ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
	ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	struct berval cred = { 0, NULL };
	char *pw = NULL;
	if (g->bind_dn && g->bind_dn[0] && g->password_file) {
		int fd = open(g->password_file, O_RDONLY | O_CLOEXEC);
		pw = sodium_malloc(1024);
		if (pw == NULL)
			abort();
		ssize_t n = fd >= 0 ? read(fd, pw, 1023) : -1;
		if (fd >= 0)
			close(fd);
		if (n < 0) {
			*ret_error = loom_sprintf("cannot read slapd.groups.password_file '%s': %s", g->password_file,
			    strerror(errno));
			sodium_free(pw);
			ldap_unbind_ext_s(ld, NULL, NULL);
			return -1;
		}
		size_t len = 0;
		while (len < (size_t)n && pw[len] != '\n' && pw[len] != '\r')
			len++;
		cred.bv_val = pw;
		cred.bv_len = len;
	}
	rc = ldap_sasl_bind_s(ld, g->bind_dn && g->bind_dn[0] ? g->bind_dn : NULL, LDAP_SASL_SIMPLE, &cred, NULL, NULL,
	    NULL);
	if (pw != NULL)
		sodium_free(pw);
	int fd = -1;
	if (rc == LDAP_SUCCESS && ldap_get_option(ld, LDAP_OPT_DESC, &fd) != LDAP_OPT_SUCCESS)
		fd = -1;
	if (rc != LDAP_SUCCESS || fd < 0) {
		*ret_error = loom_sprintf("cannot bind to '%s' as '%s' to read groups: %s", g->uri,
		    g->bind_dn && g->bind_dn[0] ? g->bind_dn : "(anonymous)", ldap_err2string(rc));
		ldap_unbind_ext_s(ld, NULL, NULL);
		return -1;
	}
	s->ld = ld;
	s->ldfd = fd;
	loom_loop_add_fd(s->loop, fd, on_ldap, s);
	loom_info("group lookup connected uri=%s", g->uri);
	return 0;
}

/* slapd.groups.filter with {dn} and {account} replaced, escaped (RFC 4515). */
static char *group_filter(const char *tmpl, const char *dn, const char *account)
{
	struct berval d = { strlen(dn), (char *)dn }, a = { strlen(account), (char *)account }, ed, ea;
	if (ldap_bv2escaped_filter_value(&d, &ed) != 0 || ldap_bv2escaped_filter_value(&a, &ea) != 0)
		abort();
	loom_buf_t b = LOOM_BUF_INIT;
	for (const char *p = tmpl; *p;) {
		if (strncmp(p, "{dn}", 4) == 0) {
			loom_buf_add(&b, ed.bv_val, ed.bv_len);
			p += 4;
		} else if (strncmp(p, "{account}", 9) == 0) {
			loom_buf_add(&b, ea.bv_val, ea.bv_len);
			p += 9;
		} else
			loom_buf_add(&b, p++, 1);
	}
	ber_memfree(ed.bv_val);
	ber_memfree(ea.bv_val);
	return loom_buf_steal(&b);
}

/* Sends h's group search (connecting first when needed). On failure h->why
 * says why and the next tick tries again. */
static void lookup_start(notify_slapd_t *s, held_t *h)
{
	char *err = NULL;
	if (s->ld == NULL && ld_open(s, &err) < 0) {
		free(h->why);
		h->why = err;
		return;
	}
	const pcns_notify_groups_t *g = &s->cfg->slapd.groups;
	char *account = rdn_value(h->dn);
	char *filter = group_filter(g->filter, h->dn, account);
	char *attrs[] = { (char *)LDAP_NO_ATTRS, NULL };
	int msgid = 0;
	int rc = ldap_search_ext(s->ld, g->base, LDAP_SCOPE_SUBTREE, filter, attrs, 0, NULL, NULL, NULL, 0, &msgid);
	free(filter);
	free(account);
	groups_clear(h);
	if (rc != LDAP_SUCCESS) {
		char *why = loom_sprintf("cannot search groups: %s", ldap_err2string(rc));
		ld_close(s, why); /* sets h->why */
		free(why);
		return;
	}
	h->msgid = msgid;
}

static held_t *grouping_by_msgid(notify_slapd_t *s, int msgid)
{
	size_t pos = 0;
	const void *k;
	size_t kl;
	void *v;
	while (loom_map_next(s->grouping, &pos, &k, &kl, &v))
		if (((held_t *)v)->msgid == msgid)
			return v;
	return NULL;
}

static int on_ldap(loom_loop_t *loop, void *arg)
{
	(void)loop;
	notify_slapd_t *s = arg;
	while (s->ld != NULL) {
		LDAPMessage *res = NULL;
		struct timeval zero = { 0, 0 };
		int rc = ldap_result(s->ld, LDAP_RES_ANY, LDAP_MSG_ONE, &zero, &res);
		if (rc == 0)
			break;
		if (rc < 0) {
			int err = LDAP_SERVER_DOWN;
			ldap_get_option(s->ld, LDAP_OPT_RESULT_CODE, &err);
			ld_close(s, ldap_err2string(err));
			break;
		}
		held_t *h = grouping_by_msgid(s, ldap_msgid(res));
		if (h != NULL && rc == LDAP_RES_SEARCH_ENTRY) {
			char *dn = ldap_get_dn(s->ld, res);
			if (dn != NULL) {
				h->groups = loom_realloc(h->groups, (h->ngroups + 1) * sizeof *h->groups);
				h->groups[h->ngroups++] = loom_strdup(dn);
				ldap_memfree(dn);
			}
		} else if (h != NULL && rc == LDAP_RES_SEARCH_RESULT) {
			int code = LDAP_OTHER;
			char *msg = NULL;
			ldap_parse_result(s->ld, res, &code, NULL, &msg, NULL, NULL, 0);
			if (code == LDAP_SUCCESS) {
				loom_map_removes(s->grouping, h->key);
				loom_debug("groups read dn=%s groups=%zu", loom_log_kv_quote(h->dn), h->ngroups);
				spool_held(s, h);
				held_free(h);
			} else {
				h->msgid = 0;
				groups_clear(h);
				free(h->why);
				h->why = loom_sprintf("group search under '%s' failed: %s%s%s", s->cfg->slapd.groups.base,
				    ldap_err2string(code), msg && msg[0] ? ": " : "", msg ? msg : "");
			}
			ldap_memfree(msg);
		}
		ldap_msgfree(res);
	}
	return 0;
}

/* slapd made h's change: spooled now, or once its groups are read. */
static void made(notify_slapd_t *s, held_t *h)
{
	if (!groups_wanted(s)) {
		spool_held(s, h);
		held_free(h);
		return;
	}
	h->group_ms = loom_mono_ms();
	held_free(loom_map_puts(s->grouping, h->key, h));
	lookup_start(s, h);
}

/* Takes out of m, in one pass, every held change waiting longer than
 * timeout_ms (since its RESULT when by_group, else since its request).
 * Returns them NULL-terminated; the caller frees the array. */
static held_t **take_late(loom_map_t *m, bool by_group, long long timeout_ms)
{
	int64_t now = loom_mono_ms();
	size_t pos = 0;
	const void *k;
	size_t kl;
	void *v;
	held_t **late = loom_calloc(loom_map_count(m) + 1, sizeof *late);
	size_t n = 0;
	while (loom_map_next(m, &pos, &k, &kl, &v)) {
		const held_t *h = v;
		if (now - (by_group ? h->group_ms : h->at_ms) > timeout_ms)
			late[n++] = v;
	}
	for (size_t i = 0; i < n; i++)
		loom_map_removes(m, late[i]->key);
	return late;
}

/* Group searches to send again, and changes whose groups never came. */
static void grouping_tick(notify_slapd_t *s)
{
	held_t **late = take_late(s->grouping, true, s->cfg->slapd.groups.timeout_ms);
	for (held_t **l = late; *l; l++) {
		loom_warning("password change of dn=%s dropped: its groups could not be read in %lld ms (%s)",
		    loom_log_kv_quote((*l)->dn), s->cfg->slapd.groups.timeout_ms, (*l)->why ? (*l)->why : "no answer");
		held_free(*l);
	}
	free(late);
	size_t pos = 0;
	const void *k;
	size_t kl;
	void *v;
	held_t **retry = loom_calloc(loom_map_count(s->grouping) + 1, sizeof *retry);
	size_t n = 0;
	while (loom_map_next(s->grouping, &pos, &k, &kl, &v))
		if (((held_t *)v)->msgid == 0)
			retry[n++] = v;
	for (size_t i = 0; i < n; i++)
		lookup_start(s, retry[i]);
	free(retry);
}

/* One complete request from slapd (text in guarded memory). Returns whether
 * slapd waits for an answer (every request but RESULT). */
static bool handle(notify_slapd_t *s, char *text, size_t len)
{
	pcns_kvs_t kv;
	const char *err;
	if (pcns_kv_parse(text, len, &kv, &err) < 0) {
		loom_warning("unreadable request from slapd: %s", err);
		return true;
	}
	if (kv.n == 0) {
		pcns_kvs_release(&kv);
		return true;
	}
	const char *what = kv.v[0].name;
	const pcns_kv_t *msgid = pcns_kv_get(&kv, "msgid");
	const pcns_kv_t *connid = pcns_kv_get(&kv, "connid");
	const pcns_kv_t *binddn = pcns_kv_get(&kv, "binddn");
	char key[64];
	snprintf(key, sizeof key, "%s/%s", connid ? connid->val : "-", msgid ? msgid->val : "-");
	if (connid == NULL && !s->warned_connid) {
		s->warned_connid = true;
		loom_warning("slapd sends no connid: add 'extensions binddn connid' to the sock overlay, or results of "
			     "concurrent connections may be mistaken for one another");
	}
	bool reply = strcmp(what, "RESULT") != 0;
	if (strcmp(what, "RESULT") == 0) {
		const pcns_kv_t *code = pcns_kv_get(&kv, "code");
		held_t *h = loom_map_removes(s->held, key);
		if (h) {
			if (code && strcmp(code->val, "0") == 0) {
				made(s, h); /* takes h */
			} else {
				loom_info("password change not made by slapd dn=%s code=%s: dropped", loom_log_kv_quote(h->dn),
				    code ? code->val : "?");
				held_free(h);
			}
		}
	} else if (strcmp(what, "EXTENDED") == 0) {
		const pcns_kv_t *oid = pcns_kv_get(&kv, "oid");
		const pcns_kv_t *value = pcns_kv_get(&kv, "value");
		if (oid && strcmp(oid->val, "1.3.6.1.4.1.4203.1.11.1") == 0 &&
		    !(binddn && ignored_binddn(s, binddn->val))) {
			/* "value: <base64>" (one colon, base64 all the same) */
			size_t vmax = value ? value->vlen : 0, blen = 0;
			uint8_t *ber = sodium_malloc(vmax + 1);
			if (ber == NULL)
				abort();
			pcns_passwd_modify_t pm;
			if (value && sodium_base642bin(ber, vmax, value->val, value->vlen, NULL, &blen, NULL,
				sodium_base64_VARIANT_ORIGINAL) != 0) {
				loom_warning("a Password Modify request from slapd does not decode (base64): skipped");
			} else if (pcns_passwd_modify_parse(ber, blen, &pm) < 0) {
				loom_warning("a Password Modify request from slapd does not decode (BER): skipped");
			} else if (!pm.have_new) {
				loom_info("Password Modify without a new password (slapd generates it, Loom never sees it): skipped");
			} else {
				char *dn = pm.have_user ? loom_strndup((const char *)pm.user, pm.user_len)
							: loom_strdup(binddn ? binddn->val : "");
				if (dn[0])
					hold(s, key, dn, pm.newpw, pm.newpw_len);
				free(dn);
			}
			sodium_free(ber);
		}
	} else if (strcmp(what, "MODIFY") == 0 && loom_map_gets(s->held, key) == NULL &&
		   !(binddn && ignored_binddn(s, binddn->val))) {
		/* replace/add userPassword with a value that is not a hash */
		const pcns_kv_t *dn = pcns_kv_get(&kv, "dn");
		bool in_pw = false;
		for (size_t i = 1; i < kv.n && dn; i++) {
			const pcns_kv_t *e = &kv.v[i];
			if (strcmp(e->name, "-") == 0) {
				in_pw = false;
			} else if (strcasecmp(e->name, "replace") == 0 || strcasecmp(e->name, "add") == 0) {
				in_pw = strcasecmp(e->val, "userPassword") == 0;
			} else if (strcasecmp(e->name, "delete") == 0) {
				in_pw = false;
			} else if (in_pw && strcasecmp(e->name, "userPassword") == 0 && e->vlen &&
				   !pcns_is_hashed(e->val, e->vlen)) {
				hold(s, key, dn->val, (const uint8_t *)e->val, e->vlen);
				break;
			}
		}
	}
	pcns_kvs_release(&kv);
	return reply;
}

static int on_client(loom_loop_t *loop, void *arg)
{
	(void)loop;
	client_t *c = arg;
	if (c->len == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16384;
		if (cap > INPUT_MAX) {
			loom_warning("a request from slapd is over 1 MiB: connection closed");
			client_close(c);
			return 0;
		}
		char *nb = sodium_malloc(cap + 1);
		if (nb == NULL)
			abort();
		if (c->buf) {
			memcpy(nb, c->buf, c->len);
			sodium_free(c->buf);
		}
		c->buf = nb;
		c->cap = cap;
	}
	ssize_t n = read(c->fd, c->buf + c->len, c->cap - c->len);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		/* slapd closed: a RESULT ends this way, with or without its blank line */
		if (c->len)
			handle(c->s, c->buf, c->len);
		client_close(c);
		return 0;
	}
	c->len += (size_t)n;
	/* a request ends with a blank line */
	if (c->len >= 2 && c->buf[c->len - 1] == '\n' &&
	    (c->buf[c->len - 2] == '\n' || (c->len >= 3 && c->buf[c->len - 2] == '\r' && c->buf[c->len - 3] == '\n'))) {
		size_t len = c->len;
		c->len = 0;
		if (handle(c->s, c->buf, len)) {
			static const char cont[] = "CONTINUE\n\n";
			if (write(c->fd, cont, sizeof cont - 1) < 0)
				loom_debug("cannot answer slapd: %s", strerror(errno));
		}
		client_close(c);
	}
	return 0;
}

static int on_accept(loom_loop_t *loop, void *arg)
{
	notify_slapd_t *s = arg;
	for (;;) {
		int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return 0;
		client_t *c = loom_calloc(1, sizeof *c);
		c->fd = fd;
		c->s = s;
		char k[16];
		snprintf(k, sizeof k, "%d", fd);
		loom_map_puts(s->clients, k, c);
		loom_loop_add_fd(loop, fd, on_client, c);
	}
}

int notify_slapd_start(loom_loop_t *loop, const pcns_notify_cfg_t *cfg, const char *spool,
    const pcns_targets_t *const *targets, notify_spooled_fn *spooled, void *arg, notify_slapd_t **ret,
    char **ret_error)
{
	const char *path = cfg->slapd.socket;
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa.sun_path) {
		*ret_error = loom_sprintf("slapd.socket '%s' is longer than a socket address holds (%zu bytes)", path,
		    sizeof sa.sun_path - 1);
		return -1;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*ret_error = loom_sprintf("cannot make a socket: %s", strerror(errno));
		return -1;
	}
	(void)unlink(path); /* a socket left by an earlier run */
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 128) < 0) {
		*ret_error = loom_sprintf("cannot listen on '%s': %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	/* slapd runs as its own user: it needs to connect (group access) */
	(void)chmod(path, 0660);
	notify_slapd_t *s = loom_calloc(1, sizeof *s);
	s->loop = loop;
	s->cfg = cfg;
	s->spool = spool;
	s->targets = targets;
	s->spooled = spooled;
	s->arg = arg;
	s->fd = fd;
	s->path = loom_strdup(path);
	s->held = loom_map_new();
	s->grouping = loom_map_new();
	s->clients = loom_map_new();
	s->ldfd = -1;
	loom_loop_add_fd(loop, fd, on_accept, s);
	*ret = s;
	return 0;
}

void notify_slapd_tick(notify_slapd_t *s)
{
	if (s == NULL)
		return;
	grouping_tick(s);
	held_t **late = take_late(s->held, false, s->cfg->slapd.result_timeout_ms);
	for (held_t **l = late; *l; l++) {
		loom_warning("password change of dn=%s dropped: slapd sent no result for it in %lld ms",
		    loom_log_kv_quote((*l)->dn), s->cfg->slapd.result_timeout_ms);
		held_free(*l);
	}
	free(late);
}

void notify_slapd_stop(notify_slapd_t **s_p)
{
	notify_slapd_t *s = *s_p;
	if (s == NULL)
		return;
	size_t pos = 0;
	const void *k;
	size_t kl;
	void *v;
	client_t **cs = loom_calloc(loom_map_count(s->clients) + 1, sizeof *cs);
	size_t n = 0;
	while (loom_map_next(s->clients, &pos, &k, &kl, &v))
		cs[n++] = v;
	for (size_t i = 0; i < n; i++)
		client_close(cs[i]);
	free(cs);
	pos = 0;
	while (loom_map_next(s->held, &pos, &k, &kl, &v))
		held_free(v);
	if (loom_map_count(s->grouping) > 0)
		loom_warning("stopping with %zu password change(s) whose groups were not read yet: dropped",
		    loom_map_count(s->grouping));
	pos = 0;
	while (loom_map_next(s->grouping, &pos, &k, &kl, &v))
		held_free(v);
	loom_map_destroy(&s->grouping);
	if (s->ld != NULL) {
		loom_loop_remove_fd(s->loop, s->ldfd);
		ldap_unbind_ext_s(s->ld, NULL, NULL);
	}
	loom_map_destroy(&s->held);
	loom_map_destroy(&s->clients);
	loom_loop_remove_fd(s->loop, s->fd);
	close(s->fd);
	(void)unlink(s->path);
	free(s->path);
	free(s);
	*s_p = NULL;
}
