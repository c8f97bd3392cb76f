/* test_sl_wal.c: the pull connection's write-ahead log (sl_wal.c): commits
 * not synced one by one, the log synced on demand, a failed sync that
 * stays failed, frames counted and checkpointed at a threshold.  This
 * file wraps fdatasync and fsync for the whole test binary: every call
 * passes through to the C library, counted, and a test can make the next
 * ones fail. */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "../../sqlite-side/sl.h"

static int syncs;     /* each test runs in a process of its own */
static bool fail_syncs;

static int pass_through(const char *name, int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, name);

	syncs++;
	if (fail_syncs) {
		errno = EIO;
		return -1;
	}
	return real ? real(fd) : -1;
}

int fdatasync(int fd)
{
	return pass_through("fdatasync", fd);
}

int fsync(int fd)
{
	return pass_through("fsync", fd);
}

static char dir[512], path[600];
static struct sl_db *db;
static sqlite3 *other;

static void setup(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(dir, sizeof dir, "%s/test-sl-wal-XXXXXX", base && *base ? base : P_tmpdir);
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/bridge.db", dir);
	/* another connection keeps the file open, so that closing ours does
	 * not checkpoint (and sync) the log */
	cr_assert_eq(sqlite3_open(path, &other), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(other, "PRAGMA journal_mode=WAL; CREATE TABLE t (x)", NULL, NULL, NULL),
	             SQLITE_OK);
	db = NULL;
	fail_syncs = false;
}

static void teardown(void)
{
	char p[640];

	sl_close(db);
	sqlite3_close(other);
	for (const char *s = ""; s; s = *s ? (strcmp(s, "-wal") ? NULL : "-shm") : "-wal") {
		snprintf(p, sizeof p, "%s%s", path, s);
		unlink(p);
	}
	rmdir(dir);
}

TestSuite(sl_wal, .init = setup, .fini = teardown);

static void open_deferred(int autocheckpoint)
{
	struct sl_err e = {0};

	cr_assert_eq(sl_open(path, &db, &e), 0, "%s", e.msg);
	cr_assert_eq(sl_wal_defer_sync(db, autocheckpoint, &e), 0, "%s", e.msg);
}

static void insert(int x)
{
	char sql[64];

	snprintf(sql, sizeof sql, "INSERT INTO t VALUES (%d)", x);
	cr_assert_eq(sqlite3_exec(sl_handle(db), sql, NULL, NULL, NULL), SQLITE_OK,
	             "%s", sqlite3_errmsg(sl_handle(db)));
}

Test(sl_wal, commits_are_not_synced_until_asked)
{
	struct sl_err e = {0};

	open_deferred(0);
	int before = syncs;
	for (int i = 0; i < 5; i++)
		insert(i);
	cr_assert_eq(syncs, before, "a deferred commit synced");
	cr_assert_eq(sl_wal_sync(db, &e), 0, "%s", e.msg);
	cr_assert_gt(syncs, before, "sl_wal_sync did not sync");
	int after = syncs;
	cr_assert_eq(sl_wal_sync(db, &e), 0, "%s", e.msg);
	cr_assert_eq(syncs, after, "nothing new to sync, yet it synced");
}

/* A process that committed and died before its sync: the next one's first
 * request syncs, though it has committed nothing itself. */
Test(sl_wal, a_new_connection_syncs_what_an_earlier_one_left_unsynced)
{
	struct sl_err e = {0};

	open_deferred(0);
	insert(1);
	sl_close(db);
	db = NULL;
	open_deferred(0);
	int before = syncs;
	cr_assert_eq(sl_wal_sync(db, &e), 0, "%s", e.msg);
	cr_assert_gt(syncs, before, "the log an earlier connection left was not synced");
}

Test(sl_wal, a_failed_sync_stays_failed)
{
	struct sl_err e = {0};

	open_deferred(0);
	insert(1);
	fail_syncs = true;
	cr_assert_eq(sl_wal_sync(db, &e), -1);
	fail_syncs = false;
	cr_assert_eq(sl_wal_sync(db, &e), -1, "a sync after a failed one succeeded");
	cr_assert_not_null(strstr(e.msg, "earlier sync"), "%s", e.msg);
}

Test(sl_wal, frames_are_counted_and_checkpointed_at_the_threshold)
{
	open_deferred(4);
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_prepare_v2(sl_handle(db), "PRAGMA synchronous", -1, &st, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_assert_eq(sqlite3_column_int(st, 0), 1, "not NORMAL");
	sqlite3_finalize(st);
	int most = 0;
	for (int i = 0; i < 30; i++) {
		insert(i);
		cr_assert_gt(sl_wal_frames(db), 0);
		if (i > 0) /* the log still holds sl_open's tables at the first */
			most = sl_wal_frames(db) > most ? sl_wal_frames(db) : most;
	}
	cr_assert_lt(most, 4 + 4, "the log grew to %d frames: no checkpoint at 4", most);
}
