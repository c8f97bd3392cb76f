/* table_snap.h: the online table snapshot's parts (table_snap.c, the
 * machine; table_snapq.c, the queue of streamed changes held behind the
 * copy; table_state.c, each table's durable state). */
#ifndef PGSB_TABLE_SNAP_H
#define PGSB_TABLE_SNAP_H

#include "br.h"

/* A table's phase (struct br_table.snap_phase). */
enum tsnap_phase {
	TSNAP_NONE,    /* streamed changes applied as usual */
	TSNAP_PENDING, /* waiting for its turn: streamed changes dropped (the copy brings them) */
	TSNAP_COPY,    /* copying: changes the copy saw dropped, the others queued */
	TSNAP_DRAIN,   /* copied: the queue replayed in order; new changes still queued */
	TSNAP_FILTER,  /* queue empty: changes the copy saw dropped until the stream passes
	                  the copy's position, the others applied */
};

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

#endif
