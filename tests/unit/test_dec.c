/* test_dec.c: Criterion tests of the wal2json reader (decoder/) against
 * real captured wal2json lines, hand-written malformed input, and cJSON as a
 * differential oracle.  Run from the repository root (fixtures are opened
 * by relative path). */

#include <criterion/criterion.h>
#include <cjson/cJSON.h>

#include <glob.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../decoder/dec.h"
#include "unit_support.h"

#define SMALL_FIXTURE "tests/fixtures/types-toast-truncate-message.jsonl"
#define MANY_FIXTURE "tests/fixtures/many-types.jsonl"

static struct dec_parser P;

static void setup(void)
{
	dec_parser_init(&P);
}

static void teardown(void)
{
	dec_parser_free(&P);
	ut_free_kept(); /* the input copies records point into */
}

TestSuite(dec, .init = setup, .fini = teardown);


/* Parses the C string json (without its NUL) from an exact-size copy. */
static int parse(const char *json, struct dec_record *r, struct dec_error *e)
{
	size_t n = strlen(json);
	return dec_parse(&P, ut_keep(ut_exact_copy(json, n)), n, r, e);
}

/* The lines of a fixture file, each an exact-size copy without its '\n'. */
struct lines {
	size_t n;
	char **p;
	size_t *len;
};

static struct lines load_lines(const char *path)
{
	struct lines l = { 0, NULL, NULL };
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s (run the tests from the repository root)", path);
	char *buf = NULL;
	size_t cap = 0;
	ssize_t got;
	while ((got = getline(&buf, &cap, f)) > 0) {
		size_t n = (size_t)got;
		if (buf[n - 1] == '\n')
			n--;
		l.p = realloc(l.p, (l.n + 1) * sizeof *l.p);
		l.len = realloc(l.len, (l.n + 1) * sizeof *l.len);
		cr_assert(l.p && l.len);
		l.p[l.n] = ut_exact_copy(buf, n);
		l.len[l.n++] = n;
	}
	free(buf);
	fclose(f);
	cr_assert_gt(l.n, 0, "%s is empty", path);
	return l;
}

static void free_lines(struct lines *l)
{
	for (size_t k = 0; k < l->n; k++)
		free(l->p[k]);
	free(l->p);
	free(l->len);
}

/* Parses line no (1-based) of a fixture; the line stays alive until the
 * test ends. */
static void parse_fixture_line(const char *path, size_t no, struct dec_record *r)
{
	struct lines l = load_lines(path);
	struct dec_error e = { 0, NULL };
	cr_assert_leq(no, l.n);
	char *line = ut_keep(ut_exact_copy(l.p[no - 1], l.len[no - 1]));
	size_t len = l.len[no - 1];
	free_lines(&l);
	int rc = dec_parse(&P, line, len, r, &e);
	cr_assert_eq(rc, 0, "%s:%zu rejected at %zu: %s", path, no, e.offset, e.msg);
}

static const struct dec_field *find_field(const struct dec_field *f, size_t n,
                                          const char *name)
{
	for (size_t k = 0; k < n; k++)
		if (dec_str_eq(f[k].name, name))
			return &f[k];
	return NULL;
}

static void expect_str(struct dec_str s, const char *want)
{
	cr_expect(dec_str_eq(s, want), "got \"%.*s\", want \"%s\"", (int)s.len,
	          s.p ? s.p : "", want);
}

/* The first column of an insert whose only column has the given JSON value. */
static struct dec_field value_of(const char *json_value, int *rc)
{
	char buf[512];
	struct dec_record r;
	struct dec_error e;
	snprintf(buf, sizeof buf,
	         "{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":"
	         "[{\"name\":\"c\",\"type\":\"x\",\"typeoid\":1,\"value\":%s}]}",
	         json_value);
	*rc = parse(buf, &r, &e);
	struct dec_field none = { { NULL, 0 }, { NULL, 0 }, 0, DEC_NULL, { NULL, 0 } };
	return *rc == 0 && r.ncolumns == 1 ? r.columns[0] : none;
}

/* Expects json to be rejected with -1, a message, and an offset in range;
 * when msg is not NULL the message must be exactly that. */
static void expect_reject(const char *json, const char *msg)
{
	struct dec_record r;
	struct dec_error e = { 0, NULL };
	int rc = parse(json, &r, &e);
	cr_expect_eq(rc, -1, "accepted: %s", json);
	if (rc != -1)
		return;
	cr_expect_not_null(e.msg, "no message for: %s", json);
	cr_expect_leq(e.offset, strlen(json), "offset out of range for: %s", json);
	if (msg && e.msg)
		cr_expect_str_eq(e.msg, msg, "for %s", json);
}

static void expect_accept(const char *json)
{
	struct dec_record r;
	struct dec_error e = { 0, NULL };
	int rc = parse(json, &r, &e);
	cr_expect_eq(rc, 0, "rejected at %zu (%s): %s", e.offset, e.msg ? e.msg : "", json);
}

/* ---- the real captured fixture ---- */

Test(dec, every_line_of_the_captured_fixture_parses_in_order_of_actions)
{
	struct lines l = load_lines(SMALL_FIXTURE);
	const char want[] = "MBIUDTMIC";
	cr_assert_eq(l.n, sizeof want - 1);
	for (size_t k = 0; k < l.n; k++) {
		struct dec_record r;
		struct dec_error e = { 0, NULL };
		int rc = dec_parse(&P, l.p[k], l.len[k], &r, &e);
		cr_expect_eq(rc, 0, "line %zu rejected at %zu: %s", k + 1, e.offset, e.msg);
		cr_expect_eq((char)r.action, want[k], "line %zu", k + 1);
	}
	free_lines(&l);
}

Test(dec, begin_carries_xid_timestamp_origin_lsn_and_nextlsn)
{
	struct dec_record r;
	parse_fixture_line(SMALL_FIXTURE, 2, &r);
	cr_expect_eq(r.action, DEC_BEGIN);
	cr_expect(r.has_xid);
	cr_expect_eq(r.xid, 727);
	expect_str(r.timestamp, "2026-11-24 21:23:41.757146+00");
	cr_expect(r.has_origin);
	cr_expect_eq(r.origin, 0);
	cr_expect_eq(r.lsn, UINT64_C(0x1633D48));
	cr_expect_eq(r.nextlsn, UINT64_C(0x1633EB8));
	cr_expect_eq(r.ncolumns, 0);
	cr_expect_null(r.columns);
	cr_expect_eq(r.schema.len, 0);
}

Test(dec, commit_carries_the_same_nextlsn_as_its_begin)
{
	struct dec_record r;
	parse_fixture_line(SMALL_FIXTURE, 9, &r);
	cr_expect_eq(r.action, DEC_COMMIT);
	cr_expect_eq(r.xid, 727);
	cr_expect_eq(r.lsn, UINT64_C(0x1633D48));
	cr_expect_eq(r.nextlsn, UINT64_C(0x1633EB8));
}

