/* tests/test_jobs.c - durable jobs: the retry schedule, the handlers'
 * messages, and the real binary against a stand-in processor, a real SMTP
 * sink and a webhook receiver that checks signatures (tests/tools). */
#include "core/jobs.h"
#include "core/work.h"
#include "base/util.h"
#include "tests/itest.h"
#include "tests/tests.h"

#include <check.h>
#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- unit: retry schedule ---- */

START_TEST(backoff_doubles_with_jitter_and_cap)
{
	struct job_policy p = {1, 1, 10, 1000, 30000, 0, 10000};
	int64_t prev_max = 0;

	for (int n = 1; n <= 12; n++) {
		int64_t d = 1000;
		int64_t lo = job_backoff_ms(&p, n, 0.0), hi = job_backoff_ms(&p, n, 0.999999);

		for (int i = 1; i < n && d < 30000; i++)
			d *= 2;
		if (d > 30000)
			d = 30000;
		/* Equal jitter: uniformly within [d/2, d). */
		ck_assert_int_eq(lo, d / 2);
		ck_assert_int_ge(hi, d - 1);
		ck_assert_int_le(hi, d);
		ck_assert_int_ge(hi, prev_max); /* never shrinks */
		prev_max = hi;
		for (int k = 0; k < 50; k++) {
			int64_t v = job_backoff_ms(&p, n, k / 50.0);

			ck_assert_int_ge(v, d / 2);
			ck_assert_int_le(v, d);
		}
	}
	ck_assert_int_eq(job_backoff_ms(&p, 60, 0.999999), 29999);
	p.backoff_ms = 0; /* never a zero delay */
	ck_assert_int_ge(job_backoff_ms(&p, 1, 0.999), 0);
}
END_TEST

START_TEST(names_round_trip)
{
	for (int q = 0; q < JOB_QUEUES; q++)
		ck_assert_int_eq(job_queue_by_name(job_queue_names[q]), q);
	ck_assert_int_eq(job_queue_by_name("payment"), -1);
	ck_assert_int_eq(job_queue_by_name(""), -1);
	ck_assert_int_eq(job_state_by_name("dead"), JOB_DEAD);
	ck_assert_int_eq(job_state_by_name("done"), JOB_DONE);
	ck_assert_int_eq(job_state_by_name("held"), -1); /* internal only */
	ck_assert_int_eq(job_state_by_name("READY"), -1);
}
END_TEST

/* ---- unit: messages ---- */

START_TEST(signature_matches_reference)
{
	/* Reference computed independently (Python hmac/hashlib). */
	const char *body = "{\"id\":\"evt_1\"}";
	char sig[160];

	ck_assert_int_eq(
	    work_signature("whsec_test", 1700000000, body, strlen(body), sig, sizeof(sig)), 0);
	ck_assert_str_eq(sig, "t=1700000000,v1="
	                      "c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f3942d632925");
	/* Any change of body, time or secret changes it. */
	ck_assert_int_eq(
	    work_signature("whsec_tesT", 1700000000, body, strlen(body), sig, sizeof(sig)), 0);
	ck_assert_ptr_null(strstr(sig, "c89214b5"));
	ck_assert_int_eq(work_signature("whsec_test", 1, body, strlen(body), sig, 10), -1);
}
END_TEST

static struct db_job_donation sample(void)
{
	struct db_job_donation d;

	memset(&d, 0, sizeof(d));
	d.id = 42;
	d.campaign_id = 1;
	d.amount_cents = 2505;
	d.created_at = 1700000000000;
	memcpy(d.currency, "USD", 4);
	memcpy(d.status, "succeeded", 10);
	snprintf(d.email, sizeof(d.email), "ada@example.org");
	snprintf(d.name, sizeof(d.name), "Ada\r\nBcc: victim@example.org");
	snprintf(d.message, sizeof(d.message), "Go \"team\"");
	snprintf(d.campaign_slug, sizeof(d.campaign_slug), "food");
	snprintf(d.campaign_name, sizeof(d.campaign_name), "Füd bank");
	return d;
}

START_TEST(receipt_text)
{
	struct work_config cfg;
	struct db_job_donation d = sample();
	struct buf b = {0};
	char *hdr_end;

	work_config_defaults(&cfg);
	cfg.smtp_from = "giving@example.org";
	cfg.tax_note = "EIN 12-3456789. Keep this receipt for your taxes.";
	cfg.org_name = "Example Food Bank";
	ck_assert_int_eq(work_receipt_message(&cfg, &d, &b), 0);
	ck_assert_ptr_nonnull(strstr(b.p, "From: giving@example.org\r\n"));
	ck_assert_ptr_nonnull(strstr(b.p, "To: ada@example.org\r\n"));
	ck_assert_ptr_nonnull(strstr(b.p, "Message-ID: <receipt-dn_42@tally>\r\n"));
	/* A non-ASCII campaign name is MIME-encoded in the subject. */
	ck_assert_ptr_nonnull(strstr(b.p, "Subject: Thank you for your gift to =?UTF-8?B?"));
	ck_assert_ptr_nonnull(strstr(b.p, "USD 25.05"));
	ck_assert_ptr_nonnull(strstr(b.p, "dn_42"));
	ck_assert_ptr_nonnull(strstr(b.p, "2023-11-14T22:13:20.000Z"));
	ck_assert_ptr_nonnull(strstr(b.p, "EIN 12-3456789"));
	ck_assert_ptr_nonnull(strstr(b.p, "Example Food Bank"));
	/* The donor's name never reaches a header line of its own. */
	hdr_end = strstr(b.p, "\r\n\r\n");
	ck_assert_ptr_nonnull(hdr_end);
	*hdr_end = '\0';
	ck_assert_ptr_null(strstr(b.p, "\r\nBcc:"));
	buf_fini(&b);
}
END_TEST

/* The amount is written in the currency's minor units (ISO 4217): yen have
 * no decimals, dinars three. */
START_TEST(receipt_amount_by_currency)
{
	static const struct {
		const char *currency;
		int64_t amount;
		const char *line;
	} cases[] = {
	    {"USD", 1234, "  Amount:       USD 12.34\r\n"},
	    {"USD", 5, "  Amount:       USD 0.05\r\n"},
	    {"EUR", 100000000, "  Amount:       EUR 1000000.00\r\n"},
	    {"JPY", 1234, "  Amount:       JPY 1234\r\n"},
	    {"JPY", 1, "  Amount:       JPY 1\r\n"},
	    {"KRW", 50000, "  Amount:       KRW 50000\r\n"},
	    {"KWD", 1234, "  Amount:       KWD 1.234\r\n"},
	    {"BHD", 5, "  Amount:       BHD 0.005\r\n"},
	};
	struct work_config cfg;

	work_config_defaults(&cfg);
	cfg.smtp_from = "giving@example.org";
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct db_job_donation d = sample();
		struct buf b = {0};

		snprintf(d.currency, sizeof(d.currency), "%s", cases[i].currency);
		d.amount_cents = cases[i].amount;
		ck_assert_int_eq(work_receipt_message(&cfg, &d, &b), 0);
		ck_assert_msg(strstr(b.p, cases[i].line), "%s %lld: no \"%s\" in:\n%s",
		              cases[i].currency, (long long)cases[i].amount, cases[i].line, b.p);
		buf_fini(&b);
	}
}
END_TEST

START_TEST(event_body_is_json)
{
	struct db_job_donation d = sample();
	struct buf b = {0};
	json_t *v, *data;

	snprintf(d.reason, sizeof(d.reason), "card_declined: no");
	ck_assert_int_eq(work_event_body(JOB_HOOK_FAILED, &d, 1700000001000, &b), 0);
	v = json_loadb(b.p, b.len, 0, NULL);
	ck_assert_ptr_nonnull(v);
	ck_assert_str_eq(json_string_value(json_object_get(v, "id")), "evt_42_failed");
	ck_assert_str_eq(json_string_value(json_object_get(v, "type")), "donation.failed");
	ck_assert_str_eq(json_string_value(json_object_get(v, "created")),
	                 "2023-11-14T22:13:21.000Z");
	data = json_object_get(v, "data");
	ck_assert_str_eq(json_string_value(json_object_get(data, "id")), "dn_42");
	ck_assert_str_eq(json_string_value(json_object_get(data, "status")), "failed");
	ck_assert_str_eq(json_string_value(json_object_get(data, "reason")), "card_declined: no");
	ck_assert_int_eq(json_integer_value(json_object_get(data, "amount_cents")), 2505);
	ck_assert_str_eq(json_string_value(json_object_get(data, "message")), "Go \"team\"");
	json_decref(v);
	buf_fini(&b);
}
END_TEST

