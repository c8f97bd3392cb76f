/* test_priority.c: the push queue's per-table policy: a critical table's
 * changes reach Postgres before a long low-priority backlog, a skipped
 * table's local changes wait in the change log and go exactly once when
 * skip is off, a change that needs a lower-priority row is not rejected,
 * and a push killed between its commit and its mark while it went out of
 * seq order leaves every change in Postgres exactly once.  Postgres
 * triggers number every row they see from a sequence, so the tests read
 * the order of the pushes from Postgres itself. */
#include <criterion/criterion.h>
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

TestSuite(priority, .fini = fini, .timeout = 300);

/* Tables low and crit (and more), each insert and update numbered in
 * audit (n from a sequence: the order Postgres saw them in). */
static void audited_tables(struct it_env *e, const char *const *names, int n)
{
	it_sql(e, "CREATE TABLE audit (n bigserial PRIMARY KEY, tbl text, id int, op text)");
	it_sql(e, "CREATE FUNCTION aud() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
	          "INSERT INTO audit (tbl, id, op) VALUES (TG_TABLE_NAME, NEW.id, TG_OP); RETURN NEW; END $$");
	for (int i = 0; i < n; i++) {
		it_sql(e, "CREATE TABLE %s (id int PRIMARY KEY, v text)", names[i]);
		it_sql(e, "CREATE TRIGGER aud AFTER INSERT OR UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION aud()",
		       names[i]);
	}
}

/* n local rows into table, ids from first on, in one SQLite transaction. */
static void local_rows(struct it_env *e, const char *table, int first, int n)
{
	it_sqlite_exec(e, "WITH RECURSIVE c(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM c WHERE i < %d) "
	                  "INSERT INTO %s SELECT i, 'local ' || i FROM c", first, first + n - 1, table);
}

static char *file_text(struct it_env *e, const char *name)
{
	char path[700];
	snprintf(path, sizeof path, "%s/%s", e->dir, name);
	FILE *f = fopen(path, "r");
	cr_assert(f, "no %s", path);
	char *buf = NULL;
	size_t len = 0;
	cr_assert_eq(getdelim(&buf, &len, '\0', f) > 0, 1);
	fclose(f);
	return buf;
}

static void assert_each_pushed_once(struct it_env *e, const char *table, int rows)
{
	cr_assert_eq(it_sql_int(e, "SELECT count(*) FROM %s", table), rows, "%s", table);
	cr_assert_eq(it_sql_int(e, "SELECT count(*) FROM audit WHERE tbl = '%s' AND op = 'INSERT'", table),
	             rows, "a change of %s was pushed twice or not at all", table);
	cr_assert_eq(it_sql_int(e, "SELECT count(*) FROM (SELECT id FROM audit WHERE tbl = '%s' "
	                           "GROUP BY id, op HAVING count(*) > 1) d", table), 0,
	             "a change of %s was pushed twice", table);
}

static const char *const LOW_CRIT[] = {"low", "crit"};
static const char LOW_CRIT_CONF[] = "[table public.low]\npriority = low\n"
                                    "[table public.crit]\npriority = critical\n";

Test(priority, a_critical_change_goes_before_a_long_low_priority_backlog)
{
	char out[4096];
	it_setup(&env, "prioback");
	audited_tables(&env, LOW_CRIT, 2);
	it_sql(&env, "INSERT INTO low VALUES (0, 'pg')");
	it_sql(&env, "INSERT INTO crit VALUES (0, 'pg')");
	it_write_conf(&env, "manual", LOW_CRIT_CONF);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	/* the initial copy went critical first, though the config lists low first */
	char *log = file_text(&env, "init.err");
	char *c = strstr(log, "rows of \"public.crit\""), *l = strstr(log, "rows of \"public.low\"");
	cr_assert(c && l && c < l, "%s", log);
	free(log);
	local_rows(&env, "low", 1, 30000);
	local_rows(&env, "crit", 1, 1);
	local_rows(&env, "low", 30001, 10);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes"), 30011);
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	/* the critical row went in the first push, before every low row */
	cr_assert_eq(it_sql_int(&env, "SELECT min(n) FROM audit WHERE tbl = 'crit' AND id > 0"),
	             it_sql_int(&env, "SELECT min(n) FROM audit WHERE id > 0"), "%s",
	             it_pg_rows(&env, "SELECT tbl, min(n), max(n) FROM audit GROUP BY tbl"));
	cr_assert_lt(it_sql_int(&env, "SELECT max(n) FROM audit WHERE tbl = 'crit'"),
	             it_sql_int(&env, "SELECT min(n) FROM audit WHERE tbl = 'low' AND id > 0"));
	assert_each_pushed_once(&env, "low", 30011);
	assert_each_pushed_once(&env, "crit", 2);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes"), 0);
}

