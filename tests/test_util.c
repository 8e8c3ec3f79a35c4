/* tests/test_util.c - UTF-8, control characters, RFC 3339, constant-time
 * comparison, hashing and the clocks of base/util. */
#include "tests/tests.h"
#include "base/currency.h"
#include "base/util.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdint.h>
#include <string.h>

/* util_utf8_len over a string literal that may hold NULs. */
#define U8LEN(lit) util_utf8_len((lit), sizeof(lit) - 1)

/* ---- UTF-8 ---- */

START_TEST(utf8_ascii)
{
	ck_assert_int_eq(U8LEN(""), 0);
	ck_assert_int_eq(U8LEN("a"), 1);
	ck_assert_int_eq(U8LEN("hello, world"), 12);
	ck_assert_int_eq(U8LEN("\x7f"), 1);
	/* A NUL inside the range is a code point like any other. */
	ck_assert_int_eq(U8LEN("a\0b"), 3);
	/* Only len bytes are looked at. */
	ck_assert_int_eq(util_utf8_len("abcdef", 3), 3);
}
END_TEST

START_TEST(utf8_multibyte)
{
	ck_assert_int_eq(U8LEN("\xc3\xa9"), 1);         /* é */
	ck_assert_int_eq(U8LEN("\xe2\x82\xac"), 1);     /* € */
	ck_assert_int_eq(U8LEN("\xf0\x9f\x98\x80"), 1); /* 😀 */
	ck_assert_int_eq(U8LEN("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"), 5);
	/* Boundaries of each sequence length. */
	ck_assert_int_eq(U8LEN("\xc2\x80"), 1);         /* U+0080 */
	ck_assert_int_eq(U8LEN("\xdf\xbf"), 1);         /* U+07FF */
	ck_assert_int_eq(U8LEN("\xe0\xa0\x80"), 1);     /* U+0800 */
	ck_assert_int_eq(U8LEN("\xed\x9f\xbf"), 1);     /* U+D7FF */
	ck_assert_int_eq(U8LEN("\xee\x80\x80"), 1);     /* U+E000 */
	ck_assert_int_eq(U8LEN("\xef\xbf\xbf"), 1);     /* U+FFFF */
	ck_assert_int_eq(U8LEN("\xf0\x90\x80\x80"), 1); /* U+10000 */
	ck_assert_int_eq(U8LEN("\xf4\x8f\xbf\xbf"), 1); /* U+10FFFF */
}
END_TEST

START_TEST(utf8_overlong)
{
	ck_assert_int_eq(U8LEN("\xc0\x80"), -1); /* NUL in two bytes */
	ck_assert_int_eq(U8LEN("\xc0\xaf"), -1); /* '/' */
	ck_assert_int_eq(U8LEN("\xc1\xbf"), -1);
	ck_assert_int_eq(U8LEN("\xe0\x80\x80"), -1);
	ck_assert_int_eq(U8LEN("\xe0\x80\xaf"), -1);
	ck_assert_int_eq(U8LEN("\xe0\x9f\xbf"), -1); /* U+07FF in three */
	ck_assert_int_eq(U8LEN("\xf0\x80\x80\x80"), -1);
	ck_assert_int_eq(U8LEN("\xf0\x8f\xbf\xbf"), -1); /* U+FFFF in four */
	ck_assert_int_eq(U8LEN("ok\xc0\x80"), -1);
}
END_TEST

START_TEST(utf8_surrogates_and_range)
{
	ck_assert_int_eq(U8LEN("\xed\xa0\x80"), -1); /* U+D800 */
	ck_assert_int_eq(U8LEN("\xed\xb0\x80"), -1); /* U+DC00 */
	ck_assert_int_eq(U8LEN("\xed\xbf\xbf"), -1); /* U+DFFF */
	/* A CESU-8 style surrogate pair. */
	ck_assert_int_eq(U8LEN("\xed\xa0\xbd\xed\xb8\x80"), -1);
	ck_assert_int_eq(U8LEN("\xf4\x90\x80\x80"), -1); /* U+110000 */
	ck_assert_int_eq(U8LEN("\xf5\x80\x80\x80"), -1);
	ck_assert_int_eq(U8LEN("\xf7\xbf\xbf\xbf"), -1);
	ck_assert_int_eq(U8LEN("\xf8\x88\x80\x80\x80"), -1);
	ck_assert_int_eq(U8LEN("\xfe"), -1);
	ck_assert_int_eq(U8LEN("\xff"), -1);
}
END_TEST

