/* pull.c: applies decoded wal2json records to SQLite.  Each Postgres
 * transaction lands whole in one SQLite transaction; transactions that
 * arrive back to back share one (group commit).  A transaction whose commit
 * end LSN is at or below what SQLite already holds is skipped, so a replay
 * after a crash applies nothing twice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backfill.h"
#include "br.h"
#include "exact.h"
#include "log.h"
#include "merge.h"

#define BATCH_MAX_ROWS 100000   /* commit at the next transaction boundary past this */
#define BATCH_MAX_US 100000     /* ... or when the batch is this old: bounded visibility */

int pull_load_position(struct pgsb *b, char *err, size_t cap)
{
	char text[64];
	int found = sl_state_get(b->db, "applied_lsn", text, sizeof text);
	uint64_t lsn = 0;

	if (found < 0) {
		snprintf(err, cap, "cannot read _pgsqlite_state");
		return -1;
	}
	if (found && dec_parse_lsn(text, strlen(text), &lsn)) {
		snprintf(err, cap, "_pgsqlite_state holds a bad applied_lsn \"%s\"", text);
		return -1;
	}
	b->repl.committed_lsn = b->repl.ack_lsn = b->repl.pending_lsn = lsn;
	return 0;
}

static const struct br_table *find_table(struct pgsb *b, const struct dec_record *rec)
{
	for (size_t i = 0; i < b->ntables; i++) {
		const struct br_table *t = &b->tables[i];
		if (dec_str_eq(rec->schema, t->schema) && dec_str_eq(rec->table, t->name))
			return t;
	}
	return NULL;
}

int pull_ensure_batch(struct pgsb *b, char *err, size_t cap)
{
	struct sl_err e;

	if (sl_in_txn(b->db))
		return 0;
	if (sl_begin(b->db, &e)) {
		snprintf(err, cap, "cannot begin a SQLite transaction: %s", e.msg);
		return -1;
	}
	b->repl.batch_start_us = br_now_us();
	b->repl.batch_rows = b->repl.batch_xacts = 0;
	return 0;
}

bool pull_batch_due(struct pgsb *b)
{
	const struct repl *r = &b->repl;

	return r->batch_rows >= BATCH_MAX_ROWS ||
	       br_now_us() - r->batch_start_us >= BATCH_MAX_US;
}

static int on_begin(struct pgsb *b, const struct dec_record *rec, char *err, size_t cap)
{
	struct repl *r = &b->repl;
	uint64_t have = r->pending_lsn > r->committed_lsn ? r->pending_lsn : r->committed_lsn;

	if (r->in_xact) {
		snprintf(err, cap, "begin of transaction %u inside another transaction", rec->xid);
		return -1;
	}
	r->in_xact = true;
	r->skipping = rec->nextlsn != 0 && rec->nextlsn <= have;
	b->xact_end_lsn = rec->nextlsn;
	b->xact_xid = rec->has_xid ? rec->xid : 0;
	snprintf(b->xact_time, sizeof b->xact_time, "%.*s", (int)rec->timestamp.len,
	         rec->timestamp.p ? rec->timestamp.p : "");
	if (r->skipping)
		log_debug("skipping transaction %u: already applied", rec->xid);
	return 0;
}

static int on_commit(struct pgsb *b, const struct dec_record *rec, char *err, size_t cap)
{
	struct repl *r = &b->repl;

	if (!r->in_xact) {
		snprintf(err, cap, "commit of transaction %u without its begin", rec->xid);
		return -1;
	}
	r->in_xact = false;
	if (r->skipping) {
		r->skipping = false;
		return 0;
	}
	if (rec->nextlsn > r->pending_lsn)
		r->pending_lsn = rec->nextlsn;
	if (!sl_in_txn(b->db)) {
		/* Nothing of ours in it: nothing to make durable. */
		if (r->pending_lsn > r->ack_lsn)
			r->ack_lsn = r->pending_lsn;
		return 0;
	}
	r->batch_xacts++;
	b->stats.xacts++;
	if (pull_batch_due(b))
		return pull_commit_batch(b, err, cap);
	return 0;
}

/* Errors of the change itself (a constraint, a value, a missing key
 * column), which no retry will cure, unlike a busy, full or broken file. */
static bool unappliable(int code)
{
	code &= 0xff;
	return code == 0 || code == SQLITE_CONSTRAINT || code == SQLITE_MISMATCH ||
	       code == SQLITE_TOOBIG || code == SQLITE_RANGE;
}

/* A remote change SQLite refuses is set aside, not retried forever: it is
 * recorded in _pgsqlite_conflicts (resolution "rejected: <why>") with an
 * error event, and the stream moves on. */
static int set_aside(struct pgsb *b, const struct br_table *t, const struct dec_record *rec,
                     const char *why, char *err, size_t cap)
{
	struct dec_field key[64];
	struct sl_err e = {0};
	size_t nkey = merge_record_key(rec, key, 64);
	char *pk = nkey ? sl_key_json(b->db, t->local, key, nkey, &e) : NULL;
	char *remote = merge_record_json(rec);
	char resolution[600], msg[1200];
	int rc = 0;

	snprintf(resolution, sizeof resolution, "rejected: %.500s", why);
	if (sl_conflict_record(b->db, t->local, pk, NULL, remote, cfg_conflict_name(t->conflict),
	                       resolution, false, &e)) {
		snprintf(err, cap, "cannot set aside a change to \"%s\": %s", t->local, e.msg);
		rc = -1;
	} else {
		snprintf(msg, sizeof msg, "a change to \"%s\" from Postgres cannot be applied (%s); "
		         "it is set aside in _pgsqlite_conflicts", t->local, why);
		log_warn("%s", msg);
		ev_emit_error(b, msg, false);
		ev_emit_conflict(b, t->local, pk, cfg_conflict_name(t->conflict), "rejected");
		rc = merge_converge_from_postgres(b, t, rec, err, cap); /* the rows as Postgres has them */
		/* SQLite refusing those too (an app's own trigger or constraint)
		 * leaves the rows as they are, inside the transaction; anything
		 * else (a lost connection, a full disk) is retried. */
		if (rc == -2 && !sl_txn_lost(b->db)) {
			log_warn("the rows of \"%s\" as Postgres holds them cannot be written either (%s); "
			         "left as they are", t->local, err);
			rc = 0;
		}
		rc = rc ? -1 : 0;
	}
	free(pk);
	free(remote);
	return rc;
}

