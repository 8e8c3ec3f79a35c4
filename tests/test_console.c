/* tests/test_console.c - the console: its pure helpers, the model's
 * lifecycle, console_run's refusals, and the real thing in a terminal:
 * tests/tui_tmux.sh drives $TALLY_CONSOLE_DEMO (tests/console_demo.c) in
 * tmux (make check sets the variable; run from the source root).
 *
 * Part of the one runner (tests/main.c). Built with -DTEST_CONSOLE_MAIN it
 * has its own main() and runs alone.
 */
#include "tests/tests.h"
#include "base/util.h"
#include "base/buf.h"
#include "base/log.h"
#include "tui/console.h"
#include "tui/console_mirror.h"
#include "tui/console_fmt.h"
#include "core/shield.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wchar.h>

/* Formats into a fresh buffer and checks text and returned length. */
#define CHECK_MONEY(cents, cur, want)                                                              \
	do {                                                                                       \
		char b_[64];                                                                       \
		int n_ = console_fmt_money(b_, sizeof b_, (cents), (cur));                         \
		ck_assert_str_eq(b_, (want));                                                      \
		ck_assert_int_eq(n_, (int)strlen(want));                                           \
	} while (0)

#define CHECK_PERCENT(part, whole, want)                                                           \
	do {                                                                                       \
		char b_[32];                                                                       \
		int n_ = console_fmt_percent(b_, sizeof b_, (part), (whole));                      \
		ck_assert_str_eq(b_, (want));                                                      \
		ck_assert_int_eq(n_, (int)strlen(want));                                           \
	} while (0)

static void utf8_locale(void);

/* A valid UTF-8 string decodes completely (nothing cut in half). */
static int valid_utf8(const char *s)
{
	mbstate_t st;
	memset(&st, 0, sizeof st);
	return mbsrtowcs(NULL, &s, 0, &st) != (size_t)-1;
}

/* ---- money ---- */

START_TEST(money_usd)
{
	CHECK_MONEY(0, "USD", "$0.00");
	CHECK_MONEY(1, "USD", "$0.01");
	CHECK_MONEY(99, "USD", "$0.99");
	CHECK_MONEY(100, "USD", "$1.00");
	CHECK_MONEY(99999, "USD", "$999.99");
	CHECK_MONEY(100000, "USD", "$1,000.00");
	CHECK_MONEY(1234567, "USD", "$12,345.67");
	CHECK_MONEY(123456789012, "USD", "$1,234,567,890.12");
}
END_TEST

START_TEST(money_negative)
{
	CHECK_MONEY(-1, "USD", "-$0.01");
	CHECK_MONEY(-1234567, "USD", "-$12,345.67");
	CHECK_MONEY(-250, "EUR",
	            "-\xe2\x82\xac"
	            "2.50");
	CHECK_MONEY(-1234567, "CAD", "CAD -12,345.67");
	CHECK_MONEY(-5, NULL, "-0.05");
}
END_TEST

START_TEST(money_symbols_and_codes)
{
	CHECK_MONEY(1234567, "EUR",
	            "\xe2\x82\xac"
	            "12,345.67");
	CHECK_MONEY(1234567, "GBP",
	            "\xc2\xa3"
	            "12,345.67");
	CHECK_MONEY(1234567, "CAD", "CAD 12,345.67");
	CHECK_MONEY(1234567, "usd", "$12,345.67"); /* case-insensitive */
	CHECK_MONEY(1234567, "chf", "CHF 12,345.67");
	/* ISO-4217 exponents other than 2 */
	CHECK_MONEY(1234567, "JPY", "JPY 1,234,567");
	CHECK_MONEY(1234567, "KWD", "KWD 1,234.567");
	CHECK_MONEY(5, "KWD", "KWD 0.005");
}
END_TEST

START_TEST(money_unknown_or_missing_currency)
{
	CHECK_MONEY(100, "XYZ", "XYZ 1.00"); /* unknown but well-formed: the code */
	CHECK_MONEY(100, "", "1.00");
	CHECK_MONEY(100, NULL, "1.00");
	CHECK_MONEY(100, "US", "??? 1.00");
	CHECK_MONEY(100, "USDX", "??? 1.00");
	CHECK_MONEY(100, "U$D", "??? 1.00");
	CHECK_MONEY(100, "\x1b[m", "??? 1.00");
}
END_TEST

START_TEST(money_int64_limits)
{
	CHECK_MONEY(INT64_MAX, "USD", "$92,233,720,368,547,758.07");
	CHECK_MONEY(INT64_MIN, "USD", "-$92,233,720,368,547,758.08");
	CHECK_MONEY(INT64_MIN + 1, "USD", "-$92,233,720,368,547,758.07");
	CHECK_MONEY(INT64_MAX, "CAD", "CAD 92,233,720,368,547,758.07");
	CHECK_MONEY(INT64_MIN, "CAD", "CAD -92,233,720,368,547,758.08");
	CHECK_MONEY(INT64_MAX, "JPY", "JPY 9,223,372,036,854,775,807");
	CHECK_MONEY(INT64_MIN, "KWD", "KWD -9,223,372,036,854,775.808");
}
END_TEST

START_TEST(money_symbol_needs_locale)
{
	/* where the locale cannot print "€", the code stands in */
	ck_assert_ptr_nonnull(setlocale(LC_CTYPE, "C"));
	CHECK_MONEY(1234567, "EUR", "EUR 12,345.67");
	CHECK_MONEY(-1, "GBP", "GBP -0.01");
	CHECK_MONEY(1234567, "USD", "$12,345.67");
	utf8_locale(); /* for the tests after this one under CK_FORK=no */
}
END_TEST

START_TEST(money_buffer_bounds)
{
	char b[8];

	memset(b, 'x', sizeof b);
	ck_assert_int_eq(console_fmt_money(b, sizeof b, 1234567, "USD"), -ENOSPC);
	ck_assert_str_eq(b, "");
	/* exactly enough: "$123.45" is 7 bytes + NUL */
	ck_assert_int_eq(console_fmt_money(b, sizeof b, 12345, "USD"), 7);
	ck_assert_str_eq(b, "$123.45");
	ck_assert_int_eq(console_fmt_money(b, 7, 12345, "USD"), -ENOSPC);
	ck_assert_int_eq(console_fmt_money(NULL, 10, 1, "USD"), -EINVAL);
	ck_assert_int_eq(console_fmt_money(b, 0, 1, "USD"), -EINVAL);
}
END_TEST

/* ---- integers, percent, bar, duration ---- */

START_TEST(int_grouping)
{
	char b[40];

	ck_assert_int_eq(console_fmt_int(b, sizeof b, 0), 1);
	ck_assert_str_eq(b, "0");
	console_fmt_int(b, sizeof b, 999);
	ck_assert_str_eq(b, "999");
	console_fmt_int(b, sizeof b, 1000);
	ck_assert_str_eq(b, "1,000");
	console_fmt_int(b, sizeof b, -1234567);
	ck_assert_str_eq(b, "-1,234,567");
	console_fmt_int(b, sizeof b, INT64_MAX);
	ck_assert_str_eq(b, "9,223,372,036,854,775,807");
	console_fmt_int(b, sizeof b, INT64_MIN);
	ck_assert_str_eq(b, "-9,223,372,036,854,775,808");
	ck_assert_int_eq(console_fmt_int(b, 5, 12345), -ENOSPC);
}
END_TEST

START_TEST(percent_values)
{
	CHECK_PERCENT(0, 100, "0.0%");
	CHECK_PERCENT(50, 100, "50.0%");
	CHECK_PERCENT(1, 3, "33.3%");
	CHECK_PERCENT(2, 3, "66.6%"); /* toward zero, never rounded up to a goal */
	CHECK_PERCENT(999, 1000, "99.9%");
	CHECK_PERCENT(100, 100, "100.0%");
	CHECK_PERCENT(150, 100, "150.0%");
	CHECK_PERCENT(9999, 100, "9999.0%");
	CHECK_PERCENT(10000, 100, ">9999%");
	CHECK_PERCENT(-50, 100, "-50.0%");
	CHECK_PERCENT(-1, 10000, "0.0%"); /* no "-0.0%" */
	CHECK_PERCENT(-10000, 100, "<-9999%");
	CHECK_PERCENT(5, 0, "-"); /* no goal */
	CHECK_PERCENT(5, -1, "-");
}
END_TEST

START_TEST(percent_int64_limits)
{
	CHECK_PERCENT(INT64_MAX, INT64_MAX, "100.0%");
	CHECK_PERCENT(INT64_MAX - 1, INT64_MAX, "99.9%");
	CHECK_PERCENT(INT64_MAX / 2, INT64_MAX, "49.9%");
	CHECK_PERCENT(INT64_MAX / 3, INT64_MAX / 2, "66.6%");
	CHECK_PERCENT(INT64_MAX, 1, ">9999%");
	CHECK_PERCENT(INT64_MIN, INT64_MAX, "-100.0%");
	CHECK_PERCENT(INT64_MIN, 1, "<-9999%");
	CHECK_PERCENT(1, INT64_MAX, "0.0%");
}
END_TEST

START_TEST(bar_cells)
{
	ck_assert_int_eq(console_fmt_bar_cells(0, 100, 10), 0);
	ck_assert_int_eq(console_fmt_bar_cells(9, 100, 10), 0);
	ck_assert_int_eq(console_fmt_bar_cells(10, 100, 10), 1);
	ck_assert_int_eq(console_fmt_bar_cells(55, 100, 10), 5);
	ck_assert_int_eq(console_fmt_bar_cells(99, 100, 10), 9);
	ck_assert_int_eq(console_fmt_bar_cells(100, 100, 10), 10);
	ck_assert_int_eq(console_fmt_bar_cells(150, 100, 10), 10);
	ck_assert_int_eq(console_fmt_bar_cells(-5, 100, 10), 0);
	ck_assert_int_eq(console_fmt_bar_cells(50, 0, 10), 0);
	ck_assert_int_eq(console_fmt_bar_cells(50, 100, 0), 0);
	ck_assert_int_eq(console_fmt_bar_cells(INT64_MAX - 1, INT64_MAX, 10), 9);
	ck_assert_int_eq(console_fmt_bar_cells(INT64_MAX / 2 + 1, INT64_MAX, 10), 5);
}
END_TEST

