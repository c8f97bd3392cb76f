/* push.c: local -> remote.  Reads _pgsqlite_changes in batches, folds each
 * row's changes into one net change (insert, update of the changed
 * columns, delete), and pushes a batch as one Postgres transaction under
 * the bridge's replication origin, its statements pipelined.  Updates and
 * deletes are guarded by the old image: a statement that misses is a
 * conflict, settled by conflict.c.  The batch's last change-log seq
 * commits with it as the origin's progress, so a crash between that commit
 * and the local mark pushes nothing twice (push_reconcile). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <stdint.h>
#include <unistd.h>

#include "br.h"
#include "log.h"

#define PUSH_BATCH 20000
#define COMMIT_TS_COLUMN "_pgsb_commit_ts"

/* What happened to one row of a batch. */
enum outcome {
	OUT_PUSHED,   /* the guarded statement applied */
	OUT_LOCAL,    /* conflict: the local version was forced */
	OUT_REMOTE,   /* conflict: the Postgres version stays, and comes to SQLite */
	OUT_MERGED,   /* conflict: a merged row went to both sides */
	OUT_NOTHING,  /* no net change, or deleted on both sides */
};

/* One row's net change in a batch. */
struct entry {
	const struct br_table *t;
	char op;                 /* net change: 'I', 'U', 'D'; 0 = none */
	const char *key;         /* pk JSON, as the change log writes it */
	const char *base;        /* row before the batch (NULL: did not exist) */
	const char *final;       /* row after the batch (NULL: deleted) */
	const char *changed_at;  /* time of its last change */
	enum outcome outcome;
	bool sent;               /* its guarded statement went to Postgres */
	PGresult *res;           /* the result holding its RETURNING row */
	int row;                 /* that row in res; -1: the statement missed */
	bool owns_res;           /* res is this entry's own (else the batch's) */
	PGresult *remote;        /* conflicts: the Postgres row (0 or 1 rows) */
	char *merged;            /* OUT_MERGED: the merged row */
	struct entry *next_same; /* fold: next entry in the same hash bucket */
};

struct batch {
	struct sl_change *ch;
	size_t nch;
	struct entry *e;
	size_t ne;
	int64_t last_seq;
	uint64_t commit_lsn;     /* end LSN of the push's commit in Postgres */
	uint64_t conflicts;
	struct entry **buckets;  /* fold: hash index over (table, key) */
	size_t nbuckets;
	PGresult *shared[64];    /* results of bulk inserts, shared by entries */
	int nshared;
};

/* Sets an entry's own result (one statement, at most one row). */
static void entry_own_result(struct entry *e, PGresult *r)
{
	if (e->owns_res)
		PQclear(e->res);
	e->res = r;
	e->owns_res = r != NULL;
	e->row = r && PQntuples(r) > 0 ? 0 : -1;
}

/* A growing list of parameter strings freed together. */
struct params {
	char *v[4096];
	int n;
	bool overflow;
};

static void params_add(struct params *p, char *owned)
{
	if (p->n >= (int)(sizeof p->v / sizeof *p->v)) {
		p->overflow = true;
		free(owned);
		return;
	}
	p->v[p->n++] = owned;
}

static void params_free(struct params *p)
{
	for (int i = 0; i < p->n; i++)
		free(p->v[i]);
	p->n = 0;
}

/* Remembers the SQLSTATE of a failed statement (the first of a batch). */
static void note_sqlstate(struct pgsb *b, const PGresult *r)
{
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	if (st && !b->push.sqlstate[0])
		snprintf(b->push.sqlstate, sizeof b->push.sqlstate, "%s", st);
}

static const struct br_table *table_by_local(struct pgsb *b, const char *local)
{
	for (size_t i = 0; i < b->ntables; i++)
		if (strcmp(b->tables[i].local, local) == 0)
			return &b->tables[i];
	return NULL;
}

static const struct sl_column *pgcol(const struct br_table *t, const char *name, size_t len)
{
	for (size_t i = 0; i < t->npgcols; i++)
		if (strlen(t->pgcols[i].name) == len && memcmp(t->pgcols[i].name, name, len) == 0)
			return &t->pgcols[i];
	return NULL;
}

/* The Postgres input text of a row-image field (malloc'd; NULL = SQL NULL). */
static char *input_text(const struct dec_field *f, const struct sl_column *c, bool pg_form)
{
	char *out = NULL;

	if (f->kind == DEC_NULL)
		return NULL;
	if (f->kind == DEC_TRUE || f->kind == DEC_FALSE)
		return strdup(f->kind == DEC_TRUE ? "true" : "false");
	if (c->typeoid == 17 && !pg_form &&
	    asprintf(&out, "\\x%.*s", (int)f->value.len, f->value.p) >= 0)
		return out;
	return strndup(f->value.p, f->value.len);
}

/* ---- folding a batch: one net change per row ---- */

static size_t bucket_of(const struct batch *bt, const struct br_table *t, const char *key)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uintptr_t)t;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return (size_t)(h % bt->nbuckets);
}

