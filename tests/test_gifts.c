/* tests/test_gifts.c - offline gifts entered by staff (cheques, cash,
 * donor-advised funds) and processing fees covered by donors: the fee's
 * arithmetic and the offline body's checks, then the real binary with the
 * SMTP sink and the webhook receiver (tests/tools). */
#include "base/fee.h"
#include "core/validate.h"
#include "tests/itest.h"
#include "tui/console_fmt.h"
#include "tests/tests.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- unit: the fee ---- */

START_TEST(fee_parses_and_rounds_up)
{
	struct fee_rule f = {-1, -1};

	ck_assert_int_eq(fee_parse("2.2%+30", &f), 0);
	ck_assert_int_eq(f.bp, 220);
	ck_assert_int_eq(f.fixed, 30);
	ck_assert_int_eq(fee_offered(&f), 1);
	/* ceil(2500 x 2.2 %) = 55, + 30. */
	ck_assert_int_eq(fee_compute(&f, 2500), 85);
	/* 2.2 % of 101 is 2.222: rounded up to 3. */
	ck_assert_int_eq(fee_compute(&f, 101), 33);
	/* An exact percentage is not rounded further. */
	ck_assert_int_eq(fee_compute(&f, 10000), 250);
	ck_assert_int_eq(fee_parse("2.25%+0", &f), 0);
	ck_assert_int_eq(f.bp, 225);
	ck_assert_int_eq(fee_compute(&f, 1), 1);
	ck_assert_int_eq(fee_compute(&f, TALLY_AMOUNT_MAX), 22500000000LL);
	ck_assert_int_eq(fee_parse("0%+0", &f), 0);
	ck_assert_int_eq(fee_offered(&f), 0);
	ck_assert_int_eq(fee_compute(&f, 2500), 0);
	ck_assert_int_eq(fee_parse("20%+100000", &f), 0);
	ck_assert_int_eq(f.bp, 2000);
	ck_assert_int_eq(fee_parse("0%+30", &f), 0);
	ck_assert_int_eq(fee_offered(&f), 1);
	ck_assert_int_eq(fee_compute(&f, 5000), 30);
}
END_TEST

START_TEST(fee_refuses_anything_else)
{
	static const char *const bad[] = {
	    "",       "2.2",      "2.2%",     "2.2%+",   "%+30",      "2.2+30", "2.2%30",
	    "2.%+30", "2.222%+1", "20.01%+0", "21%+0",   "2%+100001", "-1%+0",  "2%+-1",
	    "2%+3x",  " 2%+3",    "2%+3 ",    "2,5%+30", "1e1%+0",    "2%+30%", "9999999%+0",
	};
	struct fee_rule f = {7, 7};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(fee_parse(bad[i], &f) == -1, "'%s' was taken", bad[i]);
		ck_assert_int_eq(f.bp, 7);
		ck_assert_int_eq(f.fixed, 7);
	}
}
END_TEST

/* ---- unit: the offline body ---- */

#define NOW_MS 1800000000000LL /* 2027-01-15 */

START_TEST(offline_body_is_checked_field_by_field)
{
	static const struct {
		const char *body, *field;
	} bad[] = {
	    {"{\"method\":\"cheque\",\"donor\":{\"name\":\"A\"}}", "amount_cents"},
	    {"{\"amount_cents\":0,\"method\":\"cash\",\"donor\":{\"name\":\"A\"}}", "amount_cents"},
	    {"{\"amount_cents\":-5,\"method\":\"cash\",\"donor\":{\"name\":\"A\"}}",
	     "amount_cents"},
	    {"{\"amount_cents\":1000000000001,\"method\":\"cash\",\"donor\":{\"name\":\"A\"}}",
	     "amount_cents"},
	    {"{\"amount_cents\":2.5,\"method\":\"cash\",\"donor\":{\"name\":\"A\"}}",
	     "amount_cents"},
	    {"{\"amount_cents\":\"25\",\"method\":\"cash\",\"donor\":{\"name\":\"A\"}}",
	     "amount_cents"},
	    {"{\"amount_cents\":25,\"donor\":{\"name\":\"A\"}}", "method"},
	    {"{\"amount_cents\":25,\"method\":\"card\",\"donor\":{\"name\":\"A\"}}", "method"},
	    {"{\"amount_cents\":25,\"method\":7,\"donor\":{\"name\":\"A\"}}", "method"},
	    {"{\"amount_cents\":25,\"method\":\"cash\"}", "donor"},
	    {"{\"amount_cents\":25,\"method\":\"cash\",\"donor\":\"A\"}", "donor"},
	    {"{\"amount_cents\":25,\"method\":\"cash\",\"donor\":{}}", "donor.name"},
	    {"{\"amount_cents\":25,\"method\":\"cash\",\"donor\":{\"name\":\"  \"}}", "donor.name"},
	    {"{\"amount_cents\":25,\"method\":\"cash\",\"donor\":{\"name\":\"A\",\"email\":\"x\"}}",
	     "donor.email"},
	    {"{\"amount_cents\":25,\"method\":\"cash\",\"currency\":\"usd\",\"donor\":{\"name\":"
	     "\"A\"}}",
	     "currency"},
	    {"{\"amount_cents\":25,\"method\":\"cash\",\"anonymous\":1,\"donor\":{\"name\":\"A\"}}",
	     "anonymous"},
	    {"{\"amount_cents\":25,\"method\":\"cash\",\"note\":5,\"donor\":{\"name\":\"A\"}}",
	     "note"},
	    {"{\"amount_cents\":25,\"method\":\"cash\",\"received_at\":\"yesterday\",\"donor\":{"
	     "\"name\":\"A\"}}",
	     "received_at"},
	    {"{\"amount_cents\":25,\"method\":\"cash\",\"received_at\":\"2027-02-01T00:00:00Z\","
	     "\"donor\":{\"name\":\"A\"}}",
	     "received_at"},
	    {"{\"amount_cents\":25,\"method\":\"cash\",\"receipt\":true,\"donor\":{\"name\":\"A\"}"
	     "}",
	     "receipt"},
	    {"{\"amount_cents\":25,\"method\":\"cash\",\"receipt\":\"yes\",\"donor\":{\"name\":"
	     "\"A\"}}",
	     "receipt"},
	};
	struct validate_error err = {{0}, NULL};
	struct offline_req o;
	char note[TALLY_NOTE_MAX + 120];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = validate_offline(bad[i].body, strlen(bad[i].body), NOW_MS, &o, &err);

		ck_assert_msg(rc == TALLY_EFIELDS, "%s: rc %d", bad[i].body, rc);
		ck_assert_msg(json_object_get(err.fields, bad[i].field), "%s: no message for %s",
		              bad[i].body, bad[i].field);
		validate_error_fini(&err);
	}
	/* A note one character too long. */
	snprintf(
	    note, sizeof(note),
	    "{\"amount_cents\":25,\"method\":\"daf\",\"donor\":{\"name\":\"A\"},\"note\":\"%0*d\"}",
	    TALLY_NOTE_MAX + 1, 0);
	ck_assert_int_eq(validate_offline(note, strlen(note), NOW_MS, &o, &err), TALLY_EFIELDS);
	ck_assert_ptr_nonnull(json_object_get(err.fields, "note"));
	validate_error_fini(&err);
	ck_assert_int_eq(validate_offline("[1]", 3, NOW_MS, &o, &err), TALLY_EJSON);
	validate_error_fini(&err);

	/* The whole shape, taken. */
	{
		const char *ok =
		    "{\"amount_cents\":250000,\"currency\":\"USD\",\"method\":\"daf\","
		    "\"donor\":{\"name\":\"Grace\",\"email\":\"grace@example.org\"},"
		    "\"anonymous\":true,\"message\":\"For the pantry\",\"note\":\"DAF "
		    "grant #77\",\"received_at\":\"2027-01-14T09:30:00Z\",\"receipt\":true}";

		ck_assert_int_eq(validate_offline(ok, strlen(ok), NOW_MS, &o, &err), TALLY_OK);
		ck_assert_int_eq(o.d.amount_cents, 250000);
		ck_assert_str_eq(o.d.currency, "USD");
		ck_assert_int_eq(o.method, METHOD_DAF);
		ck_assert_str_eq(o.d.email, "grace@example.org");
		ck_assert_int_eq(o.d.anonymous, 1);
		ck_assert_str_eq(o.note, "DAF grant #77");
		ck_assert_int_eq(o.received_at, 1799919000000LL);
		ck_assert_int_eq(o.receipt, 1);
	}
}
END_TEST

