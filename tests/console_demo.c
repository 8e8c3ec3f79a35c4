/* tests/console_demo.c - the console on a fake source, for people and for
 * tests/tui_tmux.sh.
 *
 * A handful of campaigns in several currencies (one with a UTF-8 name, one
 * with wide CJK characters, one closed) whose totals grow on every fetch
 * unless paused; set_paused flips the status (and notes since when it is
 * paused: the header's alert comes after 15 minutes). Three job queues whose done
 * counts grow unless paused, and a few dead jobs (errors with UTF-8 and
 * with an escape sequence, and their attempts' histories); retry and discard remove a job,
 * retry-dead empties a queue's list. Job 103 is "running": retrying or discarding it fails with the
 * demo's own code, which errtext explains. The card-testing shield is up on animal-rescue, with a
 * blocked address, a blocked card and a watched email; S raises it on every campaign (the state
 * says raised) and lowering it brings every campaign's down and forgets the offenders, as the
 * server's shield_lower does. SIGINT/SIGTERM set the stop flag, so they also show that
 * console_run() honours it.
 *
 * usage: console_demo [EXTRA [DEAD]]
 *   EXTRA more generated campaigns, DEAD more dead payments jobs (scrolling)
 */
#include "base/util.h"
#include "tui/console.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEMO_QUEUES 3
#define DEMO_EBUSY (-5001) /* the demo's own error code, for errtext */
#define BUSY_JOB 103

struct demo {
	struct console_campaign *c;
	size_t n;
	uint64_t fetches;
	int64_t gifts;
	time_t started;
	struct console_queue q[DEMO_QUEUES];
	struct console_job *dead; /* every dead job, any queue */
	size_t n_dead;
	int shield_raised, shield_lowered; /* by S; lowered: nothing is up or blocked */
};

static const struct console_queue seed_queues[DEMO_QUEUES] = {
    {"payments", 0, 3, 1, 2, 0, 1200, 4, 40, 6.5, 120, 1250},
    {"receipts", 0, 0, 0, 0, 0, 1180, 0, 0, 6.4, 3.4, 48.2},
    {"webhooks", 0, 0, 0, 1, 0, 90, 2, 0, 0.5, -1, -1},
};

/* (their histories are made up at start: demo_history) */
static const struct console_job seed_dead[] = {
    {101, 41, 8, "payments", "capture", "processing_error: simulated transient failure",
     .n_history = 0},
    {102, 57, 8, "payments", "capture",
     "processor timeout after 30 s: no answer from https://api.processor.example/v1/"
     "payment_intents/pi_3NqLx2 (connect 12 ms, TLS 48 ms, the first byte never came); "
     "the next attempt reads the intent first and confirms it at most once",
     .n_history = 0},
    {BUSY_JOB, 58, 8, "payments", "capture", "processing_error: rate limited", .n_history = 0},
    {205, 12, 10, "receipts", "receipt", "smtp: 550 5.1.1 <ada@example.org>: mailbox unavailable",
     .n_history = 0},
    {306, 12, 12, "webhooks", "donation.succeeded", "hook said bad\x1b]0;pwned\x07 reply",
     .n_history = 0},
    {307, 13, 12, "webhooks", "donation.failed", "point de terminaison: r\xc3\xa9ponse 410",
     .n_history = 0},
};

#define N_SEED_DEAD (sizeof seed_dead / sizeof seed_dead[0])

static const struct console_campaign seed[] = {
    {"spring-gala", "Spring Gala 2025", "USD", "active", 5000000, 1234567, 0, 210, 250, 0, 0, 0, 0,
     0, 0, 0, "Arts & Letters"},
    {"library-fund", "Library Renovation Fund", "USD", "active", 2500000, 830000, 0, 95, 120, 0, 0,
     0, 0, 0, 0, 0, "Arts & Letters"},
    {"cafe-creme", "Caf\xc3\xa9 Cr\xc3\xa8me Scholarship", "EUR", "active", 1000000, 402050, 0, 61,
     64, 0, 0, 0, 0, 0, 0, 0, "Arts & Letters"},
    {"animal-rescue", "Animal Rescue League", "GBP", "active", 0, 150099, 0, 33, 40, 0, 0, 0, 0, 0,
     0, 0, "Arts & Letters"},
    {"maple-leaf", "Maple Leaf Youth Hockey", "CAD", "active", 750000, 99900, 0, 12, 15, 0, 0, 0, 0,
     0, 0, 0, "Arts & Letters"},
    {"tokyo-relief", "\xe6\x9d\xb1\xe4\xba\xac Relief Fund", "JPY", "active", 5000000, 1203400, 0,
     44, 51, 0, 0, 0, 0, 0, 0, 0, "Arts & Letters"},
    {"old-campaign", "Old Campaign 2019", "USD", "closed", 1000000, 950000, 0, 400, 512, 0, 0, 0, 0,
     0, 0, 0, "Arts & Letters"},
};

