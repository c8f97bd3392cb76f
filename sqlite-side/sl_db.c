/* sl_db.c: opening and closing the SQLite file (pragmas, the bridge's own
 * tables), transactions with the "applying" flag, _pgsqlite_state access,
 * the bridge's counters and dropping the bridge's objects. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_int.h"

static const char BRIDGE_DDL[] =
	"CREATE TABLE IF NOT EXISTS _pgsqlite_state ("
	"key TEXT PRIMARY KEY, value TEXT);"
	"CREATE TABLE IF NOT EXISTS _pgsqlite_changes ("
	"seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" table_name TEXT NOT NULL,"
	" op TEXT NOT NULL CHECK (op IN ('I','U','D')),"
	" pk TEXT, new_row TEXT, old_row TEXT,"
	" changed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),"
	" new_pk TEXT);"
	"CREATE TABLE IF NOT EXISTS _pgsqlite_conflicts ("
	"id INTEGER PRIMARY KEY AUTOINCREMENT, table_name TEXT, pk TEXT,"
	" local_row TEXT, remote_row TEXT, strategy TEXT, resolution TEXT,"
	" detected_at TEXT, resolved_at TEXT);"
	"CREATE INDEX IF NOT EXISTS _pgsqlite_changes_row ON _pgsqlite_changes (table_name, pk);"
	"CREATE TABLE IF NOT EXISTS _pgsqlite_pow2 (p REAL PRIMARY KEY, e INTEGER NOT NULL)"
	" WITHOUT ROWID;";

#define POW2_MIN (-1074) /* the smallest subnormal double is 2^-1074 */
#define POW2_MAX 1023

int sl_fail(struct sl_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -1;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	return -1;
}

int sl_fail_db(struct sl_db *db, struct sl_err *err, const char *what, const char *table)
{
	int code = sqlite3_errcode(db->h);
	const char *m = sqlite3_errmsg(db->h);

	if (table)
		return sl_fail(err, code, "%s \"%s\": %s", what, table, m);
	return sl_fail(err, code, "%s: %s", what, m);
}

int sl_exec(struct sl_db *db, const char *sql, const char *what, const char *table,
            struct sl_err *err)
{
	if (sqlite3_exec(db->h, sql, NULL, NULL, NULL) != SQLITE_OK)
		return sl_fail_db(db, err, what, table);
	return 0;
}

/* Fills _pgsqlite_pow2 with every power of two a double holds, exactly
 * (bound as doubles, never parsed from text): the change-log triggers look
 * a REAL's binary exponent up there to write it exactly (sl_image.c). */
static int pow2_fill(struct sl_db *db, struct sl_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db->h, "SELECT count(*) = ?1 FROM _pgsqlite_pow2", -1, &st, NULL);

	if (rc == SQLITE_OK) {
		sqlite3_bind_int(st, 1, POW2_MAX - POW2_MIN + 1);
		rc = sqlite3_step(st);
	}
	bool full = rc == SQLITE_ROW && sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return sl_fail_db(db, err, "cannot read the bridge table", "_pgsqlite_pow2");
	if (full)
		return 0;
	if (sl_exec(db, "SAVEPOINT _pgsqlite_pow2_fill", "cannot fill", "_pgsqlite_pow2", err))
		return -1;
	rc = sqlite3_prepare_v2(db->h, "INSERT OR REPLACE INTO _pgsqlite_pow2 (p, e) VALUES (?1, ?2)",
	                        -1, &st, NULL);
	for (int e = POW2_MIN; rc == SQLITE_OK && e <= POW2_MAX; e++) {
		sqlite3_bind_double(st, 1, ldexp(1.0, e));
		sqlite3_bind_int(st, 2, e);
		rc = sqlite3_step(st) == SQLITE_DONE ? sqlite3_reset(st) : SQLITE_ERROR;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK) {
		sl_fail_db(db, err, "cannot fill", "_pgsqlite_pow2");
		sqlite3_exec(db->h, "ROLLBACK TO _pgsqlite_pow2_fill; RELEASE _pgsqlite_pow2_fill",
		             NULL, NULL, NULL);
		return -1;
	}
	return sl_exec(db, "RELEASE _pgsqlite_pow2_fill", "cannot fill", "_pgsqlite_pow2", err);
}

