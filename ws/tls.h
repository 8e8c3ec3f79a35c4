/* ws/tls.h - the TLS front: the handshake and the records of every TLS
 * connection on threads of their own, the plaintext handed to the
 * acceptor's routing over a socket pair per connection (see tls.c).
 * ws/ only.
 */
#ifndef TALLY_WS_TLS_H
#define TALLY_WS_TLS_H

#include <stddef.h>
#include <stdint.h>

struct tls_ctx;
struct proxies;
struct watchdog;

struct tls_config {
	const struct tls_ctx *keys;    /* certificate, key, settings; outlives the front */
	int handshake_ms;              /* a connection whose handshake is not done this
	                                * long is closed (default 5,000) */
	int per_address;               /* handshakes at once from one address; more are
	                                * closed at once (default 64) */
	int limit_loopback;            /* count 127.0.0.0/8 and ::1 too */
	const struct proxies *trusted; /* not counted per address; read-only */
	int live_nice;                 /* nice of the viewers' thread, 0-19 */
	struct watchdog *watchdog;     /* watches both threads; may be NULL */
	/* Hand the plaintext end of a connection whose handshake is done,
	 * with its client's address, to the routing (on a front thread).
	 * Returns 0 (it owns fd now) or non-zero (the front closes fd and the
	 * connection). */
	int (*pass)(void *ctx, int fd, const char *peer);
	void *ctx;
};

struct tls;

/* Create the front (threads not started). Returns 0 or -errno with a
 * message in err. */
int tls_new(const struct tls_config *cfg, struct tls **out, char *err, size_t errcap);

/* Start its threads. Returns 0 or -errno. */
int tls_start(struct tls *t);

/* A TCP connection just accepted from peer (an IP address as text): the
 * front does its handshake (the acceptor's thread). Returns 0 (the front
 * owns fd now) or -errno (the caller closes fd). */
int tls_take(struct tls *t, int fd, const char *peer);

/* Counters. Any thread. */
struct tls_stats {
	int64_t open_api;         /* connections past their handshake, open now, */
	int64_t open_live;        /* on each thread (the API's, the viewers') */
	uint64_t handshakes;      /* handshakes done */
	uint64_t failed;          /* handshakes that failed (not TLS 1.2+, bad
	                           * records, a client that gave up) */
	uint64_t timed_out;       /* handshakes not done in time */
	uint64_t plain_http;      /* plain HTTP sent to the TLS port: answered 400 */
	uint64_t refused_address; /* closed: too many handshakes from one address */
	uint64_t out_of_files;    /* closed: no descriptor for the socket pair */
};
void tls_get_stats(struct tls *t, struct tls_stats *out);

/* Let the open connections send what their loops wrote, for at most
 * grace_ms, then close every one and join the threads (connections still
 * in their handshake are closed at once). Call once both loops are gone.
 * Any thread but the front's; idempotent. */
void tls_stop(struct tls *t, int grace_ms);

/* Stop (at once, if not yet) and free. */
void tls_free(struct tls *t);

#endif
