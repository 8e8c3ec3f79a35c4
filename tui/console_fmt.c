/* tui/console_fmt.c - pure text helpers of the console: money, counts,
 * percentages, rates, latencies, durations and display-width-aware
 * truncation of UTF-8.
 *
 * Money and percentages use integer arithmetic only: a total is formatted
 * from its int64 minor units by division, and ratios are computed digit by
 * digit without ever forming a product that could overflow.
 */
#include "console_fmt.h"
#include "console.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

/* Longest int64 with separators: "-9,223,372,036,854,775,808" is 26 bytes. */
#define INT_TEXT_MAX 32

/* Currencies shown with a symbol rather than their code. */
struct currency_symbol {
	char code[4];
	const char *utf8;
	wchar_t cp; /* to ask the locale whether it can print it */
};

static const struct currency_symbol symbols[] = {
    {"USD", "$", L'$'},
    {"EUR", "\xe2\x82\xac", 0x20ac}, /* € */
    {"GBP", "\xc2\xa3", 0xa3},       /* £ */
};

/* ISO-4217 currencies whose minor unit is not 1/100, codes space-separated. */
static const char zero_decimals[] =
    "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF";
static const char three_decimals[] = "BHD IQD JOD KWD LYD OMR TND";

static int code_listed(const char *list, const char *code)
{
	for (const char *p = list; *p; p += p[3] ? 4 : 3)
		if (memcmp(p, code, 3) == 0)
			return 1;
	return 0;
}

static char ascii_upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Copy len bytes of text into buf as the result of a formatter. */
static int emit(char *buf, size_t cap, const char *text, size_t len)
{
	if (!buf || cap == 0)
		return -EINVAL;
	if (len + 1 > cap) {
		buf[0] = '\0';
		return -ENOSPC;
	}
	memcpy(buf, text, len);
	buf[len] = '\0';
	return (int)len;
}

/* Write v in decimal with a ',' every three digits; out has INT_TEXT_MAX
 * bytes. Returns the length (no NUL written). */
static size_t group_u64(char *out, uint64_t v)
{
	char rev[INT_TEXT_MAX];
	size_t n = 0, digits = 0;

	do {
		if (digits && digits % 3 == 0)
			rev[n++] = ',';
		rev[n++] = (char)('0' + v % 10);
		v /= 10;
		digits++;
	} while (v);
	for (size_t i = 0; i < n; i++)
		out[i] = rev[n - 1 - i];
	return n;
}

/* |v| as an unsigned value, exact for INT64_MIN too. */
static uint64_t magnitude(int64_t v)
{
	return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
}

int console_fmt_int(char *buf, size_t cap, int64_t v)
{
	char tmp[INT_TEXT_MAX + 1];
	size_t n = 0;

	if (v < 0)
		tmp[n++] = '-';
	n += group_u64(tmp + n, magnitude(v));
	return emit(buf, cap, tmp, n);
}

/* The ISO exponent console_fmt_money gives the (valid, upper-case) code. */
static int exponent_of(const char *code)
{
	return code_listed(zero_decimals, code) ? 0 : code_listed(three_decimals, code) ? 3 : 2;
}

int console_fmt_parse_money(const char *s, const char *currency, int64_t *out)
{
	char code[4] = "";
	int exponent, decimals = -1, digits = 0;
	int64_t v = 0;

	for (int i = 0; i < 3 && currency && currency[i]; i++)
		code[i] = ascii_upper(currency[i]);
	exponent = strlen(code) == 3 ? exponent_of(code) : 2;
	for (; *s; s++) {
		if (*s == ',' && decimals < 0 && digits)
			continue;
		if (*s == '.' && decimals < 0 && digits) {
			decimals = 0;
			continue;
		}
		if (*s < '0' || *s > '9' || ++digits > 13)
			return -1;
		if (decimals >= 0 && ++decimals > exponent)
			return -1;
		v = v * 10 + (*s - '0');
	}
	if (!digits || decimals == 0)
		return -1;
	for (int i = decimals < 0 ? 0 : decimals; i < exponent; i++)
		v *= 10;
	if (v <= 0 || v > 1000000000000LL)
		return -1;
	*out = v;
	return 0;
}

