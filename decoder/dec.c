/* dec.c: the wal2json format-version 2 reader declared in dec.h.  A strict,
 * single-pass, zero-copy scanner for exactly the one-object-per-line JSON
 * wal2json writes (numbers keep their exact text), plus LSN helpers. */

#include "dec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEC_MAX_DEPTH 64   /* deepest container accepted inside an unknown key */
#define DEC_MAX_UNKNOWN 16 /* unknown keys per object tracked for duplicates */
#define DEC_MIN_SCRATCH 256
#define DEC_MIN_FIELDS 32

/* Keys of a record, in the order their "missing" errors are reported. */
enum rkey {
	K_ACTION, K_XID, K_TIMESTAMP, K_ORIGIN, K_LSN, K_NEXTLSN, K_SCHEMA,
	K_TABLE, K_COLUMNS, K_IDENTITY, K_PK, K_TRANSACTIONAL, K_PREFIX,
	K_CONTENT, K_NKEYS
};

#define BIT(k) (1u << (k))

static const struct {
	const char *name;
	size_t len;
	const char *type_msg;  /* the value has the wrong JSON type */
	const char *missing;   /* the action needs the key */
	const char *unexpected; /* the action does not carry the key */
} rkeys[K_NKEYS] = {
#define RK(n, t) { #n, sizeof #n - 1, "\"" #n "\" must be " t, \
	"missing \"" #n "\"", "unexpected \"" #n "\" for this action" }
	RK(action, "a one-letter string"),
	RK(xid, "an unsigned 32-bit integer or null"),
	RK(timestamp, "a string or null"),
	RK(origin, "an unsigned 32-bit integer or null"),
	RK(lsn, "a string"),
	RK(nextlsn, "a string"),
	RK(schema, "a string"),
	RK(table, "a string"),
	RK(columns, "an array"),
	RK(identity, "an array"),
	RK(pk, "an array"),
	RK(transactional, "a boolean"),
	RK(prefix, "a string"),
	RK(content, "a string"),
#undef RK
};

/* Keys of a columns / identity / pk entry. */
enum fkey { F_NAME, F_TYPE, F_TYPEOID, F_VALUE, F_NKEYS };

/* Cursor over one line.  out is the next free byte of the parser's scratch;
 * nfields the used entries of its fields array. */
struct cur {
	const char *s;
	size_t n;
	size_t i;
	char *out;
	size_t nfields;
	struct dec_parser *p;
	struct dec_error *err;
};

/* Unknown keys already seen in one object. */
struct keyset {
	size_t n;
	struct dec_str k[DEC_MAX_UNKNOWN];
};

/* What the record loop has seen: key bits, the three field slices (as
 * indices, since p->fields may move while growing), the closing brace. */
struct rstate {
	uint32_t seen;
	size_t first[3];
	size_t count[3];
	size_t end;
	struct keyset unknown;
};

static int fail(struct cur *c, size_t at, const char *msg)
{
	c->err->offset = at;
	c->err->msg = msg;
	return -1;
}

static int fail_oom(struct cur *c)
{
	c->err->offset = c->i;
	c->err->msg = "out of memory";
	return -2;
}

/* The byte at the cursor, or -1 at the end of the line. */
static inline int peek(const struct cur *c)
{
	return c->i < c->n ? (unsigned char)c->s[c->i] : -1;
}

static inline bool is_digit(int ch)
{
	return ch >= '0' && ch <= '9';
}

static inline void skip_ws(struct cur *c)
{
	while (c->i < c->n) {
		char ch = c->s[c->i];
		if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
			return;
		c->i++;
	}
}

static int hex_digit(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Reads the four hex digits of a \u escape starting at s[at]. */
static int read_hex4(struct cur *c, size_t at, uint32_t *out)
{
	uint32_t v = 0;
	if (at > c->n || c->n - at < 4)
		return fail(c, at, "truncated \\u escape");
	for (size_t k = 0; k < 4; k++) {
		int d = hex_digit((unsigned char)c->s[at + k]);
		if (d < 0)
			return fail(c, at + k, "bad hex digit in \\u escape");
		v = v << 4 | (uint32_t)d;
	}
	*out = v;
	return 0;
}

static char *put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xC0 | cp >> 6);
		*o++ = (char)(0x80 | (cp & 0x3F));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xE0 | cp >> 12);
		*o++ = (char)(0x80 | (cp >> 6 & 0x3F));
		*o++ = (char)(0x80 | (cp & 0x3F));
	} else {
		*o++ = (char)(0xF0 | cp >> 18);
		*o++ = (char)(0x80 | (cp >> 12 & 0x3F));
		*o++ = (char)(0x80 | (cp >> 6 & 0x3F));
		*o++ = (char)(0x80 | (cp & 0x3F));
	}
	return o;
}

