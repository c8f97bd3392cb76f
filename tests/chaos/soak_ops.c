/* soak_ops.c: the model test's operations and its model (soak.h).  Each
 * operation is one transaction by one actor, on Postgres or on a client's
 * SQLite file, written once with $n parameters for both.  The model moves
 * only on a definite outcome: a commit that returned success changes it, a
 * rollback leaves it, and a Postgres commit whose connection broke makes
 * the rows involved unknown.  A private row that is not what its only
 * writer left it (an update or delete that finds nothing, an insert that
 * finds a row) is an anomaly: the bridge changed it behind the owner. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "soak.h"

enum { R_OK, R_UNIQUE, R_BUSY, R_FAIL, R_AMBIG };

struct stmt {
	const char *sql;
	const char *p[5];
	int np;
};

static const char *const UPSERT_ITEM =
	"INSERT INTO items (id, owner, val, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE"
	" SET owner = excluded.owner, val = excluded.val, updated_at = excluded.updated_at";
static const char *const INSERT_ITEM = "INSERT INTO items (id, owner, val, updated_at) VALUES ($1, $2, $3, $4)";
static const char *const UPDATE_ITEM = "UPDATE items SET owner = $2, val = $3, updated_at = $4 WHERE id = $1";
static const char *const MOVE_ITEM =
	"UPDATE items SET id = $1, owner = $2, val = $3, updated_at = $4 WHERE id = $5";
static const char *const DELETE_ITEM = "DELETE FROM items WHERE id = $1";

int soak_schema(struct ch_env *e)
{
	static const char sql[] =
		"CREATE TABLE ledger (id text PRIMARY KEY, writer text NOT NULL, n bigint NOT NULL, note text);"
		"CREATE TABLE items (id text PRIMARY KEY, owner text, val text, updated_at text);"
		"CREATE TABLE scratch (id text PRIMARY KEY, val text);"
		"CREATE TABLE soak_hist (id text, val text, at timestamptz DEFAULT clock_timestamp());"
		"CREATE FUNCTION soak_hist_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
		" INSERT INTO soak_hist (id, val) VALUES (NEW.id, NEW.val); RETURN NEW; END $$;"
		"CREATE TRIGGER soak_hist AFTER INSERT OR UPDATE ON items FOR EACH ROW EXECUTE FUNCTION soak_hist_fn();"
		"ALTER TABLE items ENABLE ALWAYS TRIGGER soak_hist;";
	char err[512];
	PGconn *pg = ch_pg_wait(e->conninfo, 10000);
	int rc = pg && ch_pg_exec(pg, sql, err, sizeof err) == 0 && ch_pg_audit_install(pg) == 0 ? 0 : -1;
	if (rc)
		fprintf(stderr, "%s: schema: %s\n", ch_prog(), pg ? err : "no connection");
	PQfinish(pg);
	return rc;
}

static PGconn *pg_open(const char *conninfo)
{
	PGconn *c = ch_pg_connect(conninfo);
	/* durable commits (the cluster runs synchronous_commit = off), and
	 * never wait long on a row a bridge holds */
	if (c && ch_pg_exec(c, "SET synchronous_commit = on; SET lock_timeout = '5s';"
	                       " SET statement_timeout = '20s'", NULL, 0)) {
		PQfinish(c);
		c = NULL;
	}
	return c;
}

int soak_open(struct soak_ctx *x)
{
	x->nact = x->n + 1;
	for (int i = 0; i < x->nact; i++) {
		struct soak_actor *a = &x->act[i];
		memset(a, 0, sizeof *a);
		a->client = i - 1;
		snprintf(a->name, sizeof a->name, i ? "c%d" : "pg", i);
		if (i && !(a->db = ch_sqlite_open(x->cl[i - 1].sqlite, 5000)))
			return -1;
	}
	ch_set_init(&x->committed);
	ch_set_init(&x->written);
	ch_set_init(&x->cols);
	char path[600];
	snprintf(path, sizeof path, "%.500s/ops.log", x->env->casedir);
	x->trace = fopen(path, "w");
	return 0;
}

