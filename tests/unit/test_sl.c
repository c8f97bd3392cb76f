/* test_sl.c: the SQLite side against real files in a temporary directory:
 * bridge tables, names, the type mapping, value binding and every apply
 * path, checked by reading the file back with plain sqlite3 queries. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../sqlite-side/sl.h"
#include "records.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char dir[512];
static char path[600];
static struct sl_db *db;

static void remove_file(const char *suffix)
{
	char p[640];

	snprintf(p, sizeof p, "%s%s", path, suffix);
	unlink(p);
}

static void setup(void)
{
	const char *base = getenv("TMPDIR");

	if (!base || !*base)
		base = P_tmpdir;
	snprintf(dir, sizeof dir, "%s/test-sl-XXXXXX", base);
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/bridge.db", dir);
	db = NULL;
}

static void teardown(void)
{
	sl_close(db);
	db = NULL;
	remove_file("");
	remove_file("-wal");
	remove_file("-shm");
	remove_file("-journal");
	rmdir(dir);
}

TestSuite(sl, .init = setup, .fini = teardown);

/* ---- record building ---- */


static struct dec_field fkey(const char *name, const char *type, uint32_t oid)
{
	return field(name, type, oid, DEC_NULL, NULL);
}

static struct dec_record rec(enum dec_action action, const char *schema, const char *table)
{
	return (struct dec_record){.action = action, .schema = S(schema), .table = S(table)};
}

static struct dec_field id_pk[] = {{.name = {"id", 2}, .type = {"integer", 7}, .typeoid = 23}};

/* ---- plumbing ---- */

static void open_db(void)
{
	struct sl_err e = {0};

	cr_assert_eq(sl_open(path, &db, &e), 0, "sl_open: %s", e.msg);
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

/* Applies one record in its own transaction. */
static void apply1(const struct dec_record *r)
{
	begin();
	apply(r);
	commit();
}

/* First column of the first row of sql on connection h, or "(none)" /
 * "(null)". */
static void query_on(sqlite3 *h, const char *sql, char *out, size_t cap)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(h, sql, -1, &st, NULL);

	cr_assert_eq(rc, SQLITE_OK, "prepare %s: %s", sql, sqlite3_errmsg(h));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(st, 0);
		snprintf(out, cap, "%s", v ? (const char *)v : "(null)");
	} else {
		cr_assert_eq(rc, SQLITE_DONE, "step %s: %s", sql, sqlite3_errmsg(h));
		snprintf(out, cap, "(none)");
	}
	sqlite3_finalize(st);
}

