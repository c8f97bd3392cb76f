#!/bin/bash
# examples.sh: runs every example of examples/ (each asserts that the data
# moved as its setup promises).  tests/run.sh calls it with the throwaway
# cluster of the test run (PGSB_TEST_PGPORT, PGSB_TEST_PGDATA); run alone,
# it starts and stops a cluster of its own.
#   tests/examples.sh [NAME...]   default: all six, in order
set -euo pipefail
cd "$(dirname "$0")/.."
export PGSB_TEST_BIN=${PGSB_TEST_BIN:-${BUILD:-build}/pgsqlite-bridge}
examples=("$@")
[ ${#examples[@]} -gt 0 ] || examples=(mobile offline-web desktop collaboration backup mirror)

own=""
if [ -z "${PGSB_TEST_PGPORT:-}" ]; then
	own=$(mktemp -d "${TMPDIR:-/tmp}/pgsqlite-bridge-examples.XXXXXX")
	chmod 755 "$own"
	trap 'tests/pg-cluster.sh stop "$own/pg"; rm -rf "$own"' EXIT INT TERM
	PGSB_TEST_PGPORT=$(tests/pg-cluster.sh start "$own/pg")
	export PGSB_TEST_PGPORT PGSB_TEST_PGDATA="$own/pg" PGSB_TEST_TMP="$own"
fi

t0=$(date +%s)
passed=0 failed=0
for e in "${examples[@]}"; do
	if "examples/$e/run.sh"; then
		passed=$((passed + 1))
	else
		echo "examples.sh: example $e FAILED" >&2
		failed=$((failed + 1))
	fi
done
echo "examples.sh: took $(($(date +%s) - t0)) s"
echo "examples: $passed passed, $failed failed"
[ "$failed" = 0 ]