/* ---- integration helpers ---- */

static struct itest_server srv;
static struct itest_tool tool, hook;

static void setup(void)
{
	memset(&srv, 0, sizeof(srv));
	memset(&tool, 0, sizeof(tool));
	memset(&hook, 0, sizeof(hook));
}

static void teardown(void)
{
	itest_cleanup(&srv);
	itest_tool_stop(&tool);
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

/* Donate with a payment token; returns the status and the id in id. */
static int donate(const char *token, long long cents, const char *email, char *id, size_t cap)
{
	char body[512];
	struct itest_resp r;
	int status;

	snprintf(body, sizeof(body),
	         "{\"amount_cents\":%lld,\"currency\":\"USD\",\"donor\":{\"name\":\"Ada\","
	         "\"email\":\"%s\"},\"payment_token\":\"%s\"}",
	         cents, email, token);
	ck_assert_int_eq(itest_post_json(srv.port, "/api/v1/campaigns/food/donations", body, 0, &r),
	                 0);
	status = r.status;
	if (status == 202 && id) {
		json_t *v = itest_json_body(&r);

		ck_assert_str_eq(json_string_value(json_object_get(v, "status")), "pending");
		snprintf(id, cap, "%s", json_string_value(json_object_get(v, "id")));
		json_decref(v);
	}
	itest_resp_fini(&r);
	return status;
}

/* A gift as staff see it (the public read wants the gift's status token). */
static json_t *donation(const char *id)
{
	char path[128];

	snprintf(path, sizeof(path), "/api/v1/admin/donations/%s", id);
	return itest_get_json(srv.port, path, 1);
}

static void expect_status(const char *id, const char *status)
{
	json_t *d = donation(id);

	ck_assert_msg(!strcmp(json_string_value(json_object_get(d, "status")), status),
	              "%s is %s, expected %s", id, json_string_value(json_object_get(d, "status")),
	              status);
	json_decref(d);
}

static json_t *queue(const char *name)
{
	json_t *all = itest_get_json(srv.port, "/api/v1/admin/queues", 1), *q = NULL;
	size_t i;
	json_t *v;

	json_array_foreach(json_object_get(all, "queues"), i, v)
	{
		if (!strcmp(json_string_value(json_object_get(v, "name")), name))
			q = json_incref(v);
	}
	json_decref(all);
	ck_assert_ptr_nonnull(q);
	return q;
}

static long long queue_num(const char *name, const char *key)
{
	json_t *q = queue(name);
	long long n = itest_json_int(q, key);

	json_decref(q);
	return n;
}

/* The jobs array of queue in state. Caller decrefs the returned object. */
static json_t *jobs(const char *q, const char *state)
{
	char path[128];

	snprintf(path, sizeof(path), "/api/v1/admin/jobs?queue=%s&state=%s", q, state);
	return itest_get_json(srv.port, path, 1);
}

static json_t *campaign(void)
{
	return itest_get_json(srv.port, "/api/v1/campaigns/food", 0);
}

static int admin(const char *method, const char *path, const char *body, struct itest_resp *r)
{
	return itest_http(srv.port, method, path,
	                  "Content-Type: application/json\r\nAuthorization: Bearer " ITEST_TOKEN
	                  "\r\n",
	                  body, body ? strlen(body) : 0, r);
}

/* POST/DELETE as staff; returns the status. */
static int admin_status(const char *method, const char *path, const char *body)
{
	struct itest_resp r;
	int st;

	ck_assert_int_eq(admin(method, path, body, &r), 0);
	st = r.status;
	itest_resp_fini(&r);
	return st;
}

/* Wait until fn(port) says so, at most ms. */
static int wait_dead(const char *q, long long n, int ms)
{
	for (int i = 0; i < ms / 20; i++) {
		if (queue_num(q, "dead") >= n)
			return 1;
		usleep(20000);
	}
	return 0;
}

static json_t *tool_get(int port, const char *path)
{
	struct itest_resp r;
	json_t *v;

	ck_assert_int_eq(itest_http(port, "GET", path, NULL, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 200);
	v = itest_json_body(&r);
	itest_resp_fini(&r);
	return v;
}

/* ---- integration ---- */

START_TEST(decline_fails_the_gift_and_signs_the_event)
{
	char args[256], ok_id[32], bad_id[32], path[600];
	json_t *c, *d, *ev, *e0;

	ck_assert_int_eq(itest_tool_start(&hook, "webhook_receiver.py", "--secret whsec_t1"), 0);
	snprintf(args, sizeof(args), "--webhook http://127.0.0.1:%d/hook --webhook-secret whsec_t1",
	         hook.port);
	start(args);
	ck_assert_int_eq(
	    donate("tok_chargeDeclined", 2500, "ada@example.org", bad_id, sizeof(bad_id)), 202);
	ck_assert_int_eq(donate("tok_visa", 1200, "bob@example.org", ok_id, sizeof(ok_id)), 202);
	ck_assert_int_eq(itest_settle(srv.port), 0);

	d = donation(bad_id);
	ck_assert_str_eq(json_string_value(json_object_get(d, "status")), "failed");
	ck_assert_ptr_nonnull(
	    strstr(json_string_value(json_object_get(d, "reason")), "card_declined"));
	json_decref(d);
	expect_status(ok_id, "succeeded");
	c = campaign();
	ck_assert_int_eq(itest_json_int(c, "total_cents"), 1200); /* only the captured gift */
	ck_assert_int_eq(itest_json_int(c, "pending_cents"), 0);
	ck_assert_int_eq(itest_json_int(c, "donation_count"), 1);
	json_decref(c);
	/* A decline is an answer: the job is done, never retried. */
	ck_assert_int_eq(queue_num("payments", "dead"), 0);
	{
		/* its one attempt is in the job's history, with the decline */
		json_t *done = jobs("payments", "done"), *j;
		size_t i;
		int seen = 0;

		json_array_foreach(json_object_get(done, "jobs"), i, j)
		{
			json_t *h = json_object_get(j, "attempt_history");
			const char *dn = json_string_value(
			    json_object_get(json_object_get(j, "payload"), "donation_id"));

			if (strcmp(dn, bad_id)) {
				ck_assert_uint_eq(json_array_size(h), 0);
				continue;
			}
			seen = 1;
			ck_assert_uint_eq(json_array_size(h), 1);
			ck_assert_int_eq(itest_json_int(json_array_get(h, 0), "attempt"), 1);
			ck_assert_ptr_nonnull(strstr(
			    json_string_value(json_object_get(json_array_get(h, 0), "error")),
			    "card_declined"));
		}
		ck_assert_int_eq(seen, 1);
		json_decref(done);
	}
	ck_assert_int_eq(queue_num("payments", "done"), 2);
	ck_assert_int_eq(queue_num("payments", "failed"), 1);

	ev = tool_get(hook.port, "/_events");
	ck_assert_int_eq(itest_json_int(ev, "bad_signatures"), 0);
	ck_assert_int_eq(json_array_size(json_object_get(ev, "events")), 2);
	for (size_t i = 0; i < 2; i++) {
		const char *type, *id;

		e0 = json_array_get(json_object_get(ev, "events"), i);
		type = json_string_value(json_object_get(e0, "type"));
		id = json_string_value(json_object_get(json_object_get(e0, "data"), "id"));
		if (!strcmp(id, bad_id))
			ck_assert_str_eq(type, "donation.failed");
		else
			ck_assert_str_eq(type, "donation.succeeded");
	}
	json_decref(ev);
	/* Only the succeeded gift gets a receipt (outbox by default). */
	snprintf(path, sizeof(path), "%s-outbox/receipt-%s.eml", srv.db, ok_id);
	ck_assert_int_eq(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s-outbox/receipt-%s.eml", srv.db, bad_id);
	ck_assert_int_ne(access(path, F_OK), 0);
}
END_TEST

static void start_stripe(const char *standin_args, const char *tally_args)
{
	char args[512];

	ck_assert_int_eq(itest_tool_start(&tool, "stripe_standin.py", standin_args), 0);
	setenv("STRIPE_SECRET_KEY", "sk_test_tally", 1);
	snprintf(args, sizeof(args), "--processor stripe --stripe-url http://127.0.0.1:%d %s",
	         tool.port, tally_args);
	start(args);
}

START_TEST(transient_failures_then_success)
{
	char id[32];
	json_t *st, *key, *done, *j0;

	start_stripe("--fail-first 2", "--jobs payments:backoff-ms=30");
	ck_assert_int_eq(donate("tok_visa", 2500, "ada@example.org", id, sizeof(id)), 202);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	expect_status(id, "succeeded");
	done = jobs("payments", "done");
	j0 = json_array_get(json_object_get(done, "jobs"), 0);
	ck_assert_int_eq(itest_json_int(j0, "attempts"), 3);
	ck_assert_str_eq(json_string_value(json_object_get(j0, "kind")), "capture");
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_object_get(j0, "payload"), "donation_id")), id);
	json_decref(done);
	/* One PaymentIntent, confirmed three times (each failure stored by
	 * the processor under its own key), charged once. */
	st = tool_get(tool.port, "/_stats");
	ck_assert_int_eq(itest_json_int(st, "captures"), 1);
	key = json_object_get(json_object_get(st, "by_donation"), id);
	ck_assert_ptr_nonnull(key);
	ck_assert_int_eq(itest_json_int(key, "intents"), 1);
	ck_assert_int_eq(itest_json_int(key, "confirms"), 3);
	ck_assert_int_eq(itest_json_int(key, "charges"), 1);
	json_decref(st);
	/* The intent's id is stored on the gift. */
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM donations WHERE"
	                                       " processor_ref LIKE 'pi_%'"),
	                 1);
	ck_assert_int_eq(queue_num("payments", "failed"), 2);
}
END_TEST

