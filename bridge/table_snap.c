/* table_snap.c: the online snapshot of one table, copied from Postgres
 * while the stream goes on for every table, consistent with it.
 *
 * The copy reads the table inside a REPEATABLE READ transaction whose
 * snapshot (pg_current_snapshot(): xmin, xmax, in-progress xids) is
 * noted.  From then on a streamed change to the table belongs to a
 * transaction the copy saw (xid below xmin, or below xmax and not in
 * progress) and is dropped, or it is one the copy did not see and is
 * queued (table_snapq.c) until the copy is done, then replayed in order
 * through the merge point (table_xids.c).  The copy goes into a shadow table
 * (table_shadow.c): readers of the live table see its old rows until the
 * copy is whole, then the shadow is swapped in by renaming (O(1)), and the
 * queue is replayed on the table swapped in, exactly as it would have been
 * on a table copied in place.  Dropping stops once the stream has passed the
 * WAL position read with the snapshot: every transaction the copy saw
 * commits below it.  The copy goes in chunks through a cursor, each chunk
 * written and committed in the pull's SQLite transaction between two
 * streamed transactions (never inside one, never while the push holds its
 * commit window), so memory stays flat and the other tables keep flowing.
 * Local changes still waiting in the change log (the application's
 * writes to the live table during the copy among them) are re-applied to
 * the shadow once the copy is done, a bounded batch per step, and the
 * last of them in the swap's own transaction, so none is missed; until
 * then the push leaves them waiting.
 * One table at a time, in priority order; a failure starts that table
 * again from a fresh snapshot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br.h"
#include "log.h"
#include "table_snap.h"

#define CHUNK_ROWS 1000
#define REPLAY_ROWS 200
#define REAPPLY_ROWS 500 /* pending local changes re-applied to the shadow per step */
#define STEP_US 20000   /* rows written per step: this long at most */
#define YIELD_S 0.01    /* between chunks: the application gets the file's lock too */
#define WAIT_S 0.05     /* between steps that wait for the stream */
#define RETRY_S 2.0     /* after a failure */

struct tsnap {
	ev_timer timer;
	struct pgsb *b;
	struct br_table *t;      /* the table in hand, or NULL */
	PGconn *conn;            /* the copy's REPEATABLE READ transaction */
	struct tsnap_xids x;     /* its snapshot */
	PGresult *chunk;         /* rows fetched, not all written yet */
	int chunk_row;
	struct sl_column *cols;
	size_t ncols;
	struct dec_field *fields, *pk;
	size_t npk;
	int64_t done, total;
	int64_t replayed;        /* queued changes replayed after the copy */
	int64_t reapplied_seq;   /* pending local changes up to this seq are in the shadow */
	char shadow[600];        /* the shadow table's name */
	struct dec_parser qdec;  /* for queued changes */
	sqlite3_stmt *q_append;  /* cached: a change into the queue */
	bool running;            /* the timer may run (until tsnap_stop) */
	bool push_stopped;       /* the push thread is stopped while the snapshot is taken */
};

static void schedule(struct tsnap *s, double after)
{
	if (!s->running)
		return;
	ev_timer_stop(s->b->loop, &s->timer);
	ev_timer_set(&s->timer, after, 0.);
	ev_timer_start(s->b->loop, &s->timer);
}

static void release_copy(struct tsnap *s)
{
	PQclear(s->chunk);
	s->chunk = NULL;
	if (s->conn) {
		PQfinish(s->conn); /* the read-only transaction ends with it */
		s->conn = NULL;
	}
	pgc_free_columns(s->cols, s->ncols);
	free(s->fields);
	free(s->pk);
	s->cols = NULL;
	s->fields = s->pk = NULL;
	s->ncols = s->npk = 0;
}

/* The copy and its snapshot: the snapshot's in-progress list decides
 * streamed changes until the table is in sync again. */
static void release_all(struct tsnap *s)
{
	release_copy(s);
	xids_free(&s->x);
}

/* A push of the table committed after the snapshot would be missing from
 * the copy, and the stream does not bring our own pushes back: the push
 * leaves the table's changes waiting while push_held is set (push_queue.c),
 * and the push thread is stopped while the snapshot is taken, so a round
 * that read the table's changes before it was held commits first (and is
 * in the snapshot).  Other tables push on during the copy. */