START_TEST(duration)
{
	char b[32];

	console_fmt_duration(b, sizeof b, 0);
	ck_assert_str_eq(b, "0:00:00");
	console_fmt_duration(b, sizeof b, 3661);
	ck_assert_str_eq(b, "1:01:01");
	console_fmt_duration(b, sizeof b, 86399);
	ck_assert_str_eq(b, "23:59:59");
	console_fmt_duration(b, sizeof b, 90061);
	ck_assert_str_eq(b, "1d 1:01:01");
	console_fmt_duration(b, sizeof b, -5);
	ck_assert_str_eq(b, "0:00:00");
	ck_assert_int_gt(console_fmt_duration(b, sizeof b, INT64_MAX), 0);
}
END_TEST

START_TEST(minutes)
{
	char b[32];

	ck_assert_int_eq(console_fmt_minutes(b, sizeof b, 0), 5);
	ck_assert_str_eq(b, "0 min");
	console_fmt_minutes(b, sizeof b, 17);
	ck_assert_str_eq(b, "17 min");
	console_fmt_minutes(b, sizeof b, 59);
	ck_assert_str_eq(b, "59 min");
	console_fmt_minutes(b, sizeof b, 60);
	ck_assert_str_eq(b, "1 h 0 min");
	console_fmt_minutes(b, sizeof b, 125);
	ck_assert_str_eq(b, "2 h 5 min");
	console_fmt_minutes(b, sizeof b, 24 * 60 + 61);
	ck_assert_str_eq(b, "1 d 1 h");
	console_fmt_minutes(b, sizeof b, -3);
	ck_assert_str_eq(b, "0 min");
	ck_assert_int_gt(console_fmt_minutes(b, sizeof b, INT64_MAX), 0);
	ck_assert_int_eq(console_fmt_minutes(b, 5, 17), -ENOSPC);
}
END_TEST

/* A campaign for the pause alerts: paused (or not) since `since`. */
static struct console_campaign paused_at(const char *slug, const char *status, int64_t since)
{
	struct console_campaign cc;

	memset(&cc, 0, sizeof cc);
	snprintf(cc.slug, sizeof cc.slug, "%s", slug);
	snprintf(cc.name, sizeof cc.name, "Campaign %s", slug);
	memcpy(cc.currency, "USD", 4);
	snprintf(cc.status, sizeof cc.status, "%s", status);
	cc.paused_since_ms = since;
	return cc;
}

#define NOW_MS INT64_C(1800000000000)
#define MIN_MS INT64_C(60000)

START_TEST(paused_alert_text)
{
	struct console_campaign cs[4];
	char b[128];

	cs[0] = paused_at("spring", "paused", NOW_MS - 15 * MIN_MS);
	cs[1] = paused_at("summer", "active", NOW_MS - 90 * MIN_MS); /* resumed */
	/* exactly 15 minutes is not longer than 15 */
	ck_assert_int_eq(console_fmt_paused_alert(b, sizeof b, cs, 2, NOW_MS, 15), 0);
	ck_assert_str_eq(b, "");
	ck_assert_int_eq(console_fmt_paused_min(&cs[0], NOW_MS), 15);
	ck_assert_int_eq(console_fmt_paused_min(&cs[1], NOW_MS), -1);
	ck_assert(!console_fmt_paused_long(&cs[0], NOW_MS, 15));
	ck_assert(console_fmt_paused_long(&cs[0], NOW_MS + 1, 15));
	console_fmt_paused_alert(b, sizeof b, cs, 2, NOW_MS + 1, 15);
	ck_assert_str_eq(b, "spring paused 15 min");
	console_fmt_paused_alert(b, sizeof b, cs, 2, NOW_MS + 2 * MIN_MS, 15);
	ck_assert_str_eq(b, "spring paused 17 min");
	/* off, no clock, no paused_since: no alert */
	ck_assert_int_eq(console_fmt_paused_alert(b, sizeof b, cs, 2, NOW_MS + MIN_MS * 60, 0), 0);
	ck_assert_int_eq(console_fmt_paused_alert(b, sizeof b, cs, 2, 0, 15), 0);
	cs[2] = paused_at("winter", "paused", 0);
	ck_assert_int_eq(console_fmt_paused_alert(b, sizeof b, cs + 2, 1, NOW_MS, 1), 0);
	/* several: the longest first, then how many more */
	cs[2] = paused_at("autumn", "paused", NOW_MS - 125 * MIN_MS);
	cs[3] = paused_at("winter", "paused", NOW_MS - 20 * MIN_MS);
	console_fmt_paused_alert(b, sizeof b, cs, 4, NOW_MS, 15);
	ck_assert_str_eq(b, "autumn paused 2 h 5 min +1 more");
	console_fmt_paused_alert(b, sizeof b, cs, 4, NOW_MS + MIN_MS, 15);
	ck_assert_str_eq(b, "autumn paused 2 h 6 min +2 more");
	/* a paused_since ahead of the server's clock is 0 minutes */
	cs[0] = paused_at("spring", "paused", NOW_MS + MIN_MS);
	ck_assert_int_eq(console_fmt_paused_min(&cs[0], NOW_MS), 0);
	ck_assert(!console_fmt_paused_long(&cs[0], NOW_MS, 1));
	ck_assert_int_eq(console_fmt_paused_alert(b, 8, cs + 2, 1, NOW_MS, 15), -ENOSPC);
}
END_TEST

/* The header (drawn off screen through the test hook) names a campaign
 * paused longer than the server's alert_paused_min, and only then, on the
 * server's clock (the model's server_now_ms), with the console's own
 * clock nowhere: no test waits. */
START_TEST(header_alerts_long_pauses_only)
{
	struct console_campaign cs[3];
	struct console_model m;
	char out[2048];

	memset(&m, 0, sizeof m);
	snprintf(m.server, sizeof m.server, "10.0.0.1:8080");
	m.connected = 1;
	m.alert_paused_min = 15;
	m.server_now_ms = NOW_MS;
	cs[0] = paused_at("spring", "paused", NOW_MS - 15 * MIN_MS);
	cs[1] = paused_at("summer", "active", 0);
	m.campaigns = cs;
	m.n_campaigns = 2;
	ck_assert_int_eq(console_header_text(&m, 120, out, sizeof out), 0);
	ck_assert_msg(strstr(out, " tally 10.0.0.1:8080  connected"), "header: %s", out);
	ck_assert_msg(!strstr(out, "paused"), "an alert at 15 min exactly: %s", out);
	m.server_now_ms = NOW_MS + 2 * MIN_MS;
	ck_assert_int_eq(console_header_text(&m, 120, out, sizeof out), 0);
	ck_assert_msg(strstr(out, "connected  spring paused 17 min\n"), "header: %s", out);
	/* the next row is the day's numbers, as ever */
	ck_assert_msg(strstr(out, "\n day "), "header: %s", out);
	/* a server that asks for an hour: not yet */
	m.alert_paused_min = 60;
	ck_assert_int_eq(console_header_text(&m, 120, out, sizeof out), 0);
	ck_assert_msg(!strstr(out, "paused"), "header: %s", out);
	/* off */
	m.alert_paused_min = 0;
	m.server_now_ms = NOW_MS + 600 * MIN_MS;
	ck_assert_int_eq(console_header_text(&m, 120, out, sizeof out), 0);
	ck_assert_msg(!strstr(out, "paused"), "header: %s", out);
	/* several, at 80 columns */
	m.alert_paused_min = 15;
	m.server_now_ms = NOW_MS;
	cs[0] = paused_at("spring", "paused", NOW_MS - 16 * MIN_MS);
	cs[1] = paused_at("summer", "paused", NOW_MS - 40 * MIN_MS);
	cs[2] = paused_at("autumn", "paused", NOW_MS - 5 * MIN_MS);
	m.n_campaigns = 3;
	ck_assert_int_eq(console_header_text(&m, 80, out, sizeof out), 0);
	ck_assert_msg(strstr(out, "summer paused 40 min +1 more\n"), "header: %s", out);
	ck_assert_int_eq(console_header_text(&m, 80, out, 8), -ENOSPC);
	ck_assert_int_eq(console_header_text(&m, 10, out, sizeof out), -EINVAL);
	ck_assert_int_eq(console_header_text(NULL, 80, out, sizeof out), -EINVAL);
}
END_TEST

/* The giving day in the header's second row: a countdown to the opening,
 * early giving, open until, closed; nothing without a day. On the
 * server's clock (server_now_ms). */
