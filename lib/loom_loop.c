/* loom_loop.c - zmq_poll-based reactor with timers. */
#include "loom_loop.h"
#include "loom_alloc.h"
#include "loom_envelope.h" /* loom_mono_ms */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

typedef struct reader {
	void *socket;                  /* ZeroMQ socket, or NULL for an fd */
	int fd;                        /* file descriptor when socket is NULL */
	loom_loop_fn *fn;              /* called when readable */
	loom_loop_pending_fn *pending; /* optional user-space readiness check */
	void *pending_arg;             /* its argument */
	void *arg;                     /* handler argument */
	bool dead;                     /* removed during dispatch; reaped after */
} reader_t;

typedef struct timer {
	int id;                        /* handle for cancel */
	long long interval;            /* milliseconds */
	unsigned times;                /* remaining calls, 0 = forever */
	long long when;                /* next due time, monotonic ms */
	loom_loop_fn *fn;              /* called when due */
	void *arg;                     /* handler argument */
	bool dead;                     /* cancelled; reaped after dispatch */
} timer_t_;

struct loom_loop {
	reader_t *readers;             /* registered readers */
	size_t nreaders;               /* how many */
	timer_t_ *timers;              /* registered timers */
	size_t ntimers;                /* how many */
	int next_timer_id;             /* last id handed out */
	bool stopped;                  /* loom_loop_stop was called */
	zmq_pollitem_t *items;         /* poll set, rebuilt when readers change */
	size_t items_cap;              /* allocated items */
};

loom_loop_t *loom_loop_new(void)
{
	return loom_calloc(1, sizeof(loom_loop_t));
}

void loom_loop_destroy(loom_loop_t **loop_p)
{
	loom_loop_t *l = *loop_p;
	if (l == NULL)
		return;
	free(l->readers);
	free(l->timers);
	free(l->items);
	free(l);
	*loop_p = NULL;
}

static void add_reader(loom_loop_t *l, void *socket, int fd, loom_loop_fn *fn, void *arg)
{
	l->readers = loom_realloc(l->readers, (l->nreaders + 1) * sizeof *l->readers);
	reader_t *r = &l->readers[l->nreaders++];
	memset(r, 0, sizeof *r);
	r->socket = socket;
	r->fd = fd;
	r->fn = fn;
	r->arg = arg;
}

void loom_loop_add_socket(loom_loop_t *l, void *socket, loom_loop_fn *fn, void *arg)
{
	add_reader(l, socket, -1, fn, arg);
}

void loom_loop_add_fd(loom_loop_t *l, int fd, loom_loop_fn *fn, void *arg)
{
	add_reader(l, NULL, fd, fn, arg);
}

void loom_loop_set_pending(loom_loop_t *l, void *socket, loom_loop_pending_fn *pending, void *arg)
{
	for (size_t i = 0; i < l->nreaders; i++)
		if (l->readers[i].socket == socket && !l->readers[i].dead) {
			l->readers[i].pending = pending;
			l->readers[i].pending_arg = arg;
		}
}

void loom_loop_remove_socket(loom_loop_t *l, void *socket)
{
	for (size_t i = 0; i < l->nreaders; i++)
		if (l->readers[i].socket == socket)
			l->readers[i].dead = true;
}

void loom_loop_remove_fd(loom_loop_t *l, int fd)
{
	for (size_t i = 0; i < l->nreaders; i++)
		if (l->readers[i].socket == NULL && l->readers[i].fd == fd)
			l->readers[i].dead = true;
}

int loom_loop_add_timer(loom_loop_t *l, long long interval_ms, unsigned times,
    loom_loop_fn *fn, void *arg)
{
	l->timers = loom_realloc(l->timers, (l->ntimers + 1) * sizeof *l->timers);
	timer_t_ *t = &l->timers[l->ntimers++];
	memset(t, 0, sizeof *t);
	t->id = ++l->next_timer_id;
	t->interval = interval_ms > 0 ? interval_ms : 1;
	t->times = times;
	t->when = loom_mono_ms() + t->interval;
	t->fn = fn;
	t->arg = arg;
	return t->id;
}

void loom_loop_cancel_timer(loom_loop_t *l, int id)
{
	for (size_t i = 0; i < l->ntimers; i++)
		if (l->timers[i].id == id)
			l->timers[i].dead = true;
}

void loom_loop_stop(loom_loop_t *l)
{
	l->stopped = true;
}

static void reap(loom_loop_t *l)
{
	size_t j = 0;
	for (size_t i = 0; i < l->nreaders; i++)
		if (!l->readers[i].dead)
			l->readers[j++] = l->readers[i];
	l->nreaders = j;
	j = 0;
	for (size_t i = 0; i < l->ntimers; i++)
		if (!l->timers[i].dead)
			l->timers[j++] = l->timers[i];
	l->ntimers = j;
}

int loom_loop_run(loom_loop_t *l)
{
	l->stopped = false;
	while (!l->stopped) {
		reap(l);
		long long now = loom_mono_ms();
		long timeout = -1;
		for (size_t i = 0; i < l->ntimers; i++) {
			long long wait = l->timers[i].when - now;
			if (wait < 0)
				wait = 0;
			if (timeout < 0 || wait < timeout)
				timeout = (long)wait;
		}
		size_t n = l->nreaders;
		bool pending_any = false;
		if (n > l->items_cap) {
			l->items_cap = n * 2;
			l->items = loom_realloc(l->items, l->items_cap * sizeof *l->items);
		}
		for (size_t i = 0; i < n; i++) {
			reader_t *r = &l->readers[i];
			l->items[i].socket = r->socket;
			l->items[i].fd = r->fd;
			l->items[i].events = ZMQ_POLLIN;
			l->items[i].revents = 0;
			if (r->pending && r->pending(r->pending_arg))
				pending_any = true;
		}
		if (pending_any)
			timeout = 0;
		int rc = zmq_poll(l->items, (int)n, timeout);
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		/* Readers added by a handler are not in items: only dispatch the first n. */
		for (size_t i = 0; i < n && !l->stopped; i++) {
			reader_t *r = &l->readers[i];
			if (r->dead)
				continue;
			/* An fd's hang-up or error without data (a pipe whose writer
			 * exited, a peer that closed) is ZMQ_POLLERR: the reader is
			 * called, its read sees the end or the error (else zmq_poll
			 * would return at once, again and again). */
			bool ready = (l->items[i].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) ||
			    (r->pending && r->pending(r->pending_arg));
			if (ready && r->fn(l, r->arg) < 0)
				l->stopped = true;
		}
		now = loom_mono_ms();
		size_t nt = l->ntimers;
		for (size_t i = 0; i < nt && !l->stopped; i++) {
			timer_t_ *t = &l->timers[i];
			if (t->dead || t->when > now)
				continue;
			t->when = now + t->interval;
			if (t->times && --t->times == 0)
				t->dead = true;
			loom_loop_fn *fn = t->fn;
			void *arg = t->arg;
			/* fn may add timers (realloc): t must not be used after this. */
			if (fn(l, arg) < 0)
				l->stopped = true;
		}
	}
	reap(l);
	return 0;
}
