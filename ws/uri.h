/* ws/uri.h - the request target, parsed: route patterns, the query string
 * and the numbers read from them. Plain functions on strings, without lws
 * (ws/http.c hands them what lws decoded), so tests and the fuzz harness
 * (tests/fuzz/fuzz_uri.c) call them directly. Any thread.
 */
#ifndef TALLY_WS_URI_H
#define TALLY_WS_URI_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_PATH_MAX 512
#define HTTP_QUERY_MAX 512
/* A built query: every argument followed by a NUL, then an empty one. */
#define URI_QUERY_SIZE (HTTP_QUERY_MAX + 2)

/* 1 when path matches pattern, else 0. A '*' in pattern matches one
 * non-empty path segment (no '/'), at most two of them, copied into
 * param[0] and param[1] in order; everything else matches itself. */
int uri_match(const char *pattern, const char *path, char param[2][HTTP_PATH_MAX + 1]);

/* Fragment i of the URL arguments (lws splits them at '&' and ';' and
 * decodes them) copied into dst (cap bytes, NUL-terminated): returns its
 * length, 0 for an empty fragment, or -1 when there is no fragment i. */
typedef int (*uri_frag_fn)(void *ud, int i, char *dst, size_t cap);

/* Build the query (cap bytes, URI_QUERY_SIZE for any query lws accepts
 * within HTTP_QUERY_MAX) from the fragments frag gives; empty ones ("a&&b")
 * are left out. Each argument is kept whole: an encoded '&' in a value
 * stays in it. Returns 0, or -1 when they do not fit (answer 414). */
int uri_query_build(char *query, size_t cap, uri_frag_fn frag, void *ud);

/* The value of the first parameter name in a query made by
 * uri_query_build, copied into dst (cap > 0 bytes, NUL-terminated; cut to
 * fit). Returns the value's whole length (cap or more: it was cut), or -1
 * when the query has no such parameter. */
int uri_query_get(const char *query, const char *name, char *dst, size_t cap);

/* Numbers are read by strtoll from values of at most 31 bytes. */

/* ?limit=N in query: 0 with *out = N when it is a number from 1 to max, 0
 * with *out untouched when there is no limit, -1 when it is anything else
 * (answer 400). */
int uri_limit(const char *query, int max, int *out);

/* ?cursor=N in query (a "next" value given out): 0 with *out = N when it
 * is a number >= 0, 0 with *out untouched when there is no cursor, -1 when
 * it is anything else (answer 400). */
int uri_cursor(const char *query, long long *out);

/* A numeric id in a path (a job's): 0 with *out when s is a positive
 * decimal number without a leading zero that fits, else -1. */
int uri_id(const char *s, int64_t *out);

#endif