static struct entry *find_entry(struct batch *bt, const struct br_table *t, const char *key)
{
	for (struct entry *e = bt->buckets[bucket_of(bt, t, key)]; e; e = e->next_same)
		if (e->t == t && strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

static void fold_change(struct batch *bt, const struct br_table *t, const struct sl_change *c)
{
	struct entry *e = find_entry(bt, t, c->pk);

	if (!e) {
		size_t k = bucket_of(bt, t, c->pk);
		e = &bt->e[bt->ne++];
		memset(e, 0, sizeof *e);
		e->t = t;
		e->key = c->pk;
		e->base = c->op == 'I' ? NULL : c->old_row;
		e->row = -1;
		e->next_same = bt->buckets[k];
		bt->buckets[k] = e;
	}
	e->final = c->op == 'D' ? NULL : c->new_row;
	e->changed_at = c->changed_at;
	e->op = e->base ? (e->final ? 'U' : 'D') : (e->final ? 'I' : 0);
}

static int fold(struct pgsb *b, struct batch *bt)
{
	bt->e = calloc(bt->nch, sizeof *bt->e);
	bt->nbuckets = 2 * bt->nch + 1;
	bt->buckets = calloc(bt->nbuckets, sizeof *bt->buckets);
	if (!bt->e || !bt->buckets)
		return -1;
	for (size_t i = 0; i < bt->nch; i++) {
		const struct br_table *t = table_by_local(b, bt->ch[i].table);
		if (t && t->direction != CFG_DIRECTION_PULL)
			fold_change(bt, t, &bt->ch[i]);
		bt->last_seq = bt->ch[i].seq;
	}
	return 0;
}

/* ---- SQL for one entry ---- */

static void sql_key_where(FILE *m, const struct br_table *t, struct dec_field *f, size_t n,
                          struct params *p)
{
	int first = 1;

	for (size_t i = 0; i < n; i++) {
		const struct sl_column *c = pgcol(t, f[i].name.p, f[i].name.len);
		char q[600];
		if (!c || c->pk_pos == 0)
			continue;
		pgc_quote_ident(c->name, q, sizeof q);
		params_add(p, input_text(&f[i], c, false));
		fprintf(m, "%s%s = $%d::%s", first ? " WHERE " : " AND ", q, p->n, c->pg_type);
		first = 0;
	}
}

/* Guard: every column of the old image still holds its value. */
static void sql_base_guard(FILE *m, const struct br_table *t, struct dec_field *f, size_t n,
                           struct params *p)
{
	for (size_t i = 0; i < n; i++) {
		const struct sl_column *c = pgcol(t, f[i].name.p, f[i].name.len);
		char q[600];
		if (!c)
			continue;
		pgc_quote_ident(c->name, q, sizeof q);
		params_add(p, input_text(&f[i], c, false));
		fprintf(m, " AND %s::text IS NOT DISTINCT FROM $%d::%s::text", q, p->n, c->pg_type);
	}
}

/* The Postgres column of a field an insert sends; NULL when the field is
 * not sent (no such column, or a NULL where Postgres has a default: the
 * local app left it out, so the server's default applies). */
static const struct sl_column *insert_col(const struct br_table *t, const struct dec_field *f,
                                          bool force)
{
	const struct sl_column *c = pgcol(t, f->name.p, f->name.len);

	if (c && !force && f->kind == DEC_NULL && c->has_default)
		return NULL;
	return c;
}

/* INSERT ... ; with `force`, an existing row is overwritten. */
static void sql_insert(FILE *m, const struct br_table *t, struct dec_field *f, size_t n,
                       struct params *p, bool force, bool pg_form)
{
	char q[600];
	int first = 1;

	fprintf(m, "INSERT INTO %s (", t->qualified);
	for (size_t i = 0; i < n; i++) {
		const struct sl_column *c = insert_col(t, &f[i], force);
		if (!c)
			continue;
		pgc_quote_ident(c->name, q, sizeof q);
		fprintf(m, "%s%s", first ? "" : ", ", q);
		first = 0;
	}
	fputs(") VALUES (", m);
	first = 1;
	for (size_t i = 0; i < n; i++) {
		const struct sl_column *c = insert_col(t, &f[i], force);
		if (!c)
			continue;
		params_add(p, input_text(&f[i], c, pg_form));
		fprintf(m, "%s$%d::%s", first ? "" : ", ", p->n, c->pg_type);
		first = 0;
	}
	fputs(") ON CONFLICT (", m);
	first = 1;
	for (size_t i = 0; i < t->npgcols; i++)
		for (size_t k = 0; k < t->npgcols; k++)
			if (t->pgcols[k].pk_pos == (int)i + 1) {
				pgc_quote_ident(t->pgcols[k].name, q, sizeof q);
				fprintf(m, "%s%s", first ? "" : ", ", q);
				first = 0;
			}
	if (!force) {
		fputs(") DO NOTHING RETURNING *", m);
		return;
	}
	fputs(") DO UPDATE SET ", m);
	first = 1;
	for (size_t i = 0; i < n; i++) {
		const struct sl_column *c = pgcol(t, f[i].name.p, f[i].name.len);
		if (!c)
			continue;
		pgc_quote_ident(c->name, q, sizeof q);
		fprintf(m, "%s%s = EXCLUDED.%s", first ? "" : ", ", q, q);
		first = 0;
	}
	fputs(" RETURNING *", m);
}

static bool field_equal(const struct dec_field *a, const struct dec_field *b)
{
	return a->kind == b->kind && a->value.len == b->value.len &&
	       (a->value.len == 0 || memcmp(a->value.p, b->value.p, a->value.len) == 0);
}

static const struct dec_field *field_named(struct dec_field *f, size_t n, struct dec_str name)
{
	for (size_t i = 0; i < n; i++)
		if (f[i].name.len == name.len && memcmp(f[i].name.p, name.p, name.len) == 0)
			return &f[i];
	return NULL;
}

/* UPDATE of the changed columns, guarded by the old image.  Returns the
 * number of columns set (0: nothing to push). */
static int sql_update(FILE *m, const struct br_table *t, struct dec_field *bf, size_t bn,
                      struct dec_field *ff, size_t fn, struct params *p)
{
	char q[600];
	int set = 0;

	fprintf(m, "UPDATE %s SET ", t->qualified);
	for (size_t i = 0; i < fn; i++) {
		const struct sl_column *c = pgcol(t, ff[i].name.p, ff[i].name.len);
		const struct dec_field *old = field_named(bf, bn, ff[i].name);
		if (!c || (old && field_equal(old, &ff[i])))
			continue;
		pgc_quote_ident(c->name, q, sizeof q);
		params_add(p, input_text(&ff[i], c, false));
		fprintf(m, "%s%s = $%d::%s", set ? ", " : "", q, p->n, c->pg_type);
		set++;
	}
	sql_key_where(m, t, bf, bn, p);
	sql_base_guard(m, t, bf, bn, p);
	fputs(" RETURNING *", m);
	return set;
}

static int parse_image(struct dec_parser *dp, const char *json, struct dec_field **f, size_t *n)
{
	struct dec_error e;

	*f = NULL;
	*n = 0;
	return json ? dec_parse_object(dp, json, strlen(json), f, n, &e) : 0;
}

/* Builds the guarded statement of an entry into *sql (malloc'd).  Returns 1
 * with a statement, 0 when there is nothing to push, -1 on error. */
static int entry_sql(struct pgsb *b, struct entry *e, char **sql, struct params *p)
{
	struct dec_field *bf, *ff;
	size_t bn, fn, len;
	int rc = 1;

	if (!e->op)
		return 0;
	if (parse_image(&b->push.base_dec, e->base, &bf, &bn) ||
	    parse_image(&b->push.final_dec, e->final, &ff, &fn))
		return -1;
	FILE *m = open_memstream(sql, &len);
	if (e->op == 'I') {
		sql_insert(m, e->t, ff, fn, p, false, false);
	} else if (e->op == 'U') {
		rc = sql_update(m, e->t, bf, bn, ff, fn, p) > 0;
	} else {
		fprintf(m, "DELETE FROM %s", e->t->qualified);
		sql_key_where(m, e->t, bf, bn, p);
		sql_base_guard(m, e->t, bf, bn, p);
		fputs(" RETURNING *", m);
	}
	fclose(m);
	if (rc <= 0 || p->overflow) {
		free(*sql);
		*sql = NULL;
	}
	return p->overflow ? -1 : rc;
}

/* ---- bulk inserts: COPY into a stage table, one INSERT ... SELECT ---- */

#define BULK_MIN 16 /* fewer inserts of one shape go one statement each */

/* Which Postgres columns an insert of this entry sends ('1' / '0' per
 * column of t->pgcols): entries with the same shape share a bulk insert. */
static int insert_shape(struct pgsb *b, const struct entry *e, char *shape)
{
	struct dec_field *f;
	size_t n;

	memset(shape, '0', e->t->npgcols);
	if (parse_image(&b->push.final_dec, e->final, &f, &n))
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct sl_column *c = insert_col(e->t, &f[i], false);
		if (c)
			shape[c - e->t->pgcols] = '1';
	}
	return 0;
}

static int ensure_stage(struct pgsb *b, struct br_table *t, char *err, size_t cap)
{
	char sql[900];

	if (t->stage_ready)
		return 0;
	snprintf(sql, sizeof sql, "CREATE TEMP TABLE IF NOT EXISTS pgsb_stage_%d ON COMMIT DELETE ROWS "
	         "AS SELECT *, 0::int AS pgsb_ord FROM %s WITH NO DATA", (int)(t - b->tables), t->qualified);
	if (pgc_exec_ok(b->push.conn, sql, err, cap))
		return -1;
	t->stage_ready = true;
	return 0;
}

/* The reusable COPY line of the push side. */
static bool line_room(struct push *p, size_t len, size_t more)
{
	if (len + more <= p->line_cap)
		return true;
	size_t cap = (len + more) * 2 + 256;
	char *grown = realloc(p->line, cap);
	if (!grown)
		return false;
	p->line = grown;
	p->line_cap = cap;
	return true;
}

/* Appends a field's Postgres input text in COPY text form. */
static bool copy_value(struct push *p, size_t *len, const struct dec_field *f,
                       const struct sl_column *c)
{
	if (!line_room(p, *len, 2 * (f ? f->value.len : 0) + 8))
		return false;
	char *o = p->line + *len;
	if (!f || f->kind == DEC_NULL) {
		memcpy(o, "\\N", 2);
		*len += 2;
		return true;
	}
	if (f->kind == DEC_TRUE || f->kind == DEC_FALSE) {
		*len += (size_t)sprintf(o, "%s", f->kind == DEC_TRUE ? "true" : "false");
		return true;
	}
	size_t k = 0;
	if (c->typeoid == 17) /* bytea: the change log holds bare hex */
		o[k++] = '\\', o[k++] = '\\', o[k++] = 'x';
	for (size_t i = 0; i < f->value.len; i++) {
		char ch = f->value.p[i];
		const char *esc = ch == '\\' ? "\\\\" : ch == '\t' ? "\\t" : ch == '\n' ? "\\n"
		                  : ch == '\r' ? "\\r" : NULL;
		if (esc)
			o[k++] = esc[0], o[k++] = esc[1];
		else
			o[k++] = ch;
	}
	*len += k;
	return true;
}

/* One COPY line: the shape's columns of the entry's new row, then (for
 * the stage) its index in the batch. Returns the line's length, 0 on
 * error. */
static size_t copy_line(struct pgsb *b, const struct entry *e, const char *shape, size_t ord,
                        bool with_ord)
{
	struct dec_field *f;
	size_t n, len = 0;

	if (parse_image(&b->push.final_dec, e->final, &f, &n))
		return 0;
	for (size_t k = 0; k < e->t->npgcols; k++) {
		if (shape[k] != '1')
			continue;
		const struct dec_field *fv = NULL;
		for (size_t i = 0; i < n && !fv; i++)
			if (pgcol(e->t, f[i].name.p, f[i].name.len) == &e->t->pgcols[k])
				fv = &f[i];
		if (!copy_value(&b->push, &len, fv, &e->t->pgcols[k]) || !line_room(&b->push, len, 1))
			return 0;
		b->push.line[len++] = '\t';
	}
	if (!line_room(&b->push, len, 24))
		return 0;
	if (with_ord)
		len += (size_t)sprintf(b->push.line + len, "%zu\n", ord);
	else
		b->push.line[len - 1] = '\n'; /* the last tab ends the line */
	return len;
}

static void column_list(FILE *m, const struct br_table *t, const char *shape, const char *prefix)
{
	char q[600];
	int first = 1;

	for (size_t k = 0; k < t->npgcols; k++) {
		if (shape[k] != '1')
			continue;
		pgc_quote_ident(t->pgcols[k].name, q, sizeof q);
		fprintf(m, "%s%s%s", first ? "" : ", ", prefix, q);
		first = 0;
	}
}

/* COPY the group's rows into the stage (with_ord) or straight into the
 * table.  Returns 0, or -1 with err and *sqlstate set. */
static int copy_rows(struct pgsb *b, struct batch *bt, const struct br_table *t,
                     const char *shape, const size_t *idx, size_t n, bool with_ord,
                     char *sqlstate, char *err, size_t cap)
{
	char *sql = NULL;
	size_t len, llen;
	FILE *m = open_memstream(&sql, &len);
	int rc = 0;

	if (with_ord)
		fprintf(m, "COPY pgsb_stage_%d (", (int)(t - b->tables));
	else
		fprintf(m, "COPY %s (", t->qualified);
	column_list(m, t, shape, "");
	fputs(with_ord ? ", pgsb_ord) FROM STDIN" : ") FROM STDIN", m);
	fclose(m);
	PGresult *r = PQexec(b->push.conn, sql);
	free(sql);
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		PQclear(r);
		pgc_error_text(b->push.conn, err, cap);
		return -1;
	}
	PQclear(r);
	for (size_t i = 0; i < n && rc == 0; i++) {
		llen = copy_line(b, &bt->e[idx[i]], shape, idx[i], with_ord);
		rc = llen == 0 || PQputCopyData(b->push.conn, b->push.line, (int)llen) != 1 ? -1 : 0;
	}
	PQputCopyEnd(b->push.conn, rc ? "bad row image" : NULL);
	r = PQgetResult(b->push.conn);
	sqlstate[0] = '\0';
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		snprintf(sqlstate, 6, "%s", st ? st : "");
		if (strcmp(sqlstate, "23505") != 0 || !with_ord)
			note_sqlstate(b, r);
		rc = -1;
		pgc_error_text(b->push.conn, err, cap);
	}
	PQclear(r);
	while ((r = PQgetResult(b->push.conn)) != NULL)
		PQclear(r);
	return rc;
}

