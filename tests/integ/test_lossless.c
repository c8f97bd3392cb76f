/* test_lossless.c: the data-loss scenarios a review found, one test each:
 * a failing push never touches the pull's transaction, acknowledgements
 * are earned, pulled rows become visible promptly in every mode, a change
 * log belongs to its file, a resync keeps local work, changes that cancel
 * out still bring Postgres's row back, a key move is not folded into
 * another row, a remote change SQLite refuses is set aside, and concurrent
 * pushes to the same rows neither deadlock into loss nor mark anything
 * pushed that was not. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../support/it.h"

static struct it_env env, c2;

static void fini(void)
{
	it_teardown(&c2);
	it_teardown(&env);
}

TestSuite(lossless, .fini = fini, .timeout = 240);

static void assert_equal_tables(struct it_env *e, const char *cols, const char *table)
{
	char pg_sql[256], sl_sql[256];
	snprintf(pg_sql, sizeof pg_sql, "SELECT %s FROM %s ORDER BY 1", cols, table);
	snprintf(sl_sql, sizeof sl_sql, "SELECT %s FROM %s ORDER BY 1", cols, table);
	cr_assert_str_eq(it_sqlite_rows(e, sl_sql), it_pg_rows(e, pg_sql));
}

/* A push that keeps failing (a serialization failure Postgres raises for
 * it) is retried, and meanwhile every remote transaction arrives whole. */
Test(lossless, a_failing_push_never_loses_the_pulls_transactions)
{
	it_setup(&env, "failpush");
	it_sql(&env, "CREATE TABLE r (id int PRIMARY KEY, v text)");
	it_sql(&env, "CREATE TABLE l (id int PRIMARY KEY, v text)");
	it_sql(&env, "CREATE FUNCTION nope() RETURNS trigger LANGUAGE plpgsql AS "
	             "$$ BEGIN RAISE EXCEPTION 'busy' USING ERRCODE = '40001'; END $$");
	it_sql(&env, "CREATE TRIGGER nope BEFORE INSERT OR UPDATE ON l FOR EACH ROW EXECUTE FUNCTION nope()");
	it_write_conf(&env, "auto", "debounce = 50ms\n");
	pid_t pid = it_run_online(&env);
	/* the push fails first (waited for: a slow build connects late), and
	 * keeps failing and retrying while the remote transactions arrive */
	it_sqlite_exec(&env, "INSERT OR REPLACE INTO l VALUES (1, 'local')");
	for (int i = 0; i < 200 && !strstr(it_bridge_stderr(&env), "push failed"); i++)
		it_sleep_ms(100);
	cr_assert(strstr(it_bridge_stderr(&env), "push failed"), "the push never failed");
	for (int i = 1; i <= 200; i++) {
		if (i % 20 == 1)
			it_sqlite_exec(&env, "INSERT OR REPLACE INTO l VALUES (%d, 'local')", i);
		it_sql(&env, "INSERT INTO r VALUES (%d, 'remote')", i);
		if (i % 10 == 0)
			it_sleep_ms(30);
	}
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM r", 200, 20000), "%s", it_bridge_stderr(&env));
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM l"), 0);
	it_sql(&env, "DROP TRIGGER nope ON l");
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM l", 10, 30000), "%s", it_bridge_stderr(&env));
	it_stop(&env, pid);
	assert_equal_tables(&env, "id, v", "r");
	assert_equal_tables(&env, "id, v", "l");
}

/* Periodic sessions end with CopyDone; keepalives that follow must not
 * acknowledge what was dropped after it. */
Test(lossless, periodic_sessions_lose_nothing_at_their_boundaries)
{
	it_setup(&env, "periodicgap");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY)");
	it_write_conf(&env, "periodic", "interval = 300ms\n");
	pid_t pid = it_run_online(&env);
	for (int i = 1; i <= 4000; i++) {
		it_sql(&env, "INSERT INTO t VALUES (%d)", i);
		if (i % 40 == 0)
			it_sleep_ms(5);
	}
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t", 4000, 30000), "%s",
	          it_sqlite_rows(&env, "SELECT count(*), min(id), max(id) FROM t"));
	it_stop(&env, pid);
	/* and a restart resumes from an honest position */
	pid = it_run_online(&env);
	it_sql(&env, "INSERT INTO t VALUES (4001)");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t", 4001, 20000));
	it_stop(&env, pid);
}

/* Auto mode with a long debounce: a lone remote transaction is visible at
 * once, and an application can write meanwhile. */
