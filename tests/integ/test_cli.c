/* test_cli.c: the commands' outward behaviour: exit codes, bad config,
 * status JSON, check's problem lines, drop. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/it.h"

static struct it_env env;

static void fini(void)
{
	it_teardown(&env);
}

TestSuite(cli, .fini = fini, .timeout = 120);

Test(cli, a_bad_config_exits_2_naming_file_line_key_and_allowed_values)
{
	char out[4096];
	it_setup(&env, "badconf");
	it_write_conf(&env, "fast", NULL);
	cr_assert_eq(it_bridge(&env, "status", out, sizeof out), 2);
	char errpath[700];
	snprintf(errpath, sizeof errpath, "%s/status.err", env.dir);
	FILE *f = fopen(errpath, "r");
	cr_assert(f);
	char line[2048] = "";
	cr_assert(fgets(line, sizeof line, f));
	fclose(f);
	cr_assert(strstr(line, "bridge.conf:5") && strstr(line, "mode") && strstr(line, "realtime"),
	          "message lacks file, line, key or allowed values: %s", line);
	cr_assert(!strstr(line, "secret-pw"));
}

Test(cli, status_prints_the_state_as_json)
{
	char out[4096];
	it_setup(&env, "status");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY)");
	it_write_conf(&env, "manual", NULL);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	cr_assert_eq(it_bridge(&env, "status", out, sizeof out), 0);
	const char *keys[] = {"\"online\":true", "\"applied_lsn\":\"", "\"slot_lag_bytes\":",
	                      "\"pending_local\":0", "\"conflicts_unresolved\":0", "\"last_sync\":\""};
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
		cr_assert(strstr(out, keys[i]), "status lacks %s: %s", keys[i], out);
	cr_assert(!strstr(out, "secret-pw"), "status shows the password: %s", out);
}

Test(cli, check_reports_a_table_without_primary_key_with_its_fix)
{
	char out[4096];
	it_setup(&env, "check");
	it_sql(&env, "CREATE TABLE good (id int PRIMARY KEY)");
	it_sql(&env, "CREATE TABLE nokey (id int)");
	it_write_conf(&env, "manual", "[table public.good]\n[table public.nokey]\n");
	cr_assert_eq(it_bridge(&env, "check", out, sizeof out), 1, "%s", out);
	cr_assert(strstr(out, "\"public.nokey\" has no primary key") && strstr(out, "ADD PRIMARY KEY"), "%s", out);
	cr_assert(!strstr(out, "\"public.good\""), "%s", out);
	it_write_conf(&env, "manual", "[table public.good]\n");
	cr_assert_eq(it_bridge(&env, "check", out, sizeof out), 0, "%s", out);
	cr_assert(strstr(out, "ok:"), "%s", out);
	/* init refuses the keyless table too */
	it_write_conf(&env, "manual", "[table public.nokey]\n");
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 1);
}

Test(cli, drop_removes_slot_and_bridge_tables_but_keeps_user_rows)
{
	it_setup(&env, "drop");
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY)");
	it_sql(&env, "INSERT INTO t VALUES (1), (2)");
	it_write_conf(&env, "manual", NULL);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '%s'", env.slot), 1);
	cr_assert_eq(it_bridge(&env, "drop", NULL, 0), 0);
	cr_assert_eq(it_sql_int(&env, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '%s'", env.slot), 0);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM sqlite_master WHERE name LIKE '\\_pgsqlite\\_%' ESCAPE '\\'"), 0);
	cr_assert_eq(it_sqlite_int(&env, "SELECT count(*) FROM t"), 2);
}

Test(cli, unknown_command_and_option_exit_2_and_help_exits_0)
{
	it_setup(&env, "usage");
	it_write_conf(&env, "manual", NULL);
	cr_assert_eq(it_bridge(&env, "frobnicate", NULL, 0), 2);
	cr_assert_eq(it_bridge(&env, "--help", NULL, 0), 0);
	cr_assert_eq(it_bridge(&env, "--version", NULL, 0), 0);
}
