/* ws/live.c - the live channels: the /live websocket on a loop of its own.
 *
 * DESIGN: viewers live on their own thread and libwebsockets context
 * (ws/uvloop.c: libuv, epoll), apart from the API loop, so that however
 * many watch, a donor's POST never waits behind them; the thread runs at a
 * lower priority (nice 10), so under overload the kernel serves donors
 * first. The loop is fed channel messages only (ws/feed.c): a channel keeps
 * the latest full state it was sent and a ring of the last LIVE_RING
 * donation events. Subscribers are never queued anything: each keeps the
 * seq of the state it last sent and its place in the ring. A channel that
 * changed (a state or an event) is flushed half an interval after the
 * change and at most once per coalescing interval (a uv timer per
 * channel), so a gift's "pending", "succeeded" and donation event go out
 * together; the update frame is built once for all its subscribers. A
 * viewer's frames (an error, a ping, its snapshot, then gifts, then the
 * latest state) are gathered and written whole, in one send(): the kernel's
 * cost per send, not per byte, is what fan-out pays. A reader that falls
 * more than LIVE_RING gifts behind skips ahead, so memory per viewer is
 * constant. The sockets are adopted raw and the websocket protocol is
 * tally's (ws/wsproto.c): lws's websocket role takes frames a client did
 * not mask, which RFC 6455 forbids. The upgrade is read (in parts, at most
 * LIVE_HEAD_MAX bytes) and answered with a 101 or an HTTP error; a viewer
 * is counted once its upgrade is taken. A client's message may come in
 * parts and frames, LIVE_RX_MAX bytes in all. A close is a frame like the
 * others, gathered alone: the connection ends at the client's answer, at
 * once after a fault in its stream, or after CLOSE_GRACE_MS. Limits, each
 * answered: donation events per channel in any second (the rest are
 * thinned away: the state's "recent" list still shows them),
 * subscriptions per connection (an error frame), connections per address
 * (close 4029), message size (close 4009), frames RFC 6455 forbids (close
 * 1002, or 1007 for text that is not UTF-8), silence (a ping after
 * ping_s, close 4001 after timeout_s), a reader that takes no data for
 * slow_s (dropped: it cannot be sent a close), viewers in all (the
 * acceptor answers 503). When tally stops, each viewer is sent 1001.
 */
#include "ws/internal.h"
#include "ws/addrcount.h"
#include "ws/console_feed.h"
#include "ws/live_msg.h"
#include "ws/pacer.h"
#include "ws/proxy.h"
#include "ws/uvloop.h"
#include "ws/wsproto.h"
#include "base/events.h"
#include "base/log.h"
#include "base/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define LIVE_MAX_SUBS 8
#define LIVE_RING 32
#define LIVE_WATCH_SLOTS 65536
#define LIVE_RX_MAX 1024
#define LIVE_HEAD_MAX 2048 /* an upgrade request's head at most */
#define LIVE_UPGRADE_S 10  /* to send the whole upgrade request */
#define LIVE_TX_MAX 65536
#define LIVE_WRITES_PER_CALL 4 /* writes per WRITEABLE callback at most */
#define LIVE_QUEUE_MAX 20000   /* channel messages waiting for the loop */
#define LIVE_BEHIND 2000       /* messages waiting at a tick: slow down */
#define INTAKE_BEHIND                                                                              \
	0                       /* donations queued while the writer's queue was                   \
	                         * half full since the last tick: slow down */
#define LIVE_SNDBUF (64 * 1024) /* a viewer's socket buffer: small and fixed */
#define ADDR_SLOTS 16384        /* addresses connected at once that are counted */
#define CLOSE_GRACE_MS 2000     /* a close frame not sent by then: dropped */
#define CONSOLE_MS 250          /* a staff console's state at most this often */
#define LIVE_NAME_MAX 640       /* a channel's name, escaped for JSON */

enum close_code {
	CLOSE_NO_PONG = 4001,    /* silent past the timeout */
	CLOSE_TOO_BIG = 4009,    /* a message over LIVE_RX_MAX bytes */
	CLOSE_PER_ADDR = 4029,   /* too many connections from this address */
	CLOSE_GOING_AWAY = 1001, /* tally stops */
	CLOSE_PROTOCOL = 1002,   /* a frame RFC 6455 forbids (unmasked, say) */
	CLOSE_EMPTY = 1005,      /* a close frame with no code (never sent as one) */
	CLOSE_NOT_UTF8 = 1007,   /* text that is not UTF-8 */
	CLOSE_INTERNAL = 1011    /* no memory to take a message */
};

struct live_pss;

struct channel {
	uv_timer_t timer; /* coalescing */
	struct live *l;
	int64_t id; /* campaign id, LIVE_BOARD_ID, LIVE_DAY_ID, or a board's
	             * (<= LIVE_BOARDS_ID0) */
	char *name; /* as frames show it: escaped for a JSON string */
	struct live_pss **subs;
	size_t n_subs, cap_subs;
	struct buf state;     /* the latest full state sent to the channel */
	uint64_t state_seq;   /* its seq */
	struct buf update;    /* LWS_PRE room, then the update payload of pub_seq's
	                       * state; the frame's header ends the room */
	size_t update_at;     /* where the whole update frame starts in update */
	uint64_t pub_seq;     /* the state subscribers are brought to */
	uint64_t pushed_head; /* ring_head at the last flush: events before it
	                       * were kept or thinned; after it, not decided */
	uint64_t last_flush_ns;
	uint64_t sweep_ns; /* how long the last flush took to write to everyone */
	int flush_pending;
	char *ring[LIVE_RING];       /* LWS_PRE room + a donation event's payload */
	char *ring_frame[LIVE_RING]; /* the whole frame, header first, in ring[] */
	size_t ring_len[LIVE_RING];  /* its length */
	uint64_t ring_head;          /* events ever pushed */
	int64_t *wall_ms;            /* when the last wall_per_s events were kept */
	uint64_t wall_n;             /* events ever kept (wall_ms[wall_n % wall_per_s] next) */
};

struct live_sub {
	struct channel *ch;
	uint64_t sent_seq;
	uint64_t tail;
	int need_snapshot;
};

struct live_pss {
	struct lws *wsi;
	struct live_pss *prev, *next; /* every viewer, for the tick */
	struct live_sub subs[LIVE_MAX_SUBS];
	int n_subs;
	int open;   /* its upgrade was taken: a viewer, counted */
	char *head; /* the upgrade request so far, when it came in parts */
	size_t head_len;
	char *reply; /* an HTTP answer due before anything (101, or a
	              * refusal); NULL when none */
	size_t reply_len;
	int reply_ends;       /* a refusal: the connection ends once it is sent */
	struct wsproto_rx rx; /* the client's frames */
	char err[200];        /* a pending error frame, "" when none */
	unsigned char pong[WSPROTO_CONTROL_MAX]; /* the payload of a pong due */
	size_t pong_len;
	int64_t last_rx_ms; /* anything from the peer, pongs included */
	int64_t waiting_ms; /* asked for a write and not had it since; 0 = not */
	int64_t closing_ms; /* a close frame is due since; 0 = not closing */
	int close_code;     /* to send (CLOSE_EMPTY: one with no code), 0 = none */
	int close_sent;     /* sent: the client's close, or the grace, ends it */
	int close_now;      /* end the connection once the close is sent */
	int peer_closed;    /* the client's close frame came: nothing more is read */
	const char *close_why;
	int want_ping, ping_out, want_pong;
	int64_t ping_ms;            /* when the outstanding ping was asked for */
	int in_callback;            /* writes wait for a WRITEABLE callback */
	char ip[ADDRCOUNT_IP_SIZE]; /* counted against this address; "" = not */
	/* A staff console (/live/console) instead of a viewer: its feed, and
	 * the frame of its next message (from cmsg_at; empty when none). */
	struct console_feed *feed;
	struct buf cmsg;
	size_t cmsg_at;
	struct live_pss *c_prev, *c_next; /* every console */
};