START_TEST(utf8_truncated_and_stray)
{
	ck_assert_int_eq(U8LEN("\xc3"), -1);
	ck_assert_int_eq(U8LEN("\xe2\x82"), -1);
	ck_assert_int_eq(U8LEN("\xf0\x9f\x98"), -1);
	ck_assert_int_eq(U8LEN("abc\xf0\x9f"), -1);
	/* Cut short by len although the bytes continue. */
	ck_assert_int_eq(util_utf8_len("\xe2\x82\xac", 2), -1);
	/* A lead byte followed by a non-continuation byte. */
	ck_assert_int_eq(U8LEN("\xe2\x82"
	                       "a"),
	                 -1);
	ck_assert_int_eq(U8LEN("\xc3"
	                       "a"),
	                 -1);
	ck_assert_int_eq(U8LEN("\xf0\x9f\x98"
	                       "a"),
	                 -1);
	/* Stray continuation bytes. */
	ck_assert_int_eq(U8LEN("\x80"), -1);
	ck_assert_int_eq(U8LEN("a\xbf"
	                       "b"),
	                 -1);
	/* Latin-1 text is not UTF-8. */
	ck_assert_int_eq(U8LEN("caf\xe9"), -1);
}
END_TEST

/* A prefix of at most max bytes, never ending inside a character. */
START_TEST(utf8_cut)
{
	const char *s = "ab\xc3\xa9" /* é */ "\xe2\x82\xac" /* € */ "\xf0\x9f\x8e\x81" /* 🎁 */;
	size_t len = strlen(s);

	ck_assert_uint_eq(util_utf8_cut(s, len, 100), len);
	ck_assert_uint_eq(util_utf8_cut(s, len, len), len);
	ck_assert_uint_eq(util_utf8_cut(s, len, 0), 0);
	ck_assert_uint_eq(util_utf8_cut(s, len, 2), 2);
	ck_assert_uint_eq(util_utf8_cut(s, len, 3), 2); /* inside é */
	ck_assert_uint_eq(util_utf8_cut(s, len, 4), 4);
	ck_assert_uint_eq(util_utf8_cut(s, len, 5), 4); /* inside € */
	ck_assert_uint_eq(util_utf8_cut(s, len, 6), 4);
	ck_assert_uint_eq(util_utf8_cut(s, len, 7), 7);
	ck_assert_uint_eq(util_utf8_cut(s, len, 8), 7); /* inside 🎁 */
	ck_assert_uint_eq(util_utf8_cut(s, len, 10), 7);
	ck_assert_uint_eq(util_utf8_cut(s, len, 11), 11);
	/* not UTF-8 (a run of continuation bytes): cut where it falls */
	ck_assert_uint_eq(util_utf8_cut("a\x80\x80\x80\x80\x80", 6, 5), 5);
	ck_assert_uint_eq(util_utf8_cut("\x80\x80", 2, 1), 1);
}
END_TEST

/* ---- control characters ---- */