START_TEST(stripe_failed_payment_is_not_confirmed_again)
{
	char id[32], reason[256];
	json_t *st, *d, *per;

	/* Stripe detaches the card after a failed payment: the retry reads
	 * the intent, finds no card, and fails the gift (no confirm loop). */
	start_stripe("", "--jobs payments:backoff-ms=20");
	ck_assert_int_eq(
	    donate("tok_chargeDeclinedProcessingError", 2500, "ada@example.org", id, sizeof(id)),
	    202);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	d = donation(id);
	ck_assert_str_eq(json_string_value(json_object_get(d, "status")), "failed");
	snprintf(reason, sizeof(reason), "%s", json_string_value(json_object_get(d, "reason")));
	json_decref(d);
	ck_assert_msg(strstr(reason, "payment_failed"), "reason: %s", reason);
	st = tool_get(tool.port, "/_stats");
	per = json_object_get(json_object_get(st, "by_donation"), id);
	ck_assert_int_eq(itest_json_int(per, "intents"), 1);
	ck_assert_int_eq(itest_json_int(per, "confirms"), 1);
	ck_assert_int_eq(itest_json_int(per, "charges"), 0);
	/* create, confirm (402), then one read: nothing more. */
	ck_assert_int_le(itest_json_int(st, "requests"), 3);
	json_decref(st);
}
END_TEST

START_TEST(dead_then_staff_retry)
{
	char id[32], path[128];
	json_t *dead, *j0, *c, *audit;
	long long job;
	struct itest_resp r;

	start_stripe("--fail-first 2", "--jobs payments:attempts=2,backoff-ms=20");
	ck_assert_int_eq(donate("tok_visa", 2500, "ada@example.org", id, sizeof(id)), 202);
	ck_assert_int_eq(wait_dead("payments", 1, 5000), 1);
	dead = jobs("payments", "dead");
	j0 = json_array_get(json_object_get(dead, "jobs"), 0);
	ck_assert_int_eq(itest_json_int(j0, "attempts"), 2);
	ck_assert_str_eq(json_string_value(json_object_get(j0, "state")), "dead");
	ck_assert_ptr_nonnull(
	    strstr(json_string_value(json_object_get(j0, "last_error")), "processor HTTP 500"));
	job = itest_json_int(j0, "id");
	json_decref(dead);
	/* The gift waits, pending, for a person. */
	expect_status(id, "pending");
	c = campaign();
	ck_assert_int_eq(itest_json_int(c, "pending_cents"), 2500);
	ck_assert_int_eq(itest_json_int(c, "total_cents"), 0);
	json_decref(c);

	snprintf(path, sizeof(path), "/api/v1/admin/jobs/%lld/retry", job);
	ck_assert_int_eq(admin(("POST"), path, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.body, "\"state\":\"ready\""));
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	expect_status(id, "succeeded");
	ck_assert_int_eq(queue_num("payments", "dead"), 0);
	/* Done jobs leave memory: acting on one again is a 404. */
	ck_assert_int_eq(admin_status("POST", path, NULL), 404);
	ck_assert_int_eq(admin_status("POST", "/api/v1/admin/jobs/abc/retry", NULL), 404);
	audit = itest_get_json(srv.port, "/api/v1/admin/audit?limit=5", 1);
	ck_assert_str_eq(json_string_value(json_object_get(
	                     json_array_get(json_object_get(audit, "entries"), 0), "action")),
	                 "job.retry");
	ck_assert_str_eq(json_string_value(json_object_get(
	                     json_array_get(json_object_get(audit, "entries"), 0), "actor")),
	                 "admin@127.0.0.1");
	json_decref(audit);
}
END_TEST

/* The attempts array of the only job of q in state, checked to hold n
 * failures in order: numbered 1..n, each started after the one before, a
 * duration, and the processor's error. Caller decrefs *list. */
static json_t *expect_history(const char *q, const char *state, size_t n, json_t **list)
{
	json_t *j0, *h;
	int64_t prev = 0;

	*list = jobs(q, state);
	ck_assert_uint_eq(json_array_size(json_object_get(*list, "jobs")), 1);
	j0 = json_array_get(json_object_get(*list, "jobs"), 0);
	h = json_object_get(j0, "attempt_history");
	ck_assert_msg(json_is_array(h), "no attempt_history in the %s job", state);
	ck_assert_uint_eq(json_array_size(h), n);
	for (size_t i = 0; i < n; i++) {
		json_t *a = json_array_get(h, i);
		const char *at = json_string_value(json_object_get(a, "at"));
		const char *err = json_string_value(json_object_get(a, "error"));
		int64_t ms;

		ck_assert_int_eq(itest_json_int(a, "attempt"), (long long)i + 1);
		ck_assert_msg(at && util_parse_rfc3339(at, &ms) == 0, "attempt %zu: at %s", i,
		              at ? at : "(none)");
		ck_assert_msg(ms > prev, "attempt %zu started at %s, not after the one before", i,
		              at);
		prev = ms;
		ck_assert_int_ge(itest_json_int(a, "ms"), 0);
		ck_assert_msg(err && strstr(err, "processor HTTP 500"), "attempt %zu: error %s", i,
		              err ? err : "(none)");
	}
	return j0;
}

