/* log.c: writes log lines to stderr with a UTC timestamp and a level, as
 * plain text or as one JSON object per line. */
#include "log.h"
#include "progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <cJSON.h>

static enum log_level log_min = LOG_INFO;
static bool log_json;

static const char *const level_names[] = {"debug", "info", "warning", "error"};

void log_setup(enum log_level min, bool json)
{
	log_min = min;
	log_json = json;
}

bool log_enabled(enum log_level level)
{
	return level >= log_min;
}

void log_iso_time(char *buf, size_t cap)
{
	struct timeval tv;
	struct tm tm;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, cap - n, ".%03dZ", (int)(tv.tv_usec / 1000));
}

static void log_write_json(const char *when, enum log_level level, const char *text)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "time", when);
	cJSON_AddStringToObject(o, "level", level_names[level]);
	cJSON_AddStringToObject(o, "message", text);
	char *s = cJSON_PrintUnformatted(o);
	if (s)
		fprintf(stderr, "%s\n", s);
	cJSON_free(s);
	cJSON_Delete(o);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char text[2048], when[40];
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	log_iso_time(when, sizeof when);
	progress_clear_line(); /* a bar on the terminal: the line takes its place */
	if (log_json)
		log_write_json(when, level, text);
	else
		fprintf(stderr, "%s %s: %s\n", when, level_names[level], text);
}
