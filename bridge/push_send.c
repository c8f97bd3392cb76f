/* push_send.c: a batch's statements sent to Postgres: BEGIN with the
 * push's transaction id and origin token, the bulk inserts, then every
 * other statement in one pipeline, and each result matched to its entry. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "push_int.h"


/* Sends what libpq holds, reading results meanwhile so neither side
 * blocks on a full socket. */
static int flush_pipeline(PGconn *c)
{
	int rc;

	while ((rc = PQflush(c)) == 1) {
		struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN | POLLOUT};
		if (poll(&pfd, 1, 10000) <= 0)
			return -1;
		if ((pfd.revents & POLLIN) && !PQconsumeInput(c))
			return -1;
	}
	return rc;
}

static int send_query(PGconn *c, const char *sql, struct params *p)
{
	int ok = PQsendQueryParams(c, sql, p ? p->n : 0, NULL,
	                           p ? (const char *const *)p->v : NULL, NULL, NULL, 0);
	return ok && flush_pipeline(c) == 0 ? 0 : -1;
}

static int send_statements(struct pgsb *b, struct batch *bt, bool *sent)
{
	PGconn *c = b->push.conn;
	struct params p = {0};

	for (size_t i = 0; i < bt->ne; i++) {
		char *sql = NULL;
		if (bt->e[i].sent)
			continue; /* went in a bulk insert */
		int rc = push__entry_sql(b, &bt->e[i], &sql, &p);
		if (rc < 0)
			return -1;
		sent[i] = rc == 1 && send_query(c, sql, &p) == 0;
		bt->e[i].sent = sent[i];
		if (rc == 1 && !sent[i]) {
			free(sql);
			push__params_free(&p);
			return -1;
		}
		if (rc == 0)
			bt->e[i].outcome = OUT_REFRESH;
		free(sql);
		push__params_free(&p);
	}
	return PQpipelineSync(c) && flush_pipeline(c) == 0 ? 0 : -1;
}

/* Runs n statements in one pipeline, one round trip; r[i] gets each
 * statement's result (NULL when the connection failed first; the caller
 * clears them).  0 when every one succeeded. */
int push__pipelined(PGconn *c, const struct push_stmt *s, size_t n, PGresult **r)
{
	bool ok = PQenterPipelineMode(c);

	for (size_t i = 0; i < n; i++)
		r[i] = NULL;
	for (size_t i = 0; ok && i < n; i++)
		ok = PQsendQueryParams(c, s[i].sql, s[i].nparams, NULL, s[i].params, NULL, NULL, 0);
	ok = ok && PQpipelineSync(c);
	for (size_t i = 0; ok && i < n; i++) {
		PGresult *extra;
		r[i] = PQgetResult(c);
		ok = r[i] != NULL;
		while (ok && (extra = PQgetResult(c)) != NULL)
			PQclear(extra);
	}
	if (ok) {
		PGresult *sync = PQgetResult(c);
		ok = PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
		PQclear(sync);
	}
	PQexitPipelineMode(c);
	for (size_t i = 0; ok && i < n; i++)
		ok = PQresultStatus(r[i]) == PGRES_COMMAND_OK || PQresultStatus(r[i]) == PGRES_TUPLES_OK;
	return ok ? 0 : -1;
}

/* The first error of a pipeline's results, or the connection's. */
void push__pipelined_error(PGconn *c, PGresult *const *r, size_t n, char *err, size_t cap)
{
	for (size_t i = 0; i < n; i++)
		if (r[i] && PQresultStatus(r[i]) == PGRES_FATAL_ERROR) {
			const char *m = PQresultErrorMessage(r[i]);
			size_t len = strlen(m);
			while (len > 0 && (m[len - 1] == '\n' || m[len - 1] == ' '))
				len--;
			snprintf(err, cap, "%.*s", (int)len, m);
			for (char *p = err; *p; p++)
				if (*p == '\n')
					*p = ' ';
			return;
		}
	pgc_error_text(c, err, cap);
}

/* Takes one query's result (and the NULL after it). */
static PGresult *take_result(struct pgsb *b, PGconn *c, char *err, size_t cap)
{
	PGresult *r = PQgetResult(c), *extra;
	ExecStatusType st = PQresultStatus(r);

	while ((extra = PQgetResult(c)) != NULL)
		PQclear(extra);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		push__note_sqlstate(b, r);
		if (!err[0])
			snprintf(err, cap, "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(c));
		PQclear(r);
		return NULL;
	}
	return r;
}

static int collect_results(struct pgsb *b, struct batch *bt, const bool *sent, char *err,
                           size_t cap)
{
	PGconn *c = b->push.conn;
	int failed = 0;

	PQsetnonblocking(c, 0);
	for (size_t i = 0; i < bt->ne; i++) {
		if (!sent[i])
			continue;
		PGresult *r = take_result(b, c, err, cap);
		failed |= r == NULL;
		push__entry_own_result(&bt->e[i], r);
	}
	PGresult *sync = PQgetResult(c);
	if (PQresultStatus(sync) != PGRES_PIPELINE_SYNC)
		failed = 1;
	PQclear(sync);
	PQexitPipelineMode(c);
	return failed ? -1 : 0;
}

/* BEGIN, the transaction's id (xid8) and a token set as the origin's
 * progress, which commits with it.  Both are written down before the
 * commit; after a crash the push counts as committed only when Postgres
 * says the xid committed and the origin's progress reached the token (an
 * xid whose WAL never reached disk can be handed out again after a
 * crash; the token cannot). */
static int begin_remote(struct pgsb *b, struct batch *bt, char *err, size_t cap)
{
	char token[32];
	const char *params[1] = {token};
	const struct push_stmt s[2] = {
		{"BEGIN", 0, NULL},
		{"SELECT pg_current_xact_id()::text, pg_replication_origin_xact_setup($1::pg_lsn, now())",
		 1, params},
	};
	PGresult *r[2];

	bt->token = (uint64_t)br_now_us();
	dec_format_lsn(bt->token, token, sizeof token);
	int rc = push__pipelined(b->push.conn, s, 2, r);
	if (rc == 0 && PQntuples(r[1]) == 1)
		snprintf(bt->xid, sizeof bt->xid, "%s", PQgetvalue(r[1], 0, 0));
	else
		push__pipelined_error(b->push.conn, r, 2, err, cap);
	rc = bt->xid[0] ? 0 : -1;
	PQclear(r[0]);
	PQclear(r[1]);
	return rc;
}

int push__pipeline_batch(struct pgsb *b, struct batch *bt, char *err, size_t cap)
{
	bool *sent = calloc(bt->ne ? bt->ne : 1, sizeof *sent);
	int rc = -1;

	err[0] = '\0';
	if (sent && begin_remote(b, bt, err, cap) == 0 && push__bulk_inserts(b, bt, err, cap) == 0 &&
	    PQenterPipelineMode(b->push.conn)) {
		PQsetnonblocking(b->push.conn, 1);
		if (send_statements(b, bt, sent) == 0)
			rc = collect_results(b, bt, sent, err, cap);
		else
			pgc_error_text(b->push.conn, err, cap);
	}
	free(sent);
	return rc;
}
