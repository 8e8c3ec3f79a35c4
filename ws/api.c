/* ws/api.c - the HTTP API: the route table and its handlers. */
#include "ws/internal.h"
#include "ws/acceptor.h"
#include "ws/tls.h"
#include "base/log.h"
#include "base/watchdog.h"
#include "base/util.h"
#include "core/validate.h"
#include "core/captcha.h"
#include "core/shield.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Engine completions carry only a void *; there is one server per process. */
static struct server *api_server;

void api_init(struct server *s)
{
	api_server = s;
}

/* Writer thread: hand the engine's answer to the service thread. */
static void engine_done(void *ud, const struct engine_answer *a)
{
	struct buf b = {0};
	struct xmsg *m;
	int rc = a->rc;

	if (!rc && admin_answer_json(a, &b))
		rc = -ENOMEM;
	m = malloc(sizeof(*m) + b.len + 1);
	if (!m) {
		log_msg(LOG_ERROR, "http.reply_lost", "out of memory posting a reply");
		buf_fini(&b);
		return;
	}
	m->kind = XM_REPLY;
	m->ref = (uint64_t)(uintptr_t)ud;
	m->rc = rc;
	m->replayed = a->replayed;
	m->len = rc ? 0 : b.len;
	if (m->len)
		memcpy(m->data, b.p, m->len);
	m->data[m->len] = '\0';
	if (a->secret && b.p)
		explicit_bzero(b.p, b.len); /* a new token's secret: the answer keeps it */
	buf_fini(&b);
	server_post(api_server, m);
}

const struct http_header api_replayed[1] = {{"idempotent-replayed:", "true"}};

static void *ref_ud(const struct http_pss *p)
{
	return (void *)(uintptr_t)http_ref(p);
}

/* An async request's answer was built (rc 0) or could not be (-1): send
 * it, or drop the connection rather than leave it hanging. */
static void answered(struct http_pss *p, int rc)
{
	if (rc) {
		log_msg(LOG_ERROR, "http.reply_failed", "cannot build a reply");
		lws_set_timeout(p->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
		return;
	}
	if (http_resume_rx(p) || lws_callback_on_writable(p->wsi) < 0)
		log_msg(LOG_WARN, "http.writable_failed", "connection is closing");
}

void api_complete(struct server *s, struct xmsg *m)
{
	struct http_pss *p = http_lookup(s, m->ref);
	int rc;

	if (!p || !p->async || !p->route)
		return; /* the client went away; the work itself is done */
	if (m->rc == 0) {
		struct buf *b = http_body(p);

		rc = buf_append(b, m->data, m->len)
		         ? -1
		         : http_send(p, p->route->ok_status, NULL, api_replayed, m->replayed);
	} else {
		rc = http_engine_error(p, m->rc);
	}
	answered(p, rc);
}

static int send_json(struct http_pss *p, int status, const char *etag)
{
	struct http_header h[2];
	int n = 0;

	h[n].name = "cache-control:";
	h[n++].value = "no-cache";
	if (etag) {
		h[n].name = "etag:";
		h[n++].value = etag;
	}
	return http_send(p, status, NULL, h, n);
}

/* 304 when the client's If-None-Match names etag. */
static int not_modified(struct http_pss *p, const char *etag)
{
	if (!p->if_none_match[0] ||
	    (strcmp(p->if_none_match, etag) && strcmp(p->if_none_match, "*") &&
	     !strstr(p->if_none_match, etag)))
		return 0;
	http_body(p);
	return 1;
}

static int h_healthz(struct server *s, struct http_pss *p)
{
	(void)s;
	if (buf_puts(http_body(p), "{\"status\":\"ok\"}"))
		return -1;
	return http_send(p, 200, NULL, NULL, 0);
}

/* The load the viewers are shedding (ws/pacer.c), for /readyz and
 * /metrics. */
static int degraded_metrics(struct server *s, struct buf *b)
{
	struct live_stats ls;

	live_get_stats(s->live, &ls);
	return buf_printf(b,
	                  "# HELP tally_live_slow How many times slower than configured the "
	                  "live channels are updated (1: full speed).\n"
	                  "# TYPE tally_live_slow gauge\n"
	                  "tally_live_slow %d\n"
	                  "# HELP tally_live_refusing 1 while new viewers are refused under load.\n"
	                  "# TYPE tally_live_refusing gauge\n"
	                  "tally_live_refusing %d\n",
	                  ls.slow, ls.refusing);
}

static int h_readyz(struct server *s, struct http_pss *p)
{
	struct engine_stats es;
	struct live_stats ls;

	if (s->stopping)
		return http_error(p, 503, "shutting_down", "the server is draining", NULL, 1);
	engine_get_stats(s->engine, &es);
	if (es.commits.failing_since_ms)
		return http_error(p, 503, "storage_unavailable",
		                  "commits are failing (disk full?): donations are refused", NULL,
		                  1);
	/* Still ready for donors while the viewers give way. */
	live_get_stats(s->live, &ls);
	if (ls.slow > 1
	        ? buf_printf(http_body(p),
	                     "{\"status\":\"degraded\",\"live_slow\":%d,"
	                     "\"live_refusing\":%s,\"intake_depth\":%lld}",
	                     ls.slow, ls.refusing ? "true" : "false", (long long)es.intake_depth)
	        : buf_puts(http_body(p), "{\"status\":\"ready\"}"))
		return -1;
	return http_send(p, 200, NULL, NULL, 0);
}

static int put_hist(struct buf *b, const char *name, const char *labels, const uint64_t *counts,
                    const double *bounds, int n, double sum)
{
	uint64_t cum = 0;
	int rc = 0;

	for (int i = 0; i <= n; i++) {
		cum += counts[i];
		if (i < n)
			rc |= buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels,
			                 *labels ? "," : "", bounds[i], (unsigned long long)cum);
		else
			rc |= buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels,
			                 *labels ? "," : "", (unsigned long long)cum);
	}
	if (*labels)
		rc |= buf_printf(b, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, labels, sum, name,
		                 labels, (unsigned long long)cum);
	else
		rc |= buf_printf(b, "%s_sum %.6f\n%s_count %llu\n", name, sum, name,
		                 (unsigned long long)cum);
	return rc;
}