#define N_SEED (sizeof seed / sizeof seed[0])

/* A dead job's failed attempts: the newest CONSOLE_ATTEMPTS_MAX of its
 * attempts, a minute apart up to now, each with its error (the older ones
 * a timeout, so the table shows more than one text). */
static void demo_history(struct console_job *j, int64_t now_ms)
{
	int n = j->attempts < CONSOLE_ATTEMPTS_MAX ? j->attempts : CONSOLE_ATTEMPTS_MAX;

	j->n_history = n;
	for (int k = 0; k < n; k++) {
		struct console_attempt *a = &j->history[k];

		a->attempt = j->attempts - n + 1 + k;
		a->at_ms = now_ms - (int64_t)(n - k) * 60000;
		a->took_ms = 40 + 15 * (int64_t)k;
		snprintf(a->error, sizeof a->error, "%.160s",
		         k % 3 == 1 && k < n - 1 ? "connect timeout after 10000 ms"
		                                 : j->last_error);
	}
}

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static struct console_queue *demo_queue(struct demo *d, const char *name)
{
	for (size_t i = 0; i < DEMO_QUEUES; i++)
		if (strcmp(d->q[i].name, name) == 0)
			return &d->q[i];
	return NULL;
}

static void demo_fetch_queues(struct demo *d, struct console_model *m)
{
	int64_t avail[DEMO_QUEUES] = {0};
	size_t take[DEMO_QUEUES];

	for (size_t i = 0; i < DEMO_QUEUES; i++) {
		struct console_queue *q = &d->q[i];
		if (!q->paused) {
			q->done += (int64_t)(3 - i);
			q->ready = (int64_t)((d->fetches + i) % 4);
		}
	}
	memcpy(m->queues, d->q, sizeof d->q); /* dead: counted below */
	for (size_t i = 0; i < DEMO_QUEUES; i++)
		if (d->q[i].paused)
			m->queues[i].done_per_s = 0;
	for (size_t k = 0; k < d->n_dead; k++) {
		size_t i = (size_t)(demo_queue(d, d->dead[k].queue) - d->q);
		avail[i]++;
		m->queues[i].dead++;
	}
	m->n_queues = DEMO_QUEUES;
	/* each queue's share of the list, in queue order, oldest first */
	util_fair_share(avail, DEMO_QUEUES, CONSOLE_DEAD_MAX, take);
	m->n_dead = 0;
	for (size_t i = 0; i < DEMO_QUEUES; i++)
		for (size_t k = 0; k < d->n_dead && take[i] > 0; k++)
			if (strcmp(d->dead[k].queue, d->q[i].name) == 0) {
				m->dead[m->n_dead++] = d->dead[k];
				take[i]--;
			}
}

/* The shield: up on animal-rescue for ten minutes from start, an address
 * and a card blocked, an email watched; raised by S; lowered, nothing. */
static void demo_fetch_shield(struct demo *d, struct console_model *m)
{
	struct console_shield *sh = &m->shield;
	int64_t started = (int64_t)d->started * 1000;

	memset(sh, 0, sizeof *sh);
	sh->known = 1;
	sh->window_s = 600;
	sh->block_s = 900;
	sh->up_s = 600;
	sh->up_min_cents = 500;
	sh->attempts_per_min = 140;
	sh->trips = 1 + d->shield_raised;
	sh->blocks_address = 1;
	sh->blocks_card = 1;
	sh->refused_blocked = 37;
	sh->refused_below_min = 5;
	sh->refused_capture = 3;
	if (d->shield_lowered && !d->shield_raised) {
		snprintf(sh->state, sizeof sh->state, "down");
		return;
	}
	snprintf(sh->state, sizeof sh->state, "%s", d->shield_raised ? "raised" : "up");
	sh->campaigns_up = d->shield_raised ? 3 : 1;
	sh->declines_per_min = 64;
	sh->campaigns_total = 2;
	sh->n_campaigns = 2;
	sh->campaigns[0] = (struct console_shield_campaign){
	    "animal-rescue", 1, started, d->shield_raised ? 0 : started + 600000, 61, 70};
	sh->campaigns[1] = (struct console_shield_campaign){
	    "spring-gala", d->shield_raised, d->shield_raised ? started : 0, 0, 3, 70};
	sh->offenders_total = d->shield_lowered ? 0 : 3;
	if (d->shield_lowered)
		return;
	sh->n_offenders = 3;
	sh->offenders[0] = (struct console_offender){
	    "address", "203.0.113.7", 58, 60, 1, started + 900000, "58 declines of 60 attempts"};
	sh->offenders[1] = (struct console_offender){
	    "card", "fp_9Xk2mQ", 3, 3, 1, started + 900000, "3 declines of 3 attempts"};
	sh->offenders[2] = (struct console_offender){"email", "carder@example.net", 2, 0, 0, 0, ""};
}

