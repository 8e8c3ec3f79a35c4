/* tests/test_db.c - schema, connections, read queries and the group-commit
 * writer thread. */
#include "tests/tests.h"
#include "base/log.h"
#include "db/db.h"
#include "db/writer.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_DONE 256

static char *tmp_dir;
static char db_path[600];

static void setup(void)
{
	log_set_level(LOG_ERROR);
	tmp_dir = tests_tmpdir();
	ck_assert_ptr_nonnull(tmp_dir);
	snprintf(db_path, sizeof(db_path), "%s/tally.db", tmp_dir);
}

static void teardown(void)
{
	tests_rmdir(tmp_dir);
	tmp_dir = NULL;
}

/* ---- plain SQL helpers on a separate connection ---- */

static sqlite3 *open_plain(void)
{
	sqlite3 *db = NULL;

	ck_assert_int_eq(
	    sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
	    SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v;

	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
	              sqlite3_errmsg(db));
	ck_assert_msg(sqlite3_step(st) == SQLITE_ROW, "%s: no row", sql);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* First column of the first row as text into out. */
static void query_text(sqlite3 *db, const char *sql, char *out, size_t cap)
{
	sqlite3_stmt *st;

	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
	              sqlite3_errmsg(db));
	ck_assert_msg(sqlite3_step(st) == SQLITE_ROW, "%s: no row", sql);
	snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

/* ---- schema and connections ---- */

START_TEST(open_creates_schema)
{
	char err[256] = "", mode[16];
	sqlite3 *db = NULL, *plain;

	ck_assert_int_eq(access(db_path, F_OK), -1);
	ck_assert_msg(db_open(db_path, "FULL", &db, err, sizeof(err)) == 0, "%s", err);
	ck_assert_ptr_nonnull(db);
	ck_assert_int_eq(query_int(db, "PRAGMA user_version"), DB_SCHEMA_VERSION);
	query_text(db, "PRAGMA journal_mode", mode, sizeof(mode));
	ck_assert_str_eq(mode, "wal");
	ck_assert_int_eq(query_int(db, "PRAGMA synchronous"), 2); /* FULL */
	ck_assert_int_eq(query_int(db, "PRAGMA foreign_keys"), 1);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
	                               " AND name IN ('campaigns', 'donations', 'donors')"),
	                 3);
	ck_assert_int_eq(query_int(db, "SELECT count(*) FROM campaigns"), 0);

	/* Another connection sees the same schema on disk. */
	plain = open_plain();
	ck_assert_int_eq(query_int(plain, "PRAGMA user_version"), DB_SCHEMA_VERSION);
	query_text(plain, "PRAGMA journal_mode", mode, sizeof(mode));
	ck_assert_str_eq(mode, "wal");
	sqlite3_close(plain);
	ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}
END_TEST