Test(dec, insert_has_every_column_with_name_type_and_oid)
{
	struct dec_record r;
	parse_fixture_line(SMALL_FIXTURE, 3, &r);
	cr_expect_eq(r.action, DEC_INSERT);
	expect_str(r.schema, "public");
	expect_str(r.table, "t");
	cr_assert_eq(r.ncolumns, 9);
	const char *names[] = { "id", "n", "b", "j", "ts", "ok", "f", "big", "we ird" };
	for (size_t k = 0; k < 9; k++)
		expect_str(r.columns[k].name, names[k]);
	expect_str(r.columns[1].type, "numeric");
	cr_expect_eq(r.columns[1].typeoid, 1700);
	expect_str(r.columns[4].type, "timestamp with time zone");
	cr_expect_eq(r.nidentity, 0);
	cr_assert_eq(r.npk, 1);
	expect_str(r.pk[0].name, "id");
	expect_str(r.pk[0].type, "integer");
	cr_expect_eq(r.pk[0].typeoid, 23);
	cr_expect_eq(r.pk[0].kind, DEC_NULL);
	cr_expect_eq(r.pk[0].value.len, 0);
}

Test(dec, integer_value_is_a_number_with_its_text)
{
	struct dec_record r;
	parse_fixture_line(SMALL_FIXTURE, 3, &r);
	cr_expect_eq(r.columns[0].kind, DEC_NUMBER);
	expect_str(r.columns[0].value, "1");
}

Test(dec, numeric_keeps_its_exact_digits)
{
	struct dec_record r;
	parse_fixture_line(SMALL_FIXTURE, 3, &r);
	cr_expect_eq(r.columns[1].kind, DEC_NUMBER);
	expect_str(r.columns[1].value, "12.50");
	parse_fixture_line(SMALL_FIXTURE, 4, &r);
	expect_str(find_field(r.columns, r.ncolumns, "n")->value,
	           "123456789012345678901234567890.000001");
	parse_fixture_line(SMALL_FIXTURE, 8, &r);
	expect_str(find_field(r.columns, r.ncolumns, "n")->value, "9223372036854775807");
}

Test(dec, numbers_of_every_form_keep_their_text)
{
	const char *ok[] = { "0", "-0", "12.50", "-1.5e+300", "1E5", "0.0001e-7", "1e-0",
	                     "123456789012345678901234567890.000001",
	                     "9223372036854775807", "-9223372036854775808", "0.0" };
	for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
		int rc;
		struct dec_field f = value_of(ok[k], &rc);
		cr_expect_eq(rc, 0, "%s rejected", ok[k]);
		cr_expect_eq(f.kind, DEC_NUMBER, "%s", ok[k]);
		expect_str(f.value, ok[k]);
	}
}

Test(dec, bytea_arrives_as_its_hex_text)
{
	struct dec_record r;
	parse_fixture_line(SMALL_FIXTURE, 3, &r);
	const struct dec_field *b = find_field(r.columns, r.ncolumns, "b");
	cr_assert_not_null(b);
	cr_expect_eq(b->kind, DEC_STRING);
	expect_str(b->value, "00ff");
	expect_str(b->type, "bytea");
	cr_expect_eq(b->typeoid, 17);
}

Test(dec, jsonb_value_is_unescaped)
{
	struct dec_record r;
	parse_fixture_line(SMALL_FIXTURE, 3, &r);
	const struct dec_field *j = find_field(r.columns, r.ncolumns, "j");
	cr_expect_eq(j->kind, DEC_STRING);
	expect_str(j->value, "{\"a\": 1}");
}

Test(dec, quotes_and_backslashes_in_a_value_are_unescaped)
{
	struct dec_record r;
	parse_fixture_line(SMALL_FIXTURE, 3, &r);
	const struct dec_field *w = find_field(r.columns, r.ncolumns, "we ird");
	cr_assert_not_null(w);
	cr_expect_eq(w->value.len, 4);
	expect_str(w->value, "q\"\\\\");
}

Test(dec, booleans_and_nulls_have_their_kinds)
{
	struct dec_record r;
	parse_fixture_line(SMALL_FIXTURE, 3, &r);
	const struct dec_field *ok = find_field(r.columns, r.ncolumns, "ok");
	const struct dec_field *f = find_field(r.columns, r.ncolumns, "f");
	cr_expect_eq(ok->kind, DEC_TRUE);
	cr_expect_eq(ok->value.len, 0);
	cr_expect_eq(f->kind, DEC_NULL);
	cr_expect_eq(f->value.len, 0);
	int rc;
	cr_expect_eq(value_of("false", &rc).kind, DEC_FALSE);
	cr_expect_eq(rc, 0);
}

Test(dec, toasted_column_is_kept_whole_in_an_insert)
{
	struct dec_record r;
	parse_fixture_line(SMALL_FIXTURE, 3, &r);
	const struct dec_field *big = find_field(r.columns, r.ncolumns, "big");
	cr_assert_not_null(big);
	cr_expect_eq(big->value.len, 300000);
	for (size_t k = 0; k < big->value.len; k++)
		if (big->value.p[k] != 'x')
			cr_assert_fail("byte %zu of big is not 'x'", k);
}

Test(dec, update_omits_the_unchanged_toasted_column)
{
	struct dec_record r;
	parse_fixture_line(SMALL_FIXTURE, 4, &r);
	cr_expect_eq(r.action, DEC_UPDATE);
	cr_expect_eq(r.ncolumns, 8);
	cr_expect_null(find_field(r.columns, r.ncolumns, "big"));
	cr_expect_not_null(find_field(r.columns, r.ncolumns, "we ird"));
	cr_assert_eq(r.nidentity, 1);
	expect_str(r.identity[0].name, "id");
	cr_expect_eq(r.identity[0].kind, DEC_NUMBER);
	expect_str(r.identity[0].value, "1");
	cr_assert_eq(r.npk, 1);
	expect_str(r.pk[0].name, "id");
}

Test(dec, delete_carries_identity_and_pk_but_no_columns)
{
	struct dec_record r;
	parse_fixture_line(SMALL_FIXTURE, 5, &r);
	cr_expect_eq(r.action, DEC_DELETE);
	expect_str(r.table, "t");
	cr_expect_eq(r.ncolumns, 0);
	cr_assert_eq(r.nidentity, 1);
	expect_str(r.identity[0].value, "1");
	cr_expect_eq(r.npk, 1);
}

Test(dec, truncate_names_its_schema_and_table)
{
	struct dec_record r;
	parse_fixture_line(SMALL_FIXTURE, 6, &r);
	cr_expect_eq(r.action, DEC_TRUNCATE);
	expect_str(r.schema, "public");
	expect_str(r.table, "t");
	cr_expect_eq(r.lsn, UINT64_C(0x1633BB0));
}

Test(dec, non_transactional_message_has_a_null_xid)
{
	struct dec_record r;
	parse_fixture_line(SMALL_FIXTURE, 1, &r);
	cr_expect_eq(r.action, DEC_MESSAGE);
	cr_expect_not(r.has_xid);
	cr_expect_not(r.has_origin);
	cr_expect_eq(r.timestamp.len, 0);
	cr_expect_not(r.transactional);
	expect_str(r.prefix, "p");
	expect_str(r.content, "hello");
	cr_expect_eq(r.lsn, UINT64_C(0x1633C20));
}

Test(dec, transactional_message_has_its_xid)
{
	struct dec_record r;
	parse_fixture_line(SMALL_FIXTURE, 7, &r);
	cr_expect_eq(r.action, DEC_MESSAGE);
	cr_expect(r.has_xid);
	cr_expect_eq(r.xid, 727);
	cr_expect(r.transactional);
	expect_str(r.content, "tx");
}