/* The key columns, quoted, comma-separated. */
static void key_list(FILE *m, const struct br_table *t)
{
	char q[600];
	int first = 1;

	for (size_t k = 0; k < t->npgcols; k++)
		if (t->pgcols[k].pk_pos > 0) {
			pgc_quote_ident(t->pgcols[k].name, q, sizeof q);
			fprintf(m, "%s%s", first ? "" : ", ", q);
			first = 0;
		}
}

/* INSERT ... SELECT from the stage; the rows that went in come back with
 * their batch index, the rest met an existing key (conflicts).  Only where
 * the server computes values is the whole row worth reading back; else the
 * key tells inserted rows from conflicts. */
static int insert_from_stage(struct pgsb *b, struct batch *bt, const struct br_table *t,
                             const char *shape, const size_t *idx, size_t n, char *err,
                             size_t cap)
{
	char *sql = NULL;
	size_t len;
	int stage = (int)(t - b->tables);
	FILE *m = open_memstream(&sql, &len);

	fprintf(m, "WITH ins AS (INSERT INTO %s (", t->qualified);
	column_list(m, t, shape, "");
	fputs(") SELECT ", m);
	column_list(m, t, shape, "");
	fprintf(m, " FROM pgsb_stage_%d ORDER BY pgsb_ord ON CONFLICT DO NOTHING RETURNING ", stage);
	if (t->server_computes)
		fputs("*", m);
	else
		key_list(m, t);
	fprintf(m, ") SELECT s.pgsb_ord%s FROM ins JOIN pgsb_stage_%d s USING (",
	        t->server_computes ? ", ins.*" : "", stage);
	key_list(m, t);
	fputs(")", m);
	fclose(m);
	PGresult *r = PQexec(b->push.conn, sql);
	free(sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || bt->nshared >= 64) {
		pgc_error_text(b->push.conn, err, cap);
		PQclear(r);
		return -1;
	}
	bt->shared[bt->nshared++] = r;
	for (size_t i = 0; i < n; i++)
		bt->e[idx[i]].sent = true; /* row stays -1 unless it came back */
	for (int i = 0; i < PQntuples(r); i++) {
		size_t ord = (size_t)strtoul(PQgetvalue(r, i, 0), NULL, 10);
		if (ord < bt->ne) {
			bt->e[ord].res = r;
			bt->e[ord].row = i;
		}
	}
	return 0;
}

/* Optimistic: COPY straight into the table, inside a savepoint.  Returns
 * 0 when every row went in, 1 when some key exists already (rolled back:
 * the stage finds which), -1 on other errors. */
