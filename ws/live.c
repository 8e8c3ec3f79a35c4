/* ws/live.c - live campaign channels over the /live websocket.
 *
 * DESIGN: a channel per campaign holds the latest public state (copied from
 * the engine's cache) and a ring of the last LIVE_RING donation messages.
 * Subscribers are never queued anything: each keeps only the seq of the
 * state it last sent and its position in the ring. When the engine reports
 * a change, the channel refreshes its state at most once per coalescing
 * interval (a timer in the service loop) and asks each subscriber for a
 * WRITEABLE callback; each callback writes one message (snapshot, then
 * gifts, then the latest state). A slow reader that falls more than
 * LIVE_RING gifts behind skips ahead, so memory per reader is constant.
 * Engine events arrive through the server queue; live_watched() lets the
 * writer thread skip posting events for campaigns nobody watches.
 */
#include "ws/internal.h"
#include "base/log.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIVE_MAX_SUBS 8
#define LIVE_RING 32
#define LIVE_WATCH_SLOTS 65536
#define LIVE_RX_MAX 1024

struct live_pss;

struct channel {
	lws_sorted_usec_list_t sul; /* coalescing timer */
	struct server *s;
	int64_t campaign_id;
	char name[80]; /* "campaign:SLUG" */
	struct live_pss **subs;
	size_t n_subs, cap_subs;
	struct buf state; /* the campaign's public JSON */
	uint64_t state_seq;
	uint64_t last_flush_ns;
	int flush_pending;
	char *ring[LIVE_RING]; /* donation messages */
	size_t ring_len[LIVE_RING];
	uint64_t ring_head; /* messages ever pushed */
};

struct live_sub {
	struct channel *ch;
	uint64_t sent_seq;
	uint64_t tail;
	int need_snapshot;
};

struct live_pss {
	struct lws *wsi;
	struct live_sub subs[LIVE_MAX_SUBS];
	int n_subs;
	char err[200]; /* a pending error message, "" when none */
};

struct live {
	struct channel **by_id;
	size_t cap;
	struct channel *board; /* "leaderboard": top 10 by total */
	atomic_uint watch[LIVE_WATCH_SLOTS];
};

int live_new(struct server *s, struct live **out)
{
	struct live *l = calloc(1, sizeof(*l));

	*out = NULL;
	if (!l)
		return -ENOMEM;
	l->board = calloc(1, sizeof(*l->board));
	if (!l->board) {
		free(l);
		return -ENOMEM;
	}
	l->board->s = s;
	snprintf(l->board->name, sizeof(l->board->name), "leaderboard");
	*out = l;
	return 0;
}

static void channel_free(struct channel *ch)
{
	for (int k = 0; k < LIVE_RING; k++)
		free(ch->ring[k]);
	buf_fini(&ch->state);
	free(ch->subs);
	free(ch);
}

void live_stop(struct live *l)
{
	for (size_t i = 0; l && i < l->cap; i++)
		if (l->by_id[i])
			lws_sul_cancel(&l->by_id[i]->sul);
	if (l)
		lws_sul_cancel(&l->board->sul);
}

void live_free(struct live *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->cap; i++)
		if (l->by_id[i])
			channel_free(l->by_id[i]);
	channel_free(l->board);
	free(l->by_id);
	free(l);
}

int live_watched(struct live *l, int64_t campaign_id)
{
	/* Slot 0 counts leaderboard subscribers, who care about every campaign. */
	return atomic_load_explicit(&l->watch[(uint64_t)campaign_id % LIVE_WATCH_SLOTS],
	                            memory_order_relaxed) != 0 ||
	       atomic_load_explicit(&l->watch[0], memory_order_relaxed) != 0;
}

static struct channel *channel_get(struct live *l, int64_t id)
{
	return id > 0 && (size_t)id < l->cap ? l->by_id[id] : NULL;
}

static struct channel *channel_make(struct server *s, int64_t id, const char *slug)
{
	struct live *l = s->live;
	struct channel *ch;

