/* test_cfg.c: unit tests of config/: parsing, defaults, environment
 * overrides, error messages, password masking. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../config/cfg.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

static char dir[4096];
static char path[4200];

static void make_dir(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(dir, sizeof dir, "%s/test-cfg-XXXXXX", base && *base ? base : P_tmpdir);
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/app.conf", dir);
}

static void remove_dir(void)
{
	char p[4200];

	unlink(path);
	snprintf(p, sizeof p, "%s/round.conf", dir);
	unlink(p);
	rmdir(dir);
#if defined(__SANITIZE_ADDRESS__)
	/* Criterion ignores a worker's exit status and fini assertions:
	 * crash the teardown so a leak fails the run. */
	if (__lsan_do_recoverable_leak_check())
		abort();
#endif
}

TestSuite(cfg, .init = make_dir, .fini = remove_dir);

static void write_file(const char *file, const char *text)
{
	FILE *f = fopen(file, "w");

	cr_assert_not_null(f);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

static int load(const char *text, struct cfg *c, struct cfg_error *e)
{
	write_file(path, text);
	return cfg_load(path, c, e);
}

static char *printed(const struct cfg *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert_not_null(f);
	cfg_print(c, f);
	fclose(f);
	return buf;
}

static const char contract_example[] =
	"[bridge]\n"
	"postgres = postgresql://bridge:secret@localhost:5432/app   ; URI or key=value conninfo\n"
	"sqlite   = ./app.db\n"
	"slot     = app_client_1          ; slot name; also names the replication origin\n"
	"mode     = manual                ; manual | auto | periodic | realtime | on-reconnect\n"
	"interval = 30s                   ; periodic mode\n"
	"debounce = 500ms                 ; auto mode\n"
	"conflict = last-write-wins       ; local-wins | remote-wins | merge | keep-both\n"
	"direction = both                 ; both | pull | push\n"
	"timestamp_column = updated_at    ; used by last-write-wins where the table has it\n"
	"storage_limit = 50MB             ; size of the SQLite file\n"
	"storage_limit_action = warn      ; warn | error | prune\n"
	"log_format = text                ; text | json\n"
	"metrics = 127.0.0.1:9187         ; optional: HTTP /metrics and /healthz\n"
	"\n"
	"[table public.messages]          ; one section per synced table\n"
	"direction = both\n"
	"priority  = critical             ; critical | high | medium | low\n"
	"max_records = 1000               ; keep at most this many rows locally (prune oldest)\n"
	"order_column = created_at        ; what \"oldest\" means for pruning\n"
	"conflict  = keep-both            ; per-table override\n"
	"skip      = false                ; true: not synced now\n";

Test(cfg, contract_example_parses_to_the_documented_values)
{
	struct cfg c;
	struct cfg_error e;

	cr_assert_eq(load(contract_example, &c, &e), 0, "%s", e.msg);
	cr_expect_str_eq(c.path, path);
	cr_expect_str_eq(c.postgres, "postgresql://bridge:secret@localhost:5432/app");
	cr_expect_str_eq(c.sqlite, "./app.db");
	cr_expect_str_eq(c.slot, "app_client_1");
	cr_expect_eq(c.mode, CFG_MODE_MANUAL);
	cr_expect_eq(c.interval_ms, 30000);
	cr_expect_eq(c.debounce_ms, 500);
	cr_expect_eq(c.conflict, CFG_CONFLICT_LAST_WRITE_WINS);
	cr_expect_eq(c.direction, CFG_DIRECTION_BOTH);
	cr_expect_str_eq(c.timestamp_column, "updated_at");
	cr_expect_eq(c.storage_limit, 50 * 1024 * 1024);
	cr_expect_eq(c.storage_limit_action, CFG_LIMIT_WARN);
	cr_expect_eq(c.log_format, CFG_LOG_TEXT);
	cr_expect_str_eq(c.metrics, "127.0.0.1:9187");
	cr_assert_eq(c.ntables, 1);
	const struct cfg_table *t = &c.tables[0];
	cr_expect_str_eq(t->schema, "public");
	cr_expect_str_eq(t->name, "messages");
	cr_expect_eq(t->direction, CFG_DIRECTION_BOTH);
	cr_expect_eq(t->priority, CFG_PRIORITY_CRITICAL);
	cr_expect_eq(t->max_records, 1000);
	cr_expect_str_eq(t->order_column, "created_at");
	cr_expect_eq(t->conflict, CFG_CONFLICT_KEEP_BOTH);
	cr_expect_eq(t->skip, false);
	cr_expect_eq(t->line, 16);
	cfg_free(&c);
}

Test(cfg, defaults_fill_every_key_but_sqlite)
{
	struct cfg c;
	struct cfg_error e;

	cr_assert_eq(load("[bridge]\nsqlite = x.db\n[table t]\n", &c, &e), 0, "%s", e.msg);
	cr_expect_str_eq(c.postgres, "");
	cr_expect_str_eq(c.slot, "pgsqlite_bridge");
	cr_expect_eq(c.mode, CFG_MODE_MANUAL);
	cr_expect_eq(c.interval_ms, 30000);
	cr_expect_eq(c.debounce_ms, 500);
	cr_expect_eq(c.conflict, CFG_CONFLICT_LAST_WRITE_WINS);
	cr_expect_eq(c.direction, CFG_DIRECTION_BOTH);
	cr_expect_str_eq(c.timestamp_column, "updated_at");
	cr_expect_eq(c.storage_limit, 0);
	cr_expect_eq(c.storage_limit_action, CFG_LIMIT_WARN);
	cr_expect_eq(c.log_format, CFG_LOG_TEXT);
	cr_expect_null(c.metrics);
	cr_assert_eq(c.ntables, 1);
	cr_expect_str_eq(c.tables[0].schema, "public");
	cr_expect_str_eq(c.tables[0].name, "t");
	cr_expect_eq(c.tables[0].direction, CFG_DIRECTION_INHERIT);
	cr_expect_eq(c.tables[0].conflict, CFG_CONFLICT_INHERIT);
	cr_expect_eq(c.tables[0].priority, CFG_PRIORITY_MEDIUM);
	cr_expect_eq(c.tables[0].max_records, 0);
	cr_expect_null(c.tables[0].order_column);
	cr_expect_eq(c.tables[0].skip, false);
	cfg_free(&c);
}

Test(cfg, durations_take_ms_s_m_h_and_a_bare_number_is_seconds)
{
	static const struct {
		const char *in;
		int64_t ms;
	} rows[] = {
		{ "500ms", 500 }, { "30s", 30000 }, { "5m", 300000 }, { "2h", 7200000 },
		{ "30", 30000 },  { "0", 0 },       { "10 s", 10000 }, { "1MS", 1 },
		{ "3H", 10800000 },
	};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		int64_t ms = -1;
		cr_expect_eq(cfg_parse_duration(rows[i].in, &ms), 0, "'%s'", rows[i].in);
		cr_expect_eq(ms, rows[i].ms, "'%s' gave %lld", rows[i].in, (long long)ms);
	}
}

