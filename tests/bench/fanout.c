/* tests/bench/fanout.c - the live fan-out benchmark: websocket viewers and
 * donors at once, against tally or against nginx + nchan.
 *
 * DESIGN: one thread per process, one epoll loop over nonblocking sockets;
 * only libc. Phases, each with a deadline (and alarm() over the whole run):
 *   1. subscribe: N websocket clients (RFC 6455 handshake, masked frames)
 *      connect at a bounded pace, spread round-robin over campaigns c1..cM
 *      (or all on c1: --hot); each waits for its first snapshot (tally) or
 *      its 101 (nchan, which has no snapshot).
 *   2. load: C keep-alive HTTP/1.1 connections, one request in flight each,
 *      post gifts at R/s (open loop, slots kept until the load ends) or as
 *      fast as answers come (R = 0, closed loop) for S seconds. Gift number
 *      i carries the stamp "s<i>" in its message; its send time is kept.
 *      --idle: no gifts; the viewers just stay connected for S seconds.
 *   3. answers: up to 10 s for the requests still in flight.
 *   4. settle: up to --settle s until every viewer's highest total_cents
 *      equals the sum of the gifts its campaign accepted.
 * The viewers are read by a second process (forked once they are all
 * subscribed; --one-process keeps them in this one): a loop that reads
 * 10,000 viewers' frames would otherwise hold each POST's answer behind
 * them and measure itself. The gifts table and the accepted sums are in
 * shared memory, so the viewer process times each gift against its send.
 * --viewer-nice N runs that process at nice N: the viewers' devices are
 * not on the server's machine, and a reader at nice 0 takes the CPU the
 * server's own threads would get (about a third of a core at 10,000
 * viewers); both servers are measured the same way.
 * Screen latency: every text frame is scanned for "message":"s<i>"
 * (donation events and the recent list of snapshot/update frames). A
 * viewer remembers, per its campaign, the highest gift index it has seen
 * and a 64-gift window below it, so each gift counts once per viewer, at
 * the first frame that shows it: latency = receive time - send time.
 * Output: one markdown table row (--header prints the header first);
 * --result FILE also writes key=value lines for scripts.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#define WBUF_CAP 1024
#define RX_MAX (1 << 20)     /* largest frame or HTTP answer accepted */
#define LAT_SUB 32           /* histogram: sub-buckets per power of two */
#define LAT_N (40 * LAT_SUB) /* microseconds up to 2^40 */
#define FPS_N 4096           /* frames per second per viewer, linear */
#define CODES_N 16

enum kind { SUB, PUB };
enum state { CONNECTING, HANDSHAKE, OPEN, DEAD };

struct conn {
	int fd;
	uint8_t kind, state, ready, closing;
	uint32_t campaign; /* index 0..M-1 */
	char *rbuf;        /* bytes read, not yet parsed */
	size_t rlen, rcap;
	char wbuf[WBUF_CAP]; /* bytes to write */
	size_t wlen, woff;
	/* viewer */
	char *msg; /* a fragmented message being assembled */
	size_t mlen, mcap;
	int mop;
	char accept[32]; /* expected Sec-WebSocket-Accept */
	int64_t hi;      /* highest gift index of its campaign seen, -1: none */
	uint64_t mask;   /* bit d: gift hi - d seen */
	int64_t total;   /* highest total_cents seen, -1: none */
	int64_t base;    /* total_cents of its first snapshot (tally), 0 (nchan) */
	uint64_t seen;   /* gifts seen */
	int64_t sec;     /* second of the window being counted, -1: none */
	uint32_t sec_frames;
	/* publisher */
	int64_t gift; /* in flight, -1: none */
};

struct gift {
	uint64_t sent_ns;
	uint32_t campaign, cidx, amount;
	int16_t status; /* 0: no answer yet */
};

struct hist {
	uint64_t n[LAT_N];
	uint64_t count, max_us;
};

static struct opts {
	const char *host, *path, *target, *label, *result, *prefix, *token;
	int port, subs, campaigns, hot, conns, rate, seconds, idle, settle, connect_rate, header;
	int pid, verbose, one_process, viewer_nice;
} o = {
    .host = "127.0.0.1",
    .target = "tally",
    .label = "run",
    .prefix = "c",
    .port = 0,
    .subs = 0,
    .campaigns = 1,
    .conns = 32,
    .rate = 0,
    .seconds = 10,
    .settle = 10,
    .connect_rate = 2000,
};

static struct conn *conns;
static size_t n_conns;
static int ep;
static int nchan;
static struct gift *gifts;
static size_t n_gifts, cap_gifts; /* gifts: shared memory, cap_gifts fixed */
static uint32_t *cidx_next;       /* per campaign: next gift index */
static int64_t *accepted_sum;
static uint64_t *accepted_n;
static struct hist lat_post, lat_screen, lat_event, lat_state; /* screen: by frame kind */
static uint64_t fps_hist[FPS_N + 1], fps_max, fps_folded;
static int64_t win0_ns, win_secs; /* frames/s window */
static uint64_t st_202, st_other, st_noanswer, st_codes[6], reconnects;
static uint64_t pub_closed_idle, pub_closed_answer; /* by the server: idle, Connection: close */
static uint64_t rx_bytes, frames, error_frames, foreign_stamps, old_stamps;
static uint64_t subs_ready, subs_dead, connect_failed, handshake_failed;
static int close_code[CODES_N], close_n[CODES_N];
static uint32_t rng = 0x9e3779b9u;
static char run_tag[16]; /* "-<hex>": ends every stamp of this run */
static size_t run_tag_len;

/* What the viewer process learns from the donors' and tells them back. */
struct viewer_result {
	size_t live, exact;          /* viewers open at the end; with the exact total */
	uint64_t expected, seen_sum; /* (viewer, gift) pairs accepted; seen */
	struct hist lat_screen, lat_event, lat_state;
	uint64_t fps_hist[FPS_N + 1], fps_max, fps_folded;
	uint64_t rx_bytes, frames, error_frames, foreign_stamps, old_stamps;
	uint64_t subs_ready, subs_dead;
	int close_code[CODES_N], close_n[CODES_N];
	uint64_t cpu_ns; /* the viewer process's CPU over the load */
};
static struct shared {
	_Atomic size_t n_gifts;  /* gifts[0..n) are made */
	_Atomic int64_t win0_ns; /* the load started */
	atomic_int load_done;    /* every answer is in: settle and report */
	struct viewer_result r;
} * sh;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "fanout: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void say(const char *fmt, ...)
{
	va_list ap;

	if (!o.verbose)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "fanout: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

/* --- SHA-1 and base64, for Sec-WebSocket-Accept --- */

static uint32_t rol(uint32_t x, int n)
{
	return (x << n) | (x >> (32 - n));
}

static void sha1(const unsigned char *data, size_t len, unsigned char out[20])
{
	uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
	unsigned char blk[64];
	uint64_t bits = (uint64_t)len * 8;
	size_t total = ((len + 8) / 64 + 1) * 64;

	for (size_t off = 0; off < total; off += 64) {
		uint32_t w[80], a, b, c, d, e;

		for (size_t i = 0; i < 64; i++) {
			size_t k = off + i;
			blk[i] = k < len ? data[k] : k == len ? 0x80 : 0;
		}
		if (off + 64 == total)
			for (int i = 0; i < 8; i++)
				blk[56 + i] = (unsigned char)(bits >> (56 - 8 * i));
		for (int i = 0; i < 16; i++)
			w[i] = (uint32_t)blk[4 * i] << 24 | (uint32_t)blk[4 * i + 1] << 16 |
			       (uint32_t)blk[4 * i + 2] << 8 | blk[4 * i + 3];
		for (int i = 16; i < 80; i++)
			w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
		a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
		for (int i = 0; i < 80; i++) {
			uint32_t f, k, t;

			if (i < 20)
				f = (b & c) | (~b & d), k = 0x5A827999;
			else if (i < 40)
				f = b ^ c ^ d, k = 0x6ED9EBA1;
			else if (i < 60)
				f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
			else
				f = b ^ c ^ d, k = 0xCA62C1D6;
			t = rol(a, 5) + f + e + k + w[i];
			e = d, d = c, c = rol(b, 30), b = a, a = t;
		}
		h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
	}
	for (int i = 0; i < 20; i++)
		out[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
}

static void base64(const unsigned char *in, size_t len, char *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t j = 0;

	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) |
		             (i + 2 < len ? in[i + 2] : 0);

		out[j++] = t[v >> 18 & 63];
		out[j++] = t[v >> 12 & 63];
		out[j++] = i + 1 < len ? t[v >> 6 & 63] : '=';
		out[j++] = i + 2 < len ? t[v & 63] : '=';
	}
	out[j] = '\0';
}