/* Decodes the \u escape at s[*i] (a surrogate pair takes two escapes) into
 * UTF-8 at *o; lone surrogates are rejected. */
static int unescape_u(struct cur *c, size_t *i, char **o)
{
	uint32_t cp, lo;
	int rc = read_hex4(c, *i + 2, &cp);
	if (rc)
		return rc;
	if (cp >= 0xDC00 && cp <= 0xDFFF)
		return fail(c, *i, "lone low surrogate in \\u escape");
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		size_t j = *i + 6;
		if (c->n - j < 2 || c->s[j] != '\\' || c->s[j + 1] != 'u')
			return fail(c, *i, "lone high surrogate in \\u escape");
		if ((rc = read_hex4(c, j + 2, &lo)) != 0)
			return rc;
		if (lo < 0xDC00 || lo > 0xDFFF)
			return fail(c, j, "lone high surrogate in \\u escape");
		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
		*i += 6;
	}
	*o = put_utf8(*o, cp);
	*i += 6;
	return 0;
}

/* Decodes the escape sequence at s[*i] (a backslash) into *o. */
static int unescape_one(struct cur *c, size_t *i, char **o)
{
	static const char from[] = "\"\\/bfnrt";
	static const char to[] = "\"\\/\b\f\n\r\t";
	if (*i + 1 >= c->n)
		return fail(c, c->n, "unterminated string");
	char e = c->s[*i + 1];
	if (e == 'u')
		return unescape_u(c, i, o);
	const char *hit = e ? memchr(from, e, sizeof from - 1) : NULL;
	if (!hit)
		return fail(c, *i, "invalid escape in string");
	*(*o)++ = to[hit - from];
	*i += 2;
	return 0;
}

/* Slow path of scan_string: the string opened at s[start - 1] has its first
 * backslash at s[i].  Unescapes it into scratch. */
static int unescape_string(struct cur *c, size_t start, size_t i,
                           struct dec_str *out)
{
	char *o = c->out;
	memcpy(o, c->s + start, i - start);
	o += i - start;
	while (i < c->n) {
		unsigned char ch = (unsigned char)c->s[i];
		if (ch == '"') {
			out->p = c->out;
			out->len = (size_t)(o - c->out);
			c->out = o;
			c->i = i + 1;
			return 0;
		}
		if (ch < 0x20)
			return fail(c, i, "control character in string");
		if (ch != '\\') {
			*o++ = (char)ch;
			i++;
			continue;
		}
		int rc = unescape_one(c, &i, &o);
		if (rc)
			return rc;
	}
	return fail(c, c->n, "unterminated string");
}

/* Nonzero when one of the 8 bytes in v is '"', '\\' or below 0x20 (the
 * classic has-zero-byte trick: exact for the word, not per byte). */
static inline uint64_t special8(uint64_t v)
{
	const uint64_t ones = UINT64_C(0x0101010101010101);
	uint64_t q = v ^ (ones * '"'), b = v ^ (ones * '\\');
	uint64_t hit = ((q - ones) & ~q) | ((b - ones) & ~b) | ((v - ones * 0x20) & ~v);
	return hit & (ones * 0x80);
}

/* Index of the first byte at or after i that may end a plain run: skips
 * whole 8-byte words free of '"', '\\' and control bytes. */
static inline size_t skip_plain8(const char *s, size_t i, size_t n)
{
	uint64_t v;
	for (; n - i >= 8; i += 8) {
		memcpy(&v, s + i, 8);
		if (special8(v))
			break;
	}
	return i;
}

/* Scans the string whose opening quote is at the cursor.  *out points into
 * the line when the string holds no escape, else into scratch; the cursor
 * ends just past the closing quote. */
