/* sl_changes.c: the change log's and the conflict log's own statements:
 * reading the change log in order, trimming it, and recording a conflict.
 * Per-row lookups in the log are in sl_rowkeys.c. */
#include <stdlib.h>
#include <string.h>

#include "sl_int.h"

static const char *const own_sql[SLC_NSTMT] = {
	[SLC_ANY] = "SELECT 1 FROM _pgsqlite_changes LIMIT 1",
	/* one index each: with an OR the planner scans the table's changes */
	/* Two probes, each along its index in seq order: no sorter, so no
	 * temporary b-tree is built and freed for every pulled row. */
	[SLC_FIND] = "SELECT seq FROM _pgsqlite_changes WHERE table_name = ?1 AND pk = ?2"
	             " ORDER BY seq LIMIT 1",
	[SLC_FIND_MOVED] = "SELECT seq FROM _pgsqlite_changes WHERE table_name = ?1 AND new_pk = ?2"
	                   " ORDER BY seq LIMIT 1",
	/* a key move away from the key, older than its newest change, is
	 * another row's (a new row took the freed key): left for its push */
	[SLC_DROP] = "DELETE FROM _pgsqlite_changes WHERE table_name = ?1 AND pk = ?2 AND NOT (op = 'U'"
	             " AND new_pk IS NOT NULL AND new_pk <> pk AND seq < (SELECT max(seq) FROM _pgsqlite_changes"
	             " WHERE table_name = ?1 AND pk = ?2))",
	[SLC_READ] = "SELECT seq, table_name, op, pk, new_row, old_row, changed_at"
	             " FROM _pgsqlite_changes WHERE seq > ?1 ORDER BY seq LIMIT ?2",
	[SLC_TRIM] = "DELETE FROM _pgsqlite_changes WHERE seq <= ?1",
	[SLC_CONFLICT] = "INSERT INTO _pgsqlite_conflicts (table_name, pk, local_row, remote_row,"
	                 " strategy, resolution, detected_at, resolved_at)"
	                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, strftime('%Y-%m-%dT%H:%M:%fZ','now'),"
	                 " CASE WHEN ?7 THEN strftime('%Y-%m-%dT%H:%M:%fZ','now') END)",
};

sqlite3_stmt *sl__log_stmt(struct sl_db *db, int which, struct sl_err *err)
{
	if (!db->cap[which] &&
	    sqlite3_prepare_v3(db->h, own_sql[which], -1, SQLITE_PREPARE_PERSISTENT, &db->cap[which],
	                       NULL) != SQLITE_OK) {
		sl_fail_db(db, err, "cannot prepare a change-log statement", NULL);
		return NULL;
	}
	return db->cap[which];
}

void sl_capture_finalize(struct sl_db *db)
{
	int i;

	for (i = 0; i < SLC_NSTMT; i++) {
		sqlite3_finalize(db->cap[i]);
		db->cap[i] = NULL;
	}
}

void sl__stmt_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* 1 when the change log is empty, 0 when not, -1 on error. */
int sl__log_empty(struct sl_db *db, struct sl_err *err)
{
	sqlite3_stmt *st = sl__log_stmt(db, SLC_ANY, err);
	int rc;

	if (!st)
		return -1;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		sl_fail_db(db, err, "cannot read the change log", NULL);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 1 : rc == SQLITE_ROW ? 0 : -1;
}

/* ---- reading and trimming the log ---- */

/* A malloc'd copy of column i, NULL for SQL NULL.  Returns -1 out of memory. */
int sl__col_dup(sqlite3_stmt *st, int i, char **out)
{
	const unsigned char *v;
	size_t n;

	*out = NULL;
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return 0;
	v = sqlite3_column_text(st, i);
	n = (size_t)sqlite3_column_bytes(st, i);
	if (!v || !(*out = malloc(n + 1)))
		return -1;
	memcpy(*out, v, n);
	(*out)[n] = '\0';
	return 0;
}

