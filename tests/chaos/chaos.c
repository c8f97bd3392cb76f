/* chaos.c: `make chaos` / `make chaos-short`.  N clients (one bridge each,
 * realtime by default) and direct Postgres writers commit small
 * transactions at once: inserts of unique ids into the append-only table
 * ledger (an id is recorded only after its commit returned success) and
 * updates, deletes and re-inserts of a few shared rows.  Meanwhile faults
 * fire at seeded random times: kill -9 of a random bridge (restarted after
 * a moment), Postgres restarts (-m fast, some -m immediate), walsender
 * kills, and kills of the bridges' plain (push) backends.  Then: writers
 * stop, bridges settle, `sync` until nothing moves, and the invariants:
 * lost, duplicated, diverged, invented values, conflicts.  Exit 1 when lost,
 * duplicated, diverged or invented is non-zero; 3 when the run itself could
 * not be set up.  Knobs (environment): SEED, CHAOS_SECONDS, CHAOS_CLIENTS,
 * CHAOS_PG_WRITERS, CHAOS_KILLS, CHAOS_PG_RESTARTS, CHAOS_WALSENDER_KILLS,
 * CHAOS_PUSH_KILLS, CHAOS_MODE, CHAOS_STRATEGY, CHAOS_SHARED_ROWS,
 * CHAOS_PAUSE_MS, CHAOS_QUIET_SECONDS, CHAOS_LOG_LEVEL, KEEP. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ch.h"

#define MAX_WRITERS (CH_MAX_CLIENTS + 4)

struct writer {
	char name[16];      /* c1 / pg1 */
	int client;         /* index of the client file, -1: Postgres */
	char log[900];      /* what it committed */
	pid_t pid;
};

static volatile sig_atomic_t stop_flag;
static void on_term(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* What a writer did, flushed after every line (the parent reads it). */
struct wstate {
	FILE *log;
	const char *name;
	long seq, txns, busy, errors;
	char first_error[300];
	int shared_rows;
	long pause_ms;
};

static void w_error(struct wstate *w, const char *msg)
{
	w->errors++;
	if (!w->first_error[0])
		snprintf(w->first_error, sizeof w->first_error, "%s", msg);
}

/* Ids whose commit returned success, with the time (ms since the epoch). */
static void record_committed(struct wstate *w, char ids[][48], int rows)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	long ms = (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	w->txns++;
	for (int i = 0; i < rows; i++)
		fprintf(w->log, "L %s %ld\n", ids[i], ms);
	fflush(w->log);
}

/* The next shared-row write: which row, which op (0 update, 1 delete,
 * 2 upsert), and the values, announced in the log before it is tried. */
static int next_shared(struct wstate *w, int *k, char *v, size_t vcap, char *ts, size_t tcap)
{
	int r = ch_randint(100), op = r < 60 ? 0 : r < 80 ? 1 : 2;
	*k = 1 + ch_randint(w->shared_rows);
	snprintf(v, vcap, "%s-s%ld", w->name, ++w->seq);
	ch_iso_now(ts, tcap);
	if (op != 1) {
		fprintf(w->log, "A %d %s %s %s\n", *k, v, w->name, ts);
		fflush(w->log);
	}
	return op;
}

/* ---- a writer on a client's SQLite file ---- */
static int sq_step(sqlite3 *db, sqlite3_stmt *st, struct wstate *w)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		w->busy++;
	else
		w_error(w, sqlite3_errmsg(db));
	return -1;
}

static int sq_exec(sqlite3 *db, const char *sql, struct wstate *w)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		return 0;
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		w->busy++;
	else
		w_error(w, sqlite3_errmsg(db));
	return -1;
}

