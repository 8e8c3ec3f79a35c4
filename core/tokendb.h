/* core/tokendb.h - staff tokens managed straight on a database file, for
 * `tally token` (tally_token.c): beside a server running on that file (WAL
 * and the busy timeout let both write; the server reads the change at its
 * writer's next tick, within about two seconds) or with none running. Each
 * call opens the database, does one thing in one transaction (with its
 * audit row), and closes it. Messages for a person go to err.
 */
#ifndef TALLY_CORE_TOKENDB_H
#define TALLY_CORE_TOKENDB_H

#include "base/model.h"

#include <stddef.h>

/* Add token name (validate_token_name) with role to the database at path,
 * created when missing; actor names who did it in the audit. Its secret
 * goes to secret (cap >= TALLY_STAFF_SECRET_SIZE): only its SHA-256 is
 * stored. Returns 0; TALLY_EFIELDS for a bad name or role (nothing opened);
 * TALLY_ETOKEN_EXISTS when the name is taken, in any case, revoked tokens
 * and the startup token's "admin" included (nothing written); or a
 * negative errno. */
int tokendb_add(const char *path, const char *name, enum staff_role role, const char *actor,
                char *secret, size_t cap, char *err, size_t errcap);

/* Revoke token name in the database at path (which must exist: -ENOENT);
 * *out is the token as it is then, *changed 0 when it was revoked before
 * (nothing written). Returns 0, TALLY_ENOTOKEN, TALLY_ESTARTUP (the
 * startup token lives in TALLY_ADMIN_TOKEN or the token file), or a
 * negative errno. */
int tokendb_revoke(const char *path, const char *name, const char *actor, struct staff_token *out,
                   int *changed, char *err, size_t errcap);

/* Call cb for every token stored in the database at path (which must
 * exist: -ENOENT), in the order they were added. Returns 0, cb's non-zero
 * return, or a negative errno. */
int tokendb_list(const char *path, int (*cb)(void *ud, const struct staff_token *t), void *ud,
                 char *err, size_t errcap);

#endif
