/* core/export.c - the donations export for staff: the engine's side of
 * GET /api/v1/admin/donations.csv, over db/export.c's iterator on a
 * connection of the caller's thread (see engine.h). */
#include "core/internal.h"
#include "db/export.h"

#include <errno.h>
#include <stdlib.h>

struct engine_export {
	struct db_export *db;
};

/* Storage errors are TALLY_EIO; memory stays -ENOMEM. */
static int export_err(int rc)
{
	return rc == -ENOMEM ? rc : TALLY_EIO;
}

int engine_export_open(struct engine *e, const struct export_filter *f, struct engine_export **out)
{
	struct engine_export *x = calloc(1, sizeof(*x));
	int rc;

	*out = NULL;
	if (!x)
		return -ENOMEM;
	rc = db_export_open(e->cfg.db_path, f, &x->db);
	if (rc) {
		free(x);
		return export_err(rc);
	}
	*out = x;
	return 0;
}

int engine_export_next(struct engine_export *x, struct export_row *row, int *got)
{
	int rc = db_export_next(x->db, row, got);

	return rc ? export_err(rc) : 0;
}

int engine_export_finished(const struct engine_export *x)
{
	return db_export_finished(x->db);
}

void engine_export_close(struct engine_export *x)
{
	if (!x)
		return;
	db_export_close(x->db);
	free(x);
}
