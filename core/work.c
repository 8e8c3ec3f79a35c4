/* core/work.c - the job handlers (see work.h). */
#include "core/work.h"
#include "base/log.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void work_config_defaults(struct work_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->processor = "mock";
	cfg->stripe_url = "https://api.stripe.com";
	cfg->smtp_from = "receipts@localhost";
	cfg->outbox = "tally-outbox";
	cfg->org_name = "tally";
	cfg->tax_note = "No goods or services were provided in exchange for this gift.";
	cfg->timeout_ms = 10000;
}

static void result(struct job_run *r, enum job_result_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void result(struct job_run *r, enum job_result_kind kind, const char *fmt, ...)
{
	va_list ap;

	r->result.kind = kind;
	va_start(ap, fmt);
	vsnprintf(r->result.error, sizeof(r->result.error), fmt, ap);
	va_end(ap);
}

static size_t collect(char *data, size_t size, size_t n, void *ud)
{
	struct job_run *r = ud;

	/* Processor and receiver answers are small; keep at most 64 KiB. */
	if (r->resp.len + size * n > 65536)
		return size * n;
	return buf_append(&r->resp, data, size * n) ? 0 : size * n;
}

static int easy_setup(CURL *e, struct job_run *r, const struct work_config *cfg, const char *url)
{
	r->errbuf[0] = '\0';
	return curl_easy_setopt(e, CURLOPT_URL, url) || curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) ||
	       curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, cfg->timeout_ms) ||
	       curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf) ||
	       curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect) ||
	       curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
}

/* A new easy handle for r with the common options. NULL when out of
 * memory. */
static CURL *easy_for(struct job_run *r, const struct work_config *cfg, const char *url)
{
	CURL *e = curl_easy_init();

	if (e && easy_setup(e, r, cfg, url)) {
		curl_easy_cleanup(e);
		return NULL;
	}
	return e;
}

