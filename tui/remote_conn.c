/* tui/remote_conn.c - the remote console's connection: TCP, or TLS over it.
 *
 * DESIGN: the reader thread (tui/remote.c) opens, reads, writes and
 * closes one connection at a time through these calls; nothing else
 * touches it, so the SSL object needs no lock. The socket is
 * non-blocking: every OpenSSL call that says SSL_ERROR_WANT_READ or
 * _WANT_WRITE is repeated (with the same arguments) once poll() says the
 * socket is ready that way, within the caller's deadline. The TLS
 * settings (struct remote_tls) are made once at start-up, where a bad
 * --ca-file is found and said in one line: TLS 1.2 or later, the peer's
 * certificate verified against --ca-file's certificates (read into
 * memory, so what was checked is what is used) or the system's CAs, and
 * the host name checked (SNI plus a DNS name, or an IP address). There is
 * no way to skip verification. When the handshake fails, the reason is
 * put in words for the banner: which check failed on the certificate, or
 * that no TLS answered (an http:// server), or what OpenSSL said.
 * Unexpected EOF reads as the end of the server's data, as with plain
 * TCP: the websocket framing says whether a message is whole.
 */
#include "tui/remote_conn.h"
#include "base/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define CA_FILE_MAX (1024 * 1024) /* a --ca-file at most */

struct remote_tls {
	SSL_CTX *ctx;
	int ca_given; /* 1: --ca-file, 0: the system's CAs */
};

static int64_t mono_ms(void)
{
	return (int64_t)(util_mono_ns() / 1000000u);
}

/* OpenSSL's reason for its last error, or dflt; empties its queue. */
static const char *ssl_reason(const char *dflt)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r ? r : dflt;
}

/* path's bytes, NUL-ended, into a malloc'd *out. Returns 0 or -errno
 * with err set. */
static int read_ca_file(const char *path, char **out, size_t *len, char *err, size_t errcap)
{
	struct stat st;
	size_t got = 0;
	char *b;
	int fd, rc;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st)) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		snprintf(err, errcap, "--ca-file %s: %s", path, strerror(-rc));
		return rc;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > CA_FILE_MAX) {
		close(fd);
		snprintf(err, errcap, "--ca-file %s: %s", path,
		         S_ISREG(st.st_mode) ? "larger than 1 MiB, not a PEM file"
		                             : "not a regular file");
		return -EINVAL;
	}
	b = malloc((size_t)st.st_size + 1);
	if (!b) {
		close(fd);
		snprintf(err, errcap, "--ca-file %s: out of memory", path);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, b + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != (size_t)st.st_size) {
		free(b);
		snprintf(err, errcap, "--ca-file %s: cannot read it all", path);
		return -EIO;
	}
	b[got] = '\0';
	*out = b;
	*len = got;
	return 0;
}

/* Trust the PEM certificates of path (at least one) in ctx. */
static int load_ca_file(SSL_CTX *ctx, const char *path, char *err, size_t errcap)
{
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	char *pem;
	size_t len = 0;
	BIO *bio;
	X509 *x;
	int n = 0, rc = read_ca_file(path, &pem, &len, err, errcap);

	if (rc)
		return rc;
	if (len > INT_MAX || !(bio = BIO_new_mem_buf(pem, (int)len))) {
		free(pem);
		snprintf(err, errcap, "--ca-file %s: out of memory", path);
		return -ENOMEM;
	}
	ERR_clear_error();
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		int ok = X509_STORE_add_cert(store, x) == 1;

		X509_free(x);
		if (!ok) {
			snprintf(err, errcap, "--ca-file %s: a certificate cannot be used (%s)",
			         path, ssl_reason("refused"));
			rc = -EINVAL;
			goto out;
		}
		n++;
	}
	/* The end of the file reads as "no start line"; anything else is a
	 * broken certificate. */
	if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE || !n) {
		snprintf(err, errcap, "--ca-file %s: %s (%s)", path,
		         n ? "a certificate in it cannot be read" : "no PEM certificate in it",
		         ssl_reason("unreadable"));
		rc = -EINVAL;
		goto out;
	}
	ERR_clear_error();
out:
	BIO_free(bio);
	free(pem);
	return rc;
}

