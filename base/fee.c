/* base/fee.c - the covered processing fee (see fee.h). */
#include "base/fee.h"

#include <ctype.h>

/* Read 1-7 digits at *p into *out (advancing *p); -1 when there are none
 * or too many. */
static int digits(const char **p, int64_t *out, int max_digits)
{
	int n = 0;

	*out = 0;
	while (isdigit((unsigned char)**p)) {
		if (++n > max_digits)
			return -1;
		*out = *out * 10 + (**p - '0');
		(*p)++;
	}
	return n ? 0 : -1;
}

int fee_parse(const char *s, struct fee_rule *out)
{
	const char *p = s;
	int64_t whole, frac = 0, fixed;

	if (digits(&p, &whole, 3))
		return -1;
	if (*p == '.') {
		const char *f = ++p;

		if (digits(&p, &frac, 2))
			return -1;
		if (p - f == 1)
			frac *= 10; /* "2.2" is 2.20 */
	}
	if (*p++ != '%' || *p++ != '+' || digits(&p, &fixed, 7) || *p)
		return -1;
	if (whole * 100 + frac > FEE_BP_MAX || fixed > FEE_FIXED_MAX)
		return -1;
	out->bp = whole * 100 + frac;
	out->fixed = fixed;
	return 0;
}

int fee_offered(const struct fee_rule *f)
{
	return f->bp > 0 || f->fixed > 0;
}

int64_t fee_compute(const struct fee_rule *f, int64_t amount)
{
	/* amount <= 10^15 and bp <= 2000: the product stays below 2^63. */
	return (amount * f->bp + 9999) / 10000 + f->fixed;
}
