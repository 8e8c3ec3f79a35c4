/* ws/http.c - HTTP plumbing: request intake, routing, responses.
 *
 * DESIGN: every HTTP request arrives in LWS_CALLBACK_HTTP. We copy what the
 * handler needs out of the headers (path, query, auth, keys), bound every
 * size, and either dispatch at once (no body) or collect the body (16 KiB at
 * most) and dispatch at BODY_COMPLETION. A handler answers synchronously
 * with one lws_write of headers + body, or returns HTTP_ASYNC after handing
 * the request's reference ((fd << 32) | gen) to the engine; the answer then
 * comes back through the server queue and is written on WRITEABLE. The gen
 * guards against answering a request on a connection that closed or moved
 * on to another request meanwhile. The connection is not read while the
 * engine works, so a client that half-closes after its request still gets
 * the answer.
 */
#include "ws/internal.h"
#include "ws/proxy.h"
#include "ws/ratelimit.h"
#include "base/log.h"
#include "base/util.h"
#include "core/validate.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static const struct {
	enum lws_token_indexes tok;
	enum http_method method;
} method_tokens[] = {
    {WSI_TOKEN_GET_URI, M_GET},         {WSI_TOKEN_POST_URI, M_POST},
    {WSI_TOKEN_HEAD_URI, M_HEAD},       {WSI_TOKEN_PATCH_URI, M_PATCH},
    {WSI_TOKEN_DELETE_URI, M_DELETE},   {WSI_TOKEN_PUT_URI, M_PUT},
    {WSI_TOKEN_OPTIONS_URI, M_OPTIONS},
};

uint64_t http_ref(const struct http_pss *p)
{
	return ((uint64_t)(uint32_t)p->fd << 32) | p->gen;
}

struct http_pss *http_lookup(struct server *s, uint64_t ref)
{
	size_t fd = (size_t)(ref >> 32);
	uint32_t gen = (uint32_t)ref;

	if (fd >= s->n_conns || !s->conns[fd].wsi || s->conns[fd].gen != gen)
		return NULL;
	return s->conns[fd].pss;
}

struct buf *http_body(struct http_pss *p)
{
	p->out.len = LWS_PRE + HTTP_HDR_ROOM;
	if (buf_reserve(&p->out, 512))
		p->out.len = 0;
	return &p->out;
}

const double metric_latency_bounds[METRIC_BUCKETS] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                                      0.05,   0.1,   0.25,  0.5,   1.0,  2.5};

static void record(struct server *s, const struct http_pss *p, int status)
{
	struct http_metrics *m = s->metrics;
	double secs = (double)(util_mono_ns() - p->started_ns) / 1e9;
	int r = p->metric_route, b = 0;

	if (r < 0 || r >= METRIC_ROUTES || status < 100 || status >= 600)
		return;
	m->by_status[r][status - 100]++;
	while (b < METRIC_BUCKETS && secs > metric_latency_bounds[b])
		b++;
	m->latency[r][b]++;
	m->latency_sum[r] += secs;
}

static const char *reason(int status)
{
	static const struct {
		int status;
		const char *text;
	} reasons[] = {
	    {200, "OK"},
	    {201, "Created"},
	    {202, "Accepted"},
	    {204, "No Content"},
	    {304, "Not Modified"},
	    {400, "Bad Request"},
	    {401, "Unauthorized"},
	    {403, "Forbidden"},
	    {404, "Not Found"},
	    {405, "Method Not Allowed"},
	    {409, "Conflict"},
	    {411, "Length Required"},
	    {413, "Content Too Large"},
	    {414, "URI Too Long"},
	    {415, "Unsupported Media Type"},
	    {422, "Unprocessable Content"},
	    {429, "Too Many Requests"},
	    {431, "Request Header Fields Too Large"},
	    {500, "Internal Server Error"},
	    {501, "Not Implemented"},
	    {503, "Service Unavailable"},
	    {505, "HTTP Version Not Supported"},
	};

	for (size_t i = 0; i < UTIL_ARRAY_LEN(reasons); i++)
		if (reasons[i].status == status)
			return reasons[i].text;
	return "Status";
}

/* On every answer: no MIME sniffing (a JSON body or a text file is never
 * run as a script or a page), no Referer to the sites a page links to, and
 * a Content-Security-Policy (an HTML page's own from assets.c, else one
 * that lets nothing load or frame the answer). */
static const struct http_header security_headers[] = {
    {"x-content-type-options:", "nosniff"},
    {"referrer-policy:", "no-referrer"},
};

/* The head of an answer into hdr (HTTP_HDR_ROOM bytes): its length, or 0
 * when it does not fit. body_len < 0: a streamed body (chunked when
 * chunked, else ended by closing the connection). */
