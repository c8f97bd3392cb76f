/* test_dec_object.c: Criterion tests of dec_parse_object (decoder/dec_object.c),
 * the reader of the flat row-image objects SQLite's json_object() writes:
 * hand-written objects, malformed and truncated input, reuse of one parser
 * alongside dec_parse, and cJSON as a differential oracle on generated
 * objects. */

#include <criterion/criterion.h>
#include <cjson/cJSON.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../decoder/dec.h"
#include "unit_support.h"

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

TestSuite(dec_object, .init = setup, .fini = teardown);


/* Parses the C string json (without its NUL) from an exact-size copy. */
static int obj(const char *json, struct dec_field **f, size_t *n, struct dec_error *e)
{
	size_t len = strlen(json);
	return dec_parse_object(&P, ut_keep(ut_exact_copy(json, len)), len, f, n, e);
}

static void expect_bytes(struct dec_str s, const char *want, size_t len)
{
	cr_expect_eq(s.len, len, "length %zu, want %zu (\"%.*s\")", s.len, len,
	             (int)s.len, s.p ? s.p : "");
	if (s.len == len && len)
		cr_expect(memcmp(s.p, want, len) == 0, "\"%.*s\" != \"%s\"", (int)s.len, s.p, want);
}

static void expect_str(struct dec_str s, const char *want)
{
	expect_bytes(s, want, strlen(want));
}

/* Checks field k: its name, kind and value (NULL: no value). */
static void expect_field(const struct dec_field *f, const char *name, enum dec_kind kind,
                         const char *value)
{
	expect_str(f->name, name);
	cr_expect_eq(f->kind, kind, "kind of \"%s\"", name);
	expect_str(f->value, value ? value : "");
	cr_expect_eq(f->type.len, 0, "type of \"%s\"", name);
	cr_expect_eq(f->typeoid, 0, "typeoid of \"%s\"", name);
}

static void expect_reject(const char *json, const char *msg)
{
	struct dec_field *f;
	size_t n;
	struct dec_error e = { 0, NULL };
	int rc = obj(json, &f, &n, &e);
	cr_expect_eq(rc, -1, "accepted: %s", json);
	if (rc != -1)
		return;
	cr_expect_not_null(e.msg, "no message: %s", json);
	cr_expect_leq(e.offset, strlen(json), "offset past the end: %s", json);
	if (msg && e.msg)
		cr_expect_str_eq(e.msg, msg, "for %s", json);
}

static void expect_reject_at(const char *json, const char *msg, size_t at)
{
	struct dec_field *f;
	size_t n;
	struct dec_error e = { 0, NULL };
	cr_assert_eq(obj(json, &f, &n, &e), -1, "accepted: %s", json);
	cr_expect_str_eq(e.msg, msg, "for %s", json);
	cr_expect_eq(e.offset, at, "offset for %s", json);
}

static size_t expect_accept(const char *json, struct dec_field **f)
{
	size_t n = 0;
	struct dec_error e = { 0, NULL };
	int rc = obj(json, f, &n, &e);
	cr_assert_eq(rc, 0, "%s at %zu: %s", e.msg ? e.msg : "?", e.offset, json);
	return n;
}

/* ---- well-formed objects ---- */

Test(dec_object, sqlite_row_image_has_its_exact_values_and_kinds)
{
	struct dec_field *f;
	size_t n = expect_accept("{\"id\":1,\"v\":\"a \\\"q\\\" \\u00e9\",\"r\":\"0.10000000000000001\","
	                         "\"b\":\"00ff\",\"n\":null,\"big\":9223372036854775807,\"neg\":-5}",
	                         &f);
	cr_assert_eq(n, 7);
	expect_field(&f[0], "id", DEC_NUMBER, "1");
	expect_field(&f[1], "v", DEC_STRING, "a \"q\" \xc3\xa9");
	expect_field(&f[2], "r", DEC_STRING, "0.10000000000000001");
	expect_field(&f[3], "b", DEC_STRING, "00ff");
	expect_field(&f[4], "n", DEC_NULL, NULL);
	expect_field(&f[5], "big", DEC_NUMBER, "9223372036854775807");
	expect_field(&f[6], "neg", DEC_NUMBER, "-5");
}

