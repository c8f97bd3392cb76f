/* push_columns.c: the push thread's list of each table's Postgres
 * columns (and whether Postgres computes values of its own), read at
 * connect and again when a local table shows a column the list lacks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "push_int.h"

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

/* The table's Postgres columns, read again (the push thread owns them). */
static int load_table_columns(struct pgsb *b, struct br_table *t, char *err, size_t cap)
{
	struct sl_column *cols;
	size_t n;

	if (pgc_table_columns(b->push.conn, t, &cols, &n, err, cap))
		return -1;
	pgc_free_columns(t->pgcols, t->npgcols);
	t->pgcols = cols;
	t->npgcols = n;
	t->server_computes = server_computes(b, t);
	return 0;
}

int push__load_columns(struct pgsb *b, char *err, size_t cap)
{
	for (size_t i = 0; i < b->ntables; i++) {
		struct br_table *t = &b->tables[i];
		if (!t->pgcols && t->direction != CFG_DIRECTION_PULL && load_table_columns(b, t, err, cap))
			return -1;
	}
	return 0;
}

/* Forgets every table's column list: the next connection reads them again. */
void push__forget_columns(struct pgsb *b)
{
	for (size_t i = 0; i < b->ntables; i++) {
		struct br_table *t = &b->tables[i];
		pgc_free_columns(t->pgcols, t->npgcols);
		t->pgcols = NULL;
		t->npgcols = 0;
	}
}

/* Has the local table a column the cached list lacks?  Every image the
 * batch read was written with at most the columns it has now. */
static bool local_has_unknown(struct pgsb *b, const struct br_table *t)
{
	sqlite3_stmt *st;
	bool unknown = false;

	if (sqlite3_prepare_v2(sl_handle(b->push.db), "SELECT name FROM pragma_table_info(?1)", -1,
	                       &st, NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_text(st, 1, t->local, -1, SQLITE_STATIC);
	while (!unknown && sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		unknown = name && !push__pgcol(t, name, strlen(name));
	}
	sqlite3_finalize(st);
	return unknown;
}

/* A column added in Postgres since the list was read is in the images
 * once SQLite has it: the table's list is read again (at most once a
 * batch), and its stage table, shaped like the old one, dropped.  A local
 * column Postgres does not have stays out of the statements. */
int push__refresh_columns(struct pgsb *b, struct batch *bt, char *err, size_t cap)
{
	bool *done = calloc(b->ntables ? b->ntables : 1, sizeof *done);
	char sql[128];
	int rc = done ? 0 : -1;

	for (size_t i = 0; rc == 0 && i < bt->ne; i++) {
		struct br_table *t = (struct br_table *)bt->e[i].t;
		size_t k = (size_t)(t - b->tables);
		if (done[k])
			continue;
		done[k] = true;
		if (!local_has_unknown(b, t))
			continue;
		rc = load_table_columns(b, t, err, cap);
		snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS pg_temp.pgsb_stage_%zu", k);
		if (rc == 0 && t->stage_ready)
			rc = pgc_exec_ok(b->push.conn, sql, err, cap);
		t->stage_ready = false;
	}
	free(done);
	return rc;
}
