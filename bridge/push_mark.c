/* push_mark.c: what a push writes back into SQLite: conflicts settled, the
 * local mark after the commit, the reconcile after a crash between the two,
 * and a change Postgres rejects set aside. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "log.h"
#include "push_int.h"

#define COMMIT_TS_COLUMN "_pgsb_commit_ts"

/* ---- conflicts: a guarded statement that missed ---- */

/* The row now in Postgres with the entry's key, locked, with its commit
 * time (NULL when track_commit_timestamp is off). */
PGresult *push__fetch_remote(struct pgsb *b, const struct entry *e)
{
	struct dec_field *f;
	size_t n, len;
	char *sql = NULL;
	struct params p = {0};
	const char *image = e->op == 'I' ? e->final : e->base;

	if (!image)
		image = e->key; /* changes that cancel out: by key */
	if (push__parse_image(&b->push.key_dec, image, &f, &n))
		return NULL;
	FILE *m = open_memstream(&sql, &len);
	fprintf(m, "SELECT *, %s AS \"" COMMIT_TS_COLUMN "\" FROM %s",
	        b->push.commit_ts ? "pg_xact_commit_timestamp(xmin)::text" : "NULL::text",
	        e->t->qualified);
	push__sql_key_where(m, e->t, f, n, &p);
	fputs(" FOR UPDATE", m);
	fclose(m);
	PGresult *r = push__exec_params(b->push.conn, sql, &p);
	free(sql);
	push__params_free(&p);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		PQclear(r);
		return NULL;
	}
	return r;
}

/* Writes the winning version to Postgres: the local row (or its delete),
 * or the merged row.  The RETURNING row goes to e->res. */
static int force_version(struct pgsb *b, struct entry *e, const char *row, bool pg_form)
{
	struct dec_field *f;
	size_t n, len;
	char *sql = NULL;
	struct params p = {0};

	if (push__parse_image(&b->push.key_dec, row ? row : e->base, &f, &n))
		return -1;
	FILE *m = open_memstream(&sql, &len);
	if (row) {
		push__sql_insert(m, e->t, f, n, &p, true, pg_form);
	} else {
		fprintf(m, "DELETE FROM %s", e->t->qualified);
		push__sql_key_where(m, e->t, f, n, &p);
	}
	fclose(m);
	PGresult *r = push__exec_params(b->push.conn, sql, &p);
	free(sql);
	push__params_free(&p);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		PQclear(r);
		return -1;
	}
	if (st != PGRES_TUPLES_OK) {
		PQclear(r);
		r = NULL;
	}
	push__entry_own_result(e, r);
	return 0;
}

/* A local key move that wins: the row leaves its old key in Postgres
 * too (the upsert that follows writes it at the new key). */
static int delete_old_key(struct pgsb *b, struct entry *e)
{
	struct dec_field *f;
	size_t n, len;
	char *sql = NULL;
	struct params p = {0};

	if (push__parse_image(&b->push.key_dec, e->base, &f, &n))
		return -1;
	FILE *m = open_memstream(&sql, &len);
	fprintf(m, "DELETE FROM %s", e->t->qualified);
	push__sql_key_where(m, e->t, f, n, &p);
	fclose(m);
	PGresult *r = push__exec_params(b->push.conn, sql, &p);
	int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
	PQclear(r);
	free(sql);
	push__params_free(&p);
	return rc;
}

