/* test_reload.c: SIGHUP against real bridge processes and the throwaway
 * cluster: refused reloads leave the bridge syncing as before, a good one
 * takes effect, skip turned off catches a table up, a table added to the
 * config is copied online and then streamed, and an online snapshot under
 * concurrent writes on both sides ends equal, with no duplicate and no
 * gap. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/it.h"

static struct it_env env;

static void fini(void)
{
	it_teardown(&env);
}

TestSuite(reload, .fini = fini, .timeout = 240);

/* Waits until the bridge's stdout (or stderr) holds needle at least n times. */
static bool wait_output(struct it_env *e, bool err, const char *needle, int n, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 100) {
		if (it_count(err ? it_bridge_stderr(e) : it_bridge_stdout(e), needle) >= n)
			return true;
		it_sleep_ms(100);
	}
	return false;
}

/* Polls until the rows of a query are the same on both sides. */
static bool wait_equal(struct it_env *e, const char *sql, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 250) {
		if (strcmp(it_pg_rows(e, sql), it_sqlite_rows(e, sql)) == 0)
			return true;
		it_sleep_ms(250);
	}
	return false;
}

static void reload(struct it_env *e, pid_t pid, const char *mode, const char *extra)
{
	it_write_conf(e, mode, extra);
	cr_assert_eq(kill(pid, SIGHUP), 0);
}

/* A row each way arrives. */
static void assert_syncs_both_ways(struct it_env *e, int id)
{
	it_sql(e, "INSERT INTO t VALUES (%d, 'from pg')", id);
	it_sqlite_exec(e, "INSERT INTO t VALUES (%d, 'from sqlite')", id + 1);
	cr_assert(it_wait_sqlite_int(e, "SELECT count(*) FROM t WHERE v = 'from pg'", id / 10, 15000),
	          "a Postgres row did not arrive after a refused reload");
	char q[128];
	snprintf(q, sizeof q, "SELECT count(*) FROM t WHERE id = %d", id + 1);
	cr_assert(it_wait_pg_int(e, q, 1, 15000), "a local row did not reach Postgres");
}

Test(reload, bad_file_and_slot_change_are_refused_and_a_good_change_applies)
{
	it_setup(&env, "rl_refuse");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text)");
	it_write_conf(&env, "realtime", NULL);
	pid_t pid = it_run_online(&env);

	reload(&env, pid, "fast", NULL); /* not a mode */
	cr_assert(wait_output(&env, false, "configuration reload refused", 1, 15000),
	          "no error event for a bad file: %s", it_bridge_stdout(&env));
	cr_assert(strstr(it_bridge_stdout(&env), "\"retrying\":true"));
	cr_assert(strstr(it_bridge_stderr(&env), "'mode'"), "the error names no key");
	assert_syncs_both_ways(&env, 10);

	char slot[sizeof env.slot];
	snprintf(slot, sizeof slot, "%s", env.slot);
	cr_assert(strlen(slot) + 7 < sizeof env.slot);
	memcpy(env.slot + strlen(slot), "_other", 7);
	reload(&env, pid, "realtime", NULL);
	snprintf(env.slot, sizeof env.slot, "%s", slot);
	cr_assert(wait_output(&env, false, "configuration reload refused", 2, 15000));
	cr_assert(strstr(it_bridge_stderr(&env), "key 'slot'"), "the refusal names no key");
	assert_syncs_both_ways(&env, 20);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '%s_other'", slot), 0);

	/* A good change: manual mode pulls nothing until asked. */
	reload(&env, pid, "manual", NULL);
	cr_assert(wait_output(&env, true, "configuration reloaded", 1, 15000), "%s", it_bridge_stderr(&env));
	it_sql(&env, "INSERT INTO t VALUES (100, 'manual')");
	it_sleep_ms(2000);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM t WHERE id = 100"), 0,
	             "manual mode pulled without being asked");
	cr_assert_eq(kill(pid, SIGUSR1), 0);
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t WHERE id = 100", 1, 15000));
	it_stop(&env, pid);
}

