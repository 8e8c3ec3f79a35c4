/* tests/test_export.c - GET /api/v1/admin/donations.csv against the real
 * binary: real gifts (the mock processor: tok_visa succeeds,
 * tok_chargeDeclined fails), read back with a small RFC 4180 reader and a
 * chunked-body reader of the test's own. The columns and the head, each
 * filter and each bad one, who may export, formula cells neutralised, the
 * quoting, a 20,000-gift export whose rows and sum match SQL while the
 * server's memory stays put, clients that go away mid-stream, and the
 * bound on exports at once. The giving-day columns (offline gifts, pools,
 * challenge awards) are written into a stopped server's database, as the
 * routes that make them belong to other features. */
#include "tests/itest.h"
#include "tests/itest_csv.h"
#include "tests/tests.h"
#include "ws/csv.h"

#include <dirent.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define EXPORT_PATH "/api/v1/admin/donations.csv"
#define NCOLS 20

static const char *const header[NCOLS] = {
    "id",          "created_at", "campaign",     "status",      "source",
    "method",      "currency",   "amount_cents", "fee_cents",   "matched_cents",
    "bonus_cents", "pool",       "donor_name",   "donor_email", "anonymous",
    "message",     "note",       "received_at",  "reason",      "processor_ref",
};

enum {
	C_ID,
	C_CREATED,
	C_CAMPAIGN,
	C_STATUS,
	C_SOURCE,
	C_METHOD,
	C_CURRENCY,
	C_AMOUNT,
	C_FEE,
	C_MATCHED,
	C_BONUS,
	C_POOL,
	C_NAME,
	C_EMAIL,
	C_ANON,
	C_MESSAGE,
	C_NOTE,
	C_RECEIVED,
	C_REASON,
	C_REF
};

static struct itest_server srv;

/* Check's ck_assert* reports every passing check to the runner (a write
 * each): in loops over 20,000 rows that is most of the test's time. This
 * one says nothing until it fails. */
#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			ck_abort_msg(__VA_ARGS__);                                                 \
	} while (0)

static void start(void)
{
	itest_start_with_food(&srv);
}

static void stop(void)
{
	itest_cleanup(&srv);
}

/* ---- requests ---- */

/* GET the export with query ("" or "?..."), as bearer (NULL: none). */
static void get_export(const char *query, const char *bearer, struct itest_resp *r)
{
	char path[512], hdr[256] = "";

	snprintf(path, sizeof(path), EXPORT_PATH "%s", query);
	if (bearer)
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", bearer);
	ck_assert_int_eq(itest_http(srv.port, "GET", path, hdr, NULL, 0, r), 0);
}

/* The export as the admin, parsed: 200, the CSV head, the header row
 * first. */
static void export_ok(const char *query, struct csv_file *f)
{
	struct itest_resp r;
	char v[128];
	size_t n;
	char *csv;

	get_export(query, ITEST_TOKEN, &r);
	ck_assert_msg(r.status == 200, "%s: %d %s", query, r.status, r.body);
	ck_assert_str_eq(itest_header(&r, "content-type", v, sizeof(v)), "text/csv; charset=utf-8");
	ck_assert_str_eq(itest_header(&r, "content-disposition", v, sizeof(v)),
	                 "attachment; filename=\"donations.csv\"");
	ck_assert_str_eq(itest_header(&r, "transfer-encoding", v, sizeof(v)), "chunked");
	ck_assert_ptr_null(itest_header(&r, "content-length", v, sizeof(v)));
	csv = dechunk(r.body, r.len, &n);
	csv_read(csv, n, f);
	ck_assert_uint_ge(f->n, 1);
	ck_assert_int_eq(f->rec[0].n, NCOLS);
	for (int k = 0; k < NCOLS; k++)
		ck_assert_str_eq(f->rec[0].cell[k], header[k]);
	for (size_t i = 1; i < f->n; i++)
		CHECK(f->rec[i].n == NCOLS, "row %zu has %d cells", i, f->rec[i].n);
	free(csv);
	itest_resp_fini(&r);
}

/* Post a gift; returns its id ("dn_N") in id (when not NULL). */
static void give(const char *slug, long long cents, const char *name, const char *message,
                 const char *token, char *id, size_t cap)
{
	json_t *o = json_pack("{s:I,s:s,s:{s:s,s:s},s:s,s:s}", "amount_cents", (json_int_t)cents,
	                      "currency", "USD", "donor", "name", name, "email", "ada@example.org",
	                      "message", message, "payment_token", token);
	char *body = json_dumps(o, JSON_COMPACT), path[128];
	struct itest_resp r;
	json_t *j;

	ck_assert_ptr_nonnull(body);
	snprintf(path, sizeof(path), "/api/v1/campaigns/%s/donations", slug);
	ck_assert_int_eq(itest_post_json(srv.port, path, body, 0, &r), 0);
	ck_assert_msg(r.status == 202, "%s: %d %s", name, r.status, r.body);
	if (id) {
		j = itest_json_body(&r);
		snprintf(id, cap, "%s", json_string_value(json_object_get(j, "id")));
		json_decref(j);
	}
	itest_resp_fini(&r);
	free(body);
	json_decref(o);
}