/* In realtime the push may already be on its way with a low batch: the
 * critical row then goes in the next one, never after the whole backlog. */
Test(priority, in_realtime_a_critical_change_overtakes_the_backlog)
{
	it_setup(&env, "priort");
	audited_tables(&env, LOW_CRIT, 2);
	it_write_conf(&env, "realtime", LOW_CRIT_CONF);
	pid_t pid = it_run_online(&env);
	local_rows(&env, "low", 1, 25000);
	local_rows(&env, "crit", 1, 1);
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM low", 25000, 120000), "%s", it_bridge_stderr(&env));
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM crit", 1, 10000));
	it_stop(&env, pid);
	/* at most one batch (20000 changes) of low rows went before it */
	int64_t before = it_sql_int(&env, "SELECT count(*) FROM audit WHERE tbl = 'low' AND n < "
	                                  "(SELECT n FROM audit WHERE tbl = 'crit')");
	cr_assert_leq(before, 20000, "%lld low rows went before the critical one", (long long)before);
	assert_each_pushed_once(&env, "low", 25000);
	assert_each_pushed_once(&env, "crit", 1);
}

/* skip = true: local changes wait in the log, nothing reaches Postgres,
 * other tables go on (`sync`, then `run`).  skip off by SIGHUP: they go
 * once, and a row changed on both sides meanwhile is settled by the
 * table's strategy. */
Test(priority, a_skipped_tables_changes_wait_and_go_once_when_skip_is_off)
{
	char out[4096];
	static const char *const names[] = {"paused", "other"};
	const char *skipped = "[table public.paused]\nskip = true\nconflict = remote-wins\n[table public.other]\n";
	it_setup(&env, "skippush");
	audited_tables(&env, names, 2);
	it_sql(&env, "INSERT INTO paused VALUES (1, 'base'), (2, 'base')");
	it_write_conf(&env, "manual", skipped);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sqlite_exec(&env, "INSERT INTO paused VALUES (10, 'local new')");
	it_sqlite_exec(&env, "UPDATE paused SET v = 'local' WHERE id IN (1, 2)");
	it_sqlite_exec(&env, "INSERT INTO other VALUES (1, 'goes')");
	it_sql(&env, "UPDATE paused SET v = 'remote' WHERE id = 1");
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
		cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM other WHERE v = 'goes'"), 1);
		cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM paused WHERE id = 10 OR v LIKE 'local%%'"), 0);
		cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes WHERE table_name = 'paused'"), 3);
		cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes"), 3);
	}
	/* running: another table's later change goes, the skipped ones still wait */
	it_write_conf(&env, "realtime", skipped);
	pid_t pid = it_run_online(&env);
	it_sqlite_exec(&env, "INSERT INTO other VALUES (2, 'goes too')");
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM other", 2, 15000), "%s", it_bridge_stderr(&env));
	/* (its mark follows the commit) */
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes", 3, 15000));
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM paused WHERE id = 10 OR v LIKE 'local%%'"), 0);
	it_write_conf(&env, "realtime", "[table public.paused]\nskip = false\nconflict = remote-wins\n"
	                                "[table public.other]\n");
	cr_assert_eq(kill(pid, SIGHUP), 0);
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM paused", 3, 30000), "%s", it_bridge_stderr(&env));
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes", 0, 15000));
	it_sleep_ms(500);
	it_stop(&env, pid);
	/* row 1 changed on both sides: remote-wins, on both sides */
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, v FROM paused ORDER BY id"),
	                 "1|remote\n2|local\n10|local new\n");
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT id, v FROM paused ORDER BY id"),
	                 "1|remote\n2|local\n10|local new\n");
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_conflicts WHERE table_name = 'paused' "
	                                 "AND pk = '{\"id\":1}' AND strategy = 'remote-wins'"), 1);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM audit WHERE tbl = 'paused' AND id = 10"), 1);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM audit WHERE tbl = 'paused' AND id = 2 AND op = 'UPDATE'"), 1);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM audit WHERE tbl = 'other'"), 2);
}

