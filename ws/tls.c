/* ws/tls.c - the TLS front: handshakes and records, apart from the loops.
 *
 * DESIGN: with --tls-cert/--tls-key every connection the acceptor accepts
 * comes here at once (tls_take), since its request cannot be read before
 * the handshake. The front looks at the first byte: a TLS handshake
 * record (0x16) starts OpenSSL's handshake; anything else is plain HTTP
 * sent to the TLS port and gets a 400 "tls_required" in plain text, then
 * the connection closes. A handshake not done within handshake_ms is
 * closed, and at most per_address run at once from one client address
 * (loopback exempt unless limit_loopback), as the acceptor does for slow
 * heads. Once the handshake is done, the connection gets a socket pair:
 * the front keeps one end ("app") and passes the other, with the client's
 * address, to the acceptor (acceptor_pass), which routes it exactly as a
 * plain connection: it waits for the whole request head, answers 408, 429
 * or 503 itself, or hands it to the API loop or the live loop, which read
 * and write plaintext as on a TCP socket and take the client's address
 * from the hand-over (rate limit, connections per address, audit, logs).
 * The front then moves bytes both ways (ws/tls_pump.c: each direction
 * stops when its far side takes no more, so a slow reader's backlog stays
 * in the kernel and the loops see it as on TCP). When the loop closes its
 * end, the front sends what it wrote last, close_notify and a FIN, reads
 * and drops what the client still sends for up to TLS_LINGER_MS (so that
 * the last answer is not lost to a reset), and closes. When the loop
 * hangs up on a client that takes nothing (the live loop drops such a
 * viewer), the client has TLS_DRAIN_MS to take the rest.
 * Two threads share this, each with its epoll set, so that the two-loop
 * separation holds for the records too: "tls" (nice 0) does every
 * handshake and serves the API's connections; a connection whose first
 * bytes are GET /live (acceptor_route_of, the acceptor's own rule) moves,
 * with its SSL state, to "tls-live", at the live loop's nice (10), so that
 * encrypting viewers' frames never takes the CPU from donors. Threads
 * talk through an inbox (mutex + eventfd; wakeups coalesce, the whole
 * inbox is taken). Each connection costs three descriptors (the client's
 * socket and the pair) and, while idle, its SSL state (buffers released).
 * Epoll is level-triggered; a connection is stepped on any event of its
 * two sockets, does at most TLS_ROUNDS reads each way, then lets the
 * others go first (it is stepped again at once on the next turn).
 */
#include "ws/tls.h"
#include "ws/acceptor.h"
#include "ws/addrcount.h"
#include "ws/proxy.h"
#include "ws/tls_ctx.h"
#include "ws/tls_pump.h"
#include "base/log.h"
#include "base/util.h"
#include "base/watchdog.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define TLS_ROUNDS 32             /* reads each way per step, then the others' turn */
#define TLS_WAITING_MAX 4096      /* deadlines per thread (more: the oldest goes) */
#define TLS_ADDR_SLOTS 8192       /* addresses counted in their handshake at once */
#define TLS_LINGER_MS 1000        /* after close_notify: the client's last bytes */
#define TLS_LINGER_READS 8        /* reads per step while lingering */
#define TLS_PLAIN_MAX 8192        /* plain HTTP read (and dropped) before the 400 */
#define TLS_RECORD_HANDSHAKE 0x16 /* the first byte of a ClientHello */
#define TLS_EXPIRE_MS 100         /* deadlines are looked at this often */
#define TLS_DRAIN_MS                                                                               \
	10000                       /* the loop hung up: the client has this long to               \
	                             * take the rest */
#define TLS_LIVE_SNDBUF (64 * 1024) /* a viewer's socket buffer, as the live loop's */

enum lane_id { LANE_API, LANE_LIVE, LANES };

