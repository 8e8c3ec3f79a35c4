/* tui/console.c - the ncurses staff console.
 *
 * DESIGN
 * console_run() is a loop on the calling thread: wait for a key at most until
 * the next tick (every 250 ms), handle it, and on a tick pull a fresh model
 * from the source and check *stop. Handlers never draw: they change state and
 * set dirty bits (header, body, message line, key bar); render() redraws the
 * dirty windows and calls doupdate() once per pass.
 *
 * Screen, top to bottom: header (global status), body (the current view, its
 * first line being the view's own title row), message line (prompts and
 * results), key bar. KEY_RESIZE is handled in relayout() only: it rebuilds the
 * windows or, below 40x10, shows "terminal too small", and asks for a full
 * repaint. Keys are read from stdscr, which is kept refreshed (never touched
 * between a redraw and the next read) so wget_wch() never repaints it.
 *
 * Views form a stack (campaigns at the bottom, help pushed over it); each has
 * draw and key functions and a key table. A key goes to the active prompt
 * (filter text, y/n confirmation) first, then to the top view, then to the
 * global table. The same tables write the help screen and the key bar.
 *
 * Rows: after every fetch and whenever sort or filter change, rows[] is
 * rebuilt as pointers into model.campaigns, filtered then sorted. The
 * selection follows its campaign by slug, so updates and re-sorting never
 * slide another campaign under the cursor between `p` and `y`.
 *
 * Exits: q/F10, *stop (seen within one tick), or a failure: -ENOTTY when
 * stdin/stdout is not a terminal or TERM cannot address the cursor, -EIO
 * when the terminal hangs up (checked each pass; ncurses would otherwise
 * return ERR at once forever and the loop would spin). endwin() runs on
 * every path once curses has started.
 *
 * Every string that came from the source is drawn through console_fmt_trunc(),
 * which cuts by display width and replaces control characters, so a campaign
 * name cannot smuggle escape sequences to the terminal. Drawing calls return
 * ERR only when clipped at a window edge; their results are not checked.
 */
#define NCURSES_WIDECHAR 1

#include "console.h"
#include "console_fmt.h"

#include <curses.h>
#include <errno.h>
#include <langinfo.h>
#include <limits.h>
#include <locale.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>
#include <wctype.h>

#define TICK_MS 250
#define MIN_COLS 40
#define MIN_LINES 10
#define MSG_MS 5000 /* how long a result stays on the message line */
#define VIEW_DEPTH 4
#define FILTER_CAP 64 /* bytes of filter text, NUL included */
#define NAME_MIN 16   /* narrower than this, optional columns go */
#define COL_GAP 2
#define TEXT_CAP 512 /* one cell or line of text, truncated */

/* Keys: characters as themselves, curses KEY_* codes apart from them. */
#define KEYFN(k) (0x1000000 | (k))
#define KEY_CTRL(ch) ((ch)&0x1f)
#define KEY_ESC 27

/* ---- colours: semantic roles through a scheme ------------------------- */

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

#define NO_PAIR (-2)

struct role_style {
	short fg, bg; /* colour pair (-1: terminal default); fg NO_PAIR: none */
	attr_t color; /* attributes added when colours are in use */
	attr_t mono;  /* attributes used instead without colours */
};

static const struct role_style scheme[ROLE_COUNT] = {
    [ROLE_NORMAL] = {NO_PAIR, 0, A_NORMAL, A_NORMAL},
    [ROLE_HEADER] = {COLOR_CYAN, -1, A_BOLD, A_BOLD},
    [ROLE_OK] = {COLOR_GREEN, -1, A_NORMAL, A_NORMAL},
    [ROLE_WARN] = {COLOR_YELLOW, -1, A_BOLD, A_BOLD},
    [ROLE_ERROR] = {COLOR_RED, -1, A_BOLD, A_BOLD | A_UNDERLINE},
    [ROLE_SELECTION] = {COLOR_WHITE, COLOR_BLUE, A_BOLD, A_REVERSE},
    [ROLE_DIM] = {NO_PAIR, 0, A_DIM, A_DIM},
    [ROLE_KEY] = {COLOR_BLACK, COLOR_CYAN, A_NORMAL, A_REVERSE},
};

/* ---- state --------------------------------------------------------------- */

enum {
	DIRTY_HEADER = 1 << 0,
	DIRTY_BODY = 1 << 1,
	DIRTY_MSG = 1 << 2,
	DIRTY_BAR = 1 << 3,
	DIRTY_ALL = DIRTY_HEADER | DIRTY_BODY | DIRTY_MSG | DIRTY_BAR,
	DIRTY_SCREEN = 1 << 4, /* repaint the whole terminal from scratch */
};

enum prompt { PROMPT_NONE, PROMPT_FILTER, PROMPT_CONFIRM };

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
	size_t sort;       /* index into sorts[] */
	char filter[FILTER_CAP];

	enum prompt prompt;
	int confirm_pause; /* what a 'y' does: 1 pause, 0 resume */
	char confirm_slug[65];
	char confirm_name[129];

	char msg[256];
	enum role msg_role;
	int64_t msg_until; /* monotonic ms; 0: no message */

	const struct view_ops *views[VIEW_DEPTH];
	int depth;
	size_t help_top;

	WINDOW *w_header, *w_body, *w_msg, *w_bar; /* NULL when too small */
	int too_small;
	int cursor; /* current curs_set() state */
	unsigned dirty;
	int utf8;
	attr_t attr[ROLE_COUNT];
};

void console_model_fini(struct console_model *m)
{
	if (!m)
		return;
	free(m->campaigns);
	memset(m, 0, sizeof *m);
}

/* ---- small helpers ------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* strerror_r() comes as the XSI (int) or the GNU (char *) variant depending
 * on feature macros; pick by its type. */
static const char *errtext_gnu(char *r, char *buf, size_t cap)
{
	(void)buf;
	(void)cap;
	return r;
}

static const char *errtext_xsi(int r, char *buf, size_t cap)
{
	if (r != 0)
		snprintf(buf, cap, "error %d", r);
	return buf;
}

