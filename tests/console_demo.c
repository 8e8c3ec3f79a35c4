/* tests/console_demo.c - the console on a fake source, for people and for
 * tests/tui_tmux.sh.
 *
 * A handful of campaigns in several currencies (one with a UTF-8 name, one
 * with wide CJK characters, one closed) whose totals grow on every fetch
 * unless paused; set_paused flips the status. SIGINT/SIGTERM set the stop
 * flag, so they also show that console_run() honours it.
 *
 * usage: console_demo [EXTRA]   EXTRA more generated campaigns (scrolling)
 */
#include "tui/console.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct demo {
	struct console_campaign *c;
	size_t n;
	uint64_t fetches;
	int64_t gifts;
	time_t started;
};

static const struct console_campaign seed[] = {
    {"spring-gala", "Spring Gala 2025", "USD", "active", 5000000, 1234567, 0, 210, 250, 0},
    {"library-fund", "Library Renovation Fund", "USD", "active", 2500000, 830000, 0, 95, 120, 0},
    {"cafe-creme", "Caf\xc3\xa9 Cr\xc3\xa8me Scholarship", "EUR", "active", 1000000, 402050, 0, 61,
     64, 0},
    {"animal-rescue", "Animal Rescue League", "GBP", "active", 0, 150099, 0, 33, 40, 0},
    {"maple-leaf", "Maple Leaf Youth Hockey", "CAD", "active", 750000, 99900, 0, 12, 15, 0},
    {"tokyo-relief", "\xe6\x9d\xb1\xe4\xba\xac Relief Fund", "JPY", "active", 5000000, 1203400, 0,
     44, 51, 0},
    {"old-campaign", "Old Campaign 2019", "USD", "closed", 1000000, 950000, 0, 400, 512, 0},
};

#define N_SEED (sizeof seed / sizeof seed[0])

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
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
		snprintf(cc->status, sizeof cc->status, "%s", pause ? "paused" : "active");
		return 0;
	}
	return -ENOENT;
}

int main(int argc, char **argv)
{
	struct demo d = {0};
	struct console_source src = {demo_fetch, demo_set_paused, &d};
	struct sigaction sa;
	size_t extra = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
	int rc;

	if (extra > 10000)
		extra = 10000;
	d.n = N_SEED + extra;
	d.c = calloc(d.n, sizeof *d.c);
	if (!d.c) {
		fprintf(stderr, "console_demo: out of memory\n");
		return 1;
	}
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
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	rc = console_run(&src, &stop_flag);
	free(d.c);
	if (rc < 0) {
		fprintf(stderr, "console_demo: %s\n", strerror(-rc));
		return 1;
	}
	return 0;
}
