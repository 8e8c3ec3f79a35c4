/* tests/test_privacy.c - a gift's status is read with its status token:
 * the 202 gives it, the public read wants it (anything else answers as an
 * unknown id does), replays and restarts keep it, staff read any gift with
 * the admin token, and the token never reaches the server's log. */
#include "tests/itest.h"
#include "tests/tests.h"
#include "db/db.h"

#include <jansson.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define TOKEN_LEN 32 /* hex digits of 128 bits */

static struct itest_server srv;

static void start(void)
{
	itest_start_with_food(&srv);
}

static void stop(void)
{
	itest_cleanup(&srv);
}

static json_t *parse(const struct itest_resp *r)
{
	json_error_t e;
	json_t *j = json_loads(r->body, 0, &e);

	ck_assert_msg(j != NULL, "not JSON: %s", r->body);
	return j;
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	ck_assert_msg(s != NULL, "no string %s", key);
	return s;
}

struct gift {
	char id[32];
	char token[64];
	char body[512]; /* the whole 202 */
};

/* POST a gift's JSON (with key when not NULL). */
static void post_gift(const char *key, const char *email, int hide, struct itest_resp *r)
{
	char hdr[300], body[300];

	snprintf(hdr, sizeof(hdr), "Content-Type: application/json\r\n%s%s%s",
	         key ? "Idempotency-Key: " : "", key ? key : "", key ? "\r\n" : "");
	snprintf(body, sizeof(body),
	         "{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":\"Ada\","
	         "\"email\":\"%s\"},\"hide_amount\":%s,\"payment_token\":\"tok_visa\"}",
	         email, hide ? "true" : "false");
	ck_assert_int_eq(itest_http(srv.port, "POST", "/api/v1/campaigns/food/donations", hdr, body,
	                            strlen(body), r),
	                 0);
}

/* POST a gift; assert 202 and a well-formed token; *replayed (when not
 * NULL) tells whether Idempotent-Replayed came back. */
static void give(const char *key, const char *email, int hide, struct gift *g, int *replayed)
{
	struct itest_resp r;
	char hv[16];
	json_t *j;

	post_gift(key, email, hide, &r);
	ck_assert_msg(r.status == 202, "status %d: %s", r.status, r.body);
	j = parse(&r);
	snprintf(g->id, sizeof(g->id), "%s", jstr(j, "id"));
	snprintf(g->token, sizeof(g->token), "%s", jstr(j, "status_token"));
	snprintf(g->body, sizeof(g->body), "%s", r.body);
	json_decref(j);
	ck_assert_uint_eq(strlen(g->token), TOKEN_LEN);
	ck_assert_uint_eq(strspn(g->token, "0123456789abcdef"), TOKEN_LEN);
	if (replayed)
		*replayed = itest_header(&r, "idempotent-replayed", hv, sizeof(hv)) != NULL;
	itest_resp_fini(&r);
}

/* GET the public status of id with query (e.g. "?token=..."; "" for none). */
static void status_get(const char *id, const char *query, struct itest_resp *r)
{
	char path[256];

	snprintf(path, sizeof(path), "/api/v1/donations/%s%s", id, query);
	ck_assert_int_eq(itest_http(srv.port, "GET", path, NULL, NULL, 0, r), 0);
}

/* The public status of a gift with its own token: 200, its JSON. */
static json_t *status_ok(const struct gift *g)
{
	char q[128];
	struct itest_resp r;
	json_t *j;

	snprintf(q, sizeof(q), "?token=%s", g->token);
	status_get(g->id, q, &r);
	ck_assert_msg(r.status == 200, "%s: status %d: %s", g->id, r.status, r.body);
	j = parse(&r);
	ck_assert_str_eq(jstr(j, "id"), g->id);
	itest_resp_fini(&r);
	return j;
}

/* What an unknown id answers: the body every refused read must match. */
static void unknown_answer(char *dst, size_t cap)
{
	struct itest_resp r;

	status_get("dn_999999", "?token=0123456789abcdef0123456789abcdef", &r);
	ck_assert_int_eq(r.status, 404);
	ck_assert_ptr_nonnull(strstr(r.body, "\"donation_not_found\""));
	snprintf(dst, cap, "%s", r.body);
	itest_resp_fini(&r);
}

