/* ws/acceptor.c - the listening socket, and which loop serves a connection.
 *
 * DESIGN: tally serves the API and /live on one port but in two
 * libwebsockets contexts, each with its own service thread, so a flood of
 * viewers never waits in the loop that answers a donor. This thread owns
 * the listening socket: it accepts, waits (epoll) for the first bytes of
 * the request, looks at them without reading them (MSG_PEEK) and hands the
 * socket to the loop that serves its path, "GET /live" to the live loop
 * and everything else to the API loop, once the whole request head (up to
 * the blank line) is there: a client that trickles its headers (slowloris)
 * waits here, where it costs a descriptor and a slot, not in a loop that
 * keeps a header table for it. Each loop adopts the socket on its own
 * thread (lws_adopt_socket_vhost); the bytes are still in the kernel, so it
 * parses the request as if it had accepted it. Connections wait here at
 * most head_ms (then 408), at most per_address from one client address
 * (then 429; loopback exempt unless limit_loopback) and at most PENDING_MAX
 * at once (the oldest goes first). When the process runs out of
 * descriptors, a spare one is closed to accept and drop the connection at
 * once, so accept() never spins.
 * With TLS (cfg.take), the path cannot be read before the handshake: each
 * connection goes at once to the TLS front (ws/tls.c), which comes back
 * after the handshake with the plaintext end of a socket pair and the
 * client's address (acceptor_pass, through a queue and an eventfd); from
 * there the plaintext waits and is routed as above, counted against the
 * client's address, and the loop is told that address with the hand-over.
 */
#include "ws/acceptor.h"
#include "ws/addrcount.h"
#include "ws/proxy.h"
#include "ws/wsproto.h"
#include "base/log.h"
#include "base/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define PENDING_MAX 4096 /* connections waiting for their request head */
#define HEAD_PEEK 8192   /* a head longer than this goes on (the loop answers 431) */
#define ADDR_SLOTS 8192  /* addresses waiting at once that are counted */

struct pending_conn {
	int fd;
	int64_t deadline_ms;
	char ip[ADDRCOUNT_IP_SIZE];   /* counted against this address; "" = not */
	char peer[ADDRCOUNT_IP_SIZE]; /* the client's address when fd is not its
	                               * socket (TLS); "" = the socket's own */
};

/* A connection passed by the TLS front (acceptor_pass). */
struct passed_conn {
	struct passed_conn *next;
	int fd;
	char peer[ADDRCOUNT_IP_SIZE];
};

struct acceptor {
	struct acceptor_config cfg;
	int lfd;   /* listening socket */
	int efd;   /* eventfd: stop */
	int epfd;  /* epoll */
	int spare; /* a descriptor kept to give back when out of them */
	int pfd;   /* eventfd: connections passed (TLS only, else -1) */
	int port;
	pthread_t thread;
	int started;
	atomic_int stopping;
	/* Acceptor thread only. */
	struct pending_conn pending[PENDING_MAX];
	int n_pending;
	int *slot_of;   /* by descriptor: index in pending + 1, 0 = none */
	size_t n_slots; /* descriptors slot_of covers */
	struct addrcount *addrs;
	char *peek; /* HEAD_PEEK bytes */
	int64_t last_emfile_log_ms;
	/* Passed connections (TLS): plock guards the list and pclosed;
	 * nothing is taken inside it. */
	pthread_mutex_t plock;
	int plock_ready;
	struct passed_conn *phead, *ptail;
	int pclosed; /* stopping: nothing more is passed */
	/* Counters (atomics: read from any thread). */
	atomic_ullong accepted, api, live, refused_full, timed_out, dropped, refused_address;
};

static int fail_errno(char *err, size_t errcap, const char *what)
{
	int rc = -errno;

	snprintf(err, errcap, "%s: %s", what, strerror(errno));
	return rc;
}

static int listen_on(struct acceptor *a, char *err, size_t errcap)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, fd;

	memset(&ss, 0, sizeof(ss));
	if (strchr(a->cfg.addr, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)a->cfg.port);
		if (inet_pton(AF_INET6, a->cfg.addr, &s6->sin6_addr) != 1)
			goto bad_addr;
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)a->cfg.port);
		if (inet_pton(AF_INET, a->cfg.addr, &s4->sin_addr) != 1)
			goto bad_addr;
		sl = sizeof(*s4);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail_errno(err, errcap, "socket");
	a->lfd = fd;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		return fail_errno(err, errcap, "SO_REUSEADDR");
	if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, SOMAXCONN)) {
		int rc = -errno;

		snprintf(err, errcap, "cannot listen on %s:%d: %s", a->cfg.addr, a->cfg.port,
		         strerror(errno));
		return rc;
	}
	sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl))
		return fail_errno(err, errcap, "getsockname");
	a->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                         : ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
