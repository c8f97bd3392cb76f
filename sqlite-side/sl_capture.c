/* sl_capture.c: the capture triggers of the local -> remote direction:
 * per table, three triggers that log the app's inserts, updates and
 * deletes to _pgsqlite_changes as JSON row images (sl_image.c); written,
 * rewritten after a schema change, and removed. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sl_int.h"

static void put_trigger_name(struct sl_buf *b, const char *table, size_t len, char op)
{
	struct sl_buf raw = {0};

	sl_buf_str(&raw, "_pgsqlite_");
	sl_buf_put(&raw, table, len);
	sl_buf_str(&raw, op == 'I' ? "_ins" : op == 'U' ? "_upd" : "_del");
	if (raw.oom)
		b->oom = true;
	else
		sl_buf_ident(b, raw.p, raw.len);
	sl_buf_free(&raw);
}

/* " AND (NEW.a, ...) IS NOT (OLD.a COLLATE BINARY, ...)": an update that
 * changes nothing is not logged (byte-wise, whatever the columns' collation). */
static void put_changed(struct sl_buf *b, const struct sl_table *t)
{
	size_t i;

	sl_buf_str(b, " AND (");
	for (i = 0; i < t->ncols; i++) {
		sl_buf_str(b, i ? ", NEW." : "NEW.");
		sl_buf_ident(b, t->cols[i].name, t->cols[i].len);
	}
	sl_buf_str(b, ") IS NOT (");
	for (i = 0; i < t->ncols; i++) {
		sl_buf_str(b, i ? ", OLD." : "OLD.");
		sl_buf_ident(b, t->cols[i].name, t->cols[i].len);
		sl_buf_str(b, " COLLATE BINARY");
	}
	sl_buf_str(b, ")");
}

/* new_pk: an update that moves the row to another key also names the new
 * key, so that the row found at that key counts as pending too. */
static void put_new_pk(struct sl_buf *b, const struct sl_table *t, char op, size_t chunk)
{
	if (op != 'U') {
		sl_buf_str(b, "NULL");
		return;
	}
	sl_buf_str(b, "CASE WHEN ");
	sl__put_json(b, t, t->pk, t->npk, "NEW", chunk);
	sl_buf_str(b, " IS NOT ");
	sl__put_json(b, t, t->pk, t->npk, "OLD", chunk);
	sl_buf_str(b, " THEN ");
	sl__put_json(b, t, t->pk, t->npk, "NEW", chunk);
	sl_buf_str(b, " END");
}

/* pk: of NEW for an insert, of OLD (the key the remote side knows) for an
 * update or delete. */
static void put_trigger(struct sl_buf *b, const char *name, size_t len,
                        const struct sl_table *t, char op, size_t chunk)
{
	sl_buf_str(b, "CREATE TRIGGER ");
	put_trigger_name(b, name, len, op);
	sl_buf_str(b, op == 'I' ? " AFTER INSERT ON " : op == 'U' ? " AFTER UPDATE ON "
	                                                          : " AFTER DELETE ON ");
	sl_buf_ident(b, t->name, t->name_len);
	sl_buf_str(b, " FOR EACH ROW WHEN (SELECT value FROM _pgsqlite_state"
	              " WHERE key = 'applying') IS NOT '1'");
	if (op == 'U')
		put_changed(b, t);
	sl_buf_str(b, " BEGIN INSERT INTO _pgsqlite_changes (table_name, op, pk, new_row, old_row,"
	              " new_pk) VALUES (");
	sl_buf_lit(b, name, len);
	sl_buf_str(b, op == 'I' ? ", 'I', " : op == 'U' ? ", 'U', " : ", 'D', ");
	sl__put_json(b, t, t->pk, t->npk, op == 'I' ? "NEW" : "OLD", chunk);
	sl_buf_str(b, ", ");
	if (op == 'D')
		sl_buf_str(b, "NULL");
	else
		sl__put_json(b, t, NULL, t->ncols, "NEW", chunk);
	sl_buf_str(b, ", ");
	if (op == 'I')
		sl_buf_str(b, "NULL");
	else
		sl__put_json(b, t, NULL, t->ncols, "OLD", chunk);
	sl_buf_str(b, ", ");
	put_new_pk(b, t, op, chunk);
	sl_buf_str(b, "); END;");
}

/* ---- installing and removing triggers ---- */

static int run_savepoint(struct sl_db *db, const char *sql, const char *table,
                         struct sl_err *err)
{
	if (sl_exec(db, sql, "cannot write the capture triggers of table", table, err) == 0)
		return 0;
	sqlite3_exec(db->h, "ROLLBACK TO _pgsqlite_capture; RELEASE _pgsqlite_capture", NULL, NULL,
	             NULL);
	return -1;
}

/* Drops the three triggers named after name and, when t is given,
 * creates them anew from t's columns; all or nothing. */
