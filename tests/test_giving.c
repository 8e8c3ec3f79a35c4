/* tests/test_giving.c - the giving day's money against the real server:
 * match pools decide in the writer's order and never promise more than
 * they have, declines and refunds give matches back, challenges unlock
 * for the first campaigns to reach them, and every number agrees with
 * SUMs over the database, after a restart too. */
#include "tests/itest.h"
#include "tests/tests.h"
#include "core/bonus.h"
#include "core/match.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct itest_server srv;

static void start(void)
{
	itest_start_with_food(&srv);
	ck_assert_int_eq(itest_create_campaign(srv.port, "books", "USD", 100000), 201);
	ck_assert_int_eq(itest_create_campaign(srv.port, "euro", "EUR", 100000), 201);
}

static void stop(void)
{
	itest_cleanup(&srv);
}

/* POST json to path as admin; returns the status, body in *out (decref). */
static int admin_post(const char *path, const char *json, json_t **out)
{
	struct itest_resp r;
	int status;

	ck_assert_int_eq(itest_post_json(srv.port, path, json, 1, &r), 0);
	status = r.status;
	if (out)
		*out = itest_json_body(&r);
	itest_resp_fini(&r);
	return status;
}

/* A gift; returns the 202's matched_cents (-1 when not 202). */
static long long give(const char *slug, long long cents, const char *email, const char *token)
{
	struct itest_resp r;
	char path[128], json[400];
	long long matched = -1;

	snprintf(path, sizeof(path), "/api/v1/campaigns/%s/donations", slug);
	snprintf(json, sizeof(json),
	         "{\"amount_cents\":%lld,\"currency\":\"USD\",\"donor\":{\"name\":\"Ada\","
	         "\"email\":\"%s\"},\"payment_token\":\"%s\"}",
	         cents, email, token);
	ck_assert_int_eq(itest_post_json(srv.port, path, json, 0, &r), 0);
	if (r.status == 202) {
		json_t *j = itest_json_body(&r);

		matched = itest_json_int(j, "matched_cents");
		json_decref(j);
	}
	itest_resp_fini(&r);
	return matched;
}

static json_t *pool(const char *slug)
{
	char path[128];

	snprintf(path, sizeof(path), "/api/v1/admin/match-pools/%s", slug);
	return itest_get_json(srv.port, path, 1);
}

static long long pool_int(const char *slug, const char *key)
{
	json_t *p = pool(slug);
	long long v = itest_json_int(p, key);

	json_decref(p);
	return v;
}

static long long campaign_int(const char *slug, const char *key)
{
	char path[128];
	json_t *c;
	long long v;

	snprintf(path, sizeof(path), "/api/v1/campaigns/%s", slug);
	c = itest_get_json(srv.port, path, 0);
	v = itest_json_int(c, key);
	json_decref(c);
	return v;
}

/* Awards for progress made before a challenge existed commit just after
 * its answer: wait (bounded) until the campaign shows want. */
static long long bonus_soon(const char *slug, long long want)
{
	long long v = -1;

	for (int i = 0; i < 1000 * itest_slowdown() && v != want; i++) {
		v = campaign_int(slug, "bonus_cents");
		if (v != want)
			usleep(10000);
	}
	return v;
}

static long long sql(const char *q)
{
	return itest_sql_int(srv.db, q);
}

/* The pool's and every campaign's match agree with the donations. */
static void assert_sums(const char *slug)
{
	char q[512];

	snprintf(q, sizeof(q),
	         "SELECT coalesce(sum(matched_cents), 0) FROM donations d JOIN match_pools p"
	         " ON p.id = d.pool_id WHERE p.slug = '%s' AND (d.status = 'succeeded' OR"
	         " (d.status = 'refunded' AND NOT d.match_released))",
	         slug);
	ck_assert_int_eq(pool_int(slug, "used_cents"), sql(q));
	snprintf(q, sizeof(q),
	         "SELECT coalesce(sum(matched_cents), 0) FROM donations d JOIN match_pools p"
	         " ON p.id = d.pool_id WHERE p.slug = '%s' AND d.status = 'pending'",
	         slug);
	ck_assert_int_eq(pool_int(slug, "reserved_cents"), sql(q));
	ck_assert_int_eq(campaign_int("food", "matched_cents"),
	                 sql("SELECT coalesce(sum(matched_cents), 0) FROM donations WHERE"
	                     " campaign_id = 1 AND (status = 'succeeded' OR (status = 'refunded'"
	                     " AND NOT match_released))"));
	ck_assert_int_eq(campaign_int("food", "matched_cents"),
	                 sql("SELECT matched_cents FROM campaigns WHERE slug = 'food'"));
}

static const char big_pool[] =
    "{\"slug\":\"acme\",\"name\":\"ACME doubles it\",\"sponsor\":\"ACME\",\"amount_cents\":5000,"
    "\"ratio\":2,\"per_gift_cap_cents\":3000,\"campaigns\":[\"food\"]}";

