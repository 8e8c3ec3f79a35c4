/* core/jobs.c - queues, worker pools and retries (see jobs.h).
 *
 * DESIGN: one mutex guards every queue's lists; workers take up to 64 jobs
 * per lock and the writer applies a whole committed batch per lock, so it
 * is taken a few thousand times a second at most. Each worker thread has an
 * eventfd to be woken, a read connection to fetch the job's donation, and a
 * curl multi handle, so one thread keeps hundreds of captures, emails or
 * webhooks in flight without a thread each.
 *
 * Endpoints: one webhook endpoint that hangs must not take every slot of
 * its queue. A queue's ready jobs wait in lanes, one FIFO per endpoint and
 * one (LANE_ANY) for every job without an endpoint, and the queue counts
 * its running jobs per lane. A worker takes the oldest head among the lanes
 * that are under their cap (jobs_config per_endpoint, over all the queue's
 * workers; LANE_ANY has none), so a full lane's jobs stay ready, unstarted
 * and uncounted as attempts, while the others keep flowing. The cap lives
 * here, where jobs are taken, rather than in the webhook handler: a job
 * held back there would already be running and hold a worker's slot. A job
 * leaves its lane's running count when it leaves the running list, i.e.
 * once its outcome is committed (detach).
 *
 * Stop: jobs_stop gives the attempts in flight until a deadline. At the
 * deadline it cuts every connection of every worker (shutdown(2) on the
 * sockets curl opened for it, pooled ones too), each worker removes its
 * unfinished transfers from curl and quits; those jobs are still ready or
 * scheduled in the database with their attempt uncounted, so they run
 * again at the next start and nothing is lost. The cut is what keeps the
 * deadline: libcurl (7.88) waits for some SMTP answers inside one call
 * (the end of DATA, and a transfer removed before it ended sends the end
 * of DATA and waits too), up to the attempt's whole time limit, and its
 * pool says QUIT to each idle connection at cleanup and waits for the
 * answer for up to two minutes; on a cut socket each of those fails at
 * once.
 */
#include "core/jobs.h"
#include "base/events.h"
#include "base/log.h"
#include "base/util.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define TAKE_MAX 64
#define OUT_MAX 64            /* outcomes handed to the writer at once */
#define AWAIT_COMMIT_MAX 4096 /* per queue: outcomes waiting for a commit */
#define LAT_BUCKETS 48        /* upper bound of bucket i: 0.05 ms * 1.4^i */
#define WINDOW_NS (10ull * 1000000000ull)
#define NO_ENDPOINT 255
#define LANE_ANY JOB_MAX_ENDPOINTS /* jobs without an endpoint: no cap */
#define LANES (JOB_MAX_ENDPOINTS + 1)

struct jlist {
	struct job *head, *tail;
	int64_t n;
};

struct worker {
	struct jobs *js;
	enum job_queue q;
	pthread_t thread;
	int started;
	int efd;
	int idle; /* guarded by js->lock */
	CURLM *multi;
	sqlite3 *db;
	sqlite3_stmt *don_stmt;
	int inflight, transfers;
	int abandoned;             /* attempts cut off at the stop */
	struct job_run *timers;    /* sorted by due_ns */
	struct job_run *xfers;     /* transfers in flight */
	struct db_job_update *out; /* outcomes not yet handed over */
	int n_out;
	/* Every socket curl opened for this worker (its pool's too), so that
	 * a stop can cut them (see DESIGN). socks_lock guards the four; it is
	 * a leaf, taken by curl's open and close callbacks (on this worker's
	 * thread, or on jobs_free's after the join) and by jobs_stop. */
	pthread_mutex_t socks_lock;
	int socks_lock_ok;
	int *socks;
	int n_socks, cap_socks;
	int socks_cut; /* cut: a socket opened now is cut at once */
};

struct queue {
	struct job_policy pol;
	struct jlist ready[LANES]; /* FIFOs by lane (see DESIGN) */
	int64_t n_ready;           /* in every lane */
	int lane_running[LANES];   /* running jobs by lane */
	struct jlist running, dead, held;
	struct job **heap; /* scheduled, min by next_run_at */
	size_t n_heap, heap_cap;
	int paused;
	int64_t done_total, failed_total;
	int64_t declined; /* captures that ended declined, since start */
	struct worker *workers;
	/* Windows of 10 s: [0] is the current one. */
	uint64_t win_start_ns;
	uint64_t lat_win[2][LAT_BUCKETS + 1];
	int64_t done_win[2];
	uint64_t lat_all[LAT_BUCKETS + 1]; /* since start, for /metrics */
	double lat_sum_s;
};

struct jobs {
	struct jobs_config cfg;
	struct jobs_hooks hooks;
	pthread_mutex_t lock;
	struct queue q[JOB_QUEUES];
	struct job **table; /* id hash, chained through hnext */
	size_t table_cap, n_jobs;
	atomic_llong next_id;
	int stopping;
	uint64_t stop_deadline_ns;
	int exited;          /* workers whose thread has ended (under lock) */
	atomic_int cut;      /* the stop's deadline passed: what ends now is abandoned */
	pthread_cond_t idle; /* broadcast whenever jobs leave their state */
	const char *db_path; /* workers open their own read connections */
};

int64_t job_backoff_ms(const struct job_policy *p, int attempts, double r)
{
	int64_t d = p->backoff_ms;

	for (int i = 1; i < attempts && d < p->backoff_max_ms; i++)
		d *= 2;
	if (d > p->backoff_max_ms)
		d = p->backoff_max_ms;
	if (d < 1)
		d = 1;
	return d / 2 + (int64_t)(r * (double)(d - d / 2));
}

void jobs_config_defaults(struct jobs_config *cfg)
{
	static const struct job_policy defaults[JOB_QUEUES] = {
	    {1, 256, 8, 1000, 3600 * 1000, 0, 10000},
	    {2, 32, 10, 5000, 3600 * 1000, 19, 10000},
	    {1, 64, 12, 5000, 3600 * 1000, 19, 10000},
	};

	memset(cfg, 0, sizeof(*cfg));
	memcpy(cfg->policy, defaults, sizeof(defaults));
	cfg->receipts = 1;
	cfg->per_endpoint = 8;
}

/* ---- lists, heap, hash (under js->lock) ---- */

static void jl_push(struct jlist *l, struct job *j)
{
	j->next = NULL;
	j->prev = l->tail;
	if (l->tail)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
	l->n++;
}

static void jl_remove(struct jlist *l, struct job *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		l->head = j->next;
	if (j->next)
		j->next->prev = j->prev;
	else
		l->tail = j->prev;
	j->prev = j->next = NULL;
	l->n--;
}

static int lane_of(const struct job *j)
{
	return j->endpoint == NO_ENDPOINT ? LANE_ANY : j->endpoint;
}

static int heap_less(const struct job *a, const struct job *b)
{
	return a->next_run_at < b->next_run_at ||
	       (a->next_run_at == b->next_run_at && a->id < b->id);
}

static void heap_set(struct queue *q, size_t i, struct job *j)
{
	q->heap[i] = j;
	j->heap_i = i;
}

static void heap_up(struct queue *q, size_t i)
{
	struct job *j = q->heap[i];

	while (i > 0 && heap_less(j, q->heap[(i - 1) / 2])) {
		heap_set(q, i, q->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(q, i, j);
}

static void heap_down(struct queue *q, size_t i)
{
	struct job *j = q->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= q->n_heap)
			break;
		if (c + 1 < q->n_heap && heap_less(q->heap[c + 1], q->heap[c]))
			c++;
		if (!heap_less(q->heap[c], j))
			break;
		heap_set(q, i, q->heap[c]);
		i = c;
	}
	heap_set(q, i, j);
}

