/* tests/test_live.c - the /live websocket of the real binary: snapshot on
 * subscribe, a donation event and an update after a gift, status changes,
 * and bad messages answered with errors. */
#include "tests/itest.h"
#include "tests/tests.h"

#include <jansson.h>
#include <pthread.h>
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

static int subscribe(const char *channel_json)
{
	int fd = itest_ws_connect(srv.port, "/live", "tally.live.v1", NULL);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(itest_ws_send(fd, channel_json), 0);
	return fd;
}

static json_int_t total_of(const char *msg)
{
	json_t *j = json_loads(msg, 0, NULL);
	json_int_t total = -1;

	ck_assert_ptr_nonnull(j);
	json_unpack(j, "{s:{s:I}}", "data", "total_cents", &total);
	json_decref(j);
	return total;
}

START_TEST(snapshot_then_updates)
{
	int fd = subscribe("{\"op\":\"subscribe\",\"channel\":\"campaign:food\"}");
	char *m = itest_ws_wait_for(fd, "\"type\":\"snapshot\"", 3000);
	json_t *j;
	json_int_t seq0 = 0, seq1 = 0;

	ck_assert_ptr_nonnull(m);
	j = json_loads(m, 0, NULL);
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(json_unpack(j, "{s:I}", "seq", &seq0), 0);
	ck_assert_str_eq(json_string_value(json_object_get(j, "channel")), "campaign:food");
	ck_assert_int_eq(total_of(m), 0);
	json_decref(j);
	free(m);

	ck_assert_int_eq(itest_donate(srv.port, "food", 4200, "Ada Lovelace", "ada@example.org"),
	                 202);
	m = itest_ws_wait_for(fd, "\"type\":\"donation\"", 1000);
	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_nonnull(strstr(m, "Ada Lovelace"));
	ck_assert_ptr_nonnull(strstr(m, "\"amount_cents\":4200"));
	ck_assert_ptr_null(strstr(m, "example.org"));
	free(m);
	m = itest_ws_wait_for(fd, "\"type\":\"update\"", 1000);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(total_of(m), 4200);
	j = json_loads(m, 0, NULL);
	json_unpack(j, "{s:I}", "seq", &seq1);
	ck_assert_int_gt(seq1, seq0);
	json_decref(j);
	free(m);

	{
		struct itest_resp r;

		ck_assert_int_eq(
		    itest_post_json(srv.port, "/api/v1/admin/campaigns/food/pause", "{}", 1, &r),
		    0);
		ck_assert_int_eq(r.status, 200);
		itest_resp_fini(&r);
	}
	m = itest_ws_wait_for(fd, "\"status\":\"paused\"", 1000);
	ck_assert_ptr_nonnull(m);
	free(m);
	close(fd);
}
END_TEST

START_TEST(anonymous_and_hidden_amounts)
{
	int fd = subscribe("{\"op\":\"subscribe\",\"channel\":\"campaign:food\"}");
	const char *body = "{\"amount_cents\":777,\"currency\":\"USD\",\"anonymous\":true,"
	                   "\"hide_amount\":true,\"donor\":{\"name\":\"Secret Sam\","
	                   "\"email\":\"sam@example.org\"}}";
	struct itest_resp r;
	char *m;

	free(itest_ws_wait_for(fd, "snapshot", 3000));
	ck_assert_int_eq(itest_post_json(srv.port, "/api/v1/campaigns/food/donations", body, 0, &r),
	                 0);
	ck_assert_int_eq(r.status, 202);
	itest_resp_fini(&r);
	m = itest_ws_wait_for(fd, "\"type\":\"donation\"", 1000);
	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_nonnull(strstr(m, "\"name\":\"Anonymous\""));
	ck_assert_ptr_null(strstr(m, "Secret Sam"));
	ck_assert_ptr_null(strstr(m, "amount_cents"));
	ck_assert_ptr_null(strstr(m, "sam@example.org"));
	free(m);
	close(fd);
}
END_TEST