static int resolve_one(struct pgsb *b, struct batch *bt, struct entry *e)
{
	push__entry_own_result(e, NULL);
	e->remote = push__fetch_remote(b, e);
	if (!e->remote)
		return -1;
	if (e->op == 'D' && PQntuples(e->remote) == 0) {
		e->outcome = OUT_NOTHING; /* deleted on both sides */
		return 0;
	}
	int tscol = PQnfields(e->remote) - 1;
	char deleted_at[64];
	struct conflict_case cc = {
		.t = e->t, .op = e->op, .base_json = e->base, .local_json = e->final,
		.local_time = e->changed_at, .remote = e->remote,
		.remote_time = PQntuples(e->remote) == 1 && !PQgetisnull(e->remote, 0, tscol)
		               ? PQgetvalue(e->remote, 0, tscol)
		               : conflict_by_time(b, e->t) && fence_delete_time(b, e->t->local, e->key, deleted_at,
		                                                     sizeof deleted_at) ? deleted_at : NULL,
	};
	enum conflict_winner w = conflict_decide(b, &cc);
	bt->conflicts++;
	e->merged = cc.merged_json;
	e->outcome = w == WIN_LOCAL ? OUT_LOCAL : w == WIN_MERGED ? OUT_MERGED : OUT_REMOTE;
	if (w == WIN_REMOTE && e->op == 'U' && push__key_moved(b, e->t, e->base, e->final)) {
		/* The local row moved to a new key and lost: what Postgres holds
		 * at that key (most often nothing) replaces it locally. */
		struct entry at_new = {.t = e->t, .op = 'I', .final = e->final, .key = e->key};
		if (!(e->moved = push__fetch_remote(b, &at_new)))
			return -1;
	}
	if (w != WIN_REMOTE && e->op == 'U' && push__key_moved(b, e->t, e->base, e->final) &&
	    delete_old_key(b, e))
		return -1;
	if (w == WIN_LOCAL)
		return force_version(b, e, e->final, false);
	if (w == WIN_MERGED)
		return force_version(b, e, e->merged, true);
	return 0;
}

int push__resolve_conflicts(struct pgsb *b, struct batch *bt, char *err, size_t cap)
{
	for (size_t i = 0; i < bt->ne; i++) {
		struct entry *e = &bt->e[i];
		if (e->outcome == OUT_REFRESH) {
			/* Locked until the commit: the version written back is exact. */
			if (!(e->remote = push__fetch_remote(b, e))) {
				pgc_error_text(b->push.conn, err, cap);
				return -1;
			}
			continue;
		}
		if (!e->sent || e->outcome == OUT_NOTHING || e->row >= 0)
			continue;
		if (resolve_one(b, bt, e)) {
			pgc_error_text(b->push.conn, err, cap);
			return -1;
		}
	}
	return 0;
}

/* ---- the local mark ---- */

/* The key as Postgres holds it, in the push's SQLite connection: row
 * `row` of r written (an upsert), or (r NULL, or no such row) the local
 * row at key, a JSON image, deleted. */
int push__settle_key(struct pgsb *b, const struct br_table *t, PGresult *r, int row, const char *key,
                     struct sl_err *e)
{
	struct dec_field *kf = NULL, *f = NULL;
	size_t nk = 0, n = 0;
	bool has = r && row >= 0 && row < PQntuples(r);

	if (!has && push__parse_image(&b->push.key_dec, key, &kf, &nk))
		return -1;
	if (has && !(f = calloc((size_t)PQnfields(r) + 1, sizeof *f))) {
		snprintf(e->msg, sizeof e->msg, "out of memory");
		return -1;
	}
	if (has)
		n = pgc_row_fields(r, row, t, f); /* without our commit-time column */
	int rc = sl_settle_key(b->push.db, t->schema, t->name, kf, nk, f, n, e);
	free(f);
	return rc;
}

