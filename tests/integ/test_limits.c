/* test_limits.c: max_records keeps the newest rows locally, locally only
 * (never captured, pushed or a conflict, pending local changes kept), and
 * each storage_limit_action does what it says. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/it.h"
#include "../support/it_http.h"

static struct it_env env;

static void fini(void)
{
	it_teardown(&env);
}

TestSuite(limits, .fini = fini, .timeout = 240);

#define NONE_CAPTURED "SELECT count(*) FROM _pgsqlite_changes"
#define NO_CONFLICT "SELECT count(*) FROM _pgsqlite_conflicts"

Test(limits, max_records_keeps_the_newest_rows_locally_and_never_pushes_the_pruning)
{
	it_setup(&env, "maxrec");
	it_sql(&env, "CREATE TABLE ev (id int PRIMARY KEY, at int, body text)");
	it_sql(&env, "CREATE TABLE other (id int PRIMARY KEY)");
	it_sql(&env, "INSERT INTO ev SELECT g, g, 'row ' || g FROM generate_series(1, 200) g");
	it_sql(&env, "INSERT INTO other SELECT g FROM generate_series(1, 100) g");
	it_write_conf(&env, "realtime", "[table public.ev]\nmax_records = 50\norder_column = at\n"
	                                "[table public.other]\n");
	pid_t pid = it_run_online(&env);
	/* the initial copy is pruned before it commits */
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM ev"), 50);
	cr_assert_eq(it_sqlite_int(&env, "SELECT min(at) FROM ev"), 151);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM other"), 100, "a table without max_records is whole");
	/* streamed rows: still the newest 50 after each batch */
	it_sql(&env, "INSERT INTO ev SELECT g, g, 'row ' || g FROM generate_series(201, 230) g");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM ev WHERE id = 230", 1, 10000));
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM ev", 50, 10000),
	          "%s", it_sqlite_rows(&env, "SELECT count(*), min(at) FROM ev"));
	cr_assert_eq(it_sqlite_int(&env, "SELECT min(at) FROM ev"), 181);
	/* a pruned row changed in Postgres comes back only if it is among the newest */
	it_sql(&env, "UPDATE ev SET body = 'still old' WHERE id = 3");
	it_sql(&env, "UPDATE ev SET at = 1000, body = 'newest now' WHERE id = 5");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM ev WHERE id = 5 AND body = 'newest now'", 1, 10000));
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM ev WHERE id = 3"), 0, "an old row came back");
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM ev"), 50);
	it_sleep_ms(1000); /* a push, if the pruning were captured, would have happened by now */
	it_stop(&env, pid);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM ev"), 230, "pruning reached Postgres");
	cr_assert_eq(it_sqlite_int(&env, NONE_CAPTURED), 0, "pruning was captured");
	cr_assert_eq(it_sqlite_int(&env, NO_CONFLICT), 0, "pruning made a conflict");
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT id, at, body FROM ev ORDER BY id"),
	                 it_pg_rows(&env, "WITH n AS (SELECT id, at, body FROM ev ORDER BY at DESC, id DESC "
	                            "LIMIT 50) SELECT * FROM n ORDER BY id"));
}

/* Pending local changes are kept through pruning until pushed; pushed, they
 * are pruned like any row.  Manual mode: the sync's pull prunes before its
 * push, with the local changes still in the change log. */
Test(limits, max_records_never_prunes_a_row_with_pending_local_changes)
{
	char out[4096];
	it_setup(&env, "maxrecpend");
	it_sql(&env, "CREATE TABLE ev (id int PRIMARY KEY, at int, body text)");
	it_sql(&env, "INSERT INTO ev SELECT g, g, 'pg' FROM generate_series(1, 100) g");
	it_write_conf(&env, "manual", "[table public.ev]\nmax_records = 10\norder_column = at\n");
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	cr_assert_eq(it_sqlite_int(&env, "SELECT min(id) FROM ev"), 91);
	it_sqlite_exec(&env, "UPDATE ev SET body = 'local edit' WHERE id = 91");
	it_sqlite_exec(&env, "INSERT INTO ev VALUES (1000, 0, 'local, oldest of all')");
	it_sql(&env, "INSERT INTO ev SELECT g, g, 'pg' FROM generate_series(101, 120) g");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	/* nothing local was lost: both reached Postgres */
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM ev WHERE id = 91 AND body = 'local edit'"), 1);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM ev WHERE id = 1000"), 1);
	/* and the pull that ran before the push kept them locally */
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM ev WHERE id IN (91, 1000)"), 2,
	             "%s", it_sqlite_rows(&env, "SELECT id, at FROM ev ORDER BY at"));
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM ev WHERE at > 110"), 10);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM ev"), 12);
	/* pushed now: the next applied batch prunes them like the others */
	it_sql(&env, "INSERT INTO ev VALUES (121, 121, 'pg')");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM ev"), 10);
	cr_assert_eq(it_sqlite_int(&env, "SELECT min(at) FROM ev"), 112);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM ev"), 122);
	cr_assert_eq(it_sqlite_int(&env, NONE_CAPTURED), 0);
	cr_assert_eq(it_sqlite_int(&env, NO_CONFLICT), 0);
}

