/* backfill.h: the existing rows' values of columns the pull has just added
 * to a local table, read from Postgres (a column added in Postgres reaches
 * SQLite with the first record that carries it, and the rows SQLite held
 * would otherwise keep NULL in it, whatever Postgres holds). */
#ifndef PGSB_BACKFILL_H
#define PGSB_BACKFILL_H

#include <stddef.h>

#include "br.h"

/* Called by the pull right after sl_apply, inside its open SQLite
 * transaction: when the apply added columns to existing tables
 * (sl_added_count), reads (key, new columns) of every row of those tables
 * from Postgres, streamed row by row on a plain connection of its own, and
 * writes the values into the local rows that exist (none is created: the
 * stream brings missing rows).  Does nothing, with no query, when no
 * column was added.  Returns 0, or -1 with err (the pull's transaction is
 * then rolled back with the column, and the record comes again). */
int backfill_added_columns(struct pgsb *b, char *err, size_t cap);

#endif
