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
	char status[8];     /* "active" | "paused" | "closed" */
	int64_t goal_cents; /* 0 = no goal */
	int64_t total_cents;
	int64_t pending_cents;
	int64_t donor_count;
	int64_t donation_count;
	double per_min; /* donations per minute, recent window */
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
	size_t n_campaigns;
	struct console_campaign *campaigns; /* malloc'd, n_campaigns entries */
};

/* What the console can do to the server. Every function returns 0 or a
 * negative errno-style code and may be called only from the console thread;
 * the source does its own locking. */
struct console_source {
	/* Replace *m's contents with the current state (m->campaigns may be
	 * realloc'd). */
	int (*fetch)(void *ctx, struct console_model *m);
	/* Pause (pause=1) or resume (pause=0) the campaign with this slug. */
	int (*set_paused)(void *ctx, const char *slug, int pause);
	void *ctx;
};

/* Free what a model owns and zero it. */
void console_model_fini(struct console_model *m);

/* Run the console on the calling thread until the user quits or *stop becomes
 * non-zero (checked at least every 250 ms). Initialises and ends curses.
 * Returns 0 on a normal quit, negative errno on failure (e.g. no terminal). */
int console_run(const struct console_source *src, volatile sig_atomic_t *stop);

#endif
