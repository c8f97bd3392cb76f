/* tail.c: notices local commits to the SQLite file without busy polling:
 * inotify on the file's directory (the database and its -wal file), each
 * wake-up confirmed with PRAGMA data_version, which moves only when
 * another connection commits.  The tick timer calls tail_changed() as a
 * bounded fallback.  While a push round runs, its own writes to the file
 * would wake us for every page: the first wake-up of a round stops the
 * watcher (the kernel coalesces the events meanwhile), and the end of the
 * round drains them, starts it again and checks once (the round itself
 * reads the log to its end). */
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "br.h"
#include "log.h"

bool tail_changed(struct pgsb *b)
{
	sqlite3_stmt **st = &b->push.st_data_version;
	int64_t v = b->push.last_data_version;

	if (!*st && sqlite3_prepare_v2(sl_handle(b->db), "PRAGMA data_version", -1, st, NULL) != SQLITE_OK)
		return false;
	if (sqlite3_step(*st) == SQLITE_ROW)
		v = sqlite3_column_int64(*st, 0);
	sqlite3_reset(*st);
	b->push.last_check_us = br_now_us();
	if (v == b->push.last_data_version)
		return false;
	b->push.last_data_version = v;
	return true;
}

/* A writer's WAL frames land (and wake us) before its commit is visible:
 * the commit only updates the -shm index, which inotify does not see.  So
 * a wake-up is re-checked every millisecond for a while. */
#define RECHECKS 50

static void on_recheck(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pgsb *b = w->data;

	(void)revents;
	if (tail_changed(b)) {
		ev_timer_stop(loop, w);
		run_local_commit_seen(b);
	} else if (--b->push.rechecks_left <= 0) {
		ev_timer_stop(loop, w);
	}
}

/* A wake-up: a commit seen now goes to the push; and whatever was seen,
 * the re-checks run, since the frames that woke us may belong to another
 * writer's commit that lands a moment later (data_version may have moved
 * for the push's own commit, and no event comes when that commit lands). */
static void woke(struct pgsb *b)
{
	if (tail_changed(b))
		run_local_commit_seen(b);
	b->push.rechecks_left = RECHECKS;
	ev_timer_again(b->loop, &b->push.recheck);
}

/* Is this inotify event about our database or its WAL? */
static bool ours(struct pgsb *b, const struct inotify_event *ev)
{
	const char *base = b->push.file_base;
	size_t n = strlen(base);

	return ev->len && strncmp(ev->name, base, n) == 0 &&
	       (ev->name[n] == '\0' || strcmp(ev->name + n, "-wal") == 0);
}

/* Reads every queued event; true when one is about our file. */
static bool drain(struct pgsb *b, int fd)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool relevant = false;
	ssize_t n;

	while ((n = read(fd, buf, sizeof buf)) > 0)
		for (char *p = buf; p < buf + n; p += sizeof(struct inotify_event) + ((struct inotify_event *)p)->len)
			relevant |= ours(b, (const struct inotify_event *)p);
	return relevant;
}

static void on_inotify(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pgsb *b = w->data;

	(void)revents;
	if (!drain(b, w->fd))
		return;
	if (push_worker_busy(b)) {
		b->push.seen_while_busy = true;
		ev_io_stop(loop, w);
		return;
	}
	woke(b);
}

void tail_after_push(struct pgsb *b)
{
	if (!b->push.seen_while_busy || push_worker_busy(b))
		return;
	b->push.seen_while_busy = false;
	if (b->push.inotify_fd >= 0 && !ev_is_active(&b->push.watch)) {
		drain(b, b->push.inotify_fd);
		ev_io_start(b->loop, &b->push.watch);
	}
	woke(b);
}

/* The SQLite file's name without its directory (malloc'd; "" when out of
 * memory, which matches nothing). */
static char *file_base(const char *path)
{
	char *copy = strdup(path);
	char *base = strdup(copy ? basename(copy) : "");

	free(copy);
	return base;
}

int tail_start(struct pgsb *b)
{
	char *copy = strdup(b->cfg->sqlite);
	const char *dir = copy ? dirname(copy) : ".";
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	tail_changed(b); /* the baseline */
	if (fd < 0 || inotify_add_watch(fd, dir, IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO) < 0) {
		log_warn("cannot watch \"%s\" for local commits (%m); checking every second instead", dir);
		if (fd >= 0)
			close(fd);
		free(copy);
		b->push.inotify_fd = -1;
		return 0;
	}
	free(copy);
	b->push.file_base = file_base(b->cfg->sqlite);
	if (!b->push.file_base) {
		close(fd);
		b->push.inotify_fd = -1;
		return 0;
	}
	b->push.inotify_fd = fd;
	ev_timer_init(&b->push.recheck, on_recheck, 0.001, 0.001);
	b->push.recheck.data = b;
	ev_io_init(&b->push.watch, on_inotify, fd, EV_READ);
	b->push.watch.data = b;
	ev_io_start(b->loop, &b->push.watch);
	return 0;
}

void tail_stop(struct pgsb *b)
{
	sqlite3_finalize(b->push.st_data_version);
	b->push.st_data_version = NULL;
	if (b->push.inotify_fd < 0)
		return;
	ev_io_stop(b->loop, &b->push.watch);
	ev_timer_stop(b->loop, &b->push.recheck);
	close(b->push.inotify_fd);
	b->push.inotify_fd = -1;
	free(b->push.file_base);
	b->push.file_base = NULL;
}
