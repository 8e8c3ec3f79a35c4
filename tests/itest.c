/* tests/itest.c - integration helpers (see itest.h). */
#include "tests/itest.h"
#include "tests/tests.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

int itest_slowdown(void)
{
	const char *v = getenv("TALLY_VALGRIND");

	return v && *v && strcmp(v, "0") ? 10 : 1;
}

static int read_port(const char *log)
{
	char line[512];
	FILE *f = fopen(log, "r");
	int port = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "tally: serving http://");

		if (!p) /* --tls-cert */
			p = strstr(line, "tally: serving https://");

		if (p) {
			p = strrchr(p, ':');
			if (p)
				port = atoi(p + 1);
		}
	}
	fclose(f);
	return port;
}

int itest_start(struct itest_server *s, const char *extra)
{
	const char *bin = getenv("TALLY_BIN") ? getenv("TALLY_BIN") : "./tally";
	const char *assets = getenv("TALLY_ASSETS") ? getenv("TALLY_ASSETS") : "assets";
	char *argv[32], *copy = NULL;
	int argc = 0;

	if (!s->dir) {
		s->dir = tests_tmpdir();
		if (!s->dir)
			return -1;
	}
	snprintf(s->db, sizeof(s->db), "%s/t.db", s->dir);
	snprintf(s->log, sizeof(s->log), "%s/server.log", s->dir);
	s->port = 0;
	if (truncate(s->log, 0) && errno != ENOENT)
		return -1;
	argv[argc++] = (char *)bin;
	argv[argc++] = "--headless";
	argv[argc++] = "--listen";
	argv[argc++] = "127.0.0.1:0";
	argv[argc++] = "--db";
	argv[argc++] = s->db;
	argv[argc++] = "--assets";
	argv[argc++] = (char *)assets;
	if (extra) {
		copy = strdup(extra);
		for (char *tok = strtok(copy, " "); tok && argc < 30; tok = strtok(NULL, " "))
			argv[argc++] = tok;
	}
	argv[argc] = NULL;
	s->pid = fork();
	if (s->pid < 0) {
		free(copy);
		return -1;
	}
	if (s->pid == 0) {
		int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, STDERR_FILENO);
			dup2(fd, STDOUT_FILENO);
		}
		setenv("TALLY_ADMIN_TOKEN", ITEST_TOKEN, 1);
		execv(bin, argv);
		_exit(127);
	}
	free(copy);
	for (int i = 0; i < 200 * itest_slowdown(); i++) {
		int st;

		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			s->pid = 0;
			return -1;
		}
		s->port = read_port(s->log);
		if (s->port > 0)
			return 0;
		sleep_ms(25);
	}
	return -1;
}

void itest_start_with_food(struct itest_server *s)
{
	memset(s, 0, sizeof(*s));
	if (itest_start(s, NULL)) {
		itest_cleanup(s);
		ck_abort_msg("the server did not start");
	}
	ck_assert_int_eq(itest_create_campaign(s->port, "food", "USD", 100000), 201);
}

int itest_signal(struct itest_server *s, int sig)
{
	int st = -1;

	if (s->pid <= 0)
		return -1;
	kill(s->pid, sig);
	for (int i = 0; i < 400 * itest_slowdown(); i++) {
		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			s->pid = 0;
			return st;
		}
		sleep_ms(25);
	}
	kill(s->pid, SIGKILL);
	waitpid(s->pid, &st, 0);
	s->pid = 0;
	return -1;
}

/* 1 when the server's log has a sanitizer report (a SAN build of tally). */
static int log_has_sanitizer_report(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	int found = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, "ERROR: AddressSanitizer") ||
		    strstr(line, "ERROR: LeakSanitizer") || strstr(line, "runtime error:"))
			found = 1;
		if (found)
			fputs(line, stderr);
	}
	fclose(f);
	return found;
}

void itest_cleanup(struct itest_server *s)
{
	int dirty;

	if (s->pid > 0)
		itest_signal(s, SIGTERM);
	dirty = s->dir && log_has_sanitizer_report(s->log);
	tests_rmdir(s->dir);
	s->dir = NULL;
	if (dirty) {
		fprintf(stderr, "itest: the server reported a sanitizer error (above)\n");
		_exit(3);
	}
}

/* A small receive buffer for the next websocket dial (0 = the default):
 * itest_ws_connect_slow sets it for a reader that falls behind. */
static int next_rcvbuf;

static int dial(int port);