START_TEST(header_shows_the_day)
{
	struct console_model m;
	char out[2048], b[96];

	memset(&m, 0, sizeof m);
	snprintf(m.server, sizeof m.server, "10.0.0.1:8080");
	m.connected = 1;
	m.server_now_ms = NOW_MS;
	ck_assert_int_eq(console_header_text(&m, 160, out, sizeof out), 0);
	ck_assert_msg(!strstr(out, "opens") && !strstr(out, "closed"), "no day: %s", out);
	m.day_early_ms = NOW_MS + 10 * MIN_MS;
	m.day_opens_ms = NOW_MS + 134 * MIN_MS + 5000;
	m.day_closes_ms = NOW_MS + 600 * MIN_MS;
	ck_assert_int_eq(console_header_text(&m, 160, out, sizeof out), 0);
	ck_assert_msg(strstr(out, "\n day -  opens in 2:14:05  gifts/s"), "header: %s", out);
	m.server_now_ms = NOW_MS + 10 * MIN_MS; /* early giving from here */
	ck_assert_int_eq(console_header_text(&m, 160, out, sizeof out), 0);
	ck_assert_msg(strstr(out, "early giving, opens in 2:04:05"), "header: %s", out);
	m.server_now_ms = NOW_MS + 134 * MIN_MS + 5000;
	ck_assert_int_eq(console_header_text(&m, 160, out, sizeof out), 0);
	ck_assert_msg(strstr(out, "open, closes in 7:45:55"), "header: %s", out);
	m.server_now_ms = NOW_MS + 600 * MIN_MS;
	ck_assert_int_eq(console_header_text(&m, 160, out, sizeof out), 0);
	ck_assert_msg(strstr(out, "\n day -  closed  gifts/s"), "header: %s", out);
	/* the rule at its bounds, and rounding up to whole seconds */
	ck_assert_int_eq(console_fmt_day_phase(0, 0, 0, NOW_MS), 0);
	ck_assert_int_eq(console_fmt_day_phase(0, NOW_MS, NOW_MS + 1, NOW_MS - 1), 1);
	ck_assert_int_eq(console_fmt_day_phase(NOW_MS - 1, NOW_MS, NOW_MS + 1, NOW_MS - 1), 2);
	ck_assert_int_eq(console_fmt_day_phase(0, NOW_MS, NOW_MS + 1, NOW_MS), 3);
	ck_assert_int_eq(console_fmt_day_phase(0, NOW_MS, NOW_MS + 1, NOW_MS + 1), 4);
	ck_assert_int_gt(console_fmt_day(b, sizeof b, 0, NOW_MS + 1, NOW_MS + 5, NOW_MS), 0);
	ck_assert_str_eq(b, "opens in 0:00:01");
	ck_assert_int_eq(console_fmt_day(b, sizeof b, 0, 0, 0, NOW_MS), 0);
	ck_assert_str_eq(b, "");
	ck_assert_int_eq(console_fmt_day(b, 4, 0, NOW_MS + 1, NOW_MS + 5, NOW_MS), -ENOSPC);
	ck_assert_int_eq(console_fmt_day(NULL, 4, 0, NOW_MS + 1, NOW_MS + 5, NOW_MS), -EINVAL);
}
END_TEST

#define CHECK_FMT(fn, v, want)                                                                     \
	do {                                                                                       \
		char b_[32];                                                                       \
		int n_ = fn(b_, sizeof b_, (v));                                                   \
		ck_assert_str_eq(b_, (want));                                                      \
		ck_assert_int_eq(n_, (int)strlen(want));                                           \
	} while (0)

START_TEST(rate)
{
	CHECK_FMT(console_fmt_rate, 0.0, "0.0");
	CHECK_FMT(console_fmt_rate, 6.54, "6.5");
	CHECK_FMT(console_fmt_rate, 9999.94, "9999.9");
	CHECK_FMT(console_fmt_rate, 10000.0, "10000");
	CHECK_FMT(console_fmt_rate, 123456.7, "123457");
	CHECK_FMT(console_fmt_rate, 2e9, "2.00e+09");
	CHECK_FMT(console_fmt_rate, -1.0, "-");
	CHECK_FMT(console_fmt_rate, NAN, "-");
	CHECK_FMT(console_fmt_rate, INFINITY, "inf");
}
END_TEST

START_TEST(spark_levels)
{
	const double v[] = {0, 1, 2, 3, 4, 5, 6, 7, -1, NAN};
	char buf[64];

	ck_assert_int_eq(console_fmt_spark(buf, sizeof buf, v, 10, 0), 10);
	ck_assert_str_eq(buf, "_.-=+*#@__");
	ck_assert_int_eq(console_fmt_spark(buf, sizeof buf, v, 8, 1), 8);
	ck_assert_str_eq(buf, "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588");
	/* all zero: the lowest level; nothing: empty */
	ck_assert_int_eq(console_fmt_spark(buf, sizeof buf, v, 1, 0), 1);
	ck_assert_str_eq(buf, "_");
	ck_assert_int_eq(console_fmt_spark(buf, sizeof buf, v, 0, 1), 0);
	ck_assert_str_eq(buf, "");
	/* scaled to the largest, whatever its size */
	{
		const double big[] = {1e6, 5e5, 2e6};

		ck_assert_int_eq(console_fmt_spark(buf, sizeof buf, big, 3, 0), 3);
		ck_assert_str_eq(buf, "+-@"); /* 3.5 and 1.75 of 7 levels, rounded */
	}
	/* bounded: whole cells only, always terminated */
	ck_assert_int_eq(console_fmt_spark(buf, 7, v, 10, 1), 2);
	ck_assert_str_eq(buf, "\u2581\u2582");
	ck_assert_int_eq(console_fmt_spark(buf, 1, v, 10, 0), 0);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(console_fmt_spark(buf, 0, v, 10, 0), 0);
}
END_TEST

START_TEST(latency_units)
{
	CHECK_FMT(console_fmt_latency, 0.0, "0.00 ms");
	CHECK_FMT(console_fmt_latency, 0.05, "0.05 ms");
	CHECK_FMT(console_fmt_latency, 9.99, "9.99 ms");
	CHECK_FMT(console_fmt_latency, 12.34, "12.3 ms");
	CHECK_FMT(console_fmt_latency, 120, "120 ms");
	CHECK_FMT(console_fmt_latency, 999.4, "999 ms");
	CHECK_FMT(console_fmt_latency, 1250, "1.25 s");
	CHECK_FMT(console_fmt_latency, 42000, "42.0 s");
	CHECK_FMT(console_fmt_latency, 210000, "3.5 min");
	CHECK_FMT(console_fmt_latency, 7.2e6, "2.0 h");
	CHECK_FMT(console_fmt_latency, 3.6e8, "100 h");
	CHECK_FMT(console_fmt_latency, 1e300, ">999999 h");
	CHECK_FMT(console_fmt_latency, INFINITY, ">999999 h");
	CHECK_FMT(console_fmt_latency, -1, "-"); /* no sample */
	CHECK_FMT(console_fmt_latency, NAN, "-");
}
END_TEST

START_TEST(latency_never_rounds_into_the_next_unit)
{
	/* what would round up to "10.00 ms", "100.0 ms", "1000 ms", "60.0 s",
	 * "60.0 min" shows in the next unit instead */
	CHECK_FMT(console_fmt_latency, 9.996, "10.0 ms");
	CHECK_FMT(console_fmt_latency, 99.96, "100 ms");
	CHECK_FMT(console_fmt_latency, 999.6, "1.00 s");
	CHECK_FMT(console_fmt_latency, 9996, "10.0 s");
	CHECK_FMT(console_fmt_latency, 59960, "1.0 min");
	CHECK_FMT(console_fmt_latency, 3597000, "1.0 h");
	/* nor does any value in between, and none is wider than 9 columns */
	static const char *const never[] = {"10.00 ", "100.0 ", "1000 ms", "60.0 s", "60.0 min"};
	for (double ms = 0.001; ms < 1e10; ms *= 1.01) {
		char b[32];
		ck_assert_int_gt(console_fmt_latency(b, sizeof b, ms), 0);
		ck_assert_msg(strlen(b) <= 9, "%g ms gave \"%s\"", ms, b);
		for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
			ck_assert_msg(strncmp(b, never[i], strlen(never[i])) != 0,
			              "%g ms gave \"%s\"", ms, b);
	}
}
END_TEST

START_TEST(latency_buffer_bounds)
{
	char b[4];

	ck_assert_int_eq(console_fmt_latency(b, sizeof b, 120), -ENOSPC);
	ck_assert_str_eq(b, "");
	ck_assert_int_eq(console_fmt_latency(b, sizeof b, -1), 1);
	ck_assert_str_eq(b, "-");
	ck_assert_int_eq(console_fmt_latency(NULL, 4, 1), -EINVAL);
	ck_assert_int_eq(console_fmt_rate(b, 0, 1), -EINVAL);
	ck_assert_int_eq(console_fmt_rate(b, 3, 123), -ENOSPC);
}
END_TEST

START_TEST(donation_id)
{
	char b[8];

	CHECK_FMT(console_fmt_donation, 42, "dn_42");
	CHECK_FMT(console_fmt_donation, INT64_MAX, "dn_9223372036854775807");
	CHECK_FMT(console_fmt_donation, 0, "-");
	CHECK_FMT(console_fmt_donation, -7, "-");
	ck_assert_int_eq(console_fmt_donation(b, sizeof b, 12345), -ENOSPC);
	ck_assert_str_eq(b, "");
}
END_TEST

/* ---- display width and truncation ---- */

START_TEST(width_utf8)
{
	ck_assert_int_eq(console_fmt_width(""), 0);
	ck_assert_int_eq(console_fmt_width(NULL), 0);
	ck_assert_int_eq(console_fmt_width("abc"), 3);
	ck_assert_int_eq(console_fmt_width("Caf\xc3\xa9"), 4);              /* Café */
	ck_assert_int_eq(console_fmt_width("\xe6\x9d\xb1\xe4\xba\xac"), 4); /* 東京 */
	ck_assert_int_eq(console_fmt_width("e\xcc\x81"), 1);                /* e + U+0301 */
	ck_assert_int_eq(console_fmt_width("\x1b[31m"), 5);                 /* ESC counts as "?" */
	ck_assert_int_eq(console_fmt_width("\xff\xfe"), 2);
}
END_TEST

#define CHECK_TRUNC(src, cols, ell, want, want_cols)                                               \
	do {                                                                                       \
		char b_[64];                                                                       \
		int n_ = console_fmt_trunc(b_, sizeof b_, (src), (cols), (ell));                   \
		ck_assert_str_eq(b_, (want));                                                      \
		ck_assert_int_eq(n_, (want_cols));                                                 \
		ck_assert(valid_utf8(b_));                                                         \
	} while (0)

START_TEST(trunc_ascii)
{
	CHECK_TRUNC("Hello", 10, 0, "Hello", 5);
	CHECK_TRUNC("Hello", 5, 1, "Hello", 5); /* fits: no ellipsis */
	CHECK_TRUNC("Hello world", 5, 0, "Hello", 5);
	CHECK_TRUNC("Hello world", 5, 1, "Hell\xe2\x80\xa6", 5);
	CHECK_TRUNC("Hello", 0, 1, "", 0);
	CHECK_TRUNC("Hello", -3, 0, "", 0);
	CHECK_TRUNC(NULL, 5, 1, "", 0);
	CHECK_TRUNC("Hello", 1, 1, "\xe2\x80\xa6", 1);
}
END_TEST

