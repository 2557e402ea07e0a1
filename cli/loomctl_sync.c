/* loomctl_sync.c - runs and objects of the synchronization engine:
 * `loomctl run`, `runs`, `run show`, `cs search|show`, `mv search|show`. */
#include "loomctl.h"
#include "engine.pb-c.h"
#include "loom_alloc.h"
#include "loom_attrs.h"
#include "loom_buf.h"
#include "loom_envelope.h"
#include "loom_pbfmt.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void print_record(const Loom__RunRecord *r, bool details)
{
	char t0[32], t1[32];
	ctl_fmt_time(t0, sizeof t0, r->started_at);
	ctl_fmt_time(t1, sizeof t1, r->ended_at);
	double secs = r->ended_at > r->started_at ? (double)(r->ended_at - r->started_at) / 1e6 : 0;
	printf("run %llu  %s %s  %s\n", (unsigned long long)r->id, r->agent, r->profile, r->status);
	printf("  started %s UTC, ended %s UTC (%.2fs), %llu objects", t0, t1, secs, (unsigned long long)r->objects);
	if (secs > 0)
		printf(", %.0f/s", (double)r->objects / secs);
	printf("\n");
	if (r->message[0])
		printf("  %s\n", r->message);
	for (size_t i = 0; i < r->n_warnings; i++)
		printf("  warning: %s\n", r->warnings[i]);
	for (size_t i = 0; i < r->n_counters; i++) {
		const Loom__RunCounter *c = r->counters[i];
		printf("  %-32s %10llu", c->name, (unsigned long long)c->count);
		if (details && c->n_anchors) {
			printf("  ");
			for (size_t k = 0; k < c->n_anchors && k < 5; k++)
				printf("%s%s", k ? ", " : "", c->anchors[k]);
			if (c->count > 5)
				printf(", ...");
		}
		printf("\n");
	}
	if (r->error_count)
		printf("  errors: %llu\n", (unsigned long long)r->error_count);
	for (size_t i = 0; details && i < r->n_errors && i < 50; i++) {
		const Loom__RunObjectError *e = r->errors[i];
		printf("    %s", e->code);
		if (e->anchor[0])
			printf(" anchor=%s", e->anchor);
		if (e->where[0])
			printf(" at %s", e->where);
		printf(": %s\n", e->message);
	}
}

static int run_show(ctl_t *ctl, const char *idtext)
{
	char *end;
	unsigned long long id = strtoull(idtext, &end, 10);
	if (*end || id == 0) {
		fprintf(stderr, "loomctl run show: bad run id '%s': expected a number\n", idtext);
		return 2;
	}
	Loom__RunStatusRequest rq = LOOM__RUN_STATUS_REQUEST__INIT;
	rq.run_id = id;
	rq.details = true;
	Loom__RunRecord *r = (Loom__RunRecord *)ctl_ask_engine(ctl, &rq.base, &loom__run_record__descriptor, "run show");
	if (r == NULL)
		return 1;
	if (ctl->json)
		ctl_print_json(&r->base);
	else
		print_record(r, true);
	loom__run_record__free_unpacked(r, NULL);
	return 0;
}

/* One status poll of run id. Polls are idempotent, so one whose request or
 * reply was lost (the broker restarted: it keeps nothing) is sent again,
 * every 2 s at most, until --timeout passes without an answer; the run goes
 * on in the engine meanwhile (found by scripts/crash-trials.sh: a kill -9 of
 * the broker left `loomctl run` waiting its whole timeout for a run that had
 * ended). */
static Loom__RunRecord *poll_run(ctl_t *ctl, uint64_t id, bool details)
{
	Loom__RunStatusRequest sq = LOOM__RUN_STATUS_REQUEST__INIT;
	sq.run_id = id;
	sq.details = details;
	int64_t deadline = loom_mono_ms() + ctl->timeout_ms;
	for (;;) {
		if (ctl_connect(ctl) < 0)
			return NULL;
		int64_t left = deadline - loom_mono_ms();
		Loom__Envelope *env = NULL;
		const char *err;
		if (loom_bus_request(ctl->bus, "engine", &sq.base, left < 2000 ? (left > 0 ? left : 1) : 2000, &env, &err) ==
		    0) {
			Loom__RunRecord *r = (Loom__RunRecord *)loom_envelope_body(env, &loom__run_record__descriptor, &err);
			if (r == NULL)
				fprintf(stderr, "loomctl run: the engine service's reply: %s\n", err);
			loom_envelope_free(&env);
			return r;
		}
		if (loom_mono_ms() >= deadline) {
			fprintf(stderr, "loomctl run: %s\n", err);
			return NULL;
		}
	}
}