/* A statement prepared once and kept; reset and cleared for reuse. */
static sqlite3_stmt *cached(struct pgsb *b, sqlite3_stmt **slot, const char *sql)
{
	if (!*slot && sqlite3_prepare_v3(sl_handle(b->push.db), sql, -1, SQLITE_PREPARE_PERSISTENT,
	                                 slot, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_reset(*slot);
	sqlite3_clear_bindings(*slot);
	return *slot;
}

/* A local change newer than the batch for this row (or one that moved
 * another row onto its key): leave the row alone. */
bool push__local_pending(struct pgsb *b, const struct br_table *t, const char *key)
{
	sqlite3_stmt *st = cached(b, &b->push.st_pending,
		/* Two probes, one index each: with an OR the planner scans all
		 * of the table's changes, for each entry of a batch. */
		"SELECT EXISTS (SELECT 1 FROM _pgsqlite_changes WHERE table_name = ?1 AND pk = ?2)"
		" OR EXISTS (SELECT 1 FROM _pgsqlite_changes WHERE table_name = ?1 AND new_pk = ?2)");
	bool pending;

	if (!st)
		return true;
	sqlite3_bind_text(st, 1, t->local, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	pending = sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 0) != 0;
	sqlite3_reset(st);
	return pending;
}

/* Does the row Postgres returned hold exactly what SQLite already has
 * (no default, trigger or other column of the server's own)?  Then there
 * is nothing to write back. */
static bool returned_as_sent(struct pgsb *b, const struct entry *e)
{
	struct dec_field *f;
	size_t n;

	if (!e->final || push__parse_image(&b->push.key_dec, e->final, &f, &n))
		return false;
	for (int j = 0; j < PQnfields(e->res); j++) {
		const char *name = PQfname(e->res, j);
		const struct sl_column *c = push__pgcol(e->t, name, strlen(name));
		if (!c)
			continue; /* our own bookkeeping columns */
		const struct dec_field *fv = push__field_named(f, n, (struct dec_str){name, strlen(name)});
		if (!fv)
			return false;
		if (PQgetisnull(e->res, e->row, j) || fv->kind == DEC_NULL) {
			if (PQgetisnull(e->res, e->row, j) != (fv->kind == DEC_NULL))
				return false;
			continue;
		}
		const char *v = PQgetvalue(e->res, e->row, j);
		size_t len = (size_t)PQgetlength(e->res, e->row, j);
		if (c->typeoid == 17 && len >= 2)
			v += 2, len -= 2; /* bytea: \x then the same hex */
		if ((fv->kind != DEC_NUMBER && fv->kind != DEC_STRING) || len != fv->value.len ||
		    memcmp(v, fv->value.p, len) != 0)
			return false;
	}
	return true;
}

static char *final_key_json(struct pgsb *b, const struct entry *e);

/* Is a later local change pending at the key the entry moved its row to? */
static bool new_key_pending(struct pgsb *b, const struct entry *e)
{
	char *key = final_key_json(b, e);
	bool pending = !key || push__local_pending(b, e->t, key);

	free(key);
	return pending;
}

/* A local key move that lost: its new key gets what Postgres holds there
 * (most often nothing), unless a later local change is pending for that
 * key.  The old key is settled apart: a later change pending there (a new
 * row at the freed key) does not hold the new key back. */
static int settle_new_key(struct pgsb *b, const struct entry *e, struct sl_err *err)
{
	char *key = final_key_json(b, e);
	int rc = 0;

	if (key && !push__local_pending(b, e->t, key))
		rc = push__settle_key(b, e->t, e->moved, 0, e->final, err);
	free(key);
	return rc;
}

/* What Postgres now holds for an entry, written into SQLite.  A settled
 * entry leaves its key as Postgres holds it, whatever the outcome: the
 * pull may have put a row there meanwhile (a remote key move onto a key
 * with a pending local delete), so a delete found on both sides, or a
 * local delete that won, removes the local row too. */
static int apply_outcome(struct pgsb *b, const struct entry *e, struct sl_err *err)
{
	if (e->outcome == OUT_PUSHED &&
	    (e->op == 'D' || !e->t->server_computes || (e->res && e->row >= 0 && returned_as_sent(b, e))))
		return 0; /* SQLite already holds what Postgres holds */
	if (e->moved && settle_new_key(b, e, err))
		return -1;
	bool at_key = !push__local_pending(b, e->t, e->key);
	if (e->outcome == OUT_REMOTE || e->outcome == OUT_REFRESH || (e->outcome == OUT_NOTHING && e->remote))
		return at_key ? push__settle_key(b, e->t, e->remote, 0, e->key, err) : 0;
	if (e->outcome == OUT_LOCAL && !e->final)
		return at_key ? push__settle_key(b, e->t, NULL, 0, e->key, err) : 0;
	if (e->outcome == OUT_NOTHING || !e->res || e->row < 0 || (e->outcome == OUT_PUSHED && e->op == 'D'))
		return 0;
	/* The row as Postgres returned it.  When it moved, it goes to its new
	 * key: a later change waits there, or not; one at the old key is
	 * another row's (a new row at the freed key) and holds nothing back. */
	if (e->final && push__key_moved(b, e->t, e->base, e->final))
		return new_key_pending(b, e) ? 0 : push__settle_key(b, e->t, e->res, e->row, e->key, err);
	return at_key ? push__settle_key(b, e->t, e->res, e->row, e->key, err) : 0;
}

/* The pk JSON (the triggers' form) of the row's final image (malloc'd). */
static char *final_key_json(struct pgsb *b, const struct entry *e)
{
	struct dec_field *f, key[64];
	size_t n, nk = 0;
	struct sl_err err = {0};

	if (push__parse_image(&b->push.key_dec, e->final, &f, &n))
		return NULL;
	for (int pos = 1; pos <= 64; pos++)
		for (size_t i = 0; i < e->t->npgcols; i++)
			if (e->t->pgcols[i].pk_pos == pos) {
				const char *name = e->t->pgcols[i].name;
				const struct dec_field *v = push__field_named(f, n, (struct dec_str){name, strlen(name)});
				if (v && nk < 64)
					key[nk++] = *v;
			}
	return nk ? sl_key_json(b->push.db, e->t->local, key, nk, &err) : NULL;
}

/* Tracked under its key, and under its new key when a change in the
 * batch moved it: our own push coming back, or an older remote change,
 * must be recognised under either. */
static int track_pushed(struct pgsb *b, const struct entry *e, uint64_t lsn)
{
	if (e->outcome == OUT_NOTHING || e->outcome == OUT_REMOTE || e->outcome == OUT_REFRESH)
		return 0;
	if (push__track(b, e->t->local, e->key, lsn))
		return -1;
	if (!e->rekeyed || !e->final)
		return 0;
	char *fk = final_key_json(b, e);
	int rc = fk && strcmp(fk, e->key) != 0 ? push__track(b, e->t->local, fk, lsn) : 0;
	free(fk);
	return rc;
}

/* Remembers that our commit at lsn wrote this row: a remote change that
 * committed before it and arrives later must not overwrite it. */
int push__track(struct pgsb *b, const char *local, const char *key, uint64_t lsn)
{
	sqlite3_stmt *st;
	int rc;

	if (lsn == 0)
		return 0;
	st = cached(b, &b->push.st_track,
		"INSERT INTO _pgsqlite_pushed (table_name, pk, lsn) VALUES (?1, ?2, ?3) "
		"ON CONFLICT (table_name, pk) DO UPDATE SET lsn = excluded.lsn");
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, local, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)lsn);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_reset(st);
	b->push.pushed_rows_tracked += rc == 0;
	return rc;
}

