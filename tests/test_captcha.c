/* tests/test_captcha.c - the CAPTCHA check of protected gifts: the real
 * tally binary against tests/tools/captcha_standin.py (ok-* tokens pass,
 * slow-* answer after 10 s, anything else is refused), and the verifier
 * (core/captcha.c) on its own for its bound and its stop. Gifts come from
 * 127.0.0.2: the shield exempts only 127.0.0.1 and ::1. */
#include "tests/tests.h"
#include "tests/itest.h"
#include "core/captcha.h"
#include "base/err.h"
#include "base/util.h"

#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SECRET "captcha-test-secret"
#define GIFT                                                                                       \
	"\"amount_cents\":1500,\"currency\":\"USD\",\"donor\":{\"name\":\"Ada\",\"email\":\"ada@"  \
	"example.org\"}"

static struct itest_server srv;
static struct itest_tool verifier;

static int64_t now_ms(void)
{
	return (int64_t)(util_mono_ns() / 1000000);
}

/* Write the secret file (mode 0600) into dir; its path into path. */
static void write_secret(const char *dir, mode_t mode, char *path, size_t cap)
{
	int fd;

	snprintf(path, cap, "%s/captcha.secret", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, SECRET "\n", sizeof(SECRET)), (ssize_t)sizeof(SECRET));
	ck_assert_int_eq(close(fd), 0);
	ck_assert_int_eq(chmod(path, mode), 0);
}

/* Start the stand-in and tally with the CAPTCHA on (extra: more options),
 * with the campaign "food". */
static void start(const char *extra)
{
	char path[600], args[1024];

	ck_assert_int_eq(itest_tool_start(&verifier, "captcha_standin.py", "--secret " SECRET), 0);
	memset(&srv, 0, sizeof(srv));
	srv.dir = tests_tmpdir();
	ck_assert_ptr_nonnull(srv.dir);
	write_secret(srv.dir, 0600, path, sizeof(path));
	snprintf(args, sizeof(args),
	         "--captcha turnstile --captcha-secret-file %s --captcha-url "
	         "http://127.0.0.1:%d/siteverify %s",
	         path, verifier.port, extra ? extra : "");
	ck_assert_msg(itest_start(&srv, args) == 0, "tally did not start: %s",
	              itest_slurp(srv.log));
	ck_assert_int_eq(itest_create_campaign(srv.port, "food", "USD", 100000), 201);
}

static void teardown(void)
{
	itest_cleanup(&srv);
	if (verifier.pid > 0)
		itest_tool_stop(&verifier);
	memset(&verifier, 0, sizeof(verifier));
}

/* Send a gift (the body's fields after GIFT: "" or ",\"captcha_token\":...")
 * from the address from (127.0.0.x, itest_conn_open_from), with an
 * Idempotency-Key when key is not NULL. Returns the connection. */
static int send_gift(const char *from, const char *more, const char *key)
{
	char body[8192], req[12288], keyh[300] = "";
	int fd = itest_conn_open_from(srv.port, from), n;

	ck_assert_int_ge(fd, 0);
	n = snprintf(body, sizeof(body), "{" GIFT "%s}", more);
	ck_assert_int_lt(n, (int)sizeof(body));
	if (key)
		snprintf(keyh, sizeof(keyh), "Idempotency-Key: %s\r\n", key);
	n = snprintf(req, sizeof(req),
	             "POST /api/v1/campaigns/food/donations HTTP/1.1\r\nHost: x\r\nConnection: "
	             "close\r\nContent-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n%s",
	             keyh, strlen(body), body);
	ck_assert_int_lt(n, (int)sizeof(req));
	ck_assert_int_eq(itest_send(fd, req, (size_t)n), 0);
	return fd;
}

/* send_gift and read the answer into r; returns its status. */
static int give_from(const char *from, const char *more, const char *key, struct itest_resp *r)
{
	int fd = send_gift(from, more, key);

	ck_assert_int_eq(itest_conn_request(fd, "", 0, 20000 * itest_slowdown(), r), 0);
	close(fd);
	return r->status;
}

/* The answer's error code and fields.captcha_token ("" when absent). */
static void error_of(const struct itest_resp *r, char *code, size_t cap, char *field, size_t fcap)
{
	json_t *b = itest_json_body(r);
	json_t *e = json_object_get(b, "error");
	json_t *f = json_object_get(json_object_get(e, "fields"), "captcha_token");

	ck_assert_ptr_nonnull(e);
	snprintf(code, cap, "%s", json_string_value(json_object_get(e, "code")));
	snprintf(field, fcap, "%s", json_is_string(f) ? json_string_value(f) : "");
	json_decref(b);
}

