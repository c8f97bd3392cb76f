/* soak.h: the randomized model test's driver (soak_ops.c) and its cases
 * (soak.c).  One process issues random operations, one at a time, each by
 * a random actor (Postgres directly, or a client's SQLite file), and keeps
 * a model of what must hold after quiet and a final sync:
 *   - ledger: append-only inserts; every committed id exactly once;
 *   - items: private keys (only their owner ever writes them: insert,
 *     update, primary-key change, delete, and a key change plus a re-insert
 *     of the old key in one transaction) whose final rows the model knows
 *     exactly; shared keys that every actor writes at once (upserts,
 *     updates, key changes, deletes) where the strategy decides;
 *   - scratch: upserts, deletes and truncates from every side.
 * Every value written is unique, so a final value names its write. */
#ifndef PGSB_SOAK_H
#define PGSB_SOAK_H

#include <stdio.h>

#include "ch.h"

#define SOAK_SHARED 8            /* s:1 .. s:8 */
#define SOAK_PRIV 6              /* <actor>:1 .. <actor>:6 */
#define SOAK_SCRATCH 10
#define SOAK_MAX_ACTORS (CH_MAX_CLIENTS + 1)

enum { PRIV_ABSENT, PRIV_PRESENT, PRIV_UNKNOWN };

struct soak_actor {
	char name[16];               /* "pg", "c1", ... */
	int client;                  /* -1: Postgres */
	sqlite3 *db;
	PGconn *pg;
	long seq;
	struct {
		int state;
		char row[200];           /* canonical "id|owner|val|updated_at" */
	} priv[SOAK_PRIV + 1];
	char last[SOAK_SHARED + 1][48]; /* last value this client wrote to s:k */
};

struct soak_ctx {
	struct ch_env *env;
	struct ch_client *cl;
	int n;
	struct soak_actor act[SOAK_MAX_ACTORS]; /* act[0] is Postgres */
	int nact;
	struct ch_set committed;     /* ledger ids */
	struct ch_set written;       /* "items|id|owner|val|ts", "scratch|id|val" */
	struct ch_set cols;          /* column-wise: "v|val", "o|owner", "t|ts" */
	long ops, failed, busy, unique, ambiguous, anomalies;
	FILE *trace;                 /* every operation and its outcome (ops.log) */
	long by_kind[8];
};

int soak_schema(struct ch_env *e);
int soak_open(struct soak_ctx *x);
void soak_close(struct soak_ctx *x);
/* One random operation by a random actor. */
void soak_op(struct soak_ctx *x);
/* Private keys: the model against Postgres and every client; returns the
 * rows that differ. */
long soak_check_model(struct soak_ctx *x);
/* Values in items and scratch that nobody wrote (column-wise when merge). */
long soak_check_invented(struct soak_ctx *x, bool merge);
/* local-wins: each client's last write to each shared key reached
 * Postgres (its history); keep-both: reached it or is kept in that
 * client's _pgsqlite_conflicts.  Returns the violations. */
long soak_check_rules(struct soak_ctx *x);

#endif