static const char *route_label(size_t i)
{
	return i < api_n_routes ? api_routes[i].pattern : i == api_n_routes ? "static" : "other";
}

/* The live loop's gauges and counters. */
static int live_metrics(struct server *s, struct buf *b)
{
	struct live_stats ls;
	struct acceptor_stats as;

	live_get_stats(s->live, &ls);
	acceptor_get_stats(s->acceptor, &as);
	return buf_printf(
	    b,
	    "# HELP tally_live_viewers Open live websockets.\n"
	    "# TYPE tally_live_viewers gauge\n"
	    "tally_live_viewers %lld\n"
	    "# HELP tally_live_subscriptions Channel subscriptions of the viewers.\n"
	    "# TYPE tally_live_subscriptions gauge\n"
	    "tally_live_subscriptions %lld\n"
	    "# HELP tally_live_queue_depth Channel messages waiting for the live loop.\n"
	    "# TYPE tally_live_queue_depth gauge\n"
	    "tally_live_queue_depth %lld\n"
	    "# HELP tally_live_frames_total Frames written to viewers.\n"
	    "# TYPE tally_live_frames_total counter\n"
	    "tally_live_frames_total %llu\n"
	    "# HELP tally_live_events_thinned_total Donation events left out of crowded or "
	    "busy channels (their state still shows the gifts).\n"
	    "# TYPE tally_live_events_thinned_total counter\n"
	    "tally_live_events_thinned_total %llu\n"
	    "# HELP tally_live_dropped_total Viewers dropped or refused, by reason.\n"
	    "# TYPE tally_live_dropped_total counter\n"
	    "tally_live_dropped_total{reason=\"slow\"} %llu\n"
	    "tally_live_dropped_total{reason=\"no_pong\"} %llu\n"
	    "tally_live_dropped_total{reason=\"per_address\"} %llu\n"
	    "tally_live_dropped_total{reason=\"too_big\"} %llu\n"
	    "tally_live_dropped_total{reason=\"full\"} %llu\n"
	    "# HELP tally_live_messages_dropped_total Channel messages dropped while the live "
	    "loop was behind (it then read every state again).\n"
	    "# TYPE tally_live_messages_dropped_total counter\n"
	    "tally_live_messages_dropped_total %llu\n"
	    "# HELP tally_connections_total Connections accepted, by the loop that took them.\n"
	    "# TYPE tally_connections_total counter\n"
	    "tally_connections_total{loop=\"api\"} %llu\n"
	    "tally_connections_total{loop=\"live\"} %llu\n",
	    (long long)ls.viewers, (long long)ls.subscriptions, (long long)ls.queue_depth,
	    (unsigned long long)ls.frames, (unsigned long long)ls.events_thinned,
	    (unsigned long long)ls.dropped_slow, (unsigned long long)ls.dropped_ping,
	    (unsigned long long)ls.refused_address, (unsigned long long)ls.closed_too_big,
	    as.refused_full, (unsigned long long)ls.dropped_msgs, as.api, as.live);
}

/* The TLS front's, when TLS is on. */
static int tls_metrics(struct server *s, struct buf *b)
{
	struct tls_stats ts;

	if (!s->tls)
		return 0;
	tls_get_stats(s->tls, &ts);
	return buf_printf(
	    b,
	    "# HELP tally_tls_connections TLS connections past their handshake, open now, by "
	    "the thread that serves them (the viewers' is at the live loop's nice).\n"
	    "# TYPE tally_tls_connections gauge\n"
	    "tally_tls_connections{loop=\"api\"} %lld\n"
	    "tally_tls_connections{loop=\"live\"} %lld\n"
	    "# HELP tally_tls_handshakes_total TLS connections by how their start ended.\n"
	    "# TYPE tally_tls_handshakes_total counter\n"
	    "tally_tls_handshakes_total{result=\"ok\"} %llu\n"
	    "tally_tls_handshakes_total{result=\"failed\"} %llu\n"
	    "tally_tls_handshakes_total{result=\"timed_out\"} %llu\n"
	    "tally_tls_handshakes_total{result=\"plain_http\"} %llu\n"
	    "tally_tls_handshakes_total{result=\"per_address\"} %llu\n"
	    "tally_tls_handshakes_total{result=\"out_of_files\"} %llu\n",
	    (long long)ts.open_api, (long long)ts.open_live, (unsigned long long)ts.handshakes,
	    (unsigned long long)ts.failed, (unsigned long long)ts.timed_out,
	    (unsigned long long)ts.plain_http, (unsigned long long)ts.refused_address,
	    (unsigned long long)ts.out_of_files);
}

