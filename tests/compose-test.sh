#!/bin/bash
# compose-test.sh: `make compose-test`: docker/docker-compose.yml tested as
# a user would run it, with a real Docker engine.
#
# On a machine without one running, it installs Debian's docker.io,
# docker-compose and debootstrap, starts dockerd for the test and stops it
# afterwards, restoring the forwarding sysctls and iptables rules dockerd
# changed.  Base images come from docker/base-images.sh (debootstrap from
# this machine's Debian mirror), since Docker Hub may be out of reach.
# Without the rights to run dockerd it says so and fails.
#
# The steps, each asserted with a bounded wait:
#   1. build, up: Postgres and both bridges healthy; the bridge roles are
#      not superusers and pass `pgsqlite-bridge check`; the bridges' health
#      checks answer from /healthz, /metrics is reachable on the compose
#      network; no password in an image; Postgres published on 127.0.0.1 only
#   2. a row written in Postgres reaches client A's and client B's files
#   3. a row written in client A's file reaches Postgres and client B
#   4. `restart postgres`: the bridges reconnect and catch up both ways
#   5. client A's container killed while Postgres commits; a local write
#      while it is down; started again: everything arrives, exactly once
#   6. `down` then `up`: every file kept, no new init, still syncing
#   7. Postgres's first start is atomic: a failing init script stops the
#      container, never healthy, leaving no cluster; the next start redoes
#      it, with its passwords from files (*_PASSWORD_FILE, docker secrets)
# Environment: COMPOSE_TEST_KEEP=1 leaves the stack up (and dockerd
# running) for a look; COMPOSE_TEST_COLD=1 removes the cached images first
# (every image built from scratch, as on a fresh machine); COMPOSE (default
# docker-compose) to try another Compose, e.g. COMPOSE="docker compose".
set -euo pipefail
cd "$(dirname "$0")/.."

t0=$(date +%s)
log() { printf '[compose-test %3ds] %s\n' "$(($(date +%s) - t0))" "$*"; }
fail() { log "FAIL: $*"; exit 1; }
phase_t=$t0
declare -a timings=()
phase_done() { local now; now=$(date +%s); timings+=("$1: $((now - phase_t)) s"); phase_t=$now; }

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo -n"
work=$(mktemp -d "${TMPDIR:-/tmp}/compose-test.XXXXXX")

# --- the engine -------------------------------------------------------------
pkgs="docker.io docker-compose debootstrap"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	log "installing:$missing"
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null ||
		fail "apt-get update failed (compose-test needs root or sudo to install$missing)"
	# shellcheck disable=SC2086
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
		fail "could not install$missing"
fi
COMPOSE=${COMPOSE:-docker-compose}

