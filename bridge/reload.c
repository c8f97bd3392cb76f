/* reload.c: SIGHUP reads the config file again and applies it whole, or
 * refuses it whole with the old config left in force.  Refused: a file
 * that does not load or validate, and a change to what only a restart can
 * change (postgres, sqlite, slot, metrics).  Applied: mode, interval,
 * debounce, conflict strategies, directions, skip, priorities, limits,
 * log format and the table list.  The push thread reads the config and
 * the tables, so it is stopped around the swap and started again after;
 * the pull runs on this thread and is between two transactions here.
 * Tables whose remote side is pulled again (new, skip turned off, no
 * longer push-only) are copied by an online snapshot (table_snap.c).
 * With Postgres out of reach the reload applies all the same, the table
 * list resolved later (reload_offline.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br.h"
#include "log.h"

static bool same(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/* The first key that cannot change while running, or NULL. */
static const char *fixed_key_changed(const struct cfg *old, const struct cfg *next)
{
	if (!same(old->postgres, next->postgres))
		return "postgres";
	if (!same(old->sqlite, next->sqlite))
		return "sqlite";
	if (!same(old->slot, next->slot))
		return "slot";
	if (!same(old->metrics, next->metrics))
		return "metrics";
	return NULL;
}

static void refuse(struct pgsb *b, const char *why)
{
	char msg[1400];

	snprintf(msg, sizeof msg, "configuration reload refused: %s; the configuration in force "
	         "stays unchanged", why);
	log_error("%s", msg);
	ev_emit_error(b, msg, true);
}

static void free_tables(struct br_table *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(t[i].schema);
		free(t[i].name);
		pgc_free_columns(t[i].pgcols, t[i].npgcols);
	}
	free(t);
}

/* What the stream's START_REPLICATION depends on: the pulled tables. */
static char *stream_signature(const struct pgsb *b)
{
	char *s = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&s, &len);

	for (size_t i = 0; m && i < b->ntables; i++)
		fprintf(m, "%s.%s:%d\n", b->tables[i].schema, b->tables[i].name,
		        b->tables[i].direction == CFG_DIRECTION_PUSH);
	if (m)
		fclose(m);
	return s;
}

/* Every table has a key, a local table that fits, and triggers that
 * match its direction. */
static int prepare_tables(struct pgsb *b, PGconn *pc, char *err, size_t cap)
{
	struct sl_err e;

	for (size_t i = 0; i < b->ntables; i++) {
		struct br_table *t = &b->tables[i];
		struct sl_column *cols;
		size_t n, pk = 0;
		if (pgc_table_columns(pc, t, &cols, &n, err, cap))
			return -1;
		for (size_t k = 0; k < n; k++)
			pk += cols[k].pk_pos > 0;
		int rc = pk ? sl_ensure_table(b->db, t->schema, t->name, cols, n, &e) : 0;
		int bad_order = limits_check_table(b, t, cols, n, err, cap); /* order_column */
		pgc_free_columns(cols, n);
		if (bad_order)
			return -1;
		if (!pk) {
			snprintf(err, cap, "table \"%s.%s\" has no primary key: add one to sync it",
			         t->schema, t->name);
			return -1;
		}
		if (rc == 0)
			rc = t->direction == CFG_DIRECTION_PULL ? sl_capture_remove(b->db, t->local, &e)
			                                        : sl_capture_install(b->db, t->local, &e);
		if (rc) {
			snprintf(err, cap, "cannot prepare \"%s\": %s", t->local, e.msg);
			return -1;
		}
	}
	return 0;
}

/* The tables of the new config, resolved and prepared in the pull's
 * transaction; on failure nothing of it stays.  Postgres out of reach:
 * what needs no catalogue now, the rest once it answers
 * (reload_offline.c). */
static int switch_tables(struct pgsb *b, const struct br_table *old, size_t old_n,
                         const struct cfg *old_cfg, char *err, size_t cap)
{
	PGconn *pc = pgc_connect(b, false, err, cap);
	int rc = -1;

	if (!pc)
		log_warn("configuration reload: Postgres cannot be reached (%s)", err);
	b->tables_deferred = false;
	if (pull_ensure_batch(b, err, cap) == 0 &&
	    (pc ? pgc_resolve_tables(b, pc, err, cap) == 0 && prepare_tables(b, pc, err, cap) == 0
	        : reload_offline_tables(b, old, old_n, old_cfg, err, cap) == 0))
		rc = pull_commit_batch(b, err, cap);
	if (rc)
		pull_abort_batch(b);
	PQfinish(pc);
	return rc;
}

/* The new config in place, or the old one back.  0 or -1 with err. */
static int swap_config(struct pgsb *b, struct cfg *next, char *err, size_t cap)
{
	struct cfg old = *b->cfg;
	struct br_table *old_tables = b->tables;
	size_t old_n = b->ntables;

	bool old_deferred = b->tables_deferred;

	*b->cfg = *next;
	b->tables = NULL;
	b->ntables = 0;
	if (switch_tables(b, old_tables, old_n, &old, err, cap)) {
		free_tables(b->tables, b->ntables);
		b->tables = old_tables;
		b->ntables = old_n;
		b->tables_deferred = old_deferred;
		*next = *b->cfg;
		*b->cfg = old;
		return -1;
	}
	free_tables(old_tables, old_n);
	*next = old; /* freed by the caller */
	return 0;
}

