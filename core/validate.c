/* core/validate.c - request body parsing with per-field messages. */
#include "core/validate.h"
#include "base/util.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static void field_error(struct validate_error *err, const char *field, const char *msg)
{
	if (!err->fields)
		err->fields = json_object();
	/* Keep the first message per field: it names the first problem. */
	if (err->fields && !json_object_get(err->fields, field))
		json_object_set_new(err->fields, field, json_string(msg));
}

void validate_error_fini(struct validate_error *err)
{
	json_decref(err->fields);
	err->fields = NULL;
	err->message[0] = '\0';
}

int validate_json_object(const char *body, size_t len, json_t **out, struct validate_error *err)
{
	json_error_t jerr;
	json_t *root;

	*out = NULL;
	if (len > TALLY_BODY_MAX) {
		snprintf(err->message, sizeof(err->message), "body exceeds %d bytes",
		         TALLY_BODY_MAX);
		return TALLY_EJSON;
	}
	if (util_utf8_len(body, len) < 0) {
		snprintf(err->message, sizeof(err->message), "body is not valid UTF-8");
		return TALLY_EJSON;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		if (json_error_code(&jerr) == json_error_numeric_overflow) {
			snprintf(
			    err->message, sizeof(err->message),
			    "a number is outside the 64-bit integer range (line %d, column %d)",
			    jerr.line, jerr.column);
			field_error(err, "body", "number outside the 64-bit integer range");
			return TALLY_EFIELDS;
		}
		snprintf(err->message, sizeof(err->message),
		         "invalid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
		         jerr.column);
		return TALLY_EJSON;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		snprintf(err->message, sizeof(err->message), "body must be a JSON object");
		return TALLY_EJSON;
	}
	*out = root;
	return TALLY_OK;
}

/* Check a string value; returns NULL when valid, else the reason. */
static const char *check_string(const char *s, size_t len, long min_cp, long max_cp,
                                int allow_newline, size_t cap, char *msg, size_t msgcap)
{
	long cp = util_utf8_len(s, len);

	if (cp < 0 || memchr(s, '\0', len))
		return "must be valid UTF-8 without NUL characters";
	if (util_has_control(s, len, allow_newline))
		return "must not contain control characters";
	if (util_has_bidi_control(s, len))
		return "must not contain bidirectional override or isolate characters "
		       "(U+202A to U+202E, U+2066 to U+2069)";
	if (cp < min_cp || cp > max_cp || len >= cap) {
		snprintf(msg, msgcap, "must be %ld to %ld characters long", min_cp, max_cp);
		return msg;
	}
	return NULL;
}

/* Copy a string field. Returns 1 if present and valid, 0 if absent (and
 * reports it when required), -1 if invalid (reported). */
static int take_string(json_t *obj, const char *key, const char *field, int required, long min_cp,
                       long max_cp, int allow_newline, char *dst, size_t cap,
                       struct validate_error *err)
{
	json_t *v = json_object_get(obj, key);
	const char *why;
	size_t len;
	char msg[120];

	if (!v || json_is_null(v)) {
		if (required) {
			field_error(err, field, "is required");
			return -1;
		}
		return 0;
	}
	if (!json_is_string(v)) {
		field_error(err, field, "must be a string");
		return -1;
	}
	len = json_string_length(v);
	why = check_string(json_string_value(v), len, min_cp, max_cp, allow_newline, cap, msg,
	                   sizeof(msg));
	if (why) {
		field_error(err, field, why);
		return -1;
	}
	memcpy(dst, json_string_value(v), len + 1);
	return 1;
}

static int take_bool(json_t *obj, const char *key, int *dst, struct validate_error *err)
{
	json_t *v = json_object_get(obj, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v)) {
		field_error(err, key, "must be true or false");
		return -1;
	}
	*dst = json_is_true(v);
	return 1;
}

static int take_int(json_t *obj, const char *key, int required, int64_t min, int64_t max,
                    int64_t *dst, struct validate_error *err)
{
	json_t *v = json_object_get(obj, key);
	char msg[120];

	if (!v || json_is_null(v)) {
		if (required) {
			field_error(err, key, "is required");
			return -1;
		}
		return 0;
	}
	snprintf(msg, sizeof(msg), "must be an integer from %lld to %lld", (long long)min,
	         (long long)max);
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		field_error(err, key, msg);
		return -1;
	}
	*dst = json_integer_value(v);
	return 1;
}

static int take_time(json_t *obj, const char *key, int64_t *dst, struct validate_error *err)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return 0;
	if (json_is_null(v)) {
		*dst = 0;
		return 1;
	}
	if (!json_is_string(v) || util_parse_rfc3339(json_string_value(v), dst) || *dst <= 0) {
		field_error(err, key,
		            "must be an RFC 3339 time such as 2026-12-01T00:00:00Z, or null");
		return -1;
	}
	return 1;
}

/* The "currency" field (required or not) into dst (TALLY_CURRENCY_SIZE):
 * 1 when given and an ISO 4217 code, 0 when absent, -1 when invalid
 * (reported). */
