/* test_exact.c: values that must survive both ways bit for bit: random
 * doubles across every magnitude (large ones, subnormals, zero) written in
 * SQLite and in Postgres, through the copy at init, the stream and the
 * push.  Each run prints its seed so a failure can be replayed with
 * PGSB_TEST_SEED. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../support/it.h"

static struct it_env env;

static void fini(void)
{
	it_teardown(&env);
}

TestSuite(exact, .fini = fini, .timeout = 240);

#define NDOUBLES 3000

static uint64_t test_seed(void)
{
	const char *s = getenv("PGSB_TEST_SEED");
	uint64_t seed = s && *s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL) * 2654435761u;

	seed |= 1;
	cr_log_info("seed %llu (replay with PGSB_TEST_SEED)", (unsigned long long)seed);
	return seed;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Finite doubles: a third between 1e200 and 1e308, some subnormals, the
 * rest over every exponent; a few fixed hard cases first. */
static void make_doubles(double *v, size_t n, uint64_t seed)
{
	static const double fixed[] = {0.0, 5e-324, -2.2250738585072009e-308, 1.7976931348623157e308,
	                               -1e308, 0.1, 1e200, 9007199254740993.0};
	uint64_t s = seed;

	for (size_t i = 0; i < n; i++) {
		if (i < sizeof fixed / sizeof *fixed) {
			v[i] = fixed[i];
			continue;
		}
		uint64_t bits = xorshift(&s);
		double d;
		if (i % 3 == 0)
			d = (bits & 1 ? -1 : 1) * pow(10, 200 + (double)(bits >> 11) / (double)(1ULL << 53) * 108);
		else {
			if (i % 7 == 0)
				bits &= 0x800fffffffffffffULL; /* subnormal */
			memcpy(&d, &bits, sizeof d);
		}
		v[i] = isfinite(d) ? d : 1.5;
	}
}

static uint64_t bits_of(double d)
{
	uint64_t b;
	memcpy(&b, &d, sizeof b);
	return b;
}

static void sqlite_insert_doubles(struct it_env *e, const double *v, size_t n)
{
	sqlite3 *db = it_sqlite_open(e);
	sqlite3_stmt *st;

	cr_assert_eq(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "INSERT INTO f (id, r) VALUES (?1, ?2)", -1, &st, NULL), SQLITE_OK);
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)i);
		sqlite3_bind_double(st, 2, v[i]);
		cr_assert_eq(sqlite3_step(st), SQLITE_DONE, "%s", sqlite3_errmsg(db));
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	cr_assert_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* What SQLite holds for row i, as bits (SQLite keeps no negative zero). */
static void sqlite_bits(struct it_env *e, uint64_t *out, size_t n)
{
	sqlite3 *db = it_sqlite_open(e);
	sqlite3_stmt *st;

	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT id, r, typeof(r) FROM f", -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		size_t i = (size_t)sqlite3_column_int64(st, 0);
		cr_assert_lt(i, n);
		cr_assert_str_eq((const char *)sqlite3_column_text(st, 2), "real", "row %zu", i);
		out[i] = bits_of(sqlite3_column_double(st, 1));
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* Compares every row of Postgres's f with want[], bit for bit. */
static void expect_pg_bits(struct it_env *e, const uint64_t *want, size_t n, uint64_t seed)
{
	PGresult *r = PQexec(e->pg, "SELECT id, encode(float8send(r), 'hex') FROM f ORDER BY id");
	size_t wrong = 0, first = n;

	cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(e->pg));
	cr_assert_eq((size_t)PQntuples(r), n, "seed %llu", (unsigned long long)seed);
	for (int k = 0; k < PQntuples(r); k++) {
		size_t i = (size_t)strtoull(PQgetvalue(r, k, 0), NULL, 10);
		uint64_t got = strtoull(PQgetvalue(r, k, 1), NULL, 16);
		if (got != want[i] && wrong++ == 0)
			first = i;
	}
	PQclear(r);
	double w;
	memcpy(&w, &want[first < n ? first : 0], sizeof w);
	cr_assert_eq(wrong, 0, "seed %llu: %zu of %zu doubles differ in Postgres, first row %zu (%a)",
	             (unsigned long long)seed, wrong, n, first, w);
}

