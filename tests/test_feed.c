/* tests/test_feed.c - the staff console's feed on /live/console, against
 * the real binary: who may open it, what it sends, in what batches, and
 * that the viewers' crowd never locks the console out. */
#include "tests/itest.h"
#include "tests/tests.h"
#include "base/util.h"

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="

/* Send a console upgrade with extra header lines; returns the fd with the
 * answer's head in head (the status in *status), or -1. */
static int feed_open(int port, const char *extra, char *head, size_t cap, int *status)
{
	char req[2048];
	int fd = itest_conn_open(port);
	int n = snprintf(req, sizeof(req),
	                 "GET /live/console HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
	                 "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " KEY
	                 "\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
	                 port, extra);

	*status = 0;
	if (fd < 0)
		return -1;
	if (n < 0 || (size_t)n >= sizeof(req) || itest_send(fd, req, (size_t)n) ||
	    itest_read_head(fd, head, cap, 5000) || sscanf(head, "HTTP/1.1 %d", status) != 1) {
		close(fd);
		return -1;
	}
	return fd;
}

#define PROTO "Sec-WebSocket-Protocol: tally.console.v1\r\n"
#define AUTH "Authorization: Bearer " ITEST_TOKEN "\r\n"

static int feed_status(int port, const char *extra)
{
	char head[4096];
	int status, fd = feed_open(port, extra, head, sizeof(head), &status);

	if (fd >= 0)
		close(fd);
	return status;
}

/* The next message, parsed; NULL on timeout. */
static json_t *next_msg(int fd)
{
	char *t = itest_ws_recv(fd, 5000);
	json_t *j = t ? json_loads(t, 0, NULL) : NULL;

	free(t);
	return j;
}

static json_t *campaign_in(json_t *state, const char *slug)
{
	size_t i;
	json_t *c;

	json_array_foreach(
	    json_object_get(state, "campaigns"), i,
	    c) if (!strcmp(json_string_value(json_object_get(c, "slug")), slug)) return c;
	return NULL;
}

START_TEST(only_staff_from_here_may_open_it)
{
	struct itest_server s = {0};

	itest_start_with_food(&s);
	ck_assert_int_eq(feed_status(s.port, PROTO), 401);
	ck_assert_int_eq(feed_status(s.port, PROTO "Authorization: Bearer nope\r\n"), 401);
	ck_assert_int_eq(feed_status(s.port, PROTO "Authorization: Basic " ITEST_TOKEN "\r\n"),
	                 401);
	ck_assert_int_eq(feed_status(s.port, PROTO AUTH "Origin: http://evil.example\r\n"), 403);
	ck_assert_int_eq(feed_status(s.port, PROTO AUTH "Origin: null\r\n"), 403);
	ck_assert_int_eq(feed_status(s.port, AUTH), 400); /* no subprotocol */
	ck_assert_int_eq(feed_status(s.port, "Sec-WebSocket-Protocol: tally.live.v1\r\n" AUTH),
	                 400);
	{
		char origin[128];

		snprintf(origin, sizeof(origin), PROTO AUTH "Origin: http://127.0.0.1:%d\r\n",
		         s.port);
		ck_assert_int_eq(feed_status(s.port, origin), 101);
	}
	ck_assert_int_eq(feed_status(s.port, PROTO AUTH), 101);
	itest_cleanup(&s);
}
END_TEST

