/* core/idem.c - chained hash table plus an age-ordered list. */
#include "core/idem.h"
#include "base/util.h"

#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define IDEM_BUCKETS (1u << 18) /* cap 200,000: chains stay short */
#define IDEM_INLINE_BODY 320    /* a donation's 202 body fits: no second malloc */

struct idem {
	struct idem *next;          /* hash chain */
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
	struct idem *buckets[IDEM_BUCKETS];
	struct idem *oldest, *newest;
	size_t count, cap;
	int64_t window_ms;
};

int idem_new(size_t cap, int64_t window_ms, struct idem_table **out)
{
	struct idem_table *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (!t)
		return -ENOMEM;
	if (pthread_mutex_init(&t->lock, NULL)) {
		free(t);
		return -ENOMEM;
	}
	t->cap = cap;
	t->window_ms = window_ms;
	*out = t;
	return 0;
}

static struct idem **slot(struct idem_table *t, const char *key)
{
	struct idem **pp = &t->buckets[util_hash(key, strlen(key)) & (IDEM_BUCKETS - 1)];

	while (*pp && strcmp((*pp)->key, key))
		pp = &(*pp)->next;
	return pp;
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
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	prune(t, now_ms);
	pp = slot(t, key);
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
	free(t);
}