static int scan_string(struct cur *c, struct dec_str *out)
{
	const unsigned char *s = (const unsigned char *)c->s;
	size_t start = c->i + 1, n = c->n, i = start;
	size_t head = n - start > 16 ? start + 16 : n; /* short strings: bytewise */
	while (i < head && s[i] != '"' && s[i] != '\\' && s[i] >= 0x20)
		i++;
	if (i == head)
		i = skip_plain8(c->s, i, n);
	for (; i < n; i++) {
		unsigned char ch = s[i];
		if (ch == '"') {
			out->p = c->s + start;
			out->len = i - start;
			c->i = i + 1;
			return 0;
		}
		if (ch == '\\')
			return unescape_string(c, start, i, out);
		if (ch < 0x20)
			return fail(c, i, "control character in string");
	}
	return fail(c, n, "unterminated string");
}

static size_t skip_digits(const struct cur *c, size_t i)
{
	while (i < c->n && is_digit((unsigned char)c->s[i]))
		i++;
	return i;
}

/* Scans a number at the cursor by the strict JSON grammar
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; *out is its exact text. */
static int scan_number(struct cur *c, struct dec_str *out)
{
	const char *s = c->s;
	size_t n = c->n, start = c->i, i = start;
	if (i < n && s[i] == '-')
		i++;
	if (i >= n || !is_digit((unsigned char)s[i]))
		return fail(c, i, "invalid number");
	i = s[i] == '0' ? i + 1 : skip_digits(c, i);
	if (i < n && s[i] == '.') {
		if (++i >= n || !is_digit((unsigned char)s[i]))
			return fail(c, i, "invalid number");
		i = skip_digits(c, i);
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		if (++i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= n || !is_digit((unsigned char)s[i]))
			return fail(c, i, "invalid number");
		i = skip_digits(c, i);
	}
	if (i < n && (is_digit((unsigned char)s[i]) || s[i] == '.' || s[i] == 'e' ||
	              s[i] == 'E' || s[i] == '+' || s[i] == '-'))
		return fail(c, i, "invalid number");
	out->p = s + start;
	out->len = i - start;
	c->i = i;
	return 0;
}

static int scan_literal(struct cur *c, const char *lit, size_t len)
{
	if (c->n - c->i < len || memcmp(c->s + c->i, lit, len) != 0)
		return fail(c, c->i, "invalid literal");
	c->i += len;
	return 0;
}

/* Scans a scalar (string, number, true, false, null) at the cursor. */
static int scan_scalar(struct cur *c, enum dec_kind *kind, struct dec_str *val)
{
	int ch = peek(c);
	switch (ch) {
	case '"':
		*kind = DEC_STRING;
		return scan_string(c, val);
	case 'n':
		*kind = DEC_NULL;
		return scan_literal(c, "null", 4);
	case 't':
		*kind = DEC_TRUE;
		return scan_literal(c, "true", 4);
	case 'f':
		*kind = DEC_FALSE;
		return scan_literal(c, "false", 5);
	case '{':
	case '[':
		return fail(c, c->i, "value must be a scalar");
	case -1:
		return fail(c, c->i, "expected a value");
	default:
		if (ch != '-' && !is_digit(ch))
			return fail(c, c->i, "expected a value");
		*kind = DEC_NUMBER;
		return scan_number(c, val);
	}
}

/* Moves to the next member of an object whose '{' is consumed.  Returns 1
 * with *key and *at (its offset) set and the cursor on the value, 0 once the
 * closing '}' is consumed, or <0 on error. */
static int next_key(struct cur *c, bool first, struct dec_str *key, size_t *at)
{
	skip_ws(c);
	int ch = peek(c);
	if (ch == '}') {
		c->i++;
		return 0;
	}
	if (!first) {
		if (ch != ',')
			return fail(c, c->i, ch < 0 ? "unterminated object"
			                            : "expected ',' or '}'");
		c->i++;
		skip_ws(c);
		ch = peek(c);
	}
	if (ch != '"')
		return fail(c, c->i, ch < 0 ? "unterminated object" : "expected a key");
	*at = c->i;
	int rc = scan_string(c, key);
	if (rc)
		return rc;
	skip_ws(c);
	if (peek(c) != ':')
		return fail(c, c->i, "expected ':' after key");
	c->i++;
	skip_ws(c);
	return 1;
}

/* Moves to the next element of an array whose '[' is consumed: 1 with the
 * cursor on the element, 0 once ']' is consumed, <0 on error. */