Test(dec_object, booleans_have_their_kinds_and_no_value)
{
	struct dec_field *f;
	size_t n = expect_accept("{\"t\":true,\"f\":false,\"n\":null}", &f);
	cr_assert_eq(n, 3);
	expect_field(&f[0], "t", DEC_TRUE, NULL);
	expect_field(&f[1], "f", DEC_FALSE, NULL);
	expect_field(&f[2], "n", DEC_NULL, NULL);
}

Test(dec_object, big_and_odd_numbers_keep_their_text)
{
	static const char *nums[] = {
		"9223372036854775807", "-9223372036854775808", "18446744073709551615",
		"18446744073709551616", "123456789012345678901234567890", "1e400", "-1E-400",
		"-0", "-0.0", "0", "1.5E+10", "1.0e+20", "0.10000000000000001", "2.5e-7",
		"3.141592653589793238462643383279",
	};
	char buf[2048];
	size_t len = 0, count = sizeof nums / sizeof nums[0];
	for (size_t k = 0; k < count; k++)
		len += (size_t)snprintf(buf + len, sizeof buf - len, "%s\"k%zu\":%s",
		                        k ? "," : "{", k, nums[k]);
	snprintf(buf + len, sizeof buf - len, "}");
	struct dec_field *f;
	cr_assert_eq(expect_accept(buf, &f), count);
	for (size_t k = 0; k < count; k++) {
		cr_expect_eq(f[k].kind, DEC_NUMBER);
		expect_str(f[k].value, nums[k]);
	}
}

