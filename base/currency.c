/* base/currency.c - the ISO 4217 exponents tally needs (see currency.h). */
#include "base/currency.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Every code of ISO 4217's list one whose exponent is not 2. */
static const struct {
	char code[4];
	int exponent;
} exponents[] = {
    {"BHD", 3}, {"BIF", 0}, {"CLF", 4}, {"CLP", 0}, {"DJF", 0}, {"GNF", 0}, {"IQD", 3},
    {"ISK", 0}, {"JOD", 3}, {"JPY", 0}, {"KMF", 0}, {"KRW", 0}, {"KWD", 3}, {"LYD", 3},
    {"OMR", 3}, {"PYG", 0}, {"RWF", 0}, {"TND", 3}, {"UGX", 0}, {"UYI", 0}, {"UYW", 4},
    {"VND", 0}, {"VUV", 0}, {"XAF", 0}, {"XOF", 0}, {"XPF", 0},
};

int currency_exponent(const char *code)
{
	for (size_t i = 0; i < sizeof(exponents) / sizeof(exponents[0]); i++)
		if (!strcmp(exponents[i].code, code))
			return exponents[i].exponent;
	return 2;
}

int currency_format(char *buf, size_t cap, int64_t amount, const char *code)
{
	int exp = currency_exponent(code), n;
	uint64_t unit = 1, mag = amount < 0 ? (uint64_t)0 - (uint64_t)amount : (uint64_t)amount;
	const char *sign = amount < 0 ? "-" : "";

	for (int i = 0; i < exp; i++)
		unit *= 10;
	if (exp)
		n = snprintf(buf, cap, "%s%llu.%0*llu", sign, (unsigned long long)(mag / unit), exp,
		             (unsigned long long)(mag % unit));
	else
		n = snprintf(buf, cap, "%s%llu", sign, (unsigned long long)mag);
	if (n < 0 || (size_t)n >= cap) {
		if (cap)
			buf[0] = '\0';
		return -ENOSPC;
	}
	return n;
}
