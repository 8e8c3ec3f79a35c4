/* base/buf.c - growable buffer. */
#include "base/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int buf_reserve(struct buf *b, size_t n)
{
	size_t need = b->len + n + 1, cap = b->cap ? b->cap : 256;
	char *p;

	if (need <= b->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

int buf_append(struct buf *b, const void *data, size_t n)
{
	if (buf_reserve(b, n))
		return -ENOMEM;
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (buf_reserve(b, 128))
		return -ENOMEM;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= b->cap - b->len) {
		if (buf_reserve(b, (size_t)n))
			return -ENOMEM;
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
	return 0;
}

int buf_json_string(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	if (buf_reserve(b, strlen(s) + 2))
		return -ENOMEM;
	b->p[b->len++] = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[7];
		size_t n = 0;

		switch (*p) {
		case '"':
			memcpy(esc, "\\\"", n = 2);
			break;
		case '\\':
			memcpy(esc, "\\\\", n = 2);
			break;
		case '\n':
			memcpy(esc, "\\n", n = 2);
			break;
		case '\r':
			memcpy(esc, "\\r", n = 2);
			break;
		case '\t':
			memcpy(esc, "\\t", n = 2);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[*p >> 4];
				esc[5] = hex[*p & 15];
				n = 6;
			} else if (*p == '<' || *p == '>' || *p == '&') {
				/* Safe to embed in HTML script blocks. */
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[*p >> 4];
				esc[5] = hex[*p & 15];
				n = 6;
			} else {
				esc[0] = (char)*p;
				n = 1;
			}
		}
		if (buf_append(b, esc, n))
			return -ENOMEM;
	}
	return buf_append(b, "\"", 1);
}

void buf_fini(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}
