/* tests/test_engine.c - campaigns, donations, the totals cache, restarts and
 * listeners of core/engine. */
#include "tests/tests.h"
#include "core/engine.h"
#include "core/idem.h"
#include "core/jobs.h"
#include "core/validate.h"
#include "core/work.h"
#include "base/hour.h"
#include "base/log.h"
#include "base/util.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *tmp_dir;
static char db_path[600];
static struct engine *eng;
static int replayed; /* engine_donate's out-parameter (the tests here use no keys) */

/* The job queues as tally composes them (tally.c), mock processor. */
static struct work_config work;
static struct jobs_config jobs_cfg;
static char install_id[40];
static char outbox[700];

static struct engine *open_engine_with(size_t max_queue, int jobs_paused)
{
	struct engine_config cfg;
	struct engine *e = NULL;
	char err[256] = "";

	jobs_config_defaults(&jobs_cfg);
	work_config_defaults(&work);
	snprintf(outbox, sizeof(outbox), "%s-outbox", db_path);
	work.outbox = outbox;
	work.install_id = install_id;
	ck_assert_msg(work_setup(&work, &jobs_cfg, err, sizeof(err)) == 0, "work_setup: %s", err);
	engine_config_defaults(&cfg);
	cfg.jobs = &jobs_cfg;
	cfg.install_id = install_id;
	cfg.db_path = db_path;
	cfg.synchronous = "NORMAL";
	cfg.max_queue = max_queue;
	cfg.jobs_paused_at_start = jobs_paused;
	ck_assert_msg(engine_open(&cfg, &e, err, sizeof(err)) == 0, "engine_open: %s", err);
	ck_assert_ptr_nonnull(e);
	return e;
}

static struct engine *open_engine_queue(size_t max_queue)
{
	return open_engine_with(max_queue, 0);
}

static struct engine *open_engine(void)
{
	struct engine_config cfg;

	engine_config_defaults(&cfg);
	return open_engine_queue(cfg.max_queue);
}

static void setup(void)
{
	log_set_level(LOG_ERROR);
	tmp_dir = tests_tmpdir();
	ck_assert_ptr_nonnull(tmp_dir);
	snprintf(db_path, sizeof(db_path), "%s/tally.db", tmp_dir);
	eng = open_engine();
}

static void teardown(void)
{
	engine_free(eng);
	eng = NULL;
	tests_rmdir(tmp_dir);
	tmp_dir = NULL;
}

/* ---- helpers ---- */

/* Create a campaign from a JSON body (validated like the API does). */
static int create(const char *body)
{
	struct campaign_spec spec;
	struct validate_error err = {{0}, NULL};
	int rc = validate_campaign(body, strlen(body), 1, &spec, &err);

	ck_assert_msg(rc == TALLY_OK, "%s: %s", body, err.message);
	validate_error_fini(&err);
	return engine_campaign_create_sync(eng, &spec, "tester");
}

static void create_ok(const char *slug, const char *currency)
{
	char body[256];
	int rc;

	snprintf(body, sizeof(body),
	         "{\"slug\":\"%s\",\"name\":\"Campaign %s\",\"currency\":\"%s\","
	         "\"goal_cents\":1000000}",
	         slug, slug, currency);
	rc = create(body);
	ck_assert_msg(rc == TALLY_OK, "create %s: %s", slug, tally_strerror(rc));
}

static struct donation_req make_req(int64_t amount, const char *currency, const char *name,
                                    const char *email)
{
	struct donation_req r;

	memset(&r, 0, sizeof(r));
	r.amount_cents = amount;
	snprintf(r.currency, sizeof(r.currency), "%s", currency);
	snprintf(r.name, sizeof(r.name), "%s", name);
	snprintf(r.email, sizeof(r.email), "%s", email);
	memcpy(r.payment_token, "tok_visa", 9);
	return r;
}

struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done;
	int rc;
	char body[512];
};

static void waiter_done(void *ud, const struct engine_answer *a)
{
	struct waiter *w = ud;

	pthread_mutex_lock(&w->lock);
	w->rc = a->rc;
	if (a->body)
		snprintf(w->body, sizeof(w->body), "%.*s", (int)a->len, a->body);
	w->done = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* Wait until queue q has nothing ready, running, held or waiting to retry
 * (at most 10 s). A job leaves `running` only after its batch was
 * published and told to the listeners, so this is a barrier for them. */
static void settle_queue(enum job_queue q)
{
	ck_assert_msg(engine_jobs_wait_idle(eng, q, 10000) == 0, "queue %s did not settle",
	              job_queue_names[q]);
}

/* Donate and wait for the commit and the capture's outcome. Returns the
 * immediate error, or the completion's rc; the 202 body goes to body (may
 * be NULL). */
static int donate(const char *slug, const struct donation_req *req, char *body, size_t cap)
{
	struct waiter w;
	int rc;

	memset(&w, 0, sizeof(w));
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	rc = engine_donate(eng, slug, req, NULL, NULL, &replayed, waiter_done, &w);
	if (rc == TALLY_OK) {
		pthread_mutex_lock(&w.lock);
		while (!w.done)
			pthread_cond_wait(&w.cond, &w.lock);
		pthread_mutex_unlock(&w.lock);
		rc = w.rc;
		if (body)
			snprintf(body, cap, "%s", w.body);
		settle_queue(JOB_PAYMENTS);
	}
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.lock);
	return rc;
}

static void donate_ok(const char *slug, const struct donation_req *req, char *body, size_t cap)
{
	int rc = donate(slug, req, body, cap);

	ck_assert_msg(rc == TALLY_OK, "donate to %s: %s", slug, tally_strerror(rc));
}

static json_t *parse(const char *text, size_t len)
{
	json_error_t jerr;
	json_t *v = json_loadb(text, len, 0, &jerr);

	ck_assert_msg(v != NULL, "bad JSON (%s): %.400s", jerr.text, text);
	return v;
}

/* The campaign's public JSON, parsed (caller decrefs); its raw text in raw
 * when given (caller frees). */
static json_t *campaign_json(const char *slug, uint64_t *seq, char **raw)
{
	struct buf b = {0};
	json_t *v;
	int rc = engine_campaign_json(eng, slug, strlen(slug), &b, seq);

	ck_assert_msg(rc == 0, "campaign_json %s: %d", slug, rc);
	v = parse(b.p, b.len);
	if (raw)
		*raw = b.p;
	else
		buf_fini(&b);
	return v;
}

static int64_t jint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_integer(v), "\"%s\" is not an integer", key);
	return json_integer_value(v);
}

static const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_string(v), "\"%s\" is not a string", key);
	return json_string_value(v);
}

/* The info row of slug (from engine_campaign_infos). */
static struct engine_campaign_info info_of(const char *slug)
{
	struct engine_campaign_info *v = NULL, row;
	long n = engine_campaign_infos(eng, &v);
	int found = 0;

	ck_assert_int_ge(n, 0);
	memset(&row, 0, sizeof(row));
	for (long i = 0; i < n; i++)
		if (!strcmp(v[i].c.slug, slug)) {
			row = v[i];
			found = 1;
		}
	free(v);
	ck_assert_msg(found, "no info row for %s", slug);
	return row;
}

static char *rfc3339_at(int64_t ms, char *buf, size_t cap)
{
	return util_rfc3339(ms, buf, cap);
}

/* ---- creation and reads ---- */

START_TEST(create_and_read)
{
	json_t *c, *recent;
	uint64_t seq = 0;
	struct buf b = {0};
	int rc;

	rc = create("{\"slug\":\"spring\",\"name\":\"Spring \\\"Drive\\\" <b>&</b>\","
	            "\"currency\":\"USD\",\"goal_cents\":500000,"
	            "\"starts_at\":\"2020-01-01T00:00:00Z\",\"ends_at\":\"2099-01-01T00:00:00Z\"}");
	ck_assert_int_eq(rc, TALLY_OK);

	c = campaign_json("spring", &seq, NULL);
	ck_assert_str_eq(jstr(c, "slug"), "spring");
	ck_assert_str_eq(jstr(c, "name"), "Spring \"Drive\" <b>&</b>");
	ck_assert_str_eq(jstr(c, "currency"), "USD");
	ck_assert_int_eq(jint(c, "goal_cents"), 500000);
	ck_assert_int_eq(jint(c, "total_cents"), 0);
	ck_assert_int_eq(jint(c, "raised_cents"), 0);
	ck_assert_int_eq(jint(c, "donor_count"), 0);
	ck_assert_int_eq(jint(c, "donation_count"), 0);
	ck_assert_int_eq(jint(c, "pending_cents"), 0);
	ck_assert_str_eq(jstr(c, "status"), "active");
	ck_assert_str_eq(jstr(c, "starts_at"), "2020-01-01T00:00:00.000Z");
	ck_assert_str_eq(jstr(c, "ends_at"), "2099-01-01T00:00:00.000Z");
	ck_assert_int_eq(jint(c, "seq"), (int64_t)seq);
	ck_assert_uint_gt(seq, 0);
	recent = json_object_get(c, "recent");
	ck_assert(json_is_array(recent));
	ck_assert_uint_eq(json_array_size(recent), 0);
	json_decref(c);

	ck_assert_int_gt(engine_campaign_id(eng, "spring", 6), 0);
	ck_assert_int_eq(engine_campaign_id(eng, "nope", 4), TALLY_ENOCAMPAIGN);
	/* A slug is matched on its exact length. */
	ck_assert_int_eq(engine_campaign_id(eng, "springtime", 6),
	                 engine_campaign_id(eng, "spring", 6));
	ck_assert_int_eq(engine_campaign_id(eng, "sprin", 5), TALLY_ENOCAMPAIGN);
	ck_assert_int_eq(engine_campaign_json(eng, "nope", 4, &b, NULL), TALLY_ENOCAMPAIGN);
	ck_assert_int_eq(engine_campaign_json_by_id(eng, 9999, &b, NULL), TALLY_ENOCAMPAIGN);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_int_eq(
	    engine_campaign_json_by_id(eng, engine_campaign_id(eng, "spring", 6), &b, NULL), 0);
	ck_assert_ptr_nonnull(strstr(b.p, "\"slug\":\"spring\""));
	buf_fini(&b);

	{
		struct engine_campaign_info info = info_of("spring");

		ck_assert_str_eq(info.c.name, "Spring \"Drive\" <b>&</b>");
		ck_assert_str_eq(info.c.currency, "USD");
		ck_assert_int_eq(info.effective, CAMPAIGN_ACTIVE);
		ck_assert_int_eq(info.c.goal_cents, 500000);
		ck_assert_int_eq(info.c.raised_cents, 0);
	}
}
END_TEST

