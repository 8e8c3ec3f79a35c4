/* db/pools.h - the match pools' SQL: stored on the writer's transaction,
 * read back at start with the sums of their gifts. */
#ifndef TALLY_DB_POOLS_H
#define TALLY_DB_POOLS_H

#include "base/model.h"
#include "db/writer.h"

#include <sqlite3.h>

/* The writer's prepared statements for pools (owned by db/store.c). */
struct db_pool_stmts {
	sqlite3_stmt *insert, *update, *touch;
};

/* Prepare them on the writer's connection. Returns a SQLite code. */
int db_pool_stmts_init(sqlite3 *db, struct db_pool_stmts *s);
void db_pool_stmts_fini(struct db_pool_stmts *s);

/* Record a DB_OP_POOL_CREATE (op->u.pool.id out) or DB_OP_POOL_UPDATE,
 * and bump the seq of every campaign of the pool's currency (their
 * banners change).
 * Returns SQLITE_OK (op->rc -EEXIST: slug taken; -ENOENT: no such pool)
 * or the code of an error that fails the batch. Writer thread. */
int db_pool_apply(struct db_pool_stmts *s, sqlite3 *db, struct db_op *op);

/* Call cb for each pool, in id order, with its reserved and used sums
 * (a non-zero return stops the walk and is returned). Returns 0 or a
 * negative errno. */
int db_load_pools(sqlite3 *db, int (*cb)(void *ud, const struct pool_row *row), void *ud);

/* Call cb for each (pool, donor email in lower case) with the match its
 * gifts hold (reserved or used): what a per-donor cap counts. */
int db_load_pool_donors(sqlite3 *db,
                        int (*cb)(void *ud, int64_t pool_id, const char *email, int64_t matched),
                        void *ud);

#endif