Test(lossless, auto_mode_commits_a_pulled_transaction_promptly)
{
	it_setup(&env, "autovis");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text)");
	it_write_conf(&env, "auto", "debounce = 10s\n");
	pid_t pid = it_run_online(&env);
	it_sql(&env, "INSERT INTO t VALUES (1, 'one')");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t", 1, 3000), "not visible in 3 s");
	sqlite3 *db = it_sqlite_open(&env);
	sqlite3_busy_timeout(db, 1000);
	cr_assert_eq(sqlite3_exec(db, "INSERT INTO t VALUES (2, 'app')", NULL, NULL, NULL), SQLITE_OK,
	             "%s", sqlite3_errmsg(db));
	sqlite3_close(db);
	it_stop(&env, pid);
}

/* A new file for the same slot name (deleted and initialised again, no
 * drop) pushes its own changes: the old file's progress is not its own. */
Test(lossless, a_fresh_file_pushes_its_changes_whatever_the_old_file_did)
{
	char out[4096];
	it_setup(&env, "freshfile");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text)");
	it_write_conf(&env, "manual", NULL);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	for (int i = 1; i <= 30; i++)
		it_sqlite_exec(&env, "INSERT INTO t VALUES (%d, 'old file')", i);
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM t"), 30);
	char wal[700], shm[700];
	snprintf(wal, sizeof wal, "%s-wal", env.sqlite);
	snprintf(shm, sizeof shm, "%s-shm", env.sqlite);
	unlink(env.sqlite);
	unlink(wal);
	unlink(shm);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	for (int i = 101; i <= 105; i++)
		it_sqlite_exec(&env, "INSERT INTO t VALUES (%d, 'new file')", i);
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM t WHERE v = 'new file'"), 5);
	assert_equal_tables(&env, "id, v", "t");
}

/* The slot is gone while a local edit waits: the resync copies Postgres
 * again and the edit survives in SQLite and reaches Postgres. */
Test(lossless, a_resync_keeps_pending_local_work)
{
	char out[4096];
	it_setup(&env, "resynckeep");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO t VALUES (1, 'pg'), (2, 'pg'), (3, 'pg')");
	it_write_conf(&env, "manual", NULL);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sqlite_exec(&env, "UPDATE t SET v = 'local edit' WHERE id = 2");
	it_sqlite_exec(&env, "INSERT INTO t VALUES (4, 'local new')");
	it_sqlite_exec(&env, "DELETE FROM t WHERE id = 3");
	it_sql(&env, "SELECT pg_drop_replication_slot('%s')", env.slot);
	it_sql(&env, "INSERT INTO t VALUES (5, 'pg while gone')");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, v FROM t ORDER BY id"),
	                 "1|pg\n2|local edit\n4|local new\n5|pg while gone\n");
	assert_equal_tables(&env, "id, v", "t");
}

/* Local changes that cancel out while a remote change to the same row
 * waits: the row still ends as Postgres has it. */
Test(lossless, changes_that_cancel_out_still_bring_back_the_remote_row)
{
	char out[4096];
	it_setup(&env, "cancelout");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, done int, note text)");
	it_sql(&env, "INSERT INTO t VALUES (1, 0, 'a'), (2, 0, 'a')");
	it_write_conf(&env, "manual", NULL);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sqlite_exec(&env, "UPDATE t SET done = 1 WHERE id = 1");
	it_sqlite_exec(&env, "UPDATE t SET done = 0 WHERE id = 1");
	it_sqlite_exec(&env, "INSERT INTO t VALUES (3, 0, 'x')");
	it_sqlite_exec(&env, "DELETE FROM t WHERE id = 3");
	it_sql(&env, "UPDATE t SET note = 'remote' WHERE id = 1");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes"), 0);
	assert_equal_tables(&env, "id, done, note", "t");
	cr_assert_str_eq(it_sqlite_text(&env, "SELECT note FROM t WHERE id = 1"), "remote");
}

/* UPDATE id 1 -> 2, then a new row 1, in one batch: two rows. */
Test(lossless, a_key_move_is_not_folded_into_the_row_that_takes_the_old_key)
{
	char out[4096];
	it_setup(&env, "keymove");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO t VALUES (1, 'first')");
	it_write_conf(&env, "manual", NULL);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sqlite_exec(&env, "UPDATE t SET id = 2 WHERE id = 1");
	it_sqlite_exec(&env, "INSERT INTO t VALUES (1, 'second')");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, v FROM t ORDER BY id"), "1|second\n2|first\n");
	assert_equal_tables(&env, "id, v", "t");
}