static void client_writer(struct wstate *w, const char *path, double deadline)
{
	sqlite3 *db = ch_sqlite_open(path, (int)ch_env_long("CHAOS_BUSY_MS", 5000));
	sqlite3_stmt *ins, *sh[3];
	const char *shared_sql[3] = {
		"UPDATE shared SET v = ?1, writer = ?2, updated_at = ?3 WHERE k = ?4",
		"DELETE FROM shared WHERE k = ?4",
		"INSERT INTO shared (k, v, writer, updated_at) VALUES (?4, ?1, ?2, ?3) ON CONFLICT (k) DO UPDATE"
		" SET v = excluded.v, writer = excluded.writer, updated_at = excluded.updated_at"};
	if (!db || sqlite3_prepare_v2(db, "INSERT INTO ledger (id, writer, n, note) VALUES (?1, ?2, ?3, ?4)",
	                              -1, &ins, NULL) != SQLITE_OK) {
		fprintf(stderr, "%s: writer %s: cannot open %s\n", ch_prog(), w->name, path);
		exit(3);
	}
	for (int i = 0; i < 3; i++)
		if (sqlite3_prepare_v2(db, shared_sql[i], -1, &sh[i], NULL) != SQLITE_OK)
			exit(3);
	char ids[8][48], v[48], ts[40];
	while (!stop_flag && ch_now() < deadline) {
		if (ch_randint(4) == 0) {
			int k, op = next_shared(w, &k, v, sizeof v, ts, sizeof ts);
			sqlite3_bind_text(sh[op], 1, v, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(sh[op], 2, w->name, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(sh[op], 3, ts, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int(sh[op], 4, k);
			if (sq_step(db, sh[op], w) == 0)
				w->txns++;
		} else {
			int rows = 1 + ch_randint(4);
			bool ok = sq_exec(db, "BEGIN IMMEDIATE", w) == 0;
			for (int i = 0; ok && i < rows; i++) {
				snprintf(ids[i], sizeof ids[i], "%s-%ld", w->name, ++w->seq);
				sqlite3_bind_text(ins, 1, ids[i], -1, SQLITE_TRANSIENT);
				sqlite3_bind_text(ins, 2, w->name, -1, SQLITE_TRANSIENT);
				sqlite3_bind_int64(ins, 3, w->seq);
				sqlite3_bind_text(ins, 4, ch_randint(2) ? "note" : "a longer note on the ledger", -1,
				                  SQLITE_STATIC);
				ok = sq_step(db, ins, w) == 0;
			}
			if (ok)
				ok = sq_exec(db, "COMMIT", w) == 0;
			if (!ok && !sqlite3_get_autocommit(db))
				sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			if (ok)
				record_committed(w, ids, rows);
		}
		ch_sleep_ms(ch_randint((int)w->pause_ms * 2 + 1));
	}
	sqlite3_finalize(ins);
	for (int i = 0; i < 3; i++)
		sqlite3_finalize(sh[i]);
	sqlite3_close(db);
}

/* ---- a writer straight on Postgres ---- */
static PGconn *pg_writer_connect(const char *conninfo, double deadline)
{
	while (!stop_flag && ch_now() < deadline) {
		PGconn *c = ch_pg_connect(conninfo);
		/* durable commits: the cluster runs with synchronous_commit = off,
		 * and a commit lost in an immediate restart would count as lost */
		if (c && ch_pg_exec(c, "SET synchronous_commit = on", NULL, 0) == 0)
			return c;
		PQfinish(c);
		ch_sleep_ms(200);
	}
	return NULL;
}

static bool pg_ok(PGconn *c, PGresult *r, struct wstate *w)
{
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		w_error(w, PQerrorMessage(c));
	PQclear(r);
	return ok;
}

static void pg_writer(struct wstate *w, const char *conninfo, double deadline)
{
	const char *shared_sql[3] = {
		"UPDATE shared SET v = $1, writer = $2, updated_at = $3 WHERE k = $4::int",
		"DELETE FROM shared WHERE k = $4::int AND $1::text IS NOT NULL AND $2::text IS NOT NULL"
		" AND $3::text IS NOT NULL",
		"INSERT INTO shared (k, v, writer, updated_at) VALUES ($4::int, $1, $2, $3) ON CONFLICT (k) DO UPDATE"
		" SET v = excluded.v, writer = excluded.writer, updated_at = excluded.updated_at"};
	PGconn *c = NULL;
	char ids[8][48], v[48], ts[40], kbuf[16], nbuf[24];
	while (!stop_flag && ch_now() < deadline) {
		if (!c || PQstatus(c) != CONNECTION_OK) {
			PQfinish(c);
			if (!(c = pg_writer_connect(conninfo, deadline)))
				break;
		}
		if (ch_randint(4) == 0) {
			int k, op = next_shared(w, &k, v, sizeof v, ts, sizeof ts);
			snprintf(kbuf, sizeof kbuf, "%d", k);
			const char *p[4] = {v, w->name, ts, kbuf};
			if (pg_ok(c, PQexecParams(c, shared_sql[op], 4, NULL, p, NULL, NULL, 0), w))
				w->txns++;
		} else {
			int rows = 1 + ch_randint(4);
			bool ok = pg_ok(c, PQexec(c, "BEGIN"), w);
			for (int i = 0; ok && i < rows; i++) {
				snprintf(ids[i], sizeof ids[i], "%s-%ld", w->name, ++w->seq);
				snprintf(nbuf, sizeof nbuf, "%ld", w->seq);
				const char *p[4] = {ids[i], w->name, nbuf, ch_randint(2) ? "note" : "a longer note on the ledger"};
				ok = pg_ok(c, PQexecParams(c, "INSERT INTO ledger (id, writer, n, note) VALUES ($1, $2, $3, $4)",
				                           4, NULL, p, NULL, NULL, 0), w);
			}
			if (ok) {
				PGresult *r = PQexec(c, "COMMIT");
				ok = PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r), "COMMIT") == 0;
				if (!ok)
					w_error(w, PQerrorMessage(c));
				PQclear(r);
			} else if (PQstatus(c) == CONNECTION_OK) {
				PQclear(PQexec(c, "ROLLBACK"));
			}
			if (ok)
				record_committed(w, ids, rows);
		}
		ch_sleep_ms(ch_randint((int)w->pause_ms * 2 + 1));
	}
	PQfinish(c);
}

static pid_t start_writer(struct writer *wr, struct ch_env *e, struct ch_client *cl, uint64_t seed,
                          int shared_rows, double deadline)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the harness */
	signal(SIGTERM, on_term);
	ch_seed(seed); /* its own stream of choices; ch_now() stays the parent's clock */
	struct wstate w = {.name = wr->name, .shared_rows = shared_rows,
	                   .pause_ms = ch_env_long("CHAOS_PAUSE_MS", 10)};
	w.log = fopen(wr->log, "w");
	if (!w.log)
		_exit(3);
	if (wr->client >= 0)
		client_writer(&w, cl[wr->client].sqlite, deadline);
	else
		pg_writer(&w, e->conninfo, deadline);
	fprintf(w.log, "X %ld %ld %ld %s\n", w.txns, w.busy, w.errors, w.first_error);
	fclose(w.log);
	_exit(0);
}

