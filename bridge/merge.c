/* merge.c: the merge point as the pull meets it.  For each remote change
 * the row's state decides: agreed (apply it), pending local (the strategy
 * settles it here, or leaves the local version for the push to settle
 * against Postgres), in the push's batch in flight (that push settles it:
 * its statements may already be in Postgres), or pushed but not yet seen
 * (our push wrote a newer version: skip it).  One more state, remote
 * newer, is what the push finds when its guarded statement misses;
 * conflict.c decides it there by the same strategy.  A remote TRUNCATE keeps rows with unpushed changes.
 * A remote key move is judged at both keys: onto a key with local changes
 * it leaves that key to the push. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "br.h"
#include "exact.h"
#include "log.h"
#include "merge.h"

/* The key columns of a remote change: the old key (identity) for updates
 * and deletes, the new row's for inserts. */
size_t merge_record_key(const struct dec_record *rec, struct dec_field *key, size_t cap)
{
	const struct dec_field *src = rec->nidentity ? rec->identity : rec->columns;
	size_t nsrc = rec->nidentity ? rec->nidentity : rec->ncolumns, n = 0;

	for (size_t i = 0; i < nsrc && n < cap; i++)
		for (size_t k = 0; k < rec->npk; k++)
			if (src[i].name.len == rec->pk[k].name.len &&
			    memcmp(src[i].name.p, rec->pk[k].name.p, src[i].name.len) == 0)
				key[n++] = src[i];
	return n;
}

/* The remote change's new row as JSON (values as wal2json sent them). */
char *merge_record_json(const struct dec_record *rec)
{
	cJSON *o = cJSON_CreateObject();

	for (size_t i = 0; i < rec->ncolumns; i++) {
		const struct dec_field *f = &rec->columns[i];
		char *name = strndup(f->name.p, f->name.len), *v = strndup(f->value.p ? f->value.p : "", f->value.len);
		cJSON *item = f->kind == DEC_NULL ? cJSON_CreateNull()
		              : f->kind == DEC_TRUE || f->kind == DEC_FALSE ? cJSON_CreateBool(f->kind == DEC_TRUE)
		              : f->kind == DEC_NUMBER ? cJSON_CreateRaw(v) : cJSON_CreateString(v);
		cJSON_AddItemToObject(o, name, item);
		free(name);
		free(v);
	}
	char *s = rec->ncolumns ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	return s;
}

/* A key value as a text parameter for Postgres (malloc'd): bytea gets its
 * \x back, booleans their words. */
static char *key_param(const struct dec_field *f)
{
	char *s = NULL;

	if (f->kind == DEC_TRUE || f->kind == DEC_FALSE)
		return strdup(f->kind == DEC_TRUE ? "true" : "false");
	if (f->typeoid == 17)
		return asprintf(&s, "\\x%.*s", (int)f->value.len, f->value.p) < 0 ? NULL : s;
	return strndup(f->value.p ? f->value.p : "", f->value.len);
}

/* SELECT * FROM the table WHERE "k1" = $1 AND ... on the pull's plain
 * connection: the whole row as Postgres holds it now (0 or 1 row). */
static PGresult *read_row_by_key(struct pgsb *b, const struct br_table *t,
                                 const struct dec_field *key, size_t nkey, char *err, size_t cap)
{
	char *sql = NULL, *vals[64] = {0}, q[600];
	size_t len = 0;
	FILE *m = open_memstream(&sql, &len);

	fprintf(m, "SELECT * FROM %s", t->qualified);
	for (size_t k = 0; k < nkey && k < 64; k++) {
		char *name = strndup(key[k].name.p, key[k].name.len);
		pgc_quote_ident(name ? name : "", q, sizeof q);
		fprintf(m, "%s%s = $%zu", k ? " AND " : " WHERE ", q, k + 1);
		free(name);
		vals[k] = key_param(&key[k]);
	}
	fclose(m);
	PGresult *r = NULL;
	if (b->exact_conn || (b->exact_conn = pgc_connect(b, false, err, cap)))
		r = PQexecParams(b->exact_conn, sql, (int)nkey, NULL, (const char *const *)vals, NULL, NULL, 0);
	if (r && PQresultStatus(r) != PGRES_TUPLES_OK) {
		pgc_error_text(b->exact_conn, err, cap);
		if (PQstatus(b->exact_conn) != CONNECTION_OK)
			exact_close(&b->exact_conn);
		PQclear(r);
		r = NULL;
	}
	for (size_t k = 0; k < nkey && k < 64; k++)
		free(vals[k]);
	free(sql);
	return r;
}