static int demo_shield_set(void *ctx, int raise)
{
	struct demo *d = ctx;

	d->shield_raised = raise;
	d->shield_lowered |= !raise;
	return 0;
}

static int demo_fetch(void *ctx, struct console_model *m)
{
	struct demo *d = ctx;
	struct console_campaign *a;
	int64_t new_gifts = 0;

	d->fetches++;
	for (size_t i = 0; i < d->n; i++) {
		struct console_campaign *cc = &d->c[i];
		if (strcmp(cc->status, "active") != 0) {
			cc->per_min = 0;
			continue;
		}
		/* deterministic, uneven growth */
		int64_t gift = 500 + (int64_t)((d->fetches * 7919 + i * 104729) % 9500);
		cc->total_cents += gift;
		cc->donation_count++;
		if ((d->fetches + i) % 3)
			cc->donor_count++;
		cc->per_min = 240.0 / (double)(i + 1);
		new_gifts++;
	}
	d->gifts += new_gifts;

	a = realloc(m->campaigns, d->n * sizeof *a);
	if (!a)
		return -ENOMEM;
	memcpy(a, d->c, d->n * sizeof *a);
	m->campaigns = a;
	m->n_campaigns = d->n;
	snprintf(m->server, sizeof m->server, "demo (fake source)");
	m->connected = 1;
	m->error[0] = '\0';
	m->uptime_s = (int64_t)(time(NULL) - d->started);
	m->donations_per_s = (double)new_gifts * 4;
	m->donations_total = d->gifts;
	m->intake_depth = (int64_t)(d->fetches % 7);
	m->ws_clients = 42;
	m->server_now_ms = util_now_ms();
	m->alert_paused_min = 15;
	demo_fetch_queues(d, m);
	demo_fetch_shield(d, m);
	return 0;
}

static int demo_set_paused(void *ctx, const char *slug, int pause)
{
	struct demo *d = ctx;

	for (size_t i = 0; i < d->n; i++) {
		struct console_campaign *cc = &d->c[i];
		if (strcmp(cc->slug, slug) != 0)
			continue;
		if (strcmp(cc->status, "closed") == 0)
			return -EPERM;
		if (pause != !strcmp(cc->status, "paused"))
			cc->paused_since_ms = pause ? util_now_ms() : 0;
		snprintf(cc->status, sizeof cc->status, "%s", pause ? "paused" : "active");
		return 0;
	}
	return -ENOENT;
}

static int demo_queue_set_paused(void *ctx, const char *queue, int pause)
{
	struct console_queue *q = demo_queue(ctx, queue);

	if (!q)
		return -ENOENT;
	q->paused = pause;
	return 0;
}

/* Drop dead job k; it counts as done (retried) or failed (discarded). */
static void demo_drop(struct demo *d, size_t k, int retried)
{
	struct console_queue *q = demo_queue(d, d->dead[k].queue);

	if (retried)
		q->done++;
	else
		q->failed++;
	memmove(&d->dead[k], &d->dead[k + 1], (d->n_dead - k - 1) * sizeof *d->dead);
	d->n_dead--;
}

static int demo_queue_retry_dead(void *ctx, const char *queue)
{
	struct demo *d = ctx;

	if (!demo_queue(d, queue))
		return -ENOENT;
	for (size_t k = d->n_dead; k-- > 0;)
		if (strcmp(d->dead[k].queue, queue) == 0 && d->dead[k].id != BUSY_JOB)
			demo_drop(d, k, 1);
	return 0;
}

static int demo_job_action(struct demo *d, int64_t id, int retry)
{
	for (size_t k = 0; k < d->n_dead; k++) {
		if (d->dead[k].id != id)
			continue;
		if (id == BUSY_JOB)
			return DEMO_EBUSY;
		demo_drop(d, k, retry);
		return 0;
	}
	return -ENOENT;
}