/* A connection to 127.0.0.1:port from src (an IPv4 address: a loopback
 * alias such as 127.0.0.7), or from the kernel's choice when NULL. */
static int dial_from(int port, const char *src)
{
	struct sockaddr_in sa = {0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	if (src) {
		struct sockaddr_in me = {0};

		me.sin_family = AF_INET;
		if (inet_pton(AF_INET, src, &me.sin_addr) != 1 ||
		    bind(fd, (struct sockaddr *)&me, sizeof(me))) {
			close(fd);
			return -1;
		}
	}
	if (next_rcvbuf &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &next_rcvbuf, sizeof(next_rcvbuf))) {
		close(fd);
		return -1;
	}
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

static int dial(int port)
{
	return dial_from(port, NULL);
}

static int send_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read until the peer closes or timeout_ms passes without data. Returns a
 * malloc'd NUL-terminated buffer (length in *len), or NULL. */
static char *read_all(int fd, int timeout_ms, size_t *len)
{
	size_t used = 0, cap = 16384;
	char *buf = malloc(cap);

	if (!buf)
		return NULL;
	for (;;) {
		struct pollfd pfd = {fd, POLLIN, 0};
		ssize_t got;

		if (poll(&pfd, 1, timeout_ms) <= 0)
			break;
		if (used + 4096 + 1 > cap) {
			char *nb = realloc(buf, cap *= 2);

			if (!nb)
				break;
			buf = nb;
		}
		got = recv(fd, buf + used, cap - used - 1, 0);
		if (got <= 0)
			break;
		used += (size_t)got;
	}
	buf[used] = '\0';
	*len = used;
	return buf;
}

int itest_http(int port, const char *method, const char *path, const char *extra_headers,
               const char *body, size_t len, struct itest_resp *r)
{
	size_t hcap =
	    strlen(method) + strlen(path) + (extra_headers ? strlen(extra_headers) : 0) + 256;
	char *head = malloc(hcap), *buf = NULL, *sep;
	size_t used = 0;
	int fd, n;

	memset(r, 0, sizeof(*r));
	if (!head)
		return -1;
	fd = dial(port);
	if (fd < 0) {
		free(head);
		return -1;
	}
	n = snprintf(head, hcap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s",
	             method, path, port, extra_headers ? extra_headers : "");
	if (body)
		n += snprintf(head + n, hcap - (size_t)n, "Content-Length: %zu\r\n", len);
	n += snprintf(head + n, hcap - (size_t)n, "\r\n");
	if (send_all(fd, head, (size_t)n) || (body && send_all(fd, body, len))) {
		free(head);
		close(fd);
		return -1;
	}
	free(head);
	buf = read_all(fd, 5000, &used);
	close(fd);
	if (!buf)
		return -1;
	sep = strstr(buf, "\r\n\r\n");
	if (!sep || sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1) {
		free(buf);
		return -1;
	}
	snprintf(r->headers, sizeof(r->headers), "%.*s", (int)(sep - buf), buf);
	r->len = used - (size_t)(sep + 4 - buf);
	r->body = malloc(r->len + 1);
	if (r->body) {
		memcpy(r->body, sep + 4, r->len);
		r->body[r->len] = '\0';
	}
	free(buf);
	return r->body ? 0 : -1;
}

char *itest_raw(int port, const char *bytes, size_t len, int timeout_ms)
{
	int fd = dial(port);
	size_t got = 0;
	char *buf;

	if (fd < 0)
		return NULL;
	buf = send_all(fd, bytes, len) == 0 ? read_all(fd, timeout_ms, &got) : calloc(1, 1);
	close(fd);
	return buf;
}

/* Milliseconds left until deadline (CLOCK_MONOTONIC), at least 0. */
static int ms_left(const struct timespec *deadline)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(deadline->tv_sec - now.tv_sec) * 1000 +
	     (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? (int)ms : 0;
}

static void deadline_in(struct timespec *deadline, int timeout_ms)
{
	clock_gettime(CLOCK_MONOTONIC, deadline);
	deadline->tv_sec += timeout_ms / 1000;
	deadline->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline->tv_nsec >= 1000000000L) {
		deadline->tv_sec++;
		deadline->tv_nsec -= 1000000000L;
	}
}

int itest_conn_open(int port)
{
	return dial(port);
}

int itest_conn_open_from(int port, const char *src)
{
	return dial_from(port, src);
}

