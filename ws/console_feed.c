/* ws/console_feed.c - what a staff console shows, as JSON messages.
 *
 * DESIGN: a feed remembers, per campaign id, a signature of the row it
 * last sent (FNV-1a over the fields the console shows); a state carries
 * the rows whose signature changed, in id order from where the last state
 * stopped, at most CONSOLE_FEED_BATCH of them, and says "synced" once a
 * whole pass found nothing left to send. A pass copies out of the
 * engine only the campaigns whose published seq the feed has not seen
 * (engine_campaign_infos_changed: with 10,000 campaigns, a full copy four
 * times a second per console cost a third of a core), and every
 * CONSOLE_FEED_FULL_MS all of them, for what changes with time alone
 * (gifts per minute, a schedule's status). A row carries the campaign's
 * gifts and amount over the last hour (the engine's minute ring) and,
 * while it is paused, since when: two numbers more per row, and they
 * change when the row changes anyway or, the hour sliding on, at most
 * once a minute, which the full pass picks up. Sending them only for the
 * campaign a console has open would need the console to tell the feed
 * what it shows; feeds do not read consoles' messages, and two consoles
 * showing one campaign would each need their own. Everything else in a state
 * (header numbers, queues, dead jobs) is small and sent whole each time.
 * The numbers come from the engine's and the loops' counters, all read
 * from memory; the dead jobs from the job queues' memory.
 *
 * A dead job's attempt history (up to ten errors) is not in memory and
 * would make a state ten times longer: a state carries it only for the
 * dead jobs the previous state did not list with the same number of
 * attempts, read from SQLite then (engine_job_histories); the console
 * keeps it from state to state (tui/console_mirror.c). So a console whose
 * dead list holds still costs no read and no history at all.
 *
 * The card-testing shield (core/shield.c's shield_json, its worst
 * CONSOLE_FEED_OFFENDERS offenders) goes in a state as "shield" when the
 * server has one: rendered at most every CONSOLE_FEED_SHIELD_MS (it walks
 * the shield's tables under its lock, which the intake path takes too),
 * or at the next state after console_feed_shield_now(), and sent only
 * when its text differs from the last one sent (an idle shield costs a
 * render a second and no bytes); the console keeps the last.
 */
#include "ws/console_feed.h"
#include "ws/internal.h"
#include "core/shield.h"
#include "base/events.h"
#include "base/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct console_feed {
	struct server *s;
	char who[65], role[16];
	int hello_sent;
	long batch;
	uint64_t *sig; /* index = campaign id; 0 = never sent */
	uint64_t *seq; /* index = campaign id: the seq of the row last sent */
	size_t cap;
	int64_t full_ms; /* monotonic, the last pass over every campaign */
	int behind;      /* the last pass left rows for the next one */
	struct job_record dead[CONSOLE_FEED_DEAD]; /* one queue's, while listed */
	int n_dead;
	/* The dead jobs the last state listed with their history sent (then
	 * or before): id and attempts. */
	struct told {
		int64_t id;
		int attempts;
	} told[CONSOLE_FEED_DEAD], told_now[CONSOLE_FEED_DEAD];
	int n_told, n_told_now;
	struct job_history hist[CONSOLE_FEED_DEAD]; /* one queue's, read to send */
	int64_t hist_ids[CONSOLE_FEED_DEAD];
	int hist_of[CONSOLE_FEED_DEAD]; /* dead[i]'s index in hist, -1: not sent */
	uint64_t event_seq;             /* the last event sent */
	struct tally_event events[CONSOLE_FEED_EVENTS];
	struct buf shield;       /* the shield as last rendered */
	int64_t shield_ms;       /* monotonic, when; 0: render at the next state */
	uint64_t shield_sig;     /* the FNV-1a of the last sent; 0: none */
	uint64_t shield_sig_now; /* of the one this state carries */
};

int console_feed_new(struct server *s, const char *who, const char *role, long batch,
                     struct console_feed **out)
{
	struct console_feed *f = calloc(1, sizeof(*f));

	*out = NULL;
	if (!f)
		return -ENOMEM;
	f->s = s;
	f->batch = batch > 0 ? batch : CONSOLE_FEED_BATCH;
	snprintf(f->who, sizeof(f->who), "%s", who ? who : "");
	snprintf(f->role, sizeof(f->role), "%s", role ? role : "");
	*out = f;
	return 0;
}

void console_feed_free(struct console_feed *f)
{
	if (!f)
		return;
	free(f->sig);
	free(f->seq);
	buf_fini(&f->shield);
	free(f);
}

