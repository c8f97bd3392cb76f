/* sl_int.h: internals shared by the sqlite-side files: the connection with
 * its table-info and prepared-statement caches, and the helpers they share. */
#ifndef PGSB_SL_INT_H
#define PGSB_SL_INT_H

#include "sl.h"

#define SL_NAME_MAX 1024     /* local table name buffer, NUL included */
#define SL_TAB_BUCKETS 256   /* table-info cache: chained hash heads */
#define SL_STMT_CAP 256      /* statement cache: entries kept at most */
#define SL_STMT_BUCKETS 512  /* statement cache: chained hash heads */
#define SL_NONE ((size_t)-1) /* "no such column" */

/* How a value is bound, from the local column's declared type. */
enum sl_kind { SLK_TEXT, SLK_INT, SLK_REAL, SLK_BLOB };

/* A column of a local table, as PRAGMA table_info reports it. */
struct sl_col {
	char *name;
	size_t len;
	unsigned char kind; /* enum sl_kind */
	int pk_pos;         /* 1-based position in the primary key, 0 = not in it */
};

/* Cached info of one local table. */
struct sl_table {
	struct sl_table *next; /* hash chain */
	uint32_t hash;
	bool stale;            /* reload before use (a reload failed) */
	char *name;            /* local name, NUL-terminated */
	size_t name_len;
	struct sl_col *cols;
	size_t ncols;
	size_t *pk;            /* indexes into cols, in key order */
	size_t npk;
	sqlite3_stmt *st_key;  /* change capture: key -> pk JSON (sl_rowkeys.c) */
	sqlite3_stmt *st_row;  /* change capture: key -> row JSON (sl_rowkeys.c) */
};

/* A cached prepared statement, keyed on (op, table, exact column list). */
struct sl_stmt {
	sqlite3_stmt *st;      /* NULL = free slot */
	struct sl_table *tab;
	uint32_t hash;
	int next;              /* next entry in the bucket, -1 ends */
	char op;               /* 'I', 'U', 'D', 'T' */
	bool used;             /* clock bit for eviction */
	bool pk_complete;      /* every key column is in the list */
	size_t ncols;
	uint32_t *lens;        /* key: column name lengths ... */
	char *names;           /* ... and their bytes, back to back */
	unsigned char *kinds;  /* per listed column: enum sl_kind */
	uint32_t *hint;        /* per key column: where it was last found */
};

/* The change log's own statements, prepared on first use (sl_changes.c). */
enum { SLC_ANY, SLC_FIND, SLC_FIND_MOVED, SLC_DROP, SLC_READ, SLC_TRIM, SLC_CONFLICT, SLC_NSTMT };

/* One value to bind: the record's field and the local column's kind. */
struct sl_bindv {
	const struct dec_field *f;
	unsigned char kind;
};

struct sl_db {
	sqlite3 *h;
	bool txn;      /* between sl_begin and a successful sl_commit / sl_rollback */
	bool flag_set; /* the "applying" row was set by sl_begin */
	struct sl_table *tabs[SL_TAB_BUCKETS];
	struct sl_stmt stmts[SL_STMT_CAP];
	int bucket[SL_STMT_BUCKETS];
	int nstmts;
	int hand;      /* clock hand */
	sqlite3_stmt *st_tinfo, *st_get, *st_set;
	sqlite3_stmt *cap[SLC_NSTMT]; /* sl_changes.c */
	struct sl_bindv *bv; /* per-row bind list, reused */
	size_t bv_cap;
	unsigned char *blob; /* per-row decoded bytea, reused */
	size_t blob_cap;
	sl_type_resolver resolve; /* user-defined type oid -> mapped oid */
	void *resolve_arg;
	struct sl_typemap *types; /* its answers so far */
	size_t ntypes;
	struct sl_added *added;   /* columns sl_apply added to existing tables */
	size_t nadded, added_cap;
	int wal_frames;           /* sl_wal.c: the log's size at our last commit */
	int wal_autockpt;         /* checkpoint at this many frames (0: never) */
	bool wal_unsynced;        /* committed since the log was last synced */
	bool wal_sync_failed;     /* a sync failed: every later one fails too */
};

/* A column sl_apply added to an existing table (sl_added_count). */
struct sl_added {
	char *table;
	char *column;
};

/* One answer of the type resolver. */
struct sl_typemap {
	uint32_t oid, base;
};

/* A growable NUL-terminated string; oom latches on allocation failure. */
struct sl_buf {
	char *p;
	size_t len, cap;
	bool oom;
};

/* A column to create or add: name, SQLite declared type, key position. */
struct sl_colspec {
	const char *name;
	size_t len;
	const char *decl;
	int pk_pos;
};

