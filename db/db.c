/* db/db.c - schema migrations, connection setup and read queries. */
#include "db/db.h"
#include "base/log.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Each entry brings the schema from version i to i + 1. Never edit a
 * released step: append a new one. */
static const char *const migrations[] = {
    "CREATE TABLE campaigns ("
    "  id INTEGER PRIMARY KEY,"
    "  slug TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL,"
    "  currency TEXT NOT NULL,"
    "  goal_cents INTEGER NOT NULL DEFAULT 0 CHECK (goal_cents >= 0),"
    "  status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active','paused','closed')),"
    "  starts_at INTEGER,"
    "  ends_at INTEGER,"
    "  created_at INTEGER NOT NULL,"
    "  raised_cents INTEGER NOT NULL DEFAULT 0,"
    "  donor_count INTEGER NOT NULL DEFAULT 0,"
    "  donation_count INTEGER NOT NULL DEFAULT 0,"
    "  seq INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE TABLE donations ("
    "  id INTEGER PRIMARY KEY,"
    "  campaign_id INTEGER NOT NULL REFERENCES campaigns(id),"
    "  amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),"
    "  currency TEXT NOT NULL,"
    "  donor_name TEXT NOT NULL,"
    "  donor_email TEXT NOT NULL,"
    "  anonymous INTEGER NOT NULL DEFAULT 0,"
    "  hide_amount INTEGER NOT NULL DEFAULT 0,"
    "  message TEXT NOT NULL DEFAULT '',"
    "  payment_token TEXT NOT NULL,"
    "  status TEXT NOT NULL CHECK (status IN ('pending','succeeded','failed','refunded')),"
    "  created_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX donations_by_campaign ON donations(campaign_id, id);"
    "CREATE TABLE donors ("
    "  campaign_id INTEGER NOT NULL,"
    "  email TEXT NOT NULL,"
    "  PRIMARY KEY (campaign_id, email)"
    ") WITHOUT ROWID;",
    /* 2: idempotency keys live on the donation they created. */
    "ALTER TABLE donations ADD COLUMN idem_key TEXT;"
    "ALTER TABLE donations ADD COLUMN idem_hash INTEGER;"
    "CREATE UNIQUE INDEX donations_by_idem_key ON donations(idem_key)"
    "  WHERE idem_key IS NOT NULL;",
    /* 3: each campaign keeps the ids of its newest gifts, so start-up needs
     * no per-campaign index (which cost a random page write per gift). */
    "ALTER TABLE campaigns ADD COLUMN recent_ids TEXT NOT NULL DEFAULT '';"
    "UPDATE campaigns SET recent_ids = coalesce((SELECT group_concat(id, ',') FROM"
    "  (SELECT id FROM donations d WHERE d.campaign_id = campaigns.id"
    "   AND d.status = 'succeeded' ORDER BY id DESC LIMIT 10)), '');"
    "DROP INDEX donations_by_campaign;",
    /* 4: payments, receipts and webhooks run as durable jobs. A donation
     * starts pending; its capture job is inserted in the same transaction.
     * "running" is never stored: a job interrupted by a crash is ready (or
     * scheduled) again after restart. */
    "ALTER TABLE donations ADD COLUMN reason TEXT;"
    "ALTER TABLE donations ADD COLUMN processor_ref TEXT;"
    "ALTER TABLE donations ADD COLUMN receipt_sent_at INTEGER;"
    "ALTER TABLE donations ADD COLUMN refund_requested_at INTEGER;"
    "ALTER TABLE campaigns ADD COLUMN pending_cents INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE jobs ("
    "  id INTEGER PRIMARY KEY,"
    "  queue TEXT NOT NULL CHECK (queue IN ('payments','receipts','webhooks')),"
    "  kind TEXT NOT NULL,"
    "  donation_id INTEGER NOT NULL,"
    "  url TEXT,"
    "  state TEXT NOT NULL CHECK (state IN ('ready','running','scheduled','done','dead')),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_run_at INTEGER NOT NULL,"
    "  last_error TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX jobs_open ON jobs(id) WHERE state <> 'done';"
    "CREATE TABLE queues ("
    "  name TEXT PRIMARY KEY,"
    "  paused INTEGER NOT NULL DEFAULT 0,"
    "  done_total INTEGER NOT NULL DEFAULT 0,"
    "  failed_total INTEGER NOT NULL DEFAULT 0"
    ");"
    "INSERT INTO queues (name) VALUES ('payments'), ('receipts'), ('webhooks');"
    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY,"
    "  at INTEGER NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  target TEXT NOT NULL,"
    "  detail TEXT NOT NULL DEFAULT ''"
    ");"
    /* This database's identity, part of every processor idempotency key
     * (two databases on one processor account must never share keys). */
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT INTO meta VALUES ('install_id', 'tly' || lower(hex(randomblob(8))));",
    /* 5: a gift's public status is read with its status token, given out
     * once in its 202 (and again in replays of that 202, so it is kept as
     * given, not hashed). Gifts made before have none: staff only. */
    "ALTER TABLE donations ADD COLUMN status_token TEXT;",
    /* 6: named staff tokens with roles. Only a secret's SHA-256 is kept
     * (the secret is shown once); names are unique without regard to case
     * and stay taken once revoked, so the audit's names stay unambiguous. */
    "CREATE TABLE staff_tokens ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    "  role TEXT NOT NULL CHECK (role IN ('viewer','operator','admin')),"
    "  hash TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  revoked_at INTEGER"
    ");",
    /* 7: each job remembers its failed attempts: a JSON array, oldest
     * first, of [attempt, started at (ms since the epoch), took (ms),
     * error], at most JOB_HISTORY_MAX of them, appended by the UPDATE that
     * records the failure (db/store.c). NULL until an attempt fails: a job
     * that succeeds at once never writes it. */
    "ALTER TABLE jobs ADD COLUMN history TEXT;",
    /* 8: the giving day's mechanics. A donation is online (through the
     * processor) or offline (cheque, cash, DAF: entered by staff, counted
     * at once); fee_cents is the processing fee its donor chose to cover,
     * charged beside the gift and never counted toward goals or matches.
     * pool_id and matched_cents are the match the gift reserved at intake,
     * in the writer's order, never changed after: reserved while pending,
     * matched once succeeded, released when the gift fails (its status
     * says so) or is refunded while its pool is open (match_released 1; a
     * refund after the pool closed keeps the match). Every pool's and
     * campaign's match is a SUM over these columns. A challenge's awards are rows of their
     * own, each naming the gift that unlocked it. giving_day holds the
     * day's schedule (one row at most). */
    "ALTER TABLE campaigns ADD COLUMN category TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE campaigns ADD COLUMN matched_cents INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE campaigns ADD COLUMN bonus_cents INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE donations ADD COLUMN source TEXT NOT NULL DEFAULT 'online'"
    "  CHECK (source IN ('online','offline'));"
    "ALTER TABLE donations ADD COLUMN method TEXT;"
    "ALTER TABLE donations ADD COLUMN note TEXT;"
    "ALTER TABLE donations ADD COLUMN received_at INTEGER;"
    "ALTER TABLE donations ADD COLUMN fee_cents INTEGER NOT NULL DEFAULT 0"
    "  CHECK (fee_cents >= 0);"
    "ALTER TABLE donations ADD COLUMN pool_id INTEGER;"
    "ALTER TABLE donations ADD COLUMN matched_cents INTEGER NOT NULL DEFAULT 0"
    "  CHECK (matched_cents >= 0);"
    "ALTER TABLE donations ADD COLUMN match_released INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE match_pools ("
    "  id INTEGER PRIMARY KEY,"
    "  slug TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL,"
    "  sponsor TEXT NOT NULL DEFAULT '',"
    "  currency TEXT NOT NULL,"
    "  amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),"
    "  ratio INTEGER NOT NULL DEFAULT 1 CHECK (ratio BETWEEN 1 AND 100),"
    "  per_gift_cap_cents INTEGER NOT NULL DEFAULT 0,"
    "  per_donor_cap_cents INTEGER NOT NULL DEFAULT 0,"
    "  campaigns TEXT NOT NULL DEFAULT '',"
    "  starts_at INTEGER,"
    "  ends_at INTEGER,"
    "  match_offline INTEGER NOT NULL DEFAULT 0,"
    "  status TEXT NOT NULL DEFAULT 'active'"
    "    CHECK (status IN ('active','paused','depleted')),"
    "  created_at INTEGER NOT NULL"
    ");"
    "CREATE TABLE challenges ("
    "  id INTEGER PRIMARY KEY,"
    "  slug TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL,"
    "  sponsor TEXT NOT NULL DEFAULT '',"
    "  currency TEXT NOT NULL,"
    "  kind TEXT NOT NULL CHECK (kind IN ('amount','donors','gifts')),"
    "  threshold INTEGER NOT NULL CHECK (threshold > 0),"
    "  bonus_cents INTEGER NOT NULL CHECK (bonus_cents > 0),"
    "  winners INTEGER NOT NULL DEFAULT 0 CHECK (winners >= 0),"
    "  campaigns TEXT NOT NULL DEFAULT '',"
    "  min_gift_cents INTEGER NOT NULL DEFAULT 0,"
    "  online_only INTEGER NOT NULL DEFAULT 0,"
    "  starts_at INTEGER NOT NULL,"
    "  ends_at INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL"
    ");"
    "CREATE TABLE challenge_awards ("
    "  challenge_id INTEGER NOT NULL,"
    "  campaign_id INTEGER NOT NULL,"
    "  bonus_cents INTEGER NOT NULL,"
    "  donation_id INTEGER NOT NULL,"
    "  at INTEGER NOT NULL,"
    "  PRIMARY KEY (challenge_id, campaign_id)"
    ") WITHOUT ROWID;"
    "CREATE TABLE giving_day ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  name TEXT NOT NULL DEFAULT '',"
    "  early_at INTEGER,"
    "  opens_at INTEGER NOT NULL,"
    "  closes_at INTEGER NOT NULL,"
    "  currency TEXT"
    ");",
};

