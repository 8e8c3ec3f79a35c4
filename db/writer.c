/* db/writer.c - group commit.
 *
 * DESIGN: a redis-bio-style thread. Producers append db_op to a FIFO under a
 * mutex and signal a condition variable. The writer pops everything queued
 * (up to max_batch) under the lock, then works unlocked: BEGIN IMMEDIATE,
 * one prepared statement per op, one aggregate UPDATE per touched campaign,
 * COMMIT. Only then does it hand the batch to the batch_done hook, which
 * acknowledges each op. A constraint failure fails only its op; any other
 * error rolls the batch back and fails every op in it. The queue is bounded
 * so overload is answered, not buffered. Every 10 s the writer restarts the
 * WAL (checkpoint RESTART) so readers can never make it grow without bound.
 */
#include "db/writer.h"
#include "db/db.h"
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum stmt_id {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_INSERT_DONATION,
	ST_INSERT_DONOR,
	ST_FIND_IDEM,
	ST_FREE_IDEM,
	ST_BUMP_CAMPAIGN,
	ST_RECENT_IDS,
	ST_INSERT_CAMPAIGN,
	ST_UPDATE_CAMPAIGN,
	ST_SET_STATUS,
	ST_TOUCH,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_INSERT_DONATION] =
        "INSERT INTO donations (campaign_id, amount_cents, currency, donor_name,"
        " donor_email, anonymous, hide_amount, message, payment_token, status, created_at,"
        " id, idem_key, idem_hash)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'succeeded', ?10, ?11, ?12, ?13)",
    [ST_FIND_IDEM] = "SELECT id, idem_hash, campaign_id, amount_cents, currency, created_at"
                     " FROM donations WHERE idem_key = ?1",
    [ST_FREE_IDEM] = "UPDATE donations SET idem_key = NULL WHERE id = ?1",
    [ST_INSERT_DONOR] = "INSERT OR IGNORE INTO donors (campaign_id, email) VALUES (?1, lower(?2))",
    [ST_BUMP_CAMPAIGN] = "UPDATE campaigns SET raised_cents = raised_cents + ?2,"
                         " donor_count = donor_count + ?3, donation_count = donation_count + ?4,"
                         " seq = seq + 1, recent_ids = ?5 WHERE id = ?1",
    [ST_RECENT_IDS] = "SELECT recent_ids FROM campaigns WHERE id = ?1",
    [ST_INSERT_CAMPAIGN] = "INSERT INTO campaigns (slug, name, currency, goal_cents, starts_at,"
                           " ends_at, created_at, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1)",
    [ST_UPDATE_CAMPAIGN] = "UPDATE campaigns SET name = coalesce(?2, name),"
                           " goal_cents = coalesce(?3, goal_cents),"
                           " starts_at = CASE WHEN ?4 THEN nullif(?5, 0) ELSE starts_at END,"
                           " ends_at = CASE WHEN ?6 THEN nullif(?7, 0) ELSE ends_at END,"
                           " seq = seq + 1 WHERE id = ?1",
    [ST_SET_STATUS] = "UPDATE campaigns SET status = ?2, seq = seq + 1 WHERE id = ?1",
    [ST_TOUCH] = "UPDATE campaigns SET seq = seq + 1 WHERE id = ?1",
};

const double db_batch_size_bounds[DB_HIST_BUCKETS] = {1,   2,   5,   10,   20,   50,
                                                      100, 200, 500, 1000, 2000, 5000};
const double db_commit_seconds_bounds[DB_HIST_BUCKETS] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                                          0.05,   0.1,   0.25,  0.5,   1.0,  2.5};

static void hist_add(uint64_t *hist, const double *bounds, double v)
{
	int b = 0;

	while (b < DB_HIST_BUCKETS && v > bounds[b])
		b++;
	hist[b]++;
}

/* Per-batch aggregate delta of one campaign (open addressing, key 0 = free). */
struct bump {
	int64_t campaign_id;
	int64_t raised;
	int64_t donors;
	int64_t donations;
};

/* The newest gift ids of a campaign, newest first, as stored in
 * campaigns.recent_ids (writer thread; loaded on first use). */
