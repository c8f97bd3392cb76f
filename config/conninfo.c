/* conninfo.c: a `postgres` value libpq cannot parse is a bad config.
 * libpq's messages quote the offending piece of the value (which may be
 * a password, or hold one): only quoted conninfo keywords and
 * punctuation are kept. */
#include "conninfo.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define ALLOWED "allowed: a postgresql:// URI or key=value settings with libpq's keywords " \
	"(host, port, dbname, user, password, sslmode, ...)"

static bool is_keyword(const char *s, size_t n)
{
	PQconninfoOption *opts = PQconndefaults();
	bool found = false;

	for (PQconninfoOption *o = opts; o && o->keyword && !found; o++)
		found = strlen(o->keyword) == n && strncmp(o->keyword, s, n) == 0;
	PQconninfoFree(opts);
	return found;
}

static bool may_show(const char *s, size_t n)
{
	return (n == 1 && strchr("=]@/:?&", s[0])) || (n > 0 && is_keyword(s, n));
}

/* Copies m to out, each "..." piece that may not be shown replaced. */
static void scrub(const char *m, char *out, size_t cap)
{
	size_t o = 0;

	while (*m && o + 1 < cap) {
		const char *close = m[0] == '"' ? strchr(m + 1, '"') : NULL;
		if (!close) {
			out[o++] = *m == '\n' ? ' ' : *m;
			m++;
			continue;
		}
		size_t n = (size_t)(close - m - 1);
		int w = may_show(m + 1, n) ? snprintf(out + o, cap - o, "\"%.*s\"", (int)n, m + 1)
		                           : snprintf(out + o, cap - o, "(not shown)");
		o = w < 0 || (size_t)w >= cap - o ? cap - 1 : o + (size_t)w;
		m = close + 1;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

int cfg_conninfo_check(const char *s, char *why, size_t cap)
{
	char *errmsg = NULL, reason[300];
	PQconninfoOption *opts = PQconninfoParse(s, &errmsg);

	if (opts) {
		PQconninfoFree(opts);
		return 0;
	}
	scrub(errmsg ? errmsg : "out of memory", reason, sizeof reason);
	PQfreemem(errmsg);
	snprintf(why, cap, "libpq cannot read the value (not shown: it may hold a password): "
	         "%s (" ALLOWED ")", reason);
	return -1;
}
