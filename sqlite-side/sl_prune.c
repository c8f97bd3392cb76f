/* sl_prune.c: local-only pruning (max_records, storage_limit_action =
 * prune) and the file's size in pages in use.  Pruning deletes rows of a
 * synced table, newest kept, by its order column; rows with pending local
 * changes are never deleted.  It runs inside the bridge's own transaction,
 * where the change-log triggers stay quiet: nothing is captured. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_int.h"

/* The key columns as a row value: ("a", "b"). */
static void put_key_cols(struct sl_buf *b, const struct sl_table *t, const char *dir)
{
	for (size_t i = 0; i < t->npk; i++) {
		const struct sl_col *c = &t->cols[t->pk[i]];
		sl_buf_str(b, i ? ", " : "");
		sl_buf_ident(b, c->name, c->len);
		if (dir)
			sl_buf_str(b, dir);
	}
}

/* Newest first (dir " DESC") or oldest first (" ASC"): the order column,
 * NULL counting as oldest, then the key. */
static void put_order(struct sl_buf *b, const struct sl_table *t, const struct sl_col *oc,
                      const struct sl_prune *p, const char *dir)
{
	sl_buf_str(b, " ORDER BY ");
	if (p->numeric)
		sl_buf_str(b, "CAST(");
	sl_buf_ident(b, oc->name, oc->len);
	if (p->numeric)
		sl_buf_str(b, " AS NUMERIC)");
	sl_buf_str(b, dir);
	sl_buf_str(b, ", ");
	put_key_cols(b, t, dir);
}

/* " AND <row's key> NOT IN (keys with pending changes)": the key the
 * change log names (the old key of an update) and, for a key move, the
 * new one (new_pk).  ?2 is the table's name. */
static void put_protect(struct sl_db *db, struct sl_buf *b, const struct sl_table *t)
{
	sl_buf_str(b, " AND ");
	sl_capture_put_key(db, b, t, "");
	sl_buf_str(b, " NOT IN (SELECT pk FROM _pgsqlite_changes WHERE table_name = ?2"
	              " AND pk IS NOT NULL) AND ");
	sl_capture_put_key(db, b, t, "");
	sl_buf_str(b, " NOT IN (SELECT new_pk FROM _pgsqlite_changes WHERE table_name = ?2"
	              " AND new_pk IS NOT NULL)");
}

/* The table's cached info with its key and order column, or -1. */
static int prune_target(struct sl_db *db, const struct sl_prune *p, struct sl_table **t,
                        const struct sl_col **oc, struct sl_err *err)
{
	size_t len = strlen(p->table), i;
	int r = sl_table_get(db, p->table, len, t, err);

	if (r == 0)
		return sl_fail(err, 0, "cannot prune table \"%s\": no such table", p->table);
	if (r < 0)
		return -1;
	if (!(*t)->npk)
		return sl_fail(err, 0, "cannot prune table \"%s\": it has no primary key", p->table);
	if ((i = sl_col_find(*t, p->order_column, strlen(p->order_column))) == SL_NONE)
		return sl_fail(err, 0, "cannot prune table \"%s\": it has no column \"%s\"", p->table,
		               p->order_column);
	*oc = &(*t)->cols[i];
	return 0;
}