/* The stream starts again when what it asks for changed; a mode change
 * begins a session now. */
static void restart_stream(struct pgsb *b, bool mode_changed)
{
	char err[512];

	if (b->repl.state != REPL_IDLE) {
		if (pull_commit_batch(b, err, sizeof err))
			log_error("%s", err);
		repl_send_feedback(b, false);
		pull_abort_batch(b);
		repl_close(b);
	}
	b->repl.next_attempt_us = 0;
	if (mode_changed) {
		b->session_active = false;
		b->repl.target_lsn = 0;
		b->repl.target_reached = false;
		b->next_session_us = 0;
	}
}

static enum log_level current_level(void)
{
	enum log_level l = LOG_DEBUG;

	while (l < LOG_ERROR && !log_enabled(l))
		l++;
	return l;
}

/* The new config is in force: what depends on it follows. */
static void after_swap(struct pgsb *b, enum cfg_mode old_mode, const char *old_sig, bool worker,
                       bool applied)
{
	char err[1024];
	char *sig = stream_signature(b);
	bool mode_changed = old_mode != b->cfg->mode;

	if (applied)
		log_setup(current_level(), b->cfg->log_format == CFG_LOG_JSON);
	if (tsnap_reschedule(b, err, sizeof err)) {
		log_error("%s", err);
		ev_emit_error(b, err, true);
	}
	if (mode_changed || !sig || !old_sig || strcmp(sig, old_sig) != 0)
		restart_stream(b, mode_changed);
	free(sig);
	if (worker && push_worker_start(b, err, sizeof err)) {
		log_error("%s", err);
		b->exit_code = 1;
		ev_break(b->loop, EVBREAK_ALL);
		return;
	}
	b->push.wanted = push_has_pending(b);
	if (applied)
		log_info("configuration reloaded from \"%s\": mode %s, %zu tables", b->cfg->path,
	         cfg_mode_name(b->cfg->mode), b->ntables);
}

/* Postgres answers again after a reload it missed: the table list is
 * resolved from the catalogue, and tables added are copied online.  On a
 * failure the list stays as it was, with an error. */
void reload_resume(struct pgsb *b)
{
	char err[1024], msg[1200];
	struct br_table *old_tables = b->tables;
	size_t old_n = b->ntables;

	if (PQping(b->cfg->postgres) != PQPING_OK)
		return; /* not yet */
	if (pull_commit_batch(b, err, sizeof err)) {
		log_error("%s", err);
		return;
	}
	tsnap_abort(b);
	bool worker = b->push.worker != NULL;
	char *old_sig = stream_signature(b);
	push_worker_stop(b);
	b->tables = NULL;
	b->ntables = 0;
	if (switch_tables(b, old_tables, old_n, b->cfg, err, sizeof err)) {
		free_tables(b->tables, b->ntables);
		b->tables = old_tables;
		b->ntables = old_n;
		b->tables_deferred = false;
		snprintf(msg, sizeof msg, "the tables of \"%s\" cannot be resolved: %s; the tables in "
		         "force stay unchanged", b->cfg->path, err);
		log_error("%s", msg);
		ev_emit_error(b, msg, true);
	} else {
		free_tables(old_tables, old_n);
		if (!b->tables_deferred)
			log_info("Postgres answers: the table list of \"%s\" is resolved (%zu tables)",
			         b->cfg->path, b->ntables);
	}
	after_swap(b, b->cfg->mode, old_sig, worker, false);
	free(old_sig);
}

void reload_apply(struct pgsb *b)
{
	struct cfg next = {0};
	struct cfg_error ce;
	char err[1024], why[1200];

	log_info("SIGHUP: reloading the configuration from \"%s\"", b->cfg->path);
	if (cfg_load(b->cfg->path, &next, &ce)) {
		refuse(b, ce.msg);
		return;
	}
	const char *key = fixed_key_changed(b->cfg, &next);
	if (key) {
		snprintf(why, sizeof why, "%s: key '%s' in [bridge] cannot change while the bridge "
		         "runs (restart it to change it)", b->cfg->path, key);
		refuse(b, why);
		cfg_free(&next);
		return;
	}
	if (pull_commit_batch(b, err, sizeof err)) {
		refuse(b, err);
		cfg_free(&next);
		return;
	}
	tsnap_abort(b); /* first: it gives the push thread back if it had it stopped */
	bool worker = b->push.worker != NULL;
	enum cfg_mode old_mode = b->cfg->mode;
	char *old_sig = stream_signature(b);
	push_worker_stop(b);
	bool applied = swap_config(b, &next, err, sizeof err) == 0;
	if (!applied) {
		snprintf(why, sizeof why, "%s: %s", b->cfg->path, err);
		refuse(b, why);
	}
	cfg_free(&next); /* the old config, or the refused new one */
	after_swap(b, old_mode, old_sig, worker, applied);
	free(old_sig);
}