int console_fmt_money(char *buf, size_t cap, int64_t cents, const char *currency)
{
	char code[4] = "???";
	const char *symbol = NULL;
	int exponent = 2, has_code = 0;
	char tmp[96];
	size_t n = 0;

	if (currency && currency[0]) {
		has_code = 1;
		int valid = strlen(currency) == 3;
		for (int i = 0; valid && i < 3; i++) {
			char c = ascii_upper(currency[i]);
			valid = c >= 'A' && c <= 'Z';
			code[i] = c;
		}
		if (!valid)
			memcpy(code, "???", 4);
		for (size_t i = 0; valid && i < sizeof symbols / sizeof symbols[0]; i++)
			/* "€" only where the locale can show it */
			if (memcmp(symbols[i].code, code, 4) == 0 && wcwidth(symbols[i].cp) == 1)
				symbol = symbols[i].utf8;
		if (valid)
			exponent = exponent_of(code);
	}

	uint64_t unit = exponent == 0 ? 1 : exponent == 3 ? 1000 : 100;
	uint64_t mag = magnitude(cents);
	const char *sign = cents < 0 ? "-" : "";

	if (symbol)
		n = (size_t)snprintf(tmp, sizeof tmp, "%s%s", sign, symbol);
	else if (has_code)
		n = (size_t)snprintf(tmp, sizeof tmp, "%s %s", code, sign);
	else
		n = (size_t)snprintf(tmp, sizeof tmp, "%s", sign);
	n += group_u64(tmp + n, mag / unit);
	if (exponent > 0)
		n += (size_t)snprintf(tmp + n, sizeof tmp - n, ".%0*llu", exponent,
		                      (unsigned long long)(mag % unit));
	return emit(buf, cap, tmp, n);
}

/* floor(r * m / w) for r < w, by m additions modulo w: exact for any
 * operands and never overflows (rem + r is only formed when it is < w).
 * m is small: 10 for one decimal digit, or a bar width. */
static uint64_t scale_below(uint64_t r, uint64_t w, unsigned m, uint64_t *rem_out)
{
	uint64_t q = 0, rem = 0;

	for (unsigned i = 0; i < m; i++) {
		if (rem >= w - r) {
			rem -= w - r;
			q++;
		} else {
			rem += r;
		}
	}
	if (rem_out)
		*rem_out = rem;
	return q;
}

int console_fmt_percent(char *buf, size_t cap, int64_t part, int64_t whole)
{
	char tmp[32];
	int n;

	if (whole <= 0)
		return emit(buf, cap, "-", 1);

	uint64_t w = (uint64_t)whole, mag = magnitude(part);
	uint64_t q = mag / w, rem = mag % w;

	if (q >= 100)
		return part < 0 ? emit(buf, cap, "<-9999%", 7) : emit(buf, cap, ">9999%", 6);
	/* thousandths of the goal: q * 1000 + three decimal digits of rem / w */
	uint64_t milli = q;
	for (int i = 0; i < 3; i++)
		milli = milli * 10 + scale_below(rem, w, 10, &rem);
	/* no "-0.0%": the sign shows only when a digit does */
	const char *sign = part < 0 && milli >= 10 ? "-" : "";
	n = snprintf(tmp, sizeof tmp, "%s%llu.%llu%%", sign, (unsigned long long)(milli / 10),
	             (unsigned long long)(milli % 10));
	return emit(buf, cap, tmp, (size_t)n);
}

