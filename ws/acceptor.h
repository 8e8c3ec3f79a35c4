/* ws/acceptor.h - the listening socket and the choice of loop per
 * connection (see acceptor.c). ws/ only.
 */
#ifndef TALLY_WS_ACCEPTOR_H
#define TALLY_WS_ACCEPTOR_H

#include <stddef.h>

struct proxies;

enum acceptor_route {
	ROUTE_API,  /* everything but the live websocket */
	ROUTE_LIVE, /* GET /live */
};

#define ACCEPTOR_ROUTE_BYTES 10 /* "GET /live" and the byte after it */

/* The route of a request whose head starts with head[0..n): the live
 * loop's for "GET /live" followed by a space or '?', else the API's. */
enum acceptor_route acceptor_route_of(const char *head, size_t n);

struct acceptor_config {
	const char *addr; /* "127.0.0.1", "::1", "0.0.0.0" */
	int port;         /* 0 picks a free port */
	/* Hand fd to the loop of route (the acceptor's thread). peer: the
	 * client's address when fd is not the client's own socket (TLS: one
	 * end of a socket pair), else NULL. Returns 0 (the loop owns fd now)
	 * or non-zero (the acceptor closes it). */
	int (*hand)(void *ctx, int fd, enum acceptor_route route, const char *peer);
	/* TLS (NULL: plain HTTP): every connection accepted goes here at once
	 * with its client's address (the acceptor's thread); its plaintext
	 * comes back through acceptor_pass. Returns 0 (taken) or non-zero
	 * (the acceptor closes fd). */
	int (*take)(void *ctx, int fd, const char *ip);
	/* 1 when the live loop takes no more viewers: a new /live
	 * connection is answered 503 and closed. May be NULL. */
	int (*live_full)(void *ctx);
	void *ctx;
	int head_ms;        /* a connection whose request head is not whole
	                     * this long is answered 408 (default 5,000) */
	int per_address;    /* connections waiting for their head from one
	                     * address; more are answered 429 (default 64) */
	int limit_loopback; /* count 127.0.0.0/8 and ::1 too */
	/* Trusted proxies (ws/proxy.h; NULL: none): not counted per address,
	 * since one speaks for many clients. Read-only. */
	const struct proxies *trusted;
};

struct acceptor;

/* Bind and listen (not accepting yet). Returns 0 or -errno with a message
 * in err. */
int acceptor_new(const struct acceptor_config *cfg, struct acceptor **out, char *err,
                 size_t errcap);

/* The bound port. */
int acceptor_port(const struct acceptor *a);

/* Start the acceptor's thread. Returns 0 or -errno. */
int acceptor_start(struct acceptor *a);

/* A connection to route as if just accepted, whose client is at peer
 * (TLS: the plaintext end of a socket pair). Any thread. Returns 0 (the
 * acceptor owns fd now) or -errno (-ESHUTDOWN once stopping; the caller
 * keeps fd). */
int acceptor_pass(struct acceptor *a, int fd, const char *peer);

/* Stop accepting: close the listening socket and every connection not yet
 * handed over, and join the thread. Any thread but the acceptor's;
 * idempotent. */
void acceptor_stop(struct acceptor *a);

/* Connections accepted, handed to each route, and refused so far. */
struct acceptor_stats {
	unsigned long long accepted, api, live, refused_full, timed_out, dropped, refused_address;
};
void acceptor_get_stats(struct acceptor *a, struct acceptor_stats *out);

/* Stop (if needed) and free. */
void acceptor_free(struct acceptor *a);

#endif