static size_t build_head(struct http_pss *p, int status, const char *ctype,
                         const struct http_header *hdrs, int n_hdrs, long long body_len,
                         int chunked, unsigned char *hdr)
{
	const char *csp = p->csp ? p->csp : HTTP_CSP_NONE;
	unsigned char *h = hdr, *end = hdr + HTTP_HDR_ROOM - 1;
	struct lws *wsi = p->wsi;

	ctype = ctype ? ctype : "application/json; charset=utf-8";
	/* Our own status line: lws leaves the reason phrase of 201/202/204/409/
	 * 422/429 empty. tally serves HTTP/1.1 only (no TLS, so no h2). */
	h += snprintf((char *)h, HTTP_HDR_ROOM, "HTTP/1.1 %d %s\r\n", status, reason(status));
	if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
	                                 (const unsigned char *)ctype, (int)strlen(ctype), &h, end))
		return 0;
	if (body_len >= 0 &&
	    lws_add_http_header_content_length(wsi, (lws_filepos_t)body_len, &h, end))
		return 0;
	if (body_len < 0 && chunked &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING,
	                                 (const unsigned char *)"chunked", 7, &h, end))
		return 0;
	for (int i = 0; i < n_hdrs; i++)
		if (lws_add_http_header_by_name(wsi, (const unsigned char *)hdrs[i].name,
		                                (const unsigned char *)hdrs[i].value,
		                                (int)strlen(hdrs[i].value), &h, end))
			return 0;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(security_headers); i++)
		if (lws_add_http_header_by_name(wsi,
		                                (const unsigned char *)security_headers[i].name,
		                                (const unsigned char *)security_headers[i].value,
		                                (int)strlen(security_headers[i].value), &h, end))
			return 0;
	if (lws_add_http_header_by_name(wsi, (const unsigned char *)"content-security-policy:",
	                                (const unsigned char *)csp, (int)strlen(csp), &h, end))
		return 0;
	if (p->cors &&
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-origin:",
	                                (const unsigned char *)"*", 1, &h, end))
		return 0;
	if (p->close_after &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close",
	                                 5, &h, end))
		return 0;
	if (lws_finalize_http_header(wsi, &h, end))
		return 0;
	return (size_t)(h - hdr);
}

int http_send(struct http_pss *p, int status, const char *ctype, const struct http_header *hdrs,
              int n_hdrs)
{
	unsigned char hdr[HTTP_HDR_ROOM];
	size_t body_start = LWS_PRE + HTTP_HDR_ROOM, body_len, hlen;
	struct lws *wsi = p->wsi;

	if (p->out.len < body_start)
		return -1;
	body_len = p->out.len - body_start;
	if (p->method == M_HEAD)
		p->out.len = body_start;
	hlen = build_head(p, status, ctype, hdrs, n_hdrs, (long long)body_len, 0, hdr);
	if (!hlen)
		return -1;
	record(lws_context_user(lws_get_context(wsi)), p, status);
	p->out_start = body_start - hlen;
	memcpy(p->out.p + p->out_start, hdr, hlen);
	p->ready = 1;
	atomic_fetch_add(&((struct server *)lws_context_user(lws_get_context(wsi)))->http_requests,
	                 1);
	return 0;
}

size_t http_stream_head(struct http_pss *p, int status, const char *ctype,
                        const struct http_header *hdrs, int n_hdrs, int chunked, unsigned char *dst)
{
	struct server *s = lws_context_user(lws_get_context(p->wsi));
	size_t hlen = build_head(p, status, ctype, hdrs, n_hdrs, -1, chunked, dst);

	if (!hlen)
		return 0;
	record(s, p, status);
	atomic_fetch_add(&s->http_requests, 1);
	return hlen;
}

int http_error(struct http_pss *p, int status, const char *code, const char *message,
               json_t *fields, int retry_after)
{
	struct buf *b = http_body(p);
	struct http_header h[1];
	char ra[16];
	int rc = 0;

	rc |= buf_printf(b, "{\"error\":{\"code\":\"%s\",\"message\":", code);
	rc |= buf_json_string(b, message);
	if (fields) {
		char *f = json_dumps(fields, JSON_COMPACT | JSON_SORT_KEYS);

		if (f) {
			rc |= buf_puts(b, ",\"fields\":");
			rc |= buf_puts(b, f);
			free(f);
		}
		json_decref(fields);
	}
	rc |= buf_puts(b, "}}");
	if (rc)
		return -1;
	snprintf(ra, sizeof(ra), "%d", retry_after);
	h[0].name = "retry-after:";
	h[0].value = ra;
	return http_send(p, status, NULL, h, retry_after > 0);
}