static void expect_refused(const struct itest_resp *r, int status, const char *code)
{
	char got[64], field[128];

	ck_assert_msg(r->status == status, "want %d %s, got %d %s", status, code, r->status,
	              r->body);
	error_of(r, got, sizeof(got), field, sizeof(field));
	ck_assert_str_eq(got, code);
}

static long long donations(void)
{
	return itest_sql_int(srv.db, "SELECT count(*) FROM donations");
}

/* Wait until the gift accepted last has been admitted and settled: every
 * refusal before it was answered without reaching the writer. */
static void settle(void)
{
	ck_assert_int_eq(itest_settle(srv.port), 0);
}

/* The stand-in's recorded forms. */
static json_t *forms(void)
{
	struct itest_resp r;
	json_t *b, *a;

	ck_assert_int_eq(itest_http(verifier.port, "GET", "/_requests", NULL, NULL, 0, &r), 0);
	ck_assert_int_eq(r.status, 200);
	b = itest_json_body(&r);
	itest_resp_fini(&r);
	a = json_incref(json_object_get(b, "requests"));
	json_decref(b);
	ck_assert_ptr_nonnull(a);
	return a;
}

START_TEST(always_a_gift_needs_a_valid_token)
{
	struct itest_resp r;
	char code[64], field[128];
	json_t *fs, *f;

	start("--captcha-always");
	/* No token: 403, nothing asked of the verifier, nothing written. */
	give_from("127.0.0.2", "", NULL, &r);
	expect_refused(&r, 403, "captcha_required");
	error_of(&r, code, sizeof(code), field, sizeof(field));
	ck_assert_str_eq(field, "required while this campaign is protected");
	itest_resp_fini(&r);
	/* A token the provider refuses: 403 with its error code. */
	give_from("127.0.0.2", ",\"captcha_token\":\"no-such-token\"", NULL, &r);
	expect_refused(&r, 403, "captcha_failed");
	ck_assert_ptr_nonnull(strstr(r.body, "invalid-input-response"));
	itest_resp_fini(&r);
	/* A null token is no token. */
	give_from("127.0.0.2", ",\"captcha_token\":null", NULL, &r);
	expect_refused(&r, 403, "captcha_required");
	itest_resp_fini(&r);
	/* A good one: the gift goes on as any other. */
	ck_assert_int_eq(give_from("127.0.0.2", ",\"captcha_token\":\"ok-7f3a.b_c-d\"", NULL, &r),
	                 202);
	ck_assert_ptr_nonnull(strstr(r.body, "\"status\":\"pending\""));
	itest_resp_fini(&r);
	settle();
	ck_assert_int_eq(donations(), 1);
	ck_assert_int_eq(itest_sql_int(srv.db, "SELECT count(*) FROM donations WHERE status = "
	                                       "'succeeded' AND amount_cents = 1500"),
	                 1);
	/* The verifier got the site's secret, the token and the client. */
	fs = forms();
	ck_assert_int_eq(json_array_size(fs), 2);
	f = json_array_get(fs, 1);
	ck_assert_str_eq(json_string_value(json_object_get(f, "secret")), SECRET);
	ck_assert_str_eq(json_string_value(json_object_get(f, "response")), "ok-7f3a.b_c-d");
	ck_assert_str_eq(json_string_value(json_object_get(f, "remoteip")), "127.0.0.2");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(fs, 0), "response")),
	                 "no-such-token");
	json_decref(fs);
	/* The shield counted the three refusals. */
	ck_assert_int_eq(itest_http(srv.port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
	ck_assert_ptr_nonnull(strstr(r.body, "tally_shield_refused_total{reason=\"captcha\"} 3"));
	ck_assert_ptr_nonnull(strstr(r.body, "tally_captcha_verifications_total{result=\"ok\"} 1"));
	ck_assert_ptr_nonnull(
	    strstr(r.body, "tally_captcha_verifications_total{result=\"rejected\"} 1"));
	itest_resp_fini(&r);
}
END_TEST

START_TEST(loopback_needs_no_token)
{
	struct itest_resp r;
	json_t *fs;

	start("--captcha-always");
	ck_assert_int_eq(give_from("127.0.0.1", "", NULL, &r), 202);
	itest_resp_fini(&r);
	settle();
	ck_assert_int_eq(donations(), 1);
	fs = forms();
	ck_assert_int_eq(json_array_size(fs), 0);
	json_decref(fs);
}
END_TEST

START_TEST(a_slow_verifier_is_503_within_the_timeout)
{
	struct itest_resp r;
	char ra[16];
	int64_t t0, took;

	start("--captcha-always --captcha-timeout-ms 600");
	t0 = now_ms();
	give_from("127.0.0.2", ",\"captcha_token\":\"slow-1\"", NULL, &r);
	took = now_ms() - t0;
	expect_refused(&r, 503, "captcha_unavailable");
	ck_assert_ptr_nonnull(itest_header(&r, "retry-after", ra, sizeof(ra)));
	ck_assert_str_eq(ra, "5");
	itest_resp_fini(&r);
	/* Answered by the time limit, not by the stand-in's 10 s. */
	ck_assert_msg(took >= 550 && took < 600 + 3000 * itest_slowdown(), "took %lld ms",
	              (long long)took);
	/* Nothing was recorded: a good gift after it is the only one. */
	ck_assert_int_eq(give_from("127.0.0.2", ",\"captcha_token\":\"ok-2\"", NULL, &r), 202);
	itest_resp_fini(&r);
	settle();
	ck_assert_int_eq(donations(), 1);
}
END_TEST

START_TEST(an_unreachable_verifier_fails_closed)
{
	struct itest_resp r;

	start("--captcha-always");
	itest_tool_stop(&verifier);
	verifier.pid = 0;
	give_from("127.0.0.2", ",\"captcha_token\":\"ok-1\"", NULL, &r);
	expect_refused(&r, 503, "captcha_unavailable");
	itest_resp_fini(&r);
	/* Only protected gifts fail: loopback still gives. */
	ck_assert_int_eq(give_from("127.0.0.1", "", NULL, &r), 202);
	itest_resp_fini(&r);
	settle();
	ck_assert_int_eq(donations(), 1);
}
END_TEST

START_TEST(the_token_is_not_in_the_fingerprint_nor_kept)
{
	struct itest_resp r;
	char v[16];
	char *log, *db;
	json_t *fs;

	start("--captcha-always");
	ck_assert_int_eq(
	    give_from("127.0.0.2", ",\"captcha_token\":\"ok-first-Zq9\"", "gift-key-1", &r), 202);
	itest_resp_fini(&r);
	settle();
	/* A retry of the acknowledged gift (a token is good once at the
	 * providers): its first 202, with another token, a bad one or none,
	 * and no new check. */
	ck_assert_int_eq(
	    give_from("127.0.0.2", ",\"captcha_token\":\"ok-second-Zq9\"", "gift-key-1", &r), 202);
	ck_assert_ptr_nonnull(itest_header(&r, "idempotent-replayed", v, sizeof(v)));
	itest_resp_fini(&r);
	ck_assert_int_eq(give_from("127.0.0.2", ",\"captcha_token\":\"bad-Zq9\"", "gift-key-1", &r),
	                 202);
	ck_assert_ptr_nonnull(itest_header(&r, "idempotent-replayed", v, sizeof(v)));
	itest_resp_fini(&r);
	ck_assert_int_eq(give_from("127.0.0.2", "", "gift-key-1", &r), 202);
	ck_assert_ptr_nonnull(itest_header(&r, "idempotent-replayed", v, sizeof(v)));
	itest_resp_fini(&r);
	fs = forms();
	ck_assert_int_eq(json_array_size(fs), 1);
	json_decref(fs);
	ck_assert_int_eq(donations(), 1);
	/* Another gift under the same key is no retry: it is checked (and
	 * refused here before the key is looked at). */
	give_from("127.0.0.2", ",\"captcha_token\":\"bad-Zq9\",\"message\":\"other\"", "gift-key-1",
	          &r);
	expect_refused(&r, 403, "captcha_failed");
	itest_resp_fini(&r);
	/* Neither the log nor the database holds a token. */
	itest_signal(&srv, SIGTERM);
	srv.pid = 0;
	log = itest_slurp(srv.log);
	ck_assert_ptr_nonnull(strstr(log, "\"stop\""));
	ck_assert_ptr_null(strstr(log, "Zq9"));
	free(log);
	for (int i = 0; i < 2; i++) {
		char path[600];
		FILE *f;
		size_t n;

		snprintf(path, sizeof(path), "%s%s", srv.db, i ? "-wal" : "");
		f = fopen(path, "rb");
		if (!f) {
			ck_assert_int_eq(i, 1); /* the WAL is gone after a clean stop */
			continue;
		}
		db = malloc(64 << 20);
		ck_assert_ptr_nonnull(db);
		n = fread(db, 1, 64 << 20, f);
		fclose(f);
		ck_assert_int_gt(n, 0);
		ck_assert_ptr_null(memmem(db, n, "Zq9", 3));
		free(db);
	}
}
END_TEST

START_TEST(without_always_only_a_raised_shield_asks)
{
	struct itest_resp r;

	start(NULL);
	ck_assert_int_eq(give_from("127.0.0.2", "", NULL, &r), 202);
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_post_json(srv.port, "/api/v1/admin/shield/raise", "{}", 1, &r), 0);
	ck_assert_msg(r.status == 200, "raise: %d %s", r.status, r.body);
	itest_resp_fini(&r);
	give_from("127.0.0.2", "", NULL, &r);
	expect_refused(&r, 403, "captcha_required");
	itest_resp_fini(&r);
	ck_assert_int_eq(give_from("127.0.0.2", ",\"captcha_token\":\"ok-up\"", NULL, &r), 202);
	itest_resp_fini(&r);
	ck_assert_int_eq(itest_post_json(srv.port, "/api/v1/admin/shield/lower", "{}", 1, &r), 0);
	ck_assert_int_eq(r.status, 200);
	itest_resp_fini(&r);
	ck_assert_int_eq(give_from("127.0.0.2", "", NULL, &r), 202);
	itest_resp_fini(&r);
	settle();
	ck_assert_int_eq(donations(), 3);
}
END_TEST

