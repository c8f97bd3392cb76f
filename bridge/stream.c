/* stream.c: the logical replication protocol on a libpq connection:
 * START_REPLICATION with wal2json's options, the XLogData ('w') and
 * keepalive ('k') messages, and standby status updates ('r') that report as
 * flushed only what SQLite holds durably.  Modelled on the small steps of
 * PostgreSQL's receivelog.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br.h"
#include "log.h"

#define PG_EPOCH_OFFSET_US 946684800000000LL /* 1970-01-01 -> 2000-01-01 */
#define DRAIN_BATCH 2000                     /* messages per callback before yielding */

static uint64_t be64(const char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | (unsigned char)p[i];
	return v;
}

static void put_be64(char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (char)(v & 0xff);
}

void repl_send_feedback(struct pgsb *b, bool reply_requested)
{
	struct repl *r = &b->repl;
	char msg[34];
	int64_t now = br_now_us();

	if (!r->conn || r->state == REPL_IDLE)
		return;
	/* Only what is on disk is acknowledged: the pull's commits are not
	 * synced one by one (bridge.c), so the log is synced here first. */
	struct sl_err e = {0};
	if (sl_wal_sync(b->db, &e)) {
		snprintf(r->sync_error, sizeof r->sync_error, "%.200s", e.msg);
		r->send_failed = true; /* fatal: see tick_streaming */
		return;
	}
	msg[0] = 'r';
	put_be64(msg + 1, r->received_lsn > r->ack_lsn ? r->received_lsn : r->ack_lsn);
	put_be64(msg + 9, r->ack_lsn);
	put_be64(msg + 17, r->ack_lsn);
	put_be64(msg + 25, (uint64_t)(now - PG_EPOCH_OFFSET_US));
	msg[33] = reply_requested ? 1 : 0;
	if (PQputCopyData(r->conn, msg, sizeof msg) < 0 || PQflush(r->conn) < 0) {
		if (!r->send_failed)
			log_warn("could not send feedback: %s", PQerrorMessage(r->conn));
		r->send_failed = true;
		return;
	}
	r->last_feedback_us = now;
	if (reply_requested)
		r->last_reply_req_us = now;
}

/* Escapes a name for wal2json's add-tables list: backslash before the
 * characters the list syntax uses. */
static size_t add_tables_escape(const char *s, char *out, size_t cap)
{
	size_t o = 0;

	for (; *s && o + 2 < cap; s++) {
		if (strchr(" ',.*\\", *s))
			out[o++] = '\\';
		out[o++] = *s;
	}
	out[o] = '\0';
	return o;
}

/* "schema.table,schema.table" of the tables pulled from Postgres. */
static char *add_tables_list(struct pgsb *b)
{
	size_t cap = 64, len = 0;
	char *list = malloc(cap);

	if (!list)
		return NULL;
	list[0] = '\0';
	for (size_t i = 0; i < b->ntables; i++) {
		const struct br_table *t = &b->tables[i];
		char s[520], n[520];
		if (t->direction == CFG_DIRECTION_PUSH)
			continue;
		add_tables_escape(t->schema, s, sizeof s);
		add_tables_escape(t->name, n, sizeof n);
		size_t need = len + strlen(s) + strlen(n) + 3;
		if (need > cap) {
			cap = need * 2;
			char *grown = realloc(list, cap);
			if (!grown) {
				free(list);
				return NULL;
			}
			list = grown;
		}
		len += (size_t)sprintf(list + len, "%s%s.%s", len ? "," : "", s, n);
	}
	return list;
}

/* The numeric id of our replication origin ("" when there is none):
 * wal2json's filter-origins takes ids, not names. */
static void origin_id(struct pgsb *b, char *buf, size_t cap)
{
	char *lit = pgc_quote_literal(b->cfg->slot), *sql = NULL;

	buf[0] = '\0';
	if (lit && asprintf(&sql, "SELECT roident FROM pg_replication_origin WHERE roname = %s", lit) >= 0) {
		PGresult *r = PQexec(b->repl.conn, sql);
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
			snprintf(buf, cap, "%s", PQgetvalue(r, 0, 0));
		PQclear(r);
	}
	free(sql);
	free(lit);
}

/* Can Postgres change a synced table as a side effect of our push (a
 * user trigger on a synced table, or a cascading foreign key into one)?
 * Then our own transactions must come back through the stream, so those
 * side effects reach this client; the rows the push itself wrote are
 * skipped there (_pgsqlite_pushed holds them at our commit's LSN).
 * Otherwise the slot filters our origin and nothing of ours comes back. */
