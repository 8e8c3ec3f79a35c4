/* core/processor.c - capture and refund a gift through a processor
 * adapter: the mock (no network) or Stripe PaymentIntents.
 *
 * DESIGN
 * A payments job runs at least once, so a capture must never charge a gift
 * twice however attempts repeat, crash or replay; both adapters key the
 * charge on the donation:
 * - Mock: the answer is a function of the donation and its token (a test
 *   token chooses a decline or a transient error); the charge id is
 *   ch_mock_dn_<id>, the refund id re_mock_dn_<id>, the same on every try.
 * - Stripe: one PaymentIntent per gift, created without confirming under
 *   an idempotency key made of the installation and donation ids and the
 *   attempt (a replay returns the same intent, and creating never charges),
 *   then confirmed under a key per attempt, at most once per attempt. A
 *   PaymentIntent succeeds at most once; a later attempt that knows the
 *   intent reads it first (GET) and confirms only when it is still
 *   unconfirmed. The intent's id goes back with every outcome, so the writer
 *   stores it on the donation. A refund is keyed on the donation alone.
 * A capture whose donation is no longer pending was decided by an earlier
 * attempt: it answers that outcome again and charges nothing.
 *
 * State: a Stripe attempt owns a struct stripe_attempt (r->state), which
 * lives until the worker ends the attempt; the mock needs none.
 */
#include "core/processor.h"
#include "core/shield.h"
#include "core/transfer.h"
#include "core/work.h"
#include "base/log.h"
#include "base/util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the shield (core/shield.h) ---- */

/* Before a capture reaches the processor: 1 when the shield refuses it
 * (its address or email was blocked since it was admitted: r->result
 * says why), else 0. */
static int shield_refuses(const struct work_config *cfg, struct job_run *r)
{
	char why[96];

	if (r->job->kind != JOB_CAPTURE || strcmp(r->don.status, "pending") ||
	    !shield_capture_ok(cfg->shield, r->don.id, r->don.email, util_now_ms(), why,
	                       sizeof(why)))
		return 0;
	work_result(r, JOB_FAIL, "too_many_attempts: not sent to the processor: %s", why);
	return 1;
}

void processor_ended(void *ctx, const struct job_run *r)
{
	const struct work_config *cfg = ctx;

	if (r->job->kind == JOB_CAPTURE && r->result.kind != JOB_RETRY)
		shield_outcome(cfg->shield, r->don.id, r->don.email, r->result.fingerprint,
		               r->result.kind == JOB_FAIL, util_now_ms());
}

/* ---- mock ---- */

/* The mock's cards. Every test token is a card of its own, with the
 * fingerprint fp_<name> (tok_visa: fp_visa), as Stripe's test tokens
 * are; tok_card_<ID> is card ID, which succeeds, and
 * tok_card_<ID>_declined the same card declined (ID: 1 to 32 letters or
 * digits), so a test can make floods of distinct cards. Returns 0 with
 * fp and *declined set, or -1 for a tok_card_ token of another form. */
static int mock_card(const char *tok, char *fp, size_t cap, int *declined)
{
	const char *id = tok + 9, *end;
	size_t n;

	*declined = !strcmp(tok, "tok_chargeDeclined");
	if (strncmp(tok, "tok_card_", 9)) {
		snprintf(fp, cap, "fp_%.40s", tok + 4);
		return 0;
	}
	n = strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
	end = id + n;
	if (n < 1 || n > 32 || (*end && strcmp(end, "_declined")))
		return -1;
	*declined = *end != '\0';
	snprintf(fp, cap, "fp_%.*s", (int)n, id);
	return 0;
}

