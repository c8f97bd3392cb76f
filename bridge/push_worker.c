/* push_worker.c: the push runs on a thread of its own, with its own
 * Postgres connection and its own SQLite connection, so a slow or locked
 * Postgres delays only the push and the pull's SQLite transaction can never
 * be committed, rolled back or extended by it.
 *
 * The two paths meet at one point, the commit window: the push's Postgres
 * COMMIT and its local mark happen while the pull stands between two
 * transactions with its batch committed and its stream paused, exactly as
 * if the push were one more transaction in the stream.  The main thread
 * grants the window (push_worker_poll); the worker asks for it and gives it
 * back (push_window_enter, push_window_leave). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "br.h"
#include "log.h"

#define PUSH_ROUND_BATCHES 50
#define STOP_GRACE_MS 3000 /* then cancel the push's statement */

struct push_worker {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	ev_async wake;           /* worker -> main: a result, or the window wanted/given back */
	bool quit;               /* main: end the thread */
	bool requested;          /* main: run a push round */
	bool busy;               /* worker: in a round */
	bool window_wanted;      /* worker: waiting for the commit window */
	bool window_granted;     /* main: the pull is paused and committed */
	bool result_ready;       /* worker: a round ended */
	int result;              /* its push_pending result */
	char err[1024];          /* its error text */
};

static void lock(struct push_worker *w)
{
	pthread_mutex_lock(&w->mu);
}

static void unlock(struct push_worker *w)
{
	pthread_mutex_unlock(&w->mu);
}

/* ---- the worker's side ---- */

int push_window_enter(struct pgsb *b)
{
	struct push_worker *w = b->push.worker;

	if (!w)
		return 0; /* `sync`: the push runs after the pull, on the main thread */
	lock(w);
	w->window_wanted = true;
	ev_async_send(b->loop, &w->wake);
	while (!w->window_granted && !w->quit)
		pthread_cond_wait(&w->cv, &w->mu);
	int rc = w->window_granted ? 0 : -1;
	if (rc)
		w->window_wanted = false;
	unlock(w);
	return rc;
}

void push_window_leave(struct pgsb *b)
{
	struct push_worker *w = b->push.worker;

	if (!w)
		return;
	lock(w);
	w->window_wanted = w->window_granted = false;
	unlock(w);
	ev_async_send(b->loop, &w->wake);
}

/* The push's commits leave the WAL to grow to ROUND_WAL_PAGES before they
 * copy it back into the file themselves: the copying waits for the end of
 * a round, after Postgres has the changes (a checkpoint per batch used to
 * be most of a batch's local mark), and for the log to hold ROUND_CKPT_MIN
 * pages (one per round of one row cost more than the rest of the round).
 * The other connections keep SQLite's default and may copy it sooner. */
#define ROUND_WAL_PAGES 16384
#define ROUND_CKPT_MIN 1000

static void checkpoint(struct pgsb *b)
{
	if (sl_wal_frames(b->push.db) < ROUND_CKPT_MIN)
		return;
	int rc = sqlite3_wal_checkpoint_v2(sl_handle(b->push.db), NULL, SQLITE_CHECKPOINT_PASSIVE,
	                                   NULL, NULL);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		log_debug("push: checkpoint: %s", sqlite3_errmsg(sl_handle(b->push.db)));
}

static void *worker_main(void *arg)
{
	struct pgsb *b = arg;
	struct push_worker *w = b->push.worker;
	char err[sizeof w->err];

	lock(w);
	for (;;) {
		while (!w->requested && !w->quit)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->quit)
			break;
		w->requested = false;
		w->busy = true;
		unlock(w);
		err[0] = '\0';
		int rc = push_pending(b, PUSH_ROUND_BATCHES, err, sizeof err);
		checkpoint(b);
		lock(w);
		w->busy = false;
		w->result = rc;
		snprintf(w->err, sizeof w->err, "%s", err);
		w->result_ready = true;
		ev_async_send(b->loop, &w->wake);
	}
	unlock(w);
	push_close(b);
	return NULL;
}

void push_cancel(struct pgsb *b)
{
	char msg[256];

	pthread_mutex_lock(&b->push.cancel_mu);
	if (b->push.cancel && !PQcancel(b->push.cancel, msg, sizeof msg))
		log_warn("cannot cancel the push's statement: %s", msg);
	pthread_mutex_unlock(&b->push.cancel_mu);
}

/* ---- the main thread's side ---- */

/* The worker wants the window and the pull can give it: commit the pull's
 * batch, pause the stream, hand the window over. */
