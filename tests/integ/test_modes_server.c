/* test_modes_server.c: on-reconnect when the connection really comes
 * back: after Postgres stops and starts again, and after the server
 * terminates the bridge's walsender in the middle of a sync.  Changes made
 * meanwhile move once it is back, and not before.  In suite `server`
 * (declared in test_server.c): these disturb the cluster and run alone. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "../support/it.h"
#include "../support/it_event.h"
#include "../support/it_modes.h"

static struct it_env env;

static void fini(void)
{
	it_teardown(&env);
}

Test(server, on_reconnect_moves_what_changed_while_postgres_was_down_once_it_is_back,
     .fini = fini, .timeout = 180)
{
	modes_setup(&env, "onrestart", "both", "on-reconnect", NULL);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0, "%s", it_bridge_stderr(&env));
	pid_t pid = it_bridge_start(&env, "run");
	cr_assert(it_wait_events(&env, "online", 1, 30000), "no sync at start: %s", it_bridge_stdout(&env));
	modes_wait_session_over(&env);

	/* written while connected: these wait for the next reconnection */
	modes_write_remote(&env, 1);
	modes_write_local(&env, 1001);
	it_sleep_ms(1500);
	modes_assert_not_moved(&env, 1, 1001, "while connected");
	it_pg_stop();
	bool offline = it_wait_events(&env, "offline", 1, 20000);
	modes_write_local(&env, 1002); /* written while Postgres is down */
	it_sleep_ms(1000);
	int64_t early = it_sqlite_int(&env, "SELECT count(*) FROM b WHERE id = 1");
	it_pg_start();
	cr_assert(offline, "no offline event while Postgres was down: %s", it_bridge_stdout(&env));
	cr_assert_eq(early, 0, "remote row 1 moved before the server came back");

	modes_assert_remote_moved(&env, 1);
	modes_assert_local_moved(&env, 1001);
	modes_assert_local_moved(&env, 1002);
	cr_assert(it_wait_events(&env, "online", 2, 10000), "no online event once it was back: %s", it_bridge_stdout(&env));
	it_stop(&env, pid);
}

/* A sync of a large transaction keeps the walsender busy long enough to
 * terminate it; what is written while the bridge is cut off moves when it
 * reconnects. */
Test(server, on_reconnect_moves_what_changed_while_its_walsender_was_gone_once_it_reconnects,
     .fini = fini, .timeout = 240)
{
	char sql[256];
	modes_setup(&env, "onwalkill", "both", "on-reconnect", NULL);
	it_sql(&env, "CREATE TABLE big (id int PRIMARY KEY, pad text)");
	FILE *f = fopen(env.conf, "a");
	cr_assert(f);
	fputs("[table public.big]\n", f);
	fclose(f);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0, "%s", it_bridge_stderr(&env));
	pid_t pid = it_bridge_start(&env, "run");
	cr_assert(it_wait_events(&env, "online", 1, 30000), "no sync at start: %s", it_bridge_stdout(&env));
	modes_wait_session_over(&env);

	it_sql(&env, "INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 300000) g");
	kill(pid, SIGUSR1);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '%s' AND active",
	         env.slot);
	cr_assert(it_wait_pg_int(&env, sql, 1, 20000), "the sync never connected");
	it_sleep_ms(300);
	cr_assert_eq(it_sql_int(&env, "SELECT count(pg_terminate_backend(active_pid)) FROM pg_replication_slots "
	                              "WHERE slot_name = '%s' AND active", env.slot), 1);
	modes_write_remote(&env, 1);
	modes_write_local(&env, 1001);
	cr_assert_lt(it_sqlite_int(&env, "SELECT count(*) FROM big"), 300000,
	             "the sync was over before the walsender was terminated");

	cr_assert(it_wait_events(&env, "offline", 1, 20000), "no offline event: %s", it_bridge_stdout(&env));
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM big", 300000, 120000), "%s", it_bridge_stderr(&env));
	modes_assert_remote_moved(&env, 1);
	modes_assert_local_moved(&env, 1001);
	cr_assert(it_wait_events(&env, "online", 3, 10000), "%s", it_bridge_stdout(&env));
	it_stop(&env, pid);
}
