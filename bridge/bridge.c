/* bridge.c: the library's entry points (pgsqlite_bridge.h): loading the
 * config, creating and freeing a bridge, and the commands init, run, sync,
 * status and drop. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <cJSON.h>

#include "br.h"
#include "exact.h"
#include "log.h"

int64_t br_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct cfg *pgsb_config_load(const char *path, char *err, size_t errcap)
{
	struct cfg *c = calloc(1, sizeof *c);
	struct cfg_error e;

	if (!path)
		path = getenv("PGSQLITE_BRIDGE_CONFIG");
	if (!path || !*path)
		path = "./pgsqlite-bridge.conf";
	if (!c) {
		snprintf(err, errcap, "out of memory");
		return NULL;
	}
	if (cfg_load(path, c, &e)) {
		snprintf(err, errcap, "%s", e.msg);
		free(c);
		return NULL;
	}
	return c;
}

void pgsb_config_free(struct cfg *cfg)
{
	if (!cfg)
		return;
	cfg_free(cfg);
	free(cfg);
}

struct pgsb *pgsb_new(struct cfg *cfg, char *err, size_t errcap)
{
	struct pgsb *b = calloc(1, sizeof *b);
	struct sl_err e;

	if (!b) {
		snprintf(err, errcap, "out of memory");
		return NULL;
	}
	b->cfg = cfg;
	b->event_fn = ev_print_default;
	pthread_mutex_init(&b->event_mu, NULL);
	pthread_mutex_init(&b->push.cancel_mu, NULL);
	metrics_init(&b->metrics);
	dec_parser_init(&b->dec);
	dec_parser_init(&b->push.base_dec);
	dec_parser_init(&b->push.final_dec);
	dec_parser_init(&b->push.key_dec);
	b->push.inotify_fd = -1;
	if (fence_init(b)) {
		snprintf(err, errcap, "out of memory");
		pgsb_free(b);
		return NULL;
	}
	cfg_mask_conninfo(cfg->postgres, b->conninfo_masked, sizeof b->conninfo_masked);
	/* The pull's commits are visible at once and synced before they are
	 * acknowledged to Postgres (repl_send_feedback): the sync is off the
	 * path a row takes to the app. */
	if (sl_open(cfg->sqlite, &b->db, &e) || sl_wal_defer_sync(b->db, 1000, &e)) {
		snprintf(err, errcap, "cannot open SQLite file \"%s\": %s", cfg->sqlite, e.msg);
		pgsb_free(b);
		return NULL;
	}
	/* The push's own connection to the file: pull and push never share a
	 * SQLite transaction. */
	if (sl_open(cfg->sqlite, &b->push.db, &e)) {
		snprintf(err, errcap, "cannot open SQLite file \"%s\": %s", cfg->sqlite, e.msg);
		pgsb_free(b);
		return NULL;
	}
	b->loop = ev_loop_new(EVFLAG_AUTO);
	if (!b->loop) {
		snprintf(err, errcap, "cannot create the event loop");
		pgsb_free(b);
		return NULL;
	}
	return b;
}

void pgsb_free(struct pgsb *b)
{
	if (!b)
		return;
	if (b->repl.conn)
		repl_close(b);
	push_close(b);
	push_free(b);
	exact_close(&b->exact_conn);
	for (size_t i = 0; i < b->ntables; i++) {
		free(b->tables[i].schema);
		free(b->tables[i].name);
		pgc_free_columns(b->tables[i].pgcols, b->tables[i].npgcols);
	}
	free(b->tables);
	sl_close(b->db);
	sl_close(b->push.db);
	pthread_mutex_destroy(&b->event_mu);
	pthread_mutex_destroy(&b->push.cancel_mu);
	fence_free(b);
	metrics_destroy(&b->metrics);
	dec_parser_free(&b->dec);
	dec_parser_free(&b->push.base_dec);
	dec_parser_free(&b->push.final_dec);
	dec_parser_free(&b->push.key_dec);
	if (b->loop)
		ev_loop_destroy(b->loop);
	free(b);
}

void pgsb_set_event_callback(struct pgsb *b, pgsb_event_fn fn, void *arg)
{
	b->event_fn = fn;
	b->event_arg = arg;
}

void pgsb_set_merge_callback(struct pgsb *b, pgsb_merge_fn fn, void *arg)
{
	b->merge_fn = fn;
	b->merge_arg = arg;
}

void pgsb_request_stop(struct pgsb *b)
{
	b->stop_requested = 1;
}

void pgsb_request_sync(struct pgsb *b)
{
	b->sync_requested = 1;
}

int pgsb_init(struct pgsb *b)
{
	char err[1024];

	if (snap_init(b, false, err, sizeof err)) {
		log_error("init failed: %s", err);
		ev_emit_error(b, err, false);
		return 1;
	}
	log_info("initialized: slot \"%s\", %zu tables", b->cfg->slot, b->ntables);
	return 0;
}

/* Signals that arrive before the event loop watches them (while run's
 * init waits for a server): remembered, never fatal. */
static volatile sig_atomic_t early_stop, early_sync;

static void on_early_signal(int sig)
{
	if (sig == SIGUSR1)
		early_sync = 1;
	else if (sig == SIGTERM || sig == SIGINT)
		early_stop = 1;
}