/* Reads a writer's log: committed ids, attempted shared tuples. */
static void read_writer_log(struct writer *wr, struct ch_set *done_ids, struct ch_set *tuples,
                            struct ch_set *vals)
{
	FILE *f = fopen(wr->log, "r");
	char line[600], a[64], b[64], c[64], d[64];
	long txns = 0, busy = 0, errors = 0, ids = 0;
	char first[400] = "";
	while (f && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		long ms = 0;
		if (line[0] == 'L' && sscanf(line, "L %63s %ld", a, &ms) >= 1) {
			*ch_set_slot(done_ids, a) = ms;
			ids++;
		} else if (line[0] == 'A' && sscanf(line, "A %63s %63s %63s %63s", a, b, c, d) == 4) {
			char key[300];
			snprintf(key, sizeof key, "%s|%s|%s|%s", a, b, c, d);
			ch_set_slot(tuples, key);
			snprintf(key, sizeof key, "v|%s|%s", a, b);
			ch_set_slot(vals, key);
			snprintf(key, sizeof key, "w|%s", c);
			ch_set_slot(vals, key);
			snprintf(key, sizeof key, "t|%s", d);
			ch_set_slot(vals, key);
		} else if (line[0] == 'X') {
			int off = 0;
			if (sscanf(line, "X %ld %ld %ld %n", &txns, &busy, &errors, &off) >= 3)
				snprintf(first, sizeof first, "%s", line + off);
		}
	}
	if (f)
		fclose(f);
	ch_log("writer %s: %ld transactions committed, %ld ledger ids, %ld busy (dropped), %ld errors%s%s",
	       wr->name, txns, ids, busy, errors, first[0] ? "; first: " : "", first);
}

