/* core/transfer.h - the curl plumbing the job handlers share.
 *
 * The Stripe adapter (core/processor.c), SMTP receipts (core/receipt.c)
 * and webhooks (core/webhook.c) each set up an easy handle the same way:
 * the URL, no signals, curl's error text, the answer collected (at most
 * 64 KiB). Time limits are not theirs: core/jobs.c gives every transfer
 * what is left of its attempt's (the queue's timeout-ms) when it starts it. Each handler's
 * per-attempt struct embeds a struct transfer for that; the handler owns it and frees it with
 * transfer_fini from its state_free, after the worker cleaned up the easy handle.
 *
 * Why a module of its own rather than in core/work.c: work.c is the
 * configuration and the wiring of the queues, and one handler (the mock
 * processor) has no transfer at all; this is a mechanism with its own
 * struct and lifecycle, and naming it transfer_* tells the reader which
 * file to open.
 */
#ifndef TALLY_CORE_TRANSFER_H
#define TALLY_CORE_TRANSFER_H

#include "base/buf.h"

#include <curl/curl.h>

struct transfer {
	struct curl_slist *headers;   /* the request's header lines, or NULL */
	struct buf resp;              /* the answer's body, at most 64 KiB kept */
	char errbuf[CURL_ERROR_SIZE]; /* curl's reason for a failed transfer */
};

/* Set the common options on e for url: no signals, t->errbuf (emptied) as
 * the error buffer, the answer into t->resp. Returns 0 or non-zero when
 * curl refused an option. */
int transfer_setup(struct transfer *t, CURL *e, const char *url);

/* A new easy handle with transfer_setup's options, owned by the caller.
 * NULL when out of memory. */
CURL *transfer_easy(struct transfer *t, const char *url);

/* Ready e and t for another request of the same attempt: e reset, the
 * header lines freed, the answer emptied, transfer_setup again. Returns 0
 * or non-zero as transfer_setup. */
int transfer_reset(struct transfer *t, CURL *e, const char *url);

/* Append one printf-formatted header line (cut at 511 bytes) to
 * t->headers. Returns 0 or -1 (out of memory). */
int transfer_header(struct transfer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The HTTP or SMTP response code of e's last transfer, 0 when none. */
long transfer_code(CURL *e);

/* Why a transfer ended with rc: curl's error text when it gave one, else
 * curl_easy_strerror(rc). Valid while t is. */
const char *transfer_error(const struct transfer *t, CURLcode rc);

/* Free t's header lines and answer (t itself is the caller's). */
void transfer_fini(struct transfer *t);

#endif
