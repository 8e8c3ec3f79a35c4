/* db/writer.h - the one thread that writes to SQLite (group commit).
 *
 * Other threads submit operations; the writer takes everything queued,
 * applies it in one transaction and, only after COMMIT returned, hands the
 * whole batch to the batch_done hook. An operation is never acknowledged
 * before it is durable.
 */
#ifndef TALLY_DB_WRITER_H
#define TALLY_DB_WRITER_H

#include "base/model.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

enum db_op_kind {
	DB_OP_DONATION = 1,     /* insert a donation, bump campaign aggregates */
	DB_OP_CAMPAIGN_CREATE,  /* insert a campaign from u.campaign.spec */
	DB_OP_CAMPAIGN_UPDATE,  /* apply the given fields of u.campaign.spec */
	DB_OP_CAMPAIGN_STATUS,  /* set u.status */
	DB_OP_CAMPAIGN_TOUCH,   /* bump seq only (its public state changed by time) */
	DB_OP_JOB_UPDATE,       /* a job's new state and its effect (u.job) */
	DB_OP_QUEUE_PAUSE,      /* store a queue's pause switch (u.queue) */
	DB_OP_QUEUE_RETRY_DEAD, /* make every dead job of a queue ready (u.queue) */
	DB_OP_REFUND,           /* ask for a refund: insert its job (u.refund) */
	DB_OP_SYNC,             /* nothing: a barrier (engine_sync) */
	DB_OP_TOKEN_ADD,        /* insert a staff token (u.token) */
	DB_OP_TOKEN_REVOKE,     /* mark a staff token revoked (u.token) */
	DB_OP_POOL_CREATE,      /* insert a match pool (u.pool; its id out) */
	DB_OP_POOL_UPDATE,      /* store a match pool's settings and status (u.pool) */
	DB_OP_CHALLENGE_CREATE, /* insert a challenge (u.challenge; its id out) */
	DB_OP_AWARD,            /* a campaign unlocked a challenge's bonus (u.award) */
	DB_OP_OFFLINE,          /* insert an offline gift, succeeded and counted at
	                         * once (u.donation with u.donation.offline) */
	DB_OP_DAY,              /* the giving day's schedule (u.day) */
	DB_OP_KINDS
};

/* A job to insert, ready at once (its queue follows from its kind). */
struct db_new_job {
	int64_t id;
	enum job_kind kind;
	const char *url; /* NULL unless a webhook; outlives the op */
};

#define DB_MAX_NEW_JOBS 10

struct db_job_update {
	int64_t job_id;
	enum job_queue queue;
	enum job_kind kind;
	enum job_state state; /* ready, scheduled, done, dead; JOB_GONE deletes */
	int attempts;
	int64_t next_run_at;
	char error[256];
	/* An attempt that failed, appended to the job's history with error
	 * (the newest JOB_HISTORY_MAX kept): when it started (ms since the
	 * epoch) and how long it took. attempt_at 0: no attempt to remember
	 * (a success, a staff action). */
	int64_t attempt_at, attempt_ms;
	int done, failed; /* add to the queue's done_total / failed_total */
	enum job_effect effect;
	int64_t donation_id;
	char ref[128];    /* processor reference (succeeded) */
	char reason[200]; /* why it failed / was refunded */
	/* Inserted only when the effect applied (the donation changed state). */
	struct db_new_job follow[DB_MAX_NEW_JOBS];
	int n_follow;
	int applied;   /* out: the donation changed state */
	int new_donor; /* out: its donor's first succeeded gift here */
	/* The donation as stored: in when has_donation (the worker read it,
	 * which spares the writer a read), else out once applied. */
	int has_donation;
	int64_t campaign_id;
	int64_t created_at;
	int64_t pool_id, matched_cents; /* its match as reserved (0: none) */
	int match_released;             /* out (refunded): its pool was open, so the
	                                 * match went back to it */
	struct donation_req d;
};

/* What an offline gift adds to a donation op: how it came in, and its
 * receipt and webhook jobs, inserted with it. received_at 0: now_ms. */