/* --- histograms --- */

/* Log buckets: LAT_SUB per power of two of microseconds (3 % wide). */
static size_t lat_bucket(uint64_t us)
{
	int p;

	if (us < LAT_SUB)
		return (size_t)us;
	p = 63 - __builtin_clzll(us);
	return (size_t)(p - 4) * LAT_SUB + ((us >> (p - 5)) & (LAT_SUB - 1));
}

/* The largest value of bucket b, in microseconds. */
static uint64_t lat_upper(size_t b)
{
	size_t p;

	if (b < LAT_SUB)
		return b;
	p = b / LAT_SUB + 4;
	return ((uint64_t)(LAT_SUB + b % LAT_SUB + 1) << (p - 5)) - 1;
}

static void hist_add(struct hist *h, uint64_t ns)
{
	uint64_t us = ns / 1000;
	size_t b = lat_bucket(us);

	h->n[b < LAT_N ? b : LAT_N - 1]++;
	h->count++;
	if (us > h->max_us)
		h->max_us = us;
}

/* The q-quantile in ms (bucket upper bound, capped at the max), -1 if empty. */
static double hist_q(const struct hist *h, double q)
{
	uint64_t want, acc = 0;

	if (!h->count)
		return -1;
	want = (uint64_t)(q * (double)h->count);
	if (want < 1)
		want = 1;
	for (size_t b = 0; b < LAT_N; b++) {
		acc += h->n[b];
		if (acc >= want) {
			uint64_t u = lat_upper(b);
			return (double)(u < h->max_us ? u : h->max_us) / 1000.0;
		}
	}
	return (double)h->max_us / 1000.0;
}

/* Frames per viewer per second, over the window [win0_ns, +win_secs). */
static void fps_fold(struct conn *c)
{
	if (c->sec >= 0 && c->sec_frames) {
		fps_hist[c->sec_frames < FPS_N ? c->sec_frames : FPS_N]++;
		fps_folded++;
		if (c->sec_frames > fps_max)
			fps_max = c->sec_frames;
	}
	c->sec = -1;
	c->sec_frames = 0;
}

static void fps_count(struct conn *c, uint64_t t)
{
	int64_t s;

	if (!win0_ns || (int64_t)t < win0_ns)
		return;
	s = ((int64_t)t - win0_ns) / 1000000000;
	if (s >= win_secs)
		return;
	if (s != c->sec) {
		fps_fold(c);
		c->sec = s;
	}
	c->sec_frames++;
}

/* --- /proc --- */

struct proc {
	uint64_t ticks, rss_kb;
};

static struct proc proc_read(void)
{
	struct proc p = {0, 0};
	char path[64], buf[4096], *s;
	FILE *f;
	size_t n;

	if (!o.pid)
		return p;
	snprintf(path, sizeof(path), "/proc/%d/stat", o.pid);
	if ((f = fopen(path, "r"))) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = '\0';
		fclose(f);
		if ((s = strrchr(buf, ')'))) {
			unsigned long ut = 0, st = 0;

			/* after ")": state(3) ... utime(14) stime(15) */
			if (sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			           &ut, &st) == 2)
				p.ticks = ut + st;
		}
	}
	snprintf(path, sizeof(path), "/proc/%d/status", o.pid);
	if ((f = fopen(path, "r"))) {
		while (fgets(buf, sizeof(buf), f))
			if (!strncmp(buf, "VmRSS:", 6))
				p.rss_kb = strtoull(buf + 6, NULL, 10);
		fclose(f);
	}
	return p;
}

/* This process's CPU time (user + system), in ns. */
static uint64_t self_cpu_ns(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
	       ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
}

/* --- connections --- */

static void record_close(int code)
{
	for (int i = 0; i < CODES_N; i++) {
		if (close_n[i] && close_code[i] == code) {
			close_n[i]++;
			return;
		}
		if (!close_n[i]) {
			close_code[i] = code;
			close_n[i] = 1;
			return;
		}
	}
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->state = DEAD;
	c->rlen = c->wlen = c->woff = c->mlen = 0;
}

/* A viewer lost: counted by the close code (1006 when there was none);
 * never retried. */
static void sub_drop(struct conn *c, int code, int before_open)
{
	if (c->state == DEAD)
		return;
	if (before_open)
		c->state == CONNECTING ? connect_failed++ : handshake_failed++;
	else
		record_close(code);
	if (c->ready)
		fps_fold(c);
	subs_dead++;
	say("viewer %zu closed (%d%s)", (size_t)(c - conns), code,
	    before_open ? ", before open" : "");
	conn_close(c);
}

static int conn_open(struct conn *c)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o.port)};
	struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.u32 = (uint32_t)(c - conns)};
	int one = 1;

	if (inet_pton(AF_INET, o.host, &sa.sin_addr) != 1)
		die("bad --host %s", o.host);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) && errno != EINPROGRESS) {
		int e = errno;
		close(c->fd);
		c->fd = -1;
		return -e;
	}
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev))
		die("epoll_ctl: %s", strerror(errno));
	c->state = CONNECTING;
	c->rlen = c->wlen = c->woff = c->mlen = 0;
	return 0;
}

static void want_out(struct conn *c, int on)
{
	struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0),
	                         .data.u32 = (uint32_t)(c - conns)};

	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Write what is queued; 0 when done or waiting for EPOLLOUT, -1 on error. */
static int flush_out(struct conn *c)
{
	while (c->woff < c->wlen) {
		ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				want_out(c, 1);
				return 0;
			}
			return -1;
		}
		c->woff += (size_t)n;
	}
	c->woff = c->wlen = 0;
	return 0;
}

static int queue_out(struct conn *c, const void *p, size_t n)
{
	if (c->wlen + n > WBUF_CAP)
		return -1;
	memcpy(c->wbuf + c->wlen, p, n);
	c->wlen += n;
	return 0;
}

