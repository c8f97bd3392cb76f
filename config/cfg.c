/* cfg.c: loads, validates, prints and frees the bridge configuration (one
 * option table per section drives defaults, parsing, overrides, printing). */
#include "cfg.h"
#include "conninfo.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ENV_PREFIX "PGSQLITE_BRIDGE_"
#define MASK "********"
#define MAX_OPTS 16

/* ---- value types ------------------------------------------------------ */

struct opt_type {
	int (*parse)(const struct opt_type *t, const char *s, void *dst,
		     char *why, size_t cap);
	void (*print)(const struct opt_type *t, const void *src, FILE *f);
	const char *const *names; /* enums: names by value, NULL-terminated */
	int first;                /* enums: lowest value a config may name */
	bool owns_string;         /* the field is a malloc'd char * */
};

/* One key: pgbouncer-style, the default is a string run through the same
 * parser as a file value. */
struct opt {
	const char *name;
	const struct opt_type *type;
	size_t offset;   /* into struct cfg or struct cfg_table */
	const char *def; /* NULL: no default, the key is required */
	bool reloadable; /* may change without a restart */
};

struct unit {
	const char *name;
	int64_t mult;
};

static const struct unit duration_units[] = {
	{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
	{ NULL, 0 },
};

static const struct unit size_units[] = {
	{ "", 1 }, { "KB", 1024 }, { "MB", 1024 * 1024 }, { "GB", 1024 * 1024 * 1024 },
	{ NULL, 0 },
};

static const char *const mode_names[] = {
	"manual", "auto", "periodic", "realtime", "on-reconnect", NULL,
};
static const char *const conflict_names[] = {
	"inherit", "last-write-wins", "local-wins", "remote-wins", "merge",
	"keep-both", NULL,
};
static const char *const direction_names[] = {
	"inherit", "both", "pull", "push", NULL,
};
static const char *const priority_names[] = {
	"critical", "high", "medium", "low", NULL,
};
static const char *const limit_action_names[] = { "warn", "error", "prune", NULL };
static const char *const log_format_names[] = { "text", "json", NULL };

/* Enum fields are written through an int *. */
_Static_assert(sizeof(enum cfg_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_conflict) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_direction) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_priority) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_limit_action) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_log_format) == sizeof(int), "enum size");

/* vsnprintf: messages are cut to fit, never overflow. */
__attribute__((format(printf, 3, 4)))
static int say(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
	return -1;
}

static int bad(char *why, size_t cap, const char *s, const char *what,
	       const char *allowed)
{
	return say(why, cap, "'%s' is not %s (allowed: %s)", s, what, allowed);
}

static void join_names(const char *const *names, char *buf, size_t cap)
{
	size_t len = 0;

	buf[0] = '\0';
	for (; *names && len < cap; names++) {
		int n = snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", *names);
		len += n > 0 ? (size_t)n : 0;
	}
}

static int parse_enum(const struct opt_type *t, const char *s, void *dst,
		      char *why, size_t cap)
{
	char list[256];

	for (int i = t->first; t->names[i]; i++) {
		if (strcmp(s, t->names[i]) == 0) {
			*(int *)dst = i;
			return 0;
		}
	}
	join_names(t->names + t->first, list, sizeof list);
	return bad(why, cap, s, "allowed", list);
}

static void print_enum(const struct opt_type *t, const void *src, FILE *f)
{
	fputs(t->names[*(const int *)src], f);
}

static int parse_bool(const struct opt_type *t, const char *s, void *dst,
		      char *why, size_t cap)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	(void)t;
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
			*(bool *)dst = strcasecmp(s, yes[i]) == 0;
			return 0;
		}
	}
	return bad(why, cap, s, "allowed", "true, false, yes, no, on, off, 1, 0");
}

static void print_bool(const struct opt_type *t, const void *src, FILE *f)
{
	(void)t;
	fputs(*(const bool *)src ? "true" : "false", f);
}