/* r is evaluated once: _Generic's controlling expression is not evaluated. */
#define ERRTEXT_CALL(r, buf, cap)                                                                  \
	_Generic((r), char * : errtext_gnu, default : errtext_xsi)((r), (buf), (cap))

static const char *errtext(int err, char *buf, size_t cap)
{
	buf[0] = '\0';
	return ERRTEXT_CALL(strerror_r(err, buf, cap), buf, cap);
}

__attribute__((format(printf, 3, 4))) static void message(struct console *c, enum role role,
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

static int stopped(const struct console *c)
{
	return c->stop && *c->stop;
}

/* 1 when the terminal has hung up (closed ssh session or pty). ncurses then
 * gets EOF on every read and retries until the timeout, so without this
 * check the loop would spin on the CPU for as long as the server runs. */
static int terminal_lost(void)
{
	struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR | POLLNVAL));
}

static const struct view_ops *view_top(const struct console *c)
{
	return c->views[c->depth - 1];
}

static void view_push(struct console *c, const struct view_ops *v)
{
	if (c->depth < VIEW_DEPTH)
		c->views[c->depth++] = v;
	c->dirty |= DIRTY_BODY | DIRTY_BAR | DIRTY_MSG;
}

static void view_pop(struct console *c)
{
	if (c->depth > 1)
		c->depth--;
	c->dirty |= DIRTY_BODY | DIRTY_BAR | DIRTY_MSG;
}

/* ---- drawing primitives ---------------------------------------------------- */

/* Draw text in `width` columns at (y, x), truncated with "…" or padded,
 * clipped at the window's right edge. Returns the columns used. */
static int draw_text(WINDOW *w, int y, int x, int width, const char *text, int right, attr_t attr)
{
	char buf[TEXT_CAP];
	int maxx = getmaxx(w), cols;

	if (x >= maxx || width <= 0)
		return 0;
	if (width > maxx - x)
		width = maxx - x;
	cols = console_fmt_trunc(buf, sizeof buf, text, width, 1);
	if (cols < 0)
		return 0;
	wattrset(w, attr);
	wmove(w, y, x);
	if (right)
		for (int i = cols; i < width; i++)
			waddch(w, ' ');
	waddstr(w, buf);
	if (!right)
		for (int i = cols; i < width; i++)
			waddch(w, ' ');
	return width;
}

/* Draw text at *x in its natural width (clipped at the edge), advance *x. */
static void put(struct console *c, WINDOW *w, int *x, enum role role, const char *text)
{
	int room = getmaxx(w) - *x;
	int cols = console_fmt_width(text);

	if (room <= 0)
		return;
	*x += draw_text(w, 0, *x, cols < room ? cols : room, text, 0, c->attr[role]);
}

static void fmt_rate(char *buf, size_t cap, double v)
{
	if (!(v >= 0)) /* negative or NaN */
		snprintf(buf, cap, "-");
	else if (v < 10000)
		snprintf(buf, cap, "%.1f", v);
	else if (v < 1e9)
		snprintf(buf, cap, "%.0f", v);
	else
		snprintf(buf, cap, "%.2e", v);
}

/* ---- rows: filter, sort, selection ------------------------------------------ */

static const struct console_campaign *row_at(const struct console *c, size_t i)
{
	return i < c->n_rows ? c->rows[i] : NULL;
}

#define CAMPAIGN(p) (*(const struct console_campaign *const *)(p))

static int cmp_total(const void *pa, const void *pb)
{
	const struct console_campaign *a = CAMPAIGN(pa), *b = CAMPAIGN(pb);

	if (a->total_cents != b->total_cents)
		return a->total_cents < b->total_cents ? 1 : -1;
	return strcmp(a->slug, b->slug);
}

static int cmp_name(const void *pa, const void *pb)
{
	const struct console_campaign *a = CAMPAIGN(pa), *b = CAMPAIGN(pb);
	int r = strcasecmp(a->name, b->name);

	return r ? r : strcmp(a->slug, b->slug);
}

static int cmp_rate(const void *pa, const void *pb)
{
	const struct console_campaign *a = CAMPAIGN(pa), *b = CAMPAIGN(pb);
	double ra = a->per_min >= 0 ? a->per_min : -1, rb = b->per_min >= 0 ? b->per_min : -1;

	if (ra != rb)
		return ra < rb ? 1 : -1;
	return cmp_total(pa, pb);
}

struct sort_key {
	const char *name;
	int (*cmp)(const void *, const void *);
};

static const struct sort_key sorts[] = {
    {"total", cmp_total},
    {"name", cmp_name},
    {"rate", cmp_rate},
};

#define N_SORTS (sizeof sorts / sizeof sorts[0])

/* Rows of the list that fit under its title row. */
static size_t list_height(const struct console *c)
{
	int h = c->w_body ? getmaxy(c->w_body) - 1 : 1;

	return h > 0 ? (size_t)h : 1;
}

static void ensure_visible(struct console *c)
{
	size_t vis = list_height(c);

	if (!c->w_body)
		return; /* too small: keep the scroll position for later */
	if (c->sel < c->top)
		c->top = c->sel;
	else if (c->sel >= c->top + vis)
		c->top = c->sel - vis + 1;
	if (c->n_rows <= vis)
		c->top = 0;
	else if (c->top > c->n_rows - vis)
		c->top = c->n_rows - vis;
}

static void select_row(struct console *c, size_t i)
{
	if (c->n_rows == 0) {
		c->sel = c->top = 0;
		c->sel_slug[0] = '\0';
	} else {
		c->sel = i < c->n_rows ? i : c->n_rows - 1;
		snprintf(c->sel_slug, sizeof c->sel_slug, "%s", c->rows[c->sel]->slug);
		ensure_visible(c);
	}
	c->dirty |= DIRTY_BODY;
}