	if ((size_t)id >= l->cap) {
		size_t cap = l->cap ? l->cap : 64;
		struct channel **v;

		while (cap <= (size_t)id)
			cap *= 2;
		v = realloc(l->by_id, cap * sizeof(*v));
		if (!v)
			return NULL;
		memset(v + l->cap, 0, (cap - l->cap) * sizeof(*v));
		l->by_id = v;
		l->cap = cap;
	}
	if (l->by_id[id])
		return l->by_id[id];
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return NULL;
	ch->s = s;
	ch->campaign_id = id;
	snprintf(ch->name, sizeof(ch->name), "campaign:%s", slug);
	l->by_id[id] = ch;
	return ch;
}

/* Ask for a WRITEABLE callback; a connection that cannot take one is
 * closing, and its CLOSED callback unsubscribes it. */
static void want_write(struct lws *wsi)
{
	if (lws_callback_on_writable(wsi) < 0)
		lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
}

static void ask_all(struct channel *ch)
{
	for (size_t i = 0; i < ch->n_subs; i++)
		want_write(ch->subs[i]->wsi);
}

static int refresh(struct channel *ch)
{
	ch->state.len = 0;
	if (!ch->campaign_id)
		return engine_leaderboard_json(ch->s->engine, ENGINE_BY_TOTAL, 10, &ch->state,
		                               &ch->state_seq);
	return engine_campaign_json_by_id(ch->s->engine, ch->campaign_id, &ch->state,
	                                  &ch->state_seq);
}

static void flush(struct channel *ch)
{
	ch->flush_pending = 0;
	ch->last_flush_ns = util_mono_ns();
	if (refresh(ch))
		return;
	ask_all(ch);
}

static void flush_cb(lws_sorted_usec_list_t *sul)
{
	flush(lws_container_of(sul, struct channel, sul));
}

static void schedule_flush(struct channel *ch)
{
	uint64_t now = util_mono_ns(), interval = (uint64_t)ch->s->cfg.coalesce_ms * 1000000u;

	if (ch->flush_pending)
		return;
	if (now - ch->last_flush_ns >= interval) {
		flush(ch);
		return;
	}
	ch->flush_pending = 1;
	lws_sul_schedule(ch->s->ctx, 0, &ch->sul, flush_cb,
	                 (lws_usec_t)((ch->last_flush_ns + interval - now) / 1000));
}

void live_event(struct server *s, struct xmsg *m)
{
	struct channel *ch = channel_get(s->live, m->campaign_id);
	struct buf b = {0};
	size_t slot;

	if (m->kind == XM_CHANGED && s->live->board->n_subs)
		schedule_flush(s->live->board);
	if (!ch || !ch->n_subs)
		return;
	if (m->kind == XM_CHANGED) {
		if (m->seq > ch->state_seq)
			schedule_flush(ch);
		return;
	}
	if (buf_printf(&b, "{\"type\":\"donation\",\"channel\":\"%s\",\"data\":", ch->name) ||
	    buf_append(&b, m->data, m->len) || buf_puts(&b, "}")) {
		buf_fini(&b);
		return;
	}
	slot = ch->ring_head % LIVE_RING;
	free(ch->ring[slot]);
	ch->ring[slot] = b.p;
	ch->ring_len[slot] = b.len;
	ch->ring_head++;
	ask_all(ch);
}

static void unsubscribe(struct server *s, struct live_pss *p, int idx)
{
	struct channel *ch = p->subs[idx].ch;

	for (size_t i = 0; i < ch->n_subs; i++)
		if (ch->subs[i] == p) {
			ch->subs[i] = ch->subs[--ch->n_subs];
			break;
		}
	atomic_fetch_sub(&s->live->watch[(uint64_t)ch->campaign_id % LIVE_WATCH_SLOTS], 1);
	p->subs[idx] = p->subs[--p->n_subs];
}