Test(cfg, bad_durations_are_refused)
{
	static const char *const rows[] = {
		"", "s", "-5s", "+5s", "1.5s", "5d", "5 sec", "ms5", "99999999999999999999",
		"9223372036854775807h", " 5s", "5s5",
	};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		int64_t ms = 0;
		cr_expect_eq(cfg_parse_duration(rows[i], &ms), -1, "'%s' was accepted", rows[i]);
	}
	int64_t ms;
	cr_expect_eq(cfg_parse_duration(NULL, &ms), -1);
}

Test(cfg, sizes_take_kb_mb_gb_in_any_case_and_a_bare_number_is_bytes)
{
	static const struct {
		const char *in;
		int64_t bytes;
	} rows[] = {
		{ "512", 512 },       { "64KB", 65536 },          { "64kb", 65536 },
		{ "50MB", 52428800 }, { "50mb", 52428800 },       { "50Mb", 52428800 },
		{ "2GB", 2147483648LL }, { "0", 0 },              { "1 gb", 1073741824 },
	};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		int64_t b = -1;
		cr_expect_eq(cfg_parse_size(rows[i].in, &b), 0, "'%s'", rows[i].in);
		cr_expect_eq(b, rows[i].bytes, "'%s' gave %lld", rows[i].in, (long long)b);
	}
}

Test(cfg, bad_sizes_are_refused)
{
	static const char *const rows[] = {
		"", "MB", "-1MB", "1.5GB", "5TB", "5K", "5 bytes", "10000000000GB", "5MBx",
	};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		int64_t b = 0;
		cr_expect_eq(cfg_parse_size(rows[i], &b), -1, "'%s' was accepted", rows[i]);
	}
}

Test(cfg, environment_overrides_win_over_the_file)
{
	struct cfg c;
	struct cfg_error e;

	setenv("PGSQLITE_BRIDGE_MODE", "realtime", 1);
	setenv("PGSQLITE_BRIDGE_STORAGE_LIMIT_ACTION", "prune", 1);
	setenv("PGSQLITE_BRIDGE_INTERVAL", "2m", 1);
	setenv("PGSQLITE_BRIDGE_METRICS", "", 1);
	int rc = load("[bridge]\nsqlite = x.db\nmode = periodic\ninterval = 5s\n"
		      "metrics = 127.0.0.1:9187\n", &c, &e);
	unsetenv("PGSQLITE_BRIDGE_MODE");
	unsetenv("PGSQLITE_BRIDGE_STORAGE_LIMIT_ACTION");
	unsetenv("PGSQLITE_BRIDGE_INTERVAL");
	unsetenv("PGSQLITE_BRIDGE_METRICS");
	cr_assert_eq(rc, 0, "%s", e.msg);
	cr_expect_eq(c.mode, CFG_MODE_REALTIME);
	cr_expect_eq(c.storage_limit_action, CFG_LIMIT_PRUNE);
	cr_expect_eq(c.interval_ms, 120000);
	cr_expect_null(c.metrics, "an empty PGSQLITE_BRIDGE_METRICS turns metrics off");
	cfg_free(&c);
}

Test(cfg, environment_can_supply_the_required_sqlite_key)
{
	struct cfg c;
	struct cfg_error e;

	setenv("PGSQLITE_BRIDGE_SQLITE", "/data/app.db", 1);
	int rc = load("[bridge]\nmode = auto\n", &c, &e);
	unsetenv("PGSQLITE_BRIDGE_SQLITE");
	cr_assert_eq(rc, 0, "%s", e.msg);
	cr_expect_str_eq(c.sqlite, "/data/app.db");
	cfg_free(&c);
}

