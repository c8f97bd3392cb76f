/* sl_schema.c: the DDL of synced tables: creating them (from a record or
 * from a column list), adding the columns they lack, and clearing them. */
#include <stdlib.h>
#include <string.h>

#include "sl_int.h"

static int check_names(const struct sl_colspec *c, size_t n, const char *table,
                       struct sl_err *err)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!c[i].len || memchr(c[i].name, '\0', c[i].len))
			return sl_fail(err, 0, "invalid column name for table \"%s\"", table);
	return 0;
}

static void sql_pk(struct sl_buf *b, const struct sl_colspec *c, size_t n, int maxpk)
{
	bool first = true;
	size_t i;
	int k;

	sl_buf_str(b, ", PRIMARY KEY (");
	for (k = 1; k <= maxpk; k++)
		for (i = 0; i < n; i++) {
			if (c[i].pk_pos != k)
				continue;
			if (!first)
				sl_buf_str(b, ", ");
			sl_buf_ident(b, c[i].name, c[i].len);
			first = false;
		}
	sl_buf_str(b, ")");
}

static int table_create(struct sl_db *db, const char *name, size_t len,
                        const struct sl_colspec *c, size_t n, struct sl_err *err)
{
	struct sl_buf b = {0};
	int maxpk = 0, rc;
	size_t i;

	if (check_names(c, n, name, err))
		return -1;
	sl_buf_str(&b, "CREATE TABLE IF NOT EXISTS ");
	sl_buf_ident(&b, name, len);
	sl_buf_str(&b, " (");
	for (i = 0; i < n; i++) {
		if (i)
			sl_buf_str(&b, ", ");
		sl_buf_ident(&b, c[i].name, c[i].len);
		sl_buf_str(&b, " ");
		sl_buf_str(&b, c[i].decl);
		if (c[i].pk_pos > maxpk)
			maxpk = c[i].pk_pos;
	}
	if (!maxpk) {
		sl_buf_free(&b);
		return sl_fail(err, 0, "cannot create table \"%s\": no primary key", name);
	}
	sql_pk(&b, c, n, maxpk);
	sl_buf_str(&b, ")");
	rc = b.oom ? sl_fail(err, SQLITE_NOMEM, "cannot create table \"%s\": out of memory", name)
	           : sl_exec(db, b.p, "cannot create table", name, err);
	sl_buf_free(&b);
	return rc;
}

static int column_add(struct sl_db *db, const struct sl_table *t, const struct sl_colspec *c,
                      struct sl_err *err)
{
	struct sl_buf b = {0};
	int rc;

	sl_buf_str(&b, "ALTER TABLE ");
	sl_buf_ident(&b, t->name, t->name_len);
	sl_buf_str(&b, " ADD COLUMN ");
	sl_buf_ident(&b, c->name, c->len);
	sl_buf_str(&b, " ");
	sl_buf_str(&b, c->decl);
	rc = b.oom ? sl_fail(err, SQLITE_NOMEM, "cannot add a column to table \"%s\": out of memory",
	                     t->name)
	           : sl_exec(db, b.p, "cannot add a column to table", t->name, err);
	sl_buf_free(&b);
	return rc;
}

static bool any_missing(const struct sl_table *t, const struct sl_colspec *c, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (sl_col_find(t, c[i].name, c[i].len) == SL_NONE)
			return true;
	return false;
}

/* Adds the columns of c that t lacks, after re-reading t (another
 * connection may have added them); then refreshes t, drops its cached
 * statements and rebuilds its capture triggers if it has them.  With
 * `note`, each added column is listed for sl_added_count. */
static int table_add_missing(struct sl_db *db, struct sl_table *t, const struct sl_colspec *c,
                             size_t n, bool note, struct sl_err *err)
{
	bool added = false;
	size_t i;

	if (check_names(c, n, t->name, err))
		return -1;
	if (!any_missing(t, c, n))
		return 0;
	if (sl__table_reload(db, t, err))
		return -1;
	for (i = 0; i < n; i++) {
		if (sl_col_find(t, c[i].name, c[i].len) != SL_NONE)
			continue;
		if (column_add(db, t, &c[i], err)) {
			t->stale = added;
			return -1;
		}
		if (note && sl_added_note(db, t->name, c[i].name, c[i].len)) {
			t->stale = true;
			return sl_fail(err, SQLITE_NOMEM, "cannot add a column to table \"%s\": out of memory",
			               t->name);
		}
		added = true;
	}
	if (!added)
		return 0;
	sl_stmts_invalidate(db, t);
	if (sl__table_reload(db, t, err))
		return -1;
	return sl_capture_refresh(db, t, err);
}

static void spec_of_field(struct sl_db *db, struct sl_colspec *s, const struct dec_field *f)
{
	s->name = f->name.p ? f->name.p : "";
	s->len = f->name.len;
	s->decl = sl_affinity_n(f->type.p, f->type.len, sl_mapped_oid(db, f->typeoid));
	s->pk_pos = 0;
}