START_TEST(hello_then_states_with_what_changed)
{
	struct itest_server s = {0};
	char head[4096];
	int status, fd, seen = 0;
	json_t *m;

	itest_start_with_food(&s);
	ck_assert_int_eq(itest_create_campaign(s.port, "books", "EUR", 5000), 201);
	{
		const char *patch = "{\"category\":\"Reading\"}";
		struct itest_resp r;

		ck_assert_int_eq(itest_http(s.port, "PATCH", "/api/v1/admin/campaigns/books",
		                            "Content-Type: application/json\r\n"
		                            "Authorization: Bearer " ITEST_TOKEN "\r\n",
		                            patch, strlen(patch), &r),
		                 0);
		ck_assert_int_eq(r.status, 200);
		itest_resp_fini(&r);
	}
	fd = feed_open(s.port, PROTO AUTH, head, sizeof(head), &status);
	ck_assert_int_eq(status, 101);
	ck_assert_ptr_nonnull(strstr(head, "Sec-WebSocket-Protocol: tally.console.v1"));
	m = next_msg(fd);
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(json_string_value(json_object_get(m, "type")), "hello");
	ck_assert_str_eq(json_string_value(json_object_get(m, "who")), "admin");
	json_decref(m);
	m = next_msg(fd); /* the first state: every campaign */
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(json_string_value(json_object_get(m, "type")), "state");
	ck_assert(json_is_true(json_object_get(m, "synced")));
	ck_assert_int_eq(json_integer_value(json_object_get(m, "n_campaigns")), 2);
	ck_assert_ptr_nonnull(campaign_in(m, "food"));
	ck_assert_ptr_nonnull(campaign_in(m, "books"));
	ck_assert_str_eq(json_string_value(json_object_get(campaign_in(m, "books"), "category")),
	                 "Reading");
	ck_assert_str_eq(json_string_value(json_object_get(campaign_in(m, "food"), "category")),
	                 "");
	ck_assert_int_eq(json_array_size(json_object_get(m, "queues")), 3);
	json_decref(m);
	ck_assert_int_eq(itest_donate(s.port, "food", 2500, "Ada", "ada@example.org"), 202);
	/* later states carry food once it changed, and never books again */
	for (int i = 0; i < 40 && seen < 1; i++) {
		json_t *c;

		m = next_msg(fd);
		ck_assert_ptr_nonnull(m);
		ck_assert_ptr_null(campaign_in(m, "books"));
		c = campaign_in(m, "food");
		if (c && json_integer_value(json_object_get(c, "total_cents")) == 2500) {
			ck_assert_int_eq(json_integer_value(json_object_get(c, "donor_count")), 1);
			seen = 1;
		}
		json_decref(m);
	}
	ck_assert_int_eq(seen, 1);
	/* a console's messages are not read: the feed goes on */
	ck_assert_int_eq(itest_ws_send(fd, "{\"type\":\"subscribe\",\"channel\":\"leaderboard\"}"),
	                 0);
	m = next_msg(fd);
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(json_string_value(json_object_get(m, "type")), "state");
	json_decref(m);
	close(fd);
	itest_cleanup(&s);
}
END_TEST

START_TEST(many_campaigns_come_in_batches)
{
	struct itest_server s = {0};
	char head[4096], slug[32];
	int status, fd, total = 0, states = 0, synced = 0;

	ck_assert_int_eq(itest_start(&s, NULL), 0);
	for (int i = 0; i < 2300; i++) {
		snprintf(slug, sizeof(slug), "c%d", i);
		ck_assert_int_eq(itest_create_campaign(s.port, slug, "USD", 100000), 201);
	}
	fd = feed_open(s.port, PROTO AUTH, head, sizeof(head), &status);
	ck_assert_int_eq(status, 101);
	json_decref(next_msg(fd)); /* hello */
	while (!synced && states < 10) {
		json_t *m = next_msg(fd);
		size_t n;

		ck_assert_ptr_nonnull(m);
		n = json_array_size(json_object_get(m, "campaigns"));
		ck_assert_uint_le(n, 1000);
		ck_assert_int_eq(json_integer_value(json_object_get(m, "n_campaigns")), 2300);
		total += (int)n;
		synced = json_is_true(json_object_get(m, "synced"));
		ck_assert(synced || n == 1000);
		states++;
		json_decref(m);
	}
	ck_assert_int_eq(synced, 1);
	ck_assert_int_eq(states, 3);
	ck_assert_int_eq(total, 2300);
	close(fd);
	itest_cleanup(&s);
}
END_TEST

