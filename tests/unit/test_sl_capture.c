/* test_sl_capture.c: change capture against real files: the triggers seen
 * from a second connection (the app), the exact JSON they log, the bridge's
 * own writes staying out of the log, key and row lookups, the conflict log. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../sqlite-side/sl.h"
#include "records.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char dir[512];
static char path[600];
static struct sl_db *db;
static sqlite3 *app;

static void remove_file(const char *suffix)
{
	char p[640];

	snprintf(p, sizeof p, "%s%s", path, suffix);
	unlink(p);
}

static void setup(void)
{
	const char *base = getenv("TMPDIR");
	struct sl_err e = {0};

	if (!base || !*base)
		base = P_tmpdir;
	snprintf(dir, sizeof dir, "%s/test-slc-XXXXXX", base);
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/bridge.db", dir);
	cr_assert_eq(sl_open(path, &db, &e), 0, "sl_open: %s", e.msg);
	cr_assert_eq(sqlite3_open(path, &app), SQLITE_OK);
	sqlite3_busy_timeout(app, 5000);
}

static void teardown(void)
{
	sqlite3_close(app);
	app = NULL;
	sl_close(db);
	db = NULL;
	remove_file("");
	remove_file("-wal");
	remove_file("-shm");
	remove_file("-journal");
	rmdir(dir);
}

TestSuite(sl_capture, .init = setup, .fini = teardown);

/* ---- helpers ---- */


static struct dec_record rec(enum dec_action action, const char *table)
{
	return (struct dec_record){.action = action, .schema = S("public"), .table = S(table)};
}

/* Runs sql as the app, on the second connection. */
static void app_exec(const char *sql)
{
	char *m = NULL;
	int rc = sqlite3_exec(app, sql, NULL, NULL, &m);

	cr_assert_eq(rc, SQLITE_OK, "app: %s: %s", sql, m ? m : "");
	sqlite3_free(m);
}

static void install(const char *table)
{
	struct sl_err e = {0};

	cr_assert_eq(sl_capture_install(db, table, &e), 0, "sl_capture_install(%s): %s", table, e.msg);
}

static void begin(void)
{
	struct sl_err e = {0};

	cr_assert_eq(sl_begin(db, &e), 0, "sl_begin: %s", e.msg);
}

static void commit(void)
{
	struct sl_err e = {0};

	cr_assert_eq(sl_commit(db, &e), 0, "sl_commit: %s", e.msg);
}

static void apply(const struct dec_record *r)
{
	struct sl_err e = {0};

	cr_assert_eq(sl_apply(db, r, &e), 0, "sl_apply: %s", e.msg);
}

/* First column of the first row of sql, read by the app; "(none)" /
 * "(null)" when there is no row / a NULL. */
static void expect(const char *sql, const char *want)
{
	char got[8192];
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(app, sql, -1, &st, NULL);

	cr_assert_eq(rc, SQLITE_OK, "prepare %s: %s", sql, sqlite3_errmsg(app));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(st, 0);
		snprintf(got, sizeof got, "%s", v ? (const char *)v : "(null)");
	} else {
		cr_assert_eq(rc, SQLITE_DONE, "step %s: %s", sql, sqlite3_errmsg(app));
		snprintf(got, sizeof got, "(none)");
	}
	sqlite3_finalize(st);
	cr_assert_str_eq(got, want, "%s\n  got:  %s\n  want: %s", sql, got, want);
}

/* The whole change log, one "table|op|pk|new|old" line per row. */
#define LOG_SQL                                                                           \
	"SELECT ifnull(group_concat(x, char(10)), '(empty)') FROM (SELECT table_name || '|' ||" \
	" op || '|' || pk || '|' || ifnull(new_row, 'NULL') || '|' || ifnull(old_row, 'NULL')"  \
	" AS x FROM _pgsqlite_changes ORDER BY seq)"

static void expect_log(const char *want)
{
	expect(LOG_SQL, want);
}

/* The fixture table of most tests, captured. */
static void mixed_table(void)
{
	app_exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, r REAL, b BLOB, n TEXT)");
	install("t");
}

static const char ROW1[] = "{\"id\":1,\"v\":\"a\",\"r\":\"0x1.999999999999ap-4\",\"b\":\"00ff\",\"n\":null}";

/* ---- capture ---- */

