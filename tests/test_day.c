/* tests/test_day.c - the giving day's schedule: its phases (core/day.c)
 * and its body's rules (validate_day) on their own, then the real server:
 * PUT, GET and DELETE, every kind of bad input (nothing written), gifts
 * refused before and after the day and taken in its early and open
 * phases, the campaigns' status and opens_at, a phase that flips by time
 * alone (seen on the live `day` channel and in GET /api/v1/day), the one
 * currency rule, the audit rows, and a restart. */
#include "tests/itest.h"
#include "tests/tests.h"
#include "core/day.h"
#include "core/validate.h"
#include "base/util.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the rules ---- */

#define T0 INT64_C(1800000000000) /* a moment in 2027 */
#define MIN INT64_C(60000)

static const struct giving_day with_early = {1, "Day", T0 - 10 * MIN, T0, T0 + 60 * MIN, ""};
static const struct giving_day without_early = {1, "Day", 0, T0, T0 + 60 * MIN, ""};

START_TEST(phases_at_their_bounds)
{
	ck_assert_int_eq(day_phase(NULL, T0), DAY_NONE);
	ck_assert_int_eq(day_phase(&(struct giving_day){0}, T0), DAY_NONE);
	ck_assert_int_eq(day_phase(&with_early, T0 - 10 * MIN - 1), DAY_BEFORE);
	ck_assert_int_eq(day_phase(&with_early, T0 - 10 * MIN), DAY_EARLY);
	ck_assert_int_eq(day_phase(&with_early, T0 - 1), DAY_EARLY);
	ck_assert_int_eq(day_phase(&with_early, T0), DAY_OPEN);
	ck_assert_int_eq(day_phase(&with_early, T0 + 60 * MIN - 1), DAY_OPEN);
	ck_assert_int_eq(day_phase(&with_early, T0 + 60 * MIN), DAY_CLOSED);
	ck_assert_int_eq(day_phase(&without_early, T0 - 10 * MIN), DAY_BEFORE);
	ck_assert_int_eq(day_phase(&without_early, T0 - 1), DAY_BEFORE);
	ck_assert_int_eq(day_phase(&without_early, T0), DAY_OPEN);
	ck_assert_str_eq(day_phase_names[DAY_EARLY], "early");
	ck_assert_str_eq(day_phase_names[DAY_CLOSED], "closed");
}
END_TEST

START_TEST(gifts_follow_the_phase)
{
	ck_assert(day_takes_gifts(NULL, T0));
	ck_assert(!day_takes_gifts(&with_early, T0 - 10 * MIN - 1));
	ck_assert(day_takes_gifts(&with_early, T0 - 10 * MIN));
	ck_assert(day_takes_gifts(&with_early, T0 + 30 * MIN));
	ck_assert(!day_takes_gifts(&with_early, T0 + 60 * MIN));
	ck_assert(!day_takes_gifts(&without_early, T0 - 1));
	ck_assert_int_eq(day_opens_in_ms(&with_early, T0 - 5000), 5000);
	ck_assert_int_eq(day_opens_in_ms(&with_early, T0), 0);
	ck_assert_int_eq(day_opens_in_ms(&with_early, T0 + 60 * MIN + 1), 0);
	ck_assert_int_eq(day_opens_in_ms(NULL, T0), 0);
	ck_assert_int_eq(day_first_gift_at(&with_early), T0 - 10 * MIN);
	ck_assert_int_eq(day_first_gift_at(&without_early), T0);
	/* the moments a tick is asked for */
	ck_assert_int_eq(day_next_change(&with_early, T0 - 60 * MIN), T0 - 10 * MIN);
	ck_assert_int_eq(day_next_change(&with_early, T0 - 10 * MIN), T0);
	ck_assert_int_eq(day_next_change(&with_early, T0), T0 + 60 * MIN);
	ck_assert_int_eq(day_next_change(&with_early, T0 + 60 * MIN), 0);
	ck_assert_int_eq(day_next_change(&without_early, T0 - 60 * MIN), T0);
	ck_assert_int_eq(day_next_change(NULL, T0), 0);
}
END_TEST