/* A whole number, optional blanks, then one of units (case-insensitive). */
static int parse_scaled(const char *s, const struct unit *units, int64_t *out)
{
	int64_t v = 0;
	const char *p = s;
	size_t ulen;

	if (!s || !isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		if (v > (INT64_MAX - (*p - '0')) / 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	while (isblank((unsigned char)*p))
		p++;
	ulen = strlen(p);
	while (ulen && isspace((unsigned char)p[ulen - 1]))
		ulen--;
	for (; units->name; units++) {
		if (strlen(units->name) != ulen || strncasecmp(p, units->name, ulen))
			continue;
		if (v > INT64_MAX / units->mult)
			return -1;
		*out = v * units->mult;
		return 0;
	}
	return -1;
}

/* Prints v with the largest unit that divides it exactly. */
static void print_scaled(int64_t v, const struct unit *units, FILE *f)
{
	const struct unit *best = NULL;

	for (; units->name; units++) {
		if (units->name[0] && v != 0 && v % units->mult == 0 &&
		    (!best || units->mult > best->mult))
			best = units;
	}
	if (!best)
		fprintf(f, "%" PRId64, v);
	else
		fprintf(f, "%" PRId64 "%s", v / best->mult, best->name);
}

int cfg_parse_duration(const char *s, int64_t *ms)
{
	return parse_scaled(s, duration_units, ms);
}

int cfg_parse_size(const char *s, int64_t *bytes)
{
	return parse_scaled(s, size_units, bytes);
}

#define DURATION_ALLOWED \
	"a whole number with ms, s, m or h, e.g. 500ms, 30s; a bare number is seconds"

static int parse_duration(const struct opt_type *t, const char *s, void *dst,
			  char *why, size_t cap)
{
	(void)t;
	if (cfg_parse_duration(s, dst))
		return bad(why, cap, s, "a duration", DURATION_ALLOWED);
	return 0;
}

static int parse_positive_duration(const struct opt_type *t, const char *s,
				   void *dst, char *why, size_t cap)
{
	int64_t ms;

	if (parse_duration(t, s, &ms, why, cap))
		return -1;
	if (ms <= 0)
		return bad(why, cap, s, "allowed", "more than 0, e.g. 30s");
	*(int64_t *)dst = ms;
	return 0;
}

static void print_duration(const struct opt_type *t, const void *src, FILE *f)
{
	int64_t ms = *(const int64_t *)src;

	(void)t;
	if (ms == 0)
		fputs("0s", f);
	else
		print_scaled(ms, duration_units, f);
}

static int parse_size(const struct opt_type *t, const char *s, void *dst,
		      char *why, size_t cap)
{
	(void)t;
	if (cfg_parse_size(s, dst))
		return bad(why, cap, s, "a size",
			   "a whole number with KB, MB or GB, e.g. 50MB; a bare number is bytes");
	return 0;
}

static void print_size(const struct opt_type *t, const void *src, FILE *f)
{
	(void)t;
	print_scaled(*(const int64_t *)src, size_units, f);
}

static int parse_count(const struct opt_type *t, const char *s, void *dst,
		       char *why, size_t cap)
{
	static const struct unit plain[] = { { "", 1 }, { NULL, 0 } };

	(void)t;
	if (parse_scaled(s, plain, dst))
		return bad(why, cap, s, "a non-negative integer", "0, 1, 2, ...; 0 means no limit");
	return 0;
}

static void print_count(const struct opt_type *t, const void *src, FILE *f)
{
	(void)t;
	fprintf(f, "%" PRId64, *(const int64_t *)src);
}

/* ---- string types ----------------------------------------------------- */

static int set_string(void *dst, const char *s, char *why, size_t cap)
{
	char *copy = NULL;

	if (s && !(copy = strdup(s)))
		return say(why, cap, "out of memory");
	free(*(char **)dst);
	*(char **)dst = copy;
	return 0;
}

static int parse_text(const struct opt_type *t, const char *s, void *dst,
		      char *why, size_t cap)
{
	(void)t;
	if (!*s)
		return say(why, cap, "an empty value is not allowed");
	return set_string(dst, s, why, cap);
}

/* Empty means none (NULL). */
static int parse_optional_text(const struct opt_type *t, const char *s,
			       void *dst, char *why, size_t cap)
{
	(void)t;
	return set_string(dst, *s ? s : NULL, why, cap);
}

static void print_text(const struct opt_type *t, const void *src, FILE *f)
{
	const char *s = *(char *const *)src;

	(void)t;
	fputs(s ? s : "", f);
}

static int parse_slot(const struct opt_type *t, const char *s, void *dst,
		      char *why, size_t cap)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_");

	(void)t;
	if (n == 0 || n > 63 || s[n] != '\0')
		return bad(why, cap, s, "a valid replication slot name",
			   "1 to 63 lower-case letters, digits and underscores");
	return set_string(dst, s, why, cap);
}

static bool valid_port(const char *p)
{
	size_t n = strlen(p);

	if (n == 0 || n > 5 || strspn(p, "0123456789") != n)
		return false;
	long port = strtol(p, NULL, 10);
	return port >= 1 && port <= 65535;
}

/* "host:port"; a host with ':' (IPv6) must be in brackets.  A port alone
 * ("9187" or ":9187") means loopback.  Empty: none. */
static int parse_address(const struct opt_type *t, const char *s, void *dst,
			 char *why, size_t cap)
{
	const char *colon = strrchr(s, ':');

	(void)t;
	if (!*s)
		return set_string(dst, NULL, why, cap);
	if (!colon && valid_port(s))
		return set_string(dst, s, why, cap);
	if (!colon || !valid_port(colon + 1))
		goto fail;
	size_t hlen = (size_t)(colon - s);
	if (memchr(s, ':', hlen) && (s[0] != '[' || s[hlen - 1] != ']'))
		goto fail;
	return set_string(dst, s, why, cap);
fail:
	return bad(why, cap, s, "a valid address",
		   "host:port with a port from 1 to 65535, e.g. 127.0.0.1:9187, or a port alone "
		   "for loopback; empty for none");
}

/* ---- conninfo --------------------------------------------------------- */

/* One keyword = value pair of a libpq key=value conninfo. */
struct kv {
	const char *key;
	size_t keylen;
	const char *val; /* quotes included */
	size_t vallen;
};

static const char *skip_space(const char *p)
{
	while (isspace((unsigned char)*p))
		p++;
	return p;
}

/* Scans a value as libpq does: 'quoted' or bare, backslash escapes.
 * Returns the end, or NULL if a quote is not closed. */
static const char *scan_value(const char *p)
{
	bool quoted = *p == '\'';

	if (quoted)
		p++;
	for (; *p; p++) {
		if (*p == '\\' && p[1])
			p++;
		else if (quoted && *p == '\'')
			return p + 1;
		else if (!quoted && isspace((unsigned char)*p))
			return p;
	}
	return quoted ? NULL : p;
}

/* 1: a pair in *kv, *pos moved past it; 0: end; -1: malformed (no '='
 * after a keyword, or an unclosed quote), *pos left at the bad keyword. */
static int kv_next(const char **pos, struct kv *kv)
{
	const char *p = skip_space(*pos);

	if (!*p)
		return 0;
	kv->key = p;
	while (*p && *p != '=' && !isspace((unsigned char)*p))
		p++;
	kv->keylen = (size_t)(p - kv->key);
	p = skip_space(p);
	*pos = kv->key;
	if (*p != '=' || kv->keylen == 0)
		return -1;
	kv->val = skip_space(p + 1);
	if (!(p = scan_value(kv->val)))
		return -1;
	kv->vallen = (size_t)(p - kv->val);
	*pos = p;
	return 1;
}

static size_t uri_prefix(const char *s, bool any_case)
{
	static const char *const prefixes[] = { "postgresql://", "postgres://" };

	for (size_t i = 0; i < 2; i++) {
		size_t n = strlen(prefixes[i]);
		if (any_case ? !strncasecmp(s, prefixes[i], n) : !strncmp(s, prefixes[i], n))
			return n;
	}
	return 0;
}

/* Never echoes the value: it may hold a password. */
static int parse_conninfo(const struct opt_type *t, const char *s, void *dst,
			  char *why, size_t cap)
{
	const char *pos = s;
	struct kv kv;
	int rc, n = 0;

	(void)t;
	if (*s && !uri_prefix(s, false)) {
		while ((rc = kv_next(&pos, &kv)) > 0)
			n++;
		if (rc < 0)
			return say(why, cap, "the value (not shown: it may hold a password) "
				   "is not a postgresql:// URI or a key=value conninfo: "
				   "setting %d is not keyword=value or has an unclosed quote",
				   n + 1);
	}
	if (cfg_conninfo_check(s, why, cap))
		return -1;
	return set_string(dst, s, why, cap);
}

/* Bounded output for masking; always NUL-terminated. */
struct out {
	char *buf;
	size_t cap, len;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->cap == 0)
		return;
	if (n > o->cap - 1 - o->len)
		n = o->cap - 1 - o->len;
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static void mask_query(const char *q, struct out *o)
{
	while (*q) {
		size_t n = strcspn(q, "&");
		if (n > 9 && !strncasecmp(q, "password=", 9)) {
			put(o, q, 9);
			put(o, MASK, strlen(MASK));
		} else {
			put(o, q, n);
		}
		q += n;
		if (*q)
			put(o, q++, 1);
	}
}

/* postgresql://user:PASS@host/db?password=PASS.  Masks from the first ':'
 * to the LAST '@', so an unencoded '@', '/' or '?' in a password is covered
 * too (at worst more than the password is masked). */
static void mask_uri(const char *s, size_t prefix, struct out *o)
{
	const char *rest = s + prefix;
	const char *at = strrchr(rest, '@');
	const char *colon = at ? memchr(rest, ':', (size_t)(at - rest)) : NULL;
	size_t qoff;

	if (colon && colon + 1 < at) {
		put(o, s, (size_t)(colon + 1 - s));
		put(o, MASK, strlen(MASK));
		rest = at;
	} else {
		put(o, s, prefix);
	}
	qoff = strcspn(rest, "?");
	put(o, rest, qoff);
	if (rest[qoff]) {
		put(o, "?", 1);
		mask_query(rest + qoff + 1, o);
	}
}

/* host=h password='p w' ...: copies all but password values; a malformed
 * rest is masked whole. */
static void mask_kv(const char *s, struct out *o)
{
	const char *pos = s, *done = s;
	struct kv kv;
	int rc;

	while ((rc = kv_next(&pos, &kv)) > 0) {
		bool secret = kv.keylen == 8 && !strncasecmp(kv.key, "password", 8) &&
			      kv.vallen > 0 && !(kv.vallen == 2 && kv.val[0] == '\'');
		put(o, done, (size_t)((secret ? kv.val : pos) - done));
		if (secret)
			put(o, MASK, strlen(MASK));
		done = pos;
	}
	if (rc == 0) {
		put(o, done, strlen(done));
	} else {
		put(o, done, (size_t)(pos - done));
		put(o, MASK, strlen(MASK));
	}
}

void cfg_mask_conninfo(const char *conninfo, char *buf, size_t cap)
{
	struct out o = { buf, cap, 0 };
	size_t prefix;

	if (cap)
		buf[0] = '\0';
	if (!conninfo)
		return;
	if ((prefix = uri_prefix(conninfo, true)))
		mask_uri(conninfo, prefix, &o);
	else
		mask_kv(conninfo, &o);
}

static void print_conninfo(const struct opt_type *t, const void *src, FILE *f)
{
	const char *s = *(char *const *)src;
	size_t cap = s ? 2 * strlen(s) + 16 : 1;
	char *buf = malloc(cap);

	(void)t;
	if (!buf) {
		fputs(MASK, f);
		return;
	}
	cfg_mask_conninfo(s ? s : "", buf, cap);
	fputs(buf, f);
	free(buf);
}

/* ---- option tables ---------------------------------------------------- */

#define ENUM_TYPE(var, names_, first_) \
	static const struct opt_type var = { parse_enum, print_enum, names_, first_, false }
#define SCALAR_TYPE(var, parse_, print_) \
	static const struct opt_type var = { parse_, print_, NULL, 0, false }
#define STRING_TYPE(var, parse_, print_) \
	static const struct opt_type var = { parse_, print_, NULL, 0, true }

ENUM_TYPE(t_mode, mode_names, CFG_MODE_MANUAL);
ENUM_TYPE(t_conflict, conflict_names, CFG_CONFLICT_LAST_WRITE_WINS);
ENUM_TYPE(t_table_conflict, conflict_names, CFG_CONFLICT_INHERIT);
ENUM_TYPE(t_direction, direction_names, CFG_DIRECTION_BOTH);
ENUM_TYPE(t_table_direction, direction_names, CFG_DIRECTION_INHERIT);
ENUM_TYPE(t_priority, priority_names, CFG_PRIORITY_CRITICAL);
ENUM_TYPE(t_limit_action, limit_action_names, CFG_LIMIT_WARN);
ENUM_TYPE(t_log_format, log_format_names, CFG_LOG_TEXT);
SCALAR_TYPE(t_bool, parse_bool, print_bool);
SCALAR_TYPE(t_duration, parse_duration, print_duration);
SCALAR_TYPE(t_positive_duration, parse_positive_duration, print_duration);
SCALAR_TYPE(t_size, parse_size, print_size);
SCALAR_TYPE(t_count, parse_count, print_count);
STRING_TYPE(t_text, parse_text, print_text);
STRING_TYPE(t_optional_text, parse_optional_text, print_text);
STRING_TYPE(t_slot, parse_slot, print_text);
STRING_TYPE(t_address, parse_address, print_text);
STRING_TYPE(t_conninfo, parse_conninfo, print_conninfo);

#define B(field) offsetof(struct cfg, field)
#define T(field) offsetof(struct cfg_table, field)

static const struct opt bridge_opts[] = {
	{ "postgres", &t_conninfo, B(postgres), "", false },
	{ "sqlite", &t_text, B(sqlite), NULL, false },
	{ "slot", &t_slot, B(slot), "pgsqlite_bridge", false },
	{ "mode", &t_mode, B(mode), "manual", true },
	{ "interval", &t_positive_duration, B(interval_ms), "30s", true },
	{ "debounce", &t_duration, B(debounce_ms), "500ms", true },
	{ "conflict", &t_conflict, B(conflict), "last-write-wins", true },
	{ "direction", &t_direction, B(direction), "both", true },
	{ "timestamp_column", &t_text, B(timestamp_column), "updated_at", true },
	{ "storage_limit", &t_size, B(storage_limit), "0", true },
	{ "storage_limit_action", &t_limit_action, B(storage_limit_action), "warn", true },
	{ "log_format", &t_log_format, B(log_format), "text", true },
	{ "metrics", &t_address, B(metrics), "", false },
};

static const struct opt table_opts[] = {
	{ "direction", &t_table_direction, T(direction), "inherit", true },
	{ "priority", &t_priority, T(priority), "medium", true },
	{ "max_records", &t_count, T(max_records), "0", true },
	{ "order_column", &t_optional_text, T(order_column), "", true },
	{ "conflict", &t_table_conflict, T(conflict), "inherit", true },
	{ "skip", &t_bool, T(skip), "false", true },
};

#define NBRIDGE (sizeof bridge_opts / sizeof bridge_opts[0])
#define NTABLE (sizeof table_opts / sizeof table_opts[0])
_Static_assert(NBRIDGE <= MAX_OPTS && NTABLE <= MAX_OPTS, "MAX_OPTS");

static void *field(void *base, const struct opt *o)
{
	return (char *)base + o->offset;
}

static const void *cfield(const void *base, const struct opt *o)
{
	return (const char *)base + o->offset;
}

static void free_fields(const struct opt *opts, size_t n, void *base)
{
	for (size_t i = 0; i < n; i++) {
		if (opts[i].type->owns_string) {
			free(*(char **)field(base, &opts[i]));
			*(char **)field(base, &opts[i]) = NULL;
		}
	}
}

static void print_fields(const struct opt *opts, size_t n, const void *base, FILE *f)
{
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s = ", opts[i].name);
		opts[i].type->print(opts[i].type, cfield(base, &opts[i]), f);
		fputc('\n', f);
	}
}