START_TEST(control_chars)
{
	ck_assert_int_eq(util_has_control("plain text", 10, 0), 0);
	ck_assert_int_eq(util_has_control("", 0, 0), 0);
	ck_assert_int_eq(util_has_control("caf\xc3\xa9 \xe2\x82\xac", 9, 0), 0);
	ck_assert_int_eq(util_has_control("a\tb", 3, 0), 1);
	ck_assert_int_eq(util_has_control("a\tb", 3, 1), 1);
	ck_assert_int_eq(util_has_control("a\nb", 3, 0), 1);
	ck_assert_int_eq(util_has_control("a\nb", 3, 1), 0);
	ck_assert_int_eq(util_has_control("a\r\nb", 4, 1), 1);
	ck_assert_int_eq(util_has_control("\x01", 1, 1), 1);
	ck_assert_int_eq(util_has_control("\x1f", 1, 1), 1);
	ck_assert_int_eq(util_has_control("\x1b[31m", 5, 0), 1);
	ck_assert_int_eq(util_has_control("del\x7f", 4, 1), 1);
	ck_assert_int_eq(util_has_control("a\0b", 3, 1), 1);
	ck_assert_int_eq(util_has_control(" ~", 2, 0), 0);
	/* Only len bytes are looked at. */
	ck_assert_int_eq(util_has_control("ab\x01", 2, 0), 0);
	/* C1 controls: U+0080..U+009F (C2 80..C2 9F), NEL even with newlines. */
	ck_assert_int_eq(util_has_control("\xc2\x80", 2, 0), 1);
	ck_assert_int_eq(util_has_control("a\xc2\x85"
	                                  "b",
	                                  4, 1),
	                 1);
	ck_assert_int_eq(util_has_control("\xc2\x9b[31m", 5, 0), 1);
	ck_assert_int_eq(util_has_control("\xc2\x9f", 2, 0), 1);
	ck_assert_int_eq(util_has_control("\xc2\xa0", 2, 0), 0); /* no-break space */
	ck_assert_int_eq(util_has_control("\xc2\xbf", 2, 0), 0);
	ck_assert_int_eq(util_has_control("\xc3\x80", 2, 0), 0);  /* À */
	ck_assert_int_eq(util_has_control("a\xc2\x80", 2, 0), 0); /* cut off */
}
END_TEST

START_TEST(bidi_controls)
{
	static const char *const bad[] = {
	    "\xe2\x80\xaa", "\xe2\x80\xab", "\xe2\x80\xac", "\xe2\x80\xad", "\xe2\x80\xae",
	    "\xe2\x81\xa6", "\xe2\x81\xa7", "\xe2\x81\xa8", "\xe2\x81\xa9",
	};
	static const char *const fine[] = {
	    "\xe2\x80\xa9",
	    "\xe2\x80\xaf",
	    "\xe2\x80\x8f",
	    "\xe2\x81\xa5",
	    "\xe2\x81\xaa",
	    "\xe2\x82\xac",
	    "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d",
	};
	char s[32];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(s, sizeof(s), "ab%scd", bad[i]);
		ck_assert_int_eq(util_has_bidi_control(s, strlen(s)), 1);
		ck_assert_int_eq(util_has_bidi_control(bad[i], 3), 1);
		ck_assert_int_eq(util_has_bidi_control(bad[i], 2), 0); /* cut off */
	}
	for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++)
		ck_assert_int_eq(util_has_bidi_control(fine[i], strlen(fine[i])), 0);
	ck_assert_int_eq(util_has_bidi_control("", 0), 0);
	ck_assert_int_eq(util_has_bidi_control("plain", 5), 0);
}
END_TEST

/* ---- RFC 3339 ---- */

START_TEST(rfc3339_format)
{
	char buf[32];

	ck_assert_str_eq(util_rfc3339(0, buf, sizeof(buf)), "1970-01-01T00:00:00.000Z");
	ck_assert_str_eq(util_rfc3339(1700000000123, buf, sizeof(buf)), "2023-11-14T22:13:20.123Z");
	ck_assert_str_eq(util_rfc3339(1709208000000, buf, sizeof(buf)), "2024-02-29T12:00:00.000Z");
	ck_assert_str_eq(util_rfc3339(1, buf, sizeof(buf)), "1970-01-01T00:00:00.001Z");
	ck_assert_str_eq(util_rfc3339(-1, buf, sizeof(buf)), "1969-12-31T23:59:59.999Z");
	ck_assert_str_eq(util_rfc3339(253402300799999, buf, sizeof(buf)),
	                 "9999-12-31T23:59:59.999Z");
	/* The documented minimum size is enough. */
	{
		char small[25];

		ck_assert_str_eq(util_rfc3339(1700000000123, small, sizeof(small)),
		                 "2023-11-14T22:13:20.123Z");
	}
}
END_TEST