static int heap_push(struct queue *q, struct job *j)
{
	if (q->n_heap == q->heap_cap) {
		size_t cap = q->heap_cap ? q->heap_cap * 2 : 256;
		struct job **v = realloc(q->heap, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		q->heap = v;
		q->heap_cap = cap;
	}
	q->heap[q->n_heap] = j;
	heap_up(q, q->n_heap++);
	return 0;
}

static void heap_remove(struct queue *q, struct job *j)
{
	size_t i = j->heap_i;
	struct job *last = q->heap[--q->n_heap];

	if (i == q->n_heap)
		return;
	heap_set(q, i, last);
	heap_down(q, i);
	heap_up(q, last->heap_i);
}

static size_t slot_of(const struct jobs *js, int64_t id)
{
	return (size_t)util_hash(&id, sizeof(id)) & (js->table_cap - 1);
}

static struct job *find(struct jobs *js, int64_t id)
{
	struct job *j = js->table[slot_of(js, id)];

	while (j && j->id != id)
		j = j->hnext;
	return j;
}

static int hash_add(struct jobs *js, struct job *j)
{
	size_t s;

	if (js->n_jobs + 1 > js->table_cap) {
		size_t cap = js->table_cap * 2;
		struct job **t = calloc(cap, sizeof(*t));

		if (!t)
			return -ENOMEM;
		for (size_t i = 0; i < js->table_cap; i++) {
			struct job *x = js->table[i];

			while (x) {
				struct job *next = x->hnext;
				size_t k = (size_t)util_hash(&x->id, sizeof(x->id)) & (cap - 1);

				x->hnext = t[k];
				t[k] = x;
				x = next;
			}
		}
		free(js->table);
		js->table = t;
		js->table_cap = cap;
	}
	s = slot_of(js, j->id);
	j->hnext = js->table[s];
	js->table[s] = j;
	js->n_jobs++;
	return 0;
}

static void hash_del(struct jobs *js, struct job *j)
{
	struct job **pp = &js->table[slot_of(js, j->id)];

	while (*pp && *pp != j)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = j->hnext;
		js->n_jobs--;
	}
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	free(j->last_error);
	free(j);
}

/* Take j off whatever state list or heap holds it. */
static void detach(struct jobs *js, struct job *j)
{
	struct queue *q = &js->q[j->queue];

	switch (j->state) {
	case JOB_READY:
		jl_remove(&q->ready[lane_of(j)], j);
		q->n_ready--;
		break;
	case JOB_RUNNING:
		jl_remove(&q->running, j);
		q->lane_running[lane_of(j)]--; /* its endpoint has a slot again */
		break;
	case JOB_SCHEDULED:
		heap_remove(q, j);
		break;
	case JOB_DEAD:
		jl_remove(&q->dead, j);
		break;
	case JOB_HELD:
		jl_remove(&q->held, j);
		break;
	default:
		break;
	}
}

/* Put a detached j into state st (READY, SCHEDULED or DEAD). */
static void attach(struct jobs *js, struct job *j, enum job_state st)
{
	struct queue *q = &js->q[j->queue];

	j->state = (uint8_t)st;
	if (st == JOB_SCHEDULED && heap_push(q, j) == 0)
		return;
	if (st == JOB_SCHEDULED) /* no memory for the heap: run it now */
		j->state = st = JOB_READY;
	if (st == JOB_READY) {
		j->ready_ns = util_mono_ns();
		jl_push(&q->ready[lane_of(j)], j);
		q->n_ready++;
	} else {
		jl_push(&q->dead, j);
	}
}

static void wake(struct jobs *js, enum job_queue qi)
{
	struct queue *q = &js->q[qi];
	uint64_t one = 1;

	if (!q->workers)
		return;
	for (int i = 0; i < q->pol.workers; i++) {
		struct worker *w = &q->workers[i];

		if (w->idle && w->efd >= 0) {
			w->idle = 0;
			if (write(w->efd, &one, sizeof(one)) != sizeof(one))
				log_msg(LOG_WARN, "jobs.wake_failed", "%s", strerror(errno));
		}
	}
}

static void window_roll(struct queue *q, uint64_t now)
{
	if (now - q->win_start_ns < WINDOW_NS)
		return;
	if (now - q->win_start_ns >= 2 * WINDOW_NS) {
		memset(q->lat_win[1], 0, sizeof(q->lat_win[1]));
		q->done_win[1] = 0;
	} else {
		memcpy(q->lat_win[1], q->lat_win[0], sizeof(q->lat_win[1]));
		q->done_win[1] = q->done_win[0];
	}
	memset(q->lat_win[0], 0, sizeof(q->lat_win[0]));
	q->done_win[0] = 0;
	q->win_start_ns = now;
}

static double bucket_bound_ms(int b)
{
	return 0.05 * pow(1.4, b);
}

static int bucket_of(double ms)
{
	int b;

	if (ms <= 0.05)
		return 0;
	b = (int)ceil(log(ms / 0.05) / log(1.4));
	return b > LAT_BUCKETS ? LAT_BUCKETS : b;
}

/* ---- loading ---- */

static struct job *job_new(struct jobs *js, int64_t id, enum job_kind kind, int64_t donation_id,
                           const char *url, int64_t created_at)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->id = id;
	j->kind = (uint8_t)kind;
	j->queue = (uint8_t)job_kind_queue[kind];
	j->donation_id = donation_id;
	j->created_at = created_at;
	j->next_run_at = created_at;
	j->endpoint = NO_ENDPOINT;
	for (int i = 0; url && i < js->cfg.n_endpoints; i++)
		if (!strcmp(url, js->cfg.endpoint[i]))
			j->endpoint = (uint8_t)i;
	if (hash_add(js, j)) {
		free(j);
		return NULL;
	}
	return j;
}

static int load_job_cb(void *ud, const struct job_record *row)
{
	struct jobs *js = ud;
	enum job_state st = row->state;
	struct job *j;

	j = job_new(js, row->id, row->kind, row->donation_id, row->url[0] ? row->url : NULL,
	            row->created_at);
	if (!j)
		return -ENOMEM;
	j->attempts = row->attempts;
	j->next_run_at = row->next_run_at;
	if (row->last_error[0])
		j->last_error = strdup(row->last_error);
	/* A job that was running when tally stopped runs again. */
	attach(js, j, st == JOB_DEAD ? JOB_DEAD : st == JOB_SCHEDULED ? JOB_SCHEDULED : JOB_READY);
	return 0;
}

static int load_queue_cb(void *ud, const struct db_queue_row *row)
{
	struct jobs *js = ud;
	int q = job_queue_by_name(row->name);

	if (q >= 0) {
		js->q[q].paused = row->paused;
		js->q[q].done_total = row->done_total;
		js->q[q].failed_total = row->failed_total;
	}
	return 0;
}