static int next_elem(struct cur *c, bool first)
{
	skip_ws(c);
	int ch = peek(c);
	if (ch == ']') {
		c->i++;
		return 0;
	}
	if (!first) {
		if (ch != ',')
			return fail(c, c->i, ch < 0 ? "unterminated array"
			                            : "expected ',' or ']'");
		c->i++;
		skip_ws(c);
	}
	if (c->i >= c->n)
		return fail(c, c->i, "unterminated array");
	return 1;
}

static int skip_value(struct cur *c, int depth);

/* Skips the object or array at the cursor, validating it. */
static int skip_container(struct cur *c, int depth)
{
	bool obj = c->s[c->i] == '{';
	c->i++;
	for (bool first = true;; first = false) {
		struct dec_str key;
		size_t at;
		int rc = obj ? next_key(c, first, &key, &at) : next_elem(c, first);
		if (rc <= 0)
			return rc;
		if ((rc = skip_value(c, depth + 1)) != 0)
			return rc;
	}
}

/* Skips any JSON value at the cursor, validating it; containers may nest
 * DEC_MAX_DEPTH deep. */
static int skip_value(struct cur *c, int depth)
{
	int ch = peek(c);
	if (ch == '{' || ch == '[') {
		if (depth >= DEC_MAX_DEPTH)
			return fail(c, c->i, "nesting too deep");
		return skip_container(c, depth);
	}
	enum dec_kind kind;
	struct dec_str val;
	return scan_scalar(c, &kind, &val);
}

/* Records an unknown key of an object, rejecting a repeated one. */
static int note_unknown(struct cur *c, struct keyset *set, struct dec_str key,
                        size_t at)
{
	for (size_t k = 0; k < set->n; k++)
		if (set->k[k].len == key.len &&
		    (key.len == 0 || memcmp(set->k[k].p, key.p, key.len) == 0))
			return fail(c, at, "duplicate key");
	if (set->n == DEC_MAX_UNKNOWN)
		return fail(c, at, "too many unknown keys");
	set->k[set->n++] = key;
	return 0;
}

/* Reads an unsigned 32-bit integer (plain digits, no sign, fraction or
 * exponent) at the cursor; msg is the error for any other value. */
static int scan_uint32(struct cur *c, uint32_t *out, const char *msg)
{
	size_t at = c->i;
	struct dec_str t;
	if (!is_digit(peek(c)))
		return fail(c, at, msg);
	int rc = scan_number(c, &t);
	if (rc)
		return rc;
	uint64_t v = 0;
	for (size_t k = 0; k < t.len; k++) {
		if (!is_digit((unsigned char)t.p[k]))
			return fail(c, at, msg);
		v = v * 10 + (uint64_t)(t.p[k] - '0');
		if (v > UINT32_MAX)
			return fail(c, at, msg);
	}
	*out = (uint32_t)v;
	return 0;
}

static int scan_opt_uint32(struct cur *c, bool *has, uint32_t *out,
                           const char *msg)
{
	if (peek(c) == 'n') {
		*has = false;
		return scan_literal(c, "null", 4);
	}
	*has = true;
	return scan_uint32(c, out, msg);
}

static int scan_string_as(struct cur *c, struct dec_str *out, const char *msg)
{
	if (peek(c) != '"')
		return fail(c, c->i, msg);
	return scan_string(c, out);
}

static int scan_opt_string(struct cur *c, struct dec_str *out, const char *msg)
{
	if (peek(c) == 'n')
		return scan_literal(c, "null", 4);
	return scan_string_as(c, out, msg);
}

static int scan_bool(struct cur *c, bool *out, const char *msg)
{
	int ch = peek(c);
	*out = ch == 't';
	if (ch == 't')
		return scan_literal(c, "true", 4);
	if (ch == 'f')
		return scan_literal(c, "false", 5);
	return fail(c, c->i, msg);
}

/* Reads an LSN string ("16/B374D848") at the cursor. */
static int scan_lsn(struct cur *c, uint64_t *out, const char *msg)
{
	size_t at = c->i;
	struct dec_str t;
	int rc = scan_string_as(c, &t, msg);
	if (rc)
		return rc;
	if (dec_parse_lsn(t.p, t.len, out) != 0)
		return fail(c, at, "invalid lsn");
	return 0;
}