static int record_conflict(struct pgsb *b, const struct entry *e, struct sl_err *err)
{
	enum conflict_winner w = e->outcome == OUT_LOCAL ? WIN_LOCAL
	                         : e->outcome == OUT_MERGED ? WIN_MERGED : WIN_REMOTE;
	char *remote = conflict_remote_json(e->remote);
	int rc = sl_conflict_record(b->push.db, e->t->local, e->key, e->final, remote,
	                            cfg_conflict_name(e->t->conflict),
	                            conflict_resolution_name(w, e->t->conflict),
	                            e->t->conflict != CFG_CONFLICT_KEEP_BOTH, err);
	free(remote);
	return rc;
}

bool push__is_conflict(const struct entry *e)
{
	return e->remote && e->outcome != OUT_NOTHING && e->outcome != OUT_REFRESH;
}

/* Is every entry of the batch tracked under its one key (a batch of plain
 * pushes, the usual case)?  Then one statement over the batch's log rows
 * tracks them all (track_batch). */
static bool tracks_plainly(const struct batch *bt)
{
	for (size_t i = 0; i < bt->ne; i++) {
		enum outcome o = bt->e[i].outcome;
		if (bt->e[i].rekeyed || o == OUT_NOTHING || o == OUT_REMOTE || o == OUT_REFRESH)
			return false;
	}
	return true;
}

/* The tables the batch has entries of, a JSON array (malloc'd): the
 * pushed ones, not those riding along unpushed. */
