/* core/engine.c - campaigns, donations and the in-memory totals cache.
 *
 * DESIGN: the writer thread is the only thread that changes a campaign.
 * Requests are admitted on the caller's thread (campaign exists, is open,
 * currency matches, queue has room), get a donation id and their 202 body,
 * and go to the writer as a db_op. After each committed batch, batch_done
 * (writer thread) applies the batch to the cache: it updates the numbers,
 * re-renders each touched campaign's public JSON once, swaps it in under
 * e->lock, tells the listeners and finally acknowledges each op. Readers on
 * other threads take e->lock only to look up a campaign and copy its JSON.
 * The writer reads its own campaigns without the lock; it takes the lock
 * only to publish.
 */
#include "core/engine.h"
#include "core/idem.h"
#include "base/log.h"
#include "base/util.h"
#include "db/db.h"
#include "db/writer.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define RECENT_MAX 10
#define MAX_LISTENERS 8
#define RATE_BUCKETS 6 /* of 10 s: one minute */
#define IDEM_LIFETIME_MS (24 * 3600 * 1000LL)
#define PENDING_POOL_MAX 8192
#define IDEM_MEMORY_CAP 200000
#define IDEM_MEMORY_WINDOW_MS (10 * 60 * 1000LL)

enum cstatus { ST_ACTIVE, ST_PAUSED, ST_CLOSED };
static const char *const status_names[] = {"active", "paused", "closed"};

struct campaign {
	int64_t id;
	char slug[65];
	char name[513];
	char currency[4];
	enum cstatus status;    /* stored status */
	enum cstatus effective; /* status after the schedule is applied */
	int64_t goal_cents, starts_at, ends_at, created_at;
	int64_t raised_cents, donor_count, donation_count, pending_cents;
	uint64_t seq;
	char *recent[RECENT_MAX]; /* rendered gifts, newest first (writer) */
	int n_recent;
	uint32_t rate[RATE_BUCKETS]; /* donations per 10 s bucket */
	int64_t rate_epoch;          /* bucket index of rate[0]'s period */

	size_t rank[2]; /* position in e->ranked[by] */

	/* Published under e->lock. */
	char *json;
	size_t json_len;
	int dirty;              /* writer: needs re-render this batch */
	int bumped;             /* writer: seq already bumped this batch */
	uint64_t published_seq; /* seq counted in e->seq_sum */
	int touch_pending;      /* writer: a schedule change is queued */
	struct campaign *next_dirty;
};

/* What the engine keeps per queued operation. */
struct pending {
	struct db_op op;
	struct pending *next_free; /* in e->pool */
	engine_done_fn done;
	void *ud;
	char actor[64];
	size_t body_len;
	char body[320];
};

struct engine {
	struct engine_config cfg;
	struct db_writer *writer;
	pthread_mutex_t lock;

	/* Guarded by lock (writes only on the writer thread after start). */
	struct campaign **by_id; /* index = campaign id */
	size_t id_cap;
	struct campaign **slots; /* open addressing on slug */
	size_t slot_cap;         /* power of two */
	size_t n_campaigns;
	struct campaign **ranked[2]; /* by total, by donors; best first */
	int loading;                 /* start-up: rank once at the end */
	uint64_t version;            /* bumps on any campaign change */
	uint64_t seq_sum;            /* sum of every campaign's seq: stored, so
	                              * it only grows, across restarts too */
	int64_t donations_total;
	uint32_t rate[10]; /* donations per 1 s bucket */
	int64_t rate_epoch;

	atomic_llong next_donation_id;
	struct idem_table *idem;
	int64_t started_ms;

	struct engine_listener listeners[MAX_LISTENERS];
	int n_listeners;

	pthread_mutex_t reader_lock;
	sqlite3 *reader;             /* guarded by reader_lock */
	struct campaign *dirty_head; /* writer thread only */
	int lock_fd;                 /* flock on DB.lock: one tally per database */
	/* Recycled pending ops: the service thread takes one per request, the
	 * writer gives a batch back at once, so neither pays for a 3 KB
	 * malloc/free across threads. Bounded by PENDING_POOL_MAX. */
	pthread_mutex_t pool_lock;
	struct pending *pool; /* guarded by pool_lock */
	size_t pool_len;
	struct buf scratch; /* writer thread only */
	struct jobs *jobs;
	struct work_config work; /* the job handlers' settings (they point here) */
	int curl_inited;
	char outbox[4200];
	char install_id[40];
};

static struct pending *pending_new(struct engine *e, enum db_op_kind kind, engine_done_fn done,
                                   void *ud, const char *actor);
static void pending_free(struct engine *e, struct pending *p);
static void pending_release(struct engine *e, struct pending *list);

/* Job attempts finished (worker thread): record them through the writer,
 * all in one hand-over. */
static int job_finished(void *ctx, struct db_job_update *upd, int n)
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

void engine_config_defaults(struct engine_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->db_path = "tally.db";
	cfg->synchronous = "FULL";
	cfg->limits.min_cents = 100;
	cfg->limits.max_cents = 100000000;
	cfg->max_queue = 65536;
	cfg->max_batch = 4096;
	{
		struct jobs_config jc;

		jobs_config_defaults(&jc);
		memcpy(cfg->policy, jc.policy, sizeof(cfg->policy));
	}
	work_config_defaults(&cfg->work);
	cfg->work.outbox = NULL; /* DB-outbox */
	cfg->job_retention_ms = 24 * 3600 * 1000LL;
}

const struct donation_limits *engine_limits(struct engine *e)
{
	return &e->cfg.limits;
}

const char *engine_strerror(int rc)
{
	switch (rc) {
	case ENGINE_OK:
		return "ok";
	case ENGINE_ENOCAMPAIGN:
		return "no campaign has this slug";
	case ENGINE_EPAUSED:
		return "the campaign is paused and is not accepting donations";
	case ENGINE_ECLOSED:
		return "the campaign is closed or outside its schedule";
	case ENGINE_ECURRENCY:
		return "the currency differs from the campaign's currency";
	case ENGINE_EOVERLOADED:
		return "too many donations are waiting to be recorded; retry shortly";
	case ENGINE_ESHUTDOWN:
		return "the server is shutting down";
	case ENGINE_EEXISTS:
		return "a campaign with this slug already exists";
	case ENGINE_ENODONATION:
		return "no donation has this id";
	case ENGINE_ESTATE:
		return "the action does not apply in the current state";
	case ENGINE_EIO:
		return "storage failure: nothing was recorded";
	case ENGINE_EIDEM_REUSED:
		return "this Idempotency-Key was already used with a different request";
	case ENGINE_EIDEM_BUSY:
		return "a request with this Idempotency-Key is still being processed; retry "
		       "shortly";
	case ENGINE_REPLAYED:
		return "replayed";
	case ENGINE_ESCHEDULE:
		return "ends_at must be after starts_at";
	case ENGINE_ELOCKED:
		return "another tally process is using this database";
	case ENGINE_ENOJOB:
		return "no job has this id (done jobs cannot be acted on)";
	case ENGINE_ENOQUEUE:
		return "no queue has this name (payments, receipts, webhooks)";
	case ENGINE_EJOBBUSY:
		return "an attempt of this job is in flight; try again when it ends";
	default:
		return "internal error";
	}
}

/* ---- campaign table (callers hold e->lock or are the writer) ---- */

static struct campaign *find_slug(struct engine *e, const char *slug, size_t len)
{
	size_t mask = e->slot_cap - 1, i = (size_t)util_hash(slug, len) & mask;

	for (; e->slots[i]; i = (i + 1) & mask)
		if (strlen(e->slots[i]->slug) == len && !memcmp(e->slots[i]->slug, slug, len))
			return e->slots[i];
	return NULL;
}

static struct campaign *find_id(struct engine *e, int64_t id)
{
	return id > 0 && (size_t)id < e->id_cap ? e->by_id[id] : NULL;
}

static void slot_put(struct campaign **slots, size_t cap, struct campaign *c)
{
	size_t mask = cap - 1, i = (size_t)util_hash(c->slug, strlen(c->slug)) & mask;

	while (slots[i])
		i = (i + 1) & mask;
	slots[i] = c;
}

