/* tests/test_tls.c - TLS on the real binary. Each test makes a self-signed
 * certificate for 127.0.0.1 (OpenSSL's C API) and talks to tally through
 * OpenSSL, verifying that certificate: pages and the API over HTTPS, a
 * donation, /live over wss, plain HTTP refused, old protocol versions
 * refused, the client's address seen through the TLS front, every start-up
 * with a bad certificate or key refused with its line, and SIGTERM with
 * TLS connections open. Then `tally console --connect https://`: the
 * remote console's source (tui/remote.c, run headless) attached over TLS
 * with --ca-file, refused without it ("not trusted" on its reconnect
 * line), against a plain-HTTP server, and each bad URL or --ca-file
 * refused at start with its line; and the real console in tmux
 * (tests/tally_tmux.sh tls). */
#include "tests/itest.h"
#include "tests/tests.h"
#include "tui/console.h"
#include "tui/remote.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IO_TIMEOUT_S 5 /* any one read or write of the test client */

static struct itest_server srv;
static char *dir; /* the certificates and keys of this test */
static char cert_path[600], key_path[600];

/* ---- certificates ---- */

static EVP_PKEY *new_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	ck_assert_ptr_nonnull(k);
	return k;
}

/* A self-signed certificate of key k for the names of san (subjectAltName
 * syntax), valid from a minute ago for a day (or expired a day ago). */
static X509 *self_signed_for(EVP_PKEY *k, int expired, const char *san)
{
	X509 *x = X509_new();
	X509_NAME *n;
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(X509_set_version(x, 2), 1);
	ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(x), expired ? -172800 : -60));
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notAfter(x), expired ? -86400 : 86400));
	ck_assert_int_eq(X509_set_pubkey(x, k), 1);
	n = X509_get_subject_name(x);
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	                                            (const unsigned char *)"tally test", -1, -1, 0),
	                 1);
	ck_assert_int_eq(X509_set_issuer_name(x, n), 1);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	ck_assert_ptr_nonnull(ext);
	ck_assert_int_eq(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
	ck_assert_int_gt(X509_sign(x, k, EVP_sha256()), 0);
	return x;
}

/* The same for 127.0.0.1 and localhost. */
static X509 *self_signed(EVP_PKEY *k, int expired)
{
	return self_signed_for(k, expired, "IP:127.0.0.1,DNS:localhost");
}

/* dir/name: the certificate x and/or the key k (encrypted with pass when
 * not NULL), with mode. */
static void write_pem(const char *name, X509 *x, EVP_PKEY *k, const char *pass, mode_t mode,
                      char *path, size_t cap)
{
	FILE *f;

	snprintf(path, cap, "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	if (x)
		ck_assert_int_eq(PEM_write_X509(f, x), 1);
	if (k)
		ck_assert_int_eq(PEM_write_PrivateKey(f, k, pass ? EVP_aes_128_cbc() : NULL, NULL,
		                                      0, NULL, (void *)pass),
		                 1);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(path, mode), 0);
}

static void write_text(const char *name, const char *text, mode_t mode, char *path, size_t cap)
{
	FILE *f;

	snprintf(path, cap, "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(path, mode), 0);
}

/* cert.pem and key.pem (mode 0600) in a new dir. */
static void make_keys(void)
{
	EVP_PKEY *k = new_key();
	X509 *x = self_signed(k, 0);

	dir = tests_tmpdir();
	ck_assert_ptr_nonnull(dir);
	write_pem("cert.pem", x, NULL, NULL, 0644, cert_path, sizeof(cert_path));
	write_pem("key.pem", NULL, k, NULL, 0600, key_path, sizeof(key_path));
	X509_free(x);
	EVP_PKEY_free(k);
}

/* ---- the test's TLS client ---- */

struct tconn {
	int fd;
	SSL *ssl;
};

/* A client that trusts cert.pem only and checks the name 127.0.0.1;
 * max_version 0: any. */
static SSL_CTX *client_ctx(int max_version)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(SSL_CTX_load_verify_locations(ctx, cert_path, NULL), 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (max_version) {
		/* Old versions need the lowest security level to be offered. */
		ck_assert_int_eq(SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0"), 1);
		ck_assert_int_eq(SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION), 1);
		ck_assert_int_eq(SSL_CTX_set_max_proto_version(ctx, max_version), 1);
	}
	return ctx;
}

/* A TCP connection to port whose receive buffer is rcvbuf bytes (0: the
 * default): the fd, or -1. */
static int dial_small(int port, int rcvbuf)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons((uint16_t)port),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if ((rcvbuf && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf))) ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

static int next_rcvbuf; /* for the next tls_dial_ctx; 0: the default */

/* Connect and shake hands. Returns 0, or -1 (c closed). */
static int tls_dial_ctx(SSL_CTX *ctx, int port, struct tconn *c)
{
	struct timeval tv = {IO_TIMEOUT_S, 0};

	c->ssl = NULL;
	c->fd = next_rcvbuf ? dial_small(port, next_rcvbuf) : itest_conn_open(port);
	if (c->fd < 0)
		return -1;
	/* Every blocking read or write of the client ends within the timeout. */
	if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		goto fail;
	c->ssl = SSL_new(ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1 ||
	    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), "127.0.0.1") != 1 ||
	    SSL_connect(c->ssl) != 1 || SSL_get_verify_result(c->ssl) != X509_V_OK)
		goto fail;
	return 0;
fail:
	ERR_clear_error();
	SSL_free(c->ssl);
	close(c->fd);
	c->ssl = NULL;
	c->fd = -1;
	return -1;
}

static int tls_dial(int port, struct tconn *c)
{
	SSL_CTX *ctx = client_ctx(0);
	int rc = tls_dial_ctx(ctx, port, c);

	SSL_CTX_free(ctx); /* the connection keeps what it needs */
	return rc;
}

static void tls_close(struct tconn *c)
{
	if (c->ssl)
		SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	c->ssl = NULL;
	c->fd = -1;
}

static int tls_send(struct tconn *c, const void *p, size_t n)
{
	return n <= (size_t)INT32_MAX && SSL_write(c->ssl, p, (int)n) == (int)n ? 0 : -1;
}

