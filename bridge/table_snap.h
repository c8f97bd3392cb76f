/* table_snap.h: the online table snapshot's parts (table_snap.c, the
 * machine; table_snapq.c, the queue of streamed changes held behind the
 * copy; table_shadow.c, the shadow table it copies into; table_state.c,
 * each table's durable state). */
#ifndef PGSB_TABLE_SNAP_H
#define PGSB_TABLE_SNAP_H

#include "br.h"

/* A table's phase (struct br_table.snap_phase). */
enum tsnap_phase {
	TSNAP_NONE,    /* streamed changes applied as usual */
	TSNAP_PENDING, /* waiting for its turn: streamed changes dropped (the copy brings them) */
	TSNAP_COPY,    /* copying into the shadow table: changes the copy saw dropped, the
	                  others queued */
	TSNAP_REAPPLY, /* copied: pending local changes re-applied to the shadow, then the
	                  shadow swapped in; changes still dropped or queued */
	TSNAP_DRAIN,   /* copied: the queue replayed in order; new changes still queued */
	TSNAP_FILTER,  /* queue empty: changes the copy saw dropped until the stream passes
	                  the copy's position, the others applied */
};

/* table_xids.c: the copy's snapshot. */
struct tsnap_xids {
	uint64_t xmin, xmax;
	uint64_t *xip;    /* in progress, sorted */
	size_t nxip;
	uint64_t wal_lsn; /* WAL insert position read with the snapshot */
};
/* BEGIN REPEATABLE READ READ ONLY on c and its snapshot into s. */
int xids_take(PGconn *c, struct tsnap_xids *s, char *err, size_t cap);
/* Did the copy see the transaction with this (32-bit) xid? */
bool xids_saw(const struct tsnap_xids *s, uint32_t xid);
void xids_free(struct tsnap_xids *s);

enum tstate { TSTATE_COPIED, TSTATE_SKIPPED, TSTATE_SNAPSHOT };

/* table_state.c */
enum tstate tstate_get(struct pgsb *b, const struct br_table *t);
int tstate_set(struct pgsb *b, const struct br_table *t, const char *state, char *err, size_t cap);
bool tstate_pulled(const struct br_table *t);
int tstate_plan(struct pgsb *b, char *err, size_t cap);

/* table_snapq.c: streamed changes queued in _pgsqlite_snapq, in the
 * pull's open transaction (so they are exactly as durable as the stream
 * position that follows them). */
int snapq_ensure(struct pgsb *b, char *err, size_t cap);
/* *st caches the statement (finalized by the caller). */
int snapq_append(struct pgsb *b, sqlite3_stmt **st, const struct br_table *t,
                 const struct dec_record *rec, char *err, size_t cap);
/* Replays up to max queued changes of t in order through the pull's
 * merge point and deletes them.  Returns how many, or -1. */
int snapq_replay(struct pgsb *b, const struct br_table *t, struct dec_parser *p, int max,
                 char *err, size_t cap);
int snapq_clear(struct pgsb *b, const struct br_table *t, char *err, size_t cap);

/* table_shadow.c: the shadow table a copy goes into (all in the pull's
 * open transaction). */
void shadow_name(const struct br_table *t, char *buf, size_t cap);
int shadow_create(struct pgsb *b, const struct br_table *t, char *err, size_t cap);
int shadow_swap(struct pgsb *b, const struct br_table *t, char *err, size_t cap);
int shadow_clean_step(struct pgsb *b, char *err, size_t cap);

#endif