/* Make every string of the model terminated, whatever the source did. */
static void model_sanitize(struct console_model *m)
{
	m->server[sizeof m->server - 1] = '\0';
	m->error[sizeof m->error - 1] = '\0';
	if (!m->campaigns)
		m->n_campaigns = 0;
	for (size_t i = 0; i < m->n_campaigns; i++) {
		struct console_campaign *cc = &m->campaigns[i];
		cc->slug[sizeof cc->slug - 1] = '\0';
		cc->name[sizeof cc->name - 1] = '\0';
		cc->currency[sizeof cc->currency - 1] = '\0';
		cc->status[sizeof cc->status - 1] = '\0';
	}
}

static void rows_rebuild(struct console *c)
{
	size_t n = c->model.n_campaigns;

	if (n > c->rows_cap) {
		const struct console_campaign **r = NULL;
		if (n <= SIZE_MAX / sizeof *r)
			r = realloc(c->rows, n * sizeof *r);
		if (!r) {
			c->n_rows = 0;
			select_row(c, 0);
			message(c, ROLE_ERROR, "out of memory for %zu campaigns", n);
			return;
		}
		c->rows = r;
		c->rows_cap = n;
	}
	c->n_rows = 0;
	for (size_t i = 0; i < n; i++) {
		const struct console_campaign *cc = &c->model.campaigns[i];
		if (console_fmt_contains(cc->slug, c->filter) ||
		    console_fmt_contains(cc->name, c->filter))
			c->rows[c->n_rows++] = cc;
	}
	if (c->n_rows > 1)
		qsort(c->rows, c->n_rows, sizeof *c->rows, sorts[c->sort].cmp);

	size_t sel = c->sel;
	for (size_t i = 0; c->sel_slug[0] && i < c->n_rows; i++) {
		if (strcmp(c->rows[i]->slug, c->sel_slug) == 0) {
			sel = i;
			break;
		}
	}
	select_row(c, sel);
}

static void console_fetch(struct console *c)
{
	int rc = c->src->fetch(c->src->ctx, &c->model);

	c->fetch_rc = rc < 0 ? rc : 0;
	model_sanitize(&c->model);
	rows_rebuild(c);
	c->dirty |= DIRTY_HEADER | DIRTY_BODY | DIRTY_MSG;
}

/* ---- actions ------------------------------------------------------------------- */

static void act_quit(struct console *c)
{
	c->quit = 1;
}

static void act_redraw(struct console *c)
{
	c->dirty |= DIRTY_ALL | DIRTY_SCREEN;
}

static const struct view_ops campaigns_view, help_view;
static const struct view_ops *const all_views[] = {&campaigns_view, &help_view};
#define N_VIEWS (sizeof all_views / sizeof all_views[0])

static void act_help(struct console *c)
{
	if (view_top(c) == &help_view)
		view_pop(c);
	else
		view_push(c, &help_view);
}

/* Tab: the next view of all_views; back down the stack if it is there. */
static void act_next_view(struct console *c)
{
	size_t i = 0;

	while (i < N_VIEWS && all_views[i] != view_top(c))
		i++;
	const struct view_ops *next = all_views[(i + 1) % N_VIEWS];
	for (int d = 0; d < c->depth; d++) {
		if (c->views[d] == next) {
			c->depth = d + 1;
			c->dirty |= DIRTY_BODY | DIRTY_BAR | DIRTY_MSG;
			return;
		}
	}
	view_push(c, next);
}

static void act_back(struct console *c)
{
	view_pop(c);
}

static void act_up(struct console *c)
{
	if (c->sel > 0)
		select_row(c, c->sel - 1);
}

static void act_down(struct console *c)
{
	select_row(c, c->sel + 1);
}

static void act_first(struct console *c)
{
	select_row(c, 0);
}

static void act_last(struct console *c)
{
	select_row(c, c->n_rows ? c->n_rows - 1 : 0);
}

static void act_page_up(struct console *c)
{
	size_t page = list_height(c);

	select_row(c, c->sel > page ? c->sel - page : 0);
}

static void act_page_down(struct console *c)
{
	select_row(c, c->sel + list_height(c));
}

static void act_sort(struct console *c)
{
	c->sort = (c->sort + 1) % N_SORTS;
	rows_rebuild(c);
	message(c, ROLE_NORMAL, "sorted by %s", sorts[c->sort].name);
}

static void filter_changed(struct console *c)
{
	rows_rebuild(c);
	c->dirty |= DIRTY_BODY | DIRTY_MSG;
}

static void act_filter(struct console *c)
{
	c->prompt = PROMPT_FILTER;
	c->msg_until = 0;
	c->dirty |= DIRTY_MSG;
}

static void act_clear_filter(struct console *c)
{
	if (!c->filter[0])
		return;
	c->filter[0] = '\0';
	filter_changed(c);
}

static void ask_paused(struct console *c, int pause)
{
	const struct console_campaign *cc = row_at(c, c->sel);
	const char *want = pause ? "paused" : "active";

	if (!cc) {
		message(c, ROLE_WARN, "no campaign selected");
		return;
	}
	if (strcmp(cc->status, want) == 0) {
		message(c, ROLE_WARN, "%s is already %s", cc->slug, want);
		return;
	}
	c->prompt = PROMPT_CONFIRM;
	c->confirm_pause = pause;
	snprintf(c->confirm_slug, sizeof c->confirm_slug, "%s", cc->slug);
	snprintf(c->confirm_name, sizeof c->confirm_name, "%s", cc->name);
	c->msg_until = 0;
	c->dirty |= DIRTY_MSG;
}

static void act_pause(struct console *c)
{
	ask_paused(c, 1);
}

static void act_resume(struct console *c)
{
	ask_paused(c, 0);
}

/* The user said y: ask the source, report, show the new state at once. */
static void confirm_run(struct console *c)
{
	const struct console_source *src = c->src;
	int pause = c->confirm_pause;
	int rc = src->set_paused ? src->set_paused(src->ctx, c->confirm_slug, pause) : -ENOTSUP;
	char err[128];

	if (rc == 0)
		message(c, ROLE_OK, "%s %s", pause ? "paused" : "resumed", c->confirm_slug);
	else
		message(c, ROLE_ERROR, "%s %s failed: %s", pause ? "pause" : "resume",
		        c->confirm_slug, errtext(rc < 0 ? -rc : rc, err, sizeof err));
	console_fetch(c);
}

