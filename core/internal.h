/* core/internal.h - the engine's insides, shared by its rooms and by no one
 * else (see the THREADS section of engine.h for who may touch what):
 *   engine.c     open, free, listeners, the pool of pending operations,
 *                submit, engine_sync
 *   campaigns.c  the campaign table, its rankings and every read of it
 *   boards.c     leaderboards by category and currency, the categories
 *   publish.c    rendering, and publishing a campaign's JSON with its seq
 *   commit.c     a committed batch, in order (writer thread only)
 *   intake.c     donations and their idempotency keys
 *   staff.c      staff actions on campaigns, queues, jobs, refunds and
 *                staff tokens
 * and core/tokens.c, the staff token table (its own lock, a leaf).
 */
#ifndef TALLY_CORE_INTERNAL_H
#define TALLY_CORE_INTERNAL_H

#include "core/engine.h"
#include "core/idem.h"
#include "core/bonus.h"
#include "core/match.h"
#include "core/tokens.h"
#include "base/hour.h"
#include "db/writer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>

#define RECENT_MAX 10
#define MAX_LISTENERS 8
#define RATE_BUCKETS 6 /* of 10 s: one minute */

/* A campaign lives in two copies. `w` is the writer thread's working copy:
 * commit.c changes it as batches commit, with no lock. `pub` is what
 * readers see, under e->lock: publish.c copies w into pub, swaps in the
 * JSON rendered from w and its seq, and reranks, all in one critical
 * section, so a reader never sees a body that disagrees with its seq or
 * with the numbers beside it. */
struct campaign {
	struct campaign_row w;    /* writer thread */
	char *recent[RECENT_MAX]; /* writer: rendered gifts, newest first */
	int n_recent;
	int dirty;                      /* writer: to publish at the end of the batch */
	int bumped;                     /* writer: seq already bumped this batch */
	int touch_pending;              /* writer: a schedule change is queued */
	enum campaign_status effective; /* writer: after the schedule, as of
	                                 * the last recorded change */
	struct campaign *next_dirty;
	/* writer: the match banner as last rendered (pools_banner_json), its
	 * state and when: a tick shows a pool's change on campaigns that had
	 * no gift of their own (commit_tick) */
	uint64_t banner_key;
	int banner_state;
	int64_t banner_at;

	/* Guarded by e->lock. */
	struct campaign_row pub;
	char *json; /* NULL until first published */
	size_t json_len;
	size_t rank[2];              /* position in e->ranked[by] */
	uint32_t rate[RATE_BUCKETS]; /* succeeded gifts per 10 s bucket */
	int64_t rate_epoch;          /* bucket index of rate[0]'s period */
	struct hour_window *hour;    /* succeeded gifts per minute, the last
	                              * hour; NULL until the first (malloc'd
	                              * by the writer, freed with c) */

	/* What the campaign holds or may come to hold: raised + pending +
	 * the gifts admitted and not yet stored; at most TALLY_TOTAL_MAX, so
	 * no sum of its money can overflow. Added to under e->lock at
	 * admission (intake.c), taken from by the writer when a gift is not
	 * stored after all (intake_finish) or leaves the totals (a failed
	 * capture, a refund: commit.c). */
	atomic_llong claimed_cents;
};

/* What the engine keeps per queued operation. */
struct pending {
	struct db_op op;
	struct pending *next_free; /* in e->pool */
	engine_done_fn done;
	void *ud;
	char actor[TALLY_ACTOR_SIZE];
	/* A new staff token's secret, for its answer only (never stored;
	 * wiped once answered). */
	char secret[TALLY_STAFF_SECRET_SIZE];
	size_t body_len;
	char body[384]; /* the longest 202 is about 350 bytes */
};

/* A gift whose donation event waits for the batch to be published. */
struct gift_event {
	int64_t campaign_id;
	const char *type; /* "donation", "challenge": static */
	char *json;       /* malloc'd: freed once the listeners had it */
	size_t len;
};

struct engine {
	struct engine_config cfg;
	struct db_writer *writer;
	struct jobs *jobs;

	/* Guards the table, every campaign's published half, the rankings
	 * and the counters below. Taken last: nothing is locked inside it. */
	pthread_mutex_t lock;
	struct campaign **by_id; /* index = campaign id */
	size_t id_cap;
	struct campaign **slots; /* open addressing on slug */
	size_t slot_cap;         /* power of two */
	size_t n_campaigns;
	struct campaign **ranked[2]; /* by total, by donors; best first */
	struct board_group *groups;  /* (category, currency) pairs: boards.c */
	size_t n_groups, cap_groups;
	uint64_t version; /* bumps on any published change */
	uint64_t seq_sum; /* sum of every published seq: stored, so
	                   * it only grows, across restarts too */
	int64_t donations_total;
	uint32_t rate[10]; /* succeeded gifts per 1 s bucket */
	int64_t rate_epoch;