/* Shared rows on every side must hold a version some writer wrote (every
 * column from one write; under merge, each column from some write). */
static long check_invented(struct ch_env *e, struct ch_client *cl, int n, const struct ch_set *tuples,
                           const struct ch_set *vals, bool merge)
{
	const char *sql = "SELECT k, v, writer, updated_at FROM shared ORDER BY k";
	long bad = 0;
	char key[400];
	for (int side = -1; side < n; side++) {
		char rows[64][4][64];
		int nrows = 0;
		if (side < 0) {
			PGconn *pg = ch_pg_wait(e->conninfo, 10000);
			PGresult *r = pg ? PQexec(pg, sql) : NULL;
			for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r) && nrows < 64; i++, nrows++)
				for (int j = 0; j < 4; j++)
					snprintf(rows[nrows][j], 64, "%s", PQgetisnull(r, i, j) ? "(null)" : PQgetvalue(r, i, j));
			PQclear(r);
			PQfinish(pg);
		} else {
			sqlite3 *db = ch_sqlite_open(cl[side].sqlite, 10000);
			sqlite3_stmt *st;
			if (db && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
				while (sqlite3_step(st) == SQLITE_ROW && nrows < 64) {
					for (int j = 0; j < 4; j++) {
						const unsigned char *t = sqlite3_column_text(st, j);
						snprintf(rows[nrows][j], 64, "%s", t ? (const char *)t : "(null)");
					}
					nrows++;
				}
				sqlite3_finalize(st);
			}
			sqlite3_close(db);
		}
		for (int i = 0; i < nrows; i++) {
			bool ok;
			snprintf(key, sizeof key, "%.63s|%.63s|%.63s|%.63s", rows[i][0], rows[i][1], rows[i][2], rows[i][3]);
			ok = ch_set_find(tuples, key) != NULL;
			if (!ok && merge) {
				char k2[200], k3[200];
				snprintf(key, sizeof key, "v|%.63s|%.63s", rows[i][0], rows[i][1]);
				snprintf(k2, sizeof k2, "w|%.63s", rows[i][2]);
				snprintf(k3, sizeof k3, "t|%.63s", rows[i][3]);
				ok = ch_set_find(vals, key) && ch_set_find(vals, k2) && ch_set_find(vals, k3);
			}
			if (!ok) {
				bad++;
				ch_log("invented: %s shared row %s|%s|%s|%s was never written", side < 0 ? "postgres" : cl[side].name,
				       rows[i][0], rows[i][1], rows[i][2], rows[i][3]);
			}
		}
	}
	return bad;
}

