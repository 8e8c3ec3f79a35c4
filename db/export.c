/* db/export.c - the donations export's reads.
 *
 * DESIGN: an export walks donations.id upwards with one prepared statement
 * (keyset pagination): each page is the rows of the filter among the ids
 * (cursor, cursor + DB_EXPORT_SPAN], at most DB_EXPORT_PAGE of them. When a
 * page comes back full, the cursor moves to its last id; else past the
 * span. So a page reads at most DB_EXPORT_SPAN rows by primary key however
 * few the filter takes, and the statement is reset after every page: its
 * read transaction ends there, the caller's thread is never held longer
 * than one page, and a client that reads slowly holds no snapshot that
 * would keep the WAL from being checkpointed. The walk stops at the
 * largest id of the database when the export opened. Each export has its
 * own read-only connection with a small page cache (bounded memory) and a
 * short busy timeout (its thread must not wait long).
 */
#include "db/export.h"
#include "db/db.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

#define EXPORT_BUSY_MS 200
#define EXPORT_CACHE_KIB 512

struct db_export {
	sqlite3 *db;
	sqlite3_stmt *page;
	int64_t cursor; /* every id <= cursor was read */
	int64_t end;    /* the largest id when the export opened */
	int64_t last;   /* the last id of the page being read */
	int in_page;    /* the statement is between its first and last row */
	int rows;       /* rows of the page being read */
	int64_t hi;     /* the page's upper id */
};

/* Bound parameters: 1 lower id (exclusive), 2 upper id, 3 limit, 4
 * campaign id (0: any), 5 status ('': any), 6 source ('': any), 7 from and
 * 8 to (NULL: unbounded). The LEFT JOINs keep donations the outer loop, so
 * its rowid range drives the walk. A gift's match is what its pool gives
 * for it now, as db_donation_matched reads it: the reserved match while
 * pending or succeeded (or refunded after its pool closed), else 0. Its
 * bonus is what the challenges it unlocked awarded
 * (challenge_awards.donation_id). */
static const char page_sql[] =
    "SELECT d.id, d.created_at, coalesce(c.slug, ''), d.status, d.source,"
    " coalesce(d.method, ''), d.currency, d.amount_cents, d.fee_cents,"
    " CASE WHEN d.status IN ('pending', 'succeeded')"
    "  OR (d.status = 'refunded' AND NOT d.match_released) THEN d.matched_cents ELSE 0 END,"
    " (SELECT coalesce(sum(a.bonus_cents), 0) FROM challenge_awards a"
    "  WHERE a.donation_id = d.id),"
    " coalesce(p.slug, ''), d.donor_name, d.donor_email, d.anonymous, d.message,"
    " coalesce(d.note, ''), coalesce(d.received_at, 0), coalesce(d.reason, ''),"
    " coalesce(d.processor_ref, '')"
    " FROM donations d LEFT JOIN campaigns c ON c.id = d.campaign_id"
    " LEFT JOIN match_pools p ON p.id = d.pool_id"
    " WHERE d.id > ?1 AND d.id <= ?2 AND (?4 = 0 OR d.campaign_id = ?4)"
    " AND (?5 = '' OR d.status = ?5) AND (?6 = '' OR d.source = ?6)"
    " AND (?7 IS NULL OR d.created_at >= ?7) AND (?8 IS NULL OR d.created_at < ?8)"
    " ORDER BY d.id LIMIT ?3";

static int bind_filter(sqlite3_stmt *st, const struct export_filter *f)
{
	int rc = sqlite3_bind_int(st, 3, DB_EXPORT_PAGE);

	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 4, f->campaign_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 5, f->status, -1, SQLITE_TRANSIENT);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 6, f->source, -1, SQLITE_TRANSIENT);
	if (rc == SQLITE_OK)
		rc = f->has_from ? sqlite3_bind_int64(st, 7, f->from) : sqlite3_bind_null(st, 7);
	if (rc == SQLITE_OK)
		rc = f->has_to ? sqlite3_bind_int64(st, 8, f->to) : sqlite3_bind_null(st, 8);
	return rc;
}

