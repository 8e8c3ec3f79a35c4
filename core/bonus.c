/* core/bonus.c - the challenge book.
 *
 * DESIGN: a gift counts in a challenge when it succeeds (the writer's
 * `applied` hook, core/commit.c, right after the UPDATE that made it
 * succeeded), so campaigns reach a threshold in the writer's one order and
 * "the first N campaigns" is decided without a race. The award is an op
 * the writer applies next in the same transaction (the award row, the
 * campaign's bonus_cents): a gift's success and the bonus it unlocked are
 * durable together, or not at all - and then the book is read again from
 * the database (bonus_book_load).
 *
 * What counts is the challenge's rules, which db/challenges.c states again
 * as a query to rebuild the book at start: gifts that succeeded (a later
 * refund takes nothing back: a bonus once unlocked stays), made inside
 * [starts_at, ends_at), of at least min_gift_cents, in the challenge's
 * currency, online only when online_only, to a campaign it names (or any
 * of its currency); a unique donor is an email in lower case per campaign.
 */
#include "core/bonus.h"
#include "db/challenges.h"
#include "base/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* One campaign's progress in one challenge (open addressing on key). */
struct progress {
	uint64_t key; /* 0: free */
	int64_t challenge_id, campaign_id;
	int64_t amount, gifts, donors;
	int awarded;
	int64_t award_at;
};

struct bonus_book {
	pthread_mutex_t lock;     /* guards everything below; a leaf */
	struct challenge_row *ch; /* id order */
	size_t n, cap;
	struct progress *pr;
	size_t pcap, pused; /* pcap: a power of two, or 0 */
	uint64_t *donors;   /* set of (challenge, campaign, email) keys; 0 free */
	size_t dcap, dused;
};