START_TEST(a_campaign_opens_when_both_windows_do)
{
	struct campaign_row r = {0};

	r.status = CAMPAIGN_ACTIVE;
	/* Before the day: it opens with the early window. */
	ck_assert_int_eq(day_campaign_opens_at(&r, &with_early, T0 - 60 * MIN), T0 - 10 * MIN);
	/* Open now: nothing to wait for. */
	ck_assert_int_eq(day_campaign_opens_at(&r, &with_early, T0), 0);
	/* Its own start later than the day's. */
	r.starts_at = T0 + 5 * MIN;
	ck_assert_int_eq(day_campaign_opens_at(&r, &with_early, T0 - 60 * MIN), T0 + 5 * MIN);
	ck_assert_int_eq(day_campaign_opens_at(&r, &with_early, T0), T0 + 5 * MIN);
	/* Its own start after the day's closing: never. */
	r.starts_at = T0 + 90 * MIN;
	ck_assert_int_eq(day_campaign_opens_at(&r, &with_early, T0), 0);
	/* Its own end before the day's start: never. */
	r.starts_at = 0;
	r.ends_at = T0 - 20 * MIN;
	ck_assert_int_eq(day_campaign_opens_at(&r, &with_early, T0 - 60 * MIN), 0);
	/* The day closed; paused by staff. */
	r.ends_at = 0;
	ck_assert_int_eq(day_campaign_opens_at(&r, &with_early, T0 + 61 * MIN), 0);
	r.status = CAMPAIGN_PAUSED;
	ck_assert_int_eq(day_campaign_opens_at(&r, &with_early, T0 - 60 * MIN), 0);
}
END_TEST

static const char *const good_body =
    "{\"name\":\"Giving Day\",\"early_at\":\"2027-01-15T08:00:00Z\","
    "\"opens_at\":\"2027-01-15T12:00:00Z\",\"closes_at\":\"2027-01-16T00:00:00Z\","
    "\"currency\":\"USD\"}";

START_TEST(a_good_body)
{
	struct validate_error err = {{0}, NULL};
	struct giving_day d;
	int64_t at;

	ck_assert_int_eq(validate_day(good_body, strlen(good_body), &d, &err), TALLY_OK);
	ck_assert_int_eq(d.set, 1);
	ck_assert_str_eq(d.name, "Giving Day");
	ck_assert_str_eq(d.currency, "USD");
	ck_assert_int_eq(util_parse_rfc3339("2027-01-15T12:00:00Z", &at), 0);
	ck_assert_int_eq(d.opens_at, at);
	ck_assert_int_eq(d.early_at, at - 4 * 60 * MIN);
	validate_error_fini(&err);
}
END_TEST

/* Bad bodies: the field each names (NULL: not JSON, a 400). */
static const struct bad_day {
	const char *body, *field;
} bad_days[] = {
    {"not json", NULL},
    {"[1,2]", NULL},
    {"{\"opens_at\":\"2027-01-15T12:00:00Z\",\"closes_at\":\"2027-01-16T00:00:00Z\"}", "name"},
    {"{\"name\":\" \",\"opens_at\":\"2027-01-15T12:00:00Z\","
     "\"closes_at\":\"2027-01-16T00:00:00Z\"}",
     "name"},
    {"{\"name\":7,\"opens_at\":\"2027-01-15T12:00:00Z\",\"closes_at\":\"2027-01-16T00:00:00Z\"}",
     "name"},
    {"{\"name\":\"D\",\"closes_at\":\"2027-01-16T00:00:00Z\"}", "opens_at"},
    {"{\"name\":\"D\",\"opens_at\":null,\"closes_at\":\"2027-01-16T00:00:00Z\"}", "opens_at"},
    {"{\"name\":\"D\",\"opens_at\":\"2027-01-15T12:00:00Z\"}", "closes_at"},
    {"{\"name\":\"D\",\"opens_at\":\"tomorrow\",\"closes_at\":\"2027-01-16T00:00:00Z\"}",
     "opens_at"},
    {"{\"name\":\"D\",\"opens_at\":1800000000000,\"closes_at\":\"2027-01-16T00:00:00Z\"}",
     "opens_at"},
    {"{\"name\":\"D\",\"opens_at\":\"2027-01-16T00:00:00Z\",\"closes_at\":\"2027-01-16T00:00:"
     "00Z\"}",
     "closes_at"},
    {"{\"name\":\"D\",\"opens_at\":\"2027-01-16T00:00:00Z\",\"closes_at\":\"2027-01-15T00:00:"
     "00Z\"}",
     "closes_at"},
    {"{\"name\":\"D\",\"early_at\":\"2027-01-15T12:00:00Z\",\"opens_at\":\"2027-01-15T12:00:00Z\","
     "\"closes_at\":\"2027-01-16T00:00:00Z\"}",
     "early_at"},
    {"{\"name\":\"D\",\"early_at\":\"2027-01-15T13:00:00Z\",\"opens_at\":\"2027-01-15T12:00:00Z\","
     "\"closes_at\":\"2027-01-16T00:00:00Z\"}",
     "early_at"},
    {"{\"name\":\"D\",\"opens_at\":\"2027-01-15T12:00:00Z\",\"closes_at\":\"2027-03-16T00:00:"
     "00Z\"}",
     "closes_at"},
    {"{\"name\":\"D\",\"early_at\":\"2026-10-15T12:00:00Z\",\"opens_at\":\"2027-01-15T12:00:00Z\","
     "\"closes_at\":\"2027-01-16T00:00:00Z\"}",
     "early_at"},
    {"{\"name\":\"D\",\"opens_at\":\"1990-01-15T12:00:00Z\",\"closes_at\":\"1990-01-16T00:00:"
     "00Z\"}",
     "opens_at"},
    {"{\"name\":\"D\",\"opens_at\":\"2100-01-15T12:00:00Z\",\"closes_at\":\"2100-01-16T00:00:"
     "00Z\"}",
     "closes_at"},
    {"{\"name\":\"D\",\"opens_at\":\"2027-01-15T12:00:00Z\",\"closes_at\":\"2027-01-16T00:00:00Z\","
     "\"currency\":\"usd\"}",
     "currency"},
    {"{\"name\":\"D\",\"opens_at\":\"2027-01-15T12:00:00Z\",\"closes_at\":\"2027-01-16T00:00:00Z\","
     "\"currency\":\"DOLLARS\"}",
     "currency"},
    {"{\"name\":\"D\",\"opens_at\":\"2027-01-15T12:00:00Z\",\"closes_at\":\"2027-01-16T00:00:00Z\","
     "\"starts\":\"now\"}",
     "starts"},
};