static const struct opt *find_opt(const struct opt *opts, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(opts[i].name, name) == 0)
			return &opts[i];
	return NULL;
}

static int set_defaults(const struct opt *opts, size_t n, void *base,
			struct cfg_error *err)
{
	char why[sizeof err->msg];

	for (size_t i = 0; i < n; i++) {
		if (opts[i].def &&
		    opts[i].type->parse(opts[i].type, opts[i].def, field(base, &opts[i]),
					why, sizeof why)) {
			return say(err->msg, sizeof err->msg, "default of key '%s': %s",
				   opts[i].name, why);
		}
	}
	return 0;
}

/* ---- names, inheritance, print, free ---------------------------------- */

static const char *name_of(const char *const *names, size_t n, int v)
{
	return v >= 0 && (size_t)v < n - 1 ? names[v] : "unknown";
}

const char *cfg_mode_name(enum cfg_mode m)
{
	return name_of(mode_names, sizeof mode_names / sizeof *mode_names, (int)m);
}

const char *cfg_conflict_name(enum cfg_conflict c)
{
	return name_of(conflict_names, sizeof conflict_names / sizeof *conflict_names, (int)c);
}

const char *cfg_direction_name(enum cfg_direction d)
{
	return name_of(direction_names, sizeof direction_names / sizeof *direction_names, (int)d);
}

