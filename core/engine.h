/* core/engine.h - the donation engine: campaigns, donations, totals cache,
 * staff actions, and the job queues behind them.
 *
 * Every public read (a campaign's JSON, the list, the leaderboard) is served
 * from memory; every change goes through the writer thread and reaches the
 * cache only after it committed. Unless stated otherwise, functions may be
 * called from any thread. Where each function lives: the section headers
 * below name the file.
 *
 * THREADS
 *   API loop  (ws/, an lws thread) calls the API below; never blocks on
 *             the writer: writes answer through engine_done_fn. A
 *             donations export reads on a connection of its own, a
 *             bounded page at a time (export.c).
 *   live loop (ws/, another lws thread) reads campaigns, the leaderboard
 *             and the day's totals when a viewer subscribes; the rest it
 *             is sent by the listeners. For a staff console it reads the
 *             feed's numbers, and the history of a dead job it has not
 *             sent yet (engine_job_histories, through SQLite).
 *   writer    (db/writer.c) owns the write connection. After each COMMIT it
 *             runs commit.c, in this order: mirror the batch into each
 *             campaign's working copy -> publish.c: JSON, seq and numbers
 *             swapped in together under e->lock -> listeners (campaign
 *             changes, then gifts) -> job states released (new jobs ready,
 *             finished jobs leave `running`) -> done callbacks. So when a
 *             job has left `running`, or a done has run, everything before
 *             it is visible to every reader; engine_sync waits for that.
 *   workers   (core/jobs.c, per queue) run attempts; outcomes go to the
 *             writer as ops; they read donations through their own
 *             connection.
 *   captcha   (core/captcha.c, with --captcha) checks donors' CAPTCHA
 *             tokens on its own curl multi handle; hands each verdict to
 *             the API loop (ws/captcha.c), which then calls the API
 *             above as for any gift.
 *   console   (tui/) reads through engine_campaign_infos/engine_get_stats and
 *             acts through the *_sync calls.
 *   main      opens and frees the engine; the demo feeder donates.
 * LOCKS (none is held while calling out of the engine, but for the
 * read-connection lock around the listing callbacks of engine_audit_each
 * and engine_jobs_each; none is taken while another is held, except the
 * log's lock in base/log.c, a leaf)
 *   e->lock         the campaign table, every campaign's published half
 *                   (pub, json, rank, rate), the rankings, e->version,
 *                   e->seq_sum and the engine's counters.
 *   e->reader_lock  the engine's read connection (donation, audit and job
 *                   history reads).
 *   e->pool_lock    the pool of pending operations.
 *   tokens lock     (core/tokens.c) the staff token table; taken by the API
 *                   and live loops to tell who a bearer is, by the writer
 *                   when a token change commits or the table is read again.
 *   jobs lock       (core/jobs.c) every queue's lists; taken by workers, by
 *                   commit.c when releasing job states, and by staff reads.
 *   socks_lock      (core/jobs.c, one per job worker) the sockets curl opened
 *                   for the worker; taken by curl's socket callbacks and by
 *                   jobs_stop, which cuts them at its deadline. A leaf.
 *   writer lock     (db/writer.c) the writer's FIFO and stats.
 *   idem lock       (core/idem.c) the recent idempotency keys.
 *   shield lock     (core/shield.c) the card-testing shield's counts, blocks
 *                   and the clients of gifts awaiting capture; taken by the
 *                   API loop per donation, the payments workers per capture,
 *                   staff, and the console feed (at most once a second per
 *                   console), with no other lock held.
 *   captcha lock    (core/captcha.c) the verifier's FIFO, its count in
 *                   flight and its counters; taken by the API loop and
 *                   the captcha thread. A leaf.
 */
#ifndef TALLY_CORE_ENGINE_H
#define TALLY_CORE_ENGINE_H

#include "base/buf.h"
#include "base/err.h"
#include "base/fee.h"
#include "base/model.h"