START_TEST(trunc_multibyte)
{
	/* Café Crème: é and è are two bytes, one column */
	CHECK_TRUNC("Caf\xc3\xa9 Cr\xc3\xa8me", 4, 0, "Caf\xc3\xa9", 4);
	CHECK_TRUNC("Caf\xc3\xa9 Cr\xc3\xa8me", 3, 0, "Caf", 3);
	CHECK_TRUNC("Caf\xc3\xa9 Cr\xc3\xa8me", 8, 1, "Caf\xc3\xa9 Cr\xe2\x80\xa6", 8);
	CHECK_TRUNC("Caf\xc3\xa9 Cr\xc3\xa8me", 9, 1, "Caf\xc3\xa9 Cr\xc3\xa8\xe2\x80\xa6", 9);
	CHECK_TRUNC("Caf\xc3\xa9 Cr\xc3\xa8me", 10, 1, "Caf\xc3\xa9 Cr\xc3\xa8me", 10);
}
END_TEST

START_TEST(trunc_wide)
{
	/* 東京タワー: five characters of two columns each */
	const char *s = "\xe6\x9d\xb1\xe4\xba\xac\xe3\x82\xbf\xe3\x83\xaf\xe3\x83\xbc";

	CHECK_TRUNC(s, 10, 0, s, 10);
	CHECK_TRUNC(s, 5, 0, "\xe6\x9d\xb1\xe4\xba\xac", 4); /* a half never shows */
	CHECK_TRUNC(s, 4, 0, "\xe6\x9d\xb1\xe4\xba\xac", 4);
	CHECK_TRUNC(s, 5, 1, "\xe6\x9d\xb1\xe4\xba\xac\xe2\x80\xa6", 5);
	CHECK_TRUNC(s, 4, 1, "\xe6\x9d\xb1\xe2\x80\xa6", 3);
	CHECK_TRUNC(s, 1, 0, "", 0);
}
END_TEST

START_TEST(trunc_combining)
{
	/* "Cafe\u0301 x": the accent stays with its e */
	CHECK_TRUNC("Cafe\xcc\x81 x", 4, 0, "Cafe\xcc\x81", 4);
	CHECK_TRUNC("Cafe\xcc\x81 x", 5, 1, "Cafe\xcc\x81\xe2\x80\xa6", 5);
}
END_TEST

START_TEST(trunc_invalid_and_control)
{
	CHECK_TRUNC("\xff\xfe ok", 10, 0, "?? ok", 5);
	CHECK_TRUNC("ab\xe6\x9d", 10, 0, "ab??", 4);       /* cut-off sequence */
	CHECK_TRUNC("\xc0\xaf", 10, 0, "??", 2);           /* overlong '/' */
	CHECK_TRUNC("\xed\xa0\x80", 10, 0, "???", 3);      /* surrogate */
	CHECK_TRUNC("\xf4\x90\x80\x80", 10, 0, "????", 4); /* > U+10FFFF */
	CHECK_TRUNC("a\nb\tc", 10, 0, "a?b?c", 5);
	CHECK_TRUNC("\x1b]0;pwned\x07", 20, 0, "?]0;pwned?", 10);
	CHECK_TRUNC("x\xc2\x9by", 10, 0, "x?y", 3); /* C1 CSI */
}
END_TEST

START_TEST(trunc_byte_capacity)
{
	char b[4];
	int n;

	/* 東 is 3 bytes: it fits a 4-byte buffer, 東京 does not */
	n = console_fmt_trunc(b, sizeof b, "\xe6\x9d\xb1\xe4\xba\xac", 10, 0);
	ck_assert_str_eq(b, "\xe6\x9d\xb1");
	ck_assert_int_eq(n, 2);
	/* with an ellipsis the budget goes to "…" */
	n = console_fmt_trunc(b, sizeof b, "\xe6\x9d\xb1\xe4\xba\xac", 10, 1);
	ck_assert_str_eq(b, "\xe2\x80\xa6");
	ck_assert_int_eq(n, 1);
	n = console_fmt_trunc(b, 2, "abc", 10, 1);
	ck_assert_str_eq(b, "~");
	ck_assert_int_eq(n, 1);
	n = console_fmt_trunc(b, 1, "abc", 10, 1);
	ck_assert_str_eq(b, "");
	ck_assert_int_eq(n, 0);
	/* a combining mark that does not fit takes its base with it */
	n = console_fmt_trunc(b, sizeof b, "abe\xcc\x81", 10, 0);
	ck_assert_str_eq(b, "ab");
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(console_fmt_trunc(NULL, 4, "a", 1, 0), -EINVAL);
	ck_assert_int_eq(console_fmt_trunc(b, 0, "a", 1, 0), -EINVAL);
}
END_TEST

START_TEST(trunc_never_splits)
{
	/* every width and byte budget over a mixed string gives valid UTF-8
	 * whose width is within the budget */
	const char *s = "A\xc3\xa9\xe6\x9d\xb1"
	                "e\xcc\x81\xf0\x9f\x8e\x89 z\xe4\xba\xac";
	char b[64];

	for (size_t cap = 1; cap < sizeof b; cap++) {
		for (int cols = 0; cols < 16; cols++) {
			for (int ell = 0; ell < 2; ell++) {
				int n = console_fmt_trunc(b, cap, s, cols, ell);
				ck_assert_int_ge(n, 0);
				ck_assert_int_le(n, cols);
				ck_assert_uint_lt(strlen(b), cap);
				ck_assert(valid_utf8(b));
				ck_assert_int_eq(console_fmt_width(b), n);
			}
		}
	}
}
END_TEST

START_TEST(contains)
{
	ck_assert(console_fmt_contains("Spring Gala", "gala"));
	ck_assert(console_fmt_contains("spring-gala", "SPRING"));
	ck_assert(console_fmt_contains("abc", ""));
	ck_assert(console_fmt_contains("abc", NULL));
	ck_assert(!console_fmt_contains(NULL, "a"));
	ck_assert(!console_fmt_contains("abc", "abd"));
	ck_assert(!console_fmt_contains("ab", "abc"));
	ck_assert(console_fmt_contains("Caf\xc3\xa9", "f\xc3\xa9"));
}
END_TEST

/* ---- model and run ---- */

START_TEST(model_fini_frees_and_zeroes)
{
	struct console_model m;

	memset(&m, 0x5a, sizeof m);
	m.n_campaigns = 3;
	m.campaigns = calloc(3, sizeof *m.campaigns);
	ck_assert_ptr_nonnull(m.campaigns);
	snprintf(m.server, sizeof m.server, "127.0.0.1:8080");
	console_model_fini(&m);
	ck_assert_ptr_null(m.campaigns);
	ck_assert_uint_eq(m.n_campaigns, 0);
	ck_assert_str_eq(m.server, "");
	ck_assert_str_eq(m.error, "");
	ck_assert_int_eq(m.connected, 0);
	ck_assert_int_eq(m.donations_total, 0);
	console_model_fini(&m); /* twice is harmless */
	console_model_fini(NULL);
}
END_TEST

START_TEST(model_fini_empty)
{
	struct console_model m = {0};

	console_model_fini(&m);
	ck_assert_ptr_null(m.campaigns);
}
END_TEST

START_TEST(model_fini_clears_queues_and_dead_jobs)
{
	struct console_model m = {0};

	m.n_queues = 3;
	snprintf(m.queues[0].name, sizeof m.queues[0].name, "payments");
	m.queues[0].paused = 1;
	m.queues[0].dead = 7;
	m.n_dead = 2;
	m.dead[1].id = 42;
	snprintf(m.dead[1].last_error, sizeof m.dead[1].last_error, "timeout");
	console_model_fini(&m);
	ck_assert_uint_eq(m.n_queues, 0);
	ck_assert_uint_eq(m.n_dead, 0);
	ck_assert_str_eq(m.queues[0].name, "");
	ck_assert_int_eq(m.queues[0].paused, 0);
	ck_assert_int_eq(m.dead[1].id, 0);
	ck_assert_str_eq(m.dead[1].last_error, "");
}
END_TEST

/* util_fair_share(avail, n, cap) gives want[] and returns their sum. */
static void check_share(const int64_t *avail, size_t n, size_t cap, const size_t *want)
{
	size_t take[8], total = 0;

	ck_assert_uint_le(n, 8);
	memset(take, 0xa5, sizeof take);
	size_t got = util_fair_share(avail, n, cap, take);
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(take[i] == want[i], "queue %zu: took %zu, want %zu (cap %zu)", i,
		              take[i], want[i], cap);
		total += take[i];
	}
	ck_assert_uint_eq(got, total);
}

START_TEST(dead_share_fair)
{
	/* everything fits */
	check_share((const int64_t[]){3, 0, 2}, 3, 50, (const size_t[]){3, 0, 2});
	/* one queue full of dead jobs cannot hide the others */
	check_share((const int64_t[]){1000, 2, 5}, 3, 50, (const size_t[]){43, 2, 5});
	check_share((const int64_t[]){1000, 1000, 1000}, 3, 50, (const size_t[]){17, 17, 16});
	check_share((const int64_t[]){1000, 20, 1000}, 3, 50, (const size_t[]){17, 17, 16});
	/* what a small queue leaves goes to the others */
	check_share((const int64_t[]){1000, 10, 1000}, 3, 50, (const size_t[]){20, 10, 20});
	check_share((const int64_t[]){1000, 10, 1000}, 3, 51, (const size_t[]){21, 10, 20});
	/* fewer rows than queues: the first ones get one each */
	check_share((const int64_t[]){5, 5, 5}, 3, 2, (const size_t[]){1, 1, 0});
	/* exactly the budget */
	check_share((const int64_t[]){25, 25}, 2, 50, (const size_t[]){25, 25});
}
END_TEST

START_TEST(dead_share_edges)
{
	size_t take[3] = {9, 9, 9};

	check_share((const int64_t[]){0, 0, 0}, 3, 50, (const size_t[]){0, 0, 0});
	check_share((const int64_t[]){-5, 4, INT64_MIN}, 3, 50, (const size_t[]){0, 4, 0});
	check_share((const int64_t[]){INT64_MAX, INT64_MAX, 1}, 3, 50, (const size_t[]){25, 24, 1});
	check_share((const int64_t[]){7, 7, 7}, 3, 0, (const size_t[]){0, 0, 0});
	ck_assert_uint_eq(util_fair_share(NULL, 0, 50, take), 0);
	ck_assert_uint_eq(take[0], 9); /* n = 0: nothing written */
}
END_TEST

