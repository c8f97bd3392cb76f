/* progress.h: a progress bar on stderr when it is a terminal, for every
 * emitter of `progress` events (the initial copy, online table
 * snapshots): rows done of total, rows per second, time left. */
#ifndef PGSB_PROGRESS_H
#define PGSB_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

/* One bar line, without the carriage return, fitted to width columns
 * (the bar itself is never narrower than 10):
 *   snapshot public.items [#########.........] 45,000/100,000 rows  45%  12,345 rows/s  0:04 left
 * rate <= 0: not known yet.  done >= total: the line of a finished phase
 * ("done" instead of the time left).  Returns the length written. */
size_t progress_format(char *buf, size_t cap, const char *phase, int64_t done, int64_t total,
                       double rate, int width);

/* Draws or redraws the bar of phase (from ev_emit_progress): at most ten
 * times a second, always at the end of a phase, which gets its newline.
 * Does nothing when stderr is not a terminal. */
void progress_draw(const char *phase, int64_t done, int64_t total);

/* Before a log line: a bar drawn without its newline is cleared, so the
 * line replaces it (the next draw brings the bar back). */
void progress_clear_line(void);

#endif
