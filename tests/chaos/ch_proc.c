/* ch_proc.c: the processes of a chaos run: the throwaway cluster
 * (tests/pg-cluster.sh, or the one tests/run.sh started), a fresh database,
 * one config and one bridge process per client (spawned, killed with -9,
 * reaped and restarted, stopped with SIGTERM), server restarts with pg_ctl
 * (-m fast or -m immediate), and backend kills with pg_terminate_backend. */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ch.h"

static PGconn *fault_conn;

/* Runs a shell command, its stdout's first line into out. */
static int run_line(const char *cmd, char *out, size_t cap)
{
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	out[0] = '\0';
	if (fgets(out, (int)cap, p))
		out[strcspn(out, "\n")] = '\0';
	char skip[256];
	while (fgets(skip, sizeof skip, p))
		;
	return pclose(p);
}

static void find_pgbin(struct ch_env *e)
{
	const char *v = getenv("PGBIN");
	if (v && *v) {
		snprintf(e->pgbin, sizeof e->pgbin, "%s", v);
		return;
	}
	if (access("/usr/lib/postgresql/15/bin/pg_ctl", X_OK) == 0) {
		snprintf(e->pgbin, sizeof e->pgbin, "/usr/lib/postgresql/15/bin");
		return;
	}
	if (run_line("pg_config --bindir 2>/dev/null", e->pgbin, sizeof e->pgbin) != 0)
		e->pgbin[0] = '\0';
}

int ch_env_setup(struct ch_env *e, const char *name)
{
	char tmpl[400], line[200], cmd[1400];
	const char *build = ch_env_str("BUILD", "build");

	memset(e, 0, sizeof *e);
	e->keep = ch_env_long("KEEP", 0) != 0;
	snprintf(tmpl, sizeof tmpl, "%s/pgsb-%s.XXXXXX",
	         ch_env_str("PGSB_TEST_TMP", ch_env_str("TMPDIR", "/tmp")), name);
	if (!mkdtemp(tmpl)) {
		perror("mkdtemp");
		return -1;
	}
	chmod(tmpl, 0755);
	snprintf(e->dir, sizeof e->dir, "%s", tmpl);
	snprintf(line, sizeof line, "%s/pgsqlite-bridge", build);
	const char *bin = ch_env_str("PGSB_TEST_BIN", line);
	if (!realpath(bin, e->bin)) {
		fprintf(stderr, "%s: no bridge binary at %s (run make first)\n", ch_prog(), bin);
		return -1;
	}
	find_pgbin(e);
	const char *port = getenv("PGSB_TEST_PGPORT");
	if (port && *port) {
		snprintf(e->port, sizeof e->port, "%s", port);
		snprintf(e->pgdata, sizeof e->pgdata, "%s", ch_env_str("PGSB_TEST_PGDATA", ""));
	} else {
		snprintf(e->pgdata, sizeof e->pgdata, "%.400s/pg", e->dir);
		snprintf(cmd, sizeof cmd, "tests/pg-cluster.sh start '%s'", e->pgdata);
		if (run_line(cmd, e->port, sizeof e->port) != 0 || !e->port[0]) {
			fprintf(stderr, "%s: could not start a cluster (%s)\n", ch_prog(), cmd);
			return -1;
		}
		e->own_cluster = true;
	}
	e->can_restart = e->pgdata[0] && e->pgbin[0];
	snprintf(e->admin_conninfo, sizeof e->admin_conninfo,
	         "host=127.0.0.1 port=%s user=postgres dbname=postgres connect_timeout=5", e->port);
	snprintf(line, sizeof line, "%s_%d", name, (int)getpid());
	if (ch_env_new_db(e, line))
		return -1;
	ch_log("cluster port %s%s, files in %s", e->port, e->own_cluster ? " (own)" : "", e->dir);
	return 0;
}

int ch_env_new_db(struct ch_env *e, const char *db)
{
	char sql[200], err[512];
	snprintf(e->db, sizeof e->db, "%s", db);
	snprintf(e->conninfo, sizeof e->conninfo,
	         "host=127.0.0.1 port=%s user=postgres dbname=%s connect_timeout=5", e->port, e->db);
	snprintf(e->casedir, sizeof e->casedir, "%.400s/%.60s", e->dir, e->db);
	mkdir(e->casedir, 0755);
	PGconn *a = ch_pg_wait(e->admin_conninfo, 30000);
	snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", e->db);
	if (!a || ch_pg_exec(a, sql, err, sizeof err)) {
		fprintf(stderr, "%s: cannot create database %s: %s\n", ch_prog(), e->db,
		        a ? err : "cannot connect");
		PQfinish(a);
		return -1;
	}
	PQfinish(a);
	return 0;
}