Test(dec_object, escapes_in_values_and_keys_are_decoded)
{
	struct dec_field *f;
	size_t n = expect_accept(
		"{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"c\":\"\\u0001\\u001f\\u001F\","
		"\"u\":\"\\u00e9\\u20AC\\u0041\",\"p\":\"\\ud83d\\ude00\","
		"\"raw\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",\"k\\u00e9y\\n\":\"v\","
		"\"z\":\"a\\u0000b\",\"\":\"\",\"del\":\"\x7f\"}", &f);
	cr_assert_eq(n, 9);
	expect_field(&f[0], "s", DEC_STRING, "\"\\/\b\f\n\r\t");
	expect_field(&f[1], "c", DEC_STRING, "\x01\x1f\x1f");
	expect_field(&f[2], "u", DEC_STRING, "\xc3\xa9\xe2\x82\xac" "A");
	expect_field(&f[3], "p", DEC_STRING, "\xf0\x9f\x98\x80");
	expect_field(&f[4], "raw", DEC_STRING, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	expect_field(&f[5], "k\xc3\xa9y\n", DEC_STRING, "v");
	expect_str(f[6].name, "z");
	expect_bytes(f[6].value, "a\0b", 3);
	expect_field(&f[7], "", DEC_STRING, "");
	expect_field(&f[8], "del", DEC_STRING, "\x7f");
}

Test(dec_object, plain_strings_point_into_the_text_and_escaped_ones_into_scratch)
{
	const char json[] = "{\"plain\":\"abc\",\"esc\\t\":\"a\\nb\"}";
	char *text = ut_keep(ut_exact_copy(json, sizeof json - 1));
	struct dec_field *f;
	size_t n;
	struct dec_error e;
	cr_assert_eq(dec_parse_object(&P, text, sizeof json - 1, &f, &n, &e), 0);
	cr_assert_eq(n, 2);
	cr_expect_eq(f[0].name.p, text + 2);
	cr_expect_eq(f[0].value.p, text + 10);
	cr_expect(f[1].name.p >= P.scratch && f[1].name.p < P.scratch + P.scratch_cap);
	cr_expect(f[1].value.p >= P.scratch && f[1].value.p < P.scratch + P.scratch_cap);
	expect_str(f[1].name, "esc\t");
	expect_str(f[1].value, "a\nb");
}

Test(dec_object, empty_object_has_no_fields)
{
	const char *empties[] = { "{}", "{ }", " \t{\r\n}\n", "{}\r\n" };
	for (size_t k = 0; k < sizeof empties / sizeof empties[0]; k++) {
		struct dec_field *f = (struct dec_field *)1;
		cr_expect_eq(expect_accept(empties[k], &f), 0, "%s", empties[k]);
		cr_expect_null(f);
	}
}

Test(dec_object, whitespace_between_tokens_is_accepted)
{
	struct dec_field *f;
	size_t n = expect_accept(" { \"a\" :\t1 ,\n\"b\"\r: \"x\" , \"c\" : null } \n", &f);
	cr_assert_eq(n, 3);
	expect_field(&f[0], "a", DEC_NUMBER, "1");
	expect_field(&f[1], "b", DEC_STRING, "x");
	expect_field(&f[2], "c", DEC_NULL, NULL);
}

Test(dec_object, keys_differing_after_a_nul_are_distinct)
{
	struct dec_field *f;
	cr_assert_eq(expect_accept("{\"a\":1,\"a\\u0000\":2,\"A\":3,\"a \":4}", &f), 4);
	expect_bytes(f[1].name, "a\0", 2);
}

/* Builds {"c0":0,...} with n keys, key k named names[k] when given. */
static char *wide_object(size_t n, const char *const *names)
{
	size_t cap = n * 32 + 16, len = 0;
	char *buf = ut_keep(malloc(cap));
	cr_assert_not_null(buf);
	for (size_t k = 0; k < n; k++) {
		if (names && names[k])
			len += (size_t)snprintf(buf + len, cap - len, "%s\"%s\":%zu", k ? "," : "{",
			                        names[k], k);
		else
			len += (size_t)snprintf(buf + len, cap - len, "%s\"c\\u0030%zu\":%zu",
			                        k ? "," : "{", k, k);
	}
	snprintf(buf + len, cap - len, "}");
	return buf;
}

Test(dec_object, wide_rows_grow_the_fields_array)
{
	struct dec_field *f;
	size_t n = expect_accept(wide_object(2000, NULL), &f);
	cr_assert_eq(n, 2000);
	char want[32];
	for (size_t k = 0; k < n; k++) {
		snprintf(want, sizeof want, "c0%zu", k);
		expect_str(f[k].name, want);
		snprintf(want, sizeof want, "%zu", k);
		expect_str(f[k].value, want);
		cr_assert_eq(f[k].type.len, 0);
	}
}

Test(dec_object, buffers_stop_moving_once_the_widest_row_was_seen)
{
	const char *small = "{\"a\":\"x\\ty\",\"b\":2}";
	char *wide = wide_object(300, NULL);
	struct dec_field *f;
	expect_accept(wide, &f);
	expect_accept(small, &f);
	char *scratch = P.scratch;
	struct dec_field *fields = P.fields;
	for (int k = 0; k < 5; k++) {
		cr_assert_eq(expect_accept(wide, &f), 300);
		cr_assert_eq(expect_accept(small, &f), 2);
	}
	cr_expect_eq(P.scratch, scratch);
	cr_expect_eq(P.fields, fields);
}

/* ---- malformed input ---- */

Test(dec_object, nested_objects_and_arrays_are_rejected)
{
	expect_reject_at("{\"a\":{}}", "nested value in a row image", 5);
	expect_reject_at("{\"a\":1,\"b\": [1]}", "nested value in a row image", 12);
	expect_reject("{\"a\":{\"b\":1}}", "nested value in a row image");
	expect_reject("{\"a\":[]}", "nested value in a row image");
	expect_reject("{\"a\":[", "nested value in a row image");
}

Test(dec_object, duplicate_keys_are_rejected_at_the_repeat)
{
	expect_reject_at("{\"a\":1,\"a\":2}", "duplicate key", 7);
	expect_reject_at("{\"a\":1,\"b\":2,\"\\u0061\":3}", "duplicate key", 13);
	expect_reject_at("{\"\":1,\"\":2}", "duplicate key", 6);
	expect_reject_at("{\"x\":null,\"y\":null,\"x\":null,\"y\":null}", "duplicate key", 19);
	expect_reject("{\"\xc3\xa9\":1,\"\\u00e9\":2}", "duplicate key");
	expect_reject("{\"\xf0\x9f\x98\x80\":1,\"\\ud83d\\ude00\":2}", "duplicate key");
}

Test(dec_object, duplicate_keys_in_a_wide_row_report_the_earliest_repeat)
{
	static const char *names[2000];
	names[1800] = "c03";
	names[1500] = "c0700";
	char *json = wide_object(2000, names);
	const char *at = strstr(json, "\"c0700\"");
	cr_assert_not_null(at);
	expect_reject_at(json, "duplicate key", (size_t)(at - json));
}

Test(dec_object, trailing_junk_is_rejected)
{
	expect_reject_at("{\"a\":1}x", "trailing garbage after object", 7);
	expect_reject("{}{}", "trailing garbage after object");
	expect_reject("{\"a\":1} ,", "trailing garbage after object");
	expect_reject("{\"a\":1}\n{\"a\":1}", "trailing garbage after object");
	expect_reject("{\"a\":1}\f", "trailing garbage after object");
	expect_reject("{\"a\":1}}", "trailing garbage after object");
}

Test(dec_object, trailing_nul_byte_is_rejected)
{
	struct dec_field *f;
	size_t n;
	struct dec_error e;
	char *text = ut_keep(ut_exact_copy("{}\0", 3));
	cr_assert_eq(dec_parse_object(&P, text, 3, &f, &n, &e), -1);
	cr_expect_str_eq(e.msg, "trailing garbage after object");
	cr_expect_eq(e.offset, 2);
}

Test(dec_object, bare_values_are_rejected)
{
	expect_reject_at("", "empty input", 0);
	expect_reject_at(" \n", "empty input", 2);
	expect_reject_at("1", "expected '{'", 0);
	expect_reject_at("  \"a\"", "expected '{'", 2);
	expect_reject("null", "expected '{'");
	expect_reject("true", "expected '{'");
	expect_reject("[]", "expected '{'");
	expect_reject("[{\"a\":1}]", "expected '{'");
	expect_reject("\"{\\\"a\\\":1}\"", "expected '{'");
}

Test(dec_object, missing_colon_is_rejected)
{
	expect_reject_at("{\"a\" 1}", "expected ':' after key", 5);
	expect_reject_at("{\"a\"}", "expected ':' after key", 4);
	expect_reject("{\"a\",\"b\":1}", "expected ':' after key");
	expect_reject("{\"a\"=1}", "expected ':' after key");
}

Test(dec_object, other_structural_errors_say_why)
{
	static const struct { const char *json, *msg; } cases[] = {
		{ "{\"a\":1,}", "expected a key" },
		{ "{,}", "expected a key" },
		{ "{a:1}", "expected a key" },
		{ "{'a':1}", "expected a key" },
		{ "{1:1}", "expected a key" },
		{ "{\"a\":1 \"b\":2}", "expected ',' or '}'" },
		{ "{\"a\":1]", "expected ',' or '}'" },
		{ "{\"a\":1", "unterminated object" },
		{ "{\"a\":1,", "unterminated object" },
		{ "{", "unterminated object" },
		{ "{\"a\":}", "expected a value" },
		{ "{\"a\":", "expected a value" },
		{ "{\"a\":'x'}", "expected a value" },
		{ "{\"a\":01}", "invalid number" },
		{ "{\"a\":1.}", "invalid number" },
		{ "{\"a\":.5}", "expected a value" },
		{ "{\"a\":+1}", "expected a value" },
		{ "{\"a\":1e}", "invalid number" },
		{ "{\"a\":-}", "invalid number" },
		{ "{\"a\":NaN}", "expected a value" },
		{ "{\"a\":tru}", "invalid literal" },
		{ "{\"a\":True}", "expected a value" },
		{ "{\"a\":nul}", "invalid literal" },
		{ "{\"a\":\"x\\q\"}", "invalid escape in string" },
		{ "{\"a\":\"\\u12\"}", "bad hex digit in \\u escape" },
		{ "{\"a\":\"\\ud800\"}", "lone high surrogate in \\u escape" },
		{ "{\"a\":\"\\udc00\"}", "lone low surrogate in \\u escape" },
		{ "{\"a\":\"x\ny\"}", "control character in string" },
		{ "{\"a\\u00\":1}", "bad hex digit in \\u escape" },
		{ "{\"a\":\"x}", "unterminated string" },
		{ "{\"a\":\xff}", "expected a value" },
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
		expect_reject(cases[k].json, cases[k].msg);
}

/* Every proper prefix of a valid object must be rejected with a sane
 * error; prefixes are exact-size copies so ASan sees any over-read. */
static void expect_prefixes_rejected(const char *json, size_t len)
{
	for (size_t k = 0; k < len; k++) {
		char *pre = ut_exact_copy(json, k);
		struct dec_field *f;
		size_t n;
		struct dec_error e = { 0, NULL };
		int rc = dec_parse_object(&P, pre, k, &f, &n, &e);
		free(pre);
		if (rc != -1)
			cr_assert_fail("prefix of %zu bytes of %s gave %d", k, json, rc);
		if (!e.msg || e.offset > k)
			cr_assert_fail("prefix of %zu bytes of %s: bad error (%zu, %s)", k, json,
			               e.offset, e.msg ? e.msg : "null");
	}
}

Test(dec_object, every_truncation_of_a_valid_object_is_rejected)
{
	static const char *objs[] = {
		"{\"id\":1,\"v\":\"a \\\"q\\\" \\u00e9\",\"r\":\"0.10000000000000001\","
		"\"b\":\"00ff\",\"n\":null,\"big\":9223372036854775807,\"neg\":-5}",
		"{\"p\":\"\\ud83d\\ude00\",\"t\":true,\"f\":false,\"e\":-1.5e+300,\"z\":0}",
		" { \"a\" : 12.50 , \"\\u0062\" : \"\xc3\xa9\\n\" } ",
		"{\"long\":\"0123456789abcdef0123456789abcdef0123456789\\\\x\"}",
	};
	for (size_t k = 0; k < sizeof objs / sizeof objs[0]; k++) {
		struct dec_field *f;
		expect_accept(objs[k], &f);
		size_t len = strlen(objs[k]);
		while (len && objs[k][len - 1] == ' ')
			len--; /* trailing blanks: dropping them leaves a valid object */
		expect_prefixes_rejected(objs[k], len);
	}
}

Test(dec_object, the_parser_never_reads_past_len)
{
	/* The bytes after len complete the object: reading them would turn a
	 * truncated text into an accepted one. */
	const char full[] = "{\"a\":12,\"b\":\"xy\"}";
	struct dec_field *f;
	size_t n;
	struct dec_error e;
	for (size_t k = 0; k < sizeof full - 1; k++)
		cr_expect_eq(dec_parse_object(&P, full, k, &f, &n, &e), -1, "length %zu", k);
	cr_assert_eq(dec_parse_object(&P, full, sizeof full - 1, &f, &n, &e), 0);
	cr_assert_eq(n, 2);
	expect_str(f[0].value, "12");
	cr_expect_eq(dec_parse_object(&P, NULL, 0, &f, &n, &e), -1);
	cr_expect_eq(n, 0);
	cr_expect_null(f);
}

Test(dec_object, a_null_error_pointer_is_allowed)
{
	struct dec_field *f;
	size_t n;
	cr_expect_eq(dec_parse_object(&P, "{", 1, &f, &n, NULL), -1);
	cr_expect_eq(dec_parse_object(&P, "{\"a\":1}", 7, &f, &n, NULL), 0);
	cr_expect_eq(n, 1);
}

/* ---- one parser for both kinds of input ---- */

static void check_record(void)
{
	static const char line[] =
		"{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\",\"columns\":["
		"{\"name\":\"a\",\"type\":\"text\",\"typeoid\":25,\"value\":\"x\\ty\"},"
		"{\"name\":\"b\",\"type\":\"integer\",\"typeoid\":23,\"value\":7}]}";
	struct dec_record r;
	struct dec_error e;
	cr_assert_eq(dec_parse(&P, line, sizeof line - 1, &r, &e), 0, "%s", e.msg);
	cr_assert_eq(r.ncolumns, 2);
	expect_str(r.columns[0].name, "a");
	expect_str(r.columns[0].type, "text");
	cr_expect_eq(r.columns[0].typeoid, 25);
	expect_str(r.columns[0].value, "x\ty");
	expect_str(r.columns[1].type, "integer");
	expect_str(r.columns[1].value, "7");
}

static void check_row(void)
{
	struct dec_field *f;
	cr_assert_eq(expect_accept("{\"id\":1,\"v\":\"p\\nq\",\"w\":null}", &f), 3);
	expect_field(&f[0], "id", DEC_NUMBER, "1");
	expect_field(&f[1], "v", DEC_STRING, "p\nq");
	expect_field(&f[2], "w", DEC_NULL, NULL);
}

Test(dec_object, alternating_with_dec_parse_on_one_parser_works)
{
	struct dec_record r;
	struct dec_error e;
	for (int round = 0; round < 4; round++) {
		check_record();
		check_row();
		check_record();
		expect_reject("{\"id\":1,\"v\":\"p\\nq\",\"w\":", NULL);
		check_record();
		cr_assert_eq(dec_parse(&P, "{\"action\":\"B\",", 14, &r, &e), -1);
		check_row();
		expect_accept(wide_object(100, NULL), &(struct dec_field *){ NULL });
		check_record();
	}
}

/* ---- differential test against cJSON on generated objects ---- */

#define GEN_MAX_FIELDS 16
#define GEN_TEXT_CAP 16384
#define GEN_STR_CAP 512

/* What a generated member must decode to. */
struct gen_field {
	char name[GEN_STR_CAP];
	size_t name_len;
	enum dec_kind kind;
	char value[GEN_STR_CAP];
	size_t value_len;
};

struct gen_obj {
	char text[GEN_TEXT_CAP]; /* NUL-terminated for cJSON */
	size_t len;
	struct gen_field f[GEN_MAX_FIELDS];
	size_t n;
	bool dup; /* a key repeats (spelt differently): must be rejected */
};

static struct gen_obj G;
static uint64_t rng_state;

static uint32_t rnd(uint32_t bound)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)((rng_state >> 11) % bound);
}

