/* test_metrics_sync.c: /metrics against a known sync in manual mode: the
 * pending gauge before it, then every counter after it (rows and
 * transactions each way, a conflict by table and strategy, a rejected
 * change), every documented metric present once with its type, and a
 * resync counted.  Also: the Prometheus text checker refuses what it
 * should, so the other tests' "it parses" can fail. */
#include <criterion/criterion.h>
#include <signal.h>
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

TestSuite(metrics_sync, .fini = fini, .timeout = 180);

/* Every metric the README documents, with its type. */
static const char *DOCUMENTED[][2] = {
	{"pulled_rows_total", "counter"},      {"pulled_transactions_total", "counter"},
	{"pushed_rows_total", "counter"},      {"pushed_transactions_total", "counter"},
	{"conflicts_total", "counter"},        {"rejected_changes_total", "counter"},
	{"reconnects_total", "counter"},       {"resyncs_total", "counter"},
	{"slot_lag_bytes", "gauge"},           {"apply_lag_seconds", "gauge"},
	{"pending_local_changes", "gauge"},    {"storage_used_bytes", "gauge"},
	{"storage_limit_bytes", "gauge"},      {"connected", "gauge"},
};

static char *scrape(int port)
{
	char *body = NULL;
	cr_assert_eq(it_http_get(port, "/metrics", &body), 200, "no /metrics: %s", it_bridge_stderr(&env));
	const char *why = it_prom_check(body);
	cr_assert_null(why, "not Prometheus text (%s):\n%s", why, body);
	return body;
}

static double value(int port, const char *series)
{
	char *m = scrape(port);
	double v = it_prom_value(m, series);
	free(m);
	return v;
}

static bool wait_value(int port, const char *series, double want)
{
	for (int waited = 0; waited <= 30000; waited += 100) {
		if (value(port, series) == want)
			return true;
		it_sleep_ms(100);
	}
	return false;
}

static void check_documented(const char *m)
{
	char want[160];
	for (size_t i = 0; i < sizeof DOCUMENTED / sizeof *DOCUMENTED; i++) {
		snprintf(want, sizeof want, "# TYPE pgsqlite_bridge_%s %s\n", DOCUMENTED[i][0], DOCUMENTED[i][1]);
		cr_expect_eq(it_count(m, want), 1, "%s missing or repeated:\n%s", want, m);
	}
	cr_expect_eq(it_count(m, "# TYPE "), (int)(sizeof DOCUMENTED / sizeof *DOCUMENTED),
	             "a metric the README does not document:\n%s", m);
}

static void write_both_sides(void)
{
	for (int i = 1; i <= 3; i++)
		it_sqlite_exec(&env, "INSERT INTO t VALUES (%d, 'local')", 1000 + i);
	it_sqlite_exec(&env, "INSERT INTO r VALUES (1, 'bad')");
	it_sqlite_exec(&env, "UPDATE c SET v = 'local' WHERE id = 1");
	it_sql(&env, "INSERT INTO t SELECT g, 'remote' FROM generate_series(1, 3) g");
	it_sql(&env, "INSERT INTO t SELECT g, 'remote' FROM generate_series(4, 5) g");
	it_sql(&env, "UPDATE c SET v = 'remote' WHERE id = 1");
}

