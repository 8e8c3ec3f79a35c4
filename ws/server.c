/* ws/server.c - the network side put together: the acceptor (the listening
 * socket), the API loop and the live loop.
 *
 * DESIGN: the acceptor thread hands each connection to the loop that
 * serves it (ws/acceptor.c). The API loop is one libwebsockets context on
 * its own thread (server_run), with lws's default poll() loop, which is
 * the fastest for the few keep-alive connections donors and staff use.
 * The live loop (ws/live.c) has its own context on libuv and its own
 * thread. Other threads talk to the API loop only through its queue: the
 * writer thread posts engine answers (XM_REPLY), the acceptor connections
 * (XM_ADOPT), and a post wakes the loop with lws_cancel_service, whose
 * wakeups coalesce, so the loop drains the whole queue (ws/http.c). A
 * 100 ms timer in the loop notices a stop request (set by the signal
 * thread) and drains: the acceptor stops accepting, new donations get 503,
 * in-flight ones are answered, then the loop returns and the live loop
 * closes its viewers.
 * With TLS (cfg.tls), the TLS front (ws/tls.c) sits between the acceptor
 * and the loops: the acceptor gives it every connection, it gives the
 * plaintext end of a socket pair back with the client's address, and the
 * loops keep that address by descriptor when they adopt the socket. It is
 * stopped last, after both loops closed their ends, so that what they
 * wrote last is encrypted and sent (TLS_FLUSH_MS at most).
 */
#include "ws/internal.h"
#include "ws/acceptor.h"
#include "ws/ratelimit.h"
#include "ws/tls.h"
#include "core/captcha.h"
#include "base/log.h"
#include "base/util.h"
#include "base/watchdog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define STOP_GRACE_NS (5ull * 1000000000ull) /* then queued work gets 503 */
#define STOP_HARD_NS (15ull * 1000000000ull) /* then the loop ends regardless */
#define LOOP_STALL_MS 3000 /* a loop silent this long is reported (base/watchdog.c) */
#define TLS_FLUSH_MS 500   /* at the end, TLS connections send what the loops wrote */

void server_post(struct server *s, struct xmsg *m)
{
	int wake;

	m->next = NULL;
	pthread_mutex_lock(&s->qlock);
	wake = !s->qhead;
	if (s->qtail)
		s->qtail->next = m;
	else
		s->qhead = m;
	s->qtail = m;
	pthread_mutex_unlock(&s->qlock);
	if (wake)
		lws_cancel_service(s->ctx);
}

/* The acceptor's hand-over (acceptor thread); peer: see acceptor.h. */
static int hand(void *ctx, int fd, enum acceptor_route route, const char *peer)
{
	struct server *s = ctx;
	struct xmsg *m = xmsg_new(XM_ADOPT, 0, peer, peer ? strlen(peer) : 0);

	if (!m)
		return -ENOMEM;
	m->fd = fd;
	if (route == ROUTE_LIVE)
		return live_post(s->live, m);
	server_post(s, m);
	return 0;
}

/* TLS: a connection accepted goes to the front (acceptor thread). */
static int take(void *ctx, int fd, const char *ip)
{
	struct server *s = ctx;

	return tls_take(s->tls, fd, ip);
}

/* TLS: the front passes a connection's plaintext back (a front thread). */
static int pass(void *ctx, int fd, const char *peer)
{
	struct server *s = ctx;

	return acceptor_pass(s->acceptor, fd, peer);
}

static int viewers_full(void *ctx)
{
	struct server *s = ctx;

	return live_full(s->live);
}

static void tick_cb(lws_sorted_usec_list_t *sul)
{
	struct server *s = lws_container_of(sul, struct server, tick_sul);

	if (atomic_load(&s->stop) && !s->stopping) {
		s->stopping = 1;
		s->stop_started_ns = util_mono_ns();
		acceptor_stop(s->acceptor); /* joins the acceptor: nothing new comes */
		/* Gifts waiting for a CAPTCHA verdict are answered now (503
		 * captcha_unavailable) rather than hold the drain. */
		if (s->cfg.captcha)
			captcha_stop(s->cfg.captcha);
		log_msg(LOG_INFO, "server.draining", "answering in-flight requests");
	}
	if (s->stopping && !s->refusing && util_mono_ns() - s->stop_started_ns > STOP_GRACE_NS) {
		/* The writer is stuck (a locked or failing disk): answer what it
		 * has not started with 503 rather than commit it unanswered. */
		s->refusing = 1;
		engine_refuse_queued(s->engine);
		log_msg(LOG_WARN, "server.drain_timeout", "refusing donations still queued");
	}
	lws_sul_schedule(s->ctx, 0, &s->tick_sul, tick_cb, 100 * LWS_US_PER_MS);
}

