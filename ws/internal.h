/* ws/internal.h - what the ws/ files share. Service thread only, unless a
 * field says otherwise. */
#ifndef TALLY_WS_INTERNAL_H
#define TALLY_WS_INTERNAL_H

#include "base/buf.h"
#include "core/engine.h"
#include "core/validate.h"
#include "ws/server.h"
#include "ws/uri.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#define HTTP_HDR_ROOM 1024 /* bytes reserved before a body for headers */
#define HTTP_IDEM_MAX 255
#define HTTP_HEADERS_MAX                                                                           \
	4096                /* lws's header space per request (names lws knows                     \
	                     * are not counted) */
#define HTTP_FIELD_MAX 3072 /* one header field's value at most: 431 */
/* The policy of every answer but an HTML page's: nothing may load or frame it. */
#define HTTP_CSP_NONE "default-src 'none'; frame-ancestors 'none'"

enum http_method { M_GET, M_HEAD, M_POST, M_PATCH, M_DELETE, M_PUT, M_OPTIONS, M_OTHER };

/* Per-connection state of the HTTP protocol; lives as long as the
 * connection (keep-alive requests reuse it). */
struct http_pss {
	struct lws *wsi;
	uint32_t gen; /* names the current request */
	int fd;
	enum http_method method;
	unsigned async : 1, ready : 1, close_after : 1, json_body : 1, has_len : 1, too_large : 1,
	    in_body : 1;
	unsigned rx_paused : 1; /* reading stopped until the answer is built */
	unsigned cors : 1;      /* any origin may read the answer */
	uint64_t rep_pass;      /* service pass of the last repeated BODY_COMPLETION */
	int rep_count;
	uint64_t started_ns;
	char path[HTTP_PATH_MAX + 1];
	char query[URI_QUERY_SIZE]; /* the arguments (uri_query_build) */
	char idem_key[HTTP_IDEM_MAX + 1];
	char if_none_match[512];
	char peer[48];             /* the socket's peer address */
	char client[48];           /* the request's client: peer, or from X-Forwarded-For
	                            * when peer is a trusted proxy (ws/proxy.c) */
	char user_agent[200];      /* a POST's User-Agent, cut to fit ("" without) */
	char page[200];            /* a POST's Referer, else its Origin, cut to fit:
	                            * the page a gift came from (client signals) */
	struct staff_identity who; /* the bearer's staff token: role STAFF_PUBLIC
	                            * without a valid one */
	struct buf body;           /* request body */
	struct buf out;            /* LWS_PRE + header room + response body */
	size_t out_start;          /* where the response starts in out */
	const struct route *route;
	const char *csp;                  /* the answer's Content-Security-Policy;
	                                   * NULL: HTTP_CSP_NONE */
	int metric_route;                 /* index into http_metrics */
	struct export_stream *export;     /* a CSV export being streamed
	                                   * (ws/export.c); NULL else */
	char param[2][HTTP_PATH_MAX + 1]; /* path segments matched by '*' */
};

struct http_header {
	const char *name; /* "etag:" (lower case, with colon) */
	const char *value;
};

struct route {
	enum http_method method;
	const char *pattern;  /* "/api/v1/campaigns/ * /donations" */
	enum staff_role role; /* the least role that may call it (STAFF_PUBLIC:
	                       * anyone); below it 403, without a token 401 */
	int cors;             /* answers readable by any origin (public reads, donating) */
	int ok_status;        /* status of an async success */
	int (*handler)(struct server *s, struct http_pss *p);
};

/* Handler results besides 0 (answered): */
#define HTTP_ASYNC 1 /* the answer comes later */

/* A message from another thread to a service thread. The live loop takes
 * only channel messages (XM_STATE, XM_EVENT) and sockets: everything it
 * shows comes as a channel's full state with its seq, or an event on it,
 * so the same messages could reach a separate edge process from a bus. */
enum xmsg_kind {
	XM_REPLY,   /* API: an engine answer (ref, rc, replayed, data) */
	XM_CAPTCHA, /* API: a CAPTCHA verdict (ref, rc: enum captcha_result,
	             * data: why) */
	XM_ADOPT,   /* either loop: a connection to serve (fd) */
	XM_STATE,   /* live: a channel's full public state (channel, seq, data) */
	XM_EVENT,   /* live: a donation event on a channel (channel, data) */
};

