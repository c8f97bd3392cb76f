/* dec_scan.c: the low-level JSON scanner of the wal2json reader: escaped
 * strings unescaped into scratch (the zero-copy fast path is inline in
 * dec_int.h), numbers kept as their exact text, literals, stepping through
 * objects and arrays, skipping unknown values; plus the cursor's errors and
 * the parser's buffers. */

#include "dec_int.h"

#include <stdlib.h>
#include <string.h>

#define DEC_MAX_DEPTH 64   /* deepest container accepted inside an unknown key */
#define DEC_MIN_SCRATCH 256 /* first size of p->scratch */

int dec__fail(struct cur *c, size_t at, const char *msg)
{
	c->err->offset = at;
	c->err->msg = msg;
	return -1;
}

int dec__fail_oom(struct cur *c)
{
	c->err->offset = c->i;
	c->err->msg = "out of memory";
	return -2;
}

/* Reads the four hex digits of a \u escape starting at s[at]. */
static int read_hex4(struct cur *c, size_t at, uint32_t *out)
{
	uint32_t v = 0;
	if (at > c->n || c->n - at < 4)
		return dec__fail(c, at, "truncated \\u escape");
	for (size_t k = 0; k < 4; k++) {
		int d = hex_digit((unsigned char)c->s[at + k]);
		if (d < 0)
			return dec__fail(c, at + k, "bad hex digit in \\u escape");
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
		return dec__fail(c, *i, "lone low surrogate in \\u escape");
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		size_t j = *i + 6;
		if (c->n - j < 2 || c->s[j] != '\\' || c->s[j + 1] != 'u')
			return dec__fail(c, *i, "lone high surrogate in \\u escape");
		if ((rc = read_hex4(c, j + 2, &lo)) != 0)
			return rc;
		if (lo < 0xDC00 || lo > 0xDFFF)
			return dec__fail(c, j, "lone high surrogate in \\u escape");
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
		return dec__fail(c, c->n, "unterminated string");
	char e = c->s[*i + 1];
	if (e == 'u')
		return unescape_u(c, i, o);
	const char *hit = e ? memchr(from, e, sizeof from - 1) : NULL;
	if (!hit)
		return dec__fail(c, *i, "invalid escape in string");
	*(*o)++ = to[hit - from];
	*i += 2;
	return 0;
}

/* Slow path of scan_string (dec_int.h): the string opened at s[start - 1]
 * has its first backslash at s[i].  Unescapes it into scratch. */
int dec__unescape_string(struct cur *c, size_t start, size_t i,
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
			return dec__fail(c, i, "control character in string");
		if (ch != '\\') {
			*o++ = (char)ch;
			i++;
			continue;
		}
		int rc = unescape_one(c, &i, &o);
		if (rc)
			return rc;
	}
	return dec__fail(c, c->n, "unterminated string");
}

static size_t skip_digits(const struct cur *c, size_t i)
{
	while (i < c->n && is_digit((unsigned char)c->s[i]))
		i++;
	return i;
}

/* Scans a number at the cursor by the strict JSON grammar
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; *out is its exact text. */
int dec__scan_number(struct cur *c, struct dec_str *out)
{
	const char *s = c->s;
	size_t n = c->n, start = c->i, i = start;
	if (i < n && s[i] == '-')
		i++;
	if (i >= n || !is_digit((unsigned char)s[i]))
		return dec__fail(c, i, "invalid number");
	i = s[i] == '0' ? i + 1 : skip_digits(c, i);
	if (i < n && s[i] == '.') {
		if (++i >= n || !is_digit((unsigned char)s[i]))
			return dec__fail(c, i, "invalid number");
		i = skip_digits(c, i);
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		if (++i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= n || !is_digit((unsigned char)s[i]))
			return dec__fail(c, i, "invalid number");
		i = skip_digits(c, i);
	}
	if (i < n && (is_digit((unsigned char)s[i]) || s[i] == '.' || s[i] == 'e' ||
	              s[i] == 'E' || s[i] == '+' || s[i] == '-'))
		return dec__fail(c, i, "invalid number");
	out->p = s + start;
	out->len = i - start;
	c->i = i;
	return 0;
}

int dec__scan_literal(struct cur *c, const char *lit, size_t len)
{
	if (c->n - c->i < len || memcmp(c->s + c->i, lit, len) != 0)
		return dec__fail(c, c->i, "invalid literal");
	c->i += len;
	return 0;
}

