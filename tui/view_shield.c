/* tui/view_shield.c - the shield view: the card-testing shield as the
 * feed sent it (model.shield): its state (off, down, up on some campaigns,
 * raised by staff), declines and attempts per minute over every campaign,
 * what it has done since the server started (trips, blocks, refusals),
 * the campaigns whose shield is up or that declined in the last minute,
 * and the worst offenders (addresses, emails, card fingerprints: blocked
 * or watched, until when, why). S raises the shield on every campaign, or
 * lowers it (asks y/n: every campaign's comes down and every block is
 * forgotten); S does the same from every view (console.c's global keys).
 *
 * Nothing here is selected: the view is a report, read again at every
 * fetch. Countdowns are on the server's clock (model.server_now_ms), so
 * two consoles agree.
 */
#include "console_int.h"

#include "console_fmt.h"

#include <errno.h>

/* ---- the action ------------------------------------------------------------ */

static void confirm_lower(struct console *c)
{
	const struct console_source *src = c->src;
	int rc = src->shield_set ? src->shield_set(src->ctx, 0) : -ENOTSUP;
	char err[128];

	if (rc == 0)
		message(c, ROLE_OK,
		        "lowered the shield: every campaign's is down, blocks forgotten");
	else
		message(c, ROLE_ERROR, "lower the shield failed: %s",
		        action_errtext(c, rc, err, sizeof err));
	console_fetch(c);
}

void view_shield_toggle(struct console *c)
{
	const struct console_shield *sh = &c->model.shield;
	const struct console_source *src = c->src;
	char err[128];
	int rc;

	if (!console_may(c, "operator", "raise or lower the shield"))
		return;
	if (!src->shield_set || !sh->known) {
		message(c, ROLE_WARN, "this source has no card-testing shield");
		return;
	}
	if (!strcmp(sh->state, "off")) {
		message(c, ROLE_WARN, "the shield is off on this server (--shield off)");
		return;
	}
	if (!strcmp(sh->state, "raised")) {
		console_ask(
		    c, confirm_lower,
		    "Lower the shield raised by staff? Every campaign's comes down and every "
		    "block is forgotten. y/n");
		return;
	}
	if (!strcmp(sh->state, "up")) {
		console_ask(c, confirm_lower,
		            "Lower the shield up on %lld campaign%s? Every block is forgotten. y/n",
		            (long long)sh->campaigns_up, sh->campaigns_up == 1 ? "" : "s");
		return;
	}
	rc = src->shield_set(src->ctx, 1);
	if (rc == 0)
		message(c, ROLE_OK, "raised the shield on every campaign until lowered (S)");
	else
		message(c, ROLE_ERROR, "raise the shield failed: %s",
		        action_errtext(c, rc, err, sizeof err));
	console_fetch(c);
}

static const struct key_entry shield_keys[] = {
    {{'S'},
     "S",
     "Raise/lower",
     "raise the shield on every campaign; when up or raised, lower it (asks y/n)",
     view_shield_toggle},
    {{'t'}, "t", "Campaigns", "back to the campaigns view", console_act_toggle_view},
};

/* ---- drawing ----------------------------------------------------------------- */

enum ccol { CC_SLUG, CC_SHIELD, CC_SINCE, CC_UNTIL, CC_DECLINES, CC_ATTEMPTS, CC_COUNT };

static const struct tcol ccols[CC_COUNT] = {
    [CC_SLUG] = {"Campaign", 0, 0},         [CC_SHIELD] = {"Shield", 0, 0},
    [CC_SINCE] = {"Since", 0, 3},           [CC_UNTIL] = {"Down in", 0, 2},
    [CC_DECLINES] = {"Declines/min", 1, 0}, [CC_ATTEMPTS] = {"Attempts/min", 1, 1},
};

enum ocol { OC_KIND, OC_KEY, OC_STATE, OC_DECLINES, OC_ATTEMPTS, OC_UNTIL, OC_WHY, OC_COUNT };

static const struct tcol ocols[OC_COUNT] = {
    [OC_KIND] = {"Kind", 0, 0},         [OC_KEY] = {"Offender", 0, 0},
    [OC_STATE] = {"State", 0, 0},       [OC_DECLINES] = {"Declines", 1, 0},
    [OC_ATTEMPTS] = {"Attempts", 1, 2}, [OC_UNTIL] = {"Blocked for", 1, 1},
    [OC_WHY] = {"Why", 0, 0},
};

