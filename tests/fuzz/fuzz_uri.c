/* tests/fuzz/fuzz_uri.c - libFuzzer harness for the request target: the
 * path matched against the route table, the query string, and the numbers
 * read from them (ws/uri.c).
 *
 * Input: the request target as a client sends it ("/api/v1/campaigns?limit=5&cursor=10"). The
 * harness decodes it the way lws 4.1 does before tally sees it (%XX decoded, '+' to a space, '?'
 * starts the arguments, a literal '&' or ';' splits them, an encoded '=' in a name becomes '_'),
 * then checks what must hold:
 * - a matching route gives the path back when its '*'s are replaced by the
 *   captured segments, each non-empty and without '/'; no two routes of
 *   one method match one path (the second would never be reached);
 * - a query of at most 512 bytes is kept (longer is a 414), and every
 *   parameter reads as the first argument of that name, byte for byte,
 *   whatever the others hold (an encoded '&' stays inside its value);
 * - limit, cursor and job ids are accepted exactly when the whole value
 *   spells a number in range, and then read as that number;
 * - slugs are accepted exactly when they are 1-64 of [a-z0-9-] without a
 *   leading '-'.
 *   make fuzz FUZZ=uri
 */
#include "ws/internal.h"
#include "ws/uri.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FRAGS 1200

struct target {
	char path[2048];
	size_t path_len;
	char args[2048]; /* the decoded arguments, one after another */
	size_t frag_off[MAX_FRAGS], frag_len[MAX_FRAGS];
	int n_frags;
};

static int hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode like lws; 0, or -1 when lws would refuse the request. */
static int decode(const uint8_t *s, size_t n, struct target *t)
{
	int in_args = 0, seen_equal = 0;
	size_t alen = 0;

	t->path_len = 0;
	t->n_frags = 0;
	for (size_t i = 0; i < n; i++) {
		int c = s[i], enc = 0;

		if (c == '%') {
			if (i + 2 >= n || hex(s[i + 1]) < 0 || hex(s[i + 2]) < 0)
				return -1;
			c = hex(s[i + 1]) << 4 | hex(s[i + 2]);
			i += 2;
			enc = 1;
		}
		if (!c)
			return -1;
		if (!enc && c == '+')
			c = ' ';
		if (!in_args) {
			if (!enc && c == '?') {
				in_args = 1;
				t->frag_off[0] = t->frag_len[0] = 0;
				t->n_frags = 1;
				continue;
			}
			t->path[t->path_len++] = (char)c;
			continue;
		}
		if (!enc && (c == '&' || c == ';')) {
			if (t->n_frags == MAX_FRAGS)
				return -1;
			t->frag_off[t->n_frags] = alen;
			t->frag_len[t->n_frags++] = 0;
			seen_equal = 0;
			continue;
		}
		if (c == '=' && enc && !seen_equal)
			c = '_';
		if (c == '=' && !enc)
			seen_equal = 1;
		t->args[alen++] = (char)c;
		t->frag_len[t->n_frags - 1]++;
	}
	return 0;
}

static int frag(void *ud, int i, char *dst, size_t cap)
{
	const struct target *t = ud;

	if (i < 0 || i >= t->n_frags || t->frag_len[i] >= cap)
		return -1;
	memcpy(dst, t->args + t->frag_off[i], t->frag_len[i]);
	dst[t->frag_len[i]] = '\0';
	return (int)t->frag_len[i];
}

/* What lws_hdr_total_length says of the arguments. */
static size_t args_total(const struct target *t)
{
	size_t n = 0;

	for (int i = 0; i < t->n_frags; i++)
		n += t->frag_len[i] + (i > 0);
	return n;
}

/* The first argument named name: its value and length, or NULL. */
static const char *arg(const struct target *t, const char *name, size_t *len)
{
	size_t nlen = strlen(name);

	for (int i = 0; i < t->n_frags; i++) {
		const char *f = t->args + t->frag_off[i];

		if (t->frag_len[i] > nlen && !memcmp(f, name, nlen) && f[nlen] == '=') {
			*len = t->frag_len[i] - nlen - 1;
			return f + nlen + 1;
		}
	}
	return NULL;
}

/* The number v[0..len) spells as strtoll reads it, when the whole of it
 * is read and in range: 0 and *out, else -1. */