#define RECENT_IDS 10
struct recent {
	int64_t campaign_id; /* 0 = free slot */
	int64_t ids[RECENT_IDS];
	int n;
};

struct db_writer {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct db_op *head, *tail;    /* guarded by lock */
	size_t depth;                 /* guarded by lock */
	int stopping;                 /* guarded by lock */
	int refusing;                 /* guarded by lock: see db_writer_refuse */
	struct db_writer_stats stats; /* guarded by lock */
	size_t max_queue, max_batch;

	/* Writer thread only. */
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	struct bump *bumps;
	size_t bump_cap;       /* power of two >= 2 * max_batch */
	struct recent *recent; /* open addressing on campaign_id */
	size_t recent_cap, recent_used;
	uint64_t last_checkpoint_ns;
	uint64_t last_tick_ns;
	struct db_writer_hooks hooks;
};

static int step_reset(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
	return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static struct recent *recent_slot(struct recent *v, size_t cap, int64_t campaign_id)
{
	size_t mask = cap - 1, i = (size_t)util_hash(&campaign_id, sizeof(campaign_id)) & mask;

	while (v[i].campaign_id && v[i].campaign_id != campaign_id)
		i = (i + 1) & mask;
	return &v[i];
}

/* The recent ids of a campaign, loaded from its row the first time. NULL on
 * failure (out of memory, storage error). */
static struct recent *recent_get(struct db_writer *w, int64_t campaign_id)
{
	struct recent *r;
	sqlite3_stmt *st;
	const char *p;
	int rc;

	if ((w->recent_used + 1) * 2 > w->recent_cap) {
		size_t cap = w->recent_cap ? w->recent_cap * 2 : 256;
		struct recent *v = calloc(cap, sizeof(*v));

		if (!v)
			return NULL;
		for (size_t i = 0; i < w->recent_cap; i++)
			if (w->recent[i].campaign_id)
				*recent_slot(v, cap, w->recent[i].campaign_id) = w->recent[i];
		free(w->recent);
		w->recent = v;
		w->recent_cap = cap;
	}
	r = recent_slot(w->recent, w->recent_cap, campaign_id);
	if (r->campaign_id)
		return r;
	st = w->st[ST_RECENT_IDS];
	if (sqlite3_bind_int64(st, 1, campaign_id) != SQLITE_OK)
		return NULL;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r->n = 0;
		p = (const char *)sqlite3_column_text(st, 0);
		while (p && *p && r->n < RECENT_IDS) {
			char *end;
			long long id = strtoll(p, &end, 10);

			if (end == p)
				break;
			r->ids[r->n++] = id;
			p = *end == ',' ? end + 1 : end;
		}
		r->campaign_id = campaign_id;
		w->recent_used++;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r->campaign_id ? r : NULL;
}

/* Forget every loaded list (after a rollback they may name lost ids). */
static void recent_forget(struct db_writer *w)
{
	if (w->recent)
		memset(w->recent, 0, w->recent_cap * sizeof(*w->recent));
	w->recent_used = 0;
}

static void bump_add(struct db_writer *w, int64_t campaign_id, int64_t raised, int donor)
{
	size_t mask = w->bump_cap - 1;
	size_t i = (size_t)util_hash(&campaign_id, sizeof(campaign_id)) & mask;

	while (w->bumps[i].campaign_id && w->bumps[i].campaign_id != campaign_id)
		i = (i + 1) & mask;
	w->bumps[i].campaign_id = campaign_id;
	w->bumps[i].raised += raised;
	w->bumps[i].donors += donor;
	w->bumps[i].donations++;
}

static int insert_donation(struct db_writer *w, struct db_op *op)
{
	const struct donation_req *d = &op->u.donation.req;
	sqlite3_stmt *st = w->st[ST_INSERT_DONATION];
	int has_key = op->u.donation.idem_key[0] != '\0';

	if (sqlite3_bind_int64(st, 1, op->campaign_id) ||
	    sqlite3_bind_int64(st, 2, d->amount_cents) || bind_text(st, 3, d->currency) ||
	    bind_text(st, 4, d->name) || bind_text(st, 5, d->email) ||
	    sqlite3_bind_int(st, 6, d->anonymous) || sqlite3_bind_int(st, 7, d->hide_amount) ||
	    bind_text(st, 8, d->message) || bind_text(st, 9, d->payment_token) ||
	    sqlite3_bind_int64(st, 10, op->now_ms) ||
	    sqlite3_bind_int64(st, 11, op->u.donation.id) ||
	    (has_key && (bind_text(st, 12, op->u.donation.idem_key) ||
	                 sqlite3_bind_int64(st, 13, op->u.donation.idem_hash))))
		return SQLITE_ERROR;
	return step_reset(st);
}

/* The insert hit a constraint: if the idempotency key names an earlier
 * donation, describe it (op->u.donation.replay) or, when that one is older
 * than the key's lifetime, free the key and say so with SQLITE_ROW. */
static int find_idem(struct db_writer *w, struct db_op *op)
{
	sqlite3_stmt *st = w->st[ST_FIND_IDEM];
	int64_t id = 0;
	int rc;

	if (!op->u.donation.idem_key[0])
		return SQLITE_DONE;
	if (bind_text(st, 1, op->u.donation.idem_key))
		return SQLITE_ERROR;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *cur = sqlite3_column_text(st, 4);

		id = sqlite3_column_int64(st, 0);
		op->u.donation.prev_hash = sqlite3_column_int64(st, 1);
		op->u.donation.prev_campaign_id = sqlite3_column_int64(st, 2);
		op->u.donation.prev_amount_cents = sqlite3_column_int64(st, 3);
		snprintf(op->u.donation.prev_currency, sizeof(op->u.donation.prev_currency), "%s",
		         cur ? (const char *)cur : "");
		op->u.donation.prev_created_at = sqlite3_column_int64(st, 5);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW)
		return rc;
	if (op->u.donation.prev_created_at >= op->u.donation.idem_expired) {
		op->u.donation.replay = 1;
		op->u.donation.id = id;
		return SQLITE_DONE;
	}
	st = w->st[ST_FREE_IDEM];
	if (sqlite3_bind_int64(st, 1, id))
		return SQLITE_ERROR;
	rc = step_reset(st);
	return rc == SQLITE_DONE ? SQLITE_ROW : rc;
}