#define OFFENDER_COLS 40 /* an offender's key (an email) keeps at most this many columns */
#define WHY_MIN 12
#define SUMMARY_ROWS 4
_Static_assert((int)CC_COUNT <= TCOLS_MAX, "the campaign table fits TCOLS_MAX");
_Static_assert((int)OC_COUNT <= TCOLS_MAX, "the offender table fits TCOLS_MAX");

/* A time of day (local) of ms since the epoch; "-" for 0. */
static void clock_of(char *buf, size_t cap, int64_t ms)
{
	time_t at = (time_t)(ms / 1000);
	struct tm tm;

	if (!ms || !localtime_r(&at, &tm) || !strftime(buf, cap, "%H:%M:%S", &tm))
		snprintf(buf, cap, "-");
}

/* How long from now (the server's clock) until ms, "H:MM:SS". */
static void left_of(char *buf, size_t cap, int64_t ms, int64_t now)
{
	console_fmt_duration(buf, cap, (ms - now + 999) / 1000);
}

static void campaign_cells(const struct console_shield_campaign *k, int64_t now,
                           char cell[][TEXT_CAP], enum role *role)
{
	for (int i = 0; i < CC_COUNT; i++)
		role[i] = ROLE_NORMAL;
	snprintf(cell[CC_SLUG], TEXT_CAP, "%s", k->slug);
	snprintf(cell[CC_SHIELD], TEXT_CAP, "%s", k->up ? "up" : "-");
	role[CC_SHIELD] = k->up ? ROLE_WARN : ROLE_DIM;
	clock_of(cell[CC_SINCE], TEXT_CAP, k->up ? k->since_ms : 0);
	if (!k->up)
		snprintf(cell[CC_UNTIL], TEXT_CAP, "-");
	else if (!k->until_ms)
		snprintf(cell[CC_UNTIL], TEXT_CAP, "when lowered");
	else
		left_of(cell[CC_UNTIL], TEXT_CAP, k->until_ms, now);
	console_fmt_int(cell[CC_DECLINES], TEXT_CAP, k->declines_per_min);
	console_fmt_int(cell[CC_ATTEMPTS], TEXT_CAP, k->attempts_per_min);
	if (k->declines_per_min > 0)
		role[CC_DECLINES] = ROLE_WARN;
}

static void offender_cells(const struct console_offender *x, int64_t now, char cell[][TEXT_CAP],
                           enum role *role)
{
	for (int i = 0; i < OC_COUNT; i++)
		role[i] = ROLE_NORMAL;
	snprintf(cell[OC_KIND], TEXT_CAP, "%s", x->kind);
	console_fmt_trunc(cell[OC_KEY], TEXT_CAP, x->key, OFFENDER_COLS, 1);
	snprintf(cell[OC_STATE], TEXT_CAP, "%s", x->blocked ? "blocked" : "watched");
	role[OC_STATE] = x->blocked ? ROLE_ERROR : ROLE_WARN;
	console_fmt_int(cell[OC_DECLINES], TEXT_CAP, x->declines);
	console_fmt_int(cell[OC_ATTEMPTS], TEXT_CAP, x->attempts);
	if (x->blocked && x->until_ms)
		left_of(cell[OC_UNTIL], TEXT_CAP, x->until_ms, now);
	else
		snprintf(cell[OC_UNTIL], TEXT_CAP, "-");
	snprintf(cell[OC_WHY], TEXT_CAP, "%s", x->blocked && x->why[0] ? x->why : "-");
	role[OC_WHY] = x->blocked ? ROLE_NORMAL : ROLE_DIM;
}

/* The state in words and its role. */
static enum role state_words(const struct console_shield *sh, char *buf, size_t cap)
{
	if (!strcmp(sh->state, "raised")) {
		snprintf(buf, cap, "RAISED by staff on every campaign");
		return ROLE_ERROR;
	}
	if (!strcmp(sh->state, "up")) {
		snprintf(buf, cap, "UP on %lld campaign%s", (long long)sh->campaigns_up,
		         sh->campaigns_up == 1 ? "" : "s");
		return ROLE_WARN;
	}
	if (!strcmp(sh->state, "off")) {
		snprintf(buf, cap, "off (--shield off): it decides nothing");
		return ROLE_DIM;
	}
	snprintf(buf, cap, "%s", sh->state[0] ? sh->state : "?");
	return ROLE_OK;
}

