/* core/shield.c - the card-testing shield.
 *
 * DESIGN
 * Card testers run many stolen cards through small gifts, from one
 * address or many. What sets them apart from donors is declines: a real
 * giving day declines 5 to 15 % of card attempts, a card test 80 to 100 %.
 * So the rules count declined captures (and attempts, which a decline
 * rate divides by), never gifts that succeeded: a campus, an office or a
 * venue's wifi behind one address gives as much as it likes.
 *
 * Four keys are watched, each in a sliding window of ten buckets:
 * - an address (the client after --trusted-proxy): blocked at
 *   addr_declines declines that are at least addr_ratio_pct of its
 *   attempts;
 * - an email (in lower case): blocked at email_declines declines;
 * - a card, by the processor's fingerprint: at card_declines declines or
 *   card_attempts attempts; a fingerprint is known only after a capture,
 *   so the card's rule blocks the address and the email that used it;
 * - a campaign, over the last 60 s in one-second buckets: its shield goes
 *   up at campaign_declines declines that are at least campaign_ratio_pct
 *   of its attempts, for up_s after the last second that would raise it.
 *   While up, its least gift is up_min_cents (testers use small amounts),
 *   an address with two declines in the window is blocked however many
 *   gifts it made, and a CAPTCHA is wanted when one is set up.
 * A blocked address or email is answered 429 too_many_attempts until the
 * block ends (block_s), and the captures of its gifts still queued fail
 * without reaching the processor. Everything comes down by itself.
 *
 * Defaults, and why (all configurable): a real giving day's traffic must
 * never trip them. An address: 10 declines at 50 % - a venue of a
 * thousand donors declines at its bank's rate (~10 %), and one donor
 * retrying a dead card ten times is turned away only from that address.
 * An email: 5 declines in 10 minutes, more than a donor retries a card.
 * A card: 3 declines (a card declined three times is dead) or 20 gifts in
 * 10 minutes (a donor gives to a handful of campaigns). A campaign: 60
 * declines in a minute at 50 % - a campaign at 600 gifts a minute, a busy
 * giving day's peak, declines about 60 at ~10 %, far under the ratio.
 *
 * Only gifts the shield noted at admission are counted: staff's offline
 * gifts, the demo's, those of 127.0.0.1 and ::1 (exempt, for local
 * tools) and those admitted before a restart are not. The client of a
 * gift (address, user agent, page) lives here, in memory only, until its
 * capture's outcome; it is never stored.
 *
 * Memory is bounded: each key kind holds SHIELD_KEYS entries (the oldest
 * not blocked goes first), campaigns SHIELD_CAMPAIGNS (only campaigns
 * that exist: the API names none for a slug the engine does not know),
 * gifts SHIELD_GIFTS (a newer gift takes an older one's slot).
 */
#include "core/shield.h"
#include "base/events.h"
#include "base/log.h"
#include "base/util.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHIELD_KEYS 16384     /* entries per kind (a power of two) */
#define SHIELD_CAMPAIGNS 4096 /* campaigns watched (a power of two) */
#define SHIELD_GIFTS 32768    /* gifts whose client is held (a power of two) */
#define BUCKETS 10            /* a window's buckets */
#define SECONDS 60            /* a campaign's one-second buckets */
#define KEY_SIZE 64
#define NONE UINT32_MAX

enum key_kind { K_ADDR, K_EMAIL, K_CARD, KINDS };

static const char *const kind_names[KINDS] = {"address", "email", "card"};

enum refusal { R_BLOCKED, R_BELOW_MIN, R_CAPTCHA, R_CAPTURE, REFUSALS };

static const char *const refusal_names[REFUSALS] = {"blocked", "below_min", "captcha", "capture"};

/* Counts in a sliding window: bucket i holds the bucket number
 * stamp[i]; a bucket older than the window counts nothing. */
struct window {
	int64_t stamp[BUCKETS];
	uint32_t declines[BUCKETS], attempts[BUCKETS];
};

struct entry {
	char key[KEY_SIZE];
	uint32_t next; /* the bucket chain; NONE ends it */
	uint32_t used : 1;
	struct window w;
	int64_t blocked_until; /* ms; 0: never blocked */
	char why[80];          /* the rule that blocked it */
};

struct table {
	struct entry *e;  /* SHIELD_KEYS */
	uint32_t *head;   /* SHIELD_KEYS chains */
	uint32_t n, hand; /* entries in use; the next slot to take */
};

struct campaign {
	char slug[KEY_SIZE];
	uint32_t next;
	uint32_t used : 1;
	int64_t sec[SECONDS]; /* the second each bucket counts */
	uint32_t declines[SECONDS], attempts[SECONDS];
	int64_t up_since, up_until; /* ms; up while now < up_until */
};

struct gift {
	int64_t id; /* 0: empty */
	struct shield_client c;
};

