/* core/campaigns.c - the campaign table, its two rankings, and every read
 * of the published campaigns (see internal.h for the two copies).
 *
 * The table (by id and by slug) and the rankings change only on the writer
 * thread, under e->lock; readers take e->lock and look only at the
 * published half of a campaign. The writer may read the table without the
 * lock, since nobody else writes it.
 */
#include "core/internal.h"
#include "core/day.h"
#include "base/log.h"
#include "base/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct campaign *campaign_find_slug(struct engine *e, const char *slug, size_t len)
{
	size_t mask = e->slot_cap - 1, i = (size_t)util_hash(slug, len) & mask;

	for (; e->slots[i]; i = (i + 1) & mask)
		if (strlen(e->slots[i]->pub.slug) == len &&
		    !memcmp(e->slots[i]->pub.slug, slug, len))
			return e->slots[i];
	return NULL;
}

struct campaign *campaign_find_id(struct engine *e, int64_t id)
{
	return id > 0 && (size_t)id < e->id_cap ? e->by_id[id] : NULL;
}

static void slot_put(struct campaign **slots, size_t cap, struct campaign *c)
{
	size_t mask = cap - 1, i = (size_t)util_hash(c->w.slug, strlen(c->w.slug)) & mask;

	while (slots[i])
		i = (i + 1) & mask;
	slots[i] = c;
}

/* 1 if a ranks before b: higher published key, then the older campaign. */
static int ranks_before(const struct campaign *a, const struct campaign *b, int by)
{
	int64_t ka = by == ENGINE_BY_TOTAL ? campaign_total(&a->pub) : a->pub.donor_count;
	int64_t kb = by == ENGINE_BY_TOTAL ? campaign_total(&b->pub) : b->pub.donor_count;

	return ka != kb ? ka > kb : a->pub.id < b->pub.id;
}

void campaigns_rerank(struct engine *e, struct campaign *c, int by)
{
	struct campaign **r = e->ranked[by];
	size_t i = c->rank[by];

	while (i > 0 && ranks_before(c, r[i - 1], by)) {
		r[i] = r[i - 1];
		r[i]->rank[by] = i;
		i--;
	}
	while (i + 1 < e->n_campaigns && ranks_before(r[i + 1], c, by)) {
		r[i] = r[i + 1];
		r[i]->rank[by] = i;
		i++;
	}
	r[i] = c;
	c->rank[by] = i;
}

static int cmp_total(const void *a, const void *b)
{
	const struct campaign *x = *(struct campaign *const *)a, *y = *(struct campaign *const *)b;

	return ranks_before(x, y, ENGINE_BY_TOTAL) ? -1 : ranks_before(y, x, ENGINE_BY_TOTAL);
}

static int cmp_donors(const void *a, const void *b)
{
	const struct campaign *x = *(struct campaign *const *)a, *y = *(struct campaign *const *)b;

	return ranks_before(x, y, ENGINE_BY_DONORS) ? -1 : ranks_before(y, x, ENGINE_BY_DONORS);
}

void campaigns_sort(struct engine *e)
{
	int (*const cmp[2])(const void *, const void *) = {cmp_total, cmp_donors};

	for (int by = 0; by < 2; by++) {
		if (!e->n_campaigns)
			continue;
		qsort(e->ranked[by], e->n_campaigns, sizeof(*e->ranked[by]), cmp[by]);
		for (size_t i = 0; i < e->n_campaigns; i++)
			e->ranked[by][i]->rank[by] = i;
	}
}

