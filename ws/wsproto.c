/* ws/wsproto.c - the server side of RFC 6455 without sockets (wsproto.h).
 *
 * DESIGN: libwebsockets reads a client's frames without looking at the
 * mask bit (lib/roles/ws/ops-ws.c records it and unmasks only when it is
 * set), so a server built on its websocket role takes unmasked frames,
 * which RFC 6455 5.1 forbids. The live loop therefore adopts its sockets
 * as raw ones and speaks the protocol here: the upgrade request is read
 * whole (at most max bytes) and checked; the frame reader is a state
 * machine fed whatever the socket gave, a byte of a header or many frames
 * at once. It keeps the header read so far (at most 14 bytes), the
 * payload left in the current frame, and the message being gathered
 * (frames with FIN clear, then continuations, control frames allowed
 * between them) in a buffer of max bytes held only while a message is
 * open; a control frame's payload (at most 125 bytes) is kept inside the
 * reader. A message over max is reported once and its frames skipped, so
 * the stream stays readable (the caller still sees the client's close);
 * any other fault stops the reader for good.
 */
#include "ws/wsproto.h"

#include <errno.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ---- the upgrade ---- */

/* 1 when the comma-separated list v[0..n) holds token, any case. */
static int list_has(const char *v, size_t n, const char *token)
{
	size_t tl = strlen(token), i = 0;

	while (i < n) {
		size_t a, b;

		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		a = i;
		while (i < n && v[i] != ',')
			i++;
		b = i;
		while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
			b--;
		if (b - a == tl && !strncasecmp(v + a, token, tl))
			return 1;
	}
	return 0;
}

/* 1 when k[0..n) is 16 bytes in base64: 22 characters and "==". */
static int key_ok(const char *k, size_t n)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	if (n != 24 || k[22] != '=' || k[23] != '=')
		return 0;
	for (size_t i = 0; i < 22; i++)
		if (!k[i] || !strchr(b64, k[i]))
			return 0;
	return 1;
}

static int refuse(struct wsproto_upgrade *up, int status, const char *why)
{
	up->status = status;
	up->why = why;
	return -EINVAL;
}

/* Append one X-Forwarded-For value to up->forwarded (several headers read
 * as one list). */
static void forwarded(struct wsproto_upgrade *up, const char *v, size_t n)
{
	size_t have = strlen(up->forwarded), comma = have ? 1 : 0;

	if (up->forwarded_bad)
		return;
	if (have + comma + n > WSPROTO_FORWARDED_MAX) {
		up->forwarded[0] = '\0';
		up->forwarded_bad = 1;
		return;
	}
	if (comma)
		up->forwarded[have++] = ',';
	memcpy(up->forwarded + have, v, n);
	up->forwarded[have + n] = '\0';
}

/* What to say when the subprotocol is missing (static text). */
static const char *no_protocol(const char *protocol)
{
	return strcmp(protocol, "tally.console.v1")
	           ? "use a websocket with subprotocol tally.live.v1"
	           : "use a websocket with subprotocol tally.console.v1";
}

/* Copy a header's value [v, ve) into dst (WSPROTO_VALUE_MAX + 1 bytes).
 * Returns 0, or -1 when it does not fit. */
static int keep(char *dst, const char *v, const char *ve)
{
	size_t n = (size_t)(ve - v);

	if (n > WSPROTO_VALUE_MAX)
		return -1;
	memcpy(dst, v, n);
	dst[n] = '\0';
	return 0;
}

int wsproto_gets(const char *req, size_t len, const char *path)
{
	size_t n = strlen(path);

	return len > 4 + n && !memcmp(req, "GET ", 4) && !memcmp(req + 4, path, n) &&
	       (req[4 + n] == ' ' || req[4 + n] == '?');
}