START_TEST(a_bad_token_field_is_422)
{
	struct itest_resp r;
	char *big = malloc(TALLY_CAPTCHA_TOKEN_MAX + 64);

	start("--captcha-always");
	give_from("127.0.0.2", ",\"captcha_token\":42", NULL, &r);
	ck_assert_int_eq(r.status, 422);
	ck_assert_ptr_nonnull(strstr(r.body, "captcha_token"));
	itest_resp_fini(&r);
	give_from("127.0.0.2", ",\"captcha_token\":\"has space\"", NULL, &r);
	ck_assert_int_eq(r.status, 422);
	itest_resp_fini(&r);
	ck_assert_ptr_nonnull(big);
	snprintf(big, TALLY_CAPTCHA_TOKEN_MAX + 64, ",\"captcha_token\":\"ok-%0*d\"",
	         TALLY_CAPTCHA_TOKEN_MAX - 2, 0); /* 4097 bytes */
	give_from("127.0.0.2", big, NULL, &r);
	ck_assert_int_eq(r.status, 422);
	itest_resp_fini(&r);
	snprintf(big, TALLY_CAPTCHA_TOKEN_MAX + 64, ",\"captcha_token\":\"ok-%0*d\"",
	         TALLY_CAPTCHA_TOKEN_MAX - 3, 0); /* 4096 bytes: the most */
	ck_assert_int_eq(give_from("127.0.0.2", big, NULL, &r), 202);
	itest_resp_fini(&r);
	free(big);
	settle();
	ck_assert_int_eq(donations(), 1);
}
END_TEST