int bonus_book_new(struct bonus_book **out)
{
	struct bonus_book *b = calloc(1, sizeof(*b));

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

static void forget(struct bonus_book *b)
{
	free(b->ch);
	free(b->pr);
	free(b->donors);
	b->ch = NULL;
	b->pr = NULL;
	b->donors = NULL;
	b->n = b->cap = b->pcap = b->pused = b->dcap = b->dused = 0;
}

void bonus_book_free(struct bonus_book *b)
{
	if (!b)
		return;
	forget(b);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

static uint64_t pair_key(int64_t challenge_id, int64_t campaign_id)
{
	int64_t v[2] = {challenge_id, campaign_id};

	return util_hash(v, sizeof(v)) | 1;
}

static uint64_t donor_key(int64_t challenge_id, int64_t campaign_id, const char *email)
{
	uint64_t h = pair_key(challenge_id, campaign_id);
	char c;

	for (; (c = *email); email++) {
		c = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
		h = util_hash_add(h, &c, 1);
	}
	return h | 1;
}

/* Grow an open-addressing table of n-byte slots whose first 8 bytes are
 * the key (0 free) so one more fits at half load. Returns 0 or -ENOMEM. */
static int grow(void **v, size_t *cap, size_t used, size_t size)
{
	size_t ncap = *cap ? *cap * 2 : 256;
	unsigned char *nv, *old = *v;

	if ((used + 1) * 2 <= *cap)
		return 0;
	nv = calloc(ncap, size);
	if (!nv)
		return -ENOMEM;
	for (size_t i = 0; i < *cap; i++) {
		uint64_t key;
		size_t j;

		memcpy(&key, old + i * size, sizeof(key));
		if (!key)
			continue;
		for (j = (size_t)key & (ncap - 1);; j = (j + 1) & (ncap - 1)) {
			uint64_t k2;

			memcpy(&k2, nv + j * size, sizeof(k2));
			if (!k2)
				break;
		}
		memcpy(nv + j * size, old + i * size, size);
	}
	free(old);
	*v = nv;
	*cap = ncap;
	return 0;
}

/* The progress of (challenge, campaign); created when add (NULL without
 * memory). b->lock held. */
static struct progress *progress_of(struct bonus_book *b, int64_t challenge_id, int64_t campaign_id,
                                    int add)
{
	uint64_t key = pair_key(challenge_id, campaign_id);
	size_t i;

	if (add && grow((void **)&b->pr, &b->pcap, b->pused, sizeof(*b->pr)))
		return NULL;
	if (!b->pcap)
		return NULL;
	for (i = (size_t)key & (b->pcap - 1); b->pr[i].key; i = (i + 1) & (b->pcap - 1))
		if (b->pr[i].key == key && b->pr[i].challenge_id == challenge_id &&
		    b->pr[i].campaign_id == campaign_id)
			return &b->pr[i];
	if (!add)
		return NULL;
	b->pr[i] = (struct progress){key, challenge_id, campaign_id, 0, 0, 0, 0, 0};
	b->pused++;
	return &b->pr[i];
}

/* Add a donor: 1 if new, 0 if known, -ENOMEM. b->lock held. */
static int donor_add(struct bonus_book *b, int64_t challenge_id, int64_t campaign_id,
                     const char *email)
{
	uint64_t key = donor_key(challenge_id, campaign_id, email);
	size_t i;

	if (grow((void **)&b->donors, &b->dcap, b->dused, sizeof(*b->donors)))
		return -ENOMEM;
	for (i = (size_t)key & (b->dcap - 1); b->donors[i]; i = (i + 1) & (b->dcap - 1))
		if (b->donors[i] == key)
			return 0;
	b->donors[i] = key;
	b->dused++;
	return 1;
}

int bonus_covers(const struct challenge_row *c, int64_t campaign_id, const char *currency)
{
	if (strcmp(c->currency, currency))
		return 0;
	if (!c->n_campaigns)
		return 1;
	for (int i = 0; i < c->n_campaigns; i++)
		if (c->campaigns[i] == campaign_id)
			return 1;
	return 0;
}

static int64_t value_of(const struct challenge_row *c, const struct progress *p)
{
	return c->kind == CHALLENGE_AMOUNT   ? p->amount
	       : c->kind == CHALLENGE_DONORS ? p->donors
	                                     : p->gifts;
}

/* Mark p awarded if it reached c's threshold and c has a prize left;
 * describe the award in *a. b->lock held. */
static int award_if_due(struct challenge_row *c, struct progress *p, int64_t now,
                        int64_t donation_id, struct bonus_award *a)
{
	if (p->awarded || value_of(c, p) < c->threshold || (c->winners && c->awarded >= c->winners))
		return 0;
	p->awarded = 1;
	p->award_at = now;
	c->awarded++;
	*a = (struct bonus_award){c->id, p->campaign_id, c->bonus_cents, donation_id, ""};
	memcpy(a->slug, c->slug, sizeof(a->slug));
	return 1;
}

int bonus_count(struct bonus_book *b, const struct bonus_gift *g, int64_t now,
                struct bonus_award *out, int max)
{
	int n = 0;

	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; i < b->n; i++) {
		struct challenge_row *c = &b->ch[i];
		struct progress *p;

		if (g->created_at < c->starts_at || g->created_at >= c->ends_at ||
		    g->amount_cents < c->min_gift_cents || (c->online_only && g->offline) ||
		    !bonus_covers(c, g->campaign_id, g->currency))
			continue;
		p = progress_of(b, c->id, g->campaign_id, 1);
		if (!p)
			continue; /* without memory the book undercounts; a restart reads it again
			           */
		p->amount += g->amount_cents;
		p->gifts++;
		if (g->email[0] && donor_add(b, c->id, g->campaign_id, g->email) == 1)
			p->donors++;
		if (n < max && award_if_due(c, p, now, g->donation_id, &out[n]))
			n++;
	}
	pthread_mutex_unlock(&b->lock);
	return n;
}

/* Insert c in id order. b->lock held. */
static int put_locked(struct bonus_book *b, const struct challenge_row *c)
{
	size_t i;

	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 8;
		struct challenge_row *v = realloc(b->ch, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		b->ch = v;
		b->cap = cap;
	}
	for (i = b->n; i > 0 && b->ch[i - 1].id > c->id; i--)
		b->ch[i] = b->ch[i - 1];
	b->ch[i] = *c;
	b->ch[i].awarded = 0;
	b->n++;
	return 0;
}

static struct challenge_row *by_id(struct bonus_book *b, int64_t id)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->ch[i].id == id)
			return &b->ch[i];
	return NULL;
}

struct load_one {
	struct bonus_book *b;
	const struct challenge_row *c;
};

static int load_progress(void *ud, const struct db_progress_row *row)
{
	struct load_one *l = ud;
	struct progress *p;

	if (!bonus_covers(l->c, row->campaign_id, l->c->currency))
		return 0;
	p = progress_of(l->b, l->c->id, row->campaign_id, 1);
	if (!p)
		return -ENOMEM;
	p->amount = row->amount_cents;
	p->gifts = row->gifts;
	p->donors = row->donors;
	return 0;
}

static int load_donor(void *ud, int64_t campaign_id, const char *email)
{
	struct load_one *l = ud;

	if (!bonus_covers(l->c, campaign_id, l->c->currency))
		return 0;
	return donor_add(l->b, l->c->id, campaign_id, email) < 0 ? -ENOMEM : 0;
}

/* Read c's progress (and donors) from db. b->lock held. */
static int load_challenge(struct bonus_book *b, const struct challenge_row *c, sqlite3 *db)
{
	struct load_one l = {b, c};
	int rc = db_challenge_progress(db, c, load_progress, &l);

	/* The donors themselves only while one more could still count. */
	if (!rc && c->kind == CHALLENGE_DONORS)
		rc = db_challenge_donors(db, c, load_donor, &l);
	return rc;
}

static int load_one_challenge(void *ud, const struct challenge_row *row)
{
	return put_locked(ud, row);
}

