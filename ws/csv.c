/* ws/csv.c - CSV cells (see csv.h). */
#include "ws/csv.h"

#include <errno.h>
#include <string.h>

int csv_formula_start(const char *s)
{
	return s[0] && strchr("=+-@\t\r", s[0]) != NULL;
}

int csv_text(struct buf *out, const char *s)
{
	int quote = s[strcspn(s, "\",\r\n")] != '\0';
	int rc = 0;

	if (quote)
		rc |= buf_append(out, "\"", 1);
	if (csv_formula_start(s))
		rc |= buf_append(out, "'", 1);
	if (!quote)
		return rc | buf_puts(out, s) ? -ENOMEM : 0;
	for (const char *q; (q = strchr(s, '"')); s = q + 1)
		rc |= buf_append(out, s, (size_t)(q - s + 1)) | buf_append(out, "\"", 1);
	rc |= buf_puts(out, s);
	rc |= buf_append(out, "\"", 1);
	return rc ? -ENOMEM : 0;
}

int csv_int(struct buf *out, int64_t v)
{
	return buf_printf(out, "%lld", (long long)v) ? -ENOMEM : 0;
}