int wsproto_upgrade(const char *req, size_t len, size_t max, const char *path, const char *protocol,
                    struct wsproto_upgrade *up)
{
	const char *end = NULL, *p, *line_end, *key = NULL;
	size_t plen = strlen(path), key_len = 0;
	int host = 0, upgrade = 0, connection = 0, version = 0, proto = 0, keys = 0;
	char buf[64];
	unsigned char sha[20];

	memset(up, 0, sizeof(*up));
	for (size_t i = 0; i + 3 < len && i + 4 <= max; i++)
		if (!memcmp(req + i, "\r\n\r\n", 4)) {
			end = req + i + 2; /* the last header line's CRLF stays */
			break;
		}
	if (!end)
		return len >= max ? refuse(up, 431, "the request head is too long") : -EAGAIN;
	up->used = (size_t)(end + 2 - req);
	/* GET SP path [? query] SP HTTP/1.x CRLF */
	line_end = memchr(req, '\r', (size_t)(end - req));
	if (!line_end || line_end[1] != '\n' || memchr(req, '\n', (size_t)(line_end - req)))
		return refuse(up, 400, "malformed request line");
	if ((size_t)(line_end - req) < 4 + plen + 9 || memcmp(req, "GET ", 4) ||
	    memcmp(req + 4, path, plen) || (req[4 + plen] != ' ' && req[4 + plen] != '?'))
		return refuse(up, 400, "not a GET of the websocket's path");
	p = memchr(req + 4 + plen, ' ', (size_t)(line_end - req) - 4 - plen);
	if (!p || line_end - p != 9 || memcmp(p + 1, "HTTP/1.", 7) || p[8] < '1' || p[8] > '9')
		return refuse(up, 400, "a websocket needs HTTP/1.1");
	for (p = line_end + 2; p < end; p = line_end + 2) {
		const char *colon, *v, *ve;
		size_t nl;

		line_end = memchr(p, '\r', (size_t)(end - p) + 1);
		if (!line_end || line_end[1] != '\n' || memchr(p, '\n', (size_t)(line_end - p)))
			return refuse(up, 400, "malformed header line");
		colon = memchr(p, ':', (size_t)(line_end - p));
		if (!colon || colon == p || *p == ' ' || *p == '\t')
			return refuse(up, 400, "malformed header line");
		nl = (size_t)(colon - p);
		for (v = colon + 1; v < line_end && (*v == ' ' || *v == '\t'); v++)
			;
		for (ve = line_end; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
			;
#define IS(name) (nl == sizeof(name) - 1 && !strncasecmp(p, name, nl))
		if (IS("Host")) {
			host = ve > v;
			if (keep(up->host, v, ve))
				return refuse(up, 431, "the Host header is too long");
		} else if (IS("Authorization")) {
			if (keep(up->authorization, v, ve))
				return refuse(up, 431, "the Authorization header is too long");
		} else if (IS("Origin")) {
			if (keep(up->origin, v, ve))
				return refuse(up, 431, "the Origin header is too long");
		} else if (IS("Upgrade")) {
			upgrade |= list_has(v, (size_t)(ve - v), "websocket");
		} else if (IS("Connection")) {
			connection |= list_has(v, (size_t)(ve - v), "upgrade");
		} else if (IS("Sec-WebSocket-Key")) {
			keys++;
			key = v;
			key_len = (size_t)(ve - v);
		} else if (IS("Sec-WebSocket-Version")) {
			version = ve - v == 2 && !memcmp(v, "13", 2);
		} else if (IS("Sec-WebSocket-Protocol")) {
			proto |= list_has(v, (size_t)(ve - v), protocol);
		} else if (IS("X-Forwarded-For")) {
			forwarded(up, v, (size_t)(ve - v));
		}
#undef IS
	}
	if (!upgrade || !connection)
		return refuse(up, 400, no_protocol(protocol));
	if (!version)
		return refuse(up, 426, "Sec-WebSocket-Version must be 13");
	if (!host)
		return refuse(up, 400, "no Host header");
	if (keys != 1 || !key_ok(key, key_len))
		return refuse(up, 400, "Sec-WebSocket-Key must be one key of 16 bytes in base64");
	if (!proto)
		return refuse(up, 400, no_protocol(protocol));
	memcpy(buf, key, 24);
	memcpy(buf + 24, WS_GUID, sizeof(WS_GUID) - 1);
	if (!lws_SHA1((unsigned char *)buf, 24 + sizeof(WS_GUID) - 1, sha) ||
	    lws_b64_encode_string((char *)sha, sizeof(sha), up->accept, sizeof(up->accept)) != 28)
		return refuse(up, 400, "cannot compute Sec-WebSocket-Accept");
	return 0;
}

/* ---- UTF-8 ---- */

int wsproto_utf8_ok(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned c = s[i], n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			n = 1;
			cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			n = 2;
			cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return 0; /* a continuation byte, C0, C1 or F5..FF */
		}
		if (len - i <= n)
			return 0;
		for (unsigned k = 1; k <= n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += n + 1;
	}
	return 1;
}

