/* sl_apply.c: the prepared-statement cache, keyed on (operation, local
 * table, exact column list) and bounded with clock eviction, and the apply
 * of insert / update / delete / truncate records through it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_int.h"

/* ---- the cache ---- */

void sl_stmts_init(struct sl_db *db)
{
	size_t i;

	for (i = 0; i < SL_STMT_BUCKETS; i++)
		db->bucket[i] = -1;
	for (i = 0; i < SL_STMT_CAP; i++)
		db->stmts[i].next = -1;
	db->nstmts = 0;
	db->hand = 0;
}

static void entry_free(struct sl_stmt *e)
{
	sqlite3_finalize(e->st);
	free(e->lens);
	free(e->names);
	free(e->kinds);
	free(e->hint);
	memset(e, 0, sizeof *e);
	e->next = -1;
}

static void entry_unlink(struct sl_db *db, int i)
{
	struct sl_stmt *e = &db->stmts[i];
	int *pp = &db->bucket[e->hash % SL_STMT_BUCKETS];

	while (*pp != i)
		pp = &db->stmts[*pp].next;
	*pp = e->next;
	entry_free(e);
	db->nstmts--;
}

void sl_stmts_invalidate(struct sl_db *db, const struct sl_table *t)
{
	int i;

	for (i = 0; i < SL_STMT_CAP; i++)
		if (db->stmts[i].st && db->stmts[i].tab == t)
			entry_unlink(db, i);
}

void sl_stmts_flush(struct sl_db *db)
{
	for (int i = 0; i < SL_STMT_CAP; i++)
		if (db->stmts[i].st)
			entry_unlink(db, i);
}

/* A free slot, evicting (finalizing) a not recently used entry if full. */
static int slot_take(struct sl_db *db)
{
	int i;

	if (db->nstmts < SL_STMT_CAP)
		for (i = 0; i < SL_STMT_CAP; i++)
			if (!db->stmts[i].st)
				return i;
	for (;;) {
		i = db->hand;
		db->hand = (db->hand + 1) % SL_STMT_CAP;
		if (!db->stmts[i].used) {
			entry_unlink(db, i);
			return i;
		}
		db->stmts[i].used = false;
	}
}

static uint32_t names_hash(const struct dec_field *f, size_t n)
{
	uint32_t h = 2166136261u;
	size_t i, k;

	for (i = 0; i < n; i++) {
		for (k = 0; k < f[i].name.len; k++)
			h = (h ^ (unsigned char)f[i].name.p[k]) * 16777619u;
		h = (h ^ 0xffu) * 16777619u; /* 0xff never occurs in UTF-8 */
	}
	return h;
}

static uint32_t key_hash(uint32_t nh, char op, const struct sl_table *t)
{
	uint64_t a = (uint64_t)(uintptr_t)t;
	uint32_t h = nh ^ (uint32_t)(a ^ (a >> 32)) ^ ((uint32_t)(unsigned char)op << 24);

	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	return h ^ (h >> 16);
}

static bool names_eq(const struct sl_stmt *e, const struct dec_field *f, size_t n)
{
	const char *p = e->names;
	size_t i;

	if (e->ncols != n)
		return false;
	for (i = 0; i < n; i++) {
		size_t len = e->lens[i];
		if (len != f[i].name.len || (len && memcmp(p, f[i].name.p, len) != 0))
			return false;
		p += len;
	}
	return true;
}

static struct sl_stmt *stmt_find(struct sl_db *db, uint32_t h, char op,
                                 const struct sl_table *t, const struct dec_field *f, size_t n)
{
	int i;

	for (i = db->bucket[h % SL_STMT_BUCKETS]; i >= 0; i = db->stmts[i].next) {
		struct sl_stmt *e = &db->stmts[i];
		if (e->hash == h && e->tab == t && e->op == op && names_eq(e, f, n))
			return e;
	}
	return NULL;
}

/* ---- building a statement ---- */