/* The row of gift id; fails the test when there is none. */
static const struct csv_rec *row_of(const struct csv_file *f, const char *id)
{
	for (size_t i = 1; i < f->n; i++)
		if (!strcmp(f->rec[i].cell[C_ID], id))
			return &f->rec[i];
	ck_abort_msg("%s is not in the export", id);
	return NULL;
}

static void sql_exec(const char *db, const char *sql)
{
	sqlite3 *h;
	char *err = NULL;

	ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
	ck_assert_msg(sqlite3_exec(h, sql, NULL, NULL, &err) == SQLITE_OK, "%s: %s", sql,
	              err ? err : "");
	sqlite3_close(h);
}

/* Stop the server, run sql on its database, start it again. */
static void with_server_stopped(const char *sql)
{
	ck_assert_int_eq(itest_signal(&srv, SIGTERM), 0);
	sql_exec(srv.db, sql);
	ck_assert_int_eq(itest_start(&srv, NULL), 0);
}

static char *token_for(const char *name, const char *role)
{
	char body[128];
	struct itest_resp r;
	json_t *j;
	char *secret;

	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"role\":\"%s\"}", name, role);
	ck_assert_int_eq(itest_post_json(srv.port, "/api/v1/admin/tokens", body, 1, &r), 0);
	ck_assert_int_eq(r.status, 201);
	j = itest_json_body(&r);
	secret = strdup(json_string_value(json_object_get(j, "secret")));
	json_decref(j);
	itest_resp_fini(&r);
	return secret;
}

/* ---- CSV cells ---- */

START_TEST(cells_quote_and_neutralise)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"plain", "plain"},
	    {"", ""},
	    {"=1+2", "'=1+2"},
	    {"+1", "'+1"},
	    {"-1", "'-1"},
	    {"@SUM(A1)", "'@SUM(A1)"},
	    {"\tx", "'\tx"},
	    {"\rx", "\"'\rx\""},
	    {"a,b", "\"a,b\""},
	    {"say \"hi\"", "\"say \"\"hi\"\"\""},
	    {"\"", "\"\"\"\""},
	    {"two\nlines", "\"two\nlines\""},
	    {"=a,\"b\"", "\"'=a,\"\"b\"\"\""},
	    {"a=1", "a=1"},
	    {"Zo\xc3\xab \xe6\x9d\x8e", "Zo\xc3\xab \xe6\x9d\x8e"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b = {0};

		ck_assert_int_eq(csv_text(&b, cases[i].in), 0);
		ck_assert_msg(b.len == strlen(cases[i].out) && !memcmp(b.p, cases[i].out, b.len),
		              "case %zu: got [%.*s]", i, (int)b.len, b.p);
		buf_fini(&b);
	}
	{
		struct buf b = {0};

		ck_assert_int_eq(csv_int(&b, -5), 0); /* a number is never prefixed */
		ck_assert_str_eq(b.p, "-5");
		buf_fini(&b);
	}
}
END_TEST

/* ---- the export ---- */

START_TEST(columns_and_head)
{
	struct csv_file f;
	const struct csv_rec *r;
	char ok[32], bad[32], created[64];
	json_t *j;
	struct itest_resp resp;
	char *raw;

	give("food", 2500, "Ada Lovelace", "For the pantry", "tok_visa", ok, sizeof(ok));
	give("food", 1200, "Bo", "", "tok_chargeDeclined", bad, sizeof(bad));
	ck_assert_int_eq(itest_settle(srv.port), 0);
	j = itest_get_json(srv.port, "/api/v1/admin/donations/dn_1", 1);
	snprintf(created, sizeof(created), "%s",
	         json_string_value(json_object_get(j, "created_at")));
	json_decref(j);

	export_ok("", &f);
	ck_assert_uint_eq(f.n, 3);
	r = row_of(&f, ok);
	ck_assert_str_eq(r->cell[C_ID], "dn_1");
	ck_assert_str_eq(r->cell[C_CREATED], created);
	ck_assert_str_eq(r->cell[C_CAMPAIGN], "food");
	ck_assert_str_eq(r->cell[C_STATUS], "succeeded");
	ck_assert_str_eq(r->cell[C_SOURCE], "online");
	ck_assert_str_eq(r->cell[C_METHOD], "");
	ck_assert_str_eq(r->cell[C_CURRENCY], "USD");
	ck_assert_str_eq(r->cell[C_AMOUNT], "2500");
	ck_assert_str_eq(r->cell[C_FEE], "0");
	ck_assert_str_eq(r->cell[C_MATCHED], "0");
	ck_assert_str_eq(r->cell[C_BONUS], "0");
	ck_assert_str_eq(r->cell[C_POOL], "");
	ck_assert_str_eq(r->cell[C_NAME], "Ada Lovelace");
	ck_assert_str_eq(r->cell[C_EMAIL], "ada@example.org");
	ck_assert_str_eq(r->cell[C_ANON], "false");
	ck_assert_str_eq(r->cell[C_MESSAGE], "For the pantry");
	ck_assert_str_eq(r->cell[C_NOTE], "");
	ck_assert_str_eq(r->cell[C_RECEIVED], "");
	ck_assert_str_eq(r->cell[C_REASON], "");
	ck_assert_str_ne(r->cell[C_REF], "");
	r = row_of(&f, bad);
	ck_assert_str_eq(r->cell[C_STATUS], "failed");
	ck_assert_str_ne(r->cell[C_REASON], "");
	ck_assert_str_eq(r->cell[C_AMOUNT], "1200");
	/* Rows come in id order. */
	ck_assert_str_eq(f.rec[1].cell[C_ID], ok);
	ck_assert_str_eq(f.rec[2].cell[C_ID], bad);
	csv_free(&f);

	/* HTTP/1.0: no chunks, the close ends the file. */
	raw = itest_raw(
	    srv.port,
	    "GET " EXPORT_PATH " HTTP/1.0\r\nAuthorization: Bearer " ITEST_TOKEN "\r\n\r\n",
	    strlen("GET " EXPORT_PATH " HTTP/1.0\r\nAuthorization: Bearer " ITEST_TOKEN "\r\n\r\n"),
	    5000);
	ck_assert_ptr_nonnull(raw);
	ck_assert_msg(!strncmp(raw, "HTTP/1.1 200", 12), "%s", raw);
	ck_assert_ptr_null(strstr(raw, "transfer-encoding"));
	ck_assert_ptr_nonnull(strstr(raw, "\r\n\r\nid,created_at,"));
	{
		const char *body = strstr(raw, "\r\n\r\n") + 4;

		csv_read(body, strlen(body), &f);
		ck_assert_uint_eq(f.n, 3);
		csv_free(&f);
	}
	free(raw);

	/* HEAD: the same head, no body. */
	ck_assert_int_eq(itest_http(srv.port, "HEAD", EXPORT_PATH,
	                            "Authorization: Bearer " ITEST_TOKEN "\r\n", NULL, 0, &resp),
	                 0);
	ck_assert_int_eq(resp.status, 200);
	ck_assert_uint_eq(resp.len, 0);
	itest_resp_fini(&resp);
}
END_TEST

