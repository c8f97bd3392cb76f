/* test_stream.c: properties of the stream into SQLite: a Postgres
 * transaction is never split across SQLite transactions, back-to-back
 * transactions share one (group commit), keepalives are answered while
 * idle, the slot advances on an idle database, and a locked SQLite file
 * delays but never loses or duplicates a change. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../support/it.h"

static struct it_env env;

static void fini(void)
{
	it_teardown(&env);
}

TestSuite(stream, .fini = fini, .timeout = 180);




Test(stream, a_postgres_transaction_is_never_seen_half_applied)
{
	it_setup(&env, "atomic");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, pad text)");
	it_write_conf(&env, "realtime", NULL);
	pid_t pid = it_run_online(&env);
	it_sql(&env, "INSERT INTO t SELECT g, repeat('p', 50) FROM generate_series(1, 60000) g");
	int64_t seen = 0;
	for (int i = 0; i < 3000 && seen != 60000; i++) {
		seen = it_sqlite_int(&env, "SELECT count(*) FROM t");
		cr_assert(seen == 0 || seen == 60000, "SQLite showed %lld rows of a 60000-row transaction",
		          (long long)seen);
		it_sleep_ms(5);
	}
	cr_assert_eq(seen, 60000);
	it_stop(&env, pid);
}

Test(stream, back_to_back_transactions_share_sqlite_commits)
{
	char out[65536];
	it_setup(&env, "group");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY)");
	it_write_conf(&env, "manual", NULL);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	for (int i = 1; i <= 300; i++)
		it_sql(&env, "INSERT INTO t VALUES (%d)", i);
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert(strstr(out, "\"transactions\":300,"), "%s", out);
	int commits = it_count(out, "\"event\":\"sync\"");
	cr_assert(commits >= 1 && commits < 30, "%d SQLite commits for 300 transactions", commits);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM t"), 300);
}

Test(stream, an_idle_bridge_answers_keepalives_and_stays_connected)
{
	/* The test cluster runs with wal_sender_timeout = 10s: a bridge that
	 * did not answer would be cut off (and say "offline"). */
	it_setup(&env, "idle");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY)");
	it_write_conf(&env, "realtime", NULL);
	pid_t pid = it_run_online(&env);
	it_sleep_ms(25000);
	it_sql(&env, "INSERT INTO t VALUES (1)");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t", 1, 10000));
	char *out = it_bridge_stdout(&env);
	cr_assert(!strstr(out, "\"offline\""), "the server cut the idle bridge off: %s", out);
	it_stop(&env, pid);
}

Test(stream, the_slot_advances_while_only_other_databases_write)
{
	it_setup(&env, "advance");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY)");
	it_write_conf(&env, "realtime", NULL);
	pid_t pid = it_run_online(&env);
	char *before = it_sql_value(&env, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = '%s'", env.slot);
	/* WAL from another database only */
	it_sql(&env, "SELECT pg_switch_wal()");
	system("psql -X -q -h 127.0.0.1 -p \"$PGSB_TEST_PGPORT\" -U postgres -d postgres "
	       "-c 'CREATE TABLE IF NOT EXISTS busy_elsewhere (x int); INSERT INTO busy_elsewhere SELECT generate_series(1, 1000)' >/dev/null");
	char sql[400];
	snprintf(sql, sizeof sql, "SELECT (confirmed_flush_lsn > '%s'::pg_lsn)::int FROM pg_replication_slots WHERE slot_name = '%s'",
	         before, env.slot);
	cr_assert(it_wait_pg_int(&env, sql, 1, 30000), "confirmed_flush_lsn stayed at %s", before);
	it_stop(&env, pid);
}

Test(stream, a_locked_sqlite_file_delays_but_loses_nothing)
{
	it_setup(&env, "locked");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v int)");
	it_write_conf(&env, "realtime", NULL);
	pid_t pid = it_run_online(&env);
	it_sql(&env, "INSERT INTO t VALUES (1, 1)");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t", 1, 10000));
	/* An application holds the write lock longer than the busy timeout. */
	sqlite3 *app = it_sqlite_open(&env);
	cr_assert_eq(sqlite3_exec(app, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	for (int i = 2; i <= 50; i++)
		it_sql(&env, "INSERT INTO t VALUES (%d, %d)", i, i);
	it_sql(&env, "UPDATE t SET v = v + 100");
	it_sleep_ms(8000);
	cr_assert_eq(sqlite3_exec(app, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(app);
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t WHERE v > 100", 50, 30000), "%s", it_bridge_stderr(&env));
	it_stop(&env, pid);
	char *pg = it_pg_rows(&env, "SELECT id, v FROM t ORDER BY id");
	char *sl = it_sqlite_rows(&env, "SELECT id, v FROM t ORDER BY id");
	cr_assert_str_eq(sl, pg);
}
