/* tui/console_int.h - what the console's files share; only the .c files of tui/ include it.
 *
 * struct console is the whole state of one console. The loop (console.c)
 * owns it and hands it to the views (view_*.c) and to the drawing code
 * (console_draw.c). Key handlers change state and set DIRTY_* bits; only
 * render() in console.c draws, once per pass.
 *
 * Strings that came from the source are drawn only through draw_text() or
 * draw_put(), which cut them with console_fmt_trunc() (see console_draw.c).
 * Only the console thread calls any of this.
 */
#ifndef TALLY_TUI_CONSOLE_INT_H
#define TALLY_TUI_CONSOLE_INT_H

#define NCURSES_WIDECHAR 1

#include "console.h"

#include <curses.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MSG_MS 5000 /* how long a result stays on the message line */
#define VIEW_DEPTH 4
#define FILTER_CAP 64 /* bytes of filter text, NUL included */
#define COL_GAP 2
#define TEXT_CAP 512  /* one cell or line of text, truncated */
#define TCOLS_MAX 16  /* columns a table of draw_table_*() may have */
#define HEADER_ROWS 2 /* status and alerts; the day's numbers */
#define HIST_N 61     /* seconds of header history (a minute, both ends) */

/* Keys: characters as themselves, curses KEY_* codes apart from them. */
#define KEYFN(k) (0x1000000 | (k))
#define KEY_CTRL(ch) ((ch)&0x1f)
#define KEY_ESC 27

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Colours are semantic roles; console.c maps them through a scheme (with a
 * monochrome fallback) into c->attr[]. */
enum role {
	ROLE_NORMAL,
	ROLE_HEADER,
	ROLE_OK,
	ROLE_WARN,
	ROLE_ERROR,
	ROLE_SELECTION,
	ROLE_DIM,
	ROLE_KEY,
	ROLE_COUNT
};

enum {
	DIRTY_HEADER = 1 << 0,
	DIRTY_BODY = 1 << 1,
	DIRTY_MSG = 1 << 2,
	DIRTY_BAR = 1 << 3,
	DIRTY_ALL = DIRTY_HEADER | DIRTY_BODY | DIRTY_MSG | DIRTY_BAR,
	DIRTY_SCREEN = 1 << 4, /* repaint the whole terminal from scratch */
};

enum prompt { PROMPT_NONE, PROMPT_FILTER, PROMPT_CONFIRM, PROMPT_INPUT };

struct console;
struct view_ops;

typedef void (*action_fn)(struct console *c);

#define KEYS_PER_ENTRY 4

struct key_entry {
	int keys[KEYS_PER_ENTRY]; /* 0-terminated when shorter */
	const char *name;         /* as the help screen and key bar show it */
	const char *bar;          /* key bar label; NULL: help screen only */
	const char *help;
	action_fn fn;
};

struct view_ops {
	const char *title;
	void (*draw)(struct console *c, WINDOW *w);
	int (*key)(struct console *c, int key); /* 1 when the key was used */
	const struct key_entry *keys;
	size_t n_keys;
};

struct console {
	const struct console_source *src;
	volatile sig_atomic_t *stop;
	int quit;

	struct console_model model;
	int fetch_rc; /* last fetch: 0 or a negative errno */

	/* model.campaigns filtered and sorted; valid until the next fetch */
	const struct console_campaign **rows;
	size_t n_rows, rows_cap;
	size_t sel, top;   /* selected row, first row shown */
	char sel_slug[65]; /* the selection follows this campaign */
	size_t sort;       /* index into sorts[] (view_campaigns.c) */
	char filter[FILTER_CAP];

	/* the events view: model.events that match the filter, oldest first */
	const struct console_event *erows[CONSOLE_EVENTS_MAX];
	size_t n_erows, etop; /* rows; first row shown */
	int efollow;          /* at the bottom: new events scroll into view */

	/* the campaign view: which one, its public JSON (recent gifts) and
	 * when it was read (monotonic ms; 0: read it) */
	char detail_slug[65];
	char *detail_json;
	int64_t detail_at;
	/* the job view: the job as it was when the view opened */
	struct console_job job;

	/* the queues view: rows are model.queues, then model.dead */
	size_t qsel, qtop;   /* selected row; first dead job shown */
	char qsel_queue[16]; /* the selection follows this queue ... */
	int64_t qsel_job;    /* ... or this dead job of it (0: a queue row) */

	enum prompt prompt;
	action_fn confirm_fn;     /* what a 'y' does, with the fields below */
	char confirm_q[TEXT_CAP]; /* the question */
	int confirm_pause;        /* 1 pause, 0 resume */
	char confirm_slug[65];    /* a campaign's slug or a queue's name */
	char confirm_name[129];
	int64_t confirm_job;

