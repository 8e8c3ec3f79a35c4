/* tui/view_events.c - the events view: a live tail of what on-call should
 * see (staff actions with who did them, declines, dead jobs, viewers shed,
 * storage failing, stalled loops, the shield's blocks and trips), newest
 * at the bottom.
 *
 * The rows are model.events that match the filter (the same filter text
 * as the campaigns view: a substring of the kind, who or text, without
 * regard to case). Scrolled to the bottom the view follows new events; a
 * user who scrolled up keeps their place until End (or G) follows again.
 */
#include "console_int.h"
#include "console_fmt.h"

#include <strings.h>

static int event_matches(const struct console *c, const struct console_event *e)
{
	return !c->filter[0] || console_fmt_contains(e->kind, c->filter) ||
	       console_fmt_contains(e->who, c->filter) || console_fmt_contains(e->text, c->filter);
}

/* The matching events, oldest first, into c->erows; returns how many. */
static size_t event_rows(struct console *c)
{
	c->n_erows = 0;
	for (size_t i = 0; i < c->model.n_events; i++)
		if (event_matches(c, &c->model.events[i]))
			c->erows[c->n_erows++] = &c->model.events[i];
	return c->n_erows;
}

static size_t event_height(const struct console *c)
{
	int h = c->w_body ? getmaxy(c->w_body) - 1 : 1;

	return h > 0 ? (size_t)h : 1;
}

/* The first row shown: the bottom page while following. */
static size_t event_top(struct console *c)
{
	size_t vis = event_height(c), n = event_rows(c), last_top = n > vis ? n - vis : 0;

	if (c->efollow || c->etop > last_top)
		c->etop = last_top;
	c->efollow = c->etop == last_top;
	return c->etop;
}

static void act_e_up(struct console *c)
{
	size_t top = event_top(c);

	c->etop = top ? top - 1 : 0;
	c->efollow = 0;
	c->dirty |= DIRTY_BODY;
}

static void act_e_down(struct console *c)
{
	c->etop = event_top(c) + 1;
	c->efollow = 0; /* event_top() follows again at the bottom */
	c->dirty |= DIRTY_BODY;
}

static void act_e_page_up(struct console *c)
{
	size_t top = event_top(c), vis = event_height(c);

	c->etop = top > vis ? top - vis : 0;
	c->efollow = 0;
	c->dirty |= DIRTY_BODY;
}

static void act_e_page_down(struct console *c)
{
	c->etop = event_top(c) + event_height(c);
	c->efollow = 0;
	c->dirty |= DIRTY_BODY;
}

static void act_e_first(struct console *c)
{
	c->etop = 0;
	c->efollow = 0;
	c->dirty |= DIRTY_BODY;
}

static void act_e_last(struct console *c)
{
	c->efollow = 1;
	c->dirty |= DIRTY_BODY;
}

static void act_e_filter(struct console *c)
{
	c->prompt = PROMPT_FILTER;
	c->msg_until = 0;
	c->dirty |= DIRTY_MSG;
}

static void act_e_clear(struct console *c)
{
	if (!c->filter[0])
		return;
	c->filter[0] = '\0';
	view_campaigns_filter_changed(c);
}

static const struct key_entry events_keys[] = {
    {{KEYFN(KEY_UP), 'k'}, "Up/k", NULL, "scroll up (stops following)", act_e_up},
    {{KEYFN(KEY_DOWN), 'j'}, "Down/j", NULL, "scroll down", act_e_down},
    {{'g', KEYFN(KEY_HOME)}, "g/Home", NULL, "the oldest event kept", act_e_first},
    {{'G', KEYFN(KEY_END)}, "G/End", NULL, "the newest, and follow new ones", act_e_last},
    {{KEYFN(KEY_PPAGE)}, "PgUp", NULL, "one page up", act_e_page_up},
    {{KEYFN(KEY_NPAGE)}, "PgDn", NULL, "one page down", act_e_page_down},
    {{'/'}, "/", "Filter", "filter by kind, who or text; Enter keeps it, Esc clears", act_e_filter},
    {{KEY_ESC}, "Esc", NULL, "clear the filter", act_e_clear},
    {{'t'}, "t", "Shield", "show the card-testing shield", console_act_toggle_view},
};

static enum role kind_role(const char *kind)
{
	if (!strcmp(kind, "dead") || !strcmp(kind, "storage") || !strcmp(kind, "stall"))
		return ROLE_ERROR;
	if (!strcmp(kind, "decline") || !strcmp(kind, "overload") || !strcmp(kind, "shield"))
		return ROLE_WARN;
	return ROLE_NORMAL;
}

static void events_draw(struct console *c, WINDOW *w)
{
	size_t top = event_top(c), vis = event_height(c);
	int maxx = getmaxx(w), who_w = maxx >= 100 ? 24 : 14, what_x = 23 + who_w;

	werase(w);
	draw_text(w, 0, 1, 8, "Time", 0, c->attr[ROLE_HEADER]);
	draw_text(w, 0, 11, 8, "Kind", 0, c->attr[ROLE_HEADER]);
	draw_text(w, 0, 21, who_w, "Who", 0, c->attr[ROLE_HEADER]);
	draw_text(w, 0, what_x, maxx - what_x, "What", 0, c->attr[ROLE_HEADER]);
	if (!c->n_erows) {
		draw_text(w, 1, 1, maxx - 1,
		          c->model.n_events ? "no event matches the filter" : "no events yet", 0,
		          c->attr[ROLE_DIM]);
		return;
	}
	for (size_t i = 0; i < vis && top + i < c->n_erows; i++) {
		const struct console_event *e = c->erows[top + i];
		time_t at = (time_t)(e->at_ms / 1000);
		int y = (int)i + 1;
		struct tm tm;
		char hms[16] = "--:--:--";

		if (localtime_r(&at, &tm))
			strftime(hms, sizeof hms, "%H:%M:%S", &tm);
		draw_text(w, y, 1, 8, hms, 0, c->attr[ROLE_DIM]);
		draw_text(w, y, 11, 8, e->kind, 0, c->attr[kind_role(e->kind)]);
		draw_text(w, y, 21, who_w, e->who[0] ? e->who : "-", 0, c->attr[ROLE_NORMAL]);
		draw_text(w, y, what_x, maxx - what_x, e->text, 0, c->attr[ROLE_NORMAL]);
	}
}

static int events_key(struct console *c, int key)
{
	return console_keymap_run(c, events_keys, N_OF(events_keys), key);
}

const struct view_ops view_events = {
    "Events", events_draw, events_key, events_keys, N_OF(events_keys),
};

void view_events_summary(struct console *c, char *buf, size_t cap)
{
	size_t n = event_rows(c);

	snprintf(buf, cap, "%zu event%s%s%s%s", n, n == 1 ? "" : "s",
	         c->filter[0] ? " matching" : "", c->efollow ? ", following" : ", scrolled",
	         c->model.n_events == CONSOLE_EVENTS_MAX ? " (the newest kept)" : "");
}
