/* br.h: internals shared by the bridge's modules: struct pgsb (one bridge),
 * the synced-table list, the replication stream's state, and the functions
 * each module offers the others. */
#ifndef PGSB_BR_H
#define PGSB_BR_H

#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include <ev.h>
#include <libpq-fe.h>

#include "../config/cfg.h"
#include "../decoder/dec.h"
#include "../sqlite-side/sl.h"
#include "pgsqlite_bridge.h"
#include "limits.h"
#include "metrics.h"

/* A synced table, resolved against the Postgres catalogue. */
struct br_table {
	char *schema;
	char *name;
	char local[256];               /* its name in SQLite */
	char qualified[600];           /* "schema"."name", quoted for SQL */
	enum cfg_direction direction;  /* effective */
	enum cfg_conflict conflict;    /* effective strategy */
	enum cfg_priority priority;    /* push and initial copy: critical first */
	bool skip;                     /* config: not synced (reload changes it with the push stopped) */
	_Atomic bool push_held;        /* the push leaves this table's local changes waiting:
	                                  skip, or an online snapshot that has not yet put them
	                                  back on top (table_snap.c; main thread sets it) */
	int snap_phase;                /* table_snap.c's phase for it (main thread only) */
	struct sl_column *pgcols;      /* Postgres columns (push side), loaded lazily */
	size_t npgcols;
	bool stage_ready;              /* push: its temporary stage table exists on the connection */
	bool server_computes;          /* defaults, identity, generated columns or triggers:
	                                  pushed rows are read back */
	bool order_numeric;            /* its order_column is numeric (text locally): pruning
	                                  orders by value (limits.c) */
};

/* The push side's connection and position. */
struct push {
	PGconn *conn;             /* plain connection under the bridge's replication origin */
	int64_t pushed_seq;       /* every change-log seq up to this one is pushed (durable in
	                             SQLite); later ones may be too (push_queue.c) */
	int64_t failed_seq;       /* the change of the last one-change batch that failed */
	int64_t ordered_upto;     /* push in seq order until every change up to this one is
	                             pushed (a change that needs an earlier one); 0 = by priority */
	bool wanted;              /* a local commit was seen: push soon */
	int64_t due_us;           /* auto mode: push not before this (debounce) */
	int64_t next_attempt_us;  /* after a failure: not before this */
	int backoff_ms;
	struct sl_db *db;         /* the push's own SQLite connection (never the pull's) */
	struct push_worker *worker; /* the push thread (`run`); NULL in `sync` */
	_Atomic bool stopping;    /* the bridge stops: a push waiting on a lock gives up */
	pthread_mutex_t cancel_mu;
	PGcancel *cancel;         /* for push_cancel; under cancel_mu */
	int64_t last_data_version;/* PRAGMA data_version last seen */
	int64_t last_check_us;    /* fallback check of data_version */
	int inotify_fd;
	ev_io watch;              /* inotify on the SQLite file's directory */
	ev_timer recheck;         /* re-check data_version shortly after a wake-up */
	int rechecks_left;
	bool seen_while_busy;     /* a wake-up came while a push round ran (tail.c) */
	char *file_base;          /* the SQLite file's name without its directory */
	sqlite3_stmt *st_data_version; /* cached on the main connection */
	struct dec_parser base_dec, final_dec, key_dec;
	uint64_t rows;            /* rows pushed by this process (summary) */
	uint64_t conflicts;
	_Atomic int64_t pushed_rows_tracked; /* rows in _pgsqlite_pushed (0: skip the pull-side check) */
	_Atomic int64_t inflight_seq; /* the batch in flight holds changes up to this seq (0: none):
	                                 the pull leaves their rows for the push to settle */
	bool commit_ts;           /* track_commit_timestamp is on: remote commit times known */
	sqlite3_stmt *st_pending; /* cached: a later local change for a row? */
	sqlite3_stmt *st_track;   /* cached: remember a pushed row's commit LSN */
	sqlite3_stmt *st_track_batch; /* cached: the same for a whole plain batch */
	sqlite3_stmt *st_stale;   /* cached, on the main thread's connection: a pulled
	                             row our push has overwritten since? */
	struct push_fence *fence; /* remote deletes of rows in flight (push_fence.c) */
	char sqlstate[6];         /* SQLSTATE of the last server error in a push */
	size_t batch_limit;       /* changes per batch; 1 while isolating a rejected change */
	char *line;               /* reused COPY line buffer */
	size_t line_cap;
};

/* States of the replication connection. */
enum repl_state {
	REPL_IDLE,      /* not connected; the tick timer decides when to try */
	REPL_STREAMING, /* START_REPLICATION accepted: in COPY BOTH, consuming */
	REPL_STOPPING,  /* CopyDone sent after a stop or a reached target */
};

