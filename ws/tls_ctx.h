/* ws/tls_ctx.h - the server's TLS certificate, key and settings, loaded
 * and checked once at start (see tls_ctx.c).
 */
#ifndef TALLY_WS_TLS_CTX_H
#define TALLY_WS_TLS_CTX_H

#include <stddef.h>

struct ssl_ctx_st; /* OpenSSL's SSL_CTX */
struct tls_ctx;

/* Load the PEM certificate (the server's first, then any intermediates)
 * from cert_path and its unencrypted PEM private key from key_path, and
 * check them: each a readable regular file of at most 1 MiB, the key not
 * open to group or others (mode 0600, as the admin token), a certificate
 * and a key in them, and the key the certificate's. Returns 0, or a
 * negative errno with one line in err naming the file and what is wrong.
 * Call before any thread uses the result; read-only afterwards. */
int tls_ctx_new(const char *cert_path, const char *key_path, struct tls_ctx **out, char *err,
                size_t errcap);

/* The OpenSSL context to make connections from (any thread: OpenSSL locks
 * what it shares). Owned by c. */
struct ssl_ctx_st *tls_ctx_ssl(const struct tls_ctx *c);

/* The certificate's subject and expiry as text, for the start-up log. */
const char *tls_ctx_subject(const struct tls_ctx *c);
const char *tls_ctx_not_after(const struct tls_ctx *c);

/* 1 when the certificate has expired (clients will refuse it). */
int tls_ctx_expired(const struct tls_ctx *c);

void tls_ctx_free(struct tls_ctx *c);

#endif