/* cover_fee is read by both donation parsers. */
START_TEST(cover_fee_is_parsed)
{
	static const struct donation_limits lim = {100, 100000000};
	struct validate_error err = {{0}, NULL};
	struct donation_req d;
	const char *yes = "{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":\"Ada\","
	                  "\"email\":\"ada@example.org\"},\"cover_fee\":true}";
	const char *bad = "{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":\"Ada\","
	                  "\"email\":\"ada@example.org\"},\"cover_fee\":\"yes\"}";

	ck_assert_int_eq(validate_donation(yes, strlen(yes), &lim, &d, &err), TALLY_OK);
	ck_assert_int_eq(d.cover_fee, 1);
	ck_assert_int_eq(validate_donation_full(yes, strlen(yes), &lim, &d, &err), TALLY_OK);
	ck_assert_int_eq(d.cover_fee, 1);
	ck_assert_int_eq(validate_donation(bad, strlen(bad), &lim, &d, &err), TALLY_EFIELDS);
	ck_assert_ptr_nonnull(json_object_get(err.fields, "cover_fee"));
	validate_error_fini(&err);
}
END_TEST

/* The console's offline form reads amounts in major units, by the
 * currency's exponent. */
START_TEST(console_reads_amounts)
{
	static const struct {
		const char *s, *cur;
		long long want; /* -1: refused */
	} cases[] = {
	    {"250", "USD", 25000},
	    {"250.5", "USD", 25050},
	    {"250.05", "USD", 25005},
	    {"1,250.00", "USD", 125000},
	    {"0.01", "usd", 1},
	    {"5000", "JPY", 5000},
	    {"1.234", "KWD", 1234},
	    {"10000000000", "USD", 1000000000000LL},
	    {"5000.5", "JPY", -1},
	    {"250.005", "USD", -1},
	    {"", "USD", -1},
	    {"0", "USD", -1},
	    {"-5", "USD", -1},
	    {"25.", "USD", -1},
	    {".5", "USD", -1},
	    {"2x", "USD", -1},
	    {"1.2.3", "USD", -1},
	    {"10000000000.01", "USD", -1},
	    {"99999999999999", "JPY", -1},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t v = -7;
		int rc = console_fmt_parse_money(cases[i].s, cases[i].cur, &v);

		if (cases[i].want < 0)
			ck_assert_msg(rc == -1 && v == -7, "'%s' %s was taken as %lld", cases[i].s,
			              cases[i].cur, (long long)v);
		else
			ck_assert_msg(rc == 0 && v == cases[i].want, "'%s' %s: rc %d, %lld",
			              cases[i].s, cases[i].cur, rc, (long long)v);
	}
}
END_TEST

/* ---- integration helpers ---- */

static struct itest_server srv;
static struct itest_tool smtp, hook;

static void setup(void)
{
	memset(&srv, 0, sizeof(srv));
	memset(&smtp, 0, sizeof(smtp));
	memset(&hook, 0, sizeof(hook));
}

static void teardown(void)
{
	itest_cleanup(&srv);
	itest_tool_stop(&smtp);
	itest_tool_stop(&hook);
}

/* Start tally with extra args and a USD campaign "food". */
static void start(const char *extra)
{
	char args[1024];

	snprintf(args, sizeof(args), "--job-retention-s 0 %s", extra ? extra : "");
	ck_assert_msg(itest_start(&srv, args) == 0, "tally did not start");
	ck_assert_int_eq(itest_create_campaign(srv.port, "food", "USD", 100000), 201);
}

