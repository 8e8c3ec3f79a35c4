/* tests/fuzz/fuzz_donation.c - libFuzzer harness for donation bodies.
 *
 * Feeds arbitrary bytes to validate_donation (the fast scan and the jansson
 * path) and to validate_donation_full, and checks what must always hold:
 * both agree on the result, an accepted donation satisfies every limit, and
 * nothing crashes or leaks (build with -fsanitize=fuzzer,address,undefined).
 *   make fuzz            # builds build/fuzz/fuzz_donation and runs it 60 s
 */
#include "base/util.h"
#include "core/validate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
		if (memcmp(&a, &b, sizeof(a)))
			abort();
		if (a.amount_cents < lim.min_cents || a.amount_cents > lim.max_cents ||
		    !validate_currency(a.currency) || !a.name[0] || !strchr(a.email, '@') ||
		    util_utf8_len(a.name, strlen(a.name)) < 0 ||
		    util_utf8_len(a.message, strlen(a.message)) < 0 || !a.payment_token[0] ||
		    util_has_control(a.name, strlen(a.name), 0) ||
		    util_has_control(a.message, strlen(a.message), 1) ||
		    util_has_bidi_control(a.name, strlen(a.name)) ||
		    util_has_bidi_control(a.message, strlen(a.message)))
			abort();
	} else if (ra == TALLY_EFIELDS && !ea.fields) {
		abort();
	}
	validate_error_fini(&ea);
	validate_error_fini(&eb);
	return 0;
}
