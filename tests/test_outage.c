/* tests/test_outage.c - outage drills: the real binary against stand-ins
 * for the processor, the SMTP server and a webhook endpoint that hang,
 * answer errors or reset the connection mid-answer (tests/tools, outage
 * modes). Each drill shows that while the service is out intake still
 * answers 202 in its normal time and the public reads answer, that the
 * jobs wait in the queue and retry on their schedule (the stand-in's count
 * of attempts over a window is held to what the backoff allows; none is
 * dead before its attempts are spent), and that once the outage ends (the
 * stand-in switched back to "ok", no restart) every job drains: every gift
 * captured exactly once, every receipt and event delivered, the totals
 * exact. The receipts outbox on a full disk (a small tmpfs; skipped,
 * saying so, without root) is drilled the same way, and SIGTERM with a
 * service hanging must keep its 5 s. */
#include "tests/itest.h"
#include "tests/tests.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { N = 16, MORE = 4 }; /* gifts before the window, and during it */

/* The queues' policy in the drills: an attempt has 250 ms, a retry waits
 * between 300 and 600 ms (600 ms with jitter, never more), and 100
 * attempts are far more than a drill spends. */
#define DRILL(q) "--jobs " q ":timeout-ms=250,backoff-ms=600,backoff-max-ms=600,attempts=100"
#define MIN_GAP_S 0.3 /* the least time between two attempts of a job */

static struct itest_server srv;
static struct itest_tool tool, hook;
static int control;     /* the SMTP sink's control port */
static long long given; /* cents accepted so far */
static int gifts;

static void setup(void)
{
	memset(&srv, 0, sizeof(srv));
	memset(&tool, 0, sizeof(tool));
	memset(&hook, 0, sizeof(hook));
	control = 0;
	given = 0;
	gifts = 0;
	setenv("STRIPE_SECRET_KEY", "sk_test_tally", 1);
}

static void teardown(void)
{
	itest_cleanup(&srv);
	itest_tool_stop(&tool);
	itest_tool_stop(&hook);
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A number from a stand-in's JSON answer to GET path. */
static long long tool_num(int port, const char *path, const char *key)
{
	json_t *v = itest_get_json(port, path, 0);
	long long n = itest_json_int(v, key);

	json_decref(v);
	return n;
}

/* Switch a stand-in's outage mode (POST /_mode with body). */
static void set_mode(int port, const char *body)
{
	struct itest_resp r;

	ck_assert_int_eq(itest_post_json(port, "/_mode", body, 0, &r), 0);
	ck_assert_msg(r.status == 200, "mode %s: %d %s", body, r.status, r.body);
	itest_resp_fini(&r);
}

/* Start the SMTP sink with args and --control; read its control port. */
static void start_sink(const char *args)
{
	char all[256], line[64];

	snprintf(all, sizeof(all), "--control %s", args);
	ck_assert_int_eq(itest_tool_start(&tool, "smtp_sink.py", all), 0);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), tool.out));
	ck_assert_int_eq(sscanf(line, "CONTROL %d", &control), 1);
}

static long long sink(const char *key)
{
	return tool_num(control, "/_stats", key);
}

/* Start tally with extra args and a USD campaign "food". */
static void start(const char *extra)
{
	char args[1024];

	snprintf(args, sizeof(args), "--job-retention-s 0 %s", extra);
	ck_assert_msg(itest_start(&srv, args) == 0, "tally did not start");
	ck_assert_int_eq(itest_create_campaign(srv.port, "food", "USD", 10000000), 201);
}

/* Give one gift: answered 202 within a second, as when nothing is out. */
static void give(void)
{
	long long cents = 1000 + gifts;
	char body[512];
	struct itest_resp r;
	double t0 = mono_s(), took;

	snprintf(body, sizeof(body),
	         "{\"amount_cents\":%lld,\"currency\":\"USD\",\"donor\":{\"name\":\"Ada\","
	         "\"email\":\"ada%d@example.org\"},\"payment_token\":\"tok_visa\"}",
	         cents, gifts);
	ck_assert_int_eq(itest_post_json(srv.port, "/api/v1/campaigns/food/donations", body, 0, &r),
	                 0);
	took = mono_s() - t0;
	ck_assert_msg(r.status == 202, "gift %d: %d %s", gifts, r.status, r.body);
	ck_assert_msg(took < 1.0, "gift %d took %.2f s", gifts, took);
	itest_resp_fini(&r);
	given += cents;
	gifts++;
}

