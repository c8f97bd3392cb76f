/* sl.h: the SQLite side of the bridge: opening the local file, the bridge's
 * own tables (_pgsqlite_state, _pgsqlite_changes, _pgsqlite_conflicts),
 * creating synced tables from Postgres column lists with the contract's type
 * mapping, and applying decoded wal2json records with cached prepared
 * statements.  A pure library: no logging, no exit, no globals. */
#ifndef PGSB_SL_H
#define PGSB_SL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "../decoder/dec.h"

struct sl_db; /* opaque: the connection, its statement and schema caches */

struct sl_err {
	int code;       /* SQLite result code, or 0 for our own errors */
	char msg[512];
};

/* A column of a Postgres table, as read from the catalogue. */
struct sl_column {
	const char *name;    /* Postgres column name */
	const char *pg_type; /* format_type() text: "integer", "numeric(10,2)", "text[]" */
	uint32_t typeoid;    /* pg_type oid, a domain's resolved to its base type (0 if unknown) */
	int pk_pos;          /* 1-based position in the primary key; 0 = not in it */
	bool has_default;    /* Postgres has a default for it (push: a NULL insert omits it) */
};

/* Opens (creating if needed) the SQLite file: WAL journal, synchronous=FULL
 * (a commit is on disk when sl_commit returns), busy_timeout, and creates
 * the bridge's own tables if missing.  Returns 0 or -1. */
int sl_open(const char *path, struct sl_db **out, struct sl_err *err)
	__attribute__((warn_unused_result));
void sl_close(struct sl_db *db);
sqlite3 *sl_handle(struct sl_db *db);

/* Opens a write transaction (BEGIN IMMEDIATE) and sets the "applying" flag
 * row that tells the change-log triggers to stay quiet. */
int sl_begin(struct sl_db *db, struct sl_err *err) __attribute__((warn_unused_result));
/* Clears the flag and commits.  Durable when it returns 0 (on a
 * connection of sl_wal_defer_sync: once sl_wal_sync returns 0). */
int sl_commit(struct sl_db *db, struct sl_err *err) __attribute__((warn_unused_result));
/* Rolls back if a transaction is open. */
void sl_rollback(struct sl_db *db);
bool sl_in_txn(const struct sl_db *db);
/* A transaction sl_begin opened that SQLite itself rolled back (a trigger's
 * RAISE(ROLLBACK), an I/O error): statements now would run outside it. */
bool sl_txn_lost(const struct sl_db *db);

/* Applies one I/U/D/T record inside the open transaction.  A missing table
 * is created from the record (columns, types and "pk"); a column missing
 * locally is added.  An update sets only the columns present in the record
 * (wal2json omits unchanged TOAST columns) and inserts the row if it is
 * missing; deletes go by key; truncate empties the table.
 * Returns 0 or -1. */
int sl_apply(struct sl_db *db, const struct dec_record *rec, struct sl_err *err)
	__attribute__((warn_unused_result));

/* sl_apply into the local table named local, whatever the record's schema
 * and table say (an online snapshot's shadow table).  Returns 0 or -1. */
int sl_apply_to(struct sl_db *db, const struct dec_record *rec, const char *local,
                struct sl_err *err) __attribute__((warn_unused_result));
/* Tables were renamed or replaced behind the caches' back: every cached
 * table and statement is dropped (read again on next use). */
void sl_schema_changed(struct sl_db *db);

/* Like an update record through sl_apply, but only a row that exists
 * locally is updated: a missing row is not inserted, a missing table not
 * created.  For values read from Postgres into columns of existing rows.
 * Returns 0 or -1. */
int sl_update_existing(struct sl_db *db, const struct dec_record *rec, struct sl_err *err)
	__attribute__((warn_unused_result));

/* Columns sl_apply added to an existing local table (a record carried a
 * name the table lacked), oldest first, since the last sl_added_clear or
 * rollback: the rows that were there hold NULL in them, whatever Postgres
 * holds.  sl_added_column returns the i-th column's name and its local
 * table in *local_table. */