struct live {
	struct server *s;
	struct uvloop *loop;
	uv_loop_t *uv;
	struct live_config {
		int coalesce_ms, wall_per_s, ping_s, timeout_s, slow_s, per_address, nice;
		int limit_loopback;
		const struct proxies *trusted; /* read-only */
		long max_viewers;
	} cfg;
	struct channel **by_id; /* campaign channels, index = id */
	size_t cap;
	struct channel *board, *day;
	/* Leaderboards of one category and/or currency, made on subscribe
	 * for boards some campaign has (engine_board_exists), at most
	 * LIVE_BOARDS_MAX at once: a slot whose channel nobody watches is
	 * taken for a new one. The channels are the loop's; their keys are
	 * read by the writer (live_boards_watched) under boards_lock, which
	 * guards key[] and nothing else (a leaf). Each new board gets a new
	 * id, so a state sent for a board that has since left its slot never
	 * reaches the slot's new channel. */
	struct channel *boards[LIVE_BOARDS_MAX];
	pthread_mutex_t boards_lock;
	struct live_board_key key[LIVE_BOARDS_MAX]; /* id 0: slot unused */
	int64_t next_board_id;                      /* loop thread */
	struct live_pss *all;                       /* every viewer */
	struct buf tx;                              /* LWS_PRE room, then the frames of one write */
	struct addrcount *addrs;
	/* TLS: each connection's client address by descriptor, as the
	 * hand-over said (the socket is one end of a pair); NULL in plain
	 * HTTP, where the socket's peer is the client. */
	char (*peers)[ADDRCOUNT_IP_SIZE];
	unsigned n_peers;
	atomic_llong viewers;       /* open websockets (any thread reads) */
	atomic_llong subscriptions; /* any thread reads */
	atomic_ullong frames, thinned, dropped_slow, dropped_ping, refused_address, too_big;
	atomic_uint watch[LIVE_WATCH_SLOTS];              /* subscribers per campaign slot;
	                                                   * [0] board and day: every campaign */
	atomic_uint watch_board, watch_day, watch_boards; /* watch_boards: of all boards[] */
	int stopping;
	/* Degrading under load (loop thread): the coalescing interval is
	 * multiplied and the donation events divided by `slow` (ws/pacer.c);
	 * the acceptor reads `refusing` and `slow_now`. */
	struct pacer pacer;
	int slow;
	uint64_t crowded_seen; /* the writer's crowded count at the last tick */
	atomic_int refusing, slow_now;
	atomic_int resync; /* messages were dropped: read every state again */
	atomic_ullong dropped_msgs;
	struct live_pss *consoles; /* staff consoles, fed every CONSOLE_MS */
	uv_timer_t console_timer;  /* runs while there are consoles */
	int console_timer_made;
	atomic_llong n_consoles;
};

static const struct lws_protocols live_protocols[];
static void push(struct live *l, struct live_pss *p);
static void set_error(struct live_pss *p, const char *code, const char *msg);

static int64_t now_ms(void)
{
	return (int64_t)(util_mono_ns() / 1000000u);
}

/* ---- watching (any thread reads) ---- */

static atomic_uint *watch_of(struct live *l, int64_t id)
{
	if (id == LIVE_BOARD_ID)
		return &l->watch_board;
	if (id == LIVE_DAY_ID)
		return &l->watch_day;
	if (id <= LIVE_BOARDS_ID0)
		return &l->watch_boards;
	return &l->watch[(uint64_t)id % LIVE_WATCH_SLOTS];
}

int live_watched(struct live *l, int64_t id)
{
	if (!l)
		return 0;
	return atomic_load(watch_of(l, id)) != 0;
}

int64_t live_viewers(struct live *l)
{
	return atomic_load(&l->viewers);
}

int live_full(struct live *l)
{
	return (l->cfg.max_viewers > 0 && atomic_load(&l->viewers) >= l->cfg.max_viewers) ||
	       atomic_load(&l->refusing);
}

void live_get_stats(struct live *l, struct live_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->viewers = atomic_load(&l->viewers);
	out->slow = atomic_load(&l->slow_now);
	out->refusing = atomic_load(&l->refusing);
	out->subscriptions = atomic_load(&l->subscriptions);
	out->queue_depth = (int64_t)uvloop_depth(l->loop);
	out->frames = atomic_load(&l->frames);
	out->events_thinned = atomic_load(&l->thinned);
	out->dropped_slow = atomic_load(&l->dropped_slow);
	out->dropped_ping = atomic_load(&l->dropped_ping);
	out->refused_address = atomic_load(&l->refused_address);
	out->closed_too_big = atomic_load(&l->too_big);
	out->dropped_msgs = atomic_load(&l->dropped_msgs);
}

/* ---- channels (loop thread) ---- */

static void channel_free_cb(uv_handle_t *h)
{
	struct channel *ch = h->data;

	for (int k = 0; k < LIVE_RING; k++)
		free(ch->ring[k]);
	free(ch->wall_ms);
	buf_fini(&ch->state);
	buf_fini(&ch->update);
	free(ch->subs);
	free(ch->name);
	free(ch);
}

static void channel_close(struct channel *ch)
{
	if (!ch)
		return;
	uv_timer_stop(&ch->timer);
	uv_close((uv_handle_t *)&ch->timer, channel_free_cb);
}

static struct channel *channel_alloc(struct live *l, int64_t id, const char *name)
{
	struct channel *ch = calloc(1, sizeof(*ch));

	if (!ch)
		return NULL;
	ch->l = l;
	ch->id = id;
	ch->name = strdup(name);
	ch->wall_ms = calloc((size_t)l->cfg.wall_per_s, sizeof(*ch->wall_ms));
	if (!ch->name || !ch->wall_ms || uv_timer_init(l->uv, &ch->timer)) {
		free(ch->wall_ms);
		free(ch->name);
		free(ch);
		return NULL;
	}
	ch->timer.data = ch;
	return ch;
}

static struct channel *channel_get(struct live *l, int64_t id)
{
	if (id == LIVE_BOARD_ID)
		return l->board;
	if (id == LIVE_DAY_ID)
		return l->day;
	if (id <= LIVE_BOARDS_ID0) {
		for (int k = 0; k < LIVE_BOARDS_MAX; k++)
			if (l->boards[k] && l->boards[k]->id == id)
				return l->boards[k];
		return NULL;
	}
	return id > 0 && (size_t)id < l->cap ? l->by_id[id] : NULL;
}

/* ---- boards of a category or currency (loop thread; see struct live) ---- */

/* The board's channel name, escaped for JSON, into a malloc'd string. */
static char *board_name(const char *category, const char *currency)
{
	struct buf b = {0};
	int rc = buf_puts(&b, "leaderboard");

	if (currency[0])
		rc |= buf_printf(&b, ":currency:%s", currency);
	if (category[0]) {
		size_t at;

		rc |= buf_puts(&b, ":category:");
		at = b.len;
		rc |= buf_json_string(&b, category);
		if (!rc) { /* the string without its quotes */
			memmove(b.p + at, b.p + at + 1, b.len - at - 2);
			b.len -= 2;
			b.p[b.len] = '\0';
		}
	}
	if (rc || b.len >= LIVE_NAME_MAX) {
		buf_fini(&b);
		return NULL;
	}
	return b.p;
}

static int board_slot(struct live *l, const char *category, const char *currency)
{
	for (int k = 0; k < LIVE_BOARDS_MAX; k++)
		if (l->boards[k] && !strcmp(l->key[k].category, category) &&
		    !strcmp(l->key[k].currency, currency))
			return k;
	return -1;
}

/* The board's channel, made when create (NULL with an error set when it
 * cannot be: every slot watched, or no memory). */
static struct channel *board_channel(struct live *l, struct live_pss *p, const char *category,
                                     const char *currency, int create)
{
	int k = board_slot(l, category, currency);
	char *name;

	if (k >= 0 || !create)
		return k >= 0 ? l->boards[k] : NULL;
	for (k = 0; k < LIVE_BOARDS_MAX && l->boards[k] && l->boards[k]->n_subs; k++)
		;
	if (k == LIVE_BOARDS_MAX) {
		set_error(p, "too_many_channels", "too many leaderboard channels are watched");
		return NULL;
	}
	name = board_name(category, currency);
	if (name) {
		struct channel *ch = channel_alloc(l, l->next_board_id, name);

		free(name);
		if (ch) {
			channel_close(l->boards[k]);
			l->boards[k] = ch;
			pthread_mutex_lock(&l->boards_lock);
			memset(&l->key[k], 0, sizeof(l->key[k]));
			memcpy(l->key[k].category, category, strlen(category) + 1);
			memcpy(l->key[k].currency, currency, strlen(currency) + 1);
			l->key[k].id = l->next_board_id--;
			pthread_mutex_unlock(&l->boards_lock);
			return ch;
		}
	}
	set_error(p, "internal", "out of memory");
	return NULL;
}

