/* it.c: the integration-test helpers declared in it.h. */
#include "it.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Strings handed to tests are kept here and freed at teardown, so tests
 * can use them inline in assertions without leaking. */
static char *kept[4096];
static size_t nkept;

static char *keep(char *s)
{
	if (s && nkept < sizeof kept / sizeof *kept)
		kept[nkept++] = s;
	return s;
}

static void free_kept(void)
{
	while (nkept > 0)
		free(kept[--nkept]);
}

static const char *env_or(const char *name, const char *fallback)
{
	const char *v = getenv(name);
	return v && *v ? v : fallback;
}

void it_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static PGconn *connect_db(const char *db)
{
	char ci[256];
	snprintf(ci, sizeof ci, "host=127.0.0.1 port=%s user=postgres dbname=%s",
	         env_or("PGSB_TEST_PGPORT", "5432"), db);
	PGconn *c = PQconnectdb(ci);
	cr_assert(PQstatus(c) == CONNECTION_OK, "cannot connect to %s: %s", db, PQerrorMessage(c));
	return c;
}

void it_setup(struct it_env *e, const char *name)
{
	memset(e, 0, sizeof *e);
	snprintf(e->name, sizeof e->name, "%s", name);
	snprintf(e->db, sizeof e->db, "t_%s_%d", name, (int)getpid());
	snprintf(e->slot, sizeof e->slot, "s_%s_%d", name, (int)getpid());
	snprintf(e->conninfo, sizeof e->conninfo,
	         "host=127.0.0.1 port=%s user=postgres dbname=%s password=secret-pw",
	         env_or("PGSB_TEST_PGPORT", "5432"), e->db);
	snprintf(e->dir, sizeof e->dir, "%s/%s_%d", env_or("PGSB_TEST_TMP", "/tmp"), name, (int)getpid());
	mkdir(e->dir, 0755);
	snprintf(e->conf, sizeof e->conf, "%s/bridge.conf", e->dir);
	snprintf(e->sqlite, sizeof e->sqlite, "%s/local.db", e->dir);
	PGconn *admin = connect_db("postgres");
	char sql[200];
	snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", e->db);
	PGresult *r = PQexec(admin, sql);
	cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQerrorMessage(admin));
	PQclear(r);
	PQfinish(admin);
	e->pg = connect_db(e->db);
}

void it_add_client(struct it_env *base, struct it_env *client, const char *suffix)
{
	*client = *base;
	client->shares_pg = true;
	client->nbg = 0;
	snprintf(client->slot, sizeof client->slot, "%.50s_%s", base->slot, suffix);
	snprintf(client->dir, sizeof client->dir, "%.480s_%s", base->dir, suffix);
	mkdir(client->dir, 0755);
	snprintf(client->conf, sizeof client->conf, "%s/bridge.conf", client->dir);
	snprintf(client->sqlite, sizeof client->sqlite, "%s/local.db", client->dir);
}

void it_sqlite_exec(struct it_env *e, const char *fmt, ...)
{
	va_list ap;
	char *sql, *err = NULL;
	va_start(ap, fmt);
	cr_assert(vasprintf(&sql, fmt, ap) >= 0);
	va_end(ap);
	sqlite3 *db = it_sqlite_open(e);
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	cr_assert_eq(rc, SQLITE_OK, "SQLite failed: %s: %s", sql, err ? err : "");
	sqlite3_close(db);
	free(sql);
}

void it_teardown(struct it_env *e)
{
	free_kept();
	for (int i = 0; i < e->nbg; i++) /* a failed test may leave one running */
		if (e->bg[i] > 0 && kill(e->bg[i], SIGKILL) == 0)
			waitpid(e->bg[i], NULL, 0);
	e->nbg = 0;
	if (!e->pg)
		return;
	if (!e->shares_pg)
		PQfinish(e->pg);
	PGconn *c = connect_db("postgres");
	char sql[200];
	snprintf(sql, sizeof sql,
	         "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
	         "WHERE slot_name = '%s' AND NOT active", e->slot);
	PQclear(PQexec(c, sql));
	snprintf(sql, sizeof sql,
	         "SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname = '%s'",
	         e->slot);
	PQclear(PQexec(c, sql));
	PQfinish(c);
	e->pg = NULL;
}