/* Returns SQLITE_OK, or the code of an error that must fail the batch. A
 * constraint error is recorded in op->rc and returns SQLITE_OK. */
static int apply_donation(struct db_writer *w, struct db_op *op)
{
	const struct donation_req *d = &op->u.donation.req;
	sqlite3_stmt *st;
	int rc = insert_donation(w, op);

	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		rc = find_idem(w, op);
		if (rc == SQLITE_ROW) /* an expired key was freed: try again */
			rc = insert_donation(w, op);
		else if (rc == SQLITE_DONE && op->u.donation.replay)
			return SQLITE_OK;
		else if (rc == SQLITE_DONE)
			rc = SQLITE_CONSTRAINT;
		if ((rc & 0xff) == SQLITE_CONSTRAINT) {
			op->rc = -ENOENT;
			return SQLITE_OK;
		}
	}
	if (rc != SQLITE_DONE)
		return rc;

	st = w->st[ST_INSERT_DONOR];
	if (sqlite3_bind_int64(st, 1, op->campaign_id) || bind_text(st, 2, d->email))
		return SQLITE_ERROR;
	rc = step_reset(st);
	if (rc != SQLITE_DONE)
		return rc;
	op->u.donation.new_donor = sqlite3_changes(w->db) > 0;
	bump_add(w, op->campaign_id, d->amount_cents, op->u.donation.new_donor);
	{
		struct recent *r = recent_get(w, op->campaign_id);

		if (!r)
			return SQLITE_NOMEM;
		memmove(r->ids + 1, r->ids, (RECENT_IDS - 1) * sizeof(r->ids[0]));
		r->ids[0] = op->u.donation.id;
		if (r->n < RECENT_IDS)
			r->n++;
	}
	return SQLITE_OK;
}