START_TEST(rfc3339_parse_valid)
{
	int64_t v = -42;

	ck_assert_int_eq(util_parse_rfc3339("1970-01-01T00:00:00Z", &v), 0);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(util_parse_rfc3339("2023-11-14T22:13:20.123Z", &v), 0);
	ck_assert_int_eq(v, 1700000000123);
	ck_assert_int_eq(util_parse_rfc3339("2023-11-14t22:13:20.123z", &v), 0);
	ck_assert_int_eq(v, 1700000000123);
	ck_assert_int_eq(util_parse_rfc3339("2023-11-14T22:13:20Z", &v), 0);
	ck_assert_int_eq(v, 1700000000000);
	/* Offsets: the same instant written in other zones. */
	ck_assert_int_eq(util_parse_rfc3339("2023-11-14T23:13:20.123+01:00", &v), 0);
	ck_assert_int_eq(v, 1700000000123);
	ck_assert_int_eq(util_parse_rfc3339("2023-11-14T16:43:20.123-05:30", &v), 0);
	ck_assert_int_eq(v, 1700000000123);
	ck_assert_int_eq(util_parse_rfc3339("2023-11-14T22:13:20.123+00:00", &v), 0);
	ck_assert_int_eq(v, 1700000000123);
	ck_assert_int_eq(util_parse_rfc3339("2023-11-14T22:13:20.123-00:00", &v), 0);
	ck_assert_int_eq(v, 1700000000123);
	/* Offsets across a day boundary. */
	ck_assert_int_eq(util_parse_rfc3339("2023-11-15T08:13:20+10:00", &v), 0);
	ck_assert_int_eq(v, 1700000000000);
}
END_TEST

START_TEST(rfc3339_parse_fractions)
{
	int64_t v = 0;

	ck_assert_int_eq(util_parse_rfc3339("1970-01-01T00:00:00.1Z", &v), 0);
	ck_assert_int_eq(v, 100);
	ck_assert_int_eq(util_parse_rfc3339("1970-01-01T00:00:00.12Z", &v), 0);
	ck_assert_int_eq(v, 120);
	ck_assert_int_eq(util_parse_rfc3339("1970-01-01T00:00:00.123Z", &v), 0);
	ck_assert_int_eq(v, 123);
	/* Beyond milliseconds the digits are accepted and truncated. */
	ck_assert_int_eq(util_parse_rfc3339("1970-01-01T00:00:00.123456Z", &v), 0);
	ck_assert_int_eq(v, 123);
	ck_assert_int_eq(util_parse_rfc3339("1970-01-01T00:00:00.999999999Z", &v), 0);
	ck_assert_int_eq(v, 999);
	ck_assert_int_eq(util_parse_rfc3339("1970-01-01T00:00:00.000Z", &v), 0);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(util_parse_rfc3339("1970-01-01T00:00:00.5+01:00", &v), 0);
	ck_assert_int_eq(v, -3600000 + 500);
	ck_assert_int_eq(util_parse_rfc3339("1970-01-01T00:00:00.Z", &v), -EINVAL);
	ck_assert_int_eq(util_parse_rfc3339("1970-01-01T00:00:00.1234567890Z", &v), -EINVAL);
	ck_assert_int_eq(util_parse_rfc3339("1970-01-01T00:00:00.12aZ", &v), -EINVAL);
	ck_assert_int_eq(util_parse_rfc3339("1970-01-01T00:00:00,123Z", &v), -EINVAL);
}
END_TEST