/* Scans a scalar (string, number, true, false, null) at the cursor. */
int dec__scan_scalar(struct cur *c, enum dec_kind *kind, struct dec_str *val)
{
	int ch = peek(c);
	switch (ch) {
	case '"':
		*kind = DEC_STRING;
		return scan_string(c, val);
	case 'n':
		*kind = DEC_NULL;
		return dec__scan_literal(c, "null", 4);
	case 't':
		*kind = DEC_TRUE;
		return dec__scan_literal(c, "true", 4);
	case 'f':
		*kind = DEC_FALSE;
		return dec__scan_literal(c, "false", 5);
	case '{':
	case '[':
		return dec__fail(c, c->i, "value must be a scalar");
	case -1:
		return dec__fail(c, c->i, "expected a value");
	default:
		if (ch != '-' && !is_digit(ch))
			return dec__fail(c, c->i, "expected a value");
		*kind = DEC_NUMBER;
		return dec__scan_number(c, val);
	}
}

/* Moves to the next member of an object whose '{' is consumed.  Returns 1
 * with *key and *at (its offset) set and the cursor on the value, 0 once the
 * closing '}' is consumed, or <0 on error. */
int dec__next_key(struct cur *c, bool first, struct dec_str *key, size_t *at)
{
	skip_ws(c);
	int ch = peek(c);
	if (ch == '}') {
		c->i++;
		return 0;
	}
	if (!first) {
		if (ch != ',')
			return dec__fail(c, c->i, ch < 0 ? "unterminated object"
			                            : "expected ',' or '}'");
		c->i++;
		skip_ws(c);
		ch = peek(c);
	}
	if (ch != '"')
		return dec__fail(c, c->i, ch < 0 ? "unterminated object" : "expected a key");
	*at = c->i;
	int rc = scan_string(c, key);
	if (rc)
		return rc;
	skip_ws(c);
	if (peek(c) != ':')
		return dec__fail(c, c->i, "expected ':' after key");
	c->i++;
	skip_ws(c);
	return 1;
}

/* Moves to the next element of an array whose '[' is consumed: 1 with the
 * cursor on the element, 0 once ']' is consumed, <0 on error. */
int dec__next_elem(struct cur *c, bool first)
{
	skip_ws(c);
	int ch = peek(c);
	if (ch == ']') {
		c->i++;
		return 0;
	}
	if (!first) {
		if (ch != ',')
			return dec__fail(c, c->i, ch < 0 ? "unterminated array"
			                            : "expected ',' or ']'");
		c->i++;
		skip_ws(c);
	}
	if (c->i >= c->n)
		return dec__fail(c, c->i, "unterminated array");
	return 1;
}

/* Skips the object or array at the cursor, validating it. */
static int skip_container(struct cur *c, int depth)
{
	bool obj = c->s[c->i] == '{';
	c->i++;
	for (bool first = true;; first = false) {
		struct dec_str key;
		size_t at;
		int rc = obj ? dec__next_key(c, first, &key, &at) : dec__next_elem(c, first);
		if (rc <= 0)
			return rc;
		if ((rc = dec__skip_value(c, depth + 1)) != 0)
			return rc;
	}
}

/* Skips any JSON value at the cursor, validating it; containers may nest
 * DEC_MAX_DEPTH deep. */
int dec__skip_value(struct cur *c, int depth)
{
	int ch = peek(c);
	if (ch == '{' || ch == '[') {
		if (depth >= DEC_MAX_DEPTH)
			return dec__fail(c, c->i, "nesting too deep");
		return skip_container(c, depth);
	}
	enum dec_kind kind;
	struct dec_str val;
	return dec__scan_scalar(c, &kind, &val);
}

/* Appends *f to p->fields, growing it (which may move it) when full. */
int dec__push_field(struct cur *c, const struct dec_field *f)
{
	struct dec_parser *p = c->p;
	if (c->nfields == p->fields_cap) {
		size_t cap = p->fields_cap ? p->fields_cap * 2 : DEC_MIN_FIELDS;
		struct dec_field *nf = realloc(p->fields, cap * sizeof *nf);
		if (!nf)
			return dec__fail_oom(c);
		p->fields = nf;
		p->fields_cap = cap;
	}
	p->fields[c->nfields++] = *f;
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
int dec__begin(struct cur *c, struct dec_parser *p, const char *s, size_t n,
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
		return dec__fail_oom(c);
	c->out = p->scratch;
	return 0;
}

bool dec_str_eq(struct dec_str s, const char *c)
{
	size_t n = strlen(c);
	return s.len == n && (n == 0 || memcmp(s.p, c, n) == 0);
}
