/* core/publish.c - what readers see of a campaign, and when.
 *
 * DESIGN: commit.c changes a campaign's working copy (w) as a batch is
 * mirrored, and marks it. At the end of the batch publish_batch renders
 * each marked campaign's JSON from w without any lock, then, in one
 * critical section under e->lock, swaps every new body in together with
 * the seq it shows and the numbers beside it (pub = w) and reranks. A
 * reader therefore never sees a seq without its body: an ETag always names
 * one body, and a live channel that skips a seq it has seen is never left
 * on a stale body. Listeners are told after the lock is released:
 * campaign changes first, then the batch's gifts.
 */
#include "core/internal.h"
#include "core/day.h"
#include "base/log.h"
#include "base/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int put_time(struct buf *b, const char *key, int64_t ms)
{
	char ts[32];

	if (!ms)
		return buf_printf(b, ",\"%s\":null", key);
	return buf_printf(b, ",\"%s\":\"%s\"", key, util_rfc3339(ms, ts, sizeof(ts)));
}

/* Render c's public JSON (from its working copy) into b, under the
 * giving day (the writer's to read). */
static int render_campaign(struct engine *e, struct buf *b, struct campaign *c, int64_t now)
{
	const struct campaign_row *r = &c->w;
	const struct giving_day *day = &e->day;
	int rc = 0;

	b->len = 0;
	rc |= buf_puts(b, "{\"slug\":");
	rc |= buf_json_string(b, r->slug);
	rc |= buf_puts(b, ",\"name\":");
	rc |= buf_json_string(b, r->name);
	rc |= buf_puts(b, ",\"category\":");
	rc |= r->category[0] ? buf_json_string(b, r->category) : buf_puts(b, "null");
	rc |= buf_printf(
	    b,
	    ",\"currency\":\"%s\",\"goal_cents\":%lld,\"total_cents\":%lld,"
	    "\"raised_cents\":%lld,\"matched_cents\":%lld,\"bonus_cents\":%lld,"
	    "\"donor_count\":%lld,\"donation_count\":%lld,\"pending_cents\":%lld,"
	    "\"status\":\"%s\",\"seq\":%llu",
	    r->currency, (long long)r->goal_cents, (long long)campaign_total(r),
	    (long long)r->raised_cents, (long long)r->matched_cents, (long long)r->bonus_cents,
	    (long long)r->donor_count, (long long)r->donation_count, (long long)r->pending_cents,
	    campaign_status_names[campaign_effective(r, day, now)], (unsigned long long)r->seq);
	rc |= put_time(b, "starts_at", r->starts_at);
	rc |= put_time(b, "ends_at", r->ends_at);
	/* Closed for now by a schedule (its own or the day's): when it opens. */
	rc |= put_time(b, "opens_at", day_campaign_opens_at(r, day, now));
	rc |= pools_banner_json(e, r, now, b, &c->banner_key, &c->banner_state);
	c->banner_at = now;
	rc |= challenges_campaign_json(e, r, now, b);
	rc |= buf_puts(b, ",\"recent\":[");
	for (int i = 0; i < c->n_recent; i++) {
		if (i)
			rc |= buf_puts(b, ",");
		rc |= buf_puts(b, c->recent[i]);
	}
	rc |= buf_puts(b, "]}");
	return rc ? -ENOMEM : 0;
}

char *publish_render_gift(const char *name, int64_t amount, int64_t matched, int hide,
                          const char *message, int64_t at)
{
	struct buf b = {0};
	char ts[32];
	int rc = 0;

	rc |= buf_puts(&b, "{\"name\":");
	rc |= buf_json_string(&b, name);
	if (!hide)
		rc |= buf_printf(&b, ",\"amount_cents\":%lld,\"matched_cents\":%lld",
		                 (long long)amount, (long long)matched);
	rc |= buf_puts(&b, ",\"message\":");
	rc |= buf_json_string(&b, message);
	rc |= buf_printf(&b, ",\"at\":\"%s\"}", util_rfc3339(at, ts, sizeof(ts)));
	if (rc) {
		buf_fini(&b);
		return NULL;
	}
	return b.p;
}

