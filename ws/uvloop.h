/* ws/uvloop.h - a libwebsockets context on a libuv loop (epoll), served by
 * a thread of its own, fed by a queue other threads post to (see
 * uvloop.c). The live websockets run on one. ws/ only.
 */
#ifndef TALLY_WS_UVLOOP_H
#define TALLY_WS_UVLOOP_H

#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>

struct xmsg;
struct uvloop;
struct watchdog;

struct uvloop_config {
	const struct lws_protocols *protocols; /* NULL-terminated, outlive the loop */
	void *user;                            /* lws_context_user() */
	unsigned fd_limit;                     /* the process's descriptor limit */
	const char *name;                      /* vhost name, for logs */
	/* On the loop's thread: */
	void (*on_msg)(void *user, struct xmsg *m);   /* each posted message (then freed) */
	void (*on_tick)(void *user, uint64_t now_ns); /* every tick_ms */
	void (*on_stop)(void *user);                  /* once, when asked to stop, before the
	                                               * context goes: close the connections */
	int tick_ms;
	struct watchdog *watchdog; /* watches the loop (a beat per tick and
	                            * per wakeup); may be NULL */
};

/* Create the loop and the context (no listening socket: connections come
 * through uvloop_adopt). Returns 0 or -errno with a message in err. */
int uvloop_new(const struct uvloop_config *cfg, struct uvloop **out, char *err, size_t errcap);

struct lws_context *uvloop_context(struct uvloop *l);
struct lws_vhost *uvloop_vhost(struct uvloop *l);

/* The loop itself, for timers of the loop's own (uv_timer_init). */
void *uvloop_uv(struct uvloop *l);

/* Start the thread at nice (0: as the process; higher: the kernel runs the
 * other threads first when the CPU is short). Returns 0 or -errno. */
int uvloop_start(struct uvloop *l, int nice);

/* Queue m for on_msg on the loop's thread (any thread; takes m). Returns
 * 0, or -ESHUTDOWN once stopping (m is freed). */
int uvloop_post(struct uvloop *l, struct xmsg *m);

/* Messages waiting now (any thread). */
size_t uvloop_depth(struct uvloop *l);

/* Ask the loop to stop (any thread): on_stop runs, the context is
 * destroyed on the loop's thread, and the thread ends. */
void uvloop_stop(struct uvloop *l);

/* Stop and join the thread (idempotent). Not from the loop's thread. */
void uvloop_join(struct uvloop *l);

/* Stop, join the thread, close the loop, free. Not from the loop's thread. */
void uvloop_free(struct uvloop *l);

#endif
