/* sl_rowkeys.c: a remote row's key looked up locally: the key as the
 * triggers write it, whether the change log holds a pending change at it
 * (or drops those), and the local row's JSON image at it. */
#include <stdio.h>
#include <string.h>

#include "sl_int.h"

/* The cached info of a table to look a key up in: 1, 0 when the table
 * does not exist, -1 on error (a table without a primary key included). */
static int key_table(struct sl_db *db, const char *name, struct sl_table **t,
                     struct sl_err *err)
{
	int r;

	if (!name || !*name)
		return sl_fail(err, 0, "cannot look a key up: no table name");
	r = sl_table_get(db, name, strlen(name), t, err);
	if (r > 0 && !(*t)->npk)
		return sl_fail(err, 0, "cannot look a key up in table \"%s\": it has no primary key", name);
	return r;
}

static const struct dec_field *key_field(const struct dec_field *key, size_t nkey,
                                         const struct sl_col *c)
{
	size_t i;

	for (i = 0; i < nkey; i++)
		if (sl_name_eq(key[i].name.p, key[i].name.len, c->name, c->len))
			return &key[i];
	return NULL;
}

/* Binds the key's values to ?1.. in the table's key order, each by its
 * column's kind, as sl_apply binds them. */
static int key_bind(struct sl_db *db, const struct sl_table *t, sqlite3_stmt *st,
                    const struct dec_field *key, size_t nkey, struct sl_err *err)
{
	size_t j;

	if (sl_bv_reserve(db, t->npk))
		return sl_fail(err, SQLITE_NOMEM, "cannot bind the key of table \"%s\": out of memory",
		               t->name);
	for (j = 0; j < t->npk; j++) {
		const struct sl_col *c = &t->cols[t->pk[j]];
		const struct dec_field *f = key_field(key, nkey, c);
		if (!f)
			return sl_fail(err, 0, "the key for table \"%s\" lacks column \"%s\"", t->name,
			               c->name);
		db->bv[j].f = f;
		db->bv[j].kind = c->kind;
	}
	return sl_bind_row(db, st, t->npk, t->name, err);
}

static int prepare_built(struct sl_db *db, const struct sl_buf *b, sqlite3_stmt **st,
                         const char *table, struct sl_err *err)
{
	if (b->oom)
		return sl_fail(err, SQLITE_NOMEM, "cannot build a key lookup for table \"%s\": out of memory",
		               table);
	if (sqlite3_prepare_v3(db->h, b->p, (int)b->len + 1, SQLITE_PREPARE_PERSISTENT, st, NULL) !=
	    SQLITE_OK)
		return sl_fail_db(db, err, "cannot prepare a key lookup for table", table);
	return 0;
}

/* SELECT <pk JSON of ?1..>: the key as the triggers write it. */
static sqlite3_stmt *key_stmt(struct sl_db *db, struct sl_table *t, struct sl_err *err)
{
	struct sl_buf b = {0};
	int rc;

	if (t->st_key)
		return t->st_key;
	sl_buf_str(&b, "SELECT ");
	sl__put_json(&b, t, t->pk, t->npk, NULL, sl__json_chunk(db));
	rc = prepare_built(db, &b, &t->st_key, t->name, err);
	sl_buf_free(&b);
	return rc ? NULL : t->st_key;
}

/* SELECT <row JSON> FROM t WHERE k1 = ?1 AND ... */
static sqlite3_stmt *row_stmt(struct sl_db *db, struct sl_table *t, struct sl_err *err)
{
	struct sl_buf b = {0};
	char num[32];
	size_t j;
	int rc;

	if (t->st_row)
		return t->st_row;
	sl_buf_str(&b, "SELECT ");
	sl__put_json(&b, t, NULL, t->ncols, "", sl__json_chunk(db));
	sl_buf_str(&b, " FROM ");
	sl_buf_ident(&b, t->name, t->name_len);
	for (j = 0; j < t->npk; j++) {
		sl_buf_str(&b, j ? " AND " : " WHERE ");
		sl_buf_ident(&b, t->cols[t->pk[j]].name, t->cols[t->pk[j]].len);
		snprintf(num, sizeof num, " = ?%zu", j + 1);
		sl_buf_str(&b, num);
	}
	rc = prepare_built(db, &b, &t->st_row, t->name, err);
	sl_buf_free(&b);
	return rc ? NULL : t->st_row;
}

/* Steps t's key statement: the pk JSON is its column 0 until sl__stmt_done(). */
static sqlite3_stmt *key_step(struct sl_db *db, struct sl_table *t, const struct dec_field *key,
                              size_t nkey, struct sl_err *err)
{
	sqlite3_stmt *st = key_stmt(db, t, err);

	if (!st)
		return NULL;
	if (key_bind(db, t, st, key, nkey, err) == 0) {
		if (sqlite3_step(st) == SQLITE_ROW)
			return st;
		sl_fail_db(db, err, "cannot build the key JSON of table", t->name);
	}
	sl__stmt_done(st);
	return NULL;
}

