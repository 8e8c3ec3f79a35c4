/* core/match.h - the match book: every match pool, what it has reserved
 * and used, and what each donor drew from it.
 *
 * Only the writer thread changes the book (match_reserve, match_settle,
 * match_release, match_unuse, match_put), in the writer's order; any
 * thread may read it (match_get, match_list, match_banner). Its lock is a
 * leaf: nothing else is locked while it is held.
 */
#ifndef TALLY_CORE_MATCH_H
#define TALLY_CORE_MATCH_H

#include "base/model.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

struct match_book;

/* What a pool looks like to a donor right now. */
enum match_state {
	MATCH_OPEN,      /* matching gifts */
	MATCH_UPCOMING,  /* its window has not started */
	MATCH_PAUSED,    /* staff paused it */
	MATCH_EXHAUSTED, /* nothing left to promise (reservations may come back) */
	MATCH_ENDED,     /* its window ended, or staff depleted it: for good */
	MATCH_STATES
};

extern const char *const match_state_names[MATCH_STATES];

/* The state of pool p at now (ms). */
enum match_state match_state_of(const struct pool_row *p, int64_t now);

/* What is left to promise: amount - reserved - used, never below 0. */
int64_t match_remaining(const struct pool_row *p);

/* A gift about to be stored, as the book needs it. */
struct match_gift {
	int64_t campaign_id;
	const char *currency;
	const char *email; /* "" for a donor without one (offline) */
	int64_t amount_cents;
	int64_t at; /* its time (ms): the pool's window must hold it */
	int offline;
};

/* Returns 0 or -ENOMEM. */
int match_book_new(struct match_book **out);
void match_book_free(struct match_book *b);

/* Read every pool and the match each donor holds in it. Before the
 * writer starts. Returns 0 or a negative errno. */
int match_book_load(struct match_book *b, sqlite3 *db);

/* Decide g's match and reserve it: the oldest open pool that covers g's
 * campaign, currency and source, for min(amount x ratio, the per-gift
 * cap, what the donor's cap leaves, what the pool has left). *pool_id and
 * *matched are 0 when nothing is matched. Writer thread. */
void match_reserve(struct match_book *b, const struct match_gift *g, int64_t *pool_id,
                   int64_t *matched);

/* A reservation is dropped: the gift was not stored, failed or was
 * discarded. Writer thread. */
void match_release(struct match_book *b, int64_t pool_id, const char *email, int64_t matched);

/* A reservation became matched money (the capture succeeded). */
void match_settle(struct match_book *b, int64_t pool_id, int64_t matched);

/* A refund gave matched money back to its (open) pool. */
void match_unuse(struct match_book *b, int64_t pool_id, const char *email, int64_t matched);

/* Add pool p or change its settings (its sums stay the book's). Returns
 * 0 or -ENOMEM. Writer thread. */
int match_put(struct match_book *b, const struct pool_row *p);

/* Copy pool `slug` into *out. Returns 0 or -ENOENT. Any thread. */
int match_get(struct match_book *b, const char *slug, struct pool_row *out);

/* A malloc'd copy of every pool, in id order, in *out (free it). Returns
 * their number or -ENOMEM. Any thread. */
long match_list(struct match_book *b, struct pool_row **out);

/* The pool a gift to the campaign would draw from at now: the first
 * open one, else the first that covers it in any other state but ended
 * (so a banner says "paused" or "exhausted"). Returns 1 with *out set, or
 * 0 when no pool covers it. Any thread. */
int match_banner(struct match_book *b, int64_t campaign_id, const char *currency, int64_t now,
                 struct pool_row *out);

/* Bumps on every change of any pool's money or settings. Any thread. */
uint64_t match_version(struct match_book *b);

#endif
