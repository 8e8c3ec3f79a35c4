/* db/pools.c - the match pools' SQL: storing a pool (on the writer's
 * transaction, through db/store.c) and reading the pools and the sums of
 * their gifts back at start.
 *
 * A pool's reserved and used money is never stored as a number of its
 * own: it is the SUM of the matched_cents its gifts reserved (pending:
 * reserved; succeeded, or refunded after the pool closed: used), so the
 * pools, the campaigns and an export always agree with the donations.
 */
#include "db/pools.h"
#include "db/db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_COLUMNS                                                                               \
	"slug, name, sponsor, currency, amount_cents, ratio, per_gift_cap_cents,"                  \
	" per_donor_cap_cents, campaigns, starts_at, ends_at, match_offline, status, created_at"

static const char insert_sql[] = "INSERT INTO match_pools (" POOL_COLUMNS ") VALUES (?1, ?2, ?3,"
                                 " ?4, ?5, ?6, ?7, ?8, ?9, nullif(?10, 0), nullif(?11, 0), ?12,"
                                 " ?13, ?14)";
static const char update_sql[] =
    "UPDATE match_pools SET name = ?2, sponsor = ?3, amount_cents = ?5, ratio = ?6,"
    " per_gift_cap_cents = ?7, per_donor_cap_cents = ?8, campaigns = ?9,"
    " starts_at = nullif(?10, 0), ends_at = nullif(?11, 0), match_offline = ?12, status = ?13"
    " WHERE id = ?15";

/* A pool's change shows on the banner of every campaign it may match. */
static const char touch_sql[] = "UPDATE campaigns SET seq = seq + 1 WHERE currency = ?1";