int db_export_open(const char *path, const struct export_filter *f, struct db_export **out)
{
	struct db_export *x = calloc(1, sizeof(*x));
	sqlite3_stmt *st = NULL;
	char err[256];
	char pragma[64];
	int rc;

	*out = NULL;
	if (!x)
		return -ENOMEM;
	rc = db_open_reader(path, &x->db, err, sizeof(err));
	if (rc)
		goto fail;
	snprintf(pragma, sizeof(pragma), "PRAGMA cache_size = -%d", EXPORT_CACHE_KIB);
	rc = sqlite3_busy_timeout(x->db, EXPORT_BUSY_MS);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(x->db, pragma, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(x->db, "SELECT coalesce(max(id), 0) FROM donations", -1,
		                        &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		x->end = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_finalize(st);
	else
		sqlite3_finalize(st);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v3(x->db, page_sql, -1, SQLITE_PREPARE_PERSISTENT, &x->page,
		                        NULL);
	if (rc == SQLITE_OK)
		rc = bind_filter(x->page, f);
	if (rc != SQLITE_OK) {
		rc = db_errno(rc) ? db_errno(rc) : -EIO;
		goto fail;
	}
	*out = x;
	return 0;
fail:
	db_export_close(x);
	return rc;
}

static const char *text(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	return t ? (const char *)t : "";
}

static void read_row(sqlite3_stmt *st, struct export_row *r)
{
	r->id = sqlite3_column_int64(st, 0);
	r->created_at = sqlite3_column_int64(st, 1);
	r->campaign = text(st, 2);
	r->status = text(st, 3);
	r->source = text(st, 4);
	r->method = text(st, 5);
	r->currency = text(st, 6);
	r->amount_cents = sqlite3_column_int64(st, 7);
	r->fee_cents = sqlite3_column_int64(st, 8);
	r->matched_cents = sqlite3_column_int64(st, 9);
	r->bonus_cents = sqlite3_column_int64(st, 10);
	r->pool = text(st, 11);
	r->donor_name = text(st, 12);
	r->donor_email = text(st, 13);
	r->anonymous = sqlite3_column_int(st, 14) != 0;
	r->message = text(st, 15);
	r->note = text(st, 16);
	r->received_at = sqlite3_column_int64(st, 17);
	r->reason = text(st, 18);
	r->processor_ref = text(st, 19);
}

int db_export_next(struct db_export *x, struct export_row *row, int *got)
{
	int rc;

	*got = 0;
	if (!x->in_page) {
		if (x->cursor >= x->end)
			return 0;
		x->hi = x->end - x->cursor > DB_EXPORT_SPAN ? x->cursor + DB_EXPORT_SPAN : x->end;
		rc = sqlite3_bind_int64(x->page, 1, x->cursor);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_int64(x->page, 2, x->hi);
		if (rc != SQLITE_OK)
			return db_errno(rc) ? db_errno(rc) : -EIO;
		x->in_page = 1;
		x->rows = 0;
	}
	rc = sqlite3_step(x->page);
	if (rc == SQLITE_ROW) {
		read_row(x->page, row);
		x->last = row->id;
		x->rows++;
		*got = 1;
		return 0;
	}
	x->in_page = 0;
	if (rc != SQLITE_DONE) {
		sqlite3_reset(x->page);
		return db_errno(rc) ? db_errno(rc) : -EIO;
	}
	/* A full page may have left rows of the span: go on after its last. */
	x->cursor = x->rows == DB_EXPORT_PAGE ? x->last : x->hi;
	rc = sqlite3_reset(x->page);
	return rc == SQLITE_OK ? 0 : db_errno(rc) ? db_errno(rc) : -EIO;
}

int db_export_finished(const struct db_export *x)
{
	return !x->in_page && x->cursor >= x->end;
}

void db_export_close(struct db_export *x)
{
	if (!x)
		return;
	sqlite3_finalize(x->page);
	sqlite3_close(x->db);
	free(x);
}
