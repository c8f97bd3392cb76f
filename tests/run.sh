#!/bin/sh
# run.sh: the test command behind `make test`: unit tests, then the
# integration tests against a throwaway PostgreSQL 15 cluster that this
# script starts (tests/pg-cluster.sh) and always stops.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}

"$BUILD/test-unit"

dir=$(mktemp -d "${TMPDIR:-/tmp}/pgsqlite-bridge-test.XXXXXX")
chmod 755 "$dir"
cleanup() { tests/pg-cluster.sh stop "$dir/pg"; rm -rf "$dir"; }
trap cleanup EXIT INT TERM
port=$(tests/pg-cluster.sh start "$dir/pg")

export PGSB_TEST_PGPORT="$port"
export PGSB_TEST_PGDATA="$dir/pg"
export PGSB_TEST_TMP="$dir"
export PGSB_TEST_BIN="$BUILD/pgsqlite-bridge"
# Tests that restart or kill the server run alone; the rest two at a time.
"$BUILD/test-integ" --jobs 2 --filter '!(server/*)'
"$BUILD/test-integ" --jobs 1 --filter 'server/*'