/* A masked client frame (RFC 6455 5.3). */
static int ws_send(struct conn *c, int opcode, const void *payload, size_t len)
{
	unsigned char h[8 + WBUF_CAP];
	size_t n = 0;
	uint32_t key = rnd();
	unsigned char *m;

	if (len > 0xffff || len + 8 > WBUF_CAP)
		return -1;
	h[n++] = (unsigned char)(0x80 | opcode);
	if (len < 126) {
		h[n++] = (unsigned char)(0x80 | len);
	} else {
		h[n++] = 0x80 | 126;
		h[n++] = (unsigned char)(len >> 8);
		h[n++] = (unsigned char)len;
	}
	m = h + n;
	memcpy(m, &key, 4);
	n += 4;
	for (size_t i = 0; i < len; i++)
		h[n + i] = ((const unsigned char *)payload)[i] ^ m[i % 4];
	if (queue_out(c, h, n + len))
		return -1;
	return flush_out(c);
}

static void sub_handshake(struct conn *c)
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char raw[16], dig[20];
	char key[32], cat[80], req[512];
	int n;

	for (int i = 0; i < 16; i++)
		raw[i] = (unsigned char)rnd();
	base64(raw, 16, key);
	snprintf(cat, sizeof(cat), "%s%s", key, guid);
	sha1((unsigned char *)cat, strlen(cat), dig);
	base64(dig, 20, c->accept);
	if (nchan)
		n = snprintf(req, sizeof(req),
		             "GET /sub/%s%u HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
		             "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
		             "Sec-WebSocket-Version: 13\r\n\r\n",
		             o.prefix, c->campaign + 1, o.host, o.port, key);
	else
		n = snprintf(
		    req, sizeof(req),
		    "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
		    "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
		    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: tally.live.v1\r\n\r\n",
		    o.path, o.host, o.port, key);
	c->state = HANDSHAKE;
	want_out(c, 0);
	if (queue_out(c, req, (size_t)n) || flush_out(c))
		sub_drop(c, 0, 1);
}

static void pub_send(struct conn *c, int64_t g);

/* --- parsing --- */

/* The value of header NAME in an HTTP head, copied to out; 0 if found. */
static int header(const char *head, size_t len, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	const char *p = head, *end = head + len;

	while (p < end) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);

		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > nl && p[nl] == ':' && !strncasecmp(p, name, nl)) {
			const char *v = p + nl + 1;
			size_t vl;

			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			vl = (size_t)(eol - v);
			while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			if (vl >= cap)
				vl = cap - 1;
			memcpy(out, v, vl);
			out[vl] = '\0';
			return 0;
		}
		p = eol + 2;
	}
	return -1;
}

static int64_t parse_int(const char *p, const char *end)
{
	int64_t v = 0;

	if (p >= end || *p < '0' || *p > '9')
		return -1;
	while (p < end && *p >= '0' && *p <= '9')
		v = v * 10 + (*p++ - '0');
	return v;
}

/* One text message to viewer c at time t: stamps, total, snapshot. */
static void sub_message(struct conn *c, const char *m, size_t len, uint64_t t)
{
	const char *end = m + len, *p;
	static const char stamp[] = "\"message\":\"s", tot[] = "\"total_cents\":";

	frames++;
	fps_count(c, t);
	int first = !nchan && !c->ready && memmem(m, len, "\"type\":\"snapshot\"", 17);
	int is_event = nchan || memmem(m, len, "\"type\":\"donation\"", 17) != NULL;

	if (memmem(m, len, "\"type\":\"error\"", 14)) {
		error_frames++;
		if (error_frames <= 3)
			fprintf(stderr, "fanout: error frame: %.*s\n", (int)(len < 300 ? len : 300),
			        m);
	}
	if ((p = memmem(m, len, tot, sizeof(tot) - 1))) {
		int64_t v = parse_int(p + sizeof(tot) - 1, end);

		if (v > c->total)
			c->total = v;
	}
	if (first) { /* the load starts after every snapshot: its total is the base */
		c->ready = 1;
		c->base = c->total > 0 ? c->total : 0;
		subs_ready++;
	}
	for (p = m; (p = memmem(p, (size_t)(end - p), stamp, sizeof(stamp) - 1)); p++) {
		const char *q = p + sizeof(stamp) - 1;
		int64_t g = parse_int(q, end), d;
		struct gift *gi;

		while (q < end && *q >= '0' && *q <= '9')
			q++;
		/* "s<gift>-<run tag>": gifts of another run are not ours */
		if (g < 0 || g >= (int64_t)n_gifts || (size_t)(end - q) < run_tag_len + 1 ||
		    memcmp(q, run_tag, run_tag_len) || q[run_tag_len] != '"')
			continue;
		gi = &gifts[g];
		if (gi->campaign != c->campaign) {
			foreign_stamps++;
			continue;
		}
		d = c->hi - (int64_t)gi->cidx;
		if (d < 0) {
			c->mask = -d >= 64 ? 0 : c->mask << -d;
			c->mask |= 1;
			c->hi = gi->cidx;
		} else if (d < 64) {
			if (c->mask & (1ull << d))
				continue;
			c->mask |= 1ull << d;
		} else {
			old_stamps++;
			continue;
		}
		c->seen++;
		hist_add(&lat_screen, t - gi->sent_ns);
		hist_add(is_event ? &lat_event : &lat_state, t - gi->sent_ns);
	}
}

/* Parse websocket frames in c->rbuf; returns bytes consumed, -1 if closed. */
static long sub_frames(struct conn *c, uint64_t t)
{
	const unsigned char *b = (const unsigned char *)c->rbuf;
	size_t off = 0;

	while (c->rlen - off >= 2) {
		size_t h = 2, len = b[off + 1] & 0x7f;
		int fin = b[off] & 0x80, op = b[off] & 0x0f, masked = b[off + 1] & 0x80;
		const unsigned char *pl;

		if (len == 126) {
			if (c->rlen - off < 4)
				break;
			len = (size_t)b[off + 2] << 8 | b[off + 3];
			h = 4;
		} else if (len == 127) {
			if (c->rlen - off < 10)
				break;
			len = 0;
			for (int i = 0; i < 8; i++)
				len = len << 8 | b[off + 2 + i];
			h = 10;
		}
		if (masked)
			h += 4; /* servers must not mask; tolerate it */
		if (len > RX_MAX) {
			sub_drop(c, 1009, 0);
			return -1;
		}
		if (c->rlen - off < h + len)
			break;
		pl = b + off + h;
		if (masked) {
			unsigned char *w = (unsigned char *)pl;
			for (size_t i = 0; i < len; i++)
				w[i] ^= pl[-4 + (int)(i % 4)];
		}
		off += h + len;
		if (op == 0x8) { /* close */
			int code = len >= 2 ? pl[0] << 8 | pl[1] : 1005;
			sub_drop(c, code, 0);
			return -1;
		} else if (op == 0x9) { /* ping */
			if (ws_send(c, 0xA, pl, len)) {
				sub_drop(c, 1006, 0);
				return -1;
			}
		} else if (op == 0x1 || op == 0x2 || op == 0x0) {
			if (op != 0)
				c->mop = op, c->mlen = 0;
			if (fin && c->mlen == 0) {
				sub_message(c, (const char *)pl, len, t);
			} else {
				if (c->mlen + len > c->mcap) {
					size_t cap = (c->mlen + len) * 2;
					char *m = realloc(c->msg, cap);
					if (!m)
						die("out of memory");
					c->msg = m, c->mcap = cap;
				}
				memcpy(c->msg + c->mlen, pl, len);
				c->mlen += len;
				if (fin) {
					sub_message(c, c->msg, c->mlen, t);
					c->mlen = 0;
				}
			}
		}
	}
	return (long)off;
}

