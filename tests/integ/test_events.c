/* test_events.c: stdout is one JSON event per line, and each kind appears
 * where it should: progress while init copies, an error for a configured
 * table the bridge refuses, nothing else before a sync is asked for (in
 * manual mode), then online, sync in both directions, a conflict for a
 * two-sided edit, an error and a rejected conflict for a local change
 * Postgres refuses, an error for a setting a reload refuses.  `sync` prints its summary after the events.  (offline
 * and online around a Postgres stop: test_events_server.c.) */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/it.h"
#include "../support/it_event.h"

static struct it_env env;

static void fini(void)
{
	it_teardown(&env);
}

TestSuite(events, .fini = fini, .timeout = 180);

static const char *str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : "";
}

static double num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* Polls until stdout holds an event of kind with key = value. */
static bool wait_event(const char *kind, const char *key, const char *value, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 100) {
		cJSON *ev = it_events_parse(it_bridge_stdout(&env));
		bool found = it_event_find(ev, kind, key, value) != NULL;
		cJSON_Delete(ev);
		if (found)
			return true;
		it_sleep_ms(100);
	}
	return false;
}

static void make_tables_conf(void)
{
	it_write_conf(&env, "manual", "[table public.t]\n[table public.c]\nconflict = remote-wins\n"
	                              "[table public.r]\n[table public.nothing]\n");
}

/* Polls until an error event says a reload was refused over `slot`. */
static bool wait_refusal(void)
{
	for (int waited = 0; waited <= 20000; waited += 100) {
		cJSON *ev = it_events_parse(it_bridge_stdout(&env));
		const cJSON *o;
		bool found = false;
		cJSON_ArrayForEach(o, ev) {
			const char *m = str(o, "message");
			if (!strcmp(str(o, "event"), "error") && strstr(m, "reload refused") && strstr(m, "'slot'") &&
			    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "retrying")))
				found = true;
		}
		cJSON_Delete(ev);
		if (found)
			return true;
		it_sleep_ms(100);
	}
	return false;
}

static void make_tables(void)
{
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO t SELECT g, 'copied' FROM generate_series(1, 25000) g");
	it_sql(&env, "CREATE TABLE c (id int PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO c VALUES (1, 'base')");
	it_sql(&env, "CREATE TABLE r (id int PRIMARY KEY, v text CHECK (v <> 'bad'))");
	it_sql(&env, "CREATE TABLE nothing (id int PRIMARY KEY)");
	it_sql(&env, "ALTER TABLE nothing REPLICA IDENTITY NOTHING");
	make_tables_conf();
}

/* Before any sync: the copy's progress up to 25000 of 25000 rows, the
 * refused table's error, and nothing else. */
static void check_init_events(void)
{
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' "
	                                   "AND tbl_name = 'r'", 3, 60000), "%s", it_bridge_stderr(&env));
	it_sleep_ms(500);
	cJSON *ev = it_events_parse(it_bridge_stdout(&env));
	const cJSON *o;
	double last_done = 0;
	int progress_t = 0;
	cJSON_ArrayForEach(o, ev) {
		const char *kind = str(o, "event");
		cr_assert(!strcmp(kind, "progress") || !strcmp(kind, "error"), "%s before a sync: %s",
		          kind, it_bridge_stdout(&env));
		if (!strcmp(kind, "progress") && strstr(str(o, "phase"), "public.t")) {
			cr_assert_geq(num(o, "done"), last_done, "progress went back: %s", it_bridge_stdout(&env));
			last_done = num(o, "done");
			progress_t++;
		}
	}
	cr_assert_geq(progress_t, 3, "too little progress for 25000 rows: %s", it_bridge_stdout(&env));
	cr_assert_eq(last_done, 25000, "%s", it_bridge_stdout(&env));
	o = it_event_find(ev, "error", NULL, NULL);
	cr_assert(o && strstr(str(o, "message"), "public.nothing") &&
	          strstr(str(o, "message"), "REPLICA IDENTITY NOTHING"),
	          "no error for the refused table: %s", it_bridge_stdout(&env));
	cr_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "retrying")));
	cJSON_Delete(ev);
}

