/* fuzz_dec.c: libFuzzer target for the wal2json reader.  Feeds each input
 * to dec_parse and then to dec_parse_object (one parser for both, from an
 * exact-size heap copy, so ASan catches any read past the end) and checks
 * what comes back: every returned string must lie in the line or in the
 * parser's scratch, errors must be well-formed, row-image names unique. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../decoder/dec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One parser for the whole run, as in the daemon: reuse is part of what is
 * being tested. */
static struct dec_parser parser;
static const char *cur_line;
static size_t cur_len;

static void check(int ok)
{
	if (!ok)
		__builtin_trap();
}

/* A returned string must be empty or lie wholly in the line or scratch. */
static void check_str(struct dec_str s)
{
	if (s.len == 0)
		return;
	check(s.p != NULL);
	int in_line = s.p >= cur_line && s.len <= cur_len &&
	              (size_t)(s.p - cur_line) <= cur_len - s.len;
	int in_scratch = s.p >= parser.scratch && s.len <= parser.scratch_cap &&
	                 (size_t)(s.p - parser.scratch) <= parser.scratch_cap - s.len;
	check(in_line || in_scratch);
}

static void check_fields(const struct dec_field *f, size_t n)
{
	check(n == 0 || (f >= parser.fields && f + n <= parser.fields + parser.fields_cap));
	for (size_t k = 0; k < n; k++) {
		check_str(f[k].name);
		check_str(f[k].type);
		check_str(f[k].value);
		check(f[k].kind <= DEC_STRING);
		check(f[k].kind != DEC_NUMBER || f[k].value.len > 0);
		check(f[k].kind >= DEC_NUMBER || f[k].value.len == 0);
	}
}

static void check_record(const struct dec_record *r)
{
	check(r->action != 0 && memchr("BCIUDTM", (int)r->action, 7) != NULL);
	check_str(r->timestamp);
	check_str(r->schema);
	check_str(r->table);
	check_str(r->prefix);
	check_str(r->content);
	check_fields(r->columns, r->ncolumns);
	check_fields(r->identity, r->nidentity);
	check_fields(r->pk, r->npk);
	char buf[20];
	uint64_t back;
	dec_format_lsn(r->lsn, buf, sizeof buf);
	check(dec_parse_lsn(buf, strlen(buf), &back) == 0 && back == r->lsn);
}

static int same_name(struct dec_str a, struct dec_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* A row image: fields as above, no type, and no name twice (checked
 * pairwise for rows of moderate width). */
static void check_object(const struct dec_field *f, size_t n)
{
	check((f == NULL) == (n == 0));
	check_fields(f, n);
	for (size_t k = 0; k < n; k++) {
		check(f[k].type.len == 0 && f[k].typeoid == 0);
		for (size_t j = 0; n <= 128 && j < k; j++)
			check(!same_name(f[j].name, f[k].name));
	}
}

static void check_error(int rc, const struct dec_error *e, size_t size)
{
	check((rc == -1 || rc == -2) && e->msg != NULL && e->offset <= size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size ? size : 1);
	if (!line)
		return 0;
	memcpy(line, data, size);
	cur_line = line;
	cur_len = size;

	struct dec_record r;
	struct dec_error e = { 0, NULL };
	int rc = dec_parse(&parser, line, size, &r, &e);
	if (rc == 0)
		check_record(&r);
	else
		check_error(rc, &e, size);

	struct dec_field *f;
	size_t n;
	e.offset = 0;
	e.msg = NULL;
	rc = dec_parse_object(&parser, line, size, &f, &n, &e);
	if (rc == 0)
		check_object(f, n);
	else
		check_error(rc, &e, size);

	uint64_t lsn;
	if (dec_parse_lsn(line, size, &lsn) == 0)
		check(size >= 3 && size <= 17);
	free(line);
	return 0;
}
