/* pcns_cfg.c - the tables behind pcns.yaml, pcns-notify.yaml and
 * pcns-targets.yaml (docs/pcns.md has commented examples). */
#include "pcns.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_file.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <zmq.h>

/* ---- pcns.yaml ----------------------------------------------------------------------- */

static const loom_cfg_key_t notifier_keys[] = {
	{ .name = "key", .type = LOOM_CFG_PATH, .offset = offsetof(pcns_notifier_cfg_t, key),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY,
	  .help = "the notifier's public key file (made on its host by loomctl keys gen NAME; copy NAME.pub here)" },
	{ .name = "agent", .type = LOOM_CFG_STRING, .offset = offsetof(pcns_notifier_cfg_t, agent),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY,
	  .help = "the engine agent (config/agents/NAME.yaml) whose accounts this notifier's directory holds" },
	{ NULL }
};
static const loom_cfg_table_t notifier_table = {
	.what = "notifier", .size = sizeof(pcns_notifier_cfg_t), .name_offset = offsetof(pcns_notifier_cfg_t, name),
	.keys = notifier_keys
};

static const loom_cfg_key_t pcns_keys[] = {
	{ .name = "listen", .type = LOOM_CFG_ENDPOINT, .offset = offsetof(pcns_cfg_t, listen),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY,
	  .help = "where notifiers connect: tcp://ADDRESS:PORT or ipc://PATH (always CURVE, with this process's key pcns.key)" },
	{ .name = "engine", .type = LOOM_CFG_STRING, .offset = offsetof(pcns_cfg_t, engine), .def = "engine",
	  .flags = LOOM_CFG_NONEMPTY, .help = "the engine's bus service (its public key keys_dir/SERVICE.pub seals what it is sent)" },
	{ .name = "notifiers", .type = LOOM_CFG_MAP, .offset = offsetof(pcns_cfg_t, notifiers), .sub = &notifier_table,
	  .help = "the notifiers allowed to connect, by name: key and agent; any other key is refused and logged" },
	{ .name = "max_queue_age", .type = LOOM_CFG_DURATION, .offset = offsetof(pcns_cfg_t, max_queue_age_ms),
	  .def = "7d", .min = 0, .max = 365LL * 86400000, .help = "a change the engine has not taken by then expires (0: never)" },
	{ .name = "max_retries", .type = LOOM_CFG_INT, .offset = offsetof(pcns_cfg_t, max_retries),
	  .def = "0", .min = 0, .max = 1000000, .help = "attempts to hand a change to the engine before it fails (0: until max_queue_age)" },
	{ .name = "retry_interval", .type = LOOM_CFG_DURATION, .offset = offsetof(pcns_cfg_t, retry_interval_ms),
	  .def = "30s", .min = 100, .max = 86400000, .help = "wait between two attempts to hand a change to the engine" },
	{ .name = "engine_timeout", .type = LOOM_CFG_DURATION, .offset = offsetof(pcns_cfg_t, engine_timeout_ms),
	  .def = "10s", .min = 100, .max = 3600000, .help = "an attempt the engine has not answered in this time failed" },
	{ .name = "in_flight", .type = LOOM_CFG_INT, .offset = offsetof(pcns_cfg_t, in_flight),
	  .def = "64", .min = 1, .max = 10000, .help = "changes sent to the engine without an answer yet" },
	{ .name = "history", .type = LOOM_CFG_DURATION, .offset = offsetof(pcns_cfg_t, history_ms),
	  .def = "7d", .min = 0, .max = 365LL * 86400000, .help = "finished changes (status only, no password) are kept this long" },
	{ NULL }
};
const loom_cfg_table_t pcns_cfg_table = { .what = "pcns", .keys = pcns_keys };

char *pcns_cfg_beside(const char *deploy_path, const char *name)
{
	const char *slash = strrchr(deploy_path, '/');
	if (slash == NULL)
		return loom_strdup(name);
	return loom_sprintf("%.*s/%s", (int)(slash - deploy_path), deploy_path, name);
}

