/* test_modes.c: every sync mode against every direction.  Each test runs
 * a real bridge on three tables, one per direction (b: both, pl: pull,
 * ps: push), and checks that a change is not moved before the mode says
 * and is moved when it says, in the directions the table allows and never
 * in the others.  Each mode runs three times, with [bridge] direction
 * both, pull and push: the table whose direction equals the [bridge] one
 * inherits it, the two others set their own.  Restarts and walsender
 * kills (on-reconnect) are in test_modes_server.c. */
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

TestSuite(modes, .fini = fini, .timeout = 180);

/* manual: nothing moves until SIGUSR1, then everything committed so far. */
static void manual(const char *bdir)
{
	modes_setup(&env, "manual", bdir, "manual", NULL);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0, "%s", it_bridge_stderr(&env));
	pid_t pid = it_bridge_start(&env, "run");
	for (int round = 1; round <= 2; round++) {
		modes_write_remote(&env, round);
		modes_write_local(&env, 1000 + round);
		it_sleep_ms(1500);
		modes_assert_not_moved(&env, round, 1000 + round, "before SIGUSR1");
		modes_wait_sync_rows(&env, "pull", 2 * (round - 1)); /* no more than the last sync's */
		modes_wait_sync_rows(&env, "push", 2 * (round - 1));
		kill(pid, SIGUSR1);
		modes_assert_remote_moved(&env, round);
		modes_assert_local_moved(&env, 1000 + round);
		modes_wait_sync_rows(&env, "pull", 2 * round);
		modes_wait_sync_rows(&env, "push", 2 * round);
	}
	it_stop(&env, pid);
}

/* auto: a remote change streams in; local writes are pushed only once they
 * stop for `debounce`: while they keep coming closer than that, nothing. */
static void automatic(const char *bdir)
{
	modes_setup(&env, "auto", bdir, "auto", "debounce = 3s\n");
	pid_t pid = it_run_online(&env);
	modes_write_remote(&env, 1);
	modes_assert_remote_moved(&env, 1);
	for (int i = 1; i <= 20; i++) { /* 4 s of writes 200 ms apart */
		modes_write_local(&env, 1000 + i);
		it_sleep_ms(200);
		cr_assert_eq(modes_local_rows_in_pg(&env), 0, "pushed after write %d, writes still coming", i);
	}
	for (int i = 1; i <= 20; i++)
		modes_assert_local_moved(&env, 1000 + i);
	modes_wait_sync_rows(&env, "pull", 2);
	modes_wait_sync_rows(&env, "push", 40);
	it_stop(&env, pid);
}

/* periodic: a sync at start, then one every interval: a change made just
 * after a sync waits for the next one. */
static void periodic(const char *bdir)
{
	modes_setup(&env, "periodic", bdir, "periodic", "interval = 8s\n");
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0, "%s", it_bridge_stderr(&env));
	modes_write_remote(&env, 1);
	modes_write_local(&env, 1001);
	pid_t pid = it_bridge_start(&env, "run");
	modes_assert_remote_moved(&env, 1);
	modes_wait_session_over(&env); /* and its push was over before */
	modes_assert_local_moved(&env, 1001);
	modes_write_remote(&env, 2);
	modes_write_local(&env, 1002);
	it_sleep_ms(1500);
	modes_assert_not_moved(&env, 2, 1002, "within the interval");
	modes_assert_remote_moved(&env, 2);
	modes_assert_local_moved(&env, 1002);
	modes_wait_sync_rows(&env, "pull", 4);
	modes_wait_sync_rows(&env, "push", 4);
	it_stop(&env, pid);
}

/* realtime: each commit moves on its own, either way. */
static void realtime(const char *bdir)
{
	modes_setup(&env, "realtime", bdir, "realtime", NULL);
	pid_t pid = it_run_online(&env);
	for (int round = 1; round <= 3; round++) {
		modes_write_remote(&env, round);
		modes_assert_remote_moved(&env, round);
		modes_write_local(&env, 1000 + round);
		modes_assert_local_moved(&env, 1000 + round);
	}
	modes_wait_sync_rows(&env, "pull", 6);
	modes_wait_sync_rows(&env, "push", 6);
	it_stop(&env, pid);
}

/* on-reconnect: a sync at start; then, with the server up all along,
 * nothing until the connection comes back (test_modes_server.c) or a sync
 * is asked for. */
static void on_reconnect(const char *bdir)
{
	modes_setup(&env, "onreconn", bdir, "on-reconnect", NULL);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0, "%s", it_bridge_stderr(&env));
	modes_write_remote(&env, 1);
	modes_write_local(&env, 1001);
	pid_t pid = it_bridge_start(&env, "run");
	modes_assert_remote_moved(&env, 1);
	modes_wait_session_over(&env); /* and its push was over before */
	modes_assert_local_moved(&env, 1001);
	modes_write_remote(&env, 2);
	modes_write_local(&env, 1002);
	it_sleep_ms(4000); /* longer than the reachability probe's period */
	modes_assert_not_moved(&env, 2, 1002, "with the server up all along");
	cr_assert_eq(it_events_count(it_bridge_stdout(&env), "offline"), 0, "%s", it_bridge_stdout(&env));
	kill(pid, SIGUSR1);
	modes_assert_remote_moved(&env, 2);
	modes_assert_local_moved(&env, 1002);
	it_stop(&env, pid);
}

/* auto: SIGUSR1 pushes at once, without waiting for the debounce. */
Test(modes, auto_pushes_at_once_on_sigusr1)
{
	modes_setup(&env, "autousr1", "both", "auto", "debounce = 10m\n");
	pid_t pid = it_run_online(&env);
	modes_write_local(&env, 1001);
	it_sleep_ms(1500);
	cr_assert_eq(modes_local_rows_in_pg(&env), 0, "pushed before the debounce or SIGUSR1");
	kill(pid, SIGUSR1);
	modes_assert_local_moved(&env, 1001);
	it_stop(&env, pid);
}

#define EACH_DIRECTION(fn, name)                                                      \
	Test(modes, name##__bridge_direction_both) { fn("both"); }                    \
	Test(modes, name##__bridge_direction_pull) { fn("pull"); }                    \
	Test(modes, name##__bridge_direction_push) { fn("push"); }

EACH_DIRECTION(manual, manual_moves_nothing_until_sigusr1)
EACH_DIRECTION(automatic, auto_pushes_only_after_debounce_of_quiet)
EACH_DIRECTION(periodic, periodic_moves_at_start_and_then_at_the_next_interval)
EACH_DIRECTION(realtime, realtime_moves_each_commit)
EACH_DIRECTION(on_reconnect, on_reconnect_moves_at_start_and_not_while_connected)
