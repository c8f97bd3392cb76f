/* ch.h: the chaos run (`make chaos`) and the randomized model test
 * (`make soak`) share these pieces: a seeded random source, a string set,
 * the throwaway cluster and a database per run, real bridge processes
 * (spawned, killed with -9, restarted, stopped with SIGTERM), faults on the
 * server (restarts, walsender and push-backend kills), the final settle
 * (quiet, then `sync` until nothing moves) and the invariant checks with
 * their line-oriented report.  Everything is bounded in count and time;
 * every address is the loopback one. */
#ifndef PGSB_CHAOS_H
#define PGSB_CHAOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#define CH_MAX_CLIENTS 8

/* ---- ch_base.c: random numbers, time, messages, sets, small SQL helpers */
void ch_seed(uint64_t seed);
uint64_t ch_rand(void);
/* 0 <= r < n */
int ch_randint(int n);
double ch_now(void);                 /* monotonic seconds since the first ch_seed() */
void ch_sleep_ms(int ms);
void ch_iso_now(char *buf, size_t cap); /* UTC, microseconds, ISO-8601 */
/* Progress lines on stdout: "<prog>: [  12.3s] ...". */
void ch_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ch_set_prog(const char *prog);
const char *ch_prog(void);
long ch_env_long(const char *name, long fallback);
const char *ch_env_str(const char *name, const char *fallback);
/* A whole file, malloc'd ("" when missing); tail: its last `bytes` bytes. */
char *ch_slurp(const char *path);
char *ch_tail(const char *path, size_t bytes);
int ch_count(const char *haystack, const char *needle);

/* A set of strings, each with an integer. */
struct ch_set {
	char **keys;
	long *vals;
	size_t cap, n;
};
void ch_set_init(struct ch_set *s);
void ch_set_free(struct ch_set *s);
/* The value slot of key, inserted with 0 when absent. */
long *ch_set_slot(struct ch_set *s, const char *key);
long *ch_set_find(const struct ch_set *s, const char *key);

/* Postgres: NULL when it cannot connect. */
PGconn *ch_pg_connect(const char *conninfo);
/* Retries until it connects or timeout_ms passes. */
PGconn *ch_pg_wait(const char *conninfo, int timeout_ms);
/* 0 on success; else -1 with the message in err (if given). */
int ch_pg_exec(PGconn *c, const char *sql, char *err, size_t cap);
/* The single value of a query as a number; fallback on any failure. */
long ch_pg_long(PGconn *c, const char *sql, long fallback);
sqlite3 *ch_sqlite_open(const char *path, int busy_ms);
long ch_sqlite_long(const char *path, const char *sql, long fallback);

/* ---- ch_proc.c: the cluster, the database, bridge processes, faults ---- */
struct ch_env {
	char port[16];
	char pgdata[512];    /* the cluster's directory (pg-cluster.sh DIR) */
	bool own_cluster;    /* started here: stopped at the end */
	bool can_restart;    /* we know pgdata: restarts are possible */
	char dir[400];       /* this run's files */
	char bin[600];       /* the bridge binary */
	char pgbin[512];     /* the server's binaries (pg_ctl) */
	char db[64];
	char conninfo[300];        /* the run's database */
	char admin_conninfo[300];  /* database postgres */
	bool keep;           /* keep dir even when the run passes */
	char tables[200];    /* synced tables, comma-separated: what "quiet" watches */
	char casedir[480];   /* dir/db: the client directories of this database */
};

struct ch_client {
	int idx;
	char name[16];       /* c1, c2, ... */
	char slot[64];
	char dir[512];
	char conf[600];
	char sqlite[600];
	char out[600], err[600]; /* the bridge's stdout, stderr (appended) */
	char mode[16];
	char strategy[24];
	bool runs;           /* a `run` process should be up (false: manual) */
	pid_t pid;           /* current `run` process, 0 when none */
	double restart_at;   /* when a dead one is started again (0: never) */
	int online_base;     /* "online" events printed before the last start */
	int starts, kills9, self_exits;
	int last_self_code;
};

/* Creates the run's directory, starts a cluster when the environment
 * names none (PGSB_TEST_PGPORT, PGSB_TEST_PGDATA, PGSB_TEST_TMP,
 * PGSB_TEST_BIN as tests/run.sh exports), and a fresh database. */
int ch_env_setup(struct ch_env *e, const char *name);
/* A fresh database named db; conninfo and casedir follow it. */
int ch_env_new_db(struct ch_env *e, const char *db);
/* Kills leftover bridges, drops the database's slots and the clients'
 * origins, and the database itself unless keep (or the cluster is ours). */
void ch_env_drop_db(struct ch_env *e, struct ch_client *cl, int n, bool keep);
/* ch_env_drop_db, then stops an own cluster and removes the directory
 * unless keep. */
void ch_env_teardown(struct ch_env *e, struct ch_client *cl, int n, bool keep);
/* restart: 0 fast, 1 immediate.  0 on success. */
int ch_pg_restart(struct ch_env *e, int immediate);
/* Starts the server again if it is down (after a failed restart). */
void ch_pg_ensure_up(struct ch_env *e);

