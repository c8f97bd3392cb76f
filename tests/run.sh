#!/bin/sh
# run.sh: the test command behind `make test`: unit tests, then the
# integration tests against a throwaway PostgreSQL 15 cluster that this
# script starts (tests/pg-cluster.sh) and always stops.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}

dir=$(mktemp -d "${TMPDIR:-/tmp}/pgsqlite-bridge-test.XXXXXX")
chmod 755 "$dir"
cleanup() { tests/pg-cluster.sh stop "$dir/pg"; rm -rf "$dir"; }
trap cleanup EXIT INT TERM

# Under `make asan` every process (test workers and the bridge processes
# they start) writes its sanitizer report here; any report fails the run,
# since Criterion itself ignores LeakSanitizer.
mkdir -p "$dir/sanitizer"
chmod 777 "$dir/sanitizer"
export ASAN_OPTIONS="log_path=$dir/sanitizer/report:detect_leaks=1:abort_on_error=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export UBSAN_OPTIONS="log_path=$dir/sanitizer/report:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
sanitizer_reports() {
	if ls "$dir/sanitizer"/report* >/dev/null 2>&1; then
		echo "run.sh: sanitizer reports:" >&2
		cat "$dir/sanitizer"/report* >&2
		exit 1
	fi
}

"$BUILD/test-unit"
sanitizer_reports

port=$(tests/pg-cluster.sh start "$dir/pg")

export PGSB_TEST_PGPORT="$port"
export PGSB_TEST_PGDATA="$dir/pg"
export PGSB_TEST_TMP="$dir"
export PGSB_TEST_BIN="$BUILD/pgsqlite-bridge"
# Tests that restart or kill the server run alone; the rest two at a time.
"$BUILD/test-integ" --jobs 2 --filter '!(server/*)'
"$BUILD/test-integ" --jobs 1 --filter 'server/*'
sanitizer_reports

# The six setups of examples/, against the same cluster.
BUILD="$BUILD" tests/examples.sh
sanitizer_reports

# The randomized model test, short and with a fixed seed: every mode and
# strategy, faults injected, then lost / duplicated / diverged must be 0.
# Its bridges log at debug level, so a divergence report carries the lines
# that name the row (the run's directory is removed afterwards).
CHAOS_LOG_LEVEL=${CHAOS_LOG_LEVEL:-debug} "$BUILD/soak" --short
sanitizer_reports

