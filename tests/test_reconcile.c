/* tests/test_reconcile.c - money that reconciles to the cent everywhere.
 * A mixed load (online gifts, declines, offline gifts, a match pool
 * running out, a challenge unlocking, refunds) against the real server; then the
 * campaign JSON, the leaderboard, the live day channel, the console feed
 * and the CSV export must all agree with SUMs over the database, and again
 * after a SIGKILL and a restart. */
#include "tests/itest.h"
#include "tests/itest_csv.h"
#include "tests/tests.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct itest_server srv;
static const char *const slugs[] = {"food", "books", "parks"};
#define N_SLUGS (sizeof(slugs) / sizeof(slugs[0]))

static void start(void)
{
	itest_start_with_food(&srv);
	ck_assert_int_eq(itest_create_campaign(srv.port, "books", "USD", 100000), 201);
	ck_assert_int_eq(itest_create_campaign(srv.port, "parks", "USD", 100000), 201);
}

static void stop(void)
{
	itest_cleanup(&srv);
}

static long long sql(const char *fmt, const char *slug)
{
	char q[1024];

	snprintf(q, sizeof(q), fmt, slug);
	return itest_sql_int(srv.db, q);
}

/* What SQL says a campaign holds. */
struct money {
	long long raised, matched, bonus, total, donors, gifts;
};

#define OF_CAMPAIGN "(SELECT id FROM campaigns WHERE slug = '%s')"

static struct money from_sql(const char *slug)
{
	struct money m;

	m.raised = sql("SELECT coalesce(sum(amount_cents), 0) FROM donations WHERE status ="
	               " 'succeeded' AND campaign_id = " OF_CAMPAIGN,
	               slug);
	m.matched = sql("SELECT coalesce(sum(matched_cents), 0) FROM donations WHERE (status ="
	                " 'succeeded' OR (status = 'refunded' AND NOT match_released)) AND"
	                " campaign_id = " OF_CAMPAIGN,
	                slug);
	m.bonus = sql("SELECT coalesce(sum(bonus_cents), 0) FROM challenge_awards WHERE"
	              " campaign_id = " OF_CAMPAIGN,
	              slug);
	m.total = m.raised + m.matched + m.bonus;
	m.donors = sql("SELECT count(DISTINCT lower(donor_email)) FROM donations WHERE status IN"
	               " ('succeeded', 'refunded') AND campaign_id = " OF_CAMPAIGN,
	               slug);
	m.gifts = sql("SELECT count(*) FROM donations WHERE status = 'succeeded' AND"
	              " campaign_id = " OF_CAMPAIGN,
	              slug);
	return m;
}

static void same_money(json_t *o, const struct money *m, const char *where)
{
	ck_assert_msg(itest_json_int(o, "total_cents") == m->total, "%s total %lld, SQL %lld",
	              where, itest_json_int(o, "total_cents"), m->total);
	ck_assert_msg(itest_json_int(o, "raised_cents") == m->raised, "%s raised", where);
	ck_assert_msg(itest_json_int(o, "matched_cents") == m->matched, "%s matched", where);
	ck_assert_msg(itest_json_int(o, "bonus_cents") == m->bonus, "%s bonus", where);
	ck_assert_msg(itest_json_int(o, "donor_count") == m->donors, "%s donors", where);
}

