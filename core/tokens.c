/* core/tokens.c - staff tokens: their secrets, and the table that tells who
 * a bearer is from memory.
 *
 * DESIGN: a staff token is a name, a role and the SHA-256 of its secret.
 * The secret ("tly_" and 32 random bytes in base64url) is shown once and
 * kept nowhere. The table holds the startup token (TALLY_ADMIN_TOKEN or
 * the token file, an admin named "admin", memory only) and every stored
 * token, revoked ones too, for the listings. A bearer is hashed once and
 * compared with the hash of every valid token, each comparison with
 * CRYPTO_memcmp and none cut short, so the time says nothing about how
 * much of a hash matched. After open, only the writer thread changes the
 * table: a token change that committed, or the whole table read again
 * after another process (tally token) changed the database. The table's
 * lock is a leaf: nothing is called with it held.
 */
#include "core/tokens.h"
#include "base/log.h"
#include "base/util.h"
#include "db/db.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HASH_BYTES 32

struct entry {
	struct staff_token t;
	unsigned char hash[HASH_BYTES];
};

struct tokens {
	pthread_mutex_t lock; /* guards everything below */
	struct entry *v;      /* the startup token first, when there is one */
	size_t n, cap;
};

int tokens_secret_new(char *out, size_t cap)
{
	static const char b64url[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char raw[33]; /* 32 random bytes and a zero: 11 groups of 3 */
	size_t o = sizeof(TOKENS_SECRET_PREFIX) - 1;
	int rc;

	if (cap < TALLY_STAFF_SECRET_SIZE)
		return -ENOSPC;
	rc = util_random(raw, 32);
	if (rc)
		return rc;
	raw[32] = 0;
	memcpy(out, TOKENS_SECRET_PREFIX, o);
	for (size_t i = 0; i < sizeof(raw); i += 3) {
		uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];

		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
		out[o++] = b64url[(v >> 6) & 63];
		out[o++] = b64url[v & 63];
	}
	/* 44 digits for 33 bytes; the last stands for the padding zero only. */
	o--;
	out[o] = '\0';
	OPENSSL_cleanse(raw, sizeof(raw));
	return o == TALLY_STAFF_SECRET_LEN ? 0 : -EINVAL;
}

static int sha256(const char *s, size_t len, unsigned char out[HASH_BYTES])
{
	unsigned int n = 0;

	if (EVP_Digest(s, len, out, &n, EVP_sha256(), NULL) != 1 || n != HASH_BYTES)
		return -EIO;
	return 0;
}

int tokens_hash_hex(const char *secret, size_t len, char *hex)
{
	unsigned char h[HASH_BYTES];
	int rc = sha256(secret, len, h);

	if (rc)
		return rc;
	for (size_t i = 0; i < HASH_BYTES; i++)
		snprintf(hex + 2 * i, 3, "%02x", h[i]);
	return 0;
}

/* 64 hex digits into out; -EINVAL for anything else. */
static int unhex(const char *hex, unsigned char out[HASH_BYTES])
{
	if (strlen(hex) != 2 * HASH_BYTES)
		return -EINVAL;
	for (size_t i = 0; i < HASH_BYTES; i++) {
		unsigned v = 0;

		for (int k = 0; k < 2; k++) {
			char c = hex[2 * i + (size_t)k];

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v |= (unsigned)(c - 'a' + 10);
			else
				return -EINVAL;
		}
		out[i] = (unsigned char)v;
	}
	return 0;
}

int tokens_name_reserved(const char *name)
{
	return !strcasecmp(name, TOKENS_STARTUP_NAME);
}

int tokens_new(struct tokens **out)
{
	struct tokens *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (!t)
		return -ENOMEM;
	if (pthread_mutex_init(&t->lock, NULL)) {
		free(t);
		return -ENOMEM;
	}
	*out = t;
	return 0;
}

