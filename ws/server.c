/* ws/server.c - the libwebsockets context, its service loop and the queue
 * other threads use to reach it.
 *
 * DESIGN: the service thread owns every socket and every lws call. Other
 * threads (the db writer, through engine listeners and completions) append
 * an xmsg to s->qhead under s->qlock and call lws_cancel_service() when the
 * queue was empty; the service thread drains the whole queue in
 * LWS_CALLBACK_EVENT_WAIT_CANCELLED (ws/http.c). A 100 ms timer in the loop
 * notices a stop request (set by the signal thread) and drains: new
 * donations get 503, in-flight ones are answered, then the loop returns.
 */
#include "ws/internal.h"
#include "ws/ratelimit.h"
#include "base/log.h"
#include "base/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define STOP_GRACE_NS (5ull * 1000000000ull) /* then queued work gets 503 */
#define STOP_HARD_NS (15ull * 1000000000ull) /* then the loop ends regardless */

static const lws_retry_bo_t idle_policy = {
    .secs_since_valid_ping = 30,
    .secs_since_valid_hangup = 40,
};

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

static struct xmsg *xmsg_new(enum xmsg_kind kind, int64_t campaign_id, const char *data, size_t len)
{
	struct xmsg *m = malloc(sizeof(*m) + len + 1);

	if (!m)
		return NULL;
	memset(m, 0, sizeof(*m));
	m->kind = kind;
	m->campaign_id = campaign_id;
	m->len = len;
	if (len)
		memcpy(m->data, data, len);
	m->data[len] = '\0';
	return m;
}

/* Engine listener (writer thread). */
static void on_changed(void *ctx, int64_t campaign_id, uint64_t seq)
{
	struct server *s = ctx;
	struct xmsg *m;

	if (!live_watched(s->live, campaign_id))
		return;
	m = xmsg_new(XM_CHANGED, campaign_id, NULL, 0);
	if (!m)
		return;
	m->seq = seq;
	server_post(s, m);
}

static void on_donation(void *ctx, int64_t campaign_id, const char *json, size_t len)
{
	struct server *s = ctx;
	struct xmsg *m;

	if (!live_watched(s->live, campaign_id))
		return;
	m = xmsg_new(XM_DONATION, campaign_id, json, len);
	if (m)
		server_post(s, m);
}

static void tick_cb(lws_sorted_usec_list_t *sul)
{
	struct server *s = lws_container_of(sul, struct server, tick_sul);

	if (atomic_load(&s->stop) && !s->stopping) {
		s->stopping = 1;
		s->stop_started_ns = util_mono_ns();
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
	static struct lws_protocols bound[3];
	struct lws_context_creation_info info;
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
	rc = s->conns && s->metrics ? live_new(s, &s->live) : -ENOMEM;
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
	bound[0] = http_protocol;
	bound[1] = live_protocol;
	memset(&bound[2], 0, sizeof(bound[2]));
	memset(&info, 0, sizeof(info));
	info.port = cfg->port;
	info.iface = cfg->listen_addr;
	info.protocols = bound;
	info.user = s;
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_IPV6;
	if (strchr(cfg->listen_addr, ':'))
		info.options &= ~(uint64_t)LWS_SERVER_OPTION_DISABLE_IPV6;
	info.max_http_header_pool = 1024;
	info.max_http_header_data = 4096;
	info.fd_limit_per_thread = (unsigned)s->n_conns;
	info.retry_and_idle_policy = &idle_policy;
	info.timeout_secs = 20;
	info.keepalive_timeout = 60;
	info.vhost_name = "tally";
	info.server_string = "tally";
	s->ctx = lws_create_context(&info);
	if (!s->ctx) {
		snprintf(err, errcap, "cannot listen on %s:%d (in use, or not a local address?)",
		         cfg->listen_addr, cfg->port);
		rc = -EADDRINUSE;
		goto fail;
	}
	s->vhost = lws_get_vhost_by_name(s->ctx, "tally");
	s->port = s->vhost ? lws_get_vhost_listen_port(s->vhost) : cfg->port;
	api_init(s);
	listener.campaign_changed = on_changed;
	listener.donation = on_donation;
	listener.ctx = s;
	rc = engine_add_listener(e, &listener);
	if (rc) {
		snprintf(err, errcap, "too many engine listeners");
		goto fail;
	}
	lws_sul_schedule(s->ctx, 0, &s->tick_sul, tick_cb, 100 * LWS_US_PER_MS);
	*out = s;
	return 0;
fail:
	server_free(s);
	return rc;
}

int server_run(struct server *s)
{
	log_event(LOG_INFO, "server.listening",
	          json_pack("{s:s,s:i}", "address", s->cfg.listen_addr, "port", s->port));
	for (;;) {
		if (lws_service(s->ctx, 0) < 0) {
			log_msg(LOG_ERROR, "server.failed", "the service loop failed");
			return -EIO;
		}
		s->pass++;
		if (s->stopping &&
		    (s->async_pending <= 0 || util_mono_ns() - s->stop_started_ns > STOP_HARD_NS))
			break;
	}
	return 0;
}

void server_stop(struct server *s)
{
	atomic_store(&s->stop, 1);
}

void server_get_stats(struct server *s, struct server_stats *out)
{
	out->ws_clients = atomic_load(&s->ws_clients);
	out->http_requests = atomic_load(&s->http_requests);
	out->port = s->port;
}

void server_free(struct server *s)
{
	struct xmsg *m;

	if (!s)
		return;
	if (s->ctx) {
		lws_sul_cancel(&s->tick_sul);
		live_stop(s->live);
		lws_context_destroy(s->ctx);
	}
	live_free(s->live);
	assets_free(s->assets);
	for (m = s->qhead; m;) {
		struct xmsg *next = m->next;

		free(m);
		m = next;
	}
	buf_fini(&s->scratch);
	free(s->conns);
	free(s->metrics);
	ratelimit_free(s->ratelimit);
	pthread_mutex_destroy(&s->qlock);
	free(s);
}
