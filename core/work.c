/* core/work.c - the job queues' configuration and wiring (see work.h).
 *
 * Each queue's handler lives in its own file with its own per-attempt
 * state: payments in core/processor.c, receipts in core/receipt.c,
 * webhooks in core/webhook.c. This file checks the configuration and
 * installs them, and holds the two helpers every handler uses on a
 * job_run; the curl plumbing the three share is core/transfer.c (a
 * mechanism with its own struct, which the mock processor does not use).
 */
#include "core/work.h"
#include "core/processor.h"
#include "core/receipt.h"
#include "core/webhook.h"
#include "base/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void work_config_defaults(struct work_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->processor = "mock";
	cfg->stripe_url = "https://api.stripe.com";
	cfg->smtp_from = "receipts@localhost";
	cfg->outbox = "tally-outbox";
	cfg->org_name = "tally";
	cfg->tax_note = "No goods or services were provided in exchange for this gift.";
}

void work_result(struct job_run *r, enum job_result_kind kind, const char *fmt, ...)
{
	va_list ap;

	r->result.kind = kind;
	va_start(ap, fmt);
	vsnprintf(r->result.error, sizeof(r->result.error), fmt, ap);
	va_end(ap);
}

void *work_attempt_new(struct job_run *r, size_t size, void (*state_free)(void *state))
{
	void *state = calloc(1, size);

	if (state) {
		r->state = state;
		r->state_free = state_free;
	}
	return state;
}

int work_setup(const struct work_config *cfg, struct jobs_config *jc, char *err, size_t errcap)
{
	if (!strcmp(cfg->processor, "mock")) {
		jc->handler[JOB_PAYMENTS].start = processor_mock_start;
		jc->handler[JOB_PAYMENTS].ended = processor_ended;
	} else if (!strcmp(cfg->processor, "stripe")) {
		if (!cfg->stripe_key || !cfg->stripe_key[0]) {
			snprintf(err, errcap,
			         "--processor stripe needs the secret key in STRIPE_SECRET_KEY");
			return -EINVAL;
		}
		jc->handler[JOB_PAYMENTS].start = processor_stripe_start;
		jc->handler[JOB_PAYMENTS].ended = processor_ended;
	} else {
		snprintf(err, errcap, "unknown processor '%s' (mock or stripe)", cfg->processor);
		return -EINVAL;
	}
	if (cfg->mock_fail_rate < 0 || cfg->mock_fail_rate > 1) {
		snprintf(err, errcap, "--mock-fail-rate must be between 0 and 1");
		return -EINVAL;
	}
	if (!cfg->smtp_url && mkdir(cfg->outbox, 0750) && errno != EEXIST) {
		int e = errno; /* snprintf may change errno */

		snprintf(err, errcap, "receipt outbox %s: %s", cfg->outbox, strerror(e));
		return -e;
	}
	for (int i = 0; i < cfg->n_webhooks; i++) {
		if (!cfg->webhook_secret[i] || !cfg->webhook_secret[i][0]) {
			char url[256];

			snprintf(err, errcap, "webhook %s has no secret",
			         util_url_redact(cfg->webhook_url[i], url, sizeof(url)));
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
