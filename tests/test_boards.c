/* tests/test_boards.c - campaign categories and the leaderboards by
 * category and currency, through the real binary: a category set, changed,
 * cleared and refused; boards filtered, ranked and limited within their
 * category; currencies never mixed (400 currency_required, the day's sums
 * per currency); GET /api/v1/categories; the live leaderboard channels of
 * a category or currency, their bad names and their bound; a restart. */
#include "tests/itest.h"
#include "tests/tests.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct itest_server srv;

static const char admin_json[] =
    "Content-Type: application/json\r\nAuthorization: Bearer " ITEST_TOKEN "\r\n";

static void start(void)
{
	memset(&srv, 0, sizeof(srv));
	ck_assert_int_eq(itest_start(&srv, NULL), 0);
}

static void stop(void)
{
	itest_cleanup(&srv);
}

/* POST a campaign; category_json is the JSON value of "category" (NULL:
 * none given). Returns the status; the body in *out when out. */
static int create(const char *slug, const char *currency, const char *category_json, json_t **out)
{
	char body[1024];
	struct itest_resp r;
	int status;

	snprintf(body, sizeof(body),
	         "{\"slug\":\"%s\",\"name\":\"Campaign %s\",\"currency\":\"%s\"%s%s}", slug, slug,
	         currency, category_json ? ",\"category\":" : "",
	         category_json ? category_json : "");
	ck_assert_int_eq(itest_post_json(srv.port, "/api/v1/admin/campaigns", body, 1, &r), 0);
	status = r.status;
	if (out)
		*out = itest_json_body(&r);
	itest_resp_fini(&r);
	return status;
}

static int patch(const char *slug, const char *body, json_t **out)
{
	char path[128];
	struct itest_resp r;
	int status;

	snprintf(path, sizeof(path), "/api/v1/admin/campaigns/%s", slug);
	ck_assert_int_eq(itest_http(srv.port, "PATCH", path, admin_json, body, strlen(body), &r),
	                 0);
	status = r.status;
	if (out)
		*out = itest_json_body(&r);
	itest_resp_fini(&r);
	return status;
}

/* GET path: its status, and its body as JSON in *out. */
static int get(const char *path, json_t **out)
{
	struct itest_resp r;
	int status;

	ck_assert_int_eq(itest_http(srv.port, "GET", path, NULL, NULL, 0, &r), 0);
	status = r.status;
	*out = itest_json_body(&r);
	itest_resp_fini(&r);
	return status;
}

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static const char *error_code(json_t *j)
{
	return str(json_object_get(j, "error"), "code");
}

static json_t *error_fields(json_t *j)
{
	return json_object_get(json_object_get(j, "error"), "fields");
}

static void give(const char *slug, long long cents)
{
	ck_assert_int_eq(itest_donate(srv.port, slug, cents, "Ada", "ada@example.org"), 202);
}

/* A gift in another currency than USD (itest_donate's). */
static void give_in(const char *slug, long long cents, const char *currency)
{
	char path[128], body[256];
	struct itest_resp r;

	snprintf(path, sizeof(path), "/api/v1/campaigns/%s/donations", slug);
	snprintf(body, sizeof(body),
	         "{\"amount_cents\":%lld,\"currency\":\"%s\",\"donor\":{\"name\":\"Eve\","
	         "\"email\":\"eve@example.org\"}}",
	         cents, currency);
	ck_assert_int_eq(itest_post_json(srv.port, path, body, 0, &r), 0);
	ck_assert_int_eq(r.status, 202);
	itest_resp_fini(&r);
}

static const char *category_of(const char *slug)
{
	static char out[600];
	char path[128];
	json_t *j;

	snprintf(path, sizeof(path), "/api/v1/campaigns/%s", slug);
	j = itest_get_json(srv.port, path, 0);
	snprintf(out, sizeof(out), "%s",
	         json_is_null(json_object_get(j, "category")) ? "(null)" : str(j, "category"));
	ck_assert_msg(json_object_get(j, "category") != NULL, "no category key");
	json_decref(j);
	return out;
}

