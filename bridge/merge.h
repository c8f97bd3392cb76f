/* merge.h: the merge point on the pull path (merge.c). */
#ifndef PGSB_MERGE_H
#define PGSB_MERGE_H

#include <stdbool.h>
#include <stddef.h>

#include "br.h"

/* Where a row stands at the merge point. */
enum merge_state {
	MERGE_AGREED,        /* no unpushed local change, nothing of ours newer: apply */
	MERGE_PENDING_LOCAL, /* unpushed local changes: the strategy decides */
	MERGE_MOVE_TARGET,   /* an unpushed local update moved another row onto this key:
	                        left for that push to settle against Postgres */
	MERGE_PUSHED_UNSEEN, /* our push wrote a newer version (or this is it coming back) */
	MERGE_REMOTE_NEWER,  /* push side: its guard missed; conflict_decide settles it */
	MERGE_PUSHING,       /* unpushed local changes in the push's batch in flight: its
	                        statements may already be in Postgres, so that push settles
	                        them against Postgres, not the pull */
};

/* Should this remote change reach SQLite as it is?  *apply false: it was
 * settled here (written whole, or skipped).  0 or -1 with err. */
int merge_remote_change(struct pgsb *b, const struct br_table *t, const struct dec_record *rec,
                        bool *apply, char *err, size_t cap);

/* After a remote change was set aside: the rows it names (its old key,
 * and its new key for an update) are read from Postgres and written, or
 * deleted, locally, unless they have unpushed local changes.  0, -1, or
 * -2 when SQLite refused to write a row (a constraint, a trigger). */
int merge_converge_from_postgres(struct pgsb *b, const struct br_table *t,
                                 const struct dec_record *rec, char *err, size_t cap);

/* The key columns of a remote change (old key for U/D, new row's for I). */
size_t merge_record_key(const struct dec_record *rec, struct dec_field *key, size_t cap);
/* The remote change's new row as JSON (malloc'd; NULL without columns). */
char *merge_record_json(const struct dec_record *rec);

#endif