static int bind_opt_time(sqlite3_stmt *st, int i, int64_t ms)
{
	return ms ? sqlite3_bind_int64(st, i, ms) : sqlite3_bind_null(st, i);
}

static int apply_campaign(struct db_writer *w, struct db_op *op)
{
	const struct campaign_spec *c = &op->u.campaign;
	sqlite3_stmt *st;
	int rc;

	if (op->kind == DB_OP_CAMPAIGN_CREATE) {
		st = w->st[ST_INSERT_CAMPAIGN];
		if (bind_text(st, 1, c->slug) || bind_text(st, 2, c->name) ||
		    bind_text(st, 3, c->currency) || sqlite3_bind_int64(st, 4, c->goal_cents) ||
		    bind_opt_time(st, 5, c->starts_at) || bind_opt_time(st, 6, c->ends_at) ||
		    sqlite3_bind_int64(st, 7, op->now_ms))
			return SQLITE_ERROR;
	} else {
		st = w->st[ST_UPDATE_CAMPAIGN];
		if (sqlite3_bind_int64(st, 1, op->campaign_id) ||
		    (c->has_name && bind_text(st, 2, c->name)) ||
		    (c->has_goal && sqlite3_bind_int64(st, 3, c->goal_cents)) ||
		    sqlite3_bind_int(st, 4, c->has_starts) ||
		    sqlite3_bind_int64(st, 5, c->starts_at) ||
		    sqlite3_bind_int(st, 6, c->has_ends) || sqlite3_bind_int64(st, 7, c->ends_at))
			return SQLITE_ERROR;
	}
	rc = step_reset(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		op->rc = -EEXIST;
		return SQLITE_OK;
	}
	if (rc != SQLITE_DONE)
		return rc;
	if (op->kind == DB_OP_CAMPAIGN_CREATE)
		op->campaign_id = sqlite3_last_insert_rowid(w->db);
	else if (sqlite3_changes(w->db) == 0)
		op->rc = -ENOENT;
	return SQLITE_OK;
}

static int apply_status(struct db_writer *w, struct db_op *op)
{
	int touch = op->kind == DB_OP_CAMPAIGN_TOUCH;
	sqlite3_stmt *st = w->st[touch ? ST_TOUCH : ST_SET_STATUS];
	int rc;

	if (sqlite3_bind_int64(st, 1, op->campaign_id) ||
	    (!touch && bind_text(st, 2, op->u.status)))
		return SQLITE_ERROR;
	rc = step_reset(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		op->rc = -EINVAL;
		return SQLITE_OK;
	}
	if (rc != SQLITE_DONE)
		return rc;
	if (sqlite3_changes(w->db) == 0)
		op->rc = -ENOENT;
	return SQLITE_OK;
}

static int flush_bumps(struct db_writer *w)
{
	sqlite3_stmt *st = w->st[ST_BUMP_CAMPAIGN];

	for (size_t i = 0; i < w->bump_cap; i++) {
		struct bump *b = &w->bumps[i];
		struct recent *r;
		char ids[RECENT_IDS * 21 + 1];
		size_t len = 0;
		int rc;

		if (!b->campaign_id)
			continue;
		r = recent_get(w, b->campaign_id);
		if (!r)
			return SQLITE_NOMEM;
		for (int k = 0; k < r->n; k++)
			len += (size_t)snprintf(ids + len, sizeof(ids) - len, "%s%lld",
			                        k ? "," : "", (long long)r->ids[k]);
		ids[len] = '\0';
		if (sqlite3_bind_int64(st, 1, b->campaign_id) ||
		    sqlite3_bind_int64(st, 2, b->raised) || sqlite3_bind_int64(st, 3, b->donors) ||
		    sqlite3_bind_int64(st, 4, b->donations) ||
		    sqlite3_bind_text(st, 5, ids, (int)len, SQLITE_TRANSIENT))
			return SQLITE_ERROR;
		rc = step_reset(st);
		if (rc != SQLITE_DONE)
			return rc;
		memset(b, 0, sizeof(*b));
	}
	return SQLITE_OK;
}