Test(reload, skip_on_then_off_by_sighup_loses_nothing)
{
	const char *rows = "SELECT id, v FROM s ORDER BY id";
	it_setup(&env, "rl_skip");
	it_sql(&env, "CREATE TABLE s (id int PRIMARY KEY, v text)");
	it_sql(&env, "CREATE TABLE o (id int PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO s SELECT g, 'v' || g FROM generate_series(1, 100) g");
	it_write_conf(&env, "realtime", "[table public.s]\nskip = true\n[table public.o]\n");
	pid_t pid = it_run_online(&env);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM s"), 100);

	it_sql(&env, "INSERT INTO s SELECT g, 'v' || g FROM generate_series(101, 150) g");
	it_sql(&env, "UPDATE s SET v = 'pg' WHERE id <= 10");
	it_sql(&env, "DELETE FROM s WHERE id BETWEEN 91 AND 100");
	it_sqlite_exec(&env, "INSERT INTO s VALUES (1001, 'local')");
	it_sqlite_exec(&env, "UPDATE s SET v = 'local' WHERE id = 50");
	it_sql(&env, "INSERT INTO o VALUES (1, 'other')");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM o", 1, 15000));
	it_sleep_ms(500);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM s WHERE v = 'pg' OR id > 100 AND id < 1000"), 0,
	             "remote changes of a skipped table were applied");

	reload(&env, pid, "realtime", "[table public.s]\nskip = false\n[table public.o]\n");
	cr_assert(wait_equal(&env, rows, 30000), "not equal after skip off:\npg:\n%s\nsqlite:\n%s",
	          it_pg_rows(&env, rows), it_sqlite_rows(&env, rows));
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM s WHERE id = 1001 OR (id = 50 AND v = 'local')"), 2);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM s WHERE v = 'pg'"), 10);
	/* and it streams again */
	it_sql(&env, "UPDATE s SET v = 'later' WHERE id = 150");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM s WHERE v = 'later'", 1, 15000));
	it_stop(&env, pid);
}

Test(reload, a_table_added_by_sighup_is_copied_then_streamed_while_others_stream)
{
	const char *rows = "SELECT id, v FROM big ORDER BY id";
	it_setup(&env, "rl_add");
	it_sql(&env, "CREATE TABLE a (id int PRIMARY KEY, v text)");
	it_sql(&env, "CREATE TABLE big (id int PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO big SELECT g, 'row ' || g FROM generate_series(1, 50000) g");
	it_sql(&env, "ANALYZE big");
	it_write_conf(&env, "realtime", "[table public.a]\n");
	pid_t pid = it_run_online(&env);
	it_sql(&env, "INSERT INTO big VALUES (50001, 'before the reload')");

	reload(&env, pid, "realtime", "[table public.a]\n[table public.big]\n");
	cr_assert(wait_output(&env, true, "online snapshot of \"public.big\" started", 1, 15000),
	          "%s", it_bridge_stderr(&env));
	it_sql(&env, "INSERT INTO a VALUES (1, 'during the copy')");
	it_sql(&env, "INSERT INTO big VALUES (50002, 'during the copy')");
	it_sql(&env, "UPDATE big SET v = 'changed' WHERE id = 7");
	it_sql(&env, "DELETE FROM big WHERE id = 8");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM a", 1, 15000),
	          "the other table stopped streaming");
	cr_assert(wait_output(&env, true, "is in sync again", 1, 60000), "%s", it_bridge_stderr(&env));
	cr_assert(wait_equal(&env, rows, 30000), "big differs after its online snapshot");
	cr_assert(strstr(it_bridge_stdout(&env), "\"phase\":\"snapshot public.big\""), "no progress event");

	/* then streamed, both ways */
	it_sql(&env, "UPDATE big SET v = 'streamed' WHERE id = 9");
	it_sqlite_exec(&env, "INSERT INTO big VALUES (60000, 'local')");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM big WHERE v = 'streamed'", 1, 15000));
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM big WHERE id = 60000", 1, 15000));
	cr_assert(wait_equal(&env, rows, 15000));
	it_stop(&env, pid);
	/* a restart knows the table is copied: no second snapshot */
	int snaps = it_count(it_bridge_stderr(&env), "online snapshot of");
	pid = it_run_online(&env);
	it_sql(&env, "INSERT INTO big VALUES (60001, 'after restart')");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM big WHERE id = 60001", 1, 15000));
	cr_assert_eq(it_count(it_bridge_stderr(&env), "online snapshot of"), snaps);
	it_stop(&env, pid);
}