/* The replication stream and what it has applied. LSNs are commit end LSNs
 * unless said otherwise. */
struct repl {
	PGconn *conn;
	enum repl_state state;
	ev_io io;                 /* readable on the connection's socket */
	ev_idle more;             /* continue draining after a bounded batch */
	uint64_t received_lsn;    /* highest WAL position received (write) */
	uint64_t committed_lsn;   /* last transaction durably committed to SQLite */
	uint64_t ack_lsn;         /* reported as flushed: committed, or an idle keepalive's */
	uint64_t pending_lsn;     /* last transaction applied in the open SQLite transaction */
	uint64_t target_lsn;      /* stop once reached (sync); 0 = stream until stopped */
	uint64_t server_lsn;      /* server's WAL flush position at connect */
	bool target_reached;
	bool target_nudged;       /* a heartbeat was emitted to carry the stream past the target */
	int64_t started_us;       /* when streaming started */
	bool in_xact;             /* between a B and its C */
	bool paused;              /* the push's commit window: the stream is not read */
	bool send_failed;         /* a feedback could not be sent: the next tick drops the
	                             connection (while paused nothing else would notice) */
	char sync_error[256];     /* the log could not be synced before a feedback: fatal */
	bool skipping;            /* the transaction in hand was applied before a restart */
	int64_t last_feedback_us; /* when the last standby status update was sent */
	int64_t last_reply_req_us;/* when we last asked the server for a keepalive */
	int64_t last_recv_us;     /* when the last message arrived */
	int64_t batch_start_us;   /* when the open SQLite transaction began */
	uint64_t batch_rows;      /* rows in the open SQLite transaction */
	uint64_t batch_xacts;     /* Postgres transactions in it */
	int backoff_ms;           /* next reconnect delay */
	int64_t next_attempt_us;  /* no reconnect before this */
	bool ever_connected;
	bool offline_reported;
	char last_error[512];     /* the last connection error, for _pgsqlite_state: */
	char last_error_at[40];   /* written by the next pull commit (main thread) */
};

/* Totals for a sync summary. */
struct br_stats {
	uint64_t rows;
	uint64_t xacts;
	int64_t started_us;
};

struct pgsb {
	struct cfg *cfg;
	struct sl_db *db;
	struct dec_parser dec;
	struct br_table *tables;
	size_t ntables;
	struct ev_loop *loop;
	ev_timer tick;            /* once a second: feedback, reconnect, heartbeat */
	ev_signal sig_term, sig_int, sig_usr1, sig_hup;
	pgsb_event_fn event_fn;
	void *event_arg;
	pthread_mutex_t event_mu; /* events come from the pull's and the push's threads */
	struct repl repl;
	struct push push;
	struct br_stats stats;
	pgsb_merge_fn merge_fn;
	void *merge_arg;
	uint64_t xact_end_lsn;    /* commit end LSN of the transaction being pulled */
	uint32_t xact_xid;        /* its xid (0: unknown) */
	struct tsnap *tsnap;      /* online table snapshots (table_snap.c) */
	bool boundary_wanted;     /* table_snap.c: the stream stops draining at the next
	                             transaction boundary, so a copy step can run there */
	volatile sig_atomic_t reload_requested; /* SIGHUP: reload at the next boundary */
	bool tables_deferred;     /* a reload made while Postgres was out of reach: the
	                             table list is resolved again before the stream starts */
	char xact_time[64];       /* its commit timestamp as wal2json printed it */
	volatile sig_atomic_t stop_requested;
	volatile sig_atomic_t sync_requested;
	bool stopping;            /* loop exit wanted once the transaction in hand is done */
	bool one_shot;            /* `sync`: one session up to the server's position, then exit */
	bool session_active;      /* a session (sync up to a target) is under way */
	bool session_pushed;      /* that session's closing push was asked for */
	int64_t next_session_us;  /* periodic / on-reconnect: next session not before this */
	int64_t last_probe_us;    /* on-reconnect: last reachability ping */
	int exit_code;
	int64_t last_heartbeat_us;
	char conninfo_masked[512];
	PGconn *exact_conn;       /* pull: reads back NaN / Infinity by key (exact.c) */
	struct br_metrics metrics; /* counters and gauges (metrics.c) */
	struct br_limits limits;   /* max_records and storage_limit (limits.c) */
};

/* time.c-like helpers (bridge.c) */
int64_t br_now_us(void);

/* event.c */
void ev_emit_sync(struct pgsb *b, const char *direction, uint64_t rows,
                  uint64_t xacts, int64_t duration_ms, uint64_t lsn);
