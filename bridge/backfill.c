/* backfill.c: values for columns the pull has just added to local tables.
 * Logical decoding carries no DDL: a column added in Postgres reaches
 * SQLite with the first record that carries it, and sl_apply adds it with
 * NULL in every row SQLite already held, whatever Postgres holds there (a
 * DEFAULT, or values written since).  Here those values are read from
 * Postgres, streamed in single-row mode (memory stays flat whatever the
 * table's size), and written into the existing local rows inside the
 * pull's open transaction: the column never holds a NULL Postgres does not
 * hold, and a later local edit of the row never pushes one.  Values are
 * Postgres's current ones, possibly newer than the stream's position: the
 * stream's later records for those rows carry the column and set it
 * again, so the row converges. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backfill.h"
#include "log.h"

#define FEEDBACK_US 5000000 /* status updates to the walsender meanwhile */

/* One table being filled. */
struct fill {
	const struct br_table *t;
	struct sl_column *pc;  /* the table's columns in Postgres */
	size_t npc;
	size_t *pick;          /* indexes into pc: the key columns, then the added ones */
	size_t npick, nkey;
	struct dec_field *f;   /* one per picked column, refilled for every row */
	uint64_t rows;
};

static const struct br_table *table_by_local(struct pgsb *b, const char *local)
{
	for (size_t i = 0; i < b->ntables; i++)
		if (strcasecmp(b->tables[i].local, local) == 0)
			return &b->tables[i];
	return NULL;
}

static bool picked(const struct fill *fl, size_t k)
{
	for (size_t j = 0; j < fl->npick; j++)
		if (fl->pick[j] == k)
			return true;
	return false;
}

/* The key columns in key order, then the columns of `local` the apply
 * added that Postgres still has.  Returns the number of added ones. */
static size_t pick_columns(struct pgsb *b, struct fill *fl, const char *local)
{
	for (int pos = 1; pos <= (int)fl->npc; pos++)
		for (size_t k = 0; k < fl->npc; k++)
			if (fl->pc[k].pk_pos == pos)
				fl->pick[fl->npick++] = k;
	fl->nkey = fl->npick;
	for (size_t i = 0; i < sl_added_count(b->db); i++) {
		const char *tab, *col = sl_added_column(b->db, i, &tab);
		for (size_t k = 0; strcasecmp(tab, local) == 0 && k < fl->npc; k++)
			if (strcmp(fl->pc[k].name, col) == 0 && !picked(fl, k))
				fl->pick[fl->npick++] = k;
	}
	return fl->npick - fl->nkey;
}

static char *select_sql(const struct fill *fl)
{
	char *sql = NULL, q[600];
	size_t len;
	FILE *m = open_memstream(&sql, &len);

	if (!m)
		return NULL;
	fputs("SELECT ", m);
	for (size_t j = 0; j < fl->npick; j++) {
		pgc_quote_ident(fl->pc[fl->pick[j]].name, q, sizeof q);
		fprintf(m, "%s%s", j ? ", " : "", q);
	}
	fprintf(m, " FROM %s", fl->t->qualified);
	fclose(m);
	return sql;
}