/* A check in flight when tally stops is answered at once, not held until
 * the verifier's time limit: the drain does not wait on the network. */
START_TEST(a_stop_answers_checks_in_flight)
{
	struct itest_resp r;
	int64_t end, t0;
	json_t *fs;
	int fd, st;

	start("--captcha-always --captcha-timeout-ms 20000");
	fd = send_gift("127.0.0.2", ",\"captcha_token\":\"slow-stop\"", NULL);
	/* Barrier: the stand-in holds the check. */
	end = now_ms() + 10000 * itest_slowdown();
	for (;;) {
		fs = forms();
		st = (int)json_array_size(fs);
		json_decref(fs);
		if (st == 1 || now_ms() > end)
			break;
		poll(NULL, 0, 10);
	}
	ck_assert_int_eq(st, 1);
	t0 = now_ms();
	ck_assert_int_eq(kill(srv.pid, SIGTERM), 0);
	ck_assert_int_eq(itest_conn_request(fd, "", 0, 20000 * itest_slowdown(), &r), 0);
	close(fd);
	expect_refused(&r, 503, "captcha_unavailable");
	itest_resp_fini(&r);
	st = itest_signal(&srv, 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "tally ended with status %d", st);
	ck_assert_msg(now_ms() - t0 < 4000 * itest_slowdown(), "the stop took %lld ms",
	              (long long)(now_ms() - t0));
	ck_assert_int_eq(donations(), 0);
}
END_TEST