/* ---- the client's frames ---- */

enum {
	OP_CONT = 0x0,
	OP_TEXT = 0x1,
	OP_BINARY = 0x2,
	OP_CLOSE = 0x8,
	OP_PING = 0x9,
	OP_PONG = 0xA
};

static int stop(struct wsproto_rx *rx, int err, const char *why)
{
	rx->broken = err;
	rx->why = why;
	return err;
}

/* 1 for a close code a peer may send (RFC 6455 7.4, and the IANA
 * registry's 1012-1014). */
static int close_code_ok(int code)
{
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
	       (code >= 3000 && code <= 4999);
}

/* The header is whole: check it and set the frame up. */
static int frame_begins(struct wsproto_rx *rx)
{
	const unsigned char *h = rx->head;
	size_t n = h[1] & 0x7F, at = 2;
	uint64_t len = n;

	if (n == 126) {
		len = ((uint64_t)h[2] << 8) | h[3];
		at = 4;
	} else if (n == 127) {
		len = 0;
		for (int i = 0; i < 8; i++)
			len = (len << 8) | h[2 + i];
		at = 10;
		if (len >> 63)
			return stop(rx, -EPROTO, "the frame length's top bit is set");
	}
	memcpy(rx->mask, h + at, 4);
	rx->left = len;
	rx->at = 0;
	rx->ctl_len = 0;
	if (rx->opcode & 0x8)
		return len > WSPROTO_CONTROL_MAX
		           ? stop(rx, -EPROTO, "a control frame is over 125 bytes")
		           : 0;
	if (rx->opcode != OP_CONT) {
		rx->msg_opcode = rx->opcode;
		rx->skipping = 0;
		rx->msg_len = 0;
	}
	if (rx->skipping)
		return 0;
	if (len > rx->max - rx->msg_len) {
		free(rx->msg);
		rx->msg = NULL;
		rx->skipping = 1;
		return -EMSGSIZE;
	}
	if (!rx->msg && !(rx->msg = malloc(rx->max ? rx->max : 1)))
		return stop(rx, -ENOMEM, "out of memory");
	return 0;
}

/* The frame's payload is all in: a control frame goes to the sink; the
 * last frame of a data message hands the message over. */