static int add_header(struct job_run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int add_header(struct job_run *r, const char *fmt, ...)
{
	char line[512];
	struct curl_slist *l;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	l = curl_slist_append(r->headers, line);
	if (!l)
		return -1;
	r->headers = l;
	return 0;
}

static long response_code(struct job_run *r)
{
	long code = 0;

	if (curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK)
		return 0;
	return code;
}

/* ---- payments: mock ---- */

static int mock_start(void *ctx, struct job_run *r)
{
	const struct work_config *cfg = ctx;
	const struct db_job_donation *d = &r->don;
	const char *tok = d->token;

	if (r->job->kind == JOB_REFUND) {
		r->result.kind = JOB_OK;
		snprintf(r->result.ref, sizeof(r->result.ref), "re_mock_dn_%lld", (long long)d->id);
	} else if (strcmp(d->status, "pending")) {
		/* Decided by an earlier attempt: nothing to charge again. */
		r->result.kind = JOB_OK;
		snprintf(r->result.ref, sizeof(r->result.ref), "%s", d->processor_ref);
	} else if (!strcmp(tok, "tok_chargeDeclined")) {
		result(r, JOB_FAIL, "card_declined: Your card was declined.");
	} else if (!strcmp(tok, "tok_chargeDeclinedProcessingError")) {
		result(r, JOB_RETRY,
		       "processing_error: An error occurred while processing the card.");
	} else if (strncmp(tok, "tok_", 4)) {
		result(r, JOB_FAIL, "invalid_payment_token: unknown payment token");
	} else {
		uint32_t x = 0;

		if (cfg->mock_fail_rate > 0 && util_random(&x, sizeof(x)) == 0 &&
		    (double)x / 4294967296.0 < cfg->mock_fail_rate)
			result(r, JOB_RETRY, "processing_error: simulated transient failure");
		else {
			r->result.kind = JOB_OK;
			/* The idempotency key decides the charge: the same
			 * donation always gets the same charge id. */
			snprintf(r->result.ref, sizeof(r->result.ref), "ch_mock_dn_%lld",
			         (long long)d->id);
		}
	}
	if (cfg->mock_latency_ms <= 0)
		return JOB_RUN_DONE;
	r->due_ns = util_mono_ns() + (uint64_t)cfg->mock_latency_ms * 1000000ull;
	return JOB_RUN_DELAY;
}

/* ---- payments: Stripe PaymentIntents ---- */

static const char *json_str(json_t *o, const char *path1, const char *path2)
{
	json_t *v = json_object_get(o, path1);

	if (path2)
		v = json_object_get(v, path2);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A capture is one PaymentIntent per gift, created without confirming
 * under a key made of the installation and donation ids (a replay returns
 * the same intent, and creating never charges), then confirmed under a key
 * per attempt. A PaymentIntent succeeds at most once, so no sequence of
 * retries, crashes and replays can charge a gift twice; a later attempt
 * that knows the intent reads it first (GET) and confirms only when it is
 * still unconfirmed. The intent's id goes back with every outcome, so the
 * writer stores it on the donation. */
enum { STRIPE_CREATE, STRIPE_GET, STRIPE_CONFIRM, STRIPE_REFUND };

static int stripe_request(struct job_run *r, int step);

/* Go on from an intent's status. pm_gone: the intent has no payment
 * method left (Stripe drops it when a payment fails). */
static int stripe_status(struct job_run *r, const char *status, int pm_gone, const char *why)
{
	int after_confirm = r->confirms > 0;

	if (!strcmp(status, "succeeded")) {
		r->result.kind = JOB_OK;
		return JOB_RUN_DONE;
	}
	if (!strcmp(status, "processing")) {
		result(r, JOB_RETRY, "%s is processing", r->result.ref);
		return JOB_RUN_DONE;
	}
	if (!strcmp(status, "canceled")) {
		result(r, JOB_FAIL, "canceled: %s was canceled", r->result.ref);
		return JOB_RUN_DONE;
	}
	if (!strcmp(status, "requires_payment_method") && pm_gone) {
		/* An earlier attempt's payment failed: a decline. */
		result(r, JOB_FAIL, "payment_failed: %s", why ? why : "the card was declined");
		return JOB_RUN_DONE;
	}
	if (after_confirm || (strcmp(status, "requires_confirmation") &&
	                      strcmp(status, "requires_payment_method"))) {
		/* requires_action and the like: a donor step a server cannot
		 * take. */
		result(r, JOB_FAIL, "%s: %s", status, r->result.ref);
		return JOB_RUN_DONE;
	}
	return stripe_request(r, STRIPE_CONFIRM);
}

static size_t stripe_header(char *data, size_t size, size_t n, void *ud)
{
	struct job_run *r = ud;

	if (size * n >= 20 && !strncasecmp(data, "Idempotent-Replayed:", 20) &&
	    memmem(data + 20, size * n - 20, "true", 4))
		r->req_off = 1; /* marks "this answer is a replay" */
	return size * n;
}

static int stripe_finish(struct job_run *r, CURLcode rc)
{
	long code = response_code(r);
	int replayed = r->req_off == 1, next = JOB_RUN_DONE;
	const char *msg, *ecode, *type, *id, *status;
	json_t *o;

	if (rc != CURLE_OK) {
		result(r, JOB_RETRY, "processor unreachable: %s",
		       r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
		return JOB_RUN_DONE;
	}
	o = json_loadb(r->resp.p ? r->resp.p : "", r->resp.len, 0, NULL);
	msg = json_str(o, "error", "message");
	ecode = json_str(o, "error", "code");
	type = json_str(o, "error", "type");
	id = json_str(o, "id", NULL);
	status = json_str(o, "status", NULL);
	if (code == 200 && r->step == STRIPE_REFUND) {
		r->result.kind = JOB_OK;
	} else if (code == 200 && (!id || !status)) {
		result(r, JOB_RETRY, "processor answered 200 without id or status");
	} else if (code == 200) {
		if (r->step != STRIPE_REFUND)
			snprintf(r->result.ref, sizeof(r->result.ref), "%s", id);
		/* A replayed creation shows the intent as it was then: read
		 * it as it is now before confirming. */
		json_t *pm = json_object_get(o, "payment_method");

		next = r->step == STRIPE_CREATE && replayed && strcmp(status, "succeeded")
		           ? stripe_request(r, STRIPE_GET)
		           : stripe_status(r, status, !pm || json_is_null(pm),
		                           json_str(json_object_get(o, "last_payment_error"),
		                                    "message", NULL));
	} else if (r->step == STRIPE_REFUND && ecode && !strcmp(ecode, "charge_already_refunded")) {
		r->result.kind = JOB_OK; /* refunded before (another attempt, or by hand) */
	} else if (code == 400 && ecode && !strcmp(ecode, "payment_intent_unexpected_state")) {
		/* Confirmed meanwhile (an attempt cut short): see how it went. */
		next = r->step == STRIPE_GET
		           ? (result(r, JOB_RETRY, "unexpected state"), JOB_RUN_DONE)
		           : stripe_request(r, STRIPE_GET);
	} else if (code == 402 && ecode && !strcmp(ecode, "processing_error")) {
		result(r, JOB_RETRY, "processing_error: %s", msg ? msg : "processing error");
	} else if (code == 402) {
		const char *decline = json_str(o, "error", "decline_code");

		result(r, JOB_FAIL, "%s: %s",
		       decline ? decline
		       : ecode ? ecode
		               : "card_error",
		       msg ? msg : "declined");
	} else if ((code == 400 || code == 404) && r->step != STRIPE_GET) {
		/* The request itself is wrong (currency, amount, unknown
		 * intent): trying again cannot help. */
		result(r, JOB_FAIL, "%s: %s", type ? type : "invalid_request_error",
		       msg ? msg : "rejected");
	} else {
		/* 401/403 (key), 409, 429, 5xx, an intent that cannot be read:
		 * transient or fixable by staff; retried, then dead. */
		result(r, JOB_RETRY, "processor HTTP %ld: %s", code, msg ? msg : "no message");
	}
	json_decref(o);
	return next;
}

static int form_add(struct buf *b, CURL *e, const char *key, const char *value)
{
	char *esc = curl_easy_escape(e, value, 0);
	int rc;

	if (!esc)
		return -1;
	rc = buf_printf(b, "%s%s=%s", b->len ? "&" : "", key, esc);
	curl_free(esc);
	return rc;
}

/* Set up step's request on r->easy (new, or reset for a second request of
 * the same attempt). Returns JOB_RUN_CURL, or JOB_RUN_DONE with a result. */
static int stripe_request(struct job_run *r, int step)
{
	const struct work_config *cfg = r->ctx;
	const struct db_job_donation *d = &r->don;
	char url[1024], num[32], cur[4], dn[32];
	int rc = 0;

	snprintf(dn, sizeof(dn), "dn_%lld", (long long)d->id);
	switch (step) {
	case STRIPE_CREATE:
		snprintf(url, sizeof(url), "%s/v1/payment_intents", cfg->stripe_url);
		break;
	case STRIPE_GET:
		snprintf(url, sizeof(url), "%s/v1/payment_intents/%s", cfg->stripe_url,
		         r->result.ref);
		break;
	case STRIPE_CONFIRM:
		/* At most one charge request per attempt: an intent that
		 * changes under us is looked at again by the next attempt. */
		if (r->confirms++) {
			result(r, JOB_RETRY, "%s changed during the attempt", r->result.ref);
			return JOB_RUN_DONE;
		}
		snprintf(url, sizeof(url), "%s/v1/payment_intents/%s/confirm", cfg->stripe_url,
		         r->result.ref);
		break;
	default:
		snprintf(url, sizeof(url), "%s/v1/refunds", cfg->stripe_url);
	}
	if (r->easy) {
		curl_easy_reset(r->easy);
		curl_slist_free_all(r->headers);
		r->headers = NULL;
		r->req.len = 0;
		r->resp.len = 0;
		if (easy_setup(r->easy, r, cfg, url)) {
			result(r, JOB_RETRY, "curl setup failed");
			return JOB_RUN_DONE;
		}
	} else if (!(r->easy = easy_for(r, cfg, url))) {
		result(r, JOB_RETRY, "out of memory");
		return JOB_RUN_DONE;
	}
	r->step = step;
	r->req_off = 0;
	if (step == STRIPE_CREATE) {
		for (int i = 0; i < 3; i++)
			cur[i] = (char)(d->currency[i] | 0x20);
		cur[3] = '\0';
		snprintf(num, sizeof(num), "%lld", (long long)d->amount_cents);
		rc |= form_add(&r->req, r->easy, "amount", num);
		rc |= form_add(&r->req, r->easy, "currency", cur);
		if (!strncmp(d->token, "tok_", 4)) {
			rc |= form_add(&r->req, r->easy, "payment_method_data[type]", "card");
			rc |= form_add(&r->req, r->easy, "payment_method_data[card][token]",
			               d->token);
		} else {
			rc |= form_add(&r->req, r->easy, "payment_method", d->token);
		}
		rc |= form_add(&r->req, r->easy, "payment_method_types[]", "card");
		rc |= form_add(&r->req, r->easy, "confirm", "false");
		rc |= form_add(&r->req, r->easy, "metadata[donation_id]", dn);
		/* Per attempt: Stripe replays a stored 500 for a day. A crash
		 * or a failed commit leaves attempts unchanged, so the next try
		 * replays this same intent; an intent whose id we never learned
		 * was never confirmed. */
		rc |= add_header(r, "Idempotency-Key: %s-%s-create-%d", cfg->install_id, dn,
		                 r->job->attempts + 1);
	} else if (step == STRIPE_CONFIRM) {
		rc |= add_header(r, "Idempotency-Key: %s-%s-confirm-%d", cfg->install_id, dn,
		                 r->job->attempts + 1);
	} else if (step == STRIPE_REFUND) {
		rc |= form_add(&r->req, r->easy, "payment_intent", d->processor_ref);
		rc |= form_add(&r->req, r->easy, "metadata[donation_id]", dn);
		rc |= add_header(r, "Idempotency-Key: %s-%s-refund", cfg->install_id, dn);
	}
	rc |= add_header(r, "Authorization: Bearer %s", cfg->stripe_key ? cfg->stripe_key : "");
	rc |= add_header(r, "Stripe-Version: 2024-06-20");
	rc |= add_header(r, "Expect:");
	if (step != STRIPE_GET) {
		rc |= add_header(r, "Content-Type: application/x-www-form-urlencoded");
		rc |= curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->req.p ? r->req.p : "") ||
		      curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)r->req.len);
	}
	if (rc || curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers) ||
	    curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, stripe_header) ||
	    curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r)) {
		result(r, JOB_RETRY, "out of memory");
		return JOB_RUN_DONE;
	}
	r->finish = stripe_finish;
	return JOB_RUN_CURL;
}

