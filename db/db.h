/* db/db.h - the SQLite schema, connections and read queries.
 *
 * Only db/ contains SQL. A connection belongs to one thread: the writer
 * thread owns the write connection (db/writer.h); readers open their own.
 */
#ifndef TALLY_DB_DB_H
#define TALLY_DB_DB_H

#include "base/model.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#define DB_SCHEMA_VERSION 8

/* A campaign as stored, with the ids of its newest gifts. */
struct db_campaign_row {
	struct campaign_row c;
	char recent_ids[256]; /* "9,7,4": newest succeeded gifts, newest first */
};

struct db_donation_row {
	int64_t id;
	int64_t campaign_id;
	int64_t amount_cents;
	char currency[TALLY_CURRENCY_SIZE];
	char name[TALLY_DONOR_NAME_SIZE];
	char message[TALLY_MESSAGE_SIZE];
	char status[10];
	int anonymous;
	int hide_amount;
	int64_t created_at;
	char reason[200]; /* why it failed or was refunded; "" when none */
	/* The capability to read its status; "" for gifts recorded before
	 * tokens existed (staff only). */
	char status_token[TALLY_STATUS_TOKEN_SIZE];
	/* The match it reserved at intake (what its 202 said), and whether a
	 * refund gave it back: it counts as matched while the gift is
	 * pending or succeeded, or refunded and not released. */
	int64_t matched_cents;
	int match_released;
	int64_t fee_cents;   /* the covered processing fee; 0 when none */
	int offline;         /* entered by staff (source 'offline') */
	char method[8];      /* an offline gift's method; "" for online ones */
	int64_t received_at; /* an offline gift's; 0 for online ones */
};

/* The match a gift holds now: its reservation while pending or
 * succeeded, or refunded without giving it back; 0 otherwise. */
int64_t db_donation_matched(const struct db_donation_row *row);

/* Process-wide SQLite settings, before the first connection: no memory
 * statistics (they put a global mutex around every allocation, which the
 * writer and the job workers would fight over). Safe to call repeatedly. */
void db_global_init(void);

/* Open (creating if needed) the database at path with WAL and the given
 * synchronous level ("FULL" or "NORMAL"), and bring the schema up to
 * DB_SCHEMA_VERSION. The database and its -wal and -shm files are mode
 * 0600 whatever the umask (existing ones of ours open to group or others
 * are tightened). Returns 0 and a connection in *out, or a negative
 * errno-style code with a message in errbuf. The caller closes it. */
int db_open(const char *path, const char *synchronous, sqlite3 **out, char *errbuf, size_t errcap);

/* Read the giving day's schedule into *out (out->set 0 when there is
 * none) and the day's seq (meta day_seq, 0 before the first change).
 * Returns 0 or a negative errno. */
int db_load_day(sqlite3 *db, struct giving_day *out, uint64_t *seq);

/* Open a read-only connection to an existing database. */
int db_open_reader(const char *path, sqlite3 **out, char *errbuf, size_t errcap);

/* Call cb for every campaign with its stored aggregates, in id order. A
 * non-zero return from cb stops the walk and is returned. */
int db_load_campaigns(sqlite3 *db, int (*cb)(void *ud, const struct db_campaign_row *row),
                      void *ud);

/* Call cb for each donation named in ids (comma-separated, as stored in a
 * campaign's recent_ids), in that order; missing ids are skipped. */
int db_load_donations(sqlite3 *db, const char *ids,
                      int (*cb)(void *ud, const struct db_donation_row *row), void *ud);

/* Copy column col of st's row as text ("" for NULL), cut to cap. */
void db_copy_text(char *dst, size_t cap, sqlite3_stmt *st, int col);

/* A list of ids as stored ("3,7,12"; "" for none), cut to cap; returns
 * its length. */
size_t db_ids_text(const int64_t *ids, int n, char *dst, size_t cap);

/* Parse such a list into ids (at most max; ids that are not positive
 * numbers are skipped). Returns how many. */
int db_ids_parse(const char *s, int64_t *ids, int max);

/* Fetch one donation. Returns 0, -ENOENT, or -EIO. */
int db_donation_get(sqlite3 *db, int64_t id, struct db_donation_row *out);