static void catch_early_signals(void)
{
	struct sigaction sa;
	int sigs[] = {SIGUSR1, SIGHUP, SIGTERM, SIGINT};

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_early_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaction(sigs[i], &sa, NULL);
}

/* Did init fail because the server went away or is not up yet (worth
 * retrying), rather than for something a person must fix? */
static bool init_failure_transient(struct pgsb *b, const char *err)
{
	static const char *const words[] = {
		"terminating connection", "server closed the connection", "could not connect",
		"connection to server", "the database system is", "no connection to the server",
		"could not receive data", "could not send data", "Connection refused", "timeout expired",
	};

	if (PQping(b->cfg->postgres) != PQPING_OK)
		return true;
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (strstr(err, words[i]))
			return true;
	return false;
}

/* run's init: a server that is down or restarting is waited for (capped
 * backoff, an error event each time), since a supervisor would only start
 * us again; a real problem (privileges, no wal2json, a bad table) stops. */
static int init_retrying(struct pgsb *b)
{
	char err[1024];
	int backoff_ms = 250;

	for (;;) {
		if (snap_init(b, false, err, sizeof err) == 0) {
			log_info("initialized: slot \"%s\", %zu tables", b->cfg->slot, b->ntables);
			return 0;
		}
		bool again = init_failure_transient(b, err);
		log_error("init failed: %s%s", err, again ? "; retrying" : "");
		ev_emit_error(b, err, again);
		if (!again || early_stop)
			return 1;
		struct timespec ts = {backoff_ms / 1000, (long)(backoff_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
		if (early_stop)
			return 1;
		backoff_ms = backoff_ms * 2 > 15000 ? 15000 : backoff_ms * 2;
	}
}

/* init if needed, the tables resolved, the position loaded. */
static int prepare(struct pgsb *b, bool retry)
{
	char err[1024];

	if (retry ? init_retrying(b) : pgsb_init(b))
		return -1;
	if (pull_load_position(b, err, sizeof err) || push_ensure_schema(b, err, sizeof err)) {
		log_error("%s", err);
		return -1;
	}
	/* A push cut off between its commit and its mark is settled before
	 * anything is pulled: its rows must be known as ours when the stream
	 * brings them back. */
	for (int backoff_ms = 250; push_recover_first(b, err, sizeof err); ) {
		log_error("cannot settle the last push: %s%s", err, retry ? "; retrying" : "");
		ev_emit_error(b, err, retry);
		if (!retry || early_stop)
			return -1;
		struct timespec ts = {backoff_ms / 1000, (long)(backoff_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
		backoff_ms = backoff_ms * 2 > 15000 ? 15000 : backoff_ms * 2;
	}
	return 0;
}

/* sync's push half: every pending local change.  0 or -1. */
static int sync_push(struct pgsb *b)
{
	char err[1024];
	int rc;

	while ((rc = push_pending(b, 50, err, sizeof err)) > 0)
		;
	if (rc < 0) {
		log_error("push failed: %s", err);
		ev_emit_error(b, err, false);
	}
	return rc;
}

int pgsb_run(struct pgsb *b)
{
	catch_early_signals();
	if (prepare(b, true))
		return early_stop ? 0 : 1;
	if (early_stop)
		return 0;
	b->sync_requested = early_sync;
	log_info("running in %s mode", cfg_mode_name(b->cfg->mode));
	int rc = run_loop(b);
	log_info("stopped");
	return rc;
}

/* This process's own peak resident set (VmHWM), in kB, or -1.  Not
 * getrusage's ru_maxrss: Linux carries the forking parent's peak across
 * exec into it. */
static long peak_rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

int pgsb_sync(struct pgsb *b, FILE *out)
{
	if (prepare(b, false))
		return 1;
	b->one_shot = b->session_active = true;
	b->stats.started_us = br_now_us();
	b->stats.rows = b->stats.xacts = 0;
	if (limits_hold_pull(b)) { /* over storage_limit: push first, so the file can drain */
		sync_push(b);
		b->limits.last_check_us = 0;
	}
	int rc = limits_hold_pull(b) ? 1 : run_loop(b);
	bool pulled = rc == 0 && b->repl.target_reached;
	int pushed = pulled || b->limits.hold_pull ? sync_push(b) : -1;
	char lsn[32];
	dec_format_lsn(b->repl.committed_lsn, lsn, sizeof lsn);
	fprintf(out, "{\"ok\":%s,\"direction\":\"both\",\"rows\":%llu,\"transactions\":%llu,"
	        "\"pushed_rows\":%llu,\"conflicts\":%llu,\"pending_local\":%lld,"
	        "\"duration_ms\":%lld,\"applied_lsn\":\"%s\",\"peak_rss_kb\":%ld}\n",
	        pulled && pushed == 0 ? "true" : "false",
	        (unsigned long long)b->stats.rows, (unsigned long long)b->stats.xacts,
	        (unsigned long long)b->push.rows, (unsigned long long)b->push.conflicts,
	        (long long)sl_pending_changes(b->db),
	        (long long)((br_now_us() - b->stats.started_us) / 1000), lsn, peak_rss_kb());
	fflush(out);
	return pulled && pushed == 0 ? 0 : 1;
}