void ch_client_init(struct ch_env *e, struct ch_client *c, int idx, const char *mode,
                    const char *strategy, const char *tables);
/* Runs `pgsqlite-bridge cmd -c conf` to completion (killed after
 * timeout_ms: returns -1); its stdout into out. */
int ch_bridge_cmd(struct ch_env *e, struct ch_client *c, const char *cmd, char *out,
                  size_t cap, int timeout_ms);
void ch_bridge_start(struct ch_env *e, struct ch_client *c);
void ch_bridge_kill9(struct ch_client *c, double restart_in);
/* Reaps exited bridges (reporting ones that exited by themselves, with the
 * end of their stderr) and starts those whose restart time has come. */
void ch_bridges_poll(struct ch_env *e, struct ch_client *cl, int n);
/* SIGTERM to every running bridge; waits up to timeout_ms; kills -9 the
 * ones still up.  Returns how many did not stop with exit 0. */
int ch_bridges_stop(struct ch_client *cl, int n, int timeout_ms);
/* Waits until every running bridge printed one more "online" event than
 * before (bounded). */
void ch_bridges_wait_online(struct ch_client *cl, int n, int timeout_ms);

/* Faults; each returns 1 when it hit something. */
int ch_fault_walsender(struct ch_env *e);
int ch_fault_push_backend(struct ch_env *e);
enum { CH_F_KILL9, CH_F_PG_RESTART, CH_F_WALSENDER, CH_F_PUSH, CH_F_KINDS };
/* One fault of a kind: kill -9 of a random running bridge (restarted after
 * up to 1.5 s; for a manual client, its `sync` killed mid-way), a Postgres
 * restart (one in three -m immediate, counted in *immediate), a walsender
 * or a bridge backend terminated.  1 when it hit something; 0 when there
 * was nothing to hit (the caller may try again a moment later). */
int ch_fault(struct ch_env *e, struct ch_client *cl, int n, int kind, int *immediate);
/* A seeded plan of faults over `seconds`: counts[kind] of each, at times
 * spread over 3%..90% of it, sorted.  Returns how many (at most cap). */
struct ch_plan {
	double at;
	int kind;
};
int ch_plan_make(struct ch_plan *plan, int cap, const int *counts, double seconds);
/* Fires the plan's due faults (a miss is retried for up to 5 s); done[kind]
 * counts the hits.  *p is the next entry. */
void ch_plan_fire(struct ch_env *e, struct ch_client *cl, int n, const struct ch_plan *plan, int nplan,
                  int *p, double elapsed, int *done, int *immediate);

/* ---- ch_check.c: settle, invariants, report ---- */
struct ch_result {
	long committed;       /* ledger ids whose commit returned success */
	long lost, lost_pg, lost_client[CH_MAX_CLIENTS];
	long dup, dup_pg, dup_client[CH_MAX_CLIENTS];
	long reapplied_pg, reapplied_client[CH_MAX_CLIENTS]; /* upserts that changed nothing */
	long ledger_deletes_pg, ledger_deletes_client[CH_MAX_CLIENTS];
	long diverged, diverged_client[CH_MAX_CLIENTS];
	long invented;
	long conflicts, conflicts_client[CH_MAX_CLIENTS];
	long pending_after;   /* change-log rows left after the last sync */
	int sync_rounds, sync_failures, stop_failures;
	bool quiet;
	bool audit_missing;
	/* the model test's own figures (zero in the chaos run) */
	long model, rules, anomalies;
};

/* Creates ledger's audit table and trigger in Postgres (after the schema). */
int ch_pg_audit_install(PGconn *c);
/* In a client file after its init: a non-synced table counting physical
 * inserts, updates and deletes of ledger rows. */
int ch_sqlite_audit_install(const char *path);
/* Restarts dead bridges, waits for quiet, stops them with SIGTERM, then runs
 * `sync` for every client until a round moves nothing (bounded). */
void ch_settle(struct ch_env *e, struct ch_client *cl, int n, struct ch_result *r);
/* lost / duplicated / deleted: committed holds the committed ledger ids
 * (each with its commit time in ms since the epoch, or 0). */
void ch_check_ledger(struct ch_env *e, struct ch_client *cl, int n,
                     const struct ch_set *committed, struct ch_result *r);
/* Rows of a query (first column the key) that differ between Postgres and
 * each client; returns the total and adds it to r->diverged. */
long ch_check_table(struct ch_env *e, struct ch_client *cl, int n, const char *what,
                    const char *sql, struct ch_result *r);
void ch_count_conflicts(struct ch_client *cl, int n, struct ch_result *r);
/* The final report; returns the exit code (1 when lost, duplicated,
 * diverged, invented or one of the model test's figures is non-zero). */
int ch_report(struct ch_client *cl, int n, struct ch_result *r, uint64_t seed);
/* Lines of the bridges' stderr worth a look, counted per pattern. */
void ch_report_logs(struct ch_client *cl, int n);

#endif