START_TEST(category_set_changed_cleared_and_kept)
{
	json_t *j;

	ck_assert_int_eq(create("zoo", "USD", "\"  Animals \"", &j), 201);
	ck_assert_str_eq(str(j, "category"), "Animals"); /* trimmed */
	json_decref(j);
	ck_assert_int_eq(create("plain", "USD", NULL, NULL), 201);
	ck_assert_str_eq(category_of("plain"), "(null)");
	ck_assert_int_eq(patch("plain", "{\"category\":\"Arts\"}", &j), 200);
	ck_assert_str_eq(str(j, "category"), "Arts");
	json_decref(j);
	ck_assert_str_eq(category_of("plain"), "Arts");
	/* Only the fields given change: a rename keeps the category. */
	ck_assert_int_eq(patch("plain", "{\"name\":\"Plain\"}", NULL), 200);
	ck_assert_str_eq(category_of("plain"), "Arts");
	ck_assert_int_eq(patch("plain", "{\"category\":null}", NULL), 200);
	ck_assert_str_eq(category_of("plain"), "(null)");
	ck_assert_int_eq(patch("zoo", "{\"category\":\"   \"}", NULL), 200);
	ck_assert_str_eq(category_of("zoo"), "(null)");
	ck_assert_int_eq(patch("zoo", "{\"category\":\"Zoo \xc3\xa9t\xc3\xa9\"}", NULL), 200);
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM campaigns WHERE category = "
	                                       "'Zoo \xc3\xa9t\xc3\xa9'"),
	                 1);
	ck_assert_int_eq(
	    itest_sql_int(srv.db, "SELECT count(*) FROM campaigns WHERE category = ''"), 1);

	/* A restart reads the categories back, boards and all. */
	ck_assert_int_eq(itest_signal(&srv, SIGTERM), 0);
	ck_assert_int_eq(itest_start(&srv, NULL), 0);
	ck_assert_str_eq(category_of("zoo"), "Zoo \xc3\xa9t\xc3\xa9");
	ck_assert_str_eq(category_of("plain"), "(null)");
	ck_assert_int_eq(get("/api/v1/leaderboard?category=Zoo%20%C3%A9t%C3%A9", &j), 200);
	ck_assert_int_eq(json_array_size(json_object_get(j, "entries")), 1);
	ck_assert_str_eq(str(json_array_get(json_object_get(j, "entries"), 0), "slug"), "zoo");
	json_decref(j);
}
END_TEST

START_TEST(bad_categories_are_refused_and_nothing_written)
{
	char long_ok[64 * 2 + 3], too_long[65 * 2 + 3];
	static const char *const bad[] = {
	    "5",
	    "true",
	    "{}",
	    "[\"Arts\"]",
	    "\"a\\u0007b\"",
	    "\"tab\\there\"",
	    "\"a\\u202eb\"",
	    "\"line\\nbreak\"",
	    "\"c1\\u0085\"",
	};
	json_t *j;

	ck_assert_int_eq(create("keep", "USD", "\"Arts\"", NULL), 201);
	/* 64 code points of two bytes each are taken, 65 are not. */
	long_ok[0] = too_long[0] = '"';
	for (int i = 0; i < 65; i++) {
		if (i < 64)
			memcpy(long_ok + 1 + 2 * i, "\xc3\xa9", 2);
		memcpy(too_long + 1 + 2 * i, "\xc3\xa9", 2);
	}
	memcpy(long_ok + 1 + 128, "\"", 2);
	memcpy(too_long + 1 + 130, "\"", 2);
	for (size_t i = 0; i <= sizeof(bad) / sizeof(bad[0]); i++) {
		const char *v = i < sizeof(bad) / sizeof(bad[0]) ? bad[i] : too_long;
		char body[512];

		ck_assert_int_eq(create("new", "USD", v, &j), 422);
		ck_assert_str_eq(error_code(j), "validation_failed");
		ck_assert_msg(json_is_string(json_object_get(error_fields(j), "category")),
		              "no category field for %s", v);
		json_decref(j);
		snprintf(body, sizeof(body), "{\"category\":%s}", v);
		ck_assert_int_eq(patch("keep", body, &j), 422);
		ck_assert_str_eq(error_code(j), "validation_failed");
		ck_assert_ptr_nonnull(json_object_get(error_fields(j), "category"));
		json_decref(j);
	}
	/* Nothing was written: no campaign "new", "keep" still in Arts. */
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM campaigns"), 1);
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM campaigns WHERE category = "
	                                       "'Arts'"),
	                 1);
	ck_assert_str_eq(category_of("keep"), "Arts");
	ck_assert_int_eq(create("new", "USD", long_ok, NULL), 201);
}
END_TEST