START_TEST(rfc3339_parse_dates)
{
	int64_t v = 0;

	/* Leap years: every 4th, not every 100th, but every 400th. */
	ck_assert_int_eq(util_parse_rfc3339("2024-02-29T12:00:00Z", &v), 0);
	ck_assert_int_eq(v, 1709208000000);
	ck_assert_int_eq(util_parse_rfc3339("2000-02-29T00:00:00Z", &v), 0);
	ck_assert_int_eq(v, 951782400000);
	ck_assert_int_eq(util_parse_rfc3339("2023-02-29T00:00:00Z", &v), -EINVAL);
	ck_assert_int_eq(util_parse_rfc3339("2100-02-29T00:00:00Z", &v), -EINVAL);
	ck_assert_int_eq(util_parse_rfc3339("2024-02-30T00:00:00Z", &v), -EINVAL);
	ck_assert_int_eq(util_parse_rfc3339("2023-02-28T23:59:59.999Z", &v), 0);
	/* Month lengths. */
	ck_assert_int_eq(util_parse_rfc3339("2023-01-31T00:00:00Z", &v), 0);
	ck_assert_int_eq(util_parse_rfc3339("2023-04-31T00:00:00Z", &v), -EINVAL);
	ck_assert_int_eq(util_parse_rfc3339("2023-06-31T00:00:00Z", &v), -EINVAL);
	ck_assert_int_eq(util_parse_rfc3339("2023-09-31T00:00:00Z", &v), -EINVAL);
	ck_assert_int_eq(util_parse_rfc3339("2023-11-31T00:00:00Z", &v), -EINVAL);
	ck_assert_int_eq(util_parse_rfc3339("2023-12-31T23:59:59Z", &v), 0);
	ck_assert_int_eq(util_parse_rfc3339("2023-12-32T00:00:00Z", &v), -EINVAL);
	ck_assert_int_eq(util_parse_rfc3339("2023-00-10T00:00:00Z", &v), -EINVAL);
	ck_assert_int_eq(util_parse_rfc3339("2023-13-10T00:00:00Z", &v), -EINVAL);
	ck_assert_int_eq(util_parse_rfc3339("2023-01-00T00:00:00Z", &v), -EINVAL);
	/* Clock fields. */
	ck_assert_int_eq(util_parse_rfc3339("2023-01-01T24:00:00Z", &v), -EINVAL);
	ck_assert_int_eq(util_parse_rfc3339("2023-01-01T23:60:00Z", &v), -EINVAL);
	ck_assert_int_eq(util_parse_rfc3339("2023-01-01T23:59:60Z", &v), -EINVAL);
	/* Offsets out of range or malformed. */
	ck_assert_int_eq(util_parse_rfc3339("2023-01-01T00:00:00+24:00", &v), -EINVAL);
	ck_assert_int_eq(util_parse_rfc3339("2023-01-01T00:00:00+01:60", &v), -EINVAL);
	ck_assert_int_eq(util_parse_rfc3339("2023-01-01T00:00:00+01", &v), -EINVAL);
	ck_assert_int_eq(util_parse_rfc3339("2023-01-01T00:00:00+0100", &v), -EINVAL);
	ck_assert_int_eq(util_parse_rfc3339("2023-01-01T00:00:00+1:00", &v), -EINVAL);
	/* Before the epoch is not a time tally stores. */
	ck_assert_int_eq(util_parse_rfc3339("1969-12-31T23:59:59Z", &v), -EINVAL);
}
END_TEST

START_TEST(rfc3339_parse_garbage)
{
	static const char *const bad[] = {
	    "",
	    "garbage",
	    "2023",
	    "2023-11-14",
	    "2023-11-14T",
	    "2023-11-14T22:13",
	    "2023-11-14T22:13:20",     /* no zone */
	    "2023-11-14T22:13:20.123", /* no zone */
	    "2023-11-14T22:13:20ZZ",
	    "2023-11-14T22:13:20Z ",
	    " 2023-11-14T22:13:20Z",
	    "2023-11-14X22:13:20Z",
	    "2023/11/14T22:13:20Z",
	    "23-11-14T22:13:20Z",
	    "2023-1-14T22:13:20Z",
	    "2023-11-14T2:13:20Z",
	    "2023-11-14T22:13:2Z",
	    "2023-11-14T22:13:20+",
	    "2023-11-14T22:13:20+01:00Z",
	    "2023-11-14T22:13:20.123Zjunk",
	    "+023-11-14T22:13:20Z",
	    "2023-11-14T22:13:20UTC",
	    "-2023-11-14T22:13:20Z",
	    "2o23-11-14T22:13:20Z",
	};
	int64_t v = 7;

	for (size_t i = 0; i < UTIL_ARRAY_LEN(bad); i++)
		ck_assert_msg(util_parse_rfc3339(bad[i], &v) == -EINVAL, "accepted \"%s\"", bad[i]);
}
END_TEST

