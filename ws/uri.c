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
	for (int i = 0; i < 32; i++) {
		char f[HTTP_QUERY_MAX + 1];
		int len = frag(ud, i, f, sizeof(f));

		if (len <= 0)
			break;
		if (used + (size_t)len + 2 > cap)
			return -1;
		if (used)
			query[used++] = '&';
		memcpy(query + used, f, (size_t)len);
		used += (size_t)len;
		query[used] = '\0';
	}
	return 0;
}

int uri_query_get(const char *query, const char *name, char *dst, size_t cap)
{
	size_t nlen = strlen(name);
	const char *q = query;

	while (*q) {
		const char *amp = strchr(q, '&'), *end = amp ? amp : q + strlen(q);

		if ((size_t)(end - q) > nlen && !strncmp(q, name, nlen) && q[nlen] == '=') {
			size_t vlen = (size_t)(end - q) - nlen - 1;

			if (vlen >= cap)
				vlen = cap - 1;
			memcpy(dst, q + nlen + 1, vlen);
			dst[vlen] = '\0';
			return (int)vlen;
		}
		q = amp ? amp + 1 : end;
	}
	return -1;
}

int uri_limit(const char *v, int max, int *out)
{
	char *end;
	long n = strtol(v, &end, 10);

	if (*end || !v[0] || n < 1 || n > max)
		return -1;
	*out = (int)n;
	return 0;
}

int uri_cursor(const char *v, long long *out)
{
	char *end;
	long long n = strtoll(v, &end, 10);

	if (*end || !v[0] || n < 0)
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
