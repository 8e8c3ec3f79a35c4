/* tui/console_mirror.c - a console model kept from the feed's messages.
 *
 * DESIGN: the campaigns are an array in arrival order with an index by
 * slug (open addressing, at most half full), so a state of a thousand
 * changed rows costs a thousand lookups whatever the table's size. A
 * message is read whole with jansson and checked before anything of it
 * is applied: a bad one changes nothing.
 *
 * A dead job's attempt history comes once (ws/console_feed.c): a state
 * lists it only for a job the state before did not list with the same
 * attempts. So a dead job without one keeps what the previous state's
 * list had for it; a history that is not a list counts as not sent, and
 * an entry of it that is not an attempt is skipped.
 *
 * The card-testing shield ("shield", core/shield.c's shield_json) comes
 * in a state only when the feed rendered it (about once a second, and
 * only when it changed): a state without one keeps the last. Its times
 * are RFC 3339 text; a time that does not parse is 0 (not known). Of its
 * campaigns the mirror keeps CONSOLE_SHIELD_CAMPAIGNS, those up first,
 * then by declines per minute; of its offenders the first
 * CONSOLE_SHIELD_OFFENDERS (the server sends them worst first).
 */
#include "tui/console_mirror.h"
#include "base/util.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct console_mirror {
	struct console_model m; /* campaigns: m.n_campaigns of cap */
	size_t cap;
	uint32_t *index;                           /* slot -> campaign index + 1; 0 = empty */
	size_t slots;                              /* a power of two */
	struct console_job prev[CONSOLE_DEAD_MAX]; /* the dead list before a state */
};

