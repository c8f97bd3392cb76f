/* test_schema_live.c: the schema changing in Postgres while the bridge
 * runs.  An added column reaches Postgres from a local edit, a dropped one
 * does not block pushes of the others, and an added column's existing
 * values come from Postgres, never NULL because it was unknown. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../support/it.h"

static struct it_env env;

static void fini(void)
{
	it_teardown(&env);
}

TestSuite(schema_live, .fini = fini, .timeout = 180);

static void assert_equal_tables(struct it_env *e, const char *cols, const char *table)
{
	char sql[256];
	snprintf(sql, sizeof sql, "SELECT %s FROM %s ORDER BY 1", cols, table);
	cr_assert_str_eq(it_sqlite_rows(e, sql), it_pg_rows(e, sql));
}

/* A first local edit, pushed: the push has loaded the table's columns. */
static void warm_push(struct it_env *e)
{
	it_sqlite_exec(e, "UPDATE t SET v = 'warm' WHERE id = 1");
	cr_assert(it_wait_pg_int(e, "SELECT count(*) FROM t WHERE id = 1 AND v = 'warm'", 1, 20000),
	          "%s", it_bridge_stderr(e));
}

/* ADD COLUMN in Postgres; a remote insert brings it locally; a local
 * update of the new column reaches Postgres (it was dropped from pushes). */
Test(schema_live, a_column_added_in_postgres_is_pushed_from_local_edits)
{
	it_setup(&env, "addcol");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO t VALUES (1, 'a'), (2, 'b')");
	it_write_conf(&env, "realtime", NULL);
	pid_t pid = it_run_online(&env);
	warm_push(&env);
	it_sql(&env, "ALTER TABLE t ADD COLUMN c text");
	it_sql(&env, "INSERT INTO t VALUES (3, 'c', 'remote')");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t WHERE c = 'remote'", 1, 20000), "%s",
	          it_bridge_stderr(&env));
	it_sqlite_exec(&env, "UPDATE t SET c = 'local' WHERE id = 2");
	it_sqlite_exec(&env, "INSERT INTO t VALUES (4, 'd', 'local insert')");
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM t WHERE id = 2 AND c = 'local'", 1, 20000),
	          "%s", it_bridge_stderr(&env));
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM t WHERE id = 4 AND c = 'local insert'", 1,
	                         20000), "%s", it_bridge_stderr(&env));
	it_stop(&env, pid);
	assert_equal_tables(&env, "id, v, c", "t");
}

/* DROP COLUMN in Postgres: local edits of the remaining columns, single
 * rows and a bulk insert, still reach Postgres (every push failed). */
Test(schema_live, a_column_dropped_in_postgres_does_not_block_pushes)
{
	it_setup(&env, "dropcol");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text, gone text)");
	it_sql(&env, "INSERT INTO t VALUES (1, 'a', 'x'), (2, 'b', 'y')");
	it_write_conf(&env, "realtime", NULL);
	pid_t pid = it_run_online(&env);
	warm_push(&env);
	it_sql(&env, "ALTER TABLE t DROP COLUMN gone");
	it_sqlite_exec(&env, "UPDATE t SET v = 'after' WHERE id = 2");
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM t WHERE id = 2 AND v = 'after'", 1, 20000),
	          "%s", it_bridge_stderr(&env));
	it_sqlite_exec(&env, "WITH RECURSIVE s(i) AS (SELECT 100 UNION ALL SELECT i + 1 FROM s "
	                     "WHERE i < 139) INSERT INTO t SELECT i, 'bulk', 'local only' FROM s");
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM t WHERE v = 'bulk'", 40, 20000), "%s",
	          it_bridge_stderr(&env));
	it_sqlite_exec(&env, "UPDATE t SET v = 'later', gone = 'z' WHERE id = 1");
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM t WHERE id = 1 AND v = 'later'", 1, 20000),
	          "%s", it_bridge_stderr(&env));
	it_stop(&env, pid);
	assert_equal_tables(&env, "id, v", "t");
}

/* ADD COLUMN ... DEFAULT: the existing rows hold the default in Postgres;
 * locally too once the column arrives, and a later unrelated local edit
 * of an old row leaves Postgres's value alone (it pushed NULL). */
Test(schema_live, an_added_columns_existing_values_come_from_postgres)
{
	it_setup(&env, "adddefault");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO t SELECT i, 'old ' || i FROM generate_series(1, 50) i");
	it_write_conf(&env, "realtime", NULL);
	pid_t pid = it_run_online(&env);
	warm_push(&env);
	it_sql(&env, "ALTER TABLE t ADD COLUMN c text DEFAULT 'd', ADD COLUMN n int DEFAULT 42");
	it_sql(&env, "UPDATE t SET c = 'changed' WHERE id = 3");
	it_sql(&env, "INSERT INTO t (id, v) VALUES (100, 'new')");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t WHERE id = 100", 1, 20000), "%s",
	          it_bridge_stderr(&env));
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM t WHERE c = 'd' AND n = 42"), 50,
	             "%s", it_sqlite_rows(&env, "SELECT id, c, n FROM t WHERE c IS NOT 'd' ORDER BY id"));
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM t WHERE id = 3 AND c = 'changed'"), 1);
	it_sqlite_exec(&env, "UPDATE t SET v = 'edited' WHERE id = 7");
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM t WHERE id = 7 AND v = 'edited'", 1, 20000),
	          "%s", it_bridge_stderr(&env));
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM t WHERE id = 7 AND c = 'd' AND n = 42"), 1);
	it_stop(&env, pid);
	assert_equal_tables(&env, "id, v, c, n", "t");
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM t WHERE c IS NULL OR n IS NULL"), 0);
}
