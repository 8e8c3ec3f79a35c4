/* tests/test_validate.c - donation and campaign bodies: every kind of bad
 * input gets the right code and the right per-field key. */
#include "tests/tests.h"
#include "base/util.h"
#include "core/validate.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct donation_limits lim = {100, 100000000};

/* ---- helpers ---- */

/* s repeated n times (caller frees). */
static char *repeat(const char *s, size_t n)
{
	size_t len = strlen(s);
	char *out = malloc(len * n + 1);

	ck_assert_ptr_nonnull(out);
	for (size_t i = 0; i < n; i++)
		memcpy(out + i * len, s, len);
	out[len * n] = '\0';
	return out;
}

static json_t *base_donation(void)
{
	json_t *o = json_pack("{s:i, s:s, s:{s:s, s:s}, s:b, s:b, s:s, s:s}", "amount_cents", 2500,
	                      "currency", "USD", "donor", "name", "Ada Lovelace", "email",
	                      "ada@example.org", "anonymous", 0, "hide_amount", 0, "message",
	                      "Go team!", "payment_token", "tok_visa");

	ck_assert_ptr_nonnull(o);
	return o;
}

/* o (stolen) with key set to v (stolen), or removed when v is NULL. */
static json_t *json_with(json_t *o, const char *key, json_t *v)
{
	if (v)
		json_object_set_new(o, key, v);
	else
		json_object_del(o, key);
	return o;
}

/* The base donation with key set to v (stolen), or removed when v is NULL. */
static json_t *donation_with(const char *key, json_t *v)
{
	return json_with(base_donation(), key, v);
}

/* The base donation with donor.key set to v (stolen), or removed. */
static json_t *donor_with(const char *key, json_t *v)
{
	json_t *o = base_donation(), *d = json_object_get(o, "donor");

	if (v)
		json_object_set_new(d, key, v);
	else
		json_object_del(d, key);
	return o;
}

static char *dump(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);

	ck_assert_ptr_nonnull(s);
	json_decref(o);
	return s;
}

/* Validate body and check the result code; for TALLY_EFIELDS, that field
 * is the only key of err.fields (or one of them when only is 0). */
static void check_donation_body(const char *body, size_t len, int want, const char *field, int only)
{
	struct donation_req req;
	struct validate_error err = {{0}, NULL};
	int rc = validate_donation(body, len, &lim, &req, &err);
	char *fields = err.fields ? json_dumps(err.fields, JSON_COMPACT) : NULL;

	ck_assert_msg(rc == want, "%.300s: rc %d, want %d (%s; fields %s)", body, rc, want,
	              err.message, fields ? fields : "null");
	if (want == TALLY_EFIELDS) {
		ck_assert_msg(err.fields && json_object_get(err.fields, field),
		              "%.300s: no \"%s\" in fields %s", body, field,
		              fields ? fields : "null");
		ck_assert_msg(!only || json_object_size(err.fields) == 1,
		              "%.300s: fields %s has more than \"%s\"", body, fields, field);
		ck_assert(json_is_string(json_object_get(err.fields, field)));
		ck_assert_str_ne(err.message, "");
	} else if (want == TALLY_EJSON) {
		ck_assert_ptr_null(err.fields);
		ck_assert_str_ne(err.message, "");
	}
	free(fields);
	validate_error_fini(&err);
	ck_assert_ptr_null(err.fields);
}

/* The body o (stolen) fails with exactly one field error on field. */
static void expect_donation_field(json_t *o, const char *field)
{
	char *body = dump(o);

	check_donation_body(body, strlen(body), TALLY_EFIELDS, field, 1);
	free(body);
}

/* The body o (stolen) is accepted; the result lands in *req. */
static void expect_donation_ok(json_t *o, struct donation_req *req)
{
	char *body = dump(o);
	struct validate_error err = {{0}, NULL};
	int rc = validate_donation(body, strlen(body), &lim, req, &err);
	char *fields = err.fields ? json_dumps(err.fields, JSON_COMPACT) : NULL;

	ck_assert_msg(rc == TALLY_OK, "%.300s: rc %d (%s; fields %s)", body, rc, err.message,
	              fields ? fields : "null");
	ck_assert_ptr_null(err.fields);
	free(fields);
	validate_error_fini(&err);
	free(body);
}

static void expect_donation_raw(const char *body, int want)
{
	check_donation_body(body, strlen(body), want, NULL, 0);
}

/* ---- donations: the good path ---- */

START_TEST(donation_valid)
{
	struct donation_req req;

	expect_donation_ok(base_donation(), &req);
	ck_assert_int_eq(req.amount_cents, 2500);
	ck_assert_str_eq(req.currency, "USD");
	ck_assert_str_eq(req.name, "Ada Lovelace");
	ck_assert_str_eq(req.email, "ada@example.org");
	ck_assert_str_eq(req.message, "Go team!");
	ck_assert_str_eq(req.payment_token, "tok_visa");
	ck_assert_int_eq(req.anonymous, 0);
	ck_assert_int_eq(req.hide_amount, 0);

	/* Optional fields absent: defaults. */
	{
		static const char body[] =
		    "{\"amount_cents\":100,\"currency\":\"EUR\","
		    "\"donor\":{\"name\":\"B\",\"email\":\"b@example.org\"}}";
		struct validate_error err = {{0}, NULL};

		ck_assert_int_eq(validate_donation(body, strlen(body), &lim, &req, &err), TALLY_OK);
		validate_error_fini(&err);
		ck_assert_int_eq(req.amount_cents, 100);
		ck_assert_str_eq(req.currency, "EUR");
		ck_assert_str_eq(req.message, "");
		ck_assert_str_eq(req.payment_token, "tok_visa");
		ck_assert_int_eq(req.anonymous, 0);
		ck_assert_int_eq(req.hide_amount, 0);
	}

	/* Flags set; optional values given as null count as absent. */
	{
		json_t *o = base_donation();

		json_object_set_new(o, "anonymous", json_true());
		json_object_set_new(o, "hide_amount", json_true());
		json_object_set_new(o, "message", json_null());
		expect_donation_ok(o, &req);
		ck_assert_int_eq(req.anonymous, 1);
		ck_assert_int_eq(req.hide_amount, 1);
		ck_assert_str_eq(req.message, "");
	}
	{
		json_t *o = base_donation();

		json_object_set_new(o, "anonymous", json_null());
		json_object_set_new(o, "hide_amount", json_null());
		expect_donation_ok(o, &req);
		ck_assert_int_eq(req.anonymous, 0);
		ck_assert_int_eq(req.hide_amount, 0);
	}

	/* The limits are inclusive. */
	expect_donation_ok(donation_with("amount_cents", json_integer(100)), &req);
	ck_assert_int_eq(req.amount_cents, 100);
	expect_donation_ok(donation_with("amount_cents", json_integer(100000000)), &req);
	ck_assert_int_eq(req.amount_cents, 100000000);

	/* Whitespace around the object is fine. */
	{
		static const char body[] =
		    " \n\t{ \"amount_cents\" : 500 , \"currency\" : \"USD\" , \"donor\" : "
		    "{ \"name\" : \"Ada\" , \"email\" : \"ada@example.org\" } } \r\n ";

		check_donation_body(body, strlen(body), TALLY_OK, NULL, 0);
	}
}
END_TEST

START_TEST(donation_unknown_fields_ignored)
{
	struct donation_req req;
	json_t *o = base_donation();

	json_object_set_new(o, "utm_source", json_string("newsletter"));
	json_object_set_new(o, "extra", json_pack("{s:[i,i,{s:n}]}", "nested", 1, 2, "a"));
	json_object_set_new(json_object_get(o, "donor"), "phone", json_string("+1 555 0100"));
	json_object_set_new(o, "amount", json_string("ignored"));
	expect_donation_ok(o, &req);
	ck_assert_int_eq(req.amount_cents, 2500);
	ck_assert_str_eq(req.name, "Ada Lovelace");
}
END_TEST