/* 1 if a ranks before b: higher key, then the older campaign. */
static int ranks_before(const struct campaign *a, const struct campaign *b, int by)
{
	int64_t ka = by == ENGINE_BY_TOTAL ? a->raised_cents : a->donor_count;
	int64_t kb = by == ENGINE_BY_TOTAL ? b->raised_cents : b->donor_count;

	return ka != kb ? ka > kb : a->id < b->id;
}

/* Move c to its place in ranking `by` after its key changed: O(distance).
 * Caller holds e->lock. */
static void rerank(struct engine *e, struct campaign *c, int by)
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

static void sort_rankings(struct engine *e)
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

static int table_add(struct engine *e, struct campaign *c)
{
	if ((size_t)c->id >= e->id_cap) {
		size_t cap = e->id_cap ? e->id_cap : 64;
		struct campaign **p;

		while (cap <= (size_t)c->id)
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
	slot_put(e->slots, e->slot_cap, c);
	e->by_id[c->id] = c;
	e->n_campaigns++;
	if (!e->loading)
		for (int by = 0; by < 2; by++)
			rerank(e, c, by);
	return 0;
}

static enum cstatus parse_status(const char *s)
{
	return !strcmp(s, "paused") ? ST_PAUSED : !strcmp(s, "closed") ? ST_CLOSED : ST_ACTIVE;
}

static enum cstatus effective_status(const struct campaign *c, int64_t now)
{
	if (c->status != ST_ACTIVE)
		return c->status;
	if ((c->starts_at && now < c->starts_at) || (c->ends_at && now >= c->ends_at))
		return ST_CLOSED;
	return ST_ACTIVE;
}

/* ---- rendering (writer thread) ---- */

static int put_time(struct buf *b, const char *key, int64_t ms)
{
	char ts[32];

	if (!ms)
		return buf_printf(b, ",\"%s\":null", key);
	return buf_printf(b, ",\"%s\":\"%s\"", key, util_rfc3339(ms, ts, sizeof(ts)));
}

/* Render c's public JSON into e->scratch. */
static int render_campaign(struct engine *e, const struct campaign *c)
{
	struct buf *b = &e->scratch;
	int rc = 0;

	b->len = 0;
	rc |= buf_puts(b, "{\"slug\":");
	rc |= buf_json_string(b, c->slug);
	rc |= buf_puts(b, ",\"name\":");
	rc |= buf_json_string(b, c->name);
	rc |= buf_printf(b,
	                 ",\"currency\":\"%s\",\"goal_cents\":%lld,\"total_cents\":%lld,"
	                 "\"raised_cents\":%lld,\"matched_cents\":0,\"bonus_cents\":0,"
	                 "\"donor_count\":%lld,\"donation_count\":%lld,\"pending_cents\":%lld,"
	                 "\"status\":\"%s\",\"seq\":%llu",
	                 c->currency, (long long)c->goal_cents, (long long)c->raised_cents,
	                 (long long)c->raised_cents, (long long)c->donor_count,
	                 (long long)c->donation_count, (long long)c->pending_cents,
	                 status_names[c->effective],
	                 (unsigned long long)c->seq);
	rc |= put_time(b, "starts_at", c->starts_at);
	rc |= put_time(b, "ends_at", c->ends_at);
	rc |= buf_puts(b, ",\"recent\":[");
	for (int i = 0; i < c->n_recent; i++) {
		if (i)
			rc |= buf_puts(b, ",");
		rc |= buf_puts(b, c->recent[i]);
	}
	rc |= buf_puts(b, "]}");
	return rc ? -ENOMEM : 0;
}

/* Render one gift as a donation event's data object. Returns malloc'd text. */
static char *render_gift(const struct db_op *op, const char *name, int64_t amount, int hide,
                         const char *message, int64_t at)
{
	struct buf b = {0};
	char ts[32];
	int rc = 0;

	(void)op;
	rc |= buf_puts(&b, "{\"name\":");
	rc |= buf_json_string(&b, name);
	if (!hide)
		rc |= buf_printf(&b, ",\"amount_cents\":%lld", (long long)amount);
	rc |= buf_puts(&b, ",\"message\":");
	rc |= buf_json_string(&b, message);
	rc |= buf_printf(&b, ",\"at\":\"%s\"}", util_rfc3339(at, ts, sizeof(ts)));
	if (rc) {
		buf_fini(&b);
		return NULL;
	}
	return b.p;
}

/* The 202 body of a donation. A replay renders the same text from the
 * stored row, so everything here must come from the row. */
static size_t render_receipt(char *dst, size_t cap, int64_t id, const char *slug, int64_t amount,
                             const char *currency, int64_t created_at)
{
	char ts[32];
	int n = snprintf(dst, cap,
	                 "{\"id\":\"dn_%lld\",\"status\":\"pending\",\"campaign\":\"%s\","
	                 "\"amount_cents\":%lld,\"currency\":\"%s\",\"created_at\":\"%s\"}",
	                 (long long)id, slug, (long long)amount, currency,
	                 util_rfc3339(created_at, ts, sizeof(ts)));

	return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

static void push_recent(struct campaign *c, char *gift)
{
	if (c->n_recent == RECENT_MAX)
		free(c->recent[--c->n_recent]);
	memmove(c->recent + 1, c->recent, (size_t)c->n_recent * sizeof(c->recent[0]));
	c->recent[0] = gift;
	c->n_recent++;
}

static void mark_dirty(struct engine *e, struct campaign *c)
{
	if (c->dirty)
		return;
	c->dirty = 1;
	c->next_dirty = e->dirty_head;
	e->dirty_head = c;
}

static void rate_add(uint32_t *buckets, int n, int64_t *epoch, int64_t now_epoch, uint32_t add)
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

/* Publish every dirty campaign: render, swap under the lock, notify. */
static void publish_dirty(struct engine *e)
{
	struct campaign *c = e->dirty_head;

	e->dirty_head = NULL;
	while (c) {
		struct campaign *next = c->next_dirty;
		char *json = NULL, *old;
		size_t len = 0;

		c->dirty = 0;
		c->bumped = 0;
		c->next_dirty = NULL;
		if (render_campaign(e, c) == 0) {
			json = malloc(e->scratch.len + 1);
			if (json) {
				memcpy(json, e->scratch.p, e->scratch.len + 1);
				len = e->scratch.len;
			}
		}
		if (!json) {
			log_msg(LOG_ERROR, "engine.render_failed", "campaign %s: out of memory",
			        c->slug);
			c = next;
			continue;
		}
		pthread_mutex_lock(&e->lock);
		old = c->json;
		c->json = json;
		c->json_len = len;
		e->version++;
		e->seq_sum += c->seq - c->published_seq;
		c->published_seq = c->seq;
		pthread_mutex_unlock(&e->lock);
		free(old);
		for (int i = 0; i < e->n_listeners; i++)
			if (e->listeners[i].campaign_changed)
				e->listeners[i].campaign_changed(e->listeners[i].ctx, c->id,
				                                 c->seq);
		c = next;
	}
}

/* ---- loading ---- */

static struct campaign *campaign_from_row(const struct db_campaign_row *row)
{
	struct campaign *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->id = row->id;
	memcpy(c->slug, row->slug, sizeof(c->slug));
	memcpy(c->name, row->name, sizeof(c->name));
	memcpy(c->currency, row->currency, sizeof(c->currency));
	c->status = parse_status(row->status);
	c->goal_cents = row->goal_cents;
	c->starts_at = row->starts_at;
	c->ends_at = row->ends_at;
	c->created_at = row->created_at;
	c->raised_cents = row->raised_cents;
	c->donor_count = row->donor_count;
	c->donation_count = row->donation_count;
	c->pending_cents = row->pending_cents;
	c->seq = (uint64_t)row->seq;
	c->effective = effective_status(c, util_now_ms());
	return c;
}

static int load_recent_cb(void *ud, const struct db_donation_row *row)
{
	struct campaign *c = ud;
	char *gift = render_gift(NULL, row->anonymous ? "Anonymous" : row->name, row->amount_cents,
	                         row->hide_amount, row->message, row->created_at);

	if (!gift)
		return -ENOMEM;
	if (c->n_recent == RECENT_MAX) {
		free(gift);
		return 0;
	}
	c->recent[c->n_recent++] = gift;
	return 0;
}

struct load_ctx {
	struct engine *e;
	sqlite3 *db;
};

static int load_campaign_cb(void *ud, const struct db_campaign_row *row)
{
	struct load_ctx *lc = ud;
	struct campaign *c = campaign_from_row(row);
	int rc;

	if (!c)
		return -ENOMEM;
	rc = table_add(lc->e, c);
	if (rc) {
		free(c);
		return rc;
	}
	rc = db_load_donations(lc->db, row->recent_ids, load_recent_cb, c);
	if (rc)
		return rc;
	mark_dirty(lc->e, c);
	return 0;
}

/* ---- writer hooks ---- */

/* The writer bumps a campaign's stored seq once per batch. */
static void bump_seq(struct campaign *c)
{
	if (!c->bumped) {
		c->seq++;
		c->bumped = 1;
	}
}

/* A gift was recorded: it is pending until its capture succeeds. */
static void apply_donation(struct engine *e, struct pending *p)
{
	struct db_op *op = &p->op;
	struct campaign *c = find_id(e, op->campaign_id);

	if (c) {
		pthread_mutex_lock(&e->lock);
		c->pending_cents += op->u.donation.req.amount_cents;
		bump_seq(c);
		pthread_mutex_unlock(&e->lock);
		mark_dirty(e, c);
	}
	if (jobs_add(e->jobs, op->u.donation.job_id, JOB_CAPTURE, op->u.donation.id, NULL,
	             op->now_ms))
		log_msg(LOG_ERROR, "engine.capture_lost",
		        "dn_%lld: its capture job is stored but not queued until restart",
		        (long long)op->u.donation.id);
}

/* A job's effect on its donation committed: mirror it in the cache. */
static void apply_effect(struct engine *e, struct pending *p)
{
	struct db_op *op = &p->op;
	const struct db_job_update *u = &op->u.job;
	const struct donation_req *d = &u->d;
	struct campaign *c = find_id(e, op->campaign_id);
	char *gift = NULL;

	if (!c || !u->applied || u->effect == DB_EFFECT_RECEIPT || u->effect == DB_EFFECT_REF ||
	    u->effect == DB_EFFECT_REFUND_DROPPED)
		return;
	pthread_mutex_lock(&e->lock);
	bump_seq(c);
	if (u->effect == DB_EFFECT_SUCCEEDED) {
		c->pending_cents -= d->amount_cents;
		c->raised_cents += d->amount_cents;
		c->donation_count++;
		c->donor_count += u->new_donor;
		rerank(e, c, ENGINE_BY_TOTAL);
		if (u->new_donor)
			rerank(e, c, ENGINE_BY_DONORS);
		rate_add(c->rate, RATE_BUCKETS, &c->rate_epoch, op->now_ms / 10000, 1);
		e->donations_total++;
		rate_add(e->rate, 10, &e->rate_epoch, op->now_ms / 1000, 1);
	} else if (u->effect == DB_EFFECT_FAILED) {
		c->pending_cents -= d->amount_cents;
	} else if (u->effect == DB_EFFECT_REFUNDED) {
		c->raised_cents -= d->amount_cents;
		c->donation_count--;
		rerank(e, c, ENGINE_BY_TOTAL);
	}
	pthread_mutex_unlock(&e->lock);
	if (u->effect == DB_EFFECT_SUCCEEDED)
		gift = render_gift(op, d->anonymous ? "Anonymous" : d->name, d->amount_cents,
		                   d->hide_amount, d->message, u->created_at);
	if (gift) {
		for (int i = 0; i < e->n_listeners; i++)
			if (e->listeners[i].donation)
				e->listeners[i].donation(e->listeners[i].ctx, c->id, gift,
				                         strlen(gift));
		push_recent(c, gift);
	}
	mark_dirty(e, c);
}

static void apply_campaign_create(struct engine *e, struct pending *p)
{
	struct db_campaign_row row = {0};
	const struct campaign_spec *s = &p->op.u.campaign;
	struct campaign *c;
	int rc;

	row.id = p->op.campaign_id;
	memcpy(row.slug, s->slug, sizeof(row.slug));
	snprintf(row.name, sizeof(row.name), "%s", s->name);
	memcpy(row.currency, s->currency, sizeof(row.currency));
	memcpy(row.status, "active", 7);
	row.goal_cents = s->goal_cents;
	row.starts_at = s->starts_at;
	row.ends_at = s->ends_at;
	row.created_at = p->op.now_ms;
	row.seq = 1; /* as inserted */
	c = campaign_from_row(&row);
	if (!c) {
		p->op.rc = -ENOMEM;
		return;
	}
	pthread_mutex_lock(&e->lock);
	rc = table_add(e, c);
	pthread_mutex_unlock(&e->lock);
	if (rc) {
		free(c);
		p->op.rc = rc;
		return;
	}
	mark_dirty(e, c);
}

static void apply_campaign_update(struct engine *e, struct pending *p)
{
	const struct campaign_spec *s = &p->op.u.campaign;
	struct campaign *c = find_id(e, p->op.campaign_id);

	if (!c)
		return;
	pthread_mutex_lock(&e->lock);
	if (p->op.kind == DB_OP_CAMPAIGN_UPDATE && s->has_name)
		snprintf(c->name, sizeof(c->name), "%s", s->name);
	if (p->op.kind == DB_OP_CAMPAIGN_UPDATE && s->has_goal)
		c->goal_cents = s->goal_cents;
	if (p->op.kind == DB_OP_CAMPAIGN_UPDATE && s->has_starts)
		c->starts_at = s->starts_at;
	if (p->op.kind == DB_OP_CAMPAIGN_UPDATE && s->has_ends)
		c->ends_at = s->ends_at;
	if (p->op.kind == DB_OP_CAMPAIGN_STATUS)
		c->status = parse_status(p->op.u.status);
	if (p->op.kind == DB_OP_CAMPAIGN_TOUCH)
		c->touch_pending = 0;
	c->effective = effective_status(c, util_now_ms());
	c->seq++; /* as the writer did */
	pthread_mutex_unlock(&e->lock);
	mark_dirty(e, c);
}

static int map_rc(int rc)
{
	switch (rc) {
	case 0:
		return ENGINE_OK;
	case -EEXIST:
		return ENGINE_EEXISTS;
	case -ENOENT:
		return ENGINE_ENOCAMPAIGN;
	case -ESHUTDOWN:
		return ENGINE_ESHUTDOWN;
	case -EALREADY:
		return ENGINE_ESTATE;
	default:
		return ENGINE_EIO;
	}
}

static void finish_donation(struct engine *e, struct pending *p, int rc)
{
	struct db_op *op = &p->op;
	const char *key = op->u.donation.idem_key;

	if (!rc && op->u.donation.replay) {
		struct campaign *c = find_id(e, op->u.donation.prev_campaign_id);
		uint64_t fp = (uint64_t)op->u.donation.prev_hash;

		p->body_len =
		    render_receipt(p->body, sizeof(p->body), op->u.donation.id, c ? c->slug : "",
		                   op->u.donation.prev_amount_cents, op->u.donation.prev_currency,
		                   op->u.donation.prev_created_at);
		idem_finish(e->idem, key, fp, p->body, p->body_len);
		rc = fp == (uint64_t)op->u.donation.idem_hash ? ENGINE_REPLAYED
		                                              : ENGINE_EIDEM_REUSED;
	} else if (key[0]) {
		if (rc)
			idem_abort(e->idem, key);
		else
			idem_finish(e->idem, key, (uint64_t)op->u.donation.idem_hash, p->body,
			            p->body_len);
	}
	if (p->done)
		p->done(p->ud, rc, rc >= 0 ? p->body : NULL, rc >= 0 ? p->body_len : 0);
}

/* Answer a committed queue, job or refund action. */
static void finish_admin(struct engine *e, struct pending *p)
{
	struct buf b = {0};
	int rc = 0;

	switch (p->op.kind) {
	case DB_OP_QUEUE_PAUSE:
	case DB_OP_QUEUE_RETRY_DEAD:
		rc = engine_queue_json(e, p->op.u.queue.name, &b);
		if (!rc && p->op.kind == DB_OP_QUEUE_RETRY_DEAD && b.len) {
			b.len--; /* reopen the object */
			rc = buf_printf(&b, ",\"retried\":%lld}", (long long)p->op.u.queue.changed);
		}
		break;
	case DB_OP_JOB_UPDATE:
		rc = buf_printf(&b, "{\"id\":%lld,\"queue\":\"%s\",\"state\":\"%s\"}",
		                (long long)p->op.u.job.job_id, p->op.u.job.queue,
		                p->op.u.job.state ? p->op.u.job.state : "discarded");
		break;
	case DB_OP_REFUND:
		rc = buf_printf(&b,
		                "{\"id\":\"dn_%lld\",\"status\":\"succeeded\","
		                "\"refund\":\"requested\",\"job\":%lld}",
		                (long long)p->op.u.refund.donation_id,
		                (long long)p->op.u.refund.job.id);
		break;
	default:
		rc = buf_puts(&b, "{}");
	}
	if (rc)
		p->done(p->ud, ENGINE_EIO, NULL, 0);
	else
		p->done(p->ud, ENGINE_OK, b.p, b.len);
	buf_fini(&b);
}

static void finish(struct engine *e, struct pending *p, int rc)
{
	struct campaign *c;

	if (p->op.kind == DB_OP_DONATION) {
		finish_donation(e, p, rc);
		return;
	}
	if (p->op.kind == DB_OP_JOB_UPDATE && p->op.rc == -ESRCH)
		rc = ENGINE_ENOJOB;
	if (p->op.kind == DB_OP_CAMPAIGN_TOUCH && rc) {
		/* The schedule change did not commit: let the next tick retry. */
		c = find_id(e, p->op.campaign_id);
		if (c)
			c->touch_pending = 0;
	}
	if (rc || !p->done) {
		if (p->done)
			p->done(p->ud, rc, NULL, 0);
		return;
	}
	if (p->op.kind >= DB_OP_JOB_UPDATE) {
		finish_admin(e, p);
		return;
	}
	/* Staff actions answer with the campaign's new public state. */
	c = find_id(e, p->op.campaign_id);
	pthread_mutex_lock(&e->lock);
	if (c && c->json) {
		struct buf b = {0};

		if (buf_append(&b, c->json, c->json_len) == 0) {
			pthread_mutex_unlock(&e->lock);
			p->done(p->ud, ENGINE_OK, b.p, b.len);
			buf_fini(&b);
			return;
		}
	}
	pthread_mutex_unlock(&e->lock);
	p->done(p->ud, ENGINE_EIO, NULL, 0);
}

static struct pending *pending_new(struct engine *e, enum db_op_kind kind, engine_done_fn done,
                                   void *ud, const char *actor);
static void pending_free(struct engine *e, struct pending *p);
static void pending_release(struct engine *e, struct pending *list);

#define JOBS_AT_ONCE 256

static void batch_done(void *ctx, struct db_op *ops, int commit_rc)
{
	struct engine *e = ctx;
	struct pending *done_list = NULL;
	const struct db_job_update *jobs_done[JOBS_AT_ONCE];
	int jobs_rc[JOBS_AT_ONCE], n_jobs = 0;
	struct db_op *op;

	for (op = ops; op; op = op->next) {
		struct pending *p = op->owner;

		if (op->kind == DB_OP_JOB_UPDATE) {
			/* Effects first: a receipt job must never run before
			 * the cache knows its gift succeeded. */
			if (!commit_rc)
				apply_effect(e, p);
			if (n_jobs == JOBS_AT_ONCE) {
				jobs_committed_many(e->jobs, jobs_done, jobs_rc, n_jobs);
				n_jobs = 0;
			}
			jobs_done[n_jobs] = &op->u.job;
			jobs_rc[n_jobs++] = commit_rc ? commit_rc : op->rc;
			continue;
		}
		if (commit_rc || op->rc)
			continue;
		switch (op->kind) {
		case DB_OP_DONATION:
			if (!op->u.donation.replay)
				apply_donation(e, p);
			break;
		case DB_OP_QUEUE_PAUSE:
			/* Jobs in memory follow the writer's order: outcomes
			 * before this op first. */
			jobs_committed_many(e->jobs, jobs_done, jobs_rc, n_jobs);
			n_jobs = 0;
			jobs_set_paused(e->jobs, (enum job_queue)job_queue_by_name(op->u.queue.name),
			                op->u.queue.paused);
			break;
		case DB_OP_QUEUE_RETRY_DEAD:
			jobs_committed_many(e->jobs, jobs_done, jobs_rc, n_jobs);
			n_jobs = 0;
			jobs_retry_dead(e->jobs, (enum job_queue)job_queue_by_name(op->u.queue.name),
			                op->now_ms);
			break;
		case DB_OP_REFUND:
			jobs_add(e->jobs, op->u.refund.job.id, JOB_REFUND, op->u.refund.donation_id,
			         NULL, op->now_ms);
			break;
		case DB_OP_CAMPAIGN_CREATE:
			apply_campaign_create(e, p);
			break;
		case DB_OP_CAMPAIGN_UPDATE:
		case DB_OP_CAMPAIGN_STATUS:
		case DB_OP_CAMPAIGN_TOUCH:
			apply_campaign_update(e, p);
			break;
		case DB_OP_JOB_UPDATE:
		case DB_OP_AUDIT:
			break;
		}
	}
	if (n_jobs)
		jobs_committed_many(e->jobs, jobs_done, jobs_rc, n_jobs);
	publish_dirty(e);
	while (ops) {
		struct pending *p = ops->owner;

		op = ops->next;
		p->next_free = done_list;
		done_list = p;
		if (ops->audit.actor[0] && !commit_rc && !ops->rc)
			log_event(LOG_INFO, "staff.action",
			          json_pack("{s:s,s:s,s:s,s:s}", "actor", ops->audit.actor, "action",
			                    ops->audit.action, "target", ops->audit.target, "detail",
			                    ops->audit.detail));
		finish(e, p, commit_rc ? map_rc(commit_rc) : map_rc(ops->rc));
		ops = op;
	}
	pending_release(e, done_list);
}

static void tick(void *ctx)
{
	struct engine *e = ctx;
	int64_t now = util_now_ms();

	/* A schedule opening or closing a campaign changes its public state:
	 * record that (seq) through the writer like any other change. */
	for (size_t i = 1; i < e->id_cap; i++) {
		struct campaign *c = e->by_id[i];
		struct pending *p;

		if (!c || c->touch_pending || (!c->starts_at && !c->ends_at) ||
		    effective_status(c, now) == c->effective)
			continue;
		p = pending_new(e, DB_OP_CAMPAIGN_TOUCH, NULL, NULL, NULL);
		if (!p)
			return;
		p->op.campaign_id = c->id;
		c->touch_pending = 1;
		if (db_writer_submit_force(e->writer, &p->op)) {
			c->touch_pending = 0;
			pending_free(e, p);
		}
	}
}

/* Two processes on one database would hand out the same donation ids and
 * keep caches that drift apart: hold an exclusive lock on DB.lock. */
static int lock_database(struct engine *e, const char *db_path, char *err, size_t errcap)
{
	char path[4096];
	int fd;

	if (snprintf(path, sizeof(path), "%s.lock", db_path) >= (int)sizeof(path)) {
		snprintf(err, errcap, "%s: path too long", db_path);
		return -ENAMETOOLONG;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errcap, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int rc = errno == EWOULDBLOCK ? ENGINE_ELOCKED : -errno;

		snprintf(err, errcap, "%s: %s", db_path,
		         rc == ENGINE_ELOCKED ? engine_strerror(rc) : strerror(errno));
		close(fd);
		return rc;
	}
	e->lock_fd = fd;
	return 0;
}

/* ---- public API ---- */

int engine_open(const struct engine_config *cfg, struct engine **out, char *err, size_t errcap)
{
	struct engine *e;
	struct db_writer_hooks hooks;
	sqlite3 *db = NULL;
	int64_t max_id = 0;
	int rc;

	*out = NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->cfg = *cfg;
	e->lock_fd = -1;
	e->started_ms = util_now_ms();
	if (pthread_mutex_init(&e->lock, NULL) || pthread_mutex_init(&e->reader_lock, NULL) ||
	    pthread_mutex_init(&e->pool_lock, NULL)) {
		free(e);
		return -ENOMEM;
	}
	rc = lock_database(e, cfg->db_path, err, errcap);
	if (rc)
		goto fail;
	rc = db_open(cfg->db_path, cfg->synchronous, &db, err, errcap);
	if (rc)
		goto fail;
	{
		struct load_ctx lc = {e, db};

		e->loading = 1;
		rc = db_load_campaigns(db, load_campaign_cb, &lc);
		e->loading = 0;
		sort_rankings(e);
	}
	if (!rc)
		rc = db_max_donation_id(db, &max_id);
	if (rc) {
		snprintf(err, errcap, "%s: loading campaigns: %s", cfg->db_path,
		         sqlite3_errmsg(db));
		goto fail;
	}
	if (!e->slot_cap) {
		/* No campaigns yet: allocate the empty table. */
		e->slots = calloc(64, sizeof(*e->slots));
		if (!e->slots) {
			rc = -ENOMEM;
			goto fail;
		}
		e->slot_cap = 64;
	}
	publish_dirty(e);
	atomic_init(&e->next_donation_id, max_id + 1);
	rc = idem_new(IDEM_MEMORY_CAP, IDEM_MEMORY_WINDOW_MS, &e->idem);
	if (rc)
		goto fail;
	rc = db_open_reader(cfg->db_path, &e->reader, err, errcap);
	if (rc)
		goto fail;
	{
		struct jobs_config jc;
		struct jobs_hooks jh = {job_finished, e};

		jobs_config_defaults(&jc);
		jc.db_path = cfg->db_path;
		memcpy(jc.policy, cfg->policy, sizeof(jc.policy));
		e->work = cfg->work;
		rc = db_install_id(db, e->install_id, sizeof(e->install_id));
		if (rc) {
			snprintf(err, errcap, "%s: reading the installation id: %s", cfg->db_path,
			         sqlite3_errmsg(db));
			goto fail;
		}
		e->work.install_id = e->install_id;
		if (!e->work.outbox) {
			snprintf(e->outbox, sizeof(e->outbox), "%s-outbox", cfg->db_path);
			e->work.outbox = e->outbox;
		}
		rc = work_setup(&e->work, &jc, err, errcap);
		if (rc)
			goto fail;
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			snprintf(err, errcap, "curl_global_init failed");
			rc = -EIO;
			goto fail;
		}
		e->curl_inited = 1;
		rc = jobs_new(&jc, &jh, db, &e->jobs, err, errcap);
		if (rc)
			goto fail;
	}
	hooks.batch_done = batch_done;
	hooks.tick = tick;
	hooks.ctx = e;
	rc = db_writer_new(db, cfg->max_queue, cfg->max_batch, &hooks, &e->writer);
	db = NULL; /* owned by the writer now, even on failure */
	if (rc) {
		snprintf(err, errcap, "starting the database writer: %s", strerror(-rc));
		goto fail;
	}
	db_writer_set_job_retention(e->writer, cfg->job_retention_ms);
	if (cfg->jobs_paused_at_start)
		for (int q = 0; q < JOB_QUEUES; q++)
			jobs_set_paused(e->jobs, (enum job_queue)q, 1);
	rc = jobs_start(e->jobs);
	if (rc) {
		snprintf(err, errcap, "starting the job workers: %s", strerror(-rc));
		goto fail;
	}
	*out = e;
	return 0;
fail:
	sqlite3_close(db);
	engine_free(e);
	return rc;
}

int engine_add_listener(struct engine *e, const struct engine_listener *l)
{
	if (e->n_listeners == MAX_LISTENERS)
		return -ENOSPC;
	e->listeners[e->n_listeners++] = *l;
	return 0;
}

static struct pending *pending_new(struct engine *e, enum db_op_kind kind, engine_done_fn done,
                                   void *ud, const char *actor)
{
	struct pending *p;

	pthread_mutex_lock(&e->pool_lock);
	p = e->pool;
	if (p) {
		e->pool = p->next_free;
		e->pool_len--;
	}
	pthread_mutex_unlock(&e->pool_lock);
	if (!p)
		p = malloc(sizeof(*p));
	if (!p)
		return NULL;
	memset(&p->op, 0, offsetof(struct db_op, u));
	p->op.bumped_campaign = 0;
	memset(&p->op.audit, 0, sizeof(p->op.audit));
	p->op.kind = kind;
	p->op.now_ms = util_now_ms();
	p->op.owner = p;
	p->done = done;
	p->ud = ud;
	p->body_len = 0;
	snprintf(p->actor, sizeof(p->actor), "%s", actor ? actor : "");
	return p;
}

/* Give a list of pending ops (linked by next_free) back to the pool, under
 * one lock; what does not fit is freed. */
static void pending_release(struct engine *e, struct pending *list)
{
	pthread_mutex_lock(&e->pool_lock);
	while (list && e->pool_len < PENDING_POOL_MAX) {
		struct pending *next = list->next_free;

		list->next_free = e->pool;
		e->pool = list;
		e->pool_len++;
		list = next;
	}
	pthread_mutex_unlock(&e->pool_lock);
	while (list) {
		struct pending *next = list->next_free;

		free(list);
		list = next;
	}
}

static void pending_free(struct engine *e, struct pending *p)
{
	p->next_free = NULL;
	pending_release(e, p);
}

/* Record p as a staff action of its actor (no-op without one). */
static void audit(struct pending *p, const char *action, const char *target, const char *detail)
{
	struct db_audit *a = &p->op.audit;

	if (!p->actor[0])
		return;
	snprintf(a->actor, sizeof(a->actor), "%s", p->actor);
	snprintf(a->action, sizeof(a->action), "%s", action);
	snprintf(a->target, sizeof(a->target), "%s", target);
	snprintf(a->detail, sizeof(a->detail), "%s", detail ? detail : "");
}

static int submit(struct engine *e, struct pending *p, int force)
{
	int rc =
	    force ? db_writer_submit_force(e->writer, &p->op) : db_writer_submit(e->writer, &p->op);

	if (rc) {
		pending_free(e, p);
		return rc == -EAGAIN ? ENGINE_EOVERLOADED : ENGINE_ESHUTDOWN;
	}
	return ENGINE_OK;
}

/* Fingerprint of a donation request: equal for the same gift to the same
 * campaign, whatever the JSON's spacing or key order. FNV-1a over the
 * fields, each followed by a separator byte that no field contains. */
static uint64_t fingerprint(const char *slug, const struct donation_req *r)
{
	const char *const strs[] = {slug,     r->currency, r->name,
	                            r->email, r->message,  r->payment_token};
	int64_t nums[] = {r->amount_cents, r->anonymous, r->hide_amount};
	uint64_t h = util_hash("", 0);

	for (size_t i = 0; i < UTIL_ARRAY_LEN(strs); i++)
		h = util_hash_add(util_hash_add(h, strs[i], strlen(strs[i])), "\x1f", 1);
	return util_hash_add(h, nums, sizeof(nums));
}

/* The answer stored for an idempotency key in SQLite: ENGINE_REPLAYED with
 * the first 202 appended to replay, ENGINE_EIDEM_REUSED, or `otherwise`
 * when the key is unknown or expired. Reads on the caller's thread. */
static int stored_answer(struct engine *e, const char *key, uint64_t fp, int64_t now,
                         struct buf *replay, int otherwise)
{
	struct db_donation_row row;
	const char *slug = "";
	char body[320];
	int64_t hash;
	size_t len;
	int rc;

	pthread_mutex_lock(&e->reader_lock);
	rc = db_donation_by_key(e->reader, key, &row, &hash);
	pthread_mutex_unlock(&e->reader_lock);
	if (rc || row.created_at < now - IDEM_LIFETIME_MS)
		return otherwise;
	if ((uint64_t)hash != fp)
		return ENGINE_EIDEM_REUSED;
	pthread_mutex_lock(&e->lock);
	{
		struct campaign *c = find_id(e, row.campaign_id);

		if (c)
			slug = c->slug;
		len = render_receipt(body, sizeof(body), row.id, slug, row.amount_cents,
		                     row.currency, row.created_at);
	}
	pthread_mutex_unlock(&e->lock);
	if (!replay || buf_append(replay, body, len))
		return otherwise;
	return ENGINE_REPLAYED;
}

int engine_donate(struct engine *e, const char *slug, const struct donation_req *req,
                  const char *idem_key, struct buf *replay, engine_done_fn done, void *ud)
{
	struct campaign *c;
	struct pending *p;
	int64_t now = util_now_ms(), campaign_id;
	uint64_t fp = 0;
	enum cstatus st;
	int n, rc;

	if (!idem_key)
		idem_key = "";
	if (strlen(idem_key) > 255)
		return ENGINE_EIDEM_REUSED;
	if (idem_key[0]) {
		fp = fingerprint(slug, req);
		rc = idem_begin(e->idem, idem_key, fp, now, replay);
		if (rc < 0)
			return ENGINE_EIO;
		if (rc == IDEM_REPLAY)
			return ENGINE_REPLAYED;
		if (rc == IDEM_REUSED)
			return ENGINE_EIDEM_REUSED;
		if (rc == IDEM_IN_FLIGHT)
			return ENGINE_EIDEM_BUSY;
	}

	pthread_mutex_lock(&e->lock);
	c = find_slug(e, slug, strlen(slug));
	rc = ENGINE_ENOCAMPAIGN;
	if (c) {
		st = effective_status(c, now);
		campaign_id = c->id;
		rc = st == ST_PAUSED                      ? ENGINE_EPAUSED
		     : st == ST_CLOSED                    ? ENGINE_ECLOSED
		     : strcmp(c->currency, req->currency) ? ENGINE_ECURRENCY
		                                          : ENGINE_OK;
	}
	pthread_mutex_unlock(&e->lock);
	p = rc ? NULL : pending_new(e, DB_OP_DONATION, done, ud, NULL);
	if (!rc && !p)
		rc = ENGINE_EIO;
	if (rc) {
		if (idem_key[0]) {
			idem_abort(e->idem, idem_key);
			/* A retry of a gift made before the campaign was paused or
			 * closed, whose key has left memory: the first answer still
			 * stands. */
			rc = stored_answer(e, idem_key, fp, now, replay, rc);
		}
		return rc;
	}
	p->op.now_ms = now;
	p->op.campaign_id = campaign_id;
	p->op.u.donation.req = *req;
	p->op.u.donation.new_donor = 0;
	p->op.u.donation.replay = 0;
	p->op.u.donation.id = atomic_fetch_add(&e->next_donation_id, 1);
	p->op.u.donation.job_id = jobs_next_id(e->jobs);
	n = snprintf(p->op.u.donation.idem_key, sizeof(p->op.u.donation.idem_key), "%s", idem_key);
	(void)n;
	p->op.u.donation.idem_hash = (int64_t)fp;
	p->op.u.donation.idem_expired = now - IDEM_LIFETIME_MS;
	p->body_len = render_receipt(p->body, sizeof(p->body), p->op.u.donation.id, slug,
	                             req->amount_cents, req->currency, now);
	rc = submit(e, p, 0);
	if (rc && idem_key[0])
		idem_abort(e->idem, idem_key);
	return rc;
}

int engine_campaign_create(struct engine *e, const struct campaign_spec *spec, const char *actor,
                           engine_done_fn done, void *ud)
{
	struct pending *p;
	int exists;

	pthread_mutex_lock(&e->lock);
	exists = find_slug(e, spec->slug, strlen(spec->slug)) != NULL;
	pthread_mutex_unlock(&e->lock);
	if (exists)
		return ENGINE_EEXISTS;
	p = pending_new(e, DB_OP_CAMPAIGN_CREATE, done, ud, actor);
	if (!p)
		return ENGINE_EIO;
	p->op.u.campaign = *spec;
	audit(p, "campaign.create", spec->slug, NULL);
	return submit(e, p, 1);
}

static int64_t lookup_id(struct engine *e, const char *slug, enum cstatus *stored)
{
	struct campaign *c;
	int64_t id;

	pthread_mutex_lock(&e->lock);
	c = find_slug(e, slug, strlen(slug));
	id = c ? c->id : ENGINE_ENOCAMPAIGN;
	if (c && stored)
		*stored = c->status;
	pthread_mutex_unlock(&e->lock);
	return id;
}

int engine_campaign_update(struct engine *e, const char *slug, const struct campaign_spec *spec,
                           const char *actor, engine_done_fn done, void *ud)
{
	int64_t id = lookup_id(e, slug, NULL), starts, ends;
	struct pending *p;

	if (id < 0)
		return (int)id;
	/* The schedule after the update must still make sense. */
	pthread_mutex_lock(&e->lock);
	starts = spec->has_starts ? spec->starts_at : e->by_id[id]->starts_at;
	ends = spec->has_ends ? spec->ends_at : e->by_id[id]->ends_at;
	pthread_mutex_unlock(&e->lock);
	if (starts && ends && ends <= starts)
		return ENGINE_ESCHEDULE;
	p = pending_new(e, DB_OP_CAMPAIGN_UPDATE, done, ud, actor);
	if (!p)
		return ENGINE_EIO;
	p->op.campaign_id = id;
	p->op.u.campaign = *spec;
	audit(p, "campaign.update", slug, NULL);
	return submit(e, p, 1);
}

int engine_campaign_action(struct engine *e, const char *slug, const char *action,
                           const char *actor, engine_done_fn done, void *ud)
{
	enum cstatus stored = ST_ACTIVE;
	int64_t id = lookup_id(e, slug, &stored);
	const char *to;
	struct pending *p;

	if (id < 0)
		return (int)id;
	if (!strcmp(action, "pause"))
		to = "paused";
	else if (!strcmp(action, "resume"))
		to = "active";
	else if (!strcmp(action, "close"))
		to = "closed";
	else
		return ENGINE_ESTATE;
	if (stored == ST_CLOSED && strcmp(to, "closed"))
		return ENGINE_ECLOSED;
	p = pending_new(e, DB_OP_CAMPAIGN_STATUS, done, ud, actor);
	if (!p)
		return ENGINE_EIO;
	p->op.campaign_id = id;
	snprintf(p->op.u.status, sizeof(p->op.u.status), "%s", to);
	{
		char what[40];

		snprintf(what, sizeof(what), "campaign.%s", action);
		audit(p, what, slug, NULL);
	}
	return submit(e, p, 1);
}

struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done;
	int rc;
};

