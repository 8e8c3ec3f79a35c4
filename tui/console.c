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
 * Views form a stack (the main view at the bottom: campaigns or queues,
 * switched with t; help pushed over it); each has draw and key functions
 * and a key table. A key goes to the active prompt (filter text, y/n
 * confirmation) first, then to the top view, then to the global table. The
 * same tables write the help screen and the key bar.
 *
 * Rows: after every fetch and whenever sort or filter change, rows[] is
 * rebuilt as pointers into model.campaigns, filtered then sorted. The
 * selection follows its campaign by slug, so updates and re-sorting never
 * slide another campaign under the cursor between `p` and `y`. The queues
 * view selects in one list of queue rows then dead jobs, following a queue
 * by name or a job by id the same way; its y/n actions keep their target
 * (queue name, job id) from the moment they asked.
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
	if (m->n_queues > CONSOLE_QUEUES_MAX)
		m->n_queues = CONSOLE_QUEUES_MAX;
	for (size_t i = 0; i < m->n_queues; i++)
		m->queues[i].name[sizeof m->queues[i].name - 1] = '\0';
	if (m->n_dead > CONSOLE_DEAD_MAX)
		m->n_dead = CONSOLE_DEAD_MAX;
	for (size_t i = 0; i < m->n_dead; i++) {
		struct console_job *j = &m->dead[i];
		j->queue[sizeof j->queue - 1] = '\0';
		j->kind[sizeof j->kind - 1] = '\0';
		j->last_error[sizeof j->last_error - 1] = '\0';
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

static void queues_follow(struct console *c);

static void console_fetch(struct console *c)
{
	int rc = c->src->fetch(c->src->ctx, &c->model);

	c->fetch_rc = rc < 0 ? rc : 0;
	model_sanitize(&c->model);
	rows_rebuild(c);
	queues_follow(c);
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

/* The bottom of the stack is the main view: campaigns or queues (t). */
static const struct view_ops campaigns_view, queues_view, help_view;

static void act_help(struct console *c)
{
	if (view_top(c) == &help_view)
		view_pop(c);
	else
		view_push(c, &help_view);
}

/* Tab: the next of the main view and help; back down the stack if it is
 * there. */
static void act_next_view(struct console *c)
{
	const struct view_ops *const cycle[] = {c->views[0], &help_view};
	const size_t n = sizeof cycle / sizeof cycle[0];
	size_t i = 0;

	while (i < n && cycle[i] != view_top(c))
		i++;
	const struct view_ops *next = cycle[(i + 1) % n];
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

/* Text for a code an action of the source returned. */
static const char *action_errtext(const struct console *c, int rc, char *buf, size_t cap)
{
	const char *t = c->src->errtext ? c->src->errtext(c->src->ctx, rc) : NULL;

	return t ? t : errtext(rc < 0 ? -rc : rc, buf, cap);
}

/* Open the y/n prompt: on y, fn runs with the confirm_* fields. */
__attribute__((format(printf, 3, 4))) static void ask(struct console *c, action_fn fn,
                                                      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->confirm_q, sizeof c->confirm_q, fmt, ap);
	va_end(ap);
	c->confirm_fn = fn;
	c->prompt = PROMPT_CONFIRM;
	c->msg_until = 0;
	c->dirty |= DIRTY_MSG;
}

static void confirm_campaign(struct console *c);

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
	c->confirm_pause = pause;
	snprintf(c->confirm_slug, sizeof c->confirm_slug, "%s", cc->slug);
	snprintf(c->confirm_name, sizeof c->confirm_name, "%s", cc->name);
	ask(c, confirm_campaign, "%s %s (%s)? y/n", pause ? "Pause" : "Resume", c->confirm_slug,
	    c->confirm_name);
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
static void confirm_campaign(struct console *c)
{
	const struct console_source *src = c->src;
	int pause = c->confirm_pause;
	int rc = src->set_paused ? src->set_paused(src->ctx, c->confirm_slug, pause) : -ENOTSUP;
	char err[128];

	if (rc == 0)
		message(c, ROLE_OK, "%s %s", pause ? "paused" : "resumed", c->confirm_slug);
	else
		message(c, ROLE_ERROR, "%s %s failed: %s", pause ? "pause" : "resume",
		        c->confirm_slug, action_errtext(c, rc, err, sizeof err));
	console_fetch(c);
}

/* ---- queues view: rows, selection, actions ----------------------------------------------- */

/* The queues view lists model.queues (rows 0 .. n_queues - 1), then
 * model.dead. The selection follows its queue by name or its dead job by
 * id across fetches. When the job is gone (retried, discarded) the job
 * that slid into its place is selected, so R R R works down the list; when
 * none did, the gone job's queue, so that p, r and A still mean it. */

static size_t q_rows(const struct console *c)
{
	return c->model.n_queues + c->model.n_dead;
}

/* The selected dead job, or NULL when a queue row is selected. */
static const struct console_job *q_sel_job(const struct console *c)
{
	size_t nq = c->model.n_queues;

	return c->qsel >= nq && c->qsel < q_rows(c) ? &c->model.dead[c->qsel - nq] : NULL;
}

static const struct console_queue *queue_named(const struct console *c, const char *name)
{
	for (size_t i = 0; i < c->model.n_queues; i++)
		if (strcmp(c->model.queues[i].name, name) == 0)
			return &c->model.queues[i];
	return NULL;
}

/* The selected queue: its row, or the queue of the selected dead job. */
static const struct console_queue *q_sel_queue(const struct console *c)
{
	const struct console_job *j = q_sel_job(c);

	if (j)
		return queue_named(c, j->queue);
	return c->qsel < c->model.n_queues ? &c->model.queues[c->qsel] : NULL;
}

/* Geometry of the view in a body of h lines: the queue table (title row
 * and one row per queue), a blank line when there is room, the dead list's
 * title row at *dead_y and *vis rows of it. */
static void queues_geometry(const struct console *c, int h, int *dead_y, size_t *vis)
{
	int y = 1 + (int)c->model.n_queues;

	if (h - y >= 6)
		y++;
	*dead_y = y;
	*vis = h - y - 1 > 0 ? (size_t)(h - y - 1) : 0;
}

static size_t queues_dead_vis(const struct console *c)
{
	int dead_y;
	size_t vis;

	queues_geometry(c, c->w_body ? getmaxy(c->w_body) : 1, &dead_y, &vis);
	return vis ? vis : 1;
}

/* Scroll the dead list so that a selected job shows; keep it full. */
static void queues_scroll(struct console *c, size_t vis)
{
	size_t nq = c->model.n_queues, nd = c->model.n_dead;

	if (vis == 0)
		vis = 1;
	if (c->qsel >= nq) {
		size_t j = c->qsel - nq;
		if (j < c->qtop)
			c->qtop = j;
		else if (j >= c->qtop + vis)
			c->qtop = j - vis + 1;
	}
	if (nd <= vis)
		c->qtop = 0;
	else if (c->qtop > nd - vis)
		c->qtop = nd - vis;
}

static void queues_select(struct console *c, size_t i)
{
	size_t n = q_rows(c);

	c->qsel = n == 0 ? 0 : i < n ? i : n - 1;
	c->qsel_queue[0] = '\0';
	c->qsel_job = 0;
	if (n > 0) {
		const struct console_job *j = q_sel_job(c);
		snprintf(c->qsel_queue, sizeof c->qsel_queue, "%s",
		         j ? j->queue : c->model.queues[c->qsel].name);
		c->qsel_job = j ? j->id : 0;
	}
	if (c->w_body)
		queues_scroll(c, queues_dead_vis(c));
	c->dirty |= DIRTY_BODY;
}

/* After a fetch: find the selected queue or job again. */
static void queues_follow(struct console *c)
{
	size_t nq = c->model.n_queues, sel = c->qsel;
	int found = 0;

	if (c->qsel_job) {
		for (size_t i = 0; i < c->model.n_dead && !found; i++) {
			if (c->model.dead[i].id == c->qsel_job) {
				sel = nq + i;
				found = 1;
			}
		}
		/* gone: the next job, in its place */
		found = found || (sel >= nq && sel < q_rows(c));
	}
	for (size_t i = 0; i < nq && !found && c->qsel_queue[0]; i++) {
		if (strcmp(c->model.queues[i].name, c->qsel_queue) == 0) {
			sel = i;
			found = 1;
		}
	}
	queues_select(c, sel);
}

static void act_q_up(struct console *c)
{
	if (c->qsel > 0)
		queues_select(c, c->qsel - 1);
}

static void act_q_down(struct console *c)
{
	queues_select(c, c->qsel + 1);
}

static void act_q_first(struct console *c)
{
	queues_select(c, 0);
}

static void act_q_last(struct console *c)
{
	size_t n = q_rows(c);

	queues_select(c, n ? n - 1 : 0);
}

static void act_q_page_up(struct console *c)
{
	size_t page = queues_dead_vis(c);

	queues_select(c, c->qsel > page ? c->qsel - page : 0);
}

static void act_q_page_down(struct console *c)
{
	queues_select(c, c->qsel + queues_dead_vis(c));
}

/* t: the other main view (campaigns or queues). */
static void act_toggle_view(struct console *c)
{
	c->views[0] = c->views[0] == &queues_view ? &campaigns_view : &queues_view;
	c->depth = 1;
	c->dirty |= DIRTY_BODY | DIRTY_BAR | DIRTY_MSG;
}

static void confirm_queue_paused(struct console *c)
{
	const struct console_source *src = c->src;
	int pause = c->confirm_pause, rc;
	char err[128];

	rc = src->queue_set_paused ? src->queue_set_paused(src->ctx, c->confirm_slug, pause)
	                           : -ENOTSUP;
	if (rc == 0)
		message(c, ROLE_OK, "%s queue %s", pause ? "paused" : "resumed", c->confirm_slug);
	else
		message(c, ROLE_ERROR, "%s queue %s failed: %s", pause ? "pause" : "resume",
		        c->confirm_slug, action_errtext(c, rc, err, sizeof err));
	console_fetch(c);
}

static void ask_queue_paused(struct console *c, int pause)
{
	const struct console_queue *q = q_sel_queue(c);

	if (!q) {
		message(c, ROLE_WARN, "no queue selected");
		return;
	}
	if (!q->paused == !pause) {
		message(c, ROLE_WARN, "queue %s is already %s", q->name,
		        pause ? "paused" : "active");
		return;
	}
	c->confirm_pause = pause;
	snprintf(c->confirm_slug, sizeof c->confirm_slug, "%s", q->name);
	ask(c, confirm_queue_paused, "%s queue %s? y/n", pause ? "Pause" : "Resume",
	    c->confirm_slug);
}

static void act_q_pause(struct console *c)
{
	ask_queue_paused(c, 1);
}

static void act_q_resume(struct console *c)
{
	ask_queue_paused(c, 0);
}

static void confirm_retry_dead(struct console *c)
{
	const struct console_source *src = c->src;
	int rc =
	    src->queue_retry_dead ? src->queue_retry_dead(src->ctx, c->confirm_slug) : -ENOTSUP;
	char err[128];

	if (rc == 0)
		message(c, ROLE_OK, "dead jobs of %s are ready again", c->confirm_slug);
	else
		message(c, ROLE_ERROR, "retry dead jobs of %s failed: %s", c->confirm_slug,
		        action_errtext(c, rc, err, sizeof err));
	console_fetch(c);
}

static void act_retry_dead(struct console *c)
{
	const struct console_queue *q = q_sel_queue(c);
	char num[32];

	if (!q) {
		message(c, ROLE_WARN, "no queue selected");
		return;
	}
	if (q->dead <= 0) {
		message(c, ROLE_WARN, "queue %s has no dead jobs", q->name);
		return;
	}
	snprintf(c->confirm_slug, sizeof c->confirm_slug, "%s", q->name);
	console_fmt_int(num, sizeof num, q->dead);
	ask(c, confirm_retry_dead, "Retry all %s dead job%s of %s? y/n", num,
	    q->dead == 1 ? "" : "s", c->confirm_slug);
}

/* The selected dead job, or NULL after saying why there is none. */
static const struct console_job *job_for_action(struct console *c, const char *what)
{
	const struct console_job *j = q_sel_job(c);

	if (!j)
		message(c, ROLE_WARN, "select a dead job (Down/j) to %s it", what);
	return j;
}

static void act_retry(struct console *c)
{
	const struct console_source *src = c->src;
	const struct console_job *j = job_for_action(c, "retry");
	char gift[32], err[128];
	int64_t id;
	int rc;

	if (!j)
		return;
	id = j->id;
	console_fmt_donation(gift, sizeof gift, j->donation_id);
	rc = src->job_retry ? src->job_retry(src->ctx, id) : -ENOTSUP;
	if (rc == 0)
		message(c, ROLE_OK, "retried job %lld (%s %s %s)", (long long)id, j->queue, j->kind,
		        gift);
	else
		message(c, ROLE_ERROR, "retry job %lld failed: %s", (long long)id,
		        action_errtext(c, rc, err, sizeof err));
	console_fetch(c);
}

static void confirm_discard(struct console *c)
{
	const struct console_source *src = c->src;
	int rc = src->job_discard ? src->job_discard(src->ctx, c->confirm_job) : -ENOTSUP;
	char err[128];

	if (rc == 0)
		message(c, ROLE_OK, "discarded job %lld", (long long)c->confirm_job);
	else
		message(c, ROLE_ERROR, "discard job %lld failed: %s", (long long)c->confirm_job,
		        action_errtext(c, rc, err, sizeof err));
	console_fetch(c);
}

static void act_discard(struct console *c)
{
	const struct console_job *j = job_for_action(c, "discard");
	char gift[32];

	if (!j)
		return;
	c->confirm_job = j->id;
	console_fmt_donation(gift, sizeof gift, j->donation_id);
	ask(c, confirm_discard, "Discard job %lld (%s %s %s)%s? y/n", (long long)j->id, j->queue,
	    j->kind, gift, strcmp(j->kind, "capture") == 0 ? ", failing its gift" : "");
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
    {{'t'}, "t", "Queues", "show the job queues and dead jobs", act_toggle_view},
};

static const struct key_entry queues_keys[] = {
    {{KEYFN(KEY_UP), 'k'}, "Up/k", NULL, "select the previous queue or dead job", act_q_up},
    {{KEYFN(KEY_DOWN), 'j'}, "Down/j", NULL, "select the next queue or dead job", act_q_down},
    {{'g', KEYFN(KEY_HOME)}, "g/Home", NULL, "select the first queue", act_q_first},
    {{'G', KEYFN(KEY_END)}, "G/End", NULL, "select the last dead job", act_q_last},
    {{KEYFN(KEY_PPAGE)}, "PgUp", NULL, "one page up", act_q_page_up},
    {{KEYFN(KEY_NPAGE)}, "PgDn", NULL, "one page down", act_q_page_down},
    {{'t', KEY_ESC}, "t/Esc", "Campaigns", "back to the campaigns view", act_toggle_view},
    {{'p'}, "p", "Pause", "pause the selected queue (asks y/n)", act_q_pause},
    {{'r'}, "r", "Resume", "resume the selected queue (asks y/n)", act_q_resume},
    {{'R'}, "R", "Retry", "retry the selected dead job now", act_retry},
    {{'D', KEYFN(KEY_DC)}, "D/Del", "Discard", "discard the selected job (asks y/n)", act_discard},
    {{'A'}, "A", "Retry all", "retry all dead jobs of the queue (asks y/n)", act_retry_dead},
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
	console_fmt_rate(buf, cap, cc->per_min);
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

/* Fit a table of n columns into maxx columns: a margin of one on the left,
 * COL_GAP between columns. width[] holds each column's natural width and
 * shown[] which are in. With a flexible column (flex >= 0) it takes what
 * is left, one column short of the edge, and needs at least flex_min;
 * without one the table must fit. Until then the shown column with the
 * highest drop[] goes (0: never). Every table of the console fits this way. */
static void table_fit(int n, const int *drop, int flex, int flex_min, int maxx, int *width,
                      int *shown)
{
	for (;;) {
		int used = 1, worst = -1, fits;

		for (int k = 0; k < n; k++) {
			if (!shown[k] || k == flex)
				continue;
			used += COL_GAP + width[k];
			if (drop[k] > (worst < 0 ? 0 : drop[worst]))
				worst = k;
		}
		if (flex >= 0) {
			width[flex] = maxx - used - 1;
			fits = width[flex] >= flex_min;
		} else {
			fits = used - COL_GAP <= maxx;
		}
		if (fits || worst < 0)
			break;
		shown[worst] = 0;
	}
	if (flex >= 0 && width[flex] < 1)
		width[flex] = 1;
}

/* Widths from the widest cell of all rows (stable while scrolling); the name
 * column takes what is left, optional columns go while it is too narrow. */
static void campaigns_layout(const struct console *c, int maxx, struct layout *l)
{
	char buf[TEXT_CAP];
	int drop[COL_COUNT];

	for (int k = 0; k < COL_COUNT; k++) {
		int w = console_fmt_width(columns[k].title);
		l->width[k] = columns[k].width > w ? columns[k].width : w;
		l->shown[k] = 1;
		drop[k] = columns[k].drop;
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
	table_fit(COL_COUNT, drop, COL_NAME, NAME_MIN, maxx, l->width, l->shown);
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

/* ---- queues view ------------------------------------------------------------------------- */

/* A column of the queue table or the dead list. */
struct tcol {
	const char *title;
	int right; /* right-aligned */
	int drop;  /* see table_fit() */
};

enum qcol {
	QC_NAME,
	QC_STATE,
	QC_READY,
	QC_RUNNING,
	QC_RETRY,
	QC_DEAD,
	QC_DONE,
	QC_FAILED,
	QC_RATE,
	QC_P50,
	QC_P99,
	QC_COUNT
};

/* Narrow terminals keep what triage needs most: state, dead, retrying. */
static const struct tcol qcols[QC_COUNT] = {
    [QC_NAME] = {"Queue", 0, 0},      [QC_STATE] = {"State", 0, 0},    [QC_READY] = {"Ready", 1, 5},
    [QC_RUNNING] = {"Running", 1, 7}, [QC_RETRY] = {"Retrying", 1, 2}, [QC_DEAD] = {"Dead", 1, 0},
    [QC_DONE] = {"Done", 1, 8},       [QC_FAILED] = {"Failed", 1, 6},  [QC_RATE] = {"Done/s", 1, 3},
    [QC_P50] = {"p50", 1, 9},         [QC_P99] = {"p99", 1, 4},
};

enum jcol { JC_ID, JC_QUEUE, JC_KIND, JC_GIFT, JC_TRIES, JC_ERROR, JC_COUNT };

static const struct tcol jcols[JC_COUNT] = {
    [JC_ID] = {"Dead job", 1, 0}, [JC_QUEUE] = {"Queue", 0, 1}, [JC_KIND] = {"Kind", 0, 2},
    [JC_GIFT] = {"Gift", 0, 3},   [JC_TRIES] = {"Tries", 1, 4}, [JC_ERROR] = {"Last error", 0, 0},
};

#define ERROR_MIN 16              /* the last error keeps at least this many columns */
#define TCOLS_MAX ((int)QC_COUNT) /* columns of the widest table */
_Static_assert((int)JC_COUNT <= TCOLS_MAX, "TCOLS_MAX is the widest table");

static void queue_cells(const struct console_queue *q, char cell[][TEXT_CAP], enum role *role)
{
	for (int k = 0; k < QC_COUNT; k++)
		role[k] = ROLE_NORMAL;
	snprintf(cell[QC_NAME], TEXT_CAP, "%s", q->name);
	snprintf(cell[QC_STATE], TEXT_CAP, "%s", q->paused ? "paused" : "active");
	console_fmt_int(cell[QC_READY], TEXT_CAP, q->ready);
	console_fmt_int(cell[QC_RUNNING], TEXT_CAP, q->running);
	console_fmt_int(cell[QC_RETRY], TEXT_CAP, q->scheduled);
	console_fmt_int(cell[QC_DEAD], TEXT_CAP, q->dead);
	console_fmt_int(cell[QC_DONE], TEXT_CAP, q->done);
	console_fmt_int(cell[QC_FAILED], TEXT_CAP, q->failed);
	console_fmt_rate(cell[QC_RATE], TEXT_CAP, q->done_per_s);
	console_fmt_latency(cell[QC_P50], TEXT_CAP, q->latency_ms_p50);
	console_fmt_latency(cell[QC_P99], TEXT_CAP, q->latency_ms_p99);
	role[QC_NAME] = q->paused ? ROLE_WARN : ROLE_NORMAL;
	role[QC_STATE] = q->paused ? ROLE_WARN : ROLE_OK;
	if (q->scheduled > 0)
		role[QC_RETRY] = ROLE_WARN;
	if (q->dead > 0)
		role[QC_DEAD] = ROLE_ERROR;
}

static void job_cells(const struct console_job *j, char cell[][TEXT_CAP], enum role *role)
{
	for (int k = 0; k < JC_COUNT; k++)
		role[k] = ROLE_NORMAL;
	snprintf(cell[JC_ID], TEXT_CAP, "%lld", (long long)j->id);
	snprintf(cell[JC_QUEUE], TEXT_CAP, "%s", j->queue);
	snprintf(cell[JC_KIND], TEXT_CAP, "%s", j->kind);
	console_fmt_donation(cell[JC_GIFT], TEXT_CAP, j->donation_id);
	snprintf(cell[JC_TRIES], TEXT_CAP, "%d", j->attempts);
	snprintf(cell[JC_ERROR], TEXT_CAP, "%s", j->last_error[0] ? j->last_error : "-");
	role[JC_ERROR] = ROLE_WARN;
}

/* Widen width[] (n columns) to the cells' display widths. */
static void widen(int n, char cell[][TEXT_CAP], int *width)
{
	for (int k = 0; k < n; k++) {
		int w = console_fmt_width(cell[k]);
		if (w > width[k])
			width[k] = w;
	}
}

static void table_init(int n, const struct tcol *cols, int *width, int *shown, int *drop)
{
	for (int k = 0; k < n; k++) {
		width[k] = console_fmt_width(cols[k].title);
		shown[k] = 1;
		drop[k] = cols[k].drop;
	}
}

/* One row of a fitted table at y: text[k] in role[k]; the selected row
 * (sel non-zero) all in sel, highlighted edge to edge. */
static void table_row(struct console *c, WINDOW *w, int y, const struct tcol *cols, int n,
                      const int *width, const int *shown, const char *const *text,
                      const enum role *role, attr_t sel)
{
	int x = 1;

	if (sel)
		mvwhline(w, y, 0, ' ' | sel, getmaxx(w));
	for (int k = 0; k < n; k++) {
		if (!shown[k])
			continue;
		draw_text(w, y, x, width[k], text[k], cols[k].right, sel ? sel : c->attr[role[k]]);
		x += width[k] + COL_GAP;
	}
}

static void table_titles(struct console *c, WINDOW *w, int y, const struct tcol *cols, int n,
                         const int *width, const int *shown)
{
	const char *text[TCOLS_MAX];
	enum role role[TCOLS_MAX];

	for (int k = 0; k < n; k++) {
		text[k] = cols[k].title;
		role[k] = ROLE_HEADER;
	}
	table_row(c, w, y, cols, n, width, shown, text, role, 0);
}

static void queues_draw(struct console *c, WINDOW *w)
{
	const struct console_model *m = &c->model;
	char qcell[QC_COUNT][TEXT_CAP], jcell[JC_COUNT][TEXT_CAP];
	const char *text[TCOLS_MAX];
	enum role qrole[QC_COUNT], jrole[JC_COUNT];
	int qw[QC_COUNT], qshown[QC_COUNT], qdrop[QC_COUNT];
	int jw[JC_COUNT], jshown[JC_COUNT], jdrop[JC_COUNT];
	int maxx = getmaxx(w), h = getmaxy(w), dead_y;
	size_t vis;

	werase(w);
	if (m->n_queues == 0) {
		draw_text(w, 1, 2, maxx - 2, "no job queues in this source", 0, c->attr[ROLE_DIM]);
		return;
	}
	queues_geometry(c, h, &dead_y, &vis);
	queues_scroll(c, vis);

	/* widths from every row, so that they hold while scrolling */
	table_init(QC_COUNT, qcols, qw, qshown, qdrop);
	for (size_t i = 0; i < m->n_queues; i++) {
		queue_cells(&m->queues[i], qcell, qrole);
		widen(QC_COUNT, qcell, qw);
	}
	table_fit(QC_COUNT, qdrop, -1, 0, maxx, qw, qshown);
	table_init(JC_COUNT, jcols, jw, jshown, jdrop);
	for (size_t i = 0; i < m->n_dead; i++) {
		job_cells(&m->dead[i], jcell, jrole);
		widen(JC_ERROR, jcell, jw); /* the error takes what is left */
	}
	table_fit(JC_COUNT, jdrop, JC_ERROR, ERROR_MIN, maxx, jw, jshown);

	table_titles(c, w, 0, qcols, QC_COUNT, qw, qshown);
	for (size_t i = 0; i < m->n_queues && 1 + (int)i < h; i++) {
		queue_cells(&m->queues[i], qcell, qrole);
		for (int k = 0; k < QC_COUNT; k++)
			text[k] = qcell[k];
		table_row(c, w, 1 + (int)i, qcols, QC_COUNT, qw, qshown, text, qrole,
		          c->qsel == i ? c->attr[ROLE_SELECTION] : 0);
	}

	if (dead_y >= h)
		return;
	table_titles(c, w, dead_y, jcols, JC_COUNT, jw, jshown);
	if (m->n_dead == 0 && dead_y + 1 < h)
		draw_text(w, dead_y + 1, 2, maxx - 2, "no dead jobs", 0, c->attr[ROLE_DIM]);
	for (size_t r = 0; r < vis && c->qtop + r < m->n_dead; r++) {
		size_t i = c->qtop + r;

		job_cells(&m->dead[i], jcell, jrole);
		for (int k = 0; k < JC_COUNT; k++)
			text[k] = jcell[k];
		table_row(c, w, dead_y + 1 + (int)r, jcols, JC_COUNT, jw, jshown, text, jrole,
		          c->qsel == m->n_queues + i ? c->attr[ROLE_SELECTION] : 0);
	}
}

static int queues_key(struct console *c, int key)
{
	return keymap_run(c, queues_keys, N_OF(queues_keys), key);
}

static const struct view_ops queues_view = {
    "Queues", queues_draw, queues_key, queues_keys, N_OF(queues_keys),
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
    {"Queues view", queues_keys, N_OF(queues_keys)},
    {"Help view", help_keys, N_OF(help_keys)},
    {"Everywhere", global_keys, N_OF(global_keys)},
};

static const char *const help_notes[] = {
    "Total is the committed money of a campaign in its currency; Goal the share",
    "of its goal reached; /min the recent donations per minute.",
    "Status: active (green), paused (yellow), closed (dim).",
    "The selection follows its campaign when totals re-sort the list.",
    "Queues: Retrying counts failed jobs waiting for their next attempt; dead",
    "jobs are out of attempts and wait for staff. A discarded capture fails its",
    "gift. p50/p99: recent wait from ready to started. The header counts dead",
    "jobs and names paused queues from every view.",
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

/* Dead jobs of all queues (saturating). */
static int64_t queues_dead_total(const struct console_model *m)
{
	int64_t dead = 0;

	for (size_t i = 0; i < m->n_queues; i++)
		if (m->queues[i].dead > 0)
			dead = m->queues[i].dead > INT64_MAX - dead ? INT64_MAX
			                                            : dead + m->queues[i].dead;
	return dead;
}

/* Dead jobs and paused queues, seen from every view. */
static void draw_queue_alerts(struct console *c, WINDOW *w, int *x)
{
	const struct console_model *m = &c->model;
	const char *paused = NULL;
	char buf[TEXT_CAP], num[32];
	int64_t dead = queues_dead_total(m);
	size_t n_paused = 0;

	for (size_t i = 0; i < m->n_queues; i++) {
		if (m->queues[i].paused) {
			paused = m->queues[i].name;
			n_paused++;
		}
	}
	if (dead > 0) {
		console_fmt_int(num, sizeof num, dead);
		snprintf(buf, sizeof buf, "%s dead job%s", num, dead == 1 ? "" : "s");
		put(c, w, x, ROLE_NORMAL, "  ");
		put(c, w, x, ROLE_ERROR, buf);
	}
	if (n_paused == 1)
		snprintf(buf, sizeof buf, "%s paused", paused);
	else if (n_paused > 1)
		snprintf(buf, sizeof buf, "%zu queues paused", n_paused);
	if (n_paused) {
		put(c, w, x, ROLE_NORMAL, "  ");
		put(c, w, x, ROLE_WARN, buf);
	}
}

/* The server's own trouble, worst first: commits failing (donations are
 * answered 503), then viewers shed under load. */
static void draw_server_alerts(struct console *c, WINDOW *w, int *x)
{
	const struct console_model *m = &c->model;
	char buf[TEXT_CAP], num[32];

	if (m->storage_failing_ms > 0) {
		console_fmt_duration(num, sizeof num, m->storage_failing_ms / 1000);
		snprintf(buf, sizeof buf, "STORAGE FAILING %s", num);
		put(c, w, x, ROLE_NORMAL, "  ");
		put(c, w, x, ROLE_ERROR, buf);
	}
	if (m->live_refusing) {
		put(c, w, x, ROLE_NORMAL, "  ");
		put(c, w, x, ROLE_ERROR, "refusing viewers");
	} else if (m->live_slow > 1) {
		snprintf(buf, sizeof buf, "viewers slowed x%d", m->live_slow);
		put(c, w, x, ROLE_NORMAL, "  ");
		put(c, w, x, ROLE_WARN, buf);
	}
}

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
		/* A remote source's words: "reconnecting (12 s): why", "stale
		 * since 12:00:01" (its numbers are older than they look). */
		put(c, w, &x, strncmp(m->error, "stale", 5) ? ROLE_ERROR : ROLE_WARN,
		    m->error[0] ? m->error : "disconnected");
	} else {
		put(c, w, &x, ROLE_OK, "connected");
		if (m->error[0]) {
			put(c, w, &x, ROLE_NORMAL, " ");
			put(c, w, &x, ROLE_WARN, m->error);
		}
	}

	draw_server_alerts(c, w, &x);
	draw_queue_alerts(c, w, &x);
	put(c, w, &x, ROLE_DIM, "  up ");
	console_fmt_duration(num, sizeof num, m->uptime_s);
	put(c, w, &x, ROLE_NORMAL, num);
	put(c, w, &x, ROLE_DIM, "  gifts/s ");
	console_fmt_rate(num, sizeof num, m->donations_per_s);
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

/* The queues view's idle message line: how much of the dead list shows. */
static void queues_summary(const struct console *c, char *buf, size_t cap)
{
	const struct console_model *m = &c->model;
	size_t last = c->qtop + queues_dead_vis(c);
	int64_t dead = queues_dead_total(m);

	if (last > m->n_dead)
		last = m->n_dead;
	if (m->n_dead == 0)
		snprintf(buf, cap, "%zu queues, no dead jobs", m->n_queues);
	else
		snprintf(buf, cap, "%zu queues, %lld dead job%s, showing %zu-%zu of %zu listed",
		         m->n_queues, (long long)dead, dead == 1 ? "" : "s", c->qtop + 1, last,
		         m->n_dead);
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
		put(c, w, &x, ROLE_WARN, c->confirm_q);
		return;
	case PROMPT_NONE:
		break;
	}
	if (c->msg_until) {
		put(c, w, &x, c->msg_role, c->msg);
	} else if (c->views[0] == &queues_view) {
		queues_summary(c, buf, sizeof buf);
		put(c, w, &x, ROLE_DIM, buf);
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
			c->confirm_fn(c);
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
