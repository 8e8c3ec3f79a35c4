/* core/work.h - what the job queues do: capture and refund through a
 * processor adapter (mock or Stripe; core/processor.c), email receipts
 * (SMTP or an outbox folder of .eml files; core/receipt.c) and deliver
 * signed webhooks (core/webhook.c). core/work.c holds the configuration
 * and installs the three handlers; core/transfer.c the curl plumbing
 * they share.
 *
 * Every effect is made safe to repeat, because a job runs at least once:
 * the processor gets the donation id as its idempotency key, a receipt is
 * not sent again once recorded (and carries a Message-ID made from the
 * donation id), and a webhook event keeps its id across attempts.
 * Card data never reaches tally: only processor tokens and ids.
 */
#ifndef TALLY_CORE_WORK_H
#define TALLY_CORE_WORK_H

#include "core/jobs.h"

#include <stddef.h>

struct work_config {
	const char *processor;  /* "mock" (default) or "stripe" */
	int mock_latency_ms;    /* mock: answer after this long */
	double mock_fail_rate;  /* mock: share of transient failures, 0..1 */
	const char *stripe_url; /* default https://api.stripe.com */
	const char *stripe_key; /* secret key (from the environment) */
	const char *install_id; /* this database's id, in idempotency keys */
	const char *smtp_url;   /* NULL: receipts go to the outbox folder */
	const char *smtp_from;
	const char *outbox; /* folder for .eml receipts */
	const char *org_name;
	const char *tax_note;
	struct shield *shield; /* the card-testing shield (NULL: none): the
	                        * payments queue asks it before a capture, tells
	                        * it each outcome and reads a gift's client */
	int n_webhooks;
	const char *webhook_url[JOB_MAX_ENDPOINTS];
	const char *webhook_secret[JOB_MAX_ENDPOINTS];
};

void work_config_defaults(struct work_config *cfg);

/* Check cfg (which must outlive the jobs) and install the three queues'
 * handlers and the webhook endpoints in jc. Creates the outbox folder.
 * Returns 0 or -EINVAL/-errno with a message in err. */
int work_setup(const struct work_config *cfg, struct jobs_config *jc, char *err, size_t errcap);

/* The webhook signature header value (core/webhook.c) for body at unix time t:
 * "t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>". Returns 0 or -1. */
int work_signature(const char *secret, long long t, const char *body, size_t len, char *out,
                   size_t cap);

/* The plain-text receipt for d (headers and body, CRLF line ends), appended
 * to out. Returns 0 or -ENOMEM. core/receipt.c. */
int work_receipt_message(const struct work_config *cfg, const struct db_job_donation *d,
                         struct buf *out);

/* The JSON body of webhook event `kind` (JOB_HOOK_*) for d, appended to
 * out. Returns 0 or -ENOMEM. core/webhook.c. */
int work_event_body(enum job_kind kind, const struct db_job_donation *d, int64_t created_at,
                    struct buf *out);

/* For the handlers (a worker thread) */

/* Set r->result to kind with a printf-formatted reason (cut to fit). */
void work_result(struct job_run *r, enum job_result_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Give r a zeroed per-attempt state of size bytes, which the worker frees
 * with state_free when the attempt ends (state_free must accept it as
 * zeroed). Returns it, or NULL (out of memory; r has no state). */
void *work_attempt_new(struct job_run *r, size_t size, void (*state_free)(void *state));

#endif
