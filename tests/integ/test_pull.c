/* test_pull.c: Postgres -> SQLite against the real throwaway cluster and
 * real bridge processes: snapshot, realtime DML, types, TOAST, quoting,
 * crash and replay. */
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

TestSuite(pull, .fini = fini, .timeout = 180);



Test(pull, init_copies_ten_thousand_rows_from_one_snapshot)
{
	char out[4096];
	it_setup(&env, "snap10k");
	it_sql(&env, "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2))");
	it_sql(&env, "INSERT INTO items SELECT g, 'item ' || g, g * 1.25 FROM generate_series(1, 10000) g");
	it_sql(&env, "ANALYZE items");
	it_write_conf(&env, "realtime", NULL);
	cr_assert_eq(it_bridge(&env, "init", out, sizeof out), 0);
	cr_assert(strstr(out, "\"progress\""), "no progress event: %s", out);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM items"), 10000);
	char *pg = it_pg_rows(&env, "SELECT id, name, price FROM items ORDER BY id");
	char *sl = it_sqlite_rows(&env, "SELECT id, name, price FROM items ORDER BY id");
	cr_assert_str_eq(sl, pg);
	/* init again: idempotent, no duplicate, still one slot */
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM items"), 10000);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '%s'", env.slot), 1);
}

Test(pull, realtime_applies_insert_update_delete_and_truncate)
{
	it_setup(&env, "dml");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text)");
	it_write_conf(&env, "realtime", NULL);
	pid_t pid = it_run_online(&env);
	it_sql(&env, "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t", 3, 10000));
	it_sql(&env, "UPDATE t SET v = 'B' WHERE id = 2");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t WHERE v = 'B'", 1, 10000));
	it_sql(&env, "UPDATE t SET id = 30 WHERE id = 3");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t WHERE id = 30 AND v = 'c'", 1, 10000));
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM t WHERE id = 3"), 0);
	it_sql(&env, "DELETE FROM t WHERE id = 1");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t", 2, 10000));
	it_sql(&env, "TRUNCATE t");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t", 0, 10000));
	/* a multi-row transaction lands whole */
	it_sql(&env, "BEGIN; INSERT INTO t SELECT g, 'x' FROM generate_series(1, 500) g; COMMIT");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t", 500, 10000));
	it_stop(&env, pid);
	char *out = it_bridge_stdout(&env);
	cr_assert(strstr(out, "\"event\":\"sync\""), "no sync event");
	cr_assert(!strstr(out, "secret-pw") && !strstr(it_bridge_stderr(&env), "secret-pw"),
	          "the password leaked into output");
}

Test(pull, every_mapped_type_round_trips)
{
	it_setup(&env, "types");
	it_sql(&env, "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')");
	it_sql(&env, "CREATE TABLE ty (id bigint PRIMARY KEY, i2 smallint, i4 int, i8 bigint, b bool, "
	             "r real, d double precision, n numeric, n2 numeric(12,2), t text, vc varchar(10), "
	             "c char(3), u uuid, e mood, dt date, tm time, ts timestamp, tz timestamptz, "
	             "j json, jb jsonb, by bytea, arr int[], iv interval)");
	it_write_conf(&env, "realtime", NULL);
	pid_t pid = it_run_online(&env);
	it_sql(&env, "INSERT INTO ty VALUES (1, -32768, 2147483647, 9223372036854775807, true, 1.5, "
	             "0.1, 123456789012345678901234567890.000001, 12.50, E'quote '' \" back \\\\ nl \\n tab \\t é 日本 🚀', "
	             "'short', 'ab', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy', '2024-02-29', '13:14:15.5', "
	             "'2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.123456+02', '{\"a\": [1, 2.50]}', "
	             "'{\"k\": \"v\", \"n\": 1.10}', '\\x00ff10', '{1,2,3}', '1 day 02:03:04')");
	it_sql(&env, "INSERT INTO ty (id) VALUES (2)");
	it_sql(&env, "INSERT INTO ty (id, t) VALUES (3, repeat('x', 100000) || '日本')");
	it_sql(&env, "INSERT INTO ty (id, b) VALUES (4, false)");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM ty", 4, 10000));
	it_stop(&env, pid);
	cr_assert_eq(it_sqlite_int(&env, "SELECT i8 FROM ty WHERE id = 1"), INT64_MAX);
	cr_assert_str_eq(it_sqlite_text(&env, "SELECT typeof(i8) || typeof(b) || typeof(r) || typeof(n) || typeof(by) FROM ty WHERE id = 1"),
	                 "integerintegerrealtextblob");
	cr_assert_str_eq(it_sqlite_text(&env, "SELECT n FROM ty WHERE id = 1"), "123456789012345678901234567890.000001");
	cr_assert_str_eq(it_sqlite_text(&env, "SELECT n2 FROM ty WHERE id = 1"), "12.50");
	cr_assert_str_eq(it_sqlite_text(&env, "SELECT hex(by) FROM ty WHERE id = 1"), "00FF10");
	cr_assert_eq(it_sqlite_int(&env, "SELECT b FROM ty WHERE id = 1"), 1);
	cr_assert_eq(it_sqlite_int(&env, "SELECT b FROM ty WHERE id = 4"), 0);
	cr_assert_str_eq(it_sqlite_text(&env, "SELECT d FROM ty WHERE id = 1"), "0.1");
	/* text values equal Postgres's own text output */
	char *pg = it_pg_rows(&env, "SELECT t, vc, c, u, e, dt, tm, ts, tz, j, jb, arr, iv FROM ty WHERE id = 1");
	char *sl = it_sqlite_rows(&env, "SELECT t, vc, c, u, e, dt, tm, ts, tz, j, jb, arr, iv FROM ty WHERE id = 1");
	cr_assert_str_eq(sl, pg);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM ty WHERE id = 2 AND t IS NULL AND n IS NULL AND by IS NULL AND b IS NULL"), 1);
	cr_assert_eq(it_sqlite_int(&env, "SELECT length(t) FROM ty WHERE id = 3"), 100002);
}

