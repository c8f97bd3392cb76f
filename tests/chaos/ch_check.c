/* ch_check.c: the end of a chaos or soak run.  Audit triggers count every
 * physical insert, update and delete of a ledger row (Postgres: a log table;
 * SQLite: a non-synced counter table), so an id applied twice shows as two
 * inserts while the bridge's idempotent upserts show as updates.  Settle:
 * dead bridges restarted, quiet awaited, SIGTERM, then `sync` for every
 * client until a whole round moves nothing.  Then the invariants: ledger
 * ids lost or duplicated, rows that differ between Postgres and a client,
 * conflicts recorded, and the final report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ch.h"

int ch_pg_audit_install(PGconn *c)
{
	static const char sql[] =
		"CREATE TABLE chaos_audit (id text, op char(1), at timestamptz DEFAULT clock_timestamp(),"
		" app text DEFAULT current_setting('application_name'));"
		"CREATE FUNCTION chaos_audit_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
		" IF TG_OP = 'DELETE' THEN INSERT INTO chaos_audit (id, op) VALUES (OLD.id, 'D'); RETURN OLD; END IF;"
		" INSERT INTO chaos_audit (id, op) VALUES (NEW.id, left(TG_OP, 1)); RETURN NEW; END $$;"
		"CREATE TRIGGER chaos_audit AFTER INSERT OR UPDATE OR DELETE ON ledger"
		" FOR EACH ROW EXECUTE FUNCTION chaos_audit_fn();"
		"ALTER TABLE ledger ENABLE ALWAYS TRIGGER chaos_audit;";
	char err[512];
	if (ch_pg_exec(c, sql, err, sizeof err)) {
		fprintf(stderr, "%s: audit trigger: %s", ch_prog(), err);
		return -1;
	}
	return 0;
}

int ch_sqlite_audit_install(const char *path)
{
	/* No OR IGNORE / upserts here: inside a trigger, the conflict policy of
	 * the statement that fired it (the bridge's own) would replace ours.
	 * The BEFORE trigger notes whether the row is there already, so an
	 * INSERT OR REPLACE of an existing row counts as a replace, not as a
	 * second insert. */
	static const char sql[] =
		"CREATE TABLE IF NOT EXISTS chaos_audit (id TEXT PRIMARY KEY, ins INTEGER NOT NULL DEFAULT 0,"
		" rep INTEGER NOT NULL DEFAULT 0, upd INTEGER NOT NULL DEFAULT 0, del INTEGER NOT NULL DEFAULT 0,"
		" pre INTEGER NOT NULL DEFAULT 0, del_at TEXT);"
		"CREATE TRIGGER IF NOT EXISTS chaos_audit_bi BEFORE INSERT ON ledger BEGIN"
		" INSERT INTO chaos_audit (id) SELECT NEW.id WHERE NOT EXISTS (SELECT 1 FROM chaos_audit WHERE id = NEW.id);"
		" UPDATE chaos_audit SET pre = EXISTS (SELECT 1 FROM ledger WHERE id = NEW.id) WHERE id = NEW.id; END;"
		"CREATE TRIGGER IF NOT EXISTS chaos_audit_ins AFTER INSERT ON ledger BEGIN"
		" UPDATE chaos_audit SET ins = ins + 1 - pre, rep = rep + pre, pre = 0 WHERE id = NEW.id; END;"
		"CREATE TRIGGER IF NOT EXISTS chaos_audit_upd AFTER UPDATE ON ledger BEGIN"
		" INSERT INTO chaos_audit (id) SELECT NEW.id WHERE NOT EXISTS (SELECT 1 FROM chaos_audit WHERE id = NEW.id);"
		" UPDATE chaos_audit SET upd = upd + 1 WHERE id = NEW.id; END;"
		"CREATE TRIGGER IF NOT EXISTS chaos_audit_del AFTER DELETE ON ledger BEGIN"
		" INSERT INTO chaos_audit (id) SELECT OLD.id WHERE NOT EXISTS (SELECT 1 FROM chaos_audit WHERE id = OLD.id);"
		" UPDATE chaos_audit SET del = del + 1, del_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
		" WHERE id = OLD.id; END;";
	sqlite3 *db = ch_sqlite_open(path, 10000);
	char *err = NULL;
	int rc = db ? sqlite3_exec(db, sql, NULL, NULL, &err) : SQLITE_CANTOPEN;
	if (rc != SQLITE_OK)
		fprintf(stderr, "%s: audit trigger in %s: %s\n", ch_prog(), path, err ? err : "cannot open");
	sqlite3_free(err);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

