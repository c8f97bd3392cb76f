/* sl_capture.c: change capture for the local -> remote direction: the
 * per-table triggers that log the app's writes to _pgsqlite_changes as JSON
 * row images, reading and trimming that log, per-row lookups in it, and the
 * conflict log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sl_int.h"

#define SLC_MAX_ARGS 127 /* SQLite's default function-argument limit */

/* ---- SQL text ---- */

/* Appends p as an SQL string literal, embedded quotes doubled. */
static void put_lit(struct sl_buf *b, const char *p, size_t n)
{
	size_t i, start = 0;

	sl_buf_put(b, "'", 1);
	for (i = 0; i < n; i++) {
		if (p[i] != '\'')
			continue;
		sl_buf_put(b, p + start, i - start + 1);
		sl_buf_put(b, "'", 1);
		start = i + 1;
	}
	sl_buf_put(b, p + start, n - start);
	sl_buf_put(b, "'", 1);
}

/* A value of an image: side "NEW" / "OLD" (trigger row), "" (a bare
 * column) or NULL (parameter ?i+1). */
static void put_val(struct sl_buf *b, const char *side, const struct sl_col *c, size_t i)
{
	char num[32];

	if (!side) {
		snprintf(num, sizeof num, "?%zu", i + 1);
		sl_buf_str(b, num);
		return;
	}
	if (*side) {
		sl_buf_str(b, side);
		sl_buf_str(b, ".");
	}
	sl_buf_ident(b, c->name, c->len);
}

/* A REAL that is not a small integer, exactly, as a C99 hex float
 * ("0x1.999999999999ap-4", "-0x1p-1074"): the binary exponent e is looked
 * up in _pgsqlite_pow2 (the largest power of two p <= |v|), |v| / p is
 * exact, and its 52 fraction bits are printed in hex.  Pure SQL on an
 * ordinary table, so the triggers work from any process; Postgres's
 * float8in (strtod) reads it back bit for bit.  SQLite's own "%!.17g" is
 * not correctly rounded for large magnitudes (3.40). */
static void put_hex_real(struct sl_buf *b, const char *side, const struct sl_col *c, size_t i)
{
	sl_buf_str(b, "(SELECT CASE WHEN ");
	put_val(b, side, c, i);
	sl_buf_str(b, " < 0 THEN '-0x1' ELSE '0x1' END || rtrim('.' || printf('%013llx', "
	              "CAST(abs(");
	put_val(b, side, c, i);
	sl_buf_str(b, ") / p * 4503599627370496 AS INTEGER) - 4503599627370496), '.0') || "
	              "printf('p%+d', e) FROM _pgsqlite_pow2 WHERE p <= abs(");
	put_val(b, side, c, i);
	sl_buf_str(b, ") ORDER BY p DESC LIMIT 1)");
}

/* A REAL as the images hold it, exactly: an integral value below 2^63 as
 * an integer ("1", "-300"), +-Infinity by name, any other as a hex float. */
static void put_real(struct sl_buf *b, const char *side, const struct sl_col *c, size_t i)
{
	sl_buf_str(b, "CASE WHEN abs(");
	put_val(b, side, c, i);
	sl_buf_str(b, ") < 9223372036854775807 AND ");
	put_val(b, side, c, i);
	sl_buf_str(b, " = CAST(");
	put_val(b, side, c, i);
	sl_buf_str(b, " AS INTEGER) THEN CAST(CAST(");
	put_val(b, side, c, i);
	sl_buf_str(b, " AS INTEGER) AS TEXT) WHEN ");
	put_val(b, side, c, i);
	sl_buf_str(b, " * 2 = ");
	put_val(b, side, c, i);
	sl_buf_str(b, " THEN CASE WHEN ");
	put_val(b, side, c, i);
	sl_buf_str(b, " > 0 THEN 'Infinity' ELSE '-Infinity' END ELSE ");
	put_hex_real(b, side, c, i);
	sl_buf_str(b, " END");
}

/* The value as the images hold it: a real exactly (put_real), a blob as
 * lower-case hex, the rest as it is. */
static void put_enc(struct sl_buf *b, const char *side, const struct sl_col *c, size_t i)
{
	sl_buf_str(b, "CASE typeof(");
	put_val(b, side, c, i);
	sl_buf_str(b, ") WHEN 'real' THEN ");
	put_real(b, side, c, i);
	sl_buf_str(b, " WHEN 'blob' THEN lower(hex(");
	put_val(b, side, c, i);
	sl_buf_str(b, ")) ELSE ");
	put_val(b, side, c, i);
	sl_buf_str(b, " END");
}