/* What only staff see of a donation. */
struct db_donation_staff {
	char email[TALLY_EMAIL_SIZE];
	char processor_ref[128];     /* "" until the processor named the charge */
	int64_t receipt_sent_at;     /* ms since the epoch; 0 when not yet */
	int64_t refund_requested_at; /* ms since the epoch; 0 when none */
	char note[TALLY_NOTE_SIZE];  /* staff's note on an offline gift */
};

/* Fetch one donation with its staff fields, in one read. Returns 0,
 * -ENOENT, or -EIO. */
int db_donation_get_staff(sqlite3 *db, int64_t id, struct db_donation_row *out,
                          struct db_donation_staff *staff);

/* Fetch the donation created with idempotency key `key` and its request
 * fingerprint. Returns 0, -ENOENT, or -EIO. */
int db_donation_by_key(sqlite3 *db, const char *key, struct db_donation_row *out,
                       int64_t *idem_hash);

/* Store the largest donation id (0 when none) in *out. */
int db_max_donation_id(sqlite3 *db, int64_t *out);

/* What a job worker needs of a donation and its campaign. */
struct db_job_donation {
	int64_t id, campaign_id, amount_cents, created_at, receipt_sent_at;
	int64_t pool_id, matched_cents; /* its match as reserved (0: none) */
	int64_t fee_cents;              /* charged beside amount_cents */
	int offline;                    /* entered by staff: never charged */
	int anonymous, hide_amount;
	char currency[TALLY_CURRENCY_SIZE];
	char status[10];
	char token[TALLY_TOKEN_SIZE];
	char email[TALLY_EMAIL_SIZE];
	char name[TALLY_DONOR_NAME_SIZE];
	char message[TALLY_MESSAGE_SIZE];
	char campaign_slug[TALLY_SLUG_SIZE];
	char campaign_name[TALLY_CAMPAIGN_NAME_SIZE];
	char processor_ref[128];
	char reason[200];
};

/* Fetch donation id for a job. *cache holds a prepared statement between
 * calls on the same connection (NULL at first; finalize it when done).
 * Returns 0, -ESRCH when there is no such donation, or another -errno. */
int db_job_donation(sqlite3 *db, sqlite3_stmt **cache, int64_t id, struct db_job_donation *out);

/* Call cb for every job that is not done, in id order. */
int db_load_jobs(sqlite3 *db, int (*cb)(void *ud, const struct job_record *row), void *ud);

/* Call cb for up to limit jobs of queue in state, newest first. */
int db_list_jobs(sqlite3 *db, enum job_queue queue, enum job_state state, int limit,
                 int (*cb)(void *ud, const struct job_record *row), void *ud);

/* Read the failed attempts of the n jobs ids[] into out[] (n entries;
 * out[i].n = 0 for a job without any, or without a row). Returns 0 or a
 * negative errno-style code. */
int db_job_histories(sqlite3 *db, const int64_t *ids, size_t n, struct job_history *out);

/* Store the largest job id (0 when none) in *out. */
int db_max_job_id(sqlite3 *db, int64_t *out);

struct db_queue_row {
	char name[10];
	int paused;
	int64_t done_total, failed_total;
};

/* Call cb for each queue's stored switch and counters. */
int db_load_queues(sqlite3 *db, int (*cb)(void *ud, const struct db_queue_row *row), void *ud);

/* Call cb for the newest limit audit entries, newest first. */
int db_list_audit(sqlite3 *db, int limit, int (*cb)(void *ud, const struct audit_entry *row),
                  void *ud);

/* Call cb for every campaign.pause and campaign.resume audit entry, oldest
 * first (the engine finds since when a paused campaign has been paused).
 * A non-zero return from cb stops the walk and is returned. */
int db_campaign_pauses(sqlite3 *db, int (*cb)(void *ud, const struct audit_entry *row), void *ud);

/* Call cb for every staff token, in the order they were added, with the
 * SHA-256 of its secret as stored (hex); rows of a role tally does not know
 * are skipped (logged). A non-zero return from cb stops the walk and is
 * returned. */
int db_list_tokens(sqlite3 *db, int (*cb)(void *ud, const struct staff_token *t, const char *hash),
                   void *ud);

/* This database's installation id (for processor idempotency keys). */
int db_install_id(sqlite3 *db, char *out, size_t cap);

/* Map an SQLite result code to a negative errno-style code. */
int db_errno(int sqlite_rc);

#endif