static void kill_bridge(struct ch_client *c)
{
	if (c->pid > 0) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
		c->pid = 0;
	}
}

void ch_env_drop_db(struct ch_env *e, struct ch_client *cl, int n, bool keep)
{
	char sql[600];
	for (int i = 0; i < n; i++)
		kill_bridge(&cl[i]);
	PQfinish(fault_conn);
	fault_conn = NULL;
	PGconn *a = ch_pg_wait(e->admin_conninfo, 10000);
	for (int round = 0; a && round < 20; round++) {
		snprintf(sql, sizeof sql,
		         "SELECT count(*) FROM pg_replication_slots WHERE database = '%s' AND active", e->db);
		if (ch_pg_long(a, sql, 0) == 0)
			break;
		ch_sleep_ms(250); /* walsenders of killed bridges go away */
	}
	if (!a)
		return;
	snprintf(sql, sizeof sql,
	         "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
	         "WHERE database = '%s' AND NOT active", e->db);
	ch_pg_exec(a, sql, NULL, 0);
	for (int i = 0; i < n; i++) {
		snprintf(sql, sizeof sql,
		         "SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin "
		         "WHERE roname = '%s'", cl[i].slot);
		ch_pg_exec(a, sql, NULL, 0);
	}
	if (!keep && !e->own_cluster) {
		snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", e->db);
		ch_pg_exec(a, sql, NULL, 0);
	}
	PQfinish(a);
}

void ch_env_teardown(struct ch_env *e, struct ch_client *cl, int n, bool keep)
{
	char sql[600];
	ch_env_drop_db(e, cl, n, keep);
	if (e->own_cluster) {
		snprintf(sql, sizeof sql, "tests/pg-cluster.sh stop '%s'", e->pgdata);
		if (system(sql) != 0)
			fprintf(stderr, "%s: stopping the cluster failed\n", ch_prog());
	}
	if (!keep) {
		snprintf(sql, sizeof sql, "rm -rf '%s'", e->dir);
		if (system(sql) != 0)
			fprintf(stderr, "%s: could not remove %s\n", ch_prog(), e->dir);
	} else {
		printf("%s: files kept in %s\n", ch_prog(), e->dir);
	}
}

/* pg_ctl as the cluster's owner (postgres when we are root). */
static int pg_ctl(struct ch_env *e, const char *what)
{
	char cmd[2400];
	snprintf(cmd, sizeof cmd, "%s'%s/pg_ctl' -D '%s/data' -l '%s/server.log' -w -t 60 %s >/dev/null 2>&1",
	         getuid() == 0 ? "runuser -u postgres -- " : "", e->pgbin, e->pgdata, e->pgdata, what);
	return system(cmd);
}

int ch_pg_restart(struct ch_env *e, int immediate)
{
	if (!e->can_restart)
		return -1;
	PQfinish(fault_conn);
	fault_conn = NULL;
	return pg_ctl(e, immediate ? "-m immediate restart" : "-m fast restart") == 0 ? 0 : -1;
}

void ch_pg_ensure_up(struct ch_env *e)
{
	PGconn *a = ch_pg_wait(e->admin_conninfo, 3000);
	if (!a && e->can_restart) {
		ch_log("the server is down: starting it");
		if (pg_ctl(e, "start") != 0)
			ch_log("pg_ctl start failed (see %s/server.log)", e->pgdata);
		a = ch_pg_wait(e->admin_conninfo, 60000);
	}
	if (!a)
		ch_log("the server does not answer");
	PQfinish(a);
}

