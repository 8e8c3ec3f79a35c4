/* core/receipt.c - thank a donor by email for a succeeded gift.
 *
 * DESIGN
 * The receipt is a plain-text message (work_receipt_message) sent by SMTP
 * through libcurl, or, with no SMTP server configured, written as
 * receipt-dn_<id>.eml into the outbox folder for another program to send.
 * A receipts job runs at least once; what makes that safe:
 * - a donation whose receipt_sent_at is set was receipted: the job ends
 *   without sending again;
 * - the message carries Message-ID <receipt-dn_<id>@tally>, the same on
 *   every attempt, so a repeat left by an attempt cut short after sending
 *   can be told from a second gift's receipt;
 * - the outbox file appears whole under its final name or not at all,
 *   never replaces one that exists, and is on disk (file and folder
 *   fsynced) before the attempt is reported done: a receipt marked sent
 *   survives a power cut.
 * A gift refunded (or without an email) before its receipt went out is
 * skipped: nothing to thank for.
 *
 * State: every attempt that builds a message owns a struct receipt_attempt
 * (r->state) until the worker ends it.
 */
#include "core/receipt.h"
#include "core/transfer.h"
#include "core/work.h"
#include "base/currency.h"
#include "base/log.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct receipt_attempt {
	struct transfer t;
	struct curl_slist *rcpt; /* SMTP: the one recipient */
	struct buf msg;          /* the message */
	size_t off;              /* SMTP: how much of msg curl has read */
};

static void receipt_attempt_free(void *state)
{
	struct receipt_attempt *a = state;

	transfer_fini(&a->t);
	curl_slist_free_all(a->rcpt);
	buf_fini(&a->msg);
	free(a);
}

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
	char date[64], ts[32], amount[32], fee[32], total[32];
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
	/* In the currency's own minor units: JPY 1234, USD 12.34, KWD 1.234. */
	rc |= currency_format(amount, sizeof(amount), d->amount_cents, d->currency) < 0;
	rc |= buf_printf(out, "  Campaign:     %s\r\n  Amount:       %s %s\r\n", d->campaign_slug,
	                 d->currency, amount);
	if (d->fee_cents) {
		/* The gift and the fee its donor covered apart (only the gift
		 * counts toward the campaign), then what the card was charged. */
		rc |= currency_format(fee, sizeof(fee), d->fee_cents, d->currency) < 0;
		rc |= currency_format(total, sizeof(total), d->amount_cents + d->fee_cents,
		                      d->currency) < 0;
		rc |= buf_printf(out, "  Fee covered:  %s %s\r\n  Total charged: %s %s\r\n",
		                 d->currency, fee, d->currency, total);
	}
	if (d->offline)
		rc |= buf_puts(out, "  Received:     offline (not charged here)\r\n");
	rc |= buf_printf(out, "  Date:         %s\r\n  Donation id:  dn_%lld\r\n\r\n",
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

/* fsync the folder dir, so that a name linked into it survives a power
 * cut. Returns 0 or -errno. */
static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		rc = -errno;
	if (close(fd) && !rc)
		rc = -errno;
	return rc;
}

/* Write msg into the outbox under its final name, whole or not at all, and
 * durably before the job is reported done: the data is written and synced
 * in an unnamed file (O_TMPFILE) or, where the file system has none, under
 * a temporary name; then it is linked in under its final name and the
 * folder synced. The link fails if the name exists, so a receipt is written
 * once; an existing name is a previous attempt's, already synced before it
 * was linked, and the folder is synced again in case that attempt ended
 * before it did. A failed write, fsync or link is a failed attempt,
 * retried. */
