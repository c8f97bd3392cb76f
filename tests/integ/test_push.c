/* test_push.c: SQLite -> Postgres: local writes pushed without echo,
 * exactly once across a crash, server-computed columns read back, values
 * surviving local -> Postgres -> another client, and clients seeing each
 * other's writes in realtime. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "../support/it.h"

static struct it_env env, c2, c3;

static void fini(void)
{
	it_teardown(&c3);
	it_teardown(&c2);
	it_teardown(&env);
}

TestSuite(push, .fini = fini, .timeout = 240);



Test(push, local_writes_reach_postgres_without_echo_and_the_log_drains)
{
	it_setup(&env, "pushbasic");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text, n int)");
	it_sql(&env, "INSERT INTO t VALUES (1, 'from pg', 0)");
	it_write_conf(&env, "realtime", NULL);
	pid_t pid = it_run_online(&env);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name IN "
	                                 "('_pgsqlite_t_ins', '_pgsqlite_t_upd', '_pgsqlite_t_del')"), 3);
	it_sqlite_exec(&env, "INSERT INTO t VALUES (2, 'local', 1)");
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM t WHERE id = 2 AND v = 'local'", 1, 10000), "%s", it_bridge_stderr(&env));
	it_sqlite_exec(&env, "UPDATE t SET v = 'local 2', n = n + 1 WHERE id = 2");
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM t WHERE id = 2 AND v = 'local 2' AND n = 2", 1, 10000));
	it_sqlite_exec(&env, "DELETE FROM t WHERE id = 1");
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM t", 1, 10000));
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes", 0, 10000));
	/* Postgres writes still arrive; our own never come back as new changes */
	it_sql(&env, "INSERT INTO t VALUES (3, 'pg again', 0)");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t WHERE id = 3", 1, 10000));
	it_sleep_ms(500);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes"), 0);
	it_stop(&env, pid);
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT id, v, n FROM t ORDER BY id"),
	                 it_pg_rows(&env, "SELECT id, v, n FROM t ORDER BY id"));
}

Test(push, server_computed_columns_come_back_to_the_writer)
{
	it_setup(&env, "pushdefaults");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text, stamped text DEFAULT 'server default', "
	             "upper_v text)");
	it_sql(&env, "CREATE FUNCTION up() RETURNS trigger LANGUAGE plpgsql AS "
	             "$$ BEGIN NEW.upper_v := upper(NEW.v); RETURN NEW; END $$");
	it_sql(&env, "CREATE TRIGGER up BEFORE INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION up()");
	it_write_conf(&env, "realtime", NULL);
	pid_t pid = it_run_online(&env);
	it_sqlite_exec(&env, "INSERT INTO t (id, v) VALUES (1, 'hello')");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t WHERE upper_v = 'HELLO' AND stamped = 'server default'", 1, 10000),
	          "%s", it_sqlite_rows(&env, "SELECT * FROM t"));
	it_stop(&env, pid);
}

Test(push, exactly_once_across_a_crash_between_postgres_commit_and_local_mark)
{
	char out[8192];
	it_setup(&env, "pushcrash");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v int)");
	it_sql(&env, "CREATE TABLE audit (n serial PRIMARY KEY, id int, v int)");
	it_sql(&env, "CREATE FUNCTION aud() RETURNS trigger LANGUAGE plpgsql AS "
	             "$$ BEGIN INSERT INTO audit (id, v) VALUES (NEW.id, NEW.v); RETURN NEW; END $$");
	it_sql(&env, "CREATE TRIGGER aud AFTER INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION aud()");
	it_write_conf(&env, "manual", "[table public.t]\n");
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sqlite_exec(&env, "INSERT INTO t VALUES (1, 10); INSERT INTO t VALUES (2, 20); UPDATE t SET v = 11 WHERE id = 1");
	setenv("PGSQLITE_BRIDGE_TEST_CRASH", "after-push-commit", 1);
	int rc = it_bridge(&env, "sync", out, sizeof out);
	unsetenv("PGSQLITE_BRIDGE_TEST_CRASH");
	cr_assert_eq(rc, 99, "the crash hook did not fire: rc %d %s", rc, out);
	/* Postgres has the push; SQLite still lists the changes as pending. */
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM audit"), 2);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes"), 3);
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM audit"), 2, "a change was pushed twice");
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes"), 0);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, v FROM t ORDER BY id"), "1|11\n2|20\n");
	/* and later pushes go on normally */
	it_sqlite_exec(&env, "UPDATE t SET v = 21 WHERE id = 2");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM audit"), 3);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, v FROM t ORDER BY id"), "1|11\n2|21\n");
}