/* A POST with bearer (NULL: none), a JSON body and an Idempotency-Key
 * (NULL: none). */
static int post(const char *path, const char *bearer, const char *key, const char *body,
                struct itest_resp *r)
{
	char h[512] = "Content-Type: application/json\r\n", line[300];

	if (bearer) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s\r\n", bearer);
		strncat(h, line, sizeof(h) - strlen(h) - 1);
	}
	if (key) {
		snprintf(line, sizeof(line), "Idempotency-Key: %s\r\n", key);
		strncat(h, line, sizeof(h) - strlen(h) - 1);
	}
	return itest_http(srv.port, "POST", path, h, body, strlen(body), r);
}

/* Record an offline gift to campaign slug as the startup admin; returns
 * the status, the id in id (when 201). */
static int offline(const char *slug, const char *key, const char *body, char *id, size_t cap)
{
	char path[160];
	struct itest_resp r;
	int st;

	snprintf(path, sizeof(path), "/api/v1/admin/campaigns/%s/offline-donations", slug);
	ck_assert_int_eq(post(path, ITEST_TOKEN, key, body, &r), 0);
	st = r.status;
	if (st == 201 && id) {
		json_t *v = itest_json_body(&r);

		snprintf(id, cap, "%s", json_string_value(json_object_get(v, "id")));
		json_decref(v);
	}
	itest_resp_fini(&r);
	return st;
}

/* The error code of a failed answer, and its field's message present. */
static void expect_error(const struct itest_resp *r, int status, const char *code,
                         const char *field)
{
	json_t *v = itest_json_body(r), *e = json_object_get(v, "error");

	ck_assert_msg(r->status == status, "status %d, want %d: %s", r->status, status, r->body);
	ck_assert_str_eq(json_string_value(json_object_get(e, "code")), code);
	if (field)
		ck_assert_msg(json_object_get(json_object_get(e, "fields"), field),
		              "no message for %s: %s", field, r->body);
	json_decref(v);
}

static long long sql(const char *q)
{
	return itest_sql_int(srv.db, q);
}

static json_t *campaign(const char *slug)
{
	char path[128];

	snprintf(path, sizeof(path), "/api/v1/campaigns/%s", slug);
	return itest_get_json(srv.port, path, 0);
}

static int count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* A mail the SMTP sink wrote, the one whose text has needle. */
static char *mail_with(const char *dir, const char *needle)
{
	for (int i = 1; i <= 10; i++) {
		char path[700], *m;

		snprintf(path, sizeof(path), "%s/%d.eml", dir, i);
		if (access(path, F_OK))
			break;
		m = itest_slurp(path);
		if (strstr(m, needle))
			return m;
		free(m);
	}
	ck_assert_msg(0, "no mail has %s", needle);
	return NULL;
}

#define CHEQUE                                                                                     \
	"{\"amount_cents\":2500,\"method\":\"cheque\",\"donor\":{\"name\":\"Ada\"},\"message\":"   \
	"\"From the bake sale\",\"note\":\"cheque #1042\",\"received_at\":"                        \
	"\"2026-11-30T10:00:00Z\"}"

/* ---- integration: offline gifts ---- */

/* Counted at once (no job, no settle) everywhere a reader looks, with a
 * live donation event; stored as staff said; audited; idempotent. */
