/* core/bonus.h - the challenge book: every challenge, each campaign's
 * progress in it, and who unlocked its bonus.
 *
 * Only the writer thread changes the book (bonus_count, bonus_put,
 * bonus_due, bonus_reload), in the writer's order; any thread may read it.
 * Its lock is a leaf.
 */
#ifndef TALLY_CORE_BONUS_H
#define TALLY_CORE_BONUS_H

#include "base/model.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

struct bonus_book;

/* A gift that succeeded, as the book counts it. */
struct bonus_gift {
	int64_t donation_id, campaign_id;
	const char *currency;
	const char *email; /* "" for none: counts no donor */
	int64_t amount_cents;
	int64_t created_at; /* the challenge's window must hold it */
	int offline;
};

/* A bonus to pay: the campaign reached the challenge's threshold. */
struct bonus_award {
	int64_t challenge_id, campaign_id, bonus_cents, donation_id;
	char slug[TALLY_SLUG_SIZE]; /* the challenge's */
};

/* A campaign's standing in one challenge. */
struct bonus_progress {
	int64_t challenge_id, campaign_id;
	int64_t value;    /* in the challenge's kind: minor units, donors, gifts */
	int awarded;      /* it unlocked the bonus */
	int64_t award_at; /* when (ms), 0 if not */
};

/* Returns 0 or -ENOMEM. */
int bonus_book_new(struct bonus_book **out);
void bonus_book_free(struct bonus_book *b);

/* Read every challenge, its awards and each campaign's progress (the
 * challenge's rules as a query over the donations). Before the writer
 * starts, or on the writer thread after a batch failed (the book is then
 * rebuilt from what committed). Returns 0 or a negative errno. */
int bonus_book_load(struct bonus_book *b, sqlite3 *db);

/* Count a succeeded gift in every challenge it counts for; write into
 * out (at most max) the awards it unlocks, each marked made at once (so
 * the first `winners` campaigns win, in the writer's order). Returns how
 * many. Writer thread. */
int bonus_count(struct bonus_book *b, const struct bonus_gift *g, int64_t now,
                struct bonus_award *out, int max);

/* Add a new challenge, with its progress read from db (gifts before its
 * creation that it counts; db NULL: none). Returns 0 or a negative errno.
 * Writer. */
int bonus_put(struct bonus_book *b, const struct challenge_row *c, sqlite3 *db);

/* Awards due but not made (a challenge created after campaigns reached
 * it), in campaign id order, marked made; at most max. Writer. */
int bonus_due(struct bonus_book *b, int64_t now, struct bonus_award *out, int max);

/* Copies for readers. A malloc'd array of every challenge (free it), or
 * -ENOMEM. */
long bonus_list(struct bonus_book *b, struct challenge_row **out);
/* Challenge `slug` into *out: 0 or -ENOENT. */
int bonus_get(struct bonus_book *b, const char *slug, struct challenge_row *out);
/* The standing of up to max campaigns in challenge id, best first. */
int bonus_leaders(struct bonus_book *b, int64_t id, struct bonus_progress *out, int max);
/* Campaign campaign_id's standing in each challenge that covers it (at
 * most max, challenge order), with the challenge in rows[i]. */
int bonus_for_campaign(struct bonus_book *b, int64_t campaign_id, const char *currency,
                       struct challenge_row *rows, struct bonus_progress *out, int max);

/* 1 if challenge c covers campaign_id in currency. */
int bonus_covers(const struct challenge_row *c, int64_t campaign_id, const char *currency);

#endif