START_TEST(open_normal_sync)
{
	char err[256] = "";
	sqlite3 *db = NULL;

	ck_assert_msg(db_open(db_path, "NORMAL", &db, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(query_int(db, "PRAGMA synchronous"), 1);
	sqlite3_close(db);
}
END_TEST

START_TEST(reopen_is_idempotent)
{
	char err[256] = "";
	sqlite3 *db = NULL;

	ck_assert_msg(db_open(db_path, "FULL", &db, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(sqlite3_exec(db,
	                              "INSERT INTO campaigns (slug, name, currency, created_at)"
	                              " VALUES ('keep', 'Keep me', 'USD', 1)",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(db);
	for (int i = 0; i < 3; i++) {
		db = NULL;
		ck_assert_msg(db_open(db_path, "FULL", &db, err, sizeof(err)) == 0, "%s", err);
		ck_assert_int_eq(query_int(db, "PRAGMA user_version"), DB_SCHEMA_VERSION);
		ck_assert_int_eq(
		    query_int(db, "SELECT count(*) FROM campaigns WHERE slug = 'keep'"), 1);
		sqlite3_close(db);
	}
}
END_TEST

START_TEST(newer_schema_refused)
{
	char err[256] = "", sql[64];
	sqlite3 *db = (sqlite3 *)1, *plain = open_plain();

	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", DB_SCHEMA_VERSION + 1);
	ck_assert_int_eq(sqlite3_exec(plain, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(plain);

	ck_assert_int_eq(db_open(db_path, "FULL", &db, err, sizeof(err)), -EPROTO);
	ck_assert_ptr_null(db);
	ck_assert_str_ne(err, "");
	/* Nothing was changed. */
	plain = open_plain();
	ck_assert_int_eq(query_int(plain, "PRAGMA user_version"), DB_SCHEMA_VERSION + 1);
	ck_assert_int_eq(query_int(plain, "SELECT count(*) FROM sqlite_master"), 0);
	sqlite3_close(plain);
}
END_TEST

START_TEST(open_errors)
{
	char err[256] = "", path[700];
	sqlite3 *db = (sqlite3 *)1;

	snprintf(path, sizeof(path), "%s/no/such/dir/tally.db", tmp_dir);
	ck_assert_int_lt(db_open(path, "FULL", &db, err, sizeof(err)), 0);
	ck_assert_ptr_null(db);
	ck_assert_str_ne(err, "");
	db = (sqlite3 *)1;
	err[0] = '\0';
	ck_assert_int_lt(db_open_reader(db_path, &db, err, sizeof(err)), 0);
	ck_assert_ptr_null(db);
	ck_assert_int_eq(access(db_path, F_OK), -1);
	/* A file that is not a database. */
	{
		FILE *f = fopen(db_path, "w");

		ck_assert_ptr_nonnull(f);
		fputs("this is not an SQLite database, just some text that is long enough to "
		      "fill a header of one hundred bytes..................................",
		      f);
		fclose(f);
		db = (sqlite3 *)1;
		ck_assert_int_lt(db_open(db_path, "FULL", &db, err, sizeof(err)), 0);
		ck_assert_ptr_null(db);
	}
}
END_TEST

static unsigned mode_of(const char *path)
{
	struct stat st;

	ck_assert_msg(stat(path, &st) == 0, "%s: %s", path, strerror(errno));
	return (unsigned)(st.st_mode & 07777);
}

/* The database holds names and emails: it and its -wal and -shm are 0600
 * whatever the umask (SQLite alone makes them 0644 under 022, 0666
 * under 0). */
START_TEST(files_private_whatever_umask)
{
	static const mode_t masks[] = {022, 0, 002};
	mode_t saved = umask(022);

	for (size_t i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
		char err[256] = "", path[700], side[720];
		sqlite3 *db = NULL;

		umask(masks[i]);
		snprintf(path, sizeof(path), "%s/u%03o.db", tmp_dir, (unsigned)masks[i]);
		ck_assert_msg(db_open(path, "FULL", &db, err, sizeof(err)) == 0, "%s", err);
		ck_assert_int_eq(mode_of(path), 0600);
		snprintf(side, sizeof(side), "%s-wal", path);
		ck_assert_int_eq(mode_of(side), 0600);
		snprintf(side, sizeof(side), "%s-shm", path);
		ck_assert_int_eq(mode_of(side), 0600);
		ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
	}
	umask(saved);
}
END_TEST

/* Files an older tally left readable by everyone (the database, and the
 * -wal and -shm of a connection still open) are tightened on open, and
 * the data is intact. A database of another user is left as it is. */
START_TEST(loose_files_tightened)
{
	char err[256] = "", side[720];
	sqlite3 *db = NULL, *plain;
	mode_t saved = umask(022);

	plain = open_plain();
	ck_assert_int_eq(sqlite3_exec(plain,
	                              "PRAGMA journal_mode=WAL; CREATE TABLE old (x);"
	                              " INSERT INTO old VALUES (42);",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	ck_assert_int_eq(mode_of(db_path), 0644); /* what SQLite makes */
	snprintf(side, sizeof(side), "%s-wal", db_path);
	ck_assert_int_eq(mode_of(side), 0644);
	ck_assert_msg(db_open(db_path, "FULL", &db, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(mode_of(db_path), 0600);
	ck_assert_int_eq(mode_of(side), 0600);
	snprintf(side, sizeof(side), "%s-shm", db_path);
	ck_assert_int_eq(mode_of(side), 0600);
	ck_assert_int_eq(query_int(db, "SELECT x FROM old"), 42);
	ck_assert_int_eq(query_int(db, "PRAGMA user_version"), DB_SCHEMA_VERSION);
	ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_close(plain), SQLITE_OK);

	if (geteuid() == 0) { /* only root can give a file away */
		char other[700];
		sqlite3 *o = NULL;

		snprintf(other, sizeof(other), "%s/other.db", tmp_dir);
		ck_assert_int_eq(sqlite3_open(other, &o), SQLITE_OK);
		ck_assert_int_eq(sqlite3_exec(o, "CREATE TABLE t (x)", NULL, NULL, NULL),
		                 SQLITE_OK);
		ck_assert_int_eq(sqlite3_close(o), SQLITE_OK);
		ck_assert_int_eq(chown(other, 65534, 65534), 0);
		ck_assert_int_eq(mode_of(other), 0644);
		o = NULL;
		ck_assert_msg(db_open(other, "FULL", &o, err, sizeof(err)) == 0, "%s", err);
		ck_assert_int_eq(mode_of(other), 0644);
		ck_assert_int_eq(sqlite3_close(o), SQLITE_OK);
	}
	umask(saved);
}
END_TEST

START_TEST(errno_mapping)
{
	ck_assert_int_eq(db_errno(SQLITE_OK), 0);
	ck_assert_int_eq(db_errno(SQLITE_DONE), 0);
	ck_assert_int_eq(db_errno(SQLITE_ROW), 0);
	ck_assert_int_eq(db_errno(SQLITE_CONSTRAINT), -EEXIST);
	ck_assert_int_eq(db_errno(SQLITE_CONSTRAINT_UNIQUE), -EEXIST);
	ck_assert_int_eq(db_errno(SQLITE_BUSY), -EBUSY);
	ck_assert_int_eq(db_errno(SQLITE_NOMEM), -ENOMEM);
	ck_assert_int_eq(db_errno(SQLITE_FULL), -ENOSPC);
	ck_assert_int_eq(db_errno(SQLITE_READONLY), -EACCES);
	ck_assert_int_eq(db_errno(SQLITE_CANTOPEN), -ENOENT);
	ck_assert_int_eq(db_errno(SQLITE_CORRUPT), -EIO);
}
END_TEST

/* ---- the writer ---- */

/* What the batch_done hook saw. The hook takes ownership of the ops and
 * parks them in done[] for the test to inspect; drain() frees them. */
struct collector {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct db_op *done[MAX_DONE];
	int batch_of[MAX_DONE]; /* batch number of done[i] */
	int commit_rc[MAX_DONE];
	size_t n_done;
	int batches;
	int block;   /* the hook waits while set */
	int blocked; /* the hook is waiting */
};

static struct collector col;

static void batch_done(void *ctx, struct db_op *ops, int commit_rc)
{
	struct collector *c = ctx;

	pthread_mutex_lock(&c->lock);
	c->batches++;
	while (ops) {
		struct db_op *next = ops->next;

		ops->next = NULL;
		if (c->n_done < MAX_DONE) {
			c->batch_of[c->n_done] = c->batches;
			c->commit_rc[c->n_done] = commit_rc;
			c->done[c->n_done++] = ops;
		} else {
			free(ops);
		}
		ops = next;
	}
	pthread_cond_broadcast(&c->cond);
	while (c->block) {
		c->blocked = 1;
		pthread_cond_broadcast(&c->cond);
		pthread_cond_wait(&c->cond, &c->lock);
	}
	c->blocked = 0;
	pthread_mutex_unlock(&c->lock);
}

static void collector_init(void)
{
	memset(&col, 0, sizeof(col));
	pthread_mutex_init(&col.lock, NULL);
	pthread_cond_init(&col.cond, NULL);
}

static void collector_fini(void)
{
	for (size_t i = 0; i < col.n_done; i++)
		free(col.done[i]);
	col.n_done = 0;
	pthread_cond_destroy(&col.cond);
	pthread_mutex_destroy(&col.lock);
}

static void deadline_in(struct timespec *ts, int seconds)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += seconds;
}

/* Wait until the hook has seen n ops in all. */
static void wait_done(size_t n)
{
	struct timespec ts;
	int timed_out = 0;

	deadline_in(&ts, 5);
	pthread_mutex_lock(&col.lock);
	while (col.n_done < n && !timed_out)
		timed_out = pthread_cond_timedwait(&col.cond, &col.lock, &ts) != 0;
	pthread_mutex_unlock(&col.lock);
	ck_assert_msg(!timed_out, "only %zu of %zu ops done", col.n_done, n);
}

/* Make the hook hold the writer thread at the end of its next batch. */
static void block_writer(void)
{
	pthread_mutex_lock(&col.lock);
	col.block = 1;
	pthread_mutex_unlock(&col.lock);
}

static void wait_blocked(void)
{
	struct timespec ts;
	int timed_out = 0;

	deadline_in(&ts, 5);
	pthread_mutex_lock(&col.lock);
	while (!col.blocked && !timed_out)
		timed_out = pthread_cond_timedwait(&col.cond, &col.lock, &ts) != 0;
	pthread_mutex_unlock(&col.lock);
	ck_assert_msg(!timed_out, "the writer never reached the hook");
}

static void unblock_writer(void)
{
	pthread_mutex_lock(&col.lock);
	col.block = 0;
	pthread_cond_broadcast(&col.cond);
	pthread_mutex_unlock(&col.lock);
}

static struct db_op *done_op(size_t i)
{
	struct db_op *op;

	pthread_mutex_lock(&col.lock);
	ck_assert_uint_lt(i, col.n_done);
	op = col.done[i];
	pthread_mutex_unlock(&col.lock);
	return op;
}

static struct db_writer *start_writer(size_t max_queue, size_t max_batch)
{
	struct db_writer_hooks hooks = {batch_done, NULL, &col, NULL, NULL, NULL};
	struct db_writer *w = NULL;
	sqlite3 *db = NULL;
	char err[256] = "";

	collector_init();
	ck_assert_msg(db_open(db_path, "NORMAL", &db, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(db_writer_new(db, max_queue, max_batch, &hooks, &w), 0);
	ck_assert_ptr_nonnull(w);
	return w;
}

static struct db_op *campaign_op(const char *slug, const char *currency)
{
	struct db_op *op = calloc(1, sizeof(*op));

	ck_assert_ptr_nonnull(op);
	op->kind = DB_OP_CAMPAIGN_CREATE;
	op->now_ms = 1700000000000;
	snprintf(op->u.campaign.slug, sizeof(op->u.campaign.slug), "%s", slug);
	snprintf(op->u.campaign.name, sizeof(op->u.campaign.name), "Campaign %s", slug);
	snprintf(op->u.campaign.currency, sizeof(op->u.campaign.currency), "%s", currency);
	op->u.campaign.goal_cents = 100000;
	op->u.campaign.has_slug = op->u.campaign.has_name = op->u.campaign.has_currency = 1;
	return op;
}

static struct db_op *donation_op(int64_t campaign_id, int64_t id, int64_t amount, const char *email)
{
	struct db_op *op = calloc(1, sizeof(*op));
	struct donation_req *d;

	ck_assert_ptr_nonnull(op);
	op->kind = DB_OP_DONATION;
	op->campaign_id = campaign_id;
	op->now_ms = 1700000000000 + id;
	op->u.donation.id = id;
	op->u.donation.job_id = id; /* its capture job */
	d = &op->u.donation.req;
	d->amount_cents = amount;
	memcpy(d->currency, "USD", 4);
	snprintf(d->name, sizeof(d->name), "Donor %lld", (long long)id);
	snprintf(d->email, sizeof(d->email), "%s", email);
	snprintf(d->message, sizeof(d->message), "gift %lld", (long long)id);
	memcpy(d->payment_token, "tok_visa", 9);
	return op;
}

/* The capture of donation id succeeded (its job has the same id). */
static struct db_op *capture_op(int64_t id)
{
	struct db_op *op = calloc(1, sizeof(*op));

	ck_assert_ptr_nonnull(op);
	op->kind = DB_OP_JOB_UPDATE;
	op->now_ms = 1700000100000 + id;
	op->u.job.job_id = id;
	op->u.job.queue = JOB_PAYMENTS;
	op->u.job.state = JOB_DONE;
	op->u.job.attempts = 1;
	op->u.job.done = 1;
	op->u.job.effect = EFFECT_SUCCEEDED;
	op->u.job.donation_id = id;
	snprintf(op->u.job.ref, sizeof(op->u.job.ref), "ch_%lld", (long long)id);
	return op;
}

/* Submit the captures of donations first..last and wait for them. */
static void capture_all(struct db_writer *w, int64_t first, int64_t last)
{
	size_t before = col.n_done;

	for (int64_t id = first; id <= last; id++)
		ck_assert_int_eq(db_writer_submit(w, capture_op(id)), 0);
	wait_done(before + (size_t)(last - first + 1));
}

/* Create a campaign through the writer and return its id. */
static int64_t create_campaign(struct db_writer *w, const char *slug)
{
	size_t before = col.n_done;
	struct db_op *op = campaign_op(slug, "USD");

	ck_assert_int_eq(db_writer_submit(w, op), 0);
	wait_done(before + 1);
	ck_assert_ptr_eq(done_op(before), op);
	ck_assert_int_eq(op->rc, 0);
	ck_assert_int_gt(op->campaign_id, 0);
	return op->campaign_id;
}

START_TEST(writer_commits)
{
	struct db_writer *w = start_writer(64, 64);
	struct db_op *d1, *d2, *d3;
	int64_t cid;
	sqlite3 *plain;
	char text[64];

	cid = create_campaign(w, "alpha");
	ck_assert_int_eq(col.commit_rc[0], 0);

	d1 = donation_op(cid, 1, 2500, "ada@example.org");
	ck_assert_int_eq(db_writer_submit(w, d1), 0);
	wait_done(2);
	ck_assert_int_eq(d1->rc, 0);
	/* Pending: counted in pending_cents only, its capture job stored in
	 * the same transaction. */
	plain = open_plain();
	ck_assert_int_eq(query_int(plain, "SELECT pending_cents FROM campaigns"), 2500);
	ck_assert_int_eq(query_int(plain, "SELECT raised_cents FROM campaigns"), 0);
	ck_assert_int_eq(query_int(plain, "SELECT count(*) FROM jobs WHERE id = 1 AND"
	                                  " donation_id = 1 AND queue = 'payments' AND"
	                                  " kind = 'capture' AND state = 'ready'"),
	                 1);
	query_text(plain, "SELECT status FROM donations WHERE id = 1", text, sizeof(text));
	ck_assert_str_eq(text, "pending");
	sqlite3_close(plain);
	capture_all(w, 1, 1);
	ck_assert_int_eq(done_op(2)->rc, 0);
	ck_assert_int_eq(done_op(2)->u.job.applied, 1);
	ck_assert_int_eq(done_op(2)->u.job.new_donor, 1);
	ck_assert_int_eq(done_op(2)->campaign_id, cid);
	ck_assert_str_eq(done_op(2)->u.job.d.name, "Donor 1");

	/* The same donor in other case, then a new donor. */
	d2 = donation_op(cid, 2, 1000, "ADA@Example.ORG");
	d3 = donation_op(cid, 3, 500, "bob@example.org");
	ck_assert_int_eq(db_writer_submit(w, d2), 0);
	ck_assert_int_eq(db_writer_submit(w, d3), 0);
	wait_done(5);
	/* Handed back in submission order. */
	ck_assert_ptr_eq(done_op(3), d2);
	ck_assert_ptr_eq(done_op(4), d3);
	ck_assert_int_eq(d2->rc, 0);
	ck_assert_int_eq(d3->rc, 0);
	capture_all(w, 2, 3);
	ck_assert_int_eq(done_op(5)->u.job.new_donor, 0);
	ck_assert_int_eq(done_op(6)->u.job.new_donor, 1);
	/* A repeated capture changes nothing (at-least-once jobs). */
	capture_all(w, 3, 3);
	ck_assert_int_eq(done_op(7)->rc, 0);
	ck_assert_int_eq(done_op(7)->u.job.applied, 0);

	/* Durable before the hook ran: a separate connection sees it all. */
	plain = open_plain();
	ck_assert_int_eq(query_int(plain, "SELECT count(*) FROM campaigns"), 1);
	ck_assert_int_eq(query_int(plain, "SELECT raised_cents FROM campaigns"), 4000);
	ck_assert_int_eq(query_int(plain, "SELECT donor_count FROM campaigns"), 2);
	ck_assert_int_eq(query_int(plain, "SELECT donation_count FROM campaigns"), 3);
	ck_assert_int_eq(query_int(plain, "SELECT pending_cents FROM campaigns"), 0);
	ck_assert_int_eq(query_int(plain, "SELECT done_total FROM queues WHERE name ="
	                                  " 'payments'"),
	                 4);
	ck_assert_int_eq(query_int(plain, "SELECT goal_cents FROM campaigns"), 100000);
	ck_assert_int_eq(query_int(plain, "SELECT created_at FROM campaigns"), 1700000000000);
	ck_assert_int_ge(query_int(plain, "SELECT seq FROM campaigns"), 2);
	query_text(plain, "SELECT status FROM campaigns", text, sizeof(text));
	ck_assert_str_eq(text, "active");
	ck_assert_int_eq(query_int(plain, "SELECT count(*) FROM donations"), 3);
	ck_assert_int_eq(query_int(plain, "SELECT sum(amount_cents) FROM donations"), 4000);
	ck_assert_int_eq(query_int(plain, "SELECT count(*) FROM donations WHERE id IN (1, 2, 3)"
	                                  " AND status = 'succeeded'"),
	                 3);
	ck_assert_int_eq(query_int(plain, "SELECT count(*) FROM donors"), 2);
	query_text(plain, "SELECT donor_email FROM donations WHERE id = 2", text, sizeof(text));
	ck_assert_str_eq(text, "ADA@Example.ORG");
	query_text(plain, "SELECT message FROM donations WHERE id = 3", text, sizeof(text));
	ck_assert_str_eq(text, "gift 3");
	ck_assert_int_eq(query_int(plain, "SELECT created_at FROM donations WHERE id = 3"),
	                 1700000000003);
	sqlite3_close(plain);

	db_writer_free(w);
	collector_fini();
}
END_TEST

/* Read queries of db.h over what the writer stored. */
struct rows {
	struct db_campaign_row c[8];
	struct db_donation_row d[8];
	int nc, nd;
};

static int campaign_cb(void *ud, const struct db_campaign_row *row)
{
	struct rows *r = ud;

	if (r->nc < 8)
		r->c[r->nc++] = *row;
	return 0;
}

static int donation_cb(void *ud, const struct db_donation_row *row)
{
	struct rows *r = ud;

	if (r->nd < 8)
		r->d[r->nd++] = *row;
	return 0;
}

static int stop_cb(void *ud, const struct db_campaign_row *row)
{
	(void)row;
	++*(int *)ud;
	return 77;
}

START_TEST(read_queries)
{
	struct db_writer *w = start_writer(64, 64);
	struct rows *r = calloc(1, sizeof(*r));
	struct db_donation_row one;
	sqlite3 *rd = NULL;
	char err[256] = "";
	int64_t a, b, max = -1;
	int calls = 0;

	ck_assert_ptr_nonnull(r);
	a = create_campaign(w, "alpha");
	b = create_campaign(w, "beta");
	ck_assert_int_gt(b, a);
	ck_assert_msg(db_open_reader(db_path, &rd, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(db_max_donation_id(rd, &max), 0);
	ck_assert_int_eq(max, 0);

	for (int i = 1; i <= 4; i++) {
		struct db_op *op = donation_op(i == 4 ? b : a, 10 + i, 100 * i, "x@example.org");

		op->u.donation.req.anonymous = i == 2;
		op->u.donation.req.hide_amount = i == 3;
		ck_assert_int_eq(db_writer_submit(w, op), 0);
	}
	wait_done(6);
	capture_all(w, 11, 14);

	ck_assert_int_eq(db_load_campaigns(rd, campaign_cb, r), 0);
	ck_assert_int_eq(r->nc, 2);
	ck_assert_int_eq(r->c[0].c.id, a);
	ck_assert_str_eq(r->c[0].c.slug, "alpha");
	ck_assert_str_eq(r->c[0].c.name, "Campaign alpha");
	ck_assert_str_eq(r->c[0].c.currency, "USD");
	ck_assert_int_eq(r->c[0].c.status, CAMPAIGN_ACTIVE);
	ck_assert_int_eq(r->c[0].c.raised_cents, 600);
	ck_assert_int_eq(r->c[0].c.donor_count, 1);
	ck_assert_int_eq(r->c[0].c.donation_count, 3);
	ck_assert_int_eq(r->c[0].c.starts_at, 0);
	ck_assert_int_eq(r->c[0].c.ends_at, 0);
	ck_assert_int_eq(r->c[1].c.id, b);
	ck_assert_int_eq(r->c[1].c.raised_cents, 400);
	ck_assert_int_eq(r->c[1].c.donor_count, 1);

	/* A non-zero return stops the walk and is returned. */
	ck_assert_int_eq(db_load_campaigns(rd, stop_cb, &calls), 77);
	ck_assert_int_eq(calls, 1);

	/* Each campaign's row names its newest gifts, newest first; the
	 * writer keeps the list as gifts commit. */
	ck_assert_str_eq(r->c[0].recent_ids, "13,12,11");
	ck_assert_str_eq(r->c[1].recent_ids, "14");
	ck_assert_int_eq(db_load_donations(rd, r->c[0].recent_ids, donation_cb, r), 0);
	ck_assert_int_eq(r->nd, 3);
	ck_assert_int_eq(r->d[0].id, 13);
	ck_assert_int_eq(r->d[1].id, 12);
	ck_assert_int_eq(r->d[0].hide_amount, 1);
	ck_assert_int_eq(r->d[1].anonymous, 1);
	ck_assert_str_eq(r->d[0].status, "succeeded");
	r->nd = 0;
	ck_assert_int_eq(db_load_donations(rd, "", donation_cb, r), 0);
	ck_assert_int_eq(db_load_donations(rd, "9999,13", donation_cb, r), 0);
	ck_assert_int_eq(r->nd, 1); /* missing ids are skipped */
	ck_assert_int_eq(r->d[0].id, 13);

	ck_assert_int_eq(db_donation_get(rd, 14, &one), 0);
	ck_assert_int_eq(one.campaign_id, b);
	ck_assert_int_eq(one.amount_cents, 400);
	ck_assert_str_eq(one.currency, "USD");
	ck_assert_str_eq(one.name, "Donor 14");
	ck_assert_str_eq(one.message, "gift 14");
	ck_assert_int_eq(one.created_at, 1700000000014);
	ck_assert_int_eq(db_donation_get(rd, 99, &one), -ENOENT);
	ck_assert_int_eq(db_max_donation_id(rd, &max), 0);
	ck_assert_int_eq(max, 14);

	sqlite3_close(rd);
	free(r);
	db_writer_free(w);
	collector_fini();
}
END_TEST

/* ---- a job's attempt history (schema 7) ---- */

/* An attempt of job id that failed with error: scheduled again (dead when
 * dead is set), attempt number n, started at `at` and ran `ms`. */
static struct db_op *failed_attempt_op(int64_t id, int n, int64_t at, int64_t ms, const char *error,
                                       int dead)
{
	struct db_op *op = calloc(1, sizeof(*op));

	ck_assert_ptr_nonnull(op);
	op->kind = DB_OP_JOB_UPDATE;
	op->now_ms = at + ms;
	op->u.job.job_id = id;
	op->u.job.queue = JOB_PAYMENTS;
	op->u.job.state = dead ? JOB_DEAD : JOB_SCHEDULED;
	op->u.job.attempts = n;
	op->u.job.next_run_at = at + ms + 1000;
	op->u.job.failed = 1;
	op->u.job.donation_id = id;
	op->u.job.attempt_at = at;
	op->u.job.attempt_ms = ms;
	snprintf(op->u.job.error, sizeof(op->u.job.error), "%s", error);
	return op;
}

/* Submit op and wait for it; its rc must be 0. */
static void submit_one(struct db_writer *w, struct db_op *op)
{
	size_t before = col.n_done;

	ck_assert_int_eq(db_writer_submit(w, op), 0);
	wait_done(before + 1);
	ck_assert_int_eq(op->rc, 0);
}

static struct job_history *history_of(sqlite3 *rd, int64_t id)
{
	static struct job_history h;

	ck_assert_int_eq(db_job_histories(rd, &id, 1, &h), 0);
	return &h;
}

/* A schema 6 database (the jobs table without its history) is brought to
 * 7: its jobs keep their rows and read as having no history, and the
 * failures that come after are kept. */
START_TEST(schema_6_gains_job_history)
{
	sqlite3 *db = NULL, *plain, *rd = NULL;
	char err[256] = "", text[64];
	struct db_writer *w;
	struct job_history *h;

	ck_assert_msg(db_open(db_path, "NORMAL", &db, err, sizeof(err)) == 0, "%s", err);
	sqlite3_close(db);
	/* what tally 6 left: no history column, version 6, a dead job */
	plain = open_plain();
	ck_assert_int_eq(
	    sqlite3_exec(plain,
	                 TESTS_UNDO_SCHEMA_8
	                 "ALTER TABLE jobs DROP COLUMN history;"
	                 "PRAGMA user_version = 6;"
	                 "INSERT INTO jobs (id, queue, kind, donation_id, state,"
	                 " attempts, next_run_at, last_error, created_at, updated_at)"
	                 " VALUES (5, 'payments', 'capture', 1, 'dead', 8, 1, 'HTTP 500',"
	                 " 1, 1);",
	                 NULL, NULL, NULL),
	    SQLITE_OK);
	ck_assert_int_eq(query_int(plain, "SELECT count(*) FROM pragma_table_info('jobs')"
	                                  " WHERE name = 'history'"),
	                 0);
	sqlite3_close(plain);

	w = start_writer(64, 64);
	plain = open_plain();
	ck_assert_int_eq(query_int(plain, "PRAGMA user_version"), DB_SCHEMA_VERSION);
	ck_assert_int_eq(query_int(plain, "SELECT history IS NULL FROM jobs WHERE id = 5"), 1);
	query_text(plain, "SELECT last_error FROM jobs WHERE id = 5", text, sizeof(text));
	ck_assert_str_eq(text, "HTTP 500");
	ck_assert_msg(db_open_reader(db_path, &rd, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(history_of(rd, 5)->n, 0);
	/* staff retry it; it fails once more: one entry, the ninth attempt */
	submit_one(w, failed_attempt_op(5, 9, 1700000200000, 42, "HTTP 502", 1));
	h = history_of(rd, 5);
	ck_assert_int_eq(h->n, 1);
	ck_assert_int_eq(h->a[0].attempt, 9);
	ck_assert_int_eq(h->a[0].at_ms, 1700000200000);
	ck_assert_int_eq(h->a[0].took_ms, 42);
	ck_assert_str_eq(h->a[0].error, "HTTP 502");
	query_text(plain, "SELECT history FROM jobs WHERE id = 5", text, sizeof(text));
	ck_assert_str_eq(text, "[[9,1700000200000,42,\"HTTP 502\"]]");
	sqlite3_close(plain);
	sqlite3_close(rd);
	db_writer_free(w);
	collector_fini();
}
END_TEST

/* Each failed attempt is appended with its number, time, duration and
 * error, the newest JOB_HISTORY_MAX kept, errors cut to whole characters;
 * a staff action and a success add nothing, and a gift captured at once
 * never writes a history. */
START_TEST(job_history_appended_bounded_and_only_on_failure)
{
	struct db_writer *w = start_writer(64, 64);
	sqlite3 *plain, *rd = NULL;
	char err[256] = "", long_err[256];
	struct job_history *h, hs[3];
	int64_t cid, ids[3] = {1, 2, 99};
	struct db_op *op;
	size_t k;

	cid = create_campaign(w, "alpha");
	submit_one(w, donation_op(cid, 1, 100, "a@example.org"));
	submit_one(w, donation_op(cid, 2, 200, "b@example.org"));
	ck_assert_msg(db_open_reader(db_path, &rd, err, sizeof(err)) == 0, "%s", err);
	plain = open_plain();

	/* gift 2 is captured at its first attempt: nothing more is written */
	capture_all(w, 2, 2);
	ck_assert_int_eq(query_int(plain, "SELECT state = 'done' AND history IS NULL"
	                                  " FROM jobs WHERE id = 2"),
	                 1);
	ck_assert_int_eq(history_of(rd, 2)->n, 0);

	/* gift 1: twelve failures, the last dead; the first two fall out */
	for (int n = 1; n <= JOB_HISTORY_MAX + 2; n++) {
		char e[32];

		snprintf(e, sizeof(e), "HTTP 5%02d", n);
		submit_one(w, failed_attempt_op(1, n, 1700000000000 + n * 1000, n, e,
		                                n == JOB_HISTORY_MAX + 2));
	}
	ck_assert_int_eq(
	    query_int(plain, "SELECT json_array_length(history) FROM jobs WHERE id = 1"),
	    JOB_HISTORY_MAX);
	h = history_of(rd, 1);
	ck_assert_int_eq(h->n, JOB_HISTORY_MAX);
	for (int i = 0; i < h->n; i++) {
		char e[32];

		snprintf(e, sizeof(e), "HTTP 5%02d", i + 3);
		ck_assert_int_eq(h->a[i].attempt, i + 3);
		ck_assert_int_eq(h->a[i].at_ms, 1700000000000 + (i + 3) * 1000);
		ck_assert_int_eq(h->a[i].took_ms, i + 3);
		ck_assert_str_eq(h->a[i].error, e);
	}

	/* a staff retry (no attempt) leaves it as it is */
	op = failed_attempt_op(1, JOB_HISTORY_MAX + 2, 0, 0, "HTTP 512", 0);
	op->u.job.state = JOB_READY;
	op->u.job.failed = 0;
	submit_one(w, op);
	ck_assert_int_eq(history_of(rd, 1)->n, JOB_HISTORY_MAX);
	ck_assert_int_eq(history_of(rd, 1)->a[JOB_HISTORY_MAX - 1].attempt, 12);

	/* a long error is cut at JOB_HISTORY_ERROR_MAX bytes, not inside the
	 * two-byte "é" that straddles the bound; last_error keeps it whole */
	memset(long_err, 'x', sizeof(long_err));
	long_err[JOB_HISTORY_ERROR_MAX - 1] = '\xc3';
	long_err[JOB_HISTORY_ERROR_MAX] = '\xa9';
	long_err[JOB_HISTORY_ERROR_MAX + 20] = '\0';
	submit_one(w, failed_attempt_op(1, 13, 1700000100000, 7, long_err, 1));
	h = history_of(rd, 1);
	ck_assert_int_eq(h->n, JOB_HISTORY_MAX);
	ck_assert_int_eq(h->a[JOB_HISTORY_MAX - 1].attempt, 13);
	ck_assert_uint_eq(strlen(h->a[JOB_HISTORY_MAX - 1].error), JOB_HISTORY_ERROR_MAX - 1);
	ck_assert_int_eq(
	    memcmp(h->a[JOB_HISTORY_MAX - 1].error, long_err, JOB_HISTORY_ERROR_MAX - 1), 0);
	ck_assert_int_eq(query_int(plain, "SELECT length(CAST(last_error AS BLOB)) FROM jobs"
	                                  " WHERE id = 1"),
	                 JOB_HISTORY_ERROR_MAX + 20);

	/* then it succeeds: done, its history stays for the done listing */
	op = capture_op(1);
	op->u.job.attempts = 14;
	submit_one(w, op);
	ck_assert_int_eq(query_int(plain, "SELECT state = 'done' FROM jobs WHERE id = 1"), 1);
	ck_assert_int_eq(history_of(rd, 1)->n, JOB_HISTORY_MAX);

	/* several at once; a job without a row has none */
	ck_assert_int_eq(db_job_histories(rd, ids, 3, hs), 0);
	ck_assert_int_eq(hs[0].n, JOB_HISTORY_MAX);
	ck_assert_int_eq(hs[1].n, 0);
	ck_assert_int_eq(hs[2].n, 0);

	/* a history that is not what tally writes (edited by hand) reads as
	 * none, entries that are not attempts are skipped, and the next
	 * failure starts it over instead of failing the batch */
	ck_assert_int_eq(sqlite3_exec(plain, "UPDATE jobs SET history = 'not json' WHERE id = 2",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	ck_assert_int_eq(history_of(rd, 2)->n, 0);
	submit_one(w, failed_attempt_op(2, 2, 1700000300000, 5, "HTTP 500", 0));
	ck_assert_int_eq(history_of(rd, 2)->n, 1);
	ck_assert_int_eq(sqlite3_exec(plain,
	                              "UPDATE jobs SET history = '[1, [\"x\"], {\"a\":1},"
	                              " [3, 1700000400000, 9, \"kept\"]]' WHERE id = 2",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	h = history_of(rd, 2);
	ck_assert_int_eq(h->n, 1);
	ck_assert_str_eq(h->a[0].error, "kept");
	ck_assert_int_eq(sqlite3_exec(plain,
	                              "UPDATE jobs SET history = '{\"a\":[1,2,3,\"x\"]}'"
	                              " WHERE id = 2",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	ck_assert_int_eq(history_of(rd, 2)->n, 0);
	submit_one(w, failed_attempt_op(2, 3, 1700000500000, 5, "HTTP 503", 0));
	h = history_of(rd, 2);
	ck_assert_int_eq(h->n, 1);
	ck_assert_str_eq(h->a[0].error, "HTTP 503");

	for (k = 0; k < col.n_done; k++)
		ck_assert_int_eq(col.commit_rc[k], 0);
	sqlite3_close(plain);
	sqlite3_close(rd);
	db_writer_free(w);
	collector_fini();
}
END_TEST

/* One batch holding a duplicate slug and a gift to a missing campaign: only
 * those two ops fail. */
START_TEST(writer_failed_ops_spare_the_batch)
{
	struct db_writer *w = start_writer(64, 64);
	struct db_op *ops[5];
	int64_t alpha;
	sqlite3 *plain;

	alpha = create_campaign(w, "alpha");

	/* Hold the writer so the next five ops form one batch. */
	block_writer();
	ck_assert_int_eq(db_writer_submit(w, campaign_op("blocker", "USD")), 0);
	wait_blocked();
	ops[0] = campaign_op("alpha", "EUR"); /* duplicate slug */
	ops[1] = donation_op(alpha, 1, 700, "a@example.org");
	ops[2] = campaign_op("beta", "USD");
	ops[3] = donation_op(alpha + 1000, 2, 900, "b@example.org"); /* no such campaign */
	ops[4] = donation_op(alpha, 3, 300, "c@example.org");
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(db_writer_submit(w, ops[i]), 0);
	unblock_writer();
	wait_done(7);

	for (int i = 0; i < 5; i++) {
		ck_assert_ptr_eq(done_op(2 + (size_t)i), ops[i]);
		ck_assert_int_eq(col.batch_of[2 + i], col.batch_of[2]);
		ck_assert_int_eq(col.commit_rc[2 + i], 0);
	}
	ck_assert_int_ne(col.batch_of[2], col.batch_of[1]);
	ck_assert_int_eq(ops[0]->rc, -EEXIST);
	ck_assert_int_eq(ops[1]->rc, 0);
	ck_assert_int_eq(ops[2]->rc, 0);
	ck_assert_int_gt(ops[2]->campaign_id, alpha);
	ck_assert_int_eq(ops[3]->rc, -ENOENT);
	ck_assert_int_eq(ops[4]->rc, 0);

	plain = open_plain();
	ck_assert_int_eq(query_int(plain, "SELECT count(*) FROM campaigns"), 3);
	ck_assert_int_eq(query_int(plain, "SELECT count(*) FROM campaigns WHERE slug = 'alpha'"),
	                 1);
	ck_assert_int_eq(query_int(plain, "SELECT count(*) FROM campaigns WHERE currency = 'EUR'"),
	                 0);
	ck_assert_int_eq(query_int(plain, "SELECT count(*) FROM donations"), 2);
	ck_assert_int_eq(query_int(plain, "SELECT count(*) FROM donations WHERE id = 2"), 0);
	ck_assert_int_eq(
	    query_int(plain, "SELECT pending_cents FROM campaigns WHERE slug = 'alpha'"), 1000);
	ck_assert_int_eq(query_int(plain, "SELECT count(*) FROM jobs"), 2);
	ck_assert_int_eq(query_int(plain, "SELECT count(*) FROM jobs WHERE donation_id = 2"), 0);
	sqlite3_close(plain);

	db_writer_free(w);
	collector_fini();
}
END_TEST

START_TEST(writer_status_and_update)
{
	struct db_writer *w = start_writer(64, 64);
	struct db_op *op;
	int64_t cid;
	sqlite3 *plain;
	char text[64];

	cid = create_campaign(w, "alpha");

	op = calloc(1, sizeof(*op));
	ck_assert_ptr_nonnull(op);
	op->kind = DB_OP_CAMPAIGN_STATUS;
	op->campaign_id = cid;
	op->u.status = CAMPAIGN_PAUSED;
	ck_assert_int_eq(db_writer_submit(w, op), 0);
	wait_done(2);
	ck_assert_int_eq(op->rc, 0);

	op = calloc(1, sizeof(*op));
	ck_assert_ptr_nonnull(op);
	op->kind = DB_OP_CAMPAIGN_STATUS;
	op->campaign_id = cid;
	op->u.status = (enum campaign_status)7; /* none that exists */
	ck_assert_int_eq(db_writer_submit(w, op), 0);
	wait_done(3);
	ck_assert_int_eq(op->rc, -EINVAL);

	op = calloc(1, sizeof(*op));
	ck_assert_ptr_nonnull(op);
	op->kind = DB_OP_CAMPAIGN_STATUS;
	op->campaign_id = cid + 50;
	op->u.status = CAMPAIGN_CLOSED;
	ck_assert_int_eq(db_writer_submit(w, op), 0);
	wait_done(4);
	ck_assert_int_eq(op->rc, -ENOENT);

	op = calloc(1, sizeof(*op));
	ck_assert_ptr_nonnull(op);
	op->kind = DB_OP_CAMPAIGN_UPDATE;
	op->campaign_id = cid;
	snprintf(op->u.campaign.name, sizeof(op->u.campaign.name), "Renamed");
	op->u.campaign.has_name = 1;
	op->u.campaign.ends_at = 1800000000000;
	op->u.campaign.has_ends = 1;
	ck_assert_int_eq(db_writer_submit(w, op), 0);
	wait_done(5);
	ck_assert_int_eq(op->rc, 0);

	plain = open_plain();
	query_text(plain, "SELECT status FROM campaigns", text, sizeof(text));
	ck_assert_str_eq(text, "paused");
	query_text(plain, "SELECT name FROM campaigns", text, sizeof(text));
	ck_assert_str_eq(text, "Renamed");
	ck_assert_int_eq(query_int(plain, "SELECT goal_cents FROM campaigns"), 100000);
	ck_assert_int_eq(query_int(plain, "SELECT ends_at FROM campaigns"), 1800000000000);
	ck_assert_int_eq(query_int(plain, "SELECT starts_at IS NULL FROM campaigns"), 1);

	/* Clearing a time stores NULL; a negative goal is refused. */
	op = calloc(1, sizeof(*op));
	ck_assert_ptr_nonnull(op);
	op->kind = DB_OP_CAMPAIGN_UPDATE;
	op->campaign_id = cid;
	op->u.campaign.has_ends = 1;
	ck_assert_int_eq(db_writer_submit(w, op), 0);
	op = calloc(1, sizeof(*op));
	ck_assert_ptr_nonnull(op);
	op->kind = DB_OP_CAMPAIGN_UPDATE;
	op->campaign_id = cid;
	op->u.campaign.goal_cents = -5;
	op->u.campaign.has_goal = 1;
	ck_assert_int_eq(db_writer_submit(w, op), 0);
	wait_done(7);
	ck_assert_int_eq(done_op(5)->rc, 0);
	ck_assert_int_ne(done_op(6)->rc, 0);
	ck_assert_int_eq(query_int(plain, "SELECT ends_at IS NULL FROM campaigns"), 1);
	ck_assert_int_eq(query_int(plain, "SELECT goal_cents FROM campaigns"), 100000);
	query_text(plain, "SELECT name FROM campaigns", text, sizeof(text));
	ck_assert_str_eq(text, "Renamed");
	sqlite3_close(plain);

	db_writer_free(w);
	collector_fini();
}
END_TEST

/* A drain out of time: what the writer has not started is answered with
 * -ESHUTDOWN and never written. */
START_TEST(writer_refuses_queued_ops)
{
	struct db_writer *w = start_writer(64, 64);
	struct db_op *a, *b, *c;
	int64_t cid;
	sqlite3 *plain;

	cid = create_campaign(w, "alpha");
	block_writer();
	a = donation_op(cid, 1, 100, "a@example.org");
	ck_assert_int_eq(db_writer_submit(w, a), 0);
	wait_blocked();
	b = donation_op(cid, 2, 200, "b@example.org");
	c = donation_op(cid, 3, 300, "c@example.org");
	ck_assert_int_eq(db_writer_submit(w, b), 0);
	ck_assert_int_eq(db_writer_submit(w, c), 0);
	db_writer_refuse(w);
	unblock_writer();
	wait_done(4);
	ck_assert_int_eq(a->rc, 0); /* it had started: committed */
	ck_assert_int_eq(b->rc, -ESHUTDOWN);
	ck_assert_int_eq(c->rc, -ESHUTDOWN);
	db_writer_free(w);
	ck_assert_int_eq(sqlite3_open_v2(db_path, &plain, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_int_eq(query_int(plain, "SELECT count(*) FROM donations"), 1);
	sqlite3_close(plain);
	collector_fini();
}
END_TEST

START_TEST(writer_queue_bound)
{
	struct db_writer *w = start_writer(1, 64);
	struct db_op *a, *b, *c, *d;
	struct commit_stats st;
	int64_t cid;

	cid = create_campaign(w, "alpha");

	/* a is taken by the writer, which is then held in the hook. */
	block_writer();
	a = donation_op(cid, 1, 100, "a@example.org");
	ck_assert_int_eq(db_writer_submit(w, a), 0);
	wait_blocked();
	/* One op fits in the queue, the next is refused... */
	b = donation_op(cid, 2, 200, "b@example.org");
	c = donation_op(cid, 3, 300, "c@example.org");
	ck_assert_int_eq(db_writer_submit(w, b), 0);
	ck_assert_int_eq(db_writer_submit(w, c), -EAGAIN);
	ck_assert_int_eq(db_writer_submit(w, c), -EAGAIN);
	db_writer_stats(w, &st);
	ck_assert_uint_eq(st.depth, 1);
	/* ...unless forced. */
	ck_assert_int_eq(db_writer_submit_force(w, c), 0);
	db_writer_stats(w, &st);
	ck_assert_uint_eq(st.depth, 2);
	ck_assert_uint_eq(st.batches, 2);
	unblock_writer();
	wait_done(4);
	ck_assert_ptr_eq(done_op(2), b);
	ck_assert_ptr_eq(done_op(3), c);
	ck_assert_int_eq(col.batch_of[2], col.batch_of[3]);
	ck_assert_int_eq(b->rc, 0);
	ck_assert_int_eq(c->rc, 0);

	/* Drained: room again. */
	d = donation_op(cid, 4, 400, "d@example.org");
	ck_assert_int_eq(db_writer_submit(w, d), 0);
	wait_done(5);
	ck_assert_int_eq(d->rc, 0);

	db_writer_stats(w, &st);
	ck_assert_uint_eq(st.ops, 5);
	ck_assert_uint_eq(st.batches, 4);
	ck_assert_uint_eq(st.depth, 0);
	ck_assert_uint_eq(st.failed_commits, 0);
	db_writer_free(w);

	{
		sqlite3 *plain = open_plain();

		ck_assert_int_eq(query_int(plain, "SELECT pending_cents FROM campaigns"), 1000);
		ck_assert_int_eq(query_int(plain, "SELECT count(*) FROM jobs"), 4);
		sqlite3_close(plain);
	}
	collector_fini();
}
END_TEST

START_TEST(writer_batch_limit)
{
	struct db_writer *w = start_writer(64, 2);
	int64_t cid = create_campaign(w, "alpha");

	block_writer();
	ck_assert_int_eq(db_writer_submit(w, donation_op(cid, 1, 100, "a@example.org")), 0);
	wait_blocked();
	for (int i = 2; i <= 6; i++)
		ck_assert_int_eq(db_writer_submit(w, donation_op(cid, i, 100, "a@example.org")), 0);
	unblock_writer();
	wait_done(7);
	/* Five queued ops at most two per transaction: three batches. */
	ck_assert_int_eq(col.batch_of[2], col.batch_of[3]);
	ck_assert_int_ne(col.batch_of[3], col.batch_of[4]);
	ck_assert_int_eq(col.batch_of[4], col.batch_of[5]);
	ck_assert_int_ne(col.batch_of[5], col.batch_of[6]);
	for (size_t i = 0; i < 7; i++)
		ck_assert_int_eq(done_op(i)->rc, 0);
	db_writer_free(w);
	collector_fini();
}
END_TEST

struct free_arg {
	struct db_writer *w;
};

static void *free_thread(void *arg)
{
	db_writer_free(((struct free_arg *)arg)->w);
	return NULL;
}

/* db_writer_free commits what is queued, and submit refuses once stopping. */
START_TEST(writer_free_commits_queued)
{
	struct db_writer *w = start_writer(1000, 64);
	struct free_arg fa;
	pthread_t t;
	int64_t cid, id = 1, accepted = 0;
	sqlite3 *plain;

	cid = create_campaign(w, "alpha");
	block_writer();
	ck_assert_int_eq(db_writer_submit(w, donation_op(cid, id++, 100, "a@example.org")), 0);
	wait_blocked();
	for (int i = 0; i < 5; i++, accepted++)
		ck_assert_int_eq(db_writer_submit(w, donation_op(cid, id++, 100, "b@example.org")),
		                 0);

	/* Stop while five ops are still queued and the writer is held. */
	fa.w = w;
	ck_assert_int_eq(pthread_create(&t, NULL, free_thread, &fa), 0);
	for (;;) {
		struct db_op *op = donation_op(cid, id, 100, "c@example.org");
		int rc = db_writer_submit(w, op);
		struct timespec ms = {0, 1000000};

		if (rc == -ESHUTDOWN) {
			free(op);
			break;
		}
		ck_assert_int_eq(rc, 0);
		id++;
		accepted++;
		ck_assert_int_lt(accepted, 900);
		nanosleep(&ms, NULL);
	}
	unblock_writer();
	ck_assert_int_eq(pthread_join(t, NULL), 0);

	ck_assert_uint_eq(col.n_done, 2 + (size_t)accepted);
	for (size_t i = 0; i < col.n_done; i++)
		ck_assert_int_eq(col.done[i]->rc, 0);
	plain = open_plain();
	ck_assert_int_eq(query_int(plain, "SELECT count(*) FROM donations"), 1 + accepted);
	ck_assert_int_eq(query_int(plain, "SELECT count(*) FROM jobs"), 1 + accepted);
	ck_assert_int_eq(query_int(plain, "SELECT pending_cents FROM campaigns"),
	                 100 * (1 + accepted));
	sqlite3_close(plain);
	collector_fini();
}
END_TEST

/* Ops queued and never waited for are committed by db_writer_free. */
START_TEST(writer_free_without_waiting)
{
	struct db_writer *w = start_writer(1000, 16);
	int64_t cid = create_campaign(w, "alpha");
	sqlite3 *plain;

	for (int i = 1; i <= 100; i++)
		ck_assert_int_eq(db_writer_submit(w, donation_op(cid, i, 100, "a@example.org")), 0);
	db_writer_free(w);
	ck_assert_uint_eq(col.n_done, 101);
	plain = open_plain();
	ck_assert_int_eq(query_int(plain, "SELECT count(*) FROM donations"), 100);
	ck_assert_int_eq(query_int(plain, "SELECT pending_cents FROM campaigns"), 10000);
	ck_assert_int_eq(query_int(plain, "SELECT count(*) FROM jobs"), 100);
	sqlite3_close(plain);
	collector_fini();
}
END_TEST

Suite *db_suite(void)
{
	Suite *s = suite_create("db");
	TCase *tc;

	tc = tcase_create("schema");
	tcase_add_unchecked_fixture(tc, tests_root_setup, tests_root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, open_creates_schema);
	tcase_add_test(tc, open_normal_sync);
	tcase_add_test(tc, reopen_is_idempotent);
	tcase_add_test(tc, newer_schema_refused);
	tcase_add_test(tc, open_errors);
	tcase_add_test(tc, files_private_whatever_umask);
	tcase_add_test(tc, loose_files_tightened);
	tcase_add_test(tc, errno_mapping);
	suite_add_tcase(s, tc);

	tc = tcase_create("writer");
	tcase_add_unchecked_fixture(tc, tests_root_setup, tests_root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, writer_commits);
	tcase_add_test(tc, read_queries);
	tcase_add_test(tc, writer_failed_ops_spare_the_batch);
	tcase_add_test(tc, writer_status_and_update);
	tcase_add_test(tc, writer_queue_bound);
	tcase_add_test(tc, writer_refuses_queued_ops);
	tcase_add_test(tc, writer_batch_limit);
	tcase_add_test(tc, writer_free_commits_queued);
	tcase_add_test(tc, writer_free_without_waiting);
	tcase_add_test(tc, schema_6_gains_job_history);
	tcase_add_test(tc, job_history_appended_bounded_and_only_on_failure);
	suite_add_tcase(s, tc);
	return s;
}
