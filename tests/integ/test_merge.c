/* test_merge.c: the merge point's harder cases: a remote TRUNCATE against
 * unpushed local rows, a TOASTed column a remote update leaves out against
 * a local delete, and last-write-wins with deletes on either side (a
 * delete is a version with a time, not an infinitely old one), a remote
 * change at a key a pending local key move took, under every strategy
 * that settles on the pull; and `check` warning where last-write-wins has
 * no remote times. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../support/it.h"

static struct it_env env;

static void fini(void)
{
	it_teardown(&env);
}

TestSuite(merge, .fini = fini, .timeout = 120);

static void sync_ok(void)
{
	char out[16384];
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
}

static void replicas_equal(const char *cols)
{
	char sql[256];
	snprintf(sql, sizeof sql, "SELECT %s FROM t ORDER BY 1", cols);
	cr_assert_str_eq(it_sqlite_rows(&env, sql), it_pg_rows(&env, sql));
}

static void one_conflict(const char *resolution)
{
	char sql[300];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM _pgsqlite_conflicts WHERE table_name = 't' "
	         "AND pk = '{\"id\":1}' AND resolution = '%s'", resolution);
	cr_assert_eq(it_sqlite_int(&env, sql), 1, "%s",
	             it_sqlite_rows(&env, "SELECT * FROM _pgsqlite_conflicts"));
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_conflicts"), 1, "%s",
	             it_sqlite_rows(&env, "SELECT * FROM _pgsqlite_conflicts"));
}

/* ---- 12: a remote TRUNCATE and unpushed local rows ---- */

Test(merge, a_remote_truncate_keeps_unpushed_local_rows)
{
	it_setup(&env, "mg_trunc");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO t VALUES (1, 'remote'), (2, 'remote')");
	it_write_conf(&env, "manual", NULL);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sqlite_exec(&env, "INSERT INTO t VALUES (3, 'local')");
	it_sql(&env, "TRUNCATE t");
	sync_ok();
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT id, v FROM t ORDER BY 1"), "3|local\n");
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, v FROM t ORDER BY 1"), "3|local\n");
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes"), 0);
}

/* ---- 13: an UPDATE that omits a TOASTed column, the row deleted locally ---- */

static void toast_after_local_delete(const char *name, const char *strategy)
{
	char extra[64];
	it_setup(&env, name);
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, a text, big text)");
	/* 12,800 random hex characters: stored out of line, not compressible below 2 KB */
	it_sql(&env, "INSERT INTO t SELECT 1, 'base', string_agg(md5(random()::text), '') "
	             "FROM generate_series(1, 400)");
	cr_assert_eq(it_sql_int(&env, "SELECT (pg_column_size(big) > 2100)::int FROM t"), 1);
	snprintf(extra, sizeof extra, "conflict = %s\n", strategy);
	it_write_conf(&env, "manual", extra);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sqlite_exec(&env, "DELETE FROM t WHERE id = 1");
	it_sql(&env, "UPDATE t SET a = 'remote' WHERE id = 1");
	sync_ok();
	cr_assert_eq(it_sqlite_int(&env, "SELECT length(big) FROM t WHERE id = 1"), 12800);
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT a FROM t"), "remote\n");
	replicas_equal("id, a, big");
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_conflicts"), 1);
}

Test(merge, remote_wins_after_a_local_delete_keeps_the_toasted_column)
{
	toast_after_local_delete("mg_toast_r", "remote-wins");
}

Test(merge, keep_both_after_a_local_delete_keeps_the_toasted_column)
{
	toast_after_local_delete("mg_toast_k", "keep-both");
}

/* ---- 17: last-write-wins with a delete on one side ---- */

static void lww_setup(const char *name)
{
	it_setup(&env, name);
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, a text)");
	it_sql(&env, "INSERT INTO t VALUES (1, 'base'), (2, 'other')");
	it_write_conf(&env, "manual", "conflict = last-write-wins\n");
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
}