size_t sl_added_count(const struct sl_db *db);
const char *sl_added_column(const struct sl_db *db, size_t i, const char **local_table);
void sl_added_clear(struct sl_db *db);

/* Creates the local table for schema.table if missing, and adds any of the
 * given columns it lacks.  Returns 0 or -1. */
int sl_ensure_table(struct sl_db *db, const char *schema, const char *table,
                    const struct sl_column *cols, size_t ncols, struct sl_err *err)
	__attribute__((warn_unused_result));

/* Deletes every row of the local copy of schema.table (re-snapshot). */
int sl_clear_table(struct sl_db *db, const char *schema, const char *table,
                   struct sl_err *err) __attribute__((warn_unused_result));

/* Local name of a Postgres table: "items" for public.items,
 * "sales__orders" for sales.orders.  Truncates to cap. */
void sl_local_name(const char *schema, size_t schema_len, const char *table,
                   size_t table_len, char *buf, size_t cap);

/* Tells a type oid the catalogue has not mapped (a user-defined type: a
 * domain, an array of domains, an enum) by the oid whose mapping it takes
 * (a domain's base type, an array of domains' base array type; the oid
 * itself for an enum), or 0 when it cannot tell. */
typedef uint32_t (*sl_type_resolver)(void *arg, uint32_t typeoid);
/* Columns created or added from a record ask fn (once per oid; the answer
 * is kept until sl_close) for types with oids of user-defined types. */
void sl_set_type_resolver(struct sl_db *db, sl_type_resolver fn, void *arg);

/* SQLite declared type for a Postgres type (the contract's mapping):
 * "INTEGER", "REAL", "TEXT" or "BLOB". */
const char *sl_affinity(const char *pg_type, uint32_t typeoid);

/* _pgsqlite_state access.  sl_state_get returns 1 and copies the value
 * (NUL-terminated, truncated to cap) when the key exists, 0 when it does
 * not, -1 on error.  sl_state_set upserts (inside the open transaction if
 * there is one). */
int sl_state_get(struct sl_db *db, const char *key, char *buf, size_t cap);
int sl_state_set(struct sl_db *db, const char *key, const char *value,
                 struct sl_err *err) __attribute__((warn_unused_result));

/* Number of rows in _pgsqlite_changes / unresolved rows in
 * _pgsqlite_conflicts; -1 on error. */
int64_t sl_pending_changes(struct sl_db *db);
int64_t sl_unresolved_conflicts(struct sl_db *db);

/* Drops the bridge's own tables and every _pgsqlite_* trigger; user tables
 * and their rows stay.  Returns 0 or -1. */
int sl_drop_bridge_objects(struct sl_db *db, struct sl_err *err)
	__attribute__((warn_unused_result));

/* ---- Change capture (local -> remote) ---- */

/* (Re)creates the AFTER INSERT/UPDATE/DELETE triggers of a local table,
 * named _pgsqlite_<table>_ins|upd|del, from its current columns.  Each
 * appends one row to _pgsqlite_changes unless the "applying" flag is set.
 * Row images are JSON objects {"col": value} in column order: integers
 * and text as they are, REAL values as exact text that Postgres's
 * float8in reads back bit for bit: an integral value below 2^63 as an
 * integer ("1", "100"), +-Infinity as "Infinity" / "-Infinity", any other
 * as a C99 hex float ("0x1.999999999999ap-4"; SQLite's own "%!.17g" is
 * not correctly rounded for large magnitudes), looked up in the bridge
 * table _pgsqlite_pow2; BLOBs as lower-case hex text, NULL as null.  pk is the same form for the key
 * columns only, in key order: of the new row for an insert, of the old row
 * (the key the remote side knows) for an update or delete.  table_name is
 * local_table as given.  An update that changes no column byte-wise is not
 * logged.  Refuses a table without a primary key.  A column later added by
 * sl_apply / sl_ensure_table rebuilds the triggers. */
int sl_capture_install(struct sl_db *db, const char *local_table, struct sl_err *err)
	__attribute__((warn_unused_result));