char *sl_key_json(struct sl_db *db, const char *local_table, const struct dec_field *key,
                  size_t nkey, struct sl_err *err)
{
	struct sl_table *t;
	sqlite3_stmt *st;
	char *s;
	int r = key_table(db, local_table, &t, err);

	if (r == 0)
		sl_fail(err, 0, "cannot build a key of table \"%s\": no such table", local_table);
	if (r <= 0 || !(st = key_step(db, t, key, nkey, err)))
		return NULL;
	if (sl__col_dup(st, 0, &s) || !s)
		sl_fail(err, SQLITE_NOMEM, "cannot build a key of table \"%s\": out of memory",
		        local_table);
	sl__stmt_done(st);
	return s;
}

/* Runs change-log statement which (SLC_FIND, SLC_FIND_MOVED or SLC_DROP)
 * with the table and the key's pk JSON k.  Finds: 1 found (seq in *seq),
 * 0 not; SLC_DROP: rows deleted. */
static int log_stmt_run(struct sl_db *db, int which, const char *table, sqlite3_stmt *k,
                        int64_t *seq, struct sl_err *err)
{
	sqlite3_stmt *st = sl__log_stmt(db, which, err);
	int r, rc;

	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_value(st, 2, sqlite3_column_value(k, 0));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && seq)
		*seq = sqlite3_column_int64(st, 0);
	if (rc == SQLITE_ROW)
		r = 1;
	else if (rc == SQLITE_DONE)
		r = which == SLC_DROP ? sqlite3_changes(db->h) : 0;
	else
		r = sl_fail_db(db, err, "cannot look a row up in the change log of table", table);
	sl__stmt_done(st);
	return r;
}

/* SLC_FIND: 1 a change of the row itself (the first in *seq), 2 only a
 * change that moved another row onto its key, 3 both, 0 none; SLC_DROP:
 * rows deleted.  0 too for an empty log or a missing table. */
static int log_by_key(struct sl_db *db, int which, const char *table,
                      const struct dec_field *key, size_t nkey, int64_t *seq,
                      struct sl_err *err)
{
	struct sl_table *t;
	sqlite3_stmt *k;
	int r = sl__log_empty(db, err);

	if (r)
		return r > 0 ? 0 : -1;
	r = key_table(db, table, &t, err);
	if (r <= 0)
		return r;
	if (!(k = key_step(db, t, key, nkey, err)))
		return -1;
	r = log_stmt_run(db, which, table, k, seq, err);
	if (r >= 0 && which == SLC_FIND) {
		int moved = log_stmt_run(db, SLC_FIND_MOVED, table, k, r ? NULL : seq, err);
		r = moved < 0 ? -1 : r | (moved ? 2 : 0);
	}
	sl__stmt_done(k);
	return r;
}

int sl_pending_for_row(struct sl_db *db, const char *local_table, const struct dec_field *key,
                       size_t nkey, int64_t *seq, struct sl_err *err)
{
	return log_by_key(db, SLC_FIND, local_table, key, nkey, seq, err);
}

int sl_drop_pending_for_row(struct sl_db *db, const char *local_table,
                            const struct dec_field *key, size_t nkey, struct sl_err *err)
{
	return log_by_key(db, SLC_DROP, local_table, key, nkey, NULL, err);
}

/* The row JSON into *out: 1, 0 no such row (or table), -1 error. */
static int row_fetch(struct sl_db *db, const char *table, const struct dec_field *key,
                     size_t nkey, char **out, struct sl_err *err)
{
	struct sl_table *t;
	sqlite3_stmt *st;
	int r = key_table(db, table, &t, err), rc;

	if (r <= 0)
		return r;
	if (!(st = row_stmt(db, t, err)))
		return -1;
	r = -1;
	if (key_bind(db, t, st, key, nkey, err) == 0) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			r = 0;
		else if (rc != SQLITE_ROW)
			sl_fail_db(db, err, "cannot read a row of table", table);
		else if (sl__col_dup(st, 0, out) || !*out)
			sl_fail(err, SQLITE_NOMEM, "cannot read a row of table \"%s\": out of memory", table);
		else
			r = 1;
	}
	sl__stmt_done(st);
	return r;
}

char *sl_row_json(struct sl_db *db, const char *local_table, const struct dec_field *key,
                  size_t nkey, struct sl_err *err)
{
	char *s = NULL;
	int r = row_fetch(db, local_table, key, nkey, &s, err);

	if (r > 0 || !err)
		return s;
	if (r == 0) {
		err->code = 0;
		err->msg[0] = '\0';
	} else if (err->code == 0) {
		err->code = SQLITE_ERROR; /* tell an error from "no such row" */
	}
	return NULL;
}