Test(dec, insert_of_nulls_has_all_null_kinds)
{
	struct dec_record r;
	parse_fixture_line(SMALL_FIXTURE, 8, &r);
	cr_assert_eq(r.ncolumns, 9);
	for (size_t k = 2; k < 9; k++)
		cr_expect_eq(r.columns[k].kind, DEC_NULL, "column %zu", k);
}

Test(dec, table_without_a_key_has_an_empty_pk)
{
	struct dec_record r;
	struct lines l = load_lines(MANY_FIXTURE);
	size_t seen = 0;
	for (size_t k = 0; k < l.n; k++) {
		struct dec_error e;
		cr_assert_eq(dec_parse(&P, l.p[k], l.len[k], &r, &e), 0);
		if (r.action == DEC_UPDATE && dec_str_eq(r.table, "full_ident")) {
			cr_expect_eq(r.npk, 0);
			cr_expect_eq(r.nidentity, 3, "REPLICA IDENTITY FULL sends the old row");
			cr_expect_eq(r.ncolumns, 3);
			seen++;
		}
	}
	cr_expect_eq(seen, 1);
	free_lines(&l);
}

/* ---- strings ---- */

Test(dec, plain_strings_point_into_the_line)
{
	const char *json = "{\"action\":\"T\",\"schema\":\"public\",\"table\":\"t\"}";
	size_t n = strlen(json);
	char *line = ut_keep(ut_exact_copy(json, n));
	struct dec_record r;
	struct dec_error e;
	cr_assert_eq(dec_parse(&P, line, n, &r, &e), 0);
	cr_expect(r.schema.p >= line && r.schema.p + r.schema.len <= line + n);
	cr_expect_eq(r.schema.p, line + 24);
}

Test(dec, escaped_strings_are_unescaped_into_scratch)
{
	int rc;
	struct dec_field f = value_of("\"a\\nb\"", &rc);
	cr_assert_eq(rc, 0);
	cr_expect(f.value.p >= P.scratch && f.value.p + f.value.len <= P.scratch + P.scratch_cap);
	expect_str(f.value, "a\nb");
}

Test(dec, every_simple_escape_is_decoded)
{
	int rc;
	struct dec_field f = value_of("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", &rc);
	cr_assert_eq(rc, 0);
	expect_str(f.value, "\"\\/\b\f\n\r\t");
}

Test(dec, unicode_escapes_become_utf8)
{
	int rc;
	expect_str(value_of("\"caf\\u00e9\"", &rc).value, "caf\xc3\xa9");
	cr_expect_eq(rc, 0);
	expect_str(value_of("\"\\u20AC\"", &rc).value, "\xe2\x82\xac");
	expect_str(value_of("\"\\u0041\\u007f\"", &rc).value, "A\x7f");
}

Test(dec, surrogate_pair_becomes_one_four_byte_character)
{
	int rc;
	struct dec_field f = value_of("\"\\ud83d\\ude00!\"", &rc);
	cr_assert_eq(rc, 0);
	expect_str(f.value, "\xf0\x9f\x98\x80!");
	f = value_of("\"\\uDBFF\\uDFFF\"", &rc);
	expect_str(f.value, "\xf4\x8f\xbf\xbf");
}

Test(dec, escaped_nul_yields_a_nul_byte)
{
	int rc;
	struct dec_field f = value_of("\"a\\u0000b\"", &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(f.value.len, 3);
	cr_expect_eq(memcmp(f.value.p, "a\0b", 3), 0);
}

Test(dec, raw_utf8_passes_through_untouched)
{
	int rc;
	expect_str(value_of("\"\xf0\x9f\x98\x80 \xc3\xa9\"", &rc).value, "\xf0\x9f\x98\x80 \xc3\xa9");
	cr_expect_eq(rc, 0);
}

Test(dec, escaped_keys_are_matched_after_unescaping)
{
	expect_accept("{\"\\u0061ction\":\"B\"}");
}

Test(dec, bad_escapes_are_rejected)
{
	const char *bad[] = {
		"\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\'\"", "\"\\U00e9\"", "\"\\0\"",
		"\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\ud800x\"",
		"\"\\ud83d\\ude0\"", "\"\\ud83d\\\"", "\"\\ud83d\\n\"", "\"\\udfff\\ud800\"",
		"\"\\", "\"\\u", "\"\\u00", "\"abc\\",
	};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		int rc;
		value_of(bad[k], &rc);
		cr_expect_eq(rc, -1, "accepted %s", bad[k]);
	}
}

Test(dec, lone_surrogates_say_so)
{
	expect_reject("{\"action\":\"M\",\"transactional\":true,\"prefix\":\"\\ud800\",\"content\":\"\"}",
	              "lone high surrogate in \\u escape");
	expect_reject("{\"action\":\"M\",\"transactional\":true,\"prefix\":\"\\udc00\",\"content\":\"\"}",
	              "lone low surrogate in \\u escape");
}

Test(dec, raw_control_characters_in_strings_are_rejected)
{
	const char *bad[] = { "\"a\tb\"", "\"a\nb\"", "\"\x01\"", "\"\x1f\"", "\"a\rb\"" };
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		int rc;
		value_of(bad[k], &rc);
		cr_expect_eq(rc, -1, "accepted raw control in %zu", k);
	}
	/* a raw NUL byte inside a string, which strlen-based helpers cannot express */
	const char json[] = "{\"action\":\"T\",\"schema\":\"a\0b\",\"table\":\"t\"}";
	char *line = ut_keep(ut_exact_copy(json, sizeof json - 1));
	struct dec_record r;
	struct dec_error e;
	cr_expect_eq(dec_parse(&P, line, sizeof json - 1, &r, &e), -1);
	cr_expect_str_eq(e.msg, "control character in string");
	cr_expect_eq(e.offset, 25);
}

Test(dec, delete_is_the_only_control_like_byte_allowed_raw)
{
	int rc;
	expect_str(value_of("\"a\x7f\"", &rc).value, "a\x7f");
	cr_expect_eq(rc, 0);
}

/* Strings of 0..40 bytes with an escape, a raw control byte or the end of
 * the line at every position: exercises the bytewise head and the 8-byte
 * word scan on both sides of every boundary. */
Test(dec, strings_decode_whatever_their_length_and_escape_position)
{
	static const char as[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	for (int len = 0; len <= 40; len++) {
		for (int at = 0; at <= len; at++) {
			char json[128], want[128];
			int rc;
			snprintf(json, sizeof json, "\"%.*s\\n%.*s\"", at, as, len - at, as);
			snprintf(want, sizeof want, "%.*s\n%.*s", at, as, len - at, as);
			struct dec_field f = value_of(json, &rc);
			cr_assert_eq(rc, 0, "%s", json);
			cr_assert(dec_str_eq(f.value, want), "%s", json);
			snprintf(json, sizeof json, "\"%.*s\x01%.*s\"", at, as, len - at, as);
			value_of(json, &rc);
			cr_assert_eq(rc, -1, "raw control byte at %d of %d accepted", at, len);
		}
		char line[128];
		snprintf(line, sizeof line, "{\"action\":\"B\",\"x\":\"%.*s", len, as);
		expect_reject(line, "unterminated string");
	}
}

Test(dec, unterminated_string_is_rejected)
{
	expect_reject("{\"action\":\"B", "unterminated string");
	expect_reject("{\"action", "unterminated string");
}

/* ---- numbers ---- */

Test(dec, bad_numbers_are_rejected)
{
	const char *bad[] = { "01", "1.", ".5", "-", "1e", "+1", "1e+", "-01", "0x1", "1.2.3",
	                      "--1", "1ee5", "NaN", "Infinity", "-Infinity", "1.e5", "00",
	                      "1e5.0", "1_000", "- 1", "1 2", "0.", "-.5", "1E", "1e-", "0e",
	                      "2.5e+-3", "1-" };
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		int rc;
		value_of(bad[k], &rc);
		cr_expect_eq(rc, -1, "accepted number %s", bad[k]);
	}
}