Test(sl_capture, an_app_insert_is_logged_with_the_exact_json)
{
	mixed_table();
	app_exec("INSERT INTO t VALUES (1, 'a', 0.1, x'00FF', NULL)");
	expect("SELECT new_row FROM _pgsqlite_changes", ROW1);
	expect_log("t|I|{\"id\":1}|{\"id\":1,\"v\":\"a\",\"r\":\"0x1.999999999999ap-4\",\"b\":\"00ff\","
	           "\"n\":null}|NULL");
	expect("SELECT changed_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T"
	       "[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z' FROM _pgsqlite_changes",
	       "1");
}

Test(sl_capture, an_app_update_logs_the_old_key_and_both_images)
{
	mixed_table();
	app_exec("INSERT INTO t VALUES (1, 'a', 0.1, x'00FF', NULL)");
	app_exec("UPDATE t SET v = 'it''s \"q\"', n = 'x' WHERE id = 1");
	expect("SELECT op || pk FROM _pgsqlite_changes WHERE seq = 2", "U{\"id\":1}");
	expect("SELECT new_row FROM _pgsqlite_changes WHERE seq = 2",
	       "{\"id\":1,\"v\":\"it's \\\"q\\\"\",\"r\":\"0x1.999999999999ap-4\",\"b\":\"00ff\","
	       "\"n\":\"x\"}");
	expect("SELECT old_row FROM _pgsqlite_changes WHERE seq = 2", ROW1);
}

Test(sl_capture, an_app_delete_logs_the_key_and_the_old_row)
{
	mixed_table();
	app_exec("INSERT INTO t VALUES (1, 'a', 0.1, x'00FF', NULL)");
	app_exec("DELETE FROM t WHERE id = 1");
	expect("SELECT op || '|' || pk || '|' || quote(new_row) || '|' || old_row"
	       " FROM _pgsqlite_changes WHERE seq = 2",
	       "D|{\"id\":1}|NULL|{\"id\":1,\"v\":\"a\",\"r\":\"0x1.999999999999ap-4\",\"b\":\"00ff\","
	       "\"n\":null}");
}

Test(sl_capture, a_key_change_logs_the_old_key_with_the_new_key_in_new_row)
{
	mixed_table();
	app_exec("INSERT INTO t (id, v) VALUES (1, 'a')");
	app_exec("UPDATE t SET id = 7 WHERE id = 1");
	expect_log("t|I|{\"id\":1}|{\"id\":1,\"v\":\"a\",\"r\":null,\"b\":null,\"n\":null}|NULL\n"
	           "t|U|{\"id\":1}|{\"id\":7,\"v\":\"a\",\"r\":null,\"b\":null,\"n\":null}|"
	           "{\"id\":1,\"v\":\"a\",\"r\":null,\"b\":null,\"n\":null}");
}

Test(sl_capture, an_update_that_changes_nothing_is_not_logged)
{
	mixed_table();
	app_exec("INSERT INTO t VALUES (1, 'a', 0.1, x'00FF', NULL)");
	app_exec("UPDATE t SET v = 'a', r = 0.1, b = x'00ff', n = NULL WHERE id = 1");
	expect("SELECT count(*) FROM _pgsqlite_changes", "1");
	app_exec("UPDATE t SET n = '' WHERE id = 1"); /* NULL -> '' is a change */
	expect("SELECT group_concat(op, '') FROM _pgsqlite_changes", "IU");
}

Test(sl_capture, a_case_change_in_a_nocase_column_is_logged)
{
	app_exec("CREATE TABLE c (id INTEGER PRIMARY KEY, v TEXT COLLATE NOCASE)");
	install("c");
	app_exec("INSERT INTO c VALUES (1, 'abc')");
	app_exec("UPDATE c SET v = 'ABC'");
	app_exec("UPDATE c SET v = 'ABC'");
	expect("SELECT group_concat(op || new_row, ' ') FROM _pgsqlite_changes",
	       "I{\"id\":1,\"v\":\"abc\"} U{\"id\":1,\"v\":\"ABC\"}");
}

Test(sl_capture, reals_are_logged_exactly_as_integers_hex_floats_or_infinity)
{
	app_exec("CREATE TABLE f (id INTEGER PRIMARY KEY, r REAL)");
	install("f");
	app_exec("INSERT INTO f VALUES (1, 1.0), (2, 0.30000000000000004), (3, 1e300), (4, -2.5e-5),"
	         " (5, 100.0), (6, 1e17), (7, 3.141592653589793), (8, 9e999), (9, -9e999), (10, -0.5)");
	expect("SELECT group_concat(json_extract(new_row, '$.r'), ' ') FROM _pgsqlite_changes",
	       "1 0x1.3333333333334p-2 0x1.7e43c8800759cp+996 -0x1.a36e2eb1c432dp-16 100 "
	       "100000000000000000 0x1.921fb54442d18p+1 Infinity -Infinity -0x1p-1");
}

