/* loomctl_pcns.c - password change notification and password sync:
 *
 *   loomctl pcns status [-n N] [--state S]       the listener's queue (loom-pcns)
 *   loomctl pcns target list|add|remove|enable|disable ...
 *                                                a notifier's listeners (like pcnscfg):
 *                                                edits pcns-targets.yaml, which
 *                                                loom-pcns-notify reloads by itself
 *   loomctl report password-sync [...]           the engine's per-change, per-target history
 */
#include "loomctl.h"
#include "pcns.h"
#include "pcns.pb-c.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_envelope.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

static void fmt_dur(char *out, size_t n, long long ms)
{
	if (ms % 86400000 == 0 && ms)
		snprintf(out, n, "%lldd", ms / 86400000);
	else if (ms % 3600000 == 0 && ms)
		snprintf(out, n, "%lldh", ms / 3600000);
	else if (ms % 60000 == 0 && ms)
		snprintf(out, n, "%lldm", ms / 60000);
	else if (ms % 1000 == 0)
		snprintf(out, n, "%llds", ms / 1000);
	else
		snprintf(out, n, "%lldms", ms);
}

static void fmt_age(char *out, size_t n, int64_t us)
{
	if (us == 0)
		snprintf(out, n, "-");
	else
		snprintf(out, n, "%.1fs", (double)(loom_now_us() - us) / 1e6);
}

static char *hex(const ProtobufCBinaryData *b)
{
	loom_buf_t s = LOOM_BUF_INIT;
	loom_buf_add_hex(&s, b->data, b->len);
	return loom_buf_steal(&s);
}

/* ---- pcns status ------------------------------------------------------------------------- */

static int pcns_status(ctl_t *ctl, int argc, char **argv)
{
	Loom__PcnsStatusRequest rq = LOOM__PCNS_STATUS_REQUEST__INIT;
	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-n") == 0 || strcmp(argv[i], "--limit") == 0) && i + 1 < argc) {
			if (ctl_parse_limit(argv[++i], &rq.limit) < 0)
				return 2;
		} else if (strcmp(argv[i], "--state") == 0 && i + 1 < argc) {
			rq.state = argv[++i];
			if (rq.limit == 0)
				rq.limit = 100;
		} else {
			fprintf(stderr, "usage: loomctl pcns status [-n N] [--state queued|delivered|unmatched|expired|failed]\n");
			return 2;
		}
	}
	Loom__PcnsStatusReply *r = (Loom__PcnsStatusReply *)ctl_ask(ctl, "pcns", &rq.base,
	    &loom__pcns_status_reply__descriptor, "pcns status");
	if (r == NULL)
		return 1;
	if (ctl->json) {
		ctl_print_json(&r->base);
		loom__pcns_status_reply__free_unpacked(r, NULL);
		return 0;
	}
	char age[32], qa[32], ri[32];
	fmt_age(age, sizeof age, r->oldest_queued_at);
	fmt_dur(qa, sizeof qa, r->max_queue_age_ms);
	fmt_dur(ri, sizeof ri, r->retry_interval_ms);
	printf("listener      %s\n", r->listen);
	printf("queue         %llu changes, oldest %s, %llu sent to the engine awaiting its answer\n",
	    (unsigned long long)r->queued, age, (unsigned long long)r->in_flight);
	printf("since start   received %llu, duplicates %llu, delivered %llu, unmatched %llu, expired %llu, failed %llu, "
	       "refused %llu\n",
	    (unsigned long long)r->received, (unsigned long long)r->duplicates, (unsigned long long)r->delivered,
	    (unsigned long long)r->unmatched, (unsigned long long)r->expired, (unsigned long long)r->failed,
	    (unsigned long long)r->refused);
	printf("engine        %llu failed attempts%s%s\n", (unsigned long long)r->engine_errors,
	    r->last_error[0] ? "; last: " : "", r->last_error);
	if (r->max_retries)
		printf("limits        max_queue_age %s, max_retries %u, retry_interval %s\n", qa, r->max_retries, ri);
	else
		printf("limits        max_queue_age %s, max_retries none, retry_interval %s\n", qa, ri);
	printf("kept          %llu records (queue and history)\n", (unsigned long long)r->kept);
	for (size_t i = 0; i < r->n_notifiers; i++) {
		const Loom__PcnsNotifierStatus *n = r->notifiers[i];
		char last[32];
		ctl_fmt_time(last, sizeof last, n->last_at);
		printf("notifier      %s (agent %s): received %llu, duplicates %llu, last %s\n", n->name, n->agent,
		    (unsigned long long)n->received, (unsigned long long)n->duplicates, last);
	}
	static const char *const states[] = { "queued", "delivered", "unmatched", "expired", "failed" };
	for (size_t i = 0; i < r->n_changes; i++) {
		const Loom__PcnsRecord *c = r->changes[i];
		char t[32];
		ctl_fmt_time(t, sizeof t, c->received_at);
		char *id = hex(&c->change_id);
		printf("%s  %.12s  %-9s %s/%s account=%s attempts=%u%s%s%s%s\n", t, id,
		    c->state <= 4 ? states[c->state] : "?", c->notifier, c->agent, c->account[0] ? c->account : c->dn,
		    c->attempts, c->engine_status[0] ? " engine=" : "", c->engine_status,
		    c->last_error[0] ? ": " : "", c->last_error);
		free(id);
	}
	loom__pcns_status_reply__free_unpacked(r, NULL);
	return 0;
}