dockerd_pid=""
forward_v4="" forward_v6="" docker0_before=1
engine_started_here=0
restore_host() {
	[ "$engine_started_here" = 1 ] || return 0
	if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
		log "stopping dockerd"
		$sudo kill -TERM "$dockerd_pid" 2>/dev/null || true
		for _ in $(seq 1 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
		kill -0 "$dockerd_pid" 2>/dev/null && { log "dockerd did not stop in 30 s: killing it"; $sudo kill -KILL "$dockerd_pid" || true; }
	fi
	# What dockerd changed on the host: forwarding, its iptables rules and
	# chains, its default bridge.
	[ -n "$forward_v4" ] && $sudo sysctl -q -w net.ipv4.ip_forward="$forward_v4" >/dev/null || true
	[ -n "$forward_v6" ] && $sudo sysctl -q -w net.ipv6.conf.all.forwarding="$forward_v6" >/dev/null || true
	restore_tables iptables "$work/iptables.before"
	restore_tables ip6tables "$work/ip6tables.before"
	if [ "$docker0_before" = 0 ] && ip link show docker0 >/dev/null 2>&1; then
		$sudo ip link delete docker0 || true
	fi
	log "host restored: net.ipv4.ip_forward=$(sysctl -n net.ipv4.ip_forward), iptables as before"
}
# Tables saved before are restored whole; tables dockerd created are emptied.
restore_tables() {
	local cmd=$1 before=$2 t c
	command -v "$cmd-save" >/dev/null || return 0
	[ -f "$before" ] || return 0
	for t in $($sudo "$cmd-save" 2>/dev/null | sed -n 's/^\*//p'); do
		grep -qx "\*$t" "$before" && continue
		$sudo "$cmd" -t "$t" -F 2>/dev/null || true
		$sudo "$cmd" -t "$t" -X 2>/dev/null || true
		for c in $($sudo "$cmd" -t "$t" -S 2>/dev/null | sed -n 's/^-P \([^ ]*\) .*/\1/p'); do
			$sudo "$cmd" -t "$t" -P "$c" ACCEPT 2>/dev/null || true
		done
	done
	if grep -q '^\*' "$before"; then $sudo "$cmd-restore" < "$before" || log "warning: $cmd-restore failed"; fi
}

start_engine() {
	if docker info >/dev/null 2>&1; then
		log "using the Docker engine that is already running"
		return
	fi
	[ -z "$sudo" ] || $sudo true 2>/dev/null ||
		fail "no Docker engine runs, and starting dockerd needs root (or password-less sudo)"
	forward_v4=$(sysctl -n net.ipv4.ip_forward 2>/dev/null || true)
	forward_v6=$(sysctl -n net.ipv6.conf.all.forwarding 2>/dev/null || true)
	ip link show docker0 >/dev/null 2>&1 || docker0_before=0
	if command -v iptables-save >/dev/null; then
		$sudo iptables-save > "$work/iptables.before" 2>/dev/null || : > "$work/iptables.before"
		$sudo ip6tables-save > "$work/ip6tables.before" 2>/dev/null || : > "$work/ip6tables.before"
	fi
	engine_started_here=1
	# Containers get the MTU of the host's route out (cloud networks often
	# have less than 1500).
	local dev mtu=1500
	dev=$(ip route show default 2>/dev/null | sed -n 's/.* dev \([^ ]*\).*/\1/p' | head -n 1)
	[ -n "$dev" ] && [ -r "/sys/class/net/$dev/mtu" ] && mtu=$(cat "/sys/class/net/$dev/mtu")
	log "starting dockerd (mtu $mtu), log in $work/dockerd.log"
	$sudo dockerd --mtu "$mtu" >"$work/dockerd.log" 2>&1 &
	dockerd_pid=$!
	for _ in $(seq 1 120); do
		docker info >/dev/null 2>&1 && return
		kill -0 "$dockerd_pid" 2>/dev/null || break
		sleep 0.5
	done
	tail -n 20 "$work/dockerd.log" >&2
	fail "dockerd could not run here (it needs root with the rights to mount, create namespaces and cgroups, and change iptables)"
}

# --- the stack --------------------------------------------------------------
proj=pgsbcomposetest
dc() { $COMPOSE -p "$proj" -f docker/docker-compose.yml "$@"; }
stack_up=0
cleanup() {
	local rc=$?
	if [ "$stack_up" = 1 ] && [ "${COMPOSE_TEST_KEEP:-0}" != 1 ]; then
		[ $rc = 0 ] || { log "logs of the stack:"; dc logs --no-color --tail 40 2>&1 | tail -n 120 || true; }
		dc down -v --remove-orphans >/dev/null 2>&1 || true
		docker rm -f "${proj}_atomic" >/dev/null 2>&1 || true
		docker volume rm -f "${proj}_atomic" >/dev/null 2>&1 || true
	fi
	[ "${COMPOSE_TEST_KEEP:-0}" = 1 ] || restore_host
	rm -rf "$work"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Polls a command until its output equals want; fails after timeout.
wait_eq() {
	local what=$1 want=$2 timeout=$3 got=""
	shift 3
	local end=$(($(date +%s%N) / 1000000 + timeout * 1000)) start=$(($(date +%s%N) / 1000000))
	while :; do
		got=$("$@" 2>/dev/null || true)
		if [ "$got" = "$want" ]; then
			log "ok: $what ($(($(date +%s%N) / 1000000 - start)) ms)"
			return 0
		fi
		[ $(($(date +%s%N) / 1000000)) -lt "$end" ] || fail "$what: got '$got', want '$want' after ${timeout} s"
		sleep 0.2
	done
}
# The container of a service, found by Compose's labels; `docker exec` on
# it is much quicker than `docker-compose exec`.
cid() {
	docker ps -q --filter "label=com.docker.compose.project=$proj" \
		--filter "label=com.docker.compose.service=$1" | head -n 1
}
# A service's health (or its state, e.g. exited, when it is not running).
health() {
	local c
	c=$(docker ps -aq --filter "label=com.docker.compose.project=$proj" --filter "label=com.docker.compose.service=$1" | head -n 1)
	docker inspect -f '{{if and .State.Running .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$c"
}
wait_healthy() {
	local s
	for s in postgres client_a client_b; do wait_eq "$s is healthy" healthy "$1" health "$s"; done
}
pg() { docker exec "$(cid postgres)" psql -X -q -U postgres -d app -v ON_ERROR_STOP=1 -Atc "$1"; }
sq() { docker exec "$(cid "$1")" sqlite3 -bail "/data/$1.db" "$2"; }
bridge() { local c=$1; shift; docker exec "$(cid "$c")" pgsqlite-bridge "$@"; }
# Rows as "id|author|body", by id: the same text on every side once synced.
pg_rows() { pg "SELECT id || '|' || author || '|' || body FROM messages ORDER BY id::text COLLATE \"C\""; }
sq_rows() { sq "$1" "SELECT id || '|' || author || '|' || body FROM messages ORDER BY id"; }
uuid() { cat /proc/sys/kernel/random/uuid; }
secret() { od -An -N12 -tx1 /dev/urandom | tr -d ' \n'; }

start_engine
phase_done "engine"

if [ "${COMPOSE_TEST_COLD:-0}" = 1 ]; then
	log "COMPOSE_TEST_COLD=1: removing cached images, as on a fresh machine"
	docker rmi -f pgsqlite-bridge:local pgsqlite-bridge-postgres:local \
		debian:bookworm debian:bookworm-slim >/dev/null 2>&1 || true
	docker image prune -af >/dev/null 2>&1 || true
fi
log "base images (debian:bookworm, debian:bookworm-slim)"
$sudo docker/base-images.sh
phase_done "base images"

# Passwords of this run only: from the environment, as the README says.
export PGSB_POSTGRES_PASSWORD PGSB_BRIDGE_A_PASSWORD PGSB_BRIDGE_B_PASSWORD PGSB_POSTGRES_PORT
PGSB_POSTGRES_PASSWORD=$(secret) PGSB_BRIDGE_A_PASSWORD=$(secret) PGSB_BRIDGE_B_PASSWORD=$(secret)
PGSB_POSTGRES_PORT=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 12000 ))
dc down -v --remove-orphans >/dev/null 2>&1 || true

