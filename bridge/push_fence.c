/* push_fence.c: when a remote delete took a row the push has in flight.
 *
 * A row whose local change is in the push's batch is left by the pull to
 * the push, which settles it against Postgres.  For a row Postgres no
 * longer has, the push cannot see when it was deleted, and last-write-wins
 * needs that time.  The stream carries it: the pull notes here every
 * remote delete (or key move away) of a row it leaves to the push (in
 * flight, or pending behind a local key move), with its commit time.
 * Before the push decides such a row, it puts a fence in the WAL (a
 * logical message naming this bridge's slot, from a connection without
 * our origin, so our own stream sees it) and waits, briefly, until the
 * pull has read past it (in `sync` the pull has read its stream before
 * the push starts): by then every delete committed before the push's
 * statement has been noted. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "br.h"
#include "log.h"

#define NOTED_MAX 1024    /* the oldest notes go first */
#define FENCE_WAIT_MS 1000 /* then decide without the time, as before */
#define FENCE_PREFIX "fence "

struct noted {
	char *table, *pk;
	char when[64];
};

struct push_fence {
	pthread_mutex_t mu;
	struct noted notes[NOTED_MAX];
	size_t next;
	_Atomic uint64_t sent, seen;
};

int fence_init(struct pgsb *b)
{
	if (!(b->push.fence = calloc(1, sizeof *b->push.fence)))
		return -1;
	pthread_mutex_init(&b->push.fence->mu, NULL);
	return 0;
}

void fence_free(struct pgsb *b)
{
	struct push_fence *f = b->push.fence;

	if (!f)
		return;
	for (size_t i = 0; i < NOTED_MAX; i++) {
		free(f->notes[i].table);
		free(f->notes[i].pk);
	}
	pthread_mutex_destroy(&f->mu);
	free(f);
	b->push.fence = NULL;
}

static struct noted *find(struct push_fence *f, const char *table, const char *pk)
{
	for (size_t i = 0; i < NOTED_MAX; i++)
		if (f->notes[i].table && strcmp(f->notes[i].table, table) == 0 &&
		    strcmp(f->notes[i].pk, pk) == 0)
			return &f->notes[i];
	return NULL;
}

void fence_note_delete(struct pgsb *b, const char *table, const char *pk, const char *when)
{
	struct push_fence *f = b->push.fence;

	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	struct noted *n = find(f, table, pk);
	if (!n) {
		n = &f->notes[f->next];
		f->next = (f->next + 1) % NOTED_MAX;
		free(n->table);
		free(n->pk);
		n->table = strdup(table);
		n->pk = strdup(pk);
		if (!n->table || !n->pk) {
			free(n->table);
			free(n->pk);
			n->table = n->pk = NULL;
		}
	}
	if (n->table)
		snprintf(n->when, sizeof n->when, "%s", when);
	pthread_mutex_unlock(&f->mu);
}

/* The pull, for every logical message: one of our fences? */
void fence_message(struct pgsb *b, const struct dec_record *rec)
{
	size_t plen = strlen(FENCE_PREFIX), slen = strlen(b->cfg->slot);
	const char *c = rec->content.p;
	size_t n = rec->content.len;

	if (!dec_str_eq(rec->prefix, "pgsqlite-bridge") || n < plen + slen + 2 ||
	    memcmp(c, FENCE_PREFIX, plen) != 0 || memcmp(c + plen, b->cfg->slot, slen) != 0 ||
	    c[plen + slen] != ' ')
		return;
	uint64_t id = 0;
	for (size_t i = plen + slen + 1; i < n && c[i] >= '0' && c[i] <= '9'; i++)
		id = id * 10 + (uint64_t)(c[i] - '0');
	if (b->push.fence && id > atomic_load(&b->push.fence->seen))
		atomic_store(&b->push.fence->seen, id);
}

/* The push: a fence, and the wait until the pull has read past it. */
static bool fence_passed(struct pgsb *b)
{
	char err[512], text[160];
	uint64_t id = atomic_fetch_add(&b->push.fence->sent, 1) + 1;
	PGconn *c = pgc_connect(b, false, err, sizeof err);

	if (!c)
		return false;
	snprintf(text, sizeof text, FENCE_PREFIX "%s %llu", b->cfg->slot, (unsigned long long)id);
	const char *params[1] = {text};
	PGresult *r = PQexecParams(c, "SELECT pg_logical_emit_message(false, 'pgsqlite-bridge', $1)",
	                           1, NULL, params, NULL, NULL, 0);
	bool sent = PQresultStatus(r) == PGRES_TUPLES_OK;
	PQclear(r);
	PQfinish(c);
	for (int waited = 0; sent && waited < FENCE_WAIT_MS; waited += 2) {
		if (atomic_load(&b->push.fence->seen) >= id)
			return true;
		struct timespec ts = {0, 2 * 1000000L};
		nanosleep(&ts, NULL);
	}
	return false;
}

bool fence_delete_time(struct pgsb *b, const char *table, const char *pk, char *when, size_t cap)
{
	struct push_fence *f = b->push.fence;

	/* Without the push thread (`sync`), the pull has read the stream to
	 * its end before the push began: no fence is needed. */
	if (!f || (b->push.worker && !fence_passed(b))) {
		log_debug("push: no fence through the stream; %s %s decided without a delete time", table, pk);
		return false;
	}
	pthread_mutex_lock(&f->mu);
	struct noted *n = find(f, table, pk);
	if (n)
		snprintf(when, cap, "%s", n->when);
	pthread_mutex_unlock(&f->mu);
	return n != NULL;
}
