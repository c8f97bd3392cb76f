/* push.c: local -> remote.  Reads _pgsqlite_changes in batches (the
 * highest-priority tables first, skipped ones left waiting: push_queue.c),
 * folds each row's changes into one net change (insert, update of the
 * changed columns, delete), and pushes a batch as one Postgres transaction
 * under the bridge's replication origin, its statements pipelined.
 * Updates and deletes are guarded by the old image: a statement that
 * misses is a conflict, settled by conflict.c.  What the batch covers is
 * written down before its commit, so a crash between that commit and the
 * local mark pushes nothing twice (push_reconcile).  This file holds a
 * batch's steps, the commit, the connection and the public API;
 * push_queue.c, push_fold.c, push_columns.c, push_sql.c, push_copy.c,
 * push_send.c and push_mark.c hold the rest (push_int.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "br.h"
#include "log.h"
#include "push_int.h"

#define PUSH_BATCH 20000

/* Remembers the SQLSTATE of a failed statement (the first of a batch). */
void push__note_sqlstate(struct pgsb *b, const PGresult *r)
{
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	if (st && !b->push.sqlstate[0])
		snprintf(b->push.sqlstate, sizeof b->push.sqlstate, "%s", st);
}

/* ---- the commit ---- */

#define ORIGIN_STATUS(column) \
	"SELECT " column "::text FROM pg_replication_origin_status s " \
	"JOIN pg_replication_origin o ON o.roident = s.local_id WHERE o.roname = $1"

/* The LSN a one-row ORIGIN_STATUS result holds (0: none). */
static uint64_t lsn_of(const PGresult *r)
{
	uint64_t lsn = 0;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
		const char *t = PQgetvalue(r, 0, 0);
		if (dec_parse_lsn(t, strlen(t), &lsn))
			lsn = 0;
	}
	return lsn;
}

static uint64_t origin_status(struct pgsb *b, const char *sql)
{
	const char *params[1] = {b->cfg->slot};
	PGresult *r = PQexecParams(b->push.conn, sql, 1, NULL, params, NULL, NULL, 0);
	uint64_t lsn = lsn_of(r);

	PQclear(r);
	return lsn;
}

/* The end LSN of our last commit under the origin: what the stream would
 * call the push's nextlsn. */
uint64_t push__origin_commit_lsn(struct pgsb *b)
{
	return origin_status(b, ORIGIN_STATUS("local_lsn"));
}

uint64_t push__origin_progress(struct pgsb *b)
{
	return origin_status(b, ORIGIN_STATUS("remote_lsn"));
}

static void crash_hook(const char *point)
{
	const char *want = getenv("PGSQLITE_BRIDGE_TEST_CRASH");

	if (want && strcmp(want, point) == 0)
		_exit(99); /* tests: die exactly here, as kill -9 would */
}