/* ---- pcns target ------------------------------------------------------------------------- */

/* The targets file: --file, else the notifier file's `targets`, else
 * pcns-targets.yaml beside loom.yaml. */
static char *targets_path(ctl_t *ctl, const char *file, const char *ncfg, char **ret_spool)
{
	*ret_spool = NULL;
	if (file)
		return loom_strdup(file);
	char *npath = ncfg ? loom_strdup(ncfg) : NULL;
	if (npath == NULL) {
		if (ctl_load_config(ctl) < 0)
			return NULL;
		npath = pcns_cfg_beside(ctl->cfg.path, "pcns-notify.yaml");
	}
	pcns_notify_cfg_t cfg;
	memset(&cfg, 0, sizeof cfg);
	loom_cfg_diags_t diags;
	memset(&diags, 0, sizeof diags);
	char *path = NULL;
	FILE *f = fopen(npath, "r");
	if (f) {
		fclose(f);
		if (pcns_notify_cfg_load(npath, &cfg, &diags) < 0) {
			for (size_t i = 0; i < diags.n; i++)
				fprintf(stderr, "loomctl pcns target: %s\n", diags.v[i].text);
		} else {
			path = loom_strdup(cfg.targets);
			if (cfg.spool)
				*ret_spool = loom_strdup(cfg.spool);
			else if (ctl->cfg_loaded || ctl_load_config(ctl) == 0)
				*ret_spool = loom_sprintf("%s/pcns-spool", ctl->cfg.state_dir);
		}
	} else if (ncfg) {
		fprintf(stderr, "loomctl pcns target: cannot read '%s': %s\n", npath, strerror(errno));
	} else {
		path = pcns_cfg_beside(npath, "pcns-targets.yaml");
	}
	loom_cfg_diags_release(&diags);
	pcns_notify_cfg_release(&cfg);
	free(npath);
	return path;
}

static int load_targets(const char *path, pcns_targets_t *t)
{
	loom_cfg_diags_t diags;
	memset(&diags, 0, sizeof diags);
	memset(t, 0, sizeof *t);
	if (pcns_targets_load(path, t, &diags) < 0) {
		for (size_t i = 0; i < diags.n; i++)
			fprintf(stderr, "loomctl pcns target: %s\n", diags.v[i].text);
		loom_cfg_diags_release(&diags);
		pcns_targets_release(t);
		return -1;
	}
	loom_cfg_diags_release(&diags);
	return 0;
}