static int never_fetch(void *ctx, struct console_model *m)
{
	(void)ctx;
	(void)m;
	ck_abort_msg("fetch must not run without a terminal");
	return 0;
}

START_TEST(run_needs_a_terminal)
{
	struct console_source src = {.fetch = never_fetch};
	volatile sig_atomic_t stop = 0;
	int fd = open("/dev/null", O_RDWR);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_ge(dup2(fd, STDIN_FILENO), 0); /* forked: only this test's */
	ck_assert_int_eq(console_run(&src, &stop), -ENOTTY);
	close(fd);
}
END_TEST

START_TEST(run_rejects_bad_source)
{
	struct console_source src = {.fetch = NULL};

	ck_assert_int_eq(console_run(NULL, NULL), -EINVAL);
	ck_assert_int_eq(console_run(&src, NULL), -EINVAL);
}
END_TEST

/* ---- the console in a terminal ---- */

START_TEST(tmux_drives_the_demo)
{
	const char *demo = getenv("TALLY_CONSOLE_DEMO");
	const char *script = "tests/tui_tmux.sh";
	int status = 0;
	pid_t pid;

	ck_assert_msg(demo && demo[0],
	              "set TALLY_CONSOLE_DEMO to the console demo binary (make check does)");
	ck_assert_msg(access(script, R_OK) == 0, "%s not found: run from the source root", script);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* its PASS line is noise here; failures explain on stderr */
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		execlp("bash", "bash", script, demo, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		ck_assert_int_eq(errno, EINTR);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	              "%s %s failed (wait status %d); its stderr says why", script, demo, status);
}
END_TEST

/* Widths follow LC_CTYPE: every test but one runs in a UTF-8 locale. */
static void utf8_locale(void)
{
	ck_assert_msg(setlocale(LC_CTYPE, "C.UTF-8") || setlocale(LC_CTYPE, "en_US.UTF-8"),
	              "no UTF-8 locale (C.UTF-8) available");
}

/* ---- the mirror: feed messages -> model ---- */

static int mirror_apply_str(struct console_mirror *mi, const char *msg, char *err, size_t cap)
{
	return console_mirror_apply(mi, msg, strlen(msg), err, cap);
}

#define EMPTY_STATE_HEAD                                                                           \
	"{\"type\":\"state\",\"uptime_s\":5,\"donations_per_s\":1.5,\"donations_total\":9,"        \
	"\"intake_depth\":2,\"ws_clients\":3,\"live_slow\":4,\"live_refusing\":true,"              \
	"\"storage_failing_ms\":2500,\"queues\":[{\"name\":\"payments\",\"paused\":true,"          \
	"\"ready\":1,\"running\":2,\"scheduled\":3,\"dead\":4,\"done\":5,\"failed\":6,"            \
	"\"done_per_s\":0.5,\"latency_ms_p50\":0,\"latency_ms_p99\":12.5}],"                       \
	"\"dead\":[{\"id\":7,\"donation_id\":8,\"attempts\":3,\"queue\":\"payments\","             \
	"\"kind\":\"capture\",\"last_error\":\"HTTP 500\"}],"

START_TEST(mirror_applies_hello_and_states)
{
	struct console_mirror *mi;
	struct console_model m = {0};
	char err[128] = "";

	ck_assert_int_eq(console_mirror_new(&mi), 0);
	ck_assert_int_eq(mirror_apply_str(mi,
	                                  "{\"type\":\"hello\",\"server\":\"10.0.0.1:8080\","
	                                  "\"who\":\"ana\",\"role\":\"operator\"}",
	                                  err, sizeof err),
	                 0);
	ck_assert_int_eq(mirror_apply_str(mi,
	                                  EMPTY_STATE_HEAD
	                                  "\"campaigns\":[{\"slug\":\"a\",\"name\":\"A\","
	                                  "\"currency\":\"USD\",\"category\":\"Arts\","
	                                  "\"status\":\"active\","
	                                  "\"goal_cents\":100,\"total_cents\":50,"
	                                  "\"pending_cents\":1,\"donor_count\":2,"
	                                  "\"donation_count\":3,\"per_min\":1.5},"
	                                  "{\"slug\":\"b\",\"name\":\"B\",\"currency\":\"EUR\","
	                                  "\"status\":\"paused\",\"total_cents\":7}],"
	                                  "\"n_campaigns\":2,\"synced\":false}",
	                                  err, sizeof err),
	                 0);
	ck_assert(!console_mirror_synced(mi));
	/* b changes; c arrives; a is not sent again and stays as it was */
	ck_assert_int_eq(mirror_apply_str(mi,
	                                  EMPTY_STATE_HEAD
	                                  "\"campaigns\":[{\"slug\":\"b\",\"name\":\"B\","
	                                  "\"currency\":\"EUR\",\"status\":\"active\","
	                                  "\"total_cents\":70},{\"slug\":\"c\",\"name\":\"C\"}],"
	                                  "\"n_campaigns\":3,\"synced\":true}",
	                                  err, sizeof err),
	                 0);
	ck_assert(console_mirror_synced(mi));
	ck_assert_int_eq(console_mirror_copy(mi, &m), 0);
	ck_assert_str_eq(m.who, "ana");
	ck_assert_str_eq(m.role, "operator");
	ck_assert_str_eq(m.server, ""); /* the source names the server, not the feed */
	ck_assert_int_eq(m.uptime_s, 5);
	ck_assert_int_eq(m.donations_total, 9);
	ck_assert_int_eq(m.intake_depth, 2);
	ck_assert_int_eq(m.ws_clients, 3);
	ck_assert_int_eq(m.live_slow, 4);
	ck_assert_int_eq(m.live_refusing, 1);
	ck_assert_int_eq(m.storage_failing_ms, 2500);
	ck_assert_uint_eq(m.n_queues, 1);
	ck_assert_str_eq(m.queues[0].name, "payments");
	ck_assert_int_eq(m.queues[0].paused, 1);
	ck_assert_int_eq(m.queues[0].scheduled, 3);
	ck_assert_int_eq(m.queues[0].dead, 4);
	ck_assert(m.queues[0].latency_ms_p50 < 0); /* 0: none started */
	ck_assert(m.queues[0].latency_ms_p99 > 12.4 && m.queues[0].latency_ms_p99 < 12.6);
	ck_assert_uint_eq(m.n_dead, 1);
	ck_assert_int_eq(m.dead[0].id, 7);
	ck_assert_str_eq(m.dead[0].kind, "capture");
	ck_assert_str_eq(m.dead[0].last_error, "HTTP 500");
	ck_assert_uint_eq(m.n_campaigns, 3);
	ck_assert_str_eq(m.campaigns[0].slug, "a");
	ck_assert_int_eq(m.campaigns[0].total_cents, 50);
	ck_assert_int_eq(m.campaigns[0].goal_cents, 100);
	ck_assert_str_eq(m.campaigns[0].category, "Arts");
	ck_assert_str_eq(m.campaigns[1].category, "");
	ck_assert_str_eq(m.campaigns[1].status, "active");
	ck_assert_int_eq(m.campaigns[1].total_cents, 70);
	ck_assert_str_eq(m.campaigns[2].name, "C");
	console_model_fini(&m);
	console_mirror_free(mi);
}
END_TEST

/* The hello's alert_paused_min, the state's clock, each campaign's pause
 * and last hour. */
START_TEST(mirror_keeps_pauses_and_the_hour)
{
	static const struct {
		const char *value;
		int want;
	} alerts[] = {{"20", 20},   {"0", 0},      {"-5", 0},
	              {"99999", 0}, {"\"15\"", 0}, {"10080", 10080}};
	struct console_mirror *mi;
	struct console_model m = {0};
	char err[128] = "", hello[160];

	ck_assert_int_eq(console_mirror_new(&mi), 0);
	for (size_t i = 0; i < sizeof alerts / sizeof alerts[0]; i++) {
		snprintf(hello, sizeof hello,
		         "{\"type\":\"hello\",\"who\":\"ana\",\"role\":\"admin\","
		         "\"alert_paused_min\":%s}",
		         alerts[i].value);
		ck_assert_int_eq(mirror_apply_str(mi, hello, err, sizeof err), 0);
		ck_assert_int_eq(console_mirror_copy(mi, &m), 0);
		ck_assert_msg(m.alert_paused_min == alerts[i].want, "alert_paused_min %s: %d",
		              alerts[i].value, m.alert_paused_min);
	}
	ck_assert_int_eq(
	    mirror_apply_str(mi, "{\"type\":\"hello\",\"who\":\"ana\"}", err, sizeof err), 0);
	ck_assert_int_eq(console_mirror_copy(mi, &m), 0);
	ck_assert_int_eq(m.alert_paused_min, 0); /* an older server: no alert */
	ck_assert_int_eq(
	    mirror_apply_str(mi, "{\"type\":\"hello\",\"who\":\"ana\",\"alert_paused_min\":15}",
	                     err, sizeof err),
	    0);
	ck_assert_int_eq(
	    mirror_apply_str(mi,
	                     "{\"type\":\"state\",\"now_ms\":1800000000000,"
	                     "\"queues\":[],\"dead\":[],"
	                     "\"campaigns\":[{\"slug\":\"spring\",\"status\":\"paused\","
	                     "\"paused_since_ms\":1799998980000,\"hour_gifts\":42,"
	                     "\"hour_cents\":123456}],\"synced\":true}",
	                     err, sizeof err),
	    0);
	ck_assert_int_eq(console_mirror_copy(mi, &m), 0);
	ck_assert_int_eq(m.alert_paused_min, 15);
	ck_assert_int_eq(m.server_now_ms, INT64_C(1800000000000));
	ck_assert_uint_eq(m.n_campaigns, 1);
	ck_assert_int_eq(m.campaigns[0].paused_since_ms, INT64_C(1799998980000));
	ck_assert_int_eq(m.campaigns[0].hour_gifts, 42);
	ck_assert_int_eq(m.campaigns[0].hour_cents, 123456);
	ck_assert_int_eq(console_fmt_paused_min(&m.campaigns[0], m.server_now_ms), 17);
	/* resumed: the row comes without paused_since_ms */
	ck_assert_int_eq(
	    mirror_apply_str(mi,
	                     "{\"type\":\"state\",\"now_ms\":1800000001000,"
	                     "\"queues\":[],\"dead\":[],"
	                     "\"campaigns\":[{\"slug\":\"spring\",\"status\":\"active\","
	                     "\"hour_gifts\":43,\"hour_cents\":123556}],"
	                     "\"synced\":true}",
	                     err, sizeof err),
	    0);
	ck_assert_int_eq(console_mirror_copy(mi, &m), 0);
	ck_assert_int_eq(m.campaigns[0].paused_since_ms, 0);
	ck_assert_int_eq(m.campaigns[0].hour_gifts, 43);
	ck_assert_int_eq(m.server_now_ms, INT64_C(1800000001000));
	ck_assert_int_eq(m.day_opens_ms, 0); /* no day in the state: none */
	/* the giving day's schedule */
	ck_assert_int_eq(
	    mirror_apply_str(mi,
	                     "{\"type\":\"state\",\"now_ms\":1800000002000,"
	                     "\"day\":{\"early_ms\":1800000000000,\"opens_ms\":1800000300000,"
	                     "\"closes_ms\":1800003600000},"
	                     "\"queues\":[],\"dead\":[],\"campaigns\":[],\"synced\":true}",
	                     err, sizeof err),
	    0);
	ck_assert_int_eq(console_mirror_copy(mi, &m), 0);
	ck_assert_int_eq(m.day_early_ms, INT64_C(1800000000000));
	ck_assert_int_eq(m.day_opens_ms, INT64_C(1800000300000));
	ck_assert_int_eq(m.day_closes_ms, INT64_C(1800003600000));
	console_model_fini(&m);
	console_mirror_free(mi);
}
END_TEST