static long long queue_num(const char *name, const char *key)
{
	json_t *all = itest_get_json(srv.port, "/api/v1/admin/queues", 1), *v;
	long long n = -1;
	size_t i;

	json_array_foreach(json_object_get(all, "queues"), i, v)
	{
		if (!strcmp(json_string_value(json_object_get(v, "name")), name))
			n = itest_json_int(v, key);
	}
	json_decref(all);
	ck_assert_int_ge(n, 0);
	return n;
}

/* Queue q as staff see it, from one answer (one snapshot): its jobs still
 * to do (ready, running or waiting to retry) and its failed attempts. */
static long long queue_open(const char *name, long long *failed)
{
	json_t *all = itest_get_json(srv.port, "/api/v1/admin/queues", 1), *v;
	long long n = -1;
	size_t i;

	json_array_foreach(json_object_get(all, "queues"), i, v)
	{
		if (!strcmp(json_string_value(json_object_get(v, "name")), name)) {
			n = itest_json_int(v, "ready") + itest_json_int(v, "running") +
			    itest_json_int(v, "scheduled");
			*failed = itest_json_int(v, "failed");
		}
	}
	json_decref(all);
	ck_assert_int_ge(n, 0);
	return n;
}

/* The campaign's public read answers within a second: *pending and
 * *total get its pending_cents and total_cents. */
static void campaign(long long *pending, long long *total)
{
	double t0 = mono_s();
	json_t *c = itest_get_json(srv.port, "/api/v1/campaigns/food", 0);

	ck_assert_msg(mono_s() - t0 < 1.0, "the campaign took %.2f s", mono_s() - t0);
	*pending = itest_json_int(c, "pending_cents");
	*total = itest_json_int(c, "total_cents");
	json_decref(c);
}

/* The jobs of queue q still to do (ready, running or scheduled), read in
 * one statement from the database: how many, and the fewest attempts any
 * of them has spent in *least (a running job's row is still ready). */
static int open_jobs(const char *q, long long *least)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
	         "SELECT count(*) * 1000000 + coalesce(min(attempts), 0) FROM jobs WHERE queue = "
	         "'%s' AND state IN ('ready', 'running', 'scheduled')",
	         q);
	{
		long long v = itest_sql_int(srv.db, sql);

		ck_assert_int_ge(v, 0);
		*least = v % 1000000;
		return (int)(v / 1000000);
	}
}

/* How many attempts the stand-in has seen (each attempt of the drill is
 * one request, connection or RCPT there). */
typedef long long (*seen_fn)(void);

/* While the outage lasts: every one of the n jobs of queue q waits (none
 * dead, none done), and they back off as scheduled. Tally's own count
 * gives the window: until every job has spent two more attempts (counted
 * when they fail; the first may have been under way at the start). Over
 * it the stand-in must see at least one new attempt per job and at most
 * what the backoff allows, 2 + window / MIN_GAP_S per job (a hot retry
 * loop makes thousands); the window lasts at least one gap. */
static void waits_and_backs_off(const char *q, int n, seen_fn seen)
{
	long long least, first, r0, r1, failed;
	double t0, dt;
	int ok = 0;

	ck_assert_int_eq(open_jobs(q, &first), n);
	t0 = mono_s();
	r0 = seen();
	for (int i = 0; i < 1500 && !ok; i++) {
		ck_assert_int_eq(open_jobs(q, &least), n);
		ok = least >= first + 2;
		if (!ok)
			usleep(20000);
	}
	dt = mono_s() - t0;
	r1 = seen();
	ck_assert_msg(ok, "%s: the jobs did not retry twice in %.1f s", q, dt);
	ck_assert_msg(r1 - r0 >= n, "%s: %lld attempts seen for %d jobs", q, r1 - r0, n);
	ck_assert_msg((double)(r1 - r0) <= n * (2 + dt / MIN_GAP_S),
	              "%s: %lld attempts in %.2f s for %d jobs: a hot retry loop", q, r1 - r0, dt,
	              n);
	ck_assert_msg(dt >= MIN_GAP_S, "%s: two more attempts each in %.2f s", q, dt);
	/* Staff see them all waiting, their failed attempts counted. */
	ck_assert_int_eq(queue_open(q, &failed), n);
	ck_assert_int_ge(failed, 2 * n);
	ck_assert_int_eq(queue_num(q, "dead"), 0);
	ck_assert_int_eq(queue_num(q, "done"), 0);
}