int ctl_run(ctl_t *ctl, int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "show") == 0)
		return run_show(ctl, argv[2]);
	static const struct option opts[] = { { "no-wait", no_argument, NULL, 'n' },
		{ "allow-deletes", required_argument, NULL, 'a' }, { NULL, 0, NULL, 0 } };
	bool wait = true;
	unsigned long long allow = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *end;
		if (c == 'n') {
			wait = false;
		} else if (c == 'a') {
			allow = strtoull(optarg, &end, 10);
			if (*end || optarg[0] == '-' || optarg[0] == '\0') {
				fprintf(stderr, "loomctl run: bad --allow-deletes '%s': expected a number of deletes\n", optarg);
				return 2;
			}
		} else {
			return 2;
		}
	}
	if (optind + 2 != argc) {
		fprintf(stderr, "loomctl run: expected AGENT PROFILE or show ID (see loomctl run --help)\n");
		return 2;
	}
	Loom__RunRequest rq = LOOM__RUN_REQUEST__INIT;
	rq.agent = argv[optind];
	rq.profile = argv[optind + 1];
	rq.allow_deletes = allow;
	Loom__RunReply *rep = (Loom__RunReply *)ctl_ask_engine(ctl, &rq.base, &loom__run_reply__descriptor, "run");
	if (rep == NULL)
		return 1;
	uint64_t id = rep->run_id;
	loom__run_reply__free_unpacked(rep, NULL);
	if (!wait) {
		printf("%llu\n", (unsigned long long)id);
		return 0;
	}
	bool tty = isatty(2);
	int64_t started = loom_mono_ms(), last_line = tty ? 0 : started;
	Loom__RunRecord *r = NULL;
	for (;;) {
		if (r)
			loom__run_record__free_unpacked(r, NULL);
		r = poll_run(ctl, id, false);
		if (r == NULL)
			return 1;
		if (strcmp(r->status, "in-progress") != 0)
			break;
		int64_t now = loom_mono_ms();
		if (now - last_line >= (tty ? 250 : 5000)) {
			double secs = (double)(now - started) / 1000.0;
			fprintf(stderr, "%srun %llu %s %s: %llu objects, %.0f/s, %llu errors%s", tty ? "\r" : "",
			    (unsigned long long)id, r->agent, r->profile, (unsigned long long)r->objects,
			    secs > 0 ? (double)r->objects / secs : 0.0, (unsigned long long)r->error_count, tty ? "   " : "\n");
			last_line = now;
		}
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
	}
	if (tty && last_line)
		fprintf(stderr, "\n");
	loom__run_record__free_unpacked(r, NULL);
	/* The final record, with the objects behind each counter and the errors. */
	r = poll_run(ctl, id, true);
	if (r == NULL)
		return 1;
	if (ctl->json)
		ctl_print_json(&r->base);
	else
		print_record(r, true);
	int status = strcmp(r->status, "success") == 0 ? 0 : strcmp(r->status, "completed-errors") == 0 ? 3 : 1;
	loom__run_record__free_unpacked(r, NULL);
	return status;
}

