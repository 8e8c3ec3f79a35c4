/* tui/view_queues.c - the queues view: the job queues' counters and their
 * dead jobs, the actions on them (pause or resume a queue, retry or discard
 * a job, retry all dead jobs of a queue), its key table.
 *
 * It selects in one list of queue rows then dead jobs, following a queue by
 * name or a job by id across fetches as the campaigns view follows a slug;
 * its y/n actions keep their target (queue name, job id) from the moment
 * they asked.
 */
#include "console_int.h"

#include "console_fmt.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

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

	if (!console_may(c, "operator", pause ? "pause queues" : "resume queues"))
		return;
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

	if (!console_may(c, "operator", "retry dead jobs"))
		return;
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
const struct console_job *view_queues_selected_job(const struct console *c)
{
	return q_sel_job(c);
}

static const struct console_job *job_for_action(struct console *c, const char *what)
{
	const struct console_job *j = q_sel_job(c);

	if (!j)
		message(c, ROLE_WARN, "select a dead job (Down/j) to %s it", what);
	return j;
}

static void act_open(struct console *c)
{
	const struct console_job *j = job_for_action(c, "open");

	if (j)
		view_job_open(c, j);
}

static void act_retry(struct console *c)
{
	const struct console_job *j = job_for_action(c, "retry");

	if (j)
		view_queues_retry(c, j);
}

void view_queues_retry(struct console *c, const struct console_job *j)
{
	const struct console_source *src = c->src;
	char gift[32], err[128];
	int64_t id;
	int rc;

	if (!console_may(c, "operator", "retry jobs"))
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

	if (j)
		view_queues_ask_discard(c, j);
}

void view_queues_ask_discard(struct console *c, const struct console_job *j)
{
	char gift[32];

	if (!console_may(c, "operator", "discard jobs"))
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
    {{'t'}, "t", "Events", "show the notable events", console_act_toggle_view},
    {{'p'}, "p", "Pause", "pause the selected queue (asks y/n)", act_q_pause},
    {{'r'}, "r", "Resume", "resume the selected queue (asks y/n)", act_q_resume},
    {{'R'}, "R", "Retry", "retry the selected dead job now", act_retry},
    {{'D', KEYFN(KEY_DC)}, "D/Del", "Discard", "discard the selected job (asks y/n)", act_discard},
    {{'A'}, "A", "Retry all", "retry all dead jobs of the queue (asks y/n)", act_retry_dead},
    {{'\r', '\n', KEYFN(KEY_ENTER)},
     "Enter",
     NULL,
     "the selected dead job: its error in full, retry, discard, refund its gift",
     act_open},
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