START_TEST(a_console_gets_in_when_viewers_are_full)
{
	struct itest_server s = {0};
	char head[4096];
	int status, v1, v2, fd;

	ck_assert_int_eq(itest_start(&s, "--live viewers=1"), 0);
	ck_assert_int_eq(itest_create_campaign(s.port, "food", "USD", 100000), 201);
	v1 = itest_ws_connect(s.port, "/live", "tally.live.v1", &status);
	ck_assert_int_ge(v1, 0);
	v2 = itest_ws_connect(s.port, "/live", "tally.live.v1", &status);
	ck_assert_int_lt(v2, 0);
	ck_assert_int_eq(status, 503);
	fd = feed_open(s.port, PROTO AUTH, head, sizeof(head), &status);
	ck_assert_int_eq(status, 101);
	json_decref(next_msg(fd));
	{
		json_t *m = next_msg(fd);

		ck_assert_ptr_nonnull(m);
		ck_assert_int_eq(json_integer_value(json_object_get(m, "ws_clients")), 1);
		json_decref(m);
	}
	close(fd);
	close(v1);
	itest_cleanup(&s);
}
END_TEST

START_TEST(consoles_hear_the_server_stop)
{
	struct itest_server s = {0};
	char head[4096];
	int status, fd;

	itest_start_with_food(&s);
	fd = feed_open(s.port, PROTO AUTH, head, sizeof(head), &status);
	ck_assert_int_eq(status, 101);
	json_decref(next_msg(fd));
	ck_assert_int_eq(kill(s.pid, SIGTERM), 0);
	ck_assert_int_eq(itest_ws_close_code(fd, 1, 10000), 1001);
	close(fd);
	itest_cleanup(&s);
}
END_TEST

/* Wait (up to 40 states) for an event of kind whose text holds needle;
 * 1 when seen, with its who copied. */
static int wait_event(int fd, const char *kind, const char *needle, char *who, size_t cap)
{
	for (int i = 0; i < 40; i++) {
		json_t *m = next_msg(fd), *es = json_object_get(m, "events");

		if (!m)
			return 0;
		for (size_t k = 0; k < json_array_size(es); k++) {
			json_t *e = json_array_get(es, k);
			const char *t = json_string_value(json_object_get(e, "text"));

			if (!strcmp(json_string_value(json_object_get(e, "kind")), kind) && t &&
			    strstr(t, needle)) {
				snprintf(who, cap, "%s",
				         json_string_value(json_object_get(e, "who")));
				json_decref(m);
				return 1;
			}
		}
		json_decref(m);
	}
	return 0;
}

START_TEST(notable_events_reach_the_console)
{
	struct itest_server s = {0};
	struct itest_resp r;
	char head[4096], who[80] = "";
	int status, fd;

	itest_start_with_food(&s);
	fd = feed_open(s.port, PROTO AUTH, head, sizeof(head), &status);
	ck_assert_int_eq(status, 101);
	json_decref(next_msg(fd));
	ck_assert_int_eq(itest_post_json(s.port, "/api/v1/admin/campaigns/food/pause", "{}", 1, &r),
	                 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	ck_assert(wait_event(fd, "staff", "campaign.pause food", who, sizeof(who)));
	ck_assert_ptr_nonnull(strstr(who, "admin"));
	ck_assert_int_eq(
	    itest_post_json(s.port, "/api/v1/admin/campaigns/food/resume", "{}", 1, &r), 0);
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_post_json(s.port, "/api/v1/campaigns/food/donations",
	                                 "{\"amount_cents\":700,\"currency\":\"USD\","
	                                 "\"donor\":{\"name\":\"Eve\",\"email\":\"e@x.org\"},"
	                                 "\"payment_token\":\"tok_chargeDeclined\"}",
	                                 0, &r),
	                 0);
	ck_assert_int_eq(r.status, 202);
	itest_resp_fini(&r);
	ck_assert(wait_event(fd, "decline", "declined", who, sizeof(who)));
	close(fd);
	itest_cleanup(&s);
}
END_TEST