int pcns_cfg_load(const char *path, pcns_cfg_t *cfg, loom_cfg_diags_t *diags)
{
	int rc = loom_config_load_file(path, &pcns_cfg_table, cfg, diags);
	cfg->path = loom_strdup(path);
	if (rc < 0)
		return rc;
	pcns_notifier_cfg_t *n = cfg->notifiers.v;
	for (size_t i = 0; i < cfg->notifiers.n; i++) {
		char *err = NULL;
		if (loom_keys_read_public(n[i].key, n[i].pub, &err) < 0) {
			loom_cfg_diag_add(diags, path, "notifiers",
			    loom_sprintf("%s: key 'notifiers.%s.key': %s", path, n[i].name, err));
			free(err);
			rc = -1;
		}
		for (size_t k = 0; k < i; k++)
			if (rc == 0 && memcmp(n[k].pub, n[i].pub, LOOM_KEY_LEN) == 0) {
				loom_cfg_diag_add(diags, path, "notifiers",
				    loom_sprintf("%s: key 'notifiers.%s.key': the same key as notifier '%s': each notifier needs "
					"its own key pair", path, n[i].name, n[k].name));
				rc = -1;
			}
	}
	return rc;
}

void pcns_cfg_release(pcns_cfg_t *cfg)
{
	loom_config_release(&pcns_cfg_table, cfg);
	free(cfg->path);
	cfg->path = NULL;
}

/* ---- pcns-notify.yaml --------------------------------------------------------------- */

static const loom_cfg_key_t groups_keys[] = {
	{ .name = "uri", .type = LOOM_CFG_STRING, .offset = offsetof(pcns_notify_groups_t, uri),
	  .help = "the directory the account's groups are read from (usually the slapd of the hook: ldap://, ldaps:// "
	  "or ldapi://); unset: slapd changes carry no groups" },
	{ .name = "bind_dn", .type = LOOM_CFG_STRING, .offset = offsetof(pcns_notify_groups_t, bind_dn),
	  .help = "simple bind as this DN (unset: anonymous)" },
	{ .name = "password_file", .type = LOOM_CFG_PATH, .offset = offsetof(pcns_notify_groups_t, password_file),
	  .help = "the bind password, first line of this file" },
	{ .name = "base", .type = LOOM_CFG_STRING, .offset = offsetof(pcns_notify_groups_t, base),
	  .help = "where groups are searched, subtree (required with uri)" },
	{ .name = "filter", .type = LOOM_CFG_STRING, .offset = offsetof(pcns_notify_groups_t, filter),
	  .def = "(|(member={dn})(uniqueMember={dn})(memberUid={account}))",
	  .help = "the groups an account is in; {dn} and {account} are replaced (escaped)" },
	{ .name = "timeout", .type = LOOM_CFG_DURATION, .offset = offsetof(pcns_notify_groups_t, timeout_ms),
	  .def = "30s", .min = 100, .max = 3600000,
	  .help = "a change whose groups cannot be read by then is dropped (never sent to a target its groups might exclude)" },
	{ NULL }
};
static const loom_cfg_table_t groups_table = { .what = "groups", .keys = groups_keys };

static const loom_cfg_key_t slapd_keys[] = {
	{ .name = "groups", .type = LOOM_CFG_SECTION, .offset = offsetof(pcns_notify_slapd_t, groups), .sub = &groups_table,
	  .help = "read the account's groups for the targets' include_groups and exclude_groups" },
	{ .name = "socket", .type = LOOM_CFG_PATH, .offset = offsetof(pcns_notify_slapd_t, socket),
	  .help = "the sock overlay's socketpath: loom-pcns-notify listens there (slapd.conf: overlay sock, "
	  "sockops modify extended, sockresps result, extensions binddn connid)" },
	{ .name = "ignore_binddn", .type = LOOM_CFG_STRLIST, .offset = offsetof(pcns_notify_slapd_t, ignore_binddn),
	  .help = "changes made by these DNs are not forwarded (the account Loom's own LDAP agent binds as)" },
	{ .name = "result_timeout", .type = LOOM_CFG_DURATION, .offset = offsetof(pcns_notify_slapd_t, result_timeout_ms),
	  .def = "30s", .min = 100, .max = 3600000, .help = "a change whose RESULT slapd has not sent by then is dropped" },
	{ NULL }
};
static const loom_cfg_table_t slapd_table = { .what = "slapd", .keys = slapd_keys };

