/* db/challenges.c - the challenges' SQL: storing a challenge and its
 * awards (on the writer's transaction, through db/store.c), and reading
 * them back at start with each campaign's progress, recomputed from the
 * donations by the challenge's own rules. */
#include "db/challenges.h"
#include "db/db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHALLENGE_COLUMNS                                                                          \
	"slug, name, sponsor, currency, kind, threshold, bonus_cents, winners, campaigns,"         \
	" min_gift_cents, online_only, starts_at, ends_at, created_at"

static const char *const sql[] = {
    ("INSERT INTO challenges (" CHALLENGE_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
     " ?10, ?11, ?12, ?13, ?14)"),
    ("INSERT INTO challenge_awards (challenge_id, campaign_id, bonus_cents, donation_id, at)"
     " VALUES (?1, ?2, ?3, ?4, ?5)"),
    /* The award shows on the campaign: its bonus, and a change (seq). */
    "UPDATE campaigns SET bonus_cents = bonus_cents + ?2, seq = seq + 1 WHERE id = ?1",
    "UPDATE campaigns SET seq = seq + 1 WHERE currency = ?1",
};

int db_challenge_stmts_init(sqlite3 *db, struct db_challenge_stmts *s)
{
	sqlite3_stmt **v[] = {&s->insert, &s->award, &s->bonus, &s->touch};
	int rc = SQLITE_OK;

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]) && rc == SQLITE_OK; i++)
		rc = sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, v[i], NULL);
	return rc;
}

void db_challenge_stmts_fini(struct db_challenge_stmts *s)
{
	sqlite3_finalize(s->insert);
	sqlite3_finalize(s->award);
	sqlite3_finalize(s->bonus);
	sqlite3_finalize(s->touch);
	s->insert = s->award = s->bonus = s->touch = NULL;
}

