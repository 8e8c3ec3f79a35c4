/* core/boards.c - leaderboards by category and currency, the categories
 * listing, and the table of (category, currency) groups they read.
 *
 * DESIGN: amounts of different currencies are never compared or added. A
 * leaderboard covers the campaigns of one category (or all of them) in one
 * currency: the one asked for, else the only one those campaigns use; when
 * they use several and none was asked for, the board has no entries and
 * lists the currencies (the API answers 400 currency_required). To tell
 * that without walking every campaign, the engine keeps the groups: each
 * (category, currency) pair of the published campaigns with how many
 * campaigns it has, changed under e->lock as campaigns are added
 * (campaigns_add) and as a published category changes (publish.c). A
 * board is read by walking the kept ranking from the top, skipping the
 * campaigns outside it, until `limit` entries: at worst one pass over the
 * campaigns, never a sort. Categories compare byte for byte (as stored,
 * trimmed): "Arts" and "arts" are two categories.
 */
#include "core/internal.h"
#include "base/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct board_group {
	char category[TALLY_CATEGORY_SIZE];
	char currency[TALLY_CURRENCY_SIZE];
	size_t n; /* published campaigns in the group; > 0 */
};

static struct board_group *group_find(struct engine *e, const char *category, const char *currency)
{
	for (size_t i = 0; i < e->n_groups; i++)
		if (!strcmp(e->groups[i].category, category) &&
		    !strcmp(e->groups[i].currency, currency))
			return &e->groups[i];
	return NULL;
}

