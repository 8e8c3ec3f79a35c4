/* core/match.c - the match book.
 *
 * DESIGN: a gift's match is decided on the writer thread just before the
 * gift is stored (the writer's prepare hook, core/commit.c), so gifts draw
 * from a pool in the one total order of everything tally records: earlier
 * gifts are matched first, and a pool never promises more than it has
 * (reserved + used <= amount, always). The reservation is stored with the
 * gift (donations.pool_id, matched_cents) in the same transaction. It
 * becomes used money when the capture succeeds, goes back when the gift
 * fails, is discarded or is not stored after all, and a refund gives it
 * back while the pool is open (db/store.c decides that in the same
 * UPDATE that records the refund, and the book follows).
 *
 * Which pool: the oldest (lowest id) that is active, whose window holds
 * the gift's time, that names the gift's campaign (or every campaign of
 * its currency), takes the gift's source (offline gifts only with
 * match_offline) and has money left. How much: min(amount x ratio, the
 * per-gift cap, what the donor's cap leaves, what the pool has left) -
 * so the gift that empties a pool is matched in part. One pool per gift.
 *
 * Donors are told apart by their email in lower case (the per-donor cap);
 * a gift without an email counts only against the per-gift cap.
 */
#include "core/match.h"
#include "db/pools.h"
#include "base/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

const char *const match_state_names[MATCH_STATES] = {"open", "upcoming", "paused", "exhausted",
                                                     "ended"};

/* What one donor holds in one pool (open addressing; key 0 = free). */
struct donor_slot {
	uint64_t key;
	int64_t matched;
};

struct match_book {
	pthread_mutex_t lock;   /* guards everything below; a leaf */
	struct pool_row *pools; /* id order */
	size_t n, cap;
	struct donor_slot *donors;
	size_t dcap, dused; /* dcap: a power of two, or 0 */
	uint64_t version;
};

enum match_state match_state_of(const struct pool_row *p, int64_t now)
{
	if (p->status == POOL_DEPLETED || (p->ends_at && now >= p->ends_at))
		return MATCH_ENDED;
	if (p->status == POOL_PAUSED)
		return MATCH_PAUSED;
	if (p->starts_at && now < p->starts_at)
		return MATCH_UPCOMING;
	return match_remaining(p) > 0 ? MATCH_OPEN : MATCH_EXHAUSTED;
}

int64_t match_remaining(const struct pool_row *p)
{
	int64_t left = p->amount_cents - p->reserved_cents - p->used_cents;

	return left > 0 ? left : 0;
}

int match_book_new(struct match_book **out)
{
	struct match_book *b = calloc(1, sizeof(*b));

	*out = NULL;
	if (!b)
		return -ENOMEM;
	if (pthread_mutex_init(&b->lock, NULL)) {
		free(b);
		return -ENOMEM;
	}
	*out = b;
	return 0;
}

void match_book_free(struct match_book *b)
{
	if (!b)
		return;
	pthread_mutex_destroy(&b->lock);
	free(b->pools);
	free(b->donors);
	free(b);
}

/* The key of (pool, email): never 0. */
static uint64_t donor_key(int64_t pool_id, const char *email)
{
	uint64_t h = util_hash(&pool_id, sizeof(pool_id));
	char c;

	for (; (c = *email); email++) {
		c = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
		h = util_hash_add(h, &c, 1);
	}
	return h | 1;
}

/* The slot of key, or NULL when the table has none (and add is 0, or
 * there is no memory for one). b->lock held. */
static struct donor_slot *donor_slot(struct match_book *b, uint64_t key, int add)
{
	size_t mask, i;