static int on_change(struct pgsb *b, const struct dec_record *rec, char *err, size_t cap)
{
	struct repl *r = &b->repl;

	if (!r->in_xact) {
		snprintf(err, cap, "change outside a transaction");
		return -1;
	}
	if (r->skipping)
		return 0;
	const struct br_table *t = find_table(b, rec);
	if (!t || t->skip || t->direction == CFG_DIRECTION_PUSH)
		return 0;
	int routed = t->snap_phase ? tsnap_route(b, t, rec, err, cap) : 0;
	if (routed)
		return routed < 0 ? -1 : 0; /* under an online snapshot: seen by it, or queued */
	return pull_apply_change(b, t, rec, err, cap);
}

int pull_apply_change(struct pgsb *b, const struct br_table *t, const struct dec_record *rec,
                      char *err, size_t cap)
{
	struct repl *r = &b->repl;
	struct sl_err e;

	if (pull_ensure_batch(b, err, cap))
		return -1;
	bool apply;
	if (merge_remote_change(b, t, rec, &apply, err, cap))
		return -1;
	/* NaN and +-Infinity arrive as null: read them back by key. */
	if (apply && exact_fill_nulls(b, &b->exact_conn, rec, err, cap))
		return -1;
	if (apply && sl_apply(b->db, rec, &e)) {
		if (sl_txn_lost(b->db)) { /* nothing more may run outside it */
			snprintf(err, cap, "SQLite rolled the pull's transaction back at a change to \"%s\": %s",
			         t->local, e.msg);
			return -1;
		}
		if (unappliable(e.code))
			return set_aside(b, t, rec, e.msg, err, cap);
		snprintf(err, cap, "cannot apply a change to \"%s\": %s", t->local, e.msg);
		return -1;
	}
	if (backfill_added_columns(b, err, cap)) /* columns it added: existing rows' values */
		return -1;
	r->batch_rows++;
	b->stats.rows++;
	return 0;
}

int pull_handle_record(struct pgsb *b, const struct dec_record *rec, char *err, size_t cap)
{
	switch (rec->action) {
	case DEC_BEGIN:
		return on_begin(b, rec, err, cap);
	case DEC_COMMIT:
		return on_commit(b, rec, err, cap);
	case DEC_INSERT:
	case DEC_UPDATE:
	case DEC_DELETE:
	case DEC_TRUNCATE:
		return on_change(b, rec, err, cap);
	case DEC_MESSAGE:
		fence_message(b, rec); /* heartbeats and other messages: nothing */
		return 0;
	}
	snprintf(err, cap, "unknown action");
	return -1;
}

/* The last connection error, noted by run_connection_lost, goes into
 * _pgsqlite_state (for `status`) with the next commit. */
static int record_last_error(struct pgsb *b, struct sl_err *e)
{
	struct repl *r = &b->repl;

	if (!r->last_error[0])
		return 0;
	return sl_state_set(b->db, "last_error", r->last_error, e) ||
	       sl_state_set(b->db, "last_error_at", r->last_error_at, e) ? -1 : 0;
}

/* Writes the position into the open transaction and commits it: the
 * Postgres transactions in it become durable, and may be acknowledged. */
int pull_commit_batch(struct pgsb *b, char *err, size_t cap)
{
	struct repl *r = &b->repl;
	char lsn[32], now[40];
	struct sl_err e;

	if (!sl_in_txn(b->db))
		return 0;
	dec_format_lsn(r->pending_lsn, lsn, sizeof lsn);
	log_iso_time(now, sizeof now);
	if (push_prune_tracked(b, r->pending_lsn)) {
		snprintf(err, cap, "cannot prune _pgsqlite_pushed: %s", sqlite3_errmsg(sl_handle(b->db)));
		return -1;
	}
	if (limits_prune_in_batch(b, err, cap)) /* max_records, storage_limit */
		return -1;
	if (sl_state_set(b->db, "applied_lsn", lsn, &e) || record_last_error(b, &e) ||
	    sl_state_set(b->db, "last_sync", now, &e) || sl_commit(b->db, &e)) {
		snprintf(err, cap, "cannot commit to SQLite: %s", e.msg);
		return -1;
	}
	r->committed_lsn = r->pending_lsn;
	r->last_error[0] = '\0';
	if (r->committed_lsn > r->ack_lsn)
		r->ack_lsn = r->committed_lsn;
	ev_emit_sync(b, "pull", r->batch_rows, r->batch_xacts,
	             (br_now_us() - r->batch_start_us) / 1000, r->committed_lsn);
	metrics_pulled(b, r->batch_rows, r->batch_xacts, b->xact_time);
	r->batch_rows = r->batch_xacts = 0;
	limits_after_commit(b);
	return 0;
}

/* Drops what the open SQLite transaction holds; the server resends it,
 * since it was never acknowledged. */
void pull_abort_batch(struct pgsb *b)
{
	struct repl *r = &b->repl;

	sl_rollback(b->db);
	r->pending_lsn = r->committed_lsn;
	r->in_xact = r->skipping = false;
	r->batch_rows = r->batch_xacts = 0;
}