int http_engine_error(struct http_pss *p, int rc)
{
	static const struct {
		int rc, status;
		const char *code;
		const char *field;
	} map[] = {
	    {TALLY_ENOCAMPAIGN, 404, "campaign_not_found", NULL},
	    {TALLY_EPAUSED, 409, "campaign_paused", NULL},
	    {TALLY_ECLOSED, 409, "campaign_closed", NULL},
	    {TALLY_ECURRENCY, 422, "validation_failed", "currency"},
	    {TALLY_EOVERLOADED, 503, "overloaded", NULL},
	    {TALLY_ESHUTDOWN, 503, "shutting_down", NULL},
	    {TALLY_EIO, 503, "storage_unavailable", NULL},
	    {TALLY_ETOTAL, 422, "validation_failed", "amount_cents"},
	    {TALLY_EEXISTS, 409, "campaign_exists", "slug"},
	    {TALLY_ENODONATION, 404, "donation_not_found", NULL},
	    {TALLY_ESTATE, 409, "invalid_state", NULL},
	    {TALLY_EIDEM_REUSED, 422, "idempotency_key_reused", NULL},
	    {TALLY_EIDEM_BUSY, 409, "idempotency_key_in_use", NULL},
	    {TALLY_EIDEM_KEY, 422, "validation_failed", "Idempotency-Key"},
	    {TALLY_ESCHEDULE, 422, "validation_failed", "ends_at"},
	    {TALLY_ENOJOB, 404, "job_not_found", NULL},
	    {TALLY_ENOQUEUE, 404, "queue_not_found", NULL},
	    {TALLY_EJOBBUSY, 409, "job_running", NULL},
	    {TALLY_ENOTOKEN, 404, "token_not_found", NULL},
	    {TALLY_ETOKEN_EXISTS, 409, "token_exists", "name"},
	    {TALLY_ESTARTUP, 409, "startup_token", NULL},
	    {TALLY_ENOPOOL, 404, "pool_not_found", NULL},
	    {TALLY_EPOOL_EXISTS, 409, "pool_exists", "slug"},
	    {TALLY_EPOOL_AMOUNT, 422, "validation_failed", "amount_cents"},
	    {TALLY_EPOOL_CURRENCY, 422, "validation_failed", "campaigns"},
	    {TALLY_ENOCHALLENGE, 404, "challenge_not_found", NULL},
	    {TALLY_ECHALLENGE_EXISTS, 409, "challenge_exists", "slug"},
	    {TALLY_ENOFEE, 422, "validation_failed", "cover_fee"},
	    {TALLY_EOFFLINE, 409, "offline_gift", NULL},
	    {TALLY_ENOCATEGORY, 404, "category_not_found", "category"},
	    {TALLY_EDAY_BEFORE, 409, "campaign_closed", NULL},
	    {TALLY_EDAY_CLOSED, 409, "campaign_closed", NULL},
	    {TALLY_EDAY_CURRENCY, 409, "currency_mismatch", "currency"},
	    {TALLY_ENOT_DAY_CURRENCY, 422, "validation_failed", "currency"},
	    {TALLY_ECAPTCHA_REQUIRED, 403, "captcha_required", "captcha_token"},
	    {TALLY_ECAPTCHA_FAILED, 403, "captcha_failed", "captcha_token"},
	    {TALLY_ECAPTCHA_DOWN, 503, "captcha_unavailable", NULL},
	};

	for (size_t i = 0; i < UTIL_ARRAY_LEN(map); i++)
		if (map[i].rc == rc)
			return http_error(p, map[i].status, map[i].code, tally_strerror(rc),
			                  map[i].field
			                      ? json_pack("{s:s}", map[i].field, tally_strerror(rc))
			                      : NULL,
			                  rc == TALLY_ECAPTCHA_DOWN                        ? 5
			                  : map[i].status == 503 || rc == TALLY_EIDEM_BUSY ? 1
			                                                                   : 0);
	return http_error(p, 500, "internal", tally_strerror(rc), NULL, 0);
}

int http_query(const struct http_pss *p, const char *name, char *dst, size_t cap)
{
	return uri_query_get(p->query, name, dst, cap);
}

int http_flush(struct http_pss *p)
{
	size_t len;

	if (!p->ready)
		return 0;
	p->ready = 0;
	if (p->async) {
		struct server *s = lws_context_user(lws_get_context(p->wsi));

		s->async_pending--;
		p->async = 0;
	}
	len = p->out.len - p->out_start;
	if (lws_write(p->wsi, (unsigned char *)p->out.p + p->out_start, len,
	              LWS_WRITE_HTTP_FINAL) != (int)len)
		return -1;
	/* Requests are bounded per connection; keep idle buffers small. */
	if (p->out.cap > 65536)
		buf_fini(&p->out);
	if (p->body.cap > 65536)
		buf_fini(&p->body);
	if (p->close_after)
		return -1;
	return lws_http_transaction_completed(p->wsi) ? -1 : 0;
}

/* A client may shut down its side once its request is out (a half-close)
 * and wait for the answer, but lws closes a connection as soon as it reads
 * that end of stream. So the connection is not read while the engine works
 * on a request (lws serves no WRITEABLE either meanwhile: reading resumes
 * once the answer is built), and an answer that is ready when lws closes
 * anyway goes to the socket in the close callback, before lws shuts the
 * socket down. */
static int pause_rx(struct http_pss *p)
{
	if (p->rx_paused)
		return 0;
	p->rx_paused = 1;
	return lws_rx_flow_control(p->wsi, 0) ? -1 : 0;
}

int http_resume_rx(struct http_pss *p)
{
	if (!p->rx_paused)
		return 0;
	p->rx_paused = 0;
	return lws_rx_flow_control(p->wsi, 1) ? -1 : 0;
}

