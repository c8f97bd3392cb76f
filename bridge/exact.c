/* exact.c: NaN and +-Infinity from the stream.  wal2json writes a numeric
 * NaN and a float NaN / +-Infinity as JSON null, exactly like SQL NULL;
 * only the row itself tells them apart.  For a record with a null in a
 * float or numeric column, the row is read back by key on a plain
 * connection and those nulls that are really NaN or Infinity get their
 * value back, before the record reaches SQLite. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exact.h"

#define OID_FLOAT4 700
#define OID_FLOAT8 701
#define OID_NUMERIC 1700
#define OID_BYTEA 17
#define MAX_KEY 32

static bool may_hide_nan(const struct dec_field *f)
{
	return f->kind == DEC_NULL &&
	       (f->typeoid == OID_FLOAT4 || f->typeoid == OID_FLOAT8 || f->typeoid == OID_NUMERIC);
}

static const struct dec_field *column_named(const struct dec_record *rec, struct dec_str name)
{
	for (size_t i = 0; i < rec->ncolumns; i++)
		if (rec->columns[i].name.len == name.len &&
		    memcmp(rec->columns[i].name.p, name.p, name.len) == 0)
			return &rec->columns[i];
	return NULL;
}

static void put_ident(FILE *m, struct dec_str name)
{
	char *raw = strndup(name.p ? name.p : "", name.len), q[600];

	pgc_quote_ident(raw ? raw : "", q, sizeof q);
	fputs(q, m);
	free(raw);
}

/* SELECT "c1"::text, ... FROM "s"."t" WHERE "k1" = $1 AND ... for the
 * nulls in question, and the key values as text parameters. */
static char *build_read(const struct dec_record *rec, char **vals, size_t *nvals)
{
	char *sql = NULL;
	size_t len = 0, n = 0;
	FILE *m = open_memstream(&sql, &len);

	fputs("SELECT ", m);
	for (size_t i = 0; i < rec->ncolumns; i++)
		if (may_hide_nan(&rec->columns[i])) {
			fputs(n++ ? ", " : "", m);
			put_ident(m, rec->columns[i].name);
			fputs("::text", m);
		}
	fputs(" FROM ", m);
	put_ident(m, rec->schema);
	fputs(".", m);
	put_ident(m, rec->table);
	*nvals = 0;
	for (size_t k = 0; k < rec->npk && k < MAX_KEY; k++) {
		const struct dec_field *f = column_named(rec, rec->pk[k].name);
		if (!f || f->kind == DEC_NULL)
			break;
		fputs(k ? " AND " : " WHERE ", m);
		put_ident(m, f->name);
		fprintf(m, " = $%zu", k + 1);
		if (f->kind == DEC_TRUE || f->kind == DEC_FALSE)
			vals[k] = strdup(f->kind == DEC_TRUE ? "true" : "false");
		else if (f->typeoid == OID_BYTEA && asprintf(&vals[k], "\\x%.*s", (int)f->value.len, f->value.p) < 0)
			vals[k] = NULL;
		else if (f->typeoid != OID_BYTEA)
			vals[k] = strndup(f->value.p, f->value.len);
		*nvals = k + 1;
	}
	fclose(m);
	if (*nvals == 0 || *nvals != rec->npk) { /* no whole key: nothing to read by */
		free(sql);
		return NULL;
	}
	return sql;
}

/* The value a null stands for, as static text, or NULL for a real NULL. */
static const char *special_value(const char *text)
{
	static const char *const specials[] = {"NaN", "Infinity", "-Infinity"};

	for (size_t i = 0; i < sizeof specials / sizeof *specials; i++)
		if (strcmp(text, specials[i]) == 0)
			return specials[i];
	return NULL;
}

static void fill_from(const struct dec_record *rec, PGresult *r)
{
	int j = 0;

	for (size_t i = 0; i < rec->ncolumns; i++) {
		struct dec_field *f = &rec->columns[i];
		if (!may_hide_nan(f))
			continue;
		const char *v = PQgetisnull(r, 0, j) ? NULL : special_value(PQgetvalue(r, 0, j));
		j++;
		if (!v)
			continue;
		f->kind = DEC_NUMBER;
		f->value.p = v;
		f->value.len = strlen(v);
	}
}

static bool needs_read(const struct dec_record *rec)
{
	if (rec->action != DEC_INSERT && rec->action != DEC_UPDATE)
		return false;
	for (size_t i = 0; i < rec->ncolumns; i++)
		if (may_hide_nan(&rec->columns[i]))
			return true;
	return false;
}

static int read_row(struct pgsb *b, PGconn **conn, const char *sql, char **vals, size_t n,
                    const struct dec_record *rec, char *err, size_t cap)
{
	if (!*conn && !(*conn = pgc_connect(b, false, err, cap)))
		return -1;
	PGresult *r = PQexecParams(*conn, sql, (int)n, NULL, (const char *const *)vals, NULL, NULL, 0);
	int rc = 0;

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		pgc_error_text(*conn, err, cap);
		if (PQstatus(*conn) != CONNECTION_OK)
			exact_close(conn);
		rc = -1;
	} else if (PQntuples(r) == 1) {
		fill_from(rec, r);
	}
	PQclear(r);
	return rc;
}

int exact_fill_nulls(struct pgsb *b, PGconn **conn, const struct dec_record *rec, char *err,
                     size_t cap)
{
	char *vals[MAX_KEY] = {0};
	size_t n = 0;

	if (!needs_read(rec))
		return 0;
	char *sql = build_read(rec, vals, &n);
	int rc = 0;

	for (size_t k = 0; sql && k < n; k++)
		if (!vals[k]) {
			snprintf(err, cap, "out of memory");
			rc = -1;
		}
	if (sql && rc == 0)
		rc = read_row(b, conn, sql, vals, n, rec, err, cap);
	if (rc)
		snprintf(err + strlen(err), cap - strlen(err), " (reading a NaN back from \"%.*s\")",
		         (int)rec->table.len, rec->table.p);
	for (size_t k = 0; k < n; k++)
		free(vals[k]);
	free(sql);
	return rc;
}

void exact_close(PGconn **conn)
{
	PQfinish(*conn);
	*conn = NULL;
}
