/* loomctl_policy.c - loomctl request / requests / get / search: the policy
 * service (loom-workflow, service "workflow"). */
#include "loomctl.h"
#include "loom_alloc.h"
#include "policy.pb-c.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *const status_names[] = { "none", "validating", "authenticating", "authorizing", "committed",
	"post-processing", "completed", "denied", "failed", "canceled", "pending-approval", "post-processing-error" };
static const char *const op_names[] = { "none", "create", "delete", "read", "add", "remove", "modify", "reevaluate" };

const char *ctl_request_status(int s)
{
	return s >= 0 && s <= 11 ? status_names[s] : "unknown";
}

static const char *sname(int s)
{
	return ctl_request_status(s);
}

static const char *oname(int o)
{
	return o >= 0 && o <= 7 ? op_names[o] : "unknown";
}

void ctl_print_value(const Loom__Value *v)
{
	char t[40];
	switch (v->v_case) {
	case LOOM__VALUE__V_STR: printf("%s", v->str); break;
	case LOOM__VALUE__V_REF: printf("%s", v->ref); break;
	case LOOM__VALUE__V_INT: printf("%lld", (long long)v->int_); break;
	case LOOM__VALUE__V_BOOL: printf("%s", v->bool_ ? "true" : "false"); break;
	case LOOM__VALUE__V_TIME: {
		time_t s = (time_t)(v->time / 1000000);
		struct tm tm;
		gmtime_r(&s, &tm);
		strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%SZ", &tm);
		printf("%s", t);
		break;
	}
	case LOOM__VALUE__V_BIN:
		for (size_t i = 0; i < v->bin.len; i++)
			printf("%02x", v->bin.data[i]);
		break;
	default: break;
	}
}

static void print_request(const Loom__Request *rq)
{
	printf("request %s %s %s %s %s\n", rq->id, sname(rq->status), oname(rq->operation), rq->target_type,
	    rq->target_id);
	printf("  requester  %s\n", rq->requester);
	if (rq->origin[0])
		printf("  origin     %s\n", rq->origin);
	if (rq->reason[0])
		printf("  reason     %s\n", rq->reason);
	for (size_t i = 0; i < rq->n_changes; i++) {
		const Loom__RequestChange *c = rq->changes[i];
		printf("  change     %s%s", c->op == LOOM__REQUEST_CHANGE__OP__ADD ? "+" :
		    c->op == LOOM__REQUEST_CHANGE__OP__REMOVE ? "-" : "", c->attr);
		for (size_t j = 0; j < c->n_values; j++) {
			printf(j ? ", " : " = ");
			ctl_print_value(c->values[j]);
		}
		printf("\n");
	}
	for (size_t i = 0; i < rq->n_granting_mprs; i++)
		printf("  granted by %s\n", rq->granting_mprs[i]);
	if (rq->parent[0])
		printf("  parent     %s (made by its action workflow)\n", rq->parent);
	if (rq->cause[0])
		printf("  cause      %s\n", rq->cause);
	for (size_t i = 0; i < rq->n_workflows; i++)
		printf("  workflow   %s\n", rq->workflows[i]);
	static const char *const states[] = { "none", "pending", "waiting", "done", "failed", "canceled" };
	for (size_t i = 0; i < rq->n_instances; i++) {
		const Loom__WorkflowInstance *in = rq->instances[i];
		printf("  run        %s:%s", in->phase, in->workflow);
		if (strcasecmp(in->target_id, rq->target_id) != 0)
			printf(" for %s", in->target_id);
		printf(" %s", (unsigned)in->state < 6 ? states[in->state] : "unknown");
		if (in->state == LOOM__WORKFLOW_INSTANCE__STATE__WAITING)
			printf(" (%s%s)", strcmp(in->waiting_for, "external") == 0 ? "" : "approval ", in->waiting_for);
		if (in->note[0])
			printf(": %s", in->note);
		printf("\n");
	}
	for (size_t i = 0; i < rq->n_sets_before; i++)
		printf("  set before %s '%s' %s\n", rq->sets_before[i]->type, rq->sets_before[i]->name, rq->sets_before[i]->id);
	for (size_t i = 0; i < rq->n_sets_after; i++)
		printf("  set after  %s '%s' %s\n", rq->sets_after[i]->type, rq->sets_after[i]->name, rq->sets_after[i]->id);
	for (size_t i = 0; i < rq->n_transitions; i++) {
		const Loom__SetTransition *t = rq->transitions[i];
		printf("  %-10s %s '%s' %s: %s\n", t->joined ? "joined" : "left", t->set->type, t->set->name, t->set->id,
		    t->member_id);
	}
	if (rq->transitions_total > rq->n_transitions)
		printf("  ...        %llu set transitions in all\n", (unsigned long long)rq->transitions_total);
	for (size_t i = 0; i < rq->n_transition_mprs; i++) {
		const Loom__TransitionMatch *m = rq->transition_mprs[i];
		printf("  transition mpr '%s': %s %s '%s': %s", m->mpr, m->transition->joined ? "in" : "out",
		    m->transition->set->type, m->transition->set->name, m->transition->member_id);
		for (size_t j = 0; j < m->n_workflows; j++)
			printf("%s%s", j ? ", " : " -> ", m->workflows[j]);
		printf("\n");
	}
	if (rq->n_history)
		printf("  history:\n");
	for (size_t i = 0; i < rq->n_history; i++) {
		char t[40];
		ctl_fmt_time(t, sizeof t, rq->history[i]->at);
		printf("    %s  %-12s %-10s %s\n", t, rq->history[i]->status, rq->history[i]->who, rq->history[i]->note);
	}
}

