/* ws/uri.c - route patterns, the query string, numbers in them (see uri.h). */
#include "ws/uri.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int uri_match(const char *pattern, const char *path, char param[2][HTTP_PATH_MAX + 1])
{
	int n = 0;

	while (*pattern && *path) {
		if (*pattern == '*') {
			size_t len = strcspn(path, "/");

			if (!len || n == 2)
				return 0;
			memcpy(param[n], path, len);
			param[n++][len] = '\0';
			path += len;
			pattern++;
			continue;
		}
		if (*pattern++ != *path++)
			return 0;
	}
	return !*pattern && !*path;
}

int uri_query_build(char *query, size_t cap, uri_frag_fn frag, void *ud)
{
	size_t used = 0;

	query[0] = '\0';
	/* 512 bytes hold at most 513 fragments. */
	for (int i = 0; i <= HTTP_QUERY_MAX; i++) {
		char f[HTTP_QUERY_MAX + 1];
		int len = frag(ud, i, f, sizeof(f));

		if (len < 0)
			break;
		if (!len)
			continue;
		if (used + (size_t)len + 2 > cap)
			return -1;
		memcpy(query + used, f, (size_t)len + 1);
		used += (size_t)len + 1;
		query[used] = '\0';
	}
	return 0;
}

int uri_query_get(const char *query, const char *name, char *dst, size_t cap)
{
	size_t nlen = strlen(name);

	for (const char *q = query; *q; q += strlen(q) + 1) {
		size_t len = strlen(q), vlen, n;

		if (len <= nlen || strncmp(q, name, nlen) || q[nlen] != '=')
			continue;
		vlen = len - nlen - 1;
		n = vlen < cap ? vlen : cap - 1;
		memcpy(dst, q + nlen + 1, n);
		dst[n] = '\0';
		return (int)vlen;
	}
	return -1;
}

/* The whole value of ?name= read as a long long: 1 when absent, 0 with
 * *out, -1 when it is not a number that fits. */
static int query_number(const char *query, const char *name, long long *out)
{
	char v[32], *end;
	int n = uri_query_get(query, name, v, sizeof(v));

	if (n < 0)
		return 1;
	if (!v[0] || n >= (int)sizeof(v))
		return -1;
	errno = 0;
	*out = strtoll(v, &end, 10);
	return *end || errno ? -1 : 0;
}

int uri_limit(const char *query, int max, int *out)
{
	long long n;
	int rc = query_number(query, "limit", &n);

	if (rc > 0)
		return 0;
	if (rc || n < 1 || n > max)
		return -1;
	*out = (int)n;
	return 0;
}

int uri_cursor(const char *query, long long *out)
{
	long long n;
	int rc = query_number(query, "cursor", &n);

	if (rc > 0)
		return 0;
	if (rc || n < 0)
		return -1;
	*out = n;
	return 0;
}

int uri_id(const char *s, int64_t *out)
{
	char *end;
	long long n;

	if (*s < '1' || *s > '9')
		return -1;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (*end || errno)
		return -1;
	*out = n;
	return 0;
}