START_TEST(each_failed_attempt_is_listed_with_its_error_and_time)
{
	char id[32], ok_id[32], path[128];
	json_t *list, *j0;
	long long job;

	start_stripe("--fail-first 3", "--jobs payments:attempts=3,backoff-ms=20");
	ck_assert_int_eq(donate("tok_visa", 2500, "ada@example.org", id, sizeof(id)), 202);
	ck_assert_int_eq(wait_dead("payments", 1, 5000), 1);
	j0 = expect_history("payments", "dead", 3, &list);
	ck_assert_int_eq(itest_json_int(j0, "attempts"), 3);
	ck_assert_str_eq(json_string_value(json_object_get(j0, "last_error")),
	                 json_string_value(json_object_get(
	                     json_array_get(json_object_get(j0, "attempt_history"), 2), "error")));
	job = itest_json_int(j0, "id");
	json_decref(list);

	/* retried by staff, it succeeds: the done job (read from SQLite)
	 * still lists the three failures, and the success adds none */
	snprintf(path, sizeof(path), "/api/v1/admin/jobs/%lld/retry", job);
	ck_assert_int_eq(admin_status("POST", path, NULL), 200);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	expect_status(id, "succeeded");
	j0 = expect_history("payments", "done", 3, &list);
	ck_assert_int_eq(itest_json_int(j0, "attempts"), 4);
	json_decref(list);

	/* a capture that succeeds at once has an empty history, and its row
	 * none at all */
	ck_assert_int_eq(donate("tok_visa", 1200, "bob@example.org", ok_id, sizeof(ok_id)), 202);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	expect_status(ok_id, "succeeded");
	list = jobs("payments", "done");
	j0 = json_array_get(json_object_get(list, "jobs"), 0); /* newest first */
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_object_get(j0, "payload"), "donation_id")),
	    ok_id);
	ck_assert_uint_eq(json_array_size(json_object_get(j0, "attempt_history")), 0);
	ck_assert(json_is_array(json_object_get(j0, "attempt_history")));
	json_decref(list);
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM jobs WHERE history IS NULL"
	                                       " AND queue = 'payments'"),
	                 1);
}
END_TEST

START_TEST(discard_fails_a_stuck_gift)
{
	char id[32], path[128];
	json_t *dead, *d, *c;
	long long job;

	start("--jobs payments:attempts=1");
	ck_assert_int_eq(
	    donate("tok_chargeDeclinedProcessingError", 900, "a@example.org", id, sizeof(id)), 202);
	ck_assert_int_eq(wait_dead("payments", 1, 5000), 1);
	dead = jobs("payments", "dead");
	job = itest_json_int(json_array_get(json_object_get(dead, "jobs"), 0), "id");
	ck_assert_ptr_nonnull(
	    strstr(json_string_value(json_object_get(
	               json_array_get(json_object_get(dead, "jobs"), 0), "last_error")),
	           "processing_error"));
	json_decref(dead);
	snprintf(path, sizeof(path), "/api/v1/admin/jobs/%lld", job);
	ck_assert_int_eq(admin_status("DELETE", path, NULL), 200);
	d = donation(id);
	ck_assert_str_eq(json_string_value(json_object_get(d, "status")), "failed");
	ck_assert_str_eq(json_string_value(json_object_get(d, "reason")), "discarded by staff");
	json_decref(d);
	c = campaign();
	ck_assert_int_eq(itest_json_int(c, "pending_cents"), 0);
	json_decref(c);
	ck_assert_int_eq(queue_num("payments", "dead"), 0);
	ck_assert_int_eq(admin_status("DELETE", path, NULL), 404);
}
END_TEST

START_TEST(paused_queue_waits_across_restart)
{
	char id[3][32];
	struct itest_resp r;
	json_t *q, *c, *audit;
	int st;

	start(NULL);
	ck_assert_int_eq(admin("POST", "/api/v1/admin/queues/payments/pause", NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.body, "\"paused\":true"));
	itest_resp_fini(&r);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(donate("tok_visa", 1000, "a@example.org", id[i], sizeof(id[i])),
		                 202);
	usleep(300000);
	q = queue("payments");
	ck_assert_int_eq(itest_json_int(q, "ready"), 3);
	ck_assert(json_is_true(json_object_get(q, "paused")));
	json_decref(q);
	expect_status(id[0], "pending");

	/* The switch is stored: still paused after a restart. */
	st = itest_signal(&srv, SIGTERM);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_int_eq(itest_start(&srv, "--job-retention-s 0"), 0);
	usleep(200000);
	q = queue("payments");
	ck_assert_int_eq(itest_json_int(q, "ready"), 3);
	ck_assert(json_is_true(json_object_get(q, "paused")));
	json_decref(q);
	c = campaign();
	ck_assert_int_eq(itest_json_int(c, "pending_cents"), 3000);
	json_decref(c);

	ck_assert_int_eq(admin_status("POST", "/api/v1/admin/queues/payments/resume", NULL), 200);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	for (int i = 0; i < 3; i++)
		expect_status(id[i], "succeeded");
	c = campaign();
	ck_assert_int_eq(itest_json_int(c, "total_cents"), 3000);
	ck_assert_int_eq(itest_json_int(c, "pending_cents"), 0);
	json_decref(c);
	audit = itest_get_json(srv.port, "/api/v1/admin/audit", 1);
	ck_assert_str_eq(json_string_value(json_object_get(
	                     json_array_get(json_object_get(audit, "entries"), 0), "action")),
	                 "queue.resume");
	ck_assert_str_eq(json_string_value(json_object_get(
	                     json_array_get(json_object_get(audit, "entries"), 1), "action")),
	                 "queue.pause");
	json_decref(audit);
}
END_TEST

/* Wait (at most 1 s) until the stand-in processor has seen n requests;
 * returns how many it saw. */
static int wait_processor_requests(int n)
{
	int seen = 0;

	for (int i = 0; i < 100 && seen < n; i++) {
		json_t *st = tool_get(tool.port, "/_stats?summary=1");

		seen = (int)itest_json_int(st, "requests");
		json_decref(st);
		usleep(10000);
	}
	return seen;
}

START_TEST(sigkill_during_capture_charges_once)
{
	enum { N = 20 };
	char id[N][32];
	json_t *st, *v;
	const char *k;
	int status;

	start_stripe("--latency-ms 600", "");
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(donate("tok_visa", 100 + i, "a@example.org", id[i], sizeof(id[i])),
		                 202);
	/* Wait until the captures are at the processor, then kill tally. */
	ck_assert_int_eq(wait_processor_requests(N), N);
	status = itest_signal(&srv, SIGKILL);
	ck_assert(WIFSIGNALED(status));
	/* Not recorded as captured: they run again after the restart. */
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM donations WHERE status ="
	                                       " 'pending'"),
	                 N);
	{
		char args[256];

		snprintf(args, sizeof(args),
		         "--processor stripe --stripe-url http://127.0.0.1:%d --job-retention-s 0",
		         tool.port);
		ck_assert_int_eq(itest_start(&srv, args), 0);
	}
	ck_assert_int_eq(itest_settle(srv.port), 0);
	for (int i = 0; i < N; i++)
		expect_status(id[i], "succeeded");
	st = tool_get(tool.port, "/_stats");
	/* Each gift has one PaymentIntent (the creation key replays it after
	 * the restart) and one charge. */
	ck_assert_int_eq(itest_json_int(st, "captures"), N);
	ck_assert_int_eq(json_object_size(json_object_get(st, "by_donation")), N);
	json_object_foreach(json_object_get(st, "by_donation"), k, v)
	{
		ck_assert_msg(itest_json_int(v, "intents") == 1, "%s: %lld intents", k,
		              itest_json_int(v, "intents"));
		ck_assert_msg(itest_json_int(v, "charges") == 1, "%s: %lld charges", k,
		              itest_json_int(v, "charges"));
	}
	json_decref(st);
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT sum(amount_cents) FROM donations"),
	                 itest_sql_int(srv.db, "SELECT raised_cents FROM campaigns"));
}
END_TEST

START_TEST(sigterm_lets_captures_in_flight_finish)
{
	enum { N = 10 };
	char id[N][32];
	json_t *st;
	int status;

	start_stripe("--latency-ms 700", "");
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(donate("tok_visa", 100 + i, "a@example.org", id[i], sizeof(id[i])),
		                 202);
	ck_assert_int_eq(wait_processor_requests(N), N);
	/* The drain stops the workers at a job boundary: the attempts in
	 * flight finish and are recorded before tally exits. */
	status = itest_signal(&srv, SIGTERM);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM donations WHERE status ="
	                                       " 'succeeded'"),
	                 N);
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM jobs WHERE queue ="
	                                       " 'payments' AND state <> 'done'"),
	                 0);
	st = tool_get(tool.port, "/_stats?summary=1");
	ck_assert_int_eq(itest_json_int(st, "captures"), N);
	ck_assert_int_eq(itest_json_int(st, "replays"), 0);
	json_decref(st);
}
END_TEST

