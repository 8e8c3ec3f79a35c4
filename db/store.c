/* db/store.c - the domain statements of the writer's transactions.
 *
 * DESIGN: the writer (writer.c) owns the mechanism - the queue, the
 * thread, batching, checkpoints - and knows nothing of donations or jobs.
 * For each op of a batch it calls db_store_apply, which dispatches on the
 * op's kind through one table (op_table below) to the statements that
 * record it; db_store_flush then writes what the batch gathered (new jobs
 * and done jobs as multi-row statements, queue counters, one aggregate
 * UPDATE per touched campaign). A constraint failure fails only its op;
 * any other SQLite error fails the batch, which the writer rolls back
 * (db_store_forget drops what was gathered).
 */
#include "db/store.h"
#include "db/db.h"
#include "db/challenges.h"
#include "db/pools.h"
#include "base/log.h"
#include "base/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum stmt_id {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_INSERT_DONATION,
	ST_INSERT_OFFLINE,
	ST_INSERT_DONOR,
	ST_FIND_IDEM,
	ST_FREE_IDEM,
	ST_BUMP_CAMPAIGN,
	ST_RECENT_IDS,
	ST_INSERT_CAMPAIGN,
	ST_UPDATE_CAMPAIGN,
	ST_SET_STATUS,
	ST_TOUCH,
	ST_INSERT_JOB,
	ST_UPDATE_JOB,
	ST_DONE_JOB,
	ST_DELETE_JOB,
	ST_DON_FETCH,
	ST_DON_SUCCEEDED,
	ST_DON_FAILED,
	ST_DON_REFUNDED,
	ST_DON_RELEASED,
	ST_DON_RECEIPT,
	ST_DON_REF,
	ST_DON_UNREFUND,
	ST_DON_REFUND_ASK,
	ST_QUEUE_PAUSE,
	ST_QUEUE_COUNT,
	ST_RETRY_DEAD,
	ST_AUDIT,
	ST_PRUNE_SCAN,
	ST_PRUNE_FLOOR,
	ST_TOKEN_INSERT,
	ST_TOKEN_REVOKE,
	ST_TOKEN_GET,
	ST_DATA_VERSION,
	ST_DAY_SET,
	ST_DAY_CLEAR,
	ST_DAY_OTHER_CURRENCY,
	ST_DAY_SEQ,
	ST_TOUCH_ALL,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_INSERT_DONATION] =
        "INSERT INTO donations (campaign_id, amount_cents, currency, donor_name,"
        " donor_email, anonymous, hide_amount, message, payment_token, status, created_at,"
        " id, idem_key, idem_hash, status_token, pool_id, matched_cents, fee_cents)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?10, ?11, ?12, ?13, ?14,"
        " nullif(?15, 0), ?16, ?17)",
    /* An offline gift: succeeded from the start, no payment token. */
    [ST_INSERT_OFFLINE] =
        "INSERT INTO donations (campaign_id, amount_cents, currency, donor_name,"
        " donor_email, anonymous, hide_amount, message, payment_token, status, created_at,"
        " id, idem_key, idem_hash, status_token, pool_id, matched_cents, source, method, note,"
        " received_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '', 'succeeded', ?10, ?11, ?12, ?13, ?14,"
        " nullif(?15, 0), ?16, 'offline', ?17, ?18, ?19)",
    [ST_FIND_IDEM] = "SELECT id, idem_hash, campaign_id, amount_cents, currency, created_at,"
                     " coalesce(status_token, ''), matched_cents, fee_cents, source = 'offline',"
                     " coalesce(method, ''), coalesce(received_at, 0)"
                     " FROM donations WHERE idem_key = ?1",
    [ST_FREE_IDEM] = "UPDATE donations SET idem_key = NULL WHERE id = ?1",
    [ST_INSERT_DONOR] = "INSERT OR IGNORE INTO donors (campaign_id, email) VALUES (?1, lower(?2))",
    [ST_BUMP_CAMPAIGN] = "UPDATE campaigns SET raised_cents = raised_cents + ?2,"
                         " donor_count = donor_count + ?3, donation_count = donation_count + ?4,"
                         " pending_cents = pending_cents + ?6, matched_cents = matched_cents + ?7,"
                         " seq = seq + 1, recent_ids = ?5"
                         " WHERE id = ?1",
    [ST_RECENT_IDS] = "SELECT recent_ids FROM campaigns WHERE id = ?1",
    [ST_INSERT_CAMPAIGN] = "INSERT INTO campaigns (slug, name, currency, goal_cents, starts_at,"
                           " ends_at, created_at, seq, category)"
                           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8)",
    [ST_UPDATE_CAMPAIGN] = "UPDATE campaigns SET name = coalesce(?2, name),"
                           " goal_cents = coalesce(?3, goal_cents),"
                           " starts_at = CASE WHEN ?4 THEN nullif(?5, 0) ELSE starts_at END,"
                           " ends_at = CASE WHEN ?6 THEN nullif(?7, 0) ELSE ends_at END,"
                           " category = CASE WHEN ?8 THEN ?9 ELSE category END,"
                           " seq = seq + 1 WHERE id = ?1",
    [ST_SET_STATUS] = "UPDATE campaigns SET status = ?2, seq = seq + 1 WHERE id = ?1",
    [ST_TOUCH] = "UPDATE campaigns SET seq = seq + 1 WHERE id = ?1",
    [ST_INSERT_JOB] = "INSERT INTO jobs (id, queue, kind, donation_id, url, state, attempts,"
                      " next_run_at, created_at, updated_at)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, 'ready', 0, ?6, ?6, ?6)",
    /* ?7 non-zero: a failed attempt, appended to the history as [?3, ?7,
     * ?8, ?9], the oldest dropped past ?10 (JOB_HISTORY_MAX) entries; a
     * history that is not a JSON array (edited by hand) starts over rather
     * than fail the batch. */
    [ST_UPDATE_JOB] = "UPDATE jobs SET state = ?2, attempts = ?3, next_run_at = ?4,"
                      " last_error = nullif(?5, ''), updated_at = ?6,"
                      " history = CASE WHEN ?7 = 0 THEN history ELSE json_insert("
                      "  CASE WHEN history IS NULL OR NOT json_valid(history) THEN '[]'"
                      "  WHEN json_type(history) <> 'array' THEN '[]'"
                      "  WHEN json_array_length(history) >= ?10 THEN json_remove(history, '$[0]')"
                      "  ELSE history END, '$[#]', json_array(?3, ?7, ?8, ?9)) END"
                      " WHERE id = ?1",
    [ST_DONE_JOB] = "UPDATE jobs SET state = 'done', attempts = attempts + 1, updated_at = ?2"
                    " WHERE id = ?1",
    [ST_DELETE_JOB] = "DELETE FROM jobs WHERE id = ?1",
    /* When the worker did not send the donation along: read it, then
     * update (UPDATE ... RETURNING would build an ephemeral table per
     * call, which costs more than the read). */
    [ST_DON_FETCH] = "SELECT campaign_id, amount_cents, currency, donor_name, donor_email,"
                     " anonymous, hide_amount, message, created_at, coalesce(pool_id, 0),"
                     " matched_cents FROM donations WHERE id = ?1",
    [ST_DON_SUCCEEDED] = "UPDATE donations SET status = 'succeeded', processor_ref = ?2"
                         " WHERE id = ?1 AND status = 'pending'",
    [ST_DON_FAILED] = "UPDATE donations SET status = 'failed', reason = ?2"
                      " WHERE id = ?1 AND status = 'pending'",
    /* A refund gives the gift's match back to its pool while the pool
     * is open (not depleted by staff, its window not ended at ?3). */
    [ST_DON_REFUNDED] = "UPDATE donations SET status = 'refunded', reason = coalesce(reason, ?2),"
                        " match_released = (matched_cents > 0 AND EXISTS (SELECT 1 FROM"
                        " match_pools p WHERE p.id = donations.pool_id AND p.status <> 'depleted'"
                        " AND (p.ends_at IS NULL OR p.ends_at > ?3)))"
                        " WHERE id = ?1 AND status = 'succeeded'",
    [ST_DON_RELEASED] = "SELECT match_released FROM donations WHERE id = ?1",
    [ST_DON_RECEIPT] = "UPDATE donations SET receipt_sent_at = ?2 WHERE id = ?1",
    [ST_DON_REF] = "UPDATE donations SET processor_ref = ?2 WHERE id = ?1 AND status = 'pending'",
    [ST_DON_UNREFUND] = "UPDATE donations SET refund_requested_at = NULL WHERE id = ?1"
                        " AND status = 'succeeded'",
    [ST_DON_REFUND_ASK] = "UPDATE donations SET refund_requested_at = ?2, reason = ?3"
                          " WHERE id = ?1 AND status = 'succeeded' AND source = 'online'"
                          " AND refund_requested_at IS NULL",
    [ST_QUEUE_PAUSE] = "UPDATE queues SET paused = ?2 WHERE name = ?1",
    [ST_QUEUE_COUNT] = "UPDATE queues SET done_total = done_total + ?2,"
                       " failed_total = failed_total + ?3 WHERE name = ?1",
    [ST_RETRY_DEAD] = "UPDATE jobs INDEXED BY jobs_open SET state = 'ready', next_run_at = ?2,"
                      " updated_at = ?2 WHERE state <> 'done' AND state = 'dead' AND queue = ?1",
    [ST_AUDIT] = "INSERT INTO audit (at, actor, action, target, detail)"
                 " VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_PRUNE_SCAN] = "SELECT id, state = 'done', updated_at < ?2 FROM jobs"
                      " WHERE id > ?1 ORDER BY id LIMIT 2000",
    [ST_PRUNE_FLOOR] = "INSERT INTO meta VALUES ('job_id_floor', ?1) ON CONFLICT (key) DO UPDATE"
                       " SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
    /* name is COLLATE NOCASE: these match it without regard to case. */
    [ST_TOKEN_INSERT] = "INSERT INTO staff_tokens (name, role, hash, created_at)"
                        " VALUES (?1, ?2, ?3, ?4)",
    [ST_TOKEN_REVOKE] = "UPDATE staff_tokens SET revoked_at = ?2"
                        " WHERE name = ?1 AND revoked_at IS NULL",
    [ST_TOKEN_GET] = "SELECT name, role, created_at, coalesce(revoked_at, 0) FROM staff_tokens"
                     " WHERE name = ?1",
    [ST_DATA_VERSION] = "PRAGMA data_version",
    [ST_DAY_SET] = "INSERT OR REPLACE INTO giving_day (id, name, early_at, opens_at, closes_at,"
                   " currency) VALUES (1, ?1, nullif(?2, 0), ?3, ?4, nullif(?5, ''))",
    [ST_DAY_CLEAR] = "DELETE FROM giving_day",
    [ST_DAY_OTHER_CURRENCY] = "SELECT 1 FROM campaigns WHERE currency <> ?1 LIMIT 1",
    [ST_DAY_SEQ] = "INSERT INTO meta VALUES ('day_seq', 1) ON CONFLICT (key) DO UPDATE"
                   " SET value = CAST(value AS INTEGER) + 1",
    [ST_TOUCH_ALL] = "UPDATE campaigns SET seq = seq + 1",
};

