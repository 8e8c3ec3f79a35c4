/* tests/test_buf.c - the growable buffer: growth, printf, JSON strings. */
#include "tests/tests.h"
#include "base/buf.h"
#include "base/util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The buffer's invariants: NUL after len, len < cap. */
static void check_invariants(const struct buf *b)
{
	ck_assert_ptr_nonnull(b->p);
	ck_assert_uint_lt(b->len, b->cap);
	ck_assert_int_eq(b->p[b->len], '\0');
}

/* Append s as a JSON string to a fresh buffer, parse it back with jansson
 * and check it decodes to s. Returns the encoded text (caller frees). */
static char *json_round_trip(const char *s)
{
	struct buf b = {0};
	json_error_t jerr;
	json_t *v;
	char *text;

	ck_assert_int_eq(buf_json_string(&b, s), 0);
	check_invariants(&b);
	ck_assert_uint_eq(strlen(b.p), b.len);
	v = json_loadb(b.p, b.len, JSON_DECODE_ANY, &jerr);
	ck_assert_msg(v != NULL, "jansson rejects %s: %s", b.p, jerr.text);
	ck_assert(json_is_string(v));
	ck_assert_uint_eq(json_string_length(v), strlen(s));
	ck_assert_str_eq(json_string_value(v), s);
	json_decref(v);
	text = b.p;
	return text;
}

START_TEST(append_and_puts)
{
	struct buf b = {0};

	ck_assert_int_eq(buf_puts(&b, ""), 0);
	check_invariants(&b);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_int_eq(buf_puts(&b, "hello"), 0);
	ck_assert_int_eq(buf_append(&b, ", ", 2), 0);
	ck_assert_int_eq(buf_append(&b, "world!!!", 5), 0);
	check_invariants(&b);
	ck_assert_uint_eq(b.len, 12);
	ck_assert_str_eq(b.p, "hello, world");
	/* Binary data with NULs is kept as is. */
	ck_assert_int_eq(buf_append(&b, "\0x", 2), 0);
	ck_assert_uint_eq(b.len, 14);
	ck_assert_int_eq(memcmp(b.p, "hello, world\0x", 14), 0);
	check_invariants(&b);
	buf_fini(&b);
	ck_assert_ptr_null(b.p);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_uint_eq(b.cap, 0);
	/* Finishing twice and reusing after fini are fine. */
	buf_fini(&b);
	ck_assert_int_eq(buf_puts(&b, "again"), 0);
	ck_assert_str_eq(b.p, "again");
	buf_fini(&b);
}
END_TEST

START_TEST(reserve)
{
	struct buf b = {0};
	size_t cap;

	ck_assert_int_eq(buf_reserve(&b, 0), 0);
	ck_assert_ptr_nonnull(b.p);
	ck_assert_uint_ge(b.cap, 1);
	ck_assert_int_eq(buf_reserve(&b, 10000), 0);
	ck_assert_uint_ge(b.cap, 10001);
	ck_assert_uint_eq(b.len, 0);
	cap = b.cap;
	/* Room already there: no reallocation. */
	ck_assert_int_eq(buf_reserve(&b, 100), 0);
	ck_assert_uint_eq(b.cap, cap);
	buf_fini(&b);
}
END_TEST