/* Splits --as out of argv (in place); returns the remaining count, or -1. */
static int take_as(int argc, char **argv, const char **ret_as)
{
	int n = 0;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--as") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "loomctl: --as needs a requester (an ObjectID or sync)\n");
				return -1;
			}
			*ret_as = argv[++i];
		} else if (strncmp(argv[i], "--as=", 5) == 0) {
			*ret_as = argv[i] + 5;
		} else {
			argv[n++] = argv[i];
		}
	}
	return n;
}

static Loom__RequestChange *change_for(Loom__Request *rq, const char *attr, size_t alen, int op)
{
	for (size_t i = 0; i < rq->n_changes; i++)
		if ((int)rq->changes[i]->op == op && strlen(rq->changes[i]->attr) == alen &&
		    strncmp(rq->changes[i]->attr, attr, alen) == 0)
			return rq->changes[i];
	Loom__RequestChange *c = loom_malloc(sizeof *c);
	loom__request_change__init(c);
	c->attr = loom_strndup(attr, alen);
	c->op = op;
	rq->changes = loom_realloc(rq->changes, (rq->n_changes + 1) * sizeof *rq->changes);
	rq->changes[rq->n_changes++] = c;
	return c;
}

/* Parses ATTR=VALUE, +ATTR=VALUE, -ATTR=VALUE, -ATTR into rq's changes. */
static int parse_change(Loom__Request *rq, const char *arg, bool allow_ops)
{
	int op = LOOM__REQUEST_CHANGE__OP__REPLACE;
	const char *a = arg;
	if (allow_ops && (a[0] == '+' || a[0] == '-')) {
		op = a[0] == '+' ? LOOM__REQUEST_CHANGE__OP__ADD : LOOM__REQUEST_CHANGE__OP__REMOVE;
		a++;
	}
	const char *eq = strchr(a, '=');
	if ((eq == NULL && op != LOOM__REQUEST_CHANGE__OP__REMOVE) || eq == a || a[0] == '\0') {
		fprintf(stderr, "loomctl request: bad change '%s': expected ATTR=VALUE%s\n", arg,
		    allow_ops ? ", +ATTR=VALUE, -ATTR=VALUE or -ATTR" : "");
		return -1;
	}
	Loom__RequestChange *c = change_for(rq, a, eq ? (size_t)(eq - a) : strlen(a), op);
	if (eq && eq[1] != '\0') {
		Loom__Value *v = loom_malloc(sizeof *v);
		loom__value__init(v);
		v->v_case = LOOM__VALUE__V_STR;
		v->str = loom_strdup(eq + 1);
		c->values = loom_realloc(c->values, (c->n_values + 1) * sizeof *c->values);
		c->values[c->n_values++] = v;
	}
	return 0;
}

