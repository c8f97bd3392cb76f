/* run.c: the bridge's event loop: signals, the tick timer that decides
 * reconnects (capped exponential backoff), periodic feedback and
 * heartbeats, and the graceful stop (finish the transaction in hand,
 * commit, send final feedback). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br.h"
#include "log.h"

#define TICK_SECONDS 0.1
#define FEEDBACK_US 2000000LL     /* standby status update at least this often: well
                                      inside any wal_sender_timeout (default 60 s; 10 s in
                                      the tests), even while a large transaction drains */
#define REPLY_REQ_US 200000LL     /* with a target: ask for a keepalive this often */
#define HEARTBEAT_US 60000000LL   /* idle this long: emit a heartbeat message */
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 15000

void run_connection_lost(struct pgsb *b, const char *why, bool retrying)
{
	struct repl *r = &b->repl;

	pull_abort_batch(b);
	repl_close(b);
	log_warn("replication connection lost: %s", why);
	metrics_down(&b->metrics, why);
	snprintf(r->last_error, sizeof r->last_error, "%s", why);
	log_iso_time(r->last_error_at, sizeof r->last_error_at);
	ev_emit_error(b, why, retrying);
	if (!r->offline_reported) {
		ev_emit_simple(b, "offline");
		r->offline_reported = true;
	}
	r->next_attempt_us = br_now_us() + (int64_t)r->backoff_ms * 1000;
	r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
	if (!retrying || b->one_shot) {
		b->exit_code = 1;
		ev_break(b->loop, EVBREAK_ALL);
	}
	if (b->cfg->mode == CFG_MODE_ON_RECONNECT && !b->one_shot)
		b->next_session_us = r->next_attempt_us; /* sync again once it is back */
}

static void went_online(struct pgsb *b)
{
	struct repl *r = &b->repl;
	char lsn[32];

	dec_format_lsn(r->ack_lsn, lsn, sizeof lsn);
	log_info("streaming from slot \"%s\" at %s", b->cfg->slot, lsn);
	r->backoff_ms = BACKOFF_MIN_MS;
	r->offline_reported = false;
	metrics_up(&b->metrics, r->ever_connected, r->server_lsn);
	r->ever_connected = true;
	ev_emit_simple(b, "online");
}

/* The slot is gone or lost: copy everything again from a new slot. */
static int resync(struct pgsb *b, const char *why)
{
	char msg[700], err[512];

	snprintf(msg, sizeof msg, "%s; resynchronising from a new slot", why);
	log_error("%s", msg);
	ev_emit_error(b, msg, true);
	atomic_fetch_add(&b->metrics.resyncs, 1);
	/* The copy resolves the tables again: the push thread, which reads
	 * them, stops for it and starts again after. */
	tsnap_abort(b); /* first: it gives the push thread back if it had it stopped */
	bool worker = b->push.worker != NULL;
	push_worker_stop(b);
	int rc = snap_init(b, true, err, sizeof err);
	if (rc == 0 && b->tsnap && (rc = tsnap_reschedule(b, err, sizeof err)) != 0)
		log_error("%s", err);
	if (rc) {
		log_error("resynchronisation failed: %s", err);
		ev_emit_error(b, err, true);
	}
	if (worker && push_worker_start(b, err, sizeof err)) {
		log_error("%s", err);
		return -1;
	}
	return rc;
}

static void try_connect(struct pgsb *b)
{
	struct repl *r = &b->repl;
	char err[512];

	if (b->tables_deferred)
		reload_resume(b); /* a reload made while Postgres was out of reach */
	int rc = repl_start(b, err, sizeof err);

	if ((rc == -2 || rc == -3) && resync(b, err) == 0)
		rc = repl_start(b, err, sizeof err);
	if (rc == 0) {
		/* on-reconnect: the connection coming back is itself a reason to
		 * sync, so a session cut off runs on to the server's position now */
		bool back = r->offline_reported && b->cfg->mode == CFG_MODE_ON_RECONNECT;
		if (b->session_active && (r->target_lsn == 0 || back))
			r->target_lsn = r->server_lsn ? r->server_lsn : 1;
		if (r->target_lsn && r->ack_lsn >= r->target_lsn && !(b->one_shot && tsnap_busy(b)))
			r->target_reached = true;
		went_online(b);
		return;
	}
	run_connection_lost(b, err, true);
}

/* Hands a push round to the push thread (it retries after a backoff when
 * a round fails; see push_worker.c). */
static bool try_push(struct pgsb *b)
{
	return push_worker_request(b);
}

void run_local_commit_seen(struct pgsb *b)
{
	b->push.wanted = true;
	if (b->cfg->mode == CFG_MODE_AUTO)
		b->push.due_us = br_now_us() + b->cfg->debounce_ms * 1000;
	else if (b->cfg->mode == CFG_MODE_REALTIME && !b->one_shot)
		try_push(b);
}

