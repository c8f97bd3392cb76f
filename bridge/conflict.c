/* conflict.c: the merge point.  Given a row changed on both sides (the
 * local net change with its base, and the row now in Postgres), decides
 * which version wins under the table's strategy or the embedder's merge
 * callback, and builds the merged row for `merge`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "br.h"
#include "log.h"

#define COMMIT_TS_COLUMN "_pgsb_commit_ts"

static int digits(const char **s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++, (*s)++) {
		if (**s < '0' || **s > '9')
			return -1;
		v = v * 10 + (**s - '0');
	}
	return v;
}

/* Microseconds of a fraction ".123456" (any length; beyond 6 digits cut). */
static int64_t fraction_us(const char **s)
{
	int64_t us = 0, scale = 100000;

	if (**s != '.')
		return 0;
	for ((*s)++; **s >= '0' && **s <= '9'; (*s)++, scale /= 10)
		if (scale > 0)
			us += (**s - '0') * scale;
	return us;
}

/* Offset "Z", "+02", "-05:30", "+0530" in seconds east of UTC. */
static int64_t zone_seconds(const char *s)
{
	if (*s == 'Z' || *s == '\0')
		return 0;
	if (*s != '+' && *s != '-')
		return 0;
	int sign = *s == '-' ? -1 : 1;
	s++;
	int h = digits(&s, 2), m = 0;
	if (*s == ':')
		s++;
	if (*s >= '0' && *s <= '9')
		m = digits(&s, 2);
	return h < 0 || m < 0 ? 0 : sign * (h * 3600 + m * 60);
}

int64_t conflict_parse_time(const char *s)
{
	struct tm tm = {0};
	const char *p = s;

	if (!s)
		return INT64_MIN;
	int y = digits(&p, 4), mo = (*p == '-') ? (p++, digits(&p, 2)) : -1;
	int d = (*p == '-') ? (p++, digits(&p, 2)) : -1;
	if (y < 0 || mo < 0 || d < 0)
		return INT64_MIN;
	if (*p == 'T' || *p == ' ') {
		p++;
		tm.tm_hour = digits(&p, 2);
		tm.tm_min = (*p == ':') ? (p++, digits(&p, 2)) : -1;
		tm.tm_sec = (*p == ':') ? (p++, digits(&p, 2)) : 0;
	}
	if (tm.tm_hour < 0 || tm.tm_min < 0 || tm.tm_sec < 0)
		return INT64_MIN;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	int64_t us = fraction_us(&p);
	return ((int64_t)timegm(&tm) - zone_seconds(p)) * 1000000 + us;
}

/* Column index of name in r (exact, unlike PQfnumber, which folds case),
 * or -1. */
static int column_of(PGresult *r, const char *name)
{
	for (int j = 0; r && j < PQnfields(r); j++)
		if (strcmp(PQfname(r, j), name) == 0)
			return j;
	return -1;
}

static int remote_exists(const struct conflict_case *cc)
{
	return cc->remote && PQntuples(cc->remote) == 1;
}