log "step 1: build the images"
# Postgres's image and the bridge's side by side; client_b's is the same
# image as client_a's, all from the cache.
{ dc build --parallel postgres client_a && dc build client_b; } >"$work/build.log" 2>&1 ||
	{ tail -n 40 "$work/build.log"; fail "build"; }
phase_done "build"
for img in pgsqlite-bridge:local pgsqlite-bridge-postgres:local; do
	if { docker image inspect "$img"; docker history --no-trunc "$img"; } | grep -qe "$PGSB_POSTGRES_PASSWORD" -e "$PGSB_BRIDGE_A_PASSWORD"; then
		fail "a password is baked into $img"
	fi
done
log "ok: no password in the images"
[ "$(docker image inspect -f '{{.Config.User}}' pgsqlite-bridge:local)" = bridge ] || fail "the bridge image does not run as its own user"
log "ok: the bridge image runs as user bridge"

log "step 1: up, every service healthy"
stack_up=1
dc up -d >"$work/up.log" 2>&1 || { cat "$work/up.log"; fail "up"; }
wait_healthy 180
phase_done "up until healthy"

wait_eq "bridge_a and bridge_b are not superusers, have REPLICATION" "bridge_a|false|true,bridge_b|false|true" 5 \
	pg "SELECT string_agg(rolname || '|' || rolsuper || '|' || rolreplication, ',' ORDER BY rolname) FROM pg_roles WHERE rolname LIKE 'bridge_%'"
for c in client_a client_b; do
	out=$(bridge "$c" check 2>&1) || fail "pgsqlite-bridge check in $c: $out"
	log "ok: $c: pgsqlite-bridge check: $out"