/* The slugs of a board's entries, space separated, and a check that the
 * ranks run 1..n. */
static const char *slugs_of(json_t *board)
{
	static char out[512];
	json_t *e, *entries = json_object_get(board, "entries");
	size_t i;

	out[0] = '\0';
	ck_assert_msg(json_is_array(entries), "no entries");
	json_array_foreach(entries, i, e)
	{
		ck_assert_int_eq(itest_json_int(e, "rank"), (long long)i + 1);
		strncat(out, i ? " " : "", sizeof(out) - strlen(out) - 1);
		strncat(out, str(e, "slug"), sizeof(out) - strlen(out) - 1);
	}
	return out;
}

/* Arts: a1 < a2 < a3 by total, a3 with the fewest donors; Animals: b1,
 * the biggest of all; n1 has no category. */
static void seed_usd(void)
{
	static const char *const cats[][2] = {
	    {"a1", "\"Arts\""},    {"a2", "\"Arts\""}, {"a3", "\"Arts\""},
	    {"b1", "\"Animals\""}, {"n1", NULL},
	};

	for (size_t i = 0; i < sizeof(cats) / sizeof(cats[0]); i++)
		ck_assert_int_eq(create(cats[i][0], "USD", cats[i][1], NULL), 201);
	give("a1", 1000);
	give("a2", 1000);
	ck_assert_int_eq(itest_donate(srv.port, "a2", 1500, "Bo", "bo@example.org"), 202);
	give("a3", 9000);
	give("b1", 50000);
	give("n1", 20000);
	ck_assert_int_eq(itest_settle(srv.port), 0);
}

START_TEST(boards_by_category_rank_and_limit_within_it)
{
	json_t *j;

	seed_usd();
	j = itest_get_json(srv.port, "/api/v1/leaderboard?category=Arts", 0);
	ck_assert_str_eq(slugs_of(j), "a3 a2 a1");
	ck_assert_str_eq(str(j, "category"), "Arts");
	ck_assert_str_eq(str(j, "currency"), "USD");
	ck_assert_str_eq(str(json_array_get(json_object_get(j, "entries"), 0), "category"), "Arts");
	json_decref(j);
	/* The limit applies after the filter: b1 and n1 rank above a2. */
	j = itest_get_json(srv.port, "/api/v1/leaderboard?category=Arts&limit=2", 0);
	ck_assert_str_eq(slugs_of(j), "a3 a2");
	json_decref(j);
	j = itest_get_json(srv.port, "/api/v1/leaderboard?by=donors&category=Arts&limit=1", 0);
	ck_assert_str_eq(slugs_of(j), "a2");
	json_decref(j);
	j = itest_get_json(srv.port, "/api/v1/leaderboard?category=Animals", 0);
	ck_assert_str_eq(slugs_of(j), "b1");
	json_decref(j);
	j = itest_get_json(srv.port, "/api/v1/leaderboard?limit=3", 0);
	ck_assert_str_eq(slugs_of(j), "b1 n1 a3");
	ck_assert_ptr_nonnull(json_object_get(j, "category"));
	ck_assert(json_is_null(json_object_get(j, "category")));
	json_decref(j);
	/* Case counts: "arts" is another category, which nobody has. */
	ck_assert_int_eq(get("/api/v1/leaderboard?category=arts", &j), 404);
	ck_assert_str_eq(error_code(j), "category_not_found");
	json_decref(j);
	ck_assert_int_eq(get("/api/v1/leaderboard?category=a%07b", &j), 400);
	ck_assert_str_eq(error_code(j), "invalid_query");
	ck_assert_ptr_nonnull(json_object_get(error_fields(j), "category"));
	json_decref(j);
	ck_assert_int_eq(get("/api/v1/leaderboard?currency=usd", &j), 400);
	ck_assert_str_eq(error_code(j), "invalid_query");
	json_decref(j);
	/* A category moves: the boards follow at once. */
	ck_assert_int_eq(patch("a3", "{\"category\":\"Animals\"}", NULL), 200);
	j = itest_get_json(srv.port, "/api/v1/leaderboard?category=Arts", 0);
	ck_assert_str_eq(slugs_of(j), "a2 a1");
	json_decref(j);
	j = itest_get_json(srv.port, "/api/v1/leaderboard?category=Animals", 0);
	ck_assert_str_eq(slugs_of(j), "b1 a3");
	json_decref(j);
}
END_TEST

