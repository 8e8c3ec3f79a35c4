/* core/jobs.h - durable background jobs: queues, worker pools, retries.
 *
 * SQLite holds every job (db/ writer); this module holds the live view: per
 * queue a FIFO of ready jobs, a heap of jobs waiting to retry, the running
 * and the dead, and a pool of worker threads. A job moves between states in
 * memory only once the writer committed the move, so memory never runs
 * ahead of the database. Workers finish attempts through jobs_hooks, which
 * sends the outcome to the writer; jobs_committed applies it afterwards.
 */
#ifndef TALLY_CORE_JOBS_H
#define TALLY_CORE_JOBS_H

#include "base/buf.h"
#include "base/model.h"
#include "db/db.h"
#include "db/writer.h"

#include <curl/curl.h>
#include <stdint.h>

#define JOB_MAX_ENDPOINTS 8

/* How long a stop lets attempts in flight finish (jobs_stop's wait_ms at
 * exit). tally promises to exit within 5 s of SIGTERM: the API's drain
 * comes first (about 0.1-0.3 s) and the writer's last commit and checkpoint
 * after, so the attempts get 3 s and a hanging endpoint cannot use the
 * rest. */
#define JOBS_STOP_WAIT_MS 3000

/* The delay before the next attempt after `attempts` failed ones:
 * d = min(backoff_max, backoff * 2^(attempts-1)), then a uniform jitter in
 * [d/2, d] from r in [0, 1). */
int64_t job_backoff_ms(const struct job_policy *p, int attempts, double r);

struct job {
	int64_t id, donation_id, created_at;
	int64_t next_run_at;     /* ms: when a scheduled job is due */
	int64_t ready_ns;        /* monotonic: when it became ready (queue latency) */
	struct job *prev, *next; /* state list (ready, running, dead, held) */
	struct job *hnext;       /* id hash chain */
	size_t heap_i;           /* scheduled: index in the queue's heap */
	char *last_error;
	int attempts;
	uint8_t queue, kind, state, held_from, endpoint;
};

enum job_result_kind { JOB_OK, JOB_RETRY, JOB_FAIL };

struct job_result {
	enum job_result_kind kind;
	char error[256];      /* why it failed (RETRY, FAIL) */
	char ref[128];        /* processor reference (OK) */
	char fingerprint[64]; /* a capture's card, when the processor named it */
};

/* One attempt in flight on a worker thread. A handler either fills result
 * at once, or asks for a delay, or starts an HTTP/SMTP transfer. */
struct job_run {
	struct job *job;
	struct db_job_donation don; /* the job's donation, read before start */
	struct job_result result;
	uint64_t started_ns; /* monotonic: when the attempt started */
	/* Async: */
	uint64_t due_ns;      /* JOB_RUN_DELAY: deliver result then */
	uint64_t deadline_ns; /* the attempt's time limit (policy timeout_ms):
	                       * the worker gives each transfer what is left */
	CURL *easy;           /* JOB_RUN_CURL: the transfer (the worker runs it) */
	/* The transfer ended: fill result and return JOB_RUN_DONE, or set
	 * up the next transfer of the same attempt on r->easy (reset) and
	 * return JOB_RUN_CURL. */
	int (*finish)(struct job_run *r, CURLcode rc);
	/* The handler's per-attempt state (its own struct), or NULL. start
	 * sets state_free with it; the worker calls state_free(state) when
	 * the attempt ends, after cleaning up easy (which may point into the
	 * state: headers, buffers, callbacks' data). */
	void *state;
	void (*state_free)(void *state);
	struct job_run *next, *prev; /* the worker's timers or transfers */
};

enum { JOB_RUN_DONE = 0, JOB_RUN_DELAY = 1, JOB_RUN_CURL = 2 };

struct job_handler {
	/* Start r (r->job, r->don set). Returns JOB_RUN_DONE with r->result
	 * filled, JOB_RUN_DELAY with r->result and r->due_ns, or JOB_RUN_CURL
	 * with r->easy and r->finish set. Whatever it returns, it may leave
	 * per-attempt state in r->state with r->state_free. */
	int (*start)(void *ctx, struct job_run *r);
	/* Optional: r's result is final, delivered now (after a delay or a
	 * transfer, as the answer would reach tally), just before it is
	 * recorded. Must not block. */
	void (*ended)(void *ctx, const struct job_run *r);
	void *ctx;
};