/* Per-batch counters of one queue. */
struct queue_count {
	const char *name; /* NULL = free */
	int64_t done, failed;
};
#define MAX_QUEUES 4

/* Per-batch aggregate delta of one campaign (open addressing, key 0 = free). */
struct bump {
	int64_t campaign_id;
	int64_t raised;
	int64_t donors;
	int64_t donations;
	int64_t pending;
	int64_t matched;
};

/* The newest gift ids of a campaign, newest first, as stored in
 * campaigns.recent_ids (writer thread; loaded on first use). */
#define RECENT_IDS 10
struct recent {
	int64_t campaign_id; /* 0 = free slot */
	int64_t ids[RECENT_IDS];
	int n;
};

struct db_store {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	struct bump *bumps;
	size_t bump_cap;       /* power of two >= 2 * max_batch */
	struct recent *recent; /* open addressing on campaign_id */
	size_t recent_cap, recent_used;
	struct queue_count counts[MAX_QUEUES];
	int64_t prune_cursor; /* jobs below this id were looked at */
	/* Jobs created by this batch's outcomes, inserted together before
	 * COMMIT (a multi-row INSERT costs far less per row). */
	struct later_job {
		struct db_new_job j;
		int64_t donation_id;
	} * later;
	size_t n_later, later_cap;
	sqlite3_stmt *insert_many; /* INSERT_ROWS rows per statement */
	/* Jobs done at their first try this batch, marked done together. */
	int64_t *done_ids;
	size_t n_done, done_cap;
	sqlite3_stmt *done_many; /* INSERT_ROWS ids per statement */
	struct db_pool_stmts pools;
	struct db_challenge_stmts challenges;
};

#define INSERT_ROWS 32

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
static struct recent *recent_get(struct db_store *ds, int64_t campaign_id)
{
	struct recent *r;
	sqlite3_stmt *st;
	const char *p;
	int rc;

	if ((ds->recent_used + 1) * 2 > ds->recent_cap) {
		size_t cap = ds->recent_cap ? ds->recent_cap * 2 : 256;
		struct recent *v = calloc(cap, sizeof(*v));

		if (!v)
			return NULL;
		for (size_t i = 0; i < ds->recent_cap; i++)
			if (ds->recent[i].campaign_id)
				*recent_slot(v, cap, ds->recent[i].campaign_id) = ds->recent[i];
		free(ds->recent);
		ds->recent = v;
		ds->recent_cap = cap;
	}
	r = recent_slot(ds->recent, ds->recent_cap, campaign_id);
	if (r->campaign_id)
		return r;
	st = ds->st[ST_RECENT_IDS];
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
		ds->recent_used++;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r->campaign_id ? r : NULL;
}

/* Forget every loaded list (after a rollback they may name lost ids). */
static void recent_forget(struct db_store *ds)
{
	if (ds->recent)
		memset(ds->recent, 0, ds->recent_cap * sizeof(*ds->recent));
	ds->recent_used = 0;
}

