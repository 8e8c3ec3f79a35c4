/* tui/console.c - the ncurses staff console: the loop, the view stack,
 * the prompts, key dispatch, the screen, and (below) the views. The
 * drawing is console_draw.c, what the files share console_int.h.
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
 * same tables write the help screen (view_help.c) and the key bar
 * (console_draw.c). After every fetch the views find their selection
 * again (view_campaigns_rebuild(), view_queues_follow()).
 *
 * Exits: q/F10, *stop (seen within one tick), or a failure: -ENOTTY when
 * stdin/stdout is not a terminal or TERM cannot address the cursor, -EIO
 * when the terminal hangs up (checked each pass; ncurses would otherwise
 * return ERR at once forever and the loop would spin). endwin() runs on
 * every path once curses has started.
 */
#include "console_int.h"

#include "console_fmt.h"

#include <errno.h>
#include <langinfo.h>
#include <limits.h>
#include <locale.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>
#include <wctype.h>

#define TICK_MS 250
#define MIN_COLS 40
#define MIN_LINES 10

/* ---- colours: semantic roles through a scheme ------------------------- */

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

void console_model_fini(struct console_model *m)
{
	if (!m)
		return;
	free(m->campaigns);
	memset(m, 0, sizeof *m);
}

/* ---- small helpers ------------------------------------------------------- */

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

const struct view_ops *console_view_top(const struct console *c)
{
	return c->views[c->depth - 1];
}

static void view_push(struct console *c, const struct view_ops *v)
{
	if (c->depth < VIEW_DEPTH)
		c->views[c->depth++] = v;
	c->dirty |= DIRTY_BODY | DIRTY_BAR | DIRTY_MSG;
}

void console_view_pop(struct console *c)
{
	if (c->depth > 1)
		c->depth--;
	c->dirty |= DIRTY_BODY | DIRTY_BAR | DIRTY_MSG;
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

void console_fetch(struct console *c)
{
	int rc = c->src->fetch(c->src->ctx, &c->model);

	c->fetch_rc = rc < 0 ? rc : 0;
	model_sanitize(&c->model);
	view_campaigns_rebuild(c);
	view_queues_follow(c);
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

static void act_help(struct console *c)
{
	if (console_view_top(c) == &view_help)
		console_view_pop(c);
	else
		view_push(c, &view_help);
}

/* Tab: the next of the main view and help; back down the stack if it is
 * there. */
static void act_next_view(struct console *c)
{
	const struct view_ops *const cycle[] = {c->views[0], &view_help};
	const size_t n = sizeof cycle / sizeof cycle[0];
	size_t i = 0;

	while (i < n && cycle[i] != console_view_top(c))
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

/* Open the y/n prompt: on y, fn runs with the confirm_* fields. */
__attribute__((format(printf, 3, 4))) void console_ask(struct console *c, action_fn fn,
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

/* t: the other main view (campaigns or queues). */
void console_act_toggle_view(struct console *c)
{
	c->views[0] = c->views[0] == &view_queues ? &view_campaigns : &view_queues;
	c->depth = 1;
	c->dirty |= DIRTY_BODY | DIRTY_BAR | DIRTY_MSG;
}

/* ---- global keys ------------------------------------------------------------------- */

const struct key_entry console_global_keys[] = {
    {{'?', KEYFN(KEY_F(1))}, "?/F1", "Help", "show or hide this help", act_help},
    {{'\t'}, "Tab", "View", "next view", act_next_view},
    {{KEY_CTRL('l')}, "^L", NULL, "redraw the screen", act_redraw},
    {{'q', KEYFN(KEY_F(10))}, "q/F10", "Quit", "quit the console", act_quit},
};

const size_t console_n_global_keys = N_OF(console_global_keys);

int console_keymap_run(struct console *c, const struct key_entry *map, size_t n, int key)
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

/* ---- screen ------------------------------------------------------------------------------------
 */

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
	view_campaigns_ensure_visible(c);
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
			console_view_top(c)->draw(c, c->w_body);
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
	view_campaigns_filter_changed(c);
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
	view_campaigns_filter_changed(c);
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
		view_campaigns_filter_changed(c);
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
		view_campaigns_filter_changed(c);
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
		console_keymap_run(c, console_global_keys, N_OF(console_global_keys), key);
		return 0;
	}
	if (c->prompt != PROMPT_NONE && prompt_key(c, key))
		return 0;
	if (console_view_top(c)->key(c, key))
		return 0;
	if (c->prompt == PROMPT_NONE)
		console_keymap_run(c, console_global_keys, N_OF(console_global_keys), key);
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

	view_push(&c, &view_campaigns);
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

/* ---- the campaigns view: its rows (filter, sort,
 * selection), its columns, the pause and resume actions, its key table.
 *
 * Rows: after every fetch and whenever sort or filter change, rows[] is
 * rebuilt as pointers into model.campaigns, filtered then sorted. The
 * selection follows its campaign by slug, so updates and re-sorting never
 * slide another campaign under the cursor between `p` and `y`.
 */

#define NAME_MIN 16 /* narrower than this, optional columns go */

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

void view_campaigns_ensure_visible(struct console *c)
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
		view_campaigns_ensure_visible(c);
	}
	c->dirty |= DIRTY_BODY;
}

void view_campaigns_rebuild(struct console *c)
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

/* The name of the current sort ("total", "name", "rate"). */
const char *view_campaigns_sort_name(const struct console *c)
{
	return sorts[c->sort].name;
}

/* ---- actions ------------------------------------------------------------------- */

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
	view_campaigns_rebuild(c);
	message(c, ROLE_NORMAL, "sorted by %s", sorts[c->sort].name);
}