static int show_reply(ctl_t *ctl, Loom__RequestReply *r)
{
	if (r->request == NULL) {
		fprintf(stderr, "loomctl request: the reply carries no request\n");
		return 1;
	}
	if (ctl->json)
		ctl_print_json(&r->base);
	else
		print_request(r->request);
	int st = r->request->status;
	return st == LOOM__REQUEST__STATUS__DENIED || st == LOOM__REQUEST__STATUS__FAILED ? 3
	    : st == LOOM__REQUEST__STATUS__PENDING_APPROVAL || st == LOOM__REQUEST__STATUS__AUTHORIZING ||
	      st == LOOM__REQUEST__STATUS__AUTHENTICATING ? 4 : 0;
}

int ctl_request(ctl_t *ctl, int argc, char **argv)
{
	const char *as = "sync";
	argc = take_as(argc, argv, &as);
	if (argc < 0)
		return 2;
	if (argc < 3) {
		fprintf(stderr, "usage: loomctl request create TYPE ATTR=VALUE... | modify ID CHANGE... | delete ID | show ID\n");
		return 2;
	}
	const char *verb = argv[1];
	if (strcmp(verb, "show") == 0) {
		if (argc != 3) {
			fprintf(stderr, "usage: loomctl request show ID\n");
			return 2;
		}
		Loom__RequestGet g = LOOM__REQUEST_GET__INIT;
		g.id = argv[2];
		Loom__RequestReply *r = (Loom__RequestReply *)ctl_ask(ctl, "workflow", &g.base, &loom__request_reply__descriptor,
		    "request show");
		if (r == NULL)
			return 1;
		int rc = show_reply(ctl, r);
		protobuf_c_message_free_unpacked(&r->base, NULL);
		return rc == 3 || rc == 4 ? 0 : rc; /* showing a denied or waiting request succeeded */
	}
	Loom__Request *rq = loom_malloc(sizeof *rq);
	loom__request__init(rq);
	rq->requester = loom_strdup(as);
	int first;
	if (strcmp(verb, "create") == 0) {
		rq->operation = LOOM__REQUEST__OPERATION__CREATE;
		rq->target_type = loom_strdup(argv[2]);
		first = 3;
	} else if (strcmp(verb, "modify") == 0 || strcmp(verb, "delete") == 0) {
		rq->operation = verb[0] == 'd' ? LOOM__REQUEST__OPERATION__DELETE : LOOM__REQUEST__OPERATION__MODIFY;
		rq->target_id = loom_strdup(argv[2]);
		first = 3;
		if (verb[0] == 'd' && argc > 3) {
			fprintf(stderr, "usage: loomctl request delete ID\n");
			protobuf_c_message_free_unpacked(&rq->base, NULL);
			return 2;
		}
	} else {
		fprintf(stderr, "loomctl request: unknown action '%s': expected create, modify, delete or show\n", verb);
		protobuf_c_message_free_unpacked(&rq->base, NULL);
		return 2;
	}
	for (int i = first; i < argc; i++)
		if (parse_change(rq, argv[i], rq->operation == LOOM__REQUEST__OPERATION__MODIFY) < 0) {
			protobuf_c_message_free_unpacked(&rq->base, NULL);
			return 2;
		}
	if (rq->operation == LOOM__REQUEST__OPERATION__MODIFY && rq->n_changes) {
		bool all_add = true, all_remove = true;
		for (size_t i = 0; i < rq->n_changes; i++) {
			all_add = all_add && rq->changes[i]->op == LOOM__REQUEST_CHANGE__OP__ADD;
			all_remove = all_remove && rq->changes[i]->op == LOOM__REQUEST_CHANGE__OP__REMOVE;
		}
		rq->operation = all_add ? LOOM__REQUEST__OPERATION__ADD_VALUES
		    : all_remove ? LOOM__REQUEST__OPERATION__REMOVE_VALUES : LOOM__REQUEST__OPERATION__MODIFY;
	}
	Loom__RequestSubmit s = LOOM__REQUEST_SUBMIT__INIT;
	s.request = rq;
	Loom__RequestReply *r = (Loom__RequestReply *)ctl_ask(ctl, "workflow", &s.base, &loom__request_reply__descriptor,
	    "request");
	protobuf_c_message_free_unpacked(&rq->base, NULL);
	if (r == NULL)
		return 1;
	int rc = show_reply(ctl, r);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return rc;
}