/* ---- key tables ------------------------------------------------------------------- */

static const struct key_entry campaigns_keys[] = {
    {{KEYFN(KEY_UP), 'k'}, "Up/k", NULL, "select the previous campaign", act_up},
    {{KEYFN(KEY_DOWN), 'j'}, "Down/j", NULL, "select the next campaign", act_down},
    {{'g', KEYFN(KEY_HOME)}, "g/Home", NULL, "select the first campaign", act_first},
    {{'G', KEYFN(KEY_END)}, "G/End", NULL, "select the last campaign", act_last},
    {{KEYFN(KEY_PPAGE)}, "PgUp", NULL, "one page up", act_page_up},
    {{KEYFN(KEY_NPAGE)}, "PgDn", NULL, "one page down", act_page_down},
    {{'s'}, "s", "Sort", "sort by total, name, rate (cycles)", act_sort},
    {{'/'}, "/", "Filter", "filter by slug or name; Enter keeps it, Esc clears", act_filter},
    {{KEY_ESC}, "Esc", NULL, "clear the filter", act_clear_filter},
    {{'p'}, "p", "Pause", "pause the selected campaign (asks y/n)", act_pause},
    {{'r'}, "r", "Resume", "resume the selected campaign (asks y/n)", act_resume},
};

static void act_help_up(struct console *c);
static void act_help_down(struct console *c);
static void act_help_first(struct console *c);
static void act_help_last(struct console *c);
static void act_help_page_up(struct console *c);
static void act_help_page_down(struct console *c);

static const struct key_entry help_keys[] = {
    {{KEY_ESC}, "Esc", "Back", "back to the previous view", act_back},
    {{KEYFN(KEY_UP), 'k'}, "Up/k", NULL, "scroll up", act_help_up},
    {{KEYFN(KEY_DOWN), 'j'}, "Down/j", NULL, "scroll down", act_help_down},
    {{'g', KEYFN(KEY_HOME)}, "g/Home", NULL, "top", act_help_first},
    {{'G', KEYFN(KEY_END)}, "G/End", NULL, "bottom", act_help_last},
    {{KEYFN(KEY_PPAGE)}, "PgUp", NULL, "one page up", act_help_page_up},
    {{KEYFN(KEY_NPAGE)}, "PgDn", NULL, "one page down", act_help_page_down},
};

static const struct key_entry global_keys[] = {
    {{'?', KEYFN(KEY_F(1))}, "?/F1", "Help", "show or hide this help", act_help},
    {{'\t'}, "Tab", "View", "next view", act_next_view},
    {{KEY_CTRL('l')}, "^L", NULL, "redraw the screen", act_redraw},
    {{'q', KEYFN(KEY_F(10))}, "q/F10", "Quit", "quit the console", act_quit},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static int keymap_run(struct console *c, const struct key_entry *map, size_t n, int key)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < KEYS_PER_ENTRY && map[i].keys[k]; k++) {
			if (map[i].keys[k] == key) {
				map[i].fn(c);
				return 1;
			}
		}
	}
	return 0;
}

/* ---- campaigns view ------------------------------------------------------------------- */

enum col_id {
	COL_NAME,
	COL_STATUS,
	COL_TOTAL,
	COL_GOAL,
	COL_BAR,
	COL_DONORS,
	COL_GIFTS,
	COL_RATE,
	COL_COUNT
};

typedef void (*cell_fn)(const struct console_campaign *cc, char *buf, size_t cap);

static void cell_name(const struct console_campaign *cc, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s (%s)", cc->name[0] ? cc->name : cc->slug, cc->slug);
}

static void cell_status(const struct console_campaign *cc, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s", cc->status);
}

static void cell_total(const struct console_campaign *cc, char *buf, size_t cap)
{
	console_fmt_money(buf, cap, cc->total_cents, cc->currency);
}

static void cell_goal(const struct console_campaign *cc, char *buf, size_t cap)
{
	console_fmt_percent(buf, cap, cc->total_cents, cc->goal_cents);
}

static void cell_donors(const struct console_campaign *cc, char *buf, size_t cap)
{
	console_fmt_int(buf, cap, cc->donor_count);
}

static void cell_gifts(const struct console_campaign *cc, char *buf, size_t cap)
{
	console_fmt_int(buf, cap, cc->donation_count);
}

static void cell_rate(const struct console_campaign *cc, char *buf, size_t cap)
{
	fmt_rate(buf, cap, cc->per_min);
}

struct column {
	const char *title;
	int right;    /* right-aligned */
	int drop;     /* 0: always shown; others go first-highest when narrow */
	int width;    /* fixed width; 0: the widest cell (name: what is left) */
	cell_fn cell; /* NULL: the progress bar */
};

static const struct column columns[COL_COUNT] = {
    [COL_NAME] = {.title = "Campaign", .cell = cell_name},
    [COL_STATUS] = {.title = "Status", .width = 6, .cell = cell_status},
    [COL_TOTAL] = {.title = "Total", .right = 1, .cell = cell_total},
    [COL_GOAL] = {.title = "Goal", .right = 1, .drop = 2, .cell = cell_goal},
    [COL_BAR] = {.title = "Progress", .drop = 6, .width = 10, .cell = NULL},
    [COL_DONORS] = {.title = "Donors", .right = 1, .drop = 4, .cell = cell_donors},
    [COL_GIFTS] = {.title = "Gifts", .right = 1, .drop = 3, .cell = cell_gifts},
    [COL_RATE] = {.title = "/min", .right = 1, .drop = 5, .cell = cell_rate},
};

struct layout {
	int width[COL_COUNT];
	int shown[COL_COUNT];
};

/* Widths from the widest cell of all rows (stable while scrolling); the name
 * column takes what is left, optional columns go while it is too narrow. */
