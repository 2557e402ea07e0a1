/* test_workflow_run.c - workflow instances on requests (workflow_run.c,
 * workflow_approval.c, workflow_activities.c), through the real pipeline and
 * store without a bus:
 *   - an approval every approver of a set must give: pending after one,
 *     committed after the other; a rejection denies and leaves the target;
 *   - an approval whose deadline passes expires: denied;
 *   - a waiting approval survives closing and opening the store;
 *   - action workflows of set-transition MPRs that feed each other stop at
 *     the depth limit instead of looping;
 *   - table: what approving refuses (no such approval, a stranger, twice). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "workflow_run.h"
#include "loom_alloc.h"
#include "loom_log.h"

static char dir[] = "/tmp/test_workflow_run.XXXXXX";
static wf_t W;

#include "wf_test_fixture.h"

static const char *const policy =
    "attributes:\n"
    "  - { name: AccountName, type: string }\n"
    "  - { name: JobTitle, type: string }\n"
    "  - { name: Manager, type: reference }\n"
    "  - { name: Email, type: string }\n"
    "  - { name: ExplicitMember, type: reference, multi: true }\n"
    "  - { name: ComputedMember, type: reference, multi: true }\n"
    "  - { name: Filter, type: string }\n"
    "types:\n"
    "  - name: Person\n"
    "    bindings: [ { attribute: AccountName, required: true }, { attribute: JobTitle }, { attribute: Manager },\n"
    "                { attribute: Email } ]\n"
    "  - name: Set\n"
    "    bindings: [ { attribute: ExplicitMember }, { attribute: ComputedMember }, { attribute: Filter } ]\n"
    "mprs:\n"
    "  - name: own title, both approvers\n"
    "    relative_to_target: ObjectID\n"
    "    operations: [modify]\n"
    "    attributes: [JobTitle]\n"
    "    authz_workflows: [board]\n"
    "  - name: own email, quick approval\n"
    "    relative_to_target: ObjectID\n"
    "    operations: [modify]\n"
    "    attributes: [Email]\n"
    "    authz_workflows: [quick]\n"
    "transition_mprs:\n"
    "  - { name: ping, set: Ping, transition: in, action_workflows: [to-pong] }\n"
    "  - { name: pong, set: Pong, transition: in, action_workflows: [to-ping] }\n";

static const char *const workflows =
    "workflows:\n"
    "  - name: board\n"
    "    kind: authz\n"
    "    activities:\n"
    "      - { type: approval, approvers: ['set:Board'], threshold: all }\n"
    "  - name: quick\n"
    "    kind: authz\n"
    "    activities:\n"
    "      - { type: approval, approvers: ['//Target/Manager'], timeout: 200ms }\n"
    "  - name: to-pong\n"
    "    kind: action\n"
    "    activities:\n"
    "      - { type: function, expr: '\"pong\"', destination: //Target/JobTitle }\n"
    "  - name: to-ping\n"
    "    kind: action\n"
    "    activities:\n"
    "      - { type: function, expr: '\"ping\"', destination: //Target/JobTitle }\n";

static void h_open_wf(bool with_workflows)
{
	char *err = NULL;
	h_open();
	if (with_workflows) {
		W.defs = loom_calloc(1, sizeof *W.defs);
		if (wf_defs_load(dir, NULL, &W.policy, W.defs, &err) < 0 || wf_defs_check_store(&W, &err) < 0)
			fail_msg("workflows: %s", err);
		if (wf_run_open(&W, &err) < 0 || wf_requests_recover(&W, &err) < 0)
			fail_msg("run: %s", err);
	}
}

static void h_close_wf(void)
{
	wf_run_close(&W);
	if (W.defs) {
		wf_defs_release(W.defs);
		free(W.defs);
	}
	h_close();
}

/* Submits (changes "ATTR=VALUE"), runs what it queued; returns the request's id
 * and its status through *ret_status. */