START_TEST(pool_matches_in_order_and_never_promises_more)
{
	json_t *p;

	ck_assert_int_eq(admin_post("/api/v1/admin/match-pools", big_pool, &p), 201);
	ck_assert_str_eq(json_string_value(json_object_get(p, "currency")), "USD");
	ck_assert_int_eq(itest_json_int(p, "remaining_cents"), 5000);
	json_decref(p);
	/* 2:1, capped at 30 a gift; the third gets what is left. */
	ck_assert_int_eq(give("food", 1000, "a@example.org", "tok_visa"), 2000);
	ck_assert_int_eq(give("food", 2000, "b@example.org", "tok_visa"), 3000);
	ck_assert_int_eq(give("food", 1000, "c@example.org", "tok_visa"), 0);
	ck_assert_int_eq(give("books", 1000, "d@example.org", "tok_visa"), 0); /* not named */
	ck_assert_int_eq(itest_settle(srv.port), 0);
	ck_assert_int_eq(campaign_int("food", "matched_cents"), 5000);
	ck_assert_int_eq(campaign_int("food", "raised_cents"), 4000);
	ck_assert_int_eq(campaign_int("food", "total_cents"), 9000);
	ck_assert_int_eq(campaign_int("books", "matched_cents"), 0);
	p = pool("acme");
	ck_assert_int_eq(itest_json_int(p, "remaining_cents"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(p, "state")), "exhausted");
	json_decref(p);
	/* The widget's banner says so. */
	{
		json_t *c = itest_get_json(srv.port, "/api/v1/campaigns/food", 0);
		json_t *m = json_object_get(c, "match");

		ck_assert_str_eq(json_string_value(json_object_get(m, "state")), "exhausted");
		ck_assert_int_eq(itest_json_int(m, "remaining_cents"), 0);
		json_decref(c);
	}
	assert_sums("acme");
}
END_TEST

START_TEST(declines_and_refunds_give_the_match_back)
{
	json_t *j;
	struct itest_resp r;

	ck_assert_int_eq(admin_post("/api/v1/admin/match-pools", big_pool, NULL), 201);
	/* A decline reserves, then gives back. */
	ck_assert_int_eq(give("food", 1000, "a@example.org", "tok_chargeDeclined"), 2000);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	ck_assert_int_eq(pool_int("acme", "remaining_cents"), 5000);
	ck_assert_int_eq(pool_int("acme", "reserved_cents"), 0);
	ck_assert_int_eq(sql("SELECT matched_cents FROM donations WHERE status = 'failed'"), 2000);
	/* A refund while the pool is open gives it back. */
	ck_assert_int_eq(give("food", 1000, "b@example.org", "tok_visa"), 2000);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	ck_assert_int_eq(pool_int("acme", "used_cents"), 2000);
	ck_assert_int_eq(
	    admin_post("/api/v1/admin/donations/dn_2/refund", "{\"reason\":\"asked\"}", NULL), 202);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	ck_assert_int_eq(pool_int("acme", "used_cents"), 0);
	ck_assert_int_eq(pool_int("acme", "remaining_cents"), 5000);
	ck_assert_int_eq(campaign_int("food", "matched_cents"), 0);
	/* Depleted by staff, the pool is closed: a refund keeps the match. */
	ck_assert_int_eq(give("food", 500, "c@example.org", "tok_visa"), 1000);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	ck_assert_int_eq(admin_post("/api/v1/admin/match-pools/acme/deplete", "", &j), 200);
	ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "ended");
	json_decref(j);
	ck_assert_int_eq(give("food", 500, "d@example.org", "tok_visa"), 0);
	ck_assert_int_eq(
	    admin_post("/api/v1/admin/donations/dn_3/refund", "{\"reason\":\"asked\"}", NULL), 202);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	ck_assert_int_eq(campaign_int("food", "matched_cents"), 1000);
	ck_assert_int_eq(pool_int("acme", "used_cents"), 1000);
	/* The public status read shows what each gift holds now. */
	ck_assert_int_eq(itest_admin_get(srv.port, "/api/v1/admin/donations/dn_1", &r), 0);
	j = itest_json_body(&r);
	ck_assert_int_eq(itest_json_int(j, "matched_cents"), 0);
	json_decref(j);
	itest_resp_fini(&r);
	assert_sums("acme");
	/* Depleted is for good. */
	ck_assert_int_eq(admin_post("/api/v1/admin/match-pools/acme/resume", "", NULL), 409);
}
END_TEST