enum cfg_direction cfg_table_direction(const struct cfg *c, const struct cfg_table *t)
{
	return t->direction == CFG_DIRECTION_INHERIT ? c->direction : t->direction;
}

enum cfg_conflict cfg_table_conflict(const struct cfg *c, const struct cfg_table *t)
{
	return t->conflict == CFG_CONFLICT_INHERIT ? c->conflict : t->conflict;
}

void cfg_print(const struct cfg *c, FILE *f)
{
	fputs("[bridge]\n", f);
	print_fields(bridge_opts, NBRIDGE, c, f);
	for (size_t i = 0; i < c->ntables; i++) {
		fprintf(f, "\n[table %s.%s]\n", c->tables[i].schema, c->tables[i].name);
		print_fields(table_opts, NTABLE, &c->tables[i], f);
	}
}

void cfg_free(struct cfg *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->ntables; i++) {
		free(c->tables[i].schema);
		free(c->tables[i].name);
		free_fields(table_opts, NTABLE, &c->tables[i]);
	}
	free(c->tables);
	free_fields(bridge_opts, NBRIDGE, c);
	free(c->path);
	memset(c, 0, sizeof *c);
}

/* ---- loading ---------------------------------------------------------- */

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
	int seen[MAX_OPTS]; /* line each key of this section was set on */
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
	if (set_defaults(table_opts, NTABLE, t, p->err)) {
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
			    ENV_PREFIX "POSTGRES or PG* environment variables", len, max), NULL;
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

