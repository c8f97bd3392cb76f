/* table_snapq.c: streamed changes to a table under online snapshot that
 * the copy did not see are held here, behind the copy, and replayed in
 * their order once it is done.  Each is written back as the wal2json line
 * it came as (format-version 2), so the decoder reads it again exactly,
 * with its transaction's commit position and time.  Rows live in
 * _pgsqlite_snapq, written in the pull's open transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br.h"
#include "table_snap.h"

int snapq_ensure(struct pgsb *b, char *err, size_t cap)
{
	char *msg = NULL;

	if (sqlite3_exec(sl_handle(b->db),
	                 "CREATE TABLE IF NOT EXISTS _pgsqlite_snapq (seq INTEGER PRIMARY KEY, "
	                 "tbl TEXT NOT NULL, end_lsn INTEGER NOT NULL, xact_time TEXT, rec TEXT NOT NULL)",
	                 NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, cap, "cannot create _pgsqlite_snapq: %s", msg ? msg : "?");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* A JSON string (the bytes may hold NUL or control characters). */
static void put_string(FILE *m, const char *p, size_t len)
{
	fputc('"', m);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '"' || c == '\\')
			fprintf(m, "\\%c", c);
		else if (c < 0x20)
			fprintf(m, "\\u%04x", c);
		else
			fputc(c, m);
	}
	fputc('"', m);
}

static void put_fields(FILE *m, const char *key, const struct dec_field *f, size_t n,
                       bool with_value)
{
	fprintf(m, ",\"%s\":[", key);
	for (size_t i = 0; i < n; i++) {
		fputs(i ? ",{\"name\":" : "{\"name\":", m);
		put_string(m, f[i].name.p, f[i].name.len);
		fputs(",\"type\":", m);
		put_string(m, f[i].type.p ? f[i].type.p : "", f[i].type.len);
		if (f[i].typeoid)
			fprintf(m, ",\"typeoid\":%u", f[i].typeoid);
		if (with_value) {
			fputs(",\"value\":", m);
			if (f[i].kind == DEC_STRING)
				put_string(m, f[i].value.p ? f[i].value.p : "", f[i].value.len);
			else if (f[i].kind == DEC_NUMBER)
				fwrite(f[i].value.p, 1, f[i].value.len, m);
			else
				fputs(f[i].kind == DEC_TRUE ? "true" : f[i].kind == DEC_FALSE ? "false" : "null", m);
		}
		fputc('}', m);
	}
	fputc(']', m);
}

/* The record as a wal2json format-version 2 line (malloc'd). */
static char *record_line(const struct dec_record *rec)
{
	char *line = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&line, &len);

	if (!m)
		return NULL;
	fprintf(m, "{\"action\":\"%c\",\"schema\":", (char)rec->action);
	put_string(m, rec->schema.p, rec->schema.len);
	fputs(",\"table\":", m);
	put_string(m, rec->table.p, rec->table.len);
	if (rec->action == DEC_INSERT || rec->action == DEC_UPDATE)
		put_fields(m, "columns", rec->columns, rec->ncolumns, true);
	if (rec->action == DEC_DELETE || (rec->action == DEC_UPDATE && rec->nidentity))
		put_fields(m, "identity", rec->identity, rec->nidentity, true);
	if (rec->action != DEC_TRUNCATE)
		put_fields(m, "pk", rec->pk, rec->npk, false);
	fputc('}', m);
	if (fclose(m)) {
		free(line);
		return NULL;
	}
	return line;
}

static sqlite3_stmt *prepare(struct pgsb *b, const char *sql, char *err, size_t cap)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(sl_handle(b->db), sql, -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, cap, "_pgsqlite_snapq: %s", sqlite3_errmsg(sl_handle(b->db)));
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