START_TEST(caps_windows_and_currencies)
{
	char json[512];
	time_t later = time(NULL) + 3600;
	struct tm tm;
	char ts[40];

	/* Per donor: 15 over the pool, whatever the case of the email. */
	ck_assert_int_eq(admin_post("/api/v1/admin/match-pools",
	                            "{\"slug\":\"donor-cap\",\"name\":\"Capped\",\"amount_cents\":"
	                            "100000,\"per_donor_cap_cents\":1500,\"campaigns\":\"all\","
	                            "\"currency\":\"USD\"}",
	                            NULL),
	                 201);
	ck_assert_int_eq(give("food", 1000, "Ada@Example.org", "tok_visa"), 1000);
	ck_assert_int_eq(give("books", 1000, "ada@example.org", "tok_visa"), 500);
	ck_assert_int_eq(give("books", 1000, "ada@example.org", "tok_visa"), 0);
	ck_assert_int_eq(give("books", 1000, "bo@example.org", "tok_visa"), 1000);
	/* A USD pool never matches a EUR campaign. */
	{
		struct itest_resp r;

		ck_assert_int_eq(itest_post_json(srv.port, "/api/v1/campaigns/euro/donations",
		                                 "{\"amount_cents\":1000,\"currency\":\"EUR\","
		                                 "\"donor\":{\"name\":\"E\",\"email\":\"e@e.org\"},"
		                                 "\"payment_token\":\"tok_visa\"}",
		                                 0, &r),
		                 0);
		ck_assert_int_eq(r.status, 202);
		ck_assert_ptr_nonnull(strstr(r.body, "\"matched_cents\":0"));
		itest_resp_fini(&r);
	}
	/* A pool whose window has not opened matches nothing: paused the
	 * first, the second decides. */
	ck_assert_int_eq(admin_post("/api/v1/admin/match-pools/donor-cap/pause", "", NULL), 200);
	gmtime_r(&later, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(json, sizeof(json),
	         "{\"slug\":\"later\",\"name\":\"Later\",\"amount_cents\":1000,\"campaigns\":"
	         "[\"food\"],\"starts_at\":\"%s\"}",
	         ts);
	ck_assert_int_eq(admin_post("/api/v1/admin/match-pools", json, NULL), 201);
	ck_assert_int_eq(give("food", 1000, "z@example.org", "tok_visa"), 0);
	ck_assert_int_eq(pool_int("later", "remaining_cents"), 1000);
	/* Resumed, the first matches again. */
	ck_assert_int_eq(admin_post("/api/v1/admin/match-pools/donor-cap/resume", "", NULL), 200);
	ck_assert_int_eq(give("food", 1000, "y@example.org", "tok_visa"), 1000);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	ck_assert_int_eq(pool_int("donor-cap", "used_cents"), 3500);
	assert_sums("donor-cap");
	/* Its actions are audited. */
	ck_assert_int_eq(sql("SELECT count(*) FROM audit WHERE action LIKE 'pool.%'"), 4);
}
END_TEST

/* Each bad body: 422 (or the given status) and no pool written. */
START_TEST(bad_pools_are_refused_and_nothing_is_written)
{
	static const struct {
		const char *body;
		int status;
		const char *field;
	} bad[] = {
	    {"{\"name\":\"x\",\"amount_cents\":1,\"campaigns\":\"all\",\"currency\":\"USD\"}", 422,
	     "slug"},
	    {"{\"slug\":\"Bad!\",\"name\":\"x\",\"amount_cents\":1,\"campaigns\":[\"food\"]}", 422,
	     "slug"},
	    {"{\"slug\":\"p\",\"name\":\"x\",\"amount_cents\":0,\"campaigns\":[\"food\"]}", 422,
	     "amount_cents"},
	    {"{\"slug\":\"p\",\"name\":\"x\",\"amount_cents\":1.5,\"campaigns\":[\"food\"]}", 422,
	     "amount_cents"},
	    {"{\"slug\":\"p\",\"name\":\"x\",\"amount_cents\":1,\"ratio\":11,"
	     "\"campaigns\":[\"food\"]}",
	     422, "ratio"},
	    {"{\"slug\":\"p\",\"name\":\"x\",\"amount_cents\":1,\"ratio\":0,"
	     "\"campaigns\":[\"food\"]}",
	     422, "ratio"},
	    {"{\"slug\":\"p\",\"name\":\"x\",\"amount_cents\":1,\"campaigns\":[]}", 422,
	     "campaigns"},
	    {"{\"slug\":\"p\",\"name\":\"x\",\"amount_cents\":1,\"campaigns\":[\"food\",\"food\"]}",
	     422, "campaigns"},
	    {"{\"slug\":\"p\",\"name\":\"x\",\"amount_cents\":1,\"campaigns\":\"all\"}", 422,
	     "currency"},
	    {"{\"slug\":\"p\",\"name\":\"x\",\"amount_cents\":1,\"campaigns\":[\"food\"],"
	     "\"per_gift_cap\":5}",
	     422, "per_gift_cap"},
	    {"{\"slug\":\"p\",\"name\":\"x\",\"amount_cents\":1,\"campaigns\":[\"food\"],"
	     "\"starts_at\":\"2026-12-02T10:00:00Z\",\"ends_at\":\"2026-12-02T09:00:00Z\"}",
	     422, "ends_at"},
	    {"{\"slug\":\"p\",\"name\":\"x\",\"amount_cents\":1,\"campaigns\":[\"food\",\"euro\"]}",
	     422, "campaigns"},
	    {"{\"slug\":\"p\",\"name\":\"x\",\"amount_cents\":1,\"campaigns\":[\"nope\"]}", 404,
	     NULL},
	    {"[1]", 400, NULL},
	    {"{\"slug\":", 400, NULL},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *j;
		int st = admin_post("/api/v1/admin/match-pools", bad[i].body, &j);

		ck_assert_msg(st == bad[i].status, "%s: %d", bad[i].body, st);
		if (bad[i].field)
			ck_assert_msg(
			    json_object_get(json_object_get(json_object_get(j, "error"), "fields"),
			                    bad[i].field) != NULL,
			    "%s: no field %s", bad[i].body, bad[i].field);
		json_decref(j);
	}
	ck_assert_int_eq(sql("SELECT count(*) FROM match_pools"), 0);
	ck_assert_int_eq(sql("SELECT count(*) FROM audit WHERE action LIKE 'pool.%'"), 0);
	/* Without a token; the slug taken; below what was promised. */
	{
		struct itest_resp r;

		ck_assert_int_eq(
		    itest_post_json(srv.port, "/api/v1/admin/match-pools", big_pool, 0, &r), 0);
		ck_assert_int_eq(r.status, 401);
		itest_resp_fini(&r);
	}
	ck_assert_int_eq(admin_post("/api/v1/admin/match-pools", big_pool, NULL), 201);
	ck_assert_int_eq(admin_post("/api/v1/admin/match-pools", big_pool, NULL), 409);
	ck_assert_int_eq(give("food", 1000, "a@example.org", "tok_visa"), 2000);
	{
		struct itest_resp r;

		ck_assert_int_eq(itest_http(srv.port, "PATCH", "/api/v1/admin/match-pools/acme",
		                            "Content-Type: application/json\r\nAuthorization: "
		                            "Bearer " ITEST_TOKEN "\r\n",
		                            "{\"amount_cents\":1999}", 21, &r),
		                 0);
		ck_assert_int_eq(r.status, 422);
		itest_resp_fini(&r);
		ck_assert_int_eq(itest_http(srv.port, "PATCH", "/api/v1/admin/match-pools/acme",
		                            "Content-Type: application/json\r\nAuthorization: "
		                            "Bearer " ITEST_TOKEN "\r\n",
		                            "{\"amount_cents\":9000}", 21, &r),
		                 0);
		ck_assert_int_eq(r.status, 200);
		itest_resp_fini(&r);
	}
	ck_assert_int_eq(pool_int("acme", "remaining_cents"), 7000);
	ck_assert_int_eq(admin_post("/api/v1/admin/match-pools/nope/pause", "", NULL), 404);
}
END_TEST

START_TEST(the_donation_event_carries_the_match)
{
	int fd, st;
	char *msg;

	ck_assert_int_eq(admin_post("/api/v1/admin/match-pools", big_pool, NULL), 201);
	fd = itest_ws_connect(srv.port, "/live", "tally.live.v1", &st);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(itest_ws_send(fd, "{\"op\":\"subscribe\",\"channel\":\"campaign:food\"}"),
	                 0);
	msg = itest_ws_wait_for(fd, "\"snapshot\"", 5000);
	ck_assert_ptr_nonnull(msg);
	ck_assert_ptr_nonnull(strstr(msg, "\"remaining_cents\":5000"));
	free(msg);
	ck_assert_int_eq(give("food", 1000, "a@example.org", "tok_visa"), 2000);
	msg = itest_ws_wait_for(fd, "\"type\":\"donation\"", 10000);
	ck_assert_ptr_nonnull(msg);
	ck_assert_ptr_nonnull(strstr(msg, "\"matched_cents\":2000"));
	free(msg);
	close(fd);
}
END_TEST

START_TEST(a_restart_and_a_kill_keep_every_sum)
{
	int st;

	ck_assert_int_eq(admin_post("/api/v1/admin/match-pools", big_pool, NULL), 201);
	ck_assert_int_eq(give("food", 1000, "a@example.org", "tok_visa"), 2000);
	ck_assert_int_eq(give("food", 1000, "b@example.org", "tok_chargeDeclined"), 2000);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	st = itest_signal(&srv, SIGKILL);
	ck_assert(WIFSIGNALED(st));
	ck_assert_int_eq(itest_start(&srv, NULL), 0);
	ck_assert_int_eq(pool_int("acme", "used_cents"), 2000);
	ck_assert_int_eq(pool_int("acme", "remaining_cents"), 3000);
	assert_sums("acme");
	/* The pool goes on where it was. */
	ck_assert_int_eq(give("food", 2000, "c@example.org", "tok_visa"), 3000);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	assert_sums("acme");
}
END_TEST

/* A challenge from a minute ago for an hour. */
static void challenge(const char *slug, const char *rules)
{
	char json[600], from[40], to[40];
	time_t t0 = time(NULL) - 60, t1 = time(NULL) + 3600;
	struct tm tm;

	strftime(from, sizeof(from), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t0, &tm));
	strftime(to, sizeof(to), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t1, &tm));
	snprintf(json, sizeof(json),
	         "{\"slug\":\"%s\",\"name\":\"Power hour\",\"sponsor\":\"ACME\","
	         "\"starts_at\":\"%s\",\"ends_at\":\"%s\",%s}",
	         slug, from, to, rules);
	ck_assert_int_eq(admin_post("/api/v1/admin/challenges", json, NULL), 201);
}