void view_campaigns_filter_changed(struct console *c)
{
	view_campaigns_rebuild(c);
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
	view_campaigns_filter_changed(c);
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
	console_ask(c, confirm_campaign, "%s %s (%s)? y/n", pause ? "Pause" : "Resume",
	            c->confirm_slug, c->confirm_name);
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

/* ---- key table ------------------------------------------------------------------- */

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
    {{'t'}, "t", "Queues", "show the job queues and dead jobs", console_act_toggle_view},
};

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
	draw_table_fit(COL_COUNT, drop, COL_NAME, NAME_MIN, maxx, l->width, l->shown);
}

static enum role status_role(const char *status)
{
	if (strcmp(status, "active") == 0)
		return ROLE_OK;
	if (strcmp(status, "paused") == 0)
		return ROLE_WARN;
	return ROLE_DIM;
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
	return console_keymap_run(c, campaigns_keys, N_OF(campaigns_keys), key);
}

const struct view_ops view_campaigns = {
    "Campaigns", campaigns_draw, campaigns_key, campaigns_keys, N_OF(campaigns_keys),
};

/* ---- the queues view: the job queues' counters and their
 * dead jobs, the actions on them (pause or resume a queue, retry or discard
 * a job, retry all dead jobs of a queue), its key table.
 *
 * It selects in one list of queue rows then dead jobs, following a queue by
 * name or a job by id across fetches as the campaigns view follows a slug;
 * its y/n actions keep their target (queue name, job id) from the moment
 * they asked.
 */

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
void view_queues_follow(struct console *c)
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
	console_ask(c, confirm_queue_paused, "%s queue %s? y/n", pause ? "Pause" : "Resume",
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
	console_ask(c, confirm_retry_dead, "Retry all %s dead job%s of %s? y/n", num,
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
	console_ask(c, confirm_discard, "Discard job %lld (%s %s %s)%s? y/n", (long long)j->id,
	            j->queue, j->kind, gift,
	            strcmp(j->kind, "capture") == 0 ? ", failing its gift" : "");
}

/* ---- key table ------------------------------------------------------------------- */

static const struct key_entry queues_keys[] = {
    {{KEYFN(KEY_UP), 'k'}, "Up/k", NULL, "select the previous queue or dead job", act_q_up},
    {{KEYFN(KEY_DOWN), 'j'}, "Down/j", NULL, "select the next queue or dead job", act_q_down},
    {{'g', KEYFN(KEY_HOME)}, "g/Home", NULL, "select the first queue", act_q_first},
    {{'G', KEYFN(KEY_END)}, "G/End", NULL, "select the last dead job", act_q_last},
    {{KEYFN(KEY_PPAGE)}, "PgUp", NULL, "one page up", act_q_page_up},
    {{KEYFN(KEY_NPAGE)}, "PgDn", NULL, "one page down", act_q_page_down},
    {{'t', KEY_ESC}, "t/Esc", "Campaigns", "back to the campaigns view", console_act_toggle_view},
    {{'p'}, "p", "Pause", "pause the selected queue (asks y/n)", act_q_pause},
    {{'r'}, "r", "Resume", "resume the selected queue (asks y/n)", act_q_resume},
    {{'R'}, "R", "Retry", "retry the selected dead job now", act_retry},
    {{'D', KEYFN(KEY_DC)}, "D/Del", "Discard", "discard the selected job (asks y/n)", act_discard},
    {{'A'}, "A", "Retry all", "retry all dead jobs of the queue (asks y/n)", act_retry_dead},
};

/* ---- queues view ------------------------------------------------------------------------- */

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

#define ERROR_MIN 16 /* the last error keeps at least this many columns */
_Static_assert((int)QC_COUNT <= TCOLS_MAX, "the queue table fits TCOLS_MAX");
_Static_assert((int)JC_COUNT <= TCOLS_MAX, "the dead list fits TCOLS_MAX");

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
	draw_table_init(QC_COUNT, qcols, qw, qshown, qdrop);
	for (size_t i = 0; i < m->n_queues; i++) {
		queue_cells(&m->queues[i], qcell, qrole);
		draw_widen(QC_COUNT, qcell, qw);
	}
	draw_table_fit(QC_COUNT, qdrop, -1, 0, maxx, qw, qshown);
	draw_table_init(JC_COUNT, jcols, jw, jshown, jdrop);
	for (size_t i = 0; i < m->n_dead; i++) {
		job_cells(&m->dead[i], jcell, jrole);
		draw_widen(JC_ERROR, jcell, jw); /* the error takes what is left */
	}
	draw_table_fit(JC_COUNT, jdrop, JC_ERROR, ERROR_MIN, maxx, jw, jshown);

	draw_table_titles(c, w, 0, qcols, QC_COUNT, qw, qshown);
	for (size_t i = 0; i < m->n_queues && 1 + (int)i < h; i++) {
		queue_cells(&m->queues[i], qcell, qrole);
		for (int k = 0; k < QC_COUNT; k++)
			text[k] = qcell[k];
		draw_table_row(c, w, 1 + (int)i, qcols, QC_COUNT, qw, qshown, text, qrole,
		               c->qsel == i ? c->attr[ROLE_SELECTION] : 0);
	}

	if (dead_y >= h)
		return;
	draw_table_titles(c, w, dead_y, jcols, JC_COUNT, jw, jshown);
	if (m->n_dead == 0 && dead_y + 1 < h)
		draw_text(w, dead_y + 1, 2, maxx - 2, "no dead jobs", 0, c->attr[ROLE_DIM]);
	for (size_t r = 0; r < vis && c->qtop + r < m->n_dead; r++) {
		size_t i = c->qtop + r;

		job_cells(&m->dead[i], jcell, jrole);
		for (int k = 0; k < JC_COUNT; k++)
			text[k] = jcell[k];
		draw_table_row(c, w, dead_y + 1 + (int)r, jcols, JC_COUNT, jw, jshown, text, jrole,
		               c->qsel == m->n_queues + i ? c->attr[ROLE_SELECTION] : 0);
	}
}