/* Channel ids besides campaign ids (> 0). */
#define LIVE_BOARD_ID (-1) /* "leaderboard" */
#define LIVE_DAY_ID (-2)   /* "day" */
/* Leaderboards of a category or currency: ids from here down, one per
 * board made (ws/live.c), at most LIVE_BOARDS_MAX at once. */
#define LIVE_BOARDS_ID0 (-1000)
#define LIVE_BOARDS_MAX 32

/* Which campaigns a live leaderboard covers ("" for any category, or for
 * the one currency they use), its channel's id, and how many watch it. */
struct live_board_key {
	char category[TALLY_CATEGORY_SIZE];
	char currency[TALLY_CURRENCY_SIZE];
	int64_t id; /* 0: none */
	size_t watchers;
};

struct xmsg {
	struct xmsg *next;
	enum xmsg_kind kind;
	uint64_t ref;        /* XM_REPLY: (fd << 32) | gen */
	int rc;              /* XM_REPLY: engine result */
	int replayed;        /* XM_REPLY: the answer to an earlier request */
	int fd;              /* XM_ADOPT (data: the client's address under TLS, else "") */
	int64_t campaign_id; /* XM_STATE, XM_EVENT: the channel */
	uint64_t seq;        /* XM_STATE: the state's seq */
	size_t len;
	char data[]; /* body / state / event data */
};

/* A message with len bytes of data (copied, NUL-terminated); NULL when out
 * of memory. */
struct xmsg *xmsg_new(enum xmsg_kind kind, int64_t campaign_id, const char *data, size_t len);

struct conn_slot {
	struct lws *wsi;
	struct http_pss *pss;
	uint32_t gen;
};

struct live;
struct tls;
struct assets;
struct ratelimit;
struct acceptor;

/* Request metrics, by route (api_routes index, then "static", "other"). */
#define METRIC_ROUTES 64
#define METRIC_BUCKETS 12
extern const double metric_latency_bounds[METRIC_BUCKETS]; /* seconds */
struct http_metrics {
	uint64_t by_status[METRIC_ROUTES][600 - 100];        /* [route][status - 100] */
	uint64_t latency[METRIC_ROUTES][METRIC_BUCKETS + 1]; /* last = +Inf */
	double latency_sum[METRIC_ROUTES];
};

struct server {
	struct server_config cfg;
	struct engine *engine;
	struct lws_context *ctx;
	struct lws_vhost *vhost;
	atomic_int stop;           /* set by any thread (server_stop), read by the service thread */
	struct acceptor *acceptor; /* owns the listening socket */
	int stopping;
	int port;
	uint64_t etag_epoch;
	atomic_llong http_requests;
	uint32_t next_gen;
	uint64_t pass;             /* lws_service() calls so far */
	struct watchdog *watchdog; /* notices a loop that stops turning */
	struct watch *watch;       /* the API loop's (its thread) */
	int64_t async_pending;     /* requests waiting for the engine */
	uint64_t stop_started_ns;
	int refusing;            /* drain out of time: queue refused */
	struct conn_slot *conns; /* index = fd */
	size_t n_conns;
	pthread_mutex_t qlock; /* guards qhead/qtail; any thread */
	struct xmsg *qhead, *qtail;
	struct live *live;
	struct assets *assets;
	struct ratelimit *ratelimit; /* NULL when off */
	struct http_metrics *metrics;
	lws_sorted_usec_list_t tick_sul;
	struct buf scratch;
	struct lws_token_limits token_limits; /* read by lws (http_context_options) */
	struct tls *tls;                      /* the TLS front; NULL: plain HTTP */
	/* TLS: each connection's client address by descriptor, as the
	 * hand-over said (the socket is one end of a pair); set when the loop
	 * adopts it. NULL in plain HTTP (the socket's peer is the client). */
	char (*peers)[48];
	int exports_open; /* CSV exports streaming now (ws/export.c) */
};

/* Queue a message for the service thread and wake it. Any thread. Takes
 * ownership of m. */
void server_post(struct server *s, struct xmsg *m);