/* Fallback to inotify, and pushes that are due. */
static void tick_push(struct pgsb *b, int64_t now)
{
	if (now - b->push.last_check_us >= 1000000LL && tail_changed(b))
		run_local_commit_seen(b);
	bool streaming = b->cfg->mode == CFG_MODE_REALTIME || b->cfg->mode == CFG_MODE_AUTO;
	if (streaming && !b->one_shot && b->sync_requested) {
		/* SIGUSR1 while streaming: the pull is live, push without waiting */
		b->sync_requested = 0;
		b->push.wanted = true;
		b->push.due_us = now;
	}
	if (streaming && !b->one_shot && b->push.wanted && now >= b->push.due_us)
		try_push(b);
}

/* Streaming modes keep a connection; the others open one per session
 * (a sync up to the server's position when it starts). */
static bool streaming_mode(const struct pgsb *b)
{
	return !b->one_shot &&
	       (b->cfg->mode == CFG_MODE_REALTIME || b->cfg->mode == CFG_MODE_AUTO);
}

/* A finished session (its push ran before the slot was let go, see
 * session_push_outstanding, unless the stream was lost first): wait for
 * the next trigger. */
static void session_done(struct pgsb *b)
{
	struct repl *r = &b->repl;

	if (!b->session_pushed && push_has_pending(b))
		try_push(b);
	b->session_active = false;
	r->target_lsn = 0;
	r->target_reached = false;
	if (b->cfg->mode == CFG_MODE_PERIODIC)
		b->next_session_us = br_now_us() + b->cfg->interval_ms * 1000;
	else
		b->next_session_us = INT64_MAX; /* on-reconnect: until the server comes back */
}

/* on-reconnect: between sessions, ping the server every few seconds; when
 * it comes back after being unreachable, a session is due. */
static void probe_reachability(struct pgsb *b, int64_t now)
{
	if (b->cfg->mode != CFG_MODE_ON_RECONNECT || now - b->last_probe_us < 3000000LL)
		return;
	b->last_probe_us = now;
	bool up = PQping(b->cfg->postgres) == PQPING_OK;
	if (!up)
		metrics_down(&b->metrics, "Postgres does not answer (on-reconnect waits for it)");
	if (!up && !b->repl.offline_reported) {
		ev_emit_simple(b, "offline");
		b->repl.offline_reported = true;
	} else if (up && b->repl.offline_reported) {
		b->next_session_us = 0;
	}
}

/* Should a session start now (modes manual, periodic, on-reconnect)? */
static bool session_due(struct pgsb *b, int64_t now)
{
	if (b->sync_requested) {
		b->sync_requested = 0;
		return true;
	}
	switch (b->cfg->mode) {
	case CFG_MODE_PERIODIC:
	case CFG_MODE_ON_RECONNECT:
		return now >= b->next_session_us;
	default:
		return false;
	}
}

static void tick_idle(struct pgsb *b, int64_t now)
{
	struct repl *r = &b->repl;

	if (b->stopping || (b->one_shot && r->target_reached)) {
		ev_break(b->loop, EVBREAK_ALL);
		return;
	}
	if (b->session_active && r->target_reached && !b->one_shot)
		session_done(b);
	if (!streaming_mode(b) && !b->session_active) {
		probe_reachability(b, now);
		if (!session_due(b, now))
			return;
		b->session_active = true;
		b->session_pushed = false;
		r->next_attempt_us = 0;
	}
	if (now >= r->next_attempt_us && !r->paused && !limits_hold_pull(b))
		try_connect(b);
}

/* An idle database whose WAL moves for others: a logical message in our
 * database lets the slot advance past WAL we do not need. */
static void heartbeat(struct pgsb *b)
{
	char err[512];
	PGconn *c = pgc_connect(b, false, err, sizeof err);

	b->last_heartbeat_us = br_now_us();
	if (!c)
		return;
	if (pgc_exec_ok(c, "SELECT pg_logical_emit_message(false, 'pgsqlite-bridge', 'heartbeat')",
	                err, sizeof err))
		log_warn("heartbeat failed: %s", err);
	PQfinish(c);
}

/* A session at its target pushes what is pending and keeps the slot until
 * that push has read the change log: once the slot is let go the session is
 * over, and a local write after that waits for the next session. */
static bool session_push_outstanding(struct pgsb *b)
{
	if (b->one_shot || !b->session_active || b->stopping)
		return false;
	if (!b->session_pushed) {
		if (push_has_pending(b) && !try_push(b))
			return true; /* in a failed push's backoff: the retry is this session's */
		b->session_pushed = true;
	}
	return push_worker_busy(b);
}

bool run_session_at_end(struct pgsb *b)
{
	return b->repl.target_reached && !session_push_outstanding(b);
}

