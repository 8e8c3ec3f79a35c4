/* tests/test_http.c - the HTTP API of the real binary: the contract's happy
 * paths and every kind of bad input (right code, JSON error body, nothing
 * written, server still serving). */
#include "tests/itest.h"
#include "tests/tests.h"
#include "ws/proxy.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct itest_server srv;

static void start(void)
{
	itest_start_with_food(&srv);
}

static void stop(void)
{
	itest_cleanup(&srv);
}

static long long donations_in_db(void)
{
	return itest_sql_int(srv.db, "SELECT count(*) FROM donations");
}

static json_t *parse(const struct itest_resp *r)
{
	json_error_t e;
	json_t *j = json_loads(r->body, 0, &e);

	ck_assert_msg(j != NULL, "not JSON: %s", r->body);
	return j;
}

/* Assert r is an error with this status and code; returns its fields (may
 * be NULL), a new reference. */
static json_t *expect_error(const struct itest_resp *r, int status, const char *code)
{
	json_t *j, *fields;
	const char *got = NULL, *msg = NULL;

	ck_assert_msg(r->status == status, "status %d, want %d: %s", r->status, status, r->body);
	j = parse(r);
	ck_assert_int_eq(json_unpack(j, "{s:{s:s,s:s}}", "error", "code", &got, "message", &msg),
	                 0);
	ck_assert_str_eq(got, code);
	ck_assert(strlen(msg) > 0);
	fields = json_object_get(json_object_get(j, "error"), "fields");
	json_incref(fields);
	json_decref(j);
	return fields;
}

static void post_donation(const char *slug, const char *body, struct itest_resp *r)
{
	char path[256];

	snprintf(path, sizeof(path), "/api/v1/campaigns/%s/donations", slug);
	ck_assert_int_eq(itest_post_json(srv.port, path, body, 0, r), 0);
}

#define GOOD                                                                                       \
	"{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":\"Ada\","                 \
	"\"email\":\"ada@example.org\"},\"message\":\"Go team!\",\"payment_token\":\"tok_visa\"}"