void soak_close(struct soak_ctx *x)
{
	for (int i = 0; i < x->nact; i++) {
		sqlite3_close(x->act[i].db);
		PQfinish(x->act[i].pg);
		x->act[i].db = NULL;
		x->act[i].pg = NULL;
	}
	if (x->trace)
		fclose(x->trace);
	x->trace = NULL;
}

static void note_error(struct soak_ctx *x, struct soak_actor *a, const char *msg)
{
	if (x->failed++ < 5)
		ch_log("%s: operation failed: %.200s", a->name, msg);
}

static int run_sqlite(struct soak_ctx *x, struct soak_actor *a, const struct stmt *s, int ns, int *changes)
{
	int res = R_OK;
	if (ns > 1 && sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return R_BUSY;
	for (int i = 0; i < ns && res == R_OK; i++) {
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(a->db, s[i].sql, -1, &st, NULL) != SQLITE_OK) {
			note_error(x, a, sqlite3_errmsg(a->db));
			res = R_FAIL;
			break;
		}
		for (int k = 0; k < s[i].np; k++) {
			char name[16];
			snprintf(name, sizeof name, "$%d", k + 1);
			int idx = sqlite3_bind_parameter_index(st, name);
			if (idx > 0)
				sqlite3_bind_text(st, idx, s[i].p[k], -1, SQLITE_TRANSIENT);
		}
		int rc = sqlite3_step(st);
		changes[i] = sqlite3_changes(a->db);
		if (rc != SQLITE_DONE) {
			int ext = sqlite3_extended_errcode(a->db);
			if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
				res = R_BUSY;
			else if (ext == SQLITE_CONSTRAINT_PRIMARYKEY || ext == SQLITE_CONSTRAINT_UNIQUE)
				res = R_UNIQUE;
			else {
				note_error(x, a, sqlite3_errmsg(a->db));
				res = R_FAIL;
			}
		}
		sqlite3_finalize(st);
	}
	if (ns > 1) {
		if (res == R_OK && sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			res = R_BUSY;
		if (!sqlite3_get_autocommit(a->db))
			sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
	}
	return res;
}

static int run_pg(struct soak_ctx *x, struct soak_actor *a, const struct stmt *s, int ns, int *changes)
{
	if (!a->pg || PQstatus(a->pg) != CONNECTION_OK) {
		PQfinish(a->pg);
		if (!(a->pg = pg_open(x->env->conninfo)))
			return R_FAIL; /* the server is restarting: nothing happened */
	}
	int res = R_OK;
	bool txn = ns > 1;
	if (txn && ch_pg_exec(a->pg, "BEGIN", NULL, 0))
		return R_FAIL;
	for (int i = 0; i < ns && res == R_OK; i++) {
		PGresult *r = PQexecParams(a->pg, s[i].sql, s[i].np, NULL, s[i].p, NULL, NULL, 0);
		if (PQresultStatus(r) == PGRES_COMMAND_OK) {
			changes[i] = atoi(PQcmdTuples(r));
		} else {
			const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
			if (PQstatus(a->pg) != CONNECTION_OK)
				res = txn ? R_FAIL : R_AMBIG; /* an autocommit may have committed */
			else if (state && strcmp(state, "23505") == 0)
				res = R_UNIQUE;
			else {
				note_error(x, a, PQerrorMessage(a->pg));
				res = R_FAIL;
			}
		}
		PQclear(r);
	}
	if (txn && res == R_OK) {
		PGresult *r = PQexec(a->pg, "COMMIT");
		if (PQresultStatus(r) != PGRES_COMMAND_OK || strcmp(PQcmdStatus(r), "COMMIT") != 0)
			res = PQstatus(a->pg) != CONNECTION_OK ? R_AMBIG : R_FAIL;
		PQclear(r);
	} else if (txn && PQstatus(a->pg) == CONNECTION_OK) {
		PQclear(PQexec(a->pg, "ROLLBACK"));
	}
	return res;
}

static int run(struct soak_ctx *x, struct soak_actor *a, const struct stmt *s, int ns, int *changes)
{
	memset(changes, 0, sizeof(int) * (size_t)ns);
	int res = a->client < 0 ? run_pg(x, a, s, ns, changes) : run_sqlite(x, a, s, ns, changes);
	static const char *const names[] = {"ok", "unique", "busy", "failed", "ambiguous"};
	for (int i = 0; x->trace && i < ns; i++) {
		fprintf(x->trace, "%.3f %s %.*s |", ch_now(), a->name, (int)strcspn(s[i].sql, "("), s[i].sql);
		for (int k = 0; k < s[i].np; k++)
			fprintf(x->trace, " %s", s[i].p[k]);
		fprintf(x->trace, " | changes %d%s%s\n", changes[i], i == ns - 1 ? " -> " : "",
		        i == ns - 1 ? names[res] : "");
	}
	x->ops++;
	x->busy += res == R_BUSY;
	x->unique += res == R_UNIQUE;
	x->ambiguous += res == R_AMBIG;
	return res;
}

/* A new unique value and the time; remembered as written before the try,
 * so a value that may or may not have committed is never "invented". */
static void new_value(struct soak_ctx *x, struct soak_actor *a, const char *table, const char *id, char *val,
                      size_t vcap, char *ts, size_t tcap)
{
	char key[300];
	snprintf(val, vcap, "%s-v%ld", a->name, ++a->seq);
	ch_iso_now(ts, tcap);
	if (strcmp(table, "items") == 0) {
		snprintf(key, sizeof key, "items|%s|%s|%s|%s", id, a->name, val, ts);
		ch_set_slot(&x->written, key);
		snprintf(key, sizeof key, "o|%s", a->name);
		ch_set_slot(&x->cols, key);
		snprintf(key, sizeof key, "t|%s", ts);
		ch_set_slot(&x->cols, key);
	} else {
		snprintf(key, sizeof key, "scratch|%s|%s", id, val);
		ch_set_slot(&x->written, key);
	}
	snprintf(key, sizeof key, "v|%s", val);
	ch_set_slot(&x->cols, key);
}

static void op_ledger(struct soak_ctx *x, struct soak_actor *a)
{
	struct stmt s[3];
	char ids[3][48], nums[3][24];
	int ch[3], rows = 1 + ch_randint(3);
	for (int i = 0; i < rows; i++) {
		snprintf(ids[i], sizeof ids[i], "%s-L%ld", a->name, ++a->seq);
		snprintf(nums[i], sizeof nums[i], "%ld", a->seq);
		s[i] = (struct stmt){"INSERT INTO ledger (id, writer, n, note) VALUES ($1, $2, $3, $4)",
		                     {ids[i], a->name, nums[i], "soak"}, 4};
	}
	if (run(x, a, s, rows, ch) == R_OK)
		for (int i = 0; i < rows; i++)
			ch_set_slot(&x->committed, ids[i]);
}

static void priv_set(struct soak_actor *a, int i, int state, const char *id, const char *val, const char *ts)
{
	char owner[sizeof a->name];
	memcpy(owner, a->name, sizeof owner);
	a->priv[i].state = state;
	if (state == PRIV_PRESENT)
		snprintf(a->priv[i].row, sizeof a->priv[i].row, "%s|%s|%s|%s", id, owner, val, ts);
}

static void anomaly(struct soak_ctx *x, struct soak_actor *a, const char *what, const char *id)
{
	if (x->anomalies++ < 10)
		ch_log("anomaly: %s: %s on its own row %s found it not as it left it", a->name, what, id);
}

/* A private key (only this actor writes it): the model knows it exactly. */
static void op_private(struct soak_ctx *x, struct soak_actor *a)
{
	int i = 1 + ch_randint(SOAK_PRIV), j = 0, ch[2], r = ch_randint(10), res;
	char id[48], id2[48] = "", val[48], val2[48] = "", ts[40], ts2[40] = "";
	snprintf(id, sizeof id, "%s:%d", a->name, i);
	int st = a->priv[i].state;
	if (st == PRIV_PRESENT && r >= 7) { /* a key change needs a free key */
		int start = 1 + ch_randint(SOAK_PRIV);
		for (int t = 0; t < SOAK_PRIV && !j; t++) {
			int c = 1 + (start + t - 1) % SOAK_PRIV;
			if (c != i && a->priv[c].state == PRIV_ABSENT)
				j = c;
		}
		if (!j)
			r = 0;
		snprintf(id2, sizeof id2, "%s:%d", a->name, j);
	}
	if (st != PRIV_PRESENT || r < 5) { /* insert, upsert or update */
		const char *sql = st == PRIV_ABSENT ? INSERT_ITEM : st == PRIV_UNKNOWN ? UPSERT_ITEM : UPDATE_ITEM;
		new_value(x, a, "items", id, val, sizeof val, ts, sizeof ts);
		struct stmt s = {sql, {id, a->name, val, ts}, 4};
		x->by_kind[1]++;
		res = run(x, a, &s, 1, ch);
		if (res == R_OK && ch[0] == 1)
			priv_set(a, i, PRIV_PRESENT, id, val, ts);
		else if (res == R_OK || res == R_UNIQUE) {
			anomaly(x, a, sql == UPDATE_ITEM ? "an update" : "an insert", id);
			a->priv[i].state = PRIV_UNKNOWN;
		} else if (res == R_AMBIG)
			a->priv[i].state = PRIV_UNKNOWN;
	} else if (r < 7) { /* delete */
		struct stmt s = {DELETE_ITEM, {id}, 1};
		x->by_kind[2]++;
		res = run(x, a, &s, 1, ch);
		if (res == R_OK && ch[0] != 1)
			anomaly(x, a, "a delete", id);
		if (res == R_OK)
			a->priv[i].state = PRIV_ABSENT;
		else if (res == R_AMBIG)
			a->priv[i].state = PRIV_UNKNOWN;
	} else { /* key change i -> j; with r == 9 also a new row at i, one transaction */
		bool combo = r == 9 && getenv("SOAK_NO_KEY_REUSE") == NULL;
		new_value(x, a, "items", id2, val, sizeof val, ts, sizeof ts);
		if (combo)
			new_value(x, a, "items", id, val2, sizeof val2, ts2, sizeof ts2);
		struct stmt s[2] = {{MOVE_ITEM, {id2, a->name, val, ts, id}, 5},
		                    {INSERT_ITEM, {id, a->name, val2, ts2}, 4}};
		x->by_kind[combo ? 4 : 3]++;
		res = run(x, a, s, combo ? 2 : 1, ch);
		if (res == R_OK && ch[0] == 1) {
			priv_set(a, j, PRIV_PRESENT, id2, val, ts);
			priv_set(a, i, combo ? PRIV_PRESENT : PRIV_ABSENT, id, val2, ts2);
		} else if (res == R_OK || res == R_UNIQUE) {
			anomaly(x, a, "a key change", id);
			a->priv[i].state = a->priv[j].state = PRIV_UNKNOWN;
		} else if (res == R_AMBIG) {
			a->priv[i].state = a->priv[j].state = PRIV_UNKNOWN;
		}
	}
}

/* A shared key: every actor writes it; the strategy decides. */
static void op_shared(struct soak_ctx *x, struct soak_actor *a)
{
	int i = 1 + ch_randint(SOAK_SHARED), j = 1 + ch_randint(SOAK_SHARED - 1), r = ch_randint(20), ch[1];
	char id[48], id2[48], val[48], ts[40];
	j += j >= i;
	snprintf(id, sizeof id, "s:%d", i);
	snprintf(id2, sizeof id2, "s:%d", j);
	struct stmt s;
	int kind;
	if (r < 6) {
		new_value(x, a, "items", id, val, sizeof val, ts, sizeof ts);
		s = (struct stmt){UPSERT_ITEM, {id, a->name, val, ts}, 4};
		kind = 1;
	} else if (r < 13) {
		new_value(x, a, "items", id, val, sizeof val, ts, sizeof ts);
		s = (struct stmt){UPDATE_ITEM, {id, a->name, val, ts}, 4};
		kind = 1;
	} else if (r < 16 && getenv("SOAK_NO_SHARED_MOVES") == NULL) {
		new_value(x, a, "items", id2, val, sizeof val, ts, sizeof ts);
		s = (struct stmt){MOVE_ITEM, {id2, a->name, val, ts, id}, 5};
		kind = 3;
	} else {
		s = (struct stmt){DELETE_ITEM, {id}, 1};
		kind = 2;
	}
	x->by_kind[kind]++;
	if (run(x, a, &s, 1, ch) != R_OK || ch[0] < 1 || a->client < 0)
		return;
	if (kind == 1)
		snprintf(a->last[i], sizeof a->last[i], "%s", val);
	else
		a->last[i][0] = '\0';
	if (kind == 3)
		snprintf(a->last[j], sizeof a->last[j], "%s", val);
}

static void op_scratch(struct soak_ctx *x, struct soak_actor *a)
{
	int r = ch_randint(20), ch[1];
	char id[48], val[48], ts[40];
	snprintf(id, sizeof id, "sc:%d", 1 + ch_randint(SOAK_SCRATCH));
	struct stmt s;
	if (r < 12) {
		new_value(x, a, "scratch", id, val, sizeof val, ts, sizeof ts);
		s = (struct stmt){"INSERT INTO scratch (id, val) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE"
		                  " SET val = excluded.val", {id, val}, 2};
	} else if (r < 17) {
		s = (struct stmt){"DELETE FROM scratch WHERE id = $1", {id}, 1};
	} else {
		s = (struct stmt){a->client < 0 ? "TRUNCATE scratch" : "DELETE FROM scratch", {NULL}, 0};
		x->by_kind[5]++;
	}
	run(x, a, &s, 1, ch);
}

void soak_op(struct soak_ctx *x)
{
	struct soak_actor *a = &x->act[ch_randint(x->nact)];
	int r = ch_randint(100);
	if (r < 25)
		op_ledger(x, a);
	else if (r < 50)
		op_private(x, a);
	else if (r < 85)
		op_shared(x, a);
	else
		op_scratch(x, a);
}

/* ---- checks ---- */
struct side_rows {
	int n;
	char id[64][32];
	char row[64][200];
};

/* Rows of items (or scratch) on one side (-1: Postgres) as "c1|c2|...". */
static void load_rows(struct soak_ctx *x, int side, const char *sql, struct side_rows *out)
{
	out->n = 0;
	if (side < 0) {
		PGconn *pg = ch_pg_wait(x->env->conninfo, 10000);
		PGresult *r = pg ? PQexec(pg, sql) : NULL;
		for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r) && out->n < 64; i++, out->n++) {
			size_t o = 0;
			snprintf(out->id[out->n], sizeof out->id[0], "%s", PQgetvalue(r, i, 0));
			for (int j = 0; j < PQnfields(r) && o < sizeof out->row[0]; j++)
				o += (size_t)snprintf(out->row[out->n] + o, sizeof out->row[0] - o, "%s%s", j ? "|" : "",
				                      PQgetvalue(r, i, j));
		}
		PQclear(r);
		PQfinish(pg);
		return;
	}
	sqlite3 *db = ch_sqlite_open(x->cl[side].sqlite, 10000);
	sqlite3_stmt *st;
	if (db && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW && out->n < 64) {
			size_t o = 0;
			for (int j = 0; j < sqlite3_column_count(st) && o < sizeof out->row[0]; j++) {
				const char *c = (const char *)sqlite3_column_text(st, j);
				o += (size_t)snprintf(out->row[out->n] + o, sizeof out->row[0] - o, "%s%s", j ? "|" : "",
				                      c ? c : "");
				if (j == 0)
					snprintf(out->id[out->n], sizeof out->id[0], "%s", c ? c : "");
			}
			out->n++;
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
}