static void put(struct gen_obj *g, const char *s, size_t n)
{
	cr_assert_lt(g->len + n, sizeof g->text);
	memcpy(g->text + g->len, s, n);
	g->len += n;
	g->text[g->len] = '\0';
}

static void putc_(struct gen_obj *g, char ch)
{
	put(g, &ch, 1);
}

static size_t utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* A random non-ASCII code point that is no surrogate. */
static uint32_t rnd_code_point(void)
{
	switch (rnd(3)) {
	case 0: return 0x80 + rnd(0x780);
	case 1: return 0xE000 + rnd(0x2000);
	default: return 0x10000 + rnd(0x100000);
	}
}

/* Writes "\uXXXX" in random case. */
static void put_u(struct gen_obj *g, uint32_t unit)
{
	char esc[8];
	snprintf(esc, sizeof esc, rnd(2) ? "\\u%04x" : "\\u%04X", (unsigned)unit);
	put(g, esc, 6);
}

/* A \u escape of any code point: control, BMP or a surrogate pair. */
static size_t gen_u_escape(struct gen_obj *g, char *out, bool allow_nul)
{
	uint32_t cp;
	switch (rnd(4)) {
	case 0: cp = allow_nul ? rnd(0x20) : 1 + rnd(0x1f); break;
	case 1: cp = 0x20 + rnd(0x60); break;
	case 2: cp = 0x80 + rnd(0xD800 - 0x80); break;
	default: cp = rnd_code_point(); break;
	}
	if (cp >= 0x10000) {
		put_u(g, 0xD800 + ((cp - 0x10000) >> 10));
		put_u(g, 0xDC00 + ((cp - 0x10000) & 0x3FF));
	} else {
		put_u(g, cp);
	}
	return utf8(out, cp);
}

