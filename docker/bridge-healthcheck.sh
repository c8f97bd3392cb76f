#!/bin/bash
# pgsqlite-bridge-healthcheck: the container's health.
# With metrics on (`metrics = host:port`, as in docker/example/*.conf), the
# bridge's own GET /healthz: 200 while its replication connection is up, or
# down for less than its retry budget (see the README, "Metrics and
# health").  Served only by `run`, once init is done.  bash's /dev/tcp is
# the HTTP client, so the image needs none.
# Without metrics, `pgsqlite-bridge status`: Postgres reachable
# ("online":true), the file initialised and, in the streaming modes
# (realtime, auto), the bridge's slot in use.
addr=$(pgsqlite-bridge config 2>/dev/null | sed -n 's/^metrics = *//p')
if [ -n "$addr" ]; then
	host=${addr%:*} port=${addr##*:}
	case "$addr" in *:*) ;; *) host=127.0.0.1 ;; esac   # a port alone: loopback
	case "$host" in
	0.0.0.0 | "") host=127.0.0.1 ;;
	"[::]") host=::1 ;;
	\[*\]) host=${host#[} host=${host%]} ;;
	esac
	exec 3<>"/dev/tcp/$host/$port" 2>/dev/null || { echo "nothing answers on $addr"; exit 1; }
	printf 'GET /healthz HTTP/1.0\r\nHost: %s\r\n\r\n' "$addr" >&3
	IFS= read -r -t 5 status <&3 || { echo "no answer from $addr/healthz"; exit 1; }
	# Skip the headers; the body says why.
	while IFS= read -r -t 5 line <&3 && [ -n "${line%$'\r'}" ]; do :; done
	IFS= read -r -t 5 body <&3
	echo "${status%$'\r'}: $body"
	case "$status" in "HTTP/1."?" 200"*) exit 0 ;; *) exit 1 ;; esac
fi
out=$(pgsqlite-bridge status 2>&1) || { echo "$out"; exit 1; }
echo "$out"
case "$out" in *'"online":true'*) ;; *) exit 1 ;; esac
case "$out" in *'"initialized_at":null'*) exit 1 ;; esac
case "$out" in
*'"mode":"realtime"'* | *'"mode":"auto"'*)
	case "$out" in *'"slot_active":true'*) ;; *) exit 1 ;; esac ;;
esac
exit 0
