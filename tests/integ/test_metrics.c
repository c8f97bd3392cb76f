/* test_metrics.c: `metrics = host:port`: /metrics is valid Prometheus text
 * whose pull and push counters match the rows moved, /healthz says ok, and
 * an address the bridge cannot listen on stops `run`.  (Postgres stopping
 * under /healthz is in test_metrics_server.c, with the other tests that
 * disturb the cluster.) */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../support/it.h"
#include "../support/it_http.h"

static struct it_env env;

static void fini(void)
{
	it_teardown(&env);
}

TestSuite(metrics, .fini = fini, .timeout = 120);

static void write_conf(int port)
{
	char extra[128];
	snprintf(extra, sizeof extra, "metrics = 127.0.0.1:%d\n", port);
	it_write_conf(&env, "realtime", extra);
}

/* Polls /metrics until series reaches want; returns the last scrape. */
static char *wait_value(int port, const char *series, double want, int timeout_ms)
{
	char *body = NULL;
	for (int waited = 0;; waited += 100) {
		free(body);
		cr_assert_eq(it_http_get(port, "/metrics", &body), 200, "no /metrics on port %d: %s",
		             port, it_bridge_stderr(&env));
		if (it_prom_value(body, series) == want || waited >= timeout_ms)
			return body;
		it_sleep_ms(100);
	}
}

Test(metrics, counters_match_the_rows_moved_and_the_text_parses)
{
	int port = it_free_port();
	it_setup(&env, "metricsrows");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO t VALUES (0, 'copied by init, not counted')");
	write_conf(port);
	pid_t pid = it_run_online(&env);
	it_sql(&env, "INSERT INTO t SELECT g, 'remote' FROM generate_series(1, 7) g");
	for (int i = 8; i <= 10; i++)
		it_sql(&env, "INSERT INTO t VALUES (%d, 'remote')", i);
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t", 11, 20000), "%s", it_bridge_stderr(&env));
	it_sqlite_exec(&env, "INSERT INTO t VALUES (101, 'l'), (102, 'l'), (103, 'l'), (104, 'l')");
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM t", 15, 20000), "%s", it_bridge_stderr(&env));

	char *m = wait_value(port, "pgsqlite_bridge_pushed_rows_total", 4, 10000);
	const char *why = it_prom_check(m);
	cr_assert_null(why, "not Prometheus text (%s):\n%s", why, m);
	cr_expect_eq(it_prom_value(m, "pgsqlite_bridge_pulled_rows_total"), 10, "%s", m);
	cr_expect_eq(it_prom_value(m, "pgsqlite_bridge_pulled_transactions_total"), 4, "%s", m);
	cr_expect_eq(it_prom_value(m, "pgsqlite_bridge_pushed_rows_total"), 4, "%s", m);
	cr_expect_geq(it_prom_value(m, "pgsqlite_bridge_pushed_transactions_total"), 1, "%s", m);
	cr_expect_eq(it_prom_value(m, "pgsqlite_bridge_connected"), 1, "%s", m);
	cr_expect_eq(it_prom_value(m, "pgsqlite_bridge_pending_local_changes"), 0, "%s", m);
	cr_expect_gt(it_prom_value(m, "pgsqlite_bridge_storage_used_bytes"), 0, "%s", m);
	cr_expect_geq(it_prom_value(m, "pgsqlite_bridge_apply_lag_seconds"), 0, "%s", m);
	cr_expect_geq(it_prom_value(m, "pgsqlite_bridge_slot_lag_bytes"), 0, "%s", m);
	cr_expect(strstr(m, "# TYPE pgsqlite_bridge_conflicts_total counter"), "%s", m);
	free(m);

	char *h = NULL;
	cr_expect_eq(it_http_get(port, "/healthz", &h), 200);
	cr_expect_str_eq(h ? h : "", "ok\n");
	free(h);
	cr_expect_eq(it_http_get(port, "/nothing-here", &h), 404);
	free(h);
	it_stop(&env, pid);
	cr_expect_eq(it_http_get(port, "/healthz", &h), 0, "still serving after the stop");
	free(h);
}

/* A conflict is counted with its table and strategy as labels (and a
 * port alone serves on loopback). */
Test(metrics, conflicts_are_counted_by_table_and_strategy)
{
	int port = it_free_port();
	it_setup(&env, "metricsconfl");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO t VALUES (1, 'base')");
	char extra[128];
	/* A port alone: loopback. */
	snprintf(extra, sizeof extra, "metrics = %d\nconflict = remote-wins\n", port);
	it_write_conf(&env, "manual", extra);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0, "%s", it_bridge_stderr(&env));
	it_sqlite_exec(&env, "UPDATE t SET v = 'local' WHERE id = 1");
	it_sql(&env, "UPDATE t SET v = 'remote' WHERE id = 1");
	pid_t pid = it_bridge_start(&env, "run");
	char *up = NULL;
	for (int i = 0; i < 100 && it_http_get(port, "/healthz", &up) != 200; i++)
		it_sleep_ms(100);
	free(up);
	kill(pid, SIGUSR1);
	char *m = wait_value(port, "pgsqlite_bridge_conflicts_total{table=\"t\",strategy=\"remote-wins\"}",
	                     1, 20000);
	cr_assert_null(it_prom_check(m), "%s", m);
	cr_expect_eq(it_prom_value(m, "pgsqlite_bridge_conflicts_total{table=\"t\",strategy=\"remote-wins\"}"),
	             1, "%s\n%s", m, it_bridge_stdout(&env));
	free(m);
	it_stop(&env, pid);
}

/* Where the bridge cannot listen, `run` stops with the reason. */
Test(metrics, an_address_in_use_stops_run)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(bind(s, (struct sockaddr *)&a, sizeof a) == 0 && listen(s, 1) == 0);
	cr_assert(getsockname(s, (struct sockaddr *)&a, &len) == 0);
	it_setup(&env, "metricsbusy");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY)");
	write_conf(ntohs(a.sin_port));
	pid_t pid = it_bridge_start(&env, "run");
	cr_expect_eq(it_bridge_wait(pid, 30000), 1);
	cr_expect(strstr(it_bridge_stderr(&env), "metrics: cannot listen on 127.0.0.1:"), "%s",
	          it_bridge_stderr(&env));
	close(s);
}
