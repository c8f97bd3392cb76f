/* cfg_values.c: the value types of the config's keys (enums, booleans,
 * durations, sizes, counts, text, slot names, addresses): each parses a
 * file, environment or default string and prints the value back; and the
 * helpers their messages share. */
#include "cfg_int.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* vsnprintf: messages are cut to fit, never overflow. */
int cfg__say(char *buf, size_t cap, const char *fmt, ...)
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
	return cfg__say(why, cap, "'%s' is not %s (allowed: %s)", s, what, allowed);
}

void cfg__join_names(const char *const *names, char *buf, size_t cap)
{
	size_t len = 0;

	buf[0] = '\0';
	for (; *names && len < cap; names++) {
		int n = snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", *names);
		len += n > 0 ? (size_t)n : 0;
	}
}

int cfg__parse_enum(const struct cfg_opt_type *t, const char *s, void *dst,
		    char *why, size_t cap)
{
	char list[256];

	for (int i = t->first; t->names[i]; i++) {
		if (strcmp(s, t->names[i]) == 0) {
			*(int *)dst = i;
			return 0;
		}
	}
	cfg__join_names(t->names + t->first, list, sizeof list);
	return bad(why, cap, s, "allowed", list);
}

void cfg__print_enum(const struct cfg_opt_type *t, const void *src, FILE *f)
{
	fputs(t->names[*(const int *)src], f);
}

static int parse_bool(const struct cfg_opt_type *t, const char *s, void *dst,
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

static void print_bool(const struct cfg_opt_type *t, const void *src, FILE *f)
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

static int parse_duration(const struct cfg_opt_type *t, const char *s, void *dst,
			  char *why, size_t cap)
{
	(void)t;
	if (cfg_parse_duration(s, dst))
		return bad(why, cap, s, "a duration", DURATION_ALLOWED);
	return 0;
}

static int parse_positive_duration(const struct cfg_opt_type *t, const char *s,
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

static void print_duration(const struct cfg_opt_type *t, const void *src, FILE *f)
{
	int64_t ms = *(const int64_t *)src;

	(void)t;
	if (ms == 0)
		fputs("0s", f);
	else
		print_scaled(ms, duration_units, f);
}

static int parse_size(const struct cfg_opt_type *t, const char *s, void *dst,
		      char *why, size_t cap)
{
	(void)t;
	if (cfg_parse_size(s, dst))
		return bad(why, cap, s, "a size",
			   "a whole number with KB, MB or GB, e.g. 50MB; a bare number is bytes");
	return 0;
}

static void print_size(const struct cfg_opt_type *t, const void *src, FILE *f)
{
	(void)t;
	print_scaled(*(const int64_t *)src, size_units, f);
}

static int parse_count(const struct cfg_opt_type *t, const char *s, void *dst,
		       char *why, size_t cap)
{
	static const struct unit plain[] = { { "", 1 }, { NULL, 0 } };

	(void)t;
	if (parse_scaled(s, plain, dst))
		return bad(why, cap, s, "a non-negative integer", "0, 1, 2, ...; 0 means no limit");
	return 0;
}

static void print_count(const struct cfg_opt_type *t, const void *src, FILE *f)
{
	(void)t;
	fprintf(f, "%" PRId64, *(const int64_t *)src);
}

/* ---- string types ----------------------------------------------------- */

int cfg__set_string(void *dst, const char *s, char *why, size_t cap)
{
	char *copy = NULL;

	if (s && !(copy = strdup(s)))
		return cfg__say(why, cap, "out of memory");
	free(*(char **)dst);
	*(char **)dst = copy;
	return 0;
}

static int parse_text(const struct cfg_opt_type *t, const char *s, void *dst,
		      char *why, size_t cap)
{
	(void)t;
	if (!*s)
		return cfg__say(why, cap, "an empty value is not allowed");
	return cfg__set_string(dst, s, why, cap);
}

/* Empty means none (NULL). */
static int parse_optional_text(const struct cfg_opt_type *t, const char *s,
			       void *dst, char *why, size_t cap)
{
	(void)t;
	return cfg__set_string(dst, *s ? s : NULL, why, cap);
}

static void print_text(const struct cfg_opt_type *t, const void *src, FILE *f)
{
	const char *s = *(char *const *)src;

	(void)t;
	fputs(s ? s : "", f);
}

static int parse_slot(const struct cfg_opt_type *t, const char *s, void *dst,
		      char *why, size_t cap)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_");

	(void)t;
	if (n == 0 || n > 63 || s[n] != '\0')
		return bad(why, cap, s, "a valid replication slot name",
			   "1 to 63 lower-case letters, digits and underscores");
	return cfg__set_string(dst, s, why, cap);
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
static int parse_address(const struct cfg_opt_type *t, const char *s, void *dst,
			 char *why, size_t cap)
{
	const char *colon = strrchr(s, ':');

	(void)t;
	if (!*s)
		return cfg__set_string(dst, NULL, why, cap);
	if (!colon && valid_port(s))
		return cfg__set_string(dst, s, why, cap);
	if (!colon || !valid_port(colon + 1))
		goto fail;
	size_t hlen = (size_t)(colon - s);
	if (memchr(s, ':', hlen) && (s[0] != '[' || s[hlen - 1] != ']'))
		goto fail;
	return cfg__set_string(dst, s, why, cap);
fail:
	return bad(why, cap, s, "a valid address",
		   "host:port with a port from 1 to 65535, e.g. 127.0.0.1:9187, or a port alone "
		   "for loopback; empty for none");
}

#define SCALAR_TYPE(var, parse_, print_) \
	const struct cfg_opt_type var = { parse_, print_, NULL, 0, false }
#define STRING_TYPE(var, parse_, print_) \
	const struct cfg_opt_type var = { parse_, print_, NULL, 0, true }

SCALAR_TYPE(cfg__t_bool, parse_bool, print_bool);
SCALAR_TYPE(cfg__t_duration, parse_duration, print_duration);
SCALAR_TYPE(cfg__t_positive_duration, parse_positive_duration, print_duration);
SCALAR_TYPE(cfg__t_size, parse_size, print_size);
SCALAR_TYPE(cfg__t_count, parse_count, print_count);
STRING_TYPE(cfg__t_text, parse_text, print_text);
STRING_TYPE(cfg__t_optional_text, parse_optional_text, print_text);
STRING_TYPE(cfg__t_slot, parse_slot, print_text);
STRING_TYPE(cfg__t_address, parse_address, print_text);