static void bump_add(struct db_store *ds, int64_t campaign_id, int64_t raised, int64_t donors,
                     int64_t donations, int64_t pending, int64_t matched)
{
	size_t mask = ds->bump_cap - 1;
	size_t i = (size_t)util_hash(&campaign_id, sizeof(campaign_id)) & mask;

	while (ds->bumps[i].campaign_id && ds->bumps[i].campaign_id != campaign_id)
		i = (i + 1) & mask;
	ds->bumps[i].campaign_id = campaign_id;
	ds->bumps[i].raised += raised;
	ds->bumps[i].donors += donors;
	ds->bumps[i].donations += donations;
	ds->bumps[i].pending += pending;
	ds->bumps[i].matched += matched;
}

static int insert_donation(struct db_store *ds, struct db_op *op)
{
	const struct donation_req *d = &op->u.donation.req;
	int offline = op->kind == DB_OP_OFFLINE;
	sqlite3_stmt *st = ds->st[offline ? ST_INSERT_OFFLINE : ST_INSERT_DONATION];
	int has_key = op->u.donation.idem_key[0] != '\0';

	if (offline) {
		const struct db_offline *o = &op->u.donation.offline;

		if (bind_text(st, 17, gift_method_names[o->method]) ||
		    (o->note[0] && bind_text(st, 18, o->note)) ||
		    sqlite3_bind_int64(st, 19, o->received_at ? o->received_at : op->now_ms))
			return SQLITE_ERROR;
	} else if (sqlite3_bind_int64(st, 17, d->fee_cents)) {
		return SQLITE_ERROR;
	}
	if (sqlite3_bind_int64(st, 1, op->campaign_id) ||
	    sqlite3_bind_int64(st, 2, d->amount_cents) || bind_text(st, 3, d->currency) ||
	    bind_text(st, 4, d->name) || bind_text(st, 5, d->email) ||
	    sqlite3_bind_int(st, 6, d->anonymous) || sqlite3_bind_int(st, 7, d->hide_amount) ||
	    bind_text(st, 8, d->message) || (!offline && bind_text(st, 9, d->payment_token)) ||
	    sqlite3_bind_int64(st, 10, op->now_ms) ||
	    sqlite3_bind_int64(st, 11, op->u.donation.id) ||
	    (op->u.donation.status_token[0] && bind_text(st, 14, op->u.donation.status_token)) ||
	    sqlite3_bind_int64(st, 15, op->u.donation.pool_id) ||
	    sqlite3_bind_int64(st, 16, op->u.donation.matched_cents) ||
	    (has_key && (bind_text(st, 12, op->u.donation.idem_key) ||
	                 sqlite3_bind_int64(st, 13, op->u.donation.idem_hash))))
		return SQLITE_ERROR;
	return step_reset(st);
}

/* The insert hit a constraint: if the idempotency key names an earlier
 * donation, describe it (op->u.donation.replay, its status token in
 * op->u.donation.status_token) or, when that one is older
 * than the key's lifetime, free the key and say so with SQLITE_ROW. */
static int find_idem(struct db_store *ds, struct db_op *op)
{
	sqlite3_stmt *st = ds->st[ST_FIND_IDEM];
	char token[TALLY_STATUS_TOKEN_SIZE] = "";
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
		cur = sqlite3_column_text(st, 6);
		snprintf(token, sizeof(token), "%s", cur ? (const char *)cur : "");
		op->u.donation.prev_matched_cents = sqlite3_column_int64(st, 7);
		op->u.donation.prev_fee_cents = sqlite3_column_int64(st, 8);
		op->u.donation.prev_offline = sqlite3_column_int(st, 9);
		cur = sqlite3_column_text(st, 10);
		snprintf(op->u.donation.prev_method, sizeof(op->u.donation.prev_method), "%s",
		         cur ? (const char *)cur : "");
		op->u.donation.prev_received_at = sqlite3_column_int64(st, 11);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW)
		return rc;
	if (op->u.donation.prev_created_at >= op->u.donation.idem_expired) {
		op->u.donation.replay = 1;
		op->u.donation.id = id;
		memcpy(op->u.donation.status_token, token, sizeof(token));
		return SQLITE_DONE;
	}
	st = ds->st[ST_FREE_IDEM];
	if (sqlite3_bind_int64(st, 1, id))
		return SQLITE_ERROR;
	rc = step_reset(st);
	return rc == SQLITE_DONE ? SQLITE_ROW : rc;
}

/* Queue n new jobs of donation_id for the batch's multi-row INSERT. */
static int later_add(struct db_store *ds, const struct db_new_job *jobs, int n, int64_t donation_id)
{
	if (ds->n_later + (size_t)n > ds->later_cap) {
		size_t cap = ds->later_cap ? ds->later_cap * 2 : 1024;
		struct later_job *v;

		while (cap < ds->n_later + (size_t)n)
			cap *= 2;
		v = realloc(ds->later, cap * sizeof(*v));
		if (!v)
			return SQLITE_NOMEM;
		ds->later = v;
		ds->later_cap = cap;
	}
	for (int i = 0; i < n; i++) {
		ds->later[ds->n_later].j = jobs[i];
		ds->later[ds->n_later++].donation_id = donation_id;
	}
	return SQLITE_OK;
}

static int recent_push(struct db_store *ds, int64_t campaign_id, int64_t id);

/* An offline gift was inserted succeeded: its donor, the campaign's
 * newest gifts and numbers (as effect_rules[EFFECT_OFFLINE] says, the rule
 * the engine's cache follows too), and its receipt and webhook jobs, in
 * the same transaction (the outbox). A gift without an email is a donor
 * of its own: nothing tells two such donors apart. */
static int count_offline(struct db_store *ds, struct db_op *op)
{
	const struct donation_req *d = &op->u.donation.req;
	const struct effect_rule *rule = &effect_rules[EFFECT_OFFLINE];
	int rc;

	op->u.donation.new_donor = 1;
	if (d->email[0]) {
		sqlite3_stmt *st = ds->st[ST_INSERT_DONOR];

		if (sqlite3_bind_int64(st, 1, op->campaign_id) || bind_text(st, 2, d->email))
			return SQLITE_ERROR;
		rc = step_reset(st);
		if (rc != SQLITE_DONE)
			return rc;
		op->u.donation.new_donor = sqlite3_changes(ds->db) > 0;
	}
	rc = recent_push(ds, op->campaign_id, op->u.donation.id);
	if (rc != SQLITE_OK)
		return rc;
	/* Its match, when the prepare hook reserved one (a pool that takes
	 * offline gifts), is matched money at once: the gift succeeded. */
	bump_add(ds, op->campaign_id, rule->raised * d->amount_cents,
	         rule->raised > 0 ? op->u.donation.new_donor : 0, rule->raised,
	         rule->pending * d->amount_cents, op->u.donation.matched_cents);
	return later_add(ds, op->u.donation.offline.follow, op->u.donation.offline.n_follow,
	                 op->u.donation.id);
}

