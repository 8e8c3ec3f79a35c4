/* tests/bench/cardtest.c - the card-testing benchmark's load: a flood of
 * declined cards from many loopback aliases, mixed with real gifts from
 * other aliases, both open loop at fixed rates (tests/bench/cardtest
 * drives it).
 *
 * DESIGN: one thread, one epoll loop over nonblocking sockets; only libc.
 * Each side (flood, real) has its own source addresses (every connection
 * bind()s its alias before connect()) and its own rate. Attempt i of a
 * side is due at t0 + i / rate and goes to address i % addresses; it waits
 * in that address's queue for an idle keep-alive connection of the
 * address, or for a new one (at most --max-conns per address). A
 * connection the server closes is reopened; a request whose connection
 * died before any answer is sent again once. Attempt i carries its own
 * card and email (flood: tok_card_f<i>_declined, f<i>@flood.example, 100
 * cents or --flood-cents; real: tok_card_r<i>, r<i>@real.example, 2,500 cents), so the
 * database tells what became of each. Times: the request's first write
 * (send) and its answer's last byte (latency = answer - send).
 * After --seconds, nothing new is sent; the requests in flight get 10 s.
 * Output: key=value lines on stdout; --csv PREFIX writes PREFIX-flood.csv
 * and PREFIX-real.csv (index,send_ms,latency_us,status: send_ms from the
 * start, status 0 when no answer came, -1 when the connection failed).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RBUF_CAP 16384
#define WBUF_CAP 1024
#define MAX_EVENTS 256
#define DRAIN_S 10

enum side { FLOOD, REAL, SIDES };

struct attempt {
	int64_t send_ns; /* first write; 0: not sent */
	int64_t lat_ns;  /* answer read - send; 0: none */
	int16_t status;  /* 0: no answer, -1: failed */
	uint8_t tries;
};

struct conn {
	int fd;
	uint8_t side, connected, dead;
	int addr;    /* index into its side's addresses */
	int64_t att; /* in flight, -1: none */
	char wbuf[WBUF_CAP];
	size_t wlen, woff;
	char rbuf[RBUF_CAP];
	size_t rlen;
	struct conn *next_idle;
};

struct address {
	struct sockaddr_in sa;
	int conns;         /* open or opening */
	int opening;       /* connect() not yet done */
	struct conn *idle; /* connected, nothing in flight */
	int64_t *q;        /* waiting attempts (a ring) */
	size_t qcap, qhead, qlen;
};

struct side_state {
	const char *name, *net, *slug;
	int rate, naddr, first_host;
	long long cents;
	struct address *addrs;
	struct attempt *att;
	int64_t n, due; /* attempts allocated; attempts made due so far */
	int64_t reconnects, resends, connect_fail;
};

static struct {
	int port, seconds, max_conns;
	const char *csv;
} o = {.port = 0, .seconds = 10, .max_conns = 16};

static struct side_state sides[SIDES] = {
    {.name = "flood", .net = "127.0.1", .rate = 2000, .naddr = 200, .first_host = 1, .cents = 100},
    {.name = "real", .net = "127.0.2", .rate = 200, .naddr = 50, .first_host = 1, .cents = 2500},
};
static int ep;
static struct sockaddr_in server;
static int open_conns, max_open;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "cardtest: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void usage(void)
{
	fprintf(stderr, "usage: cardtest --port P [--seconds S] [--slug CAMPAIGN]\n"
	                "  [--flood-rate N] [--flood-addrs N] [--flood-cents N] [--real-rate N]\n"
	                "  [--real-addrs N]\n"
	                "  [--max-conns N (per address)] [--csv PREFIX]\n"
	                "  flood: 127.0.1.1.., real: 127.0.2.1..; a rate of 0 turns a side off\n");
	exit(2);
}

static int num(const char *s, int lo, int hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "cardtest: '%s' wants a number from %d to %d\n", s, lo, hi);
		exit(2);
	}
	return (int)v;
}