static void set_error(struct live_pss *p, const char *code, const char *msg)
{
	snprintf(p->err, sizeof(p->err), "{\"type\":\"error\",\"code\":\"%s\",\"message\":\"%s\"}",
	         code, msg);
	want_write(p->wsi);
}

static int find_sub(struct live_pss *p, const struct channel *ch)
{
	for (int i = 0; i < p->n_subs; i++)
		if (p->subs[i].ch == ch)
			return i;
	return -1;
}

static void subscribe(struct server *s, struct live_pss *p, struct channel *ch, json_t *since)
{
	struct live_sub *sub;
	int idx = find_sub(p, ch);

	if (idx < 0) {
		if (p->n_subs == LIVE_MAX_SUBS) {
			set_error(p, "too_many_subscriptions", "at most 8 channels per connection");
			return;
		}
		if (ch->n_subs == ch->cap_subs) {
			size_t cap = ch->cap_subs * 2 + 8;
			struct live_pss **v = realloc(ch->subs, cap * sizeof(*v));

			if (!v) {
				set_error(p, "internal", "out of memory");
				return;
			}
			ch->subs = v;
			ch->cap_subs = cap;
		}
		ch->subs[ch->n_subs++] = p;
		atomic_fetch_add(&s->live->watch[(uint64_t)ch->campaign_id % LIVE_WATCH_SLOTS], 1);
		idx = p->n_subs++;
		p->subs[idx].ch = ch;
	}
	sub = &p->subs[idx];
	if (refresh(ch)) {
		set_error(p, "campaign_not_found", "no campaign has this slug");
		unsubscribe(s, p, idx);
		return;
	}
	sub->tail = ch->ring_head;
	sub->need_snapshot =
	    !(json_is_integer(since) && (uint64_t)json_integer_value(since) >= ch->state_seq);
	sub->sent_seq = sub->need_snapshot ? 0 : ch->state_seq;
	want_write(p->wsi);
}

/* The channel a client names, created on first use; NULL with an error
 * set when there is none. */
static struct channel *lookup_channel(struct server *s, struct live_pss *p, const char *name,
                                      int create)
{
	const char *slug = name + 9;
	int64_t id;
	struct channel *ch;

	if (!strcmp(name, "leaderboard"))
		return s->live->board;
	if (strncmp(name, "campaign:", 9)) {
		set_error(p, "channel_not_found", "channels are campaign:SLUG and leaderboard");
		return NULL;
	}
	id = validate_slug(slug, strlen(slug)) ? engine_campaign_id(s->engine, slug, strlen(slug))
	                                       : TALLY_ENOCAMPAIGN;
	if (id < 0) {
		set_error(p, "campaign_not_found", "no campaign has this slug");
		return NULL;
	}
	ch = create ? channel_make(s, id, slug) : channel_get(s->live, id);
	if (!ch && create)
		set_error(p, "internal", "out of memory");
	return ch;
}

static void receive(struct server *s, struct live_pss *p, const char *in, size_t len)
{
	json_error_t jerr;
	json_t *msg = NULL, *since = NULL;
	const char *op = NULL, *channel = NULL;

	if (len > LIVE_RX_MAX || !(msg = json_loadb(in, len, JSON_REJECT_DUPLICATES, &jerr)) ||
	    json_unpack(msg, "{s:s, s:s, s?o}", "op", &op, "channel", &channel, "since", &since)) {
		set_error(
		    p, "bad_request",
		    "send {\\\"op\\\":\\\"subscribe\\\",\\\"channel\\\":\\\"campaign:SLUG\\\"}");
		json_decref(msg);
		return;
	}
	if (!strcmp(op, "subscribe")) {
		struct channel *ch = lookup_channel(s, p, channel, 1);

		if (ch)
			subscribe(s, p, ch, since);
	} else if (!strcmp(op, "unsubscribe")) {
		struct channel *ch = lookup_channel(s, p, channel, 0);
		int idx = ch ? find_sub(p, ch) : -1;

		if (idx >= 0)
			unsubscribe(s, p, idx);
	} else {
		set_error(p, "bad_request", "op must be subscribe or unsubscribe");
	}
	json_decref(msg);
}

