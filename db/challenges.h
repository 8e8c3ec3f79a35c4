/* db/challenges.h - the challenges' SQL: a challenge and its awards
 * stored on the writer's transaction; challenges, awards and each
 * campaign's progress read back at start. */
#ifndef TALLY_DB_CHALLENGES_H
#define TALLY_DB_CHALLENGES_H

#include "base/model.h"
#include "db/writer.h"

#include <sqlite3.h>

/* The writer's prepared statements for challenges (owned by db/store.c). */
struct db_challenge_stmts {
	sqlite3_stmt *insert, *award, *bonus, *touch;
};

/* Prepare them on the writer's connection. Returns a SQLite code. */
int db_challenge_stmts_init(sqlite3 *db, struct db_challenge_stmts *s);
void db_challenge_stmts_fini(struct db_challenge_stmts *s);

/* Record a DB_OP_CHALLENGE_CREATE (op->u.challenge.id out; the seq of
 * every campaign of its currency bumps: they show it) or a DB_OP_AWARD (the award row, and the
 * campaign's bonus_cents and seq). Returns SQLITE_OK (op->rc -EEXIST: slug taken, or the award made
 * before) or the code of an error that fails the batch. Writer thread. */
int db_challenge_apply(struct db_challenge_stmts *s, sqlite3 *db, struct db_op *op);

/* Call cb for each challenge in id order (awarded 0). */
int db_load_challenges(sqlite3 *db, int (*cb)(void *ud, const struct challenge_row *row), void *ud);

struct db_award_row {
	int64_t challenge_id, campaign_id, bonus_cents, donation_id, at;
};

/* Call cb for each award, oldest first. */
int db_load_awards(sqlite3 *db, int (*cb)(void *ud, const struct db_award_row *row), void *ud);

/* A campaign's progress in a challenge: the gifts it counts. */
struct db_progress_row {
	int64_t campaign_id, amount_cents, gifts, donors;
};

/* Call cb for each campaign with gifts that challenge c counts (its
 * rules, as a query over the donations; campaigns it does not name
 * included: the caller filters). */
int db_challenge_progress(sqlite3 *db, const struct challenge_row *c,
                          int (*cb)(void *ud, const struct db_progress_row *row), void *ud);

/* The newest gift of campaign_id that c counts (0: none): the one an
 * award made after the fact names. */
int db_challenge_last_gift(sqlite3 *db, const struct challenge_row *c, int64_t campaign_id,
                           int64_t *out);

/* Call cb for each (campaign, donor email in lower case) that c counts. */
int db_challenge_donors(sqlite3 *db, const struct challenge_row *c,
                        int (*cb)(void *ud, int64_t campaign_id, const char *email), void *ud);

#endif