_Static_assert(UTIL_ARRAY_LEN(migrations) == DB_SCHEMA_VERSION, "one migration per schema version");

static void global_init_once(void)
{
	int rc = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);

	/* MISUSE: SQLite was initialized already (an embedding program);
	 * the statistics stay on, which costs speed, not correctness. */
	if (rc != SQLITE_OK && rc != SQLITE_MISUSE)
		fprintf(stderr, "tally: sqlite3_config: %s\n", sqlite3_errstr(rc));
}

void db_global_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, global_init_once);
}

int db_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	default:
		return -EIO;
	}
}

static int fail(sqlite3 *db, int rc, const char *what, char *errbuf, size_t errcap)
{
	snprintf(errbuf, errcap, "%s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	return db_errno(rc) ? db_errno(rc) : -EIO;
}

static int exec(sqlite3 *db, const char *sql, char *errbuf, size_t errcap)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : fail(db, rc, sql, errbuf, errcap);
}

static int user_version(sqlite3 *db, int *out)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);

	if (rc != SQLITE_OK)
		return db_errno(rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : db_errno(rc);
}

static int migrate(sqlite3 *db, char *errbuf, size_t errcap)
{
	int version = 0, rc;
	char sql[64];

	rc = exec(db, "BEGIN IMMEDIATE", errbuf, errcap);
	if (rc)
		return rc;
	rc = user_version(db, &version);
	if (rc) {
		snprintf(errbuf, errcap, "reading user_version: %s", sqlite3_errmsg(db));
		goto fail;
	}
	if (version > DB_SCHEMA_VERSION) {
		snprintf(errbuf, errcap, "database schema version %d is newer than this tally (%d)",
		         version, DB_SCHEMA_VERSION);
		rc = -EPROTO;
		goto fail;
	}
	for (; version < DB_SCHEMA_VERSION; version++) {
		rc = exec(db, migrations[version], errbuf, errcap);
		if (rc)
			goto fail;
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", DB_SCHEMA_VERSION);
	rc = exec(db, sql, errbuf, errcap);
	if (rc)
		goto fail;
	return exec(db, "COMMIT", errbuf, errcap);
fail:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* The database holds donors' names and emails: its files are 0600
 * whatever the umask. SQLite would create the database 0644 less the
 * umask, and gives a -wal, -shm or -journal file the database file's mode
 * when it creates one; so the database file is created here, 0600, before
 * SQLite opens it. Files of ours that an older tally left open to group or
 * others lose those bits (logged as db.mode_tightened); someone else's are
 * left as they are, with a warning. */
static int private_files(const char *path, char *errbuf, size_t errcap)
{
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
	char p[4200];
	struct stat st;
	int fd;

	if (!path[0] || !strcmp(path, ":memory:") || !strncmp(path, "file:", 5))
		return 0; /* not a plain file name: SQLite's business */
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0) {
		if (close(fd)) {
			int e = errno; /* snprintf may change errno */

			snprintf(errbuf, errcap, "%s: %s", path, strerror(e));
			return -e;
		}
	} else if (errno != EEXIST) {
		int e = errno;

		snprintf(errbuf, errcap, "%s: %s", path, strerror(e));
		return -e;
	}
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		if (snprintf(p, sizeof(p), "%s%s", path, suffixes[i]) >= (int)sizeof(p)) {
			snprintf(errbuf, errcap, "%s: path too long", path);
			return -ENAMETOOLONG;
		}
		if (stat(p, &st)) {
			int e = errno;

			if (e == ENOENT)
				continue;
			snprintf(errbuf, errcap, "%s: %s", p, strerror(e));
			return -e;
		}
		if (!S_ISREG(st.st_mode) || !(st.st_mode & (S_IRWXG | S_IRWXO)))
			continue;
		if (st.st_uid != geteuid())
			log_msg(LOG_WARN, "db.mode_open",
			        "%s is open to group or others (mode %04o) and belongs to "
			        "another user: not changed",
			        p, (unsigned)(st.st_mode & 07777));
		else if (chmod(p, st.st_mode & 07700))
			log_msg(LOG_WARN, "db.mode_open",
			        "%s is open to group or others (mode %04o): %s", p,
			        (unsigned)(st.st_mode & 07777), strerror(errno));
		else
			log_msg(LOG_WARN, "db.mode_tightened", "%s was mode %04o, now %04o", p,
			        (unsigned)(st.st_mode & 07777), (unsigned)(st.st_mode & 07700));
	}
	return 0;
}