/* A board's subscribers changed: the writer reads only watched keys. */
static void board_watchers(struct live *l, const struct channel *ch)
{
	for (int k = 0; k < LIVE_BOARDS_MAX; k++)
		if (l->boards[k] == ch) {
			pthread_mutex_lock(&l->boards_lock);
			l->key[k].watchers = ch->n_subs;
			pthread_mutex_unlock(&l->boards_lock);
		}
}

size_t live_boards_watched(struct live *l, struct live_board_key *out)
{
	size_t n = 0;

	if (!l || !atomic_load(&l->watch_boards))
		return 0;
	pthread_mutex_lock(&l->boards_lock);
	for (int k = 0; k < LIVE_BOARDS_MAX; k++)
		if (l->key[k].id && l->key[k].watchers)
			out[n++] = l->key[k];
	pthread_mutex_unlock(&l->boards_lock);
	return n;
}

static struct channel *channel_make(struct live *l, int64_t id, const char *slug)
{
	char name[80];

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
	if (!l->by_id[id]) {
		snprintf(name, sizeof(name), "campaign:%s", slug);
		l->by_id[id] = channel_alloc(l, id, name);
	}
	return l->by_id[id];
}

/* End p's connection soon: at once, dropping what lws holds for it, or
 * politely, once lws has sent that (the keep-alive timeout is the one
 * lws treats so: core-net/wsi-timeout.c, close.c). lws keeps deadlines in
 * a list whose libuv timer it sets again only after a socket event
 * (event-libs/libuv: its idle handle), and from a timer of ours none may
 * come for long: the loop is woken (lws_cancel_service, on its own
 * thread) so that the deadline is seen now. */
static void end_soon(struct live_pss *p, int politely)
{
	lws_set_timeout(p->wsi,
	                politely ? PENDING_TIMEOUT_HTTP_KEEPALIVE_IDLE : PENDING_TIMEOUT_CLOSE_SEND,
	                LWS_TO_KILL_ASYNC);
	lws_cancel_service(lws_get_context(p->wsi));
}

/* Ask for a WRITEABLE callback; a connection that cannot take one is
 * closing, and its CLOSED callback unsubscribes it. */
static void want_write(struct live_pss *p)
{
	if (!p->waiting_ms)
		p->waiting_ms = now_ms();
	if (lws_callback_on_writable(p->wsi) < 0)
		end_soon(p, 0);
}

/* Write the header of a whole unmasked server frame (FIN, opcode) into
 * the room before payload[0..len); the frame starts where it returns. */
_Static_assert(LWS_PRE >= 10, "a frame header fits in LWS_PRE");
static char *frame_head(char *payload, size_t len, unsigned char opcode)
{
	size_t n = len < 126 ? 2 : len < 65536 ? 4 : 10;
	unsigned char *h = (unsigned char *)payload - n;

	h[0] = (unsigned char)(0x80 | opcode);
	if (len < 126) {
		h[1] = (unsigned char)len;
	} else if (len < 65536) {
		h[1] = 126;
		h[2] = (unsigned char)(len >> 8);
		h[3] = (unsigned char)len;
	} else {
		h[1] = 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
	}
	return (char *)h;
}

/* Decide the donation events that came since the last flush: the wall
 * keeps at most wall_per_s (divided by slow) in any second, the newest of
 * them; the older ones are thinned away (the state's "recent" list still
 * shows them). Keeping the newest matters on a crowded channel: events
 * that waited in the loop's queue through a long sweep are the stalest.
 * Returns how many were kept. */
static uint64_t decide_events(struct live *l, struct channel *ch)
{
	int64_t now = now_ms();
	uint64_t cap = (uint64_t)(l->cfg.wall_per_s / l->slow), per = (uint64_t)l->cfg.wall_per_s;
	uint64_t fresh = ch->ring_head - ch->pushed_head, within = 0, keep;

	if (cap < 1)
		cap = 1;
	/* kept in the last second (wall_ms is in time order, newest last) */
	while (within < cap && within < ch->wall_n &&
	       now - ch->wall_ms[(ch->wall_n - within - 1) % per] < 1000)
		within++;
	keep = fresh < cap - within ? fresh : cap - within;
	if (keep > LIVE_RING)
		keep = LIVE_RING; /* what the ring holds */
	for (uint64_t h = ch->pushed_head; h < ch->ring_head - keep; h++) {
		size_t slot = h % LIVE_RING;

		if (ch->ring_head - h > LIVE_RING)
			continue; /* overwritten by a newer event already */
		free(ch->ring[slot]);
		ch->ring[slot] = ch->ring_frame[slot] = NULL;
		ch->ring_len[slot] = 0;
	}
	if (fresh > keep)
		atomic_fetch_add(&l->thinned, fresh - keep);
	for (uint64_t k = 0; k < keep; k++)
		ch->wall_ms[ch->wall_n++ % per] = now;
	ch->pushed_head = ch->ring_head;
	return keep;
}

/* Bring every subscriber to the channel's latest state and its new
 * donation events: the update frame is built once for all of them. */
static void flush(struct channel *ch)
{
	struct buf *u = &ch->update;
	uint64_t kept;

	ch->flush_pending = 0;
	ch->last_flush_ns = util_mono_ns();
	kept = decide_events(ch->l, ch);
	if (ch->state_seq > ch->pub_seq && ch->state.len) {
		u->len = 0;
		if (buf_reserve(u, LWS_PRE + ch->state.len + 128))
			return;
		u->len = LWS_PRE;
		if (buf_printf(u, "{\"type\":\"update\",\"channel\":\"%s\",\"seq\":%llu,\"data\":",
		               ch->name, (unsigned long long)ch->state_seq) ||
		    buf_append(u, ch->state.p, ch->state.len) || buf_puts(u, "}"))
			return;
		ch->update_at = (size_t)(frame_head(u->p + LWS_PRE, u->len - LWS_PRE, 0x1) - u->p);
		ch->pub_seq = ch->state_seq;
	} else if (!kept) {
		return;
	}
	for (size_t i = 0; i < ch->n_subs; i++)
		push(ch->l, ch->subs[i]);
	ch->sweep_ns = util_mono_ns() - ch->last_flush_ns;
}

static void flush_cb(uv_timer_t *t)
{
	flush(t->data);
}

/* Flush the channel soon: half a coalescing interval after the first
 * change (so a gift's "pending" and "succeeded", a few ms apart, and its
 * donation event make one write) and at most once per interval. A channel
 * whose last flush took half an interval or more to write to all its
 * viewers (thousands on one campaign) goes as soon as the interval allows:
 * its changes gathered during that sweep, and waiting longer would only
 * add to every gift's time to the screen. */
static void schedule_flush(struct channel *ch)
{
	uint64_t now = util_mono_ns(),
	         interval = (uint64_t)ch->l->cfg.coalesce_ms * 1000000u * (uint64_t)ch->l->slow;
	uint64_t due = now + interval / 2;

	if (ch->flush_pending)
		return;
	if (ch->sweep_ns >= interval / 2)
		due = now;
	if (ch->last_flush_ns + interval > due)
		due = ch->last_flush_ns + interval;
	ch->flush_pending = 1;
	if (uv_timer_start(&ch->timer, flush_cb, (due - now) / 1000000u + 1, 0))
		flush(ch);
}

/* A new full state for the channel (seq only ever grows). */
static void take_state(struct channel *ch, const char *data, size_t len, uint64_t seq)
{
	if (seq <= ch->state_seq && ch->state.len)
		return;
	/* A board of a category or currency is sent after every batch; most
	 * batches leave it as it was, and its viewers need no new frame. */
	if (ch->id <= LIVE_BOARDS_ID0 && ch->state.len == len && !memcmp(ch->state.p, data, len))
		return;
	ch->state.len = 0;
	if (buf_append(&ch->state, data, len))
		return;
	ch->state_seq = seq;
	if (ch->n_subs)
		schedule_flush(ch);
}

/* An event ("TYPE\nDATA", ws/feed.c): into the ring, for the next flush to
 * keep or thin (decide_events). */