Test(push, values_survive_local_to_postgres_to_another_client)
{
	it_setup(&env, "pushtypes");
	it_add_client(&env, &c2, "b");
	it_sql(&env, "CREATE TABLE ty (id text PRIMARY KEY, n numeric, by bytea, jb jsonb, tz timestamptz, "
	             "t text, d double precision, b bool, big bigint)");
	it_write_conf(&env, "realtime", NULL);
	it_write_conf(&c2, "realtime", NULL);
	pid_t p1 = it_run_online(&env), p2 = it_run_online(&c2);
	it_sqlite_exec(&env, "INSERT INTO ty VALUES ('k1', '123456789012345678901234567890.000001', x'00ff10', "
	                     "'{\"a\": [1, 2.50]}', '2024-01-02 03:04:05.123456+00', 'it''s \"quoted\"\n"
	                     "second line', 0.1, 1, 9223372036854775807)");
	it_sqlite_exec(&env, "INSERT INTO ty (id) VALUES ('nulls')");
	cr_assert(it_wait_sqlite_int(&c2, "SELECT count(*) FROM ty", 2, 15000), "%s", it_bridge_stderr(&env));
	it_stop(&env, p1);
	it_stop(&c2, p2);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT n, encode(by, 'hex'), jb, tz, t, d, b, big FROM ty WHERE id = 'k1'"),
	                 "123456789012345678901234567890.000001|00ff10|{\"a\": [1, 2.50]}|2024-01-02 03:04:05.123456+00|"
	                 "it's \"quoted\"\nsecond line|0.1|t|9223372036854775807\n");
	cr_assert_str_eq(it_sqlite_rows(&c2, "SELECT n, hex(by), jb, tz, t, d, b, big FROM ty WHERE id = 'k1'"),
	                 "123456789012345678901234567890.000001|00FF10|{\"a\": [1, 2.50]}|2024-01-02 03:04:05.123456+00|"
	                 "it's \"quoted\"\nsecond line|0.1|1|9223372036854775807\n");
	cr_assert_eq(it_sqlite_int(&c2, "SELECT count(*) FROM ty WHERE id = 'nulls' AND n IS NULL AND by IS NULL AND "
	                                "jb IS NULL AND tz IS NULL AND b IS NULL"), 1);
}

Test(push, three_clients_and_postgres_see_each_others_writes_in_realtime)
{
	it_setup(&env, "threeclients");
	it_add_client(&env, &c2, "b");
	it_add_client(&env, &c3, "c");
	it_sql(&env, "CREATE TABLE msg (id text PRIMARY KEY, body text)");
	it_write_conf(&env, "realtime", NULL);
	it_write_conf(&c2, "realtime", NULL);
	it_write_conf(&c3, "realtime", NULL);
	pid_t p1 = it_run_online(&env), p2 = it_run_online(&c2), p3 = it_run_online(&c3);
	it_sqlite_exec(&env, "INSERT INTO msg VALUES ('a', 'from client 1')");
	it_sqlite_exec(&c2, "INSERT INTO msg VALUES ('b', 'from client 2')");
	it_sqlite_exec(&c3, "INSERT INTO msg VALUES ('c', 'from client 3')");
	it_sql(&env, "INSERT INTO msg VALUES ('d', 'from postgres')");
	struct it_env *all[3] = {&env, &c2, &c3};
	for (int i = 0; i < 3; i++)
		cr_assert(it_wait_sqlite_int(all[i], "SELECT count(*) FROM msg", 4, 15000), "client %d: %s", i + 1,
		          it_sqlite_rows(all[i], "SELECT * FROM msg"));
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM msg", 4, 10000));
	it_sqlite_exec(&c2, "UPDATE msg SET body = 'edited by 2' WHERE id = 'a'");
	for (int i = 0; i < 3; i++)
		cr_assert(it_wait_sqlite_int(all[i], "SELECT count(*) FROM msg WHERE body = 'edited by 2'", 1, 15000));
	it_stop(&env, p1);
	it_stop(&c2, p2);
	it_stop(&c3, p3);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(it_sqlite_int(all[i], "SELECT count(*) FROM _pgsqlite_changes"), 0, "client %d", i + 1);
}