Test(limits, an_order_column_the_table_lacks_is_named_with_file_line_and_key)
{
	char out[4096];
	it_setup(&env, "badorder");
	it_sql(&env, "CREATE TABLE ev (id int PRIMARY KEY, at int)");
	it_write_conf(&env, "manual", "[table public.ev]\nmax_records = 10\norder_column = created\n");
	cr_assert_eq(it_bridge(&env, "check", out, sizeof out), 1, "%s", out);
	cr_assert(strstr(out, "bridge.conf:8: key 'order_column' in [table public.ev]") &&
	          strstr(out, "\"created\""), "%s", out);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 1);
	/* max_records without order_column: a config error, exit 2 */
	it_write_conf(&env, "manual", "[table public.ev]\nmax_records = 10\n");
	cr_assert_eq(it_bridge(&env, "check", out, sizeof out), 2);
}

/* Rows of about 1 KB: 400 of them put the file well over 256 KB. */
#define FILL(from, to) \
	"INSERT INTO big SELECT g, g, repeat(md5(g::text), 32) FROM generate_series(" #from ", " #to ") g"

static int64_t used_bytes(void)
{
	return it_sqlite_int(&env, "SELECT (SELECT page_count FROM pragma_page_count) - "
	                           "(SELECT freelist_count FROM pragma_freelist_count)") *
	       it_sqlite_int(&env, "SELECT page_size FROM pragma_page_size");
}

Test(limits, storage_limit_warn_says_so_and_syncing_goes_on)
{
	it_setup(&env, "storwarn");
	it_sql(&env, "CREATE TABLE big (id int PRIMARY KEY, at int, pad text)");
	it_sql(&env, FILL(1, 400));
	it_write_conf(&env, "realtime", "storage_limit = 256KB\nstorage_limit_action = warn\n");
	pid_t pid = it_run_online(&env);
	cr_assert(used_bytes() > 256 * 1024);
	char *out = it_bridge_stdout(&env);
	cr_assert(strstr(out, "storage_limit exceeded") && strstr(out, "\"retrying\":true"), "%s", out);
	it_sql(&env, FILL(401, 410));
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM big", 410, 10000));
	it_sqlite_exec(&env, "INSERT INTO big VALUES (5000, 5000, 'local')");
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM big WHERE id = 5000", 1, 10000));
	it_stop(&env, pid);
}