int jobs_new(const struct jobs_config *cfg, const struct jobs_hooks *hooks, const char *db_path,
             sqlite3 *db, struct jobs **out, char *err, size_t errcap)
{
	struct jobs *js = calloc(1, sizeof(*js));
	int64_t max_id = 0;
	int rc;

	*out = NULL;
	if (!js)
		return -ENOMEM;
	js->cfg = *cfg;
	js->db_path = db_path;
	js->hooks = *hooks;
	if (pthread_cond_init(&js->idle, NULL)) {
		free(js);
		return -ENOMEM;
	}
	js->table_cap = 1024;
	js->table = calloc(js->table_cap, sizeof(*js->table));
	if (!js->table || pthread_mutex_init(&js->lock, NULL)) {
		free(js->table);
		free(js);
		return -ENOMEM;
	}
	for (int i = 0; i < JOB_QUEUES; i++) {
		js->q[i].pol = cfg->policy[i];
		js->q[i].win_start_ns = util_mono_ns();
	}
	rc = db_load_queues(db, load_queue_cb, js);
	if (!rc)
		rc = db_load_jobs(db, load_job_cb, js);
	if (!rc)
		rc = db_max_job_id(db, &max_id);
	if (rc) {
		snprintf(err, errcap, "loading jobs: %s", sqlite3_errmsg(db));
		jobs_free(js);
		return rc;
	}
	atomic_init(&js->next_id, max_id + 1);
	atomic_init(&js->cut, 0);
	*out = js;
	return 0;
}

int64_t jobs_next_id(struct jobs *js)
{
	return atomic_fetch_add(&js->next_id, 1);
}

int jobs_add(struct jobs *js, int64_t id, enum job_kind kind, int64_t donation_id, const char *url,
             int64_t now)
{
	struct job *j;

	pthread_mutex_lock(&js->lock);
	j = job_new(js, id, kind, donation_id, url, now);
	if (j) {
		attach(js, j, JOB_READY);
		wake(js, j->queue);
	}
	pthread_mutex_unlock(&js->lock);
	if (!j)
		log_msg(LOG_ERROR, "jobs.add_failed",
		        "job %lld: out of memory; it runs after a restart", (long long)id);
	return j ? 0 : -ENOMEM;
}

/* ---- outcomes ---- */

/* The job lifecycle as one table: what an attempt's result means for each
 * kind of job. The effect's own rule (effect_rules, base/model.c) then
 * says what the donation and its campaign's numbers do; the store and the
 * engine's cache both read that one. */
struct job_rule {
	enum job_state state;   /* JOB_SCHEDULED: retried while attempts remain,
	                         * then JOB_DEAD */
	enum job_effect effect; /* on the job's donation */
	uint8_t receipt;        /* a receipt job follows (if the donor gave an email) */
	enum job_kind hooks;    /* a webhook job per endpoint follows; JOB_KINDS: none */
	uint8_t done, failed;   /* the queue's counters */
};

#define RETRY_RULE                                                                                 \
	{                                                                                          \
		JOB_SCHEDULED, EFFECT_NONE, 0, JOB_KINDS, 0, 1                                     \
	}
#define DEAD_RULE                                                                                  \
	{                                                                                          \
		JOB_DEAD, EFFECT_NONE, 0, JOB_KINDS, 0, 1                                          \
	}
#define DONE_RULE                                                                                  \
	{                                                                                          \
		JOB_DONE, EFFECT_NONE, 0, JOB_KINDS, 1, 0                                          \
	}

static const struct job_rule job_rules[JOB_KINDS][3] = {
    [JOB_CAPTURE] =
        {
            [JOB_OK] = {JOB_DONE, EFFECT_SUCCEEDED, 1, JOB_HOOK_SUCCEEDED, 1, 0},
            [JOB_RETRY] = RETRY_RULE,
            /* A decline is an answer, not an error: done, and the gift failed. */
            [JOB_FAIL] = {JOB_DONE, EFFECT_FAILED, 0, JOB_HOOK_FAILED, 1, 1},
        },
    [JOB_REFUND] =
        {
            [JOB_OK] = {JOB_DONE, EFFECT_REFUNDED, 0, JOB_HOOK_REFUNDED, 1, 0},
            [JOB_RETRY] = RETRY_RULE,
            [JOB_FAIL] = DEAD_RULE,
        },
    [JOB_RECEIPT] =
        {
            [JOB_OK] = {JOB_DONE, EFFECT_RECEIPT, 0, JOB_KINDS, 1, 0},
            [JOB_RETRY] = RETRY_RULE,
            [JOB_FAIL] = DEAD_RULE,
        },
    [JOB_HOOK_SUCCEEDED] = {[JOB_OK] = DONE_RULE, [JOB_RETRY] = RETRY_RULE, [JOB_FAIL] = DEAD_RULE},
    [JOB_HOOK_FAILED] = {[JOB_OK] = DONE_RULE, [JOB_RETRY] = RETRY_RULE, [JOB_FAIL] = DEAD_RULE},
    [JOB_HOOK_REFUNDED] = {[JOB_OK] = DONE_RULE, [JOB_RETRY] = RETRY_RULE, [JOB_FAIL] = DEAD_RULE},
};

static void follow(struct jobs *js, struct db_job_update *u, enum job_kind kind, const char *url)
{
	struct db_new_job *n;

	if (u->n_follow == DB_MAX_NEW_JOBS)
		return;
	n = &u->follow[u->n_follow++];
	n->id = jobs_next_id(js);
	n->kind = kind;
	n->url = url;
}

static void follow_hooks(struct jobs *js, struct db_job_update *u, enum job_kind kind)
{
	for (int i = 0; kind != JOB_KINDS && i < js->cfg.n_endpoints; i++)
		follow(js, u, kind, js->cfg.endpoint[i]);
}

int jobs_success_followups(struct jobs *js, int receipt, const char *email, struct db_new_job *out)
{
	struct db_job_update u;

	u.n_follow = 0;
	if (receipt && js->cfg.receipts && email[0])
		follow(js, &u, JOB_RECEIPT, NULL);
	follow_hooks(js, &u, job_rules[JOB_CAPTURE][JOB_OK].hooks);
	memcpy(out, u.follow, (size_t)u.n_follow * sizeof(out[0]));
	return u.n_follow;
}

/* What an attempt's result means: the job's next state and the effect on
 * its donation, as one record for the writer (job_rules says which). */
static void transition(struct jobs *js, const struct job *j, const struct job_run *r,
                       struct db_job_update *u)
{
	const struct job_result *res = &r->result;
	const struct job_policy *pol = &js->q[j->queue].pol;
	const struct job_rule *rule = &job_rules[j->kind][res->kind];

