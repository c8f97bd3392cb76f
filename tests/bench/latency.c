/* latency.c: measures the realtime round trip between two clients: a row
 * committed in client A's SQLite file until it is visible in client B's
 * (A's bridge pushes it, B's bridge pulls it).  Prints p50, p99 and max
 * in milliseconds over N samples.
 *   bench-latency A.db B.db N */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <sqlite3.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int visible(sqlite3_stmt *probe, int id)
{
	sqlite3_bind_int(probe, 1, id);
	int found = sqlite3_step(probe) == SQLITE_ROW;
	sqlite3_reset(probe);
	return found;
}

/* One sample: write row id in A, wait until B has it. -1 on timeout. */
static double sample(sqlite3 *a, sqlite3_stmt *insert, sqlite3_stmt *probe, int id)
{
	struct timespec pause = {0, 100000}; /* 0.1 ms between probes */
	double t0 = now_ms();

	sqlite3_bind_int(insert, 1, id);
	if (sqlite3_step(insert) != SQLITE_DONE) {
		fprintf(stderr, "insert failed: %s\n", sqlite3_errmsg(a));
		return -1;
	}
	sqlite3_reset(insert);
	while (!visible(probe, id)) {
		if (now_ms() - t0 > 10000)
			return -1;
		nanosleep(&pause, NULL);
	}
	return now_ms() - t0;
}

int main(int argc, char **argv)
{
	sqlite3 *a, *b;
	sqlite3_stmt *insert, *probe;
	int n = argc > 3 ? atoi(argv[3]) : 1000;
	double *ms = calloc((size_t)n, sizeof *ms);

	if (argc < 3 || !ms || sqlite3_open(argv[1], &a) || sqlite3_open(argv[2], &b)) {
		fprintf(stderr, "usage: bench-latency A.db B.db [N]\n");
		return 2;
	}
	sqlite3_busy_timeout(a, 5000);
	sqlite3_busy_timeout(b, 5000);
	sqlite3_prepare_v2(a, "INSERT INTO lat (id, note) VALUES (?1, 'ping')", -1, &insert, NULL);
	sqlite3_prepare_v2(b, "SELECT 1 FROM lat WHERE id = ?1", -1, &probe, NULL);
	for (int i = 0; i < n; i++) {
		struct timespec gap = {0, 2000000}; /* 2 ms between samples */
		if ((ms[i] = sample(a, insert, probe, i + 1)) < 0) {
			fprintf(stderr, "sample %d never arrived\n", i + 1);
			return 1;
		}
		nanosleep(&gap, NULL);
	}
	qsort(ms, (size_t)n, sizeof *ms, cmp);
	printf("%d %.2f %.2f %.2f\n", n, ms[n / 2], ms[(int)(n * 0.99)], ms[n - 1]);
	return 0;
}
