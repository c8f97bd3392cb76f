/* metrics.c: the bridge's counters and gauges, and the text of /metrics
 * (Prometheus text exposition format 0.0.4) and /healthz.  The counters
 * are bumped from both threads (C11 atomics; the labelled conflict counts
 * under a mutex); the gauges are read at scrape time on the main thread,
 * which owns the replication state and the pull's SQLite connection.  The
 * HTTP side is metrics_http.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br.h"
#include "log.h"

#define HEALTH_GRACE_S 60 /* the retry budget: down this long is unhealthy */

void metrics_init(struct br_metrics *m)
{
	atomic_store(&m->apply_lag_us, -1);
	pthread_mutex_init(&m->mu, NULL);
}

void metrics_destroy(struct br_metrics *m)
{
	pthread_mutex_destroy(&m->mu);
}

void metrics_pulled(struct pgsb *b, uint64_t rows, uint64_t xacts, const char *commit_time)
{
	struct br_metrics *m = &b->metrics;
	int64_t at = commit_time && *commit_time ? conflict_parse_time(commit_time) : INT64_MIN;

	atomic_fetch_add(&m->pulled_rows, rows);
	atomic_fetch_add(&m->pulled_xacts, xacts);
	if (at != INT64_MIN && xacts) {
		int64_t lag = br_now_us() - at;
		atomic_store(&m->apply_lag_us, lag < 0 ? 0 : lag);
	}
}

void metrics_pushed(struct br_metrics *m, uint64_t rows)
{
	atomic_fetch_add(&m->pushed_rows, rows);
	atomic_fetch_add(&m->pushed_xacts, 1);
}

void metrics_conflict(struct br_metrics *m, const char *table, const char *strategy,
                      const char *resolution)
{
	if (resolution && strncmp(resolution, "rejected", 8) == 0) {
		atomic_fetch_add(&m->rejected, 1);
		return;
	}
	pthread_mutex_lock(&m->mu);
	size_t i = 0;
	for (; i < m->nconflicts; i++)
		if (!strcmp(m->conflicts[i].table, table) && !strcmp(m->conflicts[i].strategy, strategy))
			break;
	if (i == m->nconflicts && i < METRICS_MAX_CONFLICT_LABELS) {
		snprintf(m->conflicts[i].table, sizeof m->conflicts[i].table, "%s", table);
		snprintf(m->conflicts[i].strategy, sizeof m->conflicts[i].strategy, "%s", strategy);
		m->nconflicts++;
	}
	if (i < m->nconflicts)
		m->conflicts[i].n++;
	pthread_mutex_unlock(&m->mu);
}

void metrics_server_lsn(struct br_metrics *m, uint64_t lsn)
{
	uint64_t cur = atomic_load(&m->server_lsn);

	while (lsn > cur && !atomic_compare_exchange_weak(&m->server_lsn, &cur, lsn))
		;
}

void metrics_down(struct br_metrics *m, const char *why)
{
	if (!m->down_since_us)
		m->down_since_us = br_now_us();
	snprintf(m->last_error, sizeof m->last_error, "%s", why ? why : "");
}

void metrics_up(struct br_metrics *m, bool reconnect, uint64_t server_lsn)
{
	if (reconnect)
		atomic_fetch_add(&m->reconnects, 1);
	metrics_server_lsn(m, server_lsn);
	m->down_since_us = 0;
	m->last_error[0] = '\0';
}

/* ---- /metrics ---- */

static void head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP pgsqlite_bridge_%s %s\n# TYPE pgsqlite_bridge_%s %s\n", name, help, name, type);
}

static void counter(FILE *f, const char *name, const char *help, _Atomic uint64_t *v)
{
	head(f, name, "counter", help);
	fprintf(f, "pgsqlite_bridge_%s %llu\n", name, (unsigned long long)atomic_load(v));
}

static void gauge(FILE *f, const char *name, const char *help, double v)
{
	head(f, name, "gauge", help);
	fprintf(f, "pgsqlite_bridge_%s %.17g\n", name, v);
}