START_TEST(bad_bodies_name_their_field)
{
	const struct bad_day *b = &bad_days[_i];
	struct validate_error err = {{0}, NULL};
	struct giving_day d;
	int rc = validate_day(b->body, strlen(b->body), &d, &err);

	ck_assert_int_eq(rc, b->field ? TALLY_EFIELDS : TALLY_EJSON);
	ck_assert_int_eq(d.set, 0);
	ck_assert(strlen(err.message) > 0);
	if (b->field)
		ck_assert_msg(json_object_get(err.fields, b->field) != NULL,
		              "%s: no message for %s", b->body, b->field);
	validate_error_fini(&err);
}
END_TEST

/* ---- the server ---- */

static struct itest_server srv;

static void server_setup(void)
{
	itest_start_with_food(&srv);
}

static void server_teardown(void)
{
	itest_cleanup(&srv);
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int call(const char *method, const char *path, int admin, const char *body,
                struct itest_resp *r)
{
	char h[256] = "";

	if (admin)
		snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", ITEST_TOKEN);
	if (body)
		strncat(h, "Content-Type: application/json\r\n", sizeof(h) - strlen(h) - 1);
	return itest_http(srv.port, method, path, h, body, body ? strlen(body) : 0, r);
}

/* A day body with times relative to now (ms; early 0: no early window). */
static void day_body(char *out, size_t cap, int64_t early, int64_t opens, int64_t closes,
                     const char *currency)
{
	char e[40], o[40], c[40], cur[40] = "";
	int64_t now = wall_ms();

	if (currency)
		snprintf(cur, sizeof(cur), ",\"currency\":\"%s\"", currency);
	util_rfc3339(now + early, e, sizeof(e));
	util_rfc3339(now + opens, o, sizeof(o));
	util_rfc3339(now + closes, c, sizeof(c));
	snprintf(out, cap,
	         "{\"name\":\"Giving Day\"%s%s%s,\"opens_at\":\"%s\",\"closes_at\":\"%s\"%s}",
	         early ? ",\"early_at\":\"" : "", early ? e : "", early ? "\"" : "", o, c, cur);
}

/* PUT the day; returns the status (the body checked to be the day when 200). */
static int put_day(int64_t early, int64_t opens, int64_t closes, const char *currency)
{
	struct itest_resp r;
	char body[512];
	int st;

	day_body(body, sizeof(body), early, opens, closes, currency);
	ck_assert_int_eq(call("PUT", "/api/v1/admin/day", 1, body, &r), 0);
	st = r.status;
	if (st == 200) {
		json_t *j = itest_json_body(&r);

		ck_assert_str_eq(json_string_value(json_object_get(j, "name")), "Giving Day");
		json_decref(j);
	}
	itest_resp_fini(&r);
	return st;
}

static const char *str_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_string(v), "%s is not a string", key);
	return json_string_value(v);
}