/* Table t (id, v) with row 1, a manual client initialised on it, and a
 * trigger of the app's own on the synced SQLite table. */
static void with_app_trigger(const char *name, const char *trigger_sql)
{
	it_setup(&env, name);
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO t VALUES (1, 'one')");
	it_write_conf(&env, "manual", NULL);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sqlite_exec(&env, trigger_sql);
}

/* A remote change SQLite refuses (here a trigger of the app's own, added
 * to the synced table) cannot be applied: it is set aside, the stream
 * goes on, sync succeeds.  (A remote key move onto a key a pending local
 * insert holds used to be the example; the pull now leaves that key to
 * the push, test_merge.c.) */
Test(lossless, a_remote_change_sqlite_refuses_is_set_aside_not_retried_forever)
{
	char out[4096];
	with_app_trigger("setaside", "CREATE TRIGGER app_refuses BEFORE INSERT ON t WHEN NEW.v = 'refused' "
	                             "BEGIN SELECT RAISE(ABORT, 'the app refuses this row'); END");
	it_sql(&env, "INSERT INTO t VALUES (5, 'refused')");
	it_sql(&env, "INSERT INTO t VALUES (7, 'after')");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM t WHERE id = 7"), 1);
	cr_assert_geq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_conflicts WHERE resolution LIKE 'rejected:%'"), 1);
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
}

/* An app trigger that rolls the whole transaction back (RAISE(ROLLBACK))
 * takes the pull's open transaction with it: the pull must stop there, not
 * go on outside any transaction, where the change-capture triggers would
 * take the next remote rows for local changes and push them back. */
Test(lossless, a_trigger_that_rolls_the_pull_back_stops_the_batch_captures_nothing)
{
	char out[4096];
	with_app_trigger("rollbacktrig", "CREATE TRIGGER app_rolls_back BEFORE INSERT ON t WHEN NEW.v = 'rolled' "
	                                 "BEGIN SELECT RAISE(ROLLBACK, 'the app rolls this back'); END");
	it_sql(&env, "BEGIN; INSERT INTO t VALUES (5, 'rolled'); INSERT INTO t VALUES (7, 'after'); COMMIT");
	cr_assert_neq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes"), 0, "%s",
	             it_sqlite_rows(&env, "SELECT * FROM _pgsqlite_changes"));
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM t WHERE id IN (5, 7)"), 0);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, v FROM t ORDER BY id"), "1|one\n5|rolled\n7|after\n");
}

/* Two clients push updates of the same rows in opposite orders, over and
 * over: no change is marked pushed unless Postgres committed it, and
 * every replica ends equal. */
Test(lossless, concurrent_pushes_to_the_same_rows_never_mark_unpushed_changes)
{
	it_setup(&env, "deadlock");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v int, who text)");
	it_sql(&env, "INSERT INTO t SELECT g, 0, 'pg' FROM generate_series(1, 20) g");
	it_sql(&env, "CREATE TABLE ledger (id text PRIMARY KEY)");
	it_add_client(&env, &c2, "b");
	it_write_conf(&env, "realtime", "conflict = local-wins\n");
	it_write_conf(&c2, "realtime", "conflict = local-wins\n");
	pid_t p1 = it_run_online(&env), p2 = it_run_online(&c2);
	for (int round = 0; round < 40; round++) {
		it_sqlite_exec(&env, "BEGIN; UPDATE t SET v = v + 1, who = 'a' WHERE id BETWEEN 1 AND 20; "
		                     "INSERT INTO ledger VALUES ('a%d'); COMMIT", round);
		it_sqlite_exec(&c2, "BEGIN; UPDATE t SET v = v + 1, who = 'b' WHERE id BETWEEN 1 AND 20; "
		                    "INSERT INTO ledger VALUES ('b%d'); COMMIT", round);
	}
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM ledger", 80, 60000), "%s", it_bridge_stderr(&env));
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes", 0, 30000));
	cr_assert(it_wait_sqlite_int(&c2, "SELECT count(*) FROM _pgsqlite_changes", 0, 30000));
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM ledger", 80, 30000));
	cr_assert(it_wait_sqlite_int(&c2, "SELECT count(*) FROM ledger", 80, 30000));
	it_sleep_ms(1000);
	it_stop(&env, p1);
	it_stop(&c2, p2);
	char *pg = it_pg_rows(&env, "SELECT id, v, who FROM t ORDER BY id");
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT id, v, who FROM t ORDER BY id"), pg);
	cr_assert_str_eq(it_sqlite_rows(&c2, "SELECT id, v, who FROM t ORDER BY id"), pg);
	cr_assert_eq(it_count(it_bridge_stderr(&env), "marked now"), 0, "%s", it_bridge_stderr(&env));
}

