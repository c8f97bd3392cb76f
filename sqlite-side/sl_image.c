/* sl_image.c: the SQL expressions that write a row's or a key's JSON image
 * exactly, as the capture triggers log them: each value by its storage
 * class (a REAL exactly, a blob as hex), objects past SQLite's
 * function-argument limit joined from chunks. */
#include <stdio.h>

#include "sl_int.h"

#define SLC_MAX_ARGS 127 /* SQLite's default function-argument limit */

/* A value of an image: side "NEW" / "OLD" (trigger row), "" (a bare
 * column) or NULL (parameter ?i+1). */
static void put_val(struct sl_buf *b, const char *side, const struct sl_col *c, size_t i)
{
	char num[32];

	if (!side) {
		snprintf(num, sizeof num, "?%zu", i + 1);
		sl_buf_str(b, num);
		return;
	}
	if (*side) {
		sl_buf_str(b, side);
		sl_buf_str(b, ".");
	}
	sl_buf_ident(b, c->name, c->len);
}

/* A REAL that is not a small integer, exactly, as a C99 hex float
 * ("0x1.999999999999ap-4", "-0x1p-1074"): the binary exponent e is looked
 * up in _pgsqlite_pow2 (the largest power of two p <= |v|), |v| / p is
 * exact, and its 52 fraction bits are printed in hex.  Pure SQL on an
 * ordinary table, so the triggers work from any process; Postgres's
 * float8in (strtod) reads it back bit for bit.  SQLite's own "%!.17g" is
 * not correctly rounded for large magnitudes (3.40). */
static void put_hex_real(struct sl_buf *b, const char *side, const struct sl_col *c, size_t i)
{
	sl_buf_str(b, "(SELECT CASE WHEN ");
	put_val(b, side, c, i);
	sl_buf_str(b, " < 0 THEN '-0x1' ELSE '0x1' END || rtrim('.' || printf('%013llx', "
	              "CAST(abs(");
	put_val(b, side, c, i);
	sl_buf_str(b, ") / p * 4503599627370496 AS INTEGER) - 4503599627370496), '.0') || "
	              "printf('p%+d', e) FROM _pgsqlite_pow2 WHERE p <= abs(");
	put_val(b, side, c, i);
	sl_buf_str(b, ") ORDER BY p DESC LIMIT 1)");
}

/* A REAL as the images hold it, exactly: an integral value below 2^63 as
 * an integer ("1", "-300"), +-Infinity by name, any other as a hex float. */
static void put_real(struct sl_buf *b, const char *side, const struct sl_col *c, size_t i)
{
	sl_buf_str(b, "CASE WHEN abs(");
	put_val(b, side, c, i);
	sl_buf_str(b, ") < 9223372036854775807 AND ");
	put_val(b, side, c, i);
	sl_buf_str(b, " = CAST(");
	put_val(b, side, c, i);
	sl_buf_str(b, " AS INTEGER) THEN CAST(CAST(");
	put_val(b, side, c, i);
	sl_buf_str(b, " AS INTEGER) AS TEXT) WHEN ");
	put_val(b, side, c, i);
	sl_buf_str(b, " * 2 = ");
	put_val(b, side, c, i);
	sl_buf_str(b, " THEN CASE WHEN ");
	put_val(b, side, c, i);
	sl_buf_str(b, " > 0 THEN 'Infinity' ELSE '-Infinity' END ELSE ");
	put_hex_real(b, side, c, i);
	sl_buf_str(b, " END");
}

/* The value as the images hold it: a real exactly (put_real), a blob as
 * lower-case hex, the rest as it is. */
static void put_enc(struct sl_buf *b, const char *side, const struct sl_col *c, size_t i)
{
	sl_buf_str(b, "CASE typeof(");
	put_val(b, side, c, i);
	sl_buf_str(b, ") WHEN 'real' THEN ");
	put_real(b, side, c, i);
	sl_buf_str(b, " WHEN 'blob' THEN lower(hex(");
	put_val(b, side, c, i);
	sl_buf_str(b, ")) ELSE ");
	put_val(b, side, c, i);
	sl_buf_str(b, " END");
}

/* Column i of a list: idx[i], or i itself when idx is NULL (all columns). */
static const struct sl_col *col_at(const struct sl_table *t, const size_t *idx, size_t i)
{
	return &t->cols[idx ? idx[i] : i];
}

static void put_object(struct sl_buf *b, const struct sl_table *t, const size_t *idx,
                       size_t from, size_t to, const char *side)
{
	size_t i;

	sl_buf_str(b, "json_object(");
	for (i = from; i < to; i++) {
		const struct sl_col *c = col_at(t, idx, i);
		sl_buf_str(b, i > from ? ", " : "");
		sl_buf_lit(b, c->name, c->len);
		sl_buf_str(b, ", ");
		put_enc(b, side, c, i);
	}
	sl_buf_str(b, ")");
}

/* The JSON object of the n listed columns.  Past the function-argument
 * limit, json_object() calls of chunk columns each are joined as text:
 * every object starts with {" and ends with a value then }, so ltrim and
 * rtrim take exactly one brace off. */
void sl__put_json(struct sl_buf *b, const struct sl_table *t, const size_t *idx, size_t n,
                  const char *side, size_t chunk)
{
	size_t from, to;

	if (n <= chunk) {
		put_object(b, t, idx, 0, n, side);
		return;
	}
	for (from = 0; from < n; from = to) {
		to = n - from > chunk ? from + chunk : n;
		sl_buf_str(b, from ? " || ',' || ltrim(" : "");
		sl_buf_str(b, to < n ? "rtrim(" : "");
		put_object(b, t, idx, from, to, side);
		sl_buf_str(b, to < n ? ", '}')" : "");
		sl_buf_str(b, from ? ", '{')" : "");
	}
}

size_t sl__json_chunk(struct sl_db *db)
{
	int lim = sqlite3_limit(db->h, SQLITE_LIMIT_FUNCTION_ARG, -1);

	if (lim > SLC_MAX_ARGS)
		lim = SLC_MAX_ARGS; /* the app's SQLite parses the triggers too */
	return lim >= 2 ? (size_t)lim / 2 : 1;
}

void sl_capture_put_key(struct sl_db *db, struct sl_buf *b, const struct sl_table *t,
                        const char *side)
{
	sl__put_json(b, t, t->pk, t->npk, side, sl__json_chunk(db));
}
