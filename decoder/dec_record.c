/* dec_record.c: dec_parse, one wal2json format-version 2 line into a
 * struct dec_record: the record's keys and their types, the "columns" /
 * "identity" / "pk" entries, and the check of which keys each action
 * needs or may carry. */

#include "dec_int.h"

#include <string.h>

#define DEC_MAX_UNKNOWN 16 /* unknown keys per object tracked for duplicates */

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

/* Records an unknown key of an object, rejecting a repeated one. */
static int note_unknown(struct cur *c, struct keyset *set, struct dec_str key,
                        size_t at)
{
	for (size_t k = 0; k < set->n; k++)
		if (set->k[k].len == key.len &&
		    (key.len == 0 || memcmp(set->k[k].p, key.p, key.len) == 0))
			return dec__fail(c, at, "duplicate key");
	if (set->n == DEC_MAX_UNKNOWN)
		return dec__fail(c, at, "too many unknown keys");
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
		return dec__fail(c, at, msg);
	int rc = dec__scan_number(c, &t);
	if (rc)
		return rc;
	uint64_t v = 0;
	for (size_t k = 0; k < t.len; k++) {
		if (!is_digit((unsigned char)t.p[k]))
			return dec__fail(c, at, msg);
		v = v * 10 + (uint64_t)(t.p[k] - '0');
		if (v > UINT32_MAX)
			return dec__fail(c, at, msg);
	}
	*out = (uint32_t)v;
	return 0;
}

static int scan_opt_uint32(struct cur *c, bool *has, uint32_t *out,
                           const char *msg)
{
	if (peek(c) == 'n') {
		*has = false;
		return dec__scan_literal(c, "null", 4);
	}
	*has = true;
	return scan_uint32(c, out, msg);
}

static int scan_string_as(struct cur *c, struct dec_str *out, const char *msg)
{
	if (peek(c) != '"')
		return dec__fail(c, c->i, msg);
	return scan_string(c, out);
}

static int scan_opt_string(struct cur *c, struct dec_str *out, const char *msg)
{
	if (peek(c) == 'n')
		return dec__scan_literal(c, "null", 4);
	return scan_string_as(c, out, msg);
}

static int scan_bool(struct cur *c, bool *out, const char *msg)
{
	int ch = peek(c);
	*out = ch == 't';
	if (ch == 't')
		return dec__scan_literal(c, "true", 4);
	if (ch == 'f')
		return dec__scan_literal(c, "false", 5);
	return dec__fail(c, c->i, msg);
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
		return dec__fail(c, at, "invalid lsn");
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
		return dec__fail(c, at, "unknown action");
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
		return rc ? rc : dec__skip_value(c, 3);
	}
	if (*seen & BIT(k))
		return dec__fail(c, at, "duplicate key");
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
		return dec__scan_scalar(c, &f->kind, &f->value);
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
		return dec__fail(c, c->i, "expected '{' for a column entry");
	memset(f, 0, sizeof *f);
	unknown.n = 0;
	c->i++;
	for (bool first = true;
	     (rc = dec__next_key(c, first, &key, &at)) == 1; first = false)
		if ((rc = field_member(c, key, at, &seen, &unknown, f)) != 0)
			return rc;
	if (rc < 0)
		return rc;
	if (!(seen & BIT(F_NAME)))
		return dec__fail(c, c->i - 1, "missing \"name\"");
	if (with_value && !(seen & BIT(F_VALUE)))
		return dec__fail(c, c->i - 1, "missing \"value\"");
	if (!with_value && (seen & BIT(F_VALUE)))
		return dec__fail(c, c->i - 1, "unexpected \"value\" in a pk entry");
	return 0;
}

/* Parses the "columns" / "identity" / "pk" array at the cursor into
 * p->fields, noting its slice as indices in st. */
static int parse_fields(struct cur *c, int k, struct rstate *st)
{
	int slot = k - K_COLUMNS, rc;
	if (peek(c) != '[')
		return dec__fail(c, c->i, rkeys[k].type_msg);
	c->i++;
	st->first[slot] = c->nfields;
	for (bool first = true; (rc = dec__next_elem(c, first)) == 1; first = false) {
		struct dec_field f;
		if ((rc = parse_field(c, k != K_PK, &f)) != 0)
			return rc;
		if ((rc = dec__push_field(c, &f)) != 0)
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
		return rc ? rc : dec__skip_value(c, 1);
	}
	if (st->seen & BIT(k))
		return dec__fail(c, at, "duplicate key");
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
		return dec__fail(c, c->i, c->i >= c->n ? "empty line" : "expected '{'");
	c->i++;
	for (bool first = true;
	     (rc = dec__next_key(c, first, &key, &at)) == 1; first = false)
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
		return dec__fail(c, st->end, rkeys[K_ACTION].missing);
	allow = action_shape(r->action, &need);
	for (int k = 0; k < K_NKEYS; k++) {
		if ((st->seen & BIT(k)) && !(allow & BIT(k)))
			return dec__fail(c, st->end, rkeys[k].unexpected);
		if ((need & BIT(k)) && !(st->seen & BIT(k)))
			return dec__fail(c, st->end, rkeys[k].missing);
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
		return dec__fail(c, c->i, "trailing garbage after object");
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

int dec_parse(struct dec_parser *p, const char *line, size_t len,
              struct dec_record *out, struct dec_error *err)
{
	struct dec_error dummy;
	struct rstate st;
	struct cur c;
	memset(out, 0, sizeof *out);
	int rc = dec__begin(&c, p, line, len, err ? err : &dummy);
	if (rc)
		return rc;
	st.seen = 0;
	st.unknown.n = 0;
	memset(st.count, 0, sizeof st.count);
	rc = parse_record(&c, out, &st);
	return rc ? rc : finish(&c, out, &st);
}