static void expect_refused(const char *id, const char *query, const char *unknown)
{
	struct itest_resp r;

	status_get(id, query, &r);
	ck_assert_msg(r.status == 404, "%s%s: status %d", id, query, r.status);
	ck_assert_msg(!strcmp(r.body, unknown), "%s%s: body %s, unknown id's %s", id, query, r.body,
	              unknown);
	itest_resp_fini(&r);
}

START_TEST(status_needs_the_gifts_token)
{
	struct gift a, b;
	char unknown[256], q[160];
	json_t *j;

	give(NULL, "ada@example.org", 0, &a, NULL);
	give(NULL, "bo@example.org", 0, &b, NULL);
	ck_assert_str_ne(a.token, b.token);
	ck_assert_int_eq(itest_settle(srv.port), 0);

	j = status_ok(&a);
	ck_assert_str_eq(jstr(j, "status"), "succeeded");
	ck_assert_str_eq(jstr(j, "campaign"), "food");
	ck_assert_ptr_null(json_object_get(j, "status_token"));
	ck_assert_ptr_null(json_object_get(j, "donor"));
	json_decref(j);
	json_decref(status_ok(&b));

	unknown_answer(unknown, sizeof(unknown));
	expect_refused(a.id, "", unknown);
	expect_refused(a.id, "?token=", unknown);
	expect_refused(a.id, "?token", unknown);
	expect_refused(a.id, "?tok=x", unknown);
	expect_refused(a.id, "?token=0123456789abcdef0123456789abcdef", unknown);
	snprintf(q, sizeof(q), "?token=%s", b.token); /* another gift's */
	expect_refused(a.id, q, unknown);
	snprintf(q, sizeof(q), "?token=%.*s", TOKEN_LEN - 1, a.token);
	expect_refused(a.id, q, unknown);
	snprintf(q, sizeof(q), "?token=%s0", a.token);
	expect_refused(a.id, q, unknown);
	snprintf(q, sizeof(q), "?token=%s%s", a.token, a.token);
	expect_refused(a.id, q, unknown);
	/* Case matters: the token is exactly what the 202 said. */
	snprintf(q, sizeof(q), "?token=%s", a.token);
	for (char *c = q + 7; *c; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
	if (strcmp(q + 7, a.token)) /* unless the token is all digits */
		expect_refused(a.id, q, unknown);
	/* The token of a gift does not open the gift next to it. */
	snprintf(q, sizeof(q), "?token=%s", a.token);
	expect_refused(b.id, q, unknown);
	expect_refused("dn_0", q, unknown);
	expect_refused("x", q, unknown);
	/* And the right one still works after all that. */
	json_decref(status_ok(&a));
}
END_TEST

START_TEST(replays_and_restarts_keep_the_token)
{
	struct gift first, again;
	char sql[160];
	int replayed = 0, st;

	give("privacy-order-1", "ada@example.org", 0, &first, &replayed);
	ck_assert_int_eq(replayed, 0);
	give("privacy-order-1", "ada@example.org", 0, &again, &replayed);
	ck_assert_int_eq(replayed, 1);
	ck_assert_str_eq(again.token, first.token);
	ck_assert_str_eq(again.body, first.body);
	json_decref(status_ok(&first));
	/* Kept as given with the gift, once. */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM donations WHERE status_token = '%s'",
	         first.token);
	ck_assert_int_eq(itest_sql_int(srv.db, sql), 1);

	st = itest_signal(&srv, SIGTERM);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_int_eq(itest_start(&srv, NULL), 0);
	json_decref(status_ok(&first));
	/* The key has left memory: the database answers with the same token. */
	give("privacy-order-1", "ada@example.org", 0, &again, &replayed);
	ck_assert_int_eq(replayed, 1);
	ck_assert_str_eq(again.token, first.token);
	ck_assert_str_eq(again.body, first.body);
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM donations"), 1);
}
END_TEST