int console_fmt_bar_cells(int64_t part, int64_t whole, int width)
{
	if (whole <= 0 || width <= 0 || part <= 0)
		return 0;
	if (part >= whole)
		return width;
	return (int)scale_below((uint64_t)part, (uint64_t)whole, (unsigned)width, NULL);
}

int console_fmt_duration(char *buf, size_t cap, int64_t seconds)
{
	char tmp[48];
	int n;

	if (seconds < 0)
		seconds = 0;
	int64_t days = seconds / 86400, rest = seconds % 86400;
	if (days)
		n = snprintf(tmp, sizeof tmp, "%lldd %d:%02d:%02d", (long long)days,
		             (int)(rest / 3600), (int)(rest / 60 % 60), (int)(rest % 60));
	else
		n = snprintf(tmp, sizeof tmp, "%d:%02d:%02d", (int)(rest / 3600),
		             (int)(rest / 60 % 60), (int)(rest % 60));
	return emit(buf, cap, tmp, (size_t)n);
}

int console_fmt_day_phase(int64_t early_ms, int64_t opens_ms, int64_t closes_ms, int64_t now_ms)
{
	if (!opens_ms)
		return 0;
	if (now_ms >= closes_ms)
		return 4;
	if (now_ms >= opens_ms)
		return 3;
	return early_ms && now_ms >= early_ms ? 2 : 1;
}

int console_fmt_day(char *buf, size_t cap, int64_t early_ms, int64_t opens_ms, int64_t closes_ms,
                    int64_t now_ms)
{
	static const char *const lead[] = {"", "opens in ", "early giving, opens in ",
	                                   "open, closes in ", "closed"};
	int phase = console_fmt_day_phase(early_ms, opens_ms, closes_ms, now_ms);
	int64_t to = phase == 3 ? closes_ms : opens_ms;
	char tmp[96], d[48];
	int n;

	if (!buf || !cap)
		return -EINVAL;
	if (phase == 0 || phase == 4)
		return emit(buf, cap, lead[phase], strlen(lead[phase]));
	console_fmt_duration(d, sizeof d, (to - now_ms + 999) / 1000);
	n = snprintf(tmp, sizeof tmp, "%s%s", lead[phase], d);
	return emit(buf, cap, tmp, (size_t)n);
}

int console_fmt_spark(char *buf, size_t cap, const double *v, size_t n, int utf8)
{
	static const char *const bars[] = {"\u2581", "\u2582", "\u2583", "\u2584",
	                                   "\u2585", "\u2586", "\u2587", "\u2588"};
	static const char ascii[] = "_.-=+*#@";
	size_t at = 0, cell = utf8 ? 3 : 1;
	double top = 0;
	int cells = 0;

	if (!cap)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (v[i] > top)
			top = v[i];
	for (size_t i = 0; i < n && at + cell < cap; i++, cells++) {
		int level = top > 0 && v[i] > 0 ? (int)(v[i] / top * 7.0 + 0.5) : 0;

		if (utf8)
			memcpy(buf + at, bars[level], 3);
		else
			buf[at] = ascii[level];
		at += cell;
	}
	buf[at] = '\0';
	return cells;
}

int console_fmt_rate(char *buf, size_t cap, double v)
{
	char tmp[32];
	int n;

	if (!(v >= 0)) /* negative or NaN */
		return emit(buf, cap, "-", 1);
	if (v < 10000)
		n = snprintf(tmp, sizeof tmp, "%.1f", v);
	else if (v < 1e9)
		n = snprintf(tmp, sizeof tmp, "%.0f", v);
	else
		n = snprintf(tmp, sizeof tmp, "%.2e", v);
	return emit(buf, cap, tmp, (size_t)n);
}

/* Latency units, smallest first: a value below `below` (in that unit, so
 * that rounding to `decimals` never reaches the next row) prints here. */
struct latency_unit {
	double per_ms; /* units per millisecond */
	double below;
	int decimals;
	const char *name;
};

