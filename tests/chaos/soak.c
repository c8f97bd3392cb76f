/* soak.c: `make soak`, the randomized model test, and its short fixed-seed
 * run in `make test`.  Cases run one after another, each on a fresh
 * database with N clients; each client gets a (mode, strategy) pair so the
 * cases together cover every mode (realtime, auto, periodic, on-reconnect,
 * manual with `sync`) and every strategy (last-write-wins, local-wins,
 * remote-wins, merge, keep-both): the first 5 clients take a diagonal
 * (every mode and every strategy once), the next 20 the other pairs in a
 * seeded order.  During a case one driver issues random operations
 * (soak_ops.c) while faults fire at seeded times: kill -9 of a bridge (or
 * of a manual client's `sync`), Postgres restarts, walsender and
 * push-backend kills; SIGUSR1 asks running bridges to sync now.  After
 * quiet and syncs until nothing moves: lost, duplicated, diverged,
 * invented, the model's private rows, the local-wins / keep-both rule, and
 * anomalies; exit 1 when any is non-zero.  Knobs: SEED, SOAK_CASES,
 * SOAK_CASE_SECONDS, SOAK_CLIENTS, SOAK_KILLS, SOAK_PG_RESTARTS,
 * SOAK_WALSENDER_KILLS, SOAK_PUSH_KILLS, SOAK_PAUSE_MS, KEEP, and the
 * CHAOS_* settle knobs (ch_check.c).  `soak --short` is the fixed-seed run
 * of `make test`: 3 cases of 15 s (9 clients: every mode and strategy). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "soak.h"

static const char *const modes[5] = {"realtime", "auto", "periodic", "on-reconnect", "manual"};
static const char *const strategies[5] = {"last-write-wins", "local-wins", "remote-wins", "merge", "keep-both"};
static const char *const tables =
	"[table public.ledger]\n[table public.items]\n[table public.scratch]\n";

/* The (mode, strategy) pairs in the order clients take them. */
static void make_pairs(int *pair)
{
	int o = ch_randint(5), k = 5;
	for (int m = 0; m < 5; m++)
		pair[m] = m * 5 + (m + o) % 5;
	for (int p = 0; p < 25; p++) {
		bool taken = false;
		for (int m = 0; m < 5; m++)
			taken |= pair[m] == p;
		if (!taken)
			pair[k++] = p;
	}
	for (int i = 24; i > 5; i--) { /* shuffle the other 20 */
		int j = 5 + ch_randint(i - 4), t = pair[i];
		pair[i] = pair[j];
		pair[j] = t;
	}
}

static int setup_clients(struct ch_env *e, struct ch_client *cl, int n, const int *pair, int first)
{
	if (soak_schema(e))
		return -1;
	for (int j = 0; j < n; j++) {
		int p = pair[(first + j) % 25];
		ch_client_init(e, &cl[j], j, modes[p / 5], strategies[p % 5], tables);
		int rc = -1;
		for (int t = 0; t < 3 && rc != 0; t++)
			if ((rc = ch_bridge_cmd(e, &cl[j], "init", NULL, 0, 120000)) != 0)
				ch_log("%s: init exit %d (see %s/init.err)", cl[j].name, rc, cl[j].dir);
		if (rc != 0 || ch_sqlite_audit_install(cl[j].sqlite))
			return -1;
		if (cl[j].runs)
			ch_bridge_start(e, &cl[j]);
	}
	for (int j = 0; j < n; j++)
		ch_log("%s: mode %s, conflict %s", cl[j].name, cl[j].mode, cl[j].strategy);
	ch_bridges_wait_online(cl, n, 30000);
	return 0;
}