/* A run of 1 to 24 raw printable ASCII bytes (DEL included). */
static size_t gen_plain(struct gen_obj *g, char *out)
{
	size_t n = 1 + rnd(rnd(4) ? 8 : 24);
	for (size_t k = 0; k < n; k++) {
		char ch;
		do
			ch = (char)(0x20 + rnd(0x60));
		while (ch == '"' || ch == '\\');
		out[k] = ch;
	}
	put(g, out, n);
	return n;
}

/* One piece of string content; returns the bytes it decodes to at out. */
static size_t gen_piece(struct gen_obj *g, char *out, bool allow_nul)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	size_t k;
	switch (rnd(8)) {
	case 0:
		k = rnd(8);
		putc_(g, '\\');
		putc_(g, from[k]);
		out[0] = to[k];
		return 1;
	case 1:
	case 2:
		return gen_u_escape(g, out, allow_nul);
	case 3:
		k = utf8(out, rnd_code_point());
		put(g, out, k);
		return k;
	default:
		return gen_plain(g, out);
	}
}

/* A quoted string of random pieces, plus suffix (raw, may be NULL). */
static void gen_string(struct gen_obj *g, char *out, size_t *olen, bool allow_nul,
                       const char *suffix)
{
	size_t n = 0, pieces = rnd(rnd(3) ? 6 : 14);
	putc_(g, '"');
	for (size_t k = 0; k < pieces; k++)
		n += gen_piece(g, out + n, allow_nul);
	if (suffix) {
		put(g, suffix, strlen(suffix));
		memcpy(out + n, suffix, strlen(suffix));
		n += strlen(suffix);
	}
	putc_(g, '"');
	cr_assert_lt(n, GEN_STR_CAP);
	*olen = n;
}