int db_open(const char *path, const char *synchronous, sqlite3 **out, char *errbuf, size_t errcap)
{
	sqlite3 *db = NULL;
	char sql[128];
	int rc;

	*out = NULL;
	db_global_init();
	rc = private_files(path, errbuf, errcap);
	if (rc)
		return rc;
	rc = sqlite3_open_v2(
	    path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		rc = fail(db, rc, path, errbuf, errcap);
		goto fail;
	}
	rc = sqlite3_busy_timeout(db, 5000);
	if (rc != SQLITE_OK) {
		rc = fail(db, rc, "busy_timeout", errbuf, errcap);
		goto fail;
	}
	snprintf(sql, sizeof(sql),
	         "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=ON;"
	         "PRAGMA journal_size_limit=67108864;",
	         synchronous);
	rc = exec(db, sql, errbuf, errcap);
	if (rc)
		goto fail;
	{
		/* journal_mode answers with the mode it got; insist on WAL. */
		sqlite3_stmt *st;

		rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL);
		if (rc != SQLITE_OK) {
			rc = fail(db, rc, "journal_mode", errbuf, errcap);
			goto fail;
		}
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(st, 0), "wal")) {
			sqlite3_finalize(st);
			snprintf(errbuf, errcap, "%s: cannot use WAL journal mode", path);
			rc = -EIO;
			goto fail;
		}
		sqlite3_finalize(st);
	}
	rc = migrate(db, errbuf, errcap);
	if (rc)
		goto fail;
	/* The writer descends three b-trees per gift: keep their inner pages
	 * in its own cache rather than re-reading them through syscalls. */
	rc = exec(db, "PRAGMA cache_size=-65536", errbuf, errcap);
	if (rc)
		goto fail;
	*out = db;
	return 0;
