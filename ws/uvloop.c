/* ws/uvloop.c - a libwebsockets context on a libuv loop of its own thread.
 *
 * DESIGN: lws's default loop calls poll() over every socket at each
 * wakeup, and thousands of idle viewers made that most of the CPU. Here
 * lws runs on libuv (LWS_SERVER_OPTION_LIBUV, epoll underneath) with a
 * loop tally owns (a "foreign" loop), so tally also decides when it stops:
 * signals never reach this thread (the signal thread takes them); another
 * thread calls uvloop_stop, which wakes the loop through a uv_async handle.
 * On the loop's thread on_stop closes the connections, the context is
 * destroyed (lws closes its handles through the loop) and the loop's own
 * handles close, after which uv_run returns and the thread ends. The same
 * uv_async carries posted messages: a wakeup drains the whole queue (they
 * coalesce). The context has no listening socket: connections arrive from
 * ws/acceptor.c and are adopted here. lws's per-connection validity timers
 * are off (their sorted list costs O(connections) per insert); whoever
 * needs pings does them in on_tick.
 */
#include "ws/uvloop.h"
#include "ws/internal.h"
#include "base/log.h"
#include "base/util.h"
#include "base/watchdog.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

struct uvloop {
	struct uvloop_config cfg;
	uv_loop_t loop;
	uv_async_t wake;
	uv_timer_t tick;
	int loop_ready, handles_ready;
	struct lws_context *ctx; /* NULLed by lws once destroyed (pcontext) */
	struct lws_vhost *vh;
	pthread_t thread;
	int started, joined;
	int nice;
	atomic_int stop_asked;
	int stopping;          /* loop thread */
	pthread_mutex_t qlock; /* guards the queue and closed; nothing inside */
	struct xmsg *qhead, *qtail;
	size_t depth;
	int closed;          /* no more posts */
	struct watch *watch; /* loop thread */
};

/* No validity checks: secs_since_valid_hangup 0 turns them off. */
static const lws_retry_bo_t no_validity = {.secs_since_valid_ping = 0,
                                           .secs_since_valid_hangup = 0};

static struct xmsg *take_all(struct uvloop *l)
{
	struct xmsg *m;

	pthread_mutex_lock(&l->qlock);
	m = l->qhead;
	l->qhead = l->qtail = NULL;
	l->depth = 0;
	pthread_mutex_unlock(&l->qlock);
	return m;
}

/* Messages never delivered: a connection handed over but never adopted
 * is closed with its message. */
static void free_all(struct xmsg *m)
{
	while (m) {
		struct xmsg *next = m->next;

		if (m->kind == XM_ADOPT && m->fd >= 0 && close(m->fd))
			log_msg(LOG_DEBUG, "uvloop.close_failed", "%s", strerror(errno));
		free(m);
		m = next;
	}
}

static void close_cb(uv_handle_t *h)
{
	(void)h;
}

static void do_stop(struct uvloop *l)
{
	l->stopping = 1;
	pthread_mutex_lock(&l->qlock);
	l->closed = 1;
	pthread_mutex_unlock(&l->qlock);
	if (l->cfg.on_stop)
		l->cfg.on_stop(l->cfg.user);
	free_all(take_all(l));
	if (l->ctx)
		lws_context_destroy(l->ctx); /* closes through the loop */
	uv_timer_stop(&l->tick);
	uv_close((uv_handle_t *)&l->tick, close_cb);
	uv_close((uv_handle_t *)&l->wake, close_cb);
}

static void wake_cb(uv_async_t *h)
{
	struct uvloop *l = h->data;
	struct xmsg *m;

	watch_beat(l->watch);
	if (l->stopping)
		return;
	if (atomic_load(&l->stop_asked)) {
		do_stop(l);
		return;
	}
	m = take_all(l);
	while (m) {
		struct xmsg *next = m->next;

		l->cfg.on_msg(l->cfg.user, m);
		free(m);
		m = next;
	}
}

static void tick_cb(uv_timer_t *t)
{
	struct uvloop *l = t->data;

	watch_beat(l->watch);
	if (!l->stopping && l->cfg.on_tick)
		l->cfg.on_tick(l->cfg.user, util_mono_ns());
}