START_TEST(mirror_refuses_bad_messages_whole)
{
	static const char *const bad[] = {
	    "",
	    "[]",
	    "{\"type\":42}",
	    "{\"type\":\"gossip\"}",
	    "{\"type\":\"state\"}",
	    "{\"type\":\"state\",\"queues\":[],\"dead\":[],\"campaigns\":{}}",
	    "{\"type\":\"state\",\"queues\":[],\"dead\":[],\"campaigns\":[{\"name\":\"no slug\"}]}",
	    "{\"type\":\"state\",\"queues\":[],\"dead\":[],\"campaigns\":[{\"slug\":\"\"}]}",
	    "{\"type\":\"state\",\"queues\":[{\"ready\":1}],\"dead\":[],\"campaigns\":[]}",
	    "{\"type\":\"state\",\"queues\":[],\"dead\":[{\"id\":\"x\"}],\"campaigns\":[]}",
	    "{\"type\":\"state\",\"queues\":[{\"name\":\"1\"},{\"name\":\"2\"},{\"name\":\"3\"},"
	    "{\"name\":\"4\"},{\"name\":\"5\"},{\"name\":\"6\"},{\"name\":\"7\"},{\"name\":\"8\"},"
	    "{\"name\":\"9\"}],\"dead\":[],\"campaigns\":[]}",
	    /* shields: not an object, no state, lists that are not, a campaign
	     * without its slug, an offender without its key */
	    "{\"type\":\"state\",\"queues\":[],\"dead\":[],\"campaigns\":[],\"shield\":[]}",
	    "{\"type\":\"state\",\"queues\":[],\"dead\":[],\"campaigns\":[],\"shield\":{}}",
	    "{\"type\":\"state\",\"queues\":[],\"dead\":[],\"campaigns\":[],"
	    "\"shield\":{\"state\":\"up\",\"campaigns\":{}}}",
	    "{\"type\":\"state\",\"queues\":[],\"dead\":[],\"campaigns\":[],"
	    "\"shield\":{\"state\":\"up\",\"offenders\":7}}",
	    "{\"type\":\"state\",\"queues\":[],\"dead\":[],\"campaigns\":[],"
	    "\"shield\":{\"state\":\"up\",\"campaigns\":[{\"up\":true}]}}",
	    "{\"type\":\"state\",\"queues\":[],\"dead\":[],\"campaigns\":[],"
	    "\"shield\":{\"state\":\"up\",\"offenders\":[{\"kind\":\"email\"}]}}",
	    /* a good campaign before a bad one: neither is applied */
	    "{\"type\":\"state\",\"uptime_s\":99,\"queues\":[],\"dead\":[],"
	    "\"campaigns\":[{\"slug\":\"ok\"},{\"slug\":7}]}",
	};
	struct console_mirror *mi;
	struct console_model m = {0};

	ck_assert_int_eq(console_mirror_new(&mi), 0);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char err[128] = "";

		ck_assert_msg(mirror_apply_str(mi, bad[i], err, sizeof err) == -EINVAL, "taken: %s",
		              bad[i]);
		ck_assert_msg(err[0], "no reason for: %s", bad[i]);
	}
	ck_assert_int_eq(console_mirror_copy(mi, &m), 0);
	ck_assert_uint_eq(m.n_campaigns, 0);
	ck_assert_int_eq(m.uptime_s, 0);
	ck_assert_int_eq(m.shield.known, 0);
	console_model_fini(&m);
	console_mirror_free(mi);
}
END_TEST

/* ---- the card-testing shield: shield_json -> the feed's state -> mirror -> header ---- */

#define T0 1764547200000LL /* 2025-12-01T00:00:00Z: the shield's clock in these tests */

/* A state with the shield sh as shield_json renders it at now (none: NULL). */
static int apply_shield_state(struct console_mirror *mi, struct shield *sh, int64_t now)
{
	struct buf b = {0};
	char err[128] = "";
	int rc = buf_printf(&b,
	                    "{\"type\":\"state\",\"now_ms\":%lld,\"queues\":[],\"dead\":[],"
	                    "\"campaigns\":[]",
	                    (long long)now);

	if (sh && !rc)
		rc = buf_puts(&b, ",\"shield\":") || shield_json(sh, now, 10, &b);
	rc = rc || buf_puts(&b, "}");
	ck_assert_int_eq(rc, 0);
	rc = console_mirror_apply(mi, b.p, b.len, err, sizeof err);
	ck_assert_msg(rc == 0, "refused (%s): %.*s", err, (int)b.len, b.p);
	buf_fini(&b);
	return rc;
}

/* Gift id from addr to campaign with email, declined (its card fp). */
static void tester_gift(struct shield *sh, int64_t id, const char *addr, const char *email,
                        const char *fp, int64_t now)
{
	struct shield_ask ask = {addr, email, "spring", 2500};
	struct shield_answer a;

	ck_assert_int_eq(shield_admit(sh, &ask, now, &a), SHIELD_PASS);
	shield_note_gift(sh, id, addr, "curl/8", "", "spring");
	shield_outcome(sh, id, email, fp, 1, now);
}

/* What the real shield renders reaches the model whole: state, counts,
 * the campaign up with since and until, the blocked address with until
 * and why; the header says so; a raise and a lower follow; a state
 * without a shield keeps the last. */
START_TEST(mirror_reads_the_shield_and_the_header_shows_it)
{
	struct shield_config cfg;
	struct shield *sh;
	struct console_mirror *mi;
	struct console_model m = {0};
	const struct console_offender *addr = NULL;
	char out[2048];

	log_set_level(LOG_ERROR); /* the shield's notes of its blocks: expected */
	shield_config_defaults(&cfg);
	cfg.addr_declines = 3;
	cfg.campaign_declines = 3;
	ck_assert_int_eq(shield_new(&cfg, &sh), 0);
	ck_assert_int_eq(console_mirror_new(&mi), 0);
	for (int i = 1; i <= 3; i++) {
		char email[32], fp[16];

		snprintf(email, sizeof email, "t%d@example.net", i);
		snprintf(fp, sizeof fp, "fp_t%d", i);
		tester_gift(sh, i, "203.0.113.7", email, fp, T0 + i);
	}
	apply_shield_state(mi, sh, T0 + 1000);
	ck_assert_int_eq(console_mirror_copy(mi, &m), 0);
	ck_assert_int_eq(m.shield.known, 1);
	ck_assert_str_eq(m.shield.state, "up");
	ck_assert_int_eq(m.shield.campaigns_up, 1);
	ck_assert_int_eq(m.shield.declines_per_min, 3);
	ck_assert_int_eq(m.shield.attempts_per_min, 3);
	ck_assert_int_eq(m.shield.trips, 1);
	ck_assert_int_eq(m.shield.blocks_address, 1);
	ck_assert_int_eq(m.shield.up_min_cents, 500);
	ck_assert_int_eq(m.shield.block_s, 900);
	ck_assert_uint_eq(m.shield.n_campaigns, 1);
	ck_assert_str_eq(m.shield.campaigns[0].slug, "spring");
	ck_assert_int_eq(m.shield.campaigns[0].up, 1);
	ck_assert_int_eq(m.shield.campaigns[0].since_ms, T0 + 3);
	ck_assert_int_eq(m.shield.campaigns[0].until_ms, T0 + 3 + 600000);
	ck_assert_int_eq(m.shield.campaigns[0].declines_per_min, 3);
	for (size_t i = 0; i < m.shield.n_offenders; i++)
		if (!strcmp(m.shield.offenders[i].kind, "address"))
			addr = &m.shield.offenders[i];
	ck_assert_ptr_nonnull(addr);
	ck_assert_str_eq(m.shield.offenders[0].kind, "address"); /* blocked first */
	ck_assert_str_eq(addr->key, "203.0.113.7");
	ck_assert_int_eq(addr->blocked, 1);
	ck_assert_int_eq(addr->declines, 3);
	ck_assert_int_eq(addr->until_ms, T0 + 3 + 900000);
	ck_assert_str_eq(addr->why, "3 declines of 3 attempts");
	ck_assert_int_eq(m.shield.offenders_total, (int64_t)m.shield.n_offenders);
	snprintf(m.server, sizeof m.server, "10.0.0.1:8080");
	m.connected = 1;
	ck_assert_int_eq(console_header_text(&m, 160, out, sizeof out), 0);
	ck_assert_msg(strstr(out, "connected  shield up: spring\n"), "header: %s", out);

	/* a state without a shield keeps it */
	apply_shield_state(mi, NULL, T0 + 2000);
	ck_assert_int_eq(console_mirror_copy(mi, &m), 0);
	ck_assert_str_eq(m.shield.state, "up");

	/* staff raise it: every campaign, until lowered */
	ck_assert_int_eq(shield_raise(sh, T0 + 3000), 1);
	apply_shield_state(mi, sh, T0 + 3000);
	ck_assert_int_eq(console_mirror_copy(mi, &m), 0);
	ck_assert_str_eq(m.shield.state, "raised");
	ck_assert_int_eq(m.shield.campaigns[0].since_ms, T0 + 3000);
	ck_assert_int_eq(m.shield.campaigns[0].until_ms, 0);
	ck_assert_int_eq(console_header_text(&m, 160, out, sizeof out), 0);
	ck_assert_msg(strstr(out, "connected  shield raised\n"), "header: %s", out);

	/* and lower it: nothing up, nothing blocked, no alert */
	ck_assert_int_eq(shield_lower(sh, T0 + 4000), 1);
	apply_shield_state(mi, sh, T0 + 4000);
	ck_assert_int_eq(console_mirror_copy(mi, &m), 0);
	ck_assert_str_eq(m.shield.state, "down");
	ck_assert_uint_eq(m.shield.n_offenders, 0);
	ck_assert_int_eq(console_header_text(&m, 160, out, sizeof out), 0);
	ck_assert_msg(!strstr(out, "shield"), "header: %s", out);
	console_model_fini(&m);
	console_mirror_free(mi);
	shield_free(sh);
}
END_TEST

