/* test_conflict.c: one row changed on both sides, settled by each
 * strategy: the outcome in Postgres and in SQLite, and the row written to
 * _pgsqlite_conflicts. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../support/it.h"

static struct it_env env;

static void fini(void)
{
	it_teardown(&env);
}

TestSuite(conflict, .fini = fini, .timeout = 120);

/* A row both sides agree on, then a local edit and a later Postgres edit
 * (or the reverse order with local_last), then one sync. */
static void make_conflict(const char *name, const char *strategy, bool local_last)
{
	char out[8192], extra[128];
	it_setup(&env, name);
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, a text, b text)");
	it_sql(&env, "INSERT INTO t VALUES (1, 'base a', 'base b')");
	snprintf(extra, sizeof extra, "conflict = %s\n", strategy);
	it_write_conf(&env, "manual", extra);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	if (local_last) {
		it_sql(&env, "UPDATE t SET b = 'remote b' WHERE id = 1");
		it_sleep_ms(50);
		it_sqlite_exec(&env, "UPDATE t SET a = 'local a' WHERE id = 1");
	} else {
		it_sqlite_exec(&env, "UPDATE t SET a = 'local a' WHERE id = 1");
		it_sleep_ms(50);
		it_sql(&env, "UPDATE t SET b = 'remote b' WHERE id = 1");
	}
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert(strstr(out, "\"event\":\"conflict\""), "no conflict event: %s", out);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes"), 0);
}

static void both_sides_hold(const char *row)
{
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, a, b FROM t"), row);
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT id, a, b FROM t"), row);
}

static void conflict_row_is(const char *strategy, const char *resolution, bool resolved)
{
	char sql[300];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM _pgsqlite_conflicts WHERE table_name = 't' AND "
	         "pk = '{\"id\":1}' AND strategy = '%s' AND resolution = '%s' AND detected_at IS NOT NULL "
	         "AND resolved_at IS %s AND local_row LIKE '%%local a%%'", strategy, resolution,
	         resolved ? "NOT NULL" : "NULL");
	cr_assert_eq(it_sqlite_int(&env, sql), 1, "%s", it_sqlite_rows(&env, "SELECT * FROM _pgsqlite_conflicts"));
}

Test(conflict, local_wins_keeps_the_local_row_on_both_sides)
{
	make_conflict("cf_local", "local-wins", false);
	both_sides_hold("1|local a|base b\n");
	conflict_row_is("local-wins", "local", true);
}

Test(conflict, remote_wins_keeps_the_postgres_row_on_both_sides)
{
	make_conflict("cf_remote", "remote-wins", false);
	both_sides_hold("1|base a|remote b\n");
	conflict_row_is("remote-wins", "remote", true);
}

Test(conflict, keep_both_keeps_postgres_in_place_and_the_local_row_for_a_person)
{
	make_conflict("cf_keep", "keep-both", false);
	both_sides_hold("1|base a|remote b\n");
	conflict_row_is("keep-both", "kept-both", false);
	char out[4096];
	cr_assert_eq(it_bridge(&env, "status", out, sizeof out), 0);
	cr_assert(strstr(out, "\"conflicts_unresolved\":1"), "%s", out);
}

Test(conflict, merge_keeps_each_sides_own_column)
{
	make_conflict("cf_merge", "merge", false);
	both_sides_hold("1|local a|remote b\n");
	conflict_row_is("merge", "merged", true);
}

Test(conflict, last_write_wins_picks_postgres_when_it_wrote_last)
{
	make_conflict("cf_lww_r", "last-write-wins", false);
	both_sides_hold("1|base a|remote b\n");
	conflict_row_is("last-write-wins", "remote", true);
}

Test(conflict, last_write_wins_picks_sqlite_when_it_wrote_last)
{
	make_conflict("cf_lww_l", "last-write-wins", true);
	both_sides_hold("1|local a|base b\n");
	conflict_row_is("last-write-wins", "local", true);
}

Test(conflict, last_write_wins_uses_the_timestamp_column_where_the_table_has_it)
{
	char out[8192];
	it_setup(&env, "cf_tscol");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, a text, updated_at timestamptz)");
	it_sql(&env, "INSERT INTO t VALUES (1, 'base', '2024-01-01 00:00:00+00')");
	it_write_conf(&env, "manual", NULL);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	/* Postgres writes last by the clock, but its updated_at is older. */
	it_sqlite_exec(&env, "UPDATE t SET a = 'local', updated_at = '2030-01-01 00:00:00+00' WHERE id = 1");
	it_sleep_ms(50);
	it_sql(&env, "UPDATE t SET a = 'remote', updated_at = '2025-01-01 00:00:00+00' WHERE id = 1");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT a FROM t"), "local\n");
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT a FROM t"), "local\n");
}

Test(conflict, update_against_a_remote_delete_is_a_conflict)
{
	char out[8192];
	it_setup(&env, "cf_del");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, a text)");
	it_sql(&env, "INSERT INTO t VALUES (1, 'base')");
	it_write_conf(&env, "manual", "conflict = local-wins\n");
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sqlite_exec(&env, "UPDATE t SET a = 'local' WHERE id = 1");
	it_sql(&env, "DELETE FROM t WHERE id = 1");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, a FROM t"), "1|local\n");
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT id, a FROM t"), "1|local\n");
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_conflicts"), 1);
}

Test(conflict, an_insert_on_both_sides_with_one_key_is_a_conflict)
{
	char out[8192];
	it_setup(&env, "cf_ins");
	it_sql(&env, "CREATE TABLE t (id text PRIMARY KEY, a text)");
	it_write_conf(&env, "manual", "conflict = remote-wins\n");
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sqlite_exec(&env, "INSERT INTO t VALUES ('k', 'local')");
	it_sql(&env, "INSERT INTO t VALUES ('k', 'remote')");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, a FROM t"), "k|remote\n");
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT id, a FROM t"), "k|remote\n");
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_conflicts"), 1);
}