#include <stddef.h>
#include <stdint.h>

struct jobs_config;

struct engine_config {
	const char *db_path;
	const char *synchronous; /* "FULL" (default) or "NORMAL" */
	struct donation_limits limits;
	/* The processing fee donors may cover (--fee); all 0: not offered. */
	struct fee_rule fee;
	size_t max_queue; /* intake queue bound */
	size_t max_batch; /* operations per transaction */
	/* The queues' policies and handlers (the composition root sets them
	 * up; they outlive the engine). */
	const struct jobs_config *jobs;
	/* Filled by engine_open with this database's installation id before
	 * the workers start (the handlers' idempotency keys use it); NULL
	 * when nobody needs it. At least 40 bytes. */
	char *install_id;
	int64_t job_retention_ms; /* delete done jobs older than this */
	/* The startup token (TALLY_ADMIN_TOKEN or the token file): an admin
	 * named "admin", kept in memory only (its SHA-256), never revoked
	 * through the API. NULL or "" for none; read by engine_open only. */
	const char *admin_token;
	int jobs_paused_at_start; /* tests: workers start stopped */
	/* The card-testing shield (core/shield.h), owned by the composition
	 * root and outliving the engine; NULL: none. The engine notes each
	 * online gift's client in it at admission. */
	struct shield *shield;
};

/* Fill cfg with defaults (./tally.db, FULL, 1.00 to 1,000,000.00, ...). */
void engine_config_defaults(struct engine_config *cfg);

struct engine;

/* Events, delivered on the writer thread after the change committed. Keep
 * them short: copy what you need and hand it to your own thread. */
struct engine_listener {
	/* A campaign's public state changed (totals, status, settings). */
	void (*campaign_changed)(void *ctx, int64_t campaign_id, uint64_t seq);
	/* A live event on the campaign: type "donation" (a public gift
	 * succeeded: json is the event's "data" object - name, amount_cents
	 * and matched_cents unless hidden, message, at) or "challenge" (the
	 * campaign unlocked a challenge's bonus: challenge, name, sponsor,
	 * bonus_cents, at). */
	void (*event)(void *ctx, int64_t campaign_id, const char *type, const char *json,
	              size_t len);
	/* A batch was published and the calls above for it are done (the
	 * leaderboard and the day's totals may have moved). */
	void (*published)(void *ctx);
	void *ctx;
};

/* The answer to an asynchronous call, on the writer thread after its
 * commit (valid during the call only). */
enum engine_answer_kind {
	ANSWER_PLAIN,  /* body (if any) is the whole answer */
	ANSWER_QUEUE,  /* a queue action: queue, retried */
	ANSWER_JOB,    /* a job action: job_id, job_queue, job_state */
	ANSWER_REFUND, /* a refund asked for: donation_id, job_id */
	ANSWER_TOKEN,  /* a staff token added or revoked: token, secret */
};

struct engine_answer {
	int rc;           /* 0 or a tally error (then nothing below is set) */
	int replayed;     /* a donation: this is the answer to an earlier request
	                   * with the same key, which the database remembered */
	const char *body; /* JSON: a donation's 202, a campaign's public state */
	size_t len;
	enum engine_answer_kind kind;
	const struct job_queue_info *queue; /* ANSWER_QUEUE: after the action */
	int64_t retried;                    /* ANSWER_QUEUE: jobs made ready */
	int64_t job_id;                     /* ANSWER_JOB, ANSWER_REFUND */
	enum job_queue job_queue;           /* ANSWER_JOB */
	enum job_state job_state;           /* ANSWER_JOB: JOB_GONE if discarded */
	int64_t donation_id;                /* ANSWER_REFUND */
	const struct staff_token *token;    /* ANSWER_TOKEN: as it is now */
	const char *secret;                 /* ANSWER_TOKEN: a new token's
	                                     * secret, shown this once; NULL
	                                     * after a revoke */
};

