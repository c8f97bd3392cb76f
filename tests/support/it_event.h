/* it_event.h: the bridge's stdout read as what it promises to be, one JSON
 * event per line: every line checked strictly (an object with a known
 * "event", an ISO-8601 "time" and the fields of its kind), then counted
 * and searched by kind. */
#ifndef PGSB_IT_EVENT_H
#define PGSB_IT_EVENT_H

#include <cJSON.h>
#include <stdbool.h>

/* Parses every line of out; fails the test on a line that is not a valid
 * event.  Returns an array of the events (the caller cJSON_Deletes it). */
cJSON *it_events_parse(const char *out);
/* How many events of kind (NULL: all) out holds; checks every line. */
int it_events_count(const char *out, const char *kind);
struct it_env;
/* Polls e's background bridge's stdout until it holds n events of kind
 * (every 100 ms, up to timeout_ms). */
bool it_wait_events(struct it_env *e, const char *kind, int n, int timeout_ms);
/* The first event of kind whose string field key equals value (value NULL:
 * the first of kind), from events; NULL if none.  Owned by events. */
const cJSON *it_event_find(const cJSON *events, const char *kind, const char *key, const char *value);
/* The sum of numeric field key over the events of kind whose "direction"
 * is direction (NULL: any). */
double it_events_sum(const cJSON *events, const char *kind, const char *direction, const char *key);

#endif