static int copy_direct(struct pgsb *b, struct batch *bt, const struct br_table *t,
                       const char *shape, const size_t *idx, size_t n, char *err, size_t cap)
{
	char sqlstate[8];

	if (pgc_exec_ok(b->push.conn, "SAVEPOINT pgsb_bulk", err, cap))
		return -1;
	if (copy_rows(b, bt, t, shape, idx, n, false, sqlstate, err, cap) == 0) {
		for (size_t i = 0; i < n; i++) {
			bt->e[idx[i]].sent = true;
			bt->e[idx[i]].row = 0; /* applied; the server computes nothing to read back */
		}
		return pgc_exec_ok(b->push.conn, "RELEASE SAVEPOINT pgsb_bulk", err, cap);
	}
	if (strcmp(sqlstate, "23505") != 0)
		return -1;
	err[0] = '\0';
	return pgc_exec_ok(b->push.conn, "ROLLBACK TO SAVEPOINT pgsb_bulk", err, cap) ? -1 : 1;
}

/* Shapes of a batch: one row of `stride` bytes per entry. */
struct shapes {
	char *s;
	size_t stride;
};

static const char *shape_of(const struct shapes *sh, size_t i)
{
	return sh->s + i * sh->stride;
}

static bool same_group(const struct batch *bt, const struct shapes *sh, size_t i, size_t from)
{
	return bt->e[i].t == bt->e[from].t && bt->e[i].op == 'I' &&
	       memcmp(shape_of(sh, i), shape_of(sh, from), bt->e[from].t->npgcols) == 0;
}

/* The inserts of one table with one shape, from entry `from` on; fewer
 * than BULK_MIN are left to the per-row statements. */
static int bulk_group(struct pgsb *b, struct batch *bt, size_t from, const struct shapes *sh,
                      size_t *idx, char *err, size_t cap)
{
	struct br_table *t = (struct br_table *)bt->e[from].t;
	size_t n = 0;

	for (size_t i = from; i < bt->ne; i++)
		if (!bt->e[i].sent && same_group(bt, sh, i, from))
			idx[n++] = i;
	if (n < BULK_MIN)
		return 0;
	int direct = t->server_computes ? 1 : copy_direct(b, bt, t, shape_of(sh, from), idx, n, err, cap);
	if (direct <= 0)
		return direct;
	char sqlstate[8];
	if (ensure_stage(b, t, err, cap) ||
	    copy_rows(b, bt, t, shape_of(sh, from), idx, n, true, sqlstate, err, cap))
		return -1;
	return insert_from_stage(b, bt, t, shape_of(sh, from), idx, n, err, cap);
}

static int bulk_inserts(struct pgsb *b, struct batch *bt, char *err, size_t cap)
{
	size_t maxw = 1, ninserts = 0;

	for (size_t i = 0; i < bt->ne; i++) {
		maxw = bt->e[i].t->npgcols > maxw ? bt->e[i].t->npgcols : maxw;
		ninserts += bt->e[i].op == 'I';
	}
	if (ninserts < BULK_MIN)
		return 0;
	struct shapes sh = {calloc(bt->ne, maxw), maxw};
	size_t *idx = calloc(bt->ne, sizeof *idx);
	bool *tried = calloc(bt->ne, sizeof *tried);
	int rc = sh.s && idx && tried ? 0 : -1;

	for (size_t i = 0; i < bt->ne && rc == 0; i++)
		if (bt->e[i].op == 'I')
			rc = insert_shape(b, &bt->e[i], sh.s + i * sh.stride);
	for (size_t i = 0; i < bt->ne && rc == 0; i++) {
		if (bt->e[i].op != 'I' || bt->e[i].sent || tried[i])
			continue;
		rc = bulk_group(b, bt, i, &sh, idx, err, cap);
		for (size_t k = i; k < bt->ne; k++)
			tried[k] = tried[k] || same_group(bt, &sh, k, i);
	}
	free(sh.s);
	free(idx);
	free(tried);
	return rc;
}

/* ---- sending a batch in one pipeline ---- */

/* Sends what libpq holds, reading results meanwhile so neither side
 * blocks on a full socket. */
static int flush_pipeline(PGconn *c)
{
	int rc;

	while ((rc = PQflush(c)) == 1) {
		struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN | POLLOUT};
		if (poll(&pfd, 1, 10000) <= 0)
			return -1;
		if ((pfd.revents & POLLIN) && !PQconsumeInput(c))
			return -1;
	}
	return rc;
}

static int send_query(PGconn *c, const char *sql, struct params *p)
{
	int ok = PQsendQueryParams(c, sql, p ? p->n : 0, NULL,
	                           p ? (const char *const *)p->v : NULL, NULL, NULL, 0);
	return ok && flush_pipeline(c) == 0 ? 0 : -1;
}

static int send_statements(struct pgsb *b, struct batch *bt, bool *sent)
{
	PGconn *c = b->push.conn;
	struct params p = {0};

	for (size_t i = 0; i < bt->ne; i++) {
		char *sql = NULL;
		if (bt->e[i].sent)
			continue; /* went in a bulk insert */
		int rc = entry_sql(b, &bt->e[i], &sql, &p);
		if (rc < 0)
			return -1;
		sent[i] = rc == 1 && send_query(c, sql, &p) == 0;
		bt->e[i].sent = sent[i];
		if (rc == 1 && !sent[i]) {
			free(sql);
			params_free(&p);
			return -1;
		}
		if (rc == 0)
			bt->e[i].outcome = OUT_NOTHING;
		free(sql);
		params_free(&p);
	}
	return PQpipelineSync(c) && flush_pipeline(c) == 0 ? 0 : -1;
}

/* Takes one query's result (and the NULL after it). */
static PGresult *take_result(struct pgsb *b, PGconn *c, char *err, size_t cap)
{
	PGresult *r = PQgetResult(c), *extra;
	ExecStatusType st = PQresultStatus(r);

	while ((extra = PQgetResult(c)) != NULL)
		PQclear(extra);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		note_sqlstate(b, r);
		if (!err[0])
			snprintf(err, cap, "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(c));
		PQclear(r);
		return NULL;
	}
	return r;
}

static int collect_results(struct pgsb *b, struct batch *bt, const bool *sent, char *err,
                           size_t cap)
{
	PGconn *c = b->push.conn;
	int failed = 0;

	PQsetnonblocking(c, 0);
	for (size_t i = 0; i < bt->ne; i++) {
		if (!sent[i])
			continue;
		PGresult *r = take_result(b, c, err, cap);
		failed |= r == NULL;
		entry_own_result(&bt->e[i], r);
	}
	PGresult *sync = PQgetResult(c);
	if (PQresultStatus(sync) != PGRES_PIPELINE_SYNC)
		failed = 1;
	PQclear(sync);
	PQexitPipelineMode(c);
	return failed ? -1 : 0;
}

/* BEGIN, and the batch's last seq as the origin's progress: it commits
 * with the batch. */
static int begin_remote(struct pgsb *b, struct batch *bt, char *err, size_t cap)
{
	char seq_lsn[32];
	const char *setup[1] = {seq_lsn};

	dec_format_lsn((uint64_t)bt->last_seq, seq_lsn, sizeof seq_lsn);
	if (pgc_exec_ok(b->push.conn, "BEGIN", err, cap))
		return -1;
	PGresult *r = PQexecParams(b->push.conn,
		"SELECT pg_replication_origin_xact_setup($1::pg_lsn, now())", 1, NULL, setup, NULL, NULL, 0);
	int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : -1;
	if (rc)
		pgc_error_text(b->push.conn, err, cap);
	PQclear(r);
	return rc;
}