/* One row of the result into the local row with its key, if there is one. */
static int fill_row(struct pgsb *b, struct fill *fl, PGresult *r, char *err, size_t cap)
{
	struct dec_record rec = {.action = DEC_UPDATE};
	struct sl_err e;

	for (size_t j = 0; j < fl->npick; j++) {
		const struct sl_column *c = &fl->pc[fl->pick[j]];
		struct dec_field *f = &fl->f[j];
		memset(f, 0, sizeof *f);
		f->name.p = c->name;
		f->name.len = strlen(c->name);
		f->type.p = c->pg_type;
		f->type.len = strlen(c->pg_type);
		f->typeoid = c->typeoid;
		if (PQgetisnull(r, 0, (int)j))
			f->kind = DEC_NULL;
		else
			pgc_text_field(f, c->typeoid, PQgetvalue(r, 0, (int)j),
			               (size_t)PQgetlength(r, 0, (int)j));
	}
	rec.schema = (struct dec_str){fl->t->schema, strlen(fl->t->schema)};
	rec.table = (struct dec_str){fl->t->name, strlen(fl->t->name)};
	rec.columns = fl->f;
	rec.ncolumns = fl->npick;
	rec.pk = fl->f;
	rec.npk = fl->nkey;
	if (sl_update_existing(b->db, &rec, &e)) {
		snprintf(err, cap, "cannot fill in the new columns of \"%s\": %s", fl->t->local, e.msg);
		return -1;
	}
	/* A big table takes a while: the walsender, unread meanwhile, must
	 * still hear from us before wal_sender_timeout. */
	if (++fl->rows % 1024 == 0 && br_now_us() - b->repl.last_feedback_us >= FEEDBACK_US)
		repl_send_feedback(b, false);
	return 0;
}

/* Streams the rows (single-row mode) into fill_row. */
static int stream_rows(struct pgsb *b, PGconn *c, struct fill *fl, char *err, size_t cap)
{
	char *sql = select_sql(fl);
	int rc = -1;
	PGresult *r;

	if (sql && PQsendQuery(c, sql) && PQsetSingleRowMode(c))
		rc = 0;
	else
		pgc_error_text(c, err, cap);
	free(sql);
	while ((r = PQgetResult(c)) != NULL) {
		ExecStatusType st = PQresultStatus(r);
		if (rc == 0 && st == PGRES_SINGLE_TUPLE)
			rc = fill_row(b, fl, r, err, cap);
		else if (rc == 0 && st != PGRES_TUPLES_OK) {
			snprintf(err, cap, "%s", PQresultErrorMessage(r));
			rc = -1;
		}
		PQclear(r);
	}
	return rc;
}

static int fill_table(struct pgsb *b, PGconn *c, const struct br_table *t, char *err, size_t cap)
{
	struct fill fl = {.t = t};
	int rc = -1;

	if (pgc_table_columns(c, t, &fl.pc, &fl.npc, err, cap))
		return -1;
	fl.pick = calloc(fl.npc, sizeof *fl.pick);
	fl.f = calloc(fl.npc, sizeof *fl.f);
	if (!fl.pick || !fl.f)
		snprintf(err, cap, "out of memory");
	else if (pick_columns(b, &fl, t->local) == 0 || fl.nkey == 0)
		rc = 0; /* dropped again in Postgres since, or no key: nothing to read */
	else if ((rc = stream_rows(b, c, &fl, err, cap)) == 0)
		log_info("%zu column(s) added to \"%s\": %llu existing row(s) read from Postgres",
		         fl.npick - fl.nkey, t->local, (unsigned long long)fl.rows);
	free(fl.pick);
	free(fl.f);
	pgc_free_columns(fl.pc, fl.npc);
	return rc;
}

/* Was this entry's table handled at an earlier entry? */
static bool seen_before(struct pgsb *b, size_t i)
{
	const char *ti, *tj;

	sl_added_column(b->db, i, &ti);
	for (size_t j = 0; j < i; j++) {
		sl_added_column(b->db, j, &tj);
		if (strcasecmp(ti, tj) == 0)
			return true;
	}
	return false;
}

int backfill_added_columns(struct pgsb *b, char *err, size_t cap)
{
	if (sl_added_count(b->db) == 0)
		return 0;
	PGconn *c = pgc_connect(b, false, err, cap);
	int rc = c ? 0 : -1;

	for (size_t i = 0; rc == 0 && i < sl_added_count(b->db); i++) {
		const char *local;
		sl_added_column(b->db, i, &local);
		const struct br_table *t = table_by_local(b, local);
		if (t && !seen_before(b, i))
			rc = fill_table(b, c, t, err, cap);
	}
	PQfinish(c);
	if (rc == 0)
		sl_added_clear(b->db);
	else
		snprintf(err + strlen(err), cap - strlen(err), " (reading new columns' values)");
	return rc;
}