static int setup_schema(struct ch_env *e, int shared_rows, struct ch_set *tuples, struct ch_set *vals)
{
	char sql[600], err[512];
	PGconn *pg = ch_pg_wait(e->conninfo, 10000);
	snprintf(sql, sizeof sql,
	         "CREATE TABLE ledger (id text PRIMARY KEY, writer text NOT NULL, n bigint NOT NULL, note text);"
	         "CREATE TABLE shared (k int PRIMARY KEY, v text, writer text, updated_at text);"
	         "INSERT INTO shared SELECT g, 'init-' || g, 'init', '2000-01-01T00:00:00.000000Z'"
	         " FROM generate_series(1, %d) g", shared_rows);
	if (!pg || ch_pg_exec(pg, sql, err, sizeof err) || ch_pg_audit_install(pg)) {
		fprintf(stderr, "%s: schema: %s\n", ch_prog(), pg ? err : "no connection");
		PQfinish(pg);
		return -1;
	}
	PQfinish(pg);
	for (int k = 1; k <= shared_rows; k++) {
		char key[200];
		snprintf(key, sizeof key, "%d|init-%d|init|2000-01-01T00:00:00.000000Z", k, k);
		ch_set_slot(tuples, key);
		snprintf(key, sizeof key, "v|%d|init-%d", k, k);
		ch_set_slot(vals, key);
	}
	ch_set_slot(vals, "w|init");
	ch_set_slot(vals, "t|2000-01-01T00:00:00.000000Z");
	return 0;
}