/* The 101 answer; returns bytes consumed, 0 if incomplete, -1 if refused. */
static long sub_upgrade(struct conn *c)
{
	const char *e = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
	char v[128];
	size_t hl;

	if (!e)
		return c->rlen > 16384 ? -1 : 0;
	hl = (size_t)(e - c->rbuf) + 4;
	if (c->rlen < 12 || strncmp(c->rbuf + 9, "101", 3)) {
		if (handshake_failed < 3)
			fprintf(stderr, "fanout: handshake refused: %.*s\n",
			        (int)(hl < 200 ? hl : 200), c->rbuf);
		return -1;
	}
	if (header(c->rbuf, hl, "Sec-WebSocket-Accept", v, sizeof(v)) || strcmp(v, c->accept)) {
		fprintf(stderr, "fanout: bad Sec-WebSocket-Accept\n");
		return -1;
	}
	if (!nchan && (header(c->rbuf, hl, "Sec-WebSocket-Protocol", v, sizeof(v)) ||
	               strcmp(v, "tally.live.v1"))) {
		fprintf(stderr, "fanout: the server did not pick tally.live.v1\n");
		return -1;
	}
	c->state = OPEN;
	if (nchan) {
		c->ready = 1;
		subs_ready++;
	} else {
		char sub[128];
		int n = snprintf(sub, sizeof(sub),
		                 "{\"op\":\"subscribe\",\"channel\":\"campaign:%s%u\"}", o.prefix,
		                 c->campaign + 1);
		if (ws_send(c, 0x1, sub, (size_t)n))
			return -1;
	}
	return (long)hl;
}

/* One HTTP answer in c->rbuf; returns bytes consumed, 0 if incomplete, -1
 * if unreadable. Sets *status and *close_after. */
static long http_answer(struct conn *c, int *status, int *close_after)
{
	const char *e = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
	char v[64];
	size_t hl, body;

	if (!e)
		return c->rlen > 16384 ? -1 : 0;
	hl = (size_t)(e - c->rbuf) + 4;
	if (c->rlen < 12 || strncmp(c->rbuf, "HTTP/1.", 7))
		return -1;
	*status = (int)parse_int(c->rbuf + 9, c->rbuf + 12);
	*close_after = !header(c->rbuf, hl, "Connection", v, sizeof(v)) && !strcasecmp(v, "close");
	if (!header(c->rbuf, hl, "Content-Length", v, sizeof(v))) {
		body = (size_t)strtoull(v, NULL, 10);
		return c->rlen >= hl + body ? (long)(hl + body) : 0;
	}
	if (!header(c->rbuf, hl, "Transfer-Encoding", v, sizeof(v)) && strstr(v, "chunked")) {
		size_t off = hl;

		for (;;) {
			const char *le = memmem(c->rbuf + off, c->rlen - off, "\r\n", 2);
			size_t n;

			if (!le)
				return 0;
			n = (size_t)strtoull(c->rbuf + off, NULL, 16);
			off = (size_t)(le - c->rbuf) + 2;
			if (c->rlen < off + n + 2)
				return 0;
			off += n + 2;
			if (!n)
				return (long)off;
		}
	}
	if (*status == 204 || *status == 304 || *status / 100 == 1)
		return (long)hl;
	*close_after = 1; /* body until close: not expected from either server */
	return -1;
}

static int load_on; /* gifts may be sent */
static int64_t next_gift(void);

static void pub_answer(struct conn *c, int status, uint64_t t)
{
	struct gift *g = &gifts[c->gift];
	int ok = nchan ? status / 100 == 2 : status == 202;

	g->status = (int16_t)status;
	if (ok) {
		st_202++;
		accepted_sum[g->campaign] += g->amount;
		accepted_n[g->campaign]++;
		hist_add(&lat_post, t - g->sent_ns);
	} else {
		st_other++;
		st_codes[status / 100 <= 5 ? status / 100 : 0]++;
		if (st_other <= 3)
			fprintf(stderr, "fanout: POST answered %d: %.*s\n", status,
			        (int)(c->rlen < 200 ? c->rlen : 200), c->rbuf);
	}
	c->gift = -1;
}

static void pub_lost(struct conn *c)
{
	if (c->gift >= 0) {
		gifts[c->gift].status = -1;
		st_noanswer++;
		c->gift = -1;
	} else if (c->state == OPEN) {
		pub_closed_idle++;
	}
	conn_close(c);
	reconnects++;
	if (conn_open(c))
		c->state = DEAD;
}

static void on_event(struct conn *c, uint32_t events, uint64_t t)
{
	if (c->state == CONNECTING) {
		int err = 0;
		socklen_t sl = sizeof(err);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl);
		if (err || (events & (EPOLLERR | EPOLLHUP))) {
			if (c->kind == SUB) {
				if (connect_failed < 3)
					fprintf(stderr, "fanout: connect: %s\n",
					        strerror(err ? err : ECONNRESET));
				sub_drop(c, 0, 1);
			} else {
				pub_lost(c);
			}
			return;
		}
		if (c->kind == SUB) {
			sub_handshake(c);
		} else {
			c->state = OPEN;
			want_out(c, 0);
			if (load_on) {
				int64_t g = next_gift();
				if (g >= 0)
					pub_send(c, g);
			}
		}
		return;
	}
	if ((events & EPOLLOUT) && c->wlen) {
		if (flush_out(c)) {
			c->kind == SUB ? sub_drop(c, 1006, c->state != OPEN) : pub_lost(c);
			return;
		}
		if (!c->wlen)
			want_out(c, 0);
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		ssize_t n;
		long used;

		if (c->rcap - c->rlen < 4096) {
			size_t cap = c->rcap ? c->rcap * 2 : 16384;
			char *r;
			if (cap > 2 * RX_MAX + 65536) {
				c->kind == SUB ? sub_drop(c, 1009, 0) : pub_lost(c);
				return;
			}
			r = realloc(c->rbuf, cap);
			if (!r)
				die("out of memory");
			c->rbuf = r, c->rcap = cap;
		}
		n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			c->kind == SUB ? sub_drop(c, 1006, c->state != OPEN) : pub_lost(c);
			return;
		}
		c->rlen += (size_t)n;
		t = now_ns(); /* after the read: never before a send made since epoll_wait */
		if (c->kind == SUB) {
			rx_bytes += (uint64_t)n;
			used = 0;
			if (c->state == HANDSHAKE) {
				used = sub_upgrade(c);
				if (used < 0) {
					sub_drop(c, 0, 1);
					return;
				}
				if (used > 0) {
					memmove(c->rbuf, c->rbuf + used, c->rlen - (size_t)used);
					c->rlen -= (size_t)used;
					used = 0;
				}
			}
			if (c->state == OPEN && (used = sub_frames(c, t)) < 0)
				return;
			if (used > 0) {
				memmove(c->rbuf, c->rbuf + used, c->rlen - (size_t)used);
				c->rlen -= (size_t)used;
			}
			if (!c->rlen && c->rcap > 262144) { /* a big snapshot passed */
				free(c->rbuf);
				c->rbuf = NULL, c->rcap = 0;
			}
		} else {
			int status = 0, close_after = 0;

			while ((used = http_answer(c, &status, &close_after)) > 0) {
				if (c->gift >= 0)
					pub_answer(c, status, t);
				memmove(c->rbuf, c->rbuf + used, c->rlen - (size_t)used);
				c->rlen -= (size_t)used;
				if (close_after) {
					pub_closed_answer++;
					conn_close(c);
					reconnects++;
					if (conn_open(c))
						c->state = DEAD;
					return;
				}
				if (load_on && c->gift < 0) {
					int64_t g = next_gift();
					if (g >= 0)
						pub_send(c, g);
				}
			}
			if (used < 0)
				pub_lost(c);
		}
	}
}