int snapq_append(struct pgsb *b, sqlite3_stmt **st, const struct br_table *t,
                 const struct dec_record *rec, char *err, size_t cap)
{
	char *line = record_line(rec);
	int rc = -1;

	if (!line) {
		snprintf(err, cap, "out of memory");
		return -1;
	}
	if (!*st)
		*st = prepare(b, "INSERT INTO _pgsqlite_snapq (tbl, end_lsn, xact_time, rec) "
		                 "VALUES (?1, ?2, ?3, ?4)", err, cap);
	if (*st) {
		sqlite3_bind_text(*st, 1, t->local, -1, SQLITE_STATIC);
		sqlite3_bind_int64(*st, 2, (sqlite3_int64)b->xact_end_lsn);
		sqlite3_bind_text(*st, 3, b->xact_time, -1, SQLITE_STATIC);
		sqlite3_bind_text(*st, 4, line, -1, SQLITE_STATIC);
		rc = sqlite3_step(*st) == SQLITE_DONE ? 0 : -1;
		if (rc)
			snprintf(err, cap, "cannot queue a change to \"%s\": %s", t->local,
			         sqlite3_errmsg(sl_handle(b->db)));
		sqlite3_reset(*st);
		sqlite3_clear_bindings(*st);
	}
	free(line);
	return rc;
}

/* One queued change, applied as if it streamed now with its own
 * transaction's position and time. */
static int replay_one(struct pgsb *b, const struct br_table *t, struct dec_parser *p,
                      sqlite3_stmt *st, char *err, size_t cap)
{
	const char *line = (const char *)sqlite3_column_text(st, 2);
	struct dec_record rec;
	struct dec_error derr;

	if (!line || dec_parse(p, line, (size_t)sqlite3_column_bytes(st, 2), &rec, &derr)) {
		snprintf(err, cap, "a queued change to \"%s\" is malformed: %s", t->local,
		         line ? derr.msg : "empty");
		return -1;
	}
	uint64_t end = b->xact_end_lsn;
	char time[sizeof b->xact_time];
	memcpy(time, b->xact_time, sizeof time);
	b->xact_end_lsn = (uint64_t)sqlite3_column_int64(st, 0);
	snprintf(b->xact_time, sizeof b->xact_time, "%s", (const char *)sqlite3_column_text(st, 1) ?
	         (const char *)sqlite3_column_text(st, 1) : "");
	int rc = pull_apply_change(b, t, &rec, err, cap);
	b->xact_end_lsn = end;
	memcpy(b->xact_time, time, sizeof time);
	return rc;
}

int snapq_replay(struct pgsb *b, const struct br_table *t, struct dec_parser *p, int max,
                 char *err, size_t cap)
{
	sqlite3_stmt *st = prepare(b, "SELECT end_lsn, xact_time, rec, seq FROM _pgsqlite_snapq "
	                              "WHERE tbl = ?1 ORDER BY seq LIMIT ?2", err, cap);
	int64_t last = -1;
	int n = 0, rc = 0;

	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, t->local, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, max);
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		rc = replay_one(b, t, p, st, err, cap);
		last = sqlite3_column_int64(st, 3);
		n++;
	}
	sqlite3_finalize(st);
	if (rc)
		return -1;
	if (n == 0)
		return 0;
	st = prepare(b, "DELETE FROM _pgsqlite_snapq WHERE tbl = ?1 AND seq <= ?2", err, cap);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, t->local, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, last);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	if (rc)
		snprintf(err, cap, "_pgsqlite_snapq: %s", sqlite3_errmsg(sl_handle(b->db)));
	sqlite3_finalize(st);
	return rc ? -1 : n;
}

int snapq_clear(struct pgsb *b, const struct br_table *t, char *err, size_t cap)
{
	sqlite3_stmt *st = prepare(b, "DELETE FROM _pgsqlite_snapq WHERE tbl = ?1", err, cap);
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, t->local, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	if (rc)
		snprintf(err, cap, "_pgsqlite_snapq: %s", sqlite3_errmsg(sl_handle(b->db)));
	sqlite3_finalize(st);
	return rc;
}