int main(void)
{
	ch_set_prog("chaos");
	uint64_t seed = (uint64_t)ch_env_long("SEED", 0);
	if (!seed)
		seed = ((uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid()) % 1000000000u + 1;
	printf("chaos: seed=%llu (replay with SEED=%llu)\n", (unsigned long long)seed, (unsigned long long)seed);
	ch_seed(seed);
	int nclients = (int)ch_env_long("CHAOS_CLIENTS", 3), npg = (int)ch_env_long("CHAOS_PG_WRITERS", 2);
	double seconds = (double)ch_env_long("CHAOS_SECONDS", 300);
	int counts[4] = {(int)ch_env_long("CHAOS_KILLS", 100), (int)ch_env_long("CHAOS_PG_RESTARTS", 10),
	                 (int)ch_env_long("CHAOS_WALSENDER_KILLS", 20), (int)ch_env_long("CHAOS_PUSH_KILLS", 10)};
	int shared_rows = (int)ch_env_long("CHAOS_SHARED_ROWS", 10);
	const char *mode = ch_env_str("CHAOS_MODE", "realtime");
	const char *strategy = ch_env_str("CHAOS_STRATEGY", "last-write-wins");
	if (nclients < 1 || nclients > CH_MAX_CLIENTS || npg < 0 || npg > 4 || shared_rows < 1 || shared_rows > 64) {
		fprintf(stderr, "chaos: CHAOS_CLIENTS 1..%d, CHAOS_PG_WRITERS 0..4, CHAOS_SHARED_ROWS 1..64\n",
		        CH_MAX_CLIENTS);
		return 3;
	}
	printf("chaos: %d clients (%s, %s), %d Postgres writers, %.0f s; faults: %d kill -9, %d Postgres restarts, "
	       "%d walsender kills, %d push-backend kills\n", nclients, mode, strategy, npg, seconds,
	       counts[0], counts[1], counts[2], counts[3]);

	struct ch_env env;
	struct ch_client cl[CH_MAX_CLIENTS];
	struct ch_set committed, tuples, vals;
	struct ch_result res = {0};
	ch_set_init(&committed);
	ch_set_init(&tuples);
	ch_set_init(&vals);
	if (ch_env_setup(&env, "chaos"))
		return 3;
	snprintf(env.tables, sizeof env.tables, "ledger,shared");
	if (!env.can_restart && counts[1]) {
		ch_log("no cluster directory (PGSB_TEST_PGDATA): no Postgres restarts");
		counts[1] = 0;
	}
	if (setup_schema(&env, shared_rows, &tuples, &vals)) {
		ch_env_teardown(&env, cl, 0, true);
		return 3;
	}
	const char *tables = "[table public.ledger]\n[table public.shared]\n";
	for (int i = 0; i < nclients; i++) {
		ch_client_init(&env, &cl[i], i, mode, strategy, tables);
		int rc = -1;
		for (int t = 0; t < 3 && rc != 0; t++)
			if ((rc = ch_bridge_cmd(&env, &cl[i], "init", NULL, 0, 120000)) != 0)
				ch_log("%s: init exit %d (see %s/init.err)", cl[i].name, rc, cl[i].dir);
		if (rc != 0 || ch_sqlite_audit_install(cl[i].sqlite)) {
			ch_env_teardown(&env, cl, i + 1, true);
			return 3;
		}
		cl[i].runs = true; /* chaos runs every bridge, whatever the mode */
		ch_bridge_start(&env, &cl[i]);
	}
	ch_bridges_wait_online(cl, nclients, 30000);

	/* the fault plan */
	int total = counts[0] + counts[1] + counts[2] + counts[3];
	struct ch_plan *plan = calloc((size_t)total + 1, sizeof *plan);
	int nplan = ch_plan_make(plan, total, counts, seconds);

	struct writer wr[MAX_WRITERS];
	int nw = 0;
	double t_start = ch_now(), deadline = t_start + seconds;
	for (int i = 0; i < nclients + npg; i++, nw++) {
		struct writer *w = &wr[nw];
		w->client = i < nclients ? i : -1;
		char nm[16];
		snprintf(nm, sizeof nm, i < nclients ? "c%d" : "pg%d", i < nclients ? i + 1 : i - nclients + 1);
		snprintf(w->name, sizeof w->name, "%s", nm);
		snprintf(w->log, sizeof w->log, "%.400s/writer-%s.log", env.dir, nm);
		w->pid = start_writer(w, &env, cl, seed * 1000003u + (uint64_t)i + 1, shared_rows, deadline);
	}
	ch_log("writers started");
	int done[4] = {0}, immediate = 0;
	for (int p = 0; p < nplan || ch_now() < deadline;) {
		ch_plan_fire(&env, cl, nclients, plan, nplan, &p, ch_now() - t_start, done, &immediate);
		ch_bridges_poll(&env, cl, nclients);
		if (p >= nplan && ch_now() >= deadline)
			break;
		ch_sleep_ms(50);
	}
	ch_log("faults done: %d kill -9, %d Postgres restarts (%d immediate), %d walsender kills, %d backend kills",
	       done[0], done[1], immediate, done[2], done[3]);
	for (int i = 0; i < nw; i++) {
		int waited = 0;
		while (waitpid(wr[i].pid, NULL, WNOHANG) == 0 && waited < 60000) {
			if (waited == 20000)
				kill(wr[i].pid, SIGTERM);
			ch_sleep_ms(50);
			waited += 50;
			ch_bridges_poll(&env, cl, nclients);
		}
		if (waited >= 60000) {
			kill(wr[i].pid, SIGKILL);
			waitpid(wr[i].pid, NULL, 0);
		}
		read_writer_log(&wr[i], &committed, &tuples, &vals);
	}
	ch_log("writers stopped: %zu ledger ids committed; settling", committed.n);

	ch_settle(&env, cl, nclients, &res);
	ch_check_ledger(&env, cl, nclients, &committed, &res);
	ch_check_table(&env, cl, nclients, "ledger", "SELECT id, writer, n, note FROM ledger", &res);
	ch_check_table(&env, cl, nclients, "shared", "SELECT k, v, writer, updated_at FROM shared", &res);
	res.invented = check_invented(&env, cl, nclients, &tuples, &vals, strcmp(strategy, "merge") == 0);
	ch_count_conflicts(cl, nclients, &res);
	ch_report_logs(cl, nclients);
	printf("chaos: result faults kill9=%d pg_restarts=%d (immediate %d) walsender_kills=%d push_backend_kills=%d\n",
	       done[0], done[1], immediate, done[2], done[3]);
	int rc = ch_report(cl, nclients, &res, seed);
	ch_env_teardown(&env, cl, nclients, rc != 0 || env.keep);
	free(plan);
	ch_set_free(&committed);
	ch_set_free(&tuples);
	ch_set_free(&vals);
	return rc;
}