typedef void (*engine_done_fn)(void *ud, const struct engine_answer *a);

/* ---- engine.c ---- */

/* Open the database, rebuild the cache and start the writer and the job
 * workers. Returns 0, TALLY_ELOCKED (another tally has the database) or
 * another error, with a message in err. */
int engine_open(const struct engine_config *cfg, struct engine **out, char *err, size_t errcap);

/* Register a listener (at most 8; from one thread, the one that opened
 * the engine). Events from batches committed before this call are not
 * delivered to it. Returns 0 or -ENOSPC. */
int engine_add_listener(struct engine *e, const struct engine_listener *l);

/* Wait until everything submitted to the writer before this call has
 * committed, been published, told to the listeners, released its jobs and
 * been answered (a no-op through the writer: a test's barrier). Returns 0
 * or TALLY_ESHUTDOWN. Never from the writer thread. */
int engine_sync(struct engine *e);

/* Wait until queue q has nothing ready, running, held or waiting to retry,
 * at most timeout_ms. Returns 0 or -ETIMEDOUT. Tests and the console. */
int engine_jobs_wait_idle(struct engine *e, enum job_queue q, int timeout_ms);

/* Answer everything still waiting for the writer with TALLY_ESHUTDOWN
 * instead of committing it (a drain out of time). */
void engine_refuse_queued(struct engine *e);

/* Stop accepting, commit everything queued, stop the writer, free e. */
void engine_free(struct engine *e);

/* ---- intake.c: donations ---- */

/* Record a donation to the campaign `slug`. idem_key (NULL or "" for none,
 * at most TALLY_IDEM_KEY_MAX bytes, else TALLY_EIDEM_KEY) makes retries
 * safe: the same key with the same request answers the first response
 * again, with a different request TALLY_EIDEM_REUSED, while the first is in
 * flight TALLY_EIDEM_BUSY. Returns 0 with *replayed = 1 when the first
 * response was appended to replay now (done is not called), 0 with
 * *replayed = 0 when queued (done runs once it committed or failed, with
 * a->replayed when the database already knew the key), or an error now
 * (done is not called): among them TALLY_ETOTAL when the amount would
 * take the campaign's gifts (raised, pending and in flight) past
 * TALLY_TOTAL_MAX, and TALLY_EOVERLOADED when the writer's
 * queue is full or when the key's bucket of recent keys is full of gifts
 * still in flight (see core/idem.c). */
int engine_donate(struct engine *e, const char *slug, const struct donation_req *req,
                  const char *idem_key, struct buf *replay, int *replayed, engine_done_fn done,
                  void *ud);

/* The same for a gift from a client (its address, user agent and page,
 * any NULL): noted in the shield with the gift's id once admitted, for
 * the processor's client signals and the shield's counts. */
struct gift_client {
	const char *addr, *user_agent, *page;
};

int engine_donate_from(struct engine *e, const char *slug, const struct donation_req *req,
                       const struct gift_client *client, const char *idem_key, struct buf *replay,
                       int *replayed, engine_done_fn done, void *ud);

/* The first answer of a gift whose idempotency key (and request) tally
 * knows, appended to replay with *replayed set; nothing is admitted. For
 * a gift the shield would refuse: a retry of one acknowledged before
 * still gets its 202. Returns 0 (*replayed 0 when the key is new, busy or
 * another request's) or TALLY_EOVERLOADED/TALLY_EIO. */
int engine_donate_replay(struct engine *e, const char *slug, const struct donation_req *req,
                         const char *idem_key, struct buf *replay, int *replayed);

/* The shield of cfg.shield (NULL: none). */
struct shield *engine_shield(struct engine *e);