/* xorshift64: a reproducible stream of doubles across every exponent. */
static uint64_t next_bits(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static double random_double(uint64_t *s)
{
	uint64_t bits = next_bits(s);
	double d;

	if (bits % 8 == 0) /* a subnormal now and then */
		bits &= 0x800fffffffffffffULL;
	memcpy(&d, &bits, sizeof d);
	return d;
}

static void insert_doubles(const double *v, size_t n)
{
	sqlite3_stmt *st;

	cr_assert_eq(sqlite3_prepare_v2(app, "INSERT INTO f VALUES (?1, ?2)", -1, &st, NULL), SQLITE_OK);
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)i);
		sqlite3_bind_double(st, 2, v[i]);
		cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
}

Test(sl_capture, every_logged_double_reads_back_bit_for_bit_with_strtod)
{
	enum { COUNT = 20000 };
	static double v[COUNT];
	uint64_t seed = (uint64_t)time(NULL) | 1, s = seed;
	sqlite3_stmt *st;

	for (size_t i = 0; i < COUNT; i++) {
		do
			v[i] = random_double(&s);
		while (isnan(v[i]) || isinf(v[i]) || v[i] == 0);
	}
	app_exec("CREATE TABLE f (id INTEGER PRIMARY KEY, r REAL)");
	install("f");
	insert_doubles(v, COUNT);
	cr_assert_eq(sqlite3_prepare_v2(app, "SELECT json_extract(pk, '$.id'), json_extract(new_row, '$.r')"
	                                     " FROM _pgsqlite_changes ORDER BY seq", -1, &st, NULL), SQLITE_OK);
	size_t n = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		size_t i = (size_t)sqlite3_column_int64(st, 0);
		const char *text = (const char *)sqlite3_column_text(st, 1);
		double back = strtod(text, NULL);
		cr_assert(memcmp(&back, &v[i], sizeof back) == 0, "seed %llu: %a logged as %s",
		          (unsigned long long)seed, v[i], text);
		n++;
	}
	sqlite3_finalize(st);
	cr_assert_eq(n, COUNT, "seed %llu", (unsigned long long)seed);
}

Test(sl_capture, writes_of_the_bridge_are_not_logged_but_the_apps_are)
{
	struct dec_field cols[] = {fint("id", "2"), ftext("v", "remote")};
	struct dec_record r = rec(DEC_INSERT, "t");

	r.columns = cols;
	r.ncolumns = N(cols);
	mixed_table();
	app_exec("INSERT INTO t (id, v) VALUES (1, 'app')"); /* no "applying" row yet */
	begin();
	apply(&r);
	cr_assert_eq(sqlite3_exec(sl_handle(db), "UPDATE t SET v = 'bridge' WHERE id = 1; DELETE FROM t"
	                                         " WHERE id = 1; INSERT INTO t (id) VALUES (3)",
	                          NULL, NULL, NULL),
	             SQLITE_OK);
	commit();
	expect("SELECT group_concat(id || v, ',') FROM t", "2remote");
	expect("SELECT group_concat(op || pk, ',') FROM _pgsqlite_changes", "I{\"id\":1}");
	app_exec("UPDATE t SET v = 'app2' WHERE id = 2");
	expect("SELECT group_concat(op || pk, ',') FROM _pgsqlite_changes", "I{\"id\":1},U{\"id\":2}");
}

Test(sl_capture, triggers_have_the_exact_names_and_remove_drops_them)
{
	struct sl_err e = {0};
	const char *names = "SELECT ifnull(group_concat(name || ':' || tbl_name, ','), '(none)') FROM"
	                    " (SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'"
	                    " ORDER BY name)";

	mixed_table();
	install("t"); /* again: replaced, not doubled */
	expect(names, "_pgsqlite_t_del:t,_pgsqlite_t_ins:t,_pgsqlite_t_upd:t");
	expect("SELECT count(*) FROM sqlite_master WHERE type = 'index'"
	       " AND name = '_pgsqlite_changes_row'",
	       "1");
	cr_assert_eq(sl_capture_remove(db, "t", &e), 0, "%s", e.msg);
	cr_assert_eq(sl_capture_remove(db, "t", &e), 0, "%s", e.msg);
	expect(names, "(none)");
	app_exec("INSERT INTO t (id) VALUES (1)");
	expect("SELECT count(*) FROM _pgsqlite_changes", "0");
}