	memset(u, 0, offsetof(struct db_job_update, d));
	u->job_id = j->id;
	u->queue = (enum job_queue)j->queue;
	u->kind = (enum job_kind)j->kind;
	u->donation_id = j->donation_id;
	u->attempts = j->attempts + 1;
	if (r->don.id == j->donation_id) {
		/* The writer needs the gift for the totals and the live
		 * event: send what was read, so it does not read it again. */
		const struct db_job_donation *d = &r->don;

		u->has_donation = 1;
		u->campaign_id = d->campaign_id;
		u->created_at = d->created_at;
		u->pool_id = d->pool_id;
		u->matched_cents = d->matched_cents;
		u->d.amount_cents = d->amount_cents;
		u->d.anonymous = d->anonymous;
		u->d.hide_amount = d->hide_amount;
		memcpy(u->d.currency, d->currency, sizeof(u->d.currency));
		memcpy(u->d.name, d->name, sizeof(u->d.name));
		memcpy(u->d.email, d->email, sizeof(u->d.email));
		memcpy(u->d.message, d->message, sizeof(u->d.message));
	}
	u->next_run_at = j->next_run_at;
	snprintf(u->error, sizeof(u->error), "%s", res->kind == JOB_OK ? "" : res->error);
	if (res->kind != JOB_OK) {
		/* A failure goes in the job's history; a success costs
		 * nothing here (no clock read, nothing more written). */
		uint64_t now = util_mono_ns();

		u->attempt_ms =
		    now > r->started_ns ? (int64_t)((now - r->started_ns) / 1000000u) : 0;
		u->attempt_at = util_now_ms() - u->attempt_ms;
	}
	u->state = rule->state;
	u->effect = rule->effect;
	u->done = rule->done;
	u->failed = rule->failed;
	if (rule->receipt && js->cfg.receipts && r->don.email[0])
		follow(js, u, JOB_RECEIPT, NULL);
	follow_hooks(js, u, rule->hooks);
	switch (u->effect) {
	case EFFECT_SUCCEEDED:
		snprintf(u->ref, sizeof(u->ref), "%s", res->ref);
		break;
	case EFFECT_FAILED:
		snprintf(u->reason, sizeof(u->reason), "%.199s", res->error);
		break;
	case EFFECT_REFUNDED:
		snprintf(u->reason, sizeof(u->reason), "refunded");
		break;
	case EFFECT_RECEIPT:
		/* Only a receipt that went out is recorded as sent. */
		if (!strcmp(res->ref, "skipped"))
			u->effect = EFFECT_NONE;
		break;
	default:
		break;
	}
	if (j->kind == JOB_CAPTURE && res->kind != JOB_OK && u->effect == EFFECT_NONE &&
	    res->ref[0]) {
		/* Still pending: keep the processor's id for the next try. */
		u->effect = EFFECT_REF;
		snprintf(u->ref, sizeof(u->ref), "%s", res->ref);
	}
	if (u->state != JOB_SCHEDULED)
		return;
	if (u->attempts >= pol->max_attempts) {
		u->state = JOB_DEAD;
		return;
	}
	{
		uint64_t bits = 0;
		double rnd;

		util_random(&bits, sizeof(bits));
		rnd = (double)(bits >> 11) / 9007199254740992.0; /* [0, 1) */
		u->next_run_at = util_now_ms() + job_backoff_ms(pol, u->attempts, rnd);
	}
}

static void set_error(struct job *j, const char *error)
{
	if (j->last_error && !strcmp(j->last_error, error))
		return;
	free(j->last_error);
	j->last_error = error[0] ? strdup(error) : NULL;
}

/* Apply one committed (rc 0) or failed outcome; js->lock held. */
static void committed_locked(struct jobs *js, const struct db_job_update *u, int rc, int *wake_q)
{
	struct job *j = find(js, u->job_id);

	if (j && rc == -ESRCH) {
		/* Its row is gone (deleted outside tally): forget it rather
		 * than retry a job that cannot be recorded. */
		log_msg(LOG_WARN, "jobs.row_missing", "job %lld has no row; dropped",
		        (long long)j->id);
		detach(js, j);
		hash_del(js, j);
		job_free(j);
	} else if (j && rc) {
		/* Not recorded: the database still has the job as it was. */
		detach(js, j);
		if (j->state == JOB_HELD) {
			attach(js, j, (enum job_state)j->held_from);
		} else {
			j->next_run_at = util_now_ms() + 1000;
			attach(js, j, JOB_SCHEDULED);
		}
		wake_q[j->queue] = 1;
	} else if (j) {
		struct queue *q = &js->q[j->queue];

		detach(js, j);
		j->attempts = u->attempts;
		j->next_run_at = u->next_run_at;
		set_error(j, u->error);
		q->done_total += u->done;
		q->failed_total += u->failed;
		if (u->state != JOB_DEAD && u->effect == EFFECT_FAILED)
			q->declined++;
		if (u->done) {
			window_roll(q, util_mono_ns());
			q->done_win[0]++;
		}
		wake_q[j->queue] |= q->n_ready > 0; /* a slot opened */
		if (u->state == JOB_GONE || u->state == JOB_DONE) {
			hash_del(js, j);
			job_free(j);
		} else {
			enum job_state st = u->state;

			attach(js, j, st);
			/* A retry due soon must not wait for the worker's
			 * next regular look at the heap. */
			wake_q[j->queue] |= st == JOB_READY || st == JOB_SCHEDULED;
		}
	}
	/* -ESRCH comes from a committed batch: the follow-ups are stored. */
	if ((!rc || rc == -ESRCH) && u->applied) {
		for (int i = 0; i < u->n_follow; i++) {
			const struct db_new_job *n = &u->follow[i];
			struct job *f =
			    job_new(js, n->id, n->kind, u->donation_id, n->url, util_now_ms());

			if (!f) {
				log_msg(LOG_ERROR, "jobs.add_failed", "job %lld: out of memory",
				        (long long)n->id);
				continue;
			}
			attach(js, f, JOB_READY);
			wake_q[f->queue] = 1;
		}
	}
}

void jobs_committed_many(struct jobs *js, const struct db_job_update *const *upd, const int *rc,
                         int n)
{
	int wake_q[JOB_QUEUES] = {0};

	pthread_mutex_lock(&js->lock);
	for (int i = 0; i < n; i++)
		committed_locked(js, upd[i], rc[i], wake_q);
	for (int i = 0; i < JOB_QUEUES; i++)
		if (wake_q[i])
			wake(js, (enum job_queue)i);
	pthread_cond_broadcast(&js->idle);
	pthread_mutex_unlock(&js->lock);
	/* The console's events, formatted outside the jobs' lock. */
	for (int i = 0; i < n; i++) {
		const struct db_job_update *u = upd[i];

		if (rc[i])
			continue;
		if (u->state == JOB_DEAD)
			events_note("dead", NULL,
			            "job %lld (%s %s, dn_%lld) after %d attempts: %.80s",
			            (long long)u->job_id, job_queue_names[u->queue],
			            job_kind_names[u->kind], (long long)u->donation_id, u->attempts,
			            u->error);
		else if (u->effect == EFFECT_FAILED)
			events_note("decline", NULL, "dn_%lld: %.120s", (long long)u->donation_id,
			            u->reason);
	}
}

void jobs_committed(struct jobs *js, const struct db_job_update *u, int rc)
{
	jobs_committed_many(js, &u, &rc, 1);
}

int jobs_hold(struct jobs *js, int64_t id, const char *action, struct db_job_update *u)
{
	int retry = !strcmp(action, "retry"), rc = 0;
	struct job *j;

	pthread_mutex_lock(&js->lock);
	j = find(js, id);
	if (!j)
		rc = -ENOENT;
	else if (j->state == JOB_RUNNING || j->state == JOB_HELD)
		rc = -EBUSY;
	else if (retry && j->state == JOB_READY)
		rc = -EINVAL;
	if (rc) {
		pthread_mutex_unlock(&js->lock);
		return rc;
	}
	detach(js, j);
	j->held_from = j->state;
	j->state = JOB_HELD;
	jl_push(&js->q[j->queue].held, j);
	memset(u, 0, offsetof(struct db_job_update, d));
	u->job_id = j->id;
	u->queue = (enum job_queue)j->queue;
	u->kind = (enum job_kind)j->kind;
	u->donation_id = j->donation_id;
	u->attempts = j->attempts;
	u->next_run_at = util_now_ms();
	snprintf(u->error, sizeof(u->error), "%s", j->last_error ? j->last_error : "");
	u->state = retry ? JOB_READY : JOB_GONE;
	if (retry) {
		/* nothing else changes */
	} else if (j->kind == JOB_CAPTURE) {
		u->effect = EFFECT_FAILED;
		snprintf(u->reason, sizeof(u->reason), "discarded by staff");
		follow_hooks(js, u, JOB_HOOK_FAILED);
	} else if (j->kind == JOB_REFUND) {
		u->effect = EFFECT_REFUND_DROPPED; /* a new refund may be asked */
	}
	pthread_mutex_unlock(&js->lock);
	return 0;
}

