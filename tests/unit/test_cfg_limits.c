/* test_cfg_limits.c: max_records needs order_column; the error names the
 * file, the line of max_records and the key. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../config/cfg.h"

static char path[64];

static int load(const char *text, struct cfg *c, struct cfg_error *e)
{
	snprintf(path, sizeof path, "/tmp/test-cfglim-XXXXXX");
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	int rc = cfg_load(path, c, e);
	unlink(path);
	return rc;
}

Test(cfg_limits, max_records_without_order_column_names_file_line_and_key)
{
	struct cfg c;
	struct cfg_error e;
	char want[200];

	cr_assert_eq(load("[bridge]\nsqlite = a.db\n[table public.ev]\nskip = false\nmax_records = 5\n",
	                  &c, &e), -1);
	snprintf(want, sizeof want, "%s:5: key 'max_records' in [table public.ev]: needs order_column",
	         path);
	cr_assert(strncmp(e.msg, want, strlen(want)) == 0, "%s", e.msg);
}

Test(cfg_limits, max_records_with_order_column_and_order_column_alone_load)
{
	struct cfg c;
	struct cfg_error e;

	cr_assert_eq(load("[bridge]\nsqlite = a.db\n[table ev]\norder_column = at\nmax_records = 5\n"
	                  "[table logs]\norder_column = at\n[table other]\nmax_records = 0\n", &c, &e),
	             0, "%s", e.msg);
	cr_assert_eq(c.tables[0].max_records, 5);
	cr_assert_str_eq(c.tables[0].order_column, "at");
	cr_assert_eq(c.tables[0].order_column_line, 4);
	cr_assert_eq(c.tables[0].max_records_line, 5);
	cr_assert_eq(c.tables[1].max_records, 0);
	cfg_free(&c);
}