Test(reload, a_table_added_to_the_config_is_copied_at_restart)
{
	it_setup(&env, "rl_restart");
	it_sql(&env, "CREATE TABLE a (id int PRIMARY KEY, v text)");
	it_sql(&env, "CREATE TABLE b (id int PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO b SELECT g, 'b' || g FROM generate_series(1, 3000) g");
	it_write_conf(&env, "realtime", "[table public.a]\n");
	pid_t pid = it_run_online(&env);
	it_stop(&env, pid);
	it_sql(&env, "UPDATE b SET v = 'while stopped' WHERE id = 1");
	it_write_conf(&env, "realtime", "[table public.a]\n[table public.b]\n");
	pid = it_run_online(&env);
	cr_assert(wait_output(&env, true, "is in sync again", 1, 30000), "%s", it_bridge_stderr(&env));
	cr_assert(wait_equal(&env, "SELECT id, v FROM b ORDER BY id", 30000));
	it_sql(&env, "DELETE FROM b WHERE id = 2");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM b", 2999, 15000));
	it_stop(&env, pid);
}

/* A local write by an application that waits for the file's lock as long
 * as it takes (under a sanitizer, a busy pull can hold it for seconds). */
static void local_write(struct it_env *e, const char *sql)
{
	sqlite3 *db = it_sqlite_open(e);
	char *err = NULL;
	sqlite3_busy_timeout(db, 60000);
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	cr_assert_eq(rc, SQLITE_OK, "SQLite failed: %s: %s", sql, err ? err : "");
	sqlite3_close(db);
}

/* A Postgres writer committing while the table is copied. */
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
		snprintf(sql, sizeof sql, "BEGIN; UPDATE w SET v = v + 1 WHERE id = %d; "
		         "INSERT INTO w VALUES (%d, %d, 'pg'); DELETE FROM w WHERE id = %d; COMMIT",
		         (i * 37) % 19000 + 1, 100000 + i, i, 20000 - i);
		PQclear(PQexec(c, sql));
	}
	PQfinish(c);
	return NULL;
}

Test(reload, online_snapshot_under_concurrent_writes_ends_equal)
{
	const char *rows = "SELECT id, v, note FROM w ORDER BY id";
	it_setup(&env, "rl_conc");
	it_sql(&env, "CREATE TABLE w (id int PRIMARY KEY, v int, note text)");
	it_sql(&env, "INSERT INTO w SELECT g, 0, 'init' FROM generate_series(1, 20000) g");
	it_write_conf(&env, "realtime", "[table public.w]\nskip = true\n");
	pid_t pid = it_run_online(&env);

	struct writer w = {env.conninfo, 600};
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, write_loop, &w), 0);
	it_sleep_ms(200);
	reload(&env, pid, "realtime", "[table public.w]\nskip = false\n");
	for (int k = 0; k < 40; k++) {
		char sql[128];
		snprintf(sql, sizeof sql, "INSERT INTO w VALUES (%d, %d, 'local')", 200000 + k, k);
		local_write(&env, sql);
		it_sleep_ms(25);
	}
	pthread_join(th, NULL);
	cr_assert(wait_output(&env, true, "is in sync again", 1, 60000), "%s", it_bridge_stderr(&env));
	cr_assert(wait_equal(&env, rows, 60000), "not equal after an online snapshot under writes");
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM w WHERE id >= 200000"), 40);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM w WHERE id >= 100000 AND id < 200000"), 600);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM w"),
	             it_sql_int(&env, "SELECT count(*) FROM w"));
	it_stop(&env, pid);
}

Test(reload, a_copy_cut_off_by_kill_9_starts_again_and_ends_equal)
{
	const char *rows = "SELECT id, v FROM k ORDER BY id";
	it_setup(&env, "rl_kill");
	it_sql(&env, "CREATE TABLE k (id int PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO k SELECT g, 'k' || g FROM generate_series(1, 100000) g");
	it_write_conf(&env, "realtime", "[table public.k]\nskip = true\n");
	pid_t pid = it_run_online(&env);
	it_sql(&env, "UPDATE k SET v = 'while skipped' WHERE id %% 100 = 0");
	reload(&env, pid, "realtime", "[table public.k]\nskip = false\n");
	cr_assert(wait_output(&env, false, "\"phase\":\"snapshot public.k\"", 1, 30000));
	it_bridge_kill9(pid);
	it_sql(&env, "UPDATE k SET v = 'while down' WHERE id %% 1000 = 0");
	it_sql(&env, "DELETE FROM k WHERE id > 99990");
	it_sqlite_exec(&env, "INSERT INTO k VALUES (200001, 'local while down')");
	pid = it_run_online(&env);
	cr_assert(wait_output(&env, true, "is in sync again", 1, 60000), "%s", it_bridge_stderr(&env));
	cr_assert(wait_equal(&env, rows, 60000), "not equal after a copy cut off by kill -9");
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM k"), 99991);
	it_stop(&env, pid);
}