Test(cfg, a_bad_environment_value_names_the_variable)
{
	struct cfg c;
	struct cfg_error e;

	setenv("PGSQLITE_BRIDGE_MODE", "x", 1);
	int rc = load("[bridge]\nsqlite = x.db\n", &c, &e);
	unsetenv("PGSQLITE_BRIDGE_MODE");
	cr_assert_eq(rc, -1);
	cr_expect_str_eq(e.msg, "environment PGSQLITE_BRIDGE_MODE: 'x' is not allowed "
				"(allowed: manual, auto, periodic, realtime, on-reconnect)");
	cr_expect_null(c.path, "a failed load leaves nothing to free");
	cr_expect_null(c.tables);

	setenv("PGSQLITE_BRIDGE_STORAGE_LIMIT", "lots", 1);
	rc = load("[bridge]\nsqlite = x.db\n", &c, &e);
	unsetenv("PGSQLITE_BRIDGE_STORAGE_LIMIT");
	cr_assert_eq(rc, -1);
	cr_expect(strstr(e.msg, "environment PGSQLITE_BRIDGE_STORAGE_LIMIT: 'lots' is not a size"),
		  "%s", e.msg);
}

struct bad_row {
	const char *text;
	const char *expect; /* substring of the message */
};

static const struct bad_row bad_rows[] = {
	{ "[bridge]\nsqlite = a.db\nmode = fast\n",
	  "app.conf:3: key 'mode' in [bridge]: 'fast' is not allowed (allowed: manual, auto, "
	  "periodic, realtime, on-reconnect)" },
	{ "[bridge]\nmodes = auto\n",
	  "app.conf:2: unknown key 'modes' in [bridge] (allowed: postgres, sqlite, slot, mode, "
	  "interval, debounce, conflict, direction, timestamp_column, storage_limit, "
	  "storage_limit_action, log_format, metrics)" },
	{ "[bridge]\nsqlite = a.db\n[foo]\n",
	  "app.conf:3: unknown section [foo] (allowed: [bridge], [table schema.name])" },
	{ "[bridge]\nsqlite = a.db\nsqlite = b.db\n",
	  "app.conf:3: duplicate key 'sqlite' in [bridge] (first at line 2)" },
	{ "[bridge]\nsqlite = a.db\n[table t]\n[table public.t]\n",
	  "app.conf:4: duplicate section [table public.t] (table public.t, first at line 3)" },
	{ "[bridge]\nsqlite = a.db\n[bridge]\n",
	  "app.conf:3: duplicate section [bridge] (first at line 1)" },
	{ "[bridge]\nsqlite = a.db\nslot = App-1\n",
	  "app.conf:3: key 'slot' in [bridge]: 'App-1' is not a valid replication slot name "
	  "(allowed: 1 to 63 lower-case letters, digits and underscores)" },
	{ "[bridge]\nsqlite = a.db\n"
	  "slot = a123456789012345678901234567890123456789012345678901234567890123\n",
	  "app.conf:3: key 'slot' in [bridge]: 'a1234" },
	{ "[bridge]\nsqlite = a.db\ninterval = 10x\n",
	  "app.conf:3: key 'interval' in [bridge]: '10x' is not a duration (allowed: " },
	{ "[bridge]\nsqlite = a.db\ninterval = 0s\n",
	  "app.conf:3: key 'interval' in [bridge]: '0s' is not allowed (allowed: more than 0" },
	{ "[bridge]\nsqlite = a.db\nstorage_limit = 5TB\n",
	  "app.conf:3: key 'storage_limit' in [bridge]: '5TB' is not a size (allowed: " },
	{ "[bridge]\nsqlite = a.db\nstorage_limit_action = delete\n",
	  "app.conf:3: key 'storage_limit_action' in [bridge]: 'delete' is not allowed "
	  "(allowed: warn, error, prune)" },
	{ "[bridge]\nsqlite = a.db\nlog_format = xml\n",
	  "app.conf:3: key 'log_format' in [bridge]: 'xml' is not allowed (allowed: text, json)" },
	{ "[bridge]\nsqlite = a.db\nconflict = inherit\n",
	  "app.conf:3: key 'conflict' in [bridge]: 'inherit' is not allowed (allowed: "
	  "last-write-wins, local-wins, remote-wins, merge, keep-both)" },
	{ "[bridge]\nsqlite = a.db\ndirection = sideways\n",
	  "app.conf:3: key 'direction' in [bridge]: 'sideways' is not allowed (allowed: both, "
	  "pull, push)" },
	{ "[bridge]\nsqlite = a.db\nmetrics = localhost\n",
	  "app.conf:3: key 'metrics' in [bridge]: 'localhost' is not a valid address" },
	{ "[bridge]\nsqlite = a.db\nmetrics = localhost:0\n",
	  "app.conf:3: key 'metrics' in [bridge]: 'localhost:0' is not a valid address "
	  "(allowed: host:port with a port from 1 to 65535" },
	{ "[bridge]\nsqlite = a.db\nmetrics = ::1:65536\n", "app.conf:3: key 'metrics'" },
	{ "[bridge]\nsqlite = a.db\nmetrics = ::1:9187\n", "app.conf:3: key 'metrics'" },
	{ "[bridge]\nsqlite =\n",
	  "app.conf:2: key 'sqlite' in [bridge]: an empty value is not allowed" },
	{ "[bridge]\nmode = auto\n", "app.conf: missing required key 'sqlite' in [bridge]" },
	{ "", "app.conf: missing required key 'sqlite' in [bridge]" },
	{ "sqlite = a.db\n", "app.conf:1: key 'sqlite' outside any section" },
	{ "[bridge]\nsqlite = a.db\njust some words\n",
	  "app.conf:3: expected 'key = value' or a section header" },
	{ "[bridge\nsqlite = a.db\n", "app.conf:1: section header without a closing ']'" },
	{ "[bridge] extra\n", "app.conf:1: unexpected text after ']'" },
	{ "[bridge]\nsqlite = a.db\n[table]\n", "app.conf:3: section [table] has an empty schema or table name" },
	{ "[bridge]\nsqlite = a.db\n[table public.]\n",
	  "app.conf:3: section [table public.] has an empty schema or table name" },
	{ "[bridge]\nsqlite = a.db\n[table .t]\n",
	  "app.conf:3: section [table .t] has an empty schema or table name" },
	{ "[bridge]\nsqlite = a.db\n[table t]\npriority = urgent\n",
	  "app.conf:4: key 'priority' in [table t]: 'urgent' is not allowed (allowed: critical, "
	  "high, medium, low)" },
	{ "[bridge]\nsqlite = a.db\n[table t]\nmax_records = -1\n",
	  "app.conf:4: key 'max_records' in [table t]: '-1' is not a non-negative integer" },
	{ "[bridge]\nsqlite = a.db\n[table t]\nmax_records = 10k\n",
	  "app.conf:4: key 'max_records' in [table t]: '10k' is not a non-negative integer" },
	{ "[bridge]\nsqlite = a.db\n[table t]\nskip = maybe\n",
	  "app.conf:4: key 'skip' in [table t]: 'maybe' is not allowed (allowed: true, false, "
	  "yes, no, on, off, 1, 0)" },
	{ "[bridge]\nsqlite = a.db\n[table t]\nconflict = newest\n",
	  "app.conf:4: key 'conflict' in [table t]: 'newest' is not allowed (allowed: inherit, "
	  "last-write-wins, local-wins, remote-wins, merge, keep-both)" },
	{ "[bridge]\nsqlite = a.db\n[table s.t]\ntimestamp_column = x\n",
	  "app.conf:4: unknown key 'timestamp_column' in [table s.t] (allowed: direction, "
	  "priority, max_records, order_column, conflict, skip)" },
	{ "[bridge]\nsqlite = a.db\n[table t]\nskip = no\nskip = yes\n",
	  "app.conf:5: duplicate key 'skip' in [table t] (first at line 4)" },
	{ "[bridge]\nsqlite = a.db\npostgres = host=db oops\n",
	  "app.conf:3: key 'postgres' in [bridge]: the value (not shown: it may hold a password) "
	  "is not a postgresql:// URI or a key=value conninfo: setting 2" },
	{ "[bridge]\nsqlite = a.db\npostgres = host=db password='open\n",
	  "app.conf:3: key 'postgres' in [bridge]: the value (not shown" },
	{ "[bridge]\nsqlite = a.db\ntimestamp_column =\n",
	  "app.conf:3: key 'timestamp_column' in [bridge]: an empty value is not allowed" },
	{ "[bridge]\nsqlite = a.db\n  mode = fast\n", "app.conf:3: key 'mode' in [bridge]: 'fast'" },
	{ "[bridge]\nsqlite = a.db\npostgres = postgresql://u:\npw@db:5432/app\n",
	  "app.conf:4: unknown key in [bridge], not shown as it is not a plain name (a value "
	  "split over two lines?) (allowed: postgres, sqlite, " },
	{ "[bridge]\nsqlite = a.db\npostgres = postgresql://a:b@/x?bad=\n",
	  "app.conf:3: key 'postgres' in [bridge]: libpq cannot read the value (not shown: it may "
	  "hold a password): invalid URI query parameter: (not shown) (allowed: a postgresql:// URI "
	  "or key=value settings with libpq's keywords (host, port, dbname, user, password, "
	  "sslmode, ...))" },
	{ "[bridge]\nsqlite = a.db\npostgres = host=db dbnam=app\n",
	  "app.conf:3: key 'postgres' in [bridge]: libpq cannot read the value (not shown: it may "
	  "hold a password): invalid connection option (not shown) (allowed: " },
	{ "[bridge]\nsqlite = a.db\n\n  postgres = postgres://u@h:5432/app?sslmode=require&port\n",
	  "app.conf:4: key 'postgres' in [bridge]: libpq cannot read the value (not shown" },
};