START_TEST(staff_read_any_gift)
{
	struct gift g, hidden;
	struct itest_resp r;
	json_t *pub, *staff, *v;
	const char *key;
	char path[128];

	give(NULL, "ada@example.org", 0, &g, NULL);
	give(NULL, "quinn@example.org", 1, &hidden, NULL);
	ck_assert_int_eq(itest_settle(srv.port), 0);

	snprintf(path, sizeof(path), "/api/v1/admin/donations/%s", g.id);
	ck_assert_int_eq(itest_admin_get(srv.port, path, &r), 0);
	ck_assert_msg(r.status == 200, "status %d: %s", r.status, r.body);
	ck_assert_ptr_null(strstr(r.body, g.token));
	staff = parse(&r);
	itest_resp_fini(&r);
	/* The public body, then the staff fields. */
	pub = status_ok(&g);
	json_object_foreach(pub, key, v)
	{
		ck_assert_msg(json_equal(v, json_object_get(staff, key)), "%s differs", key);
	}
	ck_assert_str_eq(jstr(json_object_get(staff, "donor"), "email"), "ada@example.org");
	ck_assert_str_eq(jstr(json_object_get(staff, "donor"), "name"), "Ada");
	ck_assert(json_is_true(json_object_get(staff, "has_status_token")));
	ck_assert(json_is_false(json_object_get(staff, "anonymous")));
	ck_assert_ptr_nonnull(json_object_get(staff, "processor_ref"));
	json_decref(pub);
	json_decref(staff);

	/* A hidden amount is hidden from the public, not from staff. */
	pub = status_ok(&hidden);
	ck_assert_ptr_null(json_object_get(pub, "amount_cents"));
	json_decref(pub);
	snprintf(path, sizeof(path), "/api/v1/admin/donations/%s", hidden.id);
	ck_assert_int_eq(itest_admin_get(srv.port, path, &r), 0);
	ck_assert_int_eq(r.status, 200);
	staff = parse(&r);
	ck_assert_int_eq(json_integer_value(json_object_get(staff, "amount_cents")), 2500);
	json_decref(staff);
	itest_resp_fini(&r);

	/* Without the admin token, or with a wrong one: 401, no gift. */
	snprintf(path, sizeof(path), "/api/v1/admin/donations/%s", g.id);
	ck_assert_int_eq(itest_http(srv.port, "GET", path, NULL, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 401);
	ck_assert_ptr_null(strstr(r.body, "ada@example.org"));
	itest_resp_fini(&r);
	ck_assert_int_eq(
	    itest_http(srv.port, "GET", path, "Authorization: Bearer nope\r\n", NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 401);
	itest_resp_fini(&r);
	/* The gift's status token is no admin token. */
	{
		char hdr[128];

		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", g.token);
		ck_assert_int_eq(itest_http(srv.port, "GET", path, hdr, NULL, 0, &r), 0);
		ck_assert_int_eq(r.status, 401);
		itest_resp_fini(&r);
	}
	ck_assert_int_eq(itest_admin_get(srv.port, "/api/v1/admin/donations/dn_999999", &r), 0);
	ck_assert_int_eq(r.status, 404);
	ck_assert_ptr_nonnull(strstr(r.body, "\"donation_not_found\""));
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_admin_get(srv.port, "/api/v1/admin/donations/nope", &r), 0);
	ck_assert_int_eq(r.status, 404);
	itest_resp_fini(&r);
}
END_TEST

START_TEST(token_never_logged)
{
	struct gift g, again;
	struct itest_resp r;
	char q[160], path[128], *log;
	int st;

	give("privacy-log-1", "ada@example.org", 0, &g, NULL);
	give("privacy-log-1", "ada@example.org", 0, &again, NULL);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	json_decref(status_ok(&g));
	snprintf(q, sizeof(q), "?token=%s&x=1", g.token);
	status_get(g.id, q, &r); /* another query parameter beside it */
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	snprintf(q, sizeof(q), "?token=%.*s", TOKEN_LEN - 1, g.token);
	status_get(g.id, q, &r);
	ck_assert_int_eq(r.status, 404);
	itest_resp_fini(&r);
	snprintf(q, sizeof(q), "?token=%s", g.token);
	status_get("dn_999999", q, &r);
	ck_assert_int_eq(r.status, 404);
	itest_resp_fini(&r);
	{
		/* A path too long for the API, with the token in its query. */
		char *big = malloc(2000);

		ck_assert_ptr_nonnull(big);
		snprintf(big, 2000, "/api/v1/donations/%s?token=%s&pad=%01500d", g.id, g.token, 0);
		ck_assert_int_eq(itest_http(srv.port, "GET", big, NULL, NULL, 0, &r), 0);
		ck_assert_int_ge(r.status, 400);
		itest_resp_fini(&r);
		free(big);
	}
	snprintf(path, sizeof(path), "/api/v1/admin/donations/%s", g.id);
	ck_assert_int_eq(itest_admin_get(srv.port, path, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	/* The log is whole once the server has stopped. */
	st = itest_signal(&srv, SIGTERM);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	log = itest_slurp(srv.log);
	ck_assert_msg(strstr(log, "\"server.listening\"") && strstr(log, "\"stop\""),
	              "the log misses its start or stop: %s", log);
	ck_assert_msg(!strstr(log, g.token), "the token is in the log: %s", log);
	/* Not even its first half (a cut or reformatted copy). */
	snprintf(q, sizeof(q), "%.*s", TOKEN_LEN / 2, g.token);
	ck_assert_msg(!strstr(log, q), "part of the token is in the log: %s", log);
	free(log);
}
END_TEST

/* Run sql on the stopped server's database. */
static void sql_exec(const char *sql)
{
	sqlite3 *db;
	char *err = NULL;

	ck_assert_int_eq(sqlite3_open(srv.db, &db), SQLITE_OK);
	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK, "%s: %s", sql,
	              err ? err : "");
	sqlite3_close(db);
}

START_TEST(gifts_from_before_tokens_are_staff_only)
{
	struct gift old, fresh;
	struct itest_resp r;
	char unknown[256], path[128], hv[16];
	json_t *j;
	int st;

	give("privacy-old-1", "ada@example.org", 0, &old, NULL);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	st = itest_signal(&srv, SIGTERM);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* Make it the database of the release before status tokens. */
	sql_exec(TESTS_UNDO_SCHEMA_8
	         "ALTER TABLE donations DROP COLUMN status_token; DROP TABLE staff_tokens;"
	         " ALTER TABLE jobs DROP COLUMN history; PRAGMA user_version = 4;");
	ck_assert_int_eq(itest_start(&srv, NULL), 0);
	ck_assert_int_eq(itest_sql_int(srv.db, "PRAGMA user_version"), DB_SCHEMA_VERSION);
	ck_assert_int_eq(
	    itest_sql_int(srv.db, "SELECT count(*) FROM donations WHERE status_token IS NULL"), 1);

	/* Its old token is gone with the column; no token, not even an empty
	 * one, opens it. */
	unknown_answer(unknown, sizeof(unknown));
	expect_refused(old.id, "", unknown);
	expect_refused(old.id, "?token=", unknown);
	{
		char q[160];

		snprintf(q, sizeof(q), "?token=%s", old.token);
		expect_refused(old.id, q, unknown);
	}
	/* Staff still read it. */
	snprintf(path, sizeof(path), "/api/v1/admin/donations/%s", old.id);
	ck_assert_int_eq(itest_admin_get(srv.port, path, &r), 0);
	ck_assert_int_eq(r.status, 200);
	j = parse(&r);
	ck_assert_str_eq(jstr(j, "status"), "succeeded");
	ck_assert(json_is_false(json_object_get(j, "has_status_token")));
	json_decref(j);
	itest_resp_fini(&r);
	/* A replay of it answers its first 202, which had no token. */
	post_gift("privacy-old-1", "ada@example.org", 0, &r);
	ck_assert_int_eq(r.status, 202);
	ck_assert_ptr_nonnull(itest_header(&r, "idempotent-replayed", hv, sizeof(hv)));
	j = parse(&r);
	ck_assert_str_eq(jstr(j, "id"), old.id);
	ck_assert_ptr_null(json_object_get(j, "status_token"));
	json_decref(j);
	itest_resp_fini(&r);
	/* New gifts get tokens as usual. */
	give(NULL, "bo@example.org", 0, &fresh, NULL);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	json_decref(status_ok(&fresh));
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM donations"), 2);
}
END_TEST

Suite *privacy_suite(void)
{
	Suite *s = suite_create("privacy");
	TCase *tc = tcase_create("status_token");

	tcase_add_checked_fixture(tc, start, stop);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, status_needs_the_gifts_token);
	tcase_add_test(tc, replays_and_restarts_keep_the_token);
	tcase_add_test(tc, staff_read_any_gift);
	tcase_add_test(tc, token_never_logged);
	tcase_add_test(tc, gifts_from_before_tokens_are_staff_only);
	suite_add_tcase(s, tc);
	return s;
}