START_TEST(offline_gift_counts_at_once)
{
	char id[32], id2[32], q[256], hv[16];
	struct itest_resp r;
	json_t *c, *lb, *v, *e0;
	char *m;
	int fd;

	start(NULL);
	fd = itest_ws_connect(srv.port, "/live", "tally.live.v1", NULL);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(itest_ws_send(fd, "{\"op\":\"subscribe\",\"channel\":\"campaign:food\"}"),
	                 0);
	m = itest_ws_wait_for(fd, "\"snapshot\"", 5000);
	ck_assert_ptr_nonnull(m);
	free(m);

	ck_assert_int_eq(post("/api/v1/admin/campaigns/food/offline-donations", ITEST_TOKEN,
	                      "chq-1", CHEQUE, &r),
	                 0);
	ck_assert_msg(r.status == 201, "%d %s", r.status, r.body);
	v = itest_json_body(&r);
	ck_assert_str_eq(json_string_value(json_object_get(v, "status")), "succeeded");
	ck_assert_str_eq(json_string_value(json_object_get(v, "source")), "offline");
	ck_assert_str_eq(json_string_value(json_object_get(v, "method")), "cheque");
	ck_assert_str_eq(json_string_value(json_object_get(v, "currency")), "USD");
	ck_assert_str_eq(json_string_value(json_object_get(v, "received_at")),
	                 "2026-11-30T10:00:00.000Z");
	ck_assert_int_eq(itest_json_int(v, "amount_cents"), 2500);
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(v, "id")));
	json_decref(v);
	itest_resp_fini(&r);

	/* Counted by the time the 201 came: no capture to wait for. */
	c = campaign("food");
	ck_assert_int_eq(itest_json_int(c, "raised_cents"), 2500);
	ck_assert_int_eq(itest_json_int(c, "total_cents"), 2500);
	ck_assert_int_eq(itest_json_int(c, "pending_cents"), 0);
	ck_assert_int_eq(itest_json_int(c, "donation_count"), 1);
	ck_assert_int_eq(itest_json_int(c, "donor_count"), 1);
	e0 = json_array_get(json_object_get(c, "recent"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(e0, "name")), "Ada");
	ck_assert_int_eq(itest_json_int(e0, "amount_cents"), 2500);
	json_decref(c);
	lb = itest_get_json(srv.port, "/api/v1/leaderboard?by=total", 0);
	e0 = json_array_get(json_object_get(lb, "entries"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(e0, "slug")), "food");
	ck_assert_int_eq(itest_json_int(e0, "total_cents"), 2500);
	ck_assert_int_eq(itest_json_int(e0, "donor_count"), 1);
	json_decref(lb);
	m = itest_ws_wait_for(fd, "\"type\":\"donation\"", 5000);
	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_nonnull(strstr(m, "\"name\":\"Ada\""));
	ck_assert_ptr_nonnull(strstr(m, "\"amount_cents\":2500"));
	ck_assert_ptr_null(strstr(m, "cheque #1042")); /* the note is staff's */
	free(m);
	close(fd);

	/* Stored as staff entered it, never through the processor. */
	snprintf(q, sizeof(q),
	         "SELECT count(*) FROM donations WHERE id = %s AND source = 'offline' AND"
	         " method = 'cheque' AND note = 'cheque #1042' AND status = 'succeeded' AND"
	         " received_at = 1796032800000 AND fee_cents = 0 AND payment_token = ''",
	         id + 3);
	ck_assert_int_eq(sql(q), 1);
	ck_assert_int_eq(sql("SELECT count(*) FROM jobs"), 0);
	ck_assert_int_eq(sql("SELECT raised_cents FROM campaigns WHERE slug = 'food'"), 2500);
	ck_assert_int_eq(sql("SELECT count(*) FROM audit WHERE action = 'offline_gift' AND"
	                     " actor LIKE 'admin@%' AND target = 'food' AND detail LIKE"
	                     " '% 2500 USD cheque'"),
	                 1);
	v = itest_get_json(srv.port, "/api/v1/admin/audit?limit=1", 1);
	e0 = json_array_get(json_object_get(v, "entries"), 0);
	ck_assert_ptr_nonnull(e0);
	ck_assert_str_eq(json_string_value(json_object_get(e0, "action")), "offline_gift");
	json_decref(v);
	snprintf(q, sizeof(q), "/api/v1/admin/donations/%s", id);
	v = itest_get_json(srv.port, q, 1);
	ck_assert_str_eq(json_string_value(json_object_get(v, "source")), "offline");
	ck_assert_str_eq(json_string_value(json_object_get(v, "note")), "cheque #1042");
	ck_assert_str_eq(json_string_value(json_object_get(v, "method")), "cheque");
	json_decref(v);

	/* The same key and body: the first answer again, nothing new. */
	ck_assert_int_eq(post("/api/v1/admin/campaigns/food/offline-donations", ITEST_TOKEN,
	                      "chq-1", CHEQUE, &r),
	                 0);
	ck_assert_int_eq(r.status, 201);
	ck_assert_ptr_nonnull(itest_header(&r, "idempotent-replayed", hv, sizeof(hv)));
	ck_assert_str_eq(hv, "true");
	v = itest_json_body(&r);
	ck_assert_str_eq(json_string_value(json_object_get(v, "id")), id);
	json_decref(v);
	itest_resp_fini(&r);
	/* The same key, another body: refused, nothing written. */
	ck_assert_int_eq(post("/api/v1/admin/campaigns/food/offline-donations", ITEST_TOKEN,
	                      "chq-1",
	                      "{\"amount_cents\":2600,\"method\":\"cheque\",\"donor\":{\"name\":"
	                      "\"Ada\"}}",
	                      &r),
	                 0);
	expect_error(&r, 422, "idempotency_key_reused", NULL);
	itest_resp_fini(&r);
	/* Nor may a donor's request take the key. */
	ck_assert_int_eq(post("/api/v1/campaigns/food/donations", NULL, "chq-1",
	                      "{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":"
	                      "\"Ada\",\"email\":\"ada@example.org\"}}",
	                      &r),
	                 0);
	expect_error(&r, 422, "idempotency_key_reused", NULL);
	itest_resp_fini(&r);
	ck_assert_int_eq(sql("SELECT count(*) FROM donations"), 1);

	/* A second gift without an email is a donor of its own; cash. */
	ck_assert_int_eq(offline("food", NULL,
	                         "{\"amount_cents\":500,\"method\":\"cash\",\"anonymous\":true,"
	                         "\"donor\":{\"name\":\"Bob\"}}",
	                         id2, sizeof(id2)),
	                 201);
	c = campaign("food");
	ck_assert_int_eq(itest_json_int(c, "raised_cents"), 3000);
	ck_assert_int_eq(itest_json_int(c, "donor_count"), 2);
	ck_assert_int_eq(itest_json_int(c, "donation_count"), 2);
	e0 = json_array_get(json_object_get(c, "recent"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(e0, "name")), "Anonymous");
	json_decref(c);
	/* received_at absent: when it was recorded. */
	snprintf(q, sizeof(q), "SELECT received_at = created_at FROM donations WHERE id = %s",
	         id2 + 3);
	ck_assert_int_eq(sql(q), 1);
}
END_TEST

/* After a restart the key is answered from the database, the gift from
 * the stored numbers. */
START_TEST(offline_gift_survives_a_restart)
{
	char id[32], again[32];
	json_t *c;

	start(NULL);
	ck_assert_int_eq(offline("food", "chq-9", CHEQUE, id, sizeof(id)), 201);
	ck_assert_int_eq(WEXITSTATUS(itest_signal(&srv, SIGTERM)), 0);
	ck_assert_int_eq(itest_start(&srv, NULL), 0);
	ck_assert_int_eq(offline("food", "chq-9", CHEQUE, again, sizeof(again)), 201);
	ck_assert_str_eq(again, id);
	ck_assert_int_eq(
	    offline("food", "chq-9",
	            "{\"amount_cents\":1,\"method\":\"cash\",\"donor\":{\"name\":\"A\"}}", NULL, 0),
	    422);
	c = campaign("food");
	ck_assert_int_eq(itest_json_int(c, "raised_cents"), 2500);
	ck_assert_int_eq(itest_json_int(c, "donation_count"), 1);
	ck_assert_int_eq(json_array_size(json_object_get(c, "recent")), 1);
	json_decref(c);
	ck_assert_int_eq(sql("SELECT count(*) FROM audit WHERE action = 'offline_gift'"), 1);
}
END_TEST