/* Wait (at most 30 s) until queue q has done n jobs. */
static void wait_done(const char *q, long long n)
{
	long long done = 0;

	for (int i = 0; i < 1500 && (done = queue_num(q, "done")) < n; i++)
		usleep(20000);
	ck_assert_msg(done == n, "%s: %lld of %lld done", q, done, n);
}

/* After the outage: nothing left to do and nothing dead; every gift
 * succeeded, counted once in the campaign. */
static void drained(void)
{
	long long pending, total;

	ck_assert_int_eq(itest_settle(srv.port), 0);
	for (int q = 0; q < 3; q++) {
		const char *name = q == 0 ? "payments" : q == 1 ? "receipts" : "webhooks";

		ck_assert_msg(queue_num(name, "dead") == 0, "%s has dead jobs", name);
	}
	ck_assert_int_eq(queue_num("payments", "done"), gifts);
	ck_assert_int_eq(
	    itest_sql_int(srv.db, "SELECT count(*) FROM donations WHERE status = 'succeeded'"),
	    gifts);
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT raised_cents FROM campaigns"), given);
	campaign(&pending, &total);
	ck_assert_int_eq(pending, 0);
	ck_assert_int_eq(total, given);
}

/* ---- the processor ---- */

static long long processor_requests(void)
{
	return tool_num(tool.port, "/_stats?summary=1", "requests");
}

/* Every gift charged exactly once: one charge per donation at the
 * stand-in, and no idempotency key charged twice. */
static void charged_once(void)
{
	json_t *st = itest_get_json(tool.port, "/_stats", 0), *v;
	const char *k;
	int keys_charged = 0;

	ck_assert_int_eq(itest_json_int(st, "captures"), gifts);
	ck_assert_int_eq(json_object_size(json_object_get(st, "by_donation")), gifts);
	json_object_foreach(json_object_get(st, "by_donation"), k, v)
	{
		ck_assert_msg(itest_json_int(v, "charges") == 1, "%s: %lld charges", k,
		              itest_json_int(v, "charges"));
	}
	json_object_foreach(json_object_get(st, "by_key"), k, v)
	{
		keys_charged += json_is_true(json_object_get(v, "charged"));
	}
	ck_assert_int_eq(keys_charged, gifts);
	json_decref(st);
}

/* The processor is out in mode (a /_mode body, or NULL when the stand-in
 * started in it): intake and reads stay up, captures wait and back off;
 * then it comes back and every gift is captured once. */
static void processor_drill(const char *standin_args, const char *mode)
{
	char args[512];
	long long pending, total;

	ck_assert_int_eq(itest_tool_start(&tool, "stripe_standin.py", standin_args), 0);
	if (mode)
		set_mode(tool.port, mode);
	snprintf(args, sizeof(args),
	         "--processor stripe --stripe-url http://127.0.0.1:%d " DRILL("payments"),
	         tool.port);
	start(args);
	for (int i = 0; i < N; i++)
		give();
	campaign(&pending, &total);
	ck_assert_int_eq(pending, given);
	ck_assert_int_eq(total, 0);
	waits_and_backs_off("payments", N, processor_requests);
	for (int i = 0; i < MORE; i++)
		give();
	campaign(&pending, &total);
	ck_assert_int_eq(pending, given);
	ck_assert_int_eq(total, 0);

	set_mode(tool.port, "{\"mode\":\"ok\"}");
	drained();
	charged_once();
}

/* The processor reads every request and never answers. */
START_TEST(processor_hang)
{
	processor_drill("--hang", NULL);
	ck_assert_int_ge(tool_num(tool.port, "/_stats?summary=1", "hung"), 2 * N);
}
END_TEST