static int stripe_start(void *ctx, struct job_run *r)
{
	const struct db_job_donation *d = &r->don;

	r->ctx = ctx;
	if (r->job->kind == JOB_REFUND) {
		if (strncmp(d->processor_ref, "pi_", 3)) {
			result(r, JOB_FAIL, "no PaymentIntent to refund (reference '%s')",
			       d->processor_ref);
			return JOB_RUN_DONE;
		}
		return stripe_request(r, STRIPE_REFUND);
	}
	snprintf(r->result.ref, sizeof(r->result.ref), "%s", d->processor_ref);
	if (strcmp(d->status, "pending")) {
		r->result.kind = JOB_OK; /* decided by an earlier attempt */
		return JOB_RUN_DONE;
	}
	return stripe_request(r, !strncmp(d->processor_ref, "pi_", 3) ? STRIPE_GET : STRIPE_CREATE);
}

/* ---- receipts ---- */

static int b64_word(struct buf *out, const char *s)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	int rc = buf_puts(out, "=?UTF-8?B?");

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
		             (i + 2 < n ? p[i + 2] : 0);
		char q[4] = {tab[v >> 18 & 63], tab[v >> 12 & 63],
		             i + 1 < n ? tab[v >> 6 & 63] : '=', i + 2 < n ? tab[v & 63] : '='};

		rc |= buf_append(out, q, 4);
	}
	return rc | buf_puts(out, "?=");
}