/* sl_db.c */
int sl_fail(struct sl_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int sl_fail_db(struct sl_db *db, struct sl_err *err, const char *what, const char *table);
/* sl_changes.c: steps a statement selecting change-log rows (seq,
 * table_name, op, pk, new_row, old_row, changed_at), up to max of them
 * into a new array *out of *n; on failure *out is NULL and *n 0. */
int sl__changes_step(struct sl_db *db, sqlite3_stmt *st, size_t max, struct sl_change **out,
                     size_t *n, struct sl_err *err);
int sl_exec(struct sl_db *db, const char *sql, const char *what, const char *table,
            struct sl_err *err);

/* sl_names.c */
void sl_buf_put(struct sl_buf *b, const char *p, size_t n);
void sl_buf_str(struct sl_buf *b, const char *s);
void sl_buf_ident(struct sl_buf *b, const char *p, size_t n);
/* Appends p as an SQL string literal, embedded quotes doubled. */
void sl_buf_lit(struct sl_buf *b, const char *p, size_t n);
void sl_buf_free(struct sl_buf *b);
bool sl_name_eq(const char *a, size_t an, const char *b, size_t bn);
/* A hash of a name that agrees with sl_name_eq (ASCII case folded). */
uint32_t sl__name_hash(const char *p, size_t n);
int sl_local_name_checked(struct dec_str schema, struct dec_str table, char *buf,
                          size_t *len, struct sl_err *err);

/* sl_types.c */
const char *sl_affinity_n(const char *p, size_t n, uint32_t typeoid);
uint32_t sl_mapped_oid(struct sl_db *db, uint32_t oid);
void sl_types_free(struct sl_db *db);

/* sl_tables.c */
size_t sl_col_find(const struct sl_table *t, const char *p, size_t n);
int sl_table_get(struct sl_db *db, const char *name, size_t len, struct sl_table **out,
                 struct sl_err *err);
int sl_table_refresh(struct sl_db *db, struct sl_table *t, struct sl_err *err);
/* Re-reads t's columns, keeping its cached statements; a table gone is an
 * error.  On failure t stays marked stale. */
int sl__table_reload(struct sl_db *db, struct sl_table *t, struct sl_err *err);
void sl_tables_flush(struct sl_db *db);

/* sl_schema.c */
int sl_table_from_record(struct sl_db *db, const struct dec_record *rec, const char *name,
                         size_t len, struct sl_table **out, struct sl_err *err);
int sl_table_add_fields(struct sl_db *db, struct sl_table *t, const struct dec_field *f,
                        size_t n, struct sl_err *err);

/* sl_db.c */
int sl_added_note(struct sl_db *db, const char *table, const char *column, size_t len);

/* sl_apply.c */
void sl_stmts_init(struct sl_db *db);
void sl_stmts_invalidate(struct sl_db *db, const struct sl_table *t);
void sl_stmts_flush(struct sl_db *db);

/* sl_bind.c */
int sl_bv_reserve(struct sl_db *db, size_t n);
int sl_bind_row(struct sl_db *db, sqlite3_stmt *st, size_t n, const char *table,
                struct sl_err *err);
void sl_bind_trim(struct sl_db *db);

/* sl_capture.c */
int sl_capture_refresh(struct sl_db *db, struct sl_table *t, struct sl_err *err);

/* sl_image.c */
/* The JSON object of n columns of t (idx[i], or all when idx is NULL), as
 * the triggers write it: side "NEW" / "OLD", "" (bare columns) or NULL
 * (parameters ?1...); chunk columns per json_object() call at most. */
void sl__put_json(struct sl_buf *b, const struct sl_table *t, const size_t *idx, size_t n,
                  const char *side, size_t chunk);
/* The chunk for sl__put_json under db's function-argument limit. */
size_t sl__json_chunk(struct sl_db *db);
/* The key columns of t as the triggers' pk JSON: side "NEW" / "OLD", ""
 * (bare columns of the row in hand) or NULL (parameters ?1...). */
void sl_capture_put_key(struct sl_db *db, struct sl_buf *b, const struct sl_table *t,
                        const char *side);

/* sl_changes.c */
void sl_capture_finalize(struct sl_db *db);
/* Change-log statement which (SLC_*), prepared on first use; NULL on error. */
sqlite3_stmt *sl__log_stmt(struct sl_db *db, int which, struct sl_err *err);
/* Resets a statement and clears its bindings. */
void sl__stmt_done(sqlite3_stmt *st);
/* 1 when the change log is empty, 0 when not, -1 on error. */
int sl__log_empty(struct sl_db *db, struct sl_err *err);
/* A malloc'd copy of column i, NULL for SQL NULL.  Returns -1 out of memory. */
int sl__col_dup(sqlite3_stmt *st, int i, char **out);

#endif
