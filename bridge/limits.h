/* limits.h: the local limits: max_records per table (pruning, local only)
 * and storage_limit on the SQLite file's pages in use, with its actions
 * warn, error (the pull stands still, the push goes on) and prune.  All
 * of it runs on the main thread, on the pull's SQLite connection. */
#ifndef PGSB_LIMITS_H
#define PGSB_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pgsb;
struct br_table;
struct sl_column;

struct br_limits {
	bool over;              /* over storage_limit at the last check */
	bool hold_pull;         /* action error and over: no pulling until under */
	int64_t last_event_us;  /* last error event about the limit */
	int64_t last_check_us;  /* while held: last measurement */
};

/* Inside the pull's open SQLite transaction, before its commit (after an
 * applied batch, online snapshot chunks included, after the initial
 * copy): the tables with max_records keep their newest rows, and with
 * storage_limit_action = prune the tables with an order_column lose their
 * oldest rows until the file is under the limit. */
int limits_prune_in_batch(struct pgsb *b, char *err, size_t cap);

/* After a committed batch: measures the file against storage_limit;
 * warns, or holds the pull (action error). */
void limits_after_commit(struct pgsb *b);

/* Before the pull (re)connects or a session starts: true while the pull
 * must stand still (action error, over the limit).  Measures at most once
 * a second while held, resumes by itself once under, and keeps asking the
 * push to drain.  Warns and prunes (in a transaction of its own) for the
 * other actions. */
bool limits_hold_pull(struct pgsb *b);

/* Checks a table's order_column against its Postgres columns and notes
 * how to order by it.  Returns 0, or 1 with what naming the config
 * file, line and key when the table lacks it. */
int limits_check_table(struct pgsb *b, struct br_table *t, const struct sl_column *cols,
                       size_t n, char *what, size_t cap);

#endif
