/* tests/test_logs.c - no secret, token or email reaches the server's log.
 *
 * A server runs through a realistic giving-day session with secrets the
 * test knows: the admin token, two webhook secrets, the processor's secret
 * key, an SMTP password, donors' names and emails, the status tokens of
 * the 202s, Idempotency-Keys (one too long to take), and the tokens an
 * attacker guesses. Error paths run too: declined cards, a transient
 * processing error, a webhook endpoint that fails before it takes events,
 * receipts refused by the mail server, bad bodies and requests, refused
 * staff calls and a refused staff console. Then the whole log (stderr and
 * stdout of both runs) is searched for each secret as it is, in its JSON
 * escapes and URL-encoded, case aside; a token-like secret's first half
 * is not allowed either. The search is tested on its own first, so a
 * clean log means the secrets are absent, not that the search is blind.
 * (tally has no debug log level to turn on: it logs at info and above.)
 */
#include "tests/itest.h"
#include "tests/tests.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* The secrets this test owns (all without spaces: itest splits its
 * arguments on them). */
#define HOOK_SECRET_OK "whsec-logs-7c1e90d2b4a6f835"
#define HOOK_SECRET_FAIL "whsec-logs-e5a3c1f0d9b7288e"
#define STRIPE_KEY "sk_test_logs_4f8a2c6e1b9d3570"
#define SMTP_PASSWORD "smtp-pw-logs-93be61a7c2d4"
#define ATTACKER_BEARER "attacker-guess-0b7d5f3a91c2e648"
#define ATTACKER_QUERY "attacker-query-6e2a8c4f07b1d935"
#define ATTACKER_CONSOLE "attacker-console-d1f3b5a7c9e20864"
#define ATTACKER_BIG "attacker-big-header-5a7c9e1b3d2f4068"
#define ATTACKER_STATUS "0123456789abcdef0123456789abcdef" /* a guessed status token */

/* Donors: a name with a quote and a letter outside ASCII, and a surname
 * worth finding alone. */
#define NAME_ADA "Zo\xc3\xab \\\"Quill\\\" Marchetti" /* as written in a JSON body */
#define NAME_ADA_TEXT "Zo\xc3\xab \"Quill\" Marchetti"
#define SURNAME_ADA "Marchetti"
#define EMAIL_ADA "zoe.marchetti+giving@example.org"
#define NAME_BOB "Bartholomew Okonkwo-Lindqvist"
#define EMAIL_BOB "b.okonkwo-lindqvist@example.net"
#define NAME_CY "Cyrielle Vantongeren"
#define EMAIL_CY "cyrielle.reject-me@example.com" /* the SMTP sink refuses it */
#define NAME_DEE "Desmond Achterberg"
#define EMAIL_DEE "dee.achterberg@example.edu"

#define MAX_SECRETS 48
#define MAX_FORMS 8

struct secrets {
	char *s[MAX_SECRETS];
	int token_like[MAX_SECRETS]; /* its first half is secret too */
	int n;
};

static void secret_add(struct secrets *ss, const char *s, int token_like)
{
	ck_assert_int_lt(ss->n, MAX_SECRETS);
	ss->s[ss->n] = strdup(s);
	ck_assert_ptr_nonnull(ss->s[ss->n]);
	ss->token_like[ss->n++] = token_like;
}

static void secrets_fini(struct secrets *ss)
{
	for (int i = 0; i < ss->n; i++)
		free(ss->s[i]);
	ss->n = 0;
}

/* s percent-encoded: every byte but the unreserved ones (RFC 3986) as %XX
 * in upper- or lower-case hex; space as '+' when form is set. */
static char *url_encode(const char *s, int lower, int form)
{
	static const char *const digits[] = {"0123456789ABCDEF", "0123456789abcdef"};
	char *out = malloc(strlen(s) * 3 + 1), *o = out;

	ck_assert_ptr_nonnull(out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p)) {
			*o++ = (char)*p;
		} else if (form && *p == ' ') {
			*o++ = '+';
		} else {
			*o++ = '%';
			*o++ = digits[lower][*p >> 4];
			*o++ = digits[lower][*p & 15];
		}
	}
	*o = '\0';
	return out;
}