void it_write_conf(struct it_env *e, const char *mode, const char *extra)
{
	FILE *f = fopen(e->conf, "w");
	cr_assert(f);
	fprintf(f, "[bridge]\npostgres = %s\nsqlite = %s\nslot = %s\nmode = %s\n%s\n",
	        e->conninfo, e->sqlite, e->slot, mode, extra ? extra : "");
	fclose(f);
}

static PGresult *exec_v(struct it_env *e, const char *fmt, va_list ap)
{
	char *sql;
	cr_assert(vasprintf(&sql, fmt, ap) >= 0);
	PGresult *r = PQexec(e->pg, sql);
	ExecStatusType st = PQresultStatus(r);
	if (PQstatus(e->pg) == CONNECTION_BAD) { /* e.g. after a server restart */
		PQclear(r);
		PQreset(e->pg);
		r = PQexec(e->pg, sql);
		st = PQresultStatus(r);
	}
	cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "SQL failed: %s: %s",
	          sql, PQerrorMessage(e->pg));
	free(sql);
	return r;
}

void it_sql(struct it_env *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	PQclear(exec_v(e, fmt, ap));
	va_end(ap);
}

char *it_sql_value(struct it_env *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	PGresult *r = exec_v(e, fmt, ap);
	va_end(ap);
	cr_assert(PQntuples(r) == 1, "expected one row, got %d", PQntuples(r));
	char *v = PQgetisnull(r, 0, 0) ? NULL : strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return keep(v);
}

int64_t it_sql_int(struct it_env *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	PGresult *r = exec_v(e, fmt, ap);
	va_end(ap);
	cr_assert(PQntuples(r) == 1);
	int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

static pid_t spawn(struct it_env *e, const char *cmd, const char *out, const char *errf)
{
	const char *bin = env_or("PGSB_TEST_BIN", "build/pgsqlite-bridge");
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		/* never outlive the test: a test Criterion kills for its timeout
		 * used to leave its bridges running, loading the machine */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int o = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
		int r = open(errf, O_WRONLY | O_CREAT | O_APPEND, 0644);
		dup2(o, 1);
		dup2(r, 2);
		setenv("PGSQLITE_BRIDGE_LOG_LEVEL", "debug", 0);
		execl(bin, bin, cmd, "-c", e->conf, (char *)NULL);
		_exit(127);
	}
	return pid;
}

int it_bridge_wait(pid_t pid, int timeout_ms)
{
	int status;
	for (int waited = 0;; waited += 10) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (waited >= timeout_ms) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			int ipid = pid;
			cr_assert(0, "bridge (pid %d) did not finish within %d ms", ipid, timeout_ms);
		}
		it_sleep_ms(10);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return strdup("");
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(f);
	fclose(m);
	return buf;
}

int it_bridge(struct it_env *e, const char *cmd, char *out, size_t cap)
{
	char o[700], r[700];
	snprintf(o, sizeof o, "%s/%s.out", e->dir, cmd);
	snprintf(r, sizeof r, "%s/%s.err", e->dir, cmd);
	unlink(o);
	int rc = it_bridge_wait(spawn(e, cmd, o, r), 120000);
	if (out) {
		char *s = slurp(o);
		snprintf(out, cap, "%s", s);
		free(s);
	}
	return rc;
}

pid_t it_bridge_start(struct it_env *e, const char *cmd)
{
	char o[700], r[700];
	snprintf(o, sizeof o, "%s/bg.out", e->dir);
	snprintf(r, sizeof r, "%s/bg.err", e->dir);
	pid_t pid = spawn(e, cmd, o, r);
	if (e->nbg < (int)(sizeof e->bg / sizeof *e->bg))
		e->bg[e->nbg++] = pid;
	return pid;
}

void it_bridge_kill9(pid_t pid)
{
	kill(pid, SIGKILL);
	int status;
	waitpid(pid, &status, 0);
}

char *it_bridge_stdout(struct it_env *e)
{
	char p[700];
	snprintf(p, sizeof p, "%s/bg.out", e->dir);
	return keep(slurp(p));
}

char *it_bridge_stderr(struct it_env *e)
{
	char p[700];
	snprintf(p, sizeof p, "%s/bg.err", e->dir);
	return keep(slurp(p));
}

