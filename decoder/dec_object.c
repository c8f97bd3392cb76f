/* dec_object.c: dec_parse_object, the flat JSON objects of scalars the
 * change log stores as row images, with the check for repeated keys. */

#include "dec_int.h"

#include <stdlib.h>
#include <string.h>

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
		return dec__fail_oom(c);
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
	return at == SIZE_MAX ? 0 : dec__fail(c, at, "duplicate key");
}

/* Parses the next member of a row image whose '{' is consumed into
 * p->fields: 1 after a member, 0 once '}' is consumed, <0 on error. */
static int object_member(struct cur *c, bool first)
{
	struct dec_field f;
	size_t at;
	memset(&f, 0, sizeof f);
	int rc = dec__next_key(c, first, &f.name, &at);
	if (rc <= 0)
		return rc;
	int ch = peek(c);
	if (ch == '{' || ch == '[')
		return dec__fail(c, c->i, "nested value in a row image");
	if ((rc = dec__scan_scalar(c, &f.kind, &f.value)) != 0)
		return rc;
	f.type.len = at;
	rc = dec__push_field(c, &f);
	return rc ? rc : 1;
}

/* Parses the whole text as one flat object, with only whitespace around. */
static int parse_object(struct cur *c)
{
	int rc;
	skip_ws(c);
	if (peek(c) != '{')
		return dec__fail(c, c->i, c->i >= c->n ? "empty input" : "expected '{'");
	c->i++;
	for (bool first = true; (rc = object_member(c, first)) == 1; first = false)
		;
	if (rc)
		return rc;
	skip_ws(c);
	if (c->i != c->n)
		return dec__fail(c, c->i, "trailing garbage after object");
	return check_unique(c);
}

int dec_parse_object(struct dec_parser *p, const char *text, size_t len,
                     struct dec_field **fields, size_t *nfields, struct dec_error *err)
{
	struct dec_error dummy;
	struct cur c;
	*fields = NULL;
	*nfields = 0;
	int rc = dec__begin(&c, p, text, len, err ? err : &dummy);
	if (rc == 0)
		rc = parse_object(&c);
	if (rc)
		return rc;
	*fields = c.nfields ? p->fields : NULL;
	*nfields = c.nfields;
	return 0;
}