done
out=$(docker exec -e PGPASSWORD=wrong "$(cid client_a)" pgsqlite-bridge status 2>&1 || true)
case "$out" in *'"online":false'*) ;; *) fail "status with a wrong password: $out" ;; esac
log "ok: a wrong password is refused"
# The secret path: the password from a file named by PGPASSWORD_FILE.
printf '%s\n' "$PGSB_BRIDGE_A_PASSWORD" > "$work/bridge_a_password"
chmod 644 "$work/bridge_a_password"
out=$(dc run --rm --no-deps -T -e PGPASSWORD= -e PGPASSWORD_FILE=/run/secrets/bridge_a_password \
	-v "$work/bridge_a_password:/run/secrets/bridge_a_password:ro" client_a status 2>&1) || fail "status with PGPASSWORD_FILE: $out"
case "$out" in *'"online":true'*) log "ok: PGPASSWORD_FILE (a docker secret) works" ;; *) fail "status with PGPASSWORD_FILE: $out" ;; esac
for c in client_a client_b; do
	out=$(docker exec "$(cid "$c")" pgsqlite-bridge-healthcheck 2>&1) || fail "$c's health check: $out"
	case "$out" in "HTTP/1."?" 200"*) log "ok: $c's health check asks its /healthz: $out" ;;
	*) fail "$c's health check did not use /healthz: $out" ;; esac
done
# Prometheus's view from the compose network: client B scrapes client A.
scrape() {
	docker exec "$(cid client_b)" bash -c 'exec 3<>/dev/tcp/client_a/9187 &&
		printf "GET /metrics HTTP/1.0\r\nHost: client_a\r\n\r\n" >&3 && timeout 5 cat <&3' |
		sed -n 's/^pgsqlite_bridge_connected \([0-9]*\).*/\1/p'
}
wait_eq "client A's /metrics answers on the compose network (connected 1)" 1 30 scrape
ports=$(docker port "$(dc ps -q postgres)" 5432/tcp)
[ "$ports" = "127.0.0.1:$PGSB_POSTGRES_PORT" ] || fail "Postgres is published as '$ports', want 127.0.0.1:$PGSB_POSTGRES_PORT only"
(exec 3<>"/dev/tcp/127.0.0.1/$PGSB_POSTGRES_PORT") 2>/dev/null || fail "nothing listens on 127.0.0.1:$PGSB_POSTGRES_PORT"
log "ok: Postgres is published on 127.0.0.1:$PGSB_POSTGRES_PORT only"
phase_done "privileges and secrets"

log "step 2: a row written in Postgres reaches both clients"
id1=$(uuid)
pg "INSERT INTO messages (id, author, body) VALUES ('$id1', 'server', 'written in Postgres')"
for c in client_a client_b; do
	wait_eq "$c holds the Postgres row" "written in Postgres" 30 sq "$c" "SELECT body FROM messages WHERE id = '$id1'"
done

log "step 3: a row written in client A's file reaches Postgres and client B"
id2=$(uuid)
sq client_a "INSERT INTO messages (id, author, body) VALUES ('$id2', 'client_a', 'written in client A')"
wait_eq "Postgres holds client A's row" "written in client A" 30 pg "SELECT body FROM messages WHERE id = '$id2'"
wait_eq "client B holds client A's row" "written in client A" 30 sq client_b "SELECT body FROM messages WHERE id = '$id2'"
wait_eq "client A got the server's created_at back" 1 30 \
	sq client_a "SELECT count(*) FROM messages WHERE id = '$id2' AND created_at IS NOT NULL"
phase_done "sync both ways"

log "step 4: restart postgres; the bridges reconnect and catch up"
s=$(date +%s%N)
dc restart postgres >/dev/null 2>&1 || fail "restart postgres"
restart_ms=$((($(date +%s%N) - s) / 1000000))
log "restart postgres took $restart_ms ms"
dc logs --no-color postgres >"$work/pg.log" 2>&1 || true
grep -q "received fast shutdown request" "$work/pg.log" || fail "Postgres did not get a fast shutdown"
! grep -q "automatic recovery in progress" "$work/pg.log" || fail "Postgres ran crash recovery after the restart"
log "ok: Postgres stopped with a fast shutdown, and started without recovery"
wait_eq "postgres is healthy again" healthy 60 health postgres
id3=$(uuid) id4=$(uuid)
pg "INSERT INTO messages (id, author, body) VALUES ('$id3', 'server', 'after the restart')"
sq client_b "INSERT INTO messages (id, author, body) VALUES ('$id4', 'client_b', 'client B after the restart')"
for c in client_a client_b; do
	wait_eq "$c holds the row written in Postgres after the restart" "after the restart" 60 \
		sq "$c" "SELECT body FROM messages WHERE id = '$id3'"
