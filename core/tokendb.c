/* core/tokendb.c - staff tokens managed straight on a database file (see
 * tokendb.h). The change goes through the same store as the writer's
 * (db_apply_now): the same statements, the same audit row.
 */
#include "core/tokendb.h"
#include "core/tokens.h"
#include "core/validate.h"
#include "base/err.h"
#include "base/util.h"
#include "db/db.h"
#include "db/writer.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Open the database at path; must_exist refuses to create one (a typo in
 * --db would otherwise list an empty new database). */
static int open_db(const char *path, int must_exist, sqlite3 **db, char *err, size_t errcap)
{
	if (must_exist && access(path, F_OK)) {
		int rc = -errno;

		snprintf(err, errcap, "%s: %s", path,
		         rc == -ENOENT ? "no database there (see --db)" : strerror(-rc));
		return rc;
	}
	return db_open(path, "FULL", db, err, errcap);
}

/* Close db; returns rc, or -EIO when rc was 0 and closing failed. */
static int close_db(const char *path, sqlite3 *db, int rc, char *err, size_t errcap)
{
	int crc = sqlite3_close(db);

	if (crc == SQLITE_OK || rc)
		return rc;
	snprintf(err, errcap, "%s: closing: %s", path, sqlite3_errstr(crc));
	return -EIO;
}

/* Record op on the database at path. Returns 0, op->rc's meaning as one of
 * tally's codes, or a negative errno. */
static int apply(const char *path, int must_exist, struct db_op *op, char *err, size_t errcap)
{
	sqlite3 *db = NULL;
	int rc = open_db(path, must_exist, &db, err, errcap);

	if (rc)
		return rc;
	rc = db_apply_now(db, op, err, errcap);
	rc = close_db(path, db, rc, err, errcap);
	if (rc)
		return rc;
	switch (op->rc) {
	case 0:
		return 0;
	case -EEXIST:
		return TALLY_ETOKEN_EXISTS;
	case -ENOENT:
		return TALLY_ENOTOKEN;
	default:
		snprintf(err, errcap, "%s: %s", path, strerror(-op->rc));
		return op->rc;
	}
}

static void audit(struct db_op *op, const char *actor, const char *action, const char *target,
                  const char *detail)
{
	snprintf(op->audit.actor, sizeof(op->audit.actor), "%s", actor);
	snprintf(op->audit.action, sizeof(op->audit.action), "%s", action);
	snprintf(op->audit.target, sizeof(op->audit.target), "%s", target);
	snprintf(op->audit.detail, sizeof(op->audit.detail), "%s", detail);
}

int tokendb_add(const char *path, const char *name, enum staff_role role, const char *actor,
                char *secret, size_t cap, char *err, size_t errcap)
{
	struct db_op op;
	char detail[32];
	int rc;

	if (!validate_token_name(name, strlen(name)) || role <= STAFF_PUBLIC || role >= STAFF_ROLES)
		return TALLY_EFIELDS;
	if (tokens_name_reserved(name))
		return TALLY_ETOKEN_EXISTS;
	memset(&op, 0, sizeof(op));
	op.kind = DB_OP_TOKEN_ADD;
	op.now_ms = util_now_ms();
	snprintf(op.u.token.name, sizeof(op.u.token.name), "%s", name);
	op.u.token.role = role;
	rc = tokens_secret_new(secret, cap);
	if (!rc)
		rc = tokens_hash_hex(secret, strlen(secret), op.u.token.hash);
	if (rc) {
		snprintf(err, errcap, "cannot make a secret: %s", strerror(-rc));
		goto fail;
	}
	snprintf(detail, sizeof(detail), "role %s", staff_role_names[role]);
	audit(&op, actor, "token.create", name, detail);
	rc = apply(path, 0, &op, err, errcap);
	if (!rc)
		return 0;
fail:
	OPENSSL_cleanse(secret, cap);
	return rc;
}

int tokendb_revoke(const char *path, const char *name, const char *actor, struct staff_token *out,
                   int *changed, char *err, size_t errcap)
{
	struct db_op op;
	int rc;

	if (!validate_token_name(name, strlen(name)))
		return TALLY_ENOTOKEN;
	if (tokens_name_reserved(name))
		return TALLY_ESTARTUP;
	memset(&op, 0, sizeof(op));
	op.kind = DB_OP_TOKEN_REVOKE;
	op.now_ms = util_now_ms();
	snprintf(op.u.token.name, sizeof(op.u.token.name), "%s", name);
	audit(&op, actor, "token.revoke", name, "");
	rc = apply(path, 1, &op, err, errcap);
	if (rc)
		return rc;
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", op.u.token.name);
	out->role = op.u.token.role;
	out->created_at = op.u.token.created_at;
	out->revoked_at = op.u.token.revoked_at;
	*changed = op.u.token.changed;
	return 0;
}

struct list_ctx {
	int (*cb)(void *ud, const struct staff_token *t);
	void *ud;
};

static int list_cb(void *ud, const struct staff_token *t, const char *hash)
{
	struct list_ctx *lc = ud;

	(void)hash; /* never shown */
	return lc->cb(lc->ud, t);
}

int tokendb_list(const char *path, int (*cb)(void *ud, const struct staff_token *t), void *ud,
                 char *err, size_t errcap)
{
	struct list_ctx lc = {cb, ud};
	sqlite3 *db = NULL;
	int rc = open_db(path, 1, &db, err, errcap);

	if (rc)
		return rc;
	rc = db_list_tokens(db, list_cb, &lc);
	if (rc < 0)
		snprintf(err, errcap, "%s: reading the tokens: %s", path, sqlite3_errmsg(db));
	return close_db(path, db, rc, err, errcap);
}
