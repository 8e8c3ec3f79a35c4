/* core/demo.c - demo campaigns and a donation stream. */
#include "core/demo.h"
#include "base/log.h"
#include "base/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct {
	const char *slug, *name;
	int64_t goal_cents;
	int weight;
	const char *category; /* the board shows a leaderboard per category */
} demo_campaigns[] = {
    {"food-bank", "Riverside Food Bank", 5000000, 5, "Community"},
    {"animal-rescue", "Hillside Animal Rescue", 2500000, 4, "Animals"},
    {"literacy", "Readers First Literacy Project", 1500000, 3, "Education"},
    {"river-cleanup", "Clean River Coalition", 1000000, 2, "Community"},
    {"youth-music", "Youth Music Workshop", 750000, 2, "Arts"},
    {"library", "Northside Library Friends", 500000, 1, "Education"},
};

static const char *const first[] = {"Ada",     "Grace",   "Alan", "Katherine", "Linus",  "Margaret",
                                    "Dennis",  "Barbara", "Ken",  "Frances",   "Edsger", "Radia",
                                    "Niklaus", "Hedy",    "Tim",  "Sophie",    "José",   "Zoë"};
static const char *const last[] = {"Lovelace", "Hopper", "Turing",   "Johnson", "Hamilton",
                                   "Ritchie",  "Liskov", "Thompson", "Allen",   "Perlman",
                                   "Wirth",    "Lamarr", "Wilson",   "Núñez"};
static const char *const messages[] = {"",
                                       "",
                                       "",
                                       "Go team!",
                                       "Happy giving day!",
                                       "In memory of Grandma",
                                       "Keep up the great work",
                                       "Matching my office's gift",
                                       ""};
static const int64_t amounts[] = {500, 1000, 2000, 2500, 2500, 5000, 5000, 10000, 25000, 100000};

struct demo {
	struct engine *engine;
	pthread_t thread;
	atomic_int stop;
	unsigned seed;
};

/* Refusals a demo gift may meet: a campaign paused or closed by staff, or
 * the demo's giving day closed. */
static int expected(int rc)
{
	return rc == TALLY_EPAUSED || rc == TALLY_ECLOSED || rc == TALLY_EDAY_BEFORE ||
	       rc == TALLY_EDAY_CLOSED;
}

static void ignore_done(void *ud, const struct engine_answer *a)
{
	(void)ud;
	if (a->rc && !expected(a->rc))
		log_msg(LOG_WARN, "demo.donation_failed", "%s", tally_strerror(a->rc));
}

static int pick_campaign(unsigned *seed)
{
	int total = 0, r;

	for (size_t i = 0; i < UTIL_ARRAY_LEN(demo_campaigns); i++)
		total += demo_campaigns[i].weight;
	r = (int)(rand_r(seed) % (unsigned)total);
	for (size_t i = 0; i < UTIL_ARRAY_LEN(demo_campaigns); i++) {
		r -= demo_campaigns[i].weight;
		if (r < 0)
			return (int)i;
	}
	return 0;
}