static void campaigns_layout(const struct console *c, int maxx, struct layout *l)
{
	char buf[TEXT_CAP];

	for (int k = 0; k < COL_COUNT; k++) {
		int w = console_fmt_width(columns[k].title);
		l->width[k] = columns[k].width > w ? columns[k].width : w;
		l->shown[k] = 1;
	}
	for (size_t i = 0; i < c->n_rows; i++) {
		for (int k = 1; k < COL_COUNT; k++) {
			if (columns[k].width || !columns[k].cell)
				continue;
			columns[k].cell(c->rows[i], buf, sizeof buf);
			int w = console_fmt_width(buf);
			if (w > l->width[k])
				l->width[k] = w;
		}
	}
	for (;;) {
		int used = 1, drop = 0;
		for (int k = 1; k < COL_COUNT; k++) {
			if (!l->shown[k])
				continue;
			used += COL_GAP + l->width[k];
			if (columns[k].drop > columns[drop].drop)
				drop = k;
		}
		l->width[COL_NAME] = maxx - used - 1;
		if (l->width[COL_NAME] >= NAME_MIN || drop == 0)
			break;
		l->shown[drop] = 0;
	}
	if (l->width[COL_NAME] < 1)
		l->width[COL_NAME] = 1;
}

static enum role status_role(const char *status)
{
	if (strcmp(status, "active") == 0)
		return ROLE_OK;
	if (strcmp(status, "paused") == 0)
		return ROLE_WARN;
	return ROLE_DIM;
}

static void draw_bar(struct console *c, WINDOW *w, int y, int x, int width,
                     const struct console_campaign *cc, attr_t sel)
{
	int maxx = getmaxx(w);
	int full = console_fmt_bar_cells(cc->total_cents, cc->goal_cents, width);
	attr_t on = sel ? sel : c->attr[ROLE_OK], off = sel ? sel : c->attr[ROLE_DIM];

	if (cc->goal_cents <= 0)
		return; /* no goal: nothing to fill */
	wmove(w, y, x);
	for (int i = 0; i < width && x + i < maxx; i++) {
		wattrset(w, i < full ? on : off);
		if (c->utf8)
			waddstr(w, i < full ? "\xe2\x96\x88" : "\xe2\x96\x91"); /* █ ░ */
		else
			waddch(w, i < full ? '#' : '.');
	}
}

static void campaigns_draw(struct console *c, WINDOW *w)
{
	char buf[TEXT_CAP];
	struct layout l;
	int maxx = getmaxx(w), x;
	size_t vis = list_height(c);

	werase(w);
	campaigns_layout(c, maxx, &l);

	x = 1;
	for (int k = 0; k < COL_COUNT; k++) {
		if (!l.shown[k])
			continue;
		x += draw_text(w, 0, x, l.width[k], columns[k].title, columns[k].right,
		               c->attr[ROLE_HEADER]);
		x += COL_GAP;
	}

	if (c->n_rows == 0) {
		const char *why = c->filter[0] ? "no campaign matches the filter (Esc clears it)"
		                  : c->model.n_campaigns == 0 ? "no campaigns yet"
		                                              : "";
		draw_text(w, 2, 2, maxx - 2, why, 0, c->attr[ROLE_DIM]);
		return;
	}

	for (size_t r = 0; r < vis && c->top + r < c->n_rows; r++) {
		const struct console_campaign *cc = c->rows[c->top + r];
		int y = (int)r + 1, selected = c->top + r == c->sel;
		attr_t sel = selected ? c->attr[ROLE_SELECTION] : 0;

		if (selected) {
			mvwhline(w, y, 0, ' ' | sel, maxx);
		}
		x = 1;
		for (int k = 0; k < COL_COUNT; k++) {
			if (!l.shown[k])
				continue;
			if (columns[k].cell) {
				enum role role =
				    k == COL_STATUS ? status_role(cc->status) : ROLE_NORMAL;
				columns[k].cell(cc, buf, sizeof buf);
				draw_text(w, y, x, l.width[k], buf, columns[k].right,
				          selected ? sel : c->attr[role]);
			} else {
				draw_bar(c, w, y, x, l.width[k], cc, sel);
			}
			x += l.width[k] + COL_GAP;
		}
	}
}

static int campaigns_key(struct console *c, int key)
{
	return keymap_run(c, campaigns_keys, N_OF(campaigns_keys), key);
}

static const struct view_ops campaigns_view = {
    "Campaigns", campaigns_draw, campaigns_key, campaigns_keys, N_OF(campaigns_keys),
};

/* ---- help view ------------------------------------------------------------------------- */

enum help_kind { HELP_BLANK, HELP_TITLE, HELP_KEY, HELP_TEXT };

struct help_row {
	enum help_kind kind;
	const char *a, *b;
};

struct help_section {
	const char *title;
	const struct key_entry *keys;
	size_t n;
};

static const struct help_section help_sections[] = {
    {"Campaigns view", campaigns_keys, N_OF(campaigns_keys)},
    {"Help view", help_keys, N_OF(help_keys)},
    {"Everywhere", global_keys, N_OF(global_keys)},
};

static const char *const help_notes[] = {
    "Total is the committed money of a campaign in its currency; Goal the share",
    "of its goal reached; /min the recent donations per minute.",
    "Status: active (green), paused (yellow), closed (dim).",
    "The selection follows its campaign when totals re-sort the list.",
};

#define HELP_ROWS_MAX 64

static void help_add(struct help_row *out, size_t *n, enum help_kind kind, const char *a,
                     const char *b)
{
	if (*n < HELP_ROWS_MAX)
		out[(*n)++] = (struct help_row){kind, a, b};
}

/* The help screen, generated from the key tables; returns the row count. */
static size_t help_rows(struct help_row *out)
{
	size_t n = 0;

	help_add(out, &n, HELP_TITLE, "tally console - keys", NULL);
	help_add(out, &n, HELP_BLANK, NULL, NULL);
	for (size_t s = 0; s < N_OF(help_sections); s++) {
		const struct help_section *sec = &help_sections[s];

		help_add(out, &n, HELP_TITLE, sec->title, NULL);
		for (size_t i = 0; i < sec->n; i++)
			help_add(out, &n, HELP_KEY, sec->keys[i].name, sec->keys[i].help);
		help_add(out, &n, HELP_BLANK, NULL, NULL);
	}
	for (size_t i = 0; i < N_OF(help_notes); i++)
		help_add(out, &n, HELP_TEXT, help_notes[i], NULL);
	return n;
}

