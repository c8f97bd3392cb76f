/* test_converge.c: three clients and Postgres write concurrently to the
 * same few rows (inserts, updates, deletes) while bridges are killed with
 * kill -9 and restarted at random; after quiet and final syncs, Postgres
 * and every SQLite file hold identical rows.  Run under every strategy;
 * under keep-both, every local write that lost is kept for a person. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "../support/it.h"

#define CLIENTS 3
#define ROWS 8
#define OPS 240

static struct it_env env, c2, c3;
static struct it_env *clients[CLIENTS] = {&env, &c2, &c3};
static pid_t pids[CLIENTS];
/* The last value each client wrote to each row ("" when its last op there
 * was a delete). */
static char last_write[CLIENTS][ROWS + 1][32];

static void fini(void)
{
	for (int i = 0; i < CLIENTS; i++)
		if (pids[i] > 0)
			it_bridge_kill9(pids[i]);
	it_teardown(&c3);
	it_teardown(&c2);
	it_teardown(&env);
}

TestSuite(converge, .fini = fini, .timeout = 300);

static void setup(const char *name, const char *strategy)
{
	char extra[128];
	it_setup(&env, name);
	it_add_client(&env, &c2, "b");
	it_add_client(&env, &c3, "c");
	it_sql(&env, "CREATE TABLE items (id int PRIMARY KEY, a int, b text)");
	it_sql(&env, "CREATE TABLE history (b text)");
	it_sql(&env, "CREATE FUNCTION hist() RETURNS trigger LANGUAGE plpgsql AS "
	             "$$ BEGIN INSERT INTO history VALUES (NEW.b); RETURN NEW; END $$");
	it_sql(&env, "CREATE TRIGGER hist AFTER INSERT OR UPDATE ON items FOR EACH ROW EXECUTE FUNCTION hist()");
	it_sql(&env, "INSERT INTO items SELECT g, g, 'initial' FROM generate_series(1, %d) g", ROWS);
	snprintf(extra, sizeof extra, "conflict = %s\n[table public.items]\n", strategy);
	for (int i = 0; i < CLIENTS; i++) {
		it_write_conf(clients[i], "realtime", extra);
		cr_assert_eq(it_bridge(clients[i], "init", NULL, 0), 0);
		pids[i] = it_bridge_start(clients[i], "run");
	}
	memset(last_write, 0, sizeof last_write);
}

static void write_postgres(int id, int op, int n)
{
	if (op == 0)
		it_sql(&env, "INSERT INTO items VALUES (%d, %d, 'pg-%d') ON CONFLICT (id) DO UPDATE SET a = %d, b = 'pg-%d'",
		       id, n, n, n, n);
	else if (op == 1)
		it_sql(&env, "UPDATE items SET a = a + 1, b = 'pg-%d' WHERE id = %d", n, id);
	else
		it_sql(&env, "DELETE FROM items WHERE id = %d", id);
}

static void write_client(int c, int id, int op, int n)
{
	struct it_env *e = clients[c];
	if (op == 0) {
		it_sqlite_exec(e, "INSERT INTO items VALUES (%d, %d, 'c%d-%d') ON CONFLICT (id) DO UPDATE SET a = %d, b = 'c%d-%d'",
		               id, n, c + 1, n, n, c + 1, n);
		snprintf(last_write[c][id], sizeof last_write[c][id], "c%d-%d", c + 1, n);
	} else if (op == 1) {
		/* the row may be absent locally: then nothing is written */
		char sql[160];
		snprintf(sql, sizeof sql, "UPDATE items SET a = a + 1, b = 'c%d-%d' WHERE id = %d", c + 1, n, id);
		sqlite3 *db = it_sqlite_open(e);
		cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
		if (sqlite3_changes(db) == 1)
			snprintf(last_write[c][id], sizeof last_write[c][id], "c%d-%d", c + 1, n);
		sqlite3_close(db);
	} else {
		it_sqlite_exec(e, "DELETE FROM items WHERE id = %d", id);
		last_write[c][id][0] = '\0';
	}
}