/* Record an offline gift (a cheque, cash, a donor-advised fund) that
 * staff received, to the campaign `slug`: stored succeeded at once with
 * source 'offline', counted in the campaign's numbers in the same commit
 * as a succeeded online gift is (effect_rules[EFFECT_OFFLINE]), its live
 * donation event sent when public, its receipt (req->receipt, and an
 * email) and donation.succeeded webhooks queued in the same transaction.
 * Never charged. Audited as offline_gift under actor. A campaign that is
 * paused or outside its schedule takes it (staff record what came in);
 * a closed one answers TALLY_ECLOSED. req->d.currency "" takes the
 * campaign's. idem_key works as engine_donate's (its fingerprint is the
 * offline gift's: the same key on a public donation is a reuse); the
 * answer's body (and every replay of it) is the 201 JSON. Returns as
 * engine_donate does, TALLY_ECURRENCY and TALLY_ETOTAL included. */
int engine_offline_gift(struct engine *e, const char *slug, const struct offline_req *req,
                        const char *idem_key, const char *actor, struct buf *replay, int *replayed,
                        engine_done_fn done, void *ud);
/* The same, waiting for the answer (the console's thread): 0 or an error;
 * the new gift's id ("dn_N") in id when not NULL. */
int engine_offline_gift_sync(struct engine *e, const char *slug, const struct offline_req *req,
                             const char *actor, char *id, size_t idcap);

/* The configured donation limits (valid while e lives). */
const struct donation_limits *engine_limits(struct engine *e);

/* Append a donation's public JSON (id, campaign, status, amount unless
 * hidden, currency, created_at, reason when failed or refunded) when token
 * is its status token (the one its 202 showed). Reads SQLite on the calling
 * thread through the engine's read connection. Returns 0, TALLY_EIO, or
 * TALLY_ENODONATION for an unknown id and equally for a NULL, empty or
 * wrong token and for gifts recorded before status tokens existed (tokens
 * are compared in constant time). */
int engine_donation_json(struct engine *e, const char *id, const char *token, struct buf *out);

/* Append a donation's JSON for staff: the public fields (amount_cents
 * even when hidden), then donor {name, email}, anonymous, hide_amount,
 * message, processor_ref, receipt_sent_at, refund_requested_at (null when
 * none) and has_status_token. Never the token itself. Returns 0,
 * TALLY_ENODONATION or TALLY_EIO. */
int engine_donation_staff_json(struct engine *e, const char *id, struct buf *out);

/* ---- staff.c: staff actions (each is audited under its actor) ---- */

/* Create a campaign from a validated spec (has_slug/name/currency set). */
int engine_campaign_create(struct engine *e, const struct campaign_spec *spec, const char *actor,
                           engine_done_fn done, void *ud);

/* Apply the fields of spec that are set to campaign `slug`. */
int engine_campaign_update(struct engine *e, const char *slug, const struct campaign_spec *spec,
                           const char *actor, engine_done_fn done, void *ud);

/* Pause, resume or close a campaign. action is "pause", "resume" or "close".
 * Repeating an action is a success (staff retries are harmless). Returns
 * TALLY_ECLOSED for pause/resume of a closed campaign, TALLY_ESTATE for
 * an unknown action. The answer's body is the campaign's new public JSON. */
int engine_campaign_action(struct engine *e, const char *slug, const char *action,
                           const char *actor, engine_done_fn done, void *ud);

/* ---- pools.c: match pools (admin) ----
 * Create a pool from a validated spec (its campaigns found by slug:
 * TALLY_ENOCAMPAIGN; each must take the pool's currency, which defaults to
 * theirs: TALLY_EPOOL_CURRENCY), change the given fields of one (an amount
 * below what it has promised: TALLY_EPOOL_AMOUNT, checked again in the
 * writer's order), or pause, resume or deplete it (depleting ends it for
 * good: TALLY_ESTATE for anything else then). TALLY_ENOPOOL,
 * TALLY_EPOOL_EXISTS. The answer's body is the pool's JSON. Any thread. */
