#!/bin/bash
# demo.sh: `make demo`, the README's example: a throwaway PostgreSQL 15 with
# wal2json in ./example/pg, a SQLite file ./example/app.db, and the bridge
# in realtime mode between them.  It writes on the Postgres side and shows
# the rows arriving in SQLite, then writes on the SQLite side and shows the
# row arriving in Postgres.  With
# DEMO_KEEP=1 the bridge and the server keep running until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
case "$BUILD" in /*) BIN="$BUILD/pgsqlite-bridge" ;; *) BIN="$PWD/$BUILD/pgsqlite-bridge" ;; esac
ex="$PWD/example"

mkdir -p "$ex"
chmod 755 "$ex"
bridge_pid=""
cleanup() {
	[ -n "$bridge_pid" ] && kill "$bridge_pid" 2>/dev/null && wait "$bridge_pid" 2>/dev/null || true
	tests/pg-cluster.sh stop "$ex/pg"
}
trap cleanup EXIT INT TERM

port=$(tests/pg-cluster.sh start "$ex/pg")
psql=(psql -X -q -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1)
"${psql[@]}" -d postgres -tc "SELECT 1 FROM pg_database WHERE datname = 'app'" | grep -q 1 ||
	"${psql[@]}" -d postgres -c "CREATE DATABASE app"
"${psql[@]}" -d app -c "CREATE TABLE IF NOT EXISTS messages (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(), author text NOT NULL, body text NOT NULL,
	amount numeric(12,2), created_at timestamptz NOT NULL DEFAULT now())"
"${psql[@]}" -d app -c "INSERT INTO messages (author, body, amount) VALUES ('server', 'hello from Postgres', 12.50)"

cat > "$ex/pgsqlite-bridge.conf" <<CONF
; the demo's config: see the README's configuration reference
[bridge]
postgres = host=127.0.0.1 port=$port user=postgres dbname=app
sqlite   = $ex/app.db
slot     = demo_client
mode     = realtime

[table public.messages]
CONF

echo "== check"
"$BIN" check -c "$ex/pgsqlite-bridge.conf"
echo "== init (slot + snapshot copy)"
"$BIN" init -c "$ex/pgsqlite-bridge.conf" > "$ex/events.jsonl"
echo "== run (realtime), events in example/events.jsonl, log in example/bridge.log"
"$BIN" run -c "$ex/pgsqlite-bridge.conf" >> "$ex/events.jsonl" 2> "$ex/bridge.log" &
bridge_pid=$!
sleep 1

echo "== Postgres: INSERT two messages, UPDATE one"
"${psql[@]}" -d app -c "INSERT INTO messages (author, body, amount) VALUES ('alice', 'written in Postgres', 1.10), ('bob', 'numeric stays exact', 123456789.01)"
"${psql[@]}" -d app -c "UPDATE messages SET body = 'hello again' WHERE author = 'server'"
for _ in $(seq 1 50); do
	n=$(sqlite3 "$ex/app.db" "SELECT count(*) FROM messages WHERE body = 'hello again'" 2>/dev/null || echo 0)
	[ "$n" = 1 ] && break
	sleep 0.1
done
echo "== SQLite now holds:"
sqlite3 -header -column "$ex/app.db" "SELECT author, body, amount, typeof(amount) AS stored_as FROM messages ORDER BY created_at"

echo "== SQLite: INSERT a message as an application would (plain SQL on the file)"
sqlite3 "$ex/app.db" "INSERT INTO messages (id, author, body, amount) VALUES (
	lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2)
	|| '-a' || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))),
	'carol', 'written in SQLite', 99.99)"
for _ in $(seq 1 50); do
	n=$("${psql[@]}" -d app -Atc "SELECT count(*) FROM messages WHERE author = 'carol'")
	[ "$n" != 0 ] && break
	sleep 0.1
done
echo "== Postgres now holds (created_at came from the server's default, and went back to SQLite):"
"${psql[@]}" -d app -c "SELECT author, body, amount, created_at FROM messages ORDER BY created_at"
sqlite3 "$ex/app.db" "SELECT 'SQLite has carol''s created_at: ' || created_at FROM messages WHERE author = 'carol' LIMIT 1"

echo "== status"
"$BIN" status -c "$ex/pgsqlite-bridge.conf"
if [ "${DEMO_KEEP:-0}" = 1 ]; then
	echo "== running: write to Postgres (psql -h 127.0.0.1 -p $port -U postgres app) or to $ex/app.db; Ctrl-C stops"
	wait "$bridge_pid"
fi
