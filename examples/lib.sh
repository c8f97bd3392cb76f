# lib.sh: what the example scripts share: a fresh database per example on
# a throwaway PostgreSQL 15 cluster, a least-privilege bridge role,
# psql/sqlite3 shorthands, bounded waits and the bridges they start.
# Sourced by examples/*/run.sh; tests/examples.sh runs them all.
#
# Environment (tests/run.sh exports the PGSB_TEST_* ones):
#   PGSB_TEST_PGPORT  port of the cluster on 127.0.0.1 (superuser postgres)
#   PGSB_TEST_PGDATA  its directory for tests/pg-cluster.sh (the
#                     offline-first example stops and starts the server)
#   PGSB_TEST_BIN     the bridge binary (default build/pgsqlite-bridge)
#   PGSB_TEST_TMP     where to put the SQLite files (default a temp dir)
# The examples' config files name a production-like server; the scripts
# point them at the test cluster with PGSQLITE_BRIDGE_POSTGRES and
# PGSQLITE_BRIDGE_SQLITE, as any deployment can.

set -euo pipefail

ex_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${PGSB_TEST_PGPORT:?run through tests/examples.sh, or set PGSB_TEST_PGPORT to a throwaway cluster}"
ex_bin=${PGSB_TEST_BIN:-$ex_root/build/pgsqlite-bridge}
case "$ex_bin" in /*) ;; *) ex_bin=$ex_root/$ex_bin ;; esac
[ -x "$ex_bin" ] || { echo "no bridge binary at $ex_bin (run make)" >&2; exit 1; }
ex_t0=$(date +%s%N)
ex_pids=()
ex_confs=()

say() { printf '[%s %5.1fs] %s\n' "$ex_name" "$(( ($(date +%s%N) - ex_t0) / 1000000 ))e-3" "$*"; }
ok() { say "ok: $*"; }
fail() { say "FAIL: $*"; exit 1; }

# psql as the superuser: on the example's database, or on another with -d.
pg_admin() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGSB_TEST_PGPORT" -U postgres "$@"; }
pg() { pg_admin -d "$ex_db" -c "$1"; }
# sqlite3 on a client's file, as an application would write to it.
sq() { sqlite3 -bail "$1" "$2"; }
# The bridge with one of the example's config files.
bridge() { local conf=$1; shift; "$ex_bin" "$@" -c "$conf"; }

# ex_setup NAME: a fresh database ex_NAME, the bridge role ex_NAME_bridge,
# a work directory; PGSQLITE_BRIDGE_POSTGRES points the configs at them.
ex_setup() {
	ex_name=$1
	ex_db=ex_$1
	ex_role=ex_$1_bridge
	ex_work=$(mktemp -d "${PGSB_TEST_TMP:-${TMPDIR:-/tmp}}/example-$1.XXXXXX")
	# A leftover from an earlier run: its slots, then its database.
	pg_admin -d postgres -c "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
		WHERE database = '$ex_db' AND active_pid IS NOT NULL" >/dev/null
	pg_admin -d postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
		WHERE database = '$ex_db'" >/dev/null
	pg_admin -d postgres -c "DROP DATABASE IF EXISTS $ex_db WITH (FORCE)"
	pg_admin -d postgres -c "CREATE DATABASE $ex_db"
	pg_admin -d postgres -c "DO \$\$ BEGIN CREATE ROLE $ex_role LOGIN REPLICATION;
		EXCEPTION WHEN duplicate_object THEN NULL; END \$\$"
	export PGSQLITE_BRIDGE_POSTGRES="host=127.0.0.1 port=$PGSB_TEST_PGPORT dbname=$ex_db user=$ex_role"
	trap ex_cleanup EXIT
	say "database $ex_db, role $ex_role (not a superuser), files in $ex_work"
}

# ex_grant PRIVILEGES TABLE...: exactly what the README lists for a bridge
# role: the replication origin functions and the table privileges given.
ex_grant() {
	local privs=$1; shift
	local tables
	tables=$(IFS=,; echo "$*")
	pg "GRANT EXECUTE ON FUNCTION pg_replication_origin_create(text),
		pg_replication_origin_drop(text), pg_replication_origin_session_setup(text),
		pg_replication_origin_xact_setup(pg_lsn, timestamptz),
		pg_replication_origin_progress(text, boolean),
		pg_show_replication_origin_status() TO $ex_role;
	    GRANT SELECT ON pg_replication_origin, pg_replication_origin_status TO $ex_role;
	    GRANT $privs ON $tables TO $ex_role"
}

# ex_start NAME CONF: `run` in the background; events in $ex_work/NAME.out.
ex_start() {
	local name=$1 conf=$2
	"$ex_bin" run -c "$conf" >>"$ex_work/$name.out" 2>>"$ex_work/$name.err" &
	ex_pids+=($!)
	ex_confs+=("$conf")
	eval "pid_$name=$!"
}
# ex_stop NAME: SIGTERM, a graceful stop within 30 s.
ex_stop() {
	local pid
	eval "pid=\$pid_$1"
	kill -TERM "$pid"
	for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	! kill -0 "$pid" 2>/dev/null || fail "$1 did not stop within 30 s"
	wait "$pid" || fail "$1 exited with $? on SIGTERM"
}

ex_cleanup() {
	local rc=$? pid conf
	for pid in "${ex_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${ex_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	if [ $rc != 0 ]; then
		for f in "$ex_work"/*.err "$ex_work"/*.out; do
			[ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }
		done
	fi
	# An example that stopped the server and failed leaves it running again.
	if [ -n "${PGSB_TEST_PGDATA:-}" ] && ! pg_admin -d postgres -c "SELECT 1" >/dev/null 2>&1; then
		"$ex_root/tests/pg-cluster.sh" start "$PGSB_TEST_PGDATA" >/dev/null || true
	fi
	# The slots go with the example (a forgotten slot keeps WAL forever).
	for conf in "${ex_confs[@]}"; do bridge "$conf" drop >/dev/null 2>&1 || true; done
	pg_admin -d postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
		WHERE database = '$ex_db' AND NOT active" >/dev/null 2>&1 || true
	pg_admin -d postgres -c "DROP DATABASE IF EXISTS $ex_db WITH (FORCE)" >/dev/null 2>&1 || true
	rm -rf "$ex_work"
	[ $rc = 0 ] && say "passed in $(( ($(date +%s%N) - ex_t0) / 1000000 )) ms"
	exit $rc
}

# wait_for WHAT WANT SECONDS CMD...: polls CMD until it prints WANT.
wait_for() {
	local what=$1 want=$2 secs=$3 got="" s
	shift 3
	s=$(date +%s%N)
	while :; do
		got=$("$@" 2>/dev/null || true)
		[ "$got" = "$want" ] && { ok "$what ($(( ($(date +%s%N) - s) / 1000000 )) ms)"; return 0; }
		[ $(( ($(date +%s%N) - s) / 1000000000 )) -lt "$secs" ] || fail "$what: got '$got', want '$want' after $secs s"
		sleep 0.1
	done
}
# stays WHAT WANT SECONDS CMD...: CMD prints WANT all along for SECONDS.
stays() {
	local what=$1 want=$2 secs=$3 got s
	shift 3
	s=$(date +%s%N)
	while [ $(( ($(date +%s%N) - s) / 1000000000 )) -lt "$secs" ]; do
		got=$("$@" 2>/dev/null || true)
		[ "$got" = "$want" ] || fail "$what: got '$got', want '$want'"
		sleep 0.2
	done
	ok "$what (for $secs s)"
}
# How many of the events of bridge NAME match PATTERN.
count_events() { grep -c -- "$2" "$ex_work/$1.out" 2>/dev/null || true; }
uuid() { cat /proc/sys/kernel/random/uuid; }
