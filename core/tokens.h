/* core/tokens.h - staff tokens: their secrets, their hashes, and the table
 * that tells who a bearer is from memory (see tokens.c).
 */
#ifndef TALLY_CORE_TOKENS_H
#define TALLY_CORE_TOKENS_H

#include "base/model.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#define TOKENS_SECRET_PREFIX "tly_"
/* The startup token's name (in the audit: admin@ADDRESS). Reserved: no
 * stored token may take it, in any case. */
#define TOKENS_STARTUP_NAME "admin"

/* A new secret: "tly_" and 32 bytes of getrandom() in base64url, into out
 * (at least TALLY_STAFF_SECRET_SIZE bytes). Returns 0 or -errno. */
int tokens_secret_new(char *out, size_t cap);

/* The SHA-256 of secret[0..len) (OpenSSL's EVP) as 64 lower-case hex digits
 * into hex (TALLY_STAFF_HASH_SIZE bytes). Returns 0 or -EIO. */
int tokens_hash_hex(const char *secret, size_t len, char *hex);

/* 1 when name is the startup token's, in any case. */
int tokens_name_reserved(const char *name);

struct tokens;

/* An empty table. Returns 0 or -ENOMEM. */
int tokens_new(struct tokens **out);
void tokens_free(struct tokens *t);

/* Make secret the startup token: an admin named TOKENS_STARTUP_NAME, kept
 * in memory only. Before the table is shared. Returns 0, -EINVAL for an
 * empty secret, -EIO or -ENOMEM. */
int tokens_set_startup(struct tokens *t, const char *secret);

/* Replace the stored tokens in the table by those db holds now (the
 * startup token stays). The caller serialises db's use. Returns 0 or a
 * negative errno (the table is left as it was). */
int tokens_load(struct tokens *t, sqlite3 *db);

/* A token was added (committed): put it in the table with the hash of its
 * secret (hex, as stored). Returns 0, -EINVAL (a bad hash) or -ENOMEM. */
int tokens_add(struct tokens *t, const struct staff_token *tok, const char *hash);

/* Token name was revoked (committed) at `at`. */
void tokens_revoke(struct tokens *t, const char *name, int64_t at);

/* Who bearer[0..len) is: its SHA-256 compared with every valid token's,
 * each comparison in constant time (CRYPTO_memcmp). Returns 0 with *out,
 * or -ENOENT (unknown or revoked; *out is then role STAFF_PUBLIC, name "").
 * Any thread. */
int tokens_auth(struct tokens *t, const char *bearer, size_t len, struct staff_identity *out);

/* Token name (without regard to case) into *out. Returns 0 or -ENOENT. */
int tokens_find(struct tokens *t, const char *name, struct staff_token *out);

/* Copy every token, the startup one first, then in the order they were
 * added, into a malloc'd array (the caller frees it). Returns the count or
 * -ENOMEM. */
long tokens_list(struct tokens *t, struct staff_token **out);

#endif
