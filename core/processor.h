/* core/processor.h - the payments queue's handlers: capture and refund
 * through the mock processor or Stripe (see core/processor.c). */
#ifndef TALLY_CORE_PROCESSOR_H
#define TALLY_CORE_PROCESSOR_H

#include "core/jobs.h"

/* job_handler starts for JOB_PAYMENTS; ctx is the struct work_config.
 * The mock answers at once or after mock_latency_ms (JOB_RUN_DONE or
 * JOB_RUN_DELAY); Stripe runs one to three requests (JOB_RUN_CURL). */
int processor_mock_start(void *ctx, struct job_run *r);
int processor_stripe_start(void *ctx, struct job_run *r);

/* job_handler ended for both: a capture's answer reached tally; tell the
 * card-testing shield (work_config.shield) whether it was declined, with
 * the card's fingerprint. */
void processor_ended(void *ctx, const struct job_run *r);

#endif