static void check_sync_events(void)
{
	cJSON *ev = it_events_parse(it_bridge_stdout(&env));
	const cJSON *o = it_event_find(ev, "online", NULL, NULL);
	cr_assert(o, "no online event: %s", it_bridge_stdout(&env));
	/* pulled: the remote insert and c's remote version; pushed: the local
	 * insert alone (c's local edit lost, r's insert was refused) */
	cr_assert_eq(it_events_sum(ev, "sync", "pull", "rows"), 2, "%s", it_bridge_stdout(&env));
	cr_assert_eq(it_events_sum(ev, "sync", "push", "rows"), 1, "%s", it_bridge_stdout(&env));
	o = it_event_find(ev, "conflict", "table", "c");
	cr_assert(o, "no conflict event for the two-sided edit: %s", it_bridge_stdout(&env));
	cr_expect_str_eq(str(o, "strategy"), "remote-wins");
	cr_expect_str_eq(str(o, "resolution"), "remote");
	cr_expect_eq(num(cJSON_GetObjectItemCaseSensitive(o, "pk"), "id"), 1, "%s", it_bridge_stdout(&env));
	o = it_event_find(ev, "conflict", "table", "r");
	cr_assert(o, "no conflict event for the rejected change: %s", it_bridge_stdout(&env));
	cr_expect_str_eq(str(o, "resolution"), "rejected");
	cr_expect_str_eq(str(o, "strategy"), "last-write-wins", "the table's strategy, as on the pull side");
	const cJSON *e;
	bool rejected_error = false;
	cJSON_ArrayForEach(e, ev)
		if (!strcmp(str(e, "event"), "error") && strstr(str(e, "message"), "rejected a local change to \"r\"") &&
		    cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(e, "retrying")))
			rejected_error = true;
	cr_expect(rejected_error, "no error event for the rejected change: %s", it_bridge_stdout(&env));
	cr_expect_eq(it_events_count(it_bridge_stdout(&env), "offline"), 0, "%s", it_bridge_stdout(&env));
	cr_expect(!strstr(it_bridge_stdout(&env), "secret-pw"), "a password in an event");
	cJSON_Delete(ev);
}

Test(events, every_stdout_line_is_an_event_and_each_kind_comes_where_it_should)
{
	it_setup(&env, "evkinds");
	make_tables();
	pid_t pid = it_bridge_start(&env, "run");
	check_init_events();

	it_sqlite_exec(&env, "UPDATE c SET v = 'local' WHERE id = 1");
	it_sql(&env, "UPDATE c SET v = 'remote' WHERE id = 1");
	it_sqlite_exec(&env, "INSERT INTO r VALUES (1, 'bad')");
	it_sqlite_exec(&env, "INSERT INTO t VALUES (100001, 'local')");
	it_sql(&env, "INSERT INTO t VALUES (100002, 'remote')");
	kill(pid, SIGUSR1);
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM t WHERE id = 100001", 1, 30000), "%s",
	          it_bridge_stderr(&env));
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM t WHERE id = 100002", 1, 30000));
	cr_assert(wait_event("conflict", "table", "r", 30000), "%s", it_bridge_stdout(&env));
	cr_assert(wait_event("sync", "direction", "push", 30000), "%s", it_bridge_stdout(&env));
	cr_assert_str_eq(it_sqlite_text(&env, "SELECT v FROM c WHERE id = 1"), "remote");
	cr_assert_str_eq(it_sql_value(&env, "SELECT v FROM c WHERE id = 1"), "remote");
	check_sync_events();

	/* a setting that cannot change while running is refused, with an error */
	char slot[sizeof env.slot];
	memcpy(slot, env.slot, sizeof slot);
	snprintf(env.slot, sizeof env.slot, "another_slot");
	make_tables_conf();
	memcpy(env.slot, slot, sizeof slot);
	kill(pid, SIGHUP);
	cr_assert(wait_refusal(), "no error for a refused setting: %s",
	          it_bridge_stdout(&env));
	it_stop(&env, pid);
	it_events_count(it_bridge_stdout(&env), NULL); /* still every line, after the stop */
}

/* `sync`: its events, then the one-line summary (JSON, with "ok"). */
Test(events, sync_prints_events_then_its_json_summary)
{
	char out[16384];
	it_setup(&env, "evsync");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text)");
	it_write_conf(&env, "manual", NULL);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sql(&env, "INSERT INTO t SELECT g, 'r' FROM generate_series(1, 30) g");
	it_sqlite_exec(&env, "INSERT INTO t VALUES (1001, 'l'), (1002, 'l')");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	size_t len = strlen(out);
	cr_assert(len > 1 && out[len - 1] == '\n', "%s", out);
	out[len - 1] = '\0';
	char *last = strrchr(out, '\n');
	cr_assert(last, "no event before the summary: %s", out);
	*last++ = '\0';
	cJSON *summary = cJSON_Parse(last);
	cr_assert(cJSON_IsObject(summary), "summary is not JSON: %s", last);
	cr_expect(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(summary, "ok")), "%s", last);
	cr_expect_eq(num(summary, "rows"), 30, "%s", last);
	cr_expect_eq(num(summary, "pushed_rows"), 2, "%s", last);
	cJSON_Delete(summary);
	strcat(out, "\n");
	cJSON *ev = it_events_parse(out);
	cr_expect_eq(it_events_sum(ev, "sync", "pull", "rows"), 30, "%s", out);
	cr_expect_eq(it_events_sum(ev, "sync", "push", "rows"), 2, "%s", out);
	cr_expect(it_event_find(ev, "online", NULL, NULL), "%s", out);
	cJSON_Delete(ev);
}