START_TEST(donation_is_recorded_and_counted)
{
	struct itest_resp r;
	json_t *j;
	const char *id, *status, *token;
	char path[128];
	json_int_t total, donors, count;

	post_donation("food", GOOD, &r);
	ck_assert_int_eq(r.status, 202);
	j = parse(&r);
	ck_assert_int_eq(
	    json_unpack(j, "{s:s,s:s,s:s}", "id", &id, "status", &status, "status_token", &token),
	    0);
	ck_assert(!strcmp(status, "succeeded") || !strcmp(status, "pending"));
	snprintf(path, sizeof(path), "/api/v1/donations/%s?token=%s", id, token);
	json_decref(j);
	itest_resp_fini(&r);
	ck_assert_int_eq(donations_in_db(), 1);

	ck_assert_int_eq(itest_http(srv.port, "GET", path, NULL, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_null(strstr(r.body, "ada@example.org"));
	itest_resp_fini(&r);

	ck_assert_int_eq(itest_donate(srv.port, "food", 1000, "Bob", "bob@example.org"), 202);
	ck_assert_int_eq(itest_donate(srv.port, "food", 500, "Ada", "ADA@example.org"), 202);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	ck_assert_int_eq(itest_http(srv.port, "GET", "/api/v1/campaigns/food", NULL, NULL, 0, &r),
	                 0);
	ck_assert_int_eq(r.status, 200);
	j = parse(&r);
	ck_assert_int_eq(json_unpack(j, "{s:I,s:I,s:I}", "total_cents", &total, "donor_count",
	                             &donors, "donation_count", &count),
	                 0);
	ck_assert_int_eq(total, 4000);
	ck_assert_int_eq(donors, 2);
	ck_assert_int_eq(count, 3);
	ck_assert_ptr_null(strstr(r.body, "@example.org"));
	json_decref(j);
	itest_resp_fini(&r);
}
END_TEST

START_TEST(campaign_get_has_etag_and_304)
{
	struct itest_resp r;
	char etag[128], hdr[200];

	ck_assert_int_eq(itest_http(srv.port, "GET", "/api/v1/campaigns/food", NULL, NULL, 0, &r),
	                 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(itest_header(&r, "etag", etag, sizeof(etag)));
	itest_resp_fini(&r);
	snprintf(hdr, sizeof(hdr), "If-None-Match: %s\r\n", etag);
	ck_assert_int_eq(itest_http(srv.port, "GET", "/api/v1/campaigns/food", hdr, NULL, 0, &r),
	                 0);
	ck_assert_int_eq(r.status, 304);
	ck_assert_int_eq(r.len, 0);
	itest_resp_fini(&r);
	/* A gift changes the representation, so the old tag no longer matches. */
	ck_assert_int_eq(itest_donate(srv.port, "food", 1000, "Bob", "bob@example.org"), 202);
	ck_assert_int_eq(itest_http(srv.port, "GET", "/api/v1/campaigns/food", hdr, NULL, 0, &r),
	                 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
}
END_TEST

START_TEST(campaign_list_pages)
{
	struct itest_resp r;
	json_t *j, *list, *next;
	char path[128];

	ck_assert_int_eq(itest_create_campaign(srv.port, "b-camp", "USD", 0), 201);
	ck_assert_int_eq(itest_create_campaign(srv.port, "c-camp", "EUR", 500), 201);
	ck_assert_int_eq(
	    itest_http(srv.port, "GET", "/api/v1/campaigns?limit=2", NULL, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 200);
	j = parse(&r);
	list = json_object_get(j, "campaigns");
	next = json_object_get(j, "next");
	ck_assert_int_eq(json_array_size(list), 2);
	ck_assert(json_is_string(next));
	snprintf(path, sizeof(path), "/api/v1/campaigns?limit=2&cursor=%s",
	         json_string_value(next));
	json_decref(j);
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_http(srv.port, "GET", path, NULL, NULL, 0, &r), 0);
	j = parse(&r);
	ck_assert_int_eq(json_array_size(json_object_get(j, "campaigns")), 1);
	ck_assert(json_is_null(json_object_get(j, "next")));
	ck_assert_str_eq(json_string_value(json_object_get(
	                     json_array_get(json_object_get(j, "campaigns"), 0), "slug")),
	                 "c-camp");
	json_decref(j);
	itest_resp_fini(&r);
	ck_assert_int_eq(
	    itest_http(srv.port, "GET", "/api/v1/campaigns?limit=0", NULL, NULL, 0, &r), 0);
	json_decref(expect_error(&r, 400, "invalid_query"));
	itest_resp_fini(&r);
}
END_TEST

START_TEST(admin_needs_token)
{
	struct itest_resp r;
	const char *body = "{\"slug\":\"x\",\"name\":\"X\",\"currency\":\"USD\"}";

	ck_assert_int_eq(itest_post_json(srv.port, "/api/v1/admin/campaigns", body, 0, &r), 0);
	json_decref(expect_error(&r, 401, "unauthorized"));
	itest_resp_fini(&r);
	ck_assert_int_eq(
	    itest_http(srv.port, "POST", "/api/v1/admin/campaigns",
	               "Content-Type: application/json\r\nAuthorization: Bearer wrong\r\n", body,
	               strlen(body), &r),
	    0);
	json_decref(expect_error(&r, 401, "unauthorized"));
	itest_resp_fini(&r);
	ck_assert_int_eq(
	    itest_http(srv.port, "POST", "/api/v1/admin/campaigns/food/pause", NULL, NULL, 0, &r),
	    0);
	json_decref(expect_error(&r, 401, "unauthorized"));
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM campaigns"), 1);
	ck_assert_int_eq(itest_create_campaign(srv.port, "food", "USD", 1), 409);
}
END_TEST

START_TEST(pause_resume_close)
{
	struct itest_resp r;
	json_t *j;

	ck_assert_int_eq(
	    itest_post_json(srv.port, "/api/v1/admin/campaigns/food/pause", "{}", 1, &r), 0);
	ck_assert_int_eq(r.status, 200);
	j = parse(&r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "paused");
	json_decref(j);
	itest_resp_fini(&r);
	post_donation("food", GOOD, &r);
	json_decref(expect_error(&r, 409, "campaign_paused"));
	itest_resp_fini(&r);
	ck_assert_int_eq(
	    itest_post_json(srv.port, "/api/v1/admin/campaigns/food/resume", "{}", 1, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_donate(srv.port, "food", 100, "Cy", "cy@example.org"), 202);
	ck_assert_int_eq(
	    itest_post_json(srv.port, "/api/v1/admin/campaigns/food/close", "{}", 1, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	post_donation("food", GOOD, &r);
	json_decref(expect_error(&r, 409, "campaign_closed"));
	itest_resp_fini(&r);
	ck_assert_int_eq(donations_in_db(), 1);
	ck_assert_int_eq(
	    itest_sql_int(srv.db, "SELECT count(*) FROM campaigns WHERE status = 'closed'"), 1);
}
END_TEST

START_TEST(update_and_schedule)
{
	struct itest_resp r;
	json_t *j;
	const char *patch = "{\"name\":\"Food Bank\",\"goal_cents\":900,"
	                    "\"ends_at\":\"2001-01-01T00:00:00Z\"}";

	ck_assert_int_eq(
	    itest_http(srv.port, "PATCH", "/api/v1/admin/campaigns/food",
	               "Content-Type: application/json\r\nAuthorization: Bearer " ITEST_TOKEN
	               "\r\n",
	               patch, strlen(patch), &r),
	    0);
	ck_assert_int_eq(r.status, 200);
	j = parse(&r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "name")), "Food Bank");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "goal_cents")), 900);
	ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "closed");
	json_decref(j);
	itest_resp_fini(&r);
	post_donation("food", GOOD, &r);
	json_decref(expect_error(&r, 409, "campaign_closed"));
	itest_resp_fini(&r);
	ck_assert_int_eq(donations_in_db(), 0);
}
END_TEST

/* One row of the bad-input table: the body, the expected answer, and the
 * per-field key that must be named (NULL when none). */
static const struct bad_case {
	const char *slug, *body, *ctype, *code, *field;
	int status;
} bad_cases[] = {
    {"food", "{\"amount_cents\":", NULL, "invalid_json", NULL, 400},
    {"food", "[1,2]", NULL, "invalid_json", NULL, 400},
    {"food", GOOD "x", NULL, "invalid_json", NULL, 400},
    {"food", "", NULL, "invalid_json", NULL, 400},
    {"food", "{\"amount_cents\":1,\"amount_cents\":2}", NULL, "invalid_json", NULL, 400},
    {"food",
     "{\"amount_cents\":\"2500\",\"currency\":\"USD\",\"donor\":{\"name\":\"A\",\"email\":"
     "\"a@b.org\"}}",
     NULL, "validation_failed", "amount_cents", 422},
    {"food",
     "{\"amount_cents\":25.5,\"currency\":\"USD\",\"donor\":{\"name\":\"A\",\"email\":"
     "\"a@b.org\"}}",
     NULL, "validation_failed", "amount_cents", 422},
    {"food",
     "{\"amount_cents\":-5,\"currency\":\"USD\",\"donor\":{\"name\":\"A\",\"email\":"
     "\"a@b.org\"}}",
     NULL, "validation_failed", "amount_cents", 422},
    {"food", "{\"amount_cents\":99999999999999999999999,\"currency\":\"USD\"}", NULL,
     "validation_failed", NULL, 422},
    {"food", "{\"currency\":\"USD\",\"donor\":{\"name\":\"A\",\"email\":\"a@b.org\"}}", NULL,
     "validation_failed", "amount_cents", 422},
    {"food", "{\"amount_cents\":500,\"donor\":{\"name\":\"A\",\"email\":\"a@b.org\"}}", NULL,
     "validation_failed", "currency", 422},
    {"food",
     "{\"amount_cents\":500,\"currency\":\"EUR\",\"donor\":{\"name\":\"A\",\"email\":"
     "\"a@b.org\"}}",
     NULL, "validation_failed", "currency", 422},
    {"food", "{\"amount_cents\":500,\"currency\":\"USD\"}", NULL, "validation_failed", "donor",
     422},
    {"food",
     "{\"amount_cents\":500,\"currency\":\"USD\",\"donor\":{\"name\":\"A\",\"email\":"
     "\"not-an-email\"}}",
     NULL, "validation_failed", "donor.email", 422},
    {"food",
     "{\"amount_cents\":500,\"currency\":\"USD\",\"donor\":{\"name\":7,\"email\":"
     "\"a@b.org\"}}",
     NULL, "validation_failed", "donor.name", 422},
    {"food",
     "{\"amount_cents\":500,\"currency\":\"USD\",\"donor\":{\"name\":\"A\",\"email\":"
     "\"a@b.org\"},\"anonymous\":\"yes\"}",
     NULL, "validation_failed", "anonymous", 422},
    {"food",
     "{\"amount_cents\":500,\"currency\":\"USD\",\"donor\":{\"name\":\"A\xff\","
     "\"email\":\"a@b.org\"}}",
     NULL, "invalid_json", NULL, 400},
    {"food",
     "{\"amount_cents\":500,\"currency\":\"USD\",\"donor\":{\"name\":\"A\\u0000B\","
     "\"email\":\"a@b.org\"}}",
     NULL, "invalid_json", NULL, 400},
    {"food", GOOD, "text/plain", "unsupported_media_type", NULL, 415},
    {"food", GOOD, "application/x-www-form-urlencoded", "unsupported_media_type", NULL, 415},
    {"nope", GOOD, NULL, "campaign_not_found", NULL, 404},
    {"BAD..slug", GOOD, NULL, "campaign_not_found", NULL, 404},
};

START_TEST(bad_input_is_refused)
{
	const struct bad_case *c = &bad_cases[_i];
	struct itest_resp r;
	char path[256], hdr[128];
	json_t *fields;

	snprintf(path, sizeof(path), "/api/v1/campaigns/%s/donations", c->slug);
	snprintf(hdr, sizeof(hdr), "Content-Type: %s\r\n",
	         c->ctype ? c->ctype : "application/json");
	ck_assert_int_eq(itest_http(srv.port, "POST", path, hdr, c->body, strlen(c->body), &r), 0);
	fields = expect_error(&r, c->status, c->code);
	if (c->field)
		ck_assert_msg(json_object_get(fields, c->field) != NULL,
		              "case %d: no field %s in %s", _i, c->field, r.body);
	json_decref(fields);
	itest_resp_fini(&r);
	ck_assert_int_eq(donations_in_db(), 0);
	ck_assert_int_eq(itest_http(srv.port, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
}
END_TEST

START_TEST(oversized_and_unknown)
{
	struct itest_resp r;
	size_t big = 17 * 1024;
	char *body = malloc(big + 1);

	ck_assert_ptr_nonnull(body);
	memset(body, ' ', big);
	body[0] = '{';
	body[big - 1] = '}';
	body[big] = '\0';
	ck_assert_int_eq(itest_post_json(srv.port, "/api/v1/campaigns/food/donations", body, 0, &r),
	                 0);
	json_decref(expect_error(&r, 413, "payload_too_large"));
	itest_resp_fini(&r);
	free(body);

	ck_assert_int_eq(itest_http(srv.port, "GET", "/api/v1/nothing-here", NULL, NULL, 0, &r), 0);
	json_decref(expect_error(&r, 404, "not_found"));
	itest_resp_fini(&r);
	ck_assert_int_eq(
	    itest_http(srv.port, "DELETE", "/api/v1/campaigns/food", NULL, NULL, 0, &r), 0);
	json_decref(expect_error(&r, 405, "method_not_allowed"));
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_http(srv.port, "GET", "/api/v1/campaigns/nope", NULL, NULL, 0, &r),
	                 0);
	json_decref(expect_error(&r, 404, "campaign_not_found"));
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_http(srv.port, "GET", "/api/v1/donations/dn_999", NULL, NULL, 0, &r),
	                 0);
	json_decref(expect_error(&r, 404, "donation_not_found"));
	itest_resp_fini(&r);
	{
		char path[1200];

		memset(path, 'a', sizeof(path) - 1);
		path[0] = '/';
		path[sizeof(path) - 1] = '\0';
		ck_assert_int_eq(itest_http(srv.port, "GET", path, NULL, NULL, 0, &r), 0);
		json_decref(expect_error(&r, 414, "uri_too_long"));
		itest_resp_fini(&r);
	}
	{
		/* Headers beyond lws's 4 KiB header space: the connection is
		 * refused, nothing else is affected. */
		char *hdr = malloc(9100);

		ck_assert_ptr_nonnull(hdr);
		memcpy(hdr, "X-Big: ", 7);
		memset(hdr + 7, 'b', 9000);
		memcpy(hdr + 9007, "\r\n", 3);
		if (itest_http(srv.port, "GET", "/healthz", hdr, NULL, 0, &r) == 0) {
			ck_assert_int_ge(r.status, 400);
			itest_resp_fini(&r);
		}
		free(hdr);
	}
	ck_assert_int_eq(donations_in_db(), 0);
	ck_assert_int_eq(itest_http(srv.port, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
}
END_TEST

/* Every argument of a query is read whole and on its own: an empty one
 * ("?&", "&&") hides nothing after it, an encoded '&' stays inside its
 * value, a number too long for its buffer is refused rather than cut,
 * one that overflows is refused, and a query of exactly 512 bytes is
 * served (513 is too long). */
START_TEST(query_arguments_are_read_whole)
{
	static const struct {
		const char *path;
		int status;
	} cases[] = {
	    {"/api/v1/leaderboard?&limit=abc", 400},
	    {"/api/v1/leaderboard?by=donors&&limit=abc", 400},
	    {"/api/v1/leaderboard?;limit=0", 400},
	    {"/api/v1/leaderboard?limit=5%26by=donors", 400},
	    {"/api/v1/leaderboard?by=donors%26limit=5", 400},
	    {"/api/v1/campaigns?limit=0000000000000000000000000000005x", 400},
	    {"/api/v1/campaigns?limit=00000000000000000000000000000050", 400},
	    {"/api/v1/campaigns?cursor=99999999999999999999", 400},
	    {"/api/v1/campaigns?cursor=0000000000000000000000000000001x", 400},
	    {"/api/v1/leaderboard?by=donors&limit=5&", 200},
	};
	struct itest_resp r;
	char path[700];
	json_t *j;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(itest_http(srv.port, "GET", cases[i].path, NULL, NULL, 0, &r), 0);
		ck_assert_msg(r.status == cases[i].status, "%s: %d, want %d: %s", cases[i].path,
		              r.status, cases[i].status, r.body);
		if (r.status == 400)
			json_decref(expect_error(&r, 400, "invalid_query"));
		itest_resp_fini(&r);
	}
	ck_assert_int_eq(itest_create_campaign(srv.port, "b-camp", "USD", 0), 201);
	ck_assert_int_eq(
	    itest_http(srv.port, "GET", "/api/v1/campaigns?&&limit=1", NULL, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 200);
	j = parse(&r);
	ck_assert_int_eq(json_array_size(json_object_get(j, "campaigns")), 1);
	json_decref(j);
	itest_resp_fini(&r);
	/* "?a=" and 510 bytes: 512 in all. */
	snprintf(path, sizeof(path), "/api/v1/leaderboard?a=");
	memset(path + strlen(path), 'x', 510);
	path[22 + 510] = '\0';
	ck_assert_int_eq(itest_http(srv.port, "GET", path, NULL, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	path[22 + 510] = 'x';
	path[22 + 511] = '\0';
	ck_assert_int_eq(itest_http(srv.port, "GET", path, NULL, NULL, 0, &r), 0);
	json_decref(expect_error(&r, 414, "uri_too_long"));
	itest_resp_fini(&r);
}
END_TEST

START_TEST(static_assets_and_probes)
{
	struct itest_resp r;
	char etag[128], hdr[200], ctype[128];

	ck_assert_int_eq(itest_http(srv.port, "GET", "/", NULL, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.body, "<html"));
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_http(srv.port, "GET", "/widget.js", NULL, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(itest_header(&r, "content-type", ctype, sizeof(ctype)));
	ck_assert_ptr_nonnull(strstr(ctype, "javascript"));
	ck_assert_ptr_nonnull(itest_header(&r, "etag", etag, sizeof(etag)));
	itest_resp_fini(&r);
	snprintf(hdr, sizeof(hdr), "If-None-Match: %s\r\n", etag);
	ck_assert_int_eq(itest_http(srv.port, "GET", "/widget.js", hdr, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 304);
	itest_resp_fini(&r);
	ck_assert_int_eq(
	    itest_http(srv.port, "GET", "/widget.html?campaign=food", NULL, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_http(srv.port, "GET", "/readyz", NULL, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_http(srv.port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.body, "tally_donations_committed_total"));
	ck_assert_ptr_nonnull(strstr(r.body, "tally_http_requests_total{route=\"GET /readyz\""));
	ck_assert_ptr_nonnull(strstr(r.body, "tally_commit_batch_size_bucket{le=\"+Inf\"}"));
	ck_assert_ptr_nonnull(strstr(r.body, "tally_http_request_duration_seconds_bucket"));
	ck_assert_ptr_null(strstr(r.body, "{}"));
	itest_resp_fini(&r);
}
END_TEST

START_TEST(leaderboard_ranks_incrementally)
{
	struct itest_resp r;
	json_t *j, *e;

	ck_assert_int_eq(itest_create_campaign(srv.port, "b-camp", "USD", 0), 201);
	ck_assert_int_eq(itest_create_campaign(srv.port, "c-camp", "USD", 0), 201);
	ck_assert_int_eq(itest_donate(srv.port, "b-camp", 6000, "A", "a@example.org"), 202);
	ck_assert_int_eq(itest_donate(srv.port, "food", 3000, "A", "a@example.org"), 202);
	ck_assert_int_eq(itest_donate(srv.port, "food", 1000, "B", "b@example.org"), 202);
	ck_assert_int_eq(itest_donate(srv.port, "food", 1000, "C", "c@example.org"), 202);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	ck_assert_int_eq(
	    itest_http(srv.port, "GET", "/api/v1/leaderboard?by=total&limit=2", NULL, NULL, 0, &r),
	    0);
	ck_assert_int_eq(r.status, 200);
	j = json_loads(r.body, 0, NULL);
	e = json_object_get(j, "entries");
	ck_assert_int_eq(json_array_size(e), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(e, 0), "slug")),
	                 "b-camp");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(e, 1), "slug")), "food");
	json_decref(j);
	itest_resp_fini(&r);
	/* food overtakes b-camp with one more gift. */
	ck_assert_int_eq(itest_donate(srv.port, "food", 2000, "D", "d@example.org"), 202);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	ck_assert_int_eq(itest_http(srv.port, "GET", "/api/v1/leaderboard", NULL, NULL, 0, &r), 0);
	j = json_loads(r.body, 0, NULL);
	e = json_object_get(j, "entries");
	ck_assert_int_eq(json_array_size(e), 3);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(e, 0), "slug")), "food");
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(e, 0), "total_cents")),
	                 7000);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(e, 2), "slug")),
	                 "c-camp");
	json_decref(j);
	itest_resp_fini(&r);
	ck_assert_int_eq(
	    itest_http(srv.port, "GET", "/api/v1/leaderboard?by=donors", NULL, NULL, 0, &r), 0);
	j = json_loads(r.body, 0, NULL);
	e = json_object_get(j, "entries");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(e, 0), "slug")), "food");
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(e, 0), "donor_count")),
	                 4);
	json_decref(j);
	itest_resp_fini(&r);
	ck_assert_int_eq(
	    itest_http(srv.port, "GET", "/api/v1/leaderboard?by=height", NULL, NULL, 0, &r), 0);
	json_decref(expect_error(&r, 400, "invalid_query"));
	itest_resp_fini(&r);
	ck_assert_int_eq(
	    itest_http(srv.port, "GET", "/api/v1/leaderboard?limit=101", NULL, NULL, 0, &r), 0);
	json_decref(expect_error(&r, 400, "invalid_query"));
	itest_resp_fini(&r);
}
END_TEST

