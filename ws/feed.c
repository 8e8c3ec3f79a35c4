/* ws/feed.c - what the live channels are fed: engine events turned into
 * channel messages, on the writer thread.
 *
 * DESIGN: the live loop shows only what it is sent here: a channel's full
 * public state with its seq (XM_STATE: a campaign after each change, the
 * leaderboard and the day's totals after each batch) and donation events
 * (XM_EVENT). It never reads the engine for an update, so the same
 * messages could come to a separate edge process from a message bus, and
 * a channel is always shown a state that agrees with its seq (the engine
 * publishes both together). Channels nobody watches are skipped
 * (live_watched), so a giving day with few viewers costs the writer
 * little. The copies are made here, off the live loop's thread.
 */
#include "ws/internal.h"
#include "base/log.h"

#include <stdlib.h>
#include <string.h>

struct xmsg *xmsg_new(enum xmsg_kind kind, int64_t campaign_id, const char *data, size_t len)
{
	struct xmsg *m = malloc(sizeof(*m) + len + 1);

	if (!m)
		return NULL;
	memset(m, 0, sizeof(*m));
	m->kind = kind;
	m->campaign_id = campaign_id;
	m->len = len;
	if (len)
		memcpy(m->data, data, len);
	m->data[len] = '\0';
	return m;
}

/* Post a channel's state rendered into b. */
static void post_state(struct server *s, int64_t id, const struct buf *b, uint64_t seq)
{
	struct xmsg *m = xmsg_new(XM_STATE, id, b->p, b->len);

	if (!m) {
		log_msg(LOG_WARN, "live.feed_lost", "channel %lld: out of memory", (long long)id);
		return;
	}
	m->seq = seq;
	if (live_post(s->live, m))
		log_msg(LOG_DEBUG, "live.feed_closed", "the live loop is stopping");
}

static void on_changed(void *ctx, int64_t campaign_id, uint64_t seq)
{
	struct server *s = ctx;
	struct buf b = {0};
	uint64_t now = 0;

	if (!live_watched(s->live, campaign_id))
		return;
	if (engine_campaign_json_by_id(s->engine, campaign_id, &b, &now) == 0) {
		/* Published together: the state read now is the one of seq. */
		(void)seq;
		post_state(s, campaign_id, &b, now);
	}
	buf_fini(&b);
}

static void on_event(void *ctx, int64_t campaign_id, const char *type, const char *json, size_t len)
{
	struct server *s = ctx;
	struct xmsg *m;
	struct buf b = {0};

	if (!live_watched(s->live, campaign_id))
		return;
	/* The event's type, a newline, its data (live.c take_event). */
	if (buf_puts(&b, type) || buf_puts(&b, "\n") || buf_append(&b, json, len)) {
		buf_fini(&b);
		return;
	}
	m = xmsg_new(XM_EVENT, campaign_id, b.p, b.len);
	buf_fini(&b);
	if (m && live_post(s->live, m))
		log_msg(LOG_DEBUG, "live.feed_closed", "the live loop is stopping");
}

/* After each batch: the channels that sum every campaign. */
static void on_published(void *ctx)
{
	struct server *s = ctx;
	struct buf b = {0};
	uint64_t seq = 0;

	if (live_watched(s->live, LIVE_BOARD_ID) &&
	    engine_leaderboard_json(s->engine, ENGINE_BY_TOTAL, 10, &b, &seq) == 0)
		post_state(s, LIVE_BOARD_ID, &b, seq);
	b.len = 0;
	if (live_watched(s->live, LIVE_DAY_ID) && engine_day_json(s->engine, &b, &seq) == 0)
		post_state(s, LIVE_DAY_ID, &b, seq);
	buf_fini(&b);
}

struct engine_listener feed_listener(struct server *s)
{
	struct engine_listener l = {on_changed, on_event, on_published, s};

	return l;
}