int itest_conn_request(int fd, const char *bytes, size_t len, int timeout_ms, struct itest_resp *r)
{
	char buf[65536], *sep = NULL, *cl;
	size_t used = 0, head = 0, want = 0;
	struct timespec deadline;

	memset(r, 0, sizeof(*r));
	if (send_all(fd, bytes, len))
		return -1;
	deadline_in(&deadline, timeout_ms);
	while (!sep || used < head + want) {
		struct pollfd pfd = {fd, POLLIN, 0};
		ssize_t got;

		if (used + 1 >= sizeof(buf) || poll(&pfd, 1, ms_left(&deadline)) <= 0)
			return -1;
		got = recv(fd, buf + used, sizeof(buf) - used - 1, 0);
		if (got <= 0)
			return -1;
		used += (size_t)got;
		buf[used] = '\0';
		if (!sep && (sep = strstr(buf, "\r\n\r\n"))) {
			head = (size_t)(sep + 4 - buf);
			snprintf(r->headers, sizeof(r->headers), "%.*s", (int)(sep - buf), buf);
			cl = strcasestr(r->headers, "\r\ncontent-length:");
			want = cl ? strtoul(cl + 17, NULL, 10) : 0;
		}
	}
	if (used != head + want || sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1)
		return -1;
	r->len = want;
	r->body = malloc(want + 1);
	if (!r->body)
		return -1;
	memcpy(r->body, buf + head, want);
	r->body[want] = '\0';
	return 0;
}

int itest_conn_closed(int fd, int timeout_ms)
{
	struct timespec deadline;
	char buf[4096];

	deadline_in(&deadline, timeout_ms);
	for (;;) {
		struct pollfd pfd = {fd, POLLIN, 0};
		ssize_t got;

		if (poll(&pfd, 1, ms_left(&deadline)) <= 0)
			return 0;
		got = recv(fd, buf, sizeof(buf), 0);
		if (got == 0 || (got < 0 && errno == ECONNRESET))
			return 1;
		if (got < 0 && errno != EINTR)
			return 0;
	}
}

int itest_post_json(int port, const char *path, const char *json, int admin, struct itest_resp *r)
{
	return itest_http(
	    port, "POST", path,
	    admin ? "Content-Type: application/json\r\nAuthorization: Bearer " ITEST_TOKEN "\r\n"
	          : "Content-Type: application/json\r\n",
	    json, strlen(json), r);
}

const char *itest_header(const struct itest_resp *r, const char *name, char *dst, size_t cap)
{
	const char *p = r->headers;
	size_t nlen = strlen(name);

	while ((p = strstr(p, "\r\n"))) {
		p += 2;
		if (!strncasecmp(p, name, nlen) && p[nlen] == ':') {
			const char *v = p + nlen + 1, *end;

			while (*v == ' ')
				v++;
			end = strstr(v, "\r\n");
			if (!end)
				end = v + strlen(v);
			snprintf(dst, cap, "%.*s", (int)(end - v), v);
			return dst;
		}
	}
	return NULL;
}

void itest_resp_fini(struct itest_resp *r)
{
	free(r->body);
	r->body = NULL;
}

int itest_create_campaign(int port, const char *slug, const char *currency, long long goal)
{
	struct itest_resp r;
	char json[512];
	int status;

	snprintf(
	    json, sizeof(json),
	    "{\"slug\":\"%s\",\"name\":\"Campaign %s\",\"currency\":\"%s\",\"goal_cents\":%lld}",
	    slug, slug, currency, goal);
	if (itest_post_json(port, "/api/v1/admin/campaigns", json, 1, &r))
		return -1;
	status = r.status;
	itest_resp_fini(&r);
	return status;
}

int itest_donate(int port, const char *slug, long long cents, const char *name, const char *email)
{
	struct itest_resp r;
	char json[512], path[256];
	int status;

	snprintf(path, sizeof(path), "/api/v1/campaigns/%s/donations", slug);
	snprintf(json, sizeof(json),
	         "{\"amount_cents\":%lld,\"currency\":\"USD\",\"donor\":{\"name\":\"%s\","
	         "\"email\":\"%s\"},\"payment_token\":\"tok_visa\"}",
	         cents, name, email);
	if (itest_post_json(port, path, json, 0, &r))
		return -1;
	status = r.status;
	itest_resp_fini(&r);
	return status;
}

int itest_read_head(int fd, char *out, size_t cap, int timeout_ms)
{
	size_t used = 0;

	/* Byte by byte, so that no byte after it is taken. */
	while (used + 1 < cap) {
		struct pollfd pfd = {fd, POLLIN, 0};

		if (poll(&pfd, 1, timeout_ms) <= 0 || recv(fd, out + used, 1, 0) != 1)
			break;
		used++;
		out[used] = '\0';
		if (used >= 4 && !memcmp(out + used - 4, "\r\n\r\n", 4))
			return 0;
	}
	if (cap)
		out[used] = '\0';
	return -1;
}