bad_addr:
	snprintf(err, errcap, "%s is not an IP address", a->cfg.addr);
	return -EINVAL;
}

int acceptor_new(const struct acceptor_config *cfg, struct acceptor **out, char *err, size_t errcap)
{
	struct acceptor *a = calloc(1, sizeof(*a));
	struct epoll_event ev = {.events = EPOLLIN};
	struct rlimit rl;
	int rc;

	*out = NULL;
	if (!a)
		return -ENOMEM;
	a->cfg = *cfg;
	if (a->cfg.head_ms <= 0)
		a->cfg.head_ms = 5000;
	if (a->cfg.per_address <= 0)
		a->cfg.per_address = 64;
	a->lfd = a->efd = a->epfd = a->spare = a->pfd = -1;
	a->n_slots = getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY ||
	                     rl.rlim_cur > (1u << 20)
	                 ? (1u << 20)
	                 : (size_t)rl.rlim_cur;
	a->slot_of = calloc(a->n_slots, sizeof(*a->slot_of));
	a->peek = malloc(HEAD_PEEK);
	if (!a->slot_of || !a->peek || addrcount_new(ADDR_SLOTS, &a->addrs)) {
		snprintf(err, errcap, "out of memory");
		rc = -ENOMEM;
		goto fail;
	}
	rc = listen_on(a, err, errcap);
	if (rc)
		goto fail;
	a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	a->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (a->efd < 0 || a->epfd < 0 || a->spare < 0) {
		rc = fail_errno(err, errcap, "acceptor set-up");
		goto fail;
	}
	ev.data.fd = a->lfd;
	if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->lfd, &ev)) {
		rc = fail_errno(err, errcap, "epoll_ctl");
		goto fail;
	}
	ev.data.fd = a->efd;
	if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->efd, &ev)) {
		rc = fail_errno(err, errcap, "epoll_ctl");
		goto fail;
	}
	if (a->cfg.take) {
		if (pthread_mutex_init(&a->plock, NULL)) {
			snprintf(err, errcap, "acceptor set-up: no mutex");
			rc = -ENOMEM;
			goto fail;
		}
		a->plock_ready = 1;
		a->pfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (a->pfd < 0) {
			rc = fail_errno(err, errcap, "acceptor set-up");
			goto fail;
		}
		ev.data.fd = a->pfd;
		if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->pfd, &ev)) {
			rc = fail_errno(err, errcap, "epoll_ctl");
			goto fail;
		}
	}
	*out = a;
	return 0;
fail:
	acceptor_free(a);
	return rc;
}

int acceptor_port(const struct acceptor *a)
{
	return a->port;
}

/* Take pending[i] off the list (not out of the epoll set); its address
 * is no longer counted. Returns its descriptor. */
static int unlist(struct acceptor *a, int i)
{
	struct pending_conn *pc = &a->pending[i];
	int fd = pc->fd;

	if (pc->ip[0])
		addrcount_remove(a->addrs, pc->ip);
	a->slot_of[fd] = 0;
	*pc = a->pending[--a->n_pending];
	if (i < a->n_pending)
		a->slot_of[pc->fd] = i + 1;
	return fd;
}

static int find_pending(const struct acceptor *a, int fd)
{
	return fd >= 0 && (size_t)fd < a->n_slots ? a->slot_of[fd] - 1 : -1;
}

/* Answer status as JSON, best effort (the socket may not take it), and
 * close: a client that is turned away learns why. retry_after: seconds,
 * 0 for none. */
static void answer_close(int fd, const char *status, const char *code, const char *msg,
                         int retry_after)
{
	char body[256], retry[32] = "", head[512];
	int bl = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
	                  code, msg),
	    hl;

	if (retry_after > 0)
		snprintf(retry, sizeof(retry), "Retry-After: %d\r\n", retry_after);
	hl = snprintf(head, sizeof(head),
	              "HTTP/1.1 %s\r\nContent-Type: application/json\r\n%s"
	              "Connection: close\r\nContent-Length: %d\r\n\r\n%s",
	              status, retry, bl, body);
	if (hl > 0 && hl < (int)sizeof(head) &&
	    send(fd, head, (size_t)hl, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN)
		log_msg(LOG_DEBUG, "acceptor.answer_failed", "%s", strerror(errno));
	close(fd);
}