/* Every kind of bad input answers and writes nothing. */
START_TEST(offline_gift_bad_input_writes_nothing)
{
	static const struct {
		const char *body;
		int status;
		const char *code, *field;
	} bad[] = {
	    {"{\"method\":\"cheque\",\"donor\":{\"name\":\"A\"}}", 422, "validation_failed",
	     "amount_cents"},
	    {"{\"amount_cents\":0,\"method\":\"cheque\",\"donor\":{\"name\":\"A\"}}", 422,
	     "validation_failed", "amount_cents"},
	    {"{\"amount_cents\":25,\"method\":\"card\",\"donor\":{\"name\":\"A\"}}", 422,
	     "validation_failed", "method"},
	    {"{\"amount_cents\":25,\"method\":\"cash\"}", 422, "validation_failed", "donor"},
	    {"{\"amount_cents\":25,\"method\":\"cash\",\"donor\":{\"name\":\"\"}}", 422,
	     "validation_failed", "donor.name"},
	    {"{\"amount_cents\":25,\"method\":\"cash\",\"donor\":{\"name\":\"A\",\"email\":\"@\"}}",
	     422, "validation_failed", "donor.email"},
	    {"{\"amount_cents\":25,\"method\":\"cash\",\"currency\":\"EUR\",\"donor\":{\"name\":"
	     "\"A\"}}",
	     422, "validation_failed", "currency"},
	    {"{\"amount_cents\":25,\"method\":\"cash\",\"received_at\":\"2999-01-01T00:00:00Z\","
	     "\"donor\":{\"name\":\"A\"}}",
	     422, "validation_failed", "received_at"},
	    {"{\"amount_cents\":25,\"method\":\"cash\",\"receipt\":true,\"donor\":{\"name\":\"A\"}"
	     "}",
	     422, "validation_failed", "receipt"},
	    {"{\"amount_cents\":25,", 400, "invalid_json", NULL},
	    {"[]", 400, "invalid_json", NULL},
	};
	struct itest_resp r;

	start(NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(post("/api/v1/admin/campaigns/food/offline-donations", ITEST_TOKEN,
		                      NULL, bad[i].body, &r),
		                 0);
		expect_error(&r, bad[i].status, bad[i].code, bad[i].field);
		itest_resp_fini(&r);
	}
	ck_assert_int_eq(
	    post("/api/v1/admin/campaigns/nope/offline-donations", ITEST_TOKEN, NULL, CHEQUE, &r),
	    0);
	expect_error(&r, 404, "campaign_not_found", NULL);
	itest_resp_fini(&r);
	/* A key with a control character. */
	ck_assert_int_eq(post("/api/v1/admin/campaigns/food/offline-donations", ITEST_TOKEN,
	                      "bad\x01key", CHEQUE, &r),
	                 0);
	expect_error(&r, 422, "validation_failed", "Idempotency-Key");
	itest_resp_fini(&r);
	ck_assert_int_eq(sql("SELECT count(*) FROM donations"), 0);
	ck_assert_int_eq(sql("SELECT count(*) FROM audit WHERE action = 'offline_gift'"), 0);
	ck_assert_int_eq(sql("SELECT raised_cents + donation_count FROM campaigns"), 0);
}
END_TEST

/* Paused: staff still record the cheques that came in. Closed: refused. */
START_TEST(offline_gift_paused_yes_closed_no)
{
	struct itest_resp r;
	json_t *c;

	start(NULL);
	ck_assert_int_eq(post("/api/v1/admin/campaigns/food/pause", ITEST_TOKEN, NULL, "{}", &r),
	                 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	ck_assert_int_eq(offline("food", NULL, CHEQUE, NULL, 0), 201);
	c = campaign("food");
	ck_assert_str_eq(json_string_value(json_object_get(c, "status")), "paused");
	ck_assert_int_eq(itest_json_int(c, "raised_cents"), 2500);
	json_decref(c);
	ck_assert_int_eq(post("/api/v1/admin/campaigns/food/close", ITEST_TOKEN, NULL, "{}", &r),
	                 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	ck_assert_int_eq(
	    post("/api/v1/admin/campaigns/food/offline-donations", ITEST_TOKEN, NULL, CHEQUE, &r),
	    0);
	expect_error(&r, 409, "campaign_closed", NULL);
	itest_resp_fini(&r);
	ck_assert_int_eq(sql("SELECT count(*) FROM donations"), 1);
}
END_TEST

/* A new staff token's secret. */
static void add_token(const char *name, const char *role, char *secret, size_t cap)
{
	char body[128];
	struct itest_resp r;
	json_t *v;

	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"role\":\"%s\"}", name, role);
	ck_assert_int_eq(post("/api/v1/admin/tokens", ITEST_TOKEN, NULL, body, &r), 0);
	ck_assert_int_eq(r.status, 201);
	v = itest_json_body(&r);
	snprintf(secret, cap, "%s", json_string_value(json_object_get(v, "secret")));
	json_decref(v);
	itest_resp_fini(&r);
}

/* Operators and admins record offline gifts; viewers and the public do
 * not. An offline gift is never refunded through the processor. */
START_TEST(offline_gift_roles_and_no_refund)
{
	const char *path = "/api/v1/admin/campaigns/food/offline-donations";
	char viewer[80], operator[80], id[32], rpath[96];
	struct itest_resp r;

	start(NULL);
	add_token("vera", "viewer", viewer, sizeof(viewer));
	add_token("otto", "operator", operator, sizeof(operator));
	ck_assert_int_eq(post(path, NULL, NULL, CHEQUE, &r), 0);
	ck_assert_int_eq(r.status, 401);
	itest_resp_fini(&r);
	ck_assert_int_eq(post(path, "tly_wrong", NULL, CHEQUE, &r), 0);
	ck_assert_int_eq(r.status, 401);
	itest_resp_fini(&r);
	ck_assert_int_eq(post(path, viewer, NULL, CHEQUE, &r), 0);
	ck_assert_int_eq(r.status, 403);
	itest_resp_fini(&r);
	ck_assert_int_eq(sql("SELECT count(*) FROM donations"), 0);
	ck_assert_int_eq(post(path, operator, NULL, CHEQUE, &r), 0);
	ck_assert_int_eq(r.status, 201);
	{
		json_t *v = itest_json_body(&r);

		snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(v, "id")));
		json_decref(v);
	}
	itest_resp_fini(&r);
	ck_assert_int_eq(sql("SELECT count(*) FROM audit WHERE action = 'offline_gift' AND"
	                     " actor LIKE 'otto@%'"),
	                 1);

	snprintf(rpath, sizeof(rpath), "/api/v1/admin/donations/%s/refund", id);
	ck_assert_int_eq(post(rpath, ITEST_TOKEN, NULL, "{\"reason\":\"bounced\"}", &r), 0);
	expect_error(&r, 409, "offline_gift", NULL);
	itest_resp_fini(&r);
	ck_assert_int_eq(sql("SELECT count(*) FROM donations WHERE status = 'succeeded' AND"
	                     " refund_requested_at IS NULL"),
	                 1);
	ck_assert_int_eq(sql("SELECT count(*) FROM jobs"), 0);
	ck_assert_int_eq(sql("SELECT count(*) FROM audit WHERE action = 'donation.refund'"), 0);
	ck_assert_int_eq(sql("SELECT raised_cents FROM campaigns"), 2500);
}
END_TEST