/* ---- donations: the body as a whole ---- */

START_TEST(donation_malformed_json)
{
	expect_donation_raw("", TALLY_EJSON);
	expect_donation_raw("{", TALLY_EJSON);
	expect_donation_raw("}", TALLY_EJSON);
	expect_donation_raw("not json", TALLY_EJSON);
	expect_donation_raw("{\"amount_cents\":}", TALLY_EJSON);
	expect_donation_raw("{'amount_cents':2500}", TALLY_EJSON);
	expect_donation_raw("{amount_cents:2500}", TALLY_EJSON);
	expect_donation_raw("{\"amount_cents\":2500,}", TALLY_EJSON);
	expect_donation_raw("{\"message\":\"unterminated}", TALLY_EJSON);
	expect_donation_raw("{\"amount_cents\":0x10}", TALLY_EJSON);
	expect_donation_raw("{\"amount_cents\":NaN}", TALLY_EJSON);
}
END_TEST

START_TEST(donation_not_an_object)
{
	expect_donation_raw("[]", TALLY_EJSON);
	expect_donation_raw("[{\"amount_cents\":2500}]", TALLY_EJSON);
	expect_donation_raw("\"a string\"", TALLY_EJSON);
	expect_donation_raw("2500", TALLY_EJSON);
	expect_donation_raw("null", TALLY_EJSON);
	expect_donation_raw("true", TALLY_EJSON);
}
END_TEST

START_TEST(donation_trailing_garbage)
{
	char *good = dump(base_donation());
	char body[600];

	snprintf(body, sizeof(body), "%s x", good);
	expect_donation_raw(body, TALLY_EJSON);
	snprintf(body, sizeof(body), "%s{}", good);
	expect_donation_raw(body, TALLY_EJSON);
	snprintf(body, sizeof(body), "%s,", good);
	expect_donation_raw(body, TALLY_EJSON);
	snprintf(body, sizeof(body), "%s}", good);
	expect_donation_raw(body, TALLY_EJSON);
	/* A NUL byte after the object is still part of the body. */
	snprintf(body, sizeof(body), "%s", good);
	check_donation_body(body, strlen(body) + 1, TALLY_EJSON, NULL, 0);
	snprintf(body, sizeof(body), "%s\n", good);
	expect_donation_raw(body, TALLY_OK);
	free(good);
}
END_TEST

START_TEST(donation_duplicate_keys)
{
	expect_donation_raw("{\"amount_cents\":2500,\"amount_cents\":100,\"currency\":\"USD\","
	                    "\"donor\":{\"name\":\"Ada\",\"email\":\"ada@example.org\"}}",
	                    TALLY_EJSON);
	expect_donation_raw("{\"amount_cents\":2500,\"currency\":\"USD\","
	                    "\"donor\":{\"name\":\"Ada\",\"name\":\"Eve\","
	                    "\"email\":\"ada@example.org\"}}",
	                    TALLY_EJSON);
}
END_TEST

START_TEST(donation_not_utf8)
{
	/* Raw invalid bytes inside a string value. */
	expect_donation_raw("{\"amount_cents\":2500,\"currency\":\"USD\","
	                    "\"donor\":{\"name\":\"Ad\xff\",\"email\":\"ada@example.org\"}}",
	                    TALLY_EJSON);
	expect_donation_raw("{\"amount_cents\":2500,\"currency\":\"USD\","
	                    "\"donor\":{\"name\":\"Ada\",\"email\":\"ada@example.org\"},"
	                    "\"message\":\"caf\xe9\"}",
	                    TALLY_EJSON);
	/* Overlong and surrogate encodings. */
	expect_donation_raw("{\"amount_cents\":2500,\"currency\":\"USD\","
	                    "\"donor\":{\"name\":\"A\xc0\xae\",\"email\":\"ada@example.org\"}}",
	                    TALLY_EJSON);
	expect_donation_raw("{\"amount_cents\":2500,\"currency\":\"USD\","
	                    "\"donor\":{\"name\":\"A\xed\xa0\x80\",\"email\":\"ada@example.org\"}}",
	                    TALLY_EJSON);
	/* Invalid bytes outside any string. */
	expect_donation_raw("{\"amount_cents\":2500\xff}", TALLY_EJSON);
	/* An escaped lone surrogate is not a character either. */
	expect_donation_raw("{\"amount_cents\":2500,\"currency\":\"USD\","
	                    "\"donor\":{\"name\":\"A\\udc00\",\"email\":\"ada@example.org\"}}",
	                    TALLY_EJSON);
	/* An escaped NUL never reaches a C string. */
	{
		static const char body[] =
		    "{\"amount_cents\":2500,\"currency\":\"USD\","
		    "\"donor\":{\"name\":\"A\\u0000B\",\"email\":\"ada@example.org\"}}";
		struct donation_req req;
		struct validate_error err = {{0}, NULL};

		ck_assert_int_ne(validate_donation(body, strlen(body), &lim, &req, &err), TALLY_OK);
		validate_error_fini(&err);
	}
	/* Valid multi-byte text, raw or escaped, is fine. */
	expect_donation_raw("{\"amount_cents\":2500,\"currency\":\"USD\","
	                    "\"donor\":{\"name\":\"Ren\xc3\xa9\\u00e9 \\ud83d\\ude00\","
	                    "\"email\":\"ada@example.org\"}}",
	                    TALLY_OK);
}
END_TEST

/* A valid donation padded with an unknown field to exactly total bytes. */
static char *padded_body(size_t total)
{
	char *good = dump(base_donation());
	size_t glen = strlen(good), pad;
	char *body = malloc(total + 1);

	/* {"pad":"xxx", + good without its '{' */
	ck_assert_uint_gt(total, glen + 9);
	pad = total - (glen - 1) - 10;
	ck_assert_ptr_nonnull(body);
	memcpy(body, "{\"pad\":\"", 8);
	memset(body + 8, 'x', pad);
	memcpy(body + 8 + pad, "\",", 2);
	memcpy(body + 10 + pad, good + 1, glen);
	ck_assert_uint_eq(strlen(body), total);
	free(good);
	return body;
}

START_TEST(donation_too_large)
{
	char *body = padded_body(TALLY_BODY_MAX);

	expect_donation_raw(body, TALLY_OK);
	free(body);
	body = padded_body(TALLY_BODY_MAX + 1);
	expect_donation_raw(body, TALLY_EJSON);
	free(body);
	body = padded_body(1 << 20);
	expect_donation_raw(body, TALLY_EJSON);
	free(body);
}
END_TEST

/* ---- donations: amount and currency ---- */

START_TEST(donation_amount)
{
	expect_donation_field(donation_with("amount_cents", json_string("2500")), "amount_cents");
	expect_donation_field(donation_with("amount_cents", json_real(25.5)), "amount_cents");
	expect_donation_field(donation_with("amount_cents", json_real(2500.0)), "amount_cents");
	expect_donation_field(donation_with("amount_cents", json_integer(0)), "amount_cents");
	expect_donation_field(donation_with("amount_cents", json_integer(-2500)), "amount_cents");
	expect_donation_field(donation_with("amount_cents", json_integer(99)), "amount_cents");
	expect_donation_field(donation_with("amount_cents", json_integer(100000001)),
	                      "amount_cents");
	expect_donation_field(donation_with("amount_cents", json_integer(INT64_MAX)),
	                      "amount_cents");
	expect_donation_field(donation_with("amount_cents", json_integer(INT64_MIN)),
	                      "amount_cents");
	expect_donation_field(donation_with("amount_cents", json_true()), "amount_cents");
	expect_donation_field(donation_with("amount_cents", json_null()), "amount_cents");
	expect_donation_field(donation_with("amount_cents", json_pack("[i]", 2500)),
	                      "amount_cents");
	expect_donation_field(donation_with("amount_cents", NULL), "amount_cents");
}
END_TEST