static void hold_push(struct pgsb *b, struct tsnap *s, bool hold)
{
	char err[512];

	if (hold && b->push.worker) {
		/* the pull's batch first: the push may wait for the file's lock */
		if (pull_commit_batch(b, err, sizeof err))
			log_warn("%s", err);
		push_worker_stop(b);
		s->push_stopped = true;
	} else if (!hold && s->push_stopped) {
		s->push_stopped = false;
		if (push_worker_start(b, err, sizeof err)) {
			log_error("%s", err);
			b->exit_code = 1;
			ev_break(b->loop, EVBREAK_ALL);
			return;
		}
		run_local_commit_seen(b);
	}
}

/* ---- the copy ---- */

static int setup_fields(struct tsnap *s)
{
	s->fields = calloc(s->ncols ? s->ncols : 1, sizeof *s->fields);
	s->pk = calloc(s->ncols ? s->ncols : 1, sizeof *s->pk);
	if (!s->fields || !s->pk)
		return -1;
	for (size_t i = 0; i < s->ncols; i++) {
		struct dec_field *f = &s->fields[i];
		f->name = (struct dec_str){s->cols[i].name, strlen(s->cols[i].name)};
		f->type = (struct dec_str){s->cols[i].pg_type, strlen(s->cols[i].pg_type)};
		f->typeoid = s->cols[i].typeoid;
	}
	for (int pos = 1; pos <= (int)s->ncols; pos++)
		for (size_t i = 0; i < s->ncols; i++)
			if (s->cols[i].pk_pos == pos)
				s->pk[s->npk++] = s->fields[i];
	return 0;
}

static int declare_cursor(struct tsnap *s, char *err, size_t cap)
{
	char *sql = NULL, q[600];
	size_t len = 0;
	FILE *m = open_memstream(&sql, &len);

	if (!m)
		return -1;
	fputs("DECLARE pgsqlite_snap NO SCROLL CURSOR FOR SELECT ", m);
	for (size_t i = 0; i < s->ncols; i++) {
		pgc_quote_ident(s->cols[i].name, q, sizeof q);
		fprintf(m, "%s%s", i ? ", " : "", q);
	}
	fprintf(m, " FROM %s", s->t->qualified);
	fclose(m);
	int rc = sql ? pgc_exec_ok(s->conn, sql, err, cap) : -1;
	free(sql);
	return rc;
}

static int64_t estimate_rows(struct tsnap *s)
{
	const char *params[1] = {s->t->qualified};
	PGresult *r = PQexecParams(s->conn, "SELECT GREATEST(reltuples, 0)::bigint FROM pg_class "
	                           "WHERE oid = $1::regclass", 1, NULL, params, NULL, NULL, 0);
	int64_t n = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;

	PQclear(r);
	return n;
}

/* The local side of a fresh start: live table made to fit (its rows
 * stay), an empty shadow beside it, its old queue dropped, the state
 * "snapshot" (all in the pull's transaction). */
static int local_start(struct pgsb *b, struct tsnap *s, char *err, size_t cap)
{
	struct sl_err e;

	if (pull_ensure_batch(b, err, cap))
		return -1;
	if (sl_ensure_table(b->db, s->t->schema, s->t->name, s->cols, s->ncols, &e)) {
		snprintf(err, cap, "cannot prepare \"%s\": %s", s->t->local, e.msg);
		return -1;
	}
	shadow_name(s->t, s->shadow, sizeof s->shadow);
	if (shadow_create(b, s->t, err, cap))
		return -1;
	return snapq_clear(b, s->t, err, cap) || tstate_set(b, s->t, "snapshot", err, cap) ? -1 : 0;
}

static int begin_copy(struct pgsb *b, struct tsnap *s, char *err, size_t cap)
{
	atomic_store(&s->t->push_held, true);
	hold_push(b, s, true);
	s->conn = pgc_connect(b, false, err, cap);
	int rc = !s->conn || xids_take(s->conn, &s->x, err, cap) ? -1 : 0;
	hold_push(b, s, false);
	if (rc || pgc_table_columns(s->conn, s->t, &s->cols, &s->ncols, err, cap))
		return -1;
	if (setup_fields(s) || declare_cursor(s, err, cap)) {
		if (!err[0])
			snprintf(err, cap, "out of memory");
		return -1;
	}
	s->done = s->replayed = s->reapplied_seq = 0;
	s->total = estimate_rows(s);
	if (local_start(b, s, err, cap))
		return -1;
	s->t->snap_phase = TSNAP_COPY;
	log_info("online snapshot of \"%s.%s\" started (%zu transactions in progress)",
	         s->t->schema, s->t->name, s->x.nxip);
	return 0;
}