START_TEST(duplicate_create)
{
	create_ok("spring", "USD");
	ck_assert_int_eq(create("{\"slug\":\"spring\",\"name\":\"Again\",\"currency\":\"EUR\"}"),
	                 TALLY_EEXISTS);
	{
		json_t *c = campaign_json("spring", NULL, NULL);

		ck_assert_str_eq(jstr(c, "name"), "Campaign spring");
		ck_assert_str_eq(jstr(c, "currency"), "USD");
		json_decref(c);
	}
	create_ok("summer", "USD");
	{
		struct engine_stats st;

		engine_get_stats(eng, &st);
		ck_assert_int_eq(st.campaigns, 2);
	}
}
END_TEST

/* ---- donations ---- */

START_TEST(donate_totals)
{
	struct donation_req r;
	char body[512];
	json_t *c, *recent, *ack;
	uint64_t seq0 = 0, seq1 = 0;

	create_ok("spring", "USD");
	json_decref(campaign_json("spring", &seq0, NULL));

	r = make_req(2500, "USD", "Ada", "ada@example.org");
	snprintf(r.message, sizeof(r.message), "Go team!");
	donate_ok("spring", &r, body, sizeof(body));
	ack = parse(body, strlen(body));
	ck_assert_str_eq(jstr(ack, "status"), "pending");
	ck_assert_str_eq(jstr(ack, "campaign"), "spring");
	ck_assert_int_eq(jint(ack, "amount_cents"), 2500);
	ck_assert_str_eq(jstr(ack, "currency"), "USD");
	ck_assert_int_eq(strncmp(jstr(ack, "id"), "dn_", 3), 0);
	{
		int64_t at;

		ck_assert_int_eq(util_parse_rfc3339(jstr(ack, "created_at"), &at), 0);
	}
	ck_assert_ptr_null(strstr(body, "ada@example.org"));
	json_decref(ack);

	/* The same donor with other case, then someone new. */
	r = make_req(1000, "USD", "Ada L.", "ADA@Example.Org");
	donate_ok("spring", &r, NULL, 0);
	r = make_req(500, "USD", "Bob", "bob@example.org");
	donate_ok("spring", &r, NULL, 0);

	c = campaign_json("spring", &seq1, NULL);
	ck_assert_int_eq(jint(c, "total_cents"), 4000);
	ck_assert_int_eq(jint(c, "raised_cents"), 4000);
	ck_assert_int_eq(jint(c, "donor_count"), 2);
	ck_assert_int_eq(jint(c, "donation_count"), 3);
	ck_assert_uint_gt(seq1, seq0);
	recent = json_object_get(c, "recent");
	ck_assert_uint_eq(json_array_size(recent), 3);
	ck_assert_str_eq(jstr(json_array_get(recent, 0), "name"), "Bob");
	ck_assert_str_eq(jstr(json_array_get(recent, 1), "name"), "Ada L.");
	ck_assert_str_eq(jstr(json_array_get(recent, 2), "name"), "Ada");
	ck_assert_int_eq(jint(json_array_get(recent, 2), "amount_cents"), 2500);
	ck_assert_str_eq(jstr(json_array_get(recent, 2), "message"), "Go team!");
	ck_assert_str_eq(jstr(json_array_get(recent, 0), "message"), "");
	json_decref(c);

	{
		struct engine_campaign_info info = info_of("spring");
		struct engine_stats st;

		ck_assert_int_eq(info.c.raised_cents, 4000);
		ck_assert_int_eq(info.c.donor_count, 2);
		ck_assert_int_eq(info.c.donation_count, 3);
		ck_assert_int_eq(info.c.pending_cents, 0);
		ck_assert(info.per_min > 0);
		engine_get_stats(eng, &st);
		ck_assert_int_eq(st.donations_total, 3);
		ck_assert_int_eq(st.campaigns, 1);
		ck_assert_uint_ge(st.commits.batches, 4);
	}
}
END_TEST

START_TEST(donate_recent_is_bounded)
{
	json_t *c, *recent;

	create_ok("spring", "USD");
	for (int i = 1; i <= 13; i++) {
		char name[16];
		struct donation_req r;

		snprintf(name, sizeof(name), "D%d", i);
		r = make_req(100 * i, "USD", name, "same@example.org");
		donate_ok("spring", &r, NULL, 0);
	}
	c = campaign_json("spring", NULL, NULL);
	recent = json_object_get(c, "recent");
	ck_assert_uint_eq(json_array_size(recent), 10);
	ck_assert_str_eq(jstr(json_array_get(recent, 0), "name"), "D13");
	ck_assert_str_eq(jstr(json_array_get(recent, 9), "name"), "D4");
	ck_assert_int_eq(jint(c, "donor_count"), 1);
	ck_assert_int_eq(jint(c, "donation_count"), 13);
	ck_assert_int_eq(jint(c, "total_cents"), 100 * 91);
	json_decref(c);
}
END_TEST

START_TEST(donate_refused)
{
	struct donation_req r = make_req(2500, "USD", "Ada", "ada@example.org");
	json_t *c;

	create_ok("spring", "USD");
	ck_assert_int_eq(engine_donate(eng, "nope", &r, NULL, NULL, &replayed, waiter_done, NULL),
	                 TALLY_ENOCAMPAIGN);
	ck_assert_int_eq(engine_donate(eng, "", &r, NULL, NULL, &replayed, waiter_done, NULL),
	                 TALLY_ENOCAMPAIGN);
	ck_assert_int_eq(engine_donate(eng, "sprin", &r, NULL, NULL, &replayed, waiter_done, NULL),
	                 TALLY_ENOCAMPAIGN);
	r = make_req(2500, "EUR", "Ada", "ada@example.org");
	ck_assert_int_eq(engine_donate(eng, "spring", &r, NULL, NULL, &replayed, waiter_done, NULL),
	                 TALLY_ECURRENCY);
	c = campaign_json("spring", NULL, NULL);
	ck_assert_int_eq(jint(c, "donation_count"), 0);
	ck_assert_int_eq(jint(c, "total_cents"), 0);
	json_decref(c);
	ck_assert_str_ne(tally_strerror(TALLY_ECURRENCY), "internal error");
}
END_TEST

/* ---- status ---- */

/* A full intake queue answers "overloaded" at once; staff actions are
 * never refused by donor load. */
START_TEST(donate_overloaded)
{
	struct donation_req r = make_req(2500, "USD", "Ada", "ada@example.org");
	json_t *c;

	engine_free(eng);
	eng = open_engine_queue(0);
	create_ok("spring", "USD");
	ck_assert_int_eq(engine_donate(eng, "spring", &r, NULL, NULL, &replayed, waiter_done, NULL),
	                 TALLY_EOVERLOADED);
	ck_assert_int_eq(engine_campaign_action_sync(eng, "spring", "pause", "tester"), TALLY_OK);
	c = campaign_json("spring", NULL, NULL);
	ck_assert_str_eq(jstr(c, "status"), "paused");
	ck_assert_int_eq(jint(c, "donation_count"), 0);
	json_decref(c);
}
END_TEST

START_TEST(pause_resume_close)
{
	struct donation_req r = make_req(2500, "USD", "Ada", "ada@example.org");
	json_t *c;

	create_ok("spring", "USD");
	ck_assert_int_eq(engine_campaign_action_sync(eng, "spring", "pause", "tester"), TALLY_OK);
	c = campaign_json("spring", NULL, NULL);
	ck_assert_str_eq(jstr(c, "status"), "paused");
	json_decref(c);
	ck_assert_int_eq(info_of("spring").effective, CAMPAIGN_PAUSED);
	ck_assert_int_eq(donate("spring", &r, NULL, 0), TALLY_EPAUSED);

	ck_assert_int_eq(engine_campaign_action_sync(eng, "spring", "resume", "tester"), TALLY_OK);
	c = campaign_json("spring", NULL, NULL);
	ck_assert_str_eq(jstr(c, "status"), "active");
	json_decref(c);
	donate_ok("spring", &r, NULL, 0);

	ck_assert_int_eq(engine_campaign_action_sync(eng, "spring", "close", "tester"), TALLY_OK);
	c = campaign_json("spring", NULL, NULL);
	ck_assert_str_eq(jstr(c, "status"), "closed");
	ck_assert_int_eq(jint(c, "total_cents"), 2500);
	json_decref(c);
	ck_assert_int_eq(donate("spring", &r, NULL, 0), TALLY_ECLOSED);
	ck_assert_int_eq(engine_campaign_action_sync(eng, "spring", "resume", "tester"),
	                 TALLY_ECLOSED);
	ck_assert_int_eq(engine_campaign_action_sync(eng, "spring", "pause", "tester"),
	                 TALLY_ECLOSED);
	c = campaign_json("spring", NULL, NULL);
	ck_assert_str_eq(jstr(c, "status"), "closed");
	json_decref(c);
	ck_assert_int_eq(engine_campaign_action_sync(eng, "nope", "pause", "tester"),
	                 TALLY_ENOCAMPAIGN);
	ck_assert_int_eq(engine_campaign_action_sync(eng, "spring", "explode", "tester"),
	                 TALLY_ESTATE);
}
END_TEST

