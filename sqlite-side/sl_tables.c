/* sl_tables.c: the per-connection cache of local table info (columns,
 * their binding kinds, the primary key), read from PRAGMA table_info on
 * first use and re-read when a table changes. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sl_int.h"

/* The binding kind of a declared type, after SQLite's own affinity rules. */
static unsigned char kind_of_decl(const char *decl)
{
	if (!decl)
		return SLK_TEXT;
	if (strcasestr(decl, "INT"))
		return SLK_INT;
	if (strcasecmp(decl, "BLOB") == 0)
		return SLK_BLOB;
	if (strcasestr(decl, "REAL") || strcasestr(decl, "FLOA") || strcasestr(decl, "DOUB"))
		return SLK_REAL;
	return SLK_TEXT;
}

size_t sl_col_find(const struct sl_table *t, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < t->ncols; i++)
		if (sl_name_eq(t->cols[i].name, t->cols[i].len, p, n))
			return i;
	return SL_NONE;
}

static void table_clear(struct sl_table *t)
{
	size_t i;

	sqlite3_finalize(t->st_key);
	sqlite3_finalize(t->st_row);
	t->st_key = t->st_row = NULL;
	for (i = 0; i < t->ncols; i++)
		free(t->cols[i].name);
	free(t->cols);
	free(t->pk);
	t->cols = NULL;
	t->pk = NULL;
	t->ncols = t->npk = 0;
}

static void table_free(struct sl_table *t)
{
	if (!t)
		return;
	table_clear(t);
	free(t->name);
	free(t);
}

void sl_tables_flush(struct sl_db *db)
{
	size_t i;

	for (i = 0; i < SL_TAB_BUCKETS; i++) {
		while (db->tabs[i]) {
			struct sl_table *t = db->tabs[i];
			db->tabs[i] = t->next;
			table_free(t);
		}
	}
}

static int col_push(struct sl_table *t, sqlite3_stmt *st)
{
	const char *name = (const char *)sqlite3_column_text(st, 0);
	size_t len = (size_t)sqlite3_column_bytes(st, 0);
	struct sl_col *cols = realloc(t->cols, (t->ncols + 1) * sizeof *cols);
	struct sl_col *c;

	if (!cols)
		return -1;
	t->cols = cols;
	c = &cols[t->ncols];
	c->name = malloc(len + 1);
	if (!c->name)
		return -1;
	memcpy(c->name, name ? name : "", len);
	c->name[len] = '\0';
	c->len = len;
	c->kind = kind_of_decl((const char *)sqlite3_column_text(st, 1));
	c->pk_pos = sqlite3_column_int(st, 2);
	t->ncols++;
	return 0;
}

/* Fills t->pk with the key columns in key order. */
static int pk_build(struct sl_table *t)
{
	size_t i, j, n = 0;

	for (i = 0; i < t->ncols; i++)
		n += t->cols[i].pk_pos > 0;
	t->pk = malloc((n ? n : 1) * sizeof *t->pk);
	if (!t->pk)
		return -1;
	for (i = 0; i < t->ncols; i++) {
		if (t->cols[i].pk_pos <= 0)
			continue;
		for (j = t->npk; j > 0 && t->cols[t->pk[j - 1]].pk_pos > t->cols[i].pk_pos; j--)
			t->pk[j] = t->pk[j - 1];
		t->pk[j] = i;
		t->npk++;
	}
	return 0;
}

static int tinfo_read(struct sl_db *db, struct sl_table *t)
{
	sqlite3_stmt *st = db->st_tinfo;
	int rc;

	sqlite3_bind_text(st, 1, t->name, (int)t->name_len, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (col_push(t, st)) {
			rc = SQLITE_NOMEM;
			break;
		}
	return rc;
}

/* Reads the columns of t->name: 1 when the table exists, 0 when it does
 * not, -1 on error. */
static int table_load(struct sl_db *db, struct sl_table *t, struct sl_err *err)
{
	static const char sql[] = "SELECT name, type, pk FROM pragma_table_info(?1)";
	int rc;

	table_clear(t);
	if (!db->st_tinfo && sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT,
	                                        &db->st_tinfo, NULL) != SQLITE_OK)
		return sl_fail_db(db, err, "cannot read the columns of table", t->name);
	rc = tinfo_read(db, t);
	if (rc != SQLITE_DONE && rc != SQLITE_NOMEM)
		sl_fail_db(db, err, "cannot read the columns of table", t->name);
	sqlite3_reset(db->st_tinfo);
	sqlite3_clear_bindings(db->st_tinfo);
	if (rc == SQLITE_NOMEM || (rc == SQLITE_DONE && pk_build(t)))
		return sl_fail(err, SQLITE_NOMEM, "cannot read the columns of table \"%s\": out of memory",
		               t->name);
	if (rc != SQLITE_DONE)
		return -1;
	return t->ncols > 0;
}

static struct sl_table *table_new(const char *name, size_t len, uint32_t hash)
{
	struct sl_table *t = calloc(1, sizeof *t);

	if (!t)
		return NULL;
	t->name = malloc(len + 1);
	if (!t->name) {
		free(t);
		return NULL;
	}
	memcpy(t->name, name, len);
	t->name[len] = '\0';
	t->name_len = len;
	t->hash = hash;
	return t;
}

int sl__table_reload(struct sl_db *db, struct sl_table *t, struct sl_err *err)
{
	int r = table_load(db, t, err);

	t->stale = r <= 0;
	if (r == 0)
		return sl_fail(err, 0, "table \"%s\" vanished", t->name);
	return r < 0 ? -1 : 0;
}

/* Re-reads a cached table's columns (another connection may have altered
 * it) and drops its cached statements. */
int sl_table_refresh(struct sl_db *db, struct sl_table *t, struct sl_err *err)
{
	sl_stmts_invalidate(db, t);
	return sl__table_reload(db, t, err);
}

/* The cached info of a local table, read on first use: 1 found, 0 the
 * table does not exist (not cached), -1 error. */
int sl_table_get(struct sl_db *db, const char *name, size_t len, struct sl_table **out,
                 struct sl_err *err)
{
	uint32_t h = sl__name_hash(name, len);
	struct sl_table **head = &db->tabs[h % SL_TAB_BUCKETS], *t;
	int r;

	for (t = *head; t; t = t->next) {
		if (t->hash != h || !sl_name_eq(t->name, t->name_len, name, len))
			continue;
		if (t->stale && sl__table_reload(db, t, err))
			return -1;
		*out = t;
		return 1;
	}
	t = table_new(name, len, h);
	if (!t)
		return sl_fail(err, SQLITE_NOMEM, "cannot cache table \"%.*s\": out of memory",
		               (int)len, name);
	r = table_load(db, t, err);
	if (r <= 0) {
		table_free(t);
		return r;
	}
	t->next = *head;
	*head = t;
	*out = t;
	return 1;
}