static void waiter_done(void *ud, int rc, const char *body, size_t len)
{
	struct waiter *w = ud;

	(void)body;
	(void)len;
	pthread_mutex_lock(&w->lock);
	w->done = 1;
	w->rc = rc;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static int waiter_wait(struct waiter *w, int rc)
{
	if (rc == ENGINE_OK) {
		pthread_mutex_lock(&w->lock);
		while (!w->done)
			pthread_cond_wait(&w->cond, &w->lock);
		rc = w->rc;
		pthread_mutex_unlock(&w->lock);
	}
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	return rc;
}

int engine_campaign_create_sync(struct engine *e, const struct campaign_spec *spec,
                                const char *actor)
{
	struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

	return waiter_wait(&w, engine_campaign_create(e, spec, actor, waiter_done, &w));
}

int engine_campaign_action_sync(struct engine *e, const char *slug, const char *action,
                                const char *actor)
{
	struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

	return waiter_wait(&w, engine_campaign_action(e, slug, action, actor, waiter_done, &w));
}

static int copy_json(struct campaign *c, struct buf *out, uint64_t *seq)
{
	if (!c || !c->json)
		return ENGINE_ENOCAMPAIGN;
	if (seq)
		*seq = c->seq;
	return buf_append(out, c->json, c->json_len);
}

int engine_campaign_json(struct engine *e, const char *slug, size_t slug_len, struct buf *out,
                         uint64_t *seq)
{
	int rc;

	pthread_mutex_lock(&e->lock);
	rc = copy_json(find_slug(e, slug, slug_len), out, seq);
	pthread_mutex_unlock(&e->lock);
	return rc;
}

int engine_campaign_json_by_id(struct engine *e, int64_t id, struct buf *out, uint64_t *seq)
{
	int rc;

	pthread_mutex_lock(&e->lock);
	rc = copy_json(find_id(e, id), out, seq);
	pthread_mutex_unlock(&e->lock);
	return rc;
}

int64_t engine_campaign_id(struct engine *e, const char *slug, size_t slug_len)
{
	struct campaign *c;
	int64_t id;

	pthread_mutex_lock(&e->lock);
	c = find_slug(e, slug, slug_len);
	id = c && c->json ? c->id : ENGINE_ENOCAMPAIGN;
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
		last = c->id;
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
	int rc = 0;

	pthread_mutex_lock(&e->lock);
	*version = e->seq_sum;
	rc |= buf_printf(out, "{\"by\":\"%s\",\"entries\":[",
	                 by == ENGINE_BY_TOTAL ? "total" : "donors");
	for (size_t i = 0; i < e->n_campaigns && (int)i < limit; i++) {
		const struct campaign *c = e->ranked[by][i];

		if (i)
			rc |= buf_puts(out, ",");
		rc |= buf_printf(out, "{\"rank\":%zu,\"slug\":\"%s\",\"name\":", i + 1, c->slug);
		rc |= buf_json_string(out, c->name);
		rc |= buf_printf(out,
		                 ",\"currency\":\"%s\",\"total_cents\":%lld,\"donor_count\":%lld,"
		                 "\"goal_cents\":%lld,\"status\":\"%s\"}",
		                 c->currency, (long long)c->raised_cents, (long long)c->donor_count,
		                 (long long)c->goal_cents, status_names[c->effective]);
	}
	pthread_mutex_unlock(&e->lock);
	rc |= buf_puts(out, "]}");
	return rc ? -ENOMEM : 0;
}

static int parse_donation_id(const char *id, int64_t *out)
{
	char *end;
	long long n;

	if (strncmp(id, "dn_", 3) || id[3] < '1' || id[3] > '9')
		return -1;
	errno = 0;
	n = strtoll(id + 3, &end, 10);
	if (*end || errno || n <= 0)
		return -1;
	*out = n;
	return 0;
}

/* Read donation "dn_N" through the engine's reader. Returns 0 (with N in
 * *n), ENGINE_ENODONATION or ENGINE_EIO. */
static int donation_row(struct engine *e, const char *id, int64_t *n, struct db_donation_row *row)
{
	int rc;

	if (parse_donation_id(id, n))
		return ENGINE_ENODONATION;
	pthread_mutex_lock(&e->reader_lock);
	rc = db_donation_get(e->reader, *n, row);
	pthread_mutex_unlock(&e->reader_lock);
	if (rc == -ENOENT)
		return ENGINE_ENODONATION;
	return rc ? ENGINE_EIO : 0;
}

int engine_donation_json(struct engine *e, const char *id, struct buf *out)
{
	struct db_donation_row row;
	const char *slug = "";
	char ts[32];
	int64_t n;
	int rc;

	rc = donation_row(e, id, &n, &row);
	if (rc)
		return rc;
	pthread_mutex_lock(&e->lock);
	{
		struct campaign *c = find_id(e, row.campaign_id);

		if (c)
			slug = c->slug;
		rc = buf_printf(out, "{\"id\":\"dn_%lld\",\"campaign\":\"%s\",\"status\":\"%s\"",
		                (long long)n, slug, row.status);
	}
	pthread_mutex_unlock(&e->lock);
	if (!row.hide_amount)
		rc |= buf_printf(out, ",\"amount_cents\":%lld", (long long)row.amount_cents);
	rc |= buf_printf(out, ",\"currency\":\"%s\",\"created_at\":\"%s\"", row.currency,
	                 util_rfc3339(row.created_at, ts, sizeof(ts)));
	if (row.reason[0] && strcmp(row.status, "succeeded")) {
		rc |= buf_puts(out, ",\"reason\":");
		rc |= buf_json_string(out, row.reason);
	}
	rc |= buf_puts(out, "}");
	return rc ? -ENOMEM : 0;
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

long engine_campaign_infos(struct engine *e, struct engine_campaign_info **out)
{
	struct engine_campaign_info *v;
	int64_t now = util_now_ms();
	long n = 0;

	pthread_mutex_lock(&e->lock);
	v = calloc(e->n_campaigns ? e->n_campaigns : 1, sizeof(*v));
	if (!v) {
		pthread_mutex_unlock(&e->lock);
		return -ENOMEM;
	}
	for (size_t i = 1; i < e->id_cap; i++) {
		struct campaign *c = e->by_id[i];
		struct engine_campaign_info *r;

		if (!c)
			continue;
		r = &v[n++];
		memcpy(r->slug, c->slug, sizeof(r->slug));
		memcpy(r->name, c->name, sizeof(r->name));
		memcpy(r->currency, c->currency, sizeof(r->currency));
		snprintf(r->status, sizeof(r->status), "%s",
		         status_names[effective_status(c, now)]);
		r->goal_cents = c->goal_cents;
		r->total_cents = c->raised_cents;
		r->pending_cents = c->pending_cents;
		r->donor_count = c->donor_count;
		r->donation_count = c->donation_count;
		r->per_min = rate_sum(c->rate, RATE_BUCKETS, c->rate_epoch, now / 10000) * 60.0 /
		             (RATE_BUCKETS * 10);
	}
	pthread_mutex_unlock(&e->lock);
	*out = v;
	return n;
}

void engine_get_stats(struct engine *e, struct engine_stats *out)
{
	struct db_writer_stats ws;
	int64_t now = util_now_ms();

	memset(out, 0, sizeof(*out));
	db_writer_stats(e->writer, &ws);
	pthread_mutex_lock(&e->lock);
	out->uptime_s = (now - e->started_ms) / 1000;
	out->donations_total = e->donations_total;
	/* The current second is partial: average the nine before it. */
	out->donations_per_s = (rate_sum(e->rate, 10, e->rate_epoch, now / 1000) -
	                        (e->rate_epoch == now / 1000 ? e->rate[0] : 0)) /
	                       9.0;
	out->campaigns = (int64_t)e->n_campaigns;
	pthread_mutex_unlock(&e->lock);
	out->intake_depth = (int64_t)ws.depth;
	out->batches = ws.batches;
	out->last_batch = ws.last_batch;
	out->idem_entries = (int64_t)idem_count(e->idem);
	out->writer = ws;
}

void engine_refuse_queued(struct engine *e)
{
	db_writer_refuse(e->writer);
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	/* Workers hand results to the writer, whose batch_done hands them
	 * back: stop the workers, then the writer, then free the jobs. */
	jobs_stop(e->jobs, 5000);
	if (e->reader && sqlite3_close(e->reader) != SQLITE_OK)
		log_msg(LOG_ERROR, "db.close_failed", "reader connection still busy");
	e->reader = NULL;
	db_writer_free(e->writer);
	jobs_free(e->jobs);
	if (e->curl_inited)
		curl_global_cleanup();
	if (e->reader && sqlite3_close(e->reader) != SQLITE_OK)
		log_msg(LOG_ERROR, "db.close_failed", "reader connection still busy");
	for (size_t i = 0; i < e->id_cap; i++) {
		struct campaign *c = e->by_id[i];

		if (!c)
			continue;
		for (int k = 0; k < c->n_recent; k++)
			free(c->recent[k]);
		free(c->json);
		free(c);
	}
	idem_free(e->idem);
	free(e->by_id);
	free(e->slots);
	free(e->ranked[0]);
	free(e->ranked[1]);
	buf_fini(&e->scratch);
	while (e->pool) {
		struct pending *next = e->pool->next_free;

		free(e->pool);
		e->pool = next;
	}
	if (e->lock_fd >= 0 && close(e->lock_fd))
		log_msg(LOG_WARN, "engine.unlock_failed", "%s", strerror(errno));
	pthread_mutex_destroy(&e->lock);
	pthread_mutex_destroy(&e->reader_lock);
	pthread_mutex_destroy(&e->pool_lock);
	free(e);
}

/* ---- jobs and queues ---- */

static int queue_object(struct engine *e, enum job_queue q, struct buf *out)
{
	struct job_queue_info i;

	jobs_queue_info(e->jobs, q, &i);
	return buf_printf(out,
	                  "{\"name\":\"%s\",\"paused\":%s,\"ready\":%lld,\"running\":%lld,"
	                  "\"scheduled\":%lld,\"dead\":%lld,\"held\":%lld,\"done\":%lld,"
	                  "\"failed\":%lld,\"done_per_s\":%.1f,\"latency_ms_p50\":%.2f,"
	                  "\"latency_ms_p99\":%.2f,\"workers\":%d,\"inflight\":%d}",
	                  job_queue_names[q], i.paused ? "true" : "false", (long long)i.ready,
	                  (long long)i.running, (long long)i.scheduled, (long long)i.dead,
	                  (long long)i.held, (long long)i.done_total, (long long)i.failed_total,
	                  i.done_per_s, i.latency_ms_p50, i.latency_ms_p99, i.workers, i.inflight);
}

int engine_queues_json(struct engine *e, struct buf *out)
{
	int rc = buf_puts(out, "{\"queues\":[");

	for (int q = 0; q < JOB_QUEUES; q++) {
		rc |= q ? buf_puts(out, ",") : 0;
		rc |= queue_object(e, (enum job_queue)q, out);
	}
	rc |= buf_puts(out, "]}");
	return rc ? -ENOMEM : 0;
}

int engine_queue_json(struct engine *e, const char *name, struct buf *out)
{
	int q = job_queue_by_name(name);

	if (q < 0)
		return ENGINE_ENOQUEUE;
	return queue_object(e, (enum job_queue)q, out) ? -ENOMEM : 0;
}

void engine_queue_info(struct engine *e, enum job_queue q, struct job_queue_info *out)
{
	jobs_queue_info(e->jobs, q, out);
}

int engine_queue_action(struct engine *e, const char *name, const char *action,
                        const char *actor, engine_done_fn done, void *ud)
{
	int q = job_queue_by_name(name), retry = !strcmp(action, "retry-dead");
	struct pending *p;
	char what[40];

	if (q < 0)
		return ENGINE_ENOQUEUE;
	if (!retry && strcmp(action, "pause") && strcmp(action, "resume"))
		return ENGINE_ESTATE;
	p = pending_new(e, retry ? DB_OP_QUEUE_RETRY_DEAD : DB_OP_QUEUE_PAUSE, done, ud, actor);
	if (!p)
		return ENGINE_EIO;
	p->op.u.queue.name = job_queue_names[q];
	p->op.u.queue.paused = !strcmp(action, "pause");
	snprintf(what, sizeof(what), "queue.%s", action);
	audit(p, what, job_queue_names[q], NULL);
	return submit(e, p, 1);
}

struct list_ctx {
	struct buf *out;
	int n, rc;
};

static int list_done_cb(void *ud, const struct db_job_row *row)
{
	struct list_ctx *lc = ud;

	lc->rc |= lc->n++ ? buf_puts(lc->out, ",") : 0;
	lc->rc |= jobs_row_json(lc->out, row->id, row->queue, row->kind, row->state,
	                        row->attempts, row->next_run_at, row->last_error,
	                        row->created_at, row->donation_id, row->url);
	return 0;
}

int engine_jobs_json(struct engine *e, const char *queue, const char *state, int limit,
                     struct buf *out)
{
	int q = job_queue_by_name(queue), st = job_state_by_name(state), rc;

	if (q < 0)
		return ENGINE_ENOQUEUE;
	if (st < 0)
		return ENGINE_ESTATE;
	rc = buf_puts(out, "{\"jobs\":");
	if (st != JOB_DONE) {
		rc |= jobs_list_json(e->jobs, (enum job_queue)q, (enum job_state)st, limit, out);
	} else {
		struct list_ctx lc = {out, 0, 0};

		rc |= buf_puts(out, "[");
		pthread_mutex_lock(&e->reader_lock);
		if (db_list_jobs(e->reader, queue, state, limit, list_done_cb, &lc))
			rc = ENGINE_EIO;
		pthread_mutex_unlock(&e->reader_lock);
		if (rc == ENGINE_EIO)
			return rc;
		rc |= lc.rc | buf_puts(out, "]");
	}
	rc |= buf_puts(out, "}");
	return rc ? -ENOMEM : 0;
}

int engine_job_action(struct engine *e, int64_t id, const char *action, const char *actor,
                      engine_done_fn done, void *ud)
{
	struct pending *p;
	char target[32], what[40];
	int rc;

	if (strcmp(action, "retry") && strcmp(action, "discard"))
		return ENGINE_ESTATE;
	p = pending_new(e, DB_OP_JOB_UPDATE, done, ud, actor);
	if (!p)
		return ENGINE_EIO;
	rc = jobs_hold(e->jobs, id, action, &p->op.u.job);
	if (rc) {
		pending_free(e, p);
		return rc == -ENOENT  ? ENGINE_ENOJOB
		       : rc == -EBUSY ? ENGINE_EJOBBUSY
		                      : ENGINE_ESTATE;
	}
	snprintf(target, sizeof(target), "job %lld", (long long)id);
	snprintf(what, sizeof(what), "job.%s", action);
	audit(p, what, target, p->op.u.job.error);
	rc = submit(e, p, 1);
	if (rc) {
		/* Not queued: give the job back (pending p is already freed,
		 * so release through a copy). */
		struct db_job_update back = {.job_id = id};

		jobs_committed(e->jobs, &back, -ESHUTDOWN);
	}
	return rc;
}

int engine_refund(struct engine *e, const char *id, const char *reason, const char *actor,
                  engine_done_fn done, void *ud)
{
	struct db_donation_row row;
	struct pending *p;
	int64_t n;
	int rc;

	rc = donation_row(e, id, &n, &row);
	if (rc)
		return rc;
	if (strcmp(row.status, "succeeded"))
		return ENGINE_ESTATE;
	p = pending_new(e, DB_OP_REFUND, done, ud, actor);
	if (!p)
		return ENGINE_EIO;
	p->op.u.refund.donation_id = n;
	snprintf(p->op.u.refund.reason, sizeof(p->op.u.refund.reason), "%s",
	         reason && reason[0] ? reason : "refunded by staff");
	p->op.u.refund.job.id = jobs_next_id(e->jobs);
	p->op.u.refund.job.queue = job_queue_names[JOB_PAYMENTS];
	p->op.u.refund.job.kind = job_kind_names[JOB_REFUND];
	p->op.u.refund.job.url = NULL;
	audit(p, "donation.refund", id, p->op.u.refund.reason);
	return submit(e, p, 1);
}

static int audit_cb(void *ud, const struct db_audit_row *row)
{
	struct list_ctx *lc = ud;
	char ts[32];

	lc->rc |= buf_printf(lc->out, "%s{\"id\":%lld,\"at\":\"%s\",\"actor\":", lc->n++ ? "," : "",
	                     (long long)row->id, util_rfc3339(row->at, ts, sizeof(ts)));
	lc->rc |= buf_json_string(lc->out, row->actor);
	lc->rc |= buf_puts(lc->out, ",\"action\":");
	lc->rc |= buf_json_string(lc->out, row->action);
	lc->rc |= buf_puts(lc->out, ",\"target\":");
	lc->rc |= buf_json_string(lc->out, row->target);
	lc->rc |= buf_puts(lc->out, ",\"detail\":");
	lc->rc |= buf_json_string(lc->out, row->detail);
	lc->rc |= buf_puts(lc->out, "}");
	return 0;
}

int engine_audit_json(struct engine *e, int limit, struct buf *out)
{
	struct list_ctx lc = {out, 0, 0};
	int rc = buf_puts(out, "{\"entries\":[");

	pthread_mutex_lock(&e->reader_lock);
	if (db_list_audit(e->reader, limit, audit_cb, &lc))
		rc = ENGINE_EIO;
	pthread_mutex_unlock(&e->reader_lock);
	if (rc == ENGINE_EIO)
		return rc;
	rc |= lc.rc | buf_puts(out, "]}");
	return rc ? -ENOMEM : 0;
}

int engine_jobs_metrics(struct engine *e, struct buf *out)
{
	return jobs_metrics(e->jobs, out);
}

int engine_jobs_list(struct engine *e, enum job_queue q, enum job_state st,
                     struct job_brief *out, int max)
{
	return jobs_list(e->jobs, q, st, out, max);
}

int engine_queue_action_sync(struct engine *e, const char *name, const char *action,
                             const char *actor)
{
	struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

	return waiter_wait(&w, engine_queue_action(e, name, action, actor, waiter_done, &w));
}

int engine_job_action_sync(struct engine *e, int64_t id, const char *action, const char *actor)
{
	struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

	return waiter_wait(&w, engine_job_action(e, id, action, actor, waiter_done, &w));
}

void engine_stop_jobs(struct engine *e, int wait_ms)
{
	jobs_stop(e->jobs, wait_ms);
}
