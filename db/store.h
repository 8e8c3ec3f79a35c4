/* db/store.h - the statements that record each kind of op, for the writer
 * thread (db/ only; see store.c). Functions return SQLite result codes
 * (SQLITE_OK, or an error that must fail the batch); those never leave db/.
 */
#ifndef TALLY_DB_STORE_H
#define TALLY_DB_STORE_H

#include "db/writer.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

struct db_store;

/* Prepare the statements on db (which the caller keeps). max_batch sizes
 * the per-batch tables. Returns 0 or a negative errno. */
int db_store_new(sqlite3 *db, size_t max_batch, struct db_store **out);
void db_store_free(struct db_store *ds);

/* BEGIN IMMEDIATE / COMMIT. */
int db_store_begin(struct db_store *ds);
int db_store_commit(struct db_store *ds);

/* Roll back (when a transaction is open) and forget what the batch
 * gathered. */
void db_store_rollback(struct db_store *ds);

/* Record op (and its audit row) in the open transaction; an error that
 * concerns only this op goes to op->rc. */
int db_store_apply(struct db_store *ds, struct db_op *op);

/* Write what the batch gathered: new jobs, done jobs, queue counters, the
 * campaigns' aggregates. */
int db_store_flush(struct db_store *ds, int64_t now);

/* Delete done jobs older than keep_ms in a transaction of their own (0:
 * keep them). Failures are logged. */
void db_store_prune(struct db_store *ds, int64_t keep_ms);

/* PRAGMA data_version of the store's connection into *out: it changes
 * when another connection commits to the database. */
int db_store_data_version(struct db_store *ds, int64_t *out);

const char *db_store_errmsg(struct db_store *ds);

#endif