enum conn_state {
	S_SNIFF,     /* accepted: waiting for the first byte */
	S_HANDSHAKE, /* in OpenSSL's handshake */
	S_OPEN,      /* moving bytes between the client and the pair */
	S_LINGER,    /* close_notify and FIN sent: dropping the client's last bytes */
};

struct conn;

/* One of a connection's two sockets in the epoll set (its descriptor is
 * in the pump). */
struct end {
	struct conn *c;
	uint32_t events; /* in the thread's epoll set with these; 0: not in it */
};

struct conn {
	struct conn *prev, *next; /* the thread's connections */
	struct conn *link;        /* an inbox, or the dead list */
	struct conn *next_again;  /* the again list */
	struct conn *next_move;   /* the moving list */
	struct end net;           /* the client's socket: records */
	struct end app;           /* our end of the pair: plaintext */
	struct tls_pump pump;     /* the sockets (-1 when closed) and the SSL (NULL
	                           * before the first byte and once lingering) */
	enum conn_state state;
	int64_t deadline_ms;              /* S_SNIFF, S_HANDSHAKE, S_LINGER: then it goes */
	int wait_idx;                     /* in the thread's waiting array, -1: not */
	char peer[ADDRCOUNT_IP_SIZE];     /* the client's address, "" if unknown */
	char counted[ADDRCOUNT_IP_SIZE];  /* counted against (API thread), "" = not */
	char first[ACCEPTOR_ROUTE_BYTES]; /* the first plaintext bytes, for the route */
	size_t first_len;
	unsigned linked : 1, routed : 1, move : 1, moving : 1, again : 1, dead : 1, is_open : 1;
};

struct lane {
	struct tls *t;
	enum lane_id id;
	const char *name; /* thread and watchdog name */
	int epfd, evfd;   /* evfd: the inbox's wakeup, in the set with data NULL */
	pthread_t thread;
	int started, joined, lock_ready;
	pthread_mutex_t lock; /* guards inbox and closed; nothing is taken inside */
	struct conn *inbox, *inbox_tail;
	int closed;        /* the thread is gone: nothing more goes in */
	atomic_llong open; /* its connections past their handshake (any thread reads) */
	/* The lane's thread only: */
	struct conn *all;
	struct conn *again;  /* stepped again at once (stopped at TLS_ROUNDS) */
	struct conn *moving; /* to the live lane at the end of the turn */
	struct conn *dead;   /* freed at the end of the turn */
	struct conn **waiting;
	int n_waiting;
	int64_t next_expire_ms;
	int64_t last_nofile_log_ms;
	unsigned char *scratch; /* TLS_PUMP_CHUNK */
	struct watch *watch;
};

struct tls {
	struct tls_config cfg;
	SSL_CTX *ssl;
	struct lane lanes[LANES];
	struct addrcount *addrs; /* handshakes per address (API lane's thread) */
	int stop_called;         /* the caller of tls_stop */
	atomic_int stopping;
	atomic_llong stop_deadline_ms;
	atomic_ullong handshakes, failed, timed_out, plain_http, refused_address, out_of_files;
};

static void step(struct lane *l, struct conn *c);

/* OpenSSL's reason for its last error (for logs); empties the queue. */
static const char *ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r ? r : strerror(errno);
}

static void wake(struct lane *l)
{
	uint64_t one = 1;

	if (write(l->evfd, &one, sizeof(one)) != sizeof(one))
		log_msg(LOG_WARN, "tls.wake_failed", "the %s thread was not woken: %s", l->name,
		        strerror(errno));
}

/* Queue c for lane l's thread (any thread). Returns 0 or -ESHUTDOWN. */
static int lane_post(struct lane *l, struct conn *c)
{
	int first;

	c->link = NULL;
	pthread_mutex_lock(&l->lock);
	if (l->closed) {
		pthread_mutex_unlock(&l->lock);
		return -ESHUTDOWN;
	}
	first = !l->inbox;
	if (l->inbox_tail)
		l->inbox_tail->link = c;
	else
		l->inbox = c;
	l->inbox_tail = c;
	pthread_mutex_unlock(&l->lock);
	if (first)
		wake(l);
	return 0;
}

