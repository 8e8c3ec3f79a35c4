/* core/engine.h - the donation engine: campaigns, donations, totals cache.
 *
 * The engine owns the database writer and the in-memory cache. Every public
 * read (a campaign's JSON, the list) is served from memory; every change goes
 * through the writer thread and reaches the cache only after it committed.
 * Unless stated otherwise, functions may be called from any thread.
 */
#ifndef TALLY_CORE_ENGINE_H
#define TALLY_CORE_ENGINE_H

#include "base/buf.h"
#include "core/jobs.h"
#include "core/validate.h"
#include "core/work.h"
#include "db/writer.h"

#include <stddef.h>
#include <stdint.h>

/* Engine result codes (negative). */
enum engine_err {
	ENGINE_REPLAYED = 1, /* success: the answer to an earlier request
	                      * with the same idempotency key */
	ENGINE_OK = 0,
	ENGINE_ENOCAMPAIGN = -2000, /* 404 campaign_not_found */
	ENGINE_EPAUSED,             /* 409 campaign_paused */
	ENGINE_ECLOSED,             /* 409 campaign_closed (status or schedule) */
	ENGINE_ECURRENCY,           /* 422 currency differs from the campaign's */
	ENGINE_EOVERLOADED,         /* 503 overloaded: intake queue full */
	ENGINE_ESHUTDOWN,           /* 503 shutting down */
	ENGINE_EEXISTS,             /* 409 campaign_exists */
	ENGINE_ENODONATION,         /* 404 donation_not_found */
	ENGINE_ESTATE,              /* 409 the action does not apply in this state */
	ENGINE_EIO,                 /* 500 storage failure, nothing recorded */
	ENGINE_EIDEM_REUSED,        /* 422 idempotency_key_reused */
	ENGINE_EIDEM_BUSY,          /* 409 idempotency_key_in_use */
	ENGINE_ESCHEDULE,           /* 422 ends_at would not be after starts_at */
	ENGINE_ELOCKED,             /* another tally has this database open */
	ENGINE_ENOJOB,              /* 404 job_not_found */
	ENGINE_ENOQUEUE,            /* 404 queue_not_found */
	ENGINE_EJOBBUSY,            /* 409 job_running: an attempt is in flight */
};

struct engine_config {
	const char *db_path;
	const char *synchronous; /* "FULL" (default) or "NORMAL" */
	struct donation_limits limits;
	size_t max_queue; /* intake queue bound */
	size_t max_batch; /* operations per transaction */
	struct work_config work;                /* what the jobs do */
	struct job_policy policy[JOB_QUEUES];   /* per queue */
	int64_t job_retention_ms;               /* delete done jobs older than this */
	int jobs_paused_at_start;               /* tests: workers start stopped */
};

/* Fill cfg with defaults (./tally.db, FULL, 1.00 to 1,000,000.00, ...). */
void engine_config_defaults(struct engine_config *cfg);

struct engine;

/* Events, delivered on the writer thread after the change committed. Keep
 * them short: copy what you need and hand it to your own thread. */
struct engine_listener {
	/* A campaign's public state changed (totals, status, settings). */
	void (*campaign_changed)(void *ctx, int64_t campaign_id, uint64_t seq);
	/* A public gift succeeded: json is the "data" object of a donation
	 * event (name, amount_cents unless hidden, message, at). */
	void (*donation)(void *ctx, int64_t campaign_id, const char *json, size_t len);
	void *ctx;
};

/* Completion of an asynchronous call, on the writer thread. rc is ENGINE_OK
 * or an engine_err; body/len is the JSON answer (valid during the call). */
typedef void (*engine_done_fn)(void *ud, int rc, const char *body, size_t len);

/* Open the database, rebuild the cache and start the writer. Returns 0 or
 * -errno with a message in err. */
int engine_open(const struct engine_config *cfg, struct engine **out, char *err, size_t errcap);

