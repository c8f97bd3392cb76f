/* cfg.h: the bridge's configuration: an INI file (read with inih) plus
 * PGSQLITE_BRIDGE_* environment overrides, turned into one struct cfg.
 * Every error names the file (or variable), the line, the key and what is
 * allowed.  No logging, no exit: the caller decides. */
#ifndef PGSB_CFG_H
#define PGSB_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum cfg_mode {
	CFG_MODE_MANUAL,       /* only on `sync` / SIGUSR1 */
	CFG_MODE_AUTO,         /* streamed, applied after `debounce` of quiet */
	CFG_MODE_PERIODIC,     /* every `interval` */
	CFG_MODE_REALTIME,     /* each transaction as it arrives */
	CFG_MODE_ON_RECONNECT, /* at start and whenever the connection comes back */
};

enum cfg_conflict {
	CFG_CONFLICT_INHERIT, /* per-table only: use the [bridge] value */
	CFG_CONFLICT_LAST_WRITE_WINS,
	CFG_CONFLICT_LOCAL_WINS,
	CFG_CONFLICT_REMOTE_WINS,
	CFG_CONFLICT_MERGE,
	CFG_CONFLICT_KEEP_BOTH,
};

enum cfg_direction {
	CFG_DIRECTION_INHERIT, /* per-table only: use the [bridge] value */
	CFG_DIRECTION_BOTH,
	CFG_DIRECTION_PULL,
	CFG_DIRECTION_PUSH,
};

enum cfg_priority {
	CFG_PRIORITY_CRITICAL,
	CFG_PRIORITY_HIGH,
	CFG_PRIORITY_MEDIUM, /* default */
	CFG_PRIORITY_LOW,
};

enum cfg_limit_action {
	CFG_LIMIT_WARN,
	CFG_LIMIT_ERROR,
	CFG_LIMIT_PRUNE,
};

enum cfg_log_format {
	CFG_LOG_TEXT,
	CFG_LOG_JSON,
};

/* One [table schema.name] section. */
struct cfg_table {
	char *schema;                /* "public" when the section names no schema */
	char *name;
	enum cfg_direction direction;
	enum cfg_priority priority;
	int64_t max_records;         /* 0 = no limit */
	char *order_column;          /* NULL = none */
	enum cfg_conflict conflict;
	bool skip;
	int line;                    /* line of the section header */
	int max_records_line;        /* line of max_records, 0 = not set */
	int order_column_line;       /* line of order_column, 0 = not set */
};

struct cfg {
	char *path;                  /* file the config came from */
	char *postgres;              /* conninfo or URI; "" = libpq's defaults */
	char *sqlite;                /* path of the SQLite file */
	char *slot;                  /* slot and origin name */
	enum cfg_mode mode;
	int64_t interval_ms;
	int64_t debounce_ms;
	enum cfg_conflict conflict;
	enum cfg_direction direction;
	char *timestamp_column;
	int64_t storage_limit;       /* bytes; 0 = none */
	enum cfg_limit_action storage_limit_action;
	enum cfg_log_format log_format;
	char *metrics;               /* "host:port" or NULL */
	struct cfg_table *tables;
	size_t ntables;
};

struct cfg_error {
	char msg[512];
};

/* Reads path (must exist), applies PGSQLITE_BRIDGE_* overrides from the
 * environment, validates.  Returns 0, or -1 with err->msg like
 *   "app.conf:7: key 'mode' in [bridge]: 'fast' is not allowed (allowed: manual, auto, periodic, realtime, on-reconnect)".
 * On failure *out holds nothing to free. */
int cfg_load(const char *path, struct cfg *out, struct cfg_error *err)
	__attribute__((warn_unused_result));

void cfg_free(struct cfg *c);

/* cfg_limits.c (internal): notes the line of a [table] key; checks that
 * max_records comes with order_column.  0 or -1 with err->msg. */
void cfg__table_key_line(struct cfg_table *t, const char *key, int line);
int cfg__check_tables(const struct cfg *c, struct cfg_error *err);

/* "500ms", "30s", "5m", "2h" (a bare number is seconds) -> milliseconds. 0 or -1. */
int cfg_parse_duration(const char *s, int64_t *ms) __attribute__((warn_unused_result));

/* "512", "64KB", "50MB", "2GB" (a bare number is bytes; 1KB = 1024) -> bytes. 0 or -1. */
int cfg_parse_size(const char *s, int64_t *bytes) __attribute__((warn_unused_result));

/* Effective direction / conflict strategy of a table (inheritance resolved). */
enum cfg_direction cfg_table_direction(const struct cfg *c, const struct cfg_table *t);
enum cfg_conflict cfg_table_conflict(const struct cfg *c, const struct cfg_table *t);

/* Names for messages and status ("realtime", "last-write-wins", ...). */
const char *cfg_mode_name(enum cfg_mode m);
const char *cfg_conflict_name(enum cfg_conflict c);
const char *cfg_direction_name(enum cfg_direction d);

/* Prints the effective configuration as INI, the password masked. */
void cfg_print(const struct cfg *c, FILE *f);

/* Copies conninfo into buf with any password replaced by "********"
 * (both URI and key=value forms). */
void cfg_mask_conninfo(const char *conninfo, char *buf, size_t cap);

#endif