int console_mirror_new(struct console_mirror **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void console_mirror_reset(struct console_mirror *mi)
{
	free(mi->m.campaigns);
	free(mi->index);
	memset(mi, 0, sizeof(*mi));
}

void console_mirror_free(struct console_mirror *mi)
{
	if (!mi)
		return;
	console_mirror_reset(mi);
	free(mi);
}

int console_mirror_synced(const struct console_mirror *mi)
{
	return mi->m.synced;
}

static uint32_t slug_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

/* The slot of slug: where it is, or the empty slot where it would go. */
static size_t slot_of(const struct console_mirror *mi, const char *slug)
{
	size_t i = slug_hash(slug) & (mi->slots - 1);

	while (mi->index[i] && strcmp(mi->m.campaigns[mi->index[i] - 1].slug, slug))
		i = (i + 1) & (mi->slots - 1);
	return i;
}

static int rehash(struct console_mirror *mi, size_t slots)
{
	uint32_t *old = mi->index;

	mi->index = calloc(slots, sizeof(*mi->index));
	if (!mi->index) {
		mi->index = old;
		return -ENOMEM;
	}
	mi->slots = slots;
	free(old);
	for (size_t k = 0; k < mi->m.n_campaigns; k++)
		mi->index[slot_of(mi, mi->m.campaigns[k].slug)] = (uint32_t)k + 1;
	return 0;
}

/* The row of slug, added (zeroed, slug set) when new; NULL: no memory. */
static struct console_campaign *row(struct console_mirror *mi, const char *slug)
{
	size_t i;

	if ((mi->m.n_campaigns + 1) * 2 > mi->slots && rehash(mi, mi->slots ? mi->slots * 2 : 64))
		return NULL;
	i = slot_of(mi, slug);
	if (mi->index[i])
		return &mi->m.campaigns[mi->index[i] - 1];
	if (mi->m.n_campaigns == mi->cap) {
		size_t cap = mi->cap ? mi->cap * 2 : 64;
		struct console_campaign *n = realloc(mi->m.campaigns, cap * sizeof(*n));

		if (!n)
			return NULL;
		mi->m.campaigns = n;
		mi->cap = cap;
	}
	memset(&mi->m.campaigns[mi->m.n_campaigns], 0, sizeof(*mi->m.campaigns));
	snprintf(mi->m.campaigns[mi->m.n_campaigns].slug, sizeof(mi->m.campaigns->slug), "%s",
	         slug);
	mi->index[i] = (uint32_t)++mi->m.n_campaigns;
	return &mi->m.campaigns[mi->m.n_campaigns - 1];
}

/* ---- reading fields ---- */

static void text(json_t *o, const char *key, char *dst, size_t cap)
{
	const char *v = json_string_value(json_object_get(o, key));

	snprintf(dst, cap, "%s", v ? v : "");
}

static int64_t num(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : (int64_t)json_number_value(v);
}

static double real(json_t *o, const char *key, double missing)
{
	json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : missing;
}

static int flag(json_t *o, const char *key)
{
	return json_is_true(json_object_get(o, key));
}

/* The hello's alert_paused_min: 0 (off) when missing or out of range. */
static int alert_minutes(json_t *hello)
{
	int64_t v = num(hello, "alert_paused_min");

	return v > 0 && v <= CONSOLE_ALERT_PAUSED_MAX ? (int)v : 0;
}

/* ---- checking a state before it is applied ---- */

static int bad(char *err, size_t cap, const char *what)
{
	snprintf(err, cap, "%s", what);
	return -EINVAL;
}

/* A state's shield, when it has one: an object with a state, its
 * campaigns and offenders lists of objects. */
static int shield_ok(json_t *sh, char *err, size_t cap)
{
	json_t *cs = json_object_get(sh, "campaigns"), *os = json_object_get(sh, "offenders");

	if (!sh)
		return 0;
	if (!json_is_object(sh) || !json_is_string(json_object_get(sh, "state")))
		return bad(err, cap, "a shield without a state");
	if ((cs && !json_is_array(cs)) || (os && !json_is_array(os)))
		return bad(err, cap, "a shield whose campaigns or offenders are not lists");
	for (size_t i = 0; i < json_array_size(cs); i++)
		if (!json_is_string(json_object_get(json_array_get(cs, i), "campaign")))
			return bad(err, cap, "a shield's campaign without a slug");
	for (size_t i = 0; i < json_array_size(os); i++)
		if (!json_is_string(json_object_get(json_array_get(os, i), "key")))
			return bad(err, cap, "a shield's offender without a key");
	return 0;
}

static int state_ok(json_t *st, char *err, size_t cap)
{
	json_t *cs = json_object_get(st, "campaigns"), *qs = json_object_get(st, "queues"),
	       *ds = json_object_get(st, "dead"), *es = json_object_get(st, "events");

	if (!json_is_array(cs) || !json_is_array(qs) || !json_is_array(ds))
		return bad(err, cap, "a state without campaigns, queues and dead jobs");
	if (json_array_size(qs) > CONSOLE_QUEUES_MAX || json_array_size(ds) > CONSOLE_DEAD_MAX)
		return bad(err, cap, "a state with too many queues or dead jobs");
	if (es && !json_is_array(es))
		return bad(err, cap, "events that are not a list");
	for (size_t i = 0; i < json_array_size(cs); i++) {
		json_t *v = json_array_get(cs, i);
		const char *slug = json_string_value(json_object_get(v, "slug"));

		if (!json_is_object(v) || !slug || !*slug ||
		    strlen(slug) >= sizeof(((struct console_campaign *)0)->slug))
			return bad(err, cap, "a campaign without a slug");
	}
	for (size_t i = 0; i < json_array_size(qs); i++)
		if (!json_is_string(json_object_get(json_array_get(qs, i), "name")))
			return bad(err, cap, "a queue without a name");
	for (size_t i = 0; i < json_array_size(ds); i++)
		if (!json_is_integer(json_object_get(json_array_get(ds, i), "id")))
			return bad(err, cap, "a dead job without an id");
	for (size_t i = 0; i < json_array_size(es); i++)
		if (!json_is_integer(json_object_get(json_array_get(es, i), "seq")))
			return bad(err, cap, "an event without a seq");
	return shield_ok(json_object_get(st, "shield"), err, cap);
}

/* Append the events newer than the newest kept, dropping the oldest
 * beyond CONSOLE_EVENTS_MAX. */
static void apply_events(struct console_model *m, json_t *es)
{
	uint64_t newest = m->n_events ? m->events[m->n_events - 1].seq : 0;
	size_t fresh = 0;

	for (size_t i = 0; i < json_array_size(es); i++)
		fresh += (uint64_t)num(json_array_get(es, i), "seq") > newest;
	if (fresh > CONSOLE_EVENTS_MAX)
		fresh = CONSOLE_EVENTS_MAX;
	if (m->n_events + fresh > CONSOLE_EVENTS_MAX) {
		size_t drop = m->n_events + fresh - CONSOLE_EVENTS_MAX;

		memmove(m->events, m->events + drop, (m->n_events - drop) * sizeof(*m->events));
		m->n_events -= drop;
	}
	for (size_t i = 0; i < json_array_size(es); i++) {
		json_t *v = json_array_get(es, i);
		struct console_event *e;

		if ((uint64_t)num(v, "seq") <= newest || m->n_events == CONSOLE_EVENTS_MAX)
			continue;
		e = &m->events[m->n_events++];
		e->seq = (uint64_t)num(v, "seq");
		e->at_ms = num(v, "at_ms");
		text(v, "kind", e->kind, sizeof(e->kind));
		text(v, "who", e->who, sizeof(e->who));
		text(v, "text", e->text, sizeof(e->text));
		newest = e->seq;
	}
}

/* An RFC 3339 time as ms since the epoch; 0 when missing or bad. */
static int64_t when(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));
	int64_t ms;

	return v && !util_parse_rfc3339(v, &ms) ? ms : 0;
}