static void flush_on_close(struct http_pss *p)
{
	size_t len = p->out.len - p->out_start;
	ssize_t n;

	if (!p->ready || !p->wsi)
		return;
	p->ready = 0;
	n = send(lws_get_socket_fd(p->wsi), p->out.p + p->out_start, len,
	         MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n != (ssize_t)len)
		log_msg(LOG_INFO, "http.answer_lost", "the client closed before its answer: %s",
		        n < 0 ? strerror(errno) : "short write");
}

/* 1 when any origin may read the answers to method on path: a route of
 * the table marked cors (HEAD as GET; OPTIONS, the preflight, for any
 * method of it). Admin routes never are. */
static int cors_allowed(struct http_pss *p)
{
	enum http_method m = p->method == M_HEAD ? M_GET : p->method;

	for (size_t i = 0; i < api_n_routes; i++) {
		const struct route *r = &api_routes[i];

		if (r->cors && (r->method == m || m == M_OPTIONS) &&
		    uri_match(r->pattern, p->path, p->param))
			return 1;
	}
	return 0;
}

/* 403: the caller's token is valid but its role is below need. The error
 * names the role needed, in its message and as "role_needed". */
static int forbidden(struct http_pss *p, enum staff_role need)
{
	struct buf *b = http_body(p);
	char msg[200];
	int rc;

	snprintf(msg, sizeof(msg), "this endpoint needs the %s role; token %s has the %s role",
	         staff_role_names[need], p->who.name, staff_role_names[p->who.role]);
	rc = buf_puts(b, "{\"error\":{\"code\":\"forbidden\",\"message\":");
	rc |= buf_json_string(b, msg);
	rc |= buf_printf(b, ",\"role_needed\":\"%s\"}}", staff_role_names[need]);
	return rc ? -1 : http_send(p, 403, NULL, NULL, 0);
}

static int dispatch(struct server *s, struct http_pss *p)
{
	int path_matched = 0, rc;

	p->metric_route = (int)api_n_routes + 1; /* "other" until a route matches */
	if (s->stopping)
		p->close_after = 1; /* draining: no more requests on this connection */
	if (p->method == M_OPTIONS) {
		/* A preflight: granted only where cross-origin answers are
		 * (p->cors adds the origin). */
		static const struct http_header h[] = {
		    {"access-control-allow-methods:", "GET, POST, OPTIONS"},
		    {"access-control-allow-headers:", "Content-Type, Idempotency-Key"},
		    {"access-control-max-age:", "86400"},
		};

		http_body(p);
		return http_send(p, 204, "text/plain", h, p->cors ? (int)UTIL_ARRAY_LEN(h) : 0) ? -1
		                                                                                : 0;
	}
	for (size_t i = 0; i < api_n_routes; i++) {
		const struct route *r = &api_routes[i];
		enum http_method m = p->method == M_HEAD ? M_GET : p->method;

		if (!uri_match(r->pattern, p->path, p->param))
			continue;
		path_matched = 1;
		if (r->method != m)
			continue;
		if (r->role > p->who.role)
			return p->who.role == STAFF_PUBLIC
			           ? http_error(p, 401, "unauthorized",
			                        "this endpoint needs Authorization: Bearer <staff "
			                        "token>",
			                        NULL, 0)
			           : forbidden(p, r->role);
		p->route = r;
		p->metric_route = (int)i;
		if (s->ratelimit && m != M_GET &&
		    (s->cfg.rate_limit_loopback || !util_is_loopback(p->client))) {
			int wait = ratelimit_take(s->ratelimit, p->client, util_mono_ns());

			if (wait > 0)
				return http_error(
				    p, 429, "rate_limited",
				    "too many requests from this address; retry later", NULL, wait);
		}
		rc = r->handler(s, p);
		if (rc == HTTP_ASYNC) {
			p->async = 1;
			s->async_pending++;
		}
		return rc == HTTP_ASYNC ? 0 : rc;
	}
	if (path_matched)
		return http_error(p, 405, "method_not_allowed",
		                  "this path does not accept this method", NULL, 0);
	if (p->method == M_GET || p->method == M_HEAD) {
		p->metric_route = (int)api_n_routes;
		rc = assets_serve(s->assets, p);
		if (rc)
			return rc < 0 ? -1 : 0;
		p->metric_route = (int)api_n_routes + 1;
	}
	return http_error(p, 404, "not_found", "no such path", NULL, 0);
}

/* A header's value cut to at most cap - 1 bytes, at a UTF-8 character's
 * start ("" without one). */
