#!/bin/bash
# run.sh: the desktop app (periodic).  The config syncs every minute; the
# test shortens that with PGSQLITE_BRIDGE_INTERVAL (default 2s here) and
# asserts that each round moves what both sides wrote, and that the rounds
# keep coming.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
ex_setup desktop
conf=$here/pgsqlite-bridge.conf
export PGSQLITE_BRIDGE_SQLITE=$ex_work/desktop.db
export PGSQLITE_BRIDGE_INTERVAL=${EXAMPLE_INTERVAL:-2s}
db=$PGSQLITE_BRIDGE_SQLITE

pg "CREATE TABLE customers (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text NOT NULL,
	phone text, updated_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE orders (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), customer uuid NOT NULL
	REFERENCES customers, total numeric(12,2) NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
    INSERT INTO customers (id, name) VALUES ('00000000-0000-4000-8000-000000000001', 'ACME')"
ex_grant "SELECT, INSERT, UPDATE, DELETE" customers orders
bridge "$conf" check >/dev/null || { bridge "$conf" check; fail "check"; }
wait_for "config: interval $PGSQLITE_BRIDGE_INTERVAL from the environment" "$PGSQLITE_BRIDGE_INTERVAL" 5 \
	sh -c "'$ex_bin' config -c '$conf' | sed -n 's/^interval = //p'"

ex_start laptop "$conf"
wait_for "the first round brought the customers" 1 30 sq "$db" "SELECT count(*) FROM customers"

for round in 1 2 3; do
	say "round $round: an order on the laptop, a phone number in the office"
	sq "$db" "INSERT INTO orders (id, customer, total) VALUES ('$(uuid)',
		'00000000-0000-4000-8000-000000000001', '$round.50')"
	pg "UPDATE customers SET phone = '555-010$round', updated_at = now() WHERE name = 'ACME'"
	wait_for "round $round: the server has the laptop's order" 1 30 \
		pg "SELECT count(*) FROM orders WHERE total = $round.50"
	wait_for "round $round: the laptop has the office's phone number" "555-010$round" 30 \
		sq "$db" "SELECT phone FROM customers WHERE name = 'ACME'"
done
wait_for "numeric stays exact: the laptop's totals as Postgres holds them" "1.50,2.50,3.50" 5 \
	pg "SELECT string_agg(total::text, ',' ORDER BY total) FROM orders"
ex_stop laptop