done
wait_eq "Postgres holds client B's row" "client B after the restart" 60 pg "SELECT body FROM messages WHERE id = '$id4'"
wait_eq "client A holds client B's row" "client B after the restart" 60 sq client_a "SELECT body FROM messages WHERE id = '$id4'"
wait_healthy 60
phase_done "restart postgres"

log "step 5: kill client A's bridge while Postgres commits; write locally while it is down; start it"
pg "INSERT INTO messages (author, body) SELECT 'burst', 'burst ' || g FROM generate_series(1, 200) g" >/dev/null
# 40 transactions, one every 100 ms, in one session.
for i in $(seq 1 40); do
	echo "INSERT INTO messages (author, body) VALUES ('stream', 'stream $i');"
	echo "SELECT pg_sleep(0.1);"
done | docker exec -i "$(cid postgres)" psql -X -q -U postgres -d app -v ON_ERROR_STOP=1 >/dev/null &
writer=$!
sleep 1
dc kill client_a >/dev/null 2>&1 || fail "kill client_a"
[ "$(health client_a)" = exited ] || fail "client_a is $(health client_a) after kill, want exited"
log "ok: client_a killed (SIGKILL)"
wait "$writer" || fail "the writer in Postgres failed"
id5=$(uuid)
# The bridge is down: the application keeps writing to its file.
docker run --rm -i -v "${proj}_client_a:/data" --entrypoint sqlite3 pgsqlite-bridge:local -bail /data/client_a.db \
	"INSERT INTO messages (id, author, body) VALUES ('$id5', 'client_a', 'written while the bridge was down')" ||
	fail "local write while client_a was down"
dc start client_a >/dev/null 2>&1 || fail "start client_a"
wait_eq "Postgres holds the row written while client A's bridge was down" "written while the bridge was down" 60 \
	pg "SELECT body FROM messages WHERE id = '$id5'"
want=$(pg_rows)
[ "$(printf '%s\n' "$want" | grep -c '|stream|')" = 40 ] || fail "Postgres lacks some of the 40 streamed rows"
for c in client_a client_b; do
	wait_eq "$c holds exactly Postgres's $(printf '%s\n' "$want" | wc -l) rows" "$want" 60 sq_rows "$c"
done
wait_eq "client A has nothing left to push" 0 30 sq client_a "SELECT count(*) FROM _pgsqlite_changes"
wait_healthy 60
phase_done "kill and replay"

log "step 6: down, then up: every file kept"
init_a=$(bridge client_a status | sed -n 's/.*"initialized_at":"\([^"]*\)".*/\1/p')
[ -n "$init_a" ] || fail "status of client_a has no initialized_at"
dc down >/dev/null 2>&1 || fail "down"
[ -z "$(dc ps -q)" ] || fail "containers left after down"
dc up -d >"$work/up.log" 2>&1 || { cat "$work/up.log"; fail "up again"; }
wait_healthy 120
wait_eq "Postgres still holds every row" "$want" 10 pg_rows
for c in client_a client_b; do
	wait_eq "$c still holds every row" "$want" 10 sq_rows "$c"
done
init_at() { bridge client_a status | sed -n 's/.*"initialized_at":"\([^"]*\)".*/\1/p'; }
wait_eq "client A was not initialised again" "$init_a" 10 init_at
id6=$(uuid)
sq client_b "INSERT INTO messages (id, author, body) VALUES ('$id6', 'client_b', 'after down and up')"
wait_eq "client A holds client B's row after down and up" "after down and up" 30 sq client_a "SELECT body FROM messages WHERE id = '$id6'"
phase_done "down and up"