/* Writes the decoded bytes s as a key spelt another way: ASCII as \u00XX,
 * the rest raw. */
static void put_respelt(struct gen_obj *g, const char *s, size_t n)
{
	putc_(g, '"');
	for (size_t k = 0; k < n; k++) {
		unsigned char ch = (unsigned char)s[k];
		if (ch < 0x80)
			put_u(g, ch);
		else
			putc_(g, (char)ch);
	}
	putc_(g, '"');
}

static void gen_digits(char *o, size_t *n, size_t count)
{
	while (count--)
		o[(*n)++] = (char)('0' + rnd(10));
}

/* A number by the JSON grammar, under 64 bytes (cJSON's limit). */
static void gen_number(struct gen_obj *g, struct gen_field *f)
{
	static const char *const signs[] = { "", "+", "-" };
	char *o = f->value;
	size_t n = 0;
	if (rnd(3) == 0)
		o[n++] = '-';
	if (rnd(5) == 0) {
		o[n++] = '0';
	} else {
		o[n++] = (char)('1' + rnd(9));
		gen_digits(o, &n, rnd(rnd(2) ? 4 : 26));
	}
	if (rnd(3) == 0) {
		o[n++] = '.';
		gen_digits(o, &n, 1 + rnd(18));
	}
	if (rnd(4) == 0) {
		o[n++] = rnd(2) ? 'e' : 'E';
		const char *sign = signs[rnd(3)];
		memcpy(o + n, sign, strlen(sign));
		n += strlen(sign);
		gen_digits(o, &n, 1 + rnd(3));
	}
	f->value_len = n;
	put(g, o, n);
}