/* The list's local column indexes into idx; adds missing columns first. */
static int map_columns(struct sl_db *db, struct sl_table *t, const struct dec_field *f,
                       size_t n, size_t *idx, struct sl_err *err)
{
	size_t i;
	bool missing = false;

	for (i = 0; i < n; i++) {
		idx[i] = sl_col_find(t, f[i].name.p, f[i].name.len);
		missing |= idx[i] == SL_NONE;
	}
	if (!missing)
		return 0;
	if (sl_table_add_fields(db, t, f, n, err))
		return -1;
	for (i = 0; i < n; i++) {
		idx[i] = sl_col_find(t, f[i].name.p, f[i].name.len);
		if (idx[i] == SL_NONE)
			return sl_fail(err, 0, "column \"%.*s\" of table \"%s\" is still missing",
			               (int)f[i].name.len, f[i].name.p, t->name);
	}
	return 0;
}

static bool pk_listed(const struct sl_table *t, const size_t *idx, size_t n)
{
	size_t j, i;

	for (j = 0; j < t->npk; j++) {
		for (i = 0; i < n && idx[i] != t->pk[j]; i++)
			;
		if (i == n)
			return false;
	}
	return true;
}

static void sql_where(struct sl_buf *b, const struct sl_table *t, size_t first)
{
	char num[32];
	size_t j;

	sl_buf_str(b, " WHERE ");
	for (j = 0; j < t->npk; j++) {
		const struct sl_col *c = &t->cols[t->pk[j]];
		if (j)
			sl_buf_str(b, " AND ");
		sl_buf_ident(b, c->name, c->len);
		snprintf(num, sizeof num, " = ?%zu", first + j);
		sl_buf_str(b, num);
	}
}

static void sql_insert(struct sl_buf *b, const struct sl_table *t, const size_t *idx, size_t n)
{
	bool first = true;
	size_t i;

	sl_buf_str(b, "INSERT INTO ");
	sl_buf_ident(b, t->name, t->name_len);
	sl_buf_str(b, " (");
	for (i = 0; i < n; i++) {
		sl_buf_str(b, i ? ", " : "");
		sl_buf_ident(b, t->cols[idx[i]].name, t->cols[idx[i]].len);
	}
	sl_buf_str(b, ") VALUES (");
	for (i = 0; i < n; i++)
		sl_buf_str(b, i ? ", ?" : "?");
	sl_buf_str(b, ") ON CONFLICT (");
	for (i = 0; i < t->npk; i++) {
		sl_buf_str(b, i ? ", " : "");
		sl_buf_ident(b, t->cols[t->pk[i]].name, t->cols[t->pk[i]].len);
	}
	for (i = 0; i < n && t->cols[idx[i]].pk_pos > 0; i++)
		;
	if (i == n) { /* only key columns: nothing to update */
		sl_buf_str(b, ") DO NOTHING");
		return;
	}
	sl_buf_str(b, ") DO UPDATE SET ");
	for (i = 0; i < n; i++) {
		const struct sl_col *c = &t->cols[idx[i]];
		if (c->pk_pos > 0)
			continue;
		sl_buf_str(b, first ? "" : ", ");
		sl_buf_ident(b, c->name, c->len);
		sl_buf_str(b, " = excluded.");
		sl_buf_ident(b, c->name, c->len);
		first = false;
	}
}

static void sql_update(struct sl_buf *b, const struct sl_table *t, const size_t *idx, size_t n)
{
	size_t i;

	sl_buf_str(b, "UPDATE ");
	sl_buf_ident(b, t->name, t->name_len);
	sl_buf_str(b, " SET ");
	for (i = 0; i < n; i++) {
		sl_buf_str(b, i ? ", " : "");
		sl_buf_ident(b, t->cols[idx[i]].name, t->cols[idx[i]].len);
		sl_buf_str(b, " = ?");
	}
	sql_where(b, t, n + 1);
}

static void sql_delete(struct sl_buf *b, const struct sl_table *t, char op)
{
	sl_buf_str(b, "DELETE FROM ");
	sl_buf_ident(b, t->name, t->name_len);
	if (op == 'D')
		sql_where(b, t, 1);
}