void console_feed_shield_now(struct console_feed *f)
{
	f->shield_ms = 0;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* Never 0, so that 0 means "never sent". */
static uint64_t row_sig(const struct engine_campaign_info *i)
{
	const struct campaign_row *r = &i->c;
	uint64_t h = 0xcbf29ce484222325ull;
	int64_t nums[] = {
	    r->goal_cents,     r->raised_cents,       r->pending_cents,           r->donor_count,
	    r->donation_count, (int64_t)i->effective, (int64_t)(i->per_min * 10), r->paused_since,
	    i->hour_gifts,     i->hour_cents,         r->matched_cents,           r->bonus_cents};

	h = fnv(h, r->slug, strlen(r->slug));
	h = fnv(h, r->name, strlen(r->name));
	h = fnv(h, r->currency, strlen(r->currency));
	h = fnv(h, r->category, strlen(r->category));
	h = fnv(h, nums, sizeof(nums));
	return h ? h : 1;
}

static int grow(struct console_feed *f, int64_t id)
{
	size_t want = (size_t)id + 1, cap = f->cap ? f->cap : 64;
	uint64_t *n, *q;

	if (want <= f->cap)
		return 0;
	while (cap < want)
		cap *= 2;
	n = realloc(f->sig, cap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	f->sig = n;
	q = realloc(f->seq, cap * sizeof(*q));
	if (!q)
		return -ENOMEM;
	f->seq = q;
	memset(n + f->cap, 0, (cap - f->cap) * sizeof(*n));
	memset(q + f->cap, 0, (cap - f->cap) * sizeof(*q));
	f->cap = cap;
	return 0;
}

static int campaign_json(struct buf *b, const struct engine_campaign_info *i)
{
	const struct campaign_row *r = &i->c;
	int rc = buf_puts(b, "{\"slug\":");

	rc |= buf_json_string(b, r->slug);
	rc |= buf_puts(b, ",\"name\":");
	rc |= buf_json_string(b, r->name);
	rc |= buf_puts(b, ",\"currency\":");
	rc |= buf_json_string(b, r->currency);
	rc |= buf_puts(b, ",\"category\":");
	rc |= buf_json_string(b, r->category);
	rc |= buf_printf(b,
	                 ",\"status\":\"%s\",\"goal_cents\":%lld,\"total_cents\":%lld,"
	                 "\"raised_cents\":%lld,\"matched_cents\":%lld,\"bonus_cents\":%lld,"
	                 "\"pending_cents\":%lld,\"donor_count\":%lld,\"donation_count\":%lld,"
	                 "\"per_min\":%.1f,\"hour_gifts\":%lld,\"hour_cents\":%lld",
	                 campaign_status_names[i->effective], (long long)r->goal_cents,
	                 (long long)campaign_total(r), (long long)r->raised_cents,
	                 (long long)r->matched_cents, (long long)r->bonus_cents,
	                 (long long)r->pending_cents, (long long)r->donor_count,
	                 (long long)r->donation_count, i->per_min, (long long)i->hour_gifts,
	                 (long long)i->hour_cents);
	if (i->effective == CAMPAIGN_PAUSED && r->paused_since)
		rc |= buf_printf(b, ",\"paused_since_ms\":%lld", (long long)r->paused_since);
	rc |= buf_puts(b, "}");
	return rc;
}

/* The changed campaigns, then "synced" and the count. */
static int campaigns_json(struct console_feed *f, struct buf *b, int64_t total)
{
	struct engine_campaign_info *infos;
	int64_t now = (int64_t)(util_mono_ns() / 1000000u);
	int full = f->behind || !f->full_ms || now - f->full_ms >= CONSOLE_FEED_FULL_MS;
	long n = full ? engine_campaign_infos(f->s->engine, &infos)
	              : engine_campaign_infos_changed(f->s->engine, f->seq, f->cap, &infos);
	int rc = 0, left = 0;
	long sent = 0;

	if (n < 0)
		return (int)n;
	if (full)
		f->full_ms = now;
	rc |= buf_puts(b, ",\"campaigns\":[");
	for (long i = 0; i < n && !rc; i++) {
		uint64_t sig;

		if (infos[i].c.id < 0 || grow(f, infos[i].c.id)) {
			rc = -ENOMEM;
			break;
		}
		sig = row_sig(&infos[i]);
		if (f->sig[infos[i].c.id] == sig) {
			f->seq[infos[i].c.id] = infos[i].c.seq;
			continue;
		}
		if (sent == f->batch) {
			left = 1; /* the next state goes on */
			break;
		}
		rc |= sent++ ? buf_puts(b, ",") : 0;
		rc |= campaign_json(b, &infos[i]);
		f->sig[infos[i].c.id] = sig;
		f->seq[infos[i].c.id] = infos[i].c.seq;
	}
	f->behind = left;
	rc |= buf_printf(b, "],\"n_campaigns\":%lld,\"synced\":%s", (long long)total,
	                 left ? "false" : "true");
	free(infos);
	return rc ? -ENOMEM : 0;
}

static int keep_dead(void *ud, const struct job_record *j)
{
	struct console_feed *f = ud;

	if (f->n_dead < CONSOLE_FEED_DEAD)
		f->dead[f->n_dead++] = *j;
	return 0;
}

static int was_told(const struct console_feed *f, const struct job_record *j)
{
	for (int i = 0; i < f->n_told; i++)
		if (f->told[i].id == j->id && f->told[i].attempts == j->attempts)
			return 1;
	return 0;
}

/* Read the history of this queue's dead jobs the console does not have
 * (see DESIGN); hist_of[i] says where dead[i]'s is, -1 when it is not
 * sent. When the read fails none is sent: the next state tries again. */
static void read_histories(struct console_feed *f)
{
	int n = 0;

	for (int i = 0; i < f->n_dead; i++) {
		f->hist_of[i] = -1;
		if (was_told(f, &f->dead[i])) {
			f->told_now[f->n_told_now++] =
			    (struct told){f->dead[i].id, f->dead[i].attempts};
			continue;
		}
		f->hist_of[i] = n;
		f->hist_ids[n++] = f->dead[i].id;
	}
	if (!n)
		return;
	if (engine_job_histories(f->s->engine, f->hist_ids, (size_t)n, f->hist)) {
		for (int i = 0; i < f->n_dead; i++)
			f->hist_of[i] = -1;
		return;
	}
	for (int i = 0; i < f->n_dead; i++)
		if (f->hist_of[i] >= 0)
			f->told_now[f->n_told_now++] =
			    (struct told){f->dead[i].id, f->dead[i].attempts};
}

static int history_json(struct buf *b, const struct job_history *h)
{
	int rc = buf_puts(b, ",\"attempt_history\":[");

	for (int i = 0; i < h->n; i++) {
		const struct job_attempt *a = &h->a[i];

		rc |= buf_printf(
		    b, "%s{\"attempt\":%d,\"at_ms\":%lld,\"ms\":%lld,\"error\":", i ? "," : "",
		    a->attempt, (long long)a->at_ms, (long long)a->took_ms);
		rc |= buf_json_string(b, a->error);
		rc |= buf_puts(b, "}");
	}
	return rc | buf_puts(b, "]");
}

/* The queues, then the dead jobs: CONSOLE_FEED_DEAD shared fairly between
 * the queues, oldest first in each, with the histories the console lacks. */
static int queues_json(struct console_feed *f, struct buf *b)
{
	int64_t dead[JOB_QUEUES];
	size_t take[JOB_QUEUES];
	int rc = buf_puts(b, ",\"queues\":["), first = 1;

	for (int q = 0; q < JOB_QUEUES; q++) {
		struct job_queue_info qi;

		engine_queue_info(f->s->engine, (enum job_queue)q, &qi);
		dead[q] = qi.dead;
		rc |= q ? buf_puts(b, ",") : 0;
		rc |= admin_queue_json(b, (enum job_queue)q, &qi);
	}
	rc |= buf_puts(b, "],\"dead\":[");
	util_fair_share(dead, JOB_QUEUES, CONSOLE_FEED_DEAD, take);
	f->n_told_now = 0;
	for (int q = 0; q < JOB_QUEUES && !rc; q++) {
		f->n_dead = 0;
		if (!take[q] || engine_jobs_each(f->s->engine, (enum job_queue)q, JOB_DEAD,
		                                 (int)take[q], keep_dead, f))
			continue; /* none, or not readable now: the next state has them */
		read_histories(f);
		for (int i = 0; i < f->n_dead; i++) {
			const struct job_record *j = &f->dead[i];

			rc |= first ? 0 : buf_puts(b, ",");
			first = 0;
			rc |= buf_printf(b,
			                 "{\"id\":%lld,\"donation_id\":%lld,\"attempts\":%d,"
			                 "\"queue\":\"%s\",\"kind\":\"%s\",\"last_error\":",
			                 (long long)j->id, (long long)j->donation_id, j->attempts,
			                 job_queue_names[q], job_kind_names[j->kind]);
			rc |= buf_json_string(b, j->last_error);
			if (f->hist_of[i] >= 0)
				rc |= history_json(b, &f->hist[f->hist_of[i]]);
			rc |= buf_puts(b, "}");
		}
	}
	rc |= buf_puts(b, "]");
	return rc ? -ENOMEM : 0;
}

/* The notable events since the last state (base/events.c). */
static int events_json(struct console_feed *f, struct buf *b)
{
	size_t n = events_since(f->event_seq, f->events, CONSOLE_FEED_EVENTS);
	int rc = buf_puts(b, ",\"events\":[");

	for (size_t i = 0; i < n; i++) {
		const struct tally_event *e = &f->events[i];

		rc |= buf_printf(b, "%s{\"seq\":%llu,\"at_ms\":%lld,\"kind\":", i ? "," : "",
		                 (unsigned long long)e->seq, (long long)e->at_ms);
		rc |= buf_json_string(b, e->kind);
		rc |= buf_puts(b, ",\"who\":");
		rc |= buf_json_string(b, e->who);
		rc |= buf_puts(b, ",\"text\":");
		rc |= buf_json_string(b, e->text);
		rc |= buf_puts(b, "}");
		f->event_seq = e->seq;
	}
	rc |= buf_puts(b, "]");
	return rc ? -ENOMEM : 0;
}

/* The shield when it is due and changed (see DESIGN). */
static int shield_member(struct console_feed *f, struct buf *b)
{
	struct shield *sh = engine_shield(f->s->engine);
	int64_t now = (int64_t)(util_mono_ns() / 1000000u);
	uint64_t sig;

	f->shield_sig_now = f->shield_sig;
	if (!sh || (f->shield_ms && now - f->shield_ms < CONSOLE_FEED_SHIELD_MS))
		return 0;
	f->shield_ms = now;
	f->shield.len = 0;
	if (shield_json(sh, util_now_ms(), CONSOLE_FEED_OFFENDERS, &f->shield))
		return -ENOMEM;
	sig = fnv(0xcbf29ce484222325ull, f->shield.p, f->shield.len);
	sig = sig ? sig : 1;
	if (sig == f->shield_sig)
		return 0;
	f->shield_sig_now = sig;
	if (buf_puts(b, ",\"shield\":") || buf_append(b, f->shield.p, f->shield.len))
		return -ENOMEM;
	return 0;
}

static int hello_json(struct console_feed *f, struct buf *b)
{
	int rc = buf_printf(
	    b,
	    "{\"type\":\"hello\",\"version\":\"%s\",\"server\":\"%s:%d\",\"who\":", TALLY_VERSION,
	    f->s->cfg.listen_addr ? f->s->cfg.listen_addr : "", f->s->port);

	rc |= buf_json_string(b, f->who);
	rc |= buf_puts(b, ",\"role\":");
	rc |= buf_json_string(b, f->role);
	rc |= buf_printf(b, ",\"alert_paused_min\":%d}", f->s->cfg.alert_paused_min);
	return rc ? -ENOMEM : 0;
}

int console_feed_next(struct console_feed *f, struct buf *out)
{
	struct engine_stats es;
	struct live_stats ls;
	struct giving_day day;
	int rc;

	if (!f->hello_sent) {
		rc = hello_json(f, out);
		f->hello_sent = !rc;
		return rc;
	}
	engine_get_stats(f->s->engine, &es);
	live_get_stats(f->s->live, &ls);
	rc = buf_printf(out,
	                "{\"type\":\"state\",\"now_ms\":%lld,\"uptime_s\":%lld,"
	                "\"donations_per_s\":%.2f,"
	                "\"donations_total\":%lld,\"intake_depth\":%lld,\"ws_clients\":%lld,"
	                "\"live_slow\":%d,\"live_refusing\":%s,\"storage_failing_ms\":%lld",
	                (long long)util_now_ms(), (long long)es.uptime_s, es.donations_per_s,
	                (long long)es.donations_total, (long long)es.intake_depth,
	                (long long)ls.viewers, ls.slow, ls.refusing ? "true" : "false",
	                (long long)(es.commits.failing_since_ms
	                                ? util_now_ms() - es.commits.failing_since_ms
	                                : 0));
	engine_day_get(f->s->engine, &day);
	if (!rc && day.set)
		rc = buf_printf(
		    out, ",\"day\":{\"early_ms\":%lld,\"opens_ms\":%lld,\"closes_ms\":%lld}",
		    (long long)day.early_at, (long long)day.opens_at, (long long)day.closes_at);
	if (rc)
		return -ENOMEM;
	rc = queues_json(f, out);
	if (!rc)
		rc = events_json(f, out);
	if (!rc)
		rc = shield_member(f, out);
	if (!rc)
		rc = campaigns_json(f, out, es.campaigns);
	if (!rc && buf_puts(out, "}"))
		rc = -ENOMEM;
	if (!rc) {
		/* The state is whole: from now on the console has these. */
		memcpy(f->told, f->told_now, (size_t)f->n_told_now * sizeof(f->told[0]));
		f->n_told = f->n_told_now;
		f->shield_sig = f->shield_sig_now;
	}
	return rc;
}
