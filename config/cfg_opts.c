/* cfg_opts.c: the option tables (every key of [bridge] and of a [table]
 * section: its type, field, default and whether it may be reloaded), the
 * names of enum values, the inheritance of table settings, and printing
 * and freeing a config by those tables. */
#include "cfg_int.h"

#include <stdlib.h>
#include <string.h>

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

/* ---- option tables ---------------------------------------------------- */

#define ENUM_TYPE(var, names_, first_) \
	static const struct cfg_opt_type var = { cfg__parse_enum, cfg__print_enum, names_, first_, \
						 false }

ENUM_TYPE(t_mode, mode_names, CFG_MODE_MANUAL);
ENUM_TYPE(t_conflict, conflict_names, CFG_CONFLICT_LAST_WRITE_WINS);
ENUM_TYPE(t_table_conflict, conflict_names, CFG_CONFLICT_INHERIT);
ENUM_TYPE(t_direction, direction_names, CFG_DIRECTION_BOTH);
ENUM_TYPE(t_table_direction, direction_names, CFG_DIRECTION_INHERIT);
ENUM_TYPE(t_priority, priority_names, CFG_PRIORITY_CRITICAL);
ENUM_TYPE(t_limit_action, limit_action_names, CFG_LIMIT_WARN);
ENUM_TYPE(t_log_format, log_format_names, CFG_LOG_TEXT);

#define B(field) offsetof(struct cfg, field)
#define T(field) offsetof(struct cfg_table, field)

const struct cfg_opt cfg__bridge_opts[] = {
	{ "postgres", &cfg__t_conninfo, B(postgres), "", false },
	{ "sqlite", &cfg__t_text, B(sqlite), NULL, false },
	{ "slot", &cfg__t_slot, B(slot), "pgsqlite_bridge", false },
	{ "mode", &t_mode, B(mode), "manual", true },
	{ "interval", &cfg__t_positive_duration, B(interval_ms), "30s", true },
	{ "debounce", &cfg__t_duration, B(debounce_ms), "500ms", true },
	{ "conflict", &t_conflict, B(conflict), "last-write-wins", true },
	{ "direction", &t_direction, B(direction), "both", true },
	{ "timestamp_column", &cfg__t_text, B(timestamp_column), "updated_at", true },
	{ "storage_limit", &cfg__t_size, B(storage_limit), "0", true },
	{ "storage_limit_action", &t_limit_action, B(storage_limit_action), "warn", true },
	{ "log_format", &t_log_format, B(log_format), "text", true },
	{ "metrics", &cfg__t_address, B(metrics), "", false },
};

const struct cfg_opt cfg__table_opts[] = {
	{ "direction", &t_table_direction, T(direction), "inherit", true },
	{ "priority", &t_priority, T(priority), "medium", true },
	{ "max_records", &cfg__t_count, T(max_records), "0", true },
	{ "order_column", &cfg__t_optional_text, T(order_column), "", true },
	{ "conflict", &t_table_conflict, T(conflict), "inherit", true },
	{ "skip", &cfg__t_bool, T(skip), "false", true },
};

#define NBRIDGE (sizeof cfg__bridge_opts / sizeof cfg__bridge_opts[0])
#define NTABLE (sizeof cfg__table_opts / sizeof cfg__table_opts[0])
_Static_assert(NBRIDGE <= CFG__MAX_OPTS && NTABLE <= CFG__MAX_OPTS, "CFG__MAX_OPTS");
const size_t cfg__nbridge = NBRIDGE;
const size_t cfg__ntable = NTABLE;

static void free_fields(const struct cfg_opt *opts, size_t n, void *base)
{
	for (size_t i = 0; i < n; i++) {
		if (opts[i].type->owns_string) {
			free(*(char **)cfg__field(base, &opts[i]));
			*(char **)cfg__field(base, &opts[i]) = NULL;
		}
	}
}

static void print_fields(const struct cfg_opt *opts, size_t n, const void *base, FILE *f)
{
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s = ", opts[i].name);
		opts[i].type->print(opts[i].type, cfg__cfield(base, &opts[i]), f);
		fputc('\n', f);
	}
}

const struct cfg_opt *cfg__find_opt(const struct cfg_opt *opts, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(opts[i].name, name) == 0)
			return &opts[i];
	return NULL;
}

int cfg__set_defaults(const struct cfg_opt *opts, size_t n, void *base, struct cfg_error *err)
{
	char why[sizeof err->msg];

	for (size_t i = 0; i < n; i++) {
		if (opts[i].def &&
		    opts[i].type->parse(opts[i].type, opts[i].def, cfg__field(base, &opts[i]),
					why, sizeof why)) {
			return cfg__say(err->msg, sizeof err->msg, "default of key '%s': %s",
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
	print_fields(cfg__bridge_opts, NBRIDGE, c, f);
	for (size_t i = 0; i < c->ntables; i++) {
		fprintf(f, "\n[table %s.%s]\n", c->tables[i].schema, c->tables[i].name);
		print_fields(cfg__table_opts, NTABLE, &c->tables[i], f);
	}
}

void cfg_free(struct cfg *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->ntables; i++) {
		free(c->tables[i].schema);
		free(c->tables[i].name);
		free_fields(cfg__table_opts, NTABLE, &c->tables[i]);
	}
	free(c->tables);
	free_fields(cfg__bridge_opts, NBRIDGE, c);
	free(c->path);
	memset(c, 0, sizeof *c);
}