static void take_event(struct channel *ch, const char *msg, size_t msg_len)
{
	const char *nl = memchr(msg, '\n', msg_len);
	const char *data = nl ? nl + 1 : msg;
	size_t len = nl ? msg_len - (size_t)(data - msg) : msg_len;
	int type_len = nl ? (int)(nl - msg) : 8;
	struct buf b = {0};
	size_t slot;

	if (buf_reserve(&b, LWS_PRE + len + 96 + (size_t)type_len)) {
		buf_fini(&b);
		return;
	}
	b.len = LWS_PRE;
	if (buf_printf(&b, "{\"type\":\"%.*s\",\"channel\":\"%s\",\"data\":", type_len,
	               nl ? msg : "donation", ch->name) ||
	    buf_append(&b, data, len) || buf_puts(&b, "}")) {
		buf_fini(&b);
		return;
	}
	slot = ch->ring_head % LIVE_RING;
	free(ch->ring[slot]);
	ch->ring[slot] = b.p;
	ch->ring_frame[slot] = frame_head(b.p + LWS_PRE, b.len - LWS_PRE, 0x1);
	ch->ring_len[slot] = (size_t)(b.p + b.len - ch->ring_frame[slot]);
	ch->ring_head++;
	schedule_flush(ch);
}

/* The loop's messages. */
static void on_msg(void *user, struct xmsg *m)
{
	struct live *l = user;
	struct channel *ch;

	if (m->kind == XM_ADOPT) {
		int size = LIVE_SNDBUF;

		if (l->peers && m->fd >= 0 && (unsigned)m->fd < l->n_peers)
			snprintf(l->peers[m->fd], sizeof(l->peers[m->fd]), "%s", m->data);

		/* A small fixed send buffer: a viewer that stops reading
		 * holds little kernel memory and is noticed sooner. */
		if (setsockopt(m->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)))
			log_msg(LOG_DEBUG, "live.sndbuf_failed", "%s", strerror(errno));
		/* Raw: lws reads and writes, the websocket is ours (wsproto.c).
		 * lws closes the socket itself when it cannot adopt it
		 * (core-net/adopt.c): it is not closed again here. */
		if (l->stopping)
			close(m->fd);
		else if (!lws_adopt_descriptor_vhost(uvloop_vhost(l->loop), LWS_ADOPT_SOCKET,
		                                     (lws_sock_file_fd_type){.sockfd = m->fd},
		                                     "tally.live.v1", NULL))
			log_msg(LOG_WARN, "live.adopt_failed", "a viewer's connection was dropped");
		return;
	}
	ch = channel_get(l, m->campaign_id);
	if (!ch || !ch->n_subs)
		return;
	if (m->kind == XM_STATE)
		take_state(ch, m->data, m->len, m->seq);
	else if (m->kind == XM_EVENT)
		take_event(ch, m->data, m->len);
}

int live_post(struct live *l, struct xmsg *m)
{
	/* A loop that has fallen this far behind gets no more channel
	 * messages until it has caught up; it then reads every state again
	 * (the states are the truth; the events it missed are thinned). */
	if (m->kind != XM_ADOPT && uvloop_depth(l->loop) >= LIVE_QUEUE_MAX) {
		atomic_fetch_add(&l->dropped_msgs, 1);
		atomic_store(&l->resync, 1);
		free(m);
		return 0;
	}
	return uvloop_post(l->loop, m);
}

/* ---- subscriptions (loop thread) ---- */

static void unsubscribe(struct live *l, struct live_pss *p, int idx)
{
	struct channel *ch = p->subs[idx].ch;

	for (size_t i = 0; i < ch->n_subs; i++)
		if (ch->subs[i] == p) {
			ch->subs[i] = ch->subs[--ch->n_subs];
			break;
		}
	atomic_fetch_sub(watch_of(l, ch->id), 1);
	atomic_fetch_sub(&l->subscriptions, 1);
	p->subs[idx] = p->subs[--p->n_subs];
	if (ch->id <= LIVE_BOARDS_ID0)
		board_watchers(l, ch);
}

static void set_error(struct live_pss *p, const char *code, const char *msg)
{
	snprintf(p->err, sizeof(p->err), "{\"type\":\"error\",\"code\":\"%s\",\"message\":\"%s\"}",
	         code, msg);
	want_write(p);
}

static void set_close(struct live_pss *p, int code, const char *why)
{
	if (p->close_code)
		return;
	p->close_code = code;
	p->close_why = why;
	p->closing_ms = now_ms();
	want_write(p);
}

static int find_sub(struct live_pss *p, const struct channel *ch)
{
	for (int i = 0; i < p->n_subs; i++)
		if (p->subs[i].ch == ch)
			return i;
	return -1;
}

/* A board's state, as feed.c renders it. */
static int board_state(struct live *l, const struct channel *ch, struct buf *b, uint64_t *seq)
{
	for (int k = 0; k < LIVE_BOARDS_MAX; k++)
		if (l->boards[k] == ch) {
			const struct live_board_key *key = &l->key[k]; /* the loop writes it */

			return live_board_json(l->s->engine, key, b, seq);
		}
	return TALLY_ENOCATEGORY;
}

/* Read a channel's state from the engine (a channel nobody watched had no
 * messages). Returns 0 or an error. */
static int fetch_state(struct live *l, struct channel *ch)
{
	struct buf b = {0};
	uint64_t seq = 0;
	int rc;

	if (ch->id == LIVE_BOARD_ID)
		rc = engine_leaderboard_json(l->s->engine, ENGINE_BY_TOTAL, 10, &b, &seq);
	else if (ch->id <= LIVE_BOARDS_ID0)
		rc = board_state(l, ch, &b, &seq);
	else if (ch->id == LIVE_DAY_ID)
		rc = engine_day_json(l->s->engine, &b, &seq);
	else
		rc = engine_campaign_json_by_id(l->s->engine, ch->id, &b, &seq);
	if (!rc && (seq > ch->state_seq || !ch->state.len)) {
		ch->state.len = 0;
		rc = buf_append(&ch->state, b.p, b.len);
		ch->state_seq = seq;
	}
	buf_fini(&b);
	return rc;
}

static void subscribe(struct live *l, struct live_pss *p, struct channel *ch,
                      const struct live_msg *m)
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
		/* Watched before the state is read: no change can slip
		 * between the read and the first message (feed.c). */
		if (ch->id <= LIVE_BOARDS_ID0)
			board_watchers(l, ch);
		atomic_fetch_add(watch_of(l, ch->id), 1);
		atomic_fetch_add(&l->subscriptions, 1);
		idx = p->n_subs++;
		p->subs[idx].ch = ch;
	}
	sub = &p->subs[idx];
	if (fetch_state(l, ch)) {
		if (ch->id <= LIVE_BOARDS_ID0)
			set_error(p, "category_not_found", "no campaign has this category");
		else
			set_error(p, "campaign_not_found", "no campaign has this slug");
		unsubscribe(l, p, idx);
		return;
	}
	if (!ch->pub_seq || ch->state_seq > ch->pub_seq) {
		/* Inside p's RECEIVE callback: p must not be written to now. */
		p->in_callback = 1;
		flush(ch);
		p->in_callback = 0;
	}
	sub->tail = ch->pushed_head;
	sub->need_snapshot = live_msg_needs_snapshot(m, ch->pub_seq);
	sub->sent_seq = sub->need_snapshot ? 0 : ch->pub_seq;
	want_write(p);
}

/* The channel m names, made on first use; NULL with an error set when
 * there is none. */
static struct channel *lookup_channel(struct live *l, struct live_pss *p, const struct live_msg *m,
                                      int create)
{
	struct channel *ch;
	int64_t id;

	if (m->channel == LIVE_MSG_BOARD)
		return l->board;
	if (m->channel == LIVE_MSG_DAY)
		return l->day;
	if (m->channel == LIVE_MSG_BOARD_OF) {
		/* Made only for a board some campaign has: bounded by them. */
		if (create) {
			int rc =
			    engine_board_exists(l->s->engine, m->category[0] ? m->category : NULL,
			                        m->currency[0] ? m->currency : NULL);

			if (rc == TALLY_ENOCATEGORY) {
				set_error(p, "category_not_found", "no campaign has this category");
				return NULL;
			}
			if (rc) {
				set_error(p, "currency_not_found",
				          "no campaign (of this category) uses this currency");
				return NULL;
			}
		}
		return board_channel(l, p, m->category, m->currency, create);
	}
	id = engine_campaign_id(l->s->engine, m->slug, strlen(m->slug));
	if (id < 0) {
		set_error(p, "campaign_not_found", "no campaign has this slug");
		return NULL;
	}
	ch = create ? channel_make(l, id, m->slug) : channel_get(l, id);
	if (!ch && create)
		set_error(p, "internal", "out of memory");
	return ch;
}