static size_t help_max_top(const struct console *c)
{
	struct help_row rows[HELP_ROWS_MAX];
	size_t n = help_rows(rows);
	size_t h = c->w_body ? (size_t)getmaxy(c->w_body) : 1;

	return n > h ? n - h : 0;
}

static void help_scroll_to(struct console *c, size_t top)
{
	size_t max = help_max_top(c);

	c->help_top = top < max ? top : max;
	c->dirty |= DIRTY_BODY;
}

static void act_help_up(struct console *c)
{
	help_scroll_to(c, c->help_top ? c->help_top - 1 : 0);
}

static void act_help_down(struct console *c)
{
	help_scroll_to(c, c->help_top + 1);
}

static void act_help_first(struct console *c)
{
	help_scroll_to(c, 0);
}

static void act_help_last(struct console *c)
{
	help_scroll_to(c, SIZE_MAX);
}

static void act_help_page_up(struct console *c)
{
	size_t page = c->w_body ? (size_t)getmaxy(c->w_body) : 1;

	help_scroll_to(c, c->help_top > page ? c->help_top - page : 0);
}

static void act_help_page_down(struct console *c)
{
	help_scroll_to(c, c->help_top + (c->w_body ? (size_t)getmaxy(c->w_body) : 1));
}

static void help_draw(struct console *c, WINDOW *w)
{
	struct help_row rows[HELP_ROWS_MAX];
	size_t n = help_rows(rows);
	int maxy = getmaxy(w), maxx = getmaxx(w);

	werase(w);
	help_scroll_to(c, c->help_top); /* the window may have grown */
	for (int y = 0; y < maxy && c->help_top + (size_t)y < n; y++) {
		const struct help_row *r = &rows[c->help_top + (size_t)y];
		switch (r->kind) {
		case HELP_BLANK:
			break;
		case HELP_TITLE:
			draw_text(w, y, 1, maxx - 1, r->a, 0, c->attr[ROLE_HEADER]);
			break;
		case HELP_KEY:
			draw_text(w, y, 3, 10, r->a, 0, c->attr[ROLE_WARN]);
			draw_text(w, y, 14, maxx - 14, r->b, 0, c->attr[ROLE_NORMAL]);
			break;
		case HELP_TEXT:
			draw_text(w, y, 1, maxx - 1, r->a, 0, c->attr[ROLE_DIM]);
			break;
		}
	}
}

static int help_key(struct console *c, int key)
{
	return keymap_run(c, help_keys, N_OF(help_keys), key);
}

static const struct view_ops help_view = {
    "Help", help_draw, help_key, help_keys, N_OF(help_keys),
};

/* ---- header, message line, key bar ------------------------------------------------------ */

static void draw_header(struct console *c)
{
	const struct console_model *m = &c->model;
	WINDOW *w = c->w_header;
	char buf[TEXT_CAP], num[64], err[128];
	int x = 0;

	werase(w);
	put(c, w, &x, ROLE_HEADER, " tally ");
	put(c, w, &x, ROLE_NORMAL, m->server[0] ? m->server : "-");
	put(c, w, &x, ROLE_NORMAL, "  ");
	if (c->fetch_rc < 0) {
		snprintf(buf, sizeof buf, "fetch failed: %s",
		         errtext(-c->fetch_rc, err, sizeof err));
		put(c, w, &x, ROLE_ERROR, buf);
	} else if (!m->connected) {
		snprintf(buf, sizeof buf, "disconnected%s%s", m->error[0] ? ": " : "", m->error);
		put(c, w, &x, ROLE_ERROR, buf);
	} else {
		put(c, w, &x, ROLE_OK, "connected");
		if (m->error[0]) {
			put(c, w, &x, ROLE_NORMAL, " ");
			put(c, w, &x, ROLE_WARN, m->error);
		}
	}

	put(c, w, &x, ROLE_DIM, "  up ");
	console_fmt_duration(num, sizeof num, m->uptime_s);
	put(c, w, &x, ROLE_NORMAL, num);
	put(c, w, &x, ROLE_DIM, "  gifts/s ");
	fmt_rate(num, sizeof num, m->donations_per_s);
	put(c, w, &x, ROLE_NORMAL, num);
	put(c, w, &x, ROLE_DIM, "  gifts ");
	console_fmt_int(num, sizeof num, m->donations_total);
	put(c, w, &x, ROLE_NORMAL, num);
	put(c, w, &x, ROLE_DIM, "  intake ");
	console_fmt_int(num, sizeof num, m->intake_depth);
	put(c, w, &x, m->intake_depth > 1000 ? ROLE_WARN : ROLE_NORMAL, num);
	put(c, w, &x, ROLE_DIM, "  ws ");
	console_fmt_int(num, sizeof num, m->ws_clients);
	put(c, w, &x, ROLE_NORMAL, num);
}

static void draw_msgline(struct console *c)
{
	WINDOW *w = c->w_msg;
	char buf[TEXT_CAP];
	int x = 0;

	werase(w);
	switch (c->prompt) {
	case PROMPT_FILTER:
		put(c, w, &x, ROLE_HEADER, "Filter: ");
		put(c, w, &x, ROLE_NORMAL, c->filter);
		wmove(w, 0, x < getmaxx(w) ? x : getmaxx(w) - 1); /* the cursor */
		return;
	case PROMPT_CONFIRM:
		snprintf(buf, sizeof buf, "%s %s (%s)? y/n", c->confirm_pause ? "Pause" : "Resume",
		         c->confirm_slug, c->confirm_name);
		put(c, w, &x, ROLE_WARN, buf);
		return;
	case PROMPT_NONE:
		break;
	}
	if (c->msg_until) {
		put(c, w, &x, c->msg_role, c->msg);
	} else if (c->filter[0]) {
		snprintf(buf, sizeof buf, "filter \"%s\": %zu of %zu campaigns, sorted by %s",
		         c->filter, c->n_rows, c->model.n_campaigns, sorts[c->sort].name);
		put(c, w, &x, ROLE_DIM, buf);
	} else {
		snprintf(buf, sizeof buf, "%zu campaigns, sorted by %s", c->model.n_campaigns,
		         sorts[c->sort].name);
		put(c, w, &x, ROLE_DIM, buf);
	}
}