/* One connection, two exports: the zero chunk ends the first, and the
 * connection serves the next request. */
START_TEST(kept_alive_after_an_export)
{
	static const char req[] = "GET " EXPORT_PATH " HTTP/1.1\r\nHost: x\r\nAuthorization: "
	                          "Bearer " ITEST_TOKEN "\r\n\r\n";
	int fd;

	give("food", 2500, "Ada", "", "tok_visa", NULL, 0);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	fd = itest_conn_open(srv.port);
	ck_assert_int_ge(fd, 0);
	for (int k = 0; k < 2; k++) {
		char got[8192];
		size_t n = 0;

		ck_assert_int_eq(itest_send(fd, req, strlen(req)), 0);
		while (n < 5 || memcmp(got + n - 5, "0\r\n\r\n", 5)) {
			struct pollfd p = {fd, POLLIN, 0};
			ssize_t m;

			ck_assert_msg(poll(&p, 1, 5000) == 1, "request %d: no end (%zu bytes)", k,
			              n);
			m = recv(fd, got + n, sizeof(got) - 1 - n, 0);
			ck_assert_msg(m > 0, "request %d: closed after %zu bytes", k, n);
			n += (size_t)m;
		}
		got[n] = '\0';
		ck_assert_msg(!strncmp(got, "HTTP/1.1 200", 12), "%s", got);
		ck_assert_ptr_nonnull(strstr(got, "dn_1,"));
	}
	close(fd);
}
END_TEST

/* Pool, challenge award and offline columns, and fixed times for the
 * time filters: written while the server is stopped. */
static const char giving_day_sql[] =
    "INSERT INTO match_pools (id, slug, name, currency, amount_cents, created_at)"
    " VALUES (1, 'acme-match', 'Acme', 'USD', 100000, 0);"
    "INSERT INTO challenge_awards VALUES (1, 1, 5000, 2, 0), (2, 1, 700, 2, 0);"
    "UPDATE donations SET pool_id = 1, matched_cents = 2500 WHERE id = 1;"
    "UPDATE donations SET source = 'offline', method = 'cheque', note = 'cheque #1042',"
    " received_at = 1796083200000 WHERE id = 3;"
    /* 2026-12-01T00:00:00Z + id hours */
    "UPDATE donations SET created_at = 1796083200000 + id * 3600000;";