Test(merge, last_write_wins_a_newer_remote_delete_beats_an_older_local_update)
{
	char out[16384];
	lww_setup("mg_lww_del");
	it_sqlite_exec(&env, "UPDATE t SET a = 'local' WHERE id = 1");
	it_sleep_ms(100);
	it_sql(&env, "DELETE FROM t WHERE id = 1");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert(strstr(out, "\"event\":\"conflict\""), "no conflict event: %s", out);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, a FROM t ORDER BY 1"), "2|other\n");
	replicas_equal("id, a");
	one_conflict("remote");
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes"), 0);
}

Test(merge, last_write_wins_a_newer_local_update_beats_an_older_remote_delete)
{
	char out[16384];
	lww_setup("mg_lww_upd");
	it_sql(&env, "DELETE FROM t WHERE id = 1");
	it_sleep_ms(100);
	it_sqlite_exec(&env, "UPDATE t SET a = 'local' WHERE id = 1");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert(strstr(out, "\"event\":\"conflict\""), "no conflict event: %s", out);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, a FROM t ORDER BY 1"), "1|local\n2|other\n");
	replicas_equal("id, a");
	one_conflict("local");
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes"), 0);
}

/* ---- 17: check warns where last-write-wins cannot see remote times ----
 * It turns track_commit_timestamp off (a restart), so it runs with the
 * tests that disturb the whole cluster (suite server, run alone). */

static void admin_sql(const char *sql)
{
	char ci[200];
	const char *port = getenv("PGSB_TEST_PGPORT");
	snprintf(ci, sizeof ci, "host=127.0.0.1 port=%s user=postgres dbname=postgres", port ? port : "5432");
	PGconn *c = PQconnectdb(ci);
	PGresult *r = PQexec(c, sql);
	cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

static void restore_commit_timestamps(void)
{
	it_teardown(&env);
	admin_sql("ALTER SYSTEM RESET track_commit_timestamp");
	it_pg_restart();
}

Test(server, check_warns_where_last_write_wins_has_no_remote_times,
     .fini = restore_commit_timestamps, .timeout = 120)
{
	char out[8192];
	it_setup(&env, "mg_check");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, a text)");
	it_sql(&env, "CREATE TABLE u (id int PRIMARY KEY, a text, updated_at timestamptz)");
	it_sql(&env, "CREATE TABLE p (id int PRIMARY KEY, a text)");
	it_write_conf(&env, "manual", "conflict = remote-wins\ntimestamp_column = updated_at\n"
	              "[table public.t]\nconflict = last-write-wins\n"
	              "[table public.u]\nconflict = last-write-wins\n"
	              "[table public.p]\nconflict = last-write-wins\ndirection = pull\n");
	cr_assert_eq(it_bridge(&env, "check", out, sizeof out), 0, "%s", out);
	cr_assert_null(strstr(out, "warning: table \"public.t\""), "%s", out);
	admin_sql("ALTER SYSTEM SET track_commit_timestamp = off");
	it_pg_restart();
	cr_assert_eq(it_bridge(&env, "check", out, sizeof out), 0, "%s", out);
	const char *w = strstr(out, "warning: table \"public.t\"");
	cr_assert(w, "no warning for public.t: %s", out);
	cr_assert(strstr(w, "track_commit_timestamp"), "%s", out);
	cr_assert_null(strstr(out, "warning: table \"public.u\""), "%s", out);
	cr_assert_null(strstr(out, "warning: table \"public.p\""), "%s", out);
}

/* A local key move (3 -> 8) meets a remote update of the old key under
 * keep-both: Postgres wins, the moved local row does not linger at its
 * new key, and the local version is kept in the conflicts table. */
Test(merge, keep_both_over_a_local_key_move_leaves_no_row_behind)
{
	char out[4096];
	it_setup(&env, "movekeep");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO t VALUES (3, 'three')");
	it_write_conf(&env, "manual", "conflict = keep-both\n");
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sqlite_exec(&env, "UPDATE t SET id = 8, v = 'moved' WHERE id = 3");
	it_sql(&env, "UPDATE t SET v = 'remote' WHERE id = 3");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, v FROM t ORDER BY id"), "3|remote\n");
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT id, v FROM t ORDER BY id"), "3|remote\n");
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_conflicts WHERE local_row LIKE '%moved%'"), 1);
}