/* A status change touches the status only: name, goal and schedule stay. */
START_TEST(pause_keeps_settings)
{
	json_t *c;
	uint64_t seq0 = 0, seq1 = 0;
	int rc;

	rc = create("{\"slug\":\"spring\",\"name\":\"Spring Drive\",\"currency\":\"USD\","
	            "\"goal_cents\":500000,\"ends_at\":\"2099-01-01T00:00:00Z\"}");
	ck_assert_int_eq(rc, TALLY_OK);
	json_decref(campaign_json("spring", &seq0, NULL));
	ck_assert_int_eq(engine_campaign_action_sync(eng, "spring", "pause", "tester"), TALLY_OK);
	c = campaign_json("spring", &seq1, NULL);
	ck_assert_uint_eq(seq1, seq0 + 1);
	ck_assert_str_eq(jstr(c, "status"), "paused");
	ck_assert_str_eq(jstr(c, "name"), "Spring Drive");
	ck_assert_int_eq(jint(c, "goal_cents"), 500000);
	ck_assert(json_is_null(json_object_get(c, "starts_at")));
	ck_assert_str_eq(jstr(c, "ends_at"), "2099-01-01T00:00:00.000Z");
	json_decref(c);
	ck_assert_int_eq(engine_campaign_action_sync(eng, "spring", "resume", "tester"), TALLY_OK);
	c = campaign_json("spring", NULL, NULL);
	ck_assert_str_eq(jstr(c, "status"), "active");
	ck_assert_str_eq(jstr(c, "name"), "Spring Drive");
	ck_assert_int_eq(jint(c, "goal_cents"), 500000);
	json_decref(c);
	{
		struct engine_campaign_info info = info_of("spring");

		ck_assert_str_eq(info.c.name, "Spring Drive");
		ck_assert_int_eq(info.c.goal_cents, 500000);
		ck_assert_int_eq(info.effective, CAMPAIGN_ACTIVE);
	}
}
END_TEST

/* engine.h: "Returns TALLY_ESTATE when the campaign is already in that
 * state or closed." */
START_TEST(redundant_action)
{
	int resume_active, pause_paused, close_closed;
	json_t *c;

	create_ok("spring", "USD");
	resume_active = engine_campaign_action_sync(eng, "spring", "resume", "tester");
	ck_assert_int_eq(engine_campaign_action_sync(eng, "spring", "pause", "tester"), TALLY_OK);
	pause_paused = engine_campaign_action_sync(eng, "spring", "pause", "tester");
	ck_assert_int_eq(engine_campaign_action_sync(eng, "spring", "close", "tester"), TALLY_OK);
	close_closed = engine_campaign_action_sync(eng, "spring", "close", "tester");
	c = campaign_json("spring", NULL, NULL);
	ck_assert_str_eq(jstr(c, "status"), "closed");
	json_decref(c);
	/* Staff actions are idempotent: repeating one is a success, so a double
	 * click or a retried request never shows an error. */
	ck_assert_msg(resume_active == TALLY_OK && pause_paused == TALLY_OK &&
	                  close_closed == TALLY_OK,
	              "resume when active -> %d, pause when paused -> %d, close when closed -> %d;"
	              " want TALLY_OK for all three",
	              resume_active, pause_paused, close_closed);
	ck_assert_int_eq(engine_campaign_action_sync(eng, "spring", "resume", "tester"),
	                 TALLY_ECLOSED);
}
END_TEST

START_TEST(schedule_closes)
{
	struct donation_req r = make_req(2500, "USD", "Ada", "ada@example.org");
	int64_t now = util_now_ms();
	char body[512], t1[32], t2[32];
	json_t *c;

	/* Ended an hour ago. */
	snprintf(body, sizeof(body),
	         "{\"slug\":\"past\",\"name\":\"Past\",\"currency\":\"USD\","
	         "\"starts_at\":\"%s\",\"ends_at\":\"%s\"}",
	         rfc3339_at(now - 7200000, t1, sizeof(t1)),
	         rfc3339_at(now - 3600000, t2, sizeof(t2)));
	ck_assert_int_eq(create(body), TALLY_OK);
	c = campaign_json("past", NULL, NULL);
	ck_assert_str_eq(jstr(c, "status"), "closed");
	json_decref(c);
	ck_assert_int_eq(info_of("past").effective, CAMPAIGN_CLOSED);
	ck_assert_int_eq(donate("past", &r, NULL, 0), TALLY_ECLOSED);

	/* Not started yet. */
	snprintf(body, sizeof(body),
	         "{\"slug\":\"future\",\"name\":\"Future\",\"currency\":\"USD\","
	         "\"starts_at\":\"%s\"}",
	         rfc3339_at(now + 3600000, t1, sizeof(t1)));
	ck_assert_int_eq(create(body), TALLY_OK);
	c = campaign_json("future", NULL, NULL);
	ck_assert_str_eq(jstr(c, "status"), "closed");
	json_decref(c);
	ck_assert_int_eq(donate("future", &r, NULL, 0), TALLY_ECLOSED);

	/* Running now. */
	snprintf(body, sizeof(body),
	         "{\"slug\":\"now\",\"name\":\"Now\",\"currency\":\"USD\","
	         "\"starts_at\":\"%s\",\"ends_at\":\"%s\"}",
	         rfc3339_at(now - 3600000, t1, sizeof(t1)),
	         rfc3339_at(now + 3600000, t2, sizeof(t2)));
	ck_assert_int_eq(create(body), TALLY_OK);
	c = campaign_json("now", NULL, NULL);
	ck_assert_str_eq(jstr(c, "status"), "active");
	json_decref(c);
	donate_ok("now", &r, NULL, 0);
}
END_TEST

/* ---- donation lookups and privacy ---- */

START_TEST(donation_lookup)
{
	static const char *const bad[] = {
	    "dn_0",
	    "x",
	    "dn_99999",
	    "",
	    "dn_",
	    "dn_-1",
	    "dn_01",
	    "DN_1",
	    "dn_1x",
	    "dn_ 1",
	    "dn_99999999999999999999999",
	    "1",
	};
	struct donation_req r = make_req(2500, "USD", "Ada", "ada@example.org");
	char ack[512], id[64], token[64], other[64];
	struct buf b = {0};
	json_t *ackj, *d;

	create_ok("spring", "USD");
	donate_ok("spring", &r, ack, sizeof(ack));
	ackj = parse(ack, strlen(ack));
	snprintf(id, sizeof(id), "%s", jstr(ackj, "id"));
	snprintf(token, sizeof(token), "%s", jstr(ackj, "status_token"));
	json_decref(ackj);
	ck_assert_uint_eq(strlen(token), TALLY_STATUS_TOKEN_LEN);
	ck_assert_uint_eq(strspn(token, "0123456789abcdef"), TALLY_STATUS_TOKEN_LEN);
	r = make_req(100, "USD", "Bo", "bo@example.org");
	donate_ok("spring", &r, ack, sizeof(ack));
	ackj = parse(ack, strlen(ack));
	snprintf(other, sizeof(other), "%s", jstr(ackj, "status_token"));
	json_decref(ackj);
	ck_assert_str_ne(token, other);

	ck_assert_int_eq(engine_donation_json(eng, id, token, &b), 0);
	d = parse(b.p, b.len);
	ck_assert_str_eq(jstr(d, "id"), id);
	ck_assert_str_eq(jstr(d, "campaign"), "spring");
	ck_assert_str_eq(jstr(d, "status"), "succeeded");
	ck_assert_int_eq(jint(d, "amount_cents"), 2500);
	ck_assert_str_eq(jstr(d, "currency"), "USD");
	{
		int64_t at;

		ck_assert_int_eq(util_parse_rfc3339(jstr(d, "created_at"), &at), 0);
	}
	ck_assert_ptr_null(strstr(b.p, "ada@example.org"));
	json_decref(d);
	buf_fini(&b);

	for (size_t i = 0; i < UTIL_ARRAY_LEN(bad); i++) {
		ck_assert_msg(engine_donation_json(eng, bad[i], token, &b) == TALLY_ENODONATION,
		              "id \"%s\" found", bad[i]);
		ck_assert_msg(engine_donation_staff_json(eng, bad[i], &b) == TALLY_ENODONATION,
		              "id \"%s\" found by staff", bad[i]);
		ck_assert_uint_eq(b.len, 0);
	}
	/* The right id without its token answers as an unknown id does. */
	{
		char longer[80], shorter[64];
		const char *wrong[] = {NULL, "", other, longer, shorter, "0"};

		snprintf(longer, sizeof(longer), "%sx", token);
		snprintf(shorter, sizeof(shorter), "%.*s", TALLY_STATUS_TOKEN_LEN - 1, token);
		for (size_t i = 0; i < UTIL_ARRAY_LEN(wrong); i++) {
			ck_assert_msg(engine_donation_json(eng, id, wrong[i], &b) ==
			                  TALLY_ENODONATION,
			              "found with token %zu", i);
			ck_assert_uint_eq(b.len, 0);
		}
	}
	/* Staff read it without the token, with the donor's details. */
	ck_assert_int_eq(engine_donation_staff_json(eng, id, &b), 0);
	d = parse(b.p, b.len);
	ck_assert_str_eq(jstr(d, "id"), id);
	ck_assert_str_eq(jstr(d, "status"), "succeeded");
	ck_assert_int_eq(jint(d, "amount_cents"), 2500);
	ck_assert_str_eq(jstr(json_object_get(d, "donor"), "email"), "ada@example.org");
	ck_assert(json_is_true(json_object_get(d, "has_status_token")));
	ck_assert_ptr_null(strstr(b.p, token));
	json_decref(d);
	buf_fini(&b);
}
END_TEST