int processor_mock_start(void *ctx, struct job_run *r)
{
	const struct work_config *cfg = ctx;
	const struct db_job_donation *d = &r->don;
	const char *tok = d->token;
	char fp[48] = "";
	int declined = 0;
	int known = !strncmp(tok, "tok_", 4) && !mock_card(tok, fp, sizeof(fp), &declined);

	if (shield_refuses(cfg, r)) {
		fp[0] = '\0';
	} else if (r->job->kind == JOB_REFUND) {
		r->result.kind = JOB_OK;
		snprintf(r->result.ref, sizeof(r->result.ref), "re_mock_dn_%lld", (long long)d->id);
	} else if (strcmp(d->status, "pending")) {
		/* Decided by an earlier attempt: nothing to charge again. */
		r->result.kind = JOB_OK;
		snprintf(r->result.ref, sizeof(r->result.ref), "%s", d->processor_ref);
	} else if (declined) {
		work_result(r, JOB_FAIL, "card_declined: Your card was declined.");
	} else if (!strcmp(tok, "tok_chargeDeclinedProcessingError")) {
		work_result(r, JOB_RETRY,
		            "processing_error: An error occurred while processing the card.");
	} else if (!known) {
		work_result(r, JOB_FAIL, "invalid_payment_token: unknown payment token");
	} else {
		uint32_t x = 0;

		if (cfg->mock_fail_rate > 0 && util_random(&x, sizeof(x)) == 0 &&
		    (double)x / 4294967296.0 < cfg->mock_fail_rate)
			work_result(r, JOB_RETRY, "processing_error: simulated transient failure");
		else {
			r->result.kind = JOB_OK;
			/* The idempotency key decides the charge: the same
			 * donation always gets the same charge id. */
			snprintf(r->result.ref, sizeof(r->result.ref), "ch_mock_dn_%lld",
			         (long long)d->id);
			/* What a processor would be asked to charge: the gift
			 * and the fee its donor covers (a test reads it; only
			 * for covered fees, so a plain gift costs no log line). */
			if (d->fee_cents)
				log_msg(LOG_INFO, "processor.mock_charge",
				        "dn_%lld: charged %lld %s (gift %lld + fee %lld)",
				        (long long)d->id,
				        (long long)(d->amount_cents + d->fee_cents), d->currency,
				        (long long)d->amount_cents, (long long)d->fee_cents);
		}
	}
	snprintf(r->result.fingerprint, sizeof(r->result.fingerprint), "%s", fp);
	if (cfg->mock_latency_ms <= 0)
		return JOB_RUN_DONE;
	r->due_ns = util_mono_ns() + (uint64_t)cfg->mock_latency_ms * 1000000ull;
	return JOB_RUN_DELAY;
}

/* ---- Stripe PaymentIntents ---- */

enum { STRIPE_CREATE, STRIPE_GET, STRIPE_SIGNALS, STRIPE_CONFIRM, STRIPE_REFUND };

/* One Stripe attempt: up to three requests on the same easy handle
 * (create or get, then confirm, or get after an unexpected state). */
struct stripe_attempt {
	struct transfer t;
	const struct work_config *cfg;
	int step;        /* STRIPE_*: the request in flight */
	int confirms;    /* charges asked for in this attempt (at most one) */
	int replayed;    /* the answer said Idempotent-Replayed: true */
	struct buf form; /* the request's form body */
	int has_client;  /* the shield still holds the donor's client */
	struct shield_client client;
};

static void stripe_attempt_free(void *state)
{
	struct stripe_attempt *a = state;

	transfer_fini(&a->t);
	buf_fini(&a->form);
	free(a);
}