static void change_clear(struct sl_change *c)
{
	free(c->table);
	free(c->pk);
	free(c->new_row);
	free(c->old_row);
	free(c->changed_at);
}

static int change_fill(sqlite3_stmt *st, struct sl_change *c)
{
	const unsigned char *op;

	memset(c, 0, sizeof *c);
	c->seq = sqlite3_column_int64(st, 0);
	op = sqlite3_column_text(st, 2);
	c->op = op ? (char)op[0] : '?';
	if (sl__col_dup(st, 1, &c->table) || sl__col_dup(st, 3, &c->pk) || sl__col_dup(st, 4, &c->new_row) ||
	    sl__col_dup(st, 5, &c->old_row) || sl__col_dup(st, 6, &c->changed_at)) {
		change_clear(c);
		return -1;
	}
	return 0;
}

static int changes_grow(struct sl_change **a, size_t *cap, size_t max)
{
	size_t want = *cap ? *cap * 2 : 64;
	struct sl_change *p;

	if (want > max)
		want = max;
	p = realloc(*a, want * sizeof *p);
	if (!p)
		return -1;
	*a = p;
	*cap = want;
	return 0;
}

static int changes_fetch(struct sl_db *db, sqlite3_stmt *st, size_t max, struct sl_change **a,
                         size_t *n, struct sl_err *err)
{
	size_t cap = 0;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((*n == cap && changes_grow(a, &cap, max)) || change_fill(st, &(*a)[*n]))
			return sl_fail(err, SQLITE_NOMEM, "cannot read the change log: out of memory");
		(*n)++;
	}
	if (rc != SQLITE_DONE)
		return sl_fail_db(db, err, "cannot read the change log", NULL);
	return 0;
}

int sl__changes_step(struct sl_db *db, sqlite3_stmt *st, size_t max, struct sl_change **out,
                     size_t *n, struct sl_err *err)
{
	int rc;

	*out = NULL;
	*n = 0;
	rc = changes_fetch(db, st, max, out, n, err);
	if (rc) {
		sl_changes_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

int sl_changes_read(struct sl_db *db, int64_t after, size_t max, struct sl_change **out,
                    size_t *n, struct sl_err *err)
{
	sqlite3_stmt *st;
	int rc;

	*out = NULL;
	*n = 0;
	if (!max)
		return 0;
	st = sl__log_stmt(db, SLC_READ, err);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int64(st, 2, max > (size_t)INT64_MAX ? INT64_MAX : (int64_t)max);
	rc = sl__changes_step(db, st, max, out, n, err);
	sl__stmt_done(st);
	return rc;
}

void sl_changes_free(struct sl_change *c, size_t n)
{
	size_t i;

	for (i = 0; c && i < n; i++)
		change_clear(&c[i]);
	free(c);
}

int sl_changes_delete_upto(struct sl_db *db, int64_t upto, struct sl_err *err)
{
	sqlite3_stmt *st = sl__log_stmt(db, SLC_TRIM, err);
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, upto);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		sl_fail_db(db, err, "cannot trim the change log", NULL);
	sl__stmt_done(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- conflicts ---- */

int sl_conflict_record(struct sl_db *db, const char *table, const char *pk_json,
                       const char *local_json, const char *remote_json, const char *strategy,
                       const char *resolution, bool resolved, struct sl_err *err)
{
	sqlite3_stmt *st = sl__log_stmt(db, SLC_CONFLICT, err);
	const char *v[] = {table, pk_json, local_json, remote_json, strategy, resolution};
	int i, rc;

	if (!st)
		return -1;
	for (i = 0; i < 6; i++)
		sqlite3_bind_text(st, i + 1, v[i], -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 7, resolved);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		sl_fail_db(db, err, "cannot record a conflict on table", table ? table : "");
	sl__stmt_done(st);
	return rc == SQLITE_DONE ? 0 : -1;
}