static void gen_value(struct gen_obj *g, struct gen_field *f)
{
	static const char *const lit[] = { "null", "true", "false" };
	f->value_len = 0;
	switch (rnd(6)) {
	case 0:
	case 1:
	case 2:
		f->kind = (enum dec_kind)rnd(3);
		put(g, lit[f->kind], strlen(lit[f->kind]));
		return;
	case 3:
		f->kind = DEC_NUMBER;
		gen_number(g, f);
		return;
	default:
		f->kind = DEC_STRING;
		gen_string(g, f->value, &f->value_len, true, NULL);
	}
}

/* Sometimes whitespace, as JSON allows between tokens. */
static void gen_ws(struct gen_obj *g)
{
	static const char ws[] = " \t\n\r";
	if (rnd(4) == 0)
		for (size_t k = 1 + rnd(3); k; k--)
			putc_(g, ws[rnd(4)]);
}

/* The key of member k: random, made unique by a suffix, or for the chosen
 * repeat an earlier key spelt differently. */
static void gen_key(struct gen_obj *g, size_t k, size_t dup_at)
{
	struct gen_field *f = &g->f[k];
	if (k == dup_at) {
		const struct gen_field *was = &g->f[rnd((uint32_t)k)];
		put_respelt(g, was->name, was->name_len);
		memcpy(f->name, was->name, was->name_len);
		f->name_len = was->name_len;
		return;
	}
	char suffix[24];
	snprintf(suffix, sizeof suffix, "#%zu", k);
	gen_string(g, f->name, &f->name_len, false, suffix);
}

static void gen_object(struct gen_obj *g)
{
	g->len = 0;
	g->n = rnd(GEN_MAX_FIELDS + 1);
	g->dup = g->n > 1 && rnd(8) == 0;
	size_t dup_at = g->dup ? 1 + rnd((uint32_t)g->n - 1) : SIZE_MAX;
	gen_ws(g);
	putc_(g, '{');
	for (size_t k = 0; k < g->n; k++) {
		gen_ws(g);
		if (k) {
			putc_(g, ',');
			gen_ws(g);
		}
		gen_key(g, k, dup_at);
		gen_ws(g);
		putc_(g, ':');
		gen_ws(g);
		gen_value(g, &g->f[k]);
	}
	gen_ws(g);
	putc_(g, '}');
	gen_ws(g);
}

