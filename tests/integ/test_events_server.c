/* test_events_server.c: offline when Postgres stops, with an error that
 * says the bridge is retrying, and online when it is back, in that order;
 * every stdout line an event throughout.  In suite `server` (declared in
 * test_server.c): stopping the cluster runs alone. */
#include <criterion/criterion.h>
#include <string.h>

#include "../support/it.h"
#include "../support/it_event.h"

static struct it_env env;

static void fini(void)
{
	it_teardown(&env);
}

/* The kinds of the events in order, "online,offline,..." (sync and
 * progress left out). */
static char *kinds(void)
{
	static char seq[512];
	cJSON *ev = it_events_parse(it_bridge_stdout(&env));
	const cJSON *o;
	seq[0] = '\0';
	cJSON_ArrayForEach(o, ev) {
		const char *k = cJSON_GetObjectItemCaseSensitive(o, "event")->valuestring;
		if (strcmp(k, "sync") && strcmp(k, "progress") && strlen(seq) + strlen(k) + 2 < sizeof seq) {
			strcat(seq, seq[0] ? "," : "");
			strcat(seq, k);
		}
	}
	cJSON_Delete(ev);
	return seq;
}

Test(server, events_say_offline_when_postgres_stops_and_online_when_it_is_back,
     .fini = fini, .timeout = 180)
{
	it_setup(&env, "evoffline");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY)");
	it_write_conf(&env, "realtime", NULL);
	pid_t pid = it_run_online(&env);
	it_pg_stop();
	bool offline = it_wait_events(&env, "offline", 1, 30000);
	it_pg_start();
	cr_assert(offline, "no offline event: %s", it_bridge_stdout(&env));
	cr_assert(it_wait_events(&env, "online", 2, 60000), "no online event once back: %s", it_bridge_stdout(&env));
	it_sql(&env, "INSERT INTO t VALUES (1)");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t", 1, 20000));
	it_stop(&env, pid);

	/* online, then errors (retrying) and one offline while it is down,
	 * then online again */
	const char *seq = kinds();
	cr_assert(!strncmp(seq, "online,error,", 13), "%s", seq);
	const char *off = strstr(seq, "offline");
	cr_assert(off && !strstr(off + 1, "offline") && !strcmp(seq + strlen(seq) - 7, ",online"), "%s", seq);
	cr_assert_eq(it_count(seq, "online"), 2, "%s", seq);
	cJSON *ev = it_events_parse(it_bridge_stdout(&env));
	const cJSON *o;
	cJSON_ArrayForEach(o, ev)
		if (!strcmp(cJSON_GetObjectItemCaseSensitive(o, "event")->valuestring, "error"))
			cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "retrying")),
			          "an error while Postgres was down without retrying: %s", it_bridge_stdout(&env));
	cJSON_Delete(ev);
}
