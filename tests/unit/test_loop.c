/* test_loop.c - lib/loom_loop.c: a reader's pending check is called with
 * its own argument (a bus client), not the handler's (the daemon), and
 * work it reports is dispatched without the socket being readable; timers
 * fire; an fd whose writer hung up without writing reaches its reader
 * (it was polled as an error and never dispatched: the loop spun). (The check once got the handler's argument: a daemon with a key
 * pair read those bytes as a non-empty inbox and spun.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <unistd.h>
#include <zmq.h>

#include "loom_loop.h"

typedef struct {
	int queued;                    /* work "in user space" */
	int checks;                    /* pending checks seen */
} inbox_t;

static void *want_arg;             /* the argument the pending check must get */
static int wrong_args;             /* checks that got another */

typedef struct {
	inbox_t *inbox;
	int handled;
} handler_t;

static bool pending(void *arg)
{
	if (arg != want_arg) {
		wrong_args++;
		return false;
	}
	inbox_t *in = arg;
	in->checks++;
	return in->queued > 0;
}

static int on_readable(loom_loop_t *loop, void *arg)
{
	handler_t *h = arg;
	if (h->inbox->queued > 0)
		h->inbox->queued--;
	if (++h->handled == 3)
		loom_loop_stop(loop);
	return 0;
}

/* A bound, so that a broken check fails the test instead of hanging it. */
static int give_up(loom_loop_t *loop, void *arg)
{
	(void)arg;
	loom_loop_stop(loop);
	return 0;
}

static int on_timer(loom_loop_t *loop, void *arg)
{
	int *n = arg;
	if (++*n == 2)
		loom_loop_stop(loop);
	return 0;
}

static void test_pending_arg(void **state)
{
	(void)state;
	void *ctx = zmq_ctx_new();
	void *s = zmq_socket(ctx, ZMQ_PAIR);
	assert_int_equal(zmq_bind(s, "inproc://test-loop"), 0);
	loom_loop_t *loop = loom_loop_new();
	handler_t h = { 0 };
	inbox_t in = { .queued = 3 };
	h.inbox = &in;
	loom_loop_add_socket(loop, s, on_readable, &h);
	loom_loop_set_pending(loop, s, pending, &in);
	loom_loop_add_timer(loop, 10000, 1, give_up, NULL);
	want_arg = &in;
	/* Nothing is ever sent to s: only the pending check can get the
	 * handler called, three times, and then the loop stops. */
	assert_int_equal(loom_loop_run(loop), 0);
	assert_int_equal(wrong_args, 0);
	assert_int_equal(h.handled, 3);
	assert_int_equal(in.queued, 0);
	assert_true(in.checks >= 3);
	loom_loop_destroy(&loop);
	zmq_close(s);
	zmq_ctx_term(ctx);
}

static void test_timer(void **state)
{
	(void)state;
	loom_loop_t *loop = loom_loop_new();
	int n = 0;
	loom_loop_add_timer(loop, 1, 0, on_timer, &n);
	assert_int_equal(loom_loop_run(loop), 0);
	assert_int_equal(n, 2);
	loom_loop_destroy(&loop);
}

typedef struct {
	int fd;
	int calls;
	int eof;
} hup_t;

static int on_hup(loom_loop_t *loop, void *arg)
{
	hup_t *h = arg;
	char c;
	h->calls++;
	if (read(h->fd, &c, 1) == 0) {
		h->eof = 1;
		loom_loop_remove_fd(loop, h->fd);
		loom_loop_stop(loop);
	}
	return 0;
}

static void test_hangup(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	close(p[1]); /* the writer goes without a byte: POLLHUP alone */
	loom_loop_t *loop = loom_loop_new();
	hup_t h = { .fd = p[0] };
	loom_loop_add_fd(loop, p[0], on_hup, &h);
	loom_loop_add_timer(loop, 10000, 1, give_up, NULL);
	assert_int_equal(loom_loop_run(loop), 0);
	assert_int_equal(h.eof, 1);
	assert_int_equal(h.calls, 1);
	loom_loop_destroy(&loop);
	close(p[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pending_arg),
		cmocka_unit_test(test_timer),
		cmocka_unit_test(test_hangup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