static const loom_cfg_key_t notify_keys[] = {
	{ .name = "name", .type = LOOM_CFG_STRING, .offset = offsetof(pcns_notify_cfg_t, name),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY,
	  .help = "this notifier's name: its key pair is keys_dir/NAME.key, listed under this name in the listener's pcns.yaml" },
	{ .name = "spool", .type = LOOM_CFG_PATH, .offset = offsetof(pcns_notify_cfg_t, spool),
	  .help = "the spool directory (default STATE_DIR/pcns-spool)" },
	{ .name = "targets", .type = LOOM_CFG_PATH, .offset = offsetof(pcns_notify_cfg_t, targets),
	  .def = "pcns-targets.yaml", .help = "the listeners, written by loomctl pcns target (reloaded when it changes)" },
	{ .name = "retry_initial", .type = LOOM_CFG_DURATION, .offset = offsetof(pcns_notify_cfg_t, retry_initial_ms),
	  .def = "1s", .min = 10, .max = 86400000, .help = "a listener that failed is tried again after this; the wait doubles" },
	{ .name = "retry_max", .type = LOOM_CFG_DURATION, .offset = offsetof(pcns_notify_cfg_t, retry_max_ms),
	  .def = "5m", .min = 10, .max = 86400000, .help = "up to this" },
	{ .name = "ack_timeout", .type = LOOM_CFG_DURATION, .offset = offsetof(pcns_notify_cfg_t, ack_timeout_ms),
	  .def = "5s", .min = 10, .max = 3600000, .help = "a listener that has not acknowledged a change by then failed" },
	{ .name = "max_age", .type = LOOM_CFG_DURATION, .offset = offsetof(pcns_notify_cfg_t, max_age_ms),
	  .def = "7d", .min = 0, .max = 365LL * 86400000, .help = "spooled changes older than this are dropped, with an error in the log (0: never)" },
	{ .name = "queue_warning", .type = LOOM_CFG_INT, .offset = offsetof(pcns_notify_cfg_t, queue_warning),
	  .def = "1000", .min = 0, .max = 100000000, .help = "warn when the spool holds more changes than this (0: never)" },
	{ .name = "in_flight", .type = LOOM_CFG_INT, .offset = offsetof(pcns_notify_cfg_t, in_flight),
	  .def = "256", .min = 1, .max = 100000, .help = "changes sent and not yet acknowledged" },
	{ .name = "slapd", .type = LOOM_CFG_SECTION, .offset = offsetof(pcns_notify_cfg_t, slapd), .sub = &slapd_table,
	  .help = "OpenLDAP: take changes from slapd's sock overlay" },
	{ NULL }
};
const loom_cfg_table_t pcns_notify_cfg_table = { .what = "pcns-notify", .keys = notify_keys };

int pcns_notify_cfg_load(const char *path, pcns_notify_cfg_t *cfg, loom_cfg_diags_t *diags)
{
	int rc = loom_config_load_file(path, &pcns_notify_cfg_table, cfg, diags);
	cfg->path = loom_strdup(path);
	if (rc == 0 && cfg->retry_max_ms < cfg->retry_initial_ms) {
		loom_cfg_diag_add(diags, path, "retry_max",
		    loom_sprintf("%s: key 'retry_max': %lld ms is below retry_initial (%lld ms)", path, cfg->retry_max_ms,
			cfg->retry_initial_ms));
		rc = -1;
	}
	const pcns_notify_groups_t *g = &cfg->slapd.groups;
	if (rc == 0 && g->uri && g->uri[0] && (g->base == NULL || g->base[0] == '\0')) {
		loom_cfg_diag_add(diags, path, "slapd.groups.base",
		    loom_sprintf("%s: key 'slapd.groups.base': required with slapd.groups.uri (where the groups are searched)",
			path));
		rc = -1;
	}
	if (rc == 0 && g->uri && g->uri[0] && strstr(g->filter, "{dn}") == NULL && strstr(g->filter, "{account}") == NULL) {
		loom_cfg_diag_add(diags, path, "slapd.groups.filter",
		    loom_sprintf("%s: key 'slapd.groups.filter': bad value '%s': expected {dn} or {account} in it", path,
			g->filter));
		rc = -1;
	}
	return rc;
}

