/* admin.c: the commands that inspect or remove the bridge's state:
 * `status` (JSON on stdout) and `drop` (slot, origin, triggers and the
 * bridge's own SQLite tables; user data stays). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "br.h"
#include "log.h"

static void add_state(struct pgsb *b, cJSON *o, const char *json_key, const char *state_key)
{
	char v[256];

	if (sl_state_get(b->db, state_key, v, sizeof v) == 1)
		cJSON_AddStringToObject(o, json_key, v);
	else
		cJSON_AddNullToObject(o, json_key);
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
	if (sqlite3_exec(sl_handle(b->db), "DROP TABLE IF EXISTS _pgsqlite_pushed", NULL, NULL, NULL) != SQLITE_OK ||
	    sl_drop_bridge_objects(b->db, &e)) {
		log_error("drop failed in SQLite: %s", e.msg);
		return 1;
	}
	log_info("dropped slot \"%s\" and the bridge's SQLite tables; user data kept", b->cfg->slot);
	return 0;
}
