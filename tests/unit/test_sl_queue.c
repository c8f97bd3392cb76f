/* test_sl_queue.c: the change log taken out of seq order, on a real file:
 * the pending table names, one set of tables read in seq order past the
 * others, and exactly that set trimmed. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../sqlite-side/sl.h"

static char dir[512];
static char path[600];
static struct sl_db *db;

static void setup(void)
{
	const char *base = getenv("TMPDIR");
	struct sl_err e = {0};

	if (!base || !*base)
		base = P_tmpdir;
	snprintf(dir, sizeof dir, "%s/test-slq-XXXXXX", base);
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/bridge.db", dir);
	cr_assert_eq(sl_open(path, &db, &e), 0, "sl_open: %s", e.msg);
	/* low 1..4, crit 5, low 6, other 7, crit 8 */
	cr_assert_eq(sqlite3_exec(sl_handle(db),
	             "INSERT INTO _pgsqlite_changes (table_name, op, pk) VALUES "
	             "('low','I','{\"id\":1}'), ('low','I','{\"id\":2}'), ('low','I','{\"id\":3}'),"
	             "('low','I','{\"id\":4}'), ('crit','I','{\"id\":1}'), ('low','U','{\"id\":1}'),"
	             "('other','I','{\"id\":1}'), ('crit','D','{\"id\":1}')", NULL, NULL, NULL), SQLITE_OK);
}

static void teardown(void)
{
	char p[640];

	sl_close(db);
	db = NULL;
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s%s", path, (const char *[]){"", "-wal", "-shm"}[i]);
		unlink(p);
	}
	rmdir(dir);
}

TestSuite(sl_queue, .init = setup, .fini = teardown);

static char *seqs(struct sl_change *c, size_t n)
{
	static char buf[256];
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%lld", i ? "," : "", (long long)c[i].seq);
	return buf;
}

static const char *read_in(int64_t after, int64_t upto, const char *tables, size_t max)
{
	struct sl_change *c;
	struct sl_err e = {0};
	size_t n;

	cr_assert_eq(sl_changes_read_in(db, after, upto, tables, max, &c, &n, &e), 0, "%s", e.msg);
	const char *s = seqs(c, n);
	sl_changes_free(c, n);
	return s;
}

Test(sl_queue, pending_table_names_come_one_seek_each_in_name_order)
{
	char name[64] = "", got[256] = "";
	struct sl_err e = {0};
	int rc;

	while ((rc = sl_changes_next_table(db, name, name, sizeof name, &e)) == 1) {
		strcat(got, name);
		strcat(got, " ");
	}
	cr_assert_eq(rc, 0, "%s", e.msg);
	cr_assert_str_eq(got, "crit low other ");
	cr_assert_eq(sl_changes_next_table(db, NULL, name, 3, &e), -1, "a name longer than the buffer");
}

Test(sl_queue, a_set_of_tables_is_read_in_seq_order_past_the_others)
{
	cr_assert_str_eq(read_in(0, INT64_MAX, "[\"crit\"]", 100), "5,8");
	cr_assert_str_eq(read_in(0, INT64_MAX, "[\"crit\",\"other\"]", 2), "5,7");
	cr_assert_str_eq(read_in(0, INT64_MAX, "[\"low\"]", 3), "1,2,3");
	cr_assert_str_eq(read_in(3, 6, "[\"low\"]", 100), "4,6");
	cr_assert_str_eq(read_in(0, INT64_MAX, NULL, 4), "1,2,3,4");
	cr_assert_str_eq(read_in(0, INT64_MAX, "[]", 100), "");
	cr_assert_str_eq(read_in(4, 5, NULL, 1), "5");
}

Test(sl_queue, trimming_a_set_deletes_exactly_its_changes_up_to_a_seq)
{
	struct sl_err e = {0};

	cr_assert_eq(sl_changes_delete_in(db, INT64_MIN, 5, "[\"crit\"]", &e), 0, "%s", e.msg);
	cr_assert_str_eq(read_in(0, INT64_MAX, NULL, 100), "1,2,3,4,6,7,8");
	cr_assert_eq(sl_changes_min_seq(db, &e), 1);
	cr_assert_eq(sl_changes_exist_before(db, 5, "[\"low\"]", &e), 1);
	cr_assert_eq(sl_changes_exist_before(db, 7, "[\"other\"]", &e), 0);
	cr_assert_eq(sl_changes_delete_in(db, INT64_MIN, 7, "[\"low\",\"other\"]", &e), 0, "%s", e.msg);
	cr_assert_str_eq(read_in(0, INT64_MAX, NULL, 100), "8");
	cr_assert_eq(sl_changes_min_seq(db, &e), 8);
	cr_assert_eq(sl_changes_delete_in(db, 7, 8, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(sl_changes_min_seq(db, &e), 0, "an empty log");
}
