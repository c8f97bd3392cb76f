/* records.h: building wal2json-shaped fields by hand for the sqlite-side
 * unit tests. */
#ifndef PGSB_UNIT_RECORDS_H
#define PGSB_UNIT_RECORDS_H

#include <stdint.h>
#include <string.h>

#include "../../decoder/dec.h"

static inline struct dec_str S(const char *s)
{
	return (struct dec_str){s, s ? strlen(s) : 0};
}

static inline struct dec_field field(const char *name, const char *type, uint32_t oid,
                                     enum dec_kind kind, const char *value)
{
	return (struct dec_field){
		.name = S(name), .type = S(type), .typeoid = oid, .kind = kind, .value = S(value)};
}

static inline struct dec_field fint(const char *name, const char *v)
{
	return field(name, "integer", 23, DEC_NUMBER, v);
}

static inline struct dec_field ftext(const char *name, const char *v)
{
	return field(name, "text", 25, DEC_STRING, v);
}

#endif