int ctl_requests(ctl_t *ctl, int argc, char **argv)
{
	Loom__RequestList l = LOOM__REQUEST_LIST__INIT;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--status") == 0 && i + 1 < argc) {
			l.status = argv[++i];
		} else if ((strcmp(argv[i], "-n") == 0 || strcmp(argv[i], "--limit") == 0) && i + 1 < argc) {
			if (ctl_parse_limit(argv[++i], &l.limit) < 0)
				return 2;
		} else if (strcmp(argv[i], "--offset") == 0 && i + 1 < argc) {
			if (ctl_parse_offset(argv[++i], &l.offset) < 0)
				return 2;
		} else {
			fprintf(stderr, "usage: loomctl requests [--status S] [-n N] [--offset K]\n");
			return 2;
		}
	}
	Loom__RequestListReply *r = (Loom__RequestListReply *)ctl_ask(ctl, "workflow", &l.base,
	    &loom__request_list_reply__descriptor, "requests");
	if (r == NULL)
		return 1;
	if (ctl->json) {
		ctl_print_json(&r->base);
	} else {
		for (size_t i = 0; i < r->n_requests; i++) {
			const Loom__Request *rq = r->requests[i];
			printf("%s %s %s %s %s %s\n", rq->id, sname(rq->status), oname(rq->operation), rq->target_type,
			    rq->target_id[0] ? rq->target_id : "-", rq->requester);
		}
		if (r->truncated)
			printf("(more requests match: raise -n)\n");
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}

static void print_resource(const Loom__Resource *res)
{
	printf("ObjectID: %s\nObjectType: %s\n", res->object_id, res->object_type);
	for (size_t i = 0; i < res->n_attrs; i++)
		for (size_t j = 0; j < res->attrs[i]->n_values; j++) {
			printf("%s: ", res->attrs[i]->name);
			ctl_print_value(res->attrs[i]->values[j]);
			printf("\n");
		}
}

int ctl_get(ctl_t *ctl, int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: loomctl get TYPE ID\n");
		return 2;
	}
	Loom__ResourceGet g = LOOM__RESOURCE_GET__INIT;
	g.type = strcmp(argv[1], "-") == 0 ? (char *)"" : argv[1];
	g.id = argv[2];
	Loom__ResourceReply *r = (Loom__ResourceReply *)ctl_ask(ctl, "workflow", &g.base, &loom__resource_reply__descriptor,
	    "get");
	if (r == NULL)
		return 1;
	if (ctl->json)
		ctl_print_json(&r->base);
	else if (r->resource)
		print_resource(r->resource);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}

int ctl_search(ctl_t *ctl, int argc, char **argv)
{
	Loom__ResourceSearch s = LOOM__RESOURCE_SEARCH__INIT;
	const char *filter = NULL;
	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-n") == 0 || strcmp(argv[i], "--limit") == 0) && i + 1 < argc) {
			if (ctl_parse_limit(argv[++i], &s.limit) < 0)
				return 2;
		} else if (strcmp(argv[i], "--offset") == 0 && i + 1 < argc) {
			if (ctl_parse_offset(argv[++i], &s.offset) < 0)
				return 2;
		} else if (filter == NULL) {
			filter = argv[i];
		} else {
			fprintf(stderr, "usage: loomctl search 'XPATH' [-n N] [--offset K]\n");
			return 2;
		}
	}
	if (filter == NULL) {
		fprintf(stderr, "usage: loomctl search 'XPATH' [-n N] [--offset K]\n");
		return 2;
	}
	s.filter = (char *)filter;
	Loom__ResourceSearchReply *r = (Loom__ResourceSearchReply *)ctl_ask(ctl, "workflow", &s.base,
	    &loom__resource_search_reply__descriptor, "search");
	if (r == NULL)
		return 2;
	if (ctl->json) {
		ctl_print_json(&r->base);
	} else {
		for (size_t i = 0; i < r->n_resources; i++) {
			const Loom__Resource *res = r->resources[i];
			const char *dn = "";
			for (size_t k = 0; k < res->n_attrs; k++)
				if (strcmp(res->attrs[k]->name, "DisplayName") == 0 && res->attrs[k]->n_values &&
				    res->attrs[k]->values[0]->v_case == LOOM__VALUE__V_STR)
					dn = res->attrs[k]->values[0]->str;
			printf("%s %s %s\n", res->object_id, res->object_type, dn);
		}
		if (r->truncated)
			printf("(more resources match: raise -n)\n");
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}
