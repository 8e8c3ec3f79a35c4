/* tests/fuzz/fuzz_receipt.c - libFuzzer harness for the receipt email
 * (core/receipt.c: work_receipt_message), with donor and campaign text of
 * any bytes: UTF-8 or not, CR, LF, NUL-free control characters, encoded
 * words.
 *
 * Input: the donation's text fields separated by NUL bytes (email, donor
 * name, message, campaign name, campaign slug, currency, then the sender
 * address, the organisation and the tax note of the configuration), each
 * cut to its column's size, then up to 24 bytes of numbers (amount, id,
 * created_at). What must hold of the message:
 * - the header block (up to the first empty line) is exactly From, To,
 *   Subject, Date, Message-ID, MIME-Version, Content-Type and
 *   Content-Transfer-Encoding, in that order, one line each, every line
 *   ending in CRLF, with no other CR, LF or control character in it: no
 *   text can add, split or fold a header;
 * - each line is at most 998 bytes (RFC 5322);
 * - From, To and the campaign in Subject read back (as is, or decoded from
 *   the RFC 2047 word) as the text given without its control characters;
 * - the Message-ID names the donation;
 * - the message ends with a CRLF.
 *   make fuzz FUZZ=receipt
 */
#include "core/work.h"
#include "db/db.h"
#include "base/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Take the next NUL-terminated field into dst (cap bytes, cut to fit). */
static void take(const uint8_t **p, const uint8_t *end, char *dst, size_t cap)
{
	size_t n = 0;

	while (*p < end && **p) {
		if (n + 1 < cap)
			dst[n++] = (char)**p;
		(*p)++;
	}
	if (*p < end)
		(*p)++;
	dst[n] = '\0';
}

/* s without control characters, cut to 1023 bytes (header_text). */
static void clean(const char *s, char *dst)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p && n < 1023; p++)
		if (*p >= 0x20 && *p != 0x7f)
			dst[n++] = (char)*p;
	dst[n] = '\0';
}

static int b64(int c)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *q = c ? strchr(tab, c) : NULL;

	return q ? (int)(q - tab) : -1;
}

/* Read v[0..len) back: as is when want is ASCII, else decoded from one
 * "=?UTF-8?B?...?=" word. 1 when it equals want. */
static int reads_as(const char *v, size_t len, const char *want)
{
	char out[1100];
	size_t n = 0, i;
	int ascii = 1;

	for (const unsigned char *p = (const unsigned char *)want; *p; p++)
		ascii &= *p < 0x80;
	if (ascii)
		return len == strlen(want) && !memcmp(v, want, len);
	if (len < 12 || memcmp(v, "=?UTF-8?B?", 10) || memcmp(v + len - 2, "?=", 2) ||
	    (len - 12) % 4)
		return 0;
	for (i = 10; i < len - 2; i += 4) {
		int a = b64(v[i]), b = b64(v[i + 1]), c = v[i + 2] == '=' ? 0 : b64(v[i + 2]),
		    d = v[i + 3] == '=' ? 0 : b64(v[i + 3]);
		unsigned w;

		if (a < 0 || b < 0 || c < 0 || d < 0 || n + 3 > sizeof(out))
			return 0;
		w = (unsigned)a << 18 | (unsigned)b << 12 | (unsigned)c << 6 | (unsigned)d;
		out[n++] = (char)(w >> 16);
		if (v[i + 2] != '=')
			out[n++] = (char)(w >> 8 & 0xff);
		if (v[i + 3] != '=')
			out[n++] = (char)(w & 0xff);
	}
	return n == strlen(want) && !memcmp(out, want, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"From: ",
	                                    "To: ",
	                                    "Subject: Thank you for your gift to ",
	                                    "Date: ",
	                                    "Message-ID: <receipt-dn_",
	                                    "MIME-Version: 1.0",
	                                    "Content-Type: text/plain; charset=UTF-8",
	                                    "Content-Transfer-Encoding: 8bit"};
	static struct db_job_donation d;
	char from[255], org[256], tax[512], want[1024], mid[64];
	const uint8_t *p = data, *end = data + size;
	struct work_config cfg;
	struct buf msg = {0};
	const char *line, *hend;
	int64_t nums[3] = {0, 0, 0};

	memset(&d, 0, sizeof(d));
	take(&p, end, d.email, sizeof(d.email));
	take(&p, end, d.name, sizeof(d.name));
	take(&p, end, d.message, sizeof(d.message));
	take(&p, end, d.campaign_name, sizeof(d.campaign_name));
	take(&p, end, d.campaign_slug, sizeof(d.campaign_slug));
	take(&p, end, d.currency, sizeof(d.currency));
	take(&p, end, from, sizeof(from));
	take(&p, end, org, sizeof(org));
	take(&p, end, tax, sizeof(tax));
	memcpy(nums, p, (size_t)(end - p) < sizeof(nums) ? (size_t)(end - p) : sizeof(nums));
	d.amount_cents = nums[0];
	d.id = nums[1];
	d.created_at = nums[2] % INT64_C(253402300800000); /* before year 10000 */
	snprintf(d.status, sizeof(d.status), "succeeded");
	work_config_defaults(&cfg);
	cfg.smtp_from = from;
	cfg.org_name = org;
	cfg.tax_note = tax;

	if (work_receipt_message(&cfg, &d, &msg) || !msg.p)
		abort();
	hend = strstr(msg.p, "\r\n\r\n");
	if (!hend || msg.len < 2 || memcmp(msg.p + msg.len - 2, "\r\n", 2) ||
	    strlen(msg.p) != msg.len)
		abort();
	line = msg.p;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *eol = strstr(line, "\r\n");
		size_t len = (size_t)(eol - line), nlen = strlen(names[i]);

		if (eol > hend || len > 998 || len < nlen || memcmp(line, names[i], nlen))
			abort();
		for (const char *c = line; c < eol; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				abort(); /* CR, LF, TAB or any other control byte */
		if (i == 0 || i == 1 || i == 2) {
			clean(i == 0 ? from : i == 1 ? d.email : d.campaign_name, want);
			if (!reads_as(line + nlen, len - nlen, want))
				abort();
		}
		if (i == 4) {
			snprintf(mid, sizeof(mid), "%lld@tally>", (long long)d.id);
			if (len - nlen != strlen(mid) || memcmp(line + nlen, mid, strlen(mid)))
				abort();
		}
		line = eol + 2;
	}
	if (line != hend + 2)
		abort(); /* a ninth header line */
	buf_fini(&msg);
	return 0;
}