/* The console feed's first full state, parsed (the caller decrefs). */
static json_t *console_state(void)
{
	char req[1024], head[4096], *t;
	int fd = itest_conn_open(srv.port), status = 0, n;
	json_t *j = NULL;

	ck_assert_int_ge(fd, 0);
	n = snprintf(req, sizeof(req),
	             "GET /live/console HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
	             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	             "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: tally.console.v1\r\n"
	             "Authorization: Bearer " ITEST_TOKEN "\r\n\r\n",
	             srv.port);
	ck_assert_int_eq(itest_send(fd, req, (size_t)n), 0);
	ck_assert_int_eq(itest_read_head(fd, head, sizeof(head), 5000), 0);
	ck_assert_int_eq(sscanf(head, "HTTP/1.1 %d", &status), 1);
	ck_assert_int_eq(status, 101);
	/* Messages until one lists campaigns (the first full state). */
	for (int i = 0; i < 20 && !j; i++) {
		t = itest_ws_recv(fd, 5000);
		ck_assert_ptr_nonnull(t);
		j = json_loads(t, 0, NULL);
		free(t);
		if (j && json_array_size(json_object_get(j, "campaigns")) < N_SLUGS) {
			json_decref(j);
			j = NULL;
		}
	}
	close(fd);
	ck_assert_ptr_nonnull(j);
	return j;
}

/* The live day channel's snapshot data (the caller decrefs). */
static json_t *day_state(void)
{
	int st, fd = itest_ws_connect(srv.port, "/live", "tally.live.v1", &st);
	char *msg;
	json_t *j, *data;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(itest_ws_send(fd, "{\"op\":\"subscribe\",\"channel\":\"day\"}"), 0);
	msg = itest_ws_wait_for(fd, "\"snapshot\"", 5000);
	close(fd);
	ck_assert_ptr_nonnull(msg);
	j = json_loads(msg, 0, NULL);
	free(msg);
	ck_assert_ptr_nonnull(j);
	data = json_incref(json_object_get(j, "data"));
	json_decref(j);
	return data;
}

/* The index of column name in the export's header row. */
static int column(const struct csv_file *f, const char *name)
{
	for (int k = 0; k < f->rec[0].n; k++)
		if (!strcmp(f->rec[0].cell[k], name))
			return k;
	ck_abort_msg("the export has no column %s", name);
	return -1;
}

/* The export's money for one campaign: raised from the succeeded rows,
 * matched and bonus from every row (a gift's match is 0 once it was
 * released). */
static struct money from_csv(const struct csv_file *f, const char *slug)
{
	int camp = column(f, "campaign"), status = column(f, "status");
	int amount = column(f, "amount_cents"), matched = column(f, "matched_cents");
	int bonus = column(f, "bonus_cents");
	struct money m = {0, 0, 0, 0, 0, 0};

	for (size_t i = 1; i < f->n; i++) {
		char **c = f->rec[i].cell;

		if (strcmp(c[camp], slug))
			continue;
		if (!strcmp(c[status], "succeeded")) {
			m.raised += atoll(c[amount]);
			m.gifts++;
		}
		m.matched += atoll(c[matched]);
		m.bonus += atoll(c[bonus]);
	}
	m.total = m.raised + m.matched + m.bonus;
	return m;
}

static void export_csv(struct csv_file *f)
{
	struct itest_resp r;
	size_t n;
	char *csv;

	ck_assert_int_eq(itest_http(srv.port, "GET", "/api/v1/admin/donations.csv",
	                            "Authorization: Bearer " ITEST_TOKEN "\r\n", NULL, 0, &r),
	                 0);
	ck_assert_int_eq(r.status, 200);
	csv = dechunk(r.body, r.len, &n);
	csv_read(csv, n, f);
	free(csv);
	itest_resp_fini(&r);
	ck_assert_uint_ge(f->n, 2);
}

