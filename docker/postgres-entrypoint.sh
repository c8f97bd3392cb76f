#!/bin/sh
# postgres-entrypoint.sh: initialises the cluster on first start (password
# auth for the bridge's role), then runs the server in the foreground.
set -eu
bin=/usr/lib/postgresql/15/bin
if [ ! -s "$PGDATA/PG_VERSION" ]; then
	pwfile=$(mktemp)
	printf '%s\n' "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}" > "$pwfile"
	"$bin/initdb" -D "$PGDATA" -U postgres --pwfile="$pwfile" -A scram-sha-256 -E UTF8 --locale=C.UTF-8
	rm -f "$pwfile"
	{
		echo "listen_addresses = '*'"
		echo "wal_level = logical"
		echo "max_replication_slots = 64"
		echo "max_wal_senders = 64"
		echo "track_commit_timestamp = on"
		if "$bin/postgres" --describe-config 2>/dev/null | grep -q '^output_plugin_libraries'; then
			echo "output_plugin_libraries = 'pgoutput, test_decoding, wal2json'"
		fi
	} >> "$PGDATA/postgresql.conf"
	echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
	echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
	"$bin/pg_ctl" -D "$PGDATA" -w start
	psql -U postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE ${POSTGRES_DB:-app}" \
		-d postgres
	for f in /docker-entrypoint-initdb.d/*.sql; do
		[ -e "$f" ] && psql -U postgres -v ON_ERROR_STOP=1 -d "${POSTGRES_DB:-app}" -f "$f"
	done
	"$bin/pg_ctl" -D "$PGDATA" -m fast -w stop
fi
exec "$bin/postgres" -D "$PGDATA"