/* A row locked in Postgres for long holds only the push: the stream goes
 * on, SIGTERM stops the bridge within 5 s, and the change is pushed once
 * the lock is gone. */
Test(lossless, a_locked_row_in_postgres_delays_only_the_push)
{
	it_setup(&env, "lockedrow");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text)");
	it_sql(&env, "CREATE TABLE r (id int PRIMARY KEY)");
	it_sql(&env, "INSERT INTO t VALUES (1, 'pg')");
	it_write_conf(&env, "realtime", NULL);
	pid_t pid = it_run_online(&env);
	PGconn *locker = PQconnectdb(env.conninfo);
	cr_assert_eq(PQstatus(locker), CONNECTION_OK);
	PQclear(PQexec(locker, "BEGIN"));
	PQclear(PQexec(locker, "SELECT * FROM t WHERE id = 1 FOR UPDATE"));
	it_sqlite_exec(&env, "UPDATE t SET v = 'local' WHERE id = 1");
	it_sleep_ms(300);
	for (int i = 1; i <= 5; i++) {
		it_sql(&env, "INSERT INTO r VALUES (%d)", i);
		cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM r", i, 3000),
		          "the pull stalled behind the push: %s", it_bridge_stderr(&env));
	}
	int64_t t0 = (int64_t)time(NULL);
	kill(pid, SIGTERM);
	cr_assert_eq(it_bridge_wait(pid, 5000), 0, "no graceful stop within 5 s: %s", it_bridge_stderr(&env));
	cr_assert_leq((int64_t)time(NULL) - t0, 5);
	PQclear(PQexec(locker, "ROLLBACK"));
	PQfinish(locker);
	cr_assert_str_eq(it_sql_value(&env, "SELECT v FROM t WHERE id = 1"), "pg");
	pid = it_run_online(&env);
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM t WHERE v = 'local'", 1, 15000), "%s", it_bridge_stderr(&env));
	it_stop(&env, pid);
}

/* A Postgres trigger fired by our push writes another synced table: that
 * row reaches the pushing client too, and our own rows do not come back
 * as new changes. */
Test(lossless, rows_a_postgres_trigger_writes_during_our_push_reach_us)
{
	it_setup(&env, "sideeffect");
	it_sql(&env, "CREATE TABLE orders (id int PRIMARY KEY, qty int)");
	it_sql(&env, "CREATE TABLE audit (id int PRIMARY KEY, note text)");
	it_sql(&env, "CREATE FUNCTION log_order() RETURNS trigger LANGUAGE plpgsql AS "
	             "$$ BEGIN INSERT INTO audit VALUES (NEW.id, 'ordered ' || NEW.qty) "
	             "ON CONFLICT (id) DO UPDATE SET note = excluded.note; RETURN NEW; END $$");
	it_sql(&env, "CREATE TRIGGER log_order AFTER INSERT OR UPDATE ON orders FOR EACH ROW "
	             "EXECUTE FUNCTION log_order()");
	it_write_conf(&env, "realtime", NULL);
	pid_t pid = it_run_online(&env);
	it_sqlite_exec(&env, "INSERT INTO orders VALUES (1, 5)");
	it_sqlite_exec(&env, "UPDATE orders SET qty = 6 WHERE id = 1");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM audit WHERE note = 'ordered 6'", 1, 10000),
	          "%s", it_sqlite_rows(&env, "SELECT * FROM audit"));
	it_sleep_ms(500);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes"), 0);
	it_stop(&env, pid);
	assert_equal_tables(&env, "id, qty", "orders");
	assert_equal_tables(&env, "id, note", "audit");
}

/* A crash between the push's commit and its mark: the reconcile at the
 * next start records the rows it marks, so a remote change older than
 * the push, delivered only afterwards, does not overwrite them. */
