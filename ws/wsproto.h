/* ws/wsproto.h - the server side of RFC 6455 without sockets: the upgrade
 * request, and the frames a client sends. Pure functions and a reader
 * state; the live loop (ws/live.c) moves the bytes.
 */
#ifndef TALLY_WS_WSPROTO_H
#define TALLY_WS_WSPROTO_H

#include <stddef.h>
#include <stdint.h>

#define WSPROTO_CONTROL_MAX 125    /* a control frame's payload at most */
#define WSPROTO_FORWARDED_MAX 1024 /* X-Forwarded-For kept at most */
#define WSPROTO_VALUE_MAX 320      /* Authorization, Origin or Host at most */

/* ---- the upgrade ---- */

struct wsproto_upgrade {
	size_t used;     /* on success: bytes of the request (its head) */
	int status;      /* on -EINVAL: 400, 426 or 431 */
	const char *why; /* on -EINVAL: what is wrong, static text */
	char accept[32]; /* on success: the Sec-WebSocket-Accept value */
	/* On success: the X-Forwarded-For values joined by commas, "" when
	 * there is none or when they do not fit (then forwarded_bad is 1). */
	char forwarded[WSPROTO_FORWARDED_MAX + 1];
	int forwarded_bad;
	/* On success: the Authorization, Origin and Host values, "" when
	 * absent; a longer value than fits is refused (431). */
	char authorization[WSPROTO_VALUE_MAX + 1];
	char origin[WSPROTO_VALUE_MAX + 1];
	char host[WSPROTO_VALUE_MAX + 1];
};

/* 1 when the request in req[0..len) is a GET of path, that is when it
 * starts "GET " path and then a space or '?' (what an upgrade to path
 * starts with), else 0. */
int wsproto_gets(const char *req, size_t len, const char *path);

/* Read an upgrade request to a websocket at path with the subprotocol
 * protocol from req[0..len). Returns 0 (whole and acceptable), -EAGAIN
 * (not whole yet: read more, unless len reached max, which is -EINVAL
 * with status 431) or -EINVAL (refused: up->status and up->why). An
 * upgrade is a GET of path (a query is allowed) over HTTP/1.1 or later,
 * with Host, Upgrade: websocket, Connection: upgrade, a Sec-WebSocket-Key
 * of 16 bytes in base64, Sec-WebSocket-Version 13 (else 426) and protocol
 * among its Sec-WebSocket-Protocol values. Header names are read without
 * regard to case. */
int wsproto_upgrade(const char *req, size_t len, size_t max, const char *path, const char *protocol,
                    struct wsproto_upgrade *up);

/* ---- the client's frames ---- */

struct wsproto_sink {
	/* A whole data message (its frames gathered, unmasked; a text one
	 * is valid UTF-8). msg is the reader's until the call returns. */
	int (*message)(void *user, const char *msg, size_t len, int binary);
	/* A ping's payload (at most WSPROTO_CONTROL_MAX bytes). */
	int (*ping)(void *user, const unsigned char *payload, size_t len);
	/* A pong. */
	int (*pong)(void *user);
	/* A close frame: its code (0 when it has none) and its reason. */
	int (*close)(void *user, int code, const char *reason, size_t len);
	/* Each returns 0 to read on, or a negative code that stops
	 * wsproto_rx_feed, which returns it. */
};

/* The reader of one connection: zero it to start; wsproto_rx_fini frees
 * what it holds. A message is gathered in a buffer of max bytes taken at
 * its first frame and given back at its end. */
struct wsproto_rx {
	size_t max;             /* a data message at most (bytes) */
	unsigned char head[14]; /* the frame header read so far */
	uint8_t head_len, head_need;
	uint8_t opcode, fin; /* of the current frame */
	unsigned char mask[4];
	uint64_t left;      /* payload bytes of the current frame to come */
	uint64_t at;        /* payload bytes of it read */
	uint8_t msg_opcode; /* 1 or 2 while a data message is open, else 0 */
	uint8_t skipping;   /* the open message is over max: dropped */
	char *msg;          /* the open message, NULL when skipping */
	size_t msg_len;
	unsigned char ctl[WSPROTO_CONTROL_MAX];
	uint8_t ctl_len;
	int broken;      /* the error that stopped the stream, or 0 */
	const char *why; /* what it was, static text (a close reason) */
};

/* Read bytes from the client: calls the sink for each whole message and
 * control frame. Returns 0; -EMSGSIZE once for a data message over
 * rx->max (its frames are then skipped: the stream goes on); -EPROTO (a
 * frame that is not masked, reserved bits, an unknown opcode, a
 * continuation with no message open or a new message inside one, a
 * control frame that is fragmented or over 125 bytes, a bad close
 * payload), -EILSEQ (text that is not UTF-8) or -ENOMEM, after which
 * every call returns the same (the stream cannot be read on) and rx->why
 * says what it was; or a sink's negative code. */
int wsproto_rx_feed(struct wsproto_rx *rx, const unsigned char *in, size_t len,
                    const struct wsproto_sink *sink, void *user);

void wsproto_rx_fini(struct wsproto_rx *rx);

/* 1 when s[0..len) is valid UTF-8 (no overlong forms, no surrogates,
 * nothing past U+10FFFF), else 0. */
int wsproto_utf8_ok(const unsigned char *s, size_t len);

#endif