START_TEST(donation_amount_overflow)
{
	/* Beyond int64: jansson cannot say which field, so the key is "body". */
	static const char big[] = "{\"amount_cents\":99999999999999999999,\"currency\":\"USD\","
	                          "\"donor\":{\"name\":\"Ada\",\"email\":\"ada@example.org\"}}";
	static const char small[] = "{\"amount_cents\":-99999999999999999999,\"currency\":\"USD\","
	                            "\"donor\":{\"name\":\"Ada\",\"email\":\"ada@example.org\"}}";

	check_donation_body(big, strlen(big), TALLY_EFIELDS, "body", 1);
	check_donation_body(small, strlen(small), TALLY_EFIELDS, "body", 1);
}
END_TEST

START_TEST(donation_currency)
{
	expect_donation_field(donation_with("currency", json_string("usd")), "currency");
	expect_donation_field(donation_with("currency", json_string("Usd")), "currency");
	expect_donation_field(donation_with("currency", json_string("USDX")), "currency");
	expect_donation_field(donation_with("currency", json_string("US")), "currency");
	expect_donation_field(donation_with("currency", json_string("")), "currency");
	expect_donation_field(donation_with("currency", json_string("U$D")), "currency");
	expect_donation_field(donation_with("currency", json_string("U1D")), "currency");
	expect_donation_field(donation_with("currency", json_string("\xc3\x9cSD")), "currency");
	expect_donation_field(donation_with("currency", json_string(" USD")), "currency");
	expect_donation_field(donation_with("currency", json_integer(840)), "currency");
	expect_donation_field(donation_with("currency", json_null()), "currency");
	expect_donation_field(donation_with("currency", NULL), "currency");
}
END_TEST

/* ---- donations: donor ---- */

START_TEST(donation_donor)
{
	expect_donation_field(donation_with("donor", NULL), "donor");
	expect_donation_field(donation_with("donor", json_string("Ada")), "donor");
	expect_donation_field(donation_with("donor", json_pack("[s,s]", "Ada", "a@b.org")),
	                      "donor");
	expect_donation_field(donation_with("donor", json_null()), "donor");
	expect_donation_field(donation_with("donor", json_integer(1)), "donor");
	/* An empty donor object lacks both fields. */
	{
		char *body = dump(donation_with("donor", json_object()));

		check_donation_body(body, strlen(body), TALLY_EFIELDS, "donor.name", 0);
		check_donation_body(body, strlen(body), TALLY_EFIELDS, "donor.email", 0);
		free(body);
	}
}
END_TEST

START_TEST(donation_name)
{
	struct donation_req req;
	char *s;

	expect_donation_field(donor_with("name", NULL), "donor.name");
	expect_donation_field(donor_with("name", json_null()), "donor.name");
	expect_donation_field(donor_with("name", json_integer(42)), "donor.name");
	expect_donation_field(donor_with("name", json_string("")), "donor.name");
	expect_donation_field(donor_with("name", json_string(" ")), "donor.name");
	expect_donation_field(donor_with("name", json_string("    ")), "donor.name");
	/* Control characters (no newline in a name). */
	expect_donation_field(donor_with("name", json_string("\t")), "donor.name");
	expect_donation_field(donor_with("name", json_string("Ada\nLovelace")), "donor.name");
	expect_donation_field(donor_with("name", json_string("Ada\rLovelace")), "donor.name");
	expect_donation_field(donor_with("name", json_string("\x1b[31mAda")), "donor.name");
	expect_donation_field(donor_with("name", json_string("Ada\x7f")), "donor.name");
	expect_donation_field(donor_with("name", json_string("Ada\x01")), "donor.name");

	/* 100 code points pass, 101 do not, whatever their byte length. */
	s = repeat("a", 100);
	expect_donation_ok(donor_with("name", json_string(s)), &req);
	ck_assert_str_eq(req.name, s);
	free(s);
	s = repeat("a", 101);
	expect_donation_field(donor_with("name", json_string(s)), "donor.name");
	free(s);
	s = repeat("\xc3\xa9", 100);
	expect_donation_ok(donor_with("name", json_string(s)), &req);
	ck_assert_str_eq(req.name, s);
	free(s);
	s = repeat("\xc3\xa9", 101);
	expect_donation_field(donor_with("name", json_string(s)), "donor.name");
	free(s);
	s = repeat("\xe2\x82\xac", 100);
	expect_donation_ok(donor_with("name", json_string(s)), &req);
	ck_assert_str_eq(req.name, s);
	free(s);
	s = repeat("\xf0\x9f\x98\x80", 100);
	expect_donation_ok(donor_with("name", json_string(s)), &req);
	ck_assert_str_eq(req.name, s);
	ck_assert_uint_eq(strlen(req.name), 400);
	free(s);
	s = repeat("\xf0\x9f\x98\x80", 101);
	expect_donation_field(donor_with("name", json_string(s)), "donor.name");
	free(s);

	/* Inner spaces and non-ASCII letters are a name. */
	expect_donation_ok(donor_with("name", json_string(" Jos\xc3\xa9 Mar\xc3\xad"
	                                                  "a ")),
	                   &req);
	ck_assert_str_eq(req.name, " Jos\xc3\xa9 Mar\xc3\xad"
	                           "a ");
}
END_TEST

START_TEST(donation_email)
{
	static const char *const bad[] = {
	    "adaexample.org",   /* no @ */
	    "ada@@example.org", /* two @ */
	    "ada@exa@mple.org",
	    "ada@examplecom", /* no dot in the domain */
	    "ada@localhost",
	    "ada@.example.org", /* leading dot */
	    "ada@example.org.", /* trailing dot */
	    "ada@example..org",
	    "ada@-example.org",
	    "ada lovelace@example.org", /* spaces */
	    "ada@exam ple.org",
	    " ada@example.org",
	    "ada@example.org ",
	    "ada\t@example.org",
	    "@example.org", /* empty local part */
	    "ada@",
	    "ada@.",
	    "a\"b@example.org",
	    "a<b>@example.org",
	    "a,b@example.org",
	    "ada@exa_mple.org",
	    "ada@exa!mple.org",
	    "",
	};
	static const char *const good[] = {
	    "ada@example.org",
	    "Ada.Lovelace+tag@mail.example.co.uk",
	    "x@y.io",
	    "o'brien@example.ie",
	    "first-last@sub-domain.example.org",
	    "ada@b\xc3\xbc"
	    "cher.example",
	};
	struct donation_req req;
	char *local;

	for (size_t i = 0; i < UTIL_ARRAY_LEN(bad); i++)
		expect_donation_field(donor_with("email", json_string(bad[i])), "donor.email");
	for (size_t i = 0; i < UTIL_ARRAY_LEN(good); i++) {
		expect_donation_ok(donor_with("email", json_string(good[i])), &req);
		ck_assert_str_eq(req.email, good[i]);
	}
	expect_donation_field(donor_with("email", NULL), "donor.email");
	expect_donation_field(donor_with("email", json_null()), "donor.email");
	expect_donation_field(donor_with("email", json_integer(7)), "donor.email");

	/* A 64-character local part is the most allowed. */
	local = repeat("l", 64);
	{
		char email[128];

		snprintf(email, sizeof(email), "%s@example.org", local);
		expect_donation_ok(donor_with("email", json_string(email)), &req);
		snprintf(email, sizeof(email), "%sl@example.org", local);
		expect_donation_field(donor_with("email", json_string(email)), "donor.email");
	}
	free(local);
	/* Longer than 254 characters in all. */
	{
		char *domain = repeat("d", 250), email[300];

		snprintf(email, sizeof(email), "ada@%s.org", domain);
		expect_donation_field(donor_with("email", json_string(email)), "donor.email");
		free(domain);
	}
}
END_TEST

/* ---- donations: message, flags, token ---- */