static int bar_entry_width(const struct key_entry *e)
{
	return console_fmt_width(e->name) + 1 + console_fmt_width(e->bar) + 2;
}

static void draw_bar_entry(struct console *c, WINDOW *w, int *x, const struct key_entry *e)
{
	put(c, w, x, ROLE_KEY, e->name);
	put(c, w, x, ROLE_NORMAL, " ");
	put(c, w, x, ROLE_NORMAL, e->bar);
	put(c, w, x, ROLE_NORMAL, "  ");
}

/* The view's keys from the left, the global ones flush right; view keys
 * that would run into the global ones are left out. */
static void draw_keybar(struct console *c)
{
	const struct view_ops *v = view_top(c);
	WINDOW *w = c->w_bar;
	int x = 0, gx = getmaxx(w), gw = 0;

	werase(w);
	for (size_t i = 0; i < N_OF(global_keys); i++)
		if (global_keys[i].bar)
			gw += bar_entry_width(&global_keys[i]);
	gx = gx - gw + 2 > 0 ? gx - gw + 2 : 0;
	for (size_t i = 0; i < v->n_keys; i++) {
		if (!v->keys[i].bar)
			continue;
		if (x + bar_entry_width(&v->keys[i]) > gx)
			break;
		draw_bar_entry(c, w, &x, &v->keys[i]);
	}
	x = x > gx ? x : gx;
	for (size_t i = 0; i < N_OF(global_keys); i++)
		if (global_keys[i].bar)
			draw_bar_entry(c, w, &x, &global_keys[i]);
}

static void draw_too_small(struct console *c)
{
	char size[64];
	const char *lines[] = {"terminal too small", size, "q quits"};
	int h, w;

	getmaxyx(stdscr, h, w);
	werase(stdscr);
	snprintf(size, sizeof size, "%dx%d, need %dx%d", w, h, MIN_COLS, MIN_LINES);
	for (int i = 0; i < 3; i++) {
		int y = h / 2 - 1 + i, len = console_fmt_width(lines[i]);
		if (y >= 0 && y < h)
			draw_text(stdscr, y, len < w ? (w - len) / 2 : 0, w, lines[i], 0,
			          c->attr[i == 2 ? ROLE_DIM : ROLE_WARN]);
	}
}

/* ---- screen ------------------------------------------------------------------------------------
 */

static void windows_free(struct console *c)
{
	WINDOW **ws[] = {&c->w_header, &c->w_body, &c->w_msg, &c->w_bar};

	for (size_t i = 0; i < N_OF(ws); i++) {
		if (*ws[i])
			delwin(*ws[i]);
		*ws[i] = NULL;
	}
}

/* The one place that reacts to the terminal's size. */
static int relayout(struct console *c)
{
	int h, w;

	windows_free(c);
	getmaxyx(stdscr, h, w);
	c->too_small = h < MIN_LINES || w < MIN_COLS;
	if (!c->too_small) {
		c->w_header = newwin(1, w, 0, 0);
		c->w_body = newwin(h - 3, w, 1, 0);
		c->w_msg = newwin(1, w, h - 2, 0);
		c->w_bar = newwin(1, w, h - 1, 0);
		if (!c->w_header || !c->w_body || !c->w_msg || !c->w_bar) {
			windows_free(c);
			return -ENOMEM;
		}
	}
	ensure_visible(c);
	c->dirty |= DIRTY_ALL | DIRTY_SCREEN;
	return 0;
}

static void scheme_init(struct console *c)
{
	const char *no_color = getenv("NO_COLOR");
	int color = has_colors() && !(no_color && no_color[0]) && start_color() == OK;
	int defaults = color && use_default_colors() == OK;
	short pair = 1;

	for (int r = 0; r < ROLE_COUNT; r++) {
		const struct role_style *s = &scheme[r];
		short fg = s->fg, bg = s->bg;

		if (!color) {
			c->attr[r] = s->mono;
			continue;
		}
		if (fg == NO_PAIR) {
			c->attr[r] = s->color;
			continue;
		}
		if (!defaults) {
			fg = fg < 0 ? COLOR_WHITE : fg;
			bg = bg < 0 ? COLOR_BLACK : bg;
		}
		if (pair < COLOR_PAIRS && init_pair(pair, fg, bg) == OK)
			c->attr[r] = COLOR_PAIR(pair++) | s->color;
		else
			c->attr[r] = s->mono;
	}
}

static void render(struct console *c)
{
	int want_cursor = !c->too_small && c->prompt == PROMPT_FILTER;

	if (!c->dirty)
		return;
	if (c->dirty & DIRTY_SCREEN) {
		/* keep stdscr refreshed so wget_wch(stdscr) never repaints it */
		werase(stdscr);
		wnoutrefresh(stdscr);
		clearok(curscr, TRUE);
	}
	if (c->too_small) {
		draw_too_small(c);
		wnoutrefresh(stdscr);
	} else {
		if (c->dirty & DIRTY_HEADER) {
			draw_header(c);
			wnoutrefresh(c->w_header);
		}
		if (c->dirty & DIRTY_BODY) {
			view_top(c)->draw(c, c->w_body);
			wnoutrefresh(c->w_body);
		}
		if (c->dirty & DIRTY_BAR) {
			draw_keybar(c);
			wnoutrefresh(c->w_bar);
		}
		/* last, so that its cursor is the terminal's while typing */
		if ((c->dirty & DIRTY_MSG) || want_cursor) {
			draw_msgline(c);
			wnoutrefresh(c->w_msg);
		}
	}
	if (want_cursor != c->cursor) {
		(void)curs_set(want_cursor); /* ERR on terminals that cannot: fine */
		c->cursor = want_cursor;
	}
	doupdate();
	c->dirty = 0;
}

