/* cfg_postgres.c: the value type of the `postgres` key: a libpq conninfo
 * (URI or key=value), checked without ever echoing it (it may hold a
 * password), and printed with any password masked (cfg_mask_conninfo,
 * also used for status and logs). */
#include "cfg_int.h"
#include "conninfo.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MASK "********"

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
static int parse_conninfo(const struct cfg_opt_type *t, const char *s, void *dst,
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
			return cfg__say(why, cap, "the value (not shown: it may hold a password) "
					"is not a postgresql:// URI or a key=value conninfo: "
					"setting %d is not keyword=value or has an unclosed quote",
					n + 1);
	}
	if (cfg_conninfo_check(s, why, cap))
		return -1;
	return cfg__set_string(dst, s, why, cap);
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

static void print_conninfo(const struct cfg_opt_type *t, const void *src, FILE *f)
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

const struct cfg_opt_type cfg__t_conninfo = { parse_conninfo, print_conninfo, NULL, 0, true };
