/* tui/console.h - the ncurses staff console.
 *
 * The console renders a view model (struct console_model) that it pulls from a
 * source (struct console_source): the in-process engine, or later a remote
 * server over the admin websocket. It never touches SQLite or sockets itself.
 * Only the thread that calls console_run() calls curses.
 */
#ifndef TALLY_TUI_CONSOLE_H
#define TALLY_TUI_CONSOLE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/* One campaign row as the console shows it. Strings are NUL-terminated UTF-8. */
struct console_campaign {
	char slug[65];
	char name[129];
	char currency[4];
	char status[8];      /* "active" | "paused" | "closed" */
	int64_t goal_cents;  /* 0 = no goal */
	int64_t total_cents; /* raised + matched + bonus */
	int64_t pending_cents;
	int64_t donor_count;
	int64_t donation_count;
	double per_min; /* donations per minute, recent window */
	/* Paused since (ms since the epoch, the server's clock); 0 when not
	 * paused or not known. */
	int64_t paused_since_ms;
	/* Succeeded gifts and their amount over the last hour. */
	int64_t hour_gifts, hour_cents;
	/* What total_cents is made of: donors' gifts, what match pools
	 * added, the challenges' bonuses. */
	int64_t raised_cents, matched_cents, bonus_cents;
	char category[257]; /* "" for none (TALLY_CATEGORY_SIZE) */
};

/* The job queues as the console shows them (payments, receipts, webhooks). */
#define CONSOLE_QUEUES_MAX 8
/* Dead jobs the model carries at most, all queues together. */
#define CONSOLE_DEAD_MAX 50

/* One job queue's counters. */
struct console_queue {
	char name[16];
	int paused;
	int64_t ready, running;
	int64_t scheduled;    /* failed, waiting to retry */
	int64_t dead;         /* out of attempts: wait for staff */
	int64_t done, failed; /* since ever */
	int64_t declined;     /* captures declined since the server started */
	double done_per_s;    /* recent window */
	/* ready -> started, recent window; < 0 when no job started in it */
	double latency_ms_p50, latency_ms_p99;
};

/* A dead job's failed attempts the model keeps at most (the newest; the
 * server keeps as many), and the bytes of each one's error (the server
 * cuts them there). */
#define CONSOLE_ATTEMPTS_MAX 10
#define CONSOLE_ATTEMPT_ERROR_SIZE 161

/* One failed attempt of a job. */
struct console_attempt {
	int attempt;     /* its number, from 1 */
	int64_t at_ms;   /* when it started, ms since the epoch */
	int64_t took_ms; /* how long it ran */
	char error[CONSOLE_ATTEMPT_ERROR_SIZE];
};

/* One dead job. */
struct console_job {
	int64_t id;
	int64_t donation_id; /* shown as "dn_N"; 0 when none */
	int attempts;
	char queue[16];
	char kind[24];        /* "capture", "receipt", "donation.succeeded", ... */
	char last_error[256]; /* whole, as the server keeps it */
	/* Its failed attempts, oldest first (0 when the source did not say). */
	int n_history;
	struct console_attempt history[CONSOLE_ATTEMPTS_MAX];
};

/* The longest --alert-paused-min, in minutes (a week). */
#define CONSOLE_ALERT_PAUSED_MAX 10080

/* Notable events the model keeps at most (the newest). */
#define CONSOLE_EVENTS_MAX 500

/* One notable event: a staff action, a declined gift, a dead job, viewers
 * shed, storage failing, a stalled loop. */
struct console_event {
	uint64_t seq;
	int64_t at_ms; /* ms since the epoch */
	char kind[16];
	char who[64];
	char text[160];
};

/* The card-testing shield (core/shield.h) as the console shows it: its
 * state, the campaigns whose shield is up (or that declined lately), the
 * worst offenders. Times are ms since the epoch on the server's clock; 0:
 * none. */
#define CONSOLE_SHIELD_CAMPAIGNS                                                                   \
	20                          /* campaigns kept at most: up first, then                      \
	                             * by declines per minute */
#define CONSOLE_SHIELD_OFFENDERS 10 /* offenders kept at most, worst first */

struct console_shield_campaign {
	char slug[65];
	int up;
	int64_t since_ms, until_ms; /* until 0: until staff lower it */
	int64_t declines_per_min, attempts_per_min;
};

/* An address, an email or a card fingerprint that declined lately. */
struct console_offender {
	char kind[8]; /* "address", "email" or "card" */
	char key[65];
	int64_t declines, attempts; /* in the shield's window */
	int blocked;
	int64_t until_ms; /* while blocked */
	char why[96];     /* the rule that blocked it */
};

struct console_shield {
	int known;     /* 0: the source has no shield, or has not said yet */
	char state[8]; /* "off", "down", "up" (a campaign's) or "raised" (staff's) */
	int64_t campaigns_up, declines_per_min, attempts_per_min, declines_total, trips;
	int64_t blocks_address, blocks_email, blocks_card; /* since start */
	int64_t refused_blocked, refused_below_min, refused_captcha, refused_capture;
	int64_t up_min_cents; /* the least gift while up (the rules') */
	int window_s, block_s, up_s;
	size_t n_campaigns;      /* <= CONSOLE_SHIELD_CAMPAIGNS */
	int64_t campaigns_total; /* how many the server listed */
	struct console_shield_campaign campaigns[CONSOLE_SHIELD_CAMPAIGNS];
	size_t n_offenders;      /* <= CONSOLE_SHIELD_OFFENDERS */
	int64_t offenders_total; /* how many the server counts */
	struct console_offender offenders[CONSOLE_SHIELD_OFFENDERS];
};