/* A header value: as is when plain ASCII, else RFC 2047 encoded. Control
 * characters never reach a header (no header injection). */
static int header_text(struct buf *out, const char *s)
{
	char clean[1024];
	size_t n = 0;
	int ascii = 1;

	for (const unsigned char *p = (const unsigned char *)s; *p && n + 1 < sizeof(clean); p++) {
		if (*p < 0x20 || *p == 0x7f)
			continue;
		ascii &= *p < 0x80;
		clean[n++] = (char)*p;
	}
	clean[n] = '\0';
	return ascii ? buf_puts(out, clean) : b64_word(out, clean);
}

int work_receipt_message(const struct work_config *cfg, const struct db_job_donation *d,
                         struct buf *out)
{
	char date[64], ts[32];
	time_t now = time(NULL);
	struct tm tm;
	int rc = 0;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	rc |= buf_puts(out, "From: ");
	rc |= header_text(out, cfg->smtp_from);
	rc |= buf_puts(out, "\r\nTo: ");
	rc |= header_text(out, d->email);
	rc |= buf_puts(out, "\r\nSubject: ");
	rc |= buf_puts(out, "Thank you for your gift to ");
	rc |= header_text(out, d->campaign_name);
	rc |= buf_printf(out,
	                 "\r\nDate: %s\r\nMessage-ID: <receipt-dn_%lld@tally>\r\n"
	                 "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
	                 "Content-Transfer-Encoding: 8bit\r\n\r\n",
	                 date, (long long)d->id);
	rc |= buf_printf(out, "Dear %s,\r\n\r\nThank you for your gift to %s.\r\n\r\n",
	                 d->name[0] ? d->name : "friend", d->campaign_name);
	rc |= buf_printf(out,
	                 "  Campaign:     %s\r\n  Amount:       %s %lld.%02lld\r\n"
	                 "  Date:         %s\r\n  Donation id:  dn_%lld\r\n\r\n",
	                 d->campaign_slug, d->currency, (long long)(d->amount_cents / 100),
	                 (long long)(d->amount_cents % 100),
	                 util_rfc3339(d->created_at, ts, sizeof(ts)), (long long)d->id);
	if (cfg->tax_note && cfg->tax_note[0])
		rc |= buf_printf(out, "%s\r\n\r\n", cfg->tax_note);
	rc |= buf_printf(out, "%s\r\n", cfg->org_name ? cfg->org_name : "");
	return rc ? -ENOMEM : 0;
}