int engine_pool_create(struct engine *e, const struct pool_spec *spec, const char *actor,
                       engine_done_fn done, void *ud);
int engine_pool_update(struct engine *e, const char *slug, const struct pool_spec *spec,
                       const char *actor, engine_done_fn done, void *ud);
int engine_pool_action(struct engine *e, const char *slug, const char *action, const char *actor,
                       engine_done_fn done, void *ud);
/* Every pool, or one (TALLY_ENOPOOL), as staff see it: settings, state,
 * remaining, reserved and used. Returns 0 or a negative code. */
int engine_pools_json(struct engine *e, struct buf *out);
int engine_pool_json(struct engine *e, const char *slug, struct buf *out);

/* ---- challenges.c: challenges (admin) ----
 * Create one from a validated spec (campaigns by slug: TALLY_ENOCAMPAIGN;
 * one currency: TALLY_EPOOL_CURRENCY; TALLY_ECHALLENGE_EXISTS). Campaigns
 * that reached it before it existed unlock it at once. The answer's body
 * is its JSON. Any thread. */
int engine_challenge_create(struct engine *e, const struct challenge_spec *spec, const char *actor,
                            engine_done_fn done, void *ud);
/* Every challenge, or one (TALLY_ENOCHALLENGE), with its awards and the
 * campaigns closest to it. Returns 0 or a negative code. */
int engine_challenges_json(struct engine *e, struct buf *out);
int engine_challenge_json(struct engine *e, const char *slug, struct buf *out);
/* Blocking forms of the two creates (start-up code: the demo). */
int engine_pool_create_sync(struct engine *e, const struct pool_spec *spec, const char *actor);
int engine_challenge_create_sync(struct engine *e, const struct challenge_spec *spec,
                                 const char *actor);

/* Raise ("raise") or lower ("lower") the card-testing shield on every
 * campaign (core/shield.h), at once, and audit it under actor (written
 * in the background: the shield lives in memory, and a restart brings it
 * down). Returns 1 when that changed the shield, 0 when it was already
 * so, TALLY_ESTATE for another action or without a shield, TALLY_EIO
 * when the audit could not be queued (the shield changed all the same). */
int engine_shield_action(struct engine *e, const char *action, const char *actor);

/* Blocking helpers for start-up code and tests: run the call and wait. */
int engine_campaign_create_sync(struct engine *e, const struct campaign_spec *spec,
                                const char *actor);
int engine_campaign_action_sync(struct engine *e, const char *slug, const char *action,
                                const char *actor);

/* Blocking forms of engine_queue_action and engine_job_action for the
 * console thread: run the action and wait for its commit. */
int engine_queue_action_sync(struct engine *e, const char *name, const char *action,
                             const char *actor);
int engine_job_action_sync(struct engine *e, int64_t id, const char *action, const char *actor);

/* Pause, resume (persisted) or retry-dead a queue. TALLY_ENOQUEUE,
 * TALLY_ESTATE for an unknown action. */
int engine_queue_action(struct engine *e, const char *name, const char *action, const char *actor,
                        engine_done_fn done, void *ud);

/* "retry" or "discard" job id. TALLY_ENOJOB, TALLY_EJOBBUSY, or
 * TALLY_ESTATE when the action does not apply to its state. */
int engine_job_action(struct engine *e, int64_t id, const char *action, const char *actor,
                      engine_done_fn done, void *ud);

/* Ask the processor to refund a succeeded donation ("dn_N"); it becomes
 * refunded when the refund job succeeds. TALLY_ENODONATION,
 * TALLY_EOFFLINE for an offline gift (it never went through the
 * processor), or TALLY_ESTATE when not succeeded or already being
 * refunded. */
int engine_refund(struct engine *e, const char *id, const char *reason, const char *actor,
                  engine_done_fn done, void *ud);
/* The same, waiting for the answer (the console's thread). */
int engine_refund_sync(struct engine *e, const char *id, const char *reason, const char *actor);

