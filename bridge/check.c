/* check.c: `check`: validates every prerequisite on the Postgres side
 * (reachable, wal_level, slots, the role's privileges, wal2json usable,
 * a primary key on each table) and prints one line per problem with its
 * fix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "br.h"
#include "identity.h"

struct check_ctx {
	struct pgsb *b;
	PGconn *c;
	FILE *out;
	int problems;
	int skipped; /* tables left out by the default, warned about */
};

static void problem(struct check_ctx *cx, const char *what, const char *fix)
{
	fprintf(cx->out, "problem: %s; fix: %s\n", what, fix);
	cx->problems++;
}

/* The single text value of a parameterised query, or NULL. */
static char *query_value(PGconn *c, const char *sql, int n, const char *const *params)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	char *v = NULL;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		v = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

static void check_settings(struct check_ctx *cx)
{
	char *wal_level = query_value(cx->c, "SELECT current_setting('wal_level')", 0, NULL);
	char *slots = query_value(cx->c,
		"SELECT current_setting('max_replication_slots')::int - "
		"(SELECT count(*) FROM pg_replication_slots)", 0, NULL);
	char *senders = query_value(cx->c, "SELECT current_setting('max_wal_senders')", 0, NULL);

	if (!wal_level || strcmp(wal_level, "logical") != 0)
		problem(cx, "wal_level is not logical",
		        "ALTER SYSTEM SET wal_level = logical, then restart Postgres");
	const char *params[1] = {cx->b->cfg->slot};
	char *ours = query_value(cx->c, "SELECT 'yes' FROM pg_replication_slots WHERE slot_name = $1",
	                         1, params);
	if (slots && atoi(slots) < 1 && !ours)
		problem(cx, "no free replication slot (max_replication_slots is used up)",
		        "raise max_replication_slots, then restart Postgres");
	free(ours);
	if (senders && atoi(senders) < 1)
		problem(cx, "max_wal_senders is 0", "set max_wal_senders to 10 or more, then restart Postgres");
	free(wal_level);
	free(slots);
	free(senders);
}

static void check_role(struct check_ctx *cx)
{
	char *ok = query_value(cx->c,
		"SELECT (rolreplication OR rolsuper)::text FROM pg_roles WHERE rolname = current_user",
		0, NULL);

	if (!ok || strcmp(ok, "true") != 0)
		problem(cx, "the role has no REPLICATION privilege",
		        "ALTER ROLE <the bridge's role> REPLICATION (as a superuser)");
	free(ok);
}

/* Creates and drops a temporary wal2json slot: proves the plugin is
 * installed and allowed. */
static void check_wal2json(struct check_ctx *cx)
{
	char name[64];
	snprintf(name, sizeof name, "pgsqlite_bridge_check_%d", (int)getpid());
	const char *params[1] = {name};
	PGresult *r = PQexecParams(cx->c,
		"SELECT pg_drop_replication_slot(slot_name) FROM "
		"pg_create_logical_replication_slot($1, 'wal2json', true)",
		1, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		const char *m = PQresultErrorMessage(r);
		if (strstr(m, "output_plugin_libraries"))
			problem(cx, "the server does not allow wal2json as an output plugin",
			        "add wal2json to output_plugin_libraries in postgresql.conf "
			        "(output_plugin_libraries = 'pgoutput, test_decoding, wal2json') and reload");
		else if (strstr(m, "could not access file") || strstr(m, "wal2json"))
			problem(cx, "the wal2json output plugin is not installed on the server",
			        "install it (Debian: apt-get install postgresql-15-wal2json)");
		else if (!strstr(m, "permission denied") && !strstr(m, "must be superuser"))
			problem(cx, "cannot create a test logical replication slot", "see the server log");
	}
	PQclear(r);
}

/* Pushing runs under a replication origin: superuser, or EXECUTE on the
 * pg_replication_origin_* functions. */
static void check_origin_privileges(struct check_ctx *cx)
{
	static const char *const fns[] = {
		"pg_replication_origin_create(text)", "pg_replication_origin_session_setup(text)",
		"pg_replication_origin_xact_setup(pg_lsn, timestamp with time zone)",
		"pg_replication_origin_drop(text)"};
	char what[300], fix[400];

	for (size_t i = 0; i < sizeof fns / sizeof *fns; i++) {
		const char *params[1] = {fns[i]};
		char *ok = query_value(cx->c, "SELECT has_function_privilege($1, 'EXECUTE')::text", 1, params);
		if (!ok || strcmp(ok, "true") != 0) {
			snprintf(what, sizeof what, "the role may not call %s (pushing needs it)", fns[i]);
			snprintf(fix, sizeof fix, "GRANT EXECUTE ON FUNCTION %s TO <the bridge's role> (as a superuser)", fns[i]);
			problem(cx, what, fix);
		}
		free(ok);
	}
	char *ts = query_value(cx->c, "SELECT current_setting('track_commit_timestamp')", 0, NULL);
	if (ts && strcmp(ts, "on") != 0 && cx->b->cfg->conflict == CFG_CONFLICT_LAST_WRITE_WINS)
		fprintf(cx->out, "warning: track_commit_timestamp is off: last-write-wins cannot see when "
		        "Postgres rows were written and lets the local version win; fix: ALTER SYSTEM SET "
		        "track_commit_timestamp = on, then restart Postgres\n");
	free(ts);
}