/* --- the publisher --- */

static uint64_t load0_ns, load_end_ns, gifts_due, last_answer_ns;
static uint32_t rr_campaign;

/* The next gift to send now, -1 when none is due. */
static int64_t next_gift(void)
{
	struct gift *g;
	uint32_t k;

	if (o.rate > 0 && n_gifts >= gifts_due)
		return -1;
	if (n_gifts == cap_gifts)
		return -1; /* the table is full: no more gifts this run */
	k = o.hot ? 0 : rr_campaign++ % (uint32_t)o.campaigns;
	g = &gifts[n_gifts];
	g->campaign = k;
	g->cidx = cidx_next[k]++;
	g->amount = 100 + (uint32_t)(n_gifts % 97) * 25;
	g->status = 0;
	g->sent_ns = 0;
	n_gifts++;
	atomic_store(&sh->n_gifts, n_gifts);
	return (int64_t)n_gifts - 1;
}

static uint64_t run_id;
static int64_t *sent_sum; /* nchan: per campaign, the total including this gift */

static void pub_send(struct conn *c, int64_t gi)
{
	struct gift *g = &gifts[gi];
	char body[512], req[WBUF_CAP];
	int bl, n;

	if (nchan) {
		sent_sum[g->campaign] += g->amount;
		bl = snprintf(
		    body, sizeof(body),
		    "{\"type\":\"donation\",\"channel\":\"campaign:%s%u\",\"data\":{\"name\":"
		    "\"Fan Out\",\"amount_cents\":%u,\"message\":\"s%lld%s\",\"at\":"
		    "\"2026-12-01T12:00:00Z\"},\"total_cents\":%lld}",
		    o.prefix, g->campaign + 1, g->amount, (long long)gi, run_tag,
		    (long long)sent_sum[g->campaign]);
		n = snprintf(
		    req, sizeof(req),
		    "POST /pub/%s%u HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
		    "Content-Length: %d\r\n\r\n%s",
		    o.prefix, g->campaign + 1, o.host, o.port, bl, body);
	} else {
		bl = snprintf(
		    body, sizeof(body),
		    "{\"amount_cents\":%u,\"currency\":\"USD\",\"donor\":{\"name\":\"Fan Out\","
		    "\"email\":\"fan@example.org\"},\"anonymous\":false,\"message\":\"s%lld%s\","
		    "\"payment_token\":\"tok_visa\"}",
		    g->amount, (long long)gi, run_tag);
		n = snprintf(
		    req, sizeof(req),
		    "POST /api/v1/campaigns/%s%u/donations HTTP/1.1\r\nHost: %s:%d\r\n"
		    "Content-Type: application/json\r\nIdempotency-Key: fanout-%llx-%lld\r\n"
		    "Content-Length: %d\r\n\r\n%s",
		    o.prefix, g->campaign + 1, o.host, o.port, (unsigned long long)run_id,
		    (long long)gi, bl, body);
	}
	c->gift = gi;
	g->sent_ns = now_ns();
	if (n < 0 || n >= (int)sizeof(req) || queue_out(c, req, (size_t)n) || flush_out(c))
		pub_lost(c);
}

/* Send every due gift on every idle publisher. */
static void pump(size_t first_pub)
{
	for (size_t i = first_pub; i < n_conns; i++) {
		struct conn *c = &conns[i];
		int64_t g;

		if (c->state != OPEN || c->gift >= 0)
			continue;
		if ((g = next_gift()) < 0)
			return;
		pub_send(c, g);
	}
}

static void loop_once(int timeout_ms)
{
	struct epoll_event ev[512];
	int n = epoll_wait(ep, ev, 512, timeout_ms);
	uint64_t t = now_ns();

	if (n < 0 && errno != EINTR)
		die("epoll_wait: %s", strerror(errno));
	for (int i = 0; i < n; i++) {
		struct conn *c = &conns[ev[i].data.u32];
		uint64_t before = st_202 + st_other;

		if (c->state == DEAD)
			continue;
		on_event(c, ev[i].events, t);
		if (st_202 + st_other != before)
			last_answer_ns = t;
	}
}

static size_t exact_subs(void)
{
	size_t n = 0;

	for (size_t i = 0; i < (size_t)o.subs; i++) {
		struct conn *c = &conns[i];
		if (c->state == OPEN && c->ready && c->total == c->base + accepted_sum[c->campaign])
			n++;
	}
	return n;
}

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: fanout --port P [--target tally|nchan] [--subs N] [--campaigns M] [--hot]\n"
	    "              [--rate R] [--conns C] [--seconds S] [--idle] [--pid PID]\n"
	    "              [--settle S] [--connect-rate R] [--path /live] [--host 127.0.0.1]\n"
	    "              [--prefix c] [--label TEXT] [--header] [--result FILE] [--verbose]\n"
	    "              [--one-process] [--viewer-nice N]\n"
	    "  N viewers over campaigns PREFIX1..PREFIXM (--hot: all on PREFIX1); gifts at R/s\n"
	    "  (0: as fast as answered) on C connections for S s; one markdown row on stdout.\n");
	exit(2);
}

static int int_arg(const char *name, const char *v, int lo, int hi)
{
	char *end;
	long x;

	errno = 0;
	x = strtol(v ? v : "", &end, 10);
	if (!v || errno || *end || x < lo || x > hi)
		die("%s wants an integer from %d to %d", name, lo, hi);
	return (int)x;
}

