/* sl_wal.c: the write-ahead log under the bridge's control.  A connection
 * can defer the sync of its commits (synchronous=NORMAL: a commit is
 * visible at once, and survives a crash of the process but not yet of the
 * machine) and sync the log later, in one call, before it tells anyone the
 * commits are durable; and it learns how large the log has grown at each
 * commit, for checkpoints at its own pace.  SQLite's automatic checkpoint
 * is kept, at the connection's own threshold. */
#include "sl_int.h"

/* After each commit of the connection: frames is the log's size. */
static int on_commit(void *arg, sqlite3 *h, const char *name, int frames)
{
	struct sl_db *db = arg;

	db->wal_frames = frames;
	db->wal_unsynced = true;
	if (db->wal_autockpt > 0 && frames >= db->wal_autockpt)
		sqlite3_wal_checkpoint_v2(h, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	return SQLITE_OK;
}

void sl_wal_watch(struct sl_db *db, int autocheckpoint)
{
	db->wal_autockpt = autocheckpoint;
	sqlite3_wal_hook(db->h, on_commit, db);
}

int sl_wal_defer_sync(struct sl_db *db, int autocheckpoint, struct sl_err *err)
{
	if (sl_exec(db, "PRAGMA synchronous=NORMAL", "cannot set synchronous", NULL, err))
		return -1;
	sl_wal_watch(db, autocheckpoint);
	/* What a process before us committed the same way (and died before
	 * its sync) is in the log too: the first sl_wal_sync syncs. */
	db->wal_unsynced = true;
	return 0;
}

int sl_wal_sync(struct sl_db *db, struct sl_err *err)
{
	sqlite3_file *f = NULL;

	/* A failed sync stays failed: the kernel may drop the pages it could
	 * not write and answer the next sync with success. */
	if (db->wal_sync_failed)
		return sl_fail(err, SQLITE_IOERR, "an earlier sync of the write-ahead log failed");
	if (!db->wal_unsynced)
		return 0;
	if (sqlite3_file_control(db->h, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f) != SQLITE_OK)
		return sl_fail_db(db, err, "cannot find the write-ahead log of", "main");
	if (f && f->pMethods && f->pMethods->xSync(f, SQLITE_SYNC_NORMAL) != SQLITE_OK) {
		db->wal_sync_failed = true;
		return sl_fail(err, SQLITE_IOERR, "cannot sync the write-ahead log to disk");
	}
	db->wal_unsynced = false;
	return 0;
}

int sl_wal_frames(const struct sl_db *db)
{
	return db->wal_frames;
}