/* Read exactly n bytes, each read within timeout_ms. Returns 0 or -1. */
static int tls_read_exact(struct tconn *c, void *buf, size_t n, int timeout_ms)
{
	char *p = buf;

	while (n) {
		struct pollfd pfd = {c->fd, POLLIN, 0};
		int got;

		if (!SSL_pending(c->ssl) && poll(&pfd, 1, timeout_ms) <= 0)
			return -1;
		got = SSL_read(c->ssl, p, n > 65536 ? 65536 : (int)n);
		if (got <= 0)
			return -1;
		p += got;
		n -= (size_t)got;
	}
	return 0;
}

/* Read an HTTP head byte by byte (nothing after it) into out, each byte
 * within timeout_ms. */
static int tls_read_head(struct tconn *c, char *out, size_t cap, int timeout_ms)
{
	size_t used = 0;

	while (used + 1 < cap) {
		if (tls_read_exact(c, out + used, 1, timeout_ms))
			break;
		out[++used] = '\0';
		if (used >= 4 && !memcmp(out + used - 4, "\r\n\r\n", 4))
			return 0;
	}
	return -1;
}

/* Read one response: its head (its first byte within timeout_ms), then a
 * body of its Content-Length. */
static int tls_response_within(struct tconn *c, struct itest_resp *r, int timeout_ms)
{
	char head[8192], *cl;
	size_t want;

	memset(r, 0, sizeof(*r));
	if (tls_read_exact(c, head, 1, timeout_ms) ||
	    tls_read_head(c, head + 1, sizeof(head) - 1, IO_TIMEOUT_S * 1000))
		return -1;
	if (sscanf(head, "HTTP/1.%*d %d", &r->status) != 1)
		return -1;
	snprintf(r->headers, sizeof(r->headers), "%.*s", (int)(strlen(head) - 4), head);
	cl = strcasestr(r->headers, "\r\ncontent-length:");
	want = cl ? strtoul(cl + 17, NULL, 10) : 0;
	r->body = malloc(want + 1);
	if (!r->body || (want && tls_read_exact(c, r->body, want, IO_TIMEOUT_S * 1000)))
		return -1;
	r->body[want] = '\0';
	r->len = want;
	return 0;
}

static int tls_response(struct tconn *c, struct itest_resp *r)
{
	return tls_response_within(c, r, IO_TIMEOUT_S * 1000);
}

/* 1 when the server ended c (close_notify, or the connection closed)
 * within timeout_ms, dropping anything that comes first; 0 when not. */
static int tls_ended(struct tconn *c, int timeout_ms)
{
	char buf[4096];

	for (;;) {
		struct pollfd pfd = {c->fd, POLLIN, 0};
		int n, e;

		if (!SSL_pending(c->ssl) && poll(&pfd, 1, timeout_ms) <= 0)
			return 0;
		n = SSL_read(c->ssl, buf, sizeof(buf));
		if (n > 0)
			continue;
		e = SSL_get_error(c->ssl, n);
		ERR_clear_error();
		return e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE;
	}
}

/* One request on c (kept alive). extra: raw header lines or NULL. */
static int tls_request(struct tconn *c, const char *method, const char *path, const char *extra,
                       const char *body, struct itest_resp *r)
{
	char head[4096];
	int n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s", method,
	                 path, extra ? extra : "");

	if (body)
		n += snprintf(head + n, sizeof(head) - (size_t)n,
		              "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		              strlen(body));
	else
		n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
	memset(r, 0, sizeof(*r));
	if (n <= 0 || (size_t)n >= sizeof(head) || tls_send(c, head, (size_t)n) ||
	    (body && tls_send(c, body, strlen(body))))
		return -1;
	return tls_response(c, r);
}

/* One request on a new connection. */
static int tls_http(const char *method, const char *path, const char *extra, const char *body,
                    struct itest_resp *r)
{
	struct tconn c;
	int rc;

	memset(r, 0, sizeof(*r));
	if (tls_dial(srv.port, &c))
		return -1;
	rc = tls_request(&c, method, path, extra, body, r);
	tls_close(&c);
	return rc;
}

static const char admin_hdr[] = "Authorization: Bearer " ITEST_TOKEN "\r\n";

static void create_food(void)
{
	struct itest_resp r;

	ck_assert_int_eq(tls_http("POST", "/api/v1/admin/campaigns", admin_hdr,
	                          "{\"slug\":\"food\",\"name\":\"Food\",\"currency\":\"USD\","
	                          "\"goal_cents\":100000}",
	                          &r),
	                 0);
	ck_assert_int_eq(r.status, 201);
	itest_resp_fini(&r);
}

static void donate(long long cents)
{
	struct itest_resp r;
	char body[256];

	snprintf(body, sizeof(body),
	         "{\"amount_cents\":%lld,\"currency\":\"USD\",\"donor\":{\"name\":\"Ada\","
	         "\"email\":\"ada@example.org\"},\"payment_token\":\"tok_visa\"}",
	         cents);
	ck_assert_int_eq(tls_http("POST", "/api/v1/campaigns/food/donations", NULL, body, &r), 0);
	ck_assert_int_eq(r.status, 202);
	ck_assert_ptr_nonnull(strstr(r.body, "\"status\":\"pending\""));
	itest_resp_fini(&r);
}

/* GET path over HTTPS until its body holds needle (at most 10 s): 1 when
 * it did. */
static int wait_body(const char *path, const char *extra, const char *needle)
{
	for (int i = 0; i < 200; i++) {
		struct itest_resp r;
		int found = tls_http("GET", path, extra, NULL, &r) == 0 && r.status == 200 &&
		            strstr(r.body, needle);

		itest_resp_fini(&r);
		if (found)
			return 1;
		poll(NULL, 0, 50);
	}
	return 0;
}

/* ---- wss ---- */

/* A /live websocket over TLS; returns 0 with c open, or -1. */
static int wss_open(struct tconn *c, int *status)
{
	static const char up[] =
	    "GET /live HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: tally.live.v1\r\n"
	    "\r\n";
	char head[4096];

	*status = 0;
	if (tls_dial(srv.port, c))
		return -1;
	if (tls_send(c, up, sizeof(up) - 1) ||
	    tls_read_head(c, head, sizeof(head), IO_TIMEOUT_S * 1000) ||
	    sscanf(head, "HTTP/1.%*d %d", status) != 1 || *status != 101) {
		tls_close(c);
		return -1;
	}
	return 0;
}

