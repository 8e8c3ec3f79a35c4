/* core/idem.c - chained hash table plus an age-ordered list.
 *
 * DESIGN: clients choose the keys, so the table must not let them choose
 * the buckets. Each table hashes with SipHash under 128 random bits of its
 * own (util_hash_keyed): keys built to collide under a public hash (they
 * were, under unseeded FNV-1a, and cut every client's throughput) spread
 * like any others, and without the secret nobody can tell which keys
 * would collide. The table has a bucket per 0.8 entries of its cap, so a
 * chain is about one entry long; IDEM_CHAIN_MAX bounds it anyway, and with
 * it the work of every lookup under the lock. A new key whose chain is
 * full evicts the chain's oldest finished entry (its answer is still in
 * SQLite, which answers the key from then on, as for any key that left
 * memory), or, if every entry there is still in flight, is refused with
 * -EAGAIN (the caller answers 503 overloaded with Retry-After): in-flight
 * entries are what stop a double click, so they are never dropped.
 */
#include "core/idem.h"
#include "base/util.h"

#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define IDEM_INLINE_BODY 320 /* a donation's 202 body fits: no second malloc */

struct idem {
	struct idem *next;          /* hash chain, oldest first */
	struct idem *older, *newer; /* age list (insertion order) */
	uint64_t fp;
	int64_t at_ms;
	int done;
	char *body; /* body_inline, or malloc'd when longer */
	size_t body_len;
	char body_inline[IDEM_INLINE_BODY];
	char key[];
};

struct idem_table {
	pthread_mutex_t lock;
	struct util_hash_key seed; /* secret: the buckets cannot be aimed at */
	struct idem **buckets;     /* n_buckets chains of at most IDEM_CHAIN_MAX */
	size_t mask;               /* n_buckets - 1 (a power of two) */
	struct idem *oldest, *newest;
	size_t count, cap;
	int64_t window_ms;
};

int idem_new(size_t cap, int64_t window_ms, struct idem_table **out)
{
	struct util_hash_key seed;
	int rc = util_hash_key_random(&seed);

	*out = NULL;
	if (rc)
		return rc;
	return idem_new_seeded(cap, window_ms, &seed, out);
}

int idem_new_seeded(size_t cap, int64_t window_ms, const struct util_hash_key *seed,
                    struct idem_table **out)
{
	struct idem_table *t = calloc(1, sizeof(*t));
	size_t n = 16;

	*out = NULL;
	if (!t)
		return -ENOMEM;
	while (n < cap + cap / 4 && n < ((size_t)1 << 30))
		n *= 2;
	t->buckets = calloc(n, sizeof(*t->buckets));
	if (!t->buckets || pthread_mutex_init(&t->lock, NULL)) {
		free(t->buckets);
		free(t);
		return -ENOMEM;
	}
	t->seed = *seed;
	t->mask = n - 1;
	t->cap = cap;
	t->window_ms = window_ms;
	*out = t;
	return 0;
}

static struct idem **bucket(struct idem_table *t, const char *key)
{
	return &t->buckets[util_hash_keyed(&t->seed, key, strlen(key)) & t->mask];
}

/* The link that points at key's entry, or the chain's empty end; *len (if
 * given) is how many entries it passed. At most IDEM_CHAIN_MAX steps. */
static struct idem **slot_len(struct idem_table *t, const char *key, int *len)
{
	struct idem **pp = bucket(t, key);
	int n = 0;

	while (*pp && strcmp((*pp)->key, key)) {
		pp = &(*pp)->next;
		n++;
	}
	if (len)
		*len = n;
	return pp;
}

static struct idem **slot(struct idem_table *t, const char *key)
{
	return slot_len(t, key, NULL);
}

static void unlink_entry(struct idem_table *t, struct idem **pp)
{
	struct idem *x = *pp;

	*pp = x->next;
	if (x->older)
		x->older->newer = x->newer;
	else
		t->oldest = x->newer;
	if (x->newer)
		x->newer->older = x->older;
	else
		t->newest = x->older;
	t->count--;
	if (x->body != x->body_inline)
		free(x->body);
	free(x);
}