static int h_metrics(struct server *s, struct http_pss *p)
{
	static const char *const methods[] = {"GET", "HEAD", "POST", "PATCH", "DELETE", "PUT"};
	const struct http_metrics *m = s->metrics;
	struct engine_stats es;
	struct buf *b = http_body(p);
	char labels[160];
	int rc = 0;

	engine_get_stats(s->engine, &es);
	rc |= buf_puts(b, "# HELP tally_http_requests_total HTTP responses by route and status.\n"
	                  "# TYPE tally_http_requests_total counter\n");
	for (size_t r = 0; r <= api_n_routes + 1; r++)
		for (int st = 0; st < 500; st++)
			if (m->by_status[r][st])
				rc |= buf_printf(b,
				                 "tally_http_requests_total{route=\"%s %s\","
				                 "status=\"%d\"} %llu\n",
				                 r < api_n_routes ? methods[api_routes[r].method]
				                                  : "*",
				                 route_label(r), st + 100,
				                 (unsigned long long)m->by_status[r][st]);
	rc |= buf_puts(b, "# HELP tally_http_request_duration_seconds Time from request to "
	                  "response, by route.\n"
	                  "# TYPE tally_http_request_duration_seconds histogram\n");
	for (size_t r = 0; r <= api_n_routes + 1; r++) {
		uint64_t any = 0;

		for (int k = 0; k <= METRIC_BUCKETS; k++)
			any += m->latency[r][k];
		if (!any)
			continue;
		snprintf(labels, sizeof(labels), "route=\"%s %s\"",
		         r < api_n_routes ? methods[api_routes[r].method] : "*", route_label(r));
		rc |= put_hist(b, "tally_http_request_duration_seconds", labels, m->latency[r],
		               metric_latency_bounds, METRIC_BUCKETS, m->latency_sum[r]);
	}
	rc |= buf_puts(b, "# HELP tally_commit_batch_size Operations per committed transaction.\n"
	                  "# TYPE tally_commit_batch_size histogram\n");
	rc |= put_hist(b, "tally_commit_batch_size", "", es.commits.batch_size_hist,
	               commit_batch_size_bounds, COMMIT_HIST_BUCKETS, (double)es.commits.ops);
	rc |= buf_puts(b, "# HELP tally_commit_duration_seconds Time to apply and commit a batch.\n"
	                  "# TYPE tally_commit_duration_seconds histogram\n");
	rc |= put_hist(b, "tally_commit_duration_seconds", "", es.commits.commit_seconds_hist,
	               commit_seconds_bounds, COMMIT_HIST_BUCKETS, es.commits.commit_seconds_sum);
	rc |= buf_printf(
	    b,
	    "# HELP tally_donations_committed_total Donations captured (succeeded) since start.\n"
	    "# TYPE tally_donations_committed_total counter\n"
	    "tally_donations_committed_total %lld\n"
	    "# HELP tally_commit_failures_total Transactions rolled back.\n"
	    "# TYPE tally_commit_failures_total counter\n"
	    "tally_commit_failures_total %llu\n"
	    "# HELP tally_intake_queue_depth Operations waiting for the writer.\n"
	    "# TYPE tally_intake_queue_depth gauge\n"
	    "tally_intake_queue_depth %lld\n"
	    "# HELP tally_cache_entries Entries in the in-memory caches.\n"
	    "# TYPE tally_cache_entries gauge\n"
	    "tally_cache_entries{cache=\"campaigns\"} %lld\n"
	    "tally_cache_entries{cache=\"idempotency_keys\"} %lld\n"
	    "# HELP tally_websocket_connections Open live websockets.\n"
	    "# TYPE tally_websocket_connections gauge\n"
	    "tally_websocket_connections %lld\n"
	    "# HELP tally_uptime_seconds Seconds since start.\n"
	    "# TYPE tally_uptime_seconds gauge\n"
	    "tally_uptime_seconds %lld\n",
	    (long long)es.donations_total, (unsigned long long)es.commits.failed_commits,
	    (long long)es.intake_depth, (long long)es.campaigns, (long long)es.idem_entries,
	    (long long)live_viewers(s->live), (long long)es.uptime_s);
	rc |= live_metrics(s, b);
	rc |= tls_metrics(s, b);
	rc |= watchdog_metrics(s->watchdog, b);
	rc |= degraded_metrics(s, b);
	rc |= engine_jobs_metrics(s->engine, b);
	if (engine_shield(s->engine))
		rc |= shield_metrics(engine_shield(s->engine), util_now_ms(), b);
	if (s->cfg.captcha)
		rc |= captcha_metrics(s->cfg.captcha, b);
	if (rc)
		return -1;
	return http_send(p, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, 0);
}

/* Read ?limit=N (1..max) into *limit when present. Returns 0; 1 after
 * answering 400 invalid_query; -1 when even that failed. */
static int query_limit(struct http_pss *p, int max, int *limit)
{
	char msg[40];

	if (!uri_limit(p->query, max, limit))
		return 0;
	snprintf(msg, sizeof(msg), "must be 1 to %d", max);
	return http_error(p, 400, "invalid_query", "limit is out of range",
	                  json_pack("{s:s}", "limit", msg), 0)
	           ? -1
	           : 1;
}

static int h_campaign_list(struct server *s, struct http_pss *p)
{
	char etag[96];
	int limit = 100, rc;
	long long after = 0;
	uint64_t version;
	struct buf *b;

	if ((rc = query_limit(p, 500, &limit)))
		return rc < 0 ? -1 : 0;
	if (uri_cursor(p->query, &after))
		return http_error(p, 400, "invalid_query", "cursor is not one we gave out",
		                  json_pack("{s:s}", "cursor", "must be a next value"), 0);
	b = http_body(p);
	if (engine_campaign_list_json(s->engine, after, limit, b, &version))
		return -1;
	snprintf(etag, sizeof(etag), "\"%llx-l%llu-%lld-%d\"", (unsigned long long)s->etag_epoch,
	         (unsigned long long)version, after, limit);
	if (not_modified(p, etag))
		return send_json(p, 304, etag);
	return send_json(p, 200, etag);
}

static int h_campaign_get(struct server *s, struct http_pss *p)
{
	const char *slug = p->param[0];
	struct buf *b = http_body(p);
	char etag[96];
	uint64_t seq;
	int64_t id;

	if (!validate_slug(slug, strlen(slug)))
		return http_engine_error(p, TALLY_ENOCAMPAIGN);
	id = engine_campaign_id(s->engine, slug, strlen(slug));
	if (id < 0 || engine_campaign_json(s->engine, slug, strlen(slug), b, &seq))
		return http_engine_error(p, TALLY_ENOCAMPAIGN);
	snprintf(etag, sizeof(etag), "\"%llx-c%lld-%llu\"", (unsigned long long)s->etag_epoch,
	         (long long)id, (unsigned long long)seq);
	if (not_modified(p, etag))
		return send_json(p, 304, etag);
	return send_json(p, 200, etag);
}

/* ?category=C and ?currency=XXX of a board into q (buffers of the
 * caller). Returns 0; 1 after answering 400 invalid_query; -1 when even
 * that failed. */