/* Write all of buf to fd. Returns 0 or -errno. */
static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Write the receipt into the outbox under its final name, whole or not at
 * all: an unnamed file (O_TMPFILE) linked in once written, or, where the
 * file system has no O_TMPFILE, a temporary name linked in. The link fails
 * if the name exists, so a receipt is written once. */
static void outbox_write(const struct work_config *cfg, struct job_run *r)
{
	char path[4096], tmp[4200];
	int fd, rc;

	snprintf(path, sizeof(path), "%s/receipt-dn_%lld.eml", cfg->outbox, (long long)r->don.id);
	fd = open(cfg->outbox, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0640);
	if (fd >= 0) {
		char proc[64];

		rc = write_all(fd, r->req.p, r->req.len);
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		if (!rc && linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) &&
		    errno != EEXIST)
			rc = -errno;
		if (close(fd) && !rc)
			rc = -errno;
		if (!rc) {
			r->result.kind = JOB_OK;
			return;
		}
		if (rc != -ENOENT) { /* ENOENT: no /proc here; use a name */
			result(r, JOB_RETRY, "%s: %s", path, strerror(-rc));
			return;
		}
		errno = EOPNOTSUPP;
	}
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
		result(r, JOB_RETRY, "%s: %s", cfg->outbox, strerror(errno));
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s/.tmp-%lld-%d", cfg->outbox, (long long)r->job->id,
	         (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0) {
		result(r, JOB_RETRY, "%s: %s", tmp, strerror(errno));
		return;
	}
	rc = write_all(fd, r->req.p, r->req.len);
	if (close(fd) && !rc)
		rc = -errno;
	if (!rc && link(tmp, path) && errno != EEXIST)
		rc = -errno;
	if (unlink(tmp))
		log_msg(LOG_WARN, "receipts.unlink_failed", "%s: %s", tmp, strerror(errno));
	if (rc)
		result(r, JOB_RETRY, "%s: %s", path, strerror(-rc));
	else
		r->result.kind = JOB_OK;
}

static size_t smtp_read(char *dst, size_t size, size_t n, void *ud)
{
	struct job_run *r = ud;
	size_t left = r->req.len - r->req_off, k = size * n < left ? size * n : left;

	memcpy(dst, r->req.p + r->req_off, k);
	r->req_off += k;
	return k;
}