/* Column i of a list: idx[i], or i itself when idx is NULL (all columns). */
static const struct sl_col *col_at(const struct sl_table *t, const size_t *idx, size_t i)
{
	return &t->cols[idx ? idx[i] : i];
}

static void put_object(struct sl_buf *b, const struct sl_table *t, const size_t *idx,
                       size_t from, size_t to, const char *side)
{
	size_t i;

	sl_buf_str(b, "json_object(");
	for (i = from; i < to; i++) {
		const struct sl_col *c = col_at(t, idx, i);
		sl_buf_str(b, i > from ? ", " : "");
		put_lit(b, c->name, c->len);
		sl_buf_str(b, ", ");
		put_enc(b, side, c, i);
	}
	sl_buf_str(b, ")");
}

/* The JSON object of the n listed columns.  Past the function-argument
 * limit, json_object() calls of chunk columns each are joined as text:
 * every object starts with {" and ends with a value then }, so ltrim and
 * rtrim take exactly one brace off. */
static void put_json(struct sl_buf *b, const struct sl_table *t, const size_t *idx, size_t n,
                     const char *side, size_t chunk)
{
	size_t from, to;

	if (n <= chunk) {
		put_object(b, t, idx, 0, n, side);
		return;
	}
	for (from = 0; from < n; from = to) {
		to = n - from > chunk ? from + chunk : n;
		sl_buf_str(b, from ? " || ',' || ltrim(" : "");
		sl_buf_str(b, to < n ? "rtrim(" : "");
		put_object(b, t, idx, from, to, side);
		sl_buf_str(b, to < n ? ", '}')" : "");
		sl_buf_str(b, from ? ", '{')" : "");
	}
}

static size_t chunk_of(struct sl_db *db)
{
	int lim = sqlite3_limit(db->h, SQLITE_LIMIT_FUNCTION_ARG, -1);

	if (lim > SLC_MAX_ARGS)
		lim = SLC_MAX_ARGS; /* the app's SQLite parses the triggers too */
	return lim >= 2 ? (size_t)lim / 2 : 1;
}

void sl_capture_put_key(struct sl_db *db, struct sl_buf *b, const struct sl_table *t,
                        const char *side)
{
	put_json(b, t, t->pk, t->npk, side, chunk_of(db));
}

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
	put_json(b, t, t->pk, t->npk, "NEW", chunk);
	sl_buf_str(b, " IS NOT ");
	put_json(b, t, t->pk, t->npk, "OLD", chunk);
	sl_buf_str(b, " THEN ");
	put_json(b, t, t->pk, t->npk, "NEW", chunk);
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
	put_lit(b, name, len);
	sl_buf_str(b, op == 'I' ? ", 'I', " : op == 'U' ? ", 'U', " : ", 'D', ");
	put_json(b, t, t->pk, t->npk, op == 'I' ? "NEW" : "OLD", chunk);
	sl_buf_str(b, ", ");
	if (op == 'D')
		sl_buf_str(b, "NULL");
	else
		put_json(b, t, NULL, t->ncols, "NEW", chunk);
	sl_buf_str(b, ", ");
	if (op == 'I')
		sl_buf_str(b, "NULL");
	else
		put_json(b, t, NULL, t->ncols, "OLD", chunk);
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
	size_t chunk = chunk_of(db);
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

/* ---- the change log's statements ---- */

static const char *const own_sql[SLC_NSTMT] = {
	[SLC_ANY] = "SELECT 1 FROM _pgsqlite_changes LIMIT 1",
	/* one index each: with an OR the planner scans the table's changes */
	[SLC_FIND] = "SELECT seq, at_pk FROM (SELECT seq, 1 AS at_pk FROM _pgsqlite_changes"
	             " WHERE table_name = ?1 AND pk = ?2 UNION ALL SELECT seq, 0 FROM _pgsqlite_changes"
	             " WHERE table_name = ?1 AND new_pk = ?2) ORDER BY at_pk DESC, seq LIMIT 1",
	[SLC_DROP] = "DELETE FROM _pgsqlite_changes WHERE table_name = ?1 AND pk = ?2",
	[SLC_READ] = "SELECT seq, table_name, op, pk, new_row, old_row, changed_at"
	             " FROM _pgsqlite_changes WHERE seq > ?1 ORDER BY seq LIMIT ?2",
	[SLC_TRIM] = "DELETE FROM _pgsqlite_changes WHERE seq <= ?1",
	[SLC_CONFLICT] = "INSERT INTO _pgsqlite_conflicts (table_name, pk, local_row, remote_row,"
	                 " strategy, resolution, detected_at, resolved_at)"
	                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, strftime('%Y-%m-%dT%H:%M:%fZ','now'),"
	                 " CASE WHEN ?7 THEN strftime('%Y-%m-%dT%H:%M:%fZ','now') END)",
};