int ctl_runs(ctl_t *ctl, int argc, char **argv)
{
	static const struct option opts[] = { { "limit", required_argument, NULL, 'n' }, { NULL, 0, NULL, 0 } };
	Loom__RunsRequest rq = LOOM__RUNS_REQUEST__INIT;
	int c;
	while ((c = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
		if (c != 'n' || ctl_parse_limit(optarg, &rq.limit) < 0)
			return 2;
	}
	if (optind < argc)
		rq.agent = argv[optind];
	Loom__RunsReply *r = (Loom__RunsReply *)ctl_ask_engine(ctl, &rq.base, &loom__runs_reply__descriptor, "runs");
	if (r == NULL)
		return 1;
	if (ctl->json) {
		ctl_print_json(&r->base);
	} else {
		printf("%6s  %-14s %-13s %-22s %-20s %9s %7s\n", "RUN", "AGENT", "PROFILE", "STATUS", "STARTED (UTC)",
		    "OBJECTS", "ERRORS");
		for (size_t i = 0; i < r->n_runs; i++) {
			const Loom__RunRecord *x = r->runs[i];
			char t0[32];
			ctl_fmt_time(t0, sizeof t0, x->started_at);
			printf("%6llu  %-14s %-13s %-22s %-20s %9llu %7llu\n", (unsigned long long)x->id, x->agent, x->profile,
			    x->status, t0, (unsigned long long)x->objects, (unsigned long long)x->error_count);
		}
	}
	loom__runs_reply__free_unpacked(r, NULL);
	return 0;
}

/* Appends the values as text, separated by " | ". */
static void values_text(loom_buf_t *b, Loom__Value *const *v, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		if (k)
			loom_buf_adds(b, " | ");
		loom_value_text(b, v[k]);
	}
}

static void print_attrs(const char *indent, Loom__Attr *const *attrs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		loom_buf_t b = LOOM_BUF_INIT;
		values_text(&b, attrs[i]->values, attrs[i]->n_values);
		printf("%s%-20s %s\n", indent, attrs[i]->name, loom_buf_cstr(&b));
		loom_buf_release(&b);
	}
}

static const char *state_name(Loom__CsObject__State s)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&loom__cs_object__state__descriptor, s);
	return v ? v->name : "?";
}

static void print_deltas(const char *title, const char *kind, Loom__AttrDelta *const *d, size_t n, const char *extra)
{
	printf("  %s: %s%s\n", title, kind, extra);
	for (size_t i = 0; i < n; i++) {
		loom_buf_t b = LOOM_BUF_INIT;
		values_text(&b, d[i]->values, d[i]->n_values);
		const char *op = d[i]->op == LOOM__ATTR_DELTA__OP__ADD ? "add" : d[i]->op == LOOM__ATTR_DELTA__OP__DELETE ? "delete" : "replace";
		printf("    %-7s %-20s %s\n", op, d[i]->name, loom_buf_cstr(&b));
		loom_buf_release(&b);
	}
}

/* A metaverse id as 16 hex digits, or "-" when id is not one. */
static void mvid_text(char out[17], const ProtobufCBinaryData *id)
{
	static const char h[] = "0123456789abcdef";
	if (id->len != 8) {
		strcpy(out, "-");
		return;
	}
	for (int i = 0; i < 8; i++) {
		out[2 * i] = h[id->data[i] >> 4];
		out[2 * i + 1] = h[id->data[i] & 15];
	}
	out[16] = '\0';
}

static void print_cs(const Loom__CsObject *cs, bool full)
{
	char hex[17];
	mvid_text(hex, &cs->mv_id);
	if (!full) {
		const char *pe = cs->pending_export && cs->pending_export->kind ?
		    protobuf_c_enum_descriptor_get_value(&loom__pending_export__kind__descriptor, cs->pending_export->kind)->name : "";
		const char *pi = cs->pending_import && cs->pending_import->kind ?
		    protobuf_c_enum_descriptor_get_value(&loom__pending_import__kind__descriptor, cs->pending_import->kind)->name : "";
		printf("%-28s %-44s %-22s %-16s %-8s %-8s\n", cs->anchor, cs->dn, state_name(cs->state), hex, pi, pe);
		return;
	}
	printf("anchor      %s\ndn          %s\ntype        %s\nstate       %s\nmetaverse   %s\n", cs->anchor, cs->dn,
	    cs->object_type, state_name(cs->state), hex);
	if (cs->provisioned_by[0])
		printf("provisioned %s\n", cs->provisioned_by);
	if (cs->last_error[0])
		printf("last error  %s\n", cs->last_error);
	printf("attributes\n");
	print_attrs("  ", cs->attrs, cs->n_attrs);
	if (cs->pending_import && cs->pending_import->kind) {
		char *extra = cs->pending_import->new_dn[0] ? loom_sprintf(" (rename to %s)", cs->pending_import->new_dn) : loom_strdup("");
		print_deltas("pending import", protobuf_c_enum_descriptor_get_value(&loom__pending_import__kind__descriptor,
		    cs->pending_import->kind)->name, cs->pending_import->deltas, cs->pending_import->n_deltas, extra);
		free(extra);
	}
	if (cs->pending_export && cs->pending_export->kind) {
		char *extra = cs->pending_export->attempts ? loom_sprintf(" (attempts %u, last error: %s)", cs->pending_export->attempts,
		    cs->pending_export->last_error) : loom_strdup("");
		print_deltas("pending export", protobuf_c_enum_descriptor_get_value(&loom__pending_export__kind__descriptor,
		    cs->pending_export->kind)->name, cs->pending_export->deltas, cs->pending_export->n_deltas, extra);
		free(extra);
	}
	if (cs->unconfirmed && cs->unconfirmed->kind)
		print_deltas("exported, awaiting confirmation", protobuf_c_enum_descriptor_get_value(
		    &loom__pending_export__kind__descriptor, cs->unconfirmed->kind)->name, cs->unconfirmed->deltas,
		    cs->unconfirmed->n_deltas, "");
}