	atomic_llong next_donation_id;
	struct idem_table *idem;  /* thread-safe on its own */
	struct tokens *tokens;    /* staff tokens; thread-safe on its own */
	struct match_book *match; /* match pools; changed by the writer only */
	struct bonus_book *bonus; /* challenges; changed by the writer only */
	int bonus_counted;        /* writer: this batch counted gifts in it */
	int64_t started_ms;

	/* Added while the writer may already run: a slot is written, then
	 * published by the count (release); the writer reads the count
	 * (acquire) and only the slots below it. */
	struct engine_listener listeners[MAX_LISTENERS];
	atomic_int n_listeners;

	pthread_mutex_t reader_lock; /* guards reader; nothing inside it */
	sqlite3 *reader;

	/* Writer thread only. */
	struct campaign *dirty_head;
	struct buf scratch;
	struct gift_event *gifts; /* this batch's donation events */
	size_t n_gifts, gifts_cap;

	/* Recycled pending ops: the service thread takes one per request, the
	 * writer gives a batch back at once, so neither pays for a 3 KB
	 * malloc/free across threads. Bounded by PENDING_POOL_MAX. */
	pthread_mutex_t pool_lock; /* guards pool; nothing inside it */
	struct pending *pool;
	size_t pool_len;

	int lock_fd;             /* flock on DB.lock: one tally per database */
	uint64_t banner_version; /* writer: match_version at the last banner check */
	int64_t banner_scan_at;  /* writer: when that was */

	/* The giving day (core/day_staff.c): changed by the writer under
	 * e->lock as a day op commits, read under e->lock (the writer reads
	 * it without). day_seq is stored (meta day_seq): it grows with each
	 * change of the day, across restarts too. */
	struct giving_day day;
	uint64_t day_seq;
	/* Writer thread only: the phase as of the last recorded change, a
	 * touch queued, and a day change to tell the listeners of even when
	 * no campaign moved. */
	enum day_phase day_phase;
	int day_touch_pending;
	int day_dirty;
	/* The day's totals as last rendered (campaigns.c), for the seq and
	 * the second they show (seq 0: none); guarded by e->lock. */
	struct buf day_totals;
	uint64_t day_totals_seq;
	int64_t day_totals_sec;
};

/* ---- engine.c ---- */
struct pending *pending_new(struct engine *e, enum db_op_kind kind, engine_done_fn done, void *ud,
                            const char *actor);
void pending_free(struct engine *e, struct pending *p);
/* Give a list linked by next_free back to the pool. */
void pending_release(struct engine *e, struct pending *list);
/* Queue p to the writer (force: even when the queue is full). Returns 0,
 * or TALLY_EOVERLOADED / TALLY_ESHUTDOWN (p is freed). */
int engine_submit(struct engine *e, struct pending *p, int force);
/* Record p as a staff action of its actor (no-op without one). */
void pending_audit(struct pending *p, const char *action, const char *target, const char *detail);
/* Call every listener's campaign_changed / donation. Writer thread. */
void engine_notify_changed(struct engine *e, int64_t campaign_id, uint64_t seq);
void engine_notify_event(struct engine *e, int64_t campaign_id, const char *type, const char *json,
                         size_t len);
void engine_notify_published(struct engine *e);

/* A blocking call: init, pass waiter_done and the waiter, then wait with
 * the call's immediate result (0: wait for the answer's rc). */
struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done;
	int rc;
};
void waiter_init(struct waiter *w);
void waiter_done(void *ud, const struct engine_answer *a);
int waiter_wait(struct waiter *w, int rc);

/* ---- campaigns.c (callers hold e->lock, or are the writer reading) ---- */
struct campaign *campaign_find_slug(struct engine *e, const char *slug, size_t len);
struct campaign *campaign_find_id(struct engine *e, int64_t id);
/* Add c to the table and rankings (e->lock held by the writer; at load
 * time, rank = 0 and campaigns_sort ranks them once at the end). */
int campaigns_add(struct engine *e, struct campaign *c, int rank);
void campaigns_sort(struct engine *e);
/* Move c to its place in ranking `by` after its published key changed. */
void campaigns_rerank(struct engine *e, struct campaign *c, int by);
/* A new campaign from its stored record (w and pub both set), its
 * effective status taken under day. */
struct campaign *campaign_new(const struct campaign_row *row, const struct giving_day *day);
void campaign_free(struct campaign *c);
/* Status after the schedules are applied at now: the campaign's own
 * window, then the giving day's (day may be NULL: none). */
enum campaign_status campaign_effective(const struct campaign_row *r, const struct giving_day *day,
                                        int64_t now);
/* Count n gifts in a rate window of buckets. */
void rate_add(uint32_t *buckets, int n, int64_t *epoch, int64_t now_epoch, uint32_t add);
void campaigns_free(struct engine *e);

/* ---- boards.c (callers hold e->lock) ---- */
/* Count a published campaign in (delta 1) or out of (delta -1) the group
 * (category, currency). Returns 0, or -ENOMEM (counting in only). */
int boards_count(struct engine *e, const char *category, const char *currency, int delta);
void boards_free(struct engine *e);