static int wss_send(struct tconn *c, const char *text)
{
	unsigned char frame[1100];
	size_t n = itest_ws_frame(frame, sizeof(frame), 1, 0x1, 1, text, strlen(text));

	return n ? tls_send(c, frame, n) : -1;
}

/* The next frame: opcode and payload (malloc'd, NUL-ended). Returns 0 or
 * -1 (closed, or nothing within timeout_ms). */
static int wss_frame(struct tconn *c, int timeout_ms, int *op, char **payload, size_t *len)
{
	unsigned char h[2], ext[8];
	uint64_t n;

	*payload = NULL;
	if (tls_read_exact(c, h, 2, timeout_ms))
		return -1;
	n = h[1] & 0x7f;
	if (n == 126) {
		if (tls_read_exact(c, ext, 2, timeout_ms))
			return -1;
		n = ((uint64_t)ext[0] << 8) | ext[1];
	} else if (n == 127) {
		if (tls_read_exact(c, ext, 8, timeout_ms))
			return -1;
		n = 0;
		for (int i = 0; i < 8; i++)
			n = (n << 8) | ext[i];
	}
	if (n > (1u << 24) || !(*payload = malloc(n + 1)))
		return -1;
	if (n && tls_read_exact(c, *payload, n, timeout_ms)) {
		free(*payload);
		*payload = NULL;
		return -1;
	}
	(*payload)[n] = '\0';
	*op = h[0] & 0x0f;
	*len = n;
	return 0;
}

/* Text messages until one holds needle (within timeout_ms): it, or NULL. */
static char *wss_wait_for(struct tconn *c, const char *needle, int timeout_ms)
{
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		char *m;
		size_t len;
		int op, left;

		clock_gettime(CLOCK_MONOTONIC, &t1);
		left = timeout_ms -
		       (int)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0 || wss_frame(c, left, &op, &m, &len))
			return NULL;
		if (op == 0x1 && strstr(m, needle))
			return m;
		free(m);
		if (op == 0x8)
			return NULL;
	}
}

/* Frames until the server's close: its code, 0 when the connection ended
 * without one, -1 when nothing ended it within timeout_ms. */
static int wss_close_code(struct tconn *c, int timeout_ms)
{
	for (;;) {
		struct pollfd pfd = {c->fd, POLLIN, 0};
		char *m;
		size_t len;
		int op, code;

		if (!SSL_pending(c->ssl) && poll(&pfd, 1, timeout_ms) <= 0)
			return -1;
		if (wss_frame(c, timeout_ms, &op, &m, &len))
			return 0;
		code =
		    op == 0x8 && len >= 2 ? ((unsigned char)m[0] << 8) | (unsigned char)m[1] : -2;
		free(m);
		if (code != -2)
			return code;
	}
}

/* ---- fixtures ---- */

static void start(void)
{
	char extra[1400];

	make_keys();
	memset(&srv, 0, sizeof(srv));
	snprintf(extra, sizeof(extra), "--tls-cert %s --tls-key %s", cert_path, key_path);
	if (itest_start(&srv, extra)) {
		itest_cleanup(&srv);
		ck_abort_msg("tally did not start with TLS");
	}
}

static void stop(void)
{
	itest_cleanup(&srv);
	tests_rmdir(dir);
	dir = NULL;
}

/* /metrics over HTTPS has line (whole). */
static int metrics_have(const char *line)
{
	struct itest_resp r;
	char want[256];
	int found;

	snprintf(want, sizeof(want), "\n%s\n", line);
	found = tls_http("GET", "/metrics", NULL, NULL, &r) == 0 && r.status == 200 &&
	        strstr(r.body, want);
	itest_resp_fini(&r);
	return found;
}

/* The value of the first /metrics line starting with name (over HTTPS),
 * -1 if none. */
static long long metric(const char *name)
{
	struct itest_resp r;
	const char *p;
	size_t n = strlen(name);
	long long v = -1;

	ck_assert_int_eq(tls_http("GET", "/metrics", NULL, NULL, &r), 0);
	for (p = r.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, name, n)) {
			v = atoll(p + n);
			break;
		}
	itest_resp_fini(&r);
	return v;
}

/* ---- serving ---- */