/* ---- admin.c: JSON of the staff listings and answers ---- */
int admin_queue_json(struct buf *out, enum job_queue q, const struct job_queue_info *i);
int admin_queues_json(struct engine *e, struct buf *out);
/* Returns 0, -ENOMEM or TALLY_EIO. */
int admin_jobs_json(struct engine *e, enum job_queue q, enum job_state st, int limit,
                    struct buf *out);
int admin_audit_json(struct engine *e, int limit, struct buf *out);
/* {"name","role","created_at","revoked_at","startup"} of one staff token
 * (never its secret or hash), then, when secret is not NULL, its secret. */
int admin_token_json(struct buf *out, const struct staff_token *t, const char *secret);
/* {"tokens":[...]}: every staff token, the startup one first. */
int admin_tokens_json(struct engine *e, struct buf *out);
/* The JSON of a successful asynchronous answer (writer thread). */
int admin_answer_json(const struct engine_answer *a, struct buf *out);

/* ---- http.c ---- */
extern const struct lws_protocols http_protocol;

/* Set the API loop's HTTP options in info (before lws_create_context):
 * header limits, the answer to a request that is not HTTP, and the
 * headers of the answers lws writes itself. */
void http_context_options(struct server *s, struct lws_context_creation_info *info);

/* Start a response body: returns the buffer to append the body to. */
struct buf *http_body(struct http_pss *p);

/* Finish the response with the body appended since http_body(). ctype NULL
 * means application/json. Returns 0 or -1. */
int http_send(struct http_pss *p, int status, const char *ctype, const struct http_header *hdrs,
              int n_hdrs);

/* A JSON error: {"error":{"code","message","fields"}}; steals fields. A
 * retry_after > 0 adds Retry-After. */
int http_error(struct http_pss *p, int status, const char *code, const char *message,
               json_t *fields, int retry_after);

/* Answer an engine result code as the contract's error. */
int http_engine_error(struct http_pss *p, int rc);

/* A request's pss for an async reference, or NULL if it went away. */
struct http_pss *http_lookup(struct server *s, uint64_t ref);

/* The async reference of the current request. */
uint64_t http_ref(const struct http_pss *p);

/* Write a ready response now (in a callback of p->wsi). Returns the value
 * the callback should return. */
int http_flush(struct http_pss *p);

/* The head of a streamed answer (no Content-Length; Transfer-Encoding:
 * chunked when chunked, else the body ends when the connection closes)
 * into dst (HTTP_HDR_ROOM bytes), counted in the metrics as answered with
 * status. Nothing is written: the stream sends it before its first bytes.
 * Returns its length, 0 when it does not fit. */
size_t http_stream_head(struct http_pss *p, int status, const char *ctype,
                        const struct http_header *hdrs, int n_hdrs, int chunked,
                        unsigned char *dst);

/* Read the connection again once an async answer is built (it is not read
 * while the engine works: see http.c). Returns 0 or -1. */
int http_resume_rx(struct http_pss *p);

/* Value of query parameter name into dst (cut to fit); returns its whole
 * length or -1 if absent (uri_query_get). */
int http_query(const struct http_pss *p, const char *name, char *dst, size_t cap);

/* ---- export.c: GET /api/v1/admin/donations.csv ---- */
/* The route's handler: check the filters, open the export and start the
 * stream (or answer an error). */
int export_handler(struct server *s, struct http_pss *p);
/* WRITEABLE on a connection streaming an export: write its next chunk.
 * Returns the value the callback should return. */
int export_writeable(struct server *s, struct http_pss *p);
/* Free p's export, if any (the connection closes). */
void export_free(struct server *s, struct http_pss *p);

/* ---- shield.c: the card-testing shield on the API ---- */
/* Pass a donation through the shield before it is admitted: 0 to go on
 * (*captcha: only with a valid CAPTCHA token), 1 when answered (a retry
 * of a gift acknowledged before, which would be refused or checked, gets
 * its first 202; else 429 too_many_attempts, 422 below the protected
 * minimum), -1 when the answer could not be built. */
int shield_gate(struct server *s, struct http_pss *p, const char *slug,
                const struct donation_req *req, int *captcha);