/* The four summary rows: state and rates; blocks; refusals; its rules. */
static void draw_summary(struct console *c, WINDOW *w, const struct console_shield *sh)
{
	char buf[TEXT_CAP], num[32], a[32], e[32], k[32];
	int x = 1;
	enum role r = state_words(sh, buf, sizeof buf);

	draw_put_at(c, w, 0, &x, ROLE_HEADER, "Shield ");
	draw_put_at(c, w, 0, &x, r, buf);
	draw_put_at(c, w, 0, &x, ROLE_DIM, "   declines/min ");
	console_fmt_int(num, sizeof num, sh->declines_per_min);
	draw_put_at(c, w, 0, &x, sh->declines_per_min ? ROLE_WARN : ROLE_NORMAL, num);
	draw_put_at(c, w, 0, &x, ROLE_DIM, "   attempts/min ");
	console_fmt_int(num, sizeof num, sh->attempts_per_min);
	draw_put_at(c, w, 0, &x, ROLE_NORMAL, num);
	draw_put_at(c, w, 0, &x, ROLE_DIM, "   trips ");
	console_fmt_int(num, sizeof num, sh->trips);
	draw_put_at(c, w, 0, &x, ROLE_NORMAL, num);

	x = 1;
	console_fmt_int(a, sizeof a, sh->blocks_address);
	console_fmt_int(e, sizeof e, sh->blocks_email);
	console_fmt_int(k, sizeof k, sh->blocks_card);
	snprintf(buf, sizeof buf, "blocked since start: %s address%s, %s email%s, %s card%s", a,
	         sh->blocks_address == 1 ? "" : "es", e, sh->blocks_email == 1 ? "" : "s", k,
	         sh->blocks_card == 1 ? "" : "s");
	draw_put_at(c, w, 1, &x, ROLE_NORMAL, buf);

	x = 1;
	snprintf(buf, sizeof buf,
	         "refused: %lld blocked, %lld below the least gift, %lld CAPTCHA, %lld captures",
	         (long long)sh->refused_blocked, (long long)sh->refused_below_min,
	         (long long)sh->refused_captcha, (long long)sh->refused_capture);
	draw_put_at(c, w, 2, &x, ROLE_NORMAL, buf);

	x = 1;
	snprintf(
	    buf, sizeof buf,
	    "rules: a %d min window; blocks last %d min; up for %d min, least gift %lld.%02lld",
	    sh->window_s / 60, sh->block_s / 60, sh->up_s / 60, (long long)(sh->up_min_cents / 100),
	    (long long)(sh->up_min_cents % 100));
	draw_put_at(c, w, 3, &x, ROLE_DIM, buf);
}

