/* test_progress.c: `init` on a terminal draws a progress bar on stderr;
 * off a terminal there is no bar, only `progress` events on stdout. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../support/it.h"

static struct it_env env;

static void fini(void)
{
	it_teardown(&env);
}

TestSuite(progress, .fini = fini, .timeout = 120);

static void table_of(int rows)
{
	it_sql(&env, "CREATE TABLE t (id int PRIMARY KEY, v text)");
	it_sql(&env, "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, %d) g", rows);
	it_sql(&env, "ANALYZE t");
}

Test(progress, off_a_terminal_init_emits_progress_events_and_draws_no_bar)
{
	char out[16384], errpath[700];
	it_setup(&env, "progfile");
	table_of(25000);
	it_write_conf(&env, "manual", NULL);
	cr_assert_eq(it_bridge(&env, "init", out, sizeof out), 0);
	cr_assert(it_count(out, "\"event\":\"progress\"") >= 3, "%s", out);
	cr_assert(strstr(out, "\"phase\":\"snapshot public.t\",\"done\":25000,\"total\":25000"), "%s", out);
	snprintf(errpath, sizeof errpath, "%s/init.err", env.dir);
	FILE *f = fopen(errpath, "r");
	cr_assert(f);
	size_t n = fread(out, 1, sizeof out - 1, f);
	fclose(f);
	out[n] = '\0';
	cr_assert_null(strchr(out, '\r'), "a bar on a file: %s", out);
	cr_assert_null(strstr(out, "rows/s"), "a bar on a file: %s", out);
}

/* Everything the child writes on the terminal, until it exits. */
static char *read_all(int fd)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	ssize_t n;

	cr_assert(buf);
	while ((n = read(fd, buf + len, cap - len - 1)) > 0 || (n < 0 && errno == EINTR))
		if (n > 0 && (len += (size_t)n) == cap - 1)
			break;
	buf[len] = '\0';
	return buf;
}

Test(progress, on_a_terminal_init_draws_a_bar_on_stderr_ended_by_a_newline)
{
	it_setup(&env, "progpty");
	table_of(25000);
	it_write_conf(&env, "manual", NULL);
	const char *bin = getenv("PGSB_TEST_BIN") ? getenv("PGSB_TEST_BIN") : "build/pgsqlite-bridge";
	int master;
	struct winsize ws = {.ws_row = 24, .ws_col = 120};
	pid_t pid = forkpty(&master, NULL, NULL, &ws);
	cr_assert(pid >= 0);
	if (pid == 0) {
		execl(bin, bin, "init", "-c", env.conf, (char *)NULL);
		_exit(127);
	}
	char *text = read_all(master);
	int status;
	waitpid(pid, &status, 0);
	close(master);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", text);
	cr_assert(strstr(text, "\rsnapshot public.t ["), "no bar: %s", text);
	cr_assert(strstr(text, "25,000/25,000 rows 100%"), "%s", text);
	cr_assert(strstr(text, "rows/s  done\033[K\r\n"), "not ended by a newline: %s", text);
	cr_assert(!strstr(text, "left\033[K{"), "an event line ran into the bar: %s", text);
	free(text);
}