static int post_keyed(const char *key, const char *body, struct itest_resp *r)
{
	char hdr[512];

	snprintf(hdr, sizeof(hdr), "Content-Type: application/json\r\nIdempotency-Key: %s\r\n",
	         key);
	return itest_http(srv.port, "POST", "/api/v1/campaigns/food/donations", hdr, body,
	                  strlen(body), r);
}

START_TEST(idempotency_key_replays_and_refuses_reuse)
{
	struct itest_resp a, b;
	char hv[32];
	int st;

	ck_assert_int_eq(post_keyed("order-1", GOOD, &a), 0);
	ck_assert_int_eq(a.status, 202);
	ck_assert_ptr_null(itest_header(&a, "idempotent-replayed", hv, sizeof(hv)));
	ck_assert_int_eq(post_keyed("order-1", GOOD, &b), 0);
	ck_assert_int_eq(b.status, 202);
	ck_assert_str_eq(b.body, a.body);
	ck_assert_ptr_nonnull(itest_header(&b, "idempotent-replayed", hv, sizeof(hv)));
	ck_assert_str_eq(hv, "true");
	itest_resp_fini(&b);
	/* Same gift, different JSON spacing: still the same request. */
	ck_assert_int_eq(
	    post_keyed("order-1",
	               "{ \"currency\":\"USD\", \"amount_cents\":2500, \"donor\":{\"email\":"
	               "\"ada@example.org\",\"name\":\"Ada\"},\"message\":\"Go team!\","
	               "\"payment_token\":\"tok_visa\"}",
	               &b),
	    0);
	ck_assert_int_eq(b.status, 202);
	ck_assert_str_eq(b.body, a.body);
	itest_resp_fini(&b);
	ck_assert_int_eq(
	    post_keyed("order-1",
	               "{\"amount_cents\":9900,\"currency\":\"USD\",\"donor\":{\"name\":"
	               "\"Ada\",\"email\":\"ada@example.org\"}}",
	               &b),
	    0);
	json_decref(expect_error(&b, 422, "idempotency_key_reused"));
	itest_resp_fini(&b);
	ck_assert_int_eq(donations_in_db(), 1);

	/* After a restart the database answers for the key. */
	st = itest_signal(&srv, SIGTERM);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_int_eq(itest_start(&srv, NULL), 0);
	ck_assert_int_eq(post_keyed("order-1", GOOD, &b), 0);
	ck_assert_int_eq(b.status, 202);
	ck_assert_str_eq(b.body, a.body);
	ck_assert_ptr_nonnull(itest_header(&b, "idempotent-replayed", hv, sizeof(hv)));
	itest_resp_fini(&b);
	ck_assert_int_eq(
	    post_keyed("order-1",
	               "{\"amount_cents\":100,\"currency\":\"USD\",\"donor\":{\"name\":"
	               "\"Ada\",\"email\":\"ada@example.org\"}}",
	               &b),
	    0);
	json_decref(expect_error(&b, 422, "idempotency_key_reused"));
	itest_resp_fini(&b);
	ck_assert_int_eq(donations_in_db(), 1);
	itest_resp_fini(&a);
}
END_TEST

struct racer {
	int port;
	int status;
	char body[512];
};

static void *race_main(void *arg)
{
	struct racer *r = arg;
	struct itest_resp resp;

	if (itest_http(r->port, "POST", "/api/v1/campaigns/food/donations",
	               "Content-Type: application/json\r\nIdempotency-Key: double-click\r\n", GOOD,
	               strlen(GOOD), &resp) == 0) {
		r->status = resp.status;
		snprintf(r->body, sizeof(r->body), "%s", resp.body);
		itest_resp_fini(&resp);
	}
	return NULL;
}

START_TEST(double_click_records_one_gift)
{
	enum { N = 16 };
	struct racer r[N];
	pthread_t t[N];
	const char *first = NULL;

	for (int i = 0; i < N; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].port = srv.port;
		ck_assert_int_eq(pthread_create(&t[i], NULL, race_main, &r[i]), 0);
	}
	for (int i = 0; i < N; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < N; i++) {
		ck_assert_msg(r[i].status == 202 || r[i].status == 409, "status %d: %s",
		              r[i].status, r[i].body);
		if (r[i].status == 409)
			ck_assert_ptr_nonnull(strstr(r[i].body, "idempotency_key_in_use"));
		else if (!first)
			first = r[i].body;
		else
			ck_assert_str_eq(r[i].body, first);
	}
	ck_assert_ptr_nonnull(first);
	ck_assert_int_eq(donations_in_db(), 1);
}
END_TEST

START_TEST(bad_idempotency_keys)
{
	struct itest_resp r;
	char key[300];

	memset(key, 'k', 256);
	key[256] = '\0';
	ck_assert_int_eq(post_keyed(key, GOOD, &r), 0);
	json_decref(expect_error(&r, 422, "validation_failed"));
	itest_resp_fini(&r);
	ck_assert_int_eq(post_keyed("has\x01control", GOOD, &r), 0);
	ck_assert_int_ge(r.status, 400);
	itest_resp_fini(&r);
	ck_assert_int_eq(donations_in_db(), 0);
}
END_TEST