/* The processor answers 500 to everything. */
START_TEST(processor_500)
{
	processor_drill("", "{\"mode\":\"500\"}");
	ck_assert_int_ge(tool_num(tool.port, "/_stats?summary=1", "injected"), 2 * N);
}
END_TEST

/* The processor does the work, then the connection is reset half-way
 * through the answer's head: tally never learns an intent's id. */
START_TEST(processor_reset)
{
	processor_drill("--reset", NULL);
	ck_assert_int_ge(tool_num(tool.port, "/_stats?summary=1", "resets"), 2 * N);
}
END_TEST

/* Only confirmations are reset: the card is charged and the answer lost.
 * The next attempt reads the intent and finds it succeeded: no second
 * charge, though the outage never ends. */
START_TEST(processor_reset_after_the_charge)
{
	char args[512];
	json_t *st, *v;
	const char *k;

	ck_assert_int_eq(itest_tool_start(&tool, "stripe_standin.py", ""), 0);
	set_mode(tool.port, "{\"mode\":\"reset\",\"only\":\"confirm\"}");
	snprintf(args, sizeof(args),
	         "--processor stripe --stripe-url http://127.0.0.1:%d " DRILL("payments"),
	         tool.port);
	start(args);
	for (int i = 0; i < N; i++)
		give();
	drained();
	charged_once();
	st = itest_get_json(tool.port, "/_stats", 0);
	ck_assert_int_eq(itest_json_int(st, "resets"), N);
	json_object_foreach(json_object_get(st, "by_donation"), k, v)
	{
		ck_assert_int_eq(itest_json_int(v, "intents"), 1);
		ck_assert_int_eq(itest_json_int(v, "confirms"), 1);
	}
	json_decref(st);
}
END_TEST

/* ---- receipts over SMTP ---- */

static long long sink_connections(void)
{
	return sink("connections");
}

static long long sink_refused(void)
{
	return sink("refused");
}

/* The SMTP server is out (mode, a /_mode body): gifts are captured and
 * their webhooks delivered while the receipts wait and back off; then it
 * comes back and every donor gets one receipt. */
static void smtp_drill(const char *mode, seen_fn seen, const char *extra)
{
	char args[512];

	start_sink("");
	set_mode(control, mode);
	ck_assert_int_eq(itest_tool_start(&hook, "webhook_receiver.py", "--secret whsec_o"), 0);
	snprintf(args, sizeof(args),
	         "--smtp-url smtp://127.0.0.1:%d --webhook http://127.0.0.1:%d/h "
	         "--webhook-secret whsec_o " DRILL("receipts") " %s",
	         tool.port, hook.port, extra);
	start(args);
	for (int i = 0; i < N; i++)
		give();
	wait_done("payments", N);
	wait_done("webhooks", N);
	waits_and_backs_off("receipts", N, seen);
	for (int i = 0; i < MORE; i++)
		give();
	wait_done("payments", gifts);

	set_mode(control, "{\"mode\":\"ok\"}");
	drained();
	ck_assert_int_eq(queue_num("receipts", "done"), gifts);
	ck_assert_int_eq(queue_num("webhooks", "done"), gifts);
	ck_assert_int_eq(sink("messages"), gifts);
	ck_assert_int_eq(sink("distinct_message_ids"), gifts);
	ck_assert_int_eq(sink("duplicates"), 0);
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM donations WHERE "
	                                       "receipt_sent_at IS NOT NULL"),
	                 gifts);
}

/* The server takes connections and never greets. */
START_TEST(smtp_hang)
{
	smtp_drill("{\"mode\":\"hang\"}", sink_connections, "");
}
END_TEST

/* The server defers every recipient (451). */
START_TEST(smtp_refusing)
{
	smtp_drill("{\"mode\":\"refuse\"}", sink_refused, "");
}
END_TEST

/* The server takes the message and never answers its end. A connection
 * whose session is stuck so is not used for another receipt: nothing more
 * is sent down a stuck session. One receipt at a time, so that the next
 * one always starts after the failed one ended (two transfers in flight
 * on one worker may still meet in one pass of curl, the failed one's
 * connection handed to the other before tally sees the failure). */