/* The state after which campaign slug's row satisfies ok (up to 40 states:
 * 10 s); NULL when none did. The caller decrefs it. */
static json_t *wait_row(int fd, const char *slug, int (*ok)(json_t *row, void *ud), void *ud)
{
	for (int i = 0; i < 40; i++) {
		json_t *m = next_msg(fd), *c = m ? campaign_in(m, slug) : NULL;

		if (!m)
			return NULL;
		if (c && ok(c, ud))
			return m;
		json_decref(m);
	}
	return NULL;
}

static int64_t jnum(json_t *o, const char *key)
{
	return (int64_t)json_integer_value(json_object_get(o, key));
}

static int hour_is(json_t *row, void *ud)
{
	const int64_t *want = ud;

	return jnum(row, "hour_gifts") == want[0] && jnum(row, "hour_cents") == want[1];
}

static int is_paused(json_t *row, void *ud)
{
	(void)ud;
	return !strcmp(json_string_value(json_object_get(row, "status")), "paused");
}

static int is_active(json_t *row, void *ud)
{
	(void)ud;
	return !strcmp(json_string_value(json_object_get(row, "status")), "active");
}

/* A feed's hello, checked, and its alert_paused_min. */
static int64_t hello_alert(int fd)
{
	json_t *m = next_msg(fd);
	int64_t v;

	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(json_string_value(json_object_get(m, "type")), "hello");
	ck_assert(json_is_integer(json_object_get(m, "alert_paused_min")));
	v = jnum(m, "alert_paused_min");
	json_decref(m);
	return v;
}

/* The hello names --alert-paused-min; a paused campaign's row says since
 * when, on the server's clock that each state gives (now_ms), the same
 * after a restart; every row carries its last hour's gifts and amount. */