START_TEST(etag_names_the_category)
{
	struct itest_resp r;
	char etag[128], hdr[256];

	seed_usd();
	ck_assert_int_eq(
	    itest_http(srv.port, "GET", "/api/v1/leaderboard?category=Arts", NULL, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(itest_header(&r, "etag", etag, sizeof(etag)));
	itest_resp_fini(&r);
	snprintf(hdr, sizeof(hdr), "If-None-Match: %s\r\n", etag);
	ck_assert_int_eq(
	    itest_http(srv.port, "GET", "/api/v1/leaderboard?category=Arts", hdr, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 304);
	itest_resp_fini(&r);
	/* Another category's board is another body. */
	ck_assert_int_eq(
	    itest_http(srv.port, "GET", "/api/v1/leaderboard?category=Animals", hdr, NULL, 0, &r),
	    0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	/* A category change is a new version. */
	ck_assert_int_eq(patch("a1", "{\"category\":\"Animals\"}", NULL), 200);
	ck_assert_int_eq(
	    itest_http(srv.port, "GET", "/api/v1/leaderboard?category=Arts", hdr, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
}
END_TEST

START_TEST(mixed_currencies_need_one_chosen)
{
	json_t *j, *f;

	seed_usd();
	ck_assert_int_eq(create("e1", "EUR", "\"Arts\"", NULL), 201);
	ck_assert_int_eq(create("y1", "JPY", "\"Music\"", NULL), 201);
	give_in("e1", 777777, "EUR");
	ck_assert_int_eq(itest_settle(srv.port), 0);
	/* e1's 7,777.77 EUR is never ranked against dollars. */
	ck_assert_int_eq(get("/api/v1/leaderboard", &j), 400);
	ck_assert_str_eq(error_code(j), "currency_required");
	f = error_fields(j);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(f, "currencies"), 0)),
	                 "EUR");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(f, "currencies"), 1)),
	                 "JPY");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(f, "currencies"), 2)),
	                 "USD");
	ck_assert_ptr_nonnull(strstr(str(f, "currency"), "EUR, JPY, USD"));
	json_decref(j);
	ck_assert_int_eq(get("/api/v1/leaderboard?by=donors&category=Arts", &j), 400);
	ck_assert_str_eq(error_code(j), "currency_required");
	ck_assert_int_eq(json_array_size(json_object_get(error_fields(j), "currencies")), 2);
	json_decref(j);
	j = itest_get_json(srv.port, "/api/v1/leaderboard?category=Arts&currency=EUR", 0);
	ck_assert_str_eq(slugs_of(j), "e1");
	ck_assert_str_eq(str(j, "currency"), "EUR");
	json_decref(j);
	j = itest_get_json(srv.port, "/api/v1/leaderboard?currency=USD&limit=2", 0);
	ck_assert_str_eq(slugs_of(j), "b1 n1");
	json_decref(j);
	/* One currency in the category: no need to name it. */
	j = itest_get_json(srv.port, "/api/v1/leaderboard?category=Music", 0);
	ck_assert_str_eq(slugs_of(j), "y1");
	ck_assert_str_eq(str(j, "currency"), "JPY");
	json_decref(j);
	/* A currency nobody uses in the category: an empty board. */
	j = itest_get_json(srv.port, "/api/v1/leaderboard?category=Music&currency=USD", 0);
	ck_assert_str_eq(slugs_of(j), "");
	json_decref(j);
}
END_TEST