Test(sl_capture, a_column_added_by_sl_apply_is_captured_afterwards)
{
	struct dec_field pk[] = {field("id", "integer", 23, DEC_NULL, NULL)};
	struct dec_field narrow[] = {fint("id", "1"), ftext("name", "a")};
	struct dec_field wide[] = {fint("id", "2"), ftext("name", "b"),
	                           field("price", "numeric(10,2)", 1700, DEC_NUMBER, "9.90")};
	struct dec_record r = rec(DEC_INSERT, "items");

	r.pk = pk;
	r.npk = 1;
	r.columns = narrow;
	r.ncolumns = N(narrow);
	begin();
	apply(&r);
	commit();
	install("items");
	r.columns = wide;
	r.ncolumns = N(wide);
	begin();
	apply(&r);
	commit();
	expect("SELECT count(*) FROM _pgsqlite_changes", "0");
	expect("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE '\\_pgsqlite\\_items\\_%'"
	       " ESCAPE '\\' AND sql LIKE '%price%'",
	       "3");
	app_exec("INSERT INTO items VALUES (3, 'c', '1.50')");
	expect("SELECT new_row FROM _pgsqlite_changes", "{\"id\":3,\"name\":\"c\",\"price\":\"1.50\"}");
}

Test(sl_capture, sl_ensure_table_adding_a_column_rebuilds_the_triggers)
{
	struct sl_column cols[] = {{.name = "id", .pg_type = "integer", .typeoid = 23, .pk_pos = 1},
	                           {.name = "v", .pg_type = "text", .typeoid = 25}};
	struct sl_column more[] = {{.name = "id", .pg_type = "integer", .typeoid = 23, .pk_pos = 1},
	                           {.name = "w", .pg_type = "bytea", .typeoid = 17}};
	struct sl_err e = {0};

	cr_assert_eq(sl_ensure_table(db, "public", "e", cols, N(cols), &e), 0, "%s", e.msg);
	install("e");
	cr_assert_eq(sl_ensure_table(db, "public", "e", more, N(more), &e), 0, "%s", e.msg);
	app_exec("INSERT INTO e VALUES (1, 'x', x'0A')");
	expect("SELECT new_row FROM _pgsqlite_changes", "{\"id\":1,\"v\":\"x\",\"w\":\"0a\"}");
}

Test(sl_capture, weird_table_and_column_names_are_quoted_everywhere)
{
	struct dec_field key[] = {ftext("k'ey", "o'neil")};
	struct sl_err e = {0};
	const char *tables[] = {"we ird", "q\"uote", "it's"};
	int64_t seq = 0;
	char *s;

	app_exec("CREATE TABLE \"we ird\" (\"my id\" INTEGER PRIMARY KEY, \"q\"\"uote\" TEXT);"
	         "CREATE TABLE \"q\"\"uote\" (id INTEGER PRIMARY KEY, \"it's\" TEXT);"
	         "CREATE TABLE \"it's\" (\"k'ey\" TEXT PRIMARY KEY, \"a\"\"b'c d\" TEXT)");
	for (size_t i = 0; i < N(tables); i++)
		install(tables[i]);
	expect("SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master WHERE type ="
	       " 'trigger' AND name LIKE '%\\_ins' ESCAPE '\\' ORDER BY name)",
	       "_pgsqlite_it's_ins,_pgsqlite_q\"uote_ins,_pgsqlite_we ird_ins");
	app_exec("INSERT INTO \"we ird\" VALUES (1, 'x');"
	         "INSERT INTO \"q\"\"uote\" VALUES (2, 'y');"
	         "INSERT INTO \"it's\" VALUES ('o''neil', 'z');"
	         "UPDATE \"it's\" SET \"a\"\"b'c d\" = 'w'");
	expect_log("we ird|I|{\"my id\":1}|{\"my id\":1,\"q\\\"uote\":\"x\"}|NULL\n"
	           "q\"uote|I|{\"id\":2}|{\"id\":2,\"it's\":\"y\"}|NULL\n"
	           "it's|I|{\"k'ey\":\"o'neil\"}|{\"k'ey\":\"o'neil\",\"a\\\"b'c d\":\"z\"}|NULL\n"
	           "it's|U|{\"k'ey\":\"o'neil\"}|{\"k'ey\":\"o'neil\",\"a\\\"b'c d\":\"w\"}|"
	           "{\"k'ey\":\"o'neil\",\"a\\\"b'c d\":\"z\"}");
	cr_assert_eq(sl_pending_for_row(db, "it's", key, 1, &seq, &e), 1, "%s", e.msg);
	cr_assert_eq(seq, 3);
	s = sl_row_json(db, "it's", key, 1, &e);
	cr_assert_str_eq(s, "{\"k'ey\":\"o'neil\",\"a\\\"b'c d\":\"w\"}");
	free(s);
}