/* The same through a separate read-only connection to the file. */
static void query(const char *sql, char *out, size_t cap)
{
	sqlite3 *h;

	cr_assert_eq(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	query_on(h, sql, out, cap);
	sqlite3_close(h);
}

static void expect(const char *sql, const char *want)
{
	char got[4096];

	query(sql, got, sizeof got);
	cr_assert_str_eq(got, want, "%s\n  got:  %s\n  want: %s", sql, got, want);
}

static void expect_on(sqlite3 *h, const char *sql, const char *want)
{
	char got[4096];

	query_on(h, sql, got, sizeof got);
	cr_assert_str_eq(got, want, "%s\n  got:  %s\n  want: %s", sql, got, want);
}

static void items_insert(const char *id, const char *name)
{
	struct dec_field cols[] = {fint("id", id), ftext("name", name)};
	struct dec_record r = rec(DEC_INSERT, "public", "items");

	r.columns = cols;
	r.ncolumns = N(cols);
	r.pk = id_pk;
	r.npk = 1;
	apply(&r);
}

/* ---- opening ---- */

Test(sl, open_creates_the_bridge_tables_in_wal_mode)
{
	open_db();
	expect("SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master"
	       " WHERE type = 'table' AND name LIKE '\\_pgsqlite\\_%' ESCAPE '\\' ORDER BY name)",
	       "_pgsqlite_changes,_pgsqlite_conflicts,_pgsqlite_pow2,_pgsqlite_state");
	expect("SELECT count(*) || ' ' || min(e) || ' ' || max(e) FROM _pgsqlite_pow2",
	       "2098 -1074 1023");
	expect("PRAGMA journal_mode", "wal");
	expect_on(sl_handle(db), "PRAGMA synchronous", "2");
	expect("SELECT group_concat(name || ' ' || type, ',') FROM pragma_table_info('_pgsqlite_conflicts')",
	       "id INTEGER,table_name TEXT,pk TEXT,local_row TEXT,remote_row TEXT,strategy TEXT,"
	       "resolution TEXT,detected_at TEXT,resolved_at TEXT");
	expect("SELECT group_concat(name || ' ' || type || ' ' || \"notnull\", ',')"
	       " FROM pragma_table_info('_pgsqlite_changes')",
	       "seq INTEGER 0,table_name TEXT 1,op TEXT 1,pk TEXT 0,new_row TEXT 0,old_row TEXT 0,"
	       "changed_at TEXT 1,new_pk TEXT 0");
	expect("SELECT group_concat(name || ' ' || type || ' ' || pk, ',')"
	       " FROM pragma_table_info('_pgsqlite_state')",
	       "key TEXT 1,value TEXT 0");
}

Test(sl, change_log_rejects_an_unknown_op_and_stamps_the_time)
{
	open_db();
	sqlite3 *h = sl_handle(db);
	cr_assert_neq(sqlite3_exec(h, "INSERT INTO _pgsqlite_changes (table_name, op) VALUES ('t', 'X')",
	                           NULL, NULL, NULL),
	              SQLITE_OK);
	cr_assert_eq(sqlite3_exec(h, "INSERT INTO _pgsqlite_changes (table_name, op) VALUES ('t', 'I')",
	                          NULL, NULL, NULL),
	             SQLITE_OK);
	expect("SELECT changed_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T*Z'"
	       " FROM _pgsqlite_changes",
	       "1");
}

Test(sl, reopening_keeps_tables_rows_and_state)
{
	struct sl_err e = {0};

	open_db();
	begin();
	items_insert("1", "a");
	cr_assert_eq(sl_state_set(db, "applied_lsn", "0/1633EB8", &e), 0, "%s", e.msg);
	commit();
	sl_close(db);
	db = NULL;
	open_db();
	char v[64];
	cr_assert_eq(sl_state_get(db, "applied_lsn", v, sizeof v), 1);
	cr_assert_str_eq(v, "0/1633EB8");
	begin();
	items_insert("2", "b");
	commit();
	expect("SELECT group_concat(id || name, ',') FROM items", "1a,2b");
}

Test(sl, open_of_a_file_that_is_not_a_database_fails)
{
	struct sl_err e = {0};
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fputs("this is not an sqlite database, not at all, not even close......", f);
	fclose(f);
	cr_assert_eq(sl_open(path, &db, &e), -1);
	cr_assert_null(db);
	cr_assert_eq(e.code, SQLITE_NOTADB, "code %d: %s", e.code, e.msg);
	cr_assert_not_null(strstr(e.msg, "not a database"), "%s", e.msg);
}

/* ---- names and types ---- */

Test(sl, local_name_of_a_public_table_is_the_table_name)
{
	char buf[64];

	sl_local_name("public", 6, "items", 5, buf, sizeof buf);
	cr_assert_str_eq(buf, "items");
}

Test(sl, local_name_of_another_schema_joins_with_two_underscores)
{
	char buf[64];

	sl_local_name("sales", 5, "orders", 6, buf, sizeof buf);
	cr_assert_str_eq(buf, "sales__orders");
	sl_local_name("Public", 6, "x", 1, buf, sizeof buf);
	cr_assert_str_eq(buf, "Public__x");
}

Test(sl, local_name_is_truncated_to_the_buffer)
{
	char buf[8];

	sl_local_name("sales", 5, "orders", 6, buf, sizeof buf);
	cr_assert_str_eq(buf, "sales__");
}

Test(sl, affinity_decides_by_type_oid_when_given)
{
	static const struct {
		uint32_t oid;
		const char *want;
	} cases[] = {
		{21, "INTEGER"}, {23, "INTEGER"}, {20, "INTEGER"}, {26, "INTEGER"}, {16, "INTEGER"},
		{700, "REAL"},   {701, "REAL"},   {1700, "TEXT"},  {25, "TEXT"},    {1043, "TEXT"},
		{1042, "TEXT"},  {2950, "TEXT"},  {1082, "TEXT"},  {1083, "TEXT"},  {1114, "TEXT"},
		{1184, "TEXT"},  {114, "TEXT"},   {3802, "TEXT"},  {17, "BLOB"},    {1007, "TEXT"},
		{1016, "TEXT"},  {99999, "TEXT"},
	};

	for (size_t i = 0; i < N(cases); i++)
		cr_assert_str_eq(sl_affinity("text", cases[i].oid), cases[i].want, "oid %u",
		                 cases[i].oid);
	cr_assert_str_eq(sl_affinity("integer", 25), "TEXT", "the oid wins over the name");
}

Test(sl, affinity_decides_by_type_name_without_an_oid)
{
	static const struct {
		const char *name;
		const char *want;
	} cases[] = {
		{"integer", "INTEGER"},
		{"bigint", "INTEGER"},
		{"smallint", "INTEGER"},
		{"int4", "INTEGER"},
		{"oid", "INTEGER"},
		{"boolean", "INTEGER"},
		{"real", "REAL"},
		{"double precision", "REAL"},
		{"float(24)", "REAL"},
		{"numeric(10,2)", "TEXT"},
		{"numeric", "TEXT"},
		{"bytea", "BLOB"},
		{"pg_catalog.int8", "INTEGER"},
		{"character varying(20)", "TEXT"},
		{"character(3)", "TEXT"},
		{"text", "TEXT"},
		{"uuid", "TEXT"},
		{"date", "TEXT"},
		{"time without time zone", "TEXT"},
		{"timestamp(3) with time zone", "TEXT"},
		{"json", "TEXT"},
		{"jsonb", "TEXT"},
		{"integer[]", "TEXT"},
		{"bytea[]", "TEXT"},
		{"double precision[]", "TEXT"},
		{"mood", "TEXT"},
		{"\"Integer\"", "TEXT"},
		{"", "TEXT"},
	};

	for (size_t i = 0; i < N(cases); i++)
		cr_assert_str_eq(sl_affinity(cases[i].name, 0), cases[i].want, "%s", cases[i].name);
	cr_assert_str_eq(sl_affinity(NULL, 0), "TEXT");
}

/* ---- insert and value forms ---- */

Test(sl, insert_then_insert_again_upserts_the_row)
{
	open_db();
	begin();
	items_insert("1", "first");
	items_insert("2", "other");
	items_insert("1", "second");
	commit();
	expect("SELECT count(*) FROM items", "2");
	expect("SELECT name FROM items WHERE id = 1", "second");
}

Test(sl, a_table_of_another_schema_is_written_with_its_prefix)
{
	struct dec_field cols[] = {fint("id", "7")};
	struct dec_record r = rec(DEC_INSERT, "sales", "orders");

	r.columns = cols;
	r.ncolumns = N(cols);
	r.pk = id_pk;
	r.npk = 1;
	open_db();
	apply1(&r);
	expect("SELECT id FROM sales__orders", "7");
}

/* One row with column "x" of the given type, in a fresh table v<n> so that
 * each call gets the column type it asks for; checks typeof(x):quote(x). */
static int nvalue;

static void one_value(const char *type, uint32_t oid, enum dec_kind kind, const char *v,
                      const char *want)
{
	struct dec_field cols[] = {fint("id", "1"), field("x", type, oid, kind, v)};
	char table[16], sql[128];
	struct dec_record r;

	snprintf(table, sizeof table, "v%d", ++nvalue);
	r = rec(DEC_INSERT, "public", table);
	r.columns = cols;
	r.ncolumns = N(cols);
	r.pk = id_pk;
	r.npk = 1;
	apply1(&r);
	snprintf(sql, sizeof sql, "SELECT typeof(x) || ':' || quote(x) FROM %s WHERE id = 1", table);
	expect(sql, want);
}

Test(sl, numeric_is_stored_as_its_exact_text)
{
	open_db();
	one_value("numeric(10,2)", 1700, DEC_NUMBER, "12.50", "text:'12.50'");
	expect("SELECT type FROM pragma_table_info('v1') WHERE name = 'x'", "TEXT");
}

Test(sl, a_thirty_digit_numeric_keeps_every_digit)
{
	open_db();
	one_value("numeric", 1700, DEC_NUMBER, "123456789012345678901234567890.000001",
	          "text:'123456789012345678901234567890.000001'");
}

Test(sl, bigint_max_is_stored_as_an_integer)
{
	open_db();
	one_value("bigint", 20, DEC_NUMBER, "9223372036854775807", "integer:9223372036854775807");
	one_value("bigint", 20, DEC_NUMBER, "-9223372036854775808",
	          "integer:-9223372036854775808");
}

Test(sl, boolean_true_is_one_and_false_is_zero)
{
	open_db();
	one_value("boolean", 16, DEC_TRUE, NULL, "integer:1");
	one_value("boolean", 16, DEC_FALSE, NULL, "integer:0");
}

Test(sl, boolean_as_snapshot_text_is_one_or_zero)
{
	open_db();
	one_value("boolean", 16, DEC_STRING, "t", "integer:1");
	one_value("boolean", 16, DEC_STRING, "false", "integer:0");
	one_value("boolean", 16, DEC_STRING, "true", "integer:1");
}

Test(sl, bytea_hex_is_stored_as_a_blob)
{
	open_db();
	one_value("bytea", 17, DEC_STRING, "00ff", "blob:X'00FF'");
	one_value("bytea", 17, DEC_STRING, "DEADbeef", "blob:X'DEADBEEF'");
	one_value("bytea", 17, DEC_STRING, "", "blob:X''");
	one_value("bytea", 17, DEC_STRING, "\\x0a0b", "blob:X'0A0B'");
}

Test(sl, bad_bytea_hex_is_rejected)
{
	static const char *const bad[] = {"0", "00f", "zz", "0g", "\\x1"};
	struct sl_err e = {0};

	open_db();
	one_value("bytea", 17, DEC_STRING, "01", "blob:X'01'");
	begin();
	for (size_t i = 0; i < N(bad); i++) {
		struct dec_field cols[] = {fint("id", "1"), field("x", "bytea", 17, DEC_STRING, bad[i])};
		struct dec_record r = rec(DEC_INSERT, "public", "v1");
		r.columns = cols;
		r.ncolumns = N(cols);
		cr_assert_eq(sl_apply(db, &r, &e), -1, "%s", bad[i]);
		cr_assert_eq(e.code, 0);
		cr_assert_not_null(strstr(e.msg, "bytea"), "%s", e.msg);
		cr_assert_not_null(strstr(e.msg, "\"v1\""), "%s", e.msg);
	}
	commit();
	expect("SELECT hex(x) FROM v1", "01");
}

Test(sl, floats_are_reals_and_other_types_keep_their_text)
{
	open_db();
	one_value("double precision", 701, DEC_NUMBER, "1.5", "real:1.5");
	one_value("real", 700, DEC_NUMBER, "-0.25", "real:-0.25");
	one_value("double precision", 701, DEC_NUMBER, "Infinity", "real:Inf");
	one_value("double precision", 701, DEC_NUMBER, "NaN", "text:'NaN'"); /* a REAL holds no NaN */
	one_value("jsonb", 3802, DEC_STRING, "{\"a\": 1}", "text:'{\"a\": 1}'");
	one_value("timestamp with time zone", 1184, DEC_STRING, "2026-11-24 21:23:41.752077+00",
	          "text:'2026-11-24 21:23:41.752077+00'");
	one_value("integer[]", 1007, DEC_STRING, "{1,2,3}", "text:'{1,2,3}'");
	one_value("text", 25, DEC_STRING, "00123", "text:'00123'");
	one_value("text", 25, DEC_STRING, "", "text:''");
	one_value("text", 25, DEC_NULL, NULL, "null:NULL");
}

Test(sl, values_that_look_like_sql_are_stored_literally)
{
	open_db();
	one_value("text", 25, DEC_STRING, "'); DROP TABLE v1; --", "text:'''); DROP TABLE v1; --'");
	expect("SELECT count(*) FROM sqlite_master WHERE name = 'v1'", "1");
}

/* ---- update / delete / truncate ---- */

Test(sl, update_without_toast_column_keeps_old_value)
{
	struct dec_field ins[] = {fint("id", "1"), ftext("big", "a very long toasted value"),
	                          fint("n", "1")};
	struct dec_field upd[] = {fint("id", "1"), fint("n", "2")};
	struct dec_record r = rec(DEC_INSERT, "public", "t");

	r.columns = ins;
	r.ncolumns = N(ins);
	r.pk = id_pk;
	r.npk = 1;
	open_db();
	apply1(&r);
	r.action = DEC_UPDATE;
	r.columns = upd;
	r.ncolumns = N(upd);
	apply1(&r);
	expect("SELECT n || ' ' || big FROM t WHERE id = 1", "2 a very long toasted value");
}

Test(sl, update_of_a_missing_row_inserts_it)
{
	struct dec_field upd[] = {fint("id", "5"), ftext("name", "late")};
	struct dec_record r = rec(DEC_UPDATE, "public", "items");

	r.columns = upd;
	r.ncolumns = N(upd);
	r.pk = id_pk;
	r.npk = 1;
	open_db();
	begin();
	items_insert("1", "a");
	apply(&r);
	commit();
	expect("SELECT group_concat(id || name, ',') FROM (SELECT * FROM items ORDER BY id)",
	       "1a,5late");
}

Test(sl, update_changing_the_primary_key_finds_the_row_by_identity)
{
	struct dec_field upd[] = {fint("id", "10"), ftext("name", "moved")};
	struct dec_field old[] = {fint("id", "1")};
	struct dec_record r = rec(DEC_UPDATE, "public", "items");

	r.columns = upd;
	r.ncolumns = N(upd);
	r.identity = old;
	r.nidentity = N(old);
	r.pk = id_pk;
	r.npk = 1;
	open_db();
	begin();
	items_insert("1", "a");
	items_insert("2", "b");
	apply(&r);
	commit();
	expect("SELECT group_concat(id || name, ',') FROM (SELECT * FROM items ORDER BY id)",
	       "2b,10moved");
}

Test(sl, update_under_replica_identity_full_matches_on_the_key_only)
{
	struct dec_field upd[] = {fint("id", "1"), ftext("name", "new")};
	/* the whole old row, with a stale name that must not be matched on */
	struct dec_field old[] = {ftext("name", "stale"), fint("id", "1")};
	struct dec_record r = rec(DEC_UPDATE, "public", "items");

	r.columns = upd;
	r.ncolumns = N(upd);
	r.identity = old;
	r.nidentity = N(old);
	open_db();
	begin();
	items_insert("1", "a");
	apply(&r);
	commit();
	expect("SELECT group_concat(id || name, ',') FROM items", "1new");
}

Test(sl, delete_by_key_removes_only_that_row)
{
	struct dec_field old[] = {fint("id", "2")};
	struct dec_record r = rec(DEC_DELETE, "public", "items");

	r.identity = old;
	r.nidentity = N(old);
	r.pk = id_pk;
	r.npk = 1;
	open_db();
	begin();
	items_insert("1", "a");
	items_insert("2", "b");
	items_insert("3", "c");
	apply(&r);
	commit();
	expect("SELECT group_concat(id, ',') FROM (SELECT id FROM items ORDER BY id)", "1,3");
}

Test(sl, delete_and_truncate_of_a_missing_table_do_nothing)
{
	struct dec_field old[] = {fint("id", "2")};
	struct dec_record d = rec(DEC_DELETE, "public", "nowhere");
	struct dec_record t = rec(DEC_TRUNCATE, "public", "nowhere");

	d.identity = old;
	d.nidentity = N(old);
	open_db();
	begin();
	apply(&d);
	apply(&t);
	commit();
	expect("SELECT count(*) FROM sqlite_master WHERE name = 'nowhere'", "0");
}

Test(sl, truncate_empties_the_table)
{
	struct dec_record t = rec(DEC_TRUNCATE, "public", "items");

	open_db();
	begin();
	items_insert("1", "a");
	items_insert("2", "b");
	commit();
	apply1(&t);
	expect("SELECT count(*) FROM items", "0");
	begin();
	items_insert("3", "c");
	commit();
	expect("SELECT group_concat(id || name) FROM items", "3c");
}

Test(sl, composite_key_rows_are_upserted_updated_and_deleted_by_both_columns)
{
	struct dec_field pk[] = {fkey("a", "integer", 23), fkey("b", "text", 25)};
	struct dec_field c1[] = {fint("a", "1"), ftext("b", "x"), fint("v", "1")};
	struct dec_field c2[] = {fint("a", "1"), ftext("b", "y"), fint("v", "2")};
	struct dec_field c3[] = {fint("a", "1"), ftext("b", "x"), fint("v", "3")};
	struct dec_field key[] = {fint("a", "1"), ftext("b", "y")};
	struct dec_record r = rec(DEC_INSERT, "public", "ck");

	r.pk = pk;
	r.npk = N(pk);
	open_db();
	begin();
	r.columns = c1, r.ncolumns = N(c1);
	apply(&r);
	r.columns = c2, r.ncolumns = N(c2);
	apply(&r);
	r.action = DEC_UPDATE;
	r.columns = c3, r.ncolumns = N(c3);
	apply(&r);
	r.action = DEC_DELETE;
	r.columns = NULL, r.ncolumns = 0;
	r.identity = key, r.nidentity = N(key);
	apply(&r);
	commit();
	expect("SELECT group_concat(a || b || v) FROM ck", "1x3");
	expect("SELECT group_concat(name || pk) FROM pragma_table_info('ck')", "a1,b2,v0");
}

/* ---- schema from records ---- */

Test(sl, names_needing_quotes_work_everywhere)
{
	struct dec_field pk[] = {fkey("my id", "integer", 23)};
	struct dec_field cols[] = {fint("my id", "1"), ftext("q\"uote", "v1"),
	                           ftext("na\xc3\xafve col", "v2")};
	struct dec_field upd[] = {fint("my id", "1"), ftext("q\"uote", "v3")};
	struct dec_field old[] = {fint("my id", "1")};
	struct dec_record r = rec(DEC_INSERT, "we ird", "ta\"ble \xc3\xa9");

	r.columns = cols;
	r.ncolumns = N(cols);
	r.pk = pk;
	r.npk = 1;
	open_db();
	begin();
	apply(&r);
	r.action = DEC_UPDATE;
	r.columns = upd;
	r.ncolumns = N(upd);
	apply(&r);
	commit();
	expect("SELECT \"q\"\"uote\" || ' ' || \"na\xc3\xafve col\" FROM \"we ird__ta\"\"ble \xc3\xa9\""
	       " WHERE \"my id\" = 1",
	       "v3 v2");
	r.action = DEC_DELETE;
	r.columns = NULL;
	r.ncolumns = 0;
	r.identity = old;
	r.nidentity = 1;
	apply1(&r);
	expect("SELECT count(*) FROM \"we ird__ta\"\"ble \xc3\xa9\"", "0");
}

Test(sl, a_table_named_we_ird_with_a_quoted_column_is_created)
{
	struct dec_field cols[] = {fint("id", "1"), ftext("q\"uote", "x")};
	struct dec_record r = rec(DEC_INSERT, "public", "we ird");

	r.columns = cols;
	r.ncolumns = N(cols);
	r.pk = id_pk;
	r.npk = 1;
	open_db();
	apply1(&r);
	expect("SELECT \"q\"\"uote\" FROM \"we ird\"", "x");
}

Test(sl, a_new_column_in_a_record_adds_the_column)
{
	struct dec_field wide[] = {fint("id", "2"), ftext("name", "b"),
	                           field("price", "numeric(10,2)", 1700, DEC_NUMBER, "9.90")};
	struct dec_record r = rec(DEC_INSERT, "public", "items");

	r.columns = wide;
	r.ncolumns = N(wide);
	open_db();
	begin();
	items_insert("1", "a");
	apply(&r);
	items_insert("3", "c"); /* the old column list still works */
	commit();
	expect("SELECT type FROM pragma_table_info('items') WHERE name = 'price'", "TEXT");
	expect("SELECT group_concat(id || ':' || quote(price), ',') FROM (SELECT * FROM items ORDER BY id)",
	       "1:NULL,2:'9.90',3:NULL");
}

Test(sl, a_column_added_behind_the_cache_is_used_not_added_twice)
{
	struct dec_field wide[] = {fint("id", "2"), ftext("name", "b"), ftext("extra", "e")};
	struct dec_record r = rec(DEC_INSERT, "public", "items");

	r.columns = wide;
	r.ncolumns = N(wide);
	open_db();
	begin();
	items_insert("1", "a");
	commit();
	cr_assert_eq(sqlite3_exec(sl_handle(db), "ALTER TABLE items ADD COLUMN extra TEXT", NULL, NULL,
	                          NULL),
	             SQLITE_OK);
	apply1(&r);
	expect("SELECT group_concat(id || name || ifnull(extra, '-'), ',') FROM items", "1a-,2be");
}

Test(sl, a_table_of_key_columns_only_takes_repeated_inserts_and_updates)
{
	struct dec_field pk[] = {fkey("a", "integer", 23), fkey("b", "integer", 23)};
	struct dec_field cols[] = {fint("a", "1"), fint("b", "2")};
	struct dec_record r = rec(DEC_INSERT, "public", "pairs");

	r.columns = cols;
	r.ncolumns = N(cols);
	r.pk = pk;
	r.npk = N(pk);
	open_db();
	begin();
	apply(&r);
	apply(&r);
	r.action = DEC_UPDATE;
	apply(&r);
	commit();
	expect("SELECT group_concat(a || '-' || b) FROM pairs", "1-2");
}

Test(sl, a_missing_table_is_created_from_the_record)
{
	struct dec_field pk[] = {fkey("id", "bigint", 20)};
	struct dec_field cols[] = {field("id", "bigint", 20, DEC_NUMBER, "1"),
	                           field("n", "numeric", 1700, DEC_NUMBER, "1.0"),
	                           field("b", "bytea", 17, DEC_STRING, "00"),
	                           field("ok", "boolean", 16, DEC_TRUE, NULL),
	                           field("f", "double precision", 701, DEC_NULL, NULL),
	                           field("tags", "text[]", 0, DEC_STRING, "{a,b}")};
	struct dec_record r = rec(DEC_INSERT, "public", "fresh");

	r.columns = cols;
	r.ncolumns = N(cols);
	r.pk = pk;
	r.npk = 1;
	open_db();
	apply1(&r);
	expect("SELECT group_concat(name || ' ' || type || ' ' || pk, ',') FROM pragma_table_info('fresh')",
	       "id INTEGER 1,n TEXT 0,b BLOB 0,ok INTEGER 0,f REAL 0,tags TEXT 0");
	expect("SELECT id || n || hex(b) || ok || quote(f) || tags FROM fresh", "11.0001NULL{a,b}");
}

Test(sl, an_update_for_a_missing_table_creates_it_too)
{
	struct dec_field cols[] = {fint("id", "4"), ftext("name", "d")};
	struct dec_record r = rec(DEC_UPDATE, "public", "items");

	r.columns = cols;
	r.ncolumns = N(cols);
	r.pk = id_pk;
	r.npk = 1;
	open_db();
	apply1(&r);
	expect("SELECT id || name FROM items", "4d");
}

Test(sl, a_missing_table_without_key_info_is_an_error)
{
	struct dec_field cols[] = {fint("id", "1")};
	struct dec_record r = rec(DEC_INSERT, "public", "nokey");
	struct sl_err e = {0};

	r.columns = cols;
	r.ncolumns = N(cols);
	open_db();
	begin();
	cr_assert_eq(sl_apply(db, &r, &e), -1);
	cr_assert_not_null(strstr(e.msg, "\"nokey\""), "%s", e.msg);
	cr_assert_not_null(strstr(e.msg, "primary key"), "%s", e.msg);
	sl_rollback(db);
	expect("SELECT count(*) FROM sqlite_master WHERE name = 'nokey'", "0");
}

Test(sl, bridge_table_names_and_non_row_records_are_refused)
{
	struct dec_field cols[] = {ftext("key", "applying"), ftext("value", "0")};
	struct dec_record r = rec(DEC_INSERT, "public", "_pgsqlite_state");
	struct dec_record m = rec(DEC_MESSAGE, NULL, NULL);
	struct sl_err e = {0};

	r.columns = cols;
	r.ncolumns = N(cols);
	open_db();
	begin();
	cr_assert_eq(sl_apply(db, &r, &e), -1);
	cr_assert_not_null(strstr(e.msg, "bridge"), "%s", e.msg);
	cr_assert_eq(sl_apply(db, &m, &e), -1);
	sl_rollback(db);
}

Test(sl, an_error_message_names_the_table_and_sqlite_reason)
{
	struct dec_field cols[] = {fint("id", "1"), ftext("name", "x")};
	struct dec_record r = rec(DEC_INSERT, "public", "strict");
	struct sl_err e = {0};

	open_db();
	cr_assert_eq(sqlite3_exec(sl_handle(db),
	                          "CREATE TABLE strict (id INTEGER PRIMARY KEY, name TEXT CHECK (name <> 'x'))",
	                          NULL, NULL, NULL),
	             SQLITE_OK);
	r.columns = cols;
	r.ncolumns = N(cols);
	begin();
	cr_assert_eq(sl_apply(db, &r, &e), -1);
	cr_assert_eq(e.code, SQLITE_CONSTRAINT);
	cr_assert_str_eq(e.msg, "cannot insert into table \"strict\": CHECK constraint failed: name <> 'x'");
	sl_rollback(db);
}

/* ---- sl_ensure_table / sl_clear_table ---- */

Test(sl, ensure_table_creates_the_key_in_key_order_and_adds_columns_later)
{
	struct sl_column cols[] = {
		{"v", "text", 25, 0, false}, {"b", "integer", 23, 2, false}, {"a", "character varying(20)", 1043, 1, false}};
	struct sl_column more[] = {{"a", "character varying(20)", 1043, 1, false},
	                           {"w", "double precision", 0, 0, false}};
	struct sl_err e = {0};

	open_db();
	cr_assert_eq(sl_ensure_table(db, "inv", "stock", cols, N(cols), &e), 0, "%s", e.msg);
	expect("SELECT group_concat(name || ' ' || type || ' ' || pk, ',') FROM pragma_table_info('inv__stock')",
	       "v TEXT 0,b INTEGER 2,a TEXT 1");
	cr_assert_eq(sl_ensure_table(db, "inv", "stock", more, N(more), &e), 0, "%s", e.msg);
	expect("SELECT group_concat(name || ' ' || type, ',') FROM pragma_table_info('inv__stock')",
	       "v TEXT,b INTEGER,a TEXT,w REAL");
}

Test(sl, ensure_table_without_a_key_is_an_error)
{
	struct sl_column cols[] = {{"v", "text", 25, 0, false}};
	struct sl_err e = {0};

	open_db();
	cr_assert_eq(sl_ensure_table(db, "public", "nokey", cols, N(cols), &e), -1);
	cr_assert_not_null(strstr(e.msg, "nokey"), "%s", e.msg);
}

Test(sl, clear_table_deletes_every_row_and_ignores_a_missing_table)
{
	struct sl_err e = {0};

	open_db();
	begin();
	items_insert("1", "a");
	items_insert("2", "b");
	cr_assert_eq(sl_clear_table(db, "public", "items", &e), 0, "%s", e.msg);
	cr_assert_eq(sl_clear_table(db, "public", "nowhere", &e), 0, "%s", e.msg);
	commit();
	expect("SELECT count(*) FROM items", "0");
}

/* ---- transactions ---- */

Test(sl, applying_flag_is_one_inside_the_transaction_and_cleared_after)
{
	open_db();
	begin();
	cr_assert(sl_in_txn(db));
	expect_on(sl_handle(db), "SELECT value FROM _pgsqlite_state WHERE key = 'applying'", "1");
	expect("SELECT count(*) FROM _pgsqlite_state WHERE value = '1'", "0");
	items_insert("1", "a");
	commit();
	cr_assert(!sl_in_txn(db));
	expect("SELECT value <> '1' FROM _pgsqlite_state WHERE key = 'applying'", "1");
	expect_on(sl_handle(db), "SELECT value FROM _pgsqlite_state WHERE key = 'applying'", "0");
}

Test(sl, begin_twice_or_commit_without_begin_is_an_error)
{
	struct sl_err e = {0};

	open_db();
	cr_assert_eq(sl_commit(db, &e), -1);
	begin();
	cr_assert_eq(sl_begin(db, &e), -1);
	cr_assert(sl_in_txn(db));
	commit();
}

Test(sl, rollback_discards_rows_and_tables_created_in_the_transaction)
{
	struct dec_field wide[] = {fint("id", "2"), ftext("name", "b"), ftext("extra", "e")};
	struct dec_record r = rec(DEC_INSERT, "public", "items");

	r.columns = wide;
	r.ncolumns = N(wide);
	open_db();
	begin();
	items_insert("1", "a");
	sl_rollback(db);
	cr_assert(!sl_in_txn(db));
	expect("SELECT count(*) FROM sqlite_master WHERE name = 'items'", "0");
	expect("SELECT count(*) FROM _pgsqlite_state WHERE key = 'applying'", "0");
	/* the caches forgot the table: it is created again */
	begin();
	items_insert("1", "a");
	commit();
	begin();
	apply(&r);
	sl_rollback(db);
	/* and forgot the added column */
	begin();
	apply(&r);
	commit();
	expect("SELECT group_concat(id || name || ifnull(extra, '-'), ',') FROM items", "1a-,2be");
}

Test(sl, a_failed_commit_can_be_rolled_back_and_retried)
{
	struct dec_field cols[] = {fint("id", "1"), fint("parent", "99")};
	struct dec_record r = rec(DEC_INSERT, "public", "child");
	struct sl_err e = {0};
	sqlite3 *h;

	open_db();
	h = sl_handle(db);
	cr_assert_eq(sqlite3_exec(h,
	                          "PRAGMA foreign_keys = ON;"
	                          "CREATE TABLE parent (id INTEGER PRIMARY KEY);"
	                          "CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER"
	                          " REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
	                          NULL, NULL, NULL),
	             SQLITE_OK);
	r.columns = cols;
	r.ncolumns = N(cols);
	begin();
	apply(&r);
	cr_assert_eq(sl_commit(db, &e), -1);
	cr_assert_eq(e.code, SQLITE_CONSTRAINT, "%d %s", e.code, e.msg);
	cr_assert(sl_in_txn(db));
	sl_rollback(db);
	cr_assert(!sl_in_txn(db));
	expect("SELECT count(*) FROM child", "0");
	cr_assert_eq(sqlite3_exec(h, "INSERT INTO parent VALUES (99)", NULL, NULL, NULL), SQLITE_OK);
	begin();
	apply(&r);
	commit();
	expect("SELECT parent FROM child", "99");
}

Test(sl, begin_reports_busy_while_another_connection_writes)
{
	struct sl_err e = {0};
	sqlite3 *other;

	open_db();
	sqlite3_busy_timeout(sl_handle(db), 10);
	cr_assert_eq(sqlite3_open(path, &other), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	cr_assert_eq(sl_begin(db, &e), -1);
	cr_assert_eq(e.code, SQLITE_BUSY, "%d %s", e.code, e.msg);
	cr_assert(!sl_in_txn(db));
	sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(other);
	begin();
	items_insert("1", "a");
	commit();
	expect("SELECT count(*) FROM items", "1");
}

/* ---- state, counters, drop ---- */

Test(sl, state_get_and_set_round_trip)
{
	struct sl_err e = {0};
	char v[8];

	open_db();
	cr_assert_eq(sl_state_get(db, "applied_lsn", v, sizeof v), 0);
	cr_assert_eq(sl_state_set(db, "applied_lsn", "0/16", &e), 0, "%s", e.msg);
	cr_assert_eq(sl_state_set(db, "applied_lsn", "16/B374D848", &e), 0, "%s", e.msg);
	cr_assert_eq(sl_state_get(db, "applied_lsn", v, sizeof v), 1);
	cr_assert_str_eq(v, "16/B374", "truncated to the buffer");
	expect("SELECT value FROM _pgsqlite_state WHERE key = 'applied_lsn'", "16/B374D848");
}

Test(sl, pending_changes_and_unresolved_conflicts_are_counted)
{
	open_db();
	cr_assert_eq(sl_pending_changes(db), 0);
	cr_assert_eq(sl_unresolved_conflicts(db), 0);
	cr_assert_eq(sqlite3_exec(sl_handle(db),
	                          "INSERT INTO _pgsqlite_changes (table_name, op) VALUES ('t','I'),('t','D');"
	                          "INSERT INTO _pgsqlite_conflicts (table_name, resolved_at)"
	                          " VALUES ('t', NULL), ('t', '2026-01-01'), ('t', NULL)",
	                          NULL, NULL, NULL),
	             SQLITE_OK);
	cr_assert_eq(sl_pending_changes(db), 2);
	cr_assert_eq(sl_unresolved_conflicts(db), 2);
}

Test(sl, drop_removes_the_bridge_objects_and_keeps_user_tables)
{
	struct sl_err e = {0};
	char v[8];

	open_db();
	begin();
	items_insert("1", "a");
	commit();
	cr_assert_eq(sqlite3_exec(sl_handle(db),
	                          "CREATE TRIGGER _pgsqlite_items_ins AFTER INSERT ON items BEGIN"
	                          " INSERT INTO _pgsqlite_changes (table_name, op) VALUES ('items','I'); END;"
	                          "CREATE TRIGGER _pgsqlite_items_del AFTER DELETE ON items BEGIN SELECT 1; END;"
	                          "CREATE TRIGGER user_items_trg AFTER UPDATE ON items BEGIN SELECT 1; END;",
	                          NULL, NULL, NULL),
	             SQLITE_OK);
	cr_assert_eq(sl_state_get(db, "applying", v, sizeof v), 1);
	cr_assert_eq(sl_drop_bridge_objects(db, &e), 0, "%s", e.msg);
	expect("SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master"
	       " WHERE name NOT LIKE 'sqlite%' ORDER BY name)",
	       "items,user_items_trg");
	expect("SELECT id || name FROM items", "1a");
	cr_assert_eq(sl_state_get(db, "applying", v, sizeof v), -1);
	cr_assert_eq(sl_pending_changes(db), -1);
}

/* ---- the caches and bulk ---- */

Test(sl, many_statement_shapes_overflow_the_cache_without_harm)
{
	char names[300][16];
	struct dec_record r = rec(DEC_INSERT, "public", NULL);

	open_db();
	begin();
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 300; i++) {
			char v[16];
			snprintf(names[i], sizeof names[i], "t%d", i);
			snprintf(v, sizeof v, "%d", round * 1000 + i);
			struct dec_field cols[] = {fint("id", "1"), fint("v", v)};
			r.table = S(names[i]);
			r.columns = cols;
			r.ncolumns = N(cols);
			r.pk = id_pk;
			r.npk = 1;
			apply(&r);
		}
	commit();
	expect("SELECT v FROM t0", "1000");
	expect("SELECT v FROM t299", "1299");
}

Test(sl, column_lists_in_other_orders_and_subsets_go_to_the_right_columns)
{
	struct dec_field a[] = {fint("id", "1"), ftext("x", "x1"), ftext("y", "y1")};
	struct dec_field b[] = {ftext("y", "y2"), fint("id", "2"), ftext("x", "x2")};
	struct dec_field c[] = {fint("id", "3"), ftext("y", "y3")};
	struct dec_record r = rec(DEC_INSERT, "public", "o");

	r.pk = id_pk;
	r.npk = 1;
	open_db();
	begin();
	for (int k = 0; k < 2; k++) {
		r.columns = a, r.ncolumns = N(a);
		apply(&r);
		r.columns = b, r.ncolumns = N(b);
		apply(&r);
		r.columns = c, r.ncolumns = N(c);
		apply(&r);
	}
	commit();
	expect("SELECT group_concat(id || quote(x) || y, ',') FROM (SELECT * FROM o ORDER BY id)",
	       "1'x1'y1,2'x2'y2,3NULLy3");
}

Test(sl, two_hundred_thousand_inserts_in_one_transaction)
{
	enum { ROWS = 200000 };
	char id[24], name[24];
	struct dec_field cols[] = {fint("id", ""), ftext("name", ""),
	                           field("price", "numeric", 1700, DEC_NUMBER, "12.50"),
	                           field("ok", "boolean", 16, DEC_TRUE, NULL)};
	struct dec_record r = rec(DEC_INSERT, "public", "bulk");

	r.columns = cols;
	r.ncolumns = N(cols);
	r.pk = id_pk;
	r.npk = 1;
	open_db();
	begin();
	for (int i = 1; i <= ROWS; i++) {
		cols[0].value.len = (size_t)snprintf(id, sizeof id, "%d", i);
		cols[0].value.p = id;
		cols[1].value.len = (size_t)snprintf(name, sizeof name, "row %d", i);
		cols[1].value.p = name;
		apply(&r);
	}
	commit();
	expect("SELECT count(*) || ' ' || sum(ok) || ' ' || max(id) FROM bulk", "200000 200000 200000");
	expect("SELECT name || ' ' || typeof(price) || price FROM bulk WHERE id = 123456",
	       "row 123456 text12.50");
}
