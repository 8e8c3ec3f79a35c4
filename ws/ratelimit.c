/* ws/ratelimit.c - token buckets in an open-addressing table. A full
 * neighbourhood evicts its longest-idle client: a forgotten client starts
 * again with a full bucket, which only ever errs towards letting through. */
#include "ws/ratelimit.h"
#include "base/util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PROBES 8

struct bucket {
	char client[48];
	double tokens;
	uint64_t last_ns;
};

struct ratelimit {
	double rate, burst;
	size_t cap; /* power of two */
	struct bucket *v;
};

int ratelimit_new(double rate, double burst, size_t max_clients, struct ratelimit **out)
{
	struct ratelimit *r;

	*out = NULL;
	if (rate <= 0 || burst < 1)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->rate = rate;
	r->burst = burst;
	r->cap = 64;
	while (r->cap < max_clients)
		r->cap <<= 1;
	r->v = calloc(r->cap, sizeof(*r->v));
	if (!r->v) {
		free(r);
		return -ENOMEM;
	}
	*out = r;
	return 0;
}

void ratelimit_free(struct ratelimit *r)
{
	if (!r)
		return;
	free(r->v);
	free(r);
}

int ratelimit_take(struct ratelimit *r, const char *client, uint64_t now_ns)
{
	size_t mask = r->cap - 1, i = (size_t)util_hash(client, strlen(client)) & mask;
	struct bucket *b = NULL, *idlest = NULL;

	for (size_t k = 0; k < PROBES; k++) {
		struct bucket *x = &r->v[(i + k) & mask];

		if (!strcmp(x->client, client)) {
			b = x;
			break;
		}
		/* Prefer a free slot, else the client idle the longest. */
		if (!idlest || (!x->client[0] && idlest->client[0]) ||
		    (x->client[0] && idlest->client[0] && x->last_ns < idlest->last_ns))
			idlest = x;
	}
	if (!b) {
		b = idlest;
		memset(b, 0, sizeof(*b));
		strncpy(b->client, client, sizeof(b->client) - 1);
		b->tokens = r->burst;
		b->last_ns = now_ns;
	}
	if (now_ns > b->last_ns) {
		b->tokens += (double)(now_ns - b->last_ns) / 1e9 * r->rate;
		if (b->tokens > r->burst)
			b->tokens = r->burst;
		b->last_ns = now_ns;
	}
	if (b->tokens >= 1) {
		b->tokens -= 1;
		return 0;
	}
	return (int)ceil((1 - b->tokens) / r->rate);
}