static void outbox_write(const struct work_config *cfg, struct job_run *r, const struct buf *msg)
{
	char path[4096], tmp[4200];
	int fd, rc;

	snprintf(path, sizeof(path), "%s/receipt-dn_%lld.eml", cfg->outbox, (long long)r->don.id);
	fd = open(cfg->outbox, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0640);
	if (fd >= 0) {
		char proc[64];

		rc = write_all(fd, msg->p, msg->len);
		if (!rc && fsync(fd))
			rc = -errno;
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		if (!rc && linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) &&
		    errno != EEXIST)
			rc = -errno;
		if (close(fd) && !rc)
			rc = -errno;
		if (!rc)
			rc = sync_dir(cfg->outbox);
		if (!rc) {
			r->result.kind = JOB_OK;
			return;
		}
		if (rc != -ENOENT) { /* ENOENT: no /proc here; use a name */
			work_result(r, JOB_RETRY, "%s: %s", path, strerror(-rc));
			return;
		}
		errno = EOPNOTSUPP;
	}
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
		work_result(r, JOB_RETRY, "%s: %s", cfg->outbox, strerror(errno));
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s/.tmp-%lld-%d", cfg->outbox, (long long)r->job->id,
	         (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0) {
		work_result(r, JOB_RETRY, "%s: %s", tmp, strerror(errno));
		return;
	}
	rc = write_all(fd, msg->p, msg->len);
	if (!rc && fsync(fd))
		rc = -errno;
	if (close(fd) && !rc)
		rc = -errno;
	if (!rc && link(tmp, path) && errno != EEXIST)
		rc = -errno;
	if (unlink(tmp))
		log_msg(LOG_WARN, "receipts.unlink_failed", "%s: %s", tmp, strerror(errno));
	if (!rc)
		rc = sync_dir(cfg->outbox);
	if (rc)
		work_result(r, JOB_RETRY, "%s: %s", path, strerror(-rc));
	else
		r->result.kind = JOB_OK;
}

static size_t smtp_read(char *dst, size_t size, size_t n, void *ud)
{
	struct receipt_attempt *a = ud;
	size_t left = a->msg.len - a->off, k = size * n < left ? size * n : left;

	memcpy(dst, a->msg.p + a->off, k);
	a->off += k;
	return k;
}

static int smtp_finish(struct job_run *r, CURLcode rc)
{
	const struct receipt_attempt *a = r->state;
	long code = transfer_code(r->easy);

	if (rc == CURLE_OK)
		r->result.kind = JOB_OK;
	else if (code >= 500 && code < 600)
		/* The server refused for good (no such mailbox...). */
		work_result(r, JOB_FAIL, "SMTP %ld: %s", code,
		            a->t.errbuf[0] ? a->t.errbuf : "rejected");
	else
		work_result(r, JOB_RETRY, "SMTP %ld: %s", code, transfer_error(&a->t, rc));
	return JOB_RUN_DONE;
}

/* Send a->msg to the donor through cfg->smtp_url. Returns JOB_RUN_CURL, or
 * JOB_RUN_DONE with a result. */
static int smtp_send(const struct work_config *cfg, struct job_run *r, struct receipt_attempt *a)
{
	char from[300];

	r->easy = transfer_easy(&a->t, cfg->smtp_url);
	snprintf(from, sizeof(from), "<%s>", cfg->smtp_from);
	a->rcpt = curl_slist_append(NULL, r->don.email);
	if (!r->easy || !a->rcpt) {
		work_result(r, JOB_RETRY, "out of memory");
		return JOB_RUN_DONE;
	}
	if (curl_easy_setopt(r->easy, CURLOPT_MAIL_FROM, from) ||
	    curl_easy_setopt(r->easy, CURLOPT_MAIL_RCPT, a->rcpt) ||
	    curl_easy_setopt(r->easy, CURLOPT_READFUNCTION, smtp_read) ||
	    curl_easy_setopt(r->easy, CURLOPT_READDATA, a) ||
	    curl_easy_setopt(r->easy, CURLOPT_UPLOAD, 1L) ||
	    curl_easy_setopt(r->easy, CURLOPT_INFILESIZE, (long)a->msg.len)) {
		work_result(r, JOB_RETRY, "curl setup failed");
		return JOB_RUN_DONE;
	}
	r->finish = smtp_finish;
	return JOB_RUN_CURL;
}

int receipt_start(void *ctx, struct job_run *r)
{
	const struct work_config *cfg = ctx;
	struct receipt_attempt *a;

	if (r->don.receipt_sent_at) {
		r->result.kind = JOB_OK; /* sent before */
		return JOB_RUN_DONE;
	}
	if (strcmp(r->don.status, "succeeded") || !r->don.email[0]) {
		r->result.kind = JOB_OK; /* refunded meanwhile: nothing to thank for */
		snprintf(r->result.ref, sizeof(r->result.ref), "skipped");
		return JOB_RUN_DONE;
	}
	a = work_attempt_new(r, sizeof(*a), receipt_attempt_free);
	if (!a || work_receipt_message(cfg, &r->don, &a->msg)) {
		work_result(r, JOB_RETRY, "out of memory");
		return JOB_RUN_DONE;
	}
	if (!cfg->smtp_url) {
		outbox_write(cfg, r, &a->msg);
		return JOB_RUN_DONE;
	}
	return smtp_send(cfg, r, a);
}