static void copy_header_cut(struct lws *wsi, enum lws_token_indexes tok, char *dst, size_t cap)
{
	char v[HTTP_FIELD_MAX + 1];
	int len = lws_hdr_total_length(wsi, tok);
	size_t n;

	dst[0] = '\0';
	if (len <= 0 || (size_t)len >= sizeof(v) || lws_hdr_copy(wsi, v, (int)sizeof(v), tok) < 0)
		return;
	n = strlen(v);
	if (n >= cap)
		for (n = cap - 1; n > 0 && ((unsigned char)v[n] & 0xc0) == 0x80; n--)
			;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static int copy_header(struct lws *wsi, enum lws_token_indexes tok, char *dst, size_t cap)
{
	int len = lws_hdr_total_length(wsi, tok);

	dst[0] = '\0';
	if (len <= 0)
		return 0;
	if ((size_t)len >= cap)
		return -1;
	return lws_hdr_copy(wsi, dst, (int)cap, tok) < 0 ? -1 : len;
}

/* 1 when the client asked for the connection to close after this answer:
 * a "close" token in Connection, or HTTP/1.0 without "keep-alive" (the same
 * reading as lws's). We act on it ourselves: lws closes only from
 * lws_http_transaction_completed(), which it defers while it still expects
 * a request body. */
/* The request's client address: the peer's, or when the peer is a
 * trusted proxy, the one its X-Forwarded-For names (per request: a proxy
 * sends many clients' requests down one kept-alive connection). A header
 * too long to copy is ignored like a malformed one. */
static void client_of(struct server *s, struct lws *wsi, struct http_pss *p)
{
	char xff[PROXY_XFF_MAX + 1];
	int n;

	if (!proxies_trusted(s->cfg.trusted, p->peer)) {
		memcpy(p->client, p->peer, sizeof(p->client));
		return;
	}
	n = lws_hdr_copy(wsi, xff, (int)sizeof(xff), WSI_TOKEN_X_FORWARDED_FOR);
	proxies_client(s->cfg.trusted, p->peer, n > 0 ? xff : NULL, p->client, sizeof(p->client));
}

static int client_wants_close(struct lws *wsi)
{
	char conn[256], ver[16], *tok, *save = NULL;
	int want_close = 0, keep = 0, http11;

	http11 = copy_header(wsi, WSI_TOKEN_HTTP, ver, sizeof(ver)) >= 8 &&
	         !strncmp(ver, "HTTP/1.", 7) && ver[7] == '1';
	if (copy_header(wsi, WSI_TOKEN_CONNECTION, conn, sizeof(conn)) > 0)
		for (tok = strtok_r(conn, ", \t", &save); tok;
		     tok = strtok_r(NULL, ", \t", &save)) {
			want_close |= !strcasecmp(tok, "close");
			keep |= !strcasecmp(tok, "keep-alive");
		}
	return want_close || (!http11 && !keep);
}

static const char bad_request_line[] = "the request line is not METHOD /path HTTP/1.1";

/* Answer what lws parsed but HTTP refuses, and close after: a request line
 * whose version is not HTTP/d.d (400) or not HTTP/1 (505), a header field
 * that lws cut at its token limit (431), and a request without exactly one
 * Host (400; HTTP/1.0 may send none). Returns 0 when the headers are fine,
 * else the result of the answer. */
static int check_headers(struct server *s, struct lws *wsi, struct http_pss *p)
{
	char v[16], name[64], msg[96];
	int n = copy_header(wsi, WSI_TOKEN_HTTP, v, sizeof(v));

	if (n != 8 || strncmp(v, "HTTP/", 5) || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
	    v[7] < '0' || v[7] > '9') {
		p->close_after = 1;
		return http_error(p, 400, "bad_request", bad_request_line, NULL, 0);
	}
	if (v[5] != '1') {
		p->close_after = 1;
		return http_error(p, 505, "http_version_not_supported",
		                  "this server speaks HTTP/1.0 and HTTP/1.1", NULL, 0);
	}
	for (int t = 0; t < WSI_TOKEN_COUNT; t++) {
		const char *tok;

		if (!s->token_limits.token_limit[t] ||
		    lws_hdr_total_length(wsi, (enum lws_token_indexes)t) < HTTP_FIELD_MAX)
			continue;
		tok = (const char *)lws_token_to_string((enum lws_token_indexes)t);
		snprintf(name, sizeof(name), "%.*s", tok ? (int)strcspn(tok, ":") : 0,
		         tok ? tok : "");
		snprintf(msg, sizeof(msg), "a header field is %d bytes or longer", HTTP_FIELD_MAX);
		p->close_after = 1;
		return http_error(p, 431, "header_too_large", msg,
		                  name[0] ? json_pack("{s:s}", name, msg) : NULL, 0);
	}
	if (lws_hdr_fragment_length(wsi, WSI_TOKEN_HOST, 1) > 0 ||
	    (v[7] != '0' && lws_hdr_total_length(wsi, WSI_TOKEN_HOST) <= 0)) {
		p->close_after = 1;
		return http_error(p, 400, "bad_request", "send exactly one Host header", NULL, 0);
	}
	return 0;
}

/* uri_frag_fn over lws's decoded URL arguments. */
static int url_arg(void *ud, int i, char *dst, size_t cap)
{
	return lws_hdr_copy_fragment(ud, dst, (int)cap, WSI_TOKEN_HTTP_URI_ARGS, i);
}

/* Start a request: returns 0 to go on, or the result of an early answer. */
static int begin(struct server *s, struct lws *wsi, struct http_pss *p, const char *uri)
{
	char auth[300], ctype[128], clen[32];
	int n;

	p->wsi = wsi;
	p->started_ns = util_mono_ns();
	p->metric_route = (int)api_n_routes + 1;
	p->fd = (int)lws_get_socket_fd(wsi);
	p->gen = ++s->next_gen;
	p->async = p->ready = p->too_large = p->has_len = 0;
	p->json_body = p->in_body = p->cors = 0;
	p->who.role = STAFF_PUBLIC; /* until a bearer is read below */
	p->who.name[0] = '\0';
	p->close_after = client_wants_close(wsi);
	p->rep_pass = ~0ull;
	p->body.len = 0;
	p->route = NULL;
	p->csp = NULL;
	if (p->fd >= 0 && (size_t)p->fd < s->n_conns) {
		s->conns[p->fd].wsi = wsi;
		s->conns[p->fd].pss = p;
		s->conns[p->fd].gen = p->gen;
	}
	p->method = M_OTHER;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(method_tokens); i++)
		if (lws_hdr_total_length(wsi, method_tokens[i].tok) > 0) {
			p->method = method_tokens[i].method;
			break;
		}
	if (!p->peer[0]) { /* known already when lws kept this pss from the last request */
		if (s->peers && p->fd >= 0 && (size_t)p->fd < s->n_conns && s->peers[p->fd][0])
			memcpy(p->peer, s->peers[p->fd], sizeof(p->peer)); /* TLS: as handed over */
		else if (!lws_get_peer_simple(wsi, p->peer, sizeof(p->peer)))
			snprintf(p->peer, sizeof(p->peer), "unknown");
	}
	client_of(s, wsi, p);
	p->path[0] = '\0';
	if ((n = check_headers(s, wsi, p)))
		return n;

	if (strlen(uri) > HTTP_PATH_MAX) {
		p->path[0] = '\0';
		p->close_after = 1;
		return http_error(p, 414, "uri_too_long", "the path is longer than 512 bytes", NULL,
		                  0);
	}
	snprintf(p->path, sizeof(p->path), "%s", uri);
	p->cors = cors_allowed(p);
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS) > HTTP_QUERY_MAX ||
	    uri_query_build(p->query, sizeof(p->query), url_arg, wsi)) {
		p->query[0] = '\0';
		p->close_after = 1;
		return http_error(p, 414, "uri_too_long", "the query string is too long", NULL, 0);
	}
	p->user_agent[0] = p->page[0] = '\0';
	if (p->method == M_POST) {
		copy_header_cut(wsi, WSI_TOKEN_HTTP_USER_AGENT, p->user_agent,
		                sizeof(p->user_agent));
		copy_header_cut(wsi, WSI_TOKEN_HTTP_REFERER, p->page, sizeof(p->page));
		if (!p->page[0])
			copy_header_cut(wsi, WSI_TOKEN_ORIGIN, p->page, sizeof(p->page));
	}
	if (copy_header(wsi, WSI_TOKEN_HTTP_IF_NONE_MATCH, p->if_none_match,
	                sizeof(p->if_none_match)) < 0)
		p->if_none_match[0] = '\0';
	n = lws_hdr_custom_length(wsi, "idempotency-key:", 16);
	p->idem_key[0] = '\0';
	if (n > HTTP_IDEM_MAX) {
		p->close_after = 1; /* its body, if any, stays unread */
		return http_error(
		    p, 422, "validation_failed", "Idempotency-Key is too long",
		    json_pack("{s:s}", "Idempotency-Key", "must be 1 to 255 characters"), 0);
	}
	if (n > 0 &&
	    lws_hdr_custom_copy(wsi, p->idem_key, sizeof(p->idem_key), "idempotency-key:", 16) < 0)
		p->idem_key[0] = '\0';
	/* Who the bearer is, from the engine's token table in memory. */
	if (copy_header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, auth, sizeof(auth)) > 7 &&
	    !strncasecmp(auth, "Bearer ", 7) &&
	    engine_staff_auth(s->engine, auth + 7, strlen(auth + 7), &p->who))
		p->who.role = STAFF_PUBLIC; /* unknown or revoked: 401 where it matters */
	n = copy_header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, ctype, sizeof(ctype));
	p->json_body = n > 0 && !strncasecmp(ctype, "application/json", 16) &&
	               (ctype[16] == '\0' || ctype[16] == ';' || ctype[16] == ' ');
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0 &&
	    lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0) {
		/* Two framings: whichever we picked, a proxy in front may have
		 * picked the other (request smuggling, RFC 9112 6.1). Answer
		 * before any of the body is read, then close. */
		p->close_after = 1;
		return http_error(p, 400, "bad_request",
		                  "send either Content-Length or Transfer-Encoding, not both", NULL,
		                  0);
	}
	n = copy_header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, clen, sizeof(clen));
	if (n > 0) {
		char *end;
		long long v = strtoll(clen, &end, 10);

		p->has_len = 1;
		if (*end || v < 0) {
			p->close_after = 1;
			return http_error(p, 400, "bad_request", "Content-Length is not a number",
			                  NULL, 0);
		}
		if (v > 1024 * 1024) {
			/* Too big to read and drop: answer and close. */
			p->close_after = 1;
			return http_error(p, 413, "payload_too_large",
			                  "the body is larger than 16384 bytes", NULL, 0);
		}
		/* Read and drop a moderately oversized body, then answer 413 and keep
		 * the connection. */
		p->too_large = v > TALLY_BODY_MAX;
	}
	return 0;
}