/* The whole view model. The source fills it; the console owns the array and
 * frees it with console_model_fini(). */
struct console_model {
	char server[96]; /* "127.0.0.1:8080" or a remote URL */
	int connected;   /* 0 when a remote source lost its server */
	char error[160]; /* last source error, "" when none */
	int64_t uptime_s;
	double donations_per_s;  /* committed, recent window */
	int64_t donations_total; /* committed since start */
	int64_t intake_depth;    /* donations waiting for the writer */
	int64_t ws_clients;      /* live websocket subscribers */
	/* Trouble the header's banner names: */
	int live_slow;              /* viewers updated this many times slower (1: not) */
	int live_refusing;          /* new viewers refused under load */
	int64_t storage_failing_ms; /* commits failing for this long (0: they work) */
	int synced;                 /* every campaign has arrived (a remote source) */
	int64_t server_now_ms;      /* the server's clock at its last state (ms since
	                             * the epoch); 0: not known */
	int alert_paused_min;       /* a campaign paused longer is an alert; 0: off */
	/* The giving day's schedule (ms since the epoch, the server's clock):
	 * early giving from day_early_ms (0: none), open from day_opens_ms to
	 * day_closes_ms; day_opens_ms 0: no day configured. */
	int64_t day_early_ms, day_opens_ms, day_closes_ms;
	char who[65];  /* the staff token attached, "" when not known */
	char role[16]; /* its role: viewer, operator or admin */
	size_t n_campaigns;
	struct console_campaign *campaigns; /* malloc'd, n_campaigns entries */
	size_t n_queues;                    /* <= CONSOLE_QUEUES_MAX; 0: no job queues */
	struct console_queue queues[CONSOLE_QUEUES_MAX];
	/* Dead jobs grouped by queue in queues[] order, oldest first in each;
	 * at most CONSOLE_DEAD_MAX of the queues' dead counts, shared fairly (see
	 * util_fair_share()). */
	size_t n_dead;
	struct console_job dead[CONSOLE_DEAD_MAX];
	/* The newest notable events, oldest first. */
	size_t n_events;
	struct console_event events[CONSOLE_EVENTS_MAX];
	/* The card-testing shield. */
	struct console_shield shield;
};

/* What the console can do to the server. Every function returns 0 or a
 * negative code (errno-style, or one of the source's own that errtext
 * explains) and may be called only from the console thread; the source does
 * its own locking. The console shows the error text on its message line. A
 * NULL action is refused with -ENOTSUP. */
struct console_source {
	/* Replace *m's contents with the current state (m->campaigns may be
	 * realloc'd). */
	int (*fetch)(void *ctx, struct console_model *m);
	/* Pause (pause=1) or resume (pause=0) the campaign with this slug. */
	int (*set_paused)(void *ctx, const char *slug, int pause);
	void *ctx;
	/* Pause (pause=1) or resume (pause=0) the job queue with this name. */
	int (*queue_set_paused)(void *ctx, const char *queue, int pause);
	/* Make every dead job of the queue ready again. */
	int (*queue_retry_dead)(void *ctx, const char *queue);
	/* Run one dead (or waiting) job again now. */
	int (*job_retry)(void *ctx, int64_t id);
	/* Drop one job for good (a discarded capture fails its gift). */
	int (*job_discard)(void *ctx, int64_t id);
	/* Close the campaign with this slug for good. */
	int (*close_campaign)(void *ctx, const char *slug);
	/* Refund the gift dn_<donation_id> (the processor's refund runs as a
	 * job); reason is the staff member's words. */
	int (*refund)(void *ctx, int64_t donation_id, const char *reason);
	/* Record an offline gift (a cheque, cash, a donor-advised fund) that
	 * staff received: amount in the campaign's minor units, method
	 * cheque|cash|daf|other, the donor's name, staff's note ("" for
	 * none). The new gift's id ("dn_N") into id. NULL: not offered. */
	int (*offline_gift)(void *ctx, const char *slug, int64_t amount_cents, const char *method,
	                    const char *name, const char *note, char *id, size_t idcap);
	/* The campaign's public JSON (with its recent gifts) into *out,
	 * malloc'd and NUL-terminated; the caller frees it. */
	int (*campaign_json)(void *ctx, const char *slug, char **out);
	/* Raise the card-testing shield on every campaign (raise=1), or
	 * lower it (raise=0: every campaign's comes down, every block is
	 * forgotten). NULL: not offered. */
	int (*shield_set)(void *ctx, int raise);
	/* Text for a code the actions returned, or NULL to use strerror(-rc).
	 * NULL: strerror() for every code. */
	const char *(*errtext)(void *ctx, int rc);
};

/* Free what a model owns and zero it (queues and dead jobs too). */
void console_model_fini(struct console_model *m);

/* Run the console on the calling thread until the user quits or *stop becomes
 * non-zero (checked at least every 250 ms). Initialises and ends curses.
 * Returns 0 on a normal quit, negative errno on failure (e.g. no terminal). */
int console_run(const struct console_source *src, volatile sig_atomic_t *stop);

/* Test hook: the header as console_run() would draw it from m, cols wide
 * (40 to 512), as text: each row with its trailing blanks cut and a '\n',
 * into out. It draws off screen (curses writing to /dev/null as an xterm),
 * so it needs no terminal; never while console_run() runs. Returns 0,
 * -EINVAL, -ENOSPC (out is too small), or -ENOTTY (curses did not start). */
int console_header_text(const struct console_model *m, int cols, char *out, size_t cap);

#endif