void ch_client_init(struct ch_env *e, struct ch_client *c, int idx, const char *mode,
                    const char *strategy, const char *tables)
{
	memset(c, 0, sizeof *c);
	c->idx = idx;
	snprintf(c->name, sizeof c->name, "c%d", idx + 1);
	snprintf(c->slot, sizeof c->slot, "%.40s_%.15s", e->db, c->name);
	snprintf(c->dir, sizeof c->dir, "%.470s/%.15s", e->casedir, c->name);
	mkdir(c->dir, 0755);
	snprintf(c->conf, sizeof c->conf, "%s/bridge.conf", c->dir);
	snprintf(c->sqlite, sizeof c->sqlite, "%s/local.db", c->dir);
	snprintf(c->out, sizeof c->out, "%s/bridge.out", c->dir);
	snprintf(c->err, sizeof c->err, "%s/bridge.err", c->dir);
	snprintf(c->mode, sizeof c->mode, "%s", mode);
	snprintf(c->strategy, sizeof c->strategy, "%s", strategy);
	c->runs = strcmp(mode, "manual") != 0;
	FILE *f = fopen(c->conf, "w");
	if (!f) {
		perror(c->conf);
		exit(3);
	}
	fprintf(f, "[bridge]\npostgres = host=127.0.0.1 port=%s user=postgres dbname=%s\n"
	        "sqlite = %s\nslot = %s\nmode = %s\ninterval = %s\ndebounce = %s\n"
	        "conflict = %s\ntimestamp_column = updated_at\n\n%s",
	        e->port, e->db, c->sqlite, c->slot, mode, ch_env_str("CHAOS_INTERVAL", "1s"),
	        ch_env_str("CHAOS_DEBOUNCE", "200ms"), strategy, tables);
	fclose(f);
}

static void note(const char *path, const char *fmt, const char *a, int b, double t)
{
	FILE *f = fopen(path, "a");
	if (f) {
		fprintf(f, fmt, a, b, t);
		fclose(f);
	}
}