void jobs_set_paused(struct jobs *js, enum job_queue q, int paused)
{
	pthread_mutex_lock(&js->lock);
	js->q[q].paused = paused;
	if (!paused)
		wake(js, q);
	pthread_mutex_unlock(&js->lock);
}

void jobs_retry_dead(struct jobs *js, enum job_queue qi, int64_t now)
{
	struct queue *q = &js->q[qi];

	pthread_mutex_lock(&js->lock);
	while (q->dead.head) {
		struct job *j = q->dead.head;

		jl_remove(&q->dead, j);
		j->next_run_at = now;
		attach(js, j, JOB_READY);
	}
	wake(js, qi);
	pthread_mutex_unlock(&js->lock);
}

/* ---- workers ---- */

static void run_free(struct job_run *r)
{
	if (r->easy)
		curl_easy_cleanup(r->easy);
	if (r->state_free)
		r->state_free(r->state);
	free(r);
}

/* Hand the outcomes gathered so far to the writer. */
static void flush_outcomes(struct worker *w)
{
	struct jobs *js = w->js;
	int rc;

	if (!w->n_out)
		return;
	rc = js->hooks.finished(js->hooks.ctx, w->out, w->n_out);
	if (rc) {
		log_msg(LOG_ERROR, "jobs.record_failed", "%d outcomes: %s; trying again later",
		        w->n_out, strerror(-rc));
		for (int i = 0; i < w->n_out; i++)
			jobs_committed(js, &w->out[i], rc);
	}
	w->n_out = 0;
}

static void complete(struct worker *w, struct job_run *r)
{
	const struct job_handler *h = &w->js->cfg.handler[r->job->queue];

	if (h->ended)
		h->ended(h->ctx, r);
	if (w->n_out == OUT_MAX)
		flush_outcomes(w);
	transition(w->js, r->job, r, &w->out[w->n_out++]);
	w->inflight--;
	run_free(r);
}

/* ---- the worker's sockets (see DESIGN: Stop) ---- */

/* Shut down every socket of w and any it opens from now on. Any thread. */
static void cut_sockets(struct worker *w)
{
	if (!w->socks_lock_ok)
		return;
	pthread_mutex_lock(&w->socks_lock);
	w->socks_cut = 1;
	for (int i = 0; i < w->n_socks; i++)
		if (shutdown(w->socks[i], SHUT_RDWR) && errno != ENOTCONN)
			log_msg(LOG_WARN, "jobs.shutdown_failed", "%s", strerror(errno));
	pthread_mutex_unlock(&w->socks_lock);
}

/* CURLOPT_OPENSOCKETFUNCTION: a socket as curl's own, listed. */
static curl_socket_t sock_open(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct worker *w = ud;
	int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol), ok = 1;

	(void)purpose;
	if (fd < 0)
		return CURL_SOCKET_BAD;
	pthread_mutex_lock(&w->socks_lock);
	if (w->n_socks == w->cap_socks) {
		int cap = w->cap_socks ? 2 * w->cap_socks : 64;
		int *v = realloc(w->socks, (size_t)cap * sizeof(*v));

		if (v) {
			w->socks = v;
			w->cap_socks = cap;
		}
		ok = v != NULL;
	}
	if (ok) {
		w->socks[w->n_socks++] = fd;
		if (w->socks_cut && shutdown(fd, SHUT_RDWR))
			log_msg(LOG_WARN, "jobs.shutdown_failed", "%s", strerror(errno));
	}
	pthread_mutex_unlock(&w->socks_lock);
	if (!ok) {
		close(fd);
		return CURL_SOCKET_BAD;
	}
	return fd;
}

/* CURLOPT_CLOSESOCKETFUNCTION: off the list, closed. */
static int sock_close(void *ud, curl_socket_t fd)
{
	struct worker *w = ud;

	pthread_mutex_lock(&w->socks_lock);
	for (int i = 0; i < w->n_socks; i++)
		if (w->socks[i] == fd) {
			w->socks[i] = w->socks[--w->n_socks];
			break;
		}
	pthread_mutex_unlock(&w->socks_lock);
	return close(fd) ? 1 : 0;
}

/* Hand r's transfer to the worker's multi handle and list it, with what is
 * left of its attempt's time as its limit. Returns 0, or -1 with a result
 * (JOB_RETRY) in r when the attempt is out of time or curl refused. */
static int xfer_add(struct worker *w, struct job_run *r)
{
	uint64_t now = util_mono_ns();
	long left_ms = r->deadline_ns > now ? (long)((r->deadline_ns - now + 999999) / 1000000) : 0;
	CURLMcode mc;

	if (left_ms <= 0) {
		r->result.kind = JOB_RETRY;
		snprintf(r->result.error, sizeof(r->result.error),
		         "the attempt ran out of time (%lld ms)",
		         (long long)w->js->q[w->q].pol.timeout_ms);
		return -1;
	}
	/* Set again each time: a reset handle has lost them. */
	mc = curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r) ||
	             curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, left_ms) ||
	             curl_easy_setopt(r->easy, CURLOPT_OPENSOCKETFUNCTION, sock_open) ||
	             curl_easy_setopt(r->easy, CURLOPT_OPENSOCKETDATA, w) ||
	             curl_easy_setopt(r->easy, CURLOPT_CLOSESOCKETFUNCTION, sock_close) ||
	             curl_easy_setopt(r->easy, CURLOPT_CLOSESOCKETDATA, w)
	         ? CURLM_BAD_EASY_HANDLE
	         : curl_multi_add_handle(w->multi, r->easy);
	if (mc != CURLM_OK) {
		r->result.kind = JOB_RETRY;
		snprintf(r->result.error, sizeof(r->result.error), "curl: %s",
		         curl_multi_strerror(mc));
		return -1;
	}
	w->transfers++;
	r->prev = NULL;
	r->next = w->xfers;
	if (w->xfers)
		w->xfers->prev = r;
	w->xfers = r;
	return 0;
}

static void xfer_unlink(struct worker *w, struct job_run *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		w->xfers = r->next;
	if (r->next)
		r->next->prev = r->prev;
}

static void start_one(struct worker *w, struct job *j)
{
	struct job_handler *h = &w->js->cfg.handler[w->q];
	struct job_run *r = calloc(1, sizeof(*r));
	int rc;

	w->inflight++;
	if (!r) {
		struct db_job_update back = {.job_id = j->id};

		jobs_committed(w->js, &back, -ENOMEM);
		w->inflight--;
		return;
	}
	r->job = j;
	r->started_ns = util_mono_ns();
	r->deadline_ns = r->started_ns + (uint64_t)w->js->q[w->q].pol.timeout_ms * 1000000ull;
	rc = db_job_donation(w->db, &w->don_stmt, j->donation_id, &r->don);
	if (rc == -ESRCH) {
		r->result.kind = JOB_FAIL;
		snprintf(r->result.error, sizeof(r->result.error), "donation dn_%lld not found",
		         (long long)j->donation_id);
		rc = JOB_RUN_DONE;
	} else if (rc) {
		r->result.kind = JOB_RETRY;
		snprintf(r->result.error, sizeof(r->result.error), "reading the donation: %s",
		         sqlite3_errmsg(w->db));
		rc = JOB_RUN_DONE;
	} else if (!h->start) {
		r->result.kind = JOB_RETRY;
		snprintf(r->result.error, sizeof(r->result.error), "no handler for this queue");
		rc = JOB_RUN_DONE;
	} else {
		rc = h->start(h->ctx, r);
	}
	if (rc == JOB_RUN_DELAY) {
		struct job_run **pp = &w->timers;

		while (*pp && (*pp)->due_ns <= r->due_ns)
			pp = &(*pp)->next;
		r->next = *pp;
		*pp = r;
		return;
	}
	if (rc == JOB_RUN_CURL && xfer_add(w, r) == 0)
		return;
	complete(w, r);
}