Test(limits, storage_limit_error_stops_pulling_keeps_pushing_and_resumes_under_the_limit)
{
	char out[8192], extra[160], *health = NULL;
	int port = it_free_port();
	it_setup(&env, "storerr");
	it_sql(&env, "CREATE TABLE big (id int PRIMARY KEY, at int, pad text)");
	snprintf(extra, sizeof extra, "storage_limit = 256KB\nstorage_limit_action = error\n"
	                              "metrics = 127.0.0.1:%d\n", port);
	it_write_conf(&env, "realtime", extra);
	pid_t pid = it_run_online(&env);
	cr_assert_eq(it_http_get(port, "/healthz", &health), 200, "%s", health ? health : "");
	it_sql(&env, FILL(1, 400));
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM big", 400, 15000));
	/* over the limit: an error event, the pull stands still */
	for (int i = 0; i < 100 && !strstr(it_bridge_stdout(&env), "pulling from Postgres is paused"); i++)
		it_sleep_ms(100);
	cr_assert(strstr(it_bridge_stdout(&env), "\"retrying\":true"), "%s", it_bridge_stdout(&env));
	it_sql(&env, "INSERT INTO big VALUES (9999, 9999, 'while held')");
	/* a local change still reaches Postgres */
	it_sqlite_exec(&env, "INSERT INTO big VALUES (8888, 8888, 'local while over')");
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM big WHERE id = 8888", 1, 15000),
	          "%s", it_bridge_stderr(&env));
	it_sleep_ms(1500);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM big WHERE id = 9999"), 0, "pulled while over the limit");
	cr_assert_eq(it_bridge(&env, "status", out, sizeof out), 0);
	cr_assert(strstr(out, "\"pull_paused_by_storage_limit\":true"), "%s", out);
	free(health);
	cr_assert_eq(it_http_get(port, "/healthz", &health), 503, "%s", health ? health : "");
	cr_assert(strstr(health, "storage_limit"), "%s", health);
	/* the app frees room: its deletes are pushed, the log drains, the pull resumes */
	it_sqlite_exec(&env, "DELETE FROM big WHERE id <= 300");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM big WHERE id = 9999", 1, 20000),
	          "%s", it_bridge_stderr(&env));
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM big", 102, 10000));
	free(health);
	cr_assert_eq(it_http_get(port, "/healthz", &health), 200, "%s", health ? health : "");
	free(health);
	it_stop(&env, pid);
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT id, at, pad FROM big ORDER BY id"),
	                 it_pg_rows(&env, "SELECT id, at, pad FROM big ORDER BY id"));
	cr_assert_eq(it_bridge(&env, "status", out, sizeof out), 0);
	cr_assert(strstr(out, "\"pull_paused_by_storage_limit\":false"), "%s", out);
}

Test(limits, storage_limit_prune_prunes_the_oldest_rows_until_under_the_limit)
{
	it_setup(&env, "storprune");
	it_sql(&env, "CREATE TABLE big (id int PRIMARY KEY, at int, pad text)");
	it_sql(&env, "CREATE TABLE keep (id int PRIMARY KEY)");
	it_sql(&env, FILL(1, 600));
	it_sql(&env, "INSERT INTO keep SELECT g FROM generate_series(1, 50) g");
	it_write_conf(&env, "realtime", "storage_limit = 256KB\nstorage_limit_action = prune\n"
	                                "[table public.big]\norder_column = at\n[table public.keep]\n");
	pid_t pid = it_run_online(&env);
	int64_t rows = it_sqlite_int(&env, "SELECT count(*) FROM big");
	cr_assert(rows > 0 && rows < 600, "%lld rows", (long long)rows);
	cr_assert(used_bytes() <= 256 * 1024, "%lld bytes in use", (long long)used_bytes());
	/* the newest kept, the other table whole */
	cr_assert_eq(it_sqlite_int(&env, "SELECT min(at) FROM big"), 600 - rows + 1);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM keep"), 50);
	/* more rows from Postgres: still under after each batch */
	it_sql(&env, FILL(601, 700));
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM big WHERE id = 700", 1, 10000));
	cr_assert(used_bytes() <= 256 * 1024, "%lld bytes in use", (long long)used_bytes());
	it_stop(&env, pid);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM big"), 700);
	cr_assert_eq(it_sqlite_int(&env, NONE_CAPTURED), 0);
	cr_assert_eq(it_sqlite_int(&env, NO_CONFLICT), 0);
}

/* `sync` over the limit with action error: it pushes first (the file may
 * drain), then fails without pulling; with room again it pulls. */
Test(limits, storage_limit_error_makes_sync_push_and_fail_until_there_is_room)
{
	char out[8192];
	it_setup(&env, "storerrsync");
	it_sql(&env, "CREATE TABLE big (id int PRIMARY KEY, at int, pad text)");
	it_sql(&env, FILL(1, 400));
	it_write_conf(&env, "manual", "storage_limit = 256KB\nstorage_limit_action = error\n");
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sqlite_exec(&env, "INSERT INTO big VALUES (8888, 8888, 'local')");
	it_sql(&env, "INSERT INTO big VALUES (9999, 9999, 'remote')");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 1, "%s", out);
	cr_assert(strstr(out, "\"ok\":false") && strstr(out, "pulling from Postgres is paused"), "%s", out);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM big WHERE id = 8888"), 1, "not pushed");
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM big WHERE id = 9999"), 0, "pulled");
	it_sqlite_exec(&env, "DELETE FROM big WHERE id <= 300");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM big WHERE id = 9999"), 1);
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT id, at, pad FROM big ORDER BY id"),
	                 it_pg_rows(&env, "SELECT id, at, pad FROM big ORDER BY id"));
}