/* The change log's new_pk column (the key an update moved the row to)
 * came after the first files: a file without it gets it, and its capture
 * triggers are written anew so that they fill it.  Then its index. */
static int migrate_new_pk(struct sl_db *db, struct sl_err *err)
{
	sqlite3_stmt *st = NULL;
	bool has = false;

	if (sqlite3_prepare_v2(db->h, "SELECT 1 FROM pragma_table_info('_pgsqlite_changes')"
	                       " WHERE name = 'new_pk'", -1, &st, NULL) != SQLITE_OK)
		return sl_fail_db(db, err, "cannot read the columns of", "_pgsqlite_changes");
	has = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	if (!has && (sl_exec(db, "ALTER TABLE _pgsqlite_changes ADD COLUMN new_pk TEXT",
	                     "cannot add column new_pk to", "_pgsqlite_changes", err) ||
	             sl_capture_rewrite_all(db, err)))
		return -1;
	return sl_exec(db, "CREATE INDEX IF NOT EXISTS _pgsqlite_changes_moved ON _pgsqlite_changes"
	                   " (table_name, new_pk) WHERE new_pk IS NOT NULL",
	               "cannot create an index on", "_pgsqlite_changes", err);
}

static int open_setup(struct sl_db *db, struct sl_err *err)
{
	sqlite3_busy_timeout(db->h, 5000);
	if (sl_exec(db, "PRAGMA journal_mode=WAL", "cannot set the journal mode", NULL, err) ||
	    sl_exec(db, "PRAGMA synchronous=FULL", "cannot set synchronous", NULL, err) ||
	    sl_exec(db, BRIDGE_DDL, "cannot create the bridge tables", NULL, err) ||
	    migrate_new_pk(db, err) || pow2_fill(db, err))
		return -1;
	return 0;
}

int sl_open(const char *path, struct sl_db **out, struct sl_err *err)
{
	const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
	struct sl_db *db = calloc(1, sizeof *db);

	*out = NULL;
	if (!db)
		return sl_fail(err, SQLITE_NOMEM, "cannot open \"%s\": out of memory", path);
	sl_stmts_init(db);
	if (sqlite3_open_v2(path, &db->h, flags, NULL) != SQLITE_OK) {
		if (db->h)
			sl_fail_db(db, err, "cannot open", path);
		else
			sl_fail(err, SQLITE_NOMEM, "cannot open \"%s\": out of memory", path);
		sl_close(db);
		return -1;
	}
	if (open_setup(db, err)) {
		sl_close(db);
		return -1;
	}
	*out = db;
	return 0;
}

static void finalize_own(struct sl_db *db)
{
	sqlite3_finalize(db->st_get);
	sqlite3_finalize(db->st_set);
	db->st_get = db->st_set = NULL;
	sl_capture_finalize(db);
}

void sl_close(struct sl_db *db)
{
	if (!db)
		return;
	sl_stmts_flush(db);
	sl_tables_flush(db);
	finalize_own(db);
	sqlite3_finalize(db->st_tinfo);
	sqlite3_close(db->h);
	sl_added_clear(db);
	free(db->added);
	free(db->bv);
	free(db->blob);
	sl_types_free(db);
	free(db);
}

sqlite3 *sl_handle(struct sl_db *db)
{
	return db->h;
}

int sl_begin(struct sl_db *db, struct sl_err *err)
{
	if (db->txn)
		return sl_fail(err, 0, "cannot begin: a transaction is already open");
	if (sl_exec(db, "BEGIN IMMEDIATE", "cannot begin a transaction", NULL, err))
		return -1;
	db->txn = true;
	if (sl_state_set(db, "applying", "1", err)) {
		sl_rollback(db);
		return -1;
	}
	db->flag_set = true;
	return 0;
}

/* On failure the transaction stays open (or was already undone by SQLite):
 * the caller rolls back and retries the whole transaction. */