/* 1 when campaign a goes before b: up first, then by declines. */
static int shield_before(const struct console_shield_campaign *a,
                         const struct console_shield_campaign *b)
{
	if (a->up != b->up)
		return a->up;
	return a->declines_per_min > b->declines_per_min;
}

/* The shield of a state (checked by shield_ok) into sh. */
static void apply_shield(struct console_shield *sh, json_t *v)
{
	json_t *cs = json_object_get(v, "campaigns"), *os = json_object_get(v, "offenders"),
	       *blocks = json_object_get(v, "blocks"), *refused = json_object_get(v, "refused"),
	       *rules = json_object_get(v, "rules");

	memset(sh, 0, sizeof(*sh));
	sh->known = 1;
	text(v, "state", sh->state, sizeof(sh->state));
	sh->campaigns_up = num(v, "campaigns_up");
	sh->declines_per_min = num(v, "declines_per_min");
	sh->attempts_per_min = num(v, "attempts_per_min");
	sh->declines_total = num(v, "declines_total");
	sh->trips = num(v, "trips");
	sh->blocks_address = num(blocks, "address");
	sh->blocks_email = num(blocks, "email");
	sh->blocks_card = num(blocks, "card");
	sh->refused_blocked = num(refused, "blocked");
	sh->refused_below_min = num(refused, "below_min");
	sh->refused_captcha = num(refused, "captcha");
	sh->refused_capture = num(refused, "capture");
	sh->up_min_cents = num(rules, "up_min_cents");
	sh->window_s = (int)num(rules, "window_s");
	sh->block_s = (int)num(rules, "block_s");
	sh->up_s = (int)num(rules, "up_s");
	sh->campaigns_total = (int64_t)json_array_size(cs);
	for (size_t i = 0; i < json_array_size(cs); i++) {
		json_t *c = json_array_get(cs, i);
		struct console_shield_campaign k;
		size_t at;

		memset(&k, 0, sizeof(k));
		text(c, "campaign", k.slug, sizeof(k.slug));
		k.up = flag(c, "up");
		k.since_ms = when(c, "since");
		k.until_ms = when(c, "until");
		k.declines_per_min = num(c, "declines_per_min");
		k.attempts_per_min = num(c, "attempts_per_min");
		/* kept in order: insert, the last one falling off when full */
		at = sh->n_campaigns;
		while (at > 0 && shield_before(&k, &sh->campaigns[at - 1]))
			at--;
		if (at == CONSOLE_SHIELD_CAMPAIGNS)
			continue;
		if (sh->n_campaigns < CONSOLE_SHIELD_CAMPAIGNS)
			sh->n_campaigns++;
		memmove(&sh->campaigns[at + 1], &sh->campaigns[at],
		        (sh->n_campaigns - 1 - at) * sizeof(k));
		sh->campaigns[at] = k;
	}
	sh->offenders_total = json_is_integer(json_object_get(v, "offenders_total"))
	                          ? num(v, "offenders_total")
	                          : (int64_t)json_array_size(os);
	for (size_t i = 0; i < json_array_size(os) && i < CONSOLE_SHIELD_OFFENDERS; i++) {
		json_t *o = json_array_get(os, i);
		struct console_offender *x = &sh->offenders[sh->n_offenders++];

		text(o, "kind", x->kind, sizeof(x->kind));
		text(o, "key", x->key, sizeof(x->key));
		x->declines = num(o, "declines");
		x->attempts = num(o, "attempts");
		x->blocked = flag(o, "blocked");
		x->until_ms = when(o, "until");
		text(o, "why", x->why, sizeof(x->why));
	}
}

