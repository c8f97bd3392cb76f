/* pgconn.c: Postgres connections for the bridge (replication or plain, with
 * the session settings values depend on), identifier quoting, and the
 * catalogue look-ups that resolve the synced tables and their columns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br.h"
#include "identity.h"
#include "log.h"

/* Settings that fix how values are printed, whatever the server defaults. */
#define PGC_SESSION_OPTIONS                                                   \
	"-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres "         \
	"-c extra_float_digits=1 -c bytea_output=hex"

void pgc_error_text(PGconn *c, char *err, size_t cap)
{
	const char *m = c ? PQerrorMessage(c) : "out of memory";
	size_t n = strlen(m);

	while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
		n--;
	snprintf(err, cap, "%.*s", (int)n, m);
	for (char *p = err; *p; p++)
		if (*p == '\n')
			*p = ' ';
}

/* The user's own "options" from the conninfo, so ours are added, not
 * substituted. */
static char *user_options(const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	char *found = NULL;

	if (!opts)
		return NULL;
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "options") == 0 && o->val && *o->val)
			found = strdup(o->val);
	PQconninfoFree(opts);
	return found;
}

/* Server notices go to our log, not straight to stderr. */
static void on_notice(void *arg, const char *message)
{
	size_t n = strlen(message);

	(void)arg;
	while (n > 0 && message[n - 1] == '\n')
		n--;
	log_debug("server: %.*s", (int)n, message);
}

PGconn *pgc_connect(struct pgsb *b, bool replication, char *err, size_t cap)
{
	char appname[128], options[1024];
	char *uopts = user_options(b->cfg->postgres);

	snprintf(appname, sizeof appname, "pgsqlite-bridge %s", b->cfg->slot);
	snprintf(options, sizeof options, "%s%s%s", uopts ? uopts : "",
	         uopts ? " " : "", PGC_SESSION_OPTIONS);
	free(uopts);
	/* Defaults first (the user's conninfo overrides them), forced last. */
	const char *keys[] = {"connect_timeout", "keepalives_idle", "keepalives_interval",
	                      "keepalives_count", "application_name", "dbname",
	                      "options", replication ? "replication" : NULL, NULL};
	const char *vals[] = {"10", "20", "5", "3", appname, b->cfg->postgres,
	                      options, replication ? "database" : NULL, NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 1);

	if (!c || PQstatus(c) != CONNECTION_OK) {
		pgc_error_text(c, err, cap);
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, on_notice, NULL);
	return c;
}

int pgc_exec_ok(PGconn *c, const char *sql, char *err, size_t cap)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	int rc = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) ? 0 : -1;

	if (rc)
		pgc_error_text(c, err, cap);
	PQclear(r);
	return rc;
}

void pgc_quote_ident(const char *s, char *buf, size_t cap)
{
	size_t o = 0;

	if (cap < 3) {
		if (cap)
			buf[0] = '\0';
		return;
	}
	buf[o++] = '"';
	for (; *s && o + 3 < cap; s++) {
		if (*s == '"')
			buf[o++] = '"';
		buf[o++] = *s;
	}
	buf[o++] = '"';
	buf[o] = '\0';
}

char *pgc_quote_literal(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(2 * n + 3), *o = out;

	if (!out)
		return NULL;
	*o++ = '\'';
	for (; *s; s++) {
		if (*s == '\'')
			*o++ = '\'';
		*o++ = *s;
	}
	*o++ = '\'';
	*o = '\0';
	return out;
}

/* The oid of type x with domains resolved to their base type (domains of
 * domains too), and an array of domains to its base type's array: what
 * decides the SQLite column type and how values are read. */
#define PGC_BASE_OF(x)                                                          \
	"(WITH RECURSIVE d(oid, base) AS (SELECT bt.oid, bt.typbasetype FROM "  \
	"pg_catalog.pg_type bt WHERE bt.oid = " x " UNION ALL SELECT bt.oid, "  \
	"bt.typbasetype FROM pg_catalog.pg_type bt JOIN d ON bt.oid = d.base) " \
	"SELECT d.oid FROM d WHERE d.base = 0)"