Test(push, a_pull_only_table_has_no_triggers_and_a_push_only_table_ignores_postgres)
{
	it_setup(&env, "directions");
	it_sql(&env, "CREATE TABLE pulled (id int PRIMARY KEY, v text)");
	it_sql(&env, "CREATE TABLE pushed (id int PRIMARY KEY, v text)");
	it_write_conf(&env, "realtime", "[table public.pulled]\ndirection = pull\n[table public.pushed]\ndirection = push\n");
	pid_t pid = it_run_online(&env);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'pulled'"), 0);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'pushed'"), 3);
	it_sql(&env, "INSERT INTO pulled VALUES (1, 'pg')");
	it_sql(&env, "INSERT INTO pushed VALUES (1, 'pg')");
	it_sqlite_exec(&env, "INSERT INTO pushed VALUES (2, 'local')");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM pulled", 1, 10000));
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM pushed WHERE id = 2", 1, 10000));
	it_sleep_ms(500);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM pushed WHERE id = 1"), 0);
	it_stop(&env, pid);
}

/* Many local inserts of one shape go as one COPY; keys that exist in
 * Postgres already turn into conflicts, the rest goes in. */
static void bulk_inserts_meet_existing_keys(const char *name, const char *table_sql)
{
	char out[65536];
	it_setup(&env, name);
	it_sql(&env, "%s", table_sql);
	it_write_conf(&env, "manual", "conflict = remote-wins\n");
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sqlite_exec(&env, "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < 300) "
	                     "INSERT INTO t (id, v) SELECT i, 'local ' || i FROM g");
	it_sql(&env, "INSERT INTO t (id, v) VALUES (7, 'remote 7'), (150, 'remote 150'), (299, 'remote 299')");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert(strstr(out, "\"pushed_rows\":300") || strstr(out, "\"pushed_rows\":297"), "%s", out);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM t"), 300);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM t WHERE v LIKE 'remote%%'"), 3);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_conflicts WHERE resolution = 'remote'"), 3);
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT id, v FROM t ORDER BY id"),
	                 it_pg_rows(&env, "SELECT id, v FROM t ORDER BY id"));
}

Test(push, bulk_inserts_straight_into_a_table_find_the_keys_that_exist)
{
	bulk_inserts_meet_existing_keys("bulkdirect", "CREATE TABLE t (id int PRIMARY KEY, v text)");
}

Test(push, bulk_inserts_through_the_stage_read_back_server_values)
{
	bulk_inserts_meet_existing_keys("bulkstage", "CREATE TABLE t (id int PRIMARY KEY, v text, "
	                                             "made text DEFAULT 'by the server')");
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM t WHERE made = 'by the server'"), 300);
}

/* A local change Postgres rejects is set aside, not retried forever: the
 * others go through, the rejected one is in _pgsqlite_conflicts, and the
 * local row holds the Postgres version again. */
static void rejected_change_is_set_aside(const char *name, int rows)
{
	char out[65536];
	it_setup(&env, name);
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, qty int CHECK (qty >= 0))");
	it_sql(&env, "INSERT INTO t VALUES (1000, 1)");
	it_write_conf(&env, "manual", NULL);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sqlite_exec(&env, "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < %d) "
	                     "INSERT INTO t SELECT i, CASE WHEN i = %d THEN -1 ELSE i END FROM g", rows, rows / 2);
	it_sqlite_exec(&env, "UPDATE t SET qty = -5 WHERE id = 1000");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert(strstr(out, "rejected a local change"), "no error event: %s", out);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM t"), rows);
	cr_assert_eq(it_sql_int(&env, "SELECT qty FROM t WHERE id = 1000"), 1);
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT id, qty FROM t ORDER BY id"),
	                 it_pg_rows(&env, "SELECT id, qty FROM t ORDER BY id"));
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_conflicts WHERE resolution LIKE "
	                                 "'rejected: %check constraint%' AND resolved_at IS NULL"), 2);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes"), 0);
}