	/* A line of text asked for (console_input): the question, what was
	 * typed, and what Enter does with it. */
	char input_q[TEXT_CAP];
	char input[256];
	action_fn input_fn;
	/* The offline gift being entered on the campaign view, one answer
	 * at a time (view_campaign.c). */
	struct {
		char slug[65], currency[4];
		int64_t amount_cents;
		char method[8];
		char name[256], note[256];
	} offline;

	char msg[256];
	enum role msg_role;
	int64_t msg_until; /* monotonic ms; 0: no message */

	const struct view_ops *views[VIEW_DEPTH];
	int depth;
	size_t help_top;

	/* The header's history, one sample a second (console_sample): gifts/s
	 * for the sparkline, the payments queue's done and declined counts
	 * for the success rate over the last minute. */
	double rate_hist[HIST_N];
	int64_t pay_done[HIST_N], pay_declined[HIST_N];
	size_t n_hist;      /* samples taken, ever; [n_hist % HIST_N] next */
	int64_t sampled_ms; /* monotonic, the last sample */

	WINDOW *w_header, *w_body, *w_msg, *w_bar; /* NULL when too small */
	int too_small;
	int cursor; /* current curs_set() state */
	unsigned dirty;
	int utf8;
	attr_t attr[ROLE_COUNT];
};

/* ---- small helpers ------------------------------------------------------- */

static inline int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* strerror_r() comes as the XSI (int) or the GNU (char *) variant depending
 * on feature macros; pick by its type. */
static inline const char *errtext_gnu(char *r, char *buf, size_t cap)
{
	(void)buf;
	(void)cap;
	return r;
}

static inline const char *errtext_xsi(int r, char *buf, size_t cap)
{
	if (r != 0)
		snprintf(buf, cap, "error %d", r);
	return buf;
}

/* r is evaluated once: _Generic's controlling expression is not evaluated. */
#define ERRTEXT_CALL(r, buf, cap)                                                                  \
	_Generic((r), char * : errtext_gnu, default : errtext_xsi)((r), (buf), (cap))

static inline const char *errtext(int err, char *buf, size_t cap)
{
	buf[0] = '\0';
	return ERRTEXT_CALL(strerror_r(err, buf, cap), buf, cap);
}

__attribute__((format(printf, 3, 4))) static inline void message(struct console *c, enum role role,
                                                                 const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof c->msg, fmt, ap);
	va_end(ap);
	c->msg_role = role;
	c->msg_until = now_ms() + MSG_MS;
	c->dirty |= DIRTY_MSG;
}

/* Text for a code an action of the source returned. */
static inline const char *action_errtext(const struct console *c, int rc, char *buf, size_t cap)
{
	const char *t = c->src->errtext ? c->src->errtext(c->src->ctx, rc) : NULL;

	return t ? t : errtext(rc < 0 ? -rc : rc, buf, cap);
}

/* 1 when the attached staff token may do what (its role is need or above:
 * viewer < operator < admin); else 0, and the message line says why. A
 * source that names no role (the in-process console) may do anything. */
static inline int console_may(struct console *c, const char *need, const char *what)
{
	static const char *const order[] = {"viewer", "operator", "admin"};
	int have = -1, want = 0;

	if (!c->model.role[0])
		return 1;
	for (int i = 0; i < 3; i++) {
		have = strcmp(c->model.role, order[i]) ? have : i;
		want = strcmp(need, order[i]) ? want : i;
	}
	if (have >= want)
		return 1;
	message(c, ROLE_WARN, "token %s is a %s: to %s it needs the %s role", c->model.who,
	        c->model.role, what, need);
	return 0;
}

/* ---- console.c: the loop, the view stack, prompts, key dispatch ---------- */

/* Pull a fresh model from the source; the views find their selection again. */
void console_fetch(struct console *c);

/* The view on top of the stack. */
const struct view_ops *console_view_top(const struct console *c);

/* Show v over the current view. */
void console_view_push(struct console *c, const struct view_ops *v);

/* Back to the view under the top one (never below the main view). */
void console_view_pop(struct console *c);

/* Open the y/n prompt: on y, fn runs with the confirm_* fields. */
__attribute__((format(printf, 3, 4))) void console_ask(struct console *c, action_fn fn,
                                                       const char *fmt, ...);

/* Ask for a line of text on the message line: Enter runs fn with it in
 * c->input, Esc cancels. */
__attribute__((format(printf, 3, 4))) void console_input(struct console *c, action_fn fn,
                                                         const char *fmt, ...);

/* t: the next main view (campaigns, queues, events, shield). */
void console_act_toggle_view(struct console *c);

/* Run the entry of map (n entries) that has this key; 1 when there was one. */
int console_keymap_run(struct console *c, const struct key_entry *map, size_t n, int key);

/* The keys of every view (help, next view, redraw, quit). */
extern const struct key_entry console_global_keys[];
extern const size_t console_n_global_keys;

/* ---- console_draw.c: drawing primitives, header, message line, key bar --- */

/* Draw text in `width` columns at (y, x), truncated with "…" or padded
 * (right: aligned right), clipped at the window's right edge. Returns the
 * columns used. */