static pid_t spawn(struct ch_env *e, struct ch_client *c, const char *cmd, const char *out,
                   const char *errf, bool truncate_out)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(3);
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the harness */
		int o = open(out, O_WRONLY | O_CREAT | (truncate_out ? O_TRUNC : O_APPEND), 0644);
		int r = open(errf, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (o < 0 || r < 0)
			_exit(126);
		dup2(o, 1);
		dup2(r, 2);
		close(o);
		close(r);
		setenv("PGSQLITE_BRIDGE_LOG_LEVEL", ch_env_str("CHAOS_LOG_LEVEL", "info"), 1);
		execl(e->bin, e->bin, cmd, "-c", c->conf, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Exit code, or 128+signal. */
static int decode_status(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int ch_bridge_cmd(struct ch_env *e, struct ch_client *c, const char *cmd, char *out,
                  size_t cap, int timeout_ms)
{
	char o[700], r[700];
	snprintf(o, sizeof o, "%s/%s.out", c->dir, cmd);
	snprintf(r, sizeof r, "%s/%s.err", c->dir, cmd);
	note(r, "==== %s: %d at %.1fs ====\n", cmd, 0, ch_now());
	pid_t pid = spawn(e, c, cmd, o, r, true);
	int status = 0, rc = -1;
	for (int waited = 0; waited <= timeout_ms; waited += 20) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			rc = decode_status(status);
			break;
		}
		ch_sleep_ms(20);
	}
	if (rc == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (out) {
		char *s = ch_slurp(o);
		snprintf(out, cap, "%s", s);
		free(s);
	}
	return rc;
}

void ch_bridge_start(struct ch_env *e, struct ch_client *c)
{
	char *s = ch_slurp(c->out);
	c->online_base = ch_count(s, "\"online\"");
	free(s);
	c->starts++;
	note(c->err, "==== %s: start #%d at %.1fs ====\n", "chaos", c->starts, ch_now());
	c->pid = spawn(e, c, "run", c->out, c->err, false);
	c->restart_at = 0;
}

void ch_bridge_kill9(struct ch_client *c, double restart_in)
{
	if (c->pid <= 0)
		return;
	kill_bridge(c);
	c->kills9++;
	note(c->err, "==== %s: kill -9 #%d at %.1fs ====\n", "chaos", c->kills9, ch_now());
	c->restart_at = ch_now() + restart_in;
}

/* The last n lines of a file, joined with " | ". */
static void last_lines(const char *path, int n, char *buf, size_t cap)
{
	char *t = ch_tail(path, 4096);
	size_t len = strlen(t);
	while (len > 0 && t[len - 1] == '\n')
		t[--len] = '\0';
	char *p = t + len;
	for (int k = 0; k < n && p > t; k++) {
		p--;
		while (p > t && p[-1] != '\n')
			p--;
	}
	for (char *q = p; *q; q++)
		if (*q == '\n')
			*q = '|';
	snprintf(buf, cap, "%s", p);
	free(t);
}

void ch_bridges_poll(struct ch_env *e, struct ch_client *cl, int n)
{
	for (int i = 0; i < n; i++) {
		struct ch_client *c = &cl[i];
		int status;
		if (c->pid > 0 && waitpid(c->pid, &status, WNOHANG) == c->pid) {
			char lines[1200];
			c->pid = 0;
			c->self_exits++;
			c->last_self_code = decode_status(status);
			last_lines(c->err, 2, lines, sizeof lines);
			ch_log("%s: the bridge exited by itself with code %d (exit #%d); stderr ends: %s",
			       c->name, c->last_self_code, c->self_exits, lines);
			c->restart_at = ch_now() + 0.5;
		}
		if (c->pid == 0 && c->runs && c->restart_at > 0 && ch_now() >= c->restart_at)
			ch_bridge_start(e, c);
	}
}

int ch_bridges_stop(struct ch_client *cl, int n, int timeout_ms)
{
	int bad = 0;
	for (int i = 0; i < n; i++)
		if (cl[i].pid > 0)
			kill(cl[i].pid, SIGTERM);
	for (int waited = 0; waited <= timeout_ms; waited += 50) {
		int up = 0;
		for (int i = 0; i < n; i++) {
			int status;
			if (cl[i].pid <= 0)
				continue;
			if (waitpid(cl[i].pid, &status, WNOHANG) == cl[i].pid) {
				int code = decode_status(status);
				if (code != 0) {
					char lines[1200];
					last_lines(cl[i].err, 2, lines, sizeof lines);
					ch_log("%s: SIGTERM: exit code %d; stderr ends: %s", cl[i].name, code, lines);
					bad++;
				}
				cl[i].pid = 0;
			} else {
				up++;
			}
		}
		if (!up)
			break;
		ch_sleep_ms(50);
	}
	for (int i = 0; i < n; i++)
		if (cl[i].pid > 0) {
			ch_log("%s: still running %d ms after SIGTERM: kill -9", cl[i].name, timeout_ms);
			kill_bridge(&cl[i]);
			bad++;
		}
	for (int i = 0; i < n; i++)
		cl[i].restart_at = 0;
	return bad;
}

void ch_bridges_wait_online(struct ch_client *cl, int n, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 100) {
		int pending = 0;
		for (int i = 0; i < n; i++) {
			if (cl[i].pid <= 0)
				continue;
			char *s = ch_slurp(cl[i].out);
			if (ch_count(s, "\"online\"") <= cl[i].online_base)
				pending++;
			free(s);
		}
		if (!pending)
			return;
		ch_sleep_ms(100);
	}
	ch_log("not every bridge said \"online\" within %d ms", timeout_ms);
}

/* ---- faults on the server ---- */
static PGconn *admin(struct ch_env *e)
{
	if (fault_conn && PQstatus(fault_conn) == CONNECTION_OK)
		return fault_conn;
	PQfinish(fault_conn);
	fault_conn = ch_pg_wait(e->admin_conninfo, 3000);
	return fault_conn;
}

/* Terminates one backend chosen with our random source among the pids the
 * query returns (first column pid, second 1 when preferred). */
static int terminate_one(struct ch_env *e, const char *sql, const char *what)
{
	PGconn *a = admin(e);
	if (!a)
		return 0;
	PGresult *r = PQexec(a, sql);
	int rows = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) : 0;
	int preferred = 0;
	for (int i = 0; i < rows; i++)
		preferred += atoi(PQgetvalue(r, i, 1)) == 1;
	int pick = -1;
	if (preferred) {
		int k = ch_randint(preferred);
		for (int i = 0; i < rows && pick < 0; i++)
			if (atoi(PQgetvalue(r, i, 1)) == 1 && k-- == 0)
				pick = i;
	} else if (rows) {
		pick = ch_randint(rows);
	}
	char q[200], who[200] = "";
	if (pick >= 0) {
		snprintf(who, sizeof who, "%s", PQgetvalue(r, pick, 2));
		snprintf(q, sizeof q, "SELECT pg_terminate_backend(%s)", PQgetvalue(r, pick, 0));
		ch_pg_exec(a, q, NULL, 0);
		ch_log("fault: %s killed (%s)", what, who);
	}
	PQclear(r);
	return pick >= 0;
}