/* No email in any JSON the engine produces. */
static void assert_no_secrets(const char *text, size_t len)
{
	char *s = strndup(text, len);

	ck_assert_ptr_nonnull(s);
	ck_assert_msg(!strstr(s, "@example.org"), "email leaked: %s", s);
	ck_assert_msg(!strstr(s, "Secret Sam"), "anonymous name leaked: %s", s);
	ck_assert_msg(!strstr(s, "email"), "email key in: %s", s);
	free(s);
}

START_TEST(anonymous_and_hidden)
{
	struct donation_req r;
	char ack[512], id_anon[64], id_hidden[64], tok_anon[64], tok_hidden[64];
	struct buf b = {0};
	uint64_t version;
	json_t *c, *recent, *g, *j;

	create_ok("spring", "USD");
	r = make_req(2500, "USD", "Secret Sam", "sam.secret@example.org");
	r.anonymous = 1;
	snprintf(r.message, sizeof(r.message), "From a friend");
	donate_ok("spring", &r, ack, sizeof(ack));
	assert_no_secrets(ack, strlen(ack));
	j = parse(ack, strlen(ack));
	snprintf(id_anon, sizeof(id_anon), "%s", jstr(j, "id"));
	snprintf(tok_anon, sizeof(tok_anon), "%s", jstr(j, "status_token"));
	json_decref(j);

	r = make_req(7700, "USD", "Quiet Quinn", "quinn@example.org");
	r.hide_amount = 1;
	donate_ok("spring", &r, ack, sizeof(ack));
	j = parse(ack, strlen(ack));
	snprintf(id_hidden, sizeof(id_hidden), "%s", jstr(j, "id"));
	snprintf(tok_hidden, sizeof(tok_hidden), "%s", jstr(j, "status_token"));
	json_decref(j);

	r = make_req(100, "USD", "Open Olga", "olga@example.org");
	donate_ok("spring", &r, NULL, 0);

	c = campaign_json("spring", NULL, NULL);
	ck_assert_int_eq(jint(c, "total_cents"), 2500 + 7700 + 100);
	recent = json_object_get(c, "recent");
	ck_assert_uint_eq(json_array_size(recent), 3);
	g = json_array_get(recent, 2);
	ck_assert_str_eq(jstr(g, "name"), "Anonymous");
	ck_assert_int_eq(jint(g, "amount_cents"), 2500);
	ck_assert_str_eq(jstr(g, "message"), "From a friend");
	g = json_array_get(recent, 1);
	ck_assert_str_eq(jstr(g, "name"), "Quiet Quinn");
	ck_assert_ptr_null(json_object_get(g, "amount_cents"));
	g = json_array_get(recent, 0);
	ck_assert_str_eq(jstr(g, "name"), "Open Olga");
	ck_assert_int_eq(jint(g, "amount_cents"), 100);
	json_decref(c);

	ck_assert_int_eq(engine_campaign_json(eng, "spring", 6, &b, NULL), 0);
	assert_no_secrets(b.p, b.len);
	ck_assert_ptr_null(strstr(b.p, "7700"));
	b.len = 0;
	ck_assert_int_eq(engine_campaign_list_json(eng, 0, 10, &b, &version), 0);
	assert_no_secrets(b.p, b.len);
	b.len = 0;
	ck_assert_int_eq(engine_donation_json(eng, id_anon, tok_anon, &b), 0);
	assert_no_secrets(b.p, b.len);
	b.len = 0;
	ck_assert_int_eq(engine_donation_json(eng, id_hidden, tok_hidden, &b), 0);
	assert_no_secrets(b.p, b.len);
	j = parse(b.p, b.len);
	ck_assert_ptr_null(json_object_get(j, "amount_cents"));
	json_decref(j);
	/* Staff see the hidden amount. */
	b.len = 0;
	ck_assert_int_eq(engine_donation_staff_json(eng, id_hidden, &b), 0);
	j = parse(b.p, b.len);
	ck_assert_int_eq(jint(j, "amount_cents"), 7700);
	ck_assert(json_is_true(json_object_get(j, "hide_amount")));
	json_decref(j);
	buf_fini(&b);
}
END_TEST

/* ---- the list ---- */

START_TEST(list_paging)
{
	static const char *const slugs[] = {"c1", "c2", "c3", "c4", "c5"};
	struct buf b = {0};
	uint64_t v0 = 0, v1 = 0;
	int64_t after = 0;
	int seen = 0, pages = 0;

	for (size_t i = 0; i < UTIL_ARRAY_LEN(slugs); i++)
		create_ok(slugs[i], "USD");

	/* Follow the cursor two at a time. */
	for (;;) {
		json_t *page, *list, *next;

		b.len = 0;
		ck_assert_int_eq(engine_campaign_list_json(eng, after, 2, &b, &v0), 0);
		page = parse(b.p, b.len);
		list = json_object_get(page, "campaigns");
		ck_assert(json_is_array(list));
		ck_assert_uint_le(json_array_size(list), 2);
		for (size_t i = 0; i < json_array_size(list); i++)
			ck_assert_str_eq(jstr(json_array_get(list, i), "slug"), slugs[seen++]);
		pages++;
		next = json_object_get(page, "next");
		if (json_is_null(next)) {
			json_decref(page);
			break;
		}
		ck_assert(json_is_string(next));
		after = strtoll(json_string_value(next), NULL, 10);
		ck_assert_int_gt(after, 0);
		json_decref(page);
		ck_assert_int_lt(pages, 10);
	}
	ck_assert_int_eq(seen, 5);
	ck_assert_int_eq(pages, 3);

	/* Everything on one page: no cursor. */
	b.len = 0;
	ck_assert_int_eq(engine_campaign_list_json(eng, 0, 100, &b, &v0), 0);
	{
		json_t *page = parse(b.p, b.len);

		ck_assert_uint_eq(json_array_size(json_object_get(page, "campaigns")), 5);
		ck_assert(json_is_null(json_object_get(page, "next")));
		json_decref(page);
	}
	/* An exact fit on the last page: no cursor to an empty page. */
	b.len = 0;
	ck_assert_int_eq(engine_campaign_list_json(eng, 0, 5, &b, &v0), 0);
	{
		json_t *page = parse(b.p, b.len);

		ck_assert_uint_eq(json_array_size(json_object_get(page, "campaigns")), 5);
		ck_assert(json_is_null(json_object_get(page, "next")));
		json_decref(page);
	}
	/* Past the end. */
	b.len = 0;
	ck_assert_int_eq(engine_campaign_list_json(eng, 1000, 2, &b, &v0), 0);
	{
		json_t *page = parse(b.p, b.len);

		ck_assert_uint_eq(json_array_size(json_object_get(page, "campaigns")), 0);
		ck_assert(json_is_null(json_object_get(page, "next")));
		json_decref(page);
	}

	/* The version moves when a campaign changes. */
	{
		struct donation_req r = make_req(100, "USD", "Ada", "ada@example.org");

		donate_ok("c3", &r, NULL, 0);
	}
	b.len = 0;
	ck_assert_int_eq(engine_campaign_list_json(eng, 0, 100, &b, &v1), 0);
	ck_assert_uint_ne(v0, v1);
	buf_fini(&b);
}
END_TEST

/* ---- restart ---- */