static int demo_job_retry(void *ctx, int64_t id)
{
	return demo_job_action(ctx, id, 1);
}

static int demo_job_discard(void *ctx, int64_t id)
{
	return demo_job_action(ctx, id, 0);
}

/* An offline gift: counted at once, as the engine counts it; the ids
 * start at dn_9001. A closed campaign refuses it. */
static int demo_offline_gift(void *ctx, const char *slug, int64_t amount_cents, const char *method,
                             const char *name, const char *note, char *id, size_t idcap)
{
	static int64_t next = 9001;
	struct demo *d = ctx;

	(void)method;
	(void)name;
	(void)note;
	for (size_t i = 0; i < d->n; i++) {
		struct console_campaign *cc = &d->c[i];

		if (strcmp(cc->slug, slug) != 0)
			continue;
		if (strcmp(cc->status, "closed") == 0)
			return -EPERM;
		cc->total_cents += amount_cents;
		cc->donation_count++;
		cc->donor_count++;
		snprintf(id, idcap, "dn_%lld", (long long)next++);
		return 0;
	}
	return -ENOENT;
}

static const char *demo_errtext(void *ctx, int rc)
{
	(void)ctx;
	return rc == DEMO_EBUSY ? "an attempt of this job is in flight (demo)" : NULL;
}

int main(int argc, char **argv)
{
	struct demo d = {0};
	struct console_source src = {
	    .fetch = demo_fetch,
	    .set_paused = demo_set_paused,
	    .ctx = &d,
	    .queue_set_paused = demo_queue_set_paused,
	    .queue_retry_dead = demo_queue_retry_dead,
	    .job_retry = demo_job_retry,
	    .job_discard = demo_job_discard,
	    .errtext = demo_errtext,
	    .offline_gift = demo_offline_gift,
	    .shield_set = demo_shield_set,
	};
	struct sigaction sa;
	size_t extra = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
	size_t extra_dead = argc > 2 ? strtoul(argv[2], NULL, 10) : 0;
	int rc;

	if (extra > 10000)
		extra = 10000;
	if (extra_dead > 10000)
		extra_dead = 10000;
	d.n = N_SEED + extra;
	d.c = calloc(d.n, sizeof *d.c);
	d.n_dead = N_SEED_DEAD + extra_dead;
	d.dead = calloc(d.n_dead, sizeof *d.dead);
	if (!d.c || !d.dead) {
		fprintf(stderr, "console_demo: out of memory\n");
		free(d.c);
		free(d.dead);
		return 1;
	}
	memcpy(d.q, seed_queues, sizeof d.q);
	memcpy(d.dead, seed_dead, sizeof seed_dead);
	for (size_t k = N_SEED_DEAD; k < d.n_dead; k++) {
		struct console_job *j = &d.dead[k];
		j->id = 1000 + (int64_t)k;
		j->donation_id = 500 + (int64_t)k;
		j->attempts = 8;
		memcpy(j->queue, "payments", 9);
		memcpy(j->kind, "capture", 8);
		snprintf(j->last_error, sizeof j->last_error, "generated failure %zu", k);
	}
	for (size_t k = 0; k < d.n_dead; k++)
		demo_history(&d.dead[k], (int64_t)time(NULL) * 1000);
	memcpy(d.c, seed, sizeof seed);
	for (size_t i = N_SEED; i < d.n; i++) {
		struct console_campaign *cc = &d.c[i];
		snprintf(cc->slug, sizeof cc->slug, "team-%04zu", i - N_SEED + 1);
		snprintf(cc->name, sizeof cc->name, "Peer Team %zu", i - N_SEED + 1);
		memcpy(cc->currency, "USD", 4);
		memcpy(cc->status, "active", 7);
		cc->goal_cents = 100000;
		cc->total_cents = (int64_t)(i * 1337 % 90000);
	}
	d.started = time(NULL);

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	if (sigemptyset(&sa.sa_mask) || sigaction(SIGINT, &sa, NULL) ||
	    sigaction(SIGTERM, &sa, NULL)) {
		fprintf(stderr, "console_demo: sigaction: %s\n", strerror(errno));
		free(d.c);
		free(d.dead);
		return 1;
	}

	rc = console_run(&src, &stop_flag);
	free(d.c);
	free(d.dead);
	if (rc < 0) {
		fprintf(stderr, "console_demo: %s\n", strerror(-rc));
		return 1;
	}
	return 0;
}