log "step 7: the first start of Postgres is atomic"
# A first start whose init script fails: the container stops with the
# error, never reports healthy, and leaves no cluster that looks complete.
mkdir -p "$work/init-bad" "$work/init-good"
echo "CREATE TABLE t (id int PRIMARY KEY); SELECT * FROM no_such_table;" > "$work/init-bad/10-bad.sql"
echo "CREATE TABLE t (id int PRIMARY KEY);" > "$work/init-good/10-good.sql"
chmod 755 "$work/init-bad" "$work/init-good"
chmod 644 "$work"/init-*/*.sql
vol=${proj}_atomic
docker volume rm -f "$vol" >/dev/null 2>&1 || true
docker run -d --name "${proj}_atomic" -e POSTGRES_PASSWORD=x -v "$vol:/var/lib/postgresql/data" \
	-v "$work/init-bad:/docker-entrypoint-initdb.d:ro" pgsqlite-bridge-postgres:local >/dev/null
wait_eq "a failing init stops the container" exited 60 docker inspect -f '{{.State.Status}}' "${proj}_atomic"
[ "$(docker inspect -f '{{.State.ExitCode}}' "${proj}_atomic")" != 0 ] || fail "the failed init exited 0"
docker logs "${proj}_atomic" >"$work/atomic.log" 2>&1
grep -q 'no_such_table' "$work/atomic.log" || fail "the init's error is not in the log"
[ "$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "${proj}_atomic")" != healthy ] ||
	fail "a failed init was reported healthy"
docker rm -f "${proj}_atomic" >/dev/null
left=$(docker run --rm -v "$vol:/d" --entrypoint ls pgsqlite-bridge-postgres:local -A /d | tr '\n' ' ')
[ "$left" = "pgdata.init " ] || fail "after a failed init the volume holds '$left', want only pgdata.init"
log "ok: the failed init left only pgdata.init, never pgdata"
# The next start finds the half-done init, removes it and starts over;
# this time the passwords come from files (docker secrets).
mkdir -p "$work/secrets"
secret > "$work/secrets/postgres_password"
secret > "$work/secrets/bridge_x_password"
chmod 755 "$work/secrets"
chmod 644 "$work/secrets"/*
docker run -d --name "${proj}_atomic" -e POSTGRES_PASSWORD_FILE=/run/secrets/postgres_password \
	-e PGSB_BRIDGE_ROLES=bridge_x -e BRIDGE_X_PASSWORD_FILE=/run/secrets/bridge_x_password \
	-v "$work/secrets:/run/secrets:ro" -v "$vol:/var/lib/postgresql/data" \
	-v "$work/init-good:/docker-entrypoint-initdb.d:ro" pgsqlite-bridge-postgres:local >/dev/null
wait_eq "the next start redoes the init and becomes healthy" healthy 120 \
	docker inspect -f '{{.State.Health.Status}}' "${proj}_atomic"
docker logs "${proj}_atomic" >"$work/atomic.log" 2>&1
grep -q "left by an init that did not finish" "$work/atomic.log" || fail "the leftover init was not reported"
wait_eq "the redone init ran its script" t 10 \
	docker exec "${proj}_atomic" psql -X -U postgres -d app -Atc "SELECT to_regclass('t') IS NOT NULL"
wait_eq "bridge_x logs in over TCP with the password from its file" 1 10 \
	docker exec -e PGPASSWORD="$(cat "$work/secrets/bridge_x_password")" "${proj}_atomic" \
	psql -X -h 127.0.0.1 -U bridge_x -d app -w -Atc "SELECT 1"
wait_eq "bridge_x got REPLICATION and the table privileges, no superuser" "t|f|t" 10 \
	docker exec "${proj}_atomic" psql -X -U postgres -d app -Atc \
	"SELECT rolreplication, rolsuper, (SELECT bool_and(has_table_privilege('bridge_x', 't', p)) FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p) FROM pg_roles WHERE rolname = 'bridge_x'"
docker rm -f "${proj}_atomic" >/dev/null
docker volume rm -f "$vol" >/dev/null
phase_done "atomic first start, secrets"

log "all steps passed"
for t in "${timings[@]}"; do log "  $t"; done
log "compose-test took $(($(date +%s) - t0)) s"
