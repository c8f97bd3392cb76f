/* main.c: the pgsqlite-bridge command line, a thin layer over the library:
 * parses COMMAND [-c FILE], loads the config (exit 2 on a bad one) and runs
 * the command. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../config/cfg.h"
#include "log.h"
#include "pgsqlite_bridge.h"

static const char usage_text[] =
	"usage: pgsqlite-bridge COMMAND [-c FILE] [--help] [--version]\n"
	"\n"
	"Keeps a SQLite file in sync with a PostgreSQL database.\n"
	"\n"
	"commands:\n"
	"  init     create the slot, copy the tables into SQLite, record the state\n"
	"  run      init if needed, then sync continuously in the configured mode\n"
	"  sync     one sync up to now, then print a JSON summary\n"
	"  status   print the state as JSON\n"
	"  check    validate the config and every prerequisite\n"
	"  drop     remove the slot, the origin and the bridge's own tables\n"
	"  config   print the effective configuration (password masked)\n"
	"\n"
	"options:\n"
	"  -c, --config FILE  config file (default $PGSQLITE_BRIDGE_CONFIG, else\n"
	"                     ./pgsqlite-bridge.conf)\n"
	"  -h, --help         this text\n"
	"  -V, --version      the version\n"
	"\n"
	"environment: PGSQLITE_BRIDGE_<KEY> overrides a [bridge] key;\n"
	"PGSQLITE_BRIDGE_LOG_LEVEL = debug | info | warning | error.\n";

static const char *const commands[] = {"init", "run", "sync", "status", "check", "drop", "config"};

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "pgsqlite-bridge: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\ntry \"pgsqlite-bridge --help\"\n");
	return 2;
}

static bool known_command(const char *c)
{
	for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
		if (strcmp(c, commands[i]) == 0)
			return true;
	return false;
}

static enum log_level env_log_level(void)
{
	const char *v = getenv("PGSQLITE_BRIDGE_LOG_LEVEL");

	if (!v)
		return LOG_INFO;
	if (strcmp(v, "debug") == 0)
		return LOG_DEBUG;
	if (strcmp(v, "warning") == 0 || strcmp(v, "warn") == 0)
		return LOG_WARN;
	if (strcmp(v, "error") == 0)
		return LOG_ERROR;
	return LOG_INFO;
}

static int dispatch(const char *command, struct pgsb *b)
{
	if (strcmp(command, "init") == 0)
		return pgsb_init(b);
	if (strcmp(command, "run") == 0)
		return pgsb_run(b);
	if (strcmp(command, "sync") == 0)
		return pgsb_sync(b, stdout);
	if (strcmp(command, "status") == 0)
		return pgsb_status(b, stdout);
	if (strcmp(command, "check") == 0)
		return pgsb_check(b, stdout);
	return pgsb_drop(b);
}

static int run_command(const char *command, const char *path)
{
	char err[1024];
	struct cfg *cfg = pgsb_config_load(path, err, sizeof err);

	if (!cfg) {
		fprintf(stderr, "pgsqlite-bridge: %s\n", err);
		return 2;
	}
	log_setup(env_log_level(), cfg->log_format == CFG_LOG_JSON);
	if (strcmp(command, "config") == 0) {
		cfg_print(cfg, stdout);
		pgsb_config_free(cfg);
		return 0;
	}
	struct pgsb *b = pgsb_new(cfg, err, sizeof err);
	if (!b) {
		log_error("%s", err);
		pgsb_config_free(cfg);
		return 1;
	}
	int rc = dispatch(command, b);
	pgsb_free(b);
	pgsb_config_free(cfg);
	return rc;
}

int main(int argc, char **argv)
{
	const char *command = NULL, *path = NULL;

	signal(SIGPIPE, SIG_IGN);
	/* Until `run` watches them (first a handler that remembers them, then
	 * the event loop), these must not end the process. */
	signal(SIGUSR1, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(usage_text, stdout);
			return 0;
		}
		if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf("pgsqlite-bridge %s\n", PGSB_VERSION);
			return 0;
		}
		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (++i >= argc)
				return usage_error("option %s needs a file", a);
			path = argv[i];
		} else if (strncmp(a, "--config=", 9) == 0) {
			path = a + 9;
		} else if (a[0] == '-') {
			return usage_error("unknown option \"%s\"", a);
		} else if (!command) {
			if (!known_command(a))
				return usage_error("unknown command \"%s\" (allowed: init, run, sync, status, check, drop, config)", a);
			command = a;
		} else {
			return usage_error("unexpected argument \"%s\"", a);
		}
	}
	if (!command)
		return usage_error("%s", "no command given");
	return run_command(command, path);
}
