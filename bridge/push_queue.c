/* push_queue.c: which local changes the next push batch takes.  Tables
 * go by priority (critical, high, medium, low) and a skipped table's
 * changes wait, so changes no longer leave the change log in seq order.
 *
 * Why this stays exactly-once and in order:
 *  - A batch is described by a set S of table names and its last seq hi:
 *    it holds every change in the log of a table of S with seq <= hi, and
 *    nothing else.  The read makes that true: one scan in seq order over
 *    the tables of S, from the lowest pending seq, stopping after the
 *    batch size (or before a key move), so no change of S below hi is
 *    left out.  Seqs only grow (AUTOINCREMENT), so no change of S with
 *    seq <= hi can be written later; only a push's mark (or a rejected
 *    change set aside) removes changes.  The set is therefore the same
 *    when the batch is read, marked, or settled after a crash.
 *  - The in-flight record written before COMMIT holds S beside the xid,
 *    hi and token ("xid hi token S", S as a JSON array; push_recover.c).
 *    The mark, and the reconcile after a kill -9 between commit and mark,
 *    delete exactly "table in S and seq <= hi", in the SQLite transaction
 *    that writes the rows back; a record without S (written before
 *    priorities existed) means every table, as it always did.  Changes of
 *    other tables below hi stay pending, whatever their seq.
 *  - A held table (skip, or an online snapshot of it under way) is in no
 *    S: its changes wait, and go through the normal guarded statements
 *    (conflicts settled by its strategy) once it is released.
 *  - A table's changes always leave as a prefix of its own queue (S takes
 *    all of a table's changes up to hi), so a later change of a row never
 *    goes before an earlier one; within a batch the fold nets them.
 *  - pushed_seq stays a low watermark, "every seq up to here is done",
 *    (the lowest pending seq minus one); done changes above it are simply
 *    gone from the log.
 *  - A change that jumped the queue can need one it jumped (a foreign key
 *    to a row of a lower-priority table).  When Postgres rejects such a
 *    change on its own, it is not set aside: the queue goes in seq order
 *    until everything up to it is pushed (ordered_upto), and only a change
 *    that still fails then is rejected.
 * Tables not synced by the push (unknown to the config, or pull-only)
 * ride along with the batch and are dropped unpushed, as before. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "log.h"
#include "push_int.h"

#define NAME_MAX_LEN 1024
#define CLASS_NONE 4 /* below low: no pending change to push */

static const char *const class_names[] = {"critical", "high", "medium", "low"};

/* Are the table's local changes to wait?  skip, or an online snapshot of
 * it not yet done (push_held, set by the main thread). */
static bool held(const struct br_table *t)
{
	return t->skip || atomic_load(&t->push_held);
}

/* Where a pending table goes: its priority class, CLASS_NONE for a
 * held table, -1 for one the push drops. */
static int class_of(struct pgsb *b, const char *local)
{
	const struct br_table *t = push__table_by_local(b, local);

	if (!t || t->direction == CFG_DIRECTION_PULL)
		return -1;
	return held(t) ? CLASS_NONE : (int)t->priority;
}

/* The distinct table names in the log: one index seek each. */
static int pending_tables(struct pgsb *b, cJSON *names, char *err, size_t cap)
{
	char name[NAME_MAX_LEN] = "";
	struct sl_err e = {0};
	int rc;

	while ((rc = sl_changes_next_table(b->push.db, name, name, sizeof name, &e)) == 1)
		if (!cJSON_AddItemToArray(names, cJSON_CreateString(name)))
			return -1;
	if (rc < 0)
		snprintf(err, cap, "%s", e.msg);
	return rc;
}

/* A JSON array of the names in `names` whose class is `want` (every
 * class but skipped when want < 0, none when CLASS_NONE), with the
 * dropped ones; malloc'd. */
static char *names_of(struct pgsb *b, cJSON *names, int want)
{
	cJSON *set = cJSON_CreateArray(), *n;
	char *json = NULL;

	cJSON_ArrayForEach(n, names)
	{
		int c = class_of(b, n->valuestring);
		bool in = c < 0 || (want < 0 ? c != CLASS_NONE : want < CLASS_NONE && c == want);
		if (in &&
		    !cJSON_AddItemToArray(set, cJSON_CreateString(n->valuestring)))
			goto out;
	}
	json = cJSON_PrintUnformatted(set);
out:
	cJSON_Delete(set);
	return json;
}