static int triggers_write(struct sl_db *db, const char *name, size_t len,
                          const struct sl_table *t, struct sl_err *err)
{
	static const char ops[] = "IUD";
	struct sl_buf b = {0};
	size_t chunk = sl__json_chunk(db);
	int i, rc;

	sl_buf_str(&b, "SAVEPOINT _pgsqlite_capture;");
	for (i = 0; i < 3; i++) {
		sl_buf_str(&b, "DROP TRIGGER IF EXISTS ");
		put_trigger_name(&b, name, len, ops[i]);
		sl_buf_str(&b, ";");
	}
	for (i = 0; t && i < 3; i++)
		put_trigger(&b, name, len, t, ops[i], chunk);
	sl_buf_str(&b, "RELEASE _pgsqlite_capture");
	if (b.oom)
		rc = sl_fail(err, SQLITE_NOMEM,
		             "cannot write the capture triggers of table \"%s\": out of memory", name);
	else
		rc = run_savepoint(db, b.p, name, err);
	sl_buf_free(&b);
	return rc;
}

/* The freshly read info of a table that can be captured. */
static int capture_target(struct sl_db *db, const char *name, struct sl_table **t,
                          struct sl_err *err)
{
	size_t len = name ? strlen(name) : 0;
	int r;

	if (!len)
		return sl_fail(err, 0, "cannot capture changes: no table name");
	if (len >= 10 && strncasecmp(name, "_pgsqlite_", 10) == 0)
		return sl_fail(err, 0, "cannot capture changes of table \"%s\": a bridge table", name);
	r = sl_table_get(db, name, len, t, err);
	if (r == 0)
		return sl_fail(err, 0, "cannot capture changes of table \"%s\": no such table", name);
	if (r < 0 || sl_table_refresh(db, *t, err))
		return -1;
	if (!(*t)->npk)
		return sl_fail(err, 0, "cannot capture changes of table \"%s\": it has no primary key",
		               name);
	return 0;
}

int sl_capture_install(struct sl_db *db, const char *local_table, struct sl_err *err)
{
	struct sl_table *t;

	if (capture_target(db, local_table, &t, err))
		return -1;
	return triggers_write(db, local_table, strlen(local_table), t, err);
}

int sl_capture_rewrite_all(struct sl_db *db, struct sl_err *err)
{
	sqlite3_stmt *st = NULL;
	char **names = NULL;
	size_t n = 0;
	int rc = 0;

	if (sqlite3_prepare_v2(db->h, "SELECT DISTINCT tbl_name FROM sqlite_master WHERE"
	                       " type = 'trigger' AND name LIKE '\\_pgsqlite\\_%\\_upd' ESCAPE '\\'",
	                       -1, &st, NULL) != SQLITE_OK)
		return sl_fail_db(db, err, "cannot list the capture triggers", NULL);
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		char **more = realloc(names, (n + 1) * sizeof *names);
		if (!more || !(more[n] = strdup((const char *)sqlite3_column_text(st, 0))))
			rc = sl_fail(err, SQLITE_NOMEM, "cannot list the capture triggers: out of memory");
		names = more ? more : names;
		n += rc == 0;
	}
	sqlite3_finalize(st);
	for (size_t i = 0; i < n; i++) {
		if (rc == 0)
			rc = sl_capture_install(db, names[i], err);
		free(names[i]);
	}
	free(names);
	return rc;
}

int sl_capture_remove(struct sl_db *db, const char *local_table, struct sl_err *err)
{
	if (!local_table || !*local_table)
		return sl_fail(err, 0, "cannot remove capture triggers: no table name");
	return triggers_write(db, local_table, strlen(local_table), NULL, err);
}

/* 1 when t has its insert trigger, 0 when not, -1 on error. */
static int triggers_present(struct sl_db *db, const struct sl_table *t, struct sl_err *err)
{
	static const char sql[] = "SELECT 1 FROM sqlite_master WHERE type = 'trigger'"
	                          " AND name = ?1 COLLATE NOCASE";
	struct sl_buf name = {0};
	sqlite3_stmt *st;
	int rc;

	sl_buf_str(&name, "_pgsqlite_");
	sl_buf_put(&name, t->name, t->name_len);
	sl_buf_str(&name, "_ins");
	if (name.oom)
		return sl_fail(err, SQLITE_NOMEM, "cannot look for the triggers of table \"%s\": out of memory",
		               t->name);
	rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name.p, (int)name.len, SQLITE_STATIC);
		rc = sqlite3_step(st);
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		sl_fail_db(db, err, "cannot look for the triggers of table", t->name);
	sqlite3_finalize(st);
	sl_buf_free(&name);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* After columns were added to t: rebuilds its triggers if it has them. */
int sl_capture_refresh(struct sl_db *db, struct sl_table *t, struct sl_err *err)
{
	int r = triggers_present(db, t, err);

	if (r <= 0)
		return r;
	return triggers_write(db, t->name, t->name_len, t, err);
}
