/* metrics.h: what the bridge counts for `metrics = host:port` (Prometheus
 * /metrics and /healthz, served by metrics.c from the event loop).
 * Counters are C11 atomics, bumped from the pull's thread and the push's;
 * the rest is read and written on the main thread only. */
#ifndef PGSB_METRICS_H
#define PGSB_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pgsb;
struct metrics_http;

#define METRICS_MAX_CONFLICT_LABELS 128

/* Conflicts counted by (table, strategy); under br_metrics.mu. */
struct metrics_conflict {
	char table[128];
	char strategy[32];
	uint64_t n;
};

struct br_metrics {
	_Atomic uint64_t pulled_rows, pulled_xacts;
	_Atomic uint64_t pushed_rows, pushed_xacts;
	_Atomic uint64_t rejected, reconnects, resyncs;
	_Atomic int64_t apply_lag_us;   /* last pulled batch: commit time to SQLite commit; -1 none */
	_Atomic uint64_t server_lsn;    /* highest server WAL position seen */
	pthread_mutex_t mu;
	struct metrics_conflict conflicts[METRICS_MAX_CONFLICT_LABELS];
	size_t nconflicts;
	/* main thread only */
	int64_t down_since_us;          /* replication connection lost at; 0 while fine */
	char last_error[512];
	struct metrics_http *http;
};

void metrics_init(struct br_metrics *m);
void metrics_destroy(struct br_metrics *m);

/* One-line hooks at the places things happen. */
void metrics_pulled(struct pgsb *b, uint64_t rows, uint64_t xacts, const char *commit_time);
void metrics_pushed(struct br_metrics *m, uint64_t rows);
void metrics_conflict(struct br_metrics *m, const char *table, const char *strategy,
                      const char *resolution);
void metrics_server_lsn(struct br_metrics *m, uint64_t lsn);
void metrics_down(struct br_metrics *m, const char *why);
void metrics_up(struct br_metrics *m, bool reconnect, uint64_t server_lsn);

/* The HTTP endpoint (`run` only), driven by the pgsb's libev loop. */
int metrics_start(struct pgsb *b, char *err, size_t cap);
void metrics_stop(struct pgsb *b);

/* The text of /metrics (malloc'd) and /healthz (status 200 or 503). */
char *metrics_render(struct pgsb *b, size_t *len);
int metrics_health(struct pgsb *b, char *text, size_t cap);

#endif