static int take_currency(json_t *root, int required, char *dst, struct validate_error *err)
{
	int rc = take_string(root, "currency", "currency", required, 3, 3, 0, dst,
	                     TALLY_CURRENCY_SIZE, err);

	if (rc == 1 && !validate_currency(dst)) {
		field_error(err, "currency", "must be a three-letter ISO 4217 code such as USD");
		return -1;
	}
	return rc;
}

static int blank(const char *s)
{
	for (; *s; s++)
		if (!isspace((unsigned char)*s))
			return 0;
	return 1;
}

int validate_currency(const char *s)
{
	return strlen(s) == 3 && isupper((unsigned char)s[0]) && isupper((unsigned char)s[1]) &&
	       isupper((unsigned char)s[2]);
}

int validate_slug(const char *s, size_t len)
{
	if (len < 1 || len > TALLY_SLUG_MAX || s[0] == '-')
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return 0;
	}
	return 1;
}

int validate_token_name(const char *s, size_t len)
{
	if (len < 1 || len > TALLY_STAFF_NAME_MAX || (len == 1 && s[0] == '.') ||
	    (len == 2 && s[0] == '.' && s[1] == '.'))
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static int valid_email(const char *s)
{
	const char *at = strchr(s, '@');
	size_t local, domain;
	const char *d;

	if (!at || strchr(at + 1, '@'))
		return 0;
	local = (size_t)(at - s);
	d = at + 1;
	domain = strlen(d);
	if (local < 1 || local > 64 || domain < 3 || !strchr(d, '.') || s[0] == '.' ||
	    at[-1] == '.')
		return 0;
	for (const char *p = s; p < at; p++)
		if (isspace((unsigned char)*p) || *p == '"' || *p == ',' || *p == '<' ||
		    *p == '>' || *p == '(' || *p == ')' || *p == ';' || *p == ':' || *p == '\\' ||
		    *p == '[' || *p == ']')
			return 0;
	if (d[0] == '.' || d[0] == '-' || d[domain - 1] == '.' || d[domain - 1] == '-' ||
	    strstr(d, ".."))
		return 0;
	for (const char *p = d; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (!(isalnum(c) || c == '-' || c == '.' || c >= 0x80))
			return 0;
	}
	return 1;
}

/* ---- the fast path ----
 *
 * DESIGN: almost every donation body is a small, plain object. The fast
 * path scans that common shape directly into a donation_req, with no
 * allocation: known keys at most once, strings without escapes, plain
 * integers, true/false. It accepts a body only when every field passes the
 * same checks as the jansson path; on anything else - an escape, an unknown
 * or repeated key, null, a bad value, malformed JSON - it gives up and the
 * jansson path, validate_donation_full(), decides and words the error. So
 * the fast path can only ever say "valid", and only for bodies the full
 * path also finds valid (tests/test_validate.c compares the two).
 */
struct scan {
	const char *p, *end;
};

static void skip_ws(struct scan *sc)
{
	while (sc->p < sc->end &&
	       (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n' || *sc->p == '\r'))
		sc->p++;
}

static int eat(struct scan *sc, char c)
{
	skip_ws(sc);
	if (sc->p < sc->end && *sc->p == c) {
		sc->p++;
		return 1;
	}
	return 0;
}

/* A string without escapes or control bytes; s and len point into the body. */
static int scan_string(struct scan *sc, const char **s, size_t *len)
{
	const char *q;

	if (!eat(sc, '"'))
		return 0;
	for (q = sc->p; q < sc->end && *q != '"'; q++)
		if (*q == '\\' || (unsigned char)*q < 0x20)
			return 0;
	if (q == sc->end)
		return 0;
	*s = sc->p;
	*len = (size_t)(q - sc->p);
	sc->p = q + 1;
	return 1;
}

static int scan_int(struct scan *sc, int64_t *out)
{
	int64_t v = 0;
	int neg = 0, digits = 0;

	skip_ws(sc);
	if (sc->p < sc->end && *sc->p == '-') {
		neg = 1;
		sc->p++;
	}
	if (sc->p < sc->end && *sc->p == '0' && sc->p + 1 < sc->end && sc->p[1] >= '0' &&
	    sc->p[1] <= '9')
		return 0; /* leading zero: not JSON */
	while (sc->p < sc->end && *sc->p >= '0' && *sc->p <= '9') {
		if (++digits > 18)
			return 0; /* let the full path judge the range */
		v = v * 10 + (*sc->p++ - '0');
	}
	if (!digits || (sc->p < sc->end && (*sc->p == '.' || *sc->p == 'e' || *sc->p == 'E')))
		return 0;
	*out = neg ? -v : v;
	return 1;
}

static int scan_bool(struct scan *sc, int *out)
{
	skip_ws(sc);
	if (sc->end - sc->p >= 4 && !memcmp(sc->p, "true", 4)) {
		sc->p += 4;
		*out = 1;
		return 1;
	}
	if (sc->end - sc->p >= 5 && !memcmp(sc->p, "false", 5)) {
		sc->p += 5;
		*out = 0;
		return 1;
	}
	return 0;
}

static int key_is(const char *k, size_t klen, const char *name)
{
	return strlen(name) == klen && !memcmp(k, name, klen);
}

/* Copy a string that passes the full path's checks; 0 when it does not. */
static int fast_string(struct scan *sc, long min_cp, long max_cp, int allow_newline, char *dst,
                       size_t cap)
{
	const char *s;
	size_t len;
	char msg[120];

	if (!scan_string(sc, &s, &len) ||
	    check_string(s, len, min_cp, max_cp, allow_newline, cap, msg, sizeof(msg)))
		return 0;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 1;
}

static int valid_token(const char *t)
{
	for (; *t; t++)
		if (!(isalnum((unsigned char)*t) || *t == '_' || *t == '-'))
			return 0;
	return 1;
}

static int fast_donor(struct scan *sc, struct donation_req *out)
{
	int seen = 0;

	if (!eat(sc, '{'))
		return 0;
	do {
		const char *k;
		size_t klen;

		if (!scan_string(sc, &k, &klen) || !eat(sc, ':'))
			return 0;
		if (key_is(k, klen, "name") && !(seen & 1)) {
			if (!fast_string(sc, 1, TALLY_DONOR_NAME_MAX, 0, out->name,
			                 sizeof(out->name)) ||
			    blank(out->name))
				return 0;
			seen |= 1;
		} else if (key_is(k, klen, "email") && !(seen & 2)) {
			if (!fast_string(sc, 3, TALLY_EMAIL_MAX, 0, out->email,
			                 sizeof(out->email)) ||
			    !valid_email(out->email))
				return 0;
			seen |= 2;
		} else {
			return 0;
		}
	} while (eat(sc, ','));
	return eat(sc, '}') && seen == 3;
}

/* A CAPTCHA token: 1 to TALLY_CAPTCHA_TOKEN_MAX bytes of printable ASCII
 * (the providers' tokens are base64url and dots). */
static int valid_captcha_token(const char *s, size_t len)
{
	if (len < 1 || len > TALLY_CAPTCHA_TOKEN_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return 0;
	return 1;
}

/* Copy a valid token into tok (when not NULL). */
static void keep_captcha_token(char *tok, const char *s, size_t len)
{
	if (!tok)
		return;
	memcpy(tok, s, len);
	tok[len] = '\0';
}

/* Returns 1 with *out filled when the body is a plain, valid donation. */
static int fast_donation(const char *body, size_t len, const struct donation_limits *lim,
                         struct donation_req *out, char *tok)
{
	struct scan sc = {body, body + len};
	enum {
		AMOUNT = 1,
		CURRENCY = 2,
		DONOR = 4,
		ANON = 8,
		HIDE = 16,
		MSG = 32,
		TOKEN = 64,
		FEE = 128,
		CAPTCHA = 256
	};
	int seen = 0;

	if (len > TALLY_BODY_MAX || util_utf8_len(body, len) < 0 || !eat(&sc, '{'))
		return 0;
	do {
		const char *k;
		size_t klen;
		int bit, ok;

		if (!scan_string(&sc, &k, &klen) || !eat(&sc, ':'))
			return 0;
		if (key_is(k, klen, "amount_cents")) {
			bit = AMOUNT;
			ok = scan_int(&sc, &out->amount_cents) &&
			     out->amount_cents >= lim->min_cents &&
			     out->amount_cents <= lim->max_cents;
		} else if (key_is(k, klen, "currency")) {
			bit = CURRENCY;
			ok = fast_string(&sc, 3, 3, 0, out->currency, sizeof(out->currency)) &&
			     validate_currency(out->currency);
		} else if (key_is(k, klen, "donor")) {
			bit = DONOR;
			ok = fast_donor(&sc, out);
		} else if (key_is(k, klen, "anonymous")) {
			bit = ANON;
			ok = scan_bool(&sc, &out->anonymous);
		} else if (key_is(k, klen, "hide_amount")) {
			bit = HIDE;
			ok = scan_bool(&sc, &out->hide_amount);
		} else if (key_is(k, klen, "message")) {
			bit = MSG;
			ok = fast_string(&sc, 0, TALLY_MESSAGE_MAX, 1, out->message,
			                 sizeof(out->message));
		} else if (key_is(k, klen, "cover_fee")) {
			bit = FEE;
			ok = scan_bool(&sc, &out->cover_fee);
		} else if (key_is(k, klen, "payment_token")) {
			bit = TOKEN;
			ok = fast_string(&sc, 1, TALLY_TOKEN_MAX, 0, out->payment_token,
			                 sizeof(out->payment_token)) &&
			     valid_token(out->payment_token);
		} else if (key_is(k, klen, "captcha_token")) {
			const char *t;
			size_t tlen;

			bit = CAPTCHA;
			ok = scan_string(&sc, &t, &tlen) && valid_captcha_token(t, tlen);
			if (ok)
				keep_captcha_token(tok, t, tlen);
		} else {
			return 0;
		}
		if (!ok || (seen & bit))
			return 0;
		seen |= bit;
	} while (eat(&sc, ','));
	if (!eat(&sc, '}'))
		return 0;
	skip_ws(&sc);
	if (sc.p != sc.end || (seen & (AMOUNT | CURRENCY | DONOR)) != (AMOUNT | CURRENCY | DONOR))
		return 0;
	if (!(seen & TOKEN))
		memcpy(out->payment_token, "tok_visa", sizeof("tok_visa"));
	return 1;
}

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

static int full_donation(const char *body, size_t len, const struct donation_limits *lim,
                         struct donation_req *out, char *tok, struct validate_error *err);

int validate_donation_captcha(const char *body, size_t len, const struct donation_limits *lim,
                              struct donation_req *out, char *token, struct validate_error *err)
{
	memset(out, 0, sizeof(*out));
	if (token)
		token[0] = '\0';
	if (fast_donation(body, len, lim, out, token)) {
		err->message[0] = '\0';
		err->fields = NULL;
		return TALLY_OK;
	}
	return full_donation(body, len, lim, out, token, err);
}

int validate_donation(const char *body, size_t len, const struct donation_limits *lim,
                      struct donation_req *out, struct validate_error *err)
{
	return validate_donation_captcha(body, len, lim, out, NULL, err);
}

int validate_donation_full(const char *body, size_t len, const struct donation_limits *lim,
                           struct donation_req *out, struct validate_error *err)
{
	return full_donation(body, len, lim, out, NULL, err);
}

static int full_donation(const char *body, size_t len, const struct donation_limits *lim,
                         struct donation_req *out, char *tok, struct validate_error *err)
{
	json_t *root, *donor, *captcha;
	char msg[120];
	int rc;

	memset(out, 0, sizeof(*out));
	if (tok)
		tok[0] = '\0';
	err->message[0] = '\0';
	err->fields = NULL;
	rc = validate_json_object(body, len, &root, err);
	if (rc)
		return rc;

	{
		json_t *v = json_object_get(root, "amount_cents");

		snprintf(msg, sizeof(msg), "must be an integer number of cents from %lld to %lld",
		         (long long)lim->min_cents, (long long)lim->max_cents);
		if (!v)
			field_error(err, "amount_cents", "is required");
		else if (!json_is_integer(v) || json_integer_value(v) < lim->min_cents ||
		         json_integer_value(v) > lim->max_cents)
			field_error(err, "amount_cents", msg);
		else
			out->amount_cents = json_integer_value(v);
	}
	take_currency(root, 1, out->currency, err);

	donor = json_object_get(root, "donor");
	if (!donor) {
		field_error(err, "donor", "is required");
	} else if (!json_is_object(donor)) {
		field_error(err, "donor", "must be an object with name and email");
	} else {
		if (take_string(donor, "name", "donor.name", 1, 1, TALLY_DONOR_NAME_MAX, 0,
		                out->name, sizeof(out->name), err) == 1 &&
		    blank(out->name))
			field_error(err, "donor.name", "must not be blank");
		if (take_string(donor, "email", "donor.email", 1, 3, TALLY_EMAIL_MAX, 0, out->email,
		                sizeof(out->email), err) == 1 &&
		    !valid_email(out->email))
			field_error(err, "donor.email",
			            "must be an email address like ada@example.org");
	}
	take_bool(root, "anonymous", &out->anonymous, err);
	take_bool(root, "hide_amount", &out->hide_amount, err);
	take_bool(root, "cover_fee", &out->cover_fee, err);
	take_string(root, "message", "message", 0, 0, TALLY_MESSAGE_MAX, 1, out->message,
	            sizeof(out->message), err);
	if (take_string(root, "payment_token", "payment_token", 0, 1, TALLY_TOKEN_MAX, 0,
	                out->payment_token, sizeof(out->payment_token), err) == 1) {
		if (!valid_token(out->payment_token))
			field_error(err, "payment_token",
			            "must contain only A-Z, a-z, 0-9, _ and -");
	} else {
		/* Absent or null: the processor's default test token. The fast path
		 * does the same. */
		memcpy(out->payment_token, "tok_visa", sizeof("tok_visa"));
	}
	captcha = json_object_get(root, "captcha_token");
	if (captcha && !json_is_null(captcha)) {
		if (!json_is_string(captcha) ||
		    !valid_captcha_token(json_string_value(captcha), json_string_length(captcha)))
			field_error(err, "captcha_token",
			            "must be the CAPTCHA's token: 1 to " STRINGIFY(
			                TALLY_CAPTCHA_TOKEN_MAX) " printable ASCII characters");
		else
			keep_captcha_token(tok, json_string_value(captcha),
			                   json_string_length(captcha));
	}
	json_decref(root);
	if (err->fields) {
		snprintf(err->message, sizeof(err->message), "the donation has invalid fields");
		return TALLY_EFIELDS;
	}
	return TALLY_OK;
}

#define CATEGORY_MAX_TEXT STRINGIFY(TALLY_CATEGORY_MAX)

const char *validate_category(const char *s, size_t len, char out[TALLY_CATEGORY_SIZE])
{
	out[0] = '\0';
	while (len && isspace((unsigned char)*s))
		s++, len--;
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	if (util_utf8_len(s, len) < 0 || memchr(s, '\0', len))
		return "must be valid UTF-8 without NUL characters";
	if (util_has_control(s, len, 0))
		return "must not contain control characters";
	if (util_has_bidi_control(s, len))
		return "must not contain bidirectional override or isolate characters "
		       "(U+202A to U+202E, U+2066 to U+2069)";
	if (util_utf8_len(s, len) > TALLY_CATEGORY_MAX || len >= TALLY_CATEGORY_SIZE)
		return "must be at most " CATEGORY_MAX_TEXT " characters long";
	memcpy(out, s, len);
	out[len] = '\0';
	return NULL;
}

/* "category": a string (trimmed; "" clears) or null (clears). */
static void take_category(json_t *root, struct campaign_spec *out, struct validate_error *err)
{
	json_t *v = json_object_get(root, "category");
	const char *why;

	if (!v)
		return;
	if (json_is_null(v)) {
		out->has_category = 1;
		return;
	}
	if (!json_is_string(v)) {
		field_error(err, "category", "must be a string or null");
		return;
	}
	why = validate_category(json_string_value(v), json_string_length(v), out->category);
	if (why)
		field_error(err, "category", why);
	else
		out->has_category = 1;
}

/* The slug (required on create, refused on update) and the name
 * (required on create) of a campaign, pool or challenge, into buffers of
 * TALLY_SLUG_SIZE and TALLY_CAMPAIGN_NAME_SIZE. Returns 1 | 2: which of
 * the two were given and valid. */
static int take_slug_name(json_t *root, int create, char *slug, char *name,
                          struct validate_error *err)
{
	int got = 0;

	if (create) {
		if (take_string(root, "slug", "slug", 1, 1, TALLY_SLUG_MAX, 0, slug,
		                TALLY_SLUG_SIZE, err) == 1) {
			if (!validate_slug(slug, strlen(slug)))
				field_error(
				    err, "slug",
				    "must be 1-64 of a-z, 0-9 and '-', not starting with '-'");
			else
				got |= 1;
		}
	} else if (json_object_get(root, "slug")) {
		field_error(err, "slug", "cannot be changed");
	}
	if (take_string(root, "name", "name", create, 1, TALLY_CAMPAIGN_NAME_MAX, 0, name,
	                TALLY_CAMPAIGN_NAME_SIZE, err) == 1) {
		if (blank(name))
			field_error(err, "name", "must not be blank");
		else
			got |= 2;
	}
	return got;
}

int validate_offline(const char *body, size_t len, int64_t now, struct offline_req *out,
                     struct validate_error *err)
{
	struct donation_req *d = &out->d;
	json_t *root, *donor, *v;
	char msg[120];
	int rc;

	memset(out, 0, sizeof(*out));
	err->message[0] = '\0';
	err->fields = NULL;
	rc = validate_json_object(body, len, &root, err);
	if (rc)
		return rc;
	snprintf(msg, sizeof(msg), "must be an integer number of minor units from 1 to %lld",
	         (long long)TALLY_AMOUNT_MAX);
	v = json_object_get(root, "amount_cents");
	if (!v)
		field_error(err, "amount_cents", "is required");
	else if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	         json_integer_value(v) > TALLY_AMOUNT_MAX)
		field_error(err, "amount_cents", msg);
	else
		d->amount_cents = json_integer_value(v);
	take_currency(root, 0, d->currency, err);
	v = json_object_get(root, "method");
	if (!v)
		field_error(err, "method", "is required");
	else if (!json_is_string(v) || gift_method_by_name(json_string_value(v)) < 0)
		field_error(err, "method", "must be cheque, cash, daf or other");
	else
		out->method = (enum gift_method)gift_method_by_name(json_string_value(v));
	donor = json_object_get(root, "donor");
	if (!donor) {
		field_error(err, "donor", "is required");
	} else if (!json_is_object(donor)) {
		field_error(err, "donor", "must be an object with a name (and an email if known)");
	} else {
		if (take_string(donor, "name", "donor.name", 1, 1, TALLY_DONOR_NAME_MAX, 0, d->name,
		                sizeof(d->name), err) == 1 &&
		    blank(d->name))
			field_error(err, "donor.name", "must not be blank");
		if (take_string(donor, "email", "donor.email", 0, 3, TALLY_EMAIL_MAX, 0, d->email,
		                sizeof(d->email), err) == 1 &&
		    !valid_email(d->email))
			field_error(err, "donor.email",
			            "must be an email address like ada@example.org, or absent");
	}
	take_bool(root, "anonymous", &d->anonymous, err);
	take_bool(root, "hide_amount", &d->hide_amount, err);
	take_string(root, "message", "message", 0, 0, TALLY_MESSAGE_MAX, 1, d->message,
	            sizeof(d->message), err);
	take_string(root, "note", "note", 0, 0, TALLY_NOTE_MAX, 1, out->note, sizeof(out->note),
	            err);
	if (take_time(root, "received_at", &out->received_at, err) == 1 && out->received_at > now)
		field_error(err, "received_at", "must not be in the future");
	if (take_bool(root, "receipt", &out->receipt, err) == 1 && out->receipt && !d->email[0] &&
	    !json_object_get(err->fields, "donor.email"))
		field_error(err, "receipt", "needs donor.email: a receipt goes by email");
	json_decref(root);
	if (err->fields) {
		snprintf(err->message, sizeof(err->message), "the offline gift has invalid fields");
		return TALLY_EFIELDS;
	}
	return TALLY_OK;
}

int validate_campaign(const char *body, size_t len, int create, struct campaign_spec *out,
                      struct validate_error *err)
{
	json_t *root;
	int rc, got;

	memset(out, 0, sizeof(*out));
	err->message[0] = '\0';
	err->fields = NULL;
	rc = validate_json_object(body, len, &root, err);
	if (rc)
		return rc;

	got = take_slug_name(root, create, out->slug, out->name, err);
	out->has_slug = (got & 1) != 0;
	out->has_name = (got & 2) != 0;
	if (create) {
		if (take_currency(root, 1, out->currency, err) == 1)
			out->has_currency = 1;
	} else if (json_object_get(root, "currency")) {
		field_error(err, "currency", "cannot be changed");
	}
	if (take_int(root, "goal_cents", 0, 0, TALLY_TOTAL_MAX, &out->goal_cents, err) == 1)
		out->has_goal = 1;
	take_category(root, out, err);
	if (take_time(root, "starts_at", &out->starts_at, err) == 1)
		out->has_starts = 1;
	if (take_time(root, "ends_at", &out->ends_at, err) == 1)
		out->has_ends = 1;
	if (out->has_starts && out->has_ends && out->starts_at && out->ends_at &&
	    out->ends_at <= out->starts_at)
		field_error(err, "ends_at", "must be after starts_at");
	json_decref(root);
	if (err->fields) {
		snprintf(err->message, sizeof(err->message), "the campaign has invalid fields");
		return TALLY_EFIELDS;
	}
	return TALLY_OK;
}

/* Money and schedules ride on these bodies: a field that is not one of
 * known (a misspelling, say) is an error, never ignored. what names the
 * body in the message ("a match pool"). */
static void refuse_unknown(json_t *root, const char *const *known, size_t n, const char *what,
                           struct validate_error *err)
{
	const char *key;
	json_t *v;
	char msg[80];

	snprintf(msg, sizeof(msg), "is not a field of %s", what);
	json_object_foreach(root, key, v)
	{
		size_t i = 0;

		while (i < n && strcmp(known[i], key))
			i++;
		if (i == n)
			field_error(err, key, msg);
	}
}

/* The "campaigns" of a pool: "all", or an array of distinct slugs. */
static void take_pool_campaigns(json_t *root, struct pool_spec *out, struct validate_error *err)
{
	json_t *v = json_object_get(root, "campaigns"), *item;
	size_t i;

	if (!v)
		return;
	if (json_is_string(v) && !strcmp(json_string_value(v), "all")) {
		out->all = 1;
		out->has_campaigns = 1;
		return;
	}
	if (!json_is_array(v) || json_array_size(v) == 0 ||
	    json_array_size(v) > TALLY_POOL_CAMPAIGNS_MAX) {
		field_error(err, "campaigns", "must be \"all\" or an array of 1-64 campaign slugs");
		return;
	}
	json_array_foreach(v, i, item)
	{
		const char *s = json_is_string(item) ? json_string_value(item) : NULL;

		if (!s || !validate_slug(s, strlen(s))) {
			field_error(err, "campaigns", "must hold campaign slugs");
			return;
		}
		for (int k = 0; k < out->n_slugs; k++)
			if (!strcmp(out->slugs[k], s)) {
				field_error(err, "campaigns", "names a campaign twice");
				return;
			}
		memcpy(out->slugs[out->n_slugs++], s, strlen(s) + 1);
	}
	out->has_campaigns = 1;
}

int validate_pool(const char *body, size_t len, int create, struct pool_spec *out,
                  struct validate_error *err)
{
	static const char *const known[] = {"slug",
	                                    "name",
	                                    "sponsor",
	                                    "currency",
	                                    "amount_cents",
	                                    "ratio",
	                                    "per_gift_cap_cents",
	                                    "per_donor_cap_cents",
	                                    "campaigns",
	                                    "starts_at",
	                                    "ends_at",
	                                    "match_offline"};
	struct pool_row *p = &out->row;
	json_t *root;
	int64_t n;
	int rc, got;

	memset(out, 0, sizeof(*out));
	err->message[0] = '\0';
	err->fields = NULL;
	rc = validate_json_object(body, len, &root, err);
	if (rc)
		return rc;
	refuse_unknown(root, known, UTIL_ARRAY_LEN(known), "a match pool", err);
	got = take_slug_name(root, create, p->slug, p->name, err);
	out->has_slug = (got & 1) != 0;
	out->has_name = (got & 2) != 0;
	if (take_string(root, "sponsor", "sponsor", 0, 0, TALLY_CAMPAIGN_NAME_MAX, 0, p->sponsor,
	                sizeof(p->sponsor), err) == 1)
		out->has_sponsor = 1;
	if (create) {
		if (take_currency(root, 0, p->currency, err) == 1)
			out->has_currency = 1;
	} else if (json_object_get(root, "currency")) {
		field_error(err, "currency", "cannot be changed");
	}
	if (take_int(root, "amount_cents", create, 1, TALLY_TOTAL_MAX, &p->amount_cents, err) == 1)
		out->has_amount = 1;
	if (take_int(root, "ratio", 0, 1, TALLY_POOL_RATIO_MAX, &n, err) == 1) {
		p->ratio = (int)n;
		out->has_ratio = 1;
	}
	if (take_int(root, "per_gift_cap_cents", 0, 0, TALLY_AMOUNT_MAX, &p->per_gift_cap_cents,
	             err) == 1)
		out->has_gift_cap = 1;
	if (take_int(root, "per_donor_cap_cents", 0, 0, TALLY_TOTAL_MAX, &p->per_donor_cap_cents,
	             err) == 1)
		out->has_donor_cap = 1;
	take_pool_campaigns(root, out, err);
	if (create && !out->has_campaigns && !json_object_get(root, "campaigns"))
		field_error(err, "campaigns", "is required: \"all\" or an array of campaign slugs");
	if (create && out->all && !out->has_currency && !json_object_get(root, "currency"))
		field_error(err, "currency", "is required when the pool matches all campaigns");
	if (take_time(root, "starts_at", &p->starts_at, err) == 1)
		out->has_starts = 1;
	if (take_time(root, "ends_at", &p->ends_at, err) == 1)
		out->has_ends = 1;
	if (out->has_starts && out->has_ends && p->starts_at && p->ends_at &&
	    p->ends_at <= p->starts_at)
		field_error(err, "ends_at", "must be after starts_at");
	if (take_bool(root, "match_offline", &p->match_offline, err) == 1)
		out->has_offline = 1;
	json_decref(root);
	if (err->fields) {
		snprintf(err->message, sizeof(err->message), "the match pool has invalid fields");
		return TALLY_EFIELDS;
	}
	if (!create && !(out->has_name || out->has_sponsor || out->has_amount || out->has_ratio ||
	                 out->has_gift_cap || out->has_donor_cap || out->has_campaigns ||
	                 out->has_starts || out->has_ends || out->has_offline)) {
		field_error(err, "body", "names no field to change");
		snprintf(err->message, sizeof(err->message), "the update changes nothing");
		return TALLY_EFIELDS;
	}
	return TALLY_OK;
}

int validate_challenge(const char *body, size_t len, struct challenge_spec *out,
                       struct validate_error *err)
{
	static const char *const known[] = {
	    "slug",           "name",        "sponsor",   "currency",  "kind",
	    "threshold",      "bonus_cents", "winners",   "campaigns", "campaign",
	    "min_gift_cents", "online_only", "starts_at", "ends_at"};
	struct challenge_row *c = &out->row;
	struct pool_spec campaigns;
	json_t *root, *v;
	int64_t n;
	int rc, k;

	memset(out, 0, sizeof(*out));
	err->message[0] = '\0';
	err->fields = NULL;
	rc = validate_json_object(body, len, &root, err);
	if (rc)
		return rc;
	refuse_unknown(root, known, UTIL_ARRAY_LEN(known), "a challenge", err);
	/* DESIGN.md's shape has no name: the slug stands in for it then. */
	if (!json_object_get(root, "name") && json_is_string(json_object_get(root, "slug")) &&
	    json_object_set_new(root, "name",
	                        json_string(json_string_value(json_object_get(root, "slug")))))
		field_error(err, "name", "is required");
	take_slug_name(root, 1, c->slug, c->name, err);
	take_string(root, "sponsor", "sponsor", 0, 0, TALLY_CAMPAIGN_NAME_MAX, 0, c->sponsor,
	            sizeof(c->sponsor), err);
	take_currency(root, 0, c->currency, err);
	v = json_object_get(root, "kind");
	k = json_is_string(v) ? challenge_kind_by_name(json_string_value(v)) : -1;
	if (k < 0)
		field_error(err, "kind", "must be amount, donors or gifts");
	else
		c->kind = (enum challenge_kind)k;
	take_int(root, "threshold", 1, 1, TALLY_TOTAL_MAX, &c->threshold, err);
	take_int(root, "bonus_cents", 1, 1, TALLY_TOTAL_MAX, &c->bonus_cents, err);
	if (take_int(root, "winners", 0, 0, 10000, &n, err) == 1)
		c->winners = (int)n;
	take_int(root, "min_gift_cents", 0, 0, TALLY_AMOUNT_MAX, &c->min_gift_cents, err);
	take_bool(root, "online_only", &c->online_only, err);
	/* "campaign": one slug (DESIGN.md's shape), or "campaigns": "all" or
	 * a list, as a match pool names them. */
	memset(&campaigns, 0, sizeof(campaigns));
	v = json_object_get(root, "campaign");
	if (v && json_object_get(root, "campaigns")) {
		field_error(err, "campaigns", "give campaign or campaigns, not both");
	} else if (v) {
		if (!json_is_string(v) ||
		    !validate_slug(json_string_value(v), json_string_length(v)))
			field_error(err, "campaign", "must be a campaign slug");
		else {
			memcpy(out->slugs[0], json_string_value(v), json_string_length(v) + 1);
			out->n_slugs = 1;
		}
	} else {
		take_pool_campaigns(root, &campaigns, err);
		if (!campaigns.has_campaigns && !json_object_get(root, "campaigns"))
			field_error(err, "campaigns", "is required: \"all\" or campaign slugs");
		out->all = campaigns.all;
		out->n_slugs = campaigns.n_slugs;
		memcpy(out->slugs, campaigns.slugs, sizeof(out->slugs));
	}
	if (out->all && !c->currency[0])
		field_error(err, "currency", "is required when the challenge is for all campaigns");
	if (take_time(root, "starts_at", &c->starts_at, err) != 1 || !c->starts_at)
		field_error(err, "starts_at", "is required (RFC 3339)");
	if (take_time(root, "ends_at", &c->ends_at, err) != 1 || !c->ends_at)
		field_error(err, "ends_at", "is required (RFC 3339)");
	else if (c->starts_at && c->ends_at <= c->starts_at)
		field_error(err, "ends_at", "must be after starts_at");
	json_decref(root);
	if (err->fields) {
		snprintf(err->message, sizeof(err->message), "the challenge has invalid fields");
		return TALLY_EFIELDS;
	}
	return TALLY_OK;
}

int validate_token(const char *body, size_t len, char name[TALLY_STAFF_NAME_SIZE],
                   enum staff_role *role, struct validate_error *err)
{
	json_t *root, *v;
	int rc, k;

	name[0] = '\0';
	*role = STAFF_PUBLIC;
	err->message[0] = '\0';
	err->fields = NULL;
	rc = validate_json_object(body, len, &root, err);
	if (rc)
		return rc;
	if (take_string(root, "name", "name", 1, 1, TALLY_STAFF_NAME_MAX, 0, name,
	                TALLY_STAFF_NAME_SIZE, err) == 1 &&
	    !validate_token_name(name, strlen(name)))
		field_error(
		    err, "name",
		    "must be 1-64 of A-Z, a-z, 0-9, '.', '_' and '-' (not \".\" or \"..\")");
	v = json_object_get(root, "role");
	k = json_is_string(v) ? staff_role_by_name(json_string_value(v)) : -1;
	if (!v || json_is_null(v))
		field_error(err, "role", "is required (viewer, operator or admin)");
	else if (k < 0)
		field_error(err, "role", "must be viewer, operator or admin");
	else
		*role = (enum staff_role)k;
	json_decref(root);
	if (err->fields) {
		name[0] = '\0';
		snprintf(err->message, sizeof(err->message), "the token has invalid fields");
		return TALLY_EFIELDS;
	}
	return TALLY_OK;
}

int validate_day(const char *body, size_t len, struct giving_day *out, struct validate_error *err)
{
	static const char *const known[] = {"name", "early_at", "opens_at", "closes_at",
	                                    "currency"};
	const int64_t floor_ms = INT64_C(946684800000);    /* 2000-01-01 */
	const int64_t ceiling_ms = INT64_C(4102444800000); /* 2100-01-01 */
	json_t *root;
	int rc, have_opens, have_closes;

	memset(out, 0, sizeof(*out));
	err->message[0] = '\0';
	err->fields = NULL;
	rc = validate_json_object(body, len, &root, err);
	if (rc)
		return rc;
	refuse_unknown(root, known, UTIL_ARRAY_LEN(known), "the giving day", err);
	if (take_string(root, "name", "name", 1, 1, TALLY_DAY_NAME_MAX, 0, out->name,
	                sizeof(out->name), err) == 1 &&
	    blank(out->name))
		field_error(err, "name", "must not be blank");
	take_time(root, "early_at", &out->early_at, err);
	have_opens = take_time(root, "opens_at", &out->opens_at, err);
	have_closes = take_time(root, "closes_at", &out->closes_at, err);
	if (have_opens == 0 || (have_opens == 1 && !out->opens_at))
		field_error(err, "opens_at", "is required");
	if (have_closes == 0 || (have_closes == 1 && !out->closes_at))
		field_error(err, "closes_at", "is required");
	take_currency(root, 0, out->currency, err);
	if (out->early_at && out->early_at < floor_ms)
		field_error(err, "early_at", "must be after 2000-01-01");
	if (out->opens_at && out->opens_at < floor_ms)
		field_error(err, "opens_at", "must be after 2000-01-01");
	if (out->closes_at && out->closes_at > ceiling_ms)
		field_error(err, "closes_at", "must be before 2100-01-01");
	if (out->early_at && out->opens_at && out->early_at >= out->opens_at)
		field_error(err, "early_at", "must be before opens_at");
	if (out->opens_at && out->closes_at && out->closes_at <= out->opens_at)
		field_error(err, "closes_at", "must be after opens_at");
	if (out->opens_at && out->closes_at && out->closes_at - out->opens_at > TALLY_DAY_SPAN_MAX)
		field_error(err, "closes_at", "must be at most 31 days after opens_at");
	if (out->early_at && out->opens_at && out->opens_at - out->early_at > TALLY_DAY_SPAN_MAX)
		field_error(err, "early_at", "must be at most 31 days before opens_at");
	json_decref(root);
	if (err->fields) {
		snprintf(err->message, sizeof(err->message), "the giving day has invalid fields");
		return TALLY_EFIELDS;
	}
	out->set = 1;
	return TALLY_OK;
}