static void test_pause(const char *var)
{
	const char *ms = getenv(var);

	if (ms) { /* tests: hold here, so a test can step in */
		long v = strtol(ms, NULL, 10);
		log_debug("test: the push holds for %ld ms (%s)", v, var);
		struct timespec ts = {v / 1000, (v % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
}

static void emit_batch_events(struct pgsb *b, const struct batch *bt, int64_t started)
{
	uint64_t rows = 0;

	for (size_t i = 0; i < bt->ne; i++) {
		const struct entry *e = &bt->e[i];
		rows += e->outcome != OUT_NOTHING && e->outcome != OUT_REFRESH;
		if (push__is_conflict(e))
			ev_emit_conflict(b, e->t->local, e->key, cfg_conflict_name(e->t->conflict),
			                 conflict_resolution_name(e->outcome == OUT_LOCAL ? WIN_LOCAL
			                     : e->outcome == OUT_MERGED ? WIN_MERGED : WIN_REMOTE,
			                     e->t->conflict));
	}
	b->push.rows += rows;
	b->push.conflicts += bt->conflicts;
	metrics_pushed(&b->metrics, rows);
	ev_emit_sync(b, "push", rows, 1, (br_now_us() - started) / 1000, bt->commit_lsn);
}

/* COMMIT, with the push written down first.  A COMMIT of a transaction
 * that failed answers ROLLBACK, not an error: that is a failure too.
 * When the answer is lost with the connection, the record stays and the
 * next connection asks Postgres (push_reconcile). */
static int commit_remote(struct pgsb *b, struct batch *bt, char *err, size_t cap)
{
	if (push__inflight_set(b, bt, err, cap))
		return -1;
	crash_hook("before-push-commit");
	/* COMMIT and the commit's end LSN, in one round trip */
	const char *params[1] = {b->cfg->slot};
	const struct push_stmt s[2] = {{"COMMIT", 0, NULL}, {ORIGIN_STATUS("local_lsn"), 1, params}};
	PGresult *r[2];
	push__pipelined(b->push.conn, s, 2, r);
	bool ok = PQresultStatus(r[0]) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r[0]), "COMMIT") == 0;
	if (!ok) {
		if (PQresultStatus(r[0]) == PGRES_COMMAND_OK)
			snprintf(err, cap, "Postgres rolled the push back");
		else
			push__pipelined_error(b->push.conn, r, 1, err, cap);
		push__note_sqlstate(b, r[0]);
		if (r[0] && PQstatus(b->push.conn) == CONNECTION_OK)
			push__inflight_clear(b); /* an answer: it did not commit */
	} else {
		bt->commit_lsn = lsn_of(r[1]);
		if (!bt->commit_lsn) /* the second answer lost: ask again */
			bt->commit_lsn = push__origin_commit_lsn(b);
	}
	PQclear(r[0]);
	PQclear(r[1]);
	if (!ok)
		return -1;
	crash_hook("after-push-commit");
	return 0;
}

/* In the window the pull's transactions are committed: a change of the
 * batch gone from the log was settled by a remote change the pull applied
 * after our read but before it saw the batch in flight (inflight_seq).
 * Returns 1 when so, 0 when not, -1 on error. */
static int settled_meanwhile(struct pgsb *b, const struct batch *bt, char *err, size_t cap)
{
	struct sl_err e = {0};
	size_t sent = 0; /* a key move cuts the batch at last_seq (push_fold.c) */
	while (sent < bt->nch && bt->ch[sent].seq <= bt->last_seq)
		sent++;
	int64_t n = sl_changes_count_in(b->push.db, b->push.pushed_seq, bt->last_seq, bt->tables, &e);

	if (n < 0) {
		snprintf(err, cap, "cannot check the batch against the change log: %s", e.msg);
		return -1;
	}
	if ((size_t)n == sent)
		return 0;
	log_info("push: a remote change settled %lld local change(s) of this batch while it was sent: "
	         "rolled back, read again", (long long)sent - (long long)n);
	return 1;
}

/* The batch rolled back on a connection that stays: a staging table it
 * created is gone with it.  The origin LSN its BEGIN set up outlives the
 * rollback in Postgres (the session's next commit would record it), so
 * every transaction of this connection sets its own (push_send.c). */
static int roll_back(struct pgsb *b, char *err, size_t cap)
{
	for (size_t i = 0; i < b->ntables; i++)
		b->tables[i].stage_ready = false;
	return pgc_exec_ok(b->push.conn, "ROLLBACK", err, cap);
}

/* The commit and the local mark, inside the commit window (no remote
 * transaction is applied between the two).  Returns 2 when the batch was
 * rolled back because the pull settled part of it (read it again). */
static int commit_and_mark(struct pgsb *b, struct batch *bt, char *err, size_t cap)
{
	if (push_window_enter(b)) {
		snprintf(err, cap, "stopping");
		return -1;
	}
	int settled = settled_meanwhile(b, bt, err, cap);
	if (settled) {
		int rc = settled < 0 || roll_back(b, err, cap) ? -1 : 2;
		push_window_leave(b); /* after the rollback: the rows stay the push's till then */
		return rc;
	}
	int rc = commit_remote(b, bt, err, cap);
	test_pause("PGSQLITE_BRIDGE_TEST_PAUSE_BEFORE_MARK_MS");
	/* Committed: the mark must follow before the stream moves on, or our
	 * own rows could come back unrecognised.  A busy or locked file is
	 * waited for (about 10 s) with the window held, unless the bridge
	 * stops: the in-flight record stays, and the next start settles it
	 * (push_reconcile), as after a kill -9 here. */
	for (int tries = 0; rc == 0 && push__mark_local(b, bt, err, cap) != 0; tries++) {
		if (tries == 20 || b->push.stopping) {
			rc = -1;
			break;
		}
		log_warn("%s; retrying", err);
		struct timespec ts = {0, 500 * 1000000L};
		nanosleep(&ts, NULL);
	}
	push_window_leave(b);
	return rc;
}

/* One batch.  Returns 1 when it pushed something, 0 when the log is
 * empty, -1 on error (nothing marked locally; retried later). */
static int push_batch(struct pgsb *b, char *err, size_t cap)
{
	struct batch bt = {0};
	int64_t started = br_now_us();
	int rc = -1;

	b->push.sqlstate[0] = '\0';
	if (push__queue_read(b, &bt, b->push.batch_limit ? b->push.batch_limit : PUSH_BATCH, err, cap)) {
		push__batch_free(&bt);
		return -1;
	}
	if (bt.nch == 0) {
		push__batch_free(&bt);
		return 0;
	}
	test_pause("PGSQLITE_BRIDGE_TEST_PAUSE_AFTER_READ_MS");
	/* From here until the mark, the pull leaves these changes' rows to
	 * this push: their statements may already be in Postgres.  A row the
	 * pull settled before it could see this is caught in the window
	 * (settled_meanwhile). */
	atomic_store(&b->push.inflight_seq, bt.ch[bt.nch - 1].seq);
	test_pause("PGSQLITE_BRIDGE_TEST_PAUSE_IN_FLIGHT_MS");
	int64_t t[5] = {br_now_us()}; /* read, folded, sent, resolved, committed and marked */
	int done = -1;
	if (push__fold(b, &bt) == 0 && push__refresh_columns(b, &bt, err, cap) == 0 && (t[1] = br_now_us()) &&
	    push__pipeline_batch(b, &bt, err, cap) == 0 && (t[2] = br_now_us()) &&
	    push__resolve_conflicts(b, &bt, err, cap) == 0 && (t[3] = br_now_us()) &&
	    (done = commit_and_mark(b, &bt, err, cap)) == 0) {
		t[4] = br_now_us();
		log_debug("push batch of %zu changes in %lld us: read %lld, fold %lld, send %lld, "
		          "resolve %lld, commit and mark %lld", bt.nch, (long long)(t[4] - started),
		          (long long)(t[0] - started), (long long)(t[1] - t[0]), (long long)(t[2] - t[1]),
		          (long long)(t[3] - t[2]), (long long)(t[4] - t[3]));
		emit_batch_events(b, &bt, started);
		rc = 1;
	} else if (done == 2) {
		rc = 1; /* rolled back: the next batch reads the log again */
	} else if (!err[0]) {
		snprintf(err, cap, "push failed");
	}
	atomic_store(&b->push.inflight_seq, 0);
	if (rc < 0 && bt.nch == 1)
		b->push.failed_seq = bt.ch[0].seq; /* the one a rejection sets aside */
	push__batch_free(&bt);
	return rc;
}

/* ---- the connection ---- */

static int push_connect(struct pgsb *b, char *err, size_t cap)
{
	const char *params[1] = {b->cfg->slot};

	b->push.conn = pgc_connect(b, false, err, cap);
	if (!b->push.conn)
		return -1;
	/* A push is marked in SQLite once Postgres says it committed: that must
	 * mean durable, so never synchronous_commit = off here (it also lets
	 * the other clients' walsenders see the push at once, not after the
	 * WAL writer's next flush). */
	/* lock_timeout and statement_timeout: a row locked for long, or a
	 * server that hangs, fails the push (retried later), never holds it. */
	PGresult *r = PQexecParams(b->push.conn, "SELECT pg_replication_origin_session_setup($1), "
	                           "current_setting('track_commit_timestamp'), "
	                           "CASE WHEN current_setting('synchronous_commit') = 'off' THEN "
	                           "set_config('synchronous_commit', 'local', false) END, "
	                           "set_config('lock_timeout', '10s', false), "
	                           "set_config('statement_timeout', '60s', false)",
	                           1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		pgc_error_text(b->push.conn, err, cap);
		PQclear(r);
		push_close(b);
		return -1;
	}
	b->push.commit_ts = strcmp(PQgetvalue(r, 0, 1), "on") == 0;
	PQclear(r);
	pthread_mutex_lock(&b->push.cancel_mu);
	b->push.cancel = PQgetCancel(b->push.conn);
	pthread_mutex_unlock(&b->push.cancel_mu);
	if (push__load_columns(b, err, cap) || push_reconcile(b, err, cap)) {
		push_close(b);
		return -1;
	}
	return 0;
}

int push_recover_first(struct pgsb *b, char *err, size_t cap)
{
	char v[96];

	if (sl_state_get(b->push.db, "push_inflight", v, sizeof v) != 1 || !v[0] || b->push.conn)
		return 0;
	return push_connect(b, err, cap); /* reconciles; the connection stays for the push */
}

void push_close(struct pgsb *b)
{
	pthread_mutex_lock(&b->push.cancel_mu);
	PQfreeCancel(b->push.cancel);
	b->push.cancel = NULL;
	pthread_mutex_unlock(&b->push.cancel_mu);
	PQfinish(b->push.conn);
	b->push.conn = NULL;
	for (size_t i = 0; i < b->ntables; i++)
		b->tables[i].stage_ready = false; /* temporary tables died with it */
}

void push_free(struct pgsb *b)
{
	sqlite3_finalize(b->push.st_pending);
	sqlite3_finalize(b->push.st_track);
	sqlite3_finalize(b->push.st_track_batch);
	sqlite3_finalize(b->push.st_stale);
	b->push.st_pending = b->push.st_track = b->push.st_track_batch = b->push.st_stale = NULL;
	free(b->push.line);
	b->push.line = NULL;
	b->push.line_cap = 0;
}

/* On the main thread's connection (run.c); the push thread uses its own. */
bool push_has_pending(struct pgsb *b)
{
	return sl_pending_changes(b->db) > 0;
}

static bool pending_here(struct pgsb *b)
{
	return sl_pending_changes(b->push.db) > 0;
}

/* ---- a change Postgres rejects ---- */

/* Data exceptions (22) and integrity violations (23): the change itself is
 * wrong for Postgres, and retrying it as it is will never succeed. */
static bool rejected_by_data(const struct pgsb *b)
{
	return strncmp(b->push.sqlstate, "22", 2) == 0 || strncmp(b->push.sqlstate, "23", 2) == 0;
}

/* 42703 undefined_column: a column of the cached list is gone. */
static bool columns_stale(const struct pgsb *b)
{
	return strcmp(b->push.sqlstate, "42703") == 0;
}

/* A batch failed on a data or integrity error: push its changes one at a
 * time to find the one Postgres rejects, set that one aside, go on. */
static int isolate_rejected(struct pgsb *b, char *err, size_t cap)
{
	int rc = 1;

	b->push.batch_limit = 1;
	for (size_t i = 0; i < PUSH_BATCH && rc == 1; i++) {
		if (!b->push.conn && push_connect(b, err, cap))
			break;
		rc = push_batch(b, err, cap);
	}
	if (rc < 0 && rejected_by_data(b) && push__queue_jumped(b)) {
		push_close(b); /* not rejected yet: pushed again, in seq order */
		rc = push_connect(b, err, cap) == 0 ? 1 : -1;
	} else if (rc < 0 && rejected_by_data(b)) {
		char why[1024];
		snprintf(why, sizeof why, "%s", err);
		push_close(b);
		rc = push_connect(b, err, cap) == 0 && push__reject_first(b, why, err, cap) == 0 ? 1 : -1;
	}
	b->push.batch_limit = 0;
	if (rc < 0)
		push_close(b);
	return rc < 0 ? -1 : 1;
}

int push_pending(struct pgsb *b, size_t max_batches, char *err, size_t cap)
{
	err[0] = '\0';
	if (!pending_here(b))
		return 0;
	if (!b->push.conn && push_connect(b, err, cap))
		return -1;
	for (size_t i = 0; i < max_batches; i++) {
		int rc = push_batch(b, err, cap);
		if (rc < 0 && columns_stale(b)) {
			/* A column gone from Postgres: read the lists again, retry once. */
			log_info("push: %.*s; reading the tables' columns again", (int)strcspn(err, "\n"), err);
			push_close(b);
			push__forget_columns(b);
			rc = push_connect(b, err, cap) ? -1 : push_batch(b, err, cap);
		}
		if (rc < 0) {
			push_close(b); /* the next attempt reconnects and reconciles */
			if (!rejected_by_data(b) || isolate_rejected(b, err, cap) < 0)
				return -1;
			rc = 1;
		}
		if (rc == 0)
			return 0;
	}
	return pending_here(b) ? 1 : 0;
}

/* ---- the pull side's view of what we pushed ---- */

int push_ensure_schema(struct pgsb *b, char *err, size_t cap)
{
	sqlite3 *db = sl_handle(b->db);
	sqlite3_stmt *st;

	if (sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS _pgsqlite_pushed (table_name TEXT NOT NULL, "
	                     "pk TEXT NOT NULL, lsn INTEGER NOT NULL, PRIMARY KEY (table_name, pk)) WITHOUT ROWID",
	                 NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM _pgsqlite_pushed", -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, cap, "cannot create _pgsqlite_pushed: %s", sqlite3_errmsg(db));
		return -1;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		b->push.pushed_rows_tracked = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

/* 1 when our own push of this row committed after the remote transaction
 * (end LSN xact_end), or is that transaction (our own push coming back
 * when the slot does not filter it): SQLite already holds that version or
 * a newer one, so the remote change must not overwrite it. */
int push_remote_is_stale(struct pgsb *b, const char *local_table, const char *key_json,
                         uint64_t xact_end)
{
	sqlite3_stmt **st = &b->push.st_stale; /* per pulled row: prepared once */
	int stale = 0;

	if (b->push.pushed_rows_tracked <= 0)
		return 0;
	if (!*st && sqlite3_prepare_v3(sl_handle(b->db),
	                               "SELECT lsn FROM _pgsqlite_pushed WHERE table_name = ?1 AND pk = ?2",
	                               -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(*st, 1, local_table, -1, SQLITE_STATIC);
	sqlite3_bind_text(*st, 2, key_json, -1, SQLITE_STATIC);
	if (sqlite3_step(*st) == SQLITE_ROW)
		stale = (uint64_t)sqlite3_column_int64(*st, 0) >= xact_end; /* == : our own push */
	sqlite3_reset(*st);
	sqlite3_clear_bindings(*st);
	return stale;
}

/* Forgets pushes the stream has passed (inside the open transaction). */
int push_prune_tracked(struct pgsb *b, uint64_t applied_lsn)
{
	sqlite3_stmt *st;

	if (b->push.pushed_rows_tracked <= 0)
		return 0;
	if (sqlite3_prepare_v2(sl_handle(b->db), "DELETE FROM _pgsqlite_pushed WHERE lsn <= ?1",
	                       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)applied_lsn);
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	if (rc == 0)
		b->push.pushed_rows_tracked -= sqlite3_changes(sl_handle(b->db));
	return rc;
}