Test(cfg, bad_inputs_fail_with_file_line_key_and_what_is_allowed)
{
	for (size_t i = 0; i < sizeof bad_rows / sizeof bad_rows[0]; i++) {
		struct cfg c;
		struct cfg_error e;
		int rc = load(bad_rows[i].text, &c, &e);
		size_t n = strlen(e.msg);

		cr_expect_eq(rc, -1, "row %zu was accepted", i);
		cr_expect_not_null(strstr(e.msg, bad_rows[i].expect),
				   "row %zu: message '%s' lacks '%s'", i, e.msg, bad_rows[i].expect);
		cr_expect(n > 0 && e.msg[n - 1] != '.', "row %zu ends with a period", i);
		cr_expect_null(c.path, "row %zu: a failed load leaves nothing to free", i);
		if (rc == 0)
			cfg_free(&c);
	}
}

Test(cfg, unknown_key_names_file_line_and_allowed_keys)
{
	struct cfg c;
	struct cfg_error e;
	char want[5000];

	cr_assert_eq(load("[bridge]\nsqlite = a.db\n\n; comment\nfrobnicate = 1\n", &c, &e), -1);
	snprintf(want, sizeof want, "%s:5: unknown key 'frobnicate' in [bridge] (allowed: "
		 "postgres, sqlite, slot, mode, interval, debounce, conflict, direction, "
		 "timestamp_column, storage_limit, storage_limit_action, log_format, metrics)",
		 path);
	cr_expect_str_eq(e.msg, want);
}