START_TEST(restart_rebuilds)
{
	static const char *const slugs[] = {"spring", "summer"};
	json_t *before[2], *after[2];
	struct donation_req r;
	char ack[512], last_token[64];
	int64_t last_id;

	create_ok("spring", "USD");
	create_ok("summer", "EUR");
	for (int i = 0; i < 12; i++) {
		char name[32], email[64];

		snprintf(name, sizeof(name), "Donor %d", i);
		snprintf(email, sizeof(email), "donor%d@example.org", i % 4);
		r = make_req(100 + i, "USD", name, email);
		r.anonymous = i == 11;
		r.hide_amount = i == 10;
		snprintf(r.message, sizeof(r.message), "note\n%d \"quoted\"", i);
		donate_ok("spring", &r, NULL, 0);
	}
	r = make_req(999, "EUR", "Eve", "eve@example.org");
	donate_ok("summer", &r, ack, sizeof(ack));
	{
		json_t *j = parse(ack, strlen(ack));

		last_id = strtoll(jstr(j, "id") + 3, NULL, 10);
		snprintf(last_token, sizeof(last_token), "%s", jstr(j, "status_token"));
		json_decref(j);
	}
	ck_assert_int_eq(engine_campaign_action_sync(eng, "summer", "pause", "tester"), TALLY_OK);

	for (int i = 0; i < 2; i++)
		before[i] = campaign_json(slugs[i], NULL, NULL);

	engine_free(eng);
	eng = open_engine();

	for (int i = 0; i < 2; i++) {
		const char *keys[] = {"slug",        "name",           "currency",
		                      "goal_cents",  "total_cents",    "raised_cents",
		                      "donor_count", "donation_count", "status",
		                      "starts_at",   "ends_at"};

		after[i] = campaign_json(slugs[i], NULL, NULL);
		for (size_t k = 0; k < UTIL_ARRAY_LEN(keys); k++)
			ck_assert_msg(json_equal(json_object_get(before[i], keys[k]),
			                         json_object_get(after[i], keys[k])),
			              "%s.%s differs after restart", slugs[i], keys[k]);
		ck_assert_msg(json_equal(json_object_get(before[i], "recent"),
		                         json_object_get(after[i], "recent")),
		              "%s.recent differs after restart", slugs[i]);
	}
	ck_assert_int_eq(jint(after[0], "donor_count"), 4);
	ck_assert_int_eq(jint(after[0], "donation_count"), 12);
	ck_assert_uint_eq(json_array_size(json_object_get(after[0], "recent")), 10);
	ck_assert_str_eq(jstr(json_array_get(json_object_get(after[0], "recent"), 0), "name"),
	                 "Anonymous");
	ck_assert_str_eq(jstr(after[1], "status"), "paused");
	for (int i = 0; i < 2; i++) {
		json_decref(before[i]);
		json_decref(after[i]);
	}

	/* Ids continue after the largest stored one; old ids still resolve,
	 * with their status tokens. */
	{
		struct buf b = {0};
		char id[32];
		json_t *j;

		r = make_req(100, "USD", "New", "new@example.org");
		donate_ok("spring", &r, ack, sizeof(ack));
		j = parse(ack, strlen(ack));
		ck_assert_int_eq(strtoll(jstr(j, "id") + 3, NULL, 10), last_id + 1);
		json_decref(j);
		snprintf(id, sizeof(id), "dn_%lld", (long long)last_id);
		ck_assert_int_eq(engine_donation_json(eng, id, last_token, &b), 0);
		ck_assert_ptr_nonnull(strstr(b.p, "\"campaign\":\"summer\""));
		buf_fini(&b);
	}
	/* A status survives too: the paused campaign still refuses. */
	r = make_req(100, "EUR", "Eve", "eve@example.org");
	ck_assert_int_eq(donate("summer", &r, NULL, 0), TALLY_EPAUSED);
}
END_TEST

/* The comment in load_campaign_cb: "the stored seq already names this
 * state" - a restart must not move seq (live clients resume with "since"
 * and the campaign ETag embeds it). */
START_TEST(restart_keeps_seq)
{
	struct donation_req r = make_req(2500, "USD", "Ada", "ada@example.org");
	uint64_t before = 0, after = 0;
	char *raw_before, *raw_after;

	create_ok("spring", "USD");
	donate_ok("spring", &r, NULL, 0);
	json_decref(campaign_json("spring", &before, &raw_before));
	engine_free(eng);
	eng = open_engine();
	json_decref(campaign_json("spring", &after, &raw_after));
	ck_assert_msg(after == before, "seq %llu before restart, %llu after",
	              (unsigned long long)before, (unsigned long long)after);
	ck_assert_str_eq(raw_after, raw_before);
	free(raw_before);
	free(raw_after);
}
END_TEST

/* ---- since when a campaign is paused; its last hour ---- */

/* Run one SQL statement on the database while no engine has it open. */
static void db_exec(const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;

	ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK, "%s: %s", sql,
	              msg ? msg : "?");
	ck_assert_int_gt(sqlite3_changes(db), 0);
	ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}

/* paused_since is the time of the pause that paused the campaign: a
 * repeated pause keeps it, a resume clears it, a close ends it, and a
 * restart reads it back from the audit, so a pause two hours old is
 * still two hours old after one. */
START_TEST(paused_since_pause_resume_restart)
{
	int64_t t0 = util_now_ms(), first, since;

	create_ok("spring", "USD");
	create_ok("summer", "USD");
	ck_assert_int_eq(info_of("spring").c.paused_since, 0);
	ck_assert_int_eq(engine_campaign_action_sync(eng, "spring", "pause", "tester"), TALLY_OK);
	first = info_of("spring").c.paused_since;
	ck_assert(first >= t0 && first <= util_now_ms());
	ck_assert_int_eq(info_of("spring").effective, CAMPAIGN_PAUSED);
	ck_assert_int_eq(info_of("summer").c.paused_since, 0);
	/* a repeated pause is not a new one */
	ck_assert_int_eq(engine_campaign_action_sync(eng, "spring", "pause", "tester"), TALLY_OK);
	ck_assert_int_eq(info_of("spring").c.paused_since, first);
	ck_assert_int_eq(engine_campaign_action_sync(eng, "spring", "resume", "tester"), TALLY_OK);
	ck_assert_int_eq(info_of("spring").c.paused_since, 0);
	ck_assert_int_eq(engine_campaign_action_sync(eng, "spring", "pause", "tester"), TALLY_OK);
	since = info_of("spring").c.paused_since;
	ck_assert(since >= first && since <= util_now_ms());
	ck_assert_int_eq(engine_campaign_action_sync(eng, "spring", "pause", "tester"), TALLY_OK);
	/* summer was paused and resumed: not paused after the restart */
	ck_assert_int_eq(engine_campaign_action_sync(eng, "summer", "pause", "tester"), TALLY_OK);
	ck_assert_int_eq(engine_campaign_action_sync(eng, "summer", "resume", "tester"), TALLY_OK);

	engine_free(eng);
	eng = open_engine();
	ck_assert_int_eq(info_of("spring").c.paused_since, since);
	ck_assert_int_eq(info_of("spring").effective, CAMPAIGN_PAUSED);
	ck_assert_int_eq(info_of("summer").c.paused_since, 0);

	/* Two hours ago, as the audit says: still two hours after a restart. */
	engine_free(eng);
	eng = NULL;
	db_exec("UPDATE audit SET at = at - 7200000 WHERE target = 'spring'");
	eng = open_engine();
	ck_assert_int_eq(info_of("spring").c.paused_since, since - 7200000);
	engine_free(eng);
	eng = open_engine();
	ck_assert_int_eq(info_of("spring").c.paused_since, since - 7200000);

	/* closed, it is no longer paused */
	ck_assert_int_eq(engine_campaign_action_sync(eng, "spring", "close", "tester"), TALLY_OK);
	ck_assert_int_eq(info_of("spring").c.paused_since, 0);
	engine_free(eng);
	eng = open_engine();
	ck_assert_int_eq(info_of("spring").c.paused_since, 0);
	ck_assert_int_eq(info_of("spring").effective, CAMPAIGN_CLOSED);
}
END_TEST

/* A campaign paused with no audit row (a database changed by hand) has
 * been paused as far as tally knows since it started: never 0. */
START_TEST(paused_since_without_audit_counts_from_start)
{
	int64_t t0;

	create_ok("spring", "USD");
	engine_free(eng);
	eng = NULL;
	db_exec("UPDATE campaigns SET status = 'paused' WHERE slug = 'spring'");
	t0 = util_now_ms();
	eng = open_engine();
	ck_assert_int_eq(info_of("spring").effective, CAMPAIGN_PAUSED);
	ck_assert(info_of("spring").c.paused_since >= t0);
	ck_assert(info_of("spring").c.paused_since <= util_now_ms());
}
END_TEST

/* The last hour's gifts and amount: succeeded gifts only, per campaign,
 * from memory. */
START_TEST(hour_counts_succeeded_gifts)
{
	struct donation_req r;

	create_ok("spring", "USD");
	create_ok("summer", "USD");
	ck_assert_int_eq(info_of("spring").hour_gifts, 0);
	ck_assert_int_eq(info_of("spring").hour_cents, 0);
	for (int i = 0; i < 3; i++) {
		r = make_req(1000 + i, "USD", "Ada", "ada@example.org");
		donate_ok("spring", &r, NULL, 0);
	}
	r = make_req(700, "USD", "Eve", "eve@example.org");
	memcpy(r.payment_token, "tok_chargeDeclined", 19);
	donate_ok("spring", &r, NULL, 0); /* recorded, then declined */
	r = make_req(500, "USD", "Bo", "bo@example.org");
	donate_ok("summer", &r, NULL, 0);
	ck_assert_int_eq(info_of("spring").hour_gifts, 3);
	ck_assert_int_eq(info_of("spring").hour_cents, 3003);
	ck_assert_int_eq(info_of("summer").hour_gifts, 1);
	ck_assert_int_eq(info_of("summer").hour_cents, 500);
}
END_TEST