static const char *const ITEMS_SQL = "SELECT id, owner, val, updated_at FROM items";
static const char *const SCRATCH_SQL = "SELECT id, val FROM scratch";

static const char *find_row(const struct side_rows *rs, const char *id)
{
	for (int i = 0; i < rs->n; i++)
		if (strcmp(rs->id[i], id) == 0)
			return rs->row[i];
	return NULL;
}

long soak_check_model(struct soak_ctx *x)
{
	long bad = 0;
	struct side_rows rs;
	for (int side = -1; side < x->n; side++) {
		const char *where = side < 0 ? "postgres" : x->cl[side].name;
		load_rows(x, side, ITEMS_SQL, &rs);
		for (int a = 0; a < x->nact; a++)
			for (int i = 1; i <= SOAK_PRIV; i++) {
				const struct soak_actor *ac = &x->act[a];
				char id[48];
				snprintf(id, sizeof id, "%s:%d", ac->name, i);
				const char *got = find_row(&rs, id);
				int st = ac->priv[i].state;
				bool ok = st == PRIV_UNKNOWN || (st == PRIV_ABSENT && !got) ||
				          (st == PRIV_PRESENT && got && strcmp(got, ac->priv[i].row) == 0);
				if (!ok && bad++ < 8)
					ch_log("model: %s: private row %s is %s, its owner left %s", where, id,
					       got ? got : "absent", st == PRIV_PRESENT ? ac->priv[i].row : "none");
			}
	}
	return bad;
}