char *conflict_remote_json(PGresult *r)
{
	if (!r || PQntuples(r) != 1)
		return NULL;
	cJSON *o = cJSON_CreateObject();
	for (int j = 0; j < PQnfields(r); j++) {
		const char *name = PQfname(r, j);
		if (strcmp(name, COMMIT_TS_COLUMN) == 0)
			continue;
		if (PQgetisnull(r, 0, j))
			cJSON_AddNullToObject(o, name);
		else
			cJSON_AddStringToObject(o, name, PQgetvalue(r, 0, j));
	}
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

/* The field `name` of a row image (exact text, via the decoder's object
 * reader: numbers never pass through a double), or NULL.  Valid until the
 * next call. */
static const struct dec_field *image_field(struct pgsb *b, const char *json, const char *name)
{
	struct dec_field *f;
	size_t n;
	struct dec_error e;

	if (!json || dec_parse_object(&b->push.key_dec, json, strlen(json), &f, &n, &e))
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (dec_str_eq(f[i].name, name))
			return &f[i];
	return NULL;
}

/* The value of column `name` in a row image, as text (malloc'd), or NULL. */
static char *json_text(struct pgsb *b, const char *json, const char *name)
{
	const struct dec_field *f = image_field(b, json, name);

	if (!f || f->kind == DEC_NULL)
		return NULL;
	if (f->kind == DEC_TRUE || f->kind == DEC_FALSE)
		return strdup(f->kind == DEC_TRUE ? "true" : "false");
	return strndup(f->value.p, f->value.len);
}

/* When each side last wrote the row: the timestamp column where the table
 * has one, else the local change's time against the Postgres commit time. */
static void side_times(struct pgsb *b, const struct conflict_case *cc, int64_t *local,
                       int64_t *remote)
{
	const char *tc = b->cfg->timestamp_column;
	char *lt = tc && *tc ? json_text(b, cc->local_json, tc) : NULL;
	int rc = remote_exists(cc) && tc && *tc ? column_of(cc->remote, tc) : -1;

	*local = lt ? conflict_parse_time(lt) : INT64_MIN;
	if (*local == INT64_MIN)
		*local = conflict_parse_time(cc->local_time);
	*remote = rc >= 0 && !PQgetisnull(cc->remote, 0, rc)
	          ? conflict_parse_time(PQgetvalue(cc->remote, 0, rc)) : INT64_MIN;
	if (*remote == INT64_MIN)
		*remote = conflict_parse_time(cc->remote_time);
	free(lt);
}

/* last-write-wins; a tie (or no remote time) is broken deterministically by
 * comparing the two versions' text, so every side decides the same. */
static enum conflict_winner last_write_wins(struct pgsb *b, const struct conflict_case *cc)
{
	int64_t local, remote;

	side_times(b, cc, &local, &remote);
	if (local != remote)
		return local > remote ? WIN_LOCAL : WIN_REMOTE;
	char *rj = conflict_remote_json(cc->remote);
	int cmp = strcmp(cc->local_json ? cc->local_json : "", rj ? rj : "");
	free(rj);
	return cmp >= 0 ? WIN_LOCAL : WIN_REMOTE;
}

/* The Postgres input text of a row image's value for a column (malloc'd,
 * NULL for SQL NULL or absent): bytea's hex gets its \x. */
static char *image_value(struct pgsb *b, const char *json, const struct sl_column *col)
{
	char *v = json_text(b, json, col->name), *out = NULL;

	if (v && col->typeoid == 17 && asprintf(&out, "\\x%s", v) >= 0) {
		free(v);
		return out;
	}
	return v;
}

/* Normalises base and local values through Postgres's own casts, so they
 * compare with the remote row's text: one query per conflict. */
static PGresult *normalise(struct pgsb *b, const struct conflict_case *cc, char **vals,
                           int n)
{
	char *sql = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&sql, &len);

	fputs("SELECT ", m);
	for (int i = 0; i < n; i++) {
		const struct sl_column *c = &cc->t->pgcols[i % cc->t->npgcols];
		fprintf(m, "%s($%d::%s)::text", i ? ", " : "", i + 1, c->pg_type);
	}
	fclose(m);
	PGresult *r = PQexecParams(b->push.conn, sql, n, NULL, (const char *const *)vals, NULL,
	                           NULL, 0);
	free(sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		log_warn("merge: cannot normalise values: %s", PQerrorMessage(b->push.conn));
		PQclear(r);
		return NULL;
	}
	return r;
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* One column of a merge: kept from the side that changed it; changed on
 * both sides: from the newer side. */
static const char *merge_column(PGresult *norm, int i, size_t n, const struct conflict_case *cc,
                                int rcol, bool local_newer)
{
	const char *base = PQgetisnull(norm, 0, i) ? NULL : PQgetvalue(norm, 0, i);
	const char *local = PQgetisnull(norm, 0, i + (int)n) ? NULL : PQgetvalue(norm, 0, i + (int)n);
	const char *remote = rcol < 0 || PQgetisnull(cc->remote, 0, rcol) ? NULL
	                     : PQgetvalue(cc->remote, 0, rcol);
	bool lch = !same(local, base), rch = !same(remote, base);

	if (lch && (!rch || local_newer))
		return local;
	return remote;
}

static enum conflict_winner merge_rows(struct pgsb *b, struct conflict_case *cc)
{
	size_t n = cc->t->npgcols;
	char **vals = calloc(2 * n, sizeof *vals);
	int64_t lt, rt;

	if (cc->op != 'U' || !remote_exists(cc) || !vals) {
		free(vals);
		return last_write_wins(b, cc); /* insert or delete on one side: no columns to merge */
	}
	for (size_t i = 0; i < n; i++) {
		vals[i] = image_value(b, cc->base_json, &cc->t->pgcols[i]);
		vals[n + i] = image_value(b, cc->local_json, &cc->t->pgcols[i]);
	}
	PGresult *norm = normalise(b, cc, vals, (int)(2 * n));
	for (size_t i = 0; i < 2 * n; i++)
		free(vals[i]);
	free(vals);
	if (!norm)
		return last_write_wins(b, cc);
	side_times(b, cc, &lt, &rt);
	cJSON *o = cJSON_CreateObject();
	for (size_t i = 0; i < n; i++) {
		const char *v = merge_column(norm, (int)i, n, cc,
		                             column_of(cc->remote, cc->t->pgcols[i].name), lt > rt);
		cJSON_AddItemToObject(o, cc->t->pgcols[i].name, v ? cJSON_CreateString(v) : cJSON_CreateNull());
	}
	PQclear(norm);
	cc->merged_json = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return WIN_MERGED;
}

static bool ask_callback(struct pgsb *b, struct conflict_case *cc)
{
	if (!b->merge_fn)
		return false;
	char *remote = conflict_remote_json(cc->remote);
	cc->merged_json = b->merge_fn(cc->t->local, cc->base_json, cc->local_json, remote, b->merge_arg);
	free(remote);
	return cc->merged_json != NULL;
}

bool conflict_by_time(const struct pgsb *b, const struct br_table *t)
{
	return !b->merge_fn &&
	       (t->conflict == CFG_CONFLICT_LAST_WRITE_WINS || t->conflict == CFG_CONFLICT_MERGE);
}

enum conflict_winner conflict_decide(struct pgsb *b, struct conflict_case *cc)
{
	if (ask_callback(b, cc))
		return WIN_MERGED;
	switch (cc->t->conflict) {
	case CFG_CONFLICT_LOCAL_WINS:
		return WIN_LOCAL;
	case CFG_CONFLICT_REMOTE_WINS:
	case CFG_CONFLICT_KEEP_BOTH:
		return WIN_REMOTE;
	case CFG_CONFLICT_MERGE:
		return merge_rows(b, cc);
	default:
		return last_write_wins(b, cc);
	}
}

const char *conflict_resolution_name(enum conflict_winner w, enum cfg_conflict strategy)
{
	if (w == WIN_MERGED)
		return "merged";
	if (w == WIN_LOCAL)
		return "local";
	return strategy == CFG_CONFLICT_KEEP_BOTH ? "kept-both" : "remote";
}

void ev_emit_conflict(struct pgsb *b, const char *table, const char *pk, const char *strategy,
                      const char *resolution)
{
	char when[40];
	cJSON *o = cJSON_CreateObject();

	log_iso_time(when, sizeof when);
	cJSON_AddStringToObject(o, "event", "conflict");
	cJSON_AddStringToObject(o, "time", when);
	cJSON_AddStringToObject(o, "table", table);
	cJSON_AddRawToObject(o, "pk", pk && *pk ? pk : "null");
	cJSON_AddStringToObject(o, "strategy", strategy);
	cJSON_AddStringToObject(o, "resolution", resolution);
	metrics_conflict(&b->metrics, table, strategy, resolution);
	char *s = cJSON_PrintUnformatted(o);
	if (s && b->event_fn) {
		pthread_mutex_lock(&b->event_mu);
		b->event_fn("conflict", s, b->event_arg);
		pthread_mutex_unlock(&b->event_mu);
	}
	cJSON_free(s);
	cJSON_Delete(o);
}