/* ---- settle ---- */

/* Row counts of the synced tables on every side, and the pending change
 * logs: unchanged for a few seconds with nothing pending means quiet. */
static void fingerprint(struct ch_env *e, PGconn *pg, struct ch_client *cl, int n, char *buf,
                        size_t cap, long *pending)
{
	char tables[200], sql[300];
	size_t o = 0;
	*pending = 0;
	snprintf(tables, sizeof tables, "%s", e->tables);
	for (char *save = NULL, *t = strtok_r(tables, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", t);
		o += (size_t)snprintf(buf + o, cap - o, "%ld/", pg ? ch_pg_long(pg, sql, -1) : -1);
		for (int i = 0; i < n && o < cap; i++)
			o += (size_t)snprintf(buf + o, cap - o, "%ld/", ch_sqlite_long(cl[i].sqlite, sql, -1));
	}
	for (int i = 0; i < n && o < cap; i++) {
		long p = ch_sqlite_long(cl[i].sqlite, "SELECT count(*) FROM _pgsqlite_changes", -1);
		/* on-reconnect and manual bridges push only on their occasions */
		if (cl[i].runs && strcmp(cl[i].mode, "on-reconnect") != 0)
			*pending += p > 0 ? p : 0;
		o += (size_t)snprintf(buf + o, cap - o, "p%ld/", p);
	}
}

static long json_num(const char *line, const char *key)
{
	const char *p = strstr(line, key);
	return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* One `sync` per client; true when nothing moved and nothing is pending. */
static bool sync_round(struct ch_env *e, struct ch_client *cl, int n, struct ch_result *r, int round)
{
	static char out[1 << 16];
	bool still = true;
	for (int i = 0; i < n; i++) {
		int rc = ch_bridge_cmd(e, &cl[i], "sync", out, sizeof out,
		                       (int)ch_env_long("CHAOS_SYNC_TIMEOUT_MS", 120000));
		char *line = NULL;
		for (char *p = out; (p = strstr(p, "{\"ok\":")) != NULL; p++)
			line = p;
		if (line)
			line[strcspn(line, "\n")] = '\0';
		if (rc != 0 || !line || !strstr(line, "\"ok\":true")) {
			char path[900];
			snprintf(path, sizeof path, "%s/sync.err", cl[i].dir);
			char *tail = ch_tail(path, 300);
			for (char *q = tail; *q; q++)
				if (*q == '\n')
					*q = '|';
			ch_log("%s: sync (round %d) exit %d: %.300s; stderr ends: %s", cl[i].name, round, rc,
			       line ? line : "(no summary)", tail);
			free(tail);
			r->sync_failures++;
			still = false;
			continue;
		}
		long rows = json_num(line, "\"rows\":"), pushed = json_num(line, "\"pushed_rows\":");
		long pending = json_num(line, "\"pending_local\":");
		if (rows || pushed || pending) {
			still = false;
			ch_log("%s: sync (round %d): rows %ld, pushed %ld, pending %ld", cl[i].name, round,
			       rows, pushed, pending);
		}
	}
	return still;
}

void ch_settle(struct ch_env *e, struct ch_client *cl, int n, struct ch_result *r)
{
	ch_pg_ensure_up(e);
	for (int i = 0; i < n; i++)
		if (cl[i].runs && cl[i].pid <= 0)
			ch_bridge_start(e, &cl[i]);
	ch_bridges_wait_online(cl, n, 30000);
	PGconn *pg = ch_pg_wait(e->conninfo, 10000);
	char prev[1024] = "", cur[1024];
	int same = 0;
	long quiet_max = ch_env_long("CHAOS_QUIET_SECONDS", 90);
	double until = ch_now() + (double)quiet_max;
	r->quiet = false;
	while (ch_now() < until) {
		long pending;
		ch_bridges_poll(e, cl, n);
		if (pg && PQstatus(pg) != CONNECTION_OK)
			PQreset(pg);
		fingerprint(e, pg, cl, n, cur, sizeof cur, &pending);
		same = strcmp(cur, prev) == 0 && pending == 0 ? same + 1 : 0;
		if (same >= 3) {
			r->quiet = true;
			break;
		}
		snprintf(prev, sizeof prev, "%s", cur);
		ch_sleep_ms(1000);
	}
	ch_log("quiet %s (counts %s)", r->quiet ? "reached" : "NOT reached: going on", cur);
	PQfinish(pg);
	r->stop_failures += ch_bridges_stop(cl, n, 30000);
	int rounds = (int)ch_env_long("CHAOS_SYNC_ROUNDS", 8);
	for (int round = 1; round <= rounds; round++) {
		r->sync_rounds = round;
		if (sync_round(e, cl, n, r, round))
			break;
	}
	for (int i = 0; i < n; i++)
		r->pending_after += ch_sqlite_long(cl[i].sqlite, "SELECT count(*) FROM _pgsqlite_changes", 0);
}

/* ---- ledger: lost, duplicated, deleted ---- */
static void load_ids_pg(PGconn *pg, struct ch_set *s)
{
	PGresult *res = PQexec(pg, "SELECT id FROM ledger");
	for (int i = 0; PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++)
		ch_set_slot(s, PQgetvalue(res, i, 0));
	PQclear(res);
}

static void load_ids_sqlite(const char *path, struct ch_set *s)
{
	sqlite3 *db = ch_sqlite_open(path, 10000);
	sqlite3_stmt *st;
	if (db && sqlite3_prepare_v2(db, "SELECT id FROM ledger", -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW)
			ch_set_slot(s, (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
}

static void audit_client(struct ch_client *c, int i, struct ch_result *r)
{
	sqlite3 *db = ch_sqlite_open(c->sqlite, 10000);
	sqlite3_stmt *st;
	if (ch_sqlite_long(c->sqlite, "SELECT count(*) FROM sqlite_master WHERE name = 'chaos_audit_ins'", 0) != 1) {
		ch_log("%s: the audit trigger on ledger is gone: its duplicate count is unknown", c->name);
		r->audit_missing = true;
	}
	if (db && sqlite3_prepare_v2(db, "SELECT id, ins, upd + rep, del, del_at FROM chaos_audit ORDER BY del_at",
	                             -1, &st, NULL) == SQLITE_OK) {
		int shown = 0, shown_del = 0;
		while (sqlite3_step(st) == SQLITE_ROW) {
			long ins = sqlite3_column_int64(st, 1), upd = sqlite3_column_int64(st, 2);
			long del = sqlite3_column_int64(st, 3);
			if (ins > 1) {
				r->dup_client[i]++;
				if (shown++ < 3)
					ch_log("%s: ledger id %s inserted %ld times (deleted %ld)", c->name,
					       (const char *)sqlite3_column_text(st, 0), ins, del);
			}
			r->reapplied_client[i] += upd;
			r->ledger_deletes_client[i] += del > 0;
			if (del > 0 && shown_del++ < 5)
				ch_log("%s: ledger id %s deleted at %s (only a bridge deletes ledger rows)", c->name,
				       (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 4));
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
}

void ch_check_ledger(struct ch_env *e, struct ch_client *cl, int n,
                     const struct ch_set *committed, struct ch_result *r)
{
	struct ch_set pg_ids, cids[CH_MAX_CLIENTS];
	PGconn *pg = ch_pg_wait(e->conninfo, 30000);
	ch_set_init(&pg_ids);
	if (pg)
		load_ids_pg(pg, &pg_ids);
	for (int i = 0; i < n; i++) {
		ch_set_init(&cids[i]);
		load_ids_sqlite(cl[i].sqlite, &cids[i]);
	}
	int shown = 0;
	r->committed = (long)committed->n;
	for (size_t k = 0; k < committed->cap; k++) {
		const char *id = committed->keys[k];
		if (!id)
			continue;
		bool missing = false;
		char where[200] = "";
		size_t o = 0;
		if (!ch_set_find(&pg_ids, id)) {
			r->lost_pg++;
			missing = true;
			o += (size_t)snprintf(where + o, sizeof where - o, " postgres");
		}
		for (int i = 0; i < n; i++)
			if (!ch_set_find(&cids[i], id)) {
				r->lost_client[i]++;
				missing = true;
				o += (size_t)snprintf(where + o, sizeof where - o, " %s", cl[i].name);
			}
		if (missing) {
			r->lost++;
			char when[64] = "";
			long ms = committed->vals[k];
			if (ms > 0) {
				time_t sec = (time_t)(ms / 1000);
				struct tm tm;
				gmtime_r(&sec, &tm);
				size_t w = strftime(when, sizeof when, " (committed %H:%M:%S", &tm);
				snprintf(when + w, sizeof when - w, ".%03ldZ)", ms % 1000);
			}
			if (shown++ < 5)
				ch_log("lost: ledger id %s%s missing in:%s", id, when, where);
		}
	}
	ch_set_free(&pg_ids);
	for (int i = 0; i < n; i++)
		ch_set_free(&cids[i]);
	if (pg) {
		PGresult *res = PQexec(pg, "SELECT id, count(*) FILTER (WHERE op = 'I'), count(*) FILTER (WHERE op = 'U'),"
		                           " count(*) FILTER (WHERE op = 'D') FROM chaos_audit GROUP BY id");
		for (int i = 0; PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++) {
			long ins = atol(PQgetvalue(res, i, 1)), upd = atol(PQgetvalue(res, i, 2));
			long del = atol(PQgetvalue(res, i, 3));
			if (ins > 1 && r->dup_pg++ < 3)
				ch_log("postgres: ledger id %s inserted %ld times (deleted %ld)", PQgetvalue(res, i, 0), ins, del);
			r->reapplied_pg += upd;
			r->ledger_deletes_pg += del > 0;
		}
		PQclear(res);
	}
	r->dup = r->dup_pg;
	for (int i = 0; i < n; i++) {
		audit_client(&cl[i], i, r);
		r->dup += r->dup_client[i];
	}
	PQfinish(pg);
}

/* ---- divergence ---- */
struct rows {
	struct ch_set index; /* key -> position + 1 */
	char **text;
	size_t n, cap;
};

static void rows_add(struct rows *rs, const char *key, const char *text)
{
	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 1024;
		rs->text = realloc(rs->text, rs->cap * sizeof *rs->text);
		if (!rs->text)
			exit(3);
	}
	rs->text[rs->n++] = strdup(text);
	*ch_set_slot(&rs->index, key) = (long)rs->n;
}

static void rows_free(struct rows *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		free(rs->text[i]);
	free(rs->text);
	ch_set_free(&rs->index);
}

/* For messages: the canonical text with "|" between columns. */
static const char *shown_row(const char *canon, char *buf, size_t cap)
{
	size_t o = 0;
	for (; *canon && o + 1 < cap; canon++)
		buf[o++] = *canon == '\x1f' ? (canon[1] ? '|' : '\0') : *canon == '\x01' ? '~' : *canon;
	buf[o] = '\0';
	return buf;
}

/* Canonical text: every column's text, NULL marked, unit-separated. */
static void canon_append(char **buf, size_t *len, size_t *cap, const char *v)
{
	size_t k = v ? strlen(v) : 6;
	if (*len + k + 2 > *cap) {
		*cap = (*len + k + 2) * 2;
		*buf = realloc(*buf, *cap);
		if (!*buf)
			exit(3);
	}
	memcpy(*buf + *len, v ? v : "\x01NULL\x01", k);
	*len += k;
	(*buf)[(*len)++] = '\x1f';
	(*buf)[*len] = '\0';
}

/* The last `most` lines of a file that name a key (the bridge's debug
 * lines, the soak's ops.log), into the report: a divergence can be read
 * back after the run's directory is gone. */
static void show_key_lines(const char *label, const char *path, const char *key, int most)
{
	char *line = NULL, *kept[64] = {0};
	size_t lcap = 0;
	int n = 0;
	FILE *f = fopen(path, "r");

	if (!f || most > 64)
		goto out;
	while (getline(&line, &lcap, f) > 0) {
		if (!strstr(line, key))
			continue;
		free(kept[n % most]);
		kept[n % most] = strdup(line);
		n++;
	}
	for (int i = n > most ? n - most : 0; i < n; i++) {
		char *l = kept[i % most];
		if (l) {
			l[strcspn(l, "\n")] = '\0';
			ch_log("  %s: %.400s", label, l);
		}
	}
out:
	if (f)
		fclose(f);
	for (int i = 0; i < 64; i++)
		free(kept[i]);
	free(line);
}

static void show_divergence(struct ch_env *e, const struct ch_client *c, const char *key)
{
	char path[1024];

	snprintf(path, sizeof path, "%.500s/ops.log", e->casedir);
	show_key_lines("ops", path, key, 12);
	show_key_lines(c->name, c->err, key, 30);
}

long ch_check_table(struct ch_env *e, struct ch_client *cl, int n, const char *what,
                    const char *sql, struct ch_result *r)
{
	struct rows pgr = {0};
	char *buf = NULL;
	size_t len, cap = 0;
	long total = 0;
	PGconn *pg = ch_pg_wait(e->conninfo, 30000);
	PGresult *res = pg ? PQexec(pg, sql) : NULL;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		ch_log("%s: cannot read Postgres: %s", what, pg ? PQerrorMessage(pg) : "no connection");
		PQclear(res);
		PQfinish(pg);
		return 0;
	}
	ch_set_init(&pgr.index);
	for (int i = 0; i < PQntuples(res); i++) {
		len = 0;
		for (int j = 0; j < PQnfields(res); j++)
			canon_append(&buf, &len, &cap, PQgetisnull(res, i, j) ? NULL : PQgetvalue(res, i, j));
		rows_add(&pgr, PQgetvalue(res, i, 0), buf);
	}
	PQclear(res);
	PQfinish(pg);
	for (int c = 0; c < n; c++) {
		char *seen = calloc(pgr.n + 1, 1);
		long diff = 0;
		int shown = 0;
		sqlite3 *db = ch_sqlite_open(cl[c].sqlite, 10000);
		sqlite3_stmt *st;
		if (!db || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
			ch_log("%s: cannot read %s: %s", what, cl[c].name, db ? sqlite3_errmsg(db) : "cannot open");
			diff = (long)pgr.n;
		} else {
			while (sqlite3_step(st) == SQLITE_ROW) {
				len = 0;
				for (int j = 0; j < sqlite3_column_count(st); j++)
					canon_append(&buf, &len, &cap, (const char *)sqlite3_column_text(st, j));
				const char *key = (const char *)sqlite3_column_text(st, 0);
				long *pos = ch_set_find(&pgr.index, key ? key : "");
				if (pos)
					seen[*pos - 1] = 1;
				if (!pos || strcmp(pgr.text[*pos - 1], buf) != 0) {
					diff++;
					char a[300], b[300];
					if (shown++ < 3)
						ch_log("diverged: %s %s: row %s is %s in Postgres", what, cl[c].name,
						       shown_row(buf, a, sizeof a),
						       pos ? shown_row(pgr.text[*pos - 1], b, sizeof b) : "absent");
					if (shown == 1 && key)
						show_divergence(e, &cl[c], key);
				}
			}
			sqlite3_finalize(st);
			for (size_t k = 0; k < pgr.n; k++)
				if (!seen[k]) {
					char a[300];
					diff++;
					if (shown++ < 3)
						ch_log("diverged: %s %s: Postgres row %s is absent", what, cl[c].name,
						       shown_row(pgr.text[k], a, sizeof a));
				}
		}
		sqlite3_close(db);
		free(seen);
		r->diverged_client[c] += diff;
		total += diff;
	}
	free(buf);
	rows_free(&pgr);
	r->diverged += total;
	return total;
}

void ch_count_conflicts(struct ch_client *cl, int n, struct ch_result *r)
{
	for (int i = 0; i < n; i++) {
		r->conflicts_client[i] = ch_sqlite_long(cl[i].sqlite, "SELECT count(*) FROM _pgsqlite_conflicts", 0);
		r->conflicts += r->conflicts_client[i];
	}
}

static void per_client(const char *label, long total, const long *v, struct ch_client *cl, int n,
                       const char *first, long first_v)
{
	printf("%s: result %s=%ld (", ch_prog(), label, total);
	if (first)
		printf("%s=%ld ", first, first_v);
	for (int i = 0; i < n; i++)
		printf("%s%s=%ld", i ? " " : "", cl[i].name, v[i]);
	printf(")\n");
}

int ch_report(struct ch_client *cl, int n, struct ch_result *r, uint64_t seed)
{
	long kills[CH_MAX_CLIENTS], exits[CH_MAX_CLIENTS];
	for (int i = 0; i < n; i++) {
		kills[i] = cl[i].kills9;
		exits[i] = cl[i].self_exits;
	}
	printf("%s: result committed_ledger_ids=%ld\n", ch_prog(), r->committed);
	per_client("lost", r->lost, r->lost_client, cl, n, "postgres", r->lost_pg);
	per_client("duplicated", r->dup, r->dup_client, cl, n, "postgres", r->dup_pg);
	per_client("diverged", r->diverged, r->diverged_client, cl, n, NULL, 0);
	printf("%s: result invented_values=%ld\n", ch_prog(), r->invented);
	per_client("conflicts_recorded", r->conflicts, r->conflicts_client, cl, n, NULL, 0);
	long dels = r->ledger_deletes_pg, reap = r->reapplied_pg;
	for (int i = 0; i < n; i++) {
		dels += r->ledger_deletes_client[i];
		reap += r->reapplied_client[i];
	}
	per_client("ledger_rows_deleted", dels, r->ledger_deletes_client, cl, n, "postgres", r->ledger_deletes_pg);
	per_client("ledger_reapplied_as_update", reap, r->reapplied_client, cl, n, "postgres", r->reapplied_pg);
	long tk = 0, te = 0;
	for (int i = 0; i < n; i++) {
		tk += kills[i];
		te += exits[i];
	}
	per_client("bridge_kill9", tk, kills, cl, n, NULL, 0);
	per_client("bridge_exited_by_itself", te, exits, cl, n, NULL, 0);
	printf("%s: result quiet=%s sync_rounds=%d sync_failures=%d sigterm_failures=%d pending_after_sync=%ld%s\n",
	       ch_prog(), r->quiet ? "yes" : "no", r->sync_rounds, r->sync_failures, r->stop_failures,
	       r->pending_after, r->audit_missing ? " audit_trigger_missing=yes" : "");
	bool fail = r->lost || r->dup || r->diverged || r->invented || r->model || r->rules || r->anomalies;
	char extra[200] = "";
	if (strncmp(ch_prog(), "soak", 4) == 0)
		snprintf(extra, sizeof extra, " model=%ld rules=%ld anomalies=%ld", r->model, r->rules, r->anomalies);
	printf("RESULT %s seed=%llu lost=%ld duplicated=%ld diverged=%ld invented=%ld%s conflicts=%ld %s\n",
	       ch_prog(), (unsigned long long)seed, r->lost, r->dup, r->diverged, r->invented, extra, r->conflicts,
	       fail ? "FAIL" : "PASS");
	fflush(stdout);
	return fail ? 1 : 0;
}

/* Patterns worth counting in the bridges' logs. */
static const char *const patterns[] = {
	" error: ", " warning: ", "push failed", "marked now", "cannot begin",
	"init failed", "deadlock", "resynchronis", "lacks key column",
};

void ch_report_logs(struct ch_client *cl, int n)
{
	for (int i = 0; i < n; i++) {
		char path[900];
		snprintf(path, sizeof path, "%s", cl[i].err);
		char *s = ch_slurp(path);
		snprintf(path, sizeof path, "%s/sync.err", cl[i].dir);
		char *t = ch_slurp(path);
		printf("%s: log %s:", ch_prog(), cl[i].name);
		for (size_t p = 0; p < sizeof patterns / sizeof *patterns; p++) {
			int k = ch_count(s, patterns[p]) + ch_count(t, patterns[p]);
			if (k)
				printf(" \"%s\"=%d", patterns[p], k);
		}
		printf("\n");
		/* the first line of each kind, as it was written */
		for (size_t p = 2; p < sizeof patterns / sizeof *patterns; p++) {
			const char *hit = strstr(s, patterns[p]);
			if (!hit)
				continue;
			const char *b = hit, *end = strchr(hit, '\n');
			while (b > s && b[-1] != '\n')
				b--;
			int len = end ? (int)(end - b) : (int)strlen(b);
			printf("%s: log %s: %.*s\n", ch_prog(), cl[i].name, len > 400 ? 400 : len, b);
		}
		free(s);
		free(t);
	}
	fflush(stdout);
}
