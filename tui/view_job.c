/* tui/view_job.c - one dead job in detail, pushed by Enter on a dead job
 * in the queues view: what it is, its gift, its attempts and last error
 * in full, then a table of its failed attempts (number, when, how long,
 * error), newest last; retry, discard (the operator role), and refund its
 * gift (the admin role, asks y/n). The job is copied when the view opens
 * and again while it is listed: it stays on screen after a retry takes it
 * off the dead list, and shows its new attempts when it dies again.
 *
 * Rows: the header rows, the last error (as many rows as it needs), a
 * blank row, the table's titles and a row per attempt. When the window is
 * short the table keeps its rows (the newest first) and the last error
 * gets what is left, at least one row, cut with "…".
 */
#include "console_int.h"
#include "console_fmt.h"

#include <errno.h>
#include <time.h>

void view_job_open(struct console *c, const struct console_job *j)
{
	c->job = *j;
	console_view_push(c, &view_job);
}

/* While the job is listed, show it as listed: dead again after a retry,
 * with more attempts; or its history arrived since it was opened (a
 * source may send it with a later state). */
static void job_refresh(struct console *c)
{
	for (size_t i = 0; i < c->model.n_dead; i++) {
		const struct console_job *d = &c->model.dead[i];

		if (d->id != c->job.id)
			continue;
		if (d->n_history || d->attempts != c->job.attempts)
			c->job = *d;
		break;
	}
}

static void act_back(struct console *c)
{
	console_view_pop(c);
}

static void act_retry(struct console *c)
{
	view_queues_retry(c, &c->job);
}

static void act_discard(struct console *c)
{
	view_queues_ask_discard(c, &c->job);
}

static void confirm_refund(struct console *c)
{
	const struct console_source *src = c->src;
	char gift[32], err[128];
	int rc = src->refund ? src->refund(src->ctx, c->confirm_job, "refunded from the console")
	                     : -ENOTSUP;

	console_fmt_donation(gift, sizeof gift, c->confirm_job);
	if (rc == 0)
		message(c, ROLE_OK, "refund of %s asked (the processor's refund runs as a job)",
		        gift);
	else
		message(c, ROLE_ERROR, "refund %s failed: %s", gift,
		        action_errtext(c, rc, err, sizeof err));
	console_fetch(c);
}

static void act_refund(struct console *c)
{
	char gift[32];

	if (!console_may(c, "admin", "refund gifts"))
		return;
	if (c->job.donation_id <= 0) {
		message(c, ROLE_WARN, "job %lld has no gift", (long long)c->job.id);
		return;
	}
	c->confirm_job = c->job.donation_id;
	console_fmt_donation(gift, sizeof gift, c->job.donation_id);
	console_ask(c, confirm_refund, "Refund the gift %s (money back to the donor)? y/n", gift);
}

static const struct key_entry job_keys[] = {
    {{KEY_ESC, KEYFN(KEY_LEFT)}, "Esc", "Back", "back to the queues", act_back},
    {{'R'}, "R", "Retry", "retry this job now", act_retry},
    {{'D', KEYFN(KEY_DC)}, "D/Del", "Discard", "discard this job (asks y/n)", act_discard},
    {{'f'}, "f", "Refund", "refund this job's gift (asks y/n)", act_refund},
};

static void row(struct console *c, WINDOW *w, int y, const char *label, const char *value,
                enum role role)
{
	int maxx = getmaxx(w);

	draw_text(w, y, 1, 12, label, 0, c->attr[ROLE_DIM]);
	draw_text(w, y, 14, maxx - 14, value, 0, c->attr[role]);
}

/* The bytes of e that the next row of the last error takes: room bytes
 * at most, after a space in the row's second half if there is one, else
 * cut at a character's start (draw_text cuts what is still too wide). */
static size_t piece(const char *e, size_t room)
{
	size_t n = strlen(e);

	if (n > room) {
		n = room;
		while (n > 1 && ((unsigned char)e[n] & 0xC0) == 0x80)
			n--;
		for (size_t k = n; k > room / 2; k--)
			if (e[k - 1] == ' ')
				return k;
	}
	return n;
}

/* The last error from row y, in at most rows rows; the last of them shows
 * what is left, cut with "…" when it is still too long. */
static void draw_error(struct console *c, WINDOW *w, int y, int rows, const char *e)
{
	int maxx = getmaxx(w);
	size_t room = (size_t)(maxx - 15);

	if (!*e) {
		draw_text(w, y, 14, maxx - 14, "-", 0, c->attr[ROLE_DIM]);
		return;
	}
	for (int r = 0; *e && r < rows; r++) {
		char part[TEXT_CAP];
		size_t n = r == rows - 1 ? strlen(e) : piece(e, room);

		if (n >= sizeof part)
			n = piece(e, sizeof part - 1);
		memcpy(part, e, n);
		part[n] = '\0';
		draw_text(w, y + r, 14, maxx - 14, part, 0, c->attr[ROLE_NORMAL]);
		e += n;
	}
}

/* Rows the last error needs at this width. */
static int error_rows(const char *e, int maxx)
{
	size_t room = (size_t)(maxx - 15);
	int rows = 0;

	for (; *e; rows++)
		e += piece(e, room);
	return rows ? rows : 1;
}