static int query_board(struct http_pss *p, char category[TALLY_CATEGORY_SIZE],
                       char currency[TALLY_CURRENCY_SIZE], struct engine_board_query *q)
{
	char raw[TALLY_CATEGORY_SIZE + 1];
	const char *why = NULL;
	int len = http_query(p, "category", raw, sizeof(raw));

	category[0] = currency[0] = '\0';
	if (len >= (int)sizeof(raw))
		why = "must be at most 64 characters long";
	else if (len >= 0)
		why = validate_category(raw, (size_t)len, category);
	if (why)
		return http_error(p, 400, "invalid_query", "category is not a valid category",
		                  json_pack("{s:s}", "category", why), 0)
		           ? -1
		           : 1;
	len = http_query(p, "currency", raw, sizeof(raw));
	if (len >= 0 && (len != 3 || !validate_currency(raw)))
		return http_error(p, 400, "invalid_query", "currency is not a currency code",
		                  json_pack("{s:s}", "currency",
		                            "must be a three-letter ISO 4217 code such as USD"),
		                  0)
		           ? -1
		           : 1;
	if (len == 3)
		memcpy(currency, raw, 4);
	q->category = category;
	q->currency = currency;
	return 0;
}

/* 400 currency_required: the board's body (read before the error's
 * replaces it) lists the currencies. */
static int currency_required(struct http_pss *p, const char *board, size_t len)
{
	json_t *v = json_loadb(board, len, 0, NULL), *list, *c;
	struct buf msg = {0};
	size_t i;
	int rc;

	list = json_object_get(v, "currencies");
	rc = buf_puts(&msg, "required: these campaigns use ");
	json_array_foreach(list, i, c)
	{
		rc |= buf_printf(&msg, "%s%s", i ? ", " : "", json_string_value(c));
	}
	/* Out of memory: the error goes without the list rather than not at all. */
	rc = http_error(p, 400, "currency_required",
	                "the campaigns use more than one currency: choose one with ?currency=",
	                json_pack("{s:s?,s:O?}", "currency", rc ? NULL : msg.p, "currencies", list),
	                0);
	json_decref(v);
	buf_fini(&msg);
	return rc;
}

static int h_leaderboard(struct server *s, struct http_pss *p)
{
	struct engine_board_query q = {ENGINE_BY_TOTAL, 10, NULL, NULL, 0};
	char v[32], etag[128], category[TALLY_CATEGORY_SIZE], currency[TALLY_CURRENCY_SIZE];
	uint64_t version;
	struct buf *b;
	size_t at;
	int rc, mixed;

	if (http_query(p, "by", v, sizeof(v)) >= 0) {
		if (!strcmp(v, "donors"))
			q.by = ENGINE_BY_DONORS;
		else if (strcmp(v, "total"))
			return http_error(p, 400, "invalid_query", "by must be total or donors",
			                  json_pack("{s:s}", "by", "must be total or donors"), 0);
	}
	if ((rc = query_limit(p, 100, &q.limit)))
		return rc < 0 ? -1 : 0;
	if ((rc = query_board(p, category, currency, &q)))
		return rc < 0 ? -1 : 0;
	b = http_body(p);
	at = b->len;
	rc = engine_board_json(s->engine, &q, b, &version, &mixed);
	if (rc == TALLY_ENOCATEGORY)
		return http_engine_error(p, rc);
	if (rc)
		return -1;
	if (mixed)
		return currency_required(p, b->p + at, b->len - at);
	/* The category and currency asked for are part of the board's name. */
	snprintf(etag, sizeof(etag), "\"%llx-b%llu-%d-%d-%llx-%s\"",
	         (unsigned long long)s->etag_epoch, (unsigned long long)version, (int)q.by, q.limit,
	         (unsigned long long)util_hash(category, strlen(category)), currency);
	if (not_modified(p, etag))
		return send_json(p, 304, etag);
	return send_json(p, 200, etag);
}

static int h_categories(struct server *s, struct http_pss *p)
{
	char etag[96];
	uint64_t version;

	if (engine_categories_json(s->engine, http_body(p), &version))
		return -1;
	snprintf(etag, sizeof(etag), "\"%llx-k%llu\"", (unsigned long long)s->etag_epoch,
	         (unsigned long long)version);
	if (not_modified(p, etag))
		return send_json(p, 304, etag);
	return send_json(p, 200, etag);
}

/* ?token= is the gift's status token from its 202; without it, or with
 * a wrong one, the answer is the unknown id's 404. (Nothing logs request
 * paths or queries, so the token stays out of the log.) One byte longer
 * than a token, so that a longer value is cut to a wrong one. */
static int h_donation_get(struct server *s, struct http_pss *p)
{
	char token[TALLY_STATUS_TOKEN_LEN + 2];
	int rc = engine_donation_json(
	    s->engine, p->param[0], http_query(p, "token", token, sizeof(token)) < 0 ? NULL : token,
	    http_body(p));

	if (rc)
		return http_engine_error(p, rc);
	return send_json(p, 200, NULL);
}

static int h_admin_donation_get(struct server *s, struct http_pss *p)
{
	int rc = engine_donation_staff_json(s->engine, p->param[0], http_body(p));

	if (rc)
		return http_engine_error(p, rc);
	return send_json(p, 200, NULL);
}

static int need_json(struct http_pss *p)
{
	if (p->json_body)
		return 0;
	return http_error(p, 415, "unsupported_media_type",
	                  "send the body as Content-Type: application/json", NULL, 0)
	           ? -1
	           : 1;
}

static int validation_error(struct http_pss *p, int rc, struct validate_error *err)
{
	json_t *fields = err->fields;

	err->fields = NULL;
	if (rc == TALLY_EJSON) {
		json_decref(fields);
		return http_error(p, 400, "invalid_json", err->message, NULL, 0);
	}
	return http_error(p, 422, "validation_failed", err->message, fields, 0);
}

/* Admit a validated gift (after the shield and any CAPTCHA): HTTP_ASYNC
 * when the engine will answer, else answered now (0, or -1). */
static int donate(struct server *s, struct http_pss *p, const struct donation_req *req)
{
	struct gift_client client = {p->client, p->user_agent, p->page};
	struct buf *b = http_body(p);
	int rc, was_replayed;

	rc = engine_donate_from(s->engine, p->param[0], req, &client, p->idem_key, b, &was_replayed,
	                        engine_done, ref_ud(p));
	if (rc)
		return http_engine_error(p, rc);
	if (was_replayed)
		return http_send(p, 202, NULL, api_replayed, 1);
	return HTTP_ASYNC;
}