/* The mirror keeps CONSOLE_SHIELD_CAMPAIGNS of a long list, those up first
 * then by declines, and the first CONSOLE_SHIELD_OFFENDERS offenders; a
 * time that does not parse is 0. */
START_TEST(mirror_keeps_the_worst_of_the_shield)
{
	struct console_mirror *mi;
	struct console_model m = {0};
	struct buf b = {0};
	char err[128] = "";

	ck_assert_int_eq(console_mirror_new(&mi), 0);
	ck_assert_int_eq(buf_puts(&b, "{\"type\":\"state\",\"queues\":[],\"dead\":[],"
	                              "\"campaigns\":[],\"shield\":{\"state\":\"up\","
	                              "\"campaigns_up\":2,\"campaigns\":["),
	                 0);
	for (int i = 0; i < 30; i++)
		ck_assert_int_eq(
		    buf_printf(&b,
		               "%s{\"campaign\":\"c%d\",\"up\":%s,\"since\":%s,"
		               "\"until\":null,\"declines_per_min\":%d}",
		               i ? "," : "", i, i == 7 || i == 20 ? "true" : "false",
		               i == 7 ? "\"yesterday\"" : "\"2025-12-01T00:00:00.000Z\"", i),
		    0);
	ck_assert_int_eq(buf_puts(&b, "],\"offenders\":["), 0);
	for (int i = 0; i < 15; i++)
		ck_assert_int_eq(
		    buf_printf(&b, "%s{\"kind\":\"card\",\"key\":\"fp_%d\"}", i ? "," : "", i), 0);
	ck_assert_int_eq(buf_puts(&b, "],\"offenders_total\":40}}"), 0);
	ck_assert_int_eq(console_mirror_apply(mi, b.p, b.len, err, sizeof err), 0);
	ck_assert_int_eq(console_mirror_copy(mi, &m), 0);
	ck_assert_uint_eq(m.shield.n_campaigns, CONSOLE_SHIELD_CAMPAIGNS);
	ck_assert_int_eq(m.shield.campaigns_total, 30);
	ck_assert_str_eq(m.shield.campaigns[0].slug, "c20"); /* up, more declines */
	ck_assert_str_eq(m.shield.campaigns[1].slug, "c7");
	ck_assert_int_eq(m.shield.campaigns[1].since_ms, 0); /* "yesterday" */
	ck_assert_int_eq(m.shield.campaigns[2].since_ms, T0);
	ck_assert_str_eq(m.shield.campaigns[2].slug, "c29"); /* then by declines */
	ck_assert_str_eq(m.shield.campaigns[CONSOLE_SHIELD_CAMPAIGNS - 1].slug, "c11");
	ck_assert_uint_eq(m.shield.n_offenders, CONSOLE_SHIELD_OFFENDERS);
	ck_assert_str_eq(m.shield.offenders[9].key, "fp_9");
	ck_assert_int_eq(m.shield.offenders_total, 40);
	buf_fini(&b);
	console_model_fini(&m);
	console_mirror_free(mi);
}
END_TEST

START_TEST(mirror_keeps_the_newest_events_once)
{
	struct console_mirror *mi;
	struct console_model m = {0};
	struct buf b = {0};
	char err[128];
	uint64_t seq = 0;

	ck_assert_int_eq(console_mirror_new(&mi), 0);
	/* 7 states of 100 events: the model keeps the newest 500, in order;
	 * a state that repeats old events adds nothing */
	for (int k = 0; k < 8; k++) {
		uint64_t from = k == 7 ? seq - 50 : seq;

		b.len = 0;
		ck_assert_int_eq(buf_puts(&b, "{\"type\":\"state\",\"queues\":[],\"dead\":[],"
		                              "\"campaigns\":[],\"events\":["),
		                 0);
		for (int i = 1; i <= 100; i++)
			ck_assert_int_eq(
			    buf_printf(&b,
			               "%s{\"seq\":%llu,\"at_ms\":%d,\"kind\":\"staff\","
			               "\"who\":\"ana\",\"text\":\"pause c%llu\"}",
			               i > 1 ? "," : "", (unsigned long long)(from + i), 1000 + i,
			               (unsigned long long)(from + i)),
			    0);
		ck_assert_int_eq(buf_puts(&b, "]}"), 0);
		ck_assert_int_eq(console_mirror_apply(mi, b.p, b.len, err, sizeof err), 0);
		if (k < 7)
			seq += 100;
	}
	ck_assert_int_eq(console_mirror_copy(mi, &m), 0);
	/* the last state brought 50 new ones (701..750) */
	ck_assert_uint_eq(m.n_events, CONSOLE_EVENTS_MAX);
	ck_assert_uint_eq(m.events[m.n_events - 1].seq, 750);
	ck_assert_uint_eq(m.events[0].seq, 251);
	for (size_t i = 1; i < m.n_events; i++)
		ck_assert_uint_eq(m.events[i].seq, m.events[i - 1].seq + 1);
	ck_assert_str_eq(m.events[0].who, "ana");
	ck_assert_str_eq(m.events[0].text, "pause c251");
	buf_fini(&b);
	console_model_fini(&m);
	console_mirror_free(mi);
}
END_TEST

/* A state listing the given dead jobs (JSON objects, comma-separated). */
static int apply_dead(struct console_mirror *mi, const char *dead)
{
	char msg[8192], err[128] = "";
	int n = snprintf(msg, sizeof msg,
	                 "{\"type\":\"state\",\"queues\":[],\"campaigns\":[],\"dead\":[%s]}", dead);

	ck_assert_int_lt(n, (int)sizeof msg);
	n = console_mirror_apply(mi, msg, (size_t)n, err, sizeof err);
	ck_assert_msg(n == 0, "refused (%s): %s", err, msg);
	return n;
}

#define DEAD7(attempts, extra)                                                                     \
	"{\"id\":7,\"donation_id\":8,\"attempts\":" #attempts ",\"queue\":\"payments\","           \
	"\"kind\":\"capture\",\"last_error\":\"HTTP 500\"" extra "}"
#define DEAD9 "{\"id\":9,\"attempts\":1,\"queue\":\"receipts\",\"kind\":\"receipt\"}"
#define TWO_ATTEMPTS                                                                               \
	",\"attempt_history\":[{\"attempt\":1,\"at_ms\":1700000000000,\"ms\":120,"                 \
	"\"error\":\"HTTP 502\"},{\"attempt\":2,\"at_ms\":1700000060000,\"ms\":95,"                \
	"\"error\":\"HTTP 500\"}]"

static const struct console_job *mirror_dead(struct console_mirror *mi, struct console_model *m,
                                             int64_t id)
{
	ck_assert_int_eq(console_mirror_copy(mi, m), 0);
	for (size_t i = 0; i < m->n_dead; i++)
		if (m->dead[i].id == id)
			return &m->dead[i];
	ck_abort_msg("no dead job %lld", (long long)id);
	return NULL;
}

/* A dead job's attempt_history is read into the model, kept while later
 * states list the job with the same attempts without it (the feed sends it
 * once), dropped when its attempts change; a bad one, or bad entries, are
 * ignored without refusing the state. */