long soak_check_invented(struct soak_ctx *x, bool merge)
{
	long bad = 0;
	char key[300];
	struct side_rows rs;
	for (int side = -1; side < x->n; side++) {
		load_rows(x, side, ITEMS_SQL, &rs);
		for (int i = 0; i < rs.n; i++) {
			char id[64], owner[64], val[64], ts[64];
			if (sscanf(rs.row[i], "%63[^|]|%63[^|]|%63[^|]|%63s", id, owner, val, ts) != 4)
				snprintf(val, sizeof val, "?");
			snprintf(key, sizeof key, "items|%s", rs.row[i]);
			bool ok = ch_set_find(&x->written, key) != NULL;
			if (!ok && merge) {
				char k2[100], k3[100];
				snprintf(key, sizeof key, "v|%s", val);
				snprintf(k2, sizeof k2, "o|%s", owner);
				snprintf(k3, sizeof k3, "t|%s", ts);
				ok = ch_set_find(&x->cols, key) && ch_set_find(&x->cols, k2) && ch_set_find(&x->cols, k3);
			}
			if (!ok && bad++ < 8)
				ch_log("invented: %s: items row %s was never written", side < 0 ? "postgres" : x->cl[side].name,
				       rs.row[i]);
		}
		load_rows(x, side, SCRATCH_SQL, &rs);
		for (int i = 0; i < rs.n; i++) {
			const char *val = strchr(rs.row[i], '|');
			snprintf(key, sizeof key, "scratch|%s", rs.row[i]);
			bool ok = ch_set_find(&x->written, key) != NULL;
			if (!ok && merge && val) {
				snprintf(key, sizeof key, "v|%s", val + 1);
				ok = ch_set_find(&x->cols, key) != NULL;
			}
			if (!ok && bad++ < 8)
				ch_log("invented: %s: scratch row %s was never written",
				       side < 0 ? "postgres" : x->cl[side].name, rs.row[i]);
		}
	}
	return bad;
}