START_TEST(the_first_campaign_to_reach_a_challenge_wins_it)
{
	json_t *c;
	int fd, st;
	char *msg;

	challenge("power", "\"kind\":\"donors\",\"threshold\":2,\"bonus_cents\":10000,"
	                   "\"winners\":1,\"campaigns\":\"all\",\"currency\":\"USD\","
	                   "\"min_gift_cents\":500");
	/* Same donor twice, and a gift under the minimum: not yet. */
	give("books", 1000, "a@example.org", "tok_visa");
	give("books", 1000, "A@example.org", "tok_visa");
	give("books", 100, "b@example.org", "tok_visa");
	ck_assert_int_eq(itest_settle(srv.port), 0);
	ck_assert_int_eq(campaign_int("books", "bonus_cents"), 0);
	/* food gets there first (a live event says so); books after it wins
	 * nothing. */
	fd = itest_ws_connect(srv.port, "/live", "tally.live.v1", &st);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(itest_ws_send(fd, "{\"op\":\"subscribe\",\"channel\":\"campaign:food\"}"),
	                 0);
	msg = itest_ws_wait_for(fd, "\"snapshot\"", 5000);
	ck_assert_ptr_nonnull(msg);
	free(msg);
	give("food", 500, "c@example.org", "tok_visa");
	give("food", 500, "d@example.org", "tok_visa");
	ck_assert_int_eq(itest_settle(srv.port), 0);
	msg = itest_ws_wait_for(fd, "\"type\":\"challenge\"", 10000);
	ck_assert_ptr_nonnull(msg);
	ck_assert_ptr_nonnull(strstr(msg, "\"challenge\":\"power\""));
	ck_assert_ptr_nonnull(strstr(msg, "\"bonus_cents\":10000"));
	free(msg);
	close(fd);
	give("books", 500, "e@example.org", "tok_visa");
	ck_assert_int_eq(itest_settle(srv.port), 0);
	ck_assert_int_eq(campaign_int("food", "bonus_cents"), 10000);
	ck_assert_int_eq(campaign_int("food", "total_cents"), 11000);
	ck_assert_int_eq(campaign_int("books", "bonus_cents"), 0);
	c = itest_get_json(srv.port, "/api/v1/admin/challenges/power", 1);
	ck_assert_str_eq(json_string_value(json_object_get(c, "state")), "claimed");
	ck_assert_int_eq(itest_json_int(c, "awarded"), 1);
	json_decref(c);
	ck_assert_int_eq(sql("SELECT count(*) FROM audit WHERE action = 'challenge.unlock'"), 1);
	ck_assert_int_eq(sql("SELECT sum(bonus_cents) FROM challenge_awards"),
	                 sql("SELECT sum(bonus_cents) FROM campaigns"));
	/* The award names the gift that unlocked it. */
	ck_assert_int_eq(sql("SELECT d.amount_cents FROM challenge_awards a JOIN donations d"
	                     " ON d.id = a.donation_id"),
	                 500);
	/* A restart reads it all back and awards nothing twice. */
	ck_assert_int_eq(WIFEXITED(itest_signal(&srv, SIGTERM)), 1);
	ck_assert_int_eq(itest_start(&srv, NULL), 0);
	give("books", 500, "f@example.org", "tok_visa");
	ck_assert_int_eq(itest_settle(srv.port), 0);
	ck_assert_int_eq(sql("SELECT count(*) FROM challenge_awards"), 1);
	ck_assert_int_eq(campaign_int("food", "bonus_cents"), 10000);
}
END_TEST