static void q_push(struct address *a, int64_t att, int front)
{
	if (a->qlen == a->qcap) {
		size_t cap = a->qcap ? a->qcap * 2 : 64;
		int64_t *q = malloc(cap * sizeof(*q));

		if (!q)
			die("malloc");
		for (size_t k = 0; k < a->qlen; k++)
			q[k] = a->q[(a->qhead + k) % a->qcap];
		free(a->q);
		a->q = q;
		a->qcap = cap;
		a->qhead = 0;
	}
	if (front) {
		a->qhead = (a->qhead + a->qcap - 1) % a->qcap;
		a->q[a->qhead] = att;
	} else {
		a->q[(a->qhead + a->qlen) % a->qcap] = att;
	}
	a->qlen++;
}

static int64_t q_pop(struct address *a)
{
	int64_t v = a->q[a->qhead];

	a->qhead = (a->qhead + 1) % a->qcap;
	a->qlen--;
	return v;
}

static void conn_open(struct side_state *s, int ai)
{
	struct address *a = &s->addrs[ai];
	struct conn *c = calloc(1, sizeof(*c));
	struct epoll_event ev;
	int one = 1;

	if (!c)
		die("calloc");
	c->side = (uint8_t)(s - sides);
	c->addr = ai;
	c->att = -1;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket");
	if (setsockopt(c->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		die("setsockopt");
	if (bind(c->fd, (struct sockaddr *)&a->sa, sizeof(a->sa)))
		die("bind (a 127/8 alias)");
	if (connect(c->fd, (struct sockaddr *)&server, sizeof(server)) && errno != EINPROGRESS) {
		s->connect_fail++;
		close(c->fd);
		free(c);
		return;
	}
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
	ev.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev))
		die("epoll_ctl");
	a->conns++;
	a->opening++;
	if (++open_conns > max_open)
		max_open = open_conns;
}

static void idle_remove(struct address *a, struct conn *c)
{
	for (struct conn **p = &a->idle; *p; p = &(*p)->next_idle)
		if (*p == c) {
			*p = c->next_idle;
			return;
		}
}

static void want_write(struct conn *c, int on)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0u),
	                         .data.ptr = c};

	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev))
		die("epoll_ctl");
}

static void flush(struct conn *c)
{
	while (c->woff < c->wlen) {
		ssize_t n = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);

		if (n < 0) {
			if (errno == EAGAIN)
				break;
			c->dead = 1;
			return;
		}
		c->woff += (size_t)n;
	}
	want_write(c, c->woff < c->wlen);
}

static void send_attempt(struct conn *c, int64_t i)
{
	struct side_state *s = &sides[c->side];
	char body[320];
	int n;

	if (c->side == FLOOD)
		n = snprintf(
		    body, sizeof(body),
		    "{\"amount_cents\":%lld,\"currency\":\"USD\",\"donor\":{\"name\":\"Card "
		    "Tester\",\"email\":\"f%lld@flood.example\"},\"payment_token\":"
		    "\"tok_card_f%lld_declined\"}",
		    s->cents, (long long)i, (long long)i);
	else
		n = snprintf(
		    body, sizeof(body),
		    "{\"amount_cents\":%lld,\"currency\":\"USD\",\"donor\":{\"name\":\"Real "
		    "Donor\",\"email\":\"r%lld@real.example\"},\"payment_token\":"
		    "\"tok_card_r%lld\"}",
		    s->cents, (long long)i, (long long)i);
	c->wlen = (size_t)snprintf(c->wbuf, sizeof(c->wbuf),
	                           "POST /api/v1/campaigns/%s/donations HTTP/1.1\r\nHost: "
	                           "127.0.0.1\r\nContent-Type: application/json\r\nUser-Agent: "
	                           "cardtest/1\r\nContent-Length: %d\r\n\r\n%s",
	                           s->slug, n, body);
	c->woff = 0;
	c->rlen = 0;
	c->att = i;
	s->att[i].tries++;
	s->att[i].send_ns = now_ns();
	flush(c);
}

/* Hand waiting attempts of address ai to its idle connections; open
 * connections for the rest, up to the bound. */
