/* tui/console_draw.c - what the views share to draw (text in a cell, tables
 * fitted to the width, the progress bar) and the frame around them: the
 * header with its alerts, the message line, the key bar.
 *
 * Every string that came from the source is drawn through console_fmt_trunc(),
 * which cuts by display width and replaces control characters, so a campaign
 * name cannot smuggle escape sequences to the terminal. Drawing calls return
 * ERR only when clipped at a window edge; their results are not checked.
 */
#include "console_int.h"

#include "console_fmt.h"

/* ---- drawing primitives ---------------------------------------------------- */

/* Draw text in `width` columns at (y, x), truncated with "…" or padded,
 * clipped at the window's right edge. Returns the columns used. */
int draw_text(WINDOW *w, int y, int x, int width, const char *text, int right, attr_t attr)
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
void draw_put_at(struct console *c, WINDOW *w, int y, int *x, enum role role, const char *text)
{
	int room = getmaxx(w) - *x;
	int cols = console_fmt_width(text);

	if (room <= 0)
		return;
	*x += draw_text(w, y, *x, cols < room ? cols : room, text, 0, c->attr[role]);
}

void draw_put(struct console *c, WINDOW *w, int *x, enum role role, const char *text)
{
	draw_put_at(c, w, 0, x, role, text);
}

/* Fit a table of n columns into maxx columns: a margin of one on the left,
 * COL_GAP between columns. width[] holds each column's natural width and
 * shown[] which are in. With a flexible column (flex >= 0) it takes what
 * is left, one column short of the edge, and needs at least flex_min;
 * without one the table must fit. Until then the shown column with the
 * highest drop[] goes (0: never). Every table of the console fits this way. */