START_TEST(done_jobs_are_pruned_after_the_retention)
{
	char id[32], bad[32];
	long long done = -1;

	ck_assert_msg(itest_start(&srv, "--job-retention-s 1 --jobs payments:attempts=1") == 0,
	              "tally did not start");
	ck_assert_int_eq(itest_create_campaign(srv.port, "food", "USD", 100000), 201);
	/* The dead job first: the pruned ones have the highest ids. */
	ck_assert_int_eq(
	    donate("tok_chargeDeclinedProcessingError", 900, "b@example.org", bad, sizeof(bad)),
	    202);
	ck_assert_int_eq(wait_dead("payments", 1, 5000), 1);
	ck_assert_int_eq(donate("tok_visa", 2500, "ada@example.org", id, sizeof(id)), 202);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	ck_assert_int_eq(queue_num("receipts", "done"), 1); /* capture + receipt: 2 done */
	for (int i = 0; i < 60 && done != 0; i++) {
		usleep(100000);
		done = itest_sql_int(srv.db, "SELECT count(*) FROM jobs WHERE state = 'done'");
	}
	ck_assert_int_eq(done, 0);
	/* Only done jobs go: the dead one stays for staff, and the gift too. */
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM jobs WHERE state = 'dead'"),
	                 1);
	expect_status(id, "succeeded");
	ck_assert_int_eq(queue_num("payments", "done"), 1);
	/* The ids of pruned jobs are never handed out again. */
	{
		long long top = itest_sql_int(srv.db, "SELECT CAST(value AS INTEGER) FROM meta"
		                                      " WHERE key = 'job_id_floor'");
		char sql[160];
		int st;

		ck_assert_int_eq(top, 3);
		ck_assert_int_eq(itest_sql_int(srv.db, "SELECT max(id) FROM jobs"), 1);
		st = itest_signal(&srv, SIGTERM);
		ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		ck_assert_int_eq(itest_start(&srv, "--job-retention-s 1"), 0);
		ck_assert_int_eq(donate("tok_visa", 700, "c@example.org", id, sizeof(id)), 202);
		snprintf(sql, sizeof(sql), "SELECT min(id) FROM jobs WHERE donation_id = %s",
		         id + 3);
		ck_assert_int_gt(itest_sql_int(srv.db, sql), top);
	}
}
END_TEST

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

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 65536);

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_gt(fread(buf, 1, 65535, f), 0);
	fclose(f);
	return buf;
}

/* Every entry of dir, dot files included (an outbox's temporary files). */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

/* The first job of queue q in state st whose last_error holds text, within
 * ms; 1 when found. */
static int wait_job_error(const char *q, const char *st, const char *text, int ms)
{
	for (int i = 0; i < ms / 20; i++) {
		json_t *js = jobs(q, st), *j;
		size_t k;
		int found = 0;

		json_array_foreach(json_object_get(js, "jobs"), k, j)
		{
			const char *err = json_string_value(json_object_get(j, "last_error"));

			found |= err && strstr(err, text) != NULL;
		}
		json_decref(js);
		if (found)
			return 1;
		usleep(20000);
	}
	return 0;
}

/* A receipt in the outbox is whole under its final name once the job is
 * done (written, fsynced, linked, folder fsynced: see core/receipt.c), no
 * temporary file stays behind, and an attempt whose file cannot be written
 * fails and is retried. */
START_TEST(outbox_receipt_whole_and_retried)
{
	char outbox[700], aside[720], path[800], body[512];
	struct itest_resp r;
	struct stat st;
	char *mail;
	size_t len;
	FILE *f;

	start("--org-name Example-Food-Bank --jobs receipts:backoff-ms=50,backoff-max-ms=100");
	ck_assert_int_eq(itest_create_campaign(srv.port, "yen", "JPY", 100000), 201);
	snprintf(body, sizeof(body),
	         "{\"amount_cents\":1234,\"currency\":\"JPY\",\"donor\":{\"name\":\"Ada\","
	         "\"email\":\"ada@example.org\"}}");
	ck_assert_int_eq(itest_post_json(srv.port, "/api/v1/campaigns/yen/donations", body, 0, &r),
	                 0);
	ck_assert_int_eq(r.status, 202);
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	snprintf(outbox, sizeof(outbox), "%s-outbox", srv.db);
	ck_assert_int_eq(count_entries(outbox), 1);
	snprintf(path, sizeof(path), "%s/receipt-dn_1.eml", outbox);
	ck_assert_int_eq(stat(path, &st), 0);
	f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	mail = calloc(1, (size_t)st.st_size + 1);
	ck_assert_ptr_nonnull(mail);
	len = fread(mail, 1, (size_t)st.st_size + 1, f);
	fclose(f);
	ck_assert_uint_eq(len, (size_t)st.st_size);
	ck_assert_int_eq(strncmp(mail, "From: ", 6), 0);
	ck_assert_ptr_nonnull(strstr(mail, "Message-ID: <receipt-dn_1@tally>\r\n"));
	ck_assert_ptr_nonnull(strstr(mail, "  Amount:       JPY 1234\r\n"));
	ck_assert_uint_gt(len, 20);
	ck_assert_str_eq(mail + len - 19, "Example-Food-Bank\r\n"); /* the last line */
	free(mail);
	ck_assert_int_eq(queue_num("receipts", "done"), 1);
	ck_assert_int_eq(queue_num("receipts", "dead"), 0);

	/* The outbox is not a folder now: the attempt fails and waits to be
	 * retried; once the folder is back, the retry writes the receipt. */
	snprintf(aside, sizeof(aside), "%s-aside", outbox);
	ck_assert_int_eq(rename(outbox, aside), 0);
	f = fopen(outbox, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fclose(f), 0);
	snprintf(body, sizeof(body),
	         "{\"amount_cents\":500,\"currency\":\"JPY\",\"donor\":{\"name\":\"Bo\","
	         "\"email\":\"bo@example.org\"}}");
	ck_assert_int_eq(itest_post_json(srv.port, "/api/v1/campaigns/yen/donations", body, 0, &r),
	                 0);
	ck_assert_int_eq(r.status, 202);
	itest_resp_fini(&r);
	ck_assert_int_eq(wait_job_error("receipts", "scheduled", "Not a directory", 5000), 1);
	ck_assert_int_eq(unlink(outbox), 0);
	ck_assert_int_eq(rename(aside, outbox), 0);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	ck_assert_int_eq(queue_num("receipts", "done"), 2);
	ck_assert_int_eq(count_entries(outbox), 2);
	snprintf(path, sizeof(path), "%s/receipt-dn_2.eml", outbox);
	mail = read_file(path);
	ck_assert_ptr_nonnull(strstr(mail, "  Amount:       JPY 500\r\n"));
	free(mail);
}
END_TEST

START_TEST(receipts_over_smtp)
{
	char args[512], path[700], id[32], bad[32];
	char *dir = tests_tmpdir(), *mail;
	json_t *dead;

	ck_assert_ptr_nonnull(dir);
	snprintf(args, sizeof(args), "--dir %s --reject-rcpt nobody", dir);
	ck_assert_int_eq(itest_tool_start(&tool, "smtp_sink.py", args), 0);
	snprintf(args, sizeof(args),
	         "--smtp-url smtp://127.0.0.1:%d --smtp-from giving@example.org --tax-note "
	         "Tax-deductible. --jobs receipts:attempts=2,backoff-ms=20",
	         tool.port);
	start(args);
	ck_assert_int_eq(donate("tok_visa", 2500, "ada@example.org", id, sizeof(id)), 202);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	ck_assert_int_eq(count_files(dir), 1);
	snprintf(path, sizeof(path), "%s/1.eml", dir);
	mail = read_file(path);
	ck_assert_ptr_nonnull(strstr(mail, "To: ada@example.org"));
	ck_assert_ptr_nonnull(strstr(mail, "From: giving@example.org"));
	ck_assert_ptr_nonnull(strstr(mail, "USD 25.00"));
	ck_assert_ptr_nonnull(strstr(mail, id));
	ck_assert_ptr_nonnull(strstr(mail, "Tax-deductible."));
	free(mail);
	ck_assert_int_eq(queue_num("receipts", "done"), 1);

	/* A mailbox the server refuses for good: dead at once, the gift stays
	 * succeeded. */
	ck_assert_int_eq(donate("tok_visa", 700, "nobody@example.org", bad, sizeof(bad)), 202);
	ck_assert_int_eq(wait_dead("receipts", 1, 5000), 1);
	expect_status(bad, "succeeded");
	dead = jobs("receipts", "dead");
	ck_assert_ptr_nonnull(
	    strstr(json_string_value(json_object_get(
	               json_array_get(json_object_get(dead, "jobs"), 0), "last_error")),
	           "550"));
	ck_assert_int_eq(
	    itest_json_int(json_array_get(json_object_get(dead, "jobs"), 0), "attempts"), 1);
	json_decref(dead);
	ck_assert_int_eq(count_files(dir), 1);
	tests_rmdir(dir);
}
END_TEST