static void prune(struct idem_table *t, int64_t now_ms)
{
	struct idem *x = t->oldest;

	while (x) {
		struct idem *newer = x->newer;

		if (t->count <= t->cap && x->at_ms >= now_ms - t->window_ms)
			break;
		if (x->done) /* in-flight entries stay until finished */
			unlink_entry(t, slot(t, x->key));
		x = newer;
	}
}

int idem_begin(struct idem_table *t, const char *key, uint64_t fp, int64_t now_ms,
               struct buf *replay, enum idem_result *out)
{
	struct idem **pp, *x;
	size_t klen = strlen(key);
	int rc = 0, len;

	pthread_mutex_lock(&t->lock);
	prune(t, now_ms);
	pp = slot_len(t, key, &len);
	if ((x = *pp)) {
		if (x->fp != fp)
			*out = IDEM_REUSED;
		else if (!x->done)
			*out = IDEM_IN_FLIGHT;
		else if (buf_append(replay, x->body, x->body_len))
			rc = -ENOMEM;
		else
			*out = IDEM_REPLAY;
		pthread_mutex_unlock(&t->lock);
		return rc;
	}
	if (len >= IDEM_CHAIN_MAX) {
		/* Full chain: make room by its oldest finished entry. */
		struct idem **old = bucket(t, key);

		while (*old && !(*old)->done)
			old = &(*old)->next;
		if (!*old) {
			pthread_mutex_unlock(&t->lock);
			return -EAGAIN;
		}
		unlink_entry(t, old);
		pp = slot(t, key); /* the chain's end moved if it was the last */
	}
	x = malloc(sizeof(*x) + klen + 1);
	if (!x) {
		pthread_mutex_unlock(&t->lock);
		return -ENOMEM;
	}
	memset(x, 0, offsetof(struct idem, body_inline));
	memcpy(x->key, key, klen + 1);
	x->fp = fp;
	x->at_ms = now_ms;
	*pp = x;
	x->older = t->newest;
	if (t->newest)
		t->newest->newer = x;
	else
		t->oldest = x;
	t->newest = x;
	t->count++;
	pthread_mutex_unlock(&t->lock);
	*out = IDEM_NEW;
	return 0;
}

void idem_finish(struct idem_table *t, const char *key, uint64_t fp, const char *body, size_t len)
{
	struct idem *x;

	pthread_mutex_lock(&t->lock);
	x = *slot(t, key);
	if (x) {
		char *copy = len < sizeof(x->body_inline) ? x->body_inline : malloc(len + 1);

		if (copy) {
			memcpy(copy, body, len);
			copy[len] = '\0';
			if (x->body && x->body != x->body_inline)
				free(x->body);
			x->body = copy;
			x->body_len = len;
			x->fp = fp;
			x->done = 1;
		} else {
			/* Without the body the entry cannot answer: let the database. */
			unlink_entry(t, slot(t, key));
		}
	}
	pthread_mutex_unlock(&t->lock);
}

void idem_abort(struct idem_table *t, const char *key)
{
	struct idem **pp;

	pthread_mutex_lock(&t->lock);
	pp = slot(t, key);
	if (*pp)
		unlink_entry(t, pp);
	pthread_mutex_unlock(&t->lock);
}

size_t idem_longest_chain(struct idem_table *t)
{
	size_t longest = 0;

	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i <= t->mask; i++) {
		size_t n = 0;

		for (const struct idem *x = t->buckets[i]; x; x = x->next)
			n++;
		if (n > longest)
			longest = n;
	}
	pthread_mutex_unlock(&t->lock);
	return longest;
}

size_t idem_count(struct idem_table *t)
{
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = t->count;
	pthread_mutex_unlock(&t->lock);
	return n;
}

void idem_free(struct idem_table *t)
{
	if (!t)
		return;
	while (t->oldest)
		unlink_entry(t, slot(t, t->oldest->key));
	pthread_mutex_destroy(&t->lock);
	free(t->buckets);
	free(t);
}