START_TEST(rate_limit_answers_429)
{
	struct itest_resp r;
	char ra[16];
	int ok = 0, limited = 0;

	itest_cleanup(&srv);
	memset(&srv, 0, sizeof(srv));
	ck_assert_int_eq(itest_start(&srv, "--rate-limit 1 --rate-burst 3 --rate-limit-loopback"),
	                 0);
	/* The campaign create is a write too: it takes the first token. */
	ck_assert_int_eq(itest_create_campaign(srv.port, "food", "USD", 0), 201);
	for (int i = 0; i < 6; i++) {
		post_donation("food", GOOD, &r);
		if (r.status == 202) {
			ok++;
		} else {
			json_decref(expect_error(&r, 429, "rate_limited"));
			ck_assert_ptr_nonnull(itest_header(&r, "retry-after", ra, sizeof(ra)));
			ck_assert_int_ge(atoi(ra), 1);
			limited++;
		}
		itest_resp_fini(&r);
	}
	ck_assert_int_le(ok, 3);
	ck_assert_int_ge(limited, 3);
	ck_assert_int_eq(donations_in_db(), ok);
	/* Reads are never limited. */
	ck_assert_int_eq(itest_http(srv.port, "GET", "/api/v1/campaigns/food", NULL, NULL, 0, &r),
	                 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
}
END_TEST

START_TEST(pipelined_posts_do_not_stall_the_server)
{
	struct itest_resp r;
	char req[1024], two[2048];
	int n;
	char *got;

	n = snprintf(req, sizeof(req),
	             "POST /api/v1/campaigns/food/donations HTTP/1.1\r\nHost: x\r\n"
	             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	             strlen(GOOD), GOOD);
	memcpy(two, req, (size_t)n);
	memcpy(two + n, req, (size_t)n);
	got = itest_raw(srv.port, two, 2 * (size_t)n, 2000);
	ck_assert_ptr_nonnull(got);
	/* The first request is answered (the connection may close after it). */
	ck_assert_msg(strstr(got, "HTTP/1.1 202") != NULL, "no 202 in: %s", got);
	free(got);
	/* A POST followed by a pipelined GET, and by a stray CRLF. */
	{
		const char *tails[] = {"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "\r\n"};

		for (int i = 0; i < 2; i++) {
			memcpy(two, req, (size_t)n);
			memcpy(two + n, tails[i], strlen(tails[i]));
			got = itest_raw(srv.port, two, (size_t)n + strlen(tails[i]), 2000);
			ck_assert_ptr_nonnull(got);
			ck_assert_msg(strstr(got, "HTTP/1.1 202") != NULL, "no 202 in: %s", got);
			free(got);
		}
	}
	/* A bad first body (answered at once) followed by a second request. */
	n = snprintf(req, sizeof(req),
	             "POST /api/v1/campaigns/food/donations HTTP/1.1\r\nHost: x\r\n"
	             "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
	memcpy(two, req, (size_t)n);
	memcpy(two + n, req, (size_t)n);
	got = itest_raw(srv.port, two, 2 * (size_t)n, 2000);
	ck_assert_ptr_nonnull(got);
	ck_assert_ptr_null(strstr(got, "near 'POST'"));
	ck_assert_msg(strstr(got, "HTTP/1.1 422") != NULL, "no 422 in: %s", got);
	free(got);
	/* The server still answers everyone. */
	ck_assert_int_eq(itest_http(srv.port, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_donate(srv.port, "food", 700, "After", "after@example.org"), 202);
	/* Every committed gift was answered: 3 pipelined + the last one. */
	ck_assert_int_eq(donations_in_db(), 4);
}
END_TEST

START_TEST(patch_keeps_the_schedule_consistent)
{
	struct itest_resp r;
	const char *hdr =
	    "Content-Type: application/json\r\nAuthorization: Bearer " ITEST_TOKEN "\r\n";
	const char *a = "{\"starts_at\":\"2030-01-02T00:00:00Z\"}";
	const char *b = "{\"ends_at\":\"2030-01-01T00:00:00Z\"}";
	const char *c = "{\"ends_at\":\"1970-01-01T00:00:00Z\"}";
	json_t *f;

	ck_assert_int_eq(
	    itest_http(srv.port, "PATCH", "/api/v1/admin/campaigns/food", hdr, a, strlen(a), &r),
	    0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	ck_assert_int_eq(
	    itest_http(srv.port, "PATCH", "/api/v1/admin/campaigns/food", hdr, b, strlen(b), &r),
	    0);
	f = expect_error(&r, 422, "validation_failed");
	ck_assert_ptr_nonnull(json_object_get(f, "ends_at"));
	json_decref(f);
	itest_resp_fini(&r);
	ck_assert_int_eq(
	    itest_http(srv.port, "PATCH", "/api/v1/admin/campaigns/food", hdr, c, strlen(c), &r),
	    0);
	json_decref(expect_error(&r, 422, "validation_failed"));
	itest_resp_fini(&r);
	ck_assert_int_eq(
	    itest_sql_int(srv.db, "SELECT count(*) FROM campaigns WHERE ends_at IS NULL"), 1);
}
END_TEST

/* ---- the connection after an answer ---- */

#define ADMIN "Authorization: Bearer " ITEST_TOKEN "\r\n"
#define JSON "Content-Type: application/json\r\n"
#define CLOSE "Connection: close\r\n"

static const struct close_case {
	const char *what;
	const char *line; /* request line */
	const char *headers;
	const char *body; /* NULL: no body, no Content-Length */
	int etag;         /* add If-None-Match with the campaign's tag */
	int status;
} close_cases[] = {
    {"GET", "GET /api/v1/campaigns/food HTTP/1.1", CLOSE, NULL, 0, 200},
    {"304", "GET /api/v1/campaigns/food HTTP/1.1", CLOSE, NULL, 1, 304},
    {"static file", "GET /style.css HTTP/1.1", CLOSE, NULL, 0, 200},
    {"error", "GET /nope HTTP/1.1", CLOSE, NULL, 0, 404},
    {"OPTIONS", "OPTIONS /api/v1/campaigns/food/donations HTTP/1.1", CLOSE, NULL, 0, 204},
    {"body-less POST, async", "POST /api/v1/admin/queues/payments/pause HTTP/1.1", CLOSE ADMIN,
     NULL, 0, 200},
    {"body-less POST, async error", "POST /api/v1/admin/jobs/999999/retry HTTP/1.1", CLOSE ADMIN,
     NULL, 0, 404},
    {"body-less POST, sync error", "POST /api/v1/admin/queues/payments/pause HTTP/1.1", CLOSE, NULL,
     0, 401},
    {"body-less POST, token list", "POST /api/v1/admin/queues/payments/pause HTTP/1.1",
     "Connection: Keep-Alive, Close\r\n" ADMIN, NULL, 0, 200},
    {"POST with body", "POST /api/v1/campaigns/food/donations HTTP/1.1", CLOSE JSON, GOOD, 0, 202},
    {"POST with a bad body", "POST /api/v1/campaigns/food/donations HTTP/1.1", CLOSE JSON, "{}", 0,
     422},
    {"POST with an empty body", "POST /api/v1/admin/queues/payments/resume HTTP/1.1", CLOSE ADMIN,
     "", 0, 200},
    {"HTTP/1.0 GET", "GET /api/v1/campaigns/food HTTP/1.0", "", NULL, 0, 200},
    {"HTTP/1.0 body-less POST", "POST /api/v1/admin/queues/payments/pause HTTP/1.0", ADMIN, NULL, 0,
     200},
};

/* Every kind of answer to a client that asked for Connection: close (or
 * spoke HTTP/1.0) says so and closes the connection at once. */
START_TEST(connection_close_closes_after_every_answer)
{
	const struct close_case *c = &close_cases[_i];
	struct itest_resp r;
	char req[2048], etag[128] = "", conn[32];
	int fd, n;

	if (c->etag) {
		ck_assert_int_eq(
		    itest_http(srv.port, "GET", "/api/v1/campaigns/food", NULL, NULL, 0, &r), 0);
		ck_assert_ptr_nonnull(itest_header(&r, "etag", etag, sizeof(etag)));
		itest_resp_fini(&r);
	}
	n = snprintf(req, sizeof(req), "%s\r\nHost: x\r\n%s", c->line, c->headers);
	if (c->etag)
		n += snprintf(req + n, sizeof(req) - (size_t)n, "If-None-Match: %s\r\n", etag);
	if (c->body)
		n += snprintf(req + n, sizeof(req) - (size_t)n, "Content-Length: %zu\r\n\r\n%s",
		              strlen(c->body), c->body);
	else
		n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
	ck_assert_int_lt(n, (int)sizeof(req));
	fd = itest_conn_open(srv.port);
	ck_assert_int_ge(fd, 0);
	ck_assert_msg(itest_conn_request(fd, req, (size_t)n, 5000, &r) == 0, "%s: no answer",
	              c->what);
	ck_assert_msg(r.status == c->status, "%s: status %d, want %d: %s", c->what, r.status,
	              c->status, r.body);
	if (!itest_header(&r, "connection", conn, sizeof(conn)))
		conn[0] = '\0';
	itest_resp_fini(&r);
	ck_assert_msg(itest_conn_closed(fd, 2000), "%s: the connection stayed open", c->what);
	close(fd);
	ck_assert_msg(!strcmp(conn, "close"), "%s: the answer has no Connection: close", c->what);
}
END_TEST

/* Without Connection: close, one connection serves request after request,
 * whatever the kind of answer. */
START_TEST(keep_alive_serves_requests_in_a_row)
{
	static const struct {
		const char *req;
		int status;
	} seq[] = {
	    {"GET /api/v1/campaigns/food HTTP/1.1\r\nHost: x\r\n\r\n", 200},
	    {"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404},
	    {"POST /api/v1/campaigns/food/donations HTTP/1.1\r\nHost: x\r\n" JSON
	     "Content-Length: 2\r\n\r\n{}",
	     422},
	    {"OPTIONS /api/v1/campaigns/food/donations HTTP/1.1\r\nHost: x\r\n\r\n", 204},
	    {"POST /api/v1/admin/queues/payments/pause HTTP/1.1\r\nHost: x\r\n" ADMIN
	     "Content-Length: 0\r\n\r\n",
	     200},
	    {"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 200},
	    {"GET /api/v1/campaigns/food HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 200},
	};
	char req[2048], etag[128], conn[32];
	struct itest_resp r;
	int fd, n;

	fd = itest_conn_open(srv.port);
	ck_assert_int_ge(fd, 0);
	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		ck_assert_msg(itest_conn_request(fd, seq[i].req, strlen(seq[i].req), 5000, &r) == 0,
		              "request %zu: no answer", i);
		ck_assert_msg(r.status == seq[i].status, "request %zu: status %d, want %d: %s", i,
		              r.status, seq[i].status, r.body);
		ck_assert_ptr_null(itest_header(&r, "connection", conn, sizeof(conn)));
		itest_resp_fini(&r);
	}
	/* A gift with a body, then a 304, on the same connection. */
	n = snprintf(req, sizeof(req),
	             "POST /api/v1/campaigns/food/donations HTTP/1.1\r\nHost: x\r\n" JSON
	             "Content-Length: %zu\r\n\r\n%s",
	             strlen(GOOD), GOOD);
	ck_assert_int_eq(itest_conn_request(fd, req, (size_t)n, 5000, &r), 0);
	ck_assert_int_eq(r.status, 202);
	itest_resp_fini(&r);
	n = snprintf(req, sizeof(req), "GET /api/v1/campaigns/food HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(itest_conn_request(fd, req, (size_t)n, 5000, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(itest_header(&r, "etag", etag, sizeof(etag)));
	itest_resp_fini(&r);
	n = snprintf(req, sizeof(req),
	             "GET /api/v1/campaigns/food HTTP/1.1\r\nHost: x\r\nIf-None-Match: %s\r\n\r\n",
	             etag);
	ck_assert_int_eq(itest_conn_request(fd, req, (size_t)n, 5000, &r), 0);
	ck_assert_int_eq(r.status, 304);
	itest_resp_fini(&r);
	close(fd);
	ck_assert_int_eq(donations_in_db(), 1);
}
END_TEST

/* A POST without Content-Length has no body; lws 4.1 still waits for one,
 * so the server answers it (sync or async) and closes rather than read the
 * next request on the connection as that body. */
START_TEST(bodyless_post_closes_instead_of_eating_the_next_request)
{
	static const struct {
		const char *req;
		int status;
	} cases[] = {
	    {"POST /api/v1/admin/queues/payments/pause HTTP/1.1\r\nHost: x\r\n" ADMIN "\r\n", 200},
	    {"POST /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404},
	};
	const char *next = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	struct itest_resp r;
	char conn[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int fd = itest_conn_open(srv.port);

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(
		    itest_conn_request(fd, cases[i].req, strlen(cases[i].req), 5000, &r), 0);
		ck_assert_int_eq(r.status, cases[i].status);
		if (!itest_header(&r, "connection", conn, sizeof(conn)))
			conn[0] = '\0';
		itest_resp_fini(&r);
		/* Had it stayed open, this request would vanish into the "body". */
		ck_assert_msg(itest_conn_request(fd, next, strlen(next), 2000, &r) != 0 ||
		                  r.status == 200,
		              "request %zu: the next request got status %d", i, r.status);
		itest_resp_fini(&r);
		ck_assert_msg(itest_conn_closed(fd, 2000),
		              "request %zu: the connection stayed open", i);
		close(fd);
		ck_assert_msg(!strcmp(conn, "close"), "request %zu: no Connection: close", i);
	}
}
END_TEST

/* ---- framing, half-close, headers ---- */

/* A request with both Content-Length and Transfer-Encoding is refused before
 * its body is read (either framing could be the one a proxy saw): 400, the
 * connection closed, nothing recorded. */
START_TEST(content_length_with_transfer_encoding_is_refused)
{
	static const struct {
		const char *headers; /* %zu: the body's length */
		const char *body;
	} cases[] = {
	    {"Transfer-Encoding: chunked\r\nContent-Length: %zu\r\n", GOOD},
	    {"Content-Length: %zu\r\nTransfer-Encoding: chunked\r\n",
	     "87\r\n" GOOD "\r\n0\r\n\r\n"},
	    {"Transfer-Encoding: identity\r\nContent-Length: %zu\r\n", GOOD},
	    {"Content-Length: %zu\r\nTransfer-Encoding: gzip, chunked\r\n", GOOD},
	};
	struct itest_resp r;
	char req[2048], head[256], conn[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int fd, n;

		snprintf(head, sizeof(head), cases[i].headers, strlen(cases[i].body));
		n = snprintf(req, sizeof(req),
		             "POST /api/v1/campaigns/food/donations HTTP/1.1\r\nHost: x\r\n" JSON
		             "%s\r\n%s",
		             head, cases[i].body);
		ck_assert_int_lt(n, (int)sizeof(req));
		fd = itest_conn_open(srv.port);
		ck_assert_int_ge(fd, 0);
		ck_assert_msg(itest_conn_request(fd, req, (size_t)n, 5000, &r) == 0,
		              "case %zu: no answer", i);
		json_decref(expect_error(&r, 400, "bad_request"));
		ck_assert_ptr_nonnull(itest_header(&r, "connection", conn, sizeof(conn)));
		ck_assert_str_eq(conn, "close");
		itest_resp_fini(&r);
		ck_assert_msg(itest_conn_closed(fd, 2000), "case %zu: the connection stayed open",
		              i);
		close(fd);
	}
	ck_assert_int_eq(donations_in_db(), 0);
	ck_assert_int_eq(itest_donate(srv.port, "food", 700, "After", "after@example.org"), 202);
	ck_assert_int_eq(donations_in_db(), 1);
}
END_TEST

/* A client that shuts down its sending side once the request is out (a
 * half-close) still gets the answer, sync or async, with a body or
 * without: the donor learns the outcome of a gift that was recorded. */
START_TEST(half_closed_client_gets_its_answer)
{
	static const struct {
		const char *what, *head, *body; /* body NULL: no Content-Length */
		int status;
	} cases[] = {
	    {"gift (async)", "POST /api/v1/campaigns/food/donations HTTP/1.1\r\nHost: x\r\n" JSON,
	     GOOD, 202},
	    {"bad gift (sync)",
	     "POST /api/v1/campaigns/food/donations HTTP/1.1\r\nHost: x\r\n" JSON, "{}", 422},
	    {"body-less POST (async)",
	     "POST /api/v1/admin/queues/receipts/pause HTTP/1.1\r\nHost: x\r\n" ADMIN, NULL, 200},
	    {"empty body (async)",
	     "POST /api/v1/admin/queues/receipts/resume HTTP/1.1\r\nHost: x\r\n" ADMIN, "", 200},
	    {"GET", "GET /api/v1/campaigns/food HTTP/1.1\r\nHost: x\r\n", NULL, 200},
	};
	struct itest_resp r;
	char req[2048];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int fd, n;

		if (cases[i].body)
			n = snprintf(req, sizeof(req), "%sContent-Length: %zu\r\n\r\n%s",
			             cases[i].head, strlen(cases[i].body), cases[i].body);
		else
			n = snprintf(req, sizeof(req), "%s\r\n", cases[i].head);
		ck_assert_int_lt(n, (int)sizeof(req));
		fd = itest_conn_open(srv.port);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
		ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
		ck_assert_msg(itest_conn_request(fd, "", 0, 5000, &r) == 0, "%s: no answer",
		              cases[i].what);
		ck_assert_msg(r.status == cases[i].status, "%s: status %d, want %d: %s",
		              cases[i].what, r.status, cases[i].status, r.body);
		itest_resp_fini(&r);
		ck_assert_msg(itest_conn_closed(fd, 2000), "%s: the connection stayed open",
		              cases[i].what);
		close(fd);
	}
	ck_assert_int_eq(donations_in_db(), 1);
	ck_assert_int_eq(itest_http(srv.port, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
}
END_TEST

/* Answers any origin may read carry Access-Control-Allow-Origin: the public
 * reads (errors included), static files, the donation POST and its
 * preflight. Staff answers never do, whatever their status. */
START_TEST(cors_only_on_public_answers)
{
	static const struct {
		const char *what, *method, *path, *headers, *body;
		int status, cors;
	} cases[] = {
	    {"campaign", "GET", "/api/v1/campaigns/food", NULL, NULL, 200, 1},
	    {"campaign list", "HEAD", "/api/v1/campaigns", NULL, NULL, 200, 1},
	    {"no campaign", "GET", "/api/v1/campaigns/nope", NULL, NULL, 404, 1},
	    {"leaderboard", "GET", "/api/v1/leaderboard", NULL, NULL, 200, 1},
	    {"static file", "GET", "/widget.js", NULL, NULL, 200, 1},
	    {"gift", "POST", "/api/v1/campaigns/food/donations", JSON, GOOD, 202, 1},
	    {"bad gift", "POST", "/api/v1/campaigns/food/donations", JSON, "{}", 422, 1},
	    {"preflight", "OPTIONS", "/api/v1/campaigns/food/donations", NULL, NULL, 204, 1},
	    {"queues", "GET", "/api/v1/admin/queues", ADMIN, NULL, 200, 0},
	    {"queues, no token", "GET", "/api/v1/admin/queues", NULL, NULL, 401, 0},
	    {"audit", "GET", "/api/v1/admin/audit", ADMIN, NULL, 200, 0},
	    {"pause (async)", "POST", "/api/v1/admin/campaigns/food/pause", ADMIN JSON, "{}", 200,
	     0},
	    {"resume (async)", "POST", "/api/v1/admin/campaigns/food/resume", ADMIN JSON, "{}", 200,
	     0},
	    {"create, bad body", "POST", "/api/v1/admin/campaigns", ADMIN JSON, "{}", 422, 0},
	    {"admin preflight", "OPTIONS", "/api/v1/admin/queues", NULL, NULL, 204, 0},
	    {"admin campaign preflight", "OPTIONS", "/api/v1/admin/campaigns/food", NULL, NULL, 204,
	     0},
	};
	struct itest_resp r;
	char v[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *acao;

		ck_assert_int_eq(itest_http(srv.port, cases[i].method, cases[i].path,
		                            cases[i].headers, cases[i].body,
		                            cases[i].body ? strlen(cases[i].body) : 0, &r),
		                 0);
		ck_assert_msg(r.status == cases[i].status, "%s: status %d, want %d: %s",
		              cases[i].what, r.status, cases[i].status, r.body);
		acao = itest_header(&r, "access-control-allow-origin", v, sizeof(v));
		if (cases[i].cors)
			ck_assert_msg(acao && !strcmp(acao, "*"), "%s: no ACAO: %s", cases[i].what,
			              r.headers);
		else
			ck_assert_msg(!acao, "%s: ACAO on a staff answer: %s", cases[i].what,
			              r.headers);
		if (!strcmp(cases[i].method, "OPTIONS"))
			ck_assert_msg(!itest_header(&r, "access-control-allow-methods", v,
			                            sizeof(v)) == !cases[i].cors,
			              "%s: preflight headers: %s", cases[i].what, r.headers);
		itest_resp_fini(&r);
	}
	ck_assert_int_eq(donations_in_db(), 1);
}
END_TEST

/* Every answer says nosniff and no-referrer and has a Content-Security-
 * Policy: JSON and files one that lets nothing load or frame them, HTML
 * pages their own (scripts by hash, framed by this origin only), except
 * the widget, which any site may frame. */
START_TEST(security_headers_on_every_answer)
{
	static const struct {
		const char *what, *method, *path, *headers, *body;
		int status;
		const char *csp; /* NULL: a page's own policy */
	} cases[] = {
	    {"JSON", "GET", "/api/v1/campaigns/food", NULL, NULL, 200,
	     "default-src 'none'; frame-ancestors 'none'"},
	    {"JSON error", "GET", "/api/v1/campaigns/nope", NULL, NULL, 404,
	     "default-src 'none'; frame-ancestors 'none'"},
	    {"async 202", "POST", "/api/v1/campaigns/food/donations", JSON, GOOD, 202,
	     "default-src 'none'; frame-ancestors 'none'"},
	    {"staff", "GET", "/api/v1/admin/queues", ADMIN, NULL, 200,
	     "default-src 'none'; frame-ancestors 'none'"},
	    {"preflight", "OPTIONS", "/api/v1/campaigns/food/donations", NULL, NULL, 204,
	     "default-src 'none'; frame-ancestors 'none'"},
	    {"metrics", "GET", "/metrics", NULL, NULL, 200,
	     "default-src 'none'; frame-ancestors 'none'"},
	    {"script", "GET", "/widget.js", NULL, NULL, 200,
	     "default-src 'none'; frame-ancestors 'none'"},
	    {"landing page", "GET", "/", NULL, NULL, 200, NULL},
	    {"board", "GET", "/board.html", NULL, NULL, 200, NULL},
	    {"widget", "GET", "/widget.html?campaign=food", NULL, NULL, 200, NULL},
	};
	struct itest_resp r;
	char v[1024];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int widget = strstr(cases[i].path, "widget.html") != NULL;

		ck_assert_int_eq(itest_http(srv.port, cases[i].method, cases[i].path,
		                            cases[i].headers, cases[i].body,
		                            cases[i].body ? strlen(cases[i].body) : 0, &r),
		                 0);
		ck_assert_msg(r.status == cases[i].status, "%s: status %d", cases[i].what,
		              r.status);
		ck_assert_ptr_nonnull(itest_header(&r, "x-content-type-options", v, sizeof(v)));
		ck_assert_str_eq(v, "nosniff");
		ck_assert_ptr_nonnull(itest_header(&r, "referrer-policy", v, sizeof(v)));
		ck_assert_str_eq(v, "no-referrer");
		ck_assert_msg(!itest_header(&r, "x-frame-options", v, sizeof(v)),
		              "%s: X-Frame-Options", cases[i].what);
		ck_assert_msg(itest_header(&r, "content-security-policy", v, sizeof(v)) != NULL,
		              "%s: no CSP: %s", cases[i].what, r.headers);
		if (cases[i].csp) {
			ck_assert_str_eq(v, cases[i].csp);
		} else {
			/* The page's inline script runs by its hash, nothing else inline. */
			ck_assert_msg(strstr(v, "default-src 'none'; script-src 'self' 'sha256-") ==
			                  v,
			              "%s: %s", cases[i].what, v);
			{
				const char *ss = strstr(v, "script-src");

				ck_assert_ptr_null(memmem(ss, strcspn(ss, ";"), "unsafe", 6));
			}
			ck_assert_ptr_nonnull(strstr(v, "style-src 'self' 'unsafe-inline';"));
			ck_assert_ptr_nonnull(strstr(v, "connect-src 'self';"));
			ck_assert_ptr_nonnull(strstr(v, "base-uri 'none';"));
			if (widget)
				ck_assert_msg(!strstr(v, "frame-ancestors"),
				              "the widget cannot be framed: %s", v);
			else
				ck_assert_msg(strstr(v, "; frame-ancestors 'self'") != NULL,
				              "%s may be framed by others: %s", cases[i].what, v);
		}
		itest_resp_fini(&r);
	}
}
END_TEST

/* Write len bytes of data to path (created or truncated). */
static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

/* Stop the fixture's server and make a copy of the assets folder in a new
 * server directory: its path into dir, for the test to change. */
static void copy_assets(char *dir, size_t cap)
{
	const char *src = getenv("TALLY_ASSETS") ? getenv("TALLY_ASSETS") : "assets";
	struct dirent *de;
	DIR *d;

	itest_cleanup(&srv);
	memset(&srv, 0, sizeof(srv));
	srv.dir = tests_tmpdir();
	ck_assert_ptr_nonnull(srv.dir);
	snprintf(dir, cap, "%s/assets", srv.dir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	d = opendir(src);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d))) {
		char from[1024], to[1024], *data;
		struct stat st;
		FILE *f;

		snprintf(from, sizeof(from), "%s/%s", src, de->d_name);
		if (de->d_name[0] == '.' || stat(from, &st) || !S_ISREG(st.st_mode))
			continue;
		data = malloc((size_t)st.st_size + 1);
		f = fopen(from, "rb");
		ck_assert(data && f);
		ck_assert_int_eq(fread(data, 1, (size_t)st.st_size, f), (size_t)st.st_size);
		fclose(f);
		snprintf(to, sizeof(to), "%s/%s", dir, de->d_name);
		write_file(to, data, (size_t)st.st_size);
		free(data);
	}
	closedir(d);
}

/* Start the server on the assets folder dir. Returns itest_start's result. */
static int start_on_assets(const char *dir)
{
	char *old = getenv("TALLY_ASSETS") ? strdup(getenv("TALLY_ASSETS")) : NULL;
	int rc;

	setenv("TALLY_ASSETS", dir, 1);
	rc = itest_start(&srv, NULL);
	if (old)
		setenv("TALLY_ASSETS", old, 1);
	else
		unsetenv("TALLY_ASSETS");
	free(old);
	return rc;
}

/* A page's policy names each of its inline scripts by the SHA-256 a browser
 * computes (after turning CR LF into LF), and no script with a src. */
START_TEST(page_policy_hashes_inline_scripts)
{
	static const char page[] =
	    "<!doctype html>\r\n<title>t</title>\r\n<script>\r\nlet a = 1;\r\n"
	    "</script><script src=\"widget.js\"></script>\r\n"
	    "<SCRIPT type=\"module\">b()</SCRIPT><scripts>x</scripts>";
	struct itest_resp r;
	char dir[600], path[700], csp[1024];

	copy_assets(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/t.html", dir);
	write_file(path, page, sizeof(page) - 1);
	ck_assert_int_eq(start_on_assets(dir), 0);
	ck_assert_int_eq(itest_http(srv.port, "GET", "/t.html", NULL, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(itest_header(&r, "content-security-policy", csp, sizeof(csp)));
	/* echo -n $'\nlet a = 1;\n' | sha256sum, and b(): base64 digests. */
	ck_assert_str_eq(csp, "default-src 'none'; script-src 'self' "
	                      "'sha256-wCpX6PRaV2tYabHPuD0EVrhGyeiYQpOhQOJ8OhOtDwA=' "
	                      "'sha256-cf242PFc/kb7xD0Qzhsmd9vvRkc+cWFmbi+k+YvtdKc='; "
	                      "style-src 'self' 'unsafe-inline'; connect-src 'self'; "
	                      "img-src 'self' data:; base-uri 'none'; form-action 'none'; "
	                      "frame-ancestors 'self'");
	itest_resp_fini(&r);

	/* A page whose policy cannot be made: tally says so and does not start. */
	ck_assert_int_eq(itest_signal(&srv, SIGTERM), 0);
	write_file(path, "<p>x</p><script>let a = 1;", 26);
	ck_assert_int_ne(start_on_assets(dir), 0);
	{
		FILE *f = fopen(srv.log, "r");
		char line[512];
		int said = 0;

		ck_assert_ptr_nonnull(f);
		while (fgets(line, sizeof(line), f))
			said |= strstr(line, "t.html: a <script> is not closed") != NULL;
		fclose(f);
		ck_assert_msg(said, "no message about t.html in %s", srv.log);
	}
}
END_TEST

/* A symlink in the assets folder is served only when it leads to a file
 * inside the folder: one to /etc/passwd or to a file beside the folder is
 * not found, while the plain files and an inside link still serve. */
START_TEST(asset_symlinks_stay_inside_the_folder)
{
	static const struct {
		const char *path;
		int status;
	} cases[] = {
	    {"/passwd.txt", 404}, {"/outside.html", 404}, {"/up.css", 404},
	    {"/inside.css", 200}, {"/style.css", 200},    {"/", 200},
	    {"/widget.js", 200},
	};
	struct itest_resp r;
	char dir[600], path[700], target[700], *css;
	size_t css_len;

	copy_assets(dir, sizeof(dir));
	snprintf(target, sizeof(target), "%s/outside.html", srv.dir);
	write_file(target, "<p>beside-the-folder</p>", 24);
	snprintf(path, sizeof(path), "%s/outside.html", dir);
	ck_assert_int_eq(symlink(target, path), 0);
	snprintf(path, sizeof(path), "%s/passwd.txt", dir);
	ck_assert_int_eq(symlink("/etc/passwd", path), 0);
	snprintf(path, sizeof(path), "%s/up.css", dir);
	ck_assert_int_eq(symlink("../assets/../outside.html", path), 0);
	snprintf(path, sizeof(path), "%s/inside.css", dir);
	ck_assert_int_eq(symlink("style.css", path), 0);
	ck_assert_int_eq(start_on_assets(dir), 0);

	ck_assert_int_eq(itest_http(srv.port, "GET", "/style.css", NULL, NULL, 0, &r), 0);
	css = r.body;
	css_len = r.len;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(itest_http(srv.port, "GET", cases[i].path, NULL, NULL, 0, &r), 0);
		ck_assert_msg(r.status == cases[i].status, "%s: status %d, want %d", cases[i].path,
		              r.status, cases[i].status);
		if (cases[i].status == 404)
			json_decref(expect_error(&r, 404, "not_found"));
		ck_assert_ptr_null(strstr(r.body, "root:x:0:0:"));
		ck_assert_ptr_null(strstr(r.body, "beside-the-folder"));
		if (!strcmp(cases[i].path, "/inside.css"))
			ck_assert(r.len == css_len && !memcmp(r.body, css, css_len));
		itest_resp_fini(&r);
	}
	free(css);
	{
		/* The log names each refused file. */
		FILE *f = fopen(srv.log, "r");
		char line[1024];
		int refused = 0;

		ck_assert_ptr_nonnull(f);
		while (fgets(line, sizeof(line), f))
			refused += strstr(line, "assets.refused") != NULL;
		fclose(f);
		ck_assert_int_eq(refused, 3);
	}
}
END_TEST

/* A request head that lws parses but HTTP refuses gets a JSON answer, then
 * the connection closes: a bad request line (no version, junk, no request
 * line at all), a method lws does not know (501), another HTTP version
 * (505), a missing or second Host, a known header field past
 * HTTP_FIELD_MAX (431, naming it). */
START_TEST(bad_request_heads_are_answered)
{
	static const struct {
		const char *what, *head; /* %s: a 4000-byte value */
		int status;
		const char *code, *field;
	} cases[] = {
	    {"no version", "GET /healthz\r\nHost: x\r\n\r\n", 400, "bad_request", NULL},
	    {"junk version", "GET /healthz HTTP/one\r\nHost: x\r\n\r\n", 400, "bad_request", NULL},
	    {"extra word", "GET /healthz HTTP/1.1 please\r\nHost: x\r\n\r\n", 400, "bad_request",
	     NULL},
	    {"HTTP/2.0", "GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 505,
	     "http_version_not_supported", NULL},
	    {"unknown method", "BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", 501, "not_implemented",
	     NULL},
	    {"lower-case method", "brew /pot HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request",
	     NULL},
	    {"not HTTP", "hello there\r\n\r\n", 400, "bad_request", NULL},
	    {"no Host", "GET /healthz HTTP/1.1\r\n\r\n", 400, "bad_request", NULL},
	    {"two Hosts", "GET /healthz HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, "bad_request",
	     NULL},
	    {"long User-Agent", "GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: %s\r\n\r\n", 431,
	     "header_too_large", "user-agent"},
	    {"long Referer on a POST",
	     "POST /api/v1/campaigns/food/donations HTTP/1.1\r\nHost: x\r\n" JSON
	     "Referer: %s\r\nContent-Length: 2\r\n\r\n{}",
	     431, "header_too_large", "referer"},
	};
	struct itest_resp r;
	char *big = malloc(4001), *req = malloc(8192), conn[32];

	ck_assert(big && req);
	memset(big, 'v', 4000);
	big[4000] = '\0';
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int fd, n = snprintf(req, 8192, cases[i].head, big);
		json_t *fields;

		fd = itest_conn_open(srv.port);
		ck_assert_int_ge(fd, 0);
		ck_assert_msg(itest_conn_request(fd, req, (size_t)n, 5000, &r) == 0,
		              "%s: no answer", cases[i].what);
		ck_assert_msg(r.status == cases[i].status, "%s: status %d, want %d: %s",
		              cases[i].what, r.status, cases[i].status, r.body);
		fields = expect_error(&r, cases[i].status, cases[i].code);
		if (cases[i].field)
			ck_assert_msg(json_object_get(fields, cases[i].field) != NULL,
			              "%s: no field %s in %s", cases[i].what, cases[i].field,
			              r.body);
		json_decref(fields);
		ck_assert_ptr_nonnull(itest_header(&r, "connection", conn, sizeof(conn)));
		ck_assert_str_eq(conn, "close");
		ck_assert_ptr_nonnull(
		    itest_header(&r, "x-content-type-options", conn, sizeof(conn)));
		itest_resp_fini(&r);
		ck_assert_msg(itest_conn_closed(fd, 2000), "%s: the connection stayed open",
		              cases[i].what);
		close(fd);
	}
	free(big);
	free(req);
	ck_assert_int_eq(donations_in_db(), 0);
	ck_assert_int_eq(itest_http(srv.port, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
}
END_TEST

/* What lws 4.1 decides alone, without a callback to answer from (see
 * http_context_options): a head past its header space is closed without
 * an answer, and a request target with a bad %-escape gets lws's own 403
 * page, with our safety headers. Either way the server goes on serving. */
START_TEST(lws_refusals_close_and_keep_serving)
{
	struct itest_resp r;
	char *req = malloc(12000), v[64];
	int fd, n;

	ck_assert_ptr_nonnull(req);
	n = snprintf(req, 12000, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
	memset(req + n, 'b', 9000);
	n += 9000;
	n += snprintf(req + n, 12000 - (size_t)n, "\r\n\r\n");
	fd = itest_conn_open(srv.port);
	ck_assert_int_ge(fd, 0);
	/* No answer: the read ends at the close, not at the timeout. */
	ck_assert_int_ne(itest_conn_request(fd, req, (size_t)n, 3000, &r), 0);
	ck_assert_int_eq(r.status, 0);
	ck_assert(itest_conn_closed(fd, 100));
	close(fd);
	free(req);

	fd = itest_conn_open(srv.port);
	ck_assert_int_ge(fd, 0);
	n = snprintf(v, sizeof(v), "GET /%%zz HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(itest_conn_request(fd, v, (size_t)n, 3000, &r), 0);
	ck_assert_int_eq(r.status, 403);
	ck_assert_ptr_nonnull(itest_header(&r, "x-content-type-options", v, sizeof(v)));
	ck_assert_str_eq(v, "nosniff");
	ck_assert_ptr_nonnull(itest_header(&r, "content-security-policy", v, sizeof(v)));
	itest_resp_fini(&r);
	ck_assert(itest_conn_closed(fd, 2000));
	close(fd);

	ck_assert_int_eq(itest_http(srv.port, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
}
END_TEST

/* ---- trusted proxies (X-Forwarded-For) ---- */

/* A donation to food "from" the X-Forwarded-For xff (NULL: no header);
 * returns its status. */
static int post_via(const char *xff)
{
	struct itest_resp r;
	char hdrs[512];
	int st;

	snprintf(hdrs, sizeof(hdrs), "Content-Type: application/json\r\n%s%s%s",
	         xff ? "X-Forwarded-For: " : "", xff ? xff : "", xff ? "\r\n" : "");
	ck_assert_int_eq(itest_http(srv.port, "POST", "/api/v1/campaigns/food/donations", hdrs,
	                            GOOD, strlen(GOOD), &r),
	                 0);
	st = r.status;
	ck_assert_msg(st == 202 || st == 429, "status %d: %s", st, r.body);
	itest_resp_fini(&r);
	return st;
}

/* Post "from" xff until it is answered 429 (bounded). */
static void exhaust(const char *xff)
{
	for (int i = 0; i < 20; i++)
		if (post_via(xff) == 429)
			return;
	ck_abort_msg("never rate limited as %s", xff ? xff : "the peer");
}

/* Pause or resume food as an admin "from" xff, then read the newest audit
 * entry's actor into actor. */
static void audit_actor_via(const char *xff, char *actor, size_t cap)
{
	static int paused;
	struct itest_resp r;
	char hdrs[2048];
	json_t *j;

	snprintf(hdrs, sizeof(hdrs), "Authorization: Bearer " ITEST_TOKEN "\r\n%s%s%s",
	         xff ? "X-Forwarded-For: " : "", xff ? xff : "", xff ? "\r\n" : "");
	paused = !paused;
	ck_assert_int_eq(itest_http(srv.port, "POST",
	                            paused ? "/api/v1/admin/campaigns/food/pause"
	                                   : "/api/v1/admin/campaigns/food/resume",
	                            hdrs, NULL, 0, &r),
	                 0);
	ck_assert_msg(r.status == 200, "status %d: %s", r.status, r.body);
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_admin_get(srv.port, "/api/v1/admin/audit?limit=1", &r), 0);
	ck_assert_int_eq(r.status, 200);
	j = parse(&r);
	snprintf(actor, cap, "%s",
	         json_string_value(
	             json_object_get(json_array_get(json_object_get(j, "entries"), 0), "actor")));
	json_decref(j);
	itest_resp_fini(&r);
}

static void restart_with(const char *args)
{
	itest_cleanup(&srv);
	memset(&srv, 0, sizeof(srv));
	ck_assert_int_eq(itest_start(&srv, args), 0);
	ck_assert_int_eq(itest_create_campaign(srv.port, "food", "USD", 0), 201);
}

/* Two clients behind one trusted proxy (the same loopback peer) each have
 * their own bucket, and the audit names the client. */
START_TEST(trusted_proxy_separates_clients)
{
	char actor[128];

	restart_with("--rate-limit 1 --rate-burst 2 --rate-limit-loopback "
	             "--trusted-proxy 127.0.0.1/32 --trusted-proxy 10.0.0.0/8");
	exhaust("203.0.113.5");
	ck_assert_int_eq(post_via("203.0.113.5"), 429);
	ck_assert_int_eq(post_via("203.0.113.6"), 202);
	/* Spelt otherwise, with a trusted hop after it: the same client. */
	ck_assert_int_eq(post_via(" 203.0.113.5 , 10.1.2.3"), 429);
	audit_actor_via("198.51.100.7", actor, sizeof(actor));
	ck_assert_str_eq(actor, "admin@198.51.100.7");
	audit_actor_via("2001:DB8:0::1", actor, sizeof(actor));
	ck_assert_str_eq(actor, "admin@2001:db8::1");
	/* Every hop trusted: the left-most is the client. */
	audit_actor_via("10.9.9.9, 127.0.0.1", actor, sizeof(actor));
	ck_assert_str_eq(actor, "admin@10.9.9.9");
	/* No header: the peer itself. */
	audit_actor_via(NULL, actor, sizeof(actor));
	ck_assert_str_eq(actor, "admin@127.0.0.1");
}
END_TEST

/* From a peer that is not trusted the header means nothing: one bucket. */
START_TEST(untrusted_peer_header_is_ignored)
{
	char actor[128];

	restart_with("--rate-limit 1 --rate-burst 2 --rate-limit-loopback "
	             "--trusted-proxy 10.0.0.0/8");
	audit_actor_via("198.51.100.7", actor, sizeof(actor));
	ck_assert_str_eq(actor, "admin@127.0.0.1");
	exhaust("203.0.113.5");
	ck_assert_int_eq(post_via("203.0.113.6"), 429);
	ck_assert_int_eq(post_via(NULL), 429);
}
END_TEST

/* A client that writes its own X-Forwarded-For ("evil, real") through a
 * trusted proxy is still the address the proxy added. */
START_TEST(trusted_proxy_forged_chain_uses_rightmost_untrusted)
{
	char actor[128];

	restart_with("--rate-limit 1 --rate-burst 2 --rate-limit-loopback "
	             "--trusted-proxy 127.0.0.1/32");
	exhaust("1.1.1.1, 198.51.100.20");
	ck_assert_int_eq(post_via("2.2.2.2, 198.51.100.20"), 429);
	ck_assert_int_eq(post_via("garbage, 198.51.100.20"), 429);
	ck_assert_int_eq(post_via("198.51.100.21"), 202);
	audit_actor_via("6.6.6.6, 198.51.100.7", actor, sizeof(actor));
	ck_assert_str_eq(actor, "admin@198.51.100.7");
}
END_TEST

/* Garbage where the client should be: the header is ignored, the peer
 * is the client. */
START_TEST(trusted_proxy_garbage_falls_back_to_peer)
{
	static const char *const garbage[] = {
	    "not-an-ip",
	    "203.0.113.5:8080",
	    "[2001:db8::1]",
	    "203.0.113.5,",
	    ",",
	    " ",
	    "203.0.113.256",
	    "203.0.113.5 203.0.113.6",
	    "unknown, 127.0.0.1",
	    "1.2.3.4;x",
	};
	char actor[128];

	restart_with("--trusted-proxy 127.0.0.1/32");
	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		audit_actor_via(garbage[i], actor, sizeof(actor));
		ck_assert_msg(!strcmp(actor, "admin@127.0.0.1"), "'%s' gave %s", garbage[i], actor);
	}
	/* A header longer than tally reads is ignored too. */
	{
		char big[1400];

		memset(big, 0, sizeof(big));
		for (size_t n = 0; n + 10 < sizeof(big) - 16;)
			n += (size_t)snprintf(big + n, sizeof(big) - n, "10.0.0.%zu, ", n % 200);
		strcat(big, "198.51.100.9");
		audit_actor_via(big, actor, sizeof(actor));
		ck_assert_str_eq(actor, "admin@127.0.0.1");
	}
}
END_TEST

/* Bad --trusted-proxy values: tally does not start and says why. */
START_TEST(bad_trusted_proxy_is_refused)
{
	static const struct {
		const char *arg, *says;
	} bad[] = {
	    {"localhost", "--trusted-proxy wants an address or CIDR"},
	    {"10.0.0.0/33", "an IPv4 prefix is 0 to 32 bits"},
	    {"::1/129", "an IPv6 prefix is 0 to 128 bits"},
	    {"10.0.0.1/8", "bits set past the prefix"},
	    {"10.0.0.0/", "--trusted-proxy wants an address or CIDR"},
	    {"10.0.0.0/8x", "--trusted-proxy wants an address or CIDR"},
	    {"/8", "--trusted-proxy wants an address or CIDR"},
	    {"''", "--trusted-proxy wants an address or CIDR"},
	};
	const char *bin = getenv("TALLY_BIN") ? getenv("TALLY_BIN") : "./tally";

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char cmd[1024], out[2048], db[600];
		size_t n;
		FILE *p;
		int st;

		snprintf(db, sizeof(db), "%s/never.db", srv.dir);
		snprintf(cmd, sizeof(cmd), "%s --headless --db %s --trusted-proxy %s 2>&1", bin, db,
		         bad[i].arg);
		p = popen(cmd, "r");
		ck_assert_ptr_nonnull(p);
		n = fread(out, 1, sizeof(out) - 1, p);
		out[n] = '\0';
		st = pclose(p);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s: status %d", bad[i].arg,
		              st);
		ck_assert_msg(strstr(out, bad[i].says), "%s said: %s", bad[i].arg, out);
		ck_assert_int_eq(access(db, F_OK), -1); /* nothing written */
	}
}
END_TEST

/* The walk itself, without a server. */
START_TEST(proxy_client_walk)
{
	static const struct {
		const char *peer, *xff, *want;
	} cases[] = {
	    {"127.0.0.1", "203.0.113.5", "203.0.113.5"},
	    {"127.0.0.1", NULL, "127.0.0.1"},
	    {"192.0.2.1", "203.0.113.5", "192.0.2.1"}, /* peer not trusted */
	    {"127.0.0.1", "6.6.6.6, 203.0.113.5", "203.0.113.5"},
	    {"127.0.0.1", "203.0.113.5, 10.0.0.7, 10.0.0.8", "203.0.113.5"},
	    {"127.0.0.1", "10.0.0.7", "10.0.0.7"},             /* all trusted: left-most */
	    {"127.0.0.1", "junk, 203.0.113.5", "203.0.113.5"}, /* left of the client */
	    {"127.0.0.1", "203.0.113.5, junk", "127.0.0.1"},
	    {"127.0.0.1", "", "127.0.0.1"},
	    {"127.0.0.1", "2001:DB8::A", "2001:db8::a"},
	    {"::ffff:127.0.0.1", "203.0.113.5", "203.0.113.5"}, /* mapped peer */
	    {"::1", "203.0.113.5", "203.0.113.5"},
	    {"::2", "203.0.113.5", "::2"},
	};
	struct proxies *p;
	char err[256], out[PROXY_IP_SIZE];

	ck_assert_int_eq(proxies_new(&p), 0);
	ck_assert_int_eq(proxies_add(p, "127.0.0.1/32", err, sizeof(err)), 0);
	ck_assert_int_eq(proxies_add(p, "10.0.0.0/8", err, sizeof(err)), 0);
	ck_assert_int_eq(proxies_add(p, "::1", err, sizeof(err)), 0);
	ck_assert_int_eq(proxies_count(p), 3);
	ck_assert_int_eq(proxies_add(p, "10.0.0.0/6", err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(proxies_count(p), 3);
	ck_assert(proxies_trusted(p, "10.255.255.255"));
	ck_assert(!proxies_trusted(p, "11.0.0.0"));
	ck_assert(!proxies_trusted(p, "127.0.0.2"));
	ck_assert(!proxies_trusted(NULL, "127.0.0.1"));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		proxies_client(p, cases[i].peer, cases[i].xff, out, sizeof(out));
		ck_assert_msg(!strcmp(out, cases[i].want), "%s via %s: got %s, want %s",
		              cases[i].xff ? cases[i].xff : "(none)", cases[i].peer, out,
		              cases[i].want);
	}
	proxies_free(p);
}
END_TEST

Suite *http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("api");

	tcase_add_checked_fixture(tc, start, stop);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, donation_is_recorded_and_counted);
	tcase_add_test(tc, campaign_get_has_etag_and_304);
	tcase_add_test(tc, campaign_list_pages);
	tcase_add_test(tc, admin_needs_token);
	tcase_add_test(tc, pause_resume_close);
	tcase_add_test(tc, update_and_schedule);
	tcase_add_loop_test(tc, bad_input_is_refused, 0,
	                    (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
	tcase_add_test(tc, oversized_and_unknown);
	tcase_add_test(tc, query_arguments_are_read_whole);
	tcase_add_test(tc, static_assets_and_probes);
	tcase_add_test(tc, idempotency_key_replays_and_refuses_reuse);
	tcase_add_test(tc, double_click_records_one_gift);
	tcase_add_test(tc, bad_idempotency_keys);
	tcase_add_test(tc, leaderboard_ranks_incrementally);
	tcase_add_test(tc, rate_limit_answers_429);
	tcase_add_test(tc, trusted_proxy_separates_clients);
	tcase_add_test(tc, untrusted_peer_header_is_ignored);
	tcase_add_test(tc, trusted_proxy_forged_chain_uses_rightmost_untrusted);
	tcase_add_test(tc, trusted_proxy_garbage_falls_back_to_peer);
	tcase_add_test(tc, bad_trusted_proxy_is_refused);
	tcase_add_test(tc, proxy_client_walk);
	tcase_add_test(tc, pipelined_posts_do_not_stall_the_server);
	tcase_add_test(tc, patch_keeps_the_schedule_consistent);
	tcase_add_loop_test(tc, connection_close_closes_after_every_answer, 0,
	                    (int)(sizeof(close_cases) / sizeof(close_cases[0])));
	tcase_add_test(tc, keep_alive_serves_requests_in_a_row);
	tcase_add_test(tc, bodyless_post_closes_instead_of_eating_the_next_request);
	tcase_add_test(tc, content_length_with_transfer_encoding_is_refused);
	tcase_add_test(tc, half_closed_client_gets_its_answer);
	tcase_add_test(tc, cors_only_on_public_answers);
	tcase_add_test(tc, security_headers_on_every_answer);
	tcase_add_test(tc, page_policy_hashes_inline_scripts);
	tcase_add_test(tc, asset_symlinks_stay_inside_the_folder);
	tcase_add_test(tc, bad_request_heads_are_answered);
	tcase_add_test(tc, lws_refusals_close_and_keep_serving);
	suite_add_tcase(s, tc);
	return s;
}