START_TEST(pages_and_the_api_over_https)
{
	struct tconn c;
	struct itest_resp r;
	char v[128];

	ck_assert_int_eq(tls_dial(srv.port, &c), 0);
	ck_assert_int_ge(SSL_version(c.ssl), TLS1_2_VERSION);
	ck_assert_ptr_null(SSL_get_current_compression(c.ssl));
	/* Two requests on one kept-alive connection. */
	ck_assert_int_eq(tls_request(&c, "GET", "/healthz", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{\"status\":\"ok\"}");
	itest_resp_fini(&r);
	ck_assert_int_eq(tls_request(&c, "GET", "/", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(itest_header(&r, "Content-Type", v, sizeof(v)));
	ck_assert_ptr_nonnull(strstr(v, "text/html"));
	ck_assert_ptr_nonnull(strstr(r.body, "<html"));
	itest_resp_fini(&r);
	ck_assert_int_eq(tls_request(&c, "GET", "/widget.js", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.body, "wss:"));
	itest_resp_fini(&r);
	tls_close(&c);
	/* Staff answers too: the bearer token goes through the front. */
	ck_assert_int_eq(tls_http("GET", "/api/v1/admin/queues", admin_hdr, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	ck_assert_int_eq(tls_http("GET", "/api/v1/admin/queues", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 401);
	itest_resp_fini(&r);
	/* This connection, the two staff requests and the metrics' own. */
	ck_assert(metrics_have("tally_tls_handshakes_total{result=\"ok\"} 4"));
}
END_TEST

/* Bodies and half closes go through the front as through TCP. */
START_TEST(bodies_and_half_closes)
{
	static const char req[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
	struct tconn c;
	struct itest_resp r;
	size_t big = 200 * 1024;
	char *body = malloc(big + 1);

	ck_assert_ptr_nonnull(body);
	memset(body, 'x', big);
	body[big] = '\0';
	create_food();
	/* 200 KiB: read (more than the socket pair holds at once) and
	 * dropped, answered 413, and the connection kept for the next. */
	ck_assert_int_eq(tls_dial(srv.port, &c), 0);
	ck_assert_int_eq(
	    tls_request(&c, "POST", "/api/v1/campaigns/food/donations", NULL, body, &r), 0);
	ck_assert_int_eq(r.status, 413);
	ck_assert_ptr_nonnull(strstr(r.body, "payload_too_large"));
	itest_resp_fini(&r);
	ck_assert_int_eq(tls_request(&c, "GET", "/healthz", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	tls_close(&c);
	free(body);
	/* A client that ends its side (close_notify) once its request is
	 * sent still gets the answer, then the server's close_notify. */
	ck_assert_int_eq(tls_dial(srv.port, &c), 0);
	ck_assert_int_eq(tls_send(&c, req, sizeof(req) - 1), 0);
	ck_assert_int_ge(SSL_shutdown(c.ssl), 0);
	ck_assert_int_eq(tls_response(&c, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	ck_assert(tls_ended(&c, 5000));
	tls_close(&c);
}
END_TEST

START_TEST(tls_before_1_2_is_refused)
{
	SSL_CTX *old = client_ctx(TLS1_1_VERSION);
	struct tconn c;
	struct itest_resp r;

	ck_assert_int_eq(tls_dial_ctx(old, srv.port, &c), -1);
	SSL_CTX_free(old);
	ck_assert_int_eq(tls_http("GET", "/healthz", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	ck_assert(metrics_have("tally_tls_handshakes_total{result=\"failed\"} 1"));
}
END_TEST

START_TEST(a_donation_over_https)
{
	create_food();
	donate(2500);
	/* Captured (mock processor) and counted in the campaign. */
	ck_assert(wait_body("/api/v1/campaigns/food", NULL, "\"total_cents\":2500"));
	ck_assert(wait_body("/api/v1/campaigns/food", NULL, "\"donation_count\":1"));
	/* The API loop saw the client's own address, not the socket pair's. */
	ck_assert(wait_body("/api/v1/admin/audit?limit=5", admin_hdr, "\"admin@127.0.0.1\""));
}
END_TEST

START_TEST(live_over_wss)
{
	struct tconn v;
	char *m;
	int status;

	create_food();
	ck_assert_int_eq(wss_open(&v, &status), 0);
	ck_assert_int_eq(wss_send(&v, "{\"op\":\"subscribe\",\"channel\":\"campaign:food\"}"), 0);
	m = wss_wait_for(&v, "\"type\":\"snapshot\"", 10000);
	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_nonnull(strstr(m, "\"total_cents\":0"));
	free(m);
	/* The viewer is served by the viewers' thread of the front. */
	ck_assert(metrics_have("tally_tls_connections{loop=\"live\"} 1"));
	donate(2500);
	m = wss_wait_for(&v, "\"total_cents\":2500", 10000);
	ck_assert_ptr_nonnull(m);
	free(m);
	tls_close(&v);
}
END_TEST

START_TEST(plain_http_to_the_tls_port_is_refused)
{
	static const char req[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
	struct timespec t0, t1;
	char *got;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	got = itest_raw(srv.port, req, sizeof(req) - 1, 8000);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	ck_assert_ptr_nonnull(got);
	ck_assert_msg(!strncmp(got, "HTTP/1.1 400 Bad Request\r\n", 26), "got: %s", got);
	ck_assert_ptr_nonnull(strstr(got, "\"code\":\"tls_required\""));
	ck_assert_ptr_nonnull(strstr(got, "Connection: close"));
	/* Answered and closed, not left to time out. */
	ck_assert_msg(ms < 4000, "the refusal took %ld ms", ms);
	free(got);
	ck_assert(metrics_have("tally_tls_handshakes_total{result=\"plain_http\"} 1"));
}
END_TEST

START_TEST(a_silent_connection_is_closed)
{
	int fd = itest_conn_open(srv.port);

	ck_assert_int_ge(fd, 0);
	/* No ClientHello: closed after the 5 s handshake limit. */
	ck_assert_int_eq(itest_conn_closed(fd, 10000), 1);
	close(fd);
	ck_assert(metrics_have("tally_tls_handshakes_total{result=\"timed_out\"} 1"));
}
END_TEST

START_TEST(a_slow_head_after_the_handshake_gets_408)
{
	static const char part[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n";
	struct tconn c;
	struct itest_resp r;

	ck_assert_int_eq(tls_dial(srv.port, &c), 0);
	ck_assert_int_eq(tls_send(&c, part, sizeof(part) - 1), 0);
	/* The acceptor's limit for a whole head applies to the plaintext,
	 * and its answer comes back over TLS. */
	ck_assert_int_eq(tls_response_within(&c, &r, 10000), 0); /* after 5 s */
	ck_assert_int_eq(r.status, 408);
	ck_assert_ptr_nonnull(strstr(r.body, "request_timeout"));
	itest_resp_fini(&r);
	tls_close(&c);
}
END_TEST

START_TEST(sigterm_drains_with_tls_connections_open)
{
	struct tconn viewer, idle, part;
	struct itest_resp r;
	struct timespec t0, t1;
	char *m;
	int status, raw, st = -1;
	long ms;

	create_food();
	ck_assert_int_eq(wss_open(&viewer, &status), 0);
	ck_assert_int_eq(wss_send(&viewer, "{\"op\":\"subscribe\",\"channel\":\"campaign:food\"}"),
	                 0);
	m = wss_wait_for(&viewer, "\"type\":\"snapshot\"", 10000);
	ck_assert_ptr_nonnull(m);
	free(m);
	ck_assert_int_eq(tls_dial(srv.port, &idle), 0); /* kept alive, idle */
	ck_assert_int_eq(tls_request(&idle, "GET", "/healthz", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	ck_assert_int_eq(tls_dial(srv.port, &part), 0); /* half a request head */
	ck_assert_int_eq(tls_send(&part, "GET /healthz HTTP/1.1\r\n", 23), 0);
	raw = itest_conn_open(srv.port); /* no handshake yet */
	ck_assert_int_ge(raw, 0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(kill(srv.pid, SIGTERM), 0);
	/* The viewer is told tally stops, over TLS. */
	ck_assert_int_eq(wss_close_code(&viewer, 5000), 1001);
	for (int i = 0; i < 200 && st == -1; i++) {
		if (waitpid(srv.pid, &status, WNOHANG) == srv.pid)
			st = status;
		else
			poll(NULL, 0, 25);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	ck_assert_msg(st != -1, "tally did not exit within 5 s of SIGTERM");
	srv.pid = 0;
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	ck_assert_msg(ms <= 5000, "exit took %ld ms", ms);
	/* Every connection ended: none is left hanging. */
	ck_assert(tls_ended(&idle, 1000));
	ck_assert(tls_ended(&part, 1000));
	ck_assert_int_eq(itest_conn_closed(raw, 1000), 1);
	close(raw);
	tls_close(&viewer);
	tls_close(&idle);
	tls_close(&part);
}
END_TEST

START_TEST(the_client_address_is_carried_to_the_live_loop)
{
	struct tconn v[3];
	char *m;
	int status;

	/* Two websockets per address (loopback counted): the third is
	 * closed 4029, which the live loop can only do if it sees
	 * 127.0.0.1 behind the socket pair. */
	create_food();
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(wss_open(&v[i], &status), 0);
		ck_assert_int_eq(
		    wss_send(&v[i], "{\"op\":\"subscribe\",\"channel\":\"campaign:food\"}"), 0);
		m = wss_wait_for(&v[i], "\"type\":\"snapshot\"", 10000);
		ck_assert_ptr_nonnull(m);
		free(m);
	}
	ck_assert_int_eq(wss_open(&v[2], &status), 0);
	ck_assert_int_eq(wss_close_code(&v[2], 5000), 4029);
	for (int i = 0; i < 3; i++)
		tls_close(&v[i]);
}
END_TEST

/* A viewer that takes nothing: the live loop drops it as on TCP (its
 * socket buffers are as small), and the front lets its connection go
 * once the client has had TLS_DRAIN_MS to take the rest. */
START_TEST(a_viewer_that_takes_nothing_is_dropped_and_freed)
{
	enum { GIFTS = 400 };
	char note[480], body[800], total[64], *m;
	struct tconn slow, watcher, donor;
	struct itest_resp r;
	int status, i;

	create_food();
	next_rcvbuf = 2048;
	ck_assert_int_eq(wss_open(&slow, &status), 0);
	next_rcvbuf = 0;
	ck_assert_int_eq(wss_send(&slow, "{\"op\":\"subscribe\",\"channel\":\"campaign:food\"}"),
	                 0);
	ck_assert_int_eq(wss_open(&watcher, &status), 0);
	ck_assert_int_eq(wss_send(&watcher, "{\"op\":\"subscribe\",\"channel\":\"campaign:food\"}"),
	                 0);
	m = wss_wait_for(&watcher, "\"type\":\"snapshot\"", 10000);
	ck_assert_ptr_nonnull(m);
	free(m);
	/* Gifts with long messages: far more than the buffers hold. */
	memset(note, 'x', sizeof(note) - 1);
	note[sizeof(note) - 1] = '\0';
	snprintf(body, sizeof(body),
	         "{\"amount_cents\":100,\"currency\":\"USD\",\"donor\":{\"name\":\"Slow\","
	         "\"email\":\"slow@example.org\"},\"message\":\"%s\",\"payment_token\":"
	         "\"tok_visa\"}",
	         note);
	ck_assert_int_eq(tls_dial(srv.port, &donor), 0);
	for (i = 0; i < GIFTS && metric("tally_live_dropped_total{reason=\"slow\"} ") < 1; i++) {
		ck_assert_int_eq(
		    tls_request(&donor, "POST", "/api/v1/campaigns/food/donations", NULL, body, &r),
		    0);
		ck_assert_int_eq(r.status, 202);
		itest_resp_fini(&r);
		if (i % 20 == 19) { /* a wave: the watcher keeps up */
			snprintf(total, sizeof(total), "\"total_cents\":%d", (i + 1) * 100);
			m = wss_wait_for(&watcher, total, 10000);
			ck_assert_msg(m != NULL, "the watcher did not see %s", total);
			free(m);
		}
	}
	tls_close(&donor);
	for (int k = 0; k < 50 && metric("tally_live_dropped_total{reason=\"slow\"} ") < 1; k++)
		poll(NULL, 0, 100);
	ck_assert_int_eq(metric("tally_live_dropped_total{reason=\"slow\"} "), 1);
	tls_close(&watcher);
	/* Both viewers' TLS connections go: the watcher's at once, the slow
	 * one's within TLS_DRAIN_MS (10 s). */
	for (int k = 0; k < 150 && metric("tally_tls_connections{loop=\"live\"} ") != 0; k++)
		poll(NULL, 0, 100);
	ck_assert_int_eq(metric("tally_tls_connections{loop=\"live\"} "), 0);
	tls_close(&slow);
}
END_TEST

static void start_limited(void)
{
	char extra[1400];

	make_keys();
	memset(&srv, 0, sizeof(srv));
	snprintf(extra, sizeof(extra),
	         "--tls-cert %s --tls-key %s --rate-limit-loopback --live per-address=2", cert_path,
	         key_path);
	if (itest_start(&srv, extra)) {
		itest_cleanup(&srv);
		ck_abort_msg("tally did not start with TLS");
	}
}

static void start_slow(void)
{
	char extra[1400];

	make_keys();
	memset(&srv, 0, sizeof(srv));
	snprintf(extra, sizeof(extra), "--tls-cert %s --tls-key %s --live slow-s=1,wall-per-s=1000",
	         cert_path, key_path);
	if (itest_start(&srv, extra)) {
		itest_cleanup(&srv);
		ck_abort_msg("tally did not start with TLS");
	}
}

/* ---- start-up refused ---- */

static const char *tally_bin(void)
{
	return getenv("TALLY_BIN") ? getenv("TALLY_BIN") : "./tally";
}

/* Run argv (argv[0] the tally binary) and collect what it says: returns
 * its exit status (-1 when it was still running after 10 s, then
 * killed). */
static int run_argv(const char *const *argv, char *out, size_t cap)
{
	const char *bin = argv[0];
	int pipefd[2], st = -1;
	size_t used = 0;
	pid_t pid;

	ck_assert_int_eq(pipe(pipefd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(pipefd[1], STDERR_FILENO);
		dup2(pipefd[1], STDOUT_FILENO);
		close(pipefd[0]);
		setenv("TALLY_ADMIN_TOKEN", ITEST_TOKEN, 1);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	for (int i = 0, eof = 0; i < 400; i++) { /* 10 s at least */
		struct pollfd pfd = {pipefd[0], POLLIN, 0};
		ssize_t n;

		if (eof) {
			poll(NULL, 0, 25);
		} else if (poll(&pfd, 1, 25) == 1) {
			n = read(pipefd[0], out + used, cap - 1 - used);
			if (n > 0)
				used += (size_t)n;
			else
				eof = 1; /* it exited, or it closed its output */
		}
		if (waitpid(pid, &st, WNOHANG) == pid)
			break;
		st = -1;
	}
	if (st == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	} else {
		ssize_t n;

		while (used < cap - 1 && (n = read(pipefd[0], out + used, cap - 1 - used)) > 0)
			used += (size_t)n;
	}
	out[used] = '\0';
	close(pipefd[0]);
	return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Run tally with args (after --headless --listen --db --assets), as
 * run_argv. */
static int run_tally(const char *const *args, char *out, size_t cap, char *db, size_t dbcap)
{
	const char *argv[24];
	int argc = 0;

	snprintf(db, dbcap, "%s/t.db", dir);
	argv[argc++] = tally_bin();
	argv[argc++] = "--headless";
	argv[argc++] = "--listen";
	argv[argc++] = "127.0.0.1:0";
	argv[argc++] = "--db";
	argv[argc++] = db;
	argv[argc++] = "--assets";
	argv[argc++] = getenv("TALLY_ASSETS") ? getenv("TALLY_ASSETS") : "assets";
	for (int i = 0; args[i] && argc < 23; i++)
		argv[argc++] = args[i];
	argv[argc] = NULL;
	return run_argv(argv, out, cap);
}

enum bad_case {
	BAD_NO_CERT,
	BAD_NO_KEY,
	BAD_GARBAGE_CERT,
	BAD_GARBAGE_KEY,
	BAD_OTHER_KEY,
	BAD_CERT_ONLY,
	BAD_KEY_ONLY,
	BAD_OPEN_KEY,
	BAD_ENCRYPTED_KEY,
	BAD_CERT_IS_DIR,
	BAD_CASES
};

START_TEST(a_bad_certificate_or_key_stops_the_start)
{
	EVP_PKEY *other = new_key();
	char got[4096], path[600], db[600], file[1600], want[1500];
	const char *args[8] = {"--tls-cert", cert_path, "--tls-key", key_path, NULL};
	struct stat st;
	int rc;

	switch ((enum bad_case)_i) {
	case BAD_NO_CERT:
		snprintf(path, sizeof(path), "%s/missing.pem", dir);
		args[1] = path;
		snprintf(want, sizeof(want), "TLS certificate %s: No such file or directory", path);
		break;
	case BAD_NO_KEY:
		snprintf(path, sizeof(path), "%s/missing.pem", dir);
		args[3] = path;
		snprintf(want, sizeof(want), "TLS key %s: No such file or directory", path);
		break;
	case BAD_GARBAGE_CERT:
		write_text("garbage.pem", "this is not a certificate\n", 0644, path, sizeof(path));
		args[1] = path;
		snprintf(want, sizeof(want), "TLS certificate %s: no PEM certificate in it", path);
		break;
	case BAD_GARBAGE_KEY:
		write_text("garbage.pem",
		           "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", 0600,
		           path, sizeof(path));
		args[3] = path;
		snprintf(want, sizeof(want), "TLS key %s: no PEM private key in it", path);
		break;
	case BAD_OTHER_KEY:
		write_pem("other.pem", NULL, other, NULL, 0600, path, sizeof(path));
		args[3] = path;
		snprintf(want, sizeof(want), "TLS key %s does not match the certificate %s", path,
		         cert_path);
		break;
	case BAD_CERT_ONLY:
		args[2] = NULL;
		snprintf(want, sizeof(want), "--tls-cert without --tls-key");
		break;
	case BAD_KEY_ONLY:
		args[0] = "--tls-key";
		args[1] = key_path;
		args[2] = NULL;
		snprintf(want, sizeof(want), "--tls-key without --tls-cert");
		break;
	case BAD_OPEN_KEY:
		ck_assert_int_eq(chmod(key_path, 0644), 0);
		snprintf(want, sizeof(want),
		         "TLS key %s is open to group or others (mode 0644): anyone who reads it "
		         "can pose as this server. Refusing to start; run 'chmod 600 %s'",
		         key_path, key_path);
		break;
	case BAD_ENCRYPTED_KEY:
		write_pem("enc.pem", NULL, other, "passphrase", 0600, path, sizeof(path));
		args[3] = path;
		snprintf(want, sizeof(want), "TLS key %s is protected by a passphrase", path);
		break;
	case BAD_CERT_IS_DIR:
		args[1] = dir;
		snprintf(want, sizeof(want), "TLS certificate %s is not a regular file", dir);
		break;
	case BAD_CASES:
		break;
	}
	EVP_PKEY_free(other);
	rc = run_tally(args, got, sizeof(got), db, sizeof(db));
	ck_assert_msg(rc == 1, "case %d: exit %d, said: %s", _i, rc, got);
	snprintf(file, sizeof(file), "tally: %s", want);
	ck_assert_msg(strstr(got, file), "case %d: wanted \"%s\", got: %s", _i, file, got);
	/* One line, and nothing was opened or served. */
	ck_assert_msg(strchr(got, '\n') == got + strlen(got) - 1, "case %d: more than a line: %s",
	              _i, got);
	ck_assert_ptr_null(strstr(got, "serving"));
	ck_assert_int_eq(stat(db, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(an_expired_certificate_starts_with_a_warning)
{
	EVP_PKEY *k = new_key();
	X509 *x = self_signed(k, 1);
	char extra[1400], line[1024];
	FILE *f;
	int warned = 0;

	write_pem("old.pem", x, NULL, NULL, 0644, cert_path, sizeof(cert_path));
	write_pem("oldkey.pem", NULL, k, NULL, 0600, key_path, sizeof(key_path));
	X509_free(x);
	EVP_PKEY_free(k);
	memset(&srv, 0, sizeof(srv));
	snprintf(extra, sizeof(extra), "--tls-cert %s --tls-key %s", cert_path, key_path);
	ck_assert_int_eq(itest_start(&srv, extra), 0);
	f = fopen(srv.log, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		warned |= strstr(line, "\"tls.cert_expired\"") != NULL;
	fclose(f);
	ck_assert(warned);
}
END_TEST

static void make_keys_only(void)
{
	make_keys();
	memset(&srv, 0, sizeof(srv));
}

/* ---- tally console --connect https:// ---- */

/* The remote console's source for url, trusting ca_file (NULL: the
 * system's CAs), its reader started. */
static struct remote *remote_open(const char *url, const char *ca_file, struct console_source *src)
{
	struct remote *r;
	char err[512];

	ck_assert_msg(remote_new(url, ITEST_TOKEN, ca_file, &r, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(remote_start(r), 0);
	remote_source(r, src);
	return r;
}

/* What the console would show, fetched until done(m) or 10 s: 1 when
 * done came true (m then holds that model), else 0 (m the last one). */
static int remote_until(struct console_source *src, struct console_model *m,
                        int (*done)(const struct console_model *, const void *), const void *arg)
{
	for (int i = 0; i < 200 * itest_slowdown(); i++) {
		ck_assert_int_eq(src->fetch(src->ctx, m), 0);
		if (done(m, arg))
			return 1;
		poll(NULL, 0, 50);
	}
	return 0;
}

/* Connected, with campaign arg's status "active" or "paused" as wanted. */
static int shows_campaign(const struct console_model *m, const void *arg)
{
	const char *const *want = arg; /* slug, status */

	for (size_t i = 0; m->connected && i < m->n_campaigns; i++)
		if (!strcmp(m->campaigns[i].slug, want[0]) &&
		    !strcmp(m->campaigns[i].status, want[1]))
			return 1;
	return 0;
}

/* Not connected, the reconnect line holding arg. */
static int says(const struct console_model *m, const void *arg)
{
	return !m->connected && strstr(m->error, arg) && !strncmp(m->error, "reconnecting (", 14);
}

START_TEST(a_remote_console_over_https_with_its_ca_file)
{
	struct console_model *m = calloc(1, sizeof(*m));
	struct console_source src;
	struct remote *r;
	struct itest_resp resp;
	const char *active[] = {"food", "active"}, *paused[] = {"food", "paused"};
	char url[64];

	ck_assert_ptr_nonnull(m);
	create_food();
	snprintf(url, sizeof(url), "https://127.0.0.1:%d", srv.port);
	r = remote_open(url, cert_path, &src);
	ck_assert_msg(remote_until(&src, m, shows_campaign, active), "not connected: %s", m->error);
	ck_assert_str_eq(m->server, url);
	ck_assert_str_eq(m->error, "");
	/* An action: the admin API through libcurl, trusting the same file. */
	ck_assert_msg(src.set_paused(src.ctx, "food", 1) == 0, "pause: %s",
	              src.errtext(src.ctx, -EIO) ? src.errtext(src.ctx, -EIO) : "?");
	ck_assert_msg(remote_until(&src, m, shows_campaign, paused), "no pause seen: %s", m->error);
	ck_assert_int_eq(tls_http("GET", "/api/v1/campaigns/food", NULL, NULL, &resp), 0);
	ck_assert_ptr_nonnull(strstr(resp.body, "\"status\":\"paused\""));
	itest_resp_fini(&resp);
	remote_free(r);
	console_model_fini(m);
	free(m);
}
END_TEST

START_TEST(a_remote_console_without_the_ca_file_is_not_trusted)
{
	struct console_model *m = calloc(1, sizeof(*m));
	struct console_source src;
	struct remote *r;
	const char *e;
	char url[64];
	int rc;

	ck_assert_ptr_nonnull(m);
	create_food();
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", srv.port);
	r = remote_open(url, NULL, &src);
	ck_assert_msg(
	    remote_until(&src, m, says,
	                 "certificate not trusted: self-signed certificate (use --ca-file)"),
	    "said: %s", m->error);
	ck_assert_int_eq(m->n_campaigns, 0);
	/* An action is refused the same way, with curl's words. */
	rc = src.set_paused(src.ctx, "food", 1);
	ck_assert_int_ne(rc, 0);
	e = src.errtext(src.ctx, rc);
	ck_assert_msg(e && strstr(e, "certificate"), "action said: %s", e ? e : "(nothing)");
	remote_free(r);
	console_model_fini(m);
	free(m);
}
END_TEST

/* A certificate for another name: refused, though it is trusted. */
START_TEST(a_certificate_for_another_name_is_refused)
{
	struct console_model *m = calloc(1, sizeof(*m));
	struct console_source src;
	struct remote *r;
	EVP_PKEY *k = new_key();
	X509 *x = self_signed_for(k, 0, "DNS:tally.example");
	char url[64], extra[1400];

	ck_assert_ptr_nonnull(m);
	write_pem("other-cert.pem", x, NULL, NULL, 0644, cert_path, sizeof(cert_path));
	write_pem("other-key.pem", NULL, k, NULL, 0600, key_path, sizeof(key_path));
	X509_free(x);
	EVP_PKEY_free(k);
	snprintf(extra, sizeof(extra), "--tls-cert %s --tls-key %s", cert_path, key_path);
	ck_assert_int_eq(itest_start(&srv, extra), 0);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d", srv.port);
	r = remote_open(url, cert_path, &src);
	ck_assert_msg(
	    remote_until(&src, m, says, "certificate is not for 127.0.0.1: IP address mismatch"),
	    "said: %s", m->error);
	remote_free(r);
	console_model_fini(m);
	free(m);
}
END_TEST

START_TEST(https_to_a_plain_http_server_says_why)
{
	struct console_model *m = calloc(1, sizeof(*m));
	struct console_source src;
	struct remote *r;
	char url[64], want[96];

	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(itest_start(&srv, NULL), 0);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d", srv.port);
	snprintf(want, sizeof(want), "no TLS answer from 127.0.0.1:%d in ", srv.port);
	r = remote_open(url, cert_path, &src);
	ck_assert_msg(remote_until(&src, m, says, want), "said: %s", m->error);
	ck_assert_ptr_nonnull(strstr(m->error, "is it an http:// server?"));
	remote_free(r);
	console_model_fini(m);
	free(m);
}
END_TEST

enum bad_connect {
	BADC_SCHEME,
	BADC_NO_CA_FILE,
	BADC_CA_FILE_IS_DIR,
	BADC_GARBAGE_CA_FILE,
	BADC_CA_FILE_WITH_HTTP,
	BADC_CASES
};

START_TEST(a_bad_url_or_ca_file_stops_the_console)
{
	const char *argv[] = {tally_bin(), "console", "--connect", "https://127.0.0.1:9",
	                      "--ca-file", cert_path, NULL};
	char got[4096], path[600], want[1500], line[1600];
	int rc;

	switch ((enum bad_connect)_i) {
	case BADC_SCHEME:
		argv[3] = "ftp://127.0.0.1:9";
		argv[4] = NULL;
		snprintf(want, sizeof(want),
		         "--connect takes http://HOST:PORT or https://HOST:PORT (got "
		         "'ftp://127.0.0.1:9')");
		break;
	case BADC_NO_CA_FILE:
		snprintf(path, sizeof(path), "%s/missing.pem", dir);
		argv[5] = path;
		snprintf(want, sizeof(want), "--ca-file %s: No such file or directory", path);
		break;
	case BADC_CA_FILE_IS_DIR:
		argv[5] = dir;
		snprintf(want, sizeof(want), "--ca-file %s: not a regular file", dir);
		break;
	case BADC_GARBAGE_CA_FILE:
		write_text("garbage.pem", "this is not a certificate\n", 0644, path, sizeof(path));
		argv[5] = path;
		snprintf(want, sizeof(want), "--ca-file %s: no PEM certificate in it", path);
		break;
	case BADC_CA_FILE_WITH_HTTP:
		argv[3] = "http://127.0.0.1:9";
		snprintf(want, sizeof(want),
		         "--ca-file is for an https:// server (got 'http://127.0.0.1:9')");
		break;
	case BADC_CASES:
		break;
	}
	rc = run_argv(argv, got, sizeof(got));
	ck_assert_msg(rc == 1, "case %d: exit %d, said: %s", _i, rc, got);
	snprintf(line, sizeof(line), "tally console: %s", want);
	ck_assert_msg(!strncmp(got, line, strlen(line)), "case %d: wanted \"%s\", got: %s", _i,
	              line, got);
	ck_assert_msg(strchr(got, '\n') == got + strlen(got) - 1, "case %d: more than a line: %s",
	              _i, got);
}
END_TEST

/* The same in a real terminal: tests/tally_tmux.sh in its tls mode. */
START_TEST(the_console_over_https_in_tmux)
{
	char cmd[1024];
	int st;

	snprintf(cmd, sizeof(cmd), "bash tests/tally_tmux.sh '%s' '%s' tls", tally_bin(),
	         getenv("TALLY_ASSETS") ? getenv("TALLY_ASSETS") : "assets");
	st = system(cmd);
	ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "'%s' failed (status %d)",
	              cmd, st);
}
END_TEST

Suite *tls_suite(void)
{
	Suite *s = suite_create("tls");
	TCase *tc = tcase_create("serving");
	TCase *lim = tcase_create("per-address");
	TCase *slowc = tcase_create("slow-reader");
	TCase *bad = tcase_create("start-up");
	TCase *term = tcase_create("console-in-tmux");

	tcase_add_checked_fixture(tc, start, stop);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, pages_and_the_api_over_https);
	tcase_add_test(tc, bodies_and_half_closes);
	tcase_add_test(tc, tls_before_1_2_is_refused);
	tcase_add_test(tc, a_donation_over_https);
	tcase_add_test(tc, live_over_wss);
	tcase_add_test(tc, plain_http_to_the_tls_port_is_refused);
	tcase_add_test(tc, a_silent_connection_is_closed);
	tcase_add_test(tc, a_slow_head_after_the_handshake_gets_408);
	tcase_add_test(tc, sigterm_drains_with_tls_connections_open);
	tcase_add_test(tc, a_remote_console_over_https_with_its_ca_file);
	tcase_add_test(tc, a_remote_console_without_the_ca_file_is_not_trusted);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(lim, start_limited, stop);
	tcase_add_checked_fixture(slowc, start_slow, stop);
	tcase_set_timeout(slowc, 60);
	tcase_add_test(slowc, a_viewer_that_takes_nothing_is_dropped_and_freed);
	suite_add_tcase(s, slowc);
	tcase_set_timeout(lim, 30);
	tcase_add_test(lim, the_client_address_is_carried_to_the_live_loop);
	suite_add_tcase(s, lim);

	tcase_add_checked_fixture(bad, make_keys_only, stop);
	tcase_set_timeout(bad, 30);
	tcase_add_loop_test(bad, a_bad_certificate_or_key_stops_the_start, 0, BAD_CASES);
	tcase_add_test(bad, an_expired_certificate_starts_with_a_warning);
	tcase_add_test(bad, https_to_a_plain_http_server_says_why);
	tcase_add_test(bad, a_certificate_for_another_name_is_refused);
	tcase_add_loop_test(bad, a_bad_url_or_ca_file_stops_the_console, 0, BADC_CASES);
	suite_add_tcase(s, bad);

	tcase_set_timeout(term, 60);
	tcase_add_test(term, the_console_over_https_in_tmux);
	suite_add_tcase(s, term);
	return s;
}