static const char *json_str(json_t *o, const char *path1, const char *path2)
{
	json_t *v = json_object_get(o, path1);

	if (path2)
		v = json_object_get(v, path2);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int stripe_request(struct job_run *r, int step);
static const char *stripe_fingerprint(json_t *o);

/* Go on from an intent's status. pm_gone: the intent has no payment
 * method left (Stripe drops it when a payment fails). */
static int stripe_status(struct job_run *r, const char *status, int pm_gone, const char *why)
{
	const struct stripe_attempt *a = r->state;
	int after_confirm = a->confirms > 0;

	if (!strcmp(status, "succeeded")) {
		r->result.kind = JOB_OK;
		return JOB_RUN_DONE;
	}
	if (!strcmp(status, "processing")) {
		work_result(r, JOB_RETRY, "%s is processing", r->result.ref);
		return JOB_RUN_DONE;
	}
	if (!strcmp(status, "canceled")) {
		work_result(r, JOB_FAIL, "canceled: %s was canceled", r->result.ref);
		return JOB_RUN_DONE;
	}
	if (!strcmp(status, "requires_payment_method") && pm_gone) {
		/* An earlier attempt's payment failed: a decline. */
		work_result(r, JOB_FAIL, "payment_failed: %s", why ? why : "the card was declined");
		return JOB_RUN_DONE;
	}
	if (after_confirm || (strcmp(status, "requires_confirmation") &&
	                      strcmp(status, "requires_payment_method"))) {
		/* requires_action and the like: a donor step a server cannot
		 * take. */
		work_result(r, JOB_FAIL, "%s: %s", status, r->result.ref);
		return JOB_RUN_DONE;
	}
	/* A new intent gets the donor's client signals before it is
	 * confirmed (see add_signals). */
	return stripe_request(r, a->step == STRIPE_CREATE && !a->replayed && a->has_client
	                             ? STRIPE_SIGNALS
	                             : STRIPE_CONFIRM);
}

static size_t stripe_header(char *data, size_t size, size_t n, void *ud)
{
	struct stripe_attempt *a = ud;

	if (size * n >= 20 && !strncasecmp(data, "Idempotent-Replayed:", 20) &&
	    memmem(data + 20, size * n - 20, "true", 4))
		a->replayed = 1;
	return size * n;
}

static int stripe_finish(struct job_run *r, CURLcode rc)
{
	const struct stripe_attempt *a = r->state;
	long code = transfer_code(r->easy);
	int replayed = a->replayed, next = JOB_RUN_DONE;
	const char *msg, *ecode, *type, *id, *status;
	json_t *o;

	if (a->step == STRIPE_SIGNALS) {
		/* Signals help Radar; a gift does not wait on them. */
		if (rc != CURLE_OK || code != 200)
			log_msg(LOG_WARN, "processor.signals_failed",
			        "dn_%lld: client signals not added to %s (HTTP %ld)",
			        (long long)r->don.id, r->result.ref, code);
		return stripe_request(r, STRIPE_CONFIRM);
	}
	if (rc != CURLE_OK) {
		work_result(r, JOB_RETRY, "processor unreachable: %s", transfer_error(&a->t, rc));
		return JOB_RUN_DONE;
	}
	o = json_loadb(a->t.resp.p ? a->t.resp.p : "", a->t.resp.len, 0, NULL);
	msg = json_str(o, "error", "message");
	ecode = json_str(o, "error", "code");
	type = json_str(o, "error", "type");
	id = json_str(o, "id", NULL);
	status = json_str(o, "status", NULL);
	if (code == 200 && a->step == STRIPE_REFUND) {
		r->result.kind = JOB_OK;
	} else if (code == 200 && (!id || !status)) {
		work_result(r, JOB_RETRY, "processor answered 200 without id or status");
	} else if (code == 200) {
		if (a->step != STRIPE_REFUND)
			snprintf(r->result.ref, sizeof(r->result.ref), "%s", id);
		/* A replayed creation shows the intent as it was then: read
		 * it as it is now before confirming. */
		json_t *pm = json_object_get(o, "payment_method");

		next = a->step == STRIPE_CREATE && replayed && strcmp(status, "succeeded")
		           ? stripe_request(r, STRIPE_GET)
		           : stripe_status(r, status, !pm || json_is_null(pm),
		                           json_str(json_object_get(o, "last_payment_error"),
		                                    "message", NULL));
	} else if (a->step == STRIPE_REFUND && ecode && !strcmp(ecode, "charge_already_refunded")) {
		r->result.kind = JOB_OK; /* refunded before (another attempt, or by hand) */
	} else if (code == 400 && ecode && !strcmp(ecode, "payment_intent_unexpected_state")) {
		/* Confirmed meanwhile (an attempt cut short): see how it went. */
		next = a->step == STRIPE_GET
		           ? (work_result(r, JOB_RETRY, "unexpected state"), JOB_RUN_DONE)
		           : stripe_request(r, STRIPE_GET);
	} else if (code == 402 && ecode && !strcmp(ecode, "processing_error")) {
		work_result(r, JOB_RETRY, "processing_error: %s", msg ? msg : "processing error");
	} else if (code == 402) {
		const char *decline = json_str(o, "error", "decline_code");

		work_result(r, JOB_FAIL, "%s: %s",
		            decline ? decline
		            : ecode ? ecode
		                    : "card_error",
		            msg ? msg : "declined");
	} else if ((code == 400 || code == 404) && a->step != STRIPE_GET) {
		/* The request itself is wrong (currency, amount, unknown
		 * intent): trying again cannot help. */
		work_result(r, JOB_FAIL, "%s: %s", type ? type : "invalid_request_error",
		            msg ? msg : "rejected");
	} else {
		/* 401/403 (key), 409, 429, 5xx, an intent that cannot be read:
		 * transient or fixable by staff; retried, then dead. */
		work_result(r, JOB_RETRY, "processor HTTP %ld: %s", code, msg ? msg : "no message");
	}
	if (next == JOB_RUN_DONE)
		snprintf(r->result.fingerprint, sizeof(r->result.fingerprint), "%s",
		         stripe_fingerprint(o));
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

/* The donor's client as Stripe Radar asks for it (its address, user
 * agent and the page the gift came from), when the shield still held it
 * as the attempt began: tally never stores them. They go in an update of
 * a new intent between its creation and its confirmation, never in the
 * creation itself: a creation is replayed under its key after a crash,
 * when the signals are gone, and Stripe refuses a key whose parameters
 * changed. Returns 0 or non-zero (out of memory). */
static int add_signals(struct stripe_attempt *a, struct job_run *r)
{
	const struct shield_client *c = &a->client;
	int rc = 0;

	if (c->addr[0])
		rc |= form_add(&a->form, r->easy, "metadata[client_ip]", c->addr);
	if (c->user_agent[0])
		rc |= form_add(&a->form, r->easy, "metadata[client_user_agent]", c->user_agent);
	if (c->page[0])
		rc |= form_add(&a->form, r->easy, "metadata[client_page]", c->page);
	return rc;
}

/* The card's fingerprint in a Stripe answer: an error's payment method
 * (a decline), the intent's last error's, or its own when expanded. */
static const char *stripe_fingerprint(json_t *o)
{
	static const char *const paths[][2] = {
	    {"error", "payment_method"},
	    {"last_payment_error", "payment_method"},
	    {"payment_method", NULL},
	};

	for (size_t i = 0; i < UTIL_ARRAY_LEN(paths); i++) {
		json_t *pm = json_object_get(o, paths[i][0]);
		const char *fp;

		if (paths[i][1])
			pm = json_object_get(pm, paths[i][1]);
		fp = json_str(json_object_get(pm, "card"), "fingerprint", NULL);
		if (fp)
			return fp;
	}
	return "";
}

/* Set up step's request on r->easy (new, or reset for a second request of
 * the same attempt). Returns JOB_RUN_CURL, or JOB_RUN_DONE with a result. */
static int stripe_request(struct job_run *r, int step)
{
	struct stripe_attempt *a = r->state;
	const struct work_config *cfg = a->cfg;
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
	case STRIPE_SIGNALS:
		snprintf(url, sizeof(url), "%s/v1/payment_intents/%s", cfg->stripe_url,
		         r->result.ref);
		break;
	case STRIPE_CONFIRM:
		/* At most one charge request per attempt: an intent that
		 * changes under us is looked at again by the next attempt. */
		if (a->confirms++) {
			work_result(r, JOB_RETRY, "%s changed during the attempt", r->result.ref);
			return JOB_RUN_DONE;
		}
		snprintf(url, sizeof(url), "%s/v1/payment_intents/%s/confirm", cfg->stripe_url,
		         r->result.ref);
		break;
	default:
		snprintf(url, sizeof(url), "%s/v1/refunds", cfg->stripe_url);
	}
	if (r->easy) {
		a->form.len = 0;
		if (transfer_reset(&a->t, r->easy, url)) {
			work_result(r, JOB_RETRY, "curl setup failed");
			return JOB_RUN_DONE;
		}
	} else if (!(r->easy = transfer_easy(&a->t, url))) {
		work_result(r, JOB_RETRY, "out of memory");
		return JOB_RUN_DONE;
	}
	a->step = step;
	a->replayed = 0;
	if (step == STRIPE_CREATE) {
		for (int i = 0; i < 3; i++)
			cur[i] = (char)(d->currency[i] | 0x20);
		cur[3] = '\0';
		/* The gift and the fee its donor chose to cover, in one charge. */
		snprintf(num, sizeof(num), "%lld", (long long)(d->amount_cents + d->fee_cents));
		rc |= form_add(&a->form, r->easy, "amount", num);
		rc |= form_add(&a->form, r->easy, "currency", cur);
		if (!strncmp(d->token, "tok_", 4)) {
			rc |= form_add(&a->form, r->easy, "payment_method_data[type]", "card");
			rc |= form_add(&a->form, r->easy, "payment_method_data[card][token]",
			               d->token);
		} else {
			rc |= form_add(&a->form, r->easy, "payment_method", d->token);
		}
		rc |= form_add(&a->form, r->easy, "payment_method_types[]", "card");
		rc |= form_add(&a->form, r->easy, "confirm", "false");
		rc |= form_add(&a->form, r->easy, "metadata[donation_id]", dn);
		/* Per attempt: Stripe replays a stored 500 for a day. A crash
		 * or a failed commit leaves attempts unchanged, so the next try
		 * replays this same intent; an intent whose id we never learned
		 * was never confirmed. */
		rc |= transfer_header(&a->t, "Idempotency-Key: %s-%s-create-%d", cfg->install_id,
		                      dn, r->job->attempts + 1);
	} else if (step == STRIPE_SIGNALS) {
		rc |= add_signals(a, r);
		rc |= transfer_header(&a->t, "Idempotency-Key: %s-%s-signals-%d", cfg->install_id,
		                      dn, r->job->attempts + 1);
	} else if (step == STRIPE_CONFIRM) {
		rc |= transfer_header(&a->t, "Idempotency-Key: %s-%s-confirm-%d", cfg->install_id,
		                      dn, r->job->attempts + 1);
	} else if (step == STRIPE_REFUND) {
		rc |= form_add(&a->form, r->easy, "payment_intent", d->processor_ref);
		rc |= form_add(&a->form, r->easy, "metadata[donation_id]", dn);
		rc |= transfer_header(&a->t, "Idempotency-Key: %s-%s-refund", cfg->install_id, dn);
	}
	rc |= transfer_header(&a->t, "Authorization: Bearer %s",
	                      cfg->stripe_key ? cfg->stripe_key : "");
	rc |= transfer_header(&a->t, "Stripe-Version: 2024-06-20");
	rc |= transfer_header(&a->t, "Expect:");
	if (step != STRIPE_GET) {
		rc |= transfer_header(&a->t, "Content-Type: application/x-www-form-urlencoded");
		rc |= curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, a->form.p ? a->form.p : "") ||
		      curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)a->form.len);
	}
	if (rc || curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, a->t.headers) ||
	    curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, stripe_header) ||
	    curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, a)) {
		work_result(r, JOB_RETRY, "out of memory");
		return JOB_RUN_DONE;
	}
	r->finish = stripe_finish;
	return JOB_RUN_CURL;
}