START_TEST(growth)
{
	struct buf b = {0};
	size_t grows = 0, last_cap = 0;

	/* One byte at a time far beyond the initial capacity. */
	for (size_t i = 0; i < 100000; i++) {
		char c = (char)('a' + i % 26);

		if (buf_append(&b, &c, 1))
			ck_abort_msg("append %zu failed", i);
		if (b.cap != last_cap) {
			grows++;
			last_cap = b.cap;
		}
	}
	check_invariants(&b);
	ck_assert_uint_eq(b.len, 100000);
	for (size_t i = 0; i < b.len; i++)
		if (b.p[i] != 'a' + (int)(i % 26))
			ck_abort_msg("byte %zu is %c", i, b.p[i]);
	/* Geometric growth: a handful of reallocations, not thousands. */
	ck_assert_uint_lt(grows, 40);
	buf_fini(&b);

	/* One large append into an empty buffer, then another. */
	{
		char *big = malloc(70000);

		ck_assert_ptr_nonnull(big);
		memset(big, 'x', 70000);
		ck_assert_int_eq(buf_append(&b, big, 70000), 0);
		ck_assert_int_eq(buf_append(&b, big, 70000), 0);
		check_invariants(&b);
		ck_assert_uint_eq(b.len, 140000);
		ck_assert_int_eq(memcmp(b.p + 70000, big, 70000), 0);
		free(big);
		buf_fini(&b);
	}
}
END_TEST

START_TEST(printf_short)
{
	struct buf b = {0};

	ck_assert_int_eq(buf_printf(&b, "%d-%s-%lld", 42, "x", (long long)-7), 0);
	ck_assert_str_eq(b.p, "42-x--7");
	ck_assert_uint_eq(b.len, 7);
	ck_assert_int_eq(buf_printf(&b, "%s", ""), 0);
	ck_assert_uint_eq(b.len, 7);
	ck_assert_int_eq(buf_printf(&b, "|%05.1f|", 2.5), 0);
	ck_assert_str_eq(b.p, "42-x--7|002.5|");
	check_invariants(&b);
	buf_fini(&b);
}
END_TEST

START_TEST(printf_long)
{
	struct buf b = {0};
	char *s = malloc(5001);

	ck_assert_ptr_nonnull(s);
	for (int i = 0; i < 5000; i++)
		s[i] = (char)('A' + i % 26);
	s[5000] = '\0';
	ck_assert_int_eq(buf_puts(&b, "head:"), 0);
	/* Longer than the initial capacity and than what was reserved. */
	ck_assert_int_eq(buf_printf(&b, "[%s|%d]", s, 12345), 0);
	check_invariants(&b);
	ck_assert_uint_eq(b.len, 5 + 1 + 5000 + 1 + 5 + 1);
	ck_assert_int_eq(memcmp(b.p, "head:[", 6), 0);
	ck_assert_int_eq(memcmp(b.p + 6, s, 5000), 0);
	ck_assert_str_eq(b.p + 5006, "|12345]");
	ck_assert_int_eq(buf_printf(&b, "%s", "tail"), 0);
	ck_assert_str_eq(b.p + 5013, "tail");
	ck_assert_uint_eq(strlen(b.p), b.len);
	buf_fini(&b);
	free(s);
}
END_TEST

/* Every output length around the capacity boundaries matches snprintf. */
START_TEST(printf_every_length)
{
	static const size_t prefixes[] = {0, 1, 100, 127, 128, 129, 200, 250, 255, 256, 257, 511};
	char *s = malloc(1200), *want = malloc(3000);

	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_nonnull(want);
	memset(s, 'q', 1199);
	s[1199] = '\0';

	for (size_t pi = 0; pi < UTIL_ARRAY_LEN(prefixes); pi++) {
		size_t prefix = prefixes[pi];

		for (size_t n = 0; n < 1199; n += 3) {
			struct buf b = {0};
			int wn;

			ck_assert_int_eq(buf_append(&b, s, prefix), 0);
			ck_assert_int_eq(buf_printf(&b, "%.*s#%zu", (int)n, s, n), 0);
			wn = snprintf(want, 3000, "%.*s#%zu", (int)n, s, n);
			ck_assert_uint_eq(b.len, prefix + (size_t)wn);
			ck_assert_int_eq(memcmp(b.p + prefix, want, (size_t)wn + 1), 0);
			check_invariants(&b);
			buf_fini(&b);
		}
	}
	free(s);
	free(want);
}
END_TEST

