/* push_fold.c: a push batch's entries and their helpers, and the folding
 * of its change-log rows into one net change per row. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "push_int.h"

/* Sets an entry's own result (one statement, at most one row). */
void push__entry_own_result(struct entry *e, PGresult *r)
{
	if (e->owns_res)
		PQclear(e->res);
	e->res = r;
	e->owns_res = r != NULL;
	e->row = r && PQntuples(r) > 0 ? 0 : -1;
}

const struct br_table *push__table_by_local(struct pgsb *b, const char *local)
{
	for (size_t i = 0; i < b->ntables; i++)
		if (strcmp(b->tables[i].local, local) == 0)
			return &b->tables[i];
	return NULL;
}

void push__batch_free(struct batch *bt)
{
	for (size_t i = 0; i < bt->ne; i++) {
		if (bt->e[i].owns_res)
			PQclear(bt->e[i].res);
		PQclear(bt->e[i].remote);
		PQclear(bt->e[i].moved);
		free(bt->e[i].merged);
	}
	for (int i = 0; i < bt->nshared; i++)
		PQclear(bt->shared[i]);
	free(bt->e);
	free(bt->buckets);
	free(bt->tables);
	sl_changes_free(bt->ch, bt->nch);
}

/* ---- folding a batch: one net change per row ---- */

static size_t bucket_of(const struct batch *bt, const struct br_table *t, const char *key)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uintptr_t)t;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return (size_t)(h % bt->nbuckets);
}

static struct entry *find_entry(struct batch *bt, const struct br_table *t, const char *key)
{
	for (struct entry *e = bt->buckets[bucket_of(bt, t, key)]; e; e = e->next_same)
		if (e->t == t && strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

static void fold_change(struct batch *bt, const struct br_table *t, const struct sl_change *c)
{
	struct entry *e = find_entry(bt, t, c->pk);

	if (!e) {
		size_t k = bucket_of(bt, t, c->pk);
		e = &bt->e[bt->ne++];
		memset(e, 0, sizeof *e);
		e->t = t;
		e->key = c->pk;
		e->base = c->op == 'I' ? NULL : c->old_row;
		e->row = -1;
		e->next_same = bt->buckets[k];
		bt->buckets[k] = e;
	}
	e->final = c->op == 'D' ? NULL : c->new_row;
	e->changed_at = c->changed_at;
	e->op = e->base ? (e->final ? 'U' : 'D') : (e->final ? 'I' : 0);
}

/* Does this update move the row to another primary key?  Later changes
 * under the old key are another row, so a batch ends after it. */
static bool key_moved(struct pgsb *b, const struct br_table *t, const struct sl_change *c)
{
	return c->op == 'U' && push__key_moved(b, t, c->old_row, c->new_row);
}

bool push__key_moved(struct pgsb *b, const struct br_table *t, const char *old_row,
                     const char *new_row)
{
	struct dec_field *of, *nf;
	size_t on, nn;

	if (!old_row || !new_row || push__parse_image(&b->push.base_dec, old_row, &of, &on) ||
	    push__parse_image(&b->push.final_dec, new_row, &nf, &nn))
		return false;
	for (size_t i = 0; i < t->npgcols; i++) {
		if (t->pgcols[i].pk_pos <= 0)
			continue;
		struct dec_str name = {t->pgcols[i].name, strlen(t->pgcols[i].name)};
		const struct dec_field *a = push__field_named(of, on, name), *z = push__field_named(nf, nn, name);
		if (!a || !z || a->kind != z->kind || a->value.len != z->value.len ||
		    memcmp(a->value.p, z->value.p, a->value.len) != 0)
			return true;
	}
	return false;
}

/* Rows in one fixed order (table, then key), the same on every client, so
 * concurrent pushes lock Postgres rows in the same order and do not
 * deadlock each other. */
static int entry_order(const void *x, const void *y)
{
	const struct entry *a = x, *z = y;
	int c = strcmp(a->t->local, z->t->local);

	return c ? c : strcmp(a->key, z->key);
}

int push__fold(struct pgsb *b, struct batch *bt)
{
	bool moved = false;

	bt->e = calloc(bt->nch, sizeof *bt->e);
	bt->nbuckets = 2 * bt->nch + 1;
	bt->buckets = calloc(bt->nbuckets, sizeof *bt->buckets);
	if (!bt->e || !bt->buckets)
		return -1;
	for (size_t i = 0; i < bt->nch && !moved; i++) {
		const struct br_table *t = push__table_by_local(b, bt->ch[i].table);
		if (t && t->direction != CFG_DIRECTION_PULL) {
			moved = key_moved(b, t, &bt->ch[i]);
			if (moved && i > 0) {
				moved = false; /* this batch has no move: it is sorted */
				break; /* a key move goes in a batch of its own, after what came before */
			}
			fold_change(bt, t, &bt->ch[i]);
			if (moved)
				find_entry(bt, t, bt->ch[i].pk)->rekeyed = true;
		}
		bt->last_seq = bt->ch[i].seq;
	}
	/* A key move is alone in its batch: what came before it (a row that
	 * frees the key it takes) is pushed first, what comes after (a new
	 * row at the key it frees) later. */
	if (!moved)
		qsort(bt->e, bt->ne, sizeof *bt->e, entry_order);
	return 0;
}
