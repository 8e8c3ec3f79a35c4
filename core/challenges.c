/* core/challenges.c - staff actions on challenges and the JSON that
 * shows them: the admin API's challenges and a campaign's standing in
 * each. The progress and awards themselves are the challenge book's
 * (core/bonus.c), kept by the writer. */
#include "core/internal.h"
#include "db/challenges.h"
#include "base/events.h"
#include "base/log.h"
#include "base/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEADERS_SHOWN 20

/* Where a challenge stands for one campaign. */
static const char *state_of(const struct challenge_row *c, const struct bonus_progress *p,
                            int64_t now)
{
	if (p && p->awarded)
		return "unlocked";
	if (now < c->starts_at)
		return "upcoming";
	if (now >= c->ends_at)
		return "ended";
	if (c->winners && c->awarded >= c->winners)
		return "claimed"; /* every prize is taken */
	return "open";
}

static int put_time(struct buf *b, const char *key, int64_t ms)
{
	char ts[32];

	if (!ms)
		return buf_printf(b, ",\"%s\":null", key);
	return buf_printf(b, ",\"%s\":\"%s\"", key, util_rfc3339(ms, ts, sizeof(ts)));
}

/* The fields every view of a challenge shows. */
static int head_json(const struct challenge_row *c, struct buf *out)
{
	int rc = buf_puts(out, "{\"slug\":");

	rc |= buf_json_string(out, c->slug);
	rc |= buf_puts(out, ",\"name\":");
	rc |= buf_json_string(out, c->name);
	rc |= buf_puts(out, ",\"sponsor\":");
	rc |= buf_json_string(out, c->sponsor);
	rc |= buf_printf(out,
	                 ",\"currency\":\"%s\",\"kind\":\"%s\",\"threshold\":%lld,"
	                 "\"bonus_cents\":%lld,\"winners\":%d,\"min_gift_cents\":%lld,"
	                 "\"online_only\":%s",
	                 c->currency, challenge_kind_names[c->kind], (long long)c->threshold,
	                 (long long)c->bonus_cents, c->winners, (long long)c->min_gift_cents,
	                 c->online_only ? "true" : "false");
	rc |= put_time(out, "starts_at", c->starts_at);
	rc |= put_time(out, "ends_at", c->ends_at);
	return rc;
}

/* e->lock held, or the writer reading. */
static const char *slug_of(struct engine *e, int64_t campaign_id)
{
	struct campaign *c = campaign_find_id(e, campaign_id);

	return c ? c->pub.slug : "";
}

/* A challenge as staff see it: its rules, awards made and the campaigns
 * closest to it. */
static int challenge_json(struct engine *e, const struct challenge_row *c, int64_t now,
                          struct buf *out)
{
	struct bonus_progress lead[LEADERS_SHOWN];
	int n = bonus_leaders(e->bonus, c->id, lead, LEADERS_SHOWN);
	int rc = head_json(c, out);

	rc |= buf_puts(out, ",\"campaigns\":");
	if (!c->n_campaigns) {
		rc |= buf_puts(out, "\"all\"");
	} else {
		rc |= buf_puts(out, "[");
		pthread_mutex_lock(&e->lock);
		for (int i = 0; i < c->n_campaigns; i++) {
			rc |= i ? buf_puts(out, ",") : 0;
			rc |= buf_json_string(out, slug_of(e, c->campaigns[i]));
		}
		pthread_mutex_unlock(&e->lock);
		rc |= buf_puts(out, "]");
	}
	rc |= buf_printf(out, ",\"state\":\"%s\",\"awarded\":%d,\"standings\":[",
	                 state_of(c, NULL, now), c->awarded);
	pthread_mutex_lock(&e->lock);
	for (int i = 0; i < n; i++) {
		rc |= buf_printf(out, "%s{\"campaign\":", i ? "," : "");
		rc |= buf_json_string(out, slug_of(e, lead[i].campaign_id));
		rc |= buf_printf(out, ",\"value\":%lld,\"unlocked\":%s", (long long)lead[i].value,
		                 lead[i].awarded ? "true" : "false");
		rc |= put_time(out, "unlocked_at", lead[i].award_at);
		rc |= buf_puts(out, "}");
	}
	pthread_mutex_unlock(&e->lock);
	rc |= buf_puts(out, "]");
	rc |= put_time(out, "created_at", c->created_at);
	rc |= buf_puts(out, "}");
	return rc ? -ENOMEM : 0;
}

int engine_challenges_json(struct engine *e, struct buf *out)
{
	struct challenge_row *v;
	long n = bonus_list(e->bonus, &v);
	int64_t now = util_now_ms();
	int rc;

	if (n < 0)
		return (int)n;
	rc = buf_puts(out, "{\"challenges\":[") ? -ENOMEM : 0;
	for (long i = 0; i < n && !rc; i++)
		rc = (i && buf_puts(out, ",")) ? -ENOMEM : challenge_json(e, &v[i], now, out);
	free(v);
	if (!rc && buf_puts(out, "]}"))
		rc = -ENOMEM;
	return rc;
}

