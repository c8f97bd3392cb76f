/* snapshot.c: `init`: creates the replication slot with an exported
 * snapshot and copies every synced table inside that snapshot, streamed
 * with COPY, so the copy and the stream meet with no gap and no overlap.
 * The copy and the starting position commit to SQLite as one transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br.h"
#include "log.h"

#define PROGRESS_EVERY 10000

/* State kept while one table is copied. */
struct copy_ctx {
	const struct br_table *table;
	struct sl_column *cols;
	size_t ncols;
	struct dec_field *fields; /* one per column, rebuilt for every row */
	struct dec_field *pk;
	size_t npk;
	char *scratch;            /* unescaped row text */
	size_t scratch_cap;
	int64_t done, total;
};

bool snap_is_initialized(struct pgsb *b)
{
	char v[128];

	return sl_state_get(b->db, "initialized", v, sizeof v) == 1 && strcmp(v, "1") == 0 &&
	       sl_state_get(b->db, "slot", v, sizeof v) == 1 && strcmp(v, b->cfg->slot) == 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Unescapes one COPY text field in place semantics: from [s, e) into out.
 * Returns the length written. */
static size_t copy_unescape(const char *s, const char *e, char *out)
{
	size_t o = 0;
	static const char esc_from[] = "btnvfr", esc_to[] = "\b\t\n\v\f\r";

	while (s < e) {
		if (*s != '\\' || s + 1 >= e) {
			out[o++] = *s++;
			continue;
		}
		s++;
		const char *m = strchr(esc_from, *s);
		if (m && *s) {
			out[o++] = esc_to[m - esc_from];
			s++;
		} else if (*s >= '0' && *s <= '7') {
			int v = 0;
			for (int k = 0; k < 3 && s < e && *s >= '0' && *s <= '7'; k++)
				v = v * 8 + (*s++ - '0');
			out[o++] = (char)v;
		} else if (*s == 'x' && s + 1 < e && hexval(s[1]) >= 0) {
			int v = hexval(*++s);
			if (++s < e && hexval(*s) >= 0)
				v = v * 16 + hexval(*s++);
			out[o++] = (char)v;
		} else {
			out[o++] = *s++;
		}
	}
	return o;
}

static int copy_row(struct pgsb *b, struct copy_ctx *cx, const char *row, size_t len,
                    char *err, size_t cap)
{
	struct dec_record rec = {.action = DEC_INSERT};
	const char *p = row, *end = row + len;
	char *out = cx->scratch;
	struct sl_err e;

	if (len > 0 && end[-1] == '\n')
		end--;
	for (size_t i = 0; i < cx->ncols; i++) {
		const char *fe = memchr(p, '\t', (size_t)(end - p));
		if (!fe)
			fe = end;
		struct dec_field *f = &cx->fields[i];
		if (fe - p == 2 && p[0] == '\\' && p[1] == 'N') {
			f->kind = DEC_NULL;
			f->value.p = NULL;
			f->value.len = 0;
		} else {
			size_t n = copy_unescape(p, fe, out);
			pgc_text_field(f, cx->cols[i].typeoid, out, n);
			out += n;
		}
		p = fe < end ? fe + 1 : end;
	}
	rec.schema.p = cx->table->schema;
	rec.schema.len = strlen(cx->table->schema);
	rec.table.p = cx->table->name;
	rec.table.len = strlen(cx->table->name);
	rec.columns = cx->fields;
	rec.ncolumns = cx->ncols;
	rec.pk = cx->pk;
	rec.npk = cx->npk;
	if (sl_apply(b->db, &rec, &e)) {
		snprintf(err, cap, "cannot copy a row into \"%s\": %s", cx->table->local, e.msg);
		return -1;
	}
	return 0;
}

static int copy_ctx_setup(struct copy_ctx *cx)
{
	cx->fields = calloc(cx->ncols, sizeof *cx->fields);
	cx->pk = calloc(cx->ncols, sizeof *cx->pk);
	if (!cx->fields || !cx->pk)
		return -1;
	for (size_t i = 0; i < cx->ncols; i++) {
		struct dec_field *f = &cx->fields[i];
		f->name.p = cx->cols[i].name;
		f->name.len = strlen(cx->cols[i].name);
		f->type.p = cx->cols[i].pg_type;
		f->type.len = strlen(cx->cols[i].pg_type);
		f->typeoid = cx->cols[i].typeoid;
	}
	for (size_t pos = 1; pos <= cx->ncols; pos++)
		for (size_t i = 0; i < cx->ncols; i++)
			if (cx->cols[i].pk_pos == (int)pos)
				cx->pk[cx->npk++] = cx->fields[i];
	return 0;
}

static char *copy_command(const struct copy_ctx *cx)
{
	size_t cap = 64 + 2 * (strlen(cx->table->schema) + strlen(cx->table->name));
	for (size_t i = 0; i < cx->ncols; i++)
		cap += 2 * strlen(cx->cols[i].name) + 4;
	char *sql = malloc(cap), q[600];
	if (!sql)
		return NULL;
	strcpy(sql, "COPY ");
	pgc_quote_ident(cx->table->schema, q, sizeof q);
	strcat(strcat(sql, q), ".");
	pgc_quote_ident(cx->table->name, q, sizeof q);
	strcat(strcat(sql, q), " (");
	for (size_t i = 0; i < cx->ncols; i++) {
		pgc_quote_ident(cx->cols[i].name, q, sizeof q);
		strcat(strcat(sql, i ? ", " : ""), q);
	}
	return strcat(sql, ") TO STDOUT");
}

static int64_t estimate_rows(PGconn *pc, const struct br_table *t)
{
	const char *params[2] = {t->schema, t->name};
	PGresult *r = PQexecParams(pc,
		"SELECT GREATEST(c.reltuples, 0)::bigint FROM pg_class c JOIN pg_namespace n "
		"ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
		2, NULL, params, NULL, NULL, 0);
	int64_t n = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;

	PQclear(r);
	return n;
}

static int copy_stream(struct pgsb *b, PGconn *pc, struct copy_ctx *cx, char *err, size_t cap)
{
	char phase[600];
	char *row;
	int n;

	snprintf(phase, sizeof phase, "snapshot %s.%s", cx->table->schema, cx->table->name);
	ev_emit_progress(b, phase, 0, cx->total > 0 ? cx->total : 1); /* the rate counts from here */
	while ((n = PQgetCopyData(pc, &row, 0)) > 0) {
		if ((size_t)n > cx->scratch_cap) {
			char *s = realloc(cx->scratch, (size_t)n);
			if (!s) {
				PQfreemem(row);
				snprintf(err, cap, "out of memory");
				return -1;
			}
			cx->scratch = s;
			cx->scratch_cap = (size_t)n;
		}
		int rc = copy_row(b, cx, row, (size_t)n, err, cap);
		PQfreemem(row);
		if (rc)
			return -1;
		if (++cx->done % PROGRESS_EVERY == 0)
			ev_emit_progress(b, phase, cx->done, cx->total > cx->done ? cx->total : cx->done);
	}
	PGresult *r = PQgetResult(pc);
	int ok = n == -1 && PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		pgc_error_text(pc, err, cap);
	PQclear(r);
	while ((r = PQgetResult(pc)) != NULL)
		PQclear(r);
	ev_emit_progress(b, phase, cx->done, cx->done);
	return ok ? 0 : -1;
}

static int copy_table(struct pgsb *b, PGconn *pc, const struct br_table *t, bool clear,
                      char *err, size_t cap)
{
	struct copy_ctx cx = {.table = t};
	struct sl_err e;
	int rc = -1;

	if (pgc_table_columns(pc, t, &cx.cols, &cx.ncols, err, cap))
		return -1;
	if (sl_ensure_table(b->db, t->schema, t->name, cx.cols, cx.ncols, &e) ||
	    (clear && sl_clear_table(b->db, t->schema, t->name, &e))) {
		snprintf(err, cap, "cannot prepare \"%s\": %s", t->local, e.msg);
		goto out;
	}
	if (t->direction == CFG_DIRECTION_PUSH) {
		rc = 0; /* the local copy is the source of truth */
		goto out;
	}
	char *sql = copy_command(&cx);
	if (copy_ctx_setup(&cx) || !sql) {
		free(sql);
		snprintf(err, cap, "out of memory");
		goto out;
	}
	cx.total = estimate_rows(pc, t);
	PGresult *r = PQexec(pc, sql);
	free(sql);
	if (PQresultStatus(r) != PGRES_COPY_OUT) {
		pgc_error_text(pc, err, cap);
		PQclear(r);
		goto out;
	}
	PQclear(r);
	rc = copy_stream(b, pc, &cx, err, cap);
	if (rc == 0)
		log_info("copied %lld rows of \"%s.%s\"", (long long)cx.done, t->schema, t->name);
out:
	pgc_free_columns(cx.cols, cx.ncols);
	free(cx.fields);
	free(cx.pk);
	free(cx.scratch);
	return rc;
}

/* Every table must have a primary key: wal2json drops updates and deletes of
 * a table without a replica identity, and the apply goes by key. */
static int require_keys(struct pgsb *b, PGconn *pc, char *err, size_t cap)
{
	for (size_t i = 0; i < b->ntables; i++) {
		struct sl_column *cols;
		size_t n, pk = 0;
		if (pgc_table_columns(pc, &b->tables[i], &cols, &n, err, cap))
			return -1;
		for (size_t k = 0; k < n; k++)
			pk += cols[k].pk_pos > 0;
		int bad_order = limits_check_table(b, &b->tables[i], cols, n, err, cap);
		pgc_free_columns(cols, n);
		if (bad_order)
			return -1;
		if (pk == 0) {
			snprintf(err, cap, "table \"%s.%s\" has no primary key: add one to sync it",
			         b->tables[i].schema, b->tables[i].name);
			return -1;
		}
	}
	return 0;
}

/* Drops a leftover slot of ours (from an unfinished init, or a lost one),
 * on the plain connection: the replication one takes no parameters. */
static int drop_slot_if_exists(PGconn *pc, const char *slot, char *err, size_t cap)
{
	const char *params[1] = {slot};
	PGresult *r = PQexecParams(pc,
		"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
		"WHERE slot_name = $1", 1, NULL, params, NULL, NULL, 0);
	int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : -1;

	if (rc)
		pgc_error_text(pc, err, cap);
	PQclear(r);
	return rc;
}

/* CREATE_REPLICATION_SLOT ... (SNAPSHOT 'export'): the position the stream
 * starts from and the snapshot the copy must use. */
static int create_slot(struct pgsb *b, PGconn *rc, uint64_t *start, char *snapshot,
                       size_t snapcap, char *err, size_t cap)
{
	char q[300], sql[400];

	pgc_quote_ident(b->cfg->slot, q, sizeof q);
	snprintf(sql, sizeof sql, "CREATE_REPLICATION_SLOT %s LOGICAL wal2json (SNAPSHOT 'export')", q);
	PGresult *r = PQexec(rc, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		pgc_error_text(rc, err, cap);
		PQclear(r);
		return -1;
	}
	const char *lsn = PQgetvalue(r, 0, 1);
	int bad = dec_parse_lsn(lsn, strlen(lsn), start);
	snprintf(snapshot, snapcap, "%s", PQgetvalue(r, 0, 2));
	PQclear(r);
	if (bad)
		snprintf(err, cap, "the server returned a bad consistent point");
	return bad ? -1 : 0;
}

static int use_snapshot(PGconn *pc, const char *snapshot, char *err, size_t cap)
{
	char *lit = PQescapeLiteral(pc, snapshot, strlen(snapshot));
	char sql[300];

	if (!lit) {
		pgc_error_text(pc, err, cap);
		return -1;
	}
	snprintf(sql, sizeof sql, "SET TRANSACTION SNAPSHOT %s", lit);
	PQfreemem(lit);
	if (pgc_exec_ok(pc, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err, cap))
		return -1;
	return pgc_exec_ok(pc, sql, err, cap);
}

static int record_start(struct pgsb *b, uint64_t start, char *err, size_t cap)
{
	char lsn[32], now[40];
	struct sl_err e;

	dec_format_lsn(start, lsn, sizeof lsn);
	log_iso_time(now, sizeof now);
	if (sl_state_set(b->db, "applied_lsn", lsn, &e) || sl_state_set(b->db, "slot", b->cfg->slot, &e) ||
	    sl_state_set(b->db, "initialized", "1", &e) || sl_state_set(b->db, "initialized_at", now, &e) ||
	    sl_state_set(b->db, "last_sync", now, &e)) {
		snprintf(err, cap, "cannot record state: %s", e.msg);
		return -1;
	}
	if (tstate_mark_all_copied(b, err, cap)) /* table_state.c */
		return -1;
	b->repl.committed_lsn = b->repl.ack_lsn = b->repl.pending_lsn = start;
	return 0;
}

/* The copy inside the snapshot, all in one SQLite transaction. */
static int copy_all(struct pgsb *b, PGconn *pc, uint64_t start, bool clear, char *err, size_t cap)
{
	struct sl_err e;

	if (sl_begin(b->db, &e)) {
		snprintf(err, cap, "cannot begin a SQLite transaction: %s", e.msg);
		return -1;
	}
	for (size_t i = 0; i < b->ntables; i++)
		if (copy_table(b, pc, &b->tables[i], clear, err, cap))
			goto fail;
	/* Local work not pushed yet stays on top of the fresh copy. */
	if (reapply_pending(b, NULL, err, cap) || limits_prune_in_batch(b, err, cap) ||
	    record_start(b, start, err, cap))
		goto fail;
	if (sl_commit(b->db, &e)) {
		snprintf(err, cap, "cannot commit to SQLite: %s", e.msg);
		goto fail;
	}
	limits_after_commit(b);
	return 0;
fail:
	sl_rollback(b->db);
	return -1;
}

static int ensure_local_tables(struct pgsb *b, PGconn *pc, char *err, size_t cap)
{
	for (size_t i = 0; i < b->ntables; i++) {
		const struct br_table *t = &b->tables[i];
		struct sl_column *cols;
		size_t n;
		struct sl_err e;
		if (pgc_table_columns(pc, t, &cols, &n, err, cap))
			return -1;
		int rc = sl_ensure_table(b->db, t->schema, t->name, cols, n, &e);
		pgc_free_columns(cols, n);
		if (rc) {
			snprintf(err, cap, "cannot create \"%s\": %s", t->local, e.msg);
			return -1;
		}
	}
	return 0;
}

/* The replication origin the push side runs under (named like the slot):
 * the slot filters it, so our own pushes never come back. */
static int ensure_origin(struct pgsb *b, PGconn *pc, char *err, size_t cap)
{
	const char *params[1] = {b->cfg->slot};
	PGresult *r = PQexecParams(pc,
		"SELECT pg_replication_origin_create($1) WHERE NOT EXISTS "
		"(SELECT 1 FROM pg_replication_origin WHERE roname = $1)",
		1, NULL, params, NULL, NULL, 0);
	int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : -1;

	if (rc)
		pgc_error_text(pc, err, cap);
	PQclear(r);
	return rc;
}

static bool any_push(const struct pgsb *b)
{
	for (size_t i = 0; i < b->ntables; i++)
		if (b->tables[i].direction != CFG_DIRECTION_PULL)
			return true;
	return false;
}

/* Change-log triggers on every table that pushes; none on pull-only ones. */
static int install_capture(struct pgsb *b, char *err, size_t cap)
{
	struct sl_err e;

	for (size_t i = 0; i < b->ntables; i++) {
		const struct br_table *t = &b->tables[i];
		int rc = t->direction == CFG_DIRECTION_PULL ? sl_capture_remove(b->db, t->local, &e)
		                                            : sl_capture_install(b->db, t->local, &e);
		if (rc) {
			snprintf(err, cap, "cannot install the change-log triggers on \"%s\": %s", t->local, e.msg);
			return -1;
		}
	}
	return 0;
}

static int slot_exists(PGconn *pc, const char *slot)
{
	const char *params[1] = {slot};
	PGresult *r = PQexecParams(pc, "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1",
	                           1, NULL, params, NULL, NULL, 0);
	int rc = PQresultStatus(r) != PGRES_TUPLES_OK ? -1 : PQntuples(r) == 1;

	PQclear(r);
	return rc;
}

/* Slot, snapshot, copy.  With resync, local copies are emptied first (the
 * old slot was lost, so what they hold may be stale). */
static int snapshot_copy(struct pgsb *b, PGconn *pc, bool resync, char *err, size_t cap)
{
	PGconn *rc = pgc_connect(b, true, err, cap);
	char snapshot[128];
	uint64_t start;
	int res = -1;

	if (!rc)
		return -1;
	if (drop_slot_if_exists(pc, b->cfg->slot, err, cap) == 0 &&
	    create_slot(b, rc, &start, snapshot, sizeof snapshot, err, cap) == 0 &&
	    use_snapshot(pc, snapshot, err, cap) == 0)
		res = copy_all(b, pc, start, resync, err, cap);
	if (res == 0) {
		res = pgc_exec_ok(pc, "COMMIT", err, cap);
	} else {
		char ignored[512];
		(void)pgc_exec_ok(pc, "ROLLBACK", ignored, sizeof ignored);
	}
	PQfinish(rc);
	if (res == 0) {
		char lsn[32];
		dec_format_lsn(start, lsn, sizeof lsn);
		log_info("slot \"%s\" created; tables copied as of %s", b->cfg->slot, lsn);
	}
	return res;
}

/* An initialised file whose slot is gone (dropped, or a restored backup):
 * as loud and as counted as a slot lost while running. */
static void report_missing_slot(struct pgsb *b)
{
	char msg[300];

	snprintf(msg, sizeof msg, "replication slot \"%s\" does not exist; resynchronising from a new slot",
	         b->cfg->slot);
	log_error("%s", msg);
	ev_emit_error(b, msg, true);
	atomic_fetch_add(&b->metrics.resyncs, 1);
}

int snap_init(struct pgsb *b, bool resync, char *err, size_t cap)
{
	PGconn *pc = pgc_connect(b, false, err, cap);
	int rc = -1;

	if (!pc)
		return -1;
	if (pgc_resolve_tables(b, pc, err, cap) || require_keys(b, pc, err, cap))
		goto out;
	if (any_push(b) && ensure_origin(b, pc, err, cap))
		goto out;
	int exists = slot_exists(pc, b->cfg->slot);
	if (!resync && exists == 0 && snap_is_initialized(b))
		report_missing_slot(b);
	if (!resync && exists == 1 && snap_is_initialized(b))
		rc = ensure_local_tables(b, pc, err, cap); /* already done: idempotent */
	else
		rc = snapshot_copy(b, pc, resync || snap_is_initialized(b), err, cap);
	if (rc == 0)
		rc = install_capture(b, err, cap);
	/* The new slot already confirms its start: the copy must be on disk
	 * before anything relies on it (the pull's commits are not synced
	 * one by one). */
	struct sl_err e = {0};
	if (rc == 0 && sl_wal_sync(b->db, &e)) {
		snprintf(err, cap, "cannot sync the copied tables to disk: %s", e.msg);
		rc = -1;
	}
out:
	PQfinish(pc);
	return rc;
}
