/* limits.c: max_records (each table keeps its newest rows, after every
 * applied batch) and storage_limit (pages in use, checked before each
 * sync and after each applied batch; warn, error or prune).  Pruning is
 * local only: it runs inside the bridge's own SQLite transaction, where
 * the change-log triggers stay quiet, so it is never captured, pushed or
 * taken for a conflict; rows with pending local changes are kept. */
#include <stdio.h>
#include <string.h>

#include "br.h"
#include "limits.h"
#include "log.h"

#define EVENT_EVERY_US 60000000LL /* while over the limit: an error event at most this often */
#define HELD_CHECK_US 1000000LL   /* while held: measure this often */
#define PRUNE_ROUNDS 200          /* storage prune: rounds of a tenth of each table at most */

static const struct cfg_table *cfg_of(const struct pgsb *b, const struct br_table *t)
{
	for (size_t i = 0; i < b->cfg->ntables; i++) {
		const struct cfg_table *c = &b->cfg->tables[i];
		if (strcmp(c->schema, t->schema) == 0 && strcmp(c->name, t->name) == 0)
			return c;
	}
	return NULL;
}

/* The table's pruning order, or false when it has none (or is skipped). */
static bool prune_spec(const struct pgsb *b, const struct br_table *t, struct sl_prune *p,
                       int64_t *max_records)
{
	const struct cfg_table *c = cfg_of(b, t);

	if (!c || !c->order_column || t->skip)
		return false;
	p->table = t->local;
	p->order_column = c->order_column;
	p->numeric = t->order_numeric;
	*max_records = c->max_records;
	return true;
}

static void human(int64_t bytes, char *buf, size_t cap)
{
	if (bytes >= 10LL << 20)
		snprintf(buf, cap, "%.1f MB", (double)bytes / (1 << 20));
	else if (bytes >= 10LL << 10)
		snprintf(buf, cap, "%.1f KB", (double)bytes / (1 << 10));
	else
		snprintf(buf, cap, "%lld bytes", (long long)bytes);
}

/* "storage_limit exceeded: 12.3 MB of pages in use, limit 10.0 MB" */
static void over_text(const struct pgsb *b, int64_t used, char *buf, size_t cap)
{
	char u[32], l[32];

	human(used, u, sizeof u);
	human(b->cfg->storage_limit, l, sizeof l);
	snprintf(buf, cap, "storage_limit exceeded: %s of pages in use in \"%s\", limit %s", u,
	         b->cfg->sqlite, l);
}

/* max_records: every table keeps its newest rows. */
static int prune_max_records(struct pgsb *b, char *err, size_t cap)
{
	for (size_t i = 0; i < b->ntables; i++) {
		struct sl_prune p;
		int64_t max = 0, deleted = 0;
		struct sl_err e;
		if (!prune_spec(b, &b->tables[i], &p, &max) || max <= 0)
			continue;
		if (sl_prune_keep(b->db, &p, max, &deleted, &e)) {
			snprintf(err, cap, "%s", e.msg);
			return -1;
		}
		if (deleted)
			log_debug("pruned %lld rows of \"%s\" (max_records = %lld)", (long long)deleted,
			          p.table, (long long)max);
	}
	return 0;
}

/* One round of the storage prune: a tenth of each prunable table, oldest
 * first.  *deleted: rows deleted in all. */
static int prune_round(struct pgsb *b, int64_t *deleted, char *err, size_t cap)
{
	*deleted = 0;
	for (size_t i = 0; i < b->ntables; i++) {
		struct sl_prune p;
		int64_t max, n = 0, rows;
		struct sl_err e;
		if (!prune_spec(b, &b->tables[i], &p, &max) || (rows = sl_table_rows(b->db, p.table)) <= 0)
			continue;
		if (sl_prune_oldest(b->db, &p, rows / 10 + 1, &n, &e)) {
			snprintf(err, cap, "%s", e.msg);
			return -1;
		}
		*deleted += n;
	}
	return 0;
}

/* storage_limit_action = prune: oldest rows out until under the limit or
 * nothing more may go (then limits_after_commit warns). */
static int prune_storage(struct pgsb *b, char *err, size_t cap)
{
	int64_t used = sl_used_bytes(b->db), total = 0, deleted = 1;

	for (int round = 0; used > b->cfg->storage_limit && deleted > 0 && round < PRUNE_ROUNDS;
	     round++) {
		if (prune_round(b, &deleted, err, cap))
			return -1;
		total += deleted;
		used = sl_used_bytes(b->db);
	}
	if (total > 0)
		log_info("pruned %lld rows, oldest first, to keep \"%s\" under storage_limit",
		         (long long)total, b->cfg->sqlite);
	return 0;
}