START_TEST(since_current_seq_skips_snapshot)
{
	int fd = subscribe("{\"op\":\"subscribe\",\"channel\":\"campaign:food\"}");
	char *m = itest_ws_wait_for(fd, "snapshot", 3000), req[200];
	json_int_t seq = 0;
	json_t *j;
	int fd2;

	ck_assert_ptr_nonnull(m);
	j = json_loads(m, 0, NULL);
	json_unpack(j, "{s:I}", "seq", &seq);
	json_decref(j);
	free(m);
	snprintf(req, sizeof(req),
	         "{\"op\":\"subscribe\",\"channel\":\"campaign:food\",\"since\":%lld}",
	         (long long)seq);
	fd2 = subscribe(req);
	m = itest_ws_recv(fd2, 400);
	ck_assert_ptr_null(m);
	ck_assert_int_eq(itest_donate(srv.port, "food", 100, "Bo", "bo@example.org"), 202);
	m = itest_ws_wait_for(fd2, "\"type\":\"update\"", 1000);
	ck_assert_ptr_nonnull(m);
	free(m);
	close(fd);
	close(fd2);
}
END_TEST

START_TEST(bad_messages_get_errors)
{
	static const char *const bad[] = {
	    "not json",
	    "{\"op\":\"subscribe\"}",
	    "{\"op\":\"dance\",\"channel\":\"campaign:food\"}",
	    "{\"op\":\"subscribe\",\"channel\":\"weather\"}",
	};
	int fd = itest_ws_connect(srv.port, "/live", "tally.live.v1", NULL), status = 0;
	char *m;

	ck_assert_int_ge(fd, 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(itest_ws_send(fd, bad[i]), 0);
		m = itest_ws_wait_for(fd, "\"type\":\"error\"", 1000);
		ck_assert_msg(m != NULL, "no error for %s", bad[i]);
		free(m);
	}
	ck_assert_int_eq(itest_ws_send(fd, "{\"op\":\"subscribe\",\"channel\":\"campaign:nope\"}"),
	                 0);
	m = itest_ws_wait_for(fd, "campaign_not_found", 1000);
	ck_assert_ptr_nonnull(m);
	free(m);
	/* The connection still works after the errors. */
	ck_assert_int_eq(itest_ws_send(fd, "{\"op\":\"subscribe\",\"channel\":\"campaign:food\"}"),
	                 0);
	m = itest_ws_wait_for(fd, "snapshot", 1000);
	ck_assert_ptr_nonnull(m);
	free(m);
	close(fd);

	/* Websockets only on /live with the subprotocol. */
	ck_assert_int_lt(itest_ws_connect(srv.port, "/other", "tally.live.v1", &status), 0);
	ck_assert_int_lt(itest_ws_connect(srv.port, "/live", NULL, &status), 0);
}
END_TEST

START_TEST(many_subscribers_all_get_the_update)
{
	enum { N = 50 };
	int fds[N];
	char *m;

	for (int i = 0; i < N; i++) {
		fds[i] = subscribe("{\"op\":\"subscribe\",\"channel\":\"campaign:food\"}");
		m = itest_ws_wait_for(fds[i], "snapshot", 3000);
		ck_assert_ptr_nonnull(m);
		free(m);
	}
	ck_assert_int_eq(itest_donate(srv.port, "food", 1234, "Ada", "ada@example.org"), 202);
	for (int i = 0; i < N; i++) {
		m = itest_ws_wait_for(fds[i], "\"total_cents\":1234", 2000);
		ck_assert_msg(m != NULL, "subscriber %d missed the update", i);
		free(m);
		close(fds[i]);
	}
}
END_TEST

START_TEST(leaderboard_channel)
{
	int fd = subscribe("{\"op\":\"subscribe\",\"channel\":\"leaderboard\"}");
	char *m = itest_ws_wait_for(fd, "\"type\":\"snapshot\"", 3000);

	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_nonnull(strstr(m, "\"channel\":\"leaderboard\""));
	ck_assert_ptr_nonnull(strstr(m, "\"slug\":\"food\""));
	free(m);
	ck_assert_int_eq(itest_donate(srv.port, "food", 999, "Ada", "ada@example.org"), 202);
	m = itest_ws_wait_for(fd, "\"total_cents\":999", 1000);
	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_nonnull(strstr(m, "\"type\":\"update\""));
	free(m);
	close(fd);
}
END_TEST

/* ---- a body never disagrees with its seq, over HTTP and live ---- */

#define AGREE_GIVERS 2
#define AGREE_GIFTS 60 /* per giver */
#define AGREE_SEQS 2048

struct agree {
	pthread_mutex_t lock;
	long long total_at[AGREE_SEQS]; /* seq -> total_cents; -1 = unseen */
	int giving, bad, failed_gifts;
	long long reads;
	char why[200];
};

