/* core/idem.h - recent idempotency keys in memory.
 *
 * The database is the source of truth for keys (a unique index on the
 * donation that a key created); this table answers the common cases without
 * it: a double-clicked button while the first request is still in flight,
 * and quick retries. Entries in flight are kept until finished or aborted;
 * finished ones for `window_ms` or until `cap` entries, oldest first.
 * Keys are hashed under a random per-table secret and no chain grows
 * past IDEM_CHAIN_MAX entries, so no choice of keys makes a lookup slow
 * (see the DESIGN comment of core/idem.c). All functions are thread-safe.
 */
#ifndef TALLY_CORE_IDEM_H
#define TALLY_CORE_IDEM_H

#include "base/buf.h"
#include "base/util.h"

#include <stddef.h>
#include <stdint.h>

enum idem_result {
	IDEM_NEW,       /* unknown: now recorded as in flight with fp */
	IDEM_REPLAY,    /* finished with the same fp: its body was appended */
	IDEM_REUSED,    /* known with a different fp */
	IDEM_IN_FLIGHT, /* same fp, first request not finished yet */
};

/* Entries one bucket may hold. With the keyed hash a chain reaches 10 about
 * once in 400 full tables; 16 is never reached by chance. */
#define IDEM_CHAIN_MAX 16

struct idem_table;

/* A table for about cap finished entries (its buckets are sized from it),
 * hashed under a fresh random secret. Returns 0, -ENOMEM, or the error of
 * util_random. Free with idem_free. */
int idem_new(size_t cap, int64_t window_ms, struct idem_table **out);

/* The same with a given secret: for tests, which need to build keys that
 * share a bucket. */
int idem_new_seeded(size_t cap, int64_t window_ms, const struct util_hash_key *seed,
                    struct idem_table **out);

void idem_free(struct idem_table *t);

/* Look key up at now_ms and store what was found in *out (see enum
 * idem_result). Returns 0, -ENOMEM (nothing recorded), or -EAGAIN when the
 * key's bucket holds IDEM_CHAIN_MAX entries all still in flight (nothing
 * recorded; the caller refuses the request as overloaded). A full bucket
 * with a finished entry forgets its oldest finished one to make room. */
int idem_begin(struct idem_table *t, const char *key, uint64_t fp, int64_t now_ms,
               struct buf *replay, enum idem_result *out);

/* Record the final answer of key: its fingerprint (which may differ from
 * the one given to idem_begin when the database knew the key) and body. */
void idem_finish(struct idem_table *t, const char *key, uint64_t fp, const char *body, size_t len);

/* Forget key (the request failed before anything was stored). */
void idem_abort(struct idem_table *t, const char *key);

/* Entries held now. */
size_t idem_count(struct idem_table *t);

/* Entries of the longest chain (walks every bucket: for tests). */
size_t idem_longest_chain(struct idem_table *t);

#endif
