/* tui/console.c - the ncurses staff console: the loop, the view stack,
 * the prompts, key dispatch, the screen. The views are view_*.c, the
 * drawing console_draw.c, what they share console_int.h.
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
 * Views form a stack (the main view at the bottom: campaigns, queues,
 * events or the shield, cycled with t; help pushed over it); each has draw and key functions
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

void console_view_push(struct console *c, const struct view_ops *v)
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

static void shield_sanitize(struct console_shield *sh)
{
	sh->state[sizeof sh->state - 1] = '\0';
	if (sh->n_campaigns > CONSOLE_SHIELD_CAMPAIGNS)
		sh->n_campaigns = CONSOLE_SHIELD_CAMPAIGNS;
	for (size_t i = 0; i < sh->n_campaigns; i++)
		sh->campaigns[i].slug[sizeof sh->campaigns[i].slug - 1] = '\0';
	if (sh->n_offenders > CONSOLE_SHIELD_OFFENDERS)
		sh->n_offenders = CONSOLE_SHIELD_OFFENDERS;
	for (size_t i = 0; i < sh->n_offenders; i++) {
		struct console_offender *x = &sh->offenders[i];
		x->kind[sizeof x->kind - 1] = '\0';
		x->key[sizeof x->key - 1] = '\0';
		x->why[sizeof x->why - 1] = '\0';
	}
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
		if (j->n_history < 0 || j->n_history > CONSOLE_ATTEMPTS_MAX)
			j->n_history = j->n_history < 0 ? 0 : CONSOLE_ATTEMPTS_MAX;
		for (int k = 0; k < j->n_history; k++)
			j->history[k].error[sizeof j->history[k].error - 1] = '\0';
	}
	shield_sanitize(&m->shield);
}

/* One sample a second of what the header draws over time. */
static void console_sample(struct console *c)
{
	const struct console_model *m = &c->model;
	int64_t now = now_ms();
	size_t k = c->n_hist % HIST_N;

	if (c->n_hist && now - c->sampled_ms < 1000)
		return;
	c->sampled_ms = now;
	c->rate_hist[k] = m->donations_per_s;
	c->pay_done[k] = c->pay_declined[k] = -1; /* no payments queue */
	for (size_t i = 0; i < m->n_queues; i++)
		if (!strcmp(m->queues[i].name, "payments")) {
			c->pay_done[k] = m->queues[i].done;
			c->pay_declined[k] = m->queues[i].declined;
		}
	c->n_hist++;
}

void console_fetch(struct console *c)
{
	int rc = c->src->fetch(c->src->ctx, &c->model);

	c->fetch_rc = rc < 0 ? rc : 0;
	model_sanitize(&c->model);
	if (!rc && c->model.connected)
		console_sample(c);
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
		console_view_push(c, &view_help);
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
	console_view_push(c, next);
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

__attribute__((format(printf, 3, 4))) void console_input(struct console *c, action_fn fn,
                                                         const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->input_q, sizeof c->input_q, fmt, ap);
	va_end(ap);
	c->input[0] = '\0';
	c->input_fn = fn;
	c->prompt = PROMPT_INPUT;
	c->msg_until = 0;
	c->dirty |= DIRTY_MSG;
}

/* t: the next main view (campaigns, queues, events, shield). */
void console_act_toggle_view(struct console *c)
{
	/* t cycles the main views: campaigns, queues, events, shield */
	c->views[0] = c->views[0] == &view_campaigns ? &view_queues
	              : c->views[0] == &view_queues  ? &view_events
	              : c->views[0] == &view_events  ? &view_shield
	                                             : &view_campaigns;
	c->efollow = 1;
	c->depth = 1;
	c->dirty |= DIRTY_BODY | DIRTY_BAR | DIRTY_MSG;
}

/* ---- global keys ------------------------------------------------------------------- */

