/* core/commit.c - a committed batch, mirrored into memory in one order.
 *
 * DESIGN: everything here runs on the writer thread, after COMMIT returned
 * (or after the batch failed), in four steps over the whole batch:
 *   1. mirror: each committed op changes its campaign's working copy
 *      (totals, status, recent gifts) and marks it, or the staff token
 *      table (a token added or revoked works so from its answer on);
 *   2. publish (publish.c): JSON, seq and numbers swapped in together,
 *      then the listeners;
 *   3. release the job states: new jobs become ready, finished attempts
 *      leave `running`, queue switches flip, in submission order;
 *   4. answer: each op's done callback, and the staff action's log line.
 * So a worker never runs a receipt before the gift's success is published,
 * a job that left `running` is already visible to readers, and a done
 * callback (engine_sync's among them) means all of the above happened.
 */
#include "core/internal.h"
#include "core/jobs.h"
#include "base/events.h"
#include "base/log.h"
#include "base/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOBS_AT_ONCE 256

/* The writer changes a campaign's stored seq once per batch. */
static void bump_seq(struct campaign *c)
{
	if (!c->bumped) {
		c->w.seq++;
		c->bumped = 1;
	}
}

static void push_recent(struct campaign *c, char *gift)
{
	if (c->n_recent == RECENT_MAX)
		free(c->recent[--c->n_recent]);
	memmove(c->recent + 1, c->recent, (size_t)c->n_recent * sizeof(c->recent[0]));
	c->recent[0] = gift;
	c->n_recent++;
}

void commit_queue_event(struct engine *e, int64_t campaign_id, const char *type, const char *json)
{
	size_t len = strlen(json);
	char *copy;

	if (e->n_gifts == e->gifts_cap) {
		size_t cap = e->gifts_cap ? 2 * e->gifts_cap : 64;
		struct gift_event *g = realloc(e->gifts, cap * sizeof(*g));

		if (!g)
			goto fail;
		e->gifts = g;
		e->gifts_cap = cap;
	}
	copy = malloc(len + 1);
	if (!copy)
		goto fail;
	memcpy(copy, json, len + 1);
	e->gifts[e->n_gifts++] = (struct gift_event){campaign_id, type, copy, len};
	return;
fail:
	log_msg(LOG_ERROR, "engine.event_lost", "campaign %lld: out of memory",
	        (long long)campaign_id);
}

/* ---- step 1: mirror ---- */

/* *total += delta, checked: admission keeps every campaign's gifts under
 * TALLY_TOTAL_MAX, so an overflow here means numbers from elsewhere (a
 * database edited by hand); the total then stays as it was, never wraps,
 * and the error is logged. */
static void add_cents(int64_t *total, int64_t delta, const struct campaign *c, const char *what)
{
	int64_t sum;

	if (__builtin_add_overflow(*total, delta, &sum)) {
		log_msg(LOG_ERROR, "engine.total_overflow",
		        "campaign %s: %s %lld + %lld overflows; left at %lld", c->w.slug, what,
		        (long long)*total, (long long)delta, (long long)*total);
		return;
	}
	*total = sum;
}

/* A gift was recorded: it is pending until its capture succeeds. */
static void mirror_donation(struct engine *e, const struct db_op *op)
{
	struct campaign *c = campaign_find_id(e, op->campaign_id);

	if (!c)
		return;
	add_cents(&c->w.pending_cents, op->u.donation.req.amount_cents, c, "pending_cents");
	bump_seq(c);
	publish_mark(e, c);
}

/* The gift's match follows its donation (as db/store.c moved the
 * campaign's stored matched_cents in the same transaction). */
static void mirror_match(struct engine *e, const struct db_job_update *u, struct campaign *c)
{
	int64_t m = u->matched_cents;

	if (!u->pool_id || m <= 0)
		return;
	switch (u->effect) {
	case EFFECT_SUCCEEDED:
		match_settle(e->match, u->pool_id, m);
		if (c)
			add_cents(&c->w.matched_cents, m, c, "matched_cents");
		break;
	case EFFECT_FAILED:
		match_release(e->match, u->pool_id, u->d.email, m);
		break;
	case EFFECT_REFUNDED:
		if (!u->match_released)
			break;
		match_unuse(e->match, u->pool_id, u->d.email, m);
		if (c)
			add_cents(&c->w.matched_cents, -m, c, "matched_cents");
		break;
	default:
		break;
	}
}