static void receive(struct live *l, struct live_pss *p, const char *in, size_t len)
{
	struct live_msg m;
	struct channel *ch;

	if (live_msg_parse(in, len, &m)) {
		set_error(p, m.err_code, m.err_message);
		return;
	}
	ch = lookup_channel(l, p, &m, m.op == LIVE_MSG_SUBSCRIBE);
	if (m.op == LIVE_MSG_SUBSCRIBE) {
		if (ch)
			subscribe(l, p, ch, &m);
	} else {
		int idx = ch ? find_sub(p, ch) : -1;

		if (idx >= 0)
			unsubscribe(l, p, idx);
	}
}

/* ---- writing (loop thread) ---- */

/* Append a whole frame to the write being gathered in l->tx. */
static int tx_frame(struct live *l, const char *frame, size_t len)
{
	atomic_fetch_add(&l->frames, 1);
	return buf_append(&l->tx, frame, len);
}

/* Append a frame whose payload is prefix, body[0..body_len), suffix. */
static int tx_build(struct live *l, unsigned char opcode, const char *prefix, const char *body,
                    size_t body_len, const char *suffix)
{
	struct buf *t = &l->tx;
	size_t np = strlen(prefix), ns = strlen(suffix), len = np + body_len + ns, at, hl;
	char *f;

	if (buf_reserve(t, 10 + len))
		return -1;
	at = t->len + 10; /* room for the longest header */
	memcpy(t->p + at, prefix, np);
	memcpy(t->p + at + np, body, body_len);
	memcpy(t->p + at + np + body_len, suffix, ns);
	f = frame_head(t->p + at, len, opcode);
	hl = (size_t)(t->p + at - f);
	memmove(t->p + t->len, f, hl + len);
	t->len += hl + len;
	atomic_fetch_add(&l->frames, 1);
	return 0;
}

static int pending(const struct live_pss *p)
{
	if (p->reply)
		return 1;
	if (p->reply_ends || p->close_sent)
		return 0;
	if (p->err[0] || p->close_code || p->want_ping || p->want_pong || p->cmsg.len)
		return 1;
	for (int i = 0; i < p->n_subs; i++) {
		const struct live_sub *sub = &p->subs[i];

		if (sub->need_snapshot || sub->sent_seq < sub->ch->pub_seq ||
		    sub->tail < sub->ch->pushed_head)
			return 1;
	}
	return 0;
}

/* Append p's close frame: its code (none for CLOSE_EMPTY) and reason. */
static int tx_close(struct live *l, struct live_pss *p)
{
	char payload[WSPROTO_CONTROL_MAX];
	size_t n = 0;

	if (p->close_code != CLOSE_EMPTY) {
		size_t why = strnlen(p->close_why, sizeof(payload) - 2);

		payload[0] = (char)(p->close_code >> 8);
		payload[1] = (char)(p->close_code & 0xff);
		memcpy(payload + 2, p->close_why, why);
		n = 2 + why;
	}
	return tx_build(l, 0x8, "", payload, n, "");
}

/* The day channel's snapshot, rendered afresh when its state is still the
 * one of pub_seq: its now_ms is the clock a countdown sets itself by, which
 * the state kept since the last change would show stale. Otherwise (or
 * without memory) the kept state. Returns 0 or -1. */
static int tx_day_snapshot(struct live *l, struct channel *ch, const char *head)
{
	struct buf b = {0};
	uint64_t seq = 0;
	int rc;

	if (engine_day_json(l->s->engine, &b, &seq) || seq != ch->pub_seq) {
		buf_fini(&b);
		return tx_build(l, 0x1, head, ch->update.p + ch->update.len - ch->state.len - 1,
		                ch->state.len, "}");
	}
	rc = tx_build(l, 0x1, head, b.p, b.len, "}");
	buf_fini(&b);
	return rc;
}

/* Gather what p is due into l->tx: the answer to its upgrade first; then
 * its close frame alone when it is closing; else an error, a pong, a
 * ping, then per subscription its snapshot, or its donation events and
 * the latest state, until about LIVE_TX_MAX bytes. Returns 0 or -1. */
static int gather(struct live *l, struct live_pss *p)
{
	if (p->reply) {
		if (buf_append(&l->tx, p->reply, p->reply_len))
			return -1;
		free(p->reply);
		p->reply = NULL;
		if (p->reply_ends)
			return 0;
	}
	if (p->close_code) {
		if (tx_close(l, p))
			return -1;
		p->close_sent = 1;
		return 0;
	}
	if (p->err[0]) {
		if (tx_build(l, 0x1, p->err, "", 0, ""))
			return -1;
		p->err[0] = '\0';
	}
	if (p->want_ping) {
		/* With a payload: lws does not report an empty pong. */
		if (tx_build(l, 0x9, "tally", "", 0, ""))
			return -1;
		p->want_ping = 0;
		p->ping_out = 1;
	}
	if (p->want_pong) {
		if (tx_build(l, 0xA, "", (const char *)p->pong, p->pong_len, ""))
			return -1;
		p->want_pong = 0;
	}
	if (p->cmsg.len) {
		if (tx_frame(l, p->cmsg.p + p->cmsg_at, p->cmsg.len - p->cmsg_at))
			return -1;
		p->cmsg.len = 0;
	}
	for (int i = 0; i < p->n_subs && l->tx.len < LIVE_TX_MAX; i++) {
		struct live_sub *sub = &p->subs[i];
		struct channel *ch = sub->ch;

		if (sub->need_snapshot) {
			char head[LIVE_NAME_MAX + 80];

			if (!ch->pub_seq)
				continue; /* nothing to show yet */
			snprintf(head, sizeof(head),
			         "{\"type\":\"snapshot\",\"channel\":\"%s\",\"seq\":%llu,\"data\":",
			         ch->name, (unsigned long long)ch->pub_seq);
			/* pub_seq's state ends the update frame. */
			if (ch == l->day
			        ? tx_day_snapshot(l, ch, head)
			        : tx_build(l, 0x1, head,
			                   ch->update.p + ch->update.len - ch->state.len - 1,
			                   ch->state.len, "}"))
				return -1;
			sub->need_snapshot = 0;
			sub->sent_seq = ch->pub_seq;
			sub->tail = ch->pushed_head;
			continue;
		}
		if (ch->ring_head - sub->tail > LIVE_RING)
			sub->tail = ch->ring_head - LIVE_RING; /* it skips ahead */
		for (; sub->tail < ch->pushed_head && l->tx.len < LIVE_TX_MAX; sub->tail++) {
			size_t slot = sub->tail % LIVE_RING;

			if (ch->ring_len[slot] &&
			    tx_frame(l, ch->ring_frame[slot], ch->ring_len[slot]))
				return -1;
		}
		if (sub->sent_seq < ch->pub_seq && l->tx.len < LIVE_TX_MAX) {
			sub->sent_seq = ch->pub_seq;
			if (tx_frame(l, ch->update.p + ch->update_at,
			             ch->update.len - ch->update_at))
				return -1;
		}
	}
	return 0;
}

/* One write of what p is due. Returns 0, or -1 to close the connection. */
static int write_some(struct live *l, struct live_pss *p)
{
	struct buf *t = &l->tx;

	t->len = 0;
	if (buf_reserve(t, LWS_PRE + 1024))
		return -1;
	t->len = LWS_PRE;
	if (gather(l, p))
		return -1;
	if (t->len == LWS_PRE)
		return 0;
	/* The frames are whole: lws sends them as they are, in one send(),
	 * and keeps what the socket did not take. */
	if (lws_write(p->wsi, (unsigned char *)t->p + LWS_PRE, t->len - LWS_PRE, LWS_WRITE_RAW) < 0)
		return -1;
	if (p->reply_ends || (p->close_sent && p->close_now))
		end_soon(p, 1); /* the last words */
	return 0;
}

/* Write while each write goes out whole, at most LIVE_WRITES_PER_CALL
 * times: lws keeps a partly sent write in its buflist and queues what is
 * written after it behind (lib/core-net/output.c), and we stop as soon as
 * something stays buffered, so a viewer owes at most one write. Returns 0
 * or -1 (the connection must close). */
