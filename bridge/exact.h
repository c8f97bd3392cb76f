/* exact.h: values wal2json cannot write: a numeric NaN and a float
 * NaN / +-Infinity arrive as null, like SQL NULL.  exact_fill_nulls reads
 * such a row back by key from Postgres and puts the real value in. */
#ifndef PGSB_EXACT_H
#define PGSB_EXACT_H

#include <stddef.h>

#include "br.h"

/* For an insert or update whose record has a null in a float4, float8 or
 * numeric column: reads those columns of the row by its key from Postgres
 * (on *conn, a plain connection opened here on first use and kept by the
 * caller) and turns each null that Postgres holds as NaN, Infinity or
 * -Infinity into that text (a DEC_NUMBER pointing to static storage), so
 * sl_apply stores it exactly: TEXT 'NaN' (a SQLite REAL cannot hold it),
 * REAL +-inf for a float, the text for a numeric.  Real NULLs, deletes,
 * truncates and records without such a null are left alone, with no query.
 * If the row is gone or changed since, its later change fixes it.  Returns
 * 0, or -1 with err when Postgres cannot be read (the connection is then
 * closed and *conn set to NULL; retrying later is safe). */
int exact_fill_nulls(struct pgsb *b, PGconn **conn, const struct dec_record *rec, char *err,
                     size_t cap);

/* Closes the connection exact_fill_nulls opened (NULL is fine). */
void exact_close(PGconn **conn);

#endif
