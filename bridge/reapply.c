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
                       const struct sl_change *c, const struct br_table *only, const char *into,
                       struct sl_err *e)
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
	return into ? sl_apply_to(b->db, &rec, into, e) : sl_apply(b->db, &rec, e);
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
			rc = reapply_one(b, &pp, &rp, &ch[i], only, NULL, &e);
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

/* The table's name as a JSON array of one string (malloc'd). */
static char *one_table_set(const char *local)
{
	char *s = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&s, &len);

	if (!m)
		return NULL;
	fputs("[\"", m);
	for (const unsigned char *p = (const unsigned char *)local; *p; p++)
		if (*p == '"' || *p == '\\')
			fprintf(m, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(m, "\\u%04x", *p);
		else
			fputc(*p, m);
	fputs("\"]", m);
	fclose(m);
	return s;
}

int reapply_step(struct pgsb *b, const struct br_table *t, const char *into, int64_t *after,
                 size_t max, char *err, size_t cap)
{
	struct dec_parser pp, rp;
	struct sl_err e = {0};
	struct sl_change *ch = NULL;
	size_t n = 0;
	char *set = one_table_set(t->local);
	int rc = set ? 0 : -1;

	if (!set)
		snprintf(e.msg, sizeof e.msg, "out of memory");
	dec_parser_init(&pp);
	dec_parser_init(&rp);
	if (rc == 0 && sl_changes_read_in(b->db, *after, INT64_MAX, set, max, &ch, &n, &e))
		rc = -1;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = reapply_one(b, &pp, &rp, &ch[i], t, into, &e);
	if (rc == 0 && n)
		*after = ch[n - 1].seq;
	sl_changes_free(ch, n);
	dec_parser_free(&pp);
	dec_parser_free(&rp);
	free(set);
	if (rc)
		snprintf(err, cap, "cannot re-apply pending local changes: %s", e.msg);
	return rc ? -1 : (int)n;
}
