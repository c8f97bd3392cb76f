#!/bin/sh
# pg-cluster.sh: a throwaway PostgreSQL 15 cluster with wal2json for the
# tests, the demo and the benchmark: initdb in DIR, loopback only, a free
# port, wal_level=logical; run as the postgres user when started as root.
#   pg-cluster.sh start DIR     prints the port
#   pg-cluster.sh stop DIR | restart DIR | port DIR
set -eu

cmd=${1:?usage: pg-cluster.sh start|stop|restart|port DIR}
dir=${2:?usage: pg-cluster.sh start|stop|restart|port DIR}

pgbin=${PGBIN:-}
if [ -z "$pgbin" ]; then
	for d in /usr/lib/postgresql/15/bin "$(pg_config --bindir 2>/dev/null || true)"; do
		if [ -x "$d/initdb" ]; then pgbin=$d; break; fi
	done
fi
[ -n "$pgbin" ] || { echo "pg-cluster.sh: no PostgreSQL 15 server found (install postgresql-15)" >&2; exit 1; }

# Runs a command as the owner of the cluster.
as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# A port nobody listens on, below the kernel's ephemeral range (so no
# outgoing connection holds it either).
free_port() {
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		p=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 12000 ))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
	done 2>/dev/null
	echo 29329
}

set_port() {
	sed -i '/^port = /d' "$dir/data/postgresql.conf"
	echo "port = $1" >> "$dir/data/postgresql.conf"
}

write_conf() {
	port=$1
	conf="$dir/data/postgresql.conf"
	{
		echo "listen_addresses = '127.0.0.1'"
		echo "port = $port"
		echo "unix_socket_directories = '$dir'"
		echo "wal_level = logical"
		echo "max_replication_slots = 64"
		echo "max_wal_senders = 64"
		echo "max_connections = 200"
		echo "track_commit_timestamp = on"
		echo "wal_sender_timeout = 10s"
		echo "fsync = off"
		echo "synchronous_commit = off"
		echo "full_page_writes = off"
		echo "shared_buffers = 256MB"
		echo "max_wal_size = 4GB"
		echo "logging_collector = off"
		echo "log_min_messages = warning"
		# Debian's build refuses output plugins not named here.
		if as_owner "$pgbin/postgres" --describe-config 2>/dev/null | grep -q '^output_plugin_libraries'; then
			echo "output_plugin_libraries = 'pgoutput, test_decoding, wal2json'"
		fi
	} >> "$conf"
}

start() {
	mkdir -p "$dir"
	if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
	if [ ! -d "$dir/data" ]; then
		as_owner "$pgbin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
			{ cat "$dir/initdb.log" >&2; exit 1; }
		write_conf "$(free_port)"
	fi
	# A port can still be taken between the check and the bind: try others.
	for _ in 1 2 3 4 5; do
		if as_owner "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null; then
			port
			return
		fi
		grep -q "could not create any TCP/IP sockets" "$dir/server.log" || break
		set_port "$(free_port)"
	done
	cat "$dir/server.log" >&2
	exit 1
}

port() { sed -n 's/^port = //p' "$dir/data/postgresql.conf" | tail -n 1; }

case "$cmd" in
start) start ;;
stop) as_owner "$pgbin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true ;;
restart) as_owner "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m fast -w -t 60 restart >/dev/null ;;
port) port ;;
*) echo "pg-cluster.sh: unknown command $cmd" >&2; exit 2 ;;
esac