START_TEST(filters)
{
	static const struct {
		const char *query;
		const char *ids; /* the rows, in order */
	} cases[] = {
	    {"", "dn_1 dn_2 dn_3 dn_4 dn_5"},
	    {"?campaign=food", "dn_1 dn_2 dn_3"},
	    {"?campaign=rent", "dn_4 dn_5"},
	    {"?status=succeeded", "dn_1 dn_2 dn_3 dn_4"},
	    {"?status=failed", "dn_5"},
	    {"?status=pending", ""},
	    {"?status=refunded", ""},
	    {"?source=offline", "dn_3"},
	    {"?source=online", "dn_1 dn_2 dn_4 dn_5"},
	    {"?from=2026-12-01T02:00:00Z", "dn_2 dn_3 dn_4 dn_5"},
	    {"?to=2026-12-01T03:00:00Z", "dn_1 dn_2"},
	    {"?from=2026-12-01T02:00:00Z&to=2026-12-01T04:00:00Z", "dn_2 dn_3"},
	    {"?from=2026-12-01T02:00:00.001Z", "dn_3 dn_4 dn_5"},
	    {"?from=2026-12-01T03:00:00%2B01:00", "dn_2 dn_3 dn_4 dn_5"},
	    {"?campaign=rent&status=succeeded", "dn_4"},
	    {"?campaign=food&source=offline&from=2026-12-01T03:00:00Z", "dn_3"},
	    {"?to=2026-12-01T01:00:00Z", ""},
	};
	struct csv_file f;
	const struct csv_rec *r;

	ck_assert_int_eq(itest_create_campaign(srv.port, "rent", "USD", 0), 201);
	give("food", 2500, "A", "", "tok_visa", NULL, 0);
	give("food", 1000, "B", "", "tok_visa", NULL, 0);
	give("food", 700, "C", "", "tok_visa", NULL, 0);
	give("rent", 400, "D", "", "tok_visa", NULL, 0);
	give("rent", 300, "E", "", "tok_chargeDeclined", NULL, 0);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	with_server_stopped(giving_day_sql);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char got[256] = "";

		export_ok(cases[i].query, &f);
		for (size_t k = 1; k < f.n; k++)
			snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s",
			         k > 1 ? " " : "", f.rec[k].cell[C_ID]);
		ck_assert_msg(!strcmp(got, cases[i].ids), "%s: [%s], want [%s]", cases[i].query,
		              got, cases[i].ids);
		csv_free(&f);
	}

	export_ok("", &f);
	r = row_of(&f, "dn_1");
	ck_assert_str_eq(r->cell[C_POOL], "acme-match");
	ck_assert_str_eq(r->cell[C_MATCHED], "2500");
	ck_assert_str_eq(r->cell[C_BONUS], "0");
	ck_assert_str_eq(r->cell[C_CREATED], "2026-12-01T01:00:00.000Z");
	r = row_of(&f, "dn_2");
	ck_assert_str_eq(r->cell[C_BONUS], "5700"); /* both awards it unlocked */
	ck_assert_str_eq(r->cell[C_POOL], "");
	r = row_of(&f, "dn_3");
	ck_assert_str_eq(r->cell[C_SOURCE], "offline");
	ck_assert_str_eq(r->cell[C_METHOD], "cheque");
	ck_assert_str_eq(r->cell[C_NOTE], "cheque #1042");
	ck_assert_str_eq(r->cell[C_RECEIVED], "2026-12-01T00:00:00.000Z");
	ck_assert_str_eq(r->cell[C_CAMPAIGN], "food");
	r = row_of(&f, "dn_5");
	ck_assert_str_eq(r->cell[C_CAMPAIGN], "rent");
	ck_assert_str_eq(r->cell[C_STATUS], "failed");
	csv_free(&f);
}
END_TEST

/* With the real match pools and challenges: each gift's pool, match and
 * bonus as the engine stored them. */
START_TEST(pools_and_challenges)
{
	struct itest_resp r;
	struct csv_file f;
	long long matched = 0, bonus = 0;
	char sql[200];

	ck_assert_int_eq(itest_post_json(srv.port, "/api/v1/admin/match-pools",
	                                 "{\"slug\":\"acme\",\"name\":\"Acme\","
	                                 "\"amount_cents\":100000,\"campaigns\":[\"food\"]}",
	                                 1, &r),
	                 0);
	ck_assert_msg(r.status == 201, "%d %s", r.status, r.body);
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_post_json(srv.port, "/api/v1/admin/challenges",
	                                 "{\"slug\":\"two-gifts\",\"name\":\"Two gifts\","
	                                 "\"kind\":\"gifts\",\"threshold\":2,"
	                                 "\"bonus_cents\":5000,\"campaign\":\"food\","
	                                 "\"starts_at\":\"2020-01-01T00:00:00Z\","
	                                 "\"ends_at\":\"2099-01-01T00:00:00Z\"}",
	                                 1, &r),
	                 0);
	ck_assert_msg(r.status == 201, "%d %s", r.status, r.body);
	itest_resp_fini(&r);
	give("food", 1000, "A", "", "tok_visa", NULL, 0);
	give("food", 1200, "B", "", "tok_chargeDeclined", NULL, 0);
	give("food", 1500, "C", "", "tok_visa", NULL, 0);
	give("food", 1700, "D", "", "tok_visa", NULL, 0);
	ck_assert_int_eq(itest_settle(srv.port), 0);

	export_ok("", &f);
	ck_assert_uint_eq(f.n, 5);
	for (size_t i = 1; i < f.n; i++) {
		const struct csv_rec *row = &f.rec[i];
		long long id = atoll(row->cell[C_ID] + 3);

		/* The match a gift has now: none once it failed. */
		snprintf(sql, sizeof(sql),
		         "SELECT CASE WHEN status = 'failed' THEN 0 ELSE matched_cents END"
		         " FROM donations WHERE id = %lld",
		         id);
		ck_assert_int_eq(atoll(row->cell[C_MATCHED]), itest_sql_int(srv.db, sql));
		snprintf(sql, sizeof(sql),
		         "SELECT coalesce(sum(bonus_cents), 0) FROM challenge_awards"
		         " WHERE donation_id = %lld",
		         id);
		ck_assert_int_eq(atoll(row->cell[C_BONUS]), itest_sql_int(srv.db, sql));
		snprintf(sql, sizeof(sql),
		         "SELECT pool_id IS NOT NULL FROM donations WHERE id = %lld", id);
		ck_assert_str_eq(row->cell[C_POOL], itest_sql_int(srv.db, sql) ? "acme" : "");
		matched += atoll(row->cell[C_MATCHED]);
		bonus += atoll(row->cell[C_BONUS]);
	}
	/* The three gifts that succeeded were matched 1:1; the second of
	 * them unlocked the bonus. */
	ck_assert_int_eq(matched, 1000 + 1500 + 1700);
	ck_assert_int_eq(bonus, 5000);
	ck_assert_str_eq(row_of(&f, "dn_3")->cell[C_BONUS], "5000");
	ck_assert_str_eq(row_of(&f, "dn_2")->cell[C_MATCHED], "0");
	ck_assert_str_eq(row_of(&f, "dn_2")->cell[C_POOL], "acme");
	csv_free(&f);

	/* A refund while the pool is open gives the match back. */
	ck_assert_int_eq(itest_post_json(srv.port, "/api/v1/admin/donations/dn_4/refund",
	                                 "{\"reason\":\"asked\"}", 1, &r),
	                 0);
	ck_assert_msg(r.status == 202, "%d %s", r.status, r.body);
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	export_ok("?status=refunded", &f);
	ck_assert_uint_eq(f.n, 2);
	ck_assert_str_eq(f.rec[1].cell[C_ID], "dn_4");
	ck_assert_str_eq(f.rec[1].cell[C_MATCHED], "0");
	ck_assert_str_eq(f.rec[1].cell[C_REASON], "asked");
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT match_released FROM donations WHERE id = 4"),
	                 1);
	csv_free(&f);
}
END_TEST