/* A critical child row whose parent is a pending low-priority row: its
 * foreign key fails when it jumps the queue, so the queue goes in commit
 * order up to it instead of setting it aside. */
Test(priority, a_critical_change_that_needs_an_earlier_low_row_is_not_rejected)
{
	char out[4096];
	it_setup(&env, "priofk");
	it_sql(&env, "CREATE TABLE parent (id int PRIMARY KEY, v text)");
	it_sql(&env, "CREATE TABLE child (id int PRIMARY KEY, pid int NOT NULL REFERENCES parent (id))");
	it_write_conf(&env, "manual", "[table public.parent]\npriority = low\n"
	                              "[table public.child]\npriority = critical\n");
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	local_rows(&env, "parent", 1, 300);
	it_sqlite_exec(&env, "INSERT INTO child VALUES (1, 299)");
	it_sqlite_exec(&env, "INSERT INTO parent VALUES (1000, 'after')");
	it_sqlite_exec(&env, "INSERT INTO child VALUES (2, 1000)");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_conflicts"), 0, "%s",
	             it_sqlite_rows(&env, "SELECT * FROM _pgsqlite_conflicts"));
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, pid FROM child ORDER BY id"), "1|299\n2|1000\n");
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM parent"), 301);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes"), 0);
	/* and the next critical change goes first again */
	local_rows(&env, "parent", 2000, 100);
	it_sqlite_exec(&env, "INSERT INTO child VALUES (3, 1)");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM child"), 3);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM parent"), 401);
}

/* Low rows before and after critical ones in the log; the push of the
 * critical ones (out of seq order) dies at `point`; the next sync pushes
 * everything else exactly once. */
static void crash_out_of_order(const char *name, const char *point, int64_t crit_in_pg)
{
	char out[8192];
	it_setup(&env, name);
	audited_tables(&env, LOW_CRIT, 2);
	it_write_conf(&env, "manual", LOW_CRIT_CONF);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	local_rows(&env, "low", 1, 500);
	local_rows(&env, "crit", 1, 3);
	it_sqlite_exec(&env, "UPDATE crit SET v = 'changed' WHERE id = 2");
	local_rows(&env, "low", 501, 500);
	it_sqlite_exec(&env, "UPDATE low SET v = 'changed' WHERE id = 7");
	setenv("PGSQLITE_BRIDGE_TEST_CRASH", point, 1);
	int rc = it_bridge(&env, "sync", out, sizeof out);
	unsetenv("PGSQLITE_BRIDGE_TEST_CRASH");
	cr_assert_eq(rc, 99, "the crash hook did not fire: rc %d %s", rc, out);
	/* only the critical batch went (or not), and the log still has it all */
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM crit"), crit_in_pg);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM low"), 0);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes"), 1005);
	/* more writes before the restart, on both sides of the batch's seq */
	it_sqlite_exec(&env, "INSERT INTO crit VALUES (4, 'late')");
	it_sqlite_exec(&env, "INSERT INTO low VALUES (2000, 'late')");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes"), 0);
	assert_each_pushed_once(&env, "crit", 4);
	assert_each_pushed_once(&env, "low", 1001);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, v FROM crit ORDER BY id"),
	                 "1|local 1\n2|changed\n3|local 3\n4|late\n");
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM low WHERE id = 7 AND v = 'changed'"), 1);
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT count(*), sum(id), group_concat(DISTINCT v) FROM low "
	                                      "WHERE v NOT LIKE 'local%'"),
	                 it_pg_rows(&env, "SELECT count(*), sum(id), string_agg(DISTINCT v, ',') FROM low "
	                                  "WHERE v NOT LIKE 'local%'"));
	/* later pushes go on normally */
	it_sqlite_exec(&env, "UPDATE crit SET v = 'again' WHERE id = 1");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM crit WHERE v = 'again'"), 1);
}

Test(priority, exactly_once_when_killed_after_committing_a_batch_that_jumped_the_queue)
{
	crash_out_of_order("priocrash1", "after-push-commit", 3);
}

Test(priority, exactly_once_when_killed_before_committing_a_batch_that_jumped_the_queue)
{
	crash_out_of_order("priocrash2", "before-push-commit", 0);
}