static bool push_has_side_effects(struct pgsb *b)
{
	char *list = NULL, *sql = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&list, &len);
	bool yes = false;

	for (size_t i = 0; m && i < b->ntables; i++) {
		char *lit = pgc_quote_literal(b->tables[i].qualified);
		fprintf(m, "%s%s::regclass", i ? ", " : "", lit ? lit : "NULL");
		free(lit);
	}
	if (m)
		fclose(m);
	if (list && b->ntables && asprintf(&sql,
		"SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid IN (%s) AND NOT tgisinternal) "
		"OR EXISTS (SELECT 1 FROM pg_constraint WHERE contype = 'f' AND conrelid IN (%s) AND "
		"(confdeltype IN ('c', 'n', 'd') OR confupdtype IN ('c', 'n', 'd')))", list, list) >= 0) {
		PGresult *r = PQexec(b->repl.conn, sql);
		yes = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
		      strcmp(PQgetvalue(r, 0, 0), "t") == 0;
		PQclear(r);
	}
	free(sql);
	free(list);
	return yes;
}

/* START_REPLICATION with our wal2json options; the command is built with
 * quoted identifiers and escaped literals (the replication protocol only
 * takes simple queries, so there are no bound parameters here). */
static char *start_command(struct pgsb *b)
{
	char slot[300], lsn[32], origin[32], filter[64] = "";
	char *tables = add_tables_list(b);
	char *lit = tables ? pgc_quote_literal(tables) : NULL;
	char *cmd = NULL;

	pgc_quote_ident(b->cfg->slot, slot, sizeof slot);
	dec_format_lsn(b->repl.ack_lsn, lsn, sizeof lsn);
	origin_id(b, origin, sizeof origin);
	if (origin[0] && !push_has_side_effects(b))
		snprintf(filter, sizeof filter, ", \"filter-origins\" '%s'", origin);
	if (lit && asprintf(&cmd,
		"START_REPLICATION SLOT %s LOGICAL %s (\"format-version\" '2', "
		"\"include-transaction\" '1', \"include-lsn\" '1', \"include-xids\" '1', "
		"\"include-timestamp\" '1', \"include-origin\" '1', \"include-pk\" '1', "
		"\"include-type-oids\" '1', \"add-tables\" %s%s)", slot, lsn, lit, filter) < 0)
		cmd = NULL;
	free(lit);
	free(tables);
	return cmd;
}

/* The server's WAL insert position: everything committed so far, even
 * with synchronous_commit off, lies below it. */
static int server_position(struct pgsb *b, char *err, size_t cap)
{
	PGresult *res = PQexec(b->repl.conn, "SELECT pg_current_wal_insert_lsn()");
	int rc = -1;

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		const char *pos = PQgetvalue(res, 0, 0);
		rc = dec_parse_lsn(pos, strlen(pos), &b->repl.server_lsn);
		if (rc)
			snprintf(err, cap, "the server returned a bad position \"%s\"", pos);
	} else {
		pgc_error_text(b->repl.conn, err, cap);
	}
	PQclear(res);
	return rc;
}

/* 0 if the slot exists and can stream, -2 if it does not exist, -3 if the
 * server says it is lost (past max_slot_wal_keep_size), -1 on error. */