/* Column specs of a record: its columns, then key columns it lacks. */
static size_t record_specs(struct sl_db *db, const struct dec_record *rec, struct sl_colspec *s)
{
	size_t i, j, n = 0;

	for (i = 0; i < rec->ncolumns; i++)
		spec_of_field(db, &s[n++], &rec->columns[i]);
	for (j = 0; j < rec->npk; j++) {
		const struct dec_field *k = &rec->pk[j];
		for (i = 0; i < n; i++)
			if (sl_name_eq(s[i].name, s[i].len, k->name.p, k->name.len))
				break;
		if (i == n)
			spec_of_field(db, &s[n++], k);
		s[i].pk_pos = (int)j + 1;
	}
	return n;
}

int sl_table_from_record(struct sl_db *db, const struct dec_record *rec, const char *name,
                         size_t len, struct sl_table **out, struct sl_err *err)
{
	struct sl_colspec *s;
	size_t n;
	int rc;

	if (!rec->npk)
		return sl_fail(err, 0, "cannot create table \"%s\": the record carries no primary key",
		               name);
	s = malloc((rec->ncolumns + rec->npk) * sizeof *s);
	if (!s)
		return sl_fail(err, SQLITE_NOMEM, "cannot create table \"%s\": out of memory", name);
	n = record_specs(db, rec, s);
	rc = table_create(db, name, len, s, n, err);
	free(s);
	if (rc)
		return -1;
	rc = sl_table_get(db, name, len, out, err);
	if (rc == 0)
		return sl_fail(err, 0, "table \"%s\" vanished after its creation", name);
	return rc < 0 ? -1 : 0;
}

int sl_table_add_fields(struct sl_db *db, struct sl_table *t, const struct dec_field *f, size_t n,
                        struct sl_err *err)
{
	struct sl_colspec *s = malloc((n ? n : 1) * sizeof *s);
	size_t i;
	int rc;

	if (!s)
		return sl_fail(err, SQLITE_NOMEM, "cannot add columns to table \"%s\": out of memory",
		               t->name);
	for (i = 0; i < n; i++)
		spec_of_field(db, &s[i], &f[i]);
	rc = table_add_missing(db, t, s, n, true, err);
	free(s);
	return rc;
}

/* ---- public: ensure / clear ---- */

static int local_of(const char *schema, const char *table, char *buf, size_t *len,
                    struct sl_err *err)
{
	struct dec_str s = {schema, schema ? strlen(schema) : 0};
	struct dec_str t = {table, table ? strlen(table) : 0};

	return sl_local_name_checked(s, t, buf, len, err);
}

static int ensure_specs(struct sl_db *db, const char *name, size_t len,
                        const struct sl_colspec *s, size_t n, struct sl_err *err)
{
	struct sl_table *t;
	int r = sl_table_get(db, name, len, &t, err);

	if (r == 0) {
		if (table_create(db, name, len, s, n, err))
			return -1;
		r = sl_table_get(db, name, len, &t, err);
		if (r == 0)
			return sl_fail(err, 0, "table \"%s\" vanished after its creation", name);
	}
	if (r < 0)
		return -1;
	return table_add_missing(db, t, s, n, false, err);
}

int sl_ensure_table(struct sl_db *db, const char *schema, const char *table,
                    const struct sl_column *cols, size_t ncols, struct sl_err *err)
{
	char name[SL_NAME_MAX];
	struct sl_colspec *s;
	size_t len, i;
	int rc;

	if (local_of(schema, table, name, &len, err))
		return -1;
	s = malloc((ncols ? ncols : 1) * sizeof *s);
	if (!s)
		return sl_fail(err, SQLITE_NOMEM, "cannot create table \"%s\": out of memory", name);
	for (i = 0; i < ncols; i++) {
		s[i].name = cols[i].name ? cols[i].name : "";
		s[i].len = strlen(s[i].name);
		s[i].decl = sl_affinity(cols[i].pg_type, cols[i].typeoid);
		s[i].pk_pos = cols[i].pk_pos;
	}
	rc = ensure_specs(db, name, len, s, ncols, err);
	free(s);
	return rc;
}

int sl_clear_table(struct sl_db *db, const char *schema, const char *table, struct sl_err *err)
{
	char name[SL_NAME_MAX];
	struct sl_table *t;
	struct sl_buf b = {0};
	size_t len;
	int r, rc;

	if (local_of(schema, table, name, &len, err))
		return -1;
	r = sl_table_get(db, name, len, &t, err);
	if (r <= 0)
		return r;
	sl_buf_str(&b, "DELETE FROM ");
	sl_buf_ident(&b, t->name, t->name_len);
	rc = b.oom ? sl_fail(err, SQLITE_NOMEM, "cannot clear table \"%s\": out of memory", name)
	           : sl_exec(db, b.p, "cannot clear table", name, err);
	sl_buf_free(&b);
	return rc;
}