static int h_donate(struct server *s, struct http_pss *p)
{
	struct validate_error err = {{0}, NULL};
	struct donation_req req;
	char token[TALLY_CAPTCHA_TOKEN_SIZE];
	int rc, captcha;

	if ((rc = need_json(p)))
		return rc < 0 ? -1 : 0;
	for (const char *k = p->idem_key; *k; k++)
		if (*k < 0x21 || *k > 0x7e)
			return http_error(p, 422, "validation_failed", "Idempotency-Key is invalid",
			                  json_pack("{s:s}", "Idempotency-Key",
			                            "must be 1 to 255 printable ASCII characters"),
			                  0);
	if (s->stopping)
		return http_engine_error(p, TALLY_ESHUTDOWN);
	if (!validate_slug(p->param[0], strlen(p->param[0])))
		return http_engine_error(p, TALLY_ENOCAMPAIGN);
	rc = validate_donation_captcha(p->body.p ? p->body.p : "", p->body.len,
	                               engine_limits(s->engine), &req, token, &err);
	if (rc)
		return validation_error(p, rc, &err);
	if ((rc = shield_gate(s, p, p->param[0], &req, &captcha)))
		return rc < 0 ? -1 : 0;
	/* The gift waits for the verifier (ws/captcha.c); api_captcha_done
	 * takes it on from there. */
	if (captcha)
		return captcha_gate(s, p, token);
	return donate(s, p, &req);
}

void api_captcha_done(struct server *s, struct xmsg *m)
{
	struct validate_error err = {{0}, NULL};
	struct http_pss *p = http_lookup(s, m->ref);
	struct donation_req req;
	int rc;

	if (!p || !p->async || !p->route)
		return; /* the client went away: nothing was admitted */
	rc = captcha_verdict(s, p, m->rc, m->data);
	if (rc == 1) {
		/* The body is still the request's (reading waits for the
		 * answer): the same gift h_donate validated. */
		rc = validate_donation(p->body.p ? p->body.p : "", p->body.len,
		                       engine_limits(s->engine), &req, &err);
		rc = rc ? validation_error(p, rc, &err) : donate(s, p, &req);
		if (rc == HTTP_ASYNC)
			return; /* the engine answers (api_complete) */
	}
	answered(p, rc ? -1 : 0);
}

void api_actor(const struct http_pss *p, char *dst, size_t cap)
{
	snprintf(dst, cap, "%s@%s", p->who.name, p->client);
}

/* An offline gift staff received: 201 once committed, counted at once. */
static int h_offline(struct server *s, struct http_pss *p)
{
	struct validate_error err = {{0}, NULL};
	struct offline_req req;
	char actor[TALLY_ACTOR_SIZE];
	int rc, was_replayed;

	if ((rc = need_json(p)))
		return rc < 0 ? -1 : 0;
	for (const char *k = p->idem_key; *k; k++)
		if (*k < 0x21 || *k > 0x7e)
			return http_error(p, 422, "validation_failed", "Idempotency-Key is invalid",
			                  json_pack("{s:s}", "Idempotency-Key",
			                            "must be 1 to 255 printable ASCII characters"),
			                  0);
	if (s->stopping)
		return http_engine_error(p, TALLY_ESHUTDOWN);
	if (!validate_slug(p->param[0], strlen(p->param[0])))
		return http_engine_error(p, TALLY_ENOCAMPAIGN);
	rc = validate_offline(p->body.p ? p->body.p : "", p->body.len, util_now_ms(), &req, &err);
	if (rc)
		return validation_error(p, rc, &err);
	api_actor(p, actor, sizeof(actor));
	rc = engine_offline_gift(s->engine, p->param[0], &req, p->idem_key, actor, http_body(p),
	                         &was_replayed, engine_done, ref_ud(p));
	if (rc)
		return http_engine_error(p, rc);
	if (was_replayed)
		return http_send(p, 201, NULL, api_replayed, 1);
	return HTTP_ASYNC;
}

static int h_admin_create(struct server *s, struct http_pss *p)
{
	struct validate_error err = {{0}, NULL};
	struct campaign_spec spec;
	char actor[TALLY_ACTOR_SIZE];
	int rc;

	if ((rc = need_json(p)))
		return rc < 0 ? -1 : 0;
	rc = validate_campaign(p->body.p ? p->body.p : "", p->body.len, 1, &spec, &err);
	if (rc)
		return validation_error(p, rc, &err);
	api_actor(p, actor, sizeof(actor));
	rc = engine_campaign_create(s->engine, &spec, actor, engine_done, ref_ud(p));
	if (rc)
		return http_engine_error(p, rc);
	return HTTP_ASYNC;
}

static int h_admin_update(struct server *s, struct http_pss *p)
{
	struct validate_error err = {{0}, NULL};
	struct campaign_spec spec;
	char actor[TALLY_ACTOR_SIZE];
	int rc;

	if ((rc = need_json(p)))
		return rc < 0 ? -1 : 0;
	if (!validate_slug(p->param[0], strlen(p->param[0])))
		return http_engine_error(p, TALLY_ENOCAMPAIGN);
	rc = validate_campaign(p->body.p ? p->body.p : "", p->body.len, 0, &spec, &err);
	if (rc)
		return validation_error(p, rc, &err);
	api_actor(p, actor, sizeof(actor));
	rc = engine_campaign_update(s->engine, p->param[0], &spec, actor, engine_done, ref_ud(p));
	if (rc)
		return http_engine_error(p, rc);
	return HTTP_ASYNC;
}

static int h_admin_action(struct server *s, struct http_pss *p)
{
	char actor[TALLY_ACTOR_SIZE];
	int rc;

	if (!validate_slug(p->param[0], strlen(p->param[0])))
		return http_engine_error(p, TALLY_ENOCAMPAIGN);
	api_actor(p, actor, sizeof(actor));
	rc = engine_campaign_action(s->engine, p->param[0], p->param[1], actor, engine_done,
	                            ref_ud(p));
	if (rc)
		return http_engine_error(p, rc);
	return HTTP_ASYNC;
}

static int h_admin_pause(struct server *s, struct http_pss *p)
{
	memcpy(p->param[1], "pause", 6);
	return h_admin_action(s, p);
}