static void parse(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int takes = 1;

		if (!strcmp(a, "--port"))
			o.port = int_arg(a, v, 1, 65535);
		else if (!strcmp(a, "--host"))
			o.host = v;
		else if (!strcmp(a, "--path"))
			o.path = v;
		else if (!strcmp(a, "--target"))
			o.target = v;
		else if (!strcmp(a, "--label"))
			o.label = v;
		else if (!strcmp(a, "--result"))
			o.result = v;
		else if (!strcmp(a, "--prefix"))
			o.prefix = v;
		else if (!strcmp(a, "--subs"))
			o.subs = int_arg(a, v, 0, 1000000);
		else if (!strcmp(a, "--campaigns"))
			o.campaigns = int_arg(a, v, 1, 1000000);
		else if (!strcmp(a, "--conns"))
			o.conns = int_arg(a, v, 1, 10000);
		else if (!strcmp(a, "--rate"))
			o.rate = int_arg(a, v, 0, 10000000);
		else if (!strcmp(a, "--seconds"))
			o.seconds = int_arg(a, v, 1, 3600);
		else if (!strcmp(a, "--settle"))
			o.settle = int_arg(a, v, 0, 600);
		else if (!strcmp(a, "--connect-rate"))
			o.connect_rate = int_arg(a, v, 1, 1000000);
		else if (!strcmp(a, "--viewer-nice"))
			o.viewer_nice = int_arg(a, v, 0, 19);
		else if (!strcmp(a, "--pid"))
			o.pid = int_arg(a, v, 0, 1 << 30);
		else if ((takes = 0), !strcmp(a, "--hot"))
			o.hot = 1;
		else if (!strcmp(a, "--idle"))
			o.idle = 1;
		else if (!strcmp(a, "--header"))
			o.header = 1;
		else if (!strcmp(a, "--verbose"))
			o.verbose = 1;
		else if (!strcmp(a, "--one-process"))
			o.one_process = 1;
		else
			usage();
		if (takes && !v)
			usage();
		i += takes;
	}
	if (!o.port || !o.target)
		usage();
	if (!strcmp(o.target, "nchan"))
		nchan = 1;
	else if (strcmp(o.target, "tally"))
		die("--target is tally or nchan");
	if (!o.path)
		o.path = "/live";
	if (o.hot)
		o.campaigns = 1;
}

static void fmt_ms(char *out, size_t cap, double v)
{
	if (v < 0)
		snprintf(out, cap, "-");
	else if (v < 10)
		snprintf(out, cap, "%.1f", v);
	else
		snprintf(out, cap, "%.0f", v);
}

/* Shared with the viewer process (before it is forked). */
static void *shared_alloc(size_t bytes)
{
	void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE,
	               MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		die("mmap %zu bytes: %s", bytes, strerror(errno));
	return p;
}

/* After the load: wait up to --settle s until every viewer's total equals
 * its campaign's accepted sum, then sum up the viewers into r. */
static void viewers_finish(struct viewer_result *r)
{
	uint64_t deadline;

	r->live = 0;
	for (size_t i = 0; i < (size_t)o.subs; i++)
		r->live += conns[i].state == OPEN && conns[i].ready;
	for (deadline = now_ns() + (uint64_t)o.settle * 1000000000u; now_ns() < deadline;) {
		if (o.idle || exact_subs() == r->live)
			break;
		loop_once(100);
	}
	r->exact = exact_subs();
	r->live = 0;
	r->expected = r->seen_sum = 0;
	for (size_t i = 0; i < (size_t)o.subs; i++) {
		struct conn *c = &conns[i];
		if (c->ready)
			fps_fold(c);
		if (c->state == OPEN && c->ready) {
			r->live++;
			r->expected += accepted_n[c->campaign];
			r->seen_sum += c->seen;
		}
	}
	r->lat_screen = lat_screen, r->lat_event = lat_event, r->lat_state = lat_state;
	memcpy(r->fps_hist, fps_hist, sizeof(fps_hist));
	r->fps_max = fps_max, r->fps_folded = fps_folded;
	r->rx_bytes = rx_bytes, r->frames = frames, r->error_frames = error_frames;
	r->foreign_stamps = foreign_stamps, r->old_stamps = old_stamps;
	r->subs_ready = subs_ready, r->subs_dead = subs_dead;
	memcpy(r->close_code, close_code, sizeof(close_code));
	memcpy(r->close_n, close_n, sizeof(close_n));
}

/* The viewer process: read the viewers until the donors are done, then
 * settle and report through sh->r. Never returns. */
static void viewers_apart(void)
{
	uint64_t cpu0 = 0;

	win_secs = o.seconds;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL))
		die("prctl: %s", strerror(errno));
	if (o.viewer_nice && setpriority(PRIO_PROCESS, 0, o.viewer_nice))
		die("setpriority: %s", strerror(errno));
	alarm((unsigned)(o.seconds + 10 + o.settle + 60));
	while (!atomic_load(&sh->load_done)) {
		n_gifts = atomic_load(&sh->n_gifts);
		if (!win0_ns && (win0_ns = atomic_load(&sh->win0_ns)))
			cpu0 = self_cpu_ns();
		loop_once(10);
	}
	n_gifts = atomic_load(&sh->n_gifts);
	sh->r.cpu_ns = cpu0 ? self_cpu_ns() - cpu0 : 0;
	viewers_finish(&sh->r);
	fflush(stderr);
	_exit(0);
}