const struct key_entry console_global_keys[] = {
    {{'?', KEYFN(KEY_F(1))}, "?/F1", "Help", "show or hide this help", act_help},
    {{'\t'}, "Tab", "View", "next view", act_next_view},
    {{KEY_CTRL('l')}, "^L", NULL, "redraw the screen", act_redraw},
    {{'S'},
     "S",
     NULL,
     "raise the card-testing shield; lower it when up or raised (asks y/n)",
     view_shield_toggle},
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
		c->w_header = newwin(HEADER_ROWS, w, 0, 0);
		c->w_body = newwin(h - 2 - HEADER_ROWS, w, HEADER_ROWS, 0);
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
	int want_cursor =
	    !c->too_small && (c->prompt == PROMPT_FILTER || c->prompt == PROMPT_INPUT);

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

/* Append ch to the text in buf (cap bytes) as UTF-8, when it fits. */
static void text_append(char *buf, size_t cap, wchar_t ch)
{
	char mb[MB_LEN_MAX];
	mbstate_t st;
	size_t len = strlen(buf), n;

	memset(&st, 0, sizeof st);
	n = wcrtomb(mb, ch, &st);
	if (n == (size_t)-1 || len + n >= cap)
		return;
	memcpy(buf + len, mb, n);
	buf[len + n] = '\0';
}

/* Drop the last whole UTF-8 character of buf. */
static void text_backspace(char *buf)
{
	size_t n = strlen(buf);

	/* continuation bytes, then its lead */
	while (n > 0 && ((unsigned char)buf[n - 1] & 0xc0) == 0x80)
		n--;
	if (n > 0)
		n--;
	buf[n] = '\0';
}

static void filter_append(struct console *c, wchar_t ch)
{
	text_append(c->filter, sizeof c->filter, ch);
	view_campaigns_filter_changed(c);
}

static void filter_backspace(struct console *c)
{
	text_backspace(c->filter);
	view_campaigns_filter_changed(c);
}

/* Keys while a line of text is asked for (console_input). */
static int input_key(struct console *c, int key)
{
	c->dirty |= DIRTY_MSG;
	switch (key) {
	case KEY_ESC:
		c->prompt = PROMPT_NONE;
		message(c, ROLE_NORMAL, "cancelled");
		return 1;
	case '\r':
	case '\n':
	case KEYFN(KEY_ENTER):
		c->prompt = PROMPT_NONE;
		c->input_fn(c);
		return 1;
	case KEYFN(KEY_BACKSPACE):
	case 127:
	case 8:
		text_backspace(c->input);
		return 1;
	case KEY_CTRL('u'):
		c->input[0] = '\0';
		return 1;
	}
	if (key >= 0x20 && key < KEYFN(0) && iswprint((wint_t)key))
		text_append(c->input, sizeof c->input, (wchar_t)key);
	return 1; /* nothing else acts while typing */
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
	if (c->prompt == PROMPT_INPUT)
		return input_key(c, key);
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

	console_view_push(&c, &view_campaigns);
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
	free(c.detail_json);
	console_model_fini(&c.model);
	return rc;
}

/* ---- test hook ------------------------------------------------------------------------ */

int console_header_text(const struct console_model *m, int cols, char *out, size_t cap)
{
	FILE *to = NULL, *from = NULL;
	SCREEN *screen = NULL;
	WINDOW *pad = NULL;
	struct console *c = NULL;
	size_t len = 0;
	int rc = -ENOTTY;

	if (!m || !out || !cap || cols < MIN_COLS || cols > TEXT_CAP)
		return -EINVAL;
	out[0] = '\0';
	c = calloc(1, sizeof(*c));
	to = fopen("/dev/null", "w");
	from = fopen("/dev/null", "r");
	if (!c || !to || !from) {
		rc = c ? -errno : -ENOMEM;
		goto out;
	}
	screen = newterm("xterm", to, from);
	if (!screen)
		goto out;
	set_term(screen);
	pad = newpad(HEADER_ROWS, cols);
	if (!pad)
		goto out_curses;
	c->model = *m; /* shares m's campaigns: never finished here */
	c->w_header = pad;
	draw_header(c);
	rc = 0;
	for (int y = 0; y < HEADER_ROWS && !rc; y++) {
		char line[TEXT_CAP + 1];
		int n = mvwinnstr(pad, y, 0, line, cols);
		size_t k = n > 0 ? (size_t)n : 0;

		while (k > 0 && line[k - 1] == ' ')
			k--;
		if (len + k + 2 > cap) {
			rc = -ENOSPC;
			out[0] = '\0';
			break;
		}
		memcpy(out + len, line, k);
		len += k;
		out[len++] = '\n';
		out[len] = '\0';
	}
	delwin(pad);
out_curses:
	endwin();
	delscreen(screen);
out:
	if (to)
		fclose(to);
	if (from)
		fclose(from);
	free(c);
	return rc;
}
