/* sl_settle.c: what the merge point writes into SQLite when Postgres's
 * version stands: a key set to the row Postgres holds there (or cleared
 * when it holds none), and a remote TRUNCATE that keeps the rows our own
 * push wrote after it. */
#include <stdio.h>
#include <string.h>

#include "sl_int.h"

int sl_truncate_except_pushed(struct sl_db *db, const char *table, uint64_t lsn, struct sl_err *err)
{
	struct sl_table *t = NULL;
	struct sl_buf b = {0};
	sqlite3_stmt *st = NULL;
	int r = sl_table_get(db, table, strlen(table), &t, err), rc;

	if (r <= 0)
		return r < 0 ? -1 : sl_fail(err, 0, "cannot truncate table \"%s\": no such table", table);
	if (!t->npk)
		return sl_fail(err, 0, "cannot truncate table \"%s\": it has no primary key", table);
	sl_buf_str(&b, "DELETE FROM ");
	sl_buf_ident(&b, t->name, t->name_len);
	sl_buf_str(&b, " WHERE ");
	sl_capture_put_key(db, &b, t, "");
	sl_buf_str(&b, " NOT IN (SELECT pk FROM _pgsqlite_pushed WHERE table_name = ?1 AND lsn >= ?2)");
	if (b.oom) {
		sl_buf_free(&b);
		return sl_fail(err, SQLITE_NOMEM, "cannot truncate table \"%s\": out of memory", table);
	}
	rc = sqlite3_prepare_v2(db->h, b.p, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)lsn);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	sl_buf_free(&b);
	return rc == SQLITE_DONE ? 0 : sl_fail_db(db, err, "cannot truncate table", table);
}

int sl_settle_key(struct sl_db *db, const char *schema, const char *table, const struct dec_field *key,
                  size_t nkey, const struct dec_field *row, size_t ncols, struct sl_err *err)
{
	struct dec_record rec = {.schema = {schema, strlen(schema)}, .table = {table, strlen(table)}};

	if (ncols) {
		rec.action = DEC_INSERT; /* an upsert by the table's key */
		rec.columns = (struct dec_field *)row;
		rec.ncolumns = ncols;
	} else {
		rec.action = DEC_DELETE;
		rec.identity = (struct dec_field *)key;
		rec.nidentity = nkey;
	}
	return sl_apply(db, &rec, err);
}