START_TEST(smtp_hang_after_the_message)
{
	smtp_drill("{\"mode\":\"hang-data\"}", sink_connections,
	           "--jobs receipts:workers=1,inflight=1");
	ck_assert_int_eq(sink("sent_to_stuck"), 0);
}
END_TEST

/* ---- webhooks ---- */

static long long hook_requests(void)
{
	return tool_num(hook.port, "/_events?summary=1", "requests");
}

/* The endpoint takes every event, then the connection is reset half-way
 * through the answer: tally cannot know, retries, and the receiver sees
 * repeats of the same event ids; once it answers, every event is done. */
START_TEST(webhook_reset)
{
	char args[512];

	ck_assert_int_eq(itest_tool_start(&hook, "webhook_receiver.py", "--secret whsec_r --reset"),
	                 0);
	snprintf(args, sizeof(args),
	         "--webhook http://127.0.0.1:%d/h --webhook-secret whsec_r " DRILL("webhooks"),
	         hook.port);
	start(args);
	for (int i = 0; i < N; i++)
		give();
	wait_done("payments", N);
	waits_and_backs_off("webhooks", N, hook_requests);
	for (int i = 0; i < MORE; i++)
		give();
	wait_done("payments", gifts);

	set_mode(hook.port, "{\"mode\":\"ok\"}");
	drained();
	ck_assert_int_eq(queue_num("webhooks", "done"), gifts);
	ck_assert_int_eq(tool_num(hook.port, "/_events?summary=1", "distinct_ids"), gifts);
	ck_assert_int_eq(tool_num(hook.port, "/_events?summary=1", "bad_signatures"), 0);
	ck_assert_int_ge(tool_num(hook.port, "/_events?summary=1", "resets"), 2 * N);
}
END_TEST

/* ---- the stand-ins' switch ---- */

/* POST body to port's /_mode: 400 naming what was wrong (want). */
static void mode_refused(int port, const char *body, const char *want)
{
	struct itest_resp r;

	ck_assert_int_eq(itest_post_json(port, "/_mode", body, 0, &r), 0);
	ck_assert_msg(r.status == 400, "mode %s: %d %s", body, r.status, r.body);
	ck_assert_msg(strstr(r.body, want) != NULL, "mode %s: %s", body, r.body);
	itest_resp_fini(&r);
}

/* A mode a stand-in does not know is refused, saying which it knows, and
 * changes nothing. */