/* GET /api/v1/admin/shield, POST .../raise and .../lower. */
int shield_h_get(struct server *s, struct http_pss *p);
int shield_h_raise(struct server *s, struct http_pss *p);
int shield_h_lower(struct server *s, struct http_pss *p);

/* ---- captcha.c: the CAPTCHA check on the API ---- */
/* Check the donor's CAPTCHA token (token: "" when the body had none) of a
 * gift shield_gate wants checked (a retry of an acknowledged gift was
 * replayed there): HTTP_ASYNC when the verifier has it (its verdict
 * comes back as an XM_CAPTCHA message, for api_captcha_done), else the
 * refusal answered (403 captcha_required, 503 overloaded or
 * captcha_unavailable): 0, or -1 when the answer could not be built. */
int captcha_gate(struct server *s, struct http_pss *p, const char *token);
/* Answer a verdict that refuses the gift (403 captcha_failed, 503
 * captcha_unavailable) and count it in the shield: 0 or -1. 1 when the
 * verdict lets the gift go on (nothing answered). */
int captcha_verdict(struct server *s, struct http_pss *p, int result, const char *why);

/* ---- api.c ---- */
/* The header of an answer replayed for its Idempotency-Key. */
extern const struct http_header api_replayed[1];
/* The audit's actor: the staff token's name and the client's address,
 * "NAME@ADDR". */
void api_actor(const struct http_pss *p, char *dst, size_t cap);
extern const struct route api_routes[];
extern const size_t api_n_routes;
/* Called on the service thread when an async engine call completed. */
void api_complete(struct server *s, struct xmsg *m);
/* Called on the service thread with a donation's CAPTCHA verdict
 * (XM_CAPTCHA): refuse the gift, or admit it as h_donate does. */
void api_captcha_done(struct server *s, struct xmsg *m);
/* Set the server that engine completions are posted to. */
void api_init(struct server *s);

/* ---- live.c: the live loop (its own thread) ---- */
/* Create the live loop (not started). Returns 0 or -errno with err. */
int live_new(struct server *s, unsigned fd_limit, struct live **out, char *err, size_t errcap);
int live_start(struct live *l);
/* Hand the live loop a message (any thread; takes m). Returns 0 or -errno
 * (m is freed). */
int live_post(struct live *l, struct xmsg *m);
/* 1 when somebody watches channel id now (any thread); the messages of an
 * unwatched channel are skipped. */
int live_watched(struct live *l, int64_t id);

/* Copy the keys of the boards someone watches into out (room for
 * LIVE_BOARDS_MAX); returns how many. Any thread (the writer's feed). */
size_t live_boards_watched(struct live *l, struct live_board_key *out);

/* A board's state, as its channel shows it: the top 10 by total
 * (engine_board_json; no entries, currency null and the currencies listed
 * when the campaigns use several and key names none). ws/feed.c. */
int live_board_json(struct engine *e, const struct live_board_key *key, struct buf *out,
                    uint64_t *seq);
/* Open /live websockets now (any thread). */
int64_t live_viewers(struct live *l);
/* 1 when the live loop takes no more viewers (any thread). */
int live_full(struct live *l);
/* Counters for /metrics (any thread). */
struct live_stats {
	int64_t viewers, subscriptions, queue_depth;
	uint64_t frames, events_thinned, dropped_slow, dropped_ping, refused_address,
	    closed_too_big, dropped_msgs;
	int slow;     /* channels' intervals times this (1: full speed) */
	int refusing; /* new viewers refused: as slow as it goes, still pressed */
};
void live_get_stats(struct live *l, struct live_stats *out);
/* Close the viewers and end the live loop's thread (idempotent; not from
 * the live loop). It no longer touches the engine after this. */
void live_stop(struct live *l);
/* Stop (if needed) and free. */
void live_free(struct live *l);

/* ---- feed.c: engine events -> channel messages (writer thread) ---- */
/* The engine listener that feeds the live loop. */
struct engine_listener feed_listener(struct server *s);

/* ---- assets.c ---- */
int assets_load(const char *dir, struct assets **out, char *err, size_t errcap);
void assets_free(struct assets *a);
/* Serve path if it names an asset: returns 1 when answered, 0 if unknown. */
int assets_serve(struct assets *a, struct http_pss *p);

#endif