void pcns_notify_cfg_release(pcns_notify_cfg_t *cfg)
{
	loom_config_release(&pcns_notify_cfg_table, cfg);
	free(cfg->path);
	cfg->path = NULL;
}

/* ---- pcns-targets.yaml ---------------------------------------------------------------- */

static const loom_cfg_key_t target_keys[] = {
	{ .name = "name", .type = LOOM_CFG_STRING, .offset = offsetof(pcns_target_t, name),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "the target's name" },
	{ .name = "endpoint", .type = LOOM_CFG_STRING, .offset = offsetof(pcns_target_t, endpoint),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "tcp://HOST:PORT or ipc://PATH of a loom-pcns" },
	{ .name = "key", .type = LOOM_CFG_STRING, .offset = offsetof(pcns_target_t, key),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "the listener's public key (Z85, 40 characters)" },
	{ .name = "include_groups", .type = LOOM_CFG_STRLIST, .offset = offsetof(pcns_target_t, include_groups),
	  .help = "only accounts in one of these groups (DN or name); empty: all" },
	{ .name = "exclude_groups", .type = LOOM_CFG_STRLIST, .offset = offsetof(pcns_target_t, exclude_groups),
	  .help = "never accounts in these groups" },
	{ .name = "disabled", .type = LOOM_CFG_BOOL, .offset = offsetof(pcns_target_t, disabled), .def = "false",
	  .help = "kept, but nothing is sent to it" },
	{ NULL }
};
static const loom_cfg_table_t target_table = { .what = "target", .size = sizeof(pcns_target_t), .keys = target_keys };

static const loom_cfg_key_t targets_keys[] = {
	{ .name = "targets", .type = LOOM_CFG_LIST, .offset = offsetof(pcns_targets_t, targets), .sub = &target_table,
	  .help = "the listeners in delivery order: the first is the primary, the next take over when it fails" },
	{ NULL }
};
const loom_cfg_table_t pcns_targets_table = { .what = "pcns-targets", .keys = targets_keys };

int pcns_targets_load(const char *path, pcns_targets_t *t, loom_cfg_diags_t *diags)
{
	struct stat st;
	if (stat(path, &st) < 0 && errno == ENOENT)
		return 0;
	int rc = loom_config_load_file(path, &pcns_targets_table, t, diags);
	if (rc < 0)
		return rc;
	pcns_target_t *v = t->targets.v;
	for (size_t i = 0; i < t->targets.n; i++) {
		if (strlen(v[i].key) != LOOM_Z85_KEY_LEN || zmq_z85_decode(v[i].pub, v[i].key) == NULL) {
			loom_cfg_diag_add(diags, path, "targets",
			    loom_sprintf("%s: key 'targets[%zu].key': bad value '%s': expected a public key in Z85 (40 characters)",
				path, i, v[i].key));
			rc = -1;
		}
		for (size_t k = 0; k < i; k++)
			if (strcmp(v[k].name, v[i].name) == 0) {
				loom_cfg_diag_add(diags, path, "targets",
				    loom_sprintf("%s: key 'targets[%zu].name': '%s' is used twice", path, i, v[i].name));
				rc = -1;
			}
	}
	return rc;
}

void pcns_targets_release(pcns_targets_t *t)
{
	loom_config_release(&pcns_targets_table, t);
}