/* Write one pending message. Returns 1 if more are pending, 0 if none, -1
 * on a failed write. */
static int write_one(struct server *s, struct live_pss *p)
{
	struct buf *b = &s->scratch;
	int more = 0, wrote = 0;

	b->len = 0;
	if (buf_reserve(b, LWS_PRE))
		return -1;
	b->len = LWS_PRE;
	if (p->err[0]) {
		buf_puts(b, p->err);
		p->err[0] = '\0';
		wrote = 1;
	}
	/* Order per subscription: snapshot, then gifts, then the latest state. */
	for (int i = 0; i < p->n_subs && !wrote; i++) {
		struct live_sub *sub = &p->subs[i];
		struct channel *ch = sub->ch;

		if (!sub->need_snapshot && sub->tail < ch->ring_head) {
			size_t slot;

			if (ch->ring_head - sub->tail > LIVE_RING)
				sub->tail = ch->ring_head - LIVE_RING;
			slot = sub->tail++ % LIVE_RING;
			if (buf_append(b, ch->ring[slot], ch->ring_len[slot]))
				return -1;
			wrote = 1;
		} else if (sub->need_snapshot || sub->sent_seq < ch->state_seq) {
			if (buf_printf(b,
			               "{\"type\":\"%s\",\"channel\":\"%s\",\"seq\":%llu,\"data\":",
			               sub->need_snapshot ? "snapshot" : "update", ch->name,
			               (unsigned long long)ch->state_seq) ||
			    buf_append(b, ch->state.p, ch->state.len) || buf_puts(b, "}"))
				return -1;
			sub->need_snapshot = 0;
			sub->sent_seq = ch->state_seq;
			wrote = 1;
		}
	}
	for (int i = 0; i < p->n_subs; i++) {
		struct live_sub *sub = &p->subs[i];

		more |= sub->need_snapshot || sub->sent_seq < sub->ch->state_seq ||
		        sub->tail < sub->ch->ring_head;
	}
	if (wrote && lws_write(p->wsi, (unsigned char *)b->p + LWS_PRE, b->len - LWS_PRE,
	                       LWS_WRITE_TEXT) < (int)(b->len - LWS_PRE))
		return -1;
	return more;
}

static int live_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
	struct live_pss *p = user;
	struct server *s = lws_context_user(lws_get_context(wsi));
	char uri[16];
	int rc;

	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) < 0 ||
		    strcmp(uri, "/live"))
			return -1;
		return 0;
	case LWS_CALLBACK_ESTABLISHED:
		memset(p, 0, sizeof(*p));
		p->wsi = wsi;
		atomic_fetch_add(&s->ws_clients, 1);
		return 0;
	case LWS_CALLBACK_RECEIVE:
		if (!lws_is_first_fragment(wsi) || !lws_is_final_fragment(wsi) ||
		    lws_remaining_packet_payload(wsi)) {
			set_error(p, "bad_request", "messages must be at most 1024 bytes");
			return 0;
		}
		receive(s, p, in, len);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (lws_send_pipe_choked(wsi)) {
			want_write(wsi);
			return 0;
		}
		rc = write_one(s, p);
		if (rc < 0)
			return -1;
		if (rc)
			want_write(wsi);
		return 0;
	case LWS_CALLBACK_CLOSED:
		while (p->n_subs)
			unsubscribe(s, p, p->n_subs - 1);
		atomic_fetch_sub(&s->ws_clients, 1);
		return 0;
	default:
		return 0;
	}
}

const struct lws_protocols live_protocol = {
    "tally.live.v1", live_callback, sizeof(struct live_pss), LIVE_RX_MAX, 0, NULL, 0,
};
