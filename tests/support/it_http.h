/* it_http.h: a plain-socket HTTP GET for the tests of the metrics endpoint
 * (no HTTP library on the test side), a free local port, and a checker of
 * the Prometheus text exposition format. */
#ifndef PGSB_IT_HTTP_H
#define PGSB_IT_HTTP_H

#include <stdbool.h>
#include <stddef.h>

/* A TCP port free on 127.0.0.1 right now (bound to port 0, then closed). */
int it_free_port(void);
/* GET path from 127.0.0.1:port: the status (0 if no answer) and the body
 * (malloc'd, the caller frees; NULL if no answer). */
int it_http_get(int port, const char *path, char **body);
/* NULL if text is valid Prometheus text (every sample line
 * `name{labels} value`, each metric with its HELP and TYPE first); else
 * what is wrong (static). */
const char *it_prom_check(const char *text);
/* The value of the sample line that starts with `series ` (a name with its
 * labels, exactly as printed); -1 if absent. */
double it_prom_value(const char *text, const char *series);

#endif