START_TEST(rfc3339_round_trip)
{
	static const int64_t values[] = {
	    0,
	    1,
	    999,
	    1000,
	    86399999,
	    951782400000,
	    1700000000123,
	    1709208000000,
	    1795867200000,
	    4102444800000,
	    253402300799999,
	};
	char buf[32];

	for (size_t i = 0; i < UTIL_ARRAY_LEN(values); i++) {
		int64_t back = -1;

		util_rfc3339(values[i], buf, sizeof(buf));
		ck_assert_int_eq(strlen(buf), 24);
		ck_assert_int_eq(util_parse_rfc3339(buf, &back), 0);
		ck_assert_int_eq(back, values[i]);
	}
	/* Now round-trips too. */
	{
		int64_t now = util_now_ms(), back = 0;

		ck_assert_int_eq(util_parse_rfc3339(util_rfc3339(now, buf, sizeof(buf)), &back), 0);
		ck_assert_int_eq(back, now);
	}
}
END_TEST

/* ---- constant-time comparison ---- */

START_TEST(url_redact)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"smtp://user:pw@mail.example.org:587", "smtp://mail.example.org:587"},
	    {"smtp://user:pw@mail.example.org:587/", "smtp://mail.example.org:587/"},
	    {"smtps://us%40er:p@ss@host", "smtps://host"}, /* the last '@' ends it */
	    {"https://token@hooks.example.org/in?a=b@c", "https://hooks.example.org/in?a=b@c"},
	    {"https://hooks.example.org/x@y", "https://hooks.example.org/x@y"},
	    {"smtp://127.0.0.1:2525", "smtp://127.0.0.1:2525"},
	    {"user:pw@host:25", "host:25"},
	    {"http://@host", "http://host"},
	    {"", ""},
	};
	char out[64], small[8];

	for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++)
		ck_assert_str_eq(util_url_redact(cases[i].in, out, sizeof(out)), cases[i].out);
	/* Cut short, never with the login. */
	ck_assert_str_eq(util_url_redact("smtp://user:secret@hostname", small, sizeof(small)),
	                 "smtp://");
}
END_TEST

START_TEST(ct_equal)
{
	ck_assert_int_eq(util_ct_equal("secret", 6, "secret", 6), 1);
	ck_assert_int_eq(util_ct_equal("secret", 6, "secreT", 6), 0);
	ck_assert_int_eq(util_ct_equal("Secret", 6, "secret", 6), 0);
	ck_assert_int_eq(util_ct_equal("a\0b", 3, "a\0b", 3), 1);
	ck_assert_int_eq(util_ct_equal("a\0b", 3, "a\0c", 3), 0);
	/* Different lengths, including a prefix either way. */
	ck_assert_int_eq(util_ct_equal("secret", 6, "secrets", 7), 0);
	ck_assert_int_eq(util_ct_equal("secrets", 7, "secret", 6), 0);
	ck_assert_int_eq(util_ct_equal("abc", 3, "abcdef", 6), 0);
	/* A shorter a padded with NULs is still not equal. */
	ck_assert_int_eq(util_ct_equal("ab", 2, "ab\0", 3), 0);
	ck_assert_int_eq(util_ct_equal("ab\0", 3, "ab", 2), 0);
	/* Empty. */
	ck_assert_int_eq(util_ct_equal("", 0, "", 0), 1);
	ck_assert_int_eq(util_ct_equal("", 0, "x", 1), 0);
	ck_assert_int_eq(util_ct_equal("x", 1, "", 0), 0);
	/* Long tokens differing only in the last byte. */
	{
		char a[256], b[256];

		memset(a, 'k', sizeof(a));
		memcpy(b, a, sizeof(b));
		ck_assert_int_eq(util_ct_equal(a, sizeof(a), b, sizeof(b)), 1);
		b[255] = 'j';
		ck_assert_int_eq(util_ct_equal(a, sizeof(a), b, sizeof(b)), 0);
		b[255] = 'k';
		b[0] = 'j';
		ck_assert_int_eq(util_ct_equal(a, sizeof(a), b, sizeof(b)), 0);
	}
}
END_TEST

/* ---- hashing ---- */

START_TEST(hash_stable)
{
	char buf[64];
	uint64_t h = util_hash("campaign-slug", 13);

	/* Same bytes, same hash, wherever they live. */
	ck_assert_uint_eq(util_hash("campaign-slug", 13), h);
	memcpy(buf + 3, "campaign-slug", 13);
	ck_assert_uint_eq(util_hash(buf + 3, 13), h);
	/* Only len bytes count. */
	ck_assert_uint_eq(util_hash("campaign-slug-and-more", 13), h);
	/* Nearby inputs differ. */
	ck_assert_uint_ne(util_hash("campaign-slug", 12), h);
	ck_assert_uint_ne(util_hash("campaign-sluh", 13), h);
	ck_assert_uint_ne(util_hash("a", 1), util_hash("b", 1));
	ck_assert_uint_ne(util_hash("ab", 2), util_hash("ba", 2));
	ck_assert_uint_ne(util_hash("", 0), util_hash("\0", 1));
}
END_TEST

