/* reapply.c: after a table is copied again from Postgres (a lost slot, a
 * re-init, a restored file), the changes still waiting in the change log
 * are re-applied on top of the fresh copy, so local work that was not yet
 * pushed stays visible in SQLite.  The push then settles each of them
 * against Postgres through the normal conflict rules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "br.h"

#define REAPPLY_CHUNK 1000 /* changes read at a time: memory stays flat */

static const struct br_table *table_named(struct pgsb *b, const char *local)
{
	for (size_t i = 0; i < b->ntables; i++)
		if (strcmp(b->tables[i].local, local) == 0)
			return &b->tables[i];
	return NULL;
}

static int parse_image(struct dec_parser *p, const char *json, struct dec_field **f, size_t *n,
                       struct sl_err *e)
{
	struct dec_error derr;

	*f = NULL;
	*n = 0;
	if (!json)
		return 0;
	if (dec_parse_object(p, json, strlen(json), f, n, &derr)) {
		snprintf(e->msg, sizeof e->msg, "a change-log image is malformed: %s", derr.msg);
		return -1;
	}
	return 0;
}

/* One change as a record sl_apply understands: an insert or update
 * becomes an update by its old key that inserts a missing row; a delete
 * goes by key. */
static int reapply_one(struct pgsb *b, struct dec_parser *pp, struct dec_parser *rp,
                       const struct sl_change *c, const struct br_table *only, struct sl_err *e)
{
	const struct br_table *t = table_named(b, c->table);
	struct dec_record rec = {0};

	if (!t || (only && t != only))
		return 0;
	rec.schema = (struct dec_str){t->schema, strlen(t->schema)};
	rec.table = (struct dec_str){t->name, strlen(t->name)};
	if (c->op == 'D') {
		rec.action = DEC_DELETE;
		if (parse_image(pp, c->pk, &rec.identity, &rec.nidentity, e))
			return -1;
	} else {
		rec.action = DEC_UPDATE;
		if ((c->op == 'U' && parse_image(pp, c->pk, &rec.identity, &rec.nidentity, e)) ||
		    parse_image(rp, c->new_row, &rec.columns, &rec.ncolumns, e))
			return -1;
	}
	return sl_apply(b->db, &rec, e);
}

int reapply_pending(struct pgsb *b, const struct br_table *only, char *err, size_t cap)
{
	struct dec_parser pp, rp;
	struct sl_err e = {0};
	int64_t after = 0;
	int rc = 0;

	dec_parser_init(&pp);
	dec_parser_init(&rp);
	for (;;) {
		struct sl_change *ch;
		size_t n;
		if (sl_changes_read(b->db, after, REAPPLY_CHUNK, &ch, &n, &e)) {
			rc = -1;
			break;
		}
		for (size_t i = 0; i < n && rc == 0; i++)
			rc = reapply_one(b, &pp, &rp, &ch[i], only, &e);
		after = n ? ch[n - 1].seq : after;
		sl_changes_free(ch, n);
		if (rc || n < REAPPLY_CHUNK)
			break;
	}
	dec_parser_free(&pp);
	dec_parser_free(&rp);
	if (rc)
		snprintf(err, cap, "cannot re-apply pending local changes: %s", e.msg);
	return rc;
}
