/* tui/view_campaign.c - one campaign in detail, pushed by Enter on the
 * campaigns view: its numbers (from the model, live), its recent gifts
 * (the campaign's public JSON from the source, read again every
 * DETAIL_REFRESH_MS while the view shows), the last hour's gifts and how
 * long it has been paused (from the model, as the feed sent them), and its
 * actions: pause, resume (the operator role) and close (admin, asks y/n).
 */
#include "console_int.h"
#include "console_fmt.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>

#define DETAIL_REFRESH_MS 2000

static const struct console_campaign *shown(const struct console *c)
{
	for (size_t i = 0; i < c->model.n_campaigns; i++)
		if (!strcmp(c->model.campaigns[i].slug, c->detail_slug))
			return &c->model.campaigns[i];
	return NULL;
}

/* Read the campaign's public JSON again when it is older than the refresh. */
static void read_gifts(struct console *c)
{
	const struct console_source *src = c->src;
	char *json = NULL;

	if (c->detail_at && now_ms() - c->detail_at < DETAIL_REFRESH_MS)
		return;
	c->detail_at = now_ms();
	if (!src->campaign_json || src->campaign_json(src->ctx, c->detail_slug, &json))
		return; /* the numbers still show; the gifts wait for the next try */
	free(c->detail_json);
	c->detail_json = json;
}

void view_campaign_open(struct console *c, const struct console_campaign *cc)
{
	snprintf(c->detail_slug, sizeof c->detail_slug, "%s", cc->slug);
	free(c->detail_json);
	c->detail_json = NULL;
	c->detail_at = 0;
	console_view_push(c, &view_campaign);
}

static void act_back(struct console *c)
{
	console_view_pop(c);
}

static void act_pause(struct console *c)
{
	const struct console_campaign *cc = shown(c);

	if (cc)
		view_campaigns_ask_paused(c, cc, 1);
}

static void act_resume(struct console *c)
{
	const struct console_campaign *cc = shown(c);

	if (cc)
		view_campaigns_ask_paused(c, cc, 0);
}

static void confirm_close(struct console *c)
{
	const struct console_source *src = c->src;
	int rc = src->close_campaign ? src->close_campaign(src->ctx, c->confirm_slug) : -ENOTSUP;
	char err[128];

	if (rc == 0)
		message(c, ROLE_OK, "closed %s", c->confirm_slug);
	else
		message(c, ROLE_ERROR, "close %s failed: %s", c->confirm_slug,
		        action_errtext(c, rc, err, sizeof err));
	console_fetch(c);
}

static void act_close(struct console *c)
{
	const struct console_campaign *cc = shown(c);

	if (!cc || !console_may(c, "admin", "close campaigns"))
		return;
	if (!strcmp(cc->status, "closed")) {
		message(c, ROLE_WARN, "%s is already closed", cc->slug);
		return;
	}
	snprintf(c->confirm_slug, sizeof c->confirm_slug, "%s", cc->slug);
	console_ask(c, confirm_close, "Close %s for good (no more gifts)? y/n", cc->slug);
}

static const struct key_entry campaign_keys[] = {
    {{KEY_ESC, KEYFN(KEY_LEFT)}, "Esc", "Back", "back to the campaigns", act_back},
    {{'p'}, "p", "Pause", "pause this campaign (asks y/n)", act_pause},
    {{'r'}, "r", "Resume", "resume this campaign (asks y/n)", act_resume},
    {{'c'}, "c", "Close", "close this campaign for good (asks y/n)", act_close},
};

/* One "label value" pair at (y, *x). */
static void pair(struct console *c, WINDOW *w, int y, int *x, const char *label, const char *value,
                 enum role role)
{
	*x += draw_text(w, y, *x, console_fmt_width(label), label, 0, c->attr[ROLE_DIM]);
	*x += 1;
	*x += draw_text(w, y, *x, console_fmt_width(value), value, 0, c->attr[role]);
	*x += 3;
}

static void draw_gifts(struct console *c, WINDOW *w, int y)
{
	json_t *root = c->detail_json ? json_loads(c->detail_json, 0, NULL) : NULL;
	json_t *recent = json_object_get(root, "recent");
	const char *cur = json_string_value(json_object_get(root, "currency"));
	int maxx = getmaxx(w), maxy = getmaxy(w);

	draw_text(w, y++, 1, maxx - 1, "Recent gifts", 0, c->attr[ROLE_HEADER]);
	if (!json_is_array(recent) || !json_array_size(recent))
		draw_text(w, y, 3, maxx - 3, root ? "none yet" : "reading...", 0,
		          c->attr[ROLE_DIM]);
	for (size_t i = 0; i < json_array_size(recent) && y < maxy; i++, y++) {
		json_t *g = json_array_get(recent, i);
		const char *at = json_string_value(json_object_get(g, "at")),
		           *name = json_string_value(json_object_get(g, "name")),
		           *msg = json_string_value(json_object_get(g, "message"));
		json_t *amount = json_object_get(g, "amount_cents");
		char when[16] = "", money[64] = "hidden";

		if (at && strlen(at) >= 19)
			snprintf(when, sizeof when, "%.8s", at + 11); /* HH:MM:SS, UTC */
		if (json_is_integer(amount) && cur)
			console_fmt_money(money, sizeof money, (int64_t)json_integer_value(amount),
			                  cur);
		draw_text(w, y, 3, 8, when, 0, c->attr[ROLE_DIM]);
		draw_text(w, y, 13, 24, name ? name : "-", 0, c->attr[ROLE_NORMAL]);
		draw_text(w, y, 38, 14, money, 1, c->attr[ROLE_NORMAL]);
		if (msg && *msg && maxx > 56)
			draw_text(w, y, 54, maxx - 54, msg, 0, c->attr[ROLE_DIM]);
	}
	json_decref(root);
}