int sl_commit(struct sl_db *db, struct sl_err *err)
{
	if (!db->txn)
		return sl_fail(err, 0, "cannot commit: no transaction is open");
	if (sqlite3_get_autocommit(db->h))
		return sl_fail(err, SQLITE_ABORT, "cannot commit: sqlite already rolled the transaction back");
	if (db->flag_set && sl_state_set(db, "applying", "0", err))
		return -1;
	if (sl_exec(db, "COMMIT", "cannot commit", NULL, err))
		return -1;
	db->txn = false;
	db->flag_set = false;
	sl_bind_trim(db);
	return 0;
}

/* ---- columns added by the apply ---- */

int sl_added_note(struct sl_db *db, const char *table, const char *column, size_t len)
{
	if (db->nadded == db->added_cap) {
		size_t cap = db->added_cap ? 2 * db->added_cap : 8;
		struct sl_added *a = realloc(db->added, cap * sizeof *a);
		if (!a)
			return -1;
		db->added = a;
		db->added_cap = cap;
	}
	struct sl_added *a = &db->added[db->nadded];
	a->table = strdup(table);
	a->column = strndup(column, len);
	if (!a->table || !a->column) {
		free(a->table);
		free(a->column);
		return -1;
	}
	db->nadded++;
	return 0;
}

size_t sl_added_count(const struct sl_db *db)
{
	return db->nadded;
}

const char *sl_added_column(const struct sl_db *db, size_t i, const char **local_table)
{
	*local_table = db->added[i].table;
	return db->added[i].column;
}

void sl_added_clear(struct sl_db *db)
{
	for (size_t i = 0; i < db->nadded; i++) {
		free(db->added[i].table);
		free(db->added[i].column);
	}
	db->nadded = 0;
}

/* Also forgets the cached schema: the transaction may have created or
 * altered tables. */
void sl_rollback(struct sl_db *db)
{
	if (!db)
		return;
	if (!sqlite3_get_autocommit(db->h))
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
	db->txn = false;
	db->flag_set = false;
	sl_added_clear(db); /* the columns went with the transaction */
	sl_stmts_flush(db);
	sl_tables_flush(db);
	sl_bind_trim(db);
}

bool sl_in_txn(const struct sl_db *db)
{
	return db->txn;
}

bool sl_txn_lost(const struct sl_db *db)
{
	return db->txn && sqlite3_get_autocommit(db->h);
}

static int prep_own(struct sl_db *db, sqlite3_stmt **st, const char *sql)
{
	if (*st)
		return SQLITE_OK;
	return sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
}

static void copy_out(sqlite3_stmt *st, char *buf, size_t cap)
{
	const unsigned char *v = sqlite3_column_text(st, 0);
	size_t n = (size_t)sqlite3_column_bytes(st, 0);

	if (!cap)
		return;
	if (!v)
		n = 0;
	if (n > cap - 1)
		n = cap - 1;
	if (n)
		memcpy(buf, v, n);
	buf[n] = '\0';
}