static int cs_cmd(ctl_t *ctl, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "show") == 0) {
		if (argc != 4) {
			fprintf(stderr, "loomctl cs show: expected AGENT ANCHOR\n");
			return 2;
		}
		Loom__CsShowRequest rq = LOOM__CS_SHOW_REQUEST__INIT;
		rq.agent = argv[2];
		rq.anchor = argv[3];
		Loom__CsShowReply *r = (Loom__CsShowReply *)ctl_ask_engine(ctl, &rq.base, &loom__cs_show_reply__descriptor, "cs show");
		if (r == NULL)
			return 1;
		if (ctl->json)
			ctl_print_json(&r->base);
		else
			print_cs(r->object, true);
		loom__cs_show_reply__free_unpacked(r, NULL);
		return 0;
	}
	if (argc < 3 || strcmp(argv[1], "search") != 0) {
		fprintf(stderr, "loomctl cs: expected 'search AGENT [options]' or 'show AGENT ANCHOR'\n");
		return 2;
	}
	static const struct option opts[] = {
		{ "dn", required_argument, NULL, 'd' }, { "anchor", required_argument, NULL, 'a' },
		{ "state", required_argument, NULL, 's' }, { "limit", required_argument, NULL, 'n' }, { NULL, 0, NULL, 0 },
	};
	Loom__CsSearchRequest rq = LOOM__CS_SEARCH_REQUEST__INIT;
	argc--;
	argv++;
	optind = 0;
	int c;
	while ((c = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
		switch (c) {
		case 'd': rq.dn = optarg; break;
		case 'a': rq.anchor = optarg; break;
		case 's': rq.state = optarg; break;
		case 'n':
			if (ctl_parse_limit(optarg, &rq.limit) < 0)
				return 2;
			break;
		default: return 2;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "loomctl cs search: expected one AGENT\n");
		return 2;
	}
	rq.agent = argv[optind];
	Loom__CsSearchReply *r = (Loom__CsSearchReply *)ctl_ask_engine(ctl, &rq.base, &loom__cs_search_reply__descriptor, "cs search");
	if (r == NULL)
		return 1;
	if (ctl->json) {
		ctl_print_json(&r->base);
	} else {
		printf("%-28s %-44s %-22s %-16s %-8s %-8s\n", "ANCHOR", "DN", "STATE", "METAVERSE", "IMPORT", "EXPORT");
		for (size_t i = 0; i < r->n_objects; i++)
			print_cs(r->objects[i], false);
		if (r->truncated)
			printf("(more objects match: raise --limit)\n");
	}
	loom__cs_search_reply__free_unpacked(r, NULL);
	return 0;
}

static void print_mv(const Loom__MvShowReply *m)
{
	const Loom__MvObject *mv = m->object;
	char hex[17];
	mvid_text(hex, &mv->id);
	printf("metaverse %s  type %s  projected by %s\n", hex, mv->object_type, mv->projected_by);
	for (size_t i = 0; i < mv->n_attrs; i++) {
		loom_buf_t b = LOOM_BUF_INIT;
		values_text(&b, mv->attrs[i]->values, mv->attrs[i]->n_values);
		printf("  %-20s %-40s from %s\n", mv->attrs[i]->name, loom_buf_cstr(&b), mv->attrs[i]->agent);
		loom_buf_release(&b);
	}
	printf("  connectors:\n");
	for (size_t i = 0; i < m->n_connectors; i++)
		printf("    %-12s %-32s %s (%s)\n", m->connectors[i]->agent, m->connectors[i]->anchor, m->connectors[i]->dn,
		    m->connectors[i]->state);
}