Test(push, a_change_postgres_rejects_is_set_aside_and_the_rest_goes_through)
{
	rejected_change_is_set_aside("reject", 6);
}

Test(push, a_rejected_row_in_a_bulk_insert_is_found_and_set_aside)
{
	rejected_change_is_set_aside("rejectbulk", 60);
}

/* While a push round runs, the bridge stops looking at each write to the
 * file (its own writes would wake it for every page) and looks once when
 * the round ends: a local commit made during a round, with nothing
 * committed after it, must still be pushed. */
Test(push, a_local_commit_made_while_a_push_round_runs_is_pushed_after_it)
{
	it_setup(&env, "pushduring");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text)");
	it_write_conf(&env, "realtime", NULL);
	pid_t pid = it_run_online(&env);
	PGconn *locker = PQconnectdb(env.conninfo);
	cr_assert_eq(PQstatus(locker), CONNECTION_OK);
	PQclear(PQexec(locker, "BEGIN"));
	PQclear(PQexec(locker, "LOCK TABLE t IN EXCLUSIVE MODE"));
	it_sqlite_exec(&env, "INSERT INTO t VALUES (1, 'first')");
	cr_assert(it_wait_pg_int(&env, "SELECT (count(*) > 0)::int FROM pg_locks l JOIN pg_stat_activity a "
	                         "USING (pid) WHERE NOT l.granted AND l.relation = 't'::regclass "
	                         "AND a.datname = current_database()", 1, 20000), "the push did not reach the lock");
	it_sqlite_exec(&env, "INSERT INTO t VALUES (2, 'during the round')");
	PQclear(PQexec(locker, "ROLLBACK"));
	PQfinish(locker);
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM t", 2, 15000), "%s", it_bridge_stderr(&env));
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes", 0, 15000));
	it_stop(&env, pid);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, v FROM t ORDER BY id"), "1|first\n2|during the round\n");
}

/* SIGTERM while the local mark of a committed push waits for a SQLite
 * file another process holds: the bridge stops within the 5 s the stop
 * promises, and the next start settles the push exactly once. */
Test(push, sigterm_while_the_mark_waits_for_a_locked_file_stops_and_nothing_is_pushed_twice)
{
	it_setup(&env, "marklocked");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text)");
	it_sql(&env, "CREATE TABLE audit (id int)");
	it_sql(&env, "CREATE FUNCTION note() RETURNS trigger LANGUAGE plpgsql AS "
	             "$$BEGIN INSERT INTO audit VALUES (NEW.id); RETURN NEW; END$$");
	it_sql(&env, "CREATE TRIGGER note AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION note()");
	it_write_conf(&env, "realtime", NULL);
	setenv("PGSQLITE_BRIDGE_TEST_PAUSE_BEFORE_MARK_MS", "3000", 1);
	pid_t pid = it_run_online(&env);
	unsetenv("PGSQLITE_BRIDGE_TEST_PAUSE_BEFORE_MARK_MS");
	it_sqlite_exec(&env, "INSERT INTO t VALUES (1, 'one'), (2, 'two')");
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM t", 2, 15000), "%s", it_bridge_stderr(&env));
	/* committed in Postgres, the mark not yet done: hold the file */
	sqlite3 *holder = it_sqlite_open(&env);
	cr_assert_eq(sqlite3_exec(holder, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	it_sleep_ms(4000); /* the pause is over: the mark waits for the file */
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes"), 2, "marked already");
	kill(pid, SIGTERM);
	int rc = it_bridge_wait(pid, 8000);
	cr_expect(rc == 0 || rc == 1, "exit %d: %s", rc, it_bridge_stderr(&env));
	sqlite3_exec(holder, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(holder);
	pid = it_run_online(&env);
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes", 0, 15000),
	          "%s", it_bridge_stderr(&env));
	it_stop(&env, pid);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM audit"), 2, "a row inserted twice");
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT id, v FROM t ORDER BY id"),
	                 it_pg_rows(&env, "SELECT id, v FROM t ORDER BY id"));
}
