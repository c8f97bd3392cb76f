#!/bin/sh
# pgsqlite-bridge-healthcheck: the container's health until the bridge
# serves /healthz.  Healthy when `pgsqlite-bridge status` says the server
# is reachable ("online":true), the SQLite file is initialised, and, in the
# streaming modes (realtime, auto), the bridge's slot is in use.
out=$(pgsqlite-bridge status 2>&1) || { echo "$out"; exit 1; }
echo "$out"
case "$out" in *'"online":true'*) ;; *) exit 1 ;; esac
case "$out" in *'"initialized_at":null'*) exit 1 ;; esac
case "$out" in
*'"mode":"realtime"'* | *'"mode":"auto"'*)
	case "$out" in *'"slot_active":true'*) ;; *) exit 1 ;; esac ;;
esac
exit 0
