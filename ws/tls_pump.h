/* ws/tls_pump.h - one TLS connection's bytes, both ways: the client's
 * records decrypted into the plaintext socket, the plaintext encrypted to
 * the client (see tls_pump.c). No threads and no epoll: the TLS front
 * (ws/tls.c) steps it when a socket is ready and asks what to wait for.
 * ws/ only.
 */
#ifndef TALLY_WS_TLS_PUMP_H
#define TALLY_WS_TLS_PUMP_H

#include <stddef.h>
#include <stdint.h>

#define TLS_PUMP_CHUNK 16384 /* plaintext moved per read: a record's worth */

struct ssl_st; /* OpenSSL's SSL */

enum tls_want { TLS_WANT_IN, TLS_WANT_OUT }; /* what OpenSSL waits for */

/* Bytes that wait for a side to take them; p is NULL when none. */
struct tls_pend {
	unsigned char *p; /* TLS_PUMP_CHUNK bytes, taken only while bytes wait */
	size_t off, len;
};

/* Zero it, then set ssl (past its handshake), net and app. The caller
 * owns ssl and the sockets; tls_pump_fini frees what waits. */
struct tls_pump {
	struct ssl_st *ssl;
	int net;              /* the client's socket: records */
	int app;              /* our end of the socket pair: plaintext */
	unsigned in_eof : 1;  /* no more from the client (or nobody reads it) */
	unsigned out_eof : 1; /* the plaintext side closed: close_notify is due */
	unsigned shut : 1;    /* close_notify sent: the connection is done */
	unsigned app_hup : 1; /* the plaintext side hung up while the client did
	                       * not read (set by the caller, who sees epoll's
	                       * events): no more waiting for that */
	enum tls_want rd_want, wr_want;
	struct tls_pend to_app, to_net;
};

/* One step from the client to the plaintext side, into scratch
 * (TLS_PUMP_CHUNK bytes). Returns 1 when bytes moved (*fresh: how many
 * were just decrypted, at the start of scratch; 0 when none), 0 when
 * blocked, -1 when the connection is over (an error, a reset, an alert,
 * no memory). The client's end of data (close_notify, or the end of the
 * stream) is passed on as a half close. */
int tls_pump_in(struct tls_pump *p, unsigned char *scratch, size_t *fresh);

/* One step from the plaintext side to the client, through scratch.
 * Returns as tls_pump_in; once the plaintext side has closed and all is
 * sent, sends close_notify and sets shut. */
int tls_pump_out(struct tls_pump *p, unsigned char *scratch);

/* The epoll events each socket waits for now (0: none). */
void tls_pump_events(const struct tls_pump *p, uint32_t *net, uint32_t *app);

/* Free the bytes that wait (not the SSL, not the sockets). */
void tls_pump_fini(struct tls_pump *p);

#endif