/* s as a JSON string's inside (no quotes), dumped with flags. */
static char *json_escaped(const char *s, size_t flags)
{
	json_t *j = json_string(s);
	char *d, *inner;
	size_t len;

	ck_assert_ptr_nonnull(j);
	d = json_dumps(j, JSON_ENCODE_ANY | flags);
	json_decref(j);
	ck_assert_ptr_nonnull(d);
	len = strlen(d);
	ck_assert_uint_ge(len, 2);
	inner = strndup(d + 1, len - 2);
	free(d);
	ck_assert_ptr_nonnull(inner);
	return inner;
}

/* Every form of s a log line might hold: as it is, JSON-escaped (plain,
 * ASCII-only, slashes escaped), URL-encoded (upper and lower hex, form
 * encoding). Returns how many went into forms (malloc'd). */
static int secret_forms(const char *s, char *forms[MAX_FORMS])
{
	int n = 0;

	forms[n++] = strdup(s);
	forms[n++] = json_escaped(s, 0);
	forms[n++] = json_escaped(s, JSON_ENSURE_ASCII);
	forms[n++] = json_escaped(s, JSON_ENSURE_ASCII | JSON_ESCAPE_SLASH);
	forms[n++] = url_encode(s, 0, 0);
	forms[n++] = url_encode(s, 1, 0);
	forms[n++] = url_encode(s, 0, 1);
	for (int i = 0; i < n; i++)
		ck_assert_ptr_nonnull(forms[i]);
	return n;
}

/* Where in text (case aside) s is, in any of its forms, or its first
 * half when token_like: a pointer into text, or NULL. *form gets the
 * form found. */
static const char *find_secret(const char *text, const char *s, int token_like, char *form,
                               size_t cap)
{
	char *forms[MAX_FORMS];
	int n = secret_forms(s, forms);
	const char *at = NULL;

	if (token_like) {
		size_t half = strlen(s) / 2;

		ck_assert_uint_ge(half, 8);
		forms[n++] = strndup(s, half);
		ck_assert_ptr_nonnull(forms[n - 1]);
	}
	for (int i = 0; i < n; i++) {
		if (!at && (at = strcasestr(text, forms[i])) != NULL)
			snprintf(form, cap, "%s", forms[i]);
		free(forms[i]);
	}
	return at;
}

/* The search itself: each form of a secret is found in a log line
 * written by jansson or by a URL, and a line without it passes. */
START_TEST(search_finds_every_form)
{
	static const char *const s = "Zo\xc3\xab \"Q\" a/b+c@Example.org";
	json_t *line = json_pack("{s:s,s:s}", "event", "x", "msg", s);
	char *forms[MAX_FORMS], *dumped, form[256];
	int n;

	ck_assert_ptr_nonnull(line);
	for (size_t f = 0; f < 3; f++) {
		static const size_t flags[] = {0, JSON_ENSURE_ASCII,
		                               JSON_ENSURE_ASCII | JSON_ESCAPE_SLASH};

		dumped = json_dumps(line, JSON_COMPACT | flags[f]);
		ck_assert_ptr_nonnull(dumped);
		ck_assert_msg(find_secret(dumped, s, 0, form, sizeof(form)), "not found in %s",
		              dumped);
		free(dumped);
	}
	json_decref(line);
	n = secret_forms(s, forms);
	for (int i = 0; i < n; i++) {
		char text[512];

		snprintf(text, sizeof(text), "{\"msg\":\"GET /x?e=%s&y=1\"}", forms[i]);
		ck_assert_msg(find_secret(text, s, 0, form, sizeof(form)), "form %d missed: %s", i,
		              text);
		free(forms[i]);
	}
	ck_assert_ptr_nonnull(
	    find_secret("zo%C3%AB+%22q%22+a%2Fb%2Bc%40example.org", s, 0, form, sizeof(form)));
	ck_assert_ptr_null(
	    find_secret("{\"msg\":\"Zo \\\"Q\\\" a/b c@example.org\"}", s, 0, form, sizeof(form)));
	/* A token's first half is found; less than that is not. */
	ck_assert_ptr_nonnull(find_secret(
	    "id 0123456789abcdef...", "0123456789abcdef0123456789abcdef", 1, form, sizeof(form)));
	ck_assert_ptr_null(find_secret("id 0123456789abcde...", "0123456789abcdef0123456789abcdef",
	                               1, form, sizeof(form)));
}
END_TEST

static struct itest_server srv;
static struct itest_tool stripe, hook_ok, hook_fail, smtp;
static char *smtp_dir;

