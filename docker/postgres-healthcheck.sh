#!/bin/sh
# postgres-healthcheck.sh: healthy when the server answers a query over TCP
# in the application database, logged in with the superuser's password.
set -eu
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
	PGPASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
else
	PGPASSWORD=${POSTGRES_PASSWORD:-}
fi
export PGPASSWORD
exec psql -X -q -h 127.0.0.1 -p 5432 -U postgres -d "${POSTGRES_DB:-app}" -w -Atc 'SELECT 1' >/dev/null
