/* ws/tls_pump.c - one TLS connection's bytes, both ways.
 *
 * DESIGN: two directions, each a step at a time, each stopping when its
 * far side takes no more, so that backpressure reaches the other end as
 * on TCP: the client's records are read (SSL_read) only while the
 * plaintext socket took everything so far; the plaintext is read only
 * while OpenSSL sent everything so far. What a side did not take waits in
 * a buffer of the connection's own (to_app, to_net), allocated only while
 * it holds bytes, and is offered again first; a write OpenSSL could not
 * finish is retried with the same bytes (SSL_MODE_ACCEPT_MOVING_WRITE_
 * BUFFER lets them move from the caller's scratch into to_net). The
 * client's end of data is passed on as a half close (shutdown SHUT_WR);
 * when the plaintext side closes, what it wrote last is sent, then
 * close_notify. If nobody reads the plaintext any more, the client's
 * bytes are dropped. tls_pump_events says what each socket waits for,
 * for a level-triggered epoll: nothing at all for a socket that has
 * nothing to do (a hung-up socket in the set would wake the loop for
 * ever).
 */
#include "ws/tls_pump.h"
#include "base/log.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

static void pend_drop(struct tls_pend *pd)
{
	free(pd->p);
	pd->p = NULL;
	pd->off = pd->len = 0;
}

/* Keep b[0..n) (n <= TLS_PUMP_CHUNK) until a side takes it. Returns 0 or
 * -1. */
static int pend_keep(struct tls_pend *pd, const unsigned char *b, size_t n)
{
	if (!pd->p && !(pd->p = malloc(TLS_PUMP_CHUNK)))
		return -1;
	memmove(pd->p, b, n);
	pd->off = 0;
	pd->len = n;
	return 0;
}

/* 0 when OpenSSL waits for the client's socket (*want says which way), -1
 * when the connection is over. */
static int ssl_wait(struct tls_pump *p, int r, enum tls_want *want)
{
	unsigned long e;

	switch (SSL_get_error(p->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		*want = TLS_WANT_IN;
		return 0;
	case SSL_ERROR_WANT_WRITE:
		*want = TLS_WANT_OUT;
		return 0;
	default:
		e = ERR_peek_last_error();
		log_msg(LOG_DEBUG, "tls.closed", "%s",
		        e && ERR_reason_error_string(e) ? ERR_reason_error_string(e)
		                                        : strerror(errno));
		ERR_clear_error();
		return -1;
	}
}

/* Nobody reads the plaintext any more: drop the client's bytes. */
static void app_gone(struct tls_pump *p)
{
	p->in_eof = 1;
	pend_drop(&p->to_app);
}

int tls_pump_in(struct tls_pump *p, unsigned char *scratch, size_t *fresh)
{
	ssize_t w;
	int n;

	*fresh = 0;
	if (p->to_app.p) {
		w = send(p->app, p->to_app.p + p->to_app.off, p->to_app.len - p->to_app.off,
		         MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			app_gone(p);
			return 1;
		}
		p->to_app.off += (size_t)w;
		if (p->to_app.off == p->to_app.len)
			pend_drop(&p->to_app);
		return 1;
	}
	if (p->in_eof)
		return 0;
	ERR_clear_error();
	n = SSL_read(p->ssl, scratch, TLS_PUMP_CHUNK);
	if (n <= 0) {
		if (SSL_get_error(p->ssl, n) == SSL_ERROR_ZERO_RETURN) {
			/* close_notify, or the end of the stream (read as one,
			 * see tls_ctx.c): the plaintext side sees a FIN. */
			ERR_clear_error();
			p->in_eof = 1;
			if (shutdown(p->app, SHUT_WR))
				log_msg(LOG_DEBUG, "tls.shutdown_failed", "%s", strerror(errno));
			return 1;
		}
		return ssl_wait(p, n, &p->rd_want);
	}
	*fresh = (size_t)n;
	w = send(p->app, scratch, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (w < 0 && errno != EAGAIN && errno != EINTR) {
		app_gone(p);
		return 1;
	}
	if (w < 0)
		w = 0;
	if (w < n && pend_keep(&p->to_app, scratch + w, (size_t)(n - w)))
		return -1;
	return 1;
}

int tls_pump_out(struct tls_pump *p, unsigned char *scratch)
{
	ssize_t n;
	int w;

	if (p->to_net.p) {
		ERR_clear_error();
		w = SSL_write(p->ssl, p->to_net.p + p->to_net.off,
		              (int)(p->to_net.len - p->to_net.off));
		if (w <= 0)
			return ssl_wait(p, w, &p->wr_want);
		p->to_net.off += (size_t)w;
		if (p->to_net.off == p->to_net.len)
			pend_drop(&p->to_net);
		return 1;
	}
	if (p->out_eof) {
		if (p->shut)
			return 0;
		ERR_clear_error();
		w = SSL_shutdown(p->ssl);
		if (w < 0)
			return ssl_wait(p, w, &p->wr_want);
		p->shut = 1;
		return 1;
	}
	n = recv(p->app, scratch, TLS_PUMP_CHUNK, MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (n == 0) {
		p->out_eof = 1;
		return 1;
	}
	ERR_clear_error();
	w = SSL_write(p->ssl, scratch, (int)n);
	if (w == n)
		return 1;
	if (w > 0)
		return pend_keep(&p->to_net, scratch + w, (size_t)(n - w)) ? -1 : 1;
	/* Nothing went: the same bytes are written again once the socket
	 * takes them. */
	if (ssl_wait(p, w, &p->wr_want) || pend_keep(&p->to_net, scratch, (size_t)n))
		return -1;
	return 1;
}

void tls_pump_events(const struct tls_pump *p, uint32_t *net, uint32_t *app)
{
	uint32_t ne = 0, ae = 0;

	if (!p->in_eof && !p->to_app.p)
		ne |= p->rd_want == TLS_WANT_OUT ? EPOLLOUT : EPOLLIN;
	if (p->to_net.p || p->out_eof)
		ne |= p->wr_want == TLS_WANT_IN ? EPOLLIN : EPOLLOUT;
	if (p->to_app.p)
		ae |= EPOLLOUT;
	if (!p->out_eof && !p->to_net.p)
		ae |= EPOLLIN;
	else if (!p->out_eof && !p->app_hup)
		ae |= EPOLLRDHUP; /* notice the plaintext side hanging up meanwhile */
	*net = ne;
	*app = ae;
}

void tls_pump_fini(struct tls_pump *p)
{
	pend_drop(&p->to_app);
	pend_drop(&p->to_net);
}