fail:
	sqlite3_close(db);
	return rc;
}

int db_open_reader(const char *path, sqlite3 **out, char *errbuf, size_t errcap)
{
	sqlite3 *db = NULL;
	int rc;

	*out = NULL;
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(db, 5000);
	if (rc != SQLITE_OK) {
		rc = fail(db, rc, path, errbuf, errcap);
		sqlite3_close(db);
		return rc;
	}
	*out = db;
	return 0;
}

void db_copy_text(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

size_t db_ids_text(const int64_t *ids, int n, char *dst, size_t cap)
{
	size_t len = 0;

	dst[0] = '\0';
	for (int i = 0; i < n && len < cap; i++)
		len += (size_t)snprintf(dst + len, cap - len, "%s%lld", i ? "," : "",
		                        (long long)ids[i]);
	return len < cap ? len : cap - 1;
}

int db_ids_parse(const char *s, int64_t *ids, int max)
{
	int n = 0;

	while (*s && n < max) {
		char *end;
		long long v = strtoll(s, &end, 10);

		if (end == s)
			break;
		if (v > 0)
			ids[n++] = v;
		s = *end == ',' ? end + 1 : end;
	}
	return n;
}

int db_load_campaigns(sqlite3 *db, int (*cb)(void *ud, const struct db_campaign_row *row), void *ud)
{
	static const char sql[] =
	    "SELECT id, slug, name, currency, status, goal_cents, coalesce(starts_at,0),"
	    " coalesce(ends_at,0), created_at, raised_cents, donor_count, donation_count, seq,"
	    " recent_ids, pending_cents, category, matched_cents, bonus_cents"
	    " FROM campaigns ORDER BY id";
	sqlite3_stmt *st;
	struct db_campaign_row row;
	int rc, stop = 0;

	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_errno(rc);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct campaign_row *c = &row.c;
		char status[16];
		int known;

		memset(&row, 0, sizeof(row));
		c->id = sqlite3_column_int64(st, 0);
		db_copy_text(c->slug, sizeof(c->slug), st, 1);
		db_copy_text(c->name, sizeof(c->name), st, 2);
		db_copy_text(c->currency, sizeof(c->currency), st, 3);
		db_copy_text(status, sizeof(status), st, 4);
		known = campaign_status_by_name(status);
		c->status = known < 0 ? CAMPAIGN_ACTIVE : (enum campaign_status)known;
		c->goal_cents = sqlite3_column_int64(st, 5);
		c->starts_at = sqlite3_column_int64(st, 6);
		c->ends_at = sqlite3_column_int64(st, 7);
		c->created_at = sqlite3_column_int64(st, 8);
		c->raised_cents = sqlite3_column_int64(st, 9);
		c->donor_count = sqlite3_column_int64(st, 10);
		c->donation_count = sqlite3_column_int64(st, 11);
		c->seq = (uint64_t)sqlite3_column_int64(st, 12);
		db_copy_text(row.recent_ids, sizeof(row.recent_ids), st, 13);
		c->pending_cents = sqlite3_column_int64(st, 14);
		db_copy_text(c->category, sizeof(c->category), st, 15);
		c->matched_cents = sqlite3_column_int64(st, 16);
		c->bonus_cents = sqlite3_column_int64(st, 17);
		stop = cb(ud, &row);
		if (stop)
			break;
	}
	sqlite3_finalize(st);
	if (stop)
		return stop;
	return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

int64_t db_donation_matched(const struct db_donation_row *row)
{
	if (!strcmp(row->status, "pending") || !strcmp(row->status, "succeeded") ||
	    (!strcmp(row->status, "refunded") && !row->match_released))
		return row->matched_cents;
	return 0;
}

static void read_donation(sqlite3_stmt *st, struct db_donation_row *row)
{
	memset(row, 0, sizeof(*row));
	row->id = sqlite3_column_int64(st, 0);
	row->campaign_id = sqlite3_column_int64(st, 1);
	row->amount_cents = sqlite3_column_int64(st, 2);
	db_copy_text(row->currency, sizeof(row->currency), st, 3);
	db_copy_text(row->name, sizeof(row->name), st, 4);
	db_copy_text(row->message, sizeof(row->message), st, 5);
	db_copy_text(row->status, sizeof(row->status), st, 6);
	row->anonymous = sqlite3_column_int(st, 7);
	row->hide_amount = sqlite3_column_int(st, 8);
	row->created_at = sqlite3_column_int64(st, 9);
	db_copy_text(row->reason, sizeof(row->reason), st, 10);
	db_copy_text(row->status_token, sizeof(row->status_token), st, 11);
	row->matched_cents = sqlite3_column_int64(st, 12);
	row->match_released = sqlite3_column_int(st, 13);
	row->fee_cents = sqlite3_column_int64(st, 14);
	row->offline = sqlite3_column_int(st, 15);
	db_copy_text(row->method, sizeof(row->method), st, 16);
	row->received_at = sqlite3_column_int64(st, 17);
}

/* The columns read_donation reads, DONATION_NCOLS of them. */
#define DONATION_COLUMNS                                                                           \
	"id, campaign_id, amount_cents, currency, donor_name, message, status, anonymous,"         \
	" hide_amount, created_at, coalesce(reason, ''), coalesce(status_token, ''),"              \
	" matched_cents, match_released, fee_cents, source = 'offline', coalesce(method, ''),"     \
	" coalesce(received_at, 0)"
#define DONATION_NCOLS 18 /* the columns above: read_donation's */

int db_load_donations(sqlite3 *db, const char *ids,
                      int (*cb)(void *ud, const struct db_donation_row *row), void *ud)
{
	static const char sql[] = "SELECT " DONATION_COLUMNS " FROM donations WHERE id = ?1";
	struct db_donation_row row;
	sqlite3_stmt *st;
	const char *p = ids;
	int rc = SQLITE_DONE, stop = 0;

	if (!*ids)
		return 0;
	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_errno(rc);
	while (*p && !stop) {
		char *end;
		long long id = strtoll(p, &end, 10);

		if (end == p)
			break;
		p = *end == ',' ? end + 1 : end;
		if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK) {
			rc = SQLITE_ERROR;
			break;
		}
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			read_donation(st, &row);
			stop = cb(ud, &row);
			rc = SQLITE_DONE;
		}
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			break;
	}
	sqlite3_finalize(st);
	if (stop)
		return stop;
	return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