static int scan_action(struct cur *c, enum dec_action *out, const char *msg)
{
	size_t at = c->i;
	struct dec_str t;
	int rc = scan_string_as(c, &t, msg);
	if (rc)
		return rc;
	if (t.len != 1 || t.p[0] == '\0' || !strchr("BCIUDTM", t.p[0]))
		return fail(c, at, "unknown action");
	*out = (enum dec_action)t.p[0];
	return 0;
}

/* Which entry key a string is, or -1. */
static int field_key(struct dec_str k)
{
	if (k.len == 4 && memcmp(k.p, "name", 4) == 0)
		return F_NAME;
	if (k.len == 4 && memcmp(k.p, "type", 4) == 0)
		return F_TYPE;
	if (k.len == 7 && memcmp(k.p, "typeoid", 7) == 0)
		return F_TYPEOID;
	if (k.len == 5 && memcmp(k.p, "value", 5) == 0)
		return F_VALUE;
	return -1;
}

/* Parses the value of one member of a columns / identity / pk entry. */
static int field_member(struct cur *c, struct dec_str key, size_t at,
                        unsigned *seen, struct keyset *unknown,
                        struct dec_field *f)
{
	int k = field_key(key);
	if (k < 0) {
		int rc = note_unknown(c, unknown, key, at);
		return rc ? rc : skip_value(c, 3);
	}
	if (*seen & BIT(k))
		return fail(c, at, "duplicate key");
	*seen |= BIT(k);
	switch (k) {
	case F_NAME:
		return scan_string_as(c, &f->name, "\"name\" must be a string");
	case F_TYPE:
		return scan_string_as(c, &f->type, "\"type\" must be a string");
	case F_TYPEOID:
		return scan_uint32(c, &f->typeoid,
		                   "\"typeoid\" must be an unsigned 32-bit integer");
	default:
		return scan_scalar(c, &f->kind, &f->value);
	}
}

/* Parses one entry of "columns" / "identity" (with_value) or "pk" (without)
 * at the cursor into *f. */
static int parse_field(struct cur *c, bool with_value, struct dec_field *f)
{
	struct keyset unknown;
	unsigned seen = 0;
	size_t at;
	struct dec_str key;
	int rc;
	if (peek(c) != '{')
		return fail(c, c->i, "expected '{' for a column entry");
	memset(f, 0, sizeof *f);
	unknown.n = 0;
	c->i++;
	for (bool first = true;
	     (rc = next_key(c, first, &key, &at)) == 1; first = false)
		if ((rc = field_member(c, key, at, &seen, &unknown, f)) != 0)
			return rc;
	if (rc < 0)
		return rc;
	if (!(seen & BIT(F_NAME)))
		return fail(c, c->i - 1, "missing \"name\"");
	if (with_value && !(seen & BIT(F_VALUE)))
		return fail(c, c->i - 1, "missing \"value\"");
	if (!with_value && (seen & BIT(F_VALUE)))
		return fail(c, c->i - 1, "unexpected \"value\" in a pk entry");
	return 0;
}

/* Appends *f to p->fields, growing it (which may move it) when full. */
static int push_field(struct cur *c, const struct dec_field *f)
{
	struct dec_parser *p = c->p;
	if (c->nfields == p->fields_cap) {
		size_t cap = p->fields_cap ? p->fields_cap * 2 : DEC_MIN_FIELDS;
		struct dec_field *nf = realloc(p->fields, cap * sizeof *nf);
		if (!nf)
			return fail_oom(c);
		p->fields = nf;
		p->fields_cap = cap;
	}
	p->fields[c->nfields++] = *f;
	return 0;
}

/* Parses the "columns" / "identity" / "pk" array at the cursor into
 * p->fields, noting its slice as indices in st. */
static int parse_fields(struct cur *c, int k, struct rstate *st)
{
	int slot = k - K_COLUMNS, rc;
	if (peek(c) != '[')
		return fail(c, c->i, rkeys[k].type_msg);
	c->i++;
	st->first[slot] = c->nfields;
	for (bool first = true; (rc = next_elem(c, first)) == 1; first = false) {
		struct dec_field f;
		if ((rc = parse_field(c, k != K_PK, &f)) != 0)
			return rc;
		if ((rc = push_field(c, &f)) != 0)
			return rc;
	}
	st->count[slot] = c->nfields - st->first[slot];
	return rc;
}