static void dispatch(struct side_state *s, int ai)
{
	struct address *a = &s->addrs[ai];

	while (a->qlen && a->idle) {
		struct conn *c = a->idle;

		a->idle = c->next_idle;
		send_attempt(c, q_pop(a));
	}
	while (a->qlen > (size_t)a->opening && a->conns < o.max_conns) {
		int before = a->conns;

		conn_open(s, ai);
		if (a->conns == before)
			break;
	}
}

static void conn_close(struct conn *c)
{
	struct side_state *s = &sides[c->side];
	struct address *a = &s->addrs[c->addr];

	idle_remove(a, c);
	if (!c->connected)
		a->opening--;
	if (c->att >= 0) {
		struct attempt *t = &s->att[c->att];

		if (c->rlen == 0 && t->tries < 2) {
			s->resends++;
			q_push(a, c->att, 1);
		} else {
			t->status = -1;
		}
	}
	if (epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL))
		die("epoll_ctl");
	close(c->fd);
	a->conns--;
	open_conns--;
	s->reconnects++;
	free(c);
	dispatch(s, (int)(a - s->addrs));
}

/* An answer complete in rbuf? Returns its length, 0 if not yet, -1 bad. */
static ssize_t answer_len(struct conn *c, int *status, int *close_after)
{
	char *end, *p;
	size_t head;
	long clen = 0;

	c->rbuf[c->rlen] = '\0';
	end = strstr(c->rbuf, "\r\n\r\n");
	if (!end)
		return c->rlen >= RBUF_CAP - 1 ? -1 : 0;
	head = (size_t)(end - c->rbuf) + 4;
	if (strncmp(c->rbuf, "HTTP/1.", 7) || c->rlen < 12)
		return -1;
	*status = atoi(c->rbuf + 9);
	*close_after = 0;
	for (p = c->rbuf; p && p < end; p = strstr(p, "\r\n")) {
		p += 2;
		if (!strncasecmp(p, "content-length:", 15))
			clen = strtol(p + 15, NULL, 10);
		else if (!strncasecmp(p, "connection:", 11) && strstr(p, "close") &&
		         strstr(p, "close") < strstr(p, "\r\n"))
			*close_after = 1;
	}
	if (clen < 0 || head + (size_t)clen >= RBUF_CAP)
		return -1;
	if (c->rlen < head + (size_t)clen)
		return 0;
	return (ssize_t)(head + (size_t)clen);
}

static void on_readable(struct conn *c)
{
	struct side_state *s = &sides[c->side];
	struct address *a = &s->addrs[c->addr];

	for (;;) {
		ssize_t n = read(c->fd, c->rbuf + c->rlen, RBUF_CAP - 1 - c->rlen);
		int status, close_after;
		ssize_t len;

		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			c->dead = 1;
			return;
		}
		c->rlen += (size_t)n;
		len = answer_len(c, &status, &close_after);
		if (len < 0) {
			c->dead = 1;
			return;
		}
		if (len == 0)
			continue;
		if (c->att >= 0) {
			struct attempt *t = &s->att[c->att];

			t->status = (int16_t)status;
			t->lat_ns = now_ns() - t->send_ns;
			c->att = -1;
		}
		memmove(c->rbuf, c->rbuf + len, c->rlen - (size_t)len);
		c->rlen -= (size_t)len;
		if (close_after) {
			c->dead = 1;
			return;
		}
		c->next_idle = a->idle;
		a->idle = c;
		dispatch(s, c->addr);
		if (c->att >= 0 || c->dead)
			return;
	}
}

static void on_event(struct conn *c, uint32_t ev)
{
	struct side_state *s = &sides[c->side];

	if (!c->connected && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
			s->connect_fail++;
			c->dead = 1;
		} else {
			c->connected = 1;
			s->addrs[c->addr].opening--;
			want_write(c, 0);
			c->next_idle = s->addrs[c->addr].idle;
			s->addrs[c->addr].idle = c;
			dispatch(s, c->addr);
		}
	} else if (c->connected) {
		if ((ev & EPOLLOUT) && c->att >= 0)
			flush(c);
		if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			on_readable(c);
	}
	if (c->dead)
		conn_close(c);
}