/* The minute ring itself (base/hour.c), on a clock of the test's own. */
START_TEST(hour_window_slides_by_the_minute)
{
	struct hour_window h;
	const int64_t t0 = INT64_C(1800000000000); /* a minute's start */
	int64_t gifts, cents;

	memset(&h, 0, sizeof(h));
	hour_sum(&h, t0, &gifts, &cents);
	ck_assert_int_eq(gifts, 0);
	ck_assert_int_eq(cents, 0);
	hour_add(&h, t0, 100);
	hour_add(&h, t0 + 59999, 200);
	hour_add(&h, t0 + 60000, 400); /* the next minute */
	hour_sum(&h, t0 + 60000, &gifts, &cents);
	ck_assert_int_eq(gifts, 3);
	ck_assert_int_eq(cents, 700);
	/* t0's minute is the oldest of the hour until 59 minutes later ... */
	hour_sum(&h, t0 + 59 * 60000 + 59999, &gifts, &cents);
	ck_assert_int_eq(gifts, 3);
	ck_assert_int_eq(cents, 700);
	/* ... then it leaves, the next one a minute after */
	hour_sum(&h, t0 + 60 * 60000, &gifts, &cents);
	ck_assert_int_eq(gifts, 1);
	ck_assert_int_eq(cents, 400);
	hour_sum(&h, t0 + 61 * 60000, &gifts, &cents);
	ck_assert_int_eq(gifts, 0);
	ck_assert_int_eq(cents, 0);
	/* a gift late in the hour shifts the ring: t0's minute falls out */
	hour_add(&h, t0 + 60 * 60000, 800);
	hour_sum(&h, t0 + 60 * 60000, &gifts, &cents);
	ck_assert_int_eq(gifts, 2);
	ck_assert_int_eq(cents, 1200);
	/* an older time counts in its own minute while that is in the hour */
	hour_add(&h, t0 + 30 * 60000, 16);
	hour_add(&h, t0 - 60000, 32); /* out of the hour: not counted */
	hour_sum(&h, t0 + 60 * 60000, &gifts, &cents);
	ck_assert_int_eq(gifts, 3);
	ck_assert_int_eq(cents, 1216);
	/* after two silent hours a gift starts the ring over */
	hour_add(&h, t0 + 180 * 60000, 5);
	hour_sum(&h, t0 + 180 * 60000, &gifts, &cents);
	ck_assert_int_eq(gifts, 1);
	ck_assert_int_eq(cents, 5);
	/* asked about a time before the newest minute (the clock stepped
	 * back): the minutes after it are not counted */
	hour_sum(&h, t0 + 179 * 60000, &gifts, &cents);
	ck_assert_int_eq(gifts, 0);
	ck_assert_int_eq(cents, 0);
}
END_TEST

/* ---- listeners ---- */

struct heard {
	pthread_mutex_t lock;
	int changed;
	int64_t changed_id;
	uint64_t changed_seq;
	int donations;
	int64_t donation_campaign;
	char last_donation[1024];
};

static void on_changed(void *ctx, int64_t id, uint64_t seq)
{
	struct heard *h = ctx;

	pthread_mutex_lock(&h->lock);
	h->changed++;
	h->changed_id = id;
	h->changed_seq = seq;
	pthread_mutex_unlock(&h->lock);
}

static void on_donation(void *ctx, int64_t id, const char *type, const char *json, size_t len)
{
	ck_assert_str_eq(type, "donation");
	struct heard *h = ctx;

	pthread_mutex_lock(&h->lock);
	h->donations++;
	h->donation_campaign = id;
	snprintf(h->last_donation, sizeof(h->last_donation), "%.*s", (int)len, json);
	pthread_mutex_unlock(&h->lock);
}

START_TEST(listeners)
{
	struct heard h;
	struct engine_listener l = {on_changed, on_donation, NULL, &h};
	struct engine_listener nop = {NULL, NULL, NULL, NULL};
	struct donation_req r;
	uint64_t seq = 0;
	int64_t id;
	json_t *d;

	memset(&h, 0, sizeof(h));
	pthread_mutex_init(&h.lock, NULL);
	ck_assert_int_eq(engine_add_listener(eng, &l), 0);
	for (int i = 1; i < 8; i++)
		ck_assert_int_eq(engine_add_listener(eng, &nop), 0);
	ck_assert_int_eq(engine_add_listener(eng, &nop), -ENOSPC);

	create_ok("spring", "USD");
	id = engine_campaign_id(eng, "spring", 6);
	pthread_mutex_lock(&h.lock);
	ck_assert_int_eq(h.changed, 1);
	ck_assert_int_eq(h.changed_id, id);
	ck_assert_int_eq(h.donations, 0);
	pthread_mutex_unlock(&h.lock);

	r = make_req(2500, "USD", "Ada", "ada@example.org");
	snprintf(r.message, sizeof(r.message), "Go <team>!");
	donate_ok("spring", &r, NULL, 0);
	json_decref(campaign_json("spring", &seq, NULL));
	pthread_mutex_lock(&h.lock);
	ck_assert_int_eq(h.changed, 3); /* pending, then captured */
	ck_assert_int_eq(h.changed_seq, seq);
	ck_assert_int_eq(h.donations, 1);
	ck_assert_int_eq(h.donation_campaign, id);
	d = parse(h.last_donation, strlen(h.last_donation));
	pthread_mutex_unlock(&h.lock);
	ck_assert_str_eq(jstr(d, "name"), "Ada");
	ck_assert_int_eq(jint(d, "amount_cents"), 2500);
	ck_assert_str_eq(jstr(d, "message"), "Go <team>!");
	{
		int64_t at;

		ck_assert_int_eq(util_parse_rfc3339(jstr(d, "at"), &at), 0);
	}
	ck_assert_ptr_null(json_object_get(d, "email"));
	json_decref(d);
	pthread_mutex_lock(&h.lock);
	assert_no_secrets(h.last_donation, strlen(h.last_donation));
	pthread_mutex_unlock(&h.lock);

	r = make_req(4200, "USD", "Secret Sam", "sam@example.org");
	r.anonymous = 1;
	r.hide_amount = 1;
	donate_ok("spring", &r, NULL, 0);
	pthread_mutex_lock(&h.lock);
	ck_assert_int_eq(h.donations, 2);
	assert_no_secrets(h.last_donation, strlen(h.last_donation));
	d = parse(h.last_donation, strlen(h.last_donation));
	pthread_mutex_unlock(&h.lock);
	ck_assert_str_eq(jstr(d, "name"), "Anonymous");
	ck_assert_ptr_null(json_object_get(d, "amount_cents"));
	json_decref(d);

	/* A staff action is a change too. */
	ck_assert_int_eq(engine_campaign_action_sync(eng, "spring", "pause", "tester"), TALLY_OK);
	pthread_mutex_lock(&h.lock);
	ck_assert_int_eq(h.changed, 6);
	ck_assert_int_eq(h.donations, 2);
	pthread_mutex_unlock(&h.lock);
	pthread_mutex_destroy(&h.lock);
}
END_TEST

/* ---- publishing: a body never disagrees with its seq ---- */

#define RACE_GIFTS 150 /* per giving thread */
#define RACE_SEQS 4096

struct race {
	pthread_mutex_t lock;
	int64_t total_at[RACE_SEQS]; /* seq -> total_cents seen with it; -1 = none */
	int giving;                  /* giving threads still running */
	int bad;                     /* a body disagreed with its seq */
	char why[200];
	int64_t reads;
};

static void race_bad(struct race *r, const char *fmt, unsigned long long a, long long b)
{
	pthread_mutex_lock(&r->lock);
	if (!r->bad++)
		snprintf(r->why, sizeof(r->why), fmt, a, b);
	pthread_mutex_unlock(&r->lock);
}

/* Check one body against its seq: the seq in the body is the one handed
 * out, and every read of that seq saw the same total. */
static void race_check(struct race *r, const char *body, size_t len, uint64_t seq)
{
	json_t *c = json_loadb(body, len, 0, NULL);
	int64_t total = c ? json_integer_value(json_object_get(c, "total_cents")) : -1;
	uint64_t body_seq = c ? (uint64_t)json_integer_value(json_object_get(c, "seq")) : 0;

	json_decref(c);
	if (body_seq != seq) {
		race_bad(r, "seq %llu handed out with a body of seq %lld", (unsigned long long)seq,
		         (long long)body_seq);
		return;
	}
	if (seq >= RACE_SEQS)
		return;
	pthread_mutex_lock(&r->lock);
	if (r->total_at[seq] < 0)
		r->total_at[seq] = total;
	else if (r->total_at[seq] != total && !r->bad++)
		snprintf(r->why, sizeof(r->why), "seq %llu named totals %lld and %lld",
		         (unsigned long long)seq, (long long)r->total_at[seq], (long long)total);
	r->reads++;
	pthread_mutex_unlock(&r->lock);
}

static void *race_reader(void *arg)
{
	struct race *r = arg;
	struct buf b = {0};

	for (;;) {
		uint64_t seq = 0;
		int giving;

		pthread_mutex_lock(&r->lock);
		giving = r->giving;
		pthread_mutex_unlock(&r->lock);
		b.len = 0;
		if (engine_campaign_json(eng, "spring", 6, &b, &seq) == 0)
			race_check(r, b.p, b.len, seq);
		if (!giving)
			break;
	}
	buf_fini(&b);
	return NULL;
}