START_TEST(bad_filters)
{
	static const struct {
		const char *query;
		int status;
		const char *field;
	} cases[] = {
	    {"?x=1", 400, "x"},
	    {"?limit=10", 400, "limit"},
	    {"?status=paid", 400, "status"},
	    {"?status=SUCCEEDED", 400, "status"},
	    {"?status=", 400, "status"},
	    {"?status", 400, "status"},
	    {"?status=failed&status=pending", 400, "status"},
	    {"?source=web", 400, "source"},
	    {"?from=yesterday", 400, "from"},
	    {"?from=2026-12-01", 400, "from"},
	    {"?to=2026-13-01T00:00:00Z", 400, "to"},
	    {"?to=2026-12-01T00:00:00", 400, "to"},
	    {"?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", 400, "to"},
	    {"?from=2026-12-01T00:00:00Z&to=2026-12-01T00:00:00Z", 400, "to"},
	    {"?campaign=Not%20A%20Slug", 400, "campaign"},
	    {"?campaign=", 400, "campaign"},
	    {"?campaign=nope", 404, "campaign"},
	    {"?campaign=food&source=web", 400, "source"},
	    {"?%C3%A9t%C3%A9=1", 400, "??t??"},
	    {"?%FF=1", 400, "?"},
	};

	give("food", 2500, "Ada", "", "tok_visa", NULL, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct itest_resp r;
		char v[128];
		json_t *j, *e;

		get_export(cases[i].query, ITEST_TOKEN, &r);
		ck_assert_msg(r.status == cases[i].status, "%s: %d %s", cases[i].query, r.status,
		              r.body);
		ck_assert_str_eq(itest_header(&r, "content-type", v, sizeof(v)),
		                 "application/json; charset=utf-8");
		j = itest_json_body(&r);
		e = json_object_get(j, "error");
		ck_assert_str_eq(json_string_value(json_object_get(e, "code")),
		                 cases[i].status == 404 ? "campaign_not_found" : "invalid_query");
		ck_assert_ptr_nonnull(json_string_value(json_object_get(e, "message")));
		ck_assert_msg(
		    json_is_string(json_object_get(json_object_get(e, "fields"), cases[i].field)),
		    "%s: fields do not name %s: %s", cases[i].query, cases[i].field, r.body);
		ck_assert_ptr_null(strstr(r.body, "donor_name"));
		json_decref(j);
		itest_resp_fini(&r);
	}
}
END_TEST

START_TEST(admin_only)
{
	char *viewer = token_for("tv", "viewer"), *oper = token_for("to", "operator"),
	     *admin = token_for("ta", "admin");
	struct itest_resp r;
	struct csv_file f;
	json_t *j;

	give("food", 2500, "Ada", "", "tok_visa", NULL, 0);
	get_export("", NULL, &r);
	ck_assert_int_eq(r.status, 401);
	ck_assert_ptr_nonnull(strstr(r.body, "\"unauthorized\""));
	itest_resp_fini(&r);
	get_export("", "tly_not_a_token", &r);
	ck_assert_int_eq(r.status, 401);
	itest_resp_fini(&r);
	/* Before the filters are looked at: a stranger learns nothing. */
	get_export("?campaign=nope", NULL, &r);
	ck_assert_int_eq(r.status, 401);
	itest_resp_fini(&r);
	for (int k = 0; k < 2; k++) {
		get_export(k ? "?x=1" : "", k ? oper : viewer, &r);
		ck_assert_int_eq(r.status, 403);
		j = itest_json_body(&r);
		ck_assert_str_eq(
		    json_string_value(json_object_get(json_object_get(j, "error"), "role_needed")),
		    "admin");
		ck_assert_ptr_null(strstr(r.body, "ada@example.org"));
		json_decref(j);
		itest_resp_fini(&r);
	}
	get_export("", admin, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.body, "ada@example.org"));
	itest_resp_fini(&r);
	export_ok("", &f);
	ck_assert_uint_eq(f.n, 2);
	csv_free(&f);
	free(viewer);
	free(oper);
	free(admin);
}
END_TEST