struct shield {
	pthread_mutex_t lock;
	struct shield_config cfg;
	struct util_hash_key hkey;
	struct table t[KINDS];
	struct campaign *camp; /* SHIELD_CAMPAIGNS */
	uint32_t *camp_head;
	uint32_t n_camp;
	struct gift *gifts; /* SHIELD_GIFTS, by id */
	int raised;
	int64_t raised_at;
	int64_t all_sec[SECONDS]; /* declines and attempts on every campaign */
	uint32_t all_declines[SECONDS], all_attempts[SECONDS];
	uint64_t trips, blocks[KINDS], refused[REFUSALS], declines_total;
};

void shield_config_defaults(struct shield_config *cfg)
{
	*cfg = (struct shield_config){
	    .enabled = 1,
	    .window_s = 600,
	    .addr_declines = 10,
	    .addr_ratio_pct = 50,
	    .email_declines = 5,
	    .card_declines = 3,
	    .card_attempts = 20,
	    .block_s = 900,
	    .campaign_declines = 60,
	    .campaign_ratio_pct = 50,
	    .up_s = 600,
	    .up_min_cents = 500,
	};
}

int shield_config_parse(struct shield_config *cfg, const char *spec, char *err, size_t errcap)
{
	static const struct {
		const char *name;
		size_t off;
		long long lo, hi;
	} keys[] = {
	    {"window-s", offsetof(struct shield_config, window_s), 10, 86400},
	    {"address-declines", offsetof(struct shield_config, addr_declines), 1, 1000000},
	    {"address-ratio", offsetof(struct shield_config, addr_ratio_pct), 0, 100},
	    {"email-declines", offsetof(struct shield_config, email_declines), 1, 1000000},
	    {"card-declines", offsetof(struct shield_config, card_declines), 1, 1000000},
	    {"card-attempts", offsetof(struct shield_config, card_attempts), 1, 1000000},
	    {"block-s", offsetof(struct shield_config, block_s), 1, 86400},
	    {"campaign-declines", offsetof(struct shield_config, campaign_declines), 1, 1000000},
	    {"campaign-ratio", offsetof(struct shield_config, campaign_ratio_pct), 0, 100},
	    {"up-s", offsetof(struct shield_config, up_s), 1, 86400},
	    {"up-min-cents", SIZE_MAX, 1, 1000000000000LL},
	};
	const char *at = spec;

	if (!strcmp(spec, "off") || !strcmp(spec, "on")) {
		cfg->enabled = spec[1] == 'n';
		return 0;
	}
	while (*at) {
		size_t n = strcspn(at, ","), klen = strcspn(at, "=,");
		char *end;
		long long v;
		size_t i;

		for (i = 0; i < UTIL_ARRAY_LEN(keys); i++)
			if (strlen(keys[i].name) == klen && !strncmp(at, keys[i].name, klen))
				break;
		if (i == UTIL_ARRAY_LEN(keys) || at[klen] != '=') {
			snprintf(err, errcap,
			         "--shield wants off, on or NAME=N,... (NAME: window-s, "
			         "address-declines, address-ratio, email-declines, card-declines, "
			         "card-attempts, block-s, campaign-declines, campaign-ratio, up-s, "
			         "up-min-cents); got '%.*s'",
			         (int)n, at);
			return -EINVAL;
		}
		errno = 0;
		v = strtoll(at + klen + 1, &end, 10);
		if (errno || end == at + klen + 1 || end != at + n || v < keys[i].lo ||
		    v > keys[i].hi) {
			snprintf(err, errcap, "--shield %s wants %lld to %lld, got '%.*s'",
			         keys[i].name, keys[i].lo, keys[i].hi, (int)(n - klen - 1),
			         at + klen + 1);
			return -EINVAL;
		}
		if (keys[i].off == SIZE_MAX)
			cfg->up_min_cents = v;
		else
			*(int *)(void *)((char *)cfg + keys[i].off) = (int)v;
		at += n + (at[n] == ',');
		if (at[-1] == ',' && !*at) {
			snprintf(err, errcap, "--shield: nothing after the last comma");
			return -EINVAL;
		}
	}
	if (at == spec) {
		snprintf(err, errcap, "--shield wants off, on or NAME=N,...; got nothing");
		return -EINVAL;
	}
	cfg->enabled = 1;
	return 0;
}

/* Free sh and its tables (any of them NULL); its lock is the caller's. */
static void free_tables(struct shield *sh)
{
	if (!sh)
		return;
	for (int k = 0; k < KINDS; k++) {
		free(sh->t[k].e);
		free(sh->t[k].head);
	}
	free(sh->camp);
	free(sh->camp_head);
	free(sh->gifts);
	free(sh);
}

