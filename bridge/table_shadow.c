/* table_shadow.c: the shadow table an online snapshot copies into, so the
 * live table keeps its old rows for readers until the copy is whole.
 *
 * The shadow, _pgsqlite_shadow_<table>, is made from the live table's own
 * CREATE TABLE text (same columns, types, constraints, local-only columns)
 * with the application's indexes created on it while it is still empty,
 * so the copy's chunks maintain them and nothing is built at the swap.  It
 * has no triggers: nothing written to it is captured or synced.
 *
 * The swap is O(1), in one SQLite transaction: the live table is renamed
 * to _pgsqlite_old_<table> and the shadow to the live name, with
 * legacy_alter_table on so views, other tables' triggers and foreign keys,
 * which name the table, now name the new one.  The table's own triggers
 * (the bridge's capture triggers and the application's) are dropped from
 * the old table and created again on the new one.  An index of the
 * application keeps its definition; its name alternates between the name
 * it had and that name prefixed with _pgsqlite_ix_ (an index name is the
 * whole schema's, and the old table holds it until it is gone).  The old
 * table, and a shadow left by a copy cut off, are removed in bounded steps
 * (rows deleted a batch at a time, then the empty table dropped), since
 * dropping a large table at once holds the write lock as long as it takes
 * to free every page. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "br.h"
#include "table_snap.h"

#define CLEAN_ROWS 2000 /* rows deleted per cleaning step */
#define IX_PREFIX "_pgsqlite_ix_"

void shadow_name(const struct br_table *t, char *buf, size_t cap)
{
	snprintf(buf, cap, "_pgsqlite_shadow_%s", t->local);
}

static void old_name(const struct br_table *t, char *buf, size_t cap)
{
	snprintf(buf, cap, "_pgsqlite_old_%s", t->local);
}

/* "name" with double quotes doubled: an SQLite identifier. */
static void put_ident(FILE *m, const char *name, size_t len)
{
	fputc('"', m);
	for (size_t i = 0; i < len; i++) {
		if (name[i] == '"')
			fputc('"', m);
		fputc(name[i], m);
	}
	fputc('"', m);
}

static int exec(struct pgsb *b, const char *sql, const char *what, char *err, size_t cap)
{
	char *msg = NULL;

	if (sqlite3_exec(sl_handle(b->db), sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, cap, "%s: %s", what, msg ? msg : sqlite3_errmsg(sl_handle(b->db)));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* Past an identifier token of SQLite's schema text ("..", [..], `..`,
 * '..' or bare) at p, and any blanks before it.  NULL if there is none. */
static const char *skip_token(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	char close = *p == '"' ? '"' : *p == '[' ? ']' : *p == '`' ? '`' : *p == '\'' ? '\'' : 0;
	if (close) {
		for (p++; *p; p++)
			if (*p == close) {
				if (close != ']' && p[1] == close)
					p++;
				else
					return p + 1;
			}
		return NULL;
	}
	const char *start = p;
	while (*p && !strchr(" \t\n\r(.", *p))
		p++;
	return p > start ? p : NULL;
}

/* An identifier token, schema-qualified or not: past it, or NULL. */
static const char *skip_name(const char *p)
{
	p = skip_token(p);
	while (p && *p == '.')
		p = skip_token(p + 1);
	return p;
}

/* Past the keyword kw (and blanks before it) at p, or NULL. */
static const char *skip_word(const char *p, const char *kw)
{
	size_t n = strlen(kw);

	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return strncasecmp(p, kw, n) == 0 && !strchr("_abcdefghijklmnopqrstuvwxyz0123456789",
	                                          p[n] | 0x20) ? p + n : NULL;
}

/* CREATE TABLE <shadow> with the rest of the live table's text. */
static char *shadow_ddl(const char *sql, const char *shadow)
{
	const char *p = skip_word(sql, "CREATE");
	p = p ? skip_word(p, "TABLE") : NULL;
	p = p ? skip_name(p) : NULL;
	if (!p)
		return NULL;
	char *out = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&out, &len);
	if (!m)
		return NULL;
	fputs("CREATE TABLE ", m);
	put_ident(m, shadow, strlen(shadow));
	fputs(p, m);
	fclose(m);
	return out;
}

/* The name an application index takes on the shadow. */
static void index_twin(const char *name, char *buf, size_t cap)
{
	size_t n = strlen(IX_PREFIX);

	if (strncmp(name, IX_PREFIX, n) == 0 && name[n])
		snprintf(buf, cap, "%s", name + n);
	else
		snprintf(buf, cap, "%s%s", IX_PREFIX, name);
}