int boards_count(struct engine *e, const char *category, const char *currency, int delta)
{
	struct board_group *g = group_find(e, category, currency);

	if (delta < 0) {
		if (g && --g->n == 0)
			*g = e->groups[--e->n_groups];
		return 0;
	}
	if (g) {
		g->n++;
		return 0;
	}
	if (e->n_groups == e->cap_groups) {
		size_t cap = e->cap_groups ? e->cap_groups * 2 : 8;
		struct board_group *v = realloc(e->groups, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		e->groups = v;
		e->cap_groups = cap;
	}
	g = &e->groups[e->n_groups++];
	memset(g, 0, sizeof(*g));
	memcpy(g->category, category, strlen(category) + 1);
	memcpy(g->currency, currency, strlen(currency) + 1);
	g->n = 1;
	return 0;
}

void boards_free(struct engine *e)
{
	free(e->groups);
	e->groups = NULL;
	e->n_groups = e->cap_groups = 0;
}

static int cmp_code(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The distinct currencies of the groups in category (NULL: every group),
 * sorted, into a malloc'd array of codes (*out; NULL when none). Returns
 * how many, or -ENOMEM. e->lock held. */
static long scope_currencies(struct engine *e, const char *category,
                             char (**out)[TALLY_CURRENCY_SIZE])
{
	char(*v)[TALLY_CURRENCY_SIZE];
	size_t n = 0;

	*out = NULL;
	if (!e->n_groups)
		return 0;
	v = malloc(e->n_groups * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < e->n_groups; i++) {
		const struct board_group *g = &e->groups[i];
		size_t k;

		if (category && strcmp(g->category, category))
			continue;
		for (k = 0; k < n && strcmp(v[k], g->currency); k++)
			;
		if (k == n)
			memcpy(v[n++], g->currency, TALLY_CURRENCY_SIZE);
	}
	qsort(v, n, sizeof(*v), cmp_code);
	*out = v;
	return (long)n;
}

static int put_string_or_null(struct buf *out, const char *s)
{
	return s && *s ? buf_json_string(out, s) : buf_puts(out, "null");
}

int engine_board_json(struct engine *e, const struct engine_board_query *q, struct buf *out,
                      uint64_t *version, int *needs_currency)
{
	const char *category = q->category && *q->category ? q->category : NULL;
	const char *currency = q->currency && *q->currency ? q->currency : NULL;
	char(*cur)[TALLY_CURRENCY_SIZE] = NULL;
	int64_t now = util_now_ms();
	long n_cur;
	int rc = 0, shown = 0;

	*needs_currency = 0;
	pthread_mutex_lock(&e->lock);
	*version = e->seq_sum;
	n_cur = scope_currencies(e, category, &cur);
	if (n_cur < 0) {
		pthread_mutex_unlock(&e->lock);
		return -ENOMEM;
	}
	if (category && n_cur == 0 && !q->empty_ok) {
		pthread_mutex_unlock(&e->lock);
		free(cur);
		return TALLY_ENOCATEGORY;
	}
	if (!currency && n_cur == 1)
		currency = cur[0];
	*needs_currency = !currency && n_cur > 1;
	rc |= buf_printf(
	    out, "{\"by\":\"%s\",\"category\":", q->by == ENGINE_BY_TOTAL ? "total" : "donors");
	rc |= put_string_or_null(out, category);
	rc |= buf_puts(out, ",\"currency\":");
	rc |= put_string_or_null(out, currency);
	rc |= buf_puts(out, ",\"currencies\":[");
	for (long k = 0; k < n_cur; k++)
		rc |= buf_printf(out, "%s\"%s\"", k ? "," : "", cur[k]);
	rc |= buf_puts(out, "],\"entries\":[");
	for (size_t i = 0; currency && i < e->n_campaigns && shown < q->limit; i++) {
		const struct campaign_row *c = &e->ranked[q->by][i]->pub;

		if (strcmp(c->currency, currency) || (category && strcmp(c->category, category)))
			continue;
		if (shown++)
			rc |= buf_puts(out, ",");
		rc |= buf_printf(out, "{\"rank\":%d,\"slug\":\"%s\",\"name\":", shown, c->slug);
		rc |= buf_json_string(out, c->name);
		rc |= buf_puts(out, ",\"category\":");
		rc |= put_string_or_null(out, c->category);
		rc |= buf_printf(out,
		                 ",\"currency\":\"%s\",\"total_cents\":%lld,\"raised_cents\":%lld,"
		                 "\"matched_cents\":%lld,\"bonus_cents\":%lld,\"donor_count\":%lld,"
		                 "\"goal_cents\":%lld,\"status\":\"%s\"}",
		                 c->currency, (long long)campaign_total(c),
		                 (long long)c->raised_cents, (long long)c->matched_cents,
		                 (long long)c->bonus_cents, (long long)c->donor_count,
		                 (long long)c->goal_cents,
		                 campaign_status_names[campaign_effective(c, &e->day, now)]);
	}
	pthread_mutex_unlock(&e->lock);
	free(cur);
	rc |= buf_puts(out, "]}");
	return rc ? -ENOMEM : 0;
}

int engine_board_exists(struct engine *e, const char *category, const char *currency)
{
	int has_category = !category, has_both = 0;

	pthread_mutex_lock(&e->lock);
	for (size_t i = 0; i < e->n_groups && !has_both; i++) {
		int in = !category || !strcmp(e->groups[i].category, category);

		has_category |= in;
		has_both = in && (!currency || !strcmp(e->groups[i].currency, currency));
	}
	pthread_mutex_unlock(&e->lock);
	return has_both ? 0 : has_category ? TALLY_ECURRENCY : TALLY_ENOCATEGORY;
}

/* Campaigns by category, then currency (byte order); e->lock held. */
static int cmp_group(const void *a, const void *b)
{
	const struct campaign_row *x = &(*(struct campaign *const *)a)->pub,
	                          *y = &(*(struct campaign *const *)b)->pub;
	int d = strcmp(x->category, y->category);

	return d ? d : strcmp(x->currency, y->currency);
}

int engine_categories_json(struct engine *e, struct buf *out, uint64_t *version)
{
	struct campaign **v;
	size_t n = 0;
	int rc = 0;

	pthread_mutex_lock(&e->lock);
	*version = e->seq_sum;
	v = malloc((e->n_campaigns ? e->n_campaigns : 1) * sizeof(*v));
	if (!v) {
		pthread_mutex_unlock(&e->lock);
		return -ENOMEM;
	}
	for (size_t i = 0; i < e->n_campaigns; i++)
		if (e->ranked[ENGINE_BY_TOTAL][i]->pub.category[0])
			v[n++] = e->ranked[ENGINE_BY_TOTAL][i];
	qsort(v, n, sizeof(*v), cmp_group);
	rc |= buf_puts(out, "{\"categories\":[");
	for (size_t i = 0; i < n;) {
		const char *category = v[i]->pub.category;
		size_t end = i, count;

		while (end < n && !strcmp(v[end]->pub.category, category))
			end++;
		count = end - i;
		rc |= buf_puts(out, i ? ",{\"category\":" : "{\"category\":");
		rc |= buf_json_string(out, category);
		rc |= buf_printf(out, ",\"campaigns\":%zu,\"currencies\":{", count);
		/* One sum per currency: each campaign stays under
		 * TALLY_TOTAL_MAX, and a sum that would pass INT64_MAX is
		 * capped there rather than wrapped (thousands of full
		 * campaigns in one category and currency). */
		for (size_t k = i; k < end;) {
			const char *currency = v[k]->pub.currency;
			int64_t total = 0, raised = 0, donors = 0;
			size_t m = 0;

			for (; k < end && !strcmp(v[k]->pub.currency, currency); k++, m++) {
				const struct campaign_row *c = &v[k]->pub;

				if (__builtin_add_overflow(total, campaign_total(c), &total))
					total = INT64_MAX;
				if (__builtin_add_overflow(raised, c->raised_cents, &raised))
					raised = INT64_MAX;
				if (__builtin_add_overflow(donors, c->donor_count, &donors))
					donors = INT64_MAX;
			}
			rc |= buf_printf(out,
			                 "%s\"%s\":{\"campaigns\":%zu,\"total_cents\":%lld,"
			                 "\"raised_cents\":%lld,\"donor_count\":%lld}",
			                 k - m == i ? "" : ",", currency, m, (long long)total,
			                 (long long)raised, (long long)donors);
		}
		rc |= buf_puts(out, "}}");
		i = end;
	}
	pthread_mutex_unlock(&e->lock);
	free(v);
	rc |= buf_puts(out, "]}");
	return rc ? -ENOMEM : 0;
}