static int drain(struct live *l, struct live_pss *p)
{
	for (int n = 0; n < LIVE_WRITES_PER_CALL && pending(p); n++) {
		if (write_some(l, p))
			return -1;
		if (lws_partial_buffered(p->wsi))
			break;
	}
	if (pending(p))
		want_write(p);
	return 0;
}

/* New frames for p, outside its callbacks (a channel flushed, an event
 * came). A viewer that is keeping up is written to at once: asking for a
 * WRITEABLE callback costs libuv two epoll_ctl calls to turn POLLOUT on
 * and two to turn it off, several times the send itself. One that is
 * behind (a callback asked for, something buffered, a close due) waits
 * for its callback, as lws wants. */
static void push(struct live *l, struct live_pss *p)
{
	if (p->close_sent || (p->closing_ms && !p->close_code))
		return; /* dropped for not reading: nothing more goes to it */
	if (p->waiting_ms || p->in_callback || p->close_code || p->err[0] ||
	    lws_partial_buffered(p->wsi)) {
		want_write(p);
		return;
	}
	if (drain(l, p))
		end_soon(p, 0);
}

/* ---- connections (loop thread) ---- */

/* Count the connection against its address. Returns 0, or -1 when the
 * address has its fill. */
static int count_address(struct live *l, struct live_pss *p, const struct wsproto_upgrade *up)
{
	char peer[ADDRCOUNT_IP_SIZE] = "", ip[ADDRCOUNT_IP_SIZE];
	int rc, fd;

	p->ip[0] = '\0';
	fd = (int)lws_get_socket_fd(p->wsi);
	if (l->peers && fd >= 0 && (unsigned)fd < l->n_peers && l->peers[fd][0])
		memcpy(peer, l->peers[fd], sizeof(peer)); /* TLS: as handed over */
	else if (!lws_get_peer_simple(p->wsi, peer, sizeof(peer)))
		return 0;
	/* Behind a trusted proxy, the client it names (ws/proxy.c). */
	proxies_client(l->cfg.trusted, peer,
	               up->forwarded[0] && !up->forwarded_bad ? up->forwarded : NULL, ip,
	               sizeof(ip));
	if (util_is_loopback(ip) && !l->cfg.limit_loopback)
		return 0;
	rc = addrcount_add(l->addrs, ip, l->cfg.per_address);
	if (rc == -EBUSY)
		return -1;
	if (rc == 0)
		memcpy(p->ip, ip, sizeof(p->ip));
	return 0; /* -ENOSPC: too many addresses to count; not limited */
}

static void uncount_address(struct live *l, struct live_pss *p)
{
	if (p->ip[0])
		addrcount_remove(l->addrs, p->ip);
	p->ip[0] = '\0';
}

static void link_pss(struct live *l, struct live_pss *p)
{
	p->prev = NULL;
	p->next = l->all;
	if (l->all)
		l->all->prev = p;
	l->all = p;
}

static void unlink_pss(struct live *l, struct live_pss *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else if (l->all == p)
		l->all = p->next;
	if (p->next)
		p->next->prev = p->prev;
	p->prev = p->next = NULL;
}

/* ---- the websocket protocol (loop thread): ws/wsproto.c reads it ---- */

/* An HTTP answer to the upgrade, due before anything else. Returns 0 or
 * -ENOMEM. */
static int set_reply(struct live_pss *p, const char *text, size_t len)
{
	char *r = malloc(len);

	if (!r)
		return -ENOMEM;
	memcpy(r, text, len);
	free(p->reply);
	p->reply = r;
	p->reply_len = len;
	want_write(p);
	return 0;
}

/* Refuse the upgrade: an HTTP error, then the connection ends. */
static void refuse(struct live_pss *p, int status, const char *why)
{
	const char *reason = status == 426   ? "Upgrade Required"
	                     : status == 431 ? "Request Header Fields Too Large"
	                     : status == 401 ? "Unauthorized"
	                     : status == 403 ? "Forbidden"
	                                     : "Bad Request",
	           *code = status == 426   ? "upgrade_required"
	                   : status == 431 ? "headers_too_large"
	                   : status == 401 ? "unauthorized"
	                   : status == 403 ? "forbidden"
	                                   : "bad_request";
	char body[256], text[512];
	int nb = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
	                  code, why),
	    n = snprintf(text, sizeof(text),
	                 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
	                 "Content-Length: %d\r\nConnection: close\r\n%s\r\n%s",
	                 status, reason, nb, status == 426 ? "Sec-WebSocket-Version: 13\r\n" : "",
	                 body);

	free(p->head);
	p->head = NULL;
	p->head_len = 0;
	p->reply_ends = 1;
	if (nb < 0 || n < 0 || (size_t)n >= sizeof(text) || set_reply(p, text, (size_t)n))
		end_soon(p, 0);
}

/* The upgrade is taken: the head is done with, frames are read from now
 * on, and p joins the connections the tick looks after. */
static void opened(struct live *l, struct live_pss *p)
{
	free(p->head);
	p->head = NULL;
	p->head_len = 0;
	p->open = 1;
	p->last_rx_ms = now_ms();
	p->rx.max = LIVE_RX_MAX;
	lws_set_timeout(p->wsi, NO_PENDING_TIMEOUT, 0);
	link_pss(l, p);
}

/* The upgrade is taken: p is a viewer. */
static void open_viewer(struct live *l, struct live_pss *p, const struct wsproto_upgrade *up)
{
	char text[256];
	int n = snprintf(text, sizeof(text),
	                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
	                 "Sec-WebSocket-Protocol: tally.live.v1\r\n\r\n",
	                 up->accept);

	opened(l, p);
	atomic_fetch_add(&l->viewers, 1);
	if (n < 0 || (size_t)n >= sizeof(text) || set_reply(p, text, (size_t)n)) {
		end_soon(p, 0);
		return;
	}
	if (count_address(l, p, up)) {
		atomic_fetch_add(&l->refused_address, 1);
		set_close(p, CLOSE_PER_ADDR, "too many connections from this address");
	}
}

/* ---- staff consoles (loop thread) ---- */

/* The staff token a console presents ("Bearer TOKEN"): any valid one (a
 * viewer at least), from the engine's token table in memory. Returns 1
 * with who it is in *who, else 0. */
static int console_token_ok(const struct live *l, const char *authorization,
                            struct staff_identity *who)
{
	if (strncasecmp(authorization, "Bearer ", 7))
		return 0;
	return !engine_staff_auth(l->s->engine, authorization + 7, strlen(authorization + 7),
	                          who) &&
	       who->role >= STAFF_VIEWER;
}

/* A browser names the page that opens a websocket in Origin: only a page
 * of this server may open a console. A client that is not a browser sends
 * none. */
static int console_origin_ok(const struct wsproto_upgrade *up)
{
	const char *o = up->origin;

	if (!o[0])
		return 1;
	if (!strncmp(o, "http://", 7))
		o += 7;
	else if (!strncmp(o, "https://", 8))
		o += 8;
	else
		return 0;
	return up->host[0] && !strcasecmp(o, up->host);
}

/* Frame the feed's next message into p->cmsg, unless one is still due or
 * the socket holds a write. Returns 0 or -ENOMEM. */
static int console_next(struct live_pss *p)
{
	size_t len;
	char *f;

	if (p->cmsg.len || p->close_code || lws_partial_buffered(p->wsi))
		return 0;
	if (buf_reserve(&p->cmsg, 4096))
		return -ENOMEM;
	p->cmsg.len = 10; /* room for the longest frame header */
	if (console_feed_next(p->feed, &p->cmsg)) {
		p->cmsg.len = 0;
		return -ENOMEM;
	}
	len = p->cmsg.len - 10;
	f = frame_head(p->cmsg.p + 10, len, 0x1);
	p->cmsg_at = (size_t)(f - p->cmsg.p);
	return 0;
}

static void console_tick(uv_timer_t *t)
{
	struct live *l = t->data;

	for (struct live_pss *p = l->consoles; p; p = p->c_next) {
		if (console_next(p))
			set_close(p, CLOSE_INTERNAL, "no memory for the console's state");
		push(l, p);
	}
}