/* Call cb for the newest limit audit entries, newest first (a non-zero
 * return stops the walk). cb runs under the engine's read-connection lock:
 * it must not call the engine. Returns 0, TALLY_EIO, or cb's return. */
int engine_audit_each(struct engine *e, int limit, int (*cb)(void *ud, const struct audit_entry *a),
                      void *ud);

/* A queue's counters. */
void engine_queue_info(struct engine *e, enum job_queue q, struct job_queue_info *out);

/* Call cb for up to limit jobs of queue q in state st: done jobs from
 * SQLite (newest first; cb runs under the read-connection lock and must not
 * call the engine), the others from memory (oldest first, copied first).
 * Returns 0, TALLY_EIO, -ENOMEM, or cb's return. */
int engine_jobs_each(struct engine *e, enum job_queue q, enum job_state st, int limit,
                     int (*cb)(void *ud, const struct job_record *j), void *ud);

/* Read the failed attempts of the n jobs ids[] (see struct job_history)
 * into out[], from SQLite: they are not kept in memory, where a long outage
 * would hold ten errors for each of its many jobs. out[i].n is 0 for a job
 * with none, or gone. Takes the read-connection lock a few jobs at a time,
 * so a long list does not hold up the donations' reads; any thread, never
 * under another engine lock (nor from engine_jobs_each's callback on done
 * jobs). Returns 0, TALLY_EIO, or -ENOMEM. */
int engine_job_histories(struct engine *e, const int64_t *ids, size_t n, struct job_history *out);

/* Append the jobs' Prometheus lines. */
int engine_jobs_metrics(struct engine *e, struct buf *out);

/* ---- day_staff.c: the giving day's schedule (core/day.h has its rules) ---- */

/* Set the giving day's schedule from a validated day (d->set 1, early_at 0
 * or before opens_at, opens_at before closes_at, currency "" or a code):
 * it replaces any before, and every campaign's status follows it from the
 * answer on. Audited as day.set. TALLY_EFIELDS when the times are out of
 * order; TALLY_EDAY_CURRENCY (nothing written) when d->currency is set and
 * a campaign has another. The answer's body is engine_day_json's. */
int engine_day_set(struct engine *e, const struct giving_day *d, const char *actor,
                   engine_done_fn done, void *ud);

/* Remove the schedule: gifts follow the campaigns' own windows only.
 * Without a schedule it is a success that changes nothing (no audit row).
 * The answer's body is engine_day_json's. */
int engine_day_clear(struct engine *e, const char *actor, engine_done_fn done, void *ud);

/* engine_day_set, waiting for the answer (start-up code: the demo). */
int engine_day_set_sync(struct engine *e, const struct giving_day *d, const char *actor);

/* Copy the schedule as published (out->set 0: none). */
void engine_day_get(struct engine *e, struct giving_day *out);

/* 1 if a campaign in currency may exist under the day's schedule (no day,
 * no day currency, or the same one). */
int engine_day_currency_ok(struct engine *e, const char *currency);

/* ---- staff.c: staff tokens ---- */

/* Who a bearer is, from memory (no SQLite read): see tokens_auth. Returns
 * 0 with *out, or -ENOENT (unknown or revoked: *out is role STAFF_PUBLIC).
 * Any thread. */
int engine_staff_auth(struct engine *e, const char *bearer, size_t len, struct staff_identity *out);

/* Add staff token name (validate_token_name) with role: a new secret from
 * getrandom(), of which only the SHA-256 is stored. The answer
 * (ANSWER_TOKEN) carries the token and its secret, the only time it is
 * shown; the token works from then on. TALLY_ETOKEN_EXISTS when the name
 * is taken (without regard to case, revoked tokens and the startup
 * token's included), TALLY_EFIELDS for a bad name or role. */
int engine_token_add(struct engine *e, const char *name, enum staff_role role, const char *actor,
                     engine_done_fn done, void *ud);