/* One attempt of a history; 0 when v is not one. */
static int read_attempt(json_t *v, struct console_attempt *a)
{
	json_t *n = json_object_get(v, "attempt"), *at = json_object_get(v, "at_ms"),
	       *ms = json_object_get(v, "ms");

	if (!json_is_object(v) || !json_is_integer(n) || !json_is_integer(at))
		return 0;
	a->attempt = (int)json_integer_value(n);
	a->at_ms = (int64_t)json_integer_value(at);
	a->took_ms = json_is_integer(ms) ? (int64_t)json_integer_value(ms) : -1;
	text(v, "error", a->error, sizeof(a->error));
	return 1;
}

/* Job j's history from hs, or kept from the previous dead list (see
 * DESIGN); n_prev entries in prev. */
static void apply_history(struct console_job *j, json_t *hs, const struct console_job *prev,
                          size_t n_prev)
{
	j->n_history = 0;
	if (!json_is_array(hs)) {
		for (size_t i = 0; i < n_prev; i++)
			if (prev[i].id == j->id && prev[i].attempts == j->attempts) {
				j->n_history = prev[i].n_history;
				memcpy(j->history, prev[i].history,
				       (size_t)prev[i].n_history * sizeof(j->history[0]));
				break;
			}
		return;
	}
	for (size_t i = 0; i < json_array_size(hs); i++) {
		struct console_attempt a;

		if (!read_attempt(json_array_get(hs, i), &a))
			continue;
		if (j->n_history == CONSOLE_ATTEMPTS_MAX) { /* keep the newest */
			memmove(j->history, j->history + 1,
			        (CONSOLE_ATTEMPTS_MAX - 1) * sizeof(j->history[0]));
			j->n_history--;
		}
		j->history[j->n_history++] = a;
	}
}

static int apply_state(struct console_mirror *mi, json_t *st)
{
	struct console_model *m = &mi->m;
	json_t *qs = json_object_get(st, "queues"), *ds = json_object_get(st, "dead"),
	       *cs = json_object_get(st, "campaigns");
	size_t n_prev;

	m->server_now_ms = num(st, "now_ms");
	m->day_early_ms = num(json_object_get(st, "day"), "early_ms");
	m->day_opens_ms = num(json_object_get(st, "day"), "opens_ms");
	m->day_closes_ms = num(json_object_get(st, "day"), "closes_ms");
	m->uptime_s = num(st, "uptime_s");
	m->donations_per_s = real(st, "donations_per_s", 0);
	m->donations_total = num(st, "donations_total");
	m->intake_depth = num(st, "intake_depth");
	m->ws_clients = num(st, "ws_clients");
	m->live_slow = (int)num(st, "live_slow");
	m->live_refusing = flag(st, "live_refusing");
	m->storage_failing_ms = num(st, "storage_failing_ms");
	m->synced = flag(st, "synced");
	m->n_queues = json_array_size(qs);
	for (size_t i = 0; i < m->n_queues; i++) {
		json_t *v = json_array_get(qs, i);
		struct console_queue *q = &m->queues[i];

		text(v, "name", q->name, sizeof(q->name));
		q->paused = flag(v, "paused");
		q->ready = num(v, "ready");
		q->running = num(v, "running");
		q->scheduled = num(v, "scheduled");
		q->dead = num(v, "dead");
		q->done = num(v, "done");
		q->failed = num(v, "failed");
		q->declined = num(v, "declined");
		q->done_per_s = real(v, "done_per_s", 0);
		/* 0: no job started in the window */
		q->latency_ms_p50 =
		    real(v, "latency_ms_p50", 0) > 0 ? real(v, "latency_ms_p50", 0) : -1;
		q->latency_ms_p99 =
		    real(v, "latency_ms_p99", 0) > 0 ? real(v, "latency_ms_p99", 0) : -1;
	}
	n_prev = m->n_dead;
	memcpy(mi->prev, m->dead, n_prev * sizeof(m->dead[0]));
	m->n_dead = json_array_size(ds);
	for (size_t i = 0; i < m->n_dead; i++) {
		json_t *v = json_array_get(ds, i);
		struct console_job *j = &m->dead[i];

		j->id = num(v, "id");
		j->donation_id = num(v, "donation_id");
		j->attempts = (int)num(v, "attempts");
		text(v, "queue", j->queue, sizeof(j->queue));
		text(v, "kind", j->kind, sizeof(j->kind));
		text(v, "last_error", j->last_error, sizeof(j->last_error));
		apply_history(j, json_object_get(v, "attempt_history"), mi->prev, n_prev);
	}
	apply_events(m, json_object_get(st, "events"));
	if (json_object_get(st, "shield"))
		apply_shield(&m->shield, json_object_get(st, "shield"));
	for (size_t i = 0; i < json_array_size(cs); i++) {
		json_t *v = json_array_get(cs, i);
		struct console_campaign *c = row(mi, json_string_value(json_object_get(v, "slug")));

		if (!c)
			return -ENOMEM;
		text(v, "name", c->name, sizeof(c->name));
		text(v, "currency", c->currency, sizeof(c->currency));
		text(v, "category", c->category, sizeof(c->category));
		text(v, "status", c->status, sizeof(c->status));
		c->goal_cents = num(v, "goal_cents");
		c->total_cents = num(v, "total_cents");
		c->raised_cents = num(v, "raised_cents");
		c->matched_cents = num(v, "matched_cents");
		c->bonus_cents = num(v, "bonus_cents");
		c->pending_cents = num(v, "pending_cents");
		c->donor_count = num(v, "donor_count");
		c->donation_count = num(v, "donation_count");
		c->per_min = real(v, "per_min", -1);
		c->paused_since_ms = num(v, "paused_since_ms");
		c->hour_gifts = num(v, "hour_gifts");
		c->hour_cents = num(v, "hour_cents");
	}
	return 0;
}