static void allowed_keys(const struct opt *opts, size_t n, char *buf, size_t cap)
{
	const char *names[MAX_OPTS + 1];

	for (size_t i = 0; i < n; i++)
		names[i] = opts[i].name;
	names[n] = NULL;
	join_names(names, buf, cap);
}

/* A key is echoed only if it looks like one: "secret@host" is more likely
 * the end of a postgres value split over two lines. */
static bool plain_name(const char *key)
{
	size_t n = strlen(key);

	return n > 0 && n <= 64 &&
	       strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

static int unknown_key(struct parse *p, const struct opt *opts, size_t n, const char *key)
{
	char list[sizeof p->err->msg];

	allowed_keys(opts, n, list, sizeof list);
	if (!plain_name(key))
		return fail(p, "unknown key in [%s], not shown as it is not a plain name "
			    "(a value split over two lines?) (allowed: %s)", p->sec_text, list);
	return fail(p, "unknown key '%s' in [%s] (allowed: %s)", key, p->sec_text, list);
}

static int set_key(struct parse *p, const struct opt *opts, size_t n, void *base,
		   const char *key, const char *value)
{
	const struct opt *o = find_opt(opts, n, key);
	char why[sizeof p->err->msg];
	size_t i;

	if (!o)
		return unknown_key(p, opts, n, key);
	i = (size_t)(o - opts);
	if (p->seen[i])
		return fail(p, "duplicate key '%s' in [%s] (first at line %d)",
			    key, p->sec_text, p->seen[i]);
	p->seen[i] = p->lineno;
	if (o->type->parse(o->type, value, field(base, o), why, sizeof why))
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
		set_key(p, bridge_opts, NBRIDGE, p->c, name, strip_hash_comment(v));
	else if (set_key(p, table_opts, NTABLE, &p->c->tables[p->table], name,
			 strip_hash_comment(v)) == 0)
		cfg__table_key_line(&p->c->tables[p->table], name, p->lineno);
	free(v);
	return 1;
}

static int read_file(struct parse *p)
{
	int rc;

	if (!(p->f = fopen(p->c->path, "r")))
		return say(p->err->msg, sizeof p->err->msg, "%s: cannot read: %s",
			   p->c->path, strerror(errno));
	rc = ini_parse_stream(read_line, p, on_key, p);
	fclose(p->f);
	free(p->line);
	if (p->failed)
		return -1;
	if (p->read_errno)
		return say(p->err->msg, sizeof p->err->msg, "%s: cannot read: %s",
			   p->c->path, strerror(p->read_errno));
	if (rc > 0) {
		p->lineno = rc;
		return fail(p, "cannot parse this line");
	}
	return rc < 0 ? fail(p, "out of memory") : 0;
}

static int apply_env(struct cfg *c, struct cfg_error *err)
{
	char var[64], why[sizeof err->msg];

	for (size_t i = 0; i < NBRIDGE; i++) {
		const struct opt *o = &bridge_opts[i];
		size_t n = strlen(ENV_PREFIX);
		const char *value;

		memcpy(var, ENV_PREFIX, n);
		for (const char *k = o->name; *k && n < sizeof var - 1; k++)
			var[n++] = (char)toupper((unsigned char)*k);
		var[n] = '\0';
		if (!(value = getenv(var)))
			continue;
		if (o->type->parse(o->type, value, field(c, o), why, sizeof why))
			return say(err->msg, sizeof err->msg, "environment %s: %s", var, why);
	}
	return 0;
}

static int check_required(const struct cfg *c, struct cfg_error *err)
{
	for (size_t i = 0; i < NBRIDGE; i++) {
		const struct opt *o = &bridge_opts[i];
		if (!o->def && !*(char *const *)cfield(c, o))
			return say(err->msg, sizeof err->msg,
				   "%s: missing required key '%s' in [bridge]", c->path, o->name);
	}
	return 0;
}

int cfg_load(const char *path, struct cfg *out, struct cfg_error *err)
{
	struct parse p = { .c = out, .err = err };

	memset(out, 0, sizeof *out);
	err->msg[0] = '\0';
	if (!(out->path = strdup(path)))
		return say(err->msg, sizeof err->msg, "%s: out of memory", path);
	if (set_defaults(bridge_opts, NBRIDGE, out, err) || read_file(&p) ||
	    apply_env(out, err) || check_required(out, err) || cfg__check_tables(out, err)) {
		cfg_free(out);
		return -1;
	}
	return 0;
}