START_TEST(donation_message)
{
	struct donation_req req;
	char *s;

	s = repeat("m", 501);
	expect_donation_field(donation_with("message", json_string(s)), "message");
	free(s);
	s = repeat("\xe2\x82\xac", 501);
	expect_donation_field(donation_with("message", json_string(s)), "message");
	free(s);
	s = repeat("\xe2\x82\xac", 500);
	expect_donation_ok(donation_with("message", json_string(s)), &req);
	ck_assert_str_eq(req.message, s);
	free(s);
	s = repeat("\xf0\x9f\x98\x80", 500);
	expect_donation_ok(donation_with("message", json_string(s)), &req);
	ck_assert_str_eq(req.message, s);
	free(s);
	/* Newlines are allowed in a message, other controls are not. */
	expect_donation_ok(donation_with("message", json_string("Line one\nLine two\n")), &req);
	ck_assert_str_eq(req.message, "Line one\nLine two\n");
	expect_donation_field(donation_with("message", json_string("Windows\r\nline")), "message");
	expect_donation_field(donation_with("message", json_string("tab\there")), "message");
	expect_donation_field(donation_with("message", json_string("bell\a")), "message");
	expect_donation_field(donation_with("message", json_string("del\x7f")), "message");
	expect_donation_field(donation_with("message", json_integer(5)), "message");
	expect_donation_field(donation_with("message", json_pack("{}")), "message");
	expect_donation_ok(donation_with("message", json_string("")), &req);
	ck_assert_str_eq(req.message, "");
}
END_TEST

START_TEST(donation_flags)
{
	expect_donation_field(donation_with("anonymous", json_string("yes")), "anonymous");
	expect_donation_field(donation_with("anonymous", json_string("true")), "anonymous");
	expect_donation_field(donation_with("anonymous", json_integer(1)), "anonymous");
	expect_donation_field(donation_with("anonymous", json_integer(0)), "anonymous");
	expect_donation_field(donation_with("anonymous", json_pack("[]")), "anonymous");
	expect_donation_field(donation_with("hide_amount", json_string("no")), "hide_amount");
	expect_donation_field(donation_with("hide_amount", json_integer(1)), "hide_amount");
}
END_TEST

START_TEST(donation_payment_token)
{
	static const char *const bad[] = {
	    "tok visa", "tok;drop", "tok.visa", "tok/visa", "t\xc3\xb6k", "tok'--", "", "tok\tvisa",
	};
	struct donation_req req;
	char *s;

	for (size_t i = 0; i < UTIL_ARRAY_LEN(bad); i++)
		expect_donation_field(donation_with("payment_token", json_string(bad[i])),
		                      "payment_token");
	expect_donation_field(donation_with("payment_token", json_integer(4242)), "payment_token");
	s = repeat("t", 65);
	expect_donation_field(donation_with("payment_token", json_string(s)), "payment_token");
	free(s);
	s = repeat("t", 64);
	expect_donation_ok(donation_with("payment_token", json_string(s)), &req);
	ck_assert_str_eq(req.payment_token, s);
	free(s);
	expect_donation_ok(donation_with("payment_token", json_string("tok_chargeDeclined-2")),
	                   &req);
	ck_assert_str_eq(req.payment_token, "tok_chargeDeclined-2");
	expect_donation_ok(donation_with("payment_token", NULL), &req);
	ck_assert_str_eq(req.payment_token, "tok_visa");
}
END_TEST

/* "captcha_token": kept apart from the request (never in its fingerprint
 * or the writer's op), the same on the fast path and the jansson one. */
START_TEST(donation_captcha_token)
{
	static const char *const bad[] = {"", "two words", "t\xc3\xb6k", "tab\tbed", "nl\n"};
	char tok[TALLY_CAPTCHA_TOKEN_SIZE], *s, *body;
	struct validate_error err = {{0}, NULL};
	struct donation_req req, plain;
	json_t *o;

	for (size_t i = 0; i < UTIL_ARRAY_LEN(bad); i++)
		expect_donation_field(donation_with("captcha_token", json_string(bad[i])),
		                      "captcha_token");
	expect_donation_field(donation_with("captcha_token", json_integer(1)), "captcha_token");
	s = repeat("t", TALLY_CAPTCHA_TOKEN_MAX + 1);
	expect_donation_field(donation_with("captcha_token", json_string(s)), "captcha_token");
	free(s);

	/* The longest token, on the fast path (a plain body) and on the full
	 * one (an escape elsewhere sends the body there). */
	s = repeat("t", TALLY_CAPTCHA_TOKEN_MAX);
	for (int full = 0; full < 2; full++) {
		o = base_donation();
		json_object_set_new(o, "captcha_token", json_string(s));
		if (full)
			json_object_set_new(o, "message", json_string("line\nbreak"));
		body = json_dumps(o, JSON_COMPACT);
		json_decref(o);
		ck_assert_int_eq(
		    validate_donation_captcha(body, strlen(body), &lim, &req, tok, &err), TALLY_OK);
		ck_assert_str_eq(tok, s);
		/* Not part of the request: the same as without a token. */
		ck_assert_int_eq(validate_donation(body, strlen(body), &lim, &plain, &err),
		                 TALLY_OK);
		ck_assert(!memcmp(&req, &plain, sizeof(req)));
		free(body);
	}
	free(s);
	/* Absent or null: "". */
	body = "{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":\"A\",\"email\":"
	       "\"a@b.org\"},\"captcha_token\":null}";
	strcpy(tok, "stale");
	ck_assert_int_eq(validate_donation_captcha(body, strlen(body), &lim, &req, tok, &err),
	                 TALLY_OK);
	ck_assert_str_eq(tok, "");
}
END_TEST

/* "payment_token": null is treated like an absent field everywhere else
 * (message, flags): an accepted request must never carry an empty token,
 * which the field's own rule (1 to 64 characters) forbids. */
START_TEST(donation_payment_token_null)
{
	struct donation_req req;

	expect_donation_ok(donation_with("payment_token", json_null()), &req);
	ck_assert_msg(req.payment_token[0] != '\0',
	              "accepted donation has an empty payment_token (expected \"tok_visa\")");
	ck_assert_str_eq(req.payment_token, "tok_visa");
}
END_TEST

START_TEST(donation_many_errors)
{
	json_t *o = base_donation();
	char *body;
	struct donation_req req;
	struct validate_error err = {{0}, NULL};

	json_object_set_new(o, "amount_cents", json_integer(-1));
	json_object_set_new(o, "currency", json_string("usd"));
	json_object_set_new(json_object_get(o, "donor"), "email", json_string("nope"));
	json_object_set_new(o, "anonymous", json_string("x"));
	body = dump(o);
	ck_assert_int_eq(validate_donation(body, strlen(body), &lim, &req, &err), TALLY_EFIELDS);
	ck_assert_ptr_nonnull(json_object_get(err.fields, "amount_cents"));
	ck_assert_ptr_nonnull(json_object_get(err.fields, "currency"));
	ck_assert_ptr_nonnull(json_object_get(err.fields, "donor.email"));
	ck_assert_ptr_nonnull(json_object_get(err.fields, "anonymous"));
	ck_assert_int_eq(json_object_size(err.fields), 4);
	validate_error_fini(&err);
	free(body);
}
END_TEST

/* ---- campaigns ---- */

static void check_campaign_body(const char *body, int create, int want, const char *field, int only)
{
	struct campaign_spec spec;
	struct validate_error err = {{0}, NULL};
	int rc = validate_campaign(body, strlen(body), create, &spec, &err);
	char *fields = err.fields ? json_dumps(err.fields, JSON_COMPACT) : NULL;

	ck_assert_msg(rc == want, "%.300s (create %d): rc %d, want %d (%s; fields %s)", body,
	              create, rc, want, err.message, fields ? fields : "null");
	if (want == TALLY_EFIELDS) {
		ck_assert_msg(err.fields && json_object_get(err.fields, field),
		              "%.300s: no \"%s\" in fields %s", body, field,
		              fields ? fields : "null");
		ck_assert_msg(!only || json_object_size(err.fields) == 1,
		              "%.300s: fields %s has more than \"%s\"", body, fields, field);
	} else if (want == TALLY_EJSON) {
		ck_assert_ptr_null(err.fields);
		ck_assert_str_ne(err.message, "");
	}
	free(fields);
	validate_error_fini(&err);
}