void draw_table_fit(int n, const int *drop, int flex, int flex_min, int maxx, int *width,
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

/* Widen width[] (n columns) to the cells' display widths. */
void draw_widen(int n, char cell[][TEXT_CAP], int *width)
{
	for (int k = 0; k < n; k++) {
		int w = console_fmt_width(cell[k]);
		if (w > width[k])
			width[k] = w;
	}
}

void draw_table_init(int n, const struct tcol *cols, int *width, int *shown, int *drop)
{
	for (int k = 0; k < n; k++) {
		width[k] = console_fmt_width(cols[k].title);
		shown[k] = 1;
		drop[k] = cols[k].drop;
	}
}

/* One row of a fitted table at y: text[k] in role[k]; the selected row
 * (sel non-zero) all in sel, highlighted edge to edge. */
void draw_table_row(struct console *c, WINDOW *w, int y, const struct tcol *cols, int n,
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

void draw_table_titles(struct console *c, WINDOW *w, int y, const struct tcol *cols, int n,
                       const int *width, const int *shown)
{
	const char *text[TCOLS_MAX];
	enum role role[TCOLS_MAX];

	for (int k = 0; k < n; k++) {
		text[k] = cols[k].title;
		role[k] = ROLE_HEADER;
	}
	draw_table_row(c, w, y, cols, n, width, shown, text, role, 0);
}

void draw_bar(struct console *c, WINDOW *w, int y, int x, int width,
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

/* ---- header, message line, key bar ------------------------------------------------------ */

/* Dead jobs and paused queues, seen from every view. */
static void draw_queue_alerts(struct console *c, WINDOW *w, int *x)
{
	const struct console_model *m = &c->model;
	const char *paused = NULL;
	char buf[TEXT_CAP], num[32];
	int64_t dead = view_queues_dead_total(m);
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
		draw_put(c, w, x, ROLE_NORMAL, "  ");
		draw_put(c, w, x, ROLE_ERROR, buf);
	}
	if (n_paused == 1)
		snprintf(buf, sizeof buf, "%s paused", paused);
	else if (n_paused > 1)
		snprintf(buf, sizeof buf, "%zu queues paused", n_paused);
	if (n_paused) {
		draw_put(c, w, x, ROLE_NORMAL, "  ");
		draw_put(c, w, x, ROLE_WARN, buf);
	}
	/* Captures waiting to be tried again: the processor is failing. */
	for (size_t i = 0; i < m->n_queues; i++) {
		if (strcmp(m->queues[i].name, "payments") || m->queues[i].scheduled <= 0)
			continue;
		console_fmt_int(num, sizeof num, m->queues[i].scheduled);
		snprintf(buf, sizeof buf, "processor failing: %s captures retrying", num);
		draw_put(c, w, x, ROLE_NORMAL, "  ");
		draw_put(c, w, x, ROLE_ERROR, buf);
	}
}

/* Campaigns paused longer than the server's alert_paused_min (on the
 * server's clock, so that every console agrees): the longest, and how
 * many more. */
static void draw_campaign_alerts(struct console *c, WINDOW *w, int *x)
{
	const struct console_model *m = &c->model;
	char buf[TEXT_CAP];

	if (console_fmt_paused_alert(buf, sizeof buf, m->campaigns, m->n_campaigns,
	                             m->server_now_ms, m->alert_paused_min) <= 0)
		return;
	draw_put(c, w, x, ROLE_NORMAL, "  ");
	draw_put(c, w, x, ROLE_WARN, buf);
}

/* The card-testing shield, when it is up on a campaign or raised. */
static void draw_shield_alert(struct console *c, WINDOW *w, int *x)
{
	char buf[TEXT_CAP];

	if (view_shield_alert(&c->model, buf, sizeof buf) <= 0)
		return;
	draw_put(c, w, x, ROLE_NORMAL, "  ");
	draw_put(c, w, x, ROLE_WARN, buf);
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
		draw_put(c, w, x, ROLE_NORMAL, "  ");
		draw_put(c, w, x, ROLE_ERROR, buf);
	}
	if (m->live_refusing) {
		draw_put(c, w, x, ROLE_NORMAL, "  ");
		draw_put(c, w, x, ROLE_ERROR, "refusing viewers");
	} else if (m->live_slow > 1) {
		snprintf(buf, sizeof buf, "viewers slowed x%d", m->live_slow);
		draw_put(c, w, x, ROLE_NORMAL, "  ");
		draw_put(c, w, x, ROLE_WARN, buf);
	}
}

/* The last n gifts/s samples as a sparkline into buf. */
static void sparkline(const struct console *c, char *buf, size_t cap, size_t n)
{
	double v[HIST_N];
	size_t have = c->n_hist < n ? c->n_hist : n;

	for (size_t i = 0; i < have; i++)
		v[i] = c->rate_hist[(c->n_hist - have + i) % HIST_N];
	console_fmt_spark(buf, cap, v, have, c->utf8);
}

/* The share of captures that succeeded over the last minute (the payments
 * queue's done and declined counts); < 0 when none ended in it. */
static double pay_success(const struct console *c)
{
	size_t span = c->n_hist < HIST_N ? c->n_hist : HIST_N, now, then;
	int64_t done, declined;

	if (span < 2)
		return -1;
	now = (c->n_hist - 1) % HIST_N;
	/* the oldest sample that had the queue (a remote console's first
	 * samples may come before its first state) */
	for (size_t back = span; back >= 2; back--) {
		then = (c->n_hist - back) % HIST_N;
		if (c->pay_done[then] >= 0 && c->pay_done[now] >= 0) {
			done = c->pay_done[now] - c->pay_done[then];
			declined = c->pay_declined[now] - c->pay_declined[then];
			return done > 0 ? (double)(done - declined) / (double)done : -1;
		}
	}
	return -1;
}

/* The day's total: the campaigns' totals in the currency most of them use
 * (a giving day has one), and how many campaigns use another. */
static void day_total(const struct console_model *m, char *buf, size_t cap)
{
	const char *cur[8];
	size_t count[8] = {0}, n_cur = 0, best = 0, others = 0;
	int64_t sum = 0;

	for (size_t i = 0; i < m->n_campaigns; i++) {
		size_t k = 0;

		while (k < n_cur && strcmp(cur[k], m->campaigns[i].currency))
			k++;
		if (k == n_cur && n_cur < N_OF(cur))
			cur[n_cur++] = m->campaigns[i].currency;
		if (k < n_cur && ++count[k] > count[best])
			best = k;
	}
	if (!n_cur) {
		snprintf(buf, cap, "-");
		return;
	}
	for (size_t i = 0; i < m->n_campaigns; i++) {
		if (!strcmp(m->campaigns[i].currency, cur[best]))
			sum += m->campaigns[i].total_cents;
		else
			others++;
	}
	console_fmt_money(buf, cap, sum, cur[best]);
	if (others) {
		size_t n = strlen(buf);

		snprintf(buf + n, cap - n, " (+%zu campaign%s in other currencies)", others,
		         others == 1 ? "" : "s");
	}
}

void draw_header(struct console *c)
{
	const struct console_model *m = &c->model;
	WINDOW *w = c->w_header;
	char buf[TEXT_CAP], num[64], err[128];
	int64_t backlog = 0;
	double pay;
	int x = 0;

	werase(w);
	draw_put(c, w, &x, ROLE_HEADER, " tally ");
	draw_put(c, w, &x, ROLE_NORMAL, m->server[0] ? m->server : "-");
	draw_put(c, w, &x, ROLE_NORMAL, "  ");
	if (c->fetch_rc < 0) {
		snprintf(buf, sizeof buf, "fetch failed: %s",
		         errtext(-c->fetch_rc, err, sizeof err));
		draw_put(c, w, &x, ROLE_ERROR, buf);
	} else if (!m->connected) {
		/* A remote source's words: "reconnecting (12 s): why", "stale
		 * since 12:00:01" (its numbers are older than they look). */
		draw_put(c, w, &x, strncmp(m->error, "stale", 5) ? ROLE_ERROR : ROLE_WARN,
		         m->error[0] ? m->error : "disconnected");
	} else {
		draw_put(c, w, &x, ROLE_OK, "connected");
		if (m->error[0]) {
			draw_put(c, w, &x, ROLE_NORMAL, " ");
			draw_put(c, w, &x, ROLE_WARN, m->error);
		}
	}
	if (m->role[0] && strcmp(m->role, "admin")) {
		snprintf(buf, sizeof buf, "  as %s (%s)", m->who, m->role);
		draw_put(c, w, &x, ROLE_DIM, buf);
	}
	draw_server_alerts(c, w, &x);
	draw_shield_alert(c, w, &x);
	draw_queue_alerts(c, w, &x);
	draw_campaign_alerts(c, w, &x);

	/* the second row: the day's numbers */
	if (HEADER_ROWS < 2)
		return;
	x = 0;
	draw_put_at(c, w, 1, &x, ROLE_DIM, " day ");
	day_total(m, buf, sizeof buf);
	draw_put_at(c, w, 1, &x, ROLE_HEADER, buf);
	if (console_fmt_day(buf, sizeof buf, m->day_early_ms, m->day_opens_ms, m->day_closes_ms,
	                    m->server_now_ms) > 0) {
		int phase = console_fmt_day_phase(m->day_early_ms, m->day_opens_ms,
		                                  m->day_closes_ms, m->server_now_ms);

		draw_put_at(c, w, 1, &x, ROLE_NORMAL, "  ");
		draw_put_at(c, w, 1, &x,
		            phase == 3   ? ROLE_OK
		            : phase == 4 ? ROLE_DIM
		                         : ROLE_WARN,
		            buf);
	}
	draw_put_at(c, w, 1, &x, ROLE_DIM, "  gifts/s ");
	console_fmt_rate(num, sizeof num, m->donations_per_s);
	draw_put_at(c, w, 1, &x, ROLE_NORMAL, num);
	draw_put_at(c, w, 1, &x, ROLE_NORMAL, " ");
	sparkline(c, buf, sizeof buf, 20);
	draw_put_at(c, w, 1, &x, ROLE_OK, buf);
	draw_put_at(c, w, 1, &x, ROLE_DIM, "  paid ");
	pay = pay_success(c);
	if (pay < 0)
		snprintf(num, sizeof num, "-");
	else
		snprintf(num, sizeof num, "%.1f%%", pay * 100.0);
	draw_put_at(c, w, 1, &x,
	            pay < 0     ? ROLE_NORMAL
	            : pay < 0.5 ? ROLE_ERROR
	            : pay < 0.9 ? ROLE_WARN
	                        : ROLE_NORMAL,
	            num);
	for (size_t i = 0; i < m->n_queues; i++)
		backlog += m->queues[i].ready + m->queues[i].scheduled;
	draw_put_at(c, w, 1, &x, ROLE_DIM, "  backlog ");
	console_fmt_int(num, sizeof num, backlog);
	draw_put_at(c, w, 1, &x, backlog > 10000 ? ROLE_WARN : ROLE_NORMAL, num);
	draw_put_at(c, w, 1, &x, ROLE_DIM, "  gifts ");
	console_fmt_int(num, sizeof num, m->donations_total);
	draw_put_at(c, w, 1, &x, ROLE_NORMAL, num);
	draw_put_at(c, w, 1, &x, ROLE_DIM, "  intake ");
	console_fmt_int(num, sizeof num, m->intake_depth);
	draw_put_at(c, w, 1, &x, m->intake_depth > 1000 ? ROLE_WARN : ROLE_NORMAL, num);
	draw_put_at(c, w, 1, &x, ROLE_DIM, "  ws ");
	console_fmt_int(num, sizeof num, m->ws_clients);
	draw_put_at(c, w, 1, &x, ROLE_NORMAL, num);
	draw_put_at(c, w, 1, &x, ROLE_DIM, "  up ");
	console_fmt_duration(num, sizeof num, m->uptime_s);
	draw_put_at(c, w, 1, &x, ROLE_NORMAL, num);
}

void draw_msgline(struct console *c)
{
	WINDOW *w = c->w_msg;
	char buf[TEXT_CAP];
	int x = 0;

	werase(w);
	switch (c->prompt) {
	case PROMPT_FILTER:
		draw_put(c, w, &x, ROLE_HEADER, "Filter: ");
		draw_put(c, w, &x, ROLE_NORMAL, c->filter);
		wmove(w, 0, x < getmaxx(w) ? x : getmaxx(w) - 1); /* the cursor */
		return;
	case PROMPT_CONFIRM:
		draw_put(c, w, &x, ROLE_WARN, c->confirm_q);
		return;
	case PROMPT_INPUT:
		draw_put(c, w, &x, ROLE_HEADER, c->input_q);
		draw_put(c, w, &x, ROLE_NORMAL, c->input);
		wmove(w, 0, x < getmaxx(w) ? x : getmaxx(w) - 1); /* the cursor */
		return;
	case PROMPT_NONE:
		break;
	}
	if (c->msg_until) {
		draw_put(c, w, &x, c->msg_role, c->msg);
	} else if (c->views[0] == &view_queues) {
		view_queues_summary(c, buf, sizeof buf);
		draw_put(c, w, &x, ROLE_DIM, buf);
	} else if (c->views[0] == &view_events) {
		view_events_summary(c, buf, sizeof buf);
		draw_put(c, w, &x, ROLE_DIM, buf);
	} else if (c->views[0] == &view_shield) {
		view_shield_summary(c, buf, sizeof buf);
		draw_put(c, w, &x, ROLE_DIM, buf);
	} else if (c->filter[0]) {
		snprintf(buf, sizeof buf, "filter \"%s\": %zu of %zu campaigns, sorted by %s",
		         c->filter, c->n_rows, c->model.n_campaigns, view_campaigns_sort_name(c));
		draw_put(c, w, &x, ROLE_DIM, buf);
	} else {
		snprintf(buf, sizeof buf, "%zu campaigns, sorted by %s", c->model.n_campaigns,
		         view_campaigns_sort_name(c));
		draw_put(c, w, &x, ROLE_DIM, buf);
	}
}

static int bar_entry_width(const struct key_entry *e)
{
	return console_fmt_width(e->name) + 1 + console_fmt_width(e->bar) + 2;
}

static void draw_bar_entry(struct console *c, WINDOW *w, int *x, const struct key_entry *e)
{
	draw_put(c, w, x, ROLE_KEY, e->name);
	draw_put(c, w, x, ROLE_NORMAL, " ");
	draw_put(c, w, x, ROLE_NORMAL, e->bar);
	draw_put(c, w, x, ROLE_NORMAL, "  ");
}

/* The view's keys from the left, the global ones flush right; view keys
 * that would run into the global ones are left out. */
void draw_keybar(struct console *c)
{
	const struct view_ops *v = console_view_top(c);
	WINDOW *w = c->w_bar;
	int x = 0, gx = getmaxx(w), gw = 0;

	werase(w);
	for (size_t i = 0; i < console_n_global_keys; i++)
		if (console_global_keys[i].bar)
			gw += bar_entry_width(&console_global_keys[i]);
	gx = gx - gw + 2 > 0 ? gx - gw + 2 : 0;
	for (size_t i = 0; i < v->n_keys; i++) {
		if (!v->keys[i].bar)
			continue;
		if (x + bar_entry_width(&v->keys[i]) > gx)
			break;
		draw_bar_entry(c, w, &x, &v->keys[i]);
	}
	x = x > gx ? x : gx;
	for (size_t i = 0; i < console_n_global_keys; i++)
		if (console_global_keys[i].bar)
			draw_bar_entry(c, w, &x, &console_global_keys[i]);
}