int engine_challenge_json(struct engine *e, const char *slug, struct buf *out)
{
	struct challenge_row c;

	if (bonus_get(e->bonus, slug, &c))
		return TALLY_ENOCHALLENGE;
	return challenge_json(e, &c, util_now_ms(), out);
}

int challenges_campaign_json(struct engine *e, const struct campaign_row *c, int64_t now,
                             struct buf *out)
{
	struct challenge_row rows[8];
	struct bonus_progress p[8];
	int n = bonus_for_campaign(e->bonus, c->id, c->currency, rows, p, 8);
	int rc = buf_puts(out, ",\"challenges\":[");

	for (int i = 0; i < n; i++) {
		rc |= i ? buf_puts(out, ",") : 0;
		rc |= head_json(&rows[i], out);
		rc |= buf_printf(out, ",\"progress\":%lld,\"state\":\"%s\"}", (long long)p[i].value,
		                 state_of(&rows[i], &p[i], now));
	}
	return rc | buf_puts(out, "]") ? -ENOMEM : 0;
}

int engine_challenge_create(struct engine *e, const struct challenge_spec *spec, const char *actor,
                            engine_done_fn done, void *ud)
{
	struct challenge_row c = spec->row, have;
	struct pending *p;
	char detail[160];
	int rc = 0;

	if (!bonus_get(e->bonus, c.slug, &have))
		return TALLY_ECHALLENGE_EXISTS;
	c.created_at = util_now_ms();
	c.n_campaigns = 0;
	pthread_mutex_lock(&e->lock);
	for (int i = 0; i < spec->n_slugs && !rc; i++) {
		struct campaign *k = campaign_find_slug(e, spec->slugs[i], strlen(spec->slugs[i]));
		int j;

		if (!k) {
			rc = TALLY_ENOCAMPAIGN;
			break;
		}
		if (!c.currency[0])
			memcpy(c.currency, k->pub.currency, sizeof(c.currency));
		if (strcmp(c.currency, k->pub.currency)) {
			rc = TALLY_EPOOL_CURRENCY;
			break;
		}
		for (j = c.n_campaigns; j > 0 && c.campaigns[j - 1] > k->pub.id; j--)
			c.campaigns[j] = c.campaigns[j - 1];
		c.campaigns[j] = k->pub.id;
		c.n_campaigns++;
	}
	pthread_mutex_unlock(&e->lock);
	if (rc)
		return rc;
	if (!c.currency[0])
		return TALLY_EPOOL_CURRENCY;
	p = pending_new(e, DB_OP_CHALLENGE_CREATE, done, ud, actor);
	if (!p)
		return TALLY_EIO;
	p->op.u.challenge = c;
	p->op.now_ms = c.created_at;
	snprintf(detail, sizeof(detail), "%s >= %lld: %lld %s to %d", challenge_kind_names[c.kind],
	         (long long)c.threshold, (long long)c.bonus_cents, c.currency, c.winners);
	pending_audit(p, "challenge.create", c.slug, detail);
	return engine_submit(e, p, 1);
}

int engine_challenge_create_sync(struct engine *e, const struct challenge_spec *spec,
                                 const char *actor)
{
	struct waiter w;

	waiter_init(&w);
	return waiter_wait(&w, engine_challenge_create(e, spec, actor, waiter_done, &w));
}

int challenges_answer(struct engine *e, const struct db_op *op, struct buf *out)
{
	return engine_challenge_json(e, op->u.challenge.slug, out);
}

/* Queue the awards in v after op, in the same transaction. Writer. */
static void link_awards(struct engine *e, struct db_op *op, const struct bonus_award *v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		struct pending *a = pending_new(e, DB_OP_AWARD, NULL, NULL, "tally");
		char target[160], detail[96];

		if (!a) {
			log_msg(
			    LOG_ERROR, "challenge.award_lost",
			    "challenge %s: campaign %lld reached it; no memory to record the award",
			    v[i].slug, (long long)v[i].campaign_id);
			continue;
		}
		a->op.now_ms = util_now_ms();
		a->op.u.award.challenge_id = v[i].challenge_id;
		a->op.u.award.campaign_id = v[i].campaign_id;
		a->op.u.award.bonus_cents = v[i].bonus_cents;
		a->op.u.award.donation_id = v[i].donation_id;
		snprintf(target, sizeof(target), "%s", v[i].slug);
		snprintf(detail, sizeof(detail), "%s unlocked %lld (dn_%lld)",
		         slug_of(e, v[i].campaign_id), (long long)v[i].bonus_cents,
		         (long long)v[i].donation_id);
		pending_audit(a, "challenge.unlock", target, detail);
		a->op.next = op->next;
		op->next = &a->op;
	}
}