START_TEST(pauses_and_the_hour_arrive)
{
	struct itest_server s = {0};
	struct itest_resp r;
	char head[4096];
	int64_t hour[2] = {2, 4000}, before, since, now;
	int status, fd;
	json_t *m, *c;

	ck_assert_int_eq(itest_start(&s, "--alert-paused-min 20"), 0);
	ck_assert_int_eq(itest_create_campaign(s.port, "food", "USD", 100000), 201);
	fd = feed_open(s.port, PROTO AUTH, head, sizeof(head), &status);
	ck_assert_int_eq(status, 101);
	ck_assert_int_eq(hello_alert(fd), 20);
	m = next_msg(fd);
	ck_assert_ptr_nonnull(m);
	c = campaign_in(m, "food");
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(jnum(c, "hour_gifts"), 0);
	ck_assert_int_eq(jnum(c, "hour_cents"), 0);
	ck_assert_ptr_null(json_object_get(c, "paused_since_ms"));
	now = jnum(m, "now_ms");
	ck_assert(now > 0 && llabs((long long)(now - util_now_ms())) < 60000);
	json_decref(m);

	/* two gifts succeed: the hour shows them */
	ck_assert_int_eq(itest_donate(s.port, "food", 2500, "Ada", "ada@example.org"), 202);
	ck_assert_int_eq(itest_donate(s.port, "food", 1500, "Bo", "bo@example.org"), 202);
	m = wait_row(fd, "food", hour_is, hour);
	ck_assert_msg(m != NULL, "the hour never showed 2 gifts, 4000 cents");
	json_decref(m);

	/* paused: since when, no later than the state that says so */
	before = util_now_ms();
	ck_assert_int_eq(itest_post_json(s.port, "/api/v1/admin/campaigns/food/pause", "{}", 1, &r),
	                 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	m = wait_row(fd, "food", is_paused, NULL);
	ck_assert_ptr_nonnull(m);
	c = campaign_in(m, "food");
	since = jnum(c, "paused_since_ms");
	ck_assert_msg(since >= before - 1000 && since <= jnum(m, "now_ms"),
	              "paused_since_ms %lld: paused at %lld, state at %lld", (long long)since,
	              (long long)before, (long long)jnum(m, "now_ms"));
	ck_assert_int_eq(jnum(c, "hour_gifts"), 2);
	json_decref(m);
	close(fd);

	/* a restart keeps since when; the hour is memory only */
	ck_assert_int_eq(itest_signal(&s, SIGTERM), 0);
	ck_assert_int_eq(itest_start(&s, "--alert-paused-min 20"), 0);
	fd = feed_open(s.port, PROTO AUTH, head, sizeof(head), &status);
	ck_assert_int_eq(status, 101);
	ck_assert_int_eq(hello_alert(fd), 20);
	m = next_msg(fd);
	ck_assert_ptr_nonnull(m);
	c = campaign_in(m, "food");
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(json_string_value(json_object_get(c, "status")), "paused");
	ck_assert_int_eq(jnum(c, "paused_since_ms"), since);
	json_decref(m);

	/* resumed: the row says so, and no longer since when */
	ck_assert_int_eq(
	    itest_post_json(s.port, "/api/v1/admin/campaigns/food/resume", "{}", 1, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	m = wait_row(fd, "food", is_active, NULL);
	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_null(json_object_get(campaign_in(m, "food"), "paused_since_ms"));
	json_decref(m);
	close(fd);
	itest_cleanup(&s);
}
END_TEST

/* Without the option the hello says 15; 0 turns the alert off. */
START_TEST(alert_minutes_default_and_off)
{
	struct itest_server s = {0};
	char head[4096];
	int status, fd;

	ck_assert_int_eq(itest_start(&s, NULL), 0);
	fd = feed_open(s.port, PROTO AUTH, head, sizeof(head), &status);
	ck_assert_int_eq(status, 101);
	ck_assert_int_eq(hello_alert(fd), 15);
	close(fd);
	ck_assert_int_eq(itest_signal(&s, SIGTERM), 0);
	ck_assert_int_eq(itest_start(&s, "--alert-paused-min 0"), 0);
	fd = feed_open(s.port, PROTO AUTH, head, sizeof(head), &status);
	ck_assert_int_eq(status, 101);
	ck_assert_int_eq(hello_alert(fd), 0);
	close(fd);
	itest_cleanup(&s);
}
END_TEST

/* A bad --alert-paused-min is refused at start with what it wants, before
 * anything is written. */
START_TEST(bad_alert_minutes_are_refused)
{
	static const char *const bad[] = {
	    "x", "-1", "10081", "1.5", "15min", "''", "99999999999999999999"};
	const char *bin = getenv("TALLY_BIN") ? getenv("TALLY_BIN") : "./tally";
	char *dir = tests_tmpdir(), cmd[2048], out[4096];

	ck_assert_ptr_nonnull(dir);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		FILE *p;
		size_t n;
		int st;

		snprintf(cmd, sizeof(cmd),
		         "%s --headless --db %s/never.db --alert-paused-min %s 2>&1", bin, dir,
		         bad[i]);
		p = popen(cmd, "r");
		ck_assert_ptr_nonnull(p);
		n = fread(out, 1, sizeof(out) - 1, p);
		out[n] = '\0';
		st = pclose(p);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s: status %d: %s", bad[i],
		              st, out);
		ck_assert_msg(
		    strstr(out, "tally: --alert-paused-min wants 0 (off) to 10080 minutes"),
		    "%s: said %s", bad[i], out);
		snprintf(cmd, sizeof(cmd), "%s/never.db", dir);
		ck_assert_msg(access(cmd, F_OK) != 0, "%s: created the database", bad[i]);
	}
	/* and without its value */
	snprintf(cmd, sizeof(cmd), "%s --headless --db %s/never.db --alert-paused-min 2>&1", bin,
	         dir);
	{
		FILE *p = popen(cmd, "r");
		int st;

		ck_assert_ptr_nonnull(p);
		while (fread(out, 1, sizeof(out), p) > 0)
			;
		st = pclose(p);
		ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2);
	}
	tests_rmdir(dir);
}
END_TEST