START_TEST(stand_ins_refuse_unknown_modes)
{
	static const char *const bad[] = {
	    "{\"mode\":\"down\"}", "{\"mode\":1}", "{}", "[\"ok\"]", "not json", ""};

	ck_assert_int_eq(itest_tool_start(&hook, "webhook_receiver.py", "--secret whsec_m"), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		mode_refused(hook.port, bad[i], "ok|hang|reset|503");
	json_decref(itest_get_json(hook.port, "/_events?summary=1", 0)); /* still serving */
	itest_tool_stop(&hook);

	start_sink("");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		mode_refused(control, bad[i], "ok|hang|hang-data|refuse");
	itest_tool_stop(&tool);

	ck_assert_int_eq(itest_tool_start(&tool, "stripe_standin.py", ""), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		mode_refused(tool.port, bad[i], "ok|hang|reset|500");
	mode_refused(tool.port, "{\"mode\":\"reset\",\"only\":\"charges\"}",
	             "create|update|confirm|get|refund");
	{
		json_t *st = itest_get_json(tool.port, "/_stats?summary=1", 0);

		ck_assert_str_eq(json_string_value(json_object_get(st, "mode")), "ok");
		json_decref(st);
	}
}
END_TEST

/* ---- the receipts outbox full ---- */

static char disk[600], filler[700];
static int mounted;

static void outbox_setup(void)
{
	char *dir = tests_tmpdir();

	setup();
	ck_assert_ptr_nonnull(dir);
	snprintf(disk, sizeof(disk), "%s/outbox", dir);
	free(dir);
	ck_assert_int_eq(mkdir(disk, 0700), 0);
	mounted = mount("tally-outbox", disk, "tmpfs", 0, "size=256k") == 0;
	snprintf(filler, sizeof(filler), "%s/.filler", disk);
}

static void outbox_teardown(void)
{
	teardown();
	if (mounted && umount(disk))
		fprintf(stderr, "test_outage: umount %s: %s\n", disk, strerror(errno));
	mounted = 0;
}

/* Fill the outbox's disk; returns the bytes written. */
static long fill(void)
{
	static char block[4096];
	int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	long total = 0;
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	while ((n = write(fd, block, sizeof(block))) > 0)
		total += n;
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_int_eq(close(fd), 0);
	return total;
}

/* Entries in the outbox, and how many of them are receipts. */
static int outbox_entries(int *receipts)
{
	DIR *d = opendir(disk);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	*receipts = 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		n++;
		*receipts += !strncmp(e->d_name, "receipt-dn_", 11);
	}
	closedir(d);
	return n;
}

static long long receipts_failed(void)
{
	return queue_num("receipts", "failed");
}

/* The outbox's disk is full: gifts are accepted, captured and their
 * webhooks delivered, while the receipts wait and retry on their backoff
 * (tally's count of failed attempts over the window: no stand-in here);
 * once space returns they are written by themselves, one file per gift,
 * nothing left half-written. */
START_TEST(receipts_outbox_full)
{
	char args[1024], path[800];
	int receipts;

	if (!mounted) {
		fprintf(stderr, "test_outage: skipped: cannot mount a tmpfs (not root?)\n");
		return;
	}
	ck_assert_int_eq(itest_tool_start(&hook, "webhook_receiver.py", "--secret whsec_f"), 0);
	snprintf(args, sizeof(args),
	         "--outbox %s --webhook http://127.0.0.1:%d/h --webhook-secret whsec_f " DRILL(
	             "receipts"),
	         disk, hook.port);
	start(args);
	ck_assert_int_gt(fill(), 0);
	for (int i = 0; i < N; i++)
		give();
	wait_done("payments", N);
	wait_done("webhooks", N);
	waits_and_backs_off("receipts", N, receipts_failed);
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM jobs WHERE queue = "
	                                       "'receipts' AND last_error LIKE '%No space left%'"),
	                 N);
	for (int i = 0; i < MORE; i++)
		give();
	wait_done("payments", gifts);
	wait_done("webhooks", gifts);
	ck_assert_int_eq(outbox_entries(&receipts), 1); /* the filler alone */
	ck_assert_int_eq(receipts, 0);

	ck_assert_int_eq(unlink(filler), 0);
	drained();
	ck_assert_int_eq(queue_num("receipts", "done"), gifts);
	ck_assert_int_eq(outbox_entries(&receipts), gifts);
	ck_assert_int_eq(receipts, gifts);
	for (int i = 1; i <= gifts; i++) {
		snprintf(path, sizeof(path), "%s/receipt-dn_%d.eml", disk, i);
		ck_assert_msg(access(path, F_OK) == 0, "no %s", path);
	}
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM donations WHERE "
	                                       "receipt_sent_at IS NOT NULL"),
	                 gifts);
}
END_TEST

/* ---- SIGTERM while a service hangs ---- */

/* Wait (at most 10 s) until fn() counts n. */
static int wait_count(seen_fn fn, long long n)
{
	long long v = fn();

	for (int i = 0; i < 500 && v < n; i++) {
		usleep(20000);
		v = fn();
	}
	return v >= n;
}

/* SIGTERM: tally exits 0 within the 5 s the README promises, though the
 * attempts in flight hang (their time limit is the default 10 s); they
 * are cut off uncounted, so the n jobs of queue q wait ready in the
 * database, none spent, none dead. */
static void sigterm_in_time(const char *q, int n)
{
	char sql[256];
	double t0 = mono_s(), took;
	int st = itest_signal(&srv, SIGTERM);

	took = mono_s() - t0;
	ck_assert_msg(st != -1, "tally did not exit within 10 s of SIGTERM");
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
	ck_assert_msg(took < 5.0, "SIGTERM took %.2f s", took);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM jobs WHERE queue = '%s' AND state = 'ready' AND "
	         "attempts = 0",
	         q);
	ck_assert_int_eq(itest_sql_int(srv.db, sql), n);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM jobs WHERE queue = '%s'", q);
	ck_assert_int_eq(itest_sql_int(srv.db, sql), n);
}

static long long processor_hung(void)
{
	return tool_num(tool.port, "/_stats?summary=1", "hung");
}