int uvloop_new(const struct uvloop_config *cfg, struct uvloop **out, char *err, size_t errcap)
{
	struct lws_context_creation_info info;
	struct uvloop *l = calloc(1, sizeof(*l));
	void *foreign[1];
	int rc;

	*out = NULL;
	if (!l)
		return -ENOMEM;
	l->cfg = *cfg;
	if (l->cfg.tick_ms <= 0)
		l->cfg.tick_ms = 1000;
	if (pthread_mutex_init(&l->qlock, NULL)) {
		free(l);
		return -ENOMEM;
	}
	rc = uv_loop_init(&l->loop);
	if (rc) {
		snprintf(err, errcap, "uv_loop_init: %s", uv_strerror(rc));
		rc = -EIO;
		goto fail;
	}
	l->loop_ready = 1;
	rc = uv_async_init(&l->loop, &l->wake, wake_cb);
	if (!rc)
		rc = uv_timer_init(&l->loop, &l->tick);
	if (rc) {
		snprintf(err, errcap, "libuv handles: %s", uv_strerror(rc));
		rc = -EIO;
		goto fail;
	}
	l->handles_ready = 1;
	l->wake.data = l;
	l->tick.data = l;

	memset(&info, 0, sizeof(info));
	foreign[0] = &l->loop;
	info.foreign_loops = foreign;
	info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_VALIDATE_UTF8;
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = cfg->protocols;
	info.user = cfg->user;
	info.pcontext = &l->ctx;
	info.fd_limit_per_thread = cfg->fd_limit;
	info.max_http_header_pool = 2048;
	info.max_http_header_data = 2048;
	info.retry_and_idle_policy = &no_validity;
	info.timeout_secs = 10; /* a handshake that takes longer is dropped */
	info.vhost_name = cfg->name;
	info.server_string = "tally";
	l->ctx = lws_create_context(&info);
	if (!l->ctx) {
		snprintf(err, errcap,
		         "cannot create the %s loop (is libwebsockets-evlib-uv installed?)",
		         cfg->name);
		rc = -EIO;
		goto fail;
	}
	l->vh = lws_get_vhost_by_name(l->ctx, cfg->name);
	if (!l->vh) {
		snprintf(err, errcap, "the %s loop has no vhost", cfg->name);
		rc = -EIO;
		goto fail;
	}
	rc = uv_timer_start(&l->tick, tick_cb, (uint64_t)l->cfg.tick_ms, (uint64_t)l->cfg.tick_ms);
	if (rc) {
		snprintf(err, errcap, "uv_timer_start: %s", uv_strerror(rc));
		rc = -EIO;
		goto fail;
	}
	*out = l;
	return 0;
fail:
	uvloop_free(l);
	return rc;
}

struct lws_context *uvloop_context(struct uvloop *l)
{
	return l->ctx;
}

struct lws_vhost *uvloop_vhost(struct uvloop *l)
{
	return l->vh;
}

void *uvloop_uv(struct uvloop *l)
{
	return &l->loop;
}

static void *loop_main(void *arg)
{
	struct uvloop *l = arg;
	int named = util_thread_name(l->cfg.name);

	if (named)
		log_msg(LOG_WARN, "thread.name_failed", "%s", strerror(-named));

	/* Linux keeps a nice value per thread. */
	if (l->nice && setpriority(PRIO_PROCESS, (id_t)gettid(), l->nice))
		log_msg(LOG_WARN, "uvloop.nice_failed", "%s", strerror(errno));
	if (l->cfg.watchdog)
		l->watch = watchdog_join(l->cfg.watchdog, l->cfg.name);
	uv_run(&l->loop, UV_RUN_DEFAULT);
	watch_leave(l->watch);
	return NULL;
}

int uvloop_start(struct uvloop *l, int nice)
{
	int rc;

	l->nice = nice;
	rc = pthread_create(&l->thread, NULL, loop_main, l);
	if (rc)
		return -rc;
	l->started = 1;
	return 0;
}

int uvloop_post(struct uvloop *l, struct xmsg *m)
{
	int wake;

	m->next = NULL;
	pthread_mutex_lock(&l->qlock);
	if (l->closed) {
		pthread_mutex_unlock(&l->qlock);
		free(m);
		return -ESHUTDOWN;
	}
	wake = !l->qhead;
	if (l->qtail)
		l->qtail->next = m;
	else
		l->qhead = m;
	l->qtail = m;
	l->depth++;
	pthread_mutex_unlock(&l->qlock);
	if (wake && uv_async_send(&l->wake))
		log_msg(LOG_WARN, "uvloop.wake_failed", "the %s loop was not woken", l->cfg.name);
	return 0;
}

size_t uvloop_depth(struct uvloop *l)
{
	size_t n;

	pthread_mutex_lock(&l->qlock);
	n = l->depth;
	pthread_mutex_unlock(&l->qlock);
	return n;
}

void uvloop_stop(struct uvloop *l)
{
	if (!l || atomic_exchange(&l->stop_asked, 1))
		return;
	if (l->started && uv_async_send(&l->wake))
		log_msg(LOG_WARN, "uvloop.wake_failed", "the %s loop was not woken", l->cfg.name);
}

void uvloop_join(struct uvloop *l)
{
	if (!l || !l->started || l->joined)
		return;
	uvloop_stop(l);
	if (pthread_join(l->thread, NULL))
		log_msg(LOG_ERROR, "uvloop.join_failed", "the %s loop did not join", l->cfg.name);
	l->joined = 1;
}

void uvloop_free(struct uvloop *l)
{
	if (!l)
		return;
	if (l->started) {
		uvloop_join(l);
	} else if (l->handles_ready) {
		/* Never ran: go round on this thread as its own would have, so
		 * lws closes its handles inside the loop (destroying the context
		 * outside it left close callbacks into lws's event plugin after
		 * lws had unloaded it: a crash when the port was taken). */
		atomic_store(&l->stop_asked, 1);
		if (uv_async_send(&l->wake))
			log_msg(LOG_WARN, "uvloop.wake_failed", "the %s loop was not woken",
			        l->cfg.name);
		else
			uv_run(&l->loop, UV_RUN_DEFAULT);
	}
	/* lws finishes a foreign loop's destruction in steps, each needing
	 * the loop to run its close callbacks. */
	for (int i = 0; l->loop_ready && i < 8; i++) {
		if (l->ctx)
			lws_context_destroy(l->ctx);
		if (uv_run(&l->loop, UV_RUN_NOWAIT) == 0 && !l->ctx)
			break;
	}
	if (l->loop_ready && uv_loop_close(&l->loop))
		log_msg(LOG_WARN, "uvloop.close_failed", "the %s loop still had handles",
		        l->cfg.name);
	free_all(take_all(l));
	pthread_mutex_destroy(&l->qlock);
	free(l);
}