/* Returns SQLITE_OK, or the code of an error that must fail the batch. A
 * constraint error is recorded in op->rc and returns SQLITE_OK. An online
 * gift (DB_OP_DONATION) is inserted pending with its capture job; an
 * offline one (DB_OP_OFFLINE) succeeded (count_offline). */
static int apply_donation(struct db_store *ds, struct db_op *op)
{
	const struct donation_req *d = &op->u.donation.req;
	int rc = insert_donation(ds, op);

	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		rc = find_idem(ds, op);
		if (rc == SQLITE_ROW) /* an expired key was freed: try again */
			rc = insert_donation(ds, op);
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
	if (op->kind == DB_OP_OFFLINE)
		return count_offline(ds, op);
	/* The transactional outbox: no gift without its capture job, inserted
	 * with the batch's other new jobs before COMMIT. */
	{
		struct db_new_job cap = {op->u.donation.job_id, JOB_CAPTURE, NULL};

		rc = later_add(ds, &cap, 1, op->u.donation.id);
		if (rc != SQLITE_OK)
			return rc;
	}
	bump_add(ds, op->campaign_id, 0, 0, 0, d->amount_cents, 0);
	return SQLITE_OK;
}

static int insert_job(struct db_store *ds, const struct db_new_job *j, int64_t donation_id,
                      int64_t now)
{
	sqlite3_stmt *st = ds->st[ST_INSERT_JOB];

	if (sqlite3_bind_int64(st, 1, j->id) ||
	    bind_text(st, 2, job_queue_names[job_kind_queue[j->kind]]) ||
	    bind_text(st, 3, job_kind_names[j->kind]) || sqlite3_bind_int64(st, 4, donation_id) ||
	    (j->url && bind_text(st, 5, j->url)) || sqlite3_bind_int64(st, 6, now))
		return SQLITE_ERROR;
	return step_reset(st);
}

static void count_queue(struct db_store *ds, const char *name, int done, int failed)
{
	for (int i = 0; i < MAX_QUEUES; i++) {
		if (ds->counts[i].name && strcmp(ds->counts[i].name, name))
			continue;
		ds->counts[i].name = name;
		ds->counts[i].done += done;
		ds->counts[i].failed += failed;
		return;
	}
}

static int flush_counts(struct db_store *ds)
{
	sqlite3_stmt *st = ds->st[ST_QUEUE_COUNT];

	for (int i = 0; i < MAX_QUEUES && ds->counts[i].name; i++) {
		int rc;

		if (bind_text(st, 1, ds->counts[i].name) ||
		    sqlite3_bind_int64(st, 2, ds->counts[i].done) ||
		    sqlite3_bind_int64(st, 3, ds->counts[i].failed))
			return SQLITE_ERROR;
		rc = step_reset(st);
		if (rc != SQLITE_DONE)
			return rc;
	}
	memset(ds->counts, 0, sizeof(ds->counts));
	return SQLITE_OK;
}