static int needs_body(const struct http_pss *p)
{
	return p->method == M_POST || p->method == M_PATCH || p->method == M_PUT;
}

/* 1 for the tokens of the request line's target, which lws must never cut
 * (too long a target is answered 414). */
static int target_token(int t)
{
	for (size_t i = 0; i < UTIL_ARRAY_LEN(method_tokens); i++)
		if (t == (int)method_tokens[i].tok)
			return 1;
	return t == WSI_TOKEN_HTTP_URI_ARGS || t == WSI_TOKEN_CONNECT;
}

/* The answers lws writes itself carry the same safety headers as ours. */
static const struct lws_protocol_vhost_options lws_answer_headers[] = {
    {&lws_answer_headers[1], NULL, "x-content-type-options:", "nosniff"},
    {&lws_answer_headers[2], NULL, "referrer-policy:", "no-referrer"},
    {NULL, NULL, "content-security-policy:", HTTP_CSP_NONE},
};

/* What lws 4.1 does with a bad request head, and what we make of it:
 * - a header field lws knows (Host, User-Agent, Cookie...) longer than its
 *   token limit is cut there and the rest skipped: check_headers answers
 *   431 (the limit is what flags it);
 * - a method lws does not know (or no request line at all) makes lws hand
 *   the connection to its fallback role, raw-skt on this protocol, with the
 *   bytes read: we answer 501 (400 without a request line) from
 *   LWS_CALLBACK_RAW_RX and close;
 * - lws closes by itself, with no callback we could answer from: the whole
 *   head over HTTP_HEADERS_MAX (a custom field too long, or many fields),
 *   more header fields than it has fragments for, a second request line;
 *   and a head line with no colon, an obsolete folded line or a NUL byte
 *   in a field never ends the head: the connection waits for the 20 s
 *   timeout (or the space to fill);
 * - lws takes a field name with a space in it, or lines ending in a bare
 *   LF, as it reads them (tally reads no such field);
 * - lws answers 403 itself (text/html, with lws_answer_headers) to a
 *   request target with a bad %-escape. */
