/* metrics_http.c: the HTTP endpoint of `metrics = host:port`: GET /metrics
 * (Prometheus text) and GET /healthz, served by libmicrohttpd on the
 * bridge's own libev loop.  MHD runs without a thread of its own, in epoll
 * mode: one ev_io watches MHD's epoll descriptor, one ev_timer follows
 * MHD_get_timeout, and both call MHD_run.  So every request is answered on
 * the main thread, which owns the state the gauges read. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "br.h"
#include "log.h"

#define IDLE_RECHECK_S 1.0   /* re-run MHD at least this often */
#define CONN_TIMEOUT_S 10    /* a client that sends nothing is dropped */
#define CONN_LIMIT 32

struct metrics_http {
	struct MHD_Daemon *d;
	ev_io io;
	ev_timer timer;
	struct pgsb *b;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, char *body,
                             size_t len, const char *type)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);

	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	enum MHD_Result ok = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ok;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *text)
{
	char *s = strdup(text);

	return s ? reply(c, status, s, strlen(s), "text/plain; charset=utf-8") : MHD_NO;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **state)
{
	struct metrics_http *h = cls;
	char text[700];

	(void)version;
	(void)upload;
	(void)upload_size;
	(void)state;
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n");
	if (!strcmp(url, "/metrics")) {
		size_t len = 0;
		char *body = metrics_render(h->b, &len);
		return body ? reply(c, MHD_HTTP_OK, body, len, "text/plain; version=0.0.4; charset=utf-8")
		            : reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	}
	if (!strcmp(url, "/healthz")) {
		int status = metrics_health(h->b, text, sizeof text);
		return reply_text(c, (unsigned)status, text);
	}
	return reply_text(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics or /healthz\n");
}

/* Runs MHD, then arms the timer for its next timeout. */
static void pump(struct metrics_http *h)
{
	MHD_UNSIGNED_LONG_LONG ms = 0;
	double after = IDLE_RECHECK_S;

	MHD_run(h->d);
	if (MHD_get_timeout(h->d, &ms) == MHD_YES && ms / 1000.0 < after)
		after = ms / 1000.0;
	ev_timer_stop(h->b->loop, &h->timer);
	ev_timer_set(&h->timer, after, 0.0);
	ev_timer_start(h->b->loop, &h->timer);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	pump(w->data);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	pump(w->data);
}

/* "host:port" or "[v6]:port" into host and port (brackets dropped); a
 * port alone gives an empty host (loopback). */
static int split_address(const char *addr, char *host, size_t hcap, char *port, size_t pcap)
{
	const char *colon = strrchr(addr, ':');

	if (!colon) {
		host[0] = '\0';
		snprintf(port, pcap, "%s", addr);
		return 0;
	}
	size_t hlen = (size_t)(colon - addr);
	const char *h = addr;
	if (hlen >= 2 && addr[0] == '[' && addr[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	if (hlen >= hcap)
		return -1;
	snprintf(host, hcap, "%.*s", (int)hlen, h);
	snprintf(port, pcap, "%s", colon + 1);
	return 0;
}

static struct MHD_Daemon *start_daemon(struct metrics_http *h, const char *addr,
                                       char *err, size_t cap)
{
	char host[256], port[16];
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai;

	if (split_address(addr, host, sizeof host, port, sizeof port)) {
		snprintf(err, cap, "metrics: bad address \"%s\"", addr);
		return NULL;
	}
	int rc = getaddrinfo(host[0] ? host : "127.0.0.1", port, &hints, &ai);
	if (rc) {
		snprintf(err, cap, "metrics: cannot resolve \"%s\": %s", addr, gai_strerror(rc));
		return NULL;
	}
	unsigned flags = MHD_USE_EPOLL | (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
	struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t)atoi(port), NULL, NULL,
		on_request, h, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT_S,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONN_LIMIT, MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!d)
		snprintf(err, cap, "metrics: cannot listen on %s (in use, or not an address of "
		         "this host?)", addr);
	return d;
}

int metrics_start(struct pgsb *b, char *err, size_t cap)
{
	if (!b->cfg->metrics || !*b->cfg->metrics)
		return 0;
	struct metrics_http *h = calloc(1, sizeof *h);
	if (!h) {
		snprintf(err, cap, "out of memory");
		return -1;
	}
	h->b = b;
	h->d = start_daemon(h, b->cfg->metrics, err, cap);
	const union MHD_DaemonInfo *info = h->d ? MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
	if (!info) {
		if (h->d) {
			snprintf(err, cap, "metrics: no epoll descriptor from libmicrohttpd");
			MHD_stop_daemon(h->d);
		}
		free(h);
		return -1;
	}
	ev_io_init(&h->io, on_io, info->epoll_fd, EV_READ);
	h->io.data = h;
	ev_io_start(b->loop, &h->io);
	ev_timer_init(&h->timer, on_timer, 0.0, 0.0);
	h->timer.data = h;
	ev_timer_start(b->loop, &h->timer);
	b->metrics.http = h;
	log_info("metrics: serving /metrics and /healthz on http://%s", b->cfg->metrics);
	return 0;
}

void metrics_stop(struct pgsb *b)
{
	struct metrics_http *h = b->metrics.http;

	if (!h)
		return;
	ev_io_stop(b->loop, &h->io);
	ev_timer_stop(b->loop, &h->timer);
	MHD_stop_daemon(h->d);
	free(h);
	b->metrics.http = NULL;
}