Test(cfg, missing_file_says_it_cannot_be_read)
{
	struct cfg c;
	struct cfg_error e;
	char want[5000];

	snprintf(want, sizeof want, "%s/nope.conf", dir);
	cr_assert_eq(cfg_load(want, &c, &e), -1);
	strcat(want, ": cannot read: No such file or directory");
	cr_expect_str_eq(e.msg, want);
	cr_expect_null(c.path);

	cr_assert_eq(cfg_load(dir, &c, &e), -1, "a directory is not a config file");
	cr_expect_not_null(strstr(e.msg, ": cannot read: Is a directory"), "%s", e.msg);
}

/* Bad configs whose postgres value holds the password "secret". */
static const char *const secret_rows[] = {
	"[bridge]\nsqlite = a.db\npostgres = host=db password=secret oops\n",
	"[bridge]\nsqlite = a.db\npostgres = host=db password='secret\n",
	"[bridge]\nsqlite = a.db\npostgres = secret\n",
	"[bridge]\npostgres = postgresql://bridge:secret@h/db\npostgres = postgresql://bridge:secret@h/db\n",
	"[bridge]\npostgre = postgresql://bridge:secret@h/db\n",
	"postgres = postgresql://bridge:secret@h/db\n",
	"[bridge]\npostgresql://bridge:secret@h/db\n",
	"[bridge]\npassword=secret\n",
	"[bridge]\nsecret\n",
	"[table t]\npostgres = password=secret\n",
	"[bridge]\npostgres = postgresql://bridge:secret@h/db\n",
	"[bridge]\npostgres = postgresql://bridge:secret@h/"
	"dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
	"dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
	"dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd\n",
	"[bridge]\nsqlite = a.db\npostgres = postgresql://bridge:secret@h/db\nmode = x\n",
	"[bridge]\nsqlite = a.db\npostgres = postgresql://bridge:\nsecret@localhost:5432/app\n",
	"[bridge]\nsqlite = a.db\npostgres = host=db password=\n  secret port=5432\n",
	"secret@localhost:5432/app\n",
	"[bridge]\nsqlite = a.db\npostgres = postgresql://bridge:se%zzcret@h/db\n",
	"[bridge]\nsqlite = a.db\npostgres = postgresql://bridge:secret@[::1\n",
	"[bridge]\nsqlite = a.db\npostgres = postgresql://bridge:b@h/db?secret=1\n",
	"[bridge]\nsqlite = a.db\npostgres = host=db secret=1\n",
};

Test(cfg, the_password_never_appears_in_an_error_message)
{
	for (size_t i = 0; i < sizeof secret_rows / sizeof secret_rows[0]; i++) {
		struct cfg c;
		struct cfg_error e;

		cr_expect_eq(load(secret_rows[i], &c, &e), -1, "row %zu was accepted", i);
		cr_expect_null(strstr(e.msg, "secret"), "row %zu: '%s'", i, e.msg);
	}
	struct cfg c;
	struct cfg_error e;
	setenv("PGSQLITE_BRIDGE_POSTGRES", "host=db password=secret oops", 1);
	int rc = load("[bridge]\nsqlite = a.db\n", &c, &e);
	unsetenv("PGSQLITE_BRIDGE_POSTGRES");
	cr_assert_eq(rc, -1);
	cr_expect_not_null(strstr(e.msg, "environment PGSQLITE_BRIDGE_POSTGRES: "), "%s", e.msg);
	cr_expect_null(strstr(e.msg, "secret"), "%s", e.msg);
}

Test(cfg, a_postgres_value_libpq_cannot_parse_is_refused_from_the_environment_too)
{
	struct cfg c;
	struct cfg_error e;
	setenv("PGSQLITE_BRIDGE_POSTGRES", "postgresql://a:b@/x?bad=", 1);
	int rc = load("[bridge]\nsqlite = a.db\n", &c, &e);
	unsetenv("PGSQLITE_BRIDGE_POSTGRES");
	cr_assert_eq(rc, -1);
	cr_expect_not_null(strstr(e.msg, "environment PGSQLITE_BRIDGE_POSTGRES: libpq cannot read"),
	                   "%s", e.msg);
}

Test(cfg, values_libpq_reads_are_accepted)
{
	static const char *const ok[] = {
		"postgresql://bridge:secret@localhost:5432/app",
		"postgres://u@h/db?sslmode=require&connect_timeout=5",
		"host=db port=5433 dbname=app user=u password='a b'",
		"postgresql:///app?host=/var/run/postgresql",
	};
	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
		char text[300];
		struct cfg c;
		struct cfg_error e;
		snprintf(text, sizeof text, "[bridge]\nsqlite = a.db\npostgres = %s\n", ok[i]);
		cr_expect_eq(load(text, &c, &e), 0, "%s: %s", ok[i], e.msg);
		cfg_free(&c);
	}
}