/* The dead job id in state m, or NULL. */
static json_t *dead_in(json_t *m, long long id)
{
	json_t *ds = json_object_get(m, "dead");

	for (size_t i = 0; i < json_array_size(ds); i++)
		if (json_integer_value(json_object_get(json_array_get(ds, i), "id")) == id)
			return json_array_get(ds, i);
	return NULL;
}

/* Wait (up to 40 states) for a state listing a dead job with `attempts`;
 * returns that state (the caller decrefs) and the job in *job. */
static json_t *wait_dead_with(int fd, long long attempts, json_t **job)
{
	for (int i = 0; i < 40; i++) {
		json_t *m = next_msg(fd), *ds = json_object_get(m, "dead");

		ck_assert_ptr_nonnull(m);
		for (size_t k = 0; k < json_array_size(ds); k++)
			if (json_integer_value(
			        json_object_get(json_array_get(ds, k), "attempts")) == attempts) {
				*job = json_array_get(ds, k);
				return m;
			}
		json_decref(m);
	}
	ck_abort_msg("no dead job with %lld attempts in 40 states", attempts);
	return NULL;
}

static void check_history(json_t *job, size_t n)
{
	json_t *h = json_object_get(job, "attempt_history");

	ck_assert_msg(json_is_array(h), "no attempt_history");
	ck_assert_uint_eq(json_array_size(h), n);
	for (size_t i = 0; i < n; i++) {
		json_t *a = json_array_get(h, i);

		ck_assert_int_eq(json_integer_value(json_object_get(a, "attempt")),
		                 (long long)i + 1);
		ck_assert_int_gt(json_integer_value(json_object_get(a, "at_ms")), 0);
		ck_assert(json_is_integer(json_object_get(a, "ms")));
		ck_assert_str_eq(json_string_value(json_object_get(a, "error")),
		                 "processing_error: simulated transient failure");
	}
}

/* A dead job's attempt history comes with the first state that lists it,
 * and again only when it died again with more attempts. */