static void setup(void)
{
	memset(&srv, 0, sizeof(srv));
	memset(&stripe, 0, sizeof(stripe));
	memset(&hook_ok, 0, sizeof(hook_ok));
	memset(&hook_fail, 0, sizeof(hook_fail));
	memset(&smtp, 0, sizeof(smtp));
	smtp_dir = NULL;
}

static void teardown(void)
{
	itest_cleanup(&srv);
	itest_tool_stop(&stripe);
	itest_tool_stop(&hook_ok);
	itest_tool_stop(&hook_fail);
	itest_tool_stop(&smtp);
	tests_rmdir(smtp_dir);
	smtp_dir = NULL;
}

/* Stop the server with SIGTERM (it must exit 0, so its log is whole) and
 * append its log to *all. */
static void stop_and_collect(char **all)
{
	char *log, *joined;
	int st = itest_signal(&srv, SIGTERM);

	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "tally ended with status %d", st);
	log = itest_slurp(srv.log);
	ck_assert_msg(strstr(log, "\"server.listening\"") && strstr(log, "\"stop\""),
	              "the log misses its start or stop: %s", log);
	joined = malloc(strlen(*all) + strlen(log) + 1);
	ck_assert_ptr_nonnull(joined);
	strcpy(joined, *all);
	strcat(joined, log);
	free(*all);
	free(log);
	*all = joined;
}

static void start_server(const char *smtp_userinfo)
{
	char args[1024];

	snprintf(args, sizeof(args),
	         "--processor stripe --stripe-url http://127.0.0.1:%d "
	         "--webhook http://127.0.0.1:%d/hooks/ok --webhook-secret " HOOK_SECRET_OK " "
	         "--webhook http://127.0.0.1:%d/hooks/flaky --webhook-secret " HOOK_SECRET_FAIL
	         " --smtp-url smtp://%s127.0.0.1:%d "
	         "--jobs payments:attempts=3,backoff-ms=20 "
	         "--jobs receipts:attempts=2,backoff-ms=20 "
	         "--jobs webhooks:attempts=6,backoff-ms=20",
	         stripe.port, hook_ok.port, hook_fail.port, smtp_userinfo, smtp.port);
	ck_assert_msg(itest_start(&srv, args) == 0, "the server did not start");
}

/* POST a donation with an Idempotency-Key (NULL for none); returns the
 * status and, on 202, the id and status token. */
static int give(struct secrets *ss, const char *key, const char *name, const char *email,
                const char *payment_token, char *id, char *token)
{
	char hdr[512], body[1024];
	struct itest_resp r;
	int status;

	snprintf(hdr, sizeof(hdr), "Content-Type: application/json\r\n%s%s%s",
	         key ? "Idempotency-Key: " : "", key ? key : "", key ? "\r\n" : "");
	snprintf(body, sizeof(body),
	         "{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":\"%s\","
	         "\"email\":\"%s\"},\"message\":\"Go team!\",\"payment_token\":\"%s\"}",
	         name, email, payment_token);
	ck_assert_int_eq(itest_http(srv.port, "POST", "/api/v1/campaigns/food/donations", hdr, body,
	                            strlen(body), &r),
	                 0);
	status = r.status;
	if (status == 202 && id) {
		json_error_t e;
		json_t *j = json_loads(r.body, 0, &e);
		const char *v, *t;

		ck_assert_msg(j != NULL, "not JSON: %s", r.body);
		v = json_string_value(json_object_get(j, "id"));
		t = json_string_value(json_object_get(j, "status_token"));
		ck_assert_msg(v && t, "no id or status_token: %s", r.body);
		snprintf(id, 32, "%s", v);
		snprintf(token, 64, "%s", t);
		secret_add(ss, t, 1);
		json_decref(j);
	}
	itest_resp_fini(&r);
	return status;
}

/* A request with raw extra headers; returns its status. */
static int request(const char *method, const char *path, const char *headers, const char *body)
{
	struct itest_resp r;
	int status;

	ck_assert_int_eq(
	    itest_http(srv.port, method, path, headers, body, body ? strlen(body) : 0, &r), 0);
	status = r.status;
	itest_resp_fini(&r);
	return status;
}

#define ADMIN_JSON "Authorization: Bearer " ITEST_TOKEN "\r\nContent-Type: application/json\r\n"