/* The upgrade to /live/console is taken: p is a console. */
static void open_console(struct live *l, struct live_pss *p, const struct wsproto_upgrade *up)
{
	struct staff_identity who;
	char text[256];
	int n = snprintf(text, sizeof(text),
	                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
	                 "Sec-WebSocket-Protocol: tally.console.v1\r\n\r\n",
	                 up->accept);

	if (!console_token_ok(l, up->authorization, &who)) {
		refuse(p, 401, "a console needs a staff token: Authorization: Bearer TOKEN");
		return;
	}
	if (!console_origin_ok(up)) {
		refuse(p, 403, "a console may be opened only from this server's own pages");
		return;
	}
	if (!l->console_timer_made) {
		if (uv_timer_init(l->uv, &l->console_timer)) {
			refuse(p, 400, "cannot time the console's feed");
			return;
		}
		l->console_timer.data = l;
		l->console_timer_made = 1;
	}
	if (console_feed_new(l->s, who.name, staff_role_names[who.role], 0, &p->feed)) {
		refuse(p, 400, "out of memory");
		return;
	}
	opened(l, p);
	p->c_prev = NULL;
	p->c_next = l->consoles;
	if (l->consoles)
		l->consoles->c_prev = p;
	l->consoles = p;
	atomic_fetch_add(&l->n_consoles, 1);
	if (!uv_is_active((uv_handle_t *)&l->console_timer) &&
	    uv_timer_start(&l->console_timer, console_tick, 0, CONSOLE_MS))
		log_msg(LOG_WARN, "live.console_timer", "cannot start the console's timer");
	if (n < 0 || (size_t)n >= sizeof(text) || set_reply(p, text, (size_t)n))
		end_soon(p, 0);
}

static void close_console(struct live *l, struct live_pss *p)
{
	if (p->c_prev)
		p->c_prev->c_next = p->c_next;
	else if (l->consoles == p)
		l->consoles = p->c_next;
	if (p->c_next)
		p->c_next->c_prev = p->c_prev;
	p->c_prev = p->c_next = NULL;
	console_feed_free(p->feed);
	p->feed = NULL;
	buf_fini(&p->cmsg);
	unlink_pss(l, p);
	atomic_fetch_sub(&l->n_consoles, 1);
	if (!l->consoles && l->console_timer_made)
		uv_timer_stop(&l->console_timer);
}

/* Read the upgrade request from in[0..len) (after what came before).
 * Returns how many bytes of in it took when it is whole and taken (the
 * rest are frames), or -1 when no frames follow (it is not whole yet, or
 * it was refused). */
static long take_upgrade(struct live *l, struct live_pss *p, const char *in, size_t len)
{
	struct wsproto_upgrade up;
	size_t before = p->head_len;
	const char *req = in;
	size_t req_len = len;
	int rc, console;

	if (before) {
		size_t n = len < LIVE_HEAD_MAX - before ? len : LIVE_HEAD_MAX - before;

		memcpy(p->head + before, in, n);
		p->head_len += n;
		req = p->head;
		req_len = p->head_len;
	}
	console = wsproto_gets(req, req_len, "/live/console");
	rc = wsproto_upgrade(req, req_len, LIVE_HEAD_MAX, console ? "/live/console" : "/live",
	                     console ? "tally.console.v1" : "tally.live.v1", &up);
	if (rc == -EAGAIN) {
		/* Not whole, and shorter than LIVE_HEAD_MAX (else 431). */
		if (!before) {
			if (!(p->head = malloc(LIVE_HEAD_MAX))) {
				refuse(p, 400, "out of memory");
				return -1;
			}
			memcpy(p->head, in, len);
			p->head_len = len;
		}
		return -1;
	}
	if (rc) {
		refuse(p, up.status, up.why);
		return -1;
	}
	if (console)
		open_console(l, p, &up);
	else
		open_viewer(l, p, &up);
	if (!p->open)
		return -1; /* refused */
	return (long)(up.used - before);
}

struct rx_ctx {
	struct live *l;
	struct live_pss *p;
};

static int on_message(void *user, const char *msg, size_t len, int binary)
{
	struct rx_ctx *c = user;

	(void)binary;                         /* JSON either way */
	if (!c->p->close_code && !c->p->feed) /* a console's messages are not read */
		receive(c->l, c->p, msg, len);
	return 0;
}

static int on_ping(void *user, const unsigned char *payload, size_t len)
{
	struct live_pss *p = ((struct rx_ctx *)user)->p;

	if (!p->close_code) {
		memcpy(p->pong, payload, len); /* the latest ping is answered */
		p->pong_len = len;
		p->want_pong = 1;
		want_write(p);
	}
	return 0;
}

static int on_pong(void *user)
{
	(void)user; /* a sign of life, as any byte is */
	return 0;
}

/* The client's close: the answer to ours ends the connection; else it
 * is answered with its own code (ours, if one is already due) and the
 * connection ends once that is sent. Nothing after it is read. */
static int on_close(void *user, int code, const char *reason, size_t len)
{
	struct live_pss *p = ((struct rx_ctx *)user)->p;

	(void)reason;
	(void)len;
	if (p->close_sent)
		return -ECONNRESET;
	p->peer_closed = 1;
	p->close_now = 1;
	set_close(p, code ? code : CLOSE_EMPTY, "");
	return -ESHUTDOWN;
}

static const struct wsproto_sink live_sink = {on_message, on_ping, on_pong, on_close};

/* Bytes from the client: the upgrade, then frames. Returns 0, or -1 to
 * end the connection. */
static int take_bytes(struct live *l, struct live_pss *p, const unsigned char *in, size_t len)
{
	struct rx_ctx c = {l, p};
	long used = 0;
	int rc;

	if (!p->open) {
		if (p->reply_ends)
			return 0; /* refused: the rest is not read */
		used = take_upgrade(l, p, (const char *)in, len);
		if (used < 0)
			return 0;
	}
	p->last_rx_ms = now_ms();
	p->ping_out = 0;
	if (p->peer_closed || p->rx.broken)
		return 0;
	rc = wsproto_rx_feed(&p->rx, in + used, len - (size_t)used, &live_sink, &c);
	switch (rc) {
	case 0:
	case -ESHUTDOWN:
		return 0;
	case -ECONNRESET:
		return -1; /* the client answered our close: done */
	case -EMSGSIZE:
		/* The stream stays readable: the client's close is seen. */
		atomic_fetch_add(&l->too_big, 1);
		set_close(p, CLOSE_TOO_BIG, "messages are at most 1024 bytes");
		return 0;
	default:
		/* The stream cannot be read on: close at once. */
		set_close(p,
		          rc == -EPROTO   ? CLOSE_PROTOCOL
		          : rc == -EILSEQ ? CLOSE_NOT_UTF8
		                          : CLOSE_INTERNAL,
		          p->rx.why ? p->rx.why : "cannot read the stream");
		p->close_now = 1;
		return 0;
	}
}

static int live_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
	struct live_pss *p = user;
	struct live *l = lws_context_user(lws_get_context(wsi));

	switch (reason) {
	case LWS_CALLBACK_RAW_ADOPT:
		memset(p, 0, sizeof(*p));
		p->wsi = wsi;
		lws_set_timeout(wsi, PENDING_TIMEOUT_HOLDING_AH, LIVE_UPGRADE_S);
		return 0;
	case LWS_CALLBACK_RAW_RX:
		return take_bytes(l, p, in, len);
	case LWS_CALLBACK_RAW_WRITEABLE:
		p->waiting_ms = 0;
		if (lws_send_pipe_choked(wsi)) {
			want_write(p);
			return 0;
		}
		return drain(l, p);
	case LWS_CALLBACK_RAW_CLOSE:
		if (!p)
			return 0;
		free(p->head);
		free(p->reply);
		p->head = p->reply = NULL;
		wsproto_rx_fini(&p->rx);
		/* Refused, or gone before its upgrade: never counted. */
		if (!p->open)
			return 0;
		if (p->feed) {
			close_console(l, p);
			return 0;
		}
		while (p->n_subs)
			unsubscribe(l, p, p->n_subs - 1);
		uncount_address(l, p);
		unlink_pss(l, p);
		atomic_fetch_sub(&l->viewers, 1);
		return 0;
	default:
		return 0;
	}
}