static void yaml_str(loom_buf_t *b, const char *s)
{
	loom_buf_addc(b, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			loom_buf_addc(b, '\\');
		loom_buf_addc(b, *s);
	}
	loom_buf_addc(b, '"');
}

static void yaml_list(loom_buf_t *b, const char *key, const loom_cfg_strlist_t *l)
{
	loom_buf_printf(b, "    %s: [", key);
	for (size_t i = 0; i < l->n; i++) {
		if (i)
			loom_buf_adds(b, ", ");
		yaml_str(b, l->v[i]);
	}
	loom_buf_adds(b, "]\n");
}

int pcns_targets_save(const char *path, const pcns_targets_t *t, char **ret_error)
{
	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_adds(&b, "# The listeners (loom-pcns) this notifier delivers password changes to, in order:\n"
			  "# the first is the primary, the next take over while it fails.\n"
			  "# Written by loomctl pcns target add|remove; loom-pcns-notify reloads it when it changes.\n"
			  "targets:\n");
	const pcns_target_t *v = t->targets.v;
	for (size_t i = 0; i < t->targets.n; i++) {
		loom_buf_adds(&b, "  - name: ");
		yaml_str(&b, v[i].name);
		loom_buf_adds(&b, "\n    endpoint: ");
		yaml_str(&b, v[i].endpoint);
		loom_buf_adds(&b, "\n    key: ");
		yaml_str(&b, v[i].key);
		loom_buf_adds(&b, "\n");
		yaml_list(&b, "include_groups", &v[i].include_groups);
		yaml_list(&b, "exclude_groups", &v[i].exclude_groups);
		loom_buf_printf(&b, "    disabled: %s\n", v[i].disabled ? "true" : "false");
	}
	if (t->targets.n == 0)
		loom_buf_adds(&b, "  []\n");
	int rc = loom_file_replace(path, b.data, b.len, 0644, ret_error);
	loom_buf_release(&b);
	return rc;
}

/* True when group (as configured) names dn: the same DN, or its first RDN's value. */
static bool group_names(const char *group, const char *dn)
{
	if (strcasecmp(group, dn) == 0)
		return true;
	const char *eq = strchr(dn, '=');
	if (eq == NULL)
		return false;
	const char *v = eq + 1;
	size_t n = 0;
	while (v[n] && !(v[n] == ',' && (n == 0 || v[n - 1] != '\\')))
		n++;
	return strlen(group) == n && strncasecmp(group, v, n) == 0;
}

static bool in_any(const loom_cfg_strlist_t *l, char *const *groups, size_t ngroups)
{
	for (size_t i = 0; i < l->n; i++)
		for (size_t k = 0; k < ngroups; k++)
			if (group_names(l->v[i], groups[k]))
				return true;
	return false;
}

bool pcns_target_accepts(const pcns_target_t *t, char *const *groups, size_t ngroups)
{
	if (t->disabled)
		return false;
	if (t->include_groups.n && !in_any(&t->include_groups, groups, ngroups))
		return false;
	return !in_any(&t->exclude_groups, groups, ngroups);
}

char *pcns_target_refusal(const pcns_target_t *t, char *const *groups, size_t ngroups)
{
	if (t->disabled)
		return loom_strdup("disabled");
	if (t->include_groups.n && !in_any(&t->include_groups, groups, ngroups))
		return loom_strdup("in none of its include_groups");
	for (size_t i = 0; i < t->exclude_groups.n; i++)
		for (size_t k = 0; k < ngroups; k++)
			if (group_names(t->exclude_groups.v[i], groups[k]))
				return loom_sprintf("in its exclude group '%s'", groups[k]);
	return NULL;
}

bool pcns_targets_use_groups(const pcns_targets_t *ts)
{
	const pcns_target_t *tv = ts->targets.v;
	for (size_t i = 0; i < ts->targets.n; i++)
		if (tv[i].include_groups.n || tv[i].exclude_groups.n)
			return true;
	return false;
}