sqlite3 *it_sqlite_open(struct it_env *e)
{
	sqlite3 *db;
	cr_assert(sqlite3_open_v2(e->sqlite, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK,
	          "cannot open %s", e->sqlite);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

/* -1 when the query fails (table missing yet), else the integer. */
static int64_t sqlite_int_or(struct it_env *e, const char *sql, int64_t fallback)
{
	if (access(e->sqlite, F_OK) != 0)
		return fallback;
	sqlite3 *db = it_sqlite_open(e);
	sqlite3_stmt *st;
	int64_t v = fallback;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return v;
}

int64_t it_sqlite_int(struct it_env *e, const char *sql)
{
	return sqlite_int_or(e, sql, INT64_MIN);
}

char *it_sqlite_text(struct it_env *e, const char *sql)
{
	sqlite3 *db = it_sqlite_open(e);
	sqlite3_stmt *st;
	char *v = NULL;
	cr_assert(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return keep(v);
}

bool it_wait_sqlite_int(struct it_env *e, const char *sql, int64_t want, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 20) {
		if (sqlite_int_or(e, sql, INT64_MIN) == want)
			return true;
		it_sleep_ms(20);
	}
	return false;
}

bool it_wait_pg_int(struct it_env *e, const char *sql, int64_t want, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 20) {
		if (it_sql_int(e, "%s", sql) == want)
			return true;
		it_sleep_ms(20);
	}
	return false;
}

char *it_pg_rows(struct it_env *e, const char *sql)
{
	PGresult *r = PQexec(e->pg, sql);
	cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(e->pg));
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	for (int i = 0; i < PQntuples(r); i++) {
		for (int j = 0; j < PQnfields(r); j++)
			fprintf(m, "%s%s", j ? "|" : "", PQgetisnull(r, i, j) ? "<null>" : PQgetvalue(r, i, j));
		fputc('\n', m);
	}
	fclose(m);
	PQclear(r);
	return keep(buf);
}

char *it_sqlite_rows(struct it_env *e, const char *sql)
{
	sqlite3 *db = it_sqlite_open(e);
	sqlite3_stmt *st;
	cr_assert(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	while (sqlite3_step(st) == SQLITE_ROW) {
		for (int j = 0; j < sqlite3_column_count(st); j++) {
			const unsigned char *t = sqlite3_column_text(st, j);
			fprintf(m, "%s%s", j ? "|" : "", t ? (const char *)t : "<null>");
		}
		fputc('\n', m);
	}
	fclose(m);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return keep(buf);
}

void it_pg_restart(void)
{
	char cmd[800];
	snprintf(cmd, sizeof cmd, "tests/pg-cluster.sh restart '%s'", env_or("PGSB_TEST_PGDATA", ""));
	cr_assert(system(cmd) == 0, "cluster restart failed");
}

void it_pg_stop(void)
{
	char cmd[800];
	snprintf(cmd, sizeof cmd, "tests/pg-cluster.sh stop '%s'", env_or("PGSB_TEST_PGDATA", ""));
	cr_assert(system(cmd) == 0, "cluster stop failed");
}

void it_pg_start(void)
{
	char cmd[800];
	snprintf(cmd, sizeof cmd, "tests/pg-cluster.sh start '%s' >/dev/null", env_or("PGSB_TEST_PGDATA", ""));
	cr_assert(system(cmd) == 0, "cluster start failed");
}

int it_count(const char *haystack, const char *needle)
{
	int n = 0;
	for (const char *p = haystack; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* Has the background bridge printed needle on stdout yet? */
static bool said(struct it_env *e, const char *needle)
{
	char p[700];
	snprintf(p, sizeof p, "%s/bg.out", e->dir);
	char *out = slurp(p);
	bool yes = strstr(out, needle) != NULL;
	free(out);
	return yes;
}

pid_t it_run_online(struct it_env *e)
{
	pid_t pid = it_bridge_start(e, "run");
	for (int i = 0; i < 1500 && !said(e, "\"online\""); i++)
		it_sleep_ms(20);
	cr_assert(said(e, "\"online\""), "bridge never came online: %s", it_bridge_stderr(e));
	return pid;
}

void it_stop(struct it_env *e, pid_t pid)
{
	kill(pid, SIGTERM);
	cr_assert_eq(it_bridge_wait(pid, 30000), 0, "graceful stop failed: %s", it_bridge_stderr(e));
}
