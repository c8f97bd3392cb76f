/* admin.c: the commands that inspect or remove the bridge's state:
 * `status` (JSON on stdout) and `drop` (slot, origin, triggers and the
 * bridge's own SQLite tables; user data stays). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "br.h"
#include "identity.h"
#include "log.h"

static void add_state(struct pgsb *b, cJSON *o, const char *json_key, const char *state_key)
{
	char v[256];

	if (sl_state_get(b->db, state_key, v, sizeof v) == 1)
		cJSON_AddStringToObject(o, json_key, v);
	else
		cJSON_AddNullToObject(o, json_key);
}

/* A state key that is added only once it was recorded. */
static void add_state_if_set(struct pgsb *b, cJSON *o, const char *key)
{
	char v[600];

	if (sl_state_get(b->db, key, v, sizeof v) == 1)
		cJSON_AddStringToObject(o, key, v);
}

/* The single integer of a query, or -1 (no such table, ...). */
static int64_t query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	if (sql && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* Pages in use (free pages do not count) against storage_limit; over it
 * with action error, a running bridge does not pull (limits.c). */
static void add_storage(struct pgsb *b, cJSON *o)
{
	int64_t used = sl_used_bytes(b->db), limit = b->cfg->storage_limit;
	bool over = limit > 0 && used > limit;
	static const char *const actions[] = {"warn", "error", "prune"};

	cJSON_AddNumberToObject(o, "storage_used_bytes", (double)used);
	if (limit <= 0) {
		cJSON_AddNullToObject(o, "storage_limit_bytes");
		return;
	}
	cJSON_AddNumberToObject(o, "storage_limit_bytes", (double)limit);
	cJSON_AddStringToObject(o, "storage_limit_action", actions[b->cfg->storage_limit_action]);
	cJSON_AddBoolToObject(o, "storage_over_limit", over);
	cJSON_AddBoolToObject(o, "pull_paused_by_storage_limit",
	                      over && b->cfg->storage_limit_action == CFG_LIMIT_ERROR);
}

/* "name": {"rows": N, "pending_local": M}; rows null if not in SQLite. */
static void add_table_counts(sqlite3 *db, cJSON *tables, const char *local)
{
	char *sql = sqlite3_mprintf("SELECT count(*) FROM \"%w\"", local);
	int64_t rows = query_int(db, sql);
	sqlite3_free(sql);
	sql = sqlite3_mprintf("SELECT count(*) FROM _pgsqlite_changes WHERE table_name = %Q", local);
	int64_t pending = query_int(db, sql);
	sqlite3_free(sql);
	cJSON *t = cJSON_AddObjectToObject(tables, local);
	if (rows >= 0)
		cJSON_AddNumberToObject(t, "rows", (double)rows);
	else
		cJSON_AddNullToObject(t, "rows");
	cJSON_AddNumberToObject(t, "pending_local", (double)(pending > 0 ? pending : 0));
}

/* The synced tables as resolved against Postgres; offline, the tables
 * with capture triggers or pending changes. */
static void add_tables(struct pgsb *b, cJSON *o)
{
	sqlite3 *db = sl_handle(b->db);
	cJSON *tables = cJSON_AddObjectToObject(o, "tables");
	sqlite3_stmt *st = NULL;

	for (size_t i = 0; i < b->ntables; i++)
		add_table_counts(db, tables, b->tables[i].local);
	if (b->ntables > 0 || sqlite3_prepare_v2(db,
		"SELECT tbl_name FROM sqlite_master WHERE type = 'trigger' AND name = '_pgsqlite_' || "
		"tbl_name || '_ins' UNION SELECT table_name FROM _pgsqlite_changes ORDER BY 1",
		-1, &st, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		return;
	}
	while (sqlite3_step(st) == SQLITE_ROW)
		add_table_counts(db, tables, (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

static void quiet(void *arg, const struct br_table *t, const char *what, const char *fix)
{
	(void)arg, (void)t, (void)what, (void)fix;
}

/* Slot facts from the server: lag behind the WAL, status, confirmed flush. */
static bool add_slot_facts(struct pgsb *b, cJSON *o)
{
	char err[512];
	PGconn *c = pgc_connect(b, false, err, sizeof err);
	const char *params[1] = {b->cfg->slot};

	if (!c) {
		cJSON_AddStringToObject(o, "error", err);
		return false;
	}
	PGresult *r = PQexecParams(c,
		"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint, "
		"wal_status, confirmed_flush_lsn::text, active FROM pg_replication_slots "
		"WHERE slot_name = $1", 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		cJSON_AddNumberToObject(o, "slot_lag_bytes", strtod(PQgetvalue(r, 0, 0), NULL));
		cJSON_AddStringToObject(o, "slot_wal_status", PQgetvalue(r, 0, 1));
		cJSON_AddStringToObject(o, "confirmed_flush_lsn", PQgetvalue(r, 0, 2));
		cJSON_AddBoolToObject(o, "slot_active", PQgetvalue(r, 0, 3)[0] == 't');
	} else {
		cJSON_AddNullToObject(o, "slot_lag_bytes");
		cJSON_AddStringToObject(o, "slot_wal_status", "missing");
	}
	PQclear(r);
	char err2[512];
	if (pgc_resolve_tables_reporting(b, c, quiet, NULL, err2, sizeof err2))
		b->ntables = 0;
	PQfinish(c);
	return true;
}

int pgsb_status(struct pgsb *b, FILE *out)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *facts = cJSON_CreateObject();
	bool online = add_slot_facts(b, facts);

	cJSON_AddBoolToObject(o, "online", online);
	add_state(b, o, "applied_lsn", "applied_lsn");
	cJSON *lag = cJSON_DetachItemFromObject(facts, "slot_lag_bytes");
	if (lag)
		cJSON_AddItemToObject(o, "slot_lag_bytes", lag);
	else
		cJSON_AddNullToObject(o, "slot_lag_bytes");
	cJSON_AddNumberToObject(o, "pending_local", (double)sl_pending_changes(b->db));
	cJSON_AddNumberToObject(o, "conflicts_unresolved", (double)sl_unresolved_conflicts(b->db));
	add_state(b, o, "last_sync", "last_sync");
	cJSON_AddStringToObject(o, "slot", b->cfg->slot);
	cJSON_AddStringToObject(o, "mode", cfg_mode_name(b->cfg->mode));
	cJSON_AddStringToObject(o, "sqlite", b->cfg->sqlite);
	add_state(b, o, "initialized_at", "initialized_at");
	add_storage(b, o);
	add_tables(b, o);
	add_state_if_set(b, o, "last_error");
	add_state_if_set(b, o, "last_error_at");
	for (cJSON *it = facts->child; it; it = it->next)
		cJSON_AddItemToObject(o, it->string, cJSON_Duplicate(it, 1));
	char *s = cJSON_PrintUnformatted(o);
	fprintf(out, "%s\n", s ? s : "{}");
	cJSON_free(s);
	cJSON_Delete(o);
	cJSON_Delete(facts);
	return 0;
}

static int drop_server_objects(struct pgsb *b, char *err, size_t cap)
{
	PGconn *c = pgc_connect(b, false, err, cap);
	const char *params[1] = {b->cfg->slot};
	int rc = 0;

	if (!c)
		return -1;
	PGresult *r = PQexecParams(c,
		"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
		"WHERE slot_name = $1", 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		pgc_error_text(c, err, cap);
		rc = -1;
	}
	PQclear(r);
	if (rc == 0) {
		r = PQexecParams(c,
			"SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin "
			"WHERE roname = $1", 1, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			pgc_error_text(c, err, cap);
			rc = -1;
		}
		PQclear(r);
	}
	PQfinish(c);
	return rc;
}

int pgsb_drop(struct pgsb *b)
{
	char err[512];
	struct sl_err e;

	if (drop_server_objects(b, err, sizeof err)) {
		log_error("drop failed on the server: %s", err);
		return 1;
	}
	if (sqlite3_exec(sl_handle(b->db), "DROP TABLE IF EXISTS _pgsqlite_pushed; "
	                 "DROP TABLE IF EXISTS _pgsqlite_snapq", NULL, NULL, NULL) != SQLITE_OK ||
	    sl_drop_bridge_objects(b->db, &e)) {
		log_error("drop failed in SQLite: %s", e.msg);
		return 1;
	}
	log_info("dropped slot \"%s\" and the bridge's SQLite tables; user data kept", b->cfg->slot);
	return 0;
}