Test(exact, doubles_written_in_sqlite_reach_postgres_bit_for_bit)
{
	static double v[NDOUBLES];
	static uint64_t held[NDOUBLES];
	char out[8192];
	uint64_t seed = test_seed();

	make_doubles(v, NDOUBLES, seed);
	v[NDOUBLES - 1] = -0.0;
	it_setup(&env, "dblpush");
	it_sql(&env, "CREATE TABLE f (id int PRIMARY KEY, r double precision)");
	it_write_conf(&env, "manual", NULL);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	sqlite_insert_doubles(&env, v, NDOUBLES);
	sqlite_bits(&env, held, NDOUBLES);
	for (size_t i = 0; i < NDOUBLES - 1; i++)
		cr_assert_eq(held[i], bits_of(v[i]), "SQLite itself changed row %zu", i);
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	expect_pg_bits(&env, held, NDOUBLES, seed);
	/* and an update of every value goes the same way */
	it_sqlite_exec(&env, "UPDATE f SET r = -r");
	sqlite_bits(&env, held, NDOUBLES);
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	expect_pg_bits(&env, held, NDOUBLES, seed);
}

/* Inserts v into Postgres as %.17g text (glibc rounds it correctly). */
static void pg_insert_doubles(struct it_env *e, const double *v, size_t from, size_t to)
{
	char buf[64];

	it_sql(e, "BEGIN");
	for (size_t i = from; i < to; i++) {
		snprintf(buf, sizeof buf, "%.17g", v[i]);
		const char *params[2] = {NULL, buf};
		char id[32];
		snprintf(id, sizeof id, "%zu", i);
		params[0] = id;
		PGresult *r = PQexecParams(e->pg, "INSERT INTO f (id, r) VALUES ($1, $2)", 2, NULL, params,
		                           NULL, NULL, 0);
		cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQerrorMessage(e->pg));
		PQclear(r);
	}
	it_sql(e, "COMMIT");
}

Test(exact, doubles_written_in_postgres_reach_sqlite_bit_for_bit_by_copy_and_stream)
{
	static double v[NDOUBLES];
	static uint64_t held[NDOUBLES];
	char out[8192];
	uint64_t seed = test_seed();

	make_doubles(v, NDOUBLES, seed);
	it_setup(&env, "dblpull");
	it_sql(&env, "CREATE TABLE f (id int PRIMARY KEY, r double precision, note text)");
	pg_insert_doubles(&env, v, 0, NDOUBLES / 2);
	it_write_conf(&env, "manual", NULL);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	pg_insert_doubles(&env, v, NDOUBLES / 2, NDOUBLES);
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	memset(held, 0, sizeof held);
	sqlite_bits(&env, held, NDOUBLES);
	for (size_t i = 0; i < NDOUBLES; i++)
		cr_assert_eq(held[i], bits_of(v[i] == 0 ? 0.0 : v[i]),
		             "seed %llu: row %zu: Postgres %a, SQLite holds %016llx", (unsigned long long)seed,
		             i, v[i], (unsigned long long)held[i]);
}

/* ---- NaN and +-Infinity (wal2json writes them as null) ---- */

#define SPECIALS_TABLE "CREATE TABLE s (id int PRIMARY KEY, d double precision, f real, n numeric, note text)"
#define SPECIALS_ROWS                                                                      \
	"INSERT INTO s VALUES (1, 'NaN', 'NaN', 'NaN', 'a'), (2, 'Infinity', '-Infinity', "  \
	"'Infinity', 'b'), (3, '-Infinity', 'Infinity', '-Infinity', 'c'), (4, NULL, NULL, NULL, 'd')"
#define SPECIALS_PG "SELECT id, d, f, n, note FROM s ORDER BY id"
#define SPECIALS_WANT                                                            \
	"1|NaN|NaN|NaN|%s\n2|Infinity|-Infinity|Infinity|%s\n3|-Infinity|Infinity|-Infinity|%s\n" \
	"4|<null>|<null>|<null>|%s\n"