static int end_fd(const struct end *e)
{
	return e == &e->c->net ? e->c->pump.net : e->c->pump.app;
}

/* Put e in the epoll set with ev (0: out of it). Returns 0 or -1. */
static int set_events(struct lane *l, struct end *e, uint32_t ev)
{
	struct epoll_event ee = {.events = ev, .data.ptr = e};
	int op = !ev ? EPOLL_CTL_DEL : e->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

	if (ev == e->events || end_fd(e) < 0)
		return 0;
	if (epoll_ctl(l->epfd, op, end_fd(e), &ee)) {
		log_msg(LOG_WARN, "tls.epoll_failed", "%s", strerror(errno));
		return -1;
	}
	e->events = ev;
	return 0;
}

static void link_conn(struct lane *l, struct conn *c)
{
	c->prev = NULL;
	c->next = l->all;
	if (l->all)
		l->all->prev = c;
	l->all = c;
	c->linked = 1;
}

static void unlink_conn(struct lane *l, struct conn *c)
{
	if (!c->linked)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		l->all = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	c->linked = 0;
}

static void unwait(struct lane *l, struct conn *c)
{
	int i = c->wait_idx;

	if (i < 0)
		return;
	l->waiting[i] = l->waiting[--l->n_waiting];
	if (i < l->n_waiting)
		l->waiting[i]->wait_idx = i;
	c->wait_idx = -1;
}

static void uncount(struct tls *t, struct conn *c)
{
	if (!c->counted[0])
		return;
	addrcount_remove(t->addrs, c->counted);
	c->counted[0] = '\0';
}

/* Close c's sockets and free what it holds but the struct itself; l: the
 * lane it counts in while open. */
static void conn_release(struct lane *l, struct conn *c)
{
	if (c->is_open)
		atomic_fetch_sub(&l->open, 1);
	c->is_open = 0;
	SSL_free(c->pump.ssl);
	c->pump.ssl = NULL;
	if (c->pump.net >= 0)
		close(c->pump.net); /* also takes it out of the epoll set */
	if (c->pump.app >= 0)
		close(c->pump.app);
	c->pump.net = c->pump.app = -1;
	c->net.events = c->app.events = 0;
	tls_pump_fini(&c->pump);
}

/* A closed c goes to the dead list once no list of the turn holds it. */
static void bury(struct lane *l, struct conn *c)
{
	if (!c->dead || c->again || c->moving)
		return;
	c->link = l->dead;
	l->dead = c;
}

/* Close c now; it is freed at the end of the turn (events of this turn
 * may still name it), or once the again or moving list lets it go. */
static void conn_close(struct lane *l, struct conn *c)
{
	if (c->dead)
		return;
	c->dead = 1;
	unwait(l, c);
	uncount(l->t, c);
	unlink_conn(l, c);
	conn_release(l, c);
	bury(l, c);
}

static void free_dead(struct lane *l)
{
	while (l->dead) {
		struct conn *c = l->dead;

		l->dead = c->link;
		free(c);
	}
}

/* c goes at deadline_ms unless it is taken off the waiting array first. */
static void wait_until(struct lane *l, struct conn *c, int64_t deadline_ms)
{
	c->deadline_ms = deadline_ms;
	if (c->wait_idx >= 0)
		return;
	if (l->n_waiting == TLS_WAITING_MAX) {
		int oldest = 0;

		for (int i = 1; i < l->n_waiting; i++)
			if (l->waiting[i]->deadline_ms < l->waiting[oldest]->deadline_ms)
				oldest = i;
		if (l->waiting[oldest]->state == S_SNIFF ||
		    l->waiting[oldest]->state == S_HANDSHAKE)
			atomic_fetch_add(&l->t->timed_out, 1);
		conn_close(l, l->waiting[oldest]);
	}
	c->wait_idx = l->n_waiting;
	l->waiting[l->n_waiting++] = c;
}