/* A waiting connection that took too long or made room for a newer one:
 * 408, and it goes (closing also takes it out of the epoll set). */
static void time_out(struct acceptor *a, int i)
{
	atomic_fetch_add(&a->timed_out, 1);
	answer_close(unlist(a, i), "408 Request Timeout", "request_timeout",
	             "the request head did not arrive in time", 0);
}

/* 1 when head[0..n) holds a whole request head (up to a blank line). */
static int head_complete(const char *head, size_t n)
{
	return memmem(head, n, "\r\n\r\n", 4) || memmem(head, n, "\n\n", 2);
}

enum acceptor_route acceptor_route_of(const char *head, size_t n)
{
	return wsproto_gets(head, n, "/live") || wsproto_gets(head, n, "/live/console") ? ROUTE_LIVE
	                                                                                : ROUTE_API;
}

/* Route fd by its request head; peer as for cfg.hand. Returns 1 when
 * handed over or closed, 0 when more bytes are needed. */
static int classify(struct acceptor *a, int fd, const char *peer)
{
	char *head = a->peek;
	ssize_t n = recv(fd, head, HEAD_PEEK, MSG_PEEK | MSG_DONTWAIT);
	enum acceptor_route route;
	int console;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		close(fd); /* closed or reset before a request */
		return 1;
	}
	if (n < HEAD_PEEK && !head_complete(head, (size_t)n))
		return 0;
	route = acceptor_route_of(head, (size_t)n);
	/* A staff console is never refused for the viewers' crowd: it is
	 * how on-call sees the crowd. */
	console = wsproto_gets(head, (size_t)n, "/live/console");
	if (route == ROUTE_LIVE && !console && a->cfg.live_full && a->cfg.live_full(a->cfg.ctx)) {
		atomic_fetch_add(&a->refused_full, 1);
		answer_close(fd, "503 Service Unavailable", "live_full",
		             "too many viewers; retry shortly", 5);
		return 1;
	}
	if (a->cfg.hand(a->cfg.ctx, fd, route, peer)) {
		atomic_fetch_add(&a->dropped, 1);
		close(fd);
		return 1;
	}
	atomic_fetch_add(route == ROUTE_LIVE ? &a->live : &a->api, 1);
	return 1;
}

/* Out of descriptors: give the spare back, take the connection and close
 * it, so the kernel queue does not keep waking us. */
static void shed(struct acceptor *a)
{
	int64_t now = util_now_ms();
	int fd;

	if (a->spare >= 0)
		close(a->spare);
	fd = accept4(a->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		atomic_fetch_add(&a->dropped, 1);
	}
	a->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (now - a->last_emfile_log_ms > 1000) {
		a->last_emfile_log_ms = now;
		log_msg(LOG_WARN, "acceptor.out_of_files",
		        "no descriptor left: a new connection was closed at once");
	}
}

/* The address of ss as text into ip ("" when it has none). */
static void ip_of(const struct sockaddr_storage *ss, char ip[ADDRCOUNT_IP_SIZE])
{
	const void *addr = ss->ss_family == AF_INET6
	                       ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
	                       : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;

	if (!inet_ntop(ss->ss_family, addr, ip, ADDRCOUNT_IP_SIZE))
		ip[0] = '\0';
}

/* Count fd against its client's address ip (which stays set when
 * counted, else becomes ""). Returns 0, or -1 when the address has its
 * fill (fd is answered 429 and closed). */
static int count_address(struct acceptor *a, int fd, char ip[ADDRCOUNT_IP_SIZE])
{
	int rc;

	if (!ip[0])
		return 0;
	if ((util_is_loopback(ip) && !a->cfg.limit_loopback) ||
	    proxies_trusted(a->cfg.trusted, ip)) {
		ip[0] = '\0';
		return 0;
	}
	rc = addrcount_add(a->addrs, ip, a->cfg.per_address);
	if (rc == -EBUSY) {
		atomic_fetch_add(&a->refused_address, 1);
		answer_close(fd, "429 Too Many Requests", "too_many_connections",
		             "too many connections waiting from this address", 5);
		return -1;
	}
	if (rc)
		ip[0] = '\0'; /* -ENOSPC: too many addresses to count; not limited */
	return 0;
}