static int cmp64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;

	return (a > b) - (a < b);
}

static void write_csv(struct side_state *s, int64_t t0)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s-%s.csv", o.csv, s->name);
	f = fopen(path, "w");
	if (!f)
		die(path);
	for (int64_t i = 0; i < s->due; i++) {
		struct attempt *t = &s->att[i];

		fprintf(f, "%lld,%.3f,%lld,%d\n", (long long)i,
		        t->send_ns ? (double)(t->send_ns - t0) / 1e6 : -1.0,
		        (long long)(t->lat_ns / 1000), t->status);
	}
	if (fclose(f))
		die(path);
}

static void report(struct side_state *s, int64_t t0)
{
	int64_t n2 = 0, n429 = 0, n422 = 0, nother = 0, nnone = 0, nlat = 0;
	int64_t *lat = malloc((size_t)(s->due + 1) * sizeof(*lat));

	if (!lat)
		die("malloc");
	for (int64_t i = 0; i < s->due; i++) {
		struct attempt *t = &s->att[i];

		if (t->status == 202)
			n2++;
		else if (t->status == 429)
			n429++;
		else if (t->status == 422)
			n422++;
		else if (t->status <= 0)
			nnone++;
		else
			nother++;
		if (t->status > 0)
			lat[nlat++] = t->lat_ns;
	}
	qsort(lat, (size_t)nlat, sizeof(*lat), cmp64);
	printf("%s_attempts=%lld\n%s_202=%lld\n%s_429=%lld\n%s_422=%lld\n%s_other=%lld\n"
	       "%s_unanswered=%lld\n",
	       s->name, (long long)s->due, s->name, (long long)n2, s->name, (long long)n429,
	       s->name, (long long)n422, s->name, (long long)nother, s->name, (long long)nnone);
	printf("%s_p50_ms=%.2f\n%s_p99_ms=%.2f\n%s_max_ms=%.2f\n", s->name,
	       nlat ? (double)lat[(nlat - 1) / 2] / 1e6 : 0.0, s->name,
	       nlat ? (double)lat[(nlat * 99 - 1) / 100] / 1e6 : 0.0, s->name,
	       nlat ? (double)lat[nlat - 1] / 1e6 : 0.0);
	printf("%s_reconnects=%lld\n%s_resends=%lld\n%s_connect_fail=%lld\n", s->name,
	       (long long)s->reconnects, s->name, (long long)s->resends, s->name,
	       (long long)s->connect_fail);
	if (s - sides == FLOOD && s->due) {
		/* The first refusal (by send time), and the start of the
		 * first second of sends, from then on, of which 95 % were
		 * refused. */
		double first = -1, full = -1;
		int64_t hi = 0, refused = 0, sent = 0, last = 0, first_ns = INT64_MAX;

		for (int64_t i = 0; i < s->due; i++) {
			struct attempt *t = &s->att[i];

			if (t->send_ns > last)
				last = t->send_ns;
			if ((t->status == 429 || t->status == 422) && t->send_ns &&
			    t->send_ns < first_ns)
				first_ns = t->send_ns;
		}
		if (first_ns < INT64_MAX)
			first = (double)(first_ns - t0) / 1e9;
		for (int64_t i = 0; i < s->due && first >= 0; i++) {
			struct attempt *t = &s->att[i];
			int r = t->status == 429 || t->status == 422;

			if (!t->send_ns)
				continue;
			if (t->send_ns + 1000000000LL > last)
				break;
			/* the window [send i, send i + 1 s): attempts are sent
			 * nearly in index order; hi only moves forward */
			if (hi < i)
				hi = i, refused = 0, sent = 0;
			while (hi < s->due && s->att[hi].send_ns < t->send_ns + 1000000000LL) {
				if (s->att[hi].send_ns) {
					sent++;
					refused +=
					    s->att[hi].status == 429 || s->att[hi].status == 422;
				}
				hi++;
			}
			if (t->send_ns >= first_ns && sent && refused * 100 >= sent * 95) {
				full = (double)(t->send_ns - t0) / 1e9;
				break;
			}
			sent--;
			refused -= r;
		}
		printf("first_refusal_s=%.3f\nrefused95_s=%.3f\n", first, full);
	}
	free(lat);
}