static char *submit(const char *as, Loom__Request__Operation op, const char *type, const char *target, const char *change,
    int *ret_status)
{
	Loom__Request in = LOOM__REQUEST__INIT;
	in.requester = (char *)as;
	in.operation = op;
	in.target_type = (char *)(type ? type : "");
	in.target_id = (char *)(target ? target : "");
	if (change) { /* the service takes the changes (wf_request_submit moves them) */
		const char *eq = strchr(change, '=');
		Loom__RequestChange *ch = loom_malloc(sizeof *ch);
		loom__request_change__init(ch);
		ch->attr = loom_strndup(change, (size_t)(eq - change));
		ch->values = loom_calloc(1, sizeof *ch->values);
		ch->values[0] = wf_value_str(LOOM__VALUE__V_STR, eq + 1);
		ch->n_values = 1;
		in.changes = loom_calloc(1, sizeof *in.changes);
		in.changes[0] = ch;
		in.n_changes = 1;
	}
	char *err = NULL;
	Loom__Request *rq = wf_request_submit(&W, &in, &err);
	if (rq == NULL)
		fail_msg("submit: %s", err);
	free(in.changes);
	wf_run_drain(&W);
	char *id = loom_strdup(op == LOOM__REQUEST__OPERATION__CREATE ? rq->target_id : rq->id);
	protobuf_c_message_free_unpacked(&rq->base, NULL);
	if (ret_status)
		*ret_status = 0;
	if (op != LOOM__REQUEST__OPERATION__CREATE && ret_status) {
		Loom__Request *now;
		const char *e;
		assert_int_equal(wf_req_get(&W, id, &now, &e), 1);
		*ret_status = now->status;
		protobuf_c_message_free_unpacked(&now->base, NULL);
	}
	return id;
}

static int status_of(const char *request_id)
{
	Loom__Request *rq;
	const char *e;
	assert_int_equal(wf_req_get(&W, request_id, &rq, &e), 1);
	int s = rq->status;
	protobuf_c_message_free_unpacked(&rq->base, NULL);
	return s;
}

static char *attr_of(const char *id, const char *name)
{
	Loom__Resource *r;
	const char *e;
	assert_int_equal(wf_res_get_by_id(&W, id, &r, &e), 1);
	const Loom__Attr *a = wf_res_attr(r, name);
	char *s = a && a->n_values ? wf_value_text(a->values[0]) : loom_strdup("");
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return s;
}

static void assert_attr(const char *id, const char *name, const char *want)
{
	char *got = attr_of(id, name);
	if (strcmp(got, want) != 0)
		fail_msg("%s of %s is '%s', want '%s'", name, id, got, want);
	free(got);
}

/* The id of the pending approval of request_id (the caller frees it). */
static char *approval_of(const char *request_id)
{
	Loom__ApprovalList l = LOOM__APPROVAL_LIST__INIT;
	Loom__ApprovalListReply r = LOOM__APPROVAL_LIST_REPLY__INIT;
	char *err = NULL;
	assert_int_equal(wf_approval_list(&W, &l, &r, &err), 0);
	char *id = NULL;
	for (size_t i = 0; i < r.n_approvals; i++) {
		if (id == NULL && strcmp(r.approvals[i]->request_id, request_id) == 0)
			id = loom_strdup(r.approvals[i]->id);
		protobuf_c_message_free_unpacked(&r.approvals[i]->base, NULL);
	}
	free(r.approvals);
	return id;
}

/* Decides; returns 0, or -1 with the refusal in *ret_error. */
static int decide(const char *id, const char *who, bool yes, char **ret_error)
{
	Loom__ApprovalRespond r = LOOM__APPROVAL_RESPOND__INIT;
	r.id = (char *)id;
	r.approver = (char *)who;
	r.approved = yes;
	r.reason = (char *)"because";
	Loom__Approval *a = NULL;
	int code;
	char *err = NULL;
	int rc = wf_approval_respond(&W, &r, &a, &err, &code);
	if (rc == 0)
		protobuf_c_message_free_unpacked(&a->base, NULL);
	if (ret_error)
		*ret_error = err;
	else
		free(err);
	wf_run_drain(&W);
	return rc;
}

static char *A1, *A2, *EMP;

static void people(void)
{
	A1 = submit("sync", LOOM__REQUEST__OPERATION__CREATE, "Person", NULL, "AccountName=a1", NULL);
	A2 = submit("sync", LOOM__REQUEST__OPERATION__CREATE, "Person", NULL, "AccountName=a2", NULL);
	EMP = submit("sync", LOOM__REQUEST__OPERATION__CREATE, "Person", NULL, "AccountName=emp", NULL);
	char *c = loom_sprintf("Manager=%s", A1);
	free(submit("sync", LOOM__REQUEST__OPERATION__MODIFY, NULL, EMP, c, NULL));
	free(c);
}

