/* sl_types.c: the Postgres -> SQLite type mapping: the built-in names and
 * oids, and the types it does not know (domains, arrays of domains,
 * enums), told by a resolver the bridge registers and remembered per
 * connection. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sl_int.h"

#define SL_FIRST_USER_OID 16384 /* Postgres's FirstNormalObjectId */

void sl_set_type_resolver(struct sl_db *db, sl_type_resolver fn, void *arg)
{
	db->resolve = fn;
	db->resolve_arg = arg;
}

void sl_types_free(struct sl_db *db)
{
	free(db->types);
	db->types = NULL;
	db->ntypes = 0;
}

/* The oid whose mapping a record's type oid takes: a built-in type as it
 * is, a user-defined one as the resolver says (asked once per oid; the
 * oid itself when it cannot tell). */
uint32_t sl_mapped_oid(struct sl_db *db, uint32_t oid)
{
	struct sl_typemap *m;
	size_t i;

	if (oid < SL_FIRST_USER_OID || !db->resolve)
		return oid;
	for (i = 0; i < db->ntypes; i++)
		if (db->types[i].oid == oid)
			return db->types[i].base;
	uint32_t base = db->resolve(db->resolve_arg, oid);
	if (!base)
		return oid; /* not known now: not remembered either */
	m = realloc(db->types, (db->ntypes + 1) * sizeof *m);
	if (m) {
		db->types = m;
		db->types[db->ntypes++] = (struct sl_typemap){oid, base};
	}
	return base;
}

/* ---- the built-in mapping ---- */

static const char *affinity_by_oid(uint32_t oid)
{
	switch (oid) {
	case 16: /* bool */
	case 20: /* int8 */
	case 21: /* int2 */
	case 23: /* int4 */
	case 26: /* oid */
		return "INTEGER";
	case 700: /* float4 */
	case 701: /* float8 */
		return "REAL";
	case 17: /* bytea */
		return "BLOB";
	default:
		return "TEXT";
	}
}

static const struct {
	const char *name;
	const char *affinity;
} type_names[] = {
	{"smallint", "INTEGER"}, {"integer", "INTEGER"},  {"bigint", "INTEGER"},
	{"int2", "INTEGER"},     {"int4", "INTEGER"},     {"int8", "INTEGER"},
	{"int", "INTEGER"},      {"oid", "INTEGER"},      {"smallserial", "INTEGER"},
	{"serial", "INTEGER"},   {"bigserial", "INTEGER"}, {"serial2", "INTEGER"},
	{"serial4", "INTEGER"},  {"serial8", "INTEGER"},  {"boolean", "INTEGER"},
	{"bool", "INTEGER"},     {"real", "REAL"},        {"double precision", "REAL"},
	{"float4", "REAL"},      {"float8", "REAL"},      {"float", "REAL"},
	{"bytea", "BLOB"},
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The type name without blanks, a "pg_catalog." prefix or a "(typmod)". */
static void base_type(const char **pp, size_t *np)
{
	const char *p = *pp, *paren;
	size_t n = *np;

	while (n && is_space(*p))
		p++, n--;
	if (n > 11 && strncasecmp(p, "pg_catalog.", 11) == 0)
		p += 11, n -= 11;
	paren = memchr(p, '(', n);
	if (paren)
		n = (size_t)(paren - p);
	while (n && is_space(p[n - 1]))
		n--;
	*pp = p;
	*np = n;
}

const char *sl_affinity_n(const char *p, size_t n, uint32_t typeoid)
{
	size_t i;

	if (typeoid)
		return affinity_by_oid(typeoid);
	if (!p || memchr(p, '[', n)) /* arrays: Postgres text form */
		return "TEXT";
	base_type(&p, &n);
	for (i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
		if (strlen(type_names[i].name) == n && strncasecmp(type_names[i].name, p, n) == 0)
			return type_names[i].affinity;
	return "TEXT";
}

const char *sl_affinity(const char *pg_type, uint32_t typeoid)
{
	return sl_affinity_n(pg_type, pg_type ? strlen(pg_type) : 0, typeoid);
}