Test(cfg, print_masks_the_password_and_shows_every_key)
{
	struct cfg c;
	struct cfg_error e;

	cr_assert_eq(load(contract_example, &c, &e), 0, "%s", e.msg);
	char *out = printed(&c);
	cr_expect_null(strstr(out, "secret"), "%s", out);
	cr_expect_not_null(strstr(out, "[bridge]\npostgres = postgresql://bridge:********@localhost:5432/app\n"
				       "sqlite = ./app.db\nslot = app_client_1\nmode = manual\n"
				       "interval = 30s\ndebounce = 500ms\nconflict = last-write-wins\n"
				       "direction = both\ntimestamp_column = updated_at\n"
				       "storage_limit = 50MB\nstorage_limit_action = warn\n"
				       "log_format = text\nmetrics = 127.0.0.1:9187\n"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "\n[table public.messages]\ndirection = both\n"
				       "priority = critical\nmax_records = 1000\n"
				       "order_column = created_at\nconflict = keep-both\nskip = false\n"),
			   "%s", out);
	free(out);
	cfg_free(&c);

	setenv("PGSQLITE_BRIDGE_POSTGRES", "host=db password = 'my secret' user=bridge", 1);
	int rc = load("[bridge]\nsqlite = a.db\n", &c, &e);
	unsetenv("PGSQLITE_BRIDGE_POSTGRES");
	cr_assert_eq(rc, 0, "%s", e.msg);
	out = printed(&c);
	cr_expect_null(strstr(out, "secret"), "%s", out);
	cr_expect_not_null(strstr(out, "postgres = host=db password = ******** user=bridge\n"),
			   "%s", out);
	free(out);
	cfg_free(&c);
}

Test(cfg, printed_config_loads_back_to_the_same_values)
{
	struct cfg a, b;
	struct cfg_error e;
	char round[4200];

	cr_assert_eq(load("[bridge]\nsqlite = a.db\npostgres = host=db port=5433\n"
			  "mode = on-reconnect\ninterval = 90s\ndebounce = 1500ms\n"
			  "storage_limit = 1536\nlog_format = json\n"
			  "[table t]\nmax_records = 7\norder_column = at\nskip = yes\n[table s.u]\n"
			  "direction = pull\nconflict = merge\norder_column = id\n",
			  &a, &e), 0, "%s", e.msg);
	char *out = printed(&a);
	snprintf(round, sizeof round, "%s/round.conf", dir);
	write_file(round, out);
	free(out);
	cr_assert_eq(cfg_load(round, &b, &e), 0, "%s", e.msg);
	cr_expect_str_eq(b.postgres, "host=db port=5433");
	cr_expect_eq(b.mode, CFG_MODE_ON_RECONNECT);
	cr_expect_eq(b.interval_ms, 90000);
	cr_expect_eq(b.debounce_ms, 1500);
	cr_expect_eq(b.storage_limit, 1536);
	cr_expect_eq(b.log_format, CFG_LOG_JSON);
	cr_expect_null(b.metrics);
	cr_assert_eq(b.ntables, 2);
	cr_expect_eq(b.tables[0].max_records, 7);
	cr_expect_eq(b.tables[0].skip, true);
	cr_expect_str_eq(b.tables[0].order_column, "at");
	cr_expect_eq(b.tables[0].direction, CFG_DIRECTION_INHERIT);
	cr_expect_str_eq(b.tables[1].schema, "s");
	cr_expect_str_eq(b.tables[1].name, "u");
	cr_expect_eq(b.tables[1].direction, CFG_DIRECTION_PULL);
	cr_expect_eq(b.tables[1].conflict, CFG_CONFLICT_MERGE);
	cr_expect_str_eq(b.tables[1].order_column, "id");
	cfg_free(&a);
	cfg_free(&b);
}

Test(cfg, mask_conninfo_hides_uri_passwords)
{
	static const struct {
		const char *in, *out;
	} rows[] = {
		{ "postgresql://bridge:secret@localhost:5432/app",
		  "postgresql://bridge:********@localhost:5432/app" },
		{ "postgres://bridge:secret@db/app?sslmode=require",
		  "postgres://bridge:********@db/app?sslmode=require" },
		{ "postgresql://bridge@db/app", "postgresql://bridge@db/app" },
		{ "postgresql://db:5432/app", "postgresql://db:5432/app" },
		{ "postgresql://bridge:@db/app", "postgresql://bridge:@db/app" },
		{ "postgresql://bridge:se@c/ret@db/app", "postgresql://bridge:********@db/app" },
		{ "postgresql://bridge:sec?ret@db/app", "postgresql://bridge:********@db/app" },
		{ "postgresql://db/app?user=bridge&password=secret&sslmode=require",
		  "postgresql://db/app?user=bridge&password=********&sslmode=require" },
		{ "POSTGRESQL://u:secret@db", "POSTGRESQL://u:********@db" },
		{ "", "" },
	};
	char buf[256];

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		cfg_mask_conninfo(rows[i].in, buf, sizeof buf);
		cr_expect_str_eq(buf, rows[i].out, "row %zu", i);
	}
}

Test(cfg, mask_conninfo_hides_key_value_passwords_quoted_or_not)
{
	static const struct {
		const char *in, *out;
	} rows[] = {
		{ "host=db password=secret user=bridge", "host=db password=******** user=bridge" },
		{ "host=db password = 'my secret' dbname=app",
		  "host=db password = ******** dbname=app" },
		{ "password='it\\'s secret'", "password=********" },
		{ "password=sec\\ ret port=5432", "password=******** port=5432" },
		{ "  PASSWORD=secret  ", "  PASSWORD=********  " },
		{ "host=db password=''", "host=db password=''" },
		{ "options='-c password=x' host=db", "options='-c password=x' host=db" },
		{ "host=db password='secret", "host=db ********" },
		{ "host=db password secret", "host=db ********" },
		{ "host=db", "host=db" },
	};
	char buf[256];

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		cfg_mask_conninfo(rows[i].in, buf, sizeof buf);
		cr_expect_str_eq(buf, rows[i].out, "row %zu", i);
	}
}