static const char *op_what(char op)
{
	switch (op) {
	case 'I':
		return "cannot insert into table";
	case 'U':
		return "cannot update table";
	case 'D':
		return "cannot delete from table";
	default:
		return "cannot truncate table";
	}
}

static int sql_build(struct sl_buf *b, const struct sl_table *t, char op, const size_t *idx,
                     size_t n, struct sl_err *err)
{
	if (op != 'T' && !t->npk)
		return sl_fail(err, 0, "%s \"%s\": it has no primary key", op_what(op), t->name);
	if ((op == 'I' || op == 'U') && !n)
		return sl_fail(err, 0, "%s \"%s\": the record has no columns", op_what(op), t->name);
	if (op == 'I' && !pk_listed(t, idx, n))
		return sl_fail(err, 0, "%s \"%s\": the record lacks a primary key column",
		               op_what(op), t->name);
	if (op == 'I')
		sql_insert(b, t, idx, n);
	else if (op == 'U')
		sql_update(b, t, idx, n);
	else
		sql_delete(b, t, op);
	if (b->oom)
		return sl_fail(err, SQLITE_NOMEM, "%s \"%s\": out of memory", op_what(op), t->name);
	return 0;
}

/* Fills the entry's key and kinds; st is already prepared. */
static int entry_fill(struct sl_stmt *e, const struct sl_table *t, const struct dec_field *f,
                      const size_t *idx, size_t n)
{
	size_t i, total = 0;
	char *p;

	for (i = 0; i < n; i++)
		total += f[i].name.len;
	e->lens = malloc((n ? n : 1) * sizeof *e->lens);
	e->names = malloc(total ? total : 1);
	e->kinds = malloc(n ? n : 1);
	e->hint = calloc(t->npk ? t->npk : 1, sizeof *e->hint);
	if (!e->lens || !e->names || !e->kinds || !e->hint)
		return -1;
	for (p = e->names, i = 0; i < n; i++) {
		e->lens[i] = (uint32_t)f[i].name.len;
		if (f[i].name.len)
			memcpy(p, f[i].name.p, f[i].name.len);
		p += f[i].name.len;
		e->kinds[i] = t->cols[idx[i]].kind;
	}
	e->ncols = n;
	e->pk_complete = pk_listed(t, idx, n);
	return 0;
}

static struct sl_stmt *entry_add(struct sl_db *db, struct sl_table *t, char op, uint32_t h,
                                 const struct dec_field *f, const size_t *idx, size_t n,
                                 const struct sl_buf *sql, struct sl_err *err)
{
	sqlite3_stmt *st;
	struct sl_stmt *e;
	int i;

	if (sqlite3_prepare_v3(db->h, sql->p, (int)sql->len + 1, SQLITE_PREPARE_PERSISTENT, &st,
	                       NULL) != SQLITE_OK) {
		sl_fail_db(db, err, op_what(op), t->name);
		return NULL;
	}
	i = slot_take(db);
	e = &db->stmts[i];
	e->st = st;
	if (entry_fill(e, t, f, idx, n)) {
		entry_free(e);
		sl_fail(err, SQLITE_NOMEM, "%s \"%s\": out of memory", op_what(op), t->name);
		return NULL;
	}
	e->tab = t;
	e->hash = h;
	e->op = op;
	e->used = true;
	e->next = db->bucket[h % SL_STMT_BUCKETS];
	db->bucket[h % SL_STMT_BUCKETS] = i;
	db->nstmts++;
	return e;
}

static struct sl_stmt *stmt_make(struct sl_db *db, struct sl_table *t, char op, uint32_t nh,
                                 const struct dec_field *f, size_t n, struct sl_err *err)
{
	struct sl_buf sql = {0};
	struct sl_stmt *e = NULL;
	size_t *idx = malloc((n ? n : 1) * sizeof *idx);

	if (!idx) {
		sl_fail(err, SQLITE_NOMEM, "%s \"%s\": out of memory", op_what(op), t->name);
		return NULL;
	}
	/* Adding columns drops t's entries: hash only afterwards. */
	if (map_columns(db, t, f, n, idx, err) == 0 && sql_build(&sql, t, op, idx, n, err) == 0)
		e = entry_add(db, t, op, key_hash(nh, op, t), f, idx, n, &sql, err);
	sl_buf_free(&sql);
	free(idx);
	return e;
}