	if (add && (b->dused + 1) * 2 > b->dcap) {
		size_t cap = b->dcap ? b->dcap * 2 : 1024;
		struct donor_slot *v = calloc(cap, sizeof(*v));

		if (!v)
			return NULL;
		for (size_t k = 0; k < b->dcap; k++) {
			size_t j = (size_t)b->donors[k].key & (cap - 1);

			if (!b->donors[k].key)
				continue;
			while (v[j].key)
				j = (j + 1) & (cap - 1);
			v[j] = b->donors[k];
		}
		free(b->donors);
		b->donors = v;
		b->dcap = cap;
	}
	if (!b->dcap)
		return NULL;
	mask = b->dcap - 1;
	for (i = (size_t)key & mask; b->donors[i].key; i = (i + 1) & mask)
		if (b->donors[i].key == key)
			return &b->donors[i];
	if (!add)
		return NULL;
	b->donors[i].key = key;
	b->dused++;
	return &b->donors[i];
}

static struct pool_row *pool_by_id(struct match_book *b, int64_t id)
{
	size_t lo = 0, hi = b->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (b->pools[mid].id == id)
			return &b->pools[mid];
		if (b->pools[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* 1 if p matches gifts to campaign_id in currency. */
static int covers(const struct pool_row *p, int64_t campaign_id, const char *currency)
{
	size_t lo = 0, hi = (size_t)p->n_campaigns;

	if (strcmp(p->currency, currency))
		return 0;
	if (!p->n_campaigns)
		return 1;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (p->campaigns[mid] == campaign_id)
			return 1;
		if (p->campaigns[mid] < campaign_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

void match_reserve(struct match_book *b, const struct match_gift *g, int64_t *pool_id,
                   int64_t *matched)
{
	*pool_id = 0;
	*matched = 0;
	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; i < b->n; i++) {
		struct pool_row *p = &b->pools[i];
		struct donor_slot *d = NULL;
		int64_t m;

		if (match_state_of(p, g->at) != MATCH_OPEN || (g->offline && !p->match_offline) ||
		    !covers(p, g->campaign_id, g->currency))
			continue;
		/* amount <= TALLY_AMOUNT_MAX and ratio <= TALLY_POOL_RATIO_MAX:
		 * no overflow. */
		m = min64(g->amount_cents * p->ratio, match_remaining(p));
		if (p->per_gift_cap_cents)
			m = min64(m, p->per_gift_cap_cents);
		if (p->per_donor_cap_cents && g->email[0]) {
			d = donor_slot(b, donor_key(p->id, g->email), 1);
			if (!d) /* no memory to count the donor: do not promise */
				continue;
			m = min64(m, p->per_donor_cap_cents - d->matched);
		}
		if (m <= 0)
			continue;
		if (d)
			d->matched += m;
		p->reserved_cents += m;
		b->version++;
		*pool_id = p->id;
		*matched = m;
		break;
	}
	pthread_mutex_unlock(&b->lock);
}

/* Take m from what email holds in pool_id. b->lock held. */
static void donor_take(struct match_book *b, int64_t pool_id, const char *email, int64_t m)
{
	struct donor_slot *d;

	if (!email[0])
		return;
	d = donor_slot(b, donor_key(pool_id, email), 0);
	if (d)
		d->matched = d->matched > m ? d->matched - m : 0;
}

void match_release(struct match_book *b, int64_t pool_id, const char *email, int64_t matched)
{
	struct pool_row *p;

	if (!pool_id || matched <= 0)
		return;
	pthread_mutex_lock(&b->lock);
	p = pool_by_id(b, pool_id);
	if (p) {
		p->reserved_cents -= min64(matched, p->reserved_cents);
		donor_take(b, pool_id, email, matched);
		b->version++;
	}
	pthread_mutex_unlock(&b->lock);
}

void match_settle(struct match_book *b, int64_t pool_id, int64_t matched)
{
	struct pool_row *p;

	if (!pool_id || matched <= 0)
		return;
	pthread_mutex_lock(&b->lock);
	p = pool_by_id(b, pool_id);
	if (p) {
		p->reserved_cents -= min64(matched, p->reserved_cents);
		p->used_cents += matched;
		b->version++;
	}
	pthread_mutex_unlock(&b->lock);
}

void match_unuse(struct match_book *b, int64_t pool_id, const char *email, int64_t matched)
{
	struct pool_row *p;

	if (!pool_id || matched <= 0)
		return;
	pthread_mutex_lock(&b->lock);
	p = pool_by_id(b, pool_id);
	if (p) {
		p->used_cents -= min64(matched, p->used_cents);
		donor_take(b, pool_id, email, matched);
		b->version++;
	}
	pthread_mutex_unlock(&b->lock);
}

/* Insert or change p. b->lock held. */
static int put_locked(struct match_book *b, const struct pool_row *p)
{
	struct pool_row *have = pool_by_id(b, p->id);
	size_t i;

	if (have) {
		int64_t reserved = have->reserved_cents, used = have->used_cents;

		*have = *p;
		have->reserved_cents = reserved;
		have->used_cents = used;
		return 0;
	}
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 8;
		struct pool_row *v = realloc(b->pools, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		b->pools = v;
		b->cap = cap;
	}
	for (i = b->n; i > 0 && b->pools[i - 1].id > p->id; i--)
		b->pools[i] = b->pools[i - 1];
	b->pools[i] = *p;
	b->n++;
	return 0;
}

int match_put(struct match_book *b, const struct pool_row *p)
{
	int rc;

	pthread_mutex_lock(&b->lock);
	rc = put_locked(b, p);
	b->version++;
	pthread_mutex_unlock(&b->lock);
	return rc;
}

static int load_pool(void *ud, const struct pool_row *row)
{
	struct match_book *b = ud;
	int rc;

	pthread_mutex_lock(&b->lock);
	rc = put_locked(b, row);
	if (!rc) {
		struct pool_row *p = pool_by_id(b, row->id);

		p->reserved_cents = row->reserved_cents;
		p->used_cents = row->used_cents;
	}
	pthread_mutex_unlock(&b->lock);
	return rc;
}

static int load_donor(void *ud, int64_t pool_id, const char *email, int64_t matched)
{
	struct match_book *b = ud;
	struct donor_slot *d;

	pthread_mutex_lock(&b->lock);
	d = donor_slot(b, donor_key(pool_id, email), 1);
	if (d)
		d->matched += matched;
	pthread_mutex_unlock(&b->lock);
	return d ? 0 : -ENOMEM;
}

int match_book_load(struct match_book *b, sqlite3 *db)
{
	int rc = db_load_pools(db, load_pool, b);

	return rc ? rc : db_load_pool_donors(db, load_donor, b);
}

int match_get(struct match_book *b, const char *slug, struct pool_row *out)
{
	int rc = -ENOENT;

	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; i < b->n && rc; i++)
		if (!strcmp(b->pools[i].slug, slug)) {
			*out = b->pools[i];
			rc = 0;
		}
	pthread_mutex_unlock(&b->lock);
	return rc;
}

long match_list(struct match_book *b, struct pool_row **out)
{
	long n;

	pthread_mutex_lock(&b->lock);
	n = (long)b->n;
	*out = malloc((b->n ? b->n : 1) * sizeof(**out));
	if (*out && b->n)
		memcpy(*out, b->pools, b->n * sizeof(**out));
	pthread_mutex_unlock(&b->lock);
	return *out ? n : -ENOMEM;
}

int match_banner(struct match_book *b, int64_t campaign_id, const char *currency, int64_t now,
                 struct pool_row *out)
{
	int found = 0;

	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; i < b->n; i++) {
		const struct pool_row *p = &b->pools[i];
		enum match_state st;

		if (!covers(p, campaign_id, currency))
			continue;
		st = match_state_of(p, now);
		if (st == MATCH_OPEN) {
			*out = *p;
			found = 1;
			break;
		}
		if (st != MATCH_ENDED && !found) {
			*out = *p;
			found = 1;
		}
	}
	pthread_mutex_unlock(&b->lock);
	return found;
}

uint64_t match_version(struct match_book *b)
{
	uint64_t v;

	pthread_mutex_lock(&b->lock);
	v = b->version;
	pthread_mutex_unlock(&b->lock);
	return v;
}
