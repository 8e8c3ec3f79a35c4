/* core/engine.c - the engine's lifecycle and plumbing: open (load the
 * campaigns, start the writer and the job workers), free, listeners, the
 * pool of pending operations, submitting them, and the barriers. The rooms
 * that do the work are listed in internal.h.
 */
#include "core/internal.h"
#include "core/day.h"
#include "core/jobs.h"
#include "base/log.h"
#include "base/util.h"
#include "db/db.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define PENDING_POOL_MAX 8192
#define IDEM_MEMORY_CAP 200000
#define IDEM_MEMORY_WINDOW_MS (10 * 60 * 1000LL)

void engine_config_defaults(struct engine_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->db_path = "tally.db";
	cfg->synchronous = "FULL";
	cfg->limits.min_cents = 100;
	cfg->limits.max_cents = 100000000;
	cfg->max_queue = 65536;
	cfg->max_batch = 4096;
	cfg->job_retention_ms = 24 * 3600 * 1000LL;
}

/* ---- listeners ---- */

int engine_add_listener(struct engine *e, const struct engine_listener *l)
{
	int n = atomic_load_explicit(&e->n_listeners, memory_order_relaxed);

	if (n == MAX_LISTENERS)
		return -ENOSPC;
	e->listeners[n] = *l;
	atomic_store_explicit(&e->n_listeners, n + 1, memory_order_release);
	return 0;
}

void engine_notify_changed(struct engine *e, int64_t campaign_id, uint64_t seq)
{
	int n = atomic_load_explicit(&e->n_listeners, memory_order_acquire);

	for (int i = 0; i < n; i++)
		if (e->listeners[i].campaign_changed)
			e->listeners[i].campaign_changed(e->listeners[i].ctx, campaign_id, seq);
}

void engine_notify_published(struct engine *e)
{
	int n = atomic_load_explicit(&e->n_listeners, memory_order_acquire);

	for (int i = 0; i < n; i++)
		if (e->listeners[i].published)
			e->listeners[i].published(e->listeners[i].ctx);
}

void engine_notify_event(struct engine *e, int64_t campaign_id, const char *type, const char *json,
                         size_t len)
{
	int n = atomic_load_explicit(&e->n_listeners, memory_order_acquire);

	for (int i = 0; i < n; i++)
		if (e->listeners[i].event)
			e->listeners[i].event(e->listeners[i].ctx, campaign_id, type, json, len);
}

/* ---- pending operations ---- */

struct pending *pending_new(struct engine *e, enum db_op_kind kind, engine_done_fn done, void *ud,
                            const char *actor)
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
	memset(&p->op.audit, 0, sizeof(p->op.audit));
	p->op.kind = kind;
	p->op.now_ms = util_now_ms();
	p->op.owner = p;
	p->done = done;
	p->ud = ud;
	p->body_len = 0;
	p->secret[0] = '\0';
	snprintf(p->actor, sizeof(p->actor), "%s", actor ? actor : "");
	return p;
}

void pending_release(struct engine *e, struct pending *list)
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

void pending_free(struct engine *e, struct pending *p)
{
	p->next_free = NULL;
	pending_release(e, p);
}

void pending_audit(struct pending *p, const char *action, const char *target, const char *detail)
{
	struct db_audit *a = &p->op.audit;

	if (!p->actor[0])
		return;
	snprintf(a->actor, sizeof(a->actor), "%s", p->actor);
	snprintf(a->action, sizeof(a->action), "%s", action);
	snprintf(a->target, sizeof(a->target), "%s", target);
	snprintf(a->detail, sizeof(a->detail), "%s", detail ? detail : "");
}

int engine_submit(struct engine *e, struct pending *p, int force)
{
	int rc =
	    force ? db_writer_submit_force(e->writer, &p->op) : db_writer_submit(e->writer, &p->op);

	if (rc) {
		pending_free(e, p);
		return rc == -EAGAIN ? TALLY_EOVERLOADED : TALLY_ESHUTDOWN;
	}
	return 0;
}

/* ---- waiting for an answer ---- */

void waiter_init(struct waiter *w)
{
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->done = 0;
	w->rc = 0;
}