/* Drops the three triggers of a table (if present). */
int sl_capture_remove(struct sl_db *db, const char *local_table, struct sl_err *err)
	__attribute__((warn_unused_result));

/* One row of _pgsqlite_changes. */
struct sl_change {
	int64_t seq;
	char *table;      /* local table name */
	char op;          /* 'I', 'U' or 'D' */
	char *pk;         /* JSON object of the key columns */
	char *new_row;    /* JSON object, NULL for 'D' */
	char *old_row;    /* JSON object, NULL for 'I' */
	char *changed_at; /* ISO-8601 UTC with milliseconds */
};

/* Reads up to max changes with seq > after, in seq order, into a malloc'd
 * array.  Returns 0 or -1. */
int sl_changes_read(struct sl_db *db, int64_t after, size_t max, struct sl_change **out,
                    size_t *n, struct sl_err *err) __attribute__((warn_unused_result));
void sl_changes_free(struct sl_change *c, size_t n);
/* Deletes the changes with seq <= upto (in the open transaction if any). */
int sl_changes_delete_upto(struct sl_db *db, int64_t upto, struct sl_err *err)
	__attribute__((warn_unused_result));

/* sl_queue.c: the log taken out of seq order.  tables_json is a JSON
 * array of local table names, or NULL for every table. */
/* Up to max changes of those tables with after < seq <= upto, in seq order. */
int sl_changes_read_in(struct sl_db *db, int64_t after, int64_t upto, const char *tables_json,
                       size_t max, struct sl_change **out, size_t *n, struct sl_err *err)
	__attribute__((warn_unused_result));
/* Deletes the changes of those tables with after < seq <= upto (in the
 * open transaction if any). */
int sl_changes_delete_in(struct sl_db *db, int64_t after, int64_t upto, const char *tables_json,
                         struct sl_err *err) __attribute__((warn_unused_result));
/* How many changes of those tables have after < seq <= upto; -1 on error. */
int64_t sl_changes_count_in(struct sl_db *db, int64_t after, int64_t upto, const char *tables_json,
                            struct sl_err *err);
/* The smallest table name in the log greater than after ("" or NULL: the
 * first) into buf: 1, 0 when there is none, -1 on error. */
int sl_changes_next_table(struct sl_db *db, const char *after, char *buf, size_t cap,
                          struct sl_err *err);
/* Is there a change of those tables with seq < before?  1, 0, -1. */
int sl_changes_exist_before(struct sl_db *db, int64_t before, const char *tables_json,
                            struct sl_err *err);
/* The smallest seq in the log, 0 when it is empty, -1 on error. */
int64_t sl_changes_min_seq(struct sl_db *db, struct sl_err *err);

/* Is there a pending change for this row?  key holds the key columns'
 * values as a remote record carries them (names and values); they are
 * bound like sl_apply binds them and turned into the trigger's pk JSON
 * form.  Returns 1 when a change of the row under that key is pending (the
 * lowest such seq in *seq if seq is not NULL), 2 when the only pending
 * change is an update that moves another row onto that key, 3 when both
 * are (the row's own changes and a move onto its key: seq is still that
 * of its own first change), 0 none (also for a missing table), -1 error.
 * Fast when the change log is empty: one cached one-row probe, no JSON
 * built. */
int sl_pending_for_row(struct sl_db *db, const char *local_table, const struct dec_field *key,
                       size_t nkey, int64_t *seq, struct sl_err *err);
/* Writes the capture triggers of every captured table anew. 0 or -1. */
int sl_capture_rewrite_all(struct sl_db *db, struct sl_err *err);
/* Deletes the pending changes of that row: those at its key, except an
 * older key move away from it (the row that moved is another one, and a
 * new row took the key).  Returns the number deleted or -1. */
int sl_drop_pending_for_row(struct sl_db *db, const char *local_table,
                            const struct dec_field *key, size_t nkey, struct sl_err *err);
/* The pk JSON of that key, as the triggers write it (malloc'd), or NULL
 * with *err (no such table, a key column missing from key, ...). */
char *sl_key_json(struct sl_db *db, const char *local_table, const struct dec_field *key,
                  size_t nkey, struct sl_err *err);
