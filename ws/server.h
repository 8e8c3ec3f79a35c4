/* ws/server.h - the network side: an acceptor thread owning the listening
 * socket, the API loop (a libwebsockets context and its service thread:
 * the HTTP API, static assets, metrics) and the live loop (another context
 * on libuv with a thread of its own: the /live websockets); with TLS, the
 * TLS front's two threads between the acceptor and the loops.
 */
#ifndef TALLY_WS_SERVER_H
#define TALLY_WS_SERVER_H

#include "core/engine.h"

#include <stdint.h>

struct proxies;
struct tls_ctx;

struct server_config {
	const char *listen_addr; /* "127.0.0.1" */
	int port;                /* 8080; 0 picks a free port */
	const char *assets_dir;  /* static files, loaded into memory at start */
	int coalesce_ms;         /* live updates per channel at most this often */
	double rate_limit;       /* writes per second per client; 0 = off */
	double rate_burst;       /* bucket size (default 2 x rate) */
	int rate_limit_loopback; /* also limit 127.0.0.0/8 and ::1 (writes and the
	                          * live connections per address) */
	/* Peers whose X-Forwarded-For names the client (for the rate limit,
	 * the connections per address and the audit's actor); NULL or empty:
	 * none. Read-only while the server runs; the caller frees it after
	 * server_free. */
	const struct proxies *trusted;
	/* Live viewers (0 = default for each): */
	long max_viewers;     /* open /live websockets at most (default: what
	                       * the descriptor limit allows) */
	int live_per_address; /* websockets per client address (default 256) */
	int live_wall_per_s;  /* donation events per channel per second (5) */
	int live_ping_s;      /* ping a quiet viewer after this long (30) */
	int live_timeout_s;   /* hang up on a viewer silent this long (45) */
	int live_slow_s;      /* drop a viewer that takes no data this long (10) */
	int live_nice;        /* nice of the live thread, 0-19 (-1: 10): under
	                       * overload the donors' threads run first */
	/* TLS on the same port for everything (ws/tls.c): the certificate
	 * and key (ws/tls_ctx.h), read-only, freed by the caller after
	 * server_free; NULL: plain HTTP. */
	const struct tls_ctx *tls;
	/* Staff consoles: a campaign paused longer than this many minutes is
	 * an alert in every console's header (the console feed's hello says
	 * so); 0: no such alert (tally's default is 15). */
	int alert_paused_min;
	/* The CAPTCHA verifier (core/captcha.h) for the gifts the shield wants
	 * checked; NULL: none. The loop stops it when its drain begins (the
	 * checks in flight are answered then); the caller frees it after
	 * server_run returned and before server_free. */
	struct captcha *captcha;
};

struct server;

struct server_stats {
	int64_t ws_clients;    /* open /live websockets */
	int64_t http_requests; /* answered since start */
	int port;              /* the bound port */
};

/* Create the context and listen. Registers a listener on e. Returns 0 or
 * -errno with a message in err. Call from the thread that will run it. */
int server_new(const struct server_config *cfg, struct engine *e, struct server **out, char *err,
               size_t errcap);

/* Run the service loop on the calling thread until server_stop(). Returns 0
 * or -errno. */
int server_run(struct server *s);

/* Ask the loop to stop: stop accepting and return from server_run() once
 * in-flight answers are written (at most ~2 s). Any thread, and
 * async-signal-safe. */
void server_stop(struct server *s);

/* Counters. Any thread. */
void server_get_stats(struct server *s, struct server_stats *out);

/* Destroy the context. Not while server_run() is running. */
void server_free(struct server *s);

#endif