/* Keys generated on both sides (serial, identity) collide across clients. */
static void check_generated_key(struct check_ctx *cx, const struct br_table *t)
{
	const char *params[2] = {t->schema, t->name};
	char *gen = query_value(cx->c,
		"SELECT string_agg(a.attname, ', ') FROM pg_index i JOIN pg_attribute a ON "
		"a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) LEFT JOIN pg_attrdef d ON "
		"d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE i.indisprimary AND "
		"i.indrelid = format('%I.%I', $1::text, $2::text)::regclass AND "
		"(a.attidentity <> '' OR pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%')",
		2, params);

	if (gen && t->direction == CFG_DIRECTION_BOTH)
		fprintf(cx->out, "warning: table \"%s.%s\" has a key generated by Postgres (%s) and is "
		        "written on both sides: keys generated by several clients collide; fix: use uuid "
		        "or text keys generated by the client\n", t->schema, t->name, gen);
	free(gen);
}

/* last-write-wins (and merge, for a column changed on both sides) compares
 * the two versions' times: on a two-way table they come from the
 * configured timestamp column or from Postgres commit timestamps.  With
 * neither, the local version wins every conflict with a Postgres update. */
static void check_remote_times(struct check_ctx *cx, const struct br_table *t,
                               const struct sl_column *cols, size_t n)
{
	const char *tc = cx->b->cfg->timestamp_column;
	bool by_time = t->conflict == CFG_CONFLICT_LAST_WRITE_WINS || t->conflict == CFG_CONFLICT_MERGE;

	if (!by_time || t->direction != CFG_DIRECTION_BOTH)
		return;
	for (size_t i = 0; tc && *tc && i < n; i++)
		if (strcmp(cols[i].name, tc) == 0)
			return;
	char *ts = query_value(cx->c, "SELECT current_setting('track_commit_timestamp')", 0, NULL);
	if (ts && strcmp(ts, "on") != 0)
		fprintf(cx->out, "warning: table \"%s.%s\" uses %s but has no timestamp column (%s) and "
		        "track_commit_timestamp is off: Postgres's times are unknown and the local version "
		        "wins; fix: ALTER SYSTEM SET track_commit_timestamp = on and restart Postgres, or "
		        "add the timestamp column\n", t->schema, t->name, cfg_conflict_name(t->conflict),
		        tc && *tc ? tc : "timestamp_column is not set");
	free(ts);
}

static void check_table(struct check_ctx *cx, struct br_table *t)
{
	char what[700], fix[700], err[512];
	struct sl_column *cols;
	size_t n, pk = 0;

	if (pgc_table_columns(cx->c, t, &cols, &n, err, sizeof err)) {
		snprintf(what, sizeof what, "table \"%s.%s\": %s", t->schema, t->name, err);
		problem(cx, what, "create the table in Postgres, or fix its [table] section");
		return;
	}
	for (size_t i = 0; i < n; i++)
		pk += cols[i].pk_pos > 0;
	check_remote_times(cx, t, cols, n);
	if (limits_check_table(cx->b, t, cols, n, what, sizeof what))
		problem(cx, what, "set order_column to one of the table's columns, or remove "
		        "max_records and order_column");
	pgc_free_columns(cols, n);
	if (pk == 0) {
		snprintf(what, sizeof what, "table \"%s.%s\" has no primary key (wal2json drops its "
		         "updates and deletes, and rows are applied by key)", t->schema, t->name);
		snprintf(fix, sizeof fix, "ALTER TABLE \"%s\".\"%s\" ADD PRIMARY KEY (...)", t->schema, t->name);
		problem(cx, what, fix);
	}
	const char *params[2] = {t->schema, t->name};
	char *sel = query_value(cx->c,
		"SELECT has_table_privilege(format('%I.%I', $1::text, $2::text), 'SELECT')::text",
		2, params);
	if (sel && strcmp(sel, "true") != 0) {
		snprintf(what, sizeof what, "no SELECT privilege on \"%s.%s\"", t->schema, t->name);
		snprintf(fix, sizeof fix, "GRANT SELECT ON \"%s\".\"%s\" TO <the bridge's role>", t->schema, t->name);
		problem(cx, what, fix);
	}
	free(sel);
	check_generated_key(cx, t);
}

/* A table the stream cannot carry (its replica identity lacks the key): a
 * problem; one the default leaves out (t NULL): a warning. */
static void refused(void *arg, const struct br_table *t, const char *what, const char *fix)
{
	struct check_ctx *cx = arg;

	if (t) {
		problem(cx, what, fix);
		return;
	}
	fprintf(cx->out, "warning: %s; fix: %s\n", what, fix);
	cx->skipped++;
}

int pgsb_check(struct pgsb *b, FILE *out)
{
	struct check_ctx cx = {.b = b, .out = out};
	char err[512];

	cx.c = pgc_connect(b, false, err, sizeof err);
	if (!cx.c) {
		char what[1200];
		snprintf(what, sizeof what, "cannot connect to Postgres (%s): %s", b->conninfo_masked, err);
		problem(&cx, what, "check the `postgres` key, the server and pg_hba.conf");
		return 1;
	}
	check_settings(&cx);
	check_role(&cx);
	check_wal2json(&cx);
	check_origin_privileges(&cx);
	int before = cx.problems;
	if (pgc_resolve_tables_reporting(b, cx.c, refused, &cx, err, sizeof err))
		problem(&cx, err, "check the [table] sections");
	else if (b->ntables == 0 && cx.problems == before)
		problem(&cx, "no table to sync (no [table] section, and no table of schema public "
		        "has a primary key)", "add [table schema.name] sections");
	for (size_t i = 0; i < b->ntables; i++)
		check_table(&cx, &b->tables[i]);
	PQfinish(cx.c);
	if (cx.problems == 0)
		fprintf(out, "ok: all prerequisites hold for %zu tables%s\n", b->ntables,
		        cx.skipped ? " (the tables named in the warnings above are not synced)" : "");
	return cx.problems ? 1 : 0;
}