long soak_check_rules(struct soak_ctx *x)
{
	long bad = 0;
	PGconn *pg = ch_pg_wait(x->env->conninfo, 10000);
	for (int c = 0; pg && c < x->n; c++) {
		const char *strategy = x->cl[c].strategy;
		bool keep = strcmp(strategy, "keep-both") == 0;
		if (!keep && strcmp(strategy, "local-wins") != 0)
			continue;
		for (int i = 1; i <= SOAK_SHARED; i++) {
			const char *v = x->act[c + 1].last[i];
			char sql[300];
			if (!v[0])
				continue;
			snprintf(sql, sizeof sql, "SELECT count(*) FROM soak_hist WHERE val = '%s'", v);
			if (ch_pg_long(pg, sql, 0) > 0)
				continue;
			/* kept for a person: under keep-both any conflict; under
			 * local-wins a change Postgres rejected (a key move onto a
			 * key another writer took meanwhile) */
			snprintf(sql, sizeof sql, "SELECT count(*) FROM _pgsqlite_conflicts WHERE instr(local_row, '\"%s\"') > 0%s",
			         v, keep ? "" : " AND resolution LIKE 'rejected:%'");
			if (ch_sqlite_long(x->cl[c].sqlite, sql, 0) > 0)
				continue;
			if (bad++ < 8)
				ch_log("rule: %s (%s): its last write to s:%d (%s) never reached Postgres and is not kept in "
				       "_pgsqlite_conflicts%s", x->cl[c].name, strategy, i, v, keep ? "" : " as rejected");
		}
	}
	PQfinish(pg);
	return bad;
}