static int copy_row(struct pgsb *b, struct tsnap *s, PGresult *r, int row, char *err, size_t cap)
{
	struct dec_record rec = {.action = DEC_INSERT};
	struct sl_err e;

	for (size_t i = 0; i < s->ncols; i++) {
		struct dec_field *f = &s->fields[i];
		if (PQgetisnull(r, row, (int)i)) {
			f->kind = DEC_NULL;
			f->value = (struct dec_str){NULL, 0};
		} else {
			pgc_text_field(f, s->cols[i].typeoid, PQgetvalue(r, row, (int)i),
			               (size_t)PQgetlength(r, row, (int)i));
		}
	}
	rec.schema = (struct dec_str){s->t->schema, strlen(s->t->schema)};
	rec.table = (struct dec_str){s->t->name, strlen(s->t->name)};
	rec.columns = s->fields;
	rec.ncolumns = s->ncols;
	rec.pk = s->pk;
	rec.npk = s->npk;
	if (sl_apply_to(b->db, &rec, s->shadow, &e)) {
		snprintf(err, cap, "cannot copy a row into \"%.300s\": %s", s->shadow, e.msg);
		return -1;
	}
	return 0;
}

static void progress(struct pgsb *b, struct tsnap *s, bool last)
{
	char phase[600];

	snprintf(phase, sizeof phase, "snapshot %s.%s", s->t->schema, s->t->name);
	ev_emit_progress(b, phase, s->done, last || s->total < s->done ? s->done : s->total);
}

/* Every row is in the shadow: local work goes on top next. */
static int end_copy(struct pgsb *b, struct tsnap *s)
{
	progress(b, s, true);
	log_info("copied %lld rows of \"%s.%s\" online", (long long)s->done, s->t->schema, s->t->name);
	release_copy(s);
	s->t->snap_phase = TSNAP_REAPPLY;
	return 0;
}

/* A batch of pending local changes into the shadow; at the log's end the
 * shadow is swapped in, in the same transaction (no local write comes
 * between), the push may send them, and the queue is replayed next. */
static int reapply_or_swap(struct pgsb *b, struct tsnap *s, char *err, size_t cap)
{
	int n = pull_ensure_batch(b, err, cap) ? -1 :
	        reapply_step(b, s->t, s->shadow, &s->reapplied_seq, REAPPLY_ROWS, err, cap);

	if (n < 0)
		return -1;
	if (n == REAPPLY_ROWS)
		return 0;
	int64_t t0 = br_now_us();
	if (shadow_swap(b, s->t, err, cap))
		return -1;
	log_info("the copy of \"%s.%s\" is swapped in (%lld us)", s->t->schema, s->t->name,
	         (long long)(br_now_us() - t0));
	s->t->snap_phase = TSNAP_DRAIN;
	atomic_store(&s->t->push_held, s->t->skip);
	hold_push(b, s, false);
	run_local_commit_seen(b); /* its waiting local changes may go now */
	return 0;
}

/* Rows of the fetched chunk for at most STEP_US, so the file's lock is
 * held briefly whatever a row costs.  1: more to do, 0: done, -1: failed. */
static int copy_chunk(struct pgsb *b, struct tsnap *s, char *err, size_t cap)
{
	char sql[64];
	int64_t until = br_now_us() + STEP_US;

	if (!s->chunk) {
		snprintf(sql, sizeof sql, "FETCH %d FROM pgsqlite_snap", CHUNK_ROWS);
		s->chunk = PQexec(s->conn, sql);
		s->chunk_row = 0;
		if (PQresultStatus(s->chunk) != PGRES_TUPLES_OK) {
			pgc_error_text(s->conn, err, cap);
			return -1;
		}
	}
	int n = PQntuples(s->chunk), rc = pull_ensure_batch(b, err, cap);
	for (; s->chunk_row < n && rc == 0 && br_now_us() < until; s->chunk_row++, s->done++)
		rc = copy_row(b, s, s->chunk, s->chunk_row, err, cap);
	if (rc)
		return -1;
	if (s->chunk_row < n)
		return 1;
	PQclear(s->chunk);
	s->chunk = NULL;
	if (n == CHUNK_ROWS) {
		progress(b, s, false);
		return 1;
	}
	return end_copy(b, s);
}