Test(dec, bad_number_says_invalid_number)
{
	expect_reject("{\"action\":\"B\",\"xid\":01}", "invalid number");
	expect_reject("{\"action\":\"B\",\"x\":1.}", "invalid number");
}

/* ---- integers: xid, origin, typeoid ---- */

Test(dec, xid_must_be_an_unsigned_32_bit_integer_or_null)
{
	expect_accept("{\"action\":\"B\",\"xid\":4294967295}");
	expect_accept("{\"action\":\"B\",\"xid\":0}");
	expect_accept("{\"action\":\"B\",\"xid\":null}");
	const char *bad[] = { "4294967296", "99999999999999999999", "-1", "1.0", "1e3", "\"1\"",
	                      "true", "[]", "{}", "nul", "-0" };
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		char buf[128];
		snprintf(buf, sizeof buf, "{\"action\":\"B\",\"xid\":%s}", bad[k]);
		expect_reject(buf, NULL);
	}
}

Test(dec, largest_xid_is_read_exactly)
{
	struct dec_record r;
	struct dec_error e;
	cr_assert_eq(parse("{\"action\":\"C\",\"xid\":4294967295,\"origin\":7}", &r, &e), 0);
	cr_expect_eq(r.xid, UINT32_MAX);
	cr_expect(r.has_origin);
	cr_expect_eq(r.origin, 7);
}

Test(dec, origin_and_typeoid_must_be_integers)
{
	expect_reject("{\"action\":\"B\",\"origin\":\"0\"}",
	              "\"origin\" must be an unsigned 32-bit integer or null");
	expect_reject("{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":"
	              "[{\"name\":\"a\",\"typeoid\":\"23\",\"value\":1}]}",
	              "\"typeoid\" must be an unsigned 32-bit integer");
	expect_reject("{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":"
	              "[{\"name\":\"a\",\"typeoid\":23.0,\"value\":1}]}", NULL);
	expect_reject("{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":"
	              "[{\"name\":\"a\",\"typeoid\":null,\"value\":1}]}", NULL);
}

/* ---- record shape ---- */