/* The key as Postgres holds it: row 0 of r written, or (no row) the local
 * row at the key deleted. */
static int write_or_delete(struct pgsb *b, const struct br_table *t, PGresult *r,
                           const struct dec_field *key, size_t nkey, struct sl_err *e)
{
	struct dec_field *f = calloc((size_t)PQnfields(r) + 1, sizeof *f);

	if (!f) {
		snprintf(e->msg, sizeof e->msg, "out of memory");
		return -1;
	}
	size_t n = PQntuples(r) == 1 ? pgc_row_fields(r, 0, NULL, f) : 0;
	int rc = sl_settle_key(b->db, t->schema, t->name, key, nkey, f, n, e);
	free(f);
	return rc;
}

/* A remote UPDATE that wins over local changes: wal2json leaves out
 * unchanged TOAST columns, and the local row may be gone or hold local
 * values in them, so the whole row is read from Postgres by key and
 * written instead.  When Postgres no longer has it (this very change moved
 * it to another key, or a later one deleted it), the local row goes too:
 * a key move brings no delete for its old key.  *remote gets the row as
 * JSON for the conflict record. */
static int write_whole_row(struct pgsb *b, const struct br_table *t, const struct dec_field *key,
                           size_t nkey, char **remote, char *err, size_t cap)
{
	struct sl_err e = {0};
	PGresult *r = read_row_by_key(b, t, key, nkey, err, cap);

	if (!r) {
		snprintf(err + strlen(err), cap - strlen(err), " (reading a row of \"%s\" by key)", t->local);
		return -1;
	}
	int rc = write_or_delete(b, t, r, key, nkey, &e);
	if (rc)
		snprintf(err, cap, "cannot write a row of \"%s\" read from Postgres: %s", t->local, e.msg);
	free(*remote);
	*remote = conflict_remote_json(r);
	PQclear(r);
	return rc;
}

/* When the row was last written locally: its timestamp column where it
 * has one (as the push's decision reads it), else the newest pending
 * change's time; INT64_MIN when unknown. */