/* Parses the value of the record key k into *r. */
static int record_value(struct cur *c, int k, struct rstate *st,
                        struct dec_record *r)
{
	const char *msg = rkeys[k].type_msg;
	switch (k) {
	case K_ACTION: return scan_action(c, &r->action, msg);
	case K_XID: return scan_opt_uint32(c, &r->has_xid, &r->xid, msg);
	case K_TIMESTAMP: return scan_opt_string(c, &r->timestamp, msg);
	case K_ORIGIN: return scan_opt_uint32(c, &r->has_origin, &r->origin, msg);
	case K_LSN: return scan_lsn(c, &r->lsn, msg);
	case K_NEXTLSN: return scan_lsn(c, &r->nextlsn, msg);
	case K_SCHEMA: return scan_string_as(c, &r->schema, msg);
	case K_TABLE: return scan_string_as(c, &r->table, msg);
	case K_TRANSACTIONAL: return scan_bool(c, &r->transactional, msg);
	case K_PREFIX: return scan_string_as(c, &r->prefix, msg);
	case K_CONTENT: return scan_string_as(c, &r->content, msg);
	default: return parse_fields(c, k, st);
	}
}

/* Which record key a string is, or -1. */
static int record_key(struct dec_str key)
{
	for (int k = 0; k < K_NKEYS; k++)
		if (rkeys[k].len == key.len && memcmp(rkeys[k].name, key.p, key.len) == 0)
			return k;
	return -1;
}

/* Parses one member of the record object. */
static int record_member(struct cur *c, struct dec_str key, size_t at,
                         struct rstate *st, struct dec_record *r)
{
	int k = record_key(key);
	if (k < 0) {
		int rc = note_unknown(c, &st->unknown, key, at);
		return rc ? rc : skip_value(c, 1);
	}
	if (st->seen & BIT(k))
		return fail(c, at, "duplicate key");
	st->seen |= BIT(k);
	return record_value(c, k, st, r);
}

/* Parses the record object at the cursor; st->end is its closing brace. */
static int parse_record(struct cur *c, struct dec_record *r, struct rstate *st)
{
	struct dec_str key;
	size_t at;
	int rc;
	skip_ws(c);
	if (peek(c) != '{')
		return fail(c, c->i, c->i >= c->n ? "empty line" : "expected '{'");
	c->i++;
	for (bool first = true;
	     (rc = next_key(c, first, &key, &at)) == 1; first = false)
		if ((rc = record_member(c, key, at, st, r)) != 0)
			return rc;
	st->end = c->i - 1;
	return rc;
}

/* The keys an action needs (*need) and may carry (returned). */
static uint32_t action_shape(enum dec_action a, uint32_t *need)
{
	const uint32_t common = BIT(K_ACTION) | BIT(K_XID) | BIT(K_TIMESTAMP) |
	                        BIT(K_ORIGIN) | BIT(K_LSN);
	const uint32_t rel = BIT(K_SCHEMA) | BIT(K_TABLE);
	switch (a) {
	case DEC_INSERT:
	case DEC_UPDATE:
		*need = BIT(K_ACTION) | rel | BIT(K_COLUMNS);
		return common | rel | BIT(K_COLUMNS) | BIT(K_PK) |
		       (a == DEC_UPDATE ? BIT(K_IDENTITY) : 0);
	case DEC_DELETE:
		*need = BIT(K_ACTION) | rel | BIT(K_IDENTITY);
		return common | rel | BIT(K_IDENTITY) | BIT(K_PK);
	case DEC_TRUNCATE:
		*need = BIT(K_ACTION) | rel;
		return common | rel;
	case DEC_MESSAGE:
		*need = BIT(K_ACTION) | BIT(K_TRANSACTIONAL) | BIT(K_PREFIX) |
		        BIT(K_CONTENT);
		return common | *need;
	default: /* DEC_BEGIN, DEC_COMMIT */
		*need = BIT(K_ACTION);
		return common | BIT(K_NEXTLSN);
	}
}

/* Checks the keys seen against the action's shape. */
static int check_shape(struct cur *c, const struct dec_record *r,
                       const struct rstate *st)
{
	uint32_t need, allow;
	if (!(st->seen & BIT(K_ACTION)))
		return fail(c, st->end, rkeys[K_ACTION].missing);
	allow = action_shape(r->action, &need);
	for (int k = 0; k < K_NKEYS; k++) {
		if ((st->seen & BIT(k)) && !(allow & BIT(k)))
			return fail(c, st->end, rkeys[k].unexpected);
		if ((need & BIT(k)) && !(st->seen & BIT(k)))
			return fail(c, st->end, rkeys[k].missing);
	}
	return 0;
}