static int pipeline_batch(struct pgsb *b, struct batch *bt, char *err, size_t cap)
{
	bool *sent = calloc(bt->ne ? bt->ne : 1, sizeof *sent);
	int rc = -1;

	err[0] = '\0';
	if (sent && begin_remote(b, bt, err, cap) == 0 && bulk_inserts(b, bt, err, cap) == 0 &&
	    PQenterPipelineMode(b->push.conn)) {
		PQsetnonblocking(b->push.conn, 1);
		if (send_statements(b, bt, sent) == 0)
			rc = collect_results(b, bt, sent, err, cap);
		else
			pgc_error_text(b->push.conn, err, cap);
	}
	free(sent);
	return rc;
}

/* ---- conflicts: a guarded statement that missed ---- */

static PGresult *exec_params(PGconn *c, const char *sql, struct params *p)
{
	return PQexecParams(c, sql, p->n, NULL, (const char *const *)p->v, NULL, NULL, 0);
}

/* The row now in Postgres with the entry's key, locked, with its commit
 * time (NULL when track_commit_timestamp is off). */
static PGresult *fetch_remote(struct pgsb *b, const struct entry *e)
{
	struct dec_field *f;
	size_t n, len;
	char *sql = NULL;
	struct params p = {0};
	const char *image = e->op == 'I' ? e->final : e->base;

	if (parse_image(&b->push.key_dec, image, &f, &n))
		return NULL;
	FILE *m = open_memstream(&sql, &len);
	fprintf(m, "SELECT *, %s AS \"" COMMIT_TS_COLUMN "\" FROM %s",
	        b->push.commit_ts ? "pg_xact_commit_timestamp(xmin)::text" : "NULL::text",
	        e->t->qualified);
	sql_key_where(m, e->t, f, n, &p);
	fputs(" FOR UPDATE", m);
	fclose(m);
	PGresult *r = exec_params(b->push.conn, sql, &p);
	free(sql);
	params_free(&p);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		PQclear(r);
		return NULL;
	}
	return r;
}

/* Writes the winning version to Postgres: the local row (or its delete),
 * or the merged row.  The RETURNING row goes to e->res. */
static int force_version(struct pgsb *b, struct entry *e, const char *row, bool pg_form)
{
	struct dec_field *f;
	size_t n, len;
	char *sql = NULL;
	struct params p = {0};

	if (parse_image(&b->push.key_dec, row ? row : e->base, &f, &n))
		return -1;
	FILE *m = open_memstream(&sql, &len);
	if (row) {
		sql_insert(m, e->t, f, n, &p, true, pg_form);
	} else {
		fprintf(m, "DELETE FROM %s", e->t->qualified);
		sql_key_where(m, e->t, f, n, &p);
	}
	fclose(m);
	PGresult *r = exec_params(b->push.conn, sql, &p);
	free(sql);
	params_free(&p);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		PQclear(r);
		return -1;
	}
	if (st != PGRES_TUPLES_OK) {
		PQclear(r);
		r = NULL;
	}
	entry_own_result(e, r);
	return 0;
}

static int resolve_one(struct pgsb *b, struct batch *bt, struct entry *e)
{
	entry_own_result(e, NULL);
	e->remote = fetch_remote(b, e);
	if (!e->remote)
		return -1;
	if (e->op == 'D' && PQntuples(e->remote) == 0) {
		e->outcome = OUT_NOTHING; /* deleted on both sides */
		return 0;
	}
	int tscol = PQnfields(e->remote) - 1;
	struct conflict_case cc = {
		.t = e->t, .op = e->op, .base_json = e->base, .local_json = e->final,
		.local_time = e->changed_at, .remote = e->remote,
		.remote_time = PQntuples(e->remote) == 1 && !PQgetisnull(e->remote, 0, tscol)
		               ? PQgetvalue(e->remote, 0, tscol) : NULL,
	};
	enum conflict_winner w = conflict_decide(b, &cc);
	bt->conflicts++;
	e->merged = cc.merged_json;
	e->outcome = w == WIN_LOCAL ? OUT_LOCAL : w == WIN_MERGED ? OUT_MERGED : OUT_REMOTE;
	if (w == WIN_LOCAL)
		return force_version(b, e, e->final, false);
	if (w == WIN_MERGED)
		return force_version(b, e, e->merged, true);
	return 0;
}

static int resolve_conflicts(struct pgsb *b, struct batch *bt, char *err, size_t cap)
{
	for (size_t i = 0; i < bt->ne; i++) {
		struct entry *e = &bt->e[i];
		if (!e->sent || e->outcome == OUT_NOTHING || e->row >= 0)
			continue;
		if (resolve_one(b, bt, e)) {
			pgc_error_text(b->push.conn, err, cap);
			return -1;
		}
	}
	return 0;
}

/* ---- the commit, and the local mark ---- */

/* The end LSN of our last commit under the origin: what the stream would
 * call the push's nextlsn. */
static uint64_t origin_commit_lsn(struct pgsb *b)
{
	const char *params[1] = {b->cfg->slot};
	PGresult *r = PQexecParams(b->push.conn,
		"SELECT local_lsn::text FROM pg_replication_origin_status s "
		"JOIN pg_replication_origin o ON o.roident = s.local_id WHERE o.roname = $1",
		1, NULL, params, NULL, NULL, 0);
	uint64_t lsn = 0;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
		const char *t = PQgetvalue(r, 0, 0);
		if (dec_parse_lsn(t, strlen(t), &lsn))
			lsn = 0;
	}
	PQclear(r);
	return lsn;
}

static void crash_hook(const char *point)
{
	const char *want = getenv("PGSQLITE_BRIDGE_TEST_CRASH");

	if (want && strcmp(want, point) == 0)
		_exit(99); /* tests: die exactly here, as kill -9 would */
}

/* Writes one row of a Postgres result into SQLite (upsert). */
static int write_pg_row(struct pgsb *b, const struct br_table *t, PGresult *r, int row,
                        struct sl_err *e)
{
	int nf = PQnfields(r), n = 0, npk = 0;
	struct dec_field *f = calloc((size_t)nf + 1, sizeof *f), *pk = calloc((size_t)nf + 1, sizeof *pk);
	struct dec_record rec = {.action = DEC_INSERT};
	int rc = -1;

	if (f && pk) {
		for (int j = 0; j < nf; j++) {
			const char *name = PQfname(r, j);
			const struct sl_column *c = pgcol(t, name, strlen(name));
			if (!c)
				continue; /* our commit-time column */
			f[n].name = (struct dec_str){name, strlen(name)};
			f[n].typeoid = PQftype(r, j);
			if (PQgetisnull(r, row, j))
				f[n].kind = DEC_NULL;
			else
				pgc_text_field(&f[n], f[n].typeoid, PQgetvalue(r, row, j),
				               (size_t)PQgetlength(r, row, j));
			if (c->pk_pos > 0)
				pk[npk++] = f[n];
			n++;
		}
		rec.schema = (struct dec_str){t->schema, strlen(t->schema)};
		rec.table = (struct dec_str){t->name, strlen(t->name)};
		rec.columns = f;
		rec.ncolumns = (size_t)n;
		rec.pk = pk;
		rec.npk = (size_t)npk;
		rc = sl_apply(b->db, &rec, e);
	}
	free(f);
	free(pk);
	return rc;
}