static const struct latency_unit latency_units[] = {
    {1, 9.995, 2, "ms"},        {1, 99.95, 1, "ms"},           {1, 999.5, 0, "ms"},
    {1 / 1e3, 9.995, 2, "s"},   {1 / 1e3, 59.95, 1, "s"},      {1 / 6e4, 59.95, 1, "min"},
    {1 / 3.6e6, 99.95, 1, "h"}, {1 / 3.6e6, 999999.5, 0, "h"},
};

int console_fmt_latency(char *buf, size_t cap, double ms)
{
	char tmp[32];
	int n;

	if (!(ms >= 0))
		return emit(buf, cap, "-", 1);
	for (size_t i = 0; i < sizeof latency_units / sizeof latency_units[0]; i++) {
		const struct latency_unit *u = &latency_units[i];
		double v = ms * u->per_ms;

		if (v < u->below) {
			n = snprintf(tmp, sizeof tmp, "%.*f %s", u->decimals, v, u->name);
			return emit(buf, cap, tmp, (size_t)n);
		}
	}
	return emit(buf, cap, ">999999 h", 9);
}

int console_fmt_donation(char *buf, size_t cap, int64_t id)
{
	char tmp[32];
	int n;

	if (id <= 0)
		return emit(buf, cap, "-", 1);
	n = snprintf(tmp, sizeof tmp, "dn_%lld", (long long)id);
	return emit(buf, cap, tmp, (size_t)n);
}

int console_fmt_minutes(char *buf, size_t cap, int64_t minutes)
{
	char tmp[64];
	int n;

	if (minutes < 0)
		minutes = 0;
	if (minutes < 60)
		n = snprintf(tmp, sizeof tmp, "%lld min", (long long)minutes);
	else if (minutes < 24 * 60)
		n = snprintf(tmp, sizeof tmp, "%lld h %lld min", (long long)(minutes / 60),
		             (long long)(minutes % 60));
	else
		n = snprintf(tmp, sizeof tmp, "%lld d %lld h", (long long)(minutes / (24 * 60)),
		             (long long)(minutes / 60 % 24));
	return emit(buf, cap, tmp, (size_t)n);
}

int64_t console_fmt_paused_min(const struct console_campaign *cc, int64_t now_ms)
{
	if (strcmp(cc->status, "paused") || cc->paused_since_ms <= 0 || now_ms <= 0)
		return -1;
	return now_ms > cc->paused_since_ms ? (now_ms - cc->paused_since_ms) / 60000 : 0;
}

int console_fmt_paused_long(const struct console_campaign *cc, int64_t now_ms, int limit_min)
{
	return limit_min > 0 && console_fmt_paused_min(cc, now_ms) >= 0 &&
	       now_ms - cc->paused_since_ms > (int64_t)limit_min * 60000;
}

int console_fmt_paused_alert(char *buf, size_t cap, const struct console_campaign *cs, size_t n,
                             int64_t now_ms, int limit_min)
{
	const struct console_campaign *worst = NULL;
	char tmp[256], span[64];
	size_t more = 0;
	int len;

	for (size_t i = 0; i < n; i++) {
		if (!console_fmt_paused_long(&cs[i], now_ms, limit_min))
			continue;
		if (worst && cs[i].paused_since_ms >= worst->paused_since_ms) {
			more++;
			continue;
		}
		more += worst != NULL;
		worst = &cs[i];
	}
	if (!worst)
		return emit(buf, cap, "", 0);
	console_fmt_minutes(span, sizeof span, console_fmt_paused_min(worst, now_ms));
	len = snprintf(tmp, sizeof tmp, "%s paused %s", worst->slug, span);
	if (more)
		len += snprintf(tmp + len, sizeof tmp - (size_t)len, " +%zu more", more);
	return emit(buf, cap, tmp, (size_t)len);
}