START_TEST(webhook_retries_keep_the_event_id)
{
	char args[256], id[32], want[64];
	json_t *ev, *e0;

	ck_assert_int_eq(
	    itest_tool_start(&hook, "webhook_receiver.py", "--secret whsec_t2 --fail-first 2"), 0);
	snprintf(args, sizeof(args),
	         "--webhook http://127.0.0.1:%d/hook --webhook-secret whsec_t2 --jobs "
	         "webhooks:backoff-ms=20",
	         hook.port);
	start(args);
	ck_assert_int_eq(donate("tok_visa", 2500, "ada@example.org", id, sizeof(id)), 202);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	ev = tool_get(hook.port, "/_events");
	ck_assert_int_eq(itest_json_int(ev, "requests"), 3);
	ck_assert_int_eq(itest_json_int(ev, "bad_signatures"), 0);
	ck_assert_int_eq(json_array_size(json_object_get(ev, "events")), 1);
	e0 = json_array_get(json_object_get(ev, "events"), 0);
	snprintf(want, sizeof(want), "evt_%s_succeeded", id + 3);
	ck_assert_str_eq(json_string_value(json_object_get(e0, "id")), want);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(e0, "data"), "id")), id);
	json_decref(ev);
	ck_assert_int_eq(queue_num("webhooks", "failed"), 2);
	ck_assert_int_eq(queue_num("webhooks", "done"), 1);
}
END_TEST

/* A count from a receiver's /_events?summary=1. */
static long long tool_count(int port, const char *key)
{
	json_t *v = tool_get(port, "/_events?summary=1");
	long long n = itest_json_int(v, key);

	json_decref(v);
	return n;
}

/* Wait (at most ms) until the receiver on port counts n in key; returns
 * the last count seen. */
static long long wait_tool_count(int port, const char *key, long long n, int ms)
{
	long long seen = tool_count(port, key);

	for (int i = 0; i < ms / 20 && seen < n; i++) {
		usleep(20000);
		seen = tool_count(port, key);
	}
	return seen;
}

/* The webhooks jobs in state whose url ends with suffix (at most 1000);
 * *attempts gets the sum of their attempts. */
static int hooks_to(const char *state, const char *suffix, long long *attempts)
{
	char path[128];
	json_t *list, *j;
	size_t i, k = strlen(suffix);
	int n = 0;

	snprintf(path, sizeof(path), "/api/v1/admin/jobs?queue=webhooks&state=%s&limit=1000",
	         state);
	list = itest_get_json(srv.port, path, 1);
	*attempts = 0;
	json_array_foreach(json_object_get(list, "jobs"), i, j)
	{
		const char *url =
		    json_string_value(json_object_get(json_object_get(j, "payload"), "url"));
		size_t len = url ? strlen(url) : 0;

		if (len >= k && !strcmp(url + len - k, suffix)) {
			n++;
			*attempts += itest_json_int(j, "attempts");
		}
	}
	json_decref(list);
	return n;
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

START_TEST(hanging_endpoint_holds_only_its_share)
{
	/* More gifts than the queue has slots (64): without a cap per
	 * endpoint the hanging one would take them all. */
	enum { N = 100, SHARE = 8 };
	char args[512];
	long long attempts;

	ck_assert_int_eq(itest_tool_start(&tool, "webhook_receiver.py", "--secret whsec_h --hang"),
	                 0);
	ck_assert_int_eq(itest_tool_start(&hook, "webhook_receiver.py", "--secret whsec_ok"), 0);
	snprintf(args, sizeof(args),
	         "--webhook http://127.0.0.1:%d/hang --webhook-secret whsec_h "
	         "--webhook http://127.0.0.1:%d/ok --webhook-secret whsec_ok",
	         tool.port, hook.port);
	start(args);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(donate("tok_visa", 1000 + i, "a@example.org", NULL, 0), 202);
	/* Every healthy delivery arrives while the hanging ones still hang
	 * (a transfer gives up after 10 s). */
	ck_assert_int_eq(wait_tool_count(hook.port, "accepted", N, 5000), N);
	ck_assert_int_eq(tool_count(hook.port, "distinct_ids"), N);
	ck_assert_int_eq(tool_count(hook.port, "bad_signatures"), 0);
	/* The hanging endpoint got its share and no more; the rest of its
	 * events wait ready, no attempt spent on them. */
	ck_assert_int_eq(tool_count(tool.port, "requests"), SHARE);
	ck_assert_int_eq(hooks_to("running", "/hang", &attempts), SHARE);
	ck_assert_int_eq(hooks_to("ready", "/hang", &attempts), N - SHARE);
	ck_assert_int_eq(attempts, 0);
	ck_assert_int_eq(queue_num("webhooks", "failed"), 0);
	/* The receiver counts a delivery before tally commits it. */
	for (int i = 0; i < 250 && queue_num("webhooks", "done") < N; i++)
		usleep(20000);
	ck_assert_int_eq(queue_num("webhooks", "done"), N);
}
END_TEST

START_TEST(sigterm_with_a_hanging_endpoint_exits_in_time)
{
	enum { N = 5, SHARE = 3 };
	char args[512], port[32];
	long long attempts;
	double t0, took;
	int st, hport;

	ck_assert_int_eq(itest_tool_start(&tool, "webhook_receiver.py", "--secret whsec_h --hang"),
	                 0);
	hport = tool.port;
	snprintf(args, sizeof(args),
	         "--webhook http://127.0.0.1:%d/h --webhook-secret whsec_h "
	         "--jobs webhooks:per-endpoint=%d",
	         hport, SHARE);
	start(args);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(donate("tok_visa", 1000 + i, "a@example.org", NULL, 0), 202);
	ck_assert_int_eq(wait_tool_count(hport, "requests", SHARE, 5000), SHARE);
	for (int i = 0; i < 250 && hooks_to("ready", "/h", &attempts) < N - SHARE; i++)
		usleep(20000);
	ck_assert_int_eq(hooks_to("running", "/h", &attempts), SHARE);
	ck_assert_int_eq(hooks_to("ready", "/h", &attempts), N - SHARE);

	/* The README promises an exit within 5 s of SIGTERM: the attempts
	 * that hang are cut off in time. */
	t0 = mono_s();
	st = itest_signal(&srv, SIGTERM);
	took = mono_s() - t0;
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
	ck_assert_msg(took < 5.0, "SIGTERM took %.2f s", took);
	/* Nothing lost, nothing counted: every event is still to be sent,
	 * the cut-off attempts not spent. */
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM jobs WHERE queue = 'webhooks'"
	                                       " AND state = 'ready' AND attempts = 0"),
	                 N);
	ck_assert_int_eq(tool_count(hport, "requests"), SHARE);

	/* The endpoint recovers (a receiver on the same address) and tally
	 * starts again: every event is delivered once. */
	itest_tool_stop(&tool);
	snprintf(port, sizeof(port), "--secret whsec_h --port %d", hport);
	ck_assert_int_eq(itest_tool_start(&hook, "webhook_receiver.py", port), 0);
	ck_assert_int_eq(hook.port, hport);
	snprintf(args, sizeof(args),
	         "--job-retention-s 0 --webhook http://127.0.0.1:%d/h --webhook-secret whsec_h",
	         hport);
	ck_assert_int_eq(itest_start(&srv, args), 0);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	ck_assert_int_eq(tool_count(hport, "accepted"), N);
	ck_assert_int_eq(tool_count(hport, "distinct_ids"), N);
	ck_assert_int_eq(queue_num("webhooks", "done"), N);
	ck_assert_int_eq(queue_num("webhooks", "failed"), 0);
}
END_TEST