#define PGC_RESOLVED_TYPE(x)                                                    \
	"(SELECT CASE WHEN rt.typelem <> 0 AND rt.typlen = -1 THEN COALESCE("   \
	"(SELECT et.typarray FROM pg_catalog.pg_type et WHERE et.oid = "        \
	PGC_BASE_OF("rt.typelem") "), rt.oid) ELSE " PGC_BASE_OF("rt.oid")      \
	" END FROM pg_catalog.pg_type rt WHERE rt.oid = " x ")"

static uint32_t base_type(PGconn *c, uint32_t typeoid)
{
	char oid[16];
	const char *params[1] = {oid};

	snprintf(oid, sizeof oid, "%u", typeoid);
	PGresult *r = PQexecParams(c, "SELECT " PGC_RESOLVED_TYPE("$1::oid"), 1, NULL, params,
	                           NULL, NULL, 0);
	uint32_t base = 0;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		base = (uint32_t)strtoul(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return base;
}

/* The SQLite side's resolver for types a streamed record brings (a column
 * added in Postgres with a domain type): one catalogue look-up on a
 * connection of its own, once per type. */
static uint32_t stream_type_base(void *arg, uint32_t typeoid)
{
	struct pgsb *b = arg;
	char err[512];
	PGconn *c = pgc_connect(b, false, err, sizeof err);
	uint32_t base = c ? base_type(c, typeoid) : 0;

	if (!base)
		log_warn("cannot resolve type oid %u (%s): its column becomes TEXT", typeoid,
		         c ? "not found" : err);
	PQfinish(c);
	return base;
}

static int add_table(struct pgsb *b, const char *schema, const char *name,
                     enum cfg_direction dir, enum cfg_conflict conflict,
                     enum cfg_priority priority, bool skip)
{
	struct br_table *t = realloc(b->tables, (b->ntables + 1) * sizeof *t);

	if (!t)
		return -1;
	b->tables = t;
	t = &b->tables[b->ntables++];
	memset(t, 0, sizeof *t);
	t->schema = strdup(schema);
	t->name = strdup(name);
	t->direction = dir;
	t->conflict = conflict;
	t->priority = priority;
	t->skip = skip;
	sl_local_name(schema, strlen(schema), name, strlen(name), t->local, sizeof t->local);
	char qs[300], qn[300];
	pgc_quote_ident(schema, qs, sizeof qs);
	pgc_quote_ident(name, qn, sizeof qn);
	snprintf(t->qualified, sizeof t->qualified, "%s.%s", qs, qn);
	return (t->schema && t->name) ? 0 : -1;
}

static void free_tables(struct pgsb *b)
{
	for (size_t i = 0; i < b->ntables; i++) {
		free(b->tables[i].schema);
		free(b->tables[i].name);
		pgc_free_columns(b->tables[i].pgcols, b->tables[i].npgcols);
	}
	free(b->tables);
	b->tables = NULL;
	b->ntables = 0;
}

/* With no [table] sections: every ordinary table of schema public that has
 * a primary key. */
static int resolve_default_tables(struct pgsb *b, PGconn *c, char *err, size_t cap)
{
	PGresult *r = PQexec(c,
		"SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
		"WHERE n.nspname = 'public' AND c.relkind = 'r' AND EXISTS "
		"(SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) "
		"ORDER BY c.relname");
	int rc = 0;

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		pgc_error_text(c, err, cap);
		PQclear(r);
		return -1;
	}
	for (int i = 0; i < PQntuples(r) && rc == 0; i++)
		rc = add_table(b, "public", PQgetvalue(r, i, 0), b->cfg->direction, b->cfg->conflict,
		               CFG_PRIORITY_MEDIUM, false);
	PQclear(r);
	return rc;
}