/* The sockets are adopted raw (on_msg): the protocol is ours. */
static const struct lws_protocols live_protocols[] = {
    /* tx_packet_size: what lws sends at most per send() (core-net/
     * output.c); left 0 it would be rx_buffer_size, or 4 KiB. */
    {"tally.live.v1", live_callback, sizeof(struct live_pss), 0, 0, NULL, LIVE_TX_MAX},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Once a second: pings, silent viewers, readers that take no data. */
/* Read the state of every watched channel again (after dropped messages). */
static void resync(struct live *l)
{
	struct channel *extra[2] = {l->board, l->day};

	for (size_t i = 0; i < l->cap + 2 + LIVE_BOARDS_MAX; i++) {
		struct channel *ch = i < l->cap       ? l->by_id[i]
		                     : i < l->cap + 2 ? extra[i - l->cap]
		                                      : l->boards[i - l->cap - 2];

		if (ch && ch->n_subs && fetch_state(l, ch) == 0 && ch->state_seq > ch->pub_seq)
			schedule_flush(ch);
	}
}

/* Once a second: slow the channels down while channel messages pile up
 * (the loop is not keeping up) or donations wait for the writer, speed
 * them up again after three calm seconds, refuse new viewers while they
 * are as slow as they go (ws/pacer.c). A crowded channel's own fan-out
 * makes flushes late without the loop falling behind, so the queues are
 * the signal, not the lateness. */
static void pace(struct live *l)
{
	struct engine_stats es;
	int dropped = atomic_exchange(&l->resync, 0), was_slow = l->slow,
	    was_refusing = atomic_load(&l->refusing), refusing;

	engine_get_stats(l->s->engine, &es);
	l->slow = pacer_tick(&l->pacer, (int64_t)uvloop_depth(l->loop),
	                     (int64_t)(es.commits.crowded - l->crowded_seen), dropped);
	l->crowded_seen = es.commits.crowded;
	refusing = pacer_refusing(&l->pacer);
	atomic_store(&l->slow_now, l->slow);
	atomic_store(&l->refusing, refusing);
	/* On-call sees when viewers start and stop giving way. */
	if (was_slow == 1 && l->slow > 1)
		events_note("overload", NULL, "viewers slowed down for the donors");
	else if (was_slow > 1 && l->slow == 1)
		events_note("overload", NULL, "viewers back to full speed");
	if (refusing != was_refusing)
		events_note("overload", NULL, "%s",
		            refusing ? "new viewers refused (503 live_full)"
		                     : "new viewers taken again");
	if (dropped)
		resync(l);
}

static void on_tick(void *user, uint64_t now_ns)
{
	struct live *l = user;
	int64_t now = (int64_t)(now_ns / 1000000u), ping_ms = (int64_t)l->cfg.ping_s * 1000,
	        timeout_ms = (int64_t)l->cfg.timeout_s * 1000,
	        slow_ms = (int64_t)l->cfg.slow_s * 1000;

	pace(l);
	for (struct live_pss *p = l->all; p; p = p->next) {
		if (p->closing_ms && now - p->closing_ms > CLOSE_GRACE_MS) {
			end_soon(p, 0);
		} else if (p->waiting_ms && !p->closing_ms && now - p->waiting_ms > slow_ms) {
			/* It takes no data: it cannot be sent a close either. */
			atomic_fetch_add(&l->dropped_slow, 1);
			p->waiting_ms = 0;
			p->closing_ms = now;
			end_soon(p, 0);
		} else if (!p->close_code && !p->ping_out && now - p->last_rx_ms > ping_ms) {
			p->want_ping = 1;
			p->ping_ms = now;
			want_write(p);
		} else if (!p->close_code && p->ping_out && now - p->last_rx_ms > timeout_ms &&
		           now - p->ping_ms >= 1000) {
			/* Silent past the timeout, and pinged a second ago at
			 * least: nobody is there. */
			atomic_fetch_add(&l->dropped_ping, 1);
			set_close(p, CLOSE_NO_PONG, "no pong");
		}
	}
}

static void on_stop(void *user)
{
	struct live *l = user;

	l->stopping = 1;
	/* Each viewer is sent its close (1001) as far as its socket takes
	 * it now; the end of the context closes the sockets. */
	for (struct live_pss *p = l->all; p; p = p->next) {
		set_close(p, CLOSE_GOING_AWAY, "tally stops");
		if (!p->close_sent && !lws_partial_buffered(p->wsi) && write_some(l, p))
			log_msg(LOG_DEBUG, "live.close_failed", "no close frame for a viewer");
	}
	if (l->console_timer_made) {
		uv_timer_stop(&l->console_timer);
		uv_close((uv_handle_t *)&l->console_timer, NULL);
	}
	/* The channels go with their timers' close callbacks; the array of
	 * them goes in live_free. */
	for (size_t i = 0; i < l->cap; i++)
		channel_close(l->by_id[i]);
	channel_close(l->board);
	channel_close(l->day);
	for (int k = 0; k < LIVE_BOARDS_MAX; k++) {
		channel_close(l->boards[k]);
		l->boards[k] = NULL;
	}
	l->cap = 0;
	l->board = l->day = NULL;
}

static int positive(int v, int dflt)
{
	return v > 0 ? v : dflt;
}

int live_new(struct server *s, unsigned fd_limit, struct live **out, char *err, size_t errcap)
{
	const struct server_config *c = &s->cfg;
	struct uvloop_config uc;
	struct live *l = calloc(1, sizeof(*l));
	int rc;

	*out = NULL;
	if (!l)
		return -ENOMEM;
	l->s = s;
	l->slow = 1;
	pthread_mutex_init(&l->boards_lock, NULL);
	pacer_init(&l->pacer, LIVE_BEHIND, INTAKE_BEHIND);
	atomic_store(&l->slow_now, 1);
	l->cfg.coalesce_ms = positive(c->coalesce_ms, 100);
	l->cfg.wall_per_s = positive(c->live_wall_per_s, 5);
	l->cfg.ping_s = positive(c->live_ping_s, 30);
	l->cfg.timeout_s = positive(c->live_timeout_s, 45);
	l->cfg.slow_s = positive(c->live_slow_s, 10);
	l->cfg.per_address = positive(c->live_per_address, 256);
	l->cfg.nice = c->live_nice >= 0 ? c->live_nice : 10;
	l->cfg.limit_loopback = c->rate_limit_loopback;
	l->cfg.trusted = c->trusted;
	/* Leave room for the API, SQLite, the log and the job workers; under
	 * TLS a viewer holds three descriptors (ws/tls.c). */
	l->cfg.max_viewers = c->max_viewers > 0 ? c->max_viewers
	                     : fd_limit > 1024  ? (long)fd_limit - 512
	                                        : (long)fd_limit / 2;
	if (c->tls && c->max_viewers <= 0)
		l->cfg.max_viewers /= 3;
	if (c->tls) {
		l->n_peers = fd_limit;
		l->peers = calloc(fd_limit, sizeof(*l->peers));
		if (!l->peers) {
			free(l);
			return -ENOMEM;
		}
	}
	memset(&uc, 0, sizeof(uc));
	uc.protocols = live_protocols;
	uc.user = l;
	uc.fd_limit = fd_limit;
	uc.name = "live";
	uc.on_msg = on_msg;
	uc.on_tick = on_tick;
	uc.on_stop = on_stop;
	uc.tick_ms = 1000;
	uc.watchdog = s->watchdog;
	rc = uvloop_new(&uc, &l->loop, err, errcap);
	if (rc) {
		free(l);
		return rc;
	}
	l->uv = uvloop_uv(l->loop);
	l->next_board_id = LIVE_BOARDS_ID0;
	l->board = channel_alloc(l, LIVE_BOARD_ID, "leaderboard");
	l->day = channel_alloc(l, LIVE_DAY_ID, "day");
	if (!l->board || !l->day || addrcount_new(ADDR_SLOTS, &l->addrs)) {
		live_free(l);
		return -ENOMEM;
	}
	*out = l;
	return 0;
}

int live_start(struct live *l)
{
	return uvloop_start(l->loop, l->cfg.nice);
}

void live_stop(struct live *l)
{
	if (l)
		uvloop_join(l->loop);
}

void live_free(struct live *l)
{
	if (!l)
		return;
	uvloop_free(l->loop); /* runs on_stop (if not yet), which closes the channels */
	free(l->by_id);
	free(l->peers);
	buf_fini(&l->tx);
	addrcount_free(l->addrs);
	pthread_mutex_destroy(&l->boards_lock);
	free(l);
}
