/* loomctl_approvals.c - loomctl approvals / approve / reject: the approvals
 * workflows of the policy service wait for (docs/workflows.md). */
#include "loomctl.h"
#include "loom_alloc.h"
#include "policy.pb-c.h"

#include <stdlib.h>
#include <string.h>

static const char *state_name(int s)
{
	static const char *const n[] = { "none", "pending", "approved", "rejected", "expired", "canceled" };
	return s >= 0 && s <= 5 ? n[s] : "unknown";
}

static void print_approval(const Loom__Approval *a)
{
	char c[40], d[40];
	ctl_fmt_time(c, sizeof c, a->created_at);
	ctl_fmt_time(d, sizeof d, a->deadline);
	printf("%s %s %s expires %s\n", a->id, state_name(a->state), c, a->deadline ? d : "never");
	printf("  asks       %s\n", a->summary);
	printf("  request    %s (workflow %s)\n", a->request_id, a->workflow);
	printf("  requester  %s\n", a->requester);
	printf("  approvers ");
	for (size_t i = 0; i < a->n_approvers; i++)
		printf("%s %s", i ? "," : "", a->approvers[i]);
	printf(" (%s)\n", a->threshold == 0 ? "every one must approve" : a->threshold == 1 ? "one is enough"
	    : "several must approve");
	if (a->escalated) {
		printf("  escalated ");
		for (size_t i = 0; i < a->n_escalation; i++)
			printf("%s %s", i ? "," : "", a->escalation[i]);
		printf("\n");
	}
	for (size_t i = 0; i < a->n_responses; i++) {
		char t[40];
		ctl_fmt_time(t, sizeof t, a->responses[i]->at);
		printf("  %-10s %s %s%s%s\n", a->responses[i]->approved ? "approved" : "rejected", t,
		    a->responses[i]->approver, a->responses[i]->reason[0] ? ": " : "", a->responses[i]->reason);
	}
}

int ctl_approvals(ctl_t *ctl, int argc, char **argv)
{
	Loom__ApprovalList l = LOOM__APPROVAL_LIST__INIT;
	for (int i = 1; i < argc; i++) {
		const char *v;
		if (strcmp(argv[i], "--all") == 0) {
			l.all = true;
		} else if (strncmp(argv[i], "--for", 5) == 0 && (argv[i][5] == '\0' || argv[i][5] == '=')) {
			if ((v = ctl_option_value("approvals", argc, argv, &i, "--for", 5)) == NULL)
				return 2;
			l.approver = (char *)v;
		} else if ((strcmp(argv[i], "-n") == 0 || strcmp(argv[i], "--limit") == 0) && i + 1 < argc) {
			if (ctl_parse_limit(argv[++i], &l.limit) < 0)
				return 2;
		} else {
			fprintf(stderr, "usage: loomctl approvals [--for PERSON] [--all] [-n N]\n");
			return 2;
		}
	}
	Loom__ApprovalListReply *r = (Loom__ApprovalListReply *)ctl_ask(ctl, "workflow", &l.base,
	    &loom__approval_list_reply__descriptor, "approvals");
	if (r == NULL)
		return 1;
	if (ctl->json) {
		ctl_print_json(&r->base);
	} else {
		for (size_t i = 0; i < r->n_approvals; i++)
			print_approval(r->approvals[i]);
		if (r->truncated)
			printf("(more approvals: raise -n)\n");
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}

static int decide(ctl_t *ctl, int argc, char **argv, bool approve)
{
	const char *cmd = approve ? "approve" : "reject";
	Loom__ApprovalRespond r = LOOM__APPROVAL_RESPOND__INIT;
	r.approved = approve;
	const char *id = NULL;
	for (int i = 1; i < argc; i++) {
		const char *v;
		if (strncmp(argv[i], "--as", 4) == 0 && (argv[i][4] == '\0' || argv[i][4] == '=')) {
			if ((v = ctl_option_value(cmd, argc, argv, &i, "--as", 4)) == NULL)
				return 2;
			r.approver = (char *)v;
		} else if (strncmp(argv[i], "--reason", 8) == 0 && (argv[i][8] == '\0' || argv[i][8] == '=')) {
			if ((v = ctl_option_value(cmd, argc, argv, &i, "--reason", 8)) == NULL)
				return 2;
			r.reason = (char *)v;
		} else if (id == NULL && argv[i][0] != '-') {
			id = argv[i];
		} else {
			id = NULL;
			break;
		}
	}
	if (id == NULL || r.approver[0] == '\0') {
		fprintf(stderr, "usage: loomctl %s ID --as PERSON [--reason TEXT]\n", cmd);
		return 2;
	}
	r.id = (char *)id;
	Loom__ApprovalReply *rep = (Loom__ApprovalReply *)ctl_ask(ctl, "workflow", &r.base,
	    &loom__approval_reply__descriptor, cmd);
	if (rep == NULL)
		return 1;
	if (ctl->json) {
		ctl_print_json(&rep->base);
	} else if (rep->approval) {
		print_approval(rep->approval);
		if (rep->request)
			printf("request %s %s\n", rep->request->id, ctl_request_status(rep->request->status));
	}
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	return 0;
}

int ctl_approve(ctl_t *ctl, int argc, char **argv)
{
	return decide(ctl, argc, argv, true);
}

int ctl_reject(ctl_t *ctl, int argc, char **argv)
{
	return decide(ctl, argc, argv, false);
}