static int frame_ends(struct wsproto_rx *rx, const struct wsproto_sink *sink, void *user)
{
	int rc = 0;

	if (rx->opcode == OP_PING)
		return sink->ping(user, rx->ctl, rx->ctl_len);
	if (rx->opcode == OP_PONG)
		return sink->pong(user);
	if (rx->opcode == OP_CLOSE) {
		int code = 0;

		if (rx->ctl_len == 1)
			return stop(rx, -EPROTO, "a close frame of one byte");
		if (rx->ctl_len >= 2) {
			code = (rx->ctl[0] << 8) | rx->ctl[1];
			if (!close_code_ok(code))
				return stop(rx, -EPROTO, "a close code that may not be sent");
			if (!wsproto_utf8_ok(rx->ctl + 2, rx->ctl_len - 2u))
				return stop(rx, -EILSEQ, "a close reason that is not UTF-8");
		}
		return sink->close(user, code, (const char *)rx->ctl + (rx->ctl_len ? 2 : 0),
		                   rx->ctl_len ? rx->ctl_len - 2u : 0);
	}
	if (!rx->fin)
		return 0;
	if (!rx->skipping) {
		if (rx->msg_opcode == OP_TEXT &&
		    !wsproto_utf8_ok((unsigned char *)rx->msg, rx->msg_len))
			return stop(rx, -EILSEQ, "a text message that is not UTF-8");
		rc = sink->message(user, rx->msg, rx->msg_len, rx->msg_opcode == OP_BINARY);
	}
	free(rx->msg);
	rx->msg = NULL;
	rx->msg_len = 0;
	rx->msg_opcode = 0;
	rx->skipping = 0;
	return rc;
}

/* A header byte. Returns 0, or an error. */
static int header_byte(struct wsproto_rx *rx, unsigned char c)
{
	rx->head[rx->head_len++] = c;
	if (rx->head_len == 1) {
		rx->fin = c >> 7;
		rx->opcode = c & 0x0F;
		if (c & 0x70) /* no extension was agreed */
			return stop(rx, -EPROTO, "reserved bits are set");
		switch (rx->opcode) {
		case OP_CONT:
			return rx->msg_opcode ? 0
			                      : stop(rx, -EPROTO, "a continuation with no message");
		case OP_TEXT:
		case OP_BINARY:
			return rx->msg_opcode ? stop(rx, -EPROTO, "a new message inside another")
			                      : 0;
		case OP_CLOSE:
		case OP_PING:
		case OP_PONG:
			return rx->fin ? 0 : stop(rx, -EPROTO, "a fragmented control frame");
		default:
			return stop(rx, -EPROTO, "an unknown opcode");
		}
	}
	if (rx->head_len == 2) {
		if (!(c & 0x80)) /* RFC 6455 5.1 */
			return stop(rx, -EPROTO, "a client's frames must be masked");
		rx->head_need = (uint8_t)(2 +
		                          ((c & 0x7F) == 126   ? 2
		                           : (c & 0x7F) == 127 ? 8
		                                               : 0) +
		                          4);
	}
	return 0;
}

int wsproto_rx_feed(struct wsproto_rx *rx, const unsigned char *in, size_t len,
                    const struct wsproto_sink *sink, void *user)
{
	size_t i = 0;
	int rc, big = 0;

	if (rx->broken)
		return rx->broken;
	while (i < len) {
		if (!rx->head_need || rx->head_len < rx->head_need) {
			if ((rc = header_byte(rx, in[i++])))
				return rc;
			if (rx->head_len < 2 || rx->head_len < rx->head_need)
				continue;
			rc = frame_begins(rx);
			if (rc == -EMSGSIZE)
				big = 1;
			else if (rc)
				return rc;
		} else {
			size_t n = len - i < rx->left ? len - i : (size_t)rx->left;

			if (rx->opcode & 0x8) {
				for (size_t k = 0; k < n; k++, rx->at++)
					rx->ctl[rx->ctl_len++] = in[i + k] ^ rx->mask[rx->at % 4];
			} else if (!rx->skipping) {
				for (size_t k = 0; k < n; k++, rx->at++)
					rx->msg[rx->msg_len++] =
					    (char)(in[i + k] ^ rx->mask[rx->at % 4]);
			}
			i += n;
			rx->left -= n;
		}
		if (rx->left)
			continue;
		/* A frame is whole (an empty one as soon as its header is). */
		rx->head_len = rx->head_need = 0;
		if ((rc = frame_ends(rx, sink, user)))
			return rc;
	}
	return big ? -EMSGSIZE : 0;
}

void wsproto_rx_fini(struct wsproto_rx *rx)
{
	free(rx->msg);
	rx->msg = NULL;
}