Test(lossless, reconcile_after_a_crash_keeps_older_remote_changes_from_overwriting)
{
	it_setup(&env, "reconcileold");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text, w text)");
	it_sql(&env, "INSERT INTO t VALUES (1, 'base', 'base')");
	it_write_conf(&env, "realtime", "conflict = local-wins\n");
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sqlite_exec(&env, "UPDATE t SET v = 'local' WHERE id = 1");
	it_sql(&env, "UPDATE t SET w = 'older remote' WHERE id = 1");
	/* the push goes first and dies right after its commit */
	setenv("PGSQLITE_BRIDGE_TEST_HOLD_PULL_MS", "3000", 1);
	setenv("PGSQLITE_BRIDGE_TEST_CRASH", "after-push-commit", 1);
	pid_t pid = it_bridge_start(&env, "run");
	int rc = it_bridge_wait(pid, 20000);
	unsetenv("PGSQLITE_BRIDGE_TEST_CRASH");
	cr_assert_eq(rc, 99, "the crash hook did not fire: %s", it_bridge_stderr(&env));
	cr_assert_str_eq(it_pg_rows(&env, "SELECT v, w FROM t"), "local|base\n");
	/* the next start reconciles before the stream brings the older change */
	pid = it_bridge_start(&env, "run");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes", 0, 15000),
	          "%s", it_bridge_stderr(&env));
	it_sleep_ms(4000);
	unsetenv("PGSQLITE_BRIDGE_TEST_HOLD_PULL_MS");
	it_sql(&env, "INSERT INTO t VALUES (2, 'after', 'after')");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t", 2, 15000), "%s", it_bridge_stderr(&env));
	kill(pid, SIGTERM);
	cr_assert_eq(it_bridge_wait(pid, 30000), 0);
	cr_assert(strstr(it_bridge_stderr(&env), "Postgres confirms the commit"), "%s", it_bridge_stderr(&env));
	assert_equal_tables(&env, "id, v, w", "t");
}

/* Delete row 2, then move row 6 onto key 2 and insert a new row 6 in one
 * transaction: pushed in that order, under keep-both, nothing lingers. */
Test(lossless, a_key_move_onto_a_freed_key_then_a_new_row_at_the_old_key)
{
	char out[4096];
	it_setup(&env, "movefreed");
	it_sql(&env, "CREATE TABLE t (id text PRIMARY KEY, v text)");
	it_write_conf(&env, "manual", "conflict = keep-both\n");
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sqlite_exec(&env, "INSERT INTO t VALUES ('k6', 'v1'); INSERT INTO t VALUES ('k2', 'v2')");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	it_sqlite_exec(&env, "UPDATE t SET id = 'k3', v = 'v99' WHERE id = 'k6'");
	it_sqlite_exec(&env, "INSERT INTO t VALUES ('k6', 'v100')");
	it_sqlite_exec(&env, "DELETE FROM t WHERE id = 'k2'");
	it_sqlite_exec(&env, "BEGIN; UPDATE t SET id = 'k2', v = 'v102' WHERE id = 'k6'; "
	                     "INSERT INTO t VALUES ('k6', 'v103'); COMMIT");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, v FROM t ORDER BY id"), "k2|v102\nk3|v99\nk6|v103\n");
	assert_equal_tables(&env, "id, v", "t");
}

/* A remote insert and delete at a key that a pending local key move has
 * taken: the moved row stays (its push settles it), whatever the
 * strategy. */
Test(lossless, remote_changes_at_a_key_a_pending_local_move_took_leave_the_moved_row)
{
	char out[4096];
	it_setup(&env, "movetarget");
	it_sql(&env, "CREATE TABLE t (id text PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO t VALUES ('k1', 'one')");
	it_write_conf(&env, "manual", "conflict = remote-wins\n");
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sqlite_exec(&env, "UPDATE t SET id = 'k2' WHERE id = 'k1'");
	it_sql(&env, "INSERT INTO t VALUES ('k2', 'remote')");
	it_sql(&env, "DELETE FROM t WHERE id = 'k2'");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, v FROM t ORDER BY id"), "k2|one\n");
	assert_equal_tables(&env, "id, v", "t");
}

/* A batch whose changes cancel out brings the row back from Postgres; a
 * local key move onto that key committed while the batch was in flight
 * must not be overwritten by that refresh. */
