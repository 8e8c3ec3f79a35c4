/* tui/view_campaigns.c - the campaigns view: its rows (filter, sort,
 * selection), its columns, the pause and resume actions, its key table.
 *
 * Rows: after every fetch and whenever sort or filter change, rows[] is
 * rebuilt as pointers into model.campaigns, filtered then sorted. The
 * selection follows its campaign by slug, so updates and re-sorting never
 * slide another campaign under the cursor between `p` and `y`.
 */
#include "console_int.h"

#include "console_fmt.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

const struct console_campaign *view_campaigns_selected(const struct console *c)
{
	return row_at(c, c->sel);
}

static void act_open(struct console *c)
{
	const struct console_campaign *cc = row_at(c, c->sel);

	if (cc)
		view_campaign_open(c, cc);
	else
		message(c, ROLE_WARN, "no campaign selected");
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

	if (!cc) {
		message(c, ROLE_WARN, "no campaign selected");
		return;
	}
	view_campaigns_ask_paused(c, cc, pause);
}

void view_campaigns_ask_paused(struct console *c, const struct console_campaign *cc, int pause)
{
	const char *want = pause ? "paused" : "active";

	if (!console_may(c, "operator", pause ? "pause campaigns" : "resume campaigns"))
		return;
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
    {{'\r', '\n', KEYFN(KEY_ENTER)},
     "Enter",
     "Detail",
     "the selected campaign: numbers, recent gifts, close",
     act_open},
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

/* Paused longer than the alert's minutes: as the header's alert. */
static enum role status_role(const struct console *c, const struct console_campaign *cc)
{
	if (strcmp(cc->status, "active") == 0)
		return ROLE_OK;
	if (console_fmt_paused_long(cc, c->model.server_now_ms, c->model.alert_paused_min))
		return ROLE_ERROR;
	if (strcmp(cc->status, "paused") == 0)
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
				enum role role = k == COL_STATUS ? status_role(c, cc) : ROLE_NORMAL;
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
