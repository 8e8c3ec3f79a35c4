/* core/validate.h - parsing and validation of request bodies.
 *
 * Bad input is a normal path: every check yields a per-field message, and
 * nothing that fails here ever reaches the engine or the database.
 */
#ifndef TALLY_CORE_VALIDATE_H
#define TALLY_CORE_VALIDATE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define VALIDATE_SLUG_MAX 64
#define VALIDATE_NAME_MAX 100 /* donor name, code points */
#define VALIDATE_CAMPAIGN_NAME_MAX 128
#define VALIDATE_EMAIL_MAX 254
#define VALIDATE_MESSAGE_MAX 500 /* code points */
#define VALIDATE_TOKEN_MAX 64
#define VALIDATE_BODY_MAX (16 * 1024)

/* Result codes (negative, distinct from errno values used elsewhere). */
enum {
	VALIDATE_OK = 0,
	VALIDATE_EJSON = -1000,   /* 400 invalid_json: err.message says why */
	VALIDATE_EFIELDS = -1001, /* 422 validation_failed: err.fields */
};

/* Validation error. fields is NULL or an object field -> message, owned by
 * the struct (release with validate_error_fini). */
struct validate_error {
	char message[200];
	json_t *fields;
};

struct donation_limits {
	int64_t min_cents;
	int64_t max_cents;
};

/* A validated donation request. Strings are NUL-terminated UTF-8. */
struct donation_req {
	int64_t amount_cents;
	char currency[4];
	char name[VALIDATE_NAME_MAX * 4 + 1];
	char email[VALIDATE_EMAIL_MAX + 1];
	char message[VALIDATE_MESSAGE_MAX * 4 + 1];
	char payment_token[VALIDATE_TOKEN_MAX + 1];
	int anonymous;
	int hide_amount;
};

/* A validated campaign create/update. has_* flags tell which fields were
 * given (an update may give any subset). Times are ms since the epoch; 0 with
 * has_* set means "cleared" (JSON null). */
struct campaign_spec {
	char slug[VALIDATE_SLUG_MAX + 1];
	char name[VALIDATE_CAMPAIGN_NAME_MAX * 4 + 1];
	char currency[4];
	int64_t goal_cents;
	int64_t starts_at;
	int64_t ends_at;
	unsigned has_slug : 1, has_name : 1, has_currency : 1, has_goal : 1, has_starts : 1,
	    has_ends : 1;
};

/* Parse a JSON object body (at most VALIDATE_BODY_MAX bytes). On success
 * *out is a new reference; on failure err->message says why. Returns
 * VALIDATE_OK, VALIDATE_EJSON or VALIDATE_EFIELDS (number out of range). */
int validate_json_object(const char *body, size_t len, json_t **out, struct validate_error *err);

/* Validate a donation body. Returns VALIDATE_OK, VALIDATE_EJSON or
 * VALIDATE_EFIELDS. */
int validate_donation(const char *body, size_t len, const struct donation_limits *lim,
                      struct donation_req *out, struct validate_error *err);

/* The same with jansson only (validate_donation tries an allocation-free
 * scan of the common shape first and falls back to this). Same results;
 * exposed for the tests that prove it. */
int validate_donation_full(const char *body, size_t len, const struct donation_limits *lim,
                           struct donation_req *out, struct validate_error *err);

/* Validate a campaign body; create=1 requires slug, name and currency, an
 * update (create=0) accepts any subset but not slug. */
int validate_campaign(const char *body, size_t len, int create, struct campaign_spec *out,
                      struct validate_error *err);

/* 1 if s is a valid campaign slug: 1-64 of [a-z0-9-], not starting with '-'. */
int validate_slug(const char *s, size_t len);

/* 1 if s is an upper-case three-letter currency code. */
int validate_currency(const char *s);

void validate_error_fini(struct validate_error *err);

#endif