/* Register a listener (before traffic starts; at most 8). Returns 0 or
 * -ENOSPC. */
int engine_add_listener(struct engine *e, const struct engine_listener *l);

/* Record a donation to the campaign `slug`. idem_key (NULL or "" for none,
 * at most 255 bytes) makes retries safe: the same key with the same request
 * answers the first response again, with a different request
 * ENGINE_EIDEM_REUSED, while the first is in flight ENGINE_EIDEM_BUSY.
 * Returns ENGINE_OK when queued (done runs once it committed or failed:
 * rc ENGINE_OK, ENGINE_REPLAYED when the database already knew the key, or
 * an error), ENGINE_REPLAYED with the first response appended to replay, or
 * an engine_err now (done is not called). */
int engine_donate(struct engine *e, const char *slug, const struct donation_req *req,
                  const char *idem_key, struct buf *replay, engine_done_fn done, void *ud);

/* Create a campaign from a validated spec (has_slug/name/currency set). */
int engine_campaign_create(struct engine *e, const struct campaign_spec *spec, const char *actor,
                           engine_done_fn done, void *ud);

/* Apply the fields of spec that are set to campaign `slug`. */
int engine_campaign_update(struct engine *e, const char *slug, const struct campaign_spec *spec,
                           const char *actor, engine_done_fn done, void *ud);

/* Pause, resume or close a campaign. action is "pause", "resume" or "close".
 * Repeating an action is a success (staff retries are harmless). Returns
 * ENGINE_ECLOSED for pause/resume of a closed campaign, ENGINE_ESTATE for
 * an unknown action. */
int engine_campaign_action(struct engine *e, const char *slug, const char *action,
                           const char *actor, engine_done_fn done, void *ud);

/* Blocking helpers for start-up code and tests: run the call and wait. */
int engine_campaign_create_sync(struct engine *e, const struct campaign_spec *spec,
                                const char *actor);
int engine_campaign_action_sync(struct engine *e, const char *slug, const char *action,
                                const char *actor);

/* Append campaign `slug`'s public JSON to out and store its seq. Returns 0,
 * ENGINE_ENOCAMPAIGN or -ENOMEM. */
int engine_campaign_json(struct engine *e, const char *slug, size_t slug_len, struct buf *out,
                         uint64_t *seq);

/* Same by id (for live channels). */
int engine_campaign_json_by_id(struct engine *e, int64_t id, struct buf *out, uint64_t *seq);

/* Look up a campaign id by slug. Returns the id (> 0) or ENGINE_ENOCAMPAIGN. */
int64_t engine_campaign_id(struct engine *e, const char *slug, size_t slug_len);

/* Append {"campaigns":[...],"next":...} with up to limit campaigns whose id is
 * greater than after (a cursor). *version is a counter that changes whenever
 * any campaign changes (for ETags). */
int engine_campaign_list_json(struct engine *e, int64_t after, int limit, struct buf *out,
                              uint64_t *version);

enum engine_rank { ENGINE_BY_TOTAL, ENGINE_BY_DONORS };

/* Append {"by":"total"|"donors","entries":[{slug,name,currency,total_cents,
 * donor_count,goal_cents}...]} with the top `limit` campaigns. The ranking
 * is kept sorted as totals change (never sorted per call). *version is the
 * sum of all campaigns' seqs: it grows with every change, across restarts
 * too, so clients can use it as the leaderboard's seq. */
int engine_leaderboard_json(struct engine *e, enum engine_rank by, int limit, struct buf *out,
                            uint64_t *version);

/* Append a donation's public JSON (id, campaign, status, amount unless
 * hidden, currency, created_at). Reads SQLite on the calling thread through
 * a private connection. Returns 0, ENGINE_ENODONATION or ENGINE_EIO. */
int engine_donation_json(struct engine *e, const char *id, struct buf *out);