/* One donation by id, and its staff columns when staff is not NULL. */
static int donation_get(sqlite3 *db, int64_t id, struct db_donation_row *out,
                        struct db_donation_staff *staff)
{
	static const char sql[] = "SELECT " DONATION_COLUMNS " FROM donations WHERE id = ?1";
	static const char sql_staff[] =
	    "SELECT " DONATION_COLUMNS ", donor_email, coalesce(processor_ref, ''),"
	    " coalesce(receipt_sent_at, 0), coalesce(refund_requested_at, 0), coalesce(note, '')"
	    " FROM donations WHERE id = ?1";
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db, staff ? sql_staff : sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_errno(rc);
	if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK) {
		sqlite3_finalize(st);
		return -EIO;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		read_donation(st, out);
		if (staff) {
			db_copy_text(staff->email, sizeof(staff->email), st, DONATION_NCOLS);
			db_copy_text(staff->processor_ref, sizeof(staff->processor_ref), st,
			             DONATION_NCOLS + 1);
			staff->receipt_sent_at = sqlite3_column_int64(st, DONATION_NCOLS + 2);
			staff->refund_requested_at = sqlite3_column_int64(st, DONATION_NCOLS + 3);
			db_copy_text(staff->note, sizeof(staff->note), st, DONATION_NCOLS + 4);
		}
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : db_errno(rc);
}

int db_donation_get(sqlite3 *db, int64_t id, struct db_donation_row *out)
{
	return donation_get(db, id, out, NULL);
}

int db_donation_get_staff(sqlite3 *db, int64_t id, struct db_donation_row *out,
                          struct db_donation_staff *staff)
{
	return donation_get(db, id, out, staff);
}

int db_donation_by_key(sqlite3 *db, const char *key, struct db_donation_row *out,
                       int64_t *idem_hash)
{
	static const char sql[] =
	    "SELECT " DONATION_COLUMNS ", idem_hash FROM donations WHERE idem_key = ?1";
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_errno(rc);
	if (sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC) != SQLITE_OK) {
		sqlite3_finalize(st);
		return -EIO;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		read_donation(st, out);
		*idem_hash = sqlite3_column_int64(st, DONATION_NCOLS);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : db_errno(rc);
}