START_TEST(sigterm_with_the_processor_hanging)
{
	char args[512];

	ck_assert_int_eq(itest_tool_start(&tool, "stripe_standin.py", "--hang"), 0);
	snprintf(args, sizeof(args),
	         "--processor stripe --stripe-url http://127.0.0.1:%d --job-retention-s 0",
	         tool.port);
	start(args);
	for (int i = 0; i < N; i++)
		give();
	ck_assert_int_eq(wait_count(processor_hung, N), 1);
	sigterm_in_time("payments", N);
	ck_assert_int_eq(
	    itest_sql_int(srv.db, "SELECT count(*) FROM donations WHERE status = 'pending'"), N);

	/* The processor is back and tally starts again: every gift is
	 * captured once. */
	set_mode(tool.port, "{\"mode\":\"ok\"}");
	ck_assert_int_eq(itest_start(&srv, args), 0);
	drained();
	charged_once();
}
END_TEST

static long long sink_hung(void)
{
	return sink("hung");
}

static long long sink_data_hung(void)
{
	return sink("data_hung");
}

/* The SMTP server hangs (mode) with receipts in flight; SIGTERM, then a
 * restart with the server back: every donor gets one receipt. */
static void sigterm_with_smtp(const char *mode, seen_fn hanging, long long at_least)
{
	char args[512];

	start_sink("");
	set_mode(control, mode);
	snprintf(args, sizeof(args), "--smtp-url smtp://127.0.0.1:%d --job-retention-s 0",
	         tool.port);
	start(args);
	for (int i = 0; i < N; i++)
		give();
	wait_done("payments", N);
	ck_assert_int_eq(wait_count(hanging, at_least), 1);
	sigterm_in_time("receipts", N);

	set_mode(control, "{\"mode\":\"ok\"}");
	ck_assert_int_eq(itest_start(&srv, args), 0);
	drained();
	ck_assert_int_eq(queue_num("receipts", "done"), N);
	ck_assert_int_eq(sink("messages"), N);
	ck_assert_int_eq(sink("distinct_message_ids"), N);
}

/* Every receipt waits for a greeting that never comes. */
START_TEST(sigterm_with_smtp_never_greeting)
{
	sigterm_with_smtp("{\"mode\":\"hang\"}", sink_hung, N);
}
END_TEST

/* The server took a message and never answers its end: libcurl waits for
 * that answer inside one call, the worker with it. */
START_TEST(sigterm_with_smtp_stuck_after_the_message)
{
	sigterm_with_smtp("{\"mode\":\"hang-data\"}", sink_data_hung, 1);
}
END_TEST

Suite *outage_suite(void)
{
	Suite *s = suite_create("outage");
	TCase *tc = tcase_create("drills");
	TCase *stop = tcase_create("shutdown");
	TCase *full = tcase_create("outbox");

	tcase_add_unchecked_fixture(tc, tests_root_setup, tests_root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, processor_hang);
	tcase_add_test(tc, processor_500);
	tcase_add_test(tc, processor_reset);
	tcase_add_test(tc, processor_reset_after_the_charge);
	tcase_add_test(tc, smtp_hang);
	tcase_add_test(tc, smtp_refusing);
	tcase_add_test(tc, smtp_hang_after_the_message);
	tcase_add_test(tc, webhook_reset);
	tcase_add_test(tc, stand_ins_refuse_unknown_modes);
	suite_add_tcase(s, tc);
	tcase_add_unchecked_fixture(stop, tests_root_setup, tests_root_teardown);
	tcase_add_checked_fixture(stop, setup, teardown);
	tcase_set_timeout(stop, 120);
	tcase_add_test(stop, sigterm_with_the_processor_hanging);
	tcase_add_test(stop, sigterm_with_smtp_never_greeting);
	tcase_add_test(stop, sigterm_with_smtp_stuck_after_the_message);
	suite_add_tcase(s, stop);
	tcase_add_unchecked_fixture(full, tests_root_setup, tests_root_teardown);
	tcase_add_checked_fixture(full, outbox_setup, outbox_teardown);
	tcase_set_timeout(full, 120);
	tcase_add_test(full, receipts_outbox_full);
	suite_add_tcase(s, full);
	return s;
}