/* Decode one UTF-8 sequence at s into *cp and return its length (1-4), or
 * 0 when s does not start a valid one: a stray continuation byte, an
 * overlong form, a surrogate, a value above U+10FFFF or a sequence cut
 * short (the NUL terminator is not a continuation byte, so no overread). */
static int utf8_decode(const unsigned char *s, uint32_t *cp)
{
	uint32_t v, min;
	int n;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	} else if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2, v = s[0] & 0x1f, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3, v = s[0] & 0x0f, min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4, v = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	for (int i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

/* One unit of output: a whole character, or "?" standing for something the
 * terminal must not or cannot show. */
struct glyph {
	const char *bytes;
	int len;
	int cols;
};

/* The next glyph of *p; advances *p. Returns 0 at the end of the string. */
static int next_glyph(const char **p, struct glyph *g)
{
	const unsigned char *s = (const unsigned char *)*p;
	uint32_t cp = 0;
	int n, w = -1;

	if (!*s)
		return 0;
	n = utf8_decode(s, &cp);
	/* C0 and C1 controls (ESC above all) never reach the terminal. */
	if (n > 0 && cp >= 0x20 && !(cp >= 0x7f && cp < 0xa0))
		w = wcwidth((wchar_t)cp);
	if (w < 0) {
		g->bytes = "?";
		g->len = 1;
		g->cols = 1;
		*p += n > 0 ? n : 1;
		return 1;
	}
	g->bytes = *p;
	g->len = n;
	g->cols = w;
	*p += n;
	return 1;
}

int console_fmt_width(const char *s)
{
	struct glyph g;
	int cols = 0;

	if (!s)
		return 0;
	while (next_glyph(&s, &g))
		cols += g.cols;
	return cols;
}

int console_fmt_trunc(char *dst, size_t cap, const char *src, int max_cols, int ellipsis)
{
	const char *p, *ell = NULL;
	struct glyph g;
	size_t out = 0, ell_len = 0, base_out = 0;
	int cols = 0, base_cols = 0, fits = 1;

	if (!dst || cap == 0)
		return -EINVAL;
	if (!src)
		src = "";
	if (max_cols < 0)
		max_cols = 0;

	/* Does the whole string fit? */
	for (p = src; next_glyph(&p, &g);) {
		out += (size_t)g.len;
		cols += g.cols;
		if (cols > max_cols || out > cap - 1) {
			fits = 0;
			break;
		}
	}
	if (!fits && ellipsis && max_cols >= 1) {
		ell = wcwidth(0x2026) == 1 ? "\xe2\x80\xa6" : "~";
		if (strlen(ell) > cap - 1)
			ell = cap > 1 ? "~" : NULL;
		ell_len = ell ? strlen(ell) : 0;
	}

	int col_budget = max_cols - (ell ? 1 : 0);
	size_t byte_budget = cap - 1 - ell_len;

	out = 0;
	cols = 0;
	for (p = src; next_glyph(&p, &g);) {
		if (cols + g.cols > col_budget || out + (size_t)g.len > byte_budget) {
			/* A combining mark that does not fit takes its base out too. */
			if (g.cols == 0) {
				out = base_out;
				cols = base_cols;
			}
			break;
		}
		if (g.cols > 0) {
			base_out = out;
			base_cols = cols;
		}
		memcpy(dst + out, g.bytes, (size_t)g.len);
		out += (size_t)g.len;
		cols += g.cols;
	}
	if (ell) {
		memcpy(dst + out, ell, ell_len);
		out += ell_len;
		cols += 1;
	}
	dst[out] = '\0';
	return cols;
}

int console_fmt_contains(const char *hay, const char *needle)
{
	if (!needle || !*needle)
		return 1;
	if (!hay)
		return 0;
	for (; *hay; hay++) {
		size_t i = 0;
		while (needle[i] && hay[i] && ascii_lower(hay[i]) == ascii_lower(needle[i]))
			i++;
		if (!needle[i])
			return 1;
	}
	return 0;
}
