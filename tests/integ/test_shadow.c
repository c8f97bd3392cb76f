/* test_shadow.c: an online table copy goes into a shadow table and is
 * swapped in whole: a reader of the SQLite file sees the table's old rows
 * until then, never an empty or half-filled table, while Postgres and the
 * application write to it; at the end both sides hold the same rows, and
 * the table keeps what the application built on it (an index, a view, a
 * trigger) and its change capture. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/it.h"

static struct it_env env;

static void fini(void)
{
	it_teardown(&env);
}

TestSuite(shadow, .fini = fini, .timeout = 300);

static bool wait_output(struct it_env *e, const char *needle, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 100) {
		if (it_count(it_bridge_stderr(e), needle) >= 1)
			return true;
		it_sleep_ms(100);
	}
	return false;
}

static bool wait_equal(struct it_env *e, const char *sql, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 250) {
		if (strcmp(it_pg_rows(e, sql), it_sqlite_rows(e, sql)) == 0)
			return true;
		it_sleep_ms(250);
	}
	return false;
}

/* An application reading the table over and over on its own connection. */
struct reader {
	const char *path;
	atomic_bool stop;
	int64_t min, samples;
};

static void *read_loop(void *arg)
{
	struct reader *r = arg;
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(r->path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_busy_timeout(db, 60000);
	r->min = INT64_MAX;
	while (!atomic_load(&r->stop)) {
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(db, "SELECT count(*) FROM big", -1, &st, NULL) == SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW) {
			int64_t n = sqlite3_column_int64(st, 0);
			r->min = n < r->min ? n : r->min;
			r->samples++;
		}
		sqlite3_finalize(st);
		it_sleep_ms(3);
	}
	sqlite3_close(db);
	return NULL;
}

/* Postgres writes during the copy: an update, an insert and a delete per
 * transaction. */
struct writer {
	const char *conninfo;
	int n;
};

static void *write_loop(void *arg)
{
	struct writer *w = arg;
	PGconn *c = PQconnectdb(w->conninfo);

	for (int i = 0; i < w->n && PQstatus(c) == CONNECTION_OK; i++) {
		char sql[400];
		snprintf(sql, sizeof sql, "BEGIN; UPDATE big SET n = n + 1 WHERE id = %d; "
		         "INSERT INTO big VALUES (%d, 'pg', %d); DELETE FROM big WHERE id = %d; COMMIT",
		         (i * 37) % 40000 + 1, 100000 + i, i, 50000 - i);
		PQclear(PQexec(c, sql));
		it_sleep_ms(2);
	}
	PQfinish(c);
	return NULL;
}

static void local_write(struct it_env *e, const char *sql)
{
	sqlite3 *db = it_sqlite_open(e);
	char *err = NULL;
	sqlite3_busy_timeout(db, 60000);
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	cr_assert_eq(rc, SQLITE_OK, "SQLite failed: %s: %s", sql, err ? err : "");
	sqlite3_close(db);
}

static void app_objects(struct it_env *e)
{
	it_sqlite_exec(e, "CREATE INDEX big_n ON big (n)");
	it_sqlite_exec(e, "CREATE VIEW big_pg AS SELECT id, v FROM big WHERE v = 'pg'");
	it_sqlite_exec(e, "CREATE TABLE audit (id INTEGER)");
	it_sqlite_exec(e, "CREATE TRIGGER big_audit AFTER INSERT ON big WHEN NEW.v = 'audited' "
	                  "BEGIN INSERT INTO audit VALUES (NEW.id); END");
}