/* Donate to food: the status, and the error's message when refused. */
static int donate(char *msg, size_t cap)
{
	static const char body[] =
	    "{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":"
	    "\"Ada\",\"email\":\"ada@example.org\"},\"payment_token\":"
	    "\"tok_visa\"}";
	struct itest_resp r;
	int st;

	ck_assert_int_eq(itest_post_json(srv.port, "/api/v1/campaigns/food/donations", body, 0, &r),
	                 0);
	st = r.status;
	if (msg)
		msg[0] = '\0';
	if (st == 409 && msg) {
		json_t *j = itest_json_body(&r);
		json_t *e = json_object_get(j, "error");

		ck_assert_str_eq(str_of(e, "code"), "campaign_closed");
		snprintf(msg, cap, "%s", str_of(e, "message"));
		json_decref(j);
	}
	itest_resp_fini(&r);
	return st;
}

static long long count(const char *sql)
{
	long long n = itest_sql_int(srv.db, sql);

	ck_assert_msg(n >= 0, "%s failed", sql);
	return n;
}

START_TEST(put_get_delete)
{
	struct itest_resp r;
	json_t *j;
	int64_t before = wall_ms();

	/* No day yet. */
	j = itest_get_json(srv.port, "/api/v1/day", 0);
	ck_assert_str_eq(str_of(j, "phase"), "none");
	ck_assert(json_is_null(json_object_get(j, "opens_at")));
	ck_assert_int_eq(itest_json_int(j, "opens_in_ms"), 0);
	ck_assert_int_eq(itest_json_int(j, "campaigns"), 1);
	json_decref(j);

	ck_assert_int_eq(put_day(-60 * MIN, 60 * MIN, 120 * MIN, "USD"), 200);
	j = itest_get_json(srv.port, "/api/v1/day", 0);
	ck_assert_str_eq(str_of(j, "name"), "Giving Day");
	ck_assert_str_eq(str_of(j, "phase"), "early");
	ck_assert_str_eq(str_of(j, "currency"), "USD");
	str_of(j, "early_at");
	str_of(j, "closes_at");
	str_of(j, "now");
	/* The server's clock, and the wait that follows from it. */
	ck_assert_int_ge(itest_json_int(j, "now_ms"), before);
	ck_assert_int_le(itest_json_int(j, "now_ms"), wall_ms());
	ck_assert_int_gt(itest_json_int(j, "opens_in_ms"), 50 * MIN);
	ck_assert_int_le(itest_json_int(j, "opens_in_ms"), 60 * MIN);
	/* The totals the live channel carries. */
	ck_assert_int_eq(itest_json_int(j, "total_cents"), 0);
	ck_assert_int_eq(itest_json_int(j, "campaigns_live"), 1);
	json_decref(j);
	ck_assert_int_eq(count("SELECT count(*) FROM giving_day WHERE name = 'Giving Day'"
	                       " AND currency = 'USD' AND early_at < opens_at"),
	                 1);
	ck_assert_int_eq(count("SELECT count(*) FROM audit WHERE action = 'day.set' AND actor ="
	                       " 'admin@127.0.0.1' AND target = 'Giving Day'"
	                       " AND detail LIKE 'early %, opens %, closes %, currency USD'"),
	                 1);

	/* Replaced: no early window, no currency. */
	ck_assert_int_eq(put_day(0, 60 * MIN, 120 * MIN, NULL), 200);
	j = itest_get_json(srv.port, "/api/v1/day", 0);
	ck_assert_str_eq(str_of(j, "phase"), "before");
	ck_assert(json_is_null(json_object_get(j, "early_at")));
	/* Without the day's own, "currency" is the one its campaigns use. */
	ck_assert_str_eq(str_of(j, "currency"), "USD");
	json_decref(j);
	ck_assert_int_eq(count("SELECT count(*) FROM giving_day WHERE early_at IS NULL"
	                       " AND currency IS NULL"),
	                 1);

	/* Removed: gifts follow the campaigns' own windows again. */
	ck_assert_int_eq(call("DELETE", "/api/v1/admin/day", 1, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	j = itest_json_body(&r);
	ck_assert_str_eq(str_of(j, "phase"), "none");
	json_decref(j);
	itest_resp_fini(&r);
	ck_assert_int_eq(count("SELECT count(*) FROM giving_day"), 0);
	ck_assert_int_eq(count("SELECT count(*) FROM audit WHERE action = 'day.clear'"), 1);
	ck_assert_int_eq(donate(NULL, 0), 202);
	/* Again: a success that changes nothing, and no audit row. */
	ck_assert_int_eq(call("DELETE", "/api/v1/admin/day", 1, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	ck_assert_int_eq(count("SELECT count(*) FROM audit WHERE action = 'day.clear'"), 1);
}
END_TEST

/* Each bad request: its status, code and field (NULL: none to check). */
static const struct bad_put {
	const char *body;
	int admin, json;
	int status;
	const char *code, *field;
} bad_puts[] = {
    {"{\"name\":\"D\",\"opens_at\":\"2027-01-15T12:00:00Z\",\"closes_at\":\"2027-01-16T00:00:"
     "00Z\"}",
     0, 1, 401, "unauthorized", NULL},
    {"{\"name\":\"D\"}", 1, 0, 415, "unsupported_media_type", NULL},
    {"{\"name\":", 1, 1, 400, "invalid_json", NULL},
    {"{\"name\":\"D\",\"opens_at\":\"2027-01-16T00:00:00Z\",\"closes_at\":\"2027-01-15T00:00:"
     "00Z\"}",
     1, 1, 422, "validation_failed", "closes_at"},
    {"{\"name\":\"D\",\"early_at\":\"2027-01-16T00:00:00Z\",\"opens_at\":\"2027-01-15T12:00:00Z\","
     "\"closes_at\":\"2027-01-16T12:00:00Z\"}",
     1, 1, 422, "validation_failed", "early_at"},
    {"{\"name\":\"D\",\"closes_at\":\"2027-01-15T00:00:00Z\"}", 1, 1, 422, "validation_failed",
     "opens_at"},
    {"{\"name\":\"D\",\"opens_at\":\"2027-01-15T12:00:00Z\",\"closes_at\":\"2027-01-16T00:00:00Z\","
     "\"currency\":\"usd\"}",
     1, 1, 422, "validation_failed", "currency"},
    {"{\"name\":\"D\",\"opens_at\":\"2027-01-15T12:00:00Z\",\"closes_at\":\"2027-01-16T00:00:00Z\","
     "\"currency\":\"EUR\"}",
     1, 1, 409, "currency_mismatch", "currency"},
};

START_TEST(bad_puts_write_nothing)
{
	const struct bad_put *b = &bad_puts[_i];
	struct itest_resp r;
	char h[256] = "";
	json_t *j, *e;

	if (b->admin)
		snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", ITEST_TOKEN);
	strncat(h, b->json ? "Content-Type: application/json\r\n" : "Content-Type: text/plain\r\n",
	        sizeof(h) - strlen(h) - 1);
	ck_assert_int_eq(
	    itest_http(srv.port, "PUT", "/api/v1/admin/day", h, b->body, strlen(b->body), &r), 0);
	ck_assert_msg(r.status == b->status, "%s: %d, want %d: %s", b->body, r.status, b->status,
	              r.body);
	j = itest_json_body(&r);
	e = json_object_get(j, "error");
	ck_assert_str_eq(str_of(e, "code"), b->code);
	ck_assert(strlen(str_of(e, "message")) > 0);
	if (b->field)
		ck_assert_msg(json_object_get(json_object_get(e, "fields"), b->field) != NULL,
		              "no message for %s: %s", b->field, r.body);
	json_decref(j);
	itest_resp_fini(&r);
	ck_assert_int_eq(count("SELECT count(*) FROM giving_day"), 0);
	ck_assert_int_eq(count("SELECT count(*) FROM audit WHERE action LIKE 'day.%'"), 0);
	ck_assert_int_eq(count("SELECT count(*) FROM meta WHERE key = 'day_seq'"), 0);
	j = itest_get_json(srv.port, "/api/v1/day", 0);
	ck_assert_str_eq(str_of(j, "phase"), "none");
	json_decref(j);
}
END_TEST

/* Every bad body of the rules' table, over HTTP: 400 or 422 naming its
 * field, and nothing written. */
START_TEST(every_bad_body_over_http)
{
	const struct bad_day *b = &bad_days[_i];
	struct itest_resp r;
	json_t *j, *e;

	ck_assert_int_eq(call("PUT", "/api/v1/admin/day", 1, b->body, &r), 0);
	ck_assert_msg(r.status == (b->field ? 422 : 400), "%s: %d %s", b->body, r.status, r.body);
	j = itest_json_body(&r);
	e = json_object_get(j, "error");
	ck_assert_str_eq(str_of(e, "code"), b->field ? "validation_failed" : "invalid_json");
	if (b->field)
		ck_assert_msg(json_object_get(json_object_get(e, "fields"), b->field) != NULL,
		              "no message for %s: %s", b->field, r.body);
	json_decref(j);
	itest_resp_fini(&r);
	ck_assert_int_eq(count("SELECT count(*) FROM giving_day"), 0);
	ck_assert_int_eq(count("SELECT count(*) FROM audit WHERE action LIKE 'day.%'"), 0);
}
END_TEST

START_TEST(gifts_only_while_the_day_takes_them)
{
	char msg[300];
	json_t *j;

	/* Before: refused, saying so; the campaign shows closed until when. */
	ck_assert_int_eq(put_day(30 * MIN, 60 * MIN, 120 * MIN, NULL), 200);
	ck_assert_int_eq(donate(msg, sizeof(msg)), 409);
	ck_assert_msg(strstr(msg, "not opened yet") != NULL, "%s", msg);
	j = itest_get_json(srv.port, "/api/v1/campaigns/food", 0);
	ck_assert_str_eq(str_of(j, "status"), "closed");
	str_of(j, "opens_at");
	json_decref(j);
	j = itest_get_json(srv.port, "/api/v1/leaderboard", 0);
	ck_assert_str_eq(str_of(json_array_get(json_object_get(j, "entries"), 0), "status"),
	                 "closed");
	json_decref(j);

	/* Early giving: taken; the campaign is active, nothing to wait for. */
	ck_assert_int_eq(put_day(-30 * MIN, 60 * MIN, 120 * MIN, NULL), 200);
	ck_assert_int_eq(donate(NULL, 0), 202);
	j = itest_get_json(srv.port, "/api/v1/campaigns/food", 0);
	ck_assert_str_eq(str_of(j, "status"), "active");
	ck_assert(json_is_null(json_object_get(j, "opens_at")));
	json_decref(j);

	/* Open: taken. */
	ck_assert_int_eq(put_day(-90 * MIN, -60 * MIN, 120 * MIN, NULL), 200);
	ck_assert_int_eq(donate(NULL, 0), 202);

	/* Closed: refused, saying so; closed for good (no opens_at). */
	ck_assert_int_eq(put_day(-90 * MIN, -60 * MIN, -1000, NULL), 200);
	ck_assert_int_eq(donate(msg, sizeof(msg)), 409);
	ck_assert_msg(strstr(msg, "has closed") != NULL, "%s", msg);
	j = itest_get_json(srv.port, "/api/v1/campaigns/food", 0);
	ck_assert_str_eq(str_of(j, "status"), "closed");
	ck_assert(json_is_null(json_object_get(j, "opens_at")));
	json_decref(j);

	ck_assert_int_eq(itest_settle(srv.port), 0);
	ck_assert_int_eq(count("SELECT count(*) FROM donations"), 2);
	ck_assert_int_eq(count("SELECT count(*) FROM audit WHERE action = 'day.set'"), 4);
}
END_TEST

/* The data of the next `day` message whose phase is want (NULL after
 * deadline_ms). Caller decrefs. */
static json_t *wait_phase(int fd, const char *want, int deadline_ms)
{
	long long end = mono_ms() + deadline_ms;

	while (mono_ms() < end) {
		char *m = itest_ws_recv(fd, (int)(end - mono_ms()));
		json_t *j, *data;

		if (!m)
			return NULL;
		j = json_loads(m, 0, NULL);
		free(m);
		ck_assert_ptr_nonnull(j);
		data = json_object_get(j, "data");
		if (data && json_is_string(json_object_get(data, "phase")) &&
		    !strcmp(json_string_value(json_object_get(data, "phase")), want)) {
			json_incref(data);
			json_decref(j);
			return data;
		}
		json_decref(j);
	}
	return NULL;
}

START_TEST(phases_flip_by_time_alone)
{
	int fd = itest_ws_connect(srv.port, "/live", "tally.live.v1", NULL);
	json_t *d;
	long long t;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(itest_ws_send(fd, "{\"op\":\"subscribe\",\"channel\":\"day\"}"), 0);
	d = wait_phase(fd, "none", 5000 * itest_slowdown());
	ck_assert_ptr_nonnull(d);
	json_decref(d);
	/* Opens in 1.5 s, closes 2 s later: nobody asks anything meanwhile. */
	ck_assert_int_eq(put_day(0, 1500, 3500, NULL), 200);
	d = wait_phase(fd, "before", 5000 * itest_slowdown());
	ck_assert_ptr_nonnull(d);
	t = itest_json_int(d, "opens_in_ms");
	ck_assert_int_gt(t, 0);
	ck_assert_int_le(t, 1500);
	itest_json_int(d, "now_ms");
	json_decref(d);
	d = wait_phase(fd, "open", 10000 * itest_slowdown());
	ck_assert_msg(d != NULL, "no update when the day opened");
	ck_assert_int_eq(itest_json_int(d, "opens_in_ms"), 0);
	ck_assert_int_eq(itest_json_int(d, "campaigns_live"), 1);
	json_decref(d);
	d = itest_get_json(srv.port, "/api/v1/campaigns/food", 0);
	ck_assert_str_eq(str_of(d, "status"), "active");
	json_decref(d);
	d = wait_phase(fd, "closed", 10000 * itest_slowdown());
	ck_assert_msg(d != NULL, "no update when the day closed");
	ck_assert_int_eq(itest_json_int(d, "campaigns_live"), 0);
	json_decref(d);
	d = itest_get_json(srv.port, "/api/v1/campaigns/food", 0);
	ck_assert_str_eq(str_of(d, "status"), "closed");
	json_decref(d);
	close(fd);
	/* A new viewer's snapshot carries the server's clock of now. */
	fd = itest_ws_connect(srv.port, "/live", "tally.live.v1", NULL);
	ck_assert_int_ge(fd, 0);
	t = wall_ms();
	ck_assert_int_eq(itest_ws_send(fd, "{\"op\":\"subscribe\",\"channel\":\"day\"}"), 0);
	d = wait_phase(fd, "closed", 5000 * itest_slowdown());
	ck_assert_ptr_nonnull(d);
	ck_assert_int_ge(itest_json_int(d, "now_ms"), t);
	json_decref(d);
	close(fd);
}
END_TEST

/* The same flip seen by polling GET /api/v1/day against a deadline. */
START_TEST(get_follows_the_flip)
{
	long long end;
	int open = 0;

	ck_assert_int_eq(put_day(0, 1000, 60 * MIN, NULL), 200);
	end = mono_ms() + 10000 * itest_slowdown();
	while (!open && mono_ms() < end) {
		json_t *j = itest_get_json(srv.port, "/api/v1/day", 0);

		open = !strcmp(str_of(j, "phase"), "open");
		json_decref(j);
		if (!open)
			usleep(50000);
	}
	ck_assert(open);
	ck_assert_int_eq(donate(NULL, 0), 202);
}
END_TEST

START_TEST(one_currency_for_the_day)
{
	struct itest_resp r;
	json_t *j;

	/* food is in USD: a EUR day is refused, nothing written. */
	ck_assert_int_eq(put_day(0, -60 * MIN, 60 * MIN, "EUR"), 409);
	ck_assert_int_eq(count("SELECT count(*) FROM giving_day"), 0);
	ck_assert_int_eq(put_day(0, -60 * MIN, 60 * MIN, "USD"), 200);
	/* From now on a campaign in another currency is refused. */
	ck_assert_int_eq(
	    itest_post_json(srv.port, "/api/v1/admin/campaigns",
	                    "{\"slug\":\"euro\",\"name\":\"Euro\",\"currency\":\"EUR\"}", 1, &r),
	    0);
	ck_assert_int_eq(r.status, 422);
	j = itest_json_body(&r);
	ck_assert_str_eq(str_of(json_object_get(j, "error"), "code"), "validation_failed");
	ck_assert_ptr_nonnull(
	    json_object_get(json_object_get(json_object_get(j, "error"), "fields"), "currency"));
	json_decref(j);
	itest_resp_fini(&r);
	ck_assert_int_eq(count("SELECT count(*) FROM campaigns WHERE slug = 'euro'"), 0);
	ck_assert_int_eq(count("SELECT count(*) FROM audit WHERE target = 'euro'"), 0);
	ck_assert_int_eq(itest_create_campaign(srv.port, "dollars", "USD", 0), 201);
	/* Without the day's currency, any again. */
	ck_assert_int_eq(put_day(0, -60 * MIN, 60 * MIN, NULL), 200);
	ck_assert_int_eq(itest_create_campaign(srv.port, "euro", "EUR", 0), 201);
}
END_TEST

START_TEST(the_day_survives_a_restart)
{
	json_t *a, *b;
	char msg[300];
	int st;

	ck_assert_int_eq(put_day(30 * MIN, 60 * MIN, 120 * MIN, "USD"), 200);
	a = itest_get_json(srv.port, "/api/v1/day", 0);
	st = itest_signal(&srv, SIGTERM);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_int_eq(itest_start(&srv, NULL), 0);
	b = itest_get_json(srv.port, "/api/v1/day", 0);
	ck_assert_str_eq(str_of(b, "phase"), "before");
	ck_assert_str_eq(str_of(b, "name"), str_of(a, "name"));
	ck_assert_str_eq(str_of(b, "early_at"), str_of(a, "early_at"));
	ck_assert_str_eq(str_of(b, "opens_at"), str_of(a, "opens_at"));
	ck_assert_str_eq(str_of(b, "closes_at"), str_of(a, "closes_at"));
	ck_assert_str_eq(str_of(b, "currency"), "USD");
	json_decref(a);
	json_decref(b);
	ck_assert_int_eq(donate(msg, sizeof(msg)), 409);
	ck_assert_int_eq(itest_create_campaign(srv.port, "euro", "EUR", 0), 422);
	a = itest_get_json(srv.port, "/api/v1/campaigns/food", 0);
	ck_assert_str_eq(str_of(a, "status"), "closed");
	json_decref(a);
}
END_TEST

/* The staff console's feed carries the schedule in each state (ms on the
 * server's clock), and nothing while there is none. */
START_TEST(the_console_feed_carries_the_day)
{
	char req[600], head[2048];
	long long end;
	json_t *day = NULL;
	int fd = itest_conn_open(srv.port), n, saw_none = 0;

	ck_assert_int_ge(fd, 0);
	n = snprintf(req, sizeof(req),
	             "GET /live/console HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
	             "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	             "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: tally.console.v1\r\n"
	             "Authorization: Bearer %s\r\n\r\n",
	             srv.port, ITEST_TOKEN);
	ck_assert_int_eq(itest_send(fd, req, (size_t)n), 0);
	ck_assert_int_eq(itest_read_head(fd, head, sizeof(head), 10000), 0);
	ck_assert_ptr_nonnull(strstr(head, " 101 "));
	end = mono_ms() + 10000 * itest_slowdown();
	while (!day && mono_ms() < end) {
		char *t = itest_ws_recv(fd, (int)(end - mono_ms()));
		json_t *m = t ? json_loads(t, 0, NULL) : NULL;

		free(t);
		if (!m)
			break;
		if (!strcmp(str_of(m, "type"), "state")) {
			json_t *d = json_object_get(m, "day");

			if (!d && !saw_none) {
				saw_none = 1;
				ck_assert_int_eq(put_day(-60 * MIN, 60 * MIN, 120 * MIN, NULL),
				                 200);
			} else if (d) {
				day = json_incref(d);
			}
		}
		json_decref(m);
	}
	close(fd);
	ck_assert(saw_none);
	ck_assert_msg(day != NULL, "no state with the day");
	ck_assert_int_eq(itest_json_int(day, "closes_ms") - itest_json_int(day, "opens_ms"),
	                 60 * MIN);
	ck_assert_int_eq(itest_json_int(day, "opens_ms") - itest_json_int(day, "early_ms"),
	                 120 * MIN);
	json_decref(day);
}
END_TEST

Suite *day_suite(void)
{
	Suite *s = suite_create("day");
	TCase *rules = tcase_create("rules");
	TCase *api = tcase_create("api");

	tcase_add_test(rules, phases_at_their_bounds);
	tcase_add_test(rules, gifts_follow_the_phase);
	tcase_add_test(rules, a_campaign_opens_when_both_windows_do);
	tcase_add_test(rules, a_good_body);
	tcase_add_loop_test(rules, bad_bodies_name_their_field, 0,
	                    (int)(sizeof(bad_days) / sizeof(bad_days[0])));
	suite_add_tcase(s, rules);

	tcase_add_unchecked_fixture(api, tests_root_setup, tests_root_teardown);
	tcase_add_checked_fixture(api, server_setup, server_teardown);
	tcase_set_timeout(api, 90);
	tcase_add_test(api, put_get_delete);
	tcase_add_loop_test(api, bad_puts_write_nothing, 0,
	                    (int)(sizeof(bad_puts) / sizeof(bad_puts[0])));
	tcase_add_loop_test(api, every_bad_body_over_http, 0,
	                    (int)(sizeof(bad_days) / sizeof(bad_days[0])));
	tcase_add_test(api, gifts_only_while_the_day_takes_them);
	tcase_add_test(api, phases_flip_by_time_alone);
	tcase_add_test(api, get_follows_the_flip);
	tcase_add_test(api, one_currency_for_the_day);
	tcase_add_test(api, the_day_survives_a_restart);
	tcase_add_test(api, the_console_feed_carries_the_day);
	suite_add_tcase(s, api);
	return s;
}