/* Revoke staff token name: it stops working once the answer comes
 * (ANSWER_TOKEN, with when it was revoked). Revoking a revoked token is a
 * success that changes nothing. TALLY_ENOTOKEN, or TALLY_ESTARTUP for
 * the startup token. */
int engine_token_revoke(struct engine *e, const char *name, const char *actor, engine_done_fn done,
                        void *ud);

/* Copy every staff token (never a secret or hash; the startup token first)
 * into a malloc'd array the caller frees. Returns the count or -ENOMEM. */
long engine_tokens_list(struct engine *e, struct staff_token **out);

/* ---- campaigns.c: reads, all from memory ---- */

/* Append campaign `slug`'s public JSON to out and store the seq that JSON
 * shows. Returns 0, TALLY_ENOCAMPAIGN or -ENOMEM. */
int engine_campaign_json(struct engine *e, const char *slug, size_t slug_len, struct buf *out,
                         uint64_t *seq);

/* Same by id (for live channels). */
int engine_campaign_json_by_id(struct engine *e, int64_t id, struct buf *out, uint64_t *seq);

/* Look up a campaign id by slug. Returns the id (> 0) or TALLY_ENOCAMPAIGN. */
int64_t engine_campaign_id(struct engine *e, const char *slug, size_t slug_len);

/* Append {"campaigns":[...],"next":...} with up to limit campaigns whose id is
 * greater than after (a cursor). *version is a counter that changes whenever
 * any campaign changes (for ETags). */
int engine_campaign_list_json(struct engine *e, int64_t after, int limit, struct buf *out,
                              uint64_t *version);

enum engine_rank { ENGINE_BY_TOTAL, ENGINE_BY_DONORS };

/* The overall leaderboard: engine_board_json over every campaign, in the
 * only currency they use (no entries when they use several). */
int engine_leaderboard_json(struct engine *e, enum engine_rank by, int limit, struct buf *out,
                            uint64_t *version);

/* ---- boards.c: leaderboards by category and currency ---- */

/* Which campaigns a leaderboard covers. category NULL or "": every
 * campaign, else those whose category is exactly this (byte for byte).
 * currency NULL or "": the one currency the covered campaigns use. */
struct engine_board_query {
	enum engine_rank by;
	int limit; /* entries at most */
	const char *category;
	const char *currency;
	int empty_ok; /* a category no campaign has: a board with no entries,
	               * not TALLY_ENOCATEGORY (a live channel whose
	               * category emptied) */
};

/* Append {"by","category" (null for all),"currency" (null when not
 * determined),"currencies":[the covered campaigns' currencies, sorted],
 * "entries":[{rank (1.. within the board),slug,name,category,currency,
 * total_cents,raised_cents,matched_cents,bonus_cents,donor_count,
 * goal_cents,status}...]}: the top `limit` covered campaigns in the
 * board's currency, from the kept ranking (never sorted per call; one walk
 * at most). Amounts of two currencies are never compared: without a
 * currency asked for, when the covered campaigns use several, the board
 * has no entries and *needs_currency is 1 (the API answers 400
 * currency_required). A currency nobody uses gives no entries. *version is
 * the sum of every campaign's seq: it grows with every change (a category
 * changed too), across restarts, so it serves as the board's seq and ETag.
 * Returns 0, TALLY_ENOCATEGORY (no campaign has the category) or
 * -ENOMEM. */
int engine_board_json(struct engine *e, const struct engine_board_query *q, struct buf *out,
                      uint64_t *version, int *needs_currency);

/* 0 when some campaign has category (NULL: any) and currency (NULL: any),
 * else TALLY_ENOCATEGORY (none has the category) or TALLY_ECURRENCY (none
 * of them uses the currency). A live channel is made only for a board
 * that passes. */
int engine_board_exists(struct engine *e, const char *category, const char *currency);