struct db_offline {
	enum gift_method method;
	char note[TALLY_NOTE_SIZE];
	int64_t received_at;
	struct db_new_job follow[DB_MAX_NEW_JOBS];
	int n_follow;
};

/* A staff action, recorded in the audit table in the same transaction as
 * the change (actor "" = not a staff action). */
struct db_audit {
	char actor[TALLY_ACTOR_SIZE];
	char action[40];
	char target[128];
	char detail[256];
};

struct db_op {
	struct db_op *next; /* queue link, owned by the writer while queued */
	enum db_op_kind kind;
	int rc;              /* out: 0, -EEXIST (slug or token name taken), -ENOENT, -EIO... */
	int64_t campaign_id; /* in (donation, update, status); out (create) */
	int64_t now_ms;      /* in: creation time to record */
	union {
		struct {
			struct donation_req req; /* in */
			int64_t id;              /* in: donation id */
			int64_t job_id;          /* in: its capture job's id */
			char idem_key[256];      /* in: "" when none */
			int64_t idem_hash;       /* in: fingerprint of the request */
			int64_t idem_expired;    /* in: keys created before this (ms)
			                          * are free for reuse */
			int new_donor;           /* out: first gift of this email */
			int replay;              /* out: the key already named a
			                          * donation; fields below describe it
			                          * and nothing was written */
			int64_t prev_hash;
			int64_t prev_campaign_id;
			int64_t prev_amount_cents;
			int64_t prev_created_at;
			int64_t prev_matched_cents;
			int64_t prev_fee_cents;
			int64_t prev_received_at;
			int prev_offline; /* the earlier gift is an offline one */
			char prev_method[8];
			char prev_currency[4];
			/* in: the gift's status token; out (replay): the earlier
			 * gift's, "" when it has none */
			char status_token[TALLY_STATUS_TOKEN_SIZE];
			/* in: the match the gift reserved, set by the prepare
			 * hook in the writer's order (0, 0: none) */
			int64_t pool_id, matched_cents;
			/* DB_OP_OFFLINE only (job_id unused: no capture). */
			struct db_offline offline;
		} donation;
		struct campaign_spec campaign; /* in (create, update) */
		enum campaign_status status;   /* in (status) */
		struct db_job_update job;      /* in/out (job update) */
		struct {
			enum job_queue queue;
			int paused;
			int64_t changed; /* out: jobs made ready */
		} queue;
		struct {
			int64_t donation_id;
			char reason[200];
			struct db_new_job job;
		} refund;
		/* A staff token by name (matched without regard to case). An
		 * add fails with -EEXIST when the name is taken, a revoke with
		 * -ENOENT when no token has it; revoking a revoked token changes
		 * nothing and writes no audit row. */
		struct {
			char name[TALLY_STAFF_NAME_SIZE]; /* in; out (revoke): as stored */
			enum staff_role role;             /* in (add); out (revoke) */
			char hash[TALLY_STAFF_HASH_SIZE]; /* in (add): its secret's SHA-256 */
			int64_t created_at;               /* out (revoke) */
			int64_t revoked_at;               /* out (revoke): now, or before */
			int changed;                      /* out (revoke): 0 if revoked before */
		} token;
		/* The pool as it is to be stored (create: slug taken -EEXIST;
		 * update: no such id -ENOENT). */
		struct pool_row pool;
		/* create: slug taken -EEXIST */
		struct challenge_row challenge;
		/* The award row and the campaign's bonus_cents (an award
		 * already made: -EEXIST, nothing written). */
		struct {
			int64_t challenge_id, campaign_id, bonus_cents, donation_id;
		} award;
		/* The giving day: set (replace) or clear the schedule, or
		 * touch (its phase changed with time). Each bumps every
		 * campaign's seq (their status follows the day) and the day's
		 * own seq (meta day_seq). A set fails with -EXDEV when a
		 * campaign has another currency than day.currency (when not
		 * ""); a clear with no day changes nothing (changed 0, no
		 * audit row). */
		struct {
			enum db_day_action { DB_DAY_SET, DB_DAY_CLEAR, DB_DAY_TOUCH } action;
			struct giving_day day; /* in (set) */
			int changed;           /* out */
		} day;
	} u;
	struct db_audit audit;
	void *owner; /* caller's context, untouched by the writer */
};