static int delete_local(struct pgsb *b, const struct br_table *t, const char *key,
                        struct sl_err *e)
{
	struct dec_field *f;
	size_t n;
	struct dec_record rec = {.action = DEC_DELETE};

	if (parse_image(&b->push.key_dec, key, &f, &n))
		return -1;
	rec.schema = (struct dec_str){t->schema, strlen(t->schema)};
	rec.table = (struct dec_str){t->name, strlen(t->name)};
	rec.identity = f;
	rec.nidentity = n;
	return sl_apply(b->db, &rec, e);
}

/* A statement prepared once and kept; reset and cleared for reuse. */
static sqlite3_stmt *cached(struct pgsb *b, sqlite3_stmt **slot, const char *sql)
{
	if (!*slot && sqlite3_prepare_v3(sl_handle(b->db), sql, -1, SQLITE_PREPARE_PERSISTENT,
	                                 slot, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_reset(*slot);
	sqlite3_clear_bindings(*slot);
	return *slot;
}

void push_free(struct pgsb *b)
{
	sqlite3_finalize(b->push.st_pending);
	sqlite3_finalize(b->push.st_track);
	b->push.st_pending = b->push.st_track = NULL;
	free(b->push.line);
	b->push.line = NULL;
	b->push.line_cap = 0;
}

/* A local change newer than the batch for this row: leave the row alone. */
static bool local_pending(struct pgsb *b, const struct br_table *t, const char *key)
{
	sqlite3_stmt *st = cached(b, &b->push.st_pending,
		"SELECT 1 FROM _pgsqlite_changes WHERE table_name = ?1 AND pk = ?2 LIMIT 1");
	bool pending;

	if (!st)
		return true;
	sqlite3_bind_text(st, 1, t->local, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	pending = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	return pending;
}

/* Does the row Postgres returned hold exactly what SQLite already has
 * (no default, trigger or other column of the server's own)?  Then there
 * is nothing to write back. */
static bool returned_as_sent(struct pgsb *b, const struct entry *e)
{
	struct dec_field *f;
	size_t n;

	if (!e->final || parse_image(&b->push.key_dec, e->final, &f, &n))
		return false;
	for (int j = 0; j < PQnfields(e->res); j++) {
		const char *name = PQfname(e->res, j);
		const struct sl_column *c = pgcol(e->t, name, strlen(name));
		if (!c)
			continue; /* our own bookkeeping columns */
		const struct dec_field *fv = field_named(f, n, (struct dec_str){name, strlen(name)});
		if (!fv)
			return false;
		if (PQgetisnull(e->res, e->row, j) || fv->kind == DEC_NULL) {
			if (PQgetisnull(e->res, e->row, j) != (fv->kind == DEC_NULL))
				return false;
			continue;
		}
		const char *v = PQgetvalue(e->res, e->row, j);
		size_t len = (size_t)PQgetlength(e->res, e->row, j);
		if (c->typeoid == 17 && len >= 2)
			v += 2, len -= 2; /* bytea: \x then the same hex */
		if ((fv->kind != DEC_NUMBER && fv->kind != DEC_STRING) || len != fv->value.len ||
		    memcmp(v, fv->value.p, len) != 0)
			return false;
	}
	return true;
}

/* What Postgres now holds for an entry, written into SQLite. */
static int apply_outcome(struct pgsb *b, const struct entry *e, struct sl_err *err)
{
	if (e->outcome == OUT_PUSHED &&
	    (e->op == 'D' || !e->t->server_computes || (e->res && e->row >= 0 && returned_as_sent(b, e))))
		return 0; /* SQLite already holds what Postgres holds */
	if (local_pending(b, e->t, e->key))
		return 0;
	if (e->outcome == OUT_REMOTE)
		return PQntuples(e->remote) == 1 ? write_pg_row(b, e->t, e->remote, 0, err)
		                                 : delete_local(b, e->t, e->key, err);
	if (e->outcome == OUT_NOTHING || !e->res || e->row < 0 ||
	    (e->outcome == OUT_PUSHED && e->op == 'D') || (e->outcome == OUT_LOCAL && !e->final))
		return 0;
	return write_pg_row(b, e->t, e->res, e->row, err);
}

static int track_pushed(struct pgsb *b, const struct entry *e, uint64_t lsn)
{
	sqlite3_stmt *st;
	int rc;

	if (lsn == 0 || e->outcome == OUT_NOTHING || e->outcome == OUT_REMOTE)
		return 0;
	st = cached(b, &b->push.st_track,
		"INSERT INTO _pgsqlite_pushed (table_name, pk, lsn) VALUES (?1, ?2, ?3) "
		"ON CONFLICT (table_name, pk) DO UPDATE SET lsn = excluded.lsn");
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, e->t->local, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, e->key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)lsn);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_reset(st);
	b->push.pushed_rows_tracked += rc == 0;
	return rc;
}

static int record_conflict(struct pgsb *b, const struct entry *e, struct sl_err *err)
{
	enum conflict_winner w = e->outcome == OUT_LOCAL ? WIN_LOCAL
	                         : e->outcome == OUT_MERGED ? WIN_MERGED : WIN_REMOTE;
	char *remote = conflict_remote_json(e->remote);
	int rc = sl_conflict_record(b->db, e->t->local, e->key, e->final, remote,
	                            cfg_conflict_name(e->t->conflict),
	                            conflict_resolution_name(w, e->t->conflict),
	                            e->t->conflict != CFG_CONFLICT_KEEP_BOTH, err);
	free(remote);
	return rc;
}

static bool is_conflict(const struct entry *e)
{
	return e->remote && e->outcome != OUT_NOTHING;
}

static int mark_entries(struct pgsb *b, struct batch *bt, struct sl_err *err)
{
	for (size_t i = 0; i < bt->ne; i++) {
		const struct entry *e = &bt->e[i];
		if (apply_outcome(b, e, err) || track_pushed(b, e, bt->commit_lsn) ||
		    (is_conflict(e) && record_conflict(b, e, err)))
			return -1;
	}
	return 0;
}

/* The local mark: changes gone from the log, Postgres's version of each
 * pushed row (server defaults and triggers included) in SQLite, conflicts
 * recorded, the position saved; one SQLite transaction. */
static int mark_local(struct pgsb *b, struct batch *bt, char *err, size_t cap)
{
	char seq[32];
	struct sl_err e = {0};

	snprintf(seq, sizeof seq, "%lld", (long long)bt->last_seq);
	int64_t t0 = br_now_us(), t1 = 0, t2 = 0;
	if (sl_begin(b->db, &e) || sl_changes_delete_upto(b->db, bt->last_seq, &e) ||
	    !(t1 = br_now_us()) || mark_entries(b, bt, &e) || !(t2 = br_now_us()) ||
	    sl_state_set(b->db, "pushed_seq", seq, &e) || sl_commit(b->db, &e)) {
		snprintf(err, cap, "cannot mark pushed changes in SQLite: %s",
		         e.msg[0] ? e.msg : sqlite3_errmsg(sl_handle(b->db)));
		sl_rollback(b->db);
		return -1;
	}
	b->push.pushed_seq = bt->last_seq;
	log_debug("mark: delete %lld us, entries %lld us, commit %lld us", (long long)(t1 - t0),
	          (long long)(t2 - t1), (long long)(br_now_us() - t2));
	return 0;
}

static void batch_free(struct batch *bt)
{
	for (size_t i = 0; i < bt->ne; i++) {
		if (bt->e[i].owns_res)
			PQclear(bt->e[i].res);
		PQclear(bt->e[i].remote);
		free(bt->e[i].merged);
	}
	for (int i = 0; i < bt->nshared; i++)
		PQclear(bt->shared[i]);
	free(bt->e);
	free(bt->buckets);
	sl_changes_free(bt->ch, bt->nch);
}

static void emit_batch_events(struct pgsb *b, const struct batch *bt, int64_t started)
{
	uint64_t rows = 0;

	for (size_t i = 0; i < bt->ne; i++) {
		const struct entry *e = &bt->e[i];
		rows += e->outcome != OUT_NOTHING;
		if (is_conflict(e))
			ev_emit_conflict(b, e->t->local, e->key, cfg_conflict_name(e->t->conflict),
			                 conflict_resolution_name(e->outcome == OUT_LOCAL ? WIN_LOCAL
			                     : e->outcome == OUT_MERGED ? WIN_MERGED : WIN_REMOTE,
			                     e->t->conflict));
	}
	b->push.rows += rows;
	b->push.conflicts += bt->conflicts;
	ev_emit_sync(b, "push", rows, 1, (br_now_us() - started) / 1000, bt->commit_lsn);
}

static int commit_remote(struct pgsb *b, struct batch *bt, char *err, size_t cap)
{
	if (pgc_exec_ok(b->push.conn, "COMMIT", err, cap))
		return -1;
	bt->commit_lsn = origin_commit_lsn(b);
	crash_hook("after-push-commit");
	return 0;
}

/* One batch.  Returns 1 when it pushed something, 0 when the log is
 * empty, -1 on error (nothing marked locally; retried later). */
static int push_batch(struct pgsb *b, char *err, size_t cap)
{
	struct batch bt = {0};
	struct sl_err e;
	int64_t started = br_now_us();
	int rc = -1;

	b->push.sqlstate[0] = '\0';
	if (sl_changes_read(b->db, b->push.pushed_seq, b->push.batch_limit ? b->push.batch_limit : PUSH_BATCH,
	                    &bt.ch, &bt.nch, &e)) {
		snprintf(err, cap, "cannot read the change log: %s", e.msg);
		return -1;
	}
	if (bt.nch == 0)
		return 0;
	int64_t t1 = br_now_us(), t2 = 0, t3 = 0, t4 = 0;
	if (fold(b, &bt) == 0 && pipeline_batch(b, &bt, err, cap) == 0 && (t2 = br_now_us()) &&
	    resolve_conflicts(b, &bt, err, cap) == 0 && commit_remote(b, &bt, err, cap) == 0 &&
	    (t3 = br_now_us()) && mark_local(b, &bt, err, cap) == 0) {
		t4 = br_now_us();
		log_debug("push batch of %zu: read %lld us, send %lld us, commit %lld us, mark %lld us",
		          bt.nch, (long long)(t1 - started), (long long)(t2 - t1), (long long)(t3 - t2),
		          (long long)(t4 - t3));
		emit_batch_events(b, &bt, started);
		rc = 1;
	} else if (!err[0]) {
		snprintf(err, cap, "push failed");
	}
	batch_free(&bt);
	return rc;
}

/* ---- after a crash: changes Postgres has but SQLite did not mark ---- */

static int64_t origin_progress(struct pgsb *b)
{
	const char *params[1] = {b->cfg->slot};
	PGresult *r = PQexecParams(b->push.conn,
		"SELECT pg_replication_origin_progress($1, true)::text", 1, NULL, params, NULL, NULL, 0);
	uint64_t lsn = 0;

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		PQclear(r);
		return -1;
	}
	if (!PQgetisnull(r, 0, 0)) {
		const char *t = PQgetvalue(r, 0, 0);
		if (dec_parse_lsn(t, strlen(t), &lsn))
			lsn = 0;
	}
	PQclear(r);
	return (int64_t)lsn;
}

