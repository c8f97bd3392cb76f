/* sl_types.c: the Postgres types the built-in mapping does not know
 * (domains, arrays of domains, enums), told by a resolver the bridge
 * registers, and remembered per connection. */
#include <stdlib.h>

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
