/* test_reload_server.c: SIGHUP while Postgres is stopped.  A reload that
 * changes settings applies at once; a table it adds waits for Postgres
 * and is then copied online and streamed; the tables already synced keep
 * their local writes, pushed once Postgres is back.  In suite `server`
 * (declared in test_server.c): stopping the cluster runs alone. */
#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>

#include "../support/it.h"
#include "../support/it_event.h"

static struct it_env env;

static void fini(void)
{
	it_teardown(&env);
}

static bool wait_stderr(struct it_env *e, const char *needle, int n, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 100) {
		if (it_count(it_bridge_stderr(e), needle) >= n)
			return true;
		it_sleep_ms(100);
	}
	return false;
}

Test(server, a_reload_while_postgres_is_down_applies_and_a_table_it_adds_is_copied_once_back,
     .fini = fini, .timeout = 240)
{
	const char *rows = "SELECT id, v FROM b ORDER BY id";
	it_setup(&env, "rl_down");
	it_sql(&env, "CREATE TABLE a (id int PRIMARY KEY, v text)");
	it_sql(&env, "CREATE TABLE b (id int PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO b SELECT g, 'b' || g FROM generate_series(1, 5000) g");
	it_write_conf(&env, "realtime", "[table public.a]\n");
	pid_t pid = it_run_online(&env);

	it_pg_stop();
	bool offline = it_wait_events(&env, "offline", 1, 30000);
	it_write_conf(&env, "realtime", "log_format = json\n[table public.a]\nconflict = remote-wins\n"
	                                "[table public.b]\n");
	kill(pid, SIGHUP);
	bool reloaded = wait_stderr(&env, "configuration reloaded", 1, 30000);
	it_sqlite_exec(&env, "INSERT INTO a VALUES (1, 'written while down')");
	it_sleep_ms(500);
	it_pg_start();
	PQclear(PQexec(env.pg, "SELECT 1")); /* the test's own connection, dropped by the stop */
	if (PQstatus(env.pg) != CONNECTION_OK)
		PQreset(env.pg);
	cr_assert(offline, "no offline event: %s", it_bridge_stdout(&env));
	cr_assert(reloaded, "the reload was not applied while Postgres was down: %s", it_bridge_stderr(&env));
	cr_assert_eq(it_count(it_bridge_stderr(&env), "reload refused"), 0, "%s", it_bridge_stderr(&env));
	cr_assert(strstr(it_bridge_stderr(&env), "{\""), "the log format did not change: %s",
	          it_bridge_stderr(&env));

	cr_assert(wait_stderr(&env, "\\\"public.b\\\" is in sync again", 1, 90000),
	          "the table added while Postgres was down was never copied: %s", it_bridge_stderr(&env));
	cr_assert_str_eq(it_pg_rows(&env, rows), it_sqlite_rows(&env, rows));
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM a WHERE id = 1", 1, 30000),
	          "a local write made while Postgres was down never reached it");
	it_sql(&env, "UPDATE b SET v = 'streamed' WHERE id = 1");
	it_sqlite_exec(&env, "INSERT INTO b VALUES (9001, 'local')");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM b WHERE v = 'streamed'", 1, 20000));
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM b WHERE id = 9001", 1, 20000));
	it_stop(&env, pid);
}