static ssize_t target_find(const pcns_targets_t *t, const char *name)
{
	const pcns_target_t *v = t->targets.v;
	for (size_t i = 0; i < t->targets.n; i++)
		if (strcmp(v[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}

/* The notifier's status file line for target name, or NULL (caller frees). */
static char *status_line(const char *spool, const char *name)
{
	if (spool == NULL)
		return NULL;
	char *path = loom_sprintf("%s/status", spool);
	FILE *f = fopen(path, "r");
	free(path);
	if (f == NULL)
		return NULL;
	char *line = NULL, *found = NULL;
	size_t cap = 0;
	char *want = loom_sprintf("target=%s ", name);
	while (getline(&line, &cap, f) > 0)
		if (strncmp(line, want, strlen(want)) == 0) {
			line[strcspn(line, "\n")] = '\0';
			found = loom_strdup(line + strlen(want));
		}
	free(want);
	free(line);
	fclose(f);
	return found;
}

static void strlist_add(loom_cfg_strlist_t *l, const char *s)
{
	l->v = loom_realloc(l->v, (l->n + 1) * sizeof *l->v);
	l->v[l->n++] = loom_strdup(s);
}

static int pcns_target(ctl_t *ctl, int argc, char **argv)
{
	const char *usage =
	    "usage: loomctl pcns target list [--file F | --notify-config F]\n"
	    "       loomctl pcns target add NAME --endpoint E --key FILE|Z85 [--include-group G]... [--exclude-group G]...\n"
	    "                               [--disabled] [--first | --before NAME] [--replace] [--file F | --notify-config F]\n"
	    "       loomctl pcns target remove|enable|disable NAME [--file F | --notify-config F]\n";
	if (argc < 2) {
		fputs(usage, stderr);
		return 2;
	}
	const char *verb = argv[1], *name = NULL, *endpoint = NULL, *key = NULL, *file = NULL, *ncfg = NULL,
		   *before = NULL;
	bool disabled = false, first = false, replace = false;
	loom_cfg_strlist_t inc = { NULL, 0 }, exc = { NULL, 0 };
	int status = 2;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--endpoint") == 0 && v) {
			endpoint = v;
			i++;
		} else if (strcmp(a, "--key") == 0 && v) {
			key = v;
			i++;
		} else if (strcmp(a, "--include-group") == 0 && v) {
			strlist_add(&inc, v);
			i++;
		} else if (strcmp(a, "--exclude-group") == 0 && v) {
			strlist_add(&exc, v);
			i++;
		} else if (strcmp(a, "--file") == 0 && v) {
			file = v;
			i++;
		} else if (strcmp(a, "--notify-config") == 0 && v) {
			ncfg = v;
			i++;
		} else if (strcmp(a, "--before") == 0 && v) {
			before = v;
			i++;
		} else if (strcmp(a, "--disabled") == 0) {
			disabled = true;
		} else if (strcmp(a, "--first") == 0) {
			first = true;
		} else if (strcmp(a, "--replace") == 0) {
			replace = true;
		} else if (a[0] != '-' && name == NULL) {
			name = a;
		} else {
			fprintf(stderr, "loomctl pcns target: unexpected '%s'\n", a);
			fputs(usage, stderr);
			goto out_lists;
		}
	}
	bool list = strcmp(verb, "list") == 0;
	if (!list && name == NULL) {
		fputs(usage, stderr);
		goto out_lists;
	}
	char *spool = NULL;
	char *path = targets_path(ctl, file, ncfg, &spool);
	if (path == NULL) {
		status = 1;
		goto out_lists;
	}
	pcns_targets_t t;
	if (load_targets(path, &t) < 0) {
		status = 1;
		goto out_path;
	}
	pcns_target_t *v = t.targets.v;
	if (list) {
		if (ctl->json) {
			printf("[");
			for (size_t i = 0; i < t.targets.n; i++) {
				loom_buf_t b = LOOM_BUF_INIT;
				loom_buf_adds(&b, i ? ",{\"name\":" : "{\"name\":");
				loom_buf_add_json_str(&b, v[i].name, strlen(v[i].name));
				loom_buf_adds(&b, ",\"endpoint\":");
				loom_buf_add_json_str(&b, v[i].endpoint, strlen(v[i].endpoint));
				loom_buf_adds(&b, ",\"key\":");
				loom_buf_add_json_str(&b, v[i].key, strlen(v[i].key));
				loom_buf_printf(&b, ",\"disabled\":%s}", v[i].disabled ? "true" : "false");
				fputs(loom_buf_cstr(&b), stdout);
				loom_buf_release(&b);
			}
			printf("]\n");
		} else if (t.targets.n == 0) {
			printf("no target in %s (loomctl pcns target add NAME --endpoint E --key K)\n", path);
		}
		for (size_t i = 0; i < t.targets.n && !ctl->json; i++) {
			printf("%zu %-12s %-8s %s key %s\n", i + 1, v[i].name, v[i].disabled ? "disabled" : "enabled",
			    v[i].endpoint, v[i].key);
			for (size_t k = 0; k < v[i].include_groups.n; k++)
				printf("    include group %s\n", v[i].include_groups.v[k]);
			for (size_t k = 0; k < v[i].exclude_groups.n; k++)
				printf("    exclude group %s\n", v[i].exclude_groups.v[k]);
			char *st = status_line(spool, v[i].name);
			if (st)
				printf("    notifier says: %s\n", st);
			free(st);
		}
		status = 0;
		goto out_targets;
	}
	ssize_t at = target_find(&t, name);
	if (strcmp(verb, "remove") == 0 || strcmp(verb, "enable") == 0 || strcmp(verb, "disable") == 0) {
		if (at < 0) {
			fprintf(stderr, "loomctl pcns target %s: no target '%s' in %s\n", verb, name, path);
			status = 1;
			goto out_targets;
		}
		if (verb[0] == 'r') {
			pcns_target_t *copy = loom_malloc(sizeof *copy);
			*copy = v[at];
			memmove(&v[at], &v[at + 1], (t.targets.n - (size_t)at - 1) * sizeof *v);
			t.targets.n--;
			pcns_targets_t one = { { copy, 1 } };
			pcns_targets_release(&one);
		} else {
			v[at].disabled = verb[0] == 'd';
		}
	} else if (strcmp(verb, "add") == 0) {
		if (endpoint == NULL || key == NULL) {
			fprintf(stderr, "loomctl pcns target add: --endpoint and --key are required\n");
			goto out_targets;
		}
		if (strncmp(endpoint, "tcp://", 6) != 0 && strncmp(endpoint, "ipc://", 6) != 0) {
			fprintf(stderr, "loomctl pcns target add: bad --endpoint '%s': expected tcp://HOST:PORT or ipc://PATH\n",
			    endpoint);
			goto out_targets;
		}
		if (at >= 0 && !replace) {
			fprintf(stderr, "loomctl pcns target add: '%s' exists (--replace to change it)\n", name);
			status = 1;
			goto out_targets;
		}
		uint8_t pub[LOOM_KEY_LEN];
		char z85[LOOM_Z85_KEY_LEN + 1];
		if (strlen(key) == LOOM_Z85_KEY_LEN && zmq_z85_decode(pub, key) != NULL) {
			snprintf(z85, sizeof z85, "%s", key);
		} else {
			char *err = NULL;
			if (loom_keys_read_public(key, pub, &err) < 0) {
				fprintf(stderr, "loomctl pcns target add: bad --key '%s': %s (a .pub file of the listener, or its "
						"key in Z85)\n", key, err);
				free(err);
				status = 1;
				goto out_targets;
			}
			loom_keys_z85(pub, z85);
		}
		ssize_t pos = at >= 0 ? at : (ssize_t)t.targets.n;
		if (before) {
			ssize_t b = target_find(&t, before);
			if (b < 0) {
				fprintf(stderr, "loomctl pcns target add: no target '%s' to put it before\n", before);
				status = 1;
				goto out_targets;
			}
			pos = b;
		} else if (first) {
			pos = 0;
		}
		pcns_target_t nt;
		memset(&nt, 0, sizeof nt);
		nt.name = loom_strdup(name);
		nt.endpoint = loom_strdup(endpoint);
		nt.key = loom_strdup(z85);
		nt.include_groups = inc;
		nt.exclude_groups = exc;
		inc = (loom_cfg_strlist_t){ NULL, 0 };
		exc = (loom_cfg_strlist_t){ NULL, 0 };
		nt.disabled = disabled;
		if (at >= 0) {
			/* replacing: take it out first */
			pcns_target_t old = v[at];
			memmove(&v[at], &v[at + 1], (t.targets.n - (size_t)at - 1) * sizeof *v);
			t.targets.n--;
			if (pos > at && !before && !first)
				pos = at;
			else if (pos > at)
				pos--;
			pcns_target_t *copy = loom_malloc(sizeof *copy);
			*copy = old;
			pcns_targets_t one = { { copy, 1 } };
			pcns_targets_release(&one);
		}
		t.targets.v = loom_realloc(t.targets.v, (t.targets.n + 1) * sizeof *v);
		v = t.targets.v;
		memmove(&v[pos + 1], &v[pos], (t.targets.n - (size_t)pos) * sizeof *v);
		v[pos] = nt;
		t.targets.n++;
	} else {
		fputs(usage, stderr);
		goto out_targets;
	}
	char *err = NULL;
	if (pcns_targets_save(path, &t, &err) < 0) {
		fprintf(stderr, "loomctl pcns target %s: %s\n", verb, err);
		free(err);
		status = 1;
		goto out_targets;
	}
	printf("target %s %s in %s (the notifier reloads it by itself)\n", name,
	    verb[0] == 'a' ? "added" : verb[0] == 'r' ? "removed" : verb[0] == 'e' ? "enabled" : "disabled", path);
	status = 0;
out_targets:
	pcns_targets_release(&t);
out_path:
	free(path);
	free(spool);
out_lists:
	for (size_t i = 0; i < inc.n; i++)
		free(inc.v[i]);
	free(inc.v);
	for (size_t i = 0; i < exc.n; i++)
		free(exc.v[i]);
	free(exc.v);
	return status;
}

int ctl_pcns(ctl_t *ctl, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "status") == 0)
		return pcns_status(ctl, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "target") == 0)
		return pcns_target(ctl, argc - 1, argv + 1);
	fprintf(stderr, "usage: loomctl pcns status [-n N] [--state S] | target list|add|remove|enable|disable ...\n");
	return 2;
}

