#!/bin/bash
# bench/run.sh: `make bench`: the bridge's apply rate beside the ceiling
# measured in the same run, pg_recvlogical decoding the same WAL with the
# same wal2json options to /dev/null, as a ratio (these machines are noisy;
# the ratio is the figure to compare).  Cases: 1,000,000 rows inserted in one
# Postgres transaction; 100,000 single-row transactions.  Also the bridge's
# peak RSS for each case.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
case "$BUILD" in /*) BIN="$BUILD/pgsqlite-bridge" ;; *) BIN="$PWD/$BUILD/pgsqlite-bridge" ;; esac
LATENCY="$(dirname "$BIN")/bench-latency"
ROWS_BIG=${BENCH_ROWS_BIG:-1000000}
ROWS_SMALL=${BENCH_ROWS_SMALL:-100000}
ROWS_PUSH=${BENCH_ROWS_PUSH:-100000}
SAMPLES=${BENCH_SAMPLES:-1000}

dir=$(mktemp -d "${TMPDIR:-/tmp}/pgsqlite-bridge-bench.XXXXXX")
chmod 755 "$dir"
cleanup() { tests/pg-cluster.sh stop "$dir/pg"; rm -rf "$dir"; }
trap cleanup EXIT INT TERM
port=$(tests/pg-cluster.sh start "$dir/pg")
pgbin=$(dirname "$(ls /usr/lib/postgresql/15/bin/pg_recvlogical 2>/dev/null || command -v pg_recvlogical)")
PSQL=(psql -X -q -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1)
"${PSQL[@]}" -d postgres -c "CREATE DATABASE bench"
PSQL+=(-d bench)
W2J_OPTS=(-o format-version=2 -o include-transaction=1 -o include-lsn=1 -o include-xids=1
          -o include-timestamp=1 -o include-origin=1 -o include-pk=1 -o include-type-oids=1
          -o add-tables=public.bench_rows)

now_ms() { date +%s%3N; }

# Creates the bridge's state (init on an empty table) and three pg_recvlogical
# slots, all before the workload, so all three decode the same WAL.
prepare_case() {
	local name=$1
	"${PSQL[@]}" -c "SET client_min_messages = warning; DROP TABLE IF EXISTS bench_rows; CREATE TABLE bench_rows (id bigint PRIMARY KEY, name text NOT NULL, amount numeric(12,2), created_at timestamptz NOT NULL DEFAULT now())"
	rm -f "$dir/$name.db"*
	cat > "$dir/$name.conf" <<CONF
[bridge]
postgres = host=127.0.0.1 port=$port user=postgres dbname=bench
sqlite = $dir/$name.db
slot = bench_$name
mode = manual
[table public.bench_rows]
CONF
	"$BIN" init -c "$dir/$name.conf" >/dev/null 2>"$dir/$name.init.err" || { cat "$dir/$name.init.err"; exit 1; }
	for s in 0 1 2; do
		"$pgbin/pg_recvlogical" -h 127.0.0.1 -p "$port" -U postgres -d bench --slot "rcv_${name}_$s" \
			--create-slot -P wal2json >/dev/null
	done
}

recvlogical_ms() { # slot endpos
	local t0 t1
	t0=$(now_ms)
	"$pgbin/pg_recvlogical" -h 127.0.0.1 -p "$port" -U postgres -d bench --slot "$1" --start \
		--endpos "$2" --no-loop -f /dev/null "${W2J_OPTS[@]}"
	t1=$(now_ms)
	echo $((t1 - t0))
}

run_case() { # name rows description
	local name=$1 rows=$2 what=$3 endpos r1 r2 rcv t0 t1 bridge summary rss
	endpos=$("${PSQL[@]}" -Atc "SELECT pg_current_wal_insert_lsn()")
	# The first decoder to read fresh WAL pays a cold-start cost: an
	# unmeasured warm-up run, then pg_recvlogical, the bridge,
	# pg_recvlogical again; the faster pg_recvlogical run is the ceiling.
	recvlogical_ms "rcv_${name}_0" "$endpos" >/dev/null
	r1=$(recvlogical_ms "rcv_${name}_1" "$endpos")
	t0=$(now_ms)
	summary=$("$BIN" sync -c "$dir/$name.conf" 2>"$dir/$name.sync.err" | tail -n 1)
	t1=$(now_ms)
	bridge=$((t1 - t0))
	r2=$(recvlogical_ms "rcv_${name}_2" "$endpos")
	rcv=$(( r1 < r2 ? r1 : r2 ))
	got=$(sqlite3 "$dir/$name.db" "SELECT count(*) FROM bench_rows")
	[ "$got" = "$rows" ] || { echo "bench: $name: SQLite has $got rows, expected $rows"; cat "$dir/$name.sync.err"; exit 1; }
	rss=$(echo "$summary" | sed -n 's/.*"peak_rss_kb":\([0-9]*\).*/\1/p')
	awk -v what="$what" -v rows="$rows" -v b="$bridge" -v r="$rcv" -v rss="$rss" 'BEGIN {
		br = rows / (b / 1000.0); rr = rows / (r / 1000.0);
		printf "%-40s bridge %9.0f rows/s (%6.2f s)   pg_recvlogical %9.0f rows/s (%6.2f s)   ratio %.2f   bridge peak RSS %.1f MB\n",
		       what, br, b / 1000.0, rr, r / 1000.0, br / rr, rss / 1024.0 }'
}

echo "pgsqlite-bridge benchmark on $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m)"

