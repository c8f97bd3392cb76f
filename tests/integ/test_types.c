/* test_types.c: Postgres types that are not built in: domains (over
 * integers, booleans, bytea, other domains) and arrays of domains take
 * their base type's SQLite type and value form, in the copy at init, in
 * columns the stream adds, and on the way back. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../support/it.h"

static struct it_env env;

static void fini(void)
{
	it_teardown(&env);
}

TestSuite(types, .fini = fini, .timeout = 240);

static void create_domains(struct it_env *e)
{
	it_sql(e, "CREATE DOMAIN posint AS int CHECK (VALUE > 0)");
	it_sql(e, "CREATE DOMAIN level AS posint"); /* a domain over a domain */
	it_sql(e, "CREATE DOMAIN flag AS boolean");
	it_sql(e, "CREATE DOMAIN blobby AS bytea");
	it_sql(e, "CREATE DOMAIN ratio AS double precision");
}

Test(types, domains_take_their_base_type_in_the_copy_at_init)
{
	it_setup(&env, "domcopy");
	create_domains(&env);
	it_sql(&env, "CREATE TABLE t (id posint PRIMARY KEY, lv level, tags posint[], f flag, by blobby, "
	             "r ratio)");
	it_sql(&env, "INSERT INTO t VALUES (3, 4, '{1,2}', true, '\\x00ff', 0.5)");
	it_write_conf(&env, "manual", NULL);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT name, type FROM pragma_table_info('t') ORDER BY cid"),
	                 "id|INTEGER\nlv|INTEGER\ntags|TEXT\nf|INTEGER\nby|BLOB\nr|REAL\n");
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT typeof(id), id, typeof(lv), lv, tags, typeof(f), f, "
	                                      "hex(by), typeof(r) FROM t"),
	                 "integer|3|integer|4|{1,2}|integer|1|00FF|real\n");
}

Test(types, a_domain_column_added_while_streaming_is_an_integer_column)
{
	it_setup(&env, "domstream");
	create_domains(&env);
	it_sql(&env, "CREATE TABLE t (id posint PRIMARY KEY, v text)");
	it_write_conf(&env, "realtime", NULL);
	pid_t pid = it_run_online(&env);
	it_sql(&env, "INSERT INTO t VALUES (1, 'a')");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t", 1, 10000), "%s", it_bridge_stderr(&env));
	it_sql(&env, "ALTER TABLE t ADD COLUMN lv level, ADD COLUMN f flag, ADD COLUMN tags level[]");
	it_sql(&env, "INSERT INTO t VALUES (2, 'b', 7, false, '{5,6}')");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t", 2, 10000), "%s", it_bridge_stderr(&env));
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT name, type FROM pragma_table_info('t') WHERE name IN "
	                                      "('lv', 'f', 'tags') ORDER BY cid"),
	                 "lv|INTEGER\nf|INTEGER\ntags|TEXT\n");
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT typeof(id), typeof(lv), lv, typeof(f), f, tags FROM t "
	                                      "WHERE id = 2"),
	                 "integer|integer|7|integer|0|{5,6}\n");
	/* and a local write goes back through the domain */
	it_sqlite_exec(&env, "INSERT INTO t (id, v, lv, f) VALUES (3, 'local', 9, 1)");
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM t WHERE id = 3 AND lv = 9 AND f", 1, 10000),
	          "%s", it_bridge_stderr(&env));
	it_stop(&env, pid);
}