static sqlite3_stmt *own(struct sl_db *db, int which, struct sl_err *err)
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

static void done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* 1 when the change log is empty, 0 when not, -1 on error. */
static int log_empty(struct sl_db *db, struct sl_err *err)
{
	sqlite3_stmt *st = own(db, SLC_ANY, err);
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
static int col_dup(sqlite3_stmt *st, int i, char **out)
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
	if (col_dup(st, 1, &c->table) || col_dup(st, 3, &c->pk) || col_dup(st, 4, &c->new_row) ||
	    col_dup(st, 5, &c->old_row) || col_dup(st, 6, &c->changed_at)) {
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

int sl__changes_step(struct sl_db *db, sqlite3_stmt *st, size_t max, struct sl_change **a,
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

int sl_changes_read(struct sl_db *db, int64_t after, size_t max, struct sl_change **out,
                    size_t *n, struct sl_err *err)
{
	sqlite3_stmt *st;
	int rc;

	*out = NULL;
	*n = 0;
	if (!max)
		return 0;
	st = own(db, SLC_READ, err);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int64(st, 2, max > (size_t)INT64_MAX ? INT64_MAX : (int64_t)max);
	rc = sl__changes_step(db, st, max, out, n, err);
	done(st);
	if (rc) {
		sl_changes_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
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
	sqlite3_stmt *st = own(db, SLC_TRIM, err);
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, upto);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		sl_fail_db(db, err, "cannot trim the change log", NULL);
	done(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- keys and rows ---- */

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
	put_json(&b, t, t->pk, t->npk, NULL, chunk_of(db));
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
	put_json(&b, t, NULL, t->ncols, "", chunk_of(db));
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

/* Steps t's key statement: the pk JSON is its column 0 until done(). */
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
	done(st);
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
	if (col_dup(st, 0, &s) || !s)
		sl_fail(err, SQLITE_NOMEM, "cannot build a key of table \"%s\": out of memory",
		        local_table);
	done(st);
	return s;
}

/* Runs change-log statement which (SLC_FIND or SLC_DROP) on the table's
 * entries with the key's pk JSON.  SLC_FIND: 1 found (seq in *seq), 0 not;
 * SLC_DROP: rows deleted.  0 too for an empty log or a missing table. */
static int log_by_key(struct sl_db *db, int which, const char *table,
                      const struct dec_field *key, size_t nkey, int64_t *seq,
                      struct sl_err *err)
{
	struct sl_table *t;
	sqlite3_stmt *st, *k;
	int r = log_empty(db, err), rc;

	if (r)
		return r > 0 ? 0 : -1;
	r = key_table(db, table, &t, err);
	if (r <= 0)
		return r;
	if (!(st = own(db, which, err)) || !(k = key_step(db, t, key, nkey, err)))
		return -1;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_value(st, 2, sqlite3_column_value(k, 0));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && seq)
		*seq = sqlite3_column_int64(st, 0);
	if (rc == SQLITE_ROW)
		r = which == SLC_FIND && !sqlite3_column_int(st, 1) ? 2 : 1;
	else if (rc == SQLITE_DONE)
		r = which == SLC_DROP ? sqlite3_changes(db->h) : 0;
	else
		r = sl_fail_db(db, err, "cannot look a row up in the change log of table", table);
	done(st);
	done(k);
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
		else if (col_dup(st, 0, out) || !*out)
			sl_fail(err, SQLITE_NOMEM, "cannot read a row of table \"%s\": out of memory", table);
		else
			r = 1;
	}
	done(st);
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

/* ---- conflicts ---- */

int sl_conflict_record(struct sl_db *db, const char *table, const char *pk_json,
                       const char *local_json, const char *remote_json, const char *strategy,
                       const char *resolution, bool resolved, struct sl_err *err)
{
	sqlite3_stmt *st = own(db, SLC_CONFLICT, err);
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
	done(st);
	return rc == SQLITE_DONE ? 0 : -1;
}