START_TEST(categories_sum_per_currency)
{
	json_t *j, *cats, *arts, *cur;

	seed_usd();
	ck_assert_int_eq(create("e1", "EUR", "\"Arts\"", NULL), 201);
	give_in("e1", 500, "EUR");
	ck_assert_int_eq(itest_settle(srv.port), 0);
	j = itest_get_json(srv.port, "/api/v1/categories", 0);
	cats = json_object_get(j, "categories");
	ck_assert_int_eq(json_array_size(cats), 2); /* n1 has none: not listed */
	ck_assert_str_eq(str(json_array_get(cats, 0), "category"), "Animals");
	arts = json_array_get(cats, 1);
	ck_assert_str_eq(str(arts, "category"), "Arts");
	ck_assert_int_eq(itest_json_int(arts, "campaigns"), 4);
	cur = json_object_get(arts, "currencies");
	ck_assert_int_eq(json_object_size(cur), 2);
	ck_assert_int_eq(itest_json_int(json_object_get(cur, "USD"), "total_cents"), 12500);
	ck_assert_int_eq(itest_json_int(json_object_get(cur, "USD"), "campaigns"), 3);
	ck_assert_int_eq(itest_json_int(json_object_get(cur, "USD"), "donor_count"), 4);
	ck_assert_int_eq(itest_json_int(json_object_get(cur, "EUR"), "total_cents"), 500);
	ck_assert_ptr_null(json_object_get(arts, "total_cents")); /* never across currencies */
	cur = json_object_get(json_array_get(cats, 0), "currencies");
	ck_assert_int_eq(itest_json_int(json_object_get(cur, "USD"), "total_cents"), 50000);
	json_decref(j);
}
END_TEST

/* ---- live ---- */

static int viewer(void)
{
	int fd = itest_ws_connect(srv.port, "/live", "tally.live.v1", NULL);

	ck_assert_int_ge(fd, 0);
	return fd;
}

static void sub(int fd, const char *channel)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "{\"op\":\"subscribe\",\"channel\":\"%s\"}", channel);
	ck_assert_int_eq(itest_ws_send(fd, msg), 0);
}

/* The next message holding needle, as JSON. */
static json_t *wait_json(int fd, const char *needle)
{
	char *m = itest_ws_wait_for(fd, needle, 5000);
	json_t *j;

	ck_assert_msg(m != NULL, "no message with %s", needle);
	j = json_loads(m, 0, NULL);
	ck_assert_msg(j != NULL, "not JSON: %s", m);
	free(m);
	return j;
}

START_TEST(live_category_board_snapshot_and_update)
{
	int fd;
	json_t *j, *d;

	seed_usd();
	ck_assert_int_eq(create("e1", "EUR", "\"Arts\"", NULL), 201);
	fd = viewer();
	sub(fd, "leaderboard:currency:USD:category:Arts");
	j = wait_json(fd, "\"type\":\"snapshot\"");
	ck_assert_str_eq(str(j, "channel"), "leaderboard:currency:USD:category:Arts");
	d = json_object_get(j, "data");
	ck_assert_str_eq(slugs_of(d), "a3 a2 a1");
	ck_assert_str_eq(str(d, "category"), "Arts");
	json_decref(j);
	/* A gift to a1 takes it to the top of its board. */
	give("a1", 20000);
	j = wait_json(fd, "\"total_cents\":21000");
	ck_assert_str_eq(str(j, "type"), "update");
	ck_assert_str_eq(slugs_of(json_object_get(j, "data")), "a1 a3 a2");
	ck_assert_int_eq(
	    itest_json_int(
	        json_array_get(json_object_get(json_object_get(j, "data"), "entries"), 0),
	        "total_cents"),
	    21000);
	json_decref(j);
	/* A board whose category empties stays, with no entries. */
	sub(fd, "leaderboard:category:Animals");
	j = wait_json(fd, "\"channel\":\"leaderboard:category:Animals\"");
	ck_assert_str_eq(slugs_of(json_object_get(j, "data")), "b1");
	json_decref(j);
	ck_assert_int_eq(patch("b1", "{\"category\":\"Arts\"}", NULL), 200);
	j = wait_json(fd, "\"entries\":[]");
	ck_assert_str_eq(str(j, "channel"), "leaderboard:category:Animals");
	ck_assert_str_eq(str(j, "type"), "update");
	json_decref(j);
	close(fd);

	/* Arts mixes USD and EUR: its board without a currency has no
	 * entries and names both; the EUR one has e1. */
	fd = viewer();
	sub(fd, "leaderboard:category:Arts");
	j = wait_json(fd, "\"type\":\"snapshot\"");
	d = json_object_get(j, "data");
	ck_assert_str_eq(slugs_of(d), "");
	ck_assert(json_is_null(json_object_get(d, "currency")));
	ck_assert_int_eq(json_array_size(json_object_get(d, "currencies")), 2);
	json_decref(j);
	sub(fd, "leaderboard:currency:EUR");
	j = wait_json(fd, "\"channel\":\"leaderboard:currency:EUR\"");
	ck_assert_str_eq(slugs_of(json_object_get(j, "data")), "e1");
	json_decref(j);
	/* The day's money: per currency, never one sum. */
	sub(fd, "day");
	j = wait_json(fd, "\"channel\":\"day\"");
	d = json_object_get(j, "data");
	ck_assert(json_is_null(json_object_get(d, "total_cents")));
	ck_assert_int_eq(itest_json_int(json_object_get(json_object_get(d, "by_currency"), "USD"),
	                                "total_cents"),
	                 102500);
	ck_assert_int_eq(itest_json_int(json_object_get(json_object_get(d, "by_currency"), "EUR"),
	                                "total_cents"),
	                 0);
	json_decref(j);
	close(fd);
}
END_TEST