static void workload(void)
{
	srand(20261124);
	for (int n = 1; n <= OPS; n++) {
		int actor = rand() % (CLIENTS + 1), id = 1 + rand() % ROWS, op = rand() % 3;
		if (actor == CLIENTS)
			write_postgres(id, op, n);
		else
			write_client(actor, id, op, n);
		if (n % 30 == 0) { /* a bridge dies mid-stream and comes back */
			int victim = rand() % CLIENTS;
			it_bridge_kill9(pids[victim]);
			pids[victim] = it_bridge_start(clients[victim], "run");
		}
		it_sleep_ms(15);
	}
}

/* Quiet, then syncs until nothing moves. */
static void settle(void)
{
	char out[65536];
	it_sleep_ms(2000);
	for (int i = 0; i < CLIENTS; i++) {
		kill(pids[i], SIGTERM);
		cr_assert_eq(it_bridge_wait(pids[i], 30000), 0, "%s", it_bridge_stderr(clients[i]));
		pids[i] = 0;
	}
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < CLIENTS; i++)
			cr_assert_eq(it_bridge(clients[i], "sync", out, sizeof out), 0, "client %d: %s", i + 1, out);
}

static void assert_converged(void)
{
	const char *q = "SELECT id, a, b FROM items ORDER BY id";
	char *pg = it_pg_rows(&env, q);
	for (int i = 0; i < CLIENTS; i++) {
		cr_assert_str_eq(it_sqlite_rows(clients[i], q), pg, "client %d differs from Postgres", i + 1);
		cr_assert_eq(it_sqlite_int(clients[i], "SELECT count(*) FROM _pgsqlite_changes"), 0);
	}
}

/* The workload did what it claims: every client's writes reached
 * Postgres, and rows were changed on both sides. */
static void assert_exercised(void)
{
	int64_t conflicts = 0;
	for (int i = 0; i < CLIENTS; i++) {
		cr_assert_gt(it_sql_int(&env, "SELECT count(*) FROM history WHERE b LIKE 'c%d-%%'", i + 1), 0,
		             "no write of client %d reached Postgres", i + 1);
		conflicts += it_sqlite_int(clients[i], "SELECT count(*) FROM _pgsqlite_conflicts");
	}
	cr_assert_gt(conflicts, 0, "no conflict happened");
}

static void run_convergence(const char *name, const char *strategy)
{
	setup(name, strategy);
	workload();
	settle();
	assert_converged();
	assert_exercised();
}

Test(converge, last_write_wins)
{
	run_convergence("cv_lww", "last-write-wins");
}

Test(converge, local_wins)
{
	run_convergence("cv_local", "local-wins");
}

Test(converge, remote_wins)
{
	run_convergence("cv_remote", "remote-wins");
}

Test(converge, merge)
{
	run_convergence("cv_merge", "merge");
}

Test(converge, keep_both_converges_and_keeps_every_losing_local_version)
{
	run_convergence("cv_keep", "keep-both"); /* which also checks that conflicts happened */
	for (int c = 0; c < CLIENTS; c++)
		for (int id = 1; id <= ROWS; id++) {
			const char *v = last_write[c][id];
			if (!v[0])
				continue;
			int in_pg = (int)it_sql_int(&env, "SELECT count(*) FROM history WHERE b = '%s'", v);
			char sql[300];
			snprintf(sql, sizeof sql, "SELECT count(*) FROM _pgsqlite_conflicts WHERE resolution = 'kept-both' "
			         "AND local_row LIKE '%%\"%s\"%%'", v);
			int kept = (int)it_sqlite_int(clients[c], sql);
			cr_assert(in_pg > 0 || kept > 0, "client %d's write %s to row %d was lost", c + 1, v, id);
		}
}
