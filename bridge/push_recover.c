/* push_recover.c: what makes a push exactly-once.  Before its Postgres
 * COMMIT, a push writes its transaction id, last change-log seq, token and
 * the tables it took from into the SQLite file ("push_inflight" in
 * _pgsqlite_state, durable; push_queue.c says why that set is exact); the
 * local mark clears it.  A record found at start-up means the bridge stopped
 * between the two: Postgres itself says whether that transaction committed
 * (pg_xact_status), so its changes are marked pushed only when they really
 * are.  The record lives in the file, so another file (a fresh one, a
 * restored backup) can never borrow this one's progress. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "push_int.h"

#define INFLIGHT_KEY "push_inflight"

/* "xid last_seq token tables": tables is a JSON array of local names. */
int push__inflight_set(struct pgsb *b, const struct batch *bt, char *err, size_t cap)
{
	char *v = NULL;
	struct sl_err e = {0};

	if (asprintf(&v, "%s %" PRId64 " %" PRIu64 " %s", bt->xid, bt->last_seq, bt->token,
	             bt->tables ? bt->tables : "") < 0) {
		snprintf(err, cap, "out of memory");
		return -1;
	}
	int rc = sl_state_set(b->push.db, INFLIGHT_KEY, v, &e);
	free(v);
	if (rc) {
		snprintf(err, cap, "cannot record the push in SQLite: %s", e.msg);
		return -1;
	}
	return 0;
}