void http_context_options(struct server *s, struct lws_context_creation_info *info)
{
	for (int t = 0; t < WSI_TOKEN_COUNT; t++)
		s->token_limits.token_limit[t] = target_token(t) ? 0 : HTTP_FIELD_MAX;
	info->token_limits = &s->token_limits;
	info->headers = lws_answer_headers;
	info->options |= LWS_SERVER_OPTION_FALLBACK_TO_APPLY_LISTEN_ACCEPT_CONFIG;
	info->listen_accept_role = "raw-skt";
	info->listen_accept_protocol = http_protocol.name;
}

/* 1 when the bytes start with "METHOD /target HTTP/": a request line with
 * a method lws does not know, rather than no request line at all. */
static int request_line(const char *b, size_t len)
{
	size_t i = 0, t;

	while (i < len && i < 32 && b[i] >= 'A' && b[i] <= 'Z')
		i++;
	if (!i || i >= len || b[i] != ' ')
		return 0;
	t = ++i;
	while (i < len && b[i] != ' ' && b[i] != '\r' && b[i] != '\n')
		i++;
	return i > t && len - i >= 6 && !memcmp(b + i, " HTTP/", 6);
}

/* A connection lws's parser gave up on at the request line (its fallback):
 * 501 for a method it does not know, else 400; then close. Returns the
 * callback's result. */
