/* test_library.c: the C library the binary is built on, used in-process:
 * events reach a callback, and an embedder's merge callback settles a
 * conflict by its own rule. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../bridge/pgsqlite_bridge.h"
#include "../support/it.h"

static struct it_env env;
static char events[16384];
static int merge_calls;
static char seen_local[512], seen_remote[512];

static void fini(void)
{
	it_teardown(&env);
}

TestSuite(library, .fini = fini, .timeout = 120);

static void collect(const char *event, const char *json, void *arg)
{
	(void)event;
	(void)arg;
	strncat(events, json, sizeof events - strlen(events) - 2);
	strcat(events, "\n");
}

/* The embedder's rule: concatenate both versions of column a. */
static char *concat_rule(const char *table, const char *base, const char *local,
                         const char *remote, void *arg)
{
	(void)base;
	(void)arg;
	merge_calls++;
	snprintf(seen_local, sizeof seen_local, "%s", local ? local : "");
	snprintf(seen_remote, sizeof seen_remote, "%s", remote ? remote : "");
	cr_assert_str_eq(table, "t");
	char *out;
	cr_assert(asprintf(&out, "{\"id\": \"1\", \"a\": \"local a + remote a\"}") > 0);
	return out;
}

static struct pgsb *open_bridge(struct cfg **cfg)
{
	char err[1024];
	*cfg = pgsb_config_load(env.conf, err, sizeof err);
	cr_assert(*cfg, "%s", err);
	struct pgsb *b = pgsb_new(*cfg, err, sizeof err);
	cr_assert(b, "%s", err);
	pgsb_set_event_callback(b, collect, NULL);
	return b;
}

Test(library, a_merge_callback_settles_a_conflict_by_the_embedders_rule)
{
	struct cfg *cfg;
	it_setup(&env, "libmerge");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, a text)");
	it_sql(&env, "INSERT INTO t VALUES (1, 'base')");
	it_write_conf(&env, "manual", "conflict = local-wins\n");
	struct pgsb *b = open_bridge(&cfg);
	cr_assert_eq(pgsb_init(b), 0);
	pgsb_set_merge_callback(b, concat_rule, NULL);
	it_sqlite_exec(&env, "UPDATE t SET a = 'local a' WHERE id = 1");
	it_sql(&env, "UPDATE t SET a = 'remote a' WHERE id = 1");
	FILE *out = fopen("/dev/null", "w");
	cr_assert_eq(pgsb_sync(b, out), 0, "%s", events);
	fclose(out);
	pgsb_free(b);
	pgsb_config_free(cfg);
	cr_assert_eq(merge_calls, 1);
	cr_assert(strstr(seen_local, "local a") && strstr(seen_remote, "remote a"), "%s / %s", seen_local, seen_remote);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, a FROM t"), "1|local a + remote a\n");
	cr_assert_str_eq(it_sqlite_rows(&env, "SELECT id, a FROM t"), "1|local a + remote a\n");
	cr_assert(strstr(events, "\"event\":\"conflict\"") && strstr(events, "\"resolution\":\"merged\""), "%s", events);
	cr_assert(strstr(events, "\"event\":\"sync\""), "%s", events);
}
