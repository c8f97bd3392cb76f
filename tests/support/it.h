/* it.h: helpers for the integration tests: a fresh database and slot per
 * test on the throwaway cluster tests/run.sh started, SQL on it, the
 * bridge's config file, real bridge processes, and polling waits. */
#ifndef PGSB_IT_H
#define PGSB_IT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>
#include <sqlite3.h>

struct it_env {
	char name[48];      /* test's short name: database, slot and files derive from it */
	char db[64];
	char slot[64];
	char conninfo[256];
	char dir[512];      /* temp dir of this test */
	char conf[600];
	char sqlite[600];
	PGconn *pg;
	bool shares_pg;     /* a second client of another env's database */
	pid_t bg[16];       /* bridges started in the background: killed at teardown */
	int nbg;
};

void it_setup(struct it_env *e, const char *name);
/* A further client of base's database: its own SQLite file, slot and
 * config, the same Postgres database. */
void it_add_client(struct it_env *base, struct it_env *client, const char *suffix);
/* Runs an SQL statement on the env's SQLite file as an application would. */
void it_sqlite_exec(struct it_env *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void it_teardown(struct it_env *e);
/* Writes the config: [bridge] with postgres, sqlite, slot, mode, then extra. */
void it_write_conf(struct it_env *e, const char *mode, const char *extra);

void it_sql(struct it_env *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The single value of a query (malloc'd), NULL if SQL NULL. */
char *it_sql_value(struct it_env *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int64_t it_sql_int(struct it_env *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs `pgsqlite-bridge CMD -c conf` to completion; stdout into out. */
int it_bridge(struct it_env *e, const char *cmd, char *out, size_t cap);
/* Starts it in the background (stdout, stderr to files in the test dir). */
pid_t it_bridge_start(struct it_env *e, const char *cmd);
/* Starts `run` in the background and waits until it says "online"
 * (streaming); asserts it does within 30 s. */
pid_t it_run_online(struct it_env *e);
/* SIGTERM, and asserts a graceful exit (0) within 30 s. */
void it_stop(struct it_env *e, pid_t pid);
/* How many times needle occurs in haystack. */
int it_count(const char *haystack, const char *needle);
/* Waits for it, returns the exit code (or 128+signal); kills after timeout_ms. */
int it_bridge_wait(pid_t pid, int timeout_ms);
void it_bridge_kill9(pid_t pid);
/* Every string these helpers return is freed by it_teardown: do not free it. */

/* Contents of the started bridge's stdout / stderr files. */
char *it_bridge_stdout(struct it_env *e);
char *it_bridge_stderr(struct it_env *e);

sqlite3 *it_sqlite_open(struct it_env *e);
int64_t it_sqlite_int(struct it_env *e, const char *sql);
char *it_sqlite_text(struct it_env *e, const char *sql);
/* Polls until the SQLite query's integer equals want; false on timeout. */
bool it_wait_sqlite_int(struct it_env *e, const char *sql, int64_t want, int timeout_ms);
/* Same for a query on Postgres. */
bool it_wait_pg_int(struct it_env *e, const char *sql, int64_t want, int timeout_ms);

/* Rows of a query rendered as "v1|v2\n..." (Postgres / SQLite). */
char *it_pg_rows(struct it_env *e, const char *sql);
char *it_sqlite_rows(struct it_env *e, const char *sql);

void it_sleep_ms(int ms);
/* Restarts the throwaway cluster (tests/pg-cluster.sh restart). */
void it_pg_restart(void);
/* Stops / starts it again on the same port. */
void it_pg_stop(void);
void it_pg_start(void);

#endif