int main(int argc, char **argv)
{
	struct epoll_event evs[MAX_EVENTS];
	struct rlimit rl;
	int64_t t0, end, drain_end, now;

	for (int i = 1; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage();
		if (!strcmp(k, "--port"))
			o.port = num(v, 1, 65535);
		else if (!strcmp(k, "--seconds"))
			o.seconds = num(v, 1, 3600);
		else if (!strcmp(k, "--slug"))
			sides[FLOOD].slug = sides[REAL].slug = v;
		else if (!strcmp(k, "--flood-rate"))
			sides[FLOOD].rate = num(v, 0, 100000);
		else if (!strcmp(k, "--flood-addrs"))
			sides[FLOOD].naddr = num(v, 1, 250);
		else if (!strcmp(k, "--flood-cents"))
			sides[FLOOD].cents = num(v, 1, 100000000);
		else if (!strcmp(k, "--real-rate"))
			sides[REAL].rate = num(v, 0, 100000);
		else if (!strcmp(k, "--real-addrs"))
			sides[REAL].naddr = num(v, 1, 250);
		else if (!strcmp(k, "--max-conns"))
			o.max_conns = num(v, 1, 1000);
		else if (!strcmp(k, "--csv"))
			o.csv = v;
		else
			usage();
		i++;
	}
	if (!o.port || !sides[FLOOD].slug)
		usage();
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			die("setrlimit");
	}
	signal(SIGPIPE, SIG_IGN);
	alarm((unsigned)(o.seconds + DRAIN_S + 30));
	server = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)o.port)};
	inet_pton(AF_INET, "127.0.0.1", &server.sin_addr);
	for (int k = 0; k < SIDES; k++) {
		struct side_state *s = &sides[k];

		s->n = (int64_t)s->rate * o.seconds + 1;
		s->att = calloc((size_t)s->n, sizeof(*s->att));
		s->addrs = calloc((size_t)s->naddr, sizeof(*s->addrs));
		if (!s->att || !s->addrs)
			die("calloc");
		for (int a = 0; a < s->naddr; a++) {
			char ip[32];

			snprintf(ip, sizeof(ip), "%s.%d", s->net, s->first_host + a);
			s->addrs[a].sa.sin_family = AF_INET;
			if (inet_pton(AF_INET, ip, &s->addrs[a].sa.sin_addr) != 1) {
				fprintf(stderr, "cardtest: bad address %s\n", ip);
				return 2;
			}
		}
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");
	t0 = now_ns();
	end = t0 + (int64_t)o.seconds * 1000000000LL;
	drain_end = end + (int64_t)DRAIN_S * 1000000000LL;
	for (;;) {
		int n, pending = 0;

		now = now_ns();
		for (int k = 0; k < SIDES; k++) {
			struct side_state *s = &sides[k];
			int64_t due = now >= end ? s->n - 1 : (now - t0) * s->rate / 1000000000LL;

			if (due > s->n - 1)
				due = s->n - 1;
			while (s->due < due) {
				int64_t i = s->due++;
				int ai = (int)(i % s->naddr);

				q_push(&s->addrs[ai], i, 0);
				dispatch(s, ai);
			}
		}
		if (now >= end) {
			for (int k = 0; k < SIDES && !pending; k++)
				for (int64_t i = 0; i < sides[k].due; i++)
					if (sides[k].att[i].status == 0) {
						pending = 1;
						break;
					}
			if (!pending || now >= drain_end)
				break;
		}
		n = epoll_wait(ep, evs, MAX_EVENTS, 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (int k = 0; k < n; k++)
			on_event(evs[k].data.ptr, evs[k].events);
	}
	printf("seconds=%d\nmax_conns_open=%d\n", o.seconds, max_open);
	for (int k = 0; k < SIDES; k++) {
		report(&sides[k], t0);
		if (o.csv)
			write_csv(&sides[k], t0);
	}
	return 0;
}