static void *agree_giver(void *arg)
{
	struct agree *a = arg;

	for (int i = 0; i < AGREE_GIFTS; i++)
		if (itest_donate(srv.port, "food", 100, "Racer", "racer@example.org") != 202) {
			pthread_mutex_lock(&a->lock);
			a->failed_gifts++;
			pthread_mutex_unlock(&a->lock);
		}
	pthread_mutex_lock(&a->lock);
	a->giving--;
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

/* GET the campaign over and over: the ETag's seq (its last part) is the
 * body's seq, and one seq always comes with one total. */
static void *agree_reader(void *arg)
{
	struct agree *a = arg;

	for (;;) {
		struct itest_resp r;
		char etag[128] = "", *dash;
		long long tag_seq = -1, seq = -1, total = -1;
		int giving;
		json_t *j;

		pthread_mutex_lock(&a->lock);
		giving = a->giving;
		pthread_mutex_unlock(&a->lock);
		if (itest_http(srv.port, "GET", "/api/v1/campaigns/food", NULL, NULL, 0, &r) == 0) {
			if (itest_header(&r, "etag", etag, sizeof(etag)) &&
			    (dash = strrchr(etag, '-')))
				tag_seq = atoll(dash + 1);
			j = json_loads(r.body ? r.body : "", 0, NULL);
			if (j) {
				seq = json_integer_value(json_object_get(j, "seq"));
				total = json_integer_value(json_object_get(j, "total_cents"));
				json_decref(j);
			}
			pthread_mutex_lock(&a->lock);
			a->reads++;
			if (r.status != 200 || tag_seq != seq || seq < 0) {
				if (!a->bad++)
					snprintf(a->why, sizeof(a->why),
					         "status %d, ETag %s with a body of seq %lld",
					         r.status, etag, seq);
			} else if (seq < AGREE_SEQS) {
				if (a->total_at[seq] < 0)
					a->total_at[seq] = total;
				else if (a->total_at[seq] != total && !a->bad++)
					snprintf(a->why, sizeof(a->why),
					         "ETag %s named totals %lld and %lld", etag,
					         a->total_at[seq], total);
			}
			pthread_mutex_unlock(&a->lock);
			itest_resp_fini(&r);
		}
		if (!giving)
			break;
	}
	return NULL;
}

START_TEST(etag_and_live_agree_with_the_body)
{
	static struct agree a;
	pthread_t givers[AGREE_GIVERS], readers[2];
	long long want = AGREE_GIVERS * AGREE_GIFTS * 100;
	char needle[64];
	int fd = subscribe("{\"op\":\"subscribe\",\"channel\":\"campaign:food\"}");
	char *m = itest_ws_wait_for(fd, "snapshot", 3000);

	ck_assert_ptr_nonnull(m);
	free(m);
	memset(&a, 0, sizeof(a));
	pthread_mutex_init(&a.lock, NULL);
	for (int i = 0; i < AGREE_SEQS; i++)
		a.total_at[i] = -1;
	a.giving = AGREE_GIVERS;
	for (int i = 0; i < AGREE_GIVERS; i++)
		ck_assert_int_eq(pthread_create(&givers[i], NULL, agree_giver, &a), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&readers[i], NULL, agree_reader, &a), 0);
	for (int i = 0; i < AGREE_GIVERS; i++)
		pthread_join(givers[i], NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(readers[i], NULL);
	ck_assert_int_eq(a.failed_gifts, 0);
	ck_assert_msg(!a.bad, "%d of %lld reads disagreed; first: %s", a.bad, a.reads, a.why);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	/* The live channel ends on the exact total. */
	snprintf(needle, sizeof(needle), "\"total_cents\":%lld,", want);
	m = itest_ws_wait_for(fd, needle, 5000);
	ck_assert_msg(m != NULL, "the live channel never showed %lld", want);
	free(m);
	close(fd);
	pthread_mutex_destroy(&a.lock);
}
END_TEST

Suite *live_suite(void)
{
	Suite *s = suite_create("live");
	TCase *tc = tcase_create("websocket");

	tcase_add_checked_fixture(tc, start, stop);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, snapshot_then_updates);
	tcase_add_test(tc, anonymous_and_hidden_amounts);
	tcase_add_test(tc, since_current_seq_skips_snapshot);
	tcase_add_test(tc, bad_messages_get_errors);
	tcase_add_test(tc, many_subscribers_all_get_the_update);
	tcase_add_test(tc, leaderboard_channel);
	tcase_add_test(tc, etag_and_live_agree_with_the_body);
	suite_add_tcase(s, tc);
	return s;
}