/* The operations and the faults of one case, for `seconds`. */
static void drive(struct soak_ctx *x, double seconds, const int *counts, int *done)
{
	struct ch_env *e = x->env;
	int n = x->n, immediate = 0;
	struct ch_plan plan[256];
	int nplan = ch_plan_make(plan, 256, counts, seconds);
	double t0 = ch_now(), next_sync[CH_MAX_CLIENTS], next_usr1 = t0 + 2 + ch_randint(3000) / 1000.0;
	for (int j = 0; j < n; j++)
		next_sync[j] = t0 + 1 + ch_randint(3000) / 1000.0;
	long pause = ch_env_long("SOAK_PAUSE_MS", 20);
	int p = 0;
	while (ch_now() - t0 < seconds) {
		soak_op(x);
		ch_plan_fire(e, x->cl, n, plan, nplan, &p, ch_now() - t0, done, &immediate);
		for (int j = 0; j < n; j++)
			if (!x->cl[j].runs && ch_now() >= next_sync[j]) {
				int rc = ch_bridge_cmd(e, &x->cl[j], "sync", NULL, 0, 60000);
				if (rc != 0)
					ch_log("%s: sync exit %d", x->cl[j].name, rc);
				next_sync[j] = ch_now() + 1 + ch_randint(3000) / 1000.0;
			}
		if (ch_now() >= next_usr1) {
			struct ch_client *c = &x->cl[ch_randint(n)];
			if (c->pid > 0)
				kill(c->pid, SIGUSR1);
			next_usr1 = ch_now() + 2 + ch_randint(3000) / 1000.0;
		}
		ch_bridges_poll(e, x->cl, n);
		ch_sleep_ms(ch_randint((int)pause * 2 + 1));
	}
	/* the rest, so every case gets its faults */
	ch_plan_fire(e, x->cl, n, plan, nplan, &p, 1e9, done, &immediate);
}

static void add(struct ch_result *t, const struct ch_result *r)
{
	t->committed += r->committed;
	t->lost += r->lost;
	t->dup += r->dup;
	t->diverged += r->diverged;
	t->invented += r->invented;
	t->conflicts += r->conflicts;
	t->model += r->model;
	t->rules += r->rules;
	t->anomalies += r->anomalies;
}

static int run_case(struct ch_env *e, int k, int n, const int *pair, uint64_t seed, double seconds,
                    const int *counts, struct ch_result *tot)
{
	static char prog[32];
	struct ch_client cl[CH_MAX_CLIENTS];
	struct ch_result res = {0};
	int done[CH_F_KINDS] = {0};
	snprintf(prog, sizeof prog, "soak[%d]", k + 1);
	ch_set_prog(prog);
	snprintf(e->tables, sizeof e->tables, "ledger,items,scratch");
	memset(cl, 0, sizeof cl);
	if (setup_clients(e, cl, n, pair, k * n)) {
		ch_env_drop_db(e, cl, n, true);
		return 3;
	}
	struct soak_ctx x = {.env = e, .cl = cl, .n = n};
	if (soak_open(&x)) {
		ch_log("cannot open the client files");
		ch_env_drop_db(e, cl, n, true);
		return 3;
	}
	ch_log("operations are logged in %s/ops.log", e->casedir);
	drive(&x, seconds, counts, done);
	soak_close(&x);
	ch_log("%ld operations (%ld ledger ids; %ld busy, %ld unique violations, %ld failed, %ld ambiguous); "
	       "upserts/updates %ld, deletes %ld, key changes %ld, key change + re-insert %ld, truncates %ld",
	       x.ops, (long)x.committed.n, x.busy, x.unique, x.failed, x.ambiguous, x.by_kind[1], x.by_kind[2],
	       x.by_kind[3], x.by_kind[4], x.by_kind[5]);
	ch_log("faults: %d kill -9, %d Postgres restarts, %d walsender kills, %d backend kills; settling",
	       done[CH_F_KILL9], done[CH_F_PG_RESTART], done[CH_F_WALSENDER], done[CH_F_PUSH]);
	bool merge = false;
	for (int j = 0; j < n; j++)
		merge |= strcmp(cl[j].strategy, "merge") == 0;
	ch_settle(e, cl, n, &res);
	ch_check_ledger(e, cl, n, &x.committed, &res);
	ch_check_table(e, cl, n, "ledger", "SELECT id, writer, n, note FROM ledger", &res);
	ch_check_table(e, cl, n, "items", "SELECT id, owner, val, updated_at FROM items", &res);
	ch_check_table(e, cl, n, "scratch", "SELECT id, val FROM scratch", &res);
	res.invented = soak_check_invented(&x, merge);
	res.model = soak_check_model(&x);
	res.rules = soak_check_rules(&x);
	res.anomalies = x.anomalies;
	ch_count_conflicts(cl, n, &res);
	ch_report_logs(cl, n);
	printf("%s: result clients", prog);
	for (int j = 0; j < n; j++)
		printf(" %s=%s/%s", cl[j].name, cl[j].mode, cl[j].strategy);
	printf("\n%s: result app_busy=%ld (operations that found the file locked past busy_timeout 5 s)\n", prog,
	       x.busy);
	int rc = ch_report(cl, n, &res, seed);
	add(tot, &res);
	ch_env_drop_db(e, cl, n, rc != 0 || e->keep);
	ch_set_free(&x.committed);
	ch_set_free(&x.written);
	ch_set_free(&x.cols);
	return rc;
}