int ch_fault_walsender(struct ch_env *e)
{
	char sql[600];
	/* Two ways of finding them, alternately: the slot's active pid, and
	 * pg_stat_replication. */
	if (ch_randint(2))
		snprintf(sql, sizeof sql,
		         "SELECT active_pid, 1, slot_name FROM pg_replication_slots "
		         "WHERE database = '%s' AND active_pid IS NOT NULL ORDER BY slot_name", e->db);
	else
		snprintf(sql, sizeof sql,
		         "SELECT pid, 1, application_name FROM pg_stat_replication "
		         "WHERE application_name LIKE 'pgsqlite-bridge %s%%' ORDER BY application_name", e->db);
	return terminate_one(e, sql, "walsender");
}

int ch_fault_push_backend(struct ch_env *e)
{
	char sql[700];
	/* The bridge's plain connections (push, snapshot, look-ups); busy ones
	 * first, so a push is hit mid-transaction when there is one. */
	snprintf(sql, sizeof sql,
	         "SELECT pid, CASE WHEN state <> 'idle' THEN 1 ELSE 0 END, "
	         "application_name || ' ' || coalesce(state, '') || ' ' || left(query, 60) "
	         "FROM pg_stat_activity WHERE datname = '%s' AND backend_type = 'client backend' "
	         "AND application_name LIKE 'pgsqlite-bridge %%' ORDER BY application_name, pid", e->db);
	return terminate_one(e, sql, "bridge backend");
}

int ch_fault(struct ch_env *e, struct ch_client *cl, int n, int kind, int *immediate)
{
	if (kind == CH_F_KILL9) {
		int v = ch_randint(n);
		for (int t = 0; t < n && cl[v].runs && cl[v].pid <= 0; t++)
			v = (v + 1) % n;
		struct ch_client *c = &cl[v];
		if (!c->runs) { /* a manual client: its sync dies mid-way */
			int after = 50 + ch_randint(600);
			int rc = ch_bridge_cmd(e, c, "sync", NULL, 0, after);
			ch_log("fault: %s's sync killed after %d ms%s", c->name, after, rc == -1 ? "" : " (it had finished)");
			c->kills9 += rc == -1;
			return rc == -1;
		}
		if (c->pid <= 0)
			return 0;
		double delay = (double)ch_randint(1500) / 1000.0;
		ch_log("fault: kill -9 %s (pid %d), restart in %.1fs", c->name, (int)c->pid, delay);
		ch_bridge_kill9(c, delay);
		return 1;
	}
	if (kind == CH_F_PG_RESTART) {
		int imm = ch_randint(3) == 0;
		ch_log("fault: Postgres restart -m %s", imm ? "immediate" : "fast");
		if (ch_pg_restart(e, imm) == 0) {
			*immediate += imm;
			return 1;
		}
		ch_log("the restart failed");
		ch_pg_ensure_up(e);
		return 0;
	}
	return kind == CH_F_WALSENDER ? ch_fault_walsender(e) : ch_fault_push_backend(e);
}

static int by_time(const void *a, const void *b)
{
	double x = ((const struct ch_plan *)a)->at, y = ((const struct ch_plan *)b)->at;
	return x < y ? -1 : x > y;
}

int ch_plan_make(struct ch_plan *plan, int cap, const int *counts, double seconds)
{
	int k = 0;
	for (int kind = 0; kind < CH_F_KINDS; kind++)
		for (int j = 0; j < counts[kind] && k < cap; j++, k++) {
			plan[k].kind = kind;
			plan[k].at = seconds * (0.03 + 0.87 * (double)(ch_rand() % 1000000) / 1e6);
		}
	qsort(plan, (size_t)k, sizeof *plan, by_time);
	return k;
}

void ch_plan_fire(struct ch_env *e, struct ch_client *cl, int n, const struct ch_plan *plan, int nplan,
                  int *p, double elapsed, int *done, int *immediate)
{
	static const char *const names[] = {"bridge to kill -9", "server restart", "walsender", "bridge backend"};
	while (*p < nplan && elapsed >= plan[*p].at) {
		int kind = plan[*p].kind;
		int hit = ch_fault(e, cl, n, kind, immediate);
		if (!hit && kind != CH_F_PG_RESTART && elapsed < plan[*p].at + 5)
			return; /* nothing to hit yet: again on the next pass */
		if (!hit)
			ch_log("fault: no %s found within 5 s: skipped", names[kind]);
		done[kind] += hit;
		(*p)++;
	}
}
