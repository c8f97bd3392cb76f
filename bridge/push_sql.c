/* push_sql.c: the statements a push sends: the guarded INSERT, UPDATE and
 * DELETE of an entry, built from its row images, and their parameters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "push_int.h"

/* ---- parameters ---- */

static void params_add(struct params *p, char *owned)
{
	if (p->n >= (int)(sizeof p->v / sizeof *p->v)) {
		p->overflow = true;
		free(owned);
		return;
	}
	p->v[p->n++] = owned;
}

void push__params_free(struct params *p)
{
	for (int i = 0; i < p->n; i++)
		free(p->v[i]);
	p->n = 0;
}

PGresult *push__exec_params(PGconn *c, const char *sql, struct params *p)
{
	return PQexecParams(c, sql, p->n, NULL, (const char *const *)p->v, NULL, NULL, 0);
}

/* ---- fields of a row image ---- */

const struct sl_column *push__pgcol(const struct br_table *t, const char *name, size_t len)
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

static bool field_equal(const struct dec_field *a, const struct dec_field *b)
{
	return a->kind == b->kind && a->value.len == b->value.len &&
	       (a->value.len == 0 || memcmp(a->value.p, b->value.p, a->value.len) == 0);
}

const struct dec_field *push__field_named(struct dec_field *f, size_t n, struct dec_str name)
{
	for (size_t i = 0; i < n; i++)
		if (f[i].name.len == name.len && memcmp(f[i].name.p, name.p, name.len) == 0)
			return &f[i];
	return NULL;
}

int push__parse_image(struct dec_parser *dp, const char *json, struct dec_field **f, size_t *n)
{
	struct dec_error e;

	*f = NULL;
	*n = 0;
	return json ? dec_parse_object(dp, json, strlen(json), f, n, &e) : 0;
}

/* ---- SQL for one entry ---- */

void push__sql_key_where(FILE *m, const struct br_table *t, struct dec_field *f, size_t n,
                         struct params *p)
{
	int first = 1;

	for (size_t i = 0; i < n; i++) {
		const struct sl_column *c = push__pgcol(t, f[i].name.p, f[i].name.len);
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
		const struct sl_column *c = push__pgcol(t, f[i].name.p, f[i].name.len);
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
const struct sl_column *push__insert_col(const struct br_table *t, const struct dec_field *f,
                                         bool force)
{
	const struct sl_column *c = push__pgcol(t, f->name.p, f->name.len);

	if (c && !force && f->kind == DEC_NULL && c->has_default)
		return NULL;
	return c;
}

/* INSERT ... ; with `force`, an existing row is overwritten. */
void push__sql_insert(FILE *m, const struct br_table *t, struct dec_field *f, size_t n,
                      struct params *p, bool force, bool pg_form)
{
	char q[600];
	int first = 1;

	fprintf(m, "INSERT INTO %s (", t->qualified);
	for (size_t i = 0; i < n; i++) {
		const struct sl_column *c = push__insert_col(t, &f[i], force);
		if (!c)
			continue;
		pgc_quote_ident(c->name, q, sizeof q);
		fprintf(m, "%s%s", first ? "" : ", ", q);
		first = 0;
	}
	fputs(") VALUES (", m);
	first = 1;
	for (size_t i = 0; i < n; i++) {
		const struct sl_column *c = push__insert_col(t, &f[i], force);
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
		const struct sl_column *c = push__pgcol(t, f[i].name.p, f[i].name.len);
		if (!c)
			continue;
		pgc_quote_ident(c->name, q, sizeof q);
		fprintf(m, "%s%s = EXCLUDED.%s", first ? "" : ", ", q, q);
		first = 0;
	}
	fputs(" RETURNING *", m);
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
		const struct sl_column *c = push__pgcol(t, ff[i].name.p, ff[i].name.len);
		const struct dec_field *old = push__field_named(bf, bn, ff[i].name);
		if (!c || (old && field_equal(old, &ff[i])))
			continue;
		pgc_quote_ident(c->name, q, sizeof q);
		params_add(p, input_text(&ff[i], c, false));
		fprintf(m, "%s%s = $%d::%s", set ? ", " : "", q, p->n, c->pg_type);
		set++;
	}
	push__sql_key_where(m, t, bf, bn, p);
	sql_base_guard(m, t, bf, bn, p);
	fputs(" RETURNING *", m);
	return set;
}

/* Builds the guarded statement of an entry into *sql (malloc'd).  Returns 1
 * with a statement, 0 when there is nothing to push, -1 on error. */
int push__entry_sql(struct pgsb *b, struct entry *e, char **sql, struct params *p)
{
	struct dec_field *bf, *ff;
	size_t bn, fn, len;
	int rc = 1;

	if (!e->op)
		return 0;
	if (push__parse_image(&b->push.base_dec, e->base, &bf, &bn) ||
	    push__parse_image(&b->push.final_dec, e->final, &ff, &fn))
		return -1;
	FILE *m = open_memstream(sql, &len);
	if (e->op == 'I') {
		push__sql_insert(m, e->t, ff, fn, p, false, false);
	} else if (e->op == 'U') {
		rc = sql_update(m, e->t, bf, bn, ff, fn, p) > 0;
	} else {
		fprintf(m, "DELETE FROM %s", e->t->qualified);
		push__sql_key_where(m, e->t, bf, bn, p);
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
