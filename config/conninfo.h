/* conninfo.h: whether libpq can read a `postgres` value, told without
 * echoing anything of the value that may be a password. */
#ifndef PGSB_CONNINFO_H
#define PGSB_CONNINFO_H

#include <stddef.h>

/* 0 when PQconninfoParse accepts s; else -1 with why (libpq's reason,
 * every quoted piece of the value that is not a conninfo keyword shown as
 * "(not shown)") and what is allowed. */
int cfg_conninfo_check(const char *s, char *why, size_t cap);

#endif