Test(lossless, a_refresh_never_overwrites_a_row_moved_onto_its_key_meanwhile)
{
	it_setup(&env, "refreshmove");
	it_sql(&env, "CREATE TABLE t (id text PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO t VALUES ('k1', 'one')");
	it_write_conf(&env, "realtime", NULL);
	pid_t pid = it_run_online(&env);
	PGconn *locker = PQconnectdb(env.conninfo);
	cr_assert_eq(PQstatus(locker), CONNECTION_OK);
	PQclear(PQexec(locker, "BEGIN"));
	PQclear(PQexec(locker, "LOCK TABLE t IN EXCLUSIVE MODE"));
	it_sqlite_exec(&env, "BEGIN; INSERT INTO t VALUES ('k2', 'x'); UPDATE t SET v = 'y' WHERE id = 'k2';"
	                     " DELETE FROM t WHERE id = 'k2'; COMMIT");
	cr_assert(it_wait_pg_int(&env, "SELECT (count(*) > 0)::int FROM pg_locks l JOIN pg_stat_activity a "
	                         "USING (pid) WHERE NOT l.granted AND l.relation = 't'::regclass "
	                         "AND a.datname = current_database()", 1, 20000), "the push did not reach the lock");
	it_sqlite_exec(&env, "UPDATE t SET id = 'k2', v = 'moved' WHERE id = 'k1'");
	PQclear(PQexec(locker, "ROLLBACK"));
	PQfinish(locker);
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM t WHERE id = 'k2' AND v = 'moved'", 1, 15000),
	          "%s", it_bridge_stderr(&env));
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes", 0, 15000));
	it_stop(&env, pid);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, v FROM t ORDER BY id"), "k2|moved\n");
	assert_equal_tables(&env, "id, v", "t");
}

/* A deadlock in which Postgres picks our push as the victim (the other
 * session waits with a longer deadlock_timeout, so the push's check finds
 * the cycle first): the push is retried as a whole, nothing is marked
 * pushed that Postgres rolled back, and both sides end equal. */
Test(lossless, a_push_chosen_as_deadlock_victim_is_retried_never_marked)
{
	it_setup(&env, "victim");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO t VALUES (1, 'pg'), (2, 'pg')");
	it_sql(&env, "CREATE TABLE ledger (id text PRIMARY KEY)");
	it_write_conf(&env, "realtime", "conflict = local-wins\n");
	pid_t pid = it_run_online(&env);
	PGconn *other = PQconnectdb(env.conninfo);
	cr_assert_eq(PQstatus(other), CONNECTION_OK);
	PQclear(PQexec(other, "SET deadlock_timeout = '20s'"));
	PQclear(PQexec(other, "BEGIN"));
	PQclear(PQexec(other, "UPDATE t SET v = 'other' WHERE id = 2"));
	it_sqlite_exec(&env, "BEGIN; UPDATE t SET v = 'local' WHERE id IN (1, 2); "
	                     "INSERT INTO ledger VALUES ('l1'); COMMIT");
	cr_assert(it_wait_pg_int(&env, "SELECT (count(*) > 0)::int FROM pg_locks l JOIN pg_stat_activity a "
	                         "USING (pid) WHERE NOT l.granted AND l.locktype = 'transactionid' "
	                         "AND a.datname = current_database()", 1, 20000), "the push did not wait for row 2");
	cr_assert_eq(PQsendQuery(other, "UPDATE t SET v = 'other' WHERE id = 1"), 1);
	PGresult *r;
	while ((r = PQgetResult(other)))
		PQclear(r); /* granted once the push, the victim, rolled back */
	PQclear(PQexec(other, "COMMIT"));
	PQfinish(other);
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM ledger", 1, 20000), "%s", it_bridge_stderr(&env));
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes", 0, 20000));
	it_stop(&env, pid);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, v FROM t ORDER BY id"), "1|local\n2|local\n");
	assert_equal_tables(&env, "id, v", "t");
	cr_assert_geq(it_count(it_bridge_stderr(&env), "deadlock"), 1, "no deadlock happened: %s",
	              it_bridge_stderr(&env));
}

/* A local key move Postgres rejects (another row took the new key there):
 * both keys end as Postgres holds them, the move kept in
 * _pgsqlite_conflicts. */
Test(lossless, a_rejected_key_move_restores_both_keys_from_postgres)
{
	char out[4096];
	it_setup(&env, "rejectmove");
	it_sql(&env, "CREATE TABLE t (id text PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO t VALUES ('k1', 'one')");
	it_write_conf(&env, "manual", "conflict = keep-both\n");
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sqlite_exec(&env, "UPDATE t SET id = 'k2', v = 'moved' WHERE id = 'k1'");
	it_sql(&env, "INSERT INTO t VALUES ('k2', 'pg')");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, v FROM t ORDER BY id"), "k1|one\nk2|pg\n");
	assert_equal_tables(&env, "id, v", "t");
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_conflicts WHERE "
	                           "resolution LIKE 'rejected:%' AND local_row LIKE '%moved%'"), 1);
}

/* Postgres moves a row to another key while the local row has a pending
 * change, and the remote side wins (keep-both): the old key ends as
 * Postgres holds it (gone), not with the losing local version left there
 * for good; that version is kept in _pgsqlite_conflicts. */