static void lws_log(int level, const char *line)
{
	char msg[512];
	size_t n;

	snprintf(msg, sizeof(msg), "%s", line);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_msg(level == LLL_ERR ? LOG_ERROR : LOG_WARN, "lws", "%s", msg);
}

int server_new(const struct server_config *cfg, struct engine *e, struct server **out, char *err,
               size_t errcap)
{
	static struct lws_protocols bound[2];
	struct lws_context_creation_info info;
	struct acceptor_config ac;
	struct engine_listener listener;
	struct server *s;
	struct rlimit rl;
	int rc;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	s->engine = e;
	s->etag_epoch = (uint64_t)util_now_ms();
	if (s->cfg.coalesce_ms <= 0)
		s->cfg.coalesce_ms = 100;
	if (pthread_mutex_init(&s->qlock, NULL)) {
		free(s);
		return -ENOMEM;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1048576)
		rl.rlim_cur = 65536;
	s->n_conns = (size_t)rl.rlim_cur;
	s->conns = calloc(s->n_conns, sizeof(*s->conns));
	s->metrics = calloc(1, sizeof(*s->metrics));
	if (cfg->tls)
		s->peers = calloc(s->n_conns, sizeof(*s->peers));
	rc = s->conns && s->metrics && (!cfg->tls || s->peers) ? 0 : -ENOMEM;
	if (rc)
		goto fail;
	if (cfg->rate_limit > 0)
		rc = ratelimit_new(cfg->rate_limit,
		                   cfg->rate_burst >= 1 ? cfg->rate_burst : 2 * cfg->rate_limit,
		                   65536, &s->ratelimit);
	if (rc)
		goto fail;
	rc = assets_load(cfg->assets_dir, &s->assets, err, errcap);
	if (rc)
		goto fail;

	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);
	rc = watchdog_new(LOOP_STALL_MS, &s->watchdog);
	if (!rc)
		rc = watchdog_start(s->watchdog);
	if (rc) {
		snprintf(err, errcap, "cannot start the watchdog: %s", strerror(-rc));
		goto fail;
	}
	rc = live_new(s, (unsigned)s->n_conns, &s->live, err, errcap);
	if (rc)
		goto fail;
	bound[0] = http_protocol;
	memset(&bound[1], 0, sizeof(bound[1]));
	memset(&info, 0, sizeof(info));
	/* Connections come from the acceptor (lws_adopt_socket_vhost). The
	 * fd table is indexed by descriptor number, so it spans the whole
	 * process limit though this loop serves few. */
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = bound;
	info.user = s;
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
	/* Heads arrive whole (the acceptor waits for them), so a header
	 * table is held only while a request is read and answered; a
	 * keep-alive client that trickles its next request, or its body,
	 * is cut off after timeout_secs. */
	info.max_http_header_pool = 4096;
	info.max_http_header_data = HTTP_HEADERS_MAX;
	info.fd_limit_per_thread = (unsigned)s->n_conns;
	info.timeout_secs = 10;
	info.keepalive_timeout = 60;
	info.vhost_name = "tally";
	info.server_string = "tally";
	http_context_options(s, &info);
	s->ctx = lws_create_context(&info);
	if (!s->ctx) {
		snprintf(err, errcap, "cannot create the API loop");
		rc = -EIO;
		goto fail;
	}
	s->vhost = lws_get_vhost_by_name(s->ctx, "tally");
	if (!s->vhost) {
		snprintf(err, errcap, "the API loop has no vhost");
		rc = -EIO;
		goto fail;
	}
	if (cfg->tls) {
		struct tls_config tc;

		memset(&tc, 0, sizeof(tc));
		tc.keys = cfg->tls;
		tc.limit_loopback = cfg->rate_limit_loopback;
		tc.trusted = cfg->trusted;
		tc.live_nice = cfg->live_nice >= 0 ? cfg->live_nice : 10;
		tc.watchdog = s->watchdog;
		tc.pass = pass;
		tc.ctx = s;
		rc = tls_new(&tc, &s->tls, err, errcap);
		if (rc)
			goto fail;
	}
	memset(&ac, 0, sizeof(ac));
	ac.addr = cfg->listen_addr;
	ac.port = cfg->port;
	ac.hand = hand;
	ac.take = cfg->tls ? take : NULL;
	ac.live_full = viewers_full;
	ac.ctx = s;
	ac.limit_loopback = cfg->rate_limit_loopback;
	ac.trusted = cfg->trusted;
	rc = acceptor_new(&ac, &s->acceptor, err, errcap);
	if (rc)
		goto fail;
	s->port = acceptor_port(s->acceptor);
	api_init(s);
	listener = feed_listener(s);
	rc = engine_add_listener(e, &listener);
	if (rc) {
		snprintf(err, errcap, "too many engine listeners");
		goto fail;
	}
	lws_sul_schedule(s->ctx, 0, &s->tick_sul, tick_cb, 100 * LWS_US_PER_MS);
	rc = live_start(s->live);
	if (!rc && s->tls)
		rc = tls_start(s->tls);
	if (!rc)
		rc = acceptor_start(s->acceptor);
	if (rc) {
		snprintf(err, errcap, "cannot start the network threads: %s", strerror(-rc));
		goto fail;
	}
	*out = s;
	return 0;