static void deliver_timers(struct worker *w, uint64_t now)
{
	while (w->timers && w->timers->due_ns <= now) {
		struct job_run *r = w->timers;

		w->timers = r->next;
		complete(w, r);
	}
}

/* A transfer that failed leaves no connection to be used again. libcurl
 * (7.88) puts an SMTP connection whose end of DATA went unanswered back in
 * its pool, the server's session still stuck there, and the next receipt
 * sent down it fails too. Shutting its socket down makes curl find the
 * connection dead and drop it, without a QUIT, before it is used again.
 * (Two transfers of one worker can still meet inside one curl call: the
 * failed one's connection handed on before tally sees the failure; that
 * costs the other one failed attempt.) */
static void drop_connection(CURL *e)
{
	curl_socket_t s = CURL_SOCKET_BAD;

	if (curl_easy_getinfo(e, CURLINFO_ACTIVESOCKET, &s) == CURLE_OK && s != CURL_SOCKET_BAD &&
	    shutdown(s, SHUT_RDWR) && errno != ENOTCONN)
		log_msg(LOG_WARN, "jobs.shutdown_failed", "%s", strerror(errno));
}

static void reap_transfers(struct worker *w)
{
	CURLMsg *m;
	int left, running;

	if (!w->transfers)
		return;
	if (curl_multi_perform(w->multi, &running) != CURLM_OK)
		log_msg(LOG_WARN, "jobs.curl_failed", "curl_multi_perform failed");
	while ((m = curl_multi_info_read(w->multi, &left))) {
		struct job_run *r = NULL;
		CURLcode result;

		if (m->msg != CURLMSG_DONE)
			continue;
		result = m->data.result; /* m is invalid after the removal */

		if (result != CURLE_OK)
			drop_connection(m->easy_handle);
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		curl_multi_remove_handle(w->multi, m->easy_handle);
		w->transfers--;
		if (!r)
			continue;
		xfer_unlink(w, r);
		if (atomic_load(&w->js->cut)) {
			/* Cut off at the stop: not recorded, run again. */
			w->inflight--;
			w->abandoned++;
			run_free(r);
			continue;
		}
		/* JOB_RUN_CURL: the attempt goes on with another request. */
		if (r->finish(r, result) == JOB_RUN_CURL && xfer_add(w, r) == 0)
			continue;
		complete(w, r);
	}
}

