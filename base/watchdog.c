/* base/watchdog.c - notices a loop that stopped going round.
 *
 * DESIGN: a service loop that blocks, or spins inside one library call
 * (reading a closed socket again and again without polling, say), answers
 * nothing and may never notice a stop request; from outside it only looks
 * busy or idle. Each watched loop beats once per turn (one relaxed atomic
 * add); this thread looks every stall_ms / 4, and a loop whose beat has
 * not moved for stall_ms is stalled: one log line when it stalls, with
 * what its thread's CPU clock says (spinning: it ran over 2 % of the time;
 * blocked: it did not), and one when it beats again. /metrics shows
 * tally_loop_stalled{loop} (0 or 1) and tally_loop_stalls_total{loop}.
 * A stalled loop is not killed: what it holds is unknown, and a restart is
 * the supervisor's call (systemd's watchdog, a human with the log).
 */
#include "base/watchdog.h"
#include "base/buf.h"
#include "base/events.h"
#include "base/log.h"
#include "base/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WATCH_MAX 8

struct watch {
	struct watchdog *w;
	char name[32];
	atomic_ullong beat;
	atomic_int used;  /* joined and not left */
	atomic_int ready; /* cpu clock set */
	clockid_t cpu;    /* the loop thread's CPU clock */
	/* The watchdog's thread only, but stalled and stalls are read by
	 * /metrics: atomics. */
	unsigned long long seen;  /* beat at the last look */
	uint64_t seen_ns;         /* when it last moved */
	uint64_t cpu_at_stall_ns; /* the thread's CPU time then */
	atomic_int stalled;
	atomic_ullong stalls;
};

struct watchdog {
	int stall_ms;
	pthread_t thread;
	int started;
	pthread_mutex_t lock; /* stop and the condition */
	pthread_cond_t cond;
	int stop;
	struct watch watches[WATCH_MAX];
	atomic_int n; /* watches handed out */
};