/* A gift's effect on its campaign, by its rule (effect_rules): the one
 * path of a capture's outcome, a refund and an offline gift alike. d is
 * the gift, matched its match, new_donor its donor's first succeeded gift
 * here, id its donation id, created_at when it was recorded. */
static void mirror_gift(struct engine *e, struct campaign *c, enum job_effect effect,
                        const struct donation_req *d, int64_t matched, int new_donor, int64_t id,
                        int64_t created_at, int64_t now_ms)
{
	const struct effect_rule *rule = &effect_rules[effect];
	struct hour_window *hour;
	char *gift;

	bump_seq(c);
	add_cents(&c->w.pending_cents, rule->pending * d->amount_cents, c, "pending_cents");
	add_cents(&c->w.raised_cents, rule->raised * d->amount_cents, c, "raised_cents");
	/* A failed capture or a refund gives its room back (a success only
	 * moves the gift from pending to raised). */
	if (rule->pending + rule->raised < 0)
		atomic_fetch_sub(&c->claimed_cents, d->amount_cents);
	c->w.donation_count += rule->raised;
	if (rule->raised > 0)
		c->w.donor_count += new_donor;
	publish_mark(e, c);
	if (effect != EFFECT_SUCCEEDED && effect != EFFECT_OFFLINE)
		return;
	/* Allocated outside the lock; only this thread sets it. Without
	 * memory the hour's rate misses this gift, nothing else does. */
	hour = c->hour ? NULL : calloc(1, sizeof(*hour));
	pthread_mutex_lock(&e->lock);
	if (hour)
		c->hour = hour;
	if (c->hour)
		hour_add(c->hour, now_ms, d->amount_cents);
	rate_add(c->rate, RATE_BUCKETS, &c->rate_epoch, now_ms / 10000, 1);
	e->donations_total++;
	rate_add(e->rate, 10, &e->rate_epoch, now_ms / 1000, 1);
	pthread_mutex_unlock(&e->lock);
	gift = publish_render_gift(d->anonymous ? "Anonymous" : d->name, d->amount_cents, matched,
	                           d->hide_amount, d->message, created_at);
	if (!gift) {
		log_msg(LOG_ERROR, "engine.render_failed", "dn_%lld: out of memory", (long long)id);
		return;
	}
	commit_queue_event(e, c->w.id, "donation", gift);
	push_recent(c, gift);
}

/* A job's effect on its donation committed. */
static void mirror_effect(struct engine *e, const struct db_op *op)
{
	const struct db_job_update *u = &op->u.job;
	struct campaign *c = campaign_find_id(e, op->campaign_id);

	if (!u->applied)
		return;
	mirror_match(e, u, c);
	if (!c || !effect_rules[u->effect].public)
		return;
	mirror_gift(e, c, u->effect, &u->d, u->matched_cents, u->new_donor, u->donation_id,
	            u->created_at, op->now_ms);
}

/* An offline gift committed: succeeded and counted at once. */
static void mirror_offline(struct engine *e, const struct db_op *op)
{
	struct campaign *c = campaign_find_id(e, op->campaign_id);

	/* A match the prepare hook reserved for it is matched money at once,
	 * as the store counted it. */
	if (op->u.donation.pool_id && op->u.donation.matched_cents > 0) {
		match_settle(e->match, op->u.donation.pool_id, op->u.donation.matched_cents);
		if (c)
			add_cents(&c->w.matched_cents, op->u.donation.matched_cents, c,
			          "matched_cents");
	}
	if (c)
		mirror_gift(e, c, EFFECT_OFFLINE, &op->u.donation.req, op->u.donation.matched_cents,
		            op->u.donation.new_donor, op->u.donation.id, op->now_ms, op->now_ms);
}