/* ---- bad options: exit 2 and one line ---- */

/* Run tally with args (NULL-ended) and env TALLY_CAPTCHA_SECRET unset;
 * its stderr into out. Returns the exit status (-1: killed). */
static int run_tally(char *const *args, char *out, size_t cap)
{
	const char *bin = getenv("TALLY_BIN");
	char *argv[16];
	int pipefd[2], status, argc = 0;
	size_t used = 0;
	ssize_t n;
	pid_t pid;

	ck_assert_ptr_nonnull(bin);
	argv[argc++] = (char *)bin;
	for (; *args && argc < 15; args++)
		argv[argc++] = *args;
	argv[argc] = NULL;
	ck_assert_int_eq(pipe(pipefd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(pipefd[1], STDERR_FILENO);
		dup2(pipefd[1], STDOUT_FILENO);
		unsetenv("TALLY_CAPTCHA_SECRET");
		setenv("TALLY_ADMIN_TOKEN", ITEST_TOKEN, 1);
		execv(bin, argv);
		_exit(127);
	}
	close(pipefd[1]);
	while (used < cap - 1 && (n = read(pipefd[0], out + used, cap - 1 - used)) > 0)
		used += (size_t)n;
	out[used] = '\0';
	close(pipefd[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void refused(char *const *args, const char *needle)
{
	char out[4096];
	char *nl;

	ck_assert_int_eq(run_tally(args, out, sizeof(out)), 2);
	nl = strchr(out, '\n');
	ck_assert_msg(nl && nl[1] == '\0', "want one line, got: %s", out);
	ck_assert_msg(strstr(out, needle), "want '%s' in: %s", needle, out);
}

START_TEST(bad_options_stop_tally_with_one_line)
{
	char *dir = tests_tmpdir(), path[600], db[600];

	snprintf(db, sizeof(db), "%s/t.db", dir);
	refused((char *[]){"--headless", "--db", db, "--captcha", "friendlycaptcha", NULL},
	        "--captcha wants turnstile, hcaptcha or recaptcha, got 'friendlycaptcha'");
	refused((char *[]){"--headless", "--db", db, "--captcha", "hcaptcha", NULL},
	        "--captcha hcaptcha needs its secret key");
	write_secret(dir, 0640, path, sizeof(path));
	refused((char *[]){"--headless", "--db", db, "--captcha", "recaptcha",
	                   "--captcha-secret-file", path, NULL},
	        "is open to group or others (mode 0640)");
	chmod(path, 0600);
	refused((char *[]){"--headless", "--db", db, "--captcha-always", NULL},
	        "need --captcha PROVIDER");
	refused((char *[]){"--headless", "--db", db, "--captcha", "turnstile",
	                   "--captcha-secret-file", path, "--captcha-timeout-ms", "0", NULL},
	        "--captcha-timeout-ms wants 100 to 30000");
	refused((char *[]){"--headless", "--db", db, "--captcha", "turnstile",
	                   "--captcha-secret-file", path, "--captcha-url", "ftp://x/", NULL},
	        "--captcha-url wants an http:// or https:// URL");
	refused((char *[]){"--headless", "--db", db, "--captcha", "turnstile",
	                   "--captcha-secret-file", path, "--captcha-always", "--shield", "off",
	                   NULL},
	        "--captcha-always needs the shield");
	ck_assert_int_ne(access(db, F_OK), 0); /* nothing was opened */
	tests_rmdir(dir);
}
END_TEST

/* ---- the verifier on its own ---- */

struct verdicts {
	atomic_int n, ok, rejected, unavailable;
};

static void count_verdict(void *ud, enum captcha_result res, const char *why)
{
	struct verdicts *v = ud;

	ck_assert_ptr_nonnull(why);
	if (res == CAPTCHA_OK)
		atomic_fetch_add(&v->ok, 1);
	else if (res == CAPTCHA_REJECTED)
		atomic_fetch_add(&v->rejected, 1);
	else
		atomic_fetch_add(&v->unavailable, 1);
	atomic_fetch_add(&v->n, 1);
}

static void wait_verdicts(struct verdicts *v, int n)
{
	int64_t end = now_ms() + 10000 * itest_slowdown();

	while (atomic_load(&v->n) < n && now_ms() < end)
		poll(NULL, 0, 5);
	ck_assert_int_eq(atomic_load(&v->n), n);
}

START_TEST(the_verifier_is_bounded_and_answers_everything_at_the_stop)
{
	struct captcha_config cfg;
	struct captcha *c;
	struct captcha_stats st;
	struct verdicts v = {0};
	char url[128], err[256];

	ck_assert_int_eq(curl_global_init(CURL_GLOBAL_DEFAULT), 0);
	ck_assert_int_eq(itest_tool_start(&verifier, "captcha_standin.py", "--secret " SECRET), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/siteverify", verifier.port);
	captcha_config_defaults(&cfg);
	cfg.provider = CAPTCHA_HCAPTCHA;
	cfg.secret = SECRET;
	cfg.url = url;
	cfg.max_inflight = 2;
	cfg.timeout_ms = 20000;
	ck_assert_int_eq(captcha_new(&cfg, &c, err, sizeof(err)), 0);

	ck_assert_int_eq(captcha_verify(c, "ok-a", "192.0.2.1", count_verdict, &v), 0);
	ck_assert_int_eq(captcha_verify(c, "nope", NULL, count_verdict, &v), 0);
	wait_verdicts(&v, 2);
	ck_assert_int_eq(atomic_load(&v.ok), 1);
	ck_assert_int_eq(atomic_load(&v.rejected), 1);
	ck_assert_int_eq(captcha_verify(c, "", NULL, count_verdict, &v), -EINVAL);

	/* Two slow ones fill it: the third is refused at once. */
	ck_assert_int_eq(captcha_verify(c, "slow-1", NULL, count_verdict, &v), 0);
	ck_assert_int_eq(captcha_verify(c, "slow-2", NULL, count_verdict, &v), 0);
	ck_assert_int_eq(captcha_verify(c, "ok-b", NULL, count_verdict, &v), TALLY_EOVERLOADED);
	captcha_get_stats(c, &st);
	ck_assert_int_eq(st.inflight, 2);
	ck_assert_int_eq(st.overloaded, 1);
	/* The stop answers both, unavailable, before it returns. */
	captcha_free(c);
	ck_assert_int_eq(atomic_load(&v.n), 4);
	ck_assert_int_eq(atomic_load(&v.unavailable), 2);
	curl_global_cleanup();
}
END_TEST

Suite *captcha_suite(void)
{
	Suite *s = suite_create("captcha");
	TCase *tc = tcase_create("gifts");
	TCase *opts = tcase_create("options");
	TCase *unit = tcase_create("verifier");

	tcase_add_unchecked_fixture(tc, tests_root_setup, tests_root_teardown);
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, always_a_gift_needs_a_valid_token);
	tcase_add_test(tc, loopback_needs_no_token);
	tcase_add_test(tc, a_slow_verifier_is_503_within_the_timeout);
	tcase_add_test(tc, an_unreachable_verifier_fails_closed);
	tcase_add_test(tc, the_token_is_not_in_the_fingerprint_nor_kept);
	tcase_add_test(tc, without_always_only_a_raised_shield_asks);
	tcase_add_test(tc, a_bad_token_field_is_422);
	tcase_add_test(tc, a_stop_answers_checks_in_flight);
	suite_add_tcase(s, tc);

	tcase_add_unchecked_fixture(opts, tests_root_setup, tests_root_teardown);
	tcase_set_timeout(opts, 30);
	tcase_add_test(opts, bad_options_stop_tally_with_one_line);
	suite_add_tcase(s, opts);

	tcase_add_unchecked_fixture(unit, tests_root_setup, tests_root_teardown);
	tcase_add_checked_fixture(unit, NULL, teardown);
	tcase_set_timeout(unit, 30);
	tcase_add_test(unit, the_verifier_is_bounded_and_answers_everything_at_the_stop);
	suite_add_tcase(s, unit);
	return s;
}