int shield_new(const struct shield_config *cfg, struct shield **out)
{
	struct shield *sh = calloc(1, sizeof(*sh));
	int rc = sh ? 0 : -ENOMEM;

	*out = NULL;
	if (!rc) {
		sh->cfg = *cfg;
		if (sh->cfg.window_s < 10)
			sh->cfg.window_s = 10;
		rc = util_hash_key_random(&sh->hkey);
	}
	for (int k = 0; !rc && k < KINDS; k++) {
		sh->t[k].e = calloc(SHIELD_KEYS, sizeof(*sh->t[k].e));
		sh->t[k].head = malloc(SHIELD_KEYS * sizeof(*sh->t[k].head));
		if (!sh->t[k].e || !sh->t[k].head)
			rc = -ENOMEM;
		else
			memset(sh->t[k].head, 0xff, SHIELD_KEYS * sizeof(*sh->t[k].head));
	}
	if (!rc) {
		sh->camp = calloc(SHIELD_CAMPAIGNS, sizeof(*sh->camp));
		sh->camp_head = malloc(SHIELD_CAMPAIGNS * sizeof(*sh->camp_head));
		sh->gifts = calloc(SHIELD_GIFTS, sizeof(*sh->gifts));
		if (!sh->camp || !sh->camp_head || !sh->gifts)
			rc = -ENOMEM;
		else
			memset(sh->camp_head, 0xff, SHIELD_CAMPAIGNS * sizeof(*sh->camp_head));
	}
	if (!rc && pthread_mutex_init(&sh->lock, NULL))
		rc = -ENOMEM;
	else if (!rc) {
		*out = sh;
		return 0;
	}
	free_tables(sh);
	return rc ? rc : -ENOMEM;
}

void shield_free(struct shield *sh)
{
	if (!sh)
		return;
	pthread_mutex_destroy(&sh->lock);
	free_tables(sh);
}

/* ---- windows ---- */

static int64_t bucket_ms(const struct shield *sh)
{
	return (int64_t)sh->cfg.window_s * 1000 / BUCKETS;
}

/* Count one attempt or decline in w at now. */
static void window_add(const struct shield *sh, struct window *w, int64_t now, int declined,
                       int attempted)
{
	int64_t b = now / bucket_ms(sh);
	int i = (int)(b % BUCKETS);

	if (w->stamp[i] != b) {
		w->stamp[i] = b;
		w->declines[i] = w->attempts[i] = 0;
	}
	w->declines[i] += (uint32_t)declined;
	w->attempts[i] += (uint32_t)attempted;
}

static void window_sum(const struct shield *sh, const struct window *w, int64_t now,
                       uint32_t *declines, uint32_t *attempts)
{
	int64_t b = now / bucket_ms(sh);

	*declines = *attempts = 0;
	for (int i = 0; i < BUCKETS; i++)
		if (w->stamp[i] > b - BUCKETS && w->stamp[i] <= b) {
			*declines += w->declines[i];
			*attempts += w->attempts[i];
		}
}

/* The same over one-second buckets (a campaign's minute, or everyone's). */
static void seconds_add(int64_t *sec, uint32_t *declines, uint32_t *attempts, int64_t now,
                        int declined, int attempted)
{
	int64_t s = now / 1000;
	int i = (int)(s % SECONDS);

	if (sec[i] != s) {
		sec[i] = s;
		declines[i] = attempts[i] = 0;
	}
	declines[i] += (uint32_t)declined;
	attempts[i] += (uint32_t)attempted;
}

static void seconds_sum(const int64_t *sec, const uint32_t *declines, const uint32_t *attempts,
                        int64_t now, uint32_t *d, uint32_t *a)
{
	int64_t s = now / 1000;

	*d = *a = 0;
	for (int i = 0; i < SECONDS; i++)
		if (sec[i] > s - SECONDS && sec[i] <= s) {
			*d += declines[i];
			*a += attempts[i];
		}
}

/* ---- keyed entries ---- */

/* key, cut to KEY_SIZE - 1 bytes (lower case for an email) into out. */
static void key_of(enum key_kind k, const char *s, char out[KEY_SIZE])
{
	size_t i = 0;

	for (; s[i] && i < KEY_SIZE - 1; i++)
		out[i] = k == K_EMAIL ? (char)tolower((unsigned char)s[i]) : s[i];
	out[i] = '\0';
}

static uint32_t slot_of(const struct shield *sh, const char *key, uint32_t cap)
{
	return (uint32_t)(util_hash_keyed(&sh->hkey, key, strlen(key)) & (cap - 1));
}

static struct entry *entry_find(struct shield *sh, enum key_kind k, const char *key)
{
	struct table *t = &sh->t[k];

	for (uint32_t i = t->head[slot_of(sh, key, SHIELD_KEYS)]; i != NONE; i = t->e[i].next)
		if (!strcmp(t->e[i].key, key))
			return &t->e[i];
	return NULL;
}