static int64_t local_write_time(struct pgsb *b, const struct br_table *t, const char *pk,
                                const char *row)
{
	const char *tc = b->cfg->timestamp_column;
	cJSON *o = tc && *tc && row ? cJSON_Parse(row) : NULL;
	const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, tc) : NULL;
	int64_t when = cJSON_IsString(v) ? conflict_parse_time(v->valuestring) : INT64_MIN;
	sqlite3_stmt *st = NULL;

	cJSON_Delete(o);
	if (when != INT64_MIN || !pk)
		return when;
	if (sqlite3_prepare_v2(sl_handle(b->db), "SELECT max(changed_at) FROM _pgsqlite_changes "
	                       "WHERE table_name = ?1 AND pk = ?2", -1, &st, NULL) != SQLITE_OK)
		return INT64_MIN;
	sqlite3_bind_text(st, 1, t->local, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, pk, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_TEXT)
		when = conflict_parse_time((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return when;
}

/* A remote delete against a row changed locally, under last-write-wins:
 * the stream carries the deleting transaction's commit time, which the
 * push can never see (it only finds the row missing).  Newer than the
 * local change: the delete wins here.  Older (or a tie): the local change
 * stays and its push re-creates the row, recording the conflict. */
static bool remote_delete_wins(struct pgsb *b, const struct br_table *t, const char *pk,
                               const char *row)
{
	int64_t remote = conflict_parse_time(b->xact_time);

	return row && remote != INT64_MIN && remote > local_write_time(b, t, pk, row);
}

/* A remote TRUNCATE empties the table, except rows our own push wrote
 * after it (pushed unseen, as for a row change); rows with unpushed local
 * changes come back on top (the change log re-applied to this table,
 * inside the same SQLite transaction), and their push settles them
 * against Postgres by the table's strategy. */
static int truncate_keeping_local(struct pgsb *b, const struct br_table *t,
                                  const struct dec_record *rec, bool *apply, char *err, size_t cap)
{
	sqlite3_stmt *st = NULL;
	struct sl_err e = {0};
	int pending;
	bool pushed = b->push.pushed_rows_tracked > 0;

	*apply = true;
	if (t->direction == CFG_DIRECTION_PULL)
		return 0;
	if (sqlite3_prepare_v2(sl_handle(b->db), "SELECT 1 FROM _pgsqlite_changes WHERE "
	                       "table_name = ?1 LIMIT 1", -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, cap, "cannot check local changes of \"%s\": %s", t->local,
		         sqlite3_errmsg(sl_handle(b->db)));
		return -1;
	}
	sqlite3_bind_text(st, 1, t->local, -1, SQLITE_STATIC);
	pending = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	if (!pending && !pushed)
		return 0;
	*apply = false;
	if (pushed ? sl_truncate_except_pushed(b->db, t->local, b->xact_end_lsn, &e) : sl_apply(b->db, rec, &e)) {
		snprintf(err, cap, "cannot truncate \"%s\": %s", t->local, e.msg);
		return -1;
	}
	return pending ? reapply_pending(b, t, err, cap) : 0;
}

/* The settled conflict written down: the row's unpushed local changes
 * dropped, the conflict recorded (keep-both: unresolved, for a person)
 * and announced. */
static int record_settled(struct pgsb *b, const struct br_table *t, const struct dec_field *key,
                          size_t nkey, const char *pk, const char *local, const char *remote,
                          char *err, size_t cap)
{
	struct sl_err e = {0};
	bool keep_both = t->conflict == CFG_CONFLICT_KEEP_BOTH;
	const char *resolution = keep_both ? "kept-both" : "remote";

	if (sl_drop_pending_for_row(b->db, t->local, key, nkey, &e) < 0 ||
	    sl_conflict_record(b->db, t->local, pk, local, remote, cfg_conflict_name(t->conflict),
	                       resolution, !keep_both, &e)) {
		snprintf(err, cap, "cannot settle a conflict on \"%s\": %s", t->local, e.msg);
		return -1;
	}
	ev_emit_conflict(b, t->local, pk, cfg_conflict_name(t->conflict), resolution);
	return 0;
}

/* The newest pending change of the row, when it moved the row to another
 * key: its new image (malloc'd), else NULL. */
static char *moved_image(struct pgsb *b, const struct br_table *t, const char *pk,
                         const struct dec_record *rec, struct dec_field *mkey, size_t *nmkey,
                         struct dec_parser *p)
{
	sqlite3_stmt *st = NULL;
	char *img = NULL;
	struct dec_field *f;
	size_t n;
	struct dec_error derr;

	*nmkey = 0;
	if (!pk || sqlite3_prepare_v2(sl_handle(b->db), "SELECT new_row FROM _pgsqlite_changes WHERE "
	                              "table_name = ?1 AND pk = ?2 ORDER BY seq DESC LIMIT 1", -1, &st,
	                              NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, t->local, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, pk, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_TEXT)
		img = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (!img || dec_parse_object(p, img, strlen(img), &f, &n, &derr))
		goto none;
	for (size_t k = 0; k < rec->npk && *nmkey < 64; k++)
		for (size_t i = 0; i < n; i++)
			if (f[i].name.len == rec->pk[k].name.len &&
			    memcmp(f[i].name.p, rec->pk[k].name.p, f[i].name.len) == 0)
				mkey[(*nmkey)++] = f[i];
	char *newpk = *nmkey == rec->npk ? sl_key_json(b->db, t->local, mkey, *nmkey, &(struct sl_err){0}) : NULL;
	bool moved = newpk && strcmp(newpk, pk) != 0;
	free(newpk);
	if (moved)
		return img;
none:
	free(img);
	*nmkey = 0;
	return NULL;
}

/* The local row had moved to a new key, and the remote side won: what
 * Postgres holds at that key (most often nothing) replaces it. */
static int settle_moved(struct pgsb *b, const struct br_table *t, const struct dec_field *mkey,
                        size_t nmkey, char *err, size_t cap)
{
	struct sl_err e = {0};
	PGresult *r = read_row_by_key(b, t, mkey, nmkey, err, cap);
	int rc;

	if (!r)
		return -1;
	rc = write_or_delete(b, t, r, mkey, nmkey, &e);
	if (rc)
		snprintf(err, cap, "cannot settle a moved row of \"%s\": %s", t->local, e.msg);
	PQclear(r);
	return rc;
}

/* sl_pending_for_row with the error in err: 1 the row's own changes, 2 a
 * move of another row onto its key, 3 both, 0 none, -1 error. */
static int pending_at(struct pgsb *b, const struct br_table *t, const struct dec_field *key,
                      size_t nkey, int64_t *seq, char *err, size_t cap)
{
	struct sl_err e = {0};
	int pending = sl_pending_for_row(b->db, t->local, key, nkey, seq, &e);

	if (pending < 0)
		snprintf(err, cap, "cannot check local changes of \"%s\": %s", t->local, e.msg);
	return pending;
}

/* The row moved away to a key that has changes of its own pending (the
 * moved row changed again there, or the key was freed just before the
 * move): 1.  Settled here, the move would be dropped but not those
 * changes, and the key would be left to the one or the other; the push
 * sees the whole chain and settles it against Postgres. */
static int moved_key_busy(struct pgsb *b, const struct br_table *t, const struct dec_field *mkey,
                          size_t nmkey, char *err, size_t cap)
{
	int own = pending_at(b, t, mkey, nmkey, NULL, err, cap);

	return own < 0 ? -1 : (own & 1) != 0;
}

/* Settled here: remote-wins and keep-both (the remote change wins; keep-
 * both keeps the local version in _pgsqlite_conflicts), and a remote
 * delete newer than the local change under last-write-wins.  Otherwise the
 * local version stays: its push finds Postgres changed and settles there. */
static int settle_on_pull(struct pgsb *b, const struct br_table *t, const struct dec_record *rec,
                          const struct dec_field *key, size_t nkey, bool *apply, char *err,
                          size_t cap)
{
	struct sl_err e = {0};
	bool remote_wins = t->conflict == CFG_CONFLICT_REMOTE_WINS ||
	                   t->conflict == CFG_CONFLICT_KEEP_BOTH;

	*apply = false;
	if (!remote_wins && !(rec->action == DEC_DELETE && conflict_by_time(b, t)))
		return 0;
	char *pk = sl_key_json(b->db, t->local, key, nkey, &e);
	char *local = sl_row_json(b->db, t->local, key, nkey, &e);
	char *remote = merge_record_json(rec);
	struct dec_field mkey[64];
	size_t nmkey = 0;
	struct dec_parser mp;
	dec_parser_init(&mp);
	char *moved = moved_image(b, t, pk, rec, mkey, &nmkey, &mp);
	int rc = 0;
	if (moved && (rc = moved_key_busy(b, t, mkey, nmkey, err, cap)) != 0) {
		rc = rc < 0 ? -1 : 0; /* left to the push */
		free(moved);
		goto out;
	}
	if (moved) { /* the local version lives at its new key */
		free(local);
		local = moved;
	}
	*apply = remote_wins || remote_delete_wins(b, t, pk, local);
	bool won = *apply;
	if (*apply && rec->action == DEC_UPDATE) {
		rc = write_whole_row(b, t, key, nkey, &remote, err, cap);
		*apply = false; /* written whole instead */
		if (rc == 0)
			rc = record_settled(b, t, key, nkey, pk, local, remote, err, cap);
	} else if (*apply) {
		rc = record_settled(b, t, key, nkey, pk, local, remote, err, cap);
	}
	if (rc == 0 && won && moved)
		rc = settle_moved(b, t, mkey, nmkey, err, cap);
out:
	dec_parser_free(&mp);
	free(pk);
	free(local);
	free(remote);
	return rc;
}

/* One key read from Postgres and written (or deleted) locally, unless the
 * row has unpushed local changes: their push settles it against Postgres. */
static int refresh_key(struct pgsb *b, const struct br_table *t, const struct dec_field *key,
                       size_t nkey, char *err, size_t cap)
{
	struct sl_err e = {0};
	int pending = sl_pending_for_row(b->db, t->local, key, nkey, NULL, &e);

	if (pending != 0)
		return pending < 0 ? -1 : 0;
	PGresult *r = read_row_by_key(b, t, key, nkey, err, cap);
	if (!r)
		return -1;
	int rc = write_or_delete(b, t, r, key, nkey, &e);
	PQclear(r);
	if (rc)
		snprintf(err, cap, "cannot refresh a row of \"%s\": %s", t->local, e.msg);
	return rc && (e.code & 0xff) == SQLITE_CONSTRAINT ? -2 : rc;
}

/* The key columns of the record's new row. */
static size_t new_key(const struct dec_record *rec, struct dec_field *newk)
{
	size_t n = 0;

	for (size_t k = 0; k < rec->npk && n < 64; k++)
		for (size_t i = 0; i < rec->ncolumns; i++)
			if (rec->columns[i].name.len == rec->pk[k].name.len &&
			    memcmp(rec->columns[i].name.p, rec->pk[k].name.p, rec->pk[k].name.len) == 0)
				newk[n++] = rec->columns[i];
	return n;
}

static bool same_key(const struct dec_field *a, const struct dec_field *z, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i].kind != z[i].kind || a[i].value.len != z[i].value.len ||
		    memcmp(a[i].value.p, z[i].value.p, a[i].value.len) != 0)
			return false;
	return true;
}