#define AWARDS_AT_ONCE 16

void challenges_applied(struct engine *e, struct db_op *op)
{
	const struct db_job_update *u = &op->u.job;
	struct bonus_award v[AWARDS_AT_ONCE];
	struct bonus_gift g;
	int n;

	if (op->kind == DB_OP_OFFLINE && !op->rc && !op->u.donation.replay) {
		/* An offline gift succeeds as it is stored: it counts now, as
		 * the rebuild at start counts it (not for online_only ones). */
		const struct donation_req *d = &op->u.donation.req;

		g = (struct bonus_gift){op->u.donation.id,
		                        op->campaign_id,
		                        d->currency,
		                        d->email,
		                        d->amount_cents,
		                        op->now_ms,
		                        1};
	} else if (op->kind != DB_OP_JOB_UPDATE || op->rc || !u->applied ||
	           u->effect != EFFECT_SUCCEEDED) {
		return;
	} else {
		g = (struct bonus_gift){u->donation_id,
		                        u->campaign_id,
		                        u->d.currency,
		                        u->d.email,
		                        u->d.amount_cents,
		                        u->created_at,
		                        0};
	}
	e->bonus_counted = 1;
	n = bonus_count(e->bonus, &g, op->now_ms, v, AWARDS_AT_ONCE);
	link_awards(e, op, v, n);
}

void challenges_created(struct engine *e, const struct db_op *op)
{
	struct bonus_award v[AWARDS_AT_ONCE];
	int rc, n;

	pthread_mutex_lock(&e->reader_lock);
	rc = e->reader ? bonus_put(e->bonus, &op->u.challenge, e->reader) : -ESHUTDOWN;
	pthread_mutex_unlock(&e->reader_lock);
	if (rc) {
		log_msg(LOG_ERROR, "challenge.load_failed",
		        "challenge %s is stored but counts only after a restart: %s",
		        op->u.challenge.slug, tally_strerror(rc));
		return;
	}
	/* Campaigns that reached it before it existed win now (in campaign
	 * order), each award an op of its own through the writer. */
	while ((n = bonus_due(e->bonus, util_now_ms(), v, AWARDS_AT_ONCE)) > 0) {
		struct db_op head = {0};

		/* Each names the newest gift that counted, as an award made
		 * as gifts succeed names the one that reached it. */
		pthread_mutex_lock(&e->reader_lock);
		for (int i = 0; i < n && e->reader; i++)
			if (db_challenge_last_gift(e->reader, &op->u.challenge, v[i].campaign_id,
			                           &v[i].donation_id))
				log_msg(LOG_WARN, "challenge.gift_unknown",
				        "challenge %s: the award names no gift", v[i].slug);
		pthread_mutex_unlock(&e->reader_lock);

		link_awards(e, &head, v, n);
		while (head.next) {
			struct db_op *a = head.next;

			head.next = a->next;
			a->next = NULL;
			if (engine_submit(e, a->owner, 1))
				log_msg(LOG_ERROR, "challenge.award_lost",
				        "challenge %s: an award could not be queued", v[0].slug);
		}
	}
}

void challenges_unlocked(struct engine *e, const struct db_op *op)
{
	struct campaign *c = campaign_find_id(e, op->u.award.campaign_id);
	struct challenge_row ch;
	struct buf b = {0};
	char ts[32];
	int rc;

	if (!c)
		return;
	c->w.bonus_cents += op->u.award.bonus_cents;
	c->w.seq++; /* as the writer did */
	publish_mark(e, c);
	events_note("challenge", NULL, "%s unlocked %s: %lld %s bonus", c->w.slug, op->audit.target,
	            (long long)op->u.award.bonus_cents, c->w.currency);
	/* And a live event on the campaign's channel. */
	if (bonus_get(e->bonus, op->audit.target, &ch))
		return;
	rc = buf_puts(&b, "{\"challenge\":");
	rc |= buf_json_string(&b, ch.slug);
	rc |= buf_puts(&b, ",\"name\":");
	rc |= buf_json_string(&b, ch.name);
	rc |= buf_puts(&b, ",\"sponsor\":");
	rc |= buf_json_string(&b, ch.sponsor);
	rc |= buf_printf(&b, ",\"bonus_cents\":%lld,\"at\":\"%s\"}",
	                 (long long)op->u.award.bonus_cents,
	                 util_rfc3339(op->now_ms, ts, sizeof(ts)));
	if (!rc)
		commit_queue_event(e, c->w.id, "challenge", b.p);
	buf_fini(&b);
}
