/* identity.c: refuses the tables whose REPLICA IDENTITY does not carry
 * the primary key.  wal2json writes a delete (and an update's old row)
 * with the identity columns only: under REPLICA IDENTITY NOTHING none,
 * under USING INDEX that index's, which may lack the key the rows are
 * applied by.  Such a table is named with its fix and left out; the other
 * tables are synced. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity.h"

/* relreplident, the replica index's name, and the primary-key columns
 * that index lacks (NULL when it holds them all). */
#define IDENTITY_SQL                                                               \
	"SELECT c.relreplident, (SELECT ir.relname FROM pg_catalog.pg_index r "        \
	"JOIN pg_catalog.pg_class ir ON ir.oid = r.indexrelid WHERE r.indrelid = c.oid " \
	"AND r.indisreplident), (SELECT string_agg(a.attname, ', ' ORDER BY a.attnum) " \
	"FROM pg_catalog.pg_index p JOIN pg_catalog.pg_attribute a ON a.attrelid = "   \
	"p.indrelid AND a.attnum = ANY (p.indkey) WHERE p.indrelid = c.oid AND "       \
	"p.indisprimary AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index r WHERE "    \
	"r.indrelid = c.oid AND r.indisreplident AND a.attnum = ANY (r.indkey))) "     \
	"FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = "       \
	"c.relnamespace WHERE n.nspname = $1 AND c.relname = $2"

/* Fills what/fix and returns 1 when t must be refused, 0 when it may be
 * synced (or does not exist: told elsewhere), -1 on a catalogue error. */
static int identity_problem(PGconn *c, const struct br_table *t, char *what, size_t wcap,
                            char *fix, size_t fcap)
{
	const char *params[2] = {t->schema, t->name};
	PGresult *r = PQexecParams(c, IDENTITY_SQL, 2, NULL, params, NULL, NULL, 0);
	int rc = 0;

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		rc = -1;
	else if (PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 'n') {
		snprintf(what, wcap, "table \"%s.%s\" has REPLICA IDENTITY NOTHING: wal2json sends its "
		         "updates and deletes without a key; it is not synced", t->schema, t->name);
		rc = 1;
	} else if (PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 'i' && !PQgetisnull(r, 0, 2)) {
		snprintf(what, wcap, "table \"%s.%s\" has REPLICA IDENTITY USING INDEX \"%s\", which lacks "
		         "its primary key column(s) %s: wal2json sends its deletes and old rows without "
		         "the key; it is not synced", t->schema, t->name, PQgetvalue(r, 0, 1),
		         PQgetvalue(r, 0, 2));
		rc = 1;
	}
	if (rc == 1)
		snprintf(fix, fcap, "ALTER TABLE %s REPLICA IDENTITY DEFAULT (or REPLICA IDENTITY FULL)",
		         t->qualified);
	PQclear(r);
	return rc;
}

static void table_free(struct br_table *t)
{
	free(t->schema);
	free(t->name);
	pgc_free_columns(t->pgcols, t->npgcols);
}

int ident_refuse_tables(struct pgsb *b, PGconn *c, ident_refused_fn fn, void *arg, char *err,
                        size_t cap)
{
	char what[1400], fix[800];
	size_t kept = 0;

	for (size_t i = 0; i < b->ntables; i++) {
		int rc = identity_problem(c, &b->tables[i], what, sizeof what, fix, sizeof fix);
		if (rc < 0) {
			pgc_error_text(c, err, cap);
			return -1;
		}
		if (rc == 0) {
			b->tables[kept++] = b->tables[i];
			continue;
		}
		fn(arg, &b->tables[i], what, fix);
		table_free(&b->tables[i]);
	}
	b->ntables = kept;
	return 0;
}