static int refresh_new_key(struct pgsb *b, const struct br_table *t, const struct dec_record *rec,
                           const struct dec_field *oldk, size_t nold, char *err, size_t cap)
{
	struct dec_field newk[64];
	size_t nnew = new_key(rec, newk);

	if (nnew != nold || nnew == 0 || same_key(oldk, newk, nnew))
		return 0;
	return refresh_key(b, t, newk, nnew, err, cap);
}

/* A remote key move of an agreed row onto a key with pending local
 * changes: applied, it would replace the local row there (as an insert,
 * when the old key is gone locally) before its push or a keep-both record
 * could see it.  The old key is refreshed from Postgres instead; the new
 * key is left to its push, unless that push is in flight: it may have read
 * Postgres at that key before this move, and its mark would not look
 * again, so the move is applied as before. */
static int move_onto_pending(struct pgsb *b, const struct br_table *t, const struct dec_record *rec,
                             const struct dec_field *key, size_t nkey, bool *apply, char *err,
                             size_t cap)
{
	struct dec_field newk[64];
	size_t nnew = rec->action == DEC_UPDATE && rec->nidentity ? new_key(rec, newk) : 0;
	int64_t seq = 0;

	if (nnew != nkey || nnew == 0 || same_key(key, newk, nnew))
		return 0;
	int pending = pending_at(b, t, newk, nnew, &seq, err, cap);
	if (pending <= 0 || seq <= atomic_load(&b->push.inflight_seq))
		return pending < 0 ? -1 : 0;
	*apply = false;
	log_debug("pull: a remote key move of \"%s\" onto a key with local changes: the old key "
	          "refreshed, the new one left to the push", t->local);
	return refresh_key(b, t, key, nkey, err, cap);
}