enum { AC_NUM, AC_WHEN, AC_TOOK, AC_ERROR, AC_COUNT };

static const struct tcol acols[AC_COUNT] = {
    [AC_NUM] = {"Attempt", 1, 0},
    [AC_WHEN] = {"When", 0, 0},
    [AC_TOOK] = {"Took", 1, 1},
    [AC_ERROR] = {"Error", 0, 0},
};

#define ATTEMPT_ERROR_MIN 12 /* the error keeps at least this many columns */
_Static_assert((int)AC_COUNT <= TCOLS_MAX, "the attempts table fits TCOLS_MAX");

static void attempt_cells(const struct console_attempt *a, char cell[][TEXT_CAP])
{
	time_t at = (time_t)(a->at_ms / 1000);
	struct tm tm;

	snprintf(cell[AC_NUM], TEXT_CAP, "%d", a->attempt);
	snprintf(cell[AC_WHEN], TEXT_CAP, "--:--:--");
	if (a->at_ms > 0 && localtime_r(&at, &tm))
		strftime(cell[AC_WHEN], TEXT_CAP, "%H:%M:%S", &tm);
	if (a->took_ms < 0 || console_fmt_latency(cell[AC_TOOK], TEXT_CAP, (double)a->took_ms) < 0)
		snprintf(cell[AC_TOOK], TEXT_CAP, "-");
	snprintf(cell[AC_ERROR], TEXT_CAP, "%s", a->error[0] ? a->error : "-");
}

/* The attempts table: titles at y, then the newest rows that fit below,
 * oldest first. */
static void draw_attempts(struct console *c, WINDOW *w, int y, const struct console_job *j)
{
	static const enum role role[AC_COUNT] = {ROLE_NORMAL, ROLE_DIM, ROLE_NORMAL, ROLE_WARN};
	char cell[AC_COUNT][TEXT_CAP];
	const char *text[AC_COUNT];
	int width[AC_COUNT], shown[AC_COUNT], drop[AC_COUNT];
	int rows = getmaxy(w) - y - 1, first;

	if (rows <= 0)
		return;
	first = j->n_history > rows ? j->n_history - rows : 0;
	draw_table_init(AC_COUNT, acols, width, shown, drop);
	for (int i = first; i < j->n_history; i++) {
		attempt_cells(&j->history[i], cell);
		draw_widen(AC_ERROR, cell, width); /* the error takes what is left */
	}
	draw_table_fit(AC_COUNT, drop, AC_ERROR, ATTEMPT_ERROR_MIN, getmaxx(w), width, shown);
	draw_table_titles(c, w, y, acols, AC_COUNT, width, shown);
	for (int i = first; i < j->n_history; i++) {
		attempt_cells(&j->history[i], cell);
		for (int k = 0; k < AC_COUNT; k++)
			text[k] = cell[k];
		draw_table_row(c, w, y + 1 + i - first, acols, AC_COUNT, width, shown, text, role,
		               0);
	}
}

static void job_draw(struct console *c, WINDOW *w)
{
	const struct console_job *j = &c->job;
	int still_dead = 0, maxx = getmaxx(w), maxy = getmaxy(w), rows, table;
	char buf[TEXT_CAP];

	job_refresh(c);
	for (size_t i = 0; i < c->model.n_dead; i++)
		still_dead |= c->model.dead[i].id == j->id;
	werase(w);
	snprintf(buf, sizeof buf, "Job %lld", (long long)j->id);
	draw_text(w, 0, 1, 20, buf, 0, c->attr[ROLE_HEADER]);
	draw_text(w, 0, 22, maxx - 22, still_dead ? "dead: waits for staff" : "no longer dead", 0,
	          c->attr[still_dead ? ROLE_ERROR : ROLE_OK]);
	row(c, w, 2, "Queue", j->queue, ROLE_NORMAL);
	row(c, w, 3, "Kind", j->kind, ROLE_NORMAL);
	console_fmt_donation(buf, sizeof buf, j->donation_id);
	row(c, w, 4, "Gift", buf, ROLE_NORMAL);
	if (j->n_history > 0 && j->n_history < j->attempts)
		snprintf(buf, sizeof buf, "%d (the last %d below)", j->attempts, j->n_history);
	else
		snprintf(buf, sizeof buf, "%d", j->attempts);
	row(c, w, 5, "Attempts", buf, ROLE_NORMAL);
	draw_text(w, 6, 1, 12, "Last error", 0, c->attr[ROLE_DIM]);
	if (maxx <= 20)
		return;
	/* the table first (a blank row, titles, its rows); the error gets the
	 * rest, at least a row */
	table = j->n_history ? 2 + j->n_history : 0;
	rows = error_rows(j->last_error, maxx);
	if (rows > maxy - 6 - table)
		rows = maxy - 6 - table;
	if (rows < 1)
		rows = 1;
	draw_error(c, w, 6, rows, j->last_error);
	if (j->n_history)
		draw_attempts(c, w, 6 + rows + 1, j);
}

static int job_key(struct console *c, int key)
{
	return console_keymap_run(c, job_keys, N_OF(job_keys), key);
}

const struct view_ops view_job = {
    "Job", job_draw, job_key, job_keys, N_OF(job_keys),
};
