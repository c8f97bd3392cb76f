/* test_progress.c: the terminal progress bar's line: counts, percentage,
 * rate, time left, the bar fitted to the width. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../bridge/progress.h"

Test(progress, a_line_shows_rows_percentage_rate_and_time_left)
{
	char line[512];
	size_t n = progress_format(line, sizeof line, "snapshot public.items", 45000, 100000, 12345.4, 100);

	cr_assert_eq(n, strlen(line));
	cr_assert_str_eq(line, "snapshot public.items [##########..............] "
	                       "45,000/100,000 rows  45%  12,345 rows/s  0:05 left");
	cr_assert_eq(strlen(line), 99, "fills the width but its last column: %zu", strlen(line));
}

Test(progress, an_unknown_rate_shows_dashes)
{
	char line[512];

	progress_format(line, sizeof line, "snapshot public.t", 0, 500, 0, 80);
	cr_assert(strstr(line, "0/500 rows   0%  - rows/s  -:-- left"), "%s", line);
	cr_assert(strstr(line, "[.........."), "%s", line);
}

Test(progress, a_finished_phase_is_full_and_says_done)
{
	char line[512];

	progress_format(line, sizeof line, "snapshot public.t", 1234567, 1234567, 50000, 80);
	cr_assert(strstr(line, "1,234,567/1,234,567 rows 100%  50,000 rows/s  done"), "%s", line);
	cr_assert(strstr(line, "[##########]"), "the bar is full: %s", line);
	progress_format(line, sizeof line, "snapshot public.empty", 0, 0, 0, 80);
	cr_assert(strstr(line, "0/0 rows 100%") && strstr(line, "done"), "%s", line);
}

Test(progress, long_times_show_hours)
{
	char line[512];

	progress_format(line, sizeof line, "p", 0, 7384, 1, 120);
	cr_assert(strstr(line, "2:03:04 left"), "%s", line);
}

Test(progress, a_narrow_terminal_cuts_the_phase_not_the_bar)
{
	char line[512];

	progress_format(line, sizeof line, "snapshot public.a_table_with_a_long_name", 10, 20, 0, 60);
	cr_assert_str_eq(line, "snapshot [#####.....] 10/20 rows  50%  - rows/s  -:-- left");
}

Test(progress, a_small_buffer_is_cut_and_terminated)
{
	char line[16];
	size_t n = progress_format(line, sizeof line, "snapshot public.t", 1, 2, 1, 80);

	cr_assert_eq(n, 15);
	cr_assert_eq(strlen(line), 15);
}
