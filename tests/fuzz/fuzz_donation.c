/* tests/fuzz/fuzz_donation.c - libFuzzer harness for donation bodies.
 *
 * Feeds arbitrary bytes to validate_donation (the fast scan and the jansson
 * path) and to validate_donation_full, and checks what must always hold:
 * both agree on the result, the fields and the message; an accepted
 * donation satisfies every limit of the contract; a refusal says why;
 * validate_donation_captcha agrees and keeps only a well-formed token; and
 * nothing crashes or leaks (build with -fsanitize=fuzzer,address,undefined).
 *   make fuzz FUZZ=donation
 */
#include "base/util.h"
#include "core/validate.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Valid UTF-8 of min..max code points with no control character (a
 * newline only when allowed) and no bidirectional override or isolate. */
static int text_ok(const char *s, long min, long max, int newline)
{
	long n = util_utf8_len(s, strlen(s));

	return n >= min && n <= max && !util_has_control(s, strlen(s), newline) &&
	       !util_has_bidi_control(s, strlen(s));
}

static int blank(const char *s)
{
	for (; *s; s++)
		if (!isspace((unsigned char)*s))
			return 0;
	return 1;
}

static void check_accepted(const struct donation_req *a, const struct donation_limits *lim)
{
	if (a->amount_cents < lim->min_cents || a->amount_cents > lim->max_cents ||
	    !validate_currency(a->currency))
		abort();
	if (!text_ok(a->name, 1, TALLY_DONOR_NAME_MAX, 0) || blank(a->name))
		abort();
	if (!text_ok(a->email, 3, TALLY_EMAIL_MAX, 0) || strlen(a->email) > TALLY_EMAIL_MAX ||
	    !strchr(a->email, '@') || strchr(strchr(a->email, '@') + 1, '@'))
		abort();
	if (!text_ok(a->message, 0, TALLY_MESSAGE_MAX, 1))
		abort();
	if (!a->payment_token[0] || strlen(a->payment_token) > TALLY_TOKEN_MAX)
		abort();
	for (const char *t = a->payment_token; *t; t++)
		if (!isalnum((unsigned char)*t) && *t != '_' && *t != '-')
			abort();
	if ((a->anonymous != 0 && a->anonymous != 1) ||
	    (a->hide_amount != 0 && a->hide_amount != 1))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct donation_limits lim = {100, 100000000};
	struct donation_req a, b;
	struct validate_error ea = {{0}, NULL}, eb = {{0}, NULL};
	int ra = validate_donation((const char *)data, size, &lim, &a, &ea);
	int rb = validate_donation_full((const char *)data, size, &lim, &b, &eb);

	if (ra != rb)
		abort();
	if (ra == TALLY_OK) {
		if (memcmp(&a, &b, sizeof(a)) || ea.fields || eb.fields)
			abort();
		check_accepted(&a, &lim);
	} else {
		/* A refusal names its reason, the same on both paths. */
		if ((ra != TALLY_EJSON && ra != TALLY_EFIELDS) || !ea.message[0] ||
		    strcmp(ea.message, eb.message))
			abort();
		if (ra == TALLY_EFIELDS &&
		    (!ea.fields || !eb.fields || !json_object_size(ea.fields) ||
		     !json_equal(ea.fields, eb.fields)))
			abort();
		if (ra == TALLY_EJSON && (ea.fields || eb.fields))
			abort();
	}
	validate_error_fini(&ea);
	validate_error_fini(&eb);
	{
		/* The CAPTCHA token's variant: the same verdict and request; a
		 * kept token is "" or 1 to TALLY_CAPTCHA_TOKEN_MAX printable
		 * ASCII bytes. */
		static char tok[TALLY_CAPTCHA_TOKEN_SIZE];
		struct donation_req c;
		int rc = validate_donation_captcha((const char *)data, size, &lim, &c, tok, &ea);

		if (rc != ra || (rc == TALLY_OK && memcmp(&a, &c, sizeof(a))))
			abort();
		if (rc == TALLY_OK) {
			if (strlen(tok) > TALLY_CAPTCHA_TOKEN_MAX)
				abort();
			for (const char *t = tok; *t; t++)
				if (*t < 0x21 || *t > 0x7e)
					abort();
		}
		validate_error_fini(&ea);
	}
	return 0;
}
