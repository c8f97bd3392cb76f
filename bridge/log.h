/* log.h: the bridge's log lines on stderr, as text or JSON, PostgreSQL's
 * message style (lower case, no final period, LSNs as %X/%X). */
#ifndef PGSB_LOG_H
#define PGSB_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Set once at start: minimum level (PGSQLITE_BRIDGE_LOG_LEVEL) and format. */
void log_setup(enum log_level min, bool json);
bool log_enabled(enum log_level level);
/* Now, UTC, ISO-8601 with milliseconds: "2026-11-24T21:40:02.113Z". */
void log_iso_time(char *buf, size_t cap);
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...) do { if (log_enabled(LOG_INFO)) log_msg(LOG_INFO, __VA_ARGS__); } while (0)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
