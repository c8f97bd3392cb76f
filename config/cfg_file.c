/* cfg_file.c: reads the INI file with inih: one whole physical line at a
 * time, sections ([bridge], [table schema.name]) tracked here, each key
 * parsed by its option table; every error names file, line and key. */
#include "cfg_int.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum section { SEC_NONE, SEC_BRIDGE, SEC_TABLE };

struct parse {
	struct cfg *c;
	struct cfg_error *err;
	FILE *f;
	char *line; /* getline buffer */
	size_t linecap;
	int lineno;
	int read_errno;
	bool failed;
	enum section sec;
	char sec_text[256]; /* the section as written, for messages */
	size_t table;       /* index of the current [table] */
	size_t tables_cap;  /* room in c->tables */
	int bridge_line;    /* line of [bridge], 0 if none yet */
	int seen[CFG__MAX_OPTS]; /* line each key of this section was set on */
};

__attribute__((format(printf, 2, 3)))
static int fail(struct parse *p, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(p->err->msg, sizeof p->err->msg, "%s:%d: ", p->c->path, p->lineno);

	if (n < 0 || (size_t)n >= sizeof p->err->msg)
		n = 0;
	va_start(ap, fmt);
	vsnprintf(p->err->msg + n, sizeof p->err->msg - (size_t)n, fmt, ap);
	va_end(ap);
	p->failed = true;
	return -1;
}