START_TEST(refund_takes_the_gift_out)
{
	char args[256], id[32], path[128], pend[32];
	json_t *c, *d, *ev;
	struct itest_resp r;

	ck_assert_int_eq(itest_tool_start(&hook, "webhook_receiver.py", "--secret whsec_t3"), 0);
	snprintf(args, sizeof(args), "--webhook http://127.0.0.1:%d/ --webhook-secret whsec_t3",
	         hook.port);
	start(args);
	ck_assert_int_eq(donate("tok_visa", 2500, "ada@example.org", id, sizeof(id)), 202);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	snprintf(path, sizeof(path), "/api/v1/admin/donations/%s/refund", id);
	/* Bad input first: nothing is asked of the processor for it. */
	ck_assert_int_eq(admin_status("POST", path, "{\"reason\":5}"), 422);
	ck_assert_int_eq(admin_status("POST", path, "{\"reason\":"), 400);
	ck_assert_int_eq(admin_status("POST", "/api/v1/admin/donations/dn_999/refund", NULL), 404);
	ck_assert_int_eq(itest_post_json(srv.port, path, "{}", 0, &r), 0);
	ck_assert_int_eq(r.status, 401);
	itest_resp_fini(&r);
	expect_status(id, "succeeded");

	ck_assert_int_eq(admin_status("POST", path, "{\"reason\":\"donor asked\"}"), 202);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	d = donation(id);
	ck_assert_str_eq(json_string_value(json_object_get(d, "status")), "refunded");
	ck_assert_str_eq(json_string_value(json_object_get(d, "reason")), "donor asked");
	json_decref(d);
	c = campaign();
	ck_assert_int_eq(itest_json_int(c, "total_cents"), 0);
	ck_assert_int_eq(itest_json_int(c, "donation_count"), 0);
	json_decref(c);
	/* Once is enough. */
	ck_assert_int_eq(admin_status("POST", path, NULL), 409);
	ev = tool_get(hook.port, "/_events?summary=1");
	ck_assert_int_eq(itest_json_int(json_object_get(ev, "by_type"), "donation.refunded"), 1);
	ck_assert_int_eq(itest_json_int(json_object_get(ev, "by_type"), "donation.succeeded"), 1);
	json_decref(ev);

	/* A refund whose job staff discard may be asked for again. */
	ck_assert_int_eq(donate("tok_visa", 800, "c@example.org", id, sizeof(id)), 202);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	ck_assert_int_eq(admin_status("POST", "/api/v1/admin/queues/payments/pause", NULL), 200);
	snprintf(path, sizeof(path), "/api/v1/admin/donations/%s/refund", id);
	ck_assert_int_eq(admin_status("POST", path, NULL), 202);
	ck_assert_int_eq(admin_status("POST", path, NULL), 409); /* one at a time */
	{
		json_t *ready = jobs("payments", "ready");
		json_t *j0 = json_array_get(json_object_get(ready, "jobs"), 0);
		char del[96];

		ck_assert_str_eq(json_string_value(json_object_get(j0, "kind")), "refund");
		snprintf(del, sizeof(del), "/api/v1/admin/jobs/%lld", itest_json_int(j0, "id"));
		json_decref(ready);
		ck_assert_int_eq(admin_status("DELETE", del, NULL), 200);
	}
	expect_status(id, "succeeded");
	ck_assert_int_eq(admin_status("POST", path, NULL), 202);

	/* A pending gift cannot be refunded. */
	ck_assert_int_eq(donate("tok_visa", 500, "b@example.org", pend, sizeof(pend)), 202);
	snprintf(path, sizeof(path), "/api/v1/admin/donations/%s/refund", pend);
	ck_assert_int_eq(admin_status("POST", path, NULL), 409);
}
END_TEST