static char *entry_tables(const struct batch *bt)
{
	cJSON *names = cJSON_CreateArray();
	const char *last = NULL;

	for (size_t i = 0; names && i < bt->ne; i++) {
		const char *t = bt->e[i].t->local;
		if (last && strcmp(last, t) == 0)
			continue;
		bool seen = false;
		for (cJSON *n = names->child; n && !seen; n = n->next)
			seen = strcmp(n->valuestring, t) == 0;
		if (!seen)
			cJSON_AddItemToArray(names, cJSON_CreateString(t));
		last = t;
	}
	char *json = names ? cJSON_PrintUnformatted(names) : NULL;
	cJSON_Delete(names);
	return json;
}

/* Tracks every pushed row of a plain batch at once, from the log rows the
 * mark is about to delete (so: before the trim). */
static int track_batch(struct pgsb *b, const struct batch *bt, struct sl_err *err)
{
	if (bt->commit_lsn == 0 || bt->ne == 0)
		return 0;
	char *tables = entry_tables(bt);
	sqlite3_stmt *st = tables ? cached(b, &b->push.st_track_batch,
		"INSERT INTO _pgsqlite_pushed (table_name, pk, lsn) SELECT table_name, pk, ?3"
		" FROM _pgsqlite_changes WHERE seq <= ?1 AND pk IS NOT NULL AND"
		" table_name IN (SELECT value FROM json_each(?2))"
		" ON CONFLICT (table_name, pk) DO UPDATE SET lsn = excluded.lsn") : NULL;
	int rc = -1;

	if (st) {
		sqlite3_bind_int64(st, 1, bt->last_seq);
		sqlite3_bind_text(st, 2, tables, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)bt->commit_lsn);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
		b->push.pushed_rows_tracked += rc == 0 ? sqlite3_changes(sl_handle(b->push.db)) : 0;
		sqlite3_reset(st);
	}
	if (rc)
		snprintf(err->msg, sizeof err->msg, "cannot track the pushed rows: %s",
		         sqlite3_errmsg(sl_handle(b->push.db)));
	free(tables);
	return rc;
}

static int mark_entries(struct pgsb *b, struct batch *bt, bool tracked, struct sl_err *err)
{
	static const char *const outcomes[] = {"pushed", "local", "remote", "merged", "nothing", "refresh"};
	for (size_t i = 0; i < bt->ne; i++) {
		const struct entry *e = &bt->e[i];
		log_debug("mark: %c %s %s at %X/%X: %s%s%s", e->op, e->t->local, e->key,
		          (unsigned)(bt->commit_lsn >> 32), (unsigned)bt->commit_lsn,
		          (size_t)e->outcome < 6 ? outcomes[e->outcome] : "?", e->moved ? ", moved" : "",
		          push__local_pending(b, e->t, e->key) ? ", later local change" : "");
		if (apply_outcome(b, e, err) || (!tracked && track_pushed(b, e, bt->commit_lsn)) ||
		    (push__is_conflict(e) && record_conflict(b, e, err)))
			return -1;
	}
	return 0;
}

/* The local mark: changes gone from the log, Postgres's version of each
 * pushed row (server defaults and triggers included) in SQLite, conflicts
 * recorded, the position saved; one SQLite transaction. */
int push__mark_local(struct pgsb *b, struct batch *bt, char *err, size_t cap)
{
	struct sl_err e = {0};
	int64_t watermark = 0;

	bool plain = tracks_plainly(bt);
	int64_t t0 = br_now_us(), t1 = 0, t2 = 0;
	if (sl_begin(b->push.db, &e) || (plain && track_batch(b, bt, &e)) ||
	    push__queue_trim(b, bt->tables, bt->last_seq, &watermark, &e) ||
	    !(t1 = br_now_us()) || mark_entries(b, bt, plain, &e) || !(t2 = br_now_us()) ||
	    sl_state_set(b->push.db, "push_inflight", "", &e) || sl_commit(b->push.db, &e)) {
		snprintf(err, cap, "cannot mark pushed changes in SQLite: %s",
		         e.msg[0] ? e.msg : sqlite3_errmsg(sl_handle(b->push.db)));
		sl_rollback(b->push.db);
		return -1;
	}
	b->push.pushed_seq = watermark;
	log_debug("mark: track and delete %lld us, entries %lld us, commit %lld us", (long long)(t1 - t0),
	          (long long)(t2 - t1), (long long)(br_now_us() - t2));
	return 0;
}