static void entry_unlink(struct shield *sh, struct table *t, uint32_t i)
{
	uint32_t *at = &t->head[slot_of(sh, t->e[i].key, SHIELD_KEYS)];

	while (*at != NONE && *at != i)
		at = &t->e[*at].next;
	if (*at == i)
		*at = t->e[i].next;
	t->e[i].used = 0;
	t->n--;
}

/* The entry of key, made when new (a full table gives up its oldest
 * entry that is not blocked, or failing eight of those, its oldest). */
static struct entry *entry_get(struct shield *sh, enum key_kind k, const char *key, int64_t now)
{
	struct table *t = &sh->t[k];
	struct entry *x = entry_find(sh, k, key);
	uint32_t i, h;

	if (x)
		return x;
	for (int tries = 0;; tries++) {
		i = t->hand;
		t->hand = (t->hand + 1) & (SHIELD_KEYS - 1);
		if (!t->e[i].used)
			break;
		if (t->e[i].blocked_until <= now || tries >= 8) {
			entry_unlink(sh, t, i);
			break;
		}
	}
	x = &t->e[i];
	memset(x, 0, sizeof(*x));
	memcpy(x->key, key, strlen(key) + 1);
	h = slot_of(sh, key, SHIELD_KEYS);
	x->next = t->head[h];
	x->used = 1;
	t->head[h] = i;
	t->n++;
	return x;
}

static int blocked(const struct entry *x, int64_t now)
{
	return x && x->blocked_until > now;
}

/* A message for events_note, made under the lock and noted after it. */
struct notes {
	int n;
	char text[6][EVENT_TEXT_SIZE];
};

__attribute__((format(printf, 2, 3))) static void note(struct notes *ns, const char *fmt, ...)
{
	va_list ap;

	if (ns->n >= (int)UTIL_ARRAY_LEN(ns->text))
		return;
	va_start(ap, fmt);
	vsnprintf(ns->text[ns->n++], EVENT_TEXT_SIZE, fmt, ap);
	va_end(ap);
}

static void notes_flush(const struct notes *ns)
{
	for (int i = 0; i < ns->n; i++) {
		events_note("shield", NULL, "%s", ns->text[i]);
		log_msg(LOG_WARN, "shield.block", "%s", ns->text[i]);
	}
}