#define SPECIALS_LOCAL "SELECT id, typeof(d), d, typeof(f), f, n FROM s ORDER BY id"
#define SPECIALS_LOCAL_WANT                                                              \
	"1|text|NaN|text|NaN|NaN\n2|real|Inf|real|-Inf|Infinity\n3|real|-Inf|real|Inf|-Infinity\n" \
	"4|null|<null>|null|<null>|<null>\n"

static char *specials_want(const char *n1, const char *n2, const char *n3, const char *n4)
{
	static char buf[512];
	snprintf(buf, sizeof buf, SPECIALS_WANT, n1, n2, n3, n4);
	return buf;
}

Test(exact, nan_and_infinity_copied_at_init_survive_a_local_edit_of_another_column)
{
	char out[8192];

	it_setup(&env, "nancopy");
	it_sql(&env, SPECIALS_TABLE);
	it_sql(&env, SPECIALS_ROWS);
	it_write_conf(&env, "manual", NULL);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	cr_assert_str_eq(it_sqlite_rows(&env, SPECIALS_LOCAL), SPECIALS_LOCAL_WANT);
	it_sqlite_exec(&env, "UPDATE s SET note = note || '!'");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_str_eq(it_pg_rows(&env, SPECIALS_PG), specials_want("a!", "b!", "c!", "d!"));
}

Test(exact, nan_and_infinity_written_in_sqlite_reach_postgres)
{
	char out[8192];

	it_setup(&env, "nanpush");
	it_sql(&env, SPECIALS_TABLE);
	it_write_conf(&env, "manual", NULL);
	cr_assert_eq(it_bridge(&env, "init", NULL, 0), 0);
	it_sqlite_exec(&env, "INSERT INTO s VALUES (1, 'NaN', 'NaN', 'NaN', 'a'), (2, 9e999, -9e999, "
	                     "'Infinity', 'b'), (3, -9e999, 9e999, '-Infinity', 'c'), (4, NULL, NULL, NULL, 'd')");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_str_eq(it_pg_rows(&env, SPECIALS_PG), specials_want("a", "b", "c", "d"));
	it_sqlite_exec(&env, "UPDATE s SET note = 'x' WHERE id = 1; UPDATE s SET d = 'NaN' WHERE id = 2");
	cr_assert_eq(it_bridge(&env, "sync", out, sizeof out), 0, "%s", out);
	cr_assert_str_eq(it_pg_rows(&env, "SELECT id, d, note FROM s WHERE id <= 2 ORDER BY id"),
	                 "1|NaN|x\n2|NaN|b\n");
}

/* Needs the pull to call exact_fill_nulls before sl_apply. */
Test(exact, nan_and_infinity_streamed_from_postgres_arrive_as_themselves)
{
	it_setup(&env, "nanstream");
	it_sql(&env, SPECIALS_TABLE);
	it_write_conf(&env, "realtime", NULL);
	pid_t pid = it_run_online(&env);
	it_sql(&env, SPECIALS_ROWS);
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM s", 4, 10000), "%s", it_bridge_stderr(&env));
	cr_assert_str_eq(it_sqlite_rows(&env, SPECIALS_LOCAL), SPECIALS_LOCAL_WANT);
	/* an update that leaves them alone keeps them; a local edit pushes none of them as NULL */
	it_sql(&env, "UPDATE s SET note = 'pg'");
	cr_assert(it_wait_sqlite_int(&env, "SELECT count(*) FROM s WHERE note = 'pg'", 4, 10000));
	cr_assert_str_eq(it_sqlite_rows(&env, SPECIALS_LOCAL), SPECIALS_LOCAL_WANT);
	it_sqlite_exec(&env, "UPDATE s SET note = 'local'");
	cr_assert(it_wait_pg_int(&env, "SELECT count(*) FROM s WHERE note = 'local'", 4, 10000));
	it_stop(&env, pid);
	cr_assert_str_eq(it_pg_rows(&env, SPECIALS_PG), specials_want("local", "local", "local", "local"));
}
