/* tui/remote_conn.h - the remote console's connection to its server:
 * plain TCP for http://, TLS for https:// (see remote_conn.c).
 */
#ifndef TALLY_TUI_REMOTE_CONN_H
#define TALLY_TUI_REMOTE_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ssl_st; /* OpenSSL's SSL */
struct remote_tls;

/* One connection, owned by the thread that opened it. */
struct remote_conn {
	int fd;             /* non-blocking; -1 when closed */
	struct ssl_st *ssl; /* NULL for plain TCP */
};

/* The client's TLS settings: TLS 1.2 or later, the server's certificate
 * verified against the PEM certificates in ca_file, or the system's CAs
 * when ca_file is NULL. ca_file is read at once (a regular file of at
 * most 1 MiB holding at least one certificate). Returns 0, or a negative
 * errno with one line in err naming the file. Read-only afterwards: any
 * thread may open connections with it. */
int remote_tls_new(const char *ca_file, struct remote_tls **out, char *err, size_t errcap);

void remote_tls_free(struct remote_tls *t);

/* Connect c to host:port, each step within timeout_ms; with tls, shake
 * hands and verify the certificate for host (a DNS name, sent as SNI, or
 * an IP address). Returns 0, or -1 with c closed and why saying what went
 * wrong in words for the console's banner ("certificate not trusted:
 * ..."). */
int remote_conn_open(struct remote_conn *c, const char *host, const char *port,
                     struct remote_tls *tls, int timeout_ms, char *why, size_t cap);

/* Write all n bytes of b before deadline_ms (monotonic). Returns 0 or -1. */
int remote_conn_send(struct remote_conn *c, const void *b, size_t n, int64_t deadline_ms);

/* Read at most cap bytes into b, waiting for them at most wait_ms.
 * Returns the count (> 0), 0 when nothing came in time, or -1 when the
 * connection ended or failed (why says which). */
ssize_t remote_conn_recv(struct remote_conn *c, void *b, size_t cap, int wait_ms, char *why,
                         size_t whycap);

/* Close c (no close_notify: the websocket's close came first, or the
 * connection is being dropped). Safe on a closed c. */
void remote_conn_close(struct remote_conn *c);

#endif
