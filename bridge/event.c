/* event.c: builds the bridge's events (sync, conflict, offline, online,
 * error, progress) as one-line JSON objects with "event" and "time", and
 * hands them to the registered callback (by default: print on stdout). */
#include <stdio.h>

#include <cJSON.h>

#include "br.h"
#include "log.h"
#include "progress.h"

static cJSON *event_new(const char *event)
{
	char when[40];
	cJSON *o = cJSON_CreateObject();

	log_iso_time(when, sizeof when);
	cJSON_AddStringToObject(o, "event", event);
	cJSON_AddStringToObject(o, "time", when);
	return o;
}

/* Serialises o, delivers it, frees it. */
static void event_deliver(struct pgsb *b, const char *event, cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);

	if (s && b->event_fn) {
		pthread_mutex_lock(&b->event_mu); /* one line at a time, from either thread */
		b->event_fn(event, s, b->event_arg);
		pthread_mutex_unlock(&b->event_mu);
	}
	cJSON_free(s);
	cJSON_Delete(o);
}

void ev_print_default(const char *event, const char *json, void *arg)
{
	(void)event;
	(void)arg;
	progress_clear_line(); /* stdout on the bar's terminal: the line takes its place */
	fprintf(stdout, "%s\n", json);
	fflush(stdout);
}

void ev_emit_sync(struct pgsb *b, const char *direction, uint64_t rows,
                  uint64_t xacts, int64_t duration_ms, uint64_t lsn)
{
	char lsn_text[32];
	cJSON *o = event_new("sync");

	dec_format_lsn(lsn, lsn_text, sizeof lsn_text);
	cJSON_AddStringToObject(o, "direction", direction);
	cJSON_AddNumberToObject(o, "rows", (double)rows);
	cJSON_AddNumberToObject(o, "transactions", (double)xacts);
	cJSON_AddNumberToObject(o, "duration_ms", (double)duration_ms);
	cJSON_AddStringToObject(o, "lsn", lsn_text);
	event_deliver(b, "sync", o);
}

void ev_emit_simple(struct pgsb *b, const char *event)
{
	event_deliver(b, event, event_new(event));
}

void ev_emit_error(struct pgsb *b, const char *message, bool retrying)
{
	cJSON *o = event_new("error");

	cJSON_AddStringToObject(o, "message", message);
	cJSON_AddBoolToObject(o, "retrying", retrying);
	event_deliver(b, "error", o);
}

void ev_emit_progress(struct pgsb *b, const char *phase, int64_t done, int64_t total)
{
	cJSON *o = event_new("progress");

	cJSON_AddStringToObject(o, "phase", phase);
	cJSON_AddNumberToObject(o, "done", (double)done);
	cJSON_AddNumberToObject(o, "total", (double)total);
	event_deliver(b, "progress", o);
	progress_draw(phase, done, total); /* on a terminal only */
}