int itest_ws_connect(int port, const char *path, const char *subprotocol, int *status)
{
	char req[1024], resp[4096];
	size_t used = 0;
	int fd = dial(port), n;

	if (status)
		*status = 0;
	if (fd < 0)
		return -1;
	n = snprintf(req, sizeof(req),
	             "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
	             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	             "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
	             path, port, subprotocol ? "Sec-WebSocket-Protocol: " : "",
	             subprotocol ? subprotocol : "", subprotocol ? "\r\n" : "");
	if (send_all(fd, req, (size_t)n))
		goto fail;
	/* Read the handshake byte by byte so no frame bytes are consumed. */
	while (used < sizeof(resp) - 1) {
		struct pollfd pfd = {fd, POLLIN, 0};

		if (poll(&pfd, 1, 3000) <= 0 || recv(fd, resp + used, 1, 0) != 1)
			break;
		used++;
		resp[used] = '\0';
		if (used >= 4 && !memcmp(resp + used - 4, "\r\n\r\n", 4))
			break;
	}
	resp[used] = '\0';
	if (status)
		sscanf(resp, "HTTP/1.%*d %d", status);
	if (strncmp(resp, "HTTP/1.1 101", 12))
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

int itest_ws_connect_slow(int port, int rcvbuf)
{
	int fd;

	next_rcvbuf = rcvbuf;
	fd = itest_ws_connect(port, "/live", "tally.live.v1", NULL);
	next_rcvbuf = 0;
	return fd;
}

int itest_ws_send(int fd, const char *text)
{
	size_t len = strlen(text), hl = 2;
	unsigned char hdr[14], mask[4] = {0x12, 0x34, 0x56, 0x78};
	char *frame;
	int rc;

	hdr[0] = 0x81;
	if (len < 126) {
		hdr[1] = (unsigned char)(0x80 | len);
	} else {
		hdr[1] = 0x80 | 126;
		hdr[2] = (unsigned char)(len >> 8);
		hdr[3] = (unsigned char)len;
		hl = 4;
	}
	memcpy(hdr + hl, mask, 4);
	hl += 4;
	frame = malloc(hl + len);
	if (!frame)
		return -1;
	memcpy(frame, hdr, hl);
	for (size_t i = 0; i < len; i++)
		frame[hl + i] = (char)(text[i] ^ mask[i % 4]);
	rc = send_all(fd, frame, hl + len);
	free(frame);
	return rc;
}

static int recv_exact(int fd, void *buf, size_t len, int timeout_ms)
{
	char *p = buf;

	while (len) {
		struct pollfd pfd = {fd, POLLIN, 0};
		ssize_t n;

		if (poll(&pfd, 1, timeout_ms) <= 0)
			return -1;
		n = recv(fd, p, len, 0);
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

char *itest_ws_recv(int fd, int timeout_ms)
{
	for (;;) {
		unsigned char h[2], ext[8];
		uint64_t len;
		char *msg;

		if (recv_exact(fd, h, 2, timeout_ms))
			return NULL;
		len = h[1] & 0x7f;
		if (len == 126) {
			if (recv_exact(fd, ext, 2, timeout_ms))
				return NULL;
			len = ((uint64_t)ext[0] << 8) | ext[1];
		} else if (len == 127) {
			if (recv_exact(fd, ext, 8, timeout_ms))
				return NULL;
			len = 0;
			for (int i = 0; i < 8; i++)
				len = (len << 8) | ext[i];
		}
		if (len > (1u << 24))
			return NULL;
		msg = malloc(len + 1);
		if (!msg || (len && recv_exact(fd, msg, len, timeout_ms))) {
			free(msg);
			return NULL;
		}
		msg[len] = '\0';
		if ((h[0] & 0x0f) == 0x1)
			return msg;
		free(msg);
		if ((h[0] & 0x0f) == 0x8)
			return NULL; /* close */
		                     /* ping/pong/other: keep reading */
	}
}

size_t itest_ws_frame(unsigned char *out, size_t cap, int fin, int opcode, int masked,
                      const void *payload, size_t len)
{
	unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
	const unsigned char *pl = payload;
	size_t hl = 2;

	if (cap < len + 14)
		return 0;
	out[0] = (unsigned char)((fin ? 0x80 : 0) | (opcode & 0x0f));
	if (len < 126) {
		out[1] = (unsigned char)len;
	} else if (len < 65536) {
		out[1] = 126;
		out[2] = (unsigned char)(len >> 8);
		out[3] = (unsigned char)len;
		hl = 4;
	} else {
		out[1] = 127;
		for (int i = 0; i < 8; i++)
			out[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
		hl = 10;
	}
	if (!masked) {
		memcpy(out + hl, pl, len);
		return hl + len;
	}
	out[1] |= 0x80;
	memcpy(out + hl, mask, 4);
	hl += 4;
	for (size_t i = 0; i < len; i++)
		out[hl + i] = pl[i] ^ mask[i % 4];
	return hl + len;
}

int itest_send(int fd, const void *bytes, size_t len)
{
	return send_all(fd, bytes, len);
}

int itest_ws_send_frame(int fd, int opcode, const void *payload, size_t len)
{
	unsigned char *frame = malloc(len + 14);
	size_t n;
	int rc;

	if (!frame)
		return -1;
	n = itest_ws_frame(frame, len + 14, 1, opcode, 1, payload, len);
	rc = n ? send_all(fd, frame, n) : -1;
	free(frame);
	return rc;
}

/* One frame: its opcode, and its payload (malloc'd) in *out. Returns 0, or
 * -1 when the connection ended, -2 on timeout. */
static int ws_frame(int fd, int timeout_ms, int *opcode, char **out, size_t *outlen)
{
	unsigned char h[2], ext[8];
	uint64_t len;
	char *msg;
	struct pollfd pfd = {fd, POLLIN, 0};

	*out = NULL;
	if (poll(&pfd, 1, timeout_ms) <= 0)
		return -2;
	if (recv_exact(fd, h, 2, timeout_ms))
		return -1;
	len = h[1] & 0x7f;
	if (len == 126) {
		if (recv_exact(fd, ext, 2, timeout_ms))
			return -1;
		len = ((uint64_t)ext[0] << 8) | ext[1];
	} else if (len == 127) {
		if (recv_exact(fd, ext, 8, timeout_ms))
			return -1;
		len = 0;
		for (int i = 0; i < 8; i++)
			len = (len << 8) | ext[i];
	}
	if (len > (1u << 24))
		return -1;
	msg = malloc(len + 1);
	if (!msg || (len && recv_exact(fd, msg, len, timeout_ms))) {
		free(msg);
		return -1;
	}
	msg[len] = '\0';
	*opcode = h[0] & 0x0f;
	*out = msg;
	*outlen = len;
	return 0;
}

int itest_ws_next(int fd, int timeout_ms, int *opcode, char **payload, size_t *len)
{
	return ws_frame(fd, timeout_ms, opcode, payload, len);
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (long)((t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000);
}

int itest_ws_close_code(int fd, int pong, int timeout_ms)
{
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		long left = timeout_ms - ms_since(&t0);
		char *msg;
		size_t len = 0;
		int op = 0, rc;

		if (left <= 0)
			return -1;
		rc = ws_frame(fd, (int)left, &op, &msg, &len);
		if (rc == -2)
			return -1;
		if (rc == -1)
			return 0;
		if (op == 0x8) {
			rc = len >= 2 ? ((unsigned char)msg[0] << 8) | (unsigned char)msg[1] : 0;
			free(msg);
			return rc;
		}
		if (op == 0x9 && pong)
			itest_ws_send_frame(fd, 0xA, msg, len);
		free(msg);
	}
}

int itest_ws_keep(int fd, int ms)
{
	struct timespec t0;
	int pings = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		long left = ms - ms_since(&t0);
		char *msg;
		size_t len = 0;
		int op = 0, rc;

		if (left <= 0)
			return pings;
		rc = ws_frame(fd, (int)left, &op, &msg, &len);
		if (rc == -2)
			return pings;
		if (rc == -1 || op == 0x8) {
			free(msg);
			return -1;
		}
		if (op == 0x9) {
			pings++;
			if (itest_ws_send_frame(fd, 0xA, msg, len)) {
				free(msg);
				return -1;
			}
		}
		free(msg);
	}
}

char *itest_ws_wait_for(int fd, const char *needle, int timeout_ms)
{
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int left;
		char *m;

		clock_gettime(CLOCK_MONOTONIC, &t1);
		left = timeout_ms -
		       (int)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0)
			return NULL;
		m = itest_ws_recv(fd, left);
		if (!m)
			return NULL;
		if (strstr(m, needle))
			return m;
		free(m);
	}
}

long long itest_sql_int(const char *db, const char *sql)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;
	long long v = -1;

	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_busy_timeout(h, 5000) == SQLITE_OK &&
	    sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return v;
}

