/* core/pools.c - staff actions on match pools and the JSON that shows
 * them: the admin API's pools and a campaign's match banner. The money
 * itself is the match book's (core/match.c), kept by the writer. */
#include "core/internal.h"
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

/* Pool p as staff see it. Campaign slugs are read under e->lock unless
 * the caller is the writer (locked = 0 then means "take it"). */
static int pool_json(struct engine *e, const struct pool_row *p, int64_t now, struct buf *out)
{
	int rc = buf_puts(out, "{\"slug\":");

	rc |= buf_json_string(out, p->slug);
	rc |= buf_puts(out, ",\"name\":");
	rc |= buf_json_string(out, p->name);
	rc |= buf_puts(out, ",\"sponsor\":");
	rc |= buf_json_string(out, p->sponsor);
	rc |= buf_printf(out,
	                 ",\"currency\":\"%s\",\"amount_cents\":%lld,\"ratio\":%d,"
	                 "\"per_gift_cap_cents\":%lld,\"per_donor_cap_cents\":%lld,\"campaigns\":",
	                 p->currency, (long long)p->amount_cents, p->ratio,
	                 (long long)p->per_gift_cap_cents, (long long)p->per_donor_cap_cents);
	if (!p->n_campaigns) {
		rc |= buf_puts(out, "\"all\"");
	} else {
		rc |= buf_puts(out, "[");
		pthread_mutex_lock(&e->lock);
		for (int i = 0; i < p->n_campaigns; i++) {
			struct campaign *c = campaign_find_id(e, p->campaigns[i]);

			rc |= i ? buf_puts(out, ",") : 0;
			rc |= buf_json_string(out, c ? c->pub.slug : "");
		}
		pthread_mutex_unlock(&e->lock);
		rc |= buf_puts(out, "]");
	}
	rc |= put_time(out, "starts_at", p->starts_at);
	rc |= put_time(out, "ends_at", p->ends_at);
	rc |= buf_printf(out,
	                 ",\"match_offline\":%s,\"status\":\"%s\",\"state\":\"%s\","
	                 "\"remaining_cents\":%lld,\"reserved_cents\":%lld,\"used_cents\":%lld",
	                 p->match_offline ? "true" : "false", pool_status_names[p->status],
	                 match_state_names[match_state_of(p, now)], (long long)match_remaining(p),
	                 (long long)p->reserved_cents, (long long)p->used_cents);
	rc |= put_time(out, "created_at", p->created_at);
	rc |= buf_puts(out, "}");
	return rc ? -ENOMEM : 0;
}

int engine_pools_json(struct engine *e, struct buf *out)
{
	struct pool_row *v;
	long n = match_list(e->match, &v);
	int64_t now = util_now_ms();
	int rc;

	if (n < 0)
		return (int)n;
	rc = buf_puts(out, "{\"pools\":[") ? -ENOMEM : 0;
	for (long i = 0; i < n && !rc; i++)
		rc = (i && buf_puts(out, ",")) ? -ENOMEM : pool_json(e, &v[i], now, out);
	free(v);
	if (!rc && buf_puts(out, "]}"))
		rc = -ENOMEM;
	return rc;
}

int engine_pool_json(struct engine *e, const char *slug, struct buf *out)
{
	struct pool_row p;

	if (match_get(e->match, slug, &p))
		return TALLY_ENOPOOL;
	return pool_json(e, &p, util_now_ms(), out);
}

/* What a banner shows, in one number: its pool, state and what is left
 * (0: no banner). */
static uint64_t banner_key(const struct pool_row *p, int64_t now)
{
	uint64_t v[3] = {(uint64_t)p->id, (uint64_t)match_state_of(p, now),
	                 (uint64_t)match_remaining(p)};

	return util_hash(v, sizeof(v)) | 1;
}

uint64_t pools_banner_key(struct engine *e, const struct campaign_row *c, int64_t now, int *state)
{
	struct pool_row p;

	*state = -1;
	if (!match_banner(e->match, c->id, c->currency, now, &p))
		return 0;
	*state = (int)match_state_of(&p, now);
	return banner_key(&p, now);
}