START_TEST(a_dead_jobs_history_is_sent_once)
{
	struct itest_server s = {0};
	struct itest_resp r;
	char head[4096], path[128];
	int status, fd;
	json_t *m, *job;
	long long id;

	ck_assert_int_eq(
	    itest_start(&s, "--mock-fail-rate 1 --jobs payments:attempts=2,backoff-ms=20"), 0);
	ck_assert_int_eq(itest_create_campaign(s.port, "food", "USD", 100000), 201);
	ck_assert_int_eq(itest_donate(s.port, "food", 2500, "Ada", "ada@example.org"), 202);
	fd = feed_open(s.port, PROTO AUTH, head, sizeof(head), &status);
	ck_assert_int_eq(status, 101);
	json_decref(next_msg(fd)); /* hello */
	m = wait_dead_with(fd, 2, &job);
	check_history(job, 2);
	id = json_integer_value(json_object_get(job, "id"));
	json_decref(m);
	/* the console has it: the next states list the job without it */
	for (int i = 0; i < 2; i++) {
		m = next_msg(fd);
		ck_assert_ptr_nonnull(m);
		job = dead_in(m, id);
		ck_assert_ptr_nonnull(job);
		ck_assert_ptr_null(json_object_get(job, "attempt_history"));
		json_decref(m);
	}
	/* retried, it fails once more: sent again, with the third attempt */
	snprintf(path, sizeof(path), "/api/v1/admin/jobs/%lld/retry", id);
	ck_assert_int_eq(itest_post_json(s.port, path, "{}", 1, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	m = wait_dead_with(fd, 3, &job);
	ck_assert_int_eq(json_integer_value(json_object_get(job, "id")), id);
	check_history(job, 3);
	json_decref(m);
	m = next_msg(fd);
	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_null(json_object_get(dead_in(m, id), "attempt_history"));
	json_decref(m);
	close(fd);
	/* a new console gets it at once */
	fd = feed_open(s.port, PROTO AUTH, head, sizeof(head), &status);
	ck_assert_int_eq(status, 101);
	json_decref(next_msg(fd));
	m = next_msg(fd);
	ck_assert_ptr_nonnull(m);
	check_history(dead_in(m, id), 3);
	json_decref(m);
	close(fd);
	itest_cleanup(&s);
}
END_TEST

/* The next state's shield within n states; NULL when none carried one.
 * *states counts the states read. The caller decrefs the state in *m. */
static json_t *next_shield(int fd, int n, json_t **m, int *states)
{
	for (int i = 0; i < n; i++) {
		json_t *st = next_msg(fd), *sh;

		ck_assert_ptr_nonnull(st);
		(*states)++;
		sh = json_object_get(st, "shield");
		if (sh) {
			*m = st;
			return sh;
		}
		json_decref(st);
	}
	return NULL;
}

/* The card-testing shield in the feed: the first state has it whole
 * (shield_json's fields), an idle shield is not sent again, a raise (a
 * staff action through the API) comes in the next render, a lower too. */
START_TEST(the_shield_comes_when_it_changes)
{
	struct itest_server s = {0};
	struct itest_resp r;
	char head[4096];
	int status, fd, states = 0;
	json_t *m = NULL, *sh;

	itest_start_with_food(&s);
	fd = feed_open(s.port, PROTO AUTH, head, sizeof(head), &status);
	ck_assert_int_eq(status, 101);
	json_decref(next_msg(fd)); /* hello */
	sh = next_shield(fd, 1, &m, &states);
	ck_assert_ptr_nonnull(sh);
	ck_assert_str_eq(json_string_value(json_object_get(sh, "state")), "down");
	ck_assert(json_is_array(json_object_get(sh, "campaigns")));
	ck_assert(json_is_array(json_object_get(sh, "offenders")));
	ck_assert(json_is_object(json_object_get(sh, "rules")));
	ck_assert(json_is_object(json_object_get(sh, "refused")));
	ck_assert_int_eq(json_integer_value(json_object_get(sh, "trips")), 0);
	json_decref(m);
	/* idle: eight states (2 s, two renders) and none carries it */
	states = 0;
	ck_assert_ptr_null(next_shield(fd, 8, &m, &states));
	ck_assert_int_eq(itest_post_json(s.port, "/api/v1/admin/shield/raise", "{}", 1, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	/* at the next render, at most a second (4 states) and one away */
	states = 0;
	sh = next_shield(fd, 6, &m, &states);
	ck_assert_ptr_nonnull(sh);
	ck_assert_str_eq(json_string_value(json_object_get(sh, "state")), "raised");
	ck_assert(json_is_true(json_object_get(sh, "raised")));
	ck_assert_int_eq(json_integer_value(json_object_get(sh, "trips")), 1);
	json_decref(m);
	ck_assert_int_eq(itest_post_json(s.port, "/api/v1/admin/shield/lower", "{}", 1, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	sh = next_shield(fd, 6, &m, &states);
	ck_assert_ptr_nonnull(sh);
	ck_assert_str_eq(json_string_value(json_object_get(sh, "state")), "down");
	json_decref(m);
	close(fd);
	itest_cleanup(&s);
}
END_TEST

Suite *feed_suite(void)
{
	Suite *s = suite_create("feed");
	TCase *tc = tcase_create("feed");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, only_staff_from_here_may_open_it);
	tcase_add_test(tc, hello_then_states_with_what_changed);
	tcase_add_test(tc, many_campaigns_come_in_batches);
	tcase_add_test(tc, a_console_gets_in_when_viewers_are_full);
	tcase_add_test(tc, consoles_hear_the_server_stop);
	tcase_add_test(tc, notable_events_reach_the_console);
	tcase_add_test(tc, pauses_and_the_hour_arrive);
	tcase_add_test(tc, alert_minutes_default_and_off);
	tcase_add_test(tc, bad_alert_minutes_are_refused);
	tcase_add_test(tc, a_dead_jobs_history_is_sent_once);
	tcase_add_test(tc, the_shield_comes_when_it_changes);
	suite_add_tcase(s, tc);
	return s;
}