Test(cfg, mask_conninfo_truncates_to_the_buffer)
{
	char buf[20];

	memset(buf, 'x', sizeof buf);
	cfg_mask_conninfo("postgresql://bridge:secret@localhost/app", buf, sizeof buf);
	cr_expect_str_eq(buf, "postgresql://bridge");
	cfg_mask_conninfo("host=db password=secret", buf, 12);
	cr_expect_str_eq(buf, "host=db pas");
	buf[0] = 'x';
	cfg_mask_conninfo("host=db", buf, 0);
	cr_expect_eq(buf[0], 'x', "cap 0 writes nothing");
}

Test(cfg, tables_inherit_direction_and_conflict_from_bridge)
{
	struct cfg c;
	struct cfg_error e;

	cr_assert_eq(load("[bridge]\nsqlite = a.db\ndirection = push\nconflict = remote-wins\n"
			  "[table a]\n[table b]\ndirection = pull\nconflict = keep-both\n"
			  "[table c]\ndirection = inherit\nconflict = inherit\n",
			  &c, &e), 0, "%s", e.msg);
	cr_assert_eq(c.ntables, 3);
	cr_expect_eq(cfg_table_direction(&c, &c.tables[0]), CFG_DIRECTION_PUSH);
	cr_expect_eq(cfg_table_conflict(&c, &c.tables[0]), CFG_CONFLICT_REMOTE_WINS);
	cr_expect_eq(cfg_table_direction(&c, &c.tables[1]), CFG_DIRECTION_PULL);
	cr_expect_eq(cfg_table_conflict(&c, &c.tables[1]), CFG_CONFLICT_KEEP_BOTH);
	cr_expect_eq(cfg_table_direction(&c, &c.tables[2]), CFG_DIRECTION_PUSH);
	cr_expect_eq(cfg_table_conflict(&c, &c.tables[2]), CFG_CONFLICT_REMOTE_WINS);
	cfg_free(&c);
}

Test(cfg, table_sections_default_to_public_and_split_at_the_first_dot)
{
	struct cfg c;
	struct cfg_error e;

	cr_assert_eq(load("[bridge]\nsqlite = a.db\n[table  Events ]\n[table app.log.2024]\n"
			  "[table  sales . orders ]\n[table public.t]\n[table other.t]\n",
			  &c, &e), 0, "%s", e.msg);
	cr_assert_eq(c.ntables, 5);
	cr_expect_str_eq(c.tables[0].schema, "public");
	cr_expect_str_eq(c.tables[0].name, "Events");
	cr_expect_eq(c.tables[0].line, 3);
	cr_expect_str_eq(c.tables[1].schema, "app");
	cr_expect_str_eq(c.tables[1].name, "log.2024");
	cr_expect_str_eq(c.tables[2].schema, "sales");
	cr_expect_str_eq(c.tables[2].name, "orders");
	cr_expect_str_eq(c.tables[4].schema, "other");
	cfg_free(&c);
}

Test(cfg, many_tables_grow_the_array)
{
	char text[8192] = "[bridge]\nsqlite = a.db\n";
	struct cfg c;
	struct cfg_error e;

	for (int i = 0; i < 40; i++)
		snprintf(text + strlen(text), sizeof text - strlen(text),
			 "[table t%d]\nmax_records = %d\norder_column = at\n", i, i);
	cr_assert_eq(load(text, &c, &e), 0, "%s", e.msg);
	cr_assert_eq(c.ntables, 40);
	for (int i = 0; i < 40; i++)
		cr_expect_eq(c.tables[i].max_records, i);
	cfg_free(&c);
}

Test(cfg, comments_blanks_indentation_and_crlf_are_accepted)
{
	struct cfg c;
	struct cfg_error e;

	cr_assert_eq(load("\xEF\xBB\xBF# leading comment\r\n"
			  "[bridge] ; the main section\r\n"
			  "  sqlite = a.db   # hash comment\r\n"
			  "\tmode = auto\r\n"
			  "    ; indented comment\r\n"
			  "slot = s1#not_a_comment\r\n"
			  "debounce: 250ms\r\n"
			  "[table t] # table\r\n"
			  "  skip = ON\r\n",
			  &c, &e), -1);
	cr_expect_not_null(strstr(e.msg, "app.conf:6: key 'slot' in [bridge]: 's1#not_a_comment'"),
			   "a # without whitespace before it is part of the value: %s", e.msg);

	cr_assert_eq(load("\xEF\xBB\xBF# leading comment\r\n"
			  "[bridge] ; the main section\r\n"
			  "  sqlite = a.db   # hash comment\r\n"
			  "\tmode = auto\r\n"
			  "    ; indented comment\r\n"
			  "slot = s1 #comment\r\n"
			  "debounce: 250ms\r\n"
			  "[table t] # table\r\n"
			  "  skip = ON\r\n",
			  &c, &e), 0, "%s", e.msg);
	cr_expect_str_eq(c.sqlite, "a.db");
	cr_expect_eq(c.mode, CFG_MODE_AUTO);
	cr_expect_str_eq(c.slot, "s1");
	cr_expect_eq(c.debounce_ms, 250);
	cr_assert_eq(c.ntables, 1);
	cr_expect_eq(c.tables[0].skip, true);
	cfg_free(&c);
}