/* The last hour's gifts, their amount and their rate (the server's
 * minute ring, sent with the campaign); how long it has been paused. */
static void draw_hour(struct console *c, WINDOW *w, int y, const struct console_campaign *cc)
{
	const struct console_model *m = &c->model;
	int64_t paused = console_fmt_paused_min(cc, m->server_now_ms);
	char a[64], b[64], line[TEXT_CAP];
	int x = 1;

	console_fmt_int(a, sizeof a, cc->hour_gifts);
	console_fmt_money(b, sizeof b, cc->hour_cents, cc->currency);
	snprintf(line, sizeof line, "%s gift%s, %s (%.1f/min)", a, cc->hour_gifts == 1 ? "" : "s",
	         b, (double)cc->hour_gifts / 60.0);
	pair(c, w, y, &x, "Last hour", line, ROLE_NORMAL);
	if (paused < 0)
		return;
	console_fmt_minutes(a, sizeof a, paused);
	pair(c, w, y, &x, "Paused for", a,
	     console_fmt_paused_long(cc, m->server_now_ms, m->alert_paused_min) ? ROLE_ERROR
	                                                                        : ROLE_WARN);
}

static void campaign_draw(struct console *c, WINDOW *w)
{
	const struct console_campaign *cc = shown(c);
	char a[64], b[64], line[TEXT_CAP];
	int x = 1, maxx = getmaxx(w);

	werase(w);
	if (!cc) {
		snprintf(line, sizeof line, "campaign %s is not in the list", c->detail_slug);
		draw_text(w, 0, 1, maxx - 1, line, 0, c->attr[ROLE_WARN]);
		return;
	}
	read_gifts(c);
	snprintf(line, sizeof line, "%s (%s)", cc->name, cc->slug);
	x += draw_text(w, 0, x, console_fmt_width(line), line, 0, c->attr[ROLE_HEADER]) + 3;
	draw_text(w, 0, x, 8, cc->status, 0,
	          c->attr[!strcmp(cc->status, "active")   ? ROLE_OK
	                  : !strcmp(cc->status, "paused") ? ROLE_WARN
	                                                  : ROLE_DIM]);
	x = 1;
	console_fmt_money(a, sizeof a, cc->total_cents, cc->currency);
	pair(c, w, 2, &x, cc->matched_cents || cc->bonus_cents ? "Total" : "Raised", a,
	     ROLE_NORMAL);
	if (cc->goal_cents > 0) {
		console_fmt_money(b, sizeof b, cc->goal_cents, cc->currency);
		pair(c, w, 2, &x, "of goal", b, ROLE_NORMAL);
		console_fmt_percent(a, sizeof a, cc->total_cents, cc->goal_cents);
		pair(c, w, 2, &x, "", a, ROLE_NORMAL);
		if (maxx - x > 12)
			draw_bar(c, w, 2, x, maxx - x - 2 < 30 ? maxx - x - 2 : 30, cc, 0);
	}
	x = 1;
	console_fmt_money(a, sizeof a, cc->pending_cents, cc->currency);
	pair(c, w, 3, &x, "Pending", a, ROLE_NORMAL);
	console_fmt_int(a, sizeof a, cc->donor_count);
	pair(c, w, 3, &x, "Donors", a, ROLE_NORMAL);
	console_fmt_int(a, sizeof a, cc->donation_count);
	pair(c, w, 3, &x, "Gifts", a, ROLE_NORMAL);
	if (cc->per_min >= 0) {
		snprintf(a, sizeof a, "%.1f/min", cc->per_min);
		pair(c, w, 3, &x, "Rate", a, ROLE_NORMAL);
	}
	draw_hour(c, w, 4, cc);
	if (cc->matched_cents || cc->bonus_cents) {
		/* What the total is made of: donors', sponsors' match, bonuses. */
		x = 1;
		console_fmt_money(a, sizeof a, cc->raised_cents, cc->currency);
		pair(c, w, 5, &x, "Raised", a, ROLE_NORMAL);
		console_fmt_money(a, sizeof a, cc->matched_cents, cc->currency);
		pair(c, w, 5, &x, "Matched", a, ROLE_NORMAL);
		console_fmt_money(a, sizeof a, cc->bonus_cents, cc->currency);
		pair(c, w, 5, &x, "Bonus", a, ROLE_NORMAL);
	}
	draw_gifts(c, w, 6);
}

static int campaign_key(struct console *c, int key)
{
	return console_keymap_run(c, campaign_keys, N_OF(campaign_keys), key);
}

const struct view_ops view_campaign = {
    "Campaign", campaign_draw, campaign_key, campaign_keys, N_OF(campaign_keys),
};