static json_t *base_campaign(void)
{
	json_t *o =
	    json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "slug", "spring-drive", "name",
	              "Spring Drive", "currency", "USD", "goal_cents", (json_int_t)500000,
	              "starts_at", "2026-11-28T00:00:00Z", "ends_at", "2026-11-29T00:00:00-05:00");

	ck_assert_ptr_nonnull(o);
	return o;
}

static json_t *campaign_with(const char *key, json_t *v)
{
	return json_with(base_campaign(), key, v);
}

/* o (stolen) as a create (create=1) or update body fails on field only. */
static void expect_campaign_field(json_t *o, int create, const char *field)
{
	char *body = dump(o);

	check_campaign_body(body, create, TALLY_EFIELDS, field, 1);
	free(body);
}

static void expect_campaign_ok(json_t *o, int create, struct campaign_spec *spec)
{
	char *body = dump(o);
	struct validate_error err = {{0}, NULL};
	int rc = validate_campaign(body, strlen(body), create, spec, &err);
	char *fields = err.fields ? json_dumps(err.fields, JSON_COMPACT) : NULL;

	ck_assert_msg(rc == TALLY_OK, "%.300s: rc %d (%s; fields %s)", body, rc, err.message,
	              fields ? fields : "null");
	free(fields);
	validate_error_fini(&err);
	free(body);
}

START_TEST(campaign_valid_create)
{
	struct campaign_spec spec;

	expect_campaign_ok(base_campaign(), 1, &spec);
	ck_assert_str_eq(spec.slug, "spring-drive");
	ck_assert_str_eq(spec.name, "Spring Drive");
	ck_assert_str_eq(spec.currency, "USD");
	ck_assert_int_eq(spec.goal_cents, 500000);
	ck_assert_int_eq(spec.starts_at, 1795824000000);
	ck_assert_int_eq(spec.ends_at, 1795928400000);
	ck_assert(spec.has_slug && spec.has_name && spec.has_currency && spec.has_goal &&
	          spec.has_starts && spec.has_ends);

	/* The minimum. */
	check_campaign_body("{\"slug\":\"a\",\"name\":\"A\",\"currency\":\"EUR\"}", 1, TALLY_OK,
	                    NULL, 0);
	{
		static const char body[] = "{\"slug\":\"a\",\"name\":\"A\",\"currency\":\"EUR\"}";
		struct validate_error err = {{0}, NULL};

		ck_assert_int_eq(validate_campaign(body, strlen(body), 1, &spec, &err), TALLY_OK);
		validate_error_fini(&err);
		ck_assert(spec.has_slug && spec.has_name && spec.has_currency);
		ck_assert(!spec.has_goal && !spec.has_starts && !spec.has_ends);
		ck_assert_int_eq(spec.goal_cents, 0);
	}

	/* Limits of goal and name, null times, unknown fields. */
	{
		json_t *o = base_campaign();
		char *name = repeat("\xe2\x82\xac", TALLY_CAMPAIGN_NAME_MAX);

		json_object_set_new(o, "goal_cents", json_integer(INT64_C(1000000000000000)));
		json_object_set_new(o, "name", json_string(name));
		json_object_set_new(o, "starts_at", json_null());
		json_object_set_new(o, "ends_at", json_null());
		json_object_set_new(o, "color", json_string("blue"));
		expect_campaign_ok(o, 1, &spec);
		ck_assert_str_eq(spec.name, name);
		ck_assert_int_eq(spec.goal_cents, INT64_C(1000000000000000));
		ck_assert(spec.has_starts && spec.has_ends);
		ck_assert_int_eq(spec.starts_at, 0);
		ck_assert_int_eq(spec.ends_at, 0);
		free(name);
	}
	expect_campaign_ok(campaign_with("goal_cents", json_integer(0)), 1, &spec);
	ck_assert(spec.has_goal);
	ck_assert_int_eq(spec.goal_cents, 0);
}
END_TEST

START_TEST(campaign_not_json)
{
	check_campaign_body("", 1, TALLY_EJSON, NULL, 0);
	check_campaign_body("{\"slug\":", 1, TALLY_EJSON, NULL, 0);
	check_campaign_body("[\"slug\"]", 1, TALLY_EJSON, NULL, 0);
	check_campaign_body("\"x\"", 0, TALLY_EJSON, NULL, 0);
	check_campaign_body("{\"name\":\"a\",\"name\":\"b\"}", 0, TALLY_EJSON, NULL, 0);
	check_campaign_body("{\"name\":\"a\"} {}", 0, TALLY_EJSON, NULL, 0);
	check_campaign_body("{\"name\":\"\xff\"}", 0, TALLY_EJSON, NULL, 0);
	check_campaign_body("{\"goal_cents\":123456789012345678901234}", 0, TALLY_EFIELDS, "body",
	                    1);
}
END_TEST

START_TEST(campaign_missing_on_create)
{
	expect_campaign_field(campaign_with("slug", NULL), 1, "slug");
	expect_campaign_field(campaign_with("name", NULL), 1, "name");
	expect_campaign_field(campaign_with("currency", NULL), 1, "currency");
	expect_campaign_field(campaign_with("slug", json_null()), 1, "slug");
	expect_campaign_field(campaign_with("name", json_null()), 1, "name");
	{
		struct campaign_spec spec;
		struct validate_error err = {{0}, NULL};

		ck_assert_int_eq(validate_campaign("{}", 2, 1, &spec, &err), TALLY_EFIELDS);
		ck_assert_ptr_nonnull(json_object_get(err.fields, "slug"));
		ck_assert_ptr_nonnull(json_object_get(err.fields, "name"));
		ck_assert_ptr_nonnull(json_object_get(err.fields, "currency"));
		ck_assert_int_eq(json_object_size(err.fields), 3);
		validate_error_fini(&err);
	}
}
END_TEST

START_TEST(campaign_slug)
{
	static const char *const bad[] = {
	    "Spring",
	    "spring-Drive",
	    "-spring",
	    "-",
	    "a/b",
	    "../etc",
	    "",
	    "spring drive",
	    "spring_drive",
	    "spring.drive",
	    "spr\xc3\xadng",
	    "spring\n",
	};
	static const char *const good[] = {"a", "0", "2026", "spring-drive", "spring-", "a--b"};
	struct campaign_spec spec;
	char *s;

	for (size_t i = 0; i < UTIL_ARRAY_LEN(bad); i++)
		expect_campaign_field(campaign_with("slug", json_string(bad[i])), 1, "slug");
	expect_campaign_field(campaign_with("slug", json_integer(7)), 1, "slug");
	s = repeat("a", 65);
	expect_campaign_field(campaign_with("slug", json_string(s)), 1, "slug");
	free(s);
	s = repeat("a", 64);
	expect_campaign_ok(campaign_with("slug", json_string(s)), 1, &spec);
	ck_assert_str_eq(spec.slug, s);
	free(s);
	for (size_t i = 0; i < UTIL_ARRAY_LEN(good); i++) {
		expect_campaign_ok(campaign_with("slug", json_string(good[i])), 1, &spec);
		ck_assert_str_eq(spec.slug, good[i]);
	}
}
END_TEST