void waiter_done(void *ud, const struct engine_answer *a)
{
	struct waiter *w = ud;

	pthread_mutex_lock(&w->lock);
	w->done = 1;
	w->rc = a->rc;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

int waiter_wait(struct waiter *w, int rc)
{
	if (rc == 0) {
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

int engine_sync(struct engine *e)
{
	struct waiter w;
	struct pending *p;

	waiter_init(&w);
	p = pending_new(e, DB_OP_SYNC, waiter_done, &w, NULL);
	return waiter_wait(&w, p ? engine_submit(e, p, 1) : -ENOMEM);
}

int engine_jobs_wait_idle(struct engine *e, enum job_queue q, int timeout_ms)
{
	return jobs_wait_idle(e->jobs, q, timeout_ms);
}

void engine_refuse_queued(struct engine *e)
{
	db_writer_refuse(e->writer);
}

/* ---- open and free ---- */

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
		int saved = errno;

		snprintf(err, errcap, "%s: %s", path, strerror(saved));
		return -saved;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int rc = errno == EWOULDBLOCK ? TALLY_ELOCKED : -errno;

		snprintf(err, errcap, "%s: %s", db_path, tally_strerror(rc));
		close(fd);
		return rc;
	}
	e->lock_fd = fd;
	return 0;
}

static int load_recent_cb(void *ud, const struct db_donation_row *row)
{
	struct campaign *c = ud;
	char *gift;

	if (c->n_recent == RECENT_MAX)
		return 0;
	gift = publish_render_gift(row->anonymous ? "Anonymous" : row->name, row->amount_cents,
	                           db_donation_matched(row), row->hide_amount, row->message,
	                           row->created_at);
	if (!gift)
		return -ENOMEM;
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
	struct campaign *c = campaign_new(&row->c, &lc->e->day);
	int rc;

	if (!c)
		return -ENOMEM;
	rc = campaigns_add(lc->e, c, 0);
	if (rc) {
		campaign_free(c);
		return rc;
	}
	rc = db_load_donations(lc->db, row->recent_ids, load_recent_cb, c);
	if (rc)
		return rc;
	publish_mark(lc->e, c);
	return 0;
}

/* The audit's pauses and resumes, oldest first: a campaign has been
 * paused since the first pause after its last resume (a repeated pause
 * changes nothing). */
static int load_pause_cb(void *ud, const struct audit_entry *a)
{
	struct engine *e = ud;
	struct campaign *c = campaign_find_slug(e, a->target, strlen(a->target));

	if (!c)
		return 0;
	if (!strcmp(a->action, "campaign.resume"))
		c->w.paused_since = 0;
	else if (!c->w.paused_since)
		c->w.paused_since = a->at;
	return 0;
}

/* Since when each paused campaign has been paused. Not stored as such: the
 * audit row of a pause is written in the pause's own transaction, with the
 * same time as the commit that set paused_since before the restart. A
 * paused campaign without one (a database changed by hand) counts from
 * now, and the log says so. */
static int load_pauses(struct engine *e, sqlite3 *db)
{
	int rc = db_campaign_pauses(db, load_pause_cb, e);

	if (rc)
		return rc;
	for (size_t i = 1; i < e->id_cap; i++) {
		struct campaign *c = e->by_id[i];

		if (!c)
			continue;
		if (c->w.status != CAMPAIGN_PAUSED) {
			c->w.paused_since = 0;
		} else if (!c->w.paused_since) {
			c->w.paused_since = e->started_ms;
			log_msg(LOG_WARN, "campaign.paused_unknown",
			        "campaign %s is paused and the audit does not say since when: "
			        "counted from now",
			        c->w.slug);
		}
	}
	return 0;
}

/* Rebuild the cache from the stored aggregates (never replaying rows). */
static int load(struct engine *e, sqlite3 *db, char *err, size_t errcap)
{
	struct load_ctx lc = {e, db};
	int64_t max_id = 0;
	int rc;

	rc = db_load_day(db, &e->day, &e->day_seq);
	if (rc) {
		snprintf(err, errcap, "%s: loading the giving day: %s", e->cfg.db_path,
		         sqlite3_errmsg(db));
		return rc;
	}
	e->day_phase = day_phase(&e->day, util_now_ms());
	rc = db_load_campaigns(db, load_campaign_cb, &lc);
	campaigns_sort(e);
	if (!rc)
		rc = db_max_donation_id(db, &max_id);
	if (rc) {
		snprintf(err, errcap, "%s: loading campaigns: %s", e->cfg.db_path,
		         sqlite3_errmsg(db));
		return rc;
	}
	if (!e->slot_cap) {
		/* No campaigns yet: allocate the empty table. */
		e->slots = calloc(64, sizeof(*e->slots));
		if (!e->slots)
			return -ENOMEM;
		e->slot_cap = 64;
	}
	rc = load_pauses(e, db);
	if (rc) {
		snprintf(err, errcap, "%s: reading the campaigns' pauses: %s", e->cfg.db_path,
		         sqlite3_errmsg(db));
		return rc;
	}
	publish_batch(e);
	atomic_init(&e->next_donation_id, max_id + 1);
	return 0;
}

/* The staff tokens: the startup one, then those stored. (What another
 * process stores from now on is read at the writer's first tick.) */
static int load_tokens(struct engine *e, sqlite3 *db, char *err, size_t errcap)
{
	int rc = tokens_new(&e->tokens);

	if (!rc && e->cfg.admin_token && *e->cfg.admin_token)
		rc = tokens_set_startup(e->tokens, e->cfg.admin_token);
	if (rc) {
		snprintf(err, errcap, "the startup token: %s", tally_strerror(rc));
		return rc;
	}
	rc = tokens_load(e->tokens, db);
	if (rc)
		snprintf(err, errcap, "%s: loading the staff tokens: %s", e->cfg.db_path,
		         sqlite3_errmsg(db));
	return rc;
}

int engine_open(const struct engine_config *cfg, struct engine **out, char *err, size_t errcap)
{
	struct db_writer_hooks hooks = {commit_batch,     commit_tick,    NULL,
	                                commit_elsewhere, commit_prepare, commit_applied};
	struct jobs_hooks jh = {commit_job_outcomes, NULL};
	struct engine *e;
	sqlite3 *db = NULL;
	int rc;

	*out = NULL;
	if (cfg->limits.min_cents < 1 || cfg->limits.max_cents > TALLY_AMOUNT_MAX ||
	    cfg->limits.min_cents > cfg->limits.max_cents) {
		snprintf(err, errcap, "donation limits %lld to %lld: want 1 <= min <= max <= %lld",
		         (long long)cfg->limits.min_cents, (long long)cfg->limits.max_cents,
		         (long long)TALLY_AMOUNT_MAX);
		return -EINVAL;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->cfg = *cfg;
	e->lock_fd = -1;
	e->started_ms = util_now_ms();
	hooks.ctx = jh.ctx = e;
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
	/* The pools first: a campaign's JSON shows its match banner. */
	rc = match_book_new(&e->match);
	if (!rc)
		rc = match_book_load(e->match, db);
	if (!rc)
		rc = bonus_book_new(&e->bonus);
	if (!rc)
		rc = bonus_book_load(e->bonus, db);
	if (rc) {
		snprintf(err, errcap, "%s: loading the match pools and challenges: %s",
		         cfg->db_path, tally_strerror(rc));
		goto fail;
	}
	rc = load(e, db, err, errcap);
	if (rc)
		goto fail;
	rc = load_tokens(e, db, err, errcap);
	if (rc)
		goto fail;

	rc = idem_new(IDEM_MEMORY_CAP, IDEM_MEMORY_WINDOW_MS, &e->idem);
	if (rc)
		goto fail;
	rc = db_open_reader(cfg->db_path, &e->reader, err, errcap);
	if (rc)
		goto fail;
	if (cfg->install_id) {
		rc = db_install_id(db, cfg->install_id, 40);
		if (rc) {
			snprintf(err, errcap, "%s: reading the installation id: %s", cfg->db_path,
			         sqlite3_errmsg(db));
			goto fail;
		}
	}
	rc = jobs_new(cfg->jobs, &jh, cfg->db_path, db, &e->jobs, err, errcap);
	if (rc)
		goto fail;
	rc = db_writer_new(db, cfg->max_queue, cfg->max_batch, &hooks, &e->writer);
	db = NULL; /* owned by the writer now, even on failure */
	if (rc) {
		snprintf(err, errcap, "starting the database writer: %s", tally_strerror(rc));
		goto fail;
	}
	db_writer_set_job_retention(e->writer, cfg->job_retention_ms);
	if (cfg->jobs_paused_at_start)
		for (int q = 0; q < JOB_QUEUES; q++)
			jobs_set_paused(e->jobs, (enum job_queue)q, 1);
	rc = jobs_start(e->jobs);
	if (rc) {
		snprintf(err, errcap, "starting the job workers: %s", tally_strerror(rc));
		goto fail;
	}
	*out = e;
	return 0;
fail:
	sqlite3_close(db);
	engine_free(e);
	return rc;
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	/* Workers hand results to the writer, whose commit_batch hands them
	 * back: stop the workers, then the writer, then free the jobs. The
	 * reader closes first so the writer's last checkpoint can remove the
	 * WAL; the writer's hooks may still read through it until then, so it
	 * is closed under its lock and they find it gone. */
	jobs_stop(e->jobs, JOBS_STOP_WAIT_MS);
	pthread_mutex_lock(&e->reader_lock);
	if (e->reader && sqlite3_close(e->reader) != SQLITE_OK)
		log_msg(LOG_ERROR, "db.close_failed", "reader connection still busy");
	e->reader = NULL;
	pthread_mutex_unlock(&e->reader_lock);
	db_writer_free(e->writer);
	jobs_free(e->jobs);
	campaigns_free(e);
	for (size_t i = 0; i < e->n_gifts; i++)
		free(e->gifts[i].json);
	free(e->gifts);
	idem_free(e->idem);
	tokens_free(e->tokens);
	match_book_free(e->match);
	bonus_book_free(e->bonus);
	buf_fini(&e->scratch);
	buf_fini(&e->day_totals);
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