/* Append {"categories":[{"category","campaigns":N,"currencies":{"USD":
 * {"campaigns","total_cents","raised_cents","donor_count"},...}}...]}:
 * every category some campaign has, in byte order, with its sums per
 * currency (never added across currencies; campaigns without a category
 * are not listed). *version as engine_board_json's. Returns 0 or
 * -ENOMEM. */
int engine_categories_json(struct engine *e, struct buf *out, uint64_t *version);

/* Append the giving day's public state: its schedule {"name", "early_at",
 * "opens_at", "closes_at" (null when not set), "phase"
 * (none|before|early|open|closed), "now" and "now_ms" (the server's clock
 * as rendered), "opens_in_ms" (0 once open)}, then its money and counts
 * {"total_cents", "raised_cents", "matched_cents", "bonus_cents",
 * "currency", "by_currency", "donor_count", "donation_count",
 * "gifts_per_min", "campaigns_live", "campaigns"} and "match_pools", and
 * store its seq (the sum of every campaign's seq plus the day's own: it
 * only grows, across restarts too). Money is never added across
 * currencies: by_currency holds each currency's sums ({"USD":
 * {"total_cents",...}}); when every campaign uses one currency its sums are
 * also at the top, and when they use several the top sums are null.
 * "currency" is the day's when the schedule sets one, else the one the
 * campaigns use, else null. Returns 0, -ENOMEM, or -EOVERFLOW when a sum
 * passes INT64_MAX / 3 (nothing appended). */
int engine_day_json(struct engine *e, struct buf *out, uint64_t *seq);

/* A row of the staff view. */
struct engine_campaign_info {
	struct campaign_row c;          /* as published (c.paused_since too) */
	enum campaign_status effective; /* after the schedule */
	double per_min;                 /* succeeded gifts, last minute */
	/* Succeeded gifts and their amount over the last hour (this minute
	 * and the 59 before it), from memory; refunds do not take them out. */
	int64_t hour_gifts, hour_cents;
};

struct engine_stats {
	int64_t uptime_s;
	int64_t donations_total; /* succeeded since start */
	double donations_per_s;  /* last 10 s */
	int64_t intake_depth;
	int64_t campaigns;
	int64_t idem_entries; /* idempotency keys held in memory */
	struct commit_stats commits;
};

/* Copy all campaigns into a malloc'd array (caller frees). Returns the count
 * or -ENOMEM. */
long engine_campaign_infos(struct engine *e, struct engine_campaign_info **out);

/* The same, only the campaigns whose published seq is not seen[id] (ids
 * from n_seen on are all copied): a reader that keeps the seqs it showed
 * copies only what changed. seen NULL: every campaign. */
long engine_campaign_infos_changed(struct engine *e, const uint64_t *seen, size_t n_seen,
                                   struct engine_campaign_info **out);

void engine_get_stats(struct engine *e, struct engine_stats *out);

/* ---- export.c: the donations export (staff) ---- */

/* An export reads through a read-only SQLite connection of its own, owned
 * by the thread that opened it (the API loop): bounded pages, no snapshot
 * held between them (db/export.h). */
struct engine_export;

/* Open an export of the gifts f takes (the caller resolved the campaign
 * with engine_campaign_id). Returns 0 with *out, -ENOMEM or TALLY_EIO. */
int engine_export_open(struct engine *e, const struct export_filter *f, struct engine_export **out);

/* The next gift into *row with *got = 1, or *got = 0 at the end of a page
 * (call again for the next one unless engine_export_finished). row's
 * strings stay valid until the next call. Returns 0, -ENOMEM or TALLY_EIO
 * (the export cannot go on). */
int engine_export_next(struct engine_export *x, struct export_row *row, int *got);

/* 1 once every gift of the export was read. */
int engine_export_finished(const struct engine_export *x);

/* Free x (NULL is fine), finished or not. */
void engine_export_close(struct engine_export *x);

#endif