START_TEST(campaign_slug_direct)
{
	ck_assert_int_eq(validate_slug("spring-drive", 12), 1);
	ck_assert_int_eq(validate_slug("a", 1), 1);
	ck_assert_int_eq(validate_slug("", 0), 0);
	ck_assert_int_eq(validate_slug("-a", 2), 0);
	ck_assert_int_eq(validate_slug("aB", 2), 0);
	ck_assert_int_eq(validate_slug("a/b", 3), 0);
	/* Only len bytes are looked at. */
	ck_assert_int_eq(validate_slug("ab/", 2), 1);
	{
		char s[66];

		memset(s, 'z', sizeof(s));
		ck_assert_int_eq(validate_slug(s, 64), 1);
		ck_assert_int_eq(validate_slug(s, 65), 0);
	}
	ck_assert_int_eq(validate_currency("USD"), 1);
	ck_assert_int_eq(validate_currency("EUR"), 1);
	ck_assert_int_eq(validate_currency("usd"), 0);
	ck_assert_int_eq(validate_currency("US"), 0);
	ck_assert_int_eq(validate_currency("USDX"), 0);
	ck_assert_int_eq(validate_currency("U1D"), 0);
	ck_assert_int_eq(validate_currency(""), 0);
}
END_TEST

START_TEST(campaign_fields)
{
	char *s;

	/* Currency on create. */
	expect_campaign_field(campaign_with("currency", json_string("usd")), 1, "currency");
	expect_campaign_field(campaign_with("currency", json_string("DOLLARS")), 1, "currency");
	expect_campaign_field(campaign_with("currency", json_integer(840)), 1, "currency");
	/* Name. */
	expect_campaign_field(campaign_with("name", json_string("")), 1, "name");
	expect_campaign_field(campaign_with("name", json_string("Two\nlines")), 1, "name");
	expect_campaign_field(campaign_with("name", json_string("Tab\t")), 1, "name");
	expect_campaign_field(campaign_with("name", json_integer(3)), 1, "name");
	s = repeat("n", TALLY_CAMPAIGN_NAME_MAX + 1);
	expect_campaign_field(campaign_with("name", json_string(s)), 1, "name");
	free(s);
	/* Goal. */
	expect_campaign_field(campaign_with("goal_cents", json_integer(-1)), 1, "goal_cents");
	expect_campaign_field(campaign_with("goal_cents", json_real(25.5)), 1, "goal_cents");
	expect_campaign_field(campaign_with("goal_cents", json_string("100")), 1, "goal_cents");
	expect_campaign_field(campaign_with("goal_cents", json_true()), 1, "goal_cents");
	expect_campaign_field(campaign_with("goal_cents", json_integer(INT64_C(1000000000000001))),
	                      1, "goal_cents");
	expect_campaign_field(json_pack("{s:i}", "goal_cents", -1), 0, "goal_cents");
}
END_TEST

START_TEST(campaign_times)
{
	static const char *const bad[] = {
	    "tomorrow",
	    "",
	    "2026-02-30T00:00:00Z",
	    "2026-12-01",
	    "2026-12-01T00:00:00",
	    "2026-12-01T25:00:00Z",
	    "1969-01-01T00:00:00Z",
	};

	for (size_t i = 0; i < UTIL_ARRAY_LEN(bad); i++) {
		json_t *o = campaign_with("starts_at", json_string(bad[i]));

		json_object_del(o, "ends_at");
		expect_campaign_field(o, 1, "starts_at");
		o = campaign_with("ends_at", json_string(bad[i]));
		json_object_del(o, "starts_at");
		expect_campaign_field(o, 1, "ends_at");
		expect_campaign_field(json_pack("{s:s}", "ends_at", bad[i]), 0, "ends_at");
	}
	expect_campaign_field(campaign_with("starts_at", json_integer(1795824000000)), 1,
	                      "starts_at");
	expect_campaign_field(campaign_with("ends_at", json_true()), 1, "ends_at");
	expect_campaign_field(campaign_with("ends_at", json_pack("{}")), 1, "ends_at");

	/* ends_at must come after starts_at. */
	expect_campaign_field(campaign_with("ends_at", json_string("2026-11-27T00:00:00Z")), 1,
	                      "ends_at");
	expect_campaign_field(campaign_with("ends_at", json_string("2026-11-28T00:00:00Z")), 1,
	                      "ends_at");
	/* The same instant in another zone is still not after. */
	expect_campaign_field(campaign_with("ends_at", json_string("2026-11-28T01:00:00+01:00")), 1,
	                      "ends_at");
	expect_campaign_field(json_pack("{s:s,s:s}", "starts_at", "2026-12-02T00:00:00Z", "ends_at",
	                                "2026-12-01T00:00:00Z"),
	                      0, "ends_at");
	/* One millisecond later is fine. */
	{
		struct campaign_spec spec;

		expect_campaign_ok(
		    campaign_with("ends_at", json_string("2026-11-28T00:00:00.001Z")), 1, &spec);
		ck_assert_int_eq(spec.ends_at - spec.starts_at, 1);
	}
}
END_TEST

START_TEST(campaign_update)
{
	struct campaign_spec spec;

	expect_campaign_ok(json_object(), 0, &spec);
	ck_assert(!spec.has_slug && !spec.has_name && !spec.has_currency && !spec.has_goal &&
	          !spec.has_starts && !spec.has_ends);

	expect_campaign_ok(json_pack("{s:s}", "name", "Renamed"), 0, &spec);
	ck_assert(spec.has_name);
	ck_assert_str_eq(spec.name, "Renamed");
	ck_assert(!spec.has_goal && !spec.has_starts && !spec.has_ends);

	expect_campaign_ok(json_pack("{s:I}", "goal_cents", (json_int_t)7), 0, &spec);
	ck_assert(spec.has_goal && !spec.has_name);
	ck_assert_int_eq(spec.goal_cents, 7);

	/* Slug and currency cannot change. */
	expect_campaign_field(json_pack("{s:s}", "slug", "new-slug"), 0, "slug");
	expect_campaign_field(json_pack("{s:s,s:s}", "slug", "spring-drive", "name", "X"), 0,
	                      "slug");
	expect_campaign_field(json_pack("{s:n}", "slug"), 0, "slug");
	expect_campaign_field(json_pack("{s:s}", "currency", "EUR"), 0, "currency");

	/* null clears a time. */
	expect_campaign_ok(json_pack("{s:n,s:n}", "starts_at", "ends_at"), 0, &spec);
	ck_assert(spec.has_starts && spec.has_ends);
	ck_assert_int_eq(spec.starts_at, 0);
	ck_assert_int_eq(spec.ends_at, 0);
	/* A cleared start does not constrain the end. */
	expect_campaign_ok(json_pack("{s:n,s:s}", "starts_at", "ends_at", "2026-01-01T00:00:00Z"),
	                   0, &spec);
	ck_assert(spec.has_starts && spec.has_ends);
	ck_assert_int_eq(spec.starts_at, 0);
	ck_assert_int_eq(spec.ends_at, 1767225600000);
	/* Only one time given. */
	expect_campaign_ok(json_pack("{s:s}", "ends_at", "2026-01-01T00:00:00Z"), 0, &spec);
	ck_assert(spec.has_ends && !spec.has_starts);
}
END_TEST

/* ---- the fast path agrees with the full (jansson) path ---- */

static const struct donation_limits diff_lim = {100, 100000000};

/* Validate body both ways; both must give the same code, the same result
 * and the same per-field messages. */
static void same_both_ways(const char *body, size_t len)
{
	struct donation_req a, b;
	struct validate_error ea = {{0}, NULL}, eb = {{0}, NULL};
	int ra = validate_donation(body, len, &diff_lim, &a, &ea);
	int rb = validate_donation_full(body, len, &diff_lim, &b, &eb);

	ck_assert_msg(ra == rb, "fast %d, full %d for: %.*s", ra, rb, (int)len, body);
	if (ra == TALLY_OK)
		ck_assert_msg(!memcmp(&a, &b, sizeof(a)), "results differ for: %.*s", (int)len,
		              body);
	else
		ck_assert_msg(json_equal(ea.fields, eb.fields) || (!ea.fields && !eb.fields),
		              "fields differ for: %.*s", (int)len, body);
	validate_error_fini(&ea);
	validate_error_fini(&eb);
}