/* The header promises 64-bit FNV-1a; these are its published test vectors
 * (offset basis 14695981039346656037, prime 1099511628211). */
START_TEST(hash_fnv1a_vectors)
{
	ck_assert_uint_eq(util_hash("", 0), UINT64_C(0xcbf29ce484222325));
	ck_assert_uint_eq(util_hash("a", 1), UINT64_C(0xaf63dc4c8601ec8c));
	ck_assert_uint_eq(util_hash("foobar", 6), UINT64_C(0x85944171f73967e8));
}
END_TEST

/* SipHash-2-4's reference vectors (key 00..0f, message 00..len-1), and
 * every tail length against OpenSSL's SipHash. */
START_TEST(hash_keyed_vectors)
{
	const struct util_hash_key k = {UINT64_C(0x0706050403020100), UINT64_C(0x0f0e0d0c0b0a0908)};
	unsigned char key[16], msg[64];
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);

	for (int i = 0; i < 64; i++)
		msg[i] = (unsigned char)i;
	for (int i = 0; i < 16; i++)
		key[i] = (unsigned char)i;
	ck_assert_uint_eq(util_hash_keyed(&k, msg, 0), UINT64_C(0x726fdb47dd0e0e31));
	ck_assert_uint_eq(util_hash_keyed(&k, msg, 1), UINT64_C(0x74f839c593dc67fd));
	ck_assert_uint_eq(util_hash_keyed(&k, msg, 8), UINT64_C(0x93f5f5799a932462));
	ck_assert_uint_eq(util_hash_keyed(&k, msg, 15), UINT64_C(0xa129ca6149be45e5));
	ck_assert_ptr_nonnull(mac);
	for (size_t len = 0; len <= sizeof(msg); len++) {
		EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
		size_t size = 8, outl = 0;
		OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t("size", &size),
		                       OSSL_PARAM_construct_end()};
		unsigned char out[8];
		uint64_t want = 0;

		ck_assert_ptr_nonnull(ctx);
		ck_assert_int_eq(EVP_MAC_init(ctx, key, sizeof(key), params), 1);
		ck_assert_int_eq(EVP_MAC_update(ctx, msg, len), 1);
		ck_assert_int_eq(EVP_MAC_final(ctx, out, &outl, sizeof(out)), 1);
		ck_assert_uint_eq(outl, 8);
		for (int i = 0; i < 8; i++)
			want |= (uint64_t)out[i] << (8 * i);
		ck_assert_uint_eq(util_hash_keyed(&k, msg, len), want);
		EVP_MAC_CTX_free(ctx);
	}
	EVP_MAC_free(mac);
}
END_TEST

/* Every table gets its own secret: two never match, and the same input
 * hashes differently under them. */
START_TEST(hash_key_random)
{
	struct util_hash_key a, b;

	ck_assert_int_eq(util_hash_key_random(&a), 0);
	ck_assert_int_eq(util_hash_key_random(&b), 0);
	ck_assert(a.k0 != b.k0 || a.k1 != b.k1);
	ck_assert_uint_ne(util_hash_keyed(&a, "idem-key", 8), util_hash_keyed(&b, "idem-key", 8));
	ck_assert_uint_eq(util_hash_keyed(&a, "idem-key", 8), util_hash_keyed(&a, "idem-key", 8));
}
END_TEST

/* ---- currencies ---- */

START_TEST(currency_exponents)
{
	static const char *const zero[] = {"JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XOF"};
	static const char *const three[] = {"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"};

	for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++)
		ck_assert_int_eq(currency_exponent(zero[i]), 0);
	for (size_t i = 0; i < sizeof(three) / sizeof(three[0]); i++)
		ck_assert_int_eq(currency_exponent(three[i]), 3);
	ck_assert_int_eq(currency_exponent("CLF"), 4);
	ck_assert_int_eq(currency_exponent("USD"), 2);
	ck_assert_int_eq(currency_exponent("EUR"), 2);
	ck_assert_int_eq(currency_exponent("ZZZ"), 2); /* accepted, unknown: 2 */
}
END_TEST