Test(dec, missing_required_keys_are_rejected_by_name)
{
	static const struct { const char *json, *msg; } cases[] = {
		{ "{}", "missing \"action\"" },
		{ "{\"xid\":1}", "missing \"action\"" },
		{ "{\"action\":\"I\",\"table\":\"t\",\"columns\":[]}", "missing \"schema\"" },
		{ "{\"action\":\"I\",\"schema\":\"s\",\"columns\":[]}", "missing \"table\"" },
		{ "{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\"}", "missing \"columns\"" },
		{ "{\"action\":\"U\",\"schema\":\"s\",\"table\":\"t\",\"identity\":[]}", "missing \"columns\"" },
		{ "{\"action\":\"D\",\"schema\":\"s\",\"table\":\"t\"}", "missing \"identity\"" },
		{ "{\"action\":\"D\",\"table\":\"t\",\"identity\":[]}", "missing \"schema\"" },
		{ "{\"action\":\"T\",\"schema\":\"s\"}", "missing \"table\"" },
		{ "{\"action\":\"T\",\"table\":\"t\"}", "missing \"schema\"" },
		{ "{\"action\":\"M\",\"transactional\":true,\"prefix\":\"p\"}", "missing \"content\"" },
		{ "{\"action\":\"M\",\"prefix\":\"p\",\"content\":\"c\"}", "missing \"transactional\"" },
		{ "{\"action\":\"M\",\"transactional\":false,\"content\":\"c\"}", "missing \"prefix\"" },
		{ "{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":[{\"value\":1}]}",
		  "missing \"name\"" },
		{ "{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":[{\"name\":\"a\"}]}",
		  "missing \"value\"" },
		{ "{\"action\":\"D\",\"schema\":\"s\",\"table\":\"t\",\"identity\":[{\"name\":\"a\"}]}",
		  "missing \"value\"" },
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
		expect_reject(cases[k].json, cases[k].msg);
}

Test(dec, minimal_records_of_each_action_are_accepted)
{
	expect_accept("{\"action\":\"B\"}");
	expect_accept("{\"action\":\"C\"}");
	expect_accept("{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":[]}");
	expect_accept("{\"action\":\"U\",\"schema\":\"s\",\"table\":\"t\",\"columns\":[]}");
	expect_accept("{\"action\":\"D\",\"schema\":\"s\",\"table\":\"t\",\"identity\":[]}");
	expect_accept("{\"action\":\"T\",\"schema\":\"s\",\"table\":\"t\"}");
	expect_accept("{\"action\":\"M\",\"transactional\":false,\"prefix\":\"\",\"content\":\"\"}");
}

Test(dec, keys_an_action_does_not_carry_are_rejected)
{
	expect_reject("{\"action\":\"B\",\"schema\":\"s\"}", "unexpected \"schema\" for this action");
	expect_reject("{\"action\":\"T\",\"schema\":\"s\",\"table\":\"t\",\"columns\":[]}",
	              "unexpected \"columns\" for this action");
	expect_reject("{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":[],\"identity\":[]}",
	              "unexpected \"identity\" for this action");
	expect_reject("{\"action\":\"M\",\"transactional\":true,\"prefix\":\"p\",\"content\":\"c\","
	              "\"nextlsn\":\"0/1\"}", "unexpected \"nextlsn\" for this action");
	expect_reject("{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":"
	              "[],\"pk\":[{\"name\":\"a\",\"value\":1}]}", "unexpected \"value\" in a pk entry");
}

Test(dec, key_order_does_not_matter)
{
	struct dec_record r;
	struct dec_error e;
	int rc = parse("{\"pk\":[{\"typeoid\":23,\"type\":\"integer\",\"name\":\"id\"}],"
	               "\"columns\":[{\"value\":\"v\",\"typeoid\":25,\"name\":\"x\",\"type\":\"text\"}],"
	               "\"table\":\"t\",\"lsn\":\"1/2\",\"schema\":\"s\",\"xid\":5,\"action\":\"I\"}",
	               &r, &e);
	cr_assert_eq(rc, 0, "%s at %zu", e.msg, e.offset);
	cr_expect_eq(r.action, DEC_INSERT);
	cr_expect_eq(r.xid, 5);
	cr_expect_eq(r.lsn, UINT64_C(0x100000002));
	expect_str(r.columns[0].name, "x");
	expect_str(r.columns[0].value, "v");
	cr_expect_eq(r.columns[0].typeoid, 25);
	expect_str(r.pk[0].name, "id");
}

Test(dec, unknown_actions_are_rejected)
{
	expect_reject("{\"action\":\"X\"}", "unknown action");
	expect_reject("{\"action\":\"b\"}", "unknown action");
	expect_reject("{\"action\":\"BB\"}", "unknown action");
	expect_reject("{\"action\":\"\"}", "unknown action");
	expect_reject("{\"action\":\"\\u0000\"}", "unknown action");
	expect_reject("{\"action\":66}", "\"action\" must be a one-letter string");
	expect_reject("{\"action\":null}", NULL);
}

Test(dec, values_of_the_wrong_type_are_rejected)
{
	const char *bad[] = {
		"{\"action\":\"B\",\"timestamp\":5}",
		"{\"action\":\"B\",\"lsn\":1}",
		"{\"action\":\"B\",\"lsn\":null}",
		"{\"action\":\"T\",\"schema\":1,\"table\":\"t\"}",
		"{\"action\":\"T\",\"schema\":null,\"table\":\"t\"}",
		"{\"action\":\"T\",\"schema\":\"s\",\"table\":[\"t\"]}",
		"{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":{}}",
		"{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":\"x\"}",
		"{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":[1]}",
		"{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":[[]]}",
		"{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":null}",
		"{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":[{\"name\":1,\"value\":1}]}",
		"{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":[{\"name\":\"a\",\"type\":null,\"value\":1}]}",
		"{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":[{\"name\":\"a\",\"value\":[1]}]}",
		"{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":[{\"name\":\"a\",\"value\":{\"a\":1}}]}",
		"{\"action\":\"M\",\"transactional\":\"true\",\"prefix\":\"p\",\"content\":\"c\"}",
		"{\"action\":\"M\",\"transactional\":1,\"prefix\":\"p\",\"content\":\"c\"}",
		"{\"action\":\"M\",\"transactional\":null,\"prefix\":\"p\",\"content\":\"c\"}",
		"{\"action\":\"M\",\"transactional\":true,\"prefix\":null,\"content\":\"c\"}",
		"{\"action\":\"M\",\"transactional\":true,\"prefix\":\"p\",\"content\":7}",
		"{\"action\":\"B\",\"xid\":tru}",
		"{\"action\":\"B\",\"x\":nul}",
		"{\"action\":\"B\",\"x\":True}",
	};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
		expect_reject(bad[k], NULL);
	expect_reject("{\"action\":\"T\",\"schema\":1,\"table\":\"t\"}", "\"schema\" must be a string");
	expect_reject("{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":[{\"name\":\"a\",\"value\":[1]}]}",
	              "value must be a scalar");
}

Test(dec, duplicate_keys_are_rejected)
{
	expect_reject("{\"action\":\"B\",\"action\":\"B\"}", "duplicate key");
	expect_reject("{\"action\":\"B\",\"xid\":1,\"xid\":1}", "duplicate key");
	expect_reject("{\"action\":\"B\",\"x\":1,\"x\":2}", "duplicate key");
	expect_reject("{\"action\":\"B\",\"x\":1,\"\\u0078\":2}", "duplicate key");
	expect_reject("{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":"
	              "[{\"name\":\"a\",\"name\":\"b\",\"value\":1}]}", "duplicate key");
	expect_reject("{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":"
	              "[{\"name\":\"a\",\"value\":1,\"value\":2}]}", "duplicate key");
	expect_reject("{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":"
	              "[{\"name\":\"a\",\"q\":1,\"value\":1,\"q\":2}]}", "duplicate key");
	expect_reject("{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":[],\"columns\":[]}",
	              "duplicate key");
}

Test(dec, the_same_key_in_different_objects_is_not_a_duplicate)
{
	expect_accept("{\"action\":\"B\",\"x\":{\"x\":{\"x\":1}},\"y\":[{\"x\":1},{\"x\":1}]}");
	expect_accept("{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":"
	              "[{\"name\":\"a\",\"q\":1,\"value\":1},{\"name\":\"a\",\"q\":1,\"value\":1}]}");
}

Test(dec, unknown_keys_are_skipped_but_validated)
{
	expect_accept("{\"future\":{\"a\":[1,2.5,-0,{\"b\":[true,false,null,\"\\u00e9\"]}],\"c\":{},"
	              "\"d\":[]},\"action\":\"B\",\"more\":[ ],\"s\":\"x\",\"n\":-1.5e+300}");
	expect_accept("{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":"
	              "[{\"name\":\"a\",\"position\":1,\"optional\":true,\"value\":1}]}");
	expect_reject("{\"action\":\"B\",\"future\":[1,]}", NULL);
	expect_reject("{\"action\":\"B\",\"future\":01}", NULL);
	expect_reject("{\"action\":\"B\",\"future\":{\"a\" 1}}", NULL);
	expect_reject("{\"action\":\"B\",\"future\":{\"a\":1,}}", NULL);
	expect_reject("{\"action\":\"B\",\"future\":{1:2}}", NULL);
	expect_reject("{\"action\":\"B\",\"future\":[\"\\q\"]}", NULL);
	expect_reject("{\"action\":\"B\",\"future\":}", NULL);
	expect_reject("{\"action\":\"B\",\"future\":[}", NULL);
}

Test(dec, too_many_unknown_keys_are_rejected)
{
	char buf[1024];
	size_t n = (size_t)snprintf(buf, sizeof buf, "{\"action\":\"B\"");
	for (int k = 0; k < 17; k++)
		n += (size_t)snprintf(buf + n, sizeof buf - n, ",\"k%d\":%d", k, k);
	snprintf(buf + n, sizeof buf - n, "}");
	expect_reject(buf, "too many unknown keys");
}

static char *nested(size_t depth)
{
	static const char head[] = "{\"action\":\"B\",\"deep\":";
	size_t n = sizeof head - 1;
	char *s = malloc(n + 2 * depth + 2);
	cr_assert_not_null(s);
	memcpy(s, head, n);
	memset(s + n, '[', depth);
	memset(s + n + depth, ']', depth);
	s[n + 2 * depth] = '}';
	s[n + 2 * depth + 1] = '\0';
	return ut_keep(s);
}

Test(dec, nesting_in_an_unknown_key_is_capped)
{
	expect_accept(nested(10));
	expect_accept(nested(63));
	expect_reject(nested(64), "nesting too deep");
	expect_reject(nested(100000), "nesting too deep");
}

Test(dec, trailing_garbage_after_the_object_is_rejected)
{
	expect_reject("{\"action\":\"B\"}x", "trailing garbage after object");
	expect_reject("{\"action\":\"B\"}{}", "trailing garbage after object");
	expect_reject("{\"action\":\"B\"} ,", "trailing garbage after object");
	expect_reject("{\"action\":\"B\"}\n{\"action\":\"C\"}", "trailing garbage after object");
	expect_reject("{\"action\":\"B\"}\f", "trailing garbage after object");
	expect_reject("{\"action\":\"B\"}\v", "trailing garbage after object");
}

Test(dec, surrounding_whitespace_is_accepted)
{
	expect_accept("{\"action\":\"B\"}\n");
	expect_accept("{\"action\":\"B\"}\r\n");
	expect_accept(" \t{ \"action\" :\r\n\"B\" , \"xid\" : 3 }  \n");
}

Test(dec, structural_errors_are_rejected_with_their_reason)
{
	static const struct { const char *json, *msg; } cases[] = {
		{ "", "empty line" },
		{ "   \n", "empty line" },
		{ "[\"action\"]", "expected '{'" },
		{ "{\"action\" \"B\"}", "expected ':' after key" },
		{ "{\"action\"}", "expected ':' after key" },
		{ "{\"action\":\"B\",}", "expected a key" },
		{ "{\"action\":\"B\"", "unterminated object" },
		{ "{\"action\":\"B\",", "unterminated object" },
		{ "{\"action\":\"B\" \"xid\":1}", "expected ',' or '}'" },
		{ "{action:\"B\"}", "expected a key" },
		{ "{\"action\":'B'}", "\"action\" must be a one-letter string" },
		{ "{\"action\":\"B\"]", "expected ',' or '}'" },
		{ "{\"action\":", NULL },
		{ "{\"action\":\"B\",\"x\":[1 2]}", "expected ',' or ']'" },
		{ "{\"action\":\"B\",\"x\":[1", "unterminated array" },
		{ "{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":[{\"name\":\"a\",\"value\":1},]}",
		  "expected '{' for a column entry" },
		{ "{\"action\":\"B\",\"x\":tru", "invalid literal" },
		{ "{\"action\":\"B\",\"x\":\xff}", "expected a value" },
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
		expect_reject(cases[k].json, cases[k].msg);
}

Test(dec, error_offset_points_at_the_problem)
{
	struct dec_record r;
	struct dec_error e;
	cr_assert_eq(parse("{\"action\":\"Q\"}", &r, &e), -1);
	cr_expect_eq(e.offset, 10);
	cr_assert_eq(parse("{\"action\":\"B\"}x", &r, &e), -1);
	cr_expect_eq(e.offset, 14);
	cr_assert_eq(parse("{\"action\" \"B\"}", &r, &e), -1);
	cr_expect_eq(e.offset, 10);
	cr_assert_eq(parse("{\"action\":\"B\",\"xid\":12x}", &r, &e), -1);
	cr_expect_eq(e.offset, 22);
	cr_assert_eq(parse("{\"action\":\"B\",\"lsn\":\"0/1x\"}", &r, &e), -1);
	cr_expect_str_eq(e.msg, "invalid lsn");
	cr_expect_eq(e.offset, 20);
}

Test(dec, the_parser_never_reads_past_len)
{
	/* The bytes after len are a valid continuation: reading them would
	 * turn a truncated line into an accepted one. */
	const char full[] = "{\"action\":\"B\",\"xid\":12}";
	struct dec_record r;
	struct dec_error e;
	cr_expect_eq(dec_parse(&P, full, sizeof full - 2, &r, &e), -1);
	cr_expect_eq(dec_parse(&P, full, 21, &r, &e), -1); /* "xid":1 then EOL */
	cr_expect_eq(dec_parse(&P, full, sizeof full - 1, &r, &e), 0);
	cr_expect_eq(r.xid, 12);
	cr_expect_eq(dec_parse(&P, NULL, 0, &r, &e), -1);
}

Test(dec, a_null_error_pointer_is_allowed)
{
	struct dec_record r;
	cr_expect_eq(dec_parse(&P, "{", 1, &r, NULL), -1);
	cr_expect_eq(dec_parse(&P, "{\"action\":\"C\"}", 14, &r, NULL), 0);
}

/* Every proper prefix of line must be rejected (a valid line never becomes
 * valid by losing bytes at the end, as it always ends in '}'); prefixes are
 * exact-size copies so ASan sees any over-read. */
static void expect_prefixes_rejected(const char *line, size_t len, size_t from, size_t to)
{
	for (size_t k = from; k < to && k < len; k++) {
		char *pre = ut_exact_copy(line, k);
		struct dec_record r;
		struct dec_error e = { 0, NULL };
		int rc = dec_parse(&P, pre, k, &r, &e);
		free(pre);
		if (rc != -1)
			cr_assert_fail("prefix of %zu bytes of a %zu-byte line gave %d", k, len, rc);
		if (!e.msg || e.offset > k)
			cr_assert_fail("prefix of %zu bytes: bad error (%zu, %s)", k, e.offset,
			               e.msg ? e.msg : "null");
	}
}

Test(dec, every_truncation_of_a_real_line_is_rejected, .timeout = 120)
{
	const char *paths[] = { SMALL_FIXTURE, MANY_FIXTURE };
	for (size_t f = 0; f < 2; f++) {
		struct lines l = load_lines(paths[f]);
		for (size_t k = 0; k < l.n; k++) {
			if (l.len[k] <= 16384) {
				expect_prefixes_rejected(l.p[k], l.len[k], 0, l.len[k]);
				continue;
			}
			/* the 300 KB line: its head, its tail, and a stride between */
			expect_prefixes_rejected(l.p[k], l.len[k], 0, 4096);
			expect_prefixes_rejected(l.p[k], l.len[k], l.len[k] - 512, l.len[k]);
			for (size_t at = 4096; at < l.len[k] - 4096; at += 997)
				expect_prefixes_rejected(l.p[k], l.len[k], at, at + 1);
		}
		free_lines(&l);
	}
}

/* ---- parser state ---- */

Test(dec, fields_array_grows_and_earlier_slices_stay_valid)
{
	size_t cap = 200000, n = 0;
	char *buf = ut_keep(malloc(cap));
	cr_assert_not_null(buf);
	n += (size_t)snprintf(buf + n, cap - n,
	                      "{\"action\":\"U\",\"schema\":\"s\",\"table\":\"t\",\"columns\":[");
	for (int k = 0; k < 1000; k++)
		n += (size_t)snprintf(buf + n, cap - n, "%s{\"name\":\"c%d\",\"value\":%d}",
		                      k ? "," : "", k, k);
	n += (size_t)snprintf(buf + n, cap - n, "],\"identity\":[");
	for (int k = 0; k < 500; k++)
		n += (size_t)snprintf(buf + n, cap - n, "%s{\"name\":\"i\\u0030%d\",\"value\":\"v%d\"}",
		                      k ? "," : "", k, k);
	n += (size_t)snprintf(buf + n, cap - n, "],\"pk\":[");
	for (int k = 0; k < 300; k++)
		n += (size_t)snprintf(buf + n, cap - n, "%s{\"name\":\"p%d\"}", k ? "," : "", k);
	n += (size_t)snprintf(buf + n, cap - n, "]}");
	cr_assert_lt(n, cap);

	struct dec_record r;
	struct dec_error e;
	cr_assert_eq(dec_parse(&P, buf, n, &r, &e), 0, "%s at %zu", e.msg, e.offset);
	cr_assert_eq(r.ncolumns, 1000);
	cr_assert_eq(r.nidentity, 500);
	cr_assert_eq(r.npk, 300);
	char want[32];
	for (int k = 0; k < 1000; k++) {
		snprintf(want, sizeof want, "c%d", k);
		expect_str(r.columns[k].name, want);
		snprintf(want, sizeof want, "%d", k);
		expect_str(r.columns[k].value, want);
	}
	for (int k = 0; k < 500; k++) {
		snprintf(want, sizeof want, "i0%d", k);
		expect_str(r.identity[k].name, want);
	}
	for (int k = 0; k < 300; k++) {
		snprintf(want, sizeof want, "p%d", k);
		expect_str(r.pk[k].name, want);
	}
}

Test(dec, buffers_stop_moving_once_the_largest_line_was_seen)
{
	struct lines l = load_lines(MANY_FIXTURE);
	struct dec_record r;
	struct dec_error e;
	for (size_t k = 0; k < l.n; k++)
		cr_assert_eq(dec_parse(&P, l.p[k], l.len[k], &r, &e), 0);
	char *scratch = P.scratch;
	struct dec_field *fields = P.fields;
	size_t scap = P.scratch_cap, fcap = P.fields_cap;
	for (int pass = 0; pass < 3; pass++)
		for (size_t k = 0; k < l.n; k++)
			cr_assert_eq(dec_parse(&P, l.p[k], l.len[k], &r, &e), 0);
	cr_expect_eq(P.scratch, scratch);
	cr_expect_eq(P.fields, fields);
	cr_expect_eq(P.scratch_cap, scap);
	cr_expect_eq(P.fields_cap, fcap);
	free_lines(&l);
}

Test(dec, a_rejected_line_does_not_spoil_the_next_one)
{
	struct dec_record r;
	struct dec_error e;
	cr_assert_eq(parse("{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":"
	                   "[{\"name\":\"a\",\"value\":1},{\"name\":\"b\",\"value\":", &r, &e), -1);
	cr_assert_eq(parse("{\"action\":\"D\",\"schema\":\"s\",\"table\":\"t\",\"identity\":"
	                   "[{\"name\":\"z\",\"value\":\"\\u00e9\"}]}", &r, &e), 0);
	cr_expect_eq(r.ncolumns, 0);
	cr_assert_eq(r.nidentity, 1);
	expect_str(r.identity[0].name, "z");
	expect_str(r.identity[0].value, "\xc3\xa9");
}

/* ---- LSN helpers and dec_str_eq ---- */

Test(dec, lsn_parses_postgres_text)
{
	uint64_t v = 0;
	cr_expect_eq(dec_parse_lsn("16/B374D848", 11, &v), 0);
	cr_expect_eq(v, UINT64_C(0x16B374D848));
	cr_expect_eq(dec_parse_lsn("16/b374d848", 11, &v), 0);
	cr_expect_eq(v, UINT64_C(0x16B374D848));
	cr_expect_eq(dec_parse_lsn("0/0", 3, &v), 0);
	cr_expect_eq(v, 0);
	cr_expect_eq(dec_parse_lsn("FFFFFFFF/FFFFFFFF", 17, &v), 0);
	cr_expect_eq(v, UINT64_MAX);
	cr_expect_eq(dec_parse_lsn("00000001/00000002", 17, &v), 0);
	cr_expect_eq(v, UINT64_C(0x100000002));
	/* len bounds the text: the rest of the buffer is not read */
	cr_expect_eq(dec_parse_lsn("1/2345", 3, &v), 0);
	cr_expect_eq(v, UINT64_C(0x100000002));
}

Test(dec, lsn_parse_rejects_junk_overflow_and_missing_halves)
{
	const char *bad[] = { "", "/", "0/", "/0", "0", "0/1/", "0/1/2", "g/1", "1/g",
	                      "123456789/0", "0/123456789", " 0/1", "0/1 ", "+1/1", "0x1/1",
	                      "-1/1", "1//1", "1/-1", "100000000/0", "0/100000000" };
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		uint64_t v = 42;
		cr_expect_eq(dec_parse_lsn(bad[k], strlen(bad[k]), &v), -1, "accepted \"%s\"", bad[k]);
	}
	uint64_t v;
	cr_expect_eq(dec_parse_lsn(NULL, 0, &v), -1);
	cr_expect_eq(dec_parse_lsn("1/\0" "2", 4, &v), -1);
}

Test(dec, lsn_formats_like_postgres)
{
	char buf[20];
	dec_format_lsn(UINT64_C(0x16B374D848), buf, sizeof buf);
	cr_expect_str_eq(buf, "16/B374D848");
	dec_format_lsn(0, buf, sizeof buf);
	cr_expect_str_eq(buf, "0/0");
	dec_format_lsn(UINT64_MAX, buf, sizeof buf);
	cr_expect_str_eq(buf, "FFFFFFFF/FFFFFFFF");
	dec_format_lsn(UINT64_C(0x100000000), buf, sizeof buf);
	cr_expect_str_eq(buf, "1/0");
	char small[5];
	dec_format_lsn(UINT64_MAX, small, sizeof small);
	cr_expect_str_eq(small, "FFFF");
}

Test(dec, lsn_round_trips_through_text)
{
	uint64_t x = UINT64_C(0x243F6A8885A308D3);
	for (int k = 0; k < 10000; k++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		uint64_t v = k % 3 == 0 ? x >> (k % 64) : x;
		char buf[20];
		uint64_t back = ~v;
		dec_format_lsn(v, buf, sizeof buf);
		cr_assert_eq(dec_parse_lsn(buf, strlen(buf), &back), 0, "%s", buf);
		cr_assert_eq(back, v, "%s", buf);
	}
}

Test(dec, str_eq_compares_length_and_bytes)
{
	struct dec_str s = { "abc", 3 };
	cr_expect(dec_str_eq(s, "abc"));
	cr_expect_not(dec_str_eq(s, "ab"));
	cr_expect_not(dec_str_eq(s, "abcd"));
	struct dec_str nul = { "a\0b", 3 };
	cr_expect_not(dec_str_eq(nul, "a"));
	struct dec_str empty = { NULL, 0 };
	cr_expect(dec_str_eq(empty, ""));
	cr_expect_not(dec_str_eq(empty, "a"));
}

/* ---- differential test against cJSON ---- */

static const cJSON *item(const cJSON *obj, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* Compares one of our strings with cJSON's (which stops at an escaped NUL). */
static bool same_str(const cJSON *j, struct dec_str s)
{
	if (!cJSON_IsString(j))
		return false;
	const char *nul = s.len ? memchr(s.p, '\0', s.len) : NULL;
	size_t n = nul ? (size_t)(nul - s.p) : s.len;
	return strlen(j->valuestring) == n && (n == 0 || memcmp(j->valuestring, s.p, n) == 0);
}

/* Our exact number text against cJSON's double. */
static bool same_number(const cJSON *j, struct dec_str t)
{
	char buf[512];
	if (!cJSON_IsNumber(j) || t.len >= sizeof buf)
		return false;
	memcpy(buf, t.p, t.len);
	buf[t.len] = '\0';
	double ours = strtod(buf, NULL);
	double theirs = j->valuedouble;
	bool integer = strspn(buf + (buf[0] == '-'), "0123456789") == t.len - (buf[0] == '-');
	if (integer && t.len - (buf[0] == '-') <= 15)
		return (double)strtoll(buf, NULL, 10) == theirs;
	if (ours == theirs)
		return true;
	return fabs(ours - theirs) <= 1e-12 * fmax(fabs(ours), fabs(theirs));
}

static bool same_value(const cJSON *v, const struct dec_field *f)
{
	switch (f->kind) {
	case DEC_NULL: return cJSON_IsNull(v);
	case DEC_TRUE: return cJSON_IsTrue(v);
	case DEC_FALSE: return cJSON_IsFalse(v);
	case DEC_NUMBER: return same_number(v, f->value);
	default: return same_str(v, f->value);
	}
}

/* Compares a columns / identity / pk array; a missing array means none. */
static void compare_fields(const cJSON *arr, const struct dec_field *f, size_t n,
                           const char *what, const char *where)
{
	if (!arr) {
		cr_expect_eq(n, 0, "%s: %s count", where, what);
		return;
	}
	cr_assert(cJSON_IsArray(arr), "%s: %s", where, what);
	cr_expect_eq((size_t)cJSON_GetArraySize(arr), n, "%s: %s count", where, what);
	size_t k = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, arr) {
		if (k >= n)
			break;
		cr_expect(same_str(item(e, "name"), f[k].name), "%s: %s[%zu] name", where, what, k);
		const cJSON *v = item(e, "value");
		if (v)
			cr_expect(same_value(v, &f[k]), "%s: %s[%zu] value \"%.*s\"", where, what, k,
			          (int)(f[k].value.len > 80 ? 80 : f[k].value.len),
			          f[k].value.p ? f[k].value.p : "");
		else
			cr_expect(f[k].kind == DEC_NULL && f[k].value.len == 0, "%s: %s[%zu]", where, what, k);
		const cJSON *oid = item(e, "typeoid");
		cr_expect_eq(oid ? (uint32_t)oid->valuedouble : 0, f[k].typeoid, "%s: %s[%zu] typeoid",
		             where, what, k);
		k++;
	}
}

static void compare_opt_str(const cJSON *j, struct dec_str s, const char *what, const char *where)
{
	if (j && !cJSON_IsNull(j))
		cr_expect(same_str(j, s), "%s: %s", where, what);
	else
		cr_expect_eq(s.len, 0, "%s: %s", where, what);
}

static void compare_opt_uint(const cJSON *j, bool has, uint32_t v, const char *what,
                             const char *where)
{
	cr_expect_eq(has, j && cJSON_IsNumber(j), "%s: %s presence", where, what);
	if (has && j)
		cr_expect_eq((double)v, j->valuedouble, "%s: %s", where, what);
}

/* An LSN read independently of dec_parse_lsn, with sscanf. */
static void compare_lsn(const cJSON *j, uint64_t v, const char *what, const char *where)
{
	unsigned hi = 0, lo = 0;
	if (j)
		cr_expect(cJSON_IsString(j) && sscanf(j->valuestring, "%X/%X", &hi, &lo) == 2,
		          "%s: %s", where, what);
	cr_expect_eq(v, (uint64_t)hi << 32 | lo, "%s: %s", where, what);
}

/* Everything our record says must be what cJSON read from the same line. */
static void compare_with_cjson(const cJSON *j, const struct dec_record *r, const char *where)
{
	const cJSON *a = item(j, "action");
	cr_expect(cJSON_IsString(a) && a->valuestring[0] == (char)r->action &&
	          a->valuestring[1] == '\0', "%s: action", where);
	compare_opt_uint(item(j, "xid"), r->has_xid, r->xid, "xid", where);
	compare_opt_uint(item(j, "origin"), r->has_origin, r->origin, "origin", where);
	compare_opt_str(item(j, "timestamp"), r->timestamp, "timestamp", where);
	compare_lsn(item(j, "lsn"), r->lsn, "lsn", where);
	compare_lsn(item(j, "nextlsn"), r->nextlsn, "nextlsn", where);
	compare_opt_str(item(j, "schema"), r->schema, "schema", where);
	compare_opt_str(item(j, "table"), r->table, "table", where);
	compare_opt_str(item(j, "prefix"), r->prefix, "prefix", where);
	compare_opt_str(item(j, "content"), r->content, "content", where);
	cr_expect_eq(r->transactional, cJSON_IsTrue(item(j, "transactional")), "%s: transactional", where);
	compare_fields(item(j, "columns"), r->columns, r->ncolumns, "columns", where);
	compare_fields(item(j, "identity"), r->identity, r->nidentity, "identity", where);
	compare_fields(item(j, "pk"), r->pk, r->npk, "pk", where);
}

static size_t fixture_paths(glob_t *g)
{
	int rc = glob("tests/fixtures/*.jsonl", 0, NULL, g);
	cr_assert_eq(rc, 0, "no fixtures (run the tests from the repository root)");
	cr_assert_geq(g->gl_pathc, 2);
	return g->gl_pathc;
}

Test(dec, every_fixture_line_reads_the_same_as_with_cjson, .timeout = 60)
{
	glob_t g;
	size_t nfiles = fixture_paths(&g), total = 0;
	for (size_t f = 0; f < nfiles; f++) {
		struct lines l = load_lines(g.gl_pathv[f]);
		for (size_t k = 0; k < l.n; k++) {
			char where[300];
			snprintf(where, sizeof where, "%s:%zu", g.gl_pathv[f], k + 1);
			struct dec_record r;
			struct dec_error e = { 0, NULL };
			cr_expect_eq(dec_parse(&P, l.p[k], l.len[k], &r, &e), 0, "%s: %s at %zu", where,
			             e.msg, e.offset);
			cJSON *j = cJSON_ParseWithLength(l.p[k], l.len[k]);
			cr_assert_not_null(j, "%s: cJSON rejects it", where);
			compare_with_cjson(j, &r, where);
			cJSON_Delete(j);
			total++;
		}
		free_lines(&l);
	}
	globfree(&g);
	cr_expect_gt(total, 100);
}

/* xorshift64*, fixed seed: the same mutations on every run. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

/* Flips a random run of 1..8 bytes of a copy of line and parses it: no
 * crash, and anything we accept cJSON must accept and read the same. */
static bool mutate_once(const char *line, size_t len, uint64_t *seed, const char *where)
{
	char *m = ut_exact_copy(line, len);
	size_t at = (size_t)(rnd(seed) % len), run = 1 + (size_t)(rnd(seed) % 8);
	for (size_t k = at; k < len && k < at + run; k++)
		m[k] ^= (char)(1 + rnd(seed) % 255);
	struct dec_record r;
	struct dec_error e = { 0, NULL };
	int rc = dec_parse(&P, m, len, &r, &e);
	if (rc != 0) {
		cr_assert_eq(rc, -1, "%s: mutation at %zu gave %d", where, at, rc);
		cr_assert(e.msg && e.offset <= len, "%s: mutation at %zu: bad error", where, at);
		free(m);
		return false;
	}
	cJSON *j = cJSON_ParseWithLength(m, len);
	cr_assert_not_null(j, "%s: we accept a mutation at %zu that cJSON rejects", where, at);
	compare_with_cjson(j, &r, where);
	cJSON_Delete(j);
	free(m);
	return true;
}

Test(dec, flipped_bytes_never_crash_and_are_accepted_only_when_cjson_agrees, .timeout = 120)
{
	glob_t g;
	size_t nfiles = fixture_paths(&g), accepted = 0, tried = 0;
	uint64_t seed = UINT64_C(0x9E3779B97F4A7C15);
	for (size_t f = 0; f < nfiles; f++) {
		struct lines l = load_lines(g.gl_pathv[f]);
		for (size_t k = 0; k < l.n; k++) {
			char where[300];
			snprintf(where, sizeof where, "%s:%zu", g.gl_pathv[f], k + 1);
			int rounds = l.len[k] > 16384 ? 20 : 300;
			for (int t = 0; t < rounds; t++, tried++)
				accepted += mutate_once(l.p[k], l.len[k], &seed, where);
		}
		free_lines(&l);
	}
	globfree(&g);
	cr_log_info("%zu of %zu mutated lines still accepted", accepted, tried);
	cr_expect_gt(accepted, 0);
	cr_expect_lt(accepted, tried);
}