static void shield_draw(struct console *c, WINDOW *w)
{
	const struct console_shield *sh = &c->model.shield;
	const int64_t now = c->model.server_now_ms;
	char ccell[CC_COUNT][TEXT_CAP], ocell[OC_COUNT][TEXT_CAP], title[TEXT_CAP];
	const char *text[TCOLS_MAX];
	enum role crole[CC_COUNT], orole[OC_COUNT];
	int cw[CC_COUNT], cshown[CC_COUNT], cdrop[CC_COUNT];
	int ow[OC_COUNT], oshown[OC_COUNT], odrop[OC_COUNT];
	int maxx = getmaxx(w), h = getmaxy(w), y, avail;
	size_t nc, no, want_c, want_o;

	werase(w);
	if (!sh->known) {
		draw_text(w, 1, 2, maxx - 2, "no card-testing shield in this source (or not yet)",
		          0, c->attr[ROLE_DIM]);
		return;
	}
	draw_summary(c, w, sh);

	/* rows left for the two lists: titles, and a blank line before each */
	avail = h - SUMMARY_ROWS - 4;
	want_c = sh->n_campaigns ? sh->n_campaigns : 1;
	want_o = sh->n_offenders ? sh->n_offenders : 1;
	if (avail < 2)
		avail = 2;
	if (want_c + want_o <= (size_t)avail) {
		nc = want_c;
		no = want_o;
	} else {
		/* the offenders keep at least half; the campaigns what is left */
		no = want_o < (size_t)avail / 2 ? want_o : (size_t)avail / 2;
		nc = (size_t)avail - no < want_c ? (size_t)avail - no : want_c;
		no = (size_t)avail - nc < want_o ? (size_t)avail - nc : want_o;
	}

	draw_table_init(CC_COUNT, ccols, cw, cshown, cdrop);
	for (size_t i = 0; i < sh->n_campaigns; i++) {
		campaign_cells(&sh->campaigns[i], now, ccell, crole);
		draw_widen(CC_COUNT, ccell, cw);
	}
	draw_table_fit(CC_COUNT, cdrop, -1, 0, maxx, cw, cshown);
	draw_table_init(OC_COUNT, ocols, ow, oshown, odrop);
	for (size_t i = 0; i < sh->n_offenders; i++) {
		offender_cells(&sh->offenders[i], now, ocell, orole);
		draw_widen(OC_WHY, ocell, ow); /* the reason takes what is left */
	}
	draw_table_fit(OC_COUNT, odrop, OC_WHY, WHY_MIN, maxx, ow, oshown);

	y = SUMMARY_ROWS + 1;
	draw_table_titles(c, w, y++, ccols, CC_COUNT, cw, cshown);
	if (!sh->n_campaigns)
		draw_text(w, y, 2, maxx - 2, "no campaign declined in the last minute", 0,
		          c->attr[ROLE_DIM]);
	for (size_t i = 0; i < sh->n_campaigns && i < nc; i++) {
		campaign_cells(&sh->campaigns[i], now, ccell, crole);
		for (int k = 0; k < CC_COUNT; k++)
			text[k] = ccell[k];
		draw_table_row(c, w, y + (int)i, ccols, CC_COUNT, cw, cshown, text, crole, 0);
	}
	y += (int)nc + 1;
	if (y >= h)
		return;
	if (sh->offenders_total > (int64_t)sh->n_offenders)
		snprintf(title, sizeof title, "the worst %zu of %lld", sh->n_offenders,
		         (long long)sh->offenders_total);
	else
		title[0] = '\0';
	draw_table_titles(c, w, y, ocols, OC_COUNT, ow, oshown);
	if (title[0]) {
		int tx = maxx - console_fmt_width(title) - 1;

		if (tx > 0)
			draw_text(w, y, tx, maxx - tx, title, 0, c->attr[ROLE_DIM]);
	}
	y++;
	if (!sh->n_offenders && y < h)
		draw_text(w, y, 2, maxx - 2, "no offender: nobody declined in the window", 0,
		          c->attr[ROLE_DIM]);
	for (size_t i = 0; i < sh->n_offenders && i < no && y + (int)i < h; i++) {
		offender_cells(&sh->offenders[i], now, ocell, orole);
		for (int k = 0; k < OC_COUNT; k++)
			text[k] = ocell[k];
		draw_table_row(c, w, y + (int)i, ocols, OC_COUNT, ow, oshown, text, orole, 0);
	}
}

static int shield_key(struct console *c, int key)
{
	return console_keymap_run(c, shield_keys, N_OF(shield_keys), key);
}

const struct view_ops view_shield = {
    "Shield", shield_draw, shield_key, shield_keys, N_OF(shield_keys),
};

/* The shield view's idle message line. */
void view_shield_summary(const struct console *c, char *buf, size_t cap)
{
	const struct console_shield *sh = &c->model.shield;

	if (!sh->known)
		snprintf(buf, cap, "no shield in this source");
	else
		snprintf(buf, cap, "%zu of %lld campaign%s declining or up, %zu of %lld offender%s",
		         sh->n_campaigns < (size_t)sh->campaigns_total
		             ? sh->n_campaigns
		             : (size_t)sh->campaigns_total,
		         (long long)sh->campaigns_total, sh->campaigns_total == 1 ? "" : "s",
		         sh->n_offenders, (long long)sh->offenders_total,
		         sh->offenders_total == 1 ? "" : "s");
}

/* The header's alert: "shield raised", "shield up: spring +2 more". */
int view_shield_alert(const struct console_model *m, char *buf, size_t cap)
{
	const struct console_shield *sh = &m->shield;

	buf[0] = '\0';
	if (!sh->known)
		return 0;
	if (!strcmp(sh->state, "raised"))
		return snprintf(buf, cap, "shield raised");
	if (strcmp(sh->state, "up"))
		return 0;
	if (sh->n_campaigns && sh->campaigns[0].up && sh->campaigns_up > 1)
		return snprintf(buf, cap, "shield up: %s +%lld more", sh->campaigns[0].slug,
		                (long long)(sh->campaigns_up - 1));
	if (sh->n_campaigns && sh->campaigns[0].up)
		return snprintf(buf, cap, "shield up: %s", sh->campaigns[0].slug);
	return snprintf(buf, cap, "shield up on %lld campaigns", (long long)sh->campaigns_up);
}
