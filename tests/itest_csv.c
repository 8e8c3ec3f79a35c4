/* tests/itest_csv.c - a strict RFC 4180 reader and HTTP/1.1 chunked
 * framing undone, for the tests that read the donations export. */
#include "tests/itest_csv.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			ck_abort_msg(__VA_ARGS__);                                                 \
	} while (0)

static void push_cell(struct csv_rec *r, const char *s, size_t len)
{
	r->cell = realloc(r->cell, (size_t)(r->n + 1) * sizeof(*r->cell));
	CHECK(r->cell, "out of memory");
	r->cell[r->n] = strndup(s, len);
	CHECK(r->cell[r->n], "out of memory");
	r->n++;
}

/* Parse s[0..len) strictly: records end in CRLF (the last one too), a
 * field is either plain (no '"', CR or LF) or quoted ('""' for a quote);
 * anything else fails the test. */
void csv_read(const char *s, size_t len, struct csv_file *f)
{
	size_t i = 0;
	char *cell = malloc(len + 1);

	CHECK(cell, "out of memory");
	memset(f, 0, sizeof(*f));
	while (i < len) {
		struct csv_rec r = {0, NULL};

		for (;;) {
			size_t n = 0;

			if (i < len && s[i] == '"') {
				for (i++;; i++) {
					CHECK(i < len, "a quoted field does not end");
					if (s[i] == '"' && i + 1 < len && s[i + 1] == '"')
						cell[n++] = s[i++];
					else if (s[i] == '"')
						break;
					else
						cell[n++] = s[i];
				}
				i++;
			} else {
				while (i < len && s[i] != ',' && s[i] != '\r' && s[i] != '\n') {
					CHECK(s[i] != '"', "a quote in a plain field at %zu", i);
					cell[n++] = s[i++];
				}
			}
			push_cell(&r, cell, n);
			if (i < len && s[i] == ',') {
				i++;
				continue;
			}
			CHECK(i + 1 < len && s[i] == '\r' && s[i + 1] == '\n',
			      "record %zu does not end in CRLF (at byte %zu)", f->n + 1, i);
			i += 2;
			break;
		}
		if (f->n == f->cap) {
			f->cap = f->cap ? f->cap * 2 : 64;
			f->rec = realloc(f->rec, f->cap * sizeof(*f->rec));
			CHECK(f->rec, "out of memory");
		}
		f->rec[f->n++] = r;
	}
	free(cell);
}

void csv_free(struct csv_file *f)
{
	for (size_t i = 0; i < f->n; i++) {
		for (int k = 0; k < f->rec[i].n; k++)
			free(f->rec[i].cell[k]);
		free(f->rec[i].cell);
	}
	free(f->rec);
}

/* Undo chunked framing into a malloc'd *out; fails the test unless the
 * body is well formed and ends with the last (zero) chunk. */
char *dechunk(const char *b, size_t len, size_t *out_len)
{
	char *out = malloc(len + 1), *end;
	size_t i = 0, n = 0;

	CHECK(out, "out of memory");
	for (;;) {
		unsigned long sz;

		CHECK(i < len, "the body ends before its last chunk");
		sz = strtoul(b + i, &end, 16);
		CHECK(end != b + i && end + 2 <= b + len && !memcmp(end, "\r\n", 2),
		      "a bad chunk size line at %zu", i);
		i = (size_t)(end - b) + 2;
		if (!sz)
			break;
		CHECK(i + sz + 2 <= len && !memcmp(b + i + sz, "\r\n", 2),
		      "a chunk of %lu bytes at %zu is cut", sz, i);
		memcpy(out + n, b + i, sz);
		n += sz;
		i += sz + 2;
	}
	CHECK(i + 2 == len && !memcmp(b + i, "\r\n", 2), "bytes after the last chunk");
	out[n] = '\0';
	*out_len = n;
	return out;
}
