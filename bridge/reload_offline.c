/* reload_offline.c: a reload while Postgres cannot be reached.  What
 * needs no catalogue applies now: mode, interval, debounce, strategies,
 * log format, limits, and each table already synced keeps its resolved
 * entry with its new direction, strategy, priority and skip (its capture
 * triggers follow its direction; its order_column is checked against the
 * local table, which has Postgres's columns).  A table the config adds is
 * left for later, with anything else the catalogue must say (the tables
 * of the default list, a new order_column's type): b->tables_deferred is
 * set, and the table list is resolved again once Postgres answers, before
 * the stream starts (reload_resume); a table added is then copied online. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br.h"
#include "log.h"

static const struct cfg_table *cfg_table_of(const struct cfg *c, const char *schema,
                                            const char *name)
{
	for (size_t i = 0; i < c->ntables; i++)
		if (strcmp(c->tables[i].schema, schema) == 0 && strcmp(c->tables[i].name, name) == 0)
			return &c->tables[i];
	return NULL;
}

static const struct br_table *old_table(const struct br_table *old, size_t n, const char *schema,
                                        const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(old[i].schema, schema) == 0 && strcmp(old[i].name, name) == 0)
			return &old[i];
	return NULL;
}

/* The old entry, resolved already, with the new config's settings. */
static int keep_table(struct pgsb *b, const struct br_table *o, const struct cfg_table *c)
{
	struct br_table *t = realloc(b->tables, (b->ntables + 1) * sizeof *t);

	if (!t)
		return -1;
	b->tables = t;
	t = &b->tables[b->ntables++];
	memset(t, 0, sizeof *t);
	memcpy(t->local, o->local, sizeof t->local);
	memcpy(t->qualified, o->qualified, sizeof t->qualified);
	t->schema = strdup(o->schema);
	t->name = strdup(o->name);
	t->direction = c ? cfg_table_direction(b->cfg, c) : b->cfg->direction;
	t->conflict = c ? cfg_table_conflict(b->cfg, c) : b->cfg->conflict;
	t->priority = c ? c->priority : CFG_PRIORITY_MEDIUM;
	t->skip = c && c->skip;
	t->server_computes = o->server_computes;
	t->order_numeric = o->order_numeric;
	return t->schema && t->name ? 0 : -1;
}

/* Does the local table have this column? 1, 0, -1. */
static int local_column(struct pgsb *b, const char *local, const char *column)
{
	sqlite3_stmt *st = NULL;
	int found = 0;

	if (sqlite3_prepare_v2(sl_handle(b->db), "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2",
	                       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, local, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, column, -1, SQLITE_STATIC);
	found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return found;
}

/* order_column checked against the local table; a changed one's type is
 * the catalogue's to say (deferred). */
static int check_order(struct pgsb *b, struct br_table *t, const struct cfg *old_cfg,
                       bool *deferred, char *err, size_t cap)
{
	const struct cfg_table *c = cfg_table_of(b->cfg, t->schema, t->name);
	const struct cfg_table *oc = cfg_table_of(old_cfg, t->schema, t->name);

	if (!c || !c->order_column) {
		t->order_numeric = false;
		return 0;
	}
	if (local_column(b, t->local, c->order_column) != 1) {
		snprintf(err, cap, "%s:%d: key 'order_column' in [table %s.%s]: table \"%s.%s\" has no "
		         "column \"%s\" (allowed: one of its columns)", b->cfg->path,
		         c->order_column_line ? c->order_column_line : c->line, t->schema, t->name,
		         t->schema, t->name, c->order_column);
		return -1;
	}
	if (!oc || !oc->order_column || strcmp(oc->order_column, c->order_column) != 0) {
		t->order_numeric = false;
		*deferred = true;
	}
	return 0;
}

static int prepare_local(struct pgsb *b, const struct cfg *old_cfg, bool *deferred, char *err,
                         size_t cap)
{
	struct sl_err e;

	for (size_t i = 0; i < b->ntables; i++) {
		struct br_table *t = &b->tables[i];
		if (check_order(b, t, old_cfg, deferred, err, cap))
			return -1;
		int rc = t->direction == CFG_DIRECTION_PULL ? sl_capture_remove(b->db, t->local, &e)
		                                            : sl_capture_install(b->db, t->local, &e);
		if (rc) {
			snprintf(err, cap, "cannot prepare \"%s\": %s", t->local, e.msg);
			return -1;
		}
	}
	return 0;
}

int reload_offline_tables(struct pgsb *b, const struct br_table *old, size_t old_n,
                          const struct cfg *old_cfg, char *err, size_t cap)
{
	bool deferred = b->cfg->ntables == 0; /* the default list may have grown */
	int rc = 0;

	if (b->cfg->ntables == 0) {
		for (size_t i = 0; i < old_n && rc == 0; i++)
			rc = keep_table(b, &old[i], NULL);
	}
	for (size_t i = 0; i < b->cfg->ntables && rc == 0; i++) {
		const struct cfg_table *c = &b->cfg->tables[i];
		const struct br_table *o = old_table(old, old_n, c->schema, c->name);
		if (o)
			rc = keep_table(b, o, c);
		else
			deferred = true; /* added: resolved and copied once Postgres answers */
	}
	if (rc) {
		snprintf(err, cap, "out of memory");
		return -1;
	}
	br_sort_tables_by_priority(b);
	if (prepare_local(b, old_cfg, &deferred, err, cap))
		return -1;
	b->tables_deferred = deferred;
	if (deferred)
		log_warn("Postgres cannot be reached: the table list is resolved again once it "
		         "answers (tables added to the configuration are copied then)");
	return 0;
}
