/* tail.c: notices local commits to the SQLite file without busy polling:
 * inotify on the file's directory (the database and its -wal file), each
 * wake-up confirmed with PRAGMA data_version, which moves only when
 * another connection commits.  The tick timer calls tail_changed() as a
 * bounded fallback. */
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "br.h"
#include "log.h"

bool tail_changed(struct pgsb *b)
{
	sqlite3_stmt *st;
	int64_t v = b->push.last_data_version;

	if (sqlite3_prepare_v2(sl_handle(b->db), "PRAGMA data_version", -1, &st, NULL) != SQLITE_OK)
		return false;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
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

/* Is this inotify event about our database or its WAL? */
static bool ours(struct pgsb *b, const struct inotify_event *ev)
{
	char *copy = strdup(b->cfg->sqlite);
	const char *base = copy ? basename(copy) : "";
	size_t n = strlen(base);
	bool match = ev->len && strncmp(ev->name, base, n) == 0 &&
	             (ev->name[n] == '\0' || strcmp(ev->name + n, "-wal") == 0);

	free(copy);
	return match;
}

static void on_inotify(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pgsb *b = w->data;
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool relevant = false;
	ssize_t n;

	(void)loop;
	(void)revents;
	while ((n = read(w->fd, buf, sizeof buf)) > 0)
		for (char *p = buf; p < buf + n; p += sizeof(struct inotify_event) + ((struct inotify_event *)p)->len)
			relevant |= ours(b, (const struct inotify_event *)p);
	if (!relevant)
		return;
	if (tail_changed(b)) {
		run_local_commit_seen(b);
		return;
	}
	b->push.rechecks_left = RECHECKS;
	ev_timer_again(b->loop, &b->push.recheck);
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
	if (b->push.inotify_fd < 0)
		return;
	ev_io_stop(b->loop, &b->push.watch);
	ev_timer_stop(b->loop, &b->push.recheck);
	close(b->push.inotify_fd);
	b->push.inotify_fd = -1;
}