int campaigns_add(struct engine *e, struct campaign *c, int rank)
{
	int64_t id = c->w.id;

	if ((size_t)id >= e->id_cap) {
		size_t cap = e->id_cap ? e->id_cap : 64;
		struct campaign **p;

		while (cap <= (size_t)id)
			cap *= 2;
		p = realloc(e->by_id, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		memset(p + e->id_cap, 0, (cap - e->id_cap) * sizeof(*p));
		e->by_id = p;
		e->id_cap = cap;
	}
	if ((e->n_campaigns + 1) * 2 > e->slot_cap) {
		size_t cap = e->slot_cap ? e->slot_cap * 2 : 64;
		struct campaign **s = calloc(cap, sizeof(*s));

		if (!s)
			return -ENOMEM;
		for (size_t i = 0; i < e->slot_cap; i++)
			if (e->slots[i])
				slot_put(s, cap, e->slots[i]);
		free(e->slots);
		e->slots = s;
		e->slot_cap = cap;
	}
	for (int by = 0; by < 2; by++) {
		struct campaign **r = realloc(e->ranked[by], (e->n_campaigns + 1) * sizeof(*r));

		if (!r)
			return -ENOMEM;
		e->ranked[by] = r;
		r[e->n_campaigns] = c;
		c->rank[by] = e->n_campaigns;
	}
	if (boards_count(e, c->pub.category, c->pub.currency, 1))
		return -ENOMEM;
	slot_put(e->slots, e->slot_cap, c);
	e->by_id[id] = c;
	e->n_campaigns++;
	e->seq_sum += c->pub.seq; /* publishing adds what it moves on */
	if (rank)
		for (int by = 0; by < 2; by++)
			campaigns_rerank(e, c, by);
	return 0;
}

struct campaign *campaign_new(const struct campaign_row *row, const struct giving_day *day)
{
	struct campaign *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->w = *row;
	c->pub = *row;
	{
		int64_t claimed;

		if (__builtin_add_overflow(row->raised_cents, row->pending_cents, &claimed))
			claimed = INT64_MAX; /* stored past any bound: takes nothing more */
		atomic_init(&c->claimed_cents, claimed);
	}
	c->effective = campaign_effective(row, day, util_now_ms());
	return c;
}

void campaign_free(struct campaign *c)
{
	if (!c)
		return;
	for (int k = 0; k < c->n_recent; k++)
		free(c->recent[k]);
	free(c->json);
	free(c->hour);
	free(c);
}

void campaigns_free(struct engine *e)
{
	for (size_t i = 0; i < e->id_cap; i++)
		campaign_free(e->by_id[i]);
	free(e->by_id);
	free(e->slots);
	free(e->ranked[0]);
	free(e->ranked[1]);
	boards_free(e);
	e->by_id = e->slots = e->ranked[0] = e->ranked[1] = NULL;
	e->id_cap = e->slot_cap = e->n_campaigns = 0;
}

enum campaign_status campaign_effective(const struct campaign_row *r, const struct giving_day *day,
                                        int64_t now)
{
	if (r->status != CAMPAIGN_ACTIVE)
		return r->status;
	if ((r->starts_at && now < r->starts_at) || (r->ends_at && now >= r->ends_at) ||
	    !day_takes_gifts(day, now))
		return CAMPAIGN_CLOSED;
	return CAMPAIGN_ACTIVE;
}

void rate_add(uint32_t *buckets, int n, int64_t *epoch, int64_t now_epoch, uint32_t add)
{
	int64_t shift = now_epoch - *epoch;

	if (shift > 0) {
		if (shift >= n) {
			memset(buckets, 0, (size_t)n * sizeof(*buckets));
		} else {
			memmove(buckets + shift, buckets, (size_t)(n - shift) * sizeof(*buckets));
			memset(buckets, 0, (size_t)shift * sizeof(*buckets));
		}
		*epoch = now_epoch;
	}
	buckets[0] += add;
}

static double rate_sum(const uint32_t *b, int n, int64_t epoch, int64_t now_epoch)
{
	double sum = 0;
	int64_t shift = now_epoch - epoch;

	for (int i = 0; i + shift < n; i++)
		if (i + shift >= 0)
			sum += b[i];
	return sum;
}

/* Succeeded gifts per second over the last ten seconds; e->lock held. The
 * current second is partial: average the nine before it. */
static double rates_per_s(const struct engine *e, int64_t now)
{
	return (rate_sum(e->rate, 10, e->rate_epoch, now / 1000) -
	        (e->rate_epoch == now / 1000 ? e->rate[0] : 0)) /
	       9.0;
}

/* ---- public reads ---- */

static int copy_json(const struct campaign *c, struct buf *out, uint64_t *seq)
{
	if (!c || !c->json)
		return TALLY_ENOCAMPAIGN;
	if (seq)
		*seq = c->pub.seq;
	return buf_append(out, c->json, c->json_len);
}

int engine_campaign_json(struct engine *e, const char *slug, size_t slug_len, struct buf *out,
                         uint64_t *seq)
{
	int rc;

	pthread_mutex_lock(&e->lock);
	rc = copy_json(campaign_find_slug(e, slug, slug_len), out, seq);
	pthread_mutex_unlock(&e->lock);
	return rc;
}

int engine_campaign_json_by_id(struct engine *e, int64_t id, struct buf *out, uint64_t *seq)
{
	int rc;

	pthread_mutex_lock(&e->lock);
	rc = copy_json(campaign_find_id(e, id), out, seq);
	pthread_mutex_unlock(&e->lock);
	return rc;
}

int64_t engine_campaign_id(struct engine *e, const char *slug, size_t slug_len)
{
	struct campaign *c;
	int64_t id;

	pthread_mutex_lock(&e->lock);
	c = campaign_find_slug(e, slug, slug_len);
	id = c && c->json ? c->pub.id : TALLY_ENOCAMPAIGN;
	pthread_mutex_unlock(&e->lock);
	return id;
}

int engine_campaign_list_json(struct engine *e, int64_t after, int limit, struct buf *out,
                              uint64_t *version)
{
	int rc = 0, n = 0, more;
	int64_t last = 0;
	size_t i;

	pthread_mutex_lock(&e->lock);
	*version = e->version;
	rc |= buf_puts(out, "{\"campaigns\":[");
	for (i = after < 0 ? 1 : (size_t)after + 1; i < e->id_cap && n < limit; i++) {
		struct campaign *c = e->by_id[i];

		if (!c || !c->json)
			continue;
		if (n++)
			rc |= buf_puts(out, ",");
		rc |= buf_append(out, c->json, c->json_len);
		last = c->pub.id;
	}
	for (; i < e->id_cap && !(e->by_id[i] && e->by_id[i]->json); i++)
		;
	more = i < e->id_cap && n == limit;
	pthread_mutex_unlock(&e->lock);
	if (more)
		rc |= buf_printf(out, "],\"next\":\"%lld\"}", (long long)last);
	else
		rc |= buf_puts(out, "],\"next\":null}");
	return rc ? -ENOMEM : 0;
}

int engine_leaderboard_json(struct engine *e, enum engine_rank by, int limit, struct buf *out,
                            uint64_t *version)
{
	struct engine_board_query q = {by, limit, NULL, NULL, 0};
	int mixed;

	return engine_board_json(e, &q, out, version, &mixed);
}

/* The day's money in one currency. */
struct day_sum {
	char currency[TALLY_CURRENCY_SIZE];
	int64_t raised, matched, bonus;
};

static int put_day_sum(struct buf *out, const struct day_sum *d)
{
	return buf_printf(out,
	                  "\"total_cents\":%lld,\"raised_cents\":%lld,\"matched_cents\":%lld,"
	                  "\"bonus_cents\":%lld",
	                  (long long)(d->raised + d->matched + d->bonus), (long long)d->raised,
	                  (long long)d->matched, (long long)d->bonus);
}

static int cmp_day_sum(const void *a, const void *b)
{
	return strcmp(((const struct day_sum *)a)->currency, ((const struct day_sum *)b)->currency);
}

/* The day's schedule, its phase and the server's clock at now (its
 * currency is with the totals: day_totals). */
static int day_schedule_json(struct buf *out, const struct giving_day *d, int64_t now)
{
	static const char *const times[] = {"early_at", "opens_at", "closes_at"};
	const int64_t at[] = {d->early_at, d->opens_at, d->closes_at};
	char ts[32];
	int rc = 0;

	rc |= buf_puts(out, "{\"name\":");
	rc |= d->set ? buf_json_string(out, d->name) : buf_puts(out, "null");
	for (size_t i = 0; i < UTIL_ARRAY_LEN(times); i++)
		rc |= d->set && at[i] ? buf_printf(out, ",\"%s\":\"%s\"", times[i],
		                                   util_rfc3339(at[i], ts, sizeof(ts)))
		                      : buf_printf(out, ",\"%s\":null", times[i]);
	rc |= buf_printf(out,
	                 ",\"phase\":\"%s\",\"now\":\"%s\",\"now_ms\":%lld,\"opens_in_ms\":%lld,",
	                 day_phase_names[day_phase(d, now)], util_rfc3339(now, ts, sizeof(ts)),
	                 (long long)now, (long long)day_opens_in_ms(d, now));
	return rc;
}

/* Render the day's totals at now into e->day_totals (e->lock held): sums
 * over every campaign, per currency (never added across currencies), kept
 * for the seq and second they show, so that however many ask (GET
 * /api/v1/day is public) they are made once a second at most, or once per
 * change. One currency (or none): its sums at the top; several: the top
 * sums are null, and each is under by_currency. "currency" is the day's
 * when the schedule sets one (every campaign then takes it), else the one
 * its campaigns use, else null. Returns 0, -EOVERFLOW or -ENOMEM. */
static int day_totals(struct engine *e, uint64_t seq, int64_t now)
{
	int64_t donors = 0, gifts = 0, live = 0;
	struct buf *b = &e->day_totals;
	struct day_sum *sums;
	size_t n = e->n_campaigns, n_sums = 0;
	int rc = 0, overflow = 0;

	e->day_totals_seq = 0;
	/* As many currencies as groups at most (boards.c). */
	sums = calloc(e->n_groups ? e->n_groups : 1, sizeof(*sums));
	if (!sums)
		return -ENOMEM;
	for (size_t i = 0; i < n && !overflow; i++) {
		const struct campaign_row *c = &e->ranked[ENGINE_BY_TOTAL][i]->pub;
		struct day_sum *d;
		size_t k;

		for (k = 0; k < n_sums && strcmp(sums[k].currency, c->currency); k++)
			;
		if (k == n_sums)
			memcpy(sums[n_sums++].currency, c->currency, sizeof(c->currency));
		d = &sums[k];
		/* Each campaign stays under TALLY_TOTAL_MAX, so only thousands
		 * of full campaigns could overflow: refuse then, never wrap.
		 * Amounts add up per currency only. */
		overflow = __builtin_add_overflow(d->raised, c->raised_cents, &d->raised) ||
		           __builtin_add_overflow(d->matched, c->matched_cents, &d->matched) ||
		           __builtin_add_overflow(d->bonus, c->bonus_cents, &d->bonus) ||
		           d->raised > INT64_MAX / 3 || d->matched > INT64_MAX / 3 ||
		           d->bonus > INT64_MAX / 3 ||
		           __builtin_add_overflow(donors, c->donor_count, &donors) ||
		           __builtin_add_overflow(gifts, c->donation_count, &gifts);
		live += campaign_effective(c, &e->day, now) == CAMPAIGN_ACTIVE;
	}
	if (overflow) {
		free(sums);
		return -EOVERFLOW;
	}
	qsort(sums, n_sums, sizeof(*sums), cmp_day_sum);
	b->len = 0;
	if (n_sums <= 1) {
		struct day_sum none = {"", 0, 0, 0};

		rc |= put_day_sum(b, n_sums ? &sums[0] : &none);
	} else {
		rc |= buf_puts(b, "\"total_cents\":null,\"raised_cents\":null,"
		                  "\"matched_cents\":null,\"bonus_cents\":null");
	}
	if (e->day.set && e->day.currency[0])
		rc |= buf_printf(b, ",\"currency\":\"%s\"", e->day.currency);
	else if (n_sums == 1)
		rc |= buf_printf(b, ",\"currency\":\"%s\"", sums[0].currency);
	else
		rc |= buf_puts(b, ",\"currency\":null");
	rc |= buf_puts(b, ",\"by_currency\":{");
	for (size_t k = 0; k < n_sums; k++) {
		rc |= buf_printf(b, "%s\"%s\":{", k ? "," : "", sums[k].currency);
		rc |= put_day_sum(b, &sums[k]);
		rc |= buf_puts(b, "}");
	}
	free(sums);
	rc |= buf_printf(b,
	                 "},\"donor_count\":%lld,\"donation_count\":%lld,\"gifts_per_min\":%.0f,"
	                 "\"campaigns_live\":%lld,\"campaigns\":%zu",
	                 (long long)donors, (long long)gifts, rates_per_s(e, now) * 60.0,
	                 (long long)live, n);
	if (rc)
		return -ENOMEM;
	e->day_totals_seq = seq;
	e->day_totals_sec = now / 1000;
	return 0;
}

int engine_day_json(struct engine *e, struct buf *out, uint64_t *seq)
{
	int64_t now = util_now_ms();
	struct giving_day day;
	struct buf totals = {0};
	int rc = 0;

	pthread_mutex_lock(&e->lock);
	*seq = e->seq_sum + e->day_seq;
	day = e->day;
	if (e->day_totals_seq != *seq || e->day_totals_sec != now / 1000)
		rc = day_totals(e, *seq, now);
	if (!rc && buf_append(&totals, e->day_totals.p, e->day_totals.len))
		rc = -ENOMEM;
	pthread_mutex_unlock(&e->lock);
	if (!rc) {
		rc = day_schedule_json(out, &day, now) || buf_append(out, totals.p, totals.len) ||
		             pools_day_json(e, now, out) || buf_puts(out, "}")
		         ? -ENOMEM
		         : 0;
	}
	buf_fini(&totals);
	return rc;
}

long engine_campaign_infos(struct engine *e, struct engine_campaign_info **out)
{
	return engine_campaign_infos_changed(e, NULL, 0, out);
}

long engine_campaign_infos_changed(struct engine *e, const uint64_t *seen, size_t n_seen,
                                   struct engine_campaign_info **out)
{
	struct engine_campaign_info *v;
	int64_t now = util_now_ms();
	size_t want = 0;
	long n = 0;

	pthread_mutex_lock(&e->lock);
	/* Count first: a reader of changes usually wants a few rows, and a
	 * table's worth of zeroed memory four times a second is not free. */
	for (size_t i = 1; i < e->id_cap; i++) {
		const struct campaign *c = e->by_id[i];

		want += c && c->json && !(seen && i < n_seen && seen[i] == c->pub.seq);
	}
	v = malloc((want ? want : 1) * sizeof(*v));
	if (!v) {
		pthread_mutex_unlock(&e->lock);
		return -ENOMEM;
	}
	for (size_t i = 1; i < e->id_cap && (size_t)n < want; i++) {
		struct campaign *c = e->by_id[i];
		struct engine_campaign_info *r;

		if (!c || !c->json || (seen && i < n_seen && seen[i] == c->pub.seq))
			continue;
		r = &v[n++];
		r->c = c->pub;
		r->effective = campaign_effective(&c->pub, &e->day, now);
		r->per_min = rate_sum(c->rate, RATE_BUCKETS, c->rate_epoch, now / 10000) * 60.0 /
		             (RATE_BUCKETS * 10);
		r->hour_gifts = r->hour_cents = 0;
		if (c->hour)
			hour_sum(c->hour, now, &r->hour_gifts, &r->hour_cents);
	}
	pthread_mutex_unlock(&e->lock);
	*out = v;
	return n;
}

void engine_get_stats(struct engine *e, struct engine_stats *out)
{
	int64_t now = util_now_ms();

	memset(out, 0, sizeof(*out));
	db_writer_stats(e->writer, &out->commits);
	pthread_mutex_lock(&e->lock);
	out->uptime_s = (now - e->started_ms) / 1000;
	out->donations_total = e->donations_total;
	out->donations_per_s = rates_per_s(e, now);
	out->campaigns = (int64_t)e->n_campaigns;
	pthread_mutex_unlock(&e->lock);
	out->intake_depth = (int64_t)out->commits.depth;
	out->idem_entries = (int64_t)idem_count(e->idem);
}
