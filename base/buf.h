/* base/buf.h - a growable byte buffer. */
#ifndef TALLY_BASE_BUF_H
#define TALLY_BASE_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *p;    /* owned; NULL until the first reserve */
	size_t len; /* bytes in use */
	size_t cap; /* bytes allocated */
};

/* Make room for n more bytes. Returns 0 or -ENOMEM. */
int buf_reserve(struct buf *b, size_t n);

/* Append bytes / a NUL-terminated string / formatted text (the NUL is kept
 * after len but not counted). Return 0 or -ENOMEM. */
int buf_append(struct buf *b, const void *data, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Append s as a JSON string literal with quotes and escapes. */
int buf_json_string(struct buf *b, const char *s);

/* Free the memory and zero the struct. */
void buf_fini(struct buf *b);

#endif