int sl_state_get(struct sl_db *db, const char *key, char *buf, size_t cap)
{
	static const char sql[] = "SELECT value FROM _pgsqlite_state WHERE key = ?1";
	int rc, ret = -1;

	if (prep_own(db, &db->st_get, sql) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(db->st_get, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(db->st_get);
	if (rc == SQLITE_ROW) {
		copy_out(db->st_get, buf, cap);
		ret = 1;
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	}
	sqlite3_reset(db->st_get);
	sqlite3_clear_bindings(db->st_get);
	return ret;
}

int sl_state_set(struct sl_db *db, const char *key, const char *value, struct sl_err *err)
{
	static const char sql[] = "INSERT INTO _pgsqlite_state (key, value) VALUES (?1, ?2)"
	                          " ON CONFLICT (key) DO UPDATE SET value = excluded.value";
	int rc;

	if (prep_own(db, &db->st_set, sql) != SQLITE_OK)
		return sl_fail_db(db, err, "cannot write _pgsqlite_state key", key);
	sqlite3_bind_text(db->st_set, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(db->st_set, 2, value, -1, SQLITE_STATIC);
	rc = sqlite3_step(db->st_set);
	if (rc != SQLITE_DONE)
		sl_fail_db(db, err, "cannot write _pgsqlite_state key", key);
	sqlite3_reset(db->st_set);
	sqlite3_clear_bindings(db->st_set);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int64_t count_rows(struct sl_db *db, const char *sql)
{
	sqlite3_stmt *st;
	int64_t n = -1;

	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

int64_t sl_pending_changes(struct sl_db *db)
{
	return count_rows(db, "SELECT count(*) FROM _pgsqlite_changes");
}

int64_t sl_unresolved_conflicts(struct sl_db *db)
{
	return count_rows(db, "SELECT count(*) FROM _pgsqlite_conflicts WHERE resolved_at IS NULL");
}

/* Builds "DROP TRIGGER ...;" for every trigger named _pgsqlite_*. */
/* DROP statements for every object a query names, into b. */
static int object_drops(struct sl_db *db, struct sl_buf *b, const char *sql, const char *drop,
                        struct sl_err *err)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
		return sl_fail_db(db, err, "cannot list the bridge objects", NULL);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sl_buf_str(b, drop);
		sl_buf_ident(b, (const char *)sqlite3_column_text(st, 0),
		             (size_t)sqlite3_column_bytes(st, 0));
		sl_buf_str(b, ";");
	}
	if (rc != SQLITE_DONE)
		sl_fail_db(db, err, "cannot list the bridge objects", NULL);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -1;
	if (b->oom)
		return sl_fail(err, SQLITE_NOMEM, "cannot drop the bridge objects: out of memory");
	return 0;
}

/* The bridge's triggers, and the tables of online snapshots: the queue
 * of changes held behind a copy, a shadow copy, a swapped-out table. */
static int trigger_drops(struct sl_db *db, struct sl_buf *b, struct sl_err *err)
{
	return object_drops(db, b, "SELECT name FROM sqlite_master WHERE type = 'trigger'"
	                    " AND substr(name, 1, 10) = '_pgsqlite_'", "DROP TRIGGER IF EXISTS ", err) ||
	       object_drops(db, b, "SELECT name FROM sqlite_master WHERE type = 'table' AND"
	                    " (name = '_pgsqlite_snapq' OR name LIKE '\\_pgsqlite\\_shadow\\_%' ESCAPE"
	                    " '\\' OR name LIKE '\\_pgsqlite\\_old\\_%' ESCAPE '\\')",
	                    "DROP TABLE IF EXISTS ", err) ? -1 : 0;
}

static int drop_all(struct sl_db *db, struct sl_err *err)
{
	struct sl_buf b = {0};
	int rc = trigger_drops(db, &b, err);

	if (rc == 0 && b.len)
		rc = sl_exec(db, b.p, "cannot drop the bridge triggers", NULL, err);
	sl_buf_free(&b);
	if (rc)
		return -1;
	return sl_exec(db,
	               "DROP TABLE IF EXISTS _pgsqlite_changes;"
	               "DROP TABLE IF EXISTS _pgsqlite_conflicts;"
	               "DROP TABLE IF EXISTS _pgsqlite_state;"
	               "DROP TABLE IF EXISTS _pgsqlite_pow2",
	               "cannot drop the bridge tables", NULL, err);
}

int sl_drop_bridge_objects(struct sl_db *db, struct sl_err *err)
{
	finalize_own(db);
	if (sl_exec(db, "SAVEPOINT _pgsqlite_drop", "cannot drop the bridge objects", NULL, err))
		return -1;
	if (drop_all(db, err)) {
		sqlite3_exec(db->h, "ROLLBACK TO _pgsqlite_drop; RELEASE _pgsqlite_drop", NULL, NULL,
		             NULL);
		return -1;
	}
	db->flag_set = false;
	return sl_exec(db, "RELEASE _pgsqlite_drop", "cannot drop the bridge objects", NULL, err);
}