static void mirror_campaign_create(struct engine *e, struct pending *p)
{
	const struct campaign_spec *s = &p->op.u.campaign;
	struct campaign_row row = {0};
	struct campaign *c;
	int rc;

	row.id = p->op.campaign_id;
	memcpy(row.slug, s->slug, sizeof(row.slug));
	memcpy(row.name, s->name, sizeof(row.name));
	memcpy(row.currency, s->currency, sizeof(row.currency));
	memcpy(row.category, s->category, sizeof(row.category));
	row.status = CAMPAIGN_ACTIVE;
	row.goal_cents = s->goal_cents;
	row.starts_at = s->starts_at;
	row.ends_at = s->ends_at;
	row.created_at = p->op.now_ms;
	row.seq = 1; /* as inserted */
	c = campaign_new(&row, &e->day);
	if (!c) {
		p->op.rc = -ENOMEM;
		return;
	}
	pthread_mutex_lock(&e->lock);
	rc = campaigns_add(e, c, 1);
	pthread_mutex_unlock(&e->lock);
	if (rc) {
		campaign_free(c);
		p->op.rc = rc;
		return;
	}
	publish_mark(e, c);
}

static void mirror_campaign_change(struct engine *e, struct pending *p)
{
	const struct campaign_spec *s = &p->op.u.campaign;
	struct campaign *c = campaign_find_id(e, p->op.campaign_id);

	if (!c)
		return;
	if (p->op.kind == DB_OP_CAMPAIGN_UPDATE) {
		if (s->has_name)
			memcpy(c->w.name, s->name, sizeof(c->w.name));
		if (s->has_goal)
			c->w.goal_cents = s->goal_cents;
		if (s->has_starts)
			c->w.starts_at = s->starts_at;
		if (s->has_ends)
			c->w.ends_at = s->ends_at;
		if (s->has_category)
			memcpy(c->w.category, s->category, sizeof(c->w.category));
	}
	if (p->op.kind == DB_OP_CAMPAIGN_STATUS) {
		/* A pause counts from the one that paused it (the audit row's
		 * time, which a restart reads back), not from repeats. */
		if (p->op.u.status != CAMPAIGN_PAUSED)
			c->w.paused_since = 0;
		else if (c->w.status != CAMPAIGN_PAUSED)
			c->w.paused_since = p->op.now_ms;
		c->w.status = p->op.u.status;
	}
	if (p->op.kind == DB_OP_CAMPAIGN_TOUCH)
		c->touch_pending = 0;
	c->effective = campaign_effective(&c->w, &e->day, util_now_ms());
	c->w.seq++; /* as the writer did */
	publish_mark(e, c);
}

/* A staff token change committed: the table follows before the answer, so
 * a token works (or stops working) once its answer is out. */
static void mirror_token(struct engine *e, const struct db_op *op)
{
	struct staff_token t = {0};

	if (op->kind == DB_OP_TOKEN_REVOKE) {
		/* Revoked before, by another process, perhaps not read yet. */
		tokens_revoke(e->tokens, op->u.token.name, op->u.token.revoked_at);
		return;
	}
	snprintf(t.name, sizeof(t.name), "%s", op->u.token.name);
	t.role = op->u.token.role;
	t.created_at = op->now_ms;
	if (tokens_add(e->tokens, &t, op->u.token.hash))
		log_msg(LOG_ERROR, "tokens.add_failed",
		        "staff token %s is stored but works only after a restart", t.name);
}

/* A pool was created or changed: the book follows, and every campaign of
 * its currency shows its banner again (the writer bumped their seq). */
/* Every campaign of currency shows a change (a pool's or a challenge's):
 * the writer bumped their seq with the op (db/pools.c, db/challenges.c). */
static void touch_currency(struct engine *e, const char *currency)
{
	for (size_t i = 1; i < e->id_cap; i++) {
		struct campaign *c = e->by_id[i];

		if (!c || strcmp(c->w.currency, currency))
			continue;
		c->w.seq++; /* as the writer did */
		publish_mark(e, c);
	}
}

static void mirror_pool(struct engine *e, const struct db_op *op)
{
	if (match_put(e->match, &op->u.pool))
		log_msg(LOG_ERROR, "match.put_failed",
		        "match pool %s is stored but matches only after a restart",
		        op->u.pool.slug);
	touch_currency(e, op->u.pool.currency);
}