static struct sl_stmt *stmt_get(struct sl_db *db, struct sl_table *t, char op, uint32_t nh,
                                const struct dec_field *f, size_t n, struct sl_err *err)
{
	struct sl_stmt *e = stmt_find(db, key_hash(nh, op, t), op, t, f, n);

	if (!e)
		return stmt_make(db, t, op, nh, f, n, err);
	e->used = true;
	return e;
}

/* ---- running ---- */

/* Binds db->bv[0..nb), steps, resets; *changes gets sqlite3_changes(). */
static int run(struct sl_db *db, struct sl_stmt *e, size_t nb, int *changes,
               struct sl_err *err)
{
	int rc = -1;

	if (sl_bind_row(db, e->st, nb, e->tab->name, err) == 0) {
		if (sqlite3_step(e->st) == SQLITE_DONE)
			rc = 0;
		else
			sl_fail_db(db, err, op_what(e->op), e->tab->name);
	}
	if (changes)
		*changes = sqlite3_changes(db->h);
	sqlite3_reset(e->st);
	sqlite3_clear_bindings(e->st);
	return rc;
}

static int nomem(const struct sl_table *t, struct sl_err *err)
{
	return sl_fail(err, SQLITE_NOMEM, "cannot apply to table \"%s\": out of memory", t->name);
}

static int run_insert(struct sl_db *db, struct sl_stmt *e, const struct dec_field *f,
                      struct sl_err *err)
{
	size_t i;

	if (sl_bv_reserve(db, e->ncols))
		return nomem(e->tab, err);
	for (i = 0; i < e->ncols; i++) {
		db->bv[i].f = &f[i];
		db->bv[i].kind = e->kinds[i];
	}
	return run(db, e, e->ncols, NULL, err);
}

static const struct dec_field *field_find(const struct dec_field *f, size_t n,
                                          const struct sl_col *c, uint32_t *hint)
{
	size_t i = *hint;

	if (i < n && sl_name_eq(f[i].name.p, f[i].name.len, c->name, c->len))
		return &f[i];
	for (i = 0; i < n; i++)
		if (sl_name_eq(f[i].name.p, f[i].name.len, c->name, c->len)) {
			*hint = (uint32_t)i;
			return &f[i];
		}
	return NULL;
}

/* Binds the old key after the first nb values: from identity when the
 * record carries it, else from the new values. */
static int key_values(struct sl_db *db, struct sl_stmt *e, const struct dec_record *rec,
                      size_t nb, struct sl_err *err)
{
	const struct sl_table *t = e->tab;
	size_t j;

	if (sl_bv_reserve(db, nb + t->npk))
		return nomem(t, err);
	for (j = 0; j < t->npk; j++) {
		const struct sl_col *c = &t->cols[t->pk[j]];
		const struct dec_field *k = NULL;
		if (rec->nidentity)
			k = field_find(rec->identity, rec->nidentity, c, &e->hint[j]);
		if (!k)
			k = field_find(rec->columns, rec->ncolumns, c, &e->hint[j]);
		if (!k)
			return sl_fail(err, 0, "%s \"%s\": the record lacks key column \"%s\"",
			               op_what(e->op), t->name, c->name);
		db->bv[nb + j].f = k;
		db->bv[nb + j].kind = c->kind;
	}
	return 0;
}

static int apply_insert(struct sl_db *db, struct sl_table *t, const struct dec_record *rec,
                        struct sl_err *err)
{
	uint32_t nh = names_hash(rec->columns, rec->ncolumns);
	struct sl_stmt *e = stmt_get(db, t, 'I', nh, rec->columns, rec->ncolumns, err);

	return e ? run_insert(db, e, rec->columns, err) : -1;
}

/* Sets the listed columns only (unchanged TOAST values are not sent);
 * a missing row is inserted unless `existing_only`. */