/* Drop what the client still sends, then close: see TLS_LINGER_MS. */
static void linger(struct lane *l, struct conn *c)
{
	for (int i = 0; i < TLS_LINGER_READS; i++) {
		ssize_t n = recv(c->pump.net, l->scratch, TLS_PUMP_CHUNK, MSG_DONTWAIT);

		if (n > 0 || (n < 0 && errno == EINTR))
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		break; /* the client closed (or reset): done */
	}
	if (c->state == S_LINGER)
		conn_close(l, c);
}

/* Our side is said and done: FIN after it, then linger (or close at once
 * while tally stops). */
static void start_linger(struct lane *l, struct conn *c)
{
	if (c->pump.app >= 0) {
		close(c->pump.app);
		c->pump.app = -1;
		c->app.events = 0;
	}
	SSL_free(c->pump.ssl); /* its close_notify is sent */
	c->pump.ssl = NULL;
	tls_pump_fini(&c->pump);
	if (atomic_load(&l->t->stopping) || shutdown(c->pump.net, SHUT_WR) ||
	    set_events(l, &c->net, EPOLLIN)) {
		conn_close(l, c);
		return;
	}
	c->state = S_LINGER;
	wait_until(l, c, util_now_ms() + TLS_LINGER_MS);
}

/* Plain HTTP on the TLS port: say so in plain HTTP, then close. */
static void refuse_plain(struct lane *l, struct conn *c)
{
	static const char body[] =
	    "{\"error\":{\"code\":\"tls_required\",\"message\":\"this port speaks HTTPS only: "
	    "use https:// (and wss:// for /live)\"}}";
	char msg[512];
	int n = snprintf(msg, sizeof(msg),
	                 "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
	                 "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
	                 sizeof(body) - 1, body);
	size_t got = 0;

	atomic_fetch_add(&l->t->plain_http, 1);
	/* What it sent so far is read first: closing with unread bytes
	 * would reset the connection before the client reads the answer. */
	while (got < TLS_PLAIN_MAX) {
		ssize_t r = recv(c->pump.net, l->scratch, TLS_PUMP_CHUNK, MSG_DONTWAIT);

		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (n > 0 && (size_t)n < sizeof(msg) &&
	    send(c->pump.net, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_msg(LOG_DEBUG, "tls.answer_failed", "%s", strerror(errno));
	unwait(l, c);
	uncount(l->t, c);
	start_linger(l, c);
}

/* The handshake is done: the socket pair, and the plaintext end to the
 * acceptor. */
static void opened(struct lane *l, struct conn *c)
{
	struct tls *t = l->t;
	int sv[2];

	unwait(l, c);
	uncount(t, c);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv)) {
		int64_t now = util_now_ms();

		if (errno == EMFILE || errno == ENFILE) {
			atomic_fetch_add(&t->out_of_files, 1);
			if (now - l->last_nofile_log_ms > 1000) {
				l->last_nofile_log_ms = now;
				log_msg(LOG_WARN, "tls.out_of_files",
				        "no descriptor left for a TLS connection: closed");
			}
		} else {
			log_msg(LOG_WARN, "tls.socketpair_failed", "%s", strerror(errno));
		}
		conn_close(l, c);
		return;
	}
	c->pump.app = sv[0];
	c->pump.rd_want = TLS_WANT_IN;
	c->pump.wr_want = TLS_WANT_OUT;
	c->state = S_OPEN;
	c->is_open = 1;
	atomic_fetch_add(&t->handshakes, 1);
	atomic_fetch_add(&l->open, 1);
	if (t->cfg.pass(t->cfg.ctx, sv[1], c->peer)) {
		close(sv[1]);
		conn_close(l, c);
		return;
	}
	step(l, c); /* the request may be in OpenSSL's buffer already */
}

static void handshake(struct lane *l, struct conn *c)
{
	int r, e;

	ERR_clear_error();
	r = SSL_accept(c->pump.ssl);
	if (r == 1) {
		opened(l, c);
		return;
	}
	e = SSL_get_error(c->pump.ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		ERR_clear_error();
		if (set_events(l, &c->net, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT))
			conn_close(l, c);
		return;
	}
	atomic_fetch_add(&l->t->failed, 1);
	log_msg(LOG_DEBUG, "tls.handshake_failed", "%s: %s", c->peer, ssl_reason());
	conn_close(l, c);
}

/* The first byte says TLS or not. */
static void sniff(struct lane *l, struct conn *c)
{
	unsigned char b;
	ssize_t n = recv(c->pump.net, &b, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(l, c); /* gone before a byte */
		return;
	}
	if (b != TLS_RECORD_HANDSHAKE) {
		refuse_plain(l, c);
		return;
	}
	ERR_clear_error();
	c->pump.ssl = SSL_new(l->t->ssl);
	if (!c->pump.ssl || SSL_set_fd(c->pump.ssl, c->pump.net) != 1) {
		log_msg(LOG_WARN, "tls.setup_failed", "%s", ssl_reason());
		conn_close(l, c);
		return;
	}
	SSL_set_accept_state(c->pump.ssl);
	c->state = S_HANDSHAKE;
	handshake(l, c);
}

/* The first plaintext bytes: which thread serves the connection. */
static void note_first(struct lane *l, struct conn *c, const unsigned char *p, size_t n)
{
	size_t take = sizeof(c->first) - c->first_len;

	if (take > n)
		take = n;
	memcpy(c->first + c->first_len, p, take);
	c->first_len += take;
	if (c->first_len < sizeof(c->first))
		return;
	c->routed = 1;
	c->move = l->id == LANE_API && acceptor_route_of(c->first, c->first_len) == ROUTE_LIVE;
}

/* What each socket waits for now. Returns 0 or -1. */
static int rearm(struct lane *l, struct conn *c)
{
	uint32_t ne, ae;

	tls_pump_events(&c->pump, &ne, &ae);
	if (c->pump.app_hup && c->wait_idx < 0) /* e.g. it dropped a reader that takes nothing */
		wait_until(l, c, util_now_ms() + TLS_DRAIN_MS);
	return set_events(l, &c->net, ne) || set_events(l, &c->app, ae) ? -1 : 0;
}

static void serve(struct lane *l, struct conn *c)
{
	int rounds;

	for (rounds = 0; rounds < TLS_ROUNDS; rounds++) {
		size_t fresh;
		int in = tls_pump_in(&c->pump, l->scratch, &fresh), out;

		if (fresh && !c->routed)
			note_first(l, c, l->scratch, fresh);
		out = in < 0 ? -1 : tls_pump_out(&c->pump, l->scratch);
		if (in < 0 || out < 0) {
			conn_close(l, c);
			return;
		}
		if (c->pump.shut) {
			start_linger(l, c);
			return;
		}
		if (!in && !out)
			break;
	}
	if (rounds == TLS_ROUNDS && !c->again) {
		c->again = 1;
		c->next_again = l->again;
		l->again = c;
	}
	if (rearm(l, c)) {
		conn_close(l, c);
		return;
	}
	if (c->move && !c->moving) {
		c->moving = 1;
		c->next_move = l->moving;
		l->moving = c;
	}
}

static void step(struct lane *l, struct conn *c)
{
	switch (c->state) {
	case S_SNIFF:
		sniff(l, c);
		break;
	case S_HANDSHAKE:
		handshake(l, c);
		break;
	case S_OPEN:
		serve(l, c);
		break;
	case S_LINGER:
		linger(l, c);
		break;
	}
}

/* Count a new connection against its address. Returns 0, or -1 when the
 * address has its fill. */
static int count(struct tls *t, struct conn *c)
{
	int rc;

	if (!c->peer[0] || (util_is_loopback(c->peer) && !t->cfg.limit_loopback) ||
	    proxies_trusted(t->cfg.trusted, c->peer))
		return 0;
	rc = addrcount_add(t->addrs, c->peer, t->cfg.per_address);
	if (rc == -EBUSY)
		return -1;
	if (rc == 0)
		memcpy(c->counted, c->peer, sizeof(c->counted));
	return 0; /* -ENOSPC: too many addresses to count; not limited */
}

static void adopt(struct lane *l, struct conn *c)
{
	struct tls *t = l->t;

	link_conn(l, c);
	if (c->state != S_SNIFF) {
		int size = TLS_LIVE_SNDBUF;

		if (c->is_open)
			atomic_fetch_add(&l->open, 1);
		/* A viewer that stops reading holds little kernel memory, and
		 * the live loop notices it as soon as on TCP. */
		if (setsockopt(c->pump.net, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)))
			log_msg(LOG_DEBUG, "tls.sndbuf_failed", "%s", strerror(errno));
		step(l, c); /* moved here: OpenSSL may hold bytes already */
		return;
	}
	if (atomic_load(&t->stopping)) {
		conn_close(l, c);
		return;
	}
	if (count(t, c)) {
		atomic_fetch_add(&t->refused_address, 1);
		conn_close(l, c);
		return;
	}
	wait_until(l, c, util_now_ms() + t->cfg.handshake_ms);
	if (set_events(l, &c->net, EPOLLIN))
		conn_close(l, c);
}