/* The row as Postgres holds it now, written into SQLite. */
static int refresh_row(struct pgsb *b, const struct br_table *t, const char *key,
                       struct sl_err *err)
{
	struct entry e = {.t = t, .op = 'D', .base = key, .key = key};
	PGresult *r;

	if (local_pending(b, t, key))
		return 0;
	if (!(r = fetch_remote(b, &e)))
		return -1;
	int rc = PQntuples(r) == 1 ? write_pg_row(b, t, r, 0, err) : delete_local(b, t, key, err);
	PQclear(r);
	return rc;
}

static int reconcile_gap(struct pgsb *b, int64_t upto, char *err, size_t cap)
{
	struct sl_change *ch;
	size_t n;
	struct sl_err e = {0};
	char seq[32];
	int rc = -1;

	if (sl_changes_read(b->db, b->push.pushed_seq, 1000000, &ch, &n, &e))
		goto out;
	if (sl_begin(b->db, &e) || sl_changes_delete_upto(b->db, upto, &e))
		goto rollback;
	for (size_t i = 0; i < n && ch[i].seq <= upto; i++) {
		const struct br_table *t = table_by_local(b, ch[i].table);
		if (t && refresh_row(b, t, ch[i].pk, &e))
			goto rollback;
	}
	snprintf(seq, sizeof seq, "%lld", (long long)upto);
	if (sl_state_set(b->db, "pushed_seq", seq, &e) || sl_commit(b->db, &e))
		goto rollback;
	log_warn("%lld local changes were pushed before the bridge stopped but not marked: "
	         "marked now, nothing pushed twice", (long long)(upto - b->push.pushed_seq));
	b->push.pushed_seq = upto;
	rc = 0;
	goto freeit;
rollback:
	sl_rollback(b->db);
freeit:
	sl_changes_free(ch, n);
out:
	if (rc)
		snprintf(err, cap, "cannot reconcile pushed changes: %s", e.msg);
	return rc;
}

int push_reconcile(struct pgsb *b, char *err, size_t cap)
{
	char text[64];
	int64_t progress = origin_progress(b);

	b->push.pushed_seq = sl_state_get(b->db, "pushed_seq", text, sizeof text) == 1
	                     ? strtoll(text, NULL, 10) : 0;
	if (progress < 0) {
		pgc_error_text(b->push.conn, err, cap);
		return -1;
	}
	if (progress <= b->push.pushed_seq)
		return 0;
	return reconcile_gap(b, progress, err, cap);
}

/* ---- the connection ---- */

/* Does Postgres put values of its own into the table's rows (defaults,
 * identity or generated columns, triggers)?  When unsure: yes. */
static bool server_computes(struct pgsb *b, const struct br_table *t)
{
	const char *params[1] = {t->qualified};
	PGresult *r = PQexecParams(b->push.conn,
		"SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal) "
		"OR EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND "
		"NOT attisdropped AND (atthasdef OR attidentity <> '' OR attgenerated <> ''))",
		1, NULL, params, NULL, NULL, 0);
	bool yes = PQresultStatus(r) != PGRES_TUPLES_OK || PQgetvalue(r, 0, 0)[0] != 'f';

	PQclear(r);
	return yes;
}

static int load_columns(struct pgsb *b, char *err, size_t cap)
{
	for (size_t i = 0; i < b->ntables; i++) {
		struct br_table *t = &b->tables[i];
		if (t->pgcols || t->direction == CFG_DIRECTION_PULL)
			continue;
		if (pgc_table_columns(b->push.conn, t, &t->pgcols, &t->npgcols, err, cap))
			return -1;
		t->server_computes = server_computes(b, t);
	}
	return 0;
}