int db_pool_stmts_init(sqlite3 *db, struct db_pool_stmts *s)
{
	int rc =
	    sqlite3_prepare_v3(db, insert_sql, -1, SQLITE_PREPARE_PERSISTENT, &s->insert, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v3(db, update_sql, -1, SQLITE_PREPARE_PERSISTENT, &s->update,
		                        NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v3(db, touch_sql, -1, SQLITE_PREPARE_PERSISTENT, &s->touch,
		                        NULL);
	return rc;
}

void db_pool_stmts_fini(struct db_pool_stmts *s)
{
	sqlite3_finalize(s->insert);
	sqlite3_finalize(s->update);
	sqlite3_finalize(s->touch);
	s->insert = s->update = s->touch = NULL;
}

static int bind_row(sqlite3_stmt *st, const struct pool_row *p, const char *ids)
{
	return sqlite3_bind_text(st, 1, p->slug, -1, SQLITE_STATIC) ||
	       sqlite3_bind_text(st, 2, p->name, -1, SQLITE_STATIC) ||
	       sqlite3_bind_text(st, 3, p->sponsor, -1, SQLITE_STATIC) ||
	       sqlite3_bind_text(st, 4, p->currency, -1, SQLITE_STATIC) ||
	       sqlite3_bind_int64(st, 5, p->amount_cents) || sqlite3_bind_int(st, 6, p->ratio) ||
	       sqlite3_bind_int64(st, 7, p->per_gift_cap_cents) ||
	       sqlite3_bind_int64(st, 8, p->per_donor_cap_cents) ||
	       sqlite3_bind_text(st, 9, ids, -1, SQLITE_STATIC) ||
	       sqlite3_bind_int64(st, 10, p->starts_at) || sqlite3_bind_int64(st, 11, p->ends_at) ||
	       sqlite3_bind_int(st, 12, p->match_offline) ||
	       sqlite3_bind_text(st, 13, pool_status_names[p->status], -1, SQLITE_STATIC) ||
	       sqlite3_bind_int64(st, 14, p->created_at);
}

int db_pool_apply(struct db_pool_stmts *s, sqlite3 *db, struct db_op *op)
{
	struct pool_row *p = &op->u.pool;
	int create = op->kind == DB_OP_POOL_CREATE;
	sqlite3_stmt *st = create ? s->insert : s->update;
	char ids[TALLY_POOL_CAMPAIGNS_MAX * 21];
	int rc;

	db_ids_text(p->campaigns, p->n_campaigns, ids, sizeof(ids));
	if (bind_row(st, p, ids) || (!create && sqlite3_bind_int64(st, 15, p->id))) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return SQLITE_ERROR;
	}
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		op->rc = create ? -EEXIST : -EINVAL;
		return SQLITE_OK;
	}
	if (rc != SQLITE_DONE)
		return rc;
	if (create)
		p->id = sqlite3_last_insert_rowid(db);
	else if (sqlite3_changes(db) == 0) {
		op->rc = -ENOENT;
		return SQLITE_OK;
	}
	if (sqlite3_bind_text(s->touch, 1, p->currency, -1, SQLITE_STATIC))
		return SQLITE_ERROR;
	rc = sqlite3_step(s->touch);
	sqlite3_reset(s->touch);
	sqlite3_clear_bindings(s->touch);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int db_load_pools(sqlite3 *db, int (*cb)(void *ud, const struct pool_row *row), void *ud)
{
	static const char sql[] =
	    "SELECT id, " POOL_COLUMNS ","
	    " (SELECT coalesce(sum(matched_cents), 0) FROM donations d WHERE d.pool_id = p.id"
	    "  AND d.status = 'pending'),"
	    " (SELECT coalesce(sum(matched_cents), 0) FROM donations d WHERE d.pool_id = p.id"
	    "  AND (d.status = 'succeeded' OR (d.status = 'refunded' AND NOT d.match_released)))"
	    " FROM match_pools p ORDER BY id";
	sqlite3_stmt *st;
	int rc, stop = 0;

	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_errno(rc);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct pool_row p;
		char status[16], ids[TALLY_POOL_CAMPAIGNS_MAX * 21];
		int known;

		memset(&p, 0, sizeof(p));
		p.id = sqlite3_column_int64(st, 0);
		db_copy_text(p.slug, sizeof(p.slug), st, 1);
		db_copy_text(p.name, sizeof(p.name), st, 2);
		db_copy_text(p.sponsor, sizeof(p.sponsor), st, 3);
		db_copy_text(p.currency, sizeof(p.currency), st, 4);
		p.amount_cents = sqlite3_column_int64(st, 5);
		p.ratio = sqlite3_column_int(st, 6);
		p.per_gift_cap_cents = sqlite3_column_int64(st, 7);
		p.per_donor_cap_cents = sqlite3_column_int64(st, 8);
		db_copy_text(ids, sizeof(ids), st, 9);
		p.n_campaigns = db_ids_parse(ids, p.campaigns, TALLY_POOL_CAMPAIGNS_MAX);
		p.starts_at = sqlite3_column_int64(st, 10);
		p.ends_at = sqlite3_column_int64(st, 11);
		p.match_offline = sqlite3_column_int(st, 12);
		db_copy_text(status, sizeof(status), st, 13);
		known = pool_status_by_name(status);
		p.status = known < 0 ? POOL_PAUSED : (enum pool_status)known;
		p.created_at = sqlite3_column_int64(st, 14);
		p.reserved_cents = sqlite3_column_int64(st, 15);
		p.used_cents = sqlite3_column_int64(st, 16);
		stop = cb(ud, &p);
		if (stop)
			break;
	}
	sqlite3_finalize(st);
	if (stop)
		return stop;
	return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

int db_load_pool_donors(sqlite3 *db,
                        int (*cb)(void *ud, int64_t pool_id, const char *email, int64_t matched),
                        void *ud)
{
	static const char sql[] =
	    "SELECT pool_id, lower(donor_email), sum(matched_cents) FROM donations"
	    " WHERE pool_id IS NOT NULL AND matched_cents > 0 AND donor_email <> ''"
	    " AND (status IN ('pending', 'succeeded') OR (status = 'refunded' AND NOT "
	    "match_released))"
	    " GROUP BY pool_id, lower(donor_email)";
	sqlite3_stmt *st;
	int rc, stop = 0;

	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_errno(rc);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *email = sqlite3_column_text(st, 1);

		stop = cb(ud, sqlite3_column_int64(st, 0), email ? (const char *)email : "",
		          sqlite3_column_int64(st, 2));
		if (stop)
			break;
	}
	sqlite3_finalize(st);
	if (stop)
		return stop;
	return rc == SQLITE_DONE ? 0 : db_errno(rc);
}
