/* push_copy.c: bulk inserts of a push batch: inserts of one table and one
 * shape go by COPY, straight into the table or through a stage table and
 * one INSERT ... SELECT that tells inserted rows from conflicts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "push_int.h"

/* ---- bulk inserts: COPY into a stage table, one INSERT ... SELECT ---- */

#define BULK_MIN 16 /* fewer inserts of one shape go one statement each */

/* Which Postgres columns an insert of this entry sends ('1' / '0' per
 * column of t->pgcols): entries with the same shape share a bulk insert. */
static int insert_shape(struct pgsb *b, const struct entry *e, char *shape)
{
	struct dec_field *f;
	size_t n;

	memset(shape, '0', e->t->npgcols);
	if (push__parse_image(&b->push.final_dec, e->final, &f, &n))
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct sl_column *c = push__insert_col(e->t, &f[i], false);
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

	if (push__parse_image(&b->push.final_dec, e->final, &f, &n))
		return 0;
	for (size_t k = 0; k < e->t->npgcols; k++) {
		if (shape[k] != '1')
			continue;
		const struct dec_field *fv = NULL;
		for (size_t i = 0; i < n && !fv; i++)
			if (push__pgcol(e->t, f[i].name.p, f[i].name.len) == &e->t->pgcols[k])
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
			push__note_sqlstate(b, r);
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
		push__note_sqlstate(b, r); /* 42703: the column list is stale */
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

int push__bulk_inserts(struct pgsb *b, struct batch *bt, char *err, size_t cap)
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