int processor_stripe_start(void *ctx, struct job_run *r)
{
	const struct db_job_donation *d = &r->don;
	struct stripe_attempt *a;
	int step;

	if (r->job->kind == JOB_REFUND) {
		if (strncmp(d->processor_ref, "pi_", 3)) {
			work_result(r, JOB_FAIL, "no PaymentIntent to refund (reference '%s')",
			            d->processor_ref);
			return JOB_RUN_DONE;
		}
		step = STRIPE_REFUND;
	} else {
		snprintf(r->result.ref, sizeof(r->result.ref), "%s", d->processor_ref);
		if (strcmp(d->status, "pending")) {
			r->result.kind = JOB_OK; /* decided by an earlier attempt */
			return JOB_RUN_DONE;
		}
		if (shield_refuses(ctx, r))
			return JOB_RUN_DONE;
		step = !strncmp(d->processor_ref, "pi_", 3) ? STRIPE_GET : STRIPE_CREATE;
	}
	a = work_attempt_new(r, sizeof(*a), stripe_attempt_free);
	if (!a) {
		work_result(r, JOB_RETRY, "out of memory");
		return JOB_RUN_DONE;
	}
	a->cfg = ctx;
	if (r->job->kind == JOB_CAPTURE)
		a->has_client = !shield_client_of(a->cfg->shield, d->id, &a->client);
	return stripe_request(r, step);
}
