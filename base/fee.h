/* base/fee.h - the processing fee a donor may choose to cover (--fee).
 *
 * A fee is PERCENT%+FIXED: a percentage of the gift with up to two
 * decimals (held as hundredths of a percent, basis points) plus a fixed
 * part in the minor units of the gift's currency (cents of USD, yen of
 * JPY: a "+30" is 30 yen on a JPY gift). Integer arithmetic only.
 */
#ifndef TALLY_BASE_FEE_H
#define TALLY_BASE_FEE_H

#include <stdint.h>

/* The bounds --fee accepts: 20.00 % and 100,000 minor units. */
#define FEE_BP_MAX 2000
#define FEE_FIXED_MAX 100000

struct fee_rule {
	int64_t bp;    /* hundredths of a percent: 2.2 % is 220 */
	int64_t fixed; /* minor units */
};

/* Parse "PERCENT%+FIXED" (such as "2.2%+30", "0%+0", "3%+0"): PERCENT is
 * 0 to 20 with at most two decimals, FIXED 0 to 100000. Returns 0, or -1
 * when s is anything else (out unchanged). */
int fee_parse(const char *s, struct fee_rule *out);

/* 1 when donors are offered to cover a fee (either part is not 0). */
int fee_offered(const struct fee_rule *f);

/* The fee on a gift of amount minor units (0 <= amount <= 10^15):
 * ceil(amount * bp / 10000) + fixed. The percentage is rounded up to the
 * next minor unit, so the fee covered is never short of the processor's. */
int64_t fee_compute(const struct fee_rule *f, int64_t amount);

#endif