static void mirror(struct engine *e, struct pending *p)
{
	struct db_op *op = &p->op;

	switch (op->kind) {
	case DB_OP_DONATION:
		if (!op->u.donation.replay)
			mirror_donation(e, op);
		break;
	case DB_OP_OFFLINE:
		if (!op->u.donation.replay)
			mirror_offline(e, op);
		break;
	case DB_OP_JOB_UPDATE:
		mirror_effect(e, op);
		break;
	case DB_OP_CAMPAIGN_CREATE:
		mirror_campaign_create(e, p);
		break;
	case DB_OP_CAMPAIGN_UPDATE:
	case DB_OP_CAMPAIGN_STATUS:
	case DB_OP_CAMPAIGN_TOUCH:
		mirror_campaign_change(e, p);
		break;
	case DB_OP_TOKEN_ADD:
	case DB_OP_TOKEN_REVOKE:
		mirror_token(e, op);
		break;
	case DB_OP_POOL_CREATE:
	case DB_OP_POOL_UPDATE:
		mirror_pool(e, op);
		break;
	case DB_OP_CHALLENGE_CREATE:
		touch_currency(e, op->u.challenge.currency);
		challenges_created(e, op);
		break;
	case DB_OP_AWARD:
		challenges_unlocked(e, op);
		break;
	case DB_OP_DAY:
		day_mirror(e, op);
		break;
	default:
		break;
	}
}

/* ---- step 3: release the job states ---- */

struct outcomes {
	const struct db_job_update *upd[JOBS_AT_ONCE];
	int rc[JOBS_AT_ONCE];
	int n;
};

static void outcomes_flush(struct engine *e, struct outcomes *o)
{
	if (o->n)
		jobs_committed_many(e->jobs, o->upd, o->rc, o->n);
	o->n = 0;
}

static void release(struct engine *e, struct db_op *ops, int commit_rc)
{
	struct outcomes o;

	o.n = 0;
	for (struct db_op *op = ops; op; op = op->next) {
		if (op->kind == DB_OP_JOB_UPDATE) {
			if (o.n == JOBS_AT_ONCE)
				outcomes_flush(e, &o);
			o.upd[o.n] = &op->u.job;
			o.rc[o.n++] = commit_rc ? commit_rc : op->rc;
			continue;
		}
		if (commit_rc || op->rc)
			continue;
		switch (op->kind) {
		case DB_OP_DONATION:
			if (!op->u.donation.replay &&
			    jobs_add(e->jobs, op->u.donation.job_id, JOB_CAPTURE, op->u.donation.id,
			             NULL, op->now_ms))
				log_msg(LOG_ERROR, "engine.capture_lost",
				        "dn_%lld: its capture job is stored but not queued until "
				        "restart",
				        (long long)op->u.donation.id);
			break;
		case DB_OP_OFFLINE:
			/* Its receipt and webhooks, stored with it. */
			for (int i = 0;
			     !op->u.donation.replay && i < op->u.donation.offline.n_follow; i++) {
				const struct db_new_job *n = &op->u.donation.offline.follow[i];

				if (jobs_add(e->jobs, n->id, n->kind, op->u.donation.id, n->url,
				             op->now_ms))
					log_msg(LOG_ERROR, "engine.job_lost",
					        "dn_%lld: job %lld is stored but not queued until "
					        "restart",
					        (long long)op->u.donation.id, (long long)n->id);
			}
			break;
		case DB_OP_REFUND:
			jobs_add(e->jobs, op->u.refund.job.id, JOB_REFUND, op->u.refund.donation_id,
			         NULL, op->now_ms);
			break;
		case DB_OP_QUEUE_PAUSE:
			/* Jobs follow the writer's order: outcomes before
			 * this op first. */
			outcomes_flush(e, &o);
			jobs_set_paused(e->jobs, op->u.queue.queue, op->u.queue.paused);
			break;
		case DB_OP_QUEUE_RETRY_DEAD:
			outcomes_flush(e, &o);
			jobs_retry_dead(e->jobs, op->u.queue.queue, op->now_ms);
			break;
		default:
			break;
		}
	}
	outcomes_flush(e, &o);
}

/* ---- step 4: answer ---- */