/* Run sql, which yields one integer, into *out. */
static int query_int64(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK)
		return db_errno(rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : db_errno(rc);
}

int db_max_donation_id(sqlite3 *db, int64_t *out)
{
	return query_int64(db, "SELECT coalesce(max(id), 0) FROM donations", out);
}

int db_max_job_id(sqlite3 *db, int64_t *out)
{
	/* Pruned jobs leave their ids behind in meta: never hand one out
	 * again (audit entries and links name jobs by id). */
	return query_int64(db,
	                   "SELECT max(coalesce((SELECT max(id) FROM jobs), 0),"
	                   " coalesce((SELECT CAST(value AS INTEGER) FROM meta"
	                   " WHERE key = 'job_id_floor'), 0))",
	                   out);
}

int db_job_donation(sqlite3 *db, sqlite3_stmt **cache, int64_t id, struct db_job_donation *out)
{
	static const char sql[] =
	    "SELECT d.id, d.campaign_id, d.amount_cents, d.created_at,"
	    " coalesce(d.receipt_sent_at, 0), d.anonymous, d.hide_amount, d.currency, d.status,"
	    " d.payment_token, d.donor_email, d.donor_name, d.message, c.slug, c.name,"
	    " coalesce(d.processor_ref, ''), coalesce(d.reason, ''), coalesce(d.pool_id, 0),"
	    " d.matched_cents, d.fee_cents, d.source = 'offline'"
	    " FROM donations d JOIN campaigns c ON c.id = d.campaign_id WHERE d.id = ?1";
	sqlite3_stmt *st = *cache;
	int rc;

	if (!st) {
		rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
		if (rc != SQLITE_OK)
			return db_errno(rc);
		*cache = st;
	}
	if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK)
		return -EIO;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memset(out, 0, sizeof(*out));
		out->id = sqlite3_column_int64(st, 0);
		out->campaign_id = sqlite3_column_int64(st, 1);
		out->amount_cents = sqlite3_column_int64(st, 2);
		out->created_at = sqlite3_column_int64(st, 3);
		out->receipt_sent_at = sqlite3_column_int64(st, 4);
		out->anonymous = sqlite3_column_int(st, 5);
		out->hide_amount = sqlite3_column_int(st, 6);
		db_copy_text(out->currency, sizeof(out->currency), st, 7);
		db_copy_text(out->status, sizeof(out->status), st, 8);
		db_copy_text(out->token, sizeof(out->token), st, 9);
		db_copy_text(out->email, sizeof(out->email), st, 10);
		db_copy_text(out->name, sizeof(out->name), st, 11);
		db_copy_text(out->message, sizeof(out->message), st, 12);
		db_copy_text(out->campaign_slug, sizeof(out->campaign_slug), st, 13);
		db_copy_text(out->campaign_name, sizeof(out->campaign_name), st, 14);
		db_copy_text(out->processor_ref, sizeof(out->processor_ref), st, 15);
		db_copy_text(out->reason, sizeof(out->reason), st, 16);
		out->pool_id = sqlite3_column_int64(st, 17);
		out->matched_cents = sqlite3_column_int64(st, 18);
		out->fee_cents = sqlite3_column_int64(st, 19);
		out->offline = sqlite3_column_int(st, 20);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ESRCH : db_errno(rc);
}

#define JOB_COLUMNS                                                                                \
	"id, donation_id, next_run_at, created_at, updated_at, attempts, queue, kind, state,"      \
	" coalesce(url, ''), coalesce(last_error, '')"

/* Read a job row. Returns 0, or -EINVAL when its queue, kind or state is
 * none that tally knows (the row is skipped). */
static int read_job(sqlite3_stmt *st, struct job_record *row)
{
	char queue[16], kind[32], state[16];
	int q, k, s;

	memset(row, 0, sizeof(*row));
	row->id = sqlite3_column_int64(st, 0);
	row->donation_id = sqlite3_column_int64(st, 1);
	row->next_run_at = sqlite3_column_int64(st, 2);
	row->created_at = sqlite3_column_int64(st, 3);
	row->attempts = sqlite3_column_int(st, 5);
	db_copy_text(queue, sizeof(queue), st, 6);
	db_copy_text(kind, sizeof(kind), st, 7);
	db_copy_text(state, sizeof(state), st, 8);
	db_copy_text(row->url, sizeof(row->url), st, 9);
	db_copy_text(row->last_error, sizeof(row->last_error), st, 10);
	q = job_queue_by_name(queue);
	k = job_kind_by_name(kind);
	s = job_state_by_name(state);
	if (q < 0 || k < 0 || s < 0)
		return -EINVAL;
	row->queue = (enum job_queue)q;
	row->kind = (enum job_kind)k;
	row->state = (enum job_state)s;
	return 0;
}

/* Step st to the end, handing each row to visit (which reads it and calls
 * the caller's callback); a non-zero return stops the walk. */