Test(lossless, a_remote_key_move_that_wins_leaves_nothing_at_the_old_key)
{
	char out[4096];
	it_setup(&env, "remotemovewins");
	it_sql(&env, "CREATE TABLE t (id text PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO t VALUES ('k1', 'one')");
	it_write_conf(&env, "manual", "conflict = keep-both\n");
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sqlite_exec(&env, "UPDATE t SET v = 'local' WHERE id = 'k1'");
	it_sql(&env, "UPDATE t SET id = 'k2' WHERE id = 'k1'");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, v FROM t ORDER BY id"), "k2|one\n");
	assert_equal_tables(&env, "id, v", "t");
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_conflicts WHERE "
	                           "resolution = 'kept-both' AND local_row LIKE '%local%'"), 1);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes"), 0);
}

/* A pending local delete of k7 while Postgres moves k7 away, another row
 * onto k7 and that one away again: the pull leaves k7 to the push (it has
 * a pending change), the push finds k7 deleted on both sides, and k7 ends
 * as Postgres holds it: gone. */
Test(lossless, a_delete_on_both_sides_clears_a_row_the_stream_moved_onto_the_key)
{
	char out[4096];
	it_setup(&env, "deleteboth");
	it_sql(&env, "CREATE TABLE t (id text PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO t VALUES ('k7', 'seven'), ('k2', 'two')");
	it_write_conf(&env, "manual", "conflict = last-write-wins\n");
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sqlite_exec(&env, "DELETE FROM t WHERE id = 'k7'");
	it_sql(&env, "UPDATE t SET id = 'k3' WHERE id = 'k7'");
	it_sql(&env, "UPDATE t SET id = 'k7', v = 'moved' WHERE id = 'k2'");
	it_sql(&env, "UPDATE t SET id = 'k5' WHERE id = 'k7'");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, v FROM t ORDER BY id"), "k3|seven\nk5|moved\n");
	assert_equal_tables(&env, "id, v", "t");
}

/* A remote TRUNCATE that committed before our push, delivered after the
 * push's mark: the row the push wrote after the truncate stays (Postgres
 * has it), as a remote row change older than the push would. */
Test(lossless, a_truncate_older_than_our_push_keeps_the_pushed_row)
{
	it_setup(&env, "truncold");
	it_sql(&env, "CREATE TABLE t (id text PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO t VALUES ('k1', 'pg')");
	it_write_conf(&env, "realtime", NULL);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sqlite_exec(&env, "INSERT INTO t VALUES ('k2', 'local')");
	it_sql(&env, "TRUNCATE t");
	/* the push goes first; the stream starts late */
	setenv("PGSQLITE_BRIDGE_TEST_HOLD_PULL_MS", "4000", 1);
	pid_t pid = it_bridge_start(&env, "run");
	unsetenv("PGSQLITE_BRIDGE_TEST_HOLD_PULL_MS");
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM t WHERE id = 'k2'", 1, 15000), "%s",
	          it_bridge_stderr(&env));
	it_sql(&env, "INSERT INTO t VALUES ('k3', 'after')");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t WHERE id = 'k3'", 1, 20000), "%s",
	          it_bridge_stderr(&env));
	it_stop(&env, pid);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, v FROM t ORDER BY id"), "k2|local\nk3|after\n");
	assert_equal_tables(&env, "id, v", "t");
}

/* A local key move k3 -> k8 that loses to a newer remote update of k3,
 * with a later local insert at k3 still pending: k3 waits for that
 * insert's push, but k8 gets what Postgres holds there (nothing) at once. */
Test(lossless, a_losing_key_move_clears_its_new_key_while_the_old_key_waits)
{
	char out[4096];
	it_setup(&env, "losingmove");
	it_sql(&env, "CREATE TABLE t (id text PRIMARY KEY, v text, updated_at text)");
	it_sql(&env, "INSERT INTO t VALUES ('k3', 'base', '2000-01-01T00:00:00Z')");
	it_write_conf(&env, "manual", "conflict = last-write-wins\ntimestamp_column = updated_at\n");
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sqlite_exec(&env, "UPDATE t SET id = 'k8', v = 'moved', updated_at = '2001-01-01T00:00:00Z' "
	                     "WHERE id = 'k3'");
	it_sqlite_exec(&env, "INSERT INTO t VALUES ('k3', 'new', '2003-01-01T00:00:00Z')");
	it_sql(&env, "UPDATE t SET v = 'pg', updated_at = '2002-01-01T00:00:00Z' WHERE id = 'k3'");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, v FROM t ORDER BY id"), "k3|new\n");
	assert_equal_tables(&env, "id, v", "t");
}

