/* ch_base.c: the chaos harness's small pieces: a seeded xorshift random
 * source (so SEED= replays the same schedule), monotonic time, progress
 * lines, environment knobs, a string set, and one-shot SQL helpers for
 * Postgres and SQLite. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "ch.h"

static uint64_t rng_state = 88172645463325252ULL;
static struct timespec t0;
static const char *prog = "chaos";

void ch_seed(uint64_t seed)
{
	rng_state = seed ? seed : 88172645463325252ULL;
	for (int i = 0; i < 8; i++)
		(void)ch_rand();
	if (!t0.tv_sec && !t0.tv_nsec) /* the first call starts the clock */
		clock_gettime(CLOCK_MONOTONIC, &t0);
}

uint64_t ch_rand(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

int ch_randint(int n)
{
	return n <= 1 ? 0 : (int)(ch_rand() % (uint64_t)n);
}

double ch_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)(ts.tv_sec - t0.tv_sec) + (double)(ts.tv_nsec - t0.tv_nsec) / 1e9;
}

void ch_sleep_ms(int ms)
{
	if (ms <= 0)
		return;
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

void ch_iso_now(char *buf, size_t cap)
{
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, cap - n, ".%06ldZ", (long)tv.tv_usec);
}

void ch_set_prog(const char *p)
{
	prog = p;
}

const char *ch_prog(void)
{
	return prog;
}

void ch_log(const char *fmt, ...)
{
	va_list ap;
	printf("%s: [%7.1fs] ", prog, ch_now());
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

long ch_env_long(const char *name, long fallback)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return fallback;
	char *end;
	long n = strtol(v, &end, 10);
	return *end ? fallback : n;
}

const char *ch_env_str(const char *name, const char *fallback)
{
	const char *v = getenv(name);
	return v && *v ? v : fallback;
}

char *ch_slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (f) {
		char chunk[8192];
		size_t k;
		while ((k = fread(chunk, 1, sizeof chunk, f)) > 0)
			fwrite(chunk, 1, k, m);
		fclose(f);
	}
	fclose(m);
	return buf;
}

char *ch_tail(const char *path, size_t bytes)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, bytes + 1);
	if (!f || !buf)
		goto out;
	if (fseek(f, 0, SEEK_END) == 0) {
		long size = ftell(f);
		if (size > (long)bytes)
			fseek(f, size - (long)bytes, SEEK_SET);
		else
			fseek(f, 0, SEEK_SET);
	}
	size_t k = fread(buf, 1, bytes, f);
	buf[k] = '\0';
out:
	if (f)
		fclose(f);
	return buf;
}

int ch_count(const char *haystack, const char *needle)
{
	int k = 0;
	for (const char *p = haystack; (p = strstr(p, needle)) != NULL; p++)
		k++;
	return k;
}

/* ---- string set: open addressing, FNV-1a ---- */
static size_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)h;
}

void ch_set_init(struct ch_set *s)
{
	memset(s, 0, sizeof *s);
}

void ch_set_free(struct ch_set *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->keys[i]);
	free(s->keys);
	free(s->vals);
	memset(s, 0, sizeof *s);
}

static size_t probe(const struct ch_set *s, const char *key)
{
	size_t i = hash(key) & (s->cap - 1);
	while (s->keys[i] && strcmp(s->keys[i], key) != 0)
		i = (i + 1) & (s->cap - 1);
	return i;
}

static void grow(struct ch_set *s)
{
	struct ch_set old = *s;
	s->cap = old.cap ? old.cap * 2 : 1024;
	s->keys = calloc(s->cap, sizeof *s->keys);
	s->vals = calloc(s->cap, sizeof *s->vals);
	if (!s->keys || !s->vals) {
		fprintf(stderr, "%s: out of memory\n", prog);
		exit(3);
	}
	for (size_t i = 0; i < old.cap; i++)
		if (old.keys[i]) {
			size_t j = probe(s, old.keys[i]);
			s->keys[j] = old.keys[i];
			s->vals[j] = old.vals[i];
		}
	free(old.keys);
	free(old.vals);
}

long *ch_set_slot(struct ch_set *s, const char *key)
{
	if (2 * (s->n + 1) > s->cap)
		grow(s);
	size_t i = probe(s, key);
	if (!s->keys[i]) {
		s->keys[i] = strdup(key);
		s->vals[i] = 0;
		s->n++;
	}
	return &s->vals[i];
}

long *ch_set_find(const struct ch_set *s, const char *key)
{
	if (!s->cap)
		return NULL;
	size_t i = probe(s, key);
	return s->keys[i] ? &s->vals[i] : NULL;
}

/* ---- SQL ---- */
static void quiet_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

PGconn *ch_pg_connect(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);
	if (!c || PQstatus(c) != CONNECTION_OK) {
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, quiet_notice, NULL);
	return c;
}

PGconn *ch_pg_wait(const char *conninfo, int timeout_ms)
{
	for (int waited = 0;; waited += 200) {
		PGconn *c = ch_pg_connect(conninfo);
		if (c || waited >= timeout_ms)
			return c;
		ch_sleep_ms(200);
	}
}

int ch_pg_exec(PGconn *c, const char *sql, char *err, size_t cap)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
	if (rc && err)
		snprintf(err, cap, "%s", PQerrorMessage(c));
	PQclear(r);
	return rc;
}

long ch_pg_long(PGconn *c, const char *sql, long fallback)
{
	PGresult *r = PQexec(c, sql);
	long v = fallback;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

sqlite3 *ch_sqlite_open(const char *path, int busy_ms)
{
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, busy_ms);
	return db;
}

long ch_sqlite_long(const char *path, const char *sql, long fallback)
{
	sqlite3 *db = ch_sqlite_open(path, 5000);
	sqlite3_stmt *st;
	long v = fallback;
	if (!db)
		return fallback;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			v = (long)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return v;
}