static const char *const diff_corpus[] = {
    "{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":\"Ada\",\"email\":"
    "\"ada@example.org\"}}",
    " {\n \"donor\" : { \"email\" : \"ada@example.org\" , \"name\" : \"Ada L\" } ,\r\n"
    "\t\"currency\":\"EUR\", \"amount_cents\" : 100 } \n",
    "{\"amount_cents\":100000000,\"currency\":\"USD\",\"donor\":{\"name\":\"Zoë Núñez 李\","
    "\"email\":\"z@exämple.org\"},\"anonymous\":true,\"hide_amount\":false,\"message\":"
    "\"Go team! 🎉\",\"payment_token\":\"tok_chargeDeclined\"}",
    "{\"amount_cents\":100000001,\"currency\":\"USD\",\"donor\":{\"name\":\"A\",\"email\":"
    "\"a@b.org\"}}",
    "{\"amount_cents\":99,\"currency\":\"USD\",\"donor\":{\"name\":\"A\",\"email\":\"a@b.org\"}}",
    "{\"amount_cents\":-0,\"currency\":\"USD\",\"donor\":{\"name\":\"A\",\"email\":\"a@b.org\"}}",
    "{\"amount_cents\":0100,\"currency\":\"USD\",\"donor\":{\"name\":\"A\",\"email\":\"a@b.org\"}}",
    "{\"amount_cents\":1e3,\"currency\":\"USD\",\"donor\":{\"name\":\"A\",\"email\":\"a@b.org\"}}",
    "{\"amount_cents\":2500,\"currency\":\"usd\",\"donor\":{\"name\":\"A\",\"email\":\"a@b.org\"}}",
    "{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":\" \",\"email\":\"a@b.org\"}}",
    "{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":\"A\",\"email\":\"a@b\"}}",
    "{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":\"A\",\"email\":\"a@b.org\","
    "\"name\":\"B\"}}",
    "{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":\"A\",\"email\":\"a@b.org\"},"
    "\"extra\":[1,2,{\"x\":null}]}",
    "{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":\"A\\u00e9\",\"email\":"
    "\"a@b.org\"},\"message\":\"line\\nbreak\"}",
    "{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":\"A\",\"email\":\"a@b.org\"},"
    "\"payment_token\":null,\"anonymous\":null}",
    "{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":\"A\",\"email\":\"a@b.org\"},"
    "\"payment_token\":\"tok visa\"}",
    "{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":\"A\",\"email\":\"a@b.org\"},"
    "}",
    "{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":\"A\",\"email\":\"a@b.org\"}} "
    "x",
    "{\"amount_cents\":2500,\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":\"A\","
    "\"email\":\"a@b.org\"}}",
    "{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":\"A\",\"email\":\"a@b.org\"},"
    "\"captcha_token\":\"0.aZ-_~x.y\"}",
    "{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":\"A\",\"email\":\"a@b.org\"},"
    "\"captcha_token\":\"two words\"}",
    "{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":\"A\",\"email\":\"a@b.org\"},"
    "\"captcha_token\":\"\"}",
    "{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":\"A\",\"email\":\"a@b.org\"},"
    "\"captcha_token\":7}",
    "{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":\"A\",\"email\":\"a@b.org\"},"
    "\"captcha_token\":\"a\",\"captcha_token\":\"b\"}",
    "{}",
    "[]",
    "",
    "{\"amount_cents\":123456789012345678901,\"currency\":\"USD\"}",
};

START_TEST(fast_path_agrees_on_corpus)
{
	for (size_t i = 0; i < sizeof(diff_corpus) / sizeof(diff_corpus[0]); i++)
		same_both_ways(diff_corpus[i], strlen(diff_corpus[i]));
}
END_TEST

START_TEST(fast_path_agrees_on_mutations)
{
	static const char alphabet[] = "{}[]:,\"\\ 0123456789-.eEtruefalsn\x01\x7f\xc3\xa9\xff";
	unsigned seed = 12345;

	/* 20,000 random edits of valid bodies: each must get the same answer
	 * both ways, valid or not. */
	for (int n = 0; n < 20000; n++) {
		const char *base = diff_corpus[n % 3];
		char buf[1024];
		size_t len = strlen(base);
		int edits = 1 + (int)(rand_r(&seed) % 3);

		memcpy(buf, base, len);
		for (int e = 0; e < edits && len > 2 && len < sizeof(buf) - 2; e++) {
			size_t at = rand_r(&seed) % len;
			char c = alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];

			switch (rand_r(&seed) % 3) {
			case 0:
				buf[at] = c;
				break;
			case 1:
				memmove(buf + at + 1, buf + at, len - at);
				buf[at] = c;
				len++;
				break;
			default:
				memmove(buf + at, buf + at + 1, len - at - 1);
				len--;
			}
		}
		same_both_ways(buf, len);
	}
}
END_TEST

/* ---- bidirectional controls and C1 controls ---- */

/* Characters that reorder or hide text: the bidi embeddings, overrides and
 * isolates (U+202A..U+202E, U+2066..U+2069), then C1 controls (U+0080,
 * U+0085 NEL, U+009B CSI, U+009F). UTF-8 and JSON-escaped. */
static const struct {
	const char *utf8, *escaped;
	int bidi;
} sneaky[] = {
    {"\xe2\x80\xaa", "\\u202a", 1}, {"\xe2\x80\xab", "\\u202B", 1}, {"\xe2\x80\xac", "\\u202c", 1},
    {"\xe2\x80\xad", "\\u202d", 1}, {"\xe2\x80\xae", "\\u202e", 1}, {"\xe2\x81\xa6", "\\u2066", 1},
    {"\xe2\x81\xa7", "\\u2067", 1}, {"\xe2\x81\xa8", "\\u2068", 1}, {"\xe2\x81\xa9", "\\u2069", 1},
    {"\xc2\x80", "\\u0080", 0},     {"\xc2\x85", "\\u0085", 0},     {"\xc2\x9b", "\\u009b", 0},
    {"\xc2\x9f", "\\u009f", 0},
};

#define BIDI_MESSAGE                                                                               \
	"must not contain bidirectional override or isolate characters (U+202A to U+202E, U+2066 " \
	"to U+2069)"

/* body is refused on field alone, with the message for sneaky[i]; the fast
 * path and the full path agree. */
static void expect_sneaky_refused(const char *body, size_t i, const char *field)
{
	struct donation_req req;
	struct validate_error err = {{0}, NULL};
	const char *msg;

	ck_assert_int_eq(validate_donation(body, strlen(body), &lim, &req, &err), TALLY_EFIELDS);
	ck_assert_uint_eq(json_object_size(err.fields), 1);
	msg = json_string_value(json_object_get(err.fields, field));
	ck_assert_msg(msg, "%s: no %s in the fields", body, field);
	ck_assert_str_eq(msg,
	                 sneaky[i].bidi ? BIDI_MESSAGE : "must not contain control characters");
	validate_error_fini(&err);
	same_both_ways(body, strlen(body));
}

START_TEST(donation_bidi_and_c1_refused)
{
	static const char *const fmt[][2] = {
	    {"donor.name", "{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":"
	                   "\"Ada%sevol\",\"email\":\"ada@example.org\"}}"},
	    {"message", "{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":\"Ada\","
	                "\"email\":\"ada@example.org\"},\"message\":\"Thanks %s 0001$\"}"},
	};
	char body[512];

	for (size_t i = 0; i < sizeof(sneaky) / sizeof(sneaky[0]); i++)
		for (size_t f = 0; f < 2; f++) {
			snprintf(body, sizeof(body), fmt[f][1], sneaky[i].utf8);
			expect_sneaky_refused(body, i, fmt[f][0]);
			snprintf(body, sizeof(body), fmt[f][1], sneaky[i].escaped);
			expect_sneaky_refused(body, i, fmt[f][0]);
		}
	/* Alone, at the start, at the end. */
	expect_sneaky_refused("{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":"
	                      "\"\xe2\x80\xae\",\"email\":\"ada@example.org\"}}",
	                      4, "donor.name");
	expect_sneaky_refused("{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":"
	                      "\"Ada\",\"email\":\"ada@example.org\"},\"message\":\"Go\xc2\x9f\"}",
	                      12, "message");
}
END_TEST

