/* tui/console_fmt.h - pure text helpers of the console (internal to tui/).
 *
 * Nothing here calls curses or keeps state; every function may be called from
 * any thread. Display widths follow wcwidth() and so the LC_CTYPE locale: the
 * console sets it from the environment, tests set a UTF-8 locale.
 *
 * Every function that writes a buffer always NUL-terminates it when cap > 0,
 * returns the number of bytes written (without the NUL) or a negative errno:
 * -EINVAL for a NULL buffer or cap == 0, -ENOSPC when the text does not fit
 * (the buffer then holds ""). Nothing is ever cut in the middle of a number.
 */
#ifndef TALLY_TUI_CONSOLE_FMT_H
#define TALLY_TUI_CONSOLE_FMT_H

#include <stddef.h>
#include <stdint.h>

/* Money from integer minor units of an ISO-4217 currency, with thousands
 * separators; no floating point anywhere. USD "$12,345.67", EUR "€12,345.67",
 * GBP "£12,345.67" (as "EUR 12,345.67" where the LC_CTYPE locale cannot
 * print the symbol); any other code "CAD 12,345.67". The code is matched
 * case-insensitively; zero-decimal (JPY, KRW, ...) and three-decimal (KWD,
 * BHD, ...) currencies get their ISO exponent, any other code two decimals.
 * A sign goes before the symbol ("-$0.01") or before the digits
 * ("CAD -0.01"). NULL or "" currency: just the number; a code that is not
 * three ASCII letters: "???" as the code. Exact over the whole int64 range. */
int console_fmt_money(char *buf, size_t cap, int64_t cents, const char *currency);

/* Parse an amount typed in major units of currency ("250", "250.5",
 * "1,250.00"; JPY "5000") into its minor units, as console_fmt_money
 * writes them: no more decimals than the currency has, no sign, at most
 * 10^12 minor units. Returns 0, or -1 for anything else. */
int console_fmt_parse_money(const char *s, const char *currency, int64_t *out);

/* An integer with thousands separators: "-1,234,567". */
int console_fmt_int(char *buf, size_t cap, int64_t v);

/* part/whole as a percent with one decimal, rounded toward zero: "42.5%",
 * "-3.0%", ">9999%" (or "<-9999%") beyond; "-" when whole <= 0 (no goal). Integer
 * arithmetic only, exact for any int64 operands. */
int console_fmt_percent(char *buf, size_t cap, int64_t part, int64_t whole);

/* How many of `width` cells of a progress bar part/whole fills, rounded down
 * and clamped to 0..width; 0 when whole <= 0 or width <= 0. */
int console_fmt_bar_cells(int64_t part, int64_t whole, int width);

/* Seconds as "H:MM:SS", with a "Nd " prefix from one day on; negative
 * values show as "0:00:00". */
int console_fmt_duration(char *buf, size_t cap, int64_t seconds);

/* A rate such as gifts or jobs per second: one decimal below 10,000
 * ("4.0", "9999.9"), none below 1e9 ("123456"), then "1.23e+09"; "-" for a
 * negative value or NaN. */
int console_fmt_rate(char *buf, size_t cap, double v);

/* A sparkline of v[0..n), oldest first: one cell per value, eight levels
 * scaled to the largest (all lowest when none is above 0; a negative or
 * NaN value counts as 0), in block characters when utf8, else in
 * "_.-=+*#@". Returns the cells written (n when it fits), 0 when nothing
 * fits; buf is always NUL-terminated when cap > 0. */
int console_fmt_spark(char *buf, size_t cap, const double *v, size_t n, int utf8);

/* Milliseconds of latency in a unit that keeps three significant digits at
 * most: "0.05 ms", "12.3 ms", "120 ms", "1.25 s", "42.0 s", "3.5 min",
 * "2.0 h" (hours from 60 min, at most ">999999 h"); "-" for a negative
 * value or NaN (no sample). Never rounds up into the next unit's range
 * ("999 ms", then "1.00 s"). */
int console_fmt_latency(char *buf, size_t cap, double ms);

/* A donation's public id, "dn_42"; "-" when id <= 0. */
int console_fmt_donation(char *buf, size_t cap, int64_t id);

/* Whole minutes as "17 min", from an hour on "2 h 5 min", from a day on
 * "3 d 4 h"; a negative value shows as "0 min". */
int console_fmt_minutes(char *buf, size_t cap, int64_t minutes);

/* The giving day's phase at now_ms (every time in ms since the epoch, on
 * the server's clock): 0 no day (opens_ms 0), 1 before, 2 early giving
 * (from early_ms, 0 for none), 3 open (from opens_ms), 4 closed (from
 * closes_ms). */
int console_fmt_day_phase(int64_t early_ms, int64_t opens_ms, int64_t closes_ms, int64_t now_ms);

/* The header's word on the day at now_ms: "opens in 2:14:05", "early
 * giving, opens in 0:03:00", "open, closes in 5:00:00", "closed"; "" with
 * no day. Whole seconds, rounded up. */
int console_fmt_day(char *buf, size_t cap, int64_t early_ms, int64_t opens_ms, int64_t closes_ms,
                    int64_t now_ms);

struct console_campaign;

/* Whole minutes campaign cc has been paused at now_ms (ms since the epoch,
 * on the server's clock, as paused_since_ms is); -1 when it is not paused
 * or since when is not known (no paused_since_ms, no clock). A
 * paused_since_ms ahead of now_ms counts as 0. */
int64_t console_fmt_paused_min(const struct console_campaign *cc, int64_t now_ms);

/* 1 when cc has been paused longer than limit_min minutes at now_ms (more
 * than limit_min x 60 s, to the millisecond); 0 when not, or when
 * limit_min <= 0 (the alert is off). */
int console_fmt_paused_long(const struct console_campaign *cc, int64_t now_ms, int limit_min);

/* The header's alert for the campaigns of cs[0..n) paused longer than
 * limit_min minutes at now_ms (console_fmt_paused_long): the one paused
 * longest (the first of those paused equally long) as "spring paused 17
 * min", then " +N more" when N others are too. "" when none is (or the
 * alert is off). The slug is copied as it is: draw it through
 * console_fmt_trunc(). */
int console_fmt_paused_alert(char *buf, size_t cap, const struct console_campaign *cs, size_t n,
                             int64_t now_ms, int limit_min);

/* Display columns that console_fmt_trunc() would give the whole of s. Bytes
 * that are not valid UTF-8, control characters and characters the locale
 * cannot print count as one "?" each. NULL counts as "". */
int console_fmt_width(const char *s);

/* Copy src into dst, sanitised for the terminal (each invalid UTF-8 byte,
 * control character or unprintable character becomes '?') and cut to at
 * most max_cols display columns and cap - 1 bytes, never inside a UTF-8
 * sequence and never between a character and its combining marks. When src
 * is cut and ellipsis is non-zero, the last column shows U+2026 "…" (or "~"
 * when the locale cannot print it). Returns the display columns used (>= 0),
 * or -EINVAL for a NULL dst or cap == 0. NULL src counts as "". */
int console_fmt_trunc(char *dst, size_t cap, const char *src, int max_cols, int ellipsis);

/* 1 when needle occurs in hay, ignoring ASCII case; an empty needle always
 * matches. NULL counts as "". */
int console_fmt_contains(const char *hay, const char *needle);

#endif
