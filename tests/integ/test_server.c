/* test_server.c: the bridge against a server that goes away: its
 * walsender terminated from the server side, and Postgres restarted.
 * These run alone (tests/run.sh), since they disturb the whole cluster. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "../support/it.h"

static struct it_env env;

static void fini(void)
{
	it_teardown(&env);
}

TestSuite(server, .fini = fini, .timeout = 180);



Test(server, walsender_terminated_by_the_server_reconnects_by_itself)
{
	it_setup(&env, "walsender");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY)");
	it_write_conf(&env, "realtime", NULL);
	pid_t pid = it_run_online(&env);
	it_sql(&env, "INSERT INTO t VALUES (1)");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t", 1, 10000));
	cr_assert_eq(it_sql_int(&env, "SELECT count(pg_terminate_backend(active_pid)) FROM pg_replication_slots "
	                              "WHERE slot_name = '%s' AND active", env.slot), 1);
	it_sql(&env, "INSERT INTO t VALUES (2)");
	it_sql(&env, "INSERT INTO t VALUES (3)");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t", 3, 20000), "%s", it_bridge_stderr(&env));
	char *out = it_bridge_stdout(&env);
	cr_assert(strstr(out, "\"offline\""), "no offline event: %s", out);
	cr_assert_geq(it_count(out, "\"online\""), 2, "no second online event: %s", out);
	kill(pid, SIGTERM);
	cr_assert_eq(it_bridge_wait(pid, 30000), 0);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM t"), 3);
}

Test(server, postgres_restart_is_survived_and_nothing_is_lost)
{
	it_setup(&env, "restart");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v int)");
	it_write_conf(&env, "realtime", NULL);
	pid_t pid = it_run_online(&env);
	it_sql(&env, "INSERT INTO t SELECT g, g FROM generate_series(1, 100) g");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t", 100, 10000));
	it_pg_restart();
	it_sql(&env, "INSERT INTO t SELECT g, g FROM generate_series(101, 200) g");
	it_sql(&env, "UPDATE t SET v = -v WHERE id <= 50");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t", 200, 30000), "%s", it_bridge_stderr(&env));
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t WHERE v < 0", 50, 30000));
	kill(pid, SIGTERM);
	cr_assert_eq(it_bridge_wait(pid, 30000), 0);
	char *pg = it_pg_rows(&env, "SELECT id, v FROM t ORDER BY id");
	char *sl = it_sqlite_rows(&env, "SELECT id, v FROM t ORDER BY id");
	cr_assert_str_eq(sl, pg);
}

Test(server, a_lost_slot_is_resynchronised_from_a_new_slot_loudly)
{
	it_setup(&env, "lostslot");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO t VALUES (1, 'before')");
	it_write_conf(&env, "realtime", NULL);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	/* While the bridge is down the server drops the WAL its slot needs. */
	it_sql(&env, "ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'");
	it_sql(&env, "SELECT pg_reload_conf()");
	it_sql(&env, "DELETE FROM t WHERE id = 1");
	it_sql(&env, "INSERT INTO t VALUES (2, 'while lost')");
	for (int i = 0; i < 4; i++) {
		it_sql(&env, "INSERT INTO t VALUES (%d, repeat('w', 1000))", 100 + i);
		it_sql(&env, "SELECT pg_switch_wal()");
		it_sql(&env, "CHECKPOINT");
	}
	char *st = it_sql_value(&env, "SELECT wal_status FROM pg_replication_slots WHERE slot_name = '%s'", env.slot);
	it_sql(&env, "ALTER SYSTEM RESET max_slot_wal_keep_size");
	it_sql(&env, "SELECT pg_reload_conf()");
	cr_assert_str_eq(st, "lost");
	pid_t pid = it_bridge_start(&env, "run");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t WHERE id = 2", 1, 30000), "%s", it_bridge_stderr(&env));
	it_sql(&env, "INSERT INTO t VALUES (3, 'after')");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t WHERE id = 3", 1, 10000));
	kill(pid, SIGTERM);
	cr_assert_eq(it_bridge_wait(pid, 30000), 0);
	char *out = it_bridge_stdout(&env);
	cr_assert(strstr(out, "resynchronising from a new slot"), "no loud error event: %s", out);
	char *pg = it_pg_rows(&env, "SELECT id, v FROM t ORDER BY id");
	char *sl = it_sqlite_rows(&env, "SELECT id, v FROM t ORDER BY id");
	cr_assert_str_eq(sl, pg);
}

/* `run` on an initialised file while Postgres is down or restarting waits
 * for it and then streams; it does not exit. */
Test(server, run_waits_for_a_server_that_is_down_instead_of_exiting)
{
	it_setup(&env, "downstart");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY)");
	it_write_conf(&env, "realtime", NULL);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_pg_stop();
	pid_t pid = it_bridge_start(&env, "run");
	it_sleep_ms(1000);
	kill(pid, SIGUSR1); /* "sync now" before the loop runs is remembered, not fatal */
	kill(pid, SIGHUP);
	it_sleep_ms(500);
	cr_assert_eq(kill(pid, 0), 0, "run exited while the server was down: %s", it_bridge_stderr(&env));
	it_pg_start();
	it_sql(&env, "INSERT INTO t VALUES (1)");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t", 1, 30000), "%s", it_bridge_stderr(&env));
	cr_assert(strstr(it_bridge_stderr(&env), "retrying"), "%s", it_bridge_stderr(&env));
	kill(pid, SIGTERM);
	cr_assert_eq(it_bridge_wait(pid, 30000), 0);
}