/* Their neighbours are ordinary text: marks, spaces and letters of
 * right-to-left scripts stay welcome. */
START_TEST(donation_bidi_neighbours_accepted)
{
	static const char *const fine[] = {
	    "\xe2\x80\x8f",                             /* U+200F RIGHT-TO-LEFT MARK */
	    "\xe2\x80\xa9",                             /* U+2029 PARAGRAPH SEPARATOR */
	    "\xe2\x80\xaf",                             /* U+202F NARROW NO-BREAK SPACE */
	    "\xe2\x81\xa5",                             /* U+2065 (unassigned) */
	    "\xe2\x81\xaa",                             /* U+206A */
	    "\xc2\xa0",                                 /* U+00A0 NO-BREAK SPACE */
	    "\xd7\xa9\xd7\xa8\xd7\x94",                 /* Hebrew */
	    "\xd9\x81\xd8\xa7\xd8\xb7\xd9\x85\xd8\xa9", /* Arabic */
	};
	struct donation_req req;

	for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
		char name[64];

		snprintf(name, sizeof(name), "Ada %s", fine[i]);
		expect_donation_ok(donor_with("name", json_string(name)), &req);
		ck_assert_str_eq(req.name, name);
		expect_donation_ok(donation_with("message", json_string(name)), &req);
		ck_assert_str_eq(req.message, name);
	}
}
END_TEST

START_TEST(campaign_bidi_and_c1_refused)
{
	for (size_t i = 0; i < sizeof(sneaky) / sizeof(sneaky[0]); i++) {
		char name[64];

		snprintf(name, sizeof(name), "Food %s bank", sneaky[i].utf8);
		expect_campaign_field(campaign_with("name", json_string(name)), 1, "name");
		expect_campaign_field(json_pack("{s:s}", "name", name), 0, "name");
	}
	{
		static const char body[] =
		    "{\"slug\":\"a\",\"name\":\"Gifts \\u202etxt.exe\",\"currency\":\"EUR\"}";
		struct campaign_spec spec;
		struct validate_error err = {{0}, NULL};

		ck_assert_int_eq(validate_campaign(body, strlen(body), 1, &spec, &err),
		                 TALLY_EFIELDS);
		ck_assert_str_eq(json_string_value(json_object_get(err.fields, "name")),
		                 BIDI_MESSAGE);
		validate_error_fini(&err);
	}
}
END_TEST

START_TEST(category_trimmed_bounded_and_printable)
{
	char out[TALLY_CATEGORY_SIZE], long_ok[TALLY_CATEGORY_MAX * 4 + 1],
	    too_long[sizeof(long_ok) + 4];
	struct campaign_spec spec;
	struct validate_error err;
	static const char *const bad[] = {"a\x01"
	                                  "b",
	                                  "a\x7f",
	                                  "\xc2\x85x",
	                                  "a\xe2\x80\xae"
	                                  "b",
	                                  "\xff\xfe",
	                                  "a\tb"};

	ck_assert_ptr_null(validate_category("  Arts \t", 8, out));
	ck_assert_str_eq(out, "Arts");
	ck_assert_ptr_null(validate_category("   ", 3, out));
	ck_assert_str_eq(out, "");
	ck_assert_ptr_null(validate_category("Say \"hi\": now", 13, out));
	ck_assert_str_eq(out, "Say \"hi\": now");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(validate_category(bad[i], strlen(bad[i]), out) != NULL, "took %zu",
		              i);
	ck_assert_ptr_nonnull(validate_category("a\0b", 3, out));
	/* 64 code points of four bytes each fit, 65 do not */
	for (int i = 0; i < TALLY_CATEGORY_MAX + 1; i++)
		memcpy(too_long + 4 * i, "\xf0\x9f\x8e\xa8", 4);
	memcpy(long_ok, too_long, TALLY_CATEGORY_MAX * 4);
	long_ok[TALLY_CATEGORY_MAX * 4] = '\0';
	too_long[(TALLY_CATEGORY_MAX + 1) * 4] = '\0';
	ck_assert_ptr_null(validate_category(long_ok, strlen(long_ok), out));
	ck_assert_uint_eq(strlen(out), TALLY_CATEGORY_MAX * 4);
	ck_assert_ptr_nonnull(validate_category(too_long, strlen(too_long), out));

	/* in a campaign: set, cleared by "" or null, refused otherwise */
	ck_assert_int_eq(validate_campaign("{\"category\":\" Arts \"}",
	                                   strlen("{\"category\":\" Arts \"}"), 0, &spec, &err),
	                 0);
	ck_assert(spec.has_category);
	ck_assert_str_eq(spec.category, "Arts");
	ck_assert_int_eq(
	    validate_campaign("{\"category\":null}", strlen("{\"category\":null}"), 0, &spec, &err),
	    0);
	ck_assert(spec.has_category);
	ck_assert_str_eq(spec.category, "");
	ck_assert_int_eq(
	    validate_campaign("{\"name\":\"x\"}", strlen("{\"name\":\"x\"}"), 0, &spec, &err), 0);
	ck_assert(!spec.has_category);
	ck_assert_int_eq(
	    validate_campaign("{\"category\":[1]}", strlen("{\"category\":[1]}"), 0, &spec, &err),
	    TALLY_EFIELDS);
	ck_assert_ptr_nonnull(json_object_get(err.fields, "category"));
	validate_error_fini(&err);
}
END_TEST

Suite *validate_suite(void)
{
	Suite *s = suite_create("validate");
	TCase *tc;

	tc = tcase_create("fast_path");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, fast_path_agrees_on_corpus);
	tcase_add_test(tc, fast_path_agrees_on_mutations);
	suite_add_tcase(s, tc);

	tc = tcase_create("donation");
	tcase_add_test(tc, donation_valid);
	tcase_add_test(tc, donation_unknown_fields_ignored);
	tcase_add_test(tc, donation_malformed_json);
	tcase_add_test(tc, donation_not_an_object);
	tcase_add_test(tc, donation_trailing_garbage);
	tcase_add_test(tc, donation_duplicate_keys);
	tcase_add_test(tc, donation_not_utf8);
	tcase_add_test(tc, donation_too_large);
	tcase_add_test(tc, donation_amount);
	tcase_add_test(tc, donation_amount_overflow);
	tcase_add_test(tc, donation_currency);
	tcase_add_test(tc, donation_donor);
	tcase_add_test(tc, donation_name);
	tcase_add_test(tc, donation_email);
	tcase_add_test(tc, donation_message);
	tcase_add_test(tc, donation_flags);
	tcase_add_test(tc, donation_payment_token);
	tcase_add_test(tc, donation_payment_token_null);
	tcase_add_test(tc, donation_captcha_token);
	tcase_add_test(tc, donation_many_errors);
	tcase_add_test(tc, donation_bidi_and_c1_refused);
	tcase_add_test(tc, donation_bidi_neighbours_accepted);
	suite_add_tcase(s, tc);

	tc = tcase_create("campaign");
	tcase_add_test(tc, campaign_valid_create);
	tcase_add_test(tc, campaign_not_json);
	tcase_add_test(tc, campaign_missing_on_create);
	tcase_add_test(tc, campaign_slug);
	tcase_add_test(tc, campaign_slug_direct);
	tcase_add_test(tc, campaign_fields);
	tcase_add_test(tc, campaign_times);
	tcase_add_test(tc, campaign_update);
	tcase_add_test(tc, campaign_bidi_and_c1_refused);
	tcase_add_test(tc, category_trimmed_bounded_and_printable);
	suite_add_tcase(s, tc);
	return s;
}
