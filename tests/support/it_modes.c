/* it_modes.c: the mode tests' fixture declared in it_modes.h. */
#include "it_modes.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "it_event.h"

#define MOVE_TIMEOUT_MS 30000

static const char *TABLES[] = {"b", "pl", "ps"};
static const char *DIRS[] = {"both", "pull", "push"};

void modes_setup(struct it_env *e, const char *name, const char *bdir, const char *mode,
                 const char *extra)
{
	char conf[1024], tname[48];
	size_t n;

	snprintf(tname, sizeof tname, "%s_%s", name, bdir);
	it_setup(e, tname);
	n = (size_t)snprintf(conf, sizeof conf, "direction = %s\n%s", bdir, extra ? extra : "");
	for (int i = 0; i < 3; i++) {
		it_sql(e, "CREATE TABLE %s (id int PRIMARY KEY, v text)", TABLES[i]);
		/* the table of the [bridge] direction inherits it */
		n += (size_t)snprintf(conf + n, sizeof conf - n, "[table public.%s]\n%s%s%s", TABLES[i],
		                      strcmp(DIRS[i], bdir) ? "direction = " : "",
		                      strcmp(DIRS[i], bdir) ? DIRS[i] : "", strcmp(DIRS[i], bdir) ? "\n" : "");
	}
	cr_assert_lt(n, sizeof conf);
	it_write_conf(e, mode, conf);
}

void modes_write_remote(struct it_env *e, int id)
{
	it_sql(e, "BEGIN; INSERT INTO b VALUES (%d, 'remote'); INSERT INTO pl VALUES (%d, 'remote'); "
	          "INSERT INTO ps VALUES (%d, 'remote'); COMMIT", id, id, id);
}

void modes_write_local(struct it_env *e, int id)
{
	it_sqlite_exec(e, "BEGIN; INSERT INTO b VALUES (%d, 'local'); INSERT INTO pl VALUES (%d, 'local'); "
	                  "INSERT INTO ps VALUES (%d, 'local'); COMMIT", id, id, id);
}

static int64_t sqlite_count(struct it_env *e, const char *table, int id)
{
	char sql[128];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE id = %d", table, id);
	return it_sqlite_int(e, sql);
}

void modes_assert_not_moved(struct it_env *e, int rid, int lid, const char *when)
{
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(sqlite_count(e, TABLES[i], rid), 0, "remote row %d reached SQLite's %s %s: %s",
		             rid, TABLES[i], when, it_bridge_stderr(e));
		cr_assert_eq(it_sql_int(e, "SELECT count(*) FROM %s WHERE id = %d", TABLES[i], lid), 0,
		             "local row %d reached Postgres's %s %s: %s", lid, TABLES[i], when, it_bridge_stderr(e));
	}
}

void modes_assert_remote_moved(struct it_env *e, int id)
{
	char sql[128];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM b WHERE id = %d AND v = 'remote'", id);
	cr_assert(it_wait_sqlite_int(e, sql, 1, MOVE_TIMEOUT_MS), "remote row %d never reached SQLite: %s",
	          id, it_bridge_stderr(e));
	cr_assert_eq(sqlite_count(e, "pl", id), 1, "a pull table missed remote row %d", id);
	cr_assert_eq(sqlite_count(e, "ps", id), 0, "a push-only table got remote row %d", id);
}

void modes_assert_local_moved(struct it_env *e, int id)
{
	char sql[128];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM b WHERE id = %d AND v = 'local'", id);
	cr_assert(it_wait_pg_int(e, sql, 1, MOVE_TIMEOUT_MS), "local row %d never reached Postgres: %s",
	          id, it_bridge_stderr(e));
	snprintf(sql, sizeof sql, "SELECT count(*) FROM ps WHERE id = %d", id);
	cr_assert(it_wait_pg_int(e, sql, 1, MOVE_TIMEOUT_MS), "a push table missed local row %d", id);
	cr_assert_eq(it_sql_int(e, "SELECT count(*) FROM pl WHERE id = %d", id), 0,
	             "a pull-only table pushed local row %d", id);
}

int64_t modes_local_rows_in_pg(struct it_env *e)
{
	return it_sql_int(e, "SELECT (SELECT count(*) FROM b WHERE id >= 1000) + "
	                     "(SELECT count(*) FROM pl WHERE id >= 1000) + "
	                     "(SELECT count(*) FROM ps WHERE id >= 1000)");
}

void modes_wait_session_over(struct it_env *e)
{
	char sql[200];
	snprintf(sql, sizeof sql,
	         "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '%s' AND active", e->slot);
	cr_assert(it_wait_pg_int(e, sql, 0, MOVE_TIMEOUT_MS), "the session never ended: %s", it_bridge_stderr(e));
	/* A session lets its slot go only once its push is over: a local
	 * write from now on waits for the next session. */
	cr_assert_eq(it_sqlite_int(e, "SELECT count(*) FROM _pgsqlite_changes"), 0,
	             "the slot was let go before the session's push: %s", it_bridge_stderr(e));
}

void modes_wait_sync_rows(struct it_env *e, const char *direction, int rows)
{
	double sum = 0;
	for (int waited = 0; waited <= 10000; waited += 100) {
		cJSON *ev = it_events_parse(it_bridge_stdout(e));
		sum = it_events_sum(ev, "sync", direction, "rows");
		cJSON_Delete(ev);
		if (sum >= rows)
			break;
		it_sleep_ms(100);
	}
	cr_assert_eq(sum, rows, "%s sync events count %g rows, not %d: %s", direction, sum, rows,
	             it_bridge_stdout(e));
}
