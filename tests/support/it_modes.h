/* it_modes.h: the fixture of the mode tests: three tables, one per
 * direction (b: both, pl: pull, ps: push), a write of one row to each on
 * either side, and checks that such a write has or has not moved. */
#ifndef PGSB_IT_MODES_H
#define PGSB_IT_MODES_H

#include "it.h"

/* A fresh env with tables b, pl and ps; the config in the given mode with
 * [bridge] direction = bdir and extra [bridge] keys. */
void modes_setup(struct it_env *e, const char *name, const char *bdir, const char *mode,
                 const char *extra);
/* One Postgres transaction writing row id to b, pl and ps. */
void modes_write_remote(struct it_env *e, int id);
/* One SQLite transaction writing row id to b, pl and ps. */
void modes_write_local(struct it_env *e, int id);
/* Asserts that neither write has moved yet: remote row rid is in no
 * SQLite table, local row lid in no Postgres table. */
void modes_assert_not_moved(struct it_env *e, int rid, int lid, const char *when);
/* Waits for remote row id in SQLite's b and pl, and asserts it never
 * reached ps (the same SQLite transaction would have brought it). */
void modes_assert_remote_moved(struct it_env *e, int id);
/* Waits for local row id in Postgres's b and ps; asserts pl has none. */
void modes_assert_local_moved(struct it_env *e, int id);
/* Rows written locally (id >= 1000) that Postgres holds, in any table. */
int64_t modes_local_rows_in_pg(struct it_env *e);
/* Waits until a session is over (no walsender serves the env's slot) and
 * asserts that its push was over before: the change log is empty. */
void modes_wait_session_over(struct it_env *e);
/* Waits until the background bridge's sync events of direction add up to
 * rows, and asserts they add up to exactly that. */
void modes_wait_sync_rows(struct it_env *e, const char *direction, int rows);

#endif