int main(int argc, char **argv)
{
	/* --short: the fixed-seed run of `make test` (about a minute and a
	 * half); the environment still overrides each figure */
	bool brief = argc > 1 && strcmp(argv[1], "--short") == 0;
	if (argc > 1 && !brief) {
		fprintf(stderr, "usage: soak [--short]\n");
		return 2;
	}
	ch_set_prog("soak");
	if (brief)
		setenv("CHAOS_QUIET_SECONDS", "30", 0);
	uint64_t seed = (uint64_t)ch_env_long("SEED", brief ? 20261128 : 0);
	if (!seed)
		seed = ((uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid()) % 1000000000u + 1;
	printf("soak: seed=%llu (replay with SEED=%llu)\n", (unsigned long long)seed, (unsigned long long)seed);
	ch_seed(seed);
	int ncases = (int)ch_env_long("SOAK_CASES", brief ? 3 : 9), n = (int)ch_env_long("SOAK_CLIENTS", 3);
	double seconds = (double)ch_env_long("SOAK_CASE_SECONDS", brief ? 15 : 40);
	int counts[CH_F_KINDS] = {(int)ch_env_long("SOAK_KILLS", brief ? 2 : 4), (int)ch_env_long("SOAK_PG_RESTARTS", 1),
	                          (int)ch_env_long("SOAK_WALSENDER_KILLS", brief ? 1 : 2),
	                          (int)ch_env_long("SOAK_PUSH_KILLS", brief ? 1 : 2)};
	if (n < 1 || n > CH_MAX_CLIENTS || ncases < 1 || ncases > 100) {
		fprintf(stderr, "soak: SOAK_CLIENTS 1..%d, SOAK_CASES 1..100\n", CH_MAX_CLIENTS);
		return 3;
	}
	printf("soak: %d cases of %.0f s, %d clients each; per case %d kill -9, %d Postgres restarts, "
	       "%d walsender kills, %d push-backend kills\n", ncases, seconds, n, counts[0], counts[1], counts[2],
	       counts[3]);
	int pair[25];
	make_pairs(pair);
	struct ch_env env;
	struct ch_result tot = {0};
	if (ch_env_setup(&env, "soak"))
		return 3;
	if (!env.can_restart)
		counts[CH_F_PG_RESTART] = 0;
	int failed = 0, broken = 0;
	char base[64];
	snprintf(base, sizeof base, "%s", env.db);
	for (int k = 0; k < ncases; k++) {
		char db[80];
		snprintf(db, sizeof db, "%.60s_%d", base, k + 1);
		if (k > 0 && ch_env_new_db(&env, db)) {
			broken++;
			break;
		}
		int rc = run_case(&env, k, n, pair, seed, seconds, counts, &tot);
		failed += rc == 1;
		broken += rc == 3;
	}
	ch_set_prog("soak");
	bool fail = failed || broken;
	printf("RESULT soak seed=%llu cases=%d failed_cases=%d lost=%ld duplicated=%ld diverged=%ld invented=%ld "
	       "model=%ld rules=%ld anomalies=%ld conflicts=%ld %s\n", (unsigned long long)seed, ncases, failed + broken,
	       tot.lost, tot.dup, tot.diverged, tot.invented, tot.model, tot.rules, tot.anomalies, tot.conflicts,
	       fail ? "FAIL" : "PASS");
	fflush(stdout);
	ch_env_teardown(&env, NULL, 0, fail || env.keep);
	return broken ? 3 : failed ? 1 : 0;
}