static void tick_streaming(struct pgsb *b, int64_t now)
{
	struct repl *r = &b->repl;

	if (r->send_failed) {
		char why[600];
		/* A failed sync is not retried: the kernel may have dropped the
		 * pages it could not write, and a second sync would say yes. */
		bool sync = r->sync_error[0] != '\0';
		if (sync)
			snprintf(why, sizeof why, "cannot sync the SQLite file's log to disk (%s): stopping "
			         "without acknowledging what it holds", r->sync_error);
		else
			snprintf(why, sizeof why, "cannot send to the server: %s", PQerrorMessage(r->conn));
		r->send_failed = false;
		run_connection_lost(b, why, !sync);
		return;
	}
	if (b->stopping || b->limits.hold_pull || run_session_at_end(b)) {
		repl_request_end(b);
		return;
	}
	if (r->target_lsn && !r->target_nudged && now - r->started_us >= 1000000LL) {
		/* The target may sit where no record ends (a page boundary):
		 * a logical message carries the stream past it. */
		heartbeat(b);
		r->target_nudged = true;
	}
	if (r->target_lsn && now - r->last_reply_req_us >= REPLY_REQ_US && !r->in_xact)
		repl_send_feedback(b, true);
	else if (now - r->last_feedback_us >= FEEDBACK_US)
		repl_send_feedback(b, false);
	if (!r->in_xact && now - r->last_recv_us >= HEARTBEAT_US &&
	    now - b->last_heartbeat_us >= HEARTBEAT_US)
		heartbeat(b);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pgsb *b = w->data;
	int64_t now = br_now_us();

	(void)loop;
	(void)revents;
	push_worker_poll(b);
	if (b->reload_requested && !b->repl.in_xact) {
		b->reload_requested = 0;
		reload_apply(b);
	}
	tick_push(b, now);
	if (b->stop_requested && !b->stopping) {
		log_info("stopping: finishing the transaction in hand");
		b->stopping = true;
		b->push.stopping = true; /* a push waiting on the file gives the window back */
	}
	switch (b->repl.state) {
	case REPL_IDLE:
		tick_idle(b, now);
		break;
	case REPL_STREAMING:
		tick_streaming(b, now);
		break;
	case REPL_STOPPING:
		if (now - b->repl.last_feedback_us > 10000000LL)
			repl_close(b); /* the server never answered CopyDone */
		break;
	}
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct pgsb *b = w->data;

	(void)loop;
	(void)revents;
	if (w->signum == SIGUSR1)
		b->sync_requested = 1;
	else if (w->signum == SIGHUP)
		b->reload_requested = 1;
	else
		b->stop_requested = 1;
}

static void start_watchers(struct pgsb *b)
{
	ev_signal *sigs[] = {&b->sig_term, &b->sig_int, &b->sig_usr1, &b->sig_hup};
	int nums[] = {SIGTERM, SIGINT, SIGUSR1, SIGHUP};

	for (int i = 0; i < 4; i++) {
		ev_signal_init(sigs[i], on_signal, nums[i]);
		sigs[i]->data = b;
		ev_signal_start(b->loop, sigs[i]);
	}
	ev_timer_init(&b->tick, on_tick, 0.0, TICK_SECONDS);
	b->tick.data = b;
	ev_timer_start(b->loop, &b->tick);
	ev_idle_init(&b->repl.more, repl_on_more);
	b->repl.more.data = b;
}

static void stop_watchers(struct pgsb *b)
{
	ev_signal_stop(b->loop, &b->sig_term);
	ev_signal_stop(b->loop, &b->sig_int);
	ev_signal_stop(b->loop, &b->sig_usr1);
	ev_signal_stop(b->loop, &b->sig_hup);
	ev_timer_stop(b->loop, &b->tick);
}

/* Streams until stopped (or, with a target LSN, until it is reached).
 * Returns the exit code. */
int run_loop(struct pgsb *b)
{
	b->repl.backoff_ms = BACKOFF_MIN_MS;
	b->repl.next_attempt_us = 0;
	const char *hold = getenv("PGSQLITE_BRIDGE_TEST_HOLD_PULL_MS");
	if (hold) /* tests: the stream starts this late, so a push can go first */
		b->repl.next_attempt_us = br_now_us() + strtoll(hold, NULL, 10) * 1000;
	b->next_session_us = 0;
	b->exit_code = 0;
	b->last_heartbeat_us = br_now_us();
	b->push.inotify_fd = -1;
	start_watchers(b);
	char err[1024];
	if (tsnap_start(b, err, sizeof err)) { /* before the push: tables held back stay so */
		log_error("%s", err);
		stop_watchers(b);
		tsnap_stop(b);
		return 1;
	}
	if (!b->one_shot) {
		if (push_worker_start(b, err, sizeof err)) {
			log_error("%s", err);
			stop_watchers(b);
			tsnap_stop(b);
			return 1;
		}
		tail_start(b);
		if (metrics_start(b, err, sizeof err)) {
			log_error("%s", err);
			b->exit_code = 1;
		}
	}
	b->push.wanted = push_has_pending(b);
	if (b->exit_code == 0)
		ev_run(b->loop, 0);
	metrics_stop(b);
	tail_stop(b);
	push_worker_stop(b);
	tsnap_stop(b);
	if (b->repl.state != REPL_IDLE) {
		if (!b->repl.in_xact && pull_commit_batch(b, err, sizeof err))
			log_error("%s", err);
		repl_send_feedback(b, false);
		pull_abort_batch(b);
		repl_close(b);
	}
	stop_watchers(b);
	return b->exit_code;
}