int remote_tls_new(const char *ca_file, struct remote_tls **out, char *err, size_t errcap)
{
	struct remote_tls *t = calloc(1, sizeof(*t));
	int rc = 0;

	*out = NULL;
	if (!t) {
		snprintf(err, errcap, "TLS: out of memory");
		return -ENOMEM;
	}
	ERR_clear_error();
	t->ctx = SSL_CTX_new(TLS_client_method());
	if (!t->ctx) {
		snprintf(err, errcap, "TLS: cannot set up OpenSSL: %s", ssl_reason("no context"));
		rc = -ENOMEM;
		goto fail;
	}
	if (SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION) != 1) {
		snprintf(err, errcap, "TLS: OpenSSL refuses TLS 1.2 as the lowest version: %s",
		         ssl_reason("unknown"));
		rc = -EINVAL;
		goto fail;
	}
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_options(t->ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	                                SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(t->ctx,
	                 SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	t->ca_given = ca_file != NULL;
	if (ca_file) {
		rc = load_ca_file(t->ctx, ca_file, err, errcap);
		if (rc)
			goto fail;
	} else if (SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
		snprintf(err, errcap,
		         "TLS: cannot load the system's CA certificates (%s); give --ca-file",
		         ssl_reason("unknown"));
		rc = -EINVAL;
		goto fail;
	}
	*out = t;
	return 0;
fail:
	remote_tls_free(t);
	return rc;
}

void remote_tls_free(struct remote_tls *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

/* Wait until fd is ready for events, or deadline. Returns 0 when ready,
 * -1 on timeout or failure. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		int64_t left = deadline - mono_ms();
		int n;

		if (left <= 0)
			return -1;
		n = poll(&p, 1, (int)(left > INT_MAX ? INT_MAX : left));
		if (n > 0)
			return 0;
		if (n == 0 || errno != EINTR)
			return -1;
	}
}

/* TCP to host:port within timeout_ms. Returns the fd or -1 (why says). */
static int dial(const char *host, const char *port, int timeout_ms, char *why, size_t cap)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	int fd = -1, rc = getaddrinfo(host, port, &hints, &res);

	if (rc) {
		snprintf(why, cap, "cannot resolve %s: %s", host, gai_strerror(rc));
		return -1;
	}
	snprintf(why, cap, "cannot connect");
	for (ai = res; ai && fd < 0; ai = ai->ai_next) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		            ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS) {
			snprintf(why, cap, "cannot connect: %s", strerror(errno));
			close(fd);
			fd = -1;
			continue;
		}
		if (wait_fd(fd, POLLOUT, mono_ms() + timeout_ms) ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) || soerr) {
			snprintf(why, cap, "cannot connect: %s",
			         soerr ? strerror(soerr) : "timed out");
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	return fd;
}