START_TEST(live_category_board_one_currency_and_the_day)
{
	int fd;
	json_t *j, *d;

	/* A category name holds any printable character: ':' and '"' too. */
	ck_assert_int_eq(create("q1", "USD", "\"Say \\\"hi\\\": now\"", NULL), 201);
	fd = viewer();
	sub(fd, "leaderboard:category:Say \\\"hi\\\": now");
	j = wait_json(fd, "\"type\":\"snapshot\"");
	ck_assert_str_eq(str(j, "channel"), "leaderboard:category:Say \"hi\": now");
	d = json_object_get(j, "data");
	ck_assert_str_eq(slugs_of(d), "q1");
	ck_assert_str_eq(str(d, "currency"), "USD");
	json_decref(j);
	sub(fd, "day");
	j = wait_json(fd, "\"channel\":\"day\"");
	d = json_object_get(j, "data");
	ck_assert_str_eq(str(d, "currency"), "USD");
	ck_assert_int_eq(itest_json_int(d, "total_cents"), 0);
	json_decref(j);
	give("q1", 300);
	j = wait_json(fd, "\"channel\":\"leaderboard:category:Say \\\"hi\\\": now\"");
	ck_assert_str_eq(str(j, "type"), "update");
	json_decref(j);
	close(fd);
}
END_TEST

START_TEST(live_bad_board_names)
{
	static const struct {
		const char *channel, *code;
	} bad[] = {
	    {"leaderboard:category:Nope", "category_not_found"},
	    {"leaderboard:category:arts", "category_not_found"},
	    {"leaderboard:category: Arts", "category_not_found"},
	    {"leaderboard:category:", "category_not_found"},
	    {"leaderboard:category:a\\u0007", "category_not_found"},
	    {"leaderboard:currency:usd", "currency_not_found"},
	    {"leaderboard:currency:JPY", "currency_not_found"},
	    {"leaderboard:currency:EUR:category:Arts", "currency_not_found"},
	    {"leaderboard:currency:USDX", "channel_not_found"},
	    {"leaderboard:currency:US", "channel_not_found"},
	    {"leaderboard:currency:USD:Arts", "channel_not_found"},
	    {"leaderboard:arts", "channel_not_found"},
	    {"leaderboard:", "channel_not_found"},
	};
	int fd;
	json_t *j;

	ck_assert_int_eq(create("a1", "USD", "\"Arts\"", NULL), 201);
	fd = viewer();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sub(fd, bad[i].channel);
		j = wait_json(fd, "\"type\":\"error\"");
		ck_assert_msg(!strcmp(str(j, "code"), bad[i].code), "%s: %s, not %s",
		              bad[i].channel, str(j, "code"), bad[i].code);
		json_decref(j);
	}
	/* Still serving after the errors. */
	sub(fd, "leaderboard:category:Arts");
	j = wait_json(fd, "\"type\":\"snapshot\"");
	json_decref(j);
	close(fd);
}
END_TEST