static int smtp_finish(struct job_run *r, CURLcode rc)
{
	long code = response_code(r);

	if (rc == CURLE_OK)
		r->result.kind = JOB_OK;
	else if (code >= 500 && code < 600)
		/* The server refused for good (no such mailbox...). */
		result(r, JOB_FAIL, "SMTP %ld: %s", code, r->errbuf[0] ? r->errbuf : "rejected");
	else
		result(r, JOB_RETRY, "SMTP %ld: %s", code,
		       r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
	return JOB_RUN_DONE;
}

static int receipt_start(void *ctx, struct job_run *r)
{
	const struct work_config *cfg = ctx;
	char from[300];
	struct curl_slist *l;

	if (r->don.receipt_sent_at) {
		r->result.kind = JOB_OK; /* sent before */
		return JOB_RUN_DONE;
	}
	if (strcmp(r->don.status, "succeeded") || !r->don.email[0]) {
		r->result.kind = JOB_OK; /* refunded meanwhile: nothing to thank for */
		snprintf(r->result.ref, sizeof(r->result.ref), "skipped");
		return JOB_RUN_DONE;
	}
	if (work_receipt_message(cfg, &r->don, &r->req)) {
		result(r, JOB_RETRY, "out of memory");
		return JOB_RUN_DONE;
	}
	if (!cfg->smtp_url) {
		outbox_write(cfg, r);
		return JOB_RUN_DONE;
	}
	r->easy = easy_for(r, cfg, cfg->smtp_url);
	snprintf(from, sizeof(from), "<%s>", cfg->smtp_from);
	l = curl_slist_append(NULL, r->don.email);
	if (!r->easy || !l) {
		curl_slist_free_all(l);
		result(r, JOB_RETRY, "out of memory");
		return JOB_RUN_DONE;
	}
	r->rcpt = l;
	if (curl_easy_setopt(r->easy, CURLOPT_MAIL_FROM, from) ||
	    curl_easy_setopt(r->easy, CURLOPT_MAIL_RCPT, r->rcpt) ||
	    curl_easy_setopt(r->easy, CURLOPT_READFUNCTION, smtp_read) ||
	    curl_easy_setopt(r->easy, CURLOPT_READDATA, r) ||
	    curl_easy_setopt(r->easy, CURLOPT_UPLOAD, 1L) ||
	    curl_easy_setopt(r->easy, CURLOPT_INFILESIZE, (long)r->req.len)) {
		result(r, JOB_RETRY, "curl setup failed");
		return JOB_RUN_DONE;
	}
	r->finish = smtp_finish;
	return JOB_RUN_CURL;
}

/* ---- webhooks ---- */

int work_signature(const char *secret, long long t, const char *body, size_t len, char *out,
                   size_t cap)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char prefix[32];
	int n = snprintf(prefix, sizeof(prefix), "%lld.", t);
	struct buf msg = {0};
	size_t k;

	if (buf_append(&msg, prefix, (size_t)n) || buf_append(&msg, body, len))
		goto fail;
	if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg.p, msg.len,
	          md, &mdlen))
		goto fail;
	k = (size_t)snprintf(out, cap, "t=%lld,v1=", t);
	if (k + mdlen * 2 + 1 > cap)
		goto fail;
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(out + k + 2 * i, 3, "%02x", md[i]);
	buf_fini(&msg);
	return 0;
fail:
	buf_fini(&msg);
	return -1;
}

int work_event_body(enum job_kind kind, const struct db_job_donation *d, int64_t created_at,
                    struct buf *out)
{
	const char *type = kind == JOB_HOOK_SUCCEEDED ? "donation.succeeded"
	                   : kind == JOB_HOOK_FAILED  ? "donation.failed"
	                                              : "donation.refunded";
	const char *status = type + 9;
	char ts[32], ts2[32];
	int rc = 0;

	rc |= buf_printf(out,
	                 "{\"id\":\"evt_%lld_%s\",\"type\":\"%s\",\"created\":\"%s\","
	                 "\"data\":{\"id\":\"dn_%lld\",\"campaign\":",
	                 (long long)d->id, status, type, util_rfc3339(created_at, ts, sizeof(ts)),
	                 (long long)d->id);
	rc |= buf_json_string(out, d->campaign_slug);
	rc |= buf_printf(out, ",\"status\":\"%s\",\"amount_cents\":%lld,\"currency\":\"%s\"",
	                 status, (long long)d->amount_cents, d->currency);
	rc |= buf_puts(out, ",\"reason\":");
	rc |= kind == JOB_HOOK_SUCCEEDED || !d->reason[0] ? buf_puts(out, "null")
	                                                  : buf_json_string(out, d->reason);
	rc |= buf_puts(out, ",\"donor\":{\"name\":");
	rc |= buf_json_string(out, d->name);
	rc |= buf_puts(out, ",\"email\":");
	rc |= buf_json_string(out, d->email);
	rc |= buf_printf(out, "},\"anonymous\":%s,\"message\":", d->anonymous ? "true" : "false");
	rc |= buf_json_string(out, d->message);
	rc |= buf_printf(out, ",\"created_at\":\"%s\"}}",
	                 util_rfc3339(d->created_at, ts2, sizeof(ts2)));
	return rc ? -ENOMEM : 0;
}