/* Step st once and reset it: SQLITE_DONE or an error code. */
static int step_once(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

static int insert_challenge(struct db_challenge_stmts *s, sqlite3 *db, struct db_op *op)
{
	struct challenge_row *c = &op->u.challenge;
	sqlite3_stmt *st = s->insert;
	char ids[TALLY_CHALLENGE_CAMPAIGNS_MAX * 21];
	size_t len = db_ids_text(c->campaigns, c->n_campaigns, ids, sizeof(ids));
	int rc;
	if (sqlite3_bind_text(st, 1, c->slug, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 2, c->name, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 3, c->sponsor, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 4, c->currency, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 5, challenge_kind_names[c->kind], -1, SQLITE_STATIC) ||
	    sqlite3_bind_int64(st, 6, c->threshold) || sqlite3_bind_int64(st, 7, c->bonus_cents) ||
	    sqlite3_bind_int(st, 8, c->winners) ||
	    sqlite3_bind_text(st, 9, ids, (int)len, SQLITE_TRANSIENT) ||
	    sqlite3_bind_int64(st, 10, c->min_gift_cents) ||
	    sqlite3_bind_int(st, 11, c->online_only) || sqlite3_bind_int64(st, 12, c->starts_at) ||
	    sqlite3_bind_int64(st, 13, c->ends_at) || sqlite3_bind_int64(st, 14, c->created_at)) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return SQLITE_ERROR;
	}
	rc = step_once(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		op->rc = -EEXIST;
		return SQLITE_OK;
	}
	if (rc != SQLITE_DONE)
		return rc;
	c->id = sqlite3_last_insert_rowid(db);
	/* Every campaign of its currency may show it. */
	st = s->touch;
	if (sqlite3_bind_text(st, 1, c->currency, -1, SQLITE_STATIC)) {
		sqlite3_reset(st);
		return SQLITE_ERROR;
	}
	rc = step_once(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int insert_award(struct db_challenge_stmts *s, struct db_op *op)
{
	sqlite3_stmt *st = s->award;
	int rc;

	if (sqlite3_bind_int64(st, 1, op->u.award.challenge_id) ||
	    sqlite3_bind_int64(st, 2, op->u.award.campaign_id) ||
	    sqlite3_bind_int64(st, 3, op->u.award.bonus_cents) ||
	    sqlite3_bind_int64(st, 4, op->u.award.donation_id) ||
	    sqlite3_bind_int64(st, 5, op->now_ms)) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return SQLITE_ERROR;
	}
	rc = step_once(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		op->rc = -EEXIST;
		return SQLITE_OK;
	}
	if (rc != SQLITE_DONE)
		return rc;
	st = s->bonus;
	if (sqlite3_bind_int64(st, 1, op->u.award.campaign_id) ||
	    sqlite3_bind_int64(st, 2, op->u.award.bonus_cents)) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return SQLITE_ERROR;
	}
	rc = step_once(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int db_challenge_apply(struct db_challenge_stmts *s, sqlite3 *db, struct db_op *op)
{
	return op->kind == DB_OP_AWARD ? insert_award(s, op) : insert_challenge(s, db, op);
}

int db_load_challenges(sqlite3 *db, int (*cb)(void *ud, const struct challenge_row *row), void *ud)
{
	static const char q[] = "SELECT id, " CHALLENGE_COLUMNS " FROM challenges ORDER BY id";
	sqlite3_stmt *st;
	int rc, stop = 0;

	rc = sqlite3_prepare_v2(db, q, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_errno(rc);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct challenge_row c;
		char kind[16], ids[TALLY_CHALLENGE_CAMPAIGNS_MAX * 21];
		int k;

		memset(&c, 0, sizeof(c));
		c.id = sqlite3_column_int64(st, 0);
		db_copy_text(c.slug, sizeof(c.slug), st, 1);
		db_copy_text(c.name, sizeof(c.name), st, 2);
		db_copy_text(c.sponsor, sizeof(c.sponsor), st, 3);
		db_copy_text(c.currency, sizeof(c.currency), st, 4);
		db_copy_text(kind, sizeof(kind), st, 5);
		k = challenge_kind_by_name(kind);
		c.kind = k < 0 ? CHALLENGE_AMOUNT : (enum challenge_kind)k;
		c.threshold = sqlite3_column_int64(st, 6);
		c.bonus_cents = sqlite3_column_int64(st, 7);
		c.winners = sqlite3_column_int(st, 8);
		db_copy_text(ids, sizeof(ids), st, 9);
		c.n_campaigns = db_ids_parse(ids, c.campaigns, TALLY_CHALLENGE_CAMPAIGNS_MAX);
		c.min_gift_cents = sqlite3_column_int64(st, 10);
		c.online_only = sqlite3_column_int(st, 11);
		c.starts_at = sqlite3_column_int64(st, 12);
		c.ends_at = sqlite3_column_int64(st, 13);
		c.created_at = sqlite3_column_int64(st, 14);
		stop = cb(ud, &c);
		if (stop)
			break;
	}
	sqlite3_finalize(st);
	if (stop)
		return stop;
	return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

int db_load_awards(sqlite3 *db, int (*cb)(void *ud, const struct db_award_row *row), void *ud)
{
	static const char q[] = "SELECT challenge_id, campaign_id, bonus_cents, donation_id, at"
	                        " FROM challenge_awards ORDER BY at, challenge_id, campaign_id";
	sqlite3_stmt *st;
	int rc, stop = 0;

	rc = sqlite3_prepare_v2(db, q, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_errno(rc);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct db_award_row a = {sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
		                         sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3),
		                         sqlite3_column_int64(st, 4)};

		stop = cb(ud, &a);
		if (stop)
			break;
	}
	sqlite3_finalize(st);
	if (stop)
		return stop;
	return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

/* The gifts a challenge counts, as a WHERE clause on donations d with ?1
 * starts_at, ?2 ends_at, ?3 min_gift_cents, ?4 currency, ?5 online_only. */
#define COUNTED                                                                                    \
	" d.status IN ('succeeded', 'refunded') AND d.created_at >= ?1 AND d.created_at < ?2"      \
	" AND d.amount_cents >= ?3 AND d.currency = ?4 AND (?5 = 0 OR d.source = 'online')"

static int bind_rules(sqlite3_stmt *st, const struct challenge_row *c)
{
	return sqlite3_bind_int64(st, 1, c->starts_at) || sqlite3_bind_int64(st, 2, c->ends_at) ||
	       sqlite3_bind_int64(st, 3, c->min_gift_cents) ||
	       sqlite3_bind_text(st, 4, c->currency, -1, SQLITE_STATIC) ||
	       sqlite3_bind_int(st, 5, c->online_only);
}

int db_challenge_progress(sqlite3 *db, const struct challenge_row *c,
                          int (*cb)(void *ud, const struct db_progress_row *row), void *ud)
{
	static const char q[] =
	    "SELECT d.campaign_id, sum(d.amount_cents), count(*),"
	    " count(DISTINCT nullif(lower(d.donor_email), '')) FROM donations d WHERE" COUNTED
	    " GROUP BY d.campaign_id";
	sqlite3_stmt *st;
	int rc, stop = 0;

	rc = sqlite3_prepare_v2(db, q, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_errno(rc);
	if (bind_rules(st, c)) {
		sqlite3_finalize(st);
		return -EIO;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct db_progress_row p = {
		    sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
		    sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3)};

		stop = cb(ud, &p);
		if (stop)
			break;
	}
	sqlite3_finalize(st);
	if (stop)
		return stop;
	return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

int db_challenge_last_gift(sqlite3 *db, const struct challenge_row *c, int64_t campaign_id,
                           int64_t *out)
{
	static const char q[] = "SELECT coalesce(max(d.id), 0) FROM donations d WHERE" COUNTED
	                        " AND d.campaign_id = ?6";
	sqlite3_stmt *st;
	int rc;

	*out = 0;
	rc = sqlite3_prepare_v2(db, q, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_errno(rc);
	if (bind_rules(st, c) || sqlite3_bind_int64(st, 6, campaign_id)) {
		sqlite3_finalize(st);
		return -EIO;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : db_errno(rc);
}

int db_challenge_donors(sqlite3 *db, const struct challenge_row *c,
                        int (*cb)(void *ud, int64_t campaign_id, const char *email), void *ud)
{
	static const char q[] =
	    "SELECT DISTINCT d.campaign_id, lower(d.donor_email) FROM donations d"
	    " WHERE" COUNTED " AND d.donor_email <> ''";
	sqlite3_stmt *st;
	int rc, stop = 0;

	rc = sqlite3_prepare_v2(db, q, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_errno(rc);
	if (bind_rules(st, c)) {
		sqlite3_finalize(st);
		return -EIO;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *email = sqlite3_column_text(st, 1);

		stop = cb(ud, sqlite3_column_int64(st, 0), email ? (const char *)email : "");
		if (stop)
			break;
	}
	sqlite3_finalize(st);
	if (stop)
		return stop;
	return rc == SQLITE_DONE ? 0 : db_errno(rc);
}