static int load_award(void *ud, const struct db_award_row *a)
{
	struct bonus_book *b = ud;
	struct challenge_row *c = by_id(b, a->challenge_id);
	struct progress *p;

	if (!c)
		return 0;
	p = progress_of(b, a->challenge_id, a->campaign_id, 1);
	if (!p)
		return -ENOMEM;
	p->awarded = 1;
	p->award_at = a->at;
	c->awarded++;
	return 0;
}

int bonus_book_load(struct bonus_book *b, sqlite3 *db)
{
	int rc;

	pthread_mutex_lock(&b->lock);
	forget(b);
	rc = db_load_challenges(db, load_one_challenge, b);
	for (size_t i = 0; !rc && i < b->n; i++)
		rc = load_challenge(b, &b->ch[i], db);
	if (!rc)
		rc = db_load_awards(db, load_award, b);
	pthread_mutex_unlock(&b->lock);
	return rc;
}

int bonus_put(struct bonus_book *b, const struct challenge_row *c, sqlite3 *db)
{
	int rc;

	pthread_mutex_lock(&b->lock);
	rc = put_locked(b, c);
	if (!rc && db)
		rc = load_challenge(b, c, db);
	pthread_mutex_unlock(&b->lock);
	return rc;
}

static int by_campaign(const void *a, const void *b)
{
	const struct progress *x = *(struct progress *const *)a, *y = *(struct progress *const *)b;

	return (x->campaign_id > y->campaign_id) - (x->campaign_id < y->campaign_id);
}

int bonus_due(struct bonus_book *b, int64_t now, struct bonus_award *out, int max)
{
	struct progress **v;
	int n = 0;

	pthread_mutex_lock(&b->lock);
	v = malloc((b->pcap ? b->pcap : 1) * sizeof(*v));
	for (size_t ci = 0; v && ci < b->n && n < max; ci++) {
		struct challenge_row *c = &b->ch[ci];
		size_t k = 0;

		for (size_t i = 0; i < b->pcap; i++)
			if (b->pr[i].key && b->pr[i].challenge_id == c->id && !b->pr[i].awarded)
				v[k++] = &b->pr[i];
		qsort(v, k, sizeof(*v), by_campaign);
		for (size_t i = 0; i < k && n < max; i++)
			n += award_if_due(c, v[i], now, 0, &out[n]);
	}
	free(v);
	pthread_mutex_unlock(&b->lock);
	return n;
}

long bonus_list(struct bonus_book *b, struct challenge_row **out)
{
	long n;

	pthread_mutex_lock(&b->lock);
	n = (long)b->n;
	*out = malloc((b->n ? b->n : 1) * sizeof(**out));
	if (*out && b->n)
		memcpy(*out, b->ch, b->n * sizeof(**out));
	pthread_mutex_unlock(&b->lock);
	return *out ? n : -ENOMEM;
}

int bonus_get(struct bonus_book *b, const char *slug, struct challenge_row *out)
{
	int rc = -ENOENT;

	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; i < b->n && rc; i++)
		if (!strcmp(b->ch[i].slug, slug)) {
			*out = b->ch[i];
			rc = 0;
		}
	pthread_mutex_unlock(&b->lock);
	return rc;
}

static struct bonus_progress view(const struct challenge_row *c, const struct progress *p)
{
	return (struct bonus_progress){c->id, p->campaign_id, value_of(c, p), p->awarded,
	                               p->award_at};
}

int bonus_leaders(struct bonus_book *b, int64_t id, struct bonus_progress *out, int max)
{
	int n = 0;

	pthread_mutex_lock(&b->lock);
	{
		const struct challenge_row *c = by_id(b, id);

		for (size_t i = 0; c && i < b->pcap; i++) {
			struct bonus_progress v;
			int k;

			if (!b->pr[i].key || b->pr[i].challenge_id != id)
				continue;
			v = view(c, &b->pr[i]);
			/* Keep the best max: awarded first (oldest award
			 * first), then by value. */
			for (k = n; k > 0; k--) {
				const struct bonus_progress *o = &out[k - 1];
				int better = v.awarded != o->awarded ? v.awarded
				             : v.awarded             ? v.award_at < o->award_at
				                                     : v.value > o->value;

				if (!better)
					break;
				if (k < max)
					out[k] = *o;
			}
			if (k < max) {
				out[k] = v;
				if (n < max)
					n++;
			}
		}
	}
	pthread_mutex_unlock(&b->lock);
	return n;
}

int bonus_for_campaign(struct bonus_book *b, int64_t campaign_id, const char *currency,
                       struct challenge_row *rows, struct bonus_progress *out, int max)
{
	int n = 0;

	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; i < b->n && n < max; i++) {
		const struct challenge_row *c = &b->ch[i];
		const struct progress *p;

		if (!bonus_covers(c, campaign_id, currency))
			continue;
		p = progress_of(b, c->id, campaign_id, 0);
		rows[n] = *c;
		out[n] = p ? view(c, p) : (struct bonus_progress){c->id, campaign_id, 0, 0, 0};
		n++;
	}
	pthread_mutex_unlock(&b->lock);
	return n;
}