/* Table t with `rows`, then (not pulled yet) `unpulled` in Postgres; the
 * local and the remote statements, one sync: nothing left pending, and
 * SQLite equal to Postgres. */
static void moves_sync(const char *name, const char *strategy, const char *rows, const char *unpulled,
                       const char *local_sql, const char *remote_sql)
{
	char conf[64], out[16384];
	it_setup(&env, name);
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, a text)");
	it_sql(&env, "INSERT INTO t VALUES %s", rows);
	snprintf(conf, sizeof conf, "conflict = %s\n", strategy);
	it_write_conf(&env, "manual", conf);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	if (unpulled)
		it_sql(&env, "INSERT INTO t VALUES %s", unpulled);
	it_sqlite_exec(&env, local_sql);
	it_sleep_ms(100);
	it_sql(&env, "%s", remote_sql);
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_changes"), 0);
	replicas_equal("id, a");
}

/* The row at a key can be both changed there and the target of a later
 * local key move onto it (delete 2, then move 1 -> 2): the local row at 2
 * is the moved one.  A remote change of key 2 that wins on the pull must
 * not drop the one change and leave the move to re-create the row in
 * Postgres only (found by the soak: the client ended without the row
 * Postgres and every other client held). */
static void move_onto_changed_key(const char *name, const char *strategy, const char *local_sql,
                                  const char *remote_sql)
{
	moves_sync(name, strategy, "(1, 'one'), (2, 'two'), (3, 'three')", NULL, local_sql, remote_sql);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT a FROM t WHERE id = 3"), "three\n");
}

#define MOVE_ONTO_2 "DELETE FROM t WHERE id = 2; UPDATE t SET id = 2, a = 'moved' WHERE id = 1"

Test(merge, last_write_wins_a_newer_remote_delete_at_a_key_a_local_move_took)
{
	move_onto_changed_key("mg_move_lww", "last-write-wins", MOVE_ONTO_2, "DELETE FROM t WHERE id = 2");
}

Test(merge, merge_a_newer_remote_delete_at_a_key_a_local_move_took)
{
	move_onto_changed_key("mg_move_merge", "merge", MOVE_ONTO_2, "DELETE FROM t WHERE id = 2");
}

Test(merge, remote_wins_a_remote_update_at_a_key_a_local_move_took)
{
	move_onto_changed_key("mg_move_rw", "remote-wins", MOVE_ONTO_2, "UPDATE t SET a = 'remote' WHERE id = 2");
}

Test(merge, keep_both_a_remote_update_at_a_key_a_local_move_took)
{
	move_onto_changed_key("mg_move_kb", "keep-both", MOVE_ONTO_2, "UPDATE t SET a = 'remote' WHERE id = 2");
}

/* The moved row changed again at its new key: the same, the row's own
 * change now the newest. */
Test(merge, last_write_wins_a_newer_remote_delete_at_a_key_a_local_move_took_then_changed)
{
	move_onto_changed_key("mg_move_lww2", "last-write-wins", MOVE_ONTO_2 "; UPDATE t SET a = 'later' WHERE id = 2",
	                      "DELETE FROM t WHERE id = 2");
}

/* The other way round: the local row moved away (1 -> 2) and was changed
 * again at its new key; a remote change of key 1 wins on the pull.  The
 * newest local version must not be overwritten unrecorded by what
 * Postgres holds at 2 (found by the soak under keep-both). */