static char *trim(char *s)
{
	size_t n;

	while (isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

static struct cfg_table *add_table(struct parse *p)
{
	struct cfg *c = p->c;
	struct cfg_table *t;

	if (c->ntables == p->tables_cap) {
		size_t cap = p->tables_cap ? 2 * p->tables_cap : 4;
		if (!(t = realloc(c->tables, cap * sizeof *t)))
			return NULL;
		c->tables = t;
		p->tables_cap = cap;
	}
	t = &c->tables[c->ntables++];
	memset(t, 0, sizeof *t);
	t->line = p->lineno;
	return t;
}

static int find_table(const struct cfg *c, const char *schema, const char *name)
{
	for (size_t i = 0; i < c->ntables; i++)
		if (!strcmp(c->tables[i].schema, schema) && !strcmp(c->tables[i].name, name))
			return (int)i;
	return -1;
}

/* "name" or "schema.name", split at the first '.'. */
static int begin_table(struct parse *p, char *qualified)
{
	char *dot = strchr(qualified, '.');
	const char *schema = "public";
	char *name = trim(dot ? dot + 1 : qualified);
	struct cfg_table *t;
	int dup;

	if (dot) {
		*dot = '\0';
		schema = trim(qualified);
	}
	if (!*schema || !*name)
		return fail(p, "section [%s] has an empty schema or table name "
			    "(allowed: [table name], [table schema.name])", p->sec_text);
	if ((dup = find_table(p->c, schema, name)) >= 0)
		return fail(p, "duplicate section [%s] (table %s.%s, first at line %d)",
			    p->sec_text, schema, name, p->c->tables[dup].line);
	if (!(t = add_table(p)) || !(t->schema = strdup(schema)) || !(t->name = strdup(name)))
		return fail(p, "out of memory");
	if (cfg__set_defaults(cfg__table_opts, cfg__ntable, t, p->err)) {
		p->failed = true;
		return -1;
	}
	p->table = p->c->ntables - 1;
	p->sec = SEC_TABLE;
	return 0;
}

static int begin_section(struct parse *p, char *line)
{
	char *close = strchr(line, ']');
	char *text, *rest;

	if (!close)
		return fail(p, "section header without a closing ']'");
	rest = trim(close + 1);
	if (*rest && *rest != ';' && *rest != '#')
		return fail(p, "unexpected text after ']' (allowed: a ; or # comment)");
	*close = '\0';
	text = trim(line + 1);
	snprintf(p->sec_text, sizeof p->sec_text, "%s", text);
	memset(p->seen, 0, sizeof p->seen);
	if (!strcmp(text, "bridge")) {
		if (p->bridge_line)
			return fail(p, "duplicate section [bridge] (first at line %d)", p->bridge_line);
		p->bridge_line = p->lineno;
		p->sec = SEC_BRIDGE;
		return 0;
	}
	if (!strncmp(text, "table", 5) && (!text[5] || isspace((unsigned char)text[5])))
		return begin_table(p, text + 5);
	return fail(p, "unknown section [%s] (allowed: [bridge], [table schema.name])", text);
}

/* What inih takes for a key=value line: '=' or ':' before any inline
 * comment, with a non-empty key. */
static bool is_key_value(const char *s)
{
	for (const char *q = s; *q; q++) {
		if (*q == '=' || *q == ':')
			return q > s;
		if (*q == ';' && q > s && isspace((unsigned char)q[-1]))
			return false;
	}
	return false;
}

/* Checks one physical line; returns what inih should see of it (sections
 * are handled here, so inih sees a blank line), or NULL on error. */
static const char *check_line(struct parse *p, char *s, size_t len, int max)
{
	if (memchr(s, '\0', len))
		return fail(p, "line contains a NUL byte"), NULL;
	if (len && s[len - 1] == '\n')
		s[--len] = '\0';
	if (len && s[len - 1] == '\r')
		s[--len] = '\0';
	if (len > (size_t)max)
		return fail(p, "line is %zu characters long, more than the %d allowed "
			    "(it would be cut); for a long postgres conninfo use "
			    CFG__ENV_PREFIX "POSTGRES or PG* environment variables", len, max), NULL;
	if (p->lineno == 1 && !strncmp(s, "\xEF\xBB\xBF", 3))
		s += 3;
	while (isspace((unsigned char)*s)) /* no inih continuation lines */
		s++;
	if (!*s || *s == ';' || *s == '#')
		return "";
	if (*s == '[')
		return begin_section(p, s) ? NULL : "";
	if (!is_key_value(s))
		return fail(p, "expected 'key = value' or a section header "
			    "(allowed: [bridge], [table schema.name])"), NULL;
	return s;
}

/* inih's reader: one whole physical line at a time, never cut. */
static char *read_line(char *str, int num, void *stream)
{
	struct parse *p = stream;
	const char *s;
	ssize_t n;

	if (p->failed)
		return NULL;
	errno = 0;
	if ((n = getline(&p->line, &p->linecap, p->f)) < 0) {
		if (ferror(p->f))
			p->read_errno = errno ? errno : EIO;
		return NULL;
	}
	p->lineno++;
	if (!(s = check_line(p, p->line, (size_t)n, num - 3)))
		return NULL;
	memcpy(str, s, strlen(s) + 1); /* fits: checked against num - 3 */
	return str;
}

/* Cuts an inline comment: whitespace, then '#'. */
static char *strip_hash_comment(char *v)
{
	for (char *q = v; *q; q++) {
		if (*q == '#' && q > v && isspace((unsigned char)q[-1])) {
			*q = '\0';
			break;
		}
	}
	return trim(v);
}

static void allowed_keys(const struct cfg_opt *opts, size_t n, char *buf, size_t cap)
{
	const char *names[CFG__MAX_OPTS + 1];

	for (size_t i = 0; i < n; i++)
		names[i] = opts[i].name;
	names[n] = NULL;
	cfg__join_names(names, buf, cap);
}

/* A key is echoed only if it looks like one: "secret@host" is more likely
 * the end of a postgres value split over two lines. */
static bool plain_name(const char *key)
{
	size_t n = strlen(key);

	return n > 0 && n <= 64 &&
	       strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

static int unknown_key(struct parse *p, const struct cfg_opt *opts, size_t n, const char *key)
{
	char list[sizeof p->err->msg];

	allowed_keys(opts, n, list, sizeof list);
	if (!plain_name(key))
		return fail(p, "unknown key in [%s], not shown as it is not a plain name "
			    "(a value split over two lines?) (allowed: %s)", p->sec_text, list);
	return fail(p, "unknown key '%s' in [%s] (allowed: %s)", key, p->sec_text, list);
}

static int set_key(struct parse *p, const struct cfg_opt *opts, size_t n, void *base,
		   const char *key, const char *value)
{
	const struct cfg_opt *o = cfg__find_opt(opts, n, key);
	char why[sizeof p->err->msg];
	size_t i;

	if (!o)
		return unknown_key(p, opts, n, key);
	i = (size_t)(o - opts);
	if (p->seen[i])
		return fail(p, "duplicate key '%s' in [%s] (first at line %d)",
			    key, p->sec_text, p->seen[i]);
	p->seen[i] = p->lineno;
	if (o->type->parse(o->type, value, cfg__field(base, o), why, sizeof why))
		return fail(p, "key '%s' in [%s]: %s", key, p->sec_text, why);
	return 0;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;
	char *v;

	(void)section; /* sections are tracked by read_line: inih cuts long ones */
	if (p->failed)
		return 1;
	if (p->sec == SEC_NONE)
		return fail(p, "key '%s' outside any section (allowed: [bridge], "
			    "[table schema.name] first)", plain_name(name) ? name : "(not shown)"), 1;
	if (!(v = strdup(value ? value : "")))
		return fail(p, "out of memory"), 1;
	if (p->sec == SEC_BRIDGE)
		set_key(p, cfg__bridge_opts, cfg__nbridge, p->c, name, strip_hash_comment(v));
	else if (set_key(p, cfg__table_opts, cfg__ntable, &p->c->tables[p->table], name,
			 strip_hash_comment(v)) == 0)
		cfg__table_key_line(&p->c->tables[p->table], name, p->lineno);
	free(v);
	return 1;
}

int cfg__read_file(struct cfg *c, struct cfg_error *err)
{
	struct parse parse = { .c = c, .err = err }, *p = &parse;
	int rc;

	if (!(p->f = fopen(p->c->path, "r")))
		return cfg__say(p->err->msg, sizeof p->err->msg, "%s: cannot read: %s",
				p->c->path, strerror(errno));
	rc = ini_parse_stream(read_line, p, on_key, p);
	fclose(p->f);
	free(p->line);
	if (p->failed)
		return -1;
	if (p->read_errno)
		return cfg__say(p->err->msg, sizeof p->err->msg, "%s: cannot read: %s",
				p->c->path, strerror(p->read_errno));
	if (rc > 0) {
		p->lineno = rc;
		return fail(p, "cannot parse this line");
	}
	return rc < 0 ? fail(p, "out of memory") : 0;
}