static void take_inbox(struct lane *l)
{
	struct conn *c;
	uint64_t v;

	if (read(l->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_msg(LOG_DEBUG, "tls.wake_read_failed", "%s", strerror(errno));
	pthread_mutex_lock(&l->lock);
	c = l->inbox;
	l->inbox = l->inbox_tail = NULL;
	pthread_mutex_unlock(&l->lock);
	while (c) {
		struct conn *next = c->link;

		c->link = NULL;
		adopt(l, c);
		c = next;
	}
}

static void run_again(struct lane *l)
{
	struct conn *c = l->again;

	l->again = NULL;
	while (c) {
		struct conn *next = c->next_again;

		c->again = 0;
		if (c->dead)
			bury(l, c);
		else
			step(l, c);
		c = next;
	}
}

static void expire(struct lane *l)
{
	int64_t now = util_now_ms();

	if (now < l->next_expire_ms)
		return;
	l->next_expire_ms = now + TLS_EXPIRE_MS;
	for (int i = 0; i < l->n_waiting;) {
		struct conn *c = l->waiting[i];

		if (c->deadline_ms > now) {
			i++;
			continue;
		}
		if (c->state == S_SNIFF || c->state == S_HANDSHAKE)
			atomic_fetch_add(&l->t->timed_out, 1);
		conn_close(l, c); /* the last one takes its place */
	}
}

/* Hand c, SSL state and all, to the live lane: off this thread's set
 * and list, into the live lane's inbox. */
static void move_one(struct lane *l, struct conn *c)
{
	c->move = 0;
	/* One that is closing, or has a deadline here, stays. */
	if (c->state != S_OPEN || c->wait_idx >= 0 || atomic_load(&l->t->stopping))
		return;
	if (set_events(l, &c->net, 0) || set_events(l, &c->app, 0)) {
		conn_close(l, c);
		return;
	}
	unlink_conn(l, c);
	atomic_fetch_sub(&l->open, 1);
	if (lane_post(&l->t->lanes[LANE_LIVE], c)) {
		atomic_fetch_add(&l->open, 1);
		link_conn(l, c);
		conn_close(l, c);
	}
}

/* The connections whose first bytes asked for /live go to the live lane. */
static void move_all(struct lane *l)
{
	struct conn *c = l->moving;

	l->moving = NULL;
	while (c) {
		struct conn *next = c->next_move;

		c->moving = 0;
		if (c->dead) {
			bury(l, c);
		} else if (c->again) { /* it moves once it has had its turn */
			c->moving = 1;
			c->next_move = l->moving;
			l->moving = c;
		} else {
			move_one(l, c);
		}
		c = next;
	}
}

/* While stopping: 1 when this thread is done (nothing open left, or past
 * the deadline). Connections not yet open go at once. */
static int lane_done(struct lane *l)
{
	struct tls *t = l->t;

	take_inbox(l);
	for (struct conn *c = l->all, *next; c; c = next) {
		next = c->next;
		if (c->state != S_OPEN)
			conn_close(l, c);
	}
	free_dead(l);
	return !l->all || util_now_ms() >= atomic_load(&t->stop_deadline_ms);
}

static void *lane_main(void *arg)
{
	struct lane *l = arg;
	struct tls *t = l->t;
	struct epoll_event evs[64];
	struct conn *c;
	int named = util_thread_name(l->name);

	if (named)
		log_msg(LOG_WARN, "thread.name_failed", "%s", strerror(-named));
	/* Linux keeps a nice value per thread. */
	if (l->id == LANE_LIVE && t->cfg.live_nice > 0 &&
	    setpriority(PRIO_PROCESS, (id_t)gettid(), t->cfg.live_nice))
		log_msg(LOG_WARN, "tls.nice_failed", "%s", strerror(errno));
	if (t->cfg.watchdog)
		l->watch = watchdog_join(t->cfg.watchdog, l->name);
	for (;;) {
		int stopping = atomic_load(&t->stopping), n;

		if (stopping && lane_done(l))
			break;
		n = epoll_wait(l->epfd, evs, 64,
		               l->again                     ? 0
		               : (l->n_waiting || stopping) ? TLS_EXPIRE_MS
		                                            : 1000);
		watch_beat(l->watch);
		if (n < 0 && errno != EINTR) {
			log_msg(LOG_ERROR, "tls.epoll_failed", "%s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			struct end *e = evs[i].data.ptr;

			if (!e) {
				take_inbox(l);
				continue;
			}
			if (e->c->dead)
				continue;
			if (e == &e->c->app && (evs[i].events & (EPOLLRDHUP | EPOLLHUP)) &&
			    e->c->pump.to_net.p)
				e->c->pump.app_hup = 1;
			step(l, e->c);
		}
		run_again(l);
		expire(l);
		move_all(l);
		free_dead(l);
	}
	pthread_mutex_lock(&l->lock);
	l->closed = 1;
	c = l->inbox;
	l->inbox = l->inbox_tail = NULL;
	pthread_mutex_unlock(&l->lock);
	while (c) {
		struct conn *next = c->link;

		link_conn(l, c);
		if (c->is_open)
			atomic_fetch_add(&l->open, 1); /* conn_close counts it out */
		conn_close(l, c);
		c = next;
	}
	while (l->all)
		conn_close(l, l->all);
	run_again(l); /* all closed: each is buried */
	move_all(l);
	free_dead(l);
	watch_leave(l->watch);
	return NULL;
}

int tls_new(const struct tls_config *cfg, struct tls **out, char *err, size_t errcap)
{
	struct tls *t = calloc(1, sizeof(*t));
	int rc;

	*out = NULL;
	if (!t)
		return -ENOMEM;
	t->cfg = *cfg;
	if (t->cfg.handshake_ms <= 0)
		t->cfg.handshake_ms = 5000;
	if (t->cfg.per_address <= 0)
		t->cfg.per_address = 64;
	t->ssl = tls_ctx_ssl(cfg->keys);
	for (int i = 0; i < LANES; i++) {
		struct lane *l = &t->lanes[i];

		l->t = t;
		l->id = (enum lane_id)i;
		l->name = i == LANE_API ? "tls" : "tls-live";
		l->epfd = l->evfd = -1;
	}
	if (addrcount_new(TLS_ADDR_SLOTS, &t->addrs)) {
		snprintf(err, errcap, "out of memory");
		rc = -ENOMEM;
		goto fail;
	}
	for (int i = 0; i < LANES; i++) {
		struct lane *l = &t->lanes[i];
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};

		if (pthread_mutex_init(&l->lock, NULL)) {
			snprintf(err, errcap, "TLS front: no mutex");
			rc = -ENOMEM;
			goto fail;
		}
		l->lock_ready = 1;
		l->waiting = calloc(TLS_WAITING_MAX, sizeof(*l->waiting));
		l->scratch = malloc(TLS_PUMP_CHUNK);
		if (!l->waiting || !l->scratch) {
			snprintf(err, errcap, "out of memory");
			rc = -ENOMEM;
			goto fail;
		}
		l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		l->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (l->evfd < 0 || l->epfd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &ev)) {
			rc = -errno;
			snprintf(err, errcap, "TLS front set-up: %s", strerror(errno));
			goto fail;
		}
	}
	*out = t;
	return 0;
fail:
	tls_free(t);
	return rc;
}

int tls_start(struct tls *t)
{
	for (int i = 0; i < LANES; i++) {
		int rc = pthread_create(&t->lanes[i].thread, NULL, lane_main, &t->lanes[i]);

		if (rc)
			return -rc;
		t->lanes[i].started = 1;
	}
	return 0;
}

int tls_take(struct tls *t, int fd, const char *peer)
{
	struct conn *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return -ENOMEM;
	c->net.c = c;
	c->app.c = c;
	c->pump.net = fd;
	c->pump.app = -1;
	c->wait_idx = -1;
	c->state = S_SNIFF;
	snprintf(c->peer, sizeof(c->peer), "%s", peer ? peer : "");
	rc = lane_post(&t->lanes[LANE_API], c);
	if (rc)
		free(c);
	return rc;
}

void tls_get_stats(struct tls *t, struct tls_stats *out)
{
	out->open_api = atomic_load(&t->lanes[LANE_API].open);
	out->open_live = atomic_load(&t->lanes[LANE_LIVE].open);
	out->handshakes = atomic_load(&t->handshakes);
	out->failed = atomic_load(&t->failed);
	out->timed_out = atomic_load(&t->timed_out);
	out->plain_http = atomic_load(&t->plain_http);
	out->refused_address = atomic_load(&t->refused_address);
	out->out_of_files = atomic_load(&t->out_of_files);
}

void tls_stop(struct tls *t, int grace_ms)
{
	if (!t)
		return;
	if (!t->stop_called) {
		t->stop_called = 1;
		atomic_store(&t->stop_deadline_ms, util_now_ms() + grace_ms);
		atomic_store(&t->stopping, 1);
		for (int i = 0; i < LANES; i++)
			if (t->lanes[i].started)
				wake(&t->lanes[i]);
	}
	for (int i = 0; i < LANES; i++) {
		struct lane *l = &t->lanes[i];

		if (l->started && !l->joined) {
			if (pthread_join(l->thread, NULL))
				log_msg(LOG_ERROR, "tls.join_failed", "the %s thread did not join",
				        l->name);
			l->joined = 1;
		}
	}
}

void tls_free(struct tls *t)
{
	if (!t)
		return;
	tls_stop(t, 0);
	for (int i = 0; i < LANES; i++) {
		struct lane *l = &t->lanes[i];

		/* A thread never started leaves its inbox here. */
		while (l->inbox) {
			struct conn *c = l->inbox;

			l->inbox = c->link;
			if (c->is_open)
				atomic_fetch_add(&l->open, 1); /* conn_release counts it out */
			conn_release(l, c);
			free(c);
		}
		if (l->epfd >= 0)
			close(l->epfd);
		if (l->evfd >= 0)
			close(l->evfd);
		if (l->lock_ready)
			pthread_mutex_destroy(&l->lock);
		free(l->waiting);
		free(l->scratch);
	}
	addrcount_free(t->addrs);
	free(t);
}
