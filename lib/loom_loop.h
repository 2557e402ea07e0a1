/* loom_loop.h - the event loop every Loom process runs (CZMQ zloop's idea).
 *
 * Readers are ZeroMQ sockets or file descriptors with a handler called when
 * they are readable; timers call a handler every interval. A handler returns
 * 0 to go on or -1 to end loom_loop_run(). A reader may also have a pending
 * check: when it says work is already queued in user space (a bus client's
 * inbox), the loop calls the handler without waiting for the socket.
 */
#ifndef LOOM_LOOP_H
#define LOOM_LOOP_H

#include <stdbool.h>

typedef struct loom_loop loom_loop_t;
typedef int loom_loop_fn(loom_loop_t *loop, void *arg);
typedef bool loom_loop_pending_fn(void *arg);

loom_loop_t *loom_loop_new(void);
/* Frees the loop (not the sockets); NULL allowed. */
void loom_loop_destroy(loom_loop_t **loop_p);

/* Calls fn(loop, arg) whenever the ZeroMQ socket has input. */
void loom_loop_add_socket(loom_loop_t *loop, void *socket, loom_loop_fn *fn, void *arg);
/* Calls fn(loop, arg) whenever fd is readable. */
void loom_loop_add_fd(loom_loop_t *loop, int fd, loom_loop_fn *fn, void *arg);
/* Adds a pending check to the reader registered for socket: pending(arg)
 * (arg is the check's own, e.g. the bus client, not the handler's). */
void loom_loop_set_pending(loom_loop_t *loop, void *socket, loom_loop_pending_fn *pending, void *arg);
/* Removes the reader for socket (or fd when socket is NULL). */
void loom_loop_remove_socket(loom_loop_t *loop, void *socket);
void loom_loop_remove_fd(loom_loop_t *loop, int fd);

/* Calls fn every interval_ms, times times (0 = forever). Returns a timer id. */
int loom_loop_add_timer(loom_loop_t *loop, long long interval_ms, unsigned times,
    loom_loop_fn *fn, void *arg);
void loom_loop_cancel_timer(loom_loop_t *loop, int id);

/* Runs until a handler returns -1 or loom_loop_stop() is called. Returns 0,
 * or -1 if polling itself failed (errno set). EINTR is not a failure. */
int loom_loop_run(loom_loop_t *loop);
/* Makes loom_loop_run return after the current handler. */
void loom_loop_stop(loom_loop_t *loop);

#endif