static int h_admin_resume(struct server *s, struct http_pss *p)
{
	memcpy(p->param[1], "resume", 7);
	return h_admin_action(s, p);
}

static int h_admin_close(struct server *s, struct http_pss *p)
{
	memcpy(p->param[1], "close", 6);
	return h_admin_action(s, p);
}

/* ---- match pools ---- */

static int h_pools(struct server *s, struct http_pss *p)
{
	if (engine_pools_json(s->engine, http_body(p)))
		return -1;
	return send_json(p, 200, NULL);
}

static int h_pool_get(struct server *s, struct http_pss *p)
{
	int rc;

	if (!validate_slug(p->param[0], strlen(p->param[0])))
		return http_engine_error(p, TALLY_ENOPOOL);
	rc = engine_pool_json(s->engine, p->param[0], http_body(p));
	if (rc)
		return rc == -ENOMEM ? -1 : http_engine_error(p, rc);
	return send_json(p, 200, NULL);
}

/* Create (no slug in the path) or change a pool. */
static int pool_put(struct server *s, struct http_pss *p, int create)
{
	struct validate_error err = {{0}, NULL};
	char actor[TALLY_ACTOR_SIZE];
	struct pool_spec *spec;
	int rc;

	if ((rc = need_json(p)))
		return rc < 0 ? -1 : 0;
	if (!create && !validate_slug(p->param[0], strlen(p->param[0])))
		return http_engine_error(p, TALLY_ENOPOOL);
	spec = malloc(sizeof(*spec)); /* 5 KB: not on the service thread's stack */
	if (!spec)
		return -1;
	rc = validate_pool(p->body.p ? p->body.p : "", p->body.len, create, spec, &err);
	if (rc) {
		free(spec);
		return validation_error(p, rc, &err);
	}
	api_actor(p, actor, sizeof(actor));
	rc = create
	         ? engine_pool_create(s->engine, spec, actor, engine_done, ref_ud(p))
	         : engine_pool_update(s->engine, p->param[0], spec, actor, engine_done, ref_ud(p));
	free(spec);
	return rc ? http_engine_error(p, rc) : HTTP_ASYNC;
}

static int h_pool_create(struct server *s, struct http_pss *p)
{
	return pool_put(s, p, 1);
}

static int h_pool_update(struct server *s, struct http_pss *p)
{
	return pool_put(s, p, 0);
}

static int pool_action(struct server *s, struct http_pss *p, const char *action)
{
	char actor[TALLY_ACTOR_SIZE];
	int rc;

	if (!validate_slug(p->param[0], strlen(p->param[0])))
		return http_engine_error(p, TALLY_ENOPOOL);
	api_actor(p, actor, sizeof(actor));
	rc = engine_pool_action(s->engine, p->param[0], action, actor, engine_done, ref_ud(p));
	return rc ? http_engine_error(p, rc) : HTTP_ASYNC;
}

static int h_pool_pause(struct server *s, struct http_pss *p)
{
	return pool_action(s, p, "pause");
}

static int h_pool_resume(struct server *s, struct http_pss *p)
{
	return pool_action(s, p, "resume");
}

static int h_pool_deplete(struct server *s, struct http_pss *p)
{
	return pool_action(s, p, "deplete");
}

/* ---- challenges ---- */

static int h_challenges(struct server *s, struct http_pss *p)
{
	if (engine_challenges_json(s->engine, http_body(p)))
		return -1;
	return send_json(p, 200, NULL);
}

static int h_challenge_get(struct server *s, struct http_pss *p)
{
	int rc;

	if (!validate_slug(p->param[0], strlen(p->param[0])))
		return http_engine_error(p, TALLY_ENOCHALLENGE);
	rc = engine_challenge_json(s->engine, p->param[0], http_body(p));
	if (rc)
		return rc == -ENOMEM ? -1 : http_engine_error(p, rc);
	return send_json(p, 200, NULL);
}

static int h_challenge_create(struct server *s, struct http_pss *p)
{
	struct validate_error err = {{0}, NULL};
	char actor[TALLY_ACTOR_SIZE];
	struct challenge_spec *spec;
	int rc;

	if ((rc = need_json(p)))
		return rc < 0 ? -1 : 0;
	spec = malloc(sizeof(*spec));
	if (!spec)
		return -1;
	rc = validate_challenge(p->body.p ? p->body.p : "", p->body.len, spec, &err);
	if (rc) {
		free(spec);
		return validation_error(p, rc, &err);
	}
	api_actor(p, actor, sizeof(actor));
	rc = engine_challenge_create(s->engine, spec, actor, engine_done, ref_ud(p));
	free(spec);
	return rc ? http_engine_error(p, rc) : HTTP_ASYNC;
}

/* ---- queues, jobs, refunds, audit ---- */

static int h_queues(struct server *s, struct http_pss *p)
{
	if (admin_queues_json(s->engine, http_body(p)))
		return -1;
	return send_json(p, 200, NULL);
}

static int h_queue_action(struct server *s, struct http_pss *p, const char *action)
{
	char actor[TALLY_ACTOR_SIZE];
	int rc;

	api_actor(p, actor, sizeof(actor));
	rc = engine_queue_action(s->engine, p->param[0], action, actor, engine_done, ref_ud(p));
	if (rc)
		return http_engine_error(p, rc);
	return HTTP_ASYNC;
}

static int h_queue_pause(struct server *s, struct http_pss *p)
{
	return h_queue_action(s, p, "pause");
}

static int h_queue_resume(struct server *s, struct http_pss *p)
{
	return h_queue_action(s, p, "resume");
}

static int h_queue_retry_dead(struct server *s, struct http_pss *p)
{
	return h_queue_action(s, p, "retry-dead");
}

