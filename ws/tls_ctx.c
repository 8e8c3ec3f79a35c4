/* ws/tls_ctx.c - the server's certificate and key, and the TLS settings.
 *
 * DESIGN: whatever is wrong with --tls-cert and --tls-key is found here,
 * at start, before anything is served, and said in one line that names the
 * file. Each file is opened once, checked (a regular file; the key not
 * open to group or others, as ssh refuses such a key and tally the admin
 * token) and read into memory, and the PEM is parsed from that copy, so
 * what was checked is what is used. The PEM reader gets a passphrase
 * callback that refuses, so an encrypted key is an error, never a prompt
 * on the terminal. The key's copy is wiped before it is freed.
 * Settings: TLS 1.2 and 1.3 only; for TLS 1.2 only AEAD suites with
 * forward secrecy (ECDHE with AES-GCM or ChaCha20-Poly1305), in the
 * server's order of preference; no compression (CRIME), no
 * renegotiation; unexpected EOF read as the end of the client's data,
 * as with plain TCP (the HTTP framing says whether a request is whole);
 * record buffers released while a connection is idle (measured: an idle
 * viewer's TLS state is 16 KiB with them released, 26 KiB without).
 */
#include "ws/tls_ctx.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TLS_PEM_MAX (1024 * 1024) /* a PEM file at most */
#define TLS12_CIPHERS                                                                              \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

struct tls_ctx {
	SSL_CTX *ssl;
	char subject[256];
	char not_after[64];
	int expired;
};

__attribute__((format(printf, 4, 5))) static int fail(int rc, char *err, size_t errcap,
                                                      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errcap, fmt, ap); /* a long path may be cut short */
	va_end(ap);
	return rc;
}

/* OpenSSL's reason for its last error, or dflt; empties its queue. */
static const char *ssl_reason(const char *dflt)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r ? r : dflt;
}

/* A passphrase is never asked for. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* Read the file at path (what: "TLS certificate" or "TLS key") into a
 * NUL-ended malloc'd buffer. secret: refuse a file open to group or
 * others. Returns 0 or -errno with err set. */
static int read_pem(const char *what, const char *path, int secret, char **out, size_t *len,
                    char *err, size_t errcap)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd, rc;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		return fail(rc, err, errcap, "%s %s: %s", what, path, strerror(-rc));
	}
	if (fstat(fd, &st)) {
		rc = -errno;
		close(fd);
		return fail(rc, err, errcap, "%s %s: %s", what, path, strerror(-rc));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fail(-EINVAL, err, errcap, "%s %s is not a regular file", what, path);
	}
	if (secret && (st.st_mode & (S_IRWXG | S_IRWXO))) {
		close(fd);
		return fail(-EPERM, err, errcap,
		            "%s %s is open to group or others (mode %04o): anyone who reads it "
		            "can pose as this server. Refusing to start; run 'chmod 600 %s'",
		            what, path, (unsigned)(st.st_mode & 07777), path);
	}
	if (st.st_size > TLS_PEM_MAX) {
		close(fd);
		return fail(-EFBIG, err, errcap, "%s %s is larger than 1 MiB: not a PEM file", what,
		            path);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return fail(-ENOMEM, err, errcap, "%s %s: out of memory", what, path);
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	rc = got == (size_t)st.st_size ? 0 : -EIO;
	close(fd);
	if (rc) {
		OPENSSL_clear_free(buf, (size_t)st.st_size + 1);
		return fail(rc, err, errcap, "%s %s: cannot read it all", what, path);
	}
	buf[got] = '\0';
	if (!got) {
		free(buf);
		return fail(-EINVAL, err, errcap, "%s %s is empty", what, path);
	}
	*out = buf;
	*len = got;
	return 0;
}

/* The certificate and its chain from path into ctx. */
static int load_cert(struct tls_ctx *c, const char *path, char *err, size_t errcap)
{
	char *pem;
	size_t len;
	BIO *bio;
	X509 *x, *extra;
	int rc = read_pem("TLS certificate", path, 0, &pem, &len, err, errcap);

	if (rc)
		return rc;
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio) {
		free(pem);
		return fail(-ENOMEM, err, errcap, "TLS certificate %s: out of memory", path);
	}
	ERR_clear_error();
	x = PEM_read_bio_X509_AUX(bio, NULL, no_passphrase, NULL);
	if (!x) {
		rc = fail(-EINVAL, err, errcap, "TLS certificate %s: no PEM certificate in it (%s)",
		          path, ssl_reason("unreadable"));
		goto out;
	}
	if (SSL_CTX_use_certificate(c->ssl, x) != 1) {
		rc = fail(-EINVAL, err, errcap, "TLS certificate %s cannot be used: %s", path,
		          ssl_reason("refused"));
		goto out;
	}
	X509_NAME_oneline(X509_get_subject_name(x), c->subject, sizeof(c->subject));
	{
		BIO *mb = BIO_new(BIO_s_mem());
		int n = 0;

		if (mb && ASN1_TIME_print(mb, X509_get0_notAfter(x)) == 1)
			n = BIO_read(mb, c->not_after, (int)sizeof(c->not_after) - 1);
		c->not_after[n > 0 ? n : 0] = '\0';
		BIO_free(mb);
	}
	c->expired = X509_cmp_current_time(X509_get0_notAfter(x)) < 0;
	/* Intermediates, if any, follow the server's certificate. */
	while ((extra = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL))) {
		if (SSL_CTX_add0_chain_cert(c->ssl, extra) != 1) {
			X509_free(extra);
			rc = fail(-EINVAL, err, errcap,
			          "TLS certificate %s: a chain certificate "
			          "cannot be used (%s)",
			          path, ssl_reason("refused"));
			goto out;
		}
	}
	ERR_clear_error(); /* the end of the file reads as "no start line" */