static void moved_then_changed(const char *name, const char *strategy, const char *local_sql,
                               const char *remote_sql)
{
	moves_sync(name, strategy, "(1, 'one'), (3, 'three'), (5, 'five')", "(2, 'taken in Postgres')",
	           local_sql, remote_sql);
	if (strcmp(strategy, "keep-both") != 0)
		return;
	bool kept = it_sql_int(&env, "SELECT count(*) FROM t WHERE a = 'later'") == 1 ||
	            it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_conflicts WHERE local_row LIKE '%later%'") == 1;
	cr_assert(kept, "the newest local version is neither in Postgres nor kept: %s",
	          it_sqlite_rows(&env, "SELECT pk, local_row, resolution FROM _pgsqlite_conflicts"));
}

#define REMOTE_1 "UPDATE t SET a = 'remote' WHERE id = 1"
#define MOVED_AWAY "UPDATE t SET id = 2, a = 'moved' WHERE id = 1; UPDATE t SET a = 'later' WHERE id = 2"

Test(merge, keep_both_a_remote_update_of_a_row_moved_away_and_changed_again)
{
	moved_then_changed("mg_moved_kb", "keep-both", MOVED_AWAY, REMOTE_1);
}

Test(merge, remote_wins_a_remote_update_of_a_row_moved_away_and_changed_again)
{
	moved_then_changed("mg_moved_rw", "remote-wins", MOVED_AWAY, REMOTE_1);
}

/* The soak's chain: key 1 freed, row 5 moved onto it and changed there,
 * then moved on to 2 and changed there twice. */
Test(merge, keep_both_a_remote_update_of_a_key_a_local_move_took_then_left)
{
	moved_then_changed("mg_moved_kb2", "keep-both",
	                   "DELETE FROM t WHERE id = 1; UPDATE t SET id = 1, a = 'in' WHERE id = 5;"
	                   "UPDATE t SET a = 'at 1' WHERE id = 1; UPDATE t SET id = 2, a = 'moved' WHERE id = 1;"
	                   "UPDATE t SET a = 'at 2' WHERE id = 2; UPDATE t SET a = 'later' WHERE id = 2", REMOTE_1);
}

/* Postgres then deletes and re-inserts the new key before the pull gets
 * there: the row at 2 still carries the newest local version when that
 * delete meets it (keep-both keeps it for a person). */
Test(merge, keep_both_a_row_moved_away_keeps_its_new_key_for_its_push)
{
	moved_then_changed("mg_moved_kb3", "keep-both", MOVED_AWAY,
	                   REMOTE_1 "; DELETE FROM t WHERE id = 2; INSERT INTO t VALUES (2, 'again')");
}

Test(merge, remote_wins_a_row_moved_away_keeps_its_new_key_for_its_push)
{
	moved_then_changed("mg_moved_rw3", "remote-wins", MOVED_AWAY,
	                   REMOTE_1 "; DELETE FROM t WHERE id = 2; INSERT INTO t VALUES (2, 'again')");
}

/* And a row moved onto a key freed just before (delete 2, move 1 -> 2)
 * when the remote change of its old key wins. */
Test(merge, keep_both_a_remote_update_of_a_row_moved_onto_a_freed_key)
{
	move_onto_changed_key("mg_moved_kb4", "keep-both", MOVE_ONTO_2, REMOTE_1);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_conflicts WHERE local_row LIKE '%moved%'"), 1,
	             "%s", it_sqlite_rows(&env, "SELECT pk, local_row, resolution FROM _pgsqlite_conflicts"));
}

Test(merge, last_write_wins_a_newer_remote_delete_of_a_row_moved_onto_a_freed_key)
{
	move_onto_changed_key("mg_moved_lww4", "last-write-wins", MOVE_ONTO_2, "DELETE FROM t WHERE id = 1");
}

/* The push settles such a chain, and under last-write-wins it needs the
 * remote delete's time: the pull notes it for the push (push_fence.c).
 * Delete 2, move 1 -> 2, then a newer remote delete of 1: the delete wins,
 * the move's row goes, and the local delete of 2 still reaches Postgres. */
static void newer_delete_of_a_moved_row(const char *name, const char *strategy)
{
	move_onto_changed_key(name, strategy, MOVE_ONTO_2, "DELETE FROM t WHERE id = 1");
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, a FROM t ORDER BY 1"), "3|three\n");
	cr_assert_geq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_conflicts WHERE resolution = 'remote'"), 1,
	              "%s", it_sqlite_rows(&env, "SELECT pk, local_row, resolution FROM _pgsqlite_conflicts"));
}