/* receipt:true with an email queues a receipt with the gift (the outbox);
 * every offline gift sends donation.succeeded as an online one does. */
START_TEST(offline_gift_receipt_and_webhook)
{
	char args[512], id[32], id2[32], *mail;
	char *dir = tests_tmpdir();
	json_t *ev;

	ck_assert_ptr_nonnull(dir);
	snprintf(args, sizeof(args), "--dir %s", dir);
	ck_assert_int_eq(itest_tool_start(&smtp, "smtp_sink.py", args), 0);
	ck_assert_int_eq(itest_tool_start(&hook, "webhook_receiver.py", "--secret whsec_off"), 0);
	snprintf(args, sizeof(args),
	         "--smtp-url smtp://127.0.0.1:%d --smtp-from giving@example.org --webhook "
	         "http://127.0.0.1:%d/hook --webhook-secret whsec_off",
	         smtp.port, hook.port);
	start(args);
	ck_assert_int_eq(offline("food", NULL,
	                         "{\"amount_cents\":12345,\"method\":\"daf\",\"receipt\":true,"
	                         "\"donor\":{\"name\":\"Grace\",\"email\":\"grace@example.org\"}}",
	                         id, sizeof(id)),
	                 201);
	ck_assert_int_eq(offline("food", NULL,
	                         "{\"amount_cents\":700,\"method\":\"cash\",\"receipt\":false,"
	                         "\"donor\":{\"name\":\"Hal\",\"email\":\"hal@example.org\"}}",
	                         id2, sizeof(id2)),
	                 201);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	ck_assert_int_eq(count_files(dir), 1);
	mail = mail_with(dir, id);
	ck_assert_ptr_nonnull(strstr(mail, "To: grace@example.org"));
	ck_assert_ptr_nonnull(strstr(mail, "  Amount:       USD 123.45\r\n"));
	ck_assert_ptr_nonnull(strstr(mail, "  Received:     offline"));
	ck_assert_ptr_null(strstr(mail, "Fee covered"));
	free(mail);
	ck_assert_int_eq(sql("SELECT count(*) FROM donations WHERE receipt_sent_at IS NOT NULL"),
	                 1);
	/* Two webhooks, no capture, no processor. */
	ev = itest_get_json(hook.port, "/_events", 0);
	ck_assert_int_eq(json_array_size(json_object_get(ev, "events")), 2);
	ck_assert_str_eq(json_string_value(json_object_get(
	                     json_array_get(json_object_get(ev, "events"), 0), "type")),
	                 "donation.succeeded");
	json_decref(ev);
	ck_assert_int_eq(sql("SELECT count(*) FROM jobs WHERE kind = 'capture'"), 0);
	tests_rmdir(dir);
}
END_TEST

/* An offline gift counts toward challenges when it is stored (one that
 * is online_only excepted), as the rebuild at start counts it. */
START_TEST(offline_gift_unlocks_a_challenge)
{
	char json[600], from[40], to[40];
	time_t t0 = time(NULL) - 60, t1 = time(NULL) + 3600;
	struct itest_resp r;
	struct tm tm;
	json_t *c;

	start(NULL);
	strftime(from, sizeof(from), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t0, &tm));
	strftime(to, sizeof(to), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t1, &tm));
	for (int online_only = 0; online_only < 2; online_only++) {
		snprintf(json, sizeof(json),
		         "{\"slug\":\"ch-%d\",\"name\":\"Cheques count\",\"kind\":\"amount\","
		         "\"threshold\":2000,\"bonus_cents\":%d,\"campaigns\":\"all\","
		         "\"currency\":\"USD\",\"online_only\":%s,\"starts_at\":\"%s\","
		         "\"ends_at\":\"%s\"}",
		         online_only, online_only ? 700 : 500, online_only ? "true" : "false", from,
		         to);
		ck_assert_int_eq(post("/api/v1/admin/challenges", ITEST_TOKEN, NULL, json, &r), 0);
		ck_assert_msg(r.status == 201, "%d %s", r.status, r.body);
		itest_resp_fini(&r);
	}
	ck_assert_int_eq(offline("food", NULL, CHEQUE, NULL, 0), 201);
	/* By the 201: the award was stored in the gift's transaction. */
	c = campaign("food");
	ck_assert_int_eq(itest_json_int(c, "raised_cents"), 2500);
	ck_assert_int_eq(itest_json_int(c, "bonus_cents"), 500);
	ck_assert_int_eq(itest_json_int(c, "total_cents"), 3000);
	json_decref(c);
	ck_assert_int_eq(sql("SELECT count(*) FROM challenge_awards"), 1);
	/* After a restart, rebuilt from the donations: the same. */
	ck_assert_int_eq(WEXITSTATUS(itest_signal(&srv, SIGTERM)), 0);
	ck_assert_int_eq(itest_start(&srv, NULL), 0);
	c = campaign("food");
	ck_assert_int_eq(itest_json_int(c, "bonus_cents"), 500);
	json_decref(c);
	ck_assert_int_eq(sql("SELECT count(*) FROM challenge_awards"), 1);
}
END_TEST