static int queues_key(struct console *c, int key)
{
	return console_keymap_run(c, queues_keys, N_OF(queues_keys), key);
}

const struct view_ops view_queues = {
    "Queues", queues_draw, queues_key, queues_keys, N_OF(queues_keys),
};

/* Dead jobs of all queues (saturating). */
int64_t view_queues_dead_total(const struct console_model *m)
{
	int64_t dead = 0;

	for (size_t i = 0; i < m->n_queues; i++)
		if (m->queues[i].dead > 0)
			dead = m->queues[i].dead > INT64_MAX - dead ? INT64_MAX
			                                            : dead + m->queues[i].dead;
	return dead;
}

/* The queues view's idle message line: how much of the dead list shows. */
void view_queues_summary(const struct console *c, char *buf, size_t cap)
{
	const struct console_model *m = &c->model;
	size_t last = c->qtop + queues_dead_vis(c);
	int64_t dead = view_queues_dead_total(m);

	if (last > m->n_dead)
		last = m->n_dead;
	if (m->n_dead == 0)
		snprintf(buf, cap, "%zu queues, no dead jobs", m->n_queues);
	else
		snprintf(buf, cap, "%zu queues, %lld dead job%s, showing %zu-%zu of %zu listed",
		         m->n_queues, (long long)dead, dead == 1 ? "" : "s", c->qtop + 1, last,
		         m->n_dead);
}

/* ---- the help screen, pushed over the main view by ?/F1 or
 * Tab. Its rows come from the key tables (each view's and the global one)
 * and a few notes; the same tables write the key bar (console_draw.c).
 */

static void act_back(struct console *c)
{
	console_view_pop(c);
}

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
	const struct help_section help_sections[] = {
	    {"Campaigns view", view_campaigns.keys, view_campaigns.n_keys},
	    {"Queues view", view_queues.keys, view_queues.n_keys},
	    {"Help view", help_keys, N_OF(help_keys)},
	    {"Everywhere", console_global_keys, console_n_global_keys},
	};
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
	return console_keymap_run(c, help_keys, N_OF(help_keys), key);
}

const struct view_ops view_help = {
    "Help", help_draw, help_key, help_keys, N_OF(help_keys),
};
