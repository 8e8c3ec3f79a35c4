/* core/validate.h - parsing and validation of request bodies.
 *
 * Bad input is a normal path: every check yields a per-field message, and
 * nothing that fails here ever reaches the engine or the database.
 */
#ifndef TALLY_CORE_VALIDATE_H
#define TALLY_CORE_VALIDATE_H

#include "base/err.h"
#include "base/model.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Validation error. fields is NULL or an object field -> message, owned by
 * the struct (release with validate_error_fini). */
struct validate_error {
	char message[200];
	json_t *fields;
};

/* Parse a JSON object body (at most TALLY_BODY_MAX bytes). On success
 * *out is a new reference; on failure err->message says why. Returns
 * 0, TALLY_EJSON or TALLY_EFIELDS (number out of range). */
int validate_json_object(const char *body, size_t len, json_t **out, struct validate_error *err);

/* Validate a donation body. Returns TALLY_OK, TALLY_EJSON or
 * TALLY_EFIELDS. An optional "captcha_token" (1 to
 * TALLY_CAPTCHA_TOKEN_MAX printable ASCII bytes) is checked and dropped. */
int validate_donation(const char *body, size_t len, const struct donation_limits *lim,
                      struct donation_req *out, struct validate_error *err);

/* The same, and the body's "captcha_token" copied into token
 * (TALLY_CAPTCHA_TOKEN_SIZE bytes; "" when absent or null). The token is
 * not part of out: it never reaches the idempotency fingerprint, the
 * writer or the log. */
int validate_donation_captcha(const char *body, size_t len, const struct donation_limits *lim,
                              struct donation_req *out, char *token, struct validate_error *err);

/* The same with jansson only (validate_donation tries an allocation-free
 * scan of the common shape first and falls back to this). Same results;
 * exposed for the tests that prove it. */
int validate_donation_full(const char *body, size_t len, const struct donation_limits *lim,
                           struct donation_req *out, struct validate_error *err);

/* Validate an offline gift body {"amount_cents" (1 to TALLY_AMOUNT_MAX),
 * "currency" (optional), "method" (cheque, cash, daf, other), "donor":
 * {"name", "email" (optional)}, "anonymous", "hide_amount", "message",
 * "note", "received_at" (RFC 3339, not after now, ms since the epoch),
 * "receipt" (needs donor.email)}. Returns TALLY_OK, TALLY_EJSON or
 * TALLY_EFIELDS. */
int validate_offline(const char *body, size_t len, int64_t now, struct offline_req *out,
                     struct validate_error *err);

/* Validate a campaign body; create=1 requires slug, name and currency, an
 * update (create=0) accepts any subset but not slug. */
int validate_campaign(const char *body, size_t len, int create, struct campaign_spec *out,
                      struct validate_error *err);

/* Validate a match pool body; create=1 requires slug, name, amount_cents
 * and campaigns ("all" needs currency); an update (create=0) accepts any
 * non-empty subset but neither slug nor currency. Unknown fields are
 * errors. Returns TALLY_OK, TALLY_EJSON or TALLY_EFIELDS. */
int validate_pool(const char *body, size_t len, int create, struct pool_spec *out,
                  struct validate_error *err);

/* Validate a challenge body: slug, name, kind (amount, donors, gifts),
 * threshold, bonus_cents, starts_at and ends_at required; "campaign" (one
 * slug) or "campaigns" ("all", which needs currency, or slugs); winners
 * (0: all), min_gift_cents, online_only, sponsor optional. Unknown fields
 * are errors. Returns TALLY_OK, TALLY_EJSON or TALLY_EFIELDS. */
int validate_challenge(const char *body, size_t len, struct challenge_spec *out,
                       struct validate_error *err);

/* 1 if s is a valid campaign slug: 1-64 of [a-z0-9-], not starting with '-'. */
int validate_slug(const char *s, size_t len);

/* Validate a staff token body {"name", "role"}: name as validate_token_name
 * wants it, role viewer, operator or admin; other fields are ignored.
 * Returns TALLY_OK, TALLY_EJSON or TALLY_EFIELDS. */
int validate_token(const char *body, size_t len, char name[TALLY_STAFF_NAME_SIZE],
                   enum staff_role *role, struct validate_error *err);

/* 1 if s is a valid staff token name: 1-64 of [A-Za-z0-9._-], and neither
 * "." nor "..". */
int validate_token_name(const char *s, size_t len);

/* Validate a giving day body {"name", "early_at" (optional, null for
 * none), "opens_at", "closes_at" (RFC 3339), "currency" (optional, null
 * for none)}: early_at < opens_at < closes_at, each within
 * TALLY_DAY_SPAN_MAX of the others, from 2000-01-01 to 2100-01-01, name at most
 * TALLY_DAY_NAME_MAX characters. Returns TALLY_OK (out->set 1), TALLY_EJSON
 * or TALLY_EFIELDS. */
int validate_day(const char *body, size_t len, struct giving_day *out, struct validate_error *err);

/* 1 if s is an upper-case three-letter currency code. */
int validate_currency(const char *s);

/* A campaign's category, from s[0..len) (a request body's value, a query
 * or a channel name): leading and trailing ASCII white space trimmed, then
 * at most TALLY_CATEGORY_MAX code points of UTF-8 with no control, NUL or
 * bidirectional control characters, copied into out. "" (or only white
 * space) is no category. Categories compare byte for byte: "Arts" and
 * "arts" are two. Returns NULL when valid, else the reason (static
 * text). */
const char *validate_category(const char *s, size_t len, char out[TALLY_CATEGORY_SIZE]);

void validate_error_fini(struct validate_error *err);

#endif