Test(reload, skip_turned_off_at_a_restart_catches_the_table_up)
{
	const char *rows = "SELECT id, v FROM s ORDER BY id";
	it_setup(&env, "rl_skiprs");
	it_sql(&env, "CREATE TABLE s (id int PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO s SELECT g, 'v' || g FROM generate_series(1, 50) g");
	it_write_conf(&env, "realtime", "[table public.s]\nskip = true\n");
	pid_t pid = it_run_online(&env);
	it_sql(&env, "UPDATE s SET v = 'skipped' WHERE id <= 5");
	it_sql(&env, "DELETE FROM s WHERE id > 45");
	it_sleep_ms(500);
	it_stop(&env, pid);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM s"), 50, "a skipped table was pulled");
	it_sql(&env, "INSERT INTO s VALUES (100, 'while stopped')");
	it_write_conf(&env, "realtime", "[table public.s]\n");
	pid = it_run_online(&env);
	cr_assert(wait_output(&env, true, "is in sync again", 1, 30000), "%s", it_bridge_stderr(&env));
	cr_assert(wait_equal(&env, rows, 30000), "not equal after skip was turned off at a restart");
	it_stop(&env, pid);
}

/* Changes queued behind a copy are written back and read again: values
 * with quotes, backslashes, newlines, unicode, exact numerics, JSON and
 * bytes come out as they went in. */
Test(reload, changes_queued_behind_a_copy_keep_their_exact_values)
{
	const char *pg = "SELECT string_agg(id || '|' || coalesce(t, 'NULL') || '|' || coalesce(n::text, 'NULL') "
	                 "|| '|' || coalesce(encode(b, 'hex'), 'NULL'), E'\\n' ORDER BY id) FROM q";
	const char *sl = "SELECT group_concat(x, char(10)) FROM (SELECT id || '|' || coalesce(t, 'NULL') || '|' || "
	                 "coalesce(n, 'NULL') || '|' || CASE WHEN b IS NULL THEN 'NULL' ELSE lower(hex(b)) END AS x "
	                 "FROM q ORDER BY id)";
	it_setup(&env, "rl_queue");
	it_sql(&env, "CREATE TABLE q (id int PRIMARY KEY, t text, n numeric, b bytea)");
	it_sql(&env, "INSERT INTO q SELECT g, 'row ' || g, g * 1.50, '\\x00ff'::bytea FROM generate_series(1, 40000) g");
	it_write_conf(&env, "realtime", "[table public.q]\nskip = true\n");
	pid_t pid = it_run_online(&env);
	reload(&env, pid, "realtime", "[table public.q]\nskip = false\n");
	cr_assert(wait_output(&env, true, "online snapshot of \"public.q\" started", 1, 30000));
	for (int i = 0; i < 30; i++) {
		it_sql(&env, "INSERT INTO q VALUES (%d, E'quote '' dq \" bs \\\\ nl \\n tab \\t é 日本 🚀 %d', "
		             "123456789012345678901234567890.000%d, '\\x00010203ff'::bytea)", 100000 + i, i, i);
		it_sql(&env, "UPDATE q SET t = NULL, n = 0.10, b = NULL WHERE id = %d", 40000 - i);
		it_sql(&env, "DELETE FROM q WHERE id = %d", 39000 - i);
	}
	cr_assert(wait_output(&env, true, "is in sync again", 1, 60000), "%s", it_bridge_stderr(&env));
	bool same = false;
	for (int waited = 0; waited < 30000 && !same; waited += 250) {
		same = strcmp(it_sql_value(&env, "%s", pg), it_sqlite_text(&env, sl)) == 0;
		if (!same)
			it_sleep_ms(250);
	}
	cr_assert(same, "the rows differ after changes queued behind the copy");
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM q WHERE id >= 100000"), 30);
	it_stop(&env, pid);
}