START_TEST(currency_formats)
{
	char b[32];

	ck_assert_int_eq(currency_format(b, sizeof(b), 1234, "USD"), 5);
	ck_assert_str_eq(b, "12.34");
	currency_format(b, sizeof(b), 1234, "JPY");
	ck_assert_str_eq(b, "1234");
	currency_format(b, sizeof(b), 1234, "KWD");
	ck_assert_str_eq(b, "1.234");
	currency_format(b, sizeof(b), 12345, "CLF");
	ck_assert_str_eq(b, "1.2345");
	currency_format(b, sizeof(b), 0, "USD");
	ck_assert_str_eq(b, "0.00");
	currency_format(b, sizeof(b), -5, "USD");
	ck_assert_str_eq(b, "-0.05");
	currency_format(b, sizeof(b), INT64_MAX, "USD");
	ck_assert_str_eq(b, "92233720368547758.07");
	currency_format(b, sizeof(b), INT64_MIN, "JPY");
	ck_assert_str_eq(b, "-9223372036854775808");
	/* Too small: nothing half-written. */
	ck_assert_int_eq(currency_format(b, 5, 1234, "USD"), -ENOSPC);
	ck_assert_str_eq(b, "");
	ck_assert_int_eq(currency_format(b, 6, 1234, "USD"), 5);
}
END_TEST

/* ---- clocks and randomness ---- */

START_TEST(clocks)
{
	int64_t now = util_now_ms();
	uint64_t a = util_mono_ns(), b;

	/* After 2020-01-01 and before 2200. */
	ck_assert_int_gt(now, INT64_C(1577836800000));
	ck_assert_int_lt(now, INT64_C(7258118400000));
	b = util_mono_ns();
	ck_assert_uint_ge(b, a);
}
END_TEST

START_TEST(random_bytes)
{
	unsigned char a[32], b[32], zero[32] = {0};

	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	ck_assert_int_eq(util_random(a, sizeof(a)), 0);
	ck_assert_int_eq(util_random(b, sizeof(b)), 0);
	ck_assert_int_ne(memcmp(a, b, sizeof(a)), 0);
	ck_assert_int_ne(memcmp(a, zero, sizeof(a)), 0);
	ck_assert_int_eq(util_random(a, 0), 0);
}
END_TEST

Suite *util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc;

	tc = tcase_create("utf8");
	tcase_add_test(tc, utf8_ascii);
	tcase_add_test(tc, utf8_multibyte);
	tcase_add_test(tc, utf8_overlong);
	tcase_add_test(tc, utf8_surrogates_and_range);
	tcase_add_test(tc, utf8_truncated_and_stray);
	tcase_add_test(tc, utf8_cut);
	tcase_add_test(tc, control_chars);
	tcase_add_test(tc, bidi_controls);
	suite_add_tcase(s, tc);

	tc = tcase_create("rfc3339");
	tcase_add_test(tc, rfc3339_format);
	tcase_add_test(tc, rfc3339_parse_valid);
	tcase_add_test(tc, rfc3339_parse_fractions);
	tcase_add_test(tc, rfc3339_parse_dates);
	tcase_add_test(tc, rfc3339_parse_garbage);
	tcase_add_test(tc, rfc3339_round_trip);
	suite_add_tcase(s, tc);

	tc = tcase_create("currency");
	tcase_add_test(tc, currency_exponents);
	tcase_add_test(tc, currency_formats);
	suite_add_tcase(s, tc);

	tc = tcase_create("misc");
	tcase_add_test(tc, url_redact);
	tcase_add_test(tc, ct_equal);
	tcase_add_test(tc, hash_stable);
	tcase_add_test(tc, hash_fnv1a_vectors);
	tcase_add_test(tc, hash_keyed_vectors);
	tcase_add_test(tc, hash_key_random);
	tcase_add_test(tc, clocks);
	tcase_add_test(tc, random_bytes);
	suite_add_tcase(s, tc);
	return s;
}