static int webhook_finish(struct job_run *r, CURLcode rc)
{
	long code = response_code(r);

	if (rc != CURLE_OK)
		result(r, JOB_RETRY, "endpoint unreachable: %s",
		       r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
	else if (code >= 200 && code < 300)
		r->result.kind = JOB_OK;
	else
		result(r, JOB_RETRY, "endpoint answered HTTP %ld", code);
	return JOB_RUN_DONE;
}

static int webhook_start(void *ctx, struct job_run *r)
{
	const struct work_config *cfg = ctx;
	int ep = r->job->endpoint, rc = 0;
	char sig[160];

	if (ep >= cfg->n_webhooks) {
		result(r, JOB_FAIL, "the endpoint is no longer configured");
		return JOB_RUN_DONE;
	}
	if (work_event_body((enum job_kind)r->job->kind, &r->don, r->job->created_at, &r->req) ||
	    work_signature(cfg->webhook_secret[ep], (long long)time(NULL), r->req.p, r->req.len,
	                   sig, sizeof(sig))) {
		result(r, JOB_RETRY, "out of memory");
		return JOB_RUN_DONE;
	}
	r->easy = easy_for(r, cfg, cfg->webhook_url[ep]);
	if (!r->easy) {
		result(r, JOB_RETRY, "out of memory");
		return JOB_RUN_DONE;
	}
	rc |= add_header(r, "Content-Type: application/json");
	rc |= add_header(r, "Tally-Signature: %s", sig);
	rc |= add_header(r, "Tally-Event-Id: evt_%lld_%s", (long long)r->don.id,
	                 job_kind_names[r->job->kind] + 9);
	rc |= add_header(r, "User-Agent: tally/" TALLY_VERSION);
	rc |= add_header(r, "Expect:");
	if (rc || curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers) ||
	    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->req.p) ||
	    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)r->req.len)) {
		result(r, JOB_RETRY, "curl setup failed");
		return JOB_RUN_DONE;
	}
	r->finish = webhook_finish;
	return JOB_RUN_CURL;
}

/* ---- setup ---- */

int work_setup(const struct work_config *cfg, struct jobs_config *jc, char *err, size_t errcap)
{
	if (!strcmp(cfg->processor, "mock")) {
		jc->handler[JOB_PAYMENTS].start = mock_start;
	} else if (!strcmp(cfg->processor, "stripe")) {
		if (!cfg->stripe_key || !cfg->stripe_key[0]) {
			snprintf(err, errcap,
			         "--processor stripe needs the secret key in STRIPE_SECRET_KEY");
			return -EINVAL;
		}
		jc->handler[JOB_PAYMENTS].start = stripe_start;
	} else {
		snprintf(err, errcap, "unknown processor '%s' (mock or stripe)", cfg->processor);
		return -EINVAL;
	}
	if (cfg->mock_fail_rate < 0 || cfg->mock_fail_rate > 1) {
		snprintf(err, errcap, "--mock-fail-rate must be between 0 and 1");
		return -EINVAL;
	}
	if (!cfg->smtp_url && mkdir(cfg->outbox, 0750) && errno != EEXIST) {
		snprintf(err, errcap, "receipt outbox %s: %s", cfg->outbox, strerror(errno));
		return -errno;
	}
	for (int i = 0; i < cfg->n_webhooks; i++) {
		if (!cfg->webhook_secret[i] || !cfg->webhook_secret[i][0]) {
			snprintf(err, errcap, "webhook %s has no secret", cfg->webhook_url[i]);
			return -EINVAL;
		}
		jc->endpoint[i] = cfg->webhook_url[i];
	}
	jc->n_endpoints = cfg->n_webhooks;
	for (int q = 0; q < JOB_QUEUES; q++)
		jc->handler[q].ctx = (void *)cfg;
	jc->handler[JOB_RECEIPTS].start = receipt_start;
	jc->handler[JOB_WEBHOOKS].start = webhook_start;
	return 0;
}