static void block(struct shield *sh, enum key_kind k, struct entry *x, int64_t now,
                  struct notes *ns, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Block x for block_s (again: the block is extended), saying why. */
static void block(struct shield *sh, enum key_kind k, struct entry *x, int64_t now,
                  struct notes *ns, const char *fmt, ...)
{
	va_list ap;
	int was = blocked(x, now);

	va_start(ap, fmt);
	vsnprintf(x->why, sizeof(x->why), fmt, ap);
	va_end(ap);
	x->blocked_until = now + (int64_t)sh->cfg.block_s * 1000;
	if (was)
		return;
	sh->blocks[k]++;
	note(ns, "%s %s blocked for %d s: %s", kind_names[k], x->key, sh->cfg.block_s, x->why);
}

/* ---- campaigns ---- */

static struct campaign *campaign_get(struct shield *sh, const char *slug, int create)
{
	char key[KEY_SIZE];
	uint32_t h, i;

	key_of(K_ADDR, slug, key);
	h = slot_of(sh, key, SHIELD_CAMPAIGNS);
	for (i = sh->camp_head[h]; i != NONE; i = sh->camp[i].next)
		if (!strcmp(sh->camp[i].slug, key))
			return &sh->camp[i];
	if (!create || sh->n_camp >= SHIELD_CAMPAIGNS)
		return NULL;
	i = sh->n_camp++;
	memcpy(sh->camp[i].slug, key, sizeof(key));
	sh->camp[i].next = sh->camp_head[h];
	sh->camp[i].used = 1;
	sh->camp_head[h] = i;
	return &sh->camp[i];
}

static int campaign_up(const struct shield *sh, const struct campaign *c, int64_t now)
{
	return sh->raised || (c && c->up_until > now);
}

/* How many campaigns are up now; lock held. */
static int campaigns_up(const struct shield *sh, int64_t now)
{
	int up = 0;

	for (uint32_t i = 0; i < sh->n_camp; i++)
		up += campaign_up(sh, &sh->camp[i], now);
	return up;
}

/* ---- the intake path ---- */

/* 127.0.0.1 and ::1 (also as a mapped address): local tools. Loopback
 * aliases (127.0.0.2 ...) are not exempt. */
static int exempt(const char *addr)
{
	return !addr || !strcmp(addr, "127.0.0.1") || !strcmp(addr, "::1") ||
	       !strcmp(addr, "::ffff:127.0.0.1");
}

int shield_watches(const struct shield *sh, const char *addr)
{
	return sh && sh->cfg.enabled && !exempt(addr);
}

enum shield_verdict shield_admit(struct shield *sh, const struct shield_ask *ask, int64_t now,
                                 struct shield_answer *out)
{
	char akey[KEY_SIZE], ekey[KEY_SIZE];
	enum shield_verdict v = SHIELD_PASS;
	struct entry *a, *em = NULL;
	struct campaign *c;
	struct notes ns = {0};
	int up;

	memset(out, 0, sizeof(*out));
	if (!shield_watches(sh, ask->addr))
		return SHIELD_PASS;
	key_of(K_ADDR, ask->addr, akey);
	key_of(K_EMAIL, ask->email ? ask->email : "", ekey);
	pthread_mutex_lock(&sh->lock);
	a = entry_find(sh, K_ADDR, akey);
	if (ekey[0])
		em = entry_find(sh, K_EMAIL, ekey);
	c = ask->campaign ? campaign_get(sh, ask->campaign, 1) : NULL;
	up = campaign_up(sh, c, now);
	if (up && a && !blocked(a, now)) {
		uint32_t d, n;

		window_sum(sh, &a->w, now, &d, &n);
		if (d >= 2 && d * 100 >= (uint32_t)sh->cfg.addr_ratio_pct * n)
			block(sh, K_ADDR, a, now, &ns,
			      "%u declines of %u attempts while the shield is up", d, n);
	}
	if (blocked(a, now) || blocked(em, now)) {
		const struct entry *x = blocked(a, now) ? a : em;
		int64_t left = x->blocked_until - now;

		v = SHIELD_BLOCKED;
		out->retry_after_s = (int)((left + 999) / 1000);
		snprintf(out->why, sizeof(out->why), "%s", x->why);
		sh->refused[R_BLOCKED]++;
	} else if (up && ask->amount_cents < sh->cfg.up_min_cents) {
		v = SHIELD_BELOW_MIN;
		out->min_cents = sh->cfg.up_min_cents;
		sh->refused[R_BELOW_MIN]++;
	} else {
		a = entry_get(sh, K_ADDR, akey, now);
		window_add(sh, &a->w, now, 0, 1);
		if (c)
			seconds_add(c->sec, c->declines, c->attempts, now, 0, 1);
		seconds_add(sh->all_sec, sh->all_declines, sh->all_attempts, now, 0, 1);
		out->captcha = sh->cfg.captcha && (sh->cfg.captcha_always || up);
	}
	pthread_mutex_unlock(&sh->lock);
	notes_flush(&ns);
	return v;
}

void shield_captcha_refused(struct shield *sh)
{
	if (!sh)
		return;
	pthread_mutex_lock(&sh->lock);
	sh->refused[R_CAPTCHA]++;
	pthread_mutex_unlock(&sh->lock);
}

static void copy_cut(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

void shield_note_gift(struct shield *sh, int64_t donation_id, const char *addr,
                      const char *user_agent, const char *page, const char *campaign)
{
	struct gift *g;

	if (donation_id <= 0 || !shield_watches(sh, addr))
		return;
	g = &sh->gifts[(uint64_t)donation_id & (SHIELD_GIFTS - 1)];
	pthread_mutex_lock(&sh->lock);
	g->id = donation_id;
	copy_cut(g->c.addr, sizeof(g->c.addr), addr);
	copy_cut(g->c.user_agent, sizeof(g->c.user_agent), user_agent);
	copy_cut(g->c.page, sizeof(g->c.page), page);
	copy_cut(g->c.campaign, sizeof(g->c.campaign), campaign);
	pthread_mutex_unlock(&sh->lock);
}

/* The gift's slot when it holds donation_id; lock held. */
static struct gift *gift_find(struct shield *sh, int64_t donation_id)
{
	struct gift *g = &sh->gifts[(uint64_t)donation_id & (SHIELD_GIFTS - 1)];

	return donation_id > 0 && g->id == donation_id ? g : NULL;
}

/* ---- the payments queue ---- */

int shield_client_of(struct shield *sh, int64_t donation_id, struct shield_client *out)
{
	struct gift *g;
	int rc = -ENOENT;

	if (!sh)
		return rc;
	pthread_mutex_lock(&sh->lock);
	g = gift_find(sh, donation_id);
	if (g) {
		*out = g->c;
		rc = 0;
	}
	pthread_mutex_unlock(&sh->lock);
	return rc;
}

int shield_capture_ok(struct shield *sh, int64_t donation_id, const char *email, int64_t now,
                      char *why, size_t whycap)
{
	char key[KEY_SIZE];
	const struct entry *x = NULL;
	struct gift *g;
	int rc = 0;

	if (!sh || !sh->cfg.enabled)
		return 0;
	pthread_mutex_lock(&sh->lock);
	g = gift_find(sh, donation_id);
	if (g) {
		key_of(K_ADDR, g->c.addr, key);
		x = entry_find(sh, K_ADDR, key);
		if (!blocked(x, now) && email && email[0]) {
			key_of(K_EMAIL, email, key);
			x = entry_find(sh, K_EMAIL, key);
		}
	}
	if (blocked(x, now)) {
		snprintf(why, whycap, "%s", x->why);
		sh->refused[R_CAPTURE]++;
		/* Not a decline: forget it, so its outcome counts nothing. */
		g->id = 0;
		rc = -EPERM;
	}
	pthread_mutex_unlock(&sh->lock);
	return rc;
}

/* Count a decline (or an attempt, for a card) under key; returns the
 * entry. */
static struct entry *count(struct shield *sh, enum key_kind k, const char *s, int64_t now,
                           int declined, int attempted)
{
	char key[KEY_SIZE];
	struct entry *x;

	key_of(k, s, key);
	x = entry_get(sh, k, key, now);
	window_add(sh, &x->w, now, declined, attempted);
	return x;
}

void shield_outcome(struct shield *sh, int64_t donation_id, const char *email,
                    const char *fingerprint, int declined, int64_t now)
{
	struct entry *a = NULL, *em = NULL, *card = NULL;
	struct notes ns = {0};
	struct campaign *c;
	struct gift *g;
	uint32_t d, n;

	if (!sh || !sh->cfg.enabled)
		return;
	pthread_mutex_lock(&sh->lock);
	g = gift_find(sh, donation_id);
	if (!g || exempt(g->c.addr))
		goto out;
	if (declined) {
		sh->declines_total++;
		seconds_add(sh->all_sec, sh->all_declines, sh->all_attempts, now, 1, 0);
		a = count(sh, K_ADDR, g->c.addr, now, 1, 0);
		window_sum(sh, &a->w, now, &d, &n);
		if (d >= (uint32_t)sh->cfg.addr_declines &&
		    d * 100 >= (uint32_t)sh->cfg.addr_ratio_pct * n)
			block(sh, K_ADDR, a, now, &ns, "%u declines of %u attempts", d, n);
		if (email && email[0]) {
			em = count(sh, K_EMAIL, email, now, 1, 0);
			window_sum(sh, &em->w, now, &d, &n);
			if (d >= (uint32_t)sh->cfg.email_declines)
				block(sh, K_EMAIL, em, now, &ns, "%u declines", d);
		}
	}
	if (fingerprint && fingerprint[0]) {
		card = count(sh, K_CARD, fingerprint, now, declined, 1);
		window_sum(sh, &card->w, now, &d, &n);
		if (d >= (uint32_t)sh->cfg.card_declines || n >= (uint32_t)sh->cfg.card_attempts)
			block(sh, K_CARD, card, now, &ns, "%u declines of %u attempts", d, n);
		if (blocked(card, now) && (declined || n >= (uint32_t)sh->cfg.card_attempts)) {
			/* Whoever tries a blocked card is blocked with it. */
			if (!a)
				a = count(sh, K_ADDR, g->c.addr, now, 0, 0);
			block(sh, K_ADDR, a, now, &ns, "tried card %.24s, blocked", card->key);
			if (email && email[0]) {
				if (!em)
					em = count(sh, K_EMAIL, email, now, 0, 0);
				block(sh, K_EMAIL, em, now, &ns, "tried card %.24s, blocked",
				      card->key);
			}
		}
	}
	c = declined ? campaign_get(sh, g->c.campaign, 1) : NULL;
	if (c) {
		seconds_add(c->sec, c->declines, c->attempts, now, 1, 0);
		seconds_sum(c->sec, c->declines, c->attempts, now, &d, &n);
		if (d >= (uint32_t)sh->cfg.campaign_declines &&
		    d * 100 >= (uint32_t)sh->cfg.campaign_ratio_pct * n) {
			if (c->up_until <= now) {
				c->up_since = now;
				sh->trips++;
				note(&ns,
				     "campaign %s: shield up for %d s: %u declines of %u attempts "
				     "in "
				     "a minute; gifts from %lld",
				     c->slug, sh->cfg.up_s, d, n, (long long)sh->cfg.up_min_cents);
			}
			c->up_until = now + (int64_t)sh->cfg.up_s * 1000;
		}
	}
out:
	if (g)
		g->id = 0;
	pthread_mutex_unlock(&sh->lock);
	notes_flush(&ns);
}

/* ---- staff ---- */

int shield_raise(struct shield *sh, int64_t now)
{
	int changed;

	if (!sh)
		return 0;
	pthread_mutex_lock(&sh->lock);
	changed = !sh->raised;
	if (changed) {
		sh->raised = 1;
		sh->raised_at = now;
		sh->trips++;
	}
	pthread_mutex_unlock(&sh->lock);
	return changed;
}

int shield_lower(struct shield *sh, int64_t now)
{
	int changed = 0;

	if (!sh)
		return 0;
	pthread_mutex_lock(&sh->lock);
	changed = sh->raised;
	sh->raised = 0;
	for (uint32_t i = 0; i < sh->n_camp; i++) {
		struct campaign *c = &sh->camp[i];

		changed |= c->up_until > now;
		c->up_until = c->up_since = 0;
		memset(c->sec, 0, sizeof(c->sec));
	}
	for (int k = 0; k < KINDS; k++) {
		struct table *t = &sh->t[k];

		for (uint32_t i = 0; i < SHIELD_KEYS; i++)
			changed |= t->e[i].used && blocked(&t->e[i], now);
		memset(t->e, 0, SHIELD_KEYS * sizeof(*t->e));
		memset(t->head, 0xff, SHIELD_KEYS * sizeof(*t->head));
		t->n = t->hand = 0;
	}
	pthread_mutex_unlock(&sh->lock);
	return changed;
}

/* ---- what staff see ---- */

struct offender {
	enum key_kind kind;
	const struct entry *x;
	uint32_t declines, attempts;
	int live; /* blocked now */
};

/* Worst first: blocked before not, then by declines. */
static int offender_cmp(const void *pa, const void *pb)
{
	const struct offender *a = pa, *b = pb;

	if (a->live != b->live)
		return a->live ? -1 : 1;
	if (a->declines != b->declines)
		return a->declines > b->declines ? -1 : 1;
	return strcmp(a->x->key, b->x->key);
}

static int json_time(struct buf *out, const char *name, int64_t ms)
{
	char ts[40];

	if (!ms)
		return buf_printf(out, ",\"%s\":null", name);
	return buf_printf(out, ",\"%s\":\"%s\"", name, util_rfc3339(ms, ts, sizeof(ts)));
}

/* The offenders worth a look (a decline in the window, or blocked),
 * worst first, at most limit; lock held. */
static int offenders_json(struct shield *sh, int64_t now, int limit, struct buf *out)
{
	size_t cap = 0, n = 0;
	struct offender *o = NULL;
	int rc = 0;

	for (int k = 0; k < KINDS; k++)
		cap += sh->t[k].n;
	if (cap && !(o = malloc(cap * sizeof(*o))))
		return -ENOMEM;
	for (int k = 0; k < KINDS; k++)
		for (uint32_t i = 0; i < SHIELD_KEYS && n < cap; i++) {
			const struct entry *x = &sh->t[k].e[i];
			uint32_t d, a;

			if (!x->used)
				continue;
			window_sum(sh, &x->w, now, &d, &a);
			if (!d && !blocked(x, now))
				continue;
			o[n++] = (struct offender){(enum key_kind)k, x, d, a, blocked(x, now)};
		}
	if (n)
		qsort(o, n, sizeof(*o), offender_cmp);
	rc |= buf_puts(out, ",\"offenders\":[");
	for (size_t i = 0; i < n && (int)i < limit; i++) {
		const struct entry *x = o[i].x;

		rc |= buf_printf(out, "%s{\"kind\":\"%s\",\"key\":", i ? "," : "",
		                 kind_names[o[i].kind]);
		rc |= buf_json_string(out, x->key);
		rc |= buf_printf(out, ",\"declines\":%u,\"attempts\":%u,\"blocked\":%s",
		                 o[i].declines, o[i].attempts, o[i].live ? "true" : "false");
		rc |= json_time(out, "until", o[i].live ? x->blocked_until : 0);
		rc |= buf_puts(out, ",\"why\":");
		rc |= buf_json_string(out, o[i].live ? x->why : "");
		rc |= buf_puts(out, "}");
	}
	rc |= buf_printf(out, "],\"offenders_total\":%zu", n);
	free(o);
	return rc ? -ENOMEM : 0;
}

int shield_json(struct shield *sh, int64_t now, int limit, struct buf *out)
{
	const struct shield_config *c = &sh->cfg;
	uint32_t d, a;
	int rc = 0, first = 1, up = 0;

	pthread_mutex_lock(&sh->lock);
	seconds_sum(sh->all_sec, sh->all_declines, sh->all_attempts, now, &d, &a);
	up = campaigns_up(sh, now);
	rc |= buf_printf(
	    out,
	    "{\"enabled\":%s,\"raised\":%s,\"state\":\"%s\",\"campaigns_up\":%d,"
	    "\"declines_per_min\":%u,\"attempts_per_min\":%u,\"declines_total\":%llu,"
	    "\"trips\":%llu,\"blocks\":{\"address\":%llu,\"email\":%llu,\"card\":%llu},"
	    "\"refused\":{",
	    c->enabled ? "true" : "false", sh->raised ? "true" : "false",
	    !c->enabled  ? "off"
	    : sh->raised ? "raised"
	    : up         ? "up"
	                 : "down",
	    up, d, a, (unsigned long long)sh->declines_total, (unsigned long long)sh->trips,
	    (unsigned long long)sh->blocks[K_ADDR], (unsigned long long)sh->blocks[K_EMAIL],
	    (unsigned long long)sh->blocks[K_CARD]);
	for (int r = 0; r < REFUSALS; r++)
		rc |= buf_printf(out, "%s\"%s\":%llu", r ? "," : "", refusal_names[r],
		                 (unsigned long long)sh->refused[r]);
	rc |= buf_puts(out, "},\"campaigns\":[");
	for (uint32_t i = 0; i < sh->n_camp; i++) {
		const struct campaign *k = &sh->camp[i];
		uint32_t kd, ka;

		seconds_sum(k->sec, k->declines, k->attempts, now, &kd, &ka);
		/* Up by its own declines, or declining: a raise covers every
		 * campaign and says so once ("raised"), not per campaign. */
		if (!kd && k->up_until <= now)
			continue;
		rc |= buf_printf(out, "%s{\"campaign\":", first ? "" : ",");
		rc |= buf_json_string(out, k->slug);
		rc |= buf_printf(out, ",\"up\":%s", campaign_up(sh, k, now) ? "true" : "false");
		rc |= json_time(out, "since",
		                sh->raised          ? sh->raised_at
		                : k->up_until > now ? k->up_since
		                                    : 0);
		rc |= json_time(out, "until", !sh->raised && k->up_until > now ? k->up_until : 0);
		rc |= buf_printf(out, ",\"declines_per_min\":%u,\"attempts_per_min\":%u}", kd, ka);
		first = 0;
	}
	rc |= buf_puts(out, "]");
	rc |= offenders_json(sh, now, limit, out);
	rc |= buf_printf(out,
	                 ",\"rules\":{\"window_s\":%d,\"address_declines\":%d,"
	                 "\"address_ratio_pct\":%d,\"email_declines\":%d,\"card_declines\":%d,"
	                 "\"card_attempts\":%d,\"block_s\":%d,\"campaign_declines\":%d,"
	                 "\"campaign_ratio_pct\":%d,\"up_s\":%d,\"up_min_cents\":%lld,"
	                 "\"captcha\":\"%s\"}}",
	                 c->window_s, c->addr_declines, c->addr_ratio_pct, c->email_declines,
	                 c->card_declines, c->card_attempts, c->block_s, c->campaign_declines,
	                 c->campaign_ratio_pct, c->up_s, (long long)c->up_min_cents,
	                 !c->captcha         ? "off"
	                 : c->captcha_always ? "always"
	                                     : "when_up");
	pthread_mutex_unlock(&sh->lock);
	return rc ? -ENOMEM : 0;
}

int shield_metrics(struct shield *sh, int64_t now, struct buf *out)
{
	uint32_t blocked_now[KINDS] = {0};
	int rc = 0, up = 0;

	pthread_mutex_lock(&sh->lock);
	up = campaigns_up(sh, now);
	for (int k = 0; k < KINDS; k++)
		for (uint32_t i = 0; i < SHIELD_KEYS; i++)
			blocked_now[k] += sh->t[k].e[i].used && blocked(&sh->t[k].e[i], now);
	rc |= buf_printf(out,
	                 "# HELP tally_shield_trips_total Times a campaign's card-testing shield "
	                 "went up (or staff raised it).\n"
	                 "# TYPE tally_shield_trips_total counter\n"
	                 "tally_shield_trips_total %llu\n"
	                 "# HELP tally_shield_campaigns_up Campaigns whose shield is up now.\n"
	                 "# TYPE tally_shield_campaigns_up gauge\n"
	                 "tally_shield_campaigns_up %d\n"
	                 "# HELP tally_shield_declines_total Declined captures the shield "
	                 "counted.\n"
	                 "# TYPE tally_shield_declines_total counter\n"
	                 "tally_shield_declines_total %llu\n",
	                 (unsigned long long)sh->trips, up, (unsigned long long)sh->declines_total);
	rc |= buf_puts(out, "# HELP tally_shield_blocks_total Offenders blocked, by kind.\n"
	                    "# TYPE tally_shield_blocks_total counter\n");
	for (int k = 0; k < KINDS; k++)
		rc |= buf_printf(out, "tally_shield_blocks_total{kind=\"%s\"} %llu\n",
		                 kind_names[k], (unsigned long long)sh->blocks[k]);
	rc |= buf_puts(out, "# HELP tally_shield_blocked Offenders blocked now, by kind.\n"
	                    "# TYPE tally_shield_blocked gauge\n");
	for (int k = 0; k < KINDS; k++)
		rc |= buf_printf(out, "tally_shield_blocked{kind=\"%s\"} %u\n", kind_names[k],
		                 blocked_now[k]);
	rc |= buf_puts(out, "# HELP tally_shield_refused_total Gifts the shield refused, by why.\n"
	                    "# TYPE tally_shield_refused_total counter\n");
	for (int r = 0; r < REFUSALS; r++)
		rc |= buf_printf(out, "tally_shield_refused_total{reason=\"%s\"} %llu\n",
		                 refusal_names[r], (unsigned long long)sh->refused[r]);
	pthread_mutex_unlock(&sh->lock);
	return rc ? -ENOMEM : 0;
}