START_TEST(json_string_escapes)
{
	struct buf b = {0};

	ck_assert_int_eq(buf_json_string(&b, ""), 0);
	ck_assert_str_eq(b.p, "\"\"");
	buf_fini(&b);

	ck_assert_int_eq(buf_json_string(&b, "plain"), 0);
	ck_assert_str_eq(b.p, "\"plain\"");
	buf_fini(&b);

	ck_assert_int_eq(buf_json_string(&b, "say \"hi\" \\o/"), 0);
	ck_assert_str_eq(b.p, "\"say \\\"hi\\\" \\\\o/\"");
	buf_fini(&b);

	ck_assert_int_eq(buf_json_string(&b, "a\nb\rc\td"), 0);
	ck_assert_str_eq(b.p, "\"a\\nb\\rc\\td\"");
	buf_fini(&b);

	ck_assert_int_eq(buf_json_string(&b, "\x01\x08\x0c\x1b\x1f\x7f"), 0);
	ck_assert_str_eq(b.p, "\"\\u0001\\u0008\\u000c\\u001b\\u001f\\u007f\"");
	buf_fini(&b);

	/* Safe inside an HTML <script> block. */
	ck_assert_int_eq(buf_json_string(&b, "</script><b>&amp;"), 0);
	ck_assert_str_eq(b.p, "\"\\u003c/script\\u003e\\u003cb\\u003e\\u0026amp;\"");
	ck_assert_ptr_null(strchr(b.p, '<'));
	ck_assert_ptr_null(strchr(b.p, '>'));
	ck_assert_ptr_null(strchr(b.p, '&'));
	buf_fini(&b);

	/* UTF-8 passes through byte for byte. */
	ck_assert_int_eq(buf_json_string(&b, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), 0);
	ck_assert_str_eq(b.p, "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	buf_fini(&b);

	/* Appends after existing content. */
	ck_assert_int_eq(buf_puts(&b, "{\"k\":"), 0);
	ck_assert_int_eq(buf_json_string(&b, "v\""), 0);
	ck_assert_int_eq(buf_puts(&b, "}"), 0);
	ck_assert_str_eq(b.p, "{\"k\":\"v\\\"\"}");
	check_invariants(&b);
	buf_fini(&b);
}
END_TEST

START_TEST(json_string_parses_back)
{
	static const char *const cases[] = {
	    "",
	    "plain ascii",
	    "\"",
	    "\\",
	    "\"\\\"\\",
	    "line\nbreak\r\n\ttab",
	    "<script>alert('x')</script> & more",
	    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf",
	    "\x7f del",
	    "/ slash",
	};
	char all[128];

	for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++)
		free(json_round_trip(cases[i]));

	/* Every byte from 1 to 127. */
	for (int c = 1; c < 128; c++)
		all[c - 1] = (char)c;
	all[127] = '\0';
	{
		char *text = json_round_trip(all);

		/* No raw control character survives. */
		for (const char *p = text; *p; p++)
			ck_assert_msg((unsigned char)*p >= 0x20 && *p != 0x7f,
			              "raw byte 0x%02x in output", (unsigned char)*p);
		free(text);
	}

	/* A long string (beyond the initial capacity), mostly escapes. */
	{
		char *s = malloc(3001);

		ck_assert_ptr_nonnull(s);
		for (int i = 0; i < 3000; i++)
			s[i] = "<\"\\\n\x01"
			       "a"[i % 6];
		s[3000] = '\0';
		free(json_round_trip(s));
		free(s);
	}
}
END_TEST

Suite *buf_suite(void)
{
	Suite *s = suite_create("buf");
	TCase *tc = tcase_create("buf");

	tcase_add_test(tc, append_and_puts);
	tcase_add_test(tc, reserve);
	tcase_add_test(tc, growth);
	tcase_add_test(tc, printf_short);
	tcase_add_test(tc, printf_long);
	tcase_add_test(tc, printf_every_length);
	tcase_add_test(tc, json_string_escapes);
	tcase_add_test(tc, json_string_parses_back);
	suite_add_tcase(s, tc);
	return s;
}