static int apply_update(struct sl_db *db, struct sl_table *t, const struct dec_record *rec,
                        bool existing_only, struct sl_err *err)
{
	uint32_t nh = names_hash(rec->columns, rec->ncolumns);
	struct sl_stmt *e = stmt_get(db, t, 'U', nh, rec->columns, rec->ncolumns, err);
	int changes = 0;
	size_t i;

	if (!e || key_values(db, e, rec, e->ncols, err))
		return -1;
	for (i = 0; i < e->ncols; i++) {
		db->bv[i].f = &rec->columns[i];
		db->bv[i].kind = e->kinds[i];
	}
	if (run(db, e, e->ncols + t->npk, &changes, err))
		return -1;
	if (changes > 0 || existing_only)
		return 0;
	e = stmt_get(db, t, 'I', nh, rec->columns, rec->ncolumns, err);
	return e ? run_insert(db, e, rec->columns, err) : -1;
}

static int apply_delete(struct sl_db *db, struct sl_table *t, const struct dec_record *rec,
                        struct sl_err *err)
{
	struct sl_stmt *e = stmt_get(db, t, 'D', names_hash(NULL, 0), NULL, 0, err);

	if (!e || key_values(db, e, rec, 0, err))
		return -1;
	return run(db, e, t->npk, NULL, err);
}

static int apply_truncate(struct sl_db *db, struct sl_table *t, struct sl_err *err)
{
	struct sl_stmt *e = stmt_get(db, t, 'T', names_hash(NULL, 0), NULL, 0, err);

	return e ? run(db, e, 0, NULL, err) : -1;
}

static int apply_named(struct sl_db *db, const struct dec_record *rec, const char *name,
                       size_t len, struct sl_err *err)
{
	struct sl_table *t;
	int r = sl_table_get(db, name, len, &t, err);

	if (r < 0)
		return -1;
	if (r == 0 && (rec->action == DEC_DELETE || rec->action == DEC_TRUNCATE))
		return 0; /* nothing to remove */
	if (r == 0 && sl_table_from_record(db, rec, name, len, &t, err))
		return -1;
	switch (rec->action) {
	case DEC_INSERT:
		return apply_insert(db, t, rec, err);
	case DEC_UPDATE:
		return apply_update(db, t, rec, false, err);
	case DEC_DELETE:
		return apply_delete(db, t, rec, err);
	default:
		return apply_truncate(db, t, err);
	}
}

static bool row_change(const struct dec_record *rec)
{
	return rec->action == DEC_INSERT || rec->action == DEC_UPDATE ||
	       rec->action == DEC_DELETE || rec->action == DEC_TRUNCATE;
}

int sl_apply(struct sl_db *db, const struct dec_record *rec, struct sl_err *err)
{
	char name[SL_NAME_MAX];
	size_t len;

	if (!row_change(rec))
		return sl_fail(err, 0, "cannot apply a record of action %d: not a row change",
		               (int)rec->action);
	if (sl_local_name_checked(rec->schema, rec->table, name, &len, err))
		return -1;
	return apply_named(db, rec, name, len, err);
}

int sl_apply_to(struct sl_db *db, const struct dec_record *rec, const char *local,
                struct sl_err *err)
{
	if (!row_change(rec))
		return sl_fail(err, 0, "cannot apply a record of action %d: not a row change",
		               (int)rec->action);
	return apply_named(db, rec, local, strlen(local), err);
}

void sl_schema_changed(struct sl_db *db)
{
	sl_stmts_flush(db);
	sl_tables_flush(db);
}

int sl_update_existing(struct sl_db *db, const struct dec_record *rec, struct sl_err *err)
{
	char name[SL_NAME_MAX];
	struct sl_table *t;
	size_t len;
	int r;

	if (rec->action != DEC_UPDATE)
		return sl_fail(err, 0, "cannot update existing rows from a record of action %d",
		               (int)rec->action);
	if (sl_local_name_checked(rec->schema, rec->table, name, &len, err))
		return -1;
	r = sl_table_get(db, name, len, &t, err);
	if (r <= 0)
		return r; /* no table: no rows to update */
	return apply_update(db, t, rec, true, err);
}