/* Every view against SQL. */
static void reconcile(void)
{
	struct csv_file csv;
	json_t *board = itest_get_json(srv.port, "/api/v1/leaderboard?limit=50", 0);
	json_t *console = console_state(), *day = day_state();
	struct money sum = {0, 0, 0, 0, 0, 0};
	size_t i;
	json_t *e;

	export_csv(&csv);
	for (size_t k = 0; k < N_SLUGS; k++) {
		struct money m = from_sql(slugs[k]);
		char path[128];
		json_t *c;
		int seen = 0;

		snprintf(path, sizeof(path), "/api/v1/campaigns/%s", slugs[k]);
		c = itest_get_json(srv.port, path, 0);
		same_money(c, &m, slugs[k]);
		ck_assert_int_eq(itest_json_int(c, "donation_count"), m.gifts);
		json_decref(c);
		{
			struct money x = from_csv(&csv, slugs[k]);

			ck_assert_msg(x.raised == m.raised && x.matched == m.matched &&
			                  x.bonus == m.bonus && x.gifts == m.gifts,
			              "%s: the export has %lld/%lld/%lld in %lld gifts, SQL "
			              "%lld/%lld/%lld in %lld",
			              slugs[k], x.raised, x.matched, x.bonus, x.gifts, m.raised,
			              m.matched, m.bonus, m.gifts);
		}
		json_array_foreach(json_object_get(board, "entries"), i, e)
		{
			if (strcmp(json_string_value(json_object_get(e, "slug")), slugs[k]))
				continue;
			same_money(e, &m, "leaderboard");
			seen = 1;
		}
		ck_assert_msg(seen, "%s not on the leaderboard", slugs[k]);
		seen = 0;
		json_array_foreach(json_object_get(console, "campaigns"), i, e)
		{
			if (strcmp(json_string_value(json_object_get(e, "slug")), slugs[k]))
				continue;
			same_money(e, &m, "console");
			seen = 1;
		}
		ck_assert_msg(seen, "%s not in the console's state", slugs[k]);
		sum.raised += m.raised;
		sum.matched += m.matched;
		sum.bonus += m.bonus;
		sum.total += m.total;
	}
	ck_assert_int_eq(itest_json_int(day, "total_cents"), sum.total);
	ck_assert_int_eq(itest_json_int(day, "raised_cents"), sum.raised);
	ck_assert_int_eq(itest_json_int(day, "matched_cents"), sum.matched);
	ck_assert_int_eq(itest_json_int(day, "bonus_cents"), sum.bonus);
	/* The pool: used is the matched money, and never above its amount. */
	{
		json_t *p = itest_get_json(srv.port, "/api/v1/admin/match-pools/acme", 1);

		ck_assert_int_eq(itest_json_int(p, "used_cents"), sum.matched);
		ck_assert_int_le(itest_json_int(p, "used_cents") +
		                     itest_json_int(p, "reserved_cents"),
		                 itest_json_int(p, "amount_cents"));
		json_decref(p);
	}
	json_decref(board);
	json_decref(console);
	json_decref(day);
	csv_free(&csv);
}

static void post(const char *slug, long long cents, int donor, const char *token)
{
	struct itest_resp r;
	char path[128], json[400];

	snprintf(path, sizeof(path), "/api/v1/campaigns/%s/donations", slug);
	snprintf(json, sizeof(json),
	         "{\"amount_cents\":%lld,\"currency\":\"USD\",\"donor\":{\"name\":\"Donor %d\","
	         "\"email\":\"donor%d@example.org\"},\"payment_token\":\"%s\"}",
	         cents, donor, donor, token);
	ck_assert_int_eq(itest_post_json(srv.port, path, json, 0, &r), 0);
	ck_assert_msg(r.status == 202, "%d %s", r.status, r.body);
	itest_resp_fini(&r);
}

static int admin(const char *path, const char *json)
{
	struct itest_resp r;
	int st;

	ck_assert_int_eq(itest_post_json(srv.port, path, json, 1, &r), 0);
	st = r.status;
	itest_resp_fini(&r);
	return st;
}

