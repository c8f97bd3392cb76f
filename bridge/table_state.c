/* table_state.c: where each synced table stands, kept durably in
 * _pgsqlite_state as "table:<local name>":
 *   copied   its remote changes are applied as they stream;
 *   skipped  they are not (skip = true, or a push-only table): it needs an
 *            online snapshot before it is pulled again;
 *   snapshot an online snapshot is due or under way (redone from the start
 *            after a restart).
 * A table with no such key in a file that records them ("tables_tracked")
 * was added to the config after init: it needs a snapshot too.  A file
 * initialised before these keys existed counts its tables as copied. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br.h"
#include "table_snap.h"

static void state_key(const struct br_table *t, char *key, size_t cap)
{
	snprintf(key, cap, "table:%s", t->local);
}

int tstate_set(struct pgsb *b, const struct br_table *t, const char *state, char *err, size_t cap)
{
	char key[300];
	struct sl_err e;

	state_key(t, key, sizeof key);
	if (sl_state_set(b->db, key, state, &e)) {
		snprintf(err, cap, "cannot record the state of \"%s\": %s", t->local, e.msg);
		return -1;
	}
	return 0;
}

enum tstate tstate_get(struct pgsb *b, const struct br_table *t)
{
	char key[300], v[32], tracked[8];

	state_key(t, key, sizeof key);
	int found = sl_state_get(b->db, key, v, sizeof v);
	if (found == 1 && strcmp(v, "copied") == 0)
		return TSTATE_COPIED;
	if (found == 1 && strcmp(v, "skipped") == 0)
		return TSTATE_SKIPPED;
	if (found == 1)
		return TSTATE_SNAPSHOT;
	bool known = sl_state_get(b->db, "tables_tracked", tracked, sizeof tracked) == 1;
	return known ? TSTATE_SNAPSHOT : TSTATE_COPIED; /* added to the config, or an older file */
}

int tstate_mark_all_copied(struct pgsb *b, char *err, size_t cap)
{
	struct sl_err e;

	for (size_t i = 0; i < b->ntables; i++)
		if (tstate_set(b, &b->tables[i], "copied", err, cap))
			return -1;
	if (sl_state_set(b->db, "tables_tracked", "1", &e)) {
		snprintf(err, cap, "cannot record table states: %s", e.msg);
		return -1;
	}
	return 0;
}

/* Is the table's remote side applied at all (not skipped, not push-only)? */
bool tstate_pulled(const struct br_table *t)
{
	return !t->skip && t->direction != CFG_DIRECTION_PUSH;
}

/* A table left out of the config is no longer pulled: if it comes back,
 * it is copied again. */
static int forget_left_out(struct pgsb *b, char *err, size_t cap)
{
	if (sqlite3_exec(sl_handle(b->db), "UPDATE _pgsqlite_state SET value = 'skipped' "
	                 "WHERE key LIKE 'table:%' AND value = 'copied'", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, cap, "cannot record table states: %s", sqlite3_errmsg(sl_handle(b->db)));
		return -1;
	}
	return 0;
}

/* Reads every table's state, records the skipped ones, and marks those to
 * copy (phase pending).  Inside an open transaction. */
int tstate_plan(struct pgsb *b, char *err, size_t cap)
{
	struct sl_err e;
	enum tstate *st = calloc(b->ntables ? b->ntables : 1, sizeof *st);

	if (!st) {
		snprintf(err, cap, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < b->ntables; i++)
		st[i] = tstate_get(b, &b->tables[i]);
	int rc = forget_left_out(b, err, cap);
	for (size_t i = 0; i < b->ntables && rc == 0; i++) {
		struct br_table *t = &b->tables[i];
		bool copy = tstate_pulled(t) && st[i] != TSTATE_COPIED;
		t->snap_phase = copy ? TSNAP_PENDING : TSNAP_NONE;
		rc = tstate_set(b, t, !tstate_pulled(t) ? "skipped" : copy ? "snapshot" : "copied", err, cap);
		atomic_store(&t->push_held, t->skip || copy);
	}
	free(st);
	if (rc)
		return -1;
	if (sl_state_set(b->db, "tables_tracked", "1", &e)) {
		snprintf(err, cap, "cannot record table states: %s", e.msg);
		return -1;
	}
	return 0;
}