int itest_admin_get(int port, const char *path, struct itest_resp *r)
{
	return itest_http(port, "GET", path, "Authorization: Bearer " ITEST_TOKEN "\r\n", NULL, 0,
	                  r);
}

/* 1 when every queue in the body of GET /api/v1/admin/queues is idle. */
static int queues_idle(const char *body)
{
	static const char *const keys[] = {
	    "\"ready\":", "\"running\":", "\"scheduled\":", "\"held\":"};

	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
		for (const char *p = strstr(body, keys[k]); p; p = strstr(p + 1, keys[k]))
			if (atoll(p + strlen(keys[k])) != 0)
				return 0;
	return 1;
}

int itest_settle(int port)
{
	/* Up to 30 s: a sanitizer build on a busy machine is slow to drain
	 * its queues (receipts are fsynced). */
	for (int i = 0; i < 3000 * itest_slowdown(); i++) {
		struct itest_resp r;
		int idle;

		if (itest_admin_get(port, "/api/v1/admin/queues", &r))
			return -1;
		idle = r.status == 200 && queues_idle(r.body);
		itest_resp_fini(&r);
		if (idle)
			return 0;
		usleep(10000);
	}
	return -1;
}

int itest_tool_start(struct itest_tool *t, const char *script, const char *args)
{
	char *argv[24], *copy = NULL, path[512], line[64];
	const char *dir = getenv("TALLY_TOOLS") ? getenv("TALLY_TOOLS") : "tests/tools";
	int argc = 0, pipefd[2];
	FILE *f;

	memset(t, 0, sizeof(*t));
	snprintf(path, sizeof(path), "%s/%s", dir, script);
	argv[argc++] = "/usr/bin/python3";
	argv[argc++] = path;
	argv[argc++] = "--port";
	argv[argc++] = "0";
	if (args) {
		copy = strdup(args);
		for (char *tok = strtok(copy, " "); tok && argc < 22; tok = strtok(NULL, " "))
			argv[argc++] = tok;
	}
	argv[argc] = NULL;
	if (pipe(pipefd)) {
		free(copy);
		return -1;
	}
	t->pid = fork();
	if (t->pid < 0) {
		free(copy);
		close(pipefd[0]);
		close(pipefd[1]);
		return -1;
	}
	if (t->pid == 0) {
		dup2(pipefd[1], STDOUT_FILENO);
		close(pipefd[0]);
		close(pipefd[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	free(copy);
	close(pipefd[1]);
	f = fdopen(pipefd[0], "r");
	if (!f) {
		close(pipefd[0]);
		itest_tool_stop(t);
		return -1;
	}
	if (fgets(line, sizeof(line), f) && sscanf(line, "PORT %d", &t->port) == 1 && t->port > 0) {
		t->out = f;
		return 0;
	}
	fclose(f);
	itest_tool_stop(t);
	return -1;
}

void itest_tool_stop(struct itest_tool *t)
{
	int st;

	if (t->pid > 0) {
		kill(t->pid, SIGTERM);
		waitpid(t->pid, &st, 0);
	}
	if (t->out)
		fclose(t->out);
	t->pid = 0;
	t->out = NULL;
}

json_t *itest_json_body(const struct itest_resp *r)
{
	json_t *v = json_loadb(r->body ? r->body : "", r->len, 0, NULL);

	ck_assert_msg(v != NULL, "not JSON (%d): %.300s", r->status, r->body ? r->body : "");
	return v;
}

json_t *itest_get_json(int port, const char *path, int admin)
{
	struct itest_resp r;
	json_t *v;

	if (admin)
		ck_assert_int_eq(itest_admin_get(port, path, &r), 0);
	else
		ck_assert_int_eq(itest_http(port, "GET", path, NULL, NULL, 0, &r), 0);
	ck_assert_msg(r.status == 200, "GET %s: %d %.300s", path, r.status, r.body);
	v = itest_json_body(&r);
	itest_resp_fini(&r);
	return v;
}

long long itest_json_int(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_integer(v), "%s is not an integer", key);
	return json_integer_value(v);
}

char *itest_slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text;
	long n;

	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_ge(n, 0);
	rewind(f);
	text = calloc(1, (size_t)n + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(fread(text, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return text;
}