START_TEST(a_challenge_counts_what_came_before_it)
{
	give("food", 3000, "a@example.org", "tok_visa");
	give("books", 1000, "b@example.org", "tok_visa");
	ck_assert_int_eq(itest_settle(srv.port), 0);
	challenge("amount", "\"kind\":\"amount\",\"threshold\":2500,\"bonus_cents\":700,"
	                    "\"campaigns\":[\"food\",\"books\"]");
	ck_assert_int_eq(bonus_soon("food", 700), 700);
	ck_assert_int_eq(campaign_int("books", "bonus_cents"), 0);
	/* The award names the gift that counted. */
	ck_assert_int_eq(sql("SELECT d.amount_cents FROM challenge_awards a JOIN donations d"
	                     " ON d.id = a.donation_id"),
	                 3000);
	give("books", 1500, "c@example.org", "tok_visa");
	ck_assert_int_eq(itest_settle(srv.port), 0);
	ck_assert_int_eq(campaign_int("books", "bonus_cents"), 700);
}
END_TEST

START_TEST(bad_challenges_are_refused)
{
	static const char *const bad[] = {
	    "{\"slug\":\"c\",\"name\":\"x\",\"kind\":\"likes\",\"threshold\":1,\"bonus_cents\":1,"
	    "\"campaign\":\"food\",\"starts_at\":\"2026-12-01T00:00:00Z\",\"ends_at\":"
	    "\"2026-12-03T00:00:00Z\"}",
	    "{\"slug\":\"c\",\"name\":\"x\",\"kind\":\"amount\",\"threshold\":0,\"bonus_cents\":1,"
	    "\"campaign\":\"food\",\"starts_at\":\"2026-12-01T00:00:00Z\",\"ends_at\":"
	    "\"2026-12-03T00:00:00Z\"}",
	    "{\"slug\":\"c\",\"name\":\"x\",\"kind\":\"amount\",\"threshold\":1,\"bonus_cents\":1,"
	    "\"campaign\":\"food\",\"starts_at\":\"2026-12-03T00:00:00Z\",\"ends_at\":"
	    "\"2026-12-01T00:00:00Z\"}",
	    "{\"slug\":\"c\",\"name\":\"x\",\"kind\":\"amount\",\"threshold\":1,\"bonus_cents\":1,"
	    "\"campaign\":\"food\"}",
	    "{\"slug\":\"c\",\"name\":\"x\",\"kind\":\"amount\",\"threshold\":1,\"bonus_cents\":1,"
	    "\"campaign\":\"food\",\"campaigns\":\"all\",\"starts_at\":\"2026-12-01T00:00:00Z\","
	    "\"ends_at\":\"2026-12-03T00:00:00Z\"}",
	    "{\"slug\":\"c\",\"name\":\"x\",\"kind\":\"amount\",\"threshold\":1,\"bonus_cents\":1,"
	    "\"campaign\":\"food\",\"winner\":1,\"starts_at\":\"2026-12-01T00:00:00Z\","
	    "\"ends_at\":\"2026-12-03T00:00:00Z\"}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(admin_post("/api/v1/admin/challenges", bad[i], NULL) == 422, "%s",
		              bad[i]);
	ck_assert_int_eq(sql("SELECT count(*) FROM challenges"), 0);
	ck_assert_int_eq(admin_post("/api/v1/admin/challenges",
	                            "{\"slug\":\"c\",\"name\":\"x\",\"kind\":\"gifts\","
	                            "\"threshold\":1,\"bonus_cents\":1,\"campaign\":\"nope\","
	                            "\"starts_at\":\"2026-12-01T00:00:00Z\",\"ends_at\":"
	                            "\"2026-12-03T00:00:00Z\"}",
	                            NULL),
	                 404);
	ck_assert_int_eq(sql("SELECT count(*) FROM challenges"), 0);
	/* DESIGN.md's shape: one campaign, no name (the slug stands in). */
	ck_assert_int_eq(admin_post("/api/v1/admin/challenges",
	                            "{\"slug\":\"power-hour\",\"campaign\":\"food\",\"kind\":"
	                            "\"donors\",\"threshold\":50,\"bonus_cents\":100000,"
	                            "\"starts_at\":\"2026-12-01T00:00:00Z\",\"ends_at\":"
	                            "\"2026-12-03T00:00:00Z\"}",
	                            NULL),
	                 201);
	ck_assert_int_eq(sql("SELECT count(*) FROM challenges WHERE name = 'power-hour' AND"
	                     " currency = 'USD' AND campaigns = '1'"),
	                 1);
}
END_TEST