void tokens_free(struct tokens *t)
{
	if (!t)
		return;
	if (t->v)
		OPENSSL_cleanse(t->v, t->cap * sizeof(*t->v));
	free(t->v);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* Room for one more entry in v (n used of *cap). Returns 0 or -ENOMEM. */
static int grow(struct entry **v, size_t n, size_t *cap)
{
	struct entry *nv;
	size_t ncap;

	if (n < *cap)
		return 0;
	ncap = *cap ? 2 * *cap : 16;
	nv = realloc(*v, ncap * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = ncap;
	return 0;
}

int tokens_set_startup(struct tokens *t, const char *secret)
{
	struct entry e = {0};
	int rc;

	if (!secret || !*secret)
		return -EINVAL;
	rc = sha256(secret, strlen(secret), e.hash);
	if (rc)
		return rc;
	snprintf(e.t.name, sizeof(e.t.name), "%s", TOKENS_STARTUP_NAME);
	e.t.role = STAFF_ADMIN;
	e.t.startup = 1;
	pthread_mutex_lock(&t->lock);
	rc = grow(&t->v, t->n, &t->cap);
	if (!rc) {
		memmove(t->v + 1, t->v, t->n * sizeof(*t->v));
		t->v[0] = e;
		t->n++;
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

/* What tokens_load reads, before it is swapped in. */
struct loaded {
	struct entry *v;
	size_t n, cap;
	size_t skipped;
};

static int load_cb(void *ud, const struct staff_token *tok, const char *hash)
{
	struct loaded *l = ud;
	struct entry *e;

	if (tokens_name_reserved(tok->name)) {
		l->skipped++; /* put there by hand: the startup token is the admin */
		return 0;
	}
	if (grow(&l->v, l->n, &l->cap))
		return -ENOMEM;
	e = &l->v[l->n];
	memset(e, 0, sizeof(*e));
	e->t = *tok;
	e->t.startup = 0;
	if (unhex(hash, e->hash)) {
		l->skipped++;
		return 0;
	}
	l->n++;
	return 0;
}

int tokens_load(struct tokens *t, sqlite3 *db)
{
	struct loaded l = {NULL, 0, 0, 0};
	struct entry *old;
	size_t old_cap;
	int rc;

	/* Room for the startup token in front. */
	if (grow(&l.v, 0, &l.cap))
		return -ENOMEM;
	l.n = 1;
	rc = db_list_tokens(db, load_cb, &l);
	if (rc) {
		free(l.v);
		return rc < 0 ? rc : -EIO;
	}
	if (l.skipped)
		log_msg(LOG_WARN, "tokens.rows_skipped",
		        "%zu stored staff tokens skipped: the startup token's name, or a hash "
		        "that is not 64 hex digits",
		        l.skipped);
	pthread_mutex_lock(&t->lock);
	if (t->n && t->v[0].t.startup)
		l.v[0] = t->v[0];
	else
		memmove(l.v, l.v + 1, --l.n * sizeof(*l.v));
	old = t->v;
	old_cap = t->cap;
	t->v = l.v;
	t->n = l.n;
	t->cap = l.cap;
	pthread_mutex_unlock(&t->lock);
	if (old)
		OPENSSL_cleanse(old, old_cap * sizeof(*old));
	free(old);
	return 0;
}

/* The entry named name (without regard to case), or NULL. Lock held. */
static struct entry *find(struct tokens *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcasecmp(t->v[i].t.name, name))
			return &t->v[i];
	return NULL;
}

int tokens_add(struct tokens *t, const struct staff_token *tok, const char *hash)
{
	struct entry e = {0}, *at;
	int rc;

	e.t = *tok;
	e.t.startup = 0;
	if (unhex(hash, e.hash))
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	at = find(t, tok->name);
	if (at && !at->t.startup) {
		*at = e; /* read back by a reload already */
		rc = 0;
	} else {
		rc = grow(&t->v, t->n, &t->cap);
		if (!rc)
			t->v[t->n++] = e;
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

void tokens_revoke(struct tokens *t, const char *name, int64_t at)
{
	struct entry *e;

	pthread_mutex_lock(&t->lock);
	e = find(t, name);
	if (e && !e->t.startup && !e->t.revoked_at)
		e->t.revoked_at = at;
	pthread_mutex_unlock(&t->lock);
}

int tokens_auth(struct tokens *t, const char *bearer, size_t len, struct staff_identity *out)
{
	unsigned char h[HASH_BYTES];
	const struct entry *hit = NULL;

	out->name[0] = '\0';
	out->role = STAFF_PUBLIC;
	if (!len || sha256(bearer, len, h))
		return -ENOENT;
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->n; i++) {
		const struct entry *e = &t->v[i];
		int same = CRYPTO_memcmp(h, e->hash, HASH_BYTES) == 0;

		if (same && !e->t.revoked_at)
			hit = e;
	}
	if (hit) {
		memcpy(out->name, hit->t.name, sizeof(out->name));
		out->role = hit->t.role;
	}
	pthread_mutex_unlock(&t->lock);
	OPENSSL_cleanse(h, sizeof(h));
	return hit ? 0 : -ENOENT;
}

int tokens_find(struct tokens *t, const char *name, struct staff_token *out)
{
	struct entry *e;

	pthread_mutex_lock(&t->lock);
	e = find(t, name);
	if (e)
		*out = e->t;
	pthread_mutex_unlock(&t->lock);
	return e ? 0 : -ENOENT;
}

long tokens_list(struct tokens *t, struct staff_token **out)
{
	struct staff_token *v;
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = t->n;
	v = malloc((n ? n : 1) * sizeof(*v));
	if (v)
		for (size_t i = 0; i < n; i++)
			v[i] = t->v[i].t;
	pthread_mutex_unlock(&t->lock);
	*out = v;
	return v ? (long)n : -ENOMEM;
}