struct jobs_config {
	struct job_policy policy[JOB_QUEUES];
	struct job_handler handler[JOB_QUEUES];
	int n_endpoints;                         /* webhook endpoints */
	const char *endpoint[JOB_MAX_ENDPOINTS]; /* their URLs (outlive jobs) */
	/* Attempts running at once for one endpoint, over all the webhooks
	 * workers (0: no cap); its other jobs wait ready. */
	int per_endpoint;
	int receipts; /* 0: no receipt jobs */
};

struct jobs_hooks {
	/* Attempts finished (a worker thread): record the n outcomes in
	 * upd through the writer. Returns 0 or -errno (none was queued; the
	 * jobs are tried again later). */
	int (*finished)(void *ctx, struct db_job_update *upd, int n);
	void *ctx;
};

struct jobs;

/* Set cfg to the defaults: payments 1 thread x 256 in flight, 8 attempts
 * from 1 s; receipts 2 x 32, 10 from 5 s (libcurl finishes an SMTP DATA
 * phase blocking, and files are written one by one: threads help);
 * webhooks 1 x 64, 12 from 5 s, at most 8 running per endpoint; backoff at
 * most 1 h; an attempt's time limit 10 s; receipts and webhooks threads at
 * nice 19 (they yield to intake, captures and viewers). */
void jobs_config_defaults(struct jobs_config *cfg);

/* Load every job that is not done from db and the queues' switches and
 * counters. Workers do not start yet. */
int jobs_new(const struct jobs_config *cfg, const struct jobs_hooks *hooks, const char *db_path,
             sqlite3 *db, struct jobs **out, char *err, size_t errcap);

/* Start the worker threads. */
int jobs_start(struct jobs *js);

/* A fresh job id (any thread). */
int64_t jobs_next_id(struct jobs *js);

/* The jobs that follow a gift that succeeded without a capture (an
 * offline gift), as a capture's success would have them follow: a receipt
 * when receipt is set, the donor has an email and receipts are on, and a
 * donation.succeeded webhook per endpoint. Fills at most DB_MAX_NEW_JOBS
 * of out with fresh ids; returns how many (any thread). */
int jobs_success_followups(struct jobs *js, int receipt, const char *email, struct db_new_job *out);

/* A committed new job: make it ready (any thread; after its commit). */
int jobs_add(struct jobs *js, int64_t id, enum job_kind kind, int64_t donation_id, const char *url,
             int64_t now);

/* The writer committed upd (rc 0), committed the batch but found no row
 * for the job (-ESRCH: it is dropped), or failed to commit (another rc < 0).
 * Writer thread. */
void jobs_committed(struct jobs *js, const struct db_job_update *upd, int rc);

/* The same for n outcomes at once, under one lock. */
void jobs_committed_many(struct jobs *js, const struct db_job_update *const *upd, const int *rc,
                         int n);

/* Staff: hold job id for an action and fill upd to record it. action is
 * "retry" (dead or scheduled -> ready) or "discard" (ready, scheduled or
 * dead -> deleted; a capture's donation fails). Returns 0, -ENOENT (no
 * such job in memory), -EBUSY (running or held) or -EINVAL (the action
 * does not apply to its state). Release with jobs_committed. */
int jobs_hold(struct jobs *js, int64_t id, const char *action, struct db_job_update *upd);

/* Committed queue changes (writer thread). */
void jobs_set_paused(struct jobs *js, enum job_queue q, int paused);
void jobs_retry_dead(struct jobs *js, enum job_queue q, int64_t now);

void jobs_queue_info(struct jobs *js, enum job_queue q, struct job_queue_info *out);

/* Call cb for up to limit in-memory jobs of queue q in state st (not
 * done), oldest first; they are copied under the lock and handed over
 * after it. Returns 0, -ENOMEM, or cb's non-zero return. */
int jobs_each(struct jobs *js, enum job_queue q, enum job_state st, int limit,
              int (*cb)(void *ud, const struct job_record *j), void *ud);

/* Wait until queue q has nothing ready, running, held or scheduled, at
 * most timeout_ms. Returns 0 or -ETIMEDOUT. */
int jobs_wait_idle(struct jobs *js, enum job_queue q, int timeout_ms);

/* Append Prometheus lines: per-queue gauges, counters, latency histogram. */
int jobs_metrics(struct jobs *js, struct buf *out);

/* Stop taking jobs, let attempts in flight finish (at most wait_ms), join
 * the workers. Results already handed to the writer still commit. At
 * wait_ms every worker's connections are cut (a transfer stuck inside a
 * curl call comes out of it at once) and an attempt still in flight is
 * abandoned without being recorded: the job runs again at the next start,
 * its attempt not counted. Returns soon after wait_ms whatever the servers
 * do. */
void jobs_stop(struct jobs *js, int wait_ms);

void jobs_free(struct jobs *js);

#endif