void ev_emit_simple(struct pgsb *b, const char *event);
void ev_emit_error(struct pgsb *b, const char *message, bool retrying);
void ev_emit_progress(struct pgsb *b, const char *phase, int64_t done, int64_t total);
void ev_print_default(const char *event, const char *json, void *arg);

/* pgconn.c: connections, quoting, catalogue */
PGconn *pgc_connect(struct pgsb *b, bool replication, char *err, size_t cap);
int pgc_exec_ok(PGconn *c, const char *sql, char *err, size_t cap);
void pgc_quote_ident(const char *s, char *buf, size_t cap);
/* 'text' with quotes doubled: the only literal form the replication
 * protocol's grammar takes (PQescapeLiteral may produce E'...'). malloc'd. */
char *pgc_quote_literal(const char *s);
int pgc_resolve_tables(struct pgsb *b, PGconn *c, char *err, size_t cap);
int pgc_table_columns(PGconn *c, const struct br_table *t, struct sl_column **cols,
                      size_t *ncols, char *err, size_t cap);
void pgc_free_columns(struct sl_column *cols, size_t n);
void pgc_error_text(PGconn *c, char *err, size_t cap);
/* A Postgres text-format value as the field wal2json would have sent:
 * booleans as true/false, bytea without its \x, numbers as numbers. */
void pgc_text_field(struct dec_field *f, uint32_t typeoid, const char *text, size_t len);
/* Row `row` of r as fields (f has room for PQnfields(r)), names and
 * values pointing into r; with known, only the columns it lists. */
size_t pgc_row_fields(PGresult *r, int row, const struct br_table *known, struct dec_field *f);

/* stream.c: the replication protocol */
int repl_start(struct pgsb *b, char *err, size_t cap);
void repl_close(struct pgsb *b);
void repl_pause(struct pgsb *b, bool pause);
void repl_send_feedback(struct pgsb *b, bool reply_requested);
void repl_on_readable(struct ev_loop *loop, ev_io *w, int revents);
void repl_on_more(struct ev_loop *loop, ev_idle *w, int revents);
void repl_request_end(struct pgsb *b);

/* pull.c: records into SQLite */
int pull_handle_record(struct pgsb *b, const struct dec_record *rec, char *err, size_t cap);
int pull_commit_batch(struct pgsb *b, char *err, size_t cap);
void pull_abort_batch(struct pgsb *b);
bool pull_batch_due(struct pgsb *b);
/* Opens the pull's SQLite transaction if none is open. */
int pull_ensure_batch(struct pgsb *b, char *err, size_t cap);
/* One remote change to table t through the merge point into the open
 * batch (also for changes an online snapshot queued). */
int pull_apply_change(struct pgsb *b, const struct br_table *t, const struct dec_record *rec,
                      char *err, size_t cap);
int pull_load_position(struct pgsb *b, char *err, size_t cap);

/* reapply.c: pending local changes re-applied on top of a fresh copy
 * (inside the open SQLite transaction); only = one table, or NULL. */
int reapply_pending(struct pgsb *b, const struct br_table *only, char *err, size_t cap);
/* Up to max of t's pending changes with seq > *after re-applied to the
 * local table into (an online snapshot's shadow); *after moves past them.
 * Returns how many (fewer than max: the log's end), or -1. */
int reapply_step(struct pgsb *b, const struct br_table *t, const char *into, int64_t *after,
                 size_t max, char *err, size_t cap);

/* snapshot.c */
int snap_init(struct pgsb *b, bool resync, char *err, size_t cap);
bool snap_is_initialized(struct pgsb *b);

/* table_snap.c: online snapshots of single tables while the stream goes
 * on (new tables, skip turned off, a table to rebuild).  tsnap_start reads
 * each table's durable state and schedules what must be copied (run and
 * sync); tsnap_route decides a streamed change to a table under snapshot:
 * 1 consumed (seen by the copy, or queued behind it), 0 apply it now, -1
 * error.  tsnap_abort stops the copy in hand (it is redone later);
 * tsnap_reschedule after the table list changed (reload, resync). */
int tsnap_start(struct pgsb *b, char *err, size_t cap);
void tsnap_stop(struct pgsb *b);
int tsnap_route(struct pgsb *b, const struct br_table *t, const struct dec_record *rec,
                char *err, size_t cap);
void tsnap_abort(struct pgsb *b);
/* A table is being copied or waits for its copy (`sync` runs until none). */
bool tsnap_busy(struct pgsb *b);
int tsnap_reschedule(struct pgsb *b, char *err, size_t cap);
/* table_state.c: every table recorded as copied (init, inside its
 * transaction). */
int tstate_mark_all_copied(struct pgsb *b, char *err, size_t cap);

/* reload.c: SIGHUP: the config read again and applied whole, or refused
 * whole (main thread, between two pulled transactions).  reload_resume:
 * the table list of a reload made while Postgres was out of reach
 * (tables_deferred), resolved once it answers. */
