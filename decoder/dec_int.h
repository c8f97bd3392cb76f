/* dec_int.h: what the decoder's files share and dec.h does not show: the
 * cursor over one line, its byte helpers, the JSON scanner of dec_scan.c
 * that the record and flat-object readers are built on, and the inline
 * fast path of its string scanner. */
#ifndef PGSB_DEC_INT_H
#define PGSB_DEC_INT_H

#include "dec.h"

#include <string.h>

#define DEC_MIN_FIELDS 32 /* first size of p->fields */

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

/* The value of a hex digit, or -1. */
static inline int hex_digit(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* dec_scan.c.  Each returns 0 (or what its comment says), -1 with the
 * cursor's error set for bad input, -2 when memory could not be grown. */

/* Sets the error (offset at, static msg) and returns -1. */
int dec__fail(struct cur *c, size_t at, const char *msg);
/* Sets "out of memory" at the cursor and returns -2. */
int dec__fail_oom(struct cur *c);
/* Starts a cursor over s[0..n) with a cleared error and scratch for every
 * string of the text. */
int dec__begin(struct cur *c, struct dec_parser *p, const char *s, size_t n,
               struct dec_error *err);
/* Appends *f to p->fields, growing it (which may move it) when full. */
int dec__push_field(struct cur *c, const struct dec_field *f);
/* A strict JSON number at the cursor; *out is its exact text. */
int dec__scan_number(struct cur *c, struct dec_str *out);
/* The literal lit (len bytes) at the cursor. */
int dec__scan_literal(struct cur *c, const char *lit, size_t len);
/* A scalar (string, number, true, false, null) at the cursor. */
int dec__scan_scalar(struct cur *c, enum dec_kind *kind, struct dec_str *val);
/* Next member of an object whose '{' is consumed: 1 with *key and *at (its
 * offset) set and the cursor on the value, 0 once '}' is consumed. */
int dec__next_key(struct cur *c, bool first, struct dec_str *key, size_t *at);
/* Next element of an array whose '[' is consumed: 1 with the cursor on the
 * element, 0 once ']' is consumed. */
int dec__next_elem(struct cur *c, bool first);
/* Skips any JSON value at the cursor, validating it; depth is its nesting. */
int dec__skip_value(struct cur *c, int depth);
/* Slow path of scan_string below: unescapes the string opened at
 * s[start - 1], whose first backslash is at s[i], into scratch. */
int dec__unescape_string(struct cur *c, size_t start, size_t i, struct dec_str *out);

/* The string scanner's fast path, inline here because every key and most
 * values of every line go through it and its callers live in several files
 * (behind a call, dec_parse took about 10% more CPU on the test fixtures). */

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
static inline int scan_string(struct cur *c, struct dec_str *out)
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
			return dec__unescape_string(c, start, i, out);
		if (ch < 0x20)
			return dec__fail(c, i, "control character in string");
	}
	return dec__fail(c, n, "unterminated string");
}


#endif