/* A row of the staff view. */
struct engine_campaign_info {
	char slug[65];
	char name[513];
	char currency[4];
	char status[8];
	int64_t goal_cents, total_cents, pending_cents, donor_count, donation_count;
	double per_min;
};

struct engine_stats {
	int64_t uptime_s;
	int64_t donations_total; /* committed since start */
	double donations_per_s;  /* last 10 s */
	int64_t intake_depth;
	int64_t campaigns;
	uint64_t batches;
	uint64_t last_batch;
	int64_t idem_entries; /* idempotency keys held in memory */
	struct db_writer_stats writer;
};

/* Copy all campaigns into a malloc'd array (caller frees). Returns the count
 * or -ENOMEM. */
long engine_campaign_infos(struct engine *e, struct engine_campaign_info **out);

void engine_get_stats(struct engine *e, struct engine_stats *out);

/* The configured donation limits (valid while e lives). */
const struct donation_limits *engine_limits(struct engine *e);

/* Short English text for an engine_err. */
const char *engine_strerror(int rc);

/* Answer everything still waiting for the writer with ENGINE_ESHUTDOWN
 * instead of committing it (a drain out of time). Any thread. */
void engine_refuse_queued(struct engine *e);

/* ---- jobs and queues (staff) ---- */

/* Append {"queues":[{name, paused, ready, running, scheduled, dead, done,
 * failed, done_per_s, latency_ms_p50, latency_ms_p99, workers, inflight}]}. */
int engine_queues_json(struct engine *e, struct buf *out);

/* One queue's object; ENGINE_ENOQUEUE when unknown. */
int engine_queue_json(struct engine *e, const char *name, struct buf *out);

/* Pause, resume (persisted) or retry-dead a queue. */
int engine_queue_action(struct engine *e, const char *name, const char *action,
                        const char *actor, engine_done_fn done, void *ud);

/* Append {"jobs":[...]} of queue in state (ready|running|scheduled|dead|
 * done), at most limit. Done jobs come from SQLite, the rest from memory. */
int engine_jobs_json(struct engine *e, const char *queue, const char *state, int limit,
                     struct buf *out);

/* "retry" or "discard" job id. ENGINE_ENOJOB, ENGINE_EJOBBUSY, or
 * ENGINE_ESTATE when the action does not apply to its state. */
int engine_job_action(struct engine *e, int64_t id, const char *action, const char *actor,
                      engine_done_fn done, void *ud);

/* Ask the processor to refund a succeeded donation ("dn_N"); it becomes
 * refunded when the refund job succeeds. ENGINE_ENODONATION, or
 * ENGINE_ESTATE when not succeeded or already being refunded. */
int engine_refund(struct engine *e, const char *id, const char *reason, const char *actor,
                  engine_done_fn done, void *ud);

/* Append {"entries":[{id, at, actor, action, target, detail}]}, newest
 * first. */
int engine_audit_json(struct engine *e, int limit, struct buf *out);

/* Append the jobs' Prometheus lines. */
int engine_jobs_metrics(struct engine *e, struct buf *out);

/* A queue's counters (console). */
void engine_queue_info(struct engine *e, enum job_queue q, struct job_queue_info *out);

/* Up to max jobs of queue q in state st, oldest first (console). Returns
 * the count. */
int engine_jobs_list(struct engine *e, enum job_queue q, enum job_state st,
                     struct job_brief *out, int max);

/* Blocking forms of engine_queue_action and engine_job_action for the
 * console thread: run the action and wait for its commit. */
int engine_queue_action_sync(struct engine *e, const char *name, const char *action,
                             const char *actor);
int engine_job_action_sync(struct engine *e, int64_t id, const char *action, const char *actor);

/* Stop the job workers at a job boundary (at most wait_ms for attempts in
 * flight). engine_free does it too. */
void engine_stop_jobs(struct engine *e, int wait_ms);

/* Stop accepting, commit everything queued, stop the writer, free e. */
void engine_free(struct engine *e);

#endif