/* The current local row with that key as JSON in the triggers' form
 * (malloc'd); NULL with err->code == 0 and an empty message when there is
 * no such row (or table), NULL with a non-zero err->code on error. */
char *sl_row_json(struct sl_db *db, const char *local_table, const struct dec_field *key,
                  size_t nkey, struct sl_err *err);

/* The key as Postgres holds it: row (ncols columns, Postgres's names)
 * written, an upsert by the table's key; or, with no columns, the local
 * row at key deleted (key: fields named for the key columns; others are
 * ignored).  schema and table name the Postgres table.  0 or -1. */
int sl_settle_key(struct sl_db *db, const char *schema, const char *table, const struct dec_field *key,
                  size_t nkey, const struct dec_field *row, size_t ncols, struct sl_err *err)
	__attribute__((warn_unused_result));

/* A remote TRUNCATE committed at end LSN lsn: every row of the table goes
 * except those whose key _pgsqlite_pushed tracks at lsn or later (our own
 * push wrote them after the truncate; Postgres has them).  Call inside
 * sl_begin's transaction.  0 or -1. */
int sl_truncate_except_pushed(struct sl_db *db, const char *table, uint64_t lsn, struct sl_err *err)
	__attribute__((warn_unused_result));

/* ---- Pruning (local only) ---- */

/* What to prune: rows ordered newest first by order_column (NULL counts
 * as oldest), ties broken by the key, descending. */
struct sl_prune {
	const char *table;        /* local table name */
	const char *order_column;
	bool numeric;             /* order by its value as a number (numeric kept as text) */
};

/* Deletes the rows past the newest keep (sl_prune_keep), or the n oldest
 * (sl_prune_oldest).  A row with a pending change in _pgsqlite_changes
 * (under its key, or as the new key of a pending key move) is never
 * deleted, and the rows kept do not count it.  Call inside sl_begin's
 * transaction, so the change-log triggers stay quiet.  *deleted gets the
 * number of rows deleted.  Returns 0 or -1 (no such table or column, no
 * primary key, an SQLite error). */
int sl_prune_keep(struct sl_db *db, const struct sl_prune *p, int64_t keep, int64_t *deleted,
                  struct sl_err *err) __attribute__((warn_unused_result));
int sl_prune_oldest(struct sl_db *db, const struct sl_prune *p, int64_t n, int64_t *deleted,
                    struct sl_err *err) __attribute__((warn_unused_result));

/* (page_count - freelist_count) * page_size as this connection sees the
 * file (its own open transaction included): free pages do not count.
 * -1 on error. */
int64_t sl_used_bytes(struct sl_db *db);
/* count(*) of a local table, -1 on error (no such table). */
int64_t sl_table_rows(struct sl_db *db, const char *local_table);

/* Appends a row to _pgsqlite_conflicts (detected_at = now; resolved_at =
 * now when resolved, else NULL).  Returns 0 or -1. */
int sl_conflict_record(struct sl_db *db, const char *table, const char *pk_json,
                       const char *local_json, const char *remote_json, const char *strategy,
                       const char *resolution, bool resolved, struct sl_err *err)
	__attribute__((warn_unused_result));

/* The write-ahead log (sl_wal.c).  sl_wal_watch: count the log's frames
 * at each commit of this connection (sl_wal_frames) and checkpoint at
 * autocheckpoint frames (0: never).  sl_wal_defer_sync: the same, and the
 * connection's commits are no longer synced one by one
 * (synchronous=NORMAL): visible at once, durable only after sl_wal_sync
 * (or a later synced commit of any connection).  sl_wal_sync: syncs the
 * log if this connection committed since (or has not synced since
 * sl_wal_defer_sync); 0 or -1, and -1 ever after one failed. */
void sl_wal_watch(struct sl_db *db, int autocheckpoint);
int sl_wal_defer_sync(struct sl_db *db, int autocheckpoint, struct sl_err *err);
int sl_wal_sync(struct sl_db *db, struct sl_err *err);
int sl_wal_frames(const struct sl_db *db);

#endif