/* Every formula start through real gifts: '=', '+', '-' and '@' in names
 * and messages as donors send them. TAB and CR never pass the API's
 * validation (a 422, shown here), so they are put in a stored gift's name
 * and message, as an older database or another writer could hold them. */
START_TEST(formulas_neutralised)
{
	static const struct {
		const char *name, *message, *name_cell, *message_cell;
	} cases[] = {
	    {"=HYPERLINK(\"http://x\")", "=1+1", "'=HYPERLINK(\"http://x\")", "'=1+1"},
	    {"+1 555 0100", "+cmd|' /C calc'!A0", "'+1 555 0100", "'+cmd|' /C calc'!A0"},
	    {"-Ada", "-2+3", "'-Ada", "'-2+3"},
	    {"@SUM(A1:A9)", "@home", "'@SUM(A1:A9)", "'@home"},
	    {"Ada =1", "a-b", "Ada =1", "a-b"}, /* only the first character counts */
	};
	struct csv_file f;
	struct itest_resp r;
	char id[8][32];
	size_t n = sizeof(cases) / sizeof(cases[0]);
	const struct csv_rec *row;

	for (size_t i = 0; i < n; i++)
		give("food", 500 + (long long)i, cases[i].name, cases[i].message, "tok_visa", id[i],
		     sizeof(id[i]));
	/* TAB and CR are refused at the door. */
	ck_assert_int_eq(itest_post_json(srv.port, "/api/v1/campaigns/food/donations",
	                                 "{\"amount_cents\":500,\"currency\":\"USD\",\"donor\":{"
	                                 "\"name\":\"\\tTab\",\"email\":\"t@example.org\"},"
	                                 "\"payment_token\":\"tok_visa\"}",
	                                 0, &r),
	                 0);
	ck_assert_int_eq(r.status, 422);
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_post_json(srv.port, "/api/v1/campaigns/food/donations",
	                                 "{\"amount_cents\":500,\"currency\":\"USD\",\"donor\":{"
	                                 "\"name\":\"Ada\",\"email\":\"t@example.org\"},"
	                                 "\"message\":\"\\rCR\",\"payment_token\":\"tok_visa\"}",
	                                 0, &r),
	                 0);
	ck_assert_int_eq(r.status, 422);
	itest_resp_fini(&r);
	give("food", 600, "Tab", "CR", "tok_visa", id[n], sizeof(id[n]));
	ck_assert_int_eq(itest_settle(srv.port), 0);
	with_server_stopped("UPDATE donations SET donor_name = char(9) || 'Tab', message = "
	                    "char(13) || 'CR=1' WHERE donor_name = 'Tab';");

	export_ok("", &f);
	ck_assert_uint_eq(f.n, n + 2);
	for (size_t i = 0; i < n; i++) {
		row = row_of(&f, id[i]);
		ck_assert_str_eq(row->cell[C_NAME], cases[i].name_cell);
		ck_assert_str_eq(row->cell[C_MESSAGE], cases[i].message_cell);
		/* Numbers stay numbers. */
		ck_assert_int_eq(atoi(row->cell[C_AMOUNT]), 500 + (int)i);
	}
	row = row_of(&f, id[n]);
	ck_assert_str_eq(row->cell[C_NAME], "'\tTab");
	ck_assert_str_eq(row->cell[C_MESSAGE], "'\rCR=1");
	csv_free(&f);
}
END_TEST

START_TEST(quoting)
{
	static const struct {
		const char *name, *message;
	} cases[] = {
	    {"Lovelace, Ada", "one, two, three"},
	    {"Ada \"the Countess\" Lovelace", "\"quoted\""},
	    {"Zo\xc3\xab \xe6\x9d\x8e \xf0\x9f\x8e\x89", "Merci \xe2\x9c\x93 \xc3\xa0 tous"},
	    {"Ada", "first line\nsecond line\n\nfourth, \"quoted\""},
	};
	struct csv_file f;
	struct itest_resp r;
	char id[4][32];

	for (size_t i = 0; i < 4; i++)
		give("food", 1000, cases[i].name, cases[i].message, "tok_visa", id[i],
		     sizeof(id[i]));
	ck_assert_int_eq(itest_settle(srv.port), 0);
	export_ok("", &f);
	ck_assert_uint_eq(f.n, 5);
	for (size_t i = 0; i < 4; i++) {
		const struct csv_rec *row = row_of(&f, id[i]);

		ck_assert_str_eq(row->cell[C_NAME], cases[i].name);
		ck_assert_str_eq(row->cell[C_MESSAGE], cases[i].message);
	}
	csv_free(&f);
	/* On the wire: quoted where needed, quotes doubled, the LF inside. */
	get_export("", ITEST_TOKEN, &r);
	ck_assert_ptr_nonnull(strstr(r.body, ",\"Lovelace, Ada\","));
	ck_assert_ptr_nonnull(strstr(r.body, ",\"Ada \"\"the Countess\"\" Lovelace\","));
	ck_assert_ptr_nonnull(strstr(r.body, ",\"first line\nsecond line\n\nfourth, "
	                                     "\"\"quoted\"\"\","));
	ck_assert_ptr_nonnull(strstr(r.body, ",Zo\xc3\xab \xe6\x9d\x8e \xf0\x9f\x8e\x89,"));
	itest_resp_fini(&r);
}
END_TEST