START_TEST(every_view_agrees_with_the_database)
{
	char json[600], from[40], to[40];
	time_t t0 = time(NULL) - 60, t1 = time(NULL) + 3600;
	struct tm tm;
	int st;

	/* A pool that runs out part-way, a challenge the first campaign to
	 * $150 wins. */
	ck_assert_int_eq(admin("/api/v1/admin/match-pools",
	                       "{\"slug\":\"acme\",\"name\":\"ACME\",\"sponsor\":\"ACME\","
	                       "\"amount_cents\":20000,\"ratio\":1,\"per_gift_cap_cents\":1500,"
	                       "\"campaigns\":\"all\",\"currency\":\"USD\"}"),
	                 201);
	strftime(from, sizeof(from), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t0, &tm));
	strftime(to, sizeof(to), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t1, &tm));
	snprintf(json, sizeof(json),
	         "{\"slug\":\"race\",\"name\":\"Race to $150\",\"kind\":\"amount\","
	         "\"threshold\":15000,\"bonus_cents\":5000,\"winners\":1,\"campaigns\":\"all\","
	         "\"currency\":\"USD\",\"starts_at\":\"%s\",\"ends_at\":\"%s\"}",
	         from, to);
	ck_assert_int_eq(admin("/api/v1/admin/challenges", json), 201);
	/* 120 gifts from 15 donors over three campaigns; one in seven is
	 * declined. */
	for (int i = 0; i < 120; i++)
		post(slugs[i % N_SLUGS], 500 + (i % 9) * 250, i % 15,
		     i % 7 == 3 ? "tok_chargeDeclined" : "tok_visa");
	/* Offline gifts: cheques, some from the same donors; counted at once
	 * and the same way everywhere. */
	for (int i = 0; i < 9; i++) {
		char body[300], path[128];

		snprintf(body, sizeof(body),
		         "{\"amount_cents\":%d,\"method\":\"cheque\",\"donor\":{\"name\":"
		         "\"Donor %d\",\"email\":\"donor%d@example.org\"},\"note\":\"#%d\"}",
		         2000 + i * 100, i * 3, i * 3, 1000 + i);
		snprintf(path, sizeof(path), "/api/v1/admin/campaigns/%s/offline-donations",
		         slugs[i % N_SLUGS]);
		ck_assert_int_eq(admin(path, body), 201);
	}
	ck_assert_int_eq(itest_settle(srv.port), 0);
	/* Three refunds: the match goes back to the (open) pool. */
	ck_assert_int_eq(admin("/api/v1/admin/donations/dn_1/refund", "{\"reason\":\"asked\"}"),
	                 202);
	ck_assert_int_eq(admin("/api/v1/admin/donations/dn_2/refund", "{\"reason\":\"asked\"}"),
	                 202);
	ck_assert_int_eq(admin("/api/v1/admin/donations/dn_50/refund", "{\"reason\":\"asked\"}"),
	                 202);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	/* The load did what it should have: the pool ran out, the challenge
	 * was won, gifts were declined and refunded. */
	ck_assert_int_gt(itest_sql_int(srv.db, "SELECT count(*) FROM donations WHERE status = "
	                                       "'failed'"),
	                 10);
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM donations WHERE status = "
	                                       "'refunded'"),
	                 3);
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM challenge_awards"), 1);
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM donations WHERE source ="
	                                       " 'offline' AND status = 'succeeded'"),
	                 9);
	ck_assert_int_gt(itest_sql_int(srv.db, "SELECT count(*) FROM donations WHERE status ="
	                                       " 'succeeded' AND matched_cents = 0"),
	                 0);
	reconcile();
	/* Killed, restarted: every number rebuilt from the database. */
	st = itest_signal(&srv, SIGKILL);
	ck_assert(WIFSIGNALED(st));
	ck_assert_int_eq(itest_start(&srv, NULL), 0);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	reconcile();
	/* And it goes on agreeing. */
	for (int i = 0; i < 15; i++)
		post(slugs[i % N_SLUGS], 1000, 100 + i, "tok_visa");
	ck_assert_int_eq(itest_settle(srv.port), 0);
	reconcile();
}
END_TEST

Suite *reconcile_suite(void)
{
	Suite *s = suite_create("reconcile");
	TCase *tc = tcase_create("money");

	tcase_add_checked_fixture(tc, start, stop);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, every_view_agrees_with_the_database);
	suite_add_tcase(s, tc);
	return s;
}