static int check_slot(struct pgsb *b, char *err, size_t cap)
{
	char *lit = pgc_quote_literal(b->cfg->slot);
	char *sql = NULL;
	int rc = -1;

	if (!lit || asprintf(&sql, "SELECT wal_status, plugin FROM pg_replication_slots "
	                           "WHERE slot_name = %s", lit) < 0) {
		free(lit);
		snprintf(err, cap, "out of memory");
		return -1;
	}
	PGresult *res = PQexec(b->repl.conn, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		pgc_error_text(b->repl.conn, err, cap);
	else if (PQntuples(res) == 0)
		rc = -2, snprintf(err, cap, "replication slot \"%s\" does not exist", b->cfg->slot);
	else if (strcmp(PQgetvalue(res, 0, 0), "lost") == 0)
		rc = -3, snprintf(err, cap, "replication slot \"%s\" is lost: the server removed WAL it needed", b->cfg->slot);
	else
		rc = 0;
	PQclear(res);
	free(sql);
	free(lit);
	return rc;
}

static int send_start(struct pgsb *b, char *err, size_t cap)
{
	char *cmd = start_command(b);

	if (!cmd) {
		snprintf(err, cap, "out of memory");
		return -1;
	}
	PGresult *res = PQexec(b->repl.conn, cmd);
	free(cmd);
	if (PQresultStatus(res) != PGRES_COPY_BOTH) {
		pgc_error_text(b->repl.conn, err, cap);
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		bool lost = state && strcmp(state, "55000") == 0 && strstr(err, "can no longer");
		PQclear(res);
		return lost ? -3 : -1;
	}
	PQclear(res);
	return 0;
}

int repl_start(struct pgsb *b, char *err, size_t cap)
{
	struct repl *r = &b->repl;
	int rc;

	r->conn = pgc_connect(b, true, err, cap);
	if (!r->conn)
		return -1;
	if ((rc = server_position(b, err, cap)) == 0 && (rc = check_slot(b, err, cap)) == 0)
		rc = send_start(b, err, cap);
	if (rc) {
		PQfinish(r->conn);
		r->conn = NULL;
		return rc;
	}
	PQsetnonblocking(r->conn, 1);
	r->state = REPL_STREAMING;
	r->send_failed = false;
	r->in_xact = r->skipping = false;
	r->last_recv_us = r->started_us = br_now_us();
	r->target_nudged = false;
	ev_io_init(&r->io, repl_on_readable, PQsocket(r->conn), EV_READ);
	r->io.data = b;
	ev_io_start(b->loop, &r->io);
	if (r->paused)
		ev_io_stop(b->loop, &r->io); /* the push holds its commit window */
	repl_send_feedback(b, false);
	return 0;
}

/* The push's commit window: while paused nothing is read from the stream
 * (the server keeps it), so no remote transaction is applied between the
 * push's Postgres commit and its local mark. */
void repl_pause(struct pgsb *b, bool pause)
{
	struct repl *r = &b->repl;

	r->paused = pause;
	if (r->state == REPL_IDLE || !b->loop)
		return;
	if (pause) {
		ev_io_stop(b->loop, &r->io);
		ev_idle_stop(b->loop, &r->more);
	} else {
		ev_io_start(b->loop, &r->io);
		ev_idle_start(b->loop, &r->more); /* libpq may hold messages already */
	}
}

void repl_close(struct pgsb *b)
{
	struct repl *r = &b->repl;

	if (b->loop) {
		ev_io_stop(b->loop, &r->io);
		ev_idle_stop(b->loop, &r->more);
	}
	PQfinish(r->conn);
	r->conn = NULL;
	r->state = REPL_IDLE;
	r->in_xact = r->skipping = false;
}

/* Commits what is applied, reports it, and sends CopyDone. */
void repl_request_end(struct pgsb *b)
{
	struct repl *r = &b->repl;
	char err[512];

	if (r->state != REPL_STREAMING || r->in_xact)
		return;
	if (pull_commit_batch(b, err, sizeof err)) {
		run_connection_lost(b, err, true);
		return;
	}
	repl_send_feedback(b, false);
	PQputCopyEnd(r->conn, NULL);
	PQflush(r->conn);
	r->state = REPL_STOPPING;
}

static void check_target(struct pgsb *b, uint64_t pos)
{
	struct repl *r = &b->repl;

	/* `sync` streams on while a table's online copy needs the stream */
	if (r->target_lsn && !r->in_xact && pos >= r->target_lsn && !(b->one_shot && tsnap_busy(b)))
		r->target_reached = true;
}

static int on_keepalive(struct pgsb *b, const char *buf, int n, char *err, size_t cap)
{
	struct repl *r = &b->repl;

	if (n < 18) {
		snprintf(err, cap, "keepalive message too short (%d bytes)", n);
		return -1;
	}
	uint64_t wal_end = be64(buf + 1);
	metrics_server_lsn(&b->metrics, wal_end);
	/* Nothing in flight, and every transaction before wal_end applied:
	 * the slot may advance.  Never after CopyDone: the data we drop then
	 * lies below the keepalive's position. */
	if (r->state == REPL_STREAMING && !r->in_xact && !sl_in_txn(b->db) && wal_end > r->ack_lsn)
		r->ack_lsn = wal_end;
	check_target(b, wal_end);
	if (buf[17])
		repl_send_feedback(b, false);
	return 0;
}

static int on_xlogdata(struct pgsb *b, const char *buf, int n, char *err, size_t cap)
{
	struct repl *r = &b->repl;
	struct dec_record rec;
	struct dec_error derr;

	if (n < 25) {
		snprintf(err, cap, "XLogData message too short (%d bytes)", n);
		return -1;
	}
	uint64_t start = be64(buf + 1);
	metrics_server_lsn(&b->metrics, be64(buf + 9)); /* the server's WAL end */
	if (start > r->received_lsn)
		r->received_lsn = start;
	if (r->state == REPL_STOPPING)
		return 0; /* after CopyDone: not applied, not acknowledged, resent next time */
	if (dec_parse(&b->dec, buf + 25, (size_t)n - 25, &rec, &derr)) {
		char lsn[32];
		dec_format_lsn(start, lsn, sizeof lsn);
		snprintf(err, cap, "malformed wal2json message at %s: %s at byte %zu",
		         lsn, derr.msg, derr.offset);
		return -1;
	}
	if (pull_handle_record(b, &rec, err, cap))
		return -1;
	if (rec.action == DEC_COMMIT)
		check_target(b, r->pending_lsn > r->ack_lsn ? r->pending_lsn : r->ack_lsn);
	return 0;
}

static int handle_message(struct pgsb *b, const char *buf, int n, char *err, size_t cap)
{
	b->repl.last_recv_us = br_now_us();
	if (n < 1) {
		snprintf(err, cap, "empty message in the replication stream");
		return -1;
	}
	switch (buf[0]) {
	case 'w':
		return on_xlogdata(b, buf, n, err, cap);
	case 'k':
		return on_keepalive(b, buf, n, err, cap);
	default:
		snprintf(err, cap, "unexpected message type 0x%02x in the replication stream",
		         (unsigned char)buf[0]);
		return -1;
	}
}

/* The server ended the COPY (after our CopyDone, or on its own). */
static void on_copy_end(struct pgsb *b)
{
	struct repl *r = &b->repl;
	bool ours = r->state == REPL_STOPPING;
	char err[512] = "";
	PGresult *res;

	if (!ours)
		PQputCopyEnd(r->conn, NULL);
	while ((res = PQgetResult(r->conn)) != NULL) {
		if (PQresultStatus(res) == PGRES_FATAL_ERROR && !err[0])
			pgc_error_text(r->conn, err, sizeof err);
		PQclear(res);
	}
	if (ours) {
		repl_close(b);
		if (b->stopping || b->one_shot)
			ev_break(b->loop, EVBREAK_ALL);
		return;
	}
	run_connection_lost(b, err[0] ? err : "the server ended replication", true);
}

/* After the socket is drained: group commit what is applied, report it. */
static void after_drain(struct pgsb *b)
{
	struct repl *r = &b->repl;
	char err[512];

	/* Every mode: what is applied becomes visible (and the write lock is
	 * released) as soon as the socket is drained. */
	if (!r->in_xact && sl_in_txn(b->db)) {
		if (pull_commit_batch(b, err, sizeof err)) {
			run_connection_lost(b, err, true);
			return;
		}
		repl_send_feedback(b, false);
	}
	if (r->state == REPL_STREAMING && !r->in_xact &&
	    (b->stopping || run_session_at_end(b) || b->limits.hold_pull))
		repl_request_end(b); /* held: storage_limit (limits.c) */
}

/* Takes up to DRAIN_BATCH complete messages from libpq's buffer.  Returns
 * 1 when more may be waiting, 0 when drained, -1 when the connection is
 * gone (already handled). */
static int drain_some(struct pgsb *b)
{
	char err[512];

	for (int i = 0; i < DRAIN_BATCH; i++) {
		char *buf = NULL;
		int n = PQgetCopyData(b->repl.conn, &buf, 1);
		if (n == 0)
			return 0;
		if (n == -1) {
			on_copy_end(b);
			return -1;
		}
		if (n < 0) {
			pgc_error_text(b->repl.conn, err, sizeof err);
			run_connection_lost(b, err, true);
			return -1;
		}
		int rc = handle_message(b, buf, n, err, sizeof err);
		PQfreemem(buf);
		if (rc) {
			run_connection_lost(b, err, true);
			return -1;
		}
		if (b->repl.state == REPL_STREAMING && !b->repl.in_xact &&
		    (b->stopping || b->repl.target_reached || b->boundary_wanted ||
		     b->limits.hold_pull))
			return 0; /* boundary_wanted: an online snapshot's step goes here;
			             hold_pull: storage_limit (limits.c) */
	}
	return 1;
}

static void drain(struct pgsb *b)
{
	if (b->repl.paused) {
		ev_idle_stop(b->loop, &b->repl.more);
		return;
	}
	int rc = drain_some(b);

	if (rc < 0)
		return;
	if (rc > 0) {
		/* Let timers and signals run, then continue. */
		ev_idle_start(b->loop, &b->repl.more);
		if (br_now_us() - b->repl.last_feedback_us > 2000000)
			repl_send_feedback(b, false);
		return;
	}
	ev_idle_stop(b->loop, &b->repl.more);
	after_drain(b);
}

void repl_on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pgsb *b = w->data;
	char err[512];

	(void)loop;
	(void)revents;
	if (!PQconsumeInput(b->repl.conn)) {
		pgc_error_text(b->repl.conn, err, sizeof err);
		run_connection_lost(b, err, true);
		return;
	}
	drain(b);
}

void repl_on_more(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct pgsb *b = w->data;

	(void)loop;
	(void)revents;
	if (b->repl.state == REPL_IDLE) {
		ev_idle_stop(b->loop, w);
		return;
	}
	drain(b);
}