int draw_text(WINDOW *w, int y, int x, int width, const char *text, int right, attr_t attr);

/* Draw text on row 0 at *x in its natural width (clipped at the edge),
 * advance *x. */
void draw_put(struct console *c, WINDOW *w, int *x, enum role role, const char *text);
/* The same on row y. */
void draw_put_at(struct console *c, WINDOW *w, int y, int *x, enum role role, const char *text);

/* A campaign's progress bar, width cells at (y, x); sel non-zero: all in sel. */
void draw_bar(struct console *c, WINDOW *w, int y, int x, int width,
              const struct console_campaign *cc, attr_t sel);

/* A column of a table drawn by draw_table_*(). */
struct tcol {
	const char *title;
	int right; /* right-aligned */
	int drop;  /* see draw_table_fit() */
};

/* Fit a table of n columns into maxx columns (see console_draw.c). */
void draw_table_fit(int n, const int *drop, int flex, int flex_min, int maxx, int *width,
                    int *shown);

/* Start width[], shown[] and drop[] of n columns from their titles. */
void draw_table_init(int n, const struct tcol *cols, int *width, int *shown, int *drop);

/* Widen width[] (n columns) to the cells' display widths. */
void draw_widen(int n, char cell[][TEXT_CAP], int *width);

/* One row of a fitted table (n <= TCOLS_MAX columns) at y: text[k] in
 * role[k]; sel non-zero: the whole row in sel, highlighted edge to edge. */
void draw_table_row(struct console *c, WINDOW *w, int y, const struct tcol *cols, int n,
                    const int *width, const int *shown, const char *const *text,
                    const enum role *role, attr_t sel);

/* The titles of a fitted table (n <= TCOLS_MAX columns) at y. */
void draw_table_titles(struct console *c, WINDOW *w, int y, const struct tcol *cols, int n,
                       const int *width, const int *shown);

/* Redraw the header, the message line, the key bar into their windows. */
void draw_header(struct console *c);
void draw_msgline(struct console *c);
void draw_keybar(struct console *c);

/* ---- view_campaigns.c ------------------------------------------------------ */

extern const struct view_ops view_campaigns;

/* Rebuild rows[] from model.campaigns (filter, sort); keep the selection on
 * its campaign. */
void view_campaigns_rebuild(struct console *c);

/* Scroll so that the selected row shows (after a resize). */
void view_campaigns_ensure_visible(struct console *c);

/* The filter text changed: rebuild the rows. */
void view_campaigns_filter_changed(struct console *c);

/* Ask y/n to pause (pause=1) or resume campaign cc (the operator role). */
void view_campaigns_ask_paused(struct console *c, const struct console_campaign *cc, int pause);

/* The selected campaign, or NULL. */
const struct console_campaign *view_campaigns_selected(const struct console *c);

/* The name of the current sort ("total", "name", "rate"). */
const char *view_campaigns_sort_name(const struct console *c);

/* ---- view_queues.c --------------------------------------------------------- */

extern const struct view_ops view_queues;

/* After a fetch: find the selected queue or dead job again. */
void view_queues_follow(struct console *c);

/* The queues view's idle message line into buf. */
void view_queues_summary(const struct console *c, char *buf, size_t cap);

/* Retry job j now; ask y/n to discard it (the operator role). */
void view_queues_retry(struct console *c, const struct console_job *j);
void view_queues_ask_discard(struct console *c, const struct console_job *j);

/* The selected dead job, or NULL (a queue row is selected). */
const struct console_job *view_queues_selected_job(const struct console *c);

/* Dead jobs of all queues (saturating). */
int64_t view_queues_dead_total(const struct console_model *m);

/* ---- view_campaign.c, view_job.c: one campaign, one dead job ------------ */

extern const struct view_ops view_campaign, view_job;

/* Push the view of campaign cc; of dead job j (copied). */
void view_campaign_open(struct console *c, const struct console_campaign *cc);
void view_job_open(struct console *c, const struct console_job *j);

/* ---- view_events.c --------------------------------------------------------- */

extern const struct view_ops view_events;

/* The events view's idle message line into buf. */
void view_events_summary(struct console *c, char *buf, size_t cap);

/* ---- view_shield.c -------------------------------------------------------- */

extern const struct view_ops view_shield;

/* S: raise the shield on every campaign when it is down; ask y/n to lower
 * it when it is up or raised (the operator role). Any view. */
void view_shield_toggle(struct console *c);

/* The shield view's idle message line into buf. */
void view_shield_summary(const struct console *c, char *buf, size_t cap);

/* The header's alert when the shield is up or raised ("shield raised",
 * "shield up: spring +2 more") into buf; returns its length, 0 when
 * there is none. */
int view_shield_alert(const struct console_model *m, char *buf, size_t cap);

/* ---- view_help.c ----------------------------------------------------------- */

extern const struct view_ops view_help;

#endif
