/* core/webhook.c - tell the configured endpoints what became of a gift.
 *
 * DESIGN
 * Each webhooks job is one event (donation.succeeded, .failed or
 * .refunded) for one endpoint: a JSON body (work_event_body) POSTed with a
 * Tally-Signature header, an HMAC-SHA256 over "<unix time>.<body>" under
 * the endpoint's secret (work_signature), so the receiver can check who
 * sent it and when. A 2xx answer delivers it; anything else is retried.
 * A job runs at least once, so a receiver may see an event twice: the
 * event id evt_<donation id>_<status> (in the body and the Tally-Event-Id
 * header) is the same on every attempt, and the receiver drops repeats by
 * it. Only the signature's time changes between attempts.
 *
 * An endpoint that hangs costs its own deliveries only: core/jobs.c starts
 * at most jobs_config per_endpoint attempts at once for one endpoint (see
 * its DESIGN), and an attempt gives up after the queue's timeout-ms
 * (core/jobs.c sets every transfer's time limit).
 *
 * State: every attempt that builds a request owns a struct
 * webhook_attempt (r->state) until the worker ends it.
 */
#include "core/webhook.h"
#include "core/transfer.h"
#include "core/work.h"
#include "base/util.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct webhook_attempt {
	struct transfer t;
	struct buf body; /* the event's JSON */
};

static void webhook_attempt_free(void *state)
{
	struct webhook_attempt *a = state;

	transfer_fini(&a->t);
	buf_fini(&a->body);
	free(a);
}

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
	const struct webhook_attempt *a = r->state;
	long code = transfer_code(r->easy);

	if (rc != CURLE_OK)
		work_result(r, JOB_RETRY, "endpoint unreachable: %s", transfer_error(&a->t, rc));
	else if (code >= 200 && code < 300)
		r->result.kind = JOB_OK;
	else
		work_result(r, JOB_RETRY, "endpoint answered HTTP %ld", code);
	return JOB_RUN_DONE;
}

int webhook_start(void *ctx, struct job_run *r)
{
	const struct work_config *cfg = ctx;
	int ep = r->job->endpoint, rc = 0;
	struct webhook_attempt *a;
	char sig[160];

	if (ep >= cfg->n_webhooks) {
		work_result(r, JOB_FAIL, "the endpoint is no longer configured");
		return JOB_RUN_DONE;
	}
	a = work_attempt_new(r, sizeof(*a), webhook_attempt_free);
	if (!a ||
	    work_event_body((enum job_kind)r->job->kind, &r->don, r->job->created_at, &a->body) ||
	    work_signature(cfg->webhook_secret[ep], (long long)time(NULL), a->body.p, a->body.len,
	                   sig, sizeof(sig))) {
		work_result(r, JOB_RETRY, "out of memory");
		return JOB_RUN_DONE;
	}
	r->easy = transfer_easy(&a->t, cfg->webhook_url[ep]);
	if (!r->easy) {
		work_result(r, JOB_RETRY, "out of memory");
		return JOB_RUN_DONE;
	}
	rc |= transfer_header(&a->t, "Content-Type: application/json");
	rc |= transfer_header(&a->t, "Tally-Signature: %s", sig);
	rc |= transfer_header(&a->t, "Tally-Event-Id: evt_%lld_%s", (long long)r->don.id,
	                      job_kind_names[r->job->kind] + 9);
	rc |= transfer_header(&a->t, "User-Agent: tally/" TALLY_VERSION);
	rc |= transfer_header(&a->t, "Expect:");
	if (rc || curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, a->t.headers) ||
	    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, a->body.p) ||
	    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)a->body.len)) {
		work_result(r, JOB_RETRY, "curl setup failed");
		return JOB_RUN_DONE;
	}
	r->finish = webhook_finish;
	return JOB_RUN_CURL;
}