/* ---- publish.c (writer thread) ---- */
/* Queue c to be published at the end of the batch. */
void publish_mark(struct engine *e, struct campaign *c);
/* Render and publish every marked campaign (JSON, seq and numbers in one
 * critical section), then tell the listeners: campaign changes, then the
 * batch's gifts. */
void publish_batch(struct engine *e);
/* A gift as a donation event's data object; malloc'd, NULL when out of
 * memory. */
char *publish_render_gift(const char *name, int64_t amount, int64_t matched, int hide,
                          const char *message, int64_t at);
/* The 202 body of a donation (a replay renders the same text from the
 * stored row, so everything here must come from the row): fee_cents is
 * the covered fee, charged_cents amount + fee. status_token is shown when
 * not "" (gifts recorded before tokens have none). */
size_t publish_render_receipt(char *dst, size_t cap, int64_t id, const char *slug, int64_t amount,
                              int64_t matched, int64_t fee, const char *currency,
                              int64_t created_at, const char *status_token);
/* The 201 body of an offline gift, from what its row stores (replays
 * render the same text). */
size_t publish_render_offline(char *dst, size_t cap, int64_t id, const char *slug, int64_t amount,
                              int64_t matched, const char *currency, const char *method,
                              int64_t received_at, int64_t created_at);

/* ---- commit.c (writer hooks) ---- */
void commit_batch(void *ctx, struct db_op *ops, int commit_rc);
/* Decide what depends on the writer's order (a gift's match), just before
 * op is stored. */
int commit_prepare(void *ctx, struct db_op *op);
/* Decide what follows from an applied op in the same transaction (the
 * challenges a gift's success unlocks). */
void commit_applied(void *ctx, struct db_op *op);
void commit_tick(void *ctx);
/* Another process committed to the database (tally token, say): read the
 * staff tokens again. */
void commit_elsewhere(void *ctx);
/* Keep a live event (a copy of json) to send once the batch is published.
 * Writer thread. */
void commit_queue_event(struct engine *e, int64_t campaign_id, const char *type, const char *json);
/* Job attempts finished (worker thread): hand them to the writer. */
int commit_job_outcomes(void *ctx, struct db_job_update *upd, int n);

/* ---- intake.c ---- */
/* Finish a committed (or failed) donation on the writer thread: record its
 * key's answer and call its done. */
void intake_finish(struct engine *e, struct pending *p, int rc);
struct db_donation_row;
/* Read donation "dn_N" through the engine's reader. Returns 0 (with N in
 * *n), TALLY_ENODONATION or TALLY_EIO. */
int intake_donation_row(struct engine *e, const char *id, int64_t *n, struct db_donation_row *row);

/* ---- pools.c ---- */
/* The campaign's match banner as a JSON member (",\"match\":{...}" or
 * ",\"match\":null"). Any thread. */
int pools_banner_json(struct engine *e, const struct campaign_row *c, int64_t now, struct buf *out,
                      uint64_t *key, int *state);
/* The banner's key and state as pools_banner_json would set them now (0
 * and -1: no banner). */
uint64_t pools_banner_key(struct engine *e, const struct campaign_row *c, int64_t now, int *state);
/* The day's match pools (",\"match_pools\":[...]"): what the board shows.
 * Any thread. */
int pools_day_json(struct engine *e, int64_t now, struct buf *out);
/* Refuse a pool update whose amount is below what the pool has promised
 * by now (-ERANGE). Writer thread, in the writer's order. */
int pools_prepare(struct engine *e, struct db_op *op);
/* A committed pool op's answer: the pool as it is now. */
int pools_answer(struct engine *e, const struct db_op *op, struct buf *out);

/* ---- challenges.c ---- */
/* The campaign's standing in each challenge that covers it, as a JSON
 * member (",\"challenges\":[...]"). Any thread. */
int challenges_campaign_json(struct engine *e, const struct campaign_row *c, int64_t now,
                             struct buf *out);
/* A gift's success was applied: count it in the challenges and link the
 * awards it unlocks after op (the writer applies them next). Writer. */
void challenges_applied(struct engine *e, struct db_op *op);
/* A committed challenge: into the book, then the awards already due. */
void challenges_created(struct engine *e, const struct db_op *op);
/* A committed award: the campaign's bonus, and the console's event. */
void challenges_unlocked(struct engine *e, const struct db_op *op);
/* A committed challenge's answer: the challenge as it is now. */
int challenges_answer(struct engine *e, const struct db_op *op, struct buf *out);
/* ---- day_staff.c (writer thread) ---- */
/* A committed day op: the schedule, its seq, every campaign touched. */
void day_mirror(struct engine *e, const struct db_op *op);
/* At a tick: queue a touch when the day's phase changed with time.
 * Returns 1 when one is queued (the campaigns' own checks wait). */
int day_tick(struct engine *e, int64_t now);

/* ---- staff.c ---- */
/* Answer a committed (or failed) staff action on the writer thread. */
void staff_finish(struct engine *e, struct pending *p, int rc);

#endif