/* After the object: only whitespace may follow; then the shape check and
 * the field slices, now that p->fields no longer moves. */
static int finish(struct cur *c, struct dec_record *r, const struct rstate *st)
{
	struct dec_field *base = c->p->fields;
	skip_ws(c);
	if (c->i != c->n)
		return fail(c, c->i, "trailing garbage after object");
	int rc = check_shape(c, r, st);
	if (rc)
		return rc;
	r->columns = st->count[0] ? base + st->first[0] : NULL;
	r->ncolumns = st->count[0];
	r->identity = st->count[1] ? base + st->first[1] : NULL;
	r->nidentity = st->count[1];
	r->pk = st->count[2] ? base + st->first[2] : NULL;
	r->npk = st->count[2];
	return 0;
}

/* Makes scratch at least len bytes: unescaped text never outgrows the line,
 * so pointers into scratch never move during one parse. */
static int reserve_scratch(struct dec_parser *p, size_t len)
{
	if (len <= p->scratch_cap)
		return 0;
	size_t cap = len < DEC_MIN_SCRATCH ? DEC_MIN_SCRATCH : len;
	char *ns = realloc(p->scratch, cap);
	if (!ns)
		return -1;
	p->scratch = ns;
	p->scratch_cap = cap;
	return 0;
}

void dec_parser_init(struct dec_parser *p)
{
	memset(p, 0, sizeof *p);
}

void dec_parser_free(struct dec_parser *p)
{
	free(p->scratch);
	free(p->fields);
	memset(p, 0, sizeof *p);
}

/* Starts a cursor over s[0..n) with a cleared error and scratch for every
 * string of the text. */
static int begin(struct cur *c, struct dec_parser *p, const char *s, size_t n,
                 struct dec_error *err)
{
	memset(c, 0, sizeof *c);
	c->s = s;
	c->n = n;
	c->p = p;
	c->err = err;
	err->offset = 0;
	err->msg = NULL;
	if (reserve_scratch(p, n) != 0)
		return fail_oom(c);
	c->out = p->scratch;
	return 0;
}

int dec_parse(struct dec_parser *p, const char *line, size_t len,
              struct dec_record *out, struct dec_error *err)
{
	struct dec_error dummy;
	struct rstate st;
	struct cur c;
	memset(out, 0, sizeof *out);
	int rc = begin(&c, p, line, len, err ? err : &dummy);
	if (rc)
		return rc;
	st.seen = 0;
	st.unknown.n = 0;
	memset(st.count, 0, sizeof st.count);
	rc = parse_record(&c, out, &st);
	return rc ? rc : finish(&c, out, &st);
}

/* ---- flat objects of scalars: the change log's row images ---- */

/* While a row image is parsed, each field's type.len holds the offset of
 * its key, for the duplicate check; the check clears it again. */

/* Orders fields by name bytes, then by key offset. */
static int name_order(const void *a, const void *b)
{
	const struct dec_field *x = a, *y = b;
	size_t n = x->name.len < y->name.len ? x->name.len : y->name.len;
	int d = n ? memcmp(x->name.p, y->name.p, n) : 0;
	if (d == 0 && x->name.len != y->name.len)
		d = x->name.len < y->name.len ? -1 : 1;
	if (d == 0 && x->type.len != y->type.len)
		d = x->type.len < y->type.len ? -1 : 1;
	return d;
}

static bool same_name(const struct dec_field *x, const struct dec_field *y)
{
	return x->name.len == y->name.len &&
	       (x->name.len == 0 || memcmp(x->name.p, y->name.p, x->name.len) == 0);
}

/* Makes p->fields hold at least n entries. */
static int reserve_fields(struct cur *c, size_t n)
{
	struct dec_parser *p = c->p;
	if (n <= p->fields_cap)
		return 0;
	size_t cap = p->fields_cap ? p->fields_cap : DEC_MIN_FIELDS;
	while (cap < n)
		cap *= 2;
	struct dec_field *nf = realloc(p->fields, cap * sizeof *nf);
	if (!nf)
		return fail_oom(c);
	p->fields = nf;
	p->fields_cap = cap;
	return 0;
}