/* Every table the push syncs now (not held), as a JSON array. */
static char *unskipped_tables(struct pgsb *b)
{
	cJSON *set = cJSON_CreateArray();
	char *json = NULL;

	for (size_t i = 0; i < b->ntables; i++)
		if (class_of(b, b->tables[i].local) >= 0 && !held(&b->tables[i]) &&
		    !cJSON_AddItemToArray(set, cJSON_CreateString(b->tables[i].local)))
			goto out;
	json = cJSON_PrintUnformatted(set);
out:
	cJSON_Delete(set);
	return json;
}

/* Still in seq order?  Until nothing synced is pending up to ordered_upto. */
static bool still_ordered(struct pgsb *b)
{
	struct sl_err e = {0};

	if (b->push.ordered_upto <= 0)
		return false;
	char *all = unskipped_tables(b);
	int rc = all ? sl_changes_exist_before(b->push.db, b->push.ordered_upto + 1, all, &e) : -1;
	free(all);
	if (rc == 0) {
		log_info("push: every change up to %lld is pushed; back to priority order",
		         (long long)b->push.ordered_upto);
		b->push.ordered_upto = 0;
	}
	return rc != 0;
}

/* Chooses S (bt->tables): the pending tables of the highest class, and
 * the dropped ones; all synced tables in seq order while ordered. */
static int choose(struct pgsb *b, struct batch *bt, char *err, size_t cap)
{
	cJSON *names = cJSON_CreateArray(), *n;
	int best = CLASS_NONE, rc;

	if (!names || (rc = pending_tables(b, names, err, cap)) < 0) {
		cJSON_Delete(names);
		if (!err[0])
			snprintf(err, cap, "out of memory");
		return -1;
	}
	cJSON_ArrayForEach(n, names)
	{
		int c = class_of(b, n->valuestring);
		if (c >= 0 && c < best)
			best = c;
	}
	bool any = cJSON_GetArraySize(names) > 0;
	bool dropped_only = best == CLASS_NONE;
	if (any && !dropped_only && still_ordered(b))
		best = -1;
	bt->tables = any ? names_of(b, names, best) : NULL;
	cJSON_Delete(names);
	if (any && !bt->tables) {
		snprintf(err, cap, "out of memory");
		return -1;
	}
	if (bt->tables && strcmp(bt->tables, "[]") != 0)
		log_debug("push: next batch from %s (%s)", bt->tables,
		          best < 0 ? "seq order" : best < CLASS_NONE ? class_names[best] : "unsynced");
	return 0;
}

int push__queue_read(struct pgsb *b, struct batch *bt, size_t max, char *err, size_t cap)
{
	struct sl_err e = {0};

	err[0] = '\0';
	if (choose(b, bt, err, cap))
		return -1;
	if (!bt->tables || strcmp(bt->tables, "[]") == 0)
		return 0; /* nothing, or only skipped tables' changes */
	if (sl_changes_read_in(b->push.db, b->push.pushed_seq, INT64_MAX, bt->tables, max, &bt->ch,
	                       &bt->nch, &e)) {
		snprintf(err, cap, "cannot read the change log: %s", e.msg);
		return -1;
	}
	return 0;
}

int push__queue_trim(struct pgsb *b, const char *tables, int64_t upto, int64_t *watermark,
                     struct sl_err *e)
{
	char text[32];

	if (sl_changes_delete_in(b->push.db, INT64_MIN, upto, tables, e))
		return -1;
	int64_t low = sl_changes_min_seq(b->push.db, e);
	if (low < 0)
		return -1;
	/* Empty log: everything up to the larger of the two is done. */
	*watermark = low > 0 ? low - 1 : (upto > b->push.pushed_seq ? upto : b->push.pushed_seq);
	snprintf(text, sizeof text, "%lld", (long long)*watermark);
	return sl_state_set(b->push.db, "pushed_seq", text, e);
}

bool push__queue_jumped(struct pgsb *b)
{
	struct sl_err e = {0};
	int64_t seq = b->push.failed_seq;

	if (seq <= 0)
		return false;
	char *all = unskipped_tables(b);
	int rc = all ? sl_changes_exist_before(b->push.db, seq, all, &e) : -1;
	free(all);
	if (rc != 1)
		return false;
	log_info("push: Postgres refuses local change %lld, which went before earlier changes of "
	         "lower-priority tables; pushing in commit order up to it", (long long)seq);
	b->push.ordered_upto = seq;
	return true;
}
