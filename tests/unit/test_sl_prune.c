/* test_sl_prune.c: pruning on a real file: the newest rows kept by the
 * order column (ties by key, NULL oldest), rows with pending changes kept,
 * nothing captured inside the bridge's transaction, pages in use. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../sqlite-side/sl.h"

static char dir[512], path[600];
static struct sl_db *db;

static void setup(void)
{
	struct sl_err e = {0};

	snprintf(dir, sizeof dir, "%s/test-slp-XXXXXX", P_tmpdir);
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/bridge.db", dir);
	cr_assert_eq(sl_open(path, &db, &e), 0, "sl_open: %s", e.msg);
}

static void teardown(void)
{
	char p[640];
	const char *sfx[] = {"", "-wal", "-shm"};

	sl_close(db);
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s%s", path, sfx[i]);
		unlink(p);
	}
	rmdir(dir);
}

TestSuite(sl_prune, .init = setup, .fini = teardown);

static void exec(const char *sql)
{
	char *m = NULL;
	cr_assert_eq(sqlite3_exec(sl_handle(db), sql, NULL, NULL, &m), SQLITE_OK, "%s: %s", sql, m);
}

static int64_t one(const char *sql)
{
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_prepare_v2(sl_handle(db), sql, -1, &st, NULL), SQLITE_OK, "%s", sql);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* ev: 20 rows, at = n, a two-column key (one named with quotes); the
 * capture triggers on. */
static void fill(void)
{
	struct sl_err e;

	exec("CREATE TABLE ev (\"k'\"\"1\" TEXT, n INTEGER, at INTEGER, PRIMARY KEY (\"k'\"\"1\", n))");
	for (int i = 1; i <= 20; i++) {
		char sql[200];
		snprintf(sql, sizeof sql, "INSERT INTO ev VALUES ('k', %d, %d)", i, i);
		exec(sql);
	}
	cr_assert_eq(sl_capture_install(db, "ev", &e), 0, "%s", e.msg);
}

static void keep(int64_t n, int64_t want_deleted)
{
	struct sl_err e;
	struct sl_prune p = {.table = "ev", .order_column = "at"};
	int64_t deleted = -1;

	cr_assert_eq(sl_begin(db, &e), 0);
	cr_assert_eq(sl_prune_keep(db, &p, n, &deleted, &e), 0, "%s", e.msg);
	cr_assert_eq(sl_commit(db, &e), 0);
	cr_assert_eq(deleted, want_deleted);
}

Test(sl_prune, keeps_the_newest_and_captures_nothing)
{
	fill();
	exec("UPDATE ev SET at = NULL WHERE n = 20"); /* captured: the app's own write */
	exec("DELETE FROM _pgsqlite_changes");
	exec("INSERT INTO ev VALUES ('j', 15, 15)"); /* a tie on at: the key decides */
	exec("DELETE FROM _pgsqlite_changes");
	keep(5, 16);
	cr_assert_eq(one("SELECT count(*) FROM ev"), 5);
	cr_assert_eq(one("SELECT count(*) FROM ev WHERE n = 20"), 0, "NULL is oldest");
	cr_assert_eq(one("SELECT min(at) FROM ev"), 15);
	cr_assert_eq(one("SELECT count(*) FROM ev WHERE n = 15"), 1, "only the larger key of the tie");
	cr_assert_eq(one("SELECT count(*) FROM ev WHERE \"k'\"\"1\" = 'k' AND n = 15"), 1);
	cr_assert_eq(one("SELECT count(*) FROM _pgsqlite_changes"), 0);
}

Test(sl_prune, rows_with_pending_changes_stay_and_do_not_count)
{
	fill();
	exec("DELETE FROM _pgsqlite_changes");
	exec("UPDATE ev SET at = at WHERE n = 1");         /* no change: not logged */
	exec("UPDATE ev SET n = 100 WHERE n = 2");          /* a key move: new key 100 */
	exec("UPDATE ev SET at = 3 WHERE n = 3 AND 0");     /* nothing */
	exec("INSERT INTO ev VALUES ('x', 0, -5)");         /* a pending insert, oldest */
	exec("UPDATE ev SET at = 4 WHERE n = 4 AND at = 4"); /* same value: not logged */
	exec("UPDATE ev SET at = at + 0.0 WHERE n = 5");    /* not a change either */
	exec("UPDATE ev SET n = n WHERE n = 6");
	cr_assert_eq(one("SELECT count(*) FROM _pgsqlite_changes"), 2);
	keep(3, 16);
	cr_assert_eq(one("SELECT count(*) FROM ev WHERE n IN (100, 0)"), 2, "pending rows pruned");
	cr_assert_eq(one("SELECT count(*) FROM ev WHERE at >= 18"), 3);
	cr_assert_eq(one("SELECT count(*) FROM ev"), 5);
	cr_assert_eq(one("SELECT count(*) FROM _pgsqlite_changes"), 2);
}

Test(sl_prune, oldest_deletes_n_and_numeric_text_orders_by_value)
{
	struct sl_err e;
	struct sl_prune p = {.table = "nums", .order_column = "v", .numeric = true};
	int64_t deleted;

	exec("CREATE TABLE nums (id INTEGER PRIMARY KEY, v TEXT)");
	exec("INSERT INTO nums VALUES (1, '9.5'), (2, '10'), (3, '100.25'), (4, '-3'), (5, '2')");
	cr_assert_eq(sl_begin(db, &e), 0);
	cr_assert_eq(sl_prune_oldest(db, &p, 2, &deleted, &e), 0, "%s", e.msg);
	cr_assert_eq(sl_commit(db, &e), 0);
	cr_assert_eq(deleted, 2);
	cr_assert_eq(one("SELECT count(*) FROM nums"), 3);
	cr_assert_eq(one("SELECT count(*) FROM nums WHERE id IN (1, 2, 3)"), 3, "text order: '10' < '2'");
}

Test(sl_prune, a_missing_column_or_table_is_an_error)
{
	struct sl_err e;
	struct sl_prune p = {.table = "ev", .order_column = "nope"};
	int64_t deleted;

	fill();
	cr_assert_eq(sl_prune_keep(db, &p, 1, &deleted, &e), -1);
	cr_assert(strstr(e.msg, "no column \"nope\""), "%s", e.msg);
	p.table = "missing";
	cr_assert_eq(sl_prune_keep(db, &p, 1, &deleted, &e), -1);
	exec("CREATE TABLE q (a INTEGER, at INTEGER)");
	p.table = "q";
	p.order_column = "at";
	cr_assert_eq(sl_prune_keep(db, &p, 1, &deleted, &e), -1, "no primary key");
}

Test(sl_prune, used_bytes_leave_out_free_pages)
{
	fill();
	exec("CREATE TABLE pad (id INTEGER PRIMARY KEY, b BLOB)");
	exec("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 200) "
	     "INSERT INTO pad SELECT i, zeroblob(4000) FROM s");
	int64_t full = sl_used_bytes(db);
	exec("DELETE FROM pad");
	int64_t after = sl_used_bytes(db);
	cr_assert(full > 800000 && after < full - 700000, "%lld then %lld", (long long)full, (long long)after);
	cr_assert_eq(sl_table_rows(db, "ev"), 20);
	cr_assert_eq(sl_table_rows(db, "missing"), -1);
}
