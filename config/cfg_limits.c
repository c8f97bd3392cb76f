/* cfg_limits.c: the per-table row limit's keys (max_records, order_column):
 * where each was set, and the rule between them, checked once the whole
 * file is read.  Whether the column exists is Postgres's to say: `check`
 * and `init` test it (bridge/limits.c). */
#include <stdio.h>
#include <string.h>

#include "cfg.h"

void cfg__table_key_line(struct cfg_table *t, const char *key, int line)
{
	if (strcmp(key, "max_records") == 0)
		t->max_records_line = line;
	else if (strcmp(key, "order_column") == 0)
		t->order_column_line = line;
}

int cfg__check_tables(const struct cfg *c, struct cfg_error *err)
{
	for (size_t i = 0; i < c->ntables; i++) {
		const struct cfg_table *t = &c->tables[i];
		if (t->max_records > 0 && !t->order_column) {
			snprintf(err->msg, sizeof err->msg,
			         "%s:%d: key 'max_records' in [table %s.%s]: needs order_column in the "
			         "same section (allowed: max_records with order_column = <a column "
			         "whose larger values are the newer rows>, or max_records = 0)",
			         c->path, t->max_records_line ? t->max_records_line : t->line,
			         t->schema, t->name);
			return -1;
		}
	}
	return 0;
}