int console_mirror_apply(struct console_mirror *mi, const char *msg, size_t len, char *err,
                         size_t errcap)
{
	json_error_t je;
	json_t *root = json_loadb(msg, len, 0, &je);
	const char *type = json_string_value(json_object_get(root, "type"));
	int rc = 0;

	if (!root || !json_is_object(root) || !type) {
		rc = bad(err, errcap, "a message that is not a JSON object with a type");
	} else if (!strcmp(type, "hello")) {
		text(root, "server", mi->m.server, sizeof(mi->m.server));
		text(root, "who", mi->m.who, sizeof(mi->m.who));
		text(root, "role", mi->m.role, sizeof(mi->m.role));
		mi->m.alert_paused_min = alert_minutes(root);
	} else if (!strcmp(type, "state")) {
		rc = state_ok(root, err, errcap);
		if (!rc)
			rc = apply_state(mi, root);
	} else {
		rc = bad(err, errcap, "a message of an unknown type");
	}
	json_decref(root);
	return rc;
}

int console_mirror_copy(const struct console_mirror *mi, struct console_model *m)
{
	const struct console_model *s = &mi->m;
	struct console_campaign *cs =
	    realloc(m->campaigns, (s->n_campaigns ? s->n_campaigns : 1) * sizeof(*cs));

	if (!cs)
		return -ENOMEM;
	if (s->n_campaigns)
		memcpy(cs, s->campaigns, s->n_campaigns * sizeof(*cs));
	m->campaigns = cs;
	m->n_campaigns = s->n_campaigns;
	m->uptime_s = s->uptime_s;
	m->donations_per_s = s->donations_per_s;
	m->donations_total = s->donations_total;
	m->intake_depth = s->intake_depth;
	m->ws_clients = s->ws_clients;
	m->live_slow = s->live_slow;
	m->live_refusing = s->live_refusing;
	m->storage_failing_ms = s->storage_failing_ms;
	m->synced = s->synced;
	m->server_now_ms = s->server_now_ms;
	m->day_early_ms = s->day_early_ms;
	m->day_opens_ms = s->day_opens_ms;
	m->day_closes_ms = s->day_closes_ms;
	m->alert_paused_min = s->alert_paused_min;
	memcpy(m->who, s->who, sizeof(m->who));
	memcpy(m->role, s->role, sizeof(m->role));
	m->n_queues = s->n_queues;
	memcpy(m->queues, s->queues, sizeof(m->queues));
	m->n_dead = s->n_dead;
	memcpy(m->dead, s->dead, s->n_dead * sizeof(m->dead[0]));
	m->n_events = s->n_events;
	memcpy(m->events, s->events, s->n_events * sizeof(*m->events));
	m->shield = s->shield;
	return 0;
}