Test(shadow, a_reader_sees_the_old_rows_until_the_copy_is_swapped_in)
{
	const char *rows = "SELECT id, v, n FROM big ORDER BY id";
	it_setup(&env, "sh_read");
	it_sql(&env, "CREATE TABLE big (id int PRIMARY KEY, v text, n int)");
	it_sql(&env, "INSERT INTO big SELECT g, 'row ' || g, g FROM generate_series(1, 50000) g");
	it_sql(&env, "ANALYZE big");
	it_write_conf(&env, "realtime", "[table public.big]\nskip = true\n");
	pid_t pid = it_run_online(&env);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM big"), 50000);
	app_objects(&env);
	it_sql(&env, "UPDATE big SET v = 'while skipped' WHERE id %% 100 = 0");
	it_sqlite_exec(&env, "UPDATE big SET v = 'local while skipped' WHERE id = 7");

	/* a transaction open across the whole copy, committed after it */
	PGconn *open_tx = PQconnectdb(env.conninfo);
	cr_assert_eq(PQstatus(open_tx), CONNECTION_OK);
	PQclear(PQexec(open_tx, "BEGIN"));
	PQclear(PQexec(open_tx, "INSERT INTO big VALUES (70000, 'open across the copy', 0)"));

	struct reader rd = {.path = env.sqlite};
	pthread_t rth, wth;
	cr_assert_eq(pthread_create(&rth, NULL, read_loop, &rd), 0);
	it_sleep_ms(100);
	struct writer w = {env.conninfo, 400};
	it_write_conf(&env, "realtime", "[table public.big]\nskip = false\n");
	cr_assert_eq(kill(pid, SIGHUP), 0);
	cr_assert(wait_output(&env, "online snapshot of \"public.big\" started", 30000), "%s",
	          it_bridge_stderr(&env));
	cr_assert_eq(pthread_create(&wth, NULL, write_loop, &w), 0);
	for (int k = 0; k < 30; k++) {
		char sql[160];
		snprintf(sql, sizeof sql, "INSERT INTO big VALUES (%d, 'local', %d); "
		         "UPDATE big SET v = 'local upd' WHERE id = %d", 200000 + k, k, 45000 + k);
		local_write(&env, sql);
		it_sleep_ms(20);
	}
	cr_assert(wait_output(&env, "rows of \"public.big\" online", 120000), "%s", it_bridge_stderr(&env));
	PQclear(PQexec(open_tx, "COMMIT"));
	PQfinish(open_tx);
	pthread_join(wth, NULL);
	cr_assert(wait_output(&env, "\"public.big\" is in sync again", 120000), "%s", it_bridge_stderr(&env));
	atomic_store(&rd.stop, true);
	pthread_join(rth, NULL);

	cr_assert(rd.samples > 10, "the reader read %lld times", (long long)rd.samples);
	cr_assert_geq(rd.min, 50000 - 400, "a reader saw %lld rows: the table was emptied or half "
	              "filled during its copy", (long long)rd.min);
	cr_assert(wait_equal(&env, rows, 60000), "not equal after the copy:\npg %lld rows, sqlite %lld",
	          (long long)it_sql_int(&env, "SELECT count(*) FROM big"),
	          (long long)it_sqlite_int(&env, "SELECT count(*) FROM big"));
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM big WHERE id = 70000"), 1);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM big WHERE id = 70000"), 1,
	             "a transaction open across the copy was lost");
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM big WHERE id >= 200000 OR v = 'local upd'"), 60);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM big WHERE id >= 100000 AND id < 200000"), 400);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM big WHERE v = 'local while skipped'"), 1);

	/* what the application built on the table is still there */
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM sqlite_master WHERE type = 'index' "
	                                 "AND tbl_name = 'big' AND sql LIKE '%(n)%'"), 1);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM big_pg"), 400);
	it_sqlite_exec(&env, "INSERT INTO big VALUES (300000, 'audited', 1)");
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM audit WHERE id = 300000"), 1);
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM big WHERE id = 300000", 1, 15000),
	          "a local write after the swap was not captured");
	it_sql(&env, "UPDATE big SET v = 'streamed' WHERE id = 3");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM big WHERE v = 'streamed'", 1, 15000));
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM sqlite_master WHERE name LIKE "
	                                   "'\\_pgsqlite\\_old\\_%' ESCAPE '\\' OR name LIKE "
	                                   "'\\_pgsqlite\\_shadow\\_%' ESCAPE '\\'", 0, 30000),
	          "the swapped-out table was never removed");
	cr_assert(wait_equal(&env, rows, 15000));
	it_stop(&env, pid);
}

/* A copy cut off by kill -9 leaves its shadow: the restart removes it and
 * copies again, and the table was never empty meanwhile. */
Test(shadow, a_shadow_left_by_kill_9_is_removed_and_the_copy_redone)
{
	const char *rows = "SELECT id, v, n FROM big ORDER BY id";
	it_setup(&env, "sh_kill");
	it_sql(&env, "CREATE TABLE big (id int PRIMARY KEY, v text, n int)");
	it_sql(&env, "INSERT INTO big SELECT g, 'row ' || g, g FROM generate_series(1, 60000) g");
	it_write_conf(&env, "realtime", "[table public.big]\nskip = true\n");
	pid_t pid = it_run_online(&env);
	app_objects(&env);
	it_sql(&env, "UPDATE big SET v = 'while skipped' WHERE id %% 1000 = 0");
	it_write_conf(&env, "realtime", "[table public.big]\nskip = false\n");
	cr_assert_eq(kill(pid, SIGHUP), 0);
	cr_assert(wait_output(&env, "online snapshot of \"public.big\" started", 30000));
	it_sleep_ms(300);
	it_bridge_kill9(pid);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM big"), 60000,
	             "the live table lost rows to a copy cut off");
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM sqlite_master WHERE name = "
	                                 "'_pgsqlite_shadow_big'"), 1, "the copy left no shadow");
	it_sql(&env, "DELETE FROM big WHERE id > 59990");
	pid = it_run_online(&env);
	cr_assert(wait_output(&env, "\"public.big\" is in sync again", 120000), "%s", it_bridge_stderr(&env));
	cr_assert(wait_equal(&env, rows, 60000), "not equal after a copy redone");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
	                                   "AND name LIKE '\\_pgsqlite\\_%big' ESCAPE '\\'", 0, 30000),
	          "a leftover copy was never removed");
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM sqlite_master WHERE type = 'index' "
	                                 "AND tbl_name = 'big' AND sql LIKE '%(n)%'"), 1);
	it_stop(&env, pid);
}