int pools_banner_json(struct engine *e, const struct campaign_row *c, int64_t now, struct buf *out,
                      uint64_t *key, int *state)
{
	struct pool_row p;
	int rc;

	*key = 0;
	*state = -1;
	if (!match_banner(e->match, c->id, c->currency, now, &p))
		return buf_puts(out, ",\"match\":null") ? -ENOMEM : 0;
	*key = banner_key(&p, now);
	*state = (int)match_state_of(&p, now);
	rc = buf_puts(out, ",\"match\":{\"pool\":");
	rc |= buf_json_string(out, p.slug);
	rc |= buf_puts(out, ",\"name\":");
	rc |= buf_json_string(out, p.name);
	rc |= buf_puts(out, ",\"sponsor\":");
	rc |= buf_json_string(out, p.sponsor);
	rc |=
	    buf_printf(out, ",\"ratio\":%d,\"remaining_cents\":%lld,\"state\":\"%s\"}", p.ratio,
	               (long long)match_remaining(&p), match_state_names[match_state_of(&p, now)]);
	return rc ? -ENOMEM : 0;
}

int pools_day_json(struct engine *e, int64_t now, struct buf *out)
{
	struct pool_row *v;
	long n = match_list(e->match, &v);
	int rc;

	if (n < 0)
		return (int)n;
	rc = buf_puts(out, ",\"match_pools\":[");
	for (long i = 0, shown = 0; i < n; i++) {
		enum match_state st = match_state_of(&v[i], now);

		if (st == MATCH_ENDED && v[i].status == POOL_DEPLETED)
			continue; /* staff ended it: not the public's business */
		rc |= shown++ ? buf_puts(out, ",") : 0;
		rc |= buf_puts(out, "{\"slug\":");
		rc |= buf_json_string(out, v[i].slug);
		rc |= buf_puts(out, ",\"name\":");
		rc |= buf_json_string(out, v[i].name);
		rc |= buf_puts(out, ",\"sponsor\":");
		rc |= buf_json_string(out, v[i].sponsor);
		rc |= buf_printf(out,
		                 ",\"currency\":\"%s\",\"ratio\":%d,\"amount_cents\":%lld,"
		                 "\"remaining_cents\":%lld,\"state\":\"%s\"}",
		                 v[i].currency, v[i].ratio, (long long)v[i].amount_cents,
		                 (long long)match_remaining(&v[i]), match_state_names[st]);
	}
	free(v);
	return rc | buf_puts(out, "]") ? -ENOMEM : 0;
}

/* Find the spec's campaigns: ids into p (ascending), and the pool's
 * currency from the first when it has none. */