/* With no [table] sections: the tables the default leaves out (of schema
 * public without a primary key, or of another schema), each told to fn
 * with a NULL table. */
static int report_default_skips(PGconn *c, ident_refused_fn fn, void *arg, char *err, size_t cap)
{
	PGresult *r = PQexec(c,
		"SELECT n.nspname, c.relname, n.nspname = 'public' FROM pg_class c JOIN pg_namespace n "
		"ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' "
		"AND n.nspname !~ '^pg_' AND (n.nspname <> 'public' OR NOT EXISTS (SELECT 1 FROM "
		"pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)) ORDER BY 3 DESC, 1, 2");
	char what[1400], fix[800];

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		pgc_error_text(c, err, cap);
		PQclear(r);
		return -1;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		const char *s = PQgetvalue(r, i, 0), *n = PQgetvalue(r, i, 1);
		if (PQgetvalue(r, i, 2)[0] == 't') {
			snprintf(what, sizeof what, "table \"%s.%s\" has no primary key: it is not synced "
			         "(wal2json sends its updates and deletes without a key, and rows are "
			         "applied by key)", s, n);
			snprintf(fix, sizeof fix, "ALTER TABLE \"%s\".\"%s\" ADD PRIMARY KEY (...)", s, n);
		} else {
			snprintf(what, sizeof what, "table \"%s.%s\" is not synced: with no [table] "
			         "section only tables of schema public are", s, n);
			snprintf(fix, sizeof fix, "list every table to sync in [table schema.name] "
			         "sections, [table %s.%s] among them", s, n);
		}
		fn(arg, NULL, what, fix);
	}
	PQclear(r);
	return 0;
}

/* Critical tables first, then high, medium, low; the config's order
 * within each (a stable insertion sort: the list is short).  The initial
 * copy goes in this order. */
void br_sort_tables_by_priority(struct pgsb *b)
{
	for (size_t i = 1; i < b->ntables; i++) {
		struct br_table t = b->tables[i];
		size_t j = i;
		for (; j > 0 && b->tables[j - 1].priority > t.priority; j--)
			b->tables[j] = b->tables[j - 1];
		b->tables[j] = t;
	}
}

static int resolve_configured(struct pgsb *b, PGconn *c, char *err, size_t cap)
{
	if (b->cfg->ntables == 0)
		return resolve_default_tables(b, c, err, cap);
	for (size_t i = 0; i < b->cfg->ntables; i++) {
		const struct cfg_table *t = &b->cfg->tables[i];
		if (add_table(b, t->schema, t->name, cfg_table_direction(b->cfg, t),
		              cfg_table_conflict(b->cfg, t), t->priority, t->skip)) {
			snprintf(err, cap, "out of memory");
			return -1;
		}
	}
	return 0;
}

int pgc_resolve_tables_reporting(struct pgsb *b, PGconn *c, ident_refused_fn fn, void *arg,
                                 char *err, size_t cap)
{
	free_tables(b);
	if (b->db) /* from here on, the tables are read by their catalogue types */
		sl_set_type_resolver(b->db, stream_type_base, b);
	if (resolve_configured(b, c, err, cap))
		return -1;
	if (b->cfg->ntables == 0 && report_default_skips(c, fn, arg, err, cap))
		return -1;
	if (ident_refuse_tables(b, c, fn, arg, err, cap))
		return -1;
	br_sort_tables_by_priority(b);
	return 0;
}

/* A refused table, named in the log and as an error event. */
static void log_refused(void *arg, const struct br_table *t, const char *what, const char *fix)
{
	char msg[2400];

	snprintf(msg, sizeof msg, "%s; fix: %s", what, fix);
	log_warn("%s", msg);
	if (t) /* a table left out by the default is no error */
		ev_emit_error(arg, msg, false);
}

int pgc_resolve_tables(struct pgsb *b, PGconn *c, char *err, size_t cap)
{
	return pgc_resolve_tables_reporting(b, c, log_refused, b, err, cap);
}