START_TEST(live_boards_are_bounded)
{
	enum { BOARDS = 32, PER = 8 };
	int fds[BOARDS / PER + 1];
	char slug[16], cat[64];
	json_t *j;

	for (int i = 0; i <= BOARDS; i++) {
		snprintf(slug, sizeof(slug), "c%d", i);
		snprintf(cat, sizeof(cat), "\"Cat %d\"", i);
		ck_assert_int_eq(create(slug, "USD", cat, NULL), 201);
	}
	for (int v = 0; v < BOARDS / PER; v++) {
		fds[v] = viewer();
		for (int k = 0; k < PER; k++) {
			snprintf(cat, sizeof(cat), "leaderboard:category:Cat %d", v * PER + k);
			sub(fds[v], cat);
			json_decref(wait_json(fds[v], "\"type\":\"snapshot\""));
		}
	}
	/* Every board is watched: a 33rd is refused. */
	fds[BOARDS / PER] = viewer();
	snprintf(cat, sizeof(cat), "leaderboard:category:Cat %d", BOARDS);
	sub(fds[BOARDS / PER], cat);
	j = wait_json(fds[BOARDS / PER], "\"type\":\"error\"");
	ck_assert_str_eq(str(j, "code"), "too_many_channels");
	json_decref(j);
	/* A watched board is shared, not another one. */
	sub(fds[BOARDS / PER], "leaderboard:category:Cat 0");
	json_decref(wait_json(fds[BOARDS / PER], "\"type\":\"snapshot\""));
	/* One viewer leaves its boards: they are taken for new ones. */
	for (int k = 0; k < PER; k++) {
		snprintf(cat, sizeof(cat), "leaderboard:category:Cat %d", PER + k);
		{
			char msg[128];

			snprintf(msg, sizeof(msg), "{\"op\":\"unsubscribe\",\"channel\":\"%s\"}",
			         cat);
			ck_assert_int_eq(itest_ws_send(fds[1], msg), 0);
		}
	}
	sub(fds[1], "campaign:c1"); /* the unsubscribes were read before this */
	json_decref(wait_json(fds[1], "\"channel\":\"campaign:c1\""));
	snprintf(cat, sizeof(cat), "leaderboard:category:Cat %d", BOARDS);
	sub(fds[BOARDS / PER], cat);
	j = wait_json(fds[BOARDS / PER],
	              "\"type\":\"snapshot\",\"channel\":\"leaderboard:category");
	ck_assert_str_eq(str(j, "channel"), "leaderboard:category:Cat 32");
	json_decref(j);
	for (int v = 0; v <= BOARDS / PER; v++)
		close(fds[v]);
}
END_TEST

START_TEST(demo_campaigns_have_categories)
{
	json_t *j, *cats;

	itest_cleanup(&srv);
	memset(&srv, 0, sizeof(srv));
	ck_assert_int_eq(itest_start(&srv, "--demo"), 0);
	j = itest_get_json(srv.port, "/api/v1/categories", 0);
	cats = json_object_get(j, "categories");
	ck_assert_int_eq(json_array_size(cats), 4);
	ck_assert_str_eq(str(json_array_get(cats, 0), "category"), "Animals");
	ck_assert_str_eq(str(json_array_get(cats, 1), "category"), "Arts");
	ck_assert_str_eq(str(json_array_get(cats, 2), "category"), "Community");
	ck_assert_str_eq(str(json_array_get(cats, 3), "category"), "Education");
	ck_assert_int_eq(itest_json_int(json_array_get(cats, 3), "campaigns"), 2);
	json_decref(j);
	ck_assert_str_eq(category_of("food-bank"), "Community");
}
END_TEST

Suite *boards_suite(void)
{
	Suite *s = suite_create("boards");
	TCase *tc = tcase_create("boards");

	tcase_add_checked_fixture(tc, start, stop);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, category_set_changed_cleared_and_kept);
	tcase_add_test(tc, bad_categories_are_refused_and_nothing_written);
	tcase_add_test(tc, boards_by_category_rank_and_limit_within_it);
	tcase_add_test(tc, etag_names_the_category);
	tcase_add_test(tc, mixed_currencies_need_one_chosen);
	tcase_add_test(tc, categories_sum_per_currency);
	tcase_add_test(tc, live_category_board_snapshot_and_update);
	tcase_add_test(tc, live_category_board_one_currency_and_the_day);
	tcase_add_test(tc, live_bad_board_names);
	tcase_add_test(tc, live_boards_are_bounded);
	tcase_add_test(tc, demo_campaigns_have_categories);
	suite_add_tcase(s, tc);
	return s;
}