/* Our string against cJSON's, which stops at an escaped NUL. */
static bool same_cjson_str(const char *j, struct dec_str s)
{
	const char *nul = s.len ? memchr(s.p, '\0', s.len) : NULL;
	size_t n = nul ? (size_t)(nul - s.p) : s.len;
	return j && strlen(j) == n && (n == 0 || memcmp(j, s.p, n) == 0);
}

/* Our exact number text against cJSON's double, both through strtod. */
static bool same_cjson_number(const cJSON *j, struct dec_str t)
{
	char buf[128];
	if (!cJSON_IsNumber(j) || t.len >= sizeof buf)
		return false;
	memcpy(buf, t.p, t.len);
	buf[t.len] = '\0';
	return strtod(buf, NULL) == j->valuedouble;
}

static bool same_cjson_value(const cJSON *j, const struct dec_field *f)
{
	switch (f->kind) {
	case DEC_NULL: return cJSON_IsNull(j);
	case DEC_TRUE: return cJSON_IsTrue(j);
	case DEC_FALSE: return cJSON_IsFalse(j);
	case DEC_NUMBER: return same_cjson_number(j, f->value);
	default: return cJSON_IsString(j) && same_cjson_str(j->valuestring, f->value);
	}
}

static void compare_with_cjson(const char *text, const struct dec_field *f, size_t n,
                               size_t no)
{
	cJSON *root = cJSON_Parse(text);
	cr_assert(cJSON_IsObject(root), "object %zu: cJSON rejects %s", no, text);
	size_t k = 0;
	const cJSON *j;
	cJSON_ArrayForEach(j, root) {
		cr_assert_lt(k, n, "object %zu: cJSON has more members", no);
		cr_expect(same_cjson_str(j->string, f[k].name), "object %zu: name %zu", no, k);
		cr_expect(same_cjson_value(j, &f[k]), "object %zu: value %zu \"%.*s\"", no, k,
		          (int)f[k].value.len, f[k].value.p ? f[k].value.p : "");
		k++;
	}
	cr_expect_eq(k, n, "object %zu: member count", no);
	cJSON_Delete(root);
}

/* Checks our result against what the generator meant, then cJSON. */
static void check_generated(const struct gen_obj *g, size_t no)
{
	char *text = ut_exact_copy(g->text, g->len);
	struct dec_field *f;
	size_t n;
	struct dec_error e = { 0, NULL };
	int rc = dec_parse_object(&P, text, g->len, &f, &n, &e);
	if (g->dup) {
		cr_expect_eq(rc, -1, "object %zu: repeated key accepted: %s", no, g->text);
		cr_expect(rc != -1 || strcmp(e.msg, "duplicate key") == 0, "object %zu: %s", no, e.msg);
		free(text);
		return;
	}
	cr_assert_eq(rc, 0, "object %zu: %s at %zu: %s", no, e.msg, e.offset, g->text);
	cr_assert_eq(n, g->n, "object %zu: member count", no);
	for (size_t k = 0; k < n; k++) {
		expect_bytes(f[k].name, g->f[k].name, g->f[k].name_len);
		cr_expect_eq(f[k].kind, g->f[k].kind, "object %zu: kind %zu", no, k);
		expect_bytes(f[k].value, g->f[k].value, g->f[k].value_len);
		cr_expect(f[k].type.len == 0 && f[k].typeoid == 0, "object %zu: type %zu", no, k);
	}
	compare_with_cjson(g->text, f, n, no);
	free(text);
}

Test(dec_object, generated_objects_agree_with_cjson_and_the_generator, .timeout = 120)
{
	size_t rejected = 0;
	rng_state = UINT64_C(0x9E3779B97F4A7C15);
	for (size_t no = 0; no < 600; no++) {
		gen_object(&G);
		check_generated(&G, no);
		rejected += G.dup;
		if (no % 7 == 0)
			check_record(); /* the same parser, between row images */
	}
	cr_expect_gt(rejected, 20, "too few repeated keys generated");
}

Test(dec_object, every_truncation_of_generated_objects_is_rejected, .timeout = 120)
{
	rng_state = UINT64_C(0x243F6A8885A308D3);
	for (size_t no = 0; no < 60; no++) {
		gen_object(&G);
		size_t len = G.len;
		while (len && strchr(" \t\n\r", G.text[len - 1]))
			len--;
		if (!G.dup)
			expect_prefixes_rejected(G.text, len);
	}
}
