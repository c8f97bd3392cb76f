/* test_tsnap_sync.c: online table copies in manual use, with `sync`
 * alone (no `run`): a table whose skip was turned off, and a table added
 * to the config, catch up at the next `sync`, with local and remote
 * writes on both sides kept. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../support/it.h"

static struct it_env env;

static void fini(void)
{
	it_teardown(&env);
}

TestSuite(tsnap_sync, .fini = fini, .timeout = 240);

static void sync_ok(struct it_env *e)
{
	char out[4096];
	int rc = it_bridge(e, "sync", out, sizeof out);
	cr_assert_eq(rc, 0, "sync failed (%d): %s", rc, out);
	cr_assert(strstr(out, "\"ok\":true"), "%s", out);
}

static void assert_equal(struct it_env *e, const char *sql)
{
	const char *pg = it_pg_rows(e, sql), *sl = it_sqlite_rows(e, sql);
	cr_assert_str_eq(pg, sl, "differ:\npg:\n%s\nsqlite:\n%s", pg, sl);
}

Test(tsnap_sync, skip_turned_off_catches_up_with_sync_alone)
{
	const char *rows = "SELECT id, v FROM s ORDER BY id";
	it_setup(&env, "ts_skip");
	it_sql(&env, "CREATE TABLE s (id int PRIMARY KEY, v text)");
	it_sql(&env, "CREATE TABLE o (id int PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO s SELECT g, 'v' || g FROM generate_series(1, 3000) g");
	it_write_conf(&env, "manual", "[table public.s]\nskip = true\n[table public.o]\n");
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);

	it_sql(&env, "INSERT INTO s SELECT g, 'new' || g FROM generate_series(3001, 3100) g");
	it_sql(&env, "UPDATE s SET v = 'pg' WHERE id <= 20");
	it_sql(&env, "DELETE FROM s WHERE id BETWEEN 2001 AND 2050");
	it_sql(&env, "INSERT INTO o VALUES (1, 'other')");
	it_sqlite_exec(&env, "INSERT INTO s VALUES (9001, 'local')");
	it_sqlite_exec(&env, "UPDATE s SET v = 'local' WHERE id = 500");
	it_sqlite_exec(&env, "DELETE FROM s WHERE id = 501");
	sync_ok(&env);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM o"), 1);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM s WHERE v = 'pg' OR id > 3000 AND id < 9000"), 0,
	             "a skipped table was pulled");
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM s WHERE id = 9001"), 0, "a skipped table was pushed");

	it_write_conf(&env, "manual", "[table public.s]\nskip = false\n[table public.o]\n");
	sync_ok(&env);
	assert_equal(&env, rows);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM s WHERE id = 9001 OR (id = 500 AND v = 'local')"), 2);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM s WHERE id = 501"), 0);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM s WHERE v = 'pg'"), 20);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM s"), 3100 - 50 - 1 + 1);

	/* and the next sync pulls it as usual */
	it_sql(&env, "UPDATE s SET v = 'later' WHERE id = 3100");
	sync_ok(&env);
	assert_equal(&env, rows);
}

Test(tsnap_sync, a_table_added_to_the_config_is_copied_by_sync)
{
	const char *rows = "SELECT id, v FROM b ORDER BY id";
	it_setup(&env, "ts_add");
	it_sql(&env, "CREATE TABLE a (id int PRIMARY KEY, v text)");
	it_sql(&env, "CREATE TABLE b (id int PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO b SELECT g, 'b' || g FROM generate_series(1, 5000) g");
	it_write_conf(&env, "manual", "[table public.a]\n");
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sql(&env, "UPDATE b SET v = 'changed' WHERE id <= 10");
	it_sql(&env, "INSERT INTO a VALUES (1, 'a')");
	it_write_conf(&env, "manual", "[table public.a]\n[table public.b]\n");
	sync_ok(&env);
	assert_equal(&env, rows);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM a"), 1);
	it_sqlite_exec(&env, "INSERT INTO b VALUES (9001, 'local')");
	it_sql(&env, "DELETE FROM b WHERE id = 1");
	sync_ok(&env);
	assert_equal(&env, rows);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM b WHERE id = 9001"), 1);
}