static int number(const char *v, size_t len, long long *out)
{
	char s[HTTP_QUERY_MAX + 1], *end;

	if (!len || len >= sizeof(s))
		return -1;
	memcpy(s, v, len);
	s[len] = '\0';
	errno = 0;
	*out = strtoll(s, &end, 10);
	return *end || errno ? -1 : 0;
}

static void check_query(const struct target *t, const char *query)
{
	static const char *const names[] = {"limit", "cursor", "by", "queue", "state", "x"};

	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		char small[32], big[HTTP_QUERY_MAX + 1];
		size_t len = 0;
		const char *want = arg(t, names[k], &len);
		int n = uri_query_get(query, names[k], small, sizeof(small));
		int m = uri_query_get(query, names[k], big, sizeof(big));

		if (!want) {
			if (n != -1 || m != -1)
				abort();
			continue;
		}
		/* The whole length, and as much of the value as fits. */
		if (n != (int)len || m != (int)len || memcmp(big, want, len) || big[len] ||
		    memcmp(small, want, len < sizeof(small) ? len : sizeof(small) - 1) ||
		    strlen(small) != (len < sizeof(small) ? len : sizeof(small) - 1))
			abort();
	}
}

/* ?limit and ?cursor: read exactly when the whole value is a number in
 * range written in at most 31 bytes; refused when it is anything else (a
 * longer value is never cut to a number); untouched when absent. */
static void check_numbers(const struct target *t, const char *query)
{
	static const int maxes[] = {1, 100, 500, 1000};
	size_t len = 0;
	const char *want = arg(t, "limit", &len);
	long long num = 0, cur = -7;
	int ok = want && len < 32 && !number(want, len, &num);

	for (int j = 0; j < 4; j++) {
		int lim = -7, rc = uri_limit(query, maxes[j], &lim);

		if (!want                               ? rc || lim != -7
		    : ok && num >= 1 && num <= maxes[j] ? rc || lim != num
		                                        : rc != -1 || lim != -7)
			abort();
	}
	want = arg(t, "cursor", &len);
	ok = want && len < 32 && !number(want, len, &num);
	{
		int rc = uri_cursor(query, &cur);

		if (!want            ? rc || cur != -7
		    : ok && num >= 0 ? rc || cur != num
		                     : rc != -1 || cur != -7)
			abort();
	}
}

static int slug_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 64 || s[0] == '-')
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

static void check_param(const char *seg)
{
	int64_t id = -7;
	long long num;
	int ok = !uri_id(seg, &id);
	int should = seg[0] >= '1' && seg[0] <= '9' && strspn(seg, "0123456789") == strlen(seg) &&
	             !number(seg, strlen(seg), &num);

	if (ok != should || (ok && id != num) || (!ok && id != -7))
		abort();
	if (validate_slug(seg, strlen(seg)) != slug_ok(seg))
		abort();
}

/* Rebuild path from pattern and the captured segments. */
static void check_match(const char *pattern, const char *path, char param[2][HTTP_PATH_MAX + 1])
{
	char again[2 * HTTP_PATH_MAX + 64];
	size_t n = 0;
	int k = 0;

	for (const char *p = pattern; *p; p++) {
		if (*p == '*') {
			size_t len = strlen(param[k]);

			if (k == 2 || !len || strchr(param[k], '/'))
				abort();
			check_param(param[k]);
			memcpy(again + n, param[k++], len);
			n += len;
		} else {
			again[n++] = *p;
		}
	}
	again[n] = '\0';
	if (strcmp(again, path))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct target t;
	char query[sizeof(((struct http_pss *)0)->query)];
	int routes_of[M_OTHER + 1] = {0};

	if (size > 1500 || decode(data, size, &t))
		return 0;
	t.path[t.path_len] = '\0';

	/* The path: at most 512 bytes (else 414), then the route table. */
	if (t.path_len <= HTTP_PATH_MAX) {
		for (size_t i = 0; i < api_n_routes; i++) {
			char param[2][HTTP_PATH_MAX + 1];

			memset(param, 0, sizeof(param));
			if (!uri_match(api_routes[i].pattern, t.path, param))
				continue;
			check_match(api_routes[i].pattern, t.path, param);
			if (routes_of[api_routes[i].method]++)
				abort(); /* two routes of one method for one path */
		}
	}

	/* The query: kept whole up to 512 bytes (else 414). */
	if (args_total(&t) <= HTTP_QUERY_MAX) {
		if (uri_query_build(query, sizeof(query), frag, &t))
			abort();
		check_query(&t, query);
		check_numbers(&t, query);
	}
	return 0;
}