/* 1 when host is an IPv4 or IPv6 address, not a name. */
static int is_ip(const char *host)
{
	unsigned char a[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* Why the handshake of ssl failed (err: SSL_get_error's), in words. */
static void handshake_why(struct remote_tls *t, SSL *ssl, int err, const char *host,
                          const char *port, char *why, size_t cap)
{
	long v = SSL_get_verify_result(ssl);
	unsigned long e = ERR_peek_last_error();

	if (v != X509_V_OK) {
		const char *what = X509_verify_cert_error_string(v);

		switch (v) {
		case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
		case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
		case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		case X509_V_ERR_CERT_UNTRUSTED:
			snprintf(why, cap, "certificate not trusted: %s (%s)", what,
			         t->ca_given ? "not signed by a --ca-file certificate"
			                     : "use --ca-file");
			break;
		case X509_V_ERR_HOSTNAME_MISMATCH:
		case X509_V_ERR_IP_ADDRESS_MISMATCH:
			snprintf(why, cap, "certificate is not for %s: %s", host, what);
			break;
		default:
			snprintf(why, cap, "certificate refused: %s", what);
		}
	} else if (err == SSL_ERROR_SSL && ERR_GET_LIB(e) == ERR_LIB_SSL &&
	           (ERR_GET_REASON(e) == SSL_R_WRONG_VERSION_NUMBER ||
	            ERR_GET_REASON(e) == SSL_R_PACKET_LENGTH_TOO_LONG)) {
		snprintf(why, cap, "no TLS on %s:%s (%s): is it an http:// server?", host, port,
		         ERR_reason_error_string(e));
	} else if (err == SSL_ERROR_SSL) {
		snprintf(why, cap, "TLS handshake failed: %s",
		         e ? ERR_reason_error_string(e) : "unknown");
	} else {
		snprintf(why, cap, "the server closed the connection in the TLS handshake%s%s",
		         err == SSL_ERROR_SYSCALL && errno ? ": " : "",
		         err == SSL_ERROR_SYSCALL && errno ? strerror(errno) : "");
	}
	ERR_clear_error();
}

/* Shake hands on c->fd as a client of host before deadline. */
static int tls_open(struct remote_conn *c, struct remote_tls *t, const char *host, const char *port,
                    int64_t deadline, char *why, size_t cap)
{
	int64_t start = mono_ms();

	ERR_clear_error();
	c->ssl = SSL_new(t->ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
		snprintf(why, cap, "TLS: cannot set up the connection: %s",
		         ssl_reason("no memory"));
		return -1;
	}
	SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (is_ip(host)
	        ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host) != 1
	        : SSL_set_tlsext_host_name(c->ssl, host) != 1 || SSL_set1_host(c->ssl, host) != 1) {
		snprintf(why, cap, "TLS: cannot check the name %s: %s", host,
		         ssl_reason("refused"));
		return -1;
	}
	for (;;) {
		int rc, e;

		ERR_clear_error();
		errno = 0;
		rc = SSL_connect(c->ssl);
		if (rc == 1)
			break;
		e = SSL_get_error(c->ssl, rc);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
			handshake_why(t, c->ssl, e, host, port, why, cap);
			return -1;
		}
		if (wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
			/* A plain HTTP server waits for the rest of a request
			 * that is not coming. */
			snprintf(why, cap,
			         "no TLS answer from %s:%s in %lld s: is it an http:// server?",
			         host, port, (long long)((deadline - start + 500) / 1000));
			return -1;
		}
	}
	/* SSL_VERIFY_PEER fails the handshake on a bad certificate; this
	 * states the rule where it is relied on. */
	if (SSL_get_verify_result(c->ssl) != X509_V_OK || !SSL_get0_peer_certificate(c->ssl)) {
		snprintf(why, cap, "certificate refused");
		return -1;
	}
	return 0;
}

int remote_conn_open(struct remote_conn *c, const char *host, const char *port,
                     struct remote_tls *tls, int timeout_ms, char *why, size_t cap)
{
	int64_t deadline;

	c->ssl = NULL;
	c->fd = dial(host, port, timeout_ms, why, cap);
	if (c->fd < 0)
		return -1;
	deadline = mono_ms() + timeout_ms;
	if (tls && tls_open(c, tls, host, port, deadline, why, cap)) {
		remote_conn_close(c);
		return -1;
	}
	return 0;
}

int remote_conn_send(struct remote_conn *c, const void *b, size_t n, int64_t deadline_ms)
{
	const char *p = b;

	while (n) {
		short wait_for = POLLOUT;

		if (c->ssl) {
			int k, e;

			ERR_clear_error();
			k = SSL_write(c->ssl, p, n > INT_MAX ? INT_MAX : (int)n);
			if (k > 0) {
				p += k;
				n -= (size_t)k;
				continue;
			}
			e = SSL_get_error(c->ssl, k);
			ERR_clear_error();
			if (e == SSL_ERROR_WANT_READ)
				wait_for = POLLIN;
			else if (e != SSL_ERROR_WANT_WRITE)
				return -1;
		} else {
			ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);

			if (k > 0) {
				p += k;
				n -= (size_t)k;
				continue;
			}
			if (k < 0 && errno == EINTR)
				continue;
			if (k == 0 || errno != EAGAIN)
				return -1;
		}
		if (wait_fd(c->fd, wait_for, deadline_ms))
			return -1;
	}
	return 0;
}

ssize_t remote_conn_recv(struct remote_conn *c, void *b, size_t cap, int wait_ms, char *why,
                         size_t whycap)
{
	int waited = 0;

	for (;;) {
		short wait_for = POLLIN;
		struct pollfd p;
		int n;

		if (c->ssl) {
			int k, e;

			ERR_clear_error();
			errno = 0;
			k = SSL_read(c->ssl, b, cap > INT_MAX ? INT_MAX : (int)cap);
			if (k > 0)
				return k;
			e = SSL_get_error(c->ssl, k);
			if (e == SSL_ERROR_WANT_WRITE) {
				wait_for = POLLOUT;
			} else if (e != SSL_ERROR_WANT_READ) {
				if (e == SSL_ERROR_ZERO_RETURN ||
				    (e == SSL_ERROR_SYSCALL && !errno))
					snprintf(why, whycap, "the server closed the connection");
				else if (e == SSL_ERROR_SYSCALL)
					snprintf(why, whycap, "%s", strerror(errno));
				else
					snprintf(why, whycap, "TLS: %s",
					         ssl_reason("broken record"));
				ERR_clear_error();
				return -1;
			}
		} else {
			ssize_t k = recv(c->fd, b, cap, 0);

			if (k > 0)
				return k;
			if (k == 0) {
				snprintf(why, whycap, "the server closed the connection");
				return -1;
			}
			if (errno != EAGAIN && errno != EINTR) {
				snprintf(why, whycap, "%s", strerror(errno));
				return -1;
			}
		}
		if (waited)
			return 0;
		p = (struct pollfd){.fd = c->fd, .events = wait_for};
		n = poll(&p, 1, wait_ms);
		if (n < 0 && errno != EINTR) {
			snprintf(why, whycap, "%s", strerror(errno));
			return -1;
		}
		if (n <= 0)
			return 0;
		waited = 1;
	}
}

void remote_conn_close(struct remote_conn *c)
{
	SSL_free(c->ssl);
	c->ssl = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}
