/* tui/view_help.c - the help screen, pushed over the main view by ?/F1 or
 * Tab. Its rows come from the key tables (each view's and the global one)
 * and a few notes; the same tables write the key bar (console_draw.c).
 */
#include "console_int.h"

#include <stdint.h>

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
    "Shield: declined captures counted per address, email, card and campaign.",
    "An offender past a rule is blocked (429) until its time runs out; a",
    "campaign with many declines in a minute raises its shield (a higher least",
    "gift, a CAPTCHA when set up) and lowers it by itself. S raises it on every",
    "campaign until lowered; the header says when it is up or raised.",
};

#define HELP_ROWS_MAX 128

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
	    {"Events view", view_events.keys, view_events.n_keys},
	    {"Shield view", view_shield.keys, view_shield.n_keys},
	    {"Campaign view (Enter on a campaign)", view_campaign.keys, view_campaign.n_keys},
	    {"Job view (Enter on a dead job)", view_job.keys, view_job.n_keys},
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