static int h_jobs(struct server *s, struct http_pss *p)
{
	char queue[16], state[16];
	int limit = 100, rc, q, st;

	if (http_query(p, "queue", queue, sizeof(queue)) < 0 || (q = job_queue_by_name(queue)) < 0)
		return http_error(
		    p, 400, "invalid_query", "queue is missing or unknown",
		    json_pack("{s:s}", "queue", "must be payments, receipts or webhooks"), 0);
	if (http_query(p, "state", state, sizeof(state)) < 0)
		snprintf(state, sizeof(state), "dead");
	if ((st = job_state_by_name(state)) < 0)
		return http_error(
		    p, 400, "invalid_query", "state is unknown",
		    json_pack("{s:s}", "state", "must be ready, running, scheduled, dead or done"),
		    0);
	if ((rc = query_limit(p, 1000, &limit)))
		return rc < 0 ? -1 : 0;
	rc = admin_jobs_json(s->engine, (enum job_queue)q, (enum job_state)st, limit, http_body(p));
	if (rc)
		return rc < 0 ? -1 : http_engine_error(p, rc);
	return send_json(p, 200, NULL);
}

static int h_job_action(struct server *s, struct http_pss *p, const char *action)
{
	char actor[TALLY_ACTOR_SIZE];
	int64_t id;
	int rc;

	if (uri_id(p->param[0], &id))
		return http_engine_error(p, TALLY_ENOJOB);
	api_actor(p, actor, sizeof(actor));
	rc = engine_job_action(s->engine, id, action, actor, engine_done, ref_ud(p));
	if (rc)
		return http_engine_error(p, rc);
	return HTTP_ASYNC;
}

static int h_job_retry(struct server *s, struct http_pss *p)
{
	return h_job_action(s, p, "retry");
}

static int h_job_discard(struct server *s, struct http_pss *p)
{
	return h_job_action(s, p, "discard");
}

static int h_refund(struct server *s, struct http_pss *p)
{
	char actor[TALLY_ACTOR_SIZE], reason[201] = "";
	json_t *body = NULL, *r;
	struct validate_error err = {{0}, NULL};
	int rc;

	if (p->body.len) {
		if ((rc = need_json(p)))
			return rc < 0 ? -1 : 0;
		rc = validate_json_object(p->body.p, p->body.len, &body, &err);
		if (rc)
			return validation_error(p, rc, &err);
		r = json_object_get(body, "reason");
		if (r && (!json_is_string(r) || json_string_length(r) > 200)) {
			json_decref(body);
			return http_error(
			    p, 422, "validation_failed", "reason is invalid",
			    json_pack("{s:s}", "reason", "must be a string of at most 200 bytes"),
			    0);
		}
		if (r)
			snprintf(reason, sizeof(reason), "%s", json_string_value(r));
		json_decref(body);
	}
	api_actor(p, actor, sizeof(actor));
	rc = engine_refund(s->engine, p->param[0], reason, actor, engine_done, ref_ud(p));
	if (rc)
		return http_engine_error(p, rc);
	return HTTP_ASYNC;
}

static int h_audit(struct server *s, struct http_pss *p)
{
	int limit = 100, rc;

	if ((rc = query_limit(p, 1000, &limit)))
		return rc < 0 ? -1 : 0;
	rc = admin_audit_json(s->engine, limit, http_body(p));
	if (rc)
		return rc < 0 ? -1 : http_engine_error(p, rc);
	return send_json(p, 200, NULL);
}

/* ---- staff tokens ---- */

static int h_whoami(struct server *s, struct http_pss *p)
{
	struct buf *b = http_body(p);
	int rc = buf_puts(b, "{\"name\":");

	(void)s;
	rc |= buf_json_string(b, p->who.name);
	rc |= buf_printf(b, ",\"role\":\"%s\"}", staff_role_names[p->who.role]);
	return rc ? -1 : send_json(p, 200, NULL);
}

static int h_tokens(struct server *s, struct http_pss *p)
{
	if (admin_tokens_json(s->engine, http_body(p)))
		return -1;
	return send_json(p, 200, NULL);
}

static int h_token_add(struct server *s, struct http_pss *p)
{
	struct validate_error err = {{0}, NULL};
	char name[TALLY_STAFF_NAME_SIZE], actor[TALLY_ACTOR_SIZE];
	enum staff_role role;
	int rc;

	if ((rc = need_json(p)))
		return rc < 0 ? -1 : 0;
	rc = validate_token(p->body.p ? p->body.p : "", p->body.len, name, &role, &err);
	if (rc)
		return validation_error(p, rc, &err);
	api_actor(p, actor, sizeof(actor));
	rc = engine_token_add(s->engine, name, role, actor, engine_done, ref_ud(p));
	if (rc)
		return http_engine_error(p, rc);
	return HTTP_ASYNC;
}

static int h_token_revoke(struct server *s, struct http_pss *p)
{
	char actor[TALLY_ACTOR_SIZE];
	int rc;

	api_actor(p, actor, sizeof(actor));
	rc = engine_token_revoke(s->engine, p->param[0], actor, engine_done, ref_ud(p));
	if (rc)
		return http_engine_error(p, rc);
	return HTTP_ASYNC;
}

/* The giving day: its schedule, phase, server clock and totals. Never
 * cached by clients (now_ms is the clock a countdown follows). */
static int h_day_get(struct server *s, struct http_pss *p)
{
	uint64_t seq;

	if (engine_day_json(s->engine, http_body(p), &seq))
		return -1;
	return send_json(p, 200, NULL);
}

static int h_day_put(struct server *s, struct http_pss *p)
{
	struct validate_error err = {{0}, NULL};
	struct giving_day day;
	char actor[TALLY_ACTOR_SIZE];
	int rc;

	if ((rc = need_json(p)))
		return rc < 0 ? -1 : 0;
	rc = validate_day(p->body.p ? p->body.p : "", p->body.len, &day, &err);
	if (rc)
		return validation_error(p, rc, &err);
	api_actor(p, actor, sizeof(actor));
	rc = engine_day_set(s->engine, &day, actor, engine_done, ref_ud(p));
	if (rc)
		return http_engine_error(p, rc);
	return HTTP_ASYNC;
}

static int h_day_delete(struct server *s, struct http_pss *p)
{
	char actor[TALLY_ACTOR_SIZE];
	int rc;

	api_actor(p, actor, sizeof(actor));
	rc = engine_day_clear(s->engine, actor, engine_done, ref_ud(p));
	if (rc)
		return http_engine_error(p, rc);
	return HTTP_ASYNC;
}