/* ---- the machine ---- */

static struct br_table *next_pending(struct pgsb *b)
{
	struct br_table *best = NULL;
	int best_prio = 0;

	for (size_t i = 0; i < b->ntables; i++) {
		struct br_table *t = &b->tables[i];
		if (t->snap_phase != TSNAP_PENDING)
			continue;
		int prio = CFG_PRIORITY_MEDIUM;
		for (size_t k = 0; k < b->cfg->ntables; k++)
			if (strcmp(b->cfg->tables[k].schema, t->schema) == 0 &&
			    strcmp(b->cfg->tables[k].name, t->name) == 0)
				prio = (int)b->cfg->tables[k].priority;
		if (!best || prio < best_prio)
			best = t, best_prio = prio;
	}
	return best;
}

static int finish(struct pgsb *b, struct tsnap *s, char *err, size_t cap)
{
	if (pull_ensure_batch(b, err, cap) || tstate_set(b, s->t, "copied", err, cap))
		return -1;
	s->t->snap_phase = TSNAP_NONE;
	log_info("table \"%s.%s\" is in sync again", s->t->schema, s->t->name);
	release_all(s);
	s->t = NULL;
	return 0;
}

/* One step of the table in hand.  Returns the delay before the next, or
 * a negative number on failure. */
static double step(struct pgsb *b, struct tsnap *s, char *err, size_t cap)
{
	int rc;
	uint64_t pos = b->repl.committed_lsn > b->repl.ack_lsn ? b->repl.committed_lsn : b->repl.ack_lsn;

	if (!s->t) {
		/* a swapped-out table, or a shadow a copy left, goes first */
		if ((rc = shadow_clean_step(b, err, cap)) < 0)
			return -1;
		if (rc > 0)
			return YIELD_S;
		s->t = next_pending(b);
		if (!s->t)
			return -2; /* nothing to do: idle */
		return begin_copy(b, s, err, cap) ? -1 : 0;
	}
	switch (s->t->snap_phase) {
	case TSNAP_COPY:
		return copy_chunk(b, s, err, cap) < 0 ? -1 : YIELD_S;
	case TSNAP_REAPPLY:
		return reapply_or_swap(b, s, err, cap) < 0 ? -1 : YIELD_S;
	case TSNAP_DRAIN:
		if (pull_ensure_batch(b, err, cap) || (rc = snapq_replay(b, s->t, &s->qdec, REPLAY_ROWS,
		                                                         err, cap)) < 0)
			return -1;
		s->replayed += rc;
		if (rc == 0) {
			s->t->snap_phase = TSNAP_FILTER;
			log_info("replayed %lld changes to \"%s.%s\" streamed during its copy",
			         (long long)s->replayed, s->t->schema, s->t->name);
		}
		return YIELD_S;
	case TSNAP_FILTER:
		if (pos < s->x.wal_lsn) {
			/* transactions the copy saw may still stream; a keepalive
			 * asked for carries the position past them when none do */
			if (b->repl.state == REPL_STREAMING && br_now_us() - b->repl.last_reply_req_us > 200000)
				repl_send_feedback(b, true);
			return WAIT_S;
		}
		return finish(b, s, err, cap) ? -1 : 0;
	default:
		s->t = NULL;
		return 0;
	}
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct tsnap *s = w->data;
	struct pgsb *b = s->b;
	char err[1024] = "";

	(void)loop;
	(void)revents;
	if (b->repl.paused) {
		schedule(s, WAIT_S); /* outside the push's commit window */
		return;
	}
	if (b->repl.in_xact) {
		b->boundary_wanted = true; /* the stream stops at the transaction's end */
		schedule(s, 0.001);
		return;
	}
	b->boundary_wanted = false;
	/* What the stream applied is committed first: the file's lock is held
	 * only for the step's own writes, never across a round trip. */
	double next = pull_commit_batch(b, err, sizeof err) ? -1 : step(b, s, err, sizeof err);
	if (b->repl.state == REPL_STREAMING && !b->repl.paused)
		ev_idle_start(b->loop, &b->repl.more); /* messages libpq may hold already */
	if (next >= 0 && pull_commit_batch(b, err, sizeof err) == 0) {
		schedule(s, next);
		return;
	}
	if (next == -2) { /* idle: no write transaction stays open */
		if (pull_commit_batch(b, err, sizeof err) == 0)
			return;
		next = -1;
	}
	char msg[1400];
	snprintf(msg, sizeof msg, "online snapshot of \"%.256s\" failed, to be started again: %.1023s",
	         s->t ? s->t->local : "?", err);
	tsnap_abort(b);
	if (b->one_shot) { /* `sync` fails rather than retrying */
		pull_abort_batch(b);
		log_error("%s", msg);
		ev_emit_error(b, msg, false);
		b->exit_code = 1;
		ev_break(b->loop, EVBREAK_ALL);
		return;
	}
	if (sl_in_txn(b->db) && b->repl.state != REPL_IDLE) {
		run_connection_lost(b, msg, true); /* the pull's transaction is dropped and resent */
	} else {
		pull_abort_batch(b);
		log_warn("%s", msg);
		ev_emit_error(b, msg, true);
	}
	schedule(s, RETRY_S);
}

