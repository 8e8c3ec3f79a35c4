/* core/receipt.h - the receipts queue's handler (see core/receipt.c). */
#ifndef TALLY_CORE_RECEIPT_H
#define TALLY_CORE_RECEIPT_H

#include "core/jobs.h"

/* job_handler start for JOB_RECEIPTS; ctx is the struct work_config.
 * Writes the receipt into the outbox (JOB_RUN_DONE) or sends it by SMTP
 * (JOB_RUN_CURL). work_receipt_message (core/work.h) builds it. */
int receipt_start(void *ctx, struct job_run *r);

#endif