/* Called on the writer thread after each batch with the batch in submission
 * order. commit_rc is 0 when the batch committed; otherwise every op's rc is
 * set to it. The hook takes ownership of the ops. */
struct db_writer_hooks {
	void (*batch_done)(void *ctx, struct db_op *ops, int commit_rc);
	/* Called on the writer thread about once a second (may be NULL). */
	void (*tick)(void *ctx);
	void *ctx;
	/* Called on the writer thread, at a tick, when another connection
	 * committed to the database since the last one (a command-line tool,
	 * say; PRAGMA data_version of the write connection), and at the
	 * first tick, for what committed before the writer started. May be
	 * NULL. */
	void (*changed_elsewhere)(void *ctx);
	/* Called on the writer thread for each op just before it is applied,
	 * in the writer's order (the one total order of everything): the
	 * engine decides what depends on that order here (a gift's match).
	 * A negative errno refuses the op: it is not applied and op->rc
	 * says why. If the op then fails or its batch does not commit,
	 * batch_done says so (op->rc, commit_rc). May be NULL. */
	int (*prepare)(void *ctx, struct db_op *op);
	/* Called on the writer thread right after op was applied (op->rc
	 * set), before the next op is prepared. It may link new ops after op
	 * (op->next): the writer applies them next, in the same transaction,
	 * and hands them to batch_done with the rest (a challenge unlocked by
	 * this gift's success). May be NULL. */
	void (*applied)(void *ctx, struct db_op *op);
};

struct db_writer;

/* Start the writer thread on conn (ownership passes to the writer, which
 * closes it). max_queue bounds the operations waiting; max_batch bounds one
 * transaction. Returns 0 or -errno. */
int db_writer_new(sqlite3 *conn, size_t max_queue, size_t max_batch,
                  const struct db_writer_hooks *hooks, struct db_writer **out);

/* Queue op. Any thread. Returns 0, -EAGAIN when the queue is full (the
 * caller answers "overloaded"), or -ESHUTDOWN once stopping. */
int db_writer_submit(struct db_writer *w, struct db_op *op);

/* Queue op even when the queue is full (staff actions must not be refused
 * by donor load). Returns 0 or -ESHUTDOWN. */
int db_writer_submit_force(struct db_writer *w, struct db_op *op);

/* Queue the n ops linked through next (first .. the one whose next is
 * NULL) at once, even when the queue is full. Returns 0 or -ESHUTDOWN. */
int db_writer_submit_list(struct db_writer *w, struct db_op *first, size_t n);

/* From now on, hand every operation that has not started to batch_done
 * with commit_rc -ESHUTDOWN instead of applying it (a drain that ran out of
 * time). Any thread. */
void db_writer_refuse(struct db_writer *w);

/* Delete done jobs older than ms (0 = keep them). Any thread. */
void db_writer_set_job_retention(struct db_writer *w, int64_t ms);

/* Call the tick hook again at at_ms (ms since the epoch, the wall clock),
 * as well as about once a second: a change of state due at an exact moment
 * then happens on time. The earliest asked for wins; a tick at or after it
 * clears it. Writer thread only (the hooks). */
void db_writer_tick_at(struct db_writer *w, int64_t at_ms);

/* Copy the counters. Any thread. */
void db_writer_stats(struct db_writer *w, struct commit_stats *out);

/* Commit everything queued, stop the thread, close the connection and free
 * w. Must not be called from the batch_done hook. */
void db_writer_free(struct db_writer *w);

/* Record op (and its audit row) on db in a transaction of its own, without
 * a writer thread: for a command-line tool beside a running server (WAL
 * and the busy timeout let both write) or without one. The caller keeps
 * db and op. Returns 0, with op->rc telling how the op itself went (-EEXIST
 * and the like: nothing written), or a negative errno with a message in
 * err (the transaction rolled back). */
int db_apply_now(sqlite3 *db, struct db_op *op, char *err, size_t errcap);

#endif
