/* identity.h: which configured tables the stream can carry: a table whose
 * REPLICA IDENTITY does not hold its primary key (NOTHING, or USING INDEX
 * on an index without every key column) gets deletes and old rows from
 * wal2json without their key, so it is refused, named, and the others are
 * synced. */
#ifndef PGSB_IDENTITY_H
#define PGSB_IDENTITY_H

#include <stddef.h>

#include "br.h"

/* Told once per refused table: what is wrong and the fix, each one line.
 * t is NULL for a table that no [table] section names and the default
 * leaves out (no primary key, or another schema than public). */
typedef void (*ident_refused_fn)(void *arg, const struct br_table *t, const char *what,
                                 const char *fix);

/* Removes from b->tables every table whose replica identity lacks its
 * primary key, calling fn for each.  Returns 0, or -1 with err when the
 * catalogue cannot be read. */
int ident_refuse_tables(struct pgsb *b, PGconn *c, ident_refused_fn fn, void *arg, char *err,
                        size_t cap);

/* pgc_resolve_tables, with refused and left-out tables told to fn instead
 * of the log. */
int pgc_resolve_tables_reporting(struct pgsb *b, PGconn *c, ident_refused_fn fn, void *arg,
                                 char *err, size_t cap);

#endif
