/* sl_names.c: building SQL text (a growable string, identifiers and string
 * literals quoted) and
 * the names of local tables: case-insensitive comparison and hash, and the
 * Postgres schema.table -> SQLite name mapping. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sl_int.h"

/* ---- string building ---- */

static void buf_grow(struct sl_buf *b, size_t add)
{
	size_t cap;
	char *p;

	if (b->oom || b->len + add + 1 <= b->cap)
		return;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + add + 1)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return;
	}
	b->p = p;
	b->cap = cap;
}

void sl_buf_put(struct sl_buf *b, const char *p, size_t n)
{
	buf_grow(b, n);
	if (b->oom)
		return;
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void sl_buf_str(struct sl_buf *b, const char *s)
{
	sl_buf_put(b, s, strlen(s));
}

/* Appends p between two q, each q inside it doubled. */
static void buf_quoted(struct sl_buf *b, const char *p, size_t n, char q)
{
	size_t i, start = 0;

	sl_buf_put(b, &q, 1);
	for (i = 0; i < n; i++) {
		if (p[i] != q)
			continue;
		sl_buf_put(b, p + start, i - start + 1);
		sl_buf_put(b, &q, 1);
		start = i + 1;
	}
	sl_buf_put(b, p + start, n - start);
	sl_buf_put(b, &q, 1);
}

/* Appends p as a double-quoted identifier, embedded quotes doubled. */
void sl_buf_ident(struct sl_buf *b, const char *p, size_t n)
{
	buf_quoted(b, p, n, '"');
}

void sl_buf_lit(struct sl_buf *b, const char *p, size_t n)
{
	buf_quoted(b, p, n, '\'');
}

void sl_buf_free(struct sl_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* ---- names ---- */

static unsigned char ascii_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* SQLite compares identifiers ASCII-case-insensitively; so do we. */
bool sl_name_eq(const char *a, size_t an, const char *b, size_t bn)
{
	size_t i;

	if (an != bn)
		return false;
	for (i = 0; i < an; i++)
		if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
			return false;
	return true;
}

uint32_t sl__name_hash(const char *p, size_t n)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ ascii_lower((unsigned char)p[i])) * 16777619u;
	return h;
}

static bool is_public(const char *s, size_t n)
{
	return n == 0 || (n == 6 && memcmp(s, "public", 6) == 0);
}

static size_t put_trunc(char *buf, size_t cap, size_t n, const char *p, size_t len)
{
	size_t room = cap - 1 - n;

	if (len > room)
		len = room;
	if (len)
		memcpy(buf + n, p, len);
	return n + len;
}

void sl_local_name(const char *schema, size_t schema_len, const char *table, size_t table_len,
                   char *buf, size_t cap)
{
	size_t n = 0;

	if (!cap)
		return;
	if (!is_public(schema, schema_len)) {
		n = put_trunc(buf, cap, n, schema, schema_len);
		n = put_trunc(buf, cap, n, "__", 2);
	}
	n = put_trunc(buf, cap, n, table, table_len);
	buf[n] = '\0';
}

/* sl_local_name into a SL_NAME_MAX buffer, refusing what cannot be a
 * table of ours: empty, too long, NUL bytes, the bridge's own prefix. */
int sl_local_name_checked(struct dec_str schema, struct dec_str table, char *buf, size_t *len,
                          struct sl_err *err)
{
	size_t need = table.len + (is_public(schema.p, schema.len) ? 0 : schema.len + 2);

	if (!table.len)
		return sl_fail(err, 0, "record has no table name");
	if (need >= SL_NAME_MAX)
		return sl_fail(err, 0, "table name \"%.*s...\" is too long",
		               (int)(table.len < 64 ? table.len : 64), table.p);
	sl_local_name(schema.p, schema.len, table.p, table.len, buf, SL_NAME_MAX);
	*len = need;
	if (strlen(buf) != need)
		return sl_fail(err, 0, "table name \"%s\" contains a nul byte", buf);
	if (need >= 10 && strncasecmp(buf, "_pgsqlite_", 10) == 0)
		return sl_fail(err, 0, "table \"%s\" collides with the bridge's own objects", buf);
	return 0;
}