/* A "[bridge]\nsqlite = ...\n" file whose sqlite line is len characters. */
static void sqlite_line(char *text, size_t cap, size_t len, const char *eol)
{
	size_t n = (size_t)snprintf(text, cap, "[bridge]%ssqlite = ", eol);
	size_t start = n - strlen("sqlite = ");

	while (n - start < len)
		text[n++] = 'x';
	snprintf(text + n, cap - n, "%s", eol);
}

Test(cfg, a_line_at_the_reader_limit_is_read_whole)
{
	char text[512];
	struct cfg c;
	struct cfg_error e;

	sqlite_line(text, sizeof text, 197, "\r\n");
	cr_assert_eq(load(text, &c, &e), 0, "%s", e.msg);
	cr_expect_eq(strlen(c.sqlite), 197 - strlen("sqlite = "));
	cfg_free(&c);
}

Test(cfg, a_longer_line_is_an_error_naming_the_line_not_a_silent_cut)
{
	char text[1024];
	struct cfg c;
	struct cfg_error e;

	sqlite_line(text, sizeof text, 198, "\n");
	cr_assert_eq(load(text, &c, &e), -1);
	cr_expect_not_null(strstr(e.msg, "app.conf:2: line is 198 characters long, more than the "
					 "197 allowed"), "%s", e.msg);

	char big[1024] = "[bridge]\nsqlite = a.db\npostgres = postgresql://bridge:secret@localhost/";
	memset(big + strlen(big), 'd', 300);
	strcat(big, "\nmode = auto\n");
	cr_assert_eq(load(big, &c, &e), -1);
	cr_expect_not_null(strstr(e.msg, "app.conf:3: line is "), "%s", e.msg);
	cr_expect_not_null(strstr(e.msg, "PGSQLITE_BRIDGE_POSTGRES"), "%s", e.msg);
	cr_expect_null(strstr(e.msg, "secret"), "%s", e.msg);
}

Test(cfg, a_nul_byte_in_a_line_is_an_error)
{
	static const char text[] = "[bridge]\nsqlite = a\0b.db\n";
	struct cfg c;
	struct cfg_error e;
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fwrite(text, 1, sizeof text - 1, f);
	fclose(f);
	cr_assert_eq(cfg_load(path, &c, &e), -1);
	cr_expect_not_null(strstr(e.msg, "app.conf:2: line contains a NUL byte"), "%s", e.msg);
}

Test(cfg, names_of_modes_conflicts_and_directions)
{
	cr_expect_str_eq(cfg_mode_name(CFG_MODE_REALTIME), "realtime");
	cr_expect_str_eq(cfg_mode_name(CFG_MODE_ON_RECONNECT), "on-reconnect");
	cr_expect_str_eq(cfg_conflict_name(CFG_CONFLICT_LAST_WRITE_WINS), "last-write-wins");
	cr_expect_str_eq(cfg_conflict_name(CFG_CONFLICT_KEEP_BOTH), "keep-both");
	cr_expect_str_eq(cfg_conflict_name(CFG_CONFLICT_INHERIT), "inherit");
	cr_expect_str_eq(cfg_direction_name(CFG_DIRECTION_PULL), "pull");
	cr_expect_str_eq(cfg_direction_name((enum cfg_direction)42), "unknown");
}

Test(cfg, every_value_form_of_booleans_and_metrics_is_accepted)
{
	static const char *const yes[] = { "true", "yes", "on", "1", "TRUE", "Yes" };
	static const char *const no[] = { "false", "no", "off", "0", "OFF" };
	char text[256];
	struct cfg c;
	struct cfg_error e;

	for (size_t i = 0; i < sizeof yes / sizeof yes[0] + sizeof no / sizeof no[0]; i++) {
		bool want = i < sizeof yes / sizeof yes[0];
		const char *v = want ? yes[i] : no[i - sizeof yes / sizeof yes[0]];
		snprintf(text, sizeof text, "[bridge]\nsqlite = a\n[table t]\nskip = %s\n", v);
		cr_assert_eq(load(text, &c, &e), 0, "%s", e.msg);
		cr_expect_eq(c.tables[0].skip, want, "'%s'", v);
		cfg_free(&c);
	}
	cr_assert_eq(load("[bridge]\nsqlite = a\nmetrics = [::1]:65535\n", &c, &e), 0, "%s", e.msg);
	cr_expect_str_eq(c.metrics, "[::1]:65535");
	cfg_free(&c);
	cr_assert_eq(load("[bridge]\nsqlite = a\nmetrics = 9187\n", &c, &e), 0, "%s", e.msg);
	cr_expect_str_eq(c.metrics, "9187");
	cfg_free(&c);
	cr_assert_eq(load("[bridge]\nsqlite = a\nmetrics = :9187\n", &c, &e), 0, "%s", e.msg);
	cfg_free(&c);
	cr_assert_eq(load("[bridge]\nsqlite = a\nmetrics = 0\n", &c, &e), -1);
}

Test(cfg, cfg_free_is_safe_on_a_zeroed_or_freed_config)
{
	struct cfg c;
	struct cfg_error e;

	memset(&c, 0, sizeof c);
	cfg_free(&c);
	cfg_free(NULL);
	cr_assert_eq(load("[bridge]\nsqlite = a\n[table t]\n", &c, &e), 0, "%s", e.msg);
	cfg_free(&c);
	cr_expect_null(c.tables);
	cr_expect_eq(c.ntables, 0);
	cfg_free(&c);
}
