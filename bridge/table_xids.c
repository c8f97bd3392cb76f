/* table_xids.c: the online snapshot's view of Postgres transactions: the
 * copy's REPEATABLE READ snapshot (pg_current_snapshot(): xmin, xmax, the
 * xids in progress) and the WAL position read with it, and the rule that
 * says whether the copy saw a streamed transaction.  The in-progress list
 * is kept until the table is in sync again: a transaction open across the
 * whole copy commits after it, and is one the copy did not see. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "br.h"
#include "table_snap.h"

#define RACE_TRIES 20 /* snapshots retaken while an xid it calls running has ended */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Did the copy see the transaction with this (32-bit) xid? */
bool xids_saw(const struct tsnap_xids *s, uint32_t xid)
{
	if (xid == 0)
		return false;
	uint64_t full = s->xmax + (uint64_t)(int64_t)(int32_t)(xid - (uint32_t)s->xmax);
	if (full < s->xmin)
		return true;
	if (full >= s->xmax)
		return false;
	return !bsearch(&full, s->xip, s->nxip, sizeof *s->xip, cmp_u64);
}

static int parse_snapshot(struct tsnap_xids *s, PGresult *r)
{
	const char *list = PQgetvalue(r, 0, 2);
	size_t n = *list ? 1 : 0;

	free(s->xip);
	s->nxip = 0;

	for (const char *p = list; *p; p++)
		n += *p == ',';
	s->xmin = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
	s->xmax = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
	s->xip = calloc(n ? n : 1, sizeof *s->xip);
	if (!s->xip)
		return -1;
	for (char *p = (char *)list; *p; ) {
		s->xip[s->nxip++] = strtoull(p, &p, 10);
		if (*p == ',')
			p++;
	}
	qsort(s->xip, s->nxip, sizeof *s->xip, cmp_u64);
	const char *lsn = PQgetvalue(r, 0, 3);
	return dec_parse_lsn(lsn, strlen(lsn), &s->wal_lsn);
}

/* BEGIN REPEATABLE READ and its snapshot.  An xid the snapshot calls in
 * progress that has already ended may be one whose commit the stream has
 * already delivered (its WAL is written before it becomes visible): the
 * snapshot is then taken again. */
int xids_take(PGconn *c, struct tsnap_xids *s, char *err, size_t cap)
{
	for (int tries = 1;; tries++) {
		if (pgc_exec_ok(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err, cap))
			return -1;
		PGresult *r = PQexec(c,
			"SELECT pg_snapshot_xmin(s)::text, pg_snapshot_xmax(s)::text, "
			"array_to_string(ARRAY(SELECT pg_snapshot_xip(s)), ','), "
			"pg_current_wal_insert_lsn()::text, (SELECT count(*) FROM pg_snapshot_xip(s) x "
			"WHERE pg_xact_status(x) IS DISTINCT FROM 'in progress') FROM pg_current_snapshot() s");
		if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
			pgc_error_text(c, err, cap);
			PQclear(r);
			return -1;
		}
		bool ended = strcmp(PQgetvalue(r, 0, 4), "0") != 0;
		if (!ended || tries >= RACE_TRIES) {
			int rc = parse_snapshot(s, r);
			PQclear(r);
			if (rc)
				snprintf(err, cap, "cannot read the snapshot");
			return rc;
		}
		PQclear(r);
		if (pgc_exec_ok(c, "ROLLBACK", err, cap))
			return -1;
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

void xids_free(struct tsnap_xids *s)
{
	free(s->xip);
	s->xip = NULL;
	s->nxip = 0;
}
