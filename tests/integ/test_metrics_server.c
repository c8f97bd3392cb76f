/* test_metrics_server.c: /healthz while Postgres goes away and comes back.
 * In suite `server` (declared in test_server.c), since stopping the
 * cluster must run alone (tests/run.sh). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../support/it.h"
#include "../support/it_http.h"

static struct it_env env;

static void fini(void)
{
	it_teardown(&env);
}

/* Polls /healthz until it answers want; returns the last status. */
static int wait_health(int port, int want, char **body, int timeout_ms)
{
	int status = 0;
	for (int waited = 0; waited <= timeout_ms; waited += 200) {
		free(*body);
		status = it_http_get(port, "/healthz", body);
		if (status == want)
			break;
		it_sleep_ms(200);
	}
	return status;
}

Test(server, healthz_turns_503_while_postgres_is_down_and_200_when_it_is_back,
     .fini = fini, .timeout = 180)
{
	int port = it_free_port();
	char extra[128], *body = NULL;

	setenv("PGSQLITE_BRIDGE_HEALTH_GRACE", "2", 1); /* the retry budget, shortened */
	it_setup(&env, "metricshealth");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY)");
	snprintf(extra, sizeof extra, "metrics = 127.0.0.1:%d\n", port);
	it_write_conf(&env, "realtime", extra);
	pid_t pid = it_run_online(&env);
	unsetenv("PGSQLITE_BRIDGE_HEALTH_GRACE");
	cr_assert_eq(wait_health(port, 200, &body, 5000), 200);
	cr_assert_str_eq(body, "ok\n");

	it_pg_stop();
	int status = wait_health(port, 503, &body, 30000);
	it_pg_start();
	cr_assert_eq(status, 503, "healthz stayed %d: %s", status, body ? body : "");
	cr_expect(strstr(body, "replication connection down for "), "%s", body);
	cr_expect(!strstr(body, "secret-pw"), "a password in /healthz: %s", body);

	cr_assert_eq(wait_health(port, 200, &body, 60000), 200, "%s", body ? body : "");
	char *m = NULL;
	cr_assert_eq(it_http_get(port, "/metrics", &m), 200);
	cr_expect_geq(strtod(strstr(m, "\npgsqlite_bridge_reconnects_total ") + 34, NULL), 1, "%s", m);
	free(m);
	free(body);
	it_stop(&env, pid);
}

/* on-reconnect holds no connection between sessions: its probe of the
 * server is what tells /healthz that Postgres is gone. */
Test(server, healthz_in_on_reconnect_mode_turns_503_while_postgres_is_down,
     .fini = fini, .timeout = 180)
{
	int port = it_free_port();
	char extra[128], *body = NULL;

	setenv("PGSQLITE_BRIDGE_HEALTH_GRACE", "2", 1);
	it_setup(&env, "metricshealthor");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY)");
	snprintf(extra, sizeof extra, "metrics = 127.0.0.1:%d\n", port);
	it_write_conf(&env, "on-reconnect", extra);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	pid_t pid = it_bridge_start(&env, "run");
	unsetenv("PGSQLITE_BRIDGE_HEALTH_GRACE");
	cr_assert_eq(wait_health(port, 200, &body, 10000), 200);

	it_pg_stop();
	int status = wait_health(port, 503, &body, 30000);
	it_pg_start();
	cr_assert_eq(status, 503, "healthz stayed %d: %s", status, body ? body : "");
	cr_expect(strstr(body, "Postgres does not answer"), "%s", body);
	cr_assert_eq(wait_health(port, 200, &body, 60000), 200, "%s", body ? body : "");
	free(body);
	it_stop(&env, pid);
}