static int walk(sqlite3_stmt *st, int (*visit)(sqlite3_stmt *st, void *ctx), void *ctx)
{
	int rc, stop = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		stop = visit(st, ctx);
		if (stop)
			break;
	}
	sqlite3_finalize(st);
	if (stop)
		return stop;
	return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

struct job_walk {
	int (*cb)(void *ud, const struct job_record *row);
	void *ud;
};

static int visit_job(sqlite3_stmt *st, void *ctx)
{
	struct job_walk *w = ctx;
	struct job_record row;

	if (read_job(st, &row)) {
		log_msg(LOG_WARN, "jobs.row_unknown",
		        "job %lld: unknown queue, kind or state; skipped", (long long)row.id);
		return 0;
	}
	return w->cb(w->ud, &row);
}

int db_load_jobs(sqlite3 *db, int (*cb)(void *ud, const struct job_record *row), void *ud)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db,
	                            "SELECT " JOB_COLUMNS " FROM jobs INDEXED BY jobs_open"
	                            " WHERE state <> 'done' ORDER BY id",
	                            -1, &st, NULL);

	if (rc != SQLITE_OK)
		return db_errno(rc);
	return walk(st, visit_job, &(struct job_walk){cb, ud});
}

int db_list_jobs(sqlite3 *db, enum job_queue queue, enum job_state state, int limit,
                 int (*cb)(void *ud, const struct job_record *row), void *ud)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db,
	                            "SELECT " JOB_COLUMNS " FROM jobs WHERE queue = ?1 AND"
	                            " state = ?2 ORDER BY id DESC LIMIT ?3",
	                            -1, &st, NULL);

	if (rc != SQLITE_OK)
		return db_errno(rc);
	if (sqlite3_bind_text(st, 1, job_queue_names[queue], -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 2, job_state_names[state], -1, SQLITE_STATIC) ||
	    sqlite3_bind_int(st, 3, limit)) {
		sqlite3_finalize(st);
		return -EIO;
	}
	return walk(st, visit_job, &(struct job_walk){cb, ud});
}

/* One job's history (see migration 7), oldest first: entries that are not
 * [attempt, at, took, error] with whole numbers are skipped, a history
 * that is not a JSON array reads as none. */
#define HISTORY_SQL                                                                                \
	"SELECT json_extract(e.value, '$[0]'), json_extract(e.value, '$[1]'),"                     \
	" json_extract(e.value, '$[2]'), json_extract(e.value, '$[3]')"                            \
	" FROM jobs j, json_each(CASE WHEN json_valid(j.history) THEN"                             \
	" CASE json_type(j.history) WHEN 'array' THEN j.history ELSE '[]' END ELSE '[]' END) e"    \
	" WHERE j.id = ?1 AND e.type = 'array' ORDER BY e.key"

static void read_attempt(sqlite3_stmt *st, struct job_history *h)
{
	struct job_attempt *a;
	const unsigned char *t;
	size_t len;

	for (int i = 0; i < 3; i++)
		if (sqlite3_column_type(st, i) != SQLITE_INTEGER)
			return;
	if (h->n == JOB_HISTORY_MAX) {
		/* more than tally writes: keep the newest */
		memmove(h->a, h->a + 1, (JOB_HISTORY_MAX - 1) * sizeof(h->a[0]));
		h->n--;
	}
	a = &h->a[h->n++];
	a->attempt = sqlite3_column_int(st, 0);
	a->at_ms = sqlite3_column_int64(st, 1);
	a->took_ms = sqlite3_column_int64(st, 2);
	t = sqlite3_column_text(st, 3);
	len = t ? util_utf8_cut((const char *)t, (size_t)sqlite3_column_bytes(st, 3),
	                        JOB_HISTORY_ERROR_MAX)
	        : 0;
	if (len)
		memcpy(a->error, t, len);
	a->error[len] = '\0';
}

int db_job_histories(sqlite3 *db, const int64_t *ids, size_t n, struct job_history *out)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, HISTORY_SQL, -1, &st, NULL), err = 0;

	for (size_t i = 0; i < n; i++)
		out[i].n = 0;
	if (rc != SQLITE_OK)
		return db_errno(rc) ? db_errno(rc) : -EIO;
	for (size_t i = 0; i < n && !err; i++) {
		if (sqlite3_bind_int64(st, 1, ids[i]) != SQLITE_OK) {
			err = -EIO;
			break;
		}
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			read_attempt(st, &out[i]);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			err = db_errno(rc) ? db_errno(rc) : -EIO;
	}
	sqlite3_finalize(st);
	return err;
}

struct queue_walk {
	int (*cb)(void *ud, const struct db_queue_row *row);
	void *ud;
};

static int visit_queue(sqlite3_stmt *st, void *ctx)
{
	struct queue_walk *w = ctx;
	struct db_queue_row row = {0};

	db_copy_text(row.name, sizeof(row.name), st, 0);
	row.paused = sqlite3_column_int(st, 1);
	row.done_total = sqlite3_column_int64(st, 2);
	row.failed_total = sqlite3_column_int64(st, 3);
	return w->cb(w->ud, &row);
}