/* ---- the books themselves, without a server ---- */

static struct pool_row pool_row(int64_t id, int64_t amount, int ratio)
{
	struct pool_row p;

	memset(&p, 0, sizeof(p));
	p.id = id;
	snprintf(p.slug, sizeof(p.slug), "p%lld", (long long)id);
	memcpy(p.currency, "USD", 4);
	p.amount_cents = amount;
	p.ratio = ratio;
	p.status = POOL_ACTIVE;
	return p;
}

static int64_t reserve(struct match_book *b, int64_t campaign, const char *email, int64_t amount,
                       int64_t at, int offline, int64_t *pool)
{
	struct match_gift g = {campaign, "USD", email, amount, at, offline};
	int64_t m;

	match_reserve(b, &g, pool, &m);
	return m;
}

START_TEST(the_match_book_decides_in_order)
{
	struct match_book *b;
	struct pool_row p = pool_row(1, 5000, 2), q = pool_row(2, 1000, 1), got;
	int64_t pool;

	ck_assert_int_eq(match_book_new(&b), 0);
	p.per_gift_cap_cents = 3000;
	p.per_donor_cap_cents = 4000;
	p.n_campaigns = 2;
	p.campaigns[0] = 3;
	p.campaigns[1] = 7;
	ck_assert_int_eq(match_put(b, &p), 0);
	ck_assert_int_eq(match_put(b, &q), 0); /* all USD campaigns */
	/* 2:1, capped at 30 a gift, 40 a donor (any case), oldest pool first. */
	ck_assert_int_eq(reserve(b, 3, "a@x.org", 1000, 10, 0, &pool), 2000);
	ck_assert_int_eq(pool, 1);
	ck_assert_int_eq(reserve(b, 7, "A@X.org", 5000, 10, 0, &pool), 2000);
	ck_assert_int_eq(reserve(b, 7, "a@x.org", 5000, 10, 0, &pool), 1000); /* pool 2 */
	ck_assert_int_eq(pool, 2);
	ck_assert_int_eq(reserve(b, 3, "b@x.org", 5000, 10, 0, &pool), 1000); /* what is left */
	ck_assert_int_eq(pool, 1);
	ck_assert_int_eq(reserve(b, 3, "c@x.org", 5000, 10, 0, &pool), 0);
	ck_assert_int_eq(pool, 0);
	ck_assert_int_eq(match_get(b, "p1", &got), 0);
	ck_assert_int_eq(got.reserved_cents, 5000);
	ck_assert_int_eq(match_remaining(&got), 0);
	ck_assert_int_eq(match_state_of(&got, 10), MATCH_EXHAUSTED);
	/* A failure gives back, a success keeps, a refund gives back too. */
	match_release(b, 1, "b@x.org", 1000);
	match_settle(b, 1, 2000);
	match_unuse(b, 1, "a@x.org", 2000);
	ck_assert_int_eq(match_get(b, "p1", &got), 0);
	ck_assert_int_eq(got.reserved_cents, 2000);
	ck_assert_int_eq(got.used_cents, 0);
	ck_assert_int_eq(match_remaining(&got), 3000);
	/* The donor got 20 back: 20 of 40 are left to a's next gifts. */
	ck_assert_int_eq(reserve(b, 3, "a@x.org", 9000, 10, 0, &pool), 2000);
	match_book_free(b);
}
END_TEST