/* CREATE [UNIQUE] INDEX <twin> ON <shadow> with the rest of the index's text. */
static char *index_ddl(const char *sql, const char *name, const char *shadow)
{
	const char *p = skip_word(sql, "CREATE"), *u = p ? skip_word(p, "UNIQUE") : NULL;
	bool unique = u != NULL;

	p = u ? u : p;
	p = p ? skip_word(p, "INDEX") : NULL;
	p = p ? skip_name(p) : NULL;
	p = p ? skip_word(p, "ON") : NULL;
	p = p ? skip_name(p) : NULL;
	if (!p)
		return NULL;
	char twin[600], *out = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&out, &len);
	if (!m)
		return NULL;
	index_twin(name, twin, sizeof twin);
	fputs(unique ? "CREATE UNIQUE INDEX " : "CREATE INDEX ", m);
	put_ident(m, twin, strlen(twin));
	fputs(" ON ", m);
	put_ident(m, shadow, strlen(shadow));
	fputs(p, m);
	fclose(m);
	return out;
}

/* Runs each row's DDL, rewritten for the shadow, from a query of (name,
 * sql, is a table) about the table named local.  How many, or -1. */
static int copy_objects(struct pgsb *b, const char *query, const char *local, const char *shadow,
                        char *err, size_t cap)
{
	sqlite3_stmt *st = NULL;
	int rc = 0, n = 0;

	if (sqlite3_prepare_v2(sl_handle(b->db), query, -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, cap, "cannot read the schema: %s", sqlite3_errmsg(sl_handle(b->db)));
		return -1;
	}
	sqlite3_bind_text(st, 1, local, -1, SQLITE_STATIC);
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		n++;
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const char *sql = (const char *)sqlite3_column_text(st, 1);
		bool table = sqlite3_column_int(st, 2);
		char *ddl = !name || !sql ? NULL : table ? shadow_ddl(sql, shadow)
		                                          : index_ddl(sql, name, shadow);
		if (!ddl) {
			snprintf(err, cap, "cannot read the definition of \"%s\"", name ? name : "?");
			rc = -1;
		} else {
			rc = exec(b, ddl, "cannot create the shadow table", err, cap);
		}
		free(ddl);
	}
	sqlite3_finalize(st);
	return rc ? -1 : n;
}

int shadow_create(struct pgsb *b, const struct br_table *t, char *err, size_t cap)
{
	char shadow[600];

	shadow_name(t, shadow, sizeof shadow);
	int n = copy_objects(b, "SELECT name, sql, 1 FROM sqlite_master WHERE type = 'table' AND "
	                     "name = ?1", t->local, shadow, err, cap);
	if (n == 0)
		snprintf(err, cap, "no local table \"%s\" to copy into", t->local);
	if (n <= 0)
		return -1;
	return copy_objects(b, "SELECT name, sql, 0 FROM sqlite_master WHERE type = 'index' AND "
	                    "tbl_name = ?1 AND sql IS NOT NULL ORDER BY name", t->local, shadow,
	                    err, cap) < 0 ? -1 : 0;
}

/* The triggers of the live table: their names, and the application's
 * own definitions (malloc'd, NUL-separated, NUL-terminated twice). */
struct triggers {
	char *names, *user_sql;
	size_t names_len, user_len;
	bool captured; /* the bridge's capture triggers were there */
};

static int read_triggers(struct pgsb *b, const char *local, struct triggers *tr, char *err,
                         size_t cap)
{
	sqlite3_stmt *st = NULL;
	FILE *n = open_memstream(&tr->names, &tr->names_len);
	FILE *u = open_memstream(&tr->user_sql, &tr->user_len);
	int rc = n && u ? 0 : -1;

	if (rc == 0 && sqlite3_prepare_v2(sl_handle(b->db), "SELECT name, sql FROM sqlite_master "
	                                  "WHERE type = 'trigger' AND tbl_name = ?1", -1, &st,
	                                  NULL) != SQLITE_OK)
		rc = -1;
	sqlite3_bind_text(st, 1, local, -1, SQLITE_STATIC);
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const char *sql = (const char *)sqlite3_column_text(st, 1);
		if (!name || !sql)
			continue;
		fprintf(n, "%s%c", name, 0);
		if (strncmp(name, "_pgsqlite_", 10) == 0)
			tr->captured = true;
		else
			fprintf(u, "%s%c", sql, 0);
	}
	sqlite3_finalize(st);
	if (n)
		fputc(0, n), fclose(n);
	if (u)
		fputc(0, u), fclose(u);
	if (rc)
		snprintf(err, cap, "cannot read the triggers of \"%s\": %s", local,
		         sqlite3_errmsg(sl_handle(b->db)));
	return rc;
}