static void grant_window(struct pgsb *b, struct push_worker *w)
{
	char err[512];

	if (b->repl.in_xact)
		return; /* a transaction is half applied: at its commit */
	if (pull_commit_batch(b, err, sizeof err))
		run_connection_lost(b, err, true);
	repl_pause(b, true);
	w->window_granted = true;
	pthread_cond_broadcast(&w->cv);
}

static void take_result(struct pgsb *b, int rc, const char *err)
{
	struct push *p = &b->push;
	int64_t now = br_now_us();

	if (rc < 0) {
		log_warn("push failed: %s", err);
		ev_emit_error(b, err, true);
		p->backoff_ms = p->backoff_ms ? (p->backoff_ms * 2 > 15000 ? 15000 : p->backoff_ms * 2) : 250;
		p->next_attempt_us = now + (int64_t)p->backoff_ms * 1000;
		p->wanted = true;
		return;
	}
	p->backoff_ms = 0;
	if (rc > 0)
		p->wanted = true; /* more than one round's worth */
}

void push_worker_poll(struct pgsb *b)
{
	struct push_worker *w = b->push.worker;
	bool resume = false, have = false;
	int rc = 0;
	char err[sizeof w->err];

	if (!w)
		return;
	lock(w);
	if (w->window_wanted && !w->window_granted)
		grant_window(b, w);
	if (!w->window_wanted && !w->window_granted && b->repl.paused)
		resume = true;
	if (w->result_ready) {
		w->result_ready = false;
		have = true;
		rc = w->result;
		snprintf(err, sizeof err, "%s", w->err);
	}
	unlock(w);
	if (resume)
		repl_pause(b, false);
	if (have) {
		take_result(b, rc, err);
		tail_after_push(b);
	}
}

static void on_wake(struct ev_loop *loop, ev_async *a, int revents)
{
	(void)loop;
	(void)revents;
	push_worker_poll(a->data);
}

bool push_worker_busy(struct pgsb *b)
{
	struct push_worker *w = b->push.worker;

	if (!w)
		return false;
	lock(w);
	bool busy = w->busy || w->requested;
	unlock(w);
	return busy;
}

bool push_worker_request(struct pgsb *b)
{
	struct push_worker *w = b->push.worker;

	if (!w || br_now_us() < b->push.next_attempt_us)
		return false;
	b->push.wanted = false;
	lock(w);
	w->requested = true;
	pthread_cond_broadcast(&w->cv);
	unlock(w);
	return true;
}

/* The push's SQLite connection waits for a busy file as long as the
 * others (about 5 s), in short sleeps, and at most about 1 s once the
 * bridge stops: a push blocked on the file never holds up SIGTERM. */
static int busy_wait(void *arg, int count)
{
	struct pgsb *b = arg;
	struct timespec ts = {0, 10 * 1000000L};

	if (count >= (b->push.stopping ? 100 : 500))
		return 0;
	nanosleep(&ts, NULL);
	return 1;
}

int push_worker_start(struct pgsb *b, char *err, size_t cap)
{
	struct push_worker *w = calloc(1, sizeof *w);

	if (!w) {
		snprintf(err, cap, "out of memory");
		return -1;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	ev_async_init(&w->wake, on_wake);
	w->wake.data = b;
	ev_async_start(b->loop, &w->wake);
	b->push.worker = w;
	b->push.stopping = false;
	sqlite3_busy_handler(sl_handle(b->push.db), busy_wait, b);
	sl_wal_watch(b->push.db, ROUND_WAL_PAGES);
	if (pthread_create(&w->thread, NULL, worker_main, b)) {
		ev_async_stop(b->loop, &w->wake);
		b->push.worker = NULL;
		free(w);
		snprintf(err, cap, "cannot start the push thread");
		return -1;
	}
	return 0;
}

/* Asks the round in hand to end; after STOP_GRACE_MS, cancels its
 * statement (the batch rolls back and stays in the change log). */
void push_worker_stop(struct pgsb *b)
{
	struct push_worker *w = b->push.worker;
	int64_t deadline = br_now_us() + STOP_GRACE_MS * 1000LL;
	bool cancelled = false;

	if (!w)
		return;
	b->push.stopping = true;
	for (;;) {
		lock(w);
		bool busy = w->busy;
		if (!busy || cancelled) {
			w->quit = true;
			pthread_cond_broadcast(&w->cv);
		} else if (w->window_wanted && !w->window_granted) {
			grant_window(b, w); /* let a push that is ready commit and mark */
		}
		unlock(w);
		if (!busy || cancelled)
			break;
		if (br_now_us() >= deadline) {
			push_cancel(b);
			cancelled = true;
			continue;
		}
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
	pthread_join(w->thread, NULL);
	ev_async_stop(b->loop, &w->wake);
	if (b->repl.paused)
		repl_pause(b, false);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
	b->push.worker = NULL;
}