int tsnap_route(struct pgsb *b, const struct br_table *t, const struct dec_record *rec,
                char *err, size_t cap)
{
	struct tsnap *s = b->tsnap;

	if (t->snap_phase == TSNAP_PENDING || !s || s->t != t)
		return 1; /* its copy, still to come, brings it */
	if (xids_saw(&s->x, b->xact_xid))
		return 1;
	if (t->snap_phase == TSNAP_FILTER)
		return 0;
	if (pull_ensure_batch(b, err, cap) || snapq_append(b, &s->q_append, t, rec, err, cap))
		return -1;
	b->repl.batch_rows++;
	return 1;
}

bool tsnap_busy(struct pgsb *b)
{
	struct tsnap *s = b->tsnap;

	if (!s)
		return false;
	if (s->t)
		return true;
	for (size_t i = 0; i < b->ntables; i++)
		if (b->tables[i].snap_phase == TSNAP_PENDING)
			return true;
	return false;
}

void tsnap_abort(struct pgsb *b)
{
	struct tsnap *s = b->tsnap;

	if (s)
		hold_push(b, s, false);
	if (!s || !s->t)
		return;
	release_all(s);
	s->t->snap_phase = TSNAP_PENDING; /* its state stays "snapshot": started again */
	atomic_store(&s->t->push_held, true);
	s->t = NULL;
}

int tsnap_reschedule(struct pgsb *b, char *err, size_t cap)
{
	struct tsnap *s = b->tsnap;

	if (s && s->t)
		tsnap_abort(b);
	if (s)
		s->t = NULL;
	struct sl_err e;
	bool own = !sl_in_txn(b->db); /* else the pull's batch, committed with it */
	if (own && sl_begin(b->db, &e)) {
		snprintf(err, cap, "cannot begin a SQLite transaction: %s", e.msg);
		return -1;
	}
	if (tstate_plan(b, err, cap)) {
		if (own)
			sl_rollback(b->db);
		return -1;
	}
	if (own && sl_commit(b->db, &e)) {
		snprintf(err, cap, "cannot commit to SQLite: %s", e.msg);
		return -1;
	}
	if (s)
		schedule(s, 0.);
	return 0;
}

int tsnap_start(struct pgsb *b, char *err, size_t cap)
{
	struct tsnap *s = calloc(1, sizeof *s);

	if (!s) {
		snprintf(err, cap, "out of memory");
		return -1;
	}
	s->b = b;
	dec_parser_init(&s->qdec);
	ev_timer_init(&s->timer, on_timer, 0., 0.);
	s->timer.data = s;
	s->running = true; /* `sync` copies too: it ends once no table waits (tsnap_busy) */
	b->tsnap = s;
	if (snapq_ensure(b, err, cap))
		return -1;
	return tsnap_reschedule(b, err, cap);
}

void tsnap_stop(struct pgsb *b)
{
	struct tsnap *s = b->tsnap;

	if (!s)
		return;
	ev_timer_stop(b->loop, &s->timer);
	b->boundary_wanted = false;
	release_all(s);
	sqlite3_finalize(s->q_append);
	dec_parser_free(&s->qdec);
	free(s);
	b->tsnap = NULL;
}