Test(metrics_sync, counters_match_a_manual_sync_with_a_conflict_and_a_rejected_change)
{
	int port = it_free_port();
	char extra[160];
	it_setup(&env, "metricsync");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text)");
	it_sql(&env, "CREATE TABLE r (id int PRIMARY KEY, v text CHECK (v <> 'bad'))");
	it_sql(&env, "CREATE TABLE c (id int PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO c VALUES (1, 'base')");
	snprintf(extra, sizeof extra, "metrics = 127.0.0.1:%d\nstorage_limit = 10MB\nconflict = remote-wins\n", port);
	it_write_conf(&env, "manual", extra);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0, "%s", it_bridge_stderr(&env));
	write_both_sides();

	pid_t pid = it_bridge_start(&env, "run");
	char *h = NULL;
	for (int i = 0; i < 300 && it_http_get(port, "/healthz", &h) != 200; i++)
		it_sleep_ms(100);
	free(h);
	char *m = scrape(port);
	check_documented(m);
	cr_expect_eq(it_prom_value(m, "pgsqlite_bridge_pending_local_changes"), 5, "%s", m);
	cr_expect_eq(it_prom_value(m, "pgsqlite_bridge_connected"), 0, "manual: no connection before a sync\n%s", m);
	cr_expect_eq(it_prom_value(m, "pgsqlite_bridge_pulled_rows_total"), 0, "%s", m);
	cr_expect_eq(it_prom_value(m, "pgsqlite_bridge_storage_limit_bytes"), 10 * 1024 * 1024, "%s", m);
	cr_expect_gt(it_prom_value(m, "pgsqlite_bridge_storage_used_bytes"), 0, "%s", m);
	free(m);

	kill(pid, SIGUSR1);
	cr_assert(wait_value(port, "pgsqlite_bridge_rejected_changes_total", 1), "%s", it_bridge_stderr(&env));
	cr_assert(wait_value(port, "pgsqlite_bridge_pending_local_changes", 0), "%s", it_bridge_stderr(&env));
	m = scrape(port);
	/* pulled: 5 inserts and c's update, in 3 transactions; pushed: the 3
	 * inserts (c's local edit lost, r's insert was refused) */
	cr_expect_eq(it_prom_value(m, "pgsqlite_bridge_pulled_rows_total"), 6, "%s", m);
	cr_expect_eq(it_prom_value(m, "pgsqlite_bridge_pulled_transactions_total"), 3, "%s", m);
	cr_expect_eq(it_prom_value(m, "pgsqlite_bridge_pushed_rows_total"), 3, "%s", m);
	cr_expect_geq(it_prom_value(m, "pgsqlite_bridge_pushed_transactions_total"), 1, "%s", m);
	cr_expect_eq(it_prom_value(m, "pgsqlite_bridge_conflicts_total{table=\"c\",strategy=\"remote-wins\"}"), 1,
	             "%s", m);
	cr_expect_eq(it_count(m, "\npgsqlite_bridge_conflicts_total{"), 1, "the rejection is no conflict\n%s", m);
	cr_expect_eq(it_prom_value(m, "pgsqlite_bridge_reconnects_total"), 0, "%s", m);
	cr_expect_eq(it_prom_value(m, "pgsqlite_bridge_resyncs_total"), 0, "%s", m);
	free(m);
	cr_expect_eq(it_sql_int(&env, "SELECT count(*) FROM t"), 8);
	it_stop(&env, pid);

	/* The slot is dropped while the bridge is stopped: the next sync
	 * copies everything again from a new slot, and that is counted. */
	it_sql(&env, "SELECT pg_drop_replication_slot('%s')", env.slot);
	pid = it_bridge_start(&env, "run");
	h = NULL;
	for (int i = 0; i < 300 && it_http_get(port, "/healthz", &h) != 200; i++)
		it_sleep_ms(100);
	free(h);
	kill(pid, SIGUSR1);
	cr_assert(wait_value(port, "pgsqlite_bridge_resyncs_total", 1), "%s", it_bridge_stderr(&env));
	cr_expect_eq(value(port, "pgsqlite_bridge_pulled_rows_total"), 0, "a copy is no pulled row");
	it_stop(&env, pid);
}

Test(metrics_sync, the_text_checker_refuses_what_is_not_prometheus_text)
{
	const char *ok = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1 2\"} 3\na_total{x=\"2\"} 4\n";
	cr_assert_null(it_prom_check(ok));
	const char *bad[] = {
		"a_total 1\n",                                                        /* no HELP, TYPE */
		"# HELP a A.\n# TYPE a gauge\na 1",                                   /* no final newline */
		"# HELP a A.\n# TYPE a gauge\na one\n",                               /* not a number */
		"# HELP a A.\n# TYPE a gauge\na{x=1} 1\n",                            /* label unquoted */
		"# HELP a A.\n# TYPE a meter\na 1\n",                                 /* unknown type */
		"# HELP a A.\n# TYPE a gauge\n# TYPE a gauge\na 1\n",                 /* TYPE twice */
		"# HELP a A.\n# TYPE a gauge\na 1\na 2\n",                            /* series twice */
		"# HELP a A.\n# TYPE a gauge\n# note\na 1\n",                         /* other comment */
		"# HELP a A.\n# TYPE a gauge\na  1\n",                                /* two spaces */
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		cr_expect_not_null(it_prom_check(bad[i]), "accepted: %s", bad[i]);
}