Test(sl_capture, capture_is_refused_without_a_primary_key_or_a_table)
{
	struct sl_err e = {0};

	app_exec("CREATE TABLE nokey (a TEXT, b INTEGER)");
	cr_assert_eq(sl_capture_install(db, "nokey", &e), -1);
	cr_assert_not_null(strstr(e.msg, "no primary key"), "%s", e.msg);
	cr_assert_eq(sl_capture_install(db, "absent", &e), -1);
	cr_assert_not_null(strstr(e.msg, "no such table"), "%s", e.msg);
	cr_assert_eq(sl_capture_install(db, "_pgsqlite_changes", &e), -1);
	cr_assert_not_null(strstr(e.msg, "bridge"), "%s", e.msg);
	expect("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'", "0");
}

Test(sl_capture, a_table_of_many_columns_is_logged_whole)
{
	char sql[8192], want[8192];
	size_t n = 0, w = 0;

	n += (size_t)snprintf(sql + n, sizeof sql - n, "CREATE TABLE wide (id INTEGER PRIMARY KEY");
	for (int i = 1; i < 150; i++)
		n += (size_t)snprintf(sql + n, sizeof sql - n, ", c%d INTEGER DEFAULT %d", i, i * 10);
	snprintf(sql + n, sizeof sql - n, ")");
	app_exec(sql);
	install("wide");
	app_exec("INSERT INTO wide (id, c149) VALUES (1, NULL)");
	w += (size_t)snprintf(want + w, sizeof want - w, "{\"id\":1");
	for (int i = 1; i < 149; i++)
		w += (size_t)snprintf(want + w, sizeof want - w, ",\"c%d\":%d", i, i * 10);
	snprintf(want + w, sizeof want - w, ",\"c149\":null}");
	expect("SELECT new_row FROM _pgsqlite_changes", want);
	expect("SELECT json_valid(new_row) AND json_extract(new_row, '$.c100') = 1000"
	       " FROM _pgsqlite_changes",
	       "1");
}

/* ---- keys, pending changes, rows ---- */

/* pk written by the trigger for the app's statement, vs sl_key_json. */
static void key_matches(const char *table, const char *app_sql, const struct dec_field *key,
                        size_t nkey, const char *want)
{
	struct sl_err e = {0};
	char *s;

	app_exec("DELETE FROM _pgsqlite_changes");
	app_exec(app_sql);
	expect("SELECT pk FROM _pgsqlite_changes", want);
	s = sl_key_json(db, table, key, nkey, &e);
	cr_assert_not_null(s, "sl_key_json: %s", e.msg);
	cr_assert_str_eq(s, want);
	free(s);
}