Test(merge, last_write_wins_a_newer_remote_delete_beats_a_local_move_left_to_the_push)
{
	newer_delete_of_a_moved_row("mg_moved_lww5", "last-write-wins");
}

Test(merge, merge_a_newer_remote_delete_beats_a_local_move_left_to_the_push)
{
	newer_delete_of_a_moved_row("mg_moved_merge5", "merge");
}

/* A local key move (7 -> 2) that the push settles by merging with a remote
 * change of the old key, and a new row inserted locally at the freed key
 * 7: the merged row goes to key 2 on both sides; the change pending at 7
 * is another row's and does not hold it back (found by the soak). */
static void merged_move_with_a_new_row_at_the_old_key(const char *name, const char *strategy)
{
	moves_sync(name, strategy, "(7, 'seven'), (3, 'three')", NULL,
	           "UPDATE t SET id = 2, a = 'moved' WHERE id = 7; INSERT INTO t VALUES (7, 'new at 7')",
	           "UPDATE t SET a = 'remote' WHERE id = 7");
}

Test(merge, merge_a_merged_key_move_is_written_at_its_new_key_despite_a_new_row_at_the_old)
{
	merged_move_with_a_new_row_at_the_old_key("mg_mmove_merge", "merge");
}

Test(merge, local_wins_a_winning_key_move_is_written_at_its_new_key_despite_a_new_row_at_the_old)
{
	merged_move_with_a_new_row_at_the_old_key("mg_mmove_lw", "local-wins");
}

Test(merge, last_write_wins_a_key_move_with_a_new_row_at_the_old_key)
{
	merged_move_with_a_new_row_at_the_old_key("mg_mmove_lww", "last-write-wins");
}

/* A remote key move (7 -> 5) onto a key with a pending local change (a
 * new local row 5), then a remote delete of 5: the move must not replace
 * the local row before its push or a keep-both record sees it (found by
 * the soak: the newest local version was dropped unrecorded).  Row 7 is
 * gone locally by the time the move arrives (a remote change of 7 won
 * first), so the move would be applied as an insert at 5. */
#define MOVE_7_TO_5 "UPDATE t SET a = 'r1' WHERE id = 7; UPDATE t SET id = 5, a = 'moved remote' WHERE id = 7"

Test(merge, keep_both_a_remote_key_move_onto_a_pending_local_row_keeps_it)
{
	moves_sync("mg_rmove_kb", "keep-both", "(7, 'seven'), (3, 'three')", NULL,
	           "UPDATE t SET a = 'local' WHERE id = 7; INSERT INTO t VALUES (5, 'local five')",
	           MOVE_7_TO_5 "; DELETE FROM t WHERE id = 5");
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM _pgsqlite_conflicts WHERE local_row LIKE '%local five%'"),
	             1, "%s", it_sqlite_rows(&env, "SELECT pk, local_row, resolution FROM _pgsqlite_conflicts"));
}

Test(merge, remote_wins_a_remote_key_move_onto_a_pending_local_row)
{
	moves_sync("mg_rmove_rw", "remote-wins", "(7, 'seven'), (3, 'three')", NULL,
	           "UPDATE t SET a = 'local' WHERE id = 7; INSERT INTO t VALUES (5, 'local five')", MOVE_7_TO_5);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, a FROM t ORDER BY 1"), "3|three\n5|moved remote\n");
}

Test(merge, last_write_wins_a_remote_key_move_onto_a_pending_local_row)
{
	moves_sync("mg_rmove_lww", "last-write-wins", "(7, 'seven'), (3, 'three')", NULL,
	           "UPDATE t SET a = 'local' WHERE id = 7; INSERT INTO t VALUES (5, 'local five')",
	           MOVE_7_TO_5 "; DELETE FROM t WHERE id = 5");
}