static uint64_t cpu_ns(clockid_t c)
{
	struct timespec ts;

	if (clock_gettime(c, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void look(struct watchdog *w, uint64_t now)
{
	int n = atomic_load(&w->n);

	for (int i = 0; i < n; i++) {
		struct watch *h = &w->watches[i];
		unsigned long long beat = atomic_load_explicit(&h->beat, memory_order_relaxed);

		if (!atomic_load(&h->ready))
			continue;
		if (!atomic_load(&h->used)) {
			h->seen_ns = now; /* left: nothing to watch */
			continue;
		}
		if (beat != h->seen || !h->seen_ns) {
			if (atomic_load(&h->stalled)) {
				atomic_store(&h->stalled, 0);
				log_msg(LOG_WARN, "loop.recovered",
				        "the %s loop turns again after %.1f s", h->name,
				        (double)(now - h->seen_ns) / 1e9);
				events_note("stall", NULL, "the %s loop turns again after %.1f s",
				            h->name, (double)(now - h->seen_ns) / 1e9);
			}
			h->seen = beat;
			h->seen_ns = now;
			h->cpu_at_stall_ns = cpu_ns(h->cpu);
			continue;
		}
		if (!atomic_load(&h->stalled) &&
		    now - h->seen_ns >= (uint64_t)w->stall_ms * 1000000u) {
			/* CPU time over the silence, against the wall time. */
			uint64_t ran = cpu_ns(h->cpu) - h->cpu_at_stall_ns;
			double share = (double)ran / (double)(now - h->seen_ns);

			atomic_store(&h->stalled, 1);
			atomic_fetch_add(&h->stalls, 1);
			log_msg(LOG_ERROR, "loop.stalled",
			        "the %s loop has not turned for %.1f s and is %s (%.0f %% CPU): "
			        "it answers nothing meanwhile",
			        h->name, (double)(now - h->seen_ns) / 1e9,
			        share > 0.02 ? "spinning" : "blocked", share * 100.0);
			events_note("stall", NULL, "the %s loop has not turned for %.1f s (%s)",
			            h->name, (double)(now - h->seen_ns) / 1e9,
			            share > 0.02 ? "spinning" : "blocked");
		}
	}
}

static void *watchdog_main(void *arg)
{
	struct watchdog *w = arg;
	int named = util_thread_name("watchdog");

	if (named)
		log_msg(LOG_WARN, "thread.name_failed", "%s", strerror(-named));
	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		struct timespec until;
		uint64_t ns;

		pthread_mutex_unlock(&w->lock);
		look(w, util_mono_ns());
		pthread_mutex_lock(&w->lock);
		clock_gettime(CLOCK_MONOTONIC, &until);
		ns = (uint64_t)until.tv_nsec + (uint64_t)w->stall_ms * 1000000u / 4;
		until.tv_sec += (time_t)(ns / 1000000000u);
		until.tv_nsec = (long)(ns % 1000000000u);
		while (!w->stop && pthread_cond_timedwait(&w->cond, &w->lock, &until) == 0)
			;
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int watchdog_new(int stall_ms, struct watchdog **out)
{
	struct watchdog *w = calloc(1, sizeof(*w));
	pthread_condattr_t ca;
	int rc;

	*out = NULL;
	if (!w)
		return -ENOMEM;
	w->stall_ms = stall_ms > 0 ? stall_ms : 2000;
	if ((rc = pthread_condattr_init(&ca)) != 0) {
		free(w);
		return -rc;
	}
	rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (!rc)
		rc = pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (rc || (rc = pthread_mutex_init(&w->lock, NULL)) != 0) {
		free(w);
		return -rc;
	}
	*out = w;
	return 0;
}

int watchdog_start(struct watchdog *w)
{
	int rc = pthread_create(&w->thread, NULL, watchdog_main, w);

	if (rc)
		return -rc;
	w->started = 1;
	return 0;
}

void watchdog_free(struct watchdog *w)
{
	if (!w)
		return;
	if (w->started) {
		pthread_mutex_lock(&w->lock);
		w->stop = 1;
		pthread_cond_signal(&w->cond);
		pthread_mutex_unlock(&w->lock);
		if (pthread_join(w->thread, NULL))
			log_msg(LOG_ERROR, "watchdog.join_failed", "the watchdog did not join");
	}
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

struct watch *watchdog_join(struct watchdog *w, const char *name)
{
	int i = atomic_fetch_add(&w->n, 1);
	struct watch *h;

	if (i >= WATCH_MAX) {
		atomic_fetch_sub(&w->n, 1);
		return NULL;
	}
	h = &w->watches[i];
	h->w = w;
	snprintf(h->name, sizeof(h->name), "%s", name);
	if (pthread_getcpuclockid(pthread_self(), &h->cpu))
		h->cpu = CLOCK_THREAD_CPUTIME_ID; /* reads the watchdog's: "blocked" */
	atomic_store(&h->used, 1);
	atomic_store(&h->ready, 1);
	return h;
}

void watch_beat(struct watch *h)
{
	if (h)
		atomic_fetch_add_explicit(&h->beat, 1, memory_order_relaxed);
}

void watch_leave(struct watch *h)
{
	if (h)
		atomic_store(&h->used, 0);
}

int watchdog_stalled(struct watchdog *w, const char *name)
{
	int n = atomic_load(&w->n);

	for (int i = 0; i < n && i < WATCH_MAX; i++)
		if (atomic_load(&w->watches[i].ready) && !strcmp(w->watches[i].name, name))
			return atomic_load(&w->watches[i].stalled);
	return 0;
}

int watchdog_metrics(struct watchdog *w, struct buf *b)
{
	int n = atomic_load(&w->n), rc = 0;

	rc |= buf_puts(b, "# HELP tally_loop_stalled 1 while a service loop has not turned for "
	                  "the watchdog's interval.\n# TYPE tally_loop_stalled gauge\n");
	for (int i = 0; i < n && i < WATCH_MAX; i++)
		if (atomic_load(&w->watches[i].ready))
			rc |= buf_printf(b, "tally_loop_stalled{loop=\"%s\"} %d\n",
			                 w->watches[i].name, atomic_load(&w->watches[i].stalled));
	rc |= buf_puts(b, "# HELP tally_loop_stalls_total Times a service loop stalled.\n"
	                  "# TYPE tally_loop_stalls_total counter\n");
	for (int i = 0; i < n && i < WATCH_MAX; i++)
		if (atomic_load(&w->watches[i].ready))
			rc |= buf_printf(b, "tally_loop_stalls_total{loop=\"%s\"} %llu\n",
			                 w->watches[i].name,
			                 (unsigned long long)atomic_load(&w->watches[i].stalls));
	return rc ? -ENOMEM : 0;
}