/* ---- integration: covered fees ---- */

static int donate(const char *key, const char *slug, const char *currency, long long cents,
                  const char *email, const char *cover, struct itest_resp *r)
{
	char body[512], path[128];

	snprintf(body, sizeof(body),
	         "{\"amount_cents\":%lld,\"currency\":\"%s\",\"donor\":{\"name\":\"Ada\","
	         "\"email\":\"%s\"}%s%s}",
	         cents, currency, email, cover ? ",\"cover_fee\":" : "", cover ? cover : "");
	snprintf(path, sizeof(path), "/api/v1/campaigns/%s/donations", slug);
	return post(path, NULL, key, body, r);
}

START_TEST(fee_is_charged_not_counted)
{
	char id[32], token[64], path[160], q[256], *log;
	struct itest_resp r;
	json_t *v, *c;

	start("--fee 2.2%+30");
	ck_assert_int_eq(donate("k1", "food", "USD", 2500, "ada@example.org", "true", &r), 0);
	ck_assert_msg(r.status == 202, "%d %s", r.status, r.body);
	v = itest_json_body(&r);
	ck_assert_int_eq(itest_json_int(v, "amount_cents"), 2500);
	ck_assert_int_eq(itest_json_int(v, "fee_cents"), 85);
	ck_assert_int_eq(itest_json_int(v, "charged_cents"), 2585);
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(v, "id")));
	snprintf(token, sizeof(token), "%s", json_string_value(json_object_get(v, "status_token")));
	json_decref(v);
	itest_resp_fini(&r);
	/* The replay shows the same numbers; another cover_fee is another
	 * request. */
	ck_assert_int_eq(donate("k1", "food", "USD", 2500, "ada@example.org", "true", &r), 0);
	ck_assert_int_eq(r.status, 202);
	v = itest_json_body(&r);
	ck_assert_str_eq(json_string_value(json_object_get(v, "id")), id);
	ck_assert_int_eq(itest_json_int(v, "fee_cents"), 85);
	ck_assert_int_eq(itest_json_int(v, "charged_cents"), 2585);
	json_decref(v);
	itest_resp_fini(&r);
	ck_assert_int_eq(donate("k1", "food", "USD", 2500, "ada@example.org", "false", &r), 0);
	expect_error(&r, 422, "idempotency_key_reused", NULL);
	itest_resp_fini(&r);
	/* Not covering: no fee. */
	ck_assert_int_eq(donate("k2", "food", "USD", 1000, "bob@example.org", NULL, &r), 0);
	ck_assert_int_eq(r.status, 202);
	v = itest_json_body(&r);
	ck_assert_int_eq(itest_json_int(v, "fee_cents"), 0);
	ck_assert_int_eq(itest_json_int(v, "charged_cents"), 1000);
	json_decref(v);
	itest_resp_fini(&r);

	ck_assert_int_eq(itest_settle(srv.port), 0);
	snprintf(q, sizeof(q), "SELECT fee_cents FROM donations WHERE id = %s", id + 3);
	ck_assert_int_eq(sql(q), 85);
	ck_assert_int_eq(sql("SELECT sum(fee_cents) FROM donations"), 85);
	c = campaign("food");
	ck_assert_int_eq(itest_json_int(c, "raised_cents"), 3500);
	ck_assert_int_eq(itest_json_int(c, "total_cents"), 3500);
	json_decref(c);
	ck_assert_int_eq(sql("SELECT raised_cents FROM campaigns"), 3500);
	v = itest_get_json(srv.port, "/api/v1/leaderboard", 0);
	ck_assert_int_eq(
	    itest_json_int(json_array_get(json_object_get(v, "entries"), 0), "total_cents"), 3500);
	json_decref(v);
	snprintf(path, sizeof(path), "/api/v1/donations/%s?token=%s", id, token);
	v = itest_get_json(srv.port, path, 0);
	ck_assert_str_eq(json_string_value(json_object_get(v, "status")), "succeeded");
	ck_assert_int_eq(itest_json_int(v, "fee_cents"), 85);
	ck_assert_int_eq(itest_json_int(v, "charged_cents"), 2585);
	json_decref(v);
	/* The processor was asked for the gift and the fee together. */
	log = itest_slurp(srv.log);
	snprintf(q, sizeof(q), "%s: charged 2585 USD (gift 2500 + fee 85)", id);
	ck_assert_msg(strstr(log, q), "the mock was not asked for 2585");
	free(log);
}
END_TEST

START_TEST(fee_not_offered_is_refused)
{
	struct itest_resp r;

	start(NULL);
	ck_assert_int_eq(donate(NULL, "food", "USD", 2500, "ada@example.org", "true", &r), 0);
	expect_error(&r, 422, "validation_failed", "cover_fee");
	ck_assert_ptr_nonnull(strstr(r.body, "--fee"));
	itest_resp_fini(&r);
	ck_assert_int_eq(donate(NULL, "food", "USD", 2500, "ada@example.org", "1", &r), 0);
	expect_error(&r, 422, "validation_failed", "cover_fee");
	itest_resp_fini(&r);
	ck_assert_int_eq(sql("SELECT count(*) FROM donations"), 0);
	ck_assert_int_eq(donate(NULL, "food", "USD", 2500, "ada@example.org", "false", &r), 0);
	ck_assert_int_eq(r.status, 202);
	itest_resp_fini(&r);
}
END_TEST