out:
	X509_free(x);
	BIO_free(bio);
	free(pem);
	return rc;
}

/* The private key from path into ctx, after the certificate from
 * cert_path. */
static int load_key(struct tls_ctx *c, const char *path, const char *cert_path, char *err,
                    size_t errcap)
{
	char *pem;
	size_t len;
	BIO *bio;
	EVP_PKEY *k = NULL;
	int rc = read_pem("TLS key", path, 1, &pem, &len, err, errcap);

	if (rc)
		return rc;
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio) {
		rc = fail(-ENOMEM, err, errcap, "TLS key %s: out of memory", path);
		goto out;
	}
	ERR_clear_error();
	k = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	if (!k) {
		if (strstr(pem, "ENCRYPTED"))
			rc = fail(-EINVAL, err, errcap,
			          "TLS key %s is protected by a passphrase: tally needs it "
			          "unencrypted (and mode 0600)",
			          path);
		else
			rc = fail(-EINVAL, err, errcap, "TLS key %s: no PEM private key in it (%s)",
			          path, ssl_reason("unreadable"));
		ERR_clear_error();
		goto out;
	}
	if (X509_check_private_key(SSL_CTX_get0_certificate(c->ssl), k) != 1) {
		ERR_clear_error();
		rc = fail(-EINVAL, err, errcap, "TLS key %s does not match the certificate %s",
		          path, cert_path);
		goto out;
	}
	if (SSL_CTX_use_PrivateKey(c->ssl, k) != 1) {
		rc = fail(-EINVAL, err, errcap, "TLS key %s cannot be used: %s", path,
		          ssl_reason("refused"));
		goto out;
	}
out:
	EVP_PKEY_free(k);
	BIO_free(bio);
	OPENSSL_clear_free(pem, len + 1);
	return rc;
}

int tls_ctx_new(const char *cert_path, const char *key_path, struct tls_ctx **out, char *err,
                size_t errcap)
{
	struct tls_ctx *c = calloc(1, sizeof(*c));
	int rc;

	*out = NULL;
	if (!c)
		return fail(-ENOMEM, err, errcap, "TLS: out of memory");
	ERR_clear_error();
	c->ssl = SSL_CTX_new(TLS_server_method());
	if (!c->ssl) {
		rc = fail(-ENOMEM, err, errcap, "TLS: cannot set up OpenSSL: %s",
		          ssl_reason("no context"));
		goto fail;
	}
	if (SSL_CTX_set_min_proto_version(c->ssl, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(c->ssl, TLS12_CIPHERS) != 1) {
		rc = fail(-EINVAL, err, errcap, "TLS: OpenSSL refuses tally's settings: %s",
		          ssl_reason("unknown"));
		goto fail;
	}
	SSL_CTX_set_options(c->ssl, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	                                SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
	                             SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_default_passwd_cb(c->ssl, no_passphrase);
	rc = load_cert(c, cert_path, err, errcap);
	if (!rc)
		rc = load_key(c, key_path, cert_path, err, errcap);
	if (rc)
		goto fail;
	ERR_clear_error();
	if (SSL_CTX_check_private_key(c->ssl) != 1) {
		ERR_clear_error();
		rc = fail(-EINVAL, err, errcap, "TLS key %s does not match the certificate %s",
		          key_path, cert_path);
		goto fail;
	}
	*out = c;
	return 0;
fail:
	tls_ctx_free(c);
	return rc;
}

struct ssl_ctx_st *tls_ctx_ssl(const struct tls_ctx *c)
{
	return c->ssl;
}

const char *tls_ctx_subject(const struct tls_ctx *c)
{
	return c->subject;
}

const char *tls_ctx_not_after(const struct tls_ctx *c)
{
	return c->not_after;
}

int tls_ctx_expired(const struct tls_ctx *c)
{
	return c->expired;
}

void tls_ctx_free(struct tls_ctx *c)
{
	if (!c)
		return;
	SSL_CTX_free(c->ssl);
	free(c);
}