/* Runs the DELETE with ?1 = n and ?2 = the table's name. */
static int run_delete(struct sl_db *db, const struct sl_buf *b, const struct sl_prune *p,
                      int64_t n, int64_t *deleted, struct sl_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (b->oom)
		return sl_fail(err, SQLITE_NOMEM, "cannot prune table \"%s\": out of memory", p->table);
	rc = sqlite3_prepare_v2(db->h, b->p, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, n);
		sqlite3_bind_text(st, 2, p->table, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sl_fail_db(db, err, "cannot prune table", p->table);
	if (deleted)
		*deleted = sqlite3_changes64(db->h);
	return 0;
}

/* DELETE FROM t WHERE (key) IN (SELECT key FROM t [WHERE protect] ORDER BY
 * ... LIMIT ...) [AND protect]. */
static int prune(struct sl_db *db, const struct sl_prune *p, bool keep, int64_t n,
                 int64_t *deleted, struct sl_err *err)
{
	struct sl_table *t = NULL;
	const struct sl_col *oc = NULL;
	struct sl_buf b = {0};
	int rc;

	if (deleted)
		*deleted = 0;
	if (prune_target(db, p, &t, &oc, err))
		return -1;
	sl_buf_str(&b, "DELETE FROM ");
	sl_buf_ident(&b, t->name, t->name_len);
	sl_buf_str(&b, " WHERE (");
	put_key_cols(&b, t, NULL);
	sl_buf_str(&b, ") IN (SELECT ");
	put_key_cols(&b, t, NULL);
	sl_buf_str(&b, " FROM ");
	sl_buf_ident(&b, t->name, t->name_len);
	if (!keep) { /* the n oldest that may go */
		sl_buf_str(&b, " WHERE 1");
		put_protect(db, &b, t);
	}
	put_order(&b, t, oc, p, keep ? " DESC" : " ASC");
	sl_buf_str(&b, keep ? " LIMIT -1 OFFSET ?1)" : " LIMIT ?1)");
	if (keep) /* past the newest n, except what may not go */
		put_protect(db, &b, t);
	rc = run_delete(db, &b, p, n, deleted, err);
	sl_buf_free(&b);
	return rc;
}

/* 1 when the table holds more than n rows, 0 when not, -1 on error: a walk
 * of n + 1 rows, no sort (pruning usually finds nothing to do). */
static int more_than(struct sl_db *db, const struct sl_prune *p, int64_t n, struct sl_err *err)
{
	struct sl_buf b = {0};
	sqlite3_stmt *st = NULL;
	int rc;

	sl_buf_str(&b, "SELECT 1 FROM ");
	sl_buf_ident(&b, p->table, strlen(p->table));
	sl_buf_str(&b, " LIMIT 1 OFFSET ?1");
	if (b.oom) {
		sl_buf_free(&b);
		return sl_fail(err, SQLITE_NOMEM, "cannot prune table \"%s\": out of memory", p->table);
	}
	rc = sqlite3_prepare_v2(db->h, b.p, -1, &st, NULL);
	sl_buf_free(&b);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, n);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sl_fail_db(db, err, "cannot prune table", p->table);
	return rc == SQLITE_ROW;
}

int sl_prune_keep(struct sl_db *db, const struct sl_prune *p, int64_t keep, int64_t *deleted,
                  struct sl_err *err)
{
	struct sl_table *t;
	const struct sl_col *oc;
	int more;

	if (deleted)
		*deleted = 0;
	if (prune_target(db, p, &t, &oc, err))
		return -1;
	if ((more = more_than(db, p, keep < 0 ? 0 : keep, err)) <= 0)
		return more;
	return prune(db, p, true, keep < 0 ? 0 : keep, deleted, err);
}

int sl_prune_oldest(struct sl_db *db, const struct sl_prune *p, int64_t n, int64_t *deleted,
                    struct sl_err *err)
{
	return prune(db, p, false, n < 0 ? 0 : n, deleted, err);
}

static int64_t pragma_int(struct sl_db *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

int64_t sl_used_bytes(struct sl_db *db)
{
	int64_t pages = pragma_int(db, "PRAGMA page_count");
	int64_t free_pages = pragma_int(db, "PRAGMA freelist_count");
	int64_t size = pragma_int(db, "PRAGMA page_size");

	if (pages < 0 || free_pages < 0 || size < 0)
		return -1;
	return (pages - free_pages) * size;
}

int64_t sl_table_rows(struct sl_db *db, const char *local_table)
{
	struct sl_buf b = {0};
	int64_t n;

	sl_buf_str(&b, "SELECT count(*) FROM ");
	sl_buf_ident(&b, local_table, strlen(local_table));
	n = b.oom ? -1 : pragma_int(db, b.p);
	sl_buf_free(&b);
	return n;
}
