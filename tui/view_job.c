/* tui/view_job.c - one dead job in detail, pushed by Enter on a dead job
 * in the queues view: what it is, its gift, its attempts and last error
 * in full; retry, discard (the operator role), and refund its gift (the
 * admin role, asks y/n). The job is copied when the view opens: it stays
 * on screen after a retry takes it off the dead list.
 */
#include "console_int.h"
#include "console_fmt.h"

#include <errno.h>

void view_job_open(struct console *c, const struct console_job *j)
{
	c->job = *j;
	console_view_push(c, &view_job);
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

static void job_draw(struct console *c, WINDOW *w)
{
	const struct console_job *j = &c->job;
	int still_dead = 0, maxx = getmaxx(w), y = 7;
	char buf[TEXT_CAP];
	const char *e = j->last_error;

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
	snprintf(buf, sizeof buf, "%d", j->attempts);
	row(c, w, 5, "Attempts", buf, ROLE_NORMAL);
	draw_text(w, 7, 1, 12, "Last error", 0, c->attr[ROLE_DIM]);
	/* the whole error, in pieces of the window's width in bytes, each cut
	 * at a character's start (draw_text cuts what is still too wide) */
	while (*e && y < getmaxy(w) && maxx > 20) {
		char part[TEXT_CAP];
		size_t n = strlen(e), room = (size_t)(maxx - 15);

		if (n > room) {
			n = room;
			while (n > 1 && ((unsigned char)e[n] & 0xC0) == 0x80)
				n--;
		}
		memcpy(part, e, n);
		part[n] = '\0';
		draw_text(w, y++, 14, maxx - 14, part, 0, c->attr[ROLE_NORMAL]);
		e += n;
	}
}

static int job_key(struct console *c, int key)
{
	return console_keymap_run(c, job_keys, N_OF(job_keys), key);
}

const struct view_ops view_job = {
    "Job", job_draw, job_key, job_keys, N_OF(job_keys),
};