/* ---- a large export ---- */

#define LARGE_GIFTS 20000

/* 20,000 gifts over two campaigns, written into the stopped server's
 * database in one transaction (through the API it would take minutes
 * here); amounts vary, messages are long, some need quoting. */
static void large_database(void)
{
	/* Under AddressSanitizer, freed memory waits in a quarantine (256 MiB
	 * by default) instead of being reused, so a server's RSS grows with
	 * whatever it allocates and frees, streaming or not: the server
	 * started below keeps none, so its RSS means the same as a release
	 * build's. (This test's process only: Check forks each test.) */
	const char *asan = getenv("ASAN_OPTIONS");
	char opts[1024];

	snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=0:thread_local_quarantine_size_kb=0",
	         asan ? asan : "", asan && *asan ? ":" : "");
	ck_assert_int_eq(setenv("ASAN_OPTIONS", opts, 1), 0);
	ck_assert_int_eq(itest_create_campaign(srv.port, "rent", "USD", 0), 201);
	with_server_stopped(
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)"
	    " INSERT INTO donations (campaign_id, amount_cents, currency, donor_name, donor_email,"
	    " message, payment_token, status, created_at, processor_ref)"
	    " SELECT 1 + i % 2, 100 + (i * 7919) % 100000, 'USD', 'Donor ' || i || ', \"the\" "
	    "giver', 'donor' || i || '@example.org', printf('%.200c', 'm') || i,"
	    " 'tok_visa', CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'succeeded' END,"
	    " 1796083200000 + i, 'ch_' || i FROM n;");
}

/* The server's resident memory now ("VmRSS") or at its peak ("VmHWM"),
 * in KiB. */
static long vm_kib(pid_t pid, const char *what)
{
	char path[64], line[256], fmt[32];
	long kib = -1;
	FILE *f;

	snprintf(fmt, sizeof(fmt), "%s: %%ld kB", what);

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, fmt, &kib) == 1)
			break;
	fclose(f);
	ck_assert_int_gt(kib, 0);
	return kib;
}

START_TEST(large_export_streams_whole)
{
	struct csv_file f;
	struct itest_resp r;
	long long sum = 0, want_sum, want_n;
	long before, after, peak_before, peak_after;
	size_t csv_len;
	char *csv;

	large_database();
	want_n = itest_sql_int(srv.db, "SELECT count(*) FROM donations");
	want_sum = itest_sql_int(srv.db, "SELECT sum(amount_cents) FROM donations");
	ck_assert_int_eq(want_n, LARGE_GIFTS);
	/* A small export first: what any export allocates once is in. */
	export_ok("?status=pending", &f);
	ck_assert_uint_eq(f.n, 1);
	csv_free(&f);
	before = vm_kib(srv.pid, "VmRSS");
	peak_before = vm_kib(srv.pid, "VmHWM");

	get_export("", ITEST_TOKEN, &r);
	ck_assert_int_eq(r.status, 200);
	after = vm_kib(srv.pid, "VmRSS");
	peak_after = vm_kib(srv.pid, "VmHWM");
	csv = dechunk(r.body, r.len, &csv_len);
	itest_resp_fini(&r);
	csv_read(csv, csv_len, &f);
	ck_assert_uint_eq(f.n, (size_t)want_n + 1);
	for (size_t i = 1; i < f.n; i++)
		sum += atoll(f.rec[i].cell[C_AMOUNT]);
	ck_assert_int_eq(sum, want_sum);
	ck_assert_str_eq(f.rec[1].cell[C_ID], "dn_1");
	ck_assert_str_eq(f.rec[f.n - 1].cell[C_ID], "dn_20000");
	ck_assert_str_eq(f.rec[7].cell[C_NAME], "Donor 7, \"the\" giver");
	csv_free(&f);
	/* The server's memory does not follow the file: a bound far below
	 * the file's size (about 7 MiB here), on what it holds after the
	 * export and on its peak (a server that built the file whole and
	 * freed it would pass the first). */
	ck_assert_uint_gt(csv_len, 6u << 20);
	ck_assert_msg(after - before < 2048, "RSS grew by %ld KiB for a %zu-byte export",
	              after - before, csv_len);
	ck_assert_msg(peak_after - peak_before < 2048,
	              "peak RSS grew by %ld KiB for a %zu-byte export", peak_after - peak_before,
	              csv_len);
	free(csv);

	/* The filters meet the page boundaries: the sum of each campaign's. */
	export_ok("?campaign=rent&status=succeeded", &f);
	ck_assert_uint_eq(f.n, (size_t)itest_sql_int(srv.db, "SELECT count(*) FROM donations"
	                                                     " WHERE campaign_id = 2 AND status = "
	                                                     "'succeeded'") +
	                           1);
	sum = 0;
	for (size_t i = 1; i < f.n; i++)
		sum += atoll(f.rec[i].cell[C_AMOUNT]);
	ck_assert_int_eq(sum, itest_sql_int(srv.db, "SELECT sum(amount_cents) FROM donations"
	                                            " WHERE campaign_id = 2 AND status = "
	                                            "'succeeded'"));
	csv_free(&f);
}
END_TEST

/* A raw export request whose reader takes little: returns the fd once the
 * answer's head came (its status in *status). */