/* The receipt shows the gift, the covered fee and the total apart, in the
 * currency's minor units: cents of USD, whole yen. */
START_TEST(fee_receipts_in_usd_and_jpy)
{
	char args[512], usd[32], jpy[32], *mail;
	char *dir = tests_tmpdir();
	struct itest_resp r;
	json_t *v;

	ck_assert_ptr_nonnull(dir);
	snprintf(args, sizeof(args), "--dir %s", dir);
	ck_assert_int_eq(itest_tool_start(&smtp, "smtp_sink.py", args), 0);
	snprintf(args, sizeof(args),
	         "--fee 2.2%%+30 --smtp-url smtp://127.0.0.1:%d --smtp-from giving@example.org",
	         smtp.port);
	start(args);
	ck_assert_int_eq(itest_create_campaign(srv.port, "tokyo", "JPY", 1000000), 201);
	ck_assert_int_eq(donate(NULL, "food", "USD", 2500, "ada@example.org", "true", &r), 0);
	ck_assert_int_eq(r.status, 202);
	v = itest_json_body(&r);
	snprintf(usd, sizeof(usd), "%s", json_string_value(json_object_get(v, "id")));
	json_decref(v);
	itest_resp_fini(&r);
	/* ceil(5000 x 2.2 %) = 110 yen, + 30 yen. */
	ck_assert_int_eq(donate(NULL, "tokyo", "JPY", 5000, "ken@example.org", "true", &r), 0);
	ck_assert_int_eq(r.status, 202);
	v = itest_json_body(&r);
	ck_assert_int_eq(itest_json_int(v, "fee_cents"), 140);
	ck_assert_int_eq(itest_json_int(v, "charged_cents"), 5140);
	snprintf(jpy, sizeof(jpy), "%s", json_string_value(json_object_get(v, "id")));
	json_decref(v);
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	ck_assert_int_eq(count_files(dir), 2);
	mail = mail_with(dir, usd);
	ck_assert_ptr_nonnull(strstr(mail, "  Amount:       USD 25.00\r\n"));
	ck_assert_ptr_nonnull(strstr(mail, "  Fee covered:  USD 0.85\r\n"));
	ck_assert_ptr_nonnull(strstr(mail, "  Total charged: USD 25.85\r\n"));
	free(mail);
	mail = mail_with(dir, jpy);
	ck_assert_ptr_nonnull(strstr(mail, "  Amount:       JPY 5000\r\n"));
	ck_assert_ptr_nonnull(strstr(mail, "  Fee covered:  JPY 140\r\n"));
	ck_assert_ptr_nonnull(strstr(mail, "  Total charged: JPY 5140\r\n"));
	free(mail);
	v = campaign("tokyo");
	ck_assert_int_eq(itest_json_int(v, "raised_cents"), 5000);
	json_decref(v);
	tests_rmdir(dir);
}
END_TEST

/* A bad --fee stops tally before it opens anything, with one line. */
START_TEST(fee_option_errors)
{
	static const char *const bad[] = {"2.2",       "2.2%",     "abc",   "21%+0",
	                                  "2%+100001", "2.123%+0", "-1%+0", "%+5"};
	const char *bin = getenv("TALLY_BIN") ? getenv("TALLY_BIN") : "./tally";
	char *dir = tests_tmpdir(), db[600], cmd[1024], out[4096];

	ck_assert_ptr_nonnull(dir);
	snprintf(db, sizeof(db), "%s/never.db", dir);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		FILE *p;
		size_t n;
		int st;
		char *nl;

		snprintf(cmd, sizeof(cmd), "%s --headless --db %s --fee '%s' 2>&1", bin, db,
		         bad[i]);
		p = popen(cmd, "r");
		ck_assert_ptr_nonnull(p);
		n = fread(out, 1, sizeof(out) - 1, p);
		out[n] = '\0';
		st = pclose(p);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s: exit %d: %s", bad[i],
		              WIFEXITED(st) ? WEXITSTATUS(st) : -1, out);
		ck_assert_msg(
		    !strncmp(out, "tally: --fee wants PERCENT%+FIXED such as 2.2%+30", 49),
		    "%s: said %s", bad[i], out);
		nl = strchr(out, '\n');
		ck_assert_msg(nl && nl[1] == '\0', "%s: more than one line: %s", bad[i], out);
		ck_assert_ptr_nonnull(strstr(out, bad[i]));
		ck_assert_msg(access(db, F_OK) != 0, "%s: created the database", bad[i]);
	}
	tests_rmdir(dir);
}
END_TEST

Suite *gifts_suite(void)
{
	Suite *s = suite_create("gifts");
	TCase *unit = tcase_create("unit");
	TCase *it = tcase_create("integration");

	tcase_add_test(unit, fee_parses_and_rounds_up);
	tcase_add_test(unit, fee_refuses_anything_else);
	tcase_add_test(unit, offline_body_is_checked_field_by_field);
	tcase_add_test(unit, cover_fee_is_parsed);
	tcase_add_test(unit, console_reads_amounts);
	suite_add_tcase(s, unit);

	tcase_add_checked_fixture(it, setup, teardown);
	tcase_set_timeout(it, 60 * itest_slowdown());
	tcase_add_test(it, offline_gift_counts_at_once);
	tcase_add_test(it, offline_gift_survives_a_restart);
	tcase_add_test(it, offline_gift_bad_input_writes_nothing);
	tcase_add_test(it, offline_gift_paused_yes_closed_no);
	tcase_add_test(it, offline_gift_roles_and_no_refund);
	tcase_add_test(it, offline_gift_receipt_and_webhook);
	tcase_add_test(it, offline_gift_unlocks_a_challenge);
	tcase_add_test(it, fee_is_charged_not_counted);
	tcase_add_test(it, fee_not_offered_is_refused);
	tcase_add_test(it, fee_receipts_in_usd_and_jpy);
	tcase_add_test(it, fee_option_errors);
	suite_add_tcase(s, it);
	return s;
}