START_TEST(mirror_reads_and_keeps_attempt_history)
{
	struct console_mirror *mi;
	struct console_model m = {0};
	const struct console_job *j;
	char dead[6000], hist[4000];
	size_t n = 0;

	ck_assert_int_eq(console_mirror_new(&mi), 0);
	apply_dead(mi, DEAD7(2, TWO_ATTEMPTS) "," DEAD9);
	j = mirror_dead(mi, &m, 7);
	ck_assert_int_eq(j->n_history, 2);
	ck_assert_int_eq(j->history[0].attempt, 1);
	ck_assert_int_eq(j->history[0].at_ms, 1700000000000);
	ck_assert_int_eq(j->history[0].took_ms, 120);
	ck_assert_str_eq(j->history[0].error, "HTTP 502");
	ck_assert_int_eq(j->history[1].attempt, 2);
	ck_assert_str_eq(j->history[1].error, "HTTP 500");
	ck_assert_int_eq(mirror_dead(mi, &m, 9)->n_history, 0); /* none sent */

	/* listed again without it, in another order: kept */
	apply_dead(mi, DEAD9 "," DEAD7(2, ""));
	ck_assert_int_eq(mirror_dead(mi, &m, 7)->n_history, 2);
	ck_assert_str_eq(mirror_dead(mi, &m, 7)->history[1].error, "HTTP 500");
	/* a history that is not a list counts as not sent: kept too */
	apply_dead(mi, DEAD7(2, ",\"attempt_history\":\"oops\""));
	ck_assert_int_eq(mirror_dead(mi, &m, 7)->n_history, 2);
	apply_dead(mi, DEAD7(2, ",\"attempt_history\":null"));
	ck_assert_int_eq(mirror_dead(mi, &m, 7)->n_history, 2);
	/* an empty list is a history: none */
	apply_dead(mi, DEAD7(2, ",\"attempt_history\":[]"));
	ck_assert_int_eq(mirror_dead(mi, &m, 7)->n_history, 0);
	apply_dead(mi, DEAD7(2, TWO_ATTEMPTS));
	/* off the list, or back with other attempts and none sent: gone */
	apply_dead(mi, DEAD9);
	apply_dead(mi, DEAD7(2, ""));
	ck_assert_int_eq(mirror_dead(mi, &m, 7)->n_history, 0);
	apply_dead(mi, DEAD7(2, TWO_ATTEMPTS));
	apply_dead(mi, DEAD7(3, ""));
	ck_assert_int_eq(mirror_dead(mi, &m, 7)->n_history, 0);

	/* entries that are not attempts are skipped, the rest read */
	apply_dead(mi, DEAD7(3, ",\"attempt_history\":[1,\"x\",[2],{},{\"attempt\":\"1\","
	                        "\"at_ms\":5},{\"at_ms\":5},{\"attempt\":2,\"at_ms\":1.5},"
	                        "{\"attempt\":2,\"at_ms\":10,\"ms\":\"slow\",\"error\":7},"
	                        "{\"attempt\":3,\"at_ms\":20,\"ms\":4,\"error\":\"ok\"}]"));
	j = mirror_dead(mi, &m, 7);
	ck_assert_int_eq(j->n_history, 2);
	ck_assert_int_eq(j->history[0].attempt, 2);
	ck_assert_int_eq(j->history[0].took_ms, -1); /* not said */
	ck_assert_str_eq(j->history[0].error, "");
	ck_assert_int_eq(j->history[1].attempt, 3);
	ck_assert_int_eq(j->history[1].took_ms, 4);
	ck_assert_str_eq(j->history[1].error, "ok");

	/* more than the model keeps: the newest; a long error is cut */
	for (int a = 1; a <= CONSOLE_ATTEMPTS_MAX + 3; a++)
		n += (size_t)snprintf(
		    hist + n, sizeof hist - n,
		    "%s{\"attempt\":%d,\"at_ms\":%d,\"ms\":1,\"error\":\"%s\"}", a > 1 ? "," : "",
		    a, 1000 * a,
		    a == CONSOLE_ATTEMPTS_MAX + 3
		        ? "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		        : "e");
	ck_assert_uint_lt(n, sizeof hist);
	snprintf(dead, sizeof dead, DEAD7(13, ",\"attempt_history\":[%s]"), hist);
	apply_dead(mi, dead);
	j = mirror_dead(mi, &m, 7);
	ck_assert_int_eq(j->n_history, CONSOLE_ATTEMPTS_MAX);
	ck_assert_int_eq(j->history[0].attempt, 4);
	ck_assert_int_eq(j->history[CONSOLE_ATTEMPTS_MAX - 1].attempt, 13);
	ck_assert_int_eq(j->history[CONSOLE_ATTEMPTS_MAX - 1].at_ms, 13000);
	ck_assert_uint_eq(strlen(j->history[CONSOLE_ATTEMPTS_MAX - 1].error),
	                  CONSOLE_ATTEMPT_ERROR_SIZE - 1);

	/* a new connection starts over */
	console_mirror_reset(mi);
	apply_dead(mi, DEAD7(13, ""));
	ck_assert_int_eq(mirror_dead(mi, &m, 7)->n_history, 0);
	console_model_fini(&m);
	console_mirror_free(mi);
}
END_TEST

START_TEST(mirror_holds_many_campaigns)
{
	struct console_mirror *mi;
	struct console_model m = {0};
	struct buf b = {0};
	char err[128];

	ck_assert_int_eq(console_mirror_new(&mi), 0);
	/* 20,000 campaigns in batches of 1,000, then every 7th again */
	for (int batch = 0; batch < 20; batch++) {
		b.len = 0;
		ck_assert_int_eq(buf_puts(&b, "{\"type\":\"state\",\"queues\":[],\"dead\":[],"
		                              "\"campaigns\":["),
		                 0);
		for (int i = 0; i < 1000; i++)
			ck_assert_int_eq(buf_printf(&b, "%s{\"slug\":\"c%d\",\"total_cents\":%d}",
			                            i ? "," : "", batch * 1000 + i,
			                            batch * 1000 + i),
			                 0);
		ck_assert_int_eq(buf_puts(&b, "]}"), 0);
		ck_assert_int_eq(console_mirror_apply(mi, b.p, b.len, err, sizeof err), 0);
	}
	b.len = 0;
	ck_assert_int_eq(
	    buf_puts(&b, "{\"type\":\"state\",\"queues\":[],\"dead\":[],\"campaigns\":["), 0);
	for (int i = 0; i < 20000; i += 7)
		ck_assert_int_eq(
		    buf_printf(&b, "%s{\"slug\":\"c%d\",\"total_cents\":%d}", i ? "," : "", i, -i),
		    0);
	ck_assert_int_eq(buf_puts(&b, "]}"), 0);
	ck_assert_int_eq(console_mirror_apply(mi, b.p, b.len, err, sizeof err), 0);
	ck_assert_int_eq(console_mirror_copy(mi, &m), 0);
	ck_assert_uint_eq(m.n_campaigns, 20000);
	for (int i = 0; i < 20000; i++) {
		char slug[16];

		snprintf(slug, sizeof slug, "c%d", i);
		ck_assert_str_eq(m.campaigns[i].slug, slug);
		ck_assert_int_eq(m.campaigns[i].total_cents, i % 7 ? i : -i);
	}
	/* reset forgets them */
	console_mirror_reset(mi);
	ck_assert_int_eq(console_mirror_copy(mi, &m), 0);
	ck_assert_uint_eq(m.n_campaigns, 0);
	buf_fini(&b);
	console_model_fini(&m);
	console_mirror_free(mi);
}
END_TEST

Suite *console_suite(void)
{
	Suite *s = suite_create("console");
	TCase *fmt = tcase_create("fmt");
	TCase *text = tcase_create("text");
	TCase *model = tcase_create("model");
	TCase *tmux = tcase_create("tmux");

	tcase_add_checked_fixture(fmt, utf8_locale, NULL);
	tcase_add_checked_fixture(text, utf8_locale, NULL);
	tcase_add_checked_fixture(model, utf8_locale, NULL);

	tcase_add_test(fmt, money_usd);
	tcase_add_test(fmt, money_negative);
	tcase_add_test(fmt, money_symbols_and_codes);
	tcase_add_test(fmt, money_unknown_or_missing_currency);
	tcase_add_test(fmt, money_int64_limits);
	tcase_add_test(fmt, money_symbol_needs_locale);
	tcase_add_test(fmt, money_buffer_bounds);
	tcase_add_test(fmt, int_grouping);
	tcase_add_test(fmt, percent_values);
	tcase_add_test(fmt, percent_int64_limits);
	tcase_add_test(fmt, bar_cells);
	tcase_add_test(fmt, duration);
	tcase_add_test(fmt, minutes);
	tcase_add_test(fmt, paused_alert_text);
	tcase_add_test(fmt, rate);
	tcase_add_test(fmt, spark_levels);
	tcase_add_test(fmt, latency_units);
	tcase_add_test(fmt, latency_never_rounds_into_the_next_unit);
	tcase_add_test(fmt, latency_buffer_bounds);
	tcase_add_test(fmt, donation_id);
	suite_add_tcase(s, fmt);

	tcase_add_test(text, width_utf8);
	tcase_add_test(text, trunc_ascii);
	tcase_add_test(text, trunc_multibyte);
	tcase_add_test(text, trunc_wide);
	tcase_add_test(text, trunc_combining);
	tcase_add_test(text, trunc_invalid_and_control);
	tcase_add_test(text, trunc_byte_capacity);
	tcase_add_test(text, trunc_never_splits);
	tcase_add_test(text, contains);
	suite_add_tcase(s, text);

	tcase_add_test(model, model_fini_frees_and_zeroes);
	tcase_add_test(model, model_fini_empty);
	tcase_add_test(model, model_fini_clears_queues_and_dead_jobs);
	tcase_add_test(model, dead_share_fair);
	tcase_add_test(model, dead_share_edges);
	tcase_add_test(model, mirror_applies_hello_and_states);
	tcase_add_test(model, mirror_keeps_pauses_and_the_hour);
	tcase_add_test(model, header_alerts_long_pauses_only);
	tcase_add_test(model, header_shows_the_day);
	tcase_add_test(model, mirror_refuses_bad_messages_whole);
	tcase_add_test(model, mirror_holds_many_campaigns);
	tcase_add_test(model, mirror_keeps_the_newest_events_once);
	tcase_add_test(model, mirror_reads_and_keeps_attempt_history);
	tcase_add_test(model, mirror_reads_the_shield_and_the_header_shows_it);
	tcase_add_test(model, mirror_keeps_the_worst_of_the_shield);
	tcase_add_test(model, run_needs_a_terminal);
	tcase_add_test(model, run_rejects_bad_source);
	suite_add_tcase(s, model);

	/* each wait in the script is bounded (5 s); this only guards a hang */
	tcase_set_timeout(tmux, 120);
	tcase_add_test(tmux, tmux_drives_the_demo);
	suite_add_tcase(s, tmux);
	return s;
}

#ifdef TEST_CONSOLE_MAIN
int main(void)
{
	SRunner *sr = srunner_create(console_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
#endif
