/* core/webhook.h - the webhooks queue's handler (see core/webhook.c). */
#ifndef TALLY_CORE_WEBHOOK_H
#define TALLY_CORE_WEBHOOK_H

#include "core/jobs.h"

/* job_handler start for JOB_WEBHOOKS; ctx is the struct work_config.
 * POSTs the signed event to the job's endpoint (JOB_RUN_CURL).
 * work_event_body and work_signature (core/work.h) build the request. */
int webhook_start(void *ctx, struct job_run *r);

#endif
