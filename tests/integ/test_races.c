/* test_races.c: the two paths meeting at the wrong moment, each race made
 * certain with a test-only pause in the bridge (or a slow trigger in
 * Postgres): the pull settling a row whose change the push has read but
 * not yet marked as in flight, a newer remote delete of a row in flight,
 * and a remote key move onto a key the push in flight has already read. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "../support/it.h"

static struct it_env env;

static void fini(void)
{
	it_teardown(&env);
}

TestSuite(races, .fini = fini, .timeout = 120);

static bool wait_log(struct it_env *e, const char *text, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 50) {
		if (it_count(it_bridge_stderr(e), text) > 0)
			return true;
		it_sleep_ms(50);
	}
	return false;
}

/* The push reads a local change of column a, then (paused) the pull
 * applies a remote change of column b to the same row and, under
 * remote-wins, drops the local change.  The push's guard (the old a)
 * still matches in Postgres, so sending the batch would write the losing
 * a there while SQLite keeps the winner: the push must notice in its
 * commit window that the pull settled part of its batch, roll back and
 * read the log again. */
Test(races, a_change_the_pull_settles_after_the_push_read_it_is_not_pushed)
{
	it_setup(&env, "settledread");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, a text, b text)");
	it_sql(&env, "INSERT INTO t VALUES (1, 'a0', 'b0'), (2, 'x0', 'y0')");
	it_write_conf(&env, "realtime", "conflict = remote-wins\n");
	setenv("PGSQLITE_BRIDGE_TEST_PAUSE_AFTER_READ_MS", "3000", 1);
	pid_t pid = it_run_online(&env);
	unsetenv("PGSQLITE_BRIDGE_TEST_PAUSE_AFTER_READ_MS");
	it_sqlite_exec(&env, "UPDATE t SET a = 'local' WHERE id = 1");
	it_sqlite_exec(&env, "UPDATE t SET a = 'local too' WHERE id = 2");
	cr_assert(wait_log(&env, "PAUSE_AFTER_READ", 10000), "the push never read the change: %s",
	          it_bridge_stderr(&env));
	it_sql(&env, "UPDATE t SET b = 'remote' WHERE id = 1");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t WHERE id = 1 AND a = 'a0' AND b = 'remote'",
	                             1, 10000), "the remote change did not win in SQLite: %s",
	          it_bridge_stderr(&env));
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes", 0, 20000), "%s",
	          it_bridge_stderr(&env));
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM t WHERE id = 2 AND a = 'local too'", 1, 20000),
	          "the row the pull did not settle was never pushed: %s", it_bridge_stderr(&env));
	it_stop(&env, pid);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, a, b FROM t ORDER BY id"),
	                 "1|a0|remote\n2|local too|y0\n", "%s", it_bridge_stderr(&env));
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT id, a, b FROM t ORDER BY id"),
	                 it_pg_rows(&env, "SELECT id, a, b FROM t ORDER BY id"));
	cr_assert_geq(it_count(it_bridge_stderr(&env), "rolled back, read again"), 1, "%s",
	              it_bridge_stderr(&env));
}

/* last-write-wins, a local update of a row, then (the push holding it in
 * flight) a newer remote delete of that row: the pull leaves the row to
 * the push, which finds it gone from Postgres.  The delete is newer, so it
 * wins: the row ends deleted on both sides, not re-created from the older
 * local version. */
Test(races, a_newer_remote_delete_of_a_row_in_flight_wins_under_last_write_wins)
{
	it_setup(&env, "delinflight");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO t VALUES (1, 'pg'), (2, 'pg')");
	it_write_conf(&env, "realtime", NULL); /* last-write-wins */
	setenv("PGSQLITE_BRIDGE_TEST_PAUSE_IN_FLIGHT_MS", "3000", 1);
	pid_t pid = it_run_online(&env);
	unsetenv("PGSQLITE_BRIDGE_TEST_PAUSE_IN_FLIGHT_MS");
	it_sqlite_exec(&env, "UPDATE t SET v = 'local, older' WHERE id IN (1, 2)");
	cr_assert(wait_log(&env, "PAUSE_IN_FLIGHT", 10000), "the push never held the change: %s",
	          it_bridge_stderr(&env));
	it_sql(&env, "DELETE FROM t WHERE id = 1");
	cr_assert(wait_log(&env, "pull: D t {\"id\":1}", 10000), "the pull never saw the delete: %s",
	          it_bridge_stderr(&env));
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes", 0, 20000), "%s",
	          it_bridge_stderr(&env));
	it_stop(&env, pid);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, v FROM t ORDER BY id"), "2|local, older\n", "%s",
	                 it_bridge_stderr(&env));
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT id, v FROM t ORDER BY id"),
	                 it_pg_rows(&env, "SELECT id, v FROM t ORDER BY id"));
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_conflicts WHERE pk = '{\"id\":1}'"), 1,
	             "%s", it_sqlite_rows(&env, "SELECT * FROM _pgsqlite_conflicts"));
}

/* A remote key move (9 -> 7) onto the old key of a local key move (7 -> 2)
 * the push holds in flight, after the push read Postgres at 7 and found
 * it empty (a remote delete of 7, local-wins): the push's mark settles
 * key 2 only and never reads 7 again, so the pull must apply the move
 * itself rather than leave key 7 to that push.  The push's write at 2 is
 * slowed by a trigger so that the move lands meanwhile. */
Test(races, a_remote_key_move_onto_a_key_the_push_in_flight_read_is_applied)
{
	it_setup(&env, "moveontoflight");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, a text)");
	it_sql(&env, "INSERT INTO t VALUES (7, 'seven'), (9, 'nine'), (3, 'three')");
	it_sql(&env, "CREATE FUNCTION slow_moved() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
	             "IF NEW.a = 'moved' THEN PERFORM pg_sleep(3); END IF; RETURN NEW; END $$");
	it_sql(&env, "CREATE TRIGGER slow_moved BEFORE INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION slow_moved()");
	it_write_conf(&env, "realtime", "conflict = local-wins\n");
	setenv("PGSQLITE_BRIDGE_TEST_PAUSE_IN_FLIGHT_MS", "2000", 1);
	pid_t pid = it_run_online(&env);
	unsetenv("PGSQLITE_BRIDGE_TEST_PAUSE_IN_FLIGHT_MS");
	it_sqlite_exec(&env, "UPDATE t SET id = 2, a = 'moved' WHERE id = 7");
	cr_assert(wait_log(&env, "PAUSE_IN_FLIGHT", 10000), "the push never held the change: %s",
	          it_bridge_stderr(&env));
	it_sql(&env, "DELETE FROM t WHERE id = 7");
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'", 1,
	                         10000), "the push's write at 2 never ran: %s", it_bridge_stderr(&env));
	it_sql(&env, "UPDATE t SET id = 7 WHERE id = 9");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes", 0, 20000), "%s",
	          it_bridge_stderr(&env));
	it_sleep_ms(500);
	it_stop(&env, pid);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, a FROM t ORDER BY id"), "2|moved\n3|three\n7|nine\n", "%s",
	                 it_bridge_stderr(&env));
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT id, a FROM t ORDER BY id"),
	                 it_pg_rows(&env, "SELECT id, a FROM t ORDER BY id"), "%s", it_bridge_stderr(&env));
}
