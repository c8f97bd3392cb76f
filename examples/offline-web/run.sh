#!/bin/bash
# run.sh: the offline-first web client (on-reconnect).  Asserts the sync
# at start, that nothing moves while the connection stays up, and that when
# the server comes back after an outage everything written on either side
# in the meantime moves both ways.  Stops and starts the throwaway server
# (PGSB_TEST_PGDATA) to make the outage.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
: "${PGSB_TEST_PGDATA:?the outage needs the throwaway cluster: run through tests/examples.sh}"
ex_setup offline_web
conf=$here/pgsqlite-bridge.conf
export PGSQLITE_BRIDGE_SQLITE=$ex_work/field.db
db=$PGSQLITE_BRIDGE_SQLITE

pg "CREATE TABLE inspections (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), site text NOT NULL,
	status text NOT NULL DEFAULT 'open', updated_at timestamptz NOT NULL DEFAULT now());
    INSERT INTO inspections (site) VALUES ('bridge 12'), ('tunnel 3')"
ex_grant "SELECT, INSERT, UPDATE, DELETE" inspections
bridge "$conf" check >/dev/null || { bridge "$conf" check; fail "check"; }

ex_start tablet "$conf"
wait_for "the sync at start brought the server's rows" 2 30 sq "$db" "SELECT count(*) FROM inspections"
# A session ends by letting go of the slot.
wait_for "the first sync is over (the slot is released)" f 30 \
	pg "SELECT active FROM pg_replication_slots WHERE slot_name = 'field_tablet_7'"

say "online, the app and the office write: on-reconnect leaves both alone"
sq "$db" "INSERT INTO inspections (id, site, updated_at) VALUES ('$(uuid)', 'culvert 9 (tablet, online)', strftime('%Y-%m-%d %H:%M:%f+00', 'now'))"
pg "INSERT INTO inspections (site) VALUES ('pier 4 (office, online)')"
stays "the server has not got the tablet's row" 0 4 pg "SELECT count(*) FROM inspections WHERE site LIKE 'culvert 9%'"
wait_for "the tablet has not got the office's row" 0 1 sq "$db" "SELECT count(*) FROM inspections WHERE site LIKE 'pier 4%'"

say "the server goes away"
"$ex_root/tests/pg-cluster.sh" stop "$PGSB_TEST_PGDATA"
wait_for "the bridge noticed (offline event)" 1 15 count_events tablet '"event":"offline"'
sq "$db" "UPDATE inspections SET status = 'done', updated_at = strftime('%Y-%m-%d %H:%M:%f+00', 'now') WHERE site = 'bridge 12'"
sq "$db" "INSERT INTO inspections (id, site, updated_at) VALUES ('$(uuid)', 'dam 1 (tablet, offline)', strftime('%Y-%m-%d %H:%M:%f+00', 'now'))"
ok "the app went on writing offline"

say "the server is back"
"$ex_root/tests/pg-cluster.sh" start "$PGSB_TEST_PGDATA" >/dev/null
wait_for "the server has every tablet row" 3 30 \
	pg "SELECT count(*) FROM inspections WHERE site LIKE '%(tablet, %' OR (site = 'bridge 12' AND status = 'done')"
wait_for "the tablet has the office's row" 1 30 sq "$db" "SELECT count(*) FROM inspections WHERE site LIKE 'pier 4%'"
wait_for "both sides hold the same 5 rows" \
	"$(pg "SELECT string_agg(site || ':' || status, ',' ORDER BY site) FROM inspections")" 10 \
	sq "$db" "SELECT group_concat(site || ':' || status, ',') FROM (SELECT * FROM inspections ORDER BY site)"
ex_stop tablet