static int mv_cmd(ctl_t *ctl, int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "show") == 0) {
		Loom__MvShowRequest rq = LOOM__MV_SHOW_REQUEST__INIT;
		rq.id = argv[2];
		Loom__MvShowReply *r = (Loom__MvShowReply *)ctl_ask_engine(ctl, &rq.base, &loom__mv_show_reply__descriptor, "mv show");
		if (r == NULL)
			return 1;
		if (ctl->json)
			ctl_print_json(&r->base);
		else
			print_mv(r);
		loom__mv_show_reply__free_unpacked(r, NULL);
		return 0;
	}
	if (argc < 3 || strcmp(argv[1], "search") != 0) {
		fprintf(stderr, "loomctl mv: expected 'search ATTR=VALUE [--type T] [--limit N]' or 'show ID'\n");
		return 2;
	}
	static const struct option opts[] = {
		{ "type", required_argument, NULL, 't' }, { "limit", required_argument, NULL, 'n' }, { NULL, 0, NULL, 0 },
	};
	Loom__MvSearchRequest rq = LOOM__MV_SEARCH_REQUEST__INIT;
	argc--;
	argv++;
	optind = 0;
	int c;
	while ((c = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
		switch (c) {
		case 't': rq.mv_type = optarg; break;
		case 'n':
			if (ctl_parse_limit(optarg, &rq.limit) < 0)
				return 2;
			break;
		default: return 2;
		}
	}
	if (optind + 1 != argc || strchr(argv[optind], '=') == NULL) {
		fprintf(stderr, "loomctl mv search: expected one ATTR=VALUE\n");
		return 2;
	}
	char *eq = strchr(argv[optind], '=');
	char *attr = loom_strndup(argv[optind], (size_t)(eq - argv[optind]));
	rq.attr = attr;
	rq.value = eq + 1;
	Loom__MvSearchReply *r = (Loom__MvSearchReply *)ctl_ask_engine(ctl, &rq.base, &loom__mv_search_reply__descriptor, "mv search");
	free(attr);
	if (r == NULL)
		return 1;
	if (ctl->json) {
		ctl_print_json(&r->base);
	} else {
		for (size_t i = 0; i < r->n_objects; i++)
			print_mv(r->objects[i]);
		if (r->n_objects == 0)
			printf("no metaverse object matches\n");
		if (r->truncated)
			printf("(more objects match: raise --limit)\n");
	}
	loom__mv_search_reply__free_unpacked(r, NULL);
	return 0;
}

int ctl_cs(ctl_t *ctl, int argc, char **argv) { return cs_cmd(ctl, argc, argv); }
int ctl_mv(ctl_t *ctl, int argc, char **argv) { return mv_cmd(ctl, argc, argv); }

int ctl_preview(ctl_t *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "delta", no_argument, NULL, 'd' }, { "full", no_argument, NULL, 'f' },
		{ "commit", no_argument, NULL, 'c' }, { NULL, 0, NULL, 0 },
	};
	Loom__PreviewRequest rq = LOOM__PREVIEW_REQUEST__INIT;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': rq.delta = true; break;
		case 'f': rq.delta = false; break;
		case 'c': rq.commit = true; break;
		default: return 2;
		}
	}
	if (optind + 2 != argc) {
		fprintf(stderr, "loomctl preview: expected AGENT ANCHOR (see loomctl preview --help)\n");
		return 2;
	}
	rq.agent = argv[optind];
	rq.anchor = argv[optind + 1];
	Loom__PreviewReply *r = (Loom__PreviewReply *)ctl_ask_engine(ctl, &rq.base, &loom__preview_reply__descriptor, "preview");
	if (r == NULL)
		return 1;
	if (ctl->json) {
		ctl_print_json(&r->base);
	} else {
		for (size_t i = 0; i < r->n_steps; i++)
			printf("%s\n", r->steps[i]);
	}
	int status = r->failed ? 3 : 0;
	loom__preview_reply__free_unpacked(r, NULL);
	return status;
}