/* A label value: backslash, double quote and newline escaped. */
static void label_value(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void conflicts(FILE *f, struct br_metrics *m)
{
	head(f, "conflicts_total", "counter", "Conflicts at the merge point, by table and strategy.");
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->nconflicts; i++) {
		fputs("pgsqlite_bridge_conflicts_total{table=\"", f);
		label_value(f, m->conflicts[i].table);
		fputs("\",strategy=\"", f);
		label_value(f, m->conflicts[i].strategy);
		fprintf(f, "\"} %llu\n", (unsigned long long)m->conflicts[i].n);
	}
	pthread_mutex_unlock(&m->mu);
}

/* Pages in use (free pages do not count), in bytes. */
static double storage_used(struct pgsb *b)
{
	int64_t used = sl_used_bytes(b->db);
	return used < 0 ? 0.0 : (double)used;
}

static void gauges(FILE *f, struct pgsb *b)
{
	struct br_metrics *m = &b->metrics;
	uint64_t server = atomic_load(&m->server_lsn), applied = b->repl.committed_lsn;
	int64_t lag_us = atomic_load(&m->apply_lag_us);

	gauge(f, "slot_lag_bytes", "Server WAL position minus the applied LSN.",
	      server > applied ? (double)(server - applied) : 0.0);
	gauge(f, "apply_lag_seconds", "Last pulled batch: Postgres commit time to SQLite commit.",
	      lag_us < 0 ? 0.0 : (double)lag_us / 1e6);
	gauge(f, "pending_local_changes", "Local changes not yet pushed.",
	      (double)sl_pending_changes(b->db));
	gauge(f, "storage_used_bytes", "SQLite pages in use times the page size.", storage_used(b));
	gauge(f, "storage_limit_bytes", "storage_limit (0: none).", (double)b->cfg->storage_limit);
	gauge(f, "connected", "1 while the replication connection streams.",
	      b->repl.state == REPL_STREAMING ? 1.0 : 0.0);
}

char *metrics_render(struct pgsb *b, size_t *len)
{
	struct br_metrics *m = &b->metrics;
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (!f)
		return NULL;
	counter(f, "pulled_rows_total", "Rows pulled from Postgres into SQLite.", &m->pulled_rows);
	counter(f, "pulled_transactions_total", "Postgres transactions pulled.", &m->pulled_xacts);
	counter(f, "pushed_rows_total", "Local rows pushed to Postgres.", &m->pushed_rows);
	counter(f, "pushed_transactions_total", "Push transactions committed in Postgres.",
	        &m->pushed_xacts);
	conflicts(f, m);
	counter(f, "rejected_changes_total", "Changes set aside as rejected.", &m->rejected);
	counter(f, "reconnects_total", "Replication connections re-established.", &m->reconnects);
	counter(f, "resyncs_total", "Full resynchronisations from a new slot.", &m->resyncs);
	gauges(f, b);
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ---- /healthz ---- */

static int64_t grace_us(void)
{
	const char *v = getenv("PGSQLITE_BRIDGE_HEALTH_GRACE");
	long s = v && *v ? strtol(v, NULL, 10) : HEALTH_GRACE_S;
	return (s < 0 ? 0 : (int64_t)s) * 1000000;
}

/* 200 while connected or down for less than the retry budget; else 503
 * with the reason.  The pull held by storage_limit (action error) is
 * unhealthy at once: the bridge is up but Postgres's changes wait. */
int metrics_health(struct pgsb *b, char *text, size_t cap)
{
	struct br_metrics *m = &b->metrics;
	int64_t down = m->down_since_us ? br_now_us() - m->down_since_us : 0;

	if (b->limits.hold_pull) {
		snprintf(text, cap, "pulling paused: the SQLite file is over storage_limit (action error)\n");
		return 503;
	}
	if (!m->down_since_us || down < grace_us()) {
		snprintf(text, cap, "ok\n");
		return 200;
	}
	snprintf(text, cap, "replication connection down for %lld s: %s\n",
	         (long long)(down / 1000000), m->last_error[0] ? m->last_error : "unknown error");
	return 503;
}