/* Apply a batch in one transaction. Returns 0 or a negative errno. */
static int apply_batch(struct db_writer *w, struct db_op *ops)
{
	int rc = step_reset(w->st[ST_BEGIN]);

	if (rc != SQLITE_DONE)
		goto fail;
	for (struct db_op *op = ops; op; op = op->next) {
		op->rc = 0;
		switch (op->kind) {
		case DB_OP_DONATION:
			rc = apply_donation(w, op);
			break;
		case DB_OP_CAMPAIGN_CREATE:
		case DB_OP_CAMPAIGN_UPDATE:
			rc = apply_campaign(w, op);
			break;
		case DB_OP_CAMPAIGN_STATUS:
		case DB_OP_CAMPAIGN_TOUCH:
			rc = apply_status(w, op);
			break;
		default:
			op->rc = -EINVAL;
			rc = SQLITE_OK;
		}
		if (rc != SQLITE_OK)
			goto fail;
	}
	rc = flush_bumps(w);
	if (rc != SQLITE_OK)
		goto fail;
	rc = step_reset(w->st[ST_COMMIT]);
	if (rc != SQLITE_DONE)
		goto fail;
	return 0;
fail:
	log_msg(LOG_ERROR, "db.batch_failed", "batch rolled back: %s", sqlite3_errmsg(w->db));
	if (!sqlite3_get_autocommit(w->db) && step_reset(w->st[ST_ROLLBACK]) != SQLITE_DONE)
		log_msg(LOG_ERROR, "db.rollback_failed", "%s", sqlite3_errmsg(w->db));
	memset(w->bumps, 0, w->bump_cap * sizeof(*w->bumps));
	recent_forget(w);
	return db_errno(rc) ? db_errno(rc) : -EIO;
}

static void maybe_checkpoint(struct db_writer *w)
{
	uint64_t now = util_mono_ns();
	int rc;

	if (now - w->last_checkpoint_ns < 10ull * 1000000000ull)
		return;
	w->last_checkpoint_ns = now;
	rc = sqlite3_wal_checkpoint_v2(w->db, NULL, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		log_msg(LOG_WARN, "db.checkpoint_failed", "%s", sqlite3_errmsg(w->db));
}

static void maybe_tick(struct db_writer *w)
{
	uint64_t now = util_mono_ns();

	if (!w->hooks.tick || now - w->last_tick_ns < 1000000000ull)
		return;
	w->last_tick_ns = now;
	w->hooks.tick(w->hooks.ctx);
}

static void *writer_main(void *arg)
{
	struct db_writer *w = arg;

	for (;;) {
		struct db_op *batch, *last;
		uint64_t t0;
		double secs;
		size_t n = 1;
		int rc;

		pthread_mutex_lock(&w->lock);
		while (!w->head && !w->stopping) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT)
				break;
		}
		if (!w->head) {
			int stop = w->stopping;

			pthread_mutex_unlock(&w->lock);
			if (stop)
				break;
			maybe_checkpoint(w);
			maybe_tick(w);
			continue;
		}
		batch = last = w->head;
		while (last->next && n < w->max_batch) {
			last = last->next;
			n++;
		}
		w->head = last->next;
		if (!w->head)
			w->tail = NULL;
		last->next = NULL;
		w->depth -= n;
		if (w->refusing) {
			pthread_mutex_unlock(&w->lock);
			for (struct db_op *op = batch; op; op = op->next)
				op->rc = -ESHUTDOWN;
			w->hooks.batch_done(w->hooks.ctx, batch, -ESHUTDOWN);
			continue;
		}
		pthread_mutex_unlock(&w->lock);

		t0 = util_mono_ns();
		rc = apply_batch(w, batch);
		secs = (double)(util_mono_ns() - t0) / 1e9;
		if (rc)
			for (struct db_op *op = batch; op; op = op->next)
				op->rc = rc;

		pthread_mutex_lock(&w->lock);
		w->stats.batches++;
		w->stats.ops += n;
		w->stats.last_batch = n;
		w->stats.failed_commits += rc != 0;
		hist_add(w->stats.batch_size_hist, db_batch_size_bounds, (double)n);
		hist_add(w->stats.commit_seconds_hist, db_commit_seconds_bounds, secs);
		w->stats.commit_seconds_sum += secs;
		pthread_mutex_unlock(&w->lock);

		w->hooks.batch_done(w->hooks.ctx, batch, rc);
		maybe_checkpoint(w);
		maybe_tick(w);
	}
	return NULL;
}