static void copy_col(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

/* Read the donation an effect applies to (ST_DON_FETCH). */
static void read_effect(sqlite3_stmt *st, struct db_job_update *j, int64_t *campaign_id)
{
	*campaign_id = sqlite3_column_int64(st, 0);
	j->d.amount_cents = sqlite3_column_int64(st, 1);
	copy_col(j->d.currency, sizeof(j->d.currency), st, 2);
	copy_col(j->d.name, sizeof(j->d.name), st, 3);
	copy_col(j->d.email, sizeof(j->d.email), st, 4);
	j->d.anonymous = sqlite3_column_int(st, 5);
	j->d.hide_amount = sqlite3_column_int(st, 6);
	copy_col(j->d.message, sizeof(j->d.message), st, 7);
	j->created_at = sqlite3_column_int64(st, 8);
	j->pool_id = sqlite3_column_int64(st, 9);
	j->matched_cents = sqlite3_column_int64(st, 10);
}

/* Push id onto a campaign's newest-gift list. */
static int recent_push(struct db_store *ds, int64_t campaign_id, int64_t id)
{
	struct recent *r = recent_get(ds, campaign_id);

	if (!r)
		return SQLITE_NOMEM;
	memmove(r->ids + 1, r->ids, (RECENT_IDS - 1) * sizeof(r->ids[0]));
	r->ids[0] = id;
	if (r->n < RECENT_IDS)
		r->n++;
	return SQLITE_OK;
}

/* Read back whether a refund gave its match back (the UPDATE decided). */
static int match_released(struct db_store *ds, struct db_job_update *j)
{
	sqlite3_stmt *st = ds->st[ST_DON_RELEASED];
	int rc;

	if (sqlite3_bind_int64(st, 1, j->donation_id))
		return SQLITE_ERROR;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		j->match_released = sqlite3_column_int(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? SQLITE_CORRUPT : rc;
}

/* Apply a job's effect on its donation. Sets j->applied when the donation
 * changed state (a repeated effect changes nothing). */
static int apply_effect(struct db_store *ds, struct db_op *op)
{
	struct db_job_update *j = &op->u.job;
	sqlite3_stmt *st;
	int64_t cid = 0;
	int rc;

	switch (j->effect) {
	case EFFECT_NONE:
		return SQLITE_OK;
	case EFFECT_RECEIPT:
		st = ds->st[ST_DON_RECEIPT];
		if (sqlite3_bind_int64(st, 1, j->donation_id) ||
		    sqlite3_bind_int64(st, 2, op->now_ms))
			return SQLITE_ERROR;
		rc = step_reset(st);
		j->applied = rc == SQLITE_DONE && sqlite3_changes(ds->db) > 0;
		return rc == SQLITE_DONE ? SQLITE_OK : rc;
	case EFFECT_REFUND_DROPPED:
		st = ds->st[ST_DON_UNREFUND];
		if (sqlite3_bind_int64(st, 1, j->donation_id))
			return SQLITE_ERROR;
		rc = step_reset(st);
		return rc == SQLITE_DONE ? SQLITE_OK : rc;
	case EFFECT_REF:
		st = ds->st[ST_DON_REF];
		if (sqlite3_bind_int64(st, 1, j->donation_id) || bind_text(st, 2, j->ref))
			return SQLITE_ERROR;
		rc = step_reset(st);
		return rc == SQLITE_DONE ? SQLITE_OK : rc;
	case EFFECT_SUCCEEDED:
		st = ds->st[ST_DON_SUCCEEDED];
		break;
	case EFFECT_FAILED:
		st = ds->st[ST_DON_FAILED];
		break;
	case EFFECT_REFUNDED:
		st = ds->st[ST_DON_REFUNDED];
		break;
	default:
		return SQLITE_MISUSE;
	}
	if (!j->has_donation) {
		sqlite3_stmt *f = ds->st[ST_DON_FETCH];

		if (sqlite3_bind_int64(f, 1, j->donation_id))
			return SQLITE_ERROR;
		rc = sqlite3_step(f);
		if (rc == SQLITE_ROW) {
			read_effect(f, j, &j->campaign_id);
			rc = SQLITE_DONE;
		}
		sqlite3_reset(f);
		sqlite3_clear_bindings(f);
		if (rc != SQLITE_DONE)
			return rc;
	}
	/* Only from the state the effect starts from (the UPDATE says so):
	 * a repeated outcome (at-least-once) changes nothing. */
	if (sqlite3_bind_int64(st, 1, j->donation_id) ||
	    bind_text(st, 2, j->effect == EFFECT_SUCCEEDED ? j->ref : j->reason) ||
	    (j->effect == EFFECT_REFUNDED && sqlite3_bind_int64(st, 3, op->now_ms)))
		return SQLITE_ERROR;
	rc = step_reset(st);
	if (rc != SQLITE_DONE)
		return rc;
	j->applied = sqlite3_changes(ds->db) > 0;
	cid = j->campaign_id;
	if (!j->applied)
		return SQLITE_OK;
	if (j->effect == EFFECT_REFUNDED && j->matched_cents > 0) {
		rc = match_released(ds, j);
		if (rc != SQLITE_OK)
			return rc;
	}
	op->campaign_id = cid;
	if (j->effect == EFFECT_SUCCEEDED) {
		st = ds->st[ST_INSERT_DONOR];
		if (sqlite3_bind_int64(st, 1, cid) || bind_text(st, 2, j->d.email))
			return SQLITE_ERROR;
		rc = step_reset(st);
		if (rc != SQLITE_DONE)
			return rc;
		j->new_donor = sqlite3_changes(ds->db) > 0;
		rc = recent_push(ds, cid, j->donation_id);
		if (rc != SQLITE_OK)
			return rc;
	}
	{
		/* The campaign's numbers move as the effect's rule says, the
		 * same rule the engine's cache follows. */
		const struct effect_rule *rule = &effect_rules[j->effect];

		/* A success makes its reserved match the campaign's; a refund
		 * takes it away only when it went back to the pool. */
		int64_t matched = j->effect == EFFECT_SUCCEEDED ? j->matched_cents
		                  : j->match_released           ? -j->matched_cents
		                                                : 0;

		bump_add(ds, cid, rule->raised * j->d.amount_cents,
		         rule->raised > 0 ? j->new_donor : 0, rule->raised,
		         rule->pending * j->d.amount_cents, matched);
	}
	return later_add(ds, j->follow, j->n_follow, j->donation_id);
}

/* Mark the batch's finished jobs done (attempts + 1: the stored count
 * always equals the one in memory that the outcome counted from). */
static int flush_done(struct db_store *ds, int64_t now)
{
	sqlite3_stmt *st = ds->done_many, *one = ds->st[ST_DONE_JOB];
	size_t i = 0;
	int rc;

	for (; i + INSERT_ROWS <= ds->n_done; i += INSERT_ROWS) {
		if (sqlite3_bind_int64(st, 1, now))
			return SQLITE_ERROR;
		for (int k = 0; k < INSERT_ROWS; k++)
			if (sqlite3_bind_int64(st, k + 2, ds->done_ids[i + (size_t)k]))
				return SQLITE_ERROR;
		rc = step_reset(st);
		if (rc != SQLITE_DONE)
			return rc;
	}
	for (; i < ds->n_done; i++) {
		if (sqlite3_bind_int64(one, 1, ds->done_ids[i]) || sqlite3_bind_int64(one, 2, now))
			return SQLITE_ERROR;
		rc = step_reset(one);
		if (rc != SQLITE_DONE)
			return rc;
	}
	ds->n_done = 0;
	return SQLITE_OK;
}

/* Insert the jobs queued by this batch's outcomes. */
static int flush_later(struct db_store *ds, int64_t now)
{
	sqlite3_stmt *st = ds->insert_many;
	size_t i = 0;
	int rc;

	for (; i + INSERT_ROWS <= ds->n_later; i += INSERT_ROWS) {
		for (int k = 0; k < INSERT_ROWS; k++) {
			const struct later_job *l = &ds->later[i + (size_t)k];
			int b = k * 5;

			if (sqlite3_bind_int64(st, b + 2, l->j.id) ||
			    bind_text(st, b + 3, job_queue_names[job_kind_queue[l->j.kind]]) ||
			    bind_text(st, b + 4, job_kind_names[l->j.kind]) ||
			    sqlite3_bind_int64(st, b + 5, l->donation_id) ||
			    (l->j.url ? bind_text(st, b + 6, l->j.url)
			              : sqlite3_bind_null(st, b + 6)))
				return SQLITE_ERROR;
		}
		if (sqlite3_bind_int64(st, 1, now))
			return SQLITE_ERROR;
		rc = step_reset(st);
		if (rc != SQLITE_DONE)
			return rc;
	}
	for (; i < ds->n_later; i++) {
		rc = insert_job(ds, &ds->later[i].j, ds->later[i].donation_id, now);
		if (rc != SQLITE_DONE)
			return rc;
	}
	ds->n_later = 0;
	return SQLITE_OK;
}

static int apply_job(struct db_store *ds, struct db_op *op)
{
	struct db_job_update *j = &op->u.job;
	sqlite3_stmt *st;
	int rc = apply_effect(ds, op);

	if (rc != SQLITE_OK)
		return rc;
	if (j->state == JOB_DONE && !j->error[0] && !j->attempt_at) {
		/* The common case: marked done with the batch's others. */
		if (ds->n_done == ds->done_cap) {
			size_t cap = ds->done_cap ? ds->done_cap * 2 : 1024;
			int64_t *v = realloc(ds->done_ids, cap * sizeof(*v));

			if (!v)
				return SQLITE_NOMEM;
			ds->done_ids = v;
			ds->done_cap = cap;
		}
		ds->done_ids[ds->n_done++] = j->job_id;
		if (j->done || j->failed)
			count_queue(ds, job_queue_names[j->queue], j->done, j->failed);
		return SQLITE_OK;
	} else if (j->state != JOB_GONE) {
		st = ds->st[ST_UPDATE_JOB];
		if (sqlite3_bind_int64(st, 1, j->job_id) ||
		    bind_text(st, 2, job_state_names[j->state]) ||
		    sqlite3_bind_int(st, 3, j->attempts) ||
		    sqlite3_bind_int64(st, 4, j->next_run_at) || bind_text(st, 5, j->error) ||
		    sqlite3_bind_int64(st, 6, op->now_ms) ||
		    sqlite3_bind_int64(st, 7, j->attempt_at) ||
		    sqlite3_bind_int64(st, 8, j->attempt_ms) ||
		    sqlite3_bind_text(
		        st, 9, j->error,
		        (int)util_utf8_cut(j->error, strlen(j->error), JOB_HISTORY_ERROR_MAX),
		        SQLITE_STATIC) ||
		    sqlite3_bind_int(st, 10, JOB_HISTORY_MAX))
			return SQLITE_ERROR;
	} else {
		st = ds->st[ST_DELETE_JOB];
		if (sqlite3_bind_int64(st, 1, j->job_id))
			return SQLITE_ERROR;
	}
	rc = step_reset(st);
	if (rc != SQLITE_DONE)
		return rc;
	if (sqlite3_changes(ds->db) == 0)
		op->rc = -ESRCH; /* no such job row */
	else if (j->state == JOB_GONE) {
		/* A discarded job's id is never handed out again either. */
		st = ds->st[ST_PRUNE_FLOOR];
		if (sqlite3_bind_int64(st, 1, j->job_id))
			return SQLITE_ERROR;
		rc = step_reset(st);
		if (rc != SQLITE_DONE)
			return rc;
	}
	if (j->done || j->failed)
		count_queue(ds, job_queue_names[j->queue], j->done, j->failed);
	return SQLITE_OK;
}

static int apply_queue(struct db_store *ds, struct db_op *op)
{
	int retry = op->kind == DB_OP_QUEUE_RETRY_DEAD;
	sqlite3_stmt *st = ds->st[retry ? ST_RETRY_DEAD : ST_QUEUE_PAUSE];
	int rc;

	if (bind_text(st, 1, job_queue_names[op->u.queue.queue]) ||
	    sqlite3_bind_int64(st, 2, retry ? op->now_ms : op->u.queue.paused))
		return SQLITE_ERROR;
	rc = step_reset(st);
	if (rc != SQLITE_DONE)
		return rc;
	op->u.queue.changed = sqlite3_changes(ds->db);
	if (!retry && op->u.queue.changed == 0)
		op->rc = -ENOENT;
	return SQLITE_OK;
}

static int apply_refund(struct db_store *ds, struct db_op *op)
{
	sqlite3_stmt *st = ds->st[ST_DON_REFUND_ASK];
	int rc;

	if (sqlite3_bind_int64(st, 1, op->u.refund.donation_id) ||
	    sqlite3_bind_int64(st, 2, op->now_ms) || bind_text(st, 3, op->u.refund.reason))
		return SQLITE_ERROR;
	rc = step_reset(st);
	if (rc != SQLITE_DONE)
		return rc;
	if (sqlite3_changes(ds->db) == 0) {
		op->rc = -EALREADY; /* not succeeded, or a refund was asked before */
		return SQLITE_OK;
	}
	rc = insert_job(ds, &op->u.refund.job, op->u.refund.donation_id, op->now_ms);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int apply_audit_row(struct db_store *ds, struct db_op *op)
{
	sqlite3_stmt *st = ds->st[ST_AUDIT];
	const struct db_audit *a = &op->audit;
	int rc;

	if (sqlite3_bind_int64(st, 1, op->now_ms) || bind_text(st, 2, a->actor) ||
	    bind_text(st, 3, a->action) || bind_text(st, 4, a->target) ||
	    bind_text(st, 5, a->detail))
		return SQLITE_ERROR;
	rc = step_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int bind_opt_time(sqlite3_stmt *st, int i, int64_t ms)
{
	return ms ? sqlite3_bind_int64(st, i, ms) : sqlite3_bind_null(st, i);
}

static int apply_campaign(struct db_store *ds, struct db_op *op)
{
	const struct campaign_spec *c = &op->u.campaign;
	sqlite3_stmt *st;
	int rc;

	if (op->kind == DB_OP_CAMPAIGN_CREATE) {
		st = ds->st[ST_INSERT_CAMPAIGN];
		if (bind_text(st, 1, c->slug) || bind_text(st, 2, c->name) ||
		    bind_text(st, 3, c->currency) || sqlite3_bind_int64(st, 4, c->goal_cents) ||
		    bind_opt_time(st, 5, c->starts_at) || bind_opt_time(st, 6, c->ends_at) ||
		    sqlite3_bind_int64(st, 7, op->now_ms) || bind_text(st, 8, c->category))
			return SQLITE_ERROR;
	} else {
		st = ds->st[ST_UPDATE_CAMPAIGN];
		if (sqlite3_bind_int64(st, 1, op->campaign_id) ||
		    (c->has_name && bind_text(st, 2, c->name)) ||
		    (c->has_goal && sqlite3_bind_int64(st, 3, c->goal_cents)) ||
		    sqlite3_bind_int(st, 4, c->has_starts) ||
		    sqlite3_bind_int64(st, 5, c->starts_at) ||
		    sqlite3_bind_int(st, 6, c->has_ends) || sqlite3_bind_int64(st, 7, c->ends_at) ||
		    sqlite3_bind_int(st, 8, c->has_category) || bind_text(st, 9, c->category))
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
		op->campaign_id = sqlite3_last_insert_rowid(ds->db);
	else if (sqlite3_changes(ds->db) == 0)
		op->rc = -ENOENT;
	return SQLITE_OK;
}

static int apply_status(struct db_store *ds, struct db_op *op)
{
	int touch = op->kind == DB_OP_CAMPAIGN_TOUCH;
	sqlite3_stmt *st = ds->st[touch ? ST_TOUCH : ST_SET_STATUS];
	int rc;

	if (!touch && (unsigned)op->u.status >= CAMPAIGN_STATUSES) {
		op->rc = -EINVAL;
		return SQLITE_OK;
	}
	if (sqlite3_bind_int64(st, 1, op->campaign_id) ||
	    (!touch && bind_text(st, 2, campaign_status_names[op->u.status])))
		return SQLITE_ERROR;
	rc = step_reset(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		op->rc = -EINVAL;
		return SQLITE_OK;
	}
	if (rc != SQLITE_DONE)
		return rc;
	if (sqlite3_changes(ds->db) == 0)
		op->rc = -ENOENT;
	return SQLITE_OK;
}

static int flush_bumps(struct db_store *ds)
{
	sqlite3_stmt *st = ds->st[ST_BUMP_CAMPAIGN];

	for (size_t i = 0; i < ds->bump_cap; i++) {
		struct bump *b = &ds->bumps[i];
		struct recent *r;
		char ids[RECENT_IDS * 21 + 1];
		size_t len = 0;
		int rc;

		if (!b->campaign_id)
			continue;
		r = recent_get(ds, b->campaign_id);
		if (!r)
			return SQLITE_NOMEM;
		for (int k = 0; k < r->n; k++)
			len += (size_t)snprintf(ids + len, sizeof(ids) - len, "%s%lld",
			                        k ? "," : "", (long long)r->ids[k]);
		ids[len] = '\0';
		if (sqlite3_bind_int64(st, 1, b->campaign_id) ||
		    sqlite3_bind_int64(st, 2, b->raised) || sqlite3_bind_int64(st, 3, b->donors) ||
		    sqlite3_bind_int64(st, 4, b->donations) ||
		    sqlite3_bind_text(st, 5, ids, (int)len, SQLITE_TRANSIENT) ||
		    sqlite3_bind_int64(st, 6, b->pending) || sqlite3_bind_int64(st, 7, b->matched))
			return SQLITE_ERROR;
		rc = step_reset(st);
		if (rc != SQLITE_DONE)
			return rc;
		memset(b, 0, sizeof(*b));
	}
	return SQLITE_OK;
}

/* Delete done jobs older than the retention, walking up from a cursor so a
 * tick never rescans what it already kept: a done job too young to go
 * stops the walk (later ids finished later, roughly); jobs that are not
 * done are stepped over (they are pruned after a restart once done). */
void db_store_prune(struct db_store *ds, int64_t keep)
{
	sqlite3_stmt *scan = ds->st[ST_PRUNE_SCAN], *del = ds->st[ST_DELETE_JOB];
	int64_t ids[2000], deleted = 0;
	int rc = SQLITE_OK, stop = 0;

	if (!keep)
		return;
	if (step_reset(ds->st[ST_BEGIN]) != SQLITE_DONE)
		goto fail;
	for (int round = 0; round < 25 && !stop; round++) {
		int n = 0, rows = 0;

		if (sqlite3_bind_int64(scan, 1, ds->prune_cursor) ||
		    sqlite3_bind_int64(scan, 2, util_now_ms() - keep))
			goto fail;
		while ((rc = sqlite3_step(scan)) == SQLITE_ROW) {
			int64_t id = sqlite3_column_int64(scan, 0);
			int done = sqlite3_column_int(scan, 1), old = sqlite3_column_int(scan, 2);

			rows++;
			if (done && !old) {
				stop = 1;
				break;
			}
			if (done)
				ids[n++] = id;
			ds->prune_cursor = id;
		}
		sqlite3_reset(scan);
		sqlite3_clear_bindings(scan);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			goto fail;
		for (int i = 0; i < n; i++) {
			if (sqlite3_bind_int64(del, 1, ids[i]) || step_reset(del) != SQLITE_DONE)
				goto fail;
		}
		deleted += n;
		if (n && (sqlite3_bind_int64(ds->st[ST_PRUNE_FLOOR], 1, ids[n - 1]) ||
		          step_reset(ds->st[ST_PRUNE_FLOOR]) != SQLITE_DONE))
			goto fail;
		if (rows < 2000)
			stop = 1;
	}
	if (step_reset(ds->st[ST_COMMIT]) != SQLITE_DONE)
		goto fail;
	if (deleted)
		log_msg(LOG_DEBUG, "jobs.pruned", "%lld done jobs deleted", (long long)deleted);
	return;
fail:
	log_msg(LOG_WARN, "jobs.prune_failed", "%s", sqlite3_errmsg(ds->db));
	if (!sqlite3_get_autocommit(ds->db) && step_reset(ds->st[ST_ROLLBACK]) != SQLITE_DONE)
		log_msg(LOG_ERROR, "db.rollback_failed", "%s", sqlite3_errmsg(ds->db));
	ds->prune_cursor = 0;
}

static int add_token(struct db_store *ds, struct db_op *op)
{
	sqlite3_stmt *st = ds->st[ST_TOKEN_INSERT];
	int rc;

	if ((unsigned)op->u.token.role >= STAFF_ROLES || op->u.token.role == STAFF_PUBLIC) {
		op->rc = -EINVAL;
		return SQLITE_OK;
	}
	if (bind_text(st, 1, op->u.token.name) ||
	    bind_text(st, 2, staff_role_names[op->u.token.role]) ||
	    bind_text(st, 3, op->u.token.hash) || sqlite3_bind_int64(st, 4, op->now_ms))
		return SQLITE_ERROR;
	rc = step_reset(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		op->rc = -EEXIST; /* the name is taken */
		return SQLITE_OK;
	}
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int revoke_token(struct db_store *ds, struct db_op *op)
{
	sqlite3_stmt *st = ds->st[ST_TOKEN_REVOKE], *get = ds->st[ST_TOKEN_GET];
	char role[16] = "";
	int rc, r;

	if (bind_text(st, 1, op->u.token.name) || sqlite3_bind_int64(st, 2, op->now_ms))
		return SQLITE_ERROR;
	rc = step_reset(st);
	if (rc != SQLITE_DONE)
		return rc;
	op->u.token.changed = sqlite3_changes(ds->db) > 0;
	if (bind_text(get, 1, op->u.token.name))
		return SQLITE_ERROR;
	rc = sqlite3_step(get);
	if (rc == SQLITE_ROW) {
		const unsigned char *name = sqlite3_column_text(get, 0);
		const unsigned char *rn = sqlite3_column_text(get, 1);

		snprintf(op->u.token.name, sizeof(op->u.token.name), "%s",
		         name ? (const char *)name : "");
		snprintf(role, sizeof(role), "%s", rn ? (const char *)rn : "");
		op->u.token.created_at = sqlite3_column_int64(get, 2);
		op->u.token.revoked_at = sqlite3_column_int64(get, 3);
	}
	sqlite3_reset(get);
	sqlite3_clear_bindings(get);
	if (rc == SQLITE_DONE) {
		op->rc = -ENOENT;
		return SQLITE_OK;
	}
	if (rc != SQLITE_ROW)
		return rc;
	r = staff_role_by_name(role);
	op->u.token.role = r < 0 ? STAFF_PUBLIC : (enum staff_role)r;
	if (!op->u.token.changed)
		op->audit.actor[0] = '\0'; /* nothing happened: nothing to audit */
	else
		snprintf(op->audit.target, sizeof(op->audit.target), "%s", op->u.token.name);
	return SQLITE_OK;
}

static int apply_token(struct db_store *ds, struct db_op *op)
{
	return op->kind == DB_OP_TOKEN_ADD ? add_token(ds, op) : revoke_token(ds, op);
}

/* The day's schedule: see DB_OP_DAY. */
static int apply_day(struct db_store *ds, struct db_op *op)
{
	const struct giving_day *d = &op->u.day.day;
	sqlite3_stmt *st;
	int rc;

	op->u.day.changed = 1;
	if (op->u.day.action == DB_DAY_SET) {
		if (d->currency[0]) {
			st = ds->st[ST_DAY_OTHER_CURRENCY];
			if (bind_text(st, 1, d->currency))
				return SQLITE_ERROR;
			rc = step_reset(st);
			if (rc == SQLITE_ROW) {
				op->rc = -EXDEV;
				return SQLITE_OK;
			}
			if (rc != SQLITE_DONE)
				return rc;
		}
		st = ds->st[ST_DAY_SET];
		if (bind_text(st, 1, d->name) || sqlite3_bind_int64(st, 2, d->early_at) ||
		    sqlite3_bind_int64(st, 3, d->opens_at) ||
		    sqlite3_bind_int64(st, 4, d->closes_at) || bind_text(st, 5, d->currency))
			return SQLITE_ERROR;
		rc = step_reset(st);
		if ((rc & 0xff) == SQLITE_CONSTRAINT) {
			op->rc = -EINVAL;
			return SQLITE_OK;
		}
		if (rc != SQLITE_DONE)
			return rc;
	} else if (op->u.day.action == DB_DAY_CLEAR) {
		rc = step_reset(ds->st[ST_DAY_CLEAR]);
		if (rc != SQLITE_DONE)
			return rc;
		if (sqlite3_changes(ds->db) == 0) {
			op->u.day.changed = 0;
			op->audit.actor[0] = '\0'; /* nothing happened: nothing to audit */
			return SQLITE_OK;
		}
	}
	rc = step_reset(ds->st[ST_DAY_SEQ]);
	if (rc == SQLITE_DONE)
		rc = step_reset(ds->st[ST_TOUCH_ALL]);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int apply_nothing(struct db_store *ds, struct db_op *op)
{
	(void)ds;
	(void)op;
	return SQLITE_OK;
}

static int apply_pool(struct db_store *ds, struct db_op *op)
{
	return db_pool_apply(&ds->pools, ds->db, op);
}

static int apply_challenge(struct db_store *ds, struct db_op *op)
{
	return db_challenge_apply(&ds->challenges, ds->db, op);
}

/* How each kind of op is recorded. */
static int (*const op_table[DB_OP_KINDS])(struct db_store *ds, struct db_op *op) = {
    [DB_OP_DONATION] = apply_donation,
    [DB_OP_CAMPAIGN_CREATE] = apply_campaign,
    [DB_OP_CAMPAIGN_UPDATE] = apply_campaign,
    [DB_OP_CAMPAIGN_STATUS] = apply_status,
    [DB_OP_CAMPAIGN_TOUCH] = apply_status,
    [DB_OP_JOB_UPDATE] = apply_job,
    [DB_OP_QUEUE_PAUSE] = apply_queue,
    [DB_OP_QUEUE_RETRY_DEAD] = apply_queue,
    [DB_OP_REFUND] = apply_refund,
    [DB_OP_SYNC] = apply_nothing,
    [DB_OP_TOKEN_ADD] = apply_token,
    [DB_OP_TOKEN_REVOKE] = apply_token,
    [DB_OP_POOL_CREATE] = apply_pool,
    [DB_OP_POOL_UPDATE] = apply_pool,
    [DB_OP_CHALLENGE_CREATE] = apply_challenge,
    [DB_OP_AWARD] = apply_challenge,
    [DB_OP_OFFLINE] = apply_donation,
    [DB_OP_DAY] = apply_day,
};

int db_store_apply(struct db_store *ds, struct db_op *op)
{
	int rc;

	op->rc = 0;
	if (op->kind <= 0 || op->kind >= DB_OP_KINDS || !op_table[op->kind]) {
		op->rc = -EINVAL;
		return SQLITE_OK;
	}
	rc = op_table[op->kind](ds, op);
	/* A replayed offline gift was audited when it was recorded. */
	if (op->kind == DB_OP_OFFLINE && op->u.donation.replay)
		return rc;
	if (rc == SQLITE_OK && op->audit.actor[0] && !op->rc)
		rc = apply_audit_row(ds, op);
	return rc;
}

int db_store_flush(struct db_store *ds, int64_t now)
{
	int rc = flush_later(ds, now);

	if (rc == SQLITE_OK)
		rc = flush_done(ds, now);
	if (rc == SQLITE_OK)
		rc = flush_counts(ds);
	if (rc == SQLITE_OK)
		rc = flush_bumps(ds);
	return rc;
}

int db_store_begin(struct db_store *ds)
{
	int rc = step_reset(ds->st[ST_BEGIN]);

	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int db_store_commit(struct db_store *ds)
{
	int rc = step_reset(ds->st[ST_COMMIT]);

	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

void db_store_rollback(struct db_store *ds)
{
	if (!sqlite3_get_autocommit(ds->db) && step_reset(ds->st[ST_ROLLBACK]) != SQLITE_DONE)
		log_msg(LOG_ERROR, "db.rollback_failed", "%s", sqlite3_errmsg(ds->db));
	memset(ds->bumps, 0, ds->bump_cap * sizeof(*ds->bumps));
	memset(ds->counts, 0, sizeof(ds->counts));
	ds->n_later = 0;
	ds->n_done = 0;
	recent_forget(ds);
}

int db_store_data_version(struct db_store *ds, int64_t *out)
{
	sqlite3_stmt *st = ds->st[ST_DATA_VERSION];
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? SQLITE_OK : rc;
}

const char *db_store_errmsg(struct db_store *ds)
{
	return sqlite3_errmsg(ds->db);
}

/* A statement with n rows of `row`, numbered from first: the multi-row
 * INSERT of new jobs and the multi-id UPDATE of done jobs. */
static int prepare_many(sqlite3 *db, const char *head, int rows, int cols, const char *fmt,
                        const char *close, sqlite3_stmt **out)
{
	char sql[4096];
	size_t len = (size_t)snprintf(sql, sizeof(sql), "%s", head);

	for (int k = 0; k < rows; k++) {
		int b = k * cols;

		len += (size_t)snprintf(sql + len, sizeof(sql) - len, "%s", k ? ", " : "");
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, fmt, b + 2, b + 3, b + 4,
		                        b + 5, b + 6);
	}
	snprintf(sql + len, sizeof(sql) - len, "%s", close);
	return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
}

int db_store_new(sqlite3 *db, size_t max_batch, struct db_store **out)
{
	struct db_store *ds = calloc(1, sizeof(*ds));
	int rc;

	*out = NULL;
	if (!ds)
		return -ENOMEM;
	ds->db = db;
	ds->bump_cap = 16;
	while (ds->bump_cap < 2 * max_batch)
		ds->bump_cap <<= 1;
	ds->bumps = calloc(ds->bump_cap, sizeof(*ds->bumps));
	if (!ds->bumps) {
		rc = -ENOMEM;
		goto fail;
	}
	for (int i = 0; i < ST_COUNT; i++) {
		rc = sqlite3_prepare_v3(db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &ds->st[i],
		                        NULL);
		if (rc != SQLITE_OK) {
			log_msg(LOG_ERROR, "db.prepare_failed", "%s: %s", stmt_sql[i],
			        sqlite3_errmsg(db));
			rc = db_errno(rc);
			goto fail;
		}
	}
	/* ?1 = now in both. */
	rc = prepare_many(db,
	                  "INSERT INTO jobs (id, queue, kind, donation_id, url, state, attempts,"
	                  " next_run_at, created_at, updated_at) VALUES ",
	                  INSERT_ROWS, 5, "(?%d, ?%d, ?%d, ?%d, ?%d, 'ready', 0, ?1, ?1, ?1)", "",
	                  &ds->insert_many);
	if (rc == SQLITE_OK)
		rc = prepare_many(db,
		                  "UPDATE jobs SET state = 'done', attempts = attempts + 1,"
		                  " updated_at = ?1 WHERE id IN (",
		                  INSERT_ROWS, 1, "?%d", ")", &ds->done_many);
	if (rc == SQLITE_OK)
		rc = db_pool_stmts_init(db, &ds->pools);
	if (rc == SQLITE_OK)
		rc = db_challenge_stmts_init(db, &ds->challenges);
	if (rc != SQLITE_OK) {
		log_msg(LOG_ERROR, "db.prepare_failed", "%s", sqlite3_errmsg(db));
		rc = db_errno(rc);
		goto fail;
	}
	*out = ds;
	return 0;
fail:
	db_store_free(ds);
	return rc;
}

void db_store_free(struct db_store *ds)
{
	if (!ds)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(ds->st[i]);
	sqlite3_finalize(ds->insert_many);
	sqlite3_finalize(ds->done_many);
	db_pool_stmts_fini(&ds->pools);
	db_challenge_stmts_fini(&ds->challenges);
	free(ds->later);
	free(ds->done_ids);
	free(ds->bumps);
	free(ds->recent);
	free(ds);
}