static int resolve_campaigns(struct engine *e, const struct pool_spec *spec, struct pool_row *p)
{
	int rc = 0;

	p->n_campaigns = 0;
	if (spec->all)
		return p->currency[0] ? 0 : TALLY_EPOOL_CURRENCY;
	pthread_mutex_lock(&e->lock);
	for (int i = 0; i < spec->n_slugs && !rc; i++) {
		struct campaign *c = campaign_find_slug(e, spec->slugs[i], strlen(spec->slugs[i]));
		int k;

		if (!c) {
			rc = TALLY_ENOCAMPAIGN;
			break;
		}
		if (!p->currency[0])
			memcpy(p->currency, c->pub.currency, sizeof(p->currency));
		if (strcmp(p->currency, c->pub.currency)) {
			rc = TALLY_EPOOL_CURRENCY;
			break;
		}
		for (k = p->n_campaigns; k > 0 && p->campaigns[k - 1] > c->pub.id; k--)
			p->campaigns[k] = p->campaigns[k - 1];
		p->campaigns[k] = c->pub.id;
		p->n_campaigns++;
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

static void audit_detail(const struct pool_row *p, char *dst, size_t cap)
{
	snprintf(dst, cap, "%lld %s at %d:1, %s", (long long)p->amount_cents, p->currency, p->ratio,
	         pool_status_names[p->status]);
}

static int submit_pool(struct engine *e, enum db_op_kind kind, const struct pool_row *p,
                       const char *what, const char *actor, engine_done_fn done, void *ud)
{
	struct pending *op = pending_new(e, kind, done, ud, actor);
	char detail[128];

	if (!op)
		return TALLY_EIO;
	op->op.u.pool = *p;
	op->op.now_ms = util_now_ms();
	audit_detail(p, detail, sizeof(detail));
	pending_audit(op, what, p->slug, detail);
	return engine_submit(e, op, 1);
}

int engine_pool_create(struct engine *e, const struct pool_spec *spec, const char *actor,
                       engine_done_fn done, void *ud)
{
	struct pool_row p = spec->row, have;
	int rc;

	if (!match_get(e->match, p.slug, &have))
		return TALLY_EPOOL_EXISTS;
	if (!spec->has_ratio)
		p.ratio = 1;
	p.status = POOL_ACTIVE;
	p.created_at = util_now_ms();
	p.reserved_cents = p.used_cents = 0;
	rc = resolve_campaigns(e, spec, &p);
	if (rc)
		return rc;
	return submit_pool(e, DB_OP_POOL_CREATE, &p, "pool.create", actor, done, ud);
}

int engine_pool_update(struct engine *e, const char *slug, const struct pool_spec *spec,
                       const char *actor, engine_done_fn done, void *ud)
{
	const struct pool_row *s = &spec->row;
	struct pool_row p;
	int rc;

	if (match_get(e->match, slug, &p))
		return TALLY_ENOPOOL;
	if (spec->has_name)
		memcpy(p.name, s->name, sizeof(p.name));
	if (spec->has_sponsor)
		memcpy(p.sponsor, s->sponsor, sizeof(p.sponsor));
	if (spec->has_amount)
		p.amount_cents = s->amount_cents;
	if (spec->has_ratio)
		p.ratio = s->ratio;
	if (spec->has_gift_cap)
		p.per_gift_cap_cents = s->per_gift_cap_cents;
	if (spec->has_donor_cap)
		p.per_donor_cap_cents = s->per_donor_cap_cents;
	if (spec->has_starts)
		p.starts_at = s->starts_at;
	if (spec->has_ends)
		p.ends_at = s->ends_at;
	if (spec->has_offline)
		p.match_offline = s->match_offline;
	if (p.starts_at && p.ends_at && p.ends_at <= p.starts_at)
		return TALLY_ESCHEDULE;
	if (spec->has_campaigns) {
		rc = resolve_campaigns(e, spec, &p);
		if (rc)
			return rc;
	}
	/* Checked again in the writer's order (commit_prepare): reservations
	 * made meanwhile count. */
	if (p.amount_cents < p.reserved_cents + p.used_cents)
		return TALLY_EPOOL_AMOUNT;
	return submit_pool(e, DB_OP_POOL_UPDATE, &p, "pool.update", actor, done, ud);
}

int engine_pool_action(struct engine *e, const char *slug, const char *action, const char *actor,
                       engine_done_fn done, void *ud)
{
	static const struct {
		const char *action;
		enum pool_status from, to;
	} actions[] = {
	    {"pause", POOL_ACTIVE, POOL_PAUSED},
	    {"resume", POOL_PAUSED, POOL_ACTIVE},
	    {"deplete", POOL_ACTIVE, POOL_DEPLETED},
	    {"deplete", POOL_PAUSED, POOL_DEPLETED},
	};
	struct pool_row p;
	char what[40];

	if (match_get(e->match, slug, &p))
		return TALLY_ENOPOOL;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(actions); i++) {
		if (strcmp(actions[i].action, action))
			continue;
		if (p.status == actions[i].to) /* a repeat: harmless */
			return submit_pool(e, DB_OP_POOL_UPDATE, &p, "pool.repeat", NULL, done, ud);
		if (p.status != actions[i].from)
			continue;
		p.status = actions[i].to;
		snprintf(what, sizeof(what), "pool.%s", action);
		return submit_pool(e, DB_OP_POOL_UPDATE, &p, what, actor, done, ud);
	}
	return TALLY_ESTATE;
}

int engine_pool_create_sync(struct engine *e, const struct pool_spec *spec, const char *actor)
{
	struct waiter w;

	waiter_init(&w);
	return waiter_wait(&w, engine_pool_create(e, spec, actor, waiter_done, &w));
}

int pools_prepare(struct engine *e, struct db_op *op)
{
	struct pool_row have;

	if (op->kind != DB_OP_POOL_UPDATE || match_get(e->match, op->u.pool.slug, &have))
		return 0;
	/* What the book holds now, in the writer's order, is what the row
	 * must cover; the stored row carries settings only. */
	return op->u.pool.amount_cents < have.reserved_cents + have.used_cents ? -ERANGE : 0;
}

int pools_answer(struct engine *e, const struct db_op *op, struct buf *out)
{
	return engine_pool_json(e, op->u.pool.slug, out);
}
