/* it_http.c: see it_http.h. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "it_http.h"

int it_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	int s = socket(AF_INET, SOCK_STREAM, 0), port = 0;

	if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
	    getsockname(s, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (s >= 0)
		close(s);
	return port;
}

static int connect_local(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct timeval tv = {5, 0};
	int s = socket(AF_INET, SOCK_STREAM, 0);

	if (s < 0)
		return -1;
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (connect(s, (struct sockaddr *)&a, sizeof a)) {
		close(s);
		return -1;
	}
	return s;
}

int it_http_get(int port, const char *path, char **body)
{
	char req[512], *buf = NULL;
	size_t len = 0, cap = 0;
	int s = connect_local(port), status = 0;

	*body = NULL;
	if (s < 0)
		return 0;
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
	if (write(s, req, (size_t)n) != n) {
		close(s);
		return 0;
	}
	for (;;) {
		if (cap - len < 4096 && !(buf = realloc(buf, cap = cap * 2 + 8192)))
			break;
		ssize_t r = read(s, buf + len, cap - len - 1);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(s);
	if (!buf)
		return 0;
	buf[len] = '\0';
	char *sep = strstr(buf, "\r\n\r\n");
	if (sep && sscanf(buf, "HTTP/1.%*d %d", &status) == 1)
		*body = strdup(sep + 4);
	free(buf);
	return *body ? status : 0;
}

/* ---- Prometheus text ---- */

static const char *metric_name(const char *p)
{
	if (!isalpha((unsigned char)*p) && *p != '_' && *p != ':')
		return NULL;
	while (isalnum((unsigned char)*p) || *p == '_' || *p == ':')
		p++;
	return p;
}

/* {name="value",...}: returns the end, or NULL. */
static const char *labels(const char *p)
{
	if (*p != '{')
		return p;
	for (p++; *p != '}';) {
		if (!(p = metric_name(p)) || *p++ != '=' || *p++ != '"')
			return NULL;
		while (*p && *p != '"' && *p != '\n')
			p += *p == '\\' ? 2 : 1;
		if (*p++ != '"')
			return NULL;
		if (*p == ',')
			p++;
		else if (*p != '}')
			return NULL;
	}
	return p + 1;
}

/* Was "# <kind> <name> " seen in text before line? */
static bool declared(const char *text, const char *line, const char *kind, const char *name, size_t n)
{
	char want[300];
	snprintf(want, sizeof want, "# %s %.*s ", kind, (int)n, name);
	const char *at = strstr(text, want);
	return at && at < line;
}

static const char *check_sample(const char *text, const char *line, const char *end)
{
	const char *p = metric_name(line);
	if (!p)
		return "a sample line does not start with a metric name";
	size_t n = (size_t)(p - line);
	if (!declared(text, line, "HELP", line, n) || !declared(text, line, "TYPE", line, n))
		return "a metric without HELP and TYPE before it";
	if (!(p = labels(p)) || *p++ != ' ')
		return "bad labels, or no space before the value";
	char *vend;
	if (isspace((unsigned char)*p))
		return "more than one space before the value";
	strtod(p, &vend);
	if (vend == p || vend != end)
		return "the value is not a number ending the line";
	return NULL;
}

/* Does the text from `from` hold the line start..end once more? */
static bool repeated(const char *from, const char *start, const char *end)
{
	size_t n = (size_t)(end - start);
	for (const char *p = from; (p = strstr(p, "\n")) != NULL; p++)
		if (!strncmp(p + 1, start, n) && (p[1 + n] == '\n' || p[1 + n] == ' ') && p + 1 != start)
			return true;
	return false;
}

/* "# HELP name text" or "# TYPE name type", each once per name, with a
 * type Prometheus knows. */
static const char *check_comment(const char *line, const char *end)
{
	const char *name = line + 7, *p = metric_name(name);
	if (!p || *p != ' ')
		return "a HELP or TYPE line without a metric name";
	if (repeated(line, line, p))
		return "a metric with two HELP or two TYPE lines";
	if (line[2] == 'T') {
		static const char *types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
		size_t n = (size_t)(end - p - 1);
		for (size_t i = 0; i < sizeof types / sizeof *types; i++)
			if (strlen(types[i]) == n && !strncmp(p + 1, types[i], n))
				return NULL;
		return "a TYPE that is not counter, gauge, histogram, summary or untyped";
	}
	return NULL;
}

const char *it_prom_check(const char *text)
{
	int samples = 0;

	for (const char *line = text; *line;) {
		const char *end = strchr(line, '\n');
		if (!end)
			return "the last line has no newline";
		if (line[0] == '#') {
			if (strncmp(line, "# HELP ", 7) && strncmp(line, "# TYPE ", 7))
				return "a comment that is neither HELP nor TYPE";
			const char *why = check_comment(line, end);
			if (why)
				return why;
		} else if (end > line) {
			const char *why = check_sample(text, line, end);
			if (why)
				return why;
			const char *sp = line;
			while (*sp != ' ')
				sp += *sp == '"' ? strcspn(sp + 1, "\"") + 2 : 1; /* labels may hold spaces */
			if (repeated(line, line, sp))
				return "a series sampled twice";
			samples++;
		}
		line = end + 1;
	}
	return samples ? NULL : "no samples";
}

double it_prom_value(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL)
		if (!strncmp(line, series, n) && line[n] == ' ')
			return strtod(line + n + 1, NULL);
	return -1;
}