static void *race_giver(void *arg)
{
	struct race *r = arg;

	for (int i = 0; i < RACE_GIFTS; i++) {
		struct donation_req req = make_req(100, "USD", "Racer", "racer@example.org");
		struct waiter w;
		int rc, mine; /* this thread's out-parameter */

		memset(&w, 0, sizeof(w));
		pthread_mutex_init(&w.lock, NULL);
		pthread_cond_init(&w.cond, NULL);
		rc = engine_donate(eng, "spring", &req, NULL, NULL, &mine, waiter_done, &w);
		if (rc == 0) {
			pthread_mutex_lock(&w.lock);
			while (!w.done)
				pthread_cond_wait(&w.cond, &w.lock);
			pthread_mutex_unlock(&w.lock);
			rc = w.rc;
		}
		pthread_cond_destroy(&w.cond);
		pthread_mutex_destroy(&w.lock);
		if (rc)
			race_bad(r, "donation %llu refused: %lld", (unsigned long long)i, rc);
	}
	pthread_mutex_lock(&r->lock);
	r->giving--;
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* A listener told of a change reads the campaign at once: it must see the
 * body of that change (the live channels skip seqs they have seen). */
static void race_changed(void *ctx, int64_t campaign_id, uint64_t seq)
{
	struct race *r = ctx;
	struct buf b = {0};
	uint64_t now = 0;

	if (engine_campaign_json_by_id(eng, campaign_id, &b, &now) == 0) {
		if (now != seq)
			race_bad(r, "told of seq %llu, read seq %lld", (unsigned long long)seq,
			         (long long)now);
		race_check(r, b.p, b.len, now);
	}
	buf_fini(&b);
}

/* Three threads give while three read the campaign and a listener reads it
 * on every change: an ETag (the seq) never names two bodies, and the last
 * body holds every gift. */
START_TEST(seq_and_body_agree)
{
	static struct race r;
	struct engine_listener l = {race_changed, NULL, NULL, &r};
	pthread_t readers[3], givers[3];
	json_t *c;

	memset(&r, 0, sizeof(r));
	pthread_mutex_init(&r.lock, NULL);
	for (int i = 0; i < RACE_SEQS; i++)
		r.total_at[i] = -1;
	r.giving = 3;
	create_ok("spring", "USD");
	ck_assert_int_eq(engine_add_listener(eng, &l), 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(pthread_create(&readers[i], NULL, race_reader, &r), 0);
		ck_assert_int_eq(pthread_create(&givers[i], NULL, race_giver, &r), 0);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(givers[i], NULL);
		pthread_join(readers[i], NULL);
	}
	settle_queue(JOB_PAYMENTS);
	ck_assert_msg(!r.bad, "%d disagreements; first: %s", r.bad, r.why);
	ck_assert_int_gt(r.reads, 0);
	c = campaign_json("spring", NULL, NULL);
	ck_assert_int_eq(jint(c, "total_cents"), 3 * RACE_GIFTS * 100);
	ck_assert_int_eq(jint(c, "donation_count"), 3 * RACE_GIFTS);
	json_decref(c);
	engine_free(eng); /* before r's lock goes: the listener may still run */
	eng = NULL;
	pthread_mutex_destroy(&r.lock);
}
END_TEST

/* engine_sync returns once everything submitted before it was answered. */
START_TEST(sync_is_a_barrier)
{
	struct donation_req req = make_req(100, "USD", "Ada", "ada@example.org");
	struct waiter w[20];

	create_ok("spring", "USD");
	for (int i = 0; i < 20; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		pthread_mutex_init(&w[i].lock, NULL);
		pthread_cond_init(&w[i].cond, NULL);
		ck_assert_int_eq(
		    engine_donate(eng, "spring", &req, NULL, NULL, &replayed, waiter_done, &w[i]),
		    0);
	}
	ck_assert_int_eq(engine_sync(eng), 0);
	for (int i = 0; i < 20; i++) {
		pthread_mutex_lock(&w[i].lock);
		ck_assert_msg(w[i].done, "donation %d not answered before the barrier", i);
		ck_assert_int_eq(w[i].rc, 0);
		pthread_mutex_unlock(&w[i].lock);
		pthread_cond_destroy(&w[i].cond);
		pthread_mutex_destroy(&w[i].lock);
	}
}
END_TEST

/* ---- recent idempotency keys (core/idem.c) ---- */

#define OLD_BUCKET_MASK ((UINT64_C(1) << 18) - 1) /* the unseeded table's */
#define FLOOD_STAGES 11                           /* 2^11 keys */

static const char key_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void key_block(uint32_t n, char *b)
{
	for (int i = 0; i < 4; i++)
		b[i] = key_alphabet[(n >> (6 * i)) & 63];
}

/* Keys that all land in one bucket of a table indexed by the low 18 bits
 * of unseeded FNV-1a, built as an attacker would: those bits of the state
 * depend only on the same bits before, so two 4-byte blocks that meet from
 * one state (a birthday search, ~600 tries) make a stage, and any choice
 * of one block per stage gives a key of the same bucket: 2^stages keys.
 * keys holds 2^stages strings of 4 x stages + 1 bytes. */
static void fnv_flood_keys(int stages, char (*keys)[4 * FLOOD_STAGES + 1])
{
	static uint32_t seen[OLD_BUCKET_MASK + 1];
	char blocks[FLOOD_STAGES][2][4];
	uint64_t h = util_hash("", 0);

	for (int s = 0; s < stages; s++) {
		uint32_t n;

		memset(seen, 0, sizeof(seen));
		for (n = 0; n < (UINT32_C(1) << 24); n++) {
			char b[4];
			uint64_t x;

			key_block(n, b);
			x = util_hash_add(h, b, 4) & OLD_BUCKET_MASK;
			if (seen[x]) {
				key_block(seen[x] - 1, blocks[s][0]);
				memcpy(blocks[s][1], b, 4);
				h = util_hash_add(h, b, 4);
				break;
			}
			seen[x] = n + 1;
		}
		ck_assert_uint_lt(n, UINT32_C(1) << 24);
	}
	for (size_t k = 0; k < ((size_t)1 << stages); k++) {
		for (int s = 0; s < stages; s++)
			memcpy(keys[k] + 4 * s, blocks[s][(k >> s) & 1], 4);
		keys[k][4 * stages] = '\0';
	}
}

/* Keys that share a bucket of a table of cap entries under seed: the table
 * has the smallest power of two >= 16 and >= cap + cap/4 buckets. */
static void same_bucket_keys(const struct util_hash_key *seed, size_t cap, int n, char (*keys)[24])
{
	size_t buckets = 16;
	uint64_t want = 0;
	int found = 0;

	while (buckets < cap + cap / 4)
		buckets *= 2;
	for (uint32_t i = 0; found < n && i < 100000000; i++) {
		char k[24];
		uint64_t b;

		snprintf(k, sizeof(k), "key-%u", (unsigned)i);
		b = util_hash_keyed(seed, k, strlen(k)) & (buckets - 1);
		if (!found)
			want = b;
		if (b == want)
			memcpy(keys[found++], k, sizeof(k));
	}
	ck_assert_int_eq(found, n);
}

static enum idem_result idem_try(struct idem_table *t, const char *key, uint64_t fp, int want_rc)
{
	struct buf replay = {0};
	enum idem_result r = IDEM_NEW;
	int rc = idem_begin(t, key, fp, 1000, &replay, &r);

	ck_assert_msg(rc == want_rc, "%s: idem_begin %d, expected %d", key, rc, want_rc);
	if (!rc && r == IDEM_REPLAY)
		ck_assert_int_eq(replay.len, 2);
	buf_fini(&replay);
	return r;
}

/* Keys built to collide in the unseeded FNV table of before spread over
 * the keyed table like any keys: no long chain, every key answers. */
START_TEST(idem_fnv_flood_spreads)
{
	static char keys[1 << FLOOD_STAGES][4 * FLOOD_STAGES + 1];
	size_t n = (size_t)1 << FLOOD_STAGES;
	uint64_t old_bucket;
	struct idem_table *t;

	fnv_flood_keys(FLOOD_STAGES, keys);
	old_bucket = util_hash(keys[0], strlen(keys[0])) & OLD_BUCKET_MASK;
	for (size_t k = 0; k < n; k++) {
		ck_assert_uint_eq(util_hash(keys[k], strlen(keys[k])) & OLD_BUCKET_MASK,
		                  old_bucket);
		ck_assert(k == 0 || strcmp(keys[k], keys[k - 1]));
	}
	ck_assert_int_eq(idem_new(200000, 60000, &t), 0);
	for (size_t k = 0; k < n; k++) {
		ck_assert_int_eq(idem_try(t, keys[k], 7, 0), IDEM_NEW);
		idem_finish(t, keys[k], 7, "{}", 2);
	}
	ck_assert_uint_eq(idem_count(t), n);
	/* 2,048 keys in 262,144 buckets: a chain of 5 happens once in about
	 * ten million runs; the unseeded table had one chain of 2,048. */
	ck_assert_uint_le(idem_longest_chain(t), 4);
	for (size_t k = 0; k < n; k++)
		ck_assert_int_eq(idem_try(t, keys[k], 7, 0), IDEM_REPLAY);
	idem_free(t);
}
END_TEST

/* A bucket never holds more than IDEM_CHAIN_MAX entries: past it, the
 * oldest finished entry makes room, and with none finished the new key is
 * refused (-EAGAIN: 503 overloaded to the client). Lookups in a full chain
 * still answer. */
START_TEST(idem_chain_is_bounded)
{
	const struct util_hash_key seed = {UINT64_C(0x0123456789abcdef), UINT64_C(42)};
	char keys[IDEM_CHAIN_MAX + 1][24];
	struct idem_table *t;

	same_bucket_keys(&seed, 1000, IDEM_CHAIN_MAX + 1, keys);
	ck_assert_int_eq(idem_new_seeded(1000, 60000, &seed, &t), 0);
	for (int k = 0; k < IDEM_CHAIN_MAX; k++)
		ck_assert_int_eq(idem_try(t, keys[k], 1, 0), IDEM_NEW);
	ck_assert_uint_eq(idem_longest_chain(t), IDEM_CHAIN_MAX); /* one bucket indeed */
	/* All in flight: nothing can go, the newcomer is refused. */
	idem_try(t, keys[IDEM_CHAIN_MAX], 1, -EAGAIN);
	ck_assert_uint_eq(idem_count(t), IDEM_CHAIN_MAX);
	ck_assert_int_eq(idem_try(t, keys[3], 1, 0), IDEM_IN_FLIGHT);
	ck_assert_int_eq(idem_try(t, keys[3], 2, 0), IDEM_REUSED);

	/* Two finish; the newcomer evicts the older of them (keys[2]). */
	idem_finish(t, keys[2], 1, "{}", 2);
	idem_finish(t, keys[5], 1, "{}", 2);
	ck_assert_int_eq(idem_try(t, keys[IDEM_CHAIN_MAX], 1, 0), IDEM_NEW);
	ck_assert_uint_eq(idem_longest_chain(t), IDEM_CHAIN_MAX);
	ck_assert_int_eq(idem_try(t, keys[5], 1, 0), IDEM_REPLAY);
	/* keys[2] was forgotten (the database answers it now): new again,
	 * evicting keys[5], the last finished one. */
	ck_assert_int_eq(idem_try(t, keys[2], 1, 0), IDEM_NEW);
	idem_try(t, keys[5], 1, -EAGAIN);
	ck_assert_uint_eq(idem_longest_chain(t), IDEM_CHAIN_MAX);
	ck_assert_uint_eq(idem_count(t), IDEM_CHAIN_MAX);
	idem_free(t);

	/* Under another (random) secret the same keys scatter. */
	ck_assert_int_eq(idem_new(1000, 60000, &t), 0);
	for (int k = 0; k <= IDEM_CHAIN_MAX; k++)
		ck_assert_int_eq(idem_try(t, keys[k], 1, 0), IDEM_NEW);
	ck_assert_uint_le(idem_longest_chain(t), 3);
	idem_free(t);
}
END_TEST

/* ---- money bounds: no sum can overflow ---- */

static void count_ok(void *ud, const struct engine_answer *a)
{
	if (!a->rc)
		atomic_fetch_add((atomic_int *)ud, 1);
}

/* A campaign holds at most TALLY_TOTAL_MAX of gifts, counting those still
 * on their way to the database: the gift that would pass it is refused
 * (TALLY_ETOTAL) and nothing of it is stored. */
START_TEST(campaign_total_is_bounded)
{
	struct donation_req big = make_req(TALLY_AMOUNT_MAX, "USD", "Ada", "ada@example.org");
	struct donation_req small = make_req(100, "USD", "Bob", "bob@example.org");
	int n = (int)(TALLY_TOTAL_MAX / TALLY_AMOUNT_MAX);
	atomic_int ok = 0;
	struct buf b = {0};
	json_t *c;

	engine_free(eng);
	eng = open_engine_with(65536, 1); /* captures wait: every gift stays pending */
	create_ok("big", "USD");
	create_ok("other", "USD");
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(
		    engine_donate(eng, "big", &big, NULL, NULL, &replayed, count_ok, &ok),
		    TALLY_OK);
	/* Still in flight, not yet published: counted all the same. */
	ck_assert_int_eq(engine_donate(eng, "big", &small, NULL, NULL, &replayed, count_ok, &ok),
	                 TALLY_ETOTAL);
	ck_assert_int_eq(engine_sync(eng), TALLY_OK);
	ck_assert_int_eq(atomic_load(&ok), n);
	c = campaign_json("big", NULL, NULL);
	ck_assert_int_eq(jint(c, "pending_cents"), TALLY_TOTAL_MAX);
	json_decref(c);
	/* Published now: still full, to the last cent. */
	ck_assert_int_eq(engine_donate(eng, "big", &small, NULL, NULL, &replayed, count_ok, &ok),
	                 TALLY_ETOTAL);
	small.amount_cents = 1;
	ck_assert_int_eq(engine_donate(eng, "big", &small, NULL, NULL, &replayed, count_ok, &ok),
	                 TALLY_ETOTAL);
	ck_assert_int_eq(engine_sync(eng), TALLY_OK);
	ck_assert_int_eq(atomic_load(&ok), n);
	c = campaign_json("big", NULL, NULL);
	ck_assert_int_eq(jint(c, "pending_cents"), TALLY_TOTAL_MAX);
	json_decref(c);
	{
		char id[32];

		snprintf(id, sizeof(id), "dn_%d", n + 1);
		ck_assert_int_eq(engine_donation_staff_json(eng, id, &b), TALLY_ENODONATION);
	}
	/* Other campaigns are not affected. */
	ck_assert_int_eq(engine_donate(eng, "other", &small, NULL, NULL, &replayed, count_ok, &ok),
	                 TALLY_OK);
	ck_assert_int_eq(engine_sync(eng), TALLY_OK);
	ck_assert_int_eq(atomic_load(&ok), n + 1);
	buf_fini(&b);
}
END_TEST

static void set_raised(const char *slug, int64_t raised)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
	ck_assert_int_eq(
	    sqlite3_prepare_v2(db, "UPDATE campaigns SET raised_cents = ?1 WHERE slug = ?2", -1,
	                       &st, NULL),
	    SQLITE_OK);
	ck_assert_int_eq(sqlite3_bind_int64(st, 1, raised), SQLITE_OK);
	ck_assert_int_eq(sqlite3_bind_text(st, 2, slug, -1, SQLITE_STATIC), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
	ck_assert_int_eq(sqlite3_changes(db), 1);
	ck_assert_int_eq(sqlite3_finalize(st), SQLITE_OK);
	ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}

/* Totals near INT64_MAX (a database edited by hand): every sum that would
 * pass it is refused, none wraps - a gift to the campaign, its capture's
 * effect on the total, the giving day's total. */
START_TEST(sums_near_int64_max_never_wrap)
{
	const int64_t near = INT64_MAX - 50;
	struct donation_req r = make_req(100, "USD", "Ada", "ada@example.org");
	uint64_t seq;
	struct buf b = {0};
	json_t *c;

	char log_path[700];
	FILE *f;
	char line[1024];
	int logged = 0;

	/* A gift of 100 pending in "a" while the totals are set. */
	engine_free(eng);
	snprintf(log_path, sizeof(log_path), "%s/tally.log", tmp_dir);
	ck_assert_int_eq(log_open(log_path), 0); /* no thread runs now */
	eng = open_engine_with(65536, 1);
	create_ok("a", "USD");
	create_ok("b", "USD");
	ck_assert_int_eq(engine_donate(eng, "a", &r, NULL, NULL, &replayed, NULL, NULL), TALLY_OK);
	ck_assert_int_eq(engine_sync(eng), TALLY_OK);
	engine_free(eng);
	set_raised("a", near);
	set_raised("b", near);
	eng = open_engine();

	/* The capture moves 100 from pending to raised: raised would pass
	 * INT64_MAX, so it stays as it was (and the error is logged). */
	settle_queue(JOB_PAYMENTS);
	c = campaign_json("a", NULL, NULL);
	ck_assert_int_eq(jint(c, "raised_cents"), near);
	ck_assert_int_eq(jint(c, "pending_cents"), 0);
	ck_assert_int_eq(jint(c, "donation_count"), 1);
	json_decref(c);
	f = fopen(log_path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		logged |= strstr(line, "\"engine.total_overflow\"") && strstr(line, "campaign a");
	fclose(f);
	ck_assert_msg(logged, "no engine.total_overflow in %s", log_path);

	/* New gifts: refused, nothing stored. */
	ck_assert_int_eq(engine_donate(eng, "a", &r, NULL, NULL, &replayed, NULL, NULL),
	                 TALLY_ETOTAL);
	ck_assert_int_eq(engine_donate(eng, "b", &r, NULL, NULL, &replayed, NULL, NULL),
	                 TALLY_ETOTAL);
	ck_assert_int_eq(engine_donation_staff_json(eng, "dn_2", &b), TALLY_ENODONATION);

	/* The day's total of two such campaigns: refused, not wrapped. */
	b.len = 0;
	ck_assert_int_eq(engine_day_json(eng, &b, &seq), -EOVERFLOW);
	ck_assert_uint_eq(b.len, 0);
	buf_fini(&b);
}
END_TEST

Suite *engine_suite(void)
{
	Suite *s = suite_create("engine");
	TCase *tc = tcase_create("engine");

	tcase_add_unchecked_fixture(tc, tests_root_setup, tests_root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, create_and_read);
	tcase_add_test(tc, duplicate_create);
	tcase_add_test(tc, donate_totals);
	tcase_add_test(tc, donate_recent_is_bounded);
	tcase_add_test(tc, donate_refused);
	tcase_add_test(tc, donate_overloaded);
	tcase_add_test(tc, pause_resume_close);
	tcase_add_test(tc, pause_keeps_settings);
	tcase_add_test(tc, redundant_action);
	tcase_add_test(tc, schedule_closes);
	tcase_add_test(tc, donation_lookup);
	tcase_add_test(tc, anonymous_and_hidden);
	tcase_add_test(tc, list_paging);
	tcase_add_test(tc, restart_rebuilds);
	tcase_add_test(tc, restart_keeps_seq);
	tcase_add_test(tc, listeners);
	tcase_add_test(tc, seq_and_body_agree);
	tcase_add_test(tc, sync_is_a_barrier);
	tcase_add_test(tc, campaign_total_is_bounded);
	tcase_add_test(tc, sums_near_int64_max_never_wrap);
	tcase_add_test(tc, paused_since_pause_resume_restart);
	tcase_add_test(tc, paused_since_without_audit_counts_from_start);
	tcase_add_test(tc, hour_counts_succeeded_gifts);
	tcase_add_test(tc, hour_window_slides_by_the_minute);
	suite_add_tcase(s, tc);

	tc = tcase_create("idem");
	tcase_add_test(tc, idem_fnv_flood_spreads);
	tcase_add_test(tc, idem_chain_is_bounded);
	suite_add_tcase(s, tc);
	return s;
}