int merge_converge_from_postgres(struct pgsb *b, const struct br_table *t,
                                 const struct dec_record *rec, char *err, size_t cap)
{
	struct dec_field oldk[64], newk[64];
	size_t nold = merge_record_key(rec, oldk, 64), nnew = new_key(rec, newk);
	int rc = nold == rec->npk && nold ? refresh_key(b, t, oldk, nold, err, cap) : 0;

	if (rc == 0 && rec->nidentity && nnew == rec->npk && nnew)
		rc = refresh_key(b, t, newk, nnew, err, cap);
	return rc;
}

/* Where the row stands when a remote change for it arrives. */
static int row_state(struct pgsb *b, const struct br_table *t, const struct dec_field *key,
                     size_t nkey, enum merge_state *state, char *err, size_t cap)
{
	struct sl_err e = {0};

	*state = MERGE_AGREED;
	if (b->push.pushed_rows_tracked > 0) {
		char *pk = sl_key_json(b->db, t->local, key, nkey, &e);
		bool seen = pk && push_remote_is_stale(b, t->local, pk, b->xact_end_lsn);
		free(pk);
		if (seen) {
			*state = MERGE_PUSHED_UNSEEN;
			return 0;
		}
	}
	int64_t seq = 0, inflight = atomic_load(&b->push.inflight_seq);
	int pending = pending_at(b, t, key, nkey, &seq, err, cap);
	if (pending < 0)
		return -1;
	/* The row's own change in flight: its push settles it.  Else a move of
	 * another row onto this key (alone, or with the row's own changes):
	 * the local row here is, or came from, the moved one, and settling
	 * the key on the pull would drop the row's own changes but leave the
	 * move, whose push then re-creates the row in Postgres alone. */
	if (pending)
		*state = (pending & 1) && seq <= inflight ? MERGE_PUSHING
		         : (pending & 2) ? MERGE_MOVE_TARGET : MERGE_PENDING_LOCAL;
	return 0;
}

