/* ws/csv.h - CSV cells (RFC 4180) safe to open in a spreadsheet. Plain
 * functions on strings, without lws, so tests call them directly. Any
 * thread.
 */
#ifndef TALLY_WS_CSV_H
#define TALLY_WS_CSV_H

#include "base/buf.h"

#include <stdint.h>

/* A line's end in every row: CR LF (RFC 4180). */
#define CSV_EOL "\r\n"

/* 1 when a spreadsheet could take text s for a formula: it starts with
 * '=', '+', '-', '@', TAB or CR (OWASP's CSV injection list), else 0. */
int csv_formula_start(const char *s);

/* Append text s as one cell: neutralised first when csv_formula_start (a
 * single quote ' before it, so it reads as text), then quoted when it
 * holds '"', ',', CR or LF (a quote inside doubled). Any other byte,
 * UTF-8 included, is copied as it is. Returns 0 or -ENOMEM. */
int csv_text(struct buf *out, const char *s);

/* Append an integer cell (never neutralised: a number is not a formula,
 * and amounts are whole minor units). Returns 0 or -ENOMEM. */
int csv_int(struct buf *out, int64_t v);

#endif
