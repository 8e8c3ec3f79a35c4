/* tui/view_campaign.c - one campaign in detail, pushed by Enter on the
 * campaigns view: its numbers (from the model, live), its recent gifts
 * (the campaign's public JSON from the source, read again every
 * DETAIL_REFRESH_MS while the view shows), the last hour's gifts and how
 * long it has been paused (from the model, as the feed sent them), and its
 * actions: pause, resume (the operator role), close (admin, asks y/n), and
 * record an offline gift (operator: amount, method, name and note asked one
 * after the other on the message line, then y/n).
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

/* ---- an offline gift: amount -> method -> name -> note -> y/n ---- */

static void confirm_offline(struct console *c)
{
	const struct console_source *src = c->src;
	char id[32] = "", err[128], money[64];
	int rc = src->offline_gift
	             ? src->offline_gift(src->ctx, c->offline.slug, c->offline.amount_cents,
	                                 c->offline.method, c->offline.name, c->offline.note, id,
	                                 sizeof id)
	             : -ENOTSUP;

	console_fmt_money(money, sizeof money, c->offline.amount_cents, c->offline.currency);
	if (rc == 0)
		message(c, ROLE_OK, "recorded %s: %s %s from %s, counted now", id, money,
		        c->offline.method, c->offline.name);
	else
		message(c, ROLE_ERROR, "offline gift to %s failed: %s", c->offline.slug,
		        action_errtext(c, rc, err, sizeof err));
	c->detail_at = 0; /* show it among the recent gifts */
	console_fetch(c);
}

static void got_note(struct console *c)
{
	char money[64];

	snprintf(c->offline.note, sizeof c->offline.note, "%s", c->input);
	console_fmt_money(money, sizeof money, c->offline.amount_cents, c->offline.currency);
	console_ask(c, confirm_offline, "Record %s by %s from %s to %s%s%s? y/n", money,
	            c->offline.method, c->offline.name, c->offline.slug,
	            c->offline.note[0] ? ", note: " : "", c->offline.note);
}

static void got_name(struct console *c)
{
	const char *p = c->input;

	while (*p == ' ')
		p++;
	if (!*p) {
		message(c, ROLE_ERROR, "offline gift cancelled: the donor's name is needed");
		return;
	}
	snprintf(c->offline.name, sizeof c->offline.name, "%s", p);
	console_input(c, got_note, "Note for staff (Enter for none): ");
}

static void got_method(struct console *c)
{
	static const char *const methods[] = {"cheque", "cash", "daf", "other"};
	const char *m = c->input[0] ? c->input : "cheque";
	size_t i;

	for (i = 0; i < N_OF(methods) && strcmp(methods[i], m); i++)
		;
	if (i == N_OF(methods)) {
		message(c, ROLE_ERROR,
		        "offline gift cancelled: the method is cheque, cash, daf or other");
		return;
	}
	snprintf(c->offline.method, sizeof c->offline.method, "%s", methods[i]);
	console_input(c, got_name, "Donor's name: ");
}

static void got_amount(struct console *c)
{
	if (console_fmt_parse_money(c->input, c->offline.currency, &c->offline.amount_cents)) {
		message(c, ROLE_ERROR, "offline gift cancelled: '%s' is not an amount of %s",
		        c->input, c->offline.currency);
		return;
	}
	console_input(c, got_method, "Method: cheque, cash, daf or other [cheque]: ");
}

static void act_offline(struct console *c)
{
	const struct console_campaign *cc = shown(c);

	if (!cc || !console_may(c, "operator", "record offline gifts"))
		return;
	if (!c->src->offline_gift) {
		message(c, ROLE_WARN, "this source cannot record offline gifts");
		return;
	}
	memset(&c->offline, 0, sizeof c->offline);
	snprintf(c->offline.slug, sizeof c->offline.slug, "%s", cc->slug);
	snprintf(c->offline.currency, sizeof c->offline.currency, "%s", cc->currency);
	console_input(c, got_amount, "Offline gift to %s: amount in %s: ", cc->slug, cc->currency);
}

static const struct key_entry campaign_keys[] = {
    {{KEY_ESC, KEYFN(KEY_LEFT)}, "Esc", "Back", "back to the campaigns", act_back},
    {{'p'}, "p", "Pause", "pause this campaign (asks y/n)", act_pause},
    {{'r'}, "r", "Resume", "resume this campaign (asks y/n)", act_resume},
    {{'c'}, "c", "Close", "close this campaign for good (asks y/n)", act_close},
    {{'o'},
     "o",
     "Offline",
     "record an offline gift (cheque, cash, DAF): asks amount, method, name, note, then y/n",
     act_offline},
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