/* Debug: each remote change's row state, for reading a run back. */
static void trace_state(struct pgsb *b, const struct br_table *t, const struct dec_record *rec,
                        const struct dec_field *key, size_t nkey, enum merge_state state)
{
	static const char *const names[] = {"agreed", "pending local", "move target", "pushed unseen",
	                                    "remote newer", "pushing"};
	if (!log_enabled(LOG_DEBUG))
		return;
	char *pk = sl_key_json(b->db, t->local, key, nkey, &(struct sl_err){0});
	log_debug("pull: %c %s %s at %X/%X: %s", (char)rec->action, t->local, pk ? pk : "?",
	          (unsigned)(b->xact_end_lsn >> 32), (unsigned)b->xact_end_lsn,
	          (size_t)state < sizeof names / sizeof *names ? names[state] : "?");
	free(pk);
}

/* A row left to the push (in its batch in flight, or pending behind a
 * local key move) that this remote change takes from its key (a delete,
 * or a key move away): its commit time, for the push's last-write-wins
 * (push_fence.c). */
static void note_gone_for_push(struct pgsb *b, const struct br_table *t, const struct dec_record *rec,
                                const struct dec_field *key, size_t nkey)
{
	if (!conflict_by_time(b, t) ||
	    !(rec->action == DEC_DELETE || (rec->action == DEC_UPDATE && rec->nidentity)))
		return;
	char *pk = sl_key_json(b->db, t->local, key, nkey, &(struct sl_err){0});
	if (pk)
		fence_note_delete(b, t->local, pk, b->xact_time);
	free(pk);
}

int merge_remote_change(struct pgsb *b, const struct br_table *t, const struct dec_record *rec,
                        bool *apply, char *err, size_t cap)
{
	struct dec_field key[64];
	size_t nkey = rec->action == DEC_TRUNCATE ? 0 : merge_record_key(rec, key, 64);
	enum merge_state state;

	*apply = true;
	if (rec->action == DEC_TRUNCATE)
		return truncate_keeping_local(b, t, rec, apply, err, cap);
	if (nkey == 0 || nkey < rec->npk || t->direction == CFG_DIRECTION_PULL)
		return 0; /* (a record that lacks key columns is set aside by the apply) */
	if (row_state(b, t, key, nkey, &state, err, cap))
		return -1;
	trace_state(b, t, rec, key, nkey, state);
	switch (state) {
	case MERGE_PUSHED_UNSEEN:
		*apply = false;
		return 0;
	case MERGE_MOVE_TARGET: /* the local row at this key is the moved one */
		*apply = false;
		note_gone_for_push(b, t, rec, key, nkey);
		if (rec->action == DEC_UPDATE && rec->nidentity)
			return refresh_new_key(b, t, rec, key, nkey, err, cap);
		return 0;
	case MERGE_PENDING_LOCAL:
	case MERGE_PUSHING: /* the push in flight settles it against Postgres */
		*apply = false;
		if (state == MERGE_PENDING_LOCAL && settle_on_pull(b, t, rec, key, nkey, apply, err, cap))
			return -1;
		if (!*apply) /* the local version stays, for the push to settle */
			note_gone_for_push(b, t, rec, key, nkey);
		/* A remote key move whose old key stays local (for the push to
		 * settle): the row at its new key still comes from Postgres. */
		if (!*apply && rec->action == DEC_UPDATE && rec->nidentity)
			return refresh_new_key(b, t, rec, key, nkey, err, cap);
		return 0;
	default: /* agreed */
		return move_onto_pending(b, t, rec, key, nkey, apply, err, cap);
	}
}