/* A connection to route: at once when its head is whole, else it waits
 * for the rest. Accepted: ss is its client's address (peer NULL); passed
 * by the TLS front: peer is (ss NULL). */
static void admit(struct acceptor *a, int fd, const struct sockaddr_storage *ss, const char *peer)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};
	struct pending_conn *pc;
	char ip[ADDRCOUNT_IP_SIZE];

	if ((size_t)fd >= a->n_slots) {
		atomic_fetch_add(&a->dropped, 1);
		close(fd);
		return;
	}
	if (classify(a, fd, peer))
		return;
	if (ss)
		ip_of(ss, ip);
	else
		snprintf(ip, sizeof(ip), "%s", peer);
	if (count_address(a, fd, ip))
		return;
	if (a->n_pending == PENDING_MAX) {
		/* Full of slow connections: the oldest goes. */
		int oldest = 0;

		for (int i = 1; i < a->n_pending; i++)
			if (a->pending[i].deadline_ms < a->pending[oldest].deadline_ms)
				oldest = i;
		time_out(a, oldest);
	}
	ev.data.fd = fd;
	if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		log_msg(LOG_WARN, "acceptor.epoll_failed", "%s", strerror(errno));
		if (ip[0])
			addrcount_remove(a->addrs, ip);
		close(fd);
		return;
	}
	pc = &a->pending[a->n_pending];
	*pc = (struct pending_conn){.fd = fd, .deadline_ms = util_now_ms() + a->cfg.head_ms};
	memcpy(pc->ip, ip, sizeof(pc->ip));
	snprintf(pc->peer, sizeof(pc->peer), "%s", peer ? peer : "");
	a->slot_of[fd] = ++a->n_pending;
}

static void accept_all(struct acceptor *a)
{
	for (int round = 0; round < 256; round++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char ip[ADDRCOUNT_IP_SIZE];
		int one = 1,
		    fd = accept4(a->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				shed(a);
			else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_msg(LOG_WARN, "acceptor.accept_failed", "%s", strerror(errno));
			if (errno != EINTR && errno != ECONNABORTED)
				return;
			continue;
		}
		atomic_fetch_add(&a->accepted, 1);
		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
			log_msg(LOG_DEBUG, "acceptor.nodelay_failed", "%s", strerror(errno));
		if (a->cfg.take) {
			/* TLS: the front does the handshake, then passes it back. */
			ip_of(&ss, ip);
			if (a->cfg.take(a->cfg.ctx, fd, ip)) {
				atomic_fetch_add(&a->dropped, 1);
				close(fd);
			}
			continue;
		}
		admit(a, fd, &ss, NULL);
	}
}

