/* it_event.c: the strict reader of the bridge's JSON event lines declared
 * in it_event.h. */
#include "it_event.h"
#include "it.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool is_type(const cJSON *o, const char *key, int (*pred)(const cJSON *))
{
	return pred(cJSON_GetObjectItemCaseSensitive(o, key)) != 0;
}

/* 2026-11-28T09:27:13.123Z or with an offset: the date and time parts. */
static bool iso_time(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	for (size_t i = 0; i < sizeof shape - 1; i++) {
		char want = shape[i];
		if (s[i] == '\0' || (want == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != want))
			return false;
	}
	return true;
}

/* NULL if o is a valid event, else what is wrong with it. */
static const char *event_problem(const cJSON *o)
{
	if (!cJSON_IsObject(o))
		return "not a JSON object";
	const cJSON *ev = cJSON_GetObjectItemCaseSensitive(o, "event");
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "time");
	if (!cJSON_IsString(ev))
		return "no string \"event\"";
	if (!cJSON_IsString(t) || !iso_time(t->valuestring))
		return "no ISO-8601 \"time\"";
	const char *k = ev->valuestring;
	if (!strcmp(k, "sync")) {
		const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "direction");
		if (!cJSON_IsString(d) || (strcmp(d->valuestring, "pull") && strcmp(d->valuestring, "push")))
			return "sync without direction pull or push";
		if (!is_type(o, "rows", cJSON_IsNumber) || !is_type(o, "duration_ms", cJSON_IsNumber))
			return "sync without numeric rows and duration_ms";
	} else if (!strcmp(k, "conflict")) {
		if (!is_type(o, "table", cJSON_IsString) || !cJSON_GetObjectItemCaseSensitive(o, "pk") ||
		    !is_type(o, "strategy", cJSON_IsString) || !is_type(o, "resolution", cJSON_IsString))
			return "conflict without table, pk, strategy and resolution";
	} else if (!strcmp(k, "error")) {
		if (!is_type(o, "message", cJSON_IsString) || !is_type(o, "retrying", cJSON_IsBool))
			return "error without a string message and a boolean retrying";
	} else if (!strcmp(k, "progress")) {
		const cJSON *done = cJSON_GetObjectItemCaseSensitive(o, "done");
		const cJSON *total = cJSON_GetObjectItemCaseSensitive(o, "total");
		if (!is_type(o, "phase", cJSON_IsString) || !cJSON_IsNumber(done) || !cJSON_IsNumber(total))
			return "progress without phase, done and total";
		if (done->valuedouble < 0 || done->valuedouble > total->valuedouble)
			return "progress with done outside 0..total";
	} else if (strcmp(k, "online") && strcmp(k, "offline")) {
		return "an unknown event kind";
	}
	return NULL;
}

cJSON *it_events_parse(const char *out)
{
	cJSON *all = cJSON_CreateArray();
	const char *p = out;
	int lineno = 0;

	while (*p) {
		const char *nl = strchr(p, '\n');
		cr_assert(nl, "stdout line %d is not ended by a newline: %s", lineno + 1, p);
		char *line = strndup(p, (size_t)(nl - p));
		lineno++;
		cJSON *o = cJSON_ParseWithOpts(line, NULL, true);
		const char *why = o ? event_problem(o) : "not JSON";
		cr_assert_null(why, "stdout line %d is no event (%s): %s", lineno, why, line);
		cJSON_AddItemToArray(all, o);
		free(line);
		p = nl + 1;
	}
	return all;
}

static bool of_kind(const cJSON *o, const char *kind)
{
	return !kind || !strcmp(cJSON_GetObjectItemCaseSensitive(o, "event")->valuestring, kind);
}

int it_events_count(const char *out, const char *kind)
{
	cJSON *all = it_events_parse(out);
	int n = 0;
	const cJSON *o;
	cJSON_ArrayForEach(o, all)
		n += of_kind(o, kind);
	cJSON_Delete(all);
	return n;
}

const cJSON *it_event_find(const cJSON *events, const char *kind, const char *key, const char *value)
{
	const cJSON *o;
	cJSON_ArrayForEach(o, events) {
		if (!of_kind(o, kind))
			continue;
		if (!key)
			return o;
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
		if (cJSON_IsString(v) && (!value || !strcmp(v->valuestring, value)))
			return o;
	}
	return NULL;
}

double it_events_sum(const cJSON *events, const char *kind, const char *direction, const char *key)
{
	double sum = 0;
	const cJSON *o;
	cJSON_ArrayForEach(o, events) {
		const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "direction");
		if (!of_kind(o, kind) || (direction && (!cJSON_IsString(d) || strcmp(d->valuestring, direction))))
			continue;
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
		if (cJSON_IsNumber(v))
			sum += v->valuedouble;
	}
	return sum;
}

bool it_wait_events(struct it_env *e, const char *kind, int n, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 100) {
		if (it_events_count(it_bridge_stdout(e), kind) >= n)
			return true;
		it_sleep_ms(100);
	}
	return false;
}