/* ---- a change Postgres rejects ---- */

static void emit_rejection(struct pgsb *b, const struct br_table *t, const struct sl_change *c,
                           const char *why)
{
	char msg[1400];

	snprintf(msg, sizeof msg, "Postgres rejected a local change to \"%s\" %s: %s; the local row "
	         "now holds the Postgres version, the change is in _pgsqlite_conflicts", c->table, c->pk, why);
	log_warn("%s", msg);
	ev_emit_error(b, msg, false);
	ev_emit_conflict(b, c->table, c->pk, cfg_conflict_name(t->conflict), "rejected");
}

/* A rejected key move also left the moved row at its new key in SQLite:
 * that key gets what Postgres holds there (most often another row, the
 * reason of the rejection), unless a later local change is pending for it. */
static int restore_new_key(struct pgsb *b, const struct br_table *t, const struct sl_change *c,
                           PGresult *at_new, struct sl_err *e)
{
	struct entry probe = {.t = t, .op = 'I', .final = c->new_row, .key = c->pk};
	char *key = at_new ? final_key_json(b, &probe) : NULL;
	int rc = 0;

	if (key && !push__local_pending(b, t, key))
		rc = push__settle_key(b, t, at_new, 0, c->new_row, e);
	free(key);
	return rc;
}

/* The change of the last one-change batch (failed_seq), which Postgres
 * rejects on its own: out of the log, into _pgsqlite_conflicts for a
 * person, and the row in SQLite back to what Postgres holds. */
int push__reject_first(struct pgsb *b, const char *why, char *err, size_t cap)
{
	struct sl_change *c;
	size_t n;
	struct sl_err e = {0};
	int rc = -1;
	int64_t seq = b->push.failed_seq;

	if (seq <= 0 || sl_changes_read_in(b->push.db, seq - 1, seq, NULL, 1, &c, &n, &e))
		return -1;
	if (n == 0) {
		sl_changes_free(c, n);
		return -1;
	}
	const struct br_table *t = push__table_by_local(b, c->table);
	if (push_window_enter(b)) {
		sl_changes_free(c, n);
		snprintf(err, cap, "stopping");
		return -1;
	}
	struct entry probe = {.t = t, .op = 'D', .base = c->old_row ? c->old_row : c->new_row, .key = c->pk};
	PGresult *remote = t ? push__fetch_remote(b, &probe) : NULL;
	struct entry at_new = {.t = t, .op = 'I', .final = c->new_row, .key = c->pk};
	PGresult *moved = remote && c->op == 'U' && push__key_moved(b, t, c->old_row, c->new_row)
	                  ? push__fetch_remote(b, &at_new) : NULL;
	char *remote_json = conflict_remote_json(remote);
	char resolution[300];
	snprintf(resolution, sizeof resolution, "rejected: %.280s", why);
	if (remote && sl_begin(b->push.db, &e) == 0 &&
	    sl_changes_delete_in(b->push.db, c->seq - 1, c->seq, NULL, &e) == 0 &&
	    (push__local_pending(b, t, c->pk) ||
	     push__settle_key(b, t, remote, 0, c->pk, &e) == 0) &&
	    restore_new_key(b, t, c, moved, &e) == 0 &&
	    sl_conflict_record(b->push.db, c->table, c->pk, c->new_row, remote_json,
	                       cfg_conflict_name(t->conflict), resolution, false, &e) == 0 &&
	    sl_commit(b->push.db, &e) == 0) {
		emit_rejection(b, t, c, why);
		rc = 0;
	} else {
		sl_rollback(b->push.db);
		snprintf(err, cap, "cannot set aside a rejected change: %s", e.msg[0] ? e.msg : PQerrorMessage(b->push.conn));
	}
	push_window_leave(b);
	free(remote_json);
	PQclear(remote);
	PQclear(moved);
	sl_changes_free(c, n);
	return rc;
}
