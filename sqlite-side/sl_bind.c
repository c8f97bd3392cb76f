/* sl_bind.c: binding decoded values to statement parameters by the local
 * column's kind: plain integers as int64, booleans as 0/1, floats as double,
 * everything else as exact text, bytea hex decoded to a blob. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sl_int.h"

#define SL_BAD_HEX (-1)
#define SL_BLOB_KEEP (1u << 20) /* decoded-bytea scratch kept across transactions */

int sl_bv_reserve(struct sl_db *db, size_t n)
{
	struct sl_bindv *p;
	size_t cap;

	if (n <= db->bv_cap)
		return 0;
	cap = db->bv_cap ? db->bv_cap : 16;
	while (cap < n)
		cap *= 2;
	p = realloc(db->bv, cap * sizeof *p);
	if (!p)
		return -1;
	db->bv = p;
	db->bv_cap = cap;
	return 0;
}

/* Frees a scratch buffer that one huge bytea row left behind. */
void sl_bind_trim(struct sl_db *db)
{
	if (db->blob_cap <= SL_BLOB_KEEP)
		return;
	free(db->blob);
	db->blob = NULL;
	db->blob_cap = 0;
}

static int blob_reserve(struct sl_db *db, size_t n)
{
	unsigned char *p;

	if (n <= db->blob_cap)
		return 0;
	p = realloc(db->blob, n);
	if (!p)
		return -1;
	db->blob = p;
	db->blob_cap = n;
	return 0;
}

/* A plain decimal integer that fits int64: "-12", "9223372036854775807". */
static int parse_int64(const char *p, size_t n, int64_t *out)
{
	uint64_t v = 0, lim = INT64_MAX;
	bool neg = n && p[0] == '-';
	size_t i = neg;

	if (i == n || n - i > 19)
		return -1;
	if (neg)
		lim = (uint64_t)INT64_MAX + 1;
	for (; i < n; i++) {
		unsigned d = (unsigned)((unsigned char)p[i] - '0');
		if (d > 9 || v > (lim - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (!neg)
		*out = (int64_t)v;
	else
		*out = v > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)v;
	return 0;
}

static bool word_eq(const char *p, size_t n, const char *w)
{
	return strlen(w) == n && strncasecmp(p, w, n) == 0;
}

/* Postgres boolean input words: 1, 0, or -1 for anything else. */
static int parse_bool(const char *p, size_t n)
{
	static const char *const yes[] = {"t", "true", "y", "yes", "on"};
	static const char *const no[] = {"f", "false", "n", "no", "off"};
	size_t i;

	for (i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (word_eq(p, n, yes[i]))
			return 1;
		if (word_eq(p, n, no[i]))
			return 0;
	}
	return -1;
}

static int bind_text(sqlite3_stmt *st, int i, const char *p, size_t n)
{
	return sqlite3_bind_text64(st, i, p ? p : "", n, SQLITE_STATIC, SQLITE_UTF8);
}

static int bind_int(sqlite3_stmt *st, int i, const char *p, size_t n)
{
	int64_t v;
	int b;

	if (parse_int64(p, n, &v) == 0)
		return sqlite3_bind_int64(st, i, v);
	b = parse_bool(p, n);
	if (b >= 0)
		return sqlite3_bind_int(st, i, b);
	return bind_text(st, i, p, n);
}

/* strtod when it takes the whole text ("1.5", "Infinity" -> inf; glibc
 * rounds correctly, so a double arrives bit for bit); NaN, which a SQLite
 * REAL cannot hold (it would become NULL), as the text 'NaN' that the
 * change log sends back unchanged; otherwise the text, left to the
 * column's affinity. */
static int bind_real(sqlite3_stmt *st, int i, const char *p, size_t n)
{
	char tmp[64], *end;
	double d;

	if (n == 0 || n >= sizeof tmp)
		return bind_text(st, i, p, n);
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	d = strtod(tmp, &end);
	if (end != tmp + n)
		return bind_text(st, i, p, n);
	if (isnan(d))
		return sqlite3_bind_text(st, i, "NaN", 3, SQLITE_STATIC);
	return sqlite3_bind_double(st, i, d);
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* bytea hex as wal2json sends it ("00ff"; a "\x" prefix is accepted too),
 * decoded into the row's scratch at *out. */
static int bind_hex(sqlite3_stmt *st, int i, const char *p, size_t n, unsigned char **out)
{
	unsigned char *o = *out;
	size_t k;

	if (n >= 2 && p[0] == '\\' && p[1] == 'x')
		p += 2, n -= 2;
	if (n % 2)
		return SL_BAD_HEX;
	if (n == 0)
		return sqlite3_bind_zeroblob(st, i, 0);
	for (k = 0; k < n; k += 2) {
		int hi = hexval((unsigned char)p[k]), lo = hexval((unsigned char)p[k + 1]);
		if (hi < 0 || lo < 0)
			return SL_BAD_HEX;
		o[k / 2] = (unsigned char)(hi << 4 | lo);
	}
	*out += n / 2;
	return sqlite3_bind_blob64(st, i, o, n / 2, SQLITE_STATIC);
}

static int bind_one(sqlite3_stmt *st, int i, const struct sl_bindv *b, unsigned char **out)
{
	const struct dec_field *f = b->f;

	switch (f->kind) {
	case DEC_NULL:
		return sqlite3_bind_null(st, i);
	case DEC_TRUE:
		return sqlite3_bind_int(st, i, 1);
	case DEC_FALSE:
		return sqlite3_bind_int(st, i, 0);
	default:
		break;
	}
	switch (b->kind) {
	case SLK_INT:
		return bind_int(st, i, f->value.p, f->value.len);
	case SLK_REAL:
		return bind_real(st, i, f->value.p, f->value.len);
	case SLK_BLOB:
		return bind_hex(st, i, f->value.p, f->value.len, out);
	default:
		return bind_text(st, i, f->value.p, f->value.len);
	}
}

static size_t blob_need(const struct sl_bindv *bv, size_t n)
{
	size_t i, need = 0;

	for (i = 0; i < n; i++)
		if (bv[i].kind == SLK_BLOB && (bv[i].f->kind == DEC_STRING || bv[i].f->kind == DEC_NUMBER))
			need += bv[i].f->value.len / 2;
	return need;
}

/* Binds db->bv[0..n) to parameters 1..n.  Text and decoded blobs are bound
 * SQLITE_STATIC: the record and the scratch outlive the statement's step,
 * and the caller resets and clears the bindings right after it. */
int sl_bind_row(struct sl_db *db, sqlite3_stmt *st, size_t n, const char *table,
                struct sl_err *err)
{
	unsigned char *out;
	size_t i;

	if (blob_reserve(db, blob_need(db->bv, n)))
		return sl_fail(err, SQLITE_NOMEM, "cannot bind a bytea value for table \"%s\": out of memory",
		               table);
	out = db->blob;
	for (i = 0; i < n; i++) {
		const struct dec_field *f = db->bv[i].f;
		int rc = bind_one(st, (int)i + 1, &db->bv[i], &out);
		if (rc == SL_BAD_HEX)
			return sl_fail(err, 0,
			               "invalid bytea hex in column \"%.*s\" of table \"%s\": odd length or bad digit",
			               (int)f->name.len, f->name.p ? f->name.p : "", table);
		if (rc != SQLITE_OK)
			return sl_fail_db(db, err, "cannot bind a value for table", table);
	}
	return 0;
}
