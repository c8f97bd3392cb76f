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
	uint32_t typeoid;    /* pg_type oid (0 if unknown) */
	int pk_pos;          /* 1-based position in the primary key; 0 = not in it */
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
/* Clears the flag and commits. Durable when it returns 0. */
int sl_commit(struct sl_db *db, struct sl_err *err) __attribute__((warn_unused_result));
/* Rolls back if a transaction is open. */
void sl_rollback(struct sl_db *db);
bool sl_in_txn(const struct sl_db *db);

/* Applies one I/U/D/T record inside the open transaction.  A missing table
 * is created from the record (columns, types and "pk"); a column missing
 * locally is added.  An update sets only the columns present in the record
 * (wal2json omits unchanged TOAST columns) and inserts the row if it is
 * missing; deletes go by key; truncate empties the table.
 * Returns 0 or -1. */
int sl_apply(struct sl_db *db, const struct dec_record *rec, struct sl_err *err)
	__attribute__((warn_unused_result));

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

#endif
