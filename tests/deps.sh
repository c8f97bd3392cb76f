#!/bin/sh
# deps.sh: installs the Debian packages the build, the tests and the demo
# need, if any is missing (apt-get, as root or through sudo).  `make test`
# and `make demo` run it first, so a fresh Debian 12 machine needs nothing
# else.
set -eu
pkgs="build-essential pkg-config clang sqlite3 libpq-dev libsqlite3-dev libev-dev
libcriterion-dev libinih-dev libcjson-dev libmicrohttpd-dev postgresql-15 postgresql-client-15
postgresql-15-wal2json"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps.sh: installing:$missing" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update
# shellcheck disable=SC2086
$sudo apt-get install -y --no-install-recommends $missing
