/* test_identity.c: tables whose REPLICA IDENTITY does not carry the
 * primary key (USING INDEX on another unique index, NOTHING): wal2json
 * sends their deletes without the key.  check and init name them with the
 * fix, init syncs the other tables, and a table altered so while the
 * bridge runs never stops the others. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../support/it.h"

static struct it_env env;

static void fini(void)
{
	it_teardown(&env);
}

TestSuite(identity, .fini = fini, .timeout = 240);

/* ok (default identity), full_ok (FULL), by_index (USING INDEX on a
 * unique index without the key), nothing (NOTHING); a row in each. */
static void create_tables(struct it_env *e)
{
	it_sql(e, "CREATE TABLE ok (id int PRIMARY KEY, v text)");
	it_sql(e, "CREATE TABLE full_ok (id int PRIMARY KEY, v text)");
	it_sql(e, "ALTER TABLE full_ok REPLICA IDENTITY FULL");
	it_sql(e, "CREATE TABLE by_index (id int PRIMARY KEY, code text NOT NULL UNIQUE, v text)");
	it_sql(e, "ALTER TABLE by_index REPLICA IDENTITY USING INDEX by_index_code_key");
	it_sql(e, "CREATE TABLE nothing (id int PRIMARY KEY, v text)");
	it_sql(e, "ALTER TABLE nothing REPLICA IDENTITY NOTHING");
	it_sql(e, "INSERT INTO ok VALUES (1, 'a'); INSERT INTO full_ok VALUES (1, 'a'); "
	          "INSERT INTO by_index VALUES (1, 'c1', 'a'); INSERT INTO nothing VALUES (1, 'a')");
}

Test(identity, check_names_each_table_whose_replica_identity_lacks_the_key_with_its_fix)
{
	char out[16384];

	it_setup(&env, "identcheck");
	create_tables(&env);
	it_write_conf(&env, "manual", NULL);
	cr_assert_eq(it_bridge(&env, "check", out, sizeof out), 1, "%s", out);
	cr_assert(strstr(out, "problem: table \"public.by_index\" has REPLICA IDENTITY USING INDEX "
	                      "\"by_index_code_key\", which lacks its primary key column(s) id"), "%s", out);
	cr_assert(strstr(out, "fix: ALTER TABLE \"public\".\"by_index\" REPLICA IDENTITY DEFAULT"), "%s", out);
	cr_assert(strstr(out, "problem: table \"public.nothing\" has REPLICA IDENTITY NOTHING"), "%s", out);
	cr_assert(strstr(out, "fix: ALTER TABLE \"public\".\"nothing\" REPLICA IDENTITY DEFAULT"), "%s", out);
	cr_assert_eq(it_count(out, "problem:"), 2, "%s", out);
	/* the fix the line gives makes check pass */
	it_sql(&env, "ALTER TABLE by_index REPLICA IDENTITY DEFAULT");
	it_sql(&env, "ALTER TABLE nothing REPLICA IDENTITY FULL");
	cr_assert_eq(it_bridge(&env, "check", out, sizeof out), 0, "%s", out);
}

Test(identity, init_syncs_the_other_tables_and_names_the_refused_ones)
{
	char out[16384];

	it_setup(&env, "identinit");
	create_tables(&env);
	it_write_conf(&env, "realtime", NULL);
	cr_assert_eq(it_bridge(&env, "init", out, sizeof out), 0, "%s", out);
	cr_assert(strstr(out, "public.by_index\\\" has REPLICA IDENTITY USING INDEX"), "%s", out);
	cr_assert(strstr(out, "public.nothing\\\" has REPLICA IDENTITY NOTHING"), "%s", out);
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT name FROM sqlite_master WHERE type = 'table' AND "
	                                      "substr(name, 1, 10) <> '_pgsqlite_' AND "
	                                      "substr(name, 1, 7) <> 'sqlite_' ORDER BY name"),
	                 "full_ok\nok\n");
	pid_t pid = it_run_online(&env);
	it_sql(&env, "DELETE FROM by_index WHERE id = 1; DELETE FROM nothing WHERE id = 1");
	it_sql(&env, "INSERT INTO ok VALUES (2, 'b'); DELETE FROM full_ok WHERE id = 1");
	cr_assert(it_wait_sqlite_int(&env, "SELECT (SELECT count(*) FROM ok) * 10 + (SELECT count(*) FROM full_ok)",
	                             20, 10000), "%s", it_bridge_stderr(&env));
	it_stop(&env, pid);
}

/* The runtime side: the table was fine at init, then its identity changed.
 * Its delete arrives without the key; it is set aside, and the stream goes
 * on for every table. */
Test(identity, a_table_altered_to_an_index_identity_while_running_does_not_stop_the_others)
{
	it_setup(&env, "identlater");
	it_sql(&env, "CREATE TABLE ok (id int PRIMARY KEY, v text)");
	it_sql(&env, "CREATE TABLE later (id int PRIMARY KEY, code text NOT NULL UNIQUE, v text)");
	it_sql(&env, "INSERT INTO later VALUES (1, 'c1', 'a'), (2, 'c2', 'b')");
	it_write_conf(&env, "realtime", NULL);
	pid_t pid = it_run_online(&env);
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM later", 2, 10000));
	it_sql(&env, "ALTER TABLE later REPLICA IDENTITY USING INDEX later_code_key");
	it_sql(&env, "DELETE FROM later WHERE id = 1");
	it_sql(&env, "INSERT INTO ok VALUES (1, 'after')");
	it_sql(&env, "INSERT INTO later VALUES (3, 'c3', 'c')");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM ok", 1, 15000), "the stream stopped: %s",
	          it_bridge_stderr(&env));
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM later WHERE id = 3", 1, 10000), "%s",
	          it_bridge_stderr(&env));
	it_sql(&env, "INSERT INTO ok VALUES (2, 'still')");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM ok", 2, 10000), "%s", it_bridge_stderr(&env));
	it_stop(&env, pid);
}
