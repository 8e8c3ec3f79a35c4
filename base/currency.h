/* base/currency.h - ISO 4217 minor units: how many decimals an amount of
 * each currency has. Amounts are integers in the currency's minor unit
 * (`amount_cents`: cents of USD, yen of JPY, fils of KWD); this is the one
 * table that says how to write them. Any thread.
 */
#ifndef TALLY_BASE_CURRENCY_H
#define TALLY_BASE_CURRENCY_H

#include <stddef.h>
#include <stdint.h>

/* Decimals of the currency `code` (three upper-case letters): 0 for JPY,
 * KRW, VND, CLP, ISK, UGX and the other ISO 4217 codes without a minor
 * unit, 3 for BHD, IQD, JOD, KWD, LYD, OMR and TND, 4 for CLF and UYW, 2
 * for every other code: tally takes any three-letter code
 * (validate_currency), and each has an exponent here. */
int currency_exponent(const char *code);

/* Write amount (minor units of code) as a plain decimal number: 1234 is
 * "12.34" in USD, "1234" in JPY, "1.234" in KWD, -5 is "-0.05" in USD.
 * No currency code, no grouping. Returns the length written (NUL not
 * counted), or -ENOSPC when cap is too small (buf then holds ""). */
int currency_format(char *buf, size_t cap, int64_t amount, const char *code);

#endif