/* ---- report password-sync ------------------------------------------------------------------ */

static int report_pwsync(ctl_t *ctl, int argc, char **argv)
{
	Loom__PasswordSyncReportRequest rq = LOOM__PASSWORD_SYNC_REPORT_REQUEST__INIT;
	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-n") == 0 || strcmp(argv[i], "--limit") == 0) && i + 1 < argc) {
			if (ctl_parse_limit(argv[++i], &rq.limit) < 0)
				return 2;
		} else if (strcmp(argv[i], "--account") == 0 && i + 1 < argc) {
			rq.account = argv[++i];
		} else if (strcmp(argv[i], "--agent") == 0 && i + 1 < argc) {
			rq.agent = argv[++i];
		} else if (strcmp(argv[i], "--pending") == 0) {
			rq.pending = true;
		} else if (strcmp(argv[i], "--failed") == 0) {
			rq.failed = true;
		} else {
			fprintf(stderr, "usage: loomctl report password-sync [--account A] [--agent X] [--pending] [--failed] [-n N]\n");
			return 2;
		}
	}
	Loom__PasswordSyncReportReply *r = (Loom__PasswordSyncReportReply *)ctl_ask_engine(ctl, &rq.base,
	    &loom__password_sync_report_reply__descriptor, "report password-sync");
	if (r == NULL)
		return 1;
	if (ctl->json) {
		ctl_print_json(&r->base);
		loom__password_sync_report_reply__free_unpacked(r, NULL);
		return 0;
	}
	static const char *const rs[] = { "pending", "done", "partial", "unmatched", "echo", "no-targets" };
	static const char *const ts[] = { "pending", "ok", "failed", "skipped", "superseded" };
	printf("%llu changes kept, %llu pending; newest first\n", (unsigned long long)r->total,
	    (unsigned long long)r->pending);
	for (size_t i = 0; i < r->n_records; i++) {
		const Loom__PasswordSyncRecord *c = r->records[i];
		char t[32];
		ctl_fmt_time(t, sizeof t, c->received_at);
		char *id = hex(&c->change_id);
		printf("%s  %.12s  %-10s %s account=%s%s%s mv=%s origin=%s\n", t, id, c->state <= 5 ? rs[c->state] : "?",
		    c->agent, c->account[0] ? c->account : c->dn, c->anchor[0] ? " anchor=" : "", c->anchor,
		    c->mv_id[0] ? c->mv_id : "-", c->origin[0] ? c->origin : "-");
		if (c->message[0])
			printf("    %s\n", c->message);
		for (size_t k = 0; k < c->n_targets; k++) {
			const Loom__PasswordSyncTarget *x = c->targets[k];
			printf("    -> %-10s %-10s attempts=%u dn=%s", x->agent, x->state <= 4 ? ts[x->state] : "?", x->attempts,
			    x->dn[0] ? x->dn : "-");
			if (x->state == LOOM__PASSWORD_SYNC_TARGET__STATE__PENDING && x->next_at) {
				char nt[32];
				ctl_fmt_time(nt, sizeof nt, x->next_at);
				printf(" next=%s", nt);
			}
			if (x->code[0] || x->message[0])
				printf(" %s%s%s", x->code, x->code[0] && x->message[0] ? ": " : "", x->message);
			printf("\n");
		}
		free(id);
	}
	if (r->truncated)
		printf("(more changes match: -n N)\n");
	loom__password_sync_report_reply__free_unpacked(r, NULL);
	return 0;
}

int ctl_report(ctl_t *ctl, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "password-sync") == 0)
		return report_pwsync(ctl, argc - 1, argv + 1);
	fprintf(stderr, "usage: loomctl report password-sync [--account A] [--agent X] [--pending] [--failed] [-n N]\n");
	return 2;
}