/* Sorts the n copies at s; returns the offset of the earliest repeated key,
 * or SIZE_MAX. */
static size_t first_repeat(struct dec_field *s, size_t n)
{
	size_t at = SIZE_MAX;
	qsort(s, n, sizeof *s, name_order);
	for (size_t k = 1; k < n; k++)
		if (same_name(&s[k - 1], &s[k]) && s[k].type.len < at)
			at = s[k].type.len;
	return at;
}

/* Rejects a repeated key, reporting the earliest repeat.  Sorts copies of
 * the fields in the spare end of p->fields, so a wide row costs n log n. */
static int check_unique(struct cur *c)
{
	size_t n = c->nfields, at = SIZE_MAX;
	if (n > 1) {
		int rc = reserve_fields(c, 2 * n);
		if (rc)
			return rc;
		memcpy(c->p->fields + n, c->p->fields, n * sizeof *c->p->fields);
		at = first_repeat(c->p->fields + n, n);
	}
	for (size_t k = 0; k < n; k++)
		c->p->fields[k].type.len = 0;
	return at == SIZE_MAX ? 0 : fail(c, at, "duplicate key");
}

/* Parses the next member of a row image whose '{' is consumed into
 * p->fields: 1 after a member, 0 once '}' is consumed, <0 on error. */
static int object_member(struct cur *c, bool first)
{
	struct dec_field f;
	size_t at;
	memset(&f, 0, sizeof f);
	int rc = next_key(c, first, &f.name, &at);
	if (rc <= 0)
		return rc;
	int ch = peek(c);
	if (ch == '{' || ch == '[')
		return fail(c, c->i, "nested value in a row image");
	if ((rc = scan_scalar(c, &f.kind, &f.value)) != 0)
		return rc;
	f.type.len = at;
	rc = push_field(c, &f);
	return rc ? rc : 1;
}

/* Parses the whole text as one flat object, with only whitespace around. */
static int parse_object(struct cur *c)
{
	int rc;
	skip_ws(c);
	if (peek(c) != '{')
		return fail(c, c->i, c->i >= c->n ? "empty input" : "expected '{'");
	c->i++;
	for (bool first = true; (rc = object_member(c, first)) == 1; first = false)
		;
	if (rc)
		return rc;
	skip_ws(c);
	if (c->i != c->n)
		return fail(c, c->i, "trailing garbage after object");
	return check_unique(c);
}

int dec_parse_object(struct dec_parser *p, const char *text, size_t len,
                     struct dec_field **fields, size_t *nfields, struct dec_error *err)
{
	struct dec_error dummy;
	struct cur c;
	*fields = NULL;
	*nfields = 0;
	int rc = begin(&c, p, text, len, err ? err : &dummy);
	if (rc == 0)
		rc = parse_object(&c);
	if (rc)
		return rc;
	*fields = c.nfields ? p->fields : NULL;
	*nfields = c.nfields;
	return 0;
}

/* Parses 1 to 8 hex digits at s[*i] into *out, advancing *i. */
static int parse_lsn_half(const char *s, size_t len, size_t *i, uint32_t *out)
{
	size_t start = *i;
	uint32_t v = 0;
	int d;
	while (*i < len && *i - start <= 8 && (d = hex_digit((unsigned char)s[*i])) >= 0) {
		v = v << 4 | (uint32_t)d;
		(*i)++;
	}
	if (*i == start || *i - start > 8)
		return -1;
	*out = v;
	return 0;
}

int dec_parse_lsn(const char *s, size_t len, uint64_t *out)
{
	uint32_t hi, lo;
	size_t i = 0;
	if (parse_lsn_half(s, len, &i, &hi) != 0 || i >= len || s[i] != '/')
		return -1;
	i++;
	if (parse_lsn_half(s, len, &i, &lo) != 0 || i != len)
		return -1;
	*out = (uint64_t)hi << 32 | lo;
	return 0;
}

void dec_format_lsn(uint64_t lsn, char *buf, size_t cap)
{
	if (cap == 0)
		return;
	snprintf(buf, cap, "%X/%X", (unsigned)(lsn >> 32), (unsigned)(lsn & 0xFFFFFFFFu));
}

bool dec_str_eq(struct dec_str s, const char *c)
{
	size_t n = strlen(c);
	return s.len == n && (n == 0 || memcmp(s.p, c, n) == 0);
}