/* One number of a queue in GET /api/v1/admin/queues. */
static long long queue_num(const char *queue, const char *field)
{
	struct itest_resp r;
	json_error_t e;
	json_t *j, *q;
	long long v = -1;
	size_t i;

	ck_assert_int_eq(itest_admin_get(srv.port, "/api/v1/admin/queues", &r), 0);
	j = json_loads(r.body, 0, &e);
	ck_assert_msg(j != NULL, "not JSON: %s", r.body);
	json_array_foreach(json_object_get(j, "queues"), i, q)
	{
		if (!strcmp(json_string_value(json_object_get(q, "name")), queue))
			v = json_integer_value(json_object_get(q, field));
	}
	json_decref(j);
	itest_resp_fini(&r);
	return v;
}

static void expect_status(const char *id, const char *token, const char *want)
{
	char path[160];
	struct itest_resp r;

	snprintf(path, sizeof(path), "/api/v1/donations/%s?token=%s", id, token);
	ck_assert_int_eq(itest_http(srv.port, "GET", path, NULL, NULL, 0, &r), 0);
	ck_assert_msg(r.status == 200 && strstr(r.body, want), "%s: %d %s", id, r.status, r.body);
	itest_resp_fini(&r);
}

/* What an attacker tries: guessed bearer tokens, a token in the query,
 * Basic credentials, a staff console, an oversized header. Each is
 * refused. */
static void attacker(int port)
{
	char req[4096], pad[3200], *got;

	ck_assert_int_eq(request("GET", "/api/v1/admin/queues",
	                         "Authorization: Bearer " ATTACKER_BEARER "\r\n", NULL),
	                 401);
	ck_assert_int_eq(request("POST", "/api/v1/admin/campaigns/food/pause",
	                         "Authorization: Bearer " ATTACKER_BEARER "\r\n", ""),
	                 401);
	ck_assert_int_eq(request("GET", "/api/v1/admin/audit?token=" ATTACKER_QUERY, NULL, NULL),
	                 401);
	/* Basic base64("admin:" ATTACKER_BEARER) */
	ck_assert_int_eq(request("GET", "/api/v1/admin/jobs?queue=payments&state=dead",
	                         "Authorization: Basic "
	                         "YWRtaW46YXR0YWNrZXItZ3Vlc3MtMGI3ZDVmM2E5MWMyZTY0OA==\r\n",
	                         NULL),
	                 401);
	ck_assert_int_eq(
	    request("GET", "/api/v1/donations/dn_1?token=" ATTACKER_STATUS, NULL, NULL), 404);
	snprintf(req, sizeof(req),
	         "GET /live/console HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
	         "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	         "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: tally.console.v1\r\n"
	         "Authorization: Bearer " ATTACKER_CONSOLE "\r\n\r\n",
	         port);
	got = itest_raw(port, req, strlen(req), 3000 * itest_slowdown());
	ck_assert_ptr_nonnull(got);
	ck_assert_msg(strstr(got, " 401 "), "the console was not refused: %s", got);
	free(got);
	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	snprintf(req, sizeof(req),
	         "GET /api/v1/admin/queues HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
	         "Authorization: Bearer " ATTACKER_BIG "%s\r\n\r\n",
	         port, pad);
	got = itest_raw(port, req, strlen(req), 3000 * itest_slowdown());
	ck_assert_ptr_nonnull(got);
	ck_assert_msg(strstr(got, " 431 "), "the big header was not refused: %s", got);
	free(got);
}

