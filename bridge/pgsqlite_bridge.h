/* pgsqlite_bridge.h: the public C API of pgsqlite-bridge, the library the
 * binary is a thin main over.  A bridge keeps one SQLite file in sync with
 * one PostgreSQL database through a wal2json logical replication slot. */
#ifndef PGSQLITE_BRIDGE_H
#define PGSQLITE_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define PGSB_VERSION "0.1.0"

struct cfg;  /* a loaded configuration (config/cfg.h) */
struct pgsb; /* a bridge */

/* Called for every event ("sync", "conflict", "offline", "online", "error",
 * "progress") with the event's name and its one-line JSON text. */
typedef void (*pgsb_event_fn)(const char *event, const char *json, void *arg);

/* Settles a conflict by the embedder's own rule.  table is the local table
 * name; base, local and remote are the row as JSON objects (base: before
 * the local change, NULL for an insert; local: the local version, NULL for
 * a delete; remote: the Postgres version, NULL when the row is gone there).
 * Return a malloc'd JSON object to keep on both sides, or NULL to let the
 * configured strategy decide. */
typedef char *(*pgsb_merge_fn)(const char *table, const char *base, const char *local,
                               const char *remote, void *arg);

/* Loads path (or $PGSQLITE_BRIDGE_CONFIG, or ./pgsqlite-bridge.conf when
 * path is NULL) plus environment overrides.  NULL on error, with a message
 * naming file, line, key and what is allowed in err. */
struct cfg *pgsb_config_load(const char *path, char *err, size_t errcap);
void pgsb_config_free(struct cfg *cfg);

/* A bridge over cfg (which must outlive it).  NULL with err on failure. */
struct pgsb *pgsb_new(struct cfg *cfg, char *err, size_t errcap);
void pgsb_free(struct pgsb *b);

/* Events go to this callback; by default they are printed as JSON lines on
 * stdout.  Pass NULL to silence them. */
void pgsb_set_event_callback(struct pgsb *b, pgsb_event_fn fn, void *arg);

/* Conflicts go to this callback first (see pgsb_merge_fn). */
void pgsb_set_merge_callback(struct pgsb *b, pgsb_merge_fn fn, void *arg);

/* The commands.  Each returns the process exit code the contract gives:
 * 0 success, 1 failure / a problem found. */
int pgsb_init(struct pgsb *b);              /* slot, snapshot copy, state */
int pgsb_run(struct pgsb *b);               /* sync continuously until stopped */
int pgsb_sync(struct pgsb *b, FILE *out);   /* one sync, JSON summary to out */
int pgsb_status(struct pgsb *b, FILE *out); /* state as JSON */
int pgsb_check(struct pgsb *b, FILE *out);  /* one line per problem */
int pgsb_drop(struct pgsb *b);              /* remove slot, origin, own tables */

/* Asks a running pgsb_run to stop gracefully / to sync now.  Safe to call
 * from a signal handler or another thread. */
void pgsb_request_stop(struct pgsb *b);
void pgsb_request_sync(struct pgsb *b);

#endif
