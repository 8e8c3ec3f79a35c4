/* db/writer.c - group commit: the one thread that writes to SQLite.
 *
 * DESIGN: a redis-bio-style thread. Producers append db_op to a FIFO under a
 * mutex and signal a condition variable. The writer pops everything queued
 * (up to max_batch) under the lock, then works unlocked: BEGIN IMMEDIATE,
 * each op recorded by the store (store.c, which holds every domain
 * statement), the store's per-batch flush, COMMIT. Only then does it hand
 * the whole batch to the batch_done hook, which acknowledges each op. Any
 * error rolls the batch back and fails every op in it. The queue is bounded
 * so overload is answered, not buffered. Every 10 s the writer restarts the
 * WAL (checkpoint RESTART) so readers can never make it grow without bound;
 * about once a second it prunes old done jobs, calls the tick hook and
 * looks whether another connection committed (PRAGMA data_version); a hook
 * that knows when its next change of state is due (the giving day's next
 * phase) asks for a tick at that moment too (db_writer_tick_at). The
 * same transaction runs without the thread in db_apply_now, for a
 * command-line tool.
 */
#include "db/writer.h"
#include "db/db.h"
#include "db/store.h"
#include "base/events.h"
#include "base/log.h"
#include "base/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct db_writer {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct db_op *head, *tail; /* guarded by lock */
	size_t depth;              /* guarded by lock */
	int stopping;              /* guarded by lock */
	int refusing;              /* guarded by lock: see db_writer_refuse */
	struct commit_stats stats; /* guarded by lock */
	int64_t retention_ms;      /* guarded by lock */
	size_t max_queue, max_batch;

	/* Writer thread only. */
	sqlite3 *db;
	struct db_store *store;
	uint64_t last_checkpoint_ns;
	uint64_t last_tick_ns;
	int64_t data_version; /* at the last tick; -1 before the first */
	int64_t tick_at_ms;   /* an extra tick due then (wall clock); 0: none */
	struct db_writer_hooks hooks;
	char last_error[256];     /* writer thread: the last failed batch's */
	uint64_t failed_at_start; /* failed_commits when the failing began */
};

static void hist_add(uint64_t *hist, const double *bounds, double v)
{
	int b = 0;

	while (b < COMMIT_HIST_BUCKETS && v > bounds[b])
		b++;
	hist[b]++;
}

/* Apply ops (linked through next) in one transaction on ds. Returns 0 or
 * a negative errno, with SQLite's message in err (rolled back). */
static int apply_ops(struct db_store *ds, const struct db_writer_hooks *hooks, struct db_op *ops,
                     char *err, size_t errcap)
{
	int rc = db_store_begin(ds);

	for (struct db_op *op = ops; op && rc == SQLITE_OK; op = op->next) {
		int refused = hooks && hooks->prepare ? hooks->prepare(hooks->ctx, op) : 0;

		if (refused)
			op->rc = refused;
		else
			rc = db_store_apply(ds, op);
		if (rc == SQLITE_OK && hooks && hooks->applied)
			hooks->applied(hooks->ctx, op);
	}
	if (rc == SQLITE_OK)
		rc = db_store_flush(ds, util_now_ms());
	if (rc == SQLITE_OK)
		rc = db_store_commit(ds);
	if (rc == SQLITE_OK)
		return 0;
	snprintf(err, errcap, "%s", db_store_errmsg(ds));
	db_store_rollback(ds);
	return db_errno(rc) ? db_errno(rc) : -EIO;
}

/* Apply a batch in one transaction. Returns 0 or a negative errno. */
static int apply_batch(struct db_writer *w, struct db_op *ops)
{
	return apply_ops(w->store, &w->hooks, ops, w->last_error, sizeof(w->last_error));
}

/* One log line when commits start failing and one when they succeed
 * again, not one per batch: a full disk fails thousands a second. */