static void wait_work(struct worker *w, int timeout_ms)
{
	struct curl_waitfd wfd = {w->efd, CURL_WAIT_POLLIN, 0};
	uint64_t v;

	if (w->timers) {
		uint64_t now = util_mono_ns(), due = w->timers->due_ns;
		int ms = due <= now ? 0 : (int)((due - now + 999999) / 1000000);

		if (ms < timeout_ms)
			timeout_ms = ms;
	}
	if (timeout_ms < 0)
		timeout_ms = 0;
	if (w->transfers) {
		if (curl_multi_poll(w->multi, &wfd, 1, timeout_ms, NULL) != CURLM_OK)
			log_msg(LOG_WARN, "jobs.curl_failed", "curl_multi_poll failed");
	} else {
		struct pollfd p = {w->efd, POLLIN, 0};

		if (poll(&p, 1, timeout_ms) < 0 && errno != EINTR)
			log_msg(LOG_WARN, "jobs.poll_failed", "%s", strerror(errno));
	}
	if (read(w->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_msg(LOG_WARN, "jobs.wake_failed", "%s", strerror(errno));
}

/* The next job to take from q: the oldest head among the lanes under
 * their cap, or NULL (under the lock). */
static struct job *next_ready(const struct jobs *js, const struct queue *q)
{
	struct job *best = NULL;

	for (int l = 0; l < LANES; l++) {
		struct job *h = q->ready[l].head;

		if (!h || (l != LANE_ANY && js->cfg.per_endpoint > 0 &&
		           q->lane_running[l] >= js->cfg.per_endpoint))
			continue;
		if (!best || h->ready_ns < best->ready_ns)
			best = h;
	}
	return best;
}

/* Move scheduled jobs that are due to ready (under the lock). */
static void promote_due(struct jobs *js, struct queue *q, int64_t now)
{
	while (q->n_heap && q->heap[0]->next_run_at <= now) {
		struct job *j = q->heap[0];

		heap_remove(q, j);
		attach(js, j, JOB_READY);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct jobs *js = w->js;
	struct queue *q = &js->q[w->q];
	char name[16];
	int rc;

	snprintf(name, sizeof name, "job-%s", job_queue_names[w->q]);
	rc = util_thread_name(name);
	if (rc)
		log_msg(LOG_WARN, "thread.name_failed", "%s", strerror(-rc));

	/* Linux keeps a nice value per thread: receipts and webhooks can
	 * wait when the CPU is short, donors and viewers cannot. */
	if (q->pol.nice && setpriority(PRIO_PROCESS, (id_t)gettid(), q->pol.nice))
		log_msg(LOG_WARN, "jobs.nice_failed", "%s", strerror(errno));
	for (;;) {
		struct job *take[TAKE_MAX];
		int n = 0, timeout = 1000, quit = 0;
		uint64_t now_ns;
		int64_t now;

		pthread_mutex_lock(&js->lock);
		/* After the lock: a job made ready while we waited for it must
		 * not look ready in the future. */
		now_ns = util_mono_ns();
		now = util_now_ms();
		if (js->stopping) {
			quit = w->inflight == 0 || now_ns >= js->stop_deadline_ns;
			timeout = 20;
		} else {
			promote_due(js, q, now);
			/* Running counts attempts whose outcome waits for its
			 * commit too: the writer's backlog stays bounded. */
			while (!q->paused && n < TAKE_MAX && w->inflight + n < q->pol.inflight &&
			       q->running.n <
			           (int64_t)q->pol.inflight * q->pol.workers + AWAIT_COMMIT_MAX) {
				struct job *j = next_ready(js, q);
				int64_t waited;
				double ms;
				int b;

				if (!j)
					break;
				waited = (int64_t)now_ns - j->ready_ns;
				ms = waited > 0 ? (double)waited / 1e6 : 0;
				b = bucket_of(ms);
				detach(js, j);
				j->state = JOB_RUNNING;
				jl_push(&q->running, j);
				q->lane_running[lane_of(j)]++;
				window_roll(q, now_ns);
				q->lat_win[0][b]++;
				q->lat_all[b]++;
				q->lat_sum_s += ms / 1000.0;
				take[n++] = j;
			}
			if (q->n_heap) {
				int64_t due = q->heap[0]->next_run_at - now;

				if (due < timeout)
					timeout = due < 0 ? 0 : (int)due;
			}
		}
		w->idle = n == 0;
		pthread_mutex_unlock(&js->lock);
		if (quit)
			break;
		for (int i = 0; i < n; i++)
			start_one(w, take[i]);
		deliver_timers(w, util_mono_ns());
		reap_transfers(w);
		flush_outcomes(w);
		if (n == 0)
			wait_work(w, timeout);
	}
	/* Out of time: what is still in flight stays "running" in memory and
	 * ready in the database, so it runs again after the restart. Its
	 * connections are cut first: removing an SMTP transfer that has not
	 * ended makes curl send the end of DATA and wait for the answer, and
	 * curl_multi_cleanup says QUIT to every pooled connection. */
	cut_sockets(w);
	while (w->timers) {
		struct job_run *r = w->timers;

		w->timers = r->next;
		run_free(r);
	}
	if (w->transfers + w->abandoned)
		log_msg(LOG_WARN, "jobs.abandoned",
		        "%s: %d attempts still in flight at stop; they run again at the next start",
		        job_queue_names[w->q], w->transfers + w->abandoned);
	while (w->xfers) {
		struct job_run *r = w->xfers;

		w->xfers = r->next;
		curl_multi_remove_handle(w->multi, r->easy);
		run_free(r);
	}
	w->transfers = 0;
	pthread_mutex_lock(&js->lock);
	js->exited++;
	pthread_cond_broadcast(&js->idle);
	pthread_mutex_unlock(&js->lock);
	return NULL;
}

int jobs_start(struct jobs *js)
{
	for (int qi = 0; qi < JOB_QUEUES; qi++) {
		struct queue *q = &js->q[qi];

		q->workers = calloc((size_t)q->pol.workers, sizeof(*q->workers));
		if (!q->workers)
			return -ENOMEM;
		for (int i = 0; i < q->pol.workers; i++)
			q->workers[i].efd = -1;
		for (int i = 0; i < q->pol.workers; i++) {
			struct worker *w = &q->workers[i];
			char err[256];
			int rc;

			w->js = js;
			w->q = (enum job_queue)qi;
			if (pthread_mutex_init(&w->socks_lock, NULL))
				return -ENOMEM;
			w->socks_lock_ok = 1;
			w->out = calloc(OUT_MAX, sizeof(*w->out));
			if (!w->out)
				return -ENOMEM;
			w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
			if (w->efd < 0)
				return -errno;
			w->multi = curl_multi_init();
			if (!w->multi)
				return -ENOMEM;
			rc = db_open_reader(js->db_path, &w->db, err, sizeof(err));
			if (rc) {
				log_msg(LOG_ERROR, "jobs.start_failed", "%s", err);
				return rc;
			}
			rc = -pthread_create(&w->thread, NULL, worker_main, w);
			if (rc)
				return rc;
			w->started = 1;
		}
	}
	return 0;
}

/* The CLOCK_REALTIME time ms from now, for pthread_cond_timedwait. */
static struct timespec realtime_in(int ms)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

void jobs_stop(struct jobs *js, int wait_ms)
{
	struct timespec until;
	int started = 0, cut;

	if (!js)
		return;
	pthread_mutex_lock(&js->lock);
	if (js->stopping) {
		pthread_mutex_unlock(&js->lock);
		return;
	}
	js->stopping = 1;
	js->stop_deadline_ns = util_mono_ns() + (uint64_t)wait_ms * 1000000ull;
	for (int qi = 0; qi < JOB_QUEUES; qi++)
		for (int i = 0; js->q[qi].workers && i < js->q[qi].pol.workers; i++) {
			js->q[qi].workers[i].idle = 1;
			started += js->q[qi].workers[i].started;
		}
	for (int qi = 0; qi < JOB_QUEUES; qi++)
		wake(js, (enum job_queue)qi);
	/* Until the deadline the attempts may finish; then every worker's
	 * connections are cut, so that one stuck inside a curl call comes
	 * out of it at once (see DESIGN). */
	until = realtime_in(wait_ms);
	while (js->exited < started &&
	       pthread_cond_timedwait(&js->idle, &js->lock, &until) != ETIMEDOUT)
		;
	cut = js->exited < started;
	pthread_mutex_unlock(&js->lock);
	if (cut) {
		atomic_store(&js->cut, 1);
		for (int qi = 0; qi < JOB_QUEUES; qi++)
			for (int i = 0; js->q[qi].workers && i < js->q[qi].pol.workers; i++)
				cut_sockets(&js->q[qi].workers[i]);
	}
	for (int qi = 0; qi < JOB_QUEUES; qi++) {
		struct queue *q = &js->q[qi];

		for (int i = 0; q->workers && i < q->pol.workers; i++) {
			struct worker *w = &q->workers[i];

			if (w->started && pthread_join(w->thread, NULL))
				log_msg(LOG_ERROR, "jobs.join_failed", "a worker did not join");
			w->started = 0;
			/* Readers close before the writer's last checkpoint, so
			 * the WAL and shared-memory files go with it. */
			sqlite3_finalize(w->don_stmt);
			w->don_stmt = NULL;
			if (w->db && sqlite3_close(w->db) != SQLITE_OK)
				log_msg(LOG_ERROR, "db.close_failed",
				        "a worker's connection is busy");
			w->db = NULL;
		}
	}
}

/* ---- reading ---- */

static double percentile(const uint64_t *a, const uint64_t *b, double p)
{
	uint64_t total = 0, seen = 0;

	for (int i = 0; i <= LAT_BUCKETS; i++)
		total += a[i] + b[i];
	if (!total)
		return 0;
	for (int i = 0; i <= LAT_BUCKETS; i++) {
		seen += a[i] + b[i];
		if ((double)seen >= p * (double)total)
			return bucket_bound_ms(i);
	}
	return bucket_bound_ms(LAT_BUCKETS);
}

void jobs_queue_info(struct jobs *js, enum job_queue qi, struct job_queue_info *out)
{
	struct queue *q = &js->q[qi];
	uint64_t now = util_mono_ns();
	double span;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&js->lock);
	window_roll(q, now);
	out->paused = q->paused;
	out->workers = q->pol.workers;
	out->inflight = q->pol.inflight;
	out->ready = q->n_ready;
	out->running = q->running.n;
	out->scheduled = (int64_t)q->n_heap;
	out->dead = q->dead.n;
	out->held = q->held.n;
	out->done_total = q->done_total;
	out->declined = q->declined;
	out->failed_total = q->failed_total;
	span = (double)(now - q->win_start_ns) / 1e9 + 10.0;
	out->done_per_s = (double)(q->done_win[0] + q->done_win[1]) / span;
	out->latency_ms_p50 = percentile(q->lat_win[0], q->lat_win[1], 0.50);
	out->latency_ms_p99 = percentile(q->lat_win[0], q->lat_win[1], 0.99);
	pthread_mutex_unlock(&js->lock);
}

/* Call fn for up to limit jobs of queue qi in state st, oldest first (the
 * retry heap in heap order); js->lock held. */
static void each_job(struct jobs *js, enum job_queue qi, enum job_state st, int limit,
                     void (*fn)(struct jobs *js, const struct job *j, void *ctx), void *ctx)
{
	struct queue *q = &js->q[qi];
	const struct jlist *l = st == JOB_RUNNING ? &q->running
	                        : st == JOB_DEAD  ? &q->dead
	                                          : &q->held;
	int n = 0;

	if (st == JOB_SCHEDULED) {
		for (size_t i = 0; i < q->n_heap && n < limit; i++, n++)
			fn(js, q->heap[i], ctx);
		return;
	}
	if (st == JOB_READY) {
		/* Merge the lanes by the time each job became ready. */
		const struct job *at[LANES];

		for (int i = 0; i < LANES; i++)
			at[i] = q->ready[i].head;
		for (; n < limit; n++) {
			int best = -1;

			for (int i = 0; i < LANES; i++)
				if (at[i] && (best < 0 || at[i]->ready_ns < at[best]->ready_ns))
					best = i;
			if (best < 0)
				break;
			fn(js, at[best], ctx);
			at[best] = at[best]->next;
		}
		return;
	}
	for (const struct job *j = l->head; j && n < limit; j = j->next, n++)
		fn(js, j, ctx);
}

static void record(struct jobs *js, const struct job *j, void *ctx)
{
	struct job_record **next = ctx, *r = (*next)++;

	memset(r, 0, sizeof(*r));
	r->id = j->id;
	r->donation_id = j->donation_id;
	r->next_run_at = j->next_run_at;
	r->created_at = j->created_at;
	r->attempts = j->attempts;
	r->queue = (enum job_queue)j->queue;
	r->kind = (enum job_kind)j->kind;
	r->state = (enum job_state)j->state;
	if (j->endpoint != NO_ENDPOINT)
		snprintf(r->url, sizeof(r->url), "%s", js->cfg.endpoint[j->endpoint]);
	snprintf(r->last_error, sizeof(r->last_error), "%s", j->last_error ? j->last_error : "");
}

int jobs_each(struct jobs *js, enum job_queue qi, enum job_state st, int limit,
              int (*cb)(void *ud, const struct job_record *j), void *ud)
{
	struct job_record *v, *next;
	int rc = 0;

	if (limit <= 0)
		return 0;
	v = malloc((size_t)limit * sizeof(*v));
	if (!v)
		return -ENOMEM;
	next = v;
	/* Copy under the lock, call back without it. */
	pthread_mutex_lock(&js->lock);
	each_job(js, qi, st, limit, record, &next);
	pthread_mutex_unlock(&js->lock);
	for (struct job_record *r = v; r < next && !rc; r++)
		rc = cb(ud, r);
	free(v);
	return rc;
}

int jobs_wait_idle(struct jobs *js, enum job_queue qi, int timeout_ms)
{
	const struct queue *q = &js->q[qi];
	struct timespec until = realtime_in(timeout_ms);
	int rc = 0;

	pthread_mutex_lock(&js->lock);
	while (rc == 0 && (q->n_ready || q->running.n || q->n_heap || q->held.n))
		rc = pthread_cond_timedwait(&js->idle, &js->lock, &until);
	pthread_mutex_unlock(&js->lock);
	return rc ? -ETIMEDOUT : 0;
}

int jobs_metrics(struct jobs *js, struct buf *out)
{
	int rc = 0;

	/* The text format wants each family whole, HELP and TYPE first: one
	 * family at a time, every queue in it, all under one lock. */
	pthread_mutex_lock(&js->lock);
	rc |= buf_puts(out, "# HELP tally_jobs Jobs in each queue by state (scheduled: waiting to "
	                    "retry).\n"
	                    "# TYPE tally_jobs gauge\n");
	for (int qi = 0; qi < JOB_QUEUES; qi++) {
		const struct queue *q = &js->q[qi];
		const char *n = job_queue_names[qi];

		rc |= buf_printf(out,
		                 "tally_jobs{queue=\"%s\",state=\"ready\"} %lld\n"
		                 "tally_jobs{queue=\"%s\",state=\"running\"} %lld\n"
		                 "tally_jobs{queue=\"%s\",state=\"scheduled\"} %zu\n"
		                 "tally_jobs{queue=\"%s\",state=\"dead\"} %lld\n",
		                 n, (long long)q->n_ready, n, (long long)q->running.n, n, q->n_heap,
		                 n, (long long)q->dead.n);
	}
	rc |= buf_puts(out, "# HELP tally_queue_paused 1 when the job queue is paused, else 0.\n"
	                    "# TYPE tally_queue_paused gauge\n");
	for (int qi = 0; qi < JOB_QUEUES; qi++)
		rc |= buf_printf(out, "tally_queue_paused{queue=\"%s\"} %d\n", job_queue_names[qi],
		                 js->q[qi].paused);
	rc |= buf_puts(out, "# HELP tally_jobs_done_total Jobs that ended done (a declined capture "
	                    "too); kept across restarts.\n"
	                    "# TYPE tally_jobs_done_total counter\n");
	for (int qi = 0; qi < JOB_QUEUES; qi++)
		rc |= buf_printf(out, "tally_jobs_done_total{queue=\"%s\"} %lld\n",
		                 job_queue_names[qi], (long long)js->q[qi].done_total);
	rc |= buf_puts(out, "# HELP tally_jobs_failed_total Attempts that failed (to be retried, "
	                    "dead, or a declined capture); kept across restarts.\n"
	                    "# TYPE tally_jobs_failed_total counter\n");
	for (int qi = 0; qi < JOB_QUEUES; qi++)
		rc |= buf_printf(out, "tally_jobs_failed_total{queue=\"%s\"} %lld\n",
		                 job_queue_names[qi], (long long)js->q[qi].failed_total);
	rc |= buf_puts(out, "# HELP tally_job_queue_latency_seconds Time a job waited ready "
	                    "before a worker took it, since start.\n"
	                    "# TYPE tally_job_queue_latency_seconds histogram\n");
	for (int qi = 0; qi < JOB_QUEUES; qi++) {
		const struct queue *q = &js->q[qi];
		const char *n = job_queue_names[qi];
		uint64_t cum = 0;

		for (int b = 0; b <= LAT_BUCKETS; b++) {
			cum += q->lat_all[b];
			if (b % 4 == 3 && b < LAT_BUCKETS)
				rc |= buf_printf(
				    out,
				    "tally_job_queue_latency_seconds_bucket{queue=\"%s\","
				    "le=\"%.6g\"} %llu\n",
				    n, bucket_bound_ms(b) / 1000.0, (unsigned long long)cum);
		}
		rc |= buf_printf(out,
		                 "tally_job_queue_latency_seconds_bucket{queue=\"%s\",le=\"+Inf\"} "
		                 "%llu\n"
		                 "tally_job_queue_latency_seconds_sum{queue=\"%s\"} %.6f\n"
		                 "tally_job_queue_latency_seconds_count{queue=\"%s\"} %llu\n",
		                 n, (unsigned long long)cum, n, q->lat_sum_s, n,
		                 (unsigned long long)cum);
	}
	pthread_mutex_unlock(&js->lock);
	return rc ? -ENOMEM : 0;
}

void jobs_free(struct jobs *js)
{
	if (!js)
		return;
	jobs_stop(js, 0);
	for (int qi = 0; qi < JOB_QUEUES; qi++) {
		struct queue *q = &js->q[qi];

		for (int i = 0; q->workers && i < q->pol.workers; i++) {
			struct worker *w = &q->workers[i];

			sqlite3_finalize(w->don_stmt);
			if (w->db && sqlite3_close(w->db) != SQLITE_OK)
				log_msg(LOG_ERROR, "db.close_failed",
				        "a worker's connection is busy");
			if (w->multi)
				curl_multi_cleanup(w->multi);
			if (w->socks_lock_ok)
				pthread_mutex_destroy(&w->socks_lock);
			free(w->socks);
			if (w->efd >= 0)
				close(w->efd);
			free(w->out);
		}
		free(q->workers);
		free(q->heap);
	}
	for (size_t i = 0; i < js->table_cap; i++) {
		struct job *j = js->table[i];

		while (j) {
			struct job *next = j->hnext;

			job_free(j);
			j = next;
		}
	}
	free(js->table);
	pthread_mutex_destroy(&js->lock);
	pthread_cond_destroy(&js->idle);
	free(js);
}
