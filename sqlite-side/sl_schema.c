/* sl_schema.c: local table names, the Postgres -> SQLite type mapping, the
 * per-table info cache (columns, their kinds, primary key) and the DDL that
 * creates synced tables and adds missing columns. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sl_int.h"

/* ---- string building ---- */

static void buf_grow(struct sl_buf *b, size_t add)
{
	size_t cap;
	char *p;

	if (b->oom || b->len + add + 1 <= b->cap)
		return;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + add + 1)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return;
	}
	b->p = p;
	b->cap = cap;
}

void sl_buf_put(struct sl_buf *b, const char *p, size_t n)
{
	buf_grow(b, n);
	if (b->oom)
		return;
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void sl_buf_str(struct sl_buf *b, const char *s)
{
	sl_buf_put(b, s, strlen(s));
}

/* Appends p as a double-quoted identifier, embedded quotes doubled. */
void sl_buf_ident(struct sl_buf *b, const char *p, size_t n)
{
	size_t i, start = 0;

	sl_buf_put(b, "\"", 1);
	for (i = 0; i < n; i++) {
		if (p[i] != '"')
			continue;
		sl_buf_put(b, p + start, i - start + 1);
		sl_buf_put(b, "\"", 1);
		start = i + 1;
	}
	sl_buf_put(b, p + start, n - start);
	sl_buf_put(b, "\"", 1);
}

void sl_buf_free(struct sl_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* ---- names ---- */

static unsigned char ascii_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* SQLite compares identifiers ASCII-case-insensitively; so do we. */
bool sl_name_eq(const char *a, size_t an, const char *b, size_t bn)
{
	size_t i;

	if (an != bn)
		return false;
	for (i = 0; i < an; i++)
		if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
			return false;
	return true;
}

static uint32_t name_hash(const char *p, size_t n)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ ascii_lower((unsigned char)p[i])) * 16777619u;
	return h;
}

static bool is_public(const char *s, size_t n)
{
	return n == 0 || (n == 6 && memcmp(s, "public", 6) == 0);
}

static size_t put_trunc(char *buf, size_t cap, size_t n, const char *p, size_t len)
{
	size_t room = cap - 1 - n;

	if (len > room)
		len = room;
	if (len)
		memcpy(buf + n, p, len);
	return n + len;
}

void sl_local_name(const char *schema, size_t schema_len, const char *table, size_t table_len,
                   char *buf, size_t cap)
{
	size_t n = 0;

	if (!cap)
		return;
	if (!is_public(schema, schema_len)) {
		n = put_trunc(buf, cap, n, schema, schema_len);
		n = put_trunc(buf, cap, n, "__", 2);
	}
	n = put_trunc(buf, cap, n, table, table_len);
	buf[n] = '\0';
}

/* sl_local_name into a SL_NAME_MAX buffer, refusing what cannot be a
 * table of ours: empty, too long, NUL bytes, the bridge's own prefix. */
int sl_local_name_checked(struct dec_str schema, struct dec_str table, char *buf, size_t *len,
                          struct sl_err *err)
{
	size_t need = table.len + (is_public(schema.p, schema.len) ? 0 : schema.len + 2);

	if (!table.len)
		return sl_fail(err, 0, "record has no table name");
	if (need >= SL_NAME_MAX)
		return sl_fail(err, 0, "table name \"%.*s...\" is too long",
		               (int)(table.len < 64 ? table.len : 64), table.p);
	sl_local_name(schema.p, schema.len, table.p, table.len, buf, SL_NAME_MAX);
	*len = need;
	if (strlen(buf) != need)
		return sl_fail(err, 0, "table name \"%s\" contains a nul byte", buf);
	if (need >= 10 && strncasecmp(buf, "_pgsqlite_", 10) == 0)
		return sl_fail(err, 0, "table \"%s\" collides with the bridge's own objects", buf);
	return 0;
}

/* ---- type mapping ---- */

static const char *affinity_by_oid(uint32_t oid)
{
	switch (oid) {
	case 16: /* bool */
	case 20: /* int8 */
	case 21: /* int2 */
	case 23: /* int4 */
	case 26: /* oid */
		return "INTEGER";
	case 700: /* float4 */
	case 701: /* float8 */
		return "REAL";
	case 17: /* bytea */
		return "BLOB";
	default:
		return "TEXT";
	}
}

static const struct {
	const char *name;
	const char *affinity;
} type_names[] = {
	{"smallint", "INTEGER"}, {"integer", "INTEGER"},  {"bigint", "INTEGER"},
	{"int2", "INTEGER"},     {"int4", "INTEGER"},     {"int8", "INTEGER"},
	{"int", "INTEGER"},      {"oid", "INTEGER"},      {"smallserial", "INTEGER"},
	{"serial", "INTEGER"},   {"bigserial", "INTEGER"}, {"serial2", "INTEGER"},
	{"serial4", "INTEGER"},  {"serial8", "INTEGER"},  {"boolean", "INTEGER"},
	{"bool", "INTEGER"},     {"real", "REAL"},        {"double precision", "REAL"},
	{"float4", "REAL"},      {"float8", "REAL"},      {"float", "REAL"},
	{"bytea", "BLOB"},
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The type name without blanks, a "pg_catalog." prefix or a "(typmod)". */
static void base_type(const char **pp, size_t *np)
{
	const char *p = *pp, *paren;
	size_t n = *np;

	while (n && is_space(*p))
		p++, n--;
	if (n > 11 && strncasecmp(p, "pg_catalog.", 11) == 0)
		p += 11, n -= 11;
	paren = memchr(p, '(', n);
	if (paren)
		n = (size_t)(paren - p);
	while (n && is_space(p[n - 1]))
		n--;
	*pp = p;
	*np = n;
}

const char *sl_affinity_n(const char *p, size_t n, uint32_t typeoid)
{
	size_t i;

	if (typeoid)
		return affinity_by_oid(typeoid);
	if (!p || memchr(p, '[', n)) /* arrays: Postgres text form */
		return "TEXT";
	base_type(&p, &n);
	for (i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
		if (strlen(type_names[i].name) == n && strncasecmp(type_names[i].name, p, n) == 0)
			return type_names[i].affinity;
	return "TEXT";
}

const char *sl_affinity(const char *pg_type, uint32_t typeoid)
{
	return sl_affinity_n(pg_type, pg_type ? strlen(pg_type) : 0, typeoid);
}

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

/* ---- table-info cache ---- */

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

static int table_reload(struct sl_db *db, struct sl_table *t, struct sl_err *err)
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
	return table_reload(db, t, err);
}

/* The cached info of a local table, read on first use: 1 found, 0 the
 * table does not exist (not cached), -1 error. */
int sl_table_get(struct sl_db *db, const char *name, size_t len, struct sl_table **out,
                 struct sl_err *err)
{
	uint32_t h = name_hash(name, len);
	struct sl_table **head = &db->tabs[h % SL_TAB_BUCKETS], *t;
	int r;

	for (t = *head; t; t = t->next) {
		if (t->hash != h || !sl_name_eq(t->name, t->name_len, name, len))
			continue;
		if (t->stale && table_reload(db, t, err))
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

/* ---- DDL ---- */

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
	if (table_reload(db, t, err))
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
	if (table_reload(db, t, err))
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