/* Every route, with the least staff role that may call it: this table is
 * the one place that says who may do what. A viewer reads every staff
 * listing (the tokens' excepted) and acts on nothing; an operator also
 * pauses and resumes campaigns, match pools and queues, retries or
 * discards jobs and records offline gifts (cheques and cash that came in);
 * an admin does everything: creates, changes and closes campaigns,
 * creates, changes and depletes match pools, refunds, manages the staff
 * tokens, exports the donations (every donor's name and email in one
 * file: a viewer looks up one gift at a time) and sets the giving day. */
const struct route api_routes[] = {
    {M_GET, "/healthz", STAFF_PUBLIC, 0, 200, h_healthz},
    {M_GET, "/readyz", STAFF_PUBLIC, 0, 200, h_readyz},
    {M_GET, "/metrics", STAFF_PUBLIC, 0, 200, h_metrics},
    {M_GET, "/api/v1/campaigns", STAFF_PUBLIC, 1, 200, h_campaign_list},
    {M_GET, "/api/v1/campaigns/*", STAFF_PUBLIC, 1, 200, h_campaign_get},
    {M_POST, "/api/v1/campaigns/*/donations", STAFF_PUBLIC, 1, 202, h_donate},
    {M_GET, "/api/v1/donations/*", STAFF_PUBLIC, 1, 200, h_donation_get},
    {M_GET, "/api/v1/leaderboard", STAFF_PUBLIC, 1, 200, h_leaderboard},
    {M_GET, "/api/v1/categories", STAFF_PUBLIC, 1, 200, h_categories},
    {M_POST, "/api/v1/admin/campaigns", STAFF_ADMIN, 0, 201, h_admin_create},
    {M_PATCH, "/api/v1/admin/campaigns/*", STAFF_ADMIN, 0, 200, h_admin_update},
    {M_POST, "/api/v1/admin/campaigns/*/pause", STAFF_OPERATOR, 0, 200, h_admin_pause},
    {M_POST, "/api/v1/admin/campaigns/*/resume", STAFF_OPERATOR, 0, 200, h_admin_resume},
    {M_POST, "/api/v1/admin/campaigns/*/close", STAFF_ADMIN, 0, 200, h_admin_close},
    {M_POST, "/api/v1/admin/campaigns/*/offline-donations", STAFF_OPERATOR, 0, 201, h_offline},
    {M_GET, "/api/v1/admin/match-pools", STAFF_VIEWER, 0, 200, h_pools},
    {M_POST, "/api/v1/admin/match-pools", STAFF_ADMIN, 0, 201, h_pool_create},
    {M_GET, "/api/v1/admin/match-pools/*", STAFF_VIEWER, 0, 200, h_pool_get},
    {M_PATCH, "/api/v1/admin/match-pools/*", STAFF_ADMIN, 0, 200, h_pool_update},
    {M_POST, "/api/v1/admin/match-pools/*/pause", STAFF_OPERATOR, 0, 200, h_pool_pause},
    {M_POST, "/api/v1/admin/match-pools/*/resume", STAFF_OPERATOR, 0, 200, h_pool_resume},
    {M_POST, "/api/v1/admin/match-pools/*/deplete", STAFF_ADMIN, 0, 200, h_pool_deplete},
    {M_GET, "/api/v1/admin/challenges", STAFF_VIEWER, 0, 200, h_challenges},
    {M_POST, "/api/v1/admin/challenges", STAFF_ADMIN, 0, 201, h_challenge_create},
    {M_GET, "/api/v1/admin/challenges/*", STAFF_VIEWER, 0, 200, h_challenge_get},
    {M_GET, "/api/v1/admin/queues", STAFF_VIEWER, 0, 200, h_queues},
    {M_POST, "/api/v1/admin/queues/*/pause", STAFF_OPERATOR, 0, 200, h_queue_pause},
    {M_POST, "/api/v1/admin/queues/*/resume", STAFF_OPERATOR, 0, 200, h_queue_resume},
    {M_POST, "/api/v1/admin/queues/*/retry-dead", STAFF_OPERATOR, 0, 200, h_queue_retry_dead},
    {M_GET, "/api/v1/admin/jobs", STAFF_VIEWER, 0, 200, h_jobs},
    {M_POST, "/api/v1/admin/jobs/*/retry", STAFF_OPERATOR, 0, 200, h_job_retry},
    {M_DELETE, "/api/v1/admin/jobs/*", STAFF_OPERATOR, 0, 200, h_job_discard},
    {M_GET, "/api/v1/admin/donations.csv", STAFF_ADMIN, 0, 200, export_handler},
    {M_GET, "/api/v1/admin/donations/*", STAFF_VIEWER, 0, 200, h_admin_donation_get},
    {M_POST, "/api/v1/admin/donations/*/refund", STAFF_ADMIN, 0, 202, h_refund},
    {M_GET, "/api/v1/admin/audit", STAFF_VIEWER, 0, 200, h_audit},
    {M_GET, "/api/v1/admin/whoami", STAFF_VIEWER, 0, 200, h_whoami},
    {M_GET, "/api/v1/admin/tokens", STAFF_ADMIN, 0, 200, h_tokens},
    {M_POST, "/api/v1/admin/tokens", STAFF_ADMIN, 0, 201, h_token_add},
    {M_DELETE, "/api/v1/admin/tokens/*", STAFF_ADMIN, 0, 200, h_token_revoke},
    {M_GET, "/api/v1/admin/shield", STAFF_VIEWER, 0, 200, shield_h_get},
    {M_POST, "/api/v1/admin/shield/raise", STAFF_OPERATOR, 0, 200, shield_h_raise},
    {M_POST, "/api/v1/admin/shield/lower", STAFF_OPERATOR, 0, 200, shield_h_lower},
    {M_GET, "/api/v1/day", STAFF_PUBLIC, 1, 200, h_day_get},
    {M_PUT, "/api/v1/admin/day", STAFF_ADMIN, 0, 200, h_day_put},
    {M_DELETE, "/api/v1/admin/day", STAFF_ADMIN, 0, 200, h_day_delete},
};
const size_t api_n_routes = UTIL_ARRAY_LEN(api_routes);
