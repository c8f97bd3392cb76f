/* push_int.h: what push.c shares with its parts (push_queue.c, push_fold.c,
 * push_columns.c, push_sql.c, push_copy.c, push_send.c, push_mark.c,
 * push_recover.c). */
#ifndef PGSB_PUSH_INT_H
#define PGSB_PUSH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "br.h"

/* What happened to one row of a batch. */
enum outcome {
	OUT_PUSHED,   /* the guarded statement applied */
	OUT_LOCAL,    /* conflict: the local version was forced */
	OUT_REMOTE,   /* conflict: the Postgres version stays, and comes to SQLite */
	OUT_MERGED,   /* conflict: a merged row went to both sides */
	OUT_NOTHING,  /* deleted on both sides, or nothing to send */
	OUT_REFRESH,  /* the row's changes cancel out: Postgres's row comes back to SQLite
	                 (a remote change skipped while they were pending is not lost) */
};

/* One row's net change in a batch. */
struct entry {
	const struct br_table *t;
	char op;                 /* net change: 'I', 'U', 'D'; 0 = none */
	const char *key;         /* pk JSON, as the change log writes it */
	const char *base;        /* row before the batch (NULL: did not exist) */
	const char *final;       /* row after the batch (NULL: deleted) */
	const char *changed_at;  /* time of its last change */
	enum outcome outcome;
	bool sent;               /* its guarded statement went to Postgres */
	PGresult *res;           /* the result holding its RETURNING row */
	int row;                 /* that row in res; -1: the statement missed */
	bool owns_res;           /* res is this entry's own (else the batch's) */
	PGresult *remote;        /* conflicts: the Postgres row (0 or 1 rows) */
	PGresult *moved;         /* a key move that lost: Postgres's row at the new key */
	bool rekeyed;            /* a change in it moved the row to another key */
	char *merged;            /* OUT_MERGED: the merged row */
	struct entry *next_same; /* fold: next entry in the same hash bucket */
};

struct batch {
	struct sl_change *ch;
	size_t nch;
	struct entry *e;
	size_t ne;
	int64_t last_seq;
	char *tables;            /* the tables it takes from, a JSON array: it holds every change
	                            of these up to last_seq (push_queue.c) */
	uint64_t commit_lsn;     /* end LSN of the push's commit in Postgres */
	char xid[32];            /* the push's Postgres transaction id (xid8), for recovery */
	uint64_t token;          /* its origin progress (remote_lsn), set with the commit */
	uint64_t conflicts;
	struct entry **buckets;  /* fold: hash index over (table, key) */
	size_t nbuckets;
	PGresult *shared[64];    /* results of bulk inserts, shared by entries */
	int nshared;
};

/* A growing list of parameter strings freed together. */
struct params {
	char *v[4096];
	int n;
	bool overflow;
};

/* push.c */
void push__note_sqlstate(struct pgsb *b, const PGresult *r);

/* push_fold.c */
void push__entry_own_result(struct entry *e, PGresult *r);
const struct br_table *push__table_by_local(struct pgsb *b, const char *local);
void push__batch_free(struct batch *bt);
int push__fold(struct pgsb *b, struct batch *bt);
/* Do the two row images differ in a primary-key column? */
bool push__key_moved(struct pgsb *b, const struct br_table *t, const char *old_row,
                     const char *new_row);

/* push_columns.c: each table's Postgres columns, read by the push thread */
int push__load_columns(struct pgsb *b, char *err, size_t cap);
/* Forgets every table's column list: the next connection reads them again. */
void push__forget_columns(struct pgsb *b);
int push__refresh_columns(struct pgsb *b, struct batch *bt, char *err, size_t cap);

/* push_send.c: BEGIN, the bulk inserts, the pipelined statements */
int push__pipeline_batch(struct pgsb *b, struct batch *bt, char *err, size_t cap);
struct push_stmt {
	const char *sql;
	int nparams;
	const char *const *params;
};
int push__pipelined(PGconn *c, const struct push_stmt *s, size_t n, PGresult **r);
void push__pipelined_error(PGconn *c, PGresult *const *r, size_t n, char *err, size_t cap);

/* push_sql.c */
void push__params_free(struct params *p);
PGresult *push__exec_params(PGconn *c, const char *sql, struct params *p);
const struct sl_column *push__pgcol(const struct br_table *t, const char *name, size_t len);
const struct dec_field *push__field_named(struct dec_field *f, size_t n, struct dec_str name);
int push__parse_image(struct dec_parser *dp, const char *json, struct dec_field **f, size_t *n);
void push__sql_key_where(FILE *m, const struct br_table *t, struct dec_field *f, size_t n,
                         struct params *p);
const struct sl_column *push__insert_col(const struct br_table *t, const struct dec_field *f,
                                         bool force);
void push__sql_insert(FILE *m, const struct br_table *t, struct dec_field *f, size_t n,
                      struct params *p, bool force, bool pg_form);
int push__entry_sql(struct pgsb *b, struct entry *e, char **sql, struct params *p);

/* push_copy.c */
int push__bulk_inserts(struct pgsb *b, struct batch *bt, char *err, size_t cap);

/* push_mark.c */
int push__resolve_conflicts(struct pgsb *b, struct batch *bt, char *err, size_t cap);
bool push__is_conflict(const struct entry *e);
int push__mark_local(struct pgsb *b, struct batch *bt, char *err, size_t cap);
int push__reject_first(struct pgsb *b, const char *why, char *err, size_t cap);
PGresult *push__fetch_remote(struct pgsb *b, const struct entry *e);
/* The key as Postgres holds it: row `row` of r written into SQLite, or (r
 * NULL, or no such row) the local row at key (a JSON image) deleted. */
int push__settle_key(struct pgsb *b, const struct br_table *t, PGresult *r, int row, const char *key,
                     struct sl_err *e);
bool push__local_pending(struct pgsb *b, const struct br_table *t, const char *key);
int push__track(struct pgsb *b, const char *local, const char *key, uint64_t lsn);
uint64_t push__origin_commit_lsn(struct pgsb *b);
/* Our origin's progress (remote_lsn): the largest token committed. */
uint64_t push__origin_progress(struct pgsb *b);

/* push_queue.c: what the next batch takes (priority, skip) */
int push__queue_read(struct pgsb *b, struct batch *bt, size_t max, char *err, size_t cap);
/* Deletes a pushed batch's changes and saves the new watermark (inside the
 * open SQLite transaction). */
int push__queue_trim(struct pgsb *b, const char *tables, int64_t upto, int64_t *watermark,
                     struct sl_err *e);
/* The failed change went before earlier pending ones: push in seq order up
 * to it rather than reject it.  True when so. */
bool push__queue_jumped(struct pgsb *b);

/* push_recover.c: the in-flight record that makes a push exactly-once */
int push__inflight_set(struct pgsb *b, const struct batch *bt, char *err, size_t cap);
void push__inflight_clear(struct pgsb *b);

#endif