/* A remote insert and delete of k9 arrive while our push of a local
 * insert at k9 waits on a lock (its batch is in flight): the pull leaves
 * k9 to the push, which runs after them and settles it against Postgres,
 * instead of settling it too (keep-both) and deleting the row the push
 * then writes to Postgres. */
Test(lossless, a_row_in_the_push_in_flight_is_settled_by_the_push_not_the_pull)
{
	it_setup(&env, "inflight");
	it_sql(&env, "CREATE TABLE t (id text PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO t VALUES ('a', 'pg')");
	it_write_conf(&env, "realtime", "conflict = keep-both\n");
	pid_t pid = it_run_online(&env);
	PGconn *locker = PQconnectdb(env.conninfo);
	cr_assert_eq(PQstatus(locker), CONNECTION_OK);
	PQclear(PQexec(locker, "BEGIN"));
	PQclear(PQexec(locker, "UPDATE t SET v = 'lock' WHERE id = 'a'"));
	it_sqlite_exec(&env, "BEGIN; UPDATE t SET v = 'local-a' WHERE id = 'a';"
	                     " INSERT INTO t VALUES ('k9', 'local'); COMMIT");
	cr_assert(it_wait_pg_int(&env, "SELECT (count(*) > 0)::int FROM pg_locks l JOIN pg_stat_activity a "
	                         "USING (pid) WHERE NOT l.granted AND l.locktype = 'transactionid' "
	                         "AND a.datname = current_database()", 1, 20000), "the push did not wait for row a");
	it_sql(&env, "INSERT INTO t VALUES ('k9', 'remote')");
	it_sql(&env, "DELETE FROM t WHERE id = 'k9'");
	it_sql(&env, "INSERT INTO t VALUES ('m', 'marker')");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t WHERE id = 'm'", 1, 20000), "%s",
	          it_bridge_stderr(&env));
	PQclear(PQexec(locker, "ROLLBACK"));
	PQfinish(locker);
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM t WHERE id = 'a' AND v = 'local-a'", 1, 20000), "%s",
	          it_bridge_stderr(&env));
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes", 0, 20000));
	it_stop(&env, pid);
	assert_equal_tables(&env, "id, v", "t");
}

/* A local key move k8 -> k5 that wins a conflict (local-wins), then a
 * local delete of k5 still waiting: the move's mark must not write the
 * moved row back at k5, where the delete is pending. */
Test(lossless, a_winning_key_move_is_not_written_back_over_a_later_delete_of_its_new_key)
{
	char out[4096];
	it_setup(&env, "movethendelete");
	it_sql(&env, "CREATE TABLE t (id text PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO t VALUES ('k8', 'base')");
	it_write_conf(&env, "manual", "conflict = local-wins\n");
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sqlite_exec(&env, "UPDATE t SET id = 'k5', v = 'moved' WHERE id = 'k8'");
	it_sqlite_exec(&env, "DELETE FROM t WHERE id = 'k5'");
	it_sql(&env, "UPDATE t SET v = 'pg' WHERE id = 'k8'");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT count(*) FROM t"), "0\n");
	assert_equal_tables(&env, "id, v", "t");
}

/* Pending locally: k1 moved to k2, then a new row at k1.  A remote update
 * of k1 wins (keep-both): only the new k1 row's changes are settled here;
 * the moved row at k2 is another row, and its push settles it against
 * Postgres (kept in _pgsqlite_conflicts too), never silently dropped. */
Test(lossless, settling_a_reused_key_leaves_the_row_that_moved_away)
{
	char out[4096];
	it_setup(&env, "reusedkey");
	it_sql(&env, "CREATE TABLE t (id text PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO t VALUES ('k1', 'one')");
	it_write_conf(&env, "manual", "conflict = keep-both\n");
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sqlite_exec(&env, "UPDATE t SET id = 'k2', v = 'moved' WHERE id = 'k1'");
	it_sqlite_exec(&env, "INSERT INTO t VALUES ('k1', 'new')");
	it_sql(&env, "UPDATE t SET v = 'pg' WHERE id = 'k1'");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	assert_equal_tables(&env, "id, v", "t");
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_conflicts WHERE local_row LIKE '%moved%'"), 1,
	             "%s", it_sqlite_rows(&env, "SELECT pk, local_row, resolution FROM _pgsqlite_conflicts"));
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes"), 0);
}