static void answer(struct engine *e, struct pending *p, int rc)
{
	struct db_op *op = &p->op;

	if (op->audit.actor[0] && !rc && !(op->kind == DB_OP_OFFLINE && op->u.donation.replay)) {
		log_event(LOG_INFO, "staff.action",
		          json_pack("{s:s,s:s,s:s,s:s}", "actor", op->audit.actor, "action",
		                    op->audit.action, "target", op->audit.target, "detail",
		                    op->audit.detail));
		events_note("staff", op->audit.actor, "%s %s%s%.100s", op->audit.action,
		            op->audit.target, op->audit.detail[0] ? ": " : "", op->audit.detail);
	}
	if (op->kind == DB_OP_DONATION || op->kind == DB_OP_OFFLINE)
		intake_finish(e, p, rc);
	else
		staff_finish(e, p, rc);
}

static int map_rc(const struct db_op *op, int rc)
{
	int token = op->kind == DB_OP_TOKEN_ADD || op->kind == DB_OP_TOKEN_REVOKE;
	int pool = op->kind == DB_OP_POOL_CREATE || op->kind == DB_OP_POOL_UPDATE;
	int challenge = op->kind == DB_OP_CHALLENGE_CREATE;

	switch (rc) {
	case 0:
		return 0;
	case -EEXIST:
		return token       ? TALLY_ETOKEN_EXISTS
		       : pool      ? TALLY_EPOOL_EXISTS
		       : challenge ? TALLY_ECHALLENGE_EXISTS
		                   : TALLY_EEXISTS;
	case -ENOENT:
		return token ? TALLY_ENOTOKEN : pool ? TALLY_ENOPOOL : TALLY_ENOCAMPAIGN;
	case -ERANGE:
		return TALLY_EPOOL_AMOUNT;
	case -ESHUTDOWN:
		return TALLY_ESHUTDOWN;
	case -EALREADY:
		return TALLY_ESTATE;
	case -ESRCH:
		return TALLY_ENOJOB;
	case -EXDEV:
		return TALLY_EDAY_CURRENCY;
	default:
		return TALLY_EIO;
	}
}

int commit_prepare(void *ctx, struct db_op *op)
{
	struct engine *e = ctx;

	if (op->kind == DB_OP_DONATION || op->kind == DB_OP_OFFLINE) {
		/* An offline gift draws only from pools that match them
		 * (match_offline), and its match is matched money at once. */
		const struct donation_req *d = &op->u.donation.req;
		struct match_gift g = {op->campaign_id, d->currency, d->email,
		                       d->amount_cents, op->now_ms,  op->kind == DB_OP_OFFLINE};

		match_reserve(e->match, &g, &op->u.donation.pool_id, &op->u.donation.matched_cents);
		return 0;
	}
	return pools_prepare(e, op);
}

void commit_applied(void *ctx, struct db_op *op)
{
	challenges_applied(ctx, op);
}

/* Reservations of gifts that were not stored go back to their pools. */
static void unreserve(struct engine *e, struct db_op *ops, int commit_rc)
{
	for (struct db_op *op = ops; op; op = op->next) {
		if ((op->kind != DB_OP_DONATION && op->kind != DB_OP_OFFLINE) ||
		    !op->u.donation.matched_cents ||
		    !(commit_rc || op->rc || op->u.donation.replay))
			continue;
		match_release(e->match, op->u.donation.pool_id, op->u.donation.req.email,
		              op->u.donation.matched_cents);
		op->u.donation.pool_id = 0;
		op->u.donation.matched_cents = 0;
	}
}

void commit_batch(void *ctx, struct db_op *ops, int commit_rc)
{
	struct engine *e = ctx;
	struct pending *done_list = NULL;

	unreserve(e, ops, commit_rc);
	if (commit_rc && e->bonus_counted) {
		/* The challenge book counted gifts that did not commit: read it
		 * again from what did. */
		int rc;

		pthread_mutex_lock(&e->reader_lock);
		rc = e->reader ? bonus_book_load(e->bonus, e->reader) : -ESHUTDOWN;
		pthread_mutex_unlock(&e->reader_lock);
		if (rc)
			log_msg(LOG_ERROR, "challenge.reload_failed",
			        "the challenges' progress may be off until a restart: %s",
			        tally_strerror(rc));
	}
	e->bonus_counted = 0;
	if (!commit_rc)
		for (struct db_op *op = ops; op; op = op->next)
			if (!op->rc)
				mirror(e, op->owner);
	publish_batch(e);
	release(e, ops, commit_rc);
	while (ops) {
		struct pending *p = ops->owner;
		struct db_op *next = ops->next;

		answer(e, p, map_rc(ops, commit_rc ? commit_rc : ops->rc));
		p->next_free = done_list;
		done_list = p;
		ops = next;
	}
	pending_release(e, done_list);
}