/* The whole record (malloc'd), NULL when there is none. */
static char *inflight_get(struct pgsb *b)
{
	sqlite3_stmt *st;
	char *v = NULL;

	if (sqlite3_prepare_v2(sl_handle(b->push.db), "SELECT value FROM _pgsqlite_state WHERE key = ?1",
	                       -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, INFLIGHT_KEY, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		v = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return v;
}

void push__inflight_clear(struct pgsb *b)
{
	struct sl_err e = {0};

	if (sl_state_set(b->push.db, INFLIGHT_KEY, "", &e))
		log_warn("cannot clear the in-flight push record: %s", e.msg);
}

/* committed, aborted, in progress, or "" when Postgres no longer knows. */
static int xact_status(struct pgsb *b, const char *xid, char *out, size_t outcap, char *err,
                       size_t cap)
{
	const char *params[1] = {xid};
	PGresult *r = PQexecParams(b->push.conn, "SELECT pg_xact_status($1::xid8)", 1, NULL, params,
	                           NULL, NULL, 0);
	int rc = 0;

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		pgc_error_text(b->push.conn, err, cap);
		rc = -1;
	} else {
		snprintf(out, outcap, "%s", PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
	}
	PQclear(r);
	return rc;
}

/* The rows the committed push wrote, read back locked (so the commit LSN
 * that ends this read orders them against the stream exactly), then
 * written into SQLite with the changes marked pushed. */
static int fetch_rows(struct pgsb *b, struct sl_change *ch, size_t n, PGresult **rows)
{
	for (size_t i = 0; i < n; i++) {
		const struct br_table *t = push__table_by_local(b, ch[i].table);
		struct entry probe = {.t = t, .op = 'D', .base = ch[i].pk, .key = ch[i].pk};
		if (t && !(rows[i] = push__fetch_remote(b, &probe)))
			return -1;
	}
	return 0;
}

static int write_rows(struct pgsb *b, struct sl_change *ch, size_t n, int64_t upto,
                      const char *tables, PGresult **rows, uint64_t lsn, struct sl_err *e)
{
	int64_t watermark;

	if (sl_begin(b->push.db, e) || push__queue_trim(b, tables, upto, &watermark, e))
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct br_table *t = push__table_by_local(b, ch[i].table);
		if (!t || !rows[i])
			continue;
		int rc = push__local_pending(b, t, ch[i].pk) ? 0
		         : push__settle_key(b, t, rows[i], 0, ch[i].pk, e);
		/* Tracked always (present or absent, later local changes or not):
		 * an older remote change must not overwrite it, and when the slot
		 * does not filter our origin, the push itself (a delete too) comes
		 * back through the stream and must be recognised as ours. */
		if (rc || push__track(b, t->local, ch[i].pk, lsn))
			return -1;
	}
	if (sl_state_set(b->push.db, INFLIGHT_KEY, "", e) || sl_commit(b->push.db, e))
		return -1;
	b->push.pushed_seq = watermark;
	return 0;
}

/* Marks the committed push's changes: those of `tables` (NULL: every
 * table) with seq <= upto. */
static int mark_committed(struct pgsb *b, int64_t upto, const char *tables, char *err, size_t cap)
{
	struct sl_change *ch = NULL;
	size_t n = 0;
	struct sl_err e = {0};
	PGresult **rows = NULL;
	int rc = -1;

	if (sl_changes_read_in(b->push.db, b->push.pushed_seq, upto, tables, 1000000, &ch, &n, &e) ||
	    !(rows = calloc(n ? n : 1, sizeof *rows))) {
		snprintf(err, cap, "cannot read the change log: %s", e.msg);
		goto out;
	}
	if (push_window_enter(b)) {
		snprintf(err, cap, "stopping");
		goto out;
	}
	if (pgc_exec_ok(b->push.conn, "BEGIN", err, cap) == 0 && fetch_rows(b, ch, n, rows) == 0 &&
	    pgc_exec_ok(b->push.conn, "COMMIT", err, cap) == 0) {
		if (write_rows(b, ch, n, upto, tables, rows, push__origin_commit_lsn(b), &e) == 0)
			rc = 0;
		else
			snprintf(err, cap, "cannot mark pushed changes in SQLite: %s", e.msg);
	} else if (!err[0]) {
		pgc_error_text(b->push.conn, err, cap);
	}
	if (rc)
		sl_rollback(b->push.db);
	push_window_leave(b);
	if (rc == 0)
		log_warn("%zu local changes were pushed before the bridge stopped but not marked: "
		         "Postgres confirms the commit; marked now, nothing pushed twice", n);
out:
	for (size_t i = 0; rows && i < n; i++)
		PQclear(rows[i]);
	free(rows);
	sl_changes_free(ch, n);
	return rc;
}

/* Settles the in-flight record: marked when Postgres committed it, else
 * forgotten (its changes are pushed again). */
static int settle(struct pgsb *b, const char *xid, int64_t upto, uint64_t token,
                  const char *tables, char *err, size_t cap)
{
	char status[32];

	if (xact_status(b, xid, status, sizeof status, err, cap))
		return -1;
	if (strcmp(status, "committed") == 0 && token && push__origin_progress(b) < token) {
		log_warn("push transaction %s counts as committed in Postgres, but our origin never "
		         "reached its token: the id was handed out again after a crash; pushed again", xid);
		strcpy(status, "aborted");
	}
	if (strcmp(status, "committed") == 0)
		return mark_committed(b, upto, tables, err, cap);
	if (strcmp(status, "in progress") == 0) {
		snprintf(err, cap, "the previous push (transaction %s) is still in progress in Postgres; "
		         "waiting for it to end", xid);
		return -1;
	}
	if (!status[0])
		log_warn("Postgres no longer knows whether push transaction %s committed; its changes "
		         "are pushed again (guarded: a row already there is a conflict, not a duplicate)", xid);
	push__inflight_clear(b);
	return 0;
}

int push_reconcile(struct pgsb *b, char *err, size_t cap)
{
	char text[96], xid[64] = "";
	int64_t upto = 0;
	uint64_t token = 0;
	int end = 0;

	b->push.pushed_seq = sl_state_get(b->push.db, "pushed_seq", text, sizeof text) == 1
	                     ? strtoll(text, NULL, 10) : 0;
	char *rec = inflight_get(b);
	if (!rec || sscanf(rec, "%63s %" SCNd64 " %" SCNu64 "%n", xid, &upto, &token, &end) < 2) {
		free(rec);
		return 0; /* no push was between its commit and its mark */
	}
	/* The tables it took from; none named (a record of an older version):
	 * every table, as that version pushed in seq order. */
	const char *tables = end > 0 ? rec + end + strspn(rec + end, " ") : "";
	int rc = settle(b, xid, upto, token, tables[0] ? tables : NULL, err, cap);
	free(rec);
	return rc;
}
