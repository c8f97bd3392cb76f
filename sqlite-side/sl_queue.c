/* sl_queue.c: the change log as a queue the push takes from out of seq
 * order: which tables have pending changes, the changes of a set of
 * tables in seq order, and trimming exactly such a set. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sl_int.h"

/* A set of tables is a JSON array of local table names; NULL = every table.
 * The scan goes by seq (the primary key), never by the table-name index:
 * a batch stops after max rows however long the other tables' queues are. */
#define IN_SET "(?3 IS NULL OR table_name IN (SELECT value FROM json_each(?3)))"

static sqlite3_stmt *prepare(struct sl_db *db, const char *sql, const char *what,
                             struct sl_err *err)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) {
		sl_fail_db(db, err, what, NULL);
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

static void bind_set(sqlite3_stmt *st, const char *tables_json)
{
	if (tables_json)
		sqlite3_bind_text(st, 3, tables_json, -1, SQLITE_STATIC);
}

int sl_changes_read_in(struct sl_db *db, int64_t after, int64_t upto, const char *tables_json,
                       size_t max, struct sl_change **out, size_t *n, struct sl_err *err)
{
	sqlite3_stmt *st;
	int rc;

	*out = NULL;
	*n = 0;
	if (!max)
		return 0;
	st = prepare(db, "SELECT seq, table_name, op, pk, new_row, old_row, changed_at"
	             " FROM _pgsqlite_changes WHERE seq > ?1 AND seq <= ?2 AND " IN_SET
	             " ORDER BY seq LIMIT ?4", "cannot read the change log", err);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int64(st, 2, upto);
	bind_set(st, tables_json);
	sqlite3_bind_int64(st, 4, max > (size_t)INT64_MAX ? INT64_MAX : (int64_t)max);
	rc = sl__changes_step(db, st, max, out, n, err);
	sqlite3_finalize(st);
	return rc;
}

int sl_changes_delete_in(struct sl_db *db, int64_t after, int64_t upto, const char *tables_json,
                         struct sl_err *err)
{
	sqlite3_stmt *st = prepare(db, "DELETE FROM _pgsqlite_changes WHERE seq > ?1 AND seq <= ?2 AND "
	                           IN_SET, "cannot trim the change log", err);
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int64(st, 2, upto);
	bind_set(st, tables_json);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		sl_fail_db(db, err, "cannot trim the change log", NULL);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int64_t sl_changes_count_in(struct sl_db *db, int64_t after, int64_t upto, const char *tables_json,
                            struct sl_err *err)
{
	sqlite3_stmt *st = prepare(db, "SELECT count(*) FROM _pgsqlite_changes WHERE seq > ?1 AND seq <= ?2"
	                           " AND " IN_SET, "cannot count the change log", err);
	int64_t n = -1;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int64(st, 2, upto);
	bind_set(st, tables_json);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	else
		sl_fail_db(db, err, "cannot count the change log", NULL);
	sqlite3_finalize(st);
	return n;
}

int sl_changes_next_table(struct sl_db *db, const char *after, char *buf, size_t cap,
                          struct sl_err *err)
{
	/* One seek in the (table_name, pk) index per distinct name. */
	sqlite3_stmt *st = prepare(db, "SELECT table_name FROM _pgsqlite_changes WHERE table_name > ?1"
	                           " ORDER BY table_name LIMIT 1", "cannot read the change log", err);
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, after ? after : "", -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		size_t len = (size_t)sqlite3_column_bytes(st, 0);
		if (!v || len >= cap) {
			sqlite3_finalize(st);
			return sl_fail(err, 0, "cannot read the change log: a table name of %zu bytes", len);
		}
		memcpy(buf, v, len + 1);
	} else if (rc != SQLITE_DONE) {
		sl_fail_db(db, err, "cannot read the change log", NULL);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int sl_changes_exist_before(struct sl_db *db, int64_t before, const char *tables_json,
                            struct sl_err *err)
{
	sqlite3_stmt *st = prepare(db, "SELECT 1 FROM _pgsqlite_changes WHERE seq > ?1 AND seq < ?2 AND "
	                           IN_SET " LIMIT 1", "cannot read the change log", err);
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, INT64_MIN);
	sqlite3_bind_int64(st, 2, before);
	bind_set(st, tables_json);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		sl_fail_db(db, err, "cannot read the change log", NULL);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int64_t sl_changes_min_seq(struct sl_db *db, struct sl_err *err)
{
	sqlite3_stmt *st = prepare(db, "SELECT min(seq) FROM _pgsqlite_changes",
	                           "cannot read the change log", err);
	int64_t v = -1;

	if (!st)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_type(st, 0) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 0);
	else
		sl_fail_db(db, err, "cannot read the change log", NULL);
	sqlite3_finalize(st);
	return v;
}