START_TEST(the_match_book_keeps_windows_switches_and_sources)
{
	struct match_book *b;
	struct pool_row p = pool_row(1, 100000, 1), got;
	int64_t pool;

	ck_assert_int_eq(match_book_new(&b), 0);
	p.starts_at = 100;
	p.ends_at = 200;
	ck_assert_int_eq(match_put(b, &p), 0);
	ck_assert_int_eq(reserve(b, 1, "a@x.org", 1000, 99, 0, &pool), 0);
	ck_assert_int_eq(reserve(b, 1, "a@x.org", 1000, 200, 0, &pool), 0);
	ck_assert_int_eq(reserve(b, 1, "a@x.org", 1000, 100, 1, &pool), 0); /* offline */
	ck_assert_int_eq(reserve(b, 1, "a@x.org", 1000, 100, 0, &pool), 1000);
	{
		struct match_gift eur = {1, "EUR", "a@x.org", 1000, 150, 0};
		int64_t m;

		match_reserve(b, &eur, &pool, &m);
		ck_assert_int_eq(m, 0);
	}
	p.match_offline = 1;
	p.status = POOL_PAUSED;
	ck_assert_int_eq(match_put(b, &p), 0); /* settings change, money stays */
	ck_assert_int_eq(reserve(b, 1, "a@x.org", 1000, 150, 1, &pool), 0);
	ck_assert_int_eq(match_get(b, "p1", &got), 0);
	ck_assert_int_eq(got.reserved_cents, 1000);
	ck_assert_int_eq(match_state_of(&got, 150), MATCH_PAUSED);
	p.status = POOL_ACTIVE;
	ck_assert_int_eq(match_put(b, &p), 0);
	ck_assert_int_eq(reserve(b, 1, "", 1000, 150, 1, &pool), 1000);
	ck_assert_int_eq(match_get(b, "p1", &got), 0);
	ck_assert_int_eq(match_state_of(&got, 150), MATCH_OPEN);
	ck_assert_int_eq(match_state_of(&got, 200), MATCH_ENDED);
	ck_assert_int_eq(match_state_of(&got, 50), MATCH_UPCOMING);
	match_book_free(b);
}
END_TEST