fail:
	server_free(s);
	return rc;
}

int server_run(struct server *s)
{
	log_event(LOG_INFO, "server.listening",
	          json_pack("{s:s,s:i,s:b}", "address", s->cfg.listen_addr, "port", s->port, "tls",
	                    s->tls != NULL));
	s->watch = watchdog_join(s->watchdog, "api");
	for (;;) {
		if (lws_service(s->ctx, 0) < 0) {
			log_msg(LOG_ERROR, "server.failed", "the service loop failed");
			watch_leave(s->watch);
			return -EIO;
		}
		watch_beat(s->watch); /* the 100 ms tick returns it at least that often */
		s->pass++;
		if (s->stopping &&
		    (s->async_pending <= 0 || util_mono_ns() - s->stop_started_ns > STOP_HARD_NS))
			break;
	}
	watch_leave(s->watch);
	/* The viewers' loop reads the engine: it ends before the caller
	 * frees the engine. */
	live_stop(s->live);
	return 0;
}

void server_stop(struct server *s)
{
	atomic_store(&s->stop, 1);
}

void server_get_stats(struct server *s, struct server_stats *out)
{
	out->ws_clients = live_viewers(s->live);
	out->http_requests = atomic_load(&s->http_requests);
	out->port = s->port;
}

void server_free(struct server *s)
{
	struct xmsg *m;

	if (!s)
		return;
	/* Nothing new comes in (the acceptor stops now but is freed last:
	 * the TLS front may still pass it a connection, which it refuses);
	 * the viewers go with their loop; then the API loop. */
	acceptor_stop(s->acceptor);
	live_free(s->live);
	s->live = NULL;
	if (s->ctx) {
		lws_sul_cancel(&s->tick_sul);
		lws_context_destroy(s->ctx);
	}
	for (m = s->qhead; m;) {
		struct xmsg *next = m->next;

		if (m->kind == XM_ADOPT)
			close(m->fd);
		free(m);
		m = next;
	}
	s->qhead = s->qtail = NULL;
	/* Both loops closed their ends: what they wrote last goes out. */
	tls_stop(s->tls, TLS_FLUSH_MS);
	tls_free(s->tls);
	acceptor_free(s->acceptor);
	assets_free(s->assets);
	watchdog_free(s->watchdog); /* after every loop it watches */
	buf_fini(&s->scratch);
	free(s->conns);
	free(s->peers);
	free(s->metrics);
	ratelimit_free(s->ratelimit);
	pthread_mutex_destroy(&s->qlock);
	free(s);
}
