#!/bin/sh
# postgres-entrypoint.sh: on the first start, builds the cluster and runs
# the init scripts, then runs the server in the foreground (arguments go to
# postgres, e.g. `-c max_slot_wal_keep_size=2GB`).
#
# The first start is atomic: the cluster is built in $PGDATA.init, where
# only a Unix socket of its own is open (no TCP), and renamed to $PGDATA
# once every step succeeded.  A start that finds a leftover $PGDATA.init
# (an init that died half-way) removes it and starts over; a failed step
# stops the container with the error, and the real server never starts.
#
# Environment (each *_PASSWORD may instead come from a file named by
# *_PASSWORD_FILE, e.g. a docker secret):
#   POSTGRES_PASSWORD   the superuser's (postgres) password, required
#   POSTGRES_DB         the application database (default app)
#   PGSB_BRIDGE_ROLES   bridge roles to create, e.g. "bridge_a bridge_b"; the
#                       password of bridge_a is BRIDGE_A_PASSWORD
#   PGSB_BRIDGE_SCHEMAS schemas whose tables the roles sync (default public)
# Init scripts: /docker-entrypoint-initdb.d/*.sql (run by psql in
# POSTGRES_DB) and *.sh (executed, with PGHOST, PGUSER and PGDATABASE set),
# in name order, before the bridge roles are created.
set -eu

bin=/usr/lib/postgresql/15/bin
PGDATA=${PGDATA:-/var/lib/postgresql/data/pgdata}
POSTGRES_DB=${POSTGRES_DB:-app}
vol=$(dirname "$PGDATA")

say() { echo "postgres-entrypoint: $*" >&2; }
die() { say "error: $*"; exit 1; }

# Started as root (user: root, e.g. for a bind mount that root owns):
# hand the data directory to postgres and continue as postgres.
if [ "$(id -u)" = 0 ]; then
	mkdir -p "$vol"
	chown postgres:postgres "$vol"
	chmod 700 "$vol"
	[ -d "$PGDATA" ] && find "$PGDATA" \! -user postgres -exec chown postgres:postgres {} +
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

# VAR from VAR_FILE when that is set, else from VAR.
file_env() {
	eval "file=\${${1}_FILE:-}"
	if [ -n "$file" ]; then
		[ -r "$file" ] || die "${1}_FILE names $file, which cannot be read"
		eval "$1=\$(cat \"\$file\")"
	fi
}

init_cluster() {
	file_env POSTGRES_PASSWORD
	[ -n "${POSTGRES_PASSWORD:-}" ] || die "set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE"
	staging=$PGDATA.init
	if [ -e "$staging" ]; then
		say "removing $staging, left by an init that did not finish"
		rm -rf "$staging"
	fi
	say "first start: initialising the cluster"
	mkdir -m 700 "$staging"
	pwfile=$(mktemp)
	printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
	"$bin/initdb" -D "$staging" -U postgres --pwfile="$pwfile" --auth-local=peer \
		--auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
	rm -f "$pwfile"
	{
		echo "# pgsqlite-bridge: logical decoding with wal2json"
		echo "listen_addresses = '*'"
		echo "wal_level = logical"
		echo "max_replication_slots = 20"
		echo "max_wal_senders = 20"
		echo "track_commit_timestamp = on"
		# Debian's build refuses output plugins not named here.
		if "$bin/postgres" --describe-config 2>/dev/null | grep -q '^output_plugin_libraries'; then
			echo "output_plugin_libraries = 'pgoutput, test_decoding, wal2json'"
		fi
	} >> "$staging/postgresql.conf"
	{
		echo "host all all all scram-sha-256"
		echo "host replication all all scram-sha-256"
	} >> "$staging/pg_hba.conf"

	# The init server: no TCP, a socket directory of its own.
	sock=$(mktemp -d)
	"$bin/pg_ctl" -D "$staging" -o "-c listen_addresses='' -c unix_socket_directories='$sock'" \
		-l "$sock/init.log" -w -t 60 start >/dev/null || { cat "$sock/init.log" >&2; die "init server did not start"; }
	export PGHOST="$sock" PGUSER=postgres PGDATABASE="$POSTGRES_DB"
	psql="psql -X -q -v ON_ERROR_STOP=1"
	$psql -d postgres -c "CREATE DATABASE \"$POSTGRES_DB\""
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
		*.sql) say "running $f"; $psql -f "$f" ;;
		*.sh) say "running $f"; sh "$f" ;;
		*) [ -e "$f" ] && say "ignoring $f" ;;
		esac
	done
	for role in ${PGSB_BRIDGE_ROLES:-}; do
		create_bridge_role "$role"
	done
	"$bin/pg_ctl" -D "$staging" -m fast -w -t 60 stop >/dev/null
	unset PGHOST PGUSER PGDATABASE
	rm -rf "$sock"
	mv "$staging" "$PGDATA"
	say "cluster initialised"
}

# A bridge's role with exactly what the bridge needs: LOGIN, REPLICATION
# (its slot), the replication origin functions (pushing without echo) and
# SELECT, INSERT, UPDATE, DELETE on the tables of the synced schemas.  Not
# a superuser, and nothing else.
create_bridge_role() {
	role=$1
	case "$role" in
	*[!a-z0-9_]* | [0-9]* | "") die "bridge role name \"$role\": use lower case letters, digits and _" ;;
	esac
	var=$(echo "$role" | tr a-z A-Z)_PASSWORD
	file_env "$var"
	eval "pw=\${$var:-}"
	[ -n "$pw" ] || die "set $var or ${var}_FILE for the bridge role $role"
	say "creating bridge role $role"
	PGSB_ROLE_PASSWORD=$pw $psql <<SQL
\\getenv pw PGSB_ROLE_PASSWORD
CREATE ROLE $role LOGIN REPLICATION PASSWORD :'pw';
GRANT EXECUTE ON FUNCTION pg_replication_origin_create(text),
    pg_replication_origin_drop(text), pg_replication_origin_session_setup(text),
    pg_replication_origin_xact_setup(pg_lsn, timestamptz),
    pg_show_replication_origin_status() TO $role;
GRANT SELECT ON pg_replication_origin, pg_replication_origin_status TO $role;
SQL
	for schema in ${PGSB_BRIDGE_SCHEMAS:-public}; do
		$psql <<SQL
GRANT USAGE ON SCHEMA "$schema" TO $role;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "$schema" TO $role;
SQL
	done
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	[ -w "$vol" ] || die "$vol is not writable by uid $(id -u) (postgres): it belongs to uid $(stat -c %u "$vol"); chown it, or start once with user: root"
	if [ -e "$PGDATA" ]; then
		# Not a cluster (no PG_VERSION) yet not empty: refuse to guess.
		[ -z "$(ls -A "$PGDATA")" ] || die "$PGDATA exists but holds no cluster (no PG_VERSION); move it away"
		rmdir "$PGDATA"
	fi
	init_cluster
fi
exec "$bin/postgres" -D "$PGDATA" "$@"