static int raw_callback(struct lws *wsi, enum lws_callback_reasons reason, struct http_pss *p,
                        const char *in, size_t len)
{
	size_t out_len;

	switch (reason) {
	case LWS_CALLBACK_RAW_ADOPT:
		p->wsi = wsi;
		p->fd = -1; /* never answered through the queue */
		p->started_ns = util_mono_ns();
		p->metric_route = (int)api_n_routes + 1;
		p->close_after = 1;
		return 0;
	case LWS_CALLBACK_RAW_RX:
		if (p->ready)
			return 0; /* more of the same: the answer is on its way */
		if (in && request_line(in, len)
		        ? http_error(p, 501, "not_implemented",
		                     "this server does not implement that method", NULL, 0)
		        : http_error(p, 400, "bad_request", bad_request_line, NULL, 0))
			return -1;
		return lws_callback_on_writable(wsi) < 0 ? -1 : 0;
	case LWS_CALLBACK_RAW_WRITEABLE:
		if (!p->ready)
			return 0;
		p->ready = 0;
		out_len = p->out.len - p->out_start;
		if (lws_write(wsi, (unsigned char *)p->out.p + p->out_start, out_len,
		              LWS_WRITE_RAW) != (int)out_len)
			log_msg(LOG_INFO, "http.answer_lost",
			        "the answer to a request lws refused");
		return -1;
	default:
		return 0;
	}
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
	struct http_pss *p = user;
	struct server *s = lws_context_user(lws_get_context(wsi));
	int rc;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		rc = begin(s, wsi, p, in ? (const char *)in : "/");
		if (rc || p->ready)
			return rc ? -1 : http_flush(p);
		if (needs_body(p) && p->has_len) {
			p->in_body = 1;
			return 0; /* dispatch at BODY_COMPLETION */
		}
		if (needs_body(p) &&
		    lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
			/* Chunked bodies are not accepted: answer and close. */
			p->close_after = 1;
			rc = http_error(p, 411, "length_required",
			                "send the body with Content-Length", NULL, 0);
		} else {
			/* No Content-Length: no body (RFC 9112 6.3), but lws 4.1
			 * expects one of up to 100 MiB and would take the next
			 * request on this connection for it. Answer, then close. */
			if (needs_body(p))
				p->close_after = 1;
			rc = dispatch(s, p);
		}
		if (rc)
			return -1;
		if (p->async)
			return pause_rx(p);
		return http_flush(p);

	case LWS_CALLBACK_HTTP_BODY:
		if (!p->in_body)
			return 0;
		if (p->too_large || p->body.len + len > TALLY_BODY_MAX)
			p->too_large = 1;
		else if (buf_append(&p->body, in, len))
			return -1;
		return 0;

	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (!p->in_body) {
			/* lws 4.1 raises this again, consuming nothing, on every
			 * service pass while bytes follow the body (a pipelined
			 * request, a stray CRLF) until this request is answered:
			 * answer it, then close (the client retries the rest).
			 * Many repeats within one pass is lws looping on its own
			 * buflist (a request with a body parsed from it): close. */
			if (p->rep_pass != s->pass) {
				p->rep_pass = s->pass;
				p->rep_count = 0;
			}
			if (++p->rep_count > 8 || (!p->async && !p->ready && !p->export))
				return -1;
			p->close_after = 1;
			return 0;
		}
		p->in_body = 0;
		if (p->too_large)
			rc = http_error(p, 413, "payload_too_large",
			                "the body is larger than 16384 bytes", NULL, 0);
		else
			rc = dispatch(s, p);
		if (rc || (p->async && pause_rx(p)))
			return -1;
		/* Answer from WRITEABLE, not from inside the body callback: an
		 * answer written here lets lws read pipelined bytes as a body. */
		if (!p->async && lws_callback_on_writable(wsi) < 0)
			return -1;
		return 0;

	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (p->export)
			return export_writeable(s, p);
		return http_flush(p);

	case LWS_CALLBACK_RAW_ADOPT:
	case LWS_CALLBACK_RAW_RX:
	case LWS_CALLBACK_RAW_WRITEABLE:
		return p ? raw_callback(wsi, reason, p, in, len) : -1;

	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_RAW_CLOSE:
	case LWS_CALLBACK_RAW_SKT_DROP_PROTOCOL:
		if (p) {
			flush_on_close(p);
			export_free(s, p); /* a client gone mid-stream */
			if (p->async) {    /* its answer will find no one */
				s->async_pending--;
				p->async = 0;
			}
			if (p->fd >= 0 && (size_t)p->fd < s->n_conns && s->conns[p->fd].pss == p)
				memset(&s->conns[p->fd], 0, sizeof(s->conns[p->fd]));
			buf_fini(&p->body);
			buf_fini(&p->out);
			p->rx_paused = 0;
			p->wsi = NULL;
			p->peer[0] = '\0';
		}
		return 0;

	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* Websockets are only served by tally.live.v1 on /live. */
		return -1;

	case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
		struct xmsg *m;

		pthread_mutex_lock(&s->qlock);
		m = s->qhead;
		s->qhead = s->qtail = NULL;
		pthread_mutex_unlock(&s->qlock);
		while (m) {
			struct xmsg *next = m->next;

			if (m->kind == XM_ADOPT && s->peers && m->fd >= 0 &&
			    (size_t)m->fd < s->n_conns) /* TLS: the client's address */
				snprintf(s->peers[m->fd], sizeof(s->peers[m->fd]), "%s", m->data);
			if (m->kind == XM_REPLY)
				api_complete(s, m);
			else if (m->kind == XM_CAPTCHA)
				api_captcha_done(s, m);
			else if (m->kind == XM_ADOPT && s->stopping)
				close(m->fd);
			/* lws closes the socket itself when it cannot adopt
			 * it (core-net/adopt.c): closing it again could close
			 * a descriptor another thread has opened since. */
			else if (m->kind == XM_ADOPT && !lws_adopt_socket_vhost(s->vhost, m->fd))
				log_msg(LOG_WARN, "http.adopt_failed", "a connection was dropped");
			free(m);
			m = next;
		}
		return 0;
	}

	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

const struct lws_protocols http_protocol = {
    "http", http_callback, sizeof(struct http_pss), 0, 0, NULL, 0,
};