int db_load_queues(sqlite3 *db, int (*cb)(void *ud, const struct db_queue_row *row), void *ud)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, "SELECT name, paused, done_total, failed_total FROM queues",
	                            -1, &st, NULL);

	if (rc != SQLITE_OK)
		return db_errno(rc);
	return walk(st, visit_queue, &(struct queue_walk){cb, ud});
}

struct audit_walk {
	int (*cb)(void *ud, const struct audit_entry *row);
	void *ud;
};

static int visit_audit(sqlite3_stmt *st, void *ctx)
{
	struct audit_walk *w = ctx;
	struct audit_entry row = {0};

	row.id = sqlite3_column_int64(st, 0);
	row.at = sqlite3_column_int64(st, 1);
	db_copy_text(row.actor, sizeof(row.actor), st, 2);
	db_copy_text(row.action, sizeof(row.action), st, 3);
	db_copy_text(row.target, sizeof(row.target), st, 4);
	db_copy_text(row.detail, sizeof(row.detail), st, 5);
	return w->cb(w->ud, &row);
}

int db_list_audit(sqlite3 *db, int limit, int (*cb)(void *ud, const struct audit_entry *row),
                  void *ud)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db,
	                            "SELECT id, at, actor, action, target, detail FROM audit"
	                            " ORDER BY id DESC LIMIT ?1",
	                            -1, &st, NULL);

	if (rc != SQLITE_OK)
		return db_errno(rc);
	if (sqlite3_bind_int(st, 1, limit)) {
		sqlite3_finalize(st);
		return -EIO;
	}
	return walk(st, visit_audit, &(struct audit_walk){cb, ud});
}

int db_campaign_pauses(sqlite3 *db, int (*cb)(void *ud, const struct audit_entry *row), void *ud)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db,
	                            "SELECT id, at, actor, action, target, detail FROM audit"
	                            " WHERE action IN ('campaign.pause', 'campaign.resume')"
	                            " ORDER BY id",
	                            -1, &st, NULL);

	if (rc != SQLITE_OK)
		return db_errno(rc);
	return walk(st, visit_audit, &(struct audit_walk){cb, ud});
}

int db_load_day(sqlite3 *db, struct giving_day *out, uint64_t *seq)
{
	sqlite3_stmt *st;
	int64_t n = 0;
	int rc = sqlite3_prepare_v2(db,
	                            "SELECT name, coalesce(early_at, 0), opens_at, closes_at,"
	                            " coalesce(currency, '') FROM giving_day WHERE id = 1",
	                            -1, &st, NULL);

	memset(out, 0, sizeof(*out));
	if (rc != SQLITE_OK)
		return db_errno(rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->set = 1;
		db_copy_text(out->name, sizeof(out->name), st, 0);
		out->early_at = sqlite3_column_int64(st, 1);
		out->opens_at = sqlite3_column_int64(st, 2);
		out->closes_at = sqlite3_column_int64(st, 3);
		db_copy_text(out->currency, sizeof(out->currency), st, 4);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_errno(rc);
	rc = query_int64(db,
	                 "SELECT coalesce((SELECT CAST(value AS INTEGER) FROM meta"
	                 " WHERE key = 'day_seq'), 0)",
	                 &n);
	*seq = n > 0 ? (uint64_t)n : 0;
	return rc;
}

int db_install_id(sqlite3 *db, char *out, size_t cap)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'install_id'", -1, &st,
	                            NULL);

	if (rc != SQLITE_OK)
		return db_errno(rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		db_copy_text(out, cap, st, 0);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : db_errno(rc);
}

struct token_walk {
	int (*cb)(void *ud, const struct staff_token *t, const char *hash);
	void *ud;
};

static int visit_token(sqlite3_stmt *st, void *ctx)
{
	struct token_walk *w = ctx;
	struct staff_token t = {0};
	char role[16], hash[TALLY_STAFF_HASH_SIZE];
	int r;

	db_copy_text(t.name, sizeof(t.name), st, 0);
	db_copy_text(role, sizeof(role), st, 1);
	db_copy_text(hash, sizeof(hash), st, 2);
	t.created_at = sqlite3_column_int64(st, 3);
	t.revoked_at = sqlite3_column_int64(st, 4);
	r = staff_role_by_name(role);
	if (r < 0) {
		log_msg(LOG_WARN, "tokens.row_unknown", "staff token %s: unknown role %s; skipped",
		        t.name, role);
		return 0;
	}
	t.role = (enum staff_role)r;
	return w->cb(w->ud, &t, hash);
}

int db_list_tokens(sqlite3 *db, int (*cb)(void *ud, const struct staff_token *t, const char *hash),
                   void *ud)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db,
	                            "SELECT name, role, hash, created_at, coalesce(revoked_at, 0)"
	                            " FROM staff_tokens ORDER BY id",
	                            -1, &st, NULL);

	if (rc != SQLITE_OK)
		return db_errno(rc);
	return walk(st, visit_token, &(struct token_walk){cb, ud});
}