static char *make_board(void)
{
	Loom__Request in = LOOM__REQUEST__INIT;
	in.requester = (char *)"sync";
	in.operation = LOOM__REQUEST__OPERATION__CREATE;
	in.target_type = (char *)"Set";
	Loom__RequestChange *c1 = loom_malloc(sizeof *c1), *c2 = loom_malloc(sizeof *c2);
	loom__request_change__init(c1);
	loom__request_change__init(c2);
	c1->attr = loom_strdup("DisplayName");
	c1->values = loom_calloc(1, sizeof *c1->values);
	c1->values[c1->n_values++] = wf_value_str(LOOM__VALUE__V_STR, "Board");
	c2->attr = loom_strdup("ExplicitMember");
	c2->values = loom_calloc(2, sizeof *c2->values);
	c2->values[c2->n_values++] = wf_value_str(LOOM__VALUE__V_STR, A1);
	c2->values[c2->n_values++] = wf_value_str(LOOM__VALUE__V_STR, A2);
	in.changes = loom_calloc(2, sizeof *in.changes);
	in.changes[0] = c1;
	in.changes[1] = c2;
	in.n_changes = 2;
	char *err = NULL;
	Loom__Request *rq = wf_request_submit(&W, &in, &err);
	assert_non_null(rq);
	assert_int_equal(rq->status, LOOM__REQUEST__STATUS__COMPLETED);
	char *id = loom_strdup(rq->target_id);
	protobuf_c_message_free_unpacked(&rq->base, NULL);
	free(in.changes);
	return id;
}

static void test_approvals(void **state)
{
	(void)state;
	/* a store with the Sets the workflows name, then the workflows */
	h_open_wf(false);
	people();
	free(make_board());
	char *c = loom_sprintf("DisplayName=Ping");
	free(submit("sync", LOOM__REQUEST__OPERATION__CREATE, "Set", NULL, c, NULL));
	free(c);
	h_close_wf();
	write_file("workflows/w.yaml", workflows);
	h_open_wf(true);

	/* every board member must approve */
	int st;
	char *r1 = submit(EMP, LOOM__REQUEST__OPERATION__MODIFY, NULL, EMP, "JobTitle=Chair", &st);
	assert_int_equal(st, LOOM__REQUEST__STATUS__PENDING_APPROVAL);
	char *ap = approval_of(r1);
	assert_non_null(ap);
	assert_int_equal(decide(ap, A1, true, NULL), 0);
	assert_int_equal(status_of(r1), LOOM__REQUEST__STATUS__PENDING_APPROVAL);
	assert_attr(EMP, "JobTitle", "");
	/* the store closed and opened while it waits */
	h_close_wf();
	h_open_wf(true);
	assert_int_equal(decide(ap, "a2", true, NULL), 0); /* by AccountName */
	assert_int_equal(status_of(r1), LOOM__REQUEST__STATUS__COMPLETED);
	assert_attr(EMP, "JobTitle", "Chair");
	free(ap);
	free(r1);

	/* one rejection denies */
	char *r2 = submit(EMP, LOOM__REQUEST__OPERATION__MODIFY, NULL, EMP, "JobTitle=Emperor", &st);
	ap = approval_of(r2);
	assert_int_equal(decide(ap, A2, false, NULL), 0);
	assert_int_equal(status_of(r2), LOOM__REQUEST__STATUS__DENIED);
	assert_attr(EMP, "JobTitle", "Chair");

	/* what approving refuses */
	static const struct {
		const char *label;
		int which;             /* 0 the decided approval, 1 a pending one, 2 none */
		int who;               /* 0 A1, 1 EMP (no approver), 2 nobody */
		const char *want;
	} refuse[] = {
		{ "decided already", 0, 0, "is rejected already" },
		{ "no approver", 1, 1, "is not an approver of approval" },
		{ "no such approval", 2, 0, "no approval 'nosuchid'" },
		{ "no such person", 1, 2, "approver 'nobody' is no person" },
		{ "twice by the same approver", 1, 0, "has approved approval" },
	};
	char *r3 = submit(EMP, LOOM__REQUEST__OPERATION__MODIFY, NULL, EMP, "JobTitle=Treasurer", &st);
	char *ap3 = approval_of(r3);
	assert_int_equal(decide(ap3, A1, true, NULL), 0);
	for (size_t i = 0; i < sizeof refuse / sizeof refuse[0]; i++) {
		const char *id = refuse[i].which == 0 ? ap : refuse[i].which == 1 ? ap3 : "nosuchid";
		const char *who = refuse[i].who == 0 ? A1 : refuse[i].who == 1 ? EMP : "nobody";
		char *err = NULL;
		if (decide(id, who, true, &err) == 0)
			fail_msg("%s: accepted", refuse[i].label);
		if (strstr(err, refuse[i].want) == NULL)
			fail_msg("%s: '%s' does not say '%s'", refuse[i].label, err, refuse[i].want);
		free(err);
	}
	free(ap);
	free(ap3);
	free(r2);
	free(r3);

	/* expiry: the deadline passes, the tick expires it */
	char *r4 = submit(EMP, LOOM__REQUEST__OPERATION__MODIFY, NULL, EMP, "Email=e@example.org", &st);
	assert_int_equal(st, LOOM__REQUEST__STATUS__PENDING_APPROVAL);
	for (int i = 0; i < 100 && status_of(r4) == LOOM__REQUEST__STATUS__PENDING_APPROVAL; i++) {
		struct timespec ts = { 0, 20 * 1000000 };
		nanosleep(&ts, NULL);
		wf_run_tick(&W);
		wf_run_drain(&W);
	}
	assert_int_equal(status_of(r4), LOOM__REQUEST__STATUS__DENIED);
	assert_attr(EMP, "Email", "");
	free(r4);
	h_close_wf();
}