static void *demo_main(void *arg)
{
	struct demo *d = arg;
	int named = util_thread_name("demo");

	if (named)
		log_msg(LOG_WARN, "thread.name_failed", "%s", strerror(-named));

	while (!atomic_load(&d->stop)) {
		struct donation_req req;
		struct timespec ts;
		int c = pick_campaign(&d->seed), rc, replayed;
		const char *f = first[rand_r(&d->seed) % UTIL_ARRAY_LEN(first)];
		const char *l = last[rand_r(&d->seed) % UTIL_ARRAY_LEN(last)];

		memset(&req, 0, sizeof(req));
		req.amount_cents = amounts[rand_r(&d->seed) % UTIL_ARRAY_LEN(amounts)];
		memcpy(req.currency, "USD", 4);
		snprintf(req.name, sizeof(req.name), "%s %s", f, l);
		snprintf(req.email, sizeof(req.email), "%s.%u@example.org", "donor",
		         rand_r(&d->seed) % 5000);
		snprintf(req.message, sizeof(req.message), "%s",
		         messages[rand_r(&d->seed) % UTIL_ARRAY_LEN(messages)]);
		memcpy(req.payment_token, "tok_visa", 9);
		req.anonymous = rand_r(&d->seed) % 7 == 0;
		rc = engine_donate(d->engine, demo_campaigns[c].slug, &req, NULL, NULL, &replayed,
		                   ignore_done, NULL);
		if (rc && !expected(rc) && rc != TALLY_EOVERLOADED)
			log_msg(LOG_WARN, "demo.donation_refused", "%s", tally_strerror(rc));
		/* Bursty: mostly 50-300 ms apart, sometimes a quick run. */
		ts.tv_sec = 0;
		ts.tv_nsec = (long)(rand_r(&d->seed) % 4 == 0 ? 10 + rand_r(&d->seed) % 40
		                                              : 50 + rand_r(&d->seed) % 250) *
		             1000000L;
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* The day's sponsors: a match for every campaign, and a power hour from
 * now on for the first three campaigns to reach 25 new donors. Made once
 * (a restart finds them). */
static int seed_sponsors(struct engine *e)
{
	struct pool_spec *ps = calloc(1, sizeof(*ps));
	struct challenge_spec *cs = calloc(1, sizeof(*cs));
	int64_t now = util_now_ms();
	int rc = ps && cs ? 0 : -ENOMEM;

	if (!rc) {
		struct pool_row *p = &ps->row;

		snprintf(p->slug, sizeof(p->slug), "community-match");
		snprintf(p->name, sizeof(p->name), "Community Match");
		snprintf(p->sponsor, sizeof(p->sponsor), "Riverside Credit Union");
		memcpy(p->currency, "USD", 4);
		p->amount_cents = 25000000;
		p->ratio = 1;
		p->per_gift_cap_cents = 50000;
		ps->all = 1;
		ps->has_ratio = 1;
		rc = engine_pool_create_sync(e, ps, "demo");
		if (rc == TALLY_EPOOL_EXISTS)
			rc = 0;
	}
	if (!rc) {
		struct challenge_row *c = &cs->row;

		snprintf(c->slug, sizeof(c->slug), "power-hour");
		snprintf(c->name, sizeof(c->name), "Power Hour: 25 donors");
		snprintf(c->sponsor, sizeof(c->sponsor), "Hillside Bakery");
		memcpy(c->currency, "USD", 4);
		c->kind = CHALLENGE_DONORS;
		c->threshold = 25;
		c->bonus_cents = 100000;
		c->winners = 3;
		c->starts_at = now;
		c->ends_at = now + 3600 * 1000;
		cs->all = 1;
		rc = engine_challenge_create_sync(e, cs, "demo");
		if (rc == TALLY_ECHALLENGE_EXISTS)
			rc = 0;
	}
	if (rc)
		log_msg(LOG_ERROR, "demo.sponsors_failed", "%s", tally_strerror(rc));
	free(ps);
	free(cs);
	return rc;
}

/* The demo's giving day, from this start: early giving now, the opening
 * DEMO_OPENS_MS from now (the board counts down to it), the closing hours
 * later; in dollars, as the demo campaigns are. */
#define DEMO_OPENS_MS (3 * 60 * 1000)
#define DEMO_CLOSES_MS (6 * 3600 * 1000)

static void demo_day(struct engine *e)
{
	struct giving_day day = {0};
	int64_t now = util_now_ms();
	int rc;

	day.set = 1;
	snprintf(day.name, sizeof(day.name), "%s", "Demo Giving Day");
	day.early_at = now - 1000;
	day.opens_at = now + DEMO_OPENS_MS;
	day.closes_at = now + DEMO_CLOSES_MS;
	memcpy(day.currency, "USD", 4);
	rc = engine_day_set_sync(e, &day, "demo");
	if (rc == TALLY_EDAY_CURRENCY) { /* a database with campaigns in other currencies */
		day.currency[0] = '\0';
		rc = engine_day_set_sync(e, &day, "demo");
	}
	if (rc) /* the demo runs on without a day */
		log_msg(LOG_WARN, "demo.day_failed", "the demo's giving day: %s",
		        tally_strerror(rc));
}

int demo_start(struct engine *e, struct demo **out)
{
	struct demo *d;
	int rc;

	*out = NULL;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(demo_campaigns); i++) {
		struct campaign_spec spec;

		if (engine_campaign_id(e, demo_campaigns[i].slug, strlen(demo_campaigns[i].slug)) >
		    0)
			continue;
		memset(&spec, 0, sizeof(spec));
		snprintf(spec.slug, sizeof(spec.slug), "%s", demo_campaigns[i].slug);
		snprintf(spec.name, sizeof(spec.name), "%s", demo_campaigns[i].name);
		memcpy(spec.currency, "USD", 4);
		spec.goal_cents = demo_campaigns[i].goal_cents;
		snprintf(spec.category, sizeof(spec.category), "%s", demo_campaigns[i].category);
		spec.has_slug = spec.has_name = spec.has_currency = spec.has_goal = 1;
		spec.has_category = 1;
		rc = engine_campaign_create_sync(e, &spec, "demo");
		if (rc && rc != TALLY_EEXISTS) {
			log_msg(LOG_ERROR, "demo.create_failed", "%s: %s", spec.slug,
			        tally_strerror(rc));
			return rc;
		}
	}
	rc = seed_sponsors(e);
	if (rc)
		return rc;
	demo_day(e);
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->engine = e;
	d->seed = (unsigned)util_mono_ns();
	atomic_init(&d->stop, 0);
	rc = pthread_create(&d->thread, NULL, demo_main, d);
	if (rc) {
		free(d);
		return -rc;
	}
	*out = d;
	return 0;
}

void demo_stop(struct demo *d)
{
	if (!d)
		return;
	atomic_store(&d->stop, 1);
	if (pthread_join(d->thread, NULL))
		log_msg(LOG_WARN, "demo.join_failed", "the demo thread did not join");
	free(d);
}
