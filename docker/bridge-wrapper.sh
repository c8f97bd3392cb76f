#!/bin/sh
# pgsqlite-bridge (in the image): sets PGPASSWORD from the file that
# PGPASSWORD_FILE names (a docker secret), then runs the real binary in its
# place, so signals reach the bridge itself.
if [ -n "${PGPASSWORD_FILE:-}" ]; then
	if [ ! -r "$PGPASSWORD_FILE" ]; then
		echo "pgsqlite-bridge: PGPASSWORD_FILE names $PGPASSWORD_FILE, which cannot be read" >&2
		exit 2
	fi
	PGPASSWORD=$(cat "$PGPASSWORD_FILE")
	export PGPASSWORD
fi
exec /usr/local/libexec/pgsqlite-bridge/pgsqlite-bridge "$@"