# BENCH_CASES picks cases (default: all): pull-big pull-small push latency.
CASES=" ${BENCH_CASES:-pull-big pull-small push latency} "
want() { [[ "$CASES" == *" $1 "* ]]; }

if want pull-big; then
prepare_case big
"${PSQL[@]}" -c "INSERT INTO bench_rows (id, name, amount) SELECT g, 'row number ' || g, g * 0.01 FROM generate_series(1, $ROWS_BIG) g"
run_case big "$ROWS_BIG" "$ROWS_BIG rows in one transaction"
fi

if want pull-small; then
prepare_case small
seq 1 "$ROWS_SMALL" | awk '{ printf "INSERT INTO bench_rows (id, name, amount) VALUES (%d, '"'"'row number %d'"'"', %d.25);\n", $1, $1, $1 }' > "$dir/small.sql"
"${PSQL[@]}" -f "$dir/small.sql"
run_case small "$ROWS_SMALL" "$ROWS_SMALL single-row transactions"
fi

# Writes a config for a bridge over one table.
bridge_conf() { # name table mode
	cat > "$dir/$1.conf" <<CONF
[bridge]
postgres = host=127.0.0.1 port=$port user=postgres dbname=bench
sqlite = $dir/$1.db
slot = bench_$1
mode = $3
[table public.$2]
CONF
}

# 100,000 rows committed in one local transaction while the bridge runs in
# realtime, until Postgres holds them all; beside Postgres's own COPY of
# the same rows from a file.
push_case() {
	local t0 t1 bridge copy pid got
	"${PSQL[@]}" -c "SET client_min_messages = warning; DROP TABLE IF EXISTS push_rows, copy_rows;
		CREATE TABLE push_rows (id bigint PRIMARY KEY, name text NOT NULL, amount numeric(12,2));
		CREATE TABLE copy_rows (LIKE push_rows INCLUDING ALL)"
	bridge_conf push push_rows realtime
	"$BIN" init -c "$dir/push.conf" >/dev/null 2>"$dir/push.init.err" || { cat "$dir/push.init.err"; exit 1; }
	"$BIN" run -c "$dir/push.conf" >/dev/null 2>"$dir/push.run.err" & pid=$!
	sleep 2
	seq 1 "$ROWS_PUSH" | awk '{ printf "%d,row number %d,%d.25\n", $1, $1, $1 }' > "$dir/push.csv"
	# One session watches for the last row (the batches go in commit
	# order, so it comes last) with an index probe every 5 ms: a poller
	# that started a psql process per look took CPU from the bridge.
	"${PSQL[@]}" -Atc "DO \$\$ BEGIN FOR i IN 1..6000 LOOP
		EXIT WHEN EXISTS (SELECT 1 FROM push_rows WHERE id = $ROWS_PUSH); PERFORM pg_sleep(0.005);
		END LOOP; END \$\$" & poller=$!
	sleep 0.5
	sqlite3 "$dir/push.db" "BEGIN; WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < $ROWS_PUSH)
		INSERT INTO push_rows SELECT i, 'row number ' || i, i || '.25' FROM g; COMMIT;"
	t0=$(now_ms) # from the local commit
	wait "$poller" || true
	t1=$(now_ms)
	got=$("${PSQL[@]}" -Atc "SELECT count(*) FROM push_rows")
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	[ "$got" = "$ROWS_PUSH" ] || { echo "bench: push: Postgres has $got rows, expected $ROWS_PUSH"; cat "$dir/push.run.err"; exit 1; }
	bridge=$((t1 - t0))
	if [ -n "${BENCH_PUSH_LOG:-}" ]; then cp "$dir/push.run.err" "$BENCH_PUSH_LOG"; fi
	t0=$(now_ms)
	"${PSQL[@]}" -c "\\copy copy_rows FROM '$dir/push.csv' WITH (FORMAT csv)"
	t1=$(now_ms)
	copy=$((t1 - t0))
	awk -v rows="$ROWS_PUSH" -v b="$bridge" -v c="$copy" 'BEGIN {
		br = rows / (b / 1000.0); cr = rows / (c / 1000.0);
		printf "%-40s bridge %9.0f rows/s (%6.2f s)   Postgres COPY  %9.0f rows/s (%6.2f s)   ratio %.2f\n",
		       rows " local inserts pushed", br, b / 1000.0, cr, c / 1000.0, br / cr }'
}

latency_case() {
	local pa pb result
	"${PSQL[@]}" -c "SET client_min_messages = warning; DROP TABLE IF EXISTS lat; CREATE TABLE lat (id int PRIMARY KEY, note text)"
	for c in lat_a lat_b; do
		bridge_conf "$c" lat realtime
		"$BIN" init -c "$dir/$c.conf" >/dev/null 2>&1
	done
	"$BIN" run -c "$dir/lat_a.conf" >/dev/null 2>"$dir/lat_a.err" & pa=$!
	"$BIN" run -c "$dir/lat_b.conf" >/dev/null 2>"$dir/lat_b.err" & pb=$!
	sleep 2
	result=$("$LATENCY" "$dir/lat_a.db" "$dir/lat_b.db" "$SAMPLES" 2>&1) || true
	kill "$pa" "$pb"
	wait "$pa" "$pb" 2>/dev/null || true
	echo "$result" | awk '{ if (NF == 4) printf "%-40s p50 %.2f ms   p99 %.2f ms   max %.2f ms   (%d samples)\n",
		"client -> client realtime round trip", $2, $3, $4, $1; else print "latency: " $0 }'
}

if want push; then push_case; fi
if want latency; then latency_case; fi