void pgc_free_columns(struct sl_column *cols, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)cols[i].name);
		free((char *)cols[i].pg_type);
	}
	free(cols);
}

static PGresult *query_columns(PGconn *c, const struct br_table *t)
{
	const char *params[2] = {t->schema, t->name};

	return PQexecParams(c,
		"SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
		PGC_RESOLVED_TYPE("a.atttypid") ", "
		"COALESCE((SELECT k.n FROM unnest(i.indkey) WITH ORDINALITY AS k(att, n) "
		"WHERE k.att = a.attnum), 0), a.atthasdef OR a.attidentity <> '' "
		"FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
		"JOIN pg_namespace n ON n.oid = c.relnamespace "
		"LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary "
		"WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 "
		"AND NOT a.attisdropped ORDER BY a.attnum",
		2, NULL, params, NULL, NULL, 0);
}

int pgc_table_columns(PGconn *c, const struct br_table *t, struct sl_column **out,
                      size_t *nout, char *err, size_t cap)
{
	PGresult *r = query_columns(c, t);
	int n = PQntuples(r);

	if (PQresultStatus(r) != PGRES_TUPLES_OK || n == 0) {
		if (PQresultStatus(r) == PGRES_TUPLES_OK)
			snprintf(err, cap, "table \"%s.%s\" does not exist", t->schema, t->name);
		else
			pgc_error_text(c, err, cap);
		PQclear(r);
		return -1;
	}
	struct sl_column *cols = calloc((size_t)n, sizeof *cols);
	for (int i = 0; cols && i < n; i++) {
		cols[i].name = strdup(PQgetvalue(r, i, 0));
		cols[i].pg_type = strdup(PQgetvalue(r, i, 1));
		cols[i].typeoid = (uint32_t)strtoul(PQgetvalue(r, i, 2), NULL, 10);
		cols[i].pk_pos = atoi(PQgetvalue(r, i, 3));
		cols[i].has_default = PQgetvalue(r, i, 4)[0] == 't';
	}
	PQclear(r);
	if (!cols) {
		snprintf(err, cap, "out of memory");
		return -1;
	}
	*out = cols;
	*nout = (size_t)n;
	return 0;
}

void pgc_text_field(struct dec_field *f, uint32_t typeoid, const char *text, size_t len)
{
	f->kind = DEC_STRING;
	f->value.p = text;
	f->value.len = len;
	if (typeoid == 16) { /* boolean: Postgres prints t / f */
		f->kind = text[0] == 't' ? DEC_TRUE : DEC_FALSE;
	} else if (typeoid == 17 && len >= 2 && text[0] == '\\' && text[1] == 'x') {
		f->value.p = text + 2; /* bytea: hex, as wal2json sends it */
		f->value.len = len - 2;
	} else if (typeoid == 20 || typeoid == 21 || typeoid == 23 || typeoid == 1700 ||
	           typeoid == 700 || typeoid == 701) {
		f->kind = DEC_NUMBER;
	}
}

size_t pgc_row_fields(PGresult *r, int row, const struct br_table *known, struct dec_field *f)
{
	size_t n = 0;

	for (int j = 0; j < PQnfields(r); j++) {
		const char *name = PQfname(r, j);
		bool listed = !known;
		for (size_t i = 0; known && i < known->npgcols && !listed; i++)
			listed = strcmp(known->pgcols[i].name, name) == 0;
		if (!listed)
			continue; /* the push's own bookkeeping columns */
		f[n].name = (struct dec_str){name, strlen(name)};
		f[n].typeoid = PQftype(r, j);
		if (PQgetisnull(r, row, j))
			f[n].kind = DEC_NULL;
		else
			pgc_text_field(&f[n], f[n].typeoid, PQgetvalue(r, row, j), (size_t)PQgetlength(r, row, j));
		n++;
	}
	return n;
}