Test(sl_capture, key_json_equals_the_pk_the_trigger_wrote)
{
	struct dec_field kint[] = {fint("id", "5")};
	struct dec_field ktext[] = {ftext("code", "a\"b")};
	struct dec_field kboth[] = {ftext("name", "x"), fint("n", "-3"), ftext("other", "ignored")};
	struct dec_field kbool[] = {field("flag", "boolean", 16, DEC_TRUE, NULL)};
	struct dec_field kreal[] = {field("r", "double precision", 701, DEC_NUMBER, "0.1")};
	struct dec_field kblob[] = {field("h", "bytea", 17, DEC_STRING, "\\x00AB")};

	app_exec("CREATE TABLE ki (id INTEGER PRIMARY KEY, v TEXT);"
	         "CREATE TABLE kt (code TEXT PRIMARY KEY, v TEXT);"
	         "CREATE TABLE kc (n INTEGER, v TEXT, name TEXT, PRIMARY KEY (n, name));"
	         "CREATE TABLE kb (flag INTEGER PRIMARY KEY);"
	         "CREATE TABLE kr (r REAL PRIMARY KEY);"
	         "CREATE TABLE kx (h BLOB PRIMARY KEY)");
	install("ki");
	install("kt");
	install("kc");
	install("kb");
	install("kr");
	install("kx");
	key_matches("ki", "INSERT INTO ki VALUES (5, 'v')", kint, 1, "{\"id\":5}");
	key_matches("kt", "INSERT INTO kt VALUES ('a\"b', 'v')", ktext, 1, "{\"code\":\"a\\\"b\"}");
	key_matches("kc", "INSERT INTO kc VALUES (-3, 'v', 'x')", kboth, N(kboth),
	            "{\"n\":-3,\"name\":\"x\"}");
	key_matches("kb", "INSERT INTO kb VALUES (1)", kbool, 1, "{\"flag\":1}");
	key_matches("kr", "INSERT INTO kr VALUES (0.1)", kreal, 1,
	            "{\"r\":\"0x1.999999999999ap-4\"}");
	key_matches("kx", "INSERT INTO kx VALUES (x'00ab')", kblob, 1, "{\"h\":\"00ab\"}");
}

Test(sl_capture, key_json_needs_every_key_column_and_the_table)
{
	struct dec_field half[] = {fint("n", "1")};
	struct sl_err e = {0};

	app_exec("CREATE TABLE kc (n INTEGER, name TEXT, PRIMARY KEY (n, name))");
	cr_assert_null(sl_key_json(db, "kc", half, 1, &e));
	cr_assert_not_null(strstr(e.msg, "lacks column \"name\""), "%s", e.msg);
	cr_assert_null(sl_key_json(db, "absent", half, 1, &e));
	cr_assert_not_null(strstr(e.msg, "absent"), "%s", e.msg);
}