START_TEST(queue_api_rejects_bad_input)
{
	static const struct {
		const char *method, *path;
		int status;
		const char *code;
	} bad[] = {
	    {"GET", "/api/v1/admin/jobs", 400, "invalid_query"},
	    {"GET", "/api/v1/admin/jobs?queue=mail", 400, "invalid_query"},
	    {"GET", "/api/v1/admin/jobs?queue=payments&state=lost", 400, "invalid_query"},
	    {"GET", "/api/v1/admin/jobs?queue=payments&state=held", 400, "invalid_query"},
	    {"GET", "/api/v1/admin/jobs?queue=payments&limit=0", 400, "invalid_query"},
	    {"GET", "/api/v1/admin/audit?limit=100000", 400, "invalid_query"},
	    {"POST", "/api/v1/admin/queues/mail/pause", 404, "queue_not_found"},
	    {"POST", "/api/v1/admin/jobs/99999/retry", 404, "job_not_found"},
	    {"DELETE", "/api/v1/admin/jobs/0", 404, "job_not_found"},
	    {"DELETE", "/api/v1/admin/jobs/-1", 404, "job_not_found"},
	};
	char id[32], path[64];
	struct itest_resp r;
	json_t *ready;
	long long job;

	start("--jobs payments:backoff-ms=100");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(admin(bad[i].method, bad[i].path, NULL, &r), 0);
		ck_assert_msg(r.status == bad[i].status, "%s %s: %d", bad[i].method, bad[i].path,
		              r.status);
		ck_assert_msg(strstr(r.body, bad[i].code), "%s %s: %s", bad[i].method, bad[i].path,
		              r.body);
		itest_resp_fini(&r);
	}
	/* Staff only. */
	ck_assert_int_eq(itest_http(srv.port, "GET", "/api/v1/admin/queues", NULL, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 401);
	itest_resp_fini(&r);
	ck_assert_int_eq(
	    itest_http(srv.port, "GET", "/api/v1/admin/jobs?queue=payments", NULL, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 401);
	itest_resp_fini(&r);

	/* A ready job cannot be retried (it is about to run). */
	ck_assert_int_eq(admin_status("POST", "/api/v1/admin/queues/payments/pause", NULL), 200);
	ck_assert_int_eq(donate("tok_visa", 500, "b@example.org", id, sizeof(id)), 202);
	ready = jobs("payments", "ready");
	job = itest_json_int(json_array_get(json_object_get(ready, "jobs"), 0), "id");
	json_decref(ready);
	snprintf(path, sizeof(path), "/api/v1/admin/jobs/%lld/retry", job);
	ck_assert_int_eq(admin_status("POST", path, NULL), 409);
	/* Nothing above was audited: only the pause. */
	{
		json_t *a = itest_get_json(srv.port, "/api/v1/admin/audit", 1);

		ck_assert_int_eq(json_array_size(json_object_get(a, "entries")), 2);
		ck_assert_str_eq(json_string_value(json_object_get(
		                     json_array_get(json_object_get(a, "entries"), 0), "action")),
		                 "queue.pause");
		json_decref(a);
	}
	/* Metrics have the per-queue gauges. */
	ck_assert_int_eq(itest_http(srv.port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
	ck_assert_ptr_nonnull(strstr(r.body, "tally_jobs{queue=\"payments\",state=\"ready\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(r.body, "tally_queue_paused{queue=\"payments\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(r.body, "tally_job_queue_latency_seconds_count{queue="));
	itest_resp_fini(&r);
}
END_TEST

/* Run tally with args (and env) on a fresh database path; its exit code
 * and output go to *code and out. */
static void run_cli(const char *env, const char *args, const char *db, int *code, char *out,
                    size_t cap)
{
	const char *bin = getenv("TALLY_BIN") ? getenv("TALLY_BIN") : "./tally";
	char cmd[2048];
	size_t n;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "env -u STRIPE_SECRET_KEY %s %s --headless --db %s %s 2>&1", env,
	         bin, db, args);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	st = pclose(p);
	*code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(bad_job_options_are_refused)
{
	static const struct {
		const char *env, *args, *says;
	} bad[] = {
	    {"", "--processor paypal", "--processor wants mock or stripe"},
	    {"", "--processor stripe", "needs STRIPE_SECRET_KEY"},
	    {"", "--mock-fail-rate 1.5", "--mock-fail-rate wants 0 to 1"},
	    {"", "--mock-fail-rate x", "--mock-fail-rate wants 0 to 1"},
	    {"", "--mock-latency-ms -1", "--mock-latency-ms wants 0 to 60000"},
	    {"", "--jobs payments", "--jobs wants QUEUE:KEY=N"},
	    {"", "--jobs mail:workers=2", "--jobs wants QUEUE:KEY=N"},
	    {"", "--jobs payments:workers=0", "--jobs wants QUEUE:KEY=N"},
	    {"", "--jobs payments:speed=2", "--jobs wants QUEUE:KEY=N"},
	    {"", "--jobs payments:inflight=", "--jobs wants QUEUE:KEY=N"},
	    {"", "--jobs receipts:nice=20", "--jobs wants QUEUE:KEY=N"},
	    {"", "--jobs payments:timeout-ms=9", "--jobs wants QUEUE:KEY=N"},
	    {"", "--jobs smtp:timeout-ms=1000", "--jobs wants QUEUE:KEY=N"},
	    {"", "--jobs receipts:timeout-ms=3600001", "--jobs wants QUEUE:KEY=N"},
	    {"", "--jobs webhooks:per-endpoint=0", "--jobs wants QUEUE:KEY=N"},
	    {"", "--jobs webhooks:per-endpoint=4097", "--jobs wants QUEUE:KEY=N"},
	    {"", "--jobs payments:per-endpoint=2", "per-endpoint is a webhooks setting"},
	    {"", "--live viewers=0", "--live wants KEY=N"},
	    {"", "--live fps=3", "--live wants KEY=N"},
	    {"", "--live ping-s=30,timeout-s=30", "--live wants KEY=N"},
	    {"", "--live coalesce-ms=5", "--live wants KEY=N"},
	    {"", "--live nice", "--live wants KEY=N"},
	    {"", "--job-retention-s -5", "--job-retention-s wants"},
	    {"", "--webhook ftp://x", "--webhook wants an http:// or https:// URL"},
	    {"", "--webhook http://127.0.0.1:9/h", "needs a secret"},
	    {"TALLY_WEBHOOK_SECRET=", "--webhook http://127.0.0.1:9/h", "needs a secret"},
	    {"", "--webhook-secret s", "--webhook-secret follows its --webhook"},
	};
	char *dir = tests_tmpdir(), db[600], out[4096];
	int code;

	ck_assert_ptr_nonnull(dir);
	snprintf(db, sizeof(db), "%s/never.db", dir);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		run_cli(bad[i].env, bad[i].args, db, &code, out, sizeof(out));
		ck_assert_msg(code == 2, "%s: exit %d: %s", bad[i].args, code, out);
		ck_assert_msg(strstr(out, bad[i].says), "%s: said %s", bad[i].args, out);
		/* Refused before anything was written. */
		ck_assert_msg(access(db, F_OK) != 0, "%s: created the database", bad[i].args);
	}
	tests_rmdir(dir);
}
END_TEST

/* --min-cents and --max-cents take 1 to 10^12 (TALLY_AMOUNT_MAX): a larger
 * gift would let a few of them overflow a total. */
START_TEST(amount_options_are_bounded)
{
	static const struct {
		const char *args, *says;
	} bad[] = {
	    {"--max-cents 9223372036854775807",
	     "--max-cents wants 1 to 1000000000000 minor units of the currency (cents), got "
	     "'9223372036854775807'"},
	    {"--max-cents 1000000000001", "--max-cents wants 1 to 1000000000000"},
	    {"--max-cents 99999999999999999999", "--max-cents wants 1 to 1000000000000"},
	    {"--max-cents 0", "--max-cents wants 1 to 1000000000000"},
	    {"--max-cents -5", "--max-cents wants 1 to 1000000000000"},
	    {"--max-cents 10e9", "--max-cents wants 1 to 1000000000000"},
	    {"--min-cents 1000000000001", "--min-cents wants 1 to 1000000000000"},
	    {"--min-cents 500 --max-cents 100", "--min-cents is larger than --max-cents"},
	};
	char *dir = tests_tmpdir(), db[600], out[4096];
	int code;

	ck_assert_ptr_nonnull(dir);
	snprintf(db, sizeof(db), "%s/never.db", dir);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		run_cli("", bad[i].args, db, &code, out, sizeof(out));
		ck_assert_msg(code == 2, "%s: exit %d: %s", bad[i].args, code, out);
		ck_assert_msg(strstr(out, bad[i].says), "%s: said %s", bad[i].args, out);
		ck_assert_msg(access(db, F_OK) != 0, "%s: created the database", bad[i].args);
	}
	tests_rmdir(dir);
}
END_TEST

/* The bound itself is a valid --max-cents: a gift of 10^12 is taken, one
 * cent more is a validation error. */
START_TEST(max_cents_at_the_bound)
{
	char id[32];
	json_t *c;

	start("--max-cents 1000000000000 --jobs payments:workers=1");
	ck_assert_int_eq(donate("tok_visa", 1000000000000LL, "ada@example.org", id, sizeof(id)),
	                 202);
	ck_assert_int_eq(donate("tok_visa", 1000000000001LL, "bob@example.org", NULL, 0), 422);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	c = campaign();
	ck_assert_int_eq(itest_json_int(c, "total_cents"), 1000000000000LL);
	ck_assert_int_eq(itest_json_int(c, "donation_count"), 1);
	json_decref(c);
}
END_TEST

Suite *jobs_suite(void)
{
	Suite *s = suite_create("jobs");
	TCase *unit = tcase_create("unit");
	TCase *it = tcase_create("integration");

	tcase_add_test(unit, backoff_doubles_with_jitter_and_cap);
	tcase_add_test(unit, names_round_trip);
	tcase_add_test(unit, signature_matches_reference);
	tcase_add_test(unit, receipt_text);
	tcase_add_test(unit, receipt_amount_by_currency);
	tcase_add_test(unit, event_body_is_json);
	tcase_add_test(unit, bad_job_options_are_refused);
	tcase_add_test(unit, amount_options_are_bounded);
	/* The option tests run tally forty times: a moment each, but a
	 * second or more under valgrind (make valgrind multiplies this). */
	tcase_set_timeout(unit, 20);
	suite_add_tcase(s, unit);
	tcase_add_unchecked_fixture(it, tests_root_setup, tests_root_teardown);
	tcase_add_checked_fixture(it, setup, teardown);
	tcase_set_timeout(it, 60);
	tcase_add_test(it, decline_fails_the_gift_and_signs_the_event);
	tcase_add_test(it, transient_failures_then_success);
	tcase_add_test(it, dead_then_staff_retry);
	tcase_add_test(it, each_failed_attempt_is_listed_with_its_error_and_time);
	tcase_add_test(it, stripe_failed_payment_is_not_confirmed_again);
	tcase_add_test(it, discard_fails_a_stuck_gift);
	tcase_add_test(it, paused_queue_waits_across_restart);
	tcase_add_test(it, sigkill_during_capture_charges_once);
	tcase_add_test(it, sigterm_lets_captures_in_flight_finish);
	tcase_add_test(it, done_jobs_are_pruned_after_the_retention);
	tcase_add_test(it, receipts_over_smtp);
	tcase_add_test(it, outbox_receipt_whole_and_retried);
	tcase_add_test(it, max_cents_at_the_bound);
	tcase_add_test(it, webhook_retries_keep_the_event_id);
	tcase_add_test(it, hanging_endpoint_holds_only_its_share);
	tcase_add_test(it, sigterm_with_a_hanging_endpoint_exits_in_time);
	tcase_add_test(it, refund_takes_the_gift_out);
	tcase_add_test(it, queue_api_rejects_bad_input);
	suite_add_tcase(s, it);
	return s;
}