static int slow_export(int *status)
{
	static const char req[] = "GET " EXPORT_PATH " HTTP/1.1\r\nHost: x\r\nAuthorization: "
	                          "Bearer " ITEST_TOKEN "\r\n\r\n";
	int fd = itest_conn_open(srv.port), small = 4096;
	char head[2048];

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	ck_assert_int_eq(itest_send(fd, req, strlen(req)), 0);
	ck_assert_int_eq(itest_read_head(fd, head, sizeof(head), 5000), 0);
	ck_assert_int_eq(sscanf(head, "HTTP/1.1 %d", status), 1);
	return fd;
}

/* An export as the admin, retried while the server still counts exports
 * whose clients went away (it notices at its next write): 200 in the end. */
static void export_eventually(struct csv_file *f)
{
	for (int k = 0; k < 100 * itest_slowdown(); k++) {
		struct itest_resp r;
		int st;

		get_export("?status=pending", ITEST_TOKEN, &r);
		st = r.status;
		ck_assert_msg(st == 200 || st == 503, "%d %s", st, r.body);
		itest_resp_fini(&r);
		if (st == 200) {
			export_ok("?status=pending", f);
			return;
		}
		ck_assert_int_eq(poll(NULL, 0, 50), 0); /* the server's next write */
	}
	ck_abort_msg("exports stay busy after their clients left");
}

/* How many descriptors the server has open on its database file: the
 * engine's connections', and one for each export open. (SQLite keeps a
 * closed connection's descriptor while other connections hold locks on
 * the file, and gives it to the next connection that opens it: so the
 * count is taken after a first export.) */
static int db_fds(void)
{
	char path[64], link[600], target[600];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)srv.pid);
	d = opendir(path);
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		ssize_t len;

		snprintf(link, sizeof(link), "%s/%s", path, e->d_name);
		len = readlink(link, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		n += !strcmp(target, srv.db);
	}
	closedir(d);
	return n;
}

START_TEST(clients_that_leave_free_their_export)
{
	struct csv_file f;
	int fds;

	large_database();
	export_eventually(&f); /* what a first export leaves open is open */
	csv_free(&f);
	fds = db_fds();
	ck_assert_int_gt(fds, 0); /* the engine's own */
	/* Clients that read a little, then close with data unread (a reset). */
	for (int k = 0; k < 6; k++) {
		char part[3000];
		int st, fd = slow_export(&st);

		ck_assert_int_eq(st, 200);
		ck_assert_int_gt(recv(fd, part, sizeof(part), 0), 0);
		close(fd);
	}
	export_eventually(&f);
	csv_free(&f);
	/* Their SQLite connections are closed. */
	ck_assert_int_eq(db_fds(), fds);
	ck_assert_int_eq(itest_donate(srv.port, "food", 2500, "Ada", "ada@example.org"), 202);
	/* And a server that stops with exports running frees them. */
	{
		int st, fd = slow_export(&st);

		ck_assert_int_eq(st, 200);
		ck_assert_int_eq(itest_signal(&srv, SIGTERM), 0);
		close(fd);
		ck_assert_int_eq(itest_start(&srv, NULL), 0);
	}
}
END_TEST

START_TEST(at_most_four_at_once)
{
	struct itest_resp r;
	struct csv_file f;
	char v[16];
	int fd[4];

	large_database();
	for (int k = 0; k < 4; k++) {
		int st;

		fd[k] = slow_export(&st);
		ck_assert_int_eq(st, 200);
	}
	get_export("", ITEST_TOKEN, &r);
	ck_assert_int_eq(r.status, 503);
	ck_assert_ptr_nonnull(strstr(r.body, "\"export_busy\""));
	ck_assert_ptr_nonnull(itest_header(&r, "retry-after", v, sizeof(v)));
	ck_assert_int_gt(atoi(v), 0);
	itest_resp_fini(&r);
	/* Donors are served meanwhile. */
	ck_assert_int_eq(itest_donate(srv.port, "food", 2500, "Ada", "ada@example.org"), 202);
	for (int k = 0; k < 4; k++)
		close(fd[k]);
	export_eventually(&f);
	csv_free(&f);
}
END_TEST

Suite *export_suite(void)
{
	Suite *s = suite_create("export");
	TCase *unit = tcase_create("cells");
	TCase *tc = tcase_create("export");
	TCase *big = tcase_create("large");

	tcase_add_test(unit, cells_quote_and_neutralise);
	tcase_add_unchecked_fixture(tc, tests_root_setup, tests_root_teardown);
	tcase_add_unchecked_fixture(big, tests_root_setup, tests_root_teardown);
	suite_add_tcase(s, unit);

	tcase_add_checked_fixture(tc, start, stop);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, columns_and_head);
	tcase_add_test(tc, kept_alive_after_an_export);
	tcase_add_test(tc, filters);
	tcase_add_test(tc, pools_and_challenges);
	tcase_add_test(tc, bad_filters);
	tcase_add_test(tc, admin_only);
	tcase_add_test(tc, formulas_neutralised);
	tcase_add_test(tc, quoting);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(big, start, stop);
	tcase_set_timeout(big, 90);
	tcase_add_test(big, large_export_streams_whole);
	tcase_add_test(big, clients_that_leave_free_their_export);
	tcase_add_test(big, at_most_four_at_once);
	suite_add_tcase(s, big);
	return s;
}
