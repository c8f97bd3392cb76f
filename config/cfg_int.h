/* cfg_int.h: what the files of config/ share and nothing else calls: the
 * shape of the option tables, the value types, the tables themselves and
 * the message helpers. */
#ifndef PGSB_CFG_INT_H
#define PGSB_CFG_INT_H

#include "cfg.h"

#define CFG__ENV_PREFIX "PGSQLITE_BRIDGE_"
#define CFG__MAX_OPTS 16 /* keys of one section at most */

/* A value type: parses a file, environment or default string into a
 * field, prints the field back as a file would hold it. */
struct cfg_opt_type {
	int (*parse)(const struct cfg_opt_type *t, const char *s, void *dst,
		     char *why, size_t cap);
	void (*print)(const struct cfg_opt_type *t, const void *src, FILE *f);
	const char *const *names; /* enums: names by value, NULL-terminated */
	int first;                /* enums: lowest value a config may name */
	bool owns_string;         /* the field is a malloc'd char * */
};

/* One key: pgbouncer-style, the default is a string run through the same
 * parser as a file value. */
struct cfg_opt {
	const char *name;
	const struct cfg_opt_type *type;
	size_t offset;   /* into struct cfg or struct cfg_table */
	const char *def; /* NULL: no default, the key is required */
	bool reloadable; /* may change without a restart */
};

static inline void *cfg__field(void *base, const struct cfg_opt *o)
{
	return (char *)base + o->offset;
}

static inline const void *cfg__cfield(const void *base, const struct cfg_opt *o)
{
	return (const char *)base + o->offset;
}

/* cfg_values.c: the value types and the helpers of their messages. */
/* vsnprintf into buf (cut to fit, never overflowing); returns -1. */
int cfg__say(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "a, b, c" from a NULL-terminated list. */
void cfg__join_names(const char *const *names, char *buf, size_t cap);
/* Replaces the char * at dst by a copy of s (NULL: none).  0 or -1 with why. */
int cfg__set_string(void *dst, const char *s, char *why, size_t cap);
int cfg__parse_enum(const struct cfg_opt_type *t, const char *s, void *dst, char *why,
		    size_t cap);
void cfg__print_enum(const struct cfg_opt_type *t, const void *src, FILE *f);
extern const struct cfg_opt_type cfg__t_bool, cfg__t_duration, cfg__t_positive_duration,
	cfg__t_size, cfg__t_count, cfg__t_text, cfg__t_optional_text, cfg__t_slot,
	cfg__t_address;

/* cfg_postgres.c: the `postgres` value, never echoed, printed masked. */
extern const struct cfg_opt_type cfg__t_conninfo;

/* cfg_opts.c: the keys of [bridge] and of a [table] section. */
extern const struct cfg_opt cfg__bridge_opts[];
extern const size_t cfg__nbridge;
extern const struct cfg_opt cfg__table_opts[];
extern const size_t cfg__ntable;
const struct cfg_opt *cfg__find_opt(const struct cfg_opt *opts, size_t n, const char *name);
/* Sets every key that has a default; 0 or -1 with err->msg. */
int cfg__set_defaults(const struct cfg_opt *opts, size_t n, void *base, struct cfg_error *err);

/* cfg_file.c: reads the INI file into c (c->path), over its defaults.
 * 0 or -1 with err->msg naming file and line. */
int cfg__read_file(struct cfg *c, struct cfg_error *err);

#endif