Test(pull, update_leaving_a_toasted_column_unchanged_keeps_it)
{
	it_setup(&env, "toast");
	it_sql(&env, "CREATE TABLE doc (id int PRIMARY KEY, body text, title text)");
	it_sql(&env, "ALTER TABLE doc ALTER body SET STORAGE EXTERNAL");
	it_write_conf(&env, "realtime", NULL);
	pid_t pid = it_run_online(&env);
	it_sql(&env, "INSERT INTO doc VALUES (1, repeat('y', 200000), 'first')");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM doc", 1, 10000));
	it_sql(&env, "UPDATE doc SET title = 'second' WHERE id = 1");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM doc WHERE title = 'second'", 1, 10000));
	it_stop(&env, pid);
	cr_assert_eq(it_sqlite_int(&env, "SELECT length(body) FROM doc WHERE id = 1"), 200000);
}

Test(pull, names_that_need_quoting_are_synced)
{
	it_setup(&env, "quoting");
	it_sql(&env, "CREATE SCHEMA \"Sales\"");
	it_sql(&env, "CREATE TABLE \"Sales\".\"Order \"\"Items\"\"\" (\"Id\" int PRIMARY KEY, \"we ird\" text, "
	             "\"select\" int, \"q'uote\" text)");
	it_sql(&env, "INSERT INTO \"Sales\".\"Order \"\"Items\"\"\" VALUES (1, 'a', 2, 'b')");
	it_write_conf(&env, "realtime", "[table Sales.Order \"Items\"]\n");
	pid_t pid = it_run_online(&env);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM \"Sales__Order \"\"Items\"\"\""), 1);
	it_sql(&env, "INSERT INTO \"Sales\".\"Order \"\"Items\"\"\" VALUES (2, 'c', 3, 'd')");
	it_sql(&env, "UPDATE \"Sales\".\"Order \"\"Items\"\"\" SET \"we ird\" = 'A' WHERE \"Id\" = 1");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM \"Sales__Order \"\"Items\"\"\" WHERE \"we ird\" IN ('A', 'c')", 2, 10000));
	it_stop(&env, pid);
	cr_assert_str_eq(it_sqlite_text(&env, "SELECT \"q'uote\" || \"select\" FROM \"Sales__Order \"\"Items\"\"\" WHERE \"Id\" = 2"), "d3");
}

Test(pull, a_column_added_in_postgres_after_init_reaches_sqlite)
{
	it_setup(&env, "addcol");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text)");
	it_write_conf(&env, "realtime", NULL);
	pid_t pid = it_run_online(&env);
	it_sql(&env, "ALTER TABLE t ADD COLUMN extra numeric");
	it_sql(&env, "INSERT INTO t VALUES (1, 'a', 3.14159)");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t WHERE extra = '3.14159'", 1, 10000),
	          "%s", it_bridge_stderr(&env));
	it_stop(&env, pid);
}

Test(pull, kill_9_mid_stream_then_restart_loses_nothing_and_duplicates_nothing)
{
	it_setup(&env, "kill9");
	it_sql(&env, "CREATE TABLE ev (id int PRIMARY KEY, n int NOT NULL)");
	it_sql(&env, "CREATE TABLE counter (id int PRIMARY KEY, hits bigint NOT NULL)");
	it_sql(&env, "INSERT INTO counter VALUES (1, 0)");
	it_write_conf(&env, "realtime", NULL);
	pid_t pid = it_run_online(&env);
	/* 300 transactions; the bridge is killed while they stream in. */
	for (int i = 1; i <= 300; i++) {
		it_sql(&env, "BEGIN; INSERT INTO ev VALUES (%d, %d); UPDATE counter SET hits = hits + 1; COMMIT", i, i);
		if (i == 100 || i == 200) {
			it_bridge_kill9(pid);
			pid = it_bridge_start(&env, "run");
		}
	}
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM ev", 300, 30000), "%s", it_bridge_stderr(&env));
	cr_assert(it_wait_sqlite_int(&env, "SELECT hits FROM counter", 300, 30000));
	it_stop(&env, pid);
	char *pg = it_pg_rows(&env, "SELECT id, n FROM ev ORDER BY id");
	char *sl = it_sqlite_rows(&env, "SELECT id, n FROM ev ORDER BY id");
	cr_assert_str_eq(sl, pg);
}

Test(pull, sync_pulls_up_to_now_and_prints_a_summary)
{
	char out[4096];
	it_setup(&env, "sync");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text)");
	it_write_conf(&env, "manual", NULL);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sql(&env, "INSERT INTO t SELECT g, 'v' FROM generate_series(1, 1000) g");
	it_sql(&env, "UPDATE t SET v = 'w' WHERE id <= 10");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert(strstr(out, "\"ok\":true") && strstr(out, "\"rows\":1010"), "%s", out);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM t"), 1000);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM t WHERE v = 'w'"), 10);
	/* nothing new: a second sync applies nothing */
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0);
	cr_assert(strstr(out, "\"rows\":0"), "%s", out);
}