static void test_depth(void **state)
{
	(void)state;
	/* Ping: JobTitle ping -> the workflow writes pong; Pong: pong -> ping ... */
	h_open_wf(true);
	char *pong = submit("sync", LOOM__REQUEST__OPERATION__CREATE, "Set", NULL, "DisplayName=Pong", NULL);
	free(pong);
	h_close_wf();
	h_open_wf(true);
	/* the sets' filters */
	Loom__Resource *r;
	char *ids[2] = { NULL, NULL };
	const char *names[2] = { "Ping", "Pong" };
	for (int k = 0; k < 2; k++) {
		loom_xpath_t *x = NULL;
		loom_xpath_error_t xe = { 0 };
		loom_xpath_result_t res;
		loom_xpath_result_init(&res);
		char *f = loom_sprintf("/Set[DisplayName = '%s']", names[k]);
		assert_int_equal(loom_xpath_compile(f, NULL, &x, &xe), 0);
		assert_int_equal(loom_xpath_eval(x, &W.xp, NULL, &res, &xe), 0);
		assert_int_equal(res.n, 1);
		const char *e;
		assert_int_equal(wf_res_get(&W, res.rids[0], &r, &e), 1);
		ids[k] = loom_strdup(r->object_id);
		protobuf_c_message_free_unpacked(&r->base, NULL);
		loom_xpath_result_release(&res);
		loom_xpath_destroy(&x);
		free(f);
		char *c = loom_sprintf("Filter=/Person[JobTitle = '%s']", k == 0 ? "ping" : "pong");
		free(submit("sync", LOOM__REQUEST__OPERATION__MODIFY, NULL, ids[k], c, NULL));
		free(c);
	}
	char *p = submit("sync", LOOM__REQUEST__OPERATION__CREATE, "Person", NULL, "AccountName=ball", NULL);
	int st;
	char *r1 = submit("sync", LOOM__REQUEST__OPERATION__MODIFY, NULL, p, "JobTitle=ping", &st);
	/* the chain ran until the depth limit, then stopped */
	size_t deepest = 0, errors = 0;
	loom_iter_t *it = loom_iter_new(W.store, W.cf_req);
	for (loom_iter_seek_first(it); loom_iter_valid(it); loom_iter_next(it)) {
		size_t len;
		const void *v = loom_iter_value(it, &len);
		Loom__Request *rq = loom__request__unpack(NULL, len, v);
		if (rq->depth > deepest)
			deepest = rq->depth;
		errors += rq->status == LOOM__REQUEST__STATUS__POST_PROCESSING_ERROR;
		protobuf_c_message_free_unpacked(&rq->base, NULL);
	}
	loom_iter_destroy(&it);
	assert_int_equal(deepest, 8);
	assert_int_equal(errors, 1);
	free(p);
	free(r1);
	free(ids[0]);
	free(ids[1]);
	h_close_wf();
}

static int setup(void **state)
{
	(void)state;
	loom_log_set_level(LOOM_LOG_ERROR);
	assert_non_null(mkdtemp(dir));
	char *w = loom_sprintf("%s/workflows", dir);
	mkdir(w, 0755);
	free(w);
	write_file("policy.yaml", policy);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(A1);
	free(A2);
	free(EMP);
	char *c = loom_sprintf("rm -rf %s", dir);
	int rc = system(c);
	free(c);
	return rc == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_approvals),
		cmocka_unit_test(test_depth),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