int db_writer_new(sqlite3 *conn, size_t max_queue, size_t max_batch,
                  const struct db_writer_hooks *hooks, struct db_writer **out)
{
	struct db_writer *w;
	int rc;

	*out = NULL;
	w = calloc(1, sizeof(*w));
	if (!w) {
		sqlite3_close(conn);
		return -ENOMEM;
	}
	w->db = conn;
	w->max_queue = max_queue;
	w->max_batch = max_batch ? max_batch : 1;
	w->hooks = *hooks;
	w->bump_cap = 16;
	while (w->bump_cap < 2 * w->max_batch)
		w->bump_cap <<= 1;
	w->bumps = calloc(w->bump_cap, sizeof(*w->bumps));
	if (!w->bumps) {
		rc = -ENOMEM;
		goto fail;
	}
	for (int i = 0; i < ST_COUNT; i++) {
		rc = sqlite3_prepare_v3(conn, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &w->st[i],
		                        NULL);
		if (rc != SQLITE_OK) {
			log_msg(LOG_ERROR, "db.prepare_failed", "%s: %s", stmt_sql[i],
			        sqlite3_errmsg(conn));
			rc = db_errno(rc);
			goto fail;
		}
	}
	w->last_checkpoint_ns = util_mono_ns();
	if (pthread_mutex_init(&w->lock, NULL)) {
		rc = -ENOMEM;
		goto fail;
	}
	if (pthread_cond_init(&w->cond, NULL)) {
		pthread_mutex_destroy(&w->lock);
		rc = -ENOMEM;
		goto fail;
	}
	rc = -pthread_create(&w->thread, NULL, writer_main, w);
	if (rc) {
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->lock);
		goto fail;
	}
	*out = w;
	return 0;
fail:
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(w->st[i]);
	sqlite3_close(conn);
	free(w->bumps);
	free(w->recent);
	free(w);
	return rc;
}

static int submit(struct db_writer *w, struct db_op *op, int force)
{
	int wake;

	op->next = NULL;
	pthread_mutex_lock(&w->lock);
	if (w->stopping) {
		pthread_mutex_unlock(&w->lock);
		return -ESHUTDOWN;
	}
	if (!force && w->depth >= w->max_queue) {
		pthread_mutex_unlock(&w->lock);
		return -EAGAIN;
	}
	wake = !w->head;
	if (w->tail)
		w->tail->next = op;
	else
		w->head = op;
	w->tail = op;
	w->depth++;
	pthread_mutex_unlock(&w->lock);
	if (wake)
		pthread_cond_signal(&w->cond);
	return 0;
}

int db_writer_submit(struct db_writer *w, struct db_op *op)
{
	return submit(w, op, 0);
}

int db_writer_submit_force(struct db_writer *w, struct db_op *op)
{
	return submit(w, op, 1);
}

void db_writer_refuse(struct db_writer *w)
{
	pthread_mutex_lock(&w->lock);
	w->refusing = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

void db_writer_stats(struct db_writer *w, struct db_writer_stats *out)
{
	pthread_mutex_lock(&w->lock);
	*out = w->stats;
	out->depth = w->depth;
	pthread_mutex_unlock(&w->lock);
}

void db_writer_free(struct db_writer *w)
{
	int rc;

	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	if (pthread_join(w->thread, NULL))
		log_msg(LOG_ERROR, "db.join_failed", "the writer thread did not join");
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(w->st[i]);
	rc = sqlite3_wal_checkpoint_v2(w->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	if (rc != SQLITE_OK)
		log_msg(LOG_WARN, "db.checkpoint_failed", "%s", sqlite3_errmsg(w->db));
	rc = sqlite3_close(w->db);
	if (rc != SQLITE_OK)
		log_msg(LOG_ERROR, "db.close_failed", "%s", sqlite3_errstr(rc));
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w->bumps);
	free(w->recent);
	free(w);
}