void reload_apply(struct pgsb *b);
void reload_resume(struct pgsb *b);
/* reload_offline.c: the new config's tables from the old entries alone
 * (Postgres out of reach); sets tables_deferred when the catalogue must
 * still say something.  Inside the pull's transaction. */
int reload_offline_tables(struct pgsb *b, const struct br_table *old, size_t old_n,
                          const struct cfg *old_cfg, char *err, size_t cap);

/* push.c: local changes to Postgres */
int push_reconcile(struct pgsb *b, char *err, size_t cap);
/* Before the pull starts: a push cut off between its commit and its mark
 * is settled (connects the push when there is one).  0 or -1. */
int push_recover_first(struct pgsb *b, char *err, size_t cap);
int push_pending(struct pgsb *b, size_t max_batches, char *err, size_t cap);
void push_close(struct pgsb *b);
void push_free(struct pgsb *b);
bool push_has_pending(struct pgsb *b);
int push_ensure_schema(struct pgsb *b, char *err, size_t cap);
int push_prune_tracked(struct pgsb *b, uint64_t applied_lsn);
int push_remote_is_stale(struct pgsb *b, const char *local_table, const char *key_json,
                         uint64_t xact_end);

/* push_worker.c: the push's thread and the commit window it shares with
 * the pull.  Without a worker (`sync`) the push runs on the caller's
 * thread and the window functions do nothing. */
int push_worker_start(struct pgsb *b, char *err, size_t cap);
void push_worker_stop(struct pgsb *b);
bool push_worker_request(struct pgsb *b); /* false: no worker, or in a backoff */
void push_worker_poll(struct pgsb *b);
bool push_worker_busy(struct pgsb *b);
int push_window_enter(struct pgsb *b) __attribute__((warn_unused_result));
void push_window_leave(struct pgsb *b);
/* Cancels the push's statement in hand (any thread). */
void push_cancel(struct pgsb *b);

/* tail.c: noticing local commits */
int tail_start(struct pgsb *b);
void tail_stop(struct pgsb *b);
bool tail_changed(struct pgsb *b);
/* Critical tables first, then high, medium, low; the config's order within
 * each (pgconn.c). */
void br_sort_tables_by_priority(struct pgsb *b);
/* A push round ended: catch up on wake-ups it made us ignore. */
void tail_after_push(struct pgsb *b);

/* conflict.c: the merge point */
enum conflict_winner { WIN_LOCAL, WIN_REMOTE, WIN_MERGED };
struct conflict_case {
	const struct br_table *t;
	char op;                  /* the local net change: I, U, D */
	const char *base_json;    /* local old image (NULL for I) */
	const char *local_json;   /* local new image (NULL for D) */
	const char *local_time;   /* the local change's time (ISO-8601) */
	PGresult *remote;         /* the row now in Postgres (0 or 1 row) */
	const char *remote_time;  /* its commit timestamp, or NULL */
	char *merged_json;        /* WIN_MERGED: the row to keep (malloc'd) */
};
enum conflict_winner conflict_decide(struct pgsb *b, struct conflict_case *cc);
int64_t conflict_parse_time(const char *s);
/* Does the table's strategy decide by the two versions' times (last-write-wins,
 * and merge for an insert or a delete)? */
bool conflict_by_time(const struct pgsb *b, const struct br_table *t);
char *conflict_remote_json(PGresult *r);
const char *conflict_resolution_name(enum conflict_winner w, enum cfg_conflict strategy);
void ev_emit_conflict(struct pgsb *b, const char *table, const char *pk, const char *strategy,
                      const char *resolution);

/* push_fence.c: remote deletes of rows the push has in flight, noted by
 * the pull, and the fence through the stream the push waits for before it
 * reads them. */
int fence_init(struct pgsb *b);
void fence_free(struct pgsb *b);
void fence_note_delete(struct pgsb *b, const char *table, const char *pk, const char *when);
void fence_message(struct pgsb *b, const struct dec_record *rec);
/* The commit time of the remote delete of (table, pk) the pull noted, once
 * the stream has passed a fence put in now: true and when filled, or
 * false (none noted, or the stream did not pass the fence within 1 s). */
bool fence_delete_time(struct pgsb *b, const char *table, const char *pk, char *when, size_t cap);

/* run.c */
void run_connection_lost(struct pgsb *b, const char *why, bool retrying);
/* A local commit was seen: push now, after the debounce, or at the next
 * session, as the mode says. */
void run_local_commit_seen(struct pgsb *b);
bool run_session_at_end(struct pgsb *b); /* a session reached its target and pushed */
int run_loop(struct pgsb *b);

#endif