/* ---- input ------------------------------------------------------------------------------------
 */

static void filter_append(struct console *c, wchar_t ch)
{
	char mb[MB_LEN_MAX];
	mbstate_t st;
	size_t len = strlen(c->filter), n;

	memset(&st, 0, sizeof st);
	n = wcrtomb(mb, ch, &st);
	if (n == (size_t)-1 || len + n >= sizeof c->filter)
		return;
	memcpy(c->filter + len, mb, n);
	c->filter[len + n] = '\0';
	filter_changed(c);
}

static void filter_backspace(struct console *c)
{
	size_t n = strlen(c->filter);

	/* drop the last whole UTF-8 character: continuation bytes, then its lead */
	while (n > 0 && ((unsigned char)c->filter[n - 1] & 0xc0) == 0x80)
		n--;
	if (n > 0)
		n--;
	c->filter[n] = '\0';
	filter_changed(c);
}

/* Keys while a prompt is open. Returns 1 when the key was used. */
static int prompt_key(struct console *c, int key)
{
	if (c->prompt == PROMPT_CONFIRM) {
		/* any key answers; only y acts */
		c->prompt = PROMPT_NONE;
		if (key == 'y' || key == 'Y')
			confirm_run(c);
		else
			message(c, ROLE_NORMAL, "cancelled");
		return 1;
	}
	switch (key) {
	case KEY_ESC:
		c->prompt = PROMPT_NONE;
		c->filter[0] = '\0';
		filter_changed(c);
		return 1;
	case '\r':
	case '\n':
	case KEYFN(KEY_ENTER):
		c->prompt = PROMPT_NONE;
		c->dirty |= DIRTY_MSG;
		return 1;
	case KEYFN(KEY_BACKSPACE):
	case 127:
	case 8:
		filter_backspace(c);
		return 1;
	case KEY_CTRL('u'):
		c->filter[0] = '\0';
		filter_changed(c);
		return 1;
	}
	if (key >= 0x20 && key < KEYFN(0) && iswprint((wint_t)key)) {
		filter_append(c, (wchar_t)key);
		return 1;
	}
	return 0;
}

static int handle_key(struct console *c, int key)
{
	if (key == KEYFN(KEY_RESIZE))
		return relayout(c);
	if (c->too_small) {
		keymap_run(c, global_keys, N_OF(global_keys), key);
		return 0;
	}
	if (c->prompt != PROMPT_NONE && prompt_key(c, key))
		return 0;
	if (view_top(c)->key(c, key))
		return 0;
	if (c->prompt == PROMPT_NONE)
		keymap_run(c, global_keys, N_OF(global_keys), key);
	return 0;
}

static void console_tick(struct console *c, int64_t now)
{
	console_fetch(c);
	if (c->msg_until && now >= c->msg_until) {
		c->msg_until = 0;
		c->dirty |= DIRTY_MSG;
	}
}

static int screen_setup(struct console *c)
{
	const char *cup = tigetstr("cup");

	/* a terminal that cannot move the cursor (TERM=dumb) would show nothing */
	if (!cup || cup == (const char *)-1)
		return -ENOTTY;
	if (cbreak() == ERR || noecho() == ERR || keypad(stdscr, TRUE) == ERR)
		return -ENOTTY;
	(void)nonl();
	(void)intrflush(stdscr, FALSE);
	(void)set_escdelay(25);
	(void)curs_set(0); /* ERR on terminals that cannot hide it: fine */
	c->cursor = 0;
	scheme_init(c);
	return 0;
}

int console_run(const struct console_source *src, volatile sig_atomic_t *stop)
{
	struct console c;
	SCREEN *screen = NULL;
	const char *ctype;
	int set_ctype;
	int rc = 0;

	if (!src || !src->fetch)
		return -EINVAL;
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
		return -ENOTTY;

	memset(&c, 0, sizeof c);
	c.src = src;
	c.stop = stop;

	/* ncursesw needs the environment's LC_CTYPE in the process locale (a
	 * uselocale() thread locale is not enough). Only LC_CTYPE: LC_NUMERIC
	 * would change what printf("%f") writes in the server's other threads.
	 * setlocale() races other threads, so when main() has set LC_CTYPE
	 * already (before starting them) it is left alone; otherwise it is set
	 * here and put back to "C" on the way out. A bad LANG leaves "C". */
	ctype = setlocale(LC_CTYPE, NULL);
	set_ctype = !ctype || strcmp(ctype, "C") == 0 || strcmp(ctype, "POSIX") == 0;
	if (set_ctype)
		(void)setlocale(LC_CTYPE, "");
	c.utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;

	screen = newterm(NULL, stdout, stdin); /* unlike initscr, never exits */
	if (!screen) {
		rc = -ENOTTY;
		goto out;
	}
	set_term(screen);
	rc = screen_setup(&c);
	if (rc)
		goto out_curses;

	view_push(&c, &campaigns_view);
	console_fetch(&c);
	rc = relayout(&c);
	if (rc)
		goto out_curses;

	int64_t next_tick = now_ms() + TICK_MS;
	while (!c.quit && !stopped(&c)) {
		wint_t ch;
		int r;

		render(&c);
		if (terminal_lost()) {
			rc = -EIO;
			break;
		}
		int64_t wait = next_tick - now_ms();
		wtimeout(stdscr, wait < 0 ? 0 : wait > TICK_MS ? TICK_MS : (int)wait);
		r = wget_wch(stdscr, &ch);
		if (r == KEY_CODE_YES)
			rc = handle_key(&c, KEYFN((int)ch));
		else if (r == OK)
			rc = handle_key(&c, (int)ch);
		if (rc)
			break;
		int64_t now = now_ms();
		if (now >= next_tick) {
			console_tick(&c, now);
			next_tick = now + TICK_MS;
		}
	}

out_curses:
	windows_free(&c);
	endwin();
	delscreen(screen);
out:
	if (set_ctype)
		(void)setlocale(LC_CTYPE, "C");
	free(c.rows);
	console_model_fini(&c.model);
	return rc;
}