size_t publish_render_receipt(char *dst, size_t cap, int64_t id, const char *slug, int64_t amount,
                              int64_t matched, int64_t fee, const char *currency,
                              int64_t created_at, const char *status_token)
{
	char ts[32];
	int n =
	    snprintf(dst, cap,
	             "{\"id\":\"dn_%lld\",\"status\":\"pending\",\"campaign\":\"%s\","
	             "\"amount_cents\":%lld,\"matched_cents\":%lld,\"fee_cents\":%lld,"
	             "\"charged_cents\":%lld,\"currency\":\"%s\",\"created_at\":\"%s\"%s%s%s}",
	             (long long)id, slug, (long long)amount, (long long)matched, (long long)fee,
	             (long long)(amount + fee), currency, util_rfc3339(created_at, ts, sizeof(ts)),
	             status_token[0] ? ",\"status_token\":\"" : "", status_token,
	             status_token[0] ? "\"" : "");

	return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

size_t publish_render_offline(char *dst, size_t cap, int64_t id, const char *slug, int64_t amount,
                              int64_t matched, const char *currency, const char *method,
                              int64_t received_at, int64_t created_at)
{
	char ts[32], rts[32];
	int n = snprintf(dst, cap,
	                 "{\"id\":\"dn_%lld\",\"status\":\"succeeded\",\"source\":\"offline\","
	                 "\"campaign\":\"%s\",\"amount_cents\":%lld,\"matched_cents\":%lld,"
	                 "\"currency\":\"%s\",\"method\":\"%s\",\"received_at\":\"%s\","
	                 "\"created_at\":\"%s\"}",
	                 (long long)id, slug, (long long)amount, (long long)matched, currency,
	                 method, util_rfc3339(received_at, rts, sizeof(rts)),
	                 util_rfc3339(created_at, ts, sizeof(ts)));

	return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

void publish_mark(struct engine *e, struct campaign *c)
{
	if (c->dirty)
		return;
	c->dirty = 1;
	c->next_dirty = e->dirty_head;
	e->dirty_head = c;
}

/* A rendered body waiting for the swap. */
struct fresh {
	struct campaign *c;
	char *json;
	size_t len;
};

void publish_batch(struct engine *e)
{
	struct campaign *c, *list = e->dirty_head;
	struct fresh stack[64], *fresh = stack;
	size_t n = 0, cap = UTIL_ARRAY_LEN(stack);
	int64_t now = util_now_ms();

	e->dirty_head = NULL;
	/* Render unlocked: w is the writer's own. */
	for (c = list; c; c = c->next_dirty) {
		char *json = NULL;

		if (n == cap) {
			struct fresh *bigger = malloc(2 * cap * sizeof(*bigger));

			if (!bigger) {
				log_msg(LOG_ERROR, "engine.render_failed", "out of memory");
				break;
			}
			memcpy(bigger, fresh, n * sizeof(*fresh));
			if (fresh != stack)
				free(fresh);
			fresh = bigger;
			cap *= 2;
		}
		if (render_campaign(e, &e->scratch, c, now) == 0) {
			json = malloc(e->scratch.len + 1);
			if (json)
				memcpy(json, e->scratch.p, e->scratch.len + 1);
		}
		if (!json) {
			/* Not published this time: readers keep the previous
			 * body and seq, which agree. */
			log_msg(LOG_ERROR, "engine.render_failed", "campaign %s: out of memory",
			        c->w.slug);
			continue;
		}
		fresh[n++] = (struct fresh){c, json, e->scratch.len};
	}
	/* Swap every body, its seq and its numbers in one critical section. */
	pthread_mutex_lock(&e->lock);
	for (size_t i = 0; i < n; i++) {
		struct campaign *f = fresh[i].c;
		int64_t total = campaign_total(&f->pub), donors = f->pub.donor_count;
		char *old = f->json;

		e->seq_sum += f->w.seq - f->pub.seq;
		if (strcmp(f->pub.category, f->w.category)) {
			boards_count(e, f->pub.category, f->pub.currency, -1);
			if (boards_count(e, f->w.category, f->w.currency, 1))
				log_msg(LOG_ERROR, "engine.category_lost",
				        "campaign %s: out of memory: its category's boards miss it",
				        f->w.slug);
		}
		f->pub = f->w;
		f->json = fresh[i].json;
		f->json_len = fresh[i].len;
		fresh[i].json = old;
		if (campaign_total(&f->pub) != total)
			campaigns_rerank(e, f, ENGINE_BY_TOTAL);
		if (f->pub.donor_count != donors)
			campaigns_rerank(e, f, ENGINE_BY_DONORS);
	}
	if (n)
		e->version++;
	pthread_mutex_unlock(&e->lock);
	for (c = list; c;) {
		struct campaign *next = c->next_dirty;

		c->dirty = 0;
		c->bumped = 0;
		c->next_dirty = NULL;
		c = next;
	}
	for (size_t i = 0; i < n; i++) {
		free(fresh[i].json); /* the old body */
		engine_notify_changed(e, fresh[i].c->w.id, fresh[i].c->w.seq);
	}
	if (fresh != stack)
		free(fresh);
	for (size_t i = 0; i < e->n_gifts; i++) {
		engine_notify_event(e, e->gifts[i].campaign_id, e->gifts[i].type, e->gifts[i].json,
		                    e->gifts[i].len);
		free(e->gifts[i].json);
	}
	if (n || e->n_gifts || e->day_dirty)
		engine_notify_published(e);
	e->day_dirty = 0;
	e->n_gifts = 0;
}
