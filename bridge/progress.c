/* progress.c: the terminal progress bar of progress.h.  stderr is one per
 * process, so the bar's state is too (under a mutex): the phase in hand,
 * when it started and when it was last drawn. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "br.h"
#include "progress.h"

#define REDRAW_US 100000 /* at most ten times a second */
#define BAR_MIN 10

static struct {
	pthread_mutex_t mu;
	char phase[256];
	bool active;          /* a phase is under way */
	bool drawn;           /* its line is on the terminal without a newline */
	int64_t start_us, start_done, last_draw_us;
	int64_t finished_done; /* the phase ended at this count (no second final line) */
} bar = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* 1234567 -> "1,234,567" */
static void group(int64_t v, char *buf, size_t cap)
{
	char digits[32];
	int n = snprintf(digits, sizeof digits, "%lld", (long long)(v < 0 ? -v : v));
	size_t o = 0;

	if (v < 0 && o + 1 < cap)
		buf[o++] = '-';
	for (int i = 0; i < n && o + 2 < cap; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
}

/* "0:04", "12:30", "1:02:03" */
static void clock_text(int64_t s, char *buf, size_t cap)
{
	if (s >= 3600)
		snprintf(buf, cap, "%lld:%02lld:%02lld", (long long)(s / 3600),
		         (long long)(s / 60 % 60), (long long)(s % 60));
	else
		snprintf(buf, cap, "%lld:%02lld", (long long)(s / 60), (long long)(s % 60));
}

/* "45,000/100,000 rows  45%  12,345 rows/s  0:04 left" */
static void tail_text(char *buf, size_t cap, int64_t done, int64_t total, double rate)
{
	char d[32], t[32], r[40] = "- rows/s", left[40] = "-:-- left";
	bool finished = done >= total;
	int pct = total > 0 ? (int)(finished ? 100 : done * 100 / total) : 100;

	group(done, d, sizeof d);
	group(total, t, sizeof t);
	if (rate > 0) {
		group((int64_t)(rate + 0.5), r, sizeof r - 7);
		strcat(r, " rows/s");
	}
	if (finished) {
		snprintf(left, sizeof left, "done");
	} else if (rate > 0) {
		clock_text((int64_t)((double)(total - done) / rate + 0.999), left, sizeof left - 5);
		strcat(left, " left");
	}
	snprintf(buf, cap, "%s/%s rows %3d%%  %s  %s", d, t, pct, r, left);
}

size_t progress_format(char *buf, size_t cap, const char *phase, int64_t done, int64_t total,
                       double rate, int width)
{
	char tail[160], cells[512];
	int plen = (int)strlen(phase);

	if (cap == 0)
		return 0;
	tail_text(tail, sizeof tail, done, total, rate);
	int barw = width - 1 - plen - 4 - (int)strlen(tail); /* "phase [bar] tail" */
	if (barw < BAR_MIN) {
		plen -= BAR_MIN - barw; /* the phase gives way first */
		while (plen > 0 && phase[plen - 1] == ' ')
			plen--;
		plen = plen < 0 ? 0 : plen;
		barw = BAR_MIN;
	}
	if (barw > (int)sizeof cells - 1)
		barw = (int)sizeof cells - 1;
	int filled = total > 0 ? (int)((done >= total ? total : done) * barw / total) : barw;
	for (int i = 0; i < barw; i++)
		cells[i] = i < filled ? '#' : '.';
	cells[barw] = '\0';
	int n = snprintf(buf, cap, "%.*s%s[%s] %s", plen, phase, plen ? " " : "", cells, tail);
	return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

static int term_width(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
		return ws.ws_col;
	return 80;
}

static void begin_phase(const char *phase, int64_t done, int64_t now)
{
	if (bar.drawn)
		fputc('\n', stderr); /* another phase cut in: keep its line */
	snprintf(bar.phase, sizeof bar.phase, "%s", phase);
	bar.active = true;
	bar.drawn = false;
	bar.start_us = now;
	bar.start_done = done;
	bar.last_draw_us = 0;
	bar.finished_done = -1;
}

static void draw_locked(const char *phase, int64_t done, int64_t total)
{
	int64_t now = br_now_us();
	bool same = strcmp(phase, bar.phase) == 0;
	bool finished = done >= total;

	if (same && !bar.active && finished && done == bar.finished_done)
		return; /* its final line is already there */
	if (!same || !bar.active)
		begin_phase(phase, done, now);
	if (!finished && now - bar.last_draw_us < REDRAW_US)
		return;
	double secs = (double)(now - bar.start_us) / 1e6;
	double rate = secs > 0.05 ? (double)(done - bar.start_done) / secs : 0;
	char line[1024];
	progress_format(line, sizeof line, phase, done, total, rate, term_width());
	fprintf(stderr, "\r%s\033[K%s", line, finished ? "\n" : "");
	fflush(stderr);
	bar.last_draw_us = now;
	bar.drawn = !finished;
	if (finished) {
		bar.active = false;
		bar.finished_done = done;
	}
}

void progress_draw(const char *phase, int64_t done, int64_t total)
{
	if (!isatty(STDERR_FILENO))
		return;
	pthread_mutex_lock(&bar.mu);
	draw_locked(phase, done, total);
	pthread_mutex_unlock(&bar.mu);
}

void progress_clear_line(void)
{
	pthread_mutex_lock(&bar.mu);
	if (bar.drawn) {
		fputs("\r\033[K", stderr);
		bar.drawn = false;
		bar.last_draw_us = 0; /* redrawn at the next call */
	}
	pthread_mutex_unlock(&bar.mu);
}