static void note_outcome(struct db_writer *w, int rc, uint64_t failed_before)
{
	int64_t since = w->stats.failing_since_ms;

	if (rc && !since) {
		w->stats.failing_since_ms = util_now_ms();
		log_msg(LOG_ERROR, "db.commits_failing",
		        "commits fail (%s): donations are answered 503 until they succeed",
		        w->last_error);
		events_note("storage", NULL, "commits fail (%.80s): donations answered 503",
		            w->last_error);
	} else if (!rc && since) {
		w->stats.failing_since_ms = 0;
		log_msg(LOG_WARN, "db.commits_recovered",
		        "commits succeed again after %.1f s and %llu failed batches",
		        (double)(util_now_ms() - since) / 1000.0,
		        (unsigned long long)(w->stats.failed_commits - failed_before));
		events_note("storage", NULL, "commits succeed again after %.1f s",
		            (double)(util_now_ms() - since) / 1000.0);
	}
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

/* Tell the changed_elsewhere hook when another connection committed since
 * the last look (the write connection's own commits do not move its
 * data_version). */
static void look_elsewhere(struct db_writer *w)
{
	int64_t v;

	if (!w->hooks.changed_elsewhere)
		return;
	if (db_store_data_version(w->store, &v) != SQLITE_OK) {
		log_msg(LOG_WARN, "db.data_version_failed", "%s", db_store_errmsg(w->store));
		return;
	}
	if (v == w->data_version)
		return;
	w->data_version = v;
	w->hooks.changed_elsewhere(w->hooks.ctx);
}

static void maybe_tick(struct db_writer *w)
{
	uint64_t now = util_mono_ns();
	int due = w->tick_at_ms && util_now_ms() >= w->tick_at_ms;
	int64_t keep;

	if ((!w->hooks.tick && !w->hooks.changed_elsewhere) ||
	    (!due && now - w->last_tick_ns < 1000000000ull))
		return;
	if (due)
		w->tick_at_ms = 0;
	w->last_tick_ns = now;
	pthread_mutex_lock(&w->lock);
	keep = w->retention_ms;
	pthread_mutex_unlock(&w->lock);
	db_store_prune(w->store, keep);
	if (w->hooks.tick)
		w->hooks.tick(w->hooks.ctx);
	look_elsewhere(w);
}

static void *writer_main(void *arg)
{
	struct db_writer *w = arg;
	int named = util_thread_name("writer");

	if (named)
		log_msg(LOG_WARN, "thread.name_failed", "%s", strerror(-named));

	for (;;) {
		struct db_op *batch, *last;
		uint64_t t0;
		double secs;
		size_t n = 1;
		int rc;

		pthread_mutex_lock(&w->lock);
		while (!w->head && !w->stopping) {
			struct timespec ts;
			int64_t at;

			clock_gettime(CLOCK_REALTIME, &ts);
			at = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
			ts.tv_sec += 1;
			if (w->tick_at_ms && w->tick_at_ms < at + 1000) {
				at = w->tick_at_ms > at ? w->tick_at_ms : at;
				ts.tv_sec = (time_t)(at / 1000);
				ts.tv_nsec = (long)(at % 1000) * 1000000L;
			}
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
		if (rc && !w->stats.failing_since_ms)
			w->failed_at_start = w->stats.failed_commits;
		w->stats.failed_commits += rc != 0;
		note_outcome(w, rc, w->failed_at_start);
		hist_add(w->stats.batch_size_hist, commit_batch_size_bounds, (double)n);
		hist_add(w->stats.commit_seconds_hist, commit_seconds_bounds, secs);
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
	w->data_version = -1;
	rc = db_store_new(conn, w->max_batch, &w->store);
	if (rc)
		goto fail;
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
	db_store_free(w->store);
	sqlite3_close(conn);
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
		w->stats.crowded++;
		pthread_mutex_unlock(&w->lock);
		return -EAGAIN;
	}
	if (w->depth >= w->max_queue / 2)
		w->stats.crowded++;
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

int db_writer_submit_list(struct db_writer *w, struct db_op *first, size_t n)
{
	struct db_op *last = first;
	int wake;

	if (!first)
		return 0;
	while (last->next)
		last = last->next;
	pthread_mutex_lock(&w->lock);
	if (w->stopping) {
		pthread_mutex_unlock(&w->lock);
		return -ESHUTDOWN;
	}
	wake = !w->head;
	if (w->tail)
		w->tail->next = first;
	else
		w->head = first;
	w->tail = last;
	w->depth += n;
	pthread_mutex_unlock(&w->lock);
	if (wake)
		pthread_cond_signal(&w->cond);
	return 0;
}

void db_writer_refuse(struct db_writer *w)
{
	pthread_mutex_lock(&w->lock);
	w->refusing = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

void db_writer_set_job_retention(struct db_writer *w, int64_t ms)
{
	pthread_mutex_lock(&w->lock);
	w->retention_ms = ms;
	pthread_mutex_unlock(&w->lock);
}

void db_writer_tick_at(struct db_writer *w, int64_t at_ms)
{
	if (at_ms > 0 && (!w->tick_at_ms || at_ms < w->tick_at_ms))
		w->tick_at_ms = at_ms;
}

void db_writer_stats(struct db_writer *w, struct commit_stats *out)
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
	db_store_free(w->store);
	rc = sqlite3_wal_checkpoint_v2(w->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	if (rc != SQLITE_OK)
		log_msg(LOG_WARN, "db.checkpoint_failed", "%s", sqlite3_errmsg(w->db));
	rc = sqlite3_close(w->db);
	if (rc != SQLITE_OK)
		log_msg(LOG_ERROR, "db.close_failed", "%s", sqlite3_errstr(rc));
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

int db_apply_now(sqlite3 *db, struct db_op *op, char *err, size_t errcap)
{
	struct db_store *ds;
	int rc = db_store_new(db, 1, &ds);

	if (rc) {
		snprintf(err, errcap, "preparing the statements: %s", sqlite3_errmsg(db));
		return rc;
	}
	op->next = NULL;
	rc = apply_ops(ds, NULL, op, err, errcap);
	db_store_free(ds);
	return rc;
}