Test(sl_capture, pending_for_row_sees_only_that_rows_changes)
{
	struct dec_field k1[] = {fint("id", "1")};
	struct dec_field k2[] = {fint("id", "2")};
	struct dec_field none[] = {ftext("nothing", "x")};
	struct sl_err e = {0};
	int64_t seq = -1;

	mixed_table();
	app_exec("CREATE TABLE other (id INTEGER PRIMARY KEY)");
	install("other");
	cr_assert_eq(sl_pending_for_row(db, "t", k1, 1, &seq, &e), 0, "%s", e.msg);
	cr_assert_eq(sl_pending_for_row(db, "t", none, 1, &seq, &e), 0, "empty log: key not looked at");
	cr_assert_eq(seq, -1);
	app_exec("INSERT INTO other VALUES (1); INSERT INTO t (id) VALUES (1); UPDATE t SET v = 'b'");
	cr_assert_eq(sl_pending_for_row(db, "t", k1, 1, &seq, &e), 1, "%s", e.msg);
	cr_assert_eq(seq, 2, "the lowest seq of the row");
	cr_assert_eq(sl_pending_for_row(db, "t", k2, 1, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(sl_pending_for_row(db, "absent", k1, 1, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(sl_pending_for_row(db, "t", none, 1, NULL, &e), -1);
	cr_assert_not_null(strstr(e.msg, "lacks column \"id\""), "%s", e.msg);
}

Test(sl_capture, a_row_moved_onto_a_key_makes_that_key_pending_as_a_move_target)
{
	struct dec_field k1[] = {fint("id", "1")};
	struct dec_field k2[] = {fint("id", "2")};
	struct dec_field k3[] = {fint("id", "3")};
	struct sl_err e = {0};

	mixed_table();
	app_exec("INSERT INTO t (id, v) VALUES (1, 'a')");
	cr_assert_eq(sl_pending_for_row(db, "t", k1, 1, NULL, &e), 1, "%s", e.msg);
	cr_assert_eq(sl_pending_for_row(db, "t", k2, 1, NULL, &e), 0, "%s", e.msg);
	app_exec("UPDATE t SET id = 2 WHERE id = 1");
	cr_assert_eq(sl_pending_for_row(db, "t", k1, 1, NULL, &e), 1, "the old key: %s", e.msg);
	cr_assert_eq(sl_pending_for_row(db, "t", k2, 1, NULL, &e), 2, "the new key: %s", e.msg);
	cr_assert_eq(sl_pending_for_row(db, "t", k3, 1, NULL, &e), 0, "%s", e.msg);
	expect("SELECT group_concat(coalesce(new_pk, '-'), ' ') FROM _pgsqlite_changes",
	       "- {\"id\":2}");
	app_exec("UPDATE t SET v = 'at 2' WHERE id = 2");
	cr_assert_eq(sl_pending_for_row(db, "t", k2, 1, NULL, &e), 3, "own changes and the move: %s", e.msg);
}

Test(sl_capture, a_file_from_before_new_pk_gets_the_column_and_new_triggers)
{
	struct dec_field k2[] = {fint("id", "2")};
	struct sl_err e = {0};

	mixed_table();
	sl_close(db);
	db = NULL;
	/* the change log as the first files had it, with the old trigger */
	app_exec("DROP INDEX _pgsqlite_changes_moved; ALTER TABLE _pgsqlite_changes DROP COLUMN new_pk;"
	         "DROP TRIGGER _pgsqlite_t_upd; CREATE TRIGGER _pgsqlite_t_upd AFTER UPDATE ON t"
	         " BEGIN INSERT INTO _pgsqlite_changes (table_name, op, pk) VALUES ('t', 'U', '{}'); END;");
	cr_assert_eq(sl_open(path, &db, &e), 0, "sl_open: %s", e.msg);
	sqlite3_close(app); /* its schema cache holds the test's half-old triggers */
	cr_assert_eq(sqlite3_open(path, &app), SQLITE_OK);
	app_exec("INSERT INTO t (id, v) VALUES (1, 'a'); UPDATE t SET id = 2 WHERE id = 1");
	cr_assert_eq(sl_pending_for_row(db, "t", k2, 1, NULL, &e), 2, "%s", e.msg);
}

Test(sl_capture, drop_pending_deletes_only_that_rows_changes)
{
	struct dec_field k1[] = {fint("id", "1")};
	struct sl_err e = {0};

	mixed_table();
	cr_assert_eq(sl_drop_pending_for_row(db, "t", k1, 1, &e), 0, "%s", e.msg);
	app_exec("INSERT INTO t (id) VALUES (1), (2); UPDATE t SET v = 'b'; DELETE FROM t WHERE id = 1");
	cr_assert_eq(sl_drop_pending_for_row(db, "t", k1, 1, &e), 3, "%s", e.msg);
	expect("SELECT group_concat(op || pk, ',') FROM _pgsqlite_changes", "I{\"id\":2},U{\"id\":2}");
	cr_assert_eq(sl_drop_pending_for_row(db, "t", k1, 1, &e), 0, "%s", e.msg);
}

Test(sl_capture, row_json_is_the_current_row_in_the_trigger_form)
{
	struct dec_field k1[] = {fint("id", "1")};
	struct dec_field k9[] = {fint("id", "9")};
	struct dec_field none[] = {ftext("x", "1")};
	struct sl_err e = {0};
	char *s;

	mixed_table();
	app_exec("INSERT INTO t VALUES (1, 'a', 0.1, x'00FF', NULL)");
	s = sl_row_json(db, "t", k1, 1, &e);
	cr_assert_not_null(s, "%s", e.msg);
	cr_assert_str_eq(s, ROW1);
	expect("SELECT new_row FROM _pgsqlite_changes", ROW1);
	free(s);
	e.code = 99;
	cr_assert_null(sl_row_json(db, "t", k9, 1, &e));
	cr_assert_eq(e.code, 0);
	cr_assert_str_eq(e.msg, "");
	cr_assert_null(sl_row_json(db, "absent", k1, 1, &e));
	cr_assert_eq(e.code, 0);
	cr_assert_null(sl_row_json(db, "t", none, 1, &e));
	cr_assert_neq(e.code, 0);
	cr_assert_not_null(strstr(e.msg, "lacks column"), "%s", e.msg);
}

/* ---- the log and the conflicts ---- */

Test(sl_capture, changes_read_in_order_with_after_and_limit_then_delete_upto)
{
	struct sl_change *c;
	struct sl_err e = {0};
	size_t n;

	mixed_table();
	app_exec("INSERT INTO t (id, v) VALUES (1, 'a'), (2, 'b'), (3, 'c');"
	         "UPDATE t SET v = 'z' WHERE id = 2; DELETE FROM t WHERE id = 3");
	cr_assert_eq(sl_changes_read(db, 1, 3, &c, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 3);
	cr_assert_eq(c[0].seq, 2);
	cr_assert_eq(c[2].seq, 4);
	cr_assert_str_eq(c[0].table, "t");
	cr_assert_eq(c[0].op, 'I');
	cr_assert_eq(c[2].op, 'U');
	cr_assert_str_eq(c[2].pk, "{\"id\":2}");
	cr_assert_str_eq(c[2].new_row, "{\"id\":2,\"v\":\"z\",\"r\":null,\"b\":null,\"n\":null}");
	cr_assert_str_eq(c[2].old_row, "{\"id\":2,\"v\":\"b\",\"r\":null,\"b\":null,\"n\":null}");
	cr_assert_null(c[0].old_row);
	cr_assert_eq(strlen(c[0].changed_at), 24, "%s", c[0].changed_at);
	sl_changes_free(c, n);
	cr_assert_eq(sl_changes_read(db, 4, 100, &c, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 1);
	cr_assert_eq(c[0].op, 'D');
	cr_assert_null(c[0].new_row);
	sl_changes_free(c, n);
	cr_assert_eq(sl_changes_read(db, 0, 0, &c, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 0);
	sl_changes_free(c, n);
	cr_assert_eq(sl_changes_delete_upto(db, 3, &e), 0, "%s", e.msg);
	expect("SELECT group_concat(seq, ',') FROM _pgsqlite_changes", "4,5");
	cr_assert_eq(sl_changes_read(db, 0, 1000, &c, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 2);
	cr_assert_eq(c[0].seq, 4);
	sl_changes_free(c, n);
	cr_assert_eq(sl_changes_delete_upto(db, 5, &e), 0, "%s", e.msg);
	cr_assert_eq(sl_changes_read(db, 0, 10, &c, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 0);
	cr_assert_null(c);
}

Test(sl_capture, changes_read_pages_through_a_long_log)
{
	struct sl_change *c;
	struct sl_err e = {0};
	int64_t after = 0;
	size_t n, total = 0;

	mixed_table();
	app_exec("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 1000)"
	         " INSERT INTO t (id, v) SELECT i, 'v' || i FROM s");
	do {
		cr_assert_eq(sl_changes_read(db, after, 300, &c, &n, &e), 0, "%s", e.msg);
		for (size_t i = 0; i < n; i++)
			cr_assert_eq(c[i].seq, after + 1 + (int64_t)i);
		if (n)
			after = c[n - 1].seq;
		total += n;
		sl_changes_free(c, n);
	} while (n == 300);
	cr_assert_eq(total, 1000);
	cr_assert_eq(after, 1000);
}

Test(sl_capture, conflict_record_writes_the_row_with_timestamps)
{
	struct sl_err e = {0};

	cr_assert_eq(sl_conflict_record(db, "t", "{\"id\":1}", "{\"id\":1,\"v\":\"l\"}",
	                                "{\"id\":1,\"v\":\"r\"}", "remote_wins", "remote applied", true,
	                                &e),
	             0, "%s", e.msg);
	cr_assert_eq(sl_conflict_record(db, "t", "{\"id\":2}", NULL, "{\"id\":2}", "manual", NULL,
	                                false, &e),
	             0, "%s", e.msg);
	expect("SELECT group_concat(table_name || '|' || pk || '|' || ifnull(local_row, 'NULL') || '|'"
	       " || remote_row || '|' || strategy || '|' || ifnull(resolution, 'NULL'), char(10))"
	       " FROM (SELECT * FROM _pgsqlite_conflicts ORDER BY id)",
	       "t|{\"id\":1}|{\"id\":1,\"v\":\"l\"}|{\"id\":1,\"v\":\"r\"}|remote_wins|remote applied\n"
	       "t|{\"id\":2}|NULL|{\"id\":2}|manual|NULL");
	expect("SELECT detected_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T"
	       "[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z' AND resolved_at = detected_at"
	       " FROM _pgsqlite_conflicts WHERE id = 1",
	       "1");
	expect("SELECT length(detected_at) || quote(resolved_at) FROM _pgsqlite_conflicts WHERE id = 2",
	       "24NULL");
	cr_assert_eq(sl_unresolved_conflicts(db), 1);
}

Test(sl_capture, drop_bridge_objects_removes_the_triggers_and_the_index)
{
	struct sl_err e = {0};

	mixed_table();
	cr_assert_eq(sl_drop_bridge_objects(db, &e), 0, "%s", e.msg);
	expect("SELECT group_concat(name, ',') FROM sqlite_master WHERE name NOT LIKE 'sqlite%'", "t");
	app_exec("INSERT INTO t (id) VALUES (1)");
}