static int push_connect(struct pgsb *b, char *err, size_t cap)
{
	const char *params[1] = {b->cfg->slot};

	b->push.conn = pgc_connect(b, false, err, cap);
	if (!b->push.conn)
		return -1;
	/* A push is marked in SQLite once Postgres says it committed: that must
	 * mean durable, so never synchronous_commit = off here (it also lets
	 * the other clients' walsenders see the push at once, not after the
	 * WAL writer's next flush). */
	PGresult *r = PQexecParams(b->push.conn, "SELECT pg_replication_origin_session_setup($1), "
	                           "current_setting('track_commit_timestamp'), "
	                           "CASE WHEN current_setting('synchronous_commit') = 'off' THEN "
	                           "set_config('synchronous_commit', 'local', false) END",
	                           1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		pgc_error_text(b->push.conn, err, cap);
		PQclear(r);
		push_close(b);
		return -1;
	}
	b->push.commit_ts = strcmp(PQgetvalue(r, 0, 1), "on") == 0;
	PQclear(r);
	if (load_columns(b, err, cap) || push_reconcile(b, err, cap)) {
		push_close(b);
		return -1;
	}
	return 0;
}

void push_close(struct pgsb *b)
{
	PQfinish(b->push.conn);
	b->push.conn = NULL;
	for (size_t i = 0; i < b->ntables; i++)
		b->tables[i].stage_ready = false; /* temporary tables died with it */
}

bool push_has_pending(struct pgsb *b)
{
	int64_t n = sl_pending_changes(b->db);
	return n > 0;
}

/* ---- a change Postgres rejects ---- */

/* Data exceptions (22) and integrity violations (23): the change itself is
 * wrong for Postgres, and retrying it as it is will never succeed. */
static bool rejected_by_data(const struct pgsb *b)
{
	return strncmp(b->push.sqlstate, "22", 2) == 0 || strncmp(b->push.sqlstate, "23", 2) == 0;
}

static void emit_rejection(struct pgsb *b, const struct sl_change *c, const char *why)
{
	char msg[1400];

	snprintf(msg, sizeof msg, "Postgres rejected a local change to \"%s\" %s: %s; the local row "
	         "now holds the Postgres version, the change is in _pgsqlite_conflicts", c->table, c->pk, why);
	log_warn("%s", msg);
	ev_emit_error(b, msg, false);
	ev_emit_conflict(b, c->table, c->pk, "rejected", "rejected");
}

/* The oldest pending change, which Postgres rejects on its own: out of the
 * log, into _pgsqlite_conflicts for a person, and the row in SQLite back
 * to what Postgres holds. */
static int reject_first(struct pgsb *b, const char *why, char *err, size_t cap)
{
	struct sl_change *c;
	size_t n;
	struct sl_err e = {0};
	int rc = -1;

	if (sl_changes_read(b->db, b->push.pushed_seq, 1, &c, &n, &e) || n == 0)
		return -1;
	const struct br_table *t = table_by_local(b, c->table);
	struct entry probe = {.t = t, .op = 'D', .base = c->old_row ? c->old_row : c->new_row, .key = c->pk};
	PGresult *remote = t ? fetch_remote(b, &probe) : NULL;
	char *remote_json = conflict_remote_json(remote);
	char resolution[300];
	snprintf(resolution, sizeof resolution, "rejected: %.280s", why);
	if (remote && sl_begin(b->db, &e) == 0 && sl_changes_delete_upto(b->db, c->seq, &e) == 0 &&
	    refresh_row(b, t, c->pk, &e) == 0 &&
	    sl_conflict_record(b->db, c->table, c->pk, c->new_row, remote_json,
	                       cfg_conflict_name(t->conflict), resolution, false, &e) == 0 &&
	    sl_commit(b->db, &e) == 0) {
		emit_rejection(b, c, why);
		rc = 0;
	} else {
		sl_rollback(b->db);
		snprintf(err, cap, "cannot set aside a rejected change: %s", e.msg[0] ? e.msg : PQerrorMessage(b->push.conn));
	}
	free(remote_json);
	PQclear(remote);
	sl_changes_free(c, n);
	return rc;
}

/* A batch failed on a data or integrity error: push its changes one at a
 * time to find the one Postgres rejects, set that one aside, go on. */
static int isolate_rejected(struct pgsb *b, char *err, size_t cap)
{
	int rc = 1;

	b->push.batch_limit = 1;
	for (size_t i = 0; i < PUSH_BATCH && rc == 1; i++) {
		if (!b->push.conn && push_connect(b, err, cap))
			break;
		rc = push_batch(b, err, cap);
	}
	if (rc < 0 && rejected_by_data(b)) {
		char why[1024];
		snprintf(why, sizeof why, "%s", err);
		push_close(b);
		rc = push_connect(b, err, cap) == 0 && reject_first(b, why, err, cap) == 0 ? 1 : -1;
	}
	b->push.batch_limit = 0;
	if (rc < 0)
		push_close(b);
	return rc < 0 ? -1 : 1;
}

int push_pending(struct pgsb *b, size_t max_batches, char *err, size_t cap)
{
	err[0] = '\0';
	if (!push_has_pending(b))
		return 0;
	if (!b->push.conn && push_connect(b, err, cap))
		return -1;
	for (size_t i = 0; i < max_batches; i++) {
		int rc = push_batch(b, err, cap);
		if (rc < 0) {
			push_close(b); /* the next attempt reconnects and reconciles */
			if (!rejected_by_data(b) || isolate_rejected(b, err, cap) < 0)
				return -1;
			rc = 1;
		}
		if (rc == 0)
			return 0;
	}
	return push_has_pending(b) ? 1 : 0;
}

/* ---- the pull side's view of what we pushed ---- */

int push_ensure_schema(struct pgsb *b, char *err, size_t cap)
{
	sqlite3 *db = sl_handle(b->db);
	sqlite3_stmt *st;

	if (sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS _pgsqlite_pushed (table_name TEXT NOT NULL, "
	                     "pk TEXT NOT NULL, lsn INTEGER NOT NULL, PRIMARY KEY (table_name, pk)) WITHOUT ROWID",
	                 NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM _pgsqlite_pushed", -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, cap, "cannot create _pgsqlite_pushed: %s", sqlite3_errmsg(db));
		return -1;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		b->push.pushed_rows_tracked = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

/* 1 when our own push of this row committed after the remote transaction
 * (end LSN xact_end): Postgres already holds the newer version, so the
 * remote change must not overwrite it in SQLite. */
int push_remote_is_stale(struct pgsb *b, const char *local_table, const char *key_json,
                         uint64_t xact_end)
{
	sqlite3_stmt *st;
	int stale = 0;

	if (b->push.pushed_rows_tracked <= 0)
		return 0;
	if (sqlite3_prepare_v2(sl_handle(b->db),
	                       "SELECT lsn FROM _pgsqlite_pushed WHERE table_name = ?1 AND pk = ?2",
	                       -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, local_table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key_json, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		stale = (uint64_t)sqlite3_column_int64(st, 0) > xact_end;
	sqlite3_finalize(st);
	return stale;
}

/* Forgets pushes the stream has passed (inside the open transaction). */
int push_prune_tracked(struct pgsb *b, uint64_t applied_lsn)
{
	sqlite3_stmt *st;

	if (b->push.pushed_rows_tracked <= 0)
		return 0;
	if (sqlite3_prepare_v2(sl_handle(b->db), "DELETE FROM _pgsqlite_pushed WHERE lsn <= ?1",
	                       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)applied_lsn);
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	if (rc == 0)
		b->push.pushed_rows_tracked -= sqlite3_changes(sl_handle(b->db));
	return rc;
}
