/* db/export.h - the donations export's reads: an iterator over the gifts
 * a filter takes, in id order, in bounded pages (see export.c).
 */
#ifndef TALLY_DB_EXPORT_H
#define TALLY_DB_EXPORT_H

#include "base/model.h"

#include <stdint.h>

/* Rows at most per page, and ids at most one page looks at: a page's read
 * is bounded whatever the filter takes. */
#define DB_EXPORT_PAGE 256
#define DB_EXPORT_SPAN 4096

struct db_export;

/* Open an export of the gifts f takes on its own read-only connection to
 * the database at path. The export ends at the largest id there is now:
 * gifts made after it opened are not in it. The connection belongs to the
 * calling thread. Returns 0 with *out, or a negative errno (-ENOMEM, -EIO,
 * -EBUSY). Close it with db_export_close. */
int db_export_open(const char *path, const struct export_filter *f, struct db_export **out);

/* The next gift into *row with *got = 1 (its strings valid until the next
 * call), or *got = 0 at the end of a page: the page's read transaction is
 * over (no
 * snapshot is held between pages, so a slow reader never holds back a
 * checkpoint); call again for the next page unless db_export_finished.
 * Returns 0 or a negative errno (the export cannot go on). */
int db_export_next(struct db_export *x, struct export_row *row, int *got);

/* 1 once every page was read, else 0. */
int db_export_finished(const struct db_export *x);

/* Free everything of x (NULL is fine), at any point of the walk. */
void db_export_close(struct db_export *x);

#endif
