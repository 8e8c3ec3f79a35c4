/* tests/itest_csv.h - reading the donations export in tests: a strict
 * RFC 4180 reader, and chunked framing undone. Failures fail the test. */
#ifndef TALLY_TESTS_ITEST_CSV_H
#define TALLY_TESTS_ITEST_CSV_H

#include <stddef.h>

struct csv_rec {
	int n;
	char **cell;
};

struct csv_file {
	size_t n, cap;
	struct csv_rec *rec;
};

/* Parse s[0..len) strictly into f: records end in CRLF (the last one
 * too), a field is either plain (no '"', CR or LF) or quoted ('""' for a
 * quote). Free f with csv_free. */
void csv_read(const char *s, size_t len, struct csv_file *f);
void csv_free(struct csv_file *f);

/* Undo chunked framing into a malloc'd result (its length in *out_len):
 * the body must be well formed and end with the last (zero) chunk. */
char *dechunk(const char *b, size_t len, size_t *out_len);

#endif