START_TEST(the_challenge_book_counts_by_its_rules)
{
	struct bonus_book *b;
	struct challenge_row c;
	struct bonus_award a[4];
	struct bonus_progress pr[4];

	ck_assert_int_eq(bonus_book_new(&b), 0);
	memset(&c, 0, sizeof(c));
	c.id = 1;
	snprintf(c.slug, sizeof(c.slug), "hour");
	memcpy(c.currency, "USD", 4);
	c.kind = CHALLENGE_DONORS;
	c.threshold = 2;
	c.bonus_cents = 500;
	c.winners = 1;
	c.min_gift_cents = 100;
	c.online_only = 1;
	c.starts_at = 100;
	c.ends_at = 200;
	/* No database: nothing counted before it. */
	ck_assert_int_eq(bonus_put(b, &c, NULL), 0);
	{
		struct bonus_gift g[] = {
		    {1, 5, "USD", "a@x.org", 1000, 150, 0}, /* counts */
		    {2, 5, "USD", "A@x.org", 1000, 150, 0}, /* same donor */
		    {3, 5, "USD", "b@x.org", 50, 150, 0},   /* under the minimum */
		    {4, 5, "USD", "c@x.org", 1000, 99, 0},  /* before the window */
		    {5, 5, "USD", "d@x.org", 1000, 150, 1}, /* offline */
		    {6, 5, "EUR", "e@x.org", 1000, 150, 0}, /* another currency */
		    {7, 6, "USD", "f@x.org", 1000, 150, 0}, /* another campaign */
		    {8, 6, "USD", "g@x.org", 1000, 150, 0}, /* 6 reaches it first */
		    {9, 5, "USD", "h@x.org", 1000, 150, 0}, /* 5 too late */
		};
		int n[9];

		for (size_t i = 0; i < 9; i++)
			n[i] = bonus_count(b, &g[i], 160, a, 4);
		for (size_t i = 0; i < 9; i++)
			ck_assert_msg(n[i] == (i == 7), "gift %zu made %d awards", i + 1, n[i]);
	}
	ck_assert_int_eq(bonus_for_campaign(b, 5, "USD", &c, pr, 1), 1);
	ck_assert_int_eq(pr[0].value, 2);
	ck_assert_int_eq(pr[0].awarded, 0);
	ck_assert_int_eq(bonus_leaders(b, 1, pr, 4), 2);
	ck_assert_int_eq(pr[0].campaign_id, 6);
	ck_assert_int_eq(pr[0].awarded, 1);
	bonus_book_free(b);
}
END_TEST

START_TEST(offline_gifts_draw_only_from_pools_that_take_them)
{
	json_t *j;

	ck_assert_int_eq(admin_post("/api/v1/admin/match-pools", big_pool, NULL), 201);
	/* acme does not take offline gifts: a cheque is not matched. */
	ck_assert_int_eq(admin_post("/api/v1/admin/campaigns/food/offline-donations",
	                            "{\"amount_cents\":1000,\"method\":\"cheque\",\"donor\":"
	                            "{\"name\":\"Cy\"}}",
	                            &j),
	                 201);
	ck_assert_int_eq(itest_json_int(j, "matched_cents"), 0);
	json_decref(j);
	ck_assert_int_eq(admin_post("/api/v1/admin/match-pools",
	                            "{\"slug\":\"cheques\",\"name\":\"Cheques too\","
	                            "\"amount_cents\":700,\"campaigns\":[\"food\"],"
	                            "\"match_offline\":true}",
	                            NULL),
	                 201);
	/* cheques does: matched at once, what is left of it. */
	ck_assert_int_eq(admin_post("/api/v1/admin/campaigns/food/offline-donations",
	                            "{\"amount_cents\":1000,\"method\":\"cash\",\"donor\":"
	                            "{\"name\":\"Di\",\"email\":\"di@example.org\"}}",
	                            &j),
	                 201);
	ck_assert_int_eq(itest_json_int(j, "matched_cents"), 700);
	json_decref(j);
	ck_assert_int_eq(pool_int("cheques", "used_cents"), 700);
	ck_assert_int_eq(pool_int("cheques", "reserved_cents"), 0);
	ck_assert_int_eq(campaign_int("food", "matched_cents"), 700);
	ck_assert_int_eq(campaign_int("food", "raised_cents"), 2000);
	/* An online gift still draws from acme, the older pool. */
	ck_assert_int_eq(give("food", 1000, "a@example.org", "tok_visa"), 2000);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	assert_sums("cheques");
	assert_sums("acme");
}
END_TEST

Suite *giving_suite(void)
{
	Suite *s = suite_create("giving");
	TCase *books = tcase_create("books");
	TCase *tc = tcase_create("pools");
	TCase *ch = tcase_create("challenges");

	tcase_add_test(books, the_match_book_decides_in_order);
	tcase_add_test(books, the_match_book_keeps_windows_switches_and_sources);
	tcase_add_test(books, the_challenge_book_counts_by_its_rules);
	suite_add_tcase(s, books);
	tcase_add_checked_fixture(tc, start, stop);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, pool_matches_in_order_and_never_promises_more);
	tcase_add_test(tc, declines_and_refunds_give_the_match_back);
	tcase_add_test(tc, caps_windows_and_currencies);
	tcase_add_test(tc, bad_pools_are_refused_and_nothing_is_written);
	tcase_add_test(tc, the_donation_event_carries_the_match);
	tcase_add_test(tc, a_restart_and_a_kill_keep_every_sum);
	tcase_add_test(tc, offline_gifts_draw_only_from_pools_that_take_them);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(ch, start, stop);
	tcase_set_timeout(ch, 60);
	tcase_add_test(ch, the_first_campaign_to_reach_a_challenge_wins_it);
	tcase_add_test(ch, a_challenge_counts_what_came_before_it);
	tcase_add_test(ch, bad_challenges_are_refused);
	suite_add_tcase(s, ch);
	return s;
}