int main(int argc, char **argv)
{
	struct rlimit rl;
	size_t need, first_pub;
	struct proc p0, p1 = {0, 0}, p_subs;
	uint64_t t, deadline, connect0, opened = 0, cpu_t0, cpu_t1 = 0;
	long tck = sysconf(_SC_CLK_TCK);
	uint64_t ru0, ru1 = 0;
	double tool_pct;
	double load_s, cpu_pct, fps_p99 = 0, kib_sub = 0;
	char post50[16], post99[16], scr50[16], scr99[16], scrmax[16], drops[256], seen[32];
	uint64_t expected = 0, seen_sum = 0, rx_at_fork = 0;
	size_t exact, live;
	pid_t viewer_pid = 0;
	struct viewer_result vr;
	FILE *rf;

	parse(argc, argv);
	rng ^= (uint32_t)getpid() * 2654435761u ^ (uint32_t)now_ns();
	run_id = (uint64_t)time(NULL) << 20 ^ (uint64_t)getpid();
	run_tag_len = (size_t)snprintf(run_tag, sizeof(run_tag), "-%08x", rnd());
	signal(SIGPIPE, SIG_IGN);

	/* Open files: every viewer and publisher, plus a few of our own. */
	need = (size_t)o.subs + (size_t)o.conns + 16;
	if (getrlimit(RLIMIT_NOFILE, &rl))
		die("getrlimit: %s", strerror(errno));
	if (rl.rlim_max != RLIM_INFINITY && need > rl.rlim_max)
		die("%d viewers + %d connections need %zu open files; the hard limit is %llu "
		    "(ulimit -Hn): use fewer viewers",
		    o.subs, o.conns, need, (unsigned long long)rl.rlim_max);
	if (rl.rlim_cur < need) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			die("setrlimit(RLIMIT_NOFILE, %llu): %s", (unsigned long long)rl.rlim_max,
			    strerror(errno));
	}
	/* A bound on the whole run, whatever happens. */
	alarm((unsigned)(o.subs / o.connect_rate + 60 + o.seconds + 10 + o.settle + 60));

	n_conns = (size_t)o.subs + (o.idle ? 0 : (size_t)o.conns);
	first_pub = (size_t)o.subs;
	conns = calloc(n_conns ? n_conns : 1, sizeof(*conns));
	cidx_next = calloc((size_t)o.campaigns, sizeof(*cidx_next));
	/* In shared memory (zeroed): what the viewer process reads. Room for
	 * 2,000,000 gifts a second (pages are only used as they are
	 * touched). */
	sh = shared_alloc(sizeof(*sh));
	cap_gifts = ((size_t)o.seconds + 1) * 2000000u;
	gifts = shared_alloc(cap_gifts * sizeof(*gifts));
	accepted_sum = shared_alloc((size_t)o.campaigns * sizeof(*accepted_sum));
	accepted_n = shared_alloc((size_t)o.campaigns * sizeof(*accepted_n));
	sent_sum = calloc((size_t)o.campaigns, sizeof(*sent_sum));
	if (!conns || !cidx_next || !accepted_sum || !accepted_n || !sent_sum)
		die("out of memory");
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("epoll_create1: %s", strerror(errno));
	for (size_t i = 0; i < n_conns; i++) {
		conns[i].fd = -1;
		conns[i].state = DEAD;
		conns[i].kind = i < first_pub ? SUB : PUB;
		conns[i].campaign = o.hot ? 0 : (uint32_t)(i % (size_t)o.campaigns);
		conns[i].hi = -1;
		conns[i].total = -1;
		conns[i].sec = -1;
		conns[i].gift = -1;
	}

	/* 1. subscribe, at a bounded pace; at most 256 handshakes at once */
	p0 = proc_read();
	connect0 = now_ns();
	deadline = connect0 + ((uint64_t)o.subs / (uint64_t)o.connect_rate + 30) * 1000000000u;
	for (;;) {
		uint64_t due;
		size_t pending = opened - subs_ready - subs_dead;

		t = now_ns();
		due = (t - connect0) * (uint64_t)o.connect_rate / 1000000000u + 1;
		while (opened < (uint64_t)o.subs && opened < due && pending < 256) {
			struct conn *c = &conns[opened++];
			int rc = conn_open(c);

			if (rc) {
				if (connect_failed < 3)
					fprintf(stderr, "fanout: socket/connect: %s\n",
					        strerror(-rc));
				connect_failed++;
				subs_dead++;
			}
			pending++;
		}
		if (subs_ready + subs_dead >= (uint64_t)o.subs || t > deadline)
			break;
		loop_once(2);
	}
	say("%llu of %d viewers ready in %.1f s (%llu lost)", (unsigned long long)subs_ready,
	    o.subs, (double)(now_ns() - connect0) / 1e9, (unsigned long long)subs_dead);
	/* Let the server settle after the connection storm before measuring. */
	for (t = now_ns(); now_ns() - t < 1000000000u;)
		loop_once(50);
	p_subs = proc_read();

	/* The viewers go to a process of their own. This one then forgets
	 * them: a new epoll set (the old one is the viewer process's now) and
	 * its copies of their sockets closed. */
	if (!o.one_process && !o.idle && o.subs) {
		fflush(stdout);
		fflush(stderr);
		viewer_pid = fork();
		if (viewer_pid < 0)
			die("fork: %s", strerror(errno));
		if (viewer_pid == 0)
			viewers_apart();
		close(ep);
		if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
			die("epoll_create1: %s", strerror(errno));
		for (size_t i = 0; i < first_pub; i++)
			if (conns[i].fd >= 0) {
				close(conns[i].fd);
				conns[i].fd = -1;
			}
		rx_at_fork = rx_bytes;
	}

	/* 2. load, or idle */
	for (size_t i = first_pub; i < n_conns; i++)
		if (conn_open(&conns[i]))
			die("cannot open publisher connections");
	for (t = now_ns(); now_ns() - t < 2000000000u;) { /* connected, bounded */
		size_t up = 0;
		for (size_t i = first_pub; i < n_conns; i++)
			up += conns[i].state == OPEN;
		if (up == n_conns - first_pub)
			break;
		loop_once(5);
	}
	load0_ns = now_ns();
	win0_ns = (int64_t)load0_ns;
	atomic_store(&sh->win0_ns, win0_ns);
	win_secs = o.seconds;
	load_end_ns = load0_ns + (uint64_t)o.seconds * 1000000000u;
	cpu_t0 = load0_ns;
	p0.ticks = proc_read().ticks;
	ru0 = self_cpu_ns();
	load_on = !o.idle;
	while ((t = now_ns()) < load_end_ns) {
		int timeout = 10;

		if (load_on && o.rate > 0) {
			gifts_due = (t - load0_ns) * (uint64_t)o.rate / 1000000000u + 1;
			pump(first_pub);
			timeout = 1;
		} else if (load_on) {
			pump(first_pub);
		}
		loop_once(timeout);
	}
	load_on = 0;
	gifts_due = n_gifts;
	if (o.idle) {
		cpu_t1 = now_ns();
		p1 = proc_read();
		ru1 = self_cpu_ns();
	}

	/* 3. answers still in flight, up to 10 s */
	for (deadline = now_ns() + 10000000000u; now_ns() < deadline;) {
		size_t busy = 0;
		for (size_t i = first_pub; i < n_conns; i++)
			busy += conns[i].gift >= 0;
		if (!busy)
			break;
		loop_once(5);
	}
	if (!o.idle) {
		cpu_t1 = now_ns();
		p1 = proc_read();
		ru1 = self_cpu_ns();
	}
	tool_pct = (double)(ru1 - ru0) / (double)(cpu_t1 - cpu_t0) * 100.0;
	for (size_t i = first_pub; i < n_conns; i++)
		if (conns[i].gift >= 0) {
			st_noanswer++;
			conns[i].gift = -1;
		}

	/* 4. settle: every viewer's total equals its campaign's accepted sum */
	if (viewer_pid > 0) {
		int status;

		atomic_store(&sh->load_done, 1);
		if (waitpid(viewer_pid, &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status))
			die("the viewer process failed");
		vr = sh->r;
		vr.rx_bytes += rx_bytes - rx_at_fork;
		tool_pct += (double)vr.cpu_ns / (double)(cpu_t1 - cpu_t0) * 100.0;
	} else {
		viewers_finish(&vr);
	}
	live = vr.live, exact = vr.exact, expected = vr.expected, seen_sum = vr.seen_sum;
	lat_screen = vr.lat_screen, lat_event = vr.lat_event, lat_state = vr.lat_state;
	memcpy(fps_hist, vr.fps_hist, sizeof(fps_hist));
	fps_max = vr.fps_max, fps_folded = vr.fps_folded;
	rx_bytes = vr.rx_bytes, frames = vr.frames, error_frames = vr.error_frames;
	foreign_stamps = vr.foreign_stamps, old_stamps = vr.old_stamps;
	subs_ready = vr.subs_ready, subs_dead = vr.subs_dead;
	memcpy(close_code, vr.close_code, sizeof(close_code));
	memcpy(close_n, vr.close_n, sizeof(close_n));

	/* Report. */
	load_s =
	    (double)((last_answer_ns > load0_ns ? last_answer_ns : load_end_ns) - load0_ns) / 1e9;
	if (load_s < o.seconds * 0.5)
		load_s = o.seconds;
	cpu_pct = o.pid ? (double)(p1.ticks - p0.ticks) / (double)tck /
	                      ((double)(cpu_t1 - cpu_t0) / 1e9) * 100.0
	                : -1;
	/* Server memory per viewer: idle, at the end of the idle window; under
	 * load, just after subscribing (before the load adds its own). */
	if (o.subs && p0.rss_kb)
		kib_sub =
		    ((double)(o.idle ? p1.rss_kb : p_subs.rss_kb) - (double)p0.rss_kb) / o.subs;
	{
		/* p99 over every (viewer, second) of the window, silent ones too */
		uint64_t total = (uint64_t)live * (uint64_t)win_secs, acc, want;
		uint64_t zeros = total > fps_folded ? total - fps_folded : 0;

		total = zeros + fps_folded;
		want = total ? (uint64_t)(0.99 * (double)total) : 0;
		acc = zeros;
		if (total && acc < want) {
			for (size_t b = 1; b <= FPS_N; b++) {
				acc += fps_hist[b];
				if (acc >= want) {
					fps_p99 = (double)b;
					break;
				}
			}
		}
	}
	fmt_ms(post50, sizeof(post50), hist_q(&lat_post, 0.50));
	fmt_ms(post99, sizeof(post99), hist_q(&lat_post, 0.99));
	fmt_ms(scr50, sizeof(scr50), hist_q(&lat_screen, 0.50));
	fmt_ms(scr99, sizeof(scr99), hist_q(&lat_screen, 0.99));
	fmt_ms(scrmax, sizeof(scrmax), lat_screen.count ? (double)lat_screen.max_us / 1000.0 : -1);
	{
		size_t dl = 0;

		drops[0] = '\0';
		if (connect_failed)
			dl += (size_t)snprintf(drops + dl, sizeof(drops) - dl, "connect %llu ",
			                       (unsigned long long)connect_failed);
		if (handshake_failed)
			dl += (size_t)snprintf(drops + dl, sizeof(drops) - dl, "handshake %llu ",
			                       (unsigned long long)handshake_failed);
		if (o.subs - (int)subs_ready - (int)subs_dead > 0 && dl < sizeof(drops))
			dl += (size_t)snprintf(
			    drops + dl, sizeof(drops) - dl, "no snapshot %llu ",
			    (unsigned long long)((uint64_t)o.subs - subs_ready - subs_dead));
		for (int i = 0; i < CODES_N && close_n[i] && dl < sizeof(drops); i++)
			dl += (size_t)snprintf(drops + dl, sizeof(drops) - dl, "%d: %d ",
			                       close_code[i], close_n[i]);
		if (!dl)
			snprintf(drops, sizeof(drops), "0");
		else if (dl < sizeof(drops))
			drops[dl - 1] = '\0';
	}
	if (o.idle || !expected)
		snprintf(seen, sizeof(seen), "-");
	else
		snprintf(seen, sizeof(seen), "%.1f", 100.0 * (double)seen_sum / (double)expected);
	if (o.header) {
		printf(
		    "| scenario | server | viewers (ready) | campaigns | offered/s | accepted/s | "
		    "POST p50/p99 ms | screen p50/p99/max ms | gifts seen %% | frames/s per viewer "
		    "max (p99) | exact viewers | viewers lost | server RSS MB (KiB/viewer) | "
		    "server "
		    "CPU %% |\n");
		printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	}
	{
		char offered[32], acc[32], cpu[16], rss[48], camp[32], ex[48];

		if (o.hot)
			snprintf(camp, sizeof(camp), "1 (hot)");
		else
			snprintf(camp, sizeof(camp), "%d", o.campaigns);
		if (o.idle)
			snprintf(ex, sizeof(ex), "-");
		else
			snprintf(ex, sizeof(ex), "%zu of %zu", exact, live);

		if (o.idle)
			snprintf(offered, sizeof(offered), "idle"), snprintf(acc, sizeof(acc), "-");
		else {
			if (o.rate)
				snprintf(offered, sizeof(offered), "%d", o.rate);
			else
				snprintf(offered, sizeof(offered), "max (%d conns)", o.conns);
			snprintf(acc, sizeof(acc), "%.0f", (double)st_202 / load_s);
		}
		if (cpu_pct >= 0)
			snprintf(cpu, sizeof(cpu), "%.1f", cpu_pct);
		else
			snprintf(cpu, sizeof(cpu), "-");
		if (o.pid)
			snprintf(rss, sizeof(rss), "%.0f (%.1f)", (double)p1.rss_kb / 1024.0,
			         kib_sub);
		else
			snprintf(rss, sizeof(rss), "-");
		printf("| %s | %s | %d (%llu) | %s | %s | %s | %s / %s | %s / %s / %s | %s | %llu "
		       "(%.0f) | "
		       "%s | %s | %s | %s |\n",
		       o.label, o.target, o.subs, (unsigned long long)subs_ready, camp, offered,
		       acc, post50, post99, scr50, scr99, scrmax, seen, (unsigned long long)fps_max,
		       fps_p99, ex, drops, rss, cpu);
	}
	fflush(stdout);
	say("gifts sent %zu, accepted %llu, other %llu (1xx-5xx: %llu %llu %llu %llu %llu), no "
	    "answer %llu, reconnects %llu (server closed %llu idle, %llu after an answer); tool "
	    "CPU "
	    "%.0f %%; frames %llu, rx %.1f MB, error frames %llu, stamps of another "
	    "campaign %llu, too old %llu; screen samples %llu",
	    n_gifts, (unsigned long long)st_202, (unsigned long long)st_other,
	    (unsigned long long)st_codes[1], (unsigned long long)st_codes[2],
	    (unsigned long long)st_codes[3], (unsigned long long)st_codes[4],
	    (unsigned long long)st_codes[5], (unsigned long long)st_noanswer,
	    (unsigned long long)reconnects, (unsigned long long)pub_closed_idle,
	    (unsigned long long)pub_closed_answer, tool_pct, (unsigned long long)frames,
	    (double)rx_bytes / 1e6, (unsigned long long)error_frames,
	    (unsigned long long)foreign_stamps, (unsigned long long)old_stamps,
	    (unsigned long long)lat_screen.count);
	say("screen p50/p99 ms by frame: donation events %.1f / %.1f (%llu), states %.1f / %.1f "
	    "(%llu)",
	    hist_q(&lat_event, 0.5), hist_q(&lat_event, 0.99), (unsigned long long)lat_event.count,
	    hist_q(&lat_state, 0.5), hist_q(&lat_state, 0.99), (unsigned long long)lat_state.count);
	if (o.result && (rf = fopen(o.result, "w"))) {
		fprintf(rf,
		        "viewers=%d\nready=%llu\nlost=%llu\nsent=%zu\naccepted=%llu\naccepted_per_"
		        "s=%.0f\n"
		        "other=%llu\nnoanswer=%llu\npost_p50_ms=%.2f\npost_p99_ms=%.2f\n"
		        "screen_p50_ms=%.2f\nscreen_p99_ms=%.2f\nscreen_max_ms=%.2f\nscreen_"
		        "samples=%llu\n"
		        "fps_max=%llu\nfps_p99=%.0f\nexact=%zu\nlive=%zu\nrss_mb=%.1f\nkib_per_"
		        "viewer=%.2f\n"
		        "cpu_pct=%.1f\nrx_mb=%.1f\nframes=%llu\ntool_cpu_pct=%.0f\n",
		        o.subs, (unsigned long long)subs_ready, (unsigned long long)subs_dead,
		        n_gifts, (unsigned long long)st_202, (double)st_202 / load_s,
		        (unsigned long long)st_other, (unsigned long long)st_noanswer,
		        hist_q(&lat_post, 0.5), hist_q(&lat_post, 0.99), hist_q(&lat_screen, 0.5),
		        hist_q(&lat_screen, 0.99), (double)lat_screen.max_us / 1000.0,
		        (unsigned long long)lat_screen.count, (unsigned long long)fps_max, fps_p99,
		        exact, live, (double)p1.rss_kb / 1024.0, kib_sub, cpu_pct,
		        (double)rx_bytes / 1e6, (unsigned long long)frames, tool_pct);
		fclose(rf);
	}
	return 0;
}
