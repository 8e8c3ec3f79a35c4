/* core/day_staff.c - the giving day's schedule in the engine: staff set
 * and clear it, the writer mirrors it and keeps every campaign's public
 * state in step with its phases.
 *
 * DESIGN: the schedule is one record (e->day) that the writer changes
 * under e->lock once a day op committed, and that gift admission
 * (intake.c), the campaigns' JSON (publish.c) and the day's channel read.
 * Each day op - set, clear, or a touch when a phase starts - bumps every
 * campaign's seq and the day's own seq in its transaction and republishes
 * every campaign, so a campaign's status (closed before the opening and
 * after the closing) flips for readers and live channels without a
 * request: commit_tick calls day_tick about once a second and at the
 * moment the next phase starts (db_writer_tick_at), which queues a touch
 * when the phase at that moment is not the one last recorded.
 * Gifts do not wait for that: admission reads the phase at their own
 * moment.
 */
#include "core/internal.h"
#include "core/day.h"
#include "base/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int engine_day_set(struct engine *e, const struct giving_day *d, const char *actor,
                   engine_done_fn done, void *ud)
{
	struct pending *p;
	char detail[200], a[32], b[32], c[32];

	if (!d->set || d->opens_at <= 0 || d->closes_at <= d->opens_at ||
	    (d->early_at && d->early_at >= d->opens_at))
		return TALLY_EFIELDS;
	p = pending_new(e, DB_OP_DAY, done, ud, actor);
	if (!p)
		return TALLY_EIO;
	p->op.u.day.action = DB_DAY_SET;
	p->op.u.day.day = *d;
	snprintf(detail, sizeof(detail), "early %s, opens %s, closes %s%s%s",
	         d->early_at ? util_rfc3339(d->early_at, a, sizeof(a)) : "none",
	         util_rfc3339(d->opens_at, b, sizeof(b)), util_rfc3339(d->closes_at, c, sizeof(c)),
	         d->currency[0] ? ", currency " : "", d->currency);
	pending_audit(p, "day.set", d->name[0] ? d->name : "giving day", detail);
	return engine_submit(e, p, 1);
}

int engine_day_clear(struct engine *e, const char *actor, engine_done_fn done, void *ud)
{
	struct pending *p = pending_new(e, DB_OP_DAY, done, ud, actor);

	if (!p)
		return TALLY_EIO;
	p->op.u.day.action = DB_DAY_CLEAR;
	pending_audit(p, "day.clear", "giving day", NULL);
	return engine_submit(e, p, 1);
}

int engine_day_set_sync(struct engine *e, const struct giving_day *d, const char *actor)
{
	struct waiter w;

	waiter_init(&w);
	return waiter_wait(&w, engine_day_set(e, d, actor, waiter_done, &w));
}

void engine_day_get(struct engine *e, struct giving_day *out)
{
	pthread_mutex_lock(&e->lock);
	*out = e->day;
	pthread_mutex_unlock(&e->lock);
}

int engine_day_currency_ok(struct engine *e, const char *currency)
{
	int ok;

	pthread_mutex_lock(&e->lock);
	ok = !e->day.set || !e->day.currency[0] || !strcmp(e->day.currency, currency);
	pthread_mutex_unlock(&e->lock);
	return ok;
}

void day_mirror(struct engine *e, const struct db_op *op)
{
	int64_t now = util_now_ms();

	if (op->u.day.action == DB_DAY_TOUCH)
		e->day_touch_pending = 0;
	if (!op->u.day.changed)
		return;
	pthread_mutex_lock(&e->lock);
	if (op->u.day.action == DB_DAY_SET) {
		e->day = op->u.day.day;
		e->day.set = 1;
	} else if (op->u.day.action == DB_DAY_CLEAR) {
		memset(&e->day, 0, sizeof(e->day));
	}
	e->day_seq++; /* as the writer did */
	pthread_mutex_unlock(&e->lock);
	e->day_phase = day_phase(&e->day, now);
	e->day_dirty = 1;
	db_writer_tick_at(e->writer, day_next_change(&e->day, now));
	for (size_t i = 1; i < e->id_cap; i++) {
		struct campaign *c = e->by_id[i];

		if (!c)
			continue;
		c->w.seq++; /* as the writer did: every campaign, once per op */
		c->effective = campaign_effective(&c->w, &e->day, now);
		publish_mark(e, c);
	}
}

int day_tick(struct engine *e, int64_t now)
{
	struct pending *p;

	/* The next phase starts on time: a tick is asked for at that moment. */
	db_writer_tick_at(e->writer, day_next_change(&e->day, now));
	if (e->day_touch_pending || !e->day.set || day_phase(&e->day, now) == e->day_phase)
		return 0;
	p = pending_new(e, DB_OP_DAY, NULL, NULL, NULL);
	if (!p)
		return 0;
	p->op.u.day.action = DB_DAY_TOUCH;
	e->day_touch_pending = 1;
	if (engine_submit(e, p, 1)) {
		e->day_touch_pending = 0;
		return 0;
	}
	return 1;
}