START_TEST(a_session_logs_no_secret)
{
	struct secrets ss = {0};
	char *all = calloc(1, 1), args[160], userinfo[128], long_key[320], form[1024];
	char ada[32], ada_tok[64], bob[32], bob_tok[64], cy[32], cy_tok[64], dee[32], dee_tok[64];
	char path[160], body[256];

	ck_assert_ptr_nonnull(all);
	smtp_dir = tests_tmpdir();
	ck_assert_ptr_nonnull(smtp_dir);
	ck_assert_int_eq(itest_tool_start(&stripe, "stripe_standin.py", "--secret-key " STRIPE_KEY),
	                 0);
	ck_assert_int_eq(
	    itest_tool_start(&hook_ok, "webhook_receiver.py", "--secret " HOOK_SECRET_OK), 0);
	ck_assert_int_eq(itest_tool_start(&hook_fail, "webhook_receiver.py",
	                                  "--secret " HOOK_SECRET_FAIL " --fail-first 3"),
	                 0);
	snprintf(args, sizeof(args), "--dir %s --reject-rcpt reject-me", smtp_dir);
	ck_assert_int_eq(itest_tool_start(&smtp, "smtp_sink.py", args), 0);
	ck_assert_int_eq(setenv("STRIPE_SECRET_KEY", STRIPE_KEY, 1), 0);
	secret_add(&ss, ITEST_TOKEN, 1);
	secret_add(&ss, HOOK_SECRET_OK, 1);
	secret_add(&ss, HOOK_SECRET_FAIL, 1);
	secret_add(&ss, STRIPE_KEY, 1);
	secret_add(&ss, SMTP_PASSWORD, 1);
	secret_add(&ss, ATTACKER_BEARER, 1);
	secret_add(&ss, ATTACKER_QUERY, 1);
	secret_add(&ss, ATTACKER_CONSOLE, 1);
	secret_add(&ss, ATTACKER_BIG, 1);
	secret_add(&ss, ATTACKER_STATUS, 1);
	secret_add(&ss, NAME_ADA_TEXT, 0);
	secret_add(&ss, SURNAME_ADA, 0);
	secret_add(&ss, EMAIL_ADA, 0);
	secret_add(&ss, NAME_BOB, 0);
	secret_add(&ss, EMAIL_BOB, 0);
	secret_add(&ss, NAME_CY, 0);
	secret_add(&ss, EMAIL_CY, 0);
	secret_add(&ss, NAME_DEE, 0);
	secret_add(&ss, EMAIL_DEE, 0);
	secret_add(&ss, "idem-logs-ada-8d3f1a6c52e0b794", 1);
	secret_add(&ss, "idem-logs-bob-2c7e9b0f4a1d6358", 1);
	secret_add(&ss, "idem-logs-cy-f06b3d8a1e5c2947", 1);
	secret_add(&ss, "idem-logs-dee-91a4e7c3b6f0d258", 1);
	memset(long_key, 0, sizeof(long_key));
	snprintf(long_key, sizeof(long_key), "idem-logs-long-3e8c0a5f7b2d1946");
	memset(long_key + strlen(long_key), 'k', 300 - strlen(long_key));
	secret_add(&ss, long_key, 1);

	/* Run 1: SMTP without credentials; the sink refuses one donor. */
	start_server("");
	ck_assert_int_eq(itest_create_campaign(srv.port, "food", "USD", 100000), 201);
	ck_assert_int_eq(give(&ss, "idem-logs-ada-8d3f1a6c52e0b794", NAME_ADA, EMAIL_ADA,
	                      "tok_visa", ada, ada_tok),
	                 202);
	/* A retry replays; the same key with another body is refused. */
	ck_assert_int_eq(give(&ss, "idem-logs-ada-8d3f1a6c52e0b794", NAME_ADA, EMAIL_ADA,
	                      "tok_visa", NULL, NULL),
	                 202);
	ck_assert_int_eq(give(&ss, "idem-logs-ada-8d3f1a6c52e0b794", NAME_ADA, EMAIL_BOB,
	                      "tok_visa", NULL, NULL),
	                 422);
	ck_assert_int_eq(give(&ss, "idem-logs-bob-2c7e9b0f4a1d6358", NAME_BOB, EMAIL_BOB,
	                      "tok_chargeDeclined", bob, bob_tok),
	                 202);
	ck_assert_int_eq(
	    give(&ss, "idem-logs-cy-f06b3d8a1e5c2947", NAME_CY, EMAIL_CY, "tok_visa", cy, cy_tok),
	    202);
	ck_assert_int_eq(give(&ss, "idem-logs-dee-91a4e7c3b6f0d258", NAME_DEE, EMAIL_DEE,
	                      "tok_chargeDeclinedProcessingError", dee, dee_tok),
	                 202);
	/* Bad input carrying donors' data: a key too long, a body that is
	 * not JSON, one that fails validation. */
	ck_assert_int_eq(give(&ss, long_key, NAME_BOB, EMAIL_BOB, "tok_visa", NULL, NULL), 422);
	ck_assert_int_eq(request("POST", "/api/v1/campaigns/food/donations",
	                         "Content-Type: application/json\r\n",
	                         "{\"donor\":{\"email\":\"" EMAIL_BOB "\"}"),
	                 400);
	ck_assert_int_eq(
	    request("POST", "/api/v1/campaigns/food/donations",
	            "Content-Type: application/json\r\n",
	            "{\"amount_cents\":-5,\"currency\":\"USD\",\"donor\":{\"name\":\"" NAME_BOB
	            "\",\"email\":\"" EMAIL_BOB "@@\"},\"payment_token\":\"tok_visa\"}"),
	    422);
	attacker(srv.port);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	expect_status(ada, ada_tok, "\"succeeded\"");
	expect_status(bob, bob_tok, "\"failed\"");
	expect_status(cy, cy_tok, "\"succeeded\"");
	/* The error paths ran: the processing error failed an attempt (the
	 * next one finds the card gone), a receipt was refused for good,
	 * webhook deliveries failed. */
	expect_status(dee, dee_tok, "\"failed\"");
	ck_assert_int_ge(queue_num("payments", "failed"), 1);
	ck_assert_int_ge(queue_num("receipts", "dead"), 1);
	ck_assert_int_ge(queue_num("webhooks", "failed"), 3);
	ck_assert_int_eq(queue_num("webhooks", "dead"), 0);
	/* Staff at work: read a gift (with its donor), refund one, retry
	 * the dead receipt, pause and resume, read the audit. */
	snprintf(path, sizeof(path), "/api/v1/admin/donations/%s", ada);
	ck_assert_int_eq(request("GET", path, "Authorization: Bearer " ITEST_TOKEN "\r\n", NULL),
	                 200);
	snprintf(path, sizeof(path), "/api/v1/admin/donations/%s/refund", ada);
	snprintf(body, sizeof(body), "{\"reason\":\"requested by the donor\"}");
	ck_assert_int_eq(request("POST", path, ADMIN_JSON, body), 202);
	ck_assert_int_eq(
	    request("POST", "/api/v1/admin/queues/receipts/retry-dead", ADMIN_JSON, ""), 200);
	ck_assert_int_eq(request("POST", "/api/v1/admin/campaigns/food/pause", ADMIN_JSON, ""),
	                 200);
	ck_assert_int_eq(request("POST", "/api/v1/admin/campaigns/food/resume", ADMIN_JSON, ""),
	                 200);
	ck_assert_int_eq(request("GET", "/api/v1/admin/audit?limit=50",
	                         "Authorization: Bearer " ITEST_TOKEN "\r\n", NULL),
	                 200);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	expect_status(ada, ada_tok, "\"refunded\"");
	stop_and_collect(&all);

	/* Run 2, on the same database: the mail server now wants a login
	 * tally cannot make (the sink offers none), so every receipt fails;
	 * the password is in the SMTP URL. */
	snprintf(userinfo, sizeof(userinfo), "receipts:%s@", SMTP_PASSWORD);
	start_server(userinfo);
	ck_assert_int_eq(give(&ss, "idem-logs-ada-8d3f1a6c52e0b794", NAME_ADA, EMAIL_ADA,
	                      "tok_visa", NULL, NULL),
	                 202);
	ck_assert_int_eq(give(&ss, NULL, NAME_DEE, EMAIL_DEE, "tok_visa", dee, dee_tok), 202);
	ck_assert_int_eq(itest_settle(srv.port), 0);
	expect_status(dee, dee_tok, "\"succeeded\"");
	ck_assert_int_ge(queue_num("receipts", "dead"), 1);
	attacker(srv.port);
	stop_and_collect(&all);

	for (int i = 0; i < ss.n; i++) {
		const char *at = find_secret(all, ss.s[i], ss.token_like[i], form, sizeof(form));

		if (at) {
			const char *bol = at, *eol = strchr(at, '\n');

			while (bol > all && bol[-1] != '\n')
				bol--;
			ck_abort_msg("the log holds \"%s\" (as \"%s\") in: %.*s", ss.s[i], form,
			             (int)(eol ? eol - bol : (long)strlen(bol)), bol);
		}
	}
	secrets_fini(&ss);
	free(all);
}
END_TEST

Suite *logs_suite(void)
{
	Suite *s = suite_create("logs");
	TCase *unit = tcase_create("search");
	TCase *it = tcase_create("session");

	tcase_add_test(unit, search_finds_every_form);
	suite_add_tcase(s, unit);
	tcase_add_unchecked_fixture(it, tests_root_setup, tests_root_teardown);
	tcase_add_checked_fixture(it, setup, teardown);
	tcase_set_timeout(it, 90);
	tcase_add_test(it, a_session_logs_no_secret);
	suite_add_tcase(s, it);
	return s;
}