int limits_prune_in_batch(struct pgsb *b, char *err, size_t cap)
{
	if (prune_max_records(b, err, cap))
		return -1;
	if (b->cfg->storage_limit > 0 && b->cfg->storage_limit_action == CFG_LIMIT_PRUNE)
		return prune_storage(b, err, cap);
	return 0;
}

/* An error event about the limit: on crossing it, then at most once a
 * minute while over. */
static void warn_over(struct pgsb *b, int64_t used, const char *tail, bool crossing)
{
	char msg[1200], what[900];
	int64_t now = br_now_us();

	if (!crossing && now - b->limits.last_event_us < EVENT_EVERY_US)
		return;
	b->limits.last_event_us = now;
	over_text(b, used, what, sizeof what);
	snprintf(msg, sizeof msg, "%s%s", what, tail);
	log_warn("%s", msg);
	ev_emit_error(b, msg, true);
}

static void hold(struct pgsb *b, int64_t used)
{
	b->limits.hold_pull = true;
	b->limits.last_check_us = br_now_us();
	warn_over(b, used, " (storage_limit_action = error): pulling from Postgres is paused until "
	          "the file is under the limit; local changes are still pushed", true);
}

/* Measures and acts; true when over the limit. */
static bool check(struct pgsb *b)
{
	int64_t used = sl_used_bytes(b->db);
	bool was = b->limits.over;

	if (b->cfg->storage_limit <= 0 || used < 0 || used <= b->cfg->storage_limit) {
		b->limits.over = false;
		return false;
	}
	b->limits.over = true;
	switch (b->cfg->storage_limit_action) {
	case CFG_LIMIT_ERROR:
		if (!b->limits.hold_pull)
			hold(b, used);
		break;
	case CFG_LIMIT_PRUNE:
		warn_over(b, used, " (storage_limit_action = prune): the tables with an order_column "
		          "have no more rows that may be pruned; syncing goes on", !was);
		break;
	case CFG_LIMIT_WARN:
		warn_over(b, used, " (storage_limit_action = warn); syncing goes on", !was);
		break;
	}
	return true;
}

void limits_after_commit(struct pgsb *b)
{
	if (b->cfg->storage_limit > 0 || b->limits.over)
		check(b);
}

/* Before a sync with action prune: prune in a transaction of its own. */
static void prune_now(struct pgsb *b)
{
	char err[600];
	struct sl_err e;

	if (sl_in_txn(b->db))
		return;
	if (sl_begin(b->db, &e)) {
		log_warn("cannot prune: %s", e.msg);
		return;
	}
	if (limits_prune_in_batch(b, err, sizeof err)) {
		log_warn("cannot prune: %s", err);
		sl_rollback(b->db);
	} else if (sl_commit(b->db, &e)) {
		log_warn("cannot prune: %s", e.msg);
		sl_rollback(b->db);
	}
}

static bool still_held(struct pgsb *b)
{
	int64_t now = br_now_us();

	if (now - b->limits.last_check_us < HELD_CHECK_US)
		return true;
	b->limits.last_check_us = now;
	if (push_has_pending(b))
		push_worker_request(b); /* so the file can drain, in every mode */
	int64_t used = sl_used_bytes(b->db);
	if (b->cfg->storage_limit > 0 && b->cfg->storage_limit_action == CFG_LIMIT_ERROR &&
	    (used < 0 || used > b->cfg->storage_limit))
		return true;
	b->limits.hold_pull = b->limits.over = false;
	log_info("\"%s\" is under storage_limit again: pulling resumes", b->cfg->sqlite);
	return false;
}

bool limits_hold_pull(struct pgsb *b)
{
	bool held;

	if (b->limits.hold_pull) {
		held = still_held(b);
	} else if (b->cfg->storage_limit <= 0) {
		return false;
	} else {
		if (b->cfg->storage_limit_action == CFG_LIMIT_PRUNE)
			prune_now(b);
		held = check(b) && b->limits.hold_pull;
	}
	if (held && b->one_shot) { /* `sync` does not wait for room: it fails */
		b->exit_code = 1;
		ev_break(b->loop, EVBREAK_ALL);
	}
	return held;
}

int limits_check_table(struct pgsb *b, struct br_table *t, const struct sl_column *cols,
                       size_t n, char *what, size_t cap)
{
	const struct cfg_table *c = cfg_of(b, t);

	t->order_numeric = false;
	if (!c || !c->order_column)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(cols[i].name, c->order_column) == 0) {
			t->order_numeric = cols[i].typeoid == 1700; /* numeric: kept as text */
			return 0;
		}
	}
	snprintf(what, cap, "%s:%d: key 'order_column' in [table %s.%s]: table \"%s.%s\" has no "
	         "column \"%s\" (allowed: one of its columns)", b->cfg->path,
	         c->order_column_line ? c->order_column_line : c->line, t->schema, t->name,
	         t->schema, t->name, c->order_column);
	return 1;
}