/* Route the connections the TLS front passed. */
static void take_passed(struct acceptor *a)
{
	struct passed_conn *pc;
	uint64_t v;

	if (read(a->pfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_msg(LOG_DEBUG, "acceptor.wake_read_failed", "%s", strerror(errno));
	pthread_mutex_lock(&a->plock);
	pc = a->phead;
	a->phead = a->ptail = NULL;
	pthread_mutex_unlock(&a->plock);
	while (pc) {
		struct passed_conn *next = pc->next;

		admit(a, pc->fd, NULL, pc->peer);
		free(pc);
		pc = next;
	}
}

int acceptor_pass(struct acceptor *a, int fd, const char *peer)
{
	struct passed_conn *pc = malloc(sizeof(*pc));
	uint64_t one = 1;
	int wake;

	if (!pc)
		return -ENOMEM;
	pc->next = NULL;
	pc->fd = fd;
	snprintf(pc->peer, sizeof(pc->peer), "%s", peer ? peer : "");
	pthread_mutex_lock(&a->plock);
	if (a->pclosed) {
		pthread_mutex_unlock(&a->plock);
		free(pc);
		return -ESHUTDOWN;
	}
	wake = !a->phead;
	if (a->ptail)
		a->ptail->next = pc;
	else
		a->phead = pc;
	a->ptail = pc;
	pthread_mutex_unlock(&a->plock);
	if (wake && write(a->pfd, &one, sizeof(one)) != sizeof(one))
		log_msg(LOG_WARN, "acceptor.wake_failed", "%s", strerror(errno));
	return 0;
}

/* Stopping: nothing more is passed; close what was. */
static void close_passed(struct acceptor *a)
{
	struct passed_conn *pc;

	if (!a->plock_ready)
		return;
	pthread_mutex_lock(&a->plock);
	a->pclosed = 1;
	pc = a->phead;
	a->phead = a->ptail = NULL;
	pthread_mutex_unlock(&a->plock);
	while (pc) {
		struct passed_conn *next = pc->next;

		close(pc->fd);
		free(pc);
		pc = next;
	}
}

static void expire(struct acceptor *a)
{
	int64_t now = util_now_ms();

	for (int i = 0; i < a->n_pending;) {
		if (a->pending[i].deadline_ms > now) {
			i++;
			continue;
		}
		time_out(a, i);
	}
}

static void *acceptor_main(void *arg)
{
	struct acceptor *a = arg;
	struct epoll_event evs[64];
	int named = util_thread_name("acceptor");

	if (named)
		log_msg(LOG_WARN, "thread.name_failed", "%s", strerror(-named));

	while (!atomic_load(&a->stopping)) {
		int n = epoll_wait(a->epfd, evs, 64, a->n_pending ? 250 : 1000);

		if (n < 0 && errno != EINTR) {
			log_msg(LOG_ERROR, "acceptor.epoll_failed", "%s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd, k;

			if (fd == a->lfd) {
				accept_all(a);
			} else if (fd == a->pfd) {
				take_passed(a);
			} else if (fd != a->efd && (k = find_pending(a, fd)) >= 0) {
				/* Out of the epoll set before the hand-over: the
				 * loop that adopts it must be its only watcher. So
				 * it leaves the set only once its head is whole. */
				ssize_t got = recv(fd, a->peek, HEAD_PEEK, MSG_PEEK | MSG_DONTWAIT);
				char peer[ADDRCOUNT_IP_SIZE];

				if (got > 0 && got < HEAD_PEEK &&
				    !head_complete(a->peek, (size_t)got))
					continue; /* more to come */
				if (got < 0 && (errno == EAGAIN || errno == EINTR))
					continue;
				if (epoll_ctl(a->epfd, EPOLL_CTL_DEL, fd, NULL))
					log_msg(LOG_WARN, "acceptor.epoll_failed", "%s",
					        strerror(errno));
				memcpy(peer, a->pending[k].peer, sizeof(peer));
				unlist(a, k);
				/* cannot fail to route: the head is whole */
				if (!classify(a, fd, peer[0] ? peer : NULL))
					close(fd);
			}
		}
		expire(a);
	}
	while (a->n_pending)
		close(unlist(a, 0));
	return NULL;
}

int acceptor_start(struct acceptor *a)
{
	int rc = pthread_create(&a->thread, NULL, acceptor_main, a);

	if (rc)
		return -rc;
	a->started = 1;
	return 0;
}

void acceptor_stop(struct acceptor *a)
{
	uint64_t one = 1;

	if (!a)
		return;
	atomic_store(&a->stopping, 1);
	close_passed(a); /* the TLS front closes what it would pass */
	if (a->started) {
		if (write(a->efd, &one, sizeof(one)) != sizeof(one))
			log_msg(LOG_WARN, "acceptor.wake_failed", "%s", strerror(errno));
		if (pthread_join(a->thread, NULL))
			log_msg(LOG_ERROR, "acceptor.join_failed", "the acceptor did not join");
		a->started = 0;
	}
	if (a->lfd >= 0)
		close(a->lfd);
	a->lfd = -1;
	close_passed(a); /* passed while the thread ended */
}

void acceptor_get_stats(struct acceptor *a, struct acceptor_stats *out)
{
	out->accepted = atomic_load(&a->accepted);
	out->api = atomic_load(&a->api);
	out->live = atomic_load(&a->live);
	out->refused_full = atomic_load(&a->refused_full);
	out->timed_out = atomic_load(&a->timed_out);
	out->dropped = atomic_load(&a->dropped);
	out->refused_address = atomic_load(&a->refused_address);
}

void acceptor_free(struct acceptor *a)
{
	if (!a)
		return;
	acceptor_stop(a);
	while (a->n_pending)
		close(unlist(a, 0));
	if (a->epfd >= 0)
		close(a->epfd);
	if (a->efd >= 0)
		close(a->efd);
	if (a->spare >= 0)
		close(a->spare);
	if (a->pfd >= 0)
		close(a->pfd);
	if (a->plock_ready)
		pthread_mutex_destroy(&a->plock);
	addrcount_free(a->addrs);
	free(a->slot_of);
	free(a->peek);
	free(a);
}