/* The old table's triggers dropped, the application's created again. */
static int move_triggers(struct pgsb *b, const struct triggers *tr, char *err, size_t cap)
{
	for (const char *p = tr->names; p && *p; p += strlen(p) + 1) {
		char *sql = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&sql, &len);
		if (!m)
			return -1;
		fputs("DROP TRIGGER IF EXISTS ", m);
		put_ident(m, p, strlen(p));
		fclose(m);
		int rc = exec(b, sql, "cannot move a trigger", err, cap);
		free(sql);
		if (rc)
			return -1;
	}
	for (const char *p = tr->user_sql; p && *p; p += strlen(p) + 1)
		if (exec(b, p, "cannot move a trigger", err, cap))
			return -1;
	return 0;
}

static int rename_table(struct pgsb *b, const char *from, const char *to, char *err, size_t cap)
{
	char *sql = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&sql, &len);

	if (!m)
		return -1;
	fputs("ALTER TABLE ", m);
	put_ident(m, from, strlen(from));
	fputs(" RENAME TO ", m);
	put_ident(m, to, strlen(to));
	fclose(m);
	int rc = exec(b, sql, "cannot swap the shadow table in", err, cap);
	free(sql);
	return rc;
}

int shadow_swap(struct pgsb *b, const struct br_table *t, char *err, size_t cap)
{
	char shadow[600], old[600];
	struct triggers tr = {0};
	struct sl_err e;

	shadow_name(t, shadow, sizeof shadow);
	old_name(t, old, sizeof old);
	int rc = read_triggers(b, t->local, &tr, err, cap);
	if (rc == 0)
		rc = exec(b, "PRAGMA legacy_alter_table = ON", "cannot swap", err, cap);
	if (rc == 0)
		rc = rename_table(b, t->local, old, err, cap) || rename_table(b, shadow, t->local, err, cap);
	char ignored[256];
	exec(b, "PRAGMA legacy_alter_table = OFF", "cannot swap", ignored, sizeof ignored);
	if (rc == 0)
		rc = move_triggers(b, &tr, err, cap);
	sl_schema_changed(b->db);
	if (rc == 0 && tr.captured && sl_capture_install(b->db, t->local, &e)) {
		snprintf(err, cap, "cannot capture \"%s\" again: %s", t->local, e.msg);
		rc = -1;
	}
	free(tr.names);
	free(tr.user_sql);
	return rc ? -1 : 0;
}

/* A leftover shadow or old table, removed a batch at a time, in the
 * pull's transaction (opened only when there is one).  1 more to do, 0
 * none left, -1 on failure. */
int shadow_clean_step(struct pgsb *b, char *err, size_t cap)
{
	sqlite3_stmt *st = NULL;
	char *name = NULL;

	if (sqlite3_prepare_v2(sl_handle(b->db), "SELECT name FROM sqlite_master WHERE type = "
	                       "'table' AND (name LIKE '\\_pgsqlite\\_old\\_%' ESCAPE '\\' OR "
	                       "name LIKE '\\_pgsqlite\\_shadow\\_%' ESCAPE '\\') LIMIT 1", -1, &st,
	                       NULL) != SQLITE_OK) {
		snprintf(err, cap, "cannot read the schema: %s", sqlite3_errmsg(sl_handle(b->db)));
		return -1;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		name = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (!name)
		return 0; /* no write transaction opened */
	if (pull_ensure_batch(b, err, cap)) {
		free(name);
		return -1;
	}
	char *del = NULL, *drop = NULL;
	size_t dlen = 0, plen = 0;
	FILE *m = open_memstream(&del, &dlen), *d = open_memstream(&drop, &plen);
	int rc = -1;
	if (m && d) {
		fputs("DELETE FROM ", m);
		put_ident(m, name, strlen(name));
		fputs(" WHERE rowid IN (SELECT rowid FROM ", m);
		put_ident(m, name, strlen(name));
		fprintf(m, " LIMIT %d)", CLEAN_ROWS);
		fputs("DROP TABLE ", d);
		put_ident(d, name, strlen(name));
	}
	if (m)
		fclose(m);
	if (d)
		fclose(d);
	if (del && drop) {
		/* a table without rowid is dropped at once */
		bool deleted = sqlite3_exec(sl_handle(b->db), del, NULL, NULL, NULL) == SQLITE_OK &&
		               sqlite3_changes(sl_handle(b->db)) > 0;
		rc = deleted ? 0 : exec(b, drop, "cannot drop a leftover copy", err, cap);
		if (rc == 0 && !deleted)
			sl_schema_changed(b->db);
	}
	free(del);
	free(drop);
	free(name);
	return rc ? -1 : 1;
}
