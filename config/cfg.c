/* cfg.c: loads the bridge configuration: the defaults, the file
 * (cfg_file.c), the PGSQLITE_BRIDGE_* environment overrides, then the
 * checks that need the whole of it.  The keys, their types and printing
 * live in cfg_opts.c and cfg_values.c. */
#include "cfg_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static int apply_env(struct cfg *c, struct cfg_error *err)
{
	char var[64], why[sizeof err->msg];

	for (size_t i = 0; i < cfg__nbridge; i++) {
		const struct cfg_opt *o = &cfg__bridge_opts[i];
		size_t n = strlen(CFG__ENV_PREFIX);
		const char *value;

		memcpy(var, CFG__ENV_PREFIX, n);
		for (const char *k = o->name; *k && n < sizeof var - 1; k++)
			var[n++] = (char)toupper((unsigned char)*k);
		var[n] = '\0';
		if (!(value = getenv(var)))
			continue;
		if (o->type->parse(o->type, value, cfg__field(c, o), why, sizeof why))
			return cfg__say(err->msg, sizeof err->msg, "environment %s: %s", var, why);
	}
	return 0;
}

static int check_required(const struct cfg *c, struct cfg_error *err)
{
	for (size_t i = 0; i < cfg__nbridge; i++) {
		const struct cfg_opt *o = &cfg__bridge_opts[i];
		if (!o->def && !*(char *const *)cfg__cfield(c, o))
			return cfg__say(err->msg, sizeof err->msg,
					"%s: missing required key '%s' in [bridge]", c->path, o->name);
	}
	return 0;
}

int cfg_load(const char *path, struct cfg *out, struct cfg_error *err)
{
	memset(out, 0, sizeof *out);
	err->msg[0] = '\0';
	if (!(out->path = strdup(path)))
		return cfg__say(err->msg, sizeof err->msg, "%s: out of memory", path);
	if (cfg__set_defaults(cfg__bridge_opts, cfg__nbridge, out, err) || cfg__read_file(out, err) ||
	    apply_env(out, err) || check_required(out, err) || cfg__check_tables(out, err)) {
		cfg_free(out);
		return -1;
	}
	return 0;
}