/* Record through the writer that c's public state changed (its seq), like
 * any other change. Returns 0 or -ENOMEM. */
static int touch(struct engine *e, struct campaign *c)
{
	struct pending *p = pending_new(e, DB_OP_CAMPAIGN_TOUCH, NULL, NULL, NULL);

	if (!p)
		return -ENOMEM;
	p->op.campaign_id = c->w.id;
	c->touch_pending = 1;
	if (engine_submit(e, p, 1))
		c->touch_pending = 0;
	return 0;
}

/* A campaign's match banner changes with gifts to other campaigns too (a
 * pool for all of them): when the pools' money moved, show it again on
 * each campaign whose banner is not what it shows, at once when its state
 * changed (exhausted, ended, open again), else at most every
 * BANNER_REFRESH_MS. Through the writer, so seq stays stored. */
#define BANNER_REFRESH_MS 5000
static void touch_banners(struct engine *e, int64_t now)
{
	uint64_t v = match_version(e->match);

	/* A pool's window opening or ending changes no money: look every
	 * BANNER_REFRESH_MS anyway. */
	if (v == e->banner_version && now - e->banner_scan_at < BANNER_REFRESH_MS)
		return;
	e->banner_version = v;
	e->banner_scan_at = now;
	for (size_t i = 1; i < e->id_cap; i++) {
		struct campaign *c = e->by_id[i];
		int state;

		if (!c || c->touch_pending ||
		    pools_banner_key(e, &c->w, now, &state) == c->banner_key)
			continue;
		if (state == c->banner_state && now - c->banner_at < BANNER_REFRESH_MS) {
			e->banner_version = 0; /* look again at the next tick */
			continue;
		}
		if (touch(e, c))
			return;
	}
}

void commit_tick(void *ctx)
{
	struct engine *e = ctx;
	int64_t now = util_now_ms();

	/* A schedule opening or closing a campaign changes its public state:
	 * record that (seq) through the writer like any other change. The
	 * day's phase touches every campaign at once. */
	if (day_tick(e, now))
		return;
	for (size_t i = 1; i < e->id_cap; i++) {
		struct campaign *c = e->by_id[i];

		if (!c || c->touch_pending || (!c->w.starts_at && !c->w.ends_at) ||
		    campaign_effective(&c->w, &e->day, now) == c->effective)
			continue;
		if (touch(e, c))
			return;
	}
	touch_banners(e, now);
}

void commit_elsewhere(void *ctx)
{
	struct engine *e = ctx;
	int rc = 0;

	/* engine_free closes the reader before it stops the writer. */
	pthread_mutex_lock(&e->reader_lock);
	if (e->reader)
		rc = tokens_load(e->tokens, e->reader);
	pthread_mutex_unlock(&e->reader_lock);
	if (rc)
		log_msg(LOG_WARN, "tokens.reload_failed", "the staff tokens stay as they were: %s",
		        tally_strerror(rc));
	else
		log_msg(LOG_DEBUG, "tokens.reloaded",
		        "another process changed the database: staff tokens read again");
}

int commit_job_outcomes(void *ctx, struct db_job_update *upd, int n)
{
	struct engine *e = ctx;
	struct db_op *first = NULL, **tail = &first;
	int rc;

	for (int i = 0; i < n; i++) {
		struct pending *p = pending_new(e, DB_OP_JOB_UPDATE, NULL, NULL, NULL);

		if (!p) {
			rc = -ENOMEM;
			goto fail;
		}
		memcpy(&p->op.u.job, &upd[i],
		       upd[i].has_donation ? sizeof(upd[i]) : offsetof(struct db_job_update, d));
		p->op.next = NULL;
		*tail = &p->op;
		tail = &p->op.next;
	}
	rc = db_writer_submit_list(e->writer, first, (size_t)n);
	if (!rc)
		return 0;
fail:
	while (first) {
		struct db_op *next = first->next;

		pending_free(e, first->owner);
		first = next;
	}
	return rc;
}
